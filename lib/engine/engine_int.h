/*
 * engine_int.h -- internals of knytt_engine.  Not API.
 *
 * The engine keeps in memory what every query needs and reads the store
 * only for what a query cannot do without (full-text search, the search
 * log, a user's history the first time we see the user):
 *  - the item table: one row per live item with the fields filters test
 *    (category, price, stock, quality), its popularity and its trending
 *    counters; a u64 map from store id to row, another from a 64-bit
 *    hash of the external id to row;
 *  - users: a profile each (lib/taste/profile.h): the whole history,
 *    the items seen per interaction type, the taste; in a cache of
 *    bounded memory (profcache.c): reference-counted, an idle profile
 *    evicted least recently used first when the profiles' bytes pass
 *    the budget (knytt_engine_set_profile_cache), and loaded again from
 *    the store on its next use;
 *  - the serving snapshot (snap.c): the vector index (label = store id),
 *    the trained model and its item map, reference-counted, so a query
 *    keeps the one it started on and a training swap never waits for it.
 *
 * Locks.  A thread holding one of them takes only locks listed below
 * it (the lock order), and none is held across an embedder (HTTP) call
 * or file I/O; the store is queried under st_lock alone, never under
 * lock, stat_lock, cat_mu or users_mu:
 *   u->mu     one shopper's profile (lib/taste/profile.h).  A query for
 *             the shopper holds it for the query (the seen set and the
 *             taste); feedback holds it across its store write, and the
 *             loader holds it from before the profile is published until
 *             it is loaded (taking users_mu to publish it, st_lock to
 *             read the history and lock to build), so a profile never
 *             misses an event nor counts one twice.  Other shoppers
 *             never wait for it.  Whoever holds it holds a reference to
 *             the profile (profcache.c), taken before and given back
 *             after, so an evicted profile is never locked; no thread
 *             holds two profiles' mutexes at once.
 *   st_lock   mutex around the store handle (one connection, not
 *             thread-safe).  A store callback may take lock for reading
 *             (keyword search tests its filter in memory).  Training
 *             uses its own connection.  Keyword search may borrow an
 *             extra connection instead (rdpool.c): its rd[i].mu stands
 *             at this place in the order, and a thread holds at most
 *             one store connection.  rd_mu (the slot count) is held
 *             alone.
 *   lock      rwlock over the item table and the pointer to the
 *             current snapshot (and the writes to its index).  Queries
 *             and feedback read; a query takes a snapshot reference
 *             under it and may keep that reference across gaps without
 *             it.  Item writes, sync and the model swap write, and only
 *             for memory work: they read the store, embed and build
 *             before taking it; the replaced snapshot is put back after
 *             the lock is released (its last reader frees it).
 *   stat_lock rwlock over popularity, the trending counters and the top
 *             lists: feedback writes for the counter bump (no I/O),
 *             the trending / popular fallback reads.
 *   win.mu    the windowed recent popularity (recentwin.c): a leaf,
 *             taken under stat_lock (feedback) or lock (queries).
 *   cat_mu    the filter indexes (filterx.c).
 *   users_mu  the profile cache (users, by_user, the LRU list): find,
 *             reference, publish or evict a profile, nothing else -- no
 *             profile's mu is taken under it (the evictor only takes
 *             idle profiles, which nobody holds) and no profile is freed
 *             under it.  The evictor reads the feedback queue's count
 *             before taking it.
 *   fq_mu     the feedback queue (feedq.c); the writer thread holds it
 *             only to take or retire an event, never with st_lock.
 *   train_mu  the training job's state.
 */
#ifndef KNYTT_ENGINE_INT_H
#define KNYTT_ENGINE_INT_H

#include "../internal.h"
#include "../taste/profile.h"
#include "attrx.h"

#include <pthread.h>
#include <string.h>

#define KNYTT__MODEL_TAG 16 /* random bytes per trained model version */
#define NTREND 4 /* trending half-lives: 1 hour, 1 day, 1 week, 2 weeks */

typedef struct eitem {
	uint64_t id;
	char *ext_id;
	char *category; /* NULL = none */
	double price, quality;
	int in_stock;
	int deleted;     /* row kept so ids stay stable; never returned */
	int has_vec;     /* present in the index */
	int caller_vec;  /* its vector came from the caller / embedder */
	uint32_t midx;   /* row in the trained model, UINT32_MAX = none */
	double pop;      /* weighted interactions, all time */
	double trend[NTREND]; /* decayed to trend_ts */
	int64_t trend_ts;
	uint8_t intop;   /* bit l: listed in top[l] (toplist.c) */
} eitem;

/* Windowed recent popularity (recentwin.c): the events of the last
 * KNYTT__WIN_KEEP ms by time, and each item's confidence of those in
 * the window [from, ...), fixed point (recentwin.c's WSCALE). */
