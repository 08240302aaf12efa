/*
 * check_knyttd_abuse.c -- knyttd under hostile requests (issue 21): a
 * table of requests a client may send to hurt the service, each with the
 * status and error code it must get, then checks that nothing of a
 * refused request was stored and that the server's memory stayed
 * bounded.  Besides the table: slow clients (slowloris) and many
 * connections at once must not keep others from being served.
 *
 * One server (build/bin/knyttd, --body-limit 256 KiB) with shop "abuse"
 * holding items it-0..it-5 in categories "shoes/run" and "hats".
 */
#include "testutil.h"

#include "kdtest.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

static kd_srv S;
static char SK[80], PK[80];

#define BODY_LIMIT 262144

/* The body of a table row: a fixed text, or one made by a function. */
typedef struct abuse {
	const char *name;
	const char *method, *path;
	int key;            /* 0 none, 1 public, 2 secret */
	const char *ctype;  /* NULL: application/json */
	const char *body;   /* NULL: made by mk */
	char *(*mk)(size_t *len);
	long status;
	const char *code;   /* expected error code, or NULL */
	const char *absent; /* an item id that must not exist after, or NULL */
} abuse;

static char *repeat(const char *head, const char *unit, size_t times,
		    const char *tail, size_t *len)
{
	size_t hl = strlen(head), ul = strlen(unit), tl = strlen(tail);
	size_t n = hl + ul * times + tl;
	char *b = malloc(n + 1);
	ck_assert_ptr_nonnull(b);
	memcpy(b, head, hl);
	for (size_t i = 0; i < times; i++)
		memcpy(b + hl + i * ul, unit, ul);
	memcpy(b + hl + ul * times, tail, tl + 1);
	*len = n;
	return b;
}

/* 300 KB of items: over the body limit. */
static char *mk_oversized(size_t *len)
{
	return repeat("{\"items\":[",
		      "{\"item_id\":\"big-0\",\"title\":\"x\"},", 9000,
		      "{\"item_id\":\"big-1\"}]}", len);
}

/* 100,000 nested arrays in a field (cJSON stops at 1,000 levels). */
static char *mk_nested(size_t *len)
{
	size_t n = 100000;
	char *b = malloc(2 * n + 64);
	ck_assert_ptr_nonnull(b);
	int h = sprintf(b, "{\"items\":[{\"item_id\":\"deep-1\",\"x\":");
	memset(b + h, '[', n);
	memset(b + h + n, ']', n);
	strcpy(b + h + 2 * n, "}]}");
	*len = strlen(b);
	return b;
}

/* Nesting within cJSON's limit, in the attributes of an item. */
static char *mk_nested_ok(size_t *len)
{
	return repeat("{\"items\":[{\"item_id\":\"deep-2\",\"attributes\":"
		      "{\"a\":",
		      "[", 900, "", len);
}

/* A NUL byte inside a string, raw. */
static char *mk_nul(size_t *len)
{
	static const char t[] = "{\"items\":[{\"item_id\":\"nul-1\",\"title\":"
				"\"a\0b\"}]}";
	char *b = malloc(sizeof t);
	ck_assert_ptr_nonnull(b);
	memcpy(b, t, sizeof t);
	*len = sizeof t - 1;
	return b;
}

/* A 200 KB search query (under the body limit; queries are logged, up
 * to 1,024 bytes). */
static char *mk_long_query(size_t *len)
{
	return repeat("{\"query\":\"", "shoe ", 40000, "\",\"count\":5}",
		      len);
}

/* 20,000 items in one request, one of them over-long. */
static char *mk_many_ids(size_t *len)
{
	return repeat("{\"items\":[", "{\"item_id\":\"m\"},", 15000,
		      "{\"item_id\":\"many-1\",\"title\":1}]}", len);
}

