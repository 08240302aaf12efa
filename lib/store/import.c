/*
 * import.c -- bulk import of items, users and interactions from CSV,
 * JSON Lines and the MovieLens files.
 *
 * Each input row becomes a record, is validated exactly as the single-row
 * calls validate, and is written inside the current batch transaction; a
 * rejected row is reported and skipped.  Every batch_rows accepted rows
 * the transaction commits, so a crash (even kill -9) keeps whole batches
 * only, and because items and users are upserts and interactions carry
 * event ids, re-running the import converges to the state a clean run
 * gives.
 *
 * Interactions are buffered (at most IXBUF rows) and written through the
 * backend's bulk path (prepared INSERTs in SQLite, COPY in PostgreSQL).
 * User and item ids are resolved through a cache, since the same users
 * and items recur on most lines: in SQLite row by row, in PostgreSQL a
 * buffer at a time (pg_resolve).  Big interaction imports run in bulk
 * mode (bulk_begin).
 */
#include "csv.h"
#include "store_int.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IXBUF 8192
#define CACHE_MAX (1u << 20) /* entries per cache before it is emptied */

/* ---- an ext id -> internal id cache (open addressing) ------------------ */

/* A slot is 32 bytes, two to a cache line: the key's hash, the id, and
 * the key itself when it is shorter than INKEY bytes (a longer one is
 * kept behind a pointer).  A lookup of a short key then reads a single
 * line, which consume() fetches ahead from the hash the parsing thread
 * computed.  (With the keys behind pointers, two cache misses per
 * lookup made the two lookups per row a third of the calling thread's
 * time while a 2M-row import inserted: perf record of knytt import on
 * the store benchmark's file.) */
#define INKEY 16

typedef struct idslot {
	uint64_t h; /* 0 = empty; a real hash has its low bit set */
	uint64_t val;
	union {
		char in[INKEY]; /* NUL-terminated; in[INKEY - 1] = 0 */
		char *out;      /* when in[INKEY - 1] = 1 */
	} k;
} idslot;

typedef struct idcache {
	idslot *slot;
	size_t cap, n;
} idcache;

static uint64_t fnv(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	h ^= h >> 29; /* the low bits pick the slot: mix the high ones in */
	return h | 1;
}

static size_t slot_of(const idcache *c, uint64_t h)
{
	return (size_t)(h >> 1) & (c->cap - 1);
}

static const char *slot_key(const idslot *e)
{
	return e->k.in[INKEY - 1] ? e->k.out : e->k.in;
}

static void cache_clear(idcache *c)
{
	for (size_t i = 0; i < c->cap; i++)
		if (c->slot[i].h && c->slot[i].k.in[INKEY - 1])
			free(c->slot[i].k.out);
	free(c->slot);
	memset(c, 0, sizeof *c);
}

/* Starts loading the slot where a lookup of hash @p h begins. */
static void cache_prefetch(const idcache *c, uint64_t h)
{
	if (c->cap)
		__builtin_prefetch(&c->slot[slot_of(c, h)]);
}

/* @p h is fnv(k). */
static int cache_get(const idcache *c, const char *k, uint64_t h, uint64_t *v)
{
	if (!c->cap)
		return 0;
	for (size_t i = slot_of(c, h);; i = (i + 1) & (c->cap - 1)) {
		const idslot *e = &c->slot[i];
		if (!e->h)
			return 0;
		if (e->h == h && strcmp(slot_key(e), k) == 0) {
			*v = e->val;
			return 1;
		}
	}
}

static int cache_grow(idcache *c)
{
	size_t nc = c->cap ? 2 * c->cap : 1024;
	/* aligned, so that no slot straddles two cache lines */
	idslot *ns = aligned_alloc(64, nc * sizeof *ns);
	if (!ns)
		return -1;
	memset(ns, 0, nc * sizeof *ns);
	idcache g = {ns, nc, c->n};
	for (size_t i = 0; i < c->cap; i++) {
		if (!c->slot[i].h)
			continue;
		size_t j = slot_of(&g, c->slot[i].h);
		while (ns[j].h)
			j = (j + 1) & (nc - 1);
		ns[j] = c->slot[i];
	}
	free(c->slot);
	*c = g;
	return 0;
}

/* @p h is fnv(k).  Out of memory only costs a later miss. */
static void cache_put(idcache *c, const char *k, uint64_t h, uint64_t v)
{
	if (c->n >= CACHE_MAX)
		cache_clear(c);
	if (2 * (c->n + 1) > c->cap && cache_grow(c))
		return;
	size_t i = slot_of(c, h);
	while (c->slot[i].h) {
		if (c->slot[i].h == h && strcmp(slot_key(&c->slot[i]), k) == 0) {
			c->slot[i].val = v;
			return;
		}
		i = (i + 1) & (c->cap - 1);
	}
	idslot e = {h, v, {{0}}};
	size_t n = strlen(k) + 1;
	if (n < INKEY) {
		memcpy(e.k.in, k, n);
	} else {
		if (!(e.k.out = malloc(n)))
			return;
		memcpy(e.k.out, k, n);
		e.k.in[INKEY - 1] = 1;
	}
	c->slot[i] = e;
	c->n++;
}

/* ---- the import state ---------------------------------------------------- */

typedef struct imp {
	knytt_store *st;
	knytt_record_kind kind;
	knytt_reject_fn on_reject;
	void *ctx;
	size_t line;
	long long accepted, in_batch;
	long long dups, rejected; /* for knytt_store_import_report */
	int64_t paused_ms; /* when batch_end last left the lock free */
	knytt__ixrow *ix;
	size_t nix;
	idcache users, items;
	struct ixpipe *pipe; /* set in the parsing thread of a piped import */
} imp;

static void pipe_reject(imp *im, const char *field, const char *reason);

static void reject(imp *im, const char *field, const char *reason)
{
	if (im->pipe) {
		pipe_reject(im, field, reason); /* counted when delivered */
		return;
	}
	im->rejected++;
	if (im->on_reject)
		im->on_reject(im->line, field, reason, im->ctx);
}

/* A row the validators refused: their message, and the field they named
 * (knytt__err_field), never parsed out of the text. */
static void reject_msg(imp *im)
{
	char field[64];
	snprintf(field, sizeof field, "%s", knytt_errfield());
	reject(im, field, knytt_errmsg());
}

static void unknown_item(const knytt__ixrow *r, void *ctx)
{
	imp *im = ctx;
	char msg[320];
	snprintf(msg, sizeof msg, "field item: no item '%.256s'", r->item);
	size_t line = im->line;
	im->line = r->line;
	reject(im, "item", msg);
	im->line = line;
	im->accepted--; /* counted when buffered */
}

