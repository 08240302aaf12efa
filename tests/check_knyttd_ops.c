/*
 * check_knyttd_ops.c -- knyttd for operators (issue 16): GET /metrics,
 * checked by a strict reader of the Prometheus text format written here
 * and by Debian's promtool when it is installed (package prometheus,
 * make deps).
 */
#include "testutil.h"

#include "kdtest.h"

#include <ctype.h>
#include <curl/curl.h>
#include <math.h>
#include <pthread.h>
#include <strings.h>
#include <unistd.h>

/* ---- a strict reader of the text format (0.0.4) ----------------------- */

#define PC_FAMS 128
#define PC_GROUPS 1024

typedef struct pc_group {
	int fam;
	char key[256]; /* the labels without le */
	double last_le, last_count, inf, count;
	int nbucket, has_inf, has_count, has_sum;
} pc_group;

typedef struct pc {
	struct {
		char name[128], type[16];
		int help, done;
	} fam[PC_FAMS];
	int nfam, cur;
	pc_group g[PC_GROUPS];
	int ng;
	char *err;
	size_t cap;
	int line;
} pc;

static int pc_fail(pc *p, const char *msg, const char *what)
{
	snprintf(p->err, p->cap, "line %d: %s: %.80s", p->line, msg, what);
	return -1;
}

static size_t name_len(const char *s, int colon)
{
	size_t n = 0;
	if (!(isalpha((unsigned char)s[0]) || s[0] == '_' ||
	      (colon && s[0] == ':')))
		return 0;
	while (isalnum((unsigned char)s[n]) || s[n] == '_' ||
	       (colon && s[n] == ':'))
		n++;
	return n;
}

static int fam_find(pc *p, const char *name, size_t len)
{
	for (int i = 0; i < p->nfam; i++)
		if (strlen(p->fam[i].name) == len &&
		    !memcmp(p->fam[i].name, name, len))
			return i;
	return -1;
}

static int parse_value(const char *s, double *v, const char **end)
{
	char *e;
	if (!strncmp(s, "+Inf", 4) || !strncmp(s, "-Inf", 4)) {
		*v = s[0] == '+' ? INFINITY : -INFINITY;
		*end = s + 4;
		return 0;
	}
	if (!strncmp(s, "NaN", 3)) {
		*v = NAN;
		*end = s + 3;
		return 0;
	}
	*v = strtod(s, &e);
	*end = e;
	return e == s || isspace((unsigned char)*s) ? -1 : 0;
}

/* "# HELP name text" or "# TYPE name type". */
static int pc_meta(pc *p, const char *l)
{
	int help = !strncmp(l, "# HELP ", 7);
	if (!help && strncmp(l, "# TYPE ", 7))
		return 0; /* a plain comment */
	const char *n = l + 7;
	size_t len = name_len(n, 1);
	if (!len || (n[len] != ' ' && n[len] != 0))
		return pc_fail(p, "bad metric name", n);
	int f = fam_find(p, n, len);
	if (f < 0) {
		if (p->nfam == PC_FAMS)
			return pc_fail(p, "too many families", n);
		f = p->nfam++;
		memcpy(p->fam[f].name, n, len < 127 ? len : 127);
	}
	if (p->fam[f].done || p->cur == f)
		return pc_fail(p, "HELP/TYPE after the family's samples", n);
	if (help) {
		if (p->fam[f].help++)
			return pc_fail(p, "second HELP", n);
		return 0;
	}
	if (p->fam[f].type[0])
		return pc_fail(p, "second TYPE", n);
	const char *t = n[len] ? n + len + 1 : "";
	if (strcmp(t, "counter") && strcmp(t, "gauge") &&
	    strcmp(t, "histogram") && strcmp(t, "summary") &&
	    strcmp(t, "untyped"))
		return pc_fail(p, "unknown type", t);
	snprintf(p->fam[f].type, sizeof p->fam[f].type, "%s", t);
	if (!strcmp(t, "counter") &&
	    (len < 6 || memcmp(n + len - 6, "_total", 6)))
		return pc_fail(p, "a counter's name must end in _total", n);
	return 0;
}

/* The labels at *s ("{...}"): syntax, escapes, no duplicate names.  The
 * labels other than le go to @p key; le's value to *le. */
static int pc_labels(pc *p, const char **s, char *key, size_t cap,
		     double *le, int *has_le)
{
	char names[16][64];
	int nn = 0;
	size_t k = 0;
	const char *q = *s + 1;
	key[0] = 0;
	*has_le = 0;
	while (*q != '}') {
		size_t len = name_len(q, 0);
		if (!len || len > 63 || q[len] != '=' || q[len + 1] != '"')
			return pc_fail(p, "bad label", q);
		if (len >= 2 && q[0] == '_' && q[1] == '_')
			return pc_fail(p, "reserved label name", q);
		for (int i = 0; i < nn; i++)
			if (strlen(names[i]) == len && !memcmp(names[i], q, len))
				return pc_fail(p, "duplicate label", q);
		if (nn == 16)
			return pc_fail(p, "too many labels", q);
		memcpy(names[nn], q, len);
		names[nn++][len] = 0;
		int is_le = len == 2 && !memcmp(q, "le", 2);
		const char *v = q + len + 2;
		char val[256];
		size_t vn = 0;
		for (; *v != '"'; v++) {
			if (!*v || *v == '\n')
				return pc_fail(p, "unterminated label value", q);
			if (*v == '\\') {
				v++;
				if (*v != '\\' && *v != '"' && *v != 'n')
					return pc_fail(p, "bad escape", q);
			}
			if (vn < sizeof val - 1)
				val[vn++] = *v;
		}
		val[vn] = 0;
		if (is_le) {
			const char *e;
			if (parse_value(val, le, &e) || *e)
				return pc_fail(p, "le is not a number", val);
			*has_le = 1;
		} else {
			k += (size_t)snprintf(key + k, cap - k, "%.*s=%s,",
					      (int)len, q, val);
			if (k >= cap)
				return pc_fail(p, "labels too long", q);
		}
		q = v + 1;
		if (*q == ',')
			q++;
		else if (*q != '}')
			return pc_fail(p, "expected , or }", q);
	}
	*s = q + 1;
	return 0;
}

static pc_group *pc_group_of(pc *p, int fam, const char *key)
{
	for (int i = 0; i < p->ng; i++)
		if (p->g[i].fam == fam && !strcmp(p->g[i].key, key))
			return &p->g[i];
	if (p->ng == PC_GROUPS)
		return NULL;
	pc_group *g = &p->g[p->ng++];
	memset(g, 0, sizeof *g);
	g->fam = fam;
	snprintf(g->key, sizeof g->key, "%s", key);
	g->last_le = -INFINITY;
	return g;
}

/* The family a sample belongs to and its suffix (0 none, 1 _bucket,
 * 2 _sum, 3 _count). */
static int pc_family(pc *p, const char *n, size_t len, int *suffix)
{
	static const char *const sfx[] = {"", "_bucket", "_sum", "_count"};
	for (int s = 0; s < 4; s++) {
		size_t sl = strlen(sfx[s]);
		if (len <= sl || memcmp(n + len - sl, sfx[s], sl))
			continue;
		int f = fam_find(p, n, len - sl);
		if (f < 0)
			continue;
		int hist = !strcmp(p->fam[f].type, "histogram");
		if ((s == 0) == hist)
			continue;
		*suffix = s;
		return f;
	}
	return -1;
}

