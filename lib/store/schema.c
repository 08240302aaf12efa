/*
 * schema.c -- numbered schema migrations, one SQL script per dialect.
 *
 * Migration N brings the schema from version N-1 to N.  On open, all
 * missing migrations run inside one transaction (with the writer lock
 * taken first: BEGIN IMMEDIATE in SQLite, an advisory lock in
 * PostgreSQL, so two processes opening a new database at once do not
 * both migrate) and each is recorded in knytt_schema.  A database whose
 * recorded version is above the last migration known here was written by
 * a newer libknytt: it is refused rather than misread.
 *
 * Rules for new migrations: never edit a released one; append.
 */
#include "store_int.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* The columns of the interactions_user index since migration 9. */
#define IX_USER_COLS "user_id, ts, id, tenant, item_id, type, weight, value"

typedef struct migration {
	int version;
	const char *sqlite;
	const char *pg;
} migration;

/*
 * Version 1.  Notes on the choices:
 *  - ids are AUTOINCREMENT / identity columns, global across tenants and
 *    never reused, so they can label vectors in an index for good;
 *  - items_fts is an external-content FTS5 table kept in step by
 *    triggers; the unicode61 tokenizer splits "shoes/running" into two
 *    words.  PostgreSQL gets the same effect by mapping '/' to ' ' before
 *    to_tsvector('simple', ...), whose parser would otherwise keep a path
 *    as one token;
 *  - the GIN index keeps a small pending list (256 kB instead of 4 MB):
 *    new entries wait there and every search scans it linearly (a full
 *    4 MB list added 7.5 ms to each query after a 100k-item import),
 *    while turning the list off cut item imports 4x.  Item imports
 *    merge the list when they end (gin_clean_pending_list);
 *  - interactions are indexed by (tenant, ts, id) for streaming and time
 *    windows, by user and by item for the recent-N queries, and by a
 *    partial unique index on the client event id for deduplication.
 */
