/*
 * store.c -- the store API over the backend vtable: the shared SQL,
 * open and close, items, users, favorites and the search log (tenants
 * and keys: tenants.c; keyword search: kwsearch.c; interactions:
 * interactions.c; embeddings and models: blobs.c).
 *
 * Every query binds the selected tenant as ?1, so no call reaches another
 * tenant's rows; ids given by the caller (item id, log id, embedding
 * owner) are always checked together with the tenant.
 */
#include "store_int.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- SQL ---------------------------------------------------------------
 * Written once for both databases (?N parameters), except where noted. */

#define ITEM_COLS                                                           \
	"id, ext_id, title, description, category, price, currency, "       \
	"in_stock, quality, image_url, attributes, created, updated, deleted"
#define IX_COLS                                                             \
	"x.id, u.ext_id, i.ext_id, x.user_id, x.item_id, x.type, x.weight, " \
	"x.value, x.ts, x.event_id FROM interactions x JOIN users u ON "     \
	"u.id = x.user_id JOIN items i ON i.id = x.item_id "
/* ?13 is a mask of KNYTT__KEEP_* bits: a column whose bit is set keeps
 * its stored value on update (an import file without that column). */
#define KEPT(B) "(CAST(?13 AS INTEGER) & " #B ") <> 0"
#define SET_KEPT(C, B)                                                      \
	C " = CASE WHEN " KEPT(B) " THEN items." C " ELSE excluded." C " END"
#define UPSERT_HEAD                                                         \
	"INSERT INTO items(tenant, ext_id, title, description, category, "  \
	"price, currency, in_stock, quality, image_url, attributes, created, " \
	"updated, deleted) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, " \
	"?11, ?12, ?12, 0) ON CONFLICT (tenant, ext_id) DO UPDATE SET "      \
	SET_KEPT("title", 1) ", " SET_KEPT("description", 2) ", "            \
	SET_KEPT("category", 4) ", " SET_KEPT("price", 8) ", "               \
	SET_KEPT("currency", 16) ", " SET_KEPT("in_stock", 32) ", "          \
	SET_KEPT("quality", 64) ", " SET_KEPT("image_url", 128) ", "         \
	SET_KEPT("attributes", 256) ", updated = excluded.updated, "        \
	"deleted = 0 WHERE items.deleted <> 0"
/* An update that changes nothing is skipped, so updated stays put. */
#define DIFF(NE, C, B)                                                      \
	" OR (NOT " KEPT(B) " AND items." C " " NE " excluded." C ")"
#define UPSERT_DIFF(NE)                                                     \
	DIFF(NE, "title", 1) DIFF(NE, "description", 2)                      \
	DIFF(NE, "category", 4) DIFF(NE, "price", 8)                         \
	DIFF(NE, "currency", 16) DIFF(NE, "in_stock", 32)                    \
	DIFF(NE, "quality", 64) DIFF(NE, "image_url", 128)                   \
	DIFF(NE, "attributes", 256) " RETURNING id"