/* ---- PostgreSQL: ids resolved a batch at a time ---------------------------
 * A round trip per unknown user or item would dominate the import, and
 * resolving them in SQL joins every row of every batch (about 25 s of a
 * 2M-row import): instead, the ids missing from the caches are looked
 * up (and users created, in order of first appearance) with one
 * statement per batch over an array of external ids. */

/* Appends @p v to a PostgreSQL array literal as a quoted element. */
static int arr_add(char **buf, size_t *len, size_t *cap, const char *v)
{
	size_t need = *len + 2 * strlen(v) + 4;
	if (need > *cap) {
		size_t nc = *cap ? *cap : 4096;
		while (nc < need)
			nc *= 2;
		char *nb = realloc(*buf, nc);
		if (!nb)
			return knytt__err(KNYTT_ENOMEM, "out of memory");
		*buf = nb;
		*cap = nc;
	}
	char *o = *buf + *len;
	*o++ = *len > 1 ? ',' : '{';
	*o++ = '"';
	for (; *v; v++) {
		if (*v == '"' || *v == '\\')
			*o++ = '\\';
		*o++ = *v;
	}
	*o++ = '"';
	*len = (size_t)(o - *buf);
	return 0;
}

/* Resolves the missing ids of one kind (0 items, 1 users) of the buffered
 * rows into the cache; users are created first. */
static int pg_resolve(imp *im, int users)
{
	knytt_store *st = im->st;
	idcache *c = users ? &im->users : &im->items;
	char *arr = NULL;
	size_t len = 0, cap = 0;
	idcache asked = {0};
	int rc = 0;
	for (size_t i = 0; i < im->nix && !rc; i++) {
		const knytt__ixrow *r = &im->ix[i];
		const char *k = users ? r->user : r->item;
		uint64_t v, h = users ? r->user_h : r->item_h;
		if (cache_get(c, k, h, &v) || cache_get(&asked, k, h, &v))
			continue;
		cache_put(&asked, k, h, 0);
		rc = arr_add(&arr, &len, &cap, k);
	}
	cache_clear(&asked);
	if (rc || len == 0) {
		free(arr);
		return rc;
	}
	arr[len++] = '}';
	arr[len] = '\0';
	const knytt__dbops *o = st->ops;
	knytt__stmt *q;
	if (users) {
		rc = o->prepare(st->db,
				"INSERT INTO users(tenant, ext_id, created) "
				"SELECT ?1, x, ?3 FROM unnest(CAST(?2 AS "
				"TEXT[])) WITH ORDINALITY AS t(x, o) ORDER BY "
				"o ON CONFLICT DO NOTHING",
				&q);
		if (rc == 0) {
			o->bind_i64(q, 1, (int64_t)st->tenant);
			o->bind_text(q, 2, arr);
			o->bind_i64(q, 3, knytt__now_ms());
			rc = o->step(q);
			o->finalize(q);
		}
	}
	if (rc >= 0)
		rc = o->prepare(st->db,
				users ? "SELECT ext_id, id FROM users WHERE "
					"tenant = ?1 AND ext_id = ANY(CAST(?2 "
					"AS TEXT[]))"
				      : "SELECT ext_id, id FROM items WHERE "
					"tenant = ?1 AND ext_id = ANY(CAST(?2 "
					"AS TEXT[]))",
				&q);
	if (rc >= 0) {
		o->bind_i64(q, 1, (int64_t)st->tenant);
		o->bind_text(q, 2, arr);
		while ((rc = o->step(q)) == 1) {
			const char *k = o->col_text(q, 0);
			cache_put(c, k, fnv(k), (uint64_t)o->col_i64(q, 1));
		}
		o->finalize(q);
	}
	free(arr);
	return rc < 0 ? rc : 0;
}

/* Fills the ids of the buffered rows; rows whose item does not exist are
 * reported and dropped. */
static int pg_resolve_all(imp *im)
{
	int rc = pg_resolve(im, 0);
	if (rc)
		return rc;
	size_t n = 0;
	for (size_t i = 0; i < im->nix; i++) {
		knytt__ixrow *r = &im->ix[i];
		if (!cache_get(&im->items, r->item, r->item_h, &r->item_id)) {
			unknown_item(r, im);
			continue;
		}
		if (n != i)
			im->ix[n] = *r;
		n++;
	}
	im->nix = n;
	if ((rc = pg_resolve(im, 1)))
		return rc;
	for (size_t i = 0; i < im->nix; i++) {
		knytt__ixrow *r = &im->ix[i];
		if (!cache_get(&im->users, r->user, r->user_h, &r->user_id))
			return knytt__err(KNYTT_EDB, "user '%s' was not created",
					  r->user);
	}
	return 0;
}

/* Stores resolved rows in the open transaction. */
static int insert_rows(imp *im, const knytt__ixrow *rows, size_t n)
{
	if (n == 0)
		return 0;
	int rc = im->st->ops->insert_interactions(im->st->db, im->st->tenant,
						  rows, n);
	if (rc < 0)
		return rc;
	im->dups += (long long)n - rc;
	return knytt__ix_favorites(im->st, rows, n);
}

static int flush_ix(imp *im)
{
	if (!im->nix)
		return 0;
	int rc = im->st->ops->dialect == KNYTT__PG ? pg_resolve_all(im) : 0;
	if (rc == 0)
		rc = insert_rows(im, im->ix, im->nix);
	im->nix = 0;
	return rc;
}

static int batch_end(imp *im, int last)
{
	int rc = flush_ix(im);
	if (rc) {
		knytt__st_rollback(im->st);
		return rc;
	}
	if ((rc = knytt__st_commit(im->st)))
		return rc;
	im->in_batch = 0;
	if (last)
		return 0;
	/* SQLite: other writers of the file wait for this import's lock,
	 * trying every millisecond (sqlite.c); beginning the next batch at
	 * once would take it back before any of them could.  So the import
	 * leaves the lock free for 3 ms, at most every 100 ms: a waiting
	 * writer gets in within ~100 ms plus one batch, for at most 3% of
	 * the import's time. */
	if (im->st->ops->dialect == KNYTT__SQLITE &&
	    knytt__now_ms() - im->paused_ms >= 100) {
		struct timespec ts = {0, 3 * 1000 * 1000};
		nanosleep(&ts, NULL);
		im->paused_ms = knytt__now_ms();
	}
	return knytt__st_begin(im->st);
}

/* After a row was accepted: commit when the batch is full. */
static int accepted(imp *im)
{
	im->accepted++;
	if (++im->in_batch >= (long long)im->st->batch_rows)
		return batch_end(im, 0);
	return 0;
}

/* Database failures end the import; validation failures reject the row. */
static int is_row_error(int rc)
{
	return rc == KNYTT_EINVAL || rc == KNYTT_ENOTFOUND ||
	       rc == KNYTT_ERANGE;
}

