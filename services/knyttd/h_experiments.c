/*
 * h_experiments.c -- search analytics and A/B experiments over HTTP:
 *   GET  /api/v1/analytics/searches      the search report
 *   GET  /api/v1/experiments             the tenant's experiments
 *   POST /api/v1/experiments             create one (201)
 *   GET  /api/v1/experiments/{name}      its definition and report
 *   POST /api/v1/experiments/{name}/stop stop it
 * all with the tenant's secret key, and the experiment part of
 * recommendations and search (kd_exp_recommend, kd_exp_search): a body
 * naming "experiment" is served by the shopper's variant, logged as an
 * exposure, and its answer says which variant served it.
 *
 * knyttd runs one engine per tenant, so its variants differ in settings
 * (diversity, exclude_seen); a variant naming a model is refused at
 * creation rather than served by the wrong one.
 */
#include "knyttd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LIST 200

static void add_num(cJSON *o, const char *k, double v)
{
	if (isnan(v))
		cJSON_AddNullToObject(o, k);
	else
		cJSON_AddNumberToObject(o, k, v);
}

static cJSON *qstat_json(const knytt_query_stat *q)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "query", q->query);
	cJSON_AddNumberToObject(o, "searches", (double)q->searches);
	cJSON_AddNumberToObject(o, "zero_results", (double)q->zero_results);
	cJSON_AddNumberToObject(o, "mean_results", q->mean_results);
	cJSON_AddNumberToObject(o, "clicked", (double)q->clicked);
	cJSON_AddNumberToObject(o, "ctr", q->ctr);
	cJSON_AddNumberToObject(o, "mrr", q->mrr);
	return o;
}

int h_analytics_searches(kd_req *r)
{
	long long since, until, top, few, window;
	int rc;
	if ((rc = kd_query_int(r, "since", 0, (long long)9e15, 0, &since)) ||
	    (rc = kd_query_int(r, "until", 0, (long long)9e15, 0, &until)) ||
	    (rc = kd_query_int(r, "top", 1, 1000, 20, &top)) ||
	    (rc = kd_query_int(r, "few", 0, 1000000, 0, &few)) ||
	    (rc = kd_query_int(r, "window_s", 0, 30LL * 86400, 0, &window)))
		return rc;
	knytt_search_report *s = NULL;
	rc = knytt_store_search_report(r->st, since, until, (size_t)top,
				       (int)few, window * 1000, &s);
	if (rc < 0)
		return kd_liberr(r, rc, NULL);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "since", (double)s->from_ms);
	cJSON_AddNumberToObject(o, "until", (double)s->to_ms);
	cJSON_AddNumberToObject(o, "window_s", (double)(s->window_ms / 1000));
	cJSON_AddNumberToObject(o, "searches", (double)s->searches);
	cJSON_AddNumberToObject(o, "users", (double)s->users);
	cJSON_AddNumberToObject(o, "zero_results", (double)s->zero_results);
	cJSON_AddNumberToObject(o, "clicked", (double)s->clicked);
	cJSON_AddNumberToObject(o, "ctr", s->ctr);
	cJSON_AddNumberToObject(o, "mrr", s->mrr);
	cJSON *a = cJSON_AddArrayToObject(o, "top_queries");
	for (size_t i = 0; i < s->ntop; i++)
		cJSON_AddItemToArray(a, qstat_json(&s->top[i]));
	a = cJSON_AddArrayToObject(o, "few_results");
	for (size_t i = 0; i < s->nfew; i++)
		cJSON_AddItemToArray(a, qstat_json(&s->few[i]));
	a = cJSON_AddArrayToObject(o, "per_day");
	for (size_t i = 0; i < s->ndays; i++) {
		cJSON *d = cJSON_CreateObject();
		cJSON_AddNumberToObject(d, "day", (double)s->days[i].day_ms);
		cJSON_AddNumberToObject(d, "searches",
					(double)s->days[i].searches);
		cJSON_AddNumberToObject(d, "zero_results",
					(double)s->days[i].zero_results);
		cJSON_AddNumberToObject(d, "clicked",
					(double)s->days[i].clicked);
		cJSON_AddItemToArray(a, d);
	}
	knytt_free(s);
	return kd_ok(r, 200, o);
}

