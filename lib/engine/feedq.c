/*
 * feedq.c -- the feedback write-behind queue (knytt_engine_set_feedback_async).
 *
 * Synchronous feedback spends most of its time, and nearly all of its
 * tail, in the store: a SQLite insert touches five B-trees (the row and
 * its indexes) and commits a WAL frame, 170-650 us at p99 on the 100k-item
 * benchmark shop, against some 30 us for everything the engine does in
 * memory.  With write-behind, knytt_engine_feedback validates the event
 * with the store's own rules, updates the item counters and the user's
 * taste in memory, appends the event to this queue and returns; one
 * writer thread per engine empties the queue into the store.
 *
 * What a caller can rely on:
 *  - every read the engine serves from memory (recommend, trending, the
 *    taste in search) sees an event as soon as feedback returns: the
 *    user's history lives in memory from the first event on, so nothing
 *    that needs it re-reads the store;
 *  - events reach the store in the order feedback accepted them;
 *  - knytt_engine_flush returns once every event accepted before the call
 *    is in the store (or failed), and reports the first failure; a failure
 *    not yet reported is also returned by the next feedback call, which
 *    then records nothing, so no error is ever dropped silently;
 *  - calls that read interactions back from the store, or hand the store
 *    handle out (sync, train, item_delete, knytt_engine_store), wait for
 *    the queue first, without consuming a pending failure.
 * The cost: an event acknowledged but not yet written is lost if the
 * process dies (the queue is normally empty within a commit or two).
 *
 * Search log entries ride the same queue when the caller of
 * knytt_engine_search does not ask for the entry's id.
 *
 * The writer takes the store mutex once per entry or group, so a query
 * that needs the store (a search, a first-time user) waits for at most
 * one insert or group; search-log rows are written LOG_GROUP at a time in
 * one transaction, and wait for company: a row alone at the tail of the
 * queue is written once LOG_GROUP rows are queued, an event of another
 * kind arrives behind it, a caller waits for the queue (flush, sync,
 * train, close), or LOG_DELAY_MS after the writer saw it (at most about
 * twice that for a row queued while a group is being written).  Every
 * search adds a row, and every commit changes the database file, so
 * each search connection's next read finds its page cache stale and
 * reads the item and full-text pages again; a commit per search (the
 * writer keeps up with one searching thread) cost each search some 80 us
 * of its 170 and took the scaling from one thread to two with it
 * (benchmarks/engine/run --quick --threads 2; the writer's own commit per
 * row cost another 35 us of CPU per search).  Grouped by time, a few
 * commits a second invalidate the caches a few times a second.  The cost:
 * a crash loses up to LOG_DELAY_MS of search-log rows as well as what the
 * queue held.  Feedback events never wait: they wake the writer at once.
 * Single events queued one behind the other (up to EV_GROUP) are written
 * in one transaction (write_run): in a SQLite store each commit
 * appends every page it changed to the WAL, and an event alone changed
 * the table's last page and a page of each of its indexes, some 12 KB of
 * WAL an event, which under steady traffic the checkpoints then had to
 * fsync while writers waited (sqlite.c).  Events that arrive while a
 * commit runs thus share the next.  A group that fails is written again
 * event by event, so one event the store refuses is the only one lost.
 * A batch of knytt_engine_feedback_batch is one entry, written in one
 * transaction (knytt_store_interactions_add): stored whole or, if the
 * store fails, not at all, its failure reported as any other.
 */
#include "engine_int.h"

#include "../store/store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FQ_MIN 64
#define LOG_GROUP KNYTT__LOG_GROUP
#define EV_GROUP KNYTT__WRITE_GROUP /* single events a transaction */
#define GROUP_MAX (LOG_GROUP > EV_GROUP ? LOG_GROUP : EV_GROUP)
#define LOG_DELAY_MS KNYTT__LOG_DELAY_MS
/* At most this many events wait; feedback blocks while the queue is full,
 * so a store slower than the event rate slows callers instead of growing
 * memory without bound. */
#define FQ_MAX 65536