static int put_item(imp *im, const knytt_item *it, unsigned keep)
{
	int rc = knytt__item_upsert_checked(im->st, it, keep, NULL);
	if (rc == 0)
		return accepted(im);
	if (is_row_error(rc)) {
		reject_msg(im);
		return 0;
	}
	return rc;
}

/* Without @p has_attrs (no such column), an existing user keeps its
 * attributes. */
static int put_user(imp *im, const char *id, const char *attrs,
		    int has_attrs)
{
	int rc = has_attrs ? knytt_store_user_upsert(im->st, id, attrs, NULL)
			   : knytt__user_ensure_checked(im->st, id);
	if (rc == 0)
		return accepted(im);
	if (is_row_error(rc)) {
		reject_msg(im);
		return 0;
	}
	return rc;
}

/* SQLite: the ids of @p r from the caches, else from the database (users
 * are created); @p uh and @p ih are the ids' fnv() hashes.  1 = the item
 * does not exist (reported), < 0 = error. */
static int resolve_row(imp *im, knytt__ixrow *r, const char *user,
		       uint64_t uh, const char *item, uint64_t ih)
{
	int rc;
	if (!cache_get(&im->items, item, ih, &r->item_id)) {
		rc = knytt__item_id(im->st, item, &r->item_id);
		if (rc == KNYTT_ENOTFOUND) {
			char msg[320];
			snprintf(msg, sizeof msg, "field item: no item '%.256s'",
				 item);
			reject(im, "item", msg);
			return 1;
		}
		if (rc)
			return rc;
		cache_put(&im->items, item, ih, r->item_id);
	}
	if (!cache_get(&im->users, user, uh, &r->user_id)) {
		if ((rc = knytt__user_ensure(im->st, user, &r->user_id)))
			return rc;
		cache_put(&im->users, user, uh, r->user_id);
	}
	return 0;
}

static int pipe_put(imp *im, const knytt_interaction *x);

/* Validates @p x into @p r (no store access), keeping the external ids
 * and their hashes with @p keep_ids.  1 = accepted, 0 = rejected
 * (reported), < 0 = error. */
static int validate_row(imp *im, const knytt_interaction *x,
			knytt__ixrow *r, int keep_ids)
{
	int rc = knytt__ix_prepare(NULL, x, r, 0);
	if (rc) {
		if (!is_row_error(rc))
			return rc;
		reject_msg(im);
		return 0;
	}
	r->line = im->line;
	if (keep_ids) { /* lengths were checked */
		memcpy(r->user, x->user, strlen(x->user) + 1);
		memcpy(r->item, x->item, strlen(x->item) + 1);
		r->user_h = fnv(r->user);
		r->item_h = fnv(r->item);
	}
	return 1;
}

static int put_ix(imp *im, const knytt_interaction *x)
{
	if (im->pipe)
		return pipe_put(im, x);
	knytt__ixrow *r = &im->ix[im->nix];
	/* PostgreSQL resolves the ids a buffer at a time */
	int rc = validate_row(im, x, r, im->st->ops->dialect == KNYTT__PG);
	if (rc <= 0)
		return rc;
	if (im->st->ops->dialect != KNYTT__PG &&
	    (rc = resolve_row(im, r, x->user, fnv(x->user), x->item,
			      fnv(x->item))))
		return rc < 0 ? rc : 0;
	if (++im->nix == IXBUF && (rc = flush_ix(im)))
		return rc;
	return accepted(im);
}

/* ---- field parsing ------------------------------------------------------- */

static int parse_f64(imp *im, const char *field, const char *s, double *v)
{
	char *end;
	errno = 0;
	double d = strtod(s, &end);
	if (end == s || *end || errno == ERANGE || !isfinite(d)) {
		char msg[160];
		snprintf(msg, sizeof msg, "field %s: '%.40s' is not a number",
			 field, s);
		reject(im, field, msg);
		return -1;
	}
	*v = d;
	return 0;
}

static int parse_i64(imp *im, const char *field, const char *s, int64_t *v)
{
	char *end;
	errno = 0;
	long long d = strtoll(s, &end, 10);
	if (end == s || *end || errno == ERANGE) {
		char msg[160];
		snprintf(msg, sizeof msg,
			 "field %s: '%.40s' is not an integer", field, s);
		reject(im, field, msg);
		return -1;
	}
	*v = d;
	return 0;
}

static int parse_bool(imp *im, const char *field, const char *s, int *v)
{
	if (!strcmp(s, "1") || !strcmp(s, "true")) {
		*v = 1;
		return 0;
	}
	if (!strcmp(s, "0") || !strcmp(s, "false")) {
		*v = 0;
		return 0;
	}
	char msg[160];
	snprintf(msg, sizeof msg, "field %s: '%.40s' is not 0/1/true/false",
		 field, s);
	reject(im, field, msg);
	return -1;
}

/* Column names per kind, in a fixed order (the column's index is its
 * meaning). */
static const char *const item_cols[] = {
	"id",	   "title",   "description", "category",  "price",
	"currency", "in_stock", "quality",    "image_url", "attributes"};
static const char *const user_cols[] = {"id", "attributes"};
static const char *const ix_cols[] = {"user",	"item", "type",	   "weight",
				      "value", "ts_ms", "event_id"};

static void cols_of(knytt_record_kind k, const char *const **names,
		    size_t *n)
{
	if (k == KNYTT_RECORD_ITEMS) {
		*names = item_cols;
		*n = sizeof item_cols / sizeof *item_cols;
	} else if (k == KNYTT_RECORD_USERS) {
		*names = user_cols;
		*n = sizeof user_cols / sizeof *user_cols;
	} else {
		*names = ix_cols;
		*n = sizeof ix_cols / sizeof *ix_cols;
	}
}

/* Builds and writes a record from up to 10 values indexed by column
 * meaning (NULL = no value).  Bit k of @p have is set when column k is in
 * the row at all: an item column missing from the file keeps the stored
 * value, while a column present without a value clears it (NULL, or the
 * default of a number: price 0, quality 0, in_stock 1).  Returns 0, or a
 * fatal error. */
static int put_values(imp *im, const char *const *v, unsigned have)
{
	if (im->kind == KNYTT_RECORD_ITEMS) {
		knytt_item it;
		memset(&it, 0, sizeof it);
		it.struct_size = sizeof it;
		it.ext_id = v[0];
		it.title = v[1];
		it.description = v[2];
		it.category = v[3];
		it.currency = v[5];
		it.image_url = v[8];
		it.attributes = v[9];
		it.in_stock = 1;
		if ((v[4] && parse_f64(im, "price", v[4], &it.price)) ||
		    (v[6] && parse_bool(im, "in_stock", v[6], &it.in_stock)) ||
		    (v[7] && parse_f64(im, "quality", v[7], &it.quality)))
			return 0;
		/* columns 1..9 are the KNYTT__KEEP_* bits 0..8 */
		return put_item(im, &it, ~(have >> 1) & 0x1FFu);
	}
	if (im->kind == KNYTT_RECORD_USERS) {
		if (!v[0]) {
			reject(im, "id", "field id is required");
			return 0;
		}
		return put_user(im, v[0], v[1], (have & 2) != 0);
	}
	knytt_interaction x;
	memset(&x, 0, sizeof x);
	x.struct_size = sizeof x;
	x.user = v[0];
	x.item = v[1];
	x.type = v[2];
	x.event_id = v[6];
	if ((v[3] && parse_f64(im, "weight", v[3], &x.weight)) ||
	    (v[5] && parse_i64(im, "ts_ms", v[5], &x.ts_ms)))
		return 0;
	if (v[4]) {
		if (parse_f64(im, "value", v[4], &x.value))
			return 0;
		x.has_value = 1;
	}
	return put_ix(im, &x);
}

