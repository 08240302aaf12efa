/*
 * annmemo.c -- a shopper's last taste searches, kept in the profile.
 *
 * Why.  A recommendation without filters walks the index with the
 * shopper's long-term taste (and with the session's when it can change
 * the answer, recommend.c's session_moot).  At 100k items that walk and
 * its distances were about 57% of knyttd's CPU per recommendation (perf
 * on benchmarks/serve with shoppers asking again).  A shop asks for the
 * same shopper's recommendations on every page view, and between two of
 * them nothing the walk reads has changed most of the time.  The walk is
 * a deterministic function of what it reads, so its answer (labels and
 * distances, before the labels become results) is kept in the profile
 * and given again while all of that stands:
 *  - the query vector and the exclusions: the profile's ver, bumped by
 *    every event (history and seen set) and every change of a taste
 *    vector (lib/taste/profile.h);
 *  - the index: its handle number and write count
 *    (knytt__index_writes), read before the walk, so that a write
 *    landing during the walk leaves the kept answer stale, never wrongly
 *    fresh; and the snapshot's gen (a new model, a new index);
 *  - the list length kk, the walk's ef and the exclusion mask.
 * Only searches whose filter is the shopper's exclusions alone are kept:
 * a category, price, stock, quality or attribute filter, or a caller's
 * list of excluded items, varies per request.  The labels become rows
 * again on every use (search_taste in recommend.c), so an item table
 * changed in between is read as it is now.
 *
 * Cost: kk labels and distances per kept list (240 bytes for the twenty
 * a recommendation of ten reads), counted in the profile's bytes against
 * the profile cache's budget; an evicted profile takes its memo along.
 */
#include "query.h"
#include "../internal.h"

#include <stdlib.h>
#include <string.h>

/* Whether the answer of this search may be kept at all. */
static int keepable(const qctx *c)
{
	return !c->bits && !c->nexcl && knytt__q_only_exclusions(c);
}

static int same_key(const knytt__annmemo *m, const knytt__profile *u,
		    const qctx *c, uint64_t ixg, uint64_t ixw, size_t kk,
		    unsigned ef)
{
	return m->valid && m->ver == u->ver && m->snap_gen == c->snap->gen &&
	       m->ix_gen == ixg && m->ix_writes == ixw && m->kk == kk &&
	       m->ef == ef && m->excl_mask == c->excl_mask;
}

/* Keeps lab/dist[0..n) in @p m under the key; without memory nothing is
 * kept (the next search walks again). */
static void keep(knytt_engine *e, knytt__profile *u, knytt__annmemo *m,
		 const qctx *c, uint64_t ixg, uint64_t ixw, size_t kk,
		 unsigned ef, const uint64_t *lab, const float *dist, int n)
{
	m->valid = 0;
	if (m->cap < kk) {
		void *p = realloc(m->lab, kk * (sizeof *m->lab + sizeof *m->dist));
		if (!p)
			return;
		m->lab = p;
		m->cap = (uint32_t)kk;
		m->dist = (float *)(m->lab + kk);
		knytt__pcache_account(e, u);
	}
	memcpy(m->lab, lab, (size_t)n * sizeof *lab);
	memcpy(m->dist, dist, (size_t)n * sizeof *dist);
	m->n = (uint32_t)n;
	m->ver = u->ver;
	m->snap_gen = c->snap->gen;
	m->ix_gen = ixg;
	m->ix_writes = ixw;
	m->kk = (uint32_t)kk;
	m->ef = ef;
	m->excl_mask = c->excl_mask;
	m->valid = 1;
}

int knytt__q_ann_memo(knytt_engine *e, qctx *c, knytt__profile *u,
		      int which, const float *q, size_t kk, uint64_t *lab,
		      float *dist)
{
	if (!u || which < 0 || which > 1 || kk > UINT32_MAX || !keepable(c))
		return knytt__q_ann(e, c, q, kk, lab, dist);
	knytt__annmemo *m = &u->memo[which];
	unsigned ef = e->efs > kk ? e->efs : (unsigned)kk;
	uint64_t ixg, ixw = knytt__index_writes(c->snap->ix, &ixg);
	if (same_key(m, u, c, ixg, ixw, kk, ef)) {
		memcpy(lab, m->lab, m->n * sizeof *lab);
		memcpy(dist, m->dist, m->n * sizeof *dist);
		__atomic_add_fetch(&e->memo_hits, 1, __ATOMIC_RELAXED);
		return (int)m->n;
	}
	int got = knytt__q_ann(e, c, q, kk, lab, dist);
	__atomic_add_fetch(&e->memo_walks, 1, __ATOMIC_RELAXED);
	if (got >= 0)
		keep(e, u, m, c, ixg, ixw, kk, ef, lab, dist, got);
	else
		m->valid = 0;
	return got;
}