static const char *const sql_common[Q__COUNT] = {
	[Q_TENANT_INS] = "INSERT INTO tenants(name, created) VALUES (?1, ?2) "
			 "RETURNING id",
	[Q_TENANT_FIND] = "SELECT id FROM tenants WHERE name = ?1",
	[Q_TENANT_GET] = "SELECT id FROM tenants WHERE id = ?1",
	[Q_KEY_INS] = "INSERT INTO api_keys(tenant, hash, scope, created) "
		      "VALUES (?1, ?2, ?3, ?4)",
	[Q_KEY_FIND] = "SELECT tenant, scope, revoked, hash FROM api_keys "
		       "WHERE hash = ?1",
	[Q_KEY_REVOKE] = "UPDATE api_keys SET revoked = COALESCE(revoked, ?3)"
			 " WHERE tenant = ?1 AND hash = ?2",
	[Q_ITEM_ID] = "SELECT id FROM items WHERE tenant = ?1 AND ext_id = ?2",
	[Q_ITEM_GET] = "SELECT " ITEM_COLS " FROM items WHERE tenant = ?1 "
		       "AND ext_id = ?2",
	[Q_ITEM_GET_ID] = "SELECT " ITEM_COLS " FROM items WHERE tenant = ?1"
			  " AND id = ?2",
	[Q_ITEM_DEL] = "UPDATE items SET deleted = 1, updated = ?3 WHERE "
		       "tenant = ?1 AND ext_id = ?2",
	[Q_ITEM_CHANGED] = "SELECT " ITEM_COLS " FROM items WHERE tenant = ?1"
			   " AND (updated, id) > (?2, ?3) ORDER BY updated, "
			   "id LIMIT ?4",
	[Q_ITEM_COUNT] = "SELECT COUNT(*) FROM items WHERE tenant = ?1 AND "
			 "deleted = 0",
	[Q_USER_UPSERT] = "INSERT INTO users(tenant, ext_id, attributes, "
			  "created) VALUES (?1, ?2, ?3, ?4) ON CONFLICT "
			  "(tenant, ext_id) DO UPDATE SET attributes = "
			  "excluded.attributes RETURNING id",
	[Q_USER_ID] = "SELECT id FROM users WHERE tenant = ?1 AND ext_id = ?2",
	[Q_USER_GET] = "SELECT id, attributes, created FROM users WHERE "
		       "tenant = ?1 AND ext_id = ?2",
	[Q_USER_ENSURE] = "INSERT INTO users(tenant, ext_id, created) VALUES "
			  "(?1, ?2, ?3) ON CONFLICT (tenant, ext_id) DO "
			  "NOTHING RETURNING id",
	[Q_USER_COUNT] = "SELECT COUNT(*) FROM users WHERE tenant = ?1",
	[Q_IX_INS] = "INSERT INTO interactions(tenant, user_id, item_id, "
		     "type, weight, value, ts, event_id) VALUES (?1, ?2, ?3, "
		     "?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
	[Q_IX_USER] = "SELECT " IX_COLS "WHERE x.user_id = ?2 AND "
		      "x.tenant = ?1 ORDER BY x.ts DESC, x.id DESC LIMIT ?3",
	[Q_IX_ITEM] = "SELECT " IX_COLS "WHERE x.item_id = ?2 AND "
		      "x.tenant = ?1 ORDER BY x.ts DESC, x.id DESC LIMIT ?3",
	[Q_IX_USER_ALL] = "SELECT " IX_COLS "WHERE x.user_id = ?2 AND "
			  "x.tenant = ?1 AND (x.ts, x.id) > (?3, ?4) ORDER "
			  "BY x.ts, x.id LIMIT ?5",
	/* a profile load (knytt__store_user_events): the columns of
	 * IX_COLS without its two joins -- no ext ids, so no lookup in
	 * users and items per event; every column read is in the
	 * interactions_user index (migration 9), so not even the row (see
	 * interactions.c for the measurement) */
	[Q_IX_USER_EVENTS] = "SELECT x.id, '', '', x.user_id, x.item_id, "
			     "x.type, x.weight, x.value, x.ts, NULL FROM "
			     "interactions x WHERE x.user_id = ?2 AND "
			     "x.tenant = ?1 AND (x.ts, x.id) > (?3, ?4) "
			     "ORDER BY x.ts, x.id LIMIT ?5",
	[Q_IX_SINCE] = "SELECT " IX_COLS "WHERE x.tenant = ?1 AND "
		       "(x.ts, x.id) > (?2, ?3) ORDER BY x.ts, x.id LIMIT ?4",
	[Q_IX_COUNT] = "SELECT COUNT(*) FROM interactions WHERE tenant = ?1",
	/* the marks (interactions.c): ids only grow, across tenants.  The
	 * unary + keeps SQLite off the (tenant, ts) index: the walk goes
	 * up the ids from the mark, not over the tenant's whole history */
	[Q_IX_MARK] = "SELECT COALESCE(MAX(id), 0) FROM interactions",
	[Q_IX_AFTER_N] = "SELECT COUNT(*) FROM (SELECT 1 FROM interactions "
			 "WHERE id > ?2 AND +tenant = ?1 LIMIT ?3) AS x",
	[Q_IX_AFTER] = "SELECT " IX_COLS "WHERE x.id > ?2 AND +x.tenant = ?1 "
		       "ORDER BY x.id LIMIT ?3",
	[Q_IX_COUNTS] = "SELECT item_id, COUNT(*) AS c FROM interactions "
			"WHERE tenant = ?1 AND ts >= ?2 AND ts < ?3 GROUP BY "
			"item_id ORDER BY c DESC, item_id LIMIT ?4",
	[Q_IX_COUNTS_T] = "SELECT item_id, COUNT(*) AS c FROM interactions "
			  "WHERE tenant = ?1 AND ts >= ?2 AND ts < ?3 AND "
			  "type = ?5 GROUP BY item_id ORDER BY c DESC, "
			  "item_id LIMIT ?4",
	[Q_FAV_SET] = "INSERT INTO favorites(tenant, user_id, item_id, "
		      "created) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
	[Q_FAV_UNSET] = "DELETE FROM favorites WHERE tenant = ?1 AND "
			"user_id = ?2 AND item_id = ?3",
	[Q_FAV_LIST] = "SELECT item_id FROM favorites WHERE tenant = ?1 AND "
		       "user_id = ?2 ORDER BY created DESC, item_id LIMIT ?3",
	[Q_SLOG_INS] = "INSERT INTO search_log(tenant, query, user_id, "
		       "result_count, ts, shown) VALUES (?1, ?2, ?3, ?4, ?5, "
		       "?6) RETURNING id",
	[Q_SLOG_CLICK] = "UPDATE search_log SET clicked_item = ?3 WHERE "
			 "tenant = ?1 AND id = ?2",
	[Q_SLOG_GET] = "SELECT query, result_count, clicked_item FROM "
		       "search_log WHERE tenant = ?1 AND id = ?2",
	[Q_EMB_PUT] = "INSERT INTO embeddings(tenant, owner, version, "
		      "owner_id, dim, vec, updated) VALUES (?1, ?2, ?3, ?4, "
		      "?5, ?6, ?7) ON CONFLICT (tenant, owner, version, "
		      "owner_id) DO UPDATE SET dim = excluded.dim, vec = "
		      "excluded.vec, updated = excluded.updated",
	[Q_EMB_GET] = "SELECT dim, vec FROM embeddings WHERE tenant = ?1 AND "
		      "owner = ?2 AND version = ?3 AND owner_id = ?4",
	[Q_EMB_EACH] = "SELECT owner_id, dim, vec FROM embeddings WHERE "
		       "tenant = ?1 AND owner = ?2 AND version = ?3 AND "
		       "owner_id > ?4 ORDER BY owner_id LIMIT ?5",
	[Q_EMB_CHANGED] = "SELECT owner_id, dim, vec, updated FROM embeddings "
			  "WHERE tenant = ?1 AND owner = ?2 AND version = ?3 "
			  "AND (updated, owner_id) > (?4, ?5) ORDER BY "
			  "updated, owner_id LIMIT ?6",
	[Q_EMB_OWNER_ITEM] = "SELECT id FROM items WHERE tenant = ?1 AND "
			     "id = ?2",
	[Q_EMB_OWNER_USER] = "SELECT id FROM users WHERE tenant = ?1 AND "
			     "id = ?2",
	[Q_MODEL_MAX] = "SELECT MAX(version) FROM models WHERE tenant = ?1 "
			"AND name = ?2",
	[Q_MODEL_INS] = "INSERT INTO models(tenant, name, version, blob, "
			"meta, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[Q_MODEL_GET] = "SELECT version, blob, meta, created FROM models "
			"WHERE tenant = ?1 AND name = ?2 AND version = ?3",
	[Q_MODEL_LATEST] = "SELECT version, blob, meta, created FROM models "
			   "WHERE tenant = ?1 AND name = ?2 ORDER BY version "
			   "DESC LIMIT 1",
	/* the same without the blob's bytes (knytt_store_model_get says
	 * why): length() reads a blob's size from its record header */
	[Q_MODEL_HEAD] = "SELECT version, length(blob), meta, created FROM "
			 "models WHERE tenant = ?1 AND name = ?2 AND "
			 "version = ?3",
	[Q_MODEL_HEAD_LATEST] = "SELECT version, length(blob), meta, created "
				"FROM models WHERE tenant = ?1 AND name = ?2 "
				"ORDER BY version DESC LIMIT 1",
};

/* FTS5: bm25() is smaller for better matches, so it is negated.  Column
 * weights title 3, description 1, category 2. */