/* The interaction a queued event stands for; strings borrowed from it. */
static void to_ix(const knytt__fq_ev *ev, knytt_interaction *ix)
{
	const char *user = ev->buf;
	const char *item = user + strlen(user) + 1;
	memset(ix, 0, sizeof *ix);
	ix->struct_size = sizeof *ix;
	ix->user = user;
	ix->item = item;
	ix->type = item + strlen(item) + 1;
	ix->weight = ev->weight;
	ix->has_value = ev->has_value;
	ix->value = ev->value;
	ix->ts_ms = ev->ts;
}

static void ev_free(knytt__fq_ev *ev)
{
	for (size_t i = 0; i < ev->nsub; i++)
		free(ev->sub[i].buf);
	free(ev->sub);
	free(ev->buf);
}

/* A search log entry: "query\0user\0shown\0". */
/* Inserts search-log entry @p ev (its buf: query, user, shown ids, each
 * NUL-terminated); caller holds st_lock. */
static int log_ins(knytt_engine *e, const knytt__fq_ev *ev)
{
	const char *query = ev->buf;
	const char *user = query + strlen(query) + 1;
	const char *shown = user + strlen(user) + 1;
	return knytt__search_log_ins(e->st, query, *user ? user : NULL,
				     ev->count, ev->ts, shown, NULL);
}

/* A run of search-log rows or single events from the queue, and the
 * first failure among them with its message. */
typedef struct run {
	knytt_engine *e;
	const knytt__fq_ev *ev;
	char *msg;
	size_t cap;
	int first;
} run;

/* Whether @p rc is the run's first failure (then kept: its message
 * next, by the caller). */
static int first_failure(run *r, int rc)
{
	if (rc >= 0 || r->first)
		return 0;
	r->first = rc;
	return 1;
}

/* knytt__st_op of a run of search-log rows. */
static int log_op(void *ctx, size_t i, int alone)
{
	run *r = ctx;
	int rc = log_ins(r->e, &r->ev[i]);
	if (alone && first_failure(r, rc))
		snprintf(r->msg, r->cap, "the search log entry of '%.64s' was "
			 "not stored: %s", r->ev[i].buf, knytt_errmsg());
	return rc;
}

/* knytt__st_op of a run of single events. */
static int event_op(void *ctx, size_t i, int alone)
{
	run *r = ctx;
	knytt_interaction ix;
	to_ix(&r->ev[i], &ix);
	if (!alone)
		return knytt__ix_add_txn(r->e->st, &ix);
	int rc = knytt_store_interaction_add(r->e->st, &ix);
	if (first_failure(r, rc))
		snprintf(r->msg, r->cap, "feedback of user '%.64s' on item "
			 "'%.64s' was not stored: %s", ix.user, ix.item,
			 knytt_errmsg());
	return rc;
}

/*
 * Search-log rows, or single events, ev[0..n) queued one behind the
 * other, in one transaction (knytt__st_together): each changes the same
 * last pages of the table and its indexes, written once for the run
 * instead of once a write.  If the run fails, write by write, so each
 * keeps its own outcome.  Returns the first failure; the transactions
 * taken into @p ntx.
 */
static int write_run(knytt_engine *e, const knytt__fq_ev *ev, size_t n,
		     char *msg, size_t cap, size_t *ntx)
{
	run r = {e, ev, msg, cap, 0};
	int shared = knytt__st_together(e, n, ev->is_log ? log_op : event_op,
					&r);
	*ntx = shared ? 1 : n;
	return r.first;
}

/* A batch entry: every event in one transaction, or none. */
static int write_batch(knytt_engine *e, const knytt__fq_ev *ev, char *msg,
		       size_t cap)
{
	knytt_interaction *ix = malloc(ev->nsub * sizeof *ix);
	const knytt_interaction **p = malloc(ev->nsub * sizeof *p);
	int rc;
	if (!ix || !p) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory");
	} else {
		for (size_t i = 0; i < ev->nsub; i++) {
			to_ix(&ev->sub[i], &ix[i]);
			p[i] = &ix[i];
		}
		pthread_mutex_lock(&e->st_lock);
		rc = knytt_store_interactions_add(e->st, p, ev->nsub);
		pthread_mutex_unlock(&e->st_lock);
	}
	if (rc < 0)
		snprintf(msg, cap,
			 "a feedback batch of %zu events (first: user "
			 "'%.64s') was not stored: %s",
			 ev->nsub, ev->sub[0].buf, knytt_errmsg());
	free(ix);
	free(p);
	return rc;
}

