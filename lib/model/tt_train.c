/*
 * tt_train.c -- training of the two-tower model (twotower.c): an
 * in-batch sampled softmax with the log-popularity correction, lazy Adam,
 * threads over disjoint rows.  The design notes (departures from Yi et
 * al. 2019, determinism) open twotower.c.
 */
#include "features.h"
#include "twotower.h"

#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- training ---------------------------------------------------------- */

typedef struct tt_train {
	tt_model *m;
	unsigned nt, hmax, bmax;
	float temp, id_drop, lr;
	uint64_t rng;
	long step;
	/* interactions grouped by user in time order */
	uint32_t *uoff;   /* nusers + 1 */
	uint32_t *seq;    /* items */
	/* training examples: positions into seq with weight > 0 */
	size_t nex;
	uint32_t *ex_pos, *ex_user;
	float *ex_w; /* weight per position of seq */
	float *logq; /* log frequency per item among positives */
	/* gradients and Adam moments, laid out as W */
	float *G, *M1, *M2;
	uint8_t *touched;
	uint32_t *tlist;
	size_t ntl;
	/* batch buffers */
	int32_t *slot;     /* nitems, -1 = not in batch */
	uint32_t *uitem;   /* unique items of the batch */
	uint8_t *ukeep;    /* id embedding used */
	float *uv, *unorm; /* their vectors and pre-norms */
	float *ugv;        /* gradient w.r.t. their vectors */
	size_t nu, ucap;
	const uint32_t *bex; /* the batch's examples */
	size_t B;
	float *U, *snorm, *P, *L, *dU, *dP;
	double *rowloss;
} tt_train;

static void train_free(tt_train *T)
{
	if (!T)
		return;
	free(T->uoff);
	free(T->seq);
	free(T->ex_pos);
	free(T->ex_user);
	free(T->ex_w);
	free(T->logq);
	knytt__afree(T->G);
	knytt__afree(T->M1);
	knytt__afree(T->M2);
	free(T->touched);
	free(T->tlist);
	free(T->slot);
	free(T->uitem);
	free(T->ukeep);
	knytt__afree(T->uv);
	free(T->unorm);
	knytt__afree(T->ugv);
	knytt__afree(T->U);
	free(T->snorm);
	knytt__afree(T->P);
	knytt__afree(T->L);
	knytt__afree(T->dU);
	knytt__afree(T->dP);
	free(T->rowloss);
	free(T);
}

typedef struct ord {
	int64_t t;
	uint32_t k;
} ord;

static int cmp_ord(const void *a, const void *b)
{
	const ord *x = a, *y = b;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return (x->k > y->k) - (x->k < y->k);
}

