/*
 * catchup.c -- trending counts a replica missed (knytt_engine_refresh_
 * trending): the events other processes stored while this one was not
 * told of them, counted once.
 *
 * A replica on a shared PostgreSQL database counts each event of another
 * process when the notification of it arrives (knytt_engine_feedback_
 * apply).  When its listening connection drops, the notifications sent
 * meanwhile are lost; the events are in the store.  The caller knows up
 * to which interaction mark its notifications covered everything
 * (knytt_store_interaction_mark), so the events stored after it are
 * streamed (knytt_store_interactions_after) and counted, except:
 *  - events stored before this engine opened: the open seeded the
 *    counters from the store (open_mark);
 *  - events of shoppers this engine has loaded: knytt_engine_refresh_
 *    users compares their profiles with the store and counts what they
 *    lack, so it is the one to count those (called after this one, it
 *    also catches a shopper loaded while this runs, whose events this
 *    one counted: a profile loaded from the store holds them already;
 *    one evicted between the two calls (profcache.c) is counted by
 *    neither -- trending is a decayed estimate, and the window is the
 *    gap between two calls the caller makes back to back);
 *  - events the caller says it counted already (its own writes, and
 *    notifications it applied after the mark): the skip callback.
 * Popularity is left alone: knytt_engine_sync re-reads it whole.
 *
 * The stream has a connection of its own, so request threads keep the
 * engine's store handle, and counting takes the engine's read lock per
 * event, never across a store round trip.
 */
#include "engine_int.h"

typedef struct tcatch {
	knytt_engine *e;
	knytt_interaction_fn skip;
	void *ctx;
	int64_t now, last;
	int applied;
} tcatch;

static int count_cb(const knytt_interaction *ix, void *p)
{
	tcatch *c = p;
	knytt_engine *e = c->e;
	if ((int64_t)ix->id > c->last)
		c->last = (int64_t)ix->id;
	if ((int64_t)ix->id <= e->open_mark ||
	    ix->ts_ms > c->now + e->future_tol_ms || /* replaying the past */
	    knytt__engine_user_loaded(e, ix->user) ||
	    (c->skip && c->skip(ix, c->ctx)))
		return 0;
	pthread_rwlock_rdlock(&e->lock);
	uint32_t r = knytt__engine_row(e, ix->item_id);
	if (r != UINT32_MAX) {
		knytt__engine_trend_event(e, r, knytt__ix_confidence(e, ix),
					  ix->ts_ms);
		c->applied++;
	}
	pthread_rwlock_unlock(&e->lock);
	return 0;
}

int knytt_engine_refresh_trending(knytt_engine *e, int64_t after_mark,
				  knytt_interaction_fn skip, void *ctx,
				  int64_t *last_mark)
{
	if (!e)
		return knytt__err(KNYTT_EINVAL, "knytt_engine_refresh_trending: "
						"engine is NULL");
	if (!e->is_open)
		return knytt__err(KNYTT_ESTATE, "knytt_engine_refresh_trending: "
						"engine is not open");
	if (after_mark < 0)
		return knytt__err(KNYTT_EINVAL, "after_mark is negative");
	tcatch c = {e, skip, ctx, knytt__engine_now(e), after_mark, 0};
	knytt_store *st = NULL;
	uint64_t tenant = 0;
	int rc = knytt_store_open(e->uri, &st);
	if (!rc)
		rc = knytt_store_tenant_find(st, e->tenant_name, &tenant);
	if (!rc)
		rc = knytt_store_use_tenant(st, tenant);
	if (!rc) {
		int64_t from = after_mark > e->open_mark ? after_mark
							 : e->open_mark;
		rc = knytt_store_interactions_after(st, from, count_cb, &c);
	}
	knytt_store_close(st);
	if (last_mark)
		*last_mark = c.last;
	return rc < 0 ? rc : c.applied;
}
