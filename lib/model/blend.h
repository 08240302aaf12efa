/*
 * blend.h -- the blend of a shopper's personal ranking with the ranking
 * of what is popular right now.  Not API.
 *
 * One definition, used at two points: the tuner (tune.c) scores every
 * candidate weight on the validation period with it, and the engine's
 * recommend (lib/engine/query.c) serves the weight the tuner chose with
 * it, so the figure the tuner reports is the one recommend earns.
 *
 * The blend is by rank, not by score: a model's scores and popularity
 * counts have no common scale (ALS scores shrink with reg, counts grow
 * with the shop), while ranks do.  Each list gives an item
 *     (1 - w) / (C + rank) (personal) and w / (C + rank) (popular),
 * rank 0-based, nothing when the item is not in the list; the item's
 * score is the sum.  w = 0 is the personal list, w = 1 the popular one.
 * C = KNYTT__BLEND_C sets how steeply a list's head counts: with C = 1
 * (the session fusion of recommend uses the same) the blend interleaves
 * the two lists in proportion to w.  Measured on the validation period
 * tune.c carves from ML-100K (NDCG@20 of ALS blended with the two-week
 * trending list, best w): C = 1 0.195, C = 10 0.176, C = 60 0.186,
 * popularity alone 0.186: only the steep head makes the blend pay.
 */
#ifndef KNYTT_MODEL_BLEND_H
#define KNYTT_MODEL_BLEND_H

#include "../internal.h"

#define KNYTT__BLEND_C 1.0

/* How deep each list is read for an answer of @p k items: items a bit
 * below the top k of both lists can enter the blend's top k. */
static inline size_t knytt__blend_depth(size_t k)
{
	return 2 * k;
}

/*
 * Fuses the personal ranking a[0..na) with the popular ranking
 * b[0..nb) (ids, best first, each list without repeats) with weight
 * @p w of b: writes the best min(cap, distinct ids) ids into out, best
 * first, their scores into score (may be NULL) and, in from_b (may be
 * NULL), 1 where b contributed more than a.  Ties go to the better
 * personal rank, then to the lower id.  Returns the count, or 0 without
 * memory (callers then keep their personal list).
 */
size_t knytt__blend_fuse(const uint64_t *a, size_t na, const uint64_t *b,
			 size_t nb, double w, size_t cap, uint64_t *out,
			 double *score, unsigned char *from_b);

#endif
