/*
 * check_embedder.c -- the external embedding client against a local
 * server (libmicrohttpd, 127.0.0.1, ephemeral port) started inside each
 * test, so Check's fork mode gives every test a fresh server.
 *
 * The first path segment of the request selects the server's behaviour
 * ("/ok/v1/embeddings", "/slow/v1/embeddings", ...).  Correct answers
 * are a deterministic function of the text (fake_value), so a test knows
 * every float to expect; the values are multiples of 1/1024, exact in
 * both JSON and float.
 */
#include "testutil.h"

#include "knytt.h"

#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#define AUTH_KEY "sekrit-123"

/* ---- the fake embedding service ---------------------------------------- */

static struct {
	struct MHD_Daemon *d;
	unsigned port;
	atomic_int requests;    /* answered requests */
	atomic_int connections; /* TCP connections accepted */
	atomic_int stop;        /* makes /slow return at once */
	atomic_int seq;         /* per-behaviour counter (flaky, busyonce) */
	atomic_int inflight;    /* requests being served now */
	atomic_int max_inflight;
	int sizes[64];          /* inputs per request, in arrival order */
	double when_ms[64];     /* arrival time of each request */
	char last_path[256];
	char last_auth[256];
	char last_model[64];
	pthread_mutex_t lock;
} S;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The fake model: value j of the embedding of @p text, in [-1, 1]. */
static float fake_value(const char *text, unsigned j)
{
	uint64_t h = 1469598103934665603ULL; /* FNV-1a */
	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	uint64_t s = h ^ (uint64_t)j * 0x9e3779b97f4a7c15ULL;
	return (float)((int)(tu_rand(&s) % 2049) - 1024) / 1024.0f;
}

struct body {
	char *p;
	size_t n;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status,
			     char *text, const char *retry_after)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
		strlen(text), text, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "application/json");
	if (retry_after)
		MHD_add_response_header(r, "Retry-After", retry_after);
	enum MHD_Result ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ok;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status,
				   const char *msg, const char *retry_after)
{
	cJSON *root = cJSON_CreateObject();
	cJSON *err = cJSON_AddObjectToObject(root, "error");
	cJSON_AddStringToObject(err, "message", msg);
	char *t = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return reply(c, status, t, retry_after);
}

/* A correct answer for @p in, bent by @p mode. */
static char *answer(const cJSON *in, unsigned dim, const char *mode)
{
	int n = cJSON_GetArraySize(in);
	int shuffled = strcmp(mode, "shuffled") == 0;
	int dupindex = strcmp(mode, "dupindex") == 0;
	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "object", "list");
	cJSON *data = cJSON_AddArrayToObject(root, "data");
	int m = strcmp(mode, "count") == 0 ? n - 1 : n;
	for (int k = 0; k < m; k++) {
		int i = shuffled ? n - 1 - k : k; /* reversed, with index */
		const char *t = cJSON_GetArrayItem(in, i)->valuestring;
		cJSON *ent = cJSON_CreateObject();
		cJSON_AddStringToObject(ent, "object", "embedding");
		if (shuffled || dupindex)
			cJSON_AddNumberToObject(ent, "index", dupindex ? 0 : i);
		cJSON *emb = cJSON_AddArrayToObject(ent, "embedding");
		unsigned d = dim;
		if (strcmp(mode, "dim") == 0 && i == (n > 2 ? 2 : n - 1))
			d = dim + 1;
		for (unsigned j = 0; j < d; j++) {
			cJSON *v;
			if (strcmp(mode, "nan") == 0 && i == 0 && j == 3)
				v = cJSON_CreateRaw("1e999");
			else if (strcmp(mode, "string") == 0 && i == 1 &&
				 j == 0)
				v = cJSON_CreateString("0.5");
			else
				v = cJSON_CreateNumber(fake_value(t, j));
			cJSON_AddItemToArray(emb, v);
		}
		cJSON_AddItemToArray(data, ent);
	}
	cJSON_AddStringToObject(root, "model", "fake");
	char *s = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	return s;
}

/* Streams HUGE_ANSWER bytes of JSON whitespace: more than the client's
 * 64 MiB cap, without holding them in memory. */
#define HUGE_ANSWER (((size_t)64 << 20) + 4096)

static ssize_t huge_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	if (pos >= HUGE_ANSWER)
		return MHD_CONTENT_READER_END_OF_STREAM;
	size_t n = HUGE_ANSWER - (size_t)pos < max ? HUGE_ANSWER - (size_t)pos
						   : max;
	memset(buf, ' ', n);
	return (ssize_t)n;
}

/* A correct answer damaged by request number @p k: cut to k bytes
 * ("cut"), or with a few bytes replaced by JSON-significant characters
 * ("flip"). */
static char *damaged(const cJSON *in, const char *mode, int k)
{
	char *a = answer(in, 8, "ok");
	size_t len = strlen(a);
	if (strcmp(mode, "cut") == 0) {
		if ((size_t)k < len)
			a[k] = '\0';
		return a;
	}
	static const char alphabet[] = "{}[]\",:0123456789.eE+-\\ nulltrue";
	uint64_t s = (uint64_t)k * 7919 + 1;
	int flips = 1 + (int)(tu_rand(&s) % 3);
	for (int i = 0; i < flips; i++)
		a[tu_rand(&s) % len] =
			alphabet[tu_rand(&s) % (sizeof alphabet - 1)];
	return a;
}

static enum MHD_Result serve1(struct MHD_Connection *c, const char *url,
			      const char *method, struct body *b);