/* Caller holds fq_mu.  Is there an entry to write now?  Search-log rows
 * alone wait for company (see the top of the file). */
static int write_now(const knytt_engine *e)
{
	return e->fq_n > e->fq_nlog || e->fq_nlog >= LOG_GROUP ||
	       e->fq_stop || e->fq_hurry;
}

/* Caller holds fq_mu.  Waits on fq_wake until @p due (CLOCK_MONOTONIC),
 * set LOG_DELAY_MS ahead when @p armed is 0.  Returns 1 once due. */
static int wait_due(knytt_engine *e, struct timespec *due, int *armed)
{
	if (!*armed) {
		knytt__deadline(due, CLOCK_MONOTONIC, LOG_DELAY_MS);
		*armed = 1;
	}
	return pthread_cond_timedwait(&e->fq_wake, &e->fq_mu, due) ==
	       ETIMEDOUT;
}

/* Thread body: writes queued events, oldest first, until told to stop and
 * the queue is empty. */
static void *writer_main(void *arg)
{
	knytt_engine *e = arg;
	struct timespec due;
	int armed = 0;
	pthread_mutex_lock(&e->fq_mu);
	for (;;) {
		while (e->fq_n == 0 && !e->fq_stop)
			pthread_cond_wait(&e->fq_wake, &e->fq_mu);
		if (e->fq_n == 0)
			break;
		if (!write_now(e) && !wait_due(e, &due, &armed))
			continue; /* woken early: look again */
		armed = 0;
		/* the slots stay taken until written: pushes never reuse
		 * them (the ring may be re-laid out meanwhile, so entries are
		 * copied) */
		knytt__fq_ev ev = e->fq[e->fq_head];
		/* a run of search-log rows, or of single events, at the
		 * head: one group */
		knytt__fq_ev grp[GROUP_MAX];
		size_t ng = 0, ntx = 0;
		int kind = ev.is_log ? 1 : ev.nsub ? 2 : 0;
		size_t gmax = kind == 1 ? LOG_GROUP : kind == 0 ? EV_GROUP : 1;
		while (ng < gmax && ng < e->fq_n) {
			knytt__fq_ev *x = &e->fq[(e->fq_head + ng) % e->fq_cap];
			if (ng && (x->is_log != ev.is_log || x->nsub))
				break;
			grp[ng++] = *x;
		}
		pthread_mutex_unlock(&e->fq_mu);

		char msg[sizeof e->fq_msg];
		int rc = kind == 2 ? write_batch(e, &ev, msg, sizeof msg)
				   : write_run(e, grp, ng, msg, sizeof msg,
					       &ntx);
		size_t nev = kind == 2 ? ev.nsub : ng;
		for (size_t i = 0; i < ng; i++)
			ev_free(&grp[i]);

		pthread_mutex_lock(&e->fq_mu);
		e->fq_head = (e->fq_head + ng) % e->fq_cap;
		e->fq_n -= ng;
		if (kind == 1) {
			e->fq_nlog -= ng;
			e->fq_log_commits += ntx;
		} else if (kind == 0) {
			e->fq_ev_commits += ntx;
		}
		e->fq_written += nev;
		if (rc < 0 && !e->fq_err) {
			e->fq_err = rc;
			memcpy(e->fq_msg, msg, sizeof msg);
		}
		pthread_cond_broadcast(&e->fq_done);
	}
	pthread_mutex_unlock(&e->fq_mu);
	return NULL;
}

