/*
 * twotower.c -- the two-tower retrieval model: towers, training with an
 * in-batch sampled softmax, embedding of new items, queries and users,
 * and the model file.
 *
 * Where this departs from the textbook model (Yi et al., "Sampling-bias-
 * corrected neural modeling for large corpus item recommendations",
 * RecSys 2019):
 *  - The towers are linear bags of embeddings followed by L2
 *    normalisation, no MLP.  Retrieval quality on catalog-sized data comes
 *    mostly from the id and feature embeddings; the normalisation makes
 *    the temperature the one knob of the logit scale.
 *  - q(item) is the exact frequency of the item among the training
 *    positives (known up front), not the streaming estimate of the paper.
 *  - Id dropout: each item in a batch loses its id embedding with
 *    probability id_dropout, so the feature path alone learns to place
 *    items well.  Without it the feature rows get little gradient once
 *    the id rows fit, and cold items land poorly.
 *  - Lazy Adam: only rows a batch touched are updated (their moments
 *    too), with the global step count in the bias correction.
 *
 * Parameters live in one array W of (nusers + nitems + nbuckets) rows of
 * dim floats: user ids, then item ids, then hashed features.  Gradients
 * and Adam moments have the same layout during training only.
 *
 * Determinism: the shuffle and dropout draws come from one splitmix64
 * stream on the training thread; threads compute disjoint rows of the
 * forward pass and disjoint rows of the Adam update; every reduction into
 * a shared row runs on one thread in batch order.  OpenBLAS sgemm splits
 * its output among threads but never the inner (k) dimension, so it too
 * is reproducible.
 */
#include "features.h"
#include "twotower.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#define DEF_DIM 64
#define DEF_EPOCHS 10
#define DEF_BATCH 512
#define DEF_LR 0.01f
#define DEF_TEMP 0.05f
#define DEF_BUCKETS (1u << 18)
#define DEF_HISTORY 20
#define DEF_ID_DROPOUT 0.25f
#define INIT_SCALE 0.1f /* uniform(-s, s) initial weights */

#define FILE_MAGIC "KNYTTTT1"
#define FILE_VERSION 1u
#define HDR_SIZE 64

typedef struct tt_model {
	uint32_t dim, nbuckets, nusers, nitems, history;
	uint64_t seed; /* feature hash seed */
	float *W;      /* (nusers + nitems + nbuckets) x dim */
	uint32_t *foff, *feat; /* item feature lists: foff[nitems + 1] */
	uint32_t *hoff, *hist; /* each user's last `history` items, oldest
				* first: hoff[nusers + 1] */
	float *iemb;           /* nitems x dim, item tower with ids */
	float *uemb;           /* nusers x dim, user tower */
} tt_model;

struct knytt_twotower {
	uint32_t dim, buckets;
	unsigned epochs, batch, threads, history;
	float lr, temp, id_drop;
	uint64_t seed;
	knytt_progress_fn progress;
	void *pctx;
	tt_model *m; /* NULL until train or load */
};

static float *row_user(const tt_model *m, uint32_t u)
{
	return m->W + (size_t)u * m->dim;
}
static float *row_item(const tt_model *m, uint32_t i)
{
	return m->W + ((size_t)m->nusers + i) * m->dim;
}
static float *row_feat(const tt_model *m, uint32_t f)
{
	return m->W + ((size_t)m->nusers + m->nitems + f) * m->dim;
}
static size_t nrows(const tt_model *m)
{
	return (size_t)m->nusers + m->nitems + m->nbuckets;
}

/* y += a x over d floats.  SSE2 is the x86-64 baseline, so no ISA flag
 * is needed; four lanes and the scalar tail add in the same order on
 * every run, which keeps training reproducible. */
