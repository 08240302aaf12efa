/*
 * sqfts.c -- SQLite keyword search: BM25 over FTS5 with top-k pruning.
 *
 * The plain way to rank (SELECT ... bm25(items_fts) ... JOIN items ...
 * ORDER BY score LIMIT k) pays two B-tree lookups for every matching row:
 * the row's token count in items_fts_docsize, which BM25 needs for its
 * length normalisation, and the items row, for the tenant and the
 * filters.  A frequent word matches thousands of items, and those lookups
 * were 70% of a search.
 *
 * Here an FTS5 auxiliary function, knytt_bm25, walks the matches in one
 * statement and keeps the k best rows that pass the filters in a heap.
 * For each row it first computes, from the position lists FTS5 already
 * holds, an upper bound of the row's score: BM25 grows as the document
 * gets shorter, and each column is at least as long as the offset of
 * the last query token found in it.  A row whose bound is below the
 * k-th best score so far cannot enter the result and is skipped without
 * any lookup.  Otherwise
 * the exact score is computed (one docsize lookup) and, if it would
 * enter, the item's row is read for the tenant and filters.  A caller's
 * filter (knytt_store_search_fn) is asked first, before any lookup.
 *
 * The token count of a row is kept in memory once read, until the row's
 * text changes: the triggers of schema version 3 log every item whose
 * indexed text changed, and each search first forgets the rows logged
 * since the last one (in the same read transaction as the search).  The
 * number of rows each query word matches (its IDF) is kept too, until
 * any row's text changes (df_hits).
 *
 * The score is FTS5's bm25() exactly (k1 = 1.2, b = 0.75, the same IDF
 * and column weights: title 3, description 1, category 2), negated so
 * that higher is better; the order is score descending, then id, as the
 * SQL path gives.  tests/check_store.c compares the two on every query.
 */
#include "sqfts.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define K1 1.2
#define B 0.75
#define NCOLS 3
/* cached document frequencies: slots, and the longest word kept + 1 */
#define DF_SLOTS 4096
#define DF_WORD 24

static const double col_weight[NCOLS] = {3.0, 1.0, 2.0};

typedef struct hit {
	double s;
	int64_t id;
} hit;

/* One search in progress (the store handle is used by one thread). */
typedef struct run {
	const knytt__search *q;
	uint64_t tenant;
	size_t catlen; /* of q->category_prefix */
	hit *heap; /* min-heap, worst on top; at most cap entries */
	size_t n, cap, alloc;
	int err; /* SQLite error code from inside the function */
	int walk; /* one phrase: the first call walks all its rows */
	int defer; /* keep the best rows unchecked; look them up after */
	int lens;  /* may use and keep the token counts of knytt__sqfts */
	long long ranked, looked_up;
} run;

struct knytt__sqfts {
	sqlite3 *h;
	sqlite3_stmt *match; /* rowid, knytt_bm25(items_fts) per match */
	sqlite3_stmt *attrs; /* an item's tenant and filter columns */
	sqlite3_stmt *logspan, *logsince; /* knytt_fts_log (migration 3) */
	sqlite3_stmt *begin, *commit;
	hit *heap; /* the last search's heap, reused */
	size_t heap_alloc;
	int nolog; /* no log to read: token counts are not kept */
	/* Token counts of rows met so far, by rowid (count + 1; 0 =
	 * unknown), valid up to log entry @c seen. */
	uint32_t *len;
	size_t nlen;
	int64_t seen;
	run *cur;
	/* Rows per query word (BM25's document frequency), each valid at
	 * the log entry it was counted at (direct-mapped slots, see
	 * df_hits; allocated on first use). */
	struct df_slot {
		uint64_t h; /* the word's hash; 0 = empty */
		int64_t hits;
		int64_t at; /* the value of seen it was counted at */
		char w[DF_WORD];
	} *df;
	int df_use; /* this search may read and fill them */
	int inline_for; /* searches left that check rows during the walk */
	long long stats[2]; /* last search: rows scored, items read */
};

/* Per-query constants, kept as FTS5 auxiliary data. */
typedef struct qconst {
	int nphrase;
	double avgdl;
	double *idf;
	double *freq; /* scratch: weighted frequency per phrase */
} qconst;

/* a ranks below b: lower score, or the same score and a higher id */
static int worse(const hit *a, const hit *b)
{
	return a->s < b->s || (a->s == b->s && a->id > b->id);
}

