/*
 * fuzz_knyttd_request.c -- libFuzzer target for knyttd's request path:
 * the bytes a client sends (request line, URL and query string, headers,
 * body, several requests pipelined on one connection) go through
 * libmicrohttpd into http.c, the route table, the credential checks,
 * the body checks (UTF-8, NUL, JSON) and every handler, against a real
 * store and engine.  Any input must be answered or the connection
 * closed, never crash, hang (30 s) or leak.
 *
 * No TCP: the daemon is started once (it listens on a loopback port it
 * is never sent anything on) and each input is written into one end of
 * a socketpair whose other end is handed to it (kd_http_adopt); the
 * write side is then shut, and the answer read until the daemon closes.
 *
 * The store (in /dev/shm, removed at exit) holds tenant "shop" with a
 * few items and interactions and a trained model, so queries reach the
 * engine.  Keys are random, so inputs name them: "$A" is replaced by the
 * admin key, "$S" by the tenant's secret key, "$P" by its public key,
 * "$T" by a token of shopper "u1" and "$X" by the secret key of a second
 * tenant.  FUZZ_KD_SHOW=1 in the environment prints each answer (its
 * first 2 kB) on stderr.  Quotas (200 items, 2,000 interactions) bound the growth of
 * the store over a long run; argon2id runs at its minimum cost.
 */
#include "../../services/knyttd/knyttd.h"
#include "fuzz.h"

#include <poll.h>
#include <sodium.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

kd_config kd_cfg;

static char db_path[256];
static char key_s[KNYTT_STORE_KEY_LEN + 1], key_p[KNYTT_STORE_KEY_LEN + 1];
static char key_x[KNYTT_STORE_KEY_LEN + 1], token[512];
static const char admin_key[] = "fuzz-admin-key-0123456789";

static void cleanup(void)
{
	char p[300];
	kd_jobs_stop();
	kd_http_stop();
	kd_tenants_close();
	unlink(db_path);
	snprintf(p, sizeof p, "%s-wal", db_path);
	unlink(p);
	snprintf(p, sizeof p, "%s-shm", db_path);
	unlink(p);
}

/* @p in with the $-names replaced, in a new buffer of *n bytes. */
static char *expand(const uint8_t *in, size_t size, size_t *n)
{
	size_t cap = size * (sizeof token / 2) + 1, o = 0;
	char *out = cap > (1u << 20) ? NULL : malloc(cap);
	if (!out)
		return NULL;
	for (size_t i = 0; i < size; i++) {
		const char *v = NULL;
		if (in[i] == '$' && i + 1 < size) {
			switch (in[i + 1]) {
			case 'A': v = admin_key; break;
			case 'S': v = key_s; break;
			case 'P': v = key_p; break;
			case 'T': v = token; break;
			case 'X': v = key_x; break;
			}
		}
		if (v) {
			size_t l = strlen(v);
			memcpy(out + o, v, l);
			o += l;
			i++;
		} else {
			out[o++] = (char)in[i];
		}
	}
	*n = o;
	return out;
}

/* Sends @p n bytes as one connection; the answer's bytes, or -1 when
 * nothing came for @p wait_ms or the daemon refused the socket.  @p ans
 * (may be NULL) gets the first @p cap - 1 bytes of the answer. */
static long exchange(const char *req, size_t n, char *ans, size_t cap,
		     int wait_ms)
{
	int sv[2];
	long got = 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	if (kd_http_adopt(sv[1])) {
		close(sv[0]);
		return -1;
	}
	for (size_t o = 0; o < n;) {
		ssize_t w = send(sv[0], req + o, n - o, MSG_NOSIGNAL);
		if (w <= 0)
			break; /* the daemon closed early: fine */
		o += (size_t)w;
	}
	/* the end of input only once the daemon has read every byte, so it
	 * comes as an event of its own (see LLVMFuzzerTestOneInput) */
	for (int i = 0; i < 20000; i++) {
		int queued = 0;
		if (ioctl(sv[0], SIOCOUTQ, &queued) || queued == 0)
			break;
		usleep(50);
	}
	shutdown(sv[0], SHUT_WR);
	for (;;) {
		struct pollfd pf = { sv[0], POLLIN, 0 };
		if (poll(&pf, 1, wait_ms) != 1) {
			got = -1;
			break;
		}
		char b[4096];
		ssize_t r = recv(sv[0], b, sizeof b, 0);
		if (r <= 0)
			break;
		if (ans && (size_t)got < cap - 1) {
			size_t k = (size_t)r < cap - 1 - (size_t)got
					   ? (size_t)r
					   : cap - 1 - (size_t)got;
			memcpy(ans + got, b, k);
			ans[got + (long)k] = 0;
		}
		got += r;
	}
	close(sv[0]);
	return got;
}

/* One set-up request; its answer in @p ans.  Aborts when unanswered. */
static void setup_req(const char *method, const char *url, const char *key,
		      const char *body, char *ans, size_t cap)
{
	char req[8192];
	int n = snprintf(req, sizeof req,
			 "%s %s HTTP/1.1\r\nHost: f\r\nConnection: close\r\n"
			 "Authorization: Bearer %s\r\n"
			 "Content-Type: application/json\r\n"
			 "Content-Length: %zu\r\n\r\n%s",
			 method, url, key, strlen(body), body);
	if (exchange(req, (size_t)n, ans, cap, 30000) <= 0) {
		fprintf(stderr, "fuzz_knyttd_request: %s %s unanswered\n",
			method, url);
		abort();
	}
}