static void axpy(float *restrict y, float a, const float *restrict x,
		 uint32_t d)
{
	uint32_t k = 0;
#if defined(__SSE2__)
	__m128 va = _mm_set1_ps(a);
	for (; k + 4 <= d; k += 4)
		_mm_storeu_ps(y + k,
			      _mm_add_ps(_mm_loadu_ps(y + k),
					 _mm_mul_ps(va, _mm_loadu_ps(x + k))));
#endif
	for (; k < d; k++)
		y[k] += a * x[k];
}

static void model_free(tt_model *m)
{
	if (!m)
		return;
	knytt__afree(m->W);
	free(m->foff);
	free(m->feat);
	free(m->hoff);
	free(m->hist);
	knytt__afree(m->iemb);
	knytt__afree(m->uemb);
	free(m);
}

/* ---- settings ---------------------------------------------------------- */

int knytt_twotower_create(knytt_twotower **out)
{
	if (!out)
		return knytt__err(KNYTT_EINVAL, "out is NULL");
	knytt_twotower *tt = calloc(1, sizeof *tt);
	if (!tt)
		return knytt__err(KNYTT_ENOMEM, "out of memory for a twotower");
	tt->dim = DEF_DIM;
	tt->buckets = DEF_BUCKETS;
	tt->epochs = DEF_EPOCHS;
	tt->batch = DEF_BATCH;
	tt->history = DEF_HISTORY;
	tt->lr = DEF_LR;
	tt->temp = DEF_TEMP;
	tt->id_drop = DEF_ID_DROPOUT;
	tt->seed = 42;
	*out = tt;
	return KNYTT_OK;
}

void knytt_twotower_close(knytt_twotower *tt)
{
	if (!tt)
		return;
	model_free(tt->m);
	free(tt);
}

#define NEED_TT(tt)                                                       \
	do {                                                              \
		if (!(tt))                                                \
			return knytt__err(KNYTT_EINVAL, "twotower is NULL"); \
	} while (0)

int knytt_twotower_set_dim(knytt_twotower *tt, uint32_t dim)
{
	NEED_TT(tt);
	if (dim == 0)
		dim = DEF_DIM;
	if (dim < 2 || dim > 4096)
		return knytt__err(KNYTT_EINVAL,
				  "dim %u out of range (valid 2..4096)", dim);
	tt->dim = dim;
	return KNYTT_OK;
}

int knytt_twotower_set_epochs(knytt_twotower *tt, unsigned epochs)
{
	NEED_TT(tt);
	if (epochs == 0)
		epochs = DEF_EPOCHS;
	if (epochs > 100000)
		return knytt__err(KNYTT_EINVAL,
				  "epochs %u out of range (valid 1..100000)",
				  epochs);
	tt->epochs = epochs;
	return KNYTT_OK;
}

int knytt_twotower_set_batch(knytt_twotower *tt, unsigned batch)
{
	NEED_TT(tt);
	if (batch == 0)
		batch = DEF_BATCH;
	if (batch < 2 || batch > 65536)
		return knytt__err(KNYTT_EINVAL,
				  "batch %u out of range (valid 2..65536: the "
				  "in-batch softmax needs negatives)",
				  batch);
	tt->batch = batch;
	return KNYTT_OK;
}

int knytt_twotower_set_lr(knytt_twotower *tt, float lr)
{
	NEED_TT(tt);
	if (lr == 0.0f)
		lr = DEF_LR;
	if (!isfinite(lr) || lr <= 0.0f || lr > 10.0f)
		return knytt__err(KNYTT_EINVAL,
				  "learning rate %g out of range (valid (0, 10])",
				  (double)lr);
	tt->lr = lr;
	return KNYTT_OK;
}

int knytt_twotower_set_temperature(knytt_twotower *tt, float temperature)
{
	NEED_TT(tt);
	if (temperature == 0.0f)
		temperature = DEF_TEMP;
	if (!isfinite(temperature) || temperature < 0.001f ||
	    temperature > 100.0f)
		return knytt__err(KNYTT_EINVAL,
				  "temperature %g out of range (valid "
				  "[0.001, 100])",
				  (double)temperature);
	tt->temp = temperature;
	return KNYTT_OK;
}

