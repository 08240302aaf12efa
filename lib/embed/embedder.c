/*
 * embedder.c -- client for an external embedding service speaking the
 * common /v1/embeddings JSON protocol, over libcurl.
 *
 * One request per batch of at most e->batch inputs:
 *     POST <url>  {"model": "...", "input": ["t0", "t1", ...]}
 *     200         {"data": [{"index": 0, "embedding": [..]}, ...], ...}
 *
 * Design notes.
 *
 *  - Latency of one short text (a search query) is dominated by the
 *    connection set-up, not by JSON.  So easy handles are pooled in the
 *    embedder: a call takes an idle handle, whose connection cache keeps
 *    the TCP (and TLS) connection to the server alive, and gives it back.
 *    Each handle is used by one thread at a time, which is all libcurl
 *    asks (libcurl-thread(3)); the pool itself is guarded by a mutex held
 *    only to push or pop a pointer.
 *  - Retries: timeouts, connection errors, 429 and 5xx are transient by
 *    nature; other 4xx answers and malformed 200 answers would fail the
 *    same way again, so they are not retried.  Waits double from the base
 *    backoff with "equal jitter" (uniform in [d/2, d]), so clients that
 *    failed together do not retry together, yet each waits at least d/2.
 *  - The answer is read into a buffer capped at KNYTT__EMB_MAX_ANSWER
 *    bytes (after content decoding, so a compressed bomb is cut too) and
 *    parsed with cJSON.  Every value must be a finite number that fits a
 *    float; the count, the dimension and the "index" members are checked
 *    before a row is trusted.
 *  - Secrets: the API key goes only into the Authorization header.  Error
 *    messages show the URL without user-info or query, and a key echoed
 *    in an error body is replaced by "***".
 */
#include "../internal.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>

#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KNYTT__EMB_MAX_ANSWER ((size_t)64 << 20) /* bytes, decoded */
#define KNYTT__EMB_MAX_DIM 65536u
#define KNYTT__EMB_POOL 8       /* idle easy handles kept */
#define KNYTT__EMB_MAX_WAIT_MS 30000L
#define KNYTT__EMB_SNIPPET 160  /* bytes of an error body in messages */

struct knytt_embedder {
	char *url;       /* full endpoint, .../v1/embeddings */
	char *shown_url; /* url without user-info and query, for messages */
	char *model;     /* NULL = no "model" member */
	char *key;       /* NULL = no Authorization header */
	size_t key_len;
	long timeout_ms;       /* per attempt, connection included */
	unsigned retries;      /* extra attempts after a transient failure */
	long backoff_ms;       /* base wait before the first retry */
	unsigned batch;        /* max inputs per request, >= 1 */
	unsigned parallel;     /* max requests in flight per embed call */
	uint32_t dim_set;      /* from set_dim; 0 = learn */
	_Atomic uint32_t dim;  /* known dimension; 0 until set or learned */
	int is_open;
	struct curl_slist *headers; /* shared read-only by every easy handle */
	pthread_mutex_t pool_lock;
	CURL *pool[KNYTT__EMB_POOL]; /* idle handles, [0, npool) */
	unsigned npool;
};

/* ---- global init ------------------------------------------------------ */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_OK;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- settings --------------------------------------------------------- */

int knytt_embedder_create(knytt_embedder **out)
{
	if (!out)
		return knytt__err(KNYTT_EINVAL,
				  "knytt_embedder_create: out is NULL");
	*out = NULL;
	knytt_embedder *e = calloc(1, sizeof *e);
	if (!e)
		return knytt__err(KNYTT_ENOMEM,
				  "knytt_embedder_create: out of memory");
	e->timeout_ms = 30000;
	e->retries = 2;
	e->backoff_ms = 100;
	e->batch = 32;
	e->parallel = 1;
	atomic_init(&e->dim, 0);
	if (pthread_mutex_init(&e->pool_lock, NULL) != 0) {
		free(e);
		return knytt__err(KNYTT_ENOMEM,
				  "knytt_embedder_create: cannot make a mutex");
	}
	*out = e;
	return KNYTT_OK;
}

#define SETTER_PROLOGUE(fn)                                                 \
	if (!e)                                                             \
		return knytt__err(KNYTT_EINVAL, fn ": embedder is NULL");   \
	if (e->is_open)                                                     \
		return knytt__err(KNYTT_ESTATE,                             \
				  fn ": settings are fixed once the "       \
				     "embedder is open")