#define KNYTT__WIN_KEEP (28LL * 86400000)
/* the largest pool of the personalised re-rank a model may ask for
 * (knytt__snap.blend_pool): the kept trending lists' length */
#define KNYTT__POOL_MAX 1024
typedef struct knytt__wev {
	int64_t ts; /* ms */
	uint32_t row;
	float w;    /* confidence */
} knytt__wev;
typedef struct knytt__recwin {
	pthread_mutex_t mu;  /* a leaf of the lock order */
	knytt__wev *ev;      /* ev[head..n) by time; [0..head) forgotten */
	size_t head, n, cap;
	int64_t *cnt;        /* by row; ncnt rows allocated */
	size_t ncnt;
	int64_t win, from;   /* cnt counts events at or after from, and
				from = now - win at the last query */
	uint32_t *order;     /* rows with cnt > 0, best first, unless dirty */
	size_t norder;
	int dirty;
} knytt__recwin;

/* The TOPN items by one ranking, best first (toplist.c). */
#define TOPN 1024
typedef struct toplist {
	double *key; /* TOPN; see toplist.c for what the key is */
	uint32_t *row;
	size_t n;    /* < TOPN: every item with a positive score is here */
} toplist;

/* Items of one category prefix (rows of the item table), so a filtered
 * query walks a few thousand rows instead of the whole table (filterx.c).
 * Rows are appended when an item enters the prefix and re-checked by the
 * query, so one that left it later costs a test, never a wrong answer. */
typedef struct catlist {
	char *prefix;
	size_t plen;
	uint32_t *rows;
	size_t n, cap;
} catlist;
#define NCATLIST 1024

/* "shoes" matches "shoes" and "shoes/running", not "shoestring"; a
 * prefix that ends in '/' matches whatever follows it. */
static inline int knytt__cat_match(const char *cat, const char *prefix,
				   size_t plen)
{
	if (!cat || strncmp(cat, prefix, plen) != 0)
		return 0;
	char nx = cat[plen];
	return nx == '\0' || nx == '/' || prefix[plen - 1] == '/';
}

/* A feedback event, or a search log entry, waiting for the writer
 * thread (feedq.c). */
/* Search-log rows the write-behind queue writes in one transaction, at
 * most, and how long a row waits for others to share it (feedq.c). */
#define KNYTT__LOG_GROUP 256
#define KNYTT__LOG_DELAY_MS 50
/* Writes of single events that share one transaction, at most: the
 * write-behind writer's (feedq.c) and the group commit's (stgroup.c).
 * The store mutex is held for all of them, some 2 ms at 30 us a write. */
#define KNYTT__WRITE_GROUP 64

typedef struct knytt__fq_ev {
	char *buf; /* "user\0item\0type\0", or "query\0user\0"; owned */
	struct knytt__fq_ev *sub; /* a batch: nsub events stored in one
				     transaction (buf NULL); owned */
	size_t nsub;
	double weight, value;
	int has_value;
	int is_log;  /* a search log entry of count results */
	int count;
	int64_t ts; /* ms, resolved (never 0) */
} knytt__fq_ev;

/*
 * The serving snapshot (snap.c): index, model and the model's item map,
 * reference-counted.  The engine's pointer owns one reference; a query
 * takes another for as long as it uses the model or the index, so a
 * training swap publishes a new snapshot without waiting for it, and
 * the old one is freed when its last reader puts it back.  The model
 * fields never change once the snapshot is published (open fills the
 * first before the engine is usable); the index of the current
 * snapshot takes item writes under the engine's write lock, and a
 * replaced snapshot is never written again.
 */
/* An extra store connection for keyword search (rdpool.c). */
#define KNYTT__RD_MAX 3
typedef struct knytt__rdconn {
	pthread_mutex_t mu;
	knytt_store *st; /* NULL until opened */
	int dead;        /* its open failed */
	/* under mu: the connection's data version after its last search,
	 * the share of its searches that found the page cache emptied by
	 * another connection's commit (a moving average, 1 << 16 = all),
	 * and whether it reads through a memory map (rdpool.c) */
	uint32_t dv;
	uint32_t stale;
	int mapped;
} knytt__rdconn;

