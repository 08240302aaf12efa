/*
 * tune.c -- automatic tuning of the whole recommendation pipeline on a
 * validation period cut from the end of the training data.
 *
 * Why: measured on MovieLens held out in time, plain ALS with fixed
 * settings scores below "what was popular in the last two weeks" (ML-100K,
 * last 20% of ratings: NDCG@20 0.173 against 0.241), and shops do not
 * tune hyper-parameters.  So training tunes itself, the way a careful
 * person would, on the only data it may look at:
 *
 *  - validation period: the latest vfrac (10%) of the interactions by
 *    time.  Models fit on what precedes it and rank, for each user seen
 *    before it, every item he did not meet yet; NDCG@20 of the items he
 *    met in it (knytt_eval_full's definition, full ranking).  Users first
 *    seen in the period are left out, as in knytt_timesplit.
 *  - search: the fixed settings first, then one change at a time from the
 *    best so far (coordinate search): reg x10 and x100, alpha x4 and
 *    x16, a decay of the history's weights with a half-life of 1/2 and
 *    1/8 of the training span, and LightGCN.  A fit is scored with every
 *    blend weight and popularity list at once (blend.h): the blend needs
 *    no refit, so it costs a merge of two short lists per user.
 *  - the personalised re-rank (in->pools, off by default): the personal
 *    list may also be a popularity list's first 50, 100 or 200 items
 *    (the user's own left out) ordered by the model's scores, instead of
 *    the model's best over every item; it is blended with the same list
 *    at every weight like the other.  Also free of refits: four times
 *    the lists to merge per fit, scoring only (ML-100K, 7 fits: 0.5-0.6
 *    s of tuning became 0.7-0.9 s).  A pool wins only when strictly
 *    better than every setting without one.
 *  - budget: everything, the refit on all data included, within budget
 *    (10) times the fixed settings' fit on the validation data, counted
 *    in work units (fitcost.c: estimated from the matrix's shape and the
 *    settings, never measured).  A candidate starts only when its units
 *    and those of the refit it would need (its own or the best's, on
 *    about all/validation times the pairs) still fit in; LightGCN,
 *    whose cost is linear in its epochs, gets the most epochs (up to
 *    its 40) that fit, computed before it starts.  So the search, the
 *    choice and the report (cut_short included) are functions of the
 *    data and the settings: a busy machine takes longer, it does not
 *    choose another model (it once did: ML-1M first half, 10% split,
 *    NDCG@20 0.138 in one loaded run and 0.219 in another).  Seconds
 *    are measured for the report only.  Scoring a fit is not counted:
 *    it costs about the same for every candidate.
 *  - a sequence model (in->seq, the engine's SASRec session model), when
 *    the caller has one: after the search, the model fits the events
 *    before the cut and its list is blended into the best setting's
 *    list at each weight of knytt__tune_seq_w (seq_step).  Outside the
 *    budget: the caller asked for the model, whose training costs far
 *    more than all the fits above (ML-100K: ~10 s against ~0.5 s).
 */
#include "tune.h"

#include "blend.h"
#include "lightgcn.h"

#include "../vec/topk.h"
#include "../vec/vec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EVAL_K 20
/* the blend weights scored for every fit; 1 is popularity alone */
static const float blend_w[] = {0, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f,
				0.6f, 0.8f, 1};
#define NW (sizeof blend_w / sizeof blend_w[0])
#define NPOOL KNYTT__TUNE_NPOOL
/* the personalised re-rank's pools: the model ranks only the first P
 * items of the popularity list it is blended with (0: every item) */
const unsigned knytt__tune_pool[NPOOL] = {0, 50, 100, 200};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------ the data */

typedef struct vdata {
	const knytt__tune_in *in;
	int64_t cut, span; /* span: first to cut, time units */
	size_t ntrain;
	knytt_matrix *val;            /* events in the period, by pair */
	uint32_t *users;              /* validation users */
	size_t nusers;
	uint32_t *pop[KNYTT__TUNE_NPOP]; /* lists as of the cut */
	uint32_t npop[KNYTT__TUNE_NPOP];
	/* validation-training matrices by history decay (0, span/2,
	 * span/8), built on first use */
	knytt_matrix *tr[3];
	double tr_days[3];
} vdata;

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

typedef struct popkey {
	double s;
	uint32_t i;
} popkey;

static int cmp_pop(const void *a, const void *b)
{
	const popkey *x = a, *y = b;
	if (x->s != y->s)
		return x->s > y->s ? -1 : 1;
	return (x->i > y->i) - (x->i < y->i);
}

uint32_t knytt__tune_poplist(const knytt__rec *recs, size_t n,
			     uint32_t nitems, int64_t cut, int64_t window,
			     double hl, uint32_t *order)
{
	popkey *k = calloc(nitems ? nitems : 1, sizeof *k);
	if (!k || !order) {
		free(k);
		return 0;
	}
	for (uint32_t i = 0; i < nitems; i++)
		k[i].i = i;
	for (size_t j = 0; j < n; j++) {
		const knytt__rec *r = &recs[j];
		if (r->time >= cut || r->item >= nitems)
			continue;
		if (!(hl > 0)) { /* all time: the engine's popularity */
			k[r->item].s += 1;
			continue;
		}
		if (window > 0 && cut - r->time > window)
			continue;
		k[r->item].s += r->w * exp2(-(double)(cut - r->time) / hl);
	}
	qsort(k, nitems, sizeof *k, cmp_pop);
	uint32_t m = 0;
	while (m < nitems && k[m].s > 0) {
		order[m] = k[m].i;
		m++;
	}
	free(k);
	return m;
}

