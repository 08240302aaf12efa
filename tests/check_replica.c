/*
 * check_replica.c -- knyttd's training schedule and several knyttd on one
 * PostgreSQL database (issue 16):
 *  - schedule: a tenant's schedule set over the API starts trainings in
 *    the background, each model is evaluated, and one worse than the
 *    serving model is kept but not swapped in (SQLite);
 *  - store: knytt_store_notify / listen / wait_notify and the advisory
 *    locks on a throwaway PostgreSQL server;
 *  - replicas: two knyttd processes on that server, each write accepted
 *    by one (item upsert, delete, feedback) seen in the other's answers
 *    within a second, a model trained by one served by the other, one
 *    trainer per tenant, and the catch-up after the listener's
 *    connection is cut.
 */
#include "kdtest.h"
#include "pgserver.h"
#include "testutil.h"

#include <curl/curl.h>
#include <knytt.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------ */

typedef struct text {
	char *p;
	size_t n;
} text;

static size_t on_data(char *d, size_t sz, size_t nm, void *ctx)
{
	text *t = ctx;
	char *p = realloc(t->p, t->n + sz * nm + 1);
	if (!p)
		return 0;
	memcpy(p + t->n, d, sz * nm);
	t->p = p;
	t->n += sz * nm;
	t->p[t->n] = 0;
	return sz * nm;
}

/* GET /metrics of @p s as text (free it). */
static char *metrics(const kd_srv *s)
{
	CURL *c = curl_easy_init();
	char url[128];
	text t = {calloc(1, 1), 0};
	snprintf(url, sizeof url, "%s/metrics", s->base);
	struct curl_slist *h =
		curl_slist_append(NULL, "Authorization: Bearer " KD_ADMIN);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	long st = 0;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	ck_assert_int_eq(st, 200);
	return t.p;
}

/* The value of one series ("name{labels}"), or NAN when absent. */
static double metric(const char *m, const char *series)
{
	size_t n = strlen(series);
	for (const char *p = m; (p = strstr(p, series)); p += n)
		if ((p == m || p[-1] == '\n') && p[n] == ' ')
			return strtod(p + n + 1, NULL);
	return NAN;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int64_t wall_ms(void)
{
	return (int64_t)time(NULL) * 1000;
}

/* Whether @p item is in the "results" of @p o. */
static int has(const cJSON *o, const char *item)
{
	const cJSON *x;
	cJSON_ArrayForEach(x, cJSON_GetObjectItem(o, "results"))
	{
		const cJSON *id = cJSON_GetObjectItem(x, "item_id");
		if (cJSON_IsString(id) && !strcmp(id->valuestring, item))
			return 1;
	}
	return 0;
}

/* Whether @p user's recommendations on @p s hold @p item. */
static int rec_has(const kd_srv *s, const char *key, const char *user,
		   const char *filters, const char *item)
{
	char body[512];
	snprintf(body, sizeof body,
		 "{\"user_id\":\"%s\",\"count\":100%s%s}", user,
		 filters ? ",\"filters\":" : "", filters ? filters : "");
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(s, "POST", "/api/v1/recommendations", key,
				 NULL, body, &o),
			 200);
	int yes = has(o, item);
	cJSON_Delete(o);
	return yes;
}

static int trending_has(const kd_srv *s, const char *key, const char *item)
{
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(s, "GET", "/api/v1/trending?count=5", key,
				 NULL, NULL, &o),
			 200);
	int yes = has(o, item);
	cJSON_Delete(o);
	return yes;
}

static int listener_up(const kd_srv *s)
{
	char *m = metrics(s);
	int up = metric(m, "knytt_replica_listener_up") == 1;
	free(m);
	return up;
}

/* The trending score of @p item on @p s (0 when not listed). */
static double trend_score(const kd_srv *s, const char *key, const char *item)
{
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(s, "GET", "/api/v1/trending?count=20", key,
				 NULL, NULL, &o),
			 200);
	double v = 0;
	const cJSON *x;
	cJSON_ArrayForEach(x, cJSON_GetObjectItem(o, "results"))
	{
		if (!strcmp(cJSON_GetObjectItem(x, "item_id")->valuestring,
			    item))
			v = cJSON_GetObjectItem(x, "score")->valuedouble;
	}
	cJSON_Delete(o);
	return v;
}

static void post_items(const kd_srv *s, const char *sk, int n,
		       const char *prefix)
{
	char *body = malloc(128 * (size_t)n + 32);
	int k = sprintf(body, "{\"items\":[");
	for (int i = 0; i < n; i++)
		k += sprintf(body + k,
			     "%s{\"item_id\":\"%s%d\",\"title\":\"thing %d\","
			     "\"category\":\"c%d\",\"price\":10,"
			     "\"in_stock\":true}",
			     i ? "," : "", prefix, i, i, i / 20);
	sprintf(body + k, "]}");
	ck_assert_int_eq(kd_call(s, "POST", "/api/v1/items", sk, NULL, body,
				 NULL),
			 200);
	free(body);
}

