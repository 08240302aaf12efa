/*
 * h_query.c -- the read side: recommendations, search, similar items and
 * trending, each one engine call plus the item fields of its answer.
 *
 * A public key may ask for recommendations (or a personal search) for a
 * shopper only with that shopper's token; without a user_id it gets what
 * an anonymous visitor gets (trending items within the filters).  An
 * unknown user_id is a new visitor, not an error: they get the same.
 */
#include "knyttd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COUNT 100
#define MAX_EXCLUDE 1000

/* A growing expression text (where_of). */
typedef struct wtext {
	char *s;
	size_t n, cap;
	int oom;
} wtext;

static void wput(wtext *t, const char *s, size_t n)
{
	if (t->oom)
		return;
	if (t->n + n + 1 > t->cap) {
		size_t nc = (t->n + n + 1) * 2;
		char *ns = realloc(t->s, nc);
		if (!ns) {
			t->oom = 1;
			return;
		}
		t->s = ns;
		t->cap = nc;
	}
	memcpy(t->s + t->n, s, n);
	t->n += n;
	t->s[t->n] = '\0';
}

static void wputs(wtext *t, const char *s)
{
	wput(t, s, strlen(s));
}

/* @p s in single quotes, ' and \ escaped. */
static void wquote(wtext *t, const char *s)
{
	wputs(t, "'");
	for (; *s; s++) {
		if (*s == '\'' || *s == '\\')
			wputs(t, "\\");
		wput(t, s, 1);
	}
	wputs(t, "'");
}

/* One value of "attributes": a string, number or boolean; 0 if not. */
static int wvalue(wtext *t, const cJSON *v)
{
	char num[40];
	if (cJSON_IsString(v))
		wquote(t, v->valuestring);
	else if (cJSON_IsBool(v))
		wputs(t, cJSON_IsTrue(v) ? "true" : "false");
	else if (cJSON_IsNumber(v) && isfinite(v->valuedouble)) {
		snprintf(num, sizeof num, "%.17g", v->valuedouble);
		wputs(t, num);
	} else
		return 0;
	return 1;
}

/* "attributes": {"brand": "acme", "size": ["m", "l"], "weight": {"min":
 * 1, "max": 5}} as the expression brand = 'acme' and size in ('m', 'l')
 * and weight >= 1 and weight <= 5.  0, or an error answer. */
static int attrs_expr(kd_req *r, const cJSON *a, wtext *t)
{
	if (!cJSON_IsObject(a))
		return kd_err(r, 400, "wrong_type", "attributes",
			      "field attributes must be an object");
	const cJSON *x;
	cJSON_ArrayForEach(x, a)
	{
		if (t->n)
			wputs(t, " and ");
		wquote(t, x->string);
		int ok = 1;
		if (cJSON_IsArray(x)) {
			wputs(t, " in (");
			const cJSON *v;
			int i = 0;
			cJSON_ArrayForEach(v, x)
			{
				if (i++)
					wputs(t, ", ");
				ok &= wvalue(t, v);
			}
			ok &= i > 0;
			wputs(t, ")");
		} else if (cJSON_IsObject(x)) {
			const cJSON *lo = cJSON_GetObjectItemCaseSensitive(x, "min");
			const cJSON *hi = cJSON_GetObjectItemCaseSensitive(x, "max");
			ok = (lo || hi) && (!lo || cJSON_IsNumber(lo)) &&
			     (!hi || cJSON_IsNumber(hi));
			if (ok && lo) {
				wputs(t, " >= ");
				wvalue(t, lo);
			}
			if (ok && hi) {
				wputs(t, lo ? " and " : " <= ");
				if (lo) {
					wquote(t, x->string);
					wputs(t, " <= ");
				}
				wvalue(t, hi);
			}
		} else {
			wputs(t, " = ");
			ok = wvalue(t, x);
		}
		if (!ok)
			return kd_err(r, 400, "wrong_type", "attributes",
				      "attribute '%.100s' must be a string, "
				      "number, boolean, a non-empty array of "
				      "them or {\"min\", \"max\"}",
				      x->string);
	}
	return 0;
}

/* filters.where (an expression, knytt_where(3)) and filters.attributes,
 * compiled into r->where (freed with the request). */
