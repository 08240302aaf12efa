/*
 * quant.c -- int8 scalar quantization of index vectors.
 *
 * Per-dimension ranges [lo_i, hi_i] are learned from sample vectors.  A
 * code is c_i = round((x_i - mid_i) / step) clipped to [-127, 127], with
 * one step shared by all dimensions:
 *   L2:     mid_i = (lo_i + hi_i) / 2, step = max_i (hi_i - lo_i) / 254;
 *   IP/cos: mid_i = 0, step = max_i max(|lo_i|, |hi_i|) / 127.
 * Sharing the step is what keeps distances integer kernels: for L2,
 * |x - y|^2 ~ step^2 * sum (cx_i - cy_i)^2 exactly up to rounding, and
 * for IP x.y ~ step^2 * sum cx_i cy_i.  A per-dimension step would need a
 * weighted float kernel and halve the int8 speed.  Dimensions with small
 * ranges get fewer levels, but they also contribute little to L2, so the
 * error per dimension is the same step^2 / 12 everywhere.  Centering per
 * dimension (mid_i) is where the learned ranges pay: data that sits far
 * from zero (SIFT's 0..218) still spans the whole code range.
 *
 * The step is then narrowed where that loses less to clipping than it
 * gains in resolution: the range of the extreme values is mostly empty
 * (Gaussian-like coordinates reach 4-5 standard deviations in 100k
 * rows), and a step covering it rounds every ordinary value coarsely.
 * Of the steps 1.0, 0.95, ..., 0.5 times the full range's, the one with
 * the least squared error over the sample is kept (at least
 * Q_MSE_MIN_ROWS rows: a small sample says little about the tails, and
 * keeps the full range).  On data like synth100k (128-d Gaussian
 * clusters) the least error is near 0.7x (a numpy simulation),
 * and int8-only recall@10 at ef 128 rose from 0.9635 to 0.9714
 * (with the asymmetric re-rank of index.c in both).
 *
 * Residual codes (KNYTT_QUANT_INT8_ONLY only).  On clustered data most
 * of a coordinate's range is the spread of the cluster centres, not of
 * the points around them, and on 1M points the 10th and 11th neighbours
 * of a query are closer together than a step over that range can tell
 * apart: recall@10 of an exact scan over the codes above stops at 0.9703
 * on synth1m (benchmarks/ann/quant_ceiling).  So training also tries
 * coding each vector as its residual from the nearest of K centres
 * (k-means, K up to 256, so the cell's number is one byte beside the
 * codes), centred per dimension (qmid) and with a step per dimension
 * (qsv), each the one of least squared error among 1.0 .. 0.5 times its
 * full range.  Where its squared error over the sample is below
 * RES_GAIN times the shared code's, the index keeps it:
 * synth1m's exact-scan ceiling rises to 0.9756 (2048 cells: 0.9824),
 * synth100k's from 0.9715 to 0.9804; SIFT's small integers, which the
 * shared step codes almost exactly, keep the shared code.
 * A residual code is not comparable with another cell's, so the walk
 * takes the f32 query against the codes (hnsw.c, KID_R_*):
 *   L2:     |q - (c_k + mid + s.x)|^2 = sum_j (p_kj - s_j x_j)^2,
 *           p_k = q - c_k - mid, once per query and cell touched;
 *   IP/cos: q.(c_k + mid) + sum_j (q_j s_j) x_j, the first term once per
 *           query and cell.
 */
#include "index_impl.h"

#include <math.h>
#include <stdlib.h>

#define Q_MSE_MIN_ROWS 1000
#define Q_MSE_MAX_ROWS 8192

/* residual codes: tried from RES_MIN_ROWS sample rows, kept when their
 * squared error is below RES_GAIN times the shared code's; at most
 * RES_MAX_CELLS cells (one byte) and at least RES_ROWS_PER_CELL sample
 * rows per cell; k-means on at most RES_SAMPLE_FLOATS floats of the
 * sample, RES_ROUNDS rounds */
#define RES_MIN_ROWS 4096
#define RES_GAIN 0.8
#define RES_MAX_CELLS 256
#define RES_ROWS_PER_CELL 40
#define RES_SAMPLE_FLOATS ((size_t)8 << 20)
#define RES_ROUNDS 12