/* A NUL byte would end the C string of a value early: "c\0ZZZ" would be
 * stored as "c" and overwrite item c.  Such a row is refused whole. */
static void nul_reject(imp *im, const char *field)
{
	char msg[160];
	snprintf(msg, sizeof msg, "field %.64s holds a NUL byte", field);
	reject(im, field, msg);
}

/* ---- CSV ---------------------------------------------------------------- */

static int import_csv(imp *im, FILE *f)
{
	knytt__csv c;
	if (knytt__csv_init(&c, f, ','))
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	const char *const *names;
	size_t ncols;
	cols_of(im->kind, &names, &ncols);
	int map[64]; /* file column -> meaning */
	int rc = 0;
	if (knytt__csv_next(&c) != 1 || c.bad) {
		knytt__csv_free(&c);
		return knytt__err(KNYTT_EINVAL, "line 1: no CSV header row%s%s",
				  c.bad ? ": " : "", c.bad ? c.bad : "");
	}
	size_t nf = c.nf;
	if (nf > 64) {
		knytt__csv_free(&c);
		return knytt__err(KNYTT_EINVAL,
				  "line 1: %zu columns, at most 64", nf);
	}
	int seen[16] = {0}, have_req = 0;
	unsigned have = 0; /* the file's columns, by meaning */
	for (size_t i = 0; i < nf; i++) {
		const char *h = knytt__csv_field(&c, i);
		map[i] = -1;
		for (size_t k = 0; k < ncols; k++)
			if (strcmp(h, names[k]) == 0)
				map[i] = (int)k;
		if (map[i] < 0 || seen[map[i]]++) {
			rc = knytt__err_field(KNYTT_EINVAL, h,
					"line 1, field %.64s: %s column", h,
					map[i] < 0 ? "unknown" : "duplicate");
			knytt__csv_free(&c);
			return rc;
		}
		if (map[i] == 0)
			have_req = 1;
		have |= 1u << map[i];
	}
	if (!have_req) {
		knytt__csv_free(&c);
		return knytt__err_field(KNYTT_EINVAL, names[0],
				  "line 1, field %s: required column missing",
				  names[0]);
	}
	while ((rc = knytt__csv_next(&c)) == 1) {
		im->line = c.rec_line;
		if (c.bad) {
			reject(im, "", c.bad);
			continue;
		}
		if (c.nf != nf) {
			char msg[96];
			snprintf(msg, sizeof msg,
				 "row has %zu fields, the header has %zu", c.nf,
				 nf);
			reject(im, "", msg);
			continue;
		}
		const char *v[16] = {0};
		size_t nul = nf;
		for (size_t i = 0; i < nf; i++) {
			const char *s = knytt__csv_field(&c, i);
			v[map[i]] = *s ? s : NULL; /* empty = no value */
			if (nul == nf && strlen(s) != knytt__csv_field_len(&c, i))
				nul = i;
		}
		if (nul < nf) {
			nul_reject(im, names[map[nul]]);
			continue;
		}
		if ((rc = put_values(im, v, have)))
			break;
	}
	knytt__csv_free(&c);
	return rc < 0 ? rc : 0;
}

/* ---- JSON Lines ---------------------------------------------------------- */

/* Whether a string of JSON line @p s holds a NUL: a raw byte, or the
 * escape \u0000, which cJSON turns into the end of a C string.  On 1,
 * @p key holds the top-level key it belongs to ("" if none). */
static int jsonl_nul(const char *s, size_t n, char *key, size_t kcap)
{
	int depth = 0, in_str = 0, want_key = 0, is_key = 0;
	size_t start = 0;
	key[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '\0')
			return 1;
		if (in_str) {
			if (ch == '\\') {
				if (i + 5 < n && s[i + 1] == 'u' &&
				    memcmp(s + i + 2, "0000", 4) == 0)
					return 1;
				i++; /* the escaped character */
			} else if (ch == '"') {
				in_str = 0;
				if (is_key)
					snprintf(key, kcap, "%.*s",
						 (int)(i - start), s + start);
			}
			continue;
		}
		if (ch == '"') {
			in_str = 1;
			start = i + 1;
			is_key = depth == 1 && want_key;
			want_key = 0;
		} else if (ch == '{' || ch == '[') {
			want_key = ++depth == 1 && ch == '{';
		} else if (ch == '}' || ch == ']') {
			depth--;
		} else if (ch == ',' && depth == 1) {
			want_key = 1;
		}
	}
	return 0;
}

