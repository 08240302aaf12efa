/*
 * floor.c -- the floor of benchmarks/serve: a do-nothing libmicrohttpd +
 * cJSON server configured like knyttd (a pool of threads with their own
 * epoll loops, the same count), which gathers the body, parses it with
 * cJSON and answers a fixed JSON document of about the size of a
 * recommendation answer.  What knyttd adds on top of this is its own
 * cost: authentication, the engine call and the item fields.
 *
 * usage: floor [--threads N]   (listens on 127.0.0.1, a free port,
 *                               printed as "floor: listening on URL")
 */
#include <cJSON.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

typedef struct body {
	char *p;
	size_t n;
} body;

static char answer[4096];
static size_t answer_len;

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c,
				  const char *url, const char *method,
				  const char *version, const char *up,
				  size_t *up_size, void **con_cls)
{
	body *b = *con_cls;
	(void)cls, (void)url, (void)method, (void)version;
	if (!b) {
		*con_cls = calloc(1, sizeof *b);
		return *con_cls ? MHD_YES : MHD_NO;
	}
	if (*up_size) {
		char *q = realloc(b->p, b->n + *up_size + 1);
		if (!q)
			return MHD_NO;
		memcpy(q + b->n, up, *up_size);
		b->p = q;
		b->n += *up_size;
		b->p[b->n] = 0;
		*up_size = 0;
		return MHD_YES;
	}
	cJSON *j = b->n ? cJSON_ParseWithLength(b->p, b->n) : NULL;
	int ok = !b->n || j;
	cJSON_Delete(j);
	struct MHD_Response *r = MHD_create_response_from_buffer(
		answer_len, answer, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
				"application/json");
	enum MHD_Result rc = MHD_queue_response(c, ok ? 200 : 400, r);
	MHD_destroy_response(r);
	return rc;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
		    enum MHD_RequestTerminationCode why)
{
	body *b = *con_cls;
	(void)cls, (void)c, (void)why;
	if (b) {
		free(b->p);
		free(b);
	}
	*con_cls = NULL;
}

int main(int argc, char **argv)
{
	unsigned threads = 4;
	if (argc == 3 && !strcmp(argv[1], "--threads"))
		threads = (unsigned)atoi(argv[2]);
	/* a fixed answer shaped like ten recommendations */
	int n = snprintf(answer, sizeof answer, "{\"results\":[");
	for (int i = 0; i < 10; i++)
		n += snprintf(answer + n, sizeof answer - (size_t)n,
			      "%s{\"item_id\":\"i%05d\",\"title\":\"Lightweight "
			      "waterproof hiking boot\",\"category\":"
			      "\"shoes/hiking\",\"price\":129.99,\"in_stock\":"
			      "true,\"score\":0.%d,\"reason\":\"taste\"}",
			      i ? "," : "", i, 9 - i);
	n += snprintf(answer + n, sizeof answer - (size_t)n,
		      "],\"count\":10,\"strategy\":\"personal\"}");
	answer_len = (size_t)n;
	struct sockaddr_in sa;
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	struct MHD_Daemon *d = MHD_start_daemon(
		MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC, 0, NULL, NULL,
		on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
		MHD_OPTION_THREAD_POOL_SIZE, threads,
		MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL,
		MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_END);
	if (!d)
		return 1;
	const union MHD_DaemonInfo *di =
		MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	printf("floor: listening on http://127.0.0.1:%u\n", di->port);
	fflush(stdout);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	int sig;
	sigwait(&set, &sig);
	MHD_stop_daemon(d);
	return 0;
}