static int pc_sample(pc *p, const char *l)
{
	size_t len = name_len(l, 1);
	if (!len)
		return pc_fail(p, "bad metric name", l);
	int sfx, f = pc_family(p, l, len, &sfx);
	if (f < 0 || !p->fam[f].type[0] || !p->fam[f].help)
		return pc_fail(p, "sample without HELP and TYPE", l);
	if (p->fam[f].done)
		return pc_fail(p, "family's samples are not together", l);
	if (p->cur >= 0 && p->cur != f)
		p->fam[p->cur].done = 1;
	p->cur = f;
	const char *s = l + len;
	char key[256] = "";
	double le = 0, v;
	int has_le = 0;
	if (*s == '{' && pc_labels(p, &s, key, sizeof key, &le, &has_le))
		return -1;
	if (*s != ' ')
		return pc_fail(p, "expected a space before the value", l);
	const char *e;
	if (parse_value(s + 1, &v, &e) || (*e && *e != ' '))
		return pc_fail(p, "bad value", s + 1);
	if (!strcmp(p->fam[f].type, "counter") && !(v >= 0))
		return pc_fail(p, "negative counter", l);
	if (strcmp(p->fam[f].type, "histogram"))
		return has_le ? pc_fail(p, "le outside a histogram", l) : 0;
	pc_group *g = pc_group_of(p, f, key);
	if (!g)
		return pc_fail(p, "too many series", l);
	if (sfx == 1) {
		if (!has_le)
			return pc_fail(p, "bucket without le", l);
		if (g->has_inf || !(le > g->last_le))
			return pc_fail(p, "le not increasing", l);
		if (g->nbucket && v < g->last_count)
			return pc_fail(p, "bucket counts decrease", l);
		g->last_le = le;
		g->last_count = v;
		g->nbucket++;
		if (isinf(le)) {
			g->has_inf = 1;
			g->inf = v;
		}
	} else if (has_le) {
		return pc_fail(p, "le on _sum or _count", l);
	} else if (sfx == 2) {
		g->has_sum = 1;
	} else {
		g->has_count = 1;
		g->count = v;
	}
	return 0;
}

static int prom_check(const char *text, char *err, size_t cap)
{
	pc *p = calloc(1, sizeof *p);
	ck_assert_ptr_nonnull(p);
	p->err = err;
	p->cap = cap;
	p->cur = -1;
	int rc = 0;
	const char *l = text;
	if (!*text || text[strlen(text) - 1] != '\n')
		rc = pc_fail(p, "the text must end with a newline", "");
	while (!rc && *l) {
		const char *nl = strchr(l, '\n');
		size_t n = nl ? (size_t)(nl - l) : strlen(l);
		char line[1024];
		p->line++;
		if (n >= sizeof line) {
			rc = pc_fail(p, "line too long", l);
			break;
		}
		memcpy(line, l, n);
		line[n] = 0;
		if (line[0] == '#')
			rc = pc_meta(p, line);
		else if (line[0])
			rc = pc_sample(p, line);
		l += n + (nl != NULL);
	}
	for (int i = 0; !rc && i < p->ng; i++) {
		pc_group *g = &p->g[i];
		if (!g->has_inf || !g->has_count || !g->has_sum)
			rc = pc_fail(p, "histogram lacks +Inf, _sum or _count",
				     g->key);
		else if (g->inf != g->count)
			rc = pc_fail(p, "+Inf bucket differs from _count",
				     g->key);
	}
	free(p);
	return rc;
}

/* The value of the sample written exactly @p series, or -1. */
static double prom_value(const char *text, const char *series)
{
	size_t n = strlen(series);
	for (const char *l = text; l && *l; l = strchr(l, '\n'), l += !!l)
		if (!strncmp(l, series, n) && l[n] == ' ')
			return strtod(l + n + 1, NULL);
	return -1;
}

START_TEST(metrics_checker_rejects_bad_text)
{
	static const char *const bad[] = {
		"x 1\n", /* no HELP/TYPE */
		"# HELP a_total a\n# TYPE a_total counter\na_total -1\n",
		"# HELP a a\n# TYPE a counter\na 1\n", /* no _total */
		"# HELP 1a a\n",
		"# HELP a a\n# TYPE a gauge\na{l=\"x} 1\n",
		"# HELP a a\n# TYPE a gauge\na{l=\"x\",l=\"y\"} 1\n",
		"# HELP a a\n# TYPE a gauge\na{l=\"\\q\"} 1\n",
		"# HELP a a\n# TYPE a gauge\na 1x\n",
		"# HELP a a\n# TYPE a gauge\n# HELP b b\n# TYPE b gauge\n"
		"a 1\nb 1\na 2\n",
		"# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 2\n"
		"h_bucket{le=\"0.5\"} 2\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\n"
		"h_count 2\n",
		"# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 3\n"
		"h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
		"# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
		"h_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
		"# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\n"
		"h_sum 1\nh_count 1\n",
		"# HELP a a\n# TYPE a gauge\na 1", /* no final newline */
	};
	char err[256];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		ck_assert_msg(prom_check(bad[i], err, sizeof err) != 0,
			      "accepted bad text %zu", i);
	const char *good =
		"# HELP h h\n# TYPE h histogram\nh_bucket{a=\"x\\\"\",le=\"1\"}"
		" 1\nh_bucket{a=\"x\\\"\",le=\"+Inf\"} 2\nh_sum{a=\"x\\\"\"} 1\n"
		"h_count{a=\"x\\\"\"} 2\n# HELP c_total c\n# TYPE c_total "
		"counter\nc_total 3\n";
	ck_assert_msg(prom_check(good, err, sizeof err) == 0, "%s", err);
	ck_assert(prom_value(good, "c_total") == 3);
}
END_TEST

/* ---- the server ------------------------------------------------------- */

static kd_srv S;
static char SK[80], PK[80];

typedef struct text {
	char *p;
	size_t n;
} text;

static size_t on_data(char *d, size_t sz, size_t nm, void *ctx)
{
	text *t = ctx;
	char *p = realloc(t->p, t->n + sz * nm + 1);
	if (!p)
		return 0;
	memcpy(p + t->n, d, sz * nm);
	t->p = p;
	t->n += sz * nm;
	p[t->n] = 0;
	return sz * nm;
}

/* GET @p path of server @p srv as text; the status, the body in *out
 * (free it) and the Content-Type in @p ctype. */
static long get_text_at(const kd_srv *srv, const char *path, const char *key,
			char **out, char *ctype, size_t cap)
{
	CURL *c = curl_easy_init();
	char url[256], auth[200];
	struct curl_slist *h = NULL;
	text t = {calloc(1, 1), 0};
	snprintf(url, sizeof url, "%s%s", srv->base, path);
	if (key) {
		snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
		h = curl_slist_append(h, auth);
	}
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	long st = 0;
	char *ct = NULL;
	if (curl_easy_perform(c) == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
		curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
	}
	snprintf(ctype, cap, "%s", ct ? ct : "");
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	*out = t.p;
	return st;
}

/* get_text_at of the suite's server S */
static long get_text(const char *path, const char *key, char **out,
		     char *ctype, size_t cap)
{
	return get_text_at(&S, path, key, out, ctype, cap);
}