static int import_jsonl(imp *im, FILE *f)
{
	const char *const *names;
	size_t ncols;
	cols_of(im->kind, &names, &ncols);
	char *line = NULL;
	size_t lcap = 0;
	ssize_t n;
	int rc = 0;
	im->line = 0;
	while ((n = getline(&line, &lcap, f)) >= 0) {
		im->line++;
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (strspn(line, " \t") == (size_t)n)
			continue;
		if ((size_t)n > KNYTT__CSV_MAX) {
			reject(im, "", "line is longer than 1 MiB");
			continue;
		}
		char nulkey[64];
		if (jsonl_nul(line, (size_t)n, nulkey, sizeof nulkey)) {
			nul_reject(im, nulkey);
			continue;
		}
		cJSON *j = cJSON_ParseWithLength(line, (size_t)n);
		if (!j || !cJSON_IsObject(j)) {
			reject(im, "", j ? "line is not a JSON object"
					 : "malformed JSON");
			cJSON_Delete(j);
			continue;
		}
		const char *v[16] = {0};
		unsigned have = 0; /* keys present, even null or "" */
		char *owned = NULL;
		char num[16][40];
		int bad = 0;
		for (cJSON *e = j->child; e && !bad; e = e->next) {
			int k = -1;
			for (size_t i = 0; i < ncols; i++)
				if (e->string && !strcmp(e->string, names[i]))
					k = (int)i;
			char msg[160];
			if (k < 0) {
				snprintf(msg, sizeof msg,
					 "field %.64s: unknown field",
					 e->string ? e->string : "");
				reject(im, e->string ? e->string : "", msg);
				bad = 1;
				break;
			}
			const char *nm = names[k];
			int is_attr = !strcmp(nm, "attributes");
			int is_num = !strcmp(nm, "price") ||
				     !strcmp(nm, "quality") ||
				     !strcmp(nm, "weight") ||
				     !strcmp(nm, "value") ||
				     !strcmp(nm, "ts_ms");
			int is_bool = !strcmp(nm, "in_stock");
			have |= 1u << k;
			if (cJSON_IsNull(e))
				continue;
			if (is_attr) {
				if (!cJSON_IsObject(e)) {
					snprintf(msg, sizeof msg,
						 "field %s: expected an object",
						 nm);
					reject(im, nm, msg);
					bad = 1;
				} else if (!owned) {
					owned = cJSON_PrintUnformatted(e);
					v[k] = owned;
				}
			} else if (is_num || is_bool) {
				if (is_bool && cJSON_IsBool(e)) {
					v[k] = cJSON_IsTrue(e) ? "1" : "0";
				} else if (cJSON_IsNumber(e)) {
					if (!strcmp(nm, "ts_ms"))
						snprintf(num[k], sizeof num[k],
							 "%.0f",
							 e->valuedouble);
					else
						snprintf(num[k], sizeof num[k],
							 "%.17g",
							 e->valuedouble);
					v[k] = num[k];
				} else {
					snprintf(msg, sizeof msg,
						 "field %s: expected a %s", nm,
						 is_bool ? "boolean" : "number");
					reject(im, nm, msg);
					bad = 1;
				}
			} else if (cJSON_IsString(e)) {
				/* "" clears, as null does (not the id) */
				if (k == 0 || e->valuestring[0])
					v[k] = e->valuestring;
			} else if (cJSON_IsNumber(e) && k == 0) {
				/* numeric ids are common: accept 42 as "42" */
				snprintf(num[k], sizeof num[k], "%.17g",
					 e->valuedouble);
				v[k] = num[k];
			} else {
				snprintf(msg, sizeof msg,
					 "field %s: expected a string", nm);
				reject(im, nm, msg);
				bad = 1;
			}
		}
		if (!bad)
			rc = put_values(im, v, have);
		free(owned);
		cJSON_Delete(j);
		if (rc)
			break;
	}
	free(line);
	return rc;
}

/* ---- MovieLens ----------------------------------------------------------- */

static const char *const ml_genres[19] = {
	"unknown", "Action",  "Adventure", "Animation", "Children's",
	"Comedy",  "Crime",   "Documentary", "Drama",  "Fantasy",
	"Film-Noir", "Horror", "Musical",  "Mystery",  "Romance",
	"Sci-Fi",  "Thriller", "War",      "Western"};

/* ISO-8859-1 -> UTF-8 (every byte is a code point). */
static void latin1(const char *in, char *out, size_t cap)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)in;
	     *p && o + 3 < cap; p++) {
		if (*p < 0x80) {
			out[o++] = (char)*p;
		} else {
			out[o++] = (char)(0xC0 | (*p >> 6));
			out[o++] = (char)(0x80 | (*p & 0x3F));
		}
	}
	out[o] = '\0';
}

/* Splits @p s in place on @p sep ("|", "\t" or "::"). */
static size_t split(char *s, const char *sep, char **f, size_t max)
{
	size_t n = 0, sl = strlen(sep);
	while (n < max) {
		f[n++] = s;
		char *e = strstr(s, sep);
		if (!e)
			break;
		*e = '\0';
		s = e + sl;
	}
	return n;
}

/* JSON string escaping for the small values of the mapping: writes at
 * most @p cap bytes with the NUL (a value that does not fit is cut) and
 * returns the length written. */
static size_t jstr(char *o, size_t cap, const char *s)
{
	size_t n = 0;
	if (cap < 3) {
		if (cap)
			o[0] = '\0';
		return 0;
	}
	o[n++] = '"';
	for (; *s && n + 8 < cap; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			o[n++] = '\\';
			o[n++] = (char)ch;
		} else if (ch < 0x20) {
			n += (size_t)snprintf(o + n, cap - n, "\\u%04x", ch);
		} else {
			o[n++] = (char)ch;
		}
	}
	o[n++] = '"';
	o[n] = '\0';
	return n;
}

static int ml_item(imp *im, char **f, size_t nf, int dat)
{
	/* attrs holds the worst case, as jstr escapes a byte into at most
	 * 6: movies.dat, 511 bytes of genres -> 6 * 511 + 3 * 19 + 13;
	 * u.item, fixed genre names (< 300) + a 199-byte date and a
	 * 599-byte URL -> 300 + 6 * 798 + 40.  (At 1536 bytes, a genres
	 * field of control characters overflowed it.) */
	char title[2048], genres[512] = "", attrs[8192], desc[600];
	const char *g[19];
	size_t ng = 0;
	if (dat) { /* movies.dat: id::title::G1|G2 */
		if (nf != 3) {
			reject(im, "", "expected MovieID::Title::Genres");
			return 0;
		}
		snprintf(genres, sizeof genres, "%s", f[2]);
		char *p = genres;
		while (ng < 19) {
			g[ng++] = p;
			char *e = strchr(p, '|');
			if (!e)
				break;
			*e = '\0';
			p = e + 1;
		}
	} else { /* u.item: id|title|date|video date|url|19 flags */
		if (nf != 24) {
			reject(im, "", "expected 24 '|'-separated fields");
			return 0;
		}
		for (int i = 0; i < 19; i++) {
			if (strcmp(f[5 + i], "1") == 0)
				g[ng++] = ml_genres[i];
			else if (strcmp(f[5 + i], "0") != 0) {
				reject(im, ml_genres[i],
				       "genre flag is not 0 or 1");
				return 0;
			}
		}
	}
	latin1(f[1], title, sizeof title);
	/* attributes: {"genres":[...], "release_date":..., "imdb_url":...} */
	size_t o = (size_t)snprintf(attrs, sizeof attrs, "{\"genres\":[");
	size_t d = 0;
	desc[0] = '\0';
	for (size_t i = 0; i < ng; i++) {
		if (i)
			attrs[o++] = ',';
		o += jstr(attrs + o, sizeof attrs - o, g[i]);
		d += (size_t)snprintf(desc + d, sizeof desc - d, "%s%s",
				      i ? ", " : "", g[i]);
		if (d >= sizeof desc)
			d = sizeof desc - 1;
	}
	o += (size_t)snprintf(attrs + o, sizeof attrs - o, "]");
	if (!dat) {
		char tmp[600];
		o += (size_t)snprintf(attrs + o, sizeof attrs - o,
				      ",\"release_date\":");
		latin1(f[2], tmp, 200);
		o += jstr(attrs + o, sizeof attrs - o, tmp);
		o += (size_t)snprintf(attrs + o, sizeof attrs - o,
				      ",\"imdb_url\":");
		latin1(f[4], tmp, sizeof tmp);
		o += jstr(attrs + o, sizeof attrs - o, tmp);
	}
	snprintf(attrs + o, sizeof attrs - o, "}");
	knytt_item it;
	memset(&it, 0, sizeof it);
	it.struct_size = sizeof it;
	it.ext_id = f[0];
	it.title = title;
	it.category = ng ? g[0] : NULL;
	it.description = ng ? desc : NULL;
	it.in_stock = 1;
	it.attributes = attrs;
	return put_item(im, &it, 0);
}

