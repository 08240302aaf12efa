/*
 * stats.c -- GET /api/v1/stats: a shop's own live figures, second by
 * second over the last two minutes, for the back office's charts.
 *
 * /metrics (metrics.c) is the operator's view: every tenant together,
 * behind the admin key.  A shop's staff see only their shop, with its
 * secret key: for each of the last ST_SECS seconds, the requests its
 * keys made, how many failed (5xx) or were refused (4xx), and the
 * latency (mean, and p50 / p95 from a histogram).  Requests without a
 * tenant (the admin key, a bad key) are not counted anywhere here.
 *
 * Each tenant has a ring of per-second slots under its own lock; a slot
 * is reset when a later second reuses it.  Tenants get one of ST_TENANTS
 * tables on first use (a process serving more shops than that keeps no
 * figures for the rest, and says so: "tracked": false).
 */
#include "knyttd.h"

#include <stdatomic.h>
#include <string.h>
#include <time.h>

#define ST_SECS 120
#define ST_TENANTS 256
#define ST_NB 13

/* upper bounds of the latency buckets, ms (the last is everything) */
static const double st_bound_ms[ST_NB - 1] = {0.25, 0.5, 1,   2,   5,  10,
					      25,   50,  100, 250, 500, 1000};

typedef struct st_sec {
	int64_t t;            /* unix second of the slot, 0 = empty */
	uint32_t n, e5, e4;   /* requests, 5xx, 4xx */
	double sum_ms;        /* latency sum */
	uint32_t h[ST_NB];    /* latency histogram */
} st_sec;

typedef struct st_tenant {
	_Atomic uint64_t tenant; /* 0 = free */
	pthread_mutex_t mu;
	st_sec ring[ST_SECS];
} st_tenant;

static st_tenant tabs[ST_TENANTS];
static pthread_mutex_t claim_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
	for (int i = 0; i < ST_TENANTS; i++)
		pthread_mutex_init(&tabs[i].mu, NULL);
}

/* The table of @p tenant; with @p claim, a free one is taken.  Tables
 * are never given back and a claim takes the first free one on the
 * tenant's probe sequence, so a look without the lock may stop at the
 * first free table. */
static st_tenant *table_of(uint64_t tenant, int claim)
{
	pthread_once(&once, init);
	unsigned h = (unsigned)(tenant * 0x9E3779B97F4A7C15ull >> 56);
	for (unsigned k = 0; k < ST_TENANTS; k++) {
		st_tenant *t = &tabs[(h + k) % ST_TENANTS];
		uint64_t id = atomic_load(&t->tenant);
		if (id == tenant)
			return t;
		if (id == 0)
			break;
	}
	if (!claim)
		return NULL;
	st_tenant *t = NULL;
	pthread_mutex_lock(&claim_mu);
	for (unsigned k = 0; k < ST_TENANTS && !t; k++) {
		st_tenant *c = &tabs[(h + k) % ST_TENANTS];
		uint64_t id = atomic_load(&c->tenant);
		if (id == 0)
			atomic_store(&c->tenant, tenant);
		if (id == 0 || id == tenant)
			t = c;
	}
	pthread_mutex_unlock(&claim_mu);
	return t;
}

static int64_t unix_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec;
}

void kd_stats_observe(const kd_req *r, double seconds)
{
	if (!r->tenant || !r->status)
		return;
	st_tenant *t = table_of(r->tenant, 1);
	if (!t)
		return;
	double ms = seconds * 1000;
	int b = 0;
	while (b < ST_NB - 1 && ms > st_bound_ms[b])
		b++;
	int64_t now = unix_s();
	pthread_mutex_lock(&t->mu);
	st_sec *s = &t->ring[now % ST_SECS];
	if (s->t != now) {
		memset(s, 0, sizeof *s);
		s->t = now;
	}
	s->n++;
	s->e5 += r->status >= 500;
	s->e4 += r->status >= 400 && r->status < 500;
	s->sum_ms += ms;
	s->h[b]++;
	pthread_mutex_unlock(&t->mu);
}

/* The latency below which a share @p q of the second's requests fell:
 * the upper bound of that histogram bucket (the last: its lower one). */
static double quantile(const st_sec *s, double q)
{
	uint32_t want = (uint32_t)(q * s->n + 0.999999), seen = 0;
	for (int b = 0; b < ST_NB; b++) {
		seen += s->h[b];
		if (seen >= want && want)
			return st_bound_ms[b < ST_NB - 1 ? b : ST_NB - 2];
	}
	return 0;
}

int h_stats(kd_req *r)
{
	st_sec c[ST_SECS];
	st_tenant *t = table_of(r->tenant, 1);
	int64_t now = unix_s();
	memset(c, 0, sizeof c);
	if (t) {
		pthread_mutex_lock(&t->mu);
		memcpy(c, t->ring, sizeof c);
		pthread_mutex_unlock(&t->mu);
	}
	cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
	if (!o || !arr) {
		cJSON_Delete(o);
		cJSON_Delete(arr);
		return kd_err(r, 503, "no_memory", NULL, "out of memory");
	}
	/* the finished seconds, oldest first; the current one is partial */
	for (int64_t s = now - ST_SECS + 1; s < now; s++) {
		const st_sec *x = &c[s % ST_SECS];
		int live = x->t == s;
		cJSON *p = cJSON_CreateObject();
		cJSON_AddNumberToObject(p, "t", (double)s);
		cJSON_AddNumberToObject(p, "requests", live ? x->n : 0);
		cJSON_AddNumberToObject(p, "errors", live ? x->e5 : 0);
		cJSON_AddNumberToObject(p, "client_errors", live ? x->e4 : 0);
		cJSON_AddNumberToObject(p, "mean_ms",
					live && x->n ? x->sum_ms / x->n : 0);
		cJSON_AddNumberToObject(p, "p50_ms", live ? quantile(x, 0.5) : 0);
		cJSON_AddNumberToObject(p, "p95_ms",
					live ? quantile(x, 0.95) : 0);
		cJSON_AddItemToArray(arr, p);
	}
	cJSON_AddNumberToObject(o, "interval_s", 1);
	cJSON_AddBoolToObject(o, "tracked", t != NULL);
	cJSON_AddItemToObject(o, "seconds", arr);
	return kd_ok(r, 200, o);
}
