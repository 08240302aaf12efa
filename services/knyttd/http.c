/*
 * http.c -- libmicrohttpd's side: the daemon, bodies, answers, the access
 * log and the count of requests in flight (for a graceful stop).
 *
 * The daemon runs a pool of threads, each with its own epoll loop
 * (MHD_USE_EPOLL_INTERNAL_THREAD + MHD_OPTION_THREAD_POOL_SIZE); a
 * handler runs on the thread of its connection.  MHD_USE_ITC lets
 * kd_http_quiesce stop accepting while requests in flight finish.
 *
 * Bodies: a Content-Length above the limit is refused (413) before any
 * byte of the body is read; a chunked body is gathered up to the limit
 * and the rest discarded, then refused the same way.
 */
#include "knyttd.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

volatile int kd_draining;
static atomic_long inflight;
static struct MHD_Daemon *daemon_;

int64_t kd_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void req_free(kd_req *r)
{
	kd_engine_release(r);
	cJSON_Delete(r->json);
	cJSON_Delete(r->out);
	if (r->raw)
		MHD_destroy_response(r->raw);
	free(r->body);
	free(r->pathbuf);
	free(r->rawpath);
	free(r->allow);
	free(r->text);
	knytt_where_free(r->where);
	free(r);
}

static enum MHD_Result respond(struct MHD_Connection *c, kd_req *r)
{
	if (r->raw) /* a file of static.c, headers set there */
		return MHD_queue_response(c, (unsigned)r->status, r->raw);
	char *txt = r->text ? r->text
			    : r->out ? cJSON_PrintUnformatted(r->out)
				     : NULL;
	r->text = NULL; /* the response owns it now */
	struct MHD_Response *resp;
	if (txt) {
		r->bytes_out = strlen(txt);
		resp = MHD_create_response_from_buffer(strlen(txt), txt,
						       MHD_RESPMEM_MUST_FREE);
	} else {
		static const char oom[] =
			"{\"error\":{\"code\":\"no_memory\",\"message\":"
			"\"out of memory\",\"field\":null}}";
		resp = MHD_create_response_from_buffer(
			sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
		r->status = 503;
		r->ctype = NULL;
		r->bytes_out = sizeof oom - 1;
	}
	if (!resp) {
		free(txt);
		return MHD_NO;
	}
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
				r->ctype ? r->ctype : "application/json");
	if (r->allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
	MHD_add_response_header(resp, "X-Request-Id", r->reqid);
	if (r->retry_after > 0) {
		char ra[24];
		snprintf(ra, sizeof ra, "%ld", r->retry_after);
		MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	if (kd_draining)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION,
					"close");
	enum MHD_Result ok = MHD_queue_response(c, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ok;
}

/* Appends upload bytes; beyond the limit they are dropped. */
static void gather(kd_req *r, const char *data, size_t n)
{
	if (r->too_big)
		return;
	if (r->len + n > kd_cfg.body_limit) {
		r->too_big = 1;
		return;
	}
	if (r->len + n + 1 > r->cap) {
		size_t cap = r->cap ? r->cap : 4096;
		while (cap < r->len + n + 1)
			cap *= 2;
		char *b = realloc(r->body, cap);
		if (!b) {
			r->too_big = 1; /* answered 413: as good as any */
			return;
		}
		r->body = b;
		r->cap = cap;
	}
	memcpy(r->body + r->len, data, n);
	r->len += n;
	r->body[r->len] = 0;
}

/* The query string is kept whole by libmicrohttpd; one that long is no
 * query a client of this API makes (ids and categories are short). */
#define KD_QUERY_LIMIT 8192

/* a body declared over the limit but under this many times it is read
 * (and dropped) before the 413 (on_request) */
#define KD_DRAIN_FACTOR 4

static enum MHD_Result add_len(void *cls, enum MHD_ValueKind kind,
			       const char *key, const char *value)
{
	size_t *n = cls;
	*n += strlen(key) + (value ? strlen(value) : 0) + 2;
	return MHD_YES;
}

static size_t query_len(struct MHD_Connection *c)
{
	size_t n = 0;
	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_len, &n);
	return n;
}

static int too_big(kd_req *r)
{
	return kd_err(r, 413, "payload_too_large", NULL,
		      "the body is larger than %zu bytes", kd_cfg.body_limit);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **con_cls)
{
	kd_req *r = *con_cls;
	if (!r || !r->started) {
		if (!r && !(r = calloc(1, sizeof *r)))
			return MHD_NO;
		r->started = 1;
		atomic_fetch_add(&inflight, 1);
		r->t0_us = kd_now_us();
		r->conn = c;
		r->url = url;
		r->method = method;
		*con_cls = r;
		kd_reqlog_begin(r);
		const char *cl = MHD_lookup_connection_value(
			c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		/* A declared body over the limit is refused.  Up to
		 * KD_DRAIN_FACTOR times the limit it is read and dropped
		 * first (gather keeps none of it), so the client has sent
		 * everything when the 413 comes: answered while the client
		 * was still sending, the close that follows could reset the
		 * connection before the client read the answer (it saw no
		 * status at all, now and then, on a loaded machine).  A
		 * larger one is answered at once and not read. */
		unsigned long long clen = cl ? strtoull(cl, NULL, 10) : 0;
		if (clen > kd_cfg.body_limit) {
			if (clen / KD_DRAIN_FACTOR >= kd_cfg.body_limit) {
				too_big(r);
				return respond(c, r);
			}
			r->too_big = 1;
		}
		if (query_len(c) > KD_QUERY_LIMIT) {
			kd_err(r, 414, "uri_too_long", NULL,
			       "the query string is longer than %d bytes",
			       KD_QUERY_LIMIT);
			return respond(c, r);
		}
		return MHD_YES;
	}
	if (*upload_size) {
		if (!r->status) /* not answered early (413) */
			gather(r, upload, *upload_size);
		*upload_size = 0;
		return MHD_YES;
	}
	if (r->status) /* answered early (413) */
		return MHD_YES;
	if (r->too_big)
		too_big(r);
	else if (kd_draining && strcmp(url, "/health") != 0)
		kd_err(r, 503, "shutting_down", NULL,
		       "the server is shutting down; retry elsewhere");
	else
		kd_dispatch(r);
	return respond(c, r);
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
		    enum MHD_RequestTerminationCode why)
{
	kd_req *r = *con_cls;
	if (!r)
		return;
	if (!r->started) { /* made by on_uri, never handled */
		req_free(r);
		*con_cls = NULL;
		return;
	}
	double took = (double)(kd_now_us() - r->t0_us) / 1e6;
	kd_metrics_observe(r, took);
	kd_stats_observe(r, took);
	if (kd_cfg.access_log)
		kd_reqlog_line(r, why != MHD_REQUEST_TERMINATED_COMPLETED_OK);
	req_free(r);
	*con_cls = NULL;
	atomic_fetch_sub(&inflight, 1);
}

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* Percent-decoding of the path and the query string, as libmicrohttpd's
 * own but for "%00", which is kept as it is: decoded, its NUL ended the
 * C string early, so DELETE /api/v1/items/a%00b deleted item "a". */
size_t kd_unescape(char *s)
{
	char *w = s;
	for (const char *r = s; *r;) {
		int hi = r[0] == '%' ? hexval(r[1]) : -1;
		int lo = hi >= 0 ? hexval(r[2]) : -1;
		if (lo >= 0 && (hi | lo) != 0) {
			*w++ = (char)(hi << 4 | lo);
			r += 3;
		} else {
			*w++ = *r++;
		}
	}
	*w = 0;
	return (size_t)(w - s);
}

static size_t unescape(void *cls, struct MHD_Connection *c, char *s)
{
	return kd_unescape(s);
}

/*
 * libmicrohttpd hands the access handler the path already decoded, where
 * /api/v1/items/a%2Fb and /api/v1/items/a/b look alike, so an item id
 * holding a '/' could be stored but never named in a path.  This
 * callback sees the request line first, as sent: the request is made
 * here with the path kept encoded (the query string cut), and route.c
 * splits that at its slashes before decoding each segment.  What it
 * returns becomes the request's con_cls.
 */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
	kd_req *r = calloc(1, sizeof *r);
	if (r && uri)
		r->rawpath = strndup(uri, strcspn(uri, "?"));
	return r;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	msg[strcspn(msg, "\n\"\\")] = 0;
	kd_log("{\"level\":\"warn\",\"msg\":\"microhttpd: %s\"}", msg);
}

int kd_http_start(unsigned *port)
{
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)kd_cfg.port);
	if (inet_pton(AF_INET, kd_cfg.host, &sa.sin_addr) != 1) {
		fprintf(stderr, "knyttd: --listen: '%s' is not an IPv4 "
				"address\n",
			kd_cfg.host);
		return -1;
	}
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC |
			 MHD_USE_ERROR_LOG;
	daemon_ = MHD_start_daemon(
		flags, (uint16_t)kd_cfg.port, NULL, NULL, on_request, NULL,
		MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_THREAD_POOL_SIZE, kd_cfg.threads,
		MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
		MHD_OPTION_UNESCAPE_CALLBACK, unescape, NULL,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, NULL,
		MHD_OPTION_CONNECTION_TIMEOUT, 60u,
		MHD_OPTION_CONNECTION_LIMIT, 4096u,
		MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
		MHD_OPTION_END);
	if (!daemon_) {
		fprintf(stderr, "knyttd: cannot listen on %s:%u\n", kd_cfg.host,
			kd_cfg.port);
		return -1;
	}
	const union MHD_DaemonInfo *di =
		MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
	*port = di ? di->port : kd_cfg.port;
	return 0;
}

/* Stops accepting connections, then waits up to @p wait_ms for the
 * requests in flight (new requests on open connections get 503 meanwhile:
 * kd_draining).  Returns how many were still running. */
long kd_http_quiesce(long wait_ms)
{
	kd_draining = 1;
	MHD_socket fd = MHD_quiesce_daemon(daemon_);
	if (fd != MHD_INVALID_SOCKET)
		close(fd);
	for (long t = 0; t < wait_ms && atomic_load(&inflight) > 0; t += 10) {
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	return atomic_load(&inflight);
}

int kd_http_adopt(int fd)
{
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (MHD_add_connection(daemon_, fd, (struct sockaddr *)&sa,
			       sizeof sa) != MHD_YES)
		return -1;
	return 0;
}

long kd_http_inflight(void)
{
	return atomic_load(&inflight);
}

void kd_http_stop(void)
{
	if (daemon_)
		MHD_stop_daemon(daemon_);
	daemon_ = NULL;
}