static int where_of(kd_req *r, const cJSON *o, knytt_filter *f)
{
	const char *where = NULL;
	int rc = kd_get_str(r, o, "where", &where);
	if (rc > 1)
		return rc;
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "attributes");
	if (a && cJSON_IsNull(a))
		a = NULL;
	if (!where && !a)
		return 0;
	wtext t = { 0 };
	if (a && (rc = attrs_expr(r, a, &t))) {
		free(t.s);
		return rc;
	}
	if (where) {
		wtext w = { 0 };
		wputs(&w, "(");
		wputs(&w, where);
		wputs(&w, ")");
		if (t.n) {
			wputs(&w, " and ");
			wputs(&w, t.s);
		}
		free(t.s);
		t = w;
	}
	if (t.oom || !t.n) {
		free(t.s);
		return t.oom ? kd_err(r, 503, "no_memory", NULL, "out of memory")
			     : 0;
	}
	rc = knytt_where_compile(t.s, &r->where);
	free(t.s);
	if (rc == KNYTT_EINVAL)
		return kd_err(r, 422, "invalid_field",
			      where ? "where" : "attributes", "%s",
			      knytt_errmsg());
	if (rc)
		return kd_liberr(r, rc, NULL);
	f->where = r->where;
	return 0;
}

int kd_filters(kd_req *r, const cJSON *body, knytt_filter *f)
{
	knytt_filter_init(f);
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(body, "filters");
	if (!o || cJSON_IsNull(o))
		return 0;
	if (!cJSON_IsObject(o))
		return kd_err(r, 400, "wrong_type", "filters",
			      "field filters must be an object");
	const cJSON *pr = cJSON_GetObjectItemCaseSensitive(o, "price_range");
	if (pr && !cJSON_IsNull(pr) && !cJSON_IsObject(pr))
		return kd_err(r, 400, "wrong_type", "price_range",
			      "field price_range must be {\"min\", \"max\"}");
	double lo = NAN, hi = NAN, q = NAN;
	int rc, stock = 0;
	if ((rc = kd_get_str(r, o, "category", &f->category_prefix)) > 1 ||
	    (rc = kd_get_num(r, o, "price_min", &lo)) > 1 ||
	    (rc = kd_get_num(r, o, "price_max", &hi)) > 1 ||
	    (pr && (rc = kd_get_num(r, pr, "min", &lo)) > 1) ||
	    (pr && (rc = kd_get_num(r, pr, "max", &hi)) > 1) ||
	    (rc = kd_get_num(r, o, "min_quality", &q)) > 1 ||
	    (rc = kd_get_bool(r, o, "in_stock", &stock)) > 1)
		return rc;
	if ((!isnan(lo) && lo < 0) || (!isnan(hi) && hi < 0) ||
	    (!isnan(lo) && !isnan(hi) && lo > hi))
		return kd_err(r, 422, "invalid_field", "price_max",
			      "the price range must be 0 <= min <= max");
	f->price_min = isnan(lo) ? 0 : lo;
	f->price_max = isnan(hi) ? NAN : hi;
	f->min_quality = q;
	f->in_stock_only = stock;
	return where_of(r, o, f);
}

/* An attribute filter on item @p id: the item cache keeps no
 * attributes, so the store is read (anonymous answers with a "where"
 * only); 0 when it fails or is gone. */
static int where_passes(kd_req *r, uint64_t id, const knytt_where *w)
{
	knytt_item *it = NULL;
	if (knytt_store_item_get_id(r->st, id, &it))
		return 0;
	int ok = !it->deleted && knytt_where_match(w, it->attributes) == 1;
	knytt_free(it);
	return ok;
}

/* The filter test for answers that did not go through the engine's
 * filters (trending for anonymous visitors); "where" is tested apart
 * (where_passes). */
static int passes(const kd_item_brief *it, const knytt_filter *f)
{
	if (!f)
		return 1;
	if (f->in_stock_only && !it->in_stock)
		return 0;
	if (f->price_min > 0 && it->price < f->price_min)
		return 0;
	if (!isnan(f->price_max) && f->price_max > 0 &&
	    it->price > f->price_max)
		return 0;
	return isnan(f->min_quality) || it->quality >= f->min_quality;
}

/* Appends result @p x with its item's fields (itemcache.c), after a
 * comma unless it is the first; 0 if the item is gone or fails @p f. */