/* Squared error of coding @p x (d floats) with @p step and ix->qmid. */
static double q_err(const knytt_index *ix, const float *x, float step)
{
	double e = 0;
	float inv = 1.0f / step;
	for (uint32_t j = 0; j < ix->dim; j++) {
		float t = nearbyintf((x[j] - ix->qmid[j]) * inv);
		t = fminf(127.0f, fmaxf(-127.0f, t));
		float r = x[j] - (ix->qmid[j] + step * t);
		e += (double)r * r;
	}
	return e;
}

/* The step of least squared error over (up to Q_MSE_MAX_ROWS, evenly
 * spaced) rows of @p v among 1.0, 0.95, ..., 0.5 times @p full; @p tmp
 * (d floats) normalizes rows for cosine, else NULL.  Rows outside, steps
 * inside: each row is normalized once. */
static float q_best_step(const knytt_index *ix, size_t n, const float *v,
			 float full, float *tmp)
{
	enum { NSTEP = 11 }; /* 20/20 .. 10/20 of full */
	if (n < Q_MSE_MIN_ROWS)
		return full;
	size_t stride = n > Q_MSE_MAX_ROWS ? n / Q_MSE_MAX_ROWS : 1;
	double e[NSTEP] = { 0 };
	for (size_t i = 0; i < n; i += stride) {
		const float *x = v + i * ix->dim;
		if (tmp) {
			memcpy(tmp, x, ix->dim * sizeof *tmp);
			knytt__normalize(tmp, ix->dim);
			x = tmp;
		}
		for (int f = 0; f < NSTEP; f++)
			e[f] += q_err(ix, x, full * (float)(20 - f) / 20.0f);
	}
	int best = 0;
	for (int f = 1; f < NSTEP; f++)
		if (e[f] < e[best])
			best = f;
	return full * (float)(20 - best) / 20.0f;
}

/* the nearest of ix's qcells centres to @p x (L2) */
static unsigned nearest_cell(const knytt_index *ix, const float *x)
{
	unsigned best = 0;
	float bd = INFINITY;
	for (unsigned k = 0; k < ix->qcells; k++) {
		float d = ix->ops->l2sq(x, ix->qcen + (size_t)k * ix->dim,
					ix->dim);
		if (d < bd) {
			bd = d;
			best = k;
		}
	}
	return best;
}

/* k-means on the ns rows of @p smp into ix->qcen (ix->qcells cells);
 * @p cell gets each row's final cell */
static int kmeans(knytt_index *ix, const float *smp, size_t ns,
		  uint32_t *cell)
{
	size_t d = ix->dim, K = ix->qcells;
	uint64_t *ids = malloc(ns * sizeof *ids);
	float *dist = malloc(ns * sizeof *dist);
	double *acc = malloc(K * d * sizeof *acc);
	size_t *cnt = malloc(K * sizeof *cnt);
	int rc = KNYTT_OK;
	if (!ids || !dist || !acc || !cnt) {
		rc = knytt__err(KNYTT_ENOMEM, "quantizer: out of memory");
		goto out;
	}
	/* started from evenly spaced rows: the same sample, the same cells */
	for (size_t k = 0; k < K; k++)
		memcpy(ix->qcen + k * d, smp + (k * (ns / K)) * d,
		       d * sizeof *smp);
	for (int round = 0; round <= RES_ROUNDS; round++) {
		rc = knytt_exact_knn(KNYTT_METRIC_L2, d, ix->qcen, K, smp, ns,
				     1, ids, dist);
		if (rc < 0)
			goto out;
		rc = KNYTT_OK;
		for (size_t i = 0; i < ns; i++)
			cell[i] = (uint32_t)ids[i];
		if (round == RES_ROUNDS)
			break;
		memset(acc, 0, K * d * sizeof *acc);
		memset(cnt, 0, K * sizeof *cnt);
		for (size_t i = 0; i < ns; i++) {
			double *a = acc + (size_t)cell[i] * d;
			const float *x = smp + i * d;
			cnt[cell[i]]++;
			for (size_t j = 0; j < d; j++)
				a[j] += x[j];
		}
		/* an empty cell keeps its centre */
		for (size_t k = 0; k < K; k++)
			for (size_t j = 0; cnt[k] && j < d; j++)
				ix->qcen[k * d + j] =
					(float)(acc[k * d + j] / (double)cnt[k]);
	}
out:
	free(ids);
	free(dist);
	free(acc);
	free(cnt);
	return rc;
}