typedef struct knytt__snap {
	int refs;             /* atomic */
	knytt_index *ix;      /* never NULL */
	knytt_als *als;       /* at most one of als, tt, lgc; none: untrained */
	knytt_twotower *tt;
	knytt_lightgcn *lgc;
	/* search words learned from the search log (lib/model/qterms.h),
	 * in the index's item space; NULL: none learned */
	struct knytt__qterms *qm;
	uint64_t *items;      /* model row -> store id */
	uint32_t nitems;
	int64_t version;      /* stored model version, 0 = none */
	unsigned char tag[KNYTT__MODEL_TAG]; /* of the stored blob */
	uint64_t gen;         /* installs since open: profiles compare it */
	/* the blend of recommend with recent popularity (lib/model/blend.h)
	 * that the model's tuning chose: weight blend_w (0 = none) of
	 * trending list blend_h (-1: all-time popularity), or, when
	 * blend_win > 0, of the windowed list of the last blend_win ms
	 * (recentwin.c) */
	float blend_w;
	int blend_h;
	int64_t blend_win;
	/* > 0: the personal list is that popularity list's first blend_pool
	 * items (passing the query) ranked by the shopper's tastes, the
	 * personalised re-rank the tuning chose (lib/model/tune.c); the
	 * blend then uses weight blend_w >= 0 of the same list.  0: the
	 * tastes' best over every item */
	unsigned blend_pool;
	/* the SASRec session model (seqmodel.c; item i = model row i) and
	 * its weight in recommend's blend (0: not used); NULL: none */
	knytt_sasrec *sr;
	float sr_w;
} knytt__snap;

/* new: takes ownership of every pointer (also on failure: NULL, all
 * freed); ref: one more reference, caller holds lock or a reference;
 * get: a reference to the current snapshot, caller holds no lock;
 * put: gives one back (NULL: no-op), freeing the last. */
knytt__snap *knytt__snap_new(knytt_index *ix, knytt_als *als,
			     knytt_twotower *tt, knytt_lightgcn *lgc,
			     uint64_t *items,
			     uint32_t nitems, int64_t version,
			     const unsigned char tag[KNYTT__MODEL_TAG],
			     uint64_t gen);
knytt__snap *knytt__snap_ref(knytt__snap *s);
knytt__snap *knytt__snap_get(struct knytt_engine *e);
void knytt__snap_put(knytt__snap *s);

struct knytt_engine {
	/* settings */
	int is_open;
	int open_failed; /* knytt_engine_open failed: only close is left */
	knytt_model_kind kind;
	uint32_t dim;
	int kind_set, dim_set; /* set explicitly (else a stored model's win) */
	unsigned m, efc, efs;
	double w_type[KNYTT__NTYPES]; /* weight per KNYTT__T_ type (the
					 custom types share one); > 0 */
	double sess_half_life, sess_blend, hist_half_life_days;
	int exclude_seen;    /* 0: no exclusions; 1: the rule below */
	unsigned excl_types; /* KNYTT__T_ bits: an item with an event of
				one of these types is not recommended */
	int64_t now_ms;      /* as-of time, ms; 0 = the wall clock; read
				and written atomically (settable while
				open) */
	int64_t future_tol_ms; /* events later than now + this: refused */
	unsigned keep_models;  /* model versions kept after a train */
	float als_reg, als_alpha;
	unsigned als_iters, tt_epochs, threads;
	int tune; /* 1 (default): train tunes itself (lib/model/tune.c) */
	int tune_windows; /* the tuning may blend windowed lists (recentwin.c) */
	int tune_pool;    /* the tuning may choose the personalised re-rank
			     of a popularity list's pool (recommend.c) */
	unsigned sasrec_epochs; /* 0: no SASRec session model; else the
				   most epochs it trains (seqmodel.c) */
	double sasrec_w;        /* its weight in the blend, 0..1; < 0:
				   chosen on the validation period */
	knytt_embedder *emb;
	char *tenant_name;
	knytt_log_fn log_fn; /* warnings (NULL: none) */
	void *log_ctx;

	char *uri;
	knytt_store *st;
	uint64_t tenant_id; /* of tenant_name in the store */
	/* extra connections for concurrent keyword searches (rdpool.c):
	 * rd[0..nrd) claimed; rd_off: the store takes no more */
	knytt__rdconn rd[KNYTT__RD_MAX];
	unsigned nrd;
	int rd_off;
	int rd_busy; /* searches holding a connection (__atomic_*) */
	pthread_mutex_t rd_mu;
	/* 1 while a keyword search holds st_lock (only a search makes
	 * another search borrow a connection) */
	int st_search; /* __atomic_* */
	int64_t synced_ms; /* items changed after this are re-read by sync */
	int64_t open_mark; /* interaction mark read before the trending
			      counters were seeded at open */
	int64_t vec_synced_ms; /* newest "caller" vector date seen (vecsync.c;
				  the writer's wall clock, ms) */

	pthread_rwlock_t lock;
	pthread_mutex_t st_lock;
	/* group commit of synchronous store writes (stgroup.c): the queue,
	 * whether a leader is writing a group, and the writes that shared
	 * a commit (for tests) */
	pthread_mutex_t gw_mu;
	pthread_cond_t gw_cv;
	struct knytt__stw *gw_head, **gw_tail;
	int gw_busy;
	uint64_t gw_shared;
	pthread_rwlock_t stat_lock; /* pop, trend, top (see above) */
	pthread_mutex_t users_mu;   /* users, nusers, by_user */