/* One purchase per (user, item) pair given, at @p t0 + i seconds. */
static void post_events(const kd_srv *s, const char *sk, int n,
			const char *const *users, const char *const *items,
			int64_t t0)
{
	char *body = malloc(160 * (size_t)n + 32);
	int k = sprintf(body, "{\"interactions\":[");
	for (int i = 0; i < n; i++)
		k += sprintf(body + k,
			     "%s{\"user_id\":\"%s\",\"item_id\":\"%s\","
			     "\"interaction_type\":\"purchase\","
			     "\"timestamp\":%lld}",
			     i ? "," : "", users[i], items[i],
			     (long long)(t0 + i * 1000LL));
	sprintf(body + k, "]}");
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(s, "POST", "/api/v1/interactions", sk, NULL,
				 body, &o),
			 200);
	ck_assert_int_eq(
		(int)cJSON_GetObjectItem(o, "accepted_count")->valuedouble, n);
	cJSON_Delete(o);
	free(body);
}

/* ---- schedule (SQLite) ------------------------------------------------- */

#define SU 90 /* shoppers */
#define SI 60 /* items, three categories of 20 */

/* Every shopper buys @p per items, of its own category or (noise)
 * anywhere. */
static void shop(const kd_srv *s, const char *sk, int per, int noise,
		 int64_t t0, uint64_t *rng)
{
	int n = SU * per;
	char (*u)[16] = malloc((size_t)n * 16), (*it)[16] = malloc((size_t)n * 16);
	const char **up = malloc((size_t)n * sizeof *up),
		   **ip = malloc((size_t)n * sizeof *ip);
	for (int k = 0; k < per; k++)
		for (int x = 0; x < SU; x++) {
			int j = k * SU + x;
			int i = noise ? (int)(tu_rand(rng) % SI)
				      : (x % 3) * 20 + (int)(tu_rand(rng) % 20);
			snprintf(u[j], 16, "s%d", x);
			snprintf(it[j], 16, "p%d", i);
			up[j] = u[j];
			ip[j] = it[j];
		}
	post_events(s, sk, n, up, ip, t0);
	free(u);
	free(it);
	free(up);
	free(ip);
}

/* GET /api/v1/models until @p ok(o) (30 s at most); the answer. */
static cJSON *models_until(const kd_srv *s, const char *sk,
			   int (*ok)(const cJSON *o))
{
	for (int i = 0; i < 600; i++) {
		cJSON *o = NULL;
		ck_assert_int_eq(kd_call(s, "GET", "/api/v1/models", sk, NULL,
					 NULL, &o),
				 200);
		if (ok(o))
			return o;
		cJSON_Delete(o);
		usleep(50000);
	}
	ck_abort_msg("GET /api/v1/models never showed what was awaited");
	return NULL;
}

static int64_t newest_version(const cJSON *o)
{
	const cJSON *v = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "versions"), 0);
	return v ? (int64_t)cJSON_GetObjectItem(v, "version")->valuedouble : 0;
}

