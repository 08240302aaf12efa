/*
 * check_knyttd.c -- knyttd over real HTTP: build/bin/knyttd (KNYTTD_BIN)
 * started on 127.0.0.1 on a free port with a temporary SQLite store,
 * driven with libcurl (kdtest.c).
 *
 * Each TCase starts its own server in an unchecked fixture with two
 * shops: "shop-a" (items a-0..a-29 with the word "alpha", shoppers alice
 * and bob registered) and "shop-b" (items b-0..b-9 with "bravo", its own
 * alice).  Both have an item "shared-1", with different titles.
 */
#include "testutil.h"

#include "kdtest.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static kd_srv S;
static char SKA[80], PKA[80], SKB[80], PKB[80];
static char TOK_ALICE[1024], TOK_BOB[1024], TOK_ALICE_B[1024];

static const char *const cats[] = {"electronics/audio", "electronics/tv",
				   "shoes/running"};

static void post_ok(const char *path, const char *key, const char *body)
{
	cJSON *o = NULL;
	long st = kd_call(&S, "POST", path, key, NULL, body, &o);
	if (st != 200) {
		char *t = o ? cJSON_PrintUnformatted(o) : NULL;
		fprintf(stderr, "knyttd setup: POST %s: %ld %s\n", path, st,
			t ? t : "");
		free(t);
		ck_abort_msg("setup failed");
	}
	const cJSON *rej = cJSON_GetObjectItem(o, "rejected_count");
	ck_assert(!rej || rej->valuedouble == 0);
	cJSON_Delete(o);
}

/* Catalog and events of both shops. */
static void fill_shops(void)
{
	char body[16384];
	int n = snprintf(body, sizeof body, "{\"items\":[");
	for (int i = 0; i < 30; i++)
		n += snprintf(body + n, sizeof body - (size_t)n,
			      "%s{\"item_id\":\"a-%d\",\"title\":\"alpha "
			      "thing %d\",\"category\":\"%s\",\"price\":%d,"
			      "\"in_stock\":%s,\"quality_score\":%d,"
			      "\"attributes\":{\"colour\":\"%s\",\"size\":%d}}",
			      i ? "," : "", i, i, cats[i % 3], 10 + 10 * i,
			      i % 2 ? "false" : "true", i % 6,
			      (const char *[]){ "red", "blue", "green", "black",
						"white" }[i % 5],
			      i);
	snprintf(body + n, sizeof body - (size_t)n,
		 ",{\"item_id\":\"shared-1\",\"title\":\"alpha shared\","
		 "\"category\":\"electronics/audio\",\"price\":5}]}");
	post_ok("/api/v1/items", SKA, body);
	n = snprintf(body, sizeof body, "{\"items\":[");
	for (int i = 0; i < 10; i++)
		n += snprintf(body + n, sizeof body - (size_t)n,
			      "%s{\"item_id\":\"b-%d\",\"title\":\"bravo "
			      "gadget %d\",\"category\":\"%s\",\"price\":%d}",
			      i ? "," : "", i, i, cats[i % 3], 15 + i);
	snprintf(body + n, sizeof body - (size_t)n,
		 ",{\"item_id\":\"shared-1\",\"title\":\"bravo shared\","
		 "\"category\":\"electronics/audio\",\"price\":6}]}");
	post_ok("/api/v1/items", SKB, body);
	/* users u0..u9 of shop a: views and purchases; b: w0..w4 */
	n = snprintf(body, sizeof body, "{\"interactions\":[");
	for (int u = 0; u < 10; u++)
		for (int j = 0; j < 6; j++)
			n += snprintf(body + n, sizeof body - (size_t)n,
				      "%s{\"user_id\":\"u%d\",\"item_id\":"
				      "\"a-%d\",\"interaction_type\":\"%s\"}",
				      u || j ? "," : "", u, (u * 3 + j * 7) % 30,
				      j == 5 ? "purchase" : "view");
	snprintf(body + n, sizeof body - (size_t)n,
		 ",{\"user_id\":\"alice\",\"item_id\":\"a-1\","
		 "\"interaction_type\":\"view\"}]}");
	post_ok("/api/v1/interactions", SKA, body);
	n = snprintf(body, sizeof body, "{\"interactions\":[");
	for (int u = 0; u < 5; u++)
		for (int j = 0; j < 4; j++)
			n += snprintf(body + n, sizeof body - (size_t)n,
				      "%s{\"user_id\":\"w%d\",\"item_id\":"
				      "\"b-%d\",\"interaction_type\":\"view\"}",
				      u || j ? "," : "", u, (u + j * 3) % 10);
	snprintf(body + n, sizeof body - (size_t)n, "]}");
	post_ok("/api/v1/interactions", SKB, body);
}

static const char *S_backend = "sqlite"; /* of the running TCase */

/* Starts S on @p uri (NULL: a temporary SQLite file) and fills both
 * shops. */
static void shop_start_on(const char *uri, const char *const *extra)
{
	curl_global_init(CURL_GLOBAL_ALL);
	memset(&S, 0, sizeof S);
	if (uri) {
		snprintf(S.dir, sizeof S.dir, "/tmp/knyttd-test-XXXXXX");
		ck_assert_ptr_nonnull(mkdtemp(S.dir));
		snprintf(S.uri, sizeof S.uri, "%s", uri);
	}
	S_backend = uri ? "postgres" : "sqlite";
	ck_assert_int_eq(kd_start(&S, extra), 0);
	ck_assert_int_eq(kd_tenant(&S, "shop-a", SKA, PKA), 0);
	ck_assert_int_eq(kd_tenant(&S, "shop-b", SKB, PKB), 0);
	fill_shops();
	ck_assert_int_eq(kd_register(&S, PKA, "alice", TOK_ALICE,
				     sizeof TOK_ALICE), 0);
	ck_assert_int_eq(kd_register(&S, PKA, "bob", TOK_BOB, sizeof TOK_BOB),
			 0);
	ck_assert_int_eq(kd_register(&S, PKB, "alice", TOK_ALICE_B,
				     sizeof TOK_ALICE_B), 0);
}

static void shop_start(const char *const *extra)
{
	shop_start_on(NULL, extra);
}

static void shop_setup(void)
{
	shop_start(NULL);
}

/* A server with a small body limit and short-lived tokens. */
static void limits_setup(void)
{
	static const char *const extra[] = {"--body-limit", "65536",
					    "--token-ttl", "2", NULL};
	shop_start(extra);
}

static void shop_teardown(void)
{
	ck_assert_int_eq(kd_stop(&S), 0);
	kd_cleanup(&S);
	curl_global_cleanup();
}

static void check_results(const cJSON *o, const char *category, double lo,
			  double hi, int stock, double minq, int maxn);

/* The item ids of a {"results": [...]} answer, comma-separated. */
static void ids_of(const cJSON *o, const char *key, char *out, size_t cap)
{
	size_t n = 0;
	out[0] = 0;
	const cJSON *x;
	cJSON_ArrayForEach(x, cJSON_GetObjectItem(o, key))
	{
		const cJSON *id = cJSON_GetObjectItem(x, "item_id");
		if (cJSON_IsString(id) && n + strlen(id->valuestring) + 2 < cap)
			n += (size_t)snprintf(out + n, cap - n, "%s,",
					      id->valuestring);
	}
}

/* ===================== step 1: the server ============================ */

START_TEST(health_and_ready)
{
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&S, "GET", "/health", NULL, NULL, NULL, &o),
			 200);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "status")->valuestring, "ok");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/ready", NULL, NULL, NULL, &o),
			 200);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "status")->valuestring,
			 "ready");
	ck_assert_str_eq(cJSON_GetObjectItem(o, "store")->valuestring,
			 S_backend);
	/* the setup's requests opened both shops' engines */
	ck_assert_int_ge(cJSON_GetObjectItem(o, "engines_open")->valueint, 2);
	cJSON_Delete(o);
}
END_TEST

START_TEST(no_route_and_wrong_method)
{
	cJSON *o = NULL;
	char allow[128];
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/nothing", SKA, NULL, NULL,
				 &o),
			 404);
	ck_assert_str_eq(kd_code(o), "no_route");
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(
		cJSON_GetObjectItem(o, "error"), "message"));
	ck_assert(cJSON_IsNull(cJSON_GetObjectItem(
		cJSON_GetObjectItem(o, "error"), "field")));
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call_raw(&S, "PUT", "/api/v1/items/a-1", SKA,
				     "application/json", "{}", 2, NULL, &o,
				     allow, sizeof allow),
			 405);
	ck_assert_str_eq(kd_code(o), "method_not_allowed");
	ck_assert_ptr_nonnull(strstr(allow, "GET"));
	ck_assert_ptr_nonnull(strstr(allow, "PATCH"));
	ck_assert_ptr_nonnull(strstr(allow, "DELETE"));
	cJSON_Delete(o);
}
END_TEST

START_TEST(bad_bodies)
{
	cJSON *o = NULL;
	const char *p = "/api/v1/recommendations";
	/* not JSON; trailing garbage; not an object */
	ck_assert_int_eq(kd_call(&S, "POST", p, SKA, NULL, "{\"count\":", &o),
			 400);
	ck_assert_str_eq(kd_code(o), "invalid_json");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", p, SKA, NULL, "{} x", &o), 400);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", p, SKA, NULL, "[1]", &o), 400);
	ck_assert_str_eq(kd_code(o), "bad_body");
	cJSON_Delete(o);
	/* invalid UTF-8: a lone continuation byte, an overlong '/', a
	 * surrogate */
	const char *bad[] = {"{\"user_id\":\"\x80\"}",
			     "{\"user_id\":\"\xC0\xAF\"}",
			     "{\"user_id\":\"\xED\xA0\x80\"}"};
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(kd_call(&S, "POST", p, SKA, NULL, bad[i], &o),
				 400);
		ck_assert_str_eq(kd_code(o), "invalid_utf8");
		cJSON_Delete(o);
	}
	/* valid multi-byte text passes */
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", SKA, NULL,
				 "{\"query\":\"caf\xC3\xA9 \xF0\x9F\x8E\xA7\"}",
				 &o),
			 200);
	cJSON_Delete(o);
	/* \u0000 would cut a string */
	ck_assert_int_eq(kd_call(&S, "POST", p, SKA, NULL,
				 "{\"user_id\":\"u1\\u0000x\"}", &o),
			 400);
	cJSON_Delete(o);
	/* wrong types name their field */
	ck_assert_int_eq(kd_call(&S, "POST", p, SKA, NULL,
				 "{\"user_id\":\"u1\",\"count\":\"ten\"}", &o),
			 400);
	ck_assert_str_eq(kd_code(o), "wrong_type");
	ck_assert_str_eq(kd_field(o), "count");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", p, SKA, NULL,
				 "{\"user_id\":7}", &o),
			 400);
	ck_assert_str_eq(kd_field(o), "user_id");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", p, SKA, NULL,
				 "{\"user_id\":\"u1\",\"count\":1000}", &o),
			 422);
	ck_assert_str_eq(kd_field(o), "count");
	cJSON_Delete(o);
	/* unknown fields are ignored */
	ck_assert_int_eq(kd_call(&S, "POST", p, SKA, NULL,
				 "{\"user_id\":\"u1\",\"count\":3,"
				 "\"colour\":{\"x\":[1,2]}}",
				 &o),
			 200);
	cJSON_Delete(o);
	/* a body that is not JSON by its type */
	ck_assert_int_eq(kd_call_raw(&S, "POST", p, SKA, "text/plain",
				     "{\"user_id\":\"u1\"}", 16, NULL, &o, NULL,
				     0),
			 415);
	ck_assert_str_eq(kd_code(o), "unsupported_media_type");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call_raw(&S, "POST", p, SKA,
				     "application/json; charset=utf-8",
				     "{\"user_id\":\"u1\"}", 16, NULL, &o, NULL,
				     0),
			 200);
	cJSON_Delete(o);
}
END_TEST