/* Byte offset of the first invalid UTF-8 sequence in s, or -1.  Rejects
 * overlong forms, surrogates and code points above U+10FFFF (RFC 3629),
 * which a strict server would reject with a 400 for the whole batch. */
static long utf8_bad(const char *s)
{
	const unsigned char *p = (const unsigned char *)s, *b = p;
	while (*p) {
		unsigned c = *p;
		if (c < 0x80) {
			p++;
			continue;
		}
		int n;
		unsigned cp, min;
		if ((c & 0xe0) == 0xc0) {
			n = 1, cp = c & 0x1f, min = 0x80;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2, cp = c & 0x0f, min = 0x800;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3, cp = c & 0x07, min = 0x10000;
		} else {
			return (long)(p - b);
		}
		for (int i = 1; i <= n; i++) {
			if ((p[i] & 0xc0) != 0x80)
				return (long)(p - b);
			cp = cp << 6 | (p[i] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return (long)(p - b);
		p += n + 1;
	}
	return -1;
}

static int has_ctl_or_space(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s == 0x7f)
			return 1;
	return 0;
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
	size_t k = strlen(suffix);
	return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

/* The URL shown in messages: scheme://host[:port]/path, without
 * "user:password@" and without "?query" or "#fragment", either of which
 * may hold a credential. */
static char *shown_url(const char *url)
{
	char *r = malloc(strlen(url) + 1);
	if (!r)
		return NULL;
	const char *auth = strstr(url, "://") + 3;
	size_t hostlen = strcspn(auth, "/?#");
	const char *at = memchr(auth, '@', hostlen);
	const char *host = auth;
	if (at) {
		/* the last '@' before the path ends the user-info */
		for (const char *q = auth; q < auth + hostlen; q++)
			if (*q == '@')
				at = q;
		host = at + 1;
	}
	size_t n = (size_t)(auth - url);
	memcpy(r, url, n);
	size_t rest = strcspn(host, "?#");
	memcpy(r + n, host, rest);
	r[n + rest] = '\0';
	return r;
}

int knytt_embedder_set_url(knytt_embedder *e, const char *base_url)
{
	SETTER_PROLOGUE("knytt_embedder_set_url");
	if (!base_url || !*base_url)
		return knytt__err(KNYTT_EINVAL,
				  "knytt_embedder_set_url: URL is NULL or "
				  "empty");
	if (strncasecmp(base_url, "http://", 7) != 0 &&
	    strncasecmp(base_url, "https://", 8) != 0)
		return knytt__err(KNYTT_EINVAL,
				  "knytt_embedder_set_url: URL must start with "
				  "http:// or https://");
	if (has_ctl_or_space(base_url))
		return knytt__err(KNYTT_EINVAL,
				  "knytt_embedder_set_url: URL contains spaces "
				  "or control characters");
	/* The path is normalised; a query string ("?key=..."), if any, is
	 * kept after it. */
	size_t n = strcspn(base_url, "?#");
	const char *query = base_url + n;
	if (*query == '#')
		query = "";
	while (n > 0 && base_url[n - 1] == '/')
		n--;
	const char *auth = strstr(base_url, "://") + 3;
	if ((size_t)(auth - base_url) >= n || *auth == '/')
		return knytt__err(KNYTT_EINVAL,
				  "knytt_embedder_set_url: URL has no host");
	const char *suffix = "/v1/embeddings";
	if (ends_with(base_url, n, "/embeddings"))
		suffix = "";
	else if (ends_with(base_url, n, "/v1"))
		suffix = "/embeddings";
	size_t sl = strlen(suffix), ql = strcspn(query, "#");
	char *url = malloc(n + sl + ql + 1);
	if (!url)
		return knytt__err(KNYTT_ENOMEM, "knytt_embedder_set_url: out "
						"of memory");
	memcpy(url, base_url, n);
	memcpy(url + n, suffix, sl);
	memcpy(url + n + sl, query, ql);
	url[n + sl + ql] = '\0';
	char *shown = shown_url(url);
	if (!shown) {
		free(url);
		return knytt__err(KNYTT_ENOMEM, "knytt_embedder_set_url: out "
						"of memory");
	}
	free(e->url);
	free(e->shown_url);
	e->url = url;
	e->shown_url = shown;
	return KNYTT_OK;
}

int knytt_embedder_set_model(knytt_embedder *e, const char *model)
{
	SETTER_PROLOGUE("knytt_embedder_set_model");
	char *m = NULL;
	if (model && *model) {
		long bad = utf8_bad(model);
		if (bad >= 0)
			return knytt__err(KNYTT_EINVAL,
					  "knytt_embedder_set_model: model "
					  "name is not valid UTF-8 (byte %ld)",
					  bad);
		m = strdup(model);
		if (!m)
			return knytt__err(KNYTT_ENOMEM,
					  "knytt_embedder_set_model: out of "
					  "memory");
	}
	free(e->model);
	e->model = m;
	return KNYTT_OK;
}

static void wipe_free(char *p, size_t n)
{
	if (p) {
		explicit_bzero(p, n);
		free(p);
	}
}

int knytt_embedder_set_api_key(knytt_embedder *e, const char *key)
{
	SETTER_PROLOGUE("knytt_embedder_set_api_key");
	char *k = NULL;
	size_t kl = 0;
	if (key && *key) {
		/* A CR or LF would let the key inject headers; a space would
		 * make it two tokens.  The message never quotes the key. */
		if (has_ctl_or_space(key))
			return knytt__err(KNYTT_EINVAL,
					  "knytt_embedder_set_api_key: the key "
					  "contains spaces or control "
					  "characters");
		kl = strlen(key);
		k = malloc(kl + 1);
		if (!k)
			return knytt__err(KNYTT_ENOMEM,
					  "knytt_embedder_set_api_key: out of "
					  "memory");
		memcpy(k, key, kl + 1);
	}
	wipe_free(e->key, e->key_len);
	e->key = k;
	e->key_len = kl;
	return KNYTT_OK;
}

int knytt_embedder_set_timeout_ms(knytt_embedder *e, long ms)
{
	SETTER_PROLOGUE("knytt_embedder_set_timeout_ms");
	if (ms == 0)
		ms = 30000;
	if (ms < 1 || ms > 3600000)
		return knytt__err(KNYTT_EINVAL,
				  "timeout is %ld ms, must be 1..3600000", ms);
	e->timeout_ms = ms;
	return KNYTT_OK;
}

int knytt_embedder_set_retries(knytt_embedder *e, unsigned retries,
			       long backoff_ms)
{
	SETTER_PROLOGUE("knytt_embedder_set_retries");
	if (retries > 100)
		return knytt__err(KNYTT_EINVAL, "retries is %u, must be 0..100",
				  retries);
	if (backoff_ms < 0 || backoff_ms > 60000)
		return knytt__err(KNYTT_EINVAL,
				  "backoff is %ld ms, must be 0..60000",
				  backoff_ms);
	e->retries = retries;
	e->backoff_ms = backoff_ms;
	return KNYTT_OK;
}

int knytt_embedder_set_batch(knytt_embedder *e, unsigned max_inputs)
{
	SETTER_PROLOGUE("knytt_embedder_set_batch");
	if (max_inputs == 0)
		max_inputs = 32;
	if (max_inputs > 65536)
		return knytt__err(KNYTT_EINVAL,
				  "batch is %u inputs, must be 1..65536",
				  max_inputs);
	e->batch = max_inputs;
	return KNYTT_OK;
}

int knytt_embedder_set_parallel(knytt_embedder *e, unsigned requests)
{
	SETTER_PROLOGUE("knytt_embedder_set_parallel");
	if (requests == 0)
		requests = 1;
	if (requests > 64)
		return knytt__err(KNYTT_EINVAL,
				  "parallel is %u requests, must be 1..64",
				  requests);
	e->parallel = requests;
	return KNYTT_OK;
}

int knytt_embedder_set_dim(knytt_embedder *e, uint32_t dim)
{
	SETTER_PROLOGUE("knytt_embedder_set_dim");
	if (dim > KNYTT__EMB_MAX_DIM)
		return knytt__err(KNYTT_EINVAL, "dim is %u, must be 0..%u", dim,
				  KNYTT__EMB_MAX_DIM);
	e->dim_set = dim;
	return KNYTT_OK;
}

static void free_headers(struct curl_slist *h)
{
	/* The Authorization line holds the key: wipe every line. */
	for (struct curl_slist *p = h; p; p = p->next)
		explicit_bzero(p->data, strlen(p->data));
	curl_slist_free_all(h);
}

int knytt_embedder_open(knytt_embedder *e)
{
	if (!e)
		return knytt__err(KNYTT_EINVAL,
				  "knytt_embedder_open: embedder is NULL");
	if (e->is_open)
		return knytt__err(KNYTT_ESTATE, "embedder is already open");
	if (!e->url)
		return knytt__err(KNYTT_EINVAL,
				  "embedder has no URL: call "
				  "knytt_embedder_set_url first");
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK)
		return knytt__err(KNYTT_EIO, "libcurl cannot initialise: %s",
				  curl_easy_strerror(curl_init_rc));
	struct curl_slist *h = NULL, *t;
	static const char *const fixed[] = {
		"Content-Type: application/json",
		"Accept: application/json",
		/* no "100-continue" round trip before big bodies */
		"Expect:",
	};
	for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
		t = curl_slist_append(h, fixed[i]);
		if (!t)
			goto nomem;
		h = t;
	}
	if (e->key) {
		static const char pre[] = "Authorization: Bearer ";
		size_t n = sizeof pre - 1 + e->key_len + 1;
		char *line = malloc(n);
		if (!line)
			goto nomem;
		memcpy(line, pre, sizeof pre - 1);
		memcpy(line + sizeof pre - 1, e->key, e->key_len + 1);
		t = curl_slist_append(h, line);
		wipe_free(line, n);
		if (!t)
			goto nomem;
		h = t;
	}
	e->headers = h;
	atomic_store(&e->dim, e->dim_set);
	e->is_open = 1;
	return KNYTT_OK;
nomem:
	free_headers(h);
	return knytt__err(KNYTT_ENOMEM, "knytt_embedder_open: out of memory");
}

