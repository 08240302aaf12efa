/*
 * store.c -- the store API over the backend vtable: open, tenants, keys,
 * items, users, interactions, favorites, search log, embeddings, models,
 * keyword search.
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
	[Q_IX_SINCE] = "SELECT " IX_COLS "WHERE x.tenant = ?1 AND "
		       "(x.ts, x.id) > (?2, ?3) ORDER BY x.ts, x.id LIMIT ?4",
	[Q_IX_COUNT] = "SELECT COUNT(*) FROM interactions WHERE tenant = ?1",
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
		      "owner_id, dim, vec) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON "
		      "CONFLICT (tenant, owner, version, owner_id) DO UPDATE "
		      "SET dim = excluded.dim, vec = excluded.vec",
	[Q_EMB_GET] = "SELECT dim, vec FROM embeddings WHERE tenant = ?1 AND "
		      "owner = ?2 AND version = ?3 AND owner_id = ?4",
	[Q_EMB_EACH] = "SELECT owner_id, dim, vec FROM embeddings WHERE "
		       "tenant = ?1 AND owner = ?2 AND version = ?3 AND "
		       "owner_id > ?4 ORDER BY owner_id LIMIT ?5",
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

static const char *sql_for(const knytt_store *st, int id)
{
	int pg = st->ops->dialect == KNYTT__PG;
	if (id == Q_SEARCH)
		return pg ? sql_search_pg : sql_search_sqlite;
	if (id == Q_SEARCH_TITLE)
		return sql_search_pg_title;
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
	char saved[512];
	snprintf(saved, sizeof saved, "%s", knytt_errmsg());
	int rc = O->exec(st->db, sql);
	knytt__err(0, "%s", saved);
	return rc;
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

static int need_tenant(const knytt_store *st)
{
	if (!st)
		return knytt__err(KNYTT_EINVAL, "store is NULL");
	if (!st->tenant)
		return knytt__err(KNYTT_ESTATE, "no tenant selected: call "
						"knytt_store_use_tenant first");
	return 0;
}

/* Runs a prepared statement expecting at most one row; *row = 1 if one. */
static int step_one(knytt_store *st, knytt__stmt *q, int *row)
{
	int rc = O->step(q);
	if (rc < 0)
		return rc;
	*row = rc;
	return 0;
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
		return required ? knytt__err(KNYTT_EINVAL,
					     "field %s is required", field)
				: 0;
	size_t n = strlen(s);
	if (required && n == 0)
		return knytt__err(KNYTT_EINVAL, "field %s is empty", field);
	if (n > maxlen)
		return knytt__err(KNYTT_EINVAL,
				  "field %s is too long (%zu bytes, at most "
				  "%zu)",
				  field, n, maxlen);
	if (!knytt__utf8_valid(s, n))
		return knytt__err(KNYTT_EINVAL, "field %s is not valid UTF-8",
				  field);
	return 0;
}

/* External ids: UTF-8 without control characters. */
static int check_id(const char *field, const char *s)
{
	int rc = knytt__check_text(field, s, KNYTT_STORE_MAX_ID, 1);
	if (rc)
		return rc;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7F)
			return knytt__err(KNYTT_EINVAL,
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
		return knytt__err(KNYTT_EINVAL,
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

/* ---- tenants and keys -------------------------------------------------- */

/* Tenant names: 1..64 of A-Z a-z 0-9 _ - ., starting with a letter or
 * digit.  They appear in URLs, logs and command lines; no file name is
 * made from them (location.c uses the tenant id). */
static int check_tenant_name(const char *name)
{
	if (!name || !*name)
		return knytt__err(KNYTT_EINVAL, "field name: the tenant name "
						"is empty");
	size_t n = strlen(name);
	if (n > 64)
		return knytt__err(KNYTT_EINVAL, "field name: the tenant name "
						"has %zu bytes, at most 64",
				  n);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '_' && c != '-' && c != '.')))
			return knytt__err(KNYTT_EINVAL,
					  "field name: tenant name '%.64s' "
					  "may only hold A-Z a-z 0-9 _ - . and "
					  "must start with a letter or digit",
					  name);
	}
	return KNYTT_OK;
}

int knytt_store_tenant_create(knytt_store *st, const char *name,
			      uint64_t *id)
{
	if (!st)
		return knytt__err(KNYTT_EINVAL, "store is NULL");
	int rc = check_tenant_name(name);
	if (rc)
		return rc;
	knytt__stmt *q = knytt__st_q(st, Q_TENANT_INS);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_text(q, 1, name);
	O->bind_i64(q, 2, knytt__now_ms());
	int row = 0;
	rc = step_one(st, q, &row);
	if (rc == 0 && row && id)
		*id = (uint64_t)O->col_i64(q, 0);
	O->reset(q);
	if (rc == KNYTT_EEXIST)
		return knytt__err(KNYTT_EEXIST, "tenant '%s' already exists",
				  name);
	return rc;
}

int knytt_store_tenant_find(knytt_store *st, const char *name, uint64_t *id)
{
	if (!st)
		return knytt__err(KNYTT_EINVAL, "store is NULL");
	int rc = check_id("name", name);
	if (rc)
		return rc;
	knytt__stmt *q = knytt__st_q(st, Q_TENANT_FIND);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_text(q, 1, name);
	int row = 0;
	rc = step_one(st, q, &row);
	if (rc == 0 && row && id)
		*id = (uint64_t)O->col_i64(q, 0);
	O->reset(q);
	if (rc == 0 && !row)
		return knytt__err(KNYTT_ENOTFOUND, "no tenant '%s'", name);
	return rc;
}

int knytt_store_use_tenant(knytt_store *st, uint64_t tenant)
{
	if (!st)
		return knytt__err(KNYTT_EINVAL, "store is NULL");
	knytt__stmt *q = knytt__st_q(st, Q_TENANT_GET);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)tenant);
	int row = 0;
	int rc = step_one(st, q, &row);
	O->reset(q);
	if (rc)
		return rc;
	if (!row)
		return knytt__err(KNYTT_ENOTFOUND, "no tenant with id %llu",
				  (unsigned long long)tenant);
	st->tenant = tenant;
	return 0;
}