static void sift_down(hit *h, size_t n, size_t i)
{
	for (;;) {
		size_t l = 2 * i + 1, m = i;
		if (l < n && worse(&h[l], &h[m]))
			m = l;
		if (l + 1 < n && worse(&h[l + 1], &h[m]))
			m = l + 1;
		if (m == i)
			return;
		hit t = h[i];
		h[i] = h[m];
		h[m] = t;
		i = m;
	}
}

static void heap_push(run *r, hit x)
{
	if (r->n < r->cap && r->n == r->alloc) {
		size_t na = r->alloc ? 2 * r->alloc : 64;
		hit *nh = realloc(r->heap, na * sizeof *nh);
		if (!nh) {
			r->err = SQLITE_NOMEM;
			return;
		}
		r->heap = nh;
		r->alloc = na;
	}
	if (r->n < r->cap) {
		size_t i = r->n++;
		r->heap[i] = x;
		while (i > 0 && worse(&r->heap[i], &r->heap[(i - 1) / 2])) {
			hit t = r->heap[i];
			r->heap[i] = r->heap[(i - 1) / 2];
			r->heap[(i - 1) / 2] = t;
			i = (i - 1) / 2;
		}
		return;
	}
	r->heap[0] = x;
	sift_down(r->heap, r->n, 0);
}

/* Could a row with score @p s and id @p id still enter the heap? */
static int could_enter(const run *r, double s, int64_t id)
{
	if (r->n < r->cap)
		return 1;
	hit x = {s, id};
	return worse(&r->heap[0], &x);
}

static int count_row(const Fts5ExtensionApi *api, Fts5Context *fts,
		     void *ctx)
{
	(void)api;
	(void)fts;
	(*(int64_t *)ctx)++;
	return SQLITE_OK;
}

static void qconst_free(void *p)
{
	qconst *q = p;
	if (q) {
		free(q->idf);
		free(q->freq);
		free(q);
	}
}

/*
 * The rows phrase @p i matches: BM25's document frequency.  FTS5 counts
 * them by walking the phrase's whole row list (xQueryPhrase), which cost
 * a fifth of a hybrid search's CPU (perf, benchmarks/engine/run --quick
 * --only search), and with one word the walk that ranks the rows walks
 * them again.  A shop's searches repeat their words, and its item text
 * changes far less often than it is searched, so the count is kept per
 * word: the i-th quoted word of the match text (query_words in
 * kwsearch.c writes one per phrase; not if the phrases and words do
 * not line up in number), while the change log's last entry is the one
 * the count was taken at.  Only in a read transaction of the search's
 * own, where the snapshot is committed data: a caller's open transaction
 * may hold item changes that a rollback takes back (and their log
 * entries with them, so a later one could carry the same number).
 */
static int df_hits(knytt__sqfts *x, const Fts5ExtensionApi *api,
		   Fts5Context *fts, int i, int64_t *hits)
{
	const char *w = NULL;
	size_t n = 0;
	if (x->df_use && x->cur &&
	    api->xPhraseCount(fts) == x->cur->q->nwords) {
		/* the i-th "word" of the match text */
		const char *p = x->cur->q->match;
		for (int k = 0; p && k <= i; k++) {
			p = strchr(p, '"');
			const char *e = p ? strchr(p + 1, '"') : NULL;
			if (!e) {
				p = NULL;
				break;
			}
			w = p + 1;
			n = (size_t)(e - w);
			p = e + 1;
		}
		if (!p)
			w = NULL;
	}
	struct df_slot *sl = NULL;
	uint64_t h = 0;
	if (w && n < DF_WORD && !x->df)
		x->df = calloc(DF_SLOTS, sizeof *x->df); /* none: uncached */
	if (w && n < DF_WORD && x->df) {
		h = 1469598103934665603ull; /* FNV-1a */
		for (size_t k = 0; k < n; k++)
			h = (h ^ (unsigned char)w[k]) * 1099511628211ull;
		h |= 1; /* never 0, the empty mark */
		sl = &x->df[h % DF_SLOTS];
		if (sl->h == h && sl->at == x->seen &&
		    strncmp(sl->w, w, n) == 0 && !sl->w[n]) {
			*hits = sl->hits;
			return SQLITE_OK;
		}
	}
	int64_t c = 0;
	int rc = api->xQueryPhrase(fts, i, &c, count_row);
	if (rc == SQLITE_OK && sl) {
		sl->h = h;
		sl->hits = c;
		sl->at = x->seen;
		memcpy(sl->w, w, n);
		sl->w[n] = '\0';
	}
	*hits = c;
	return rc;
}

