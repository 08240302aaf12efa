/*
 * util.c -- error reporting, option values, opening the store and the
 * engine, SIGINT, and the progress bar.
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/*
 * Every failure goes through cli_verror: one line on stderr and, with
 * --json, also {"error": {"code", "message", "field"}} on stdout, so a
 * script that reads stdout as JSON gets a document on failure too (the
 * shape knyttd answers with).  cli_json_errors is set by main before the
 * command line is parsed, so even a usage error in it is reported so.
 */
int cli_json_errors;

static int cli_verror(int status, const char *code, const char *field,
		      const char *hint, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof msg, fmt, ap);
	fprintf(stderr, "knytt: %s%s\n", msg, hint ? hint : "");
	if (cli_json_errors) {
		cJSON *j = cJSON_CreateObject();
		cJSON *e = cJSON_AddObjectToObject(j, "error");
		cJSON_AddStringToObject(e, "code", code);
		cJSON_AddStringToObject(e, "message", msg);
		if (field)
			cJSON_AddStringToObject(e, "field", field);
		else
			cJSON_AddNullToObject(e, "field");
		cJSON_AddNumberToObject(e, "exit_status", status);
		char *t = cJSON_Print(j);
		if (t)
			puts(t);
		cJSON_free(t);
		cJSON_Delete(j);
		fflush(stdout);
	}
	return status;
}

