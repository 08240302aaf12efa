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
 *
 * A wide filter (thousands of rows) made the scan cost 4-6x the
 * unfiltered walk (10% of 100k items: 10k rows, ~500 us against ~100 us,
 * benchmarks/engine/run --filters), whatever the prefetch distance.
 * Most of it was not the vectors but the filter test on every row good
 * enough to enter the list: each reads the item's row of the table, a
 * miss of its own.  So a scan of at least COARSE_MIN rows goes in two
 * passes: the first ranks every row by the float query against an int8
 * copy of the vectors (one byte per dimension and a step per row: a
 * quarter of the bytes) without asking the filter, and keeps the
 * COARSE_KEEP(k) best; the second scores those exactly from rowvec,
 * asking the filter.  The rounding moves a score by about 1e-3 of a unit
 * vector's, far less than the gap between the k-th and the
 * COARSE_KEEP(k)-th best, so the answer is the exact one but for
 * near-ties; when fewer than k of the kept rows pass the filter, the
 * exact scan answers instead.  rowq is NULL when it could not be
 * allocated: every scan is then exact.
 *
 * The int8 pass scores four rows per kernel step (dot_f8_rows, lib/vec):
 * one call per row spent ~9 ns of its ~25 on the horizontal sum each row
 * waited for.  What is left is memory: each passing row is a cache line
 * of its own, rarely still cached from the last query.  A row set met a
 * second time gets a packed copy of its codes (packscan.c), which the
 * pass then reads end to end (benchmarks/engine/run --filters, 10% of
 * 100k rows: the query's CPU p50 270-281 us with both, 292-327 us
 * before them).
 */
#include "engine_int.h"
#include "packscan.h"

#include "../vec/topk.h"
#include "../vec/vec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define COARSE_MIN 2048
#define COARSE_KEEP(k) (4 * (k) + 32)
#define COARSE_BLOCK 256

/* The int8 copy of row @p r from its float vector @p x: a symmetric
 * step per row, max |x| / 127 (0 for a zero vector). */
static void rowq_set(knytt_engine *e, size_t r, const float *x)
{
	if (!e->rowq)
		return;
	float m = 0;
	for (uint32_t i = 0; i < e->dim; i++)
		m = fmaxf(m, fabsf(x[i]));
	float inv = m > 0 ? 127.0f / m : 0;
	int8_t *c = e->rowq + r * e->dim;
	for (uint32_t i = 0; i < e->dim; i++)
		c[i] = (int8_t)lrintf(x[i] * inv);
	e->rowq_s[r] = m / 127.0f;
	e->rowq_gen++;
}

/* (Re)allocates the int8 copy for @p cap rows, keeping @p old rows;
 * without memory there is none (scans stay exact). */
static void rowq_alloc(knytt_engine *e, size_t old, size_t cap)
{
	int8_t *c = knytt__big_realloc(e->rowq, old * e->dim, cap * e->dim);
	float *sc = c ? realloc(e->rowq_s, cap * sizeof *sc) : NULL;
	if (!c || !sc) {
		free(c ? c : e->rowq);
		free(sc ? sc : e->rowq_s);
		e->rowq = NULL;
		e->rowq_s = NULL;
		e->rowq_gen++;
		return;
	}
	memset(c + old * e->dim, 0, (cap - old) * e->dim);
	memset(sc + old, 0, (cap - old) * sizeof *sc);
	e->rowq = c;
	e->rowq_s = sc;
}

void knytt__rowvec_free(knytt_engine *e)
{
	free(e->rowvec);
	free(e->rowq);
	free(e->rowq_s);
	e->rowvec = NULL;
	e->rowq = NULL;
	e->rowq_s = NULL;
	e->rowq_gen++;
	e->rowvec_ok = 0;
}

int knytt__rowvec_grow(knytt_engine *e, size_t cap)
{
	if (!e->rowvec)
		return 0;
	if (e->rowq)
		rowq_alloc(e, e->rowvec_cap, cap);
	float *v = knytt__big_realloc(e->rowvec,
				     e->rowvec_cap * e->dim * sizeof *v,
				     cap * e->dim * sizeof *v);
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
	rowq_set(e, row, x);
}