START_TEST(body_limit)
{
	/* this TCase's server has --body-limit 65536 */
	size_t n = 70000;
	char *big = malloc(n + 1);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = 0;
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/items", SKA, NULL, big,
				 &o),
			 413);
	ck_assert_str_eq(kd_code(o), "payload_too_large");
	cJSON_Delete(o);
	/* declared far over the limit (more than 4x): answered at once,
	 * without waiting for a body that never comes */
	const char *huge[] = {"Content-Length: 1000000", NULL};
	ck_assert_int_eq(kd_call_raw(&S, "POST", "/api/v1/items", SKA,
				     "application/json", "{}", 2, huge, &o,
				     NULL, 0),
			 413);
	ck_assert_str_eq(kd_code(o), "payload_too_large");
	cJSON_Delete(o);
	/* chunked: no Content-Length, refused once the limit is passed */
	const char *hs[] = {"Transfer-Encoding: chunked", NULL};
	ck_assert_int_eq(kd_call_raw(&S, "POST", "/api/v1/items", SKA,
				     "application/json", big, n, hs, &o, NULL,
				     0),
			 413);
	cJSON_Delete(o);
	/* just under the limit is read */
	big[60000] = '}';
	big[60001] = 0;
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/items", SKA, NULL, big,
				 &o),
			 400); /* an object without items */
	ck_assert_str_eq(kd_field(o), "items");
	cJSON_Delete(o);
	free(big);
}
END_TEST

START_TEST(statuses_401_409_422)
{
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/trending", NULL, NULL,
				 NULL, &o),
			 401);
	ck_assert_str_eq(kd_code(o), "unauthorized");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/trending", "kn_sk_nope",
				 NULL, NULL, &o),
			 401);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/admin/tenants",
				 KD_ADMIN, NULL, "{\"name\":\"shop-a\"}", &o),
			 409);
	ck_assert_str_eq(kd_code(o), "conflict");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/admin/tenants/nobody/"
					    "keys",
				 KD_ADMIN, NULL, "{\"kind\":\"secret\"}", &o),
			 404);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/admin/tenants/shop-a/"
					    "keys",
				 KD_ADMIN, NULL, "{\"kind\":\"root\"}", &o),
			 422);
	ck_assert_str_eq(kd_field(o), "kind");
	cJSON_Delete(o);
}
END_TEST

START_TEST(revoked_key_stops_at_once)
{
	char sk[80], pk[80], path[256];
	cJSON *o = NULL;
	ck_assert_int_eq(kd_tenant(&S, "shop-revoke", sk, pk), 0);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/trending", pk, NULL, NULL,
				 NULL),
			 200);
	snprintf(path, sizeof path,
		 "/api/v1/admin/tenants/shop-revoke/keys/%s", pk);
	ck_assert_int_eq(kd_call(&S, "DELETE", path, KD_ADMIN, NULL, NULL, &o),
			 200);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/trending", pk, NULL, NULL,
				 NULL),
			 401);
	/* a key of another tenant is not found under this one */
	snprintf(path, sizeof path,
		 "/api/v1/admin/tenants/shop-revoke/keys/%s", PKA);
	ck_assert_int_eq(kd_call(&S, "DELETE", path, KD_ADMIN, NULL, NULL, NULL),
			 404);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/trending", PKA, NULL,
				 NULL, NULL),
			 200);
}
END_TEST

/* A second knyttd on the same database trusts a key it found for
 * --key-cache-ms only: a revocation made through the first one reaches
 * it within that time. */
START_TEST(key_revoked_elsewhere_stops_within_ttl)
{
	char sk[80], pk[80], path[256];
	ck_assert_int_eq(kd_tenant(&S, "shop-ttl", sk, pk), 0);
	kd_srv s2 = S;
	s2.pid = 0;
	const char *extra[] = {"--key-cache-ms", "300", NULL};
	ck_assert_int_eq(kd_start(&s2, extra), 0);
	ck_assert_int_eq(kd_call(&s2, "GET", "/api/v1/trending", pk, NULL,
				 NULL, NULL),
			 200);
	snprintf(path, sizeof path, "/api/v1/admin/tenants/shop-ttl/keys/%s",
		 pk);
	ck_assert_int_eq(kd_call(&S, "DELETE", path, KD_ADMIN, NULL, NULL,
				 NULL),
			 200);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/trending", pk, NULL, NULL,
				 NULL),
			 401);
	usleep(400000);
	ck_assert_int_eq(kd_call(&s2, "GET", "/api/v1/trending", pk, NULL,
				 NULL, NULL),
			 401);
	ck_assert_int_eq(kd_stop(&s2), 0); /* the store is S's: no cleanup */
}
END_TEST

/* Runs knyttd to its exit; its stderr into @p err (NUL-terminated, @p cap
 * bytes) when given.  The exit status, or -1. */
static long run_knyttd_err(const char *const *args, char *const *env,
			   char *err, size_t cap)
{
	FILE *ef = err ? tmpfile() : NULL;
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(ef ? fileno(ef) : null, 2);
		const char *b = getenv("KNYTTD_BIN");
		execve(b && *b ? b : "build/bin/knyttd", (char *const *)args,
		       env);
		_exit(127);
	}
	int st = 0;
	waitpid(pid, &st, 0);
	if (err) {
		size_t n = 0;
		if (ef) {
			rewind(ef);
			n = fread(err, 1, cap - 1, ef);
			fclose(ef);
		}
		err[n] = 0;
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static long run_knyttd(const char *const *args, char *const *env)
{
	return run_knyttd_err(args, env, NULL, 0);
}

/* --malloc-arenas takes 0 (glibc's own limit) to 1024, and its error
 * says so (it once said "1..1024"). */
START_TEST(malloc_arenas_error_names_its_range)
{
	char *env[] = {NULL};
	char err[512];
	const char *bad[] = {"1025", "-1", "two", NULL};
	for (int i = 0; bad[i]; i++) {
		const char *args[] = {"knyttd", "--malloc-arenas", bad[i],
				      NULL};
		ck_assert_int_eq(run_knyttd_err(args, env, err, sizeof err),
				 2);
		ck_assert_msg(strstr(err, "--malloc-arenas needs a number in "
					  "0..1024"),
			      "%s: %s", bad[i], err);
	}
	/* the other whole-number options keep their 1.. range */
	const char *args[] = {"knyttd", "--threads", "0", NULL};
	ck_assert_int_eq(run_knyttd_err(args, env, err, sizeof err), 2);
	ck_assert_msg(strstr(err, "--threads needs a number in 1..1024"), "%s",
		      err);
}
END_TEST

START_TEST(admin_key_never_in_argv)
{
	const char *args[] = {"knyttd", "--admin-key", "x", NULL};
	char *env[] = {NULL};
	ck_assert_int_eq(run_knyttd(args, env), 2);
	const char *args2[] = {"knyttd", "--listen", "nowhere", NULL};
	ck_assert_int_eq(run_knyttd(args2, env), 2);
}
END_TEST

/* SIGHUP reopens the log: after logrotate's rename, lines go to a new
 * file of the old name. */
START_TEST(sighup_reopens_log)
{
	kd_srv s;
	memset(&s, 0, sizeof s);
	char dir[] = "/tmp/knyttd-log-XXXXXX", log[128], moved[140];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(log, sizeof log, "%s/k.log", dir);
	snprintf(moved, sizeof moved, "%s/k.log.1", dir);
	const char *extra[] = {"--log", log, NULL};
	ck_assert_int_eq(kd_start(&s, extra), 0);
	ck_assert_int_eq(kd_call(&s, "GET", "/health", NULL, NULL, NULL, NULL),
			 200);
	ck_assert_int_eq(rename(log, moved), 0);
	kill(s.pid, SIGHUP);
	int found = 0;
	for (int i = 0; i < 50 && !found; i++) {
		usleep(100000);
		found = access(log, F_OK) == 0;
	}
	ck_assert_msg(found, "no new log after SIGHUP");
	ck_assert_int_eq(kd_stop(&s), 0);
	FILE *f = fopen(log, "r");
	char line[512];
	int stopped = 0;
	while (f && fgets(line, sizeof line, f))
		stopped |= strstr(line, "\"stopped\"") != NULL;
	if (f)
		fclose(f);
	ck_assert_msg(stopped, "the new log lacks the lines after SIGHUP");
	kd_cleanup(&s);
	char cmd[96];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ===================== step 2: the credential table =================== */

enum { C_NONE, C_BADKEY, C_ADMIN, C_SECRET, C_PUBLIC, C_OWN, C_OTHER,
       C_WRONGTENANT, NCRED };
static const char *const cred_name[NCRED] = {
	"none", "unknown key", "admin", "secret", "public",
	"public+own token", "public+other's token", "public+token of another "
						      "shop"};

/* One row: a request, and the credentials allowed ('x' at the
 * credential's position in "NBASPOTW"). */
typedef struct cred_row {
	const char *method, *path, *body;
	const char *allowed; /* 8 chars: N B A S P O T W */
} cred_row;

/* Requests about shopper "alice" of shop-a; C_OWN holds alice's token.
 * Written from the rules, not from route.c. */
static const cred_row cred_rows[] = {
	{"GET", "/health", NULL, "xxxxxxxx"},
	{"GET", "/ready", NULL, "xxxxxxxx"},
	{"GET", "/metrics", NULL, "..x....."},
	{"GET", "/api/v1/openapi.json", NULL, "xxxxxxxx"},
	{"POST", "/api/v1/admin/tenants", "{\"name\":\"t-%d\"}", "..x....."},
	{"POST", "/api/v1/admin/tenants/shop-a/keys", "{\"kind\":\"public\"}",
	 "..x....."},
	{"DELETE", "/api/v1/admin/tenants/shop-a/keys/kn_pk_00", NULL,
	 "..x....."},
	{"GET", "/api/v1/admin/tenants/shop-a/limits", NULL, "..x....."},
	{"PUT", "/api/v1/admin/tenants/shop-a/limits", "{\"max_items\":0}",
	 "..x....."},
	{"GET", "/api/v1/admin/tenants/shop-a/embedder", NULL, "..x....."},
	{"PUT", "/api/v1/admin/tenants/shop-a/embedder",
	 "{\"url\":\"ftp://x/\",\"dim\":8}", "..x....."},
	{"DELETE", "/api/v1/admin/tenants/shop-a/embedder", NULL, "..x....."},
	{"GET", "/api/v1/embedder", NULL, "...x...."},
	{"PUT", "/api/v1/embedder", "{\"url\":\"ftp://x/\",\"dim\":8}",
	 "...x...."},
	{"DELETE", "/api/v1/embedder", NULL, "...x...."},
	{"POST", "/api/v1/auth/register",
	 "{\"user_id\":\"r-%d\",\"password\":\"12345678\"}", "...xxxx."},
	{"POST", "/api/v1/auth/login",
	 "{\"user_id\":\"alice\",\"password\":\"correct horse\"}", "...xxxx."},
	{"POST", "/api/v1/items", "{\"items\":[{\"item_id\":\"c-%d\"}]}",
	 "...x...."},
	{"GET", "/api/v1/items/a-2", NULL, "...xxxx."},
	{"GET", "/api/v1/products/a-2", NULL, "...xxxx."},
	{"PATCH", "/api/v1/items/a-2", "{\"price\":30}", "...x...."},
	{"DELETE", "/api/v1/items/c-none", NULL, "...x...."},
	{"POST", "/api/v1/interactions",
	 "{\"user_id\":\"u1\",\"item_id\":\"a-2\",\"interaction_type\":"
	 "\"view\"}",
	 "...x...."},
	{"POST", "/api/v1/feedback",
	 "{\"user_id\":\"alice\",\"item_id\":\"a-2\",\"interaction_type\":"
	 "\"view\"}",
	 "...x.x.."},
	{"POST", "/api/v1/recommendations", "{\"user_id\":\"alice\"}",
	 "...x.x.."},
	{"POST", "/api/v1/recommend", "{\"user_id\":\"alice\"}", "...x.x.."},
	{"POST", "/api/v1/recommendations", "{\"count\":3}", "...xxxx."},
	{"POST", "/api/v1/search", "{\"query\":\"alpha\"}", "...xxxx."},
	{"POST", "/api/v1/search", "{\"query\":\"alpha\",\"user_id\":"
				   "\"alice\"}",
	 "...x.x.."},
	{"GET", "/api/v1/similar/a-2", NULL, "...xxxx."},
	{"GET", "/api/v1/trending", NULL, "...xxxx."},
	{"PUT", "/api/v1/users/alice", "{\"attributes\":{\"size\":42}}",
	 "...x.x.."},
	{"GET", "/api/v1/users/alice", NULL, "...x.x.."},
	{"GET", "/api/v1/users/alice/favorites", NULL, "...x.x.."},
	{"GET", "/api/v1/users/alice/favorites/a-2", NULL, "...x.x.."},
	{"PUT", "/api/v1/users/alice/favorites/a-2", NULL, "...x.x.."},
	{"DELETE", "/api/v1/users/alice/favorites/a-3", NULL, "...x.x.."},
	{"POST", "/api/v1/models/train", NULL, "...x...."},
	{"GET", "/api/v1/models/jobs/job-0", NULL, "...x...."},
	{"GET", "/api/v1/models", NULL, "...x...."},
	{"GET", "/api/v1/analytics/searches", NULL, "...x...."},
	{"GET", "/api/v1/experiments", NULL, "...x...."},
	{"POST", "/api/v1/experiments",
	 "{\"name\":\"x-%d\",\"variants\":[{\"name\":\"A\"},"
	 "{\"name\":\"B\"}]}",
	 "...x...."},
	{"GET", "/api/v1/experiments/none", NULL, "...x...."},
	{"POST", "/api/v1/experiments/none/stop", NULL, "...x...."},
	{"GET", "/api/v1/models/schedule", NULL, "...x...."},
	{"PUT", "/api/v1/models/schedule", "{\"every_hours\":0}", "...x...."},
	{"GET", "/api/v1/stats", NULL, "...x...."},
};
#define NROWS (sizeof cred_rows / sizeof cred_rows[0])

static long call_as(int cred, const char *method, const char *path,
		    const char *body)
{
	static const char *keys[NCRED];
	keys[C_NONE] = NULL;
	keys[C_BADKEY] = "kn_sk_0000000000000000000000000000000000000000000"
			 "000000000000000000000";
	keys[C_ADMIN] = KD_ADMIN;
	keys[C_SECRET] = SKA;
	keys[C_PUBLIC] = keys[C_OWN] = keys[C_OTHER] = keys[C_WRONGTENANT] =
		PKA;
	const char *tok = cred == C_OWN		  ? TOK_ALICE
			  : cred == C_OTHER	  ? TOK_BOB
			  : cred == C_WRONGTENANT ? TOK_ALICE_B
						  : NULL;
	return kd_call(&S, method, path, keys[cred], tok, body, NULL);
}

START_TEST(credential_table)
{
	int seq = 0;
	for (size_t i = 0; i < NROWS; i++) {
		const cred_row *row = &cred_rows[i];
		for (int c = 0; c < NCRED; c++) {
			char body[512];
			if (row->body)
				snprintf(body, sizeof body, row->body, seq++);
			long st = call_as(c, row->method, row->path,
					  row->body ? body : NULL);
			int allowed = row->allowed[c] == 'x';
			int denied = st == 401 || st == 403;
			ck_assert_msg(st >= 200 && st < 500,
				      "%s %s as %s: status %ld", row->method,
				      row->path, cred_name[c], st);
			ck_assert_msg(allowed != denied,
				      "%s %s as %s: status %ld, expected %s",
				      row->method, row->path, cred_name[c], st,
				      allowed ? "allowed" : "401/403");
			/* which of the two: no credential or a bad one is
			 * 401, a valid one without the right is 403 */
			if (denied)
				ck_assert_int_eq(st, c == C_NONE ||
							     c == C_BADKEY ||
							     c == C_WRONGTENANT
						     ? 401
						     : 403);
		}
	}
}
END_TEST

/* Every route of the table in route.c has a row above (so a new route
 * cannot skip the credential table). */
START_TEST(credential_table_covers_every_route)
{
	FILE *f = fopen("services/knyttd/route.c", "r");
	ck_assert_ptr_nonnull(f);
	char line[256];
	int routes = 0;
	while (fgets(line, sizeof line, f)) {
		char method[16], pattern[128];
		if (sscanf(line, " {\"%15[A-Z]\", \"%127[^\"]\"", method,
			   pattern) != 2)
			continue;
		routes++;
		int hit = 0;
		for (size_t i = 0; i < NROWS && !hit; i++) {
			const char *p = pattern, *q = cred_rows[i].path;
			if (strcmp(cred_rows[i].method, method))
				continue;
			/* "{}" in the pattern matches one segment */
			while (*p && *q) {
				if (p[0] == '{' && p[1] == '}') {
					p += 2;
					while (*q && *q != '/')
						q++;
				} else if (*p++ != *q++) {
					break;
				}
			}
			hit = !*p && !*q;
		}
		ck_assert_msg(hit, "route %s %s has no row in the credential "
				   "table", method, pattern);
	}
	fclose(f);
	ck_assert_int_ge(routes, 25);
}
END_TEST

START_TEST(shopper_login_and_tokens)
{
	cJSON *o = NULL;
	const char *body = "{\"user_id\":\"carol\",\"password\":\"pw-carol-1\"}";
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/auth/register", PKA, NULL,
				 body, &o),
			 201);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/auth/register", PKA, NULL,
				 body, &o),
			 409);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/auth/login", PKA, NULL,
				 body, &o),
			 200);
	char tok[1024];
	snprintf(tok, sizeof tok, "%s",
		 cJSON_GetObjectItem(o, "token")->valuestring);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/users/carol", PKA, tok,
				 NULL, NULL),
			 200);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/auth/login", PKA, NULL,
				 "{\"user_id\":\"carol\",\"password\":"
				 "\"wrong-pass\"}",
				 &o),
			 401);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/auth/login", PKA, NULL,
				 "{\"user_id\":\"nobody\",\"password\":"
				 "\"whatever1\"}",
				 NULL),
			 401);
	/* short password; a tampered token */
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/auth/register", PKA, NULL,
				 "{\"user_id\":\"dan\",\"password\":\"short\"}",
				 &o),
			 422);
	ck_assert_str_eq(kd_field(o), "password");
	cJSON_Delete(o);
	size_t n = strlen(tok);
	tok[n - 1] = tok[n - 1] == 'a' ? 'b' : 'a';
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/users/carol", PKA, tok,
				 NULL, NULL),
			 401);
	/* a token naming another user cannot be forged from carol's */
	char forged[1024];
	snprintf(forged, sizeof forged, "%s", TOK_BOB);
	char *p = strstr(forged, ".626f62."); /* hex of "bob" */
	ck_assert_ptr_nonnull(p);
	memcpy(p, ".616c69", 7); /* "ali" */
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/users/alice", PKA, forged,
				 NULL, NULL),
			 401);
}
END_TEST