/* The cut: the time at position floor(n (1 - vfrac)) of the sorted
 * times; the span from the first time to it.  -1 without memory. */
static int find_cut(vdata *v, double vfrac)
{
	const knytt__tune_in *in = v->in;
	int64_t *t = malloc(in->n * sizeof *t);
	if (!t)
		return -1;
	for (size_t j = 0; j < in->n; j++)
		t[j] = in->recs[j].time;
	qsort(t, in->n, sizeof *t, cmp_i64);
	size_t pos = (size_t)floor((double)in->n * (1.0 - vfrac));
	if (pos >= in->n)
		pos = in->n - 1;
	v->cut = t[pos];
	v->span = v->cut - t[0];
	free(t);
	return 0;
}

/* The validation matrix and its users: seen before the cut, with an item
 * after it that they had not met before it. */
static int val_build(vdata *v)
{
	const knytt__tune_in *in = v->in;
	int rc = knytt_matrix_create(&v->val);
	for (size_t j = 0; j < in->n && !rc; j++)
		if (in->recs[j].time >= v->cut)
			rc = knytt_matrix_add(v->val, in->recs[j].user,
					      in->recs[j].item, 0, 1, 0);
		else
			v->ntrain++;
	if (!rc)
		rc = knytt_matrix_build(v->val, in->nusers, in->nitems);
	if (rc)
		return rc;
	v->users = malloc((in->nusers ? in->nusers : 1) * sizeof *v->users);
	if (!v->users)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	return KNYTT_OK;
}

/* The validation-training matrix with history decay of @p days. */
static int train_matrix(vdata *v, double days, knytt_matrix **out)
{
	for (int j = 0; j < 3; j++)
		if (v->tr[j] && v->tr_days[j] == days) {
			*out = v->tr[j];
			return KNYTT_OK;
		}
	int slot = 0;
	while (slot < 3 && v->tr[slot])
		slot++;
	if (slot == 3)
		return knytt__err(KNYTT_ESTATE, "tune: too many matrices");
	const knytt__tune_in *in = v->in;
	knytt_matrix *m;
	int rc = knytt_matrix_create(&m);
	if (!rc && days > 0)
		rc = knytt_matrix_set_decay(m, days * (double)in->day, v->cut);
	for (size_t j = 0; j < in->n && !rc; j++) {
		const knytt__rec *r = &in->recs[j];
		if (r->time < v->cut)
			rc = knytt_matrix_add(m, r->user, r->item, 0, r->w,
					      r->time);
	}
	if (!rc)
		rc = knytt_matrix_build(m, in->nusers, in->nitems);
	if (rc) {
		knytt_matrix_close(m);
		return rc;
	}
	v->tr[slot] = m;
	v->tr_days[slot] = days;
	*out = m;
	return KNYTT_OK;
}

/* Users with a row before the cut and an unmet item after it. */
static void val_users(vdata *v, const knytt_matrix *tr)
{
	v->nusers = 0;
	for (uint32_t u = 0; u < v->in->nusers; u++) {
		const uint32_t *vi, *ti;
		int nv = knytt_matrix_row(v->val, u, &vi, NULL);
		int nt = knytt_matrix_row(tr, u, &ti, NULL);
		if (nv <= 0 || nt <= 0)
			continue;
		/* both rows ascending: is some val item not in train? */
		int a = 0, b = 0, fresh = 0;
		while (a < nv && !fresh) {
			while (b < nt && ti[b] < vi[a])
				b++;
			fresh = b >= nt || ti[b] != vi[a];
			a++;
		}
		if (fresh)
			v->users[v->nusers++] = u;
	}
}

static void vdata_free(vdata *v)
{
	knytt_matrix_close(v->val);
	free(v->users);
	for (int j = 0; j < KNYTT__TUNE_NPOP; j++)
		free(v->pop[j]);
	for (int j = 0; j < 3; j++)
		knytt_matrix_close(v->tr[j]);
}

/* ------------------------------------------------------------- scoring */

/* A fitted model as the engine serves it: ALS users by their factors
 * (the exact solve a fold-in repeats), LightGCN users by the fold-in of
 * their items (knytt_lightgcn_fold_in), as the engine computes them. */
typedef struct fitted {
	knytt_als *als;
	knytt_lightgcn *g;
	float *Y; /* LightGCN item embeddings, nitems * dim */
	unsigned dim;
} fitted;