static const char sql_search_sqlite[] =
	"SELECT i.id, -bm25(items_fts, 3.0, 1.0, 2.0) AS s FROM items_fts "
	"JOIN items i ON i.id = items_fts.rowid WHERE items_fts MATCH ?1 AND "
	"i.tenant = ?2 AND i.deleted = 0 AND (?3 IS NULL OR i.category = ?3 "
	"OR substr(i.category, 1, length(?3) + 1) = ?3 || '/') AND (?4 IS NULL"
	" OR i.price >= ?4) AND (?5 IS NULL OR i.price <= ?5) AND (?6 = 0 OR "
	"i.in_stock = 1) ORDER BY s DESC, i.id LIMIT ?7";
/* ts_rank with weights D 0.1, C 0.2, B 0.4 (category), A 1.0 (title).
 * The leading comment makes pg.c run it unprepared: a prepared statement
 * switches to a generic plan after five runs, and the generic plan of
 * this query ANDs the GIN bitmap with every row of the tenant (25 ms at
 * 100k items instead of 0.5 ms). */
static const char sql_search_pg[] =
	"/* oneshot */ SELECT i.id, ts_rank(i.tsv, q) AS s FROM items i, "
	"plainto_tsquery('simple', CAST(?1 AS TEXT)) q WHERE i.tsv @@ q AND "
	"i.tenant = ?2 AND i.deleted = 0 AND (CAST(?3 AS TEXT) IS NULL OR "
	"i.category = CAST(?3 AS TEXT) OR substr(i.category, 1, "
	"length(CAST(?3 AS TEXT)) + 1) = CAST(?3 AS TEXT) || '/') AND "
	"(CAST(?4 AS FLOAT8) IS NULL OR i.price >= CAST(?4 AS FLOAT8)) AND "
	"(CAST(?5 AS FLOAT8) IS NULL OR i.price <= CAST(?5 AS FLOAT8)) AND "
	"(CAST(?6 AS INTEGER) = 0 OR i.in_stock = 1) ORDER BY s DESC, i.id "
	"LIMIT ?7";

/* PostgreSQL, one-word queries: the rows whose title holds the word.
 * With ts_rank's default weights and no length normalisation, such a row
 * scores at least 1/1.645 = 0.61 (one title hit, weight 1.0), while a
 * row without it scores below 0.4 (its best hits are category ones,
 * weight 0.4, which come before the description's in the tsvector, and
 * the rank sums w/j^2 over the hits, divided by pi^2/6).  So when k
 * title rows pass the filters they are the k best of all: the title
 * index (migration 2) spares ranking every row that only mentions the
 * word.  Otherwise the general query runs. */
static const char sql_search_pg_title[] =
	"/* oneshot */ SELECT i.id, ts_rank(i.tsv, q) AS s FROM items i, "
	"plainto_tsquery('simple', CAST(?1 AS TEXT)) q WHERE numnode(q) = 1 "
	"AND to_tsvector('simple', translate(coalesce(i.title, ''), '/', "
	"' ')) @@ q AND i.tenant = ?2 AND i.deleted = 0 AND (CAST(?3 AS "
	"TEXT) IS NULL OR i.category = CAST(?3 AS TEXT) OR substr("
	"i.category, 1, length(CAST(?3 AS TEXT)) + 1) = CAST(?3 AS TEXT) || "
	"'/') AND (CAST(?4 AS FLOAT8) IS NULL OR i.price >= CAST(?4 AS "
	"FLOAT8)) AND (CAST(?5 AS FLOAT8) IS NULL OR i.price <= CAST(?5 AS "
	"FLOAT8)) AND (CAST(?6 AS INTEGER) = 0 OR i.in_stock = 1) ORDER BY "
	"s DESC, i.id LIMIT ?7";

/*
 * SQLite's search-log row without "RETURNING id": the id is the rowid
 * SQLite hands back anyway (sqlite3_last_insert_rowid).  SQLite carries a
 * RETURNING clause's rows through an ephemeral table, a B-tree with a
 * page cache of its own whose first page allocates 20 pages at once (87
 * KB, freed when the statement ends): knyttd logs a row per search, so
 * that was an 87 KB block allocated and freed per search, 910,910 times
 * in a 10-minute soak (benchmarks/soak, counted with an allocation
 * logger), among the long-lived small blocks of the shoppers' profiles,
 * and each such transient block can leave the allocator's heap in pieces.
 */
static const char sql_slog_ins_sqlite[] =
	"INSERT INTO search_log(tenant, query, user_id, result_count, ts, "
	"shown) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";

static const char *sql_for(const knytt_store *st, int id)
{
	int pg = st->ops->dialect == KNYTT__PG;
	if (id == Q_SEARCH)
		return pg ? sql_search_pg : sql_search_sqlite;
	if (id == Q_SEARCH_TITLE)
		return sql_search_pg_title;
	if (id == Q_SLOG_INS && !pg)
		return sql_slog_ins_sqlite;
	if (id == Q_ITEM_UPSERT)
		return pg ? UPSERT_HEAD UPSERT_DIFF("IS DISTINCT FROM")
			  : UPSERT_HEAD UPSERT_DIFF("IS NOT");
	if (id >= Q_EXP_INS)
		return knytt__exp_sql(id); /* experiment.c */
	return sql_common[id];
}

knytt__stmt *knytt__st_q(knytt_store *st, int id)
{
	if (!st->stmt[id]) {
		if (st->ops->prepare(st->db, sql_for(st, id), &st->stmt[id]))
			return NULL;
	}
	return st->stmt[id];
}

/* ---- small helpers ----------------------------------------------------- */

#define O (st->ops)

int knytt__exec_keep(knytt_store *st, const char *sql)
{
	knytt__errsave saved;
	knytt__err_save(&saved);
	int rc = O->exec(st->db, sql);
	knytt__err_restore(0, &saved);
	return rc;
}

int knytt__store_set_mapped(knytt_store *st, int on)
{
	/* SQLite only; up to 1 GiB of the file read through the kernel's
	 * page cache, shared by every connection that maps it */
	if (!st || st->ops->dialect != KNYTT__SQLITE)
		return 0;
	return knytt__exec_keep(st, on ? "PRAGMA mmap_size=1073741824"
				       : "PRAGMA mmap_size=0");
}

uint32_t knytt__store_data_version(knytt_store *st)
{
	return st->ops->dialect == KNYTT__SQLITE
		       ? knytt__sqlite_data_version(st->db)
		       : 0;
}

