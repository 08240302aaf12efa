/*
 * metrics.c -- GET /metrics in the Prometheus text exposition format
 * (version 0.0.4): what an operator watches.
 *
 * Requests are counted per route *pattern* ("/api/v1/items/{}"), method
 * and status, never per raw path: a path holds item and shopper ids, and
 * one series per id would grow without bound (and leak ids to whoever
 * reads the metrics).  Requests that match no route share route="none".
 * The series live in a fixed table under one lock; an observation is a
 * few additions, cheap next to a request.
 *
 * Tenant figures (items, users, interactions, model) are read when
 * scraped, for the tenants whose engine this process has open: the
 * store has no list of tenants, and a tenant nobody called since start
 * has nothing this process could report beyond the store's counts.
 *
 * The model's age is the serving version's (a version the training gate
 * held back is stored but does not make the model younger), and the
 * evaluation figures are those of the leave-last-out test each new model
 * passes (schedule.c, lib/engine/holdout.c).
 */
#include "knyttd.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Upper bounds of the latency buckets, seconds (+Inf is implied). */
static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01,
				0.025,	0.05,  0.1,    0.25,  0.5,
				1,	2.5,   5,      10};
#define NB (sizeof bounds / sizeof bounds[0])
#define MAX_SERIES 512

typedef struct series {
	const char *route, *method; /* static strings */
	int status;
	unsigned long long count, bucket[NB]; /* bucket[i]: <= bounds[i] */
	double sum;
} series;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static series tab[MAX_SERIES];
static int ntab;
static unsigned long long dropped; /* observations past MAX_SERIES */
static atomic_ullong limited, store_err[3];
static int64_t started_s;

void kd_metrics_observe(const kd_req *r, double seconds)
{
	const char *route = r->route ? r->route : "none";
	const char *method = r->route ? r->route_method : "none";
	pthread_mutex_lock(&mu);
	if (!started_s)
		started_s = (int64_t)time(NULL);
	int i = 0;
	while (i < ntab && (tab[i].status != r->status ||
			    tab[i].route != route || tab[i].method != method))
		i++;
	if (i == ntab && ntab < MAX_SERIES) {
		tab[i].route = route;
		tab[i].method = method;
		tab[i].status = r->status;
		ntab++;
	}
	if (i < ntab) {
		series *s = &tab[i];
		s->count++;
		s->sum += seconds;
		for (size_t b = 0; b < NB; b++)
			s->bucket[b] += seconds <= bounds[b];
	} else {
		dropped++;
	}
	pthread_mutex_unlock(&mu);
}

void kd_metrics_rate_limited(void)
{
	atomic_fetch_add(&limited, 1);
}

void kd_metrics_store_error(int rc)
{
	int k = rc == KNYTT_EDB ? 0 : rc == KNYTT_EIO ? 1 : 2;
	atomic_fetch_add(&store_err[k], 1);
}

/* ---- the text --------------------------------------------------------- */

typedef struct buf {
	char *p;
	size_t n, cap;
	int oom;
} buf;