/* Scores of every item for user @p u into s (ni floats). */
static int personal(const fitted *f, const knytt_matrix *tr, uint32_t u,
		    uint32_t ni, float *uvec, float *s)
{
	if (f->als)
		return knytt_als_score(f->als, u, NULL, ni, s);
	const uint32_t *it;
	int n = knytt_matrix_row(tr, u, &it, NULL);
	int rc = knytt_lightgcn_fold_in(f->g, n > 0 ? (size_t)n : 0, it, uvec);
	if (rc)
		return rc;
	const knytt__vec_ops *ops = knytt__vec();
	for (uint32_t i = 0; i < ni; i++)
		s[i] = ops->dot(uvec, f->Y + (size_t)i * f->dim, f->dim);
	return KNYTT_OK;
}

/* NDCG@EVAL_K and recall of list l[0..n) against the sorted items
 * rel[0..nr) less those the user met (mark 1). */
static void score_list(const uint64_t *l, size_t n, const uint32_t *rel,
		       int nr, const unsigned char *mark, double *ndcg,
		       double *recall)
{
	int nt = 0;
	for (int q = 0; q < nr; q++)
		nt += mark[rel[q]] != 1;
	double dcg = 0, idcg = 0;
	size_t hits = 0;
	for (int q = 0; q < nt && q < EVAL_K; q++)
		idcg += 1.0 / log2((double)q + 2);
	for (size_t p = 0; p < n && p < EVAL_K; p++) {
		uint32_t id = (uint32_t)l[p];
		int lo = 0, hi = nr;
		while (lo < hi) {
			int mid = (lo + hi) / 2;
			if (rel[mid] < id)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo < nr && rel[lo] == id) {
			dcg += 1.0 / log2((double)p + 2);
			hits++;
		}
	}
	*ndcg += idcg > 0 ? dcg / idcg : 0;
	*recall += nt ? (double)hits / nt : 0;
}

/* Marks user @p u's items before the cut in mark[] (1; the caller
 * clears them) and writes his personal top D among the rest into pl. */
static int personal_top(const vdata *v, const fitted *f,
			const knytt_matrix *tr, uint32_t u, float *s,
			float *uvec, unsigned char *mark, knytt__pair *heap,
			uint64_t *pl, size_t *np)
{
	uint32_t ni = v->in->nitems;
	int rc = personal(f, tr, u, ni, uvec, s);
	if (rc)
		return rc;
	const uint32_t *ti = NULL;
	int nt = knytt_matrix_row(tr, u, &ti, NULL);
	for (int q = 0; q < nt; q++)
		mark[ti[q]] = 1;
	knytt__topk top = {heap, 0, knytt__blend_depth(EVAL_K)};
	for (uint32_t i = 0; i < ni; i++)
		if (!mark[i] && isfinite(s[i]))
			knytt__topk_push(&top, -s[i], i);
	*np = knytt__topk_drain(&top, pl, NULL);
	return KNYTT_OK;
}

/* The first @p D items of popularity list @p h not marked, into ql. */
static size_t pop_top(const vdata *v, int h, const unsigned char *mark,
		      size_t D, uint64_t *ql)
{
	size_t nq = 0;
	for (uint32_t j = 0; j < v->npop[h] && nq < D; j++)
		if (!mark[v->pop[h][j]])
			ql[nq++] = v->pop[h][j];
	return nq;
}

/*
 * The personalised re-rank's list: the first @p P items of popularity
 * list @p h not marked (the pool), ordered by the model's scores s, the
 * best D into al; ties keep the list's order.  So the model is asked
 * about every item of the pool, also those below its own top D over
 * all items, which the plain blend never sees.
 */
static size_t pool_top(const vdata *v, int h, unsigned P, const float *s,
		       const unsigned char *mark, knytt__pair *heap, size_t D,
		       uint64_t *al)
{
	knytt__topk top = {heap, 0, D};
	unsigned seen = 0;
	for (uint32_t j = 0; j < v->npop[h] && seen < P; j++) {
		uint32_t i = v->pop[h][j];
		if (mark[i])
			continue;
		seen++;
		if (isfinite(s[i]))
			knytt__topk_push(&top, -s[i], i);
	}
	return knytt__topk_drain(&top, al, NULL);
}

typedef struct grid {
	double ndcg[KNYTT__TUNE_NPOP][NPOOL][NW];
	double recall[KNYTT__TUNE_NPOP][NPOOL][NW];
} grid;

/* Scores one user into g: his personal top D (over every item, and
 * over each pool of each popularity list), each popularity list's top D
 * among the items he has not met, every blend of the two.  al: room for
 * D ids. */
