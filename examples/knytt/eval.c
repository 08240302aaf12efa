/*
 * eval.c -- `knytt eval`: how good are the recommendations on this
 * store's own data?
 *
 * Protocol (leave-last-item-out, full ranking): every user with at least
 * two distinct items has the item of their latest interaction held out
 * (all of that user's interactions with it go to the test matrix, so the
 * answer cannot leak through an earlier view); an ALS model with the
 * given settings is trained on the rest; then for each such user every
 * item they did not meet in training is scored and the held-out item
 * ranked among them (knytt_eval_full).  HR@k = share of users whose
 * held-out item is in their top k, NDCG@k = mean 1/log2(rank + 2) of
 * those hits, Recall@k = HR@k here (one relevant item per user), and
 * coverage = distinct items in any top k / items.  A most-popular
 * baseline (items ranked by training interactions) is scored the same
 * way, so the numbers have an anchor.
 *
 * This trains a separate model: the model the engine serves (trained on
 * everything by `knytt train`) is neither used nor changed, since
 * evaluating it on interactions it was trained on would flatter it.
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct ev_row {
	uint64_t user, item;
	int64_t ts;
	float value;
	uint8_t type;
} ev_row;

typedef struct ev_data {
	ev_row *rows;
	size_t n, cap;
	int oom;
} ev_data;

static unsigned type_code(const char *t)
{
	if (!strcmp(t, "view"))
		return KNYTT_EVENT_VIEW;
	if (!strcmp(t, "click"))
		return KNYTT_EVENT_CLICK;
	if (!strcmp(t, "add_to_cart"))
		return KNYTT_EVENT_ADD_TO_CART;
	if (!strcmp(t, "purchase"))
		return KNYTT_EVENT_PURCHASE;
	if (!strcmp(t, "rating"))
		return KNYTT_EVENT_RATING;
	if (!strcmp(t, "favorite"))
		return 5;
	return 6; /* custom */
}

static int collect(const knytt_interaction *ix, void *ctx)
{
	ev_data *d = ctx;
	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 4096;
		ev_row *p = realloc(d->rows, cap * sizeof *p);
		if (!p) {
			d->oom = 1;
			return 1;
		}
		d->rows = p;
		d->cap = cap;
	}
	ev_row *r = &d->rows[d->n++];
	r->user = ix->user_id;
	r->item = ix->item_id;
	r->ts = ix->ts_ms;
	r->type = (uint8_t)type_code(ix->type);
	r->value = ix->has_value ? (float)ix->value : 1.0f;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Sorted unique ids -> dense index by binary search. */
static uint32_t dense(const uint64_t *ids, size_t n, uint64_t id)
{
	const uint64_t *p = bsearch(&id, ids, n, sizeof *ids, cmp_u64);
	return (uint32_t)(p - ids);
}

static size_t uniq(uint64_t *v, size_t n)
{
	qsort(v, n, sizeof *v, cmp_u64);
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (m == 0 || v[m - 1] != v[i])
			v[m++] = v[i];
	return m;
}

typedef struct pop_ctx {
	float *pop;
	uint32_t nitems;
} pop_ctx;

static int pop_scorer(void *ctx, uint32_t user, const uint32_t *items,
		      size_t n, float *out)
{
	const pop_ctx *p = ctx;
	(void)user;
	for (size_t i = 0; i < n; i++)
		out[i] = p->pop[items ? items[i] : i];
	return 0;
}

typedef struct ev_prog {
	bar b;
} ev_prog;

static int on_als_progress(void *ctx, const knytt_progress *p)
{
	ev_prog *e = ctx;
	bar_draw(&e->b, (double)p->epoch / p->epochs, p->eta,
		 "ALS epoch %u/%u  loss %.5g", p->epoch, p->epochs, p->loss);
	return cli_interrupted();
}

static void add_metrics(cJSON *j, const char *name, const knytt_metrics *m)
{
	cJSON *o = cJSON_AddObjectToObject(j, name);
	cJSON_AddNumberToObject(o, "hr", m->hr);
	cJSON_AddNumberToObject(o, "ndcg", m->ndcg);
	cJSON_AddNumberToObject(o, "recall", m->recall);
	cJSON_AddNumberToObject(o, "coverage", m->coverage);
}

