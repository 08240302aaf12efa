/*
 * lightgcn.c -- LightGCN (He, Deng, Wang, Li, Zhang & Wang, "LightGCN:
 * Simplifying and Powering Graph Convolution Network for Recommendation",
 * SIGIR 2020), trained in C.
 *
 * Model (paper, section 3.1): E = (E0 + A E0 + ... + A^L E0) / (L + 1)
 * over the users and items stacked as rows, A = D^-1/2 R D^-1/2 the
 * symmetric-normalised bipartite adjacency (eq. 3 and 7, alpha_k =
 * 1 / (K + 1)).  Loss (eq. 15): BPR over (user, positive, negative)
 * triples plus an L2 term on the layer-0 rows of each triple.
 *
 * Gradient: E is linear in E0 through P = (I + A + ... + A^L) / (L + 1),
 * and A is symmetric, so dLoss/dE0 = P dLoss/dE: the backward pass is
 * the forward propagation applied to the output gradient.  Both run
 * through the matrix's CSR (user rows) and CSC (item rows); every output
 * row is summed by one thread in entry order, so results do not depend
 * on the thread count.
 *
 * Where this departs from the paper's code:
 *  - a triple's positive is a uniformly drawn edge (the paper's sampler
 *    draws a user, then one of his items), so active users weigh as much
 *    as their interactions do, like the CSR-based sampler of most
 *    reimplementations;
 *  - default batches are larger (8192 against 2048) with a larger Adam
 *    step (0.005 against 0.001): each batch propagates through the whole
 *    graph, and on two cores the paper's settings would take hours on
 *    ML-1M; benchmarks/train measures the result.
 */
#include "lightgcn.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ---------------------------------------------------------------------
 * Row kernels: y += a x and dot products over dim floats.
 * ------------------------------------------------------------------- */

static void axpy_scalar(float a, const float *x, float *y, unsigned d)
{
	for (unsigned t = 0; t < d; t++)
		y[t] += a * x[t];
}

#if defined(__x86_64__)
/* AVX2 + FMA, 8 floats a step; d a multiple of 8 (checked by the
 * caller).  Same sums as the scalar loop up to FMA rounding. */
__attribute__((target("avx2,fma"))) static void
axpy_avx2(float a, const float *x, float *y, unsigned d)
{
	__m256 va = _mm256_set1_ps(a);
	for (unsigned t = 0; t < d; t += 8)
		_mm256_storeu_ps(y + t,
				 _mm256_fmadd_ps(va, _mm256_loadu_ps(x + t),
						 _mm256_loadu_ps(y + t)));
}
#endif

typedef void (*axpy_fn)(float a, const float *x, float *y, unsigned d);

/* The kernel for dim, following lib/vec's choice so that
 * KNYTT_SIMD=scalar forces the scalar path here too. */
static axpy_fn pick_axpy(unsigned d)
{
#if defined(__x86_64__)
	const char *s = knytt_simd_name();
	if (d % 8 == 0 && (!strcmp(s, "avx2") || !strcmp(s, "avx512")))
		return axpy_avx2;
#endif
	(void)d;
	return axpy_scalar;
}

static double dotd(const float *a, const float *b, unsigned d)
{
	double s = 0;
	for (unsigned t = 0; t < d; t++)
		s += (double)a[t] * b[t];
	return s;
}

/* ---------------------------------------------------------------------
 * The graph and its propagation.
 * ------------------------------------------------------------------- */

void knytt__lgc_graph_free(knytt__lgc_graph *gr)
{
	free(gr->dinv);
	knytt__afree(gr->a);
	knytt__afree(gr->b);
	knytt__afree(gr->G);
	knytt__afree(gr->dE0);
	memset(gr, 0, sizeof *gr);
}

