/*
 * exact.c -- exact many-against-many k-NN through OpenBLAS.
 *
 * Distances come from one sgemm per block: for L2,
 * |q - x|^2 = |q|^2 + |x|^2 - 2 q.x, with the norms computed once; IP is
 * the negated product; cosine scales the product by both inverse norms.
 * Blocks of QB queries x XB base rows bound the scratch matrix to 4 MiB
 * however large the inputs, and keep it in L2/L3 while the top-k pass
 * reads it.
 *
 * The sgemm is the bound; what follows it must cost little next to it.
 * Each query row of a block is read once by the `below` kernel
 * (lib/vec), which turns products into distances and keeps only those
 * under the row's current k-th best, in SIMD: once a heap is full almost
 * nothing passes, so the pass costs a load, a multiply, an add and a
 * compare per value.  Counted with callgrind (256 queries x 20,000 rows
 * x 128, AVX2 tier): the pass after the sgemm fell from 86M to 13M
 * instructions, against 335M in the sgemm itself.
 *
 * The pass stays on the calling thread.  Splitting it over threads was
 * tried: OpenBLAS's pthread workers spin for a while after each sgemm,
 * so a thread of ours competes with them for the same cores, and at ~4%
 * of the single-thread sgemm the pass is not worth that.  Threads are
 * OpenBLAS's (OPENBLAS_NUM_THREADS), for the product.
 */
#include "topk.h"
#include "vec.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

enum { QB = 256, XB = 4096, CHUNK = 512 };

typedef struct exact_job {
	const knytt__vec_ops *ops;
	knytt_metric metric;
	size_t dim, k;
	const float *vecs; /* norms: dim-float rows */
	float *norms;
	/* a block: qb query rows of prod, xb wide, base rows from x0 */
	const float *prod;
	const float *xn; /* L2: |x|^2; cosine: 1/|x| (0 for a zero row) */
	const float *qn; /* same for the queries of the block */
	knytt__topk *tk;
	size_t xb, x0;
} exact_job;

static void norms_part(void *p, size_t lo, size_t hi)
{
	exact_job *j = p;
	for (size_t i = lo; i < hi; i++) {
		const float *v = j->vecs + i * j->dim;
		float n2 = j->ops->dot(v, v, j->dim);
		if (j->metric == KNYTT_METRIC_COSINE)
			n2 = n2 > 0 ? 1.0f / sqrtf(n2) : 0.0f;
		j->norms[i] = n2;
	}
}

/* Row r of the block into its heap: d = c + a * (p * m) + v, where L2
 * has a = -2, c = |q|^2, v = |x|^2; IP a = -1; cosine c = 1,
 * a = -1/|q|, m = 1/|x|. */
static void topk_part(void *p, size_t lo, size_t hi)
{
	const exact_job *j = p;
	uint32_t ci[CHUNK];
	float cd[CHUNK];
	for (size_t r = lo; r < hi; r++) {
		const float *row = j->prod + r * j->xb;
		knytt__topk *t = &j->tk[r];
		float a = -1, c = 0;
		const float *m = NULL, *v = NULL;
		if (j->metric == KNYTT_METRIC_L2) {
			a = -2;
			c = j->qn[r];
			v = j->xn + j->x0;
		} else if (j->metric == KNYTT_METRIC_COSINE) {
			a = -j->qn[r];
			c = 1;
			m = j->xn + j->x0;
		}
		for (size_t i0 = 0; i0 < j->xb; i0 += CHUNK) {
			size_t n = j->xb - i0 < CHUNK ? j->xb - i0 : CHUNK;
			size_t got = j->ops->below(row + i0, m ? m + i0 : NULL,
						   v ? v + i0 : NULL, a, c,
						   knytt__topk_worst(t), n, ci,
						   cd);
			/* rounding can take an L2 distance below 0 */
			for (size_t g = 0; g < got; g++) {
				float d = cd[g] < 0 && v ? 0 : cd[g];
				knytt__topk_push(t, d, j->x0 + i0 + ci[g]);
			}
		}
	}
}

static int check_args(knytt_metric metric, size_t dim, const float *base,
		      size_t nb, const float *queries, size_t k,
		      const uint64_t *ids)
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
	return KNYTT_OK;
}

static void drain(knytt__topk *tk, size_t qb, size_t k, uint64_t *ids,
		  float *dists)
{
	for (size_t j = 0; j < qb; j++) {
		uint64_t *oi = ids + j * k;
		float *od = dists ? dists + j * k : NULL;
		size_t got = knytt__topk_drain(&tk[j], oi, od);
		for (size_t r = got; r < k; r++) {
			oi[r] = UINT64_MAX;
			if (od)
				od[r] = INFINITY;
		}
	}
}

int knytt_exact_knn(knytt_metric metric, size_t dim, const float *base,
		    size_t nb, const float *queries, size_t nq, size_t k,
		    uint64_t *ids, float *dists)
{
	int rc = check_args(metric, dim, base, nb, queries, k, ids);
	if (rc)
		return rc;
	exact_job j = { .ops = knytt__vec(), .metric = metric, .dim = dim,
			.k = k };
	float *xn = malloc((nb ? nb : 1) * sizeof *xn);
	float *qn = malloc(QB * sizeof *qn);
	float *prod = malloc((size_t)QB * XB * sizeof *prod);
	knytt__pair *heaps = malloc((size_t)QB * k * sizeof *heaps);
	knytt__topk *tk = malloc(QB * sizeof *tk);
	rc = KNYTT_ENOMEM;
	if (!xn || !qn || !prod || !heaps || !tk) {
		knytt__err(KNYTT_ENOMEM, "knytt_exact_knn: out of memory");
		goto out;
	}
	j.vecs = base, j.norms = xn;
	norms_part(&j, 0, nb);
	j.prod = prod, j.xn = xn, j.qn = qn, j.tk = tk;
	for (size_t q0 = 0; q0 < nq; q0 += QB) {
		size_t qb = nq - q0 < QB ? nq - q0 : QB;
		const float *qs = queries + q0 * dim;
		j.vecs = qs, j.norms = qn;
		norms_part(&j, 0, qb);
		for (size_t r = 0; r < qb; r++)
			tk[r] = (knytt__topk){ heaps + r * k, 0, k };
		for (size_t x0 = 0; x0 < nb; x0 += XB) {
			size_t xb = nb - x0 < XB ? nb - x0 : XB;
			/* prod[r][i] = q_r . x_i */
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
				    (int)qb, (int)xb, (int)dim, 1.0f, qs,
				    (int)dim, base + x0 * dim, (int)dim, 0.0f,
				    prod, (int)xb);
			j.xb = xb, j.x0 = x0;
			topk_part(&j, 0, qb);
		}
		drain(tk, qb, k, ids + q0 * k, dists ? dists + q0 * k : NULL);
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