/* IDF per phrase and the average row length, as FTS5's bm25() has them. */
static int qconst_make(knytt__sqfts *x, const Fts5ExtensionApi *api,
		       Fts5Context *fts, qconst **out)
{
	qconst *q = calloc(1, sizeof *q);
	if (!q)
		return SQLITE_NOMEM;
	q->nphrase = api->xPhraseCount(fts);
	size_t np = q->nphrase > 0 ? (size_t)q->nphrase : 1;
	q->idf = calloc(np, sizeof *q->idf);
	q->freq = calloc(np, sizeof *q->freq);
	sqlite3_int64 nrow = 0, ntok = 0;
	int rc = (q->idf && q->freq) ? SQLITE_OK : SQLITE_NOMEM;
	if (rc == SQLITE_OK)
		rc = api->xRowCount(fts, &nrow);
	if (rc == SQLITE_OK)
		rc = api->xColumnTotalSize(fts, -1, &ntok);
	q->avgdl = nrow > 0 ? (double)ntok / (double)nrow : 1;
	for (int i = 0; rc == SQLITE_OK && i < q->nphrase; i++) {
		int64_t hits = 0;
		rc = df_hits(x, api, fts, i, &hits);
		double idf = log((0.5 + (double)(nrow - hits)) /
				 (0.5 + (double)hits));
		q->idf[i] = idf <= 0 ? 1e-6 : idf;
	}
	if (rc != SQLITE_OK) {
		qconst_free(q);
		return rc;
	}
	*out = q;
	return SQLITE_OK;
}

static double bm25(const qconst *q, double len)
{
	double norm = K1 * (1 - B + B * len / q->avgdl), s = 0;
	for (int i = 0; i < q->nphrase; i++) {
		double f = q->freq[i];
		s += q->idf[i] * f * (K1 + 1) / (f + norm);
	}
	return s;
}