START_TEST(expired_token_refused)
{
	/* this TCase's server has --token-ttl 2 */
	char tok[1024];
	ck_assert_int_eq(kd_register(&S, PKA, "erin", tok, sizeof tok), 0);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/users/erin", PKA, tok,
				 NULL, NULL),
			 200);
	sleep(3);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/users/erin", PKA, tok,
				 NULL, NULL),
			 401);
}
END_TEST

/* ===================== step 3: catalog and events ===================== */

START_TEST(items_batch_report)
{
	cJSON *o = NULL;
	const char *body =
		"{\"items\":[{\"item_id\":\"n-1\",\"title\":\"ok one\","
		"\"price\":12.5,\"currency\":\"EUR\",\"attributes\":"
		"{\"color\":\"red\"},\"unknown_field\":[1]},"
		"{\"item_id\":\"n-2\",\"price\":-1},"
		"{\"item_id\":\"n-3\",\"in_stock\":\"yes\"},"
		"{\"title\":\"no id\"},"
		"{\"item_id\":\"n-5\",\"category\":\"a//b\"},"
		"7,"
		"{\"item_id\":\"n-7\",\"currency\":\"euro\"},"
		"{\"item_id\":\"n-8\",\"title\":\"ok two\"}]}";
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/items", SKA, NULL, body,
				 &o),
			 200);
	ck_assert_int_eq(cJSON_GetObjectItem(o, "accepted_count")->valueint, 2);
	ck_assert_int_eq(cJSON_GetObjectItem(o, "rejected_count")->valueint, 6);
	const char *want[][2] = {{"1", "price"},    {"2", "in_stock"},
				 {"3", "item_id"},  {"4", "category"},
				 {"5", ""},         {"6", "currency"}};
	const cJSON *rej = cJSON_GetObjectItem(o, "rejected");
	ck_assert_int_eq(cJSON_GetArraySize(rej), 6);
	for (int i = 0; i < 6; i++) {
		const cJSON *x = cJSON_GetArrayItem(rej, i);
		ck_assert_int_eq(cJSON_GetObjectItem(x, "index")->valueint,
				 atoi(want[i][0]));
		ck_assert_str_eq(cJSON_GetObjectItem(x, "field")->valuestring,
				 want[i][1]);
		ck_assert(strlen(cJSON_GetObjectItem(x, "reason")->valuestring) >
			  0);
	}
	cJSON_Delete(o);
	/* accepted ones are stored whole, rejected ones not at all */
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/n-1", SKA, NULL,
				 NULL, &o),
			 200);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "currency")->valuestring, "EUR");
	ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(o,
								 "attributes"),
					     "color")->valuestring,
			 "red");
	ck_assert(cJSON_GetObjectItem(o, "price")->valuedouble == 12.5);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/n-8", SKA, NULL,
				 NULL, NULL),
			 200);
	const char *gone[] = {"n-2", "n-3", "n-5", "n-7"};
	for (int i = 0; i < 4; i++) {
		char path[64];
		snprintf(path, sizeof path, "/api/v1/items/%s", gone[i]);
		ck_assert_int_eq(kd_call(&S, "GET", path, SKA, NULL, NULL, NULL),
				 404);
	}
}
END_TEST

/* 100 items take the bulk path (knytt_store_import + engine sync): the
 * same report, and the accepted items are searchable at once. */
START_TEST(items_bulk_batch_report)
{
	char *body = malloc(100 * 160 + 64);
	size_t n = (size_t)sprintf(body, "{\"items\":[");
	for (int i = 0; i < 100; i++) {
		/* one JSON key each: a repeated key would be the first's */
		n += (size_t)sprintf(body + n,
				     "%s{\"item_id\":\"bulk-%d\",\"title\":"
				     "\"zephyr lamp %d\",\"category\":"
				     "\"%s\",\"price\":%d%s}",
				     i ? "," : "", i, i,
				     i == 42 ? "x//y" : "home/light",
				     i == 17 ? -4 : 5 + i,
				     i == 77 ? ",\"currency\":\"dollars\"" : "");
	}
	strcpy(body + n, "]}");
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/items", SKA, NULL, body,
				 &o),
			 200);
	free(body);
	ck_assert_int_eq(cJSON_GetObjectItem(o, "accepted_count")->valueint,
			 97);
	const cJSON *rej = cJSON_GetObjectItem(o, "rejected");
	ck_assert_int_eq(cJSON_GetArraySize(rej), 3);
	const char *want[][2] = {{"17", "price"}, {"42", "category"},
				 {"77", "currency"}};
	for (int i = 0; i < 3; i++) {
		const cJSON *x = cJSON_GetArrayItem(rej, i);
		ck_assert_int_eq(cJSON_GetObjectItem(x, "index")->valueint,
				 atoi(want[i][0]));
		ck_assert_str_eq(cJSON_GetObjectItem(x, "field")->valuestring,
				 want[i][1]);
		ck_assert_str_eq(cJSON_GetObjectItem(x, "item_id")->valuestring,
				 i == 0 ? "bulk-17" : i == 1 ? "bulk-42"
							     : "bulk-77");
	}
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/bulk-17", SKA, NULL,
				 NULL, NULL),
			 404);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/bulk-99", SKA, NULL,
				 NULL, &o),
			 200);
	ck_assert(cJSON_GetObjectItem(o, "price")->valuedouble == 104);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", PKA, NULL,
				 "{\"query\":\"zephyr lamp 63\",\"count\":3,"
				 "\"filters\":{\"category\":\"home\"}}",
				 &o),
			 200);
	char ids[512];
	ids_of(o, "results", ids, sizeof ids);
	ck_assert_msg(strstr(ids, "bulk-63,") != NULL, "search: %s", ids);
	cJSON_Delete(o);
	/* filters see the bulk items' fields: the recommendation filters
	 * go through the engine's item table, filled by the sync */
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/recommendations", SKA,
				 NULL,
				 "{\"user_id\":\"u1\",\"count\":5,"
				 "\"filters\":{\"category\":\"home/light\"}}",
				 &o),
			 200);
	check_results(o, "home/light", 0, 1e9, 0, 0, 5);
	cJSON_Delete(o);
}
END_TEST