uint64_t knytt_store_tenant(const knytt_store *st)
{
	return st ? st->tenant : 0;
}

static void sha256(const char *key, unsigned char md[32])
{
	unsigned int n = 32;
	EVP_Digest(key, strlen(key), md, &n, EVP_sha256(), NULL);
}

/* "kn_sk_" | "kn_pk_" + 64 lower-case hex digits. */
static int key_wellformed(const char *key)
{
	if (strlen(key) != KNYTT_STORE_KEY_LEN)
		return 0;
	if (strncmp(key, "kn_sk_", 6) != 0 && strncmp(key, "kn_pk_", 6) != 0)
		return 0;
	for (const char *p = key + 6; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

int knytt_store_key_create(knytt_store *st, knytt_key_scope scope,
			   char *key)
{
	int rc = need_tenant(st);
	if (rc)
		return rc;
	if (!key)
		return knytt__err(KNYTT_EINVAL, "key buffer is NULL");
	if (scope != KNYTT_KEY_SECRET && scope != KNYTT_KEY_PUBLIC)
		return knytt__err(KNYTT_EINVAL, "scope %d is not a key scope",
				  (int)scope);
	unsigned char rnd[32];
	if (RAND_bytes(rnd, sizeof rnd) != 1)
		return knytt__err(KNYTT_EIO, "RAND_bytes failed");
	memcpy(key, scope == KNYTT_KEY_SECRET ? "kn_sk_" : "kn_pk_", 6);
	for (int i = 0; i < 32; i++)
		snprintf(key + 6 + 2 * i, 3, "%02x", rnd[i]);
	OPENSSL_cleanse(rnd, sizeof rnd);
	unsigned char md[32];
	sha256(key, md);
	knytt__stmt *q = knytt__st_q(st, Q_KEY_INS);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_blob(q, 2, md, 32);
	O->bind_i64(q, 3, scope);
	O->bind_i64(q, 4, knytt__now_ms());
	int row;
	rc = step_one(st, q, &row);
	O->reset(q);
	return rc;
}

int knytt_store_key_lookup(knytt_store *st, const char *key,
			   uint64_t *tenant, knytt_key_scope *scope)
{
	if (!st || !key)
		return knytt__err(KNYTT_EINVAL, "store or key is NULL");
	if (!key_wellformed(key))
		return knytt__err(KNYTT_EAUTH, "malformed API key");
	unsigned char md[32];
	sha256(key, md);
	knytt__stmt *q = knytt__st_q(st, Q_KEY_FIND);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_blob(q, 1, md, 32);
	int row = 0;
	int rc = step_one(st, q, &row);
	if (rc == 0 && row) {
		size_t n = 0;
		const void *h = O->col_blob(q, 3, &n);
		if (n != 32 || CRYPTO_memcmp(h, md, 32) != 0)
			rc = knytt__err(KNYTT_EAUTH, "unknown API key");
		else if (!O->col_null(q, 2))
			rc = knytt__err(KNYTT_EAUTH, "API key was revoked");
		else {
			if (tenant)
				*tenant = (uint64_t)O->col_i64(q, 0);
			if (scope)
				*scope = (knytt_key_scope)O->col_i64(q, 1);
		}
	} else if (rc == 0) {
		rc = knytt__err(KNYTT_EAUTH, "unknown API key");
	}
	O->reset(q);
	return rc;
}

int knytt_store_key_revoke(knytt_store *st, const char *key)
{
	int rc = need_tenant(st);
	if (rc)
		return rc;
	if (!key)
		return knytt__err(KNYTT_EINVAL, "key is NULL");
	if (!key_wellformed(key))
		return knytt__err(KNYTT_ENOTFOUND, "malformed API key");
	unsigned char md[32];
	sha256(key, md);
	knytt__stmt *q = knytt__st_q(st, Q_KEY_REVOKE);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_blob(q, 2, md, 32);
	O->bind_i64(q, 3, knytt__now_ms());
	int row;
	rc = step_one(st, q, &row);
	int64_t ch = O->changes(q);
	O->reset(q);
	if (rc)
		return rc;
	return ch ? 0 : knytt__err(KNYTT_ENOTFOUND,
				   "no such API key for this tenant");
}

/* ---- items ------------------------------------------------------------- */

#define HAS(p, T, f) ((p)->struct_size >= offsetof(T, f) + sizeof((p)->f))

static int check_category(const char *c)
{
	int rc = knytt__check_text("category", c, 512, 0);
	if (rc || !c)
		return rc;
	size_t n = strlen(c);
	if (n == 0 || c[0] == '/' || c[n - 1] == '/' || strstr(c, "//"))
		return knytt__err(KNYTT_EINVAL,
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
	if (!HAS(in, knytt_item, ext_id))
		return knytt__err(KNYTT_EINVAL,
				  "item struct_size %zu is too small (set it "
				  "to sizeof(knytt_item))",
				  in->struct_size);
	memset(it, 0, sizeof *it);
	it->struct_size = sizeof *it;
	it->in_stock = 1;
	size_t sz = in->struct_size < sizeof *it ? in->struct_size
						 : sizeof *it;
	memcpy(it, in, sz);
	/* members past the caller's struct_size keep the defaults above */
	int rc;
	if ((rc = check_id("id", it->ext_id)) ||
	    (rc = knytt__check_text("title", it->title, 1024, 0)) ||
	    (rc = knytt__check_text("description", it->description, 65536,
				    0)) ||
	    (rc = check_category(it->category)) ||
	    (rc = knytt__check_text("image_url", it->image_url, 2048, 0)) ||
	    (rc = knytt__check_json_obj("attributes", it->attributes)))
		return rc;
	if (!isfinite(it->price) || it->price < 0)
		return knytt__err(KNYTT_EINVAL,
				  "field price must be a finite number >= 0");
	if (!isfinite(it->quality))
		return knytt__err(KNYTT_EINVAL,
				  "field quality must be finite");
	if (it->in_stock != 0 && it->in_stock != 1)
		return knytt__err(KNYTT_EINVAL, "field in_stock must be 0 or 1");
	if (it->currency) {
		const char *c = it->currency;
		if (strlen(c) != 3 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' ||
		    c[1] > 'Z' || c[2] < 'A' || c[2] > 'Z')
			return knytt__err(KNYTT_EINVAL,
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
	int rc = step_one(st, q, &row);
	uint64_t got = row ? (uint64_t)O->col_i64(q, 0) : 0;
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
	int rc = need_tenant(st);
	if (rc)
		return rc;
	return knytt__item_upsert_checked(st, item, 0, id);
}

/* Looks @p ext up with statement @p qid (tenant, ext_id -> id): 1 =
 * found (*id set), 0 = not there, < 0 error. */
static int lookup_id(knytt_store *st, int qid, const char *ext, uint64_t *id)
{
	knytt__stmt *q = knytt__st_q(st, qid);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, ext);
	int row = 0;
	int rc = step_one(st, q, &row);
	if (rc == 0 && row)
		*id = (uint64_t)O->col_i64(q, 0);
	O->reset(q);
	return rc ? rc : row;
}

static int id_of(knytt_store *st, int qid, const char *what,
		 const char *ext, uint64_t *id)
{
	int rc = lookup_id(st, qid, ext, id);
	if (rc == 0)
		return knytt__err(KNYTT_ENOTFOUND, "no %s '%.200s'", what, ext);
	return rc < 0 ? rc : 0;
}

int knytt__item_id(knytt_store *st, const char *ext, uint64_t *id)
{
	return id_of(st, Q_ITEM_ID, "item", ext, id);
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
	int rc = need_tenant(st);
	if (rc)
		return rc;
	if (!out)
		return knytt__err(KNYTT_EINVAL, "out is NULL");
	*out = NULL;
	if (qid == Q_ITEM_GET && (rc = check_id("id", ext)))
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
	rc = step_one(st, q, &row);
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
	int rc = need_tenant(st);
	if (rc || (rc = check_id("id", ext_id)))
		return rc;
	knytt__stmt *q = knytt__st_q(st, Q_ITEM_DEL);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, ext_id);
	O->bind_i64(q, 3, knytt__now_ms());
	int row;
	rc = step_one(st, q, &row);
	int64_t ch = O->changes(q);
	O->reset(q);
	if (rc)
		return rc;
	return ch ? 0 : knytt__err(KNYTT_ENOTFOUND, "no item '%.200s'",
				   ext_id);
}

#define PAGE 512

int knytt_store_items_changed(knytt_store *st, int64_t since_ms,
			      knytt_item_fn fn, void *ctx)
{
	int rc = need_tenant(st);
	if (rc)
		return rc;
	if (!fn)
		return knytt__err(KNYTT_EINVAL, "callback is NULL");
	knytt_item **page = malloc(PAGE * sizeof *page);
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
		O->bind_i64(q, 4, PAGE);
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
		if (n < PAGE)
			break;
	}
	free(page);
	if (rc < 0)
		return rc;
	return visited > INT_MAX ? INT_MAX : (int)visited;
}

static int64_t count_q(knytt_store *st, int qid)
{
	int rc = need_tenant(st);
	if (rc)
		return rc;
	knytt__stmt *q = knytt__st_q(st, qid);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	int row = 0;
	rc = step_one(st, q, &row);
	int64_t n = row ? O->col_i64(q, 0) : 0;
	O->reset(q);
	return rc ? rc : n;
}

int64_t knytt_store_item_count(knytt_store *st)
{
	return count_q(st, Q_ITEM_COUNT);
}

/* ---- keyword search ---------------------------------------------------- */

/* Splits @p query into words (runs of ASCII letters/digits and non-ASCII
 * bytes) and writes an FTS5 query of quoted words (SQLite) or the words
 * separated by spaces (PostgreSQL's plainto_tsquery).  Returns the word
 * count. */
static int query_words(const char *query, int pg, char *out, size_t cap)
{
	size_t o = 0;
	int words = 0;
	const unsigned char *p = (const unsigned char *)query;
	while (*p) {
		while (*p && *p < 0x80 && !((*p >= '0' && *p <= '9') ||
					    ((*p | 0x20) >= 'a' &&
					     (*p | 0x20) <= 'z')))
			p++;
		if (!*p)
			break;
		const unsigned char *w = p;
		while (*p && (*p >= 0x80 || (*p >= '0' && *p <= '9') ||
			      ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z')))
			p++;
		size_t n = (size_t)(p - w);
		if (o + n + 4 >= cap)
			break;
		if (words)
			out[o++] = ' ';
		if (!pg)
			out[o++] = '"';
		memcpy(out + o, w, n);
		o += n;
		if (!pg)
			out[o++] = '"';
		words++;
	}
	out[o] = '\0';
	return words;
}

int knytt__store_bg_checkpoint(knytt_store *st, int on)
{
	if (!st)
		return knytt__err(KNYTT_EINVAL, "store is NULL");
	if (st->ops->dialect != KNYTT__SQLITE)
		return 0;
	return knytt__sqlite_bg_checkpoint(st->db, on);
}

void knytt__store_search_stats(knytt_store *st, long long *scored,
				long long *read)
{
	*scored = *read = -1;
	if (st && st->ops->dialect == KNYTT__SQLITE)
		knytt__sqlite_search_stats(st->db, scored, read);
}

static int run_search(knytt_store *st, int qid, const knytt__search *s,
		      uint64_t *ids, double *scores, size_t cap);

static int search(knytt_store *st, const char *query, knytt__search *s,
		  uint64_t *ids, double *scores, size_t cap)
{
	int rc = need_tenant(st);
	if (rc)
		return rc;
	if (!query || !ids)
		return knytt__err(KNYTT_EINVAL, "query or ids is NULL");
	if ((rc = knytt__check_text("query", query, 1024, 1)) ||
	    (rc = knytt__check_text("category_prefix", s->category_prefix,
				    512, 0)))
		return rc;
	if (cap == 0)
		return 0;
	if (cap > INT_MAX)
		cap = INT_MAX;
	char words[2200];
	s->nwords = query_words(query, O->dialect == KNYTT__PG, words,
				sizeof words);
	if (s->nwords == 0)
		return knytt__err(KNYTT_EINVAL,
				  "field query has no word to search for");
	s->match = words;
	if (O->search && !st->search_plain) {
		rc = O->search(st->db, st->tenant, s, ids, scores, cap);
		if (rc != KNYTT_ENOTSUP)
			return rc;
	}
	if (O->dialect == KNYTT__PG && !st->search_plain && s->nwords == 1) {
		rc = run_search(st, Q_SEARCH_TITLE, s, ids, scores, cap);
		if (rc < 0 || (size_t)rc == cap)
			return rc;
	}
	return run_search(st, Q_SEARCH, s, ids, scores, cap);
}

int knytt_store_search(knytt_store *st, const char *query,
		       const char *category_prefix, double price_min,
		       double price_max, int in_stock_only, uint64_t *ids,
		       double *scores, size_t cap)
{
	knytt__search s = {.category_prefix = category_prefix,
			   .price_min = price_min,
			   .price_max = price_max,
			   .in_stock_only = in_stock_only};
	return search(st, query, &s, ids, scores, cap);
}

int knytt_store_search_fn(knytt_store *st, const char *query,
			  knytt_accept_fn accept, void *ctx, uint64_t *ids,
			  double *scores, size_t cap)
{
	if (!accept)
		return knytt__err(KNYTT_EINVAL, "accept is NULL");
	knytt__search s = {.price_min = NAN,
			   .price_max = NAN,
			   .accept = accept,
			   .ctx = ctx};
	return search(st, query, &s, ids, scores, cap);
}

/* The SQL path.  With a caller's filter the best rows are read in
 * growing slices (8x each time) until enough are accepted or none are
 * left. */
static int run_search(knytt_store *st, int qid, const knytt__search *s,
		      uint64_t *ids, double *scores, size_t cap)
{
	int64_t limit = (int64_t)cap;
	if (s->accept)
		limit = cap < 32 ? 256 : (int64_t)cap * 8;
	for (;;) {
		knytt__stmt *q = knytt__st_q(st, qid);
		if (!q)
			return knytt__err_keep(KNYTT_EDB);
		O->bind_text(q, 1, s->match);
		O->bind_i64(q, 2, (int64_t)st->tenant);
		O->bind_text(q, 3, s->category_prefix);
		if (isnan(s->price_min))
			O->bind_null(q, 4);
		else
			O->bind_f64(q, 4, s->price_min);
		if (isnan(s->price_max))
			O->bind_null(q, 5);
		else
			O->bind_f64(q, 5, s->price_max);
		O->bind_i64(q, 6, s->in_stock_only ? 1 : 0);
		O->bind_i64(q, 7, limit);
		int n = 0, rc;
		int64_t seen = 0;
		while ((size_t)n < cap && (rc = O->step(q)) == 1) {
			seen++;
			uint64_t id = (uint64_t)O->col_i64(q, 0);
			if (s->accept && !s->accept(id, s->ctx))
				continue;
			ids[n] = id;
			if (scores)
				scores[n] = O->col_f64(q, 1);
			n++;
		}
		O->reset(q);
		if (rc < 0)
			return rc;
		if ((size_t)n == cap || seen < limit || limit >= INT64_MAX / 8)
			return n;
		limit *= 8;
	}
}

/* ---- users ------------------------------------------------------------- */

int knytt_store_user_upsert(knytt_store *st, const char *ext_id,
			    const char *attributes, uint64_t *id)
{
	int rc = need_tenant(st);
	if (rc || (rc = check_id("id", ext_id)) ||
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
	rc = step_one(st, q, &row);
	if (rc == 0 && row && id)
		*id = (uint64_t)O->col_i64(q, 0);
	O->reset(q);
	return rc;
}

/* The user's id, creating the user on first sight.  Most events come
 * from known users: one read for them, the insert only for the others
 * (an INSERT that meets the user costs a write attempt and then the
 * same read). */
int knytt__user_ensure(knytt_store *st, const char *ext, uint64_t *id)
{
	int rc = lookup_id(st, Q_USER_ID, ext, id);
	if (rc)
		return rc < 0 ? rc : 0;
	knytt__stmt *q = knytt__st_q(st, Q_USER_ENSURE);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, ext);
	O->bind_i64(q, 3, knytt__now_ms());
	int row = 0;
	rc = step_one(st, q, &row);
	if (rc == 0 && row)
		*id = (uint64_t)O->col_i64(q, 0);
	O->reset(q);
	if (rc || row)
		return rc;
	/* created meanwhile by another connection */
	rc = lookup_id(st, Q_USER_ID, ext, id);
	if (rc == 0)
		return knytt__err(KNYTT_EDB, "user '%.200s' vanished", ext);
	return rc < 0 ? rc : 0;
}

int knytt__user_ensure_checked(knytt_store *st, const char *ext)
{
	uint64_t id;
	int rc = check_id("id", ext);
	return rc ? rc : knytt__user_ensure(st, ext, &id);
}

static int user_id(knytt_store *st, const char *ext, uint64_t *id)
{
	return id_of(st, Q_USER_ID, "user", ext, id);
}

static char *dupstr(const char *s)
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
	int rc = need_tenant(st);
	if (rc || (rc = check_id("id", ext_id)))
		return rc;
	if (attributes)
		*attributes = NULL;
	knytt__stmt *q = knytt__st_q(st, Q_USER_GET);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, ext_id);
	int row = 0;
	rc = step_one(st, q, &row);
	if (rc == 0 && row) {
		if (id)
			*id = (uint64_t)O->col_i64(q, 0);
		if (created_ms)
			*created_ms = O->col_i64(q, 2);
		const char *a = O->col_text(q, 1);
		if (attributes && a && !(*attributes = dupstr(a)))
			rc = knytt__err(KNYTT_ENOMEM, "out of memory");
	}
	O->reset(q);
	if (rc == 0 && !row)
		return knytt__err(KNYTT_ENOTFOUND, "no user '%.200s'", ext_id);
	return rc;
}

int64_t knytt_store_user_count(knytt_store *st)
{
	return count_q(st, Q_USER_COUNT);
}

/* ---- interactions ------------------------------------------------------ */

static const struct {
	const char *name;
	double weight;
} builtin_types[] = {
	{"view", 1},     {"click", 2},    {"add_to_cart", 4},
	{"favorite", 4}, {"purchase", 8}, {"rating", 1},
};

double knytt__type_weight(const char *type)
{
	/* called per imported row: compare only names that could match */
	for (size_t i = 0; i < sizeof builtin_types / sizeof *builtin_types;
	     i++)
		if (type[0] == builtin_types[i].name[0] &&
		    strcmp(type, builtin_types[i].name) == 0)
			return builtin_types[i].weight;
	return 1;
}

int knytt__ix_prepare(knytt_store *st, const knytt_interaction *in,
		      knytt__ixrow *r, int resolve)
{
	if (!in)
		return knytt__err(KNYTT_EINVAL, "interaction is NULL");
	if (!HAS(in, knytt_interaction, event_id))
		return knytt__err(KNYTT_EINVAL,
				  "interaction struct_size %zu does not "
				  "match sizeof(knytt_interaction)",
				  in->struct_size);
	int rc;
	if ((rc = check_id("user", in->user)) ||
	    (rc = check_id("item", in->item)))
		return rc;
	const char *t = in->type;
	if (!t)
		return knytt__err(KNYTT_EINVAL, "field type is required");
	size_t tl = strlen(t);
	if (tl == 0 || tl > 32)
		return knytt__err(KNYTT_EINVAL,
				  "field type must have 1..32 characters");
	for (size_t i = 0; i < tl; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') ||
		      (t[i] >= '0' && t[i] <= '9') || t[i] == '_'))
			return knytt__err(KNYTT_EINVAL,
					  "field type '%.32s' may only hold "
					  "a-z, 0-9 and _",
					  t);
	if (!isfinite(in->weight) || in->weight < 0)
		return knytt__err(KNYTT_EINVAL,
				  "field weight must be finite and >= 0");
	if (in->has_value && !isfinite(in->value))
		return knytt__err(KNYTT_EINVAL, "field value must be finite");
	if (in->ts_ms < 0)
		return knytt__err(KNYTT_EINVAL, "field ts_ms must be >= 0");
	if ((rc = knytt__ts_check("ts_ms", in->ts_ms, knytt__now_ms(),
				  st ? st->future_tol_ms
				     : KNYTT_FUTURE_TOLERANCE_MS)))
		return rc;
	if (in->event_id && (rc = check_id("event_id", in->event_id)))
		return rc;
	memset(r, 0, sizeof *r);
	memcpy(r->type, t, tl + 1);
	r->weight = in->weight > 0 ? in->weight : knytt__type_weight(t);
	r->has_value = in->has_value != 0;
	r->value = r->has_value ? in->value : 0;
	r->ts = in->ts_ms ? in->ts_ms : knytt__now_ms();
	if (in->event_id) /* check_id bounded its length */
		memcpy(r->event_id, in->event_id, strlen(in->event_id) + 1);
	if (!resolve)
		return 0;
	if ((rc = knytt__item_id(st, in->item, &r->item_id)))
		return rc;
	return knytt__user_ensure(st, in->user, &r->user_id);
}

int knytt_store_interaction_add(knytt_store *st,
				const knytt_interaction *ix)
{
	int rc = need_tenant(st);
	if (rc)
		return rc;
	knytt__ixrow r;
	/* user creation and the insert commit together */
	if ((rc = knytt__st_begin(st)))
		return rc;
	if ((rc = knytt__ix_prepare(st, ix, &r, 1)) < 0) {
		knytt__st_rollback(st);
		return rc;
	}
	knytt__stmt *q = knytt__st_q(st, Q_IX_INS);
	if (!q) {
		rc = knytt__err_keep(KNYTT_EDB);
		knytt__st_rollback(st);
		return rc;
	}
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, (int64_t)r.user_id);
	O->bind_i64(q, 3, (int64_t)r.item_id);
	O->bind_text(q, 4, r.type);
	O->bind_f64(q, 5, r.weight);
	if (r.has_value)
		O->bind_f64(q, 6, r.value);
	else
		O->bind_null(q, 6);
	O->bind_i64(q, 7, r.ts);
	O->bind_text(q, 8, r.event_id[0] ? r.event_id : NULL);
	int row;
	rc = step_one(st, q, &row);
	int64_t ch = O->changes(q);
	O->reset(q);
	/* a favorite event marks the favorite too, in the same commit */
	if (rc == 0 && ch)
		rc = knytt__ix_favorites(st, &r, 1);
	if (rc) {
		knytt__st_rollback(st);
		return rc;
	}
	if ((rc = knytt__st_commit(st)))
		return rc;
	return ch ? 1 : 0;
}