int knytt__fq_start(knytt_engine *e)
{
	e->fq = calloc(FQ_MIN, sizeof *e->fq);
	if (!e->fq)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	e->fq_cap = FQ_MIN;
	e->fq_stop = 0;
	e->fq_nlog = 0;
	e->fq_hurry = 0;
	if (pthread_create(&e->fq_thread, NULL, writer_main, e) != 0) {
		free(e->fq);
		e->fq = NULL;
		return knytt__err(KNYTT_ENOMEM,
				  "cannot start the feedback writer thread");
	}
	e->fq_running = 1;
	return KNYTT_OK;
}

void knytt__fq_stop(knytt_engine *e)
{
	if (!e->fq_running)
		return;
	pthread_mutex_lock(&e->fq_mu);
	e->fq_stop = 1;
	pthread_cond_signal(&e->fq_wake);
	pthread_mutex_unlock(&e->fq_mu);
	pthread_join(e->fq_thread, NULL); /* drains the queue first */
	e->fq_running = 0;
	free(e->fq);
	e->fq = NULL;
}

/* Caller holds fq_mu.  Grows the ring (re-laid out from slot 0) or, at
 * FQ_MAX, waits for the writer to make room. */
static int make_room(knytt_engine *e)
{
	while (e->fq_n == e->fq_cap) {
		if (e->fq_cap >= FQ_MAX) {
			pthread_cond_wait(&e->fq_done, &e->fq_mu);
			continue;
		}
		size_t nc = e->fq_cap * 2;
		knytt__fq_ev *q = malloc(nc * sizeof *q);
		if (!q)
			return knytt__err(KNYTT_ENOMEM, "out of memory");
		for (size_t i = 0; i < e->fq_n; i++)
			q[i] = e->fq[(e->fq_head + i) % e->fq_cap];
		free(e->fq);
		e->fq = q;
		e->fq_cap = nc;
		e->fq_head = 0;
	}
	return KNYTT_OK;
}

/* Caller holds fq_mu.  The first writer failure not reported yet, as the
 * calling thread's error, or 0. */
static int take_err(knytt_engine *e)
{
	int rc = e->fq_err;
	if (rc) {
		knytt__err(rc, "%s", e->fq_msg);
		e->fq_err = 0;
	}
	return rc;
}

int knytt__fq_check(knytt_engine *e, const knytt_interaction *ix)
{
	knytt__ixrow r; /* validation only: the store is not touched */
	int rc = knytt__ix_prepare(e->st, ix, &r, 0);
	if (rc < 0)
		return rc;
	pthread_mutex_lock(&e->fq_mu);
	rc = take_err(e);
	pthread_mutex_unlock(&e->fq_mu);
	return rc;
}

int knytt__fq_take_err(knytt_engine *e)
{
	pthread_mutex_lock(&e->fq_mu);
	int rc = take_err(e);
	pthread_mutex_unlock(&e->fq_mu);
	return rc;
}

/* Appends @p ev (its buffers then belong to the queue, or are freed);
 * a batch counts as its events in fq_pushed. */
static int push(knytt_engine *e, knytt__fq_ev ev)
{
	pthread_mutex_lock(&e->fq_mu);
	int rc = make_room(e);
	if (rc == KNYTT_OK) {
		e->fq[(e->fq_head + e->fq_n) % e->fq_cap] = ev;
		e->fq_n++;
		e->fq_pushed += ev.nsub ? ev.nsub : 1;
		e->fq_nlog += ev.is_log;
		/* a log row wakes the writer only to start its clock, or
		 * when it completes a group */
		if (!ev.is_log || e->fq_nlog == 1 || e->fq_nlog >= LOG_GROUP)
			pthread_cond_signal(&e->fq_wake);
	}
	pthread_mutex_unlock(&e->fq_mu);
	if (rc)
		ev_free(&ev);
	return rc;
}

