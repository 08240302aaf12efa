/*
 * ease_bench.c -- does EASE (Steck 2019, "Embarrassingly Shallow
 * Autoencoders for Sparse Data") beat recent popularity held out in
 * time, tuned the way the default pipeline tunes (tune.c)?  A measure
 * before any integration: EASE is fitted here with BLAS/LAPACK, not
 * through the library.
 *
 * For each split (time_bench's: a global time split of ML-100K, the
 * latest 30%, 20% and 10% held out; without --quick also the first half
 * of ML-1M): the latest 10% of the training ratings by time form a
 * validation period, as in tune.c; EASE is fitted on what precedes it
 * for every ridge weight lambda and history half-life of the grid, and
 * each fit's list is scored alone and blended (knytt__blend_fuse, the
 * engine's rank blend) with each of the default pipeline's popularity
 * lists (the trending counters with half-lives of 1, 7 and 14 days over
 * the last 28 days, and the all-time counts) at every weight; the best
 * setting is refitted on all the training ratings and scored once on
 * the test: NDCG@20 and Recall@20 as knytt_eval_full defines them.
 * Anchors of the same split: popularity, recent popularity 14 / 7 days.
 * --inner F drops each test period unread and makes the split again
 * inside its training ratings (the latest F held out), as time_bench
 * does: a design judged without the test.
 *
 * The model: X the user x item matrix of the ratings (each weighted by
 * 2^(-age / half-life) with a half-life, else 1), P = (X'X + lambda
 * I)^-1, B = I - P diagMat(1 / diag P) (so diag B = 0), a user's scores
 * x_u B.
 *
 * usage: ease_bench [--data DIR] [--threads N] [--quick] [--inner F]
 *                   [--windows] [--pool] [--folds N] [--no-test]
 * --windows: the windowed counts of the last 7 and 14 days are blend
 * candidates too (the engine's knytt_engine_set_tune_windows).
 * --pool: the personal list may also be a popularity list's first 50,
 * 100 or 200 items (the user's own left out) ranked by EASE, as tune.c's
 * personalised re-rank.  --folds N (1..4, default 1): the setting
 * chosen on the mean NDCG@20 of N validation periods, tune.c's and the
 * N - 1 tenths of the training ratings before it, each fitted on what
 * precedes it (less noise in the choice, N times the fits).  --no-test:
 * the validation figures alone (no test period scored).
 *
 * The grid: lambda 10, 30, 100, ..., 30000 and history half-lives of 0,
 * 1/2, 1/8 and 1/32 of the span before the validation period: 32 fits.
 * Not the library's budget of ten fits: this is a measure of what EASE
 * can do at best, not a tuning to ship.
 */
#include "../../lib/model/blend.h"
#include "../../lib/model/tune.h"
#include "../../lib/vec/topk.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ratings.h"

void openblas_set_num_threads(int);

#define K 20
#define D 40 /* knytt__blend_depth(K) */
static const float blend_w[] = {0, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f,
				0.6f, 0.8f, 1};
#define NW (int)(sizeof blend_w / sizeof blend_w[0])
/* the ridge weights tried: ML-100K chose 10-100, ML-1M's first half
 * 300-30000 */
static const double lambdas[] = {10, 30, 100, 300, 1000, 3000, 10000, 30000};
#define NL (int)(sizeof lambdas / sizeof lambdas[0])
/* history half-lives as fractions of the span before the validation
 * period (0: no decay), kept in seconds for the refit as tune.c does */
static const double hl_frac[] = {0, 0.5, 0.125, 1.0 / 32};
#define NH (int)(sizeof hl_frac / sizeof hl_frac[0])
/* --pool: the personal list may also be a popularity list's first
 * 50, 100 or 200 items ranked by EASE (tune.c's personalised re-rank) */
static const unsigned pools[] = {0, 50, 100, 200};
#define NPOOL (int)(sizeof pools / sizeof pools[0])
static int g_npool = 1;
/* --folds N: the choice on the mean of N validation periods, the
 * latest 10% of the training ratings and the N - 1 tenths before it
 * (each fitted on what precedes it); 1 is tune.c's */