/* Keeps the current message across a ROLLBACK that might set another. */
void knytt__st_rollback(knytt_store *st)
{
	knytt__exec_keep(st, "ROLLBACK");
	st->in_txn = 0;
}

void knytt__pragma_i64(knytt_store *st, const char *sql, int64_t *v)
{
	knytt__stmt *q;
	if (st->ops->prepare(st->db, sql, &q))
		return;
	if (st->ops->step(q) == 1)
		*v = st->ops->col_i64(q, 0);
	st->ops->finalize(q);
}

int knytt__st_begin(knytt_store *st)
{
	if (O->dialect == KNYTT__SQLITE)
		knytt__sqlite_ckpt_gate(st->db);
	int rc = O->exec(st->db, O->dialect == KNYTT__PG ? "BEGIN"
							  : "BEGIN IMMEDIATE");
	if (rc == 0)
		st->in_txn = 1;
	return rc;
}

int knytt__st_commit(knytt_store *st)
{
	int rc = O->exec(st->db, "COMMIT");
	if (rc) {
		knytt__st_rollback(st);
		return rc;
	}
	st->in_txn = 0;
	return 0;
}

int knytt__st_need_tenant(const knytt_store *st)
{
	if (!st)
		return knytt__err(KNYTT_EINVAL, "store is NULL");
	if (!st->tenant)
		return knytt__err(KNYTT_ESTATE, "no tenant selected: call "
						"knytt_store_use_tenant first");
	return 0;
}

/* Runs a prepared statement expecting at most one row; *row = 1 if one. */
int knytt__st_step_one(knytt_store *st, knytt__stmt *q, int *row)
{
	int rc = O->step(q);
	if (rc < 0)
		return rc;
	*row = rc;
	return 0;
}

/*
 * Steps a one-row "... RETURNING id" statement to its end.  SQLite
 * finishes part of such a statement's work only when it halts: FTS5
 * writes its pending index data for the items table then.  Reset after
 * its row instead of stepped to the end, a failure there (a full disk)
 * was reported to no one while SQLite rolled the whole transaction back,
 * and the statements after it ran in autocommit mode: an import stored
 * 198 rows of a batch it then reported failed.
 */
int knytt__st_step_id(knytt_store *st, knytt__stmt *q, int *row,
		      uint64_t *id)
{
	int rc = O->step(q);
	*row = rc == 1;
	if (rc == 1) {
		if (id)
			*id = (uint64_t)O->col_i64(q, 0);
		while ((rc = O->step(q)) == 1)
			;
	}
	return rc < 0 ? rc : 0;
}

int knytt__utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		unsigned c = p[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		size_t len;
		unsigned min;
		if ((c & 0xE0) == 0xC0) {
			len = 2;
			min = 0x80;
			c &= 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			len = 3;
			min = 0x800;
			c &= 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			len = 4;
			min = 0x10000;
			c &= 0x07;
		} else {
			return 0;
		}
		if (i + len > n)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return 0;
			c = c << 6 | (p[i + k] & 0x3F);
		}
		if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF))
			return 0;
		i += len;
	}
	return 1;
}

int knytt__check_text(const char *field, const char *s, size_t maxlen,
		      int required)
{
	if (!s)
		return required ? knytt__err_field(KNYTT_EINVAL, field,
					     "field %s is required", field)
				: 0;
	size_t n = strlen(s);
	if (required && n == 0)
		return knytt__err_field(KNYTT_EINVAL, field, "field %s is empty", field);
	if (n > maxlen)
		return knytt__err_field(KNYTT_EINVAL, field,
				  "field %s is too long (%zu bytes, at most "
				  "%zu)",
				  field, n, maxlen);
	if (!knytt__utf8_valid(s, n))
		return knytt__err_field(KNYTT_EINVAL, field, "field %s is not valid UTF-8",
				  field);
	return 0;
}

/* External ids: UTF-8 without control characters. */
int knytt__st_check_id(const char *field, const char *s)
{
	int rc = knytt__check_text(field, s, KNYTT_STORE_MAX_ID, 1);
	if (rc)
		return rc;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7F)
			return knytt__err_field(KNYTT_EINVAL, field,
					  "field %s contains a control "
					  "character",
					  field);
	return 0;
}

int knytt__check_json_obj(const char *field, const char *s)
{
	if (!s)
		return 0;
	int rc = knytt__check_text(field, s, 65536, 0);
	if (rc)
		return rc;
	cJSON *j = cJSON_ParseWithOpts(s, NULL, 1);
	int ok = j && cJSON_IsObject(j);
	cJSON_Delete(j);
	if (!ok)
		return knytt__err_field(KNYTT_EINVAL, field,
				  "field %s is not a JSON object", field);
	return 0;
}

/* ---- open / close ------------------------------------------------------ */