/* ---------------------------------------------------------------------
 * --protocol time: a global time split (knytt_timesplit).
 *
 * Every interaction before the cut trains, every one after it tests, for
 * all users at once; the cut holds out the latest --holdout share of the
 * interactions (10% by default).  Ranked over every item with the user's
 * training items excluded: Recall@k, NDCG@k (k 20 by default) and
 * coverage, for plain ALS (and LightGCN with --model lightgcn|all) next
 * to the anchors of the same run: popularity over the whole training
 * period and over the last 7 and 14 days before the cut.  Users first
 * seen after the cut are cold: no personal model can rank for them, so
 * they are left out of every row (the header counts them).
 * ------------------------------------------------------------------- */

/* "10%", "0.1" -> 0.1; -1 when neither. */
static double parse_holdout(const char *s)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || !isfinite(v))
		return -1;
	if (*end == '%' && end[1] == '\0')
		v /= 100;
	else if (*end != '\0')
		return -1;
	return v > 0 && v < 1 ? v : -1;
}

typedef struct tp_row {
	char name[48];
	knytt_metrics m;
	double secs; /* training time, < 0 for anchors */
} tp_row;

typedef struct tp_cfg {
	unsigned long k, dim, epochs, threads;
	double reg, alpha, holdout;
	int lightgcn, als;
	int epochs_set; /* --epochs given: LightGCN too (default 30) */
} tp_cfg;

/* Splits the rows at the holdout; train and test get the CLI's type
 * weights.  Returns 0 or a KNYTT_E* code. */
static int tp_split(const ev_data *d, const uint64_t *uids, size_t nu,
		    const uint64_t *iids, size_t ni, double holdout,
		    knytt_timesplit **s, knytt_matrix **tr, knytt_matrix **te)
{
	static const float weights[] = {1, 2, 4, 8, 1, 4, 1};
	int rc;
	if ((rc = knytt_timesplit_create(s)) ||
	    (rc = knytt_timesplit_set_holdout(*s, holdout)) ||
	    (rc = knytt_matrix_create(tr)) || (rc = knytt_matrix_create(te)))
		return rc;
	for (unsigned t = 0; t < 7; t++) {
		knytt_matrix_set_weight(*tr, t, weights[t]);
		knytt_matrix_set_weight(*te, t, weights[t]);
	}
	for (size_t i = 0; i < d->n && rc == 0; i++) {
		const ev_row *r = &d->rows[i];
		rc = knytt_timesplit_add(*s, dense(uids, nu, r->user),
					 dense(iids, ni, r->item), r->type,
					 r->value < 0 ? 0 : r->value, r->ts);
	}
	if (rc == 0)
		rc = knytt_timesplit_split(*s, *tr, *te);
	if (rc == 0)
		rc = knytt_matrix_build(*tr, (uint32_t)nu, (uint32_t)ni);
	if (rc == 0)
		rc = knytt_matrix_build(*te, (uint32_t)nu, (uint32_t)ni);
	return rc;
}

/* The three popularity anchors into rows[0..3). */
static int tp_anchors(const knytt_timesplit *s, const knytt_matrix *tr,
		      const knytt_matrix *te, uint32_t ni, unsigned k,
		      tp_row *rows)
{
	static const struct {
		const char *name;
		int64_t days;
	} a[] = {{"popularity", 0},
		 {"recent popularity 14 days", 14},
		 {"recent popularity 7 days", 7}};
	float *pop = malloc((ni ? ni : 1) * sizeof *pop);
	if (!pop)
		return KNYTT_ENOMEM;
	int rc = 0;
	for (int j = 0; j < 3 && rc == 0; j++) {
		rc = knytt_timesplit_popularity(s, a[j].days * 86400000LL, ni,
						pop);
		knytt_item_scores sc = {pop, ni};
		if (rc == 0)
			rc = knytt_eval_full(tr, te, k, knytt_static_scorer, &sc,
					     &rows[j].m);
		snprintf(rows[j].name, sizeof rows[j].name, "%s", a[j].name);
		rows[j].secs = -1;
	}
	free(pop);
	return rc;
}

