/*
 * quant_ceiling.c -- the recall@10 that codes of 8 bits per dimension
 * allow on a data set, whatever the graph: the base rows are coded,
 * decoded, and searched exactly (knytt_exact_knn for 40 candidates, then
 * re-ranked in double), against the data set's ground truth.
 *
 * Usage: quant_ceiling --dataset NAME [--data-dir DIR] [--cache-dir DIR]
 *                      [--nq N] [--cells K] [--codes shared,perdim,...]
 *
 * Five codes, each with 255 levels per dimension (codes -127..127):
 *   shared   the library's int8 quantizer rebuilt here (lib/index/quant.c:
 *            per-dimension centre, one step for all dimensions, the one
 *            of least squared error among 1.0, 0.95 .. 0.5 times the
 *            widest range); its recall matches the library's own exact
 *            scan over its codes (ann_knytt --variant int8only-exact);
 *   perdim   a step per dimension, each chosen the same way;
 *   lloyd    per-dimension levels fitted by Lloyd's algorithm (to a
 *            sample of 65,536 rows), started from perdim's grid, so
 *            their squared error is at most perdim's;
 *   resid    the row's residual from the nearest of K k-means centres
 *            (--cells, default 256; 20 rounds on the sample), coded as
 *            shared codes it; each row also needs the cell's number;
 *   resid-perdim  the same residuals coded as perdim codes them.
 * Benchmark code, not part of libknytt.
 */
#include "annbench.h"

#include <knytt.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LEVELS 255
#define CAND 40
#define SAMPLE_ROWS 65536
#define LLOYD_ITERS 200

enum { CODE_SHARED, CODE_PERDIM, CODE_LLOYD, CODE_RESID, CODE_RESID_PERDIM,
       NCODES };
static const char *code_name[NCODES] = {"shared", "perdim", "lloyd",
					"resid", "resid-perdim"};
static size_t kcells = 256; /* --cells */

/* the value the uniform code of step s and centre m gives x */
static float uniform(float x, float m, float s)
{
	float t = nearbyintf((x - m) / s);
	return m + s * fminf(127.0f, fmaxf(-127.0f, t));
}

/* squared error of column j of rows[0..n) (every stride-th) under
 * uniform(m, s) */
static double col_err(const ann_data *d, size_t j, float m, float s,
		      size_t stride)
{
	double e = 0;
	for (size_t i = 0; i < d->n; i += stride) {
		float x = d->base[i * d->dim + j];
		double r = x - uniform(x, m, s);
		e += r * r;
	}
	return e;
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return x < y ? -1 : x > y;
}

/* Lloyd's algorithm in one dimension: lev[0..LEVELS), ascending, moved
 * to the means of the sorted sample s[0..m) each nearest to them. */
static void lloyd(const float *s, size_t m, float *lev)
{
	double *pre = malloc((m + 1) * sizeof *pre);
	if (!pre)
		return; /* keeps the starting grid */
	pre[0] = 0;
	for (size_t i = 0; i < m; i++)
		pre[i + 1] = pre[i] + s[i];
	for (int it = 0; it < LLOYD_ITERS; it++) {
		size_t a = 0;
		for (int l = 0; l < LEVELS; l++) {
			float hi = l + 1 < LEVELS
					   ? 0.5f * (lev[l] + lev[l + 1])
					   : INFINITY;
			size_t b = a;
			while (b < m && s[b] < hi)
				b++;
			if (b > a)
				lev[l] = (float)((pre[b] - pre[a]) /
						 (double)(b - a));
			a = b;
		}
	}
	free(pre);
}

/* the level of lev[0..LEVELS) nearest x */
static float nearest(const float *lev, float x)
{
	int lo = 0, hi = LEVELS - 1;
	while (hi - lo > 1) {
		int mid = (lo + hi) / 2;
		if (lev[mid] <= x)
			lo = mid;
		else
			hi = mid;
	}
	return x - lev[lo] <= lev[hi] - x ? lev[lo] : lev[hi];
}

