/*
 * reqlog.c -- the request's identity and its access-log line.
 *
 * Each request gets an id: the client's X-Request-Id when it is a sane
 * token (1..64 of [A-Za-z0-9._:-], so it cannot break the JSON line or
 * smuggle a header), else one made here; the answer echoes it.  A W3C
 * traceparent ("00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>",
 * lower case, ids not all zeros) puts its trace id in the line; a
 * malformed one is ignored, as the W3C recommendation says, rather than
 * failing the request.
 *
 * The line names the route *pattern*, never the raw path: paths carry
 * API keys (DELETE .../keys/{key}) and shoppers' ids.  Headers, bodies
 * and query strings are never written, so no key, token or password
 * reaches the log (tests/check_knyttd_ops.c greps for them).
 */
#include "knyttd.h"

#include <microhttpd.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

static int id_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr("._:-", s[i])))
			return 0;
	return 1;
}

/* @p n lower-case hex digits; with @p nonzero, not all '0'. */
static int hex(const char *s, size_t n, int nonzero)
{
	int any = 0;
	for (size_t i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') ||
		      (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
		any |= s[i] != '0';
	}
	return any || !nonzero;
}

int kd_traceparent_ok(const char *tp, char *trace, size_t cap)
{
	/* version 00 is exactly 55 characters; version ff is invalid */
	if (!tp || strlen(tp) != 55 || cap < 33)
		return 0;
	if (!hex(tp, 2, 0) || !strncmp(tp, "ff", 2) || tp[2] != '-' ||
	    tp[35] != '-' || tp[52] != '-')
		return 0;
	if (!hex(tp + 3, 32, 1) || !hex(tp + 36, 16, 1) || !hex(tp + 53, 2, 0))
		return 0;
	memcpy(trace, tp + 3, 32);
	trace[32] = 0;
	return 1;
}

/*
 * Ids made here: a counter through splitmix64 (a bijection of 64 bits),
 * from random starting points drawn once, so ids never repeat within a
 * process and differ between processes.  They are names, not secrets:
 * asking the kernel for 12 random bytes per request was a system call
 * on every request (strace, benchmarks/serve).
 */
static uint64_t id_seed[2];
static _Atomic uint64_t id_next;
static pthread_once_t id_once = PTHREAD_ONCE_INIT;

static void id_init(void)
{
	randombytes_buf(id_seed, sizeof id_seed);
}

static uint64_t splitmix64(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ull;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
	return x ^ (x >> 31);
}

static void new_id(char *out, size_t cap)
{
	pthread_once(&id_once, id_init);
	uint64_t n = atomic_fetch_add(&id_next, 1);
	uint64_t a = splitmix64(id_seed[0] + n), b = splitmix64(id_seed[1] ^ n);
	unsigned char raw[12];
	memcpy(raw, &a, 8);
	memcpy(raw + 8, &b, 4);
	sodium_bin2hex(out, cap, raw, sizeof raw);
}

void kd_reqlog_begin(kd_req *r)
{
	const char *id = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						     "X-Request-Id");
	if (id && id_ok(id))
		snprintf(r->reqid, sizeof r->reqid, "%s", id);
	else
		new_id(r->reqid, sizeof r->reqid);
	const char *tp = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						     "traceparent");
	if (!kd_traceparent_ok(tp, r->trace, sizeof r->trace))
		r->trace[0] = 0;
}

void kd_reqlog_line(const kd_req *r, int aborted)
{
	struct timeval tv;
	struct tm tm;
	char when[40];
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	size_t n = strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when + n, sizeof when - n, ".%03ldZ",
		 (long)(tv.tv_usec / 1000));
	char trace[48] = "";
	if (r->trace[0])
		snprintf(trace, sizeof trace, ",\"trace_id\":\"%s\"", r->trace);
	/* the method is the client's: only known ones are written */
	const char *m = r->route ? r->route_method : "other";
	kd_log("{\"time\":\"%s\",\"level\":\"info\",\"msg\":\"request\","
	       "\"request_id\":\"%s\"%s,\"tenant\":%llu,\"method\":\"%s\","
	       "\"route\":\"%s\",\"status\":%d,\"duration_ms\":%.3f,"
	       "\"bytes\":%zu%s}",
	       when, r->reqid, trace, (unsigned long long)r->tenant, m,
	       r->route ? r->route : "none", r->status,
	       (double)(kd_now_us() - r->t0_us) / 1000.0, r->bytes_out,
	       aborted ? ",\"aborted\":true" : "");
}