int knytt_twotower_set_seed(knytt_twotower *tt, uint64_t seed)
{
	NEED_TT(tt);
	tt->seed = seed;
	return KNYTT_OK;
}

int knytt_twotower_set_threads(knytt_twotower *tt, unsigned threads)
{
	NEED_TT(tt);
	if (threads > 256)
		return knytt__err(KNYTT_EINVAL,
				  "threads %u out of range (valid 0..256)",
				  threads);
	tt->threads = threads;
	return KNYTT_OK;
}

int knytt_twotower_set_buckets(knytt_twotower *tt, uint32_t buckets)
{
	NEED_TT(tt);
	if (buckets == 0)
		buckets = DEF_BUCKETS;
	if (buckets < 16 || buckets > (1u << 26))
		return knytt__err(KNYTT_EINVAL,
				  "buckets %u out of range (valid 16..2^26)",
				  buckets);
	tt->buckets = buckets;
	return KNYTT_OK;
}

int knytt_twotower_set_history(knytt_twotower *tt, unsigned history)
{
	NEED_TT(tt);
	if (history == 0)
		history = DEF_HISTORY;
	if (history > 1000)
		return knytt__err(KNYTT_EINVAL,
				  "history %u out of range (valid 1..1000)",
				  history);
	tt->history = history;
	return KNYTT_OK;
}

int knytt_twotower_set_id_dropout(knytt_twotower *tt, float p)
{
	NEED_TT(tt);
	if (!(p >= 0.0f && p < 1.0f))
		return knytt__err(KNYTT_EINVAL,
				  "id dropout %g out of range (valid [0, 1))",
				  (double)p);
	tt->id_drop = p;
	return KNYTT_OK;
}

int knytt_twotower_set_progress(knytt_twotower *tt, knytt_progress_fn fn,
				void *ctx)
{
	NEED_TT(tt);
	tt->progress = fn;
	tt->pctx = ctx;
	return KNYTT_OK;
}

uint32_t knytt_twotower_dim(const knytt_twotower *tt)
{
	return tt && tt->m ? tt->m->dim : 0;
}
uint32_t knytt_twotower_count_users(const knytt_twotower *tt)
{
	return tt && tt->m ? tt->m->nusers : 0;
}
uint32_t knytt_twotower_count_items(const knytt_twotower *tt)
{
	return tt && tt->m ? tt->m->nitems : 0;
}

/* ---- towers ------------------------------------------------------------ */

/* Scales v to unit length; returns the old norm (0: left as zeros). */
static float unit(float *v, uint32_t d)
{
	double s = 0;
	for (uint32_t k = 0; k < d; k++)
		s += (double)v[k] * v[k];
	float n = (float)sqrt(s);
	if (n < 1e-12f) {
		memset(v, 0, d * sizeof *v);
		return 0.0f;
	}
	float inv = 1.0f / n;
	for (uint32_t k = 0; k < d; k++)
		v[k] *= inv;
	return n;
}

/* Item tower: out = id row (if @p id) + mean of the feature rows, then
 * normalised; returns the pre-normalisation norm. */
static float item_tower(const tt_model *m, const float *id,
			const uint32_t *feat, size_t nf, float *out)
{
	uint32_t d = m->dim;
	if (id)
		memcpy(out, id, d * sizeof *out);
	else
		memset(out, 0, d * sizeof *out);
	if (nf > 0) {
		float w = 1.0f / (float)nf;
		for (size_t j = 0; j < nf; j++) {
			axpy(out, w, row_feat(m, feat[j]), d);
		}
	}
	return unit(out, d);
}

static void known_item(const tt_model *m, uint32_t i, float *out)
{
	item_tower(m, row_item(m, i), m->feat + m->foff[i],
		   m->foff[i + 1] - m->foff[i], out);
}