/* ---- experiments ------------------------------------------------------ */

static const char *status_name(knytt_exp_status s)
{
	static const char *const n[] = {"scheduled", "running", "ended",
					"stopped"};
	return (unsigned)s < 4 ? n[s] : "unknown";
}

static cJSON *exp_json(const knytt_experiment *x)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", x->name);
	cJSON_AddStringToObject(o, "status", status_name(x->status));
	cJSON_AddNumberToObject(o, "start", (double)x->start_ms);
	cJSON_AddNumberToObject(o, "end", (double)x->end_ms);
	cJSON_AddNumberToObject(o, "stopped", (double)x->stopped_ms);
	cJSON_AddNumberToObject(o, "window_s", (double)(x->window_ms / 1000));
	cJSON *a = cJSON_AddArrayToObject(o, "variants");
	for (int i = 0; i < x->nvariants; i++) {
		const knytt_variant *v = &x->variants[i];
		cJSON *vo = cJSON_CreateObject();
		cJSON_AddStringToObject(vo, "name", v->name);
		cJSON_AddNumberToObject(vo, "share", v->share);
		if (v->mmr_lambda >= 0) /* the API's diversity is 1 - ... */
			cJSON_AddNumberToObject(vo, "diversity",
						(1 - v->mmr_lambda) / 0.7);
		if (v->exclude_seen >= 0)
			cJSON_AddBoolToObject(vo, "exclude_seen",
					      v->exclude_seen);
		cJSON_AddItemToArray(a, vo);
	}
	return o;
}

int h_experiments_list(kd_req *r)
{
	knytt_experiment *x = calloc(MAX_LIST, sizeof *x);
	if (!x)
		return kd_err(r, 503, "no_memory", NULL, "out of memory");
	for (int i = 0; i < MAX_LIST; i++)
		x[i].struct_size = sizeof x[i];
	int n = knytt_store_experiment_list(r->st, x, MAX_LIST);
	if (n < 0) {
		free(x);
		return kd_liberr(r, n, NULL);
	}
	cJSON *o = cJSON_CreateObject();
	cJSON *a = cJSON_AddArrayToObject(o, "experiments");
	for (int i = 0; i < n; i++)
		cJSON_AddItemToArray(a, exp_json(&x[i]));
	free(x);
	return kd_ok(r, 200, o);
}

/* One element of "variants" into @p v; 0 or an answered status. */
static int read_variant(kd_req *r, const cJSON *jv, knytt_variant *v)
{
	const char *name = NULL;
	double share = 1, div = -1;
	int seen = -1, rc;
	if (!cJSON_IsObject(jv))
		return kd_err(r, 400, "wrong_type", "variants",
			      "field variants must hold objects");
	if ((rc = kd_get_str(r, jv, "name", &name)) > 1 ||
	    (rc = kd_get_num(r, jv, "share", &share)) > 1 ||
	    (rc = kd_get_num(r, jv, "diversity", &div)) > 1 ||
	    (rc = kd_get_bool(r, jv, "exclude_seen", &seen)) > 1)
		return rc;
	if (cJSON_GetObjectItemCaseSensitive(jv, "model"))
		return kd_err(r, 422, "invalid_field", "model",
			      "knyttd serves one model per tenant: variants "
			      "differ in diversity and exclude_seen");
	if (!name || strlen(name) >= sizeof v->name)
		return kd_err(r, 422, "invalid_field", "name",
			      "each variant needs a name of 1..32 bytes");
	if (div != -1 && !(div >= 0 && div <= 1))
		return kd_err(r, 422, "out_of_range", "diversity",
			      "field diversity must be in 0..1");
	snprintf(v->name, sizeof v->name, "%s", name);
	v->share = share;
	v->mmr_lambda = div == -1 ? -1 : 1 - 0.7 * div; /* as h_query.c */
	v->exclude_seen = seen;
	return 0;
}