	/* items */
	eitem *items;
	size_t nitems, capitems;
	knytt__lmap by_id;  /* store id -> row */
	knytt__lmap by_ext; /* hash(ext id) -> row (collisions: store) */

	uint64_t max_id; /* largest store id in the table */
	catlist cats[NCATLIST]; /* category prefix -> rows, round-robin */
	size_t ncats, cat_next;
	/* rows by price as of the last sort, and rows added or re-priced
	 * since (filterx.c); price_ok = 0: sort before the next use */
	struct pricepair *price_sorted;
	size_t nprice_sorted;
	uint32_t *price_recent;
	size_t nprice_recent, cap_price_recent;
	int price_ok;
	pthread_mutex_t cat_mu; /* guards cats and the price order (queries
				   run in parallel) */
	/* attribute postings by row (attrx.c), under lock like the table */
	knytt__attrx *ax;

	/* the item vectors by row, dim floats each, a copy of the index's
	 * for exact scans (scan.c); meaningful where has_vec, and only
	 * while rowvec_ok */
	float *rowvec;
	size_t rowvec_cap; /* rows allocated */
	int rowvec_ok;
	/* its int8 copy for wide scans: dim codes and a step per row
	 * (scan.c); NULL without memory */
	int8_t *rowq;
	float *rowq_s;
	/* bumped whenever a code changes (under the write lock): the packed
	 * copies of row sets (packscan.c) hold for one generation */
	uint64_t rowq_gen;
	struct knytt__packs *packs; /* NULL without memory: none kept */

	/* trending (one list per half-life) and popularity, in order;
	 * top_ok = 0: not available, queries score every row */
	toplist top[NTREND + 1];
	int top_ok;
	/* the windowed recent popularity (recentwin.c), its own mutex */
	knytt__recwin win;

	/* users: the profile cache (profcache.c), under users_mu.
	 * users[0..nusers) with NULL at the nfree slots listed in
	 * free_slots (room for capusers, so an eviction never allocates) */
	knytt__profile **users;
	size_t nusers, capusers, nfree;
	uint32_t *free_slots;
	knytt__lmap by_user; /* hash(ext id) -> users[] index */
	knytt__profile *lru_head, *lru_tail; /* head: most recently used */
	/* atomic: the budget (bytes; UINT64_MAX = none), the accounted
	 * bytes of the profiles loaded (knytt__profile_bytes and their
	 * table slots), the evictions since open */
	uint64_t prof_budget, prof_bytes, prof_evictions;
	/* atomic: taste searches answered from a profile's memo and
	 * walked on the index (annmemo.c), since open */
	uint64_t memo_hits, memo_walks;

	/* model and index: the current serving snapshot (snap.c), never
	 * NULL while open; replaced under lock (write), so a thread holding
	 * lock reads it directly, one without takes a reference */
	knytt__snap *snap;
	knytt_metric metric;

	/* feedback write-behind (feedq.c); fb_async is a setting */
	int fb_async;
	int fq_running;         /* the writer thread exists */
	pthread_mutex_t fq_mu;
	pthread_cond_t fq_wake; /* to the writer: queued, or stop
				   (CLOCK_MONOTONIC, for timed waits) */
	pthread_cond_t fq_done; /* from the writer: an event retired */
	knytt__fq_ev *fq;       /* ring of fq_cap slots, fq_n used from
				   fq_head; the head slot is the one being
				   written */
	size_t fq_head, fq_n, fq_cap;
	uint64_t fq_pushed, fq_written; /* events queued / retired since
					   open (written or failed) */
	size_t fq_nlog;         /* of fq_n, search-log rows */
	int fq_hurry;           /* threads waiting for the queue to drain:
				   rows that wait for company go now */
	uint64_t fq_log_commits; /* search-log transactions since open */
	uint64_t fq_ev_commits;  /* single events' transactions since open */
	int fq_stop;
	int fq_err;             /* first failure not reported yet, or 0 */
	char fq_msg[512];
	pthread_t fq_thread;

	/* training job */
	pthread_mutex_t train_mu;
	pthread_t train_thread;
	int train_running, train_joinable, train_rc;
	knytt_progress train_progress;
	knytt_progress_fn train_fn;
	void *train_ctx;

	/* engines serving experiment variants by model label
	 * (experiment.c); set before serving, read without a lock */
	struct {
		char label[65];
		knytt_engine *eng;
	} xmodel[8];
	/* evaluation of new models and the swap gate (holdout.c), under
	 * train_mu: eval_users 0 = no evaluation; eval_margin < 0 = every
	 * model is swapped in.  serving_eval: the recorded evaluation of the
	 * model serving (users 0 = none recorded); last_eval: of the last
	 * model trained. */
	unsigned eval_users;
	double eval_margin;
	knytt_train_eval serving_eval, last_eval;
};