int cli_error(int status, const char *code, const char *field,
	      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = cli_verror(status, code, field, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

static int usage_v(const char *cmd, const char *field, const char *fmt,
		   va_list ap)
{
	char text[900], hint[96];
	vsnprintf(text, sizeof text, fmt, ap);
	snprintf(hint, sizeof hint, " (try 'knytt %s%s--help')",
		 cmd ? cmd : "", cmd ? " " : "");
	return cli_error_hint(EXIT_USAGE, "KNYTT_EINVAL", field, hint,
			      "%s%s%s", cmd ? cmd : "", cmd ? ": " : "", text);
}

int cli_error_hint(int status, const char *code, const char *field,
		   const char *hint, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = cli_verror(status, code, field, hint, fmt, ap);
	va_end(ap);
	return rc;
}

int cli_usage(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = usage_v(cmd, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

int cli_usage_field(const char *cmd, const char *field, const char *fmt,
		    ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = usage_v(cmd, field, fmt, ap);
	va_end(ap);
	return rc;
}

int cli_exit_for(int rc)
{
	if (rc == KNYTT_ENOTFOUND)
		return EXIT_NOTFOUND;
	if (rc == KNYTT_ECANCELED && cli_interrupted())
		return EXIT_INTR;
	return rc < 0 ? EXIT_ERR : EXIT_OK;
}

int cli_liberr(int rc, const char *what)
{
	const char *msg = knytt_errmsg();
	if (!msg || !*msg)
		msg = knytt_errstr(rc);
	const char *field = knytt_errfield();
	return cli_error(cli_exit_for(rc), knytt_errname(rc),
			 *field ? field : NULL, "%s%s%s: %s",
			 what ? what : "", what ? ": " : "",
			 knytt_errname(rc), msg);
}

void cli_info(const cli *c, const char *fmt, ...)
{
	if (c->quiet)
		return;
	va_list ap;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

const char *arg_get(const args *a, const char *name)
{
	const char *v = NULL;
	for (int i = 0; i < a->nopts; i++)
		if (!strcmp(a->names[i], name))
			v = a->vals[i]; /* the last one wins */
	return v;
}

int arg_has(const args *a, const char *name)
{
	return arg_get(a, name) != NULL;
}

int arg_uint(const args *a, const char *name, unsigned long lo,
	     unsigned long hi, unsigned long *out)
{
	const char *s = arg_get(a, name);
	if (!s)
		return 0;
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (!*s || *end || errno || s[0] == '-' || v < lo || v > hi)
		return cli_usage_field(a->cmd, name, "--%s needs an integer "
				       "in %lu..%lu, not '%s'", name, lo, hi,
				       s);
	*out = v;
	return 0;
}

int arg_double(const args *a, const char *name, double *out)
{
	const char *s = arg_get(a, name);
	if (!s)
		return 0;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (!*s || *end || errno || !isfinite(v))
		return cli_usage_field(a->cmd, name, "--%s needs a number, "
				       "not '%s'", name, s);
	*out = v;
	return 0;
}

const char *cli_db_shown(const cli *c)
{
	static char buf[1024];
	knytt_uri_redact(c->db, buf, sizeof buf);
	return buf;
}

int cli_store_must_exist(const cli *c)
{
	if (strncmp(c->db, "sqlite:", 7) != 0 ||
	    strcmp(c->db + 7, ":memory:") == 0)
		return 0;
	struct stat sb;
	if (stat(c->db + 7, &sb) == 0)
		return 0;
	return cli_error(EXIT_NOTFOUND, "KNYTT_ENOTFOUND", "db",
			 "no store at %s (%s): only 'knytt init' and 'knytt "
			 "import' create one; check --db or KNYTT_DB",
			 c->db + 7, strerror(errno));
}

int cli_store_open(const cli *c, int create, knytt_store **out)
{
	knytt_store *st = NULL;
	uint64_t tid = 0;
	int rc = create ? 0 : cli_store_must_exist(c);
	if (rc)
		return rc;
	rc = knytt_store_open(c->db, &st);
	if (rc < 0)
		return cli_liberr(rc, cli_db_shown(c));
	rc = knytt_store_tenant_find(st, c->tenant, &tid);
	if (rc == KNYTT_ENOTFOUND && create)
		rc = knytt_store_tenant_create(st, c->tenant, &tid);
	if (rc == KNYTT_ENOTFOUND) {
		knytt_store_close(st);
		return cli_error(EXIT_NOTFOUND, "KNYTT_ENOTFOUND", "tenant",
				 "no tenant '%s' in %s (run 'knytt init' or "
				 "import data first)", c->tenant,
				 cli_db_shown(c));
	}
	if (rc == 0)
		rc = knytt_store_use_tenant(st, tid);
	if (rc < 0) {
		int ex = cli_liberr(rc, "tenant");
		knytt_store_close(st);
		return ex;
	}
	*out = st;
	return 0;
}

static int engine_try(const cli *c, knytt_model_kind kind,
		      knytt_engine **out)
{
	knytt_engine *e = NULL;
	int rc = knytt_engine_create(&e);
	if (rc == 0)
		rc = knytt_engine_set_tenant(e, c->tenant);
	/* an explicit kind, even the default one: left unset, the engine
	 * would follow the stored model's kind instead */
	if (rc == 0 && (c->model_set || kind != KNYTT_MODEL_ALS))
		rc = knytt_engine_set_model(e, kind);
	if (rc == 0 && kind == KNYTT_MODEL_TWOTOWER && c->epochs)
		rc = knytt_engine_set_twotower(e, c->epochs);
	if (rc == 0 && kind == KNYTT_MODEL_ALS && c->als_set)
		rc = knytt_engine_set_als(e, (float)c->reg, (float)c->alpha,
					  c->epochs ? c->epochs :
					  KNYTT_ENGINE_DEFAULT_ALS_ITERATIONS);
	if (rc == 0 && c->no_tune)
		rc = knytt_engine_set_tune(e, 0);
	if (rc == 0 && c->tune_pool)
		rc = knytt_engine_set_tune_pool(e, 1);
	if (rc == 0 && c->sasrec)
		rc = knytt_engine_set_sasrec(e, c->sasrec);
	if (rc == 0 && c->dim)
		rc = knytt_engine_set_dim(e, c->dim);
	if (rc == 0 && c->threads)
		rc = knytt_engine_set_threads(e, c->threads);
	if (rc == 0 && c->now_ms)
		rc = knytt_engine_set_now(e, c->now_ms);
	if (rc == 0)
		rc = knytt_engine_set_log(e, cli_engine_warning, (void *)c);
	if (rc == 0)
		rc = knytt_engine_open(e, c->db);
	if (rc < 0) {
		knytt_engine_close(e);
		return rc;
	}
	*out = e;
	return 0;
}

/*
 * The engine opens only with the kind and dimension of the model the store
 * holds, and a query command cannot know what the last `knytt train` used.
 * The engine records both in the JSON metadata of the model it stores
 * ("engine-model": {"kind": "als"|"twotower", "dim": N, ...}), so read
 * them from there.
 */
int cli_stored_model(const cli *c, const char **kind, unsigned *dim)
{
	knytt_store *st = NULL;
	uint64_t tid;
	char *meta = NULL;
	struct stat sb;
	*kind = NULL;
	*dim = 0;
	/* a missing SQLite file holds no model (and must not be created) */
	if (!strncmp(c->db, "sqlite:", 7) && strcmp(c->db + 7, ":memory:") &&
	    stat(c->db + 7, &sb) != 0)
		return 0;
	if (knytt_store_open(c->db, &st) != 0 ||
	    knytt_store_tenant_find(st, c->tenant, &tid) != 0 ||
	    knytt_store_use_tenant(st, tid) != 0 ||
	    knytt_store_model_get(st, "engine-model", 0, NULL, NULL, &meta,
				  NULL, NULL) != 0 ||
	    !meta) {
		knytt_store_close(st);
		return 0;
	}
	cJSON *j = cJSON_Parse(meta);
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "kind");
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(j, "dim");
	if (cJSON_IsString(k))
		*kind = !strcmp(k->valuestring, "twotower") ? "twotower"
			: !strcmp(k->valuestring, "lightgcn") ? "lightgcn"
							      : "als";
	if (cJSON_IsNumber(d) && d->valuedouble >= 1 &&
	    d->valuedouble <= 4096)
		*dim = (unsigned)d->valuedouble;
	cJSON_Delete(j);
	knytt_free(meta);
	knytt_store_close(st);
	return *kind != NULL;
}

int cli_engine_open(cli *c, knytt_engine **out)
{
	int ex = cli_store_must_exist(c);
	if (ex)
		return ex;
	/* settings the command line leaves open follow the stored model */
	if (!c->model_set || !c->dim) {
		const char *kind;
		unsigned dim;
		if (cli_stored_model(c, &kind, &dim)) {
			if (!c->model_set)
				c->model = kind;
			if (!c->dim)
				c->dim = dim;
		}
	}
	knytt_model_kind kind = !strcmp(c->model, "twotower")
					? KNYTT_MODEL_TWOTOWER
				: !strcmp(c->model, "lightgcn")
					? KNYTT_MODEL_LIGHTGCN
					: KNYTT_MODEL_ALS;
	int rc = engine_try(c, kind, out);
	if (rc < 0)
		return cli_liberr(rc, cli_db_shown(c));
	return 0;
}

double cli_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static volatile sig_atomic_t got_sigint;

static void on_sigint(int sig)
{
	(void)sig;
	if (got_sigint) /* a second ^C: leave at once */
		_exit(EXIT_INTR);
	got_sigint = 1;
}

void cli_catch_sigint(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigint;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
}

int cli_interrupted(void)
{
	return got_sigint != 0;
}

/* ---- progress bar ------------------------------------------------------ */

void bar_start(bar *b, const cli *c)
{
	memset(b, 0, sizeof *b);
	b->on = c->progress;
	b->start = cli_now();
}

static void fmt_secs(char *buf, size_t n, double s)
{
	if (s < 0 || !isfinite(s))
		snprintf(buf, n, "--");
	else if (s < 60)
		snprintf(buf, n, "%.0fs", ceil(s));
	else if (s < 3600)
		snprintf(buf, n, "%dm%02ds", (int)s / 60, (int)s % 60);
	else
		snprintf(buf, n, "%dh%02dm", (int)s / 3600,
			 ((int)s % 3600) / 60);
}

void bar_draw(bar *b, double frac, double eta, const char *fmt, ...)
{
	if (!b->on)
		return;
	double t = cli_now();
	/* at most ~10 redraws a second, except the final 100% */
	if (b->drawn && t - b->last_draw < 0.1 && frac < 1)
		return;
	b->last_draw = t;
	char text[128], e[16], line[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	const int w = 24;
	char cells[32];
	if (frac >= 0) {
		if (frac > 1)
			frac = 1;
		int full = (int)(frac * w + 0.5);
		for (int i = 0; i < w; i++)
			cells[i] = i < full ? '#' : '.';
	} else {
		/* unknown total: a block bouncing along the bar */
		int pos = (int)((t - b->start) * 8) % (2 * w - 8);
		if (pos > w - 4)
			pos = 2 * w - 8 - pos;
		for (int i = 0; i < w; i++)
			cells[i] = i >= pos && i < pos + 4 ? '#' : '.';
	}
	cells[w] = 0;
	if (eta < 0 && frac > 0.02 && frac < 1)
		eta = (t - b->start) * (1 - frac) / frac;
	fmt_secs(e, sizeof e, eta);
	if (frac >= 0)
		snprintf(line, sizeof line, "[%s] %3.0f%%  %s  ETA %s", cells,
			 frac * 100, text, e);
	else
		snprintf(line, sizeof line, "[%s]  %s", cells, text);
	fprintf(stderr, "\r\033[K%s", line);
	fflush(stderr);
	b->drawn = 1;
}

void bar_clear(bar *b)
{
	if (b->on && b->drawn) {
		fputs("\r\033[K", stderr);
		b->drawn = 0;
	}
}

void bar_done(bar *b)
{
	bar_clear(b);
	b->on = 0;
}

/* ---- --now and durations ---- */

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; Howard Hinnant's
 * days_from_civil), so no time zone is involved. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* Exactly @p n digits at @p s into *out: 1, or 0.  sscanf's %2d also
 * took signs and spaces ("2024-05-01T-1:00" passed as 1 a.m. the day
 * before: fuzz_cli_args). */
static int digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 1;
}

/* "HH:MM" at @p s: 1 with the minutes in *out, or 0. */
static int hh_mm(const char *s, int hmax, int *out)
{
	int h, m;
	if (!digits(s, 2, &h) || s[2] != ':' || !digits(s + 3, 2, &m) ||
	    h > hmax || m > 59)
		return 0;
	*out = h * 60 + m;
	return 1;
}

/* [:SS[.fff]] at *@p p (advanced past it) into *@p ms; 0 or -1. */
static int seconds(const char **p, int64_t *ms)
{
	int sec, frac = 0, n = 0, up = 0;
	const char *s = *p;
	if (*s != ':')
		return 0;
	if (!digits(s + 1, 2, &sec) || sec > 60)
		return -1;
	s += 3;
	if (*s == '.') {
		if (s[1] < '0' || s[1] > '9')
			return -1;
		/* milliseconds, rounded half up on the fourth digit */
		for (s++; *s >= '0' && *s <= '9'; s++, n++) {
			if (n < 3)
				frac = frac * 10 + (*s - '0');
			else if (n == 3)
				up = *s >= '5';
		}
		for (; n < 3; n++)
			frac *= 10;
	}
	*ms = sec * 1000LL + frac + up;
	*p = s;
	return 0;
}

int cli_parse_time(const char *s, int64_t *out_ms)
{
	char *end;
	if (!*s)
		return -1;
	if (strspn(s, "0123456789") == strlen(s)) {
		errno = 0;
		unsigned long long v = strtoull(s, &end, 10);
		if (errno || v > 9000000000000000ULL)
			return -1;
		/* below 1e11: seconds (until the year 5138); above: ms */
		*out_ms = v < 100000000000ULL ? (int64_t)v * 1000 : (int64_t)v;
		return 0;
	}
	int y, mo, d, hm = 0;
	int64_t ms = 0;
	if (!digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
	    s[7] != '-' || !digits(s + 8, 2, &d) || mo < 1 || mo > 12 ||
	    d < 1 || d > 31)
		return -1;
	const char *p = s + 10;
	if (*p == 'T' || *p == ' ') {
		if (!hh_mm(p + 1, 23, &hm))
			return -1;
		p += 6;
		if (seconds(&p, &ms))
			return -1;
	}
	int64_t off = 0; /* UTC unless an offset is given */
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int om;
		if (!hh_mm(p + 1, 99, &om))
			return -1;
		off = (*p == '-' ? -60 : 60) * (int64_t)om;
		p += 6;
	}
	if (*p)
		return -1;
	int64_t t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 +
		    hm * 60LL - off;
	if (t < 0)
		return -1;
	*out_ms = t * 1000 + ms;
	return 0;
}

int cli_parse_duration(const char *s, double *out_s)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (end == s || errno || !isfinite(v) || v <= 0)
		return -1;
	double unit = 1;
	if (*end) {
		static const struct {
			const char *name;
			double s;
		} units[] = { {"s", 1},      {"m", 60},      {"min", 60},
			      {"h", 3600},   {"d", 86400},   {"w", 604800} };
		unit = 0;
		for (size_t i = 0; i < sizeof units / sizeof *units; i++)
			if (!strcmp(end, units[i].name))
				unit = units[i].s;
		if (unit == 0)
			return -1;
	}
	*out_s = v * unit;
	return 0;
}

void cli_engine_warning(void *ctx, const char *msg)
{
	const cli *c = ctx;
	if (!c->quiet)
		fprintf(stderr, "knytt: warning: %s\n", msg);
}