static enum MHD_Result serve(struct MHD_Connection *c, const char *url,
			     const char *method, struct body *b)
{
	int now = atomic_fetch_add(&S.inflight, 1) + 1;
	int max = atomic_load(&S.max_inflight);
	while (now > max &&
	       !atomic_compare_exchange_weak(&S.max_inflight, &max, now))
		;
	enum MHD_Result ok = serve1(c, url, method, b);
	atomic_fetch_sub(&S.inflight, 1);
	return ok;
}

static enum MHD_Result serve1(struct MHD_Connection *c, const char *url,
			      const char *method, struct body *b)
{
	int r = atomic_fetch_add(&S.requests, 1);
	const char *auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
						       "Authorization");
	pthread_mutex_lock(&S.lock);
	if (r < 64) {
		S.when_ms[r] = now_ms();
		S.sizes[r] = -1;
	}
	snprintf(S.last_path, sizeof S.last_path, "%s", url);
	snprintf(S.last_auth, sizeof S.last_auth, "%s", auth ? auth : "");
	pthread_mutex_unlock(&S.lock);

	const char *suffix = "/v1/embeddings";
	size_t ul = strlen(url), sl = strlen(suffix);
	if (strcmp(method, "POST") != 0 || ul <= sl ||
	    strcmp(url + ul - sl, suffix) != 0)
		return reply_error(c, 404, "no such route", NULL);
	char mode[64];
	snprintf(mode, sizeof mode, "%.*s", (int)(ul - sl - 1), url + 1);

	cJSON *req = cJSON_ParseWithLength(b->p ? b->p : "", b->n);
	const cJSON *in = cJSON_GetObjectItemCaseSensitive(req, "input");
	const cJSON *model = cJSON_GetObjectItemCaseSensitive(req, "model");
	int valid = cJSON_IsArray(in) && cJSON_GetArraySize(in) > 0;
	const cJSON *x;
	cJSON_ArrayForEach(x, in) valid = valid && cJSON_IsString(x);
	if (!valid) {
		cJSON_Delete(req);
		return reply_error(c, 400, "input must be an array of strings",
				   NULL);
	}
	unsigned dim = 8;
	pthread_mutex_lock(&S.lock);
	if (r < 64)
		S.sizes[r] = cJSON_GetArraySize(in);
	snprintf(S.last_model, sizeof S.last_model, "%s",
		 cJSON_IsString(model) ? model->valuestring : "");
	pthread_mutex_unlock(&S.lock);
	if (cJSON_IsString(model) &&
	    strncmp(model->valuestring, "dim-", 4) == 0)
		dim = (unsigned)atoi(model->valuestring + 4);

	enum MHD_Result ok;
	if (strcmp(mode, "slow") == 0) {
		for (int i = 0; i < 100 && !atomic_load(&S.stop); i++)
			usleep(10000);
		ok = reply(c, 200, answer(in, dim, "ok"), NULL);
	} else if (strcmp(mode, "delay") == 0) {
		usleep(30000); /* a service busy computing */
		ok = reply(c, 200, answer(in, dim, "ok"), NULL);
	} else if (strcmp(mode, "garbage") == 0) {
		ok = reply(c, 200, strdup("<html>this is {not json"), NULL);
	} else if (strcmp(mode, "error200") == 0) {
		ok = reply_error(c, 200, "quota exceeded", NULL);
	} else if (strcmp(mode, "auth") == 0 &&
		   (!auth || strcmp(auth, "Bearer " AUTH_KEY) != 0)) {
		/* echoes the key it got, as some real services do */
		char msg[300];
		snprintf(msg, sizeof msg, "Incorrect API key provided: %s",
			 auth && strlen(auth) > 7 ? auth + 7 : "(none)");
		ok = reply_error(c, 401, msg, NULL);
	} else if (strcmp(mode, "flaky") == 0 &&
		   atomic_fetch_add(&S.seq, 1) < 2) {
		ok = reply_error(c, 500, "model overloaded", NULL);
	} else if (strcmp(mode, "busy") == 0 ||
		   (strcmp(mode, "busyonce") == 0 &&
		    atomic_fetch_add(&S.seq, 1) < 1)) {
		ok = reply_error(c, 429, "rate limit", "0");
	} else if (strcmp(mode, "busywait1") == 0 &&
		   atomic_fetch_add(&S.seq, 1) < 1) {
		ok = reply_error(c, 503, "warming up", "1");
	} else if (strcmp(mode, "retryafter") == 0) {
		ok = reply_error(c, 429, "come back later", "3600");
	} else if (strcmp(mode, "cut") == 0 || strcmp(mode, "flip") == 0) {
		int k = atomic_fetch_add(&S.seq, 1);
		ok = reply(c, 200, damaged(in, mode, k), NULL);
	} else if (strcmp(mode, "huge") == 0) {
		struct MHD_Response *rs = MHD_create_response_from_callback(
			HUGE_ANSWER, 65536, huge_body, NULL, NULL);
		ok = MHD_queue_response(c, 200, rs);
		MHD_destroy_response(rs);
	} else if (strcmp(mode, "bad") == 0) {
		ok = reply_error(c, 400, "input too long", NULL);
	} else {
		ok = reply(c, 200, answer(in, dim, mode), NULL);
	}
	cJSON_Delete(req);
	return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **state)
{
	struct body *b = *state;
	if (!b) { /* first call: headers only */
		*state = calloc(1, sizeof *b);
		return *state ? MHD_YES : MHD_NO;
	}
	if (*upload_size) {
		char *p = realloc(b->p, b->n + *upload_size + 1);
		if (!p)
			return MHD_NO;
		memcpy(p + b->n, upload, *upload_size);
		b->p = p;
		b->n += *upload_size;
		b->p[b->n] = '\0';
		*upload_size = 0;
		return MHD_YES;
	}
	return serve(c, url, method, b);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
			 enum MHD_RequestTerminationCode why)
{
	struct body *b = *state;
	if (b) {
		free(b->p);
		free(b);
		*state = NULL;
	}
}