uint32_t knytt_embedder_dim(const knytt_embedder *e)
{
	if (!e)
		return 0;
	/* atomic_load wants a non-const pointer in C11 */
	return atomic_load((_Atomic uint32_t *)&e->dim);
}

void knytt_embedder_close(knytt_embedder *e)
{
	if (!e)
		return;
	for (unsigned i = 0; i < e->npool; i++)
		curl_easy_cleanup(e->pool[i]);
	free_headers(e->headers);
	pthread_mutex_destroy(&e->pool_lock);
	wipe_free(e->key, e->key_len);
	free(e->url);
	free(e->shown_url);
	free(e->model);
	free(e);
}

/* ---- transport -------------------------------------------------------- */

/* The answer being read; data[len] is always a NUL. */
struct answer {
	char *data;
	size_t len, cap;
	int too_big;
};

static size_t on_write(char *p, size_t size, size_t nmemb, void *arg)
{
	struct answer *a = arg;
	size_t n = size * nmemb;
	if (n > KNYTT__EMB_MAX_ANSWER - a->len) {
		a->too_big = 1;
		return 0; /* makes curl stop with CURLE_WRITE_ERROR */
	}
	if (a->len + n + 1 > a->cap) {
		size_t c = a->cap ? a->cap : 16384;
		while (c < a->len + n + 1)
			c *= 2;
		char *d = realloc(a->data, c);
		if (!d)
			return 0;
		a->data = d;
		a->cap = c;
	}
	memcpy(a->data + a->len, p, n);
	a->len += n;
	a->data[a->len] = '\0';
	return n;
}