int h_experiment_create(kd_req *r)
{
	const cJSON *b, *jv;
	const char *name = NULL;
	long long start = 0, end = 0, win = 0;
	int rc;
	knytt_experiment x;
	knytt_experiment_init(&x);
	if ((rc = kd_body_obj(r, &b)) ||
	    (rc = kd_get_str(r, b, "name", &name)) > 1 ||
	    (rc = kd_get_int(r, b, "start", 0, (long long)9e15, &start)) > 1 ||
	    (rc = kd_get_int(r, b, "end", 0, (long long)9e15, &end)) > 1 ||
	    (rc = kd_get_int(r, b, "window_s", 1, 90LL * 86400, &win)) > 1)
		return rc;
	if (!name || strlen(name) >= sizeof x.name)
		return kd_err(r, 422, "invalid_field", "name",
			      "field name must be 1..%d bytes",
			      KNYTT_EXP_MAX_NAME);
	const cJSON *vs = cJSON_GetObjectItemCaseSensitive(b, "variants");
	int nv = cJSON_IsArray(vs) ? cJSON_GetArraySize(vs) : -1;
	if (nv < 2 || nv > KNYTT_EXP_MAX_VARIANTS)
		return kd_err(r, 422, "invalid_field", "variants",
			      "field variants must be an array of 2..%d "
			      "variants", KNYTT_EXP_MAX_VARIANTS);
	cJSON_ArrayForEach(jv, vs)
	{
		if ((rc = read_variant(r, jv, &x.variants[x.nvariants++])))
			return rc;
	}
	snprintf(x.name, sizeof x.name, "%s", name);
	x.start_ms = start;
	x.end_ms = end;
	x.window_ms = win * 1000;
	if ((rc = knytt_store_experiment_create(r->st, &x, NULL)) < 0)
		return kd_liberr(r, rc, NULL);
	knytt_experiment got;
	got.struct_size = sizeof got;
	if ((rc = knytt_store_experiment_get(r->st, x.name, &got)) < 0)
		return kd_liberr(r, rc, NULL);
	return kd_ok(r, 201, exp_json(&got));
}

static cJSON *ab_json(const knytt_ab_stat *s)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "n", (double)s->n);
	cJSON_AddNumberToObject(o, "successes", (double)s->x);
	cJSON_AddNumberToObject(o, "rate", s->rate);
	cJSON_AddNumberToObject(o, "ci_low", s->lo);
	cJSON_AddNumberToObject(o, "ci_high", s->hi);
	add_num(o, "lift", s->lift);
	add_num(o, "p_value", s->p);
	cJSON_AddBoolToObject(o, "small_sample", s->small);
	return o;
}

int h_experiment_get(kd_req *r)
{
	knytt_exp_report rep;
	int rc = knytt_store_experiment_report(r->st, r->param[0], &rep);
	if (rc == KNYTT_ENOTFOUND || rc == KNYTT_EINVAL)
		return kd_err(r, 404, "not_found", "name",
			      "no experiment '%.100s'", r->param[0]);
	if (rc < 0)
		return kd_liberr(r, rc, NULL);
	cJSON *o = exp_json(&rep.exp);
	cJSON_AddBoolToObject(o, "small_sample", rep.small_sample);
	if (rep.small_sample)
		cJSON_AddStringToObject(o, "note",
					"an arm has fewer than 10 successes "
					"or failures: the z-test and "
					"intervals are rough");
	cJSON *a = cJSON_AddArrayToObject(o, "report");
	for (int v = 0; v < rep.nvariants; v++) {
		cJSON *vo = cJSON_CreateObject();
		cJSON_AddStringToObject(vo, "variant", rep.v[v].name);
		cJSON_AddNumberToObject(vo, "exposures",
					(double)rep.v[v].exposures);
		cJSON_AddNumberToObject(vo, "users", (double)rep.v[v].users);
		cJSON_AddItemToObject(vo, "ctr", ab_json(&rep.v[v].ctr));
		cJSON_AddItemToObject(vo, "conversion",
				      ab_json(&rep.v[v].conversion));
		cJSON_AddItemToArray(a, vo);
	}
	return kd_ok(r, 200, o);
}