static int eval_user(const vdata *v, const fitted *f, const knytt_matrix *tr,
		     uint32_t u, float *s, float *uvec, unsigned char *mark,
		     knytt__pair *heap, uint64_t *pl, uint64_t *ql,
		     uint64_t *al, uint64_t *out, grid *g)
{
	size_t D = knytt__blend_depth(EVAL_K), np = 0;
	const uint32_t *ti = NULL, *vi = NULL;
	int nt = knytt_matrix_row(tr, u, &ti, NULL);
	int nv = knytt_matrix_row(v->val, u, &vi, NULL);
	int rc = personal_top(v, f, tr, u, s, uvec, mark, heap, pl, &np);
	if (rc)
		return rc;
	for (int h = 0; h < v->in->npop; h++) {
		size_t nq = pop_top(v, h, mark, D, ql);
		for (int p = 0; p < (v->in->pools ? NPOOL : 1); p++) {
			const uint64_t *a = pl;
			size_t na = np;
			if (knytt__tune_pool[p] > 0) {
				na = pool_top(v, h, knytt__tune_pool[p], s,
					      mark, heap, D, al);
				a = al;
			}
			for (size_t w = 0; w < NW; w++) {
				size_t n = knytt__blend_fuse(
					a, na, ql, nq, blend_w[w], EVAL_K,
					out, NULL, NULL);
				score_list(out, n, vi, nv, mark,
					   &g->ndcg[h][p][w],
					   &g->recall[h][p][w]);
			}
		}
	}
	for (int q = 0; q < nt; q++)
		mark[ti[q]] = 0;
	return KNYTT_OK;
}

/* Scores a fit with every blend: fills g with the means over users. */
static int eval_fit(const vdata *v, const fitted *f, const knytt_matrix *tr,
		    grid *g)
{
	uint32_t ni = v->in->nitems;
	size_t D = knytt__blend_depth(EVAL_K);
	float *s = malloc((size_t)ni * sizeof *s);
	float *uvec = malloc((f->dim ? f->dim : 1) * sizeof *uvec);
	unsigned char *mark = calloc(ni ? ni : 1, 1);
	knytt__pair *heap = malloc(D * sizeof *heap);
	uint64_t *pl = malloc(D * sizeof *pl), *ql = malloc(D * sizeof *ql);
	uint64_t *al = malloc(D * sizeof *al);
	uint64_t *out = malloc(EVAL_K * sizeof *out);
	int rc = KNYTT_OK;
	memset(g, 0, sizeof *g);
	if (!s || !uvec || !mark || !heap || !pl || !ql || !al || !out)
		rc = knytt__err(KNYTT_ENOMEM, "out of memory");
	for (size_t j = 0; j < v->nusers && !rc; j++)
		rc = eval_user(v, f, tr, v->users[j], s, uvec, mark, heap, pl,
			       ql, al, out, g);
	for (int h = 0; h < KNYTT__TUNE_NPOP && !rc; h++)
		for (int p = 0; p < NPOOL; p++)
			for (size_t w = 0; w < NW; w++) {
				g->ndcg[h][p][w] /= (double)v->nusers;
				g->recall[h][p][w] /= (double)v->nusers;
			}
	free(s);
	free(uvec);
	free(mark);
	free(heap);
	free(pl);
	free(ql);
	free(al);
	free(out);
	return rc;
}

/* -------------------------------------------------------------- fitting */

int knytt__tune_fit(const knytt__tune_cfg *c, const knytt_matrix *m,
		    unsigned threads, knytt_progress_fn fn, void *ctx,
		    knytt_als **als, knytt_lightgcn **lgc)
{
	int rc;
	*als = NULL;
	*lgc = NULL;
	if (c->kind == KNYTT_MODEL_LIGHTGCN) {
		knytt_lightgcn *g = NULL;
		if ((rc = knytt_lightgcn_create(&g)) ||
		    (rc = knytt_lightgcn_set_dim(g, c->dim)) ||
		    (rc = knytt_lightgcn_set_layers(g, c->layers)) ||
		    (rc = knytt_lightgcn_set_reg(g, c->reg)) ||
		    (rc = knytt_lightgcn_set_learning_rate(g, c->lr)) ||
		    (rc = knytt_lightgcn_set_batch(g, c->batch)) ||
		    (rc = knytt_lightgcn_set_epochs(g, c->iters)) ||
		    (rc = knytt_lightgcn_set_threads(g, threads)) ||
		    (rc = knytt_lightgcn_set_progress(g, fn, ctx)))
			goto lgc_out;
		rc = knytt_lightgcn_train(g, m);
lgc_out:
		/* a cancelled model keeps its finished epochs: the caller
		 * decides whether they are of use */
		if (rc && !(rc == KNYTT_ECANCELED && g && g->trained)) {
			knytt_lightgcn_close(g);
			return rc;
		}
		*lgc = g;
		return rc;
	}
	knytt_als *a = NULL;
	if ((rc = knytt_als_create(&a)) ||
	    (rc = knytt_als_set_factors(a, c->dim)) ||
	    (rc = knytt_als_set_reg(a, c->reg)) ||
	    (rc = knytt_als_set_alpha(a, c->alpha)) ||
	    (rc = knytt_als_set_iterations(a, c->iters)) ||
	    (rc = knytt_als_set_threads(a, threads)) ||
	    (rc = knytt_als_set_progress(a, fn, ctx)) ||
	    (rc = knytt_als_train(a, m))) {
		knytt_als_close(a);
		return rc;
	}
	*als = a;
	return KNYTT_OK;
}

/* ------------------------------------------------------------- search */