static int g_folds = 1;
#define NPOP 6
static int g_npop = 4, g_windows;
static double g_inner;
static int g_no_test; /* --no-test: the validation only */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* The popularity lists as of @p cut (the engine's default ones, plus the
 * windows with --windows): order[h], count into n[h]. */
static void pop_lists(const knytt__rec *r, size_t n, uint32_t ni, int64_t cut,
		      uint32_t *order[NPOP], uint32_t cnt[NPOP])
{
	static const double hl[NPOP] = {86400, 604800, 1209600, 0, INFINITY,
					INFINITY};
	static const int64_t win[NPOP] = {28 * 86400, 28 * 86400, 28 * 86400,
					  0, 7 * 86400, 14 * 86400};
	for (int h = 0; h < g_npop; h++)
		cnt[h] = knytt__tune_poplist(r, n, ni, cut, win[h], hl[h],
					     order[h]);
}

/* The rows of the records before @p cut into x (nu x ni), each weighted
 * 2^(-(cut - t) / hl) when hl > 0, else 1. */
static void weigh(const knytt__rec *r, size_t n, uint32_t nu, uint32_t ni,
		  int64_t cut, double hl, float *x)
{
	memset(x, 0, (size_t)nu * ni * sizeof *x);
	for (size_t j = 0; j < n; j++) {
		double age = (double)(cut - r[j].time);
		if (r[j].time < cut)
			x[(size_t)r[j].user * ni + r[j].item] =
				hl > 0 ? (float)exp2(-age / hl) : 1;
	}
}

/* EASE fitted on the rows x (nu x ni): B (ni x ni) into b.  0, or -1
 * when the Gram matrix is singular. */
static int ease_fit(const float *x, uint32_t nu, uint32_t ni, double lambda,
		    float *b)
{
	cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)ni, (int)nu,
		    1, x, (int)ni, 0, b, (int)ni);
	for (uint32_t i = 0; i < ni; i++)
		b[(size_t)i * ni + i] += (float)lambda;
	if (LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'U', (int)ni, b, (int)ni) ||
	    LAPACKE_spotri(LAPACK_ROW_MAJOR, 'U', (int)ni, b, (int)ni))
		return -1;
	/* b holds P's upper triangle: mirror it, then B_ij = -P_ij / P_jj */
	for (uint32_t i = 0; i < ni; i++)
		for (uint32_t j = 0; j < i; j++)
			b[(size_t)i * ni + j] = b[(size_t)j * ni + i];
	float *d = malloc(ni * sizeof *d);
	for (uint32_t j = 0; j < ni; j++)
		d[j] = b[(size_t)j * ni + j];
	for (uint32_t i = 0; i < ni; i++)
		for (uint32_t j = 0; j < ni; j++)
			b[(size_t)i * ni + j] =
				i == j ? 0 : -b[(size_t)i * ni + j] / d[j];
	free(d);
	return 0;
}

/* The best D of scores s among items not marked, into l, best first
 * (the heap tune.c ranks with, so ties fall the same way). */
static size_t top_d(const float *s, uint32_t ni, const unsigned char *mark,
		    uint64_t *l)
{
	knytt__pair heap[D];
	knytt__topk top = {heap, 0, D};
	for (uint32_t i = 0; i < ni; i++)
		if (!mark[i] && isfinite(s[i]))
			knytt__topk_push(&top, -s[i], i);
	return knytt__topk_drain(&top, l, NULL);
}

/* NDCG@K and recall of l against rel[0..nr) (items not marked). */
static void score(const uint64_t *l, size_t n, const uint32_t *rel, int nr,
		  double *ndcg, double *recall)
{
	double dcg = 0, idcg = 0;
	int hits = 0;
	for (int q = 0; q < nr && q < K; q++)
		idcg += 1 / log2(q + 2.0);
	for (size_t p = 0; p < n && p < K; p++)
		for (int q = 0; q < nr; q++)
			if (rel[q] == l[p]) {
				dcg += 1 / log2(p + 2.0);
				hits++;
			}
	*ndcg += dcg / idcg;
	*recall += (double)hits / nr;
}

/* An evaluation set: users us[0..m) (rows of x), what each has seen
 * (seen: m x ni), the relevant items rel[j] (nr[j], all unseen). */
typedef struct evalset {
	uint32_t m, *us;
	unsigned char *seen;
	uint32_t **rel;
	int *nr;
} evalset;

