/*
 * importw.c -- the write path of a bulk import (knytt_store_import): the
 * records import.c reads are validated exactly as the single-row calls
 * validate, and written inside the current batch transaction; a rejected
 * row is reported and skipped.  Every batch_rows accepted rows the
 * transaction commits, so a crash (even kill -9) keeps whole batches
 * only, and because items and users are upserts and interactions carry
 * event ids, re-running the import converges to the state a clean run
 * gives.
 *
 * Interactions are buffered (at most IXBUF rows) and written through the
 * backend's bulk path (prepared INSERTs in SQLite, COPY in PostgreSQL).
 * User and item ids are resolved through a cache, since the same users
 * and items recur on most lines: in SQLite row by row, in PostgreSQL a
 * buffer at a time (pg_resolve).  Big interaction imports run in bulk
 * mode (bulk_begin); SQLite interaction imports parse on a second thread
 * (import_piped).
 */
#include "import.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IXBUF 8192
#define CACHE_MAX (1u << 20) /* entries per cache before it is emptied */

/* ---- the id caches (types in import.h) ----------------------------------- */

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

static void pipe_reject(imp *im, const char *field, const char *reason);

void knytt__imp_reject(imp *im, const char *field, const char *reason)
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
	knytt__imp_reject(im, field, knytt_errmsg());
}

static void unknown_item(const knytt__ixrow *r, void *ctx)
{
	imp *im = ctx;
	char msg[320];
	snprintf(msg, sizeof msg, "field item: no item '%.256s'", r->item);
	size_t line = im->line;
	im->line = r->line;
	knytt__imp_reject(im, "item", msg);
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

int knytt__imp_item(imp *im, const knytt_item *it, unsigned keep)
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
int knytt__imp_user(imp *im, const char *id, const char *attrs,
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
			knytt__imp_reject(im, "item", msg);
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

int knytt__imp_ix(imp *im, const knytt_interaction *x)
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

static void *pipe_main(void *arg)
{
	ixpipe *p = arg;
	int rc = knytt__imp_parse(&p->pim, p->f, p->format);
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

/* The end of a bulk import, also after a failure (@p rc): the committed
 * batches stay, and they need their indexes.  Returns rc, or the build's
 * error when rc is 0. */
static int bulk_end(knytt_store *st, int rc)
{
	knytt__errsave saved;
	knytt__err_save(&saved);
	st->bulk = 0;
	int brc = knytt__ix_indexes_build(st);
	st->ops->bulk_lock(st->db, 0);
	if (rc == 0)
		return brc;
	knytt__err_restore(0, &saved);
	return rc;
}

/* ---- entry point ---------------------------------------------------------- */

/* SQLite: checkpoint the WAL once at the end rather than every 1000
 * pages (each checkpoint ends in an fsync), and give the page cache room
 * for the interaction indexes, whose inserts land at random places: at
 * 2M rows they outgrow a connection's usual 8 MiB and every insert
 * starts reading pages back.  The settings before are kept in @p was
 * (autocheckpoint, cache size) for sqlite_untune. */
static void sqlite_tune(knytt_store *st, int64_t was[2])
{
	was[0] = 1000;
	was[1] = -8192;
	knytt__pragma_i64(st, "PRAGMA wal_autocheckpoint", &was[0]);
	knytt__pragma_i64(st, "PRAGMA cache_size", &was[1]);
	st->ops->exec(st->db, "PRAGMA wal_autocheckpoint=0;"
			      "PRAGMA cache_size=-524288");
}

static void sqlite_untune(knytt_store *st, const int64_t was[2])
{
	char sql[96];
	snprintf(sql, sizeof sql,
		 "PRAGMA wal_autocheckpoint=%lld; PRAGMA cache_size=%lld",
		 (long long)was[0], (long long)was[1]);
	knytt__exec_keep(st, sql);
	knytt__exec_keep(st, "PRAGMA wal_checkpoint(PASSIVE)");
}

/* PostgreSQL, after an import: fresh statistics, or the planner guesses
 * on a table it thinks is empty until autovacuum comes by (search p50
 * 6 ms instead of 0.5 ms measured); and merge the GIN pending list now
 * rather than let searches scan it.  Failing (e.g. no privilege) only
 * costs speed. */
static void pg_analyze(knytt_store *st, knytt_record_kind kind)
{
	knytt__exec_keep(
		st, kind == KNYTT_RECORD_ITEMS
			    ? "ANALYZE items; SELECT "
			      "gin_clean_pending_list('items_tsv'), "
			      "gin_clean_pending_list('items_title_tsv')"
		    : kind == KNYTT_RECORD_USERS
			    ? "ANALYZE users"
			    : "ANALYZE users, interactions");
}

/* The batches: the first transaction begun, the file parsed (on a second
 * thread for SQLite interactions), the last batch committed. */
static int run_batches(imp *im, FILE *f, knytt_format format,
		       const char *path)
{
	knytt_store *st = im->st;
	int rc = knytt__st_begin(st);
	if (rc)
		return rc;
	rc = 1;
	if (st->ops->dialect == KNYTT__SQLITE &&
	    im->kind == KNYTT_RECORD_INTERACTIONS)
		rc = import_piped(im, f, format);
	if (rc == 1)
		rc = knytt__imp_parse(im, f, format);
	if (rc == 0 && ferror(f))
		rc = knytt__err(KNYTT_EIO, "read error in '%s'", path);
	if (rc == 0)
		rc = batch_end(im, 1);
	else if (st->in_txn)
		knytt__st_rollback(st);
	return rc;
}

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
	int sq = st->ops->dialect == KNYTT__SQLITE;
	int64_t was[2]; /* SQLite settings, restored at the end */
	if (sq)
		sqlite_tune(st, was);
	int bulk = 0;
	int rc = kind == KNYTT_RECORD_INTERACTIONS ? bulk_begin(st, f, &bulk)
						   : 0;
	if (rc == 0)
		rc = run_batches(&im, f, format, path);
	if (bulk)
		rc = bulk_end(st, rc);
	if (sq)
		sqlite_untune(st, was);
	if (rc == 0 && !sq)
		pg_analyze(st, kind);
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
