/*
 * sasrec.c -- the self-attentive sequence network (Kang & McAuley, ICDM
 * 2018), forward and backward by hand on BLAS.
 *
 *   x0_t = (E[s_t] sqrt(d) + P[L - n + t]) * dropout
 *   block:  h = LN1(x);  [q k v] = h Wqkv + bqkv
 *           a = softmax_causal(q k^T / sqrt(d)) v
 *           x1 = x + dropout(a)
 *           g = LN2(x1);  y = dropout(relu(g W1 + b1)) W2 + b2
 *           x' = x1 + dropout(y)
 *   z = LNf(x_blocks);  score of item i after position t: z_t . E[i]
 *
 * Where it departs from the paper's code, and why:
 *  - No padding: a sequence of n < L items occupies the last n positions
 *    and only those rows are computed, so a short history costs n, not
 *    L, and no key mask is needed (causality alone keeps every row on
 *    real items).
 *  - Pre-norm residuals x + f(LN(x)) (the usual Transformer form); the
 *    paper's code adds the residual to the normalised input instead.
 *  - One attention head and no output projection, as the paper's
 *    default; no dropout on the attention weights themselves.
 * Every product is one cblas_sgemm over the n rows of one sequence; the
 * caller runs sequences on threads (sasrectrain.c).
 */
#include "sasrec.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LN_EPS 1e-6f

void knytt__sr_shape_init(knytt__sr_shape *s, unsigned d, unsigned L,
			  unsigned blocks, uint32_t nitems)
{
	s->d = d;
	s->L = L;
	s->blocks = blocks;
	s->nitems = nitems;
	s->E = 0;
	s->P = (size_t)nitems * d;
	s->blk = s->P + (size_t)L * d;
	s->bsz = 2 * (size_t)d + 3 * (size_t)d * d + 3 * (size_t)d +
		 2 * (size_t)d + 2 * ((size_t)d * d + d);
	s->lnf = s->blk + blocks * s->bsz;
	s->total = s->lnf + 2 * (size_t)d;
}

size_t knytt__sr_off(const knytt__sr_shape *s, unsigned b, int part)
{
	size_t d = s->d, o = s->blk + b * s->bsz;
	static const unsigned char n_d[KNYTT__SR_NPART] = {1, 1, 0, 3, 1,
							    1, 0, 1, 0, 1};
	static const unsigned char n_dd[KNYTT__SR_NPART] = {0, 0, 3, 0, 0,
							     0, 1, 0, 1, 0};
	for (int p = 0; p < part; p++)
		o += n_d[p] * d + n_dd[p] * d * d;
	return o;
}

/* Per block activations, n rows each (allocated for L). */
typedef struct sr_blk {
	float *x;        /* block input, n x d */
	float *h, *mu1, *rs1;   /* LN1 output; its mean and 1/std per row */
	float *qkv;      /* n x 3d */
	float *A;        /* n x n attention weights (0 above the diagonal) */
	float *mo;       /* n x d dropout scale of the attention output */
	float *x1;       /* n x d */
	float *g, *mu2, *rs2;
	float *f;        /* n x d relu(g W1 + b1) */
	float *fd;       /* n x d f * mf */
	float *mf, *my;  /* n x d dropout scales */
} sr_blk;

struct knytt__sr_work {
	size_t L, d;
	sr_blk *b;       /* blocks + 1: b[blocks].x is the final input */
	float *m0;       /* n x d dropout scale of the embeddings */
	float *z, *muf, *rsf;
	/* backward scratch */
	float *dx, *dx1, *dh, *dqkv, *dA, *dt, *dt2, *dcur;
	bool dropped;    /* masks drawn in the last forward */
	float *mem;
};