static int ml_user(imp *im, char **f, size_t nf, int dat)
{
	if (nf != 5) {
		reject(im, "", dat ? "expected UserID::Gender::Age::"
				     "Occupation::Zip-code"
				   : "expected id|age|gender|occupation|zip");
		return 0;
	}
	const char *age = dat ? f[2] : f[1], *gender = dat ? f[1] : f[2];
	int64_t a;
	if (parse_i64(im, "age", age, &a))
		return 0;
	char attrs[2048], occ[300], zip[300], gs[40];
	latin1(f[3], occ, 200);
	latin1(f[4], zip, 200);
	char o1[420], o2[420];
	jstr(o1, sizeof o1, occ);
	jstr(o2, sizeof o2, zip);
	latin1(gender, occ, 16);
	jstr(gs, sizeof gs, occ);
	/* users.dat codes occupations as numbers 0..20: kept as numbers */
	int64_t oc = 0;
	if (dat && parse_i64(im, "occupation", f[3], &oc))
		return 0;
	if (dat)
		snprintf(attrs, sizeof attrs,
			 "{\"age\":%lld,\"gender\":%s,\"occupation\":%lld,"
			 "\"zip\":%s}",
			 (long long)a, gs, (long long)oc, o2);
	else
		snprintf(attrs, sizeof attrs,
			 "{\"age\":%lld,\"gender\":%s,\"occupation\":%s,"
			 "\"zip\":%s}",
			 (long long)a, gs, o1, o2);
	return put_user(im, f[0], attrs, 1);
}

static int ml_rating(imp *im, char **f, size_t nf)
{
	if (nf != 4) {
		reject(im, "", "expected user, item, rating, timestamp");
		return 0;
	}
	knytt_interaction x;
	memset(&x, 0, sizeof x);
	x.struct_size = sizeof x;
	x.user = f[0];
	x.item = f[1];
	x.type = "rating";
	x.has_value = 1;
	int64_t ts;
	if (parse_f64(im, "rating", f[2], &x.value) ||
	    parse_i64(im, "timestamp", f[3], &ts))
		return 0;
	/* seconds; in milliseconds it must still fit an int64 (a larger
	 * value overflowed the product: found by fuzz_import_movielens) */
	if (ts <= 0 || ts > INT64_MAX / 1000) {
		reject(im, "timestamp",
		       "field timestamp must be > 0 and at most "
		       "9223372036854775 (seconds)");
		return 0;
	}
	x.ts_ms = ts * 1000;
	char ev[600];
	snprintf(ev, sizeof ev, "ml:%.250s:%.250s", f[0], f[1]);
	x.event_id = ev;
	return put_ix(im, &x);
}

static int import_movielens(imp *im, FILE *f)
{
	char *line = NULL;
	size_t lcap = 0;
	ssize_t n;
	int rc = 0;
	im->line = 0;
	while ((n = getline(&line, &lcap, f)) >= 0) {
		im->line++;
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0)
			continue;
		if (memchr(line, '\0', (size_t)n)) {
			nul_reject(im, "");
			continue;
		}
		int dat = strstr(line, "::") != NULL;
		char *fl[32];
		size_t nf;
		if (dat)
			nf = split(line, "::", fl, 32);
		else if (im->kind == KNYTT_RECORD_INTERACTIONS)
			nf = split(line, "\t", fl, 32);
		else
			nf = split(line, "|", fl, 32);
		if (im->kind == KNYTT_RECORD_ITEMS)
			rc = ml_item(im, fl, nf, dat);
		else if (im->kind == KNYTT_RECORD_USERS)
			rc = ml_user(im, fl, nf, dat);
		else
			rc = ml_rating(im, fl, nf);
		if (rc)
			break;
	}
	free(line);
	return rc;
}

/* ---- piped interaction imports (SQLite) ---------------------------------------
 * Parsing and validating a row costs about as much as SQLite's insert of
 * it, and they need not share a core: a second thread runs the parser
 * and hands over chunks of validated rows (and of rejects, in line
 * order) through two buffers, while the caller's thread resolves ids,
 * inserts, commits and calls the reject callback, exactly as the
 * one-thread path does, so batches and reports stay the same.  Only the
 * calling thread touches the store. */

#define PIPE_ROWS 4096

typedef struct prej {
	size_t line;
	char field[64];
	char *msg;
} prej;

typedef struct pchunk {
	knytt__ixrow *rows;
	size_t nrows;
	prej *rej;
	size_t nrej, caprej;
	int last;      /* the parser ended after this chunk */
	int rc;        /* ... with this result */
	knytt__errsave err; /* and this message (and field) */
} pchunk;

typedef struct ixpipe {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pchunk ch[2];
	int full[2]; /* ready for the consumer */
	int cur;     /* the chunk the parser fills */
	int stop;    /* the consumer gave up: parse no further */
	imp pim;     /* the parser's state */
	FILE *f;
	knytt_format format;
} ixpipe;

static void pipe_reject(imp *im, const char *field, const char *reason)
{
	pchunk *c = &im->pipe->ch[im->pipe->cur];
	if (c->nrej == c->caprej) {
		size_t nc = c->caprej ? 2 * c->caprej : 64;
		prej *nr = realloc(c->rej, nc * sizeof *nr);
		if (!nr)
			return; /* the report is lost, the row still skipped */
		c->rej = nr;
		c->caprej = nc;
	}
	prej *r = &c->rej[c->nrej];
	if (!(r->msg = strdup(reason)))
		return;
	r->line = im->line;
	snprintf(r->field, sizeof r->field, "%s", field);
	c->nrej++;
}

/* Hands the filled chunk over and waits for the other one to be free.
 * Returns KNYTT_ECANCELED when the consumer stopped. */
static int pipe_hand_over(ixpipe *p, int last, int rc)
{
	pchunk *c = &p->ch[p->cur];
	c->last = last;
	c->rc = rc;
	if (rc)
		knytt__err_save(&c->err);
	pthread_mutex_lock(&p->mu);
	p->full[p->cur] = 1;
	pthread_cond_broadcast(&p->cv);
	p->cur ^= 1;
	while (p->full[p->cur] && !p->stop)
		pthread_cond_wait(&p->cv, &p->mu);
	int stop = p->stop;
	pthread_mutex_unlock(&p->mu);
	p->ch[p->cur].nrows = 0;
	p->ch[p->cur].nrej = 0;
	return stop ? knytt__err(KNYTT_ECANCELED, "import stopped") : 0;
}