int knytt__lgc_graph_init(knytt__lgc_graph *gr, const knytt_matrix *m,
			  unsigned dim, unsigned layers, unsigned threads)
{
	memset(gr, 0, sizeof *gr);
	gr->m = m;
	gr->dim = dim;
	gr->layers = layers;
	gr->threads = knytt__threads(threads);
	gr->nusers = m->nusers;
	gr->nitems = m->nitems;
	gr->nrows = (size_t)m->nusers + m->nitems;
	size_t sz = gr->nrows * dim * sizeof(float);
	gr->dinv = malloc(gr->nrows * sizeof *gr->dinv);
	gr->a = knytt__aalloc(sz);
	gr->b = knytt__aalloc(sz);
	gr->G = knytt__aalloc(sz);
	gr->dE0 = knytt__aalloc(sz);
	if (!gr->dinv || !gr->a || !gr->b || !gr->G || !gr->dE0) {
		knytt__lgc_graph_free(gr);
		return -1;
	}
	for (uint32_t u = 0; u < m->nusers; u++) {
		size_t deg = m->rowptr[u + 1] - m->rowptr[u];
		gr->dinv[u] = deg ? (float)(1.0 / sqrt((double)deg)) : 0;
	}
	for (uint32_t i = 0; i < m->nitems; i++) {
		size_t deg = m->colptr[i + 1] - m->colptr[i];
		gr->dinv[m->nusers + i] =
			deg ? (float)(1.0 / sqrt((double)deg)) : 0;
	}
	return 0;
}

/*
 * One output row of the propagation: out = sum_j c_j in[q_j], c_j =
 * dr * dinv[q_j], q_j = off + nb[j]; acc += out.  The sum is kept in
 * registers over all the neighbours, 64 columns at a time, and stored
 * once: an axpy per neighbour through memory ran at a third of the speed
 * (a store and a reload of the row per edge).  Neighbours are added in
 * entry order whatever the kernel, so each row's result is fixed.
 */
typedef void (*gather_fn)(const float *in, const uint32_t *nb, size_t n,
			  uint32_t off, const float *dinv, float dr,
			  float *out, float *acc, unsigned d);

static void gather_scalar(const float *in, const uint32_t *nb, size_t n,
			  uint32_t off, const float *dinv, float dr,
			  float *out, float *acc, unsigned d)
{
	for (unsigned c0 = 0; c0 < d; c0 += 64) {
		unsigned w = d - c0 < 64 ? d - c0 : 64;
		float s[64] = {0};
		for (size_t j = 0; j < n; j++) {
			size_t q = (size_t)off + nb[j];
			float c = dr * dinv[q];
			const float *x = in + q * d + c0;
			for (unsigned t = 0; t < w; t++)
				s[t] += c * x[t];
		}
		for (unsigned t = 0; t < w; t++) {
			out[c0 + t] = s[t];
			acc[c0 + t] += s[t];
		}
	}
}

#if defined(__x86_64__)
/* AVX2 + FMA; d a multiple of 8.  Whole blocks of 64 columns run with
 * eight accumulators in registers, a narrower tail through an array. */
__attribute__((target("avx2,fma"))) static void
gather_avx2(const float *in, const uint32_t *nb, size_t n, uint32_t off,
	    const float *dinv, float dr, float *out, float *acc, unsigned d)
{
	for (unsigned c0 = 0; c0 < d; c0 += 64) {
		unsigned nv = (d - c0 < 64 ? d - c0 : 64) / 8;
		__m256 s[8];
#pragma GCC unroll 8
		for (int v = 0; v < 8; v++)
			s[v] = _mm256_setzero_ps();
		if (nv == 8) {
			for (size_t j = 0; j < n; j++) {
				size_t q = (size_t)off + nb[j];
				__m256 c = _mm256_set1_ps(dr * dinv[q]);
				const float *x = in + q * d + c0;
#pragma GCC unroll 8
				for (int v = 0; v < 8; v++)
					s[v] = _mm256_fmadd_ps(
						c, _mm256_loadu_ps(x + 8 * v),
						s[v]);
			}
		} else {
			for (size_t j = 0; j < n; j++) {
				size_t q = (size_t)off + nb[j];
				__m256 c = _mm256_set1_ps(dr * dinv[q]);
				const float *x = in + q * d + c0;
				for (unsigned v = 0; v < nv; v++)
					s[v] = _mm256_fmadd_ps(
						c, _mm256_loadu_ps(x + 8 * v),
						s[v]);
			}
		}
		for (unsigned v = 0; v < nv; v++) {
			float *o = out + c0 + 8 * v, *a = acc + c0 + 8 * v;
			_mm256_storeu_ps(o, s[v]);
			_mm256_storeu_ps(a, _mm256_add_ps(_mm256_loadu_ps(a),
							  s[v]));
		}
	}
}
#endif

