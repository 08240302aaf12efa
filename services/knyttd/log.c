/*
 * log.c -- the log: one line per event, to a file or stderr.
 *
 * Lines are written with one fputs under a lock, so lines of concurrent
 * requests never interleave.  SIGHUP reopens the file (kd_log_reopen,
 * from the main thread), the usual handshake with logrotate.
 */
#include "knyttd.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_fp;
static char log_path[4096];

int kd_log_open(const char *path)
{
	snprintf(log_path, sizeof log_path, "%s", path ? path : "");
	return kd_log_reopen();
}

int kd_log_reopen(void)
{
	if (!*log_path)
		return 0;
	FILE *f = fopen(log_path, "a");
	if (!f) {
		fprintf(stderr, "knyttd: cannot open log %s: %s\n", log_path,
			strerror(errno));
		return -1;
	}
	setvbuf(f, NULL, _IOLBF, 0);
	pthread_mutex_lock(&log_mu);
	FILE *old = log_fp;
	log_fp = f;
	pthread_mutex_unlock(&log_mu);
	if (old)
		fclose(old);
	return 0;
}

void kd_log(const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof line - 2)
		n = sizeof line - 2;
	line[n] = '\n';
	line[n + 1] = 0;
	pthread_mutex_lock(&log_mu);
	fputs(line, log_fp ? log_fp : stderr);
	pthread_mutex_unlock(&log_mu);
}

void kd_log_close(void)
{
	pthread_mutex_lock(&log_mu);
	if (log_fp)
		fclose(log_fp);
	log_fp = NULL;
	pthread_mutex_unlock(&log_mu);
}