START_TEST(items_batch_limits)
{
	/* 10,001 items: refused as a whole, nothing stored */
	size_t cap = 10001 * 40 + 64, n = 0;
	char *body = malloc(cap);
	n += (size_t)snprintf(body, cap, "{\"items\":[");
	for (int i = 0; i < 10001; i++)
		n += (size_t)snprintf(body + n, cap - n,
				      "%s{\"item_id\":\"big-%d\"}", i ? "," : "",
				      i);
	snprintf(body + n, cap - n, "]}");
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/items", SKA, NULL, body,
				 &o),
			 422);
	ck_assert_str_eq(kd_field(o), "items");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/big-0", SKA, NULL,
				 NULL, NULL),
			 404);
	/* exactly 10,000 are taken */
	char *end = strstr(body, ",{\"item_id\":\"big-10000\"}");
	ck_assert_ptr_nonnull(end);
	strcpy(end, "]}");
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/items", SKA, NULL, body,
				 &o),
			 200);
	ck_assert_int_eq(cJSON_GetObjectItem(o, "accepted_count")->valueint,
			 10000);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/big-9999", SKA,
				 NULL, NULL, NULL),
			 200);
	free(body);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/items", SKA, NULL,
				 "{\"items\":[]}", &o),
			 422);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/items", SKA, NULL,
				 "{\"items\":{}}", &o),
			 400);
	cJSON_Delete(o);
}
END_TEST

START_TEST(item_get_patch_delete)
{
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/items", SKA, NULL,
				 "{\"item_id\":\"p-1\",\"title\":\"patch me\","
				 "\"price\":10,\"category\":\"shoes\"}",
				 &o),
			 200); /* a single item without the list */
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "PATCH", "/api/v1/items/p-1", SKA, NULL,
				 "{\"price\":99.5,\"in_stock\":false}", &o),
			 200);
	ck_assert(cJSON_GetObjectItem(o, "price")->valuedouble == 99.5);
	ck_assert(cJSON_IsFalse(cJSON_GetObjectItem(o, "in_stock")));
	ck_assert_str_eq(cJSON_GetObjectItem(o, "title")->valuestring,
			 "patch me");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/products/p-1", PKA, NULL,
				 NULL, &o),
			 200);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "category")->valuestring,
			 "shoes");
	ck_assert(cJSON_GetObjectItem(o, "price")->valuedouble == 99.5);
	cJSON_Delete(o);
	/* bad patches change nothing */
	ck_assert_int_eq(kd_call(&S, "PATCH", "/api/v1/items/p-1", SKA, NULL,
				 "{\"price\":\"cheap\"}", &o),
			 400);
	ck_assert_str_eq(kd_field(o), "price");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "PATCH", "/api/v1/items/p-1", SKA, NULL,
				 "{\"price\":-5,\"title\":\"changed\"}", &o),
			 422);
	ck_assert_str_eq(kd_field(o), "price");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/p-1", SKA, NULL,
				 NULL, &o),
			 200);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "title")->valuestring,
			 "patch me");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "PATCH", "/api/v1/items/p-none", SKA,
				 NULL, "{\"price\":1}", NULL),
			 404);
	ck_assert_int_eq(kd_call(&S, "DELETE", "/api/v1/items/p-1", SKA, NULL,
				 NULL, NULL),
			 200);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/p-1", SKA, NULL,
				 NULL, NULL),
			 404);
	ck_assert_int_eq(kd_call(&S, "DELETE", "/api/v1/items/p-1", SKA, NULL,
				 NULL, NULL),
			 404);
	ck_assert_int_eq(kd_call(&S, "PATCH", "/api/v1/items/p-1", SKA, NULL,
				 "{\"price\":1}", NULL),
			 404);
}
END_TEST

/* An id holding '/' is named in a path as %2F (either case): the path is
 * split at its own slashes before it is decoded.  libmicrohttpd decodes
 * the path before the handler sees it, so this was a 404 before. */
START_TEST(item_id_with_a_slash)
{
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/items", SKA, NULL,
				 "{\"items\":[{\"item_id\":\"shoes/red 42\","
				 "\"title\":\"slashed\",\"price\":10},"
				 "{\"item_id\":\"shoes\",\"title\":\"plain\"}]}",
				 NULL),
			 200);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/shoes%2Fred%2042",
				 PKA, NULL, NULL, &o),
			 200);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "item_id")->valuestring,
			 "shoes/red 42");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "PATCH", "/api/v1/items/shoes%2fred%2042",
				 SKA, NULL, "{\"price\":12}", &o),
			 200);
	ck_assert(cJSON_GetObjectItem(o, "price")->valuedouble == 12);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET",
				 "/api/v1/products/shoes%2Fred%2042?x=a%2Fb",
				 PKA, NULL, NULL, &o),
			 200);
	ck_assert(cJSON_GetObjectItem(o, "price")->valuedouble == 12);
	cJSON_Delete(o);
	/* an unencoded slash still separates segments: no such route */
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/shoes/red%2042",
				 PKA, NULL, NULL, NULL),
			 404);
	/* the item "shoes" is another one, untouched */
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/shoes", PKA, NULL,
				 NULL, &o),
			 200);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "title")->valuestring,
			 "plain");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "DELETE", "/api/v1/items/shoes%2Fred%2042",
				 SKA, NULL, NULL, NULL),
			 200);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/shoes%2Fred%2042",
				 PKA, NULL, NULL, NULL),
			 404);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/shoes", PKA, NULL,
				 NULL, NULL),
			 200);
}
END_TEST

/* The title of item @p id in a search answer for @p q on @p s, into
 * @p out ("" when the item is not in the answer). */
static void title_in_search(const kd_srv *s, const char *q, const char *id,
			    char *out, size_t cap)
{
	char body[256];
	cJSON *o = NULL;
	snprintf(body, sizeof body, "{\"query\":\"%s\",\"count\":20}", q);
	ck_assert_int_eq(kd_call(s, "POST", "/api/v1/search", SKA, NULL, body,
				 &o),
			 200);
	out[0] = 0;
	const cJSON *x;
	cJSON_ArrayForEach(x, cJSON_GetObjectItem(o, "results"))
	{
		const cJSON *i = cJSON_GetObjectItem(x, "item_id");
		const cJSON *t = cJSON_GetObjectItem(x, "title");
		if (cJSON_IsString(i) && !strcmp(i->valuestring, id) &&
		    cJSON_IsString(t))
			snprintf(out, cap, "%s", t->valuestring);
	}
	cJSON_Delete(o);
}

/* Answers carry item fields from knyttd's item cache (itemcache.c):
 * every item write through the server shows in the next answer. */
START_TEST(item_cache_follows_writes)
{
	char t[256];
	post_ok("/api/v1/items", SKA,
		"{\"items\":[{\"item_id\":\"ic-1\",\"title\":\"cachetest "
		"one\",\"price\":3},{\"item_id\":\"ic-2\",\"title\":"
		"\"cachetest two\",\"price\":4}]}");
	title_in_search(&S, "cachetest", "ic-1", t, sizeof t);
	ck_assert_str_eq(t, "cachetest one"); /* now cached */
	ck_assert_int_eq(kd_call(&S, "PATCH", "/api/v1/items/ic-1", SKA, NULL,
				 "{\"title\":\"cachetest patched\"}", NULL),
			 200);
	title_in_search(&S, "cachetest", "ic-1", t, sizeof t);
	ck_assert_str_eq(t, "cachetest patched");
	/* an update through POST /items, with its own path */
	post_ok("/api/v1/items", SKA,
		"{\"items\":[{\"item_id\":\"ic-1\",\"title\":\"cachetest "
		"posted\",\"price\":3}]}");
	title_in_search(&S, "cachetest", "ic-1", t, sizeof t);
	ck_assert_str_eq(t, "cachetest posted");
	title_in_search(&S, "cachetest", "ic-2", t, sizeof t);
	ck_assert_str_eq(t, "cachetest two");
	ck_assert_int_eq(kd_call(&S, "DELETE", "/api/v1/items/ic-2", SKA, NULL,
				 NULL, NULL),
			 200);
	title_in_search(&S, "cachetest", "ic-2", t, sizeof t);
	ck_assert_str_eq(t, "");
	/* answers written as text (jtext.c) escape what they echo */
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/recommendations", SKA,
				 NULL,
				 "{\"user_id\":\"q\\\"b\\\\s/\u00e9\","
				 "\"count\":3}",
				 &o),
			 200);
	ck_assert_ptr_nonnull(o); /* it parsed */
	ck_assert_str_eq(cJSON_GetObjectItem(o, "user_id")->valuestring,
			 "q\"b\\s/\u00e9");
	ck_assert(cJSON_GetObjectItem(o, "count")->valuedouble ==
		  cJSON_GetArraySize(cJSON_GetObjectItem(o, "results")));
	cJSON_Delete(o);
}
END_TEST

/* A second knyttd on the same database learns of an item changed through
 * the first one within --item-cache-ms. */
START_TEST(item_changed_elsewhere_shows_within_period)
{
	char t[256];
	post_ok("/api/v1/items", SKA,
		"{\"items\":[{\"item_id\":\"ie-1\",\"title\":\"elsewheretest "
		"old\",\"price\":3}]}");
	kd_srv s2 = S;
	s2.pid = 0;
	const char *extra[] = {"--item-cache-ms", "300", NULL};
	ck_assert_int_eq(kd_start(&s2, extra), 0);
	title_in_search(&s2, "elsewheretest", "ie-1", t, sizeof t);
	ck_assert_str_eq(t, "elsewheretest old"); /* cached by s2 */
	ck_assert_int_eq(kd_call(&S, "PATCH", "/api/v1/items/ie-1", SKA, NULL,
				 "{\"title\":\"elsewheretest new\"}", NULL),
			 200);
	usleep(400000);
	title_in_search(&s2, "elsewheretest", "ie-1", t, sizeof t);
	ck_assert_str_eq(t, "elsewheretest new");
	ck_assert_int_eq(kd_stop(&s2), 0); /* the store is S's: no cleanup */
}
END_TEST

START_TEST(items_with_embeddings)
{
	/* the engine's default dimension is 64 */
	char body[4096];
	int n = snprintf(body, sizeof body,
			 "{\"items\":[{\"item_id\":\"e-1\",\"title\":\"vec\","
			 "\"embedding\":[");
	for (int i = 0; i < 64; i++)
		n += snprintf(body + n, sizeof body - (size_t)n, "%s%d",
			      i ? "," : "", i == 3 ? 1 : 0);
	n += snprintf(body + n, sizeof body - (size_t)n,
		      "]},{\"item_id\":\"e-2\",\"embedding\":\"no\"},"
		      "{\"item_id\":\"e-3\",\"embedding\":[1,2,3]}]}");
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/items", SKA, NULL, body,
				 &o),
			 200);
	ck_assert_int_eq(cJSON_GetObjectItem(o, "accepted_count")->valueint, 1);
	const cJSON *rej = cJSON_GetObjectItem(o, "rejected");
	ck_assert_int_eq(cJSON_GetArraySize(rej), 2);
	ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetArrayItem(rej, 0),
					     "field")->valuestring,
			 "embedding");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/e-3", SKA, NULL,
				 NULL, NULL),
			 404);
	/* a search by that vector finds it first */
	n = snprintf(body, sizeof body, "{\"count\":3,\"vector\":[");
	for (int i = 0; i < 64; i++)
		n += snprintf(body + n, sizeof body - (size_t)n, "%s%d",
			      i ? "," : "", i == 3 ? 1 : 0);
	snprintf(body + n, sizeof body - (size_t)n, "]}");
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", PKA, NULL, body,
				 &o),
			 200);
	char ids[512];
	ids_of(o, "results", ids, sizeof ids);
	ck_assert_msg(strncmp(ids, "e-1,", 4) == 0, "vector search: %s", ids);
	cJSON_Delete(o);
}
END_TEST