static gather_fn pick_gather(unsigned d)
{
#if defined(__x86_64__)
	const char *s = knytt_simd_name();
	if (d % 8 == 0 && (!strcmp(s, "avx2") || !strcmp(s, "avx512")))
		return gather_avx2;
#endif
	(void)d;
	return gather_scalar;
}

typedef struct prop_ctx {
	const knytt__lgc_graph *gr;
	const float *in;
	float *out, *acc;
	gather_fn gather;
} prop_ctx;

/* Rows [lo, hi) of one layer: user rows through the CSR, item rows
 * through the CSC. */
static void prop_rows(void *arg, size_t lo, size_t hi)
{
	const prop_ctx *c = arg;
	const knytt__lgc_graph *gr = c->gr;
	const knytt_matrix *m = gr->m;
	unsigned d = gr->dim;
	for (size_t r = lo; r < hi; r++) {
		const uint32_t *nb;
		size_t n;
		uint32_t off; /* row of neighbour id 0 */
		if (r < gr->nusers) {
			nb = m->items + m->rowptr[r];
			n = m->rowptr[r + 1] - m->rowptr[r];
			off = gr->nusers;
		} else {
			size_t i = r - gr->nusers;
			nb = m->users + m->colptr[i];
			n = m->colptr[i + 1] - m->colptr[i];
			off = 0;
		}
		c->gather(c->in, nb, n, off, gr->dinv, gr->dinv[r],
			  c->out + r * d, c->acc + r * d, d);
	}
}

void knytt__lgc_propagate(knytt__lgc_graph *gr, const float *X, float *out,
			  float *partial)
{
	size_t len = gr->nrows * gr->dim;
	memcpy(out, X, len * sizeof *out);
	prop_ctx c = {gr, X, gr->a, out, pick_gather(gr->dim)};
	for (unsigned l = 0; l < gr->layers; l++) {
		if (partial && l + 1 == gr->layers)
			memcpy(partial, out, len * sizeof *out);
		knytt__parallel_for(gr->threads, gr->nrows, 64, prop_rows, &c);
		c.in = c.out;
		c.out = c.out == gr->a ? gr->b : gr->a;
	}
	if (partial && gr->layers == 0)
		memset(partial, 0, len * sizeof *partial);
	float inv = 1.0f / (float)(gr->layers + 1);
	for (size_t t = 0; t < len; t++)
		out[t] *= inv;
}

/* softplus(z) = ln(1 + e^z), without overflow. */
static double softplus(double z)
{
	return (z > 0 ? z : 0) + log1p(exp(-fabs(z)));
}

