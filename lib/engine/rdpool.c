/*
 * rdpool.c -- store connections for concurrent keyword searches.
 *
 * The engine's store handle is one connection, used under st_lock; a
 * keyword search spends most of its time in the store (the full-text
 * query and, for the exact-title check, up to three item reads), so two
 * threads searching at once took turns on st_lock and search did not
 * scale past one core.  A search now borrows a connection: the engine's
 * own if st_lock is free, else one of up to KNYTT__RD_MAX more, opened
 * on the first search that finds every connection busy (a single-thread
 * user never opens one) and kept until the engine closes.  When no more
 * can be opened (the limit, an in-memory store, a server that refuses),
 * the search waits for st_lock as before.
 *
 * A borrowed connection sees what is committed: items written through
 * the engine are committed before their call returns, so a search that
 * starts afterwards finds them whichever connection it uses.
 *
 * Only another search makes a search borrow.  When the engine's own
 * writers hold st_lock (the write-behind thread storing feedback and
 * search-log rows, an item upsert) the search waits for them, as before:
 * SQLite drops a connection's page cache whenever another connection has
 * written since its last read, so a borrowed connection starts cold after
 * each of those commits, and borrowing to skip a short commit made a
 * single searching thread 2-3x slower at p90 (measured with
 * benchmarks/engine/run --quick --only search: p90 345 -> 816 us).  The
 * engine's connection keeps its cache: it made the writes itself.
 *
 * Locks: a slot's mutex sits at st_lock's place in the lock order (a
 * thread holds at most one store connection; the keyword filter callback
 * may take lock for reading under it).  rd_mu only hands out a free slot
 * number and is never held across the open.
 */
#include "engine_int.h"
#include "../store/store_int.h"

#include <stdlib.h>
#include <time.h>

/* A slot past nrd_open is claimed under rd_mu, opened under its own
 * mutex.  Returns the store of the slot, or NULL (slot marked dead). */
static knytt_store *rd_open(knytt_engine *e, knytt__rdconn *c)
{
	knytt_store *st = NULL;
	int rc = knytt_store_open(e->uri, &st);
	if (!rc)
		rc = knytt_store_use_tenant(st, e->tenant_id);
	/* a reader's page cache: 1 MiB, not the store's 8.  It is emptied
	 * by every commit of another connection anyway (see above), and a
	 * full cache per extra connection only raised the server's resident
	 * memory.  No memory map either (unlike the engine's connection):
	 * SQLite unmaps it after every such commit, and in knyttd, which
	 * commits a search-log row per search, the unmapping and faulting
	 * back halved the searches a second (benchmarks/serve's search,
	 * interleaved runs: 1,918-1,930/s mapped, 3,649-3,949/s not) */
	if (!rc && st->ops->dialect == KNYTT__SQLITE)
		knytt__exec_keep(st, "PRAGMA cache_size = -1024");

	if (rc) {
		/* one warning per engine: the searches still get answers */
		knytt__engine_warn(e, "no extra store connection for search "
				      "(%s); searches share one",
				   knytt_errmsg());
		knytt_store_close(st);
		c->dead = 1;
		return NULL;
	}
	c->st = st;
	return st;
}

static knytt_store *take_any(knytt_engine *e, pthread_mutex_t **held)
{
	int got = pthread_mutex_trylock(&e->st_lock) == 0;
	if (!got && !__atomic_load_n(&e->st_search, __ATOMIC_RELAXED)) {
		/* held by a writer: wait for it rather than borrow (above) */
		pthread_mutex_lock(&e->st_lock);
		got = 1;
	}
	if (got) {
		__atomic_store_n(&e->st_search, 1, __ATOMIC_RELAXED);
		*held = &e->st_lock;
		return e->st;
	}
	pthread_mutex_lock(&e->rd_mu);
	unsigned n = e->nrd;
	pthread_mutex_unlock(&e->rd_mu);
	for (unsigned i = 0; i < n; i++) {
		knytt__rdconn *c = &e->rd[i];
		if (pthread_mutex_trylock(&c->mu))
			continue;
		if (c->st) {
			*held = &c->mu;
			return c->st;
		}
		pthread_mutex_unlock(&c->mu); /* dead, or a failed open */
	}
	/* every connection busy: open one more, if allowed */
	knytt__rdconn *c = NULL;
	pthread_mutex_lock(&e->rd_mu);
	if (!e->rd_off && e->nrd < KNYTT__RD_MAX) {
		c = &e->rd[e->nrd++];
		pthread_mutex_lock(&c->mu); /* fresh slot: nobody holds it */
	}
	pthread_mutex_unlock(&e->rd_mu);
	if (c) {
		knytt_store *st = rd_open(e, c);
		if (st) {
			*held = &c->mu;
			return st;
		}
		pthread_mutex_unlock(&c->mu);
		pthread_mutex_lock(&e->rd_mu);
		e->rd_off = 1; /* the store takes no more: stop trying */
		pthread_mutex_unlock(&e->rd_mu);
	}
	pthread_mutex_lock(&e->st_lock);
	__atomic_store_n(&e->st_search, 1, __ATOMIC_RELAXED);
	*held = &e->st_lock;
	return e->st;
}