static const abuse table[] = {
	{"oversized body", "POST", "/api/v1/items", 2, NULL, NULL,
	 mk_oversized, 413, "payload_too_large", "big-1"},
	{"deeply nested JSON", "POST", "/api/v1/items", 2, NULL, NULL,
	 mk_nested, 400, "invalid_json", "deep-1"},
	{"nested attributes, unclosed", "POST", "/api/v1/items", 2, NULL,
	 NULL, mk_nested_ok, 400, "invalid_json", "deep-2"},
	{"raw NUL byte", "POST", "/api/v1/items", 2, NULL, NULL, mk_nul, 400,
	 "invalid_json", "nul-1"},
	{"escaped NUL", "POST", "/api/v1/items", 2, NULL,
	 "{\"items\":[{\"item_id\":\"nul-2\\u0000x\"}]}", NULL, 400,
	 "invalid_json", "nul-2"},
	{"invalid UTF-8 in an id", "POST", "/api/v1/items", 2, NULL,
	 "{\"items\":[{\"item_id\":\"utf-\xff\"}]}", NULL, 400,
	 "invalid_utf8", NULL},
	{"overlong UTF-8", "POST", "/api/v1/search", 1, NULL,
	 "{\"query\":\"\xC0\xAF\"}", NULL, 400, "invalid_utf8", NULL},
	{"truncated UTF-8", "POST", "/api/v1/search", 1, NULL,
	 "{\"query\":\"\xE2\x82\"}", NULL, 400, "invalid_utf8", NULL},
	{"JSON after JSON", "POST", "/api/v1/items", 2, NULL,
	 "{\"items\":[{\"item_id\":\"two-1\"}]}{}", NULL, 400,
	 "invalid_json", "two-1"},
	{"body of the wrong type", "POST", "/api/v1/items", 2, "text/plain",
	 "{\"items\":[{\"item_id\":\"tp-1\"}]}", NULL, 415,
	 "unsupported_media_type", "tp-1"},
	{"huge count", "POST", "/api/v1/recommendations", 2, NULL,
	 "{\"user_id\":\"u1\",\"count\":1e300}", NULL, 422, NULL, NULL},
	{"huge integer count", "POST", "/api/v1/search", 2, NULL,
	 "{\"query\":\"shoe\",\"count\":99999999999999999999}", NULL, 422,
	 NULL, NULL},
	{"negative count", "POST", "/api/v1/search", 2, NULL,
	 "{\"query\":\"shoe\",\"count\":-5}", NULL, 422, NULL, NULL},
	{"NaN-like count", "POST", "/api/v1/search", 2, NULL,
	 "{\"query\":\"shoe\",\"count\":\"NaN\"}", NULL, 400, "wrong_type",
	 NULL},
	{"huge count in the query string", "GET",
	 "/api/v1/trending?count=99999999999999999999999", 1, NULL, NULL,
	 NULL, 400, NULL, NULL},
	{"very long search query", "POST", "/api/v1/search", 1, NULL, NULL,
	 mk_long_query, 422, NULL, NULL},
	{"an item among 15,000 wrongly typed", "POST", "/api/v1/items", 2,
	 NULL, NULL, mk_many_ids, 422, NULL, "many-1"},
	{"dot-dot id in the path", "GET",
	 "/api/v1/items/..%2F..%2F..%2Fetc%2Fpasswd", 1, NULL, NULL, NULL, 404,
	 NULL, NULL},
	{"dot-dot segments", "GET", "/api/v1/items/../../../etc/passwd", 1,
	 NULL, NULL, NULL, 404, NULL, NULL},
	{"encoded slash in an id", "DELETE", "/api/v1/items/it-1%2F..", 2,
	 NULL, NULL, NULL, 404, NULL, NULL},
	{"NUL in a path id", "GET", "/api/v1/items/it-1%00x", 1, NULL, NULL,
	 NULL, 404, NULL, NULL},
	{"NUL in a deleted id", "DELETE", "/api/v1/items/it-2%00x", 2, NULL,
	 NULL, NULL, 404, "not_found", NULL},
	{"static dot-dot", "GET", "/..%2F..%2F..%2Fetc%2Fpasswd", 0, NULL,
	 NULL, NULL, 404, NULL, NULL},
	{"SQL in a path id", "GET",
	 "/api/v1/items/x'%20OR%20'1'%3D'1", 1, NULL, NULL, NULL, 404,
	 "not_found", NULL},
	{"SQL in a category filter", "POST", "/api/v1/search", 1, NULL,
	 "{\"query\":\"shoe\",\"filters\":{\"category\":\"' OR 1=1 --\"}}",
	 NULL, 200, NULL, NULL},
	{"FTS syntax in a query", "POST", "/api/v1/search", 1, NULL,
	 "{\"query\":\"\\\"shoe* NEAR(a b) OR ) AND ( ^col:x -y\"}", NULL,
	 200, NULL, NULL},
	{"SQL in a user id", "POST", "/api/v1/recommendations", 2, NULL,
	 "{\"user_id\":\"u'; DROP TABLE items; --\",\"count\":3}", NULL, 200,
	 NULL, NULL},
};
#define NTABLE (sizeof table / sizeof table[0])