/* Mean NDCG@K / Recall@K by pool p (pools[p] items of list h ranked by
 * EASE; 0: EASE over every item), popularity list h, blend weight w. */
typedef struct grid {
	double ndcg[NPOOL][NPOP][NW], recall[NPOOL][NPOP][NW];
} grid;

/* The first P items of popularity list q[0..nq) not marked, ranked by
 * s, the best D into l, as tune.c's pool_top. */
static size_t pool_top(const float *s, const uint32_t *q, uint32_t nq,
		       const unsigned char *mark, unsigned P, uint64_t *l)
{
	knytt__pair heap[D];
	knytt__topk top = {heap, 0, D};
	unsigned seen = 0;
	for (uint32_t j = 0; j < nq && seen < P; j++) {
		if (mark[q[j]])
			continue;
		seen++;
		if (isfinite(s[q[j]]))
			knytt__topk_push(&top, -s[q[j]], q[j]);
	}
	return knytt__topk_drain(&top, l, NULL);
}

/* Scores S = x_us B, every pool, list and weight into g (means). */
static void eval(const evalset *e, const float *x, const float *b,
		 uint32_t ni, uint32_t *pop[NPOP], const uint32_t npop[NPOP],
		 grid *g)
{
	float *xs = malloc((size_t)e->m * ni * sizeof *xs);
	float *s = malloc((size_t)e->m * ni * sizeof *s);
	for (uint32_t u = 0; u < e->m; u++)
		memcpy(xs + (size_t)u * ni, x + (size_t)e->us[u] * ni,
		       ni * sizeof *xs);
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)e->m,
		    (int)ni, (int)ni, 1, xs, (int)ni, b, (int)ni, 0, s,
		    (int)ni);
	memset(g, 0, sizeof *g);
	for (uint32_t u = 0; u < e->m; u++) {
		const unsigned char *mark = e->seen + (size_t)u * ni;
		const float *su = s + (size_t)u * ni;
		uint64_t pl[D], al[D], ql[D], out[K];
		size_t np = top_d(su, ni, mark, pl);
		for (int h = 0; h < g_npop; h++) {
			size_t nq = 0;
			for (uint32_t j = 0; j < npop[h] && nq < D; j++)
				if (!mark[pop[h][j]])
					ql[nq++] = pop[h][j];
			for (int p = 0; p < g_npool; p++) {
				const uint64_t *a = pl;
				size_t na = np;
				if (pools[p]) {
					na = pool_top(su, pop[h], npop[h],
						      mark, pools[p], al);
					a = al;
				}
				for (int w = 0; w < NW; w++) {
					size_t n = knytt__blend_fuse(
						a, na, ql, nq, blend_w[w], K,
						out, NULL, NULL);
					score(out, n, e->rel[u], e->nr[u],
					      &g->ndcg[p][h][w],
					      &g->recall[p][h][w]);
				}
			}
		}
	}
	for (int p = 0; p < NPOOL; p++)
		for (int h = 0; h < NPOP; h++)
			for (int w = 0; w < NW; w++) {
				g->ndcg[p][h][w] /= e->m;
				g->recall[p][h][w] /= e->m;
			}
	free(xs);
	free(s);
}

/* The evaluation set of the records at or after @p cut: users with a
 * history before it and an unseen item after it. */
