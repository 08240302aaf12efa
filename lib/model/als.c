/*
 * als.c -- implicit alternating least squares (Hu, Koren & Volinsky 2008).
 *
 * Notation: a row r (a user, or an item in the item half) with entries j
 * of weight w_j has confidence c_j = 1 + alpha w_j; F holds the factors of
 * the other side (one row f_j per entry), G = F^T F + reg I.  The normal
 * equations of the row are
 *     (G + sum_j (c_j - 1) f_j f_j^T) x = sum_j c_j f_j,
 * so the dense part G is computed once per half-epoch (the "YtY trick" of
 * Hu et al., section 4) and each row only adds its own entries.
 *
 * Two row solvers:
 *  - CG (default): a few conjugate-gradient steps warm-started from the
 *    row's previous vector (Takacs, Pilaszy & Tikk 2011).  The matrix is
 *    never formed; one product costs k^2 + 2 n k instead of n k^2 to
 *    build it, which is what makes an ML-1M epoch take tens of ms.
 *  - Cholesky: the matrix is formed (entries gathered, scaled by
 *    sqrt(c - 1) and added with one ssyrk) and solved with LAPACK
 *    spotrf/spotrs: exact, about 3x slower at 64 factors.
 *
 * Factors are stored with a row stride kp = k rounded up to 16 floats and
 * zero padding, so the kernels run whole 512-bit vectors; the padding
 * stays zero through both solvers (its rows and columns of G are zero and
 * so is its part of every right-hand side).
 *
 * Epoch order: items given users, then users given items.  The final user
 * vectors thus answer the final item vectors exactly as a fold-in does.
 */
#include "model.h"

#include "../vec/vec.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

/* ---------------------------------------------------------------------
 * Kernels over kp floats (kp a multiple of 16).
 * ------------------------------------------------------------------- */

typedef struct als_kern {
	float (*dot)(const float *a, const float *b, size_t kp);
	/* out = G p + sum_j cm1[j] (f_j . p) f_j, f_j = F + idx[j] * kp */
	void (*apply)(const float *G, const float *F, const uint32_t *idx,
		      const float *cm1, size_t n, const float *p, float *out,
		      size_t kp);
	/* y += a x */
	void (*axpy)(float a, const float *x, float *y, size_t kp);
	/* r = b - A x = sum_j (1 + cm1[j] - cm1[j] (f_j . x)) f_j - G x,
	 * in one pass over the entries */
	void (*residual)(const float *G, const float *F, const uint32_t *idx,
			 const float *cm1, size_t n, const float *x, float *r,
			 size_t kp);
} als_kern;

static float dot_scalar(const float *a, const float *b, size_t kp)
{
	float s[4] = {0, 0, 0, 0};
	for (size_t j = 0; j < kp; j += 4)
		for (int t = 0; t < 4; t++)
			s[t] += a[j + t] * b[j + t];
	return (s[0] + s[1]) + (s[2] + s[3]);
}

static void axpy_scalar(float a, const float *x, float *y, size_t kp)
{
	for (size_t j = 0; j < kp; j++)
		y[j] += a * x[j];
}

static void apply_scalar(const float *G, const float *F, const uint32_t *idx,
			 const float *cm1, size_t n, const float *p,
			 float *out, size_t kp)
{
	for (size_t r = 0; r < kp; r++)
		out[r] = dot_scalar(G + r * kp, p, kp);
	for (size_t j = 0; j < n; j++) {
		const float *f = F + (size_t)idx[j] * kp;
		axpy_scalar(cm1[j] * dot_scalar(f, p, kp), f, out, kp);
	}
}

static void residual_scalar(const float *G, const float *F,
			    const uint32_t *idx, const float *cm1, size_t n,
			    const float *x, float *r, size_t kp)
{
	for (size_t q = 0; q < kp; q++)
		r[q] = -dot_scalar(G + q * kp, x, kp);
	for (size_t j = 0; j < n; j++) {
		const float *f = F + (size_t)idx[j] * kp;
		axpy_scalar(1.0f + cm1[j] - cm1[j] * dot_scalar(f, x, kp), f, r,
			    kp);
	}
}

static const als_kern kern_scalar = {dot_scalar, apply_scalar, axpy_scalar,
				     residual_scalar};

#if defined(__x86_64__)
#define AVX512 __attribute__((target("avx512f")))

AVX512 static float dot_avx512(const float *a, const float *b, size_t kp)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
	size_t j = 0;
	for (; j + 32 <= kp; j += 32) {
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + j),
				     _mm512_loadu_ps(b + j), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + j + 16),
				     _mm512_loadu_ps(b + j + 16), s1);
	}
	if (j < kp)
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + j),
				     _mm512_loadu_ps(b + j), s0);
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