static double code_base(const ann_data *d, int code, float *dec);

/* nearest of the k centroids cen for each of the n rows x */
static int assign(const float *cen, size_t k, const float *x, size_t n,
		  size_t dim, uint32_t *out)
{
	uint64_t *ids = malloc(n * sizeof *ids);
	float *dist = malloc(n * sizeof *dist);
	int rc = -1;
	if (ids && dist &&
	    knytt_exact_knn(KNYTT_METRIC_L2, dim, cen, k, x, n, 1, ids,
			    dist) >= 0) {
		for (size_t i = 0; i < n; i++)
			out[i] = (uint32_t)ids[i];
		rc = 0;
	}
	free(ids);
	free(dist);
	return rc;
}

/* k-means cells (kcells, 20 rounds on an even sample), then each row's
 * residual from its cell's centre coded by @p inner (shared or perdim) */
static double code_resid(const ann_data *d, int inner, float *dec)
{
	size_t n = d->n, dim = d->dim, k = kcells;
	size_t ns = n < SAMPLE_ROWS ? n : SAMPLE_ROWS;
	float *smp = malloc(ns * dim * sizeof *smp);
	float *cen = malloc(k * dim * sizeof *cen);
	double *acc = malloc(k * dim * sizeof *acc);
	size_t *cnt = malloc(k * sizeof *cnt);
	uint32_t *a = malloc(n * sizeof *a);
	float *res = malloc(n * dim * sizeof *res);
	double mse = -1;
	if (!smp || !cen || !acc || !cnt || !a || !res)
		goto out;
	for (size_t i = 0; i < ns; i++)
		memcpy(smp + i * dim, d->base + (i * (n / ns)) * dim,
		       dim * sizeof *smp);
	for (size_t c = 0; c < k; c++)
		memcpy(cen + c * dim, smp + (c * (ns / k)) * dim,
		       dim * sizeof *cen);
	for (int it = 0; it < 20; it++) {
		if (assign(cen, k, smp, ns, dim, a) < 0)
			goto out;
		memset(acc, 0, k * dim * sizeof *acc);
		memset(cnt, 0, k * sizeof *cnt);
		for (size_t i = 0; i < ns; i++) {
			cnt[a[i]]++;
			for (size_t j = 0; j < dim; j++)
				acc[a[i] * dim + j] += smp[i * dim + j];
		}
		for (size_t c = 0; c < k; c++)
			for (size_t j = 0; j < dim && cnt[c]; j++)
				cen[c * dim + j] =
					(float)(acc[c * dim + j] / cnt[c]);
	}
	if (assign(cen, k, d->base, n, dim, a) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < dim; j++)
			res[i * dim + j] = d->base[i * dim + j] -
					   cen[a[i] * dim + j];
	ann_data r = *d;
	r.base = res;
	r.ip = 0; /* residuals are centred per dimension */
	if (code_base(&r, inner, dec) < 0)
		goto out;
	mse = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < dim; j++) {
			dec[i * dim + j] += cen[a[i] * dim + j];
			double e = dec[i * dim + j] - d->base[i * dim + j];
			mse += e * e;
		}
	mse /= (double)(n * dim);
out:
	free(smp);
	free(cen);
	free(acc);
	free(cnt);
	free(a);
	free(res);
	return mse;
}

/* Decodes the coded base into dec (n * dim); returns the mean squared
 * error per element, or -1 out of memory. */
