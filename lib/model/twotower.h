/*
 * twotower.h -- internals of the two-tower model shared by twotower.c
 * (settings, towers, embedding, the model file) and tt_train.c (the
 * trainer), and the trainer's testing hooks.  Not API.
 *
 * The hooks let tests/check_twotower.c compare the analytic gradient of
 * the in-batch softmax loss with finite differences on a tiny model.
 */
#ifndef KNYTT_MODEL_TWOTOWER_H
#define KNYTT_MODEL_TWOTOWER_H

#include "../internal.h"

#include <stdlib.h>
#include <string.h>

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

static inline float *row_user(const tt_model *m, uint32_t u)
{
	return m->W + (size_t)u * m->dim;
}
static inline float *row_item(const tt_model *m, uint32_t i)
{
	return m->W + ((size_t)m->nusers + i) * m->dim;
}
static inline float *row_feat(const tt_model *m, uint32_t f)
{
	return m->W + ((size_t)m->nusers + m->nitems + f) * m->dim;
}
static inline size_t nrows(const tt_model *m)
{
	return (size_t)m->nusers + m->nitems + m->nbuckets;
}

/* y += a x over d floats.  SSE2 is the x86-64 baseline, so no ISA flag
 * is needed; four lanes and the scalar tail add in the same order on
 * every run, which keeps training reproducible. */
static inline void axpy(float *restrict y, float a, const float *restrict x,
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

/* every entry point checks its handle first */
#define NEED_TT(tt)                                                       \
	do {                                                              \
		if (!(tt))                                                \
			return knytt__err(KNYTT_EINVAL, "twotower is NULL"); \
	} while (0)

/* twotower.c: free a model; scale v to unit length (returns the old
 * norm, 0: left as zeros); the item tower (id row if @p id + mean of
 * the feature rows, normalised; returns the norm before); the cached
 * item and user vectors of a trained or loaded model. */
void knytt__tt_model_free(tt_model *m);
float knytt__tt_unit(float *v, uint32_t d);
float knytt__tt_item_tower(const tt_model *m, const float *id,
			   const uint32_t *feat, size_t nf, float *out);
int knytt__tt_model_cache(tt_model *m);

typedef struct knytt__tt_debug knytt__tt_debug;

/* Validates and prepares training state as knytt_twotower_train would
 * (weights 1, array order = time order), without training. */
int knytt__tt_debug_prepare(const knytt_twotower *tt, uint32_t nusers,
			    uint32_t nitems, const knytt_twotower_item *items,
			    size_t n, const uint32_t *users,
			    const uint32_t *items_idx, knytt__tt_debug **out);

/* Loss of one batch made of the first @p nex (<= 64) training examples,
 * without id dropout; *W and *G point at the parameters and their
 * gradient (both *nparams floats).  W may be edited between calls. */
double knytt__tt_debug_loss(knytt__tt_debug *dbg, size_t nex, float **W,
			    const float **G, size_t *nparams);

void knytt__tt_debug_free(knytt__tt_debug *dbg);

#endif
