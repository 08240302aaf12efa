/*
 * check_kdembed.c -- a tenant's embedding service in knyttd: the routes
 * (/api/v1/embedder and /api/v1/admin/tenants/{name}/embedder), their
 * checks and credentials, and that each tenant's item texts and search
 * text go to its own service and nowhere else.
 *
 * The fake service runs in the test process (libmicrohttpd on
 * 127.0.0.1, an ephemeral port) and speaks /v1/embeddings under two
 * prefixes, /a and /b, logging every input text and Authorization header
 * per prefix.  Its vector of a text depends only on the set of its words
 * (each word adds +-1 at a hashed position), so an item "red shoe" and
 * the query "red shoe" get the same vector and a vector search finds the
 * one with the other.
 */
#include "testutil.h"

#include "kdtest.h"
#include "knytt.h"

#include <curl/curl.h>
#include <ctype.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <unistd.h>

#define DIM 16

/* ---- the fake service --------------------------------------------------- */

static struct {
	struct MHD_Daemon *d;
	unsigned port;
	pthread_mutex_t mu;
	char log[2][8192]; /* per prefix: "text|" for every input */
	char auth[2][128]; /* last Authorization header per prefix */
	int calls[2];
} F = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void fake_vector(const char *text, double *v)
{
	memset(v, 0, DIM * sizeof *v);
	const unsigned char *p = (const unsigned char *)text;
	while (*p) {
		while (*p && !isalnum(*p))
			p++;
		if (!*p)
			break;
		uint64_t h = 1469598103934665603ULL;
		while (*p && isalnum(*p))
			h = (h ^ (uint64_t)tolower(*p++)) * 1099511628211ULL;
		v[h % DIM] += (h >> 32) & 1 ? 1 : -1;
	}
	v[(DIM - 1)] += 0.25; /* never all zero */
}

struct fbody {
	char *p;
	size_t n;
};

static enum MHD_Result fake_handler(void *cls, struct MHD_Connection *c,
				    const char *url, const char *method,
				    const char *version, const char *data,
				    size_t *size, void **con_cls)
{
	(void)cls, (void)method, (void)version;
	struct fbody *b = *con_cls;
	if (!b) {
		*con_cls = calloc(1, sizeof *b);
		return MHD_YES;
	}
	if (*size) {
		b->p = realloc(b->p, b->n + *size + 1);
		memcpy(b->p + b->n, data, *size);
		b->n += *size;
		b->p[b->n] = 0;
		*size = 0;
		return MHD_YES;
	}
	if (strncmp(url, "/deny/", 6) == 0) { /* a service refusing */
		static char no[] = "{\"error\":{\"message\":\"bad key\"}}";
		struct MHD_Response *r = MHD_create_response_from_buffer(
			strlen(no), no, MHD_RESPMEM_PERSISTENT);
		enum MHD_Result ok = MHD_queue_response(c, 401, r);
		MHD_destroy_response(r);
		return ok;
	}
	int which = strncmp(url, "/b/", 3) == 0;
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						       "Authorization");
	cJSON *in = b->p ? cJSON_Parse(b->p) : NULL;
	const cJSON *inputs = cJSON_GetObjectItem(in, "input");
	cJSON *root = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(root, "data");
	pthread_mutex_lock(&F.mu);
	F.calls[which]++;
	snprintf(F.auth[which], sizeof F.auth[which], "%s", auth ? auth : "");
	const cJSON *t;
	cJSON_ArrayForEach(t, inputs)
	{
		size_t n = strlen(F.log[which]);
		snprintf(F.log[which] + n, sizeof F.log[which] - n, "%s|",
			 t->valuestring);
		double v[DIM];
		fake_vector(t->valuestring, v);
		cJSON *e = cJSON_CreateObject();
		cJSON_AddItemToObject(e, "embedding",
				      cJSON_CreateDoubleArray(v, DIM));
		cJSON_AddItemToArray(arr, e);
	}
	pthread_mutex_unlock(&F.mu);
	char *txt = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	cJSON_Delete(in);
	struct MHD_Response *r = MHD_create_response_from_buffer(
		strlen(txt), txt, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ok = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ok;
}

static void fake_done(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	(void)cls, (void)c, (void)toe;
	struct fbody *b = *con_cls;
	if (b)
		free(b->p);
	free(b);
}