void knytt__rowvec_fill(knytt_engine *e)
{
	e->rowvec_ok = 0;
	size_t cap = e->capitems ? e->capitems : 1;
	float *v = knytt__big_realloc(e->rowvec, 0, cap * e->dim * sizeof *v);
	if (!v) {
		free(e->rowvec);
		e->rowvec = NULL;
		return;
	}
	memset(v, 0, cap * e->dim * sizeof *v);
	e->rowvec = v;
	e->rowvec_cap = cap;
	e->rowvec_ok = 1;
	free(e->rowq);
	free(e->rowq_s);
	e->rowq = NULL;
	e->rowq_s = NULL;
	e->rowq_gen++;
	rowq_alloc(e, 0, cap);
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
		rowq_set(e, r, x);
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

static size_t scan_exact(const knytt_engine *e, const uint32_t *rows,
			 size_t n, const float *const *q, size_t nq, size_t k,
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

/* The int8 pass: query j's COARSE_KEEP(k) best rows by the codes, the
 * filter not asked (each test reads the item's row, a cache miss of its
 * own); then those rows scored exactly with the filter.  When fewer than
 * k of them pass, the exact scan of all rows answers that query: at
 * least k passing among the best COARSE_KEEP(k) means the k best passing
 * rows are among them (but for near-ties).  Returns 0, or -1 without
 * memory (the caller scans exactly). */
static int scan_coarse(const knytt_engine *e, const uint32_t *rows,
		       size_t n, const float *const *q, size_t nq, size_t k,
		       int (*ok)(uint32_t row, void *ctx), void *ctx,
		       uint32_t *orow, float *oscore, size_t *got)
{
	uint32_t d = e->dim;
	size_t keep = COARSE_KEEP(k);
	const knytt__vec_ops *ops = knytt__vec();
	/* one block: the heaps, then the drained ids and rows */
	knytt__pair *heap = malloc(nq * keep * sizeof *heap +
				   keep * (sizeof(uint64_t) + sizeof(uint32_t)));
	if (!heap)
		return -1;
	uint64_t *ids = (uint64_t *)(heap + nq * keep);
	uint32_t *cand = (uint32_t *)(ids + keep);
	knytt__topk t[2];
	for (size_t j = 0; j < nq; j++)
		t[j] = (knytt__topk){ heap + j * keep, 0, keep };
	/* scored a block at a time by the kernel (four rows per step, the
	 * rows ahead prefetched), then offered to the heaps */
	float sc[COARSE_BLOCK];
	/* a set scanned before reads its packed copy (packscan.c) */
	const knytt__pack *pk = knytt__pack_get(e, rows, n);
	for (size_t i0 = 0; i0 < n; i0 += COARSE_BLOCK) {
		size_t m = n - i0 < COARSE_BLOCK ? n - i0 : COARSE_BLOCK;
		for (size_t j = 0; j < nq; j++) {
			if (pk)
				ops->dot_f8_rows(q[j], pk->codes + i0 * d,
						 pk->scale + i0, NULL, m, d,
						 sc);
			else
				ops->dot_f8_rows(q[j], e->rowq, e->rowq_s,
						 rows + i0, m, d, sc);
			/* a repeated row may take two places here; the
			 * exact pass below keeps it once */
			for (size_t i = 0; i < m; i++)
				if (-sc[i] < knytt__topk_worst(&t[j]))
					knytt__topk_push(&t[j], -sc[i],
							 rows[i0 + i]);
		}
	}
	knytt__pack_put(e, pk);
	for (size_t j = 0; j < nq; j++) {
		size_t m = knytt__topk_drain(&t[j], ids, NULL);
		for (size_t i = 0; i < m; i++)
			cand[i] = (uint32_t)ids[i];
		scan_exact(e, cand, m, &q[j], 1, k, ok, ctx, orow + j * k,
			   oscore + j * k, &got[j]);
		if (got[j] < k)
			scan_exact(e, rows, n, &q[j], 1, k, ok, ctx,
				   orow + j * k, oscore + j * k, &got[j]);
	}
	free(heap);
	return 0;
}

size_t knytt__scan(const knytt_engine *e, const uint32_t *rows, size_t n,
		   const float *const *q, size_t nq, size_t k,
		   int (*ok)(uint32_t row, void *ctx), void *ctx,
		   uint32_t *orow, float *oscore, size_t *got)
{
	if (e->rowq && n >= COARSE_MIN && n > 4 * COARSE_KEEP(k) &&
	    scan_coarse(e, rows, n, q, nq, k, ok, ctx, orow, oscore, got) == 0)
		return nq;
	return scan_exact(e, rows, n, q, nq, k, ok, ctx, orow, oscore, got);
}
