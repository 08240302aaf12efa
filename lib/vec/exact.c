/*
 * exact.c -- exact many-against-many k-NN through OpenBLAS.
 *
 * Distances come from one sgemm per block: for L2,
 * |q - x|^2 = |q|^2 + |x|^2 - 2 q.x, with the norms computed once; IP is
 * the negated product; cosine divides the product by both norms.  Blocks
 * of QB queries x XB base rows bound the scratch matrix to 4 MiB however
 * large the inputs, and keep it in L2/L3 while the top-k pass reads it.
 */
#include "topk.h"
#include "vec.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

enum { QB = 256, XB = 4096 };

static void norms(const knytt__vec_ops *ops, const float *v, size_t n,
		  size_t d, float *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = ops->dot(v + i * d, v + i * d, d);
}

int knytt_exact_knn(knytt_metric metric, size_t dim, const float *base,
		    size_t nb, const float *queries, size_t nq, size_t k,
		    uint64_t *ids, float *dists)
{
	if (!queries || !ids || (!base && nb > 0))
		return knytt__err(KNYTT_EINVAL,
				  "knytt_exact_knn: %s is NULL",
				  !queries ? "queries"
				  : !ids   ? "ids"
					   : "base");
	if (dim == 0 || k == 0)
		return knytt__err(KNYTT_EINVAL, "knytt_exact_knn: %s is 0",
				  dim == 0 ? "dim" : "k");
	if (metric != KNYTT_METRIC_L2 && metric != KNYTT_METRIC_IP &&
	    metric != KNYTT_METRIC_COSINE)
		return knytt__err(KNYTT_EINVAL,
				  "knytt_exact_knn: unknown metric %d",
				  (int)metric);
	if (dim > INT32_MAX / 2)
		return knytt__err(KNYTT_EINVAL, "dim %zu too large", dim);

	const knytt__vec_ops *ops = knytt__vec();
	int rc = KNYTT_ENOMEM;
	float *xn = malloc((nb ? nb : 1) * sizeof *xn);
	float *qn = malloc(QB * sizeof *qn);
	float *prod = malloc((size_t)QB * XB * sizeof *prod);
	knytt__pair *heaps = malloc((size_t)QB * k * sizeof *heaps);
	knytt__topk *tk = malloc(QB * sizeof *tk);
	if (!xn || !qn || !prod || !heaps || !tk) {
		knytt__err(KNYTT_ENOMEM, "knytt_exact_knn: out of memory");
		goto out;
	}
	norms(ops, base, nb, dim, xn);
	if (metric == KNYTT_METRIC_COSINE)
		for (size_t i = 0; i < nb; i++)
			xn[i] = sqrtf(xn[i]);

	for (size_t q0 = 0; q0 < nq; q0 += QB) {
		size_t qb = nq - q0 < QB ? nq - q0 : QB;
		const float *qs = queries + q0 * dim;
		norms(ops, qs, qb, dim, qn);
		for (size_t j = 0; j < qb; j++) {
			tk[j].h = heaps + j * k;
			tk[j].n = 0;
			tk[j].k = k;
			if (metric == KNYTT_METRIC_COSINE)
				qn[j] = sqrtf(qn[j]);
		}
		for (size_t x0 = 0; x0 < nb; x0 += XB) {
			size_t xb = nb - x0 < XB ? nb - x0 : XB;
			/* prod[j][i] = q_j . x_i */
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
				    (int)qb, (int)xb, (int)dim, 1.0f, qs,
				    (int)dim, base + x0 * dim, (int)dim, 0.0f,
				    prod, (int)xb);
			for (size_t j = 0; j < qb; j++) {
				const float *row = prod + j * xb;
				knytt__topk *t = &tk[j];
				for (size_t i = 0; i < xb; i++) {
					float d;
					if (metric == KNYTT_METRIC_L2) {
						d = qn[j] + xn[x0 + i] -
						    2.0f * row[i];
						if (d < 0)
							d = 0;
					} else if (metric == KNYTT_METRIC_IP) {
						d = -row[i];
					} else {
						float den = qn[j] * xn[x0 + i];
						d = den > 0 ? 1.0f - row[i] / den
							    : 1.0f;
					}
					if (d < knytt__topk_worst(t))
						knytt__topk_push(t, d, x0 + i);
				}
			}
		}
		for (size_t j = 0; j < qb; j++) {
			uint64_t *oi = ids + (q0 + j) * k;
			float *od = dists ? dists + (q0 + j) * k : NULL;
			size_t got = knytt__topk_drain(&tk[j], oi, od);
			for (size_t r = got; r < k; r++) {
				oi[r] = UINT64_MAX;
				if (od)
					od[r] = INFINITY;
			}
		}
	}
	rc = KNYTT_OK;
out:
	free(xn);
	free(qn);
	free(prod);
	free(heaps);
	free(tk);
	return rc;
}