START_TEST(interactions_single_and_batch)
{
	cJSON *o = NULL;
	const char *p = "/api/v1/interactions";
	ck_assert_int_eq(kd_call(&S, "POST", p, SKA, NULL,
				 "{\"user_id\":\"ev-1\",\"item_id\":\"a-4\","
				 "\"interaction_type\":\"purchase\","
				 "\"timestamp\":\"2026-12-01T10:00:00Z\"}",
				 &o),
			 200);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", p, SKA, NULL,
				 "{\"user_id\":\"ev-1\",\"item_id\":\"zz\","
				 "\"interaction_type\":\"view\"}",
				 &o),
			 422);
	ck_assert_str_eq(kd_code(o), "unknown_item");
	ck_assert_str_eq(kd_field(o), "item_id");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", p, SKA, NULL,
				 "{\"user_id\":\"ev-1\",\"item_id\":\"a-4\"}",
				 &o),
			 422);
	ck_assert_str_eq(kd_field(o), "interaction_type");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", p, SKA, NULL,
				 "{\"user_id\":\"ev-1\",\"item_id\":\"a-4\","
				 "\"interaction_type\":\"Bad Type!\"}",
				 &o),
			 422);
	ck_assert_str_eq(kd_field(o), "interaction_type");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", p, SKA, NULL,
				 "{\"user_id\":\"ev-1\",\"item_id\":\"a-4\","
				 "\"interaction_type\":\"view\","
				 "\"timestamp\":\"yesterday\"}",
				 &o),
			 400);
	ck_assert_str_eq(kd_field(o), "timestamp");
	cJSON_Delete(o);
	ck_assert_int_eq(
		kd_call(&S, "POST", p, SKA, NULL,
			"{\"interactions\":[{\"user_id\":\"ev-1\",\"item_id\":"
			"\"a-5\",\"interaction_type\":\"view\"},{\"user_id\":"
			"\"ev-1\",\"item_id\":\"zz\",\"interaction_type\":"
			"\"view\"},{\"user_id\":\"ev-1\",\"item_id\":\"a-6\","
			"\"interaction_type\":\"rating\",\"value\":4}]}",
			&o),
		200);
	ck_assert_int_eq(cJSON_GetObjectItem(o, "accepted_count")->valueint, 2);
	const cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "rejected"),
					     0);
	ck_assert_int_eq(cJSON_GetObjectItem(r0, "index")->valueint, 1);
	ck_assert_str_eq(cJSON_GetObjectItem(r0, "field")->valuestring,
			 "item_id");
	cJSON_Delete(o);
	/* three events stored, newest first; the timestamp was read */
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/users/ev-1", SKA, NULL,
				 NULL, &o),
			 200);
	const cJSON *h = cJSON_GetObjectItem(o, "history");
	ck_assert_int_eq(cJSON_GetArraySize(h), 3);
	int found = 0;
	const cJSON *x;
	cJSON_ArrayForEach(x, h) if (cJSON_GetObjectItem(x, "timestamp")
					     ->valuedouble == 1796119200000.0)
		found = 1;
	ck_assert(found);
	cJSON_Delete(o);
}
END_TEST

START_TEST(feedback_is_the_shoppers_own)
{
	cJSON *o = NULL;
	const char *p = "/api/v1/feedback";
	/* the token's shopper fills a missing user_id */
	ck_assert_int_eq(kd_call(&S, "POST", p, PKA, TOK_BOB,
				 "{\"item_id\":\"a-7\",\"interaction_type\":"
				 "\"add_to_cart\"}",
				 &o),
			 200);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", p, PKA, TOK_BOB,
				 "{\"user_id\":\"alice\",\"item_id\":\"a-7\","
				 "\"interaction_type\":\"view\"}",
				 &o),
			 403);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", p, PKA, TOK_BOB,
				 "{\"interactions\":[{\"item_id\":\"a-8\","
				 "\"interaction_type\":\"view\"},{\"user_id\":"
				 "\"alice\",\"item_id\":\"a-8\","
				 "\"interaction_type\":\"view\"}]}",
				 &o),
			 200);
	ck_assert_int_eq(cJSON_GetObjectItem(o, "accepted_count")->valueint, 1);
	ck_assert_int_eq(cJSON_GetObjectItem(o, "rejected_count")->valueint, 1);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/users/bob", PKA, TOK_BOB,
				 NULL, &o),
			 200);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "history")),
			 2);
	cJSON_Delete(o);
}
END_TEST

/* ===================== step 4: queries ================================ */

static void check_results(const cJSON *o, const char *category, double lo,
			  double hi, int stock, double minq, int maxn)
{
	const cJSON *res = cJSON_GetObjectItem(o, "results"), *x;
	ck_assert(cJSON_IsArray(res));
	ck_assert_int_le(cJSON_GetArraySize(res), maxn);
	cJSON_ArrayForEach(x, res)
	{
		const char *c = cJSON_GetObjectItem(x, "category")->valuestring;
		double price = cJSON_GetObjectItem(x, "price")->valuedouble;
		if (category)
			ck_assert_msg(strncmp(c, category, strlen(category)) ==
					      0,
				      "category %s", c);
		ck_assert(price >= lo && price <= hi);
		if (stock)
			ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(x,
								   "in_stock")));
		ck_assert(cJSON_GetObjectItem(x, "quality_score")->valuedouble >=
			  minq);
		ck_assert(cJSON_IsString(cJSON_GetObjectItem(x, "reason")));
		ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(x, "score")));
	}
}

START_TEST(recommend_filters_and_exclusions)
{
	cJSON *o = NULL;
	const char *paths[] = {"/api/v1/recommendations", "/api/v1/recommend"};
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(
			kd_call(&S, "POST", paths[i], SKA, NULL,
				"{\"user_id\":\"u1\",\"count\":5,\"filters\":"
				"{\"category\":\"electronics\",\"price_min\":"
				"20,\"price_max\":250,\"in_stock\":true,"
				"\"min_quality\":1}}",
				&o),
			200);
		check_results(o, "electronics", 20, 250, 1, 1, 5);
		ck_assert_int_gt(cJSON_GetArraySize(cJSON_GetObjectItem(o,
									"results")),
				 0);
		cJSON_Delete(o);
	}
	/* exclusions: the first answer's items are left out of the next */
	ck_assert_int_eq(kd_call(&S, "POST", paths[0], SKA, NULL,
				 "{\"user_id\":\"u2\",\"count\":3}", &o),
			 200);
	char first[512], body[1024], second[512];
	ids_of(o, "results", first, sizeof first);
	cJSON_Delete(o);
	ck_assert(strlen(first) > 0);
	int n = snprintf(body, sizeof body,
			 "{\"user_id\":\"u2\",\"count\":3,\"diversity\":0.5,"
			 "\"exclude\":[");
	char tmp[512], *save = NULL;
	snprintf(tmp, sizeof tmp, "%s", first);
	int k = 0;
	for (char *t = strtok_r(tmp, ",", &save); t;
	     t = strtok_r(NULL, ",", &save))
		n += snprintf(body + n, sizeof body - (size_t)n, "%s\"%s\"",
			      k++ ? "," : "", t);
	snprintf(body + n, sizeof body - (size_t)n, "]}");
	ck_assert_int_eq(kd_call(&S, "POST", paths[0], SKA, NULL, body, &o),
			 200);
	ids_of(o, "results", second, sizeof second);
	cJSON_Delete(o);
	snprintf(tmp, sizeof tmp, "%s", first);
	for (char *t = strtok_r(tmp, ",", &save); t;
	     t = strtok_r(NULL, ",", &save)) {
		char needle[64];
		snprintf(needle, sizeof needle, "%s,", t);
		ck_assert_msg(!strstr(second, needle), "%s excluded but in %s",
			      t, second);
	}
	/* bad filters */
	ck_assert_int_eq(kd_call(&S, "POST", paths[0], SKA, NULL,
				 "{\"user_id\":\"u2\",\"filters\":{\"price_min\":"
				 "50,\"price_max\":10}}",
				 &o),
			 422);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", paths[0], SKA, NULL,
				 "{\"user_id\":\"u2\",\"filters\":{\"in_stock\":"
				 "\"yes\"}}",
				 &o),
			 400);
	ck_assert_str_eq(kd_field(o), "in_stock");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", paths[0], SKA, NULL,
				 "{\"user_id\":\"u2\",\"diversity\":2}", &o),
			 422);
	cJSON_Delete(o);
}
END_TEST

START_TEST(recommend_anonymous_and_new_users)
{
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/recommendations", PKA,
				 NULL,
				 "{\"count\":4,\"filters\":{\"category\":"
				 "\"shoes\",\"in_stock\":true}}",
				 &o),
			 200);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "strategy")->valuestring,
			 "trending");
	check_results(o, "shoes", 0, 1e9, 1, 0, 4);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/recommendations", SKA,
				 NULL, "{\"user_id\":\"never-seen\"}", &o),
			 200);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "strategy")->valuestring,
			 "trending");
	ck_assert_int_gt(cJSON_GetArraySize(cJSON_GetObjectItem(o, "results")),
			 0);
	cJSON_Delete(o);
}
END_TEST

/* Every result's attributes: colour one of @p colours ("red,blue,"),
 * size in [lo, hi]; at least one result. */
static void check_attrs(const cJSON *o, const char *colours, int lo, int hi)
{
	const cJSON *x;
	int n = 0;
	cJSON_ArrayForEach(x, cJSON_GetObjectItem(o, "results"))
	{
		const cJSON *a = cJSON_GetObjectItem(x, "attributes");
		const cJSON *c = cJSON_GetObjectItem(a, "colour");
		const cJSON *s = cJSON_GetObjectItem(a, "size");
		ck_assert(cJSON_IsString(c) && cJSON_IsNumber(s));
		char needle[32];
		snprintf(needle, sizeof needle, "%s,", c->valuestring);
		ck_assert_msg(strstr(colours, needle), "colour %s",
			      c->valuestring);
		ck_assert(s->valuedouble >= lo && s->valuedouble <= hi);
		n++;
	}
	ck_assert_int_gt(n, 0);
}

START_TEST(attribute_filters_in_queries)
{
	cJSON *o = NULL;
	/* an expression, and the structured form, on search */
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", PKA, NULL,
				 "{\"query\":\"alpha\",\"count\":30,\"filters\":"
				 "{\"where\":\"colour = red or size > 25\"}}",
				 &o),
			 200);
	const cJSON *x;
	cJSON_ArrayForEach(x, cJSON_GetObjectItem(o, "results"))
	{
		const cJSON *a = cJSON_GetObjectItem(x, "attributes");
		ck_assert(!strcmp(cJSON_GetObjectItem(a, "colour")->valuestring,
				  "red") ||
			  cJSON_GetObjectItem(a, "size")->valuedouble > 25);
	}
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "results")),
			 6 + 4); /* red: a-0, 5, .., 25; size > 25: a-26..29 */
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", PKA, NULL,
				 "{\"query\":\"alpha\",\"count\":30,\"filters\":"
				 "{\"attributes\":{\"colour\":[\"red\",\"blue\"],"
				 "\"size\":{\"min\":5,\"max\":20}}}}",
				 &o),
			 200);
	check_attrs(o, "red,blue,", 5, 20);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "results")),
			 7); /* 5, 6, 10, 11, 15, 16, 20 */
	cJSON_Delete(o);
	/* anonymous recommendations (trending, filtered by the server) */
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/recommendations", PKA,
				 NULL,
				 "{\"count\":10,\"filters\":{\"where\":"
				 "\"colour in (green, black)\"}}",
				 &o),
			 200);
	cJSON_ArrayForEach(x, cJSON_GetObjectItem(o, "results"))
	{
		const char *c = cJSON_GetObjectItem(
			cJSON_GetObjectItem(x, "attributes"), "colour")
					->valuestring;
		ck_assert(!strcmp(c, "green") || !strcmp(c, "black"));
	}
	cJSON_Delete(o);
	/* a shopper's recommendations */
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/recommendations", SKA,
				 NULL,
				 "{\"user_id\":\"u1\",\"count\":10,\"filters\":"
				 "{\"attributes\":{\"colour\":\"white\"}}}",
				 &o),
			 200);
	cJSON_ArrayForEach(x, cJSON_GetObjectItem(o, "results"))
		ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(
								     x, "attributes"),
						     "colour")
					 ->valuestring,
				 "white");
	cJSON_Delete(o);
	/* similar: ?where= */
	ck_assert_int_eq(kd_call(&S, "GET",
				 "/api/v1/similar/a-1?where=colour%3Dblue&count=20",
				 PKA, NULL, NULL, &o),
			 200);
	cJSON_ArrayForEach(x, cJSON_GetObjectItem(o, "results"))
		ck_assert_str_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(
								     x, "attributes"),
						     "colour")
					 ->valuestring,
				 "blue");
	cJSON_Delete(o);
	/* bad input: the field and the position */
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", PKA, NULL,
				 "{\"query\":\"alpha\",\"filters\":{\"where\":"
				 "\"colour = red and\"}}",
				 &o),
			 422);
	ck_assert_str_eq(kd_field(o), "where");
	ck_assert_ptr_nonnull(strstr(cJSON_GetObjectItem(cJSON_GetObjectItem(o,
								     "error"),
						     "message")
					     ->valuestring,
				     "position"));
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", PKA, NULL,
				 "{\"query\":\"alpha\",\"filters\":{\"where\":5}}",
				 &o),
			 400);
	ck_assert_str_eq(kd_field(o), "where");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", PKA, NULL,
				 "{\"query\":\"alpha\",\"filters\":{\"attributes\":"
				 "{\"colour\":[]}}}",
				 &o),
			 400);
	ck_assert_str_eq(kd_field(o), "attributes");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/similar/a-1?where=%28",
				 PKA, NULL, NULL, &o),
			 422);
	ck_assert_str_eq(kd_field(o), "where");
	cJSON_Delete(o);
}
END_TEST