static const migration migrations[] = {
	{1,
	 "CREATE TABLE tenants(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	 " name TEXT NOT NULL UNIQUE, created INTEGER NOT NULL);"
	 "CREATE TABLE api_keys(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	 " tenant INTEGER NOT NULL, hash BLOB NOT NULL UNIQUE,"
	 " scope INTEGER NOT NULL, created INTEGER NOT NULL,"
	 " revoked INTEGER);"
	 "CREATE TABLE items(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	 " tenant INTEGER NOT NULL, ext_id TEXT NOT NULL, title TEXT,"
	 " description TEXT, category TEXT, price REAL NOT NULL DEFAULT 0,"
	 " currency TEXT, in_stock INTEGER NOT NULL DEFAULT 1,"
	 " quality REAL NOT NULL DEFAULT 0, image_url TEXT, attributes TEXT,"
	 " created INTEGER NOT NULL, updated INTEGER NOT NULL,"
	 " deleted INTEGER NOT NULL DEFAULT 0, UNIQUE(tenant, ext_id));"
	 "CREATE INDEX items_updated ON items(tenant, updated, id);"
	 "CREATE VIRTUAL TABLE items_fts USING fts5(title, description,"
	 " category, content='items', content_rowid='id',"
	 " tokenize='unicode61 remove_diacritics 2');"
	 "CREATE TRIGGER items_fts_ai AFTER INSERT ON items BEGIN"
	 " INSERT INTO items_fts(rowid, title, description, category)"
	 " VALUES (new.id, new.title, new.description, new.category); END;"
	 "CREATE TRIGGER items_fts_ad AFTER DELETE ON items BEGIN"
	 " INSERT INTO items_fts(items_fts, rowid, title, description,"
	 " category) VALUES ('delete', old.id, old.title, old.description,"
	 " old.category); END;"
	 "CREATE TRIGGER items_fts_au AFTER UPDATE OF title, description,"
	 " category ON items BEGIN"
	 " INSERT INTO items_fts(items_fts, rowid, title, description,"
	 " category) VALUES ('delete', old.id, old.title, old.description,"
	 " old.category);"
	 " INSERT INTO items_fts(rowid, title, description, category)"
	 " VALUES (new.id, new.title, new.description, new.category); END;"
	 "CREATE TABLE users(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	 " tenant INTEGER NOT NULL, ext_id TEXT NOT NULL, attributes TEXT,"
	 " created INTEGER NOT NULL, UNIQUE(tenant, ext_id));"
	 "CREATE TABLE interactions(id INTEGER PRIMARY KEY,"
	 " tenant INTEGER NOT NULL, user_id INTEGER NOT NULL,"
	 " item_id INTEGER NOT NULL, type TEXT NOT NULL,"
	 " weight REAL NOT NULL, value REAL, ts INTEGER NOT NULL,"
	 " event_id TEXT);"
	 "CREATE INDEX interactions_ts ON interactions(tenant, ts);"
	 "CREATE INDEX interactions_user ON interactions(user_id, ts);"
	 "CREATE INDEX interactions_item ON interactions(item_id, ts);"
	 "CREATE UNIQUE INDEX interactions_event ON interactions(tenant,"
	 " event_id) WHERE event_id IS NOT NULL;"
	 "CREATE TABLE favorites(tenant INTEGER NOT NULL,"
	 " user_id INTEGER NOT NULL, item_id INTEGER NOT NULL,"
	 " created INTEGER NOT NULL, PRIMARY KEY(tenant, user_id, item_id))"
	 " WITHOUT ROWID;"
	 "CREATE TABLE search_log(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	 " tenant INTEGER NOT NULL, query TEXT NOT NULL, user_id INTEGER,"
	 " result_count INTEGER NOT NULL, ts INTEGER NOT NULL,"
	 " clicked_item INTEGER);"
	 "CREATE TABLE embeddings(tenant INTEGER NOT NULL,"
	 " owner INTEGER NOT NULL, version TEXT NOT NULL,"
	 " owner_id INTEGER NOT NULL, dim INTEGER NOT NULL,"
	 " vec BLOB NOT NULL, PRIMARY KEY(tenant, owner, version, owner_id))"
	 " WITHOUT ROWID;"
	 "CREATE TABLE models(tenant INTEGER NOT NULL, name TEXT NOT NULL,"
	 " version INTEGER NOT NULL, blob BLOB NOT NULL, meta TEXT,"
	 " created INTEGER NOT NULL, PRIMARY KEY(tenant, name, version));",

	 "CREATE TABLE tenants(id BIGINT GENERATED BY DEFAULT AS IDENTITY"
	 " PRIMARY KEY, name TEXT NOT NULL UNIQUE, created BIGINT NOT NULL);"
	 "CREATE TABLE api_keys(id BIGINT GENERATED BY DEFAULT AS IDENTITY"
	 " PRIMARY KEY, tenant BIGINT NOT NULL, hash BYTEA NOT NULL UNIQUE,"
	 " scope INTEGER NOT NULL, created BIGINT NOT NULL, revoked BIGINT);"
	 "CREATE TABLE items(id BIGINT GENERATED BY DEFAULT AS IDENTITY"
	 " PRIMARY KEY, tenant BIGINT NOT NULL, ext_id TEXT NOT NULL,"
	 " title TEXT, description TEXT, category TEXT,"
	 " price DOUBLE PRECISION NOT NULL DEFAULT 0, currency TEXT,"
	 " in_stock INTEGER NOT NULL DEFAULT 1,"
	 " quality DOUBLE PRECISION NOT NULL DEFAULT 0, image_url TEXT,"
	 " attributes TEXT, created BIGINT NOT NULL, updated BIGINT NOT NULL,"
	 " deleted INTEGER NOT NULL DEFAULT 0,"
	 " tsv tsvector GENERATED ALWAYS AS ("
	 "setweight(to_tsvector('simple', translate(coalesce(title, ''),"
	 " '/', ' ')), 'A') || "
	 "setweight(to_tsvector('simple', translate(coalesce(category, ''),"
	 " '/', ' ')), 'B') || "
	 "setweight(to_tsvector('simple', translate(coalesce(description,"
	 " ''), '/', ' ')), 'D')) STORED,"
	 " UNIQUE(tenant, ext_id));"
	 "CREATE INDEX items_updated ON items(tenant, updated, id);"
	 "CREATE INDEX items_tsv ON items USING GIN (tsv) WITH"
	 " (gin_pending_list_limit = 256);"
	 "CREATE TABLE users(id BIGINT GENERATED BY DEFAULT AS IDENTITY"
	 " PRIMARY KEY, tenant BIGINT NOT NULL, ext_id TEXT NOT NULL,"
	 " attributes TEXT, created BIGINT NOT NULL, UNIQUE(tenant, ext_id));"
	 "CREATE TABLE interactions(id BIGINT GENERATED BY DEFAULT AS"
	 " IDENTITY PRIMARY KEY, tenant BIGINT NOT NULL,"
	 " user_id BIGINT NOT NULL, item_id BIGINT NOT NULL,"
	 " type TEXT NOT NULL, weight DOUBLE PRECISION NOT NULL,"
	 " value DOUBLE PRECISION, ts BIGINT NOT NULL, event_id TEXT);"
	 "CREATE INDEX interactions_ts ON interactions(tenant, ts);"
	 "CREATE INDEX interactions_user ON interactions(user_id, ts);"
	 "CREATE INDEX interactions_item ON interactions(item_id, ts);"
	 "CREATE UNIQUE INDEX interactions_event ON interactions(tenant,"
	 " event_id) WHERE event_id IS NOT NULL;"
	 "CREATE TABLE favorites(tenant BIGINT NOT NULL,"
	 " user_id BIGINT NOT NULL, item_id BIGINT NOT NULL,"
	 " created BIGINT NOT NULL, PRIMARY KEY(tenant, user_id, item_id));"
	 "CREATE TABLE search_log(id BIGINT GENERATED BY DEFAULT AS IDENTITY"
	 " PRIMARY KEY, tenant BIGINT NOT NULL, query TEXT NOT NULL,"
	 " user_id BIGINT, result_count INTEGER NOT NULL, ts BIGINT NOT NULL,"
	 " clicked_item BIGINT);"
	 "CREATE TABLE embeddings(tenant BIGINT NOT NULL,"
	 " owner INTEGER NOT NULL, version TEXT NOT NULL,"
	 " owner_id BIGINT NOT NULL, dim INTEGER NOT NULL,"
	 " vec BYTEA NOT NULL, PRIMARY KEY(tenant, owner, version, owner_id));"
	 "CREATE TABLE models(tenant BIGINT NOT NULL, name TEXT NOT NULL,"
	 " version BIGINT NOT NULL, blob BYTEA NOT NULL, meta TEXT,"
	 " created BIGINT NOT NULL, PRIMARY KEY(tenant, name, version));"},
	/* Version 2: PostgreSQL indexes the title words alone, for one-word
	 * searches (store.c, sql_search_pg_title); nothing in SQLite. */
	{2, "SELECT 1",
	 "CREATE INDEX items_title_tsv ON items USING GIN (to_tsvector("
	 "'simple', translate(coalesce(title, ''), '/', ' '))) WITH "
	 "(gin_pending_list_limit = 256);"},
	/* Version 3: SQLite logs the items whose indexed text changed, so
	 * a connection may keep their token counts in memory (sqfts.c) and
	 * forget exactly those; the newest 64k entries are kept.  Nothing
	 * in PostgreSQL. */
	{3,
	 "CREATE TABLE knytt_fts_log(seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	 " id INTEGER NOT NULL);"
	 "CREATE TRIGGER knytt_fts_log_ai AFTER INSERT ON items BEGIN"
	 " INSERT INTO knytt_fts_log(id) VALUES (new.id); END;"
	 "CREATE TRIGGER knytt_fts_log_ad AFTER DELETE ON items BEGIN"
	 " INSERT INTO knytt_fts_log(id) VALUES (old.id); END;"
	 "CREATE TRIGGER knytt_fts_log_au AFTER UPDATE OF title, description,"
	 " category ON items BEGIN"
	 " INSERT INTO knytt_fts_log(id) VALUES (new.id); END;"
	 "CREATE TRIGGER knytt_fts_log_trim AFTER INSERT ON knytt_fts_log"
	 " WHEN new.seq % 4096 = 0 BEGIN"
	 " DELETE FROM knytt_fts_log WHERE seq <= new.seq - 65536; END;",
	 "SELECT 1"},
	/* Version 4: the event-id index puts event_id first.  Uniqueness
	 * and lookups by (tenant, event_id) are the same, but with the
	 * constant tenant first every comparison of SQLite's sorter fell
	 * through to the second column: building it over the store
	 * benchmark's 2M interactions took 1.8-2.0 s against 1.3-1.5 s
	 * (sqlite3 shell, .timer on, cache_size -4096, on a copy of the
	 * database).  The old index is only dropped here; the open that
	 * follows builds the new one like any missing interaction index
	 * (knytt__ix_recover), which also copes with the repeated events
	 * a killed bulk import may have left. */
	{4, "DROP INDEX IF EXISTS interactions_event",
	 "DROP INDEX IF EXISTS interactions_event"},
	/* Version 5 (auth.c): shoppers' password hashes, per tenant and
	 * user, and named secrets of the services (knyttd's token key), so
	 * that several knyttd processes on one PostgreSQL database verify
	 * each other's tokens.  The hash is an opaque PHC string: the store
	 * never sees a password. */
	{5,
	 "CREATE TABLE IF NOT EXISTS shopper_auth(tenant INTEGER NOT NULL,"
	 " user_id INTEGER NOT NULL, hash TEXT NOT NULL,"
	 " updated INTEGER NOT NULL, PRIMARY KEY(tenant, user_id));"
	 "CREATE TABLE IF NOT EXISTS service_secrets(name TEXT PRIMARY KEY,"
	 " value BLOB NOT NULL, created INTEGER NOT NULL);",
	 "CREATE TABLE IF NOT EXISTS shopper_auth(tenant BIGINT NOT NULL,"
	 " user_id BIGINT NOT NULL, hash TEXT NOT NULL,"
	 " updated BIGINT NOT NULL, PRIMARY KEY(tenant, user_id));"
	 "CREATE TABLE IF NOT EXISTS service_secrets(name TEXT PRIMARY KEY,"
	 " value BYTEA NOT NULL, created BIGINT NOT NULL);"},
	/* Version 6 (analytics.c, experiment.c): the search log keeps the
	 * ids of the results shown (space-separated store ids, best first)
	 * so a later click can be given its rank, and is indexed by time
	 * for reports; experiments, their variants, the sticky assignment
	 * of each shopper and the exposures.  Outcomes are not stored
	 * twice: they are the interactions that follow an exposure. */
	{6,
	 "ALTER TABLE search_log ADD COLUMN shown TEXT;"
	 "CREATE INDEX search_log_ts ON search_log(tenant, ts);"
	 "CREATE TABLE experiments(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	 " tenant INTEGER NOT NULL, name TEXT NOT NULL,"
	 " start_ts INTEGER NOT NULL, end_ts INTEGER NOT NULL,"
	 " window_ms INTEGER NOT NULL, stopped INTEGER NOT NULL DEFAULT 0,"
	 " created INTEGER NOT NULL, UNIQUE(tenant, name));"
	 "CREATE TABLE experiment_variants(experiment INTEGER NOT NULL,"
	 " idx INTEGER NOT NULL, name TEXT NOT NULL, share REAL NOT NULL,"
	 " model TEXT NOT NULL, mmr_lambda REAL NOT NULL,"
	 " exclude_seen INTEGER NOT NULL, PRIMARY KEY(experiment, idx));"
	 "CREATE TABLE experiment_assign(experiment INTEGER NOT NULL,"
	 " user_id INTEGER NOT NULL, variant INTEGER NOT NULL,"
	 " ts INTEGER NOT NULL, PRIMARY KEY(experiment, user_id));"
	 "CREATE TABLE experiment_exposures(id INTEGER PRIMARY KEY"
	 " AUTOINCREMENT, experiment INTEGER NOT NULL,"
	 " variant INTEGER NOT NULL, user_id INTEGER NOT NULL,"
	 " surface TEXT NOT NULL, shown TEXT NOT NULL, ts INTEGER NOT NULL);"
	 "CREATE INDEX experiment_exposures_user ON experiment_exposures("
	 "experiment, user_id, ts);",
	 "ALTER TABLE search_log ADD COLUMN shown TEXT;"
	 "CREATE INDEX search_log_ts ON search_log(tenant, ts);"
	 "CREATE TABLE experiments(id BIGINT GENERATED BY DEFAULT AS"
	 " IDENTITY PRIMARY KEY, tenant BIGINT NOT NULL, name TEXT NOT NULL,"
	 " start_ts BIGINT NOT NULL, end_ts BIGINT NOT NULL,"
	 " window_ms BIGINT NOT NULL, stopped BIGINT NOT NULL DEFAULT 0,"
	 " created BIGINT NOT NULL, UNIQUE(tenant, name));"
	 "CREATE TABLE experiment_variants(experiment BIGINT NOT NULL,"
	 " idx INTEGER NOT NULL, name TEXT NOT NULL,"
	 " share DOUBLE PRECISION NOT NULL, model TEXT NOT NULL,"
	 " mmr_lambda DOUBLE PRECISION NOT NULL,"
	 " exclude_seen INTEGER NOT NULL, PRIMARY KEY(experiment, idx));"
	 "CREATE TABLE experiment_assign(experiment BIGINT NOT NULL,"
	 " user_id BIGINT NOT NULL, variant INTEGER NOT NULL,"
	 " ts BIGINT NOT NULL, PRIMARY KEY(experiment, user_id));"
	 "CREATE TABLE experiment_exposures(id BIGINT GENERATED BY DEFAULT"
	 " AS IDENTITY PRIMARY KEY, experiment BIGINT NOT NULL,"
	 " variant INTEGER NOT NULL, user_id BIGINT NOT NULL,"
	 " surface TEXT NOT NULL, shown TEXT NOT NULL, ts BIGINT NOT NULL);"
	 "CREATE INDEX experiment_exposures_user ON experiment_exposures("
	 "experiment, user_id, ts);"},
	/* Version 7 (blobs.c): embeddings carry the time they were last
	 * written, indexed, so a replica on the same PostgreSQL database
	 * reads the vectors changed since its last look in one query
	 * (knytt_engine_sync): an item re-sent with a new vector and the
	 * same catalog fields leaves items.updated where it was.  Rows
	 * written before count as written at time 0. */
	{7,
	 "ALTER TABLE embeddings ADD COLUMN updated INTEGER NOT NULL"
	 " DEFAULT 0;"
	 "CREATE INDEX embeddings_updated ON embeddings(tenant, owner,"
	 " version, updated, owner_id);",
	 "ALTER TABLE embeddings ADD COLUMN updated BIGINT NOT NULL"
	 " DEFAULT 0;"
	 "CREATE INDEX embeddings_updated ON embeddings(tenant, owner,"
	 " version, updated, owner_id);"},
	/* Version 8 (jobs.c): background jobs of a tenant (knyttd's
	 * training jobs), so that a job's record outlives the process that
	 * ran it and every replica reads it.  A tenant has a handful of jobs
	 * a day: the primary key is the only index. */
	{8,
	 "CREATE TABLE jobs(tenant INTEGER NOT NULL, id TEXT NOT NULL,"
	 " state INTEGER NOT NULL, created INTEGER NOT NULL,"
	 " started INTEGER NOT NULL, finished INTEGER NOT NULL,"
	 " progress REAL NOT NULL, metrics TEXT, error TEXT,"
	 " updated INTEGER NOT NULL, PRIMARY KEY(tenant, id));",
	 "CREATE TABLE jobs(tenant BIGINT NOT NULL, id TEXT NOT NULL,"
	 " state INTEGER NOT NULL, created BIGINT NOT NULL,"
	 " started BIGINT NOT NULL, finished BIGINT NOT NULL,"
	 " progress DOUBLE PRECISION NOT NULL, metrics TEXT, error TEXT,"
	 " updated BIGINT NOT NULL, PRIMARY KEY(tenant, id));"},
	/* Version 9 (interactions.c, knytt__store_user_events): the index by
	 * user covers what a profile load reads, so the load walks one
	 * contiguous run of index entries instead of seeking the table row
	 * of every event (a shopper's feedback rows lie scattered through
	 * the table, one page each).  In-process on the soak's database
	 * (2,000 shoppers of about 208 events), a profile load took 450 us
	 * with the old index and 155 us with this one; the index grows by
	 * about 35 bytes an event.  id follows ts, so the (ts, id) order of
	 * the history needs no sort.  The name stays: it serves every query
	 * the old (user_id, ts) index served. */
	{9,
	 "DROP INDEX IF EXISTS interactions_user;"
	 "CREATE INDEX interactions_user ON interactions(" IX_USER_COLS ");",
	 "DROP INDEX IF EXISTS interactions_user;"
	 "CREATE INDEX interactions_user ON interactions(" IX_USER_COLS ");"},
};