static void fake_start(void)
{
	memset(F.log, 0, sizeof F.log);
	memset(F.calls, 0, sizeof F.calls);
	F.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
				       MHD_USE_THREAD_PER_CONNECTION,
			       0, NULL, NULL, fake_handler, NULL,
			       MHD_OPTION_NOTIFY_COMPLETED, fake_done, NULL,
			       MHD_OPTION_END);
	ck_assert_ptr_nonnull(F.d);
	const union MHD_DaemonInfo *i =
		MHD_get_daemon_info(F.d, MHD_DAEMON_INFO_BIND_PORT);
	F.port = i->port;
}

static void fake_stop(void)
{
	MHD_stop_daemon(F.d);
	F.d = NULL;
}

/* 1 when service @p which got input @p text. */
static int got(int which, const char *text)
{
	char want[512];
	snprintf(want, sizeof want, "%s|", text);
	pthread_mutex_lock(&F.mu);
	int hit = strstr(F.log[which], want) != NULL;
	pthread_mutex_unlock(&F.mu);
	return hit;
}

static int calls(int which)
{
	pthread_mutex_lock(&F.mu);
	int n = F.calls[which];
	pthread_mutex_unlock(&F.mu);
	return n;
}

/* ---- the server ------------------------------------------------------------ */

static kd_srv S;
static char SKA[80], PKA[80], SKB[80], PKB[80];

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
	memset(&S, 0, sizeof S);
	ck_assert_int_eq(kd_start(&S, NULL), 0);
	ck_assert_int_eq(kd_tenant(&S, "shop-a", SKA, PKA), 0);
	ck_assert_int_eq(kd_tenant(&S, "shop-b", SKB, PKB), 0);
	fake_start();
}

static void teardown(void)
{
	ck_assert_int_eq(kd_stop(&S), 0);
	kd_cleanup(&S);
	fake_stop();
	curl_global_cleanup();
}

static long call(const char *method, const char *path, const char *key,
		 const char *body, cJSON **out)
{
	return kd_call(&S, method, path, key, NULL, body, out);
}

/* PUT a configuration; the answer's status, the error's field in @p f. */
static long put_conf(const char *key, const char *body, char *f, size_t cap)
{
	cJSON *o = NULL;
	long st = call("PUT", "/api/v1/embedder", key, body, &o);
	if (f)
		snprintf(f, cap, "%s", kd_field(o));
	cJSON_Delete(o);
	return st;
}

static void use_service(const char *key, int which, const char *api_key)
{
	char body[512];
	snprintf(body, sizeof body,
		 "{\"url\":\"http://127.0.0.1:%u/%s\",\"model\":\"fake\","
		 "\"dim\":%d%s%s%s}",
		 F.port, which ? "b" : "a", DIM,
		 api_key ? ",\"api_key\":\"" : "", api_key ? api_key : "",
		 api_key ? "\"" : "");
	cJSON *o = NULL;
	long st = call("PUT", "/api/v1/embedder", key, body, &o);
	ck_assert_msg(st == 200, "PUT embedder: %ld", st);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "configured")));
	cJSON_Delete(o);
}

/* "item:reason," for each result of a search for @p q, into @p out. */
static long search(const char *key, const char *q, char *out, size_t cap)
{
	char body[256];
	snprintf(body, sizeof body, "{\"query\":\"%s\",\"count\":5}", q);
	cJSON *o = NULL;
	long st = call("POST", "/api/v1/search", key, body, &o);
	size_t n = 0;
	out[0] = 0;
	const cJSON *x;
	cJSON_ArrayForEach(x, cJSON_GetObjectItem(o, "results"))
	{
		const cJSON *id = cJSON_GetObjectItem(x, "item_id");
		const cJSON *why = cJSON_GetObjectItem(x, "reason");
		if (cJSON_IsString(id) && cJSON_IsString(why) &&
		    n + strlen(id->valuestring) + strlen(why->valuestring) +
				    3 < cap)
			n += (size_t)snprintf(out + n, cap - n, "%s:%s,",
					      id->valuestring,
					      why->valuestring);
	}
	cJSON_Delete(o);
	return st;
}

/* ---- tests ------------------------------------------------------------- */