static void abuse_setup(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
	memset(&S, 0, sizeof S);
	char lim[32];
	snprintf(lim, sizeof lim, "%d", BODY_LIMIT);
	const char *extra[] = {"--body-limit", lim, NULL};
	ck_assert_int_eq(kd_start(&S, extra), 0);
	ck_assert_int_eq(kd_tenant(&S, "abuse", SK, PK), 0);
	ck_assert_int_eq(
		kd_call(&S, "POST", "/api/v1/items", SK, NULL,
			"{\"items\":["
			"{\"item_id\":\"it-0\",\"title\":\"red shoe\","
			"\"category\":\"shoes/run\"},"
			"{\"item_id\":\"it-1\",\"title\":\"blue shoe\","
			"\"category\":\"shoes/run\"},"
			"{\"item_id\":\"it-2\",\"title\":\"green shoe\","
			"\"category\":\"shoes\"},"
			"{\"item_id\":\"it-3\",\"title\":\"wool hat\","
			"\"category\":\"hats\"},"
			"{\"item_id\":\"x'; DROP TABLE items; --\","
			"\"title\":\"sql shoe\",\"category\":\"s%_\"},"
			"{\"item_id\":\"../../etc/passwd\",\"title\":\"dots\","
			"\"category\":\"hats\"}]}",
			NULL),
		200);
}

static void abuse_teardown(void)
{
	ck_assert_int_eq(kd_stop(&S), 0);
	kd_cleanup(&S);
	curl_global_cleanup();
}

static long rss_kb(pid_t pid)
{
	char p[64], line[256];
	long kb = -1;
	snprintf(p, sizeof p, "/proc/%d/status", (int)pid);
	FILE *f = fopen(p, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

static long get_status(const char *path)
{
	return kd_call(&S, "GET", path, PK, NULL, NULL, NULL);
}

/* Every row of the table, twice (the second pass shows that memory does
 * not grow with repetition). */
START_TEST(hostile_requests_table)
{
	long rss0 = 0;
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 1)
			rss0 = rss_kb(S.pid);
		for (size_t i = 0; i < NTABLE; i++) {
			const abuse *a = &table[i];
			size_t len = a->body ? strlen(a->body) : 0;
			char *made = a->mk ? a->mk(&len) : NULL;
			const char *body = made ? made : a->body;
			cJSON *o = NULL;
			const char *key = a->key == 2 ? SK : a->key ? PK : NULL;
			long st = kd_call_raw(
				&S, a->method, a->path, key,
				body ? (a->ctype ? a->ctype : "application/json")
				     : NULL,
				body, body ? len : 0, NULL, &o, NULL, 0);
			ck_assert_msg(st == a->status,
				      "%s: status %ld, expected %ld", a->name,
				      st, a->status);
			if (a->code)
				ck_assert_msg(!strcmp(kd_code(o), a->code),
					      "%s: code '%s', expected '%s'",
					      a->name, kd_code(o), a->code);
			if (st >= 400 && st != 404)
				ck_assert_msg(o && *kd_code(o),
					      "%s: no JSON error", a->name);
			cJSON_Delete(o);
			free(made);
			if (a->absent) {
				char p[256];
				snprintf(p, sizeof p, "/api/v1/items/%s",
					 a->absent);
				ck_assert_msg(get_status(p) == 404,
					      "%s: %s was stored", a->name,
					      a->absent);
			}
		}
	}
	/* the stored catalog is what the set-up put there */
	ck_assert_int_eq(get_status("/api/v1/items/it-3"), 200);
	ck_assert_int_eq(get_status("/api/v1/items/it-2"), 200);
	ck_assert_int_eq(get_status("/api/v1/items/x'%3B%20DROP%20TABLE%20"
				    "items%3B%20--"),
			 200);
	/* an id with slashes is data, found by search and named in a path
	 * as %2F; the dot-dot segments above did not reach it */
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", PK, NULL,
				 "{\"query\":\"dots\"}", &o),
			 200);
	const cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "results"),
					     0);
	ck_assert_str_eq(cJSON_GetObjectItem(r0, "item_id")->valuestring,
			 "../../etc/passwd");
	cJSON_Delete(o);
	ck_assert_int_eq(get_status("/api/v1/items/..%2F..%2Fetc%2Fpasswd"),
			 200);
	long rss1 = rss_kb(S.pid);
	ck_assert_msg(rss1 - rss0 < 64 * 1024,
		      "RSS grew from %ld to %ld kB over one pass", rss0, rss1);
}
END_TEST