static int pipe_put(imp *im, const knytt_interaction *x)
{
	ixpipe *p = im->pipe;
	pchunk *c = &p->ch[p->cur];
	int rc = validate_row(im, x, &c->rows[c->nrows], 1);
	if (rc <= 0)
		return rc;
	if (++c->nrows == PIPE_ROWS)
		return pipe_hand_over(p, 0, 0);
	return 0;
}

static int parse(imp *im, FILE *f, knytt_format format)
{
	if (format == KNYTT_FORMAT_CSV)
		return import_csv(im, f);
	if (format == KNYTT_FORMAT_JSONL)
		return import_jsonl(im, f);
	return import_movielens(im, f);
}

static void *pipe_main(void *arg)
{
	ixpipe *p = arg;
	int rc = parse(&p->pim, p->f, p->format);
	if (rc == 0 && ferror(p->f))
		rc = knytt__err(KNYTT_EIO, "read error");
	if (rc != KNYTT_ECANCELED || !p->stop)
		pipe_hand_over(p, 1, rc);
	return NULL;
}

static void deliver(imp *im, const prej *r)
{
	im->rejected++;
	if (im->on_reject)
		im->on_reject(r->line, r->field, r->msg, im->ctx);
}

/* How many rows ahead consume() fetches the cache slots of. */
#define PREFETCH_ROWS 16

/* One chunk in the caller's thread: rejects and rows in line order; a
 * batch commits where the one-thread path would commit it. */
static int consume(imp *im, pchunk *c)
{
	size_t ri = 0, n = 0, start = 0;
	int rc = 0;
	for (size_t i = 0; i < c->nrows && rc == 0; i++) {
		knytt__ixrow *r = &c->rows[i];
		if (i + PREFETCH_ROWS < c->nrows) {
			const knytt__ixrow *a = r + PREFETCH_ROWS;
			cache_prefetch(&im->users, a->user_h);
			cache_prefetch(&im->items, a->item_h);
		}
		while (ri < c->nrej && c->rej[ri].line < r->line)
			deliver(im, &c->rej[ri++]);
		im->line = r->line;
		rc = resolve_row(im, r, r->user, r->user_h, r->item, r->item_h);
		if (rc) {
			rc = rc < 0 ? rc : 0;
			continue;
		}
		if (n != i)
			c->rows[n] = *r;
		n++;
		im->accepted++;
		if (++im->in_batch >= (long long)im->st->batch_rows) {
			if ((rc = insert_rows(im, c->rows + start, n - start)) ||
			    (rc = batch_end(im, 0)))
				return rc;
			start = n;
		}
	}
	while (rc == 0 && ri < c->nrej)
		deliver(im, &c->rej[ri++]);
	if (rc == 0)
		rc = insert_rows(im, c->rows + start, n - start);
	return rc;
}

static void pipe_free(ixpipe *p)
{
	for (int k = 0; k < 2; k++) {
		for (size_t i = 0; i < p->ch[k].nrej; i++)
			free(p->ch[k].rej[i].msg);
		free(p->ch[k].rej);
		free(p->ch[k].rows);
	}
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	free(p);
}

/* The import through the pipe.  Returns 1 when no thread could be
 * started (the caller then parses itself), else 0 or an error. */
static int import_piped(imp *im, FILE *f, knytt_format format)
{
	ixpipe *p = calloc(1, sizeof *p);
	if (!p)
		return 1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (int k = 0; k < 2; k++)
		if (!(p->ch[k].rows = malloc(PIPE_ROWS * sizeof(knytt__ixrow)))) {
			pipe_free(p);
			return 1;
		}
	p->pim = *im;
	p->pim.pipe = p;
	p->pim.ix = NULL;
	memset(&p->pim.users, 0, sizeof p->pim.users);
	memset(&p->pim.items, 0, sizeof p->pim.items);
	p->f = f;
	p->format = format;
	pthread_t t;
	if (pthread_create(&t, NULL, pipe_main, p) != 0) {
		pipe_free(p);
		return 1;
	}
	int rc = 0, k = 0;
	for (;;) {
		pthread_mutex_lock(&p->mu);
		while (!p->full[k])
			pthread_cond_wait(&p->cv, &p->mu);
		pthread_mutex_unlock(&p->mu);
		pchunk *c = &p->ch[k];
		rc = consume(im, c);
		for (size_t i = 0; i < c->nrej; i++)
			free(c->rej[i].msg);
		c->nrej = 0;
		int last = c->last;
		if (rc == 0 && last && c->rc)
			rc = knytt__err_restore(c->rc, &c->err);
		pthread_mutex_lock(&p->mu);
		p->full[k] = 0;
		if (rc || last)
			p->stop = 1;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->mu);
		if (rc || last)
			break;
		k ^= 1;
	}
	/* a consumer error: the parser sees stop at its next hand-over */
	knytt__errsave saved;
	knytt__err_save(&saved);
	pthread_join(t, NULL);
	pipe_free(p);
	if (rc)
		knytt__err_restore(rc, &saved);
	return rc;
}

/* ---- bulk mode -------------------------------------------------------------
 * An interaction import bigger than the table it goes into (and than
 * st->bulk_min rows, guessed from the file size) drops the table's
 * secondary indexes, appends its batches, and builds the indexes again
 * at the end: building a B-tree from sorted keys costs about a third of
 * inserting the same keys one by one at random places (measured with
 * SQLite: 7.5 s against 20 s for the four indexes at 2M rows).
 *
 * Batches still commit as they go, so a killed import keeps every
 * committed batch; the indexes are then missing, and the next open of
 * the store builds them (knytt__ix_recover) once no live bulk import
 * holds the lock.  While the unique event-id index is gone, a repeated
 * event is stored twice; the build keeps each event's first row, so
 * the state is the one the plain path gives.  Meanwhile other
 * connections still read and write correctly, only slower. */

#define BULK_BYTES_PER_ROW 48 /* a short CSV line with an event id */

