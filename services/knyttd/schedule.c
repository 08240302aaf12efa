/*
 * schedule.c -- the per-tenant training schedule: retrain every N new
 * interactions or when the serving model is T hours old, in the
 * background, each new model evaluated (leave-last-out on the tenant's
 * recent shoppers, lib/engine/holdout.c) and held back when it is worse
 * than the serving one by more than a margin.
 *
 * Settings: --train-every-interactions, --train-every-hours,
 * --train-eval-users and --train-margin give every tenant's defaults;
 * PUT /api/v1/models/schedule sets one tenant's.  A tenant's settings
 * are stored in the store as the metadata of a model named
 * "knyttd-schedule" (a new version per change, no blob), so they outlive
 * a restart and every replica on one PostgreSQL database reads the same.
 *
 * The scheduler thread looks every kd_cfg.sched_tick_ms at the tenants
 * this process has an engine for (a tenant nobody called since start has
 * no new interactions through this process, and a replica that serves
 * it does the looking).  "New interactions" are counted from the store
 * since a model of the tenant was last stored (by any replica) or this
 * process last started a training of it, or since it first looked (a
 * restart forgets the count, not the model's age).  The
 * job is an ordinary training job (jobs.c): one at a time per tenant,
 * and one trainer per tenant among replicas.
 */
#include "knyttd.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SCHED_NAME "knyttd-schedule"
#define MODEL_NAME "engine-model"
#define MAX_TENANTS 1024

/* ---- settings ---------------------------------------------------------- */

static double jnum(const cJSON *o, const char *k, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : def;
}

int kd_sched_get(knytt_store *st, kd_sched *out)
{
	*out = kd_cfg.sched;
	char *meta = NULL;
	int rc = knytt_store_model_get(st, SCHED_NAME, 0, NULL, NULL, &meta,
				       NULL, NULL);
	if (rc == KNYTT_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	cJSON *o = meta ? cJSON_Parse(meta) : NULL;
	knytt_free(meta);
	if (o) {
		out->every_events = (int64_t)jnum(o, "every_interactions",
						  (double)out->every_events);
		out->every_hours = jnum(o, "every_hours", out->every_hours);
		out->eval_users = (unsigned)jnum(o, "eval_users",
						 out->eval_users);
		out->margin = jnum(o, "margin", out->margin);
		cJSON_Delete(o);
	}
	return 0;
}

cJSON *kd_sched_json(const kd_sched *s)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "every_interactions",
				(double)s->every_events);
	cJSON_AddNumberToObject(o, "every_hours", s->every_hours);
	cJSON_AddNumberToObject(o, "eval_users", s->eval_users);
	cJSON_AddNumberToObject(o, "margin", s->margin);
	return o;
}

cJSON *kd_eval_json(const knytt_train_eval *ev)
{
	if (!ev->users)
		return NULL;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "protocol", "leave-last-out");
	cJSON_AddNumberToObject(o, "model_version", (double)ev->version);
	cJSON_AddNumberToObject(o, "test_users", (double)ev->users);
	cJSON_AddNumberToObject(o, "negatives", (double)ev->negatives);
	cJSON_AddNumberToObject(o, "hr10", ev->hr);
	cJSON_AddNumberToObject(o, "ndcg10", ev->ndcg);
	cJSON_AddBoolToObject(o, "promoted", ev->promoted);
	if (ev->compared_version) {
		cJSON_AddNumberToObject(o, "compared_version",
					(double)ev->compared_version);
		cJSON_AddNumberToObject(o, "compared_ndcg10",
					ev->compared_ndcg);
	}
	return o;
}

int h_schedule_get(kd_req *r)
{
	kd_sched s;
	int rc = kd_sched_get(r->st, &s);
	if (rc)
		return kd_liberr(r, rc, NULL);
	return kd_ok(r, 200, kd_sched_json(&s));
}

/* One field of the PUT body, within lo..hi: 0 or 400/422 set on r. */
static int field(kd_req *r, const cJSON *b, const char *name, double lo,
		 double hi, double *v)
{
	int got = kd_get_num(r, b, name, v);
	if (got > 1)
		return got;
	if (got == 1 && !(*v >= lo && *v <= hi))
		return kd_err(r, 422, "out_of_range", name,
			      "field %s must be in %g..%g", name, lo, hi);
	return 0;
}

