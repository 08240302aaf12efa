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
 * KNYTT__STW_MAX writes; a leader whose own write was left for the next
 * group leads that one too), writes it under st_lock, one write alone as before or several
 * in one transaction, hands each waiter its outcome and wakes them.
 * Writes that arrive meanwhile queue for the next group, whose first
 * waiter leads it.  A caller alone never waits for company: a group is
 * whatever queued while the store was busy.
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
#include <string.h>

/* Runs write @p w inside the leader's transaction (@p alone: as its own
 * transaction); caller holds st_lock. */
static int run_one(knytt_engine *e, knytt__stw *w, int alone)
{
	if (w->ev)
		return alone ? knytt_store_interaction_add(e->st, w->ev)
			     : knytt__ix_add_txn(e->st, w->ev);
	return knytt__search_log_ins(e->st, w->query, w->user, w->count, 0,
				     w->shown, &w->log_id);
}

static void keep_outcome(knytt__stw *w, int rc)
{
	w->rc = rc;
	if (rc < 0) {
		snprintf(w->msg, sizeof w->msg, "%s", knytt_errmsg());
		snprintf(w->field, sizeof w->field, "%s", knytt_errfield());
	}
}

/* Writes group g[0..n) under st_lock. */
static void write_group(knytt_engine *e, knytt__stw **g, size_t n)
{
	pthread_mutex_lock(&e->st_lock);
	int rc = -1;
	if (n > 1 && knytt__st_begin(e->st) == 0) {
		rc = 0;
		for (size_t i = 0; i < n && rc >= 0; i++) {
			int r = run_one(e, g[i], 0);
			g[i]->rc = r;
			if (r < 0)
				rc = r;
		}
		if (rc >= 0)
			rc = knytt__st_commit(e->st); /* rolls back itself */
		else
			knytt__st_rollback(e->st);
	}
	if (rc < 0) /* one write, or a group that failed: each alone */
		for (size_t i = 0; i < n; i++)
			keep_outcome(g[i], run_one(e, g[i], 1));
	pthread_mutex_unlock(&e->st_lock);
	pthread_mutex_lock(&e->gw_mu);
	e->gw_groups++;
	e->gw_writes += n;
	if (n > 1 && rc >= 0)
		e->gw_shared += n;
	pthread_mutex_unlock(&e->gw_mu);
}

int knytt__stw_run(knytt_engine *e, knytt__stw *w)
{
	w->done = 0;
	w->next = NULL;
	w->rc = 0;
	w->msg[0] = w->field[0] = 0;
	pthread_mutex_lock(&e->gw_mu);
	*e->gw_tail = w;
	e->gw_tail = &w->next;
	e->gw_queued++;
	while (!w->done) {
		if (e->gw_busy) {
			pthread_cond_wait(&e->gw_cv, &e->gw_mu);
			continue;
		}
		/* lead: everything queued, at most KNYTT__STW_MAX of it */
		knytt__stw *g[KNYTT__STW_MAX];
		size_t n = 0;
		while (e->gw_head && n < KNYTT__STW_MAX) {
			g[n++] = e->gw_head;
			e->gw_head = e->gw_head->next;
		}
		if (!e->gw_head)
			e->gw_tail = &e->gw_head;
		e->gw_queued -= n;
		e->gw_busy = 1;
		pthread_mutex_unlock(&e->gw_mu);
		write_group(e, g, n);
		pthread_mutex_lock(&e->gw_mu);
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
	knytt__stw w;
	memset(&w, 0, sizeof w);
	w.ev = ev;
	return knytt__stw_run(e, &w);
}

int knytt__stw_log(knytt_engine *e, const char *query, const char *user,
		   int count, const char *shown, uint64_t *log_id)
{
	knytt__stw w;
	memset(&w, 0, sizeof w);
	w.query = query;
	w.user = user;
	w.count = count;
	w.shown = shown;
	int rc = knytt__stw_run(e, &w);
	if (rc >= 0 && log_id)
		*log_id = w.log_id;
	return rc;
}