static void evalset_make(const knytt__rec *r, size_t n, uint32_t nu,
			 uint32_t ni, int64_t cut, evalset *e)
{
	unsigned char *seen = calloc((size_t)nu * ni, 1);
	int *cnt = calloc(nu, sizeof *cnt), *hist = calloc(nu, sizeof *hist);
	uint32_t **rel = calloc(nu, sizeof *rel);
	for (size_t j = 0; j < n; j++)
		if (r[j].time < cut) {
			seen[(size_t)r[j].user * ni + r[j].item] = 1;
			hist[r[j].user] = 1;
		}
	for (size_t j = 0; j < n; j++)
		if (r[j].time >= cut)
			cnt[r[j].user]++;
	for (uint32_t u = 0; u < nu; u++)
		rel[u] = malloc((cnt[u] + 1) * sizeof **rel);
	memset(cnt, 0, nu * sizeof *cnt);
	for (size_t j = 0; j < n; j++) {
		uint32_t u = r[j].user, i = r[j].item;
		if (r[j].time < cut || seen[(size_t)u * ni + i])
			continue;
		int dup = 0;
		for (int q = 0; q < cnt[u]; q++)
			dup |= rel[u][q] == i;
		if (!dup)
			rel[u][cnt[u]++] = i;
	}
	e->us = malloc(nu * sizeof *e->us);
	e->seen = malloc((size_t)nu * ni);
	e->rel = calloc(nu, sizeof *e->rel);
	e->nr = calloc(nu, sizeof *e->nr);
	e->m = 0;
	for (uint32_t u = 0; u < nu; u++) {
		if (!hist[u] || cnt[u] == 0) {
			free(rel[u]);
			continue;
		}
		memcpy(e->seen + (size_t)e->m * ni, seen + (size_t)u * ni, ni);
		e->us[e->m] = u;
		e->rel[e->m] = rel[u];
		e->nr[e->m++] = cnt[u];
	}
	free(rel);
	free(cnt);
	free(hist);
	free(seen);
}

static void evalset_free(evalset *e)
{
	for (uint32_t u = 0; u < e->m; u++)
		free(e->rel[u]);
	free(e->rel);
	free(e->nr);
	free(e->us);
	free(e->seen);
}

static const char *pop_name[NPOP] = {"trend-1d", "trend-7d", "trend-14d",
				     "alltime", "win-7d", "win-14d"};

/* EASE tuned on the latest 10% of the ratings of r[0..n) before @p cut
 * (and on the --folds tenths before it), refitted on all of them and
 * scored on the ratings after @p cut. */
