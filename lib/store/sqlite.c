/*
 * sqlite.c -- the SQLite backend: a thin layer over sqlite3_stmt.
 *
 * The database runs in WAL mode (readers never block the one writer, and
 * a crash loses at most the transaction in flight) with synchronous =
 * NORMAL (WAL makes that crash-safe; only the last commits before a power
 * loss may be lost, never consistency).
 *
 * Writers wait for each other in sq_busy rather than in SQLite's own busy
 * timeout: that one sleeps up to 100 ms between tries, so a process that
 * commits and begins again at once (an import, batch after batch) kept
 * the lock nearly all the time, and a waiting writer saw "database is
 * locked" after 5 s although the lock had been free many times (issue
 * 12: three imports and feedback loops on one file).  sq_busy tries every
 * millisecond, for busy_ms in all (KNYTT_STORE_BUSY_MS by default), and
 * a lock still held then is KNYTT_EBUSY, never KNYTT_EDB.
 */
#include "sqfts.h"
#include "store_int.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <time.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

typedef struct sq_db {
	knytt__db base;
	sqlite3 *h;
	knytt__sqfts *fts; /* NULL: FTS5 function not registered */
	int bulk_fd;       /* the bulk lock file, -1 = not held */
	struct sq_ckpt *ck; /* background checkpoints, or NULL */
	sqlite3_stmt *ix_multi; /* IX_MULTI interactions per INSERT */
	int busy_ms;            /* how long sq_busy waits for a lock, ms */
	int64_t busy_since;     /* when the current wait began, ms */
} sq_db;

/* A thread that checkpoints the WAL from a connection of its own. */
typedef struct sq_ckpt {
	sqlite3 *h;
	pthread_t t;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
	/* 1 while a TRUNCATE checkpoint wants the write lock: this handle's
	 * transactions wait for it to end (knytt__sqlite_ckpt_gate) */
	int want; /* __atomic_* */
	pthread_cond_t gate;
	/* the commit hook's call (wal_nudge): armed while the WAL is under
	 * the bound (__atomic_*), one nudge per crossing (under mu) */
	int armed, nudged;
} sq_ckpt;

struct knytt__stmt {
	sqlite3_stmt *s;
	sq_db *db;
	int64_t changes;
};

static int sq_err(sq_db *d, const char *what)
{
	return knytt__err(KNYTT_EDB, "sqlite: %s: %s", what,
			  sqlite3_errmsg(d->h));
}

/* A lock held by another connection past the wait is KNYTT_EBUSY. */
static int sq_code(int rc)
{
	rc &= 0xFF;
	return rc == SQLITE_BUSY || rc == SQLITE_LOCKED ? KNYTT_EBUSY
							: KNYTT_EDB;
}

static int64_t mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* SQLite's busy handler: @p n is 0 on the first call of a wait. */
static int sq_busy(void *arg, int n)
{
	sq_db *d = arg;
	int64_t now = mono_ms();
	if (n == 0)
		d->busy_since = now;
	if (now - d->busy_since >= d->busy_ms)
		return 0;
	struct timespec ts = {0, 1000 * 1000};
	nanosleep(&ts, NULL);
	return 1;
}

static int sq_set_busy(knytt__db *db, int ms)
{
	((sq_db *)db)->busy_ms = ms;
	return 0;
}

static int sq_exec(knytt__db *db, const char *sql)
{
	sq_db *d = (sq_db *)db;
	char *msg = NULL;
	int src = sqlite3_exec(d->h, sql, NULL, NULL, &msg);
	if (src != SQLITE_OK) {
		int rc = knytt__err(sq_code(src), "sqlite: %s",
				    msg ? msg : sqlite3_errmsg(d->h));
		sqlite3_free(msg);
		return rc;
	}
	return 0;
}