typedef struct search {
	vdata *v;
	const knytt__tune_in *in;
	knytt__tune_out *out;
	double t0;         /* start, seconds: reported only */
	double ratio;      /* all interactions / validation training ones */
	/* the budget in work units (fitcost.c), never in seconds: the
	 * search must not depend on the machine's load */
	double limit;      /* 0: not yet (before the fixed settings' fit) */
	double spent;      /* units of the fits done on validation data */
	double best_refit; /* units of refitting the best so far on all */
	double nnz;        /* validation-training pairs: one count for
			      every history decay (it changes weights) */
	double best_score;
	unsigned planned;
} search;

/* The units of fitting @p c on the validation data and of refitting it
 * on all the data (about ratio times the pairs). */
static void cost_of(const search *s, const knytt__tune_cfg *c, double *val,
		    double *refit)
{
	*val = knytt__fit_units(c, s->nnz, s->in->nusers, s->in->nitems);
	*refit = knytt__fit_units(c, s->nnz * s->ratio, s->in->nusers,
				  s->in->nitems);
}

/* Whether a fit of @p val units, and the refit of @p refit units it may
 * need (or the best's), still fit in the budget. */
static int affordable(const search *s, double val, double refit)
{
	return s->spent + val + fmax(s->best_refit, refit) <= s->limit;
}

/* LightGCN's cost is linear in its epochs: the most epochs of @p c (up
 * to c->iters) that fit in the budget with their refit, computed before
 * the fit so that the clock never decides; 0 when not even one does. */
static unsigned lgc_epochs_within(const search *s, knytt__tune_cfg c)
{
	unsigned want = c.iters;
	c.iters = 1;
	double val1, refit1;
	cost_of(s, &c, &val1, &refit1);
	double room = s->limit - s->spent;
	/* e (val1 + refit1) <= room when this refit is the larger one,
	 * else e val1 <= room - best_refit; take the smaller bound and
	 * check it (rounding) */
	double e1 = floor(room / (val1 + refit1));
	double e2 = floor((room - s->best_refit) / val1);
	double e = fmin(e1 > 0 ? e1 : 0, e2 > 0 ? e2 : 0);
	if (e > want)
		e = want;
	while (e > 0 && !affordable(s, e * val1, e * refit1))
		e--;
	return (unsigned)e;
}

/* Fits @p c on the validation data and scores it; updates the best.
 * Returns 0, or a KNYTT_E* code. */
/* Whether candidate @p c runs within the budget, LightGCN's epochs cut
 * to what fits; its units into val and refit.  A candidate left out,
 * or cut, marks the search cut short. */
static int admit(search *s, knytt__tune_cfg *c, double *val, double *refit)
{
	if (c->kind == KNYTT_MODEL_LIGHTGCN) {
		unsigned e = lgc_epochs_within(s, *c);
		if (e < c->iters)
			s->out->cut_short = 1;
		if (e == 0)
			return 0;
		c->iters = e;
	}
	cost_of(s, c, val, refit);
	if (!affordable(s, *val, *refit)) {
		s->out->cut_short = 1;
		return 0;
	}
	return 1;
}

/* LightGCN's item factors copied out for scoring (ALS: nothing). */
static int fitted_ready(fitted *f, const knytt__tune_cfg *c, uint32_t ni)
{
	if (!f->g)
		return KNYTT_OK;
	f->dim = c->dim;
	f->Y = malloc((size_t)ni * c->dim * sizeof *f->Y);
	if (!f->Y)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	return knytt_lightgcn_item_factors(f->g, 0, ni, f->Y);
}

static void fitted_free(fitted *f)
{
	knytt_als_close(f->als);
	knytt_lightgcn_close(f->g);
	free(f->Y);
}

