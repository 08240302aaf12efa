/*
 * main.c -- knyttd's command line, start-up and signals.
 *
 * A signal handler only writes the signal's number to a pipe, which the
 * main thread reads, so the work done on SIGTERM -- stop accepting,
 * finish the requests in flight, flush write-behind feedback, close the
 * engines -- runs as ordinary code.  Blocking the signals and taking
 * them with sigwait is not enough: threads that libraries start before
 * main (OpenBLAS's pool) keep the default mask, and a second SIGTERM
 * during the drain, delivered to one of them, killed the process with
 * requests in flight (sigterm_finishes_requests_in_flight).
 */
#include "knyttd.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

kd_config kd_cfg;

static const char usage[] =
	"usage: knyttd [--listen HOST:PORT] [--db URI] [--admin-key-file FILE]\n"
	"              [--threads N] [--body-limit BYTES] [--log FILE] "
	"[--quiet] [--access-log]\n"
	"              [--token-ttl SECONDS] [--sync-feedback] "
	"[--drain-timeout SECONDS]\n"
	"              [--pwhash-ops N] [--pwhash-mem KIB] [--key-cache-ms MS]\n"
	"              [--item-cache-ms MS] [--www DIR]\n"
	"              [--rate-limit RPS] [--rate-burst N] [--max-items N]\n"
	"              [--max-interactions N] [--profile-cache MIB] "
	"[--malloc-arenas N]\n"
	"              [--train-every-interactions N] [--train-every-hours H]\n"
	"              [--train-eval-users N] [--train-margin M] "
	"[--schedule-tick-ms MS]\n"
	"              [--no-replicas] [--replica-retry-ms MS]\n"
	"The admin key comes from KNYTT_ADMIN_KEY or --admin-key-file.  See "
	"knyttd(8).\n";

static int read_key_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f) {
		fprintf(stderr, "knyttd: --admin-key-file %s: %s\n", path,
			strerror(errno));
		return -1;
	}
	char *got = fgets(kd_cfg.admin_key, sizeof kd_cfg.admin_key, f);
	fclose(f);
	if (!got) {
		fprintf(stderr, "knyttd: --admin-key-file %s is empty\n", path);
		return -1;
	}
	kd_cfg.admin_key[strcspn(kd_cfg.admin_key, "\r\n")] = 0;
	return 0;
}

static int parse_listen(const char *s)
{
	const char *colon = strrchr(s, ':');
	char *end;
	if (!colon || colon == s || (size_t)(colon - s) >= sizeof kd_cfg.host)
		return -1;
	unsigned long p = strtoul(colon + 1, &end, 10);
	if (*end || end == colon + 1 || p > 65535)
		return -1;
	memcpy(kd_cfg.host, s, (size_t)(colon - s));
	kd_cfg.host[colon - s] = 0;
	kd_cfg.port = (unsigned)p;
	return 0;
}

/* A whole number option value in lo..max into *out: 0, or -1 (said why,
 * with the range the option really takes). */
static int num_in(const char *opt, const char *v, unsigned long long lo,
		  unsigned long long max, unsigned long long *out)
{
	char *end;
	errno = 0;
	unsigned long long n = v ? strtoull(v, &end, 10) : 0;
	if (!v || *end || end == v || errno || *v == '-' || n < lo ||
	    n > max) {
		fprintf(stderr, "knyttd: %s needs a number in %llu..%llu\n",
			opt, lo, max);
		return -1;
	}
	*out = n;
	return 0;
}

/* A whole number option value in 1..max, or 0 (said why). */
static unsigned long long num(const char *opt, const char *v,
			      unsigned long long max)
{
	unsigned long long n = 0;
	return num_in(opt, v, 1, max, &n) ? 0 : n;
}

/* A decimal option value in lo..hi into *out: 0, or -1 (said why). */
static int fnum(const char *opt, const char *v, double lo, double hi,
		double *out)
{
	char *end;
	double d = v ? strtod(v, &end) : 0;
	if (!v || *end || end == v || !(d >= lo && d <= hi)) {
		fprintf(stderr, "knyttd: %s needs a number in %g..%g\n", opt,
			lo, hi);
		return -1;
	}
	*out = d;
	return 0;
}

/* The training schedule's options (schedule.c): 1 taken, 0 not one of
 * them, -1 a bad value. */
static int sched_arg(const char *o, const char *v)
{
	double d;
	if (!strcmp(o, "--train-every-interactions")) {
		if (fnum(o, v, 0, 1e12, &d))
			return -1;
		kd_cfg.sched.every_events = (int64_t)d;
	} else if (!strcmp(o, "--train-every-hours")) {
		if (fnum(o, v, 0, 1e5, &d))
			return -1;
		kd_cfg.sched.every_hours = d;
	} else if (!strcmp(o, "--train-eval-users")) {
		if (fnum(o, v, 0, 1e6, &d))
			return -1;
		kd_cfg.sched.eval_users = (unsigned)d;
	} else if (!strcmp(o, "--train-margin")) {
		if (fnum(o, v, -1, 1, &kd_cfg.sched.margin))
			return -1;
	} else if (!strcmp(o, "--schedule-tick-ms")) {
		if (fnum(o, v, 10, 3600000, &d))
			return -1;
		kd_cfg.sched_tick_ms = (long)d;
	} else if (!strcmp(o, "--replica-retry-ms")) {
		if (fnum(o, v, 50, 600000, &d))
			return -1;
		kd_cfg.replica_retry_ms = (long)d;
	} else {
		return 0;
	}
	return 1;
}