/* @p ev filled from @p ix (its strings copied into one buffer). */
static int ev_make(const knytt_interaction *ix, knytt__fq_ev *ev)
{
	size_t lu = strlen(ix->user) + 1, li = strlen(ix->item) + 1,
	       lt = strlen(ix->type) + 1;
	memset(ev, 0, sizeof *ev);
	ev->weight = ix->weight;
	ev->value = ix->value;
	ev->has_value = ix->has_value;
	ev->ts = ix->ts_ms;
	if (!(ev->buf = malloc(lu + li + lt)))
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	memcpy(ev->buf, ix->user, lu);
	memcpy(ev->buf + lu, ix->item, li);
	memcpy(ev->buf + lu + li, ix->type, lt);
	return KNYTT_OK;
}

int knytt__fq_push(knytt_engine *e, const knytt_interaction *ix)
{
	knytt__fq_ev ev;
	int rc = ev_make(ix, &ev);
	return rc ? rc : push(e, ev);
}

int knytt__fq_push_batch(knytt_engine *e, const knytt_interaction *const *ix,
			 size_t n)
{
	knytt__fq_ev ev = { .nsub = 0 };
	if (!(ev.sub = calloc(n, sizeof *ev.sub)))
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	for (; ev.nsub < n; ev.nsub++)
		if (ev_make(ix[ev.nsub], &ev.sub[ev.nsub])) {
			ev_free(&ev);
			return knytt__err(KNYTT_ENOMEM, "out of memory");
		}
	return push(e, ev);
}

int knytt__fq_push_log(knytt_engine *e, const char *query, const char *user,
		       int count, const char *shown, int64_t ts)
{
	if (!user)
		user = "";
	if (!shown)
		shown = "";
	size_t lq = strlen(query) + 1, lu = strlen(user) + 1;
	size_t ls = strlen(shown) + 1;
	knytt__fq_ev ev = { .is_log = 1, .count = count, .ts = ts };
	if (!(ev.buf = malloc(lq + lu + ls)))
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	memcpy(ev.buf, query, lq);
	memcpy(ev.buf + lq, user, lu);
	memcpy(ev.buf + lq + lu, shown, ls);
	return push(e, ev);
}

/* Caller holds fq_mu.  Waits until every event queued so far is
 * retired. */
static void wait_retired(knytt_engine *e)
{
	uint64_t target = e->fq_pushed;
	/* search-log rows waiting for company go now */
	e->fq_hurry++;
	pthread_cond_signal(&e->fq_wake);
	while (e->fq_written < target)
		pthread_cond_wait(&e->fq_done, &e->fq_mu);
	e->fq_hurry--;
}

void knytt__fq_wait(knytt_engine *e)
{
	if (!e->fq_running)
		return;
	pthread_mutex_lock(&e->fq_mu);
	wait_retired(e);
	pthread_mutex_unlock(&e->fq_mu);
}

int knytt_engine_flush(knytt_engine *e)
{
	if (!e)
		return knytt__err(KNYTT_EINVAL, "knytt_engine_flush: engine is "
						"NULL");
	if (!e->is_open)
		return knytt__err(KNYTT_ESTATE,
				  "knytt_engine_flush: engine is not open");
	if (!e->fq_running)
		return KNYTT_OK; /* synchronous feedback: nothing waits */
	pthread_mutex_lock(&e->fq_mu);
	wait_retired(e);
	int rc = take_err(e);
	pthread_mutex_unlock(&e->fq_mu);
	return rc;
}

int64_t knytt_engine_feedback_pending(knytt_engine *e)
{
	if (!e)
		return knytt__err(KNYTT_EINVAL, "engine is NULL");
	pthread_mutex_lock(&e->fq_mu);
	int64_t n = (int64_t)(e->fq_pushed - e->fq_written);
	pthread_mutex_unlock(&e->fq_mu);
	return n;
}

uint64_t knytt__fq_pushed(knytt_engine *e)
{
	pthread_mutex_lock(&e->fq_mu);
	uint64_t n = e->fq_pushed;
	pthread_mutex_unlock(&e->fq_mu);
	return n;
}

uint64_t knytt__fq_written(knytt_engine *e)
{
	pthread_mutex_lock(&e->fq_mu);
	uint64_t n = e->fq_written;
	pthread_mutex_unlock(&e->fq_mu);
	return n;
}