/* An id longer than the store allows: refused, naming the field; the
 * other ids of the request are not stored half. */
START_TEST(over_long_ids)
{
	char body[2048], id[700];
	memset(id, 'z', sizeof id - 1);
	id[sizeof id - 1] = 0;
	snprintf(body, sizeof body,
		 "{\"user_id\":\"%s\",\"item_id\":\"it-0\","
		 "\"interaction_type\":\"view\"}", id);
	cJSON *o = NULL;
	long st = kd_call(&S, "POST", "/api/v1/interactions", SK, NULL, body,
			  &o);
	ck_assert_msg(st == 422 || st == 400, "status %ld", st);
	ck_assert_str_eq(kd_field(o), "user_id");
	cJSON_Delete(o);
	snprintf(body, sizeof body, "{\"items\":[{\"item_id\":\"%s\"}]}", id);
	st = kd_call(&S, "POST", "/api/v1/items", SK, NULL, body, &o);
	const cJSON *rej = cJSON_GetObjectItem(o, "rejected_count");
	ck_assert_msg(st >= 400 || (rej && rej->valuedouble == 1),
		      "an over-long item id was accepted (%ld)", st);
	cJSON_Delete(o);
	char p[1024];
	snprintf(p, sizeof p, "/api/v1/items/%s", id);
	ck_assert_int_ne(get_status(p), 200);
}
END_TEST

/* A category filter is a prefix, not a LIKE pattern: '%' and '_' match
 * themselves only. */
START_TEST(category_wildcards_are_literal)
{
	cJSON *o = NULL;
	const char *q[] = {"{\"query\":\"shoe\",\"filters\":{\"category\":"
			   "\"%\"}}",
			   "{\"query\":\"shoe\",\"filters\":{\"category\":"
			   "\"sh_es\"}}"};
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", PK, NULL,
					 q[i], &o),
				 200);
		const cJSON *r = cJSON_GetObjectItem(o, "results");
		ck_assert_msg(cJSON_GetArraySize(r) == 0,
			      "category filter %d matched %d items as a "
			      "pattern", i, cJSON_GetArraySize(r));
		cJSON_Delete(o);
	}
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", PK, NULL,
				 "{\"query\":\"shoe\",\"filters\":{\"category\":"
				 "\"s%_\"}}",
				 &o),
			 200);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "results")),
			 1);
	cJSON_Delete(o);
}
END_TEST

static int tcp_connect(unsigned port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Slow clients: 200 connections that send a header line a second (and
 * one a body a byte at a time) hold no thread: other clients are served
 * at once all along (knyttd has 4 threads). */
START_TEST(slowloris_does_not_block)
{
	enum { NSLOW = 200 };
	int fd[NSLOW];
	for (int i = 0; i < NSLOW; i++) {
		fd[i] = tcp_connect(S.port);
		ck_assert_int_ge(fd[i], 0);
		const char *h = i % 2 ? "GET /api/v1/trending HTTP/1.1\r\n"
				      : "POST /api/v1/search HTTP/1.1\r\n"
					"Content-Type: application/json\r\n"
					"Content-Length: 100\r\n\r\n{";
		ck_assert_int_gt(write(fd[i], h, strlen(h)), 0);
	}
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < NSLOW; i++) {
			const char *more = i % 2 ? "X-Slow: 1\r\n" : " ";
			ck_assert_int_gt(write(fd[i], more, strlen(more)), 0);
		}
		double t0 = now_s();
		ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", PK,
					 NULL, "{\"query\":\"shoe\"}", NULL),
				 200);
		ck_assert_int_eq(get_status("/health"), 200);
		double took = now_s() - t0;
		ck_assert_msg(took < 2.0, "served in %.2f s beside slow "
			      "clients", took);
		usleep(500 * 1000);
	}
	for (int i = 0; i < NSLOW; i++)
		close(fd[i]);
	ck_assert_int_eq(get_status("/health"), 200);
}
END_TEST