static void config(void)
{
	fuzz_path(db_path, sizeof db_path, "kd.db");
	snprintf(kd_cfg.db, sizeof kd_cfg.db, "sqlite:%s", db_path);
	snprintf(kd_cfg.host, sizeof kd_cfg.host, "127.0.0.1");
	snprintf(kd_cfg.admin_key, sizeof kd_cfg.admin_key, "%s", admin_key);
	if (access("services/knyttd/www", R_OK) == 0)
		snprintf(kd_cfg.www, sizeof kd_cfg.www, "services/knyttd/www");
	kd_cfg.body_limit = 2048; /* within reach of libFuzzer's inputs */
	kd_cfg.threads = 1;
	kd_cfg.token_ttl_s = 86400;
	kd_cfg.pwhash_ops = crypto_pwhash_OPSLIMIT_MIN;
	kd_cfg.pwhash_mem = crypto_pwhash_MEMLIMIT_MIN;
	kd_cfg.drain_ms = 1000;
	kd_cfg.key_cache_ms = 1000;
	kd_cfg.limits.max_items = 200;
	kd_cfg.limits.max_interactions = 2000;
	unlink(db_path);
	kd_log_open("/dev/null");
}

/* Tenants, keys, a token, items, interactions and a trained model. */
static void populate(knytt_store *st)
{
	uint64_t t, t2;
	if (knytt_store_tenant_create(st, "shop", &t) ||
	    knytt_store_use_tenant(st, t) ||
	    knytt_store_key_create(st, KNYTT_KEY_SECRET, key_s) ||
	    knytt_store_key_create(st, KNYTT_KEY_PUBLIC, key_p) ||
	    knytt_store_tenant_create(st, "other", &t2) ||
	    knytt_store_use_tenant(st, t2) ||
	    knytt_store_key_create(st, KNYTT_KEY_SECRET, key_x) ||
	    kd_token_make(t, "u1", (int64_t)4e12, token, sizeof token)) {
		fprintf(stderr, "fuzz_knyttd_request: set-up: %s\n",
			knytt_errmsg());
		abort();
	}
	char ans[4096], body[4096];
	int n = snprintf(body, sizeof body, "{\"items\":[");
	for (int i = 1; i <= 8; i++)
		n += snprintf(body + n, sizeof body - (size_t)n,
			      "%s{\"item_id\":\"i%d\",\"title\":\"item %d shoe\","
			      "\"category\":\"shoes/c%d\",\"price\":%d}",
			      i > 1 ? "," : "", i, i, i % 3, 10 * i);
	snprintf(body + n, sizeof body - (size_t)n, "]}");
	setup_req("POST", "/api/v1/items", key_s, body, ans, sizeof ans);
	for (int u = 1; u <= 4; u++)
		for (int i = u; i <= u + 3; i++) {
			snprintf(body, sizeof body,
				 "{\"user_id\":\"u%d\",\"item_id\":\"i%d\","
				 "\"interaction_type\":\"purchase\"}", u, i);
			setup_req("POST", "/api/v1/interactions", key_s, body,
				  ans, sizeof ans);
		}
	setup_req("POST", "/api/v1/models/train", key_s, "{}", ans,
		  sizeof ans);
	const char *id = strstr(ans, "\"job_id\":\"");
	char url[256];
	for (int tries = 0; id && tries < 300; tries++) {
		snprintf(url, sizeof url, "/api/v1/models/jobs/%.*s",
			 (int)strcspn(id + 10, "\""), id + 10);
		setup_req("GET", url, key_s, "", ans, sizeof ans);
		if (!strstr(ans, "\"queued\"") && !strstr(ans, "\"running\""))
			break;
		usleep(10000);
	}
}

static void start(void)
{
	config();
	knytt_store *st = kd_store();
	unsigned port;
	if (!st || kd_auth_init(st) || kd_http_start(&port)) {
		fprintf(stderr, "fuzz_knyttd_request: cannot start: %s\n",
			knytt_errmsg());
		abort();
	}
	atexit(cleanup);
	populate(st);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int started;
	if (!started) {
		start();
		started = 1;
	}
	size_t n;
	char *req = expand(data, size, &n);
	if (!req)
		return 0;
	/* An incomplete request whose end of input libmicrohttpd missed
	 * (its edge-triggered epoll can take bytes and the shutdown behind
	 * them as one event, and then waits for more: exchange waits until
	 * the bytes are read, so this is rare) is closed after 1 s; a probe
	 * then tells a daemon that still answers from one that hangs. */
	static const char probe[] = "GET /health HTTP/1.1\r\nHost: f\r\n"
				    "Connection: close\r\n\r\n";
	static char ans[2048];
	static int show = -1;
	if (show < 0)
		show = getenv("FUZZ_KD_SHOW") != NULL;
	long got = exchange(req, n, show ? ans : NULL, sizeof ans, 1000);
	if (show)
		fprintf(stderr, "---- %ld bytes:\n%s\n", got, got > 0 ? ans : "");
	if (got < 0 &&
	    exchange(probe, sizeof probe - 1, NULL, 0, 30000) <= 0) {
		fprintf(stderr, "fuzz_knyttd_request: no answer in 30 s\n");
		abort();
	}
	free(req);
	return 0;
}