static int add_result(kd_req *r, kd_buf *b, const knytt_result *x,
		      const knytt_filter *f, int first)
{
	size_t mark = b->n;
	kd_item_brief it;
	if (!first)
		kd_buf_put(b, ",", 1);
	if (!kd_item_fields(r, x->item_id, b, &it) || !passes(&it, f) ||
	    (f && f->where && !where_passes(r, x->item_id, f->where))) {
		if (!b->oom) { /* take back what was written */
			b->n = mark;
			b->p[mark] = 0;
		}
		return 0;
	}
	kd_buf_cstr(b, ",\"score\":");
	kd_buf_score(b, x->score);
	kd_buf_cstr(b, ",\"reason\":");
	kd_buf_jstr(b, knytt_reason_name(x->reason));
	kd_buf_put(b, "}", 1);
	return 1;
}

void kd_results_text(kd_req *r, kd_buf *b, const knytt_result *res, int n,
		     int *got)
{
	*got = 0;
	kd_buf_cstr(b, "{\"results\":[");
	for (int i = 0; i < n; i++)
		*got += add_result(r, b, &res[i], NULL, *got == 0);
	kd_buf_put(b, "]", 1);
}

/* Reads "count" (1..MAX_COUNT, default 10) from a body or the query. */
static int count_of(kd_req *r, const cJSON *b, long long *k)
{
	*k = 10;
	if (b) {
		int rc = kd_get_int(r, b, "count", 1, MAX_COUNT, k);
		return rc > 1 ? rc : 0;
	}
	return kd_query_int(r, "count", 1, MAX_COUNT, 10, k);
}

/* Recommendation request fields besides filters. */
typedef struct rec_req {
	const char *user;
	long long k;
	const cJSON *exclude;
	int nexclude;
	knytt_rec_options opt;
} rec_req;

static int read_rec(kd_req *r, const cJSON *b, rec_req *q)
{
	int rc, seen = -1;
	double div = 0;
	memset(q, 0, sizeof *q);
	knytt_rec_options_init(&q->opt);
	if ((rc = kd_get_str(r, b, "user_id", &q->user)) > 1 ||
	    (rc = count_of(r, b, &q->k)) ||
	    (rc = kd_get_num(r, b, "diversity", &div)) > 1 ||
	    (rc = kd_get_bool(r, b, "exclude_seen", &seen)) > 1)
		return rc;
	if (div < 0 || div > 1)
		return kd_err(r, 422, "out_of_range", "diversity",
			      "field diversity must be in 0..1");
	/* diversity 1 is MMR's lambda 0.3, the lower end of its useful
	 * range (knytt_rec_options) */
	q->opt.mmr_lambda = 1 - 0.7 * div;
	if (seen >= 0)
		q->opt.exclude_seen = seen;
	q->exclude = cJSON_GetObjectItemCaseSensitive(b, "exclude");
	if (q->exclude && !cJSON_IsNull(q->exclude)) {
		if (!cJSON_IsArray(q->exclude))
			return kd_err(r, 400, "wrong_type", "exclude",
				      "field exclude must be an array of "
				      "item ids");
		q->nexclude = cJSON_GetArraySize(q->exclude);
		if (q->nexclude > MAX_EXCLUDE)
			return kd_err(r, 422, "out_of_range", "exclude",
				      "field exclude holds at most %d ids",
				      MAX_EXCLUDE);
		const cJSON *x;
		cJSON_ArrayForEach(x, q->exclude) if (!cJSON_IsString(x))
			return kd_err(r, 400, "wrong_type", "exclude",
				      "field exclude must hold strings");
	} else {
		q->exclude = NULL;
	}
	if (q->user && !*q->user)
		q->user = NULL;
	return q->user ? kd_may_act(r, q->user) : 0;
}

static int excluded(const rec_req *q, const char *id)
{
	const cJSON *x;
	if (q->exclude)
		cJSON_ArrayForEach(x, q->exclude) if (!strcmp(x->valuestring, id))
			return 1;
	return 0;
}

/* The "experiment" member ({"name", "variant"}) of an answer written as
 * text; takes @p xo (NULL: no experiment named). */
static void put_experiment(kd_buf *out, cJSON *xo)
{
	if (!xo)
		return;
	char *t = cJSON_PrintUnformatted(xo);
	if (t) {
		kd_buf_cstr(out, ",\"experiment\":");
		kd_buf_cstr(out, t);
		free(t);
	}
	cJSON_Delete(xo);
}