static int try_cfg(search *s, knytt__tune_cfg c)
{
	double val = 0, refit = 0;
	if (s->limit > 0 && !admit(s, &c, &val, &refit))
		return KNYTT_OK; /* a candidate beyond the budget */
	knytt_matrix *tr = NULL;
	int rc = train_matrix(s->v, c.hist_days, &tr);
	if (rc)
		return rc;
	if (s->v->nusers == 0)
		val_users(s->v, tr);
	if (s->v->nusers == 0)
		return knytt__err(KNYTT_EINVAL,
				  "tune: no user of the validation period "
				  "(the latest %.0f%% of %zu interactions) "
				  "was seen before it: too little data to "
				  "tune on",
				  100 * (s->in->vfrac > 0 ? s->in->vfrac : 0.1),
				  s->in->n);
	if (s->limit == 0) { /* the first fit: the fixed settings */
		s->nnz = (double)knytt_matrix_nnz(tr);
		cost_of(s, &c, &val, &refit);
		double b = s->in->budget > 0 ? s->in->budget : 10;
		s->limit = b * val;
		s->out->base_units = val;
	}
	fitted f = {0};
	double t = now_s();
	rc = knytt__tune_fit(&c, tr, s->in->threads, NULL, NULL, &f.als,
			     &f.g);
	double secs = now_s() - t;
	if (rc)
		return rc;
	s->spent += val;
	s->out->tried++;
	if (s->out->tried == 1)
		s->out->base_seconds = secs;
	rc = fitted_ready(&f, &c, s->in->nitems);
	grid g;
	if (!rc)
		rc = eval_fit(s->v, &f, tr, &g);
	fitted_free(&f);
	if (rc)
		return rc;
	if (s->out->tried == 1) {
		s->out->base_ndcg = g.ndcg[0][0][0];
		for (int h = 0; h < s->in->npop; h++)
			s->out->pop_ndcg[h] = g.ndcg[h][0][NW - 1];
	}
	/* only a strictly better score wins: on a tie the earlier setting
	 * (the fixed one, every item rather than a pool, a smaller blend)
	 * stays */
	for (int p = 0; p < (s->in->pools ? NPOOL : 1); p++)
		for (int h = 0; h < s->in->npop; h++)
			for (size_t w = 0; w < NW; w++) {
				double x = g.ndcg[h][p][w];
				if (x > s->out->pool_ndcg[p])
					s->out->pool_ndcg[p] = x;
				if (!(x > s->best_score + 1e-9))
					continue;
				s->best_score = x;
				s->out->ndcg = x;
				s->out->recall = g.recall[h][p][w];
				c.blend = blend_w[w];
				c.pop = h;
				c.pool = knytt__tune_pool[p];
				s->out->best = c;
				s->best_refit = refit;
			}
	if (s->in->progress &&
	    s->in->progress(s->in->ctx,
			    &(knytt_progress){.epoch = s->out->tried,
					      .epochs = s->planned,
					      .loss = s->best_score,
					      .elapsed = now_s() - s->t0}))
		return knytt__err(KNYTT_ECANCELED, "tune: cancelled");
	return KNYTT_OK;
}

/* The candidates after the fixed settings, each one change from the
 * best so far (s->out->best), in order; returns how many were made
 * (cands has room for 8). */
static int next_cands(const search *s, int step, knytt__tune_cfg *cands)
{
	const knytt__tune_in *in = s->in;
	knytt__tune_cfg b = s->out->best, c;
	b.blend = 0;
	b.pop = 0;
	b.pool = 0;
	int n = 0;
	double span_days = (double)s->v->span / (double)in->day;
	switch (step) {
	case 0: /* regularisation */
		for (int j = 1; j <= 2 && b.kind == KNYTT_MODEL_ALS; j++) {
			c = b;
			c.reg = (in->base.reg > 0 ? in->base.reg : 1) *
				(j == 1 ? 10.0f : 100.0f);
			cands[n++] = c;
		}
		break;
	case 1: /* confidence scale */
		for (int j = 1; j <= 2 && b.kind == KNYTT_MODEL_ALS; j++) {
			c = b;
			c.alpha = (in->base.alpha > 0 ? in->base.alpha : 1) *
				  (j == 1 ? 4.0f : 16.0f);
			cands[n++] = c;
		}
		break;
	case 2: /* recency: decay of the history's weights */
		/* (LightGCN ignores weights: nothing to decay) */
		for (int j = 1; j <= 2 && span_days > 1 &&
				b.kind == KNYTT_MODEL_ALS;
		     j++) {
			c = b;
			c.hist_days = span_days / (j == 1 ? 2 : 8);
			cands[n++] = c;
		}
		break;
	case 3: /* the other model kind */
		c = b;
		if (in->fixed_kind)
			break;
		if (b.kind == KNYTT_MODEL_ALS && !in->no_lightgcn) {
			/* the settings benchmarks/train chose for ML-100K in
			 * time (graph_bench --time), at the engine's dim */
			c.kind = KNYTT_MODEL_LIGHTGCN;
			c.layers = 2;
			c.reg = 1e-4f;
			c.lr = 0.01f;
			c.batch = 4096;
			c.iters = 40;
			cands[n++] = c;
		} else if (b.kind == KNYTT_MODEL_LIGHTGCN) {
			c.kind = KNYTT_MODEL_ALS;
			c.reg = 10;
			c.alpha = 1;
			c.iters = KNYTT_ENGINE_DEFAULT_ALS_ITERATIONS;
			cands[n++] = c;
		}
		break;
	}
	return n;
}

/* ---------------------------------------------------- the session list */

/* 1: the sequence model's list alone */
const float knytt__tune_seq_w[KNYTT__TUNE_NSEQ] = {0,	 0.1f, 0.2f, 0.3f,
						   0.4f, 0.6f, 0.8f, 1};

/* One validation user for seq_step: the best setting's list (personal
 * and popularity blended as recommend blends them, D deep), then that
 * list blended with the sequence model's at every weight into g. */