int knytt_store_open(const char *uri, knytt_store **out)
{
	if (!out)
		return knytt__err(KNYTT_EINVAL, "out is NULL");
	*out = NULL;
	if (!uri)
		return knytt__err(KNYTT_EINVAL, "uri is NULL");
	knytt_store *st = calloc(1, sizeof *st);
	if (!st)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	int rc;
	if (strncmp(uri, "sqlite:", 7) == 0) {
		const char *path = uri + 7;
		if (!*path) {
			free(st);
			return knytt__err(KNYTT_EINVAL,
					  "uri '%s' has no path", uri);
		}
		rc = knytt__sqlite_open(path, &st->db);
	} else if (strncmp(uri, "postgres://", 11) == 0 ||
		   strncmp(uri, "postgresql://", 13) == 0) {
		rc = knytt__pg_open(uri, &st->db);
	} else {
		free(st);
		char shown[80]; /* never a password in a message */
		knytt_uri_redact(uri, shown, sizeof shown);
		return knytt__err(KNYTT_EINVAL,
				  "uri '%s': expected sqlite:PATH or "
				  "postgres://...",
				  shown);
	}
	if (rc) {
		free(st);
		return rc;
	}
	st->db->st = st;
	st->ops = st->db->ops;
	st->batch_rows = 50000;
	st->bulk_min = 100000;
	st->future_tol_ms = KNYTT_FUTURE_TOLERANCE_MS;
	rc = knytt__remember_location(st, uri);
	if (rc == 0)
		rc = knytt__migrate(st);
	if (rc == 0)
		rc = knytt__ix_recover(st);
	if (rc) {
		knytt_store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

void knytt_store_close(knytt_store *st)
{
	if (!st)
		return;
	for (int i = 0; i < Q__COUNT; i++)
		if (st->stmt[i])
			O->finalize(st->stmt[i]);
	O->close(st->db);
	free(st->ix_page);
	free(st->location);
	free(st);
}

const char *knytt_store_backend(const knytt_store *st)
{
	return st ? st->ops->name : "";
}

int knytt_store_set_busy_timeout(knytt_store *st, unsigned ms)
{
	if (!st)
		return knytt__err(KNYTT_EINVAL, "store is NULL");
	if (ms > 3600000)
		return knytt__err(KNYTT_EINVAL,
				  "busy timeout %u ms is over 3600000", ms);
	int pg = O->dialect == KNYTT__PG;
	return O->set_busy(st->db, ms ? (int)ms : pg ? 0 : KNYTT_STORE_BUSY_MS);
}

int knytt_store_schema_version(const knytt_store *st)
{
	if (!st)
		return knytt__err(KNYTT_EINVAL, "store is NULL");
	return st->schema_version;
}

int knytt_store_set_cache_size(knytt_store *st, size_t bytes)
{
	if (!st)
		return knytt__err(KNYTT_EINVAL, "store is NULL");
	if ((uint64_t)bytes > (uint64_t)1 << 40)
		return knytt__err(KNYTT_EINVAL,
				  "cache size %zu bytes is over 1 TiB", bytes);
	if (O->dialect != KNYTT__SQLITE)
		return 0;
	/* a negative cache_size is KiB; a part of one counts whole */
	uint64_t kib = bytes ? ((uint64_t)bytes + 1023) / 1024
			     : KNYTT_STORE_CACHE_BYTES / 1024;
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA cache_size=-%llu",
		 (unsigned long long)kib);
	return O->exec(st->db, sql);
}

int64_t knytt__st_cache_widen(knytt_store *st)
{
	int64_t was = 0;
	if (O->dialect != KNYTT__SQLITE)
		return 0;
	knytt__pragma_i64(st, "PRAGMA cache_size", &was);
	/* negative: KiB; positive: pages, of at least 512 bytes */
	int64_t bytes = was < 0 ? -was * 1024 : was * 512;
	if (was == 0 || bytes >= (int64_t)KNYTT_STORE_CACHE_BYTES)
		return 0;
	knytt__errsave saved; /* best effort: the caller's message stays */
	knytt__err_save(&saved);
	(void)knytt_store_set_cache_size(st, 0); /* the default */
	knytt__err_restore(0, &saved);
	return was;
}

void knytt__st_cache_restore(knytt_store *st, int64_t was)
{
	if (!was)
		return;
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA cache_size=%lld", (long long)was);
	knytt__exec_keep(st, sql);
}

int64_t knytt__store_cache_used(knytt_store *st)
{
	return st && O->dialect == KNYTT__SQLITE
		       ? knytt__sqlite_cache_used(st->db)
		       : 0;
}

int knytt_store_set_batch_size(knytt_store *st, size_t rows)
{
	if (!st)
		return knytt__err(KNYTT_EINVAL, "store is NULL");
	if (rows > 10000000)
		return knytt__err(KNYTT_EINVAL,
				  "batch size %zu is over 10000000", rows);
	st->batch_rows = rows ? rows : 50000;
	return 0;
}

/* ---- items ------------------------------------------------------------- */


static int check_category(const char *c)
{
	int rc = knytt__check_text("category", c, 512, 0);
	if (rc || !c)
		return rc;
	size_t n = strlen(c);
	if (n == 0 || c[0] == '/' || c[n - 1] == '/' || strstr(c, "//"))
		return knytt__err_field(KNYTT_EINVAL, "category",
				  "field category '%.64s' has an empty path "
				  "segment",
				  c);
	return 0;
}

/* Copies the fields within struct_size into a full record, validated. */
static int item_norm(const knytt_item *in, knytt_item *it)
{
	if (!in)
		return knytt__err(KNYTT_EINVAL, "item is NULL");
	if (!KNYTT__HAS(in, knytt_item, ext_id))
		return knytt__err(KNYTT_EINVAL,
				  "item struct_size %zu is too small (set it "
				  "to sizeof(knytt_item))",
				  in->struct_size);
	memset(it, 0, sizeof *it);
	it->in_stock = 1;
	/* members past the caller's struct_size keep the defaults above */
	KNYTT__STRUCT_IN(it, in);
	int rc;
	if ((rc = knytt__st_check_id("id", it->ext_id)) ||
	    (rc = knytt__check_text("title", it->title, 1024, 0)) ||
	    (rc = knytt__check_text("description", it->description, 65536,
				    0)) ||
	    (rc = check_category(it->category)) ||
	    (rc = knytt__check_text("image_url", it->image_url, 2048, 0)) ||
	    (rc = knytt__check_json_obj("attributes", it->attributes)))
		return rc;
	if (!isfinite(it->price) || it->price < 0)
		return knytt__err_field(KNYTT_EINVAL, "price",
				  "field price must be a finite number >= 0");
	if (!isfinite(it->quality))
		return knytt__err_field(KNYTT_EINVAL, "quality",
				  "field quality must be finite");
	if (it->in_stock != 0 && it->in_stock != 1)
		return knytt__err_field(KNYTT_EINVAL, "in_stock",
					"field in_stock must be 0 or 1");
	if (it->currency) {
		const char *c = it->currency;
		if (strlen(c) != 3 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' ||
		    c[1] > 'Z' || c[2] < 'A' || c[2] > 'Z')
			return knytt__err_field(KNYTT_EINVAL, "currency",
					  "field currency must be 3 "
					  "upper-case letters (ISO 4217)");
	}
	return 0;
}

/* Upsert of a validated record; the caller holds any transaction. */
static int item_upsert_norm(knytt_store *st, const knytt_item *it,
			    unsigned keep, uint64_t *id)
{
	knytt__stmt *q = knytt__st_q(st, Q_ITEM_UPSERT);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, it->ext_id);
	O->bind_text(q, 3, it->title);
	O->bind_text(q, 4, it->description);
	O->bind_text(q, 5, it->category);
	O->bind_f64(q, 6, it->price);
	O->bind_text(q, 7, it->currency);
	O->bind_i64(q, 8, it->in_stock);
	O->bind_f64(q, 9, it->quality);
	O->bind_text(q, 10, it->image_url);
	O->bind_text(q, 11, it->attributes);
	O->bind_i64(q, 12, knytt__now_ms());
	O->bind_i64(q, 13, (int64_t)keep);
	int row = 0;
	uint64_t got = 0;
	int rc = knytt__st_step_id(st, q, &row, &got);
	O->reset(q);
	if (rc)
		return rc;
	if (!row) { /* unchanged: read the id */
		rc = knytt__item_id(st, it->ext_id, &got);
		if (rc)
			return rc;
	}
	if (id)
		*id = got;
	return 0;
}