/* Reciprocal rank fusion (fusion.c): add ranked id lists (list number
 * 0..31, its weight; ranks 1-based in array order), then sort: r->f[0..n)
 * best first by score (ties: smaller id first).  An id gets
 * sum of weight / (k + rank) over the lists holding it; best is the list
 * that gave it the most (the earlier list on a tie) and best_pos its
 * place there, so a caller can take the entry's details from it. */
typedef struct knytt__fused {
	uint64_t id;
	double score;
	unsigned lists;   /* bit l: on list l */
	unsigned best;    /* list number */
	size_t best_pos;  /* 0-based index in that list */
	double best_part; /* its contribution */
} knytt__fused;

typedef struct knytt__rrf {
	double k;
	knytt__fused *f;
	size_t n, cap;
	knytt__lmap map; /* id -> index in f (until sorted) */
} knytt__rrf;

int knytt__rrf_init(knytt__rrf *r, double k, size_t cap);
int knytt__rrf_add(knytt__rrf *r, unsigned list, double weight,
		   const uint64_t *ids, size_t n);
void knytt__rrf_sort(knytt__rrf *r);
void knytt__rrf_free(knytt__rrf *r);

uint64_t knytt__hash_str(const char *s);

/* The engine's "now", ms: the as-of time when set, else the wall clock.
 * Trending, session decay, recency weights and popularity read it. */
static inline int64_t knytt__engine_now(const knytt_engine *e)
{
	int64_t t = __atomic_load_n(&e->now_ms, __ATOMIC_RELAXED);
	return t ? t : knytt__now_ms();
}

/* Half-lives of the trending counters, seconds: 1 hour, 1 day, 1 week. */
extern const double knytt__trend_half_life[NTREND];

/* Trending counter h of an item, decayed to @p now_ms. */
static inline double knytt__trend_now(const eitem *it, int h, int64_t now_ms)
{
	return it->trend[h] *
	       knytt__decay(now_ms - it->trend_ts, knytt__trend_half_life[h]);
}

/* The confidence of an interaction, the one point where the engine's
 * type weights apply, the same for imported rows, live feedback, the
 * history, training and trending: its stored weight (the type's default
 * from itypes.c unless the caller gave one) scaled by the engine's
 * weight for the type over that default, times the rating for a rating
 * (negative ratings count as 0).  So knytt_engine_set_weight moves every
 * row of the type, and a weight a caller gave one row keeps its ratio to
 * the type's. */
static inline double knytt__ix_confidence(const knytt_engine *e,
					  const knytt_interaction *ix)
{
	unsigned t = knytt__type_bit(ix->type);
	double w = ix->weight > 0 ? ix->weight : knytt__type_default(t);
	w *= e->w_type[t] / knytt__type_default(t);
	if (ix->has_value && t == KNYTT__T_RATING)
		w *= ix->value > 0 ? ix->value : 0;
	return w;
}

/* The profile cache (profcache.c).
 * engine_user: a reference to the profile of user @p ext, loaded from
 * the store if it is not in memory (the profile is then published
 * first, and loaded under its mutex); caller holds no lock and gives
 * the reference back with engine_user_put once it no longer reads the
 * profile -- until then the profile is never evicted nor freed.  NULL
 * with the code in *rc: KNYTT_ENOTFOUND (unknown and create = 0),
 * KNYTT_ENOMEM, a store error.
 * engine_user_if_loaded: a reference, only if the profile is in memory
 * (NULL otherwise).  engine_users_held: a reference to each profile in
 * memory (an array to free; NULL without memory; a profile may still be
 * loading: lock it and check state).  engine_user_put: gives one back
 * (NULL: no-op), evicting idle profiles if the cache is over budget.
 * engine_user_load (engine.c): fills new profile @p u from the store;
 * caller holds u->mu and nothing else.
 * pcache_account: @p u changed (caller holds u->mu and a reference);
 * pcache_trim: evicts idle profiles until the cache fits its budget
 * (caller holds no lock); pcache_free: every profile (close). */
#define KNYTT_PROFILE_CACHE_DEFAULT (64ull << 20)
knytt__profile *knytt__engine_user(knytt_engine *e, const char *ext,
				   int create, int *rc);
knytt__profile *knytt__engine_user_if_loaded(knytt_engine *e,
					     const char *ext);
knytt__profile **knytt__engine_users_held(knytt_engine *e, size_t *n);
void knytt__engine_user_put(knytt_engine *e, knytt__profile *u);
int knytt__engine_user_load(knytt_engine *e, knytt__profile *u, int create);
void knytt__pcache_account(knytt_engine *e, knytt__profile *u);
void knytt__pcache_trim(knytt_engine *e);
void knytt__pcache_free(knytt_engine *e);
/* Brings the long-term taste of @p u up to the installed model; caller
 * holds u->mu and lock (read). */