static int parse_args(int argc, char **argv)
{
	const char *key_file = NULL;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		int takes = 1;
		unsigned long long n = 1;
		int sa = sched_arg(o, v);
		if (sa < 0)
			return -1;
		if (sa > 0) {
			/* taken */
		} else if (!strcmp(o, "--listen")) {
			if (!v || parse_listen(v)) {
				fprintf(stderr, "knyttd: --listen needs "
						"HOST:PORT\n");
				return -1;
			}
		} else if (!strcmp(o, "--db") && v) {
			snprintf(kd_cfg.db, sizeof kd_cfg.db, "%s", v);
		} else if (!strcmp(o, "--admin-key-file") && v) {
			key_file = v;
		} else if (!strcmp(o, "--admin-key")) {
			fprintf(stderr, "knyttd: the admin key is never a "
					"command-line argument (others can "
					"read it in ps): use KNYTT_ADMIN_KEY "
					"or --admin-key-file\n");
			return -1;
		} else if (!strcmp(o, "--threads")) {
			kd_cfg.threads = (unsigned)(n = num(o, v, 1024));
		} else if (!strcmp(o, "--body-limit")) {
			kd_cfg.body_limit = n = num(o, v, 1ULL << 30);
		} else if (!strcmp(o, "--www") && v) {
			snprintf(kd_cfg.www, sizeof kd_cfg.www, "%s", v);
			struct stat st;
			if (stat(v, &st) || !S_ISDIR(st.st_mode)) {
				fprintf(stderr, "knyttd: --www %s is not a "
						"directory\n", v);
				return -1;
			}
		} else if (!strcmp(o, "--log") && v) {
			snprintf(kd_cfg.log_path, sizeof kd_cfg.log_path, "%s",
				 v);
		} else if (!strcmp(o, "--token-ttl")) {
			kd_cfg.token_ttl_s = (int64_t)(n = num(o, v, 1ULL << 31));
		} else if (!strcmp(o, "--pwhash-ops")) {
			kd_cfg.pwhash_ops = n = num(o, v, 64);
		} else if (!strcmp(o, "--pwhash-mem")) {
			kd_cfg.pwhash_mem = (size_t)(n = num(o, v, 4 << 20)) *
					    1024;
		} else if (!strcmp(o, "--key-cache-ms")) {
			/* 0 is allowed: no cache */
			kd_cfg.key_cache_ms = v && !strcmp(v, "0")
						      ? 0
						      : (long)(n = num(o, v,
								       60000));
		} else if (!strcmp(o, "--item-cache-ms")) {
			/* 0 is allowed: item fields read for every answer */
			kd_cfg.item_cache_ms = v && !strcmp(v, "0")
						       ? 0
						       : (long)(n = num(o, v,
									60000));
		} else if (!strcmp(o, "--rate-limit")) {
			kd_cfg.limits.rps = (double)(n = num(o, v, 1000000));
		} else if (!strcmp(o, "--rate-burst")) {
			kd_cfg.limits.burst = (double)(n = num(o, v, 1000000));
		} else if (!strcmp(o, "--max-items")) {
			kd_cfg.limits.max_items = (int64_t)(n = num(o, v,
								   1ULL << 40));
		} else if (!strcmp(o, "--max-interactions")) {
			kd_cfg.limits.max_interactions =
				(int64_t)(n = num(o, v, 1ULL << 40));
		} else if (!strcmp(o, "--profile-cache")) {
			kd_cfg.profile_cache = (uint64_t)(n = num(o, v, 1 << 20))
					       << 20;
		} else if (!strcmp(o, "--malloc-arenas")) {
			/* 0 is allowed: glibc's own limit */
			unsigned long long a = 0;
			if (num_in(o, v, 0, 1024, &a))
				return -1;
			kd_cfg.malloc_arenas = (long)a;
		} else if (!strcmp(o, "--drain-timeout")) {
			n = num(o, v, 3600);
			kd_cfg.drain_ms = (long)n * 1000;
		} else {
			takes = 0;
			if (!strcmp(o, "--quiet")) {
				kd_cfg.access_log = 0;
			} else if (!strcmp(o, "--access-log")) {
				kd_cfg.access_log = 1; /* after --quiet */
			} else if (!strcmp(o, "--sync-feedback")) {
				kd_cfg.feedback_async = 0;
			} else if (!strcmp(o, "--no-replicas")) {
				kd_cfg.replicas = -1; /* resolved below */
			} else {
				fputs(usage, stderr);
				return -1;
			}
		}
		if (n == 0)
			return -1;
		i += takes;
	}
	/* a rate without a burst: one second's worth */
	if (kd_cfg.limits.rps > 0 && kd_cfg.limits.burst < 1)
		kd_cfg.limits.burst = kd_cfg.limits.rps < 1 ? 1
							    : kd_cfg.limits.rps;
	/* several replicas share a PostgreSQL database: tell them what
	 * this one writes, and write feedback before telling (replica.c) */
	int pg = !strncmp(kd_cfg.db, "postgres://", 11) ||
		 !strncmp(kd_cfg.db, "postgresql://", 13);
	kd_cfg.replicas = pg && kd_cfg.replicas == 0;
	if (kd_cfg.replicas)
		kd_cfg.feedback_async = 0;
	const char *env = getenv("KNYTT_ADMIN_KEY");
	if (key_file && read_key_file(key_file))
		return -1;
	if (!key_file && env && *env)
		snprintf(kd_cfg.admin_key, sizeof kd_cfg.admin_key, "%s", env);
	if (env) /* not handed on to anything this process starts */
		unsetenv("KNYTT_ADMIN_KEY");
	return 0;
}