/* The version the last evaluation is of (0: none yet). */
static int64_t evaluated(const cJSON *o)
{
	const cJSON *v = cJSON_GetObjectItem(
		cJSON_GetObjectItem(o, "last_evaluation"), "model_version");
	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static int64_t serving_in(const cJSON *o)
{
	const cJSON *v = cJSON_GetObjectItem(o, "serving_version");
	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

/* (a version is stored, then evaluated and judged, then swapped in) */
static int has_v1(const cJSON *o)
{
	return newest_version(o) >= 1 && evaluated(o) >= 1 &&
	       serving_in(o) >= 1;
}
static int has_v2(const cJSON *o)
{
	return newest_version(o) >= 2 && evaluated(o) >= 2;
}
static int has_v3(const cJSON *o)
{
	return serving_in(o) >= 3;
}

static double num_at(const cJSON *o, const char *a, const char *b)
{
	const cJSON *x = cJSON_GetObjectItem(o, a);
	if (b)
		x = cJSON_GetObjectItem(x, b);
	ck_assert_msg(cJSON_IsNumber(x), "%s.%s is not a number", a,
		      b ? b : "");
	return x->valuedouble;
}

static int file_has(const char *path, const char *what)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	char line[4096];
	int yes = 0;
	while (!yes && fgets(line, sizeof line, f))
		yes = strstr(line, what) != NULL;
	fclose(f);
	return yes;
}

START_TEST(schedule_trains_evaluates_and_holds_back)
{
	kd_srv s;
	memset(&s, 0, sizeof s);
	char logf[128];
	snprintf(s.dir, sizeof s.dir, "/tmp/knyttd-sched-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(s.dir));
	snprintf(s.uri, sizeof s.uri, "sqlite:%s/k.db", s.dir);
	snprintf(logf, sizeof logf, "%s/knyttd.log", s.dir);
	const char *extra[] = {"--schedule-tick-ms", "100",
			       "--train-eval-users", "60",
			       "--log", logf, NULL};
	ck_assert_int_eq(kd_start(&s, extra), 0);
	char sk[128], pk[128];
	ck_assert_int_eq(kd_tenant(&s, "sched-shop", sk, pk), 0);
	post_items(&s, sk, SI, "p");

	/* the flags are every tenant's defaults */
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&s, "GET", "/api/v1/models/schedule", sk,
				 NULL, NULL, &o),
			 200);
	ck_assert(num_at(o, "every_interactions", NULL) == 0);
	ck_assert(num_at(o, "eval_users", NULL) == 60);
	ck_assert(fabs(num_at(o, "margin", NULL) - 0.05) < 1e-9);
	cJSON_Delete(o);
	/* bad settings: a clear error naming the field, nothing changed */
	ck_assert_int_eq(kd_call(&s, "PUT", "/api/v1/models/schedule", sk,
				 NULL, "{\"every_interactions\":\"many\"}", &o),
			 400);
	ck_assert_str_eq(kd_field(o), "every_interactions");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&s, "PUT", "/api/v1/models/schedule", sk,
				 NULL, "{\"margin\":5}", &o),
			 422);
	ck_assert_str_eq(kd_field(o), "margin");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&s, "PUT", "/api/v1/models/schedule", sk,
				 NULL, "{\"every_events\":5}", &o),
			 422);
	ck_assert_str_eq(kd_field(o), "every_events");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&s, "PUT", "/api/v1/models/schedule", pk,
				 NULL, "{\"every_interactions\":5}", NULL),
			 403);
	ck_assert_int_eq(kd_call(&s, "PUT", "/api/v1/models/schedule", sk,
				 NULL, "{\"every_interactions\":500}", &o),
			 200);
	ck_assert(num_at(o, "every_interactions", NULL) == 500);
	ck_assert(num_at(o, "eval_users", NULL) == 60); /* kept */
	cJSON_Delete(o);

	/* 540 interactions: past 500, a training starts by itself */
	uint64_t rng = 5;
	int64_t t0 = wall_ms() - 3 * 86400000LL;
	shop(&s, sk, 6, 0, t0, &rng);
	o = models_until(&s, sk, has_v1);
	ck_assert(num_at(o, "serving_version", NULL) == 1);
	ck_assert(num_at(o, "last_evaluation", "test_users") == 60);
	double ndcg1 = num_at(o, "last_evaluation", "ndcg10");
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(
		cJSON_GetObjectItem(o, "last_evaluation"), "promoted")));
	ck_assert(num_at(o, "serving_evaluation", "model_version") == 1);
	cJSON_Delete(o);

	/* 540 more, anywhere: the next model is worse on the held-out
	 * items, stored, reported, and not swapped in */
	shop(&s, sk, 6, 1, t0 + 86400000LL, &rng);
	o = models_until(&s, sk, has_v2);
	ck_assert(num_at(o, "serving_version", NULL) == 1);
	const cJSON *last = cJSON_GetObjectItem(o, "last_evaluation");
	ck_assert_msg(cJSON_IsFalse(cJSON_GetObjectItem(last, "promoted")),
		      "ndcg %g then %g", ndcg1,
		      num_at(o, "last_evaluation", "ndcg10"));
	ck_assert(num_at(o, "last_evaluation", "compared_version") == 1);
	const cJSON *v0 = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "versions"),
					     0);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(v0, "held_back")));
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(v0, "serving")));
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(
		cJSON_GetObjectItem(v0, "metadata"), "promoted")));
	cJSON_Delete(o);

	/* exposed to Prometheus and logged */
	char *m = metrics(&s);
	const char *tl = strstr(m, "knytt_training_last_promoted{tenant=\"");
	ck_assert_ptr_nonnull(tl);
	ck_assert(strstr(tl, "} 0\n") == strchr(tl, '}'));
	ck_assert_ptr_nonnull(strstr(m, "knytt_training_last_ndcg10{tenant="));
	ck_assert_ptr_nonnull(strstr(m, "knytt_model_serving_ndcg10{tenant="));
	ck_assert_ptr_nonnull(strstr(m, "knytt_feedback_queue_depth{tenant="));
	ck_assert_msg(strstr(m, "knytt_model_age_seconds{tenant=") != NULL,
		      "%s", strstr(m, "knytt_model_age_seconds"));
	free(m);
	ck_assert(file_has(logf, "\"promoted\":false"));
	ck_assert(file_has(logf, "\"trigger\":\"schedule\""));

	/* on age: a model older than 0.36 s and one new interaction */
	ck_assert_int_eq(kd_call(&s, "PUT", "/api/v1/models/schedule", sk,
				 NULL,
				 "{\"every_interactions\":0,\"every_hours\":"
				 "0.0001,\"margin\":-1}",
				 NULL),
			 200);
	const char *u1[] = {"s1"}, *i1[] = {"p2"};
	post_events(&s, sk, 1, u1, i1, wall_ms() - 1000);
	o = models_until(&s, sk, has_v3);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_stop(&s), 0);
	kd_cleanup(&s);
}
END_TEST

static int has_any(const cJSON *o)
{
	return newest_version(o) >= 1;
}
static int has_second(const cJSON *o)
{
	return newest_version(o) >= 2;
}