START_TEST(routes_checks_and_credentials)
{
	char f[64];
	cJSON *o = NULL;
	ck_assert_int_eq(call("GET", "/api/v1/embedder", SKA, NULL, &o), 200);
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(o, "configured")));
	cJSON_Delete(o);
	/* bad settings: the status and the field named */
	static const struct {
		const char *body;
		long status;
		const char *field;
	} bad[] = {
		{"{\"url\":\"ftp://h/\",\"dim\":8}", 422, "url"},
		{"{\"url\":\"file:///etc/passwd\",\"dim\":8}", 422, "url"},
		{"{\"dim\":8}", 422, "url"},
		{"{\"url\":\"http://h/\"}", 422, "dim"},
		{"{\"url\":\"http://h/\",\"dim\":0}", 422, "dim"},
		{"{\"url\":\"http://h/\",\"dim\":5000}", 422, "dim"},
		{"{\"url\":\"http://h/\",\"dim\":\"8\"}", 400, "dim"},
		{"{\"url\":\"http://h/\",\"dim\":8.5}", 400, "dim"},
		{"{\"url\":8,\"dim\":8}", 400, "url"},
		{"{\"url\":\"http://h x/\",\"dim\":8}", 422, "url"},
		{"{\"url\":\"http://h/\",\"dim\":8,\"timeout_ms\":0}", 422,
		 "timeout_ms"},
		{"{\"url\":\"http://h/\",\"dim\":8,\"api_key\":\"a b\"}", 422,
		 "api_key"},
		{"{\"url\":\"http://h/\",\"dim\":8,\"model\":\"m\\n\"}", 422,
		 "model"},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		long st = put_conf(SKA, bad[i].body, f, sizeof f);
		ck_assert_msg(st == bad[i].status && !strcmp(f, bad[i].field),
			      "%s: %ld field '%s'", bad[i].body, st, f);
	}
	ck_assert_int_eq(put_conf(SKA, "[1]", NULL, 0), 400);
	/* nothing was stored by the refusals */
	ck_assert_int_eq(call("GET", "/api/v1/embedder", SKA, NULL, &o), 200);
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(o, "configured")));
	ck_assert_int_eq(cJSON_GetObjectItem(o, "version")->valueint, 0);
	cJSON_Delete(o);
	/* credentials: secret key of the tenant, or the admin key on the
	 * admin route; nobody else */
	const char *body = "{\"url\":\"http://127.0.0.1:9/\",\"dim\":8}";
	static const char *const methods[] = {"GET", "PUT", "DELETE"};
	for (int m = 0; m < 3; m++) {
		const char *b = m == 1 ? body : NULL;
		ck_assert_int_eq(call(methods[m], "/api/v1/embedder", PKA, b,
				      NULL), 403);
		ck_assert_int_eq(call(methods[m], "/api/v1/embedder", NULL, b,
				      NULL), 401);
		ck_assert_int_eq(call(methods[m], "/api/v1/embedder", KD_ADMIN,
				      b, NULL), 403);
		ck_assert_int_eq(call(methods[m],
				      "/api/v1/admin/tenants/shop-a/embedder",
				      SKA, b, NULL), 403);
		ck_assert_int_eq(call(methods[m],
				      "/api/v1/admin/tenants/shop-a/embedder",
				      PKA, b, NULL), 403);
		ck_assert_int_eq(call(methods[m],
				      "/api/v1/admin/tenants/nobody/embedder",
				      KD_ADMIN, b, NULL), 404);
	}
	/* set with a key: the key never comes back */
	ck_assert_int_eq(put_conf(SKA,
				  "{\"url\":\"https://user:pw@emb.example/v1"
				  "?key=q1\",\"model\":\"m-1\",\"dim\":8,"
				  "\"timeout_ms\":2500,\"api_key\":"
				  "\"very-secret-1\"}",
				  NULL, 0),
			 200);
	for (int admin = 0; admin < 2; admin++) {
		ck_assert_int_eq(
			call("GET",
			     admin ? "/api/v1/admin/tenants/shop-a/embedder"
				   : "/api/v1/embedder",
			     admin ? KD_ADMIN : SKA, NULL, &o),
			200);
		char *t = cJSON_PrintUnformatted(o);
		ck_assert_msg(!strstr(t, "very-secret-1") && !strstr(t, "pw@") &&
				      !strstr(t, "q1"),
			      "a secret shows: %s", t);
		free(t);
		ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "configured")));
		ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "api_key_set")));
		ck_assert_ptr_null(cJSON_GetObjectItem(o, "api_key"));
		ck_assert_str_eq(cJSON_GetObjectItem(o, "url")->valuestring,
				 "https://***@emb.example/v1?***");
		ck_assert_str_eq(cJSON_GetObjectItem(o, "model")->valuestring,
				 "m-1");
		ck_assert_int_eq(cJSON_GetObjectItem(o, "dim")->valueint, 8);
		ck_assert_int_eq(cJSON_GetObjectItem(o, "timeout_ms")->valueint,
				 2500);
		cJSON_Delete(o);
	}
	/* shop-b has none */
	ck_assert_int_eq(call("GET", "/api/v1/embedder", SKB, NULL, &o), 200);
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(o, "configured")));
	cJSON_Delete(o);
	/* a change without api_key keeps it; "" removes it */
	ck_assert_int_eq(put_conf(SKA, "{\"url\":\"http://h/\",\"dim\":8}",
				  NULL, 0),
			 200);
	ck_assert_int_eq(call("GET", "/api/v1/embedder", SKA, NULL, &o), 200);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "api_key_set")));
	cJSON_Delete(o);
	ck_assert_int_eq(put_conf(SKA, "{\"url\":\"http://h/\",\"dim\":8,"
				       "\"api_key\":\"\"}",
				  NULL, 0),
			 200);
	ck_assert_int_eq(call("GET", "/api/v1/embedder", SKA, NULL, &o), 200);
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(o, "api_key_set")));
	cJSON_Delete(o);
	/* the admin sets and removes it too */
	ck_assert_int_eq(call("PUT", "/api/v1/admin/tenants/shop-b/embedder",
			      KD_ADMIN, body, NULL), 200);
	ck_assert_int_eq(call("GET", "/api/v1/embedder", SKB, NULL, &o), 200);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "configured")));
	cJSON_Delete(o);
	ck_assert_int_eq(call("DELETE",
			      "/api/v1/admin/tenants/shop-b/embedder",
			      KD_ADMIN, NULL, &o), 200);
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(o, "configured")));
	cJSON_Delete(o);
	ck_assert_int_eq(call("DELETE", "/api/v1/embedder", SKA, NULL, &o),
			 200);
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(o, "configured")));
	cJSON_Delete(o);
	/* the old settings, the key with them, are gone from the store */
	knytt_store *st = NULL;
	uint64_t ta = 0;
	ck_assert_int_eq(knytt_store_open(S.uri, &st), 0);
	ck_assert_int_eq(knytt_store_tenant_find(st, "shop-a", &ta), 0);
	ck_assert_int_eq(knytt_store_use_tenant(st, ta), 0);
	int64_t v = 0;
	char *meta = NULL;
	ck_assert_int_eq(knytt_store_model_get(st, "knyttd-embedder", 0, NULL,
					       NULL, &meta, &v, NULL),
			 0);
	ck_assert_str_eq(meta, "{}");
	knytt_free(meta);
	ck_assert_int_eq(knytt_store_model_get(st, "knyttd-embedder", v - 1,
					       NULL, NULL, NULL, NULL, NULL),
			 KNYTT_ENOTFOUND);
	knytt_store_close(st);
}
END_TEST