static int seq_user(const search *s, const fitted *f, const knytt_matrix *tr,
		    uint32_t u, float *sc, float *uvec, unsigned char *mark,
		    knytt__pair *heap, uint64_t *buf, double *g)
{
	const vdata *v = s->v;
	const knytt__tune_cfg *c = &s->out->best;
	size_t D = knytt__blend_depth(EVAL_K), np = 0, nq, nf, ns = 0;
	uint64_t *pl = buf, *ql = buf + D, *fl = buf + 2 * D,
		 *sl = buf + 3 * D, *out = buf + 4 * D;
	const uint32_t *ti = NULL, *vi = NULL;
	int nt = knytt_matrix_row(tr, u, &ti, NULL);
	int nv = knytt_matrix_row(v->val, u, &vi, NULL);
	int rc = personal_top(v, f, tr, u, sc, uvec, mark, heap, pl, &np);
	if (!rc) {
		if (c->pool > 0) /* the personalised re-rank's list */
			np = pool_top(v, c->pop, c->pool, sc, mark, heap, D,
				      pl);
		nq = pop_top(v, c->pop, mark, D, ql);
		nf = c->blend > 0 ? knytt__blend_fuse(pl, np, ql, nq, c->blend,
						      D, fl, NULL, NULL)
				  : np;
		if (c->blend <= 0)
			memcpy(fl, pl, np * sizeof *fl);
		rc = s->in->seq->list(s->in->seq->ctx, u, mark, D, sl, &ns);
		for (size_t w = 0; w < KNYTT__TUNE_NSEQ && !rc; w++) {
			double rec = 0;
			size_t n = knytt__blend_fuse(fl, nf, sl, ns,
						     knytt__tune_seq_w[w],
						     EVAL_K, out, NULL, NULL);
			score_list(out, n, vi, nv, mark, &g[w], &rec);
		}
	}
	for (int q = 0; q < nt; q++)
		mark[ti[q]] = 0;
	return rc;
}

/*
 * The sequence model's weight (in->seq), after the search: the model
 * fits on the events before the cut, the best setting is fitted once
 * more on the validation data (the search keeps no fit), and each
 * validation user's list is scored blended with the model's list at
 * every weight of knytt__tune_seq_w.  A weight wins only when it beats
 * 0 (no sequence model) strictly.  This fit is outside the budget: the
 * sequence model is asked for by a setting, and its own training costs
 * far more than any fit here.
 */
static int seq_step(search *s)
{
	const knytt__tune_in *in = s->in;
	knytt__tune_out *o = s->out;
	double t0 = now_s();
	int rc = in->seq->fit(in->seq->ctx, s->v->cut);
	if (rc == KNYTT_EINVAL)
		return KNYTT_OK; /* no model to blend: weight 0 */
	if (rc)
		return rc;
	knytt_matrix *tr = NULL;
	fitted f = {0};
	if ((rc = train_matrix(s->v, o->best.hist_days, &tr)) ||
	    (rc = knytt__tune_fit(&o->best, tr, in->threads, NULL, NULL,
				  &f.als, &f.g)) ||
	    (rc = fitted_ready(&f, &o->best, in->nitems))) {
		fitted_free(&f);
		return rc;
	}
	size_t D = knytt__blend_depth(EVAL_K);
	uint32_t ni = in->nitems;
	float *sc = malloc((size_t)ni * sizeof *sc);
	float *uvec = malloc((f.dim ? f.dim : 1) * sizeof *uvec);
	unsigned char *mark = calloc(ni ? ni : 1, 1);
	knytt__pair *heap = malloc(D * sizeof *heap);
	uint64_t *buf = malloc((4 * D + EVAL_K) * sizeof *buf);
	double g[KNYTT__TUNE_NSEQ] = {0};
	if (!sc || !uvec || !mark || !heap || !buf)
		rc = knytt__err(KNYTT_ENOMEM, "out of memory");
	for (size_t j = 0; j < s->v->nusers && !rc; j++)
		rc = seq_user(s, &f, tr, s->v->users[j], sc, uvec, mark, heap,
			      buf, g);
	if (!rc && s->v->nusers > 0) {
		int best = 0;
		o->seq_ok = 1;
		for (int w = 0; w < KNYTT__TUNE_NSEQ; w++) {
			o->seq_ndcg[w] = g[w] / (double)s->v->nusers;
			if (o->seq_ndcg[w] > o->seq_ndcg[best] + 1e-9)
				best = w;
		}
		o->seq_w = knytt__tune_seq_w[best];
	}
	fitted_free(&f);
	free(sc);
	free(uvec);
	free(mark);
	free(heap);
	free(buf);
	o->seq_seconds = now_s() - t0;
	return rc;
}

static int check_in(const knytt__tune_in *in, knytt__tune_out *out)
{
	if (!in || !out || (!in->recs && in->n))
		return knytt__err(KNYTT_EINVAL, "tune: NULL argument");
	if (in->n < 2 || in->nusers == 0 || in->nitems == 0)
		return knytt__err(KNYTT_EINVAL,
				  "tune: %zu interactions of %u users and %u "
				  "items: too little data to tune on",
				  in->n, in->nusers, in->nitems);
	if (in->day <= 0 || in->npop < 1 || in->npop > KNYTT__TUNE_NPOP)
		return knytt__err(KNYTT_EINVAL,
				  "tune: day must be > 0 and npop 1..%d",
				  KNYTT__TUNE_NPOP);
	if (in->base.kind != KNYTT_MODEL_ALS &&
	    in->base.kind != KNYTT_MODEL_LIGHTGCN)
		return knytt__err(KNYTT_EINVAL,
				  "tune: base.kind must be ALS or LightGCN");
	if (in->vfrac < 0 || in->vfrac >= 1 || in->budget < 0)
		return knytt__err(KNYTT_EINVAL,
				  "tune: vfrac must be in [0, 1), budget >= 0");
	return KNYTT_OK;
}