#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))


/* The recorded schema version, read without a write lock: 0 when the
 * table is missing or the read fails (the locked path then decides). */
static int version_now(knytt_store *st)
{
	const knytt__dbops *o = st->ops;
	knytt__stmt *q;
	int v = 0;
	if (o->dialect == KNYTT__PG)
		return 0; /* its advisory lock blocks no reader or writer */
	knytt__errsave saved;
	knytt__err_save(&saved);
	if (o->prepare(st->db, "SELECT MAX(version) FROM knytt_schema",
		       &q) == 0) {
		if (o->step(q) == 1)
			v = (int)o->col_i64(q, 0);
		o->finalize(q);
	}
	knytt__err_restore(0, &saved);
	return v;
}

int knytt__migrate(knytt_store *st)
{
	const knytt__dbops *o = st->ops;
	knytt__db *db = st->db;
	int pg = o->dialect == KNYTT__PG;
	/* Every open came here, and in SQLite took the write lock to look
	 * at the version: while imports held it, a mere read of the store
	 * failed with "database is locked".  An up-to-date schema needs no
	 * lock. */
	int now = version_now(st);
	if (now == migrations[NMIGRATIONS - 1].version) {
		st->schema_version = now;
		return 0;
	}
	int rc = o->exec(db, "CREATE TABLE IF NOT EXISTS knytt_schema("
			     "version INTEGER PRIMARY KEY, applied BIGINT NOT "
			     "NULL)");
	if (rc)
		return rc;
	rc = o->exec(db, pg ? "BEGIN; SELECT pg_advisory_xact_lock(7746011)"
			    : "BEGIN IMMEDIATE");
	if (rc)
		return rc;
	knytt__stmt *q;
	rc = o->prepare(db, "SELECT MAX(version) FROM knytt_schema", &q);
	if (rc)
		goto fail;
	int cur = 0;
	rc = o->step(q);
	if (rc == 1)
		cur = (int)o->col_i64(q, 0);
	o->finalize(q);
	if (rc < 0)
		goto fail;
	if (cur > migrations[NMIGRATIONS - 1].version) {
		rc = knytt__err(KNYTT_EVERSION,
				"the database schema is version %d, newer "
				"than this libknytt %s knows (%d): upgrade "
				"libknytt",
				cur, KNYTT_VERSION_STRING,
				migrations[NMIGRATIONS - 1].version);
		goto fail;
	}
	for (int i = 0; i < NMIGRATIONS; i++) {
		const migration *m = &migrations[i];
		if (m->version <= cur)
			continue;
		rc = o->exec(db, pg ? m->pg : m->sqlite);
		if (rc)
			goto fail;
		char sql[128];
		snprintf(sql, sizeof sql,
			 "INSERT INTO knytt_schema(version, applied) "
			 "VALUES (%d, %lld)",
			 m->version, (long long)knytt__now_ms());
		rc = o->exec(db, sql);
		if (rc)
			goto fail;
		cur = m->version;
	}
	rc = o->exec(db, "COMMIT");
	if (rc)
		goto fail;
	st->schema_version = cur;
	return 0;
fail:
	knytt__exec_keep(st, "ROLLBACK"); /* the first failure's message */
	return rc;
}