AVX512 static void axpy_avx512(float a, const float *x, float *y, size_t kp)
{
	__m512 va = _mm512_set1_ps(a);
	for (size_t j = 0; j < kp; j += 16)
		_mm512_storeu_ps(y + j,
				 _mm512_fmadd_ps(va, _mm512_loadu_ps(x + j),
						 _mm512_loadu_ps(y + j)));
}

/*
 * 64 factors (the common case): the vector and the running sum stay in
 * four registers each.  G p is taken as sum_r p_r G_r (G is symmetric),
 * which needs no horizontal sums; each entry needs one, for its dot
 * product.  @p resid selects the residual b - A x (coefficient
 * 1 + cm1 - cm1 d, G x subtracted) instead of A p.
 */
AVX512 static void rows64(const float *G, const float *F, const uint32_t *idx,
			  const float *cm1, size_t n, const float *p,
			  float *out, int resid)
{
	__m512 p0 = _mm512_loadu_ps(p), p1 = _mm512_loadu_ps(p + 16);
	__m512 p2 = _mm512_loadu_ps(p + 32), p3 = _mm512_loadu_ps(p + 48);
	__m512 o0 = _mm512_setzero_ps(), o1 = _mm512_setzero_ps();
	__m512 o2 = _mm512_setzero_ps(), o3 = _mm512_setzero_ps();
	float sg = resid ? -1.0f : 1.0f;
	for (size_t r = 0; r < 64; r++) {
		__m512 pr = _mm512_set1_ps(sg * p[r]);
		const float *g = G + r * 64;
		o0 = _mm512_fmadd_ps(pr, _mm512_loadu_ps(g), o0);
		o1 = _mm512_fmadd_ps(pr, _mm512_loadu_ps(g + 16), o1);
		o2 = _mm512_fmadd_ps(pr, _mm512_loadu_ps(g + 32), o2);
		o3 = _mm512_fmadd_ps(pr, _mm512_loadu_ps(g + 48), o3);
	}
	for (size_t j = 0; j < n; j++) {
		const float *f = F + (size_t)idx[j] * 64;
		__m512 f0 = _mm512_loadu_ps(f);
		__m512 f1 = _mm512_loadu_ps(f + 16);
		__m512 f2 = _mm512_loadu_ps(f + 32);
		__m512 f3 = _mm512_loadu_ps(f + 48);
		__m512 s = _mm512_add_ps(
			_mm512_fmadd_ps(f0, p0, _mm512_mul_ps(f1, p1)),
			_mm512_fmadd_ps(f2, p2, _mm512_mul_ps(f3, p3)));
		float d = _mm512_reduce_add_ps(s);
		__m512 a = _mm512_set1_ps(resid ? 1.0f + cm1[j] - cm1[j] * d
						: cm1[j] * d);
		o0 = _mm512_fmadd_ps(a, f0, o0);
		o1 = _mm512_fmadd_ps(a, f1, o1);
		o2 = _mm512_fmadd_ps(a, f2, o2);
		o3 = _mm512_fmadd_ps(a, f3, o3);
	}
	_mm512_storeu_ps(out, o0);
	_mm512_storeu_ps(out + 16, o1);
	_mm512_storeu_ps(out + 32, o2);
	_mm512_storeu_ps(out + 48, o3);
}

/* 128 factors: the same with eight registers per vector (24 of 32). */
AVX512 static void rows128(const float *G, const float *F,
			   const uint32_t *idx, const float *cm1, size_t n,
			   const float *p, float *out, int resid)
{
	__m512 pv[8], o[8], f[8];
#pragma GCC unroll 8
	for (int v = 0; v < 8; v++) {
		pv[v] = _mm512_loadu_ps(p + 16 * v);
		o[v] = _mm512_setzero_ps();
	}
	float sg = resid ? -1.0f : 1.0f;
	for (size_t r = 0; r < 128; r++) {
		__m512 pr = _mm512_set1_ps(sg * p[r]);
		const float *g = G + r * 128;
#pragma GCC unroll 8
		for (int v = 0; v < 8; v++)
			o[v] = _mm512_fmadd_ps(pr, _mm512_loadu_ps(g + 16 * v),
					       o[v]);
	}
	for (size_t j = 0; j < n; j++) {
		const float *fr = F + (size_t)idx[j] * 128;
		__m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
#pragma GCC unroll 8
		for (int v = 0; v < 8; v += 2) {
			f[v] = _mm512_loadu_ps(fr + 16 * v);
			f[v + 1] = _mm512_loadu_ps(fr + 16 * v + 16);
			a0 = _mm512_fmadd_ps(f[v], pv[v], a0);
			a1 = _mm512_fmadd_ps(f[v + 1], pv[v + 1], a1);
		}
		float d = _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
		__m512 c = _mm512_set1_ps(resid ? 1.0f + cm1[j] - cm1[j] * d
						: cm1[j] * d);
#pragma GCC unroll 8
		for (int v = 0; v < 8; v++)
			o[v] = _mm512_fmadd_ps(c, f[v], o[v]);
	}
#pragma GCC unroll 8
	for (int v = 0; v < 8; v++)
		_mm512_storeu_ps(out + 16 * v, o[v]);
}

