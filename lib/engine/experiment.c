/*
 * experiment.c -- serving inside an A/B experiment: the shopper's
 * variant picks the engine (by model label) and the settings, the answer
 * is logged as an exposure, and the caller learns the variant.
 *
 * A variant with a model label is served by the engine registered under
 * that label (knytt_engine_set_variant_engine), e.g. a second engine with
 * another model kind on the same store; no label means this engine.  The
 * assignment and the exposure go through this engine's store connection
 * (st_lock), before and after the query, never under the engine lock.
 */
#include "engine_int.h"
#include "results.h"

#include "../store/store_int.h"

#include <stdio.h>
#include <string.h>

#define NXMODEL (int)(sizeof ((knytt_engine *)0)->xmodel / \
		      sizeof ((knytt_engine *)0)->xmodel[0])

int knytt_engine_set_variant_engine(knytt_engine *e, const char *label,
				    knytt_engine *other)
{
	if (!e)
		return knytt__err(KNYTT_EINVAL, "engine is NULL");
	if (!label || !*label || strlen(label) > 64)
		return knytt__err_field(KNYTT_EINVAL, "label",
					"field label must be 1..64 "
					"bytes");
	int free_slot = -1;
	for (int i = 0; i < NXMODEL; i++) {
		if (!strcmp(e->xmodel[i].label, label)) {
			e->xmodel[i].eng = other;
			if (!other)
				e->xmodel[i].label[0] = 0;
			return 0;
		}
		if (!e->xmodel[i].label[0] && free_slot < 0)
			free_slot = i;
	}
	if (!other)
		return 0;
	if (free_slot < 0)
		return knytt__err(KNYTT_ERANGE, "at most %d variant engines",
				  NXMODEL);
	snprintf(e->xmodel[free_slot].label, sizeof e->xmodel[0].label, "%s",
		 label);
	e->xmodel[free_slot].eng = other;
	return 0;
}

/* Assigns @p user and reads the variant; the engine that serves it in
 * *eng. */
static int pick(knytt_engine *e, const char *exp, const char *user,
		knytt_experiment *x, knytt_exp_served *sv, knytt_engine **eng)
{
	if (!e || !e->is_open)
		return knytt__err(e ? KNYTT_ESTATE : KNYTT_EINVAL,
				  "engine is NULL or not open");
	if (!user || !*user)
		return knytt__err_field(KNYTT_EINVAL, "user",
					"field user is required in "
					"an experiment");
	x->struct_size = sizeof *x;
	pthread_mutex_lock(&e->st_lock);
	int64_t now = knytt__engine_now(e);
	int v = knytt_store_experiment_get(e->st, exp, x);
	if (v == 0)
		v = knytt_store_experiment_assign(e->st, exp, user, now);
	pthread_mutex_unlock(&e->st_lock);
	if (v < 0)
		return v;
	const knytt_variant *var = &x->variants[v];
	*eng = e;
	if (var->model[0]) {
		*eng = NULL;
		for (int i = 0; i < NXMODEL; i++)
			if (!strcmp(e->xmodel[i].label, var->model))
				*eng = e->xmodel[i].eng;
		if (!*eng)
			return knytt__err(KNYTT_ENOTFOUND,
					  "variant '%s' of experiment '%s' "
					  "needs model '%s': no engine has "
					  "that label",
					  var->name, exp, var->model);
	}
	if (sv) {
		memset(sv, 0, sizeof *sv);
		sv->variant = v;
		memcpy(sv->name, var->name, sizeof sv->name);
		memcpy(sv->model, var->model, sizeof sv->model);
	}
	return v;
}

static int expose(knytt_engine *e, const char *exp, const char *user, int v,
		  const char *surface, const knytt_result *out, int n)
{
	uint64_t ids[100];
	int m = n < 100 ? n : 100;
	for (int i = 0; i < m; i++)
		ids[i] = out[i].item_id;
	pthread_mutex_lock(&e->st_lock);
	int rc = knytt_store_experiment_expose(e->st, exp, user, v, surface,
					       ids, (size_t)m,
					       knytt__engine_now(e));
	pthread_mutex_unlock(&e->st_lock);
	return rc;
}

int knytt__engine_recommend_exp(knytt_engine *e, const char *exp,
				const char *user, size_t k,
				const knytt_filter *filter,
				const knytt_rec_options *opt,
				knytt_result *out, knytt_exp_served *served)
{
	knytt_experiment x;
	knytt_engine *eng;
	int v = pick(e, exp, user, &x, served, &eng);
	if (v < 0)
		return v;
	knytt_rec_options o;
	knytt_rec_options_init(&o);
	if (opt && KNYTT__HAS(opt, knytt_rec_options, exclude_seen)) {
		o.mmr_lambda = opt->mmr_lambda;
		o.exclude_seen = opt->exclude_seen;
	}
	if (x.variants[v].mmr_lambda >= 0)
		o.mmr_lambda = x.variants[v].mmr_lambda;
	if (x.variants[v].exclude_seen >= 0)
		o.exclude_seen = x.variants[v].exclude_seen;
	int n = knytt__engine_recommend(eng, user, k, filter, &o, out);
	if (n < 0)
		return n;
	int rc = expose(e, exp, user, v, "recommend", out, n);
	return rc < 0 ? rc : n;
}

int knytt__engine_search_exp(knytt_engine *e, const char *exp,
			     const char *text, const float *vec, uint32_t dim,
			     size_t k, const knytt_filter *filter,
			     const char *user, knytt_result *out,
			     uint64_t *log_id, knytt_exp_served *served)
{
	knytt_experiment x;
	knytt_engine *eng;
	int v = pick(e, exp, user, &x, served, &eng);
	if (v < 0)
		return v;
	int n = knytt__engine_search(eng, text, vec, dim, k, filter, user,
				     out, log_id);
	if (n < 0)
		return n;
	int rc = expose(e, exp, user, v, "search", out, n);
	return rc < 0 ? rc : n;
}