void knytt__engine_user_fresh(knytt_engine *e, knytt__profile *u);
int knytt__feedback_event(knytt_engine *e, const char *user,
			  const char *item, const char *type, double value,
			  int64_t ts_ms, knytt_interaction *ev, double *w);
int knytt__feedback_mem(knytt_engine *e, knytt__profile *u, uint32_t r,
			double w, int64_t ts, unsigned bit);
int knytt__engine_check_open(const knytt_engine *e, const char *fn);
/* row of an item by store id; UINT32_MAX if absent */
uint32_t knytt__engine_row(const knytt_engine *e, uint64_t id);
/* row of an item by external id, UINT32_MAX if absent (memory only: a
 * 64-bit hash collision is resolved by scanning the table); caller holds
 * lock */
uint32_t knytt__engine_row_by_ext(const knytt_engine *e, const char *ext);
/* filter indexes (filterx.c); callers hold the engine lock, the
 * functions take cat_mu.  cat_rows: the rows of a category prefix (NULL
 * without memory), caller holds cat_mu and reads the list under it;
 * cats_prebuild: lists of every '/'-prefix of the item categories (at
 * open); price_rows: calls fn for a superset of the rows priced in
 * [lo, hi] (-1 without memory); filterx_changed: row entered a category
 * (moved) and/or got a new price (repriced). */
const catlist *knytt__cat_rows(knytt_engine *e, const char *prefix,
			       size_t plen);
void knytt__cats_prebuild(knytt_engine *e);
int knytt__price_rows(knytt_engine *e, double lo, double hi,
		      void (*fn)(uint32_t row, void *ctx), void *ctx);
void knytt__filterx_changed(knytt_engine *e, uint32_t row, int moved,
			    int repriced);
void knytt__filterx_free(knytt_engine *e);
/* the vector copy (scan.c): fill from the index (open, model install),
 * follow a growing item table, set one row after an index upsert.
 * scan: exact top-k of rows[0..n) (a superset: rows may repeat, and only
 * those for which ok() returns non-zero count) for nq (1 or 2) query
 * vectors in one pass; query j's best rows and scores (dot products,
 * best first) go to orow/oscore[j * k ...], their count to got[j].
 * Caller holds the engine lock and has checked rowvec_ok. */
void knytt__rowvec_fill(knytt_engine *e);

/* An event counted late into the trending counters and top lists of
 * row @p r, not popularity (caller holds lock for reading); whether the
 * profile of shopper @p ext is loaded. */
void knytt__engine_trend_event(knytt_engine *e, uint32_t r, double w,
			       int64_t ts);
int knytt__engine_user_loaded(knytt_engine *e, const char *ext);

/* Item vectors other processes stored (vecsync.c): read the "caller"
 * embeddings written since @p since_ms (caller holds st_lock), then put
 * the changed ones in the index (caller holds lock for writing; returns
 * how many, or an error). */
typedef struct knytt__vecsync {
	uint64_t *ids;
	float *v; /* n * dim floats */
	size_t n, cap;
	uint32_t dim;
	int64_t newest; /* newest row date read */
} knytt__vecsync;
int knytt__vecsync_read(knytt_engine *e, int64_t since_ms,
			knytt__vecsync *vs);
int knytt__vecsync_apply(knytt_engine *e, knytt__vecsync *vs);
void knytt__vecsync_free(knytt__vecsync *vs);
int knytt__rowvec_grow(knytt_engine *e, size_t cap);
void knytt__rowvec_free(knytt_engine *e);
void knytt__rowvec_set(knytt_engine *e, uint32_t row, const float *v);
size_t knytt__scan(const knytt_engine *e, const uint32_t *rows, size_t n,
		   const float *const *q, size_t nq, size_t k,
		   int (*ok)(uint32_t row, void *ctx), void *ctx,
		   uint32_t *orow, float *oscore, size_t *got);
/* top lists (toplist.c): build = sort list @p only (-1: all) from the
 * item table; bump = item @p row's counters grew.  Caller holds the
 * write lock. */
void knytt__top_build(knytt_engine *e, int only);
void knytt__top_bump(knytt_engine *e, uint32_t row);
void knytt__top_free(knytt_engine *e);
/* a fresh, empty index with the engine's settings */
int knytt__engine_new_index(const knytt_engine *e, knytt_index **out);
/* "engine-model" blob (modelblob.c): encode / decode (kind, item map, the
 * model's random tag, model, the search words @p qm and the SASRec
 * session model @p sr: NULL = none) */
int knytt__engine_encode_model(const knytt_engine *e, knytt_als *als,
			       knytt_twotower *tt, knytt_lightgcn *lgc,
			       const struct knytt__qterms *qm,
			       const knytt_sasrec *sr,
			       const uint64_t *items,
			       uint32_t nitems,
			       const unsigned char tag[KNYTT__MODEL_TAG],
			       void **blob, size_t *size);