/* Any kp: the same arithmetic through memory. */
AVX512 static void rows_any(const float *G, const float *F,
			    const uint32_t *idx, const float *cm1, size_t n,
			    const float *p, float *out, size_t kp, int resid)
{
	memset(out, 0, kp * sizeof *out);
	for (size_t r = 0; r < kp; r++)
		axpy_avx512(resid ? -p[r] : p[r], G + r * kp, out, kp);
	for (size_t j = 0; j < n; j++) {
		const float *fr = F + (size_t)idx[j] * kp;
		float d = dot_avx512(fr, p, kp);
		axpy_avx512(resid ? 1.0f + cm1[j] - cm1[j] * d : cm1[j] * d,
			    fr, out, kp);
	}
}

AVX512 static void apply_avx512(const float *G, const float *F,
				const uint32_t *idx, const float *cm1,
				size_t n, const float *p, float *out,
				size_t kp)
{
	if (kp == 64)
		rows64(G, F, idx, cm1, n, p, out, 0);
	else if (kp == 128)
		rows128(G, F, idx, cm1, n, p, out, 0);
	else
		rows_any(G, F, idx, cm1, n, p, out, kp, 0);
}

AVX512 static void residual_avx512(const float *G, const float *F,
				   const uint32_t *idx, const float *cm1,
				   size_t n, const float *x, float *r,
				   size_t kp)
{
	if (kp == 64)
		rows64(G, F, idx, cm1, n, x, r, 1);
	else if (kp == 128)
		rows128(G, F, idx, cm1, n, x, r, 1);
	else
		rows_any(G, F, idx, cm1, n, x, r, kp, 1);
}

static const als_kern kern_avx512 = {dot_avx512, apply_avx512, axpy_avx512,
				     residual_avx512};
#endif

static const als_kern *kern(void)
{
#if defined(__x86_64__)
	/* Follow lib/vec's choice, so KNYTT_SIMD=scalar forces both. */
	if (strcmp(knytt_simd_name(), "avx512") == 0)
		return &kern_avx512;
#endif
	return &kern_scalar;
}

/* ---------------------------------------------------------------------
 * One row.
 * ------------------------------------------------------------------- */

/* Per-thread scratch. */
typedef struct scratch {
	float *r, *p, *ap, *cm1; /* kp, kp, kp, maxn */
	float *A, *gather;       /* Cholesky: kp * kp, maxn * kp */
	size_t maxn;
} scratch;

static void scratch_free(scratch *s)
{
	knytt__afree(s->r);
	knytt__afree(s->p);
	knytt__afree(s->ap);
	knytt__afree(s->cm1);
	knytt__afree(s->A);
	knytt__afree(s->gather);
	memset(s, 0, sizeof *s);
}

static int scratch_init(scratch *s, size_t kp, size_t maxn, bool chol)
{
	memset(s, 0, sizeof *s);
	s->maxn = maxn;
	s->r = knytt__aalloc(kp * sizeof(float));
	s->p = knytt__aalloc(kp * sizeof(float));
	s->ap = knytt__aalloc(kp * sizeof(float));
	s->cm1 = knytt__aalloc((maxn ? maxn : 1) * sizeof(float));
	if (chol) {
		s->A = knytt__aalloc(kp * kp * sizeof(float));
		s->gather = knytt__aalloc((maxn ? maxn : 1) * kp *
					  sizeof(float));
	}
	if (!s->r || !s->p || !s->ap || !s->cm1 ||
	    (chol && (!s->A || !s->gather))) {
		scratch_free(s);
		return -1;
	}
	return 0;
}

/*
 * The regularization of a row with n entries, when it is scaled by
 * frequency (Rendle et al., "Revisiting the performance of iALS on item
 * recommendation benchmarks", RecSys 2022, section 3.2):
 *     reg_r = reg * (n + nother / (1 + alpha))^nu,
 * where nother / (1 + alpha) is the weight of the unobserved pairs of the
 * row relative to an observed one (their alpha_0).  0 when nu = 0: the
 * plain reg is then inside G already.
 */
static float row_lambda(const knytt_als *als, size_t n, uint32_t nother)
{
	if (als->nu == 0)
		return 0;
	double base = (double)n + (double)nother / (1.0 + als->alpha);
	return (float)(als->reg * pow(base, als->nu));
}

/*
 * Solves one row in place.  @p x holds the warm start (CG) and receives
 * the solution.  Entries idx[0..n) with weights w; G is kp x kp.
 * Returns 0, or -1 if Cholesky found the matrix not positive definite
 * (reg 0 with too few entries), in which case x is left unchanged.
 */