/* A page of interactions copied out of the statement, so callbacks run
 * with no statement active and may use the store. */
typedef struct ixbuf {
	knytt_interaction ix;
	char user[KNYTT_STORE_MAX_ID + 1], item[KNYTT_STORE_MAX_ID + 1];
	char type[33], event[KNYTT_STORE_MAX_ID + 1];
} ixbuf;

static void ix_copy(knytt_store *st, knytt__stmt *q, ixbuf *b)
{
	knytt_interaction *x = &b->ix;
	memset(x, 0, sizeof *x);
	x->struct_size = sizeof *x;
	x->id = (uint64_t)O->col_i64(q, 0);
	snprintf(b->user, sizeof b->user, "%s", O->col_text(q, 1));
	snprintf(b->item, sizeof b->item, "%s", O->col_text(q, 2));
	x->user_id = (uint64_t)O->col_i64(q, 3);
	x->item_id = (uint64_t)O->col_i64(q, 4);
	snprintf(b->type, sizeof b->type, "%s", O->col_text(q, 5));
	x->weight = O->col_f64(q, 6);
	x->has_value = !O->col_null(q, 7);
	x->value = x->has_value ? O->col_f64(q, 7) : 0;
	x->ts_ms = O->col_i64(q, 8);
	const char *e = O->col_text(q, 9);
	if (e)
		snprintf(b->event, sizeof b->event, "%s", e);
	x->user = b->user;
	x->item = b->item;
	x->type = b->type;
	x->event_id = e ? b->event : NULL;
}