static void on_connection(void *cls, struct MHD_Connection *c, void **sock,
			  enum MHD_ConnectionNotificationCode why)
{
	if (why == MHD_CONNECTION_NOTIFY_STARTED)
		atomic_fetch_add(&S.connections, 1);
}

static void server_start(void)
{
	memset(&S, 0, sizeof S);
	pthread_mutex_init(&S.lock, NULL);
	/* the client must talk to 127.0.0.1 directly, never via a proxy */
	unsetenv("http_proxy");
	unsetenv("HTTP_PROXY");
	unsetenv("all_proxy");
	unsetenv("ALL_PROXY");
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = 0;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	S.d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
		0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, NULL,
		MHD_OPTION_END);
	ck_assert_ptr_nonnull(S.d);
	const union MHD_DaemonInfo *di =
		MHD_get_daemon_info(S.d, MHD_DAEMON_INFO_BIND_PORT);
	ck_assert_ptr_nonnull(di);
	S.port = di->port;
	ck_assert_uint_gt(S.port, 0);
}

static void server_stop(void)
{
	atomic_store(&S.stop, 1);
	if (S.d)
		MHD_stop_daemon(S.d);
	S.d = NULL;
	pthread_mutex_destroy(&S.lock);
}

static int requests(void)
{
	return atomic_load(&S.requests);
}

static int connections(void)
{
	return atomic_load(&S.connections);
}

/* An open embedder for behaviour @p mode of the local server. */
static knytt_embedder *emb_open(const char *mode, const char *model,
				long timeout_ms, unsigned retries,
				long backoff_ms)
{
	char url[128];
	snprintf(url, sizeof url, "http://127.0.0.1:%u/%s", S.port, mode);
	knytt_embedder *e;
	ck_assert_int_eq(knytt_embedder_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_url(e, url), KNYTT_OK);
	if (model)
		ck_assert_int_eq(knytt_embedder_set_model(e, model), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_timeout_ms(e, timeout_ms),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_retries(e, retries, backoff_ms),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_open(e), KNYTT_OK);
	return e;
}

static void check_rows(const char *const *texts, size_t n, const float *out,
		       unsigned dim)
{
	for (size_t i = 0; i < n; i++)
		for (unsigned j = 0; j < dim; j++)
			ck_assert_msg(out[i * dim + j] ==
					      fake_value(texts[i], j),
				      "row %zu value %u: %g, expected %g", i, j,
				      (double)out[i * dim + j],
				      (double)fake_value(texts[i], j));
}

