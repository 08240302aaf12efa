/*
 * bench.c -- knytt_embedder against a local /v1/embeddings server
 * (libmicrohttpd on 127.0.0.1) with a chosen service time, so the
 * figures show the client's own cost and the effect of its knobs, not a
 * model's speed.
 *
 *   latency   one short text per call (a search query), dimension D:
 *             "pooled" reuses one embedder (kept-alive connection);
 *             the anchor "fresh" makes, opens and closes an embedder per
 *             call (a new TCP connection each time).
 *   ingest    N texts, batch 32, the server spending S ms per request:
 *             texts/s for parallel = 1 (anchor), 2, 4, 8.
 *
 * Output: one CSV-like line per measurement on stdout:
 *   kind,variant,dim,value,unit
 */
#include <knytt.h>

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static unsigned dim_answer = 384;
static unsigned service_ms = 0;

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

struct body {
	char *p;
	size_t n;
};

/* Counts the strings of the "input" array without a JSON parser: the
 * bench texts hold no quotes or brackets. */
static int count_inputs(const char *s)
{
	const char *p = strstr(s, "\"input\":[");
	int n = 0;
	if (!p)
		return 0;
	for (p += 9; *p && *p != ']'; p++)
		if (*p == '"')
			n++;
	return n / 2;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_size, void **state)
{
	struct body *b = *state;
	if (!b) {
		*state = calloc(1, sizeof *b);
		return *state ? MHD_YES : MHD_NO;
	}
	if (*upload_size) {
		b->p = realloc(b->p, b->n + *upload_size + 1);
		memcpy(b->p + b->n, upload, *upload_size);
		b->n += *upload_size;
		b->p[b->n] = '\0';
		*upload_size = 0;
		return MHD_YES;
	}
	int n = b->p ? count_inputs(b->p) : 0;
	if (service_ms)
		usleep(service_ms * 1000);
	size_t cap = 64 + (size_t)n * (40 + dim_answer * 10);
	char *out = malloc(cap), *o = out;
	o += sprintf(o, "{\"object\":\"list\",\"data\":[");
	for (int i = 0; i < n; i++) {
		o += sprintf(o, "%s{\"index\":%d,\"embedding\":[", i ? "," : "",
			     i);
		for (unsigned j = 0; j < dim_answer; j++)
			o += sprintf(o, "%s%.6f", j ? "," : "",
				     (i * 31 + j * 17) % 1000 / 1000.0 - 0.5);
		o += sprintf(o, "]}");
	}
	o += sprintf(o, "]}");
	struct MHD_Response *r = MHD_create_response_from_buffer(
		(size_t)(o - out), out, MHD_RESPMEM_MUST_FREE);
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ok = MHD_queue_response(c, 200, r);
	MHD_destroy_response(r);
	return ok;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
			 enum MHD_RequestTerminationCode why)
{
	struct body *b = *state;
	if (b) {
		free(b->p);
		free(b);
	}
}

static knytt_embedder *make(const char *url, unsigned batch, unsigned par)
{
	knytt_embedder *e;
	knytt_embedder_create(&e);
	knytt_embedder_set_url(e, url);
	knytt_embedder_set_model(e, "bench");
	knytt_embedder_set_api_key(e, "bench-key");
	knytt_embedder_set_timeout_ms(e, 10000);
	knytt_embedder_set_batch(e, batch);
	knytt_embedder_set_parallel(e, par);
	if (knytt_embedder_open(e) != KNYTT_OK) {
		fprintf(stderr, "open: %s\n", knytt_errmsg());
		exit(1);
	}
	return e;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static void check(int rc)
{
	if (rc != KNYTT_OK) {
		fprintf(stderr, "embed: %s\n", knytt_errmsg());
		exit(1);
	}
}

int main(int argc, char **argv)
{
	int calls = argc > 1 ? atoi(argv[1]) : 1000;
	int ntexts = argc > 2 ? atoi(argv[2]) : 2048;
	unsigned svc = argc > 3 ? (unsigned)atoi(argv[3]) : 20;
	unsetenv("http_proxy");
	struct sockaddr_in sa = { 0 };
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION,
		0, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
		MHD_OPTION_END);
	if (!d)
		return 1;
	char url[64];
	snprintf(url, sizeof url, "http://127.0.0.1:%u",
		 MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT)->port);

	/* latency of one short text */
	static const unsigned dims[] = { 384, 1536 };
	double *t = malloc((size_t)calls * sizeof *t);
	float *v = malloc(1536 * sizeof *v);
	for (size_t di = 0; di < 2; di++) {
		dim_answer = dims[di];
		for (int fresh = 0; fresh < 2; fresh++) {
			knytt_embedder *e = fresh ? NULL : make(url, 32, 1);
			const char *q[] = { "red running shoes size 42" };
			for (int i = -20; i < calls; i++) { /* 20 warm-up */
				double t0 = now_ms();
				knytt_embedder *x =
					fresh ? make(url, 32, 1) : e;
				check(knytt_embedder_embed(x, 1, q, v,
							   dims[di]));
				if (fresh)
					knytt_embedder_close(x);
				if (i >= 0)
					t[i] = now_ms() - t0;
			}
			knytt_embedder_close(e);
			qsort(t, (size_t)calls, sizeof *t, cmp_double);
			printf("latency,%s,%u,%.4f,ms_median\n",
			       fresh ? "fresh" : "pooled", dims[di],
			       t[calls / 2]);
			printf("latency,%s,%u,%.4f,ms_p90\n",
			       fresh ? "fresh" : "pooled", dims[di],
			       t[calls * 9 / 10]);
			fflush(stdout);
		}
	}
	free(t);
	free(v);

	/* bulk ingest with a service time per request */
	dim_answer = 384;
	service_ms = svc;
	char (*buf)[48] = malloc((size_t)ntexts * sizeof *buf);
	const char **texts = malloc((size_t)ntexts * sizeof *texts);
	float *out = malloc((size_t)ntexts * 384 * sizeof *out);
	for (int i = 0; i < ntexts; i++) {
		snprintf(buf[i], sizeof buf[i], "product %d title and text", i);
		texts[i] = buf[i];
	}
	static const unsigned pars[] = { 1, 2, 4, 8 };
	for (size_t pi = 0; pi < 4; pi++) {
		double best = 0;
		for (int rep = 0; rep < 3; rep++) {
			knytt_embedder *e = make(url, 32, pars[pi]);
			double t0 = now_ms();
			check(knytt_embedder_embed(e, (size_t)ntexts, texts,
						   out, 384));
			double rate = ntexts / ((now_ms() - t0) / 1e3);
			knytt_embedder_close(e);
			if (rate > best)
				best = rate;
		}
		printf("ingest,parallel=%u,384,%.1f,texts_per_s\n", pars[pi],
		       best);
		fflush(stdout);
	}
	free(buf);
	free(texts);
	free(out);
	MHD_stop_daemon(d);
	return 0;
}