static void ops_setup(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
	memset(&S, 0, sizeof S);
	ck_assert_int_eq(kd_start(&S, NULL), 0);
	ck_assert_int_eq(kd_tenant(&S, "ops-shop", SK, PK), 0);
	char body[4096];
	int n = snprintf(body, sizeof body, "{\"items\":[");
	for (int i = 0; i < 8; i++)
		n += snprintf(body + n, sizeof body - (size_t)n,
			      "%s{\"item_id\":\"sku-%d\",\"title\":\"thing "
			      "%d\"}",
			      i ? "," : "", i, i);
	snprintf(body + n, sizeof body - (size_t)n, "]}");
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/items", SK, NULL, body,
				 NULL),
			 200);
	n = snprintf(body, sizeof body, "{\"interactions\":[");
	for (int u = 0; u < 6; u++)
		for (int j = 0; j < 4; j++)
			n += snprintf(body + n, sizeof body - (size_t)n,
				      "%s{\"user_id\":\"u%d\",\"item_id\":"
				      "\"sku-%d\",\"interaction_type\":"
				      "\"view\"}",
				      u || j ? "," : "", u, (u + j * 3) % 8);
	snprintf(body + n, sizeof body - (size_t)n, "]}");
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/interactions", SK, NULL,
				 body, NULL),
			 200);
}

static void ops_teardown(void)
{
	ck_assert_int_eq(kd_stop(&S), 0);
	kd_cleanup(&S);
	curl_global_cleanup();
}

/* Counts per route pattern and status, tenant gauges, a job's. */
START_TEST(metrics_counts_routes_tenants_and_jobs)
{
	char ct[128], *m = NULL, err[256], series[256];
	/* admin only */
	ck_assert_int_eq(get_text("/metrics", NULL, &m, ct, sizeof ct), 401);
	free(m);
	ck_assert_int_eq(get_text("/metrics", SK, &m, ct, sizeof ct), 403);
	free(m);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/sku-3", PK,
					 NULL, NULL, NULL),
				 200);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/no-such-7", PK,
				 NULL, NULL, NULL),
			 404);
	ck_assert_int_eq(kd_call(&S, "GET", "/secret-path-9", NULL, NULL,
				 NULL, NULL),
			 404);
	/* a training job, waited for */
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/models/train", SK,
				 NULL, NULL, &o),
			 202);
	char job[128], path[200];
	snprintf(job, sizeof job, "%s",
		 cJSON_GetObjectItem(o, "job_id")->valuestring);
	cJSON_Delete(o);
	snprintf(path, sizeof path, "/api/v1/models/jobs/%s", job);
	int done = 0;
	for (int i = 0; i < 300 && !done; i++) {
		ck_assert_int_eq(kd_call(&S, "GET", path, SK, NULL, NULL, &o),
				 200);
		done = !strcmp(cJSON_GetObjectItem(o, "state")->valuestring,
			       "done");
		cJSON_Delete(o);
		if (!done)
			usleep(100000);
	}
	ck_assert_msg(done, "training did not finish");
	/* the job's id is job-<tenant>-<n> */
	unsigned long long tenant = strtoull(job + 4, NULL, 10);
	ck_assert_int_eq(get_text("/metrics", KD_ADMIN, &m, ct, sizeof ct),
			 200);
	ck_assert_msg(!strncmp(ct, "text/plain; version=0.0.4", 25), "%s", ct);
	ck_assert_msg(prom_check(m, err, sizeof err) == 0, "%s", err);
	/* per route pattern, never the raw path */
	ck_assert(prom_value(m, "knytt_http_requests_total{route=\"/api/v1/"
				"items/{}\",method=\"GET\",status=\"200\"}") ==
		  3);
	ck_assert(prom_value(m, "knytt_http_request_duration_seconds_count{"
				"route=\"/api/v1/items/{}\",method=\"GET\","
				"status=\"404\"}") == 1);
	ck_assert(prom_value(m, "knytt_http_requests_total{route=\"none\","
				"method=\"none\",status=\"404\"}") == 1);
	ck_assert_ptr_null(strstr(m, "sku-3"));
	ck_assert_ptr_null(strstr(m, "no-such-7"));
	ck_assert_ptr_null(strstr(m, "secret-path-9"));
	ck_assert(prom_value(m, "knytt_http_requests_in_flight") >= 1);
	ck_assert(prom_value(m, "knytt_http_rate_limited_total") == 0);
	ck_assert(prom_value(m, "knytt_store_errors_total{code=\"EDB\"}") ==
		  0);
	snprintf(series, sizeof series, "knytt_tenant_items{tenant=\"%llu\"}",
		 tenant);
	ck_assert(prom_value(m, series) == 8);
	snprintf(series, sizeof series, "knytt_tenant_users{tenant=\"%llu\"}",
		 tenant);
	ck_assert(prom_value(m, series) == 6);
	snprintf(series, sizeof series,
		 "knytt_tenant_interactions{tenant=\"%llu\"}", tenant);
	ck_assert(prom_value(m, series) == 24);
	snprintf(series, sizeof series,
		 "knytt_model_version{tenant=\"%llu\"}", tenant);
	ck_assert(prom_value(m, series) >= 1);
	snprintf(series, sizeof series,
		 "knytt_model_age_seconds{tenant=\"%llu\"}", tenant);
	/* present only once a model is stored (knytt_engine_store): a
	 * trained model that was not stored has no age in the store */
	double age = prom_value(m, series);
	ck_assert(age == -1 || (age >= 0 && age < 60));
	snprintf(series, sizeof series,
		 "knytt_training_jobs{tenant=\"%llu\",state=\"done\"}", tenant);
	ck_assert(prom_value(m, series) == 1);
	snprintf(series, sizeof series,
		 "knytt_training_last_duration_seconds{tenant=\"%llu\"}",
		 tenant);
	ck_assert(prom_value(m, series) >= 0);
	free(m);
}
END_TEST

/* Debian's promtool (package prometheus) reads the same text. */
START_TEST(metrics_pass_promtool)
{
	if (system("command -v promtool >/dev/null 2>&1") != 0) {
		fprintf(stderr, "metrics_pass_promtool: SKIPPED: promtool not "
				"installed (apt-get install prometheus, or make "
				"deps)\n");
		return;
	}
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/items/sku-1", PK, NULL,
				 NULL, NULL),
			 200);
	char ct[128], *m = NULL, file[] = "/tmp/knyttd-metrics-XXXXXX";
	ck_assert_int_eq(get_text("/metrics", KD_ADMIN, &m, ct, sizeof ct),
			 200);
	int fd = mkstemp(file);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, m, strlen(m)), (ssize_t)strlen(m));
	close(fd);
	free(m);
	char cmd[200];
	/* promtool prints lint problems and exits non-zero on them */
	snprintf(cmd, sizeof cmd, "promtool check metrics < %s", file);
	int rc = system(cmd);
	unlink(file);
	ck_assert_int_eq(rc, 0);
}
END_TEST

/* ---- request logs ------------------------------------------------------ */

/* One request with extra header lines; the status, and the answer's
 * header @p want ("X-Request-Id") in @p got (80 bytes). */
typedef struct hdr {
	const char *want;
	char *got;
} hdr;

static size_t on_header(char *d, size_t sz, size_t nm, void *ctx)
{
	hdr *h = ctx;
	size_t n = sz * nm, w = strlen(h->want);
	if (n > w + 2 && !strncasecmp(d, h->want, w) && d[w] == ':' &&
	    d[w + 1] == ' ') {
		size_t k = n - w - 2;
		while (k && (d[w + 2 + k - 1] == '\r' ||
			     d[w + 2 + k - 1] == '\n'))
			k--;
		snprintf(h->got, 80, "%.*s", (int)k, d + w + 2);
	}
	return n;
}