static void put(buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void put(buf *b, const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int k = b->oom ? 0
			       : vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
		va_end(ap);
		if (b->oom || k < 0)
			return;
		if ((size_t)k < b->cap - b->n) {
			b->n += (size_t)k;
			return;
		}
		size_t cap = b->cap * 2 + (size_t)k;
		char *p = realloc(b->p, cap);
		if (!p) {
			b->oom = 1;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

static void family(buf *b, const char *name, const char *type,
		   const char *help)
{
	put(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A float as Prometheus reads it (%.17g round-trips). */
static void num(buf *b, double v)
{
	put(b, "%.17g\n", v);
}

static void http_series(buf *b)
{
	family(b, "knytt_http_requests_total", "counter",
	       "HTTP requests answered, by route pattern, method and status.");
	pthread_mutex_lock(&mu);
	series *copy = malloc(sizeof tab);
	int n = copy ? ntab : 0;
	if (copy)
		memcpy(copy, tab, sizeof tab);
	unsigned long long lost = dropped;
	pthread_mutex_unlock(&mu);
	for (int i = 0; i < n; i++)
		put(b,
		    "knytt_http_requests_total{route=\"%s\",method=\"%s\","
		    "status=\"%d\"} %llu\n",
		    copy[i].route, copy[i].method, copy[i].status,
		    copy[i].count);
	family(b, "knytt_http_request_duration_seconds", "histogram",
	       "Time from a request's arrival to its answer.");
	for (int i = 0; i < n; i++) {
		char lab[200];
		snprintf(lab, sizeof lab, "route=\"%s\",method=\"%s\","
					  "status=\"%d\"",
			 copy[i].route, copy[i].method, copy[i].status);
		for (size_t k = 0; k < NB; k++)
			put(b,
			    "knytt_http_request_duration_seconds_bucket{%s,"
			    "le=\"%g\"} %llu\n",
			    lab, bounds[k], copy[i].bucket[k]);
		put(b,
		    "knytt_http_request_duration_seconds_bucket{%s,le=\"+Inf\"}"
		    " %llu\n",
		    lab, copy[i].count);
		put(b, "knytt_http_request_duration_seconds_sum{%s} ", lab);
		num(b, copy[i].sum);
		put(b, "knytt_http_request_duration_seconds_count{%s} %llu\n",
		    lab, copy[i].count);
	}
	free(copy);
	family(b, "knytt_http_requests_unrecorded_total", "counter",
	       "Requests not in the series above (more than 512 series).");
	put(b, "knytt_http_requests_unrecorded_total %llu\n", lost);
	family(b, "knytt_http_requests_in_flight", "gauge",
	       "Requests being handled, this one included.");
	put(b, "knytt_http_requests_in_flight %ld\n", kd_http_inflight());
	family(b, "knytt_http_rate_limited_total", "counter",
	       "Requests refused with 429 by a rate limit.");
	put(b, "knytt_http_rate_limited_total %llu\n",
	    (unsigned long long)atomic_load(&limited));
	family(b, "knytt_store_errors_total", "counter",
	       "Store errors answered 503, by library error code.");
	static const char *const code[] = {"EDB", "EIO", "ETIMEDOUT"};
	for (int k = 0; k < 3; k++)
		put(b, "knytt_store_errors_total{code=\"%s\"} %llu\n", code[k],
		    (unsigned long long)atomic_load(&store_err[k]));
}

/* ---- tenants and training --------------------------------------------- */

#define MAX_TENANTS 1024
#define MAX_JOBS 4096
/* The engine stores its models under this name (lib/engine/train.c). */
#define MODEL_NAME "engine-model"

typedef struct tstat {
	uint64_t id;
	knytt_train_status ts;
	int64_t items, users, events, model_created_ms;
	int64_t pending; /* write-behind feedback queue */
	knytt_train_eval serving; /* recorded evaluation of the serving model */
	knytt_profile_cache_info pc; /* shopper profiles in memory */
} tstat;

typedef struct tlist {
	tstat *t;
	int n;
} tlist;

static void take(knytt_engine *e, uint64_t tenant, void *ctx)
{
	tlist *l = ctx;
	if (l->n == MAX_TENANTS)
		return;
	tstat *t = &l->t[l->n];
	memset(t, 0, sizeof *t);
	t->id = tenant;
	t->pending = knytt_engine_feedback_pending(e);
	t->serving.struct_size = sizeof t->serving;
	knytt_engine_train_eval(e, 1, &t->serving);
	t->pc.struct_size = sizeof t->pc;
	knytt_engine_profile_cache_info(e, &t->pc);
	t->ts.struct_size = sizeof t->ts;
	if (knytt_engine_train_status(e, &t->ts) == 0)
		l->n++;
}

/* The store's counts of each tenant, outside the registry lock: -1 when
 * the store did not answer (the gauge is then left out). */
static void counts(tstat *t, knytt_store *st)
{
	t->items = t->users = t->events = -1;
	if (!st || knytt_store_use_tenant(st, t->id))
		return;
	t->items = knytt_store_item_count(st);
	t->users = knytt_store_user_count(st);
	t->events = knytt_store_interaction_count(st);
	size_t size;
	char *meta = NULL;
	int64_t got;
	/* the version serving (0: none) */
	if (t->ts.model_version > 0 &&
	    knytt_store_model_get(st, MODEL_NAME, t->ts.model_version, NULL,
				  &size, &meta, &got,
				  &t->model_created_ms) == 0)
		knytt_free(meta);
}

static void tenant_gauge(buf *b, const tlist *l, const char *name,
			 const char *help, int which)
{
	size_t nl = strlen(name);
	family(b, name,
	       nl > 6 && !strcmp(name + nl - 6, "_total") ? "counter" : "gauge",
	       help);
	/* milliseconds: a model stored within this second has age 0, not
	 * a negative one (which left the series out) */
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	for (int i = 0; i < l->n; i++) {
		const tstat *t = &l->t[i];
		double v;
		switch (which) {
		case 0: v = (double)t->items; break;
		case 1: v = (double)t->users; break;
		case 2: v = (double)t->events; break;
		case 3: v = (double)t->ts.items_indexed; break;
		case 4: v = (double)t->ts.model_version; break;
		case 6: v = (double)t->pending; break;
		case 7: v = t->serving.users ? t->serving.ndcg : -1; break;
		case 8: v = t->serving.users ? t->serving.hr : -1; break;
		case 9: v = (double)t->pc.bytes; break;
		case 10: v = (double)t->pc.profiles; break;
		case 11: v = (double)t->pc.evictions; break;
		case 12: v = (double)t->pc.budget; break;
		default:
			v = !t->model_created_ms ? -1
			    : now_ms > t->model_created_ms
				    ? (double)(now_ms - t->model_created_ms) /
					      1000.0
				    : 0;
		}
		if (v < 0)
			continue;
		put(b, "%s{tenant=\"%llu\"} ", name, (unsigned long long)t->id);
		num(b, v);
	}
}

static void tenant_series(buf *b, knytt_store *st)
{
	tlist l = {calloc(MAX_TENANTS, sizeof(tstat)), 0};
	if (!l.t) {
		b->oom = 1;
		return;
	}
	kd_tenants_each(take, &l);
	for (int i = 0; i < l.n; i++)
		counts(&l.t[i], st);
	tenant_gauge(b, &l, "knytt_tenant_items", "Items in the catalog.", 0);
	tenant_gauge(b, &l, "knytt_tenant_users", "Users (shoppers) known.",
		     1);
	tenant_gauge(b, &l, "knytt_tenant_interactions",
		     "Interactions stored.", 2);
	tenant_gauge(b, &l, "knytt_index_vectors",
		     "Vectors in the serving index.", 3);
	tenant_gauge(b, &l, "knytt_model_version",
		     "Version of the model serving queries (0 = none).", 4);
	tenant_gauge(b, &l, "knytt_model_age_seconds",
		     "Age of the model serving queries.", 5);
	tenant_gauge(b, &l, "knytt_feedback_queue_depth",
		     "Feedback events accepted and not yet written to the "
		     "store.", 6);
	tenant_gauge(b, &l, "knytt_model_serving_ndcg10",
		     "Leave-last-out NDCG@10 recorded for the serving model.",
		     7);
	tenant_gauge(b, &l, "knytt_model_serving_hr10",
		     "Leave-last-out HR@10 recorded for the serving model.",
		     8);
	tenant_gauge(b, &l, "knytt_profile_cache_bytes",
		     "Bytes of shopper profiles in memory.", 9);
	tenant_gauge(b, &l, "knytt_profile_cache_profiles",
		     "Shopper profiles in memory.", 10);
	tenant_gauge(b, &l, "knytt_profile_cache_evictions_total",
		     "Shopper profiles evicted over the budget (each is "
		     "loaded from the store again on its next request).", 11);
	tenant_gauge(b, &l, "knytt_profile_cache_budget_bytes",
		     "Budget of the shopper profiles in memory.", 12);
	free(l.t);
}

/* The allocator's arenas and bytes (heap.c): what RSS is made of, so a
 * growing RSS tells live memory (in_use) from memory freed and kept
 * (free).  Absent without glibc. */
static void heap_series(buf *b)
{
	kd_heap_stat h;
	if (kd_heap_stats(&h))
		return;
	family(b, "knytt_process_malloc_arenas", "gauge",
	       "Arenas the C library's allocator has made (see "
	       "--malloc-arenas).");
	put(b, "knytt_process_malloc_arenas %ld\n", h.arenas);
	family(b, "knytt_process_malloc_bytes", "gauge",
	       "Bytes of the C library's allocator: in use, and free but "
	       "kept in its arenas.");
	put(b, "knytt_process_malloc_bytes{state=\"in_use\"} %llu\n",
	    (unsigned long long)h.in_use);
	put(b, "knytt_process_malloc_bytes{state=\"free\"} %llu\n",
	    (unsigned long long)h.free);
}

static const char *const states[] = {"queued", "running", "done",
				     "failed"};

/* The evaluation of each tenant's latest evaluated job. */
static void eval_series(buf *b, const kd_job_stat *j, int n)
{
	static const char *const name[] = {
		"knytt_training_last_ndcg10", "knytt_training_last_hr10",
		"knytt_training_last_promoted"};
	static const char *const help[] = {
		"Leave-last-out NDCG@10 of the tenant's latest evaluated model.",
		"Leave-last-out HR@10 of the tenant's latest evaluated model.",
		"1 when that model was swapped in, 0 when the gate held it "
		"back."};
	for (int f = 0; f < 3; f++) {
		family(b, name[f], "gauge", help[f]);
		for (int i = 0; i < n; i++) {
			int newest = j[i].ev.users > 0;
			for (int k = 0; k < i && newest; k++)
				newest = j[k].tenant != j[i].tenant ||
					 !j[k].ev.users;
			if (!newest)
				continue;
			put(b, "%s{tenant=\"%llu\"} ", name[f],
			    (unsigned long long)j[i].tenant);
			num(b, f == 0 ? j[i].ev.ndcg
			       : f == 1 ? j[i].ev.hr
					: (double)j[i].ev.promoted);
		}
	}
}

static void replica_series(buf *b)
{
	kd_replica_stat s;
	kd_replica_stats(&s);
	family(b, "knytt_replica_listener_up", "gauge",
	       "1 while the replica listener is connected to PostgreSQL "
	       "(0 also when not replicating).");
	put(b, "knytt_replica_listener_up %d\n", s.connected);
	family(b, "knytt_replica_notifications_total", "counter",
	       "Notifications received from other replicas.");
	put(b, "knytt_replica_notifications_total %llu\n", s.received);
	family(b, "knytt_replica_applied_total", "counter",
	       "Notifications applied to an open engine.");
	put(b, "knytt_replica_applied_total %llu\n", s.applied);
	family(b, "knytt_replica_reconnects_total", "counter",
	       "Times the listener reconnected and caught up.");
	put(b, "knytt_replica_reconnects_total %llu\n", s.reconnects);
	family(b, "knytt_replica_caught_up_events_total", "counter",
	       "Feedback events applied by catch-ups after a reconnect.");
	put(b, "knytt_replica_caught_up_events_total %llu\n", s.caught_up);
}

static void job_series(buf *b)
{
	kd_job_stat *j = malloc(MAX_JOBS * sizeof *j);
	if (!j) {
		b->oom = 1;
		return;
	}
	int n = kd_jobs_snapshot(j, MAX_JOBS);
	family(b, "knytt_training_jobs", "gauge",
	       "Training jobs since start, by tenant and state.");
	/* each (tenant, state) once, at its first job in the list */
	for (int i = 0; i < n; i++)
		for (int s = 0; s < 4; s++) {
			int first = 1, count = 0;
			for (int k = 0; k < n; k++) {
				if (j[k].tenant != j[i].tenant)
					continue;
				first &= k >= i;
				count += strcmp(j[k].state, states[s]) == 0;
			}
			if (first && (count || s < 2))
				put(b,
				    "knytt_training_jobs{tenant=\"%llu\","
				    "state=\"%s\"} %d\n",
				    (unsigned long long)j[i].tenant, states[s],
				    count);
		}
	/* the newest job of each tenant: the list is newest first */
	family(b, "knytt_training_last_duration_seconds", "gauge",
	       "Running time of the tenant's latest training job.");
	for (int i = 0; i < n; i++) {
		int newest = 1;
		for (int k = 0; k < i; k++)
			newest &= j[k].tenant != j[i].tenant;
		if (!newest)
			continue;
		put(b, "knytt_training_last_duration_seconds{tenant=\"%llu\"} ",
		    (unsigned long long)j[i].tenant);
		num(b, j[i].seconds);
	}
	family(b, "knytt_training_last_loss", "gauge",
	       "Last loss reported by the tenant's latest training job.");
	for (int i = 0; i < n; i++) {
		int newest = 1;
		for (int k = 0; k < i; k++)
			newest &= j[k].tenant != j[i].tenant;
		if (!newest)
			continue;
		put(b, "knytt_training_last_loss{tenant=\"%llu\"} ",
		    (unsigned long long)j[i].tenant);
		num(b, j[i].loss);
	}
	eval_series(b, j, n);
	free(j);
}

int h_metrics(kd_req *r)
{
	buf b = {malloc(16384), 0, 16384, 0};
	if (!b.p)
		return kd_err(r, 503, "no_memory", NULL, "out of memory");
	b.p[0] = 0;
	pthread_mutex_lock(&mu);
	if (!started_s)
		started_s = (int64_t)time(NULL);
	int64_t t0 = started_s;
	pthread_mutex_unlock(&mu);
	family(&b, "knytt_process_start_time_seconds", "gauge",
	       "When this knyttd began counting, Unix time.");
	put(&b, "knytt_process_start_time_seconds %lld\n", (long long)t0);
	http_series(&b);
	tenant_series(&b, kd_store());
	job_series(&b);
	replica_series(&b);
	heap_series(&b);
	if (b.oom) {
		free(b.p);
		return kd_err(r, 503, "no_memory", NULL, "out of memory");
	}
	r->text = b.p;
	r->ctype = "text/plain; version=0.0.4; charset=utf-8";
	r->status = 200;
	return 200;
}