/* User tower from item vectors: out = id row + mean(vecs), normalised. */
static void user_tower(const tt_model *m, const float *id,
		       const float *const *vecs, size_t n, float *out)
{
	uint32_t d = m->dim;
	if (id)
		memcpy(out, id, d * sizeof *out);
	else
		memset(out, 0, d * sizeof *out);
	if (n > 0) {
		float w = 1.0f / (float)n;
		for (size_t j = 0; j < n; j++)
			axpy(out, w, vecs[j], d);
	}
	unit(out, d);
}

/* Fills the cached item and user vectors of a trained or loaded model. */
static int model_cache(tt_model *m)
{
	uint32_t d = m->dim;
	m->iemb = knytt__aalloc((size_t)m->nitems * d * sizeof(float));
	m->uemb = knytt__aalloc((size_t)m->nusers * d * sizeof(float));
	const float **vecs = malloc((m->history + 1) * sizeof *vecs);
	if (!m->iemb || !m->uemb || !vecs) {
		free(vecs);
		return knytt__err(KNYTT_ENOMEM, "out of memory for embeddings");
	}
	for (uint32_t i = 0; i < m->nitems; i++)
		known_item(m, i, m->iemb + (size_t)i * d);
	for (uint32_t u = 0; u < m->nusers; u++) {
		size_t n = 0;
		for (uint32_t j = m->hoff[u]; j < m->hoff[u + 1]; j++)
			vecs[n++] = m->iemb + (size_t)m->hist[j] * d;
		user_tower(m, row_user(m, u), vecs, n,
			   m->uemb + (size_t)u * d);
	}
	free(vecs);
	return KNYTT_OK;
}