/* @p n purchases spread over the shoppers and items of shop(). */
static void shop_n(const kd_srv *s, const char *sk, int n, int seed)
{
	char (*u)[16] = malloc((size_t)n * 16), (*it)[16] = malloc((size_t)n * 16);
	const char **up = malloc((size_t)n * sizeof *up),
		   **ip = malloc((size_t)n * sizeof *ip);
	for (int j = 0; j < n; j++) {
		snprintf(u[j], 16, "s%d", (j * 7 + seed) % SU);
		snprintf(it[j], 16, "p%d", (j * 13 + seed * 3) % SI);
		up[j] = u[j];
		ip[j] = it[j];
	}
	post_events(s, sk, n, up, ip, wall_ms() - 3600000LL + seed * 1000LL);
	free(u);
	free(it);
	free(up);
	free(ip);
}

/* "Retrain every N new interactions" counts from the store: N - 1 of
 * them, a restart, one more, and a training starts. */
START_TEST(schedule_count_survives_restart)
{
	kd_srv s;
	memset(&s, 0, sizeof s);
	snprintf(s.dir, sizeof s.dir, "/tmp/knyttd-sched-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(s.dir));
	snprintf(s.uri, sizeof s.uri, "sqlite:%s/k.db", s.dir);
	const char *extra[] = {"--schedule-tick-ms", "100",
			       "--train-eval-users", "0", NULL};
	ck_assert_int_eq(kd_start(&s, extra), 0);
	char sk[128], pk[128];
	ck_assert_int_eq(kd_tenant(&s, "restart-shop", sk, pk), 0);
	post_items(&s, sk, SI, "p");
	ck_assert_int_eq(kd_call(&s, "PUT", "/api/v1/models/schedule", sk,
				 NULL, "{\"every_interactions\":100}", NULL),
			 200);
	shop_n(&s, sk, 100, 1);
	cJSON *o = models_until(&s, sk, has_any);
	ck_assert_int_eq(newest_version(o), 1);
	cJSON_Delete(o);
	/* N - 1: not yet */
	shop_n(&s, sk, 99, 2);
	usleep(800000); /* 8 looks */
	ck_assert_int_eq(kd_call(&s, "GET", "/api/v1/models", sk, NULL, NULL,
				 &o),
			 200);
	ck_assert_int_eq(newest_version(o), 1);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_stop(&s), 0);
	ck_assert_int_eq(kd_start(&s, extra), 0);
	/* the N-th, after the restart */
	shop_n(&s, sk, 1, 3);
	double t = now_s();
	o = models_until(&s, sk, has_second);
	printf("schedule: version 2 stored %.2f s after the N-th event "
	       "(restarted in between)\n",
	       now_s() - t);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_stop(&s), 0);
	kd_cleanup(&s);
}
END_TEST

/* ---- store: notifications and advisory locks --------------------------- */

static char pg_uri[512];

static void pg_setup(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
	pgs_start();
}

static int got_n;
static char got_payload[256];

static int on_note(void *ctx, const char *channel, const char *payload)
{
	(void)ctx;
	ck_assert_str_eq(channel, "knytt_t");
	snprintf(got_payload, sizeof got_payload, "%s", payload);
	got_n++;
	return 0;
}

START_TEST(store_notify_listen_and_advisory_locks)
{
	pgs_new_store(pg_uri, sizeof pg_uri);
	knytt_store *a, *b, *q;
	ck_assert_int_eq(knytt_store_open(pg_uri, &a), 0);
	ck_assert_int_eq(knytt_store_open(pg_uri, &b), 0);
	ck_assert_int_eq(knytt_store_listen(b, "knytt_t"), 0);
	ck_assert_int_eq(knytt_store_wait_notify(b, 0, on_note, NULL), 0);
	ck_assert_int_eq(knytt_store_notify(a, "knytt_t", "hello {1}"), 0);
	int n = 0;
	for (int i = 0; i < 20 && !n; i++)
		n = knytt_store_wait_notify(b, 100, on_note, NULL);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(got_payload, "hello {1}");
	/* a timeout is 0, after about the time asked */
	double t = now_s();
	ck_assert_int_eq(knytt_store_wait_notify(b, 150, on_note, NULL), 0);
	ck_assert(now_s() - t >= 0.1);
	/* bad arguments */
	ck_assert_int_eq(knytt_store_notify(a, "Bad-Channel", "x"),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "channel"));
	ck_assert_int_eq(knytt_store_listen(a, "x; DROP TABLE items"),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_store_notify(a, "knytt_t", NULL), KNYTT_EINVAL);
	char *big = malloc(9000);
	memset(big, 'x', 8999);
	big[8999] = 0;
	ck_assert_int_eq(knytt_store_notify(a, "knytt_t", big), KNYTT_EINVAL);
	free(big);
	ck_assert_int_eq(knytt_store_wait_notify(b, -1, NULL, NULL),
			 KNYTT_EINVAL);

	/* one holder at a time; the lock ends with its connection */
	ck_assert_int_eq(knytt_store_try_lock(a, 42), 1);
	ck_assert_int_eq(knytt_store_try_lock(b, 42), 0);
	ck_assert_int_eq(knytt_store_try_lock(b, 43), 1);
	ck_assert_int_eq(knytt_store_unlock(b, 42), KNYTT_ENOTFOUND);
	ck_assert_int_eq(knytt_store_unlock(a, 42), 0);
	ck_assert_int_eq(knytt_store_try_lock(b, 42), 1);
	ck_assert_int_eq(knytt_store_open(pg_uri, &q), 0);
	ck_assert_int_eq(knytt_store_try_lock(q, 42), 0);
	knytt_store_close(b); /* a holder that goes away frees it (once
				 the server has seen it go) */
	int took = 0;
	for (int i = 0; i < 100 && !took; i++) {
		took = knytt_store_try_lock(q, 42);
		ck_assert_int_ge(took, 0);
		if (!took)
			usleep(20000);
	}
	ck_assert_int_eq(took, 1);
	knytt_store_close(q);
	knytt_store_close(a);

	/* SQLite: one process owns the file */
	knytt_store *s;
	ck_assert_int_eq(knytt_store_open("sqlite::memory:", &s), 0);
	ck_assert_int_eq(knytt_store_notify(s, "knytt_t", "x"), KNYTT_ENOTSUP);
	ck_assert_int_eq(knytt_store_listen(s, "knytt_t"), KNYTT_ENOTSUP);
	ck_assert_int_eq(knytt_store_wait_notify(s, 0, NULL, NULL),
			 KNYTT_ENOTSUP);
	ck_assert_int_eq(knytt_store_try_lock(s, 1), KNYTT_ENOTSUP);
	ck_assert_int_eq(knytt_store_unlock(s, 1), KNYTT_ENOTSUP);
	knytt_store_close(s);
}
END_TEST