/* squared error of coding @p r (a residual) with centre m and step s */
static inline double r_err(float r, float m, float s)
{
	float t = nearbyintf((r - m) / s);
	t = fminf(127.0f, fmaxf(-127.0f, t));
	float e = r - (m + s * t);
	return (double)e * e;
}

/*
 * Tries residual codes on (an even sample of) the n rows of @p v, after
 * the shared code is trained; keeps them (qcells, qcen, qsv, and qmid
 * replaced) when their squared error over the sample is below RES_GAIN
 * times the shared code's.  Out of memory is an error; too few rows, or
 * no gain, leave the shared code.
 */
static int resid_train(knytt_index *ix, size_t n, const float *v)
{
	size_t d = ix->dim;
	size_t ns = n;
	if (ns > RES_SAMPLE_FLOATS / d)
		ns = RES_SAMPLE_FLOATS / d;
	size_t K = ns / RES_ROWS_PER_CELL;
	if (K > RES_MAX_CELLS)
		K = RES_MAX_CELLS;
	if (n < RES_MIN_ROWS || K < 2)
		return KNYTT_OK;
	float *smp = malloc(ns * d * sizeof *smp);
	uint32_t *cell = malloc(ns * sizeof *cell);
	float *cen = malloc(K * d * sizeof *cen);
	float *mid = malloc(d * sizeof *mid), *st = malloc(d * sizeof *st);
	int rc = KNYTT_OK;
	if (!smp || !cell || !cen || !mid || !st) {
		rc = knytt__err(KNYTT_ENOMEM, "quantizer: out of memory");
		goto out;
	}
	for (size_t i = 0; i < ns; i++) {
		float *x = smp + i * d;
		memcpy(x, v + (i * (n / ns)) * d, d * sizeof *x);
		if (ix->metric == KNYTT_METRIC_COSINE)
			knytt__normalize(x, d);
	}
	/* the shared code's error over the same sample */
	double e_shared = 0;
	for (size_t i = 0; i < ns; i++)
		e_shared += q_err(ix, smp + i * d, ix->qstep);
	ix->qcells = (uint32_t)K;
	ix->qcen = cen;
	rc = kmeans(ix, smp, ns, cell);
	ix->qcells = 0;
	ix->qcen = NULL;
	if (rc)
		goto out;
	/* residuals in place; each dimension's centre and step */
	for (size_t i = 0; i < ns; i++)
		for (size_t j = 0; j < d; j++)
			smp[i * d + j] -= cen[(size_t)cell[i] * d + j];
	double e_res = 0;
	for (size_t j = 0; j < d; j++) {
		float lo = INFINITY, hi = -INFINITY;
		for (size_t i = 0; i < ns; i++) {
			lo = fminf(lo, smp[i * d + j]);
			hi = fmaxf(hi, smp[i * d + j]);
		}
		mid[j] = 0.5f * (lo + hi);
		float full = (hi - lo) / 254.0f;
		if (!(full > 0) || !isfinite(1.0f / full)) {
			st[j] = 1.0f; /* constant: every code 0, exact */
			continue;
		}
		double best = INFINITY;
		for (int f = 20; f >= 10; f--) {
			float s = full * (float)f / 20.0f;
			double e = 0;
			for (size_t i = 0; i < ns; i++)
				e += r_err(smp[i * d + j], mid[j], s);
			if (e < best) {
				best = e;
				st[j] = s;
			}
		}
		e_res += best;
	}
	if (!(e_res < RES_GAIN * e_shared))
		goto out;
	memcpy(ix->qmid, mid, d * sizeof *mid);
	ix->qcen = cen;
	ix->qsv = st;
	ix->qcells = (uint32_t)K;
	cen = st = NULL;
out:
	free(smp);
	free(cell);
	free(cen);
	free(mid);
	free(st);
	return rc;
}