/* ---- threads ----------------------------------------------------------- */

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
		model_free(T->m);
		train_free(T);
	} else {
		model_free(m);
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
		T->unorm[s] = item_tower(m, T->ukeep[s] ? row_item(m, i) : NULL,
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
		T->snorm[b] = unit(out, d);
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
		model_free(T->m);
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
			model_free(T->m);
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
	rc = model_cache(m);
	if (rc) {
		model_free(m);
		return rc;
	}
	model_free(tt->m);
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
	model_free(T->m);
	train_free(T);
}

/* ---- embedding --------------------------------------------------------- */

#define NEED_MODEL(tt)                                                    \
	do {                                                              \
		if (!(tt))                                                \
			return knytt__err(KNYTT_EINVAL, "twotower is NULL"); \
		if (!(tt)->m)                                             \
			return knytt__err(KNYTT_ESTATE,                   \
					  "no model: train or load first"); \
	} while (0)

int knytt_twotower_item_embeddings(const knytt_twotower *tt, float *out,
				   size_t cap)
{
	NEED_MODEL(tt);
	if (!out)
		return knytt__err(KNYTT_EINVAL, "out is NULL");
	if (cap < tt->m->nitems)
		return knytt__err(KNYTT_ERANGE,
				  "room for %zu rows, the model has %u items",
				  cap, tt->m->nitems);
	memcpy(out, tt->m->iemb,
	       (size_t)tt->m->nitems * tt->m->dim * sizeof(float));
	return (int)tt->m->nitems;
}

int knytt_twotower_user_embeddings(const knytt_twotower *tt, float *out,
				   size_t cap)
{
	NEED_MODEL(tt);
	if (!out)
		return knytt__err(KNYTT_EINVAL, "out is NULL");
	if (cap < tt->m->nusers)
		return knytt__err(KNYTT_ERANGE,
				  "room for %zu rows, the model has %u users",
				  cap, tt->m->nusers);
	memcpy(out, tt->m->uemb,
	       (size_t)tt->m->nusers * tt->m->dim * sizeof(float));
	return (int)tt->m->nusers;
}

int knytt_twotower_embed_item(const knytt_twotower *tt,
			      const knytt_twotower_item *item, float *out)
{
	NEED_MODEL(tt);
	if (!item || !out)
		return knytt__err(KNYTT_EINVAL, "item or out is NULL");
	uint32_t f[KNYTT__TT_MAXFEAT];
	size_t nf = knytt__tt_item_features(item, tt->m->seed, tt->m->nbuckets,
					    f, KNYTT__TT_MAXFEAT);
	item_tower(tt->m, NULL, f, nf, out);
	return KNYTT_OK;
}

int knytt_twotower_embed_query(const knytt_twotower *tt, const char *text,
			       float *out)
{
	NEED_MODEL(tt);
	if (!text || !out)
		return knytt__err(KNYTT_EINVAL, "text or out is NULL");
	uint32_t f[KNYTT__TT_MAXFEAT];
	size_t nf = knytt__tt_text_features(text, tt->m->seed, tt->m->nbuckets,
					    f, KNYTT__TT_MAXFEAT);
	item_tower(tt->m, NULL, f, nf, out);
	return KNYTT_OK;
}

int knytt_twotower_embed_user(const knytt_twotower *tt, uint32_t user,
			      const uint32_t *recent, size_t n, float *out)
{
	NEED_MODEL(tt);
	const tt_model *m = tt->m;
	if (!out || (n > 0 && !recent))
		return knytt__err(KNYTT_EINVAL, "out or recent is NULL");
	if (user != KNYTT_TWOTOWER_NO_USER && user >= m->nusers)
		return knytt__err(KNYTT_EINVAL,
				  "user %u >= model users %u (pass "
				  "KNYTT_TWOTOWER_NO_USER for a new user)",
				  user, m->nusers);
	size_t first = n > m->history ? n - m->history : 0;
	const float **vecs = malloc((n - first + 1) * sizeof *vecs);
	if (!vecs)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	for (size_t j = first; j < n; j++) {
		if (recent[j] >= m->nitems) {
			free(vecs);
			return knytt__err(KNYTT_EINVAL,
					  "recent[%zu] = %u >= model items %u",
					  j, recent[j], m->nitems);
		}
		vecs[j - first] = m->iemb + (size_t)recent[j] * m->dim;
	}
	user_tower(m,
		   user == KNYTT_TWOTOWER_NO_USER ? NULL : row_user(m, user),
		   vecs, n - first, out);
	free(vecs);
	return KNYTT_OK;
}

/* ---- model file -------------------------------------------------------- */

static void put_u32s(unsigned char **p, const uint32_t *a, size_t n)
{
	for (size_t k = 0; k < n; k++, *p += 4)
		knytt__put_u32(*p, a[k]);
}

int knytt_twotower_save_buffer(const knytt_twotower *tt, void **buf,
			    size_t *len)
{
	NEED_MODEL(tt);
	if (!buf || !len)
		return knytt__err(KNYTT_EINVAL, "buf or len is NULL");
	const tt_model *m = tt->m;
	size_t nw = nrows(m) * m->dim;
	size_t nf = m->foff[m->nitems], nh = m->hoff[m->nusers];
	size_t total = HDR_SIZE +
		       4 * (nw + (size_t)m->nitems + 1 + nf +
			    (size_t)m->nusers + 1 + nh) +
		       4;
	unsigned char *b = malloc(total), *p = b;
	if (!b)
		return knytt__err(KNYTT_ENOMEM,
				  "out of memory for a %zu-byte model", total);
	memset(b, 0, HDR_SIZE);
	memcpy(p, FILE_MAGIC, 8);
	knytt__put_u32(p + 8, FILE_VERSION);
	knytt__put_u32(p + 12, m->dim);
	knytt__put_u32(p + 16, m->nbuckets);
	knytt__put_u32(p + 20, m->nusers);
	knytt__put_u32(p + 24, m->nitems);
	knytt__put_u32(p + 28, m->history);
	knytt__put_u64(p + 32, m->seed);
	knytt__put_u64(p + 40, nf);
	knytt__put_u64(p + 48, nh);
	p += HDR_SIZE;
	for (size_t k = 0; k < nw; k++, p += 4) {
		uint32_t v;
		memcpy(&v, &m->W[k], 4);
		knytt__put_u32(p, v);
	}
	put_u32s(&p, m->foff, (size_t)m->nitems + 1);
	put_u32s(&p, m->feat, nf);
	put_u32s(&p, m->hoff, (size_t)m->nusers + 1);
	put_u32s(&p, m->hist, nh);
	knytt__put_u32(p, knytt__crc32c(0, b, total - 4));
	*buf = b;
	*len = total;
	return KNYTT_OK;
}

int knytt_twotower_save(const knytt_twotower *tt, const char *path)
{
	NEED_MODEL(tt);
	if (!path)
		return knytt__err(KNYTT_EINVAL, "path is NULL");
	void *buf;
	size_t len;
	int rc = knytt_twotower_save_buffer(tt, &buf, &len);
	if (rc)
		return rc;
	rc = knytt__atomic_write(path, buf, len);
	free(buf);
	return rc;
}

static void get_u32s(const unsigned char **p, uint32_t *a, size_t n)
{
	for (size_t k = 0; k < n; k++, *p += 4)
		a[k] = knytt__get_u32(*p);
}

/* Checks that off[0..n] rises from 0 to total and vals < bound. */
static int check_csr(const uint32_t *off, size_t n, const uint32_t *vals,
		     size_t total, uint32_t bound, const char *what)
{
	if (off[0] != 0 || off[n] != total)
		return knytt__err(KNYTT_ECORRUPT,
				  "model file: %s offsets do not span the table",
				  what);
	for (size_t k = 0; k < n; k++)
		if (off[k + 1] < off[k])
			return knytt__err(KNYTT_ECORRUPT,
					  "model file: %s offsets decrease at "
					  "row %zu",
					  what, k);
	for (size_t k = 0; k < total; k++)
		if (vals[k] >= bound)
			return knytt__err(KNYTT_ECORRUPT,
					  "model file: %s entry %zu = %u out of "
					  "range (< %u)",
					  what, k, vals[k], bound);
	return KNYTT_OK;
}

int knytt_twotower_load_buffer(knytt_twotower *tt, const void *buf, size_t len)
{
	NEED_TT(tt);
	if (!buf)
		return knytt__err(KNYTT_EINVAL, "buf is NULL");
	const unsigned char *b = buf, *p;
	if (len < HDR_SIZE + 4 || memcmp(b, FILE_MAGIC, 8) != 0)
		return knytt__err(KNYTT_ECORRUPT,
				  "not a knytt two-tower model (bad magic or "
				  "only %zu bytes)",
				  len);
	uint32_t ver = knytt__get_u32(b + 8);
	if (ver > FILE_VERSION)
		return knytt__err(KNYTT_EVERSION,
				  "model file version %u, this library reads up "
				  "to %u",
				  ver, FILE_VERSION);
	if (knytt__crc32c(0, b, len - 4) != knytt__get_u32(b + len - 4))
		return knytt__err(KNYTT_ECORRUPT,
				  "model file checksum mismatch (%zu bytes): "
				  "truncated or corrupted",
				  len);
	if (ver == 0)
		return knytt__err(KNYTT_ECORRUPT, "model file version 0");
	tt_model *m = calloc(1, sizeof *m);
	if (!m)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	m->dim = knytt__get_u32(b + 12);
	m->nbuckets = knytt__get_u32(b + 16);
	m->nusers = knytt__get_u32(b + 20);
	m->nitems = knytt__get_u32(b + 24);
	m->history = knytt__get_u32(b + 28);
	m->seed = knytt__get_u64(b + 32);
	uint64_t nf = knytt__get_u64(b + 40), nh = knytt__get_u64(b + 48);
	int rc;
	if (m->dim < 2 || m->dim > 4096 || m->nbuckets < 16 ||
	    m->nbuckets > (1u << 26) || m->nusers == 0 || m->nitems == 0 ||
	    m->history == 0 || m->history > 1000 || nf > UINT32_MAX ||
	    nh > UINT32_MAX) {
		rc = knytt__err(KNYTT_ECORRUPT,
				"model file header out of range (dim %u, "
				"buckets %u, users %u, items %u)",
				m->dim, m->nbuckets, m->nusers, m->nitems);
		goto fail;
	}
	size_t nw = nrows(m) * m->dim;
	/* every count is < 2^32 and dim <= 4096: no overflow in size_t */
	size_t want = HDR_SIZE +
		      4 * (nw + (size_t)m->nitems + 1 + nf +
			   (size_t)m->nusers + 1 + nh) +
		      4;
	if (want != len) {
		rc = knytt__err(KNYTT_ECORRUPT,
				"model file has %zu bytes, its header implies "
				"%zu",
				len, want);
		goto fail;
	}
	m->W = knytt__aalloc(nw * sizeof(float));
	m->foff = malloc(((size_t)m->nitems + 1) * sizeof *m->foff);
	m->feat = malloc((nf ? nf : 1) * sizeof *m->feat);
	m->hoff = malloc(((size_t)m->nusers + 1) * sizeof *m->hoff);
	m->hist = malloc((nh ? nh : 1) * sizeof *m->hist);
	if (!m->W || !m->foff || !m->feat || !m->hoff || !m->hist) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory loading a model");
		goto fail;
	}
	p = b + HDR_SIZE;
	for (size_t k = 0; k < nw; k++, p += 4) {
		uint32_t v = knytt__get_u32(p);
		memcpy(&m->W[k], &v, 4);
		if (!isfinite(m->W[k])) {
			rc = knytt__err(KNYTT_ECORRUPT,
					"model file: parameter %zu is not "
					"finite",
					k);
			goto fail;
		}
	}
	get_u32s(&p, m->foff, (size_t)m->nitems + 1);
	get_u32s(&p, m->feat, nf);
	get_u32s(&p, m->hoff, (size_t)m->nusers + 1);
	get_u32s(&p, m->hist, nh);
	rc = check_csr(m->foff, m->nitems, m->feat, nf, m->nbuckets,
		       "item feature");
	if (!rc)
		rc = check_csr(m->hoff, m->nusers, m->hist, nh, m->nitems,
			       "user history");
	for (uint32_t u = 0; !rc && u < m->nusers; u++)
		if (m->hoff[u + 1] - m->hoff[u] > m->history)
			rc = knytt__err(KNYTT_ECORRUPT,
					"model file: user %u has %u history "
					"items, more than %u",
					u, m->hoff[u + 1] - m->hoff[u],
					m->history);
	if (!rc)
		rc = model_cache(m);
	if (rc)
		goto fail;
	model_free(tt->m);
	tt->m = m;
	return KNYTT_OK;
fail:
	model_free(m);
	return rc;
}

int knytt_twotower_load(knytt_twotower *tt, const char *path)
{
	NEED_TT(tt);
	if (!path)
		return knytt__err(KNYTT_EINVAL, "path is NULL");
	FILE *f = fopen(path, "rb");
	if (!f)
		return knytt__err_errno(KNYTT_EIO, errno, "cannot open %s",
					path);
	unsigned char *buf = NULL;
	size_t len = 0, cap = 0;
	int rc = KNYTT_OK;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 1 << 16;
			unsigned char *nb = realloc(buf, cap);
			if (!nb) {
				rc = knytt__err(KNYTT_ENOMEM,
						"out of memory reading %s", path);
				break;
			}
			buf = nb;
		}
		size_t r = fread(buf + len, 1, cap - len, f);
		len += r;
		if (r == 0) {
			if (ferror(f))
				rc = knytt__err_errno(KNYTT_EIO, errno,
						      "cannot read %s", path);
			break;
		}
	}
	fclose(f);
	if (!rc)
		rc = knytt_twotower_load_buffer(tt, buf, len);
	free(buf);
	return rc;
}