int h_schedule_put(kd_req *r)
{
	static const char *const known[] = {"every_interactions",
					    "every_hours", "eval_users",
					    "margin"};
	const cJSON *b;
	kd_sched s;
	int rc = kd_body_obj(r, &b);
	if (rc)
		return rc;
	for (const cJSON *f = b->child; f; f = f->next) {
		size_t k = 0;
		while (k < 4 && strcmp(f->string, known[k]))
			k++;
		if (k == 4)
			return kd_err(r, 422, "unknown_field", f->string,
				      "field %.64s is not a schedule setting "
				      "(every_interactions, every_hours, "
				      "eval_users, margin)",
				      f->string);
	}
	if ((rc = kd_sched_get(r->st, &s)))
		return kd_liberr(r, rc, NULL);
	double ev = (double)s.every_events, eh = s.every_hours,
	       eu = s.eval_users, m = s.margin;
	if ((rc = field(r, b, "every_interactions", 0, 1e12, &ev)) ||
	    (rc = field(r, b, "every_hours", 0, 1e5, &eh)) ||
	    (rc = field(r, b, "eval_users", 0, 1e6, &eu)) ||
	    (rc = field(r, b, "margin", -1, 1, &m)))
		return rc;
	if (ev != floor(ev) || eu != floor(eu))
		return kd_err(r, 422, "invalid_field",
			      ev != floor(ev) ? "every_interactions"
					      : "eval_users",
			      "field %s must be a whole number",
			      ev != floor(ev) ? "every_interactions"
					      : "eval_users");
	s.every_events = (int64_t)ev;
	s.every_hours = eh;
	s.eval_users = (unsigned)eu;
	s.margin = m;
	cJSON *o = kd_sched_json(&s);
	char *txt = cJSON_PrintUnformatted(o);
	rc = txt ? knytt_store_model_put(r->st, SCHED_NAME, "", 0, txt, NULL)
		 : KNYTT_ENOMEM;
	cJSON_free(txt);
	if (rc) {
		cJSON_Delete(o);
		return kd_liberr(r, rc, NULL);
	}
	return kd_ok(r, 200, o);
}

/* ---- the scheduler thread -------------------------------------------- */

typedef struct seen {
	uint64_t tenant;
	int64_t base;    /* interactions when counting started */
	int64_t version; /* newest stored model then */
	int started;     /* this process started a training since */
} seen;

static seen table[MAX_TENANTS];
static int nseen;
static pthread_t th;
static int running;
static atomic_int stop;

typedef struct open_list {
	uint64_t id[MAX_TENANTS];
	knytt_engine *e[MAX_TENANTS];
	int n;
} open_list;

static void collect(knytt_engine *e, uint64_t tenant, void *ctx)
{
	open_list *l = ctx;
	if (l->n < MAX_TENANTS) {
		l->id[l->n] = tenant;
		l->e[l->n++] = e;
	}
}

static seen *seen_of(uint64_t tenant, int64_t count, int64_t version)
{
	for (int i = 0; i < nseen; i++)
		if (table[i].tenant == tenant)
			return &table[i];
	if (nseen == MAX_TENANTS)
		return NULL;
	/* without a model, every stored interaction is new */
	table[nseen] = (seen){tenant, version ? count : 0, version, 0};
	return &table[nseen++];
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether @p tenant is due; *count gets its interactions now. */
static int due(knytt_store *st, const kd_sched *s, uint64_t tenant,
	       int64_t *count)
{
	*count = knytt_store_interaction_count(st);
	if (*count < 0)
		return 0;
	int64_t created = 0, version = 0;
	int has_model = knytt_store_model_get(st, MODEL_NAME, 0, NULL, NULL,
					      NULL, &version, &created) == 0;
	seen *x = seen_of(tenant, *count, has_model ? version : 0);
	if (!x || *count == 0)
		return 0;
	/* a model stored since: ours counts from when it started; another
	 * replica's (it held the trainer lock) from now, or every replica
	 * would train again on the same new interactions */
	if (has_model && version > x->version) {
		x->version = version;
		if (!x->started)
			x->base = *count;
		x->started = 0;
	}
	if (s->every_events > 0 && *count - x->base >= s->every_events)
		return 1;
	if (s->every_hours > 0 &&
	    (!has_model ||
	     (double)(wall_ms() - created) >= s->every_hours * 3600e3))
		return *count > x->base || !has_model;
	return 0;
}

static void look(knytt_store *st, uint64_t tenant, knytt_engine *e)
{
	kd_sched s;
	int64_t count;
	if (knytt_store_use_tenant(st, tenant) || kd_sched_get(st, &s) ||
	    (s.every_events <= 0 && s.every_hours <= 0) ||
	    kd_job_active(tenant) || !due(st, &s, tenant, &count))
		return;
	char id[48];
	int rc = kd_job_start_for(tenant, e, "schedule", id, sizeof id);
	if (rc == 0) {
		seen *x = seen_of(tenant, count, 0);
		if (x) {
			x->base = count;
			x->started = 1;
		}
		kd_log("{\"level\":\"info\",\"msg\":\"scheduled training\","
		       "\"tenant\":%llu,\"job_id\":\"%s\",\"interactions\":"
		       "%lld}",
		       (unsigned long long)tenant, id, (long long)count);
	}
}

static void *loop(void *arg)
{
	(void)arg;
	knytt_store *st = NULL;
	while (!atomic_load(&stop)) {
		if (!st && knytt_store_open(kd_cfg.db, &st))
			st = NULL;
		open_list *l = calloc(1, sizeof *l);
		if (st && l) {
			kd_tenants_each(collect, l);
			for (int i = 0; i < l->n && !atomic_load(&stop); i++)
				look(st, l->id[i], l->e[i]);
		}
		free(l);
		for (long t = 0; t < kd_cfg.sched_tick_ms && !atomic_load(&stop);
		     t += 50)
			usleep(50000);
	}
	knytt_store_close(st);
	return NULL;
}

int kd_sched_start(void)
{
	if (pthread_create(&th, NULL, loop, NULL)) {
		kd_log("{\"level\":\"error\",\"msg\":\"cannot start the "
		       "training scheduler\"}");
		return -1;
	}
	running = 1;
	return 0;
}

void kd_sched_stop(void)
{
	atomic_store(&stop, 1);
	if (running)
		pthread_join(th, NULL);
	running = 0;
}