/* Validates the input and builds the model skeleton and training state. */
static int train_prepare(const knytt_twotower *tt, uint32_t nusers,
			 uint32_t nitems, const knytt_twotower_item *items,
			 size_t n, const uint32_t *users,
			 const uint32_t *iidx, const float *weights,
			 const int64_t *times, tt_train **out)
{
	if (!users || !iidx)
		return knytt__err(KNYTT_EINVAL, "users or items array is NULL");
	if (n == 0 || nusers == 0 || nitems == 0)
		return knytt__err(KNYTT_EINVAL,
				  "nothing to train on (%zu interactions, %u "
				  "users, %u items)",
				  n, nusers, nitems);
	if (n > UINT32_MAX - 1)
		return knytt__err(KNYTT_EINVAL, "too many interactions (%zu)",
				  n);
	size_t npos = 0;
	for (size_t k = 0; k < n; k++) {
		if (users[k] >= nusers)
			return knytt__err(KNYTT_EINVAL,
					  "interaction %zu: user %u >= nusers "
					  "%u",
					  k, users[k], nusers);
		if (iidx[k] >= nitems)
			return knytt__err(KNYTT_EINVAL,
					  "interaction %zu: item %u >= nitems "
					  "%u",
					  k, iidx[k], nitems);
		if (weights && !(isfinite(weights[k]) && weights[k] >= 0))
			return knytt__err(KNYTT_EINVAL,
					  "interaction %zu: weight %g must be "
					  "finite and >= 0",
					  k, (double)weights[k]);
		if (!weights || weights[k] > 0)
			npos++;
	}
	if (npos < 2)
		return knytt__err(KNYTT_EINVAL,
				  "need at least 2 interactions with weight > "
				  "0, got %zu",
				  npos);

	int rc = KNYTT_ENOMEM;
	tt_train *T = calloc(1, sizeof *T);
	tt_model *m = calloc(1, sizeof *m);
	ord *o = NULL;
	uint32_t *fbuf = NULL;
	if (!T || !m)
		goto fail;
	T->m = m;
	m->dim = tt->dim;
	m->nbuckets = tt->buckets;
	m->nusers = nusers;
	m->nitems = nitems;
	m->history = tt->history;
	m->seed = tt->seed;
	uint32_t d = m->dim;
	T->nt = tt->threads ? tt->threads : knytt__ncpu();
	T->hmax = tt->history;
	T->temp = tt->temp;
	T->id_drop = tt->id_drop;
	T->lr = tt->lr;
	T->rng = tt->seed ^ 0x5deece66dULL;

	/* item features */
	m->foff = malloc(((size_t)nitems + 1) * sizeof *m->foff);
	fbuf = malloc(KNYTT__TT_MAXFEAT * sizeof *fbuf);
	if (!m->foff || !fbuf)
		goto fail;
	size_t cap = 1024, nf = 0;
	m->feat = malloc(cap * sizeof *m->feat);
	if (!m->feat)
		goto fail;
	for (uint32_t i = 0; i < nitems; i++) {
		m->foff[i] = (uint32_t)nf;
		size_t k = items ? knytt__tt_item_features(&items[i], m->seed,
							   m->nbuckets, fbuf,
							   KNYTT__TT_MAXFEAT)
				 : 0;
		if (nf + k > cap) {
			while (nf + k > cap)
				cap *= 2;
			uint32_t *p = realloc(m->feat, cap * sizeof *p);
			if (!p)
				goto fail;
			m->feat = p;
		}
		memcpy(m->feat + nf, fbuf, k * sizeof *fbuf);
		nf += k;
	}
	m->foff[nitems] = (uint32_t)nf;

	/* interactions by user, in time order (array order breaks ties) */
	T->uoff = calloc((size_t)nusers + 1, sizeof *T->uoff);
	T->seq = malloc(n * sizeof *T->seq);
	T->ex_w = malloc(n * sizeof *T->ex_w);
	o = malloc(n * sizeof *o);
	if (!T->uoff || !T->seq || !T->ex_w || !o)
		goto fail;
	for (size_t k = 0; k < n; k++)
		T->uoff[users[k] + 1]++;
	for (uint32_t u = 0; u < nusers; u++)
		T->uoff[u + 1] += T->uoff[u];
	{
		uint32_t *fill = malloc((size_t)nusers * sizeof *fill);
		if (!fill)
			goto fail;
		memcpy(fill, T->uoff, (size_t)nusers * sizeof *fill);
		for (size_t k = 0; k < n; k++)
			o[fill[users[k]]++] = (ord){ times ? times[k] : (int64_t)k,
						     (uint32_t)k };
		free(fill);
	}
	for (uint32_t u = 0; u < nusers; u++)
		qsort(o + T->uoff[u], T->uoff[u + 1] - T->uoff[u], sizeof *o,
		      cmp_ord);
	T->ex_pos = malloc(npos * sizeof *T->ex_pos);
	T->ex_user = malloc(npos * sizeof *T->ex_user);
	T->logq = calloc(nitems, sizeof *T->logq);
	if (!T->ex_pos || !T->ex_user || !T->logq)
		goto fail;
	for (uint32_t u = 0; u < nusers; u++)
		for (uint32_t p = T->uoff[u]; p < T->uoff[u + 1]; p++) {
			uint32_t k = o[p].k;
			T->seq[p] = iidx[k];
			T->ex_w[p] = weights ? weights[k] : 1.0f;
			if (T->ex_w[p] > 0) {
				T->ex_pos[T->nex] = p;
				T->ex_user[T->nex++] = u;
				T->logq[iidx[k]] += 1.0f;
			}
		}
	for (uint32_t i = 0; i < nitems; i++)
		T->logq[i] = T->logq[i] > 0
				     ? (float)log((double)T->logq[i] / (double)npos)
				     : 0.0f;

	/* each user's most recent items, for the user tower at serve time */
	m->hoff = malloc(((size_t)nusers + 1) * sizeof *m->hoff);
	if (!m->hoff)
		goto fail;
	size_t nh = 0;
	for (uint32_t u = 0; u < nusers; u++) {
		uint32_t c = T->uoff[u + 1] - T->uoff[u];
		m->hoff[u] = (uint32_t)nh;
		nh += c < m->history ? c : m->history;
	}
	m->hoff[nusers] = (uint32_t)nh;
	m->hist = malloc((nh ? nh : 1) * sizeof *m->hist);
	if (!m->hist)
		goto fail;
	for (uint32_t u = 0; u < nusers; u++) {
		uint32_t c = m->hoff[u + 1] - m->hoff[u];
		memcpy(m->hist + m->hoff[u], T->seq + T->uoff[u + 1] - c,
		       c * sizeof *m->hist);
	}

	/* parameters */
	size_t np = nrows(m) * d;
	m->W = knytt__aalloc(np * sizeof(float));
	T->G = knytt__aalloc(np * sizeof(float));
	T->M1 = knytt__aalloc(np * sizeof(float));
	T->M2 = knytt__aalloc(np * sizeof(float));
	T->touched = calloc(nrows(m), 1);
	T->tlist = malloc(nrows(m) * sizeof *T->tlist);
	if (!m->W || !T->G || !T->M1 || !T->M2 || !T->touched || !T->tlist)
		goto fail;
	uint64_t s = tt->seed;
	for (size_t k = 0; k < np; k++)
		m->W[k] = (float)((knytt__randu(&s) * 2.0 - 1.0) * INIT_SCALE);

	/* batch buffers */
	T->bmax = tt->batch < T->nex ? tt->batch : (unsigned)T->nex;
	size_t B = T->bmax;
	T->ucap = B * ((size_t)T->hmax + 1);
	if (T->ucap > nitems)
		T->ucap = nitems;
	T->slot = malloc((size_t)nitems * sizeof *T->slot);
	T->uitem = malloc(T->ucap * sizeof *T->uitem);
	T->ukeep = malloc(T->ucap);
	T->uv = knytt__aalloc(T->ucap * d * sizeof(float));
	T->unorm = malloc(T->ucap * sizeof *T->unorm);
	T->ugv = knytt__aalloc(T->ucap * d * sizeof(float));
	T->U = knytt__aalloc(B * d * sizeof(float));
	T->snorm = malloc(B * sizeof *T->snorm);
	T->P = knytt__aalloc(B * d * sizeof(float));
	T->L = knytt__aalloc(B * B * sizeof(float));
	T->dU = knytt__aalloc(B * d * sizeof(float));
	T->dP = knytt__aalloc(B * d * sizeof(float));
	T->rowloss = malloc(B * sizeof *T->rowloss);
	if (!T->slot || !T->uitem || !T->ukeep || !T->uv || !T->unorm ||
	    !T->ugv || !T->U || !T->snorm || !T->P || !T->L || !T->dU ||
	    !T->dP || !T->rowloss)
		goto fail;
	for (uint32_t i = 0; i < nitems; i++)
		T->slot[i] = -1;
	free(o);
	free(fbuf);
	*out = T;
	return KNYTT_OK;
fail:
	free(o);
	free(fbuf);
	if (T) {
		knytt__tt_model_free(T->m);
		train_free(T);
	} else {
		knytt__tt_model_free(m);
	}
	return knytt__err(rc, "out of memory preparing two-tower training");
}