START_TEST(search_routes)
{
	cJSON *o = NULL;
	char ids[2048];
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", PKA, NULL,
				 "{\"query\":\"alpha thing 7\",\"count\":5}",
				 &o),
			 200);
	ids_of(o, "results", ids, sizeof ids);
	ck_assert_msg(strstr(ids, "a-7,") != NULL, "search: %s", ids);
	ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(o, "search_id")));
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", PKA, TOK_ALICE,
				 "{\"query\":\"alpha\",\"count\":10,\"user_id\":"
				 "\"alice\",\"filters\":{\"category\":"
				 "\"shoes\"}}",
				 &o),
			 200);
	check_results(o, "shoes", 0, 1e9, 0, 0, 10);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", PKA, NULL,
				 "{\"count\":5}", &o),
			 422);
	ck_assert_str_eq(kd_field(o), "query");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", PKA, NULL,
				 "{\"query\":\"x\",\"vector\":[1,\"a\"]}", &o),
			 400);
	ck_assert_str_eq(kd_field(o), "vector");
	cJSON_Delete(o);
}
END_TEST

/* Experiments over HTTP: create, serve inside one (the answer names the
 * variant), report the exposures, stop; search analytics. */
START_TEST(experiments_and_search_analytics)
{
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/experiments", SKA, NULL,
				 "{\"name\":\"hx\",\"variants\":[{\"name\":"
				 "\"A\"},{\"name\":\"B\",\"diversity\":1,"
				 "\"share\":3}],\"window_s\":3600}",
				 &o),
			 201);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "status")->valuestring,
			 "running");
	cJSON_Delete(o);
	/* the same name again, a model, one variant: refused */
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/experiments", SKA, NULL,
				 "{\"name\":\"hx\",\"variants\":[{\"name\":"
				 "\"A\"},{\"name\":\"B\"}]}",
				 NULL),
			 409);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/experiments", SKA, NULL,
				 "{\"name\":\"hy\",\"variants\":[{\"name\":"
				 "\"A\"},{\"name\":\"B\",\"model\":\"tt\"}]}",
				 &o),
			 422);
	ck_assert_str_eq(kd_field(o), "model");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/experiments", SKA, NULL,
				 "{\"name\":\"hy\",\"variants\":[{\"name\":"
				 "\"A\"}]}", &o),
			 422);
	ck_assert_str_eq(kd_field(o), "variants");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/recommendations", SKA,
				 NULL,
				 "{\"user_id\":\"u1\",\"count\":3,"
				 "\"experiment\":\"hx\"}",
				 &o),
			 200);
	cJSON *x = cJSON_GetObjectItem(o, "experiment");
	ck_assert_ptr_nonnull(x);
	ck_assert_str_eq(cJSON_GetObjectItem(x, "name")->valuestring, "hx");
	char variant[8];
	snprintf(variant, sizeof variant, "%s",
		 cJSON_GetObjectItem(x, "variant")->valuestring);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", SKA, NULL,
				 "{\"query\":\"alpha\",\"user_id\":\"u1\","
				 "\"experiment\":\"hx\"}",
				 &o),
			 200);
	x = cJSON_GetObjectItem(o, "experiment");
	ck_assert_ptr_nonnull(x);
	ck_assert_str_eq(cJSON_GetObjectItem(x, "variant")->valuestring,
			 variant); /* sticky */
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/recommendations", SKA,
				 NULL,
				 "{\"user_id\":\"u1\",\"experiment\":"
				 "\"nope\"}",
				 &o),
			 404);
	ck_assert_str_eq(kd_field(o), "experiment");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/experiments/hx", SKA,
				 NULL, NULL, &o),
			 200);
	cJSON *rep = cJSON_GetObjectItem(o, "report"), *v;
	double expo = 0;
	cJSON_ArrayForEach(v, rep)
	{
		if (!strcmp(cJSON_GetObjectItem(v, "variant")->valuestring,
			    variant))
			expo = cJSON_GetObjectItem(v, "exposures")->valuedouble;
	}
	ck_assert(expo == 2);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "small_sample")));
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(o, "note"));
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/experiments", SKA, NULL,
				 NULL, &o),
			 200);
	ck_assert(cJSON_GetArraySize(cJSON_GetObjectItem(o, "experiments")) >=
		  1);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/experiments/hx/stop",
				 SKA, NULL, NULL, &o),
			 200);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "status")->valuestring,
			 "stopped");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/experiments/hx/stop",
				 SKA, NULL, NULL, NULL),
			 409);
	/* a stopped experiment serves as if none was named */
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/recommendations", SKA,
				 NULL,
				 "{\"user_id\":\"u1\",\"experiment\":\"hx\"}",
				 &o),
			 200);
	ck_assert_ptr_null(cJSON_GetObjectItem(o, "experiment"));
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET",
				 "/api/v1/analytics/searches?top=3", SKA, NULL,
				 NULL, &o),
			 200);
	ck_assert(cJSON_GetObjectItem(o, "searches")->valuedouble >= 1);
	ck_assert(cJSON_GetArraySize(cJSON_GetObjectItem(o, "top_queries")) <=
		  3);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET",
				 "/api/v1/analytics/searches?top=0", SKA, NULL,
				 NULL, &o),
			 422);
	ck_assert_str_eq(kd_field(o), "top");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET",
				 "/api/v1/analytics/searches?since=9&until=5",
				 SKA, NULL, NULL, &o),
			 422);
	ck_assert_str_eq(kd_field(o), "until");
	cJSON_Delete(o);
}
END_TEST

START_TEST(similar_and_trending)
{
	cJSON *o = NULL;
	char ids[2048];
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/similar/a-1?count=5", PKA,
				 NULL, NULL, &o),
			 200);
	ids_of(o, "results", ids, sizeof ids);
	ck_assert_msg(!strstr(ids, "a-1,"), "similar lists itself: %s", ids);
	ck_assert_int_le(cJSON_GetArraySize(cJSON_GetObjectItem(o, "results")),
			 5);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/similar/zz-none", PKA,
				 NULL, NULL, &o),
			 404);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/trending?window=7d&count="
					    "3&category=electronics",
				 PKA, NULL, NULL, &o),
			 200);
	check_results(o, "electronics", 0, 1e9, 0, 0, 3);
	ck_assert_int_gt(cJSON_GetArraySize(cJSON_GetObjectItem(o, "results")),
			 0);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/trending?window=24h", PKA,
				 NULL, NULL, &o),
			 200);
	ck_assert(cJSON_GetObjectItem(o, "window_s")->valuedouble == 86400);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/trending?window=soon",
				 PKA, NULL, NULL, &o),
			 400);
	ck_assert_str_eq(kd_field(o), "window");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/trending?count=0", PKA,
				 NULL, NULL, &o),
			 422);
	cJSON_Delete(o);
}
END_TEST

START_TEST(users_and_favorites)
{
	cJSON *o = NULL;
	const char *u = "/api/v1/users/alice";
	ck_assert_int_eq(kd_call(&S, "PUT", u, PKA, TOK_ALICE,
				 "{\"attributes\":{\"size\":38}}", &o),
			 200);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", u, PKA, TOK_ALICE, NULL, &o), 200);
	ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(o,
								 "attributes"),
					     "size")->valueint,
			 38);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "PUT", u, PKA, TOK_ALICE,
				 "{\"attributes\":[1]}", &o),
			 400);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/users/nobody-here", SKA,
				 NULL, NULL, &o),
			 404);
	cJSON_Delete(o);
	const char *f = "/api/v1/users/alice/favorites/a-9";
	ck_assert_int_eq(kd_call(&S, "GET", f, PKA, TOK_ALICE, NULL, NULL), 404);
	ck_assert_int_eq(kd_call(&S, "PUT", f, PKA, TOK_ALICE, NULL, NULL), 200);
	ck_assert_int_eq(kd_call(&S, "GET", f, PKA, TOK_ALICE, NULL, NULL), 200);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/users/alice/favorites",
				 PKA, TOK_ALICE, NULL, &o),
			 200);
	char ids[512];
	ids_of(o, "favorites", ids, sizeof ids);
	ck_assert_msg(strstr(ids, "a-9,") != NULL, "favorites: %s", ids);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "DELETE", f, PKA, TOK_ALICE, NULL, NULL),
			 200);
	ck_assert_int_eq(kd_call(&S, "GET", f, PKA, TOK_ALICE, NULL, NULL), 404);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/users/alice/favorites",
				 PKA, TOK_ALICE, NULL, &o),
			 200);
	ids_of(o, "favorites", ids, sizeof ids);
	ck_assert_msg(strstr(ids, "a-9,") == NULL, "favorites: %s", ids);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "PUT", "/api/v1/users/alice/favorites/"
					    "zz-none",
				 PKA, TOK_ALICE, NULL, NULL),
			 404);
}
END_TEST

/* GET /api/v1/stats: a shop's own requests, second by second (stats.c),
 * with its errors and latency; another shop's requests are not there. */
static long stats_sum(const char *key, const char *field)
{
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/stats", key, NULL, NULL,
				 &o),
			 200);
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(o, "tracked")));
	const cJSON *secs = cJSON_GetObjectItem(o, "seconds"), *x;
	ck_assert_int_eq(cJSON_GetArraySize(secs), 119);
	long sum = 0;
	double last_t = 0;
	cJSON_ArrayForEach(x, secs)
	{
		double t = cJSON_GetObjectItem(x, "t")->valuedouble;
		ck_assert(t > last_t); /* oldest first */
		last_t = t;
		sum += (long)cJSON_GetObjectItem(x, field)->valuedouble;
		if (cJSON_GetObjectItem(x, "requests")->valuedouble > 0)
			ck_assert(cJSON_GetObjectItem(x, "p95_ms")->valuedouble >=
				  cJSON_GetObjectItem(x, "p50_ms")->valuedouble);
	}
	cJSON_Delete(o);
	return sum;
}

START_TEST(stats_count_the_shops_own_requests)
{
	char sk[80], pk[80], skb[80], pkb[80];
	ck_assert_int_eq(kd_tenant(&S, "shop-stats", sk, pk), 0);
	ck_assert_int_eq(kd_tenant(&S, "shop-stats-2", skb, pkb), 0);
	sleep(1);
	usleep(100000);
	/* counts so far (kd_tenant's own calls); this call counts too */
	long n0 = stats_sum(sk, "requests"), c0 = stats_sum(sk, "client_errors");
	long m0 = stats_sum(skb, "requests");
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/trending", pk,
					 NULL, NULL, NULL),
				 200);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/none", sk, NULL,
				 NULL, NULL),
			 404);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/trending", pkb, NULL,
				 NULL, NULL),
			 200);
	sleep(1); /* the current second is left out until it is over */
	usleep(100000);
	/* the two reads of stats_sum above, then the five */
	ck_assert_int_eq(stats_sum(sk, "requests"), n0 + 2 + 5);
	ck_assert_int_eq(stats_sum(sk, "client_errors"), c0 + 1);
	ck_assert_int_eq(stats_sum(sk, "errors"), 0);
	ck_assert_int_eq(stats_sum(skb, "requests"), m0 + 1 + 1);
	/* a public key may not read them */
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/stats", pk, NULL, NULL,
				 NULL),
			 403);
}
END_TEST

/* ===================== step 5: models ================================ */

/* Polls a job until it ends (60 s): its final JSON. */
static cJSON *wait_job(const char *key, const char *id)
{
	char path[128];
	snprintf(path, sizeof path, "/api/v1/models/jobs/%s", id);
	for (int i = 0; i < 600; i++) {
		cJSON *o = NULL;
		ck_assert_int_eq(kd_call(&S, "GET", path, key, NULL, NULL, &o),
				 200);
		const char *st = cJSON_GetObjectItem(o, "state")->valuestring;
		if (!strcmp(st, "done") || !strcmp(st, "failed"))
			return o;
		ck_assert(!strcmp(st, "queued") || !strcmp(st, "running"));
		cJSON_Delete(o);
		usleep(100000);
	}
	ck_abort_msg("training job %s did not end", id);
	return NULL;
}