knytt__sr_work *knytt__sr_work_new(const knytt__sr_shape *s)
{
	size_t L = s->L, d = s->d, nb = s->blocks;
	size_t per = 12 * L * d + L * L + 4 * L;
	size_t total = (nb + 1) * per + 2 * L * d + 2 * L + 9 * L * d + L * L;
	knytt__sr_work *w = calloc(1, sizeof *w);
	float *m = w ? knytt__aalloc(total * sizeof *m) : NULL;
	sr_blk *b = m ? calloc(nb + 1, sizeof *b) : NULL;
	if (!b) {
		knytt__afree(m);
		free(w);
		return NULL;
	}
	w->L = L, w->d = d, w->b = b, w->mem = m;
	for (size_t k = 0; k <= nb; k++) {
		float **ld[] = {&b[k].x,  &b[k].h,  &b[k].mo, &b[k].x1,
				&b[k].g,  &b[k].f,  &b[k].fd, &b[k].mf,
				&b[k].my};
		for (size_t j = 0; j < sizeof ld / sizeof *ld; j++, m += L * d)
			*ld[j] = m;
		b[k].qkv = m, m += 3 * L * d;
		b[k].A = m, m += L * L;
		b[k].mu1 = m, m += L;
		b[k].rs1 = m, m += L;
		b[k].mu2 = m, m += L;
		b[k].rs2 = m, m += L;
	}
	w->m0 = m, m += L * d;
	w->z = m, m += L * d;
	w->muf = m, m += L;
	w->rsf = m, m += L;
	w->dx = m, m += L * d;
	w->dx1 = m, m += L * d;
	w->dh = m, m += L * d;
	w->dqkv = m, m += 3 * L * d;
	w->dt = m, m += L * d;
	w->dt2 = m, m += L * d;
	w->dcur = m, m += L * d;
	w->dA = m;
	return w;
}

void knytt__sr_work_free(knytt__sr_work *w)
{
	if (!w)
		return;
	knytt__afree(w->mem);
	free(w->b);
	free(w);
}

/* ---- layer norm ---- */

static void ln_fwd(const float *x, size_t n, size_t d, const float *gain,
		   const float *bias, float *out, float *mu, float *rs)
{
	for (size_t t = 0; t < n; t++) {
		const float *r = x + t * d;
		double m = 0, v = 0;
		for (size_t j = 0; j < d; j++)
			m += r[j];
		m /= (double)d;
		for (size_t j = 0; j < d; j++)
			v += (r[j] - m) * (r[j] - m);
		v /= (double)d;
		float s = (float)(1.0 / sqrt(v + LN_EPS));
		mu[t] = (float)m, rs[t] = s;
		for (size_t j = 0; j < d; j++)
			out[t * d + j] = gain[j] * (r[j] - (float)m) * s + bias[j];
	}
}

/* dx += LN'(dout); dgain, dbias accumulated. */
static void ln_bwd(const float *x, size_t n, size_t d, const float *gain,
		   const float *mu, const float *rs, const float *dout,
		   float *dx, float *dgain, float *dbias)
{
	for (size_t t = 0; t < n; t++) {
		const float *r = x + t * d, *go = dout + t * d;
		double s1 = 0, s2 = 0;
		for (size_t j = 0; j < d; j++) {
			float xh = (r[j] - mu[t]) * rs[t];
			float gx = go[j] * gain[j];
			dgain[j] += go[j] * xh;
			dbias[j] += go[j];
			s1 += gx;
			s2 += gx * xh;
		}
		float m1 = (float)(s1 / (double)d), m2 = (float)(s2 / (double)d);
		for (size_t j = 0; j < d; j++) {
			float xh = (r[j] - mu[t]) * rs[t];
			dx[t * d + j] += rs[t] * (go[j] * gain[j] - m1 - xh * m2);
		}
	}
}

/* Inverted dropout scales: 0 with probability p, else 1 / (1 - p). */
static void draw_mask(float *m, size_t n, float p, uint64_t *rng)
{
	float keep = 1.0f / (1.0f - p);
	for (size_t j = 0; j < n; j++)
		m[j] = knytt__randu(rng) < p ? 0.0f : keep;
}

/* C (m x n) = op(A) op(B) + beta C, row-major. */
static void gemm(bool ta, bool tb, size_t m, size_t n, size_t k,
		 const float *A, size_t lda, const float *B, size_t ldb,
		 float beta, float *C, size_t ldc)
{
	cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
		    tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k,
		    1.0f, A, (int)lda, B, (int)ldb, beta, C, (int)ldc);
}

static void add_bias(float *x, size_t n, size_t cols, const float *b)
{
	for (size_t t = 0; t < n; t++)
		for (size_t j = 0; j < cols; j++)
			x[t * cols + j] += b[j];
}

/* ---- forward ---- */