/* History of example position p of user u: seq[hb, p). */
static uint32_t hist_begin(const tt_train *T, uint32_t u, uint32_t p)
{
	uint32_t b = T->uoff[u];
	return p - b > T->hmax ? p - T->hmax : b;
}

static void fwd_items(void *ctx, size_t lo, size_t hi)
{
	tt_train *T = ctx;
	const tt_model *m = T->m;
	for (size_t s = lo; s < hi; s++) {
		uint32_t i = T->uitem[s];
		T->unorm[s] = knytt__tt_item_tower(m, T->ukeep[s] ? row_item(m, i) : NULL,
					 m->feat + m->foff[i],
					 m->foff[i + 1] - m->foff[i],
					 T->uv + s * m->dim);
	}
}

static void fwd_users(void *ctx, size_t lo, size_t hi)
{
	tt_train *T = ctx;
	const tt_model *m = T->m;
	uint32_t d = m->dim;
	for (size_t b = lo; b < hi; b++) {
		uint32_t e = T->bex[b], u = T->ex_user[e], p = T->ex_pos[e];
		uint32_t hb = hist_begin(T, u, p);
		float *out = T->U + b * d;
		memcpy(out, row_user(m, u), d * sizeof *out);
		if (p > hb) {
			float w = 1.0f / (float)(p - hb);
			for (uint32_t j = hb; j < p; j++) {
				axpy(out, w,
				     T->uv + (size_t)T->slot[T->seq[j]] * d, d);
			}
		}
		T->snorm[b] = knytt__tt_unit(out, d);
		memcpy(T->P + b * d, T->uv + (size_t)T->slot[T->seq[p]] * d,
		       d * sizeof(float));
	}
}