START_TEST(training_job)
{
	cJSON *o = NULL;
	/* the credential table started a job of shop-a and left it running:
	 * it may not be over yet (409 busy until then; 60 s at most) */
	long st = 0;
	for (int i = 0; i < 600; i++) {
		cJSON_Delete(o);
		o = NULL;
		st = kd_call(&S, "POST", "/api/v1/models/train", SKA, NULL,
			     NULL, &o);
		if (st != 409)
			break;
		usleep(100000);
	}
	char *txt = o ? cJSON_PrintUnformatted(o) : NULL;
	ck_assert_msg(st == 202, "%ld %s", st, txt ? txt : "");
	free(txt);
	char id[64];
	snprintf(id, sizeof id, "%s",
		 cJSON_GetObjectItem(o, "job_id")->valuestring);
	cJSON_Delete(o);
	/* queries go on meanwhile; a second job of the shop waits its turn
	 * (409) while the first is not over */
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/recommendations",
					 SKA, NULL,
					 "{\"user_id\":\"u3\",\"count\":3}",
					 NULL),
				 200);
	o = wait_job(SKA, id);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "state")->valuestring, "done");
	const cJSON *m = cJSON_GetObjectItem(o, "metrics");
	ck_assert_int_ge(cJSON_GetObjectItem(m, "model_version")->valueint, 1);
	ck_assert_int_gt(cJSON_GetObjectItem(
				 cJSON_GetObjectItem(o, "progress"), "epochs")
				 ->valueint,
			 0);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/models", SKA, NULL, NULL,
				 &o),
			 200);
	ck_assert_int_ge(cJSON_GetObjectItem(o, "serving_version")->valueint, 1);
	ck_assert_int_ge(cJSON_GetArraySize(cJSON_GetObjectItem(o, "versions")),
			 1);
	cJSON_Delete(o);
	/* after training, u3 gets personal results */
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/recommendations", SKA,
				 NULL, "{\"user_id\":\"u3\",\"count\":3}", &o),
			 200);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "strategy")->valuestring,
			 "personal");
	cJSON_Delete(o);
	/* jobs are the shop's own */
	char path[128];
	snprintf(path, sizeof path, "/api/v1/models/jobs/%s", id);
	ck_assert_int_eq(kd_call(&S, "GET", path, SKB, NULL, NULL, NULL), 404);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/models/jobs/job-x", SKA,
				 NULL, NULL, NULL),
			 404);
}
END_TEST

START_TEST(training_job_conflict)
{
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/models/train", SKB, NULL,
				 NULL, &o),
			 202);
	char id[64];
	snprintf(id, sizeof id, "%s",
		 cJSON_GetObjectItem(o, "job_id")->valuestring);
	cJSON_Delete(o);
	/* the second start either meets the first (409) or comes after it
	 * ended (202); never two at once */
	long st = kd_call(&S, "POST", "/api/v1/models/train", SKB, NULL, NULL,
			  &o);
	ck_assert(st == 409 || st == 202);
	if (st == 409)
		ck_assert_str_eq(kd_code(o), "busy");
	char id2[64] = "";
	if (st == 202)
		snprintf(id2, sizeof id2, "%s",
			 cJSON_GetObjectItem(o, "job_id")->valuestring);
	cJSON_Delete(o);
	cJSON_Delete(wait_job(SKB, id));
	if (*id2)
		cJSON_Delete(wait_job(SKB, id2));
}
END_TEST

/* ===================== step 6: isolation and load ===================== */

/* shop-b's secret key over every route that reads or changes data: never
 * a trace of shop-a. */
START_TEST(tenant_isolation_every_route)
{
	cJSON *o = NULL;
	char ids[4096];
	char *t;
	/* reads */
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/a-1", SKB, NULL,
				 NULL, NULL),
			 404);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/products/a-1", PKB, NULL,
				 NULL, NULL),
			 404);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/shared-1", SKB,
				 NULL, NULL, &o),
			 200);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "title")->valuestring,
			 "bravo shared");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", PKB, NULL,
				 "{\"query\":\"alpha\",\"count\":50}", &o),
			 200);
	ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o, "results")),
			 0);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/search", PKB, NULL,
				 "{\"query\":\"shared\",\"count\":50}", &o),
			 200);
	t = cJSON_PrintUnformatted(o);
	ck_assert_msg(!strstr(t, "alpha"), "shop-a leaked: %s", t);
	free(t);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/similar/a-1", PKB, NULL,
				 NULL, NULL),
			 404);
	const char *reads[][3] = {
		{"GET", "/api/v1/similar/shared-1?count=50", NULL},
		{"GET", "/api/v1/trending?count=100", NULL},
		{"POST", "/api/v1/recommendations", "{\"count\":100}"},
		{"POST", "/api/v1/recommendations",
		 "{\"user_id\":\"u1\",\"count\":100}"},
		{"POST", "/api/v1/recommend",
		 "{\"user_id\":\"w1\",\"count\":100}"},
		{"POST", "/api/v1/search",
		 "{\"query\":\"gadget\",\"count\":100,\"user_id\":\"u1\"}"},
		{"GET", "/api/v1/users/alice/favorites", NULL},
		{"GET", "/api/v1/models", NULL},
	};
	for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
		ck_assert_int_eq(kd_call(&S, reads[i][0], reads[i][1], SKB, NULL,
					 reads[i][2], &o),
				 200);
		t = cJSON_PrintUnformatted(o);
		ids_of(o, "results", ids, sizeof ids);
		ck_assert_msg(!strstr(ids, "a-") && !strstr(t, "alpha"),
			      "%s %s leaked shop-a: %s", reads[i][0],
			      reads[i][1], t);
		free(t);
		cJSON_Delete(o);
	}
	/* shop-a's users are unknown in shop-b (u1 was named in shop-b's
	 * queries above, which may make a fresh user of it: without
	 * shop-a's history) */
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/users/u5", SKB, NULL, NULL,
				 NULL),
			 404);
	long st = kd_call(&S, "GET", "/api/v1/users/u1", SKB, NULL, NULL, &o);
	ck_assert(st == 404 || st == 200);
	if (st == 200)
		ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(
					 o, "history")),
				 0);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/users/bob", SKB, NULL,
				 NULL, NULL),
			 404);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/auth/login", PKB, NULL,
				 "{\"user_id\":\"bob\",\"password\":\"correct "
				 "horse\"}",
				 NULL),
			 401);
	/* writes of shop-b cannot touch shop-a's rows */
	ck_assert_int_eq(kd_call(&S, "PATCH", "/api/v1/items/a-1", SKB, NULL,
				 "{\"title\":\"stolen\"}", NULL),
			 404);
	ck_assert_int_eq(kd_call(&S, "DELETE", "/api/v1/items/a-1", SKB, NULL,
				 NULL, NULL),
			 404);
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/interactions", SKB, NULL,
				 "{\"user_id\":\"u1\",\"item_id\":\"a-1\","
				 "\"interaction_type\":\"view\"}",
				 NULL),
			 422);
	ck_assert_int_eq(kd_call(&S, "PUT", "/api/v1/users/u1/favorites/a-1",
				 SKB, NULL, NULL, NULL),
			 404);
	ck_assert_int_eq(kd_call(&S, "PATCH", "/api/v1/items/shared-1", SKB,
				 NULL, "{\"title\":\"bravo renamed\"}", NULL),
			 200);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/a-1", SKA, NULL,
				 NULL, &o),
			 200);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "title")->valuestring,
			 "alpha thing 1");
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/shared-1", SKA,
				 NULL, NULL, &o),
			 200);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "title")->valuestring,
			 "alpha shared");
	cJSON_Delete(o);
}
END_TEST

typedef struct worker {
	int id, kind; /* 0 ingest, 1 query */
	int ok, failed;
	int events; /* ingest: events acknowledged */
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	char body[4096], user[32];
	snprintf(user, sizeof user, "load-%d", w->id);
	for (int i = 0; i < 40; i++) {
		long st;
		if (w->kind == 0 && i % 10 == 0) {
			snprintf(body, sizeof body,
				 "{\"items\":[{\"item_id\":\"L-%d-%d\","
				 "\"title\":\"alpha load %d\",\"category\":"
				 "\"electronics/audio\",\"price\":%d}]}",
				 w->id, i, i, 10 + i);
			st = kd_call(&S, "POST", "/api/v1/items", SKA, NULL,
				     body, NULL);
		} else if (w->kind == 0) {
			int n = snprintf(body, sizeof body,
					 "{\"interactions\":[");
			for (int j = 0; j < 5; j++)
				n += snprintf(body + n, sizeof body - (size_t)n,
					      "%s{\"user_id\":\"%s\","
					      "\"item_id\":\"a-%d\","
					      "\"interaction_type\":\"view\"}",
					      j ? "," : "", user, (i + j) % 30);
			snprintf(body + n, sizeof body - (size_t)n, "]}");
			st = kd_call(&S, "POST", "/api/v1/interactions", SKA,
				     NULL, body, NULL);
			if (st == 200)
				w->events += 5;
		} else if (i % 2) {
			st = kd_call(&S, "POST", "/api/v1/recommendations", PKA,
				     NULL, "{\"count\":5}", NULL);
		} else {
			st = kd_call(&S, "POST", "/api/v1/search", PKA, NULL,
				     "{\"query\":\"alpha load\",\"count\":5}",
				     NULL);
		}
		if (st == 200)
			w->ok++;
		else
			w->failed++;
	}
	return NULL;
}

START_TEST(concurrent_ingest_and_queries)
{
	enum { NW = 6 };
	worker w[NW];
	pthread_t th[NW];
	for (int i = 0; i < NW; i++) {
		memset(&w[i], 0, sizeof w[i]);
		w[i].id = i;
		w[i].kind = i % 2;
		ck_assert_int_eq(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < NW; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < NW; i++) {
		ck_assert_int_eq(w[i].failed, 0);
		ck_assert_int_eq(w[i].ok, 40);
	}
	/* every acknowledged event is there */
	for (int i = 0; i < NW; i += 2) {
		char path[96];
		cJSON *o = NULL;
		snprintf(path, sizeof path, "/api/v1/users/load-%d?history=512",
			 i);
		ck_assert_int_eq(kd_call(&S, "GET", path, SKA, NULL, NULL, &o),
				 200);
		ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o,
									"history")),
				 w[i].events);
		cJSON_Delete(o);
	}
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/L-0-30", SKA, NULL,
				 NULL, NULL),
			 200);
}
END_TEST

typedef struct feeder {
	kd_srv *s;
	char key[80];
	int id;
	int acked[64];  /* events answered 200, per user t-ID-N */
	volatile int *stop;
} feeder;

static void *feed(void *arg)
{
	feeder *f = arg;
	char body[256];
	/* a new user every 400 events: a user's history reads back 512 */
	for (int i = 0; !*f->stop && i < 64 * 400; i++) {
		snprintf(body, sizeof body,
			 "{\"user_id\":\"t-%d-%d\",\"item_id\":\"a-%d\","
			 "\"interaction_type\":\"click\"}",
			 f->id, i / 400, i % 30);
		long st = kd_call(f->s, "POST", "/api/v1/interactions", f->key,
				  NULL, body, NULL);
		if (st == 200)
			f->acked[i / 400]++;
		else if (st == 0 || st == 503)
			break; /* the server went away or is draining */
	}
	return NULL;
}