int knytt__item_upsert_checked(knytt_store *st, const knytt_item *in,
			       unsigned keep, uint64_t *id)
{
	knytt_item it;
	int rc = item_norm(in, &it);
	return rc ? rc : item_upsert_norm(st, &it, keep, id);
}

int knytt_store_item_upsert(knytt_store *st, const knytt_item *item,
			    uint64_t *id)
{
	int rc = knytt__st_need_tenant(st);
	if (rc)
		return rc;
	return knytt__item_upsert_checked(st, item, 0, id);
}

/* Looks @p ext up with statement @p qid (tenant, ext_id -> id): 1 =
 * found (*id set), 0 = not there, < 0 error. */
int knytt__st_lookup_id(knytt_store *st, int qid, const char *ext, uint64_t *id)
{
	knytt__stmt *q = knytt__st_q(st, qid);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, ext);
	int row = 0;
	int rc = knytt__st_step_one(st, q, &row);
	if (rc == 0 && row)
		*id = (uint64_t)O->col_i64(q, 0);
	O->reset(q);
	return rc ? rc : row;
}

int knytt__st_id_of(knytt_store *st, int qid, const char *what,
		 const char *ext, uint64_t *id)
{
	int rc = knytt__st_lookup_id(st, qid, ext, id);
	if (rc == 0)
		return knytt__err(KNYTT_ENOTFOUND, "no %s '%.200s'", what, ext);
	return rc < 0 ? rc : 0;
}

int knytt__item_id(knytt_store *st, const char *ext, uint64_t *id)
{
	return knytt__st_id_of(st, Q_ITEM_ID, "item", ext, id);
}

/* Packs the current ITEM_COLS row into one allocation. */
static knytt_item *item_pack(knytt_store *st, knytt__stmt *q)
{
	const char *s[7];
	static const int cols[7] = {1, 2, 3, 4, 6, 9, 10};
	size_t len[7], total = sizeof(knytt_item);
	for (int i = 0; i < 7; i++) {
		s[i] = O->col_text(q, cols[i]);
		len[i] = s[i] ? strlen(s[i]) + 1 : 0;
		total += len[i];
	}
	knytt_item *it = malloc(total);
	if (!it)
		return NULL;
	memset(it, 0, sizeof *it);
	char *p = (char *)(it + 1);
	const char **dst[7] = {&it->ext_id,   &it->title,    &it->description,
			       &it->category, &it->currency, &it->image_url,
			       &it->attributes};
	for (int i = 0; i < 7; i++) {
		if (s[i]) {
			memcpy(p, s[i], len[i]);
			*dst[i] = p;
			p += len[i];
		}
	}
	it->struct_size = sizeof *it;
	it->id = (uint64_t)O->col_i64(q, 0);
	it->price = O->col_f64(q, 5);
	it->in_stock = (int)O->col_i64(q, 7);
	it->quality = O->col_f64(q, 8);
	it->created_ms = O->col_i64(q, 11);
	it->updated_ms = O->col_i64(q, 12);
	it->deleted = (int)O->col_i64(q, 13);
	return it;
}

static int item_get(knytt_store *st, int qid, const char *ext, uint64_t id,
		    knytt_item **out)
{
	int rc = knytt__st_need_tenant(st);
	if (rc)
		return rc;
	if (!out)
		return knytt__err(KNYTT_EINVAL, "out is NULL");
	*out = NULL;
	if (qid == Q_ITEM_GET && (rc = knytt__st_check_id("id", ext)))
		return rc;
	knytt__stmt *q = knytt__st_q(st, qid);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	if (qid == Q_ITEM_GET)
		O->bind_text(q, 2, ext);
	else
		O->bind_i64(q, 2, (int64_t)id);
	int row = 0;
	rc = knytt__st_step_one(st, q, &row);
	if (rc == 0 && row) {
		*out = item_pack(st, q);
		if (!*out)
			rc = knytt__err(KNYTT_ENOMEM, "out of memory");
	}
	O->reset(q);
	if (rc == 0 && !row) {
		if (qid == Q_ITEM_GET)
			return knytt__err(KNYTT_ENOTFOUND, "no item '%.200s'",
					  ext);
		return knytt__err(KNYTT_ENOTFOUND, "no item with id %llu",
				  (unsigned long long)id);
	}
	return rc;
}

int knytt_store_item_get(knytt_store *st, const char *ext_id,
			 knytt_item **out)
{
	return item_get(st, Q_ITEM_GET, ext_id, 0, out);
}

int knytt_store_item_get_id(knytt_store *st, uint64_t id, knytt_item **out)
{
	return item_get(st, Q_ITEM_GET_ID, NULL, id, out);
}

int knytt_store_item_delete(knytt_store *st, const char *ext_id)
{
	int rc = knytt__st_need_tenant(st);
	if (rc || (rc = knytt__st_check_id("id", ext_id)))
		return rc;
	knytt__stmt *q = knytt__st_q(st, Q_ITEM_DEL);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, ext_id);
	O->bind_i64(q, 3, knytt__now_ms());
	int row;
	rc = knytt__st_step_one(st, q, &row);
	int64_t ch = O->changes(q);
	O->reset(q);
	if (rc)
		return rc;
	return ch ? 0 : knytt__err(KNYTT_ENOTFOUND, "no item '%.200s'",
				   ext_id);
}

