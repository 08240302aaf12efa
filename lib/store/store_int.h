/*
 * store_int.h -- the store's internals: the backend vtable and the handle.
 *
 * The two backends (sqlite.c, pg.c) are siblings behind one small vtable
 * of SQL primitives: prepare, bind, step, read a column, reset.  Every
 * query of the store is written once in SQL that both databases accept
 * (numbered parameters ?N, which pg.c rewrites to $N; CAST where
 * PostgreSQL could not infer a parameter's type); only the schema, the
 * keyword search and the bulk interaction path differ per dialect.
 * Statements are prepared once per connection, on first use, and kept in
 * st->stmt[] until close: bind -> step -> reset.
 */
#ifndef KNYTT_STORE_INT_H
#define KNYTT_STORE_INT_H

#include "../internal.h"

enum { KNYTT__SQLITE = 0, KNYTT__PG = 1 };

typedef struct knytt__stmt knytt__stmt; /* backend-specific */
typedef struct knytt__db knytt__db;

/* One validated interaction row, for batch inserts.  The SQLite path
 * fills user_id/item_id row by row; the PostgreSQL path keeps the
 * external ids (user/item) and resolves a whole batch at once. */
typedef struct knytt__ixrow {
	uint64_t user_id, item_id;
	uint64_t user_h, item_h; /* hashes of user and item (importw.c) */
	size_t line;             /* input line, for reports */
	char user[KNYTT_STORE_MAX_ID + 1], item[KNYTT_STORE_MAX_ID + 1];
	double weight, value;
	int has_value;
	int64_t ts;
	char type[33];
	char event_id[KNYTT_STORE_MAX_ID + 1]; /* "" = none */
} knytt__ixrow;

/* A keyword search: the dialect's query text and the filters. */
typedef struct knytt__search {
	const char *match;
	const char *category_prefix; /* NULL = any */
	double price_min, price_max; /* NAN = open */
	int in_stock_only;
	knytt_accept_fn accept; /* NULL = none */
	void *ctx;
	int nwords; /* words in match (set by the store) */
	/* accept decides alone: it knows the tenant's live items and the
	 * filters, so no item row is read (knytt__store_search_owned) */
	int accept_all;
} knytt__search;

typedef struct knytt__dbops {
	const char *name;
	int dialect;
	/* Runs SQL without parameters or results (may hold several
	 * statements). */
	int (*exec)(knytt__db *db, const char *sql);
	int (*prepare)(knytt__db *db, const char *sql, knytt__stmt **out);
	void (*finalize)(knytt__stmt *s);
	/* Parameters are 1-based, as in the SQL text. */
	int (*bind_null)(knytt__stmt *s, int i);
	int (*bind_i64)(knytt__stmt *s, int i, int64_t v);
	int (*bind_f64)(knytt__stmt *s, int i, double v);
	int (*bind_text)(knytt__stmt *s, int i, const char *v); /* NULL ok */
	int (*bind_blob)(knytt__stmt *s, int i, const void *v, size_t n);
	/* 1 = a row is ready, 0 = done, < 0 = error (message set). */
	int (*step)(knytt__stmt *s);
	void (*reset)(knytt__stmt *s);
	/* Columns are 0-based. */
	int (*col_null)(knytt__stmt *s, int c);
	int64_t (*col_i64)(knytt__stmt *s, int c);
	double (*col_f64)(knytt__stmt *s, int c);
	const char *(*col_text)(knytt__stmt *s, int c); /* NULL if NULL */
	const void *(*col_blob)(knytt__stmt *s, int c, size_t *n);
	/* Rows changed by the last completed step. */
	int64_t (*changes)(knytt__stmt *s);
	/* Inserts n interactions with their ids resolved (duplicates by
	 * event id ignored) inside the caller's transaction; returns the
	 * number stored. */
	int (*insert_interactions)(knytt__db *db, uint64_t tenant,
				   const knytt__ixrow *rows, size_t n);
	/* Keyword search with the dialect's own ranking shortcut (SQLite:
	 * sqfts.c); NULL, or KNYTT_ENOTSUP at run time, means the generic
	 * SQL (Q_SEARCH).  @p match is the dialect's query text. */
	int (*search)(knytt__db *db, uint64_t tenant,
		      const struct knytt__search *q, uint64_t *ids,
		      double *scores, size_t cap);
	/* The bulk-import lock: with @p take, tries to take it (1 = taken,
	 * 0 = another connection holds it, < 0 = error); without, releases
	 * it.  It ends with the connection or the process, even on kill -9,
	 * so a bulk import that died no longer holds it. */
	int (*bulk_lock)(knytt__db *db, int take);
	void (*close)(knytt__db *db);
	/* How long a statement waits for a lock another connection holds
	 * before failing with KNYTT_EBUSY (knytt_store_set_busy_timeout). */
	int (*set_busy)(knytt__db *db, int ms);
} knytt__dbops;