START_TEST(each_tenant_uses_its_own_service)
{
	use_service(SKA, 0, "key-a");
	cJSON *o = NULL;
	/* an item of A without a vector: embedded by A's service */
	ck_assert_int_eq(call("POST", "/api/v1/items", SKA,
			      "{\"items\":[{\"item_id\":\"a-1\",\"title\":"
			      "\"red shoe\",\"description\":\"leather\"},"
			      "{\"item_id\":\"a-2\",\"title\":\"green hat\"}]}",
			      &o),
			 200);
	ck_assert_int_eq(cJSON_GetObjectItem(o, "accepted_count")->valueint, 2);
	cJSON_Delete(o);
	ck_assert(got(0, "red shoe leather"));
	ck_assert(got(0, "green hat "));
	/* a batch big enough for knyttd's bulk path: every item embedded */
	char *big = malloc(70 * 64 + 32);
	int bn = sprintf(big, "{\"items\":[");
	for (int i = 0; i < 70; i++)
		bn += sprintf(big + bn, "%s{\"item_id\":\"bulk-%d\",\"title\":"
					"\"bulk item %d\"}",
			      i ? "," : "", i, i);
	sprintf(big + bn, "]}");
	ck_assert_int_eq(call("POST", "/api/v1/items", SKA, big, &o), 200);
	free(big);
	ck_assert_int_eq(cJSON_GetObjectItem(o, "accepted_count")->valueint, 70);
	cJSON_Delete(o);
	for (int i = 0; i < 70; i += 23) {
		char t[64];
		snprintf(t, sizeof t, "bulk item %d ", i);
		ck_assert_msg(got(0, t), "%s not embedded", t);
	}
	/* an item with its own vector is not sent */
	char body[1024];
	int n = snprintf(body, sizeof body, "{\"item_id\":\"a-3\",\"title\":"
					    "\"own vector\",\"embedding\":[");
	for (int i = 0; i < DIM; i++)
		n += snprintf(body + n, sizeof body - (size_t)n, "%s%d",
			      i ? "," : "", i == 3);
	snprintf(body + n, sizeof body - (size_t)n, "]}");
	ck_assert_int_eq(call("POST", "/api/v1/items", SKA, body, NULL), 200);
	ck_assert(!got(0, "own vector "));
	/* A's search text goes to A's service, with A's key, and the
	 * vector half finds the item of the same words */
	char ids[256];
	ck_assert_int_eq(search(SKA, "leather shoe red", ids, sizeof ids),
			 200);
	ck_assert(got(0, "leather shoe red"));
	ck_assert_msg(strstr(ids, "a-1:hybrid,") != NULL, "results %s", ids);
	pthread_mutex_lock(&F.mu);
	ck_assert_str_eq(F.auth[0], "Bearer key-a");
	pthread_mutex_unlock(&F.mu);
	/* B has no service: nothing of B reaches one */
	int before = calls(0);
	ck_assert_int_eq(call("POST", "/api/v1/items", SKB,
			      "{\"item_id\":\"b-1\",\"title\":\"blue coat\"}",
			      NULL),
			 200);
	ck_assert_int_eq(search(SKB, "blue coat", ids, sizeof ids), 200);
	ck_assert_str_eq(ids, "b-1:keyword,");
	ck_assert_int_eq(calls(0), before);
	ck_assert_int_eq(calls(1), 0);
	/* B gets its own service (no key): B's texts go there, not to A's */
	use_service(SKB, 1, NULL);
	ck_assert_int_eq(call("POST", "/api/v1/items", SKB,
			      "{\"item_id\":\"b-2\",\"title\":\"yellow scarf\"}",
			      NULL),
			 200);
	ck_assert_int_eq(search(SKB, "scarf yellow", ids, sizeof ids), 200);
	ck_assert(got(1, "yellow scarf "));
	ck_assert(got(1, "scarf yellow"));
	ck_assert(!got(0, "yellow scarf ") && !got(0, "scarf yellow"));
	ck_assert(!got(1, "red shoe leather"));
	pthread_mutex_lock(&F.mu);
	ck_assert_str_eq(F.auth[1], "");
	pthread_mutex_unlock(&F.mu);
	/* and A's next search still goes to A's */
	ck_assert_int_eq(search(SKA, "green hat", ids, sizeof ids), 200);
	ck_assert(got(0, "green hat") && !got(1, "green hat"));
	/* the service's vectors are served alone: nothing to train */
	ck_assert_int_eq(call("POST", "/api/v1/models/train", SKA, NULL, &o),
			 409);
	ck_assert_ptr_nonnull(strstr(
		cJSON_GetObjectItem(cJSON_GetObjectItem(o, "error"), "message")
			->valuestring,
		"embedding service"));
	cJSON_Delete(o);
	/* a service that refuses or cannot be reached: the item is not
	 * stored, and the client is told it was the service */
	char conf[256];
	snprintf(conf, sizeof conf, "{\"url\":\"http://127.0.0.1:%u/deny\","
				    "\"dim\":%d}", F.port, DIM);
	ck_assert_int_eq(put_conf(SKA, conf, NULL, 0), 200);
	ck_assert_int_eq(call("POST", "/api/v1/items", SKA,
			      "{\"item_id\":\"no-1\",\"title\":\"x\"}", &o),
			 502);
	ck_assert_str_eq(kd_code(o), "embedding_service");
	cJSON_Delete(o);
	ck_assert_int_eq(call("POST", "/api/v1/search", SKA,
			      "{\"query\":\"red\"}", &o),
			 502);
	ck_assert_str_eq(kd_code(o), "embedding_service");
	cJSON_Delete(o);
	ck_assert_int_eq(put_conf(SKA, "{\"url\":\"http://127.0.0.1:9/\","
				       "\"dim\":16,\"timeout_ms\":2000}",
				  NULL, 0),
			 200);
	ck_assert_int_eq(call("POST", "/api/v1/items", SKA,
			      "{\"item_id\":\"no-2\",\"title\":\"x\"}", NULL),
			 503);
	ck_assert_int_eq(call("GET", "/api/v1/items/no-1", SKA, NULL, NULL),
			 404);
	ck_assert_int_eq(call("GET", "/api/v1/items/no-2", SKA, NULL, NULL),
			 404);
	/* removed: A's search text no longer goes out */
	ck_assert_int_eq(call("DELETE", "/api/v1/embedder", SKA, NULL, NULL),
			 200);
	before = calls(0);
	ck_assert_int_eq(search(SKA, "red shoe", ids, sizeof ids), 200);
	ck_assert_int_eq(calls(0), before);
	ck_assert_msg(strstr(ids, "a-1:keyword,") != NULL, "results %s", ids);
}
END_TEST