static int sq_prepare(knytt__db *db, const char *sql, knytt__stmt **out)
{
	sq_db *d = (sq_db *)db;
	knytt__stmt *s = calloc(1, sizeof *s);
	if (!s)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	int src = sqlite3_prepare_v3(d->h, sql, -1, SQLITE_PREPARE_PERSISTENT,
				     &s->s, NULL);
	if (src != SQLITE_OK) {
		free(s);
		return knytt__err(sq_code(src), "sqlite: prepare: %s",
				  sqlite3_errmsg(d->h));
	}
	s->db = d;
	*out = s;
	return 0;
}

static void sq_finalize(knytt__stmt *s)
{
	if (!s)
		return;
	sqlite3_finalize(s->s);
	free(s);
}

static int sq_bind_rc(knytt__stmt *s, int rc)
{
	return rc == SQLITE_OK ? 0 : sq_err(s->db, "bind");
}
static int sq_bind_null(knytt__stmt *s, int i)
{
	return sq_bind_rc(s, sqlite3_bind_null(s->s, i));
}
static int sq_bind_i64(knytt__stmt *s, int i, int64_t v)
{
	return sq_bind_rc(s, sqlite3_bind_int64(s->s, i, v));
}
static int sq_bind_f64(knytt__stmt *s, int i, double v)
{
	return sq_bind_rc(s, sqlite3_bind_double(s->s, i, v));
}
static int sq_bind_text(knytt__stmt *s, int i, const char *v)
{
	if (!v)
		return sq_bind_null(s, i);
	return sq_bind_rc(s, sqlite3_bind_text(s->s, i, v, -1,
					       SQLITE_TRANSIENT));
}
static int sq_bind_blob(knytt__stmt *s, int i, const void *v, size_t n)
{
	return sq_bind_rc(s, sqlite3_bind_blob64(s->s, i, n ? v : "", n,
						 SQLITE_TRANSIENT));
}

/* The error of a failed SQLite call (@p what) returning @p rc, as a
 * knytt code. */
static int sq_step_err(sq_db *d, int rc, const char *what)
{
	int ext = sqlite3_extended_errcode(d->h);
	if (ext == SQLITE_CONSTRAINT_UNIQUE ||
	    ext == SQLITE_CONSTRAINT_PRIMARYKEY)
		return knytt__err(KNYTT_EEXIST, "sqlite: %s",
				  sqlite3_errmsg(d->h));
	if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
		return knytt__err(KNYTT_EBUSY, "sqlite: %s",
				  sqlite3_errmsg(d->h));
	return sq_err(d, what);
}

static int sq_step(knytt__stmt *s)
{
	int rc = sqlite3_step(s->s);
	if (rc == SQLITE_ROW)
		return 1;
	if (rc == SQLITE_DONE) {
		s->changes = sqlite3_changes64(s->db->h);
		return 0;
	}
	return sq_step_err(s->db, rc, "step");
}

static void sq_reset(knytt__stmt *s)
{
	sqlite3_reset(s->s);
	sqlite3_clear_bindings(s->s);
}

static int sq_col_null(knytt__stmt *s, int c)
{
	return sqlite3_column_type(s->s, c) == SQLITE_NULL;
}
static int64_t sq_col_i64(knytt__stmt *s, int c)
{
	return sqlite3_column_int64(s->s, c);
}
static double sq_col_f64(knytt__stmt *s, int c)
{
	return sqlite3_column_double(s->s, c);
}
static const char *sq_col_text(knytt__stmt *s, int c)
{
	return (const char *)sqlite3_column_text(s->s, c);
}
static const void *sq_col_blob(knytt__stmt *s, int c, size_t *n)
{
	const void *p = sqlite3_column_blob(s->s, c);
	*n = (size_t)sqlite3_column_bytes(s->s, c);
	return p;
}
static int64_t sq_changes(knytt__stmt *s)
{
	return s->changes;
}

/* Interactions go in IX_MULTI rows per INSERT statement: one statement
 * start, one reset and one pass of SQLite's VM setup for 64 rows.  The
 * insert part of a 2M-row bulk import (knytt import of the store
 * benchmark's file, indexes dropped) went from 3.7-5.3 s to 2.2-2.8 s.
 * The tail of a batch goes through the one-row statement. */