static void defaults(void)
{
	snprintf(kd_cfg.db, sizeof kd_cfg.db, "sqlite:knytt.db");
	snprintf(kd_cfg.host, sizeof kd_cfg.host, "127.0.0.1");
	kd_cfg.port = 8080;
	kd_cfg.body_limit = 16u << 20;
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	kd_cfg.threads = cpus > 2 ? (unsigned)cpus * 2 : 4;
	kd_cfg.access_log = 1;
	kd_cfg.token_ttl_s = 86400;
	kd_cfg.pwhash_ops = crypto_pwhash_OPSLIMIT_INTERACTIVE;
	kd_cfg.pwhash_mem = crypto_pwhash_MEMLIMIT_INTERACTIVE;
	kd_cfg.feedback_async = 1;
	kd_cfg.drain_ms = 30000;
	kd_cfg.key_cache_ms = 1000;
	kd_cfg.sched.margin = 0.05;
	kd_cfg.sched_tick_ms = 5000;
	kd_cfg.replica_retry_ms = 1000;
	kd_cfg.item_cache_ms = 1000;
	kd_cfg.malloc_arenas = -1;
	kd_static_default(kd_cfg.www, sizeof kd_cfg.www);
}

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	int saved = errno;
	unsigned char b = (unsigned char)sig;
	if (write(sig_pipe[1], &b, 1) < 0) {
		/* the pipe is full: a stop is pending already */
	}
	errno = saved;
}

static int signals_init(void)
{
	if (pipe2(sig_pipe, O_CLOEXEC) ||
	    fcntl(sig_pipe[1], F_SETFL, O_NONBLOCK)) {
		perror("knyttd: pipe");
		return -1;
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

/* SIGTERM/SIGINT: the graceful stop.  Returns the exit status. */
static int shut_down(void)
{
	kd_log("{\"level\":\"info\",\"msg\":\"stopping: draining requests\"}");
	long left = kd_http_quiesce(kd_cfg.drain_ms);
	if (left)
		kd_log("{\"level\":\"warn\",\"msg\":\"%ld requests still ran "
		       "after the drain timeout\"}",
		       left);
	kd_sched_stop();
	kd_replica_stop();
	kd_jobs_stop();
	kd_http_stop();
	int rc = kd_tenants_flush();
	kd_tenants_close();
	kd_itemcache_free();
	kd_log("{\"level\":\"info\",\"msg\":\"stopped%s\"}",
	       rc ? " (a feedback write failed)" : "");
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	defaults();
	if (parse_args(argc, argv))
		return 2;
	if (kd_heap_init()) /* before any thread makes an arena */
		return 2;
	if (kd_log_open(kd_cfg.log_path))
		return 1;
	if (signals_init())
		return 1;
	knytt_store *st = kd_store(); /* migrates a new database */
	if (!st) {
		fprintf(stderr, "knyttd: cannot open %s: %s\n", kd_cfg.db,
			knytt_errmsg());
		return 1;
	}
	if (kd_auth_init(st))
		return 1;
	if (kd_itemcache_init()) {
		fprintf(stderr, "knyttd: out of memory for the item cache\n");
		return 1;
	}
	if (kd_replica_start() || kd_sched_start())
		return 1;
	unsigned port = 0;
	if (kd_http_start(&port))
		return 1;
	printf("knyttd: listening on http://%s:%u (%s)\n", kd_cfg.host, port,
	       kd_cfg.db);
	fflush(stdout);
	kd_log("{\"level\":\"info\",\"msg\":\"listening\",\"port\":%u}", port);
	for (;;) {
		unsigned char b;
		ssize_t got = read(sig_pipe[0], &b, 1);
		if (got <= 0)
			continue; /* EINTR */
		int sig = b;
		if (sig == SIGHUP) {
			kd_log_reopen();
			kd_log("{\"level\":\"info\",\"msg\":\"log reopened\"}");
		} else if (sig == SIGTERM || sig == SIGINT) {
			int rc = shut_down();
			kd_log_close();
			return rc;
		}
	}
}