static int solve_row(const knytt_als *als, const als_kern *K,
		     const float *G, const float *F, uint32_t nother,
		     const uint32_t *idx, const float *w, size_t n, float *x,
		     scratch *s)
{
	size_t kp = als->kp, k = als->k;
	float alpha = als->alpha;
	float lam = row_lambda(als, n, nother);
	if (n == 0) {
		/* G x = 0 has the solution 0 (G is positive definite when
		 * reg > 0, and 0 is the minimum-norm answer otherwise). */
		memset(x, 0, kp * sizeof *x);
		return 0;
	}
	for (size_t j = 0; j < n; j++)
		s->cm1[j] = alpha * w[j];

	if (als->solver == KNYTT_ALS_CHOLESKY) {
		float *A = s->A, *b = s->r;
		memcpy(A, G, kp * kp * sizeof *A);
		memset(b, 0, kp * sizeof *b);
		for (size_t j = 0; j < n; j++) {
			const float *f = F + (size_t)idx[j] * kp;
			float sq = sqrtf(s->cm1[j]);
			float *g = s->gather + j * kp;
			for (size_t t = 0; t < kp; t++)
				g[t] = sq * f[t];
			K->axpy(1.0f + s->cm1[j], f, b, kp);
		}
		cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)k,
			    (int)n, 1.0f, s->gather, (int)kp, 1.0f, A,
			    (int)kp);
		for (size_t t = 0; t < k; t++)
			A[t * kp + t] += lam;
		if (LAPACKE_spotrf(LAPACK_ROW_MAJOR, 'U', (lapack_int)k, A,
				   (lapack_int)kp) != 0)
			return -1;
		LAPACKE_spotrs(LAPACK_ROW_MAJOR, 'U', (lapack_int)k, 1, A,
			       (lapack_int)kp, b, 1);
		memcpy(x, b, k * sizeof *x);
		memset(x + k, 0, (kp - k) * sizeof *x);
		return 0;
	}

	/* CG on A x = b, A = G + sum cm1 f f^T, b = sum (1 + cm1) f:
	 * r = b - A x = sum (1 + cm1 - cm1 (f.x)) f - G x. */
	float *r = s->r, *p = s->p, *ap = s->ap;
	K->residual(G, F, idx, s->cm1, n, x, r, kp);
	if (lam != 0)
		K->axpy(-lam, x, r, kp);
	memcpy(p, r, kp * sizeof *p);
	float rs = K->dot(r, r, kp);
	for (unsigned it = 0; it < als->cg_steps; it++) {
		if (!(rs > 1e-20f))
			break;
		K->apply(G, F, idx, s->cm1, n, p, ap, kp);
		if (lam != 0)
			K->axpy(lam, p, ap, kp);
		float pap = K->dot(p, ap, kp);
		if (!(pap > 0))
			break;
		float a = rs / pap;
		K->axpy(a, p, x, kp);
		K->axpy(-a, ap, r, kp);
		float rs2 = K->dot(r, r, kp);
		float beta = rs2 / rs;
		for (size_t t = 0; t < kp; t++)
			p[t] = r[t] + beta * p[t];
		rs = rs2;
	}
	return 0;
}

/* ---------------------------------------------------------------------
 * Half-epochs over threads.
 * ------------------------------------------------------------------- */

typedef struct half {
	const knytt_als *als;
	const als_kern *K;
	const float *G; /* kp x kp */
	const float *F; /* other side's factors */
	uint32_t nother; /* rows of F */
	float *Xs;      /* this side's factors */
	const size_t *ptr;
	const uint32_t *idx;
	const float *w;
	uint32_t from, to; /* rows */
	size_t maxn;
	bool want_loss;
	double loss; /* out: this thread's share of the loss terms */
	int failed;  /* out: rows whose Cholesky failed */
	int nomem;
} half;

static void half_run(void *arg, unsigned t)
{
	half *h = (half *)arg + t;
	const knytt_als *als = h->als;
	size_t kp = als->kp;
	scratch s;
	if (scratch_init(&s, kp, h->maxn,
			 als->solver == KNYTT_ALS_CHOLESKY) != 0) {
		h->nomem = 1;
		return;
	}
	double loss = 0;
	for (uint32_t u = h->from; u < h->to; u++) {
		size_t a = h->ptr[u], n = h->ptr[u + 1] - a;
		float *x = h->Xs + (size_t)u * kp;
		if (solve_row(als, h->K, h->G, h->F, h->nother, h->idx + a,
			      h->w + a, n, x, &s) != 0)
			h->failed++;
		if (!h->want_loss)
			continue;
		/* x^T G x covers sum over all items of (x.y)^2 plus reg |x|^2;
		 * the observed entries add c - 2 c s + (c - 1) s^2. */
		h->K->apply(h->G, h->F, h->idx, NULL, 0, x, s.ap, kp);
		double l = h->K->dot(x, s.ap, kp) +
			   (double)row_lambda(als, n, h->nother) *
				   h->K->dot(x, x, kp);
		for (size_t j = 0; j < n; j++) {
			double sc = h->K->dot(x, h->F + (size_t)h->idx[a + j] * kp,
					      kp);
			double c = 1.0 + (double)als->alpha * h->w[a + j];
			l += c - 2 * c * sc + (c - 1) * sc * sc;
		}
		loss += l;
	}
	h->loss = loss;
	scratch_free(&s);
}