/* ---- two knyttd on one database ---------------------------------------- */

static void start_on(kd_srv *s, const char *uri, const char *name)
{
	memset(s, 0, sizeof s[0]);
	snprintf(s->dir, sizeof s->dir, "/tmp/knyttd-%s-XXXXXX", name);
	ck_assert_ptr_nonnull(mkdtemp(s->dir));
	ck_assert_uint_lt(strlen(uri), sizeof s->uri);
	snprintf(s->uri, sizeof s->uri, "%s", uri);
	/* an outage of 2 s at least: the test's writes during it are
	 * caught up, not notified */
	const char *extra[] = {"--replica-retry-ms", "2000", NULL};
	ck_assert_int_eq(kd_start(s, extra), 0);
}

/* Waits until @p cond holds on @p s (checked every 20 ms), at most
 * @p limit seconds; the seconds it took. */
#define WITHIN(limit, cond)                                                \
	do {                                                               \
		double t0_ = now_s(), dt_ = 0;                             \
		while (!(cond) && (dt_ = now_s() - t0_) < (limit))         \
			usleep(20000);                                     \
		ck_assert_msg((cond), "not within %g s: %s", (double)(limit), \
			      #cond);                                      \
	} while (0)

/* Runs @p sql on the test's own connection to the store's schema. */
static PGresult *sql(PGconn *c, const char *q)
{
	PGresult *r = PQexec(c, q);
	ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK ||
			      PQresultStatus(r) == PGRES_COMMAND_OK,
		      "%s: %s", q, PQerrorMessage(c));
	return r;
}

static char job_id[64];

static int job_done(const kd_srv *s, const char *sk)
{
	char path[128];
	snprintf(path, sizeof path, "/api/v1/models/jobs/%s", job_id);
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(s, "GET", path, sk, NULL, NULL, &o), 200);
	const char *st = cJSON_GetObjectItem(o, "state")->valuestring;
	ck_assert_str_ne(st, "failed");
	int done = !strcmp(st, "done");
	cJSON_Delete(o);
	return done;
}

static int64_t serving_of(const kd_srv *s, const char *sk)
{
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(s, "GET", "/api/v1/models", sk, NULL, NULL,
				 &o),
			 200);
	int64_t v = (int64_t)num_at(o, "serving_version", NULL);
	cJSON_Delete(o);
	return v;
}

/* The first of @p user's recommendations on @p s (into @p out). */
static void first_rec(const kd_srv *s, const char *sk, const char *user,
		      char *out, size_t cap)
{
	char body[128];
	snprintf(body, sizeof body, "{\"user_id\":\"%s\",\"count\":5}", user);
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(s, "POST", "/api/v1/recommendations", sk,
				 NULL, body, &o),
			 200);
	const cJSON *x = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "results"),
					    0);
	ck_assert_ptr_nonnull(x);
	snprintf(out, cap, "%s", cJSON_GetObjectItem(x, "item_id")->valuestring);
	cJSON_Delete(o);
}

/* Purchases, one request each, on @p s. */
static void buy(const kd_srv *s, const char *sk, const char *user,
		const char *item)
{
	const char *u[] = {user}, *i[] = {item};
	post_events(s, sk, 1, u, i, wall_ms() - 1000);
}

/* A 64-dimension vector pointing along axis @p a (with a little of the
 * next axis): the JSON array text into @p out. */
static void axis_vec(char *out, size_t cap, int a)
{
	size_t k = (size_t)snprintf(out, cap, "[");
	for (int j = 0; j < 64; j++)
		k += (size_t)snprintf(out + k, cap - k, "%s%g", j ? "," : "",
				      j == a ? 1.0 : j == (a + 1) % 64 ? 0.1
								       : 0.0);
	snprintf(out + k, cap - k, "]");
}

