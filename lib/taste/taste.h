/*
 * taste.h -- a shopper's taste in item-embedding space.  Not API.
 *
 * Two parts, blended per request:
 *  - long-term: the model's view of the whole (weighted, time-decayed)
 *    history -- an ALS fold-in, the two-tower user tower, or a weighted
 *    mean of item vectors -- recomputed by the engine on every event;
 *  - session: an exponentially decaying sum of the unit vectors of the
 *    items the shopper just touched, so the last few events steer the
 *    next answers and fade within a few half-lives.
 * The session's share of the blend is `blend` right after an event and
 * halves with every session half-life of silence.
 */
#ifndef KNYTT_TASTE_H
#define KNYTT_TASTE_H

#include "../internal.h"

#include <math.h>

/* 2^(-dt / half-life): the weight left after dt_ms milliseconds; 1 for
 * dt <= 0 or no half-life. */
static inline double knytt__decay(int64_t dt_ms, double half_life_s)
{
	if (dt_ms <= 0 || !(half_life_s > 0))
		return 1.0;
	return exp2(-(double)dt_ms / 1000.0 / half_life_s);
}

typedef struct knytt__taste {
	float *longv;       /* dim floats; meaningful when long_ok */
	int long_ok;
	float *sess;        /* dim floats: decayed sum of unit item vectors */
	int has_sess;
	int64_t sess_ts;    /* ms of the last session event */
	uint64_t sess_item; /* store id of the last session item */
} knytt__taste;

int knytt__taste_init(knytt__taste *t, uint32_t dim);
void knytt__taste_free(knytt__taste *t);

/* Adds item vector @p v with weight @p w at time @p ts_ms, decaying what
 * was there by 2^(-dt / half_life). */
void knytt__taste_session_add(knytt__taste *t, const float *v, uint32_t dim,
			      float w, int64_t ts_ms, double half_life_s,
			      uint64_t item);

/*
 * Writes the blended taste direction into @p out:
 *   (1 - f) * long / |long| + f * sess / |sess|,
 * f = blend * 2^(-(now - sess_ts) / half_life) (1 without a long-term
 * part, 0 without a session).  *share receives f.  Returns 0 when the
 * shopper has no taste at all (cold), 1 otherwise.
 */
int knytt__taste_blend(const knytt__taste *t, uint32_t dim, int64_t now_ms,
		       double half_life_s, double blend, float *out,
		       float *share);

/* Whether item vector @p v owes more to the session than to the
 * long-term part of a blend made with share @p f. */
int knytt__taste_from_session(const knytt__taste *t, uint32_t dim, float f,
			      const float *v);

#endif