/* Computes G = M^T M + reg I (kp x kp, symmetric, padding zero). */
static void gram(const knytt_als *als, const float *M, uint32_t n, float *G)
{
	size_t kp = als->kp;
	memset(G, 0, kp * kp * sizeof *G);
	if (n > 0)
		cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans,
			    (int)als->k, (int)n, 1.0f, M, (int)kp, 0.0f, G,
			    (int)kp);
	for (size_t a = 0; a < als->k; a++) {
		for (size_t b = 0; b < a; b++)
			G[a * kp + b] = G[b * kp + a];
		if (als->nu == 0)
			G[a * kp + a] += als->reg;
	}
}

void knytt__als_gram_items(knytt_als *als)
{
	gram(als, als->Y, als->nitems, als->GY);
}

static unsigned nthreads_of(const knytt_als *als)
{
	unsigned t = als->threads ? als->threads : knytt__ncpu();
	return t < 1 ? 1 : t;
}

/*
 * Solves rows [0, nrows) of one side over the threads.  Rows are split
 * into contiguous ranges of about equal work (entries + k per row), a
 * function of the matrix alone, so results do not depend on timing.
 */
static int run_half(knytt_als *als, const float *G, const float *F,
		    uint32_t nother, float *Xs, uint32_t nrows,
		    const size_t *ptr, const uint32_t *idx, const float *w,
		    bool want_loss, double *loss)
{
	unsigned nt = nthreads_of(als);
	if (nt > nrows)
		nt = nrows ? nrows : 1;
	half hs[256];
	size_t maxn = 0;
	for (uint32_t u = 0; u < nrows; u++)
		if (ptr[u + 1] - ptr[u] > maxn)
			maxn = ptr[u + 1] - ptr[u];
	double total = (double)ptr[nrows] + (double)nrows * als->k;
	uint32_t start = 0;
	double acc = 0;
	for (unsigned t = 0; t < nt; t++) {
		uint32_t end = start;
		double goal = total * (t + 1) / nt;
		if (t + 1 == nt)
			end = nrows;
		else
			while (end < nrows && acc < goal) {
				acc += (double)(ptr[end + 1] - ptr[end]) +
				       als->k;
				end++;
			}
		hs[t] = (half){.als = als,
			       .K = kern(),
			       .G = G,
			       .F = F,
			       .nother = nother,
			       .Xs = Xs,
			       .ptr = ptr,
			       .idx = idx,
			       .w = w,
			       .from = start,
			       .to = end,
			       .maxn = maxn,
			       .want_loss = want_loss};
		start = end;
	}
	knytt__fork_join(nt, half_run, hs);
	double l = 0;
	int failed = 0, nomem = 0;
	for (unsigned t = 0; t < nt; t++) {
		l += hs[t].loss;
		failed += hs[t].failed;
		nomem |= hs[t].nomem;
	}
	if (loss)
		*loss = l;
	if (nomem)
		return knytt__err(KNYTT_ENOMEM, "no memory for ALS scratch");
	if (failed)
		return knytt__err(KNYTT_EINVAL,
				  "%d rows have a singular system: use reg > 0",
				  failed);
	return KNYTT_OK;
}

int knytt__als_user_pass(knytt_als *als, const knytt_matrix *m)
{
	knytt__als_gram_items(als);
	return run_half(als, als->GY, als->Y, als->nitems, als->X, m->nusers,
			m->rowptr,
			m->items, m->w, false, NULL);
}

/* ---------------------------------------------------------------------
 * Public: settings.
 * ------------------------------------------------------------------- */

int knytt_als_create(knytt_als **out)
{
	if (!out)
		return knytt__err(KNYTT_EINVAL, "out must not be NULL");
	knytt_als *a = calloc(1, sizeof *a);
	if (!a)
		return knytt__err(KNYTT_ENOMEM, "no memory for an ALS model");
	a->k = 64;
	a->reg = 0.1f;
	a->alpha = 1.0f;
	a->iters = 15;
	a->seed = 42;
	a->solver = KNYTT_ALS_CG;
	a->cg_steps = KNYTT__ALS_CG_STEPS;
	*out = a;
	return KNYTT_OK;
}

