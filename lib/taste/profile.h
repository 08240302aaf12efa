/*
 * profile.h -- one shopper's profile: the whole history, the items seen
 * per interaction type (for exclusions), and the taste (taste.h).
 * Not API.
 *
 * The history is every event the store holds for the shopper, not a
 * window: exclusions must hold for a shopper with ten thousand events as
 * for one with ten, and the long-term taste is a fold-in of the whole
 * weighted, time-decayed history (profile_fold picks its input).  The
 * seen set answers "did this shopper interact with item X, and how" in
 * O(1) per candidate, so a query never scans the history or the store.
 *
 * A profile is changed and read under its own mutex, mu: feedback for
 * one shopper never waits for another shopper's queries.  Until it is
 * published in the engine's user table, only its builder sees it.
 */
#ifndef KNYTT_PROFILE_H
#define KNYTT_PROFILE_H

#include "taste.h"

#include <pthread.h>

/* Interaction types: KNYTT__T_* and knytt__type_bit in lib/internal.h. */

/* One event of a history: the engine's item row, the confidence (type
 * weight, times the rating), the time, the type bit. */
typedef struct knytt__hev {
	uint32_t row;
	float w;
	int64_t ts; /* ms */
	uint8_t type;
} knytt__hev;

typedef struct knytt__profile {
	pthread_mutex_t mu; /* guards everything below but ext_id */
	char *ext_id;       /* fixed at creation */
	knytt__hev *hist; /* oldest first (as added), every event */
	size_t nh, caph;
	knytt__lmap seen; /* store item id -> mask of type bits */
	knytt__taste taste;
	uint64_t long_gen; /* model generation the long-term part is for */
} knytt__profile;

/* A new, empty profile (NULL without memory). */
knytt__profile *knytt__profile_new(const char *ext_id, uint32_t dim);
void knytt__profile_free(knytt__profile *p);

/* Appends an event on item @p id (engine row @p row) and marks the item
 * seen with its type.  KNYTT_OK or KNYTT_ENOMEM (the profile unchanged). */
int knytt__profile_add(knytt__profile *p, uint64_t id, uint32_t row,
		       float w, int64_t ts, unsigned type_bit);

/* The type bits of the shopper's events on item @p id (0: never). */
static inline unsigned knytt__profile_seen(const knytt__profile *p,
					   uint64_t id)
{
	uint32_t m = knytt__lmap_get(&p->seen, id);
	return m == LMAP_EMPTY ? 0 : m;
}

/*
 * The input of a long-term fold-in: the history's items that have a model
 * row (model_row(row) != UINT32_MAX), each once with the sum of its
 * events' weights decayed by 2^(-(now - ts) / half_life) (no decay when
 * half_life_s <= 0), as the training matrix sums repeated pairs.  When
 * more than @p cap distinct items remain, the @p cap with the largest
 * weight are kept (see KNYTT__FOLD_MAX for why a cap).  @p midx and @p w
 * must have room for @p cap entries.  Returns the count.
 */
size_t knytt__profile_fold(const knytt__profile *p,
			   uint32_t (*model_row)(uint32_t row, void *ctx),
			   void *ctx, int64_t now_ms, double half_life_s,
			   size_t cap, uint32_t *midx, float *w);

/* The most distinct items a fold-in reads (see profile.c for the
 * measurement behind it). */
#define KNYTT__FOLD_MAX 4096

#endif