int h_recommend(kd_req *r)
{
	const cJSON *b;
	rec_req q;
	knytt_filter f;
	knytt_engine *e;
	int rc;
	if ((rc = kd_body_obj(r, &b)) || (rc = read_rec(r, b, &q)) ||
	    (rc = kd_filters(r, b, &f)) || (rc = kd_engine(r, &e)))
		return rc;
	/* room for the exclusions, and for anonymous answers, which are
	 * filtered here, a margin */
	size_t want = (size_t)q.k + (size_t)q.nexclude;
	knytt_result *res = calloc(want * 4, sizeof *res);
	if (!res)
		return kd_err(r, 503, "no_memory", NULL, "out of memory");
	res[0].struct_size = sizeof *res; /* the array's stride */
	/* a named experiment: the shopper's variant serves (h_experiments.c) */
	cJSON *xo = NULL;
	int xst = 0;
	int n = q.user ? kd_exp_recommend(r, b, e, q.user, want, &f, &q.opt,
					  res, &xo, &xst)
		       : KNYTT_ENOTFOUND;
	if (xst) {
		free(res);
		return xst;
	}
	int anon = n == KNYTT_ENOTFOUND;
	if (anon)
		n = knytt_engine_trending(e, want * 4, 604800, f.category_prefix,
					  res);
	if (n < 0) {
		free(res);
		return kd_liberr(r, n, NULL);
	}
	kd_buf out = {0};
	int got = 0;
	kd_buf_cstr(&out, "{\"results\":[");
	for (int i = 0; i < n && got < q.k; i++)
		if (!excluded(&q, res[i].ext_id))
			got += add_result(r, &out, &res[i], anon ? &f : NULL,
					  got == 0);
	free(res);
	kd_buf_put(&out, "]", 1);
	if (q.user) {
		kd_buf_cstr(&out, ",\"user_id\":");
		kd_buf_jstr(&out, q.user);
	}
	kd_buf_cstr(&out, ",\"count\":");
	kd_buf_num(&out, got);
	kd_buf_cstr(&out, anon ? ",\"strategy\":\"trending\""
			     : ",\"strategy\":\"personal\"");
	put_experiment(&out, xo);
	kd_buf_put(&out, "}", 1);
	return kd_ok_buf(r, 200, &out);
}

/* The "vector" of a search body into a new array (*vec NULL if none). */
static int read_vector(kd_req *r, const cJSON *b, float **vec, uint32_t *dim)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, "vector");
	*vec = NULL;
	*dim = 0;
	if (!v || cJSON_IsNull(v))
		return 0;
	int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
	if (n <= 0 || n > 4096)
		return kd_err(r, 400, "wrong_type", "vector",
			      "field vector must be an array of 1..4096 "
			      "numbers");
	float *x = malloc((size_t)n * sizeof *x);
	int i = 0;
	const cJSON *e;
	cJSON_ArrayForEach(e, v)
	{
		if (!x || !cJSON_IsNumber(e) || !isfinite(e->valuedouble)) {
			free(x);
			return kd_err(r, 400, "wrong_type", "vector",
				      "field vector must hold finite numbers");
		}
		x[i++] = (float)e->valuedouble;
	}
	*vec = x;
	*dim = (uint32_t)n;
	return 0;
}