/* Pages through Q_IX_SINCE (keyset on (ts, id)) or runs a recent-N
 * query once (qid Q_IX_USER / Q_IX_ITEM with owner id and limit). */
static int ix_scan(knytt_store *st, int qid, uint64_t owner, size_t limit,
		   int64_t since, knytt_interaction_fn fn, void *ctx)
{
	ixbuf *page = malloc(PAGE * sizeof *page);
	if (!page)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	int64_t k_ts = since, k_id = -1;
	long long visited = 0;
	int rc = 0;
	size_t left = limit;
	for (;;) {
		knytt__stmt *q = knytt__st_q(st, qid);
		if (!q) {
			rc = knytt__err_keep(KNYTT_EDB);
			break;
		}
		size_t want = PAGE;
		O->bind_i64(q, 1, (int64_t)st->tenant);
		if (qid == Q_IX_SINCE) {
			O->bind_i64(q, 2, k_ts);
			O->bind_i64(q, 3, k_id);
			O->bind_i64(q, 4, PAGE);
		} else if (qid == Q_IX_USER_ALL) {
			O->bind_i64(q, 2, (int64_t)owner);
			O->bind_i64(q, 3, k_ts);
			O->bind_i64(q, 4, k_id);
			O->bind_i64(q, 5, PAGE);
		} else {
			want = left < PAGE ? left : PAGE;
			O->bind_i64(q, 2, (int64_t)owner);
			O->bind_i64(q, 3, (int64_t)want);
		}
		size_t n = 0;
		while (n < want && (rc = O->step(q)) == 1)
			ix_copy(st, q, &page[n++]);
		O->reset(q);
		if (rc < 0)
			break;
		rc = 0;
		int stop = 0;
		for (size_t i = 0; i < n && !stop; i++) {
			visited++;
			if (fn(&page[i].ix, ctx))
				stop = 1;
		}
		if (stop) {
			rc = knytt__err(KNYTT_ECANCELED,
					"the callback stopped the scan");
			break;
		}
		if (n < want || (qid != Q_IX_SINCE && qid != Q_IX_USER_ALL))
			break; /* recent-N: one query (limit <= PAGE) */
		k_ts = page[n - 1].ix.ts_ms;
		k_id = (int64_t)page[n - 1].ix.id;
	}
	free(page);
	if (rc < 0)
		return rc;
	return visited > INT_MAX ? INT_MAX : (int)visited;
}