int knytt__engine_decode_model(const knytt_engine *e, const void *blob,
			       size_t size, knytt_als **als,
			       knytt_twotower **tt, knytt_lightgcn **lgc,
			       struct knytt__qterms **qm, knytt_sasrec **sr,
			       uint64_t **items, uint32_t *nitems,
			       unsigned char tag[KNYTT__MODEL_TAG]);
/* Model versions (versions.c).  owner: the owner tag of an index file
 * of the model with @p tag in the selected tenant of @p st.  commit:
 * stores blob, item embeddings and index file as one version (all or
 * nothing), *version = its number.  prune: deletes versions (and their
 * embeddings and files) beyond the newest keep_models, and stale
 * temporary files.  index_load: the saved index of version @p v if it
 * is that model's, else NULL (a refused file is reported through the
 * log callback).  index_save: saves a rebuilt index for the next open
 * (best effort).  warn: a message to the log callback, if any. */
void knytt__engine_model_owner(const knytt_store *st,
				const unsigned char tag[KNYTT__MODEL_TAG],
				unsigned char out[KNYTT__INDEX_OWNER]);
int knytt__version_commit(knytt_engine *e, knytt_store *st, knytt_index *ix,
			  const unsigned char tag[KNYTT__MODEL_TAG],
			  const void *blob, size_t size, const char *meta,
			  const uint64_t *ids, uint32_t n, int64_t *version);
int knytt__version_prune(knytt_engine *e, knytt_store *st, int64_t newest);
knytt_index *knytt__version_index_load(knytt_engine *e, int64_t v,
				       const unsigned char tag[KNYTT__MODEL_TAG]);
void knytt__version_index_save(knytt_engine *e, knytt_index *ix, int64_t v,
			       const unsigned char tag[KNYTT__MODEL_TAG]);
/* rdpool.c: take a store connection for a read (the engine's own if
 * st_lock is free, else an extra one, else waits for st_lock); give it
 * back with the mutex take set in @p held. */
knytt_store *knytt__rd_take(knytt_engine *e, pthread_mutex_t **held);
void knytt__rd_give(knytt_engine *e, pthread_mutex_t *held);
unsigned knytt__rd_count(knytt_engine *e); /* extra connections open */
/* 1 if extra connection @p i reads through a memory map, 0 if not, -1
 * if it is not open (for tests) */
int knytt__rd_mapped(knytt_engine *e, unsigned i);
void knytt__rd_init(knytt_engine *e);
void knytt__rd_free(knytt_engine *e);