#define IX_MULTI 64
#define IX_COLS 8

static void bind_ix(sqlite3_stmt *s, int at, uint64_t tenant,
		    const knytt__ixrow *r)
{
	sqlite3_bind_int64(s, at + 1, (int64_t)tenant);
	sqlite3_bind_int64(s, at + 2, (int64_t)r->user_id);
	sqlite3_bind_int64(s, at + 3, (int64_t)r->item_id);
	sqlite3_bind_text(s, at + 4, r->type, -1, SQLITE_STATIC);
	sqlite3_bind_double(s, at + 5, r->weight);
	if (r->has_value)
		sqlite3_bind_double(s, at + 6, r->value);
	else
		sqlite3_bind_null(s, at + 6);
	sqlite3_bind_int64(s, at + 7, r->ts);
	if (r->event_id[0])
		sqlite3_bind_text(s, at + 8, r->event_id, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(s, at + 8);
}

static int prepare_ix_multi(sq_db *d)
{
	if (d->ix_multi)
		return 0;
	char sql[IX_MULTI * 20 + 160], *p = sql;
	p += sprintf(p, "INSERT INTO interactions(tenant, user_id, item_id, "
			"type, weight, value, ts, event_id) VALUES ");
	for (int i = 0; i < IX_MULTI; i++)
		p += sprintf(p, "%s(?,?,?,?,?,?,?,?)", i ? "," : "");
	sprintf(p, " ON CONFLICT DO NOTHING");
	if (sqlite3_prepare_v3(d->h, sql, -1, SQLITE_PREPARE_PERSISTENT,
			       &d->ix_multi, NULL) != SQLITE_OK)
		return sq_err(d, "prepare");
	return 0;
}

static int sq_insert_ix(knytt__db *db, uint64_t tenant,
			const knytt__ixrow *rows, size_t n)
{
	sq_db *d = (sq_db *)db;
	int stored = 0;
	size_t i = 0;
	if (n >= IX_MULTI) {
		int rc = prepare_ix_multi(d);
		if (rc)
			return rc;
		sqlite3_stmt *s = d->ix_multi;
		for (; i + IX_MULTI <= n; i += IX_MULTI) {
			for (int j = 0; j < IX_MULTI; j++)
				bind_ix(s, j * IX_COLS, tenant, &rows[i + j]);
			if ((rc = sqlite3_step(s)) != SQLITE_DONE) {
				rc = sq_step_err(d, rc, "step");
				sqlite3_reset(s);
				sqlite3_clear_bindings(s);
				return rc;
			}
			stored += sqlite3_changes(d->h);
			sqlite3_reset(s);
		}
		sqlite3_clear_bindings(s);
	}
	if (i == n)
		return stored;
	knytt__stmt *q = knytt__st_q(db->st, Q_IX_INS);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	for (; i < n; i++) {
		bind_ix(q->s, 0, tenant, &rows[i]);
		int rc = sq_step(q);
		sqlite3_reset(q->s);
		if (rc < 0)
			return rc;
		stored += (int)q->changes;
	}
	sqlite3_clear_bindings(q->s);
	return stored;
}

static int sq_search(knytt__db *db, uint64_t tenant, const knytt__search *s,
		     uint64_t *ids, double *scores, size_t cap)
{
	sq_db *d = (sq_db *)db;
	if (!d->fts)
		return KNYTT_ENOTSUP;
	int n = knytt__sqfts_search(d->fts, tenant, s, ids, scores, cap);
	return n >= 0 ? n : sq_step_err(d, -n, "search");
}

void knytt__sqlite_search_stats(knytt__db *db, long long *scored,
				long long *read)
{
	sq_db *d = (sq_db *)db;
	*scored = *read = -1;
	if (d->fts)
		knytt__sqfts_stats(d->fts, scored, read);
}

int64_t knytt__sqlite_cache_used(knytt__db *db)
{
	int cur = 0, high = 0;
	sqlite3_db_status(((sq_db *)db)->h, SQLITE_DBSTATUS_CACHE_USED, &cur,
			  &high, 0);
	return cur;
}

int64_t knytt__sqlite_last_rowid(knytt__db *db)
{
	return sqlite3_last_insert_rowid(((sq_db *)db)->h);
}

uint32_t knytt__sqlite_data_version(knytt__db *db)
{
	/* the pager's counter; a file control that cannot fail on "main" */
	unsigned v = 0;
	sqlite3_file_control(((sq_db *)db)->h, "main",
			     SQLITE_FCNTL_DATA_VERSION, &v);
	return v;
}

int knytt__sqlite_shareable(knytt__db *db)
{
	const char *f = sqlite3_db_filename(((sq_db *)db)->h, "main");
	return f && *f;
}

/* The bulk lock is an flock on DB-knytt-bulk beside the database (the
 * database file's own locks belong to SQLite: another descriptor on it
 * would drop them when closed).  The file is left in place: removing a
 * lock file races with the next locker.  An in-memory database has one
 * connection, which always gets the lock. */
static int sq_bulk_lock(knytt__db *db, int take)
{
	sq_db *d = (sq_db *)db;
	if (!take) {
		if (d->bulk_fd >= 0) {
			flock(d->bulk_fd, LOCK_UN);
			close(d->bulk_fd);
			d->bulk_fd = -1;
		}
		return 0;
	}
	const char *f = sqlite3_db_filename(d->h, "main");
	if (!f || !*f)
		return 1;
	if (d->bulk_fd >= 0)
		return 1;
	char path[4200];
	if (snprintf(path, sizeof path, "%s-knytt-bulk", f) >=
	    (int)sizeof path)
		return knytt__err(KNYTT_EINVAL, "database path is too long");
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return knytt__err_errno(KNYTT_EIO, errno, "cannot open '%s'",
					path);
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return 0;
		return knytt__err_errno(KNYTT_EIO, e, "cannot lock '%s'",
					path);
	}
	d->bulk_fd = fd;
	return 1;
}