struct knytt__db {
	const knytt__dbops *ops;
	knytt_store *st; /* back pointer, for the statement cache */
};

int knytt__sqlite_open(const char *path, knytt__db **out);
int knytt__pg_open(const char *conninfo, knytt__db **out);
/* The libpq connection of a PostgreSQL handle, else NULL (pgnotify.c;
 * declared with libpq's struct tag so store_int.h needs no libpq
 * header). */
struct pg_conn;
struct pg_conn *knytt__pg_conn(knytt__db *db);
/* Rows scored and item rows read by the last SQLite search (-1 when the
 * SQL path ran), for tests of the pruning. */
void knytt__sqlite_search_stats(knytt__db *db, long long *scored,
				long long *read);
/* knytt_store_search_fn for a caller whose @p accept is true exactly
 * for the current tenant's live items that pass its filters (the
 * engine's item table): SQLite then reads no item row for the tenant,
 * deletion and filter checks. */
int knytt__store_search_owned(knytt_store *st, const char *query,
			      knytt_accept_fn accept, void *ctx,
			      uint64_t *ids, double *scores, size_t cap);
void knytt__store_search_stats(knytt_store *st, long long *scored,
				long long *read);
/* SQLite files: checkpoint the WAL from a background thread instead of
 * in the commits of this handle (a commit that crosses the autocheckpoint
 * threshold otherwise copies and syncs ~4 MB: the latency tail of small
 * writes).  No effect on PostgreSQL or in-memory databases. */
int knytt__sqlite_bg_checkpoint(knytt__db *db, int on);
/* The background checkpoints empty the WAL once it holds this many
 * frames (2048, 8 MiB of 4 KiB pages; sqlite.c says why); tests lower
 * it. */
extern int knytt__sqlite_wal_frames_max;
/* How often the background checkpoint runs unprompted (100 ms); a commit
 * of this handle that takes the WAL past the bound wakes it at once.
 * Tests lengthen it. */
extern int knytt__sqlite_ckpt_tick_ms;
/* Before a write transaction of this handle: while its background
 * checkpoint waits to empty the WAL, waits for it (at most 100 ms), so
 * that back-to-back commits cannot keep it out (sqlite.c). */
void knytt__sqlite_ckpt_gate(knytt__db *db);
int knytt__store_bg_checkpoint(knytt_store *st, int on);
/* Bytes this connection's page cache holds now (SQLite; 0 for
 * PostgreSQL): what knytt_store_set_cache_size bounds, for tests. */
int64_t knytt__sqlite_cache_used(knytt__db *db);
int64_t knytt__store_cache_used(knytt_store *st);
/* SQLite: a number that moves whenever the connection's page cache was
 * emptied because another connection committed (seen at the start of a
 * read), and when it commits itself. */
uint32_t knytt__sqlite_data_version(knytt__db *db);
/* SQLite: the rowid of the connection's last successful INSERT. */
int64_t knytt__sqlite_last_rowid(knytt__db *db);
/* A report's reads (analytics.c, expreport.c) on a connection whose page
 * cache was set below the default: the default for their run, and the
 * setting back after, which frees what the run cached at once.  Such a
 * report seeks into the interactions once per shopper, and with knyttd's
 * 1 MiB it read the same pages from the file again and again (sqlite3
 * shell, the search report's two queries on 600k interactions and 480k
 * searches, two runs each: 1.18, 1.21 s at 8 MiB, 1.66, 1.76 s at 1 MiB,
 * the difference system time).  _widen returns the setting to restore
 * (0: nothing was changed). */
int64_t knytt__st_cache_widen(knytt_store *st);
void knytt__st_cache_restore(knytt_store *st, int64_t was);
/* 1 if another knytt_store_open of the same URI reaches the same data
 * (PostgreSQL, a SQLite file), 0 for an in-memory or temporary SQLite
 * database, which exists in this one connection only. */