int knytt_store_items_changed(knytt_store *st, int64_t since_ms,
			      knytt_item_fn fn, void *ctx)
{
	int rc = knytt__st_need_tenant(st);
	if (rc)
		return rc;
	if (!fn)
		return knytt__err(KNYTT_EINVAL, "callback is NULL");
	knytt_item **page = malloc(KNYTT__STORE_PAGE * sizeof *page);
	if (!page)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	int64_t k_upd = since_ms, k_id = -1;
	/* (updated, id) > (since, -1) is updated >= since */
	long long visited = 0;
	for (;;) {
		knytt__stmt *q = knytt__st_q(st, Q_ITEM_CHANGED);
		if (!q) {
			rc = knytt__err_keep(KNYTT_EDB);
			break;
		}
		O->bind_i64(q, 1, (int64_t)st->tenant);
		O->bind_i64(q, 2, k_upd);
		O->bind_i64(q, 3, k_id);
		O->bind_i64(q, 4, KNYTT__STORE_PAGE);
		size_t n = 0;
		while ((rc = O->step(q)) == 1) {
			page[n] = item_pack(st, q);
			if (!page[n]) {
				rc = knytt__err(KNYTT_ENOMEM, "out of memory");
				break;
			}
			n++;
		}
		O->reset(q);
		int stop = 0;
		for (size_t i = 0; i < n; i++) {
			if (rc == 0 && !stop) {
				visited++;
				if (fn(page[i], ctx))
					stop = 1;
			}
			k_upd = page[i]->updated_ms;
			k_id = (int64_t)page[i]->id;
			free(page[i]);
		}
		if (rc < 0)
			break;
		if (stop) {
			rc = knytt__err(KNYTT_ECANCELED,
					"the callback stopped the scan");
			break;
		}
		if (n < KNYTT__STORE_PAGE)
			break;
	}
	free(page);
	if (rc < 0)
		return rc;
	return visited > INT_MAX ? INT_MAX : (int)visited;
}

int64_t knytt__st_count_q(knytt_store *st, int qid)
{
	int rc = knytt__st_need_tenant(st);
	if (rc)
		return rc;
	knytt__stmt *q = knytt__st_q(st, qid);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	int row = 0;
	rc = knytt__st_step_one(st, q, &row);
	int64_t n = row ? O->col_i64(q, 0) : 0;
	O->reset(q);
	return rc ? rc : n;
}

int64_t knytt_store_item_count(knytt_store *st)
{
	return knytt__st_count_q(st, Q_ITEM_COUNT);
}

/* ---- users ------------------------------------------------------------- */

int knytt_store_user_upsert(knytt_store *st, const char *ext_id,
			    const char *attributes, uint64_t *id)
{
	int rc = knytt__st_need_tenant(st);
	if (rc || (rc = knytt__st_check_id("id", ext_id)) ||
	    (rc = knytt__check_json_obj("attributes", attributes)))
		return rc;
	knytt__stmt *q = knytt__st_q(st, Q_USER_UPSERT);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, ext_id);
	O->bind_text(q, 3, attributes);
	O->bind_i64(q, 4, knytt__now_ms());
	int row = 0;
	rc = knytt__st_step_id(st, q, &row, id);
	O->reset(q);
	return rc;
}

/* The user's id, creating the user on first sight.  Most events come
 * from known users: one read for them, the insert only for the others
 * (an INSERT that meets the user costs a write attempt and then the
 * same read). */
int knytt__user_ensure(knytt_store *st, const char *ext, uint64_t *id)
{
	int rc = knytt__st_lookup_id(st, Q_USER_ID, ext, id);
	if (rc)
		return rc < 0 ? rc : 0;
	knytt__stmt *q = knytt__st_q(st, Q_USER_ENSURE);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, ext);
	O->bind_i64(q, 3, knytt__now_ms());
	int row = 0;
	rc = knytt__st_step_id(st, q, &row, id);
	O->reset(q);
	if (rc || row)
		return rc;
	/* created meanwhile by another connection */
	rc = knytt__st_lookup_id(st, Q_USER_ID, ext, id);
	if (rc == 0)
		return knytt__err(KNYTT_EDB, "user '%.200s' vanished", ext);
	return rc < 0 ? rc : 0;
}

int knytt__user_ensure_checked(knytt_store *st, const char *ext)
{
	uint64_t id;
	int rc = knytt__st_check_id("id", ext);
	return rc ? rc : knytt__user_ensure(st, ext, &id);
}

int knytt__st_user_id(knytt_store *st, const char *ext, uint64_t *id)
{
	return knytt__st_id_of(st, Q_USER_ID, "user", ext, id);
}

char *knytt__st_dupstr(const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

int knytt_store_user_get(knytt_store *st, const char *ext_id, uint64_t *id,
			 char **attributes, int64_t *created_ms)
{
	int rc = knytt__st_need_tenant(st);
	if (rc || (rc = knytt__st_check_id("id", ext_id)))
		return rc;
	if (attributes)
		*attributes = NULL;
	knytt__stmt *q = knytt__st_q(st, Q_USER_GET);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, ext_id);
	int row = 0;
	rc = knytt__st_step_one(st, q, &row);
	if (rc == 0 && row) {
		if (id)
			*id = (uint64_t)O->col_i64(q, 0);
		if (created_ms)
			*created_ms = O->col_i64(q, 2);
		const char *a = O->col_text(q, 1);
		if (attributes && a && !(*attributes = knytt__st_dupstr(a)))
			rc = knytt__err(KNYTT_ENOMEM, "out of memory");
	}
	O->reset(q);
	if (rc == 0 && !row)
		return knytt__err(KNYTT_ENOTFOUND, "no user '%.200s'", ext_id);
	return rc;
}

int64_t knytt_store_user_count(knytt_store *st)
{
	return knytt__st_count_q(st, Q_USER_COUNT);
}

/* ---- favorites and search log ------------------------------------------ */

int knytt__ix_favorites(knytt_store *st, const knytt__ixrow *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (strcmp(rows[i].type, "favorite") != 0)
			continue;
		knytt__stmt *q = knytt__st_q(st, Q_FAV_SET);
		if (!q)
			return knytt__err_keep(KNYTT_EDB);
		O->bind_i64(q, 1, (int64_t)st->tenant);
		O->bind_i64(q, 2, (int64_t)rows[i].user_id);
		O->bind_i64(q, 3, (int64_t)rows[i].item_id);
		O->bind_i64(q, 4, rows[i].ts);
		int row, rc = knytt__st_step_one(st, q, &row);
		O->reset(q);
		if (rc)
			return rc;
	}
	return 0;
}