int knytt__tune(const knytt__tune_in *in, knytt__tune_out *out)
{
	int rc = check_in(in, out);
	if (rc)
		return rc;
	memset(out, 0, sizeof *out);
	vdata v = {.in = in};
	search s = {.v = &v, .in = in, .out = out, .best_score = -1,
		    .planned = 8};
	s.t0 = now_s();
	if (find_cut(&v, in->vfrac > 0 ? in->vfrac : 0.1) != 0) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = val_build(&v)))
		goto out;
	if (v.ntrain == 0) {
		rc = knytt__err(KNYTT_EINVAL,
				"tune: every interaction falls at the latest "
				"time: no period to validate on");
		goto out;
	}
	s.ratio = (double)in->n / (double)v.ntrain;
	for (int h = 0; h < in->npop; h++) {
		v.pop[h] = malloc(((size_t)in->nitems) * sizeof *v.pop[h]);
		if (!v.pop[h]) {
			rc = knytt__err(KNYTT_ENOMEM, "out of memory");
			goto out;
		}
		int64_t win = in->pop_win[h] > 0 ? in->pop_win[h]
						 : in->pop_window;
		v.npop[h] = knytt__tune_poplist(in->recs, in->n, in->nitems,
						v.cut, win, in->pop_hl[h],
						v.pop[h]);
	}
	knytt__tune_cfg base = in->base;
	base.blend = 0;
	base.pop = 0;
	base.pool = 0;
	if ((rc = try_cfg(&s, base)))
		goto out;
	for (int step = 0; step < 4 && !rc; step++) {
		knytt__tune_cfg c[8];
		int n = next_cands(&s, step, c);
		for (int j = 0; j < n && !rc; j++)
			rc = try_cfg(&s, c[j]);
	}
	if (!rc && in->seq && out->tried)
		rc = seq_step(&s);
out:
	out->npop = in->npop;
	out->npool = in->pools ? NPOOL : 1;
	if (out->tried && (out->best.blend > 0 || out->best.pool > 0) &&
	    isinf(in->pop_hl[out->best.pop]))
		out->window_days = (double)in->pop_win[out->best.pop] /
				   (double)in->day;
	out->cut = v.cut;
	out->val_users = v.nusers;
	out->val_interactions = v.val ? knytt_matrix_nnz(v.val) : 0;
	out->units = s.spent + s.best_refit;
	out->budget_units = s.limit;
	out->seconds = now_s() - s.t0;
	vdata_free(&v);
	return rc;
}

int knytt__tune_json(const knytt__tune_out *o, char *buf, size_t cap)
{
	const knytt__tune_cfg *c = &o->best;
	int lgc = c->kind == KNYTT_MODEL_LIGHTGCN;
	char pops[KNYTT__TUNE_NPOP * 12 + 4] = "";
	char pools[NPOOL * 12 + 4] = "";
	size_t l = 0;
	for (int h = 0; h < o->npop && h < KNYTT__TUNE_NPOP; h++)
		l += (size_t)snprintf(pops + l, sizeof pops - l, "%s%.4f",
				      h ? "," : "", o->pop_ndcg[h]);
	l = 0;
	for (int p = 0; p < o->npool && p < NPOOL; p++)
		l += (size_t)snprintf(pools + l, sizeof pools - l, "%s%.4f",
				      p ? "," : "", o->pool_ndcg[p]);
	return snprintf(
		buf, cap,
		"{\"kind\":\"%s\",\"dim\":%u,\"reg\":%g,\"alpha\":%g,"
		"\"iterations\":%u,\"layers\":%u,"
		"\"history_half_life_days\":%.4g,\"blend\":%g,"
		"\"popularity_list\":%d,\"popularity_window_days\":%.4g,"
		"\"pool\":%u,\"validation\":{\"ndcg20\":%.4f,"
		"\"recall20\":%.4f,\"fixed_ndcg20\":%.4f,"
		"\"popularity_ndcg20\":[%s],\"pool_ndcg20\":[%s],"
		"\"users\":%zu,"
		"\"interactions\":%zu,\"cut\":%lld},\"fits\":%u,"
		"\"cut_short\":%s,\"units\":{\"fixed_fit\":%.4g,"
		"\"used\":%.4g,\"budget\":%.4g},"
		"\"fixed_fit_seconds\":%.3f,\"seconds\":%.3f}",
		lgc ? "lightgcn" : "als", c->dim, c->reg, lgc ? 0 : c->alpha,
		c->iters, lgc ? c->layers : 0, c->hist_days, c->blend, c->pop,
		o->window_days, c->pool, o->ndcg, o->recall, o->base_ndcg,
		pops, pools, o->val_users, o->val_interactions,
		(long long)o->cut, o->tried,
		o->cut_short ? "true" : "false", o->base_units, o->units,
		o->budget_units, o->base_seconds, o->seconds);
}