static double code_base(const ann_data *d, int code, float *dec)
{
	if (code == CODE_RESID)
		return code_resid(d, CODE_SHARED, dec);
	if (code == CODE_RESID_PERDIM)
		return code_resid(d, CODE_PERDIM, dec);
	size_t n = d->n, dim = d->dim;
	size_t stride = n > 8192 ? n / 8192 : 1;
	float *mid = malloc(dim * sizeof *mid), *step = malloc(dim * sizeof *step);
	float *lev = code == CODE_LLOYD ? malloc(dim * LEVELS * sizeof *lev)
					: NULL;
	size_t ns = n < SAMPLE_ROWS ? n : SAMPLE_ROWS;
	float *smp = code == CODE_LLOYD ? malloc(ns * sizeof *smp) : NULL;
	if (!mid || !step || (code == CODE_LLOYD && (!lev || !smp))) {
		free(mid);
		free(step);
		free(lev);
		free(smp);
		return -1;
	}
	float widest = 0;
	for (size_t j = 0; j < dim; j++) {
		float lo = INFINITY, hi = -INFINITY;
		for (size_t i = 0; i < n; i++) {
			float x = d->base[i * dim + j];
			lo = fminf(lo, x);
			hi = fmaxf(hi, x);
		}
		/* as the library: L2 centres each range, IP keeps 0 */
		mid[j] = d->ip ? 0 : 0.5f * (lo + hi);
		step[j] = d->ip ? fmaxf(fabsf(lo), fabsf(hi)) / 127.0f
				: (hi - lo) / 254.0f;
		if (!(step[j] > 0))
			step[j] = 1.0f / 127.0f;
		widest = fmaxf(widest, step[j]);
	}
	/* the step of least squared error among 1.0 .. 0.5 of the full one:
	 * the widest for all dimensions (shared), or each its own */
	if (code == CODE_SHARED) {
		double best = INFINITY;
		float shared = widest;
		for (int f = 20; f >= 10; f--) {
			float st = widest * (float)f / 20;
			double e = 0;
			for (size_t j = 0; j < dim; j++)
				e += col_err(d, j, mid[j], st, stride);
			if (e < best) {
				best = e;
				shared = st;
			}
		}
		for (size_t j = 0; j < dim; j++)
			step[j] = shared;
	}
	for (size_t j = 0; j < dim && code != CODE_SHARED; j++) {
		double best = INFINITY;
		float full = step[j];
		for (int f = 20; f >= 10; f--) {
			float s = full * (float)f / 20;
			double e = col_err(d, j, mid[j], s, stride);
			if (e < best) {
				best = e;
				step[j] = s;
			}
		}
		if (code == CODE_LLOYD) {
			float *lj = lev + j * LEVELS;
			for (int l = 0; l < LEVELS; l++)
				lj[l] = mid[j] + step[j] * (float)(l - LEVELS / 2);
			for (size_t i = 0; i < ns; i++)
				smp[i] = d->base[(i * (n / ns)) * dim + j];
			qsort(smp, ns, sizeof *smp, cmp_float);
			lloyd(smp, ns, lj);
		}
	}
	double mse = 0;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < dim; j++) {
			float x = d->base[i * dim + j];
			float y = code == CODE_LLOYD
					  ? nearest(lev + j * LEVELS, x)
					  : uniform(x, mid[j], step[j]);
			dec[i * dim + j] = y;
			mse += (double)(x - y) * (x - y);
		}
	free(mid);
	free(step);
	free(lev);
	free(smp);
	return mse / (double)(n * dim);
}

struct cand {
	double d;
	int64_t id;
};

static int cmp_cand(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	return x->d < y->d ? -1 : x->d > y->d;
}

/* recall@10 of an exact search over dec for the first nq queries */
static double recall_over(const ann_data *d, const float *dec, size_t nq)
{
	uint64_t *ids = malloc(nq * CAND * sizeof *ids);
	float *dist = malloc(nq * CAND * sizeof *dist);
	int64_t *res = malloc(nq * 10 * sizeof *res);
	double r = -1;
	if (!ids || !dist || !res ||
	    knytt_exact_knn(d->ip ? KNYTT_METRIC_IP : KNYTT_METRIC_L2, d->dim,
			    dec, d->n, d->queries, nq, CAND, ids, dist) < 0)
		goto out;
	for (size_t q = 0; q < nq; q++) {
		/* sgemm's |q|^2 + |x|^2 - 2 q.x loses digits: re-rank */
		struct cand c[CAND];
		const float *qv = d->queries + q * d->dim;
		for (size_t k = 0; k < CAND; k++) {
			const float *x = dec + ids[q * CAND + k] * d->dim;
			double s = 0;
			for (size_t j = 0; j < d->dim; j++)
				s += d->ip ? -(double)qv[j] * x[j]
					   : ((double)qv[j] - x[j]) *
						     ((double)qv[j] - x[j]);
			c[k].d = s;
			c[k].id = (int64_t)ids[q * CAND + k];
		}
		qsort(c, CAND, sizeof *c, cmp_cand);
		for (size_t k = 0; k < 10; k++)
			res[q * 10 + k] = c[k].id;
	}
	ann_data first = *d; /* the first nq queries */
	first.nq = nq;
	r = ann_recall(&first, res, 10);
out:
	free(ids);
	free(dist);
	free(res);
	return r;
}