/* Searches of A in threads while the main thread swaps A's engine. */
static atomic_int swap_stop, swap_bad, swap_done;

static void *searcher(void *arg)
{
	(void)arg;
	while (!atomic_load(&swap_stop)) {
		char ids[256];
		long st = search(SKA, "red shoe", ids, sizeof ids);
		if (st != 200)
			atomic_fetch_add(&swap_bad, 1);
		atomic_fetch_add(&swap_done, 1);
	}
	return NULL;
}

START_TEST(settings_survive_restart_and_swap_under_load)
{
	use_service(SKA, 0, "key-a");
	ck_assert_int_eq(call("POST", "/api/v1/items", SKA,
			      "{\"item_id\":\"a-1\",\"title\":\"red shoe\"}",
			      NULL),
			 200);
	/* restart on the same store: the settings are read back */
	ck_assert_int_eq(kd_stop(&S), 0);
	ck_assert_int_eq(kd_start(&S, NULL), 0);
	cJSON *o = NULL;
	ck_assert_int_eq(call("GET", "/api/v1/embedder", SKA, NULL, &o), 200);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "configured")));
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "api_key_set")));
	cJSON_Delete(o);
	char ids[256];
	ck_assert_int_eq(search(SKA, "shoe red", ids, sizeof ids), 200);
	ck_assert(got(0, "shoe red"));
	ck_assert_msg(strstr(ids, "a-1:hybrid,") != NULL, "results %s", ids);
	/* swaps while requests hold the engine: every search answers */
	pthread_t th[3];
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, searcher, NULL),
				 0);
	for (int i = 0; i < 6; i++) {
		if (i % 2)
			use_service(SKA, 0, "key-a");
		else
			ck_assert_int_eq(call("DELETE", "/api/v1/embedder", SKA,
					      NULL, NULL),
					 200);
		usleep(50000);
	}
	atomic_store(&swap_stop, 1);
	for (int i = 0; i < 3; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_gt(atomic_load(&swap_done), 0);
	ck_assert_int_eq(atomic_load(&swap_bad), 0);
	ck_assert_int_eq(call("GET", "/health", NULL, NULL, NULL), 200);
}
END_TEST

Suite *kdembed_suite(void)
{
	Suite *s = suite_create("kdembed");
	TCase *tc = tcase_create("embedder");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, routes_checks_and_credentials);
	tcase_add_test(tc, each_tenant_uses_its_own_service);
	tcase_add_test(tc, settings_survive_restart_and_swap_under_load);
	suite_add_tcase(s, tc);
	return s;
}
