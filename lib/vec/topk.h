/*
 * topk.h -- bounded "keep the k smallest" selection.  Not API.
 *
 * A binary max-heap of at most k (distance, id) pairs: the worst kept
 * pair sits at the root, so a new candidate is compared with one number
 * and rejected in O(1) once the heap is full -- the common case when
 * scanning many vectors for few results.
 */
#ifndef KNYTT_TOPK_H
#define KNYTT_TOPK_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

typedef struct knytt__pair {
	float d;
	uint32_t pad;
	uint64_t id;
} knytt__pair;

typedef struct knytt__topk {
	knytt__pair *h; /* capacity k */
	size_t n, k;
} knytt__topk;

static inline float knytt__topk_worst(const knytt__topk *t)
{
	return t->n < t->k ? INFINITY : t->h[0].d;
}

static inline void knytt__topk_push(knytt__topk *t, float d, uint64_t id)
{
	knytt__pair *h = t->h;
	size_t i;
	if (t->n < t->k) {
		i = t->n++;
		while (i > 0) {
			size_t p = (i - 1) / 2;
			if (h[p].d >= d)
				break;
			h[i] = h[p];
			i = p;
		}
		h[i].d = d;
		h[i].id = id;
		return;
	}
	if (!(d < h[0].d))
		return;
	/* replace the root and sift down */
	i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= t->n)
			break;
		if (c + 1 < t->n && h[c + 1].d > h[c].d)
			c++;
		if (h[c].d <= d)
			break;
		h[i] = h[c];
		i = c;
	}
	h[i].d = d;
	h[i].id = id;
}

/* Pops everything into ids/dists (nearest first); returns the count. */
static inline size_t knytt__topk_drain(knytt__topk *t, uint64_t *ids,
				       float *dists)
{
	size_t n = t->n;
	knytt__pair *h = t->h;
	while (t->n > 0) {
		size_t last = --t->n;
		if (ids)
			ids[last] = h[0].id;
		if (dists)
			dists[last] = h[0].d;
		knytt__pair x = h[last];
		size_t i = 0;
		for (;;) {
			size_t c = 2 * i + 1;
			if (c >= t->n)
				break;
			if (c + 1 < t->n && h[c + 1].d > h[c].d)
				c++;
			if (h[c].d <= x.d)
				break;
			h[i] = h[c];
			i = c;
		}
		h[i] = x;
	}
	return n;
}

#endif