int h_experiment_stop(kd_req *r)
{
	int rc = knytt_store_experiment_stop(r->st, r->param[0], 0);
	if (rc == KNYTT_ENOTFOUND || rc == KNYTT_EINVAL)
		return kd_err(r, 404, "not_found", "name",
			      "no experiment '%.100s'", r->param[0]);
	if (rc == KNYTT_ESTATE)
		return kd_err(r, 409, "conflict", "name", "%s",
			      knytt_errmsg());
	if (rc < 0)
		return kd_liberr(r, rc, NULL);
	knytt_experiment x;
	x.struct_size = sizeof x;
	if ((rc = knytt_store_experiment_get(r->st, r->param[0], &x)) < 0)
		return kd_liberr(r, rc, NULL);
	return kd_ok(r, 200, exp_json(&x));
}

/* ---- serving inside an experiment -------------------------------------- */

/* The body's "experiment": NULL (none), or the name; *st an answered
 * status on a bad value. */
static const char *exp_of(kd_req *r, const cJSON *b, int *st)
{
	const char *x = NULL;
	int rc = kd_get_str(r, b, "experiment", &x);
	*st = rc > 1 ? rc : 0;
	return rc == 1 && x && *x ? x : NULL;
}

/* The variant's part of an answer; a stopped or ended experiment serves
 * as if none was named (the page may still name it). */
static int exp_done(kd_req *r, int n, const char *x,
		    const knytt_exp_served *sv, cJSON **xo, int *st)
{
	if (n == KNYTT_ENOTFOUND) {
		*st = kd_err(r, 404, "not_found", "experiment", "%s",
			     knytt_errmsg());
		return n;
	}
	if (n >= 0) {
		*xo = cJSON_CreateObject();
		cJSON_AddStringToObject(*xo, "name", x);
		cJSON_AddStringToObject(*xo, "variant", sv->name);
	}
	return n;
}

int kd_exp_recommend(kd_req *r, const cJSON *b, knytt_engine *e,
		     const char *user, size_t k, const knytt_filter *f,
		     const knytt_rec_options *opt, knytt_result *res,
		     cJSON **xo, int *st)
{
	knytt_exp_served sv;
	const char *x = exp_of(r, b, st);
	*xo = NULL;
	if (*st)
		return KNYTT_EINVAL;
	int n = x ? knytt_engine_recommend_exp(e, x, user, k, f, opt, res, &sv)
		  : KNYTT_ESTATE;
	if (n == KNYTT_ESTATE)
		return knytt_engine_recommend(e, user, k, f, opt, res);
	return exp_done(r, n, x, &sv, xo, st);
}

int kd_exp_search(kd_req *r, const cJSON *b, knytt_engine *e,
		  const char *text, const float *vec, uint32_t dim, size_t k,
		  const knytt_filter *f, const char *user, knytt_result *res,
		  uint64_t *log_id, cJSON **xo, int *st)
{
	knytt_exp_served sv;
	const char *x = exp_of(r, b, st);
	*xo = NULL;
	if (*st)
		return KNYTT_EINVAL;
	int n = x && user ? knytt_engine_search_exp(e, x, text, vec, dim, k, f,
						    user, res, log_id, &sv)
			  : KNYTT_ESTATE;
	if (n == KNYTT_ESTATE)
		return knytt_engine_search(e, text, vec, dim, k, f, user, res,
					   log_id);
	return exp_done(r, n, x, &sv, xo, st);
}