double knytt__lgc_grad(knytt__lgc_graph *gr, const float *E0, const float *E,
		       const uint32_t *triples, size_t n, float reg)
{
	unsigned d = gr->dim;
	size_t len = gr->nrows * d;
	uint32_t nu = gr->nusers;
	memset(gr->G, 0, len * sizeof *gr->G);
	double loss = 0, l2 = 0;
	float invn = 1.0f / (float)n;
	for (size_t t = 0; t < n; t++) {
		size_t u = triples[3 * t], i = nu + (size_t)triples[3 * t + 1],
		       j = nu + (size_t)triples[3 * t + 2];
		const float *eu = E + u * d, *ei = E + i * d, *ej = E + j * d;
		double x = dotd(eu, ei, d) - dotd(eu, ej, d);
		loss += softplus(-x);
		/* d softplus(-x) / dx = -sigmoid(-x) */
		float g = (float)(-1.0 / (1.0 + exp(x))) * invn;
		float *gu = gr->G + u * d, *gi = gr->G + i * d,
		      *gj = gr->G + j * d;
		for (unsigned q = 0; q < d; q++) {
			gu[q] += g * (ei[q] - ej[q]);
			gi[q] += g * eu[q];
			gj[q] -= g * eu[q];
		}
	}
	knytt__lgc_propagate(gr, gr->G, gr->dE0, NULL);
	for (size_t t = 0; t < n; t++)
		for (int s = 0; s < 3; s++) {
			size_t r = triples[3 * t + s] + (s ? (size_t)nu : 0);
			const float *e = E0 + r * d;
			l2 += dotd(e, e, d);
			axpy_scalar(reg * invn, e, gr->dE0 + r * d, d);
		}
	return loss / (double)n + 0.5 * reg * l2 / (double)n;
}

/* ---------------------------------------------------------------------
 * Training.
 * ------------------------------------------------------------------- */

/* Adam (Kingma & Ba 2015) over every parameter, step t (1-based). */
typedef struct adam_ctx {
	float *w, *m, *v;
	const float *g;
	float lr, c1, c2; /* c1 = 1 - b1^t, c2 = 1 - b2^t */
} adam_ctx;

static void adam_rows(void *arg, size_t lo, size_t hi)
{
	const adam_ctx *a = arg;
	const float b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
	for (size_t p = lo; p < hi; p++) {
		float g = a->g[p];
		a->m[p] = b1 * a->m[p] + (1 - b1) * g;
		a->v[p] = b2 * a->v[p] + (1 - b2) * g * g;
		float mh = a->m[p] / a->c1, vh = a->v[p] / a->c2;
		a->w[p] -= a->lr * mh / (sqrtf(vh) + eps);
	}
}

/* Is item i in the ascending row its[0..n)? */
static bool in_row(const uint32_t *its, size_t n, uint32_t i)
{
	size_t a = 0, b = n;
	while (a < b) {
		size_t h = a + (b - a) / 2;
		if (its[h] < i)
			a = h + 1;
		else
			b = h;
	}
	return a < n && its[a] == i;
}

/* Draws n triples: an edge uniformly (user, positive), then a negative
 * uniformly among the items, redrawn while the user has it (at most 64
 * times: a user who has nearly every item keeps the last draw). */