void knytt_als_close(knytt_als *als)
{
	if (!als)
		return;
	knytt__afree(als->X);
	knytt__afree(als->Y);
	knytt__afree(als->GY);
	free(als);
}

#define SETTER_PROLOGUE(als)                                                \
	if (!(als))                                                         \
		return knytt__err(KNYTT_EINVAL, "model must not be NULL");  \
	if ((als)->trained)                                                 \
		return knytt__err(KNYTT_ESTATE,                             \
				  "settings are fixed once the model is "  \
				  "trained or loaded")

int knytt_als_set_factors(knytt_als *als, unsigned factors)
{
	SETTER_PROLOGUE(als);
	if (factors < 1 || factors > 1024)
		return knytt__err(KNYTT_EINVAL,
				  "factors %u out of range (1..1024)", factors);
	als->k = factors;
	return KNYTT_OK;
}

int knytt_als_set_reg(knytt_als *als, float reg)
{
	SETTER_PROLOGUE(als);
	if (!isfinite(reg) || reg < 0)
		return knytt__err(KNYTT_EINVAL,
				  "reg must be finite and >= 0 (got %g)",
				  (double)reg);
	als->reg = reg;
	return KNYTT_OK;
}

int knytt_als_set_alpha(knytt_als *als, float alpha)
{
	SETTER_PROLOGUE(als);
	if (!isfinite(alpha) || alpha < 0)
		return knytt__err(KNYTT_EINVAL,
				  "alpha must be finite and >= 0 (got %g)",
				  (double)alpha);
	als->alpha = alpha;
	return KNYTT_OK;
}

int knytt_als_set_iterations(knytt_als *als, unsigned iterations)
{
	SETTER_PROLOGUE(als);
	if (iterations < 1 || iterations > 10000)
		return knytt__err(KNYTT_EINVAL,
				  "iterations %u out of range (1..10000)",
				  iterations);
	als->iters = iterations;
	return KNYTT_OK;
}

int knytt_als_set_reg_exponent(knytt_als *als, float nu)
{
	SETTER_PROLOGUE(als);
	if (!isfinite(nu) || nu < 0 || nu > 2)
		return knytt__err(KNYTT_EINVAL,
				  "reg exponent must be in [0, 2] (got %g)",
				  (double)nu);
	als->nu = nu;
	return KNYTT_OK;
}

int knytt_als_set_seed(knytt_als *als, uint64_t seed)
{
	SETTER_PROLOGUE(als);
	als->seed = seed;
	return KNYTT_OK;
}

int knytt_als_set_threads(knytt_als *als, unsigned threads)
{
	if (!als)
		return knytt__err(KNYTT_EINVAL, "model must not be NULL");
	if (threads > 256)
		return knytt__err(KNYTT_EINVAL,
				  "threads %u out of range (0..256)", threads);
	als->threads = threads;
	return KNYTT_OK;
}

int knytt_als_set_solver(knytt_als *als, knytt_als_solver solver,
			 unsigned cg_steps)
{
	SETTER_PROLOGUE(als);
	if (solver != KNYTT_ALS_CG && solver != KNYTT_ALS_CHOLESKY)
		return knytt__err(KNYTT_EINVAL, "unknown solver %d",
				  (int)solver);
	if (cg_steps > 1000)
		return knytt__err(KNYTT_EINVAL,
				  "cg_steps %u out of range (0..1000)",
				  cg_steps);
	als->solver = solver;
	als->cg_steps = cg_steps ? cg_steps : KNYTT__ALS_CG_STEPS;
	return KNYTT_OK;
}

int knytt_als_set_progress(knytt_als *als, knytt_progress_fn fn, void *ctx)
{
	if (!als)
		return knytt__err(KNYTT_EINVAL, "model must not be NULL");
	als->progress = fn;
	als->progress_ctx = ctx;
	return KNYTT_OK;
}

/* ---------------------------------------------------------------------
 * Training.
 * ------------------------------------------------------------------- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Allocates X, Y, GY for the current k / sizes; 0 or -1. */
int knytt__als_alloc(knytt_als *als, uint32_t nusers, uint32_t nitems)
{
	als->kp = (als->k + 15) & ~15u;
	als->nusers = nusers;
	als->nitems = nitems;
	als->X = knytt__aalloc((size_t)nusers * als->kp * sizeof(float));
	als->Y = knytt__aalloc((size_t)nitems * als->kp * sizeof(float));
	als->GY = knytt__aalloc((size_t)als->kp * als->kp * sizeof(float));
	if (!als->X || !als->Y || !als->GY) {
		knytt__afree(als->X);
		knytt__afree(als->Y);
		knytt__afree(als->GY);
		als->X = als->Y = als->GY = NULL;
		return -1;
	}
	return 0;
}