static size_t on_discard(char *d, size_t sz, size_t nm, void *ctx)
{
	(void)d;
	(void)ctx;
	return sz * nm;
}

static long call_hdr(const kd_srv *s, const char *method, const char *path,
		     const char *const *hdrs, const char *want, char *rid)
{
	hdr hd = {want, rid};
	CURL *c = curl_easy_init();
	char url[300];
	struct curl_slist *h = NULL;
	snprintf(url, sizeof url, "%s%s", s->base, path);
	for (int i = 0; hdrs && hdrs[i]; i++)
		h = curl_slist_append(h, hdrs[i]);
	rid[0] = 0;
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &hd);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_discard);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	long st = 0;
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return st;
}

static long call_h(const kd_srv *s, const char *method, const char *path,
		   const char *const *hdrs, char *rid)
{
	return call_hdr(s, method, path, hdrs, "X-Request-Id", rid);
}

/* The log line of request @p rid, parsed (NULL when absent). */
static cJSON *log_line_of(const char *log, const char *rid)
{
	char needle[128];
	snprintf(needle, sizeof needle, "\"request_id\":\"%s\"", rid);
	const char *p = strstr(log, needle);
	if (!p)
		return NULL;
	while (p > log && p[-1] != '\n')
		p--;
	const char *e = strchr(p, '\n');
	char *line = strndup(p, e ? (size_t)(e - p) : strlen(p));
	cJSON *o = cJSON_Parse(line);
	free(line);
	return o;
}

START_TEST(request_log_has_ids_and_no_secrets)
{
	kd_srv s;
	memset(&s, 0, sizeof s);
	char dir[] = "/tmp/knyttd-reqlog-XXXXXX", log[128];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(log, sizeof log, "%s/k.log", dir);
	const char *extra[] = {"--log", log, "--access-log", NULL};
	curl_global_init(CURL_GLOBAL_ALL);
	ck_assert_int_eq(kd_start(&s, extra), 0);
	char sk[80], pk[80], pk2[80], tok[1024], rid[80];
	ck_assert_int_eq(kd_tenant(&s, "logshop", sk, pk), 0);
	static const char pw[] = "Pa55-unique-hunter-42";
	static const char badpw[] = "Wr0ng-unique-guess-17";
	char body[400];
	cJSON *o = NULL;
	snprintf(body, sizeof body,
		 "{\"user_id\":\"carol\",\"password\":\"%s\"}", pw);
	ck_assert_int_eq(kd_call(&s, "POST", "/api/v1/auth/register", pk,
				 NULL, body, &o),
			 201);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&s, "POST", "/api/v1/auth/login", pk, NULL,
				 body, &o),
			 200);
	snprintf(tok, sizeof tok, "%s",
		 cJSON_GetObjectItem(o, "token")->valuestring);
	cJSON_Delete(o);
	snprintf(body, sizeof body,
		 "{\"user_id\":\"carol\",\"password\":\"%s\"}", badpw);
	ck_assert_int_eq(kd_call(&s, "POST", "/api/v1/auth/login", pk, NULL,
				 body, NULL),
			 401);
	ck_assert_int_eq(kd_call(&s, "GET", "/api/v1/users/carol", pk, tok,
				 NULL, NULL),
			 200);
	/* a key in the path: revoked through DELETE .../keys/{key} */
	ck_assert_int_eq(kd_call(&s, "POST",
				 "/api/v1/admin/tenants/logshop/keys", KD_ADMIN,
				 NULL, "{\"kind\":\"public\"}", &o),
			 201);
	snprintf(pk2, sizeof pk2, "%s",
		 cJSON_GetObjectItem(o, "key")->valuestring);
	cJSON_Delete(o);
	char path[200];
	snprintf(path, sizeof path, "/api/v1/admin/tenants/logshop/keys/%s",
		 pk2);
	long st = kd_call(&s, "DELETE", path, KD_ADMIN, NULL, NULL, NULL);
	ck_assert_msg(st == 200 || st == 204, "revoke: %ld", st);
	/* request ids: echoed when sane, made otherwise */
	const char *h1[] = {"X-Request-Id: req-abc.123",
			    "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-"
			    "00f067aa0ba902b7-01",
			    NULL};
	ck_assert_int_eq(call_h(&s, "GET", "/health", h1, rid), 200);
	ck_assert_str_eq(rid, "req-abc.123");
	const char *h2[] = {"X-Request-Id: bad\"id{}",
			    "traceparent: 00-00000000000000000000000000000000-"
			    "00f067aa0ba902b7-01",
			    NULL};
	ck_assert_int_eq(call_h(&s, "GET", "/health", h2, rid), 200);
	ck_assert_int_eq(strlen(rid), 24);
	char made[80];
	snprintf(made, sizeof made, "%s", rid);
	ck_assert_int_eq(call_h(&s, "GET", "/health", NULL, rid), 200);
	ck_assert_int_eq(strlen(rid), 24);
	ck_assert_str_ne(rid, made);
	ck_assert_int_eq(kd_stop(&s), 0);

	FILE *f = fopen(log, "r");
	ck_assert_ptr_nonnull(f);
	char *all = calloc(1, 1 << 20);
	size_t n = fread(all, 1, (1 << 20) - 1, f);
	fclose(f);
	all[n] = 0;
	const char *secrets[] = {KD_ADMIN, sk, pk, pk2, tok, pw, badpw};
	for (size_t i = 0; i < sizeof secrets / sizeof secrets[0]; i++)
		ck_assert_msg(!strstr(all, secrets[i]),
			      "secret %zu found in the log", i);
	/* the token's signature alone is not there either */
	ck_assert_ptr_null(strstr(all, strrchr(tok, '.') + 1));
	o = log_line_of(all, "req-abc.123");
	ck_assert_ptr_nonnull(o);
	ck_assert_str_eq(cJSON_GetObjectItem(o, "trace_id")->valuestring,
			 "4bf92f3577b34da6a3ce929d0e0e4736");
	ck_assert_str_eq(cJSON_GetObjectItem(o, "route")->valuestring,
			 "/health");
	ck_assert_int_eq(cJSON_GetObjectItem(o, "status")->valueint, 200);
	ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(o, "duration_ms")));
	ck_assert(cJSON_GetObjectItem(o, "bytes")->valuedouble > 0);
	ck_assert_int_eq(strlen(cJSON_GetObjectItem(o, "time")->valuestring),
			 24);
	cJSON_Delete(o);
	o = log_line_of(all, made);
	ck_assert_ptr_nonnull(o);
	ck_assert_ptr_null(cJSON_GetObjectItem(o, "trace_id"));
	cJSON_Delete(o);
	/* every request line is JSON with the fields; the revoke is logged
	 * under its pattern */
	int lines = 0, revoke = 0;
	for (char *l = strtok(all, "\n"); l; l = strtok(NULL, "\n")) {
		cJSON *x = cJSON_Parse(l);
		ck_assert_msg(x != NULL, "not JSON: %s", l);
		const cJSON *m = cJSON_GetObjectItem(x, "msg");
		if (cJSON_IsString(m) && !strcmp(m->valuestring, "request")) {
			lines++;
			static const char *const need[] = {
				"time", "request_id", "tenant", "route",
				"status", "duration_ms", "bytes"};
			for (int k = 0; k < 7; k++)
				ck_assert_msg(cJSON_GetObjectItem(x, need[k]),
					      "%s lacks %s", l, need[k]);
			revoke += !strcmp(cJSON_GetObjectItem(x, "route")
						  ->valuestring,
					  "/api/v1/admin/tenants/{}/keys/{}");
		}
		cJSON_Delete(x);
	}
	ck_assert_int_ge(lines, 10);
	ck_assert_int_eq(revoke, 1);
	free(all);
	kd_cleanup(&s);
	snprintf(path, sizeof path, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(path), 0);
	curl_global_cleanup();
}
END_TEST