static int recent(knytt_store *st, int qid, const char *ext, size_t n,
		  knytt_interaction_fn fn, void *ctx)
{
	int rc = need_tenant(st);
	if (rc || (rc = check_id(qid == Q_IX_USER ? "user" : "item", ext)))
		return rc;
	if (!fn)
		return knytt__err(KNYTT_EINVAL, "callback is NULL");
	uint64_t id = 0;
	rc = qid == Q_IX_USER ? user_id(st, ext, &id)
			      : knytt__item_id(st, ext, &id);
	if (rc)
		return rc;
	if (n == 0)
		return 0;
	if (n > PAGE)
		n = PAGE; /* documented: recent means at most one page */
	return ix_scan(st, qid, id, n, 0, fn, ctx);
}

int knytt_store_user_recent(knytt_store *st, const char *user, size_t n,
			    knytt_interaction_fn fn, void *ctx)
{
	return recent(st, Q_IX_USER, user, n, fn, ctx);
}

int knytt_store_user_history(knytt_store *st, const char *user,
			     knytt_interaction_fn fn, void *ctx)
{
	int rc = need_tenant(st);
	if (rc || (rc = check_id("user", user)))
		return rc;
	if (!fn)
		return knytt__err(KNYTT_EINVAL, "callback is NULL");
	uint64_t id = 0;
	if ((rc = user_id(st, user, &id)))
		return rc;
	return ix_scan(st, Q_IX_USER_ALL, id, 0, INT64_MIN, fn, ctx);
}

