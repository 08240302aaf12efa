/*
 * stgroup.c -- group commit: the synchronous store writes of concurrent
 * callers (feedback events, search-log rows whose id the caller wants)
 * share one transaction.
 *
 * Each such write used to be a transaction of its own, taken in turn
 * under st_lock.  A SQLite commit appends every page the insert changed
 * to the WAL: an event changes the table's last page and a page of each
 * of its four indexes, a search-log row three pages, 9.6-13 KB of WAL a
 * write (knyttd's bytes written per request, /proc/PID/io, under wrk on
 * loopback).  A server that takes thousands of events a second thus
 * writes over 100 MB/s of WAL, and the background checkpoints that keep
 * the WAL bounded (sqlite.c) spend their time in fdatasync of it while
 * writers wait.  Written together, the writes that arrived while the
 * previous commit ran change the table's last page and the indexes'
 * append pages once for all of them.
 *
 * How: a caller queues its write and waits.  Whoever finds no group
 * being written leads: it takes what is queued, in order (at most
 * KNYTT__WRITE_GROUP writes; a leader whose own write was left for the
 * next group leads that one too), writes it through knytt__st_together
 * (one write alone as before, several in one transaction), hands each
 * waiter its outcome and wakes them.  Writes that arrive meanwhile
 * queue for the next group, whose first waiter leads it.  A caller alone
 * never waits for company: a group is whatever queued while the store
 * was busy.
 *
 * Outcomes are each caller's own: a group that fails as a whole (any of
 * its writes, or the commit) is rolled back and every write is then
 * tried alone, so an event refused by the store fails its caller only,
 * and a store that fails (a full disk) fails every caller with its own
 * message, none of them stored.  Every caller returns only once its
 * write is committed or refused: an acknowledged event is in the store,
 * as before.
 */
#include "engine_int.h"

#include "../store/store_int.h"

#include <stdio.h>

int knytt__st_together(knytt_engine *e, size_t n, knytt__st_op op,
			void *ctx)
{
	int shared = 0;
	pthread_mutex_lock(&e->st_lock);
	if (n > 1 && knytt__st_begin(e->st) == 0) {
		int rc = 0;
		for (size_t i = 0; i < n && rc >= 0; i++)
			rc = op(ctx, i, 0);
		if (rc < 0)
			knytt__st_rollback(e->st);
		else /* a commit that fails rolls back itself */
			shared = knytt__st_commit(e->st) == 0;
	}
	if (!shared)
		for (size_t i = 0; i < n; i++)
			op(ctx, i, 1);
	pthread_mutex_unlock(&e->st_lock);
	return shared;
}

typedef struct group {
	knytt_engine *e;
	knytt__stw **w;
} group;

/* knytt__st_op of a group: write i in the transaction, or alone with its
 * outcome kept for its caller. */
static int group_op(void *ctx, size_t i, int alone)
{
	group *g = ctx;
	knytt__stw *w = g->w[i];
	knytt_store *st = g->e->st;
	int rc = !w->ev ? knytt__search_log_ins(st, w->query, w->user,
						w->count, 0, w->shown,
						&w->log_id)
		 : alone ? knytt_store_interaction_add(st, w->ev)
			 : knytt__ix_add_txn(st, w->ev);
	w->rc = rc;
	if (rc < 0 && alone) {
		snprintf(w->msg, sizeof w->msg, "%s", knytt_errmsg());
		snprintf(w->field, sizeof w->field, "%s", knytt_errfield());
	}
	return rc;
}

/* Queues @p w, waits for its group's commit; its outcome, or its error
 * with its own message and field. */
static int stw_run(knytt_engine *e, knytt__stw *w)
{
	pthread_mutex_lock(&e->gw_mu);
	*e->gw_tail = w;
	e->gw_tail = &w->next;
	while (!w->done) {
		if (e->gw_busy) {
			pthread_cond_wait(&e->gw_cv, &e->gw_mu);
			continue;
		}
		/* lead: everything queued, at most KNYTT__WRITE_GROUP */
		knytt__stw *g[KNYTT__WRITE_GROUP];
		size_t n = 0;
		while (e->gw_head && n < KNYTT__WRITE_GROUP) {
			g[n++] = e->gw_head;
			e->gw_head = e->gw_head->next;
		}
		if (!e->gw_head)
			e->gw_tail = &e->gw_head;
		e->gw_busy = 1;
		pthread_mutex_unlock(&e->gw_mu);
		int shared = knytt__st_together(e, n, group_op,
						&(group){e, g});
		pthread_mutex_lock(&e->gw_mu);
		if (shared)
			e->gw_shared += n;
		for (size_t i = 0; i < n; i++)
			g[i]->done = 1;
		e->gw_busy = 0;
		pthread_cond_broadcast(&e->gw_cv);
	}
	pthread_mutex_unlock(&e->gw_mu);
	/* the error, its message and its field, in the caller's thread */
	if (w->rc < 0 && w->field[0])
		return knytt__err_field(w->rc, w->field, "%s", w->msg);
	if (w->rc < 0)
		return knytt__err(w->rc, "%s", w->msg);
	return w->rc;
}

int knytt__stw_event(knytt_engine *e, const knytt_interaction *ev)
{
	knytt__stw w = {.ev = ev};
	return stw_run(e, &w);
}

int knytt__stw_log(knytt_engine *e, const char *query, const char *user,
		   int count, const char *shown, uint64_t *log_id)
{
	knytt__stw w = {.query = query, .user = user, .shown = shown,
			.count = count};
	int rc = stw_run(e, &w);
	if (rc >= 0 && log_id)
		*log_id = w.log_id;
	return rc;
}