/*
 * Every 100 ms, a PASSIVE checkpoint: it copies what no reader still
 * needs back into the database and never waits for, nor blocks, the
 * writer or the readers.
 *
 * That alone let the WAL grow without end under knyttd's traffic.  A
 * WAL starts over from its beginning only when a writer finds every
 * frame copied back and no reader on a snapshot that includes frames,
 * and with feedback committed all the time and searches overlapping,
 * some reader nearly always was: in a 10-minute soak of a fresh shop
 * (benchmarks/soak --minutes 10 --profile-cache 16, 2 CPUs) the WAL
 * reached 20 GB, its shared-memory index 39 MB (mapped, in knyttd's
 * RssFile), and each checkpoint, 10 a second, allocated and sorted an
 * index of every frame in the WAL: 9.75 MB a time by 290 s (caught in
 * gdb on mmap; ~2 bytes a frame, following the data all run; earlier
 * soaks saw it as the allocator's "live" bytes stepping by 8-10 MiB).
 * So once the WAL holds knytt__sqlite_wal_frames_max frames, a TRUNCATE
 * checkpoint follows: it blocks new writers while it waits, at most
 * CKPT_TRUNCATE_WAIT_MS, for the readers of older snapshots to finish
 * (new readers go on, from the database file once every frame is copied
 * back), then empties the WAL; on a timeout the next tick tries again.
 *
 * A writer that commits back to back (the write-behind writer with a
 * queue of events, knyttd under steady feedback) took the write lock
 * again within microseconds of each commit, and the TRUNCATE, whose
 * busy handler looks every few milliseconds, got it half the time: the
 * WAL grew to 275 MB in a 10 s burst of feedback.  So the checkpoint
 * says when it wants the lock, and this handle's next transaction waits
 * for it at the door (knytt__sqlite_ckpt_gate, at most CKPT_GATE_MS),
 * while the TRUNCATE tries again until the transaction in flight (a
 * group of events can outlast one CKPT_TRUNCATE_WAIT_MS) has ended.
 *
 * The bound is small because a TRUNCATE's cost grows with the WAL it
 * cuts (the copy of what the last PASSIVE pass left, and the cut): at
 * 16384 frames (64 MiB) the soak's p99 per 10 s step stood at 35-60 ms
 * against 7-20 ms unbounded, at 262144 frames each cut put a step's p99
 * at 220-260 ms.  At 2048 frames (8 MiB), 5-minute fresh-shop soaks
 * back to back (benchmarks/soak/run --minutes 5 --profile-cache 16,
 * nothing else running, 3.1M requests each, 0 errors): the WAL file
 * stayed under 5 MB where unbounded it passed 14 GB within 150 s, and
 * RssAnon after warm-up was 45.3 -> 45.8 MiB against 50.0 -> 50.4 (the
 * checkpoints no longer sort an index of millions of frames); but the
 * p99 of the run's halves was 15.7 and 18.2 ms against 6.3 and 7.5 ms
 * unbounded: writers wait behind each cut.  A disk that fills
 * within the hour under steady traffic is the worse failure; the p99
 * is the price.  A RESTART checkpoint instead
 * (no cut; the next writer starts the WAL over) did not hold: the WAL
 * reached 10.5 GB in 140 s, probably (not verified) because under this
 * traffic that writer had always taken its snapshot before the
 * checkpoint ended.
 */