static int on_lgc_progress(void *ctx, const knytt_progress *p)
{
	ev_prog *e = ctx;
	bar_draw(&e->b, (double)p->epoch / p->epochs, p->eta,
		 "LightGCN epoch %u/%u  loss %.5g", p->epoch, p->epochs,
		 p->loss);
	return cli_interrupted();
}

/* Trains and scores the personal models into rows; returns the count
 * or a negative KNYTT_E* code. */
static int tp_models(const tp_cfg *c, const knytt_matrix *tr,
		     const knytt_matrix *te, ev_prog *prog, tp_row *rows)
{
	int n = 0, rc = 0;
	if (c->als) {
		knytt_als *als = NULL;
		double t0 = cli_now();
		if ((rc = knytt_als_create(&als)) ||
		    (rc = knytt_als_set_factors(als, (unsigned)c->dim)) ||
		    (rc = knytt_als_set_iterations(als, (unsigned)c->epochs)) ||
		    (rc = knytt_als_set_reg(als, (float)c->reg)) ||
		    (rc = knytt_als_set_alpha(als, (float)c->alpha)) ||
		    (rc = knytt_als_set_threads(als, (unsigned)c->threads)) ||
		    (rc = knytt_als_set_progress(als, on_als_progress, prog)) ||
		    (rc = knytt_als_train(als, tr))) {
			knytt_als_close(als);
			return rc;
		}
		rows[n].secs = cli_now() - t0;
		snprintf(rows[n].name, sizeof rows[n].name,
			 "als (dim %lu, %lu epochs)", c->dim, c->epochs);
		rc = knytt_eval_full(tr, te, (unsigned)c->k, knytt_als_scorer,
				     als, &rows[n].m);
		knytt_als_close(als);
		if (rc)
			return rc;
		n++;
	}
	if (c->lightgcn) {
		knytt_lightgcn *g = NULL;
		double t0 = cli_now();
		if ((rc = knytt_lightgcn_create(&g)) ||
		    (rc = knytt_lightgcn_set_dim(g, (unsigned)c->dim)) ||
		    (rc = knytt_lightgcn_set_threads(g, (unsigned)c->threads)) ||
		    (c->epochs_set &&
		     (rc = knytt_lightgcn_set_epochs(g, (unsigned)c->epochs))) ||
		    (rc = knytt_lightgcn_set_progress(g, on_lgc_progress,
						      prog)) ||
		    (rc = knytt_lightgcn_train(g, tr))) {
			knytt_lightgcn_close(g);
			return rc;
		}
		rows[n].secs = cli_now() - t0;
		snprintf(rows[n].name, sizeof rows[n].name,
			 "lightgcn (dim %lu, 3 layers)", c->dim);
		rc = knytt_eval_full(tr, te, (unsigned)c->k,
				     knytt_lightgcn_scorer, g, &rows[n].m);
		knytt_lightgcn_close(g);
		if (rc)
			return rc;
		n++;
	}
	return n;
}

