/*
 * snap.c -- the serving snapshot: the vector index, the trained model
 * and its item map, published as one reference-counted object.
 *
 * Why a reference count and not only the engine's rwlock: a query that
 * embeds its text with the model's tower does so with no engine lock
 * held, and search drops the lock while the store answers the keyword
 * half.  The reference keeps the model (and the index the query vector
 * belongs to) alive across those gaps, so a training swap never waits
 * for them and never frees what they read: the old snapshot goes when
 * its last reader puts it back.
 *
 * The model part (als, tt, qm, sr, items, version, tag) never changes once
 * published.  The index of the current snapshot takes item writes
 * (upsert, delete) under the engine's write lock, so a thread reads the
 * index of e->snap with the read lock held; a snapshot that has been
 * replaced is never written again, and its index may be read under the
 * read lock by the readers still holding it.
 */
#include "engine_int.h"
#include "../model/qterms.h"

#include <stdlib.h>

knytt__snap *knytt__snap_new(knytt_index *ix, knytt_als *als,
			     knytt_twotower *tt, knytt_lightgcn *lgc,
			     uint64_t *items,
			     uint32_t nitems, int64_t version,
			     const unsigned char tag[KNYTT__MODEL_TAG],
			     uint64_t gen)
{
	knytt__snap *s = calloc(1, sizeof *s);
	if (!s) {
		knytt_index_close(ix);
		knytt_als_close(als);
		knytt_twotower_close(tt);
		knytt_lightgcn_close(lgc);
		free(items);
		knytt__err(KNYTT_ENOMEM, "out of memory (serving snapshot)");
		return NULL;
	}
	s->refs = 1;
	s->ix = ix;
	s->als = als;
	s->tt = tt;
	s->lgc = lgc;
	s->items = items;
	s->nitems = nitems;
	s->version = version;
	if (tag)
		memcpy(s->tag, tag, KNYTT__MODEL_TAG);
	s->gen = gen;
	return s;
}

knytt__snap *knytt__snap_ref(knytt__snap *s)
{
	if (s)
		__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
	return s;
}

knytt__snap *knytt__snap_get(knytt_engine *e)
{
	pthread_rwlock_rdlock(&e->lock);
	knytt__snap *s = knytt__snap_ref(e->snap);
	pthread_rwlock_unlock(&e->lock);
	return s;
}

void knytt__snap_put(knytt__snap *s)
{
	if (!s)
		return;
	/* acq_rel: the last owner sees every reader's accesses before it
	 * frees (the usual reference-count ordering) */
	if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) != 0)
		return;
	knytt_index_close(s->ix);
	knytt_als_close(s->als);
	knytt_twotower_close(s->tt);
	knytt_lightgcn_close(s->lgc);
	knytt__qterms_free(s->qm);
	knytt_sasrec_close(s->sr);
	free(s->items);
	free(s);
}