/* ---- the interaction indexes, for bulk imports ---------------------------
 * Definitions as migrations 1, 4 and 9 made them; both dialects accept
 * the text. */

static const char *const ix_index[][2] = {
	{"interactions_ts",
	 "CREATE INDEX IF NOT EXISTS interactions_ts ON interactions(tenant,"
	 " ts)"},
	{"interactions_user", /* as migration 9 left it */
	 "CREATE INDEX IF NOT EXISTS interactions_user ON interactions("
	 IX_USER_COLS ")"},
	{"interactions_item",
	 "CREATE INDEX IF NOT EXISTS interactions_item ON interactions("
	 "item_id, ts)"},
	{"interactions_event", /* as migration 4 left it */
	 "CREATE UNIQUE INDEX IF NOT EXISTS interactions_event ON "
	 "interactions(event_id, tenant) WHERE event_id IS NOT NULL"},
};

#define NIXINDEX ((int)(sizeof ix_index / sizeof ix_index[0]))

int knytt__ix_indexes_missing(knytt_store *st)
{
	const knytt__dbops *o = st->ops;
	const char *sql =
		o->dialect == KNYTT__PG
			? "SELECT indexname FROM pg_indexes WHERE schemaname = "
			  "current_schema() AND tablename = 'interactions'"
			: "SELECT name FROM sqlite_master WHERE type = 'index' "
			  "AND tbl_name = 'interactions'";
	knytt__stmt *q;
	int rc = o->prepare(st->db, sql, &q);
	if (rc)
		return rc;
	int missing = NIXINDEX;
	while ((rc = o->step(q)) == 1) {
		const char *name = o->col_text(q, 0);
		for (int i = 0; name && i < NIXINDEX; i++)
			if (strcmp(name, ix_index[i][0]) == 0)
				missing--;
	}
	o->finalize(q);
	return rc < 0 ? rc : missing;
}