/* ---- rate limits and quotas -------------------------------------------- */

static kd_srv L;

static void limits_setup(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
	memset(&L, 0, sizeof L);
	static const char *const extra[] = {"--rate-limit", "5",
					    "--rate-burst", "5", NULL};
	ck_assert_int_eq(kd_start(&L, extra), 0);
}

static void limits_teardown(void)
{
	ck_assert_int_eq(kd_stop(&L), 0);
	kd_cleanup(&L);
	curl_global_cleanup();
}

/* GET /api/v1/trending with @p key; Retry-After in @p ra. */
static long trending(const char *key, char *ra)
{
	char auth[160];
	snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
	const char *h[] = {auth, NULL};
	return call_hdr(&L, "GET", "/api/v1/trending", h, "Retry-After", ra);
}

START_TEST(rate_limit_per_key_with_retry_after)
{
	char sk[80], pk[80], ra[80];
	ck_assert_int_eq(kd_tenant(&L, "rl-shop", sk, pk), 0);
	/* the burst of 5 passes, then the bucket runs dry (it refills at
	 * 5/s: 40 calls take far less than the 8 s they would need) */
	int ok = 0, limited = 0;
	long first_wait = 0;
	for (int i = 0; i < 40 && !limited; i++) {
		long st = trending(pk, ra);
		ck_assert_msg(st == 200 || st == 429, "status %ld", st);
		if (st == 200) {
			ok++;
		} else {
			limited = 1;
			first_wait = strtol(ra, NULL, 10);
		}
	}
	ck_assert_int_ge(ok, 5);
	ck_assert_msg(limited, "never limited");
	ck_assert_int_ge(first_wait, 1);
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&L, "GET", "/api/v1/trending", pk, NULL, NULL,
				 &o),
			 429);
	ck_assert_str_eq(kd_code(o), "rate_limited");
	cJSON_Delete(o);
	/* another key of the same tenant has its own bucket */
	ck_assert_int_eq(trending(sk, ra), 200);
	/* the admin key is not limited */
	for (int i = 0; i < 12; i++)
		ck_assert_int_eq(kd_call(&L, "GET",
					 "/api/v1/admin/tenants/rl-shop/limits",
					 KD_ADMIN, NULL, NULL, NULL),
				 200);
	usleep(1300000);
	ck_assert_int_eq(trending(pk, ra), 200);
	char ct[128], *m = NULL;
	ck_assert_int_eq(get_text_at(&L, "/metrics", KD_ADMIN, &m, ct,
				     sizeof ct),
			 200);
	ck_assert(prom_value(m, "knytt_http_rate_limited_total") >= 2);
	ck_assert(prom_value(m, "knytt_http_requests_total{route=\"/api/v1/"
				"trending\",method=\"GET\",status=\"429\"}") >=
		  2);
	free(m);
}
END_TEST

static long put_limits(const char *tenant, const char *body, cJSON **o)
{
	char path[128];
	snprintf(path, sizeof path, "/api/v1/admin/tenants/%s/limits", tenant);
	return kd_call(&L, "PUT", path, KD_ADMIN, NULL, body, o);
}

static long add_items(const char *sk, int from, int n, cJSON **o)
{
	char body[2048];
	int k = snprintf(body, sizeof body, "{\"items\":[");
	for (int i = 0; i < n; i++)
		k += snprintf(body + k, sizeof body - (size_t)k,
			      "%s{\"item_id\":\"q-%d\",\"title\":\"q\"}",
			      i ? "," : "", from + i);
	snprintf(body + k, sizeof body - (size_t)k, "]}");
	return kd_call(&L, "POST", "/api/v1/items", sk, NULL, body, o);
}

START_TEST(tenant_limits_and_quotas)
{
	char sk[80], pk[80];
	cJSON *o = NULL;
	ck_assert_int_eq(kd_tenant(&L, "q-shop", sk, pk), 0);
	/* defaults first: the flags' */
	ck_assert_int_eq(kd_call(&L, "GET", "/api/v1/admin/tenants/q-shop/"
					    "limits",
				 KD_ADMIN, NULL, NULL, &o),
			 200);
	ck_assert(cJSON_GetObjectItem(o, "requests_per_second")->valuedouble ==
		  5);
	ck_assert(cJSON_GetObjectItem(o, "max_items")->valuedouble == 0);
	cJSON_Delete(o);
	ck_assert_int_eq(put_limits("q-shop",
				    "{\"requests_per_second\":0,\"max_items\":"
				    "10,\"max_interactions\":6}",
				    &o),
			 200);
	ck_assert(cJSON_GetObjectItem(o, "max_items")->valuedouble == 10);
	ck_assert(cJSON_GetObjectItem(o, "requests_per_second")->valuedouble ==
		  0);
	cJSON_Delete(o);
	/* bad settings: clear errors naming the field */
	ck_assert_int_eq(put_limits("q-shop", "{\"requests_per_second\":-1}",
				    &o),
			 422);
	ck_assert_str_eq(kd_field(o), "requests_per_second");
	cJSON_Delete(o);
	ck_assert_int_eq(put_limits("q-shop", "{\"requests_per_second\":3,"
					      "\"burst\":0.5}",
				    &o),
			 422);
	ck_assert_str_eq(kd_field(o), "burst");
	cJSON_Delete(o);
	ck_assert_int_eq(put_limits("q-shop", "{\"max_items\":\"many\"}", &o),
			 400);
	ck_assert_str_eq(kd_field(o), "max_items");
	cJSON_Delete(o);
	ck_assert_int_eq(put_limits("no-such-shop", "{\"max_items\":1}", &o),
			 404);
	cJSON_Delete(o);
	/* item quota: 8 + 3 > 10 refused whole, 8 + 2 fits */
	ck_assert_int_eq(add_items(sk, 0, 8, NULL), 200);
	ck_assert_int_eq(add_items(sk, 8, 3, &o), 409);
	ck_assert_str_eq(kd_code(o), "quota_exceeded");
	ck_assert_str_eq(kd_field(o), "items");
	const char *msg = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "error"),
					      "message")
				  ->valuestring;
	ck_assert_msg(strstr(msg, "10 items") && strstr(msg, "holds 8"), "%s",
		      msg);
	cJSON_Delete(o);
	ck_assert_int_eq(add_items(sk, 8, 2, NULL), 200);
	ck_assert_int_eq(add_items(sk, 10, 1, NULL), 409);
	ck_assert_int_eq(kd_call(&L, "GET", "/api/v1/items/q-10", sk, NULL,
				 NULL, NULL),
			 404);
	/* interaction quota */
	char body[1024];
	int k = snprintf(body, sizeof body, "{\"interactions\":[");
	for (int i = 0; i < 5; i++)
		k += snprintf(body + k, sizeof body - (size_t)k,
			      "%s{\"user_id\":\"u%d\",\"item_id\":\"q-%d\","
			      "\"interaction_type\":\"view\"}",
			      i ? "," : "", i, i);
	snprintf(body + k, sizeof body - (size_t)k, "]}");
	ck_assert_int_eq(kd_call(&L, "POST", "/api/v1/interactions", sk, NULL,
				 body, NULL),
			 200);
	ck_assert_int_eq(kd_call(&L, "POST", "/api/v1/interactions", sk, NULL,
				 body, &o),
			 409);
	ck_assert_str_eq(kd_field(o), "interactions");
	cJSON_Delete(o);
	/* a tenant's own rate: 1/s with a burst of 2 */
	ck_assert_int_eq(put_limits("q-shop", "{\"requests_per_second\":1,"
					      "\"burst\":2}",
				    NULL),
			 200);
	long st[3];
	for (int i = 0; i < 3; i++)
		st[i] = kd_call(&L, "GET", "/api/v1/trending", pk, NULL, NULL,
				NULL);
	ck_assert_int_eq(st[0], 200);
	ck_assert_int_eq(st[1], 200);
	ck_assert_int_eq(st[2], 429);
}
END_TEST