static void assert_msg_has(const char *needle)
{
	ck_assert_msg(strstr(knytt_errmsg(), needle) != NULL,
		      "message \"%s\" lacks \"%s\"", knytt_errmsg(), needle);
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(settings_and_state)
{
	knytt_embedder *e;
	ck_assert_int_eq(knytt_embedder_create(NULL), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_create(&e), KNYTT_OK);
	ck_assert_uint_eq(knytt_embedder_dim(e), 0);
	ck_assert_uint_eq(knytt_embedder_dim(NULL), 0);
	ck_assert_int_eq(knytt_embedder_set_url(NULL, "http://x"),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_set_url(e, NULL), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_set_url(e, ""), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_set_url(e, "ftp://x/"), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_set_url(e, "http://"), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_set_url(e, "http:///v1"),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_set_url(e, "http://a b/"),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_set_api_key(e, "abc\r\nX-Evil: 1"),
			 KNYTT_EINVAL);
	ck_assert_ptr_null(strstr(knytt_errmsg(), "abc"));
	ck_assert_int_eq(knytt_embedder_set_model(e, "\xff"), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_set_timeout_ms(e, -1), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_set_timeout_ms(e, 3600001),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_set_retries(e, 101, 10), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_set_retries(e, 1, -5), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_set_batch(e, 65537), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_set_dim(e, 65537), KNYTT_EINVAL);
	const char *t[] = { "x" };
	float out[8];
	ck_assert_int_eq(knytt_embedder_embed(e, 1, t, out, 8), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_embedder_probe(e), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_embedder_open(e), KNYTT_EINVAL); /* no URL */
	ck_assert_int_eq(knytt_embedder_set_url(e, "http://127.0.0.1:9/"),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_timeout_ms(e, 0), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_batch(e, 0), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_dim(e, 8), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_api_key(e, "k"), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_api_key(e, NULL), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_open(e), KNYTT_OK);
	ck_assert_uint_eq(knytt_embedder_dim(e), 8);
	ck_assert_int_eq(knytt_embedder_open(e), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_embedder_set_model(e, "m"), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_embedder_set_url(e, "http://x"), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_embedder_set_api_key(e, "k"), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_embedder_set_timeout_ms(e, 5), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_embedder_set_retries(e, 1, 1), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_embedder_set_batch(e, 1), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_embedder_set_dim(e, 1), KNYTT_ESTATE);
	/* argument checks come before any network traffic */
	ck_assert_int_eq(knytt_embedder_embed(e, 0, NULL, NULL, 8), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_embed(e, 1, NULL, out, 8),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_embed(e, 1, t, NULL, 8), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_embed(e, 1, t, out, 4), KNYTT_EINVAL);
	assert_msg_has("4 dimensions per row, the embedder has 8");
	ck_assert_int_eq(knytt_embedder_embed(NULL, 1, t, out, 8),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_probe(e), 8); /* known: no request */
	knytt_embedder_close(e);
	knytt_embedder_close(NULL);
}
END_TEST

START_TEST(url_forms)
{
	server_start();
	char base[64], url[160];
	snprintf(base, sizeof base, "http://127.0.0.1:%u", S.port);
	const char *forms[] = { "/ok", "/ok/", "/ok//", "/ok/v1",
				"/ok/v1/", "/ok/v1/embeddings",
				"/ok/v1/embeddings/" };
	const char *t[] = { "hello" };
	float out[8];
	for (size_t i = 0; i < sizeof forms / sizeof *forms; i++) {
		snprintf(url, sizeof url, "%s%s", base, forms[i]);
		knytt_embedder *e;
		ck_assert_int_eq(knytt_embedder_create(&e), KNYTT_OK);
		ck_assert_int_eq(knytt_embedder_set_url(e, url), KNYTT_OK);
		ck_assert_int_eq(knytt_embedder_open(e), KNYTT_OK);
		ck_assert_int_eq(knytt_embedder_embed(e, 1, t, out, 8),
				 KNYTT_OK);
		ck_assert_str_eq(S.last_path, "/ok/v1/embeddings");
		check_rows(t, 1, out, 8);
		knytt_embedder_close(e);
	}
	/* A query string stays after the path; neither it nor the
	 * user-info shows in messages. */
	snprintf(url, sizeof url,
		 "http://joe:pa55word@127.0.0.1:%u/bad/?api_key=QSECRET",
		 S.port);
	knytt_embedder *e;
	ck_assert_int_eq(knytt_embedder_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_url(e, url), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_open(e), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_embed(e, 1, t, out, 8), KNYTT_EIO);
	ck_assert_str_eq(S.last_path, "/bad/v1/embeddings");
	assert_msg_has("HTTP 400");
	assert_msg_has("127.0.0.1");
	assert_msg_has("/bad/v1/embeddings");
	ck_assert_ptr_null(strstr(knytt_errmsg(), "QSECRET"));
	ck_assert_ptr_null(strstr(knytt_errmsg(), "pa55word"));
	ck_assert_ptr_null(strstr(knytt_errmsg(), "joe"));
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

START_TEST(values_order_and_escaping)
{
	server_start();
	knytt_embedder *e = emb_open("ok", "text-embedding-test", 2000, 0, 0);
	const char *t[] = { "plain",
			    "quote \" and back\\slash",
			    "new\nline\ttab\r\x01",
			    "\xc3\xbcn\xc3\xaf\x63\xc3\xb8\x64\xc3\xa9 "
			    "\xe2\x9c\x93 "
			    "\xf0\x9f\x99\x82",
			    "",
			    "</script>{\"input\":[]}" };
	size_t n = sizeof t / sizeof *t;
	float out[6 * 8];
	ck_assert_uint_eq(knytt_embedder_dim(e), 0);
	ck_assert_int_eq(knytt_embedder_embed(e, n, t, out, 8), KNYTT_OK);
	check_rows(t, n, out, 8);
	ck_assert_uint_eq(knytt_embedder_dim(e), 8); /* learned */
	ck_assert_int_eq(requests(), 1);
	ck_assert_int_eq(S.sizes[0], (int)n);
	ck_assert_str_eq(S.last_model, "text-embedding-test");
	ck_assert_str_eq(S.last_auth, ""); /* no key, no header */
	/* now known: a different row length is refused before sending */
	ck_assert_int_eq(knytt_embedder_embed(e, 1, t, out, 4), KNYTT_EINVAL);
	ck_assert_int_eq(requests(), 1);
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

START_TEST(index_field_is_honoured)
{
	server_start();
	knytt_embedder *e = emb_open("shuffled", NULL, 2000, 0, 0);
	const char *t[] = { "a", "b", "c", "d", "e" };
	float out[5 * 8];
	ck_assert_int_eq(knytt_embedder_embed(e, 5, t, out, 8), KNYTT_OK);
	check_rows(t, 5, out, 8);
	ck_assert_str_eq(S.last_model, ""); /* no model: member left out */
	knytt_embedder_close(e);
	e = emb_open("dupindex", NULL, 2000, 0, 0);
	ck_assert_int_eq(knytt_embedder_embed(e, 3, t, out, 8), KNYTT_EPROTO);
	assert_msg_has("two embeddings for input 0");
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

START_TEST(batching_splits_in_order)
{
	server_start();
	char url[96];
	snprintf(url, sizeof url, "http://127.0.0.1:%u/ok", S.port);
	knytt_embedder *e;
	ck_assert_int_eq(knytt_embedder_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_url(e, url), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_model(e, "dim-5"), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_batch(e, 4), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_open(e), KNYTT_OK);
	char buf[10][16];
	const char *t[10];
	for (int i = 0; i < 10; i++) {
		snprintf(buf[i], sizeof buf[i], "item %d", i);
		t[i] = buf[i];
	}
	float out[10 * 5];
	ck_assert_int_eq(knytt_embedder_embed(e, 10, t, out, 5), KNYTT_OK);
	check_rows(t, 10, out, 5);
	ck_assert_int_eq(requests(), 3);
	ck_assert_int_eq(S.sizes[0], 4);
	ck_assert_int_eq(S.sizes[1], 4);
	ck_assert_int_eq(S.sizes[2], 2);
	/* every batch went over the one kept-alive connection */
	ck_assert_int_eq(connections(), 1);
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

START_TEST(one_text_reuses_connection)
{
	server_start();
	knytt_embedder *e = emb_open("ok", NULL, 2000, 0, 0);
	float out[8];
	for (int i = 0; i < 20; i++) {
		char q[32];
		snprintf(q, sizeof q, "query %d", i);
		const char *t[] = { q };
		ck_assert_int_eq(knytt_embedder_embed(e, 1, t, out, 8),
				 KNYTT_OK);
		check_rows(t, 1, out, 8);
	}
	ck_assert_int_eq(requests(), 20);
	ck_assert_int_eq(connections(), 1);
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

START_TEST(timeout_is_retried_then_reported)
{
	server_start();
	knytt_embedder *e = emb_open("slow", NULL, 200, 1, 10);
	const char *t[] = { "x" };
	float out[8];
	ck_assert_int_eq(knytt_embedder_embed(e, 1, t, out, 8),
			 KNYTT_ETIMEDOUT);
	assert_msg_has("timed out after 200 ms (2 attempts)");
	ck_assert_int_eq(requests(), 2);
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

START_TEST(garbage_is_a_protocol_error)
{
	server_start();
	knytt_embedder *e = emb_open("garbage", NULL, 2000, 3, 1);
	const char *t[] = { "x" };
	float out[8];
	ck_assert_int_eq(knytt_embedder_embed(e, 1, t, out, 8), KNYTT_EPROTO);
	assert_msg_has("not JSON");
	assert_msg_has("<html>this is");
	ck_assert_int_eq(requests(), 1); /* not retried */
	knytt_embedder_close(e);
	e = emb_open("error200", NULL, 2000, 3, 1);
	ck_assert_int_eq(knytt_embedder_embed(e, 1, t, out, 8), KNYTT_EPROTO);
	assert_msg_has("no \"data\" array");
	assert_msg_has("quota exceeded");
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

START_TEST(every_truncation_is_a_protocol_error)
{
	server_start();
	const char *t[] = { "first", "second" };
	float out[2 * 8];
	knytt_embedder *e = emb_open("ok", NULL, 2000, 0, 0);
	ck_assert_int_eq(knytt_embedder_embed(e, 2, t, out, 8), KNYTT_OK);
	knytt_embedder_close(e);
	/* the length of the intact answer, as the server makes it */
	cJSON *in = cJSON_CreateStringArray(t, 2);
	char *whole = answer(in, 8, "ok");
	int len = (int)strlen(whole);
	free(whole);
	cJSON_Delete(in);
	e = emb_open("cut", NULL, 2000, 0, 0);
	for (int k = 0; k < len; k++) {
		memset(out, 0, sizeof out);
		ck_assert_msg(knytt_embedder_embed(e, 2, t, out, 8) ==
				      KNYTT_EPROTO,
			      "answer cut to %d of %d bytes: %s", k, len,
			      knytt_errmsg());
	}
	ck_assert_int_eq(knytt_embedder_embed(e, 2, t, out, 8), KNYTT_OK);
	check_rows(t, 2, out, 8);
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

START_TEST(damaged_answers_never_pass_bad_values)
{
	server_start();
	const char *t[] = { "first", "second" };
	float out[2 * 8];
	knytt_embedder *e = emb_open("flip", NULL, 2000, 0, 0);
	int n = tu_sanitize() ? 150 : 400, passed = 0;
	for (int k = 0; k < n; k++) {
		int rc = knytt_embedder_embed(e, 2, t, out, 8);
		ck_assert_msg(rc == KNYTT_OK || rc == KNYTT_EPROTO,
			      "damaged answer %d: %s (%s)", k,
			      knytt_errname(rc), knytt_errmsg());
		/* OK: a harmless change, or a changed digit */
		if (rc == KNYTT_OK) {
			passed++;
			for (int i = 0; i < 2 * 8; i++)
				ck_assert(isfinite(out[i]));
		}
	}
	/* most damage is caught: a flip lands in a number only sometimes */
	ck_assert_int_lt(passed, n / 2);
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

START_TEST(oversized_answer_is_cut)
{
	server_start();
	const char *t[] = { "x" };
	float out[8];
	knytt_embedder *e = emb_open("huge", NULL, 20000, 2, 1);
	ck_assert_int_eq(knytt_embedder_embed(e, 1, t, out, 8), KNYTT_EPROTO);
	assert_msg_has("larger than 64 MiB");
	ck_assert_int_eq(requests(), 1); /* not retried */
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

START_TEST(wrong_count_and_dimension)
{
	server_start();
	const char *t[] = { "a", "b", "c", "d" };
	float out[4 * 16];
	knytt_embedder *e = emb_open("count", NULL, 2000, 0, 0);
	ck_assert_int_eq(knytt_embedder_embed(e, 4, t, out, 8), KNYTT_EPROTO);
	assert_msg_has("answer has 3 embeddings for 4 inputs");
	ck_assert_uint_eq(knytt_embedder_dim(e), 0); /* nothing learned */
	knytt_embedder_close(e);

	e = emb_open("dim", NULL, 2000, 0, 0);
	ck_assert_int_eq(knytt_embedder_embed(e, 4, t, out, 8), KNYTT_EPROTO);
	assert_msg_has("embedding 2 has 9 dimensions, expected 8");
	knytt_embedder_close(e);

	/* a set dimension the server does not give */
	char url[96];
	snprintf(url, sizeof url, "http://127.0.0.1:%u/ok", S.port);
	ck_assert_int_eq(knytt_embedder_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_url(e, url), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_dim(e, 16), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_open(e), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_embed(e, 4, t, out, 16), KNYTT_EPROTO);
	assert_msg_has("embedding 0 has 8 dimensions, expected 16");
	knytt_embedder_close(e);

	/* the message counts inputs across batches */
	ck_assert_int_eq(knytt_embedder_create(&e), KNYTT_OK);
	snprintf(url, sizeof url, "http://127.0.0.1:%u/dim", S.port);
	ck_assert_int_eq(knytt_embedder_set_url(e, url), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_batch(e, 1), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_open(e), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_embed(e, 4, t, out, 8), KNYTT_EPROTO);
	assert_msg_has("embedding 0 has 9 dimensions"); /* batch of one */
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

START_TEST(non_finite_values_are_refused)
{
	server_start();
	const char *t[] = { "a", "b" };
	float out[2 * 8];
	knytt_embedder *e = emb_open("nan", NULL, 2000, 0, 0);
	ck_assert_int_eq(knytt_embedder_embed(e, 2, t, out, 8), KNYTT_EPROTO);
	assert_msg_has("embedding 0 value 3 is not a finite float");
	knytt_embedder_close(e);
	e = emb_open("string", NULL, 2000, 0, 0);
	ck_assert_int_eq(knytt_embedder_embed(e, 2, t, out, 8), KNYTT_EPROTO);
	assert_msg_has("embedding 1 value 0 is not a finite float");
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

START_TEST(api_key_sent_and_never_shown)
{
	server_start();
	char url[96];
	snprintf(url, sizeof url, "http://127.0.0.1:%u/auth", S.port);
	const char *t[] = { "x", "y" };
	float out[2 * 8];
	knytt_embedder *e;
	ck_assert_int_eq(knytt_embedder_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_url(e, url), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_api_key(e, AUTH_KEY), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_open(e), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_embed(e, 2, t, out, 8), KNYTT_OK);
	check_rows(t, 2, out, 8);
	ck_assert_str_eq(S.last_auth, "Bearer " AUTH_KEY);
	knytt_embedder_close(e);

	ck_assert_int_eq(knytt_embedder_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_url(e, url), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_api_key(e, "wrong-KEY-42"),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_retries(e, 3, 1), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_open(e), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_embed(e, 2, t, out, 8), KNYTT_EAUTH);
	ck_assert_int_eq(requests(), 2); /* the 401 was not retried */
	assert_msg_has("HTTP 401");
	assert_msg_has("Incorrect API key provided: ***");
	ck_assert_ptr_null(strstr(knytt_errmsg(), "wrong-KEY-42"));
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

START_TEST(server_errors_retried_with_backoff)
{
	server_start();
	const char *t[] = { "p", "q", "r" };
	float out[3 * 8];
	knytt_embedder *e = emb_open("flaky", NULL, 2000, 2, 40);
	ck_assert_int_eq(knytt_embedder_embed(e, 3, t, out, 8), KNYTT_OK);
	check_rows(t, 3, out, 8);
	ck_assert_int_eq(requests(), 3); /* 500, 500, 200 */
	/* waits are drawn from [d/2, d] with d = 40 ms, then 80 ms */
	ck_assert_double_ge(S.when_ms[1] - S.when_ms[0], 20.0);
	ck_assert_double_ge(S.when_ms[2] - S.when_ms[1], 40.0);
	knytt_embedder_close(e);
	server_stop();

	server_start(); /* fresh counters: two 500s, one retry is too few */
	e = emb_open("flaky", NULL, 2000, 1, 1);
	ck_assert_int_eq(knytt_embedder_embed(e, 3, t, out, 8), KNYTT_EIO);
	ck_assert_int_eq(requests(), 2);
	assert_msg_has("HTTP 500 after 2 attempts");
	assert_msg_has("model overloaded");
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

START_TEST(rate_limit_429)
{
	server_start();
	const char *t[] = { "x" };
	float out[8];
	knytt_embedder *e = emb_open("busyonce", NULL, 2000, 2, 1);
	ck_assert_int_eq(knytt_embedder_embed(e, 1, t, out, 8), KNYTT_OK);
	check_rows(t, 1, out, 8);
	ck_assert_int_eq(requests(), 2);
	knytt_embedder_close(e);

	e = emb_open("busy", NULL, 2000, 2, 1);
	ck_assert_int_eq(knytt_embedder_embed(e, 1, t, out, 8), KNYTT_EBUSY);
	ck_assert_int_eq(requests(), 2 + 3);
	assert_msg_has("HTTP 429 after 3 attempts");
	knytt_embedder_close(e);

	/* Retry-After: 1 on a 503 makes the client wait a second, not the
	 * 1 ms backoff */
	atomic_store(&S.seq, 0);
	e = emb_open("busywait1", NULL, 2000, 2, 1);
	ck_assert_int_eq(knytt_embedder_embed(e, 1, t, out, 8), KNYTT_OK);
	ck_assert_int_eq(requests(), 5 + 2);
	ck_assert_double_ge(S.when_ms[6] - S.when_ms[5], 1000.0);
	knytt_embedder_close(e);

	e = emb_open("retryafter", NULL, 2000, 2, 1);
	ck_assert_int_eq(knytt_embedder_embed(e, 1, t, out, 8), KNYTT_EBUSY);
	ck_assert_int_eq(requests(), 7 + 1); /* an hour is too long to wait */
	assert_msg_has("retry after 3600 s");
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

START_TEST(client_errors_not_retried)
{
	server_start();
	const char *t[] = { "x" };
	float out[8];
	knytt_embedder *e = emb_open("bad", NULL, 2000, 3, 1);
	ck_assert_int_eq(knytt_embedder_embed(e, 1, t, out, 8), KNYTT_EIO);
	ck_assert_int_eq(requests(), 1);
	assert_msg_has("HTTP 400 after 1 attempt: \"input too long\"");
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

START_TEST(connection_refused)
{
	server_start();
	unsigned port = S.port;
	server_stop(); /* nobody listens there now */
	char url[96];
	snprintf(url, sizeof url, "http://127.0.0.1:%u/", port);
	knytt_embedder *e;
	ck_assert_int_eq(knytt_embedder_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_url(e, url), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_timeout_ms(e, 500), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_retries(e, 2, 1), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_open(e), KNYTT_OK);
	const char *t[] = { "x" };
	float out[8];
	ck_assert_int_eq(knytt_embedder_embed(e, 1, t, out, 8), KNYTT_EIO);
	assert_msg_has("(3 attempts)");
	assert_msg_has("onnect");
	ck_assert_int_eq(knytt_embedder_probe(e), KNYTT_EIO);
	knytt_embedder_close(e);
}
END_TEST

START_TEST(bad_texts_rejected_before_sending)
{
	server_start();
	knytt_embedder *e = emb_open("ok", NULL, 2000, 0, 0);
	float out[3 * 8];
	const char *t1[] = { "fine", NULL };
	ck_assert_int_eq(knytt_embedder_embed(e, 2, t1, out, 8), KNYTT_EINVAL);
	assert_msg_has("text 1 is NULL");
	const char *bad[] = {
		"ab\xc3\x28",         /* bad continuation */
		"\xc0\xaf",           /* overlong '/' */
		"\xed\xa0\x80",       /* surrogate */
		"\xf4\x90\x80\x80",   /* above U+10FFFF */
		"\xe2\x82",           /* truncated */
		"\x80",               /* lone continuation */
	};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		const char *t[] = { "ok", "fine", bad[i] };
		ck_assert_int_eq(knytt_embedder_embed(e, 3, t, out, 8),
				 KNYTT_EINVAL);
		assert_msg_has("text 2 is not valid UTF-8");
	}
	ck_assert_int_eq(requests(), 0);
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

START_TEST(probe_learns_dimension)
{
	server_start();
	knytt_embedder *e = emb_open("ok", "dim-12", 2000, 0, 0);
	ck_assert_uint_eq(knytt_embedder_dim(e), 0);
	ck_assert_int_eq(knytt_embedder_probe(e), 12);
	ck_assert_uint_eq(knytt_embedder_dim(e), 12);
	ck_assert_int_eq(knytt_embedder_probe(e), 12);
	ck_assert_int_eq(requests(), 1);
	const char *t[] = { "x" };
	float out[12];
	ck_assert_int_eq(knytt_embedder_embed(e, 1, t, out, 8), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_embed(e, 1, t, out, 12), KNYTT_OK);
	check_rows(t, 1, out, 12);
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

START_TEST(parallel_batches)
{
	server_start();
	char url[96];
	snprintf(url, sizeof url, "http://127.0.0.1:%u/delay", S.port);
	knytt_embedder *e;
	ck_assert_int_eq(knytt_embedder_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_parallel(e, 65), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_embedder_set_url(e, url), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_batch(e, 3), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_parallel(e, 4), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_open(e), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_parallel(e, 2), KNYTT_ESTATE);
	char buf[40][16];
	const char *t[40];
	for (int i = 0; i < 40; i++) {
		snprintf(buf[i], sizeof buf[i], "doc %d", i);
		t[i] = buf[i];
	}
	float out[40 * 8];
	ck_assert_int_eq(knytt_embedder_embed(e, 40, t, out, 8), KNYTT_OK);
	check_rows(t, 40, out, 8);
	ck_assert_int_eq(requests(), 14); /* 13 batches of 3 and one of 1 */
	int total = 0;
	for (int r = 0; r < 14; r++)
		total += S.sizes[r];
	ck_assert_int_eq(total, 40);
	/* several requests were in flight at once, never more than 4 */
	int max_inflight = atomic_load(&S.max_inflight);
	ck_assert_int_ge(max_inflight, 2);
	ck_assert_int_le(max_inflight, 4);
	knytt_embedder_close(e);

	/* a failure in one batch (inputs 6..8 here) fails the call, with
	 * that batch's message carried over from the thread that saw it */
	snprintf(url, sizeof url, "http://127.0.0.1:%u/count", S.port);
	ck_assert_int_eq(knytt_embedder_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_url(e, url), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_batch(e, 3), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_set_parallel(e, 4), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_open(e), KNYTT_OK);
	ck_assert_int_eq(knytt_embedder_embed(e, 12, t, out, 8), KNYTT_EPROTO);
	assert_msg_has("answer has 2 embeddings for 3 inputs");
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

#define NTHREADS 4
#define NCALLS 15

struct worker {
	knytt_embedder *e;
	int id, failures;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	for (int c = 0; c < NCALLS; c++) {
		char b[3][32];
		const char *t[3];
		int n = 1 + c % 3;
		for (int i = 0; i < n; i++) {
			snprintf(b[i], sizeof b[i], "w%d c%d i%d", w->id, c, i);
			t[i] = b[i];
		}
		float out[3 * 8];
		if (knytt_embedder_embed(w->e, (size_t)n, t, out, 8) != 0) {
			w->failures++;
			continue;
		}
		for (int i = 0; i < n; i++)
			for (unsigned j = 0; j < 8; j++)
				if (out[i * 8 + j] != fake_value(t[i], j))
					w->failures++;
	}
	return NULL;
}

START_TEST(one_handle_many_threads)
{
	server_start();
	knytt_embedder *e = emb_open("ok", NULL, 5000, 0, 0);
	pthread_t th[NTHREADS];
	struct worker w[NTHREADS];
	for (int i = 0; i < NTHREADS; i++) {
		w[i] = (struct worker){ e, i, 0 };
		ck_assert_int_eq(
			pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < NTHREADS; i++) {
		pthread_join(th[i], NULL);
		ck_assert_int_eq(w[i].failures, 0);
	}
	ck_assert_int_eq(requests(), NTHREADS * NCALLS);
	/* connections are pooled: at most one per concurrent caller */
	ck_assert_int_le(connections(), NTHREADS);
	ck_assert_uint_eq(knytt_embedder_dim(e), 8);
	knytt_embedder_close(e);
	server_stop();
}
END_TEST

/* ---- the engine around a slow service ------------------------------------ */

typedef struct slow_search {
	knytt_engine *e;
	int rc;
	atomic_int done;
} slow_search;

static void *slow_search_main(void *p)
{
	slow_search *a = p;
	knytt_result r[5] = {{.struct_size = sizeof(knytt_result)}};
	a->rc = knytt_engine_search(a->e, "anything at all", NULL, 0, 5, NULL,
				    "shopper-a", r, NULL);
	atomic_store(&a->done, 1);
	return NULL;
}

/*
 * A search whose query text is with the embedding service (a one-second
 * answer) holds no engine lock: another shopper's recommend, feedback and
 * keyword search all return while it waits.  (The engine used to call the
 * service under its read lock, and recommend and feedback took the write
 * lock: both waited for the service.)
 */
START_TEST(slow_service_blocks_no_other_query)
{
	server_start();
	knytt_embedder *emb = emb_open("slow", "dim-8", 5000, 0, 0);
	char db[128], uri[160];
	snprintf(db, sizeof db, "/tmp/knytt-embengine-%d.db", (int)getpid());
	tu_rm_db(db);
	snprintf(uri, sizeof uri, "sqlite:%s", db);
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_model(e, KNYTT_MODEL_EXTERNAL),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, 8), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_embedder(e, emb), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_open(e, uri), KNYTT_OK);
	/* items with the caller's vectors: nothing is embedded at ingest */
	for (int i = 0; i < 20; i++) {
		char ext[16], title[32];
		snprintf(ext, sizeof ext, "it%d", i);
		snprintf(title, sizeof title, "lamp number %d", i);
		knytt_item it;
		memset(&it, 0, sizeof it);
		it.struct_size = sizeof it;
		it.ext_id = ext;
		it.title = title;
		it.price = 10 + i;
		it.in_stock = 1;
		float v[8];
		for (int j = 0; j < 8; j++)
			v[j] = fake_value(title, (unsigned)j);
		ck_assert_int_eq(knytt_engine_item_upsert(e, &it, v, 8),
				 KNYTT_OK);
	}
	ck_assert_int_eq(knytt_engine_feedback(e, "shopper-b", "it3", "view",
					       0, 0),
			 KNYTT_OK);
	slow_search a = { .e = e };
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, slow_search_main, &a), 0);
	/* the search is with the service (answers after one second) */
	double t0 = now_ms();
	while (requests() < 1 && now_ms() - t0 < 5000)
		usleep(1000);
	ck_assert_int_ge(requests(), 1);
	knytt_result r[5] = {{.struct_size = sizeof(knytt_result)}};
	ck_assert_int_ge(knytt_engine_recommend(e, "shopper-b", 5, NULL, NULL,
						r),
			 1);
	ck_assert_int_eq(knytt_engine_feedback(e, "shopper-b", "it4", "click",
					       0, 0),
			 KNYTT_OK);
	/* a vector query (nothing to embed) for a third shopper */
	float q[8] = { 1, 0, 0, 0, 0, 0, 0, 0 };
	ck_assert_int_ge(knytt_engine_search(e, NULL, q, 8, 5, NULL,
					     "shopper-c", r, NULL),
			 1);
	ck_assert_msg(!atomic_load(&a.done),
		      "the other queries waited for the embedding service");
	pthread_join(th, NULL);
	ck_assert_int_ge(a.rc, 0);
	knytt_engine_close(e);
	knytt_embedder_close(emb);
	server_stop();
	tu_rm_db(db);
}
END_TEST

Suite *embedder_suite(void)
{
	Suite *s = suite_create("embedder");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, settings_and_state);
	tcase_add_test(tc, url_forms);
	tcase_add_test(tc, values_order_and_escaping);
	tcase_add_test(tc, index_field_is_honoured);
	tcase_add_test(tc, batching_splits_in_order);
	tcase_add_test(tc, one_text_reuses_connection);
	tcase_add_test(tc, timeout_is_retried_then_reported);
	tcase_add_test(tc, garbage_is_a_protocol_error);
	tcase_add_test(tc, every_truncation_is_a_protocol_error);
	tcase_add_test(tc, damaged_answers_never_pass_bad_values);
	tcase_add_test(tc, oversized_answer_is_cut);
	tcase_add_test(tc, wrong_count_and_dimension);
	tcase_add_test(tc, non_finite_values_are_refused);
	tcase_add_test(tc, api_key_sent_and_never_shown);
	tcase_add_test(tc, server_errors_retried_with_backoff);
	tcase_add_test(tc, rate_limit_429);
	tcase_add_test(tc, client_errors_not_retried);
	tcase_add_test(tc, connection_refused);
	tcase_add_test(tc, bad_texts_rejected_before_sending);
	tcase_add_test(tc, probe_learns_dimension);
	tcase_add_test(tc, one_handle_many_threads);
	tcase_add_test(tc, parallel_batches);
	tcase_add_test(tc, slow_service_blocks_no_other_query);
	suite_add_tcase(s, tc);
	return s;
}