int knytt__store_shareable(knytt_store *st);
int knytt__sqlite_shareable(knytt__db *db);

/* Statement ids of the cache (store.c owns the SQL). */
enum knytt__sid {
	Q_TENANT_INS, Q_TENANT_FIND, Q_TENANT_GET,
	Q_KEY_INS, Q_KEY_FIND, Q_KEY_REVOKE,
	Q_ITEM_UPSERT, Q_ITEM_ID, Q_ITEM_GET, Q_ITEM_GET_ID, Q_ITEM_DEL,
	Q_ITEM_CHANGED, Q_ITEM_COUNT, Q_SEARCH, Q_SEARCH_TITLE,
	Q_USER_UPSERT, Q_USER_ID, Q_USER_GET, Q_USER_ENSURE, Q_USER_COUNT,
	Q_IX_INS, Q_IX_USER, Q_IX_USER_ALL, Q_IX_USER_EVENTS, Q_IX_ITEM, Q_IX_SINCE, Q_IX_COUNT, Q_IX_COUNTS,
	Q_IX_MARK, Q_IX_AFTER_N, Q_IX_AFTER,
	Q_IX_COUNTS_T,
	Q_FAV_SET, Q_FAV_UNSET, Q_FAV_LIST,
	Q_SLOG_INS, Q_SLOG_CLICK, Q_SLOG_GET,
	Q_EMB_PUT, Q_EMB_GET, Q_EMB_EACH, Q_EMB_CHANGED, Q_EMB_OWNER_ITEM, Q_EMB_OWNER_USER,
	Q_MODEL_MAX, Q_MODEL_INS, Q_MODEL_GET, Q_MODEL_LATEST,
	Q_MODEL_HEAD, Q_MODEL_HEAD_LATEST,
	/* experiments (experiment.c owns their SQL: knytt__exp_sql) */
	Q_EXP_INS, Q_EXP_VAR_INS, Q_EXP_GET, Q_EXP_VARS, Q_EXP_LIST,
	Q_EXP_STOP, Q_EXP_SHARE, Q_EXP_ASSIGN_GET, Q_EXP_ASSIGN_INS,
	Q_EXP_EXPOSE,
	Q__COUNT
};

struct knytt_store {
	knytt__db *db;
	const knytt__dbops *ops;
	knytt__stmt *stmt[Q__COUNT];
	uint64_t tenant; /* 0 = none selected */
	int schema_version;
	size_t batch_rows;
	int in_txn; /* an explicit transaction is open */
	int bulk;   /* a bulk import runs on this handle: indexes dropped */
	int search_plain; /* tests: rank every match in plain SQL */
	char *location; /* SQLite: the database file; PostgreSQL: the server
			   part of the URI (no credentials); NULL: memory
			   (location.c) */
	int64_t future_tol_ms; /* interactions later than the wall clock
				  plus this are refused (knytt__ts_check);
				  the engine sets its own tolerance */
	size_t bulk_min; /* interaction imports of more rows run in bulk
			    mode (importw.c); tests lower it */
	int64_t bulk_removed; /* repeated events the last index build
				 removed (schema.c) */
	knytt_import_report last_import; /* of the last knytt_store_import */
	void *ix_page;	  /* interactions.c: the page ix_scan reads into,
			     kept from the first scan to the close */
	int ix_page_busy; /* a scan is reading into ix_page */
};

/* The cached statement @p id, prepared on first use and reset. */
knytt__stmt *knytt__st_q(knytt_store *st, int id);
int knytt__st_begin(knytt_store *st);
int knytt__st_commit(knytt_store *st);
void knytt__st_rollback(knytt_store *st);
int knytt__migrate(knytt_store *st);
/* Runs @p sql for its effect only (a clean-up, a setting, a best-effort
 * step), keeping the calling thread's message of an earlier failure. */
int knytt__exec_keep(knytt_store *st, const char *sql);
/* Reads of this SQLite connection through a memory map of the file (@p
 * on 1; 0: into its page cache, as a fresh connection reads): for a
 * connection that makes the writes of its process (the engine's), or
 * one whose reads rarely follow another's commit (rdpool.c), as SQLite
 * drops the map of a connection another one has written behind
 * (sqlite.c).  A no-op on PostgreSQL. */