/* A tenant's settings are stored: a restart keeps them, and another
 * process on the same store (a replica) follows a change within the
 * reload period (5 s). */
START_TEST(tenant_limits_survive_restart_and_reach_replicas)
{
	char sk[80], pk[80];
	cJSON *o = NULL;
	ck_assert_int_eq(kd_tenant(&L, "p-shop", sk, pk), 0);
	ck_assert_int_eq(put_limits("p-shop", "{\"requests_per_second\":0,"
					      "\"max_items\":3}",
				    NULL),
			 200);
	kd_srv R;
	memset(&R, 0, sizeof R);
	snprintf(R.dir, sizeof R.dir, "%s", L.dir);
	snprintf(R.uri, sizeof R.uri, "%s", L.uri);
	ck_assert_int_eq(kd_start(&R, NULL), 0);
	ck_assert_int_eq(kd_call(&R, "GET", "/api/v1/admin/tenants/p-shop/"
					    "limits",
				 KD_ADMIN, NULL, NULL, &o),
			 200);
	ck_assert(cJSON_GetObjectItem(o, "max_items")->valuedouble == 3);
	cJSON_Delete(o);
	/* the other process enforces it from its first request */
	kd_srv keep = L;
	L = R; /* add_items talks to L */
	ck_assert_int_eq(add_items(sk, 100, 3, NULL), 200);
	ck_assert_int_eq(add_items(sk, 103, 1, &o), 409);
	ck_assert_str_eq(kd_code(o), "quota_exceeded");
	cJSON_Delete(o);
	L = keep;
	ck_assert_int_eq(put_limits("p-shop", "{\"max_items\":5}", NULL), 200);
	/* ... and follows a change made through the first within 5 s */
	L = R;
	long st = 0;
	for (int i = 0; i < 80 && st != 200; i++) {
		st = add_items(sk, 103, 1, NULL);
		if (st != 200)
			usleep(100000);
	}
	L = keep;
	ck_assert_int_eq(st, 200);
	/* a restart keeps the tenant's settings (the second process is
	 * restarted: the first belongs to the fixture's process) */
	ck_assert_int_eq(kd_stop(&R), 0);
	ck_assert_int_eq(kd_start(&R, NULL), 0);
	ck_assert_int_eq(kd_call(&R, "GET", "/api/v1/admin/tenants/p-shop/"
					    "limits",
				 KD_ADMIN, NULL, NULL, &o),
			 200);
	ck_assert(cJSON_GetObjectItem(o, "max_items")->valuedouble == 5);
	ck_assert(cJSON_GetObjectItem(o, "requests_per_second")->valuedouble ==
		  0);
	cJSON_Delete(o);
	L = R;
	ck_assert_int_eq(add_items(sk, 104, 1, NULL), 200);
	long full = add_items(sk, 105, 1, NULL);
	L = keep;
	ck_assert_int_eq(kd_stop(&R), 0);
	ck_assert_int_eq(full, 409);
}
END_TEST

/* ---- the OpenAPI document, checked against the server ----------------- */

static kd_srv O;
static char OSK[80], OPK[80], OTOK[1024];

static void openapi_setup(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
	memset(&O, 0, sizeof O);
	ck_assert_int_eq(kd_start(&O, NULL), 0);
	ck_assert_int_eq(kd_tenant(&O, "oa-shop", OSK, OPK), 0);
	ck_assert_int_eq(kd_register(&O, OPK, "alice", OTOK, sizeof OTOK), 0);
}

static void openapi_teardown(void)
{
	ck_assert_int_eq(kd_stop(&O), 0);
	kd_cleanup(&O);
	curl_global_cleanup();
}

static cJSON *openapi_doc(void)
{
	cJSON *d = NULL;
	ck_assert_int_eq(kd_call(&O, "GET", "/api/v1/openapi.json", NULL, NULL,
				 NULL, &d),
			 200);
	ck_assert_ptr_nonnull(d);
	return d;
}

/* "#/components/schemas/X" -> the schema (one level). */
static const cJSON *deref(const cJSON *doc, const cJSON *s)
{
	const cJSON *ref = cJSON_GetObjectItem(s, "$ref");
	if (!cJSON_IsString(ref))
		return s;
	const char *pre = "#/components/schemas/";
	ck_assert(!strncmp(ref->valuestring, pre, strlen(pre)));
	const cJSON *t = cJSON_GetObjectItem(
		cJSON_GetObjectItem(cJSON_GetObjectItem(doc, "components"),
				    "schemas"),
		ref->valuestring + strlen(pre));
	ck_assert_msg(t != NULL, "dangling %s", ref->valuestring);
	return t;
}

static int type_is(const cJSON *v, const char *t)
{
	if (!strcmp(t, "string"))
		return cJSON_IsString(v);
	if (!strcmp(t, "number"))
		return cJSON_IsNumber(v);
	if (!strcmp(t, "integer"))
		return cJSON_IsNumber(v) && v->valuedouble == (double)(long long)
							      v->valuedouble;
	if (!strcmp(t, "boolean"))
		return cJSON_IsBool(v);
	if (!strcmp(t, "array"))
		return cJSON_IsArray(v);
	if (!strcmp(t, "object"))
		return cJSON_IsObject(v);
	if (!strcmp(t, "null"))
		return cJSON_IsNull(v);
	return 0;
}

/* NULL when @p v fits schema @p s (type, required, the types of the
 * properties present, enum, oneOf), else what does not. */
static const char *fits(const cJSON *doc, const cJSON *v, const cJSON *s,
			int depth)
{
	s = deref(doc, s);
	const cJSON *one = cJSON_GetObjectItem(s, "oneOf"), *x;
	if (one) {
		cJSON_ArrayForEach(x, one) if (!fits(doc, v, x, depth)) return NULL;
		return "no oneOf branch fits";
	}
	const cJSON *t = cJSON_GetObjectItem(s, "type");
	if (cJSON_IsString(t) && !type_is(v, t->valuestring))
		return "wrong type";
	if (cJSON_IsArray(t)) {
		int ok = 0;
		cJSON_ArrayForEach(x, t) ok |= type_is(v, x->valuestring);
		if (!ok)
			return "wrong type";
	}
	const cJSON *en = cJSON_GetObjectItem(s, "enum");
	if (en) {
		int ok = 0;
		cJSON_ArrayForEach(x, en) ok |= cJSON_Compare(x, v, 1);
		if (!ok)
			return "not in enum";
	}
	cJSON_ArrayForEach(x, cJSON_GetObjectItem(s, "required"))
		if (!cJSON_GetObjectItem(v, x->valuestring))
			return x->valuestring; /* the missing field */
	if (depth > 0)
		return NULL;
	cJSON_ArrayForEach(x, cJSON_GetObjectItem(s, "properties"))
	{
		const cJSON *f = cJSON_GetObjectItem(v, x->string);
		if (f && fits(doc, f, x, depth + 1))
			return x->string; /* a field of the wrong type */
	}
	return NULL;
}