/* Softmax rows: L (logits) becomes the gradient w.r.t. the dot products,
 * scaled by the example's weight share; rowloss gets each row's loss. */
typedef struct sm_ctx {
	tt_train *T;
	double wsum;
} sm_ctx;

static void softmax_rows(void *ctx, size_t lo, size_t hi)
{
	sm_ctx *c = ctx;
	tt_train *T = c->T;
	size_t B = T->B;
	float inv_t = 1.0f / T->temp;
	for (size_t b = lo; b < hi; b++) {
		float *r = T->L + b * B;
		uint32_t eb = T->bex[b];
		uint32_t ib = T->seq[T->ex_pos[eb]];
		float mx = -INFINITY;
		for (size_t j = 0; j < B; j++) {
			uint32_t ij = T->seq[T->ex_pos[T->bex[j]]];
			/* another copy of the positive is no negative */
			if (j != b && ij == ib) {
				r[j] = -INFINITY;
				continue;
			}
			r[j] = r[j] * inv_t - T->logq[ij];
			if (r[j] > mx)
				mx = r[j];
		}
		/* exp once, kept in the row; B^2 exps per batch are a
		 * visible share of an epoch */
		float lb = r[b] - mx;
		double sum = 0;
		for (size_t j = 0; j < B; j++) {
			r[j] = expf(r[j] - mx);
			sum += r[j];
		}
		double wb = T->ex_w[T->ex_pos[eb]];
		T->rowloss[b] = wb * (log(sum) - (double)lb);
		float scale = (float)(wb / c->wsum) * inv_t;
		float inv_sum = (float)(1.0 / sum);
		for (size_t j = 0; j < B; j++)
			r[j] = (r[j] * inv_sum - (j == b ? 1.0f : 0.0f)) *
			       scale;
	}
}

static void touch(tt_train *T, size_t row)
{
	if (!T->touched[row]) {
		T->touched[row] = 1;
		T->tlist[T->ntl++] = (uint32_t)row;
	}
}

/* g_raw = (g - (g.v) v) / norm: the gradient through v = raw / |raw|. */
static void unproject(float *g, const float *v, float norm, uint32_t d)
{
	if (norm <= 0.0f) {
		memset(g, 0, d * sizeof *g);
		return;
	}
	double dot = 0;
	for (uint32_t k = 0; k < d; k++)
		dot += (double)g[k] * v[k];
	float inv = 1.0f / norm, dt = (float)dot;
	for (uint32_t k = 0; k < d; k++)
		g[k] = (g[k] - dt * v[k]) * inv;
}