/* Whether a vector search on @p s near axis @p a answers @p item first. */
static int vec_first(const kd_srv *s, const char *key, int a,
		     const char *item)
{
	char v[1024], body[1200];
	axis_vec(v, sizeof v, a);
	snprintf(body, sizeof body, "{\"vector\":%s,\"count\":3}", v);
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(s, "POST", "/api/v1/search", key, NULL, body,
				 &o),
			 200);
	const cJSON *x = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "results"),
					    0);
	int yes = x && !strcmp(cJSON_GetObjectItem(x, "item_id")->valuestring,
			       item);
	cJSON_Delete(o);
	return yes;
}

/* Whether GET /similar/@p of on @p s answers @p item. */
static int similar_has(const kd_srv *s, const char *key, const char *of,
		       const char *item)
{
	char path[128];
	snprintf(path, sizeof path, "/api/v1/similar/%s?count=5", of);
	cJSON *o = NULL;
	if (kd_call(s, "GET", path, key, NULL, NULL, &o) != 200) {
		cJSON_Delete(o);
		return 0;
	}
	int yes = has(o, item);
	cJSON_Delete(o);
	return yes;
}

/* Upserts @p item on @p s with a vector along axis @p a. */
static void put_vec_item(const kd_srv *s, const char *sk, const char *item,
			 int a)
{
	char v[1024], body[1400];
	axis_vec(v, sizeof v, a);
	snprintf(body, sizeof body,
		 "{\"item_id\":\"%s\",\"title\":\"vector %s\","
		 "\"price\":10,\"embedding\":%s}",
		 item, item, v);
	ck_assert_int_eq(kd_call(s, "POST", "/api/v1/items", sk, NULL, body,
				 NULL),
			 200);
}