int knytt__store_set_mapped(knytt_store *st, int on);
/* The connection's data version (knytt__sqlite_data_version); 0 on
 * PostgreSQL, which has none (it never moves). */
uint32_t knytt__store_data_version(knytt_store *st);
/* A one-row "RETURNING id" statement stepped to its end (store.c):
 * *row 1 when it gave a row, its id in *id (may be NULL); 0 or error. */
int knytt__st_step_id(knytt_store *st, knytt__stmt *q, int *row,
		      uint64_t *id);
/* Reads the integer a one-row query such as "PRAGMA cache_size"
 * returns; leaves *v as it was on failure. */
void knytt__pragma_i64(knytt_store *st, const char *sql, int64_t *v);

/* The secondary indexes of interactions (schema.c).  Bulk imports drop
 * them and build them again at the end, which is about three times
 * cheaper than updating them row by row. */
int knytt__ix_indexes_missing(knytt_store *st); /* count, or < 0 */
int knytt__ix_indexes_drop(knytt_store *st);
/* Builds the missing ones, first removing rows whose (tenant, event id)
 * repeats an earlier row's, which the unique index would have refused. */
int knytt__ix_indexes_build(knytt_store *st);
/* At open: rebuilds indexes a killed bulk import left dropped, unless a
 * live bulk import holds the lock. */
int knytt__ix_recover(knytt_store *st);

/* Validation helpers (import.c uses them too).  Each returns 0 or
 * KNYTT_EINVAL with a message naming @p field. */
int knytt__check_text(const char *field, const char *s, size_t maxlen,
		      int required);
int knytt__check_json_obj(const char *field, const char *s);
/* The checks knytt_store_search_log makes of its text arguments (@p user
 * may be NULL), for callers that write the entry later. */
int knytt__search_log_check(const char *query, const char *user);
int knytt__utf8_valid(const char *s, size_t n);

/* Resolves ids of the selected tenant: 0 / KNYTT_ENOTFOUND / error. */
int knytt__item_id(knytt_store *st, const char *ext, uint64_t *id);
int knytt__user_ensure(knytt_store *st, const char *ext, uint64_t *id);
/* Validates user id @p ext and creates the user if unknown, keeping an
 * existing user's attributes (a user import without that column). */
int knytt__user_ensure_checked(knytt_store *st, const char *ext);
/* Validates one interaction into @p row (no insert); with @p resolve,
 * also looks the item up and creates the user if needed. */
int knytt__ix_prepare(knytt_store *st, const knytt_interaction *ix,
		      knytt__ixrow *row, int resolve);
/* Columns an item update may keep (the bits of the upsert's ?13). */
enum knytt__keep {
	KNYTT__KEEP_TITLE = 1, KNYTT__KEEP_DESCRIPTION = 2,
	KNYTT__KEEP_CATEGORY = 4, KNYTT__KEEP_PRICE = 8,
	KNYTT__KEEP_CURRENCY = 16, KNYTT__KEEP_IN_STOCK = 32,
	KNYTT__KEEP_QUALITY = 64, KNYTT__KEEP_IMAGE_URL = 128,
	KNYTT__KEEP_ATTRIBUTES = 256
};
/* Validates and upserts an item (no tenant check).  When the item
 * exists, the columns named in @p keep (KNYTT__KEEP_* bits) keep their
 * stored values: an import file without those columns. */
int knytt__item_upsert_checked(knytt_store *st, const knytt_item *in,
			       unsigned keep, uint64_t *id);
/* Marks the favorites of the "favorite" rows among @p rows (ids
 * resolved), dated by the event: the interaction type and the favorites
 * list say the same thing, whichever path stored the event. */
int knytt__ix_favorites(knytt_store *st, const knytt__ixrow *rows, size_t n);
/* knytt_store_interaction_add's insert inside the caller's transaction
 * (the tenant checked): 1 stored, 0 a repeated event id, or an error,
 * after which the caller rolls back. */
int knytt__ix_add_txn(knytt_store *st, const knytt_interaction *ix);
/* Files beside the database (location.c).  remember_location: at open.
 * index_dir: the folder and the file-name prefix (followed by the model
 * version and ".index") of the selected tenant's index files, the folder
 * created with @p create; index_path: the file of one model version.
 * KNYTT_ENOTSUP for an in-memory store.  Strings: free(). */