/* 1,000 open connections at once, idle: requests are still answered,
 * and after they close the server is as before. */
START_TEST(many_connections)
{
	enum { NCONN = 1000 };
	static int fd[NCONN];
	long rss0 = rss_kb(S.pid);
	int open_n = 0;
	for (int i = 0; i < NCONN; i++) {
		fd[i] = tcp_connect(S.port);
		if (fd[i] >= 0)
			open_n++;
	}
	ck_assert_int_eq(open_n, NCONN);
	/* a request on a tenth of them, answered */
	for (int i = 0; i < NCONN; i += 10) {
		static const char rq[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
		ck_assert_int_eq(write(fd[i], rq, sizeof rq - 1),
				 (ssize_t)(sizeof rq - 1));
	}
	for (int i = 0; i < NCONN; i += 10) {
		struct pollfd pf = {fd[i], POLLIN, 0};
		ck_assert_int_eq(poll(&pf, 1, 10000), 1);
		char b[512];
		ssize_t n = read(fd[i], b, sizeof b - 1);
		ck_assert_int_gt(n, 12);
		b[n] = 0;
		ck_assert_msg(!strncmp(b, "HTTP/1.1 200", 12), "%s", b);
	}
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", PK, NULL,
				 "{\"query\":\"hat\"}", NULL),
			 200);
	for (int i = 0; i < NCONN; i++)
		close(fd[i]);
	ck_assert_int_eq(get_status("/health"), 200);
	long rss1 = rss_kb(S.pid);
	ck_assert_msg(rss1 - rss0 < 128 * 1024, "RSS %ld -> %ld kB", rss0,
		      rss1);
}
END_TEST

/* Sends @p n bytes on a new connection; the status of the answer, or 0
 * (kd_call cannot: it keeps URLs to 2 kB). */
static long raw_status(const char *req, size_t n)
{
	int fd = tcp_connect(S.port);
	ck_assert_int_ge(fd, 0);
	for (size_t o = 0; o < n;) {
		ssize_t w = write(fd, req + o, n - o);
		if (w <= 0)
			break; /* refused early: the answer tells */
		o += (size_t)w;
	}
	char b[64] = "";
	struct pollfd pf = {fd, POLLIN, 0};
	long st = 0;
	if (poll(&pf, 1, 10000) == 1 && read(fd, b, sizeof b - 1) > 12)
		sscanf(b, "HTTP/1.1 %ld", &st);
	close(fd);
	return st;
}

/* A query string and a header far beyond what a client of the API
 * sends: 414 and 431 (or 414), the server unharmed. */
START_TEST(huge_url_and_headers)
{
	size_t n;
	char *rq = repeat("GET /api/v1/trending?category=", "a", 9000,
			  " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
			  &n);
	ck_assert_int_eq(raw_status(rq, n), 414);
	free(rq);
	rq = repeat("GET /api/v1/trending?category=", "a", 200000,
		    " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &n);
	ck_assert_int_eq(raw_status(rq, n), 414);
	free(rq);
	rq = repeat("GET /api/v1/trending HTTP/1.1\r\nHost: x\r\nX-Big: ", "b",
		    200000, "\r\nConnection: close\r\n\r\n", &n);
	long st = raw_status(rq, n);
	ck_assert_msg(st == 431 || st == 414, "a 200 kB header got %ld", st);
	free(rq);
	/* just under the limit: answered */
	rq = repeat("GET /api/v1/trending?category=", "a", 4000,
		    " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &n);
	ck_assert_int_eq(raw_status(rq, n), 401); /* no key: past the limit */
	free(rq);
	ck_assert_int_eq(get_status("/api/v1/trending"), 200);
}
END_TEST

Suite *knyttd_abuse_suite(void)
{
	Suite *s = suite_create("knyttd_abuse");
	TCase *tc = tcase_create("hostile");
	tcase_add_unchecked_fixture(tc, abuse_setup, abuse_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, hostile_requests_table);
	tcase_add_test(tc, over_long_ids);
	tcase_add_test(tc, category_wildcards_are_literal);
	tcase_add_test(tc, slowloris_does_not_block);
	tcase_add_test(tc, many_connections);
	tcase_add_test(tc, huge_url_and_headers);
	suite_add_tcase(s, tc);
	return s;
}