static void attention_fwd(size_t n, size_t d, sr_blk *k)
{
	float scale = 1.0f / sqrtf((float)d);
	const float *q = k->qkv, *kk = k->qkv + d, *v = k->qkv + 2 * d;
	gemm(false, true, n, n, d, q, 3 * d, kk, 3 * d, 0.0f, k->A, n);
	for (size_t t = 0; t < n; t++) {
		float *a = k->A + t * n, mx = -INFINITY;
		for (size_t j = 0; j <= t; j++) {
			a[j] *= scale;
			mx = a[j] > mx ? a[j] : mx;
		}
		double sum = 0;
		for (size_t j = 0; j <= t; j++)
			sum += (a[j] = expf(a[j] - mx));
		float inv = (float)(1.0 / sum);
		for (size_t j = 0; j <= t; j++)
			a[j] *= inv;
		for (size_t j = t + 1; j < n; j++)
			a[j] = 0.0f;
	}
	/* the attention output goes to x1, the residual added below */
	gemm(false, false, n, d, n, k->A, n, v, 3 * d, 0.0f, k->x1, d);
}


/* Pointers to the parts of block b in W (or in a gradient of W's
 * layout). */
typedef struct blk_p {
	float *ln1g, *ln1b, *wqkv, *bqkv, *ln2g, *ln2b, *w1, *b1, *w2, *b2;
} blk_p;

static blk_p params(const knytt__sr_shape *s, const float *W, unsigned b)
{
	float *w = (float *)W; /* the forward only reads through it */
	blk_p p;
	float **f[KNYTT__SR_NPART] = {&p.ln1g, &p.ln1b, &p.wqkv, &p.bqkv,
				      &p.ln2g, &p.ln2b, &p.w1,   &p.b1,
				      &p.w2,   &p.b2};
	for (int q = 0; q < KNYTT__SR_NPART; q++)
		*f[q] = w + knytt__sr_off(s, b, q);
	return p;
}

static void dropout_apply(bool on, float *x, float *mask, size_t n, float p,
			  uint64_t *rng)
{
	if (!on)
		return;
	draw_mask(mask, n, p, rng);
	for (size_t j = 0; j < n; j++)
		x[j] *= mask[j];
}

/* One block: k->x (n x d) to xo. */
static void block_fwd(size_t n, size_t d, const blk_p *p, sr_blk *k,
		      float *xo, bool drop, float rate, uint64_t *rng)
{
	size_t nd = n * d;
	ln_fwd(k->x, n, d, p->ln1g, p->ln1b, k->h, k->mu1, k->rs1);
	gemm(false, false, n, 3 * d, d, k->h, d, p->wqkv, 3 * d, 0.0f, k->qkv,
	     3 * d);
	add_bias(k->qkv, n, 3 * d, p->bqkv);
	attention_fwd(n, d, k);
	dropout_apply(drop, k->x1, k->mo, nd, rate, rng);
	for (size_t j = 0; j < nd; j++)
		k->x1[j] += k->x[j];
	ln_fwd(k->x1, n, d, p->ln2g, p->ln2b, k->g, k->mu2, k->rs2);
	gemm(false, false, n, d, d, k->g, d, p->w1, d, 0.0f, k->f, d);
	add_bias(k->f, n, d, p->b1);
	for (size_t j = 0; j < nd; j++)
		k->f[j] = k->f[j] > 0.0f ? k->f[j] : 0.0f;
	memcpy(k->fd, k->f, nd * sizeof *k->fd);
	dropout_apply(drop, k->fd, k->mf, nd, rate, rng);
	gemm(false, false, n, d, d, k->fd, d, p->w2, d, 0.0f, xo, d);
	add_bias(xo, n, d, p->b2);
	dropout_apply(drop, xo, k->my, nd, rate, rng);
	for (size_t j = 0; j < nd; j++)
		xo[j] += k->x1[j];
}

const float *knytt__sr_forward(const knytt__sr_shape *s, const float *W,
			       knytt__sr_work *w, const uint32_t *seq,
			       size_t n, float dropout, uint64_t *rng)
{
	size_t d = s->d, p0 = s->L - n;
	float sq = sqrtf((float)d);
	float *x = w->b[0].x;
	w->dropped = dropout > 0.0f;
	for (size_t t = 0; t < n; t++) {
		const float *e = W + s->E + (size_t)seq[t] * d;
		const float *pp = W + s->P + (p0 + t) * d;
		for (size_t j = 0; j < d; j++)
			x[t * d + j] = e[j] * sq + pp[j];
	}
	dropout_apply(w->dropped, x, w->m0, n * d, dropout, rng);
	for (unsigned b = 0; b < s->blocks; b++) {
		blk_p p = params(s, W, b);
		block_fwd(n, d, &p, &w->b[b], w->b[b + 1].x, w->dropped,
			  dropout, rng);
	}
	ln_fwd(w->b[s->blocks].x, n, d, W + s->lnf, W + s->lnf + d, w->z,
	       w->muf, w->rsf);
	return w->z;
}

