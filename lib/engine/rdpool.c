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

#include <stddef.h>
#include <stdlib.h>
#include <time.h>

/* the share of stale searches, see read_mode */
#define STALE_ONE (1u << 16)
#define STALE_MAP (STALE_ONE / 32)
#define STALE_UNMAP (STALE_ONE / 8)

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
	 * memory.  Not mapped until its searches show that commits are rare
	 * (read_mode below). */
	if (!rc)
		(void)knytt_store_set_cache_size(st, 1u << 20);

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
	c->stale = STALE_ONE; /* as if every search found it stale */
	c->mapped = 0;
	c->dv = knytt__store_data_version(st);
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

/*
 * How a borrowed connection reads: through a memory map or into its page
 * cache.  After another connection's commit, SQLite empties the page
 * cache, and a mapped connection also drops its map, so the next search
 * reads what it needs again: into the cache, a pread per page; mapped,
 * an munmap, an mmap and a page fault per 16 pages.  Which costs less
 * depends on how often that happens:
 *  - rarely (the write-behind writer groups search-log rows, so a few
 *    dozen commits a second against thousands of searches): mapped.
 *    Two threads searching (benchmarks/engine/run --quick --threads 2
 *    --only search, which prints the CPU per search at one and two
 *    threads; nine interleaved pairs of runs timing one thread count
 *    each), CPU per search on two threads over one: unmapped median
 *    1.17, mapped 1.03 (strace: the unmapped connection issued ~10
 *    preads per search, ~380 after each commit);
 *  - on most searches (knyttd commits a search-log row per search, for
 *    its id; a stream of feedback events commits each): not mapped.
 *    Mapped there, the unmapping and faulting back halved knyttd's
 *    searches a second (benchmarks/serve's search, interleaved runs:
 *    1,918-1,930/s mapped, 3,649-3,949/s not).
 * So each connection keeps a moving average (weight 1/32 per search) of
 * its searches that found the data version moved, starts as if all did,
 * maps once under 1 in 32 did and unmaps again over 1 in 8: some 110
 * quiet searches map a new connection, four or five stale ones in a row
 * unmap a quiet one, and a commit every few dozen searches leaves it
 * mapped.  A failed PRAGMA leaves the mode as it was (the search is
 * answered either way).
 */
static void read_mode(knytt__rdconn *c)
{
	/* knytt__store_set_mapped keeps the search's own message */
	uint32_t v = knytt__store_data_version(c->st);
	uint32_t hit = v != c->dv ? STALE_ONE : 0;
	c->dv = v;
	/* stale += (hit - stale) / 32, in unsigned arithmetic */
	c->stale = c->stale - c->stale / 32 + hit / 32;
	if (!c->mapped && c->stale < STALE_MAP) {
		if (!knytt__store_set_mapped(c->st, 1))
			c->mapped = 1;
	} else if (c->mapped && c->stale > STALE_UNMAP) {
		if (!knytt__store_set_mapped(c->st, 0))
			c->mapped = 0;
	}
}

int knytt__rd_mapped(knytt_engine *e, unsigned i)
{
	pthread_mutex_lock(&e->rd[i].mu);
	int m = e->rd[i].st ? e->rd[i].mapped : -1;
	pthread_mutex_unlock(&e->rd[i].mu);
	return m;
}

void knytt__rd_give(knytt_engine *e, pthread_mutex_t *held)
{
	__atomic_fetch_sub(&e->rd_busy, 1, __ATOMIC_RELAXED);
	if (held == &e->st_lock)
		__atomic_store_n(&e->st_search, 0, __ATOMIC_RELAXED);
	else /* a borrowed connection: held is its slot's mutex */
		read_mode((knytt__rdconn *)(void *)((char *)held -
						    offsetof(knytt__rdconn,
							     mu)));
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