int knytt_als_train(knytt_als *als, const knytt_matrix *m)
{
	if (!als)
		return knytt__err(KNYTT_EINVAL, "model must not be NULL");
	if (als->trained)
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
	if (als->solver == KNYTT_ALS_CHOLESKY && als->reg <= 0)
		return knytt__err(KNYTT_EINVAL,
				  "reg must be > 0 with the Cholesky solver");
	if (knytt__als_alloc(als, m->nusers, m->nitems) != 0)
		return knytt__err(KNYTT_ENOMEM,
				  "no memory for %u x %u factors",
				  m->nusers + m->nitems, als->k);
	size_t kp = als->kp;
	float *GX = knytt__aalloc(kp * kp * sizeof(float));
	if (!GX)
		return knytt__err(KNYTT_ENOMEM, "no memory for the Gramian");
	/* Small random start, scale 0.1 / sqrt(k) per entry so that initial
	 * scores are near 0 whatever k is. */
	uint64_t s = als->seed;
	float sc = 0.1f / sqrtf((float)als->k);
	for (uint32_t u = 0; u < m->nusers; u++)
		for (unsigned t = 0; t < als->k; t++)
			als->X[(size_t)u * kp + t] =
				sc * (float)(2 * knytt__randu(&s) - 1);
	for (uint32_t i = 0; i < m->nitems; i++)
		for (unsigned t = 0; t < als->k; t++)
			als->Y[(size_t)i * kp + t] =
				sc * (float)(2 * knytt__randu(&s) - 1);
	als->trained = true; /* read functions work from the callback */

	double t0 = now_s();
	int rc = KNYTT_OK;
	for (unsigned ep = 0; ep < als->iters; ep++) {
		gram(als, als->X, m->nusers, GX);
		rc = run_half(als, GX, als->X, m->nusers, als->Y, m->nitems,
			      m->colptr,
			      m->users, m->cw, false, NULL);
		if (rc)
			break;
		knytt__als_gram_items(als);
		double loss = 0;
		rc = run_half(als, als->GY, als->Y, m->nitems, als->X,
			      m->nusers,
			      m->rowptr, m->items, m->w,
			      als->progress != NULL, &loss);
		if (rc)
			break;
		if (als->progress) {
			/* The user pass counted reg |x|^2 inside x^T G x;
			 * the items' reg term is added here. */
			double ry = 0;
			for (uint32_t i = 0; i < m->nitems; i++) {
				size_t ni = m->colptr[i + 1] - m->colptr[i];
				double li = als->nu == 0
						    ? als->reg
						    : row_lambda(als, ni,
								 m->nusers);
				ry += li * kern()->dot(als->Y + (size_t)i * kp,
						       als->Y + (size_t)i * kp,
						       kp);
			}
			double el = now_s() - t0;
			knytt_progress p = {
				.epoch = ep + 1,
				.epochs = als->iters,
				.loss = loss + ry,
				.elapsed = el,
				.eta = el / (ep + 1) * (als->iters - ep - 1)};
			if (als->progress(als->progress_ctx, &p) != 0) {
				rc = knytt__err(KNYTT_ECANCELED,
						"training canceled after "
						"epoch %u of %u",
						ep + 1, als->iters);
				break;
			}
		}
	}
	knytt__afree(GX);
	if (rc && rc != KNYTT_ECANCELED) {
		knytt__afree(als->X);
		knytt__afree(als->Y);
		knytt__afree(als->GY);
		als->X = als->Y = als->GY = NULL;
		als->trained = false;
	}
	return rc;
}

/* ---------------------------------------------------------------------
 * Reading the model.
 * ------------------------------------------------------------------- */

unsigned knytt_als_factors(const knytt_als *als)
{
	return als && als->trained ? als->k : 0;
}

uint32_t knytt_als_users(const knytt_als *als)
{
	return als && als->trained ? als->nusers : 0;
}

uint32_t knytt_als_items(const knytt_als *als)
{
	return als && als->trained ? als->nitems : 0;
}

static int copy_rows(const knytt_als *als, const float *M, uint32_t nrows,
		     uint32_t first, uint32_t n, float *out, const char *what)
{
	if (!als || !out)
		return knytt__err(KNYTT_EINVAL, "model and out must not be NULL");
	if (!als->trained)
		return knytt__err(KNYTT_ESTATE, "model not trained");
	if (first > nrows || n > nrows - first)
		return knytt__err(KNYTT_EINVAL,
				  "%s range [%u, %u) beyond %u %s", what,
				  first, first + n, nrows, what);
	for (uint32_t r = 0; r < n; r++)
		memcpy(out + (size_t)r * als->k,
		       M + (size_t)(first + r) * als->kp,
		       als->k * sizeof *out);
	return KNYTT_OK;
}