/* ---- backward ---- */

static void colsum_add(const float *x, size_t n, size_t cols, float *out)
{
	for (size_t t = 0; t < n; t++)
		for (size_t j = 0; j < cols; j++)
			out[j] += x[t * cols + j];
}

/*
 * Attention backward: from do (n x d, the gradient of the attention
 * output after its dropout scale) to w->dqkv.  With S = q k^T / sqrt(d)
 * and A = softmax(S) row-wise over j <= t:
 *   dA = do v^T,  dv = A^T do,
 *   dS_tj = A_tj (dA_tj - sum_k A_tk dA_tk),
 *   dq = dS k / sqrt(d),  dk = dS^T q / sqrt(d).
 */
static void attention_bwd(size_t n, size_t d, const sr_blk *k,
			  const float *dout, knytt__sr_work *w)
{
	float scale = 1.0f / sqrtf((float)d);
	const float *q = k->qkv, *kk = k->qkv + d, *v = k->qkv + 2 * d;
	float *dA = w->dA;
	gemm(false, true, n, n, d, dout, d, v, 3 * d, 0.0f, dA, n);
	gemm(true, false, n, d, n, k->A, n, dout, d, 0.0f, w->dqkv + 2 * d,
	     3 * d);
	for (size_t t = 0; t < n; t++) {
		const float *a = k->A + t * n;
		float *g = dA + t * n;
		double dot = 0;
		for (size_t j = 0; j <= t; j++)
			dot += (double)a[j] * g[j];
		for (size_t j = 0; j <= t; j++)
			g[j] = a[j] * (g[j] - (float)dot) * scale;
		for (size_t j = t + 1; j < n; j++)
			g[j] = 0.0f;
	}
	gemm(false, false, n, d, n, dA, n, kk, 3 * d, 0.0f, w->dqkv, 3 * d);
	gemm(true, false, n, d, n, dA, n, q, 3 * d, 0.0f, w->dqkv + d, 3 * d);
}

/*
 * One block backward: dxo (gradient of the block's output, n x d) in,
 * gradient of its input written to dxi; parameter gradients added to gp.
 * dxo and dxi may not alias; w->dx1, dh, dt, dt2 are scratch.
 */
static void block_bwd(size_t n, size_t d, const blk_p *p, const blk_p *gp,
		      const sr_blk *k, bool drop, const float *dxo, float *dxi,
		      knytt__sr_work *w)
{
	size_t nd = n * d;
	float *dx1 = w->dx1, *dy = w->dt, *df = w->dt2;
	/* x' = x1 + dropout(fd W2 + b2) */
	memcpy(dx1, dxo, nd * sizeof *dx1);
	for (size_t j = 0; j < nd; j++)
		dy[j] = drop ? dxo[j] * k->my[j] : dxo[j];
	gemm(true, false, d, d, n, k->fd, d, dy, d, 1.0f, gp->w2, d);
	colsum_add(dy, n, d, gp->b2);
	gemm(false, true, n, d, d, dy, d, p->w2, d, 0.0f, df, d);
	for (size_t j = 0; j < nd; j++)
		df[j] = k->f[j] > 0.0f ? (drop ? df[j] * k->mf[j] : df[j])
				       : 0.0f;
	gemm(true, false, d, d, n, k->g, d, df, d, 1.0f, gp->w1, d);
	colsum_add(df, n, d, gp->b1);
	gemm(false, true, n, d, d, df, d, p->w1, d, 0.0f, w->dh, d);
	ln_bwd(k->x1, n, d, p->ln2g, k->mu2, k->rs2, w->dh, dx1, gp->ln2g,
	       gp->ln2b);
	/* x1 = x + dropout(attention(LN1(x))) */
	memcpy(dxi, dx1, nd * sizeof *dxi);
	float *da = w->dt;
	for (size_t j = 0; j < nd; j++)
		da[j] = drop ? dx1[j] * k->mo[j] : dx1[j];
	attention_bwd(n, d, k, da, w);
	gemm(true, false, d, 3 * d, n, k->h, d, w->dqkv, 3 * d, 1.0f, gp->wqkv,
	     3 * d);
	colsum_add(w->dqkv, n, 3 * d, gp->bqkv);
	gemm(false, true, n, d, 3 * d, w->dqkv, 3 * d, p->wqkv, 3 * d, 0.0f,
	     w->dh, d);
	ln_bwd(k->x, n, d, p->ln1g, k->mu1, k->rs1, w->dh, dxi, gp->ln1g,
	       gp->ln1b);
}