START_TEST(sigterm_under_load_keeps_acknowledged_writes)
{
	kd_srv s;
	memset(&s, 0, sizeof s);
	ck_assert_int_eq(kd_start(&s, NULL), 0);
	char sk[80], pk[80], body[8192];
	ck_assert_int_eq(kd_tenant(&s, "shop-t", sk, pk), 0);
	int n = snprintf(body, sizeof body, "{\"items\":[");
	for (int i = 0; i < 30; i++)
		n += snprintf(body + n, sizeof body - (size_t)n,
			      "%s{\"item_id\":\"a-%d\"}", i ? "," : "", i);
	snprintf(body + n, sizeof body - (size_t)n, "]}");
	ck_assert_int_eq(kd_call(&s, "POST", "/api/v1/items", sk, NULL, body,
				 NULL),
			 200);
	enum { NF = 4 };
	volatile int stop = 0;
	feeder f[NF];
	pthread_t th[NF];
	for (int i = 0; i < NF; i++) {
		memset(&f[i], 0, sizeof f[i]);
		f[i].s = &s;
		f[i].id = i;
		f[i].stop = &stop;
		snprintf(f[i].key, sizeof f[i].key, "%s", sk);
		ck_assert_int_eq(pthread_create(&th[i], NULL, feed, &f[i]), 0);
	}
	usleep(700000);
	ck_assert_int_eq(kd_stop(&s), 0); /* exit status 0 */
	stop = 1;
	for (int i = 0; i < NF; i++)
		pthread_join(th[i], NULL);
	/* restarted on the same store: nothing acknowledged is missing */
	ck_assert_int_eq(kd_start(&s, NULL), 0);
	int total = 0;
	for (int i = 0; i < NF; i++)
		for (int u = 0; u < 64 && f[i].acked[u]; u++) {
			char path[96];
			cJSON *o = NULL;
			snprintf(path, sizeof path,
				 "/api/v1/users/t-%d-%d?history=512", i, u);
			long st = kd_call(&s, "GET", path, sk, NULL, NULL, &o);
			int stored = st == 200
					     ? cJSON_GetArraySize(
						       cJSON_GetObjectItem(
							       o, "history"))
					     : 0;
			cJSON_Delete(o);
			ck_assert_msg(stored >= f[i].acked[u],
				      "user t-%d-%d: %d acknowledged, %d "
				      "stored",
				      i, u, f[i].acked[u], stored);
			total += f[i].acked[u];
		}
	fprintf(stderr, "sigterm under load: %d acknowledged events, all "
			"stored\n",
		total);
	ck_assert_int_gt(total, 0);
	ck_assert_int_eq(kd_stop(&s), 0);
	kd_cleanup(&s);
}
END_TEST

/* ---- the same routes on PostgreSQL ---------------------------------- */

#define PGBIN "/usr/lib/postgresql/15/bin"
static char pg_dir[64];

static int sh(const char *cmd)
{
	int rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* A throwaway PostgreSQL server in a temporary directory (as the
 * postgres user when the tests run as root), on a Unix socket only. */
static void pg_setup(void)
{
	ck_assert_msg(access(PGBIN "/initdb", X_OK) == 0,
		      "PostgreSQL server binaries missing in " PGBIN
		      " (make deps)");
	snprintf(pg_dir, sizeof pg_dir, "/tmp/knyttd-pg-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(pg_dir));
	const char *as = geteuid() == 0 ? "runuser -u postgres --" : "";
	char cmd[1024];
	if (geteuid() == 0) {
		snprintf(cmd, sizeof cmd, "chown postgres %s", pg_dir);
		ck_assert_int_eq(sh(cmd), 0);
	}
	snprintf(cmd, sizeof cmd,
		 "%s %s/initdb -D %s/data -A trust -U postgres -E UTF8 "
		 "--locale=C --no-sync >%s/initdb.log 2>&1",
		 as, PGBIN, pg_dir, pg_dir);
	ck_assert_int_eq(sh(cmd), 0);
	snprintf(cmd, sizeof cmd,
		 "%s %s/pg_ctl -D %s/data -l %s/server.log -w -t 60 -o "
		 "\"-k %s -c listen_addresses='' -F -c max_connections=60 "
		 "-c shared_buffers=32MB\" start >/dev/null 2>&1",
		 as, PGBIN, pg_dir, pg_dir, pg_dir);
	ck_assert_int_eq(sh(cmd), 0);
	char uri[256];
	snprintf(uri, sizeof uri, "postgresql://postgres@/postgres?host=%s",
		 pg_dir);
	shop_start_on(uri, NULL);
}

static void pg_teardown(void)
{
	shop_teardown();
	char cmd[512];
	snprintf(cmd, sizeof cmd,
		 "%s %s/pg_ctl -D %s/data -m immediate -w stop >/dev/null "
		 "2>&1; rm -rf %s",
		 geteuid() == 0 ? "runuser -u postgres --" : "", PGBIN, pg_dir,
		 pg_dir);
	sh(cmd);
}

/* A slow request in flight when SIGTERM comes: it is finished and
 * answered; a new request on an open keep-alive connection meanwhile
 * gets 503 shutting_down; the process exits 0 with every event of the
 * slow request stored. */
typedef struct slow {
	kd_srv *s;
	char key[80];
	long status;
	int accepted;
} slow;

static void *slow_batch(void *arg)
{
	slow *w = arg;
	size_t cap = 10000 * 96 + 64, n = 0;
	char *body = malloc(cap);
	n += (size_t)snprintf(body, cap, "{\"interactions\":[");
	for (int i = 0; i < 10000; i++)
		n += (size_t)snprintf(body + n, cap - n,
				      "%s{\"user_id\":\"d-%d\",\"item_id\":"
				      "\"a-%d\",\"interaction_type\":\"view\"}",
				      i ? "," : "", i / 400, i % 30);
	snprintf(body + n, cap - n, "]}");
	cJSON *o = NULL;
	w->status = kd_call(w->s, "POST", "/api/v1/interactions", w->key,
			    NULL, body, &o);
	const cJSON *a = cJSON_GetObjectItem(o, "accepted_count");
	w->accepted = a ? a->valueint : -1;
	cJSON_Delete(o);
	free(body);
	return NULL;
}

START_TEST(sigterm_finishes_requests_in_flight)
{
	kd_srv s;
	memset(&s, 0, sizeof s);
	/* events stored one by one before the answer: a slow request */
	const char *extra[] = {"--sync-feedback", "--drain-timeout", "300",
			       NULL};
	ck_assert_int_eq(kd_start(&s, extra), 0);
	char sk[80], pk[80], body[4096];
	ck_assert_int_eq(kd_tenant(&s, "shop-d", sk, pk), 0);
	int n = snprintf(body, sizeof body, "{\"items\":[");
	for (int i = 0; i < 30; i++)
		n += snprintf(body + n, sizeof body - (size_t)n,
			      "%s{\"item_id\":\"a-%d\"}", i ? "," : "", i);
	snprintf(body + n, sizeof body - (size_t)n, "]}");
	ck_assert_int_eq(kd_call(&s, "POST", "/api/v1/items", sk, NULL, body,
				 NULL),
			 200);
	/* a keep-alive connection, open before the stop */
	CURL *c = curl_easy_init();
	char url[128], auth[128];
	snprintf(url, sizeof url, "%s/api/v1/trending", s.base);
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", sk);
	struct curl_slist *hl = curl_slist_append(NULL, auth);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, fwrite);
	FILE *devnull = fopen("/dev/null", "w");
	curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
	long st = 0;
	ck_assert_int_eq(curl_easy_perform(c), CURLE_OK);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	ck_assert_int_eq(st, 200);

	slow w = {&s, "", 0, 0};
	snprintf(w.key, sizeof w.key, "%s", sk);
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, slow_batch, &w), 0);
	usleep(500000);
	kill(s.pid, SIGTERM);
	usleep(300000);
	/* the kept-alive connection gets 503 shutting_down; on a loaded
	 * machine the server may already have closed it and its listening
	 * socket, so a refused or empty connection also means "not served"
	 * -- what matters below is the request in flight */
	CURLcode cr = curl_easy_perform(c);
	if (cr == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
		ck_assert_int_eq(st, 503);
	} else {
		ck_assert_msg(cr == CURLE_COULDNT_CONNECT ||
				      cr == CURLE_GOT_NOTHING ||
				      cr == CURLE_RECV_ERROR ||
				      cr == CURLE_SEND_ERROR,
			      "curl: %s", curl_easy_strerror(cr));
	}
	curl_slist_free_all(hl);
	curl_easy_cleanup(c);
	fclose(devnull);
	pthread_join(th, NULL);
	ck_assert_int_eq(w.status, 200);
	ck_assert_int_eq(w.accepted, 10000);
	ck_assert_int_eq(kd_stop(&s), 0);
	ck_assert_int_eq(kd_start(&s, NULL), 0);
	for (int u = 0; u < 25; u += 8) {
		char path[96];
		cJSON *o = NULL;
		snprintf(path, sizeof path, "/api/v1/users/d-%d?history=512", u);
		ck_assert_int_eq(kd_call(&s, "GET", path, sk, NULL, NULL, &o),
				 200);
		ck_assert_int_eq(cJSON_GetArraySize(cJSON_GetObjectItem(o,
									"history")),
				 400);
		cJSON_Delete(o);
	}
	ck_assert_int_eq(kd_stop(&s), 0);
	kd_cleanup(&s);
}
END_TEST

Suite *knyttd_suite(void)
{
	Suite *s = suite_create("knyttd");
	TCase *tc = tcase_create("server");
	tcase_add_unchecked_fixture(tc, shop_setup, shop_teardown);
	tcase_add_test(tc, health_and_ready);
	tcase_add_test(tc, no_route_and_wrong_method);
	tcase_add_test(tc, bad_bodies);
	tcase_add_test(tc, statuses_401_409_422);
	tcase_add_test(tc, revoked_key_stops_at_once);
	tcase_add_test(tc, key_revoked_elsewhere_stops_within_ttl);
	tcase_add_test(tc, admin_key_never_in_argv);
	tcase_add_test(tc, malloc_arenas_error_names_its_range);
	tcase_add_test(tc, sighup_reopens_log);
	suite_add_tcase(s, tc);

	tc = tcase_create("limits");
	tcase_add_unchecked_fixture(tc, limits_setup, shop_teardown);
	tcase_add_test(tc, body_limit);
	tcase_add_test(tc, expired_token_refused);
	suite_add_tcase(s, tc);

	tc = tcase_create("credentials");
	tcase_add_unchecked_fixture(tc, shop_setup, shop_teardown);
	tcase_add_test(tc, credential_table);
	tcase_add_test(tc, credential_table_covers_every_route);
	tcase_add_test(tc, shopper_login_and_tokens);
	suite_add_tcase(s, tc);

	tc = tcase_create("catalog");
	tcase_add_unchecked_fixture(tc, shop_setup, shop_teardown);
	tcase_add_test(tc, items_batch_report);
	tcase_add_test(tc, items_bulk_batch_report);
	tcase_add_test(tc, items_batch_limits);
	tcase_add_test(tc, item_get_patch_delete);
	tcase_add_test(tc, item_id_with_a_slash);
	tcase_add_test(tc, item_cache_follows_writes);
	tcase_add_test(tc, item_changed_elsewhere_shows_within_period);
	tcase_add_test(tc, stats_count_the_shops_own_requests);
	tcase_add_test(tc, items_with_embeddings);
	tcase_add_test(tc, interactions_single_and_batch);
	tcase_add_test(tc, feedback_is_the_shoppers_own);
	suite_add_tcase(s, tc);

	tc = tcase_create("queries");
	tcase_add_unchecked_fixture(tc, shop_setup, shop_teardown);
	tcase_add_test(tc, recommend_filters_and_exclusions);
	tcase_add_test(tc, recommend_anonymous_and_new_users);
	tcase_add_test(tc, search_routes);
	tcase_add_test(tc, attribute_filters_in_queries);
	tcase_add_test(tc, similar_and_trending);
	tcase_add_test(tc, experiments_and_search_analytics);
	tcase_add_test(tc, users_and_favorites);
	tcase_add_test(tc, training_job);
	tcase_add_test(tc, training_job_conflict);
	suite_add_tcase(s, tc);

	tc = tcase_create("isolation");
	tcase_add_unchecked_fixture(tc, shop_setup, shop_teardown);
	tcase_add_test(tc, tenant_isolation_every_route);
	tcase_add_test(tc, concurrent_ingest_and_queries);
	tcase_add_test(tc, sigterm_under_load_keeps_acknowledged_writes);
	tcase_add_test(tc, sigterm_finishes_requests_in_flight);
	suite_add_tcase(s, tc);

	/* --db postgres://: the routes that reach the store */
	tc = tcase_create("postgres");
	tcase_set_tags(tc, "postgres");
	tcase_add_unchecked_fixture(tc, pg_setup, pg_teardown);
	tcase_add_test(tc, health_and_ready);
	tcase_add_test(tc, credential_table);
	tcase_add_test(tc, items_batch_report);
	tcase_add_test(tc, interactions_single_and_batch);
	tcase_add_test(tc, recommend_filters_and_exclusions);
	tcase_add_test(tc, search_routes);
	tcase_add_test(tc, users_and_favorites);
	tcase_add_test(tc, training_job);
	tcase_add_test(tc, tenant_isolation_every_route);
	suite_add_tcase(s, tc);
	return s;
}