static void ease_split(const char *label, const knytt__rec *r, size_t n,
		       uint32_t nu, uint32_t ni, int64_t cut)
{
	size_t ntr = 0;
	int64_t *t = malloc(n * sizeof *t);
	for (size_t j = 0; j < n; j++)
		if (r[j].time < cut)
			t[ntr++] = r[j].time;
	qsort(t, ntr, sizeof *t, cmp_i64);
	/* fold f validates on [vc[f], end of fold f - 1 or cut): fold 0
	 * is tune.c's period, the others the periods before it */
	int64_t vc[4];
	for (int f = 0; f < g_folds; f++)
		vc[f] = t[(size_t)floor((double)ntr * (0.9 - 0.1 * f))];
	int64_t vcut = vc[0];
	double span = (double)(vcut - t[0]);
	free(t);
	float *x = malloc((size_t)nu * ni * sizeof *x);
	float *b = malloc((size_t)ni * ni * sizeof *b);
	uint32_t *pop[NPOP], npop[NPOP];
	uint32_t *fpop[4][NPOP], fnpop[4][NPOP];
	for (int h = 0; h < NPOP; h++)
		pop[h] = malloc(ni * sizeof *pop[h]);
	/* validation: records before cut only */
	knytt__rec *tr = malloc(n * sizeof *tr);
	size_t m = 0;
	for (size_t j = 0; j < n; j++)
		if (r[j].time < cut)
			tr[m++] = r[j];
	/* fold f's records: those before its period's end (tr sorted by
	 * nothing: filter into ftr[f]) */
	knytt__rec *ftr[4];
	size_t fm[4];
	evalset fev[4];
	for (int f = 0; f < g_folds; f++) {
		int64_t end = f ? vc[f - 1] : cut;
		ftr[f] = malloc(m * sizeof **ftr);
		fm[f] = 0;
		for (size_t j = 0; j < m; j++)
			if (tr[j].time < end)
				ftr[f][fm[f]++] = tr[j];
		for (int h = 0; h < NPOP; h++)
			fpop[f][h] = malloc(ni * sizeof **fpop[f]);
		pop_lists(ftr[f], fm[f], ni, vc[f], fpop[f], fnpop[f]);
		evalset_make(ftr[f], fm[f], nu, ni, vc[f], &fev[f]);
	}
	double best = -1;
	grid *g = malloc(sizeof *g), *gf = malloc(sizeof *gf);
	int bl = 0, bh = 0, bq = 0, bp = 0, bw = 0;
	double t0 = now_s();
	int fits = 0;
	for (int hh = 0; hh < NH; hh++)
		for (int l = 0; l < NL; l++) {
			double hl = hl_frac[hh] * span;
			int ok = 1;
			memset(g, 0, sizeof *g);
			for (int f = 0; f < g_folds && ok; f++) {
				weigh(ftr[f], fm[f], nu, ni, vc[f], hl, x);
				if (ease_fit(x, nu, ni, lambdas[l], b)) {
					ok = 0;
					break;
				}
				fits++;
				eval(&fev[f], x, b, ni, fpop[f], fnpop[f], gf);
				/* the grid is 2 NPOOL NPOP NW doubles */
				double *d = &g->ndcg[0][0][0];
				const double *e = &gf->ndcg[0][0][0];
				for (int k = 0; k < 2 * NPOOL * NPOP * NW; k++)
					d[k] += e[k] / g_folds;
			}
			if (!ok)
				continue;
			printf("#   val %-18s lambda %5g hl %5.1f d: EASE %.4f",
			       label, lambdas[l], hl / 86400,
			       g->ndcg[0][0][0]);
			for (int q = 0; q < g_npool; q++)
				for (int h = 0; h < g_npop; h++) {
					int w1 = 0;
					for (int w = 0; w < NW; w++)
						if (g->ndcg[q][h][w] >
						    g->ndcg[q][h][w1] + 1e-9)
							w1 = w;
					double v = g->ndcg[q][h][w1];
					if (q == 0)
						printf("  %s %.4f@%.1f",
						       pop_name[h], v,
						       blend_w[w1]);
					if (v > best + 1e-9) {
						best = v;
						bl = l;
						bh = hh;
						bq = q;
						bp = h;
						bw = w1;
					}
				}
			printf("\n");
		}
	double tune_s = now_s() - t0;
	for (int f = 0; f < g_folds; f++) {
		evalset_free(&fev[f]);
		free(ftr[f]);
		for (int h = 0; h < NPOP; h++)
			free(fpop[f][h]);
	}
	free(gf);
	evalset ev;
	printf("# %s: validation %d fits in %.1f s, best lambda %g hl %.3g "
	       "span, pool %u of %s w %.1f: %.4f\n",
	       label, fits, tune_s, lambdas[bl], hl_frac[bh], pools[bq],
	       pop_name[bp], blend_w[bw], best);
	if (g_no_test)
		goto out;
	/* the refit on everything before cut, scored on the test */
	double hl = hl_frac[bh] * span; /* in seconds, as tune.c keeps it */
	pop_lists(tr, m, ni, cut, pop, npop);
	evalset_make(r, n, nu, ni, cut, &ev);
	t0 = now_s();
	weigh(r, n, nu, ni, cut, hl, x);
	ease_fit(x, nu, ni, lambdas[bl], b);
	double fit_s = now_s() - t0;
	eval(&ev, x, b, ni, pop, npop, g);
	printf("%-22s %-34s %8.4f %8.4f %6.2f  lambda %g hl %.3g span\n",
	       label, "EASE alone (tuned lambda, hl)", g->recall[0][0][0],
	       g->ndcg[0][0][0], fit_s, lambdas[bl], hl_frac[bh]);
	char name[64];
	if (bq)
		snprintf(name, sizeof name, "EASE pool %u + %s w %.1f",
			 pools[bq], pop_name[bp], blend_w[bw]);
	else
		snprintf(name, sizeof name, "EASE + %s w %.1f", pop_name[bp],
			 blend_w[bw]);
	printf("%-22s %-34s %8.4f %8.4f %6.2f  (validation %.4f)\n", label,
	       name, g->recall[bq][bp][bw], g->ndcg[bq][bp][bw],
	       tune_s + fit_s, best);
	for (int h = 0; h < g_npop; h++)
		printf("%-22s %-34s %8.4f %8.4f %6s\n", label, pop_name[h],
		       g->recall[0][h][NW - 1], g->ndcg[0][h][NW - 1], "-");
	evalset_free(&ev);
out:
	free(g);
	for (int h = 0; h < NPOP; h++)
		free(pop[h]);
	free(tr);
	free(x);
	free(b);
}