int knytt_als_user_factors(const knytt_als *als, uint32_t first, uint32_t n,
			   float *out)
{
	return copy_rows(als, als ? als->X : NULL, als ? als->nusers : 0,
			 first, n, out, "users");
}

int knytt_als_item_factors(const knytt_als *als, uint32_t first, uint32_t n,
			   float *out)
{
	return copy_rows(als, als ? als->Y : NULL, als ? als->nitems : 0,
			 first, n, out, "items");
}

int knytt_als_score(const knytt_als *als, uint32_t user,
		    const uint32_t *items, size_t n, float *out)
{
	if (!als || (!out && n))
		return knytt__err(KNYTT_EINVAL, "model and out must not be NULL");
	if (!als->trained)
		return knytt__err(KNYTT_ESTATE, "model not trained");
	if (user >= als->nusers)
		return knytt__err(KNYTT_EINVAL, "user %u out of range (%u users)",
				  user, als->nusers);
	if (!items && n > als->nitems)
		return knytt__err(KNYTT_EINVAL, "%zu items asked, model has %u",
				  n, als->nitems);
	const als_kern *K = kern();
	const float *x = als->X + (size_t)user * als->kp;
	for (size_t j = 0; j < n; j++) {
		uint32_t i = items ? items[j] : (uint32_t)j;
		if (i >= als->nitems)
			return knytt__err(KNYTT_EINVAL,
					  "item %u out of range (%u items)", i,
					  als->nitems);
		out[j] = K->dot(x, als->Y + (size_t)i * als->kp, als->kp);
	}
	return KNYTT_OK;
}

int knytt_als_scorer(void *ctx, uint32_t user, const uint32_t *items,
		     size_t n, float *out)
{
	return knytt_als_score(ctx, user, items, n, out);
}

typedef struct iw {
	uint32_t item;
	float w;
} iw;

static int iw_cmp(const void *a, const void *b)
{
	uint32_t x = ((const iw *)a)->item, y = ((const iw *)b)->item;
	return (x > y) - (x < y);
}

int knytt_als_fold_in(const knytt_als *als, size_t n, const uint32_t *items,
		      const float *weights, float *vec)
{
	if (!als || !vec || (n && (!items || !weights)))
		return knytt__err(KNYTT_EINVAL,
				  "model, items, weights and vec must not be "
				  "NULL");
	if (!als->trained)
		return knytt__err(KNYTT_ESTATE, "model not trained");
	for (size_t j = 0; j < n; j++) {
		if (items[j] >= als->nitems)
			return knytt__err(KNYTT_EINVAL,
					  "entry %zu: item %u out of range (%u "
					  "items)",
					  j, items[j], als->nitems);
		if (!isfinite(weights[j]) || weights[j] < 0)
			return knytt__err(KNYTT_EINVAL,
					  "entry %zu: weight must be finite and "
					  ">= 0",
					  j);
	}
	size_t kp = als->kp;
	/* Sorted like a matrix row, so the sums run in the sweep's order
	 * and the answer is bit-identical to it. */
	iw *e = malloc((n ? n : 1) * sizeof *e);
	uint32_t *idx = malloc((n ? n : 1) * sizeof *idx);
	float *w = malloc((n ? n : 1) * sizeof *w);
	float *x = knytt__aalloc(kp * sizeof *x);
	scratch s;
	int rc = KNYTT_ENOMEM;
	bool have_s = false;
	if (!e || !idx || !w || !x)
		goto out;
	if (scratch_init(&s, kp, n, als->solver == KNYTT_ALS_CHOLESKY) != 0)
		goto out;
	have_s = true;
	for (size_t j = 0; j < n; j++) {
		e[j].item = items[j];
		e[j].w = weights[j];
	}
	qsort(e, n, sizeof *e, iw_cmp);
	for (size_t j = 0; j < n; j++) {
		if (j > 0 && e[j].item == e[j - 1].item) {
			rc = knytt__err(KNYTT_EINVAL,
					"item %u given twice: sum its weights",
					e[j].item);
			goto out;
		}
		idx[j] = e[j].item;
		w[j] = e[j].w;
	}
	memcpy(x, vec, als->k * sizeof *x);
	if (solve_row(als, kern(), als->GY, als->Y, als->nitems, idx, w, n, x,
		      &s) != 0) {
		rc = knytt__err(KNYTT_EINVAL,
				"singular system: the model needs reg > 0");
		goto out;
	}
	memcpy(vec, x, als->k * sizeof *vec);
	rc = KNYTT_OK;
out:
	if (rc == KNYTT_ENOMEM)
		knytt__err(rc, "no memory for a fold-in of %zu items", n);
	if (have_s)
		scratch_free(&s);
	free(e);
	free(idx);
	free(w);
	knytt__afree(x);
	return rc;
}