START_TEST(openapi_documents_every_route)
{
	cJSON *d = openapi_doc();
	ck_assert_str_eq(cJSON_GetObjectItem(d, "openapi")->valuestring,
			 "3.1.0");
	ck_assert_ptr_null(cJSON_GetObjectItem(d, "x-undocumented"));
	const cJSON *paths = cJSON_GetObjectItem(d, "paths");
	/* every route of route.c's table is an operation of the document */
	FILE *f = fopen("services/knyttd/route.c", "r");
	ck_assert_ptr_nonnull(f);
	char line[256];
	int routes = 0, ops = 0;
	while (fgets(line, sizeof line, f)) {
		char method[16], pattern[128], m[16];
		if (sscanf(line, " {\"%15[A-Z]\", \"%127[^\"]\"", method,
			   pattern) != 2)
			continue;
		routes++;
		size_t k = 0;
		for (; method[k]; k++)
			m[k] = (char)(method[k] | 0x20);
		m[k] = 0;
		int hit = 0;
		const cJSON *p;
		cJSON_ArrayForEach(p, paths)
		{
			/* "{name}" in the document, "{}" in route.c */
			const char *a = p->string, *b = pattern;
			while (*a && *b) {
				if (*a == '{' && b[0] == '{' && b[1] == '}') {
					a = strchr(a, '}') + 1;
					b += 2;
				} else if (*a++ != *b++) {
					break;
				}
			}
			hit |= !*a && !*b && cJSON_GetObjectItem(p, m);
		}
		ck_assert_msg(hit, "route %s %s is not in the OpenAPI document",
			      method, pattern);
	}
	fclose(f);
	const cJSON *p, *op;
	cJSON_ArrayForEach(p, paths) cJSON_ArrayForEach(op, p) ops++;
	ck_assert_int_ge(routes, 30);
	ck_assert_int_eq(ops, routes); /* and nothing documented twice */
	cJSON_Delete(d);
}
END_TEST

START_TEST(openapi_examples_answer_as_documented)
{
	cJSON *d = openapi_doc();
	const cJSON *p, *op;
	int sent = 0;
	cJSON_ArrayForEach(p, cJSON_GetObjectItem(d, "paths"))
	cJSON_ArrayForEach(op, p)
	{
		char method[16];
		size_t k = 0;
		for (; op->string[k] && k < 15; k++)
			method[k] = (char)(op->string[k] & ~0x20);
		method[k] = 0;
		const cJSON *ex = cJSON_GetObjectItem(op, "x-example");
		ck_assert_msg(ex != NULL, "%s %s has no example", method,
			      p->string);
		const char *path =
			cJSON_GetObjectItem(ex, "path")->valuestring;
		int want = cJSON_GetObjectItem(ex, "status")->valueint;
		const cJSON *body = cJSON_GetObjectItem(ex, "body");
		/* the example's body fits the documented request schema */
		const cJSON *rq = cJSON_GetObjectItem(
			cJSON_GetObjectItem(
				cJSON_GetObjectItem(
					cJSON_GetObjectItem(op, "requestBody"),
					"content"),
				"application/json"),
			"schema");
		if (body) {
			ck_assert_msg(rq != NULL, "%s %s: body not documented",
				      method, path);
			const char *why = fits(d, body, rq, 0);
			ck_assert_msg(!why, "%s %s: example body: %s", method,
				      path, why);
		}
		/* the credential the security section names */
		const char *key = NULL, *tok = NULL;
		const cJSON *sec = cJSON_GetArrayItem(
			cJSON_GetObjectItem(op, "security"), 0);
		if (cJSON_GetObjectItem(sec, "admin"))
			key = KD_ADMIN;
		else if (cJSON_GetObjectItem(sec, "secretKey"))
			key = OSK;
		else if (cJSON_GetObjectItem(sec, "publicKey"))
			key = OPK, tok = OTOK;
		char *txt = body ? cJSON_PrintUnformatted(body) : NULL;
		cJSON *out = NULL;
		long st = kd_call(&O, method, path, key, tok, txt, &out);
		free(txt);
		char *got = out ? cJSON_PrintUnformatted(out) : NULL;
		ck_assert_msg(st == want, "%s %s: %ld, documented %d: %s",
			      method, path, st, want, got ? got : "");
		char code[8];
		snprintf(code, sizeof code, "%d", want);
		const cJSON *content = cJSON_GetObjectItem(
			cJSON_GetObjectItem(cJSON_GetObjectItem(op, "responses"),
					    code),
			"content");
		const cJSON *js = cJSON_GetObjectItem(
			cJSON_GetObjectItem(content, "application/json"),
			"schema");
		if (js) {
			ck_assert_msg(out != NULL, "%s %s: not JSON", method,
				      path);
			const char *why = fits(d, out, js, 0);
			ck_assert_msg(!why, "%s %s: answer does not fit (%s): %s",
				      method, path, why, got);
		} else {
			ck_assert_msg(cJSON_GetObjectItem(content,
							  "text/plain") != NULL,
				      "%s %s: no schema", method, path);
		}
		free(got);
		cJSON_Delete(out);
		sent++;
	}
	ck_assert_int_ge(sent, 30);
	/* an error answer fits the documented default */
	cJSON *out = NULL;
	ck_assert_int_eq(kd_call(&O, "GET", "/api/v1/items/none-such", OSK,
				 NULL, NULL, &out),
			 404);
	const cJSON *def = cJSON_GetObjectItem(
		cJSON_GetObjectItem(
			cJSON_GetObjectItem(
				cJSON_GetObjectItem(
					cJSON_GetObjectItem(
						cJSON_GetObjectItem(
							cJSON_GetObjectItem(
								d, "paths"),
							"/api/v1/items/"
							"{item_id}"),
						"get"),
					"responses"),
				"default"),
			"content"),
		"application/json");
	ck_assert_ptr_null(fits(d, out, cJSON_GetObjectItem(def, "schema"), 0));
	/* and the validator can fail: an answer missing a field */
	cJSON_DeleteItemFromObject(cJSON_GetObjectItem(out, "error"), "code");
	ck_assert_ptr_nonnull(fits(d, cJSON_GetObjectItem(out, "error"),
				   cJSON_GetObjectItem(
					   cJSON_GetObjectItem(
						   deref(d, cJSON_GetObjectItem(
								    def,
								    "schema")),
						   "properties"),
					   "error"),
				   0));
	cJSON_Delete(out);
	cJSON_Delete(d);
}
END_TEST

/* The value of the first series of @p name (whatever its labels), or
 * -1 when absent. */
static double first_series(const char *m, const char *name)
{
	char key[128];
	snprintf(key, sizeof key, "\n%s{", name);
	const char *p = strstr(m, key);
	if (!p || !(p = strchr(p, '}')))
		return -1;
	return strtod(p + 1, NULL);
}

/* --profile-cache: every engine's budget for shoppers' profiles, and
 * what they hold, in /metrics (the default without the option). */