static void tp_print(const cli *cl, const tp_cfg *c,
		     const knytt_timesplit_info *in, size_t ni,
		     const tp_row *rows, int nrows)
{
	if (cl->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "protocol",
					"time split, full ranking");
		cJSON_AddNumberToObject(j, "k", (double)c->k);
		cJSON_AddNumberToObject(j, "holdout", c->holdout);
		cJSON_AddNumberToObject(j, "cut_ms", (double)in->cut);
		cJSON_AddNumberToObject(j, "items", (double)ni);
		cJSON_AddNumberToObject(j, "train_interactions",
					(double)in->train);
		cJSON_AddNumberToObject(j, "test_interactions",
					(double)in->test);
		cJSON_AddNumberToObject(j, "test_users", (double)in->users_test);
		cJSON_AddNumberToObject(j, "cold_users", (double)in->users_cold);
		cJSON_AddNumberToObject(j, "cold_interactions",
					(double)in->test_cold);
		cJSON_AddNumberToObject(j, "seen_interactions",
					(double)in->test_seen);
		cJSON *ms = cJSON_AddArrayToObject(j, "models");
		for (int r = 0; r < nrows; r++) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "name", rows[r].name);
			cJSON_AddBoolToObject(o, "anchor", rows[r].secs < 0);
			cJSON_AddNumberToObject(o, "recall", rows[r].m.recall);
			cJSON_AddNumberToObject(o, "ndcg", rows[r].m.ndcg);
			cJSON_AddNumberToObject(o, "coverage",
						rows[r].m.coverage);
			if (rows[r].secs >= 0)
				cJSON_AddNumberToObject(o, "train_seconds",
							rows[r].secs);
			cJSON_AddItemToArray(ms, o);
		}
		char *t = cJSON_Print(j);
		if (t)
			puts(t);
		cJSON_free(t);
		cJSON_Delete(j);
		return;
	}
	time_t cs = (time_t)(in->cut / 1000);
	char when[32] = "?";
	struct tm tmv;
	if (gmtime_r(&cs, &tmv))
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tmv);
	printf("time split at %s UTC (latest %.0f%% held out), full ranking "
	       "over %zu items\n",
	       when, c->holdout * 100, ni);
	printf("train %zu interactions; test %zu interactions of %zu users "
	       "(left out: %zu of %zu cold users, %zu already met)\n",
	       in->train, in->test, in->users_test, in->test_cold,
	       in->users_cold, in->test_seen);
	char h1[16], h2[16];
	snprintf(h1, sizeof h1, "Recall@%lu", c->k);
	snprintf(h2, sizeof h2, "NDCG@%lu", c->k);
	printf("%-30s %9s %9s %9s %8s\n", "model", h1, h2, "coverage",
	       "train_s");
	for (int r = 0; r < nrows; r++) {
		char ts[16] = "anchor";
		if (rows[r].secs >= 0)
			snprintf(ts, sizeof ts, "%.2f", rows[r].secs);
		printf("%-30s %9.4f %9.4f %9.4f %8s\n", rows[r].name,
		       rows[r].m.recall, rows[r].m.ndcg, rows[r].m.coverage, ts);
	}
}

/* Reads every interaction and maps ids to dense ones. */
static int tp_read(knytt_store *st, ev_data *d, uint64_t **uids, size_t *nu,
		   uint64_t **iids, size_t *ni)
{
	int rc = knytt_store_interactions_since(st, 0, collect, d);
	if (d->oom)
		rc = KNYTT_ENOMEM;
	if (rc < 0)
		return rc;
	*uids = malloc((d->n + 1) * sizeof **uids);
	*iids = malloc((d->n + 1) * sizeof **iids);
	if (!*uids || !*iids)
		return KNYTT_ENOMEM;
	for (size_t i = 0; i < d->n; i++) {
		(*uids)[i] = d->rows[i].user;
		(*iids)[i] = d->rows[i].item;
	}
	*nu = uniq(*uids, d->n);
	*ni = uniq(*iids, d->n);
	return 0;
}

static int eval_time(cli *cl, const tp_cfg *c)
{
	knytt_store *st;
	int rc;
	if ((rc = cli_store_open(cl, 0, &st)))
		return rc;
	ev_data d = {0};
	uint64_t *uids = NULL, *iids = NULL;
	size_t nu = 0, ni = 0;
	knytt_timesplit *s = NULL;
	knytt_matrix *tr = NULL, *te = NULL;
	tp_row rows[5];
	int ex = EXIT_ERR, n = 3;
	knytt_timesplit_info in;
	ev_prog prog;
	bar_start(&prog.b, cl);
	bar_draw(&prog.b, -1, -1, "reading interactions");
	rc = tp_read(st, &d, &uids, &nu, &iids, &ni);
	if (rc == 0 && d.n == 0) {
		bar_done(&prog.b);
		fprintf(stderr, "knytt: eval: no interactions: nothing to "
				"evaluate (import interactions first)\n");
		goto out;
	}
	if (rc == 0)
		rc = tp_split(&d, uids, nu, iids, ni, c->holdout, &s, &tr, &te);
	if (rc == 0)
		rc = knytt_timesplit_info_get(s, &in);
	if (rc == 0)
		rc = tp_anchors(s, tr, te, (uint32_t)ni, (unsigned)c->k, rows);
	if (rc == 0) {
		int m = tp_models(c, tr, te, &prog, rows + 3);
		rc = m < 0 ? m : 0;
		n += m > 0 ? m : 0;
	}
	bar_done(&prog.b);
	if (rc < 0) {
		ex = cli_liberr(rc, "eval");
		goto out;
	}
	tp_print(cl, c, &in, ni, rows, n);
	ex = EXIT_OK;
out:
	knytt_timesplit_close(s);
	knytt_matrix_close(tr);
	knytt_matrix_close(te);
	free(uids);
	free(iids);
	free(d.rows);
	knytt_store_close(st);
	return ex;
}

