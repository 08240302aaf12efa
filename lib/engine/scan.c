/*
 * scan.c -- exact search over the few thousand rows a selective filter
 * lets through, from the engine's own copy of the item vectors.
 *
 * The index answers a selective filter with an exact scan too, but it
 * reaches each passing label through its label map and the node block:
 * two or three dependent cache misses per item, ~100 ns on the benchmark
 * shop when the index is not in cache, and recommend does it twice (the
 * long-term and the session taste).  Here the candidate rows are known
 * before the scan starts, so each vector is prefetched a few rows ahead
 * with nothing to wait for, and both tastes are scored in the same pass.
 * The price is a second copy of the vectors: dim floats per item row
 * (25 MB for 100k items of 64 dimensions).
 *
 * rowvec mirrors the index for every row with has_vec; rowvec_ok is 0
 * when it could not be kept (no memory), and queries then use the index.
 * It is written under the engine's write lock (open, item upsert, model
 * install) and read under the read lock.
 */
#include "engine_int.h"

#include "../vec/topk.h"
#include "../vec/vec.h"

#include <stdlib.h>
#include <string.h>

int knytt__rowvec_grow(knytt_engine *e, size_t cap)
{
	if (!e->rowvec)
		return 0;
	float *v = realloc(e->rowvec, cap * e->dim * sizeof *v);
	if (!v) {
		free(e->rowvec);
		e->rowvec = NULL;
		e->rowvec_ok = 0;
		return 0; /* queries use the index instead */
	}
	/* rows without a vector score 0 (and are rejected by the check) */
	memset(v + e->rowvec_cap * e->dim, 0,
	       (cap - e->rowvec_cap) * e->dim * sizeof *v);
	e->rowvec = v;
	e->rowvec_cap = cap;
	return 0;
}

void knytt__rowvec_set(knytt_engine *e, uint32_t row, const float *v)
{
	if (!e->rowvec_ok)
		return;
	float *x = e->rowvec + (size_t)row * e->dim;
	memcpy(x, v, e->dim * sizeof *x);
	/* scores are dot products: under cosine, of unit vectors */
	if (e->metric == KNYTT_METRIC_COSINE)
		knytt__normalize(x, e->dim);
}

void knytt__rowvec_fill(knytt_engine *e)
{
	e->rowvec_ok = 0;
	size_t cap = e->capitems ? e->capitems : 1;
	float *v = realloc(e->rowvec, cap * e->dim * sizeof *v);
	if (!v) {
		free(e->rowvec);
		e->rowvec = NULL;
		return;
	}
	memset(v, 0, cap * e->dim * sizeof *v);
	e->rowvec = v;
	e->rowvec_cap = cap;
	e->rowvec_ok = 1;
	for (size_t r = 0; r < e->nitems; r++) {
		if (!e->items[r].has_vec)
			continue;
		float *x = v + r * e->dim;
		if (knytt_index_get(e->snap->ix, e->items[r].id, x, e->dim) !=
		    KNYTT_OK) {
			e->rowvec_ok = 0;
			return;
		}
		if (e->metric == KNYTT_METRIC_COSINE)
			knytt__normalize(x, e->dim);
	}
}

/* whether row r is among the first n entries of heap h */
static int in_heap(const knytt__topk *t, uint32_t r)
{
	for (size_t i = 0; i < t->n; i++)
		if (t->h[i].id == r)
			return 1;
	return 0;
}

size_t knytt__scan(const knytt_engine *e, const uint32_t *rows, size_t n,
		   const float *const *q, size_t nq, size_t k,
		   int (*ok)(uint32_t row, void *ctx), void *ctx,
		   uint32_t *orow, float *oscore, size_t *got)
{
	uint32_t d = e->dim;
	const float *vec = e->rowvec;
	const knytt__vec_ops *ops = knytt__vec();
	knytt__pair *heap = malloc(nq * k * sizeof *heap);
	uint64_t *ids = malloc(k * sizeof *ids);
	if (!heap || !ids) {
		free(heap);
		free(ids);
		return 0;
	}
	knytt__topk t[2];
	for (size_t j = 0; j < nq; j++)
		t[j] = (knytt__topk){ heap + j * k, 0, k };
	/* far enough ahead to cover a miss to memory at ~10 ns per row */
	size_t line = 64 / sizeof *vec, ahead = 16;
	for (size_t i = 0; i < n; i++) {
		if (i + ahead < n) {
			const float *p = vec + (size_t)rows[i + ahead] * d;
			for (size_t o = 0; o < d; o += line)
				__builtin_prefetch(p + o);
		}
		uint32_t r = rows[i];
		const float *x = vec + (size_t)r * d;
		int pass = -1; /* not checked yet */
		for (size_t j = 0; j < nq; j++) {
			/* the heap keeps the smallest keys: -score */
			float s = -ops->dot(q[j], x, d);
			if (!(s < knytt__topk_worst(&t[j])))
				continue;
			/* the filter is tested only on rows good enough to
			 * enter a list: a few dozen per query, not every
			 * candidate (each test reads the item's row of the
			 * table, a cache miss of its own) */
			if (pass < 0)
				pass = ok(r, ctx);
			if (pass && !in_heap(&t[j], r))
				knytt__topk_push(&t[j], s, r);
		}
	}
	for (size_t j = 0; j < nq; j++) {
		got[j] = knytt__topk_drain(&t[j], ids, oscore + j * k);
		for (size_t i = 0; i < got[j]; i++) {
			orow[j * k + i] = (uint32_t)ids[i];
			oscore[j * k + i] = -oscore[j * k + i];
		}
	}
	free(heap);
	free(ids);
	return nq;
}