START_TEST(two_replicas_share_one_database)
{
	pgs_new_store(pg_uri, sizeof pg_uri);
	kd_srv A, B;
	start_on(&A, pg_uri, "ra");
	start_on(&B, pg_uri, "rb");
	char sk[128], pk[128];
	ck_assert_int_eq(kd_tenant(&A, "replica-shop", sk, pk), 0);
	post_items(&A, sk, 40, "r");
	/* r0 the most bought, then r1..r9 */
	const char *users[60], *items[60];
	static char ub[60][8], ib[60][8];
	for (int k = 0; k < 60; k++) {
		int i = k < 15 ? 0 : 1 + k % 9;
		snprintf(ub[k], 8, "v%d", k % 12);
		snprintf(ib[k], 8, "r%d", i);
		users[k] = ub[k];
		items[k] = ib[k];
	}
	post_events(&A, sk, 60, users, items, wall_ms() - 3600000);
	ck_assert_int_eq(kd_call(&A, "PUT", "/api/v1/users/cold", sk, NULL,
				 "{}", NULL),
			 200);
	/* each replica opens the tenant's engine */
	ck_assert(trending_has(&A, pk, "r0"));
	ck_assert(trending_has(&B, pk, "r0"));
	ck_assert(rec_has(&B, sk, "cold", "{\"price_max\":100}", "r0"));

	/* an item upsert on A: B's filters see the new price */
	ck_assert_int_eq(kd_call(&A, "PATCH", "/api/v1/items/r0", sk, NULL,
				 "{\"price\":1000}", NULL),
			 200);
	WITHIN(1.0, !rec_has(&B, sk, "cold", "{\"price_max\":100}", "r0"));
	/* a delete on B: A never answers the item again */
	ck_assert(rec_has(&A, sk, "cold", NULL, "r1"));
	ck_assert_int_eq(kd_call(&B, "DELETE", "/api/v1/items/r1", sk, NULL,
				 NULL, NULL),
			 200);
	WITHIN(1.0, !rec_has(&A, sk, "cold", NULL, "r1"));
	/* a new item and its feedback on A: trending on B */
	ck_assert_int_eq(kd_call(&A, "POST", "/api/v1/items", sk, NULL,
				 "{\"item_id\":\"fresh\",\"title\":\"new\","
				 "\"price\":10}",
				 NULL),
			 200);
	const char *fu[40], *fi[40];
	for (int k = 0; k < 40; k++) {
		fu[k] = ub[k % 12];
		fi[k] = "fresh";
	}
	post_events(&A, sk, 40, fu, fi, wall_ms() - 60000);
	WITHIN(1.0, trending_has(&B, pk, "fresh"));
	/* feedback of a shopper B has loaded, on A; and the other way */
	char x[64], y[64];
	first_rec(&B, sk, "v5", x, sizeof x);
	buy(&A, sk, "v5", x);
	WITHIN(1.0, !rec_has(&B, sk, "v5", NULL, x));
	first_rec(&A, sk, "v6", y, sizeof y);
	buy(&B, sk, "v6", y);
	WITHIN(1.0, !rec_has(&A, sk, "v6", NULL, y));

	/* items with their own vectors, upserted on A: B answers with the
	 * vector within a second (search near it, similar items), follows
	 * a changed vector whose catalog fields stayed the same, and
	 * forgets a deleted item */
	put_vec_item(&A, sk, "vx", 3);
	put_vec_item(&A, sk, "vy", 40);
	double tv = now_s();
	WITHIN(1.0, vec_first(&B, pk, 3, "vx") && vec_first(&B, pk, 40, "vy"));
	printf("replica: B served A's new vectors after %.3f s\n",
	       now_s() - tv);
	put_vec_item(&A, sk, "vz", 41); /* near vy */
	WITHIN(1.0, similar_has(&B, pk, "vy", "vz"));
	put_vec_item(&A, sk, "vx", 20); /* same fields, a new vector */
	tv = now_s();
	WITHIN(1.0, vec_first(&B, pk, 20, "vx") && !vec_first(&B, pk, 3, "vx"));
	printf("replica: B served A's changed vector after %.3f s\n",
	       now_s() - tv);
	ck_assert_int_eq(kd_call(&A, "DELETE", "/api/v1/items/vz", sk, NULL,
				 NULL, NULL),
			 200);
	WITHIN(1.0, !similar_has(&B, pk, "vy", "vz") &&
			    !vec_first(&B, pk, 41, "vz"));

	/* a model trained by A is served by B */
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&A, "POST", "/api/v1/models/train", sk, NULL,
				 NULL, &o),
			 202);
	snprintf(job_id, sizeof job_id, "%s",
		 cJSON_GetObjectItem(o, "job_id")->valuestring);
	cJSON_Delete(o);
	WITHIN(60.0, job_done(&A, sk));
	int64_t v = serving_of(&A, sk);
	ck_assert_int_ge(v, 1);
	WITHIN(2.0, serving_of(&B, sk) == v);
	/* the job's record reads the same from B (the store) as from A */
	char jpath[128];
	snprintf(jpath, sizeof jpath, "/api/v1/models/jobs/%s", job_id);
	cJSON *ja = NULL, *jb = NULL;
	ck_assert_int_eq(kd_call(&A, "GET", jpath, sk, NULL, NULL, &ja), 200);
	ck_assert_int_eq(kd_call(&B, "GET", jpath, sk, NULL, NULL, &jb), 200);
	char *ta = cJSON_PrintUnformatted(ja), *tb = cJSON_PrintUnformatted(jb);
	ck_assert_str_eq(tb, ta);
	free(ta);
	free(tb);
	cJSON_Delete(ja);
	cJSON_Delete(jb);

	/* one trainer per tenant: while another connection holds the
	 * tenant's trainer lock, neither replica trains */
	unsigned long long tenant = strtoull(job_id + 4, NULL, 10);
	PGconn *c = PQconnectdb(pg_uri);
	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	char q[256];
	snprintf(q, sizeof q,
		 "SELECT pg_advisory_lock(hashtextextended(current_schema() "
		 "|| '/' || %lld, 0))",
		 (long long)(0x7472000000000000LL | (long long)tenant));
	PQclear(sql(c, q));
	ck_assert_int_eq(kd_call(&A, "POST", "/api/v1/models/train", sk, NULL,
				 NULL, &o),
			 409);
	ck_assert_ptr_nonnull(strstr(
		cJSON_GetObjectItem(cJSON_GetObjectItem(o, "error"), "message")
			->valuestring,
		"another replica"));
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&B, "POST", "/api/v1/models/train", sk, NULL,
				 NULL, NULL),
			 409);
	/* a running record while the trainer lock is held elsewhere: its
	 * trainer is alive, the record stays running; once the lock is free
	 * nobody runs it, and it reads failed */
	knytt_store *rs = NULL;
	uint64_t rt = 0;
	ck_assert_int_eq(knytt_store_open(pg_uri, &rs), 0);
	ck_assert_int_eq(knytt_store_tenant_find(rs, "replica-shop", &rt), 0);
	ck_assert_int_eq(knytt_store_use_tenant(rs, rt), 0);
	knytt_job lj = {.struct_size = sizeof lj, .id = "job-elsewhere",
			.state = KNYTT_JOB_RUNNING, .created_ms = wall_ms()};
	ck_assert_int_eq(knytt_store_job_put(rs, &lj), 0);
	knytt_store_close(rs);
	ck_assert_int_eq(kd_call(&B, "GET", "/api/v1/models/jobs/job-elsewhere",
				 sk, NULL, NULL, &o),
			 200);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "state")->valuestring,
			 "running");
	cJSON_Delete(o);
	snprintf(q, sizeof q,
		 "SELECT pg_advisory_unlock(hashtextextended(current_schema() "
		 "|| '/' || %lld, 0))",
		 (long long)(0x7472000000000000LL | (long long)tenant));
	PQclear(sql(c, q));
	ck_assert_int_eq(kd_call(&A, "GET", "/api/v1/models/jobs/job-elsewhere",
				 sk, NULL, NULL, &o),
			 200);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "state")->valuestring,
			 "failed");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&B, "POST", "/api/v1/models/train", sk, NULL,
				 NULL, &o),
			 202);
	snprintf(job_id, sizeof job_id, "%s",
		 cJSON_GetObjectItem(o, "job_id")->valuestring);
	cJSON_Delete(o);
	WITHIN(60.0, job_done(&B, sk));
	v = serving_of(&B, sk);
	WITHIN(2.0, serving_of(&A, sk) == v);

	/* the listeners' connections cut: what A writes meanwhile reaches
	 * B by the catch-up when it reconnects */
	char z[64];
	first_rec(&B, sk, "v7", z, sizeof z);
	ck_assert_int_eq(kd_call(&A, "POST", "/api/v1/items", sk, NULL,
				 "{\"item_id\":\"gap\",\"title\":\"gap\","
				 "\"price\":10}",
				 NULL),
			 200);
	WITHIN(1.0, kd_call(&B, "GET", "/api/v1/items/gap", sk, NULL, NULL,
			    NULL) == 200);
	ck_assert(!trending_has(&B, pk, "gap"));
	PGresult *r = sql(c, "SELECT pg_terminate_backend(pid, 5000) FROM "
			     "pg_stat_activity WHERE application_name = "
			     "'knyttd-listener'");
	ck_assert_int_eq(PQntuples(r), 2);
	PQclear(r);
	/* both know it: what follows is not notified to them */
	WITHIN(3.0, !listener_up(&A) && !listener_up(&B));
	/* dated an hour back: the catch-up does not go by event times */
	const char *cu[] = {"v7"}, *ci[] = {z};
	post_events(&A, sk, 1, cu, ci, wall_ms() - 3600000);
	/* shoppers B never loaded make "gap" the top item: trending on B
	 * counts their events once, from the store */
	const char *gu[60], *gi[60];
	static char gb[60][8];
	for (int k = 0; k < 60; k++) {
		snprintf(gb[k], 8, "g%d", k % 20);
		gu[k] = gb[k];
		gi[k] = "gap";
	}
	post_events(&A, sk, 60, gu, gi, wall_ms() - 120000);
	/* and B's own, which B counted at once and must not count again */
	for (int k = 0; k < 20; k++)
		snprintf(gb[k], 8, "h%d", k);
	post_events(&B, sk, 20, gu, gi, wall_ms() - 90000);
	WITHIN(6.0, !rec_has(&B, sk, "v7", NULL, z));
	WITHIN(6.0, trending_has(&B, pk, "gap"));
	/* each event counted once on each side: the same score */
	WITHIN(5.0, fabs(trend_score(&B, pk, "gap") /
				 trend_score(&A, pk, "gap") -
			 1) < 1e-4);
	/* A's 60 on "gap" (trending) and v7's (a loaded profile); the
	 * counter is added once the catch-up has applied both, so it may
	 * trail the answers above by a moment (a loaded machine failed the
	 * check made at once) */
	char *m;
	WITHIN(5.0, (m = metrics(&B),
		     metric(m, "knytt_replica_caught_up_events_total") >= 61
			     ? (free(m), 1)
			     : (free(m), 0)));
	m = metrics(&B);
	ck_assert(metric(m, "knytt_replica_reconnects_total") >= 1);
	ck_assert(metric(m, "knytt_replica_notifications_total") >= 4);
	free(m);
	WITHIN(5.0, (m = metrics(&B), metric(m, "knytt_replica_listener_up") ==
						   1 ? (free(m), 1)
						     : (free(m), 0)));
	PQfinish(c);
	/* an embedding service set through A: B's engine follows the stored
	 * settings within 5 s (a service nobody listens on makes B's text
	 * searches fail, 503), and goes back when A removes it */
	ck_assert_int_eq(kd_call(&A, "PUT", "/api/v1/embedder", sk, NULL,
				 "{\"url\":\"http://127.0.0.1:9/\",\"dim\":8,"
				 "\"timeout_ms\":1000}",
				 NULL),
			 200);
	WITHIN(8.0, kd_call(&B, "POST", "/api/v1/search", sk, NULL,
			    "{\"query\":\"r1\"}", NULL) == 503);
	ck_assert_int_eq(kd_call(&A, "DELETE", "/api/v1/embedder", sk, NULL,
				 NULL, NULL),
			 200);
	WITHIN(8.0, kd_call(&B, "POST", "/api/v1/search", sk, NULL,
			    "{\"query\":\"r1\"}", NULL) == 200);
	ck_assert_int_eq(kd_stop(&A), 0);
	ck_assert_int_eq(kd_stop(&B), 0);
	kd_cleanup(&A);
	kd_cleanup(&B);
}
END_TEST

Suite *replica_suite(void)
{
	Suite *s = suite_create("replica");
	TCase *tc = tcase_create("schedule");
	tcase_set_timeout(tc, 180);
	tcase_add_test(tc, schedule_trains_evaluates_and_holds_back);
	tcase_add_test(tc, schedule_count_survives_restart);
	suite_add_tcase(s, tc);
	tc = tcase_create("postgres");
	tcase_set_timeout(tc, 180);
	tcase_add_unchecked_fixture(tc, pg_setup, NULL);
	tcase_add_test(tc, store_notify_listen_and_advisory_locks);
	tcase_add_test(tc, two_replicas_share_one_database);
	suite_add_tcase(s, tc);
	return s;
}