int knytt_store_item_recent(knytt_store *st, const char *item, size_t n,
			    knytt_interaction_fn fn, void *ctx)
{
	return recent(st, Q_IX_ITEM, item, n, fn, ctx);
}

int knytt_store_interactions_since(knytt_store *st, int64_t since_ms,
				   knytt_interaction_fn fn, void *ctx)
{
	int rc = need_tenant(st);
	if (rc)
		return rc;
	if (!fn)
		return knytt__err(KNYTT_EINVAL, "callback is NULL");
	return ix_scan(st, Q_IX_SINCE, 0, 0, since_ms, fn, ctx);
}

int64_t knytt_store_interaction_count(knytt_store *st)
{
	return count_q(st, Q_IX_COUNT);
}

int knytt_store_item_counts(knytt_store *st, int64_t from_ms, int64_t to_ms,
			    const char *type, uint64_t *item_ids,
			    uint64_t *counts, size_t cap)
{
	int rc = need_tenant(st);
	if (rc)
		return rc;
	if (!item_ids || !counts)
		return knytt__err(KNYTT_EINVAL, "item_ids or counts is NULL");
	if ((rc = knytt__check_text("type", type, 32, 0)))
		return rc;
	if (cap == 0)
		return 0;
	knytt__stmt *q = knytt__st_q(st, type ? Q_IX_COUNTS_T : Q_IX_COUNTS);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, from_ms);
	O->bind_i64(q, 3, to_ms);
	O->bind_i64(q, 4, cap > INT_MAX ? INT_MAX : (int64_t)cap);
	if (type)
		O->bind_text(q, 5, type);
	int n = 0;
	while ((size_t)n < cap && (rc = O->step(q)) == 1) {
		item_ids[n] = (uint64_t)O->col_i64(q, 0);
		counts[n] = (uint64_t)O->col_i64(q, 1);
		n++;
	}
	O->reset(q);
	return rc < 0 ? rc : n;
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
		int row, rc = step_one(st, q, &row);
		O->reset(q);
		if (rc)
			return rc;
	}
	return 0;
}