#define CKPT_TRUNCATE_WAIT_MS 20
#define CKPT_GATE_MS 100 /* a transaction waits for a TRUNCATE at most */
#define CKPT_BUSY_MS 1000 /* the checkpoint connection's usual wait */
int knytt__sqlite_wal_frames_max = 2048;
int knytt__sqlite_ckpt_tick_ms = 100;

/*
 * The handle's WAL hook, called after each of its commits with the
 * frames now in the WAL.  Checked only every tick, the bound let a burst
 * of feedback take the WAL to 13 MB against its 8 MiB (what a tick's
 * commits write), so the commit that crosses it wakes the checkpoint
 * thread at once.  Once per crossing: armed again only when a TRUNCATE
 * has emptied the WAL or a pass finds it under the bound (a writer may
 * have started it over), so while readers keep a TRUNCATE out the
 * retries stay one a tick, as before, and do not follow every commit
 * (each try can hold writers at the gate up to CKPT_GATE_MS).  Taking
 * the place of SQLite's own hook also keeps this handle's commits from
 * checkpointing, as wal_autocheckpoint(0) did.
 */
static int wal_nudge(void *arg, sqlite3 *h, const char *db, int frames)
{
	(void)h;
	(void)db;
	sq_ckpt *c = arg;
	if (frames < knytt__sqlite_wal_frames_max ||
	    !__atomic_exchange_n(&c->armed, 0, __ATOMIC_SEQ_CST))
		return SQLITE_OK;
	pthread_mutex_lock(&c->mu);
	c->nudged = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	return SQLITE_OK;
}