static double softplus(double z)
{
	return z > 0 ? z + log1p(exp(-z)) : log1p(exp(z));
}

/* Loss of the final states against the targets; dz into w->dx, the
 * output side of the item embeddings' gradient into G. */
static double output_bwd(const knytt__sr_shape *s, const float *W,
			 knytt__sr_work *w, size_t n, const uint32_t *pos,
			 const uint32_t *neg, float *G)
{
	size_t d = s->d;
	double loss = 0;
	for (size_t t = 0; t < n; t++) {
		const float *z = w->z + t * d;
		const float *ep = W + s->E + (size_t)pos[t] * d;
		const float *en = W + s->E + (size_t)neg[t] * d;
		double lp = 0, ln = 0;
		for (size_t j = 0; j < d; j++) {
			lp += (double)z[j] * ep[j];
			ln += (double)z[j] * en[j];
		}
		loss += softplus(-lp) + softplus(ln);
		float gp = (float)(1.0 / (1.0 + exp(-lp)) - 1.0);
		float gn = (float)(1.0 / (1.0 + exp(-ln)));
		float *Gp = G + s->E + (size_t)pos[t] * d;
		float *Gn = G + s->E + (size_t)neg[t] * d;
		float *dz = w->dx + t * d;
		for (size_t j = 0; j < d; j++) {
			dz[j] = gp * ep[j] + gn * en[j];
			Gp[j] += gp * z[j];
			Gn[j] += gn * z[j];
		}
	}
	return loss;
}

double knytt__sr_loss_grad(const knytt__sr_shape *s, const float *W,
			   knytt__sr_work *w, const uint32_t *seq, size_t n,
			   const uint32_t *pos, const uint32_t *neg,
			   float dropout, uint64_t *rng, float *G)
{
	size_t d = s->d, nd = n * d, p0 = s->L - n;
	knytt__sr_forward(s, W, w, seq, n, dropout, rng);
	double loss = output_bwd(s, W, w, n, pos, neg, G);
	/* z = LNf(x_blocks): the gradient at a block's output is kept in
	 * cur, copied to w->dx as the input of the block's backward. */
	float *cur = w->dcur;
	memset(cur, 0, nd * sizeof *cur);
	ln_bwd(w->b[s->blocks].x, n, d, W + s->lnf, w->muf, w->rsf, w->dx, cur,
	       G + s->lnf, G + s->lnf + d);
	for (unsigned b = s->blocks; b-- > 0;) {
		blk_p p = params(s, W, b), gp = params(s, G, b);
		memcpy(w->dx, cur, nd * sizeof *cur);
		block_bwd(n, d, &p, &gp, &w->b[b], w->dropped, w->dx, cur, w);
	}
	/* x0 = (E[s_t] sqrt(d) + P[p0 + t]) * m0 */
	float sq = sqrtf((float)d);
	for (size_t t = 0; t < n; t++) {
		float *Ge = G + s->E + (size_t)seq[t] * d;
		float *Gq = G + s->P + (p0 + t) * d;
		for (size_t j = 0; j < d; j++) {
			float g = cur[t * d + j];
			if (w->dropped)
				g *= w->m0[t * d + j];
			Ge[j] += g * sq;
			Gq[j] += g;
		}
	}
	return loss;
}

/* Uniform in [-a, a]. */
static float unif(uint64_t *rng, float a)
{
	return (float)((2.0 * knytt__randu(rng) - 1.0) * a);
}

static void xavier(float *x, size_t rows, size_t cols, uint64_t *rng)
{
	float a = sqrtf(6.0f / (float)(rows + cols));
	for (size_t j = 0; j < rows * cols; j++)
		x[j] = unif(rng, a);
}

void knytt__sr_init(const knytt__sr_shape *s, float *W, uint64_t *rng)
{
	size_t d = s->d;
	memset(W, 0, s->total * sizeof *W);
	xavier(W + s->E, s->nitems, d, rng);
	xavier(W + s->P, s->L, d, rng);
	for (unsigned b = 0; b < s->blocks; b++) {
		blk_p p = params(s, W, b);
		xavier(p.wqkv, d, 3 * d, rng);
		xavier(p.w1, d, d, rng);
		xavier(p.w2, d, d, rng);
		for (size_t j = 0; j < d; j++)
			p.ln1g[j] = p.ln2g[j] = 1.0f;
	}
	for (size_t j = 0; j < d; j++)
		W[s->lnf + j] = 1.0f;
}