static int fav(knytt_store *st, int qid, const char *user, const char *item)
{
	int rc = need_tenant(st);
	if (rc || (rc = check_id("user", user)) ||
	    (rc = check_id("item", item)))
		return rc;
	uint64_t uid = 0, iid = 0;
	if ((rc = knytt__item_id(st, item, &iid)))
		return rc;
	rc = qid == Q_FAV_SET ? knytt__user_ensure(st, user, &uid)
			      : user_id(st, user, &uid);
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
	rc = step_one(st, q, &row);
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
	int rc = need_tenant(st);
	if (rc || (rc = check_id("user", user)))
		return rc;
	if (!item_ids)
		return knytt__err(KNYTT_EINVAL, "item_ids is NULL");
	uint64_t uid = 0;
	rc = user_id(st, user, &uid);
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
		rc = check_id("user", user);
	return rc;
}

int knytt_store_search_log(knytt_store *st, const char *query,
			   const char *user, int result_count, int64_t ts_ms,
			   uint64_t *log_id)
{
	return knytt__search_log_ins(st, query, user, result_count, ts_ms,
				     NULL, log_id);
}

int knytt__check_id(const char *field, const char *s)
{
	return check_id(field, s);
}

int knytt__need_tenant(const knytt_store *st)
{
	return need_tenant(st);
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
	int rc = need_tenant(st);
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
	int row = 0;
	rc = step_one(st, q, &row);
	if (rc == 0 && row && log_id)
		*log_id = (uint64_t)O->col_i64(q, 0);
	O->reset(q);
	return rc;
}

int knytt_store_search_click(knytt_store *st, uint64_t log_id,
			     const char *item)
{
	int rc = need_tenant(st);
	if (rc || (rc = check_id("item", item)))
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
	rc = step_one(st, q, &row);
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
	int rc = need_tenant(st);
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
	rc = step_one(st, q, &row);
	if (rc == 0 && row) {
		if (result_count)
			*result_count = (int)O->col_i64(q, 1);
		if (clicked_item)
			*clicked_item = (uint64_t)O->col_i64(q, 2);
		if (query && !(*query = dupstr(O->col_text(q, 0))))
			rc = knytt__err(KNYTT_ENOMEM, "out of memory");
	}
	O->reset(q);
	if (rc == 0 && !row)
		return knytt__err(KNYTT_ENOTFOUND, "no search log entry %llu",
				  (unsigned long long)log_id);
	return rc;
}

/* ---- embeddings and models --------------------------------------------- */

static int owner_ok(knytt_store *st, knytt_owner owner, uint64_t id)
{
	if (owner != KNYTT_OWNER_ITEM && owner != KNYTT_OWNER_USER)
		return knytt__err(KNYTT_EINVAL, "owner %d is not an owner kind",
				  (int)owner);
	knytt__stmt *q = knytt__st_q(st, owner == KNYTT_OWNER_ITEM
						 ? Q_EMB_OWNER_ITEM
						 : Q_EMB_OWNER_USER);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, (int64_t)id);
	int row = 0;
	int rc = step_one(st, q, &row);
	O->reset(q);
	if (rc == 0 && !row)
		return knytt__err(KNYTT_ENOTFOUND, "no %s with id %llu",
				  owner == KNYTT_OWNER_ITEM ? "item" : "user",
				  (unsigned long long)id);
	return rc;
}

int knytt_store_embedding_put(knytt_store *st, knytt_owner owner,
			      uint64_t id, const char *version,
			      const float *vec, uint32_t dim)
{
	int rc = need_tenant(st);
	if (rc || (rc = check_id("version", version)))
		return rc;
	if (!vec || dim == 0 || dim > 65536)
		return knytt__err(KNYTT_EINVAL,
				  "vector is NULL or dim %u is not 1..65536",
				  dim);
	for (uint32_t i = 0; i < dim; i++)
		if (!isfinite(vec[i]))
			return knytt__err(KNYTT_EINVAL,
					  "vector value %u is not finite", i);
	if ((rc = owner_ok(st, owner, id)))
		return rc;
	knytt__stmt *q = knytt__st_q(st, Q_EMB_PUT);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, owner);
	O->bind_text(q, 3, version);
	O->bind_i64(q, 4, (int64_t)id);
	O->bind_i64(q, 5, dim);
	/* x86-64 and arm64 are little-endian: the blob is the array */
	O->bind_blob(q, 6, vec, (size_t)dim * sizeof(float));
	int row;
	rc = step_one(st, q, &row);
	O->reset(q);
	return rc;
}

int knytt_store_embedding_get(knytt_store *st, knytt_owner owner,
			      uint64_t id, const char *version, float *out,
			      uint32_t cap)
{
	int rc = need_tenant(st);
	if (rc || (rc = check_id("version", version)))
		return rc;
	if (!out && cap)
		return knytt__err(KNYTT_EINVAL, "out is NULL");
	knytt__stmt *q = knytt__st_q(st, Q_EMB_GET);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, owner);
	O->bind_text(q, 3, version);
	O->bind_i64(q, 4, (int64_t)id);
	int row = 0;
	rc = step_one(st, q, &row);
	int dim = 0;
	if (rc == 0 && row) {
		size_t n = 0;
		const void *b = O->col_blob(q, 1, &n);
		dim = (int)O->col_i64(q, 0);
		if (dim <= 0 || n != (size_t)dim * sizeof(float))
			rc = knytt__err(KNYTT_ECORRUPT,
					"embedding blob of %zu bytes for dim "
					"%d",
					n, dim);
		else if ((uint32_t)dim <= cap)
			memcpy(out, b, n);
	}
	O->reset(q);
	if (rc == 0 && !row)
		return knytt__err(KNYTT_ENOTFOUND,
				  "no embedding of %llu in version '%.100s'",
				  (unsigned long long)id, version);
	return rc ? rc : dim;
}