/*
 * The connection this thread had last, per thread and for one engine.
 * Two threads searching at once would otherwise swap the engine's
 * connection and the extra one at random, and each search would begin
 * by pulling the other core's copy of the connection's page cache,
 * statements and token counts into its own cache: a thread that
 * borrowed keeps its extra connection while other searches run.  Once
 * it has met none for KEEP_MS it goes back to the engine's connection,
 * whose page cache the engine's own commits do not empty (above).  Only
 * a hint: the slot is checked as any other, and a stale engine pointer
 * after a close is only compared, never followed.
 */
#define KEEP_MS 1000
static __thread struct {
	const knytt_engine *e;
	unsigned slot;   /* 1 + index into rd[], or 0 for the engine's */
	int64_t seen_ms; /* when this thread last met another search */
} last;

static int64_t coarse_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

knytt_store *knytt__rd_take(knytt_engine *e, pthread_mutex_t **held)
{
	int64_t now = coarse_ms();
	if (__atomic_fetch_add(&e->rd_busy, 1, __ATOMIC_RELAXED))
		last.seen_ms = now;
	if (last.e == e && last.slot && now - last.seen_ms < KEEP_MS) {
		/* no rd_mu: a slot's store is set under its own mutex, so
		 * holding that mutex and seeing a store is enough */
		knytt__rdconn *c = &e->rd[last.slot - 1];
		if (!pthread_mutex_trylock(&c->mu)) {
			if (c->st) {
				*held = &c->mu;
				return c->st;
			}
			pthread_mutex_unlock(&c->mu);
		}
	}
	knytt_store *st = take_any(e, held);
	last.e = e;
	last.slot = 0;
	for (unsigned i = 0; i < KNYTT__RD_MAX; i++)
		if (*held == &e->rd[i].mu)
			last.slot = i + 1;
	if (last.slot)
		last.seen_ms = now; /* it borrowed: another search ran */
	return st;
}

void knytt__rd_give(knytt_engine *e, pthread_mutex_t *held)
{
	__atomic_fetch_sub(&e->rd_busy, 1, __ATOMIC_RELAXED);
	if (held == &e->st_lock)
		__atomic_store_n(&e->st_search, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(held);
}

unsigned knytt__rd_count(knytt_engine *e)
{
	pthread_mutex_lock(&e->rd_mu);
	unsigned n = 0;
	for (unsigned i = 0; i < e->nrd; i++)
		n += e->rd[i].st != NULL;
	pthread_mutex_unlock(&e->rd_mu);
	return n;
}

void knytt__rd_init(knytt_engine *e)
{
	pthread_mutex_init(&e->rd_mu, NULL);
	for (unsigned i = 0; i < KNYTT__RD_MAX; i++)
		pthread_mutex_init(&e->rd[i].mu, NULL);
}

/* At close, with no query running. */
void knytt__rd_free(knytt_engine *e)
{
	for (unsigned i = 0; i < KNYTT__RD_MAX; i++) {
		knytt_store_close(e->rd[i].st);
		e->rd[i].st = NULL;
		pthread_mutex_destroy(&e->rd[i].mu);
	}
	e->nrd = 0;
	pthread_mutex_destroy(&e->rd_mu);
}