static int bulk_begin(knytt_store *st, FILE *f, int *bulk)
{
	*bulk = 0;
	/* indexes a dead bulk import left dropped (its lock is free now,
	 * or open would have rebuilt them): the plain path would store
	 * repeated events for good, so this import builds them too */
	int rc = knytt__ix_indexes_missing(st), missing = rc > 0;
	if (rc < 0)
		return rc;
	if (missing)
		goto take;
	if (fseek(f, 0, SEEK_END) != 0)
		return 0; /* not a regular file: the plain path */
	long size = ftell(f);
	rewind(f);
	if (size < 0 || (size_t)size / BULK_BYTES_PER_ROW < st->bulk_min)
		return 0;
	int64_t rows = (int64_t)size / BULK_BYTES_PER_ROW;
	knytt__stmt *q;
	rc = st->ops->prepare(st->db, "SELECT MAX(id) FROM interactions", &q);
	if (rc)
		return rc;
	rc = st->ops->step(q);
	int64_t have = rc == 1 ? st->ops->col_i64(q, 0) : 0;
	st->ops->finalize(q);
	if (rc < 0)
		return rc;
	if (have > rows)
		return 0;
take:
	rc = st->ops->bulk_lock(st->db, 1);
	/* indexes missing and the lock held: by a live bulk import, whose
	 * final build also covers the rows written now, or by one that was
	 * just killed and whose session PostgreSQL has not ended yet --
	 * that one's lock is free within moments */
	for (int i = 0; rc == 0 && missing && i < 40; i++) {
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
		rc = st->ops->bulk_lock(st->db, 1);
	}
	if (rc <= 0)
		return rc;
	if ((rc = knytt__ix_indexes_drop(st))) {
		st->ops->bulk_lock(st->db, 0);
		return rc;
	}
	*bulk = 1;
	st->bulk = 1;
	return 0;
}

/* ---- entry point ---------------------------------------------------------- */

int knytt_store_import_report(const knytt_store *st,
			      knytt_import_report *out)
{
	if (!st || !out)
		return knytt__err(KNYTT_EINVAL, "store or report is NULL");
	if (!KNYTT__HAS(out, knytt_import_report, accepted))
		return knytt__err(KNYTT_EINVAL,
				  "report struct_size %zu is too small (set "
				  "it to sizeof(knytt_import_report))",
				  out->struct_size);
	KNYTT__STRUCT_OUT(out, &st->last_import);
	return 0;
}

int knytt_store_import(knytt_store *st, const char *path,
		       knytt_record_kind kind, knytt_format format,
		       knytt_reject_fn on_reject, void *ctx)
{
	if (!st || !path)
		return knytt__err(KNYTT_EINVAL, "store or path is NULL");
	if (!st->tenant)
		return knytt__err(KNYTT_ESTATE, "no tenant selected: call "
						"knytt_store_use_tenant first");
	if (kind < KNYTT_RECORD_ITEMS || kind > KNYTT_RECORD_INTERACTIONS)
		return knytt__err(KNYTT_EINVAL, "kind %d is not a record kind",
				  (int)kind);
	if (format < KNYTT_FORMAT_CSV || format > KNYTT_FORMAT_MOVIELENS)
		return knytt__err(KNYTT_EINVAL, "format %d is not a format",
				  (int)format);
	FILE *f = fopen(path, "rb");
	if (!f)
		return knytt__err_errno(KNYTT_EIO, errno, "cannot open '%s'",
					path);
	imp im;
	memset(&im, 0, sizeof im);
	memset(&st->last_import, 0, sizeof st->last_import);
	st->last_import.struct_size = sizeof st->last_import;
	st->bulk_removed = 0;
	im.st = st;
	im.kind = kind;
	im.on_reject = on_reject;
	im.ctx = ctx;
	if (kind == KNYTT_RECORD_INTERACTIONS &&
	    !(im.ix = malloc(IXBUF * sizeof *im.ix))) {
		fclose(f);
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	}
	/* SQLite: checkpoint the WAL once at the end rather than every
	 * 1000 pages (each checkpoint ends in an fsync), and give the page
	 * cache room for the interaction indexes, whose inserts land at
	 * random places: at 2M rows they outgrow a connection's usual 8 MiB
	 * and every insert starts reading pages back. */
	int sq = st->ops->dialect == KNYTT__SQLITE;
	int64_t autockpt = 1000, cache = -8192; /* restored at the end */
	if (sq) {
		knytt__pragma_i64(st, "PRAGMA wal_autocheckpoint", &autockpt);
		knytt__pragma_i64(st, "PRAGMA cache_size", &cache);
		st->ops->exec(st->db, "PRAGMA wal_autocheckpoint=0;"
				      "PRAGMA cache_size=-524288");
	}
	int bulk = 0;
	int rc = kind == KNYTT_RECORD_INTERACTIONS ? bulk_begin(st, f, &bulk)
						   : 0;
	if (rc == 0)
		rc = knytt__st_begin(st);
	if (rc == 0) {
		rc = 1;
		if (sq && kind == KNYTT_RECORD_INTERACTIONS)
			rc = import_piped(&im, f, format);
		if (rc == 1)
			rc = parse(&im, f, format);
		if (rc == 0 && ferror(f))
			rc = knytt__err(KNYTT_EIO, "read error in '%s'", path);
		if (rc == 0)
			rc = batch_end(&im, 1);
		else if (st->in_txn)
			knytt__st_rollback(st);
	}
	if (bulk) {
		/* also after a failure: the committed batches stay, and
		 * they need their indexes */
		knytt__errsave saved;
		knytt__err_save(&saved);
		st->bulk = 0;
		int brc = knytt__ix_indexes_build(st);
		st->ops->bulk_lock(st->db, 0);
		if (rc == 0)
			rc = brc;
		else
			knytt__err_restore(0, &saved);
	}
	if (sq) {
		char sql[96];
		snprintf(sql, sizeof sql,
			 "PRAGMA wal_autocheckpoint=%lld; PRAGMA "
			 "cache_size=%lld",
			 (long long)autockpt, (long long)cache);
		knytt__exec_keep(st, sql);
		knytt__exec_keep(st, "PRAGMA wal_checkpoint(PASSIVE)");
	}
	if (rc == 0 && !sq) {
		/* PostgreSQL: fresh statistics, or the planner guesses on a
		 * table it thinks is empty until autovacuum comes by (search
		 * p50 6 ms instead of 0.5 ms measured); and merge the GIN
		 * pending list now rather than let searches scan it.  Failing
		 * (e.g. no privilege) only costs speed. */
		knytt__exec_keep(
			st, kind == KNYTT_RECORD_ITEMS
				    ? "ANALYZE items; SELECT "
				      "gin_clean_pending_list('items_tsv'), "
				      "gin_clean_pending_list('items_title_tsv')"
			    : kind == KNYTT_RECORD_USERS
				    ? "ANALYZE users"
				    : "ANALYZE users, interactions");
	}
	fclose(f);
	free(im.ix);
	cache_clear(&im.users);
	cache_clear(&im.items);
	knytt_import_report *rep = &st->last_import;
	rep->accepted = im.accepted;
	rep->duplicates = im.dups + st->bulk_removed;
	rep->imported = rep->accepted - rep->duplicates;
	rep->rejected = im.rejected;
	if (rc)
		return rc;
	return im.accepted > INT32_MAX ? INT32_MAX : (int)im.accepted;
}