int knytt__remember_location(knytt_store *st, const char *uri);
int knytt__store_index_dir(knytt_store *st, int create, char **dir,
			   char **prefix);
int knytt__store_index_path(knytt_store *st, int64_t version, int create,
			    char **out);

/* Deletes the versions of model @p name below @p below and the item
 * embeddings whose version is @p emb_prefix followed by the number of a
 * version no longer stored (retention.c); emb_prefix may be NULL. */
int knytt__model_prune(knytt_store *st, const char *name, int64_t below,
		       const char *emb_prefix);

/* Calls @p fn for every embedding of @p owner and @p version written at
 * or after @p since_ms (embeddings.updated, the writer's wall clock), in
 * (updated, id) order, with the time it was written; the vectors are
 * copies, so @p fn may use the store (blobs.c).  Returns the count. */
typedef int (*knytt__emb_changed_fn)(uint64_t id, const float *vec,
				     uint32_t dim, int64_t updated_ms,
				     void *ctx);
int knytt__embeddings_changed(knytt_store *st, knytt_owner owner,
			      const char *version, int64_t since_ms,
			      knytt__emb_changed_fn fn, void *ctx);

/* Every interaction from @p since_ms on, in (ts, id) order, with only
 * id, item_id, type, weight, value and ts_ms filled (no external ids);
 * @p fn must not use the store (ixstream.c).  Returns the count. */
int knytt__ix_stream(knytt_store *st, int64_t since_ms,
		     knytt_interaction_fn fn, void *ctx);

/* Shared by the store's files (store.c): the selected tenant or
 * KNYTT_ESTATE; step a statement expecting at most one row (*row = 1 if
 * one); an external id's check; a copy of a string (NULL stays NULL); the
 * tenant's row count of count query qid; an id by external id (lookup:
 * ENOTFOUND silently; id_of: naming @p what); a user's id. */
int knytt__st_need_tenant(const knytt_store *st);
int knytt__st_step_one(knytt_store *st, knytt__stmt *q, int *row);
int knytt__st_check_id(const char *field, const char *s);
char *knytt__st_dupstr(const char *s);
int64_t knytt__st_count_q(knytt_store *st, int qid);
int knytt__st_lookup_id(knytt_store *st, int qid, const char *ext,
			uint64_t *id);
int knytt__st_id_of(knytt_store *st, int qid, const char *what,
		    const char *ext, uint64_t *id);
int knytt__st_user_id(knytt_store *st, const char *ext, uint64_t *id);
/* knytt_store_user_history without the ext ids: each record's user and
 * item are "" and event_id NULL (ids, item_id, type, weight, value and
 * time as there), same order, same errors.  For the engine's profile
 * loads, which need none of them (interactions.c says why). */
int knytt__store_user_events(knytt_store *st, const char *user,
			     knytt_interaction_fn fn, void *ctx);

/* Rows per page when the store walks a table in pages. */
#define KNYTT__STORE_PAGE 512

/* ---- analytics and experiments ---------------------------------------- */
/* The SQL of the experiment statements (Q_EXP_*), both dialects. */
const char *knytt__exp_sql(int id);
/* knytt_store_search_log with the results shown (@p shown: space-separated
 * store ids, best first; NULL = not known). */
int knytt__search_log_ins(knytt_store *st, const char *query,
			  const char *user, int result_count, int64_t ts_ms,
			  const char *shown, uint64_t *log_id);
/* Writes up to 20 ids of @p ids as knytt__search_log_ins wants them into
 * @p buf (cap >= 21 * 21); returns buf. */
char *knytt__shown_text(const uint64_t *ids, size_t n, size_t stride,
			char *buf, size_t cap);
#define KNYTT__SHOWN_CAP (20 * 21 + 1)
/* Every search log entry with words (vector searches left out), in the
 * order written (slogread.c): its text, the shopper's store id (0 =
 * anonymous), time (ms) and the item clicked explicitly (0 = none).
 * @p fn returns non-zero to stop (KNYTT_ECANCELED).  Returns the count. */
typedef int (*knytt__slog_fn)(const char *query, uint64_t user, int64_t ts,
			      uint64_t clicked, void *ctx);
int knytt__search_log_each(knytt_store *st, knytt__slog_fn fn, void *ctx);

#endif