/* Does item @p id belong to the tenant, live, and pass the filters? */
static int passes(knytt__sqfts *x, run *r, int64_t id)
{
	sqlite3_stmt *a = x->attrs;
	sqlite3_bind_int64(a, 1, id);
	int rc = sqlite3_step(a), ok = 0;
	if (rc == SQLITE_ROW) {
		const char *cat = (const char *)sqlite3_column_text(a, 2);
		double price = sqlite3_column_double(a, 3);
		const knytt__search *f = r->q;
		ok = (uint64_t)sqlite3_column_int64(a, 0) == r->tenant &&
		     sqlite3_column_int64(a, 1) == 0 &&
		     (!f->in_stock_only || sqlite3_column_int64(a, 4) == 1) &&
		     (isnan(f->price_min) || price >= f->price_min) &&
		     (isnan(f->price_max) || price <= f->price_max);
		if (ok && f->category_prefix)
			ok = cat &&
			     strncmp(cat, f->category_prefix, r->catlen) == 0 &&
			     (cat[r->catlen] == '\0' || cat[r->catlen] == '/');
		rc = SQLITE_OK;
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
	sqlite3_reset(a);
	if (rc != SQLITE_OK)
		r->err = rc;
	return ok;
}

/* Prepares @p sql into *@p s on first use, unless an earlier step
 * failed (@p rc, passed through): calls chain. */
static int prep(knytt__sqfts *x, int rc, sqlite3_stmt **s, const char *sql)
{
	if (rc != SQLITE_OK || *s)
		return rc;
	return sqlite3_prepare_v3(x->h, sql, -1, SQLITE_PREPARE_PERSISTENT, s,
				  NULL);
}

/* Runs a statement without results (BEGIN, COMMIT), prepared once. */
static int run_once(knytt__sqfts *x, sqlite3_stmt **s, const char *sql)
{
	int rc = prep(x, SQLITE_OK, s, sql);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(*s);
	sqlite3_reset(*s);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Keeps the token count of row @p id (best effort: no memory, no
 * entry). */
static void remember(knytt__sqfts *x, int64_t id, int len)
{
	if (id <= 0 || id > (1 << 26) || len < 0)
		return;
	size_t slot = (size_t)id;
	if (slot >= x->nlen) {
		size_t n = x->nlen ? x->nlen : 4096;
		while (n <= slot)
			n *= 2;
		uint32_t *p = realloc(x->len, n * sizeof *p);
		if (!p)
			return;
		memset(p + x->nlen, 0, (n - x->nlen) * sizeof *p);
		x->len = p;
		x->nlen = n;
	}
	x->len[slot] = (uint32_t)len + 1;
}

/* Forgets the counts of rows whose text changed since the last search,
 * from the log of migration 3; all of them if the log was trimmed past
 * what this connection saw. */
static int sync_lengths(knytt__sqfts *x)
{
	if (x->nolog)
		return SQLITE_OK;
	/* one aggregate per subquery: only then is it a seek, not a scan */
	int rc = prep(x, SQLITE_OK, &x->logspan,
		      "SELECT (SELECT min(seq) FROM knytt_fts_log), (SELECT "
		      "max(seq) FROM knytt_fts_log)");
	rc = prep(x, rc, &x->logsince,
		  "SELECT id FROM knytt_fts_log WHERE seq > ?1 ORDER BY seq");
	if (rc != SQLITE_OK) {
		x->nolog = 1; /* no such table: work without the memory */
		return SQLITE_OK;
	}
	int64_t lo = 0, hi = 0;
	if ((rc = sqlite3_step(x->logspan)) == SQLITE_ROW) {
		lo = sqlite3_column_int64(x->logspan, 0);
		hi = sqlite3_column_int64(x->logspan, 1);
		rc = SQLITE_OK;
	}
	sqlite3_reset(x->logspan);
	if (rc != SQLITE_OK)
		return rc;
	if (hi <= x->seen)
		return SQLITE_OK;
	if (x->seen < 0 || lo > x->seen + 1) {
		if (x->len)
			memset(x->len, 0, x->nlen * sizeof *x->len);
	} else {
		sqlite3_bind_int64(x->logsince, 1, x->seen);
		while ((rc = sqlite3_step(x->logsince)) == SQLITE_ROW) {
			int64_t id = sqlite3_column_int64(x->logsince, 0);
			if (id > 0 && (size_t)id < x->nlen)
				x->len[id] = 0;
		}
		sqlite3_reset(x->logsince);
		if (rc != SQLITE_DONE)
			return rc;
	}
	x->seen = hi;
	return SQLITE_OK;
}

/* Scores the current row of @p fts and keeps it if it enters the heap;
 * an SQLite error code. */
static int score_row(knytt__sqfts *x, run *r, qconst *q,
		     const Fts5ExtensionApi *api, Fts5Context *fts)
{
	int rc;
	/* a column holds at least up to the end of its last instance; the
	 * phrase iterators read the position lists as they are, where
	 * xInst would first copy them into an array of instances */
	int end[NCOLS + 1] = {0};
	for (int ph = 0; ph < q->nphrase; ph++) {
		Fts5PhraseIter it;
		int col, off, size = api->xPhraseSize(fts, ph);
		double f = 0;
		if ((rc = api->xPhraseFirst(fts, ph, &it, &col, &off)) !=
		    SQLITE_OK)
			return rc;
		for (; col >= 0; api->xPhraseNext(fts, &it, &col, &off)) {
			int c = col < NCOLS ? col : NCOLS;
			f += col < NCOLS ? col_weight[col] : 1.0;
			if (off + size > end[c])
				end[c] = off + size;
		}
		q->freq[ph] = f;
	}
	double mintok = 0;
	for (int c = 0; c <= NCOLS; c++)
		mintok += end[c];
	int64_t id = api->xRowid(fts);
	/* BM25 falls as the row grows: the row is at least mintok long */
	if (!could_enter(r, bm25(q, mintok), id))
		return SQLITE_OK;
	/* the caller's filter is in memory: it is asked before a length
	 * has to be read, else only for a row whose exact score would
	 * enter the heap (most rows of a frequent word stop there) */
	int len = 0;
	size_t slot = (size_t)id;
	int known = r->lens && id > 0 && slot < x->nlen && x->len[slot];
	if (!known && r->q->accept &&
	    !r->q->accept((uint64_t)id, r->q->ctx))
		return SQLITE_OK;
	if (known) {
		len = (int)x->len[slot] - 1;
	} else {
		if ((rc = api->xColumnSize(fts, -1, &len)) != SQLITE_OK)
			return rc;
		if (r->lens)
			remember(x, id, len);
	}
	r->ranked++;
	hit h = {bm25(q, len), id};
	if (!could_enter(r, h.s, id))
		return SQLITE_OK;
	if (known && r->q->accept && !r->q->accept((uint64_t)id, r->q->ctx))
		return SQLITE_OK;
	if (r->defer || r->q->accept_all) {
		/* checked at the end (knytt__sqfts_search), or not at all:
		 * the caller's accept said it all */
		heap_push(r, h);
		return r->err;
	}
	r->looked_up++;
	if (passes(x, r, id))
		heap_push(r, h);
	return r->err;
}

typedef struct walker {
	knytt__sqfts *x;
	run *r;
	qconst *q;
} walker;

static int walk_row(const Fts5ExtensionApi *api, Fts5Context *fts,
		    void *ctx)
{
	walker *w = ctx;
	return score_row(w->x, w->r, w->q, api, fts);
}

static void rank_fn(const Fts5ExtensionApi *api, Fts5Context *fts,
		    sqlite3_context *ctx, int nval, sqlite3_value **val)
{
	(void)nval;
	(void)val;
	knytt__sqfts *x = api->xUserData(fts);
	run *r = x->cur;
	sqlite3_result_null(ctx);
	if (!r) {
		sqlite3_result_error(ctx, "knytt_bm25: not inside a search",
				     -1);
		return;
	}
	qconst *q = api->xGetAuxdata(fts, 0);
	int rc;
	if (!q) {
		if ((rc = qconst_make(x, api, fts, &q)) != SQLITE_OK ||
		    (rc = api->xSetAuxdata(fts, q, qconst_free)) !=
			    SQLITE_OK) {
			sqlite3_result_error_code(ctx, rc);
			return;
		}
	}
	if (r->walk) {
		/* one phrase: its rows are the query's; FTS5 walks them
		 * here, without a trip through the VM per row (the
		 * statement is not stepped past this first row) */
		walker w = {x, r, q};
		rc = api->xQueryPhrase(fts, 0, &w, walk_row);
	} else {
		rc = score_row(x, r, q, api, fts);
	}
	if (rc != SQLITE_OK)
		sqlite3_result_error_code(ctx, rc);
}

int knytt__sqfts_open(sqlite3 *h, knytt__sqfts **out)
{
	*out = NULL;
	knytt__sqfts *x = calloc(1, sizeof *x);
	if (!x)
		return SQLITE_NOMEM;
	x->h = h;
	x->seen = -1;
	/* the documented way to reach FTS5's API: SELECT fts5(?1) with a
	 * pointer bound under the type name "fts5_api_ptr" */
	fts5_api *api = NULL;
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(h, "SELECT fts5(?1)", -1, &s, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_pointer(s, 1, &api, "fts5_api_ptr", NULL);
		sqlite3_step(s);
	}
	sqlite3_finalize(s);
	if (rc == SQLITE_OK && (!api || api->iVersion < 2))
		rc = SQLITE_ERROR;
	if (rc == SQLITE_OK)
		rc = api->xCreateFunction(api, "knytt_bm25", x, rank_fn, NULL);
	if (rc != SQLITE_OK) {
		free(x);
		return rc;
	}
	*out = x;
	return SQLITE_OK;
}

void knytt__sqfts_close(knytt__sqfts *x)
{
	if (!x)
		return;
	sqlite3_finalize(x->match);
	sqlite3_finalize(x->attrs);
	sqlite3_finalize(x->logspan);
	sqlite3_finalize(x->logsince);
	sqlite3_finalize(x->begin);
	sqlite3_finalize(x->commit);
	free(x->heap);
	free(x->len);
	free(x->df);
	free(x); /* the function stays registered, never called again */
}

static int cmp_hit(const void *a, const void *b)
{
	const hit *x = a, *y = b;
	return worse(y, x) ? -1 : worse(x, y) ? 1 : 0;
}

/* One walk over the matches into r's heap, in the current snapshot. */
static int walk_matches(knytt__sqfts *x, sqlite3_stmt *m, run *r)
{
	int rc;
	sqlite3_bind_text(m, 1, r->q->match, -1, SQLITE_STATIC);
	x->cur = r;
	/* with r->walk the first row's call walked them all */
	while ((rc = sqlite3_step(m)) == SQLITE_ROW && !r->walk)
		;
	if (rc == SQLITE_ROW)
		rc = SQLITE_DONE;
	x->cur = NULL;
	sqlite3_reset(m);
	sqlite3_clear_bindings(m);
	if (rc == SQLITE_DONE)
		rc = r->err ? r->err : SQLITE_OK;
	return rc;
}

/*
 * The tenant and filter checks read the item's row, ~1.5 us each, and in
 * id order the k-th best score keeps rising: about k ln(matches / k)
 * rows get checked (~300 for k = 50 among 10k matches).  So the walk
 * first keeps the best 2k + 16 rows unchecked, and only those are read,
 * best first, until k pass.  If fewer pass while rows were left out,
 * the walk runs again with the checks inline.
 */
int knytt__sqfts_search(knytt__sqfts *x, uint64_t tenant,
			const knytt__search *qy, uint64_t *ids, double *scores,
			size_t cap)
{
	int walk = qy->nwords == 1;
	int rc = prep(x, SQLITE_OK, &x->match,
		      "SELECT knytt_bm25(items_fts) FROM items_fts WHERE "
		      "items_fts MATCH ?1");
	rc = prep(x, rc, &x->attrs,
		  "SELECT tenant, deleted, category, price, in_stock FROM "
		  "items WHERE id = ?1");
	if (rc != SQLITE_OK)
		return -rc;
	/* deferred checks pay when nearly every row passes them: no filter
	 * of the store's own (a caller's predicate was asked already), and
	 * not just after a search whose best rows mostly failed (other
	 * tenants' rows, say), which tries again 32 searches later */
	int defer = !qy->accept_all && !qy->category_prefix &&
		    isnan(qy->price_min) && isnan(qy->price_max) &&
		    !qy->in_stock_only && cap <= (SIZE_MAX - 16) / 2;
	if (x->inline_for > 0) {
		x->inline_for--;
		defer = 0;
	}
	size_t pool = defer ? 2 * cap + 16 : cap;
	/* the heap's memory is kept from search to search */
	run r = {.q = qy,
		 .tenant = tenant,
		 .catlen = qy->category_prefix ? strlen(qy->category_prefix)
					       : 0,
		 .heap = x->heap,
		 .alloc = x->heap_alloc,
		 .cap = pool,
		 .walk = walk,
		 .defer = defer};
	sqlite3_stmt *m = x->match;
	/* the log, the matches and the items are read in one snapshot */
	int own = sqlite3_get_autocommit(x->h);
	if (own && (rc = run_once(x, &x->begin, "BEGIN")) != SQLITE_OK)
		return -rc;
	/* What is kept from search to search (the token counts, the word
	 * counts of df_hits) is valid at a log entry, and only committed
	 * entries keep their numbers: a caller's transaction may hold item
	 * changes whose log entries a rollback takes back, and the next
	 * change then gets the same number.  So a search inside one uses
	 * and keeps nothing (before this, a row's token count read inside
	 * a transaction that was rolled back outlived it). */
	r.lens = own && !x->nolog;
	if (r.lens)
		rc = sync_lengths(x);
	x->df_use = r.lens && rc == SQLITE_OK;
	if (rc == SQLITE_OK)
		rc = walk_matches(x, m, &r);
	size_t n = 0;
	if (rc == SQLITE_OK) {
		if (r.n > 1) /* no heap when nothing matched */
			qsort(r.heap, r.n, sizeof *r.heap, cmp_hit);
		if (!defer) {
			n = r.n; /* checked during the walk */
		} else {
			for (size_t i = 0; i < r.n && n < cap && !r.err; i++) {
				r.looked_up++;
				if (passes(x, &r, r.heap[i].id))
					r.heap[n++] = r.heap[i];
			}
			rc = r.err;
		}
	}
	if (rc == SQLITE_OK && defer && n < cap && r.n == pool) {
		/* too few of the best passed: check as the walk goes */
		x->inline_for = 32;
		r.n = 0;
		r.cap = cap;
		r.defer = 0;
		rc = walk_matches(x, m, &r);
		if (rc == SQLITE_OK && r.n > 1)
			qsort(r.heap, r.n, sizeof *r.heap, cmp_hit);
		n = r.n;
	}
	if (own) /* a read transaction: ending it cannot lose anything */
		run_once(x, &x->commit, "COMMIT");
	if (rc == SQLITE_OK) {
		for (size_t i = 0; i < n; i++) {
			ids[i] = (uint64_t)r.heap[i].id;
			if (scores)
				scores[i] = r.heap[i].s;
		}
	}
	x->heap = r.heap;
	x->heap_alloc = r.alloc;
	x->stats[0] = r.ranked;
	x->stats[1] = r.looked_up;
	return rc == SQLITE_OK ? (int)n : -rc;
}

void knytt__sqfts_stats(const knytt__sqfts *x, long long *scored,
			long long *read)
{
	*scored = x->stats[0];
	*read = x->stats[1];
}