/* Runs @p body inside its own transaction (the caller has none open). */
static int in_txn(knytt_store *st, int (*body)(knytt_store *st))
{
	int rc = knytt__st_begin(st);
	if (rc)
		return rc;
	if ((rc = body(st))) {
		knytt__st_rollback(st);
		return rc;
	}
	return knytt__st_commit(st);
}

static int drop_body(knytt_store *st)
{
	char sql[96];
	for (int i = 0; i < NIXINDEX; i++) {
		snprintf(sql, sizeof sql, "DROP INDEX IF EXISTS %s",
			 ix_index[i][0]);
		int rc = st->ops->exec(st->db, sql);
		if (rc)
			return rc;
	}
	return 0;
}

int knytt__ix_indexes_drop(knytt_store *st)
{
	return in_txn(st, drop_body);
}

static int build_body(knytt_store *st)
{
	const knytt__dbops *o = st->ops;
	int pg = o->dialect == KNYTT__PG, rc;
	/* sorting for the builds: PostgreSQL's default 64 MB spills 2M
	 * rows to disk */
	if (pg && (rc = o->exec(st->db, "SET LOCAL maintenance_work_mem = "
					"'512MB'")))
		return rc;
	for (int i = 0; i < NIXINDEX - 1; i++)
		if ((rc = o->exec(st->db, ix_index[i][1])))
			return rc;
	/* the unique index fails if the import stored an event twice (a
	 * re-run after a crash does): keep each event's first row, then
	 * build it again */
	const char *uniq = ix_index[NIXINDEX - 1][1];
	if (pg && (rc = o->exec(st->db, "SAVEPOINT knytt_event")))
		return rc;
	rc = o->exec(st->db, uniq);
	if (rc == 0)
		return pg ? o->exec(st->db, "RELEASE SAVEPOINT knytt_event") : 0;
	if (pg && (rc = o->exec(st->db, "ROLLBACK TO SAVEPOINT knytt_event")))
		return rc;
	knytt__stmt *q;
	if ((rc = o->prepare(st->db,
			     "DELETE FROM interactions WHERE event_id IS NOT "
			     "NULL AND id NOT IN (SELECT MIN(id) FROM "
			     "interactions WHERE event_id IS NOT NULL GROUP BY "
			     "tenant, event_id)",
			     &q)))
		return rc;
	rc = o->step(q);
	/* the import reports them as duplicates */
	st->bulk_removed += rc == 0 ? o->changes(q) : 0;
	o->finalize(q);
	if (rc < 0)
		return rc;
	return o->exec(st->db, uniq);
}