/* The options of --protocol time, then the evaluation. */
static int cmd_eval_time(cli *c, args *a)
{
	int rc;
	/* ALS: train's defaults, as for --protocol last */
	tp_cfg tc = {.k = 20,
		     .dim = KNYTT_ENGINE_DEFAULT_DIM,
		     .epochs = KNYTT_ENGINE_DEFAULT_ALS_ITERATIONS,
		     .reg = KNYTT_ENGINE_DEFAULT_ALS_REG,
		     .alpha = KNYTT_ENGINE_DEFAULT_ALS_ALPHA,
		     .holdout = 0.1,
		     .als = 1};
	const char *h = arg_get(a, "holdout"), *mo = arg_get(a, "model");
	if (h && (tc.holdout = parse_holdout(h)) < 0)
		return cli_usage("eval",
				 "--holdout must be a share in (0, 1) "
				 "or a percentage like 10%%, not '%s'",
				 h);
	if (mo && !strcmp(mo, "lightgcn"))
		tc.als = 0, tc.lightgcn = 1;
	else if (mo && !strcmp(mo, "all"))
		tc.lightgcn = 1;
	else if (mo && strcmp(mo, "als"))
		return cli_usage("eval", "--model must be als, "
					 "lightgcn or all, not '%s'",
				 mo);
	if ((rc = arg_uint(a, "k", 1, 1000, &tc.k)) ||
	    (rc = arg_uint(a, "dim", 1, 1024, &tc.dim)) ||
	    (rc = arg_uint(a, "epochs", 1, 10000, &tc.epochs)) ||
	    (rc = arg_uint(a, "threads", 1, 256, &tc.threads)) ||
	    (rc = arg_double(a, "reg", &tc.reg)) ||
	    (rc = arg_double(a, "alpha", &tc.alpha)))
		return rc;
	if (tc.reg < 0 || tc.alpha < 0)
		return cli_usage("eval", "--reg and --alpha must be "
					 ">= 0");
	tc.epochs_set = arg_has(a, "epochs");
	return eval_time(c, &tc);
}