static int fav(knytt_store *st, int qid, const char *user, const char *item)
{
	int rc = knytt__st_need_tenant(st);
	if (rc || (rc = knytt__st_check_id("user", user)) ||
	    (rc = knytt__st_check_id("item", item)))
		return rc;
	uint64_t uid = 0, iid = 0;
	if ((rc = knytt__item_id(st, item, &iid)))
		return rc;
	rc = qid == Q_FAV_SET ? knytt__user_ensure(st, user, &uid)
			      : knytt__st_user_id(st, user, &uid);
	if (rc)
		return rc;
	knytt__stmt *q = knytt__st_q(st, qid);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, (int64_t)uid);
	O->bind_i64(q, 3, (int64_t)iid);
	if (qid == Q_FAV_SET)
		O->bind_i64(q, 4, knytt__now_ms());
	int row;
	rc = knytt__st_step_one(st, q, &row);
	O->reset(q);
	return rc;
}

int knytt_store_favorite_set(knytt_store *st, const char *user,
			     const char *item)
{
	return fav(st, Q_FAV_SET, user, item);
}

int knytt_store_favorite_unset(knytt_store *st, const char *user,
			       const char *item)
{
	return fav(st, Q_FAV_UNSET, user, item);
}

int knytt_store_favorite_list(knytt_store *st, const char *user,
			      uint64_t *item_ids, size_t cap)
{
	int rc = knytt__st_need_tenant(st);
	if (rc || (rc = knytt__st_check_id("user", user)))
		return rc;
	if (!item_ids)
		return knytt__err(KNYTT_EINVAL, "item_ids is NULL");
	uint64_t uid = 0;
	rc = knytt__st_user_id(st, user, &uid);
	if (rc == KNYTT_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	if (cap == 0)
		return 0;
	knytt__stmt *q = knytt__st_q(st, Q_FAV_LIST);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, (int64_t)uid);
	O->bind_i64(q, 3, cap > INT_MAX ? INT_MAX : (int64_t)cap);
	int n = 0;
	while ((size_t)n < cap && (rc = O->step(q)) == 1)
		item_ids[n++] = (uint64_t)O->col_i64(q, 0);
	O->reset(q);
	return rc < 0 ? rc : n;
}

int knytt__search_log_check(const char *query, const char *user)
{
	int rc = knytt__check_text("query", query, 1024, 1);
	if (rc == 0 && user)
		rc = knytt__st_check_id("user", user);
	return rc;
}

int knytt_store_search_log(knytt_store *st, const char *query,
			   const char *user, int result_count, int64_t ts_ms,
			   uint64_t *log_id)
{
	return knytt__search_log_ins(st, query, user, result_count, ts_ms,
				     NULL, log_id);
}

char *knytt__shown_text(const uint64_t *ids, size_t n, size_t stride,
			char *buf, size_t cap)
{
	size_t len = 0;
	buf[0] = 0;
	for (size_t i = 0; i < n && i < 20; i++) {
		uint64_t id = *(const uint64_t *)((const char *)ids +
						  i * stride);
		int w = snprintf(buf + len, cap - len, "%s%llu", i ? " " : "",
				 (unsigned long long)id);
		if (w < 0 || (size_t)w >= cap - len) {
			buf[len] = 0;
			break;
		}
		len += (size_t)w;
	}
	return buf;
}

int knytt__search_log_ins(knytt_store *st, const char *query,
			  const char *user, int result_count, int64_t ts_ms,
			  const char *shown, uint64_t *log_id)
{
	int rc = knytt__st_need_tenant(st);
	if (rc || (rc = knytt__search_log_check(query, user)))
		return rc;
	if (result_count < 0 || ts_ms < 0)
		return knytt__err(KNYTT_EINVAL,
				  "result_count and ts_ms must be >= 0");
	uint64_t uid = 0;
	if (user && (rc = knytt__user_ensure(st, user, &uid)))
		return rc;
	knytt__stmt *q = knytt__st_q(st, Q_SLOG_INS);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, query);
	if (user)
		O->bind_i64(q, 3, (int64_t)uid);
	else
		O->bind_null(q, 3);
	O->bind_i64(q, 4, result_count);
	O->bind_i64(q, 5, ts_ms ? ts_ms : knytt__now_ms());
	O->bind_text(q, 6, shown && *shown ? shown : NULL);
	if (O->dialect == KNYTT__SQLITE) {
		rc = O->step(q);
		O->reset(q);
		if (rc < 0)
			return rc;
		if (log_id)
			*log_id = (uint64_t)knytt__sqlite_last_rowid(st->db);
		return 0;
	}
	int row = 0;
	rc = knytt__st_step_id(st, q, &row, log_id);
	O->reset(q);
	return rc;
}

int knytt_store_search_click(knytt_store *st, uint64_t log_id,
			     const char *item)
{
	int rc = knytt__st_need_tenant(st);
	if (rc || (rc = knytt__st_check_id("item", item)))
		return rc;
	uint64_t iid = 0;
	if ((rc = knytt__item_id(st, item, &iid)))
		return rc;
	knytt__stmt *q = knytt__st_q(st, Q_SLOG_CLICK);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, (int64_t)log_id);
	O->bind_i64(q, 3, (int64_t)iid);
	int row;
	rc = knytt__st_step_one(st, q, &row);
	int64_t ch = O->changes(q);
	O->reset(q);
	if (rc)
		return rc;
	return ch ? 0 : knytt__err(KNYTT_ENOTFOUND, "no search log entry %llu",
				   (unsigned long long)log_id);
}

int knytt_store_search_log_get(knytt_store *st, uint64_t log_id,
			       char **query, int *result_count,
			       uint64_t *clicked_item)
{
	int rc = knytt__st_need_tenant(st);
	if (rc)
		return rc;
	if (query)
		*query = NULL;
	knytt__stmt *q = knytt__st_q(st, Q_SLOG_GET);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, (int64_t)log_id);
	int row = 0;
	rc = knytt__st_step_one(st, q, &row);
	if (rc == 0 && row) {
		if (result_count)
			*result_count = (int)O->col_i64(q, 1);
		if (clicked_item)
			*clicked_item = (uint64_t)O->col_i64(q, 2);
		if (query && !(*query = knytt__st_dupstr(O->col_text(q, 0))))
			rc = knytt__err(KNYTT_ENOMEM, "out of memory");
	}
	O->reset(q);
	if (rc == 0 && !row)
		return knytt__err(KNYTT_ENOTFOUND, "no search log entry %llu",
				  (unsigned long long)log_id);
	return rc;
}
