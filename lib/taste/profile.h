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
 * one shopper never waits for another shopper's queries.
 *
 * The engine keeps its profiles in a cache of bounded memory
 * (lib/engine/profcache.c): a profile is reference-counted, a query
 * holds a reference for as long as it reads the profile, and an idle
 * one (no reference) may be evicted and is then loaded again from the
 * store on its next use.  So everything here is either derived from the
 * stored history (rebuilt identically by a load) or the session, which a
 * load replays from the recent stored events.  knytt__profile_bytes is
 * what the cache counts against its budget.
 *
 * Why the events are all kept rather than capped to the last N.  Per
 * event a profile spends 24 bytes of history and, for an item new to the
 * shopper, 24 to 48 of seen set (a slot of 12 bytes in a map kept at
 * most half full).  The seen set must cover the whole history, so a cap
 * on events would leave it, the larger part, untouched for a shopper
 * whose events are mostly on new items (the soak's shoppers).  And the
 * events feed answers that must not change: the fold-in sums every event
 * of an item, each decayed from its own time (an aggregate per item
 * would cost as much as the seen set again and drift from the per-event
 * sum when the as-of time moves back), and knytt_engine_refresh_users
 * recognises events it already holds by (item, time, type) whatever
 * their age.  What bounds the memory is the cache's budget; a profile
 * spends little capacity it does not use once loaded (the load reserves
 * its event count rounded up to a capacity class, knytt__cap_class:
 * about 10% slack, so that blocks freed by evictions fit the next loads
 * exactly; profile.c says why).
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

/*
 * The last index answer of one of the shopper's taste searches (the
 * engine's annmemo.c fills and reads it): a recommendation asked again
 * with nothing changed -- the profile (ver), the model (snap_gen), the
 * index (ix_gen, ix_writes), the list length and ef, the exclusion
 * rule -- walks the same graph from the same vector to the same labels,
 * so they are kept here rather than walked for again.
 */
typedef struct knytt__annmemo {
	int valid;          /* 0: nothing kept */
	uint64_t ver;       /* the profile's ver when it was searched */
	uint64_t snap_gen;  /* the snapshot's gen */
	uint64_t ix_gen, ix_writes; /* knytt__index_writes before the walk */
	uint32_t kk, ef;
	unsigned excl_mask;
	uint32_t n, cap;    /* answers held; room in lab/dist */
	uint64_t *lab;      /* cap labels, then cap distances: one block */
	float *dist;
} knytt__annmemo;

/* Load states (state below). */
enum { KNYTT__PROF_LOADING, KNYTT__PROF_READY, KNYTT__PROF_FAILED };

typedef struct knytt__profile {
	pthread_mutex_t mu; /* guards the fields from state to long_gen */
	char *ext_id;       /* fixed at creation */
	int state;          /* KNYTT__PROF_*: the loader holds mu from
			       before the profile is published until it is
			       READY (or FAILED, and unpublished) */
	knytt__hev *hist; /* oldest first (as added), every event */
	size_t nh, caph;
	knytt__lmap seen; /* store item id -> mask of type bits */
	knytt__taste taste;
	uint64_t long_gen; /* model generation the long-term part is for */
	uint64_t fq_seq;   /* the engine's feedback queue count after this
			      shopper's last queued event: not evicted
			      before the writer has retired it */
	size_t bytes;      /* as last accounted (knytt__profile_bytes) */
	uint64_t ver;      /* bumped by every change of the history, seen
			      set or taste (knytt__profile_add, the
			      engine's refresh_long and session_event):
			      what memo keeps holds while it stands */
	knytt__annmemo memo[2]; /* long-term and session taste searches */

	/* the engine's cache (profcache.c), under its users_mu except refs
	 * and published, which are atomic */
	int refs;          /* references held; 0 = idle, evictable */
	int published;     /* in the user table (a profile that never was,
			      or no longer is, is freed by its last put) */
	uint32_t slot;     /* index in the engine's users[] */
	struct knytt__profile *lru_prev, *lru_next; /* prev: more recent */
} knytt__profile;

/* A new, empty profile (NULL without memory). */
knytt__profile *knytt__profile_new(const char *ext_id, uint32_t dim);
void knytt__profile_free(knytt__profile *p);

/* Room for @p n events in all (a load knows its count, so the history
 * takes only its class's slack: the capacity becomes knytt__cap_class of
 * @p n).  KNYTT_OK or KNYTT_ENOMEM. */
int knytt__profile_reserve(knytt__profile *p, size_t n);

/* Heap bytes of the profile with taste vectors of @p dim floats: the
 * struct, the id, the history's capacity (slack included), the seen
 * set's table and the two vectors, plus the allocator's overhead per
 * block. */
size_t knytt__profile_bytes(const knytt__profile *p, uint32_t dim);

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