static void *ckpt_main(void *arg)
{
	sq_ckpt *c = arg;
	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		struct timespec t;
		knytt__deadline(&t, CLOCK_REALTIME, knytt__sqlite_ckpt_tick_ms);
		while (!c->stop && !c->nudged &&
		       pthread_cond_timedwait(&c->cv, &c->mu, &t) == 0)
			;
		c->nudged = 0;
		if (c->stop)
			break;
		pthread_mutex_unlock(&c->mu);
		int frames = 0;
		sqlite3_wal_checkpoint_v2(c->h, "main",
					  SQLITE_CHECKPOINT_PASSIVE, &frames,
					  NULL);
		if (frames < knytt__sqlite_wal_frames_max) {
			__atomic_store_n(&c->armed, 1, __ATOMIC_SEQ_CST);
		} else {
			/* new transactions wait at the gate meanwhile, so
			 * the one in flight and the readers end: tries again
			 * until the gate's wait is spent */
			__atomic_store_n(&c->want, 1, __ATOMIC_SEQ_CST);
			sqlite3_busy_timeout(c->h, CKPT_TRUNCATE_WAIT_MS);
			int64_t t0 = mono_ms();
			int rc;
			while ((rc = sqlite3_wal_checkpoint_v2(
					c->h, "main", SQLITE_CHECKPOINT_TRUNCATE,
					NULL, NULL) & 0xFF) == SQLITE_BUSY &&
			       mono_ms() - t0 < CKPT_GATE_MS)
				;
			if (rc == SQLITE_OK)
				__atomic_store_n(&c->armed, 1,
						 __ATOMIC_SEQ_CST);
			sqlite3_busy_timeout(c->h, CKPT_BUSY_MS);
			pthread_mutex_lock(&c->mu);
			__atomic_store_n(&c->want, 0, __ATOMIC_SEQ_CST);
			pthread_cond_broadcast(&c->gate);
			pthread_mutex_unlock(&c->mu);
		}
		pthread_mutex_lock(&c->mu);
	}
	pthread_mutex_unlock(&c->mu);
	return NULL;
}

void knytt__sqlite_ckpt_gate(knytt__db *db)
{
	sq_ckpt *c = ((sq_db *)db)->ck;
	if (!c || !__atomic_load_n(&c->want, __ATOMIC_SEQ_CST))
		return;
	struct timespec t;
	knytt__deadline(&t, CLOCK_REALTIME, CKPT_GATE_MS);
	pthread_mutex_lock(&c->mu);
	while (__atomic_load_n(&c->want, __ATOMIC_SEQ_CST) &&
	       pthread_cond_timedwait(&c->gate, &c->mu, &t) == 0)
		;
	pthread_mutex_unlock(&c->mu);
}

static void ckpt_stop(sq_db *d)
{
	sq_ckpt *c = d->ck;
	if (!c)
		return;
	/* SQLite's own hook back first: wal_nudge must not see c freed */
	sqlite3_wal_autocheckpoint(d->h, 1000);
	pthread_mutex_lock(&c->mu);
	c->stop = 1;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->t, NULL);
	sqlite3_close_v2(c->h);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	pthread_cond_destroy(&c->gate);
	free(c);
	d->ck = NULL;
}