int cmd_eval(cli *c, args *a)
{
	const char *proto = arg_get(a, "protocol");
	if (proto && strcmp(proto, "time") && strcmp(proto, "last"))
		return cli_usage("eval",
				 "--protocol must be 'time' or 'last', not '%s'",
				 proto);
	int timep = proto && !strcmp(proto, "time");
	/* train's defaults (the engine's), so eval measures what train
	 * would serve */
	unsigned long k = 10, dim = KNYTT_ENGINE_DEFAULT_DIM,
		      epochs = KNYTT_ENGINE_DEFAULT_ALS_ITERATIONS, threads = 0;
	double reg = KNYTT_ENGINE_DEFAULT_ALS_REG,
	       alpha = KNYTT_ENGINE_DEFAULT_ALS_ALPHA;
	int rc;
	if (timep)
		return cmd_eval_time(c, a);
	if (arg_has(a, "holdout"))
		return cli_usage("eval", "--holdout needs --protocol time");
	if ((rc = arg_uint(a, "k", 1, 1000, &k)) ||
	    (rc = arg_uint(a, "dim", 1, 1024, &dim)) ||
	    (rc = arg_uint(a, "epochs", 1, 10000, &epochs)) ||
	    (rc = arg_uint(a, "threads", 1, 256, &threads)) ||
	    (rc = arg_double(a, "reg", &reg)) ||
	    (rc = arg_double(a, "alpha", &alpha)))
		return rc;
	if (arg_has(a, "model") && strcmp(arg_get(a, "model"), "als"))
		return cli_usage("eval", "only --model als can be evaluated");
	if (reg < 0 || alpha < 0)
		return cli_usage("eval", "--reg and --alpha must be >= 0");

	knytt_store *st;
	if ((rc = cli_store_open(c, 0, &st)))
		return rc;
	ev_data d = {0};
	uint64_t *uids = NULL, *iids = NULL;
	uint32_t *last = NULL;
	knytt_matrix *train = NULL, *test = NULL;
	knytt_als *als = NULL;
	float *pop = NULL;
	int ex = EXIT_ERR;
	ev_prog prog;
	bar_start(&prog.b, c);
	bar_draw(&prog.b, -1, -1, "reading interactions");

	rc = knytt_store_interactions_since(st, 0, collect, &d);
	if (d.oom)
		rc = KNYTT_ENOMEM;
	if (rc < 0) {
		bar_done(&prog.b);
		ex = cli_liberr(rc, "eval");
		goto out;
	}
	uids = malloc((d.n + 1) * sizeof *uids);
	iids = malloc((d.n + 1) * sizeof *iids);
	if (!uids || !iids) {
		bar_done(&prog.b);
		ex = cli_liberr(KNYTT_ENOMEM, "eval");
		goto out;
	}
	for (size_t i = 0; i < d.n; i++) {
		uids[i] = d.rows[i].user;
		iids[i] = d.rows[i].item;
	}
	size_t nu = uniq(uids, d.n), ni = uniq(iids, d.n);
	/* the latest interaction of each user (rows come in (ts, id)
	 * order, so the last one seen wins) */
	last = malloc((nu + 1) * sizeof *last);
	if (!last) {
		bar_done(&prog.b);
		ex = cli_liberr(KNYTT_ENOMEM, "eval");
		goto out;
	}
	for (size_t u = 0; u < nu; u++)
		last[u] = UINT32_MAX;
	for (size_t i = 0; i < d.n; i++) {
		uint32_t u = dense(uids, nu, d.rows[i].user);
		last[u] = dense(iids, ni, d.rows[i].item);
	}
	/* users whose every interaction is with that one item have nothing
	 * to learn from: they stay in training only */
	uint8_t *multi = calloc(nu + 1, 1);
	if (!multi) {
		bar_done(&prog.b);
		ex = cli_liberr(KNYTT_ENOMEM, "eval");
		goto out;
	}
	for (size_t i = 0; i < d.n; i++) {
		uint32_t u = dense(uids, nu, d.rows[i].user);
		if (dense(iids, ni, d.rows[i].item) != last[u])
			multi[u] = 1;
	}
	static const float weights[] = {1, 2, 4, 8, 1, 4, 1};
	if ((rc = knytt_matrix_create(&train)) ||
	    (rc = knytt_matrix_create(&test))) {
		free(multi);
		bar_done(&prog.b);
		ex = cli_liberr(rc, "eval");
		goto out;
	}
	for (unsigned t = 0; t < 7; t++) {
		knytt_matrix_set_weight(train, t, weights[t]);
		knytt_matrix_set_weight(test, t, weights[t]);
	}
	size_t ntest = 0;
	for (size_t i = 0; i < d.n && rc == 0; i++) {
		const ev_row *r = &d.rows[i];
		uint32_t u = dense(uids, nu, r->user);
		uint32_t it = dense(iids, ni, r->item);
		int held = multi[u] && it == last[u];
		rc = knytt_matrix_add(held ? test : train, u, it, r->type,
				      r->value < 0 ? 0 : r->value, r->ts);
	}
	for (size_t u = 0; u < nu; u++)
		ntest += multi[u];
	free(multi);
	if (rc == 0)
		rc = knytt_matrix_build(train, (uint32_t)nu, (uint32_t)ni);
	if (rc == 0)
		rc = knytt_matrix_build(test, (uint32_t)nu, (uint32_t)ni);
	if (rc < 0) {
		bar_done(&prog.b);
		ex = cli_liberr(rc, "eval");
		goto out;
	}
	if (ntest == 0) {
		bar_done(&prog.b);
		ex = cli_error(EXIT_ERR, "KNYTT_ENOTFOUND", NULL,
			       "eval: no user has two distinct items: nothing "
			       "to evaluate (import interactions first)");
		goto out;
	}

	double t0 = cli_now();
	if ((rc = knytt_als_create(&als)) ||
	    (rc = knytt_als_set_factors(als, (unsigned)dim)) ||
	    (rc = knytt_als_set_iterations(als, (unsigned)epochs)) ||
	    (rc = knytt_als_set_reg(als, (float)reg)) ||
	    (rc = knytt_als_set_alpha(als, (float)alpha)) ||
	    (rc = knytt_als_set_threads(als, (unsigned)threads)) ||
	    (rc = knytt_als_set_progress(als, on_als_progress, &prog)) ||
	    (rc = knytt_als_train(als, train))) {
		bar_done(&prog.b);
		ex = cli_liberr(rc, "eval");
		goto out;
	}
	double train_s = cli_now() - t0;
	bar_draw(&prog.b, -1, -1, "ranking %zu items for %zu users", ni,
		 ntest);
	knytt_metrics m_als, m_pop;
	rc = knytt_eval_full(train, test, (unsigned)k, knytt_als_scorer, als,
			     &m_als);
	if (rc == 0) {
		pop = calloc(ni, sizeof *pop);
		if (!pop) {
			rc = KNYTT_ENOMEM;
		} else {
			for (uint32_t u = 0; u < nu; u++) {
				const uint32_t *its;
				int n = knytt_matrix_row(train, u, &its, NULL);
				for (int i = 0; i < n; i++)
					pop[its[i]] += 1;
			}
			pop_ctx pc = {pop, (uint32_t)ni};
			rc = knytt_eval_full(train, test, (unsigned)k,
					     pop_scorer, &pc, &m_pop);
		}
	}
	bar_done(&prog.b);
	if (rc < 0) {
		ex = cli_liberr(rc, "eval");
		goto out;
	}
	if (c->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "protocol",
					"leave-last-item-out, full ranking");
		cJSON_AddNumberToObject(j, "k", (double)k);
		cJSON_AddNumberToObject(j, "users", (double)m_als.users);
		cJSON_AddNumberToObject(j, "items", (double)ni);
		cJSON_AddNumberToObject(j, "interactions", (double)d.n);
		cJSON_AddNumberToObject(j, "dim", (double)dim);
		cJSON_AddNumberToObject(j, "epochs", (double)epochs);
		cJSON_AddNumberToObject(j, "reg", reg);
		cJSON_AddNumberToObject(j, "alpha", alpha);
		cJSON_AddNumberToObject(j, "train_seconds", train_s);
		add_metrics(j, "als", &m_als);
		add_metrics(j, "popular", &m_pop);
		char *t = cJSON_Print(j);
		if (t)
			puts(t);
		cJSON_free(t);
		cJSON_Delete(j);
	} else {
		printf("leave-last-item-out, full ranking over %zu items: %zu "
		       "users, %zu interactions\n",
		       ni, m_als.users, d.n);
		char h1[16], h2[16], h3[16];
		snprintf(h1, sizeof h1, "HR@%lu", k);
		snprintf(h2, sizeof h2, "NDCG@%lu", k);
		snprintf(h3, sizeof h3, "Recall@%lu", k);
		printf("%-28s %9s %9s %9s %9s\n", "model", h1, h2, h3,
		       "coverage");
		char name[64];
		snprintf(name, sizeof name, "als (dim %lu, %lu epochs)", dim,
			 epochs);
		printf("%-28s %9.4f %9.4f %9.4f %9.4f\n", name, m_als.hr,
		       m_als.ndcg, m_als.recall, m_als.coverage);
		printf("%-28s %9.4f %9.4f %9.4f %9.4f\n", "most popular",
		       m_pop.hr, m_pop.ndcg, m_pop.recall, m_pop.coverage);
		if (!c->quiet)
			printf("(ALS trained in %.2f s)\n", train_s);
	}
	ex = EXIT_OK;
out:
	knytt_als_close(als);
	knytt_matrix_close(train);
	knytt_matrix_close(test);
	free(pop);
	free(last);
	free(uids);
	free(iids);
	free(d.rows);
	knytt_store_close(st);
	return ex;
}
