/*
 * vecsync.c -- item vectors another process wrote: a replica on the
 * same PostgreSQL database learns of an item upsert (knytt_engine_sync)
 * and serves the item's new vector at once, not at the next model load.
 *
 * The vectors an item gets at ingest (the caller's, or the item tower's
 * or the embedder's when the caller gave none) are stored as the item's
 * "caller" embedding, and each write dates the row (embeddings.updated,
 * schema version 7).  Sync reads the rows written since its last look,
 * in one indexed query and without holding the engine lock, then puts
 * each changed vector in the index and the row copy (scan.c) as the
 * writer did in knytt_engine_item_upsert.  A vector the index already
 * holds is left alone: the writer's own sync and the look-back below
 * read rows again.
 *
 * The look-back: a row is dated by its writer's wall clock, so a writer
 * whose clock is a little behind ours may date a row before the newest
 * one we saw.  Each look starts VS_LOOKBACK_MS before that newest date;
 * re-reading those rows costs a query's worth of bytes, not index work.
 */
#include "engine_int.h"
#include "../store/store_int.h"

#include "../vec/vec.h"

#include <stdlib.h>

#define VS_LOOKBACK_MS 1000

static int keep_cb(uint64_t id, const float *vec, uint32_t dim,
		   int64_t updated_ms, void *ctx)
{
	knytt__vecsync *vs = ctx;
	if (updated_ms > vs->newest)
		vs->newest = updated_ms;
	if (dim != vs->dim)
		return 0; /* another engine dimension: not ours to serve */
	if (vs->n == vs->cap) {
		size_t nc = vs->cap ? vs->cap * 2 : 16;
		uint64_t *ids = realloc(vs->ids, nc * sizeof *ids);
		if (ids)
			vs->ids = ids;
		float *v = realloc(vs->v, nc * dim * sizeof *v);
		if (v)
			vs->v = v;
		if (!ids || !v)
			return 1;
		vs->cap = nc;
	}
	vs->ids[vs->n] = id;
	memcpy(vs->v + vs->n * dim, vec, dim * sizeof *vec);
	vs->n++;
	return 0;
}

int knytt__vecsync_read(knytt_engine *e, int64_t since_ms,
			knytt__vecsync *vs)
{
	memset(vs, 0, sizeof *vs);
	vs->dim = e->dim;
	vs->newest = since_ms;
	int rc = knytt__embeddings_changed(
		e->st, KNYTT_OWNER_ITEM, "caller",
		since_ms > VS_LOOKBACK_MS ? since_ms - VS_LOOKBACK_MS : 0,
		keep_cb, vs);
	if (rc == KNYTT_ECANCELED)
		rc = knytt__err(KNYTT_ENOMEM, "out of memory reading vectors");
	return rc < 0 ? rc : KNYTT_OK;
}

/* Whether the index holds @p v for @p id already (@p tmp: dim floats). */
static int same_vec(const knytt_engine *e, uint64_t id, const float *v,
		    float *tmp)
{
	if (knytt_index_get(e->snap->ix, id, tmp, e->dim) != KNYTT_OK)
		return 0;
	return memcmp(tmp, v, e->dim * sizeof *v) == 0;
}

int knytt__vecsync_apply(knytt_engine *e, knytt__vecsync *vs)
{
	float *tmp = malloc(e->dim * sizeof *tmp);
	if (!tmp)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	int applied = 0, rc = KNYTT_OK;
	for (size_t i = 0; i < vs->n && rc == KNYTT_OK; i++) {
		uint32_t r = knytt__engine_row(e, vs->ids[i]);
		const float *v = vs->v + i * e->dim;
		/* a deleted item keeps its stored vector, never its slot */
		if (r == UINT32_MAX || e->items[r].deleted ||
		    same_vec(e, vs->ids[i], v, tmp))
			continue;
		rc = knytt_index_upsert(e->snap->ix, vs->ids[i], v, e->dim);
		if (rc == KNYTT_OK) {
			knytt__rowvec_set(e, r, v);
			e->items[r].has_vec = 1;
			e->items[r].caller_vec = 1;
			applied++;
		}
	}
	if (rc == KNYTT_OK && vs->newest > e->vec_synced_ms)
		e->vec_synced_ms = vs->newest;
	free(tmp);
	return rc < 0 ? rc : applied;
}

void knytt__vecsync_free(knytt__vecsync *vs)
{
	free(vs->ids);
	free(vs->v);
	memset(vs, 0, sizeof *vs);
}