int knytt__quant_train(knytt_index *ix, size_t n, const float *v)
{
	uint32_t d = ix->dim;
	float *lo = malloc(d * sizeof *lo), *hi = malloc(d * sizeof *hi);
	if (!lo || !hi) {
		free(lo);
		free(hi);
		return knytt__err(KNYTT_ENOMEM, "quantizer: out of memory");
	}
	for (uint32_t j = 0; j < d; j++) {
		lo[j] = INFINITY;
		hi[j] = -INFINITY;
	}
	float *tmp = NULL;
	if (ix->metric == KNYTT_METRIC_COSINE) {
		tmp = malloc(d * sizeof *tmp);
		if (!tmp) {
			free(lo);
			free(hi);
			return knytt__err(KNYTT_ENOMEM,
					  "quantizer: out of memory");
		}
	}
	for (size_t i = 0; i < n; i++) {
		const float *x = v + i * d;
		if (tmp) {
			memcpy(tmp, x, d * sizeof *tmp);
			knytt__normalize(tmp, d);
			x = tmp;
		}
		for (uint32_t j = 0; j < d; j++) {
			if (x[j] < lo[j])
				lo[j] = x[j];
			if (x[j] > hi[j])
				hi[j] = x[j];
		}
	}
	float step = 0;
	for (uint32_t j = 0; j < d; j++) {
		if (ix->metric == KNYTT_METRIC_L2) {
			ix->qmid[j] = 0.5f * (lo[j] + hi[j]);
			float r = (hi[j] - lo[j]) / 254.0f;
			if (r > step)
				step = r;
		} else {
			ix->qmid[j] = 0;
			float r = fmaxf(fabsf(lo[j]), fabsf(hi[j])) / 127.0f;
			if (r > step)
				step = r;
		}
	}
	/* One sample, or constant data: no spread to learn.  Use a step that
	 * still represents values of the sample's own magnitude. */
	if (!(step > 0)) {
		float mag = 0;
		for (uint32_t j = 0; j < d; j++)
			mag = fmaxf(mag, fmaxf(fabsf(lo[j]), fabsf(hi[j])));
		step = mag > 0 ? mag / 127.0f : 1.0f / 127.0f;
	} else {
		step = q_best_step(ix, n, v, step, tmp);
	}
	ix->qstep = step;
	ix->qtrained = 1;
	free(lo);
	free(hi);
	free(tmp);
	int rc = ix->quant == KNYTT_QUANT_INT8_ONLY ? resid_train(ix, n, v)
						  : KNYTT_OK;
	if (rc)
		return rc;
	return knytt__index_layout(ix);
}

void knytt__quant_encode(const knytt_index *ix, const float *x, int8_t *c)
{
	if (ix->qcells) {
		/* residual: the nearest cell, then a step per dimension */
		unsigned k = nearest_cell(ix, x);
		const float *cen = ix->qcen + (size_t)k * ix->dim;
		for (uint32_t j = 0; j < ix->dim; j++) {
			float t = nearbyintf((x[j] - cen[j] - ix->qmid[j]) /
					     ix->qsv[j]);
			c[j] = (int8_t)fminf(127.0f, fmaxf(-127.0f, t));
		}
		((uint8_t *)c)[ix->dim] = (uint8_t)k;
		return;
	}
	float inv = 1.0f / ix->qstep;
	for (uint32_t j = 0; j < ix->dim; j++) {
		float t = nearbyintf((x[j] - ix->qmid[j]) * inv);
		if (isnan(t)) /* only from a degenerate step; keep it defined */
			t = 0;
		if (t > 127.0f)
			t = 127.0f;
		if (t < -127.0f)
			t = -127.0f;
		c[j] = (int8_t)t;
	}
}

void knytt__quant_decode(const knytt_index *ix, const int8_t *c, float *x)
{
	if (ix->qcells) {
		knytt__resid_decode(ix, c, x);
		return;
	}
	for (uint32_t j = 0; j < ix->dim; j++)
		x[j] = ix->qmid[j] + ix->qstep * (float)c[j];
}