int knytt__sqlite_bg_checkpoint(knytt__db *db, int on)
{
	sq_db *d = (sq_db *)db;
	if (!on) {
		ckpt_stop(d);
		return 0;
	}
	const char *f = sqlite3_db_filename(d->h, "main");
	if (d->ck || !f || !*f)
		return 0; /* running, or in memory: no WAL */
	sq_ckpt *c = calloc(1, sizeof *c);
	if (!c)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	if (sqlite3_open_v2(f, &c->h,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		int rc = knytt__err(KNYTT_EIO, "sqlite: cannot open '%s' "
					       "for checkpoints: %s",
				    f, c->h ? sqlite3_errmsg(c->h) : "");
		sqlite3_close_v2(c->h);
		free(c);
		return rc;
	}
	sqlite3_busy_timeout(c->h, CKPT_BUSY_MS);
	/* a connection learns the database is in WAL mode on its first
	 * read; until then a checkpoint does nothing */
	sqlite3_exec(c->h, "SELECT count(*) FROM sqlite_master", NULL, NULL,
		     NULL);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	pthread_cond_init(&c->gate, NULL);
	c->armed = 1; /* before the thread, which writes it too */
	if (pthread_create(&c->t, NULL, ckpt_main, c) != 0) {
		sqlite3_close_v2(c->h);
		pthread_mutex_destroy(&c->mu);
		pthread_cond_destroy(&c->cv);
		pthread_cond_destroy(&c->gate);
		free(c);
		return knytt__err(KNYTT_ENOMEM,
				  "cannot start the checkpoint thread");
	}
	d->ck = c;
	/* the commits of this connection no longer checkpoint; past the
	 * bound, they wake the thread */
	sqlite3_wal_hook(d->h, wal_nudge, c);
	return 0;
}

static void sq_close(knytt__db *db)
{
	sq_db *d = (sq_db *)db;
	ckpt_stop(d);
	sq_bulk_lock(db, 0);
	knytt__sqfts_close(d->fts);
	sqlite3_finalize(d->ix_multi);
	sqlite3_close_v2(d->h);
	free(d);
}

static const knytt__dbops sq_ops = {
	"sqlite",     KNYTT__SQLITE, sq_exec,     sq_prepare,  sq_finalize,
	sq_bind_null, sq_bind_i64,   sq_bind_f64, sq_bind_text, sq_bind_blob,
	sq_step,      sq_reset,      sq_col_null, sq_col_i64,  sq_col_f64,
	sq_col_text,  sq_col_blob,   sq_changes,  sq_insert_ix, sq_search,
	sq_bulk_lock, sq_close,     sq_set_busy,
};

/*
 * SQLite counts every allocation in global statistics behind one global
 * mutex (SQLITE_CONFIG_MEMSTATUS, on by default), which knytt never
 * reads: with two threads searching, each FTS5 query's many small
 * allocations queued on that mutex and hybrid search ran no faster on
 * two threads than on one (0.95x; 1.85x with the statistics off,
 * benchmarks/engine/run --threads 2).  The setting must come before
 * SQLite initialises; in a program that has already used SQLite it is
 * refused (SQLITE_MISUSE) and the program's choice stands.
 */
static pthread_once_t sq_config_once = PTHREAD_ONCE_INIT;

static void sq_config(void)
{
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int knytt__sqlite_open(const char *path, knytt__db **out)
{
	pthread_once(&sq_config_once, sq_config);
	sq_db *d = calloc(1, sizeof *d);
	if (!d)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	d->base.ops = &sq_ops;
	d->bulk_fd = -1;
	int rc = sqlite3_open_v2(path, &d->h,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
					 SQLITE_OPEN_NOMUTEX,
				 NULL);
	if (rc != SQLITE_OK) {
		rc = knytt__err(KNYTT_EIO, "sqlite: cannot open '%s': %s",
				path, d->h ? sqlite3_errmsg(d->h)
					   : "out of memory");
		sqlite3_close_v2(d->h);
		free(d);
		return rc;
	}
	d->busy_ms = KNYTT_STORE_BUSY_MS;
	sqlite3_busy_handler(d->h, sq_busy, d);
	sqlite3_extended_result_codes(d->h, 1);
	/* SQLite's page cache: 8 MB a connection by default
	 * (KNYTT_STORE_CACHE_BYTES; knytt_store_set_cache_size).  At 64
	 * MB, every connection of a server (one per request thread) kept
	 * 64 MB of the search log and interactions it had written, and
	 * knyttd's RSS grew by the size of its writes for many minutes
	 * (benchmarks/soak).  Imports raise it for their run (importw.c).
	 * No memory map by default: SQLite unmaps a connection's whole map
	 * whenever another connection has written since its last read, and
	 * in a server that writes on every request each reading connection
	 * then unmapped (a TLB flush on every CPU) and faulted its pages
	 * back in, request after request.  The engine maps its own
	 * connection, whose own commits keep the map, and a search
	 * connection while commits are rare (knytt__store_set_mapped,
	 * rdpool.c). */
	char sql[128];
	snprintf(sql, sizeof sql,
		 "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
		 " PRAGMA cache_size=-%u;", KNYTT_STORE_CACHE_BYTES / 1024);
	rc = sq_exec(&d->base, sql);
	if (rc) {
		sq_close(&d->base);
		return rc;
	}
	/* without the function (an SQLite built without FTS5 would fail
	 * earlier, at the schema), search takes the plain SQL path */
	knytt__sqfts_open(d->h, &d->fts);
	*out = &d->base;
	return 0;
}