/*
 * One mini-batch: forward, loss, and gradients accumulated into T->G
 * (touched rows listed).  @p drop: apply id dropout.  Returns the
 * weighted mean loss of the batch.
 */
static double batch_grad(tt_train *T, const uint32_t *bex, size_t B,
			 int drop)
{
	tt_model *m = T->m;
	uint32_t d = m->dim;
	T->bex = bex;
	T->B = B;
	/* unique items: positives and histories, in batch order */
	T->nu = 0;
	double wsum = 0;
	for (size_t b = 0; b < B; b++) {
		uint32_t e = bex[b], u = T->ex_user[e], p = T->ex_pos[e];
		wsum += T->ex_w[p];
		for (uint32_t j = hist_begin(T, u, p); j <= p; j++) {
			uint32_t it = T->seq[j];
			if (T->slot[it] >= 0)
				continue;
			T->slot[it] = (int32_t)T->nu;
			T->uitem[T->nu] = it;
			T->ukeep[T->nu] =
				!drop || T->id_drop <= 0.0f ||
				knytt__randu(&T->rng) >= (double)T->id_drop;
			T->nu++;
		}
	}
	knytt__parallel_for(T->nt, T->nu, 64, fwd_items, T);
	knytt__parallel_for(T->nt, B, 64, fwd_users, T);
	/* logits: L = U P^T */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)B,
		    (int)d, 1.0f, T->U, (int)d, T->P, (int)d, 0.0f, T->L,
		    (int)B);
	sm_ctx sc = { T, wsum > 0 ? wsum : 1.0 };
	knytt__parallel_for(T->nt, B, 32, softmax_rows, &sc);
	double loss = 0;
	for (size_t b = 0; b < B; b++)
		loss += T->rowloss[b];
	loss /= sc.wsum;
	/* dU = G P, dP = G^T U */
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)d,
		    (int)B, 1.0f, T->L, (int)B, T->P, (int)d, 0.0f, T->dU,
		    (int)d);
	cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)B, (int)d,
		    (int)B, 1.0f, T->L, (int)B, T->U, (int)d, 0.0f, T->dP,
		    (int)d);
	/* user tower backward, serially in batch order (shared rows) */
	memset(T->ugv, 0, T->nu * d * sizeof(float));
	for (size_t b = 0; b < B; b++) {
		uint32_t e = bex[b], u = T->ex_user[e], p = T->ex_pos[e];
		float *g = T->dU + b * d;
		unproject(g, T->U + b * d, T->snorm[b], d);
		touch(T, u);
		axpy(T->G + (size_t)u * d, 1.0f, g, d);
		uint32_t hb = hist_begin(T, u, p);
		if (p > hb) {
			float w = 1.0f / (float)(p - hb);
			for (uint32_t j = hb; j < p; j++) {
				axpy(T->ugv + (size_t)T->slot[T->seq[j]] * d,
				     w, g, d);
			}
		}
		axpy(T->ugv + (size_t)T->slot[T->seq[p]] * d, 1.0f,
		     T->dP + b * d, d);
	}
	/* item tower backward */
	for (size_t s = 0; s < T->nu; s++) {
		uint32_t it = T->uitem[s];
		float *g = T->ugv + s * d;
		unproject(g, T->uv + s * d, T->unorm[s], d);
		if (T->ukeep[s]) {
			size_t r = (size_t)m->nusers + it;
			touch(T, r);
			axpy(T->G + r * d, 1.0f, g, d);
		}
		uint32_t f0 = m->foff[it], f1 = m->foff[it + 1];
		if (f1 > f0) {
			float w = 1.0f / (float)(f1 - f0);
			for (uint32_t f = f0; f < f1; f++) {
				size_t r = (size_t)m->nusers + m->nitems +
					   m->feat[f];
				touch(T, r);
				axpy(T->G + r * d, w, g, d);
			}
		}
		T->slot[it] = -1;
	}
	return loss;
}