int knytt__ix_indexes_build(knytt_store *st)
{
	if (st->ops->dialect == KNYTT__PG)
		return in_txn(st, build_body);
	/* SQLite's sorter takes as much memory as the page cache: in
	 * pieces of 4 MiB, which stay in the CPU caches, the runs sort
	 * faster than in one big piece (5.3 s against 6.8 s for the four
	 * indexes at 2M rows).  Worker threads sort those pieces and merge
	 * them while this thread reads the table and writes the index: one
	 * per core besides this one.  On 2 cores, the four builds over the
	 * store benchmark's 2M rows (sqlite3 shell, .timer on: the rows
	 * copied into a fresh WAL database as a bulk import leaves them,
	 * then the four CREATE INDEX in one transaction; medians of 6 runs
	 * in mirrored order) took 7.4 s with no worker, 6.2 s with 1 and
	 * 6.3 s with 2, for 6.8, 8.9 and 9.9 s of CPU.  The connection's
	 * own settings come back after. */
	int64_t cache = -8192, threads = 0;
	knytt__pragma_i64(st, "PRAGMA cache_size", &cache);
	knytt__pragma_i64(st, "PRAGMA threads", &threads);
	unsigned cpus = knytt__ncpu();
	char sql[96];
	snprintf(sql, sizeof sql, "PRAGMA cache_size=-4096; PRAGMA threads=%u",
		 cpus > 5 ? 4 : cpus - 1);
	/* The WAL goes into the database file first (PASSIVE: a reader in
	 * the way only leaves frames behind), so the builds read the table
	 * from the mapped file rather than copy each page out of the WAL.
	 * The builds alone are no faster for it (the shell recipe above:
	 * 6.16 s median either way, the checkpoint's own time included),
	 * but whole imports are: benchmarks/store/run --backends sqlite, 4
	 * runs each in ABBA order, gen_import 215-236k rows/s (median 224k)
	 * with it against 198-210k (median 203k) without. */
	st->ops->exec(st->db, "PRAGMA wal_checkpoint(PASSIVE)");
	int rc = st->ops->exec(st->db, sql);
	if (rc == 0)
		rc = in_txn(st, build_body);
	snprintf(sql, sizeof sql, "PRAGMA cache_size=%lld; PRAGMA threads=%lld",
		 (long long)cache, (long long)threads);
	if (rc) {
		knytt__exec_keep(st, sql);
		return rc;
	}
	return st->ops->exec(st->db, sql);
}

int knytt__ix_recover(knytt_store *st)
{
	int rc = knytt__ix_indexes_missing(st);
	if (rc <= 0)
		return rc;
	rc = st->ops->bulk_lock(st->db, 1);
	if (rc <= 0)
		return rc; /* a live bulk import will build them itself */
	/* checked again under the lock: that import may just have ended */
	rc = knytt__ix_indexes_missing(st);
	if (rc > 0)
		rc = knytt__ix_indexes_build(st);
	st->ops->bulk_lock(st->db, 0);
	return rc;
}