int knytt_store_embeddings_each(knytt_store *st, knytt_owner owner,
				const char *version, knytt_embedding_fn fn,
				void *ctx)
{
	int rc = need_tenant(st);
	if (rc || (rc = check_id("version", version)))
		return rc;
	if (!fn)
		return knytt__err(KNYTT_EINVAL, "callback is NULL");
	enum { EPAGE = 256 };
	float *buf = NULL;
	size_t bufcap = 0;
	uint64_t ids[EPAGE];
	uint32_t dims[EPAGE];
	size_t offs[EPAGE];
	int64_t key = -1;
	long long visited = 0;
	for (;;) {
		knytt__stmt *q = knytt__st_q(st, Q_EMB_EACH);
		if (!q) {
			rc = knytt__err_keep(KNYTT_EDB);
			break;
		}
		O->bind_i64(q, 1, (int64_t)st->tenant);
		O->bind_i64(q, 2, owner);
		O->bind_text(q, 3, version);
		O->bind_i64(q, 4, key);
		O->bind_i64(q, 5, EPAGE);
		size_t n = 0, used = 0;
		while ((rc = O->step(q)) == 1) {
			size_t bn = 0;
			const void *b = O->col_blob(q, 2, &bn);
			int64_t d = O->col_i64(q, 1);
			if (d <= 0 || bn != (size_t)d * sizeof(float)) {
				rc = knytt__err(KNYTT_ECORRUPT,
						"embedding blob of %zu bytes "
						"for dim %lld",
						bn, (long long)d);
				break;
			}
			if (used + (size_t)d > bufcap) {
				size_t nc = (used + (size_t)d) * 2;
				float *nb = realloc(buf, nc * sizeof *nb);
				if (!nb) {
					rc = knytt__err(KNYTT_ENOMEM,
							"out of memory");
					break;
				}
				buf = nb;
				bufcap = nc;
			}
			memcpy(buf + used, b, bn);
			ids[n] = (uint64_t)O->col_i64(q, 0);
			dims[n] = (uint32_t)d;
			offs[n] = used;
			used += (size_t)d;
			n++;
		}
		O->reset(q);
		if (rc < 0)
			break;
		int stop = 0;
		for (size_t i = 0; i < n && !stop; i++) {
			visited++;
			stop = fn(ids[i], buf + offs[i], dims[i], ctx) != 0;
		}
		if (stop) {
			rc = knytt__err(KNYTT_ECANCELED,
					"the callback stopped the scan");
			break;
		}
		if (n < EPAGE)
			break;
		key = (int64_t)ids[n - 1];
	}
	free(buf);
	if (rc < 0)
		return rc;
	return visited > INT_MAX ? INT_MAX : (int)visited;
}

int knytt_store_model_put(knytt_store *st, const char *name,
			  const void *blob, size_t size, const char *metadata,
			  int64_t *version)
{
	int rc = need_tenant(st);
	if (rc || (rc = check_id("name", name)) ||
	    (rc = knytt__check_json_obj("metadata", metadata)))
		return rc;
	if (!blob && size)
		return knytt__err(KNYTT_EINVAL, "blob is NULL");
	if (size > (size_t)1 << 30)
		return knytt__err(KNYTT_EINVAL,
				  "model blob of %zu bytes is over 1 GiB",
				  size);
	/* inside a caller's transaction (the engine stores a model version
	 * with its embeddings as one), the version is the caller's to
	 * commit or roll back */
	int own = !st->in_txn;
	if (own && (rc = knytt__st_begin(st)))
		return rc;
	knytt__stmt *q = knytt__st_q(st, Q_MODEL_MAX);
	int64_t v = 0;
	int row = 0;
	if (!q) {
		rc = knytt__err_keep(KNYTT_EDB);
	} else {
		O->bind_i64(q, 1, (int64_t)st->tenant);
		O->bind_text(q, 2, name);
		rc = step_one(st, q, &row);
		if (rc == 0 && row && !O->col_null(q, 0))
			v = O->col_i64(q, 0);
		O->reset(q);
	}
	v++;
	if (rc == 0 && !(q = knytt__st_q(st, Q_MODEL_INS)))
		rc = knytt__err_keep(KNYTT_EDB);
	if (rc == 0) {
		O->bind_i64(q, 1, (int64_t)st->tenant);
		O->bind_text(q, 2, name);
		O->bind_i64(q, 3, v);
		O->bind_blob(q, 4, blob, size);
		O->bind_text(q, 5, metadata);
		O->bind_i64(q, 6, knytt__now_ms());
		rc = step_one(st, q, &row);
		O->reset(q);
	}
	if (rc) {
		if (own)
			knytt__st_rollback(st);
		return rc;
	}
	if (own && (rc = knytt__st_commit(st)))
		return rc;
	if (version)
		*version = v;
	return 0;
}

int knytt_store_model_get(knytt_store *st, const char *name,
			  int64_t version, void **blob, size_t *size,
			  char **metadata, int64_t *version_out,
			  int64_t *created_ms)
{
	int rc = need_tenant(st);
	if (rc || (rc = check_id("name", name)))
		return rc;
	if (version < 0)
		return knytt__err(KNYTT_EINVAL, "version must be >= 0");
	if (blob)
		*blob = NULL;
	if (metadata)
		*metadata = NULL;
	knytt__stmt *q = knytt__st_q(st, version ? Q_MODEL_GET
						 : Q_MODEL_LATEST);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, name);
	if (version)
		O->bind_i64(q, 3, version);
	int row = 0;
	rc = step_one(st, q, &row);
	if (rc == 0 && row) {
		size_t n = 0;
		const void *b = O->col_blob(q, 1, &n);
		if (version_out)
			*version_out = O->col_i64(q, 0);
		if (created_ms)
			*created_ms = O->col_i64(q, 3);
		if (size)
			*size = n;
		if (blob) {
			*blob = malloc(n ? n : 1);
			if (!*blob)
				rc = knytt__err(KNYTT_ENOMEM, "out of memory");
			else if (n)
				memcpy(*blob, b, n);
		}
		const char *m = O->col_text(q, 2);
		if (rc == 0 && metadata && m && !(*metadata = dupstr(m)))
			rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		if (rc && blob) {
			free(*blob);
			*blob = NULL;
		}
	}
	O->reset(q);
	if (rc == 0 && !row)
		return knytt__err(KNYTT_ENOTFOUND, "no model '%.200s'%s", name,
				  version ? " of that version" : "");
	return rc;
}