#define ADAM_B1 0.9
#define ADAM_B2 0.999
#define ADAM_EPS 1e-8f

typedef struct adam_ctx {
	tt_train *T;
	float lr_t, b1, b2;
} adam_ctx;

static void adam_rows(void *ctx, size_t lo, size_t hi)
{
	adam_ctx *a = ctx;
	tt_train *T = a->T;
	uint32_t d = T->m->dim;
	for (size_t q = lo; q < hi; q++) {
		size_t o = (size_t)T->tlist[q] * d;
		float *restrict w = T->m->W + o, *restrict g = T->G + o,
				*restrict m1 = T->M1 + o, *restrict m2 = T->M2 + o;
		uint32_t k = 0;
#if defined(__SSE2__)
		__m128 b1 = _mm_set1_ps(a->b1), c1 = _mm_set1_ps(1.0f - a->b1);
		__m128 b2 = _mm_set1_ps(a->b2), c2 = _mm_set1_ps(1.0f - a->b2);
		__m128 lr = _mm_set1_ps(a->lr_t), eps = _mm_set1_ps(ADAM_EPS);
		for (; k + 4 <= d; k += 4) {
			__m128 gk = _mm_loadu_ps(g + k);
			__m128 mk = _mm_add_ps(_mm_mul_ps(b1, _mm_loadu_ps(m1 + k)),
					       _mm_mul_ps(c1, gk));
			__m128 vk = _mm_add_ps(
				_mm_mul_ps(b2, _mm_loadu_ps(m2 + k)),
				_mm_mul_ps(c2, _mm_mul_ps(gk, gk)));
			_mm_storeu_ps(m1 + k, mk);
			_mm_storeu_ps(m2 + k, vk);
			__m128 step = _mm_div_ps(_mm_mul_ps(lr, mk),
						 _mm_add_ps(_mm_sqrt_ps(vk), eps));
			_mm_storeu_ps(w + k, _mm_sub_ps(_mm_loadu_ps(w + k), step));
			_mm_storeu_ps(g + k, _mm_setzero_ps());
		}
#endif
		for (; k < d; k++) {
			m1[k] = a->b1 * m1[k] + (1.0f - a->b1) * g[k];
			m2[k] = a->b2 * m2[k] + (1.0f - a->b2) * (g[k] * g[k]);
			w[k] -= (a->lr_t * m1[k]) / (sqrtf(m2[k]) + ADAM_EPS);
			g[k] = 0.0f;
		}
		T->touched[T->tlist[q]] = 0;
	}
}

static void adam_step(tt_train *T)
{
	T->step++;
	double c1 = 1.0 - pow(ADAM_B1, (double)T->step);
	double c2 = 1.0 - pow(ADAM_B2, (double)T->step);
	adam_ctx a = { T, (float)(T->lr * sqrt(c2) / c1), (float)ADAM_B1,
		       (float)ADAM_B2 };
	knytt__parallel_for(T->nt, T->ntl, 256, adam_rows, &a);
	T->ntl = 0;
}

