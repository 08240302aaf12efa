/*
 * fusion.c -- weighted reciprocal rank fusion of ranked id lists.
 *
 * An id at 1-based rank r of list l earns w_l / (k + r); its fused score
 * is the sum over the lists that hold it (Cormack, Clarke & Buettcher
 * 2009 take k = 60 and w = 1: hybrid search).  Recommend fuses the
 * long-term and the session lists with k = 0 and weights 1 - f and f, so
 * a share f of the top slots goes to the session (the two alternate at
 * f = 0.5).  Ranks, not scores, are added because the lists' scores are
 * on different scales (BM25 against inner products, two tastes against
 * each other).
 *
 * Ids are found through a hash map, so fusing lists of n and m entries
 * costs O(n + m) and a sort, not a scan of the fused list per entry.
 */
#include "engine_int.h"

#include <stdlib.h>

int knytt__rrf_init(knytt__rrf *r, double k, size_t cap)
{
	memset(r, 0, sizeof *r);
	r->k = k;
	r->cap = cap ? cap : 1;
	r->f = malloc(r->cap * sizeof *r->f);
	if (!r->f || knytt__lmap_reserve(&r->map, r->cap)) {
		knytt__rrf_free(r);
		return knytt__err(KNYTT_ENOMEM, "out of memory (fusion)");
	}
	return KNYTT_OK;
}

void knytt__rrf_free(knytt__rrf *r)
{
	free(r->f);
	knytt__lmap_free(&r->map);
	memset(r, 0, sizeof *r);
}

int knytt__rrf_add(knytt__rrf *r, unsigned list, double weight,
		   const uint64_t *ids, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		double part = weight / (r->k + (double)(i + 1));
		uint32_t slot = knytt__lmap_get(&r->map, ids[i]);
		knytt__fused *x;
		if (slot == LMAP_EMPTY) {
			if (r->n == r->cap) {
				size_t nc = r->cap * 2;
				knytt__fused *g = realloc(r->f, nc * sizeof *g);
				if (!g)
					return knytt__err(KNYTT_ENOMEM,
							  "out of memory "
							  "(fusion)");
				r->f = g;
				r->cap = nc;
			}
			if (knytt__lmap_put(&r->map, ids[i], (uint32_t)r->n))
				return KNYTT_ENOMEM;
			x = &r->f[r->n++];
			memset(x, 0, sizeof *x);
			x->id = ids[i];
			x->best = list;
			x->best_pos = i;
			x->best_part = part;
		} else {
			x = &r->f[slot];
			/* an id twice in one list counts at its best rank */
			if (x->lists >> list & 1)
				continue;
			/* the list that gave the most; the earlier one on
			 * a tie */
			if (part > x->best_part) {
				x->best_part = part;
				x->best = list;
				x->best_pos = i;
			}
		}
		x->score += part;
		x->lists |= 1u << list;
	}
	return KNYTT_OK;
}

static int cmp_fused(const void *a, const void *b)
{
	const knytt__fused *x = a, *y = b;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

void knytt__rrf_sort(knytt__rrf *r)
{
	/* the map's slots no longer name entries after this: no more adds */
	qsort(r->f, r->n, sizeof *r->f, cmp_fused);
	knytt__lmap_free(&r->map);
}