void knytt__engine_warn(knytt_engine *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* feedback queue (feedq.c): start the writer thread (at open), stop it
 * after writing what is queued (at close); validate an event with the
 * store's rules and take a pending writer failure; queue an event; wait
 * until everything queued so far is retired (failures stay pending).
 * fq_wait is a no-op for synchronous engines. */
int knytt__fq_start(knytt_engine *e);
void knytt__fq_stop(knytt_engine *e);
int knytt__fq_check(knytt_engine *e, const knytt_interaction *ix);
int knytt__fq_push(knytt_engine *e, const knytt_interaction *ix);
/* Queues @p n events as one entry, written in one transaction. */
int knytt__fq_push_batch(knytt_engine *e, const knytt_interaction *const *ix,
			 size_t n);
/* The writer's first failure not reported yet (as this thread's error),
 * or 0. */
int knytt__fq_take_err(knytt_engine *e);
/* Queues a search log entry (@p user, @p shown may be NULL). */
int knytt__fq_push_log(knytt_engine *e, const char *query, const char *user,
		       int count, const char *shown, int64_t ts);
void knytt__fq_wait(knytt_engine *e);
/* Events queued / retired (written or failed) since open. */
uint64_t knytt__fq_pushed(knytt_engine *e);
uint64_t knytt__fq_written(knytt_engine *e);
/* Evaluation of a new model (holdout.c).  holdout_make: from the
 * training events (dense users and items, times), holds out each of the
 * @p max_users most recently active users' last item (every event of the
 * user on it: drop[i] = 1) and samples negatives (items the user never
 * touched) for the leave-one-out test.  holdout_eval: HR@10 and NDCG@10
 * of the trained model on it, given the training events (the ones not
 * dropped; two-tower users: the weighted mean of their training items'
 * vectors).  Both KNYTT_OK or an error; a test
 * without a case (too few users with two items) is KNYTT_OK with
 * ncases 0. */
typedef struct knytt__holdout {
	uint8_t *drop;
	knytt_loo *test;
	size_t ncases;
} knytt__holdout;
int knytt__holdout_make(const uint32_t *u, const uint32_t *it,
			const int64_t *ts, size_t n, uint32_t nusers,
			uint32_t nitems, unsigned max_users,
			knytt__holdout *out);
int knytt__holdout_eval(const knytt__holdout *h, knytt_als *als,
			knytt_twotower *tt, knytt_lightgcn *lgc, uint32_t dim,
			const uint32_t *u, const uint32_t *it, const float *w,
			size_t n, uint32_t nusers, uint32_t nitems,
			knytt_metrics *out);
void knytt__holdout_free(knytt__holdout *h);
/* The version to serve: the newest stored engine model not held back by
 * the gate (0 when none), with its recorded evaluation (users 0 when it
 * has none).  KNYTT_OK or a store error. */
int knytt__serving_version(knytt_store *st, int64_t *version,
			   knytt_train_eval *ev);
/* The index of a model's item vectors (train.c): every non-zero one. */
int knytt__engine_build_index(knytt_engine *e, knytt_als *als,
			      knytt_twotower *tt, knytt_lightgcn *lgc,
			      const uint64_t *ids, uint32_t n,
			      knytt_index **out);
/* the training job (train.c); runs on its own store connection */
int knytt__engine_train_job(knytt_engine *e);
/* Automatic tuning (tunejob.c).  tune: runs lib/model/tune.c on the
 * @p n interactions (dense ids, ms, confidences) with *cfg as the
 * fixed settings and @p seq as the sequence model (NULL: none); replaces
 * *cfg with the choice, copies the tuner's output to *res (NULL: not)
 * and writes the report to json (cap bytes).  blend_from_meta: the
 * blend a stored model's metadata records (none when absent), into
 * s->blend_w / blend_h, and the session model's weight into s->sr_w,
 * before the snapshot is published. */
struct knytt__tune_cfg;
struct knytt__tune_seq;
struct knytt__tune_out;
int knytt__engine_tune(knytt_engine *e, struct knytt__tune_cfg *cfg,
		       const uint32_t *u, const uint32_t *it, const float *w,
		       const int64_t *ts, size_t n, uint32_t nusers,
		       uint32_t nitems, const struct knytt__tune_seq *seq,
		       struct knytt__tune_out *res, char *json, size_t cap);
void knytt__snap_blend_from_meta(knytt__snap *s, const char *meta);
/* Windowed recent popularity (recentwin.c).  add: counts an event of
 * item row (confidence w, time ts) unless older than four weeks before
 * now; lock: brings the window to [now - win, ...) and returns the rows
 * with events in it, best first, with their fixed-point counts by row
 * (score: as a confidence), valid until unlock, which must follow. */
void knytt__win_init(knytt_engine *e);
void knytt__win_free(knytt_engine *e);
void knytt__win_add(knytt_engine *e, uint32_t row, float w, int64_t ts,
		    int64_t now);
size_t knytt__win_lock(knytt_engine *e, int64_t win, int64_t now,
		       const uint32_t **rows, const int64_t **cnt);
void knytt__win_unlock(knytt_engine *e);
double knytt__win_score(int64_t c);
/* installs a trained model + index + search words + session model
 * (NULL: none) (takes ownership of each) and the blend its metadata
 * @p meta records; caller holds no lock */
void knytt__engine_install(knytt_engine *e, knytt_index *ix,
			   knytt_als *als, knytt_twotower *tt,
			   knytt_lightgcn *lgc, struct knytt__qterms *qm,
			   knytt_sasrec *sr,
			   uint64_t *items,
			   uint32_t nitems, int64_t version,
			   const unsigned char tag[KNYTT__MODEL_TAG],
			   const char *meta);

/* ---- group commit (stgroup.c) ---- */
/* One write of @p n for knytt__st_together: write @p i inside the
 * transaction (@p alone 0), or alone in its own, keeping its outcome. */
typedef int (*knytt__st_op)(void *ctx, size_t i, int alone);
/* Takes st_lock and writes the @p n writes of @p op in one transaction;
 * when n is 1, or a write or the commit fails (rolled back), each alone
 * instead, so each keeps its own outcome.  Returns 1 when they shared
 * a commit. */
int knytt__st_together(knytt_engine *e, size_t n, knytt__st_op op,
		       void *ctx);
/* One synchronous store write of a caller: an event (ev) or a search-log
 * row (query, user, count, shown; its id into log_id).  Queued and
 * written with the writes of other callers that arrive while the store
 * is busy, in one transaction; the outcome is the caller's own. */
typedef struct knytt__stw {
	const knytt_interaction *ev;
	const char *query, *user, *shown;
	int count;
	uint64_t log_id;
	int rc, done;
	char msg[256], field[64];
	struct knytt__stw *next;
} knytt__stw;
/* knytt_store_interaction_add through the group commit (1 stored, 0 a
 * repeated event id); caller holds no engine lock, maybe a profile's. */
int knytt__stw_event(knytt_engine *e, const knytt_interaction *ev);
/* knytt__search_log_ins (now) through the group commit. */
int knytt__stw_log(knytt_engine *e, const char *query, const char *user,
		   int count, const char *shown, uint64_t *log_id);

#endif