static void clear_grads(tt_train *T)
{
	uint32_t d = T->m->dim;
	for (size_t q = 0; q < T->ntl; q++) {
		memset(T->G + (size_t)T->tlist[q] * d, 0, d * sizeof(float));
		T->touched[T->tlist[q]] = 0;
	}
	T->ntl = 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int knytt_twotower_train(knytt_twotower *tt, uint32_t nusers,
			 uint32_t nitems, const knytt_twotower_item *items,
			 size_t n, const uint32_t *users,
			 const uint32_t *items_idx, const float *weights,
			 const int64_t *times)
{
	NEED_TT(tt);
	tt_train *T = NULL;
	int rc = train_prepare(tt, nusers, nitems, items, n, users, items_idx,
			       weights, times, &T);
	if (rc)
		return rc;
	uint32_t *order = malloc(T->nex * sizeof *order);
	if (!order) {
		knytt__tt_model_free(T->m);
		train_free(T);
		return knytt__err(KNYTT_ENOMEM, "out of memory for the shuffle");
	}
	for (size_t e = 0; e < T->nex; e++)
		order[e] = (uint32_t)e;
	double t0 = now_s();
	for (unsigned ep = 0; ep < tt->epochs; ep++) {
		for (size_t e = T->nex - 1; e > 0; e--) {
			size_t r = (size_t)(knytt__rand64(&T->rng) % (e + 1));
			uint32_t x = order[e];
			order[e] = order[r];
			order[r] = x;
		}
		double lsum = 0;
		size_t lcount = 0;
		for (size_t b0 = 0; b0 < T->nex; b0 += T->bmax) {
			size_t B = T->nex - b0 < T->bmax ? T->nex - b0 : T->bmax;
			if (B < 2)
				break;
			lsum += batch_grad(T, order + b0, B, 1) * (double)B;
			lcount += B;
			adam_step(T);
		}
		double el = now_s() - t0;
		double loss = lcount ? lsum / (double)lcount : 0.0;
		knytt_progress pr = { ep + 1, tt->epochs, loss, el,
				      el / (ep + 1) * (tt->epochs - ep - 1) };
		if (tt->progress && tt->progress(tt->pctx, &pr) != 0) {
			free(order);
			knytt__tt_model_free(T->m);
			train_free(T);
			return knytt__err(KNYTT_ECANCELED,
					  "training canceled by the progress "
					  "callback after epoch %u of %u",
					  ep + 1, tt->epochs);
		}
	}
	free(order);
	tt_model *m = T->m;
	/* Ids that never met an interaction kept their random start: zero
	 * them, so such an item is embedded from its features alone (as a
	 * cold item is) and such a user from history alone. */
	for (uint32_t u = 0; u < m->nusers; u++)
		if (T->uoff[u + 1] == T->uoff[u])
			memset(row_user(m, u), 0, m->dim * sizeof(float));
	memset(T->slot, 0, (size_t)m->nitems * sizeof *T->slot);
	for (size_t p = 0; p < n; p++)
		T->slot[T->seq[p]] = 1;
	for (uint32_t i = 0; i < m->nitems; i++)
		if (!T->slot[i])
			memset(row_item(m, i), 0, m->dim * sizeof(float));
	T->m = NULL;
	train_free(T);
	rc = knytt__tt_model_cache(m);
	if (rc) {
		knytt__tt_model_free(m);
		return rc;
	}
	knytt__tt_model_free(tt->m);
	tt->m = m;
	return KNYTT_OK;
}

/* ---- testing hooks (twotower.h) ---------------------------------------- */

int knytt__tt_debug_prepare(const knytt_twotower *tt, uint32_t nusers,
			    uint32_t nitems, const knytt_twotower_item *items,
			    size_t n, const uint32_t *users,
			    const uint32_t *items_idx, knytt__tt_debug **out)
{
	tt_train *T = NULL;
	int rc = train_prepare(tt, nusers, nitems, items, n, users, items_idx,
			       NULL, NULL, &T);
	if (rc)
		return rc;
	*out = (knytt__tt_debug *)T;
	return KNYTT_OK;
}

double knytt__tt_debug_loss(knytt__tt_debug *dbg, size_t nex, float **W,
			    const float **G, size_t *nparams)
{
	tt_train *T = (tt_train *)dbg;
	uint32_t ex[64];
	if (nex > 64)
		nex = 64;
	if (nex > T->nex)
		nex = T->nex;
	for (size_t e = 0; e < nex; e++)
		ex[e] = (uint32_t)e;
	clear_grads(T);
	double loss = batch_grad(T, ex, nex, 0);
	*W = T->m->W;
	*G = T->G;
	*nparams = nrows(T->m) * T->m->dim;
	return loss;
}

void knytt__tt_debug_free(knytt__tt_debug *dbg)
{
	tt_train *T = (tt_train *)dbg;
	if (!T)
		return;
	knytt__tt_model_free(T->m);
	train_free(T);
}