int main(int argc, char **argv)
{
	const char *name = NULL, *data_dir = getenv("KNYTT_DATA_DIR");
	const char *cache_dir = "build/bench-data";
	size_t nq = 1000;
	const char *codes = NULL; /* --codes a,b: only these */
	if (!data_dir || !*data_dir)
		data_dir = "../shared/data";
	for (int i = 1; i < argc; i++) {
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			goto usage;
		if (strcmp(argv[i], "--dataset") == 0)
			name = v;
		else if (strcmp(argv[i], "--data-dir") == 0)
			data_dir = v;
		else if (strcmp(argv[i], "--cache-dir") == 0)
			cache_dir = v;
		else if (strcmp(argv[i], "--nq") == 0)
			nq = strtoul(v, NULL, 10);
		else if (strcmp(argv[i], "--cells") == 0)
			kcells = strtoul(v, NULL, 10);
		else if (strcmp(argv[i], "--codes") == 0)
			codes = v;
		else
			goto usage;
		i++;
	}
	if (!name || nq == 0 || kcells == 0)
		goto usage;
	/* --codes: the codes named (each must be one), else all */
	int want[NCODES];
	for (int k = 0; k < NCODES; k++)
		want[k] = codes == NULL;
	for (const char *c = codes; c && *c;) {
		size_t len = strcspn(c, ",");
		int known = 0;
		for (int k = 0; k < NCODES; k++)
			if (strlen(code_name[k]) == len &&
			    strncmp(c, code_name[k], len) == 0)
				known = want[k] = 1;
		if (!known) {
			fprintf(stderr, "quant_ceiling: --codes: unknown code "
				"'%.*s' (shared, perdim, lloyd, resid, "
				"resid-perdim)\n", (int)len, c);
			return 2;
		}
		c += len + (c[len] == ',');
	}
	ann_data d;
	int rc = ann_data_load(name, data_dir, cache_dir, 1, &d);
	if (rc != ANN_OK)
		return rc == ANN_SKIP ? 0 : 1;
	if (nq > d.nq)
		nq = d.nq;
	float *dec = malloc(d.n * d.dim * sizeof *dec);
	if (!dec) {
		fprintf(stderr, "quant_ceiling: out of memory\n");
		return 1;
	}
	printf("%-10s %-12s %12s %9s\n", "dataset", "code", "mse/elem",
	       "recall10");
	for (int c = 0; c < NCODES; c++) {
		if (!want[c])
			continue;
		double mse = code_base(&d, c, dec);
		double r = mse < 0 ? -1 : recall_over(&d, dec, nq);
		if (r < 0) {
			fprintf(stderr, "quant_ceiling: %s failed\n",
				code_name[c]);
			return 1;
		}
		printf("%-10s %-12s %12.4g %9.4f\n", name, code_name[c], mse, r);
		fflush(stdout);
	}
	printf("(%zu queries, exact search over the decoded rows)\n", nq);
	free(dec);
	ann_data_free(&d);
	return 0;
usage:
	fprintf(stderr, "usage: %s --dataset NAME [--data-dir DIR] "
		"[--cache-dir DIR] [--nq N] [--cells K] [--codes LIST]\n", argv[0]);
	return 2;
}