static void sample(const knytt_matrix *m, uint64_t *rng, uint32_t *tr,
		   size_t n)
{
	for (size_t t = 0; t < n; t++) {
		size_t e = (size_t)(knytt__rand64(rng) % m->nnz);
		/* the user owning entry e: last rowptr <= e */
		size_t a = 0, b = m->nusers;
		while (b - a > 1) {
			size_t h = a + (b - a) / 2;
			if (m->rowptr[h] <= e)
				a = h;
			else
				b = h;
		}
		const uint32_t *its = m->items + m->rowptr[a];
		size_t deg = m->rowptr[a + 1] - m->rowptr[a];
		uint32_t neg = 0;
		for (int k = 0; k < 64; k++) {
			neg = (uint32_t)(knytt__rand64(rng) % m->nitems);
			if (!in_row(its, deg, neg))
				break;
		}
		tr[3 * t] = (uint32_t)a;
		tr[3 * t + 1] = m->items[e];
		tr[3 * t + 2] = neg;
	}
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Normal(0, sd) by Box-Muller from the model's generator. */
static float gauss(uint64_t *s, float sd)
{
	double u1 = knytt__randu(s), u2 = knytt__randu(s);
	if (u1 < 1e-300)
		u1 = 1e-300;
	return (float)(sd * sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

/* Training buffers beyond the graph's. */
typedef struct train_buf {
	float *E0, *am, *av, *part;
	uint32_t *tr;
} train_buf;

static void buf_free(train_buf *b)
{
	knytt__afree(b->E0);
	knytt__afree(b->am);
	knytt__afree(b->av);
	knytt__afree(b->part);
	free(b->tr);
}

static int buf_init(train_buf *b, size_t len, size_t batch)
{
	b->E0 = knytt__aalloc(len * sizeof(float));
	b->am = knytt__aalloc(len * sizeof(float));
	b->av = knytt__aalloc(len * sizeof(float));
	b->part = knytt__aalloc(len * sizeof(float));
	b->tr = malloc(batch * 3 * sizeof *b->tr);
	return b->E0 && b->am && b->av && b->part && b->tr ? 0 : -1;
}

/* Publishes the model of E0: final embeddings into g->E, fold-in vectors
 * into g->F (F_i = partial_i / ((L + 1) sqrt deg i)); part is scratch of
 * nrows * dim floats. */
static void publish(knytt_lightgcn *g, knytt__lgc_graph *gr, const float *E0,
		    float *part)
{
	knytt__lgc_propagate(gr, E0, g->E, part);
	unsigned d = g->dim;
	float inv = 1.0f / (float)(g->layers + 1);
	for (uint32_t i = 0; i < g->nitems; i++) {
		size_t r = (size_t)g->nusers + i;
		float s = gr->dinv[r] * inv;
		for (unsigned q = 0; q < d; q++)
			g->F[(size_t)i * d + q] = s * part[r * d + q];
	}
}

int knytt__lgc_set_embeddings(knytt_lightgcn *g, const knytt_matrix *m,
			      const float *E0)
{
	knytt__lgc_graph gr;
	if (knytt__lgc_graph_init(&gr, m, g->dim, g->layers, g->threads))
		return -1;
	size_t len = gr.nrows * g->dim;
	float *part = knytt__aalloc(len * sizeof *part);
	if (!part || knytt__lgc_alloc(g, m->nusers, m->nitems)) {
		knytt__afree(part);
		knytt__lgc_graph_free(&gr);
		return -1;
	}
	publish(g, &gr, E0, part);
	g->trained = true;
	knytt__afree(part);
	knytt__lgc_graph_free(&gr);
	return 0;
}

/* One epoch: nnz triples in batches; returns the mean loss. */
static double epoch(knytt_lightgcn *g, knytt__lgc_graph *gr, train_buf *b,
		    uint64_t *rng, uint64_t *step)
{
	const knytt_matrix *m = gr->m;
	size_t len = gr->nrows * g->dim;
	double loss = 0;
	for (size_t done = 0; done < m->nnz;) {
		size_t n = m->nnz - done < g->batch ? m->nnz - done : g->batch;
		sample(m, rng, b->tr, n);
		knytt__lgc_propagate(gr, b->E0, g->E, NULL);
		loss += knytt__lgc_grad(gr, b->E0, g->E, b->tr, n, g->reg) *
			(double)n;
		++*step;
		adam_ctx a = {b->E0,
			      b->am,
			      b->av,
			      gr->dE0,
			      g->lr,
			      1.0f - powf(0.9f, (float)*step),
			      1.0f - powf(0.999f, (float)*step)};
		knytt__parallel_for(gr->threads, len, 4096, adam_rows, &a);
		done += n;
	}
	return loss / (double)m->nnz;
}

static int check_matrix(const knytt_lightgcn *g, const knytt_matrix *m)
{
	if (!g)
		return knytt__err(KNYTT_EINVAL, "model must not be NULL");
	if (g->trained)
		return knytt__err(KNYTT_ESTATE,
				  "model already trained or loaded: use a "
				  "new handle");
	if (!m)
		return knytt__err(KNYTT_EINVAL, "matrix must not be NULL");
	if (!m->built)
		return knytt__err(KNYTT_EINVAL,
				  "matrix not built (knytt_matrix_build)");
	if (m->nnz == 0 || m->nusers == 0 || m->nitems == 0)
		return knytt__err(KNYTT_EINVAL,
				  "matrix is empty: nothing to train on");
	return KNYTT_OK;
}

int knytt_lightgcn_train(knytt_lightgcn *g, const knytt_matrix *m)
{
	int rc = check_matrix(g, m);
	if (rc)
		return rc;
	knytt__lgc_graph gr;
	train_buf b = {0};
	size_t len = ((size_t)m->nusers + m->nitems) * g->dim;
	if (knytt__lgc_graph_init(&gr, m, g->dim, g->layers, g->threads)) {
		return knytt__err(KNYTT_ENOMEM,
				  "no memory for a graph of %zu nodes",
				  (size_t)m->nusers + m->nitems);
	}
	if (buf_init(&b, len, g->batch) || knytt__lgc_alloc(g, m->nusers,
							     m->nitems)) {
		rc = knytt__err(KNYTT_ENOMEM,
				"no memory for %zu x %u embeddings",
				(size_t)m->nusers + m->nitems, g->dim);
		goto out;
	}
	/* N(0, 0.1^2), the paper code's initialisation. */
	uint64_t rng = g->seed;
	for (size_t p = 0; p < len; p++)
		b.E0[p] = gauss(&rng, 0.1f);
	g->trained = true; /* read functions work from the callback */
	uint64_t step = 0;
	double t0 = now_s();
	for (unsigned ep = 0; ep < g->epochs; ep++) {
		double loss = epoch(g, &gr, &b, &rng, &step);
		publish(g, &gr, b.E0, b.part);
		if (!g->progress)
			continue;
		double el = now_s() - t0;
		knytt_progress p = {.epoch = ep + 1,
				    .epochs = g->epochs,
				    .loss = loss,
				    .elapsed = el,
				    .eta = el / (ep + 1) *
					   (g->epochs - ep - 1)};
		if (g->progress(g->progress_ctx, &p) != 0) {
			rc = knytt__err(KNYTT_ECANCELED,
					"training canceled after epoch %u of "
					"%u",
					ep + 1, g->epochs);
			break;
		}
	}
out:
	if (rc && rc != KNYTT_ECANCELED) {
		knytt__afree(g->E);
		knytt__afree(g->F);
		g->E = g->F = NULL;
		g->trained = false;
	}
	buf_free(&b);
	knytt__lgc_graph_free(&gr);
	return rc;
}

/* ---------------------------------------------------------------------
 * Settings.
 * ------------------------------------------------------------------- */

int knytt_lightgcn_create(knytt_lightgcn **out)
{
	if (!out)
		return knytt__err(KNYTT_EINVAL, "out must not be NULL");
	knytt_lightgcn *g = calloc(1, sizeof *g);
	if (!g)
		return knytt__err(KNYTT_ENOMEM, "no memory for a LightGCN model");
	g->dim = 64;
	g->layers = 3;
	g->reg = 1e-4f;
	g->lr = 0.005f;
	g->batch = 8192;
	g->epochs = 30;
	g->seed = 42;
	*out = g;
	return KNYTT_OK;
}

void knytt_lightgcn_close(knytt_lightgcn *g)
{
	if (!g)
		return;
	knytt__afree(g->E);
	knytt__afree(g->F);
	free(g);
}

int knytt__lgc_alloc(knytt_lightgcn *g, uint32_t nusers, uint32_t nitems)
{
	g->nusers = nusers;
	g->nitems = nitems;
	g->E = knytt__aalloc(((size_t)nusers + nitems) * g->dim *
			     sizeof(float));
	g->F = knytt__aalloc(((size_t)nitems ? nitems : 1) * g->dim *
			     sizeof(float));
	if (!g->E || !g->F) {
		knytt__afree(g->E);
		knytt__afree(g->F);
		g->E = g->F = NULL;
		return -1;
	}
	return 0;
}

#define SETTER(g)                                                           \
	if (!(g))                                                           \
		return knytt__err(KNYTT_EINVAL, "model must not be NULL");  \
	if ((g)->trained)                                                   \
		return knytt__err(KNYTT_ESTATE,                             \
				  "settings are fixed once the model is "  \
				  "trained or loaded")

int knytt_lightgcn_set_dim(knytt_lightgcn *g, unsigned dim)
{
	SETTER(g);
	if (dim < 1 || dim > 1024)
		return knytt__err(KNYTT_EINVAL, "dim %u out of range (1..1024)",
				  dim);
	g->dim = dim;
	return KNYTT_OK;
}

int knytt_lightgcn_set_layers(knytt_lightgcn *g, unsigned layers)
{
	SETTER(g);
	if (layers > 8)
		return knytt__err(KNYTT_EINVAL, "layers %u out of range (0..8)",
				  layers);
	g->layers = layers;
	return KNYTT_OK;
}

int knytt_lightgcn_set_reg(knytt_lightgcn *g, float reg)
{
	SETTER(g);
	if (!isfinite(reg) || reg < 0)
		return knytt__err(KNYTT_EINVAL,
				  "reg must be finite and >= 0 (got %g)",
				  (double)reg);
	g->reg = reg;
	return KNYTT_OK;
}

int knytt_lightgcn_set_learning_rate(knytt_lightgcn *g, float lr)
{
	SETTER(g);
	if (!isfinite(lr) || lr <= 0)
		return knytt__err(KNYTT_EINVAL,
				  "learning rate must be finite and > 0 (got "
				  "%g)",
				  (double)lr);
	g->lr = lr;
	return KNYTT_OK;
}

int knytt_lightgcn_set_batch(knytt_lightgcn *g, unsigned batch)
{
	SETTER(g);
	if (batch < 1 || batch > (1u << 24))
		return knytt__err(KNYTT_EINVAL,
				  "batch %u out of range (1..%u)", batch,
				  1u << 24);
	g->batch = batch;
	return KNYTT_OK;
}

int knytt_lightgcn_set_epochs(knytt_lightgcn *g, unsigned epochs)
{
	SETTER(g);
	if (epochs < 1 || epochs > 100000)
		return knytt__err(KNYTT_EINVAL,
				  "epochs %u out of range (1..100000)", epochs);
	g->epochs = epochs;
	return KNYTT_OK;
}

int knytt_lightgcn_set_seed(knytt_lightgcn *g, uint64_t seed)
{
	SETTER(g);
	g->seed = seed;
	return KNYTT_OK;
}

int knytt_lightgcn_set_threads(knytt_lightgcn *g, unsigned threads)
{
	if (!g)
		return knytt__err(KNYTT_EINVAL, "model must not be NULL");
	if (threads > 256)
		return knytt__err(KNYTT_EINVAL,
				  "threads %u out of range (0..256)", threads);
	g->threads = threads;
	return KNYTT_OK;
}

int knytt_lightgcn_set_progress(knytt_lightgcn *g, knytt_progress_fn fn,
				void *ctx)
{
	if (!g)
		return knytt__err(KNYTT_EINVAL, "model must not be NULL");
	g->progress = fn;
	g->progress_ctx = ctx;
	return KNYTT_OK;
}

/* ---------------------------------------------------------------------
 * Reading the model.
 * ------------------------------------------------------------------- */

unsigned knytt_lightgcn_dim(const knytt_lightgcn *g)
{
	return g && g->trained ? g->dim : 0;
}

uint32_t knytt_lightgcn_users(const knytt_lightgcn *g)
{
	return g && g->trained ? g->nusers : 0;
}

uint32_t knytt_lightgcn_items(const knytt_lightgcn *g)
{
	return g && g->trained ? g->nitems : 0;
}

static int copy_rows(const knytt_lightgcn *g, bool items, uint32_t first,
		     uint32_t n, float *out)
{
	if (!g || !out)
		return knytt__err(KNYTT_EINVAL, "model and out must not be NULL");
	if (!g->trained)
		return knytt__err(KNYTT_ESTATE, "model not trained");
	uint32_t rows = items ? g->nitems : g->nusers;
	if (first > rows || n > rows - first)
		return knytt__err(KNYTT_EINVAL, "%s range [%u, %u) beyond %u",
				  items ? "items" : "users", first, first + n,
				  rows);
	size_t r0 = (items ? (size_t)g->nusers : 0) + first;
	memcpy(out, g->E + r0 * g->dim, (size_t)n * g->dim * sizeof *out);
	return KNYTT_OK;
}

int knytt_lightgcn_user_factors(const knytt_lightgcn *g, uint32_t first,
				uint32_t n, float *out)
{
	return copy_rows(g, false, first, n, out);
}

int knytt_lightgcn_item_factors(const knytt_lightgcn *g, uint32_t first,
				uint32_t n, float *out)
{
	return copy_rows(g, true, first, n, out);
}

int knytt_lightgcn_score(const knytt_lightgcn *g, uint32_t user,
			 const uint32_t *items, size_t n, float *out)
{
	if (!g || (!out && n))
		return knytt__err(KNYTT_EINVAL, "model and out must not be NULL");
	if (!g->trained)
		return knytt__err(KNYTT_ESTATE, "model not trained");
	if (user >= g->nusers)
		return knytt__err(KNYTT_EINVAL, "user %u out of range (%u users)",
				  user, g->nusers);
	if (!items && n > g->nitems)
		return knytt__err(KNYTT_EINVAL, "%zu items asked, model has %u",
				  n, g->nitems);
	unsigned d = g->dim;
	const float *eu = g->E + (size_t)user * d;
	const float *Y = g->E + (size_t)g->nusers * d;
	if (!items) {
		/* every item at once: one matrix-vector product */
		if (n)
			cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)n, (int)d,
				    1.0f, Y, (int)d, eu, 1, 0.0f, out, 1);
		return KNYTT_OK;
	}
	for (size_t j = 0; j < n; j++) {
		if (items[j] >= g->nitems)
			return knytt__err(KNYTT_EINVAL,
					  "item %u out of range (%u items)",
					  items[j], g->nitems);
		out[j] = (float)dotd(eu, Y + (size_t)items[j] * d, d);
	}
	return KNYTT_OK;
}

int knytt_lightgcn_scorer(void *ctx, uint32_t user, const uint32_t *items,
			  size_t n, float *out)
{
	return knytt_lightgcn_score(ctx, user, items, n, out);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

int knytt_lightgcn_fold_in(const knytt_lightgcn *g, size_t n,
			   const uint32_t *items, float *vec)
{
	if (!g || !vec || (n && !items))
		return knytt__err(KNYTT_EINVAL,
				  "model, items and vec must not be NULL");
	if (!g->trained)
		return knytt__err(KNYTT_ESTATE, "model not trained");
	for (size_t j = 0; j < n; j++)
		if (items[j] >= g->nitems)
			return knytt__err(KNYTT_EINVAL,
					  "entry %zu: item %u out of range (%u "
					  "items)",
					  j, items[j], g->nitems);
	/* Ascending, as a matrix row: the sum runs in the training
	 * propagation's order. */
	uint32_t *s = malloc((n ? n : 1) * sizeof *s);
	if (!s)
		return knytt__err(KNYTT_ENOMEM,
				  "no memory for a fold-in of %zu items", n);
	if (n)
		memcpy(s, items, n * sizeof *s);
	qsort(s, n, sizeof *s, cmp_u32);
	for (size_t j = 1; j < n; j++)
		if (s[j] == s[j - 1]) {
			uint32_t dup = s[j];
			free(s);
			return knytt__err(KNYTT_EINVAL,
					  "item %u given twice: an item is one "
					  "edge of the graph",
					  dup);
		}
	unsigned d = g->dim;
	memset(vec, 0, d * sizeof *vec);
	float dn = n ? (float)(1.0 / sqrt((double)n)) : 0;
	axpy_fn axpy = pick_axpy(d);
	for (size_t j = 0; j < n; j++)
		axpy(dn, g->F + (size_t)s[j] * d, vec, d);
	free(s);
	return KNYTT_OK;
}