int h_search(kd_req *r)
{
	const cJSON *b;
	const char *text = NULL, *user = NULL;
	long long k;
	knytt_filter f;
	knytt_engine *e;
	float *vec = NULL;
	uint32_t dim;
	int rc;
	if ((rc = kd_body_obj(r, &b)) || (rc = kd_get_str(r, b, "query", &text)) > 1 ||
	    (rc = kd_get_str(r, b, "user_id", &user)) > 1 ||
	    (rc = count_of(r, b, &k)) || (rc = kd_filters(r, b, &f)))
		return rc;
	if (text && !*text)
		text = NULL;
	if (user && !*user)
		user = NULL;
	if ((user && (rc = kd_may_act(r, user))) ||
	    (rc = read_vector(r, b, &vec, &dim)))
		return rc;
	if (!text && !vec)
		return kd_err(r, 422, "missing_field", "query",
			      "a search needs a query or a vector");
	if ((rc = kd_engine(r, &e))) {
		free(vec);
		return rc;
	}
	knytt_result res[MAX_COUNT] = {{.struct_size = sizeof(knytt_result)}};
	uint64_t log_id = 0;
	cJSON *xo = NULL;
	int xst = 0;
	int n = kd_exp_search(r, b, e, text, vec, dim, (size_t)k, &f, user, res,
			      &log_id, &xo, &xst);
	int had_vec = vec != NULL;
	free(vec);
	if (xst)
		return xst;
	if (n < 0)
		return kd_liberr(r, n, had_vec ? "vector" : NULL);
	kd_buf out = {0};
	int got;
	kd_results_text(r, &out, res, n, &got);
	kd_buf_cstr(&out, ",\"search_id\":");
	kd_buf_num(&out, (double)log_id);
	put_experiment(&out, xo);
	kd_buf_put(&out, "}", 1);
	return kd_ok_buf(r, 200, &out);
}

/* Filters from the query string: category, in_stock, where. */
static int query_filters(kd_req *r, knytt_filter *f)
{
	knytt_filter_init(f);
	f->category_prefix = kd_query(r, "category");
	const char *s = kd_query(r, "in_stock");
	f->in_stock_only = s && (!strcmp(s, "true") || !strcmp(s, "1"));
	const char *w = kd_query(r, "where");
	if (!w || !*w)
		return 0;
	int rc = knytt_where_compile(w, &r->where);
	if (rc == KNYTT_EINVAL)
		return kd_err(r, 422, "invalid_field", "where", "%s",
			      knytt_errmsg());
	if (rc)
		return kd_liberr(r, rc, NULL);
	f->where = r->where;
	return 0;
}

int h_similar(kd_req *r)
{
	long long k;
	knytt_filter f;
	knytt_engine *e;
	int rc;
	if ((rc = count_of(r, NULL, &k)) || (rc = query_filters(r, &f)) ||
	    (rc = kd_engine(r, &e)))
		return rc;
	knytt_result res[MAX_COUNT] = {{.struct_size = sizeof(knytt_result)}};
	int n = knytt_engine_similar(e, r->param[0], (size_t)k, &f, res);
	if (n == KNYTT_ENOTFOUND || n == KNYTT_EINVAL)
		return kd_err(r, 404, "not_found", "item_id",
			      "no item '%.200s'", r->param[0]);
	if (n < 0)
		return kd_liberr(r, n, NULL);
	kd_buf out = {0};
	int got;
	kd_results_text(r, &out, res, n, &got);
	kd_buf_cstr(&out, ",\"item_id\":");
	kd_buf_jstr(&out, r->param[0]);
	kd_buf_put(&out, "}", 1);
	return kd_ok_buf(r, 200, &out);
}

/* "7d", "24h", "90m", "3600s" or "3600": seconds, or -1. */
static double window_s(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || !isfinite(v) || v <= 0)
		return -1;
	if (!*end || !strcmp(end, "s"))
		return v;
	if (!strcmp(end, "m"))
		return v * 60;
	if (!strcmp(end, "h"))
		return v * 3600;
	if (!strcmp(end, "d"))
		return v * 86400;
	if (!strcmp(end, "w"))
		return v * 604800;
	return -1;
}

int h_trending(kd_req *r)
{
	long long k;
	knytt_engine *e;
	int rc;
	const char *w = kd_query(r, "window");
	double win = w ? window_s(w) : 604800;
	if (win < 0)
		return kd_err(r, 400, "wrong_type", "window",
			      "parameter window must read like 7d, 24h or 1h");
	if ((rc = count_of(r, NULL, &k)) || (rc = kd_engine(r, &e)))
		return rc;
	knytt_result res[MAX_COUNT] = {{.struct_size = sizeof(knytt_result)}};
	int n = knytt_engine_trending(e, (size_t)k, win,
				      kd_query(r, "category"), res);
	if (n < 0)
		return kd_liberr(r, n, NULL);
	kd_buf out = {0};
	int got;
	kd_results_text(r, &out, res, n, &got);
	kd_buf_cstr(&out, ",\"window_s\":");
	kd_buf_num(&out, win);
	kd_buf_put(&out, "}", 1);
	return kd_ok_buf(r, 200, &out);
}