START_TEST(profile_cache_option_reaches_metrics)
{
	kd_srv s2 = S; /* a second process on the same database */
	s2.pid = 0;
	const char *extra[] = {"--profile-cache", "1", NULL};
	ck_assert_int_eq(kd_start(&s2, extra), 0);
	char body[128], ct[128], err[256], *m = NULL;
	for (int u = 0; u < 6; u++) {
		snprintf(body, sizeof body,
			 "{\"user_id\":\"u%d\",\"count\":3}", u);
		ck_assert_int_eq(kd_call(&s2, "POST", "/api/v1/recommendations",
					 SK, NULL, body, NULL),
				 200);
		ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/recommendations",
					 SK, NULL, body, NULL),
				 200);
	}
	long st = get_text_at(&s2, "/metrics", KD_ADMIN, &m, ct, sizeof ct);
	ck_assert_int_eq(st, 200);
	ck_assert_msg(prom_check(m, err, sizeof err) == 0, "%s", err);
	ck_assert(first_series(m, "knytt_profile_cache_budget_bytes") ==
		  1048576);
	/* six shoppers of four events: far under a MiB, none evicted */
	ck_assert(first_series(m, "knytt_profile_cache_profiles") == 6);
	double bytes = first_series(m, "knytt_profile_cache_bytes");
	ck_assert_msg(bytes > 6 * 500 && bytes < 1048576, "%g", bytes);
	ck_assert(first_series(m, "knytt_profile_cache_evictions_total") == 0);
	ck_assert_ptr_nonnull(strstr(m, "# TYPE knytt_profile_cache_evictions_"
					 "total counter"));
	free(m);
	ck_assert_int_eq(kd_stop(&s2), 0); /* the store is S's */
	ck_assert_int_eq(get_text("/metrics", KD_ADMIN, &m, ct, sizeof ct),
			 200);
	ck_assert(first_series(m, "knytt_profile_cache_budget_bytes") ==
		  64.0 * 1048576);
	free(m);
}
END_TEST

/* ---- the allocator's arenas (heap.c) ---------------------------------- */

typedef struct churn {
	const kd_srv *s;
	int t; /* client number */
} churn;

/* One client: shoppers new to the server, each given an event and asked
 * for recommendations, so every request loads (and, past the budget,
 * evicts) a profile. */
static void *churn_client(void *arg)
{
	const churn *c = arg;
	char body[160];
	for (int i = 0; i < 40; i++) {
		snprintf(body, sizeof body,
			 "{\"user_id\":\"c%d-%d\",\"item_id\":\"sku-%d\","
			 "\"interaction_type\":\"view\"}",
			 c->t, i, (c->t + i) % 8);
		if (kd_call(c->s, "POST", "/api/v1/interactions", SK, NULL,
			    body, NULL) != 200)
			return (void *)1;
		snprintf(body, sizeof body,
			 "{\"user_id\":\"c%d-%d\",\"count\":3}", c->t, i);
		if (kd_call(c->s, "POST", "/api/v1/recommendations", SK, NULL,
			    body, NULL) != 200)
			return (void *)1;
	}
	return NULL;
}

/* Starts a knyttd on S's store with @p arenas (NULL: the default), runs
 * four clients at once through it, and returns its arena count. */
static double arenas_after_churn(const char *arenas)
{
	kd_srv s2 = S;
	s2.pid = 0;
	const char *extra[] = {"--threads", "4", "--profile-cache", "1",
			       arenas ? "--malloc-arenas" : NULL, arenas,
			       NULL};
	ck_assert_int_eq(kd_start(&s2, extra), 0);
	pthread_t th[4];
	churn c[4];
	for (int t = 0; t < 4; t++) {
		c[t] = (churn){&s2, t};
		ck_assert_int_eq(pthread_create(&th[t], NULL, churn_client,
						&c[t]),
				 0);
	}
	for (int t = 0; t < 4; t++) {
		void *bad;
		pthread_join(th[t], &bad);
		ck_assert_ptr_null(bad);
	}
	char ct[128], err[256], *m = NULL;
	long st = get_text_at(&s2, "/metrics", KD_ADMIN, &m, ct, sizeof ct);
	ck_assert_int_eq(st, 200);
	ck_assert_msg(prom_check(m, err, sizeof err) == 0, "%s", err);
	double n = prom_value(m, "knytt_process_malloc_arenas");
	ck_assert_ptr_nonnull(strstr(m, "knytt_process_malloc_bytes{state="
					"\"in_use\"} "));
	ck_assert_ptr_nonnull(strstr(m, "knytt_process_malloc_bytes{state="
					"\"free\"} "));
	free(m);
	ck_assert_int_eq(kd_stop(&s2), 0); /* the store is S's */
	return n;
}

/* Profiles loaded by one request thread and freed by another spread
 * freed memory over glibc's per-thread arenas, 8 per CPU by default, and
 * each arena keeps its own (heap.c: the soak's RssAnon 72-75 MiB with 8
 * arenas, 58 with 1).  knyttd limits them to one per two CPUs, at least
 * 1; the same traffic with glibc's default (--malloc-arenas 0) shows
 * the test can see the difference. */
START_TEST(malloc_arenas_stay_few_under_profile_churn)
{
	/* make sanitize's knyttd allocates with ASan, not glibc */
	if (tu_sanitize()) {
		fprintf(stderr, "malloc_arenas_stay_few_under_profile_churn: "
				"SKIPPED: a sanitizer's allocator\n");
		return;
	}
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	double lim = cpus >= 2 ? (double)(cpus / 2) : 1;
	double n = arenas_after_churn(NULL);
	ck_assert_msg(n >= 1 && n <= lim, "%g arenas, limit %g", n, lim);
	n = arenas_after_churn("2");
	ck_assert_msg(n >= 1 && n <= 2, "%g arenas with --malloc-arenas 2", n);
	n = arenas_after_churn("0");
	ck_assert_msg(n > 2, "%g arenas with glibc's default", n);
}
END_TEST

Suite *knyttd_ops_suite(void)
{
	Suite *s = suite_create("knyttd_ops");
	TCase *tc = tcase_create("format");
	tcase_add_test(tc, metrics_checker_rejects_bad_text);
	suite_add_tcase(s, tc);
	tc = tcase_create("metrics");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, ops_setup, ops_teardown);
	tcase_add_test(tc, metrics_counts_routes_tenants_and_jobs);
	tcase_add_test(tc, metrics_pass_promtool);
	tcase_add_test(tc, profile_cache_option_reaches_metrics);
	tcase_add_test(tc, malloc_arenas_stay_few_under_profile_churn);
	suite_add_tcase(s, tc);
	tc = tcase_create("logs");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, request_log_has_ids_and_no_secrets);
	suite_add_tcase(s, tc);
	tc = tcase_create("limits");
	tcase_set_timeout(tc, 60);
	tcase_add_unchecked_fixture(tc, limits_setup, limits_teardown);
	tcase_add_test(tc, rate_limit_per_key_with_retry_after);
	tcase_add_test(tc, tenant_limits_and_quotas);
	tcase_add_test(tc, tenant_limits_survive_restart_and_reach_replicas);
	suite_add_tcase(s, tc);
	tc = tcase_create("openapi");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, openapi_setup, openapi_teardown);
	tcase_add_test(tc, openapi_documents_every_route);
	tcase_add_test(tc, openapi_examples_answer_as_documented);
	suite_add_tcase(s, tc);
	return s;
}