static CURL *handle_get(knytt_embedder *e)
{
	CURL *h = NULL;
	pthread_mutex_lock(&e->pool_lock);
	if (e->npool > 0)
		h = e->pool[--e->npool];
	pthread_mutex_unlock(&e->pool_lock);
	if (h)
		return h;
	h = curl_easy_init();
	if (!h)
		return NULL;
	/* Options that never change for this embedder. */
	curl_easy_setopt(h, CURLOPT_URL, e->url);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, e->headers);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, e->timeout_ms);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
			 e->timeout_ms < 10000 ? e->timeout_ms : 10000L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_USERAGENT, "knytt/" KNYTT_VERSION_STRING);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	/* refuses an announced oversized answer before reading it */
	curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE,
			 (curl_off_t)KNYTT__EMB_MAX_ANSWER);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS,
			 (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	return h;
}

static void handle_put(knytt_embedder *e, CURL *h)
{
	pthread_mutex_lock(&e->pool_lock);
	if (e->npool < KNYTT__EMB_POOL) {
		e->pool[e->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&e->pool_lock);
	if (h)
		curl_easy_cleanup(h);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* A short, printable excerpt of an error body for a message: the
 * "error.message" (or "error", or "message") string when the body is
 * JSON, else the raw start.  Control bytes become spaces; the API key, if
 * the server echoed it, becomes "***". */
static void snippet(const knytt_embedder *e, const struct answer *a,
		    char *out, size_t cap)
{
	const char *src = a->data ? a->data : "";
	size_t n = a->len;
	cJSON *root = a->len ? cJSON_ParseWithLength(a->data, a->len) : NULL;
	if (root) {
		const cJSON *m = NULL, *err;
		err = cJSON_GetObjectItemCaseSensitive(root, "error");
		if (cJSON_IsObject(err))
			m = cJSON_GetObjectItemCaseSensitive(err, "message");
		else if (cJSON_IsString(err))
			m = err;
		if (!m)
			m = cJSON_GetObjectItemCaseSensitive(root, "message");
		if (cJSON_IsString(m) && m->valuestring) {
			src = m->valuestring;
			n = strlen(src);
		}
	}
	size_t o = 0, i = 0;
	while (i < n && o + 4 < cap && o < KNYTT__EMB_SNIPPET) {
		if (e->key && e->key_len <= n - i &&
		    memcmp(src + i, e->key, e->key_len) == 0) {
			memcpy(out + o, "***", 3);
			o += 3;
			i += e->key_len;
			continue;
		}
		unsigned char c = (unsigned char)src[i++];
		out[o++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
	}
	if (i < n) {
		/* cut: do not end inside a UTF-8 sequence */
		while (o > 0 && ((unsigned char)out[o - 1] & 0x80))
			o--;
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
	cJSON_Delete(root);
}

/*
 * Checks a 200 answer for @p n inputs and writes row i of @p out (which
 * may be NULL) for input i.  *dim is the expected dimension; 0 = take it
 * from the first embedding (and store it in *dim).  @p base is the index
 * of the batch's first input in the whole call, for messages.
 */
static int parse_answer(const knytt_embedder *e, const struct answer *a,
			size_t base, size_t n, float *out, uint32_t *dim)
{
	char snip[KNYTT__EMB_SNIPPET + 8];
	cJSON *root = cJSON_ParseWithLength(a->data ? a->data : "", a->len);
	if (!root) {
		snippet(e, a, snip, sizeof snip);
		return knytt__err(KNYTT_EPROTO,
				  "POST %s: answer is not JSON: \"%s\"",
				  e->shown_url, snip);
	}
	int rc = KNYTT_OK;
	unsigned char *seen = NULL;
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(root, "data");
	if (!cJSON_IsArray(data)) {
		snippet(e, a, snip, sizeof snip);
		rc = knytt__err(KNYTT_EPROTO,
				"POST %s: answer has no \"data\" array: \"%s\"",
				e->shown_url, snip);
		goto out;
	}
	size_t m = (size_t)cJSON_GetArraySize(data);
	if (m != n) {
		rc = knytt__err(KNYTT_EPROTO,
				"POST %s: answer has %zu embeddings for %zu "
				"inputs",
				e->shown_url, m, n);
		goto out;
	}
	seen = calloc(n ? n : 1, 1);
	if (!seen) {
		rc = knytt__err(KNYTT_ENOMEM,
				"out of memory reading an answer");
		goto out;
	}
	size_t k = 0;
	int with_index = -1; /* unknown until the first entry */
	const cJSON *ent;
	cJSON_ArrayForEach(ent, data)
	{
		if (!cJSON_IsObject(ent)) {
			rc = knytt__err(KNYTT_EPROTO,
					"POST %s: data[%zu] is not an object",
					e->shown_url, k);
			goto out;
		}
		const cJSON *ix =
			cJSON_GetObjectItemCaseSensitive(ent, "index");
		size_t row = k;
		if (with_index < 0)
			with_index = ix != NULL;
		if ((ix != NULL) != with_index) {
			rc = knytt__err(KNYTT_EPROTO,
					"POST %s: data[%zu] %s \"index\" "
					"unlike data[0]",
					e->shown_url, k, ix ? "has" : "lacks");
			goto out;
		}
		if (ix) {
			double v = cJSON_IsNumber(ix) ? ix->valuedouble : -1;
			if (!(v >= 0 && v < (double)n && v == floor(v))) {
				rc = knytt__err(KNYTT_EPROTO,
						"POST %s: data[%zu] has index "
						"out of 0..%zu or not an "
						"integer",
						e->shown_url, k, n - 1);
				goto out;
			}
			row = (size_t)v;
		}
		if (seen[row]) {
			rc = knytt__err(KNYTT_EPROTO,
					"POST %s: answer has two embeddings "
					"for input %zu",
					e->shown_url, base + row);
			goto out;
		}
		seen[row] = 1;
		const cJSON *emb =
			cJSON_GetObjectItemCaseSensitive(ent, "embedding");
		if (!cJSON_IsArray(emb)) {
			rc = knytt__err(KNYTT_EPROTO,
					"POST %s: data[%zu] has no "
					"\"embedding\" array%s",
					e->shown_url, k,
					cJSON_IsString(emb)
						? " (a string: base64 is not "
						  "supported)"
						: "");
			goto out;
		}
		size_t d = (size_t)cJSON_GetArraySize(emb);
		if (d == 0 || d > KNYTT__EMB_MAX_DIM) {
			rc = knytt__err(KNYTT_EPROTO,
					"POST %s: embedding %zu has %zu "
					"dimensions, must be 1..%u",
					e->shown_url, base + row, d,
					KNYTT__EMB_MAX_DIM);
			goto out;
		}
		if (*dim == 0)
			*dim = (uint32_t)d;
		if (d != *dim) {
			rc = knytt__err(KNYTT_EPROTO,
					"POST %s: embedding %zu has %zu "
					"dimensions, expected %u",
					e->shown_url, base + row, d, *dim);
			goto out;
		}
		size_t j = 0;
		const cJSON *x;
		float *dst = out ? out + row * (size_t)*dim : NULL;
		cJSON_ArrayForEach(x, emb)
		{
			double v = cJSON_IsNumber(x) ? x->valuedouble : NAN;
			if (!isfinite(v) || fabs(v) > FLT_MAX) {
				rc = knytt__err(KNYTT_EPROTO,
						"POST %s: embedding %zu value "
						"%zu is not a finite float",
						e->shown_url, base + row, j);
				goto out;
			}
			if (dst)
				dst[j] = (float)v;
			j++;
		}
		k++;
	}
out:
	free(seen);
	cJSON_Delete(root);
	return rc;
}

/* The request body for @p n texts, or NULL when out of memory. */
static char *build_request(const knytt_embedder *e, size_t n,
			   const char *const *texts)
{
	cJSON *root = cJSON_CreateObject();
	if (!root)
		return NULL;
	char *body = NULL;
	if (e->model && !cJSON_AddStringToObject(root, "model", e->model))
		goto out;
	cJSON *in = cJSON_AddArrayToObject(root, "input");
	if (!in)
		goto out;
	for (size_t i = 0; i < n; i++) {
		cJSON *s = cJSON_CreateString(texts[i]);
		if (!s || !cJSON_AddItemToArray(in, s)) {
			cJSON_Delete(s);
			goto out;
		}
	}
	body = cJSON_PrintUnformatted(root);
out:
	cJSON_Delete(root);
	return body;
}

/* Transient failures worth another attempt. */
static int retryable_curl(CURLcode c)
{
	switch (c) {
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_COULDNT_CONNECT:
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

/*
 * One batch: POST, retry while the failure is transient, parse.  @p h is
 * an easy handle owned by the caller for the call.  @p base and *dim as
 * in parse_answer.
 */
static int embed_batch(knytt_embedder *e, CURL *h, size_t base, size_t n,
		       const char *const *texts, float *out, uint32_t *dim,
		       uint64_t *rng)
{
	char *body = build_request(e, n, texts);
	if (!body)
		return knytt__err(KNYTT_ENOMEM,
				  "out of memory building a request of %zu "
				  "texts",
				  n);
	struct answer a = { 0 };
	char errbuf[CURL_ERROR_SIZE];
	char snip[KNYTT__EMB_SNIPPET + 8];
	unsigned attempts = e->retries + 1;
	int rc = KNYTT_EIO;
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
			 (curl_off_t)strlen(body));
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &a);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	for (unsigned att = 0; att < attempts; att++) {
		a.len = 0;
		a.too_big = 0;
		errbuf[0] = '\0';
		CURLcode c = curl_easy_perform(h);
		long status = 0;
		curl_off_t retry_after = 0;
		int retry = 0;
		if (c == CURLE_OK) {
			curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
			if (status >= 200 && status < 300) {
				rc = parse_answer(e, &a, base, n, out, dim);
				break;
			}
			snippet(e, &a, snip, sizeof snip);
			if (status == 401 || status == 403) {
				rc = knytt__err(KNYTT_EAUTH,
						"POST %s: HTTP %ld, the API "
						"key was refused: \"%s\"",
						e->shown_url, status, snip);
				break;
			}
			retry = status == 429 || status >= 500;
			rc = status == 429 ? KNYTT_EBUSY : KNYTT_EIO;
			if (retry)
				curl_easy_getinfo(h, CURLINFO_RETRY_AFTER,
						  &retry_after);
			if (retry_after * 1000 > KNYTT__EMB_MAX_WAIT_MS) {
				rc = knytt__err(rc,
						"POST %s: HTTP %ld, the server "
						"asks to retry after %lld s: "
						"\"%s\"",
						e->shown_url, status,
						(long long)retry_after, snip);
				break;
			}
			knytt__err(rc, "POST %s: HTTP %ld after %u attempt%s: "
				       "\"%s\"",
				   e->shown_url, status, att + 1,
				   att ? "s" : "", snip);
		} else if ((c == CURLE_WRITE_ERROR && a.too_big) ||
			   c == CURLE_FILESIZE_EXCEEDED) {
			rc = knytt__err(KNYTT_EPROTO,
					"POST %s: answer is larger than %zu "
					"MiB",
					e->shown_url,
					KNYTT__EMB_MAX_ANSWER >> 20);
			break;
		} else if (c == CURLE_OUT_OF_MEMORY || c == CURLE_WRITE_ERROR) {
			rc = knytt__err(KNYTT_ENOMEM,
					"POST %s: out of memory reading the "
					"answer",
					e->shown_url);
			break;
		} else {
			retry = retryable_curl(c);
			rc = c == CURLE_OPERATION_TIMEDOUT ? KNYTT_ETIMEDOUT
							   : KNYTT_EIO;
			if (c == CURLE_OPERATION_TIMEDOUT)
				knytt__err(rc,
					   "POST %s: timed out after %ld ms "
					   "(%u attempt%s)",
					   e->shown_url, e->timeout_ms, att + 1,
					   att ? "s" : "");
			else
				knytt__err(rc, "POST %s: %s (%u attempt%s)",
					   e->shown_url,
					   errbuf[0] ? errbuf
						     : curl_easy_strerror(c),
					   att + 1, att ? "s" : "");
		}
		if (!retry || att + 1 == attempts)
			break;
		/* equal jitter: uniform in [d/2, d], d doubling per retry */
		double d = (double)e->backoff_ms * ldexp(1.0, (int)att);
		if (d > KNYTT__EMB_MAX_WAIT_MS)
			d = KNYTT__EMB_MAX_WAIT_MS;
		long w = (long)(d * 0.5 * (1.0 + knytt__randu(rng)));
		if (retry_after * 1000 > w)
			w = (long)retry_after * 1000;
		if (w > 0)
			sleep_ms(w);
	}
	/* the handle goes back to the pool: leave no pointer to the stack */
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, NULL);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	free(a.data);
	free(body);
	return rc;
}

/* The learned dimension is published once; a call that learned another
 * value at the same time fails rather than mix dimensions. */
static int learn_dim(knytt_embedder *e, uint32_t d)
{
	uint32_t zero = 0;
	if (atomic_compare_exchange_strong(&e->dim, &zero, d) || zero == d)
		return KNYTT_OK;
	return knytt__err(KNYTT_EPROTO,
			  "POST %s: answer has %u dimensions, an earlier "
			  "answer had %u",
			  e->shown_url, d, zero);
}

static uint64_t rng_seed(const void *p)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 32 ^
	       (uint64_t)(uintptr_t)p;
}

/*
 * One embed call, shared by the threads that serve it.  Batches are
 * claimed in order from an atomic counter; each thread uses its own easy
 * handle.  The first failure stops the others from claiming more and its
 * message, which knytt__err wrote in that thread's local buffer, is kept
 * here for the caller's thread.
 */
struct job {
	knytt_embedder *e;
	const char *const *texts;
	float *out;
	size_t n;
	uint32_t dim;
	atomic_size_t next; /* next batch to claim */
	atomic_int failed;
	pthread_mutex_t lock; /* guards rc and msg */
	int rc;
	char msg[512];
};

static void job_fail(struct job *j, int rc)
{
	pthread_mutex_lock(&j->lock);
	if (j->rc == KNYTT_OK) {
		j->rc = rc;
		snprintf(j->msg, sizeof j->msg, "%s", knytt_errmsg());
	}
	pthread_mutex_unlock(&j->lock);
	atomic_store(&j->failed, 1);
}

static void job_run(struct job *j)
{
	knytt_embedder *e = j->e;
	CURL *h = handle_get(e);
	if (!h) {
		job_fail(j, knytt__err(KNYTT_ENOMEM,
				       "libcurl cannot make an easy handle"));
		return;
	}
	uint64_t rng = rng_seed(&h);
	while (!atomic_load(&j->failed)) {
		size_t i = atomic_fetch_add(&j->next, 1) * e->batch;
		if (i >= j->n)
			break;
		size_t b = j->n - i < e->batch ? j->n - i : e->batch;
		uint32_t d = j->dim;
		int rc = embed_batch(e, h, i, b, j->texts + i,
				     j->out + i * (size_t)j->dim, &d, &rng);
		if (rc != KNYTT_OK)
			job_fail(j, rc);
	}
	handle_put(e, h);
}

static void job_thread(void *arg, unsigned t)
{
	(void)t;
	job_run(arg);
}

int knytt_embedder_embed(knytt_embedder *e, size_t n,
			 const char *const *texts, float *out, uint32_t dim)
{
	if (!e)
		return knytt__err(KNYTT_EINVAL,
				  "knytt_embedder_embed: embedder is NULL");
	if (!e->is_open)
		return knytt__err(KNYTT_ESTATE, "embedder is not open");
	if (n == 0)
		return KNYTT_OK;
	if (!texts || !out)
		return knytt__err(KNYTT_EINVAL,
				  "knytt_embedder_embed: %s is NULL",
				  !texts ? "texts" : "out");
	uint32_t known = atomic_load(&e->dim);
	if (dim == 0 || dim > KNYTT__EMB_MAX_DIM)
		return knytt__err(KNYTT_EINVAL, "dim is %u, must be 1..%u", dim,
				  KNYTT__EMB_MAX_DIM);
	if (known && dim != known)
		return knytt__err(KNYTT_EINVAL,
				  "out has %u dimensions per row, the embedder "
				  "has %u",
				  dim, known);
	for (size_t i = 0; i < n; i++) {
		if (!texts[i])
			return knytt__err(KNYTT_EINVAL, "text %zu is NULL", i);
		long bad = utf8_bad(texts[i]);
		if (bad >= 0)
			return knytt__err(KNYTT_EINVAL,
					  "text %zu is not valid UTF-8 (byte "
					  "%ld)",
					  i, bad);
	}
	struct job j = { .e = e, .texts = texts, .out = out, .n = n,
			 .dim = dim };
	atomic_init(&j.next, 0);
	atomic_init(&j.failed, 0);
	pthread_mutex_init(&j.lock, NULL);
	size_t nbatch = (n - 1) / e->batch + 1;
	unsigned nthr = e->parallel < nbatch ? e->parallel : (unsigned)nbatch;
	knytt__fork_join(nthr, job_thread, &j);
	pthread_mutex_destroy(&j.lock);
	int rc = j.rc;
	if (rc != KNYTT_OK)
		return knytt__err(rc, "%s", j.msg);
	if (!known)
		rc = learn_dim(e, dim);
	return rc;
}

int knytt_embedder_probe(knytt_embedder *e)
{
	if (!e)
		return knytt__err(KNYTT_EINVAL,
				  "knytt_embedder_probe: embedder is NULL");
	if (!e->is_open)
		return knytt__err(KNYTT_ESTATE, "embedder is not open");
	uint32_t d = atomic_load(&e->dim);
	if (d)
		return (int)d;
	static const char *const probe[] = { "dimension probe" };
	CURL *h = handle_get(e);
	if (!h)
		return knytt__err(KNYTT_ENOMEM,
				  "libcurl cannot make an easy handle");
	uint64_t rng = rng_seed(&h);
	int rc = embed_batch(e, h, 0, 1, probe, NULL, &d, &rng);
	handle_put(e, h);
	if (rc == KNYTT_OK)
		rc = learn_dim(e, d);
	return rc == KNYTT_OK ? (int)d : rc;
}