static void one_split(const char *name, const ratings *d, double holdout)
{
	knytt_timesplit *s;
	knytt_matrix *tr, *te;
	if (knytt_timesplit_create(&s))
		exit(1);
	for (size_t j = 0; j < d->n; j++)
		knytt_timesplit_add(s, d->v[j].u, d->v[j].i, 0, 1, d->v[j].t);
	knytt_timesplit_set_holdout(s, holdout);
	knytt_matrix_create(&tr);
	knytt_matrix_create(&te);
	knytt_timesplit_split(s, tr, te);
	knytt_matrix_build(tr, d->nu, d->ni);
	knytt_matrix_build(te, d->nu, d->ni);
	knytt_timesplit_info in;
	knytt_timesplit_info_get(s, &in);
	char label[64];
	snprintf(label, sizeof label, "%s-%.0f%%", name, holdout * 100);
	if (g_inner > 0) {
		ratings sub = *d;
		sub.v = malloc(d->n * sizeof *sub.v);
		sub.n = 0;
		for (size_t j = 0; j < d->n; j++)
			if (d->v[j].t < in.cut)
				sub.v[sub.n++] = d->v[j];
		double f = g_inner;
		g_inner = 0;
		snprintf(label, sizeof label, "%s-%.0f%%/in", name,
			 holdout * 100);
		one_split(label, &sub, f);
		g_inner = f;
		free(sub.v);
		goto out;
	}
	printf("# %s: cut %lld, train %zu, test %zu ratings of %zu users\n",
	       label, (long long)in.cut, in.train, in.test, in.users_test);
	float *pop = malloc(d->ni * sizeof *pop);
	static const int64_t win[3] = {0, 14 * 86400, 7 * 86400};
	static const char *wl[3] = {"popularity", "recent popularity 14 d",
				    "recent popularity 7 d"};
	for (int j = 0; j < 3 && !g_no_test; j++) {
		knytt_timesplit_popularity(s, win[j], d->ni, pop);
		knytt_item_scores sc = {pop, d->ni};
		knytt_metrics m;
		knytt_eval_full(tr, te, K, knytt_static_scorer, &sc, &m);
		printf("%-22s %-34s %8.4f %8.4f %6s  anchor\n", label, wl[j],
		       m.recall, m.ndcg, "-");
	}
	free(pop);
	knytt__rec *r = malloc(d->n * sizeof *r);
	for (size_t j = 0; j < d->n; j++)
		r[j] = (knytt__rec){.user = d->v[j].u, .item = d->v[j].i,
				    .w = 1, .time = d->v[j].t};
	ease_split(label, r, d->n, d->nu, d->ni, in.cut);
	free(r);
out:
	knytt_timesplit_close(s);
	knytt_matrix_close(tr);
	knytt_matrix_close(te);
}

int main(int argc, char **argv)
{
	const char *dir = getenv("KNYTT_DATA_DIR");
	int quick = 0, threads = 2;
	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--data") && a + 1 < argc)
			dir = argv[++a];
		else if (!strcmp(argv[a], "--threads") && a + 1 < argc)
			threads = atoi(argv[++a]);
		else if (!strcmp(argv[a], "--quick"))
			quick = 1;
		else if (!strcmp(argv[a], "--folds") && a + 1 < argc)
			g_folds = atoi(argv[++a]) < 1   ? 1
				  : atoi(argv[a]) > 4 ? 4
						      : atoi(argv[a]);
		else if (!strcmp(argv[a], "--pool"))
			g_npool = NPOOL;
		else if (!strcmp(argv[a], "--no-test"))
			g_no_test = 1;
		else if (!strcmp(argv[a], "--windows"))
			g_windows = 1;
		else if (!strcmp(argv[a], "--inner") && a + 1 < argc)
			g_inner = atof(argv[++a]);
		else {
			fprintf(stderr, "usage: %s [--data DIR] [--threads N] "
					"[--quick] [--inner F] [--windows] "
					"[--pool] [--folds N] [--no-test]\n",
				argv[0]);
			return 2;
		}
	}
	g_npop = g_windows ? 6 : 4;
	openblas_set_num_threads(threads);
	if (!dir || !*dir)
		dir = "../shared/data";
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("%-22s %-34s %8s %8s %6s\n", "data", "model", "Recall",
	       "NDCG", "secs");
	each_time_split(dir, quick, one_split);
	return 0;
}
