/*
 * query.c -- what the queries share (filters, candidates, index and scan
 * searches, results, fallbacks; query.h) and trending.  Recommend,
 * similar and search have their own files.
 *
 * Every query applies the caller's filter inside the index walk (a
 * predicate on the in-memory item table), so results that violate it are
 * never produced rather than removed afterwards, and lists stay full as
 * long as enough items pass.
 */
#include "query.h"
#include "../store/store_int.h"
#include "../model/blend.h"

#include "../vec/topk.h"
#include "../vec/vec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- filters */


/* Whether @p f (not NULL) has an upper price bound (0 or NAN = none). */
int knytt__q_has_price_max(const knytt_filter *f)
{
	return !isnan(f->price_max) && f->price_max != 0;
}

/* Whether @p f restricts the price at all. */
int knytt__q_has_price_range(const knytt_filter *f)
{
	return f->price_min > 0 || knytt__q_has_price_max(f);
}

/* knytt__price_rows over @p f's price range (open ends unbounded). */
static int price_rows_of(knytt_engine *e, const knytt_filter *f,
			 void (*fn)(uint32_t row, void *ctx), void *ctx)
{
	return knytt__price_rows(e, f->price_min > 0 ? f->price_min : -INFINITY,
				 knytt__q_has_price_max(f) ? f->price_max : INFINITY, fn,
				 ctx);
}

/* The caller's filter as this version's struct: members beyond an older
 * caller's struct_size keep knytt_filter_init's defaults.  *io is the
 * filter to use from then on (@p tmp, or NULL for none). */
int knytt__q_check_filter(const knytt_filter **io, knytt_filter *tmp)
{
	const knytt_filter *in = *io;
	if (!in)
		return KNYTT_OK;
	if (!KNYTT__HAS(in, knytt_filter, category_prefix))
		return knytt__err(KNYTT_EINVAL,
				  "filter.struct_size is %zu, too small "
				  "(use knytt_filter_init)",
				  in->struct_size);
	knytt_filter_init(tmp);
	KNYTT__STRUCT_IN(tmp, in);
	const knytt_filter *f = *io = tmp;
	if (isnan(f->price_min) || isinf(f->price_min))
		return knytt__err(KNYTT_EINVAL,
				  "filter.price_min must be finite");
	int has_max = knytt__q_has_price_max(f);
	if (has_max && f->price_max < 0)
		return knytt__err(KNYTT_EINVAL,
				  "filter.price_max %g is negative",
				  f->price_max);
	if (has_max && f->price_min > f->price_max)
		return knytt__err(KNYTT_EINVAL,
				  "filter.price_min %g is above price_max %g",
				  f->price_min, f->price_max);
	if (isinf(f->min_quality))
		return knytt__err(KNYTT_EINVAL,
				  "filter.min_quality must be finite or NAN");
	return KNYTT_OK;
}

static int excluded(const qctx *c, uint64_t id)
{
	if (c->excl_mask && (knytt__profile_seen(c->prof, id) & c->excl_mask))
		return 1;
	size_t lo = 0, hi = c->nexcl;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (c->excl[mid] < id)
			lo = mid + 1;
		else if (c->excl[mid] > id)
			hi = mid;
		else
			return 1;
	}
	return 0;
}

int knytt__q_item_passes(const qctx *c, const eitem *it)
{
	if (it->deleted)
		return 0;
	const knytt_filter *f = c->f;
	if (f) {
		if (c->plen &&
		    !knytt__cat_match(it->category, f->category_prefix,
				      c->plen))
			return 0;
		if (f->price_min > 0 && !(it->price >= f->price_min))
			return 0;
		if (knytt__q_has_price_max(f) && !(it->price <= f->price_max))
			return 0;
		if (f->in_stock_only && !it->in_stock)
			return 0;
		if (!isnan(f->min_quality) && !(it->quality >= f->min_quality))
			return 0;
		/* where_ready ran (filter_bits / filter_cands); without its
		 * bitset (no memory) nothing passes */
		if (f->where &&
		    !(c->w.rows &&
		      knytt__wbits_has(&c->w, (size_t)(it - c->e->items))))
			return 0;
	}
	return (c->nexcl == 0 && c->excl_mask == 0) || !excluded(c, it->id);
}

static int label_passes(uint64_t label, void *ctx)
{
	const qctx *c = ctx;
	uint32_t r = knytt__engine_row(c->e, label);
	return r != UINT32_MAX && knytt__q_item_passes(c, &c->e->items[r]);
}

/* The keyword search's filter: the bitset when there is one.  Called by
 * the store with the engine unlocked: the read lock for the test. */
int knytt__q_kw_accept_locked(uint64_t id, void *ctx)
{
	const qctx *c = ctx;
	if (c->bits)
		return id < c->nbits && (c->bits[id >> 6] >> (id & 63) & 1);
	pthread_rwlock_rdlock(&((knytt_engine *)c->e)->lock);
	int ok = label_passes(id, ctx);
	pthread_rwlock_unlock(&((knytt_engine *)c->e)->lock);
	return ok;
}

/* @p snap: a reference the query holds (qctx_done gives it back). */
void knytt__q_qctx_init(qctx *c, const knytt_engine *e, knytt__snap *snap,
		      const knytt_filter *f)
{
	memset(c, 0, sizeof *c);
	c->e = e;
	c->snap = snap;
	c->f = f;
	if (f && f->category_prefix)
		c->plen = strlen(f->category_prefix);
	c->w_rc = 1; /* not tried */
}

/* The rows of an attribute filter are scanned (at most SCAN_MAX) where
 * the index would give up its walk for its own exact scan, n^2 < 32 ef N
 * (index.c), which reads the vectors through the label map and costs ~6x
 * the engine's scan (benchmarks/engine/run --filters, 100k items: a 10%
 * filter took 1.5 ms there); above it the walk wins (a 50% filter on 20k
 * items: 246 us scanned, 117 us walked). */
static int where_scan(const knytt_engine *e, const qctx *c)
{
	double n = (double)c->w.count;
	return c->w.rows && c->w.count <= SCAN_MAX &&
	       n * n < 32.0 * (double)(e->efs ? e->efs : 64) *
			       (double)e->nitems;
}

/* The rows passing the attribute filter, evaluated once per query from
 * the per-value postings (where.c); caller holds the engine lock. */
static int where_ready(const knytt_engine *e, qctx *c)
{
	if (c->w_rc == 1)
		c->w_rc = c->f && c->f->where
				  ? knytt__where_eval(c->f->where, e->ax,
						      e->nitems, &c->w)
				  : KNYTT_OK;
	return c->w_rc;
}

/* An attribute filter passing at most a quarter of the table gets the
 * bitset over store ids (the index then searches only those); a wider
 * one is tested by the predicate on the nodes the walk meets, cheaper
 * than writing tens of thousands of bits. */
static int where_narrow(const knytt_engine *e, const qctx *c)
{
	return c->w.rows && c->w.count * 4 <= e->nitems;
}

typedef struct bits_fill {
	qctx *c;
	const eitem *items;
} bits_fill;

static void set_if_passes(uint32_t row, void *ctx)
{
	bits_fill *b = ctx;
	const eitem *it = &b->items[row];
	if (knytt__q_item_passes(b->c, it))
		b->c->bits[it->id / 64] |= 1ULL << (it->id % 64);
}

/*
 * When the filter names a category prefix or a price range, the set of
 * passing items as a bitset over store ids, so the index can search
 * exactly those: a selective filter then costs its few thousand items,
 * not a predicate call (a hash lookup and a string compare) on every
 * slot of the index.  The candidates come from the filter indexes
 * (filterx.c): the category's rows, else the rows in the price range.
 * Stock and quality alone pass most items and have no index: their
 * queries use the predicate, which the index walk calls only on the
 * nodes it visits (building a bitset would test all rows, ~1 ms at 100k
 * items, more than the whole walk).
 * Returns an error only for lack of memory; without such a filter
 * c->bits stays NULL.
 */
int knytt__q_filter_bits(knytt_engine *e, qctx *c)
{
	const knytt_filter *f = c->f;
	int rc = where_ready(e, c);
	if (rc)
		return rc;
	if (!f || !(c->plen || knytt__q_has_price_range(f) ||
		    where_narrow(e, c)))
		return KNYTT_OK;
	c->nbits = (size_t)e->max_id + 1;
	c->bits = calloc((c->nbits + 63) / 64, sizeof *c->bits);
	if (!c->bits)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	bits_fill b = { c, e->items };
	if (where_narrow(e, c)) {
		for (size_t w = 0; w < c->w.nwords; w++)
			for (uint64_t m = c->w.rows[w]; m; m &= m - 1)
				set_if_passes((uint32_t)(w * 64 +
					      (size_t)__builtin_ctzll(m)), &b);
		return KNYTT_OK;
	}
	if (c->plen) {
		pthread_mutex_lock(&e->cat_mu);
		const catlist *cl = knytt__cat_rows(e, f->category_prefix,
						    c->plen);
		for (size_t i = 0; cl && i < cl->n; i++)
			set_if_passes(cl->rows[i], &b);
		pthread_mutex_unlock(&e->cat_mu);
		if (cl)
			return KNYTT_OK;
		/* no memory for the list: the price order, or every row */
	}
	if (knytt__q_has_price_range(f) && price_rows_of(e, f, set_if_passes, &b) == 0)
		return KNYTT_OK;
	for (size_t r = 0; r < e->nitems; r++)
		set_if_passes((uint32_t)r, &b);
	return KNYTT_OK;
}

void knytt__q_qctx_done(qctx *c)
{
	knytt__snap_put(c->snap);
	c->snap = NULL;
	free(c->w.rows);
	c->w.rows = NULL;
	free(c->bits);
	c->bits = NULL;
	free(c->cand);
	c->cand = NULL;
}

static void cand_add(uint32_t row, void *ctx)
{
	qctx *c = ctx;
	if (c->ncand < c->capcand)
		c->cand[c->ncand++] = row;
	else
		c->capcand = 0; /* too many: marks the list unusable */
}

/*
 * The rows a category prefix or price range may pass, as a superset
 * (rows are tested when they reach a result list), when there are at
 * most SCAN_MAX of them and the vector copy is usable.  Returns 1 with
 * c->cand filled, 0 when the query should use filter_bits and the index.
 */
int knytt__q_filter_cands(knytt_engine *e, qctx *c)
{
	const knytt_filter *f = c->f;
	if (where_ready(e, c)) /* no memory: filter_bits says so */
		return 0;
	int wsmall = where_scan(e, c);
	/* the vector copy follows the current snapshot: a query still on a
	 * replaced one (search, across its store call) uses that index */
	if (!e->rowvec_ok || c->snap != e->snap || !f ||
	    !(c->plen || knytt__q_has_price_range(f) || wsmall))
		return 0;
	if (!(c->cand = malloc(SCAN_MAX * sizeof *c->cand)))
		return 0;
	c->capcand = SCAN_MAX;
	c->ncand = 0;
	if (wsmall) {
		/* the attribute filter's rows (the scan tests the rest) */
		for (size_t w = 0; w < c->w.nwords; w++)
			for (uint64_t m = c->w.rows[w]; m; m &= m - 1)
				c->cand[c->ncand++] = (uint32_t)(w * 64 +
					(size_t)__builtin_ctzll(m));
		return 1;
	}
	if (c->plen) {
		pthread_mutex_lock(&e->cat_mu);
		const catlist *cl = knytt__cat_rows(e, f->category_prefix,
						    c->plen);
		int ok = cl && cl->n <= SCAN_MAX;
		if (ok && cl->n) {
			memcpy(c->cand, cl->rows, cl->n * sizeof *c->cand);
			c->ncand = cl->n;
		}
		pthread_mutex_unlock(&e->cat_mu);
		if (ok || cl)
			return ok;
	}
	if (price_rows_of(e, f, cand_add, c) == 0 && c->capcand)
		return 1;
	return 0;
}

typedef struct scan_ok_ctx {
	const knytt_engine *e;
	const qctx *c;
} scan_ok_ctx;

static int scan_ok(uint32_t row, void *ctx)
{
	const scan_ok_ctx *s = ctx;
	const eitem *it = &s->e->items[row];
	return it->has_vec && knytt__q_item_passes(s->c, it);
}

/* Filtered k-NN on the index: the bitset when there is one. */
/* 1 when the filter restricts nothing but exclusions. */
int knytt__q_only_exclusions(const qctx *c)
{
	const knytt_filter *f = c->f;
	return !f || (!c->plen && !knytt__q_has_price_range(f) &&
		      !f->in_stock_only && isnan(f->min_quality) && !f->where);
}

/* The predicate of a filter of exclusions only.  Every label in the
 * index is a live item of the table (open, install, delete and sync keep
 * it so, under the write lock), so the row need not be looked up: the
 * exclusions are all there is to test. */
static int not_excluded(uint64_t label, void *ctx)
{
	return !excluded(ctx, label);
}

/*
 * Filtered k-NN on the index: the bitset when there is one.  When the
 * only filter is the exclusions (a recommendation without filters: the
 * shopper's seen items), all but a few items pass and the index is told
 * so: its own estimate sampled the predicate 256 times a query, a fifth
 * of a recommendation's time (perf, benchmarks/serve); and the predicate
 * tests the exclusions alone (not_excluded), which halved its cost.
 */
int knytt__q_ann(const knytt_engine *e, qctx *c, const float *q, size_t kk,
	       uint64_t *lab, float *dist)
{
	unsigned ef = e->efs > kk ? e->efs : (unsigned)kk;
	if (c->bits)
		return knytt_index_search_bitset(c->snap->ix, q, e->dim, kk, ef,
						 c->bits, c->nbits, lab, dist);
	if (knytt__q_only_exclusions(c)) {
		size_t n = knytt_index_count(c->snap->ix), out = c->nexcl;
		if (c->excl_mask && c->prof)
			out += c->prof->seen.n;
		if (!c->nexcl && !c->excl_mask)
			return knytt_index_search(c->snap->ix, q, e->dim, kk,
						  ef, lab, dist);
		return knytt__index_search_filter_est(c->snap->ix, q, e->dim,
						      kk, ef, not_excluded, c,
						      n > out ? n - out : 0,
						      lab, dist);
	}
	return knytt_index_search_filter(c->snap->ix, q, e->dim, kk, ef,
					 label_passes, c, lab, dist);
}

/* Filtered k-NN by the exact scan of scan.c over c->cand (filter_cands
 * gave them): labels and distances as ann gives them. */
int knytt__q_scan_one(const knytt_engine *e, const qctx *c, const float *q,
		    size_t kk, uint64_t *lab, float *dist)
{
	uint32_t *orow = malloc(kk * sizeof *orow);
	if (!orow)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	const float *qv[1] = { q };
	size_t got[1] = { 0 };
	scan_ok_ctx ok = { e, c };
	knytt__scan(e, c->cand, c->ncand, qv, 1, kk, scan_ok, &ok, orow, dist,
		    got);
	for (size_t i = 0; i < got[0]; i++)
		lab[i] = e->items[orow[i]].id;
	free(orow);
	return (int)got[0];
}

void knytt__q_fill(const knytt_engine *e, knytt_result *r, uint32_t row,
		 double score, knytt_reason why, uint64_t because)
{
	const eitem *it = &e->items[row];
	r->struct_size = sizeof *r;
	r->item_id = it->id;
	snprintf(r->ext_id, sizeof r->ext_id, "%s", it->ext_id);
	r->score = score;
	r->reason = why;
	r->because = because;
}

/* The exact search of scan.c for nq taste vectors at once: list j gets
 * up to kk results into res[j] (count in n[j]), reason why[j]. */
int knytt__q_scan_tastes(const knytt_engine *e, const qctx *c,
		       const float *const *q, size_t nq, size_t kk,
		       knytt_result **res, size_t *n, const knytt_reason *why,
		       const uint64_t *because)
{
	uint32_t *orow = malloc(nq * kk * sizeof *orow);
	float *osc = malloc(nq * kk * sizeof *osc);
	size_t got[2] = { 0, 0 };
	if (!orow || !osc) {
		free(orow);
		free(osc);
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	}
	scan_ok_ctx ok = { e, c };
	knytt__scan(e, c->cand, c->ncand, q, nq, kk, scan_ok, &ok, orow, osc,
		    got);
	for (size_t j = 0; j < nq; j++)
		for (size_t i = 0; i < got[j]; i++)
			knytt__q_fill(e, &res[j][n[j]++], orow[j * kk + i],
			     osc[j * kk + i], why[j], because[j]);
	free(orow);
	free(osc);
	return KNYTT_OK;
}

/* Whether @p id is among out[0..n).  Each fallback checks only the
 * entries that were there before it started (a list or a scan gives
 * every item once): checking its own entries made a 200-item list cost
 * 20,000 comparisons (the pool re-rank, recommend.c). */
static int taken(const knytt_result *out, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (out[i].item_id == id)
			return 1;
	return 0;
}

/* Appends the best items by trending (window h) or popularity (h < 0)
 * that pass the filter and are not in out[0..n), scoring every passing
 * item; returns the new n. */
static size_t fallback_scan(const knytt_engine *e, const qctx *c, int h,
		       int64_t now, size_t k, knytt_result *out, size_t n)
{
	if (n >= k)
		return n;
	/* k candidates: up to n of them may be taken already */
	size_t want = k, n0 = n;
	knytt__pair *heap = malloc(want * sizeof *heap);
	uint64_t *rows = malloc(want * sizeof *rows);
	float *sc = malloc(want * sizeof *sc);
	if (!heap || !rows || !sc)
		goto out;
	knytt__topk t = { heap, 0, want };
	/* with a filter bitset only its items; otherwise every row */
	size_t nrows = c->bits ? (c->nbits + 63) / 64 * 64 : e->nitems;
	for (size_t x = 0; x < nrows; x++) {
		size_t r = x;
		if (c->bits) {
			if (x % 64 == 0 && c->bits[x / 64] == 0) {
				x += 63; /* an empty word: skip it whole */
				continue;
			}
			if (!(c->bits[x / 64] >> (x % 64) & 1))
				continue;
			r = knytt__engine_row(e, x);
			if (r == UINT32_MAX)
				continue;
		}
		const eitem *it = &e->items[r];
		double s;
		if (h >= 0) {
			s = knytt__trend_now(it, h, now);
		} else {
			s = it->pop;
		}
		if (!(s > 0) || !knytt__q_item_passes(c, it))
			continue;
		/* heap keeps the smallest keys: use -score */
		if ((float)-s < knytt__topk_worst(&t))
			knytt__topk_push(&t, (float)-s, r);
	}
	size_t got = knytt__topk_drain(&t, rows, sc);
	for (size_t i = 0; i < got && n < k; i++) {
		if (taken(out, n0, e->items[rows[i]].id))
			continue;
		knytt__q_fill(e, &out[n++], (uint32_t)rows[i], -sc[i],
		     h >= 0 ? KNYTT_REASON_TRENDING : KNYTT_REASON_POPULAR, 0);
	}
out:
	free(heap);
	free(rows);
	free(sc);
	return n;
}

/* The same from the head of the kept ranking (toplist.c).  *full = 0
 * when the answer is complete: k found, or the list holds every item
 * with a positive score. */
static size_t fallback_list(const knytt_engine *e, const qctx *c, int h,
			    int64_t now, size_t k, knytt_result *out,
			    size_t n, int *full)
{
	const toplist *t = &e->top[h >= 0 ? h : NTREND];
	size_t n0 = n;
	for (size_t i = 0; i < t->n && n < k; i++) {
		const eitem *it = &e->items[t->row[i]];
		double s = h >= 0 ? knytt__trend_now(it, h, now) : it->pop;
		if (!(s > 0) || !knytt__q_item_passes(c, it) ||
		    taken(out, n0, it->id))
			continue;
		knytt__q_fill(e, &out[n++], t->row[i], s,
		     h >= 0 ? KNYTT_REASON_TRENDING : KNYTT_REASON_POPULAR, 0);
	}
	*full = n < k && t->n == TOPN;
	return n;
}

/* The windowed recent popularity of the last @p win ms (recentwin.c)
 * after out[0..*n): its ranked list, which holds every item with an
 * event in the window. */
int knytt__q_win_fallback(knytt_engine *e, const qctx *c, int64_t win,
			  int64_t now, size_t k, knytt_result *out, size_t *n)
{
	const uint32_t *rows;
	const int64_t *cnt;
	size_t m = knytt__win_lock(e, win, now, &rows, &cnt), n0 = *n;
	for (size_t i = 0; i < m && *n < k; i++) {
		if (rows[i] >= e->nitems)
			continue; /* a row the table has not published */
		const eitem *it = &e->items[rows[i]];
		if (!knytt__q_item_passes(c, it) || taken(out, n0, it->id))
			continue;
		knytt__q_fill(e, &out[(*n)++], rows[i],
			      knytt__win_score(cnt[rows[i]]),
			      KNYTT_REASON_TRENDING, 0);
	}
	knytt__win_unlock(e);
	return KNYTT_OK;
}

/* Trending (h >= 0) or popular items after out[0..*n): the head of the
 * kept list, and only when that runs out, a scan of the passing items
 * (their bitset built now if the query has none yet). */
int knytt__q_fallback(knytt_engine *e, qctx *c, int h, int64_t now, size_t k,
		    knytt_result *out, size_t *n)
{
	if (*n >= k)
		return KNYTT_OK;
	int full = 1;
	/* the counters move under feedback: read them under stat_lock */
	pthread_rwlock_rdlock(&e->stat_lock);
	if (e->top_ok) {
		*n = fallback_list(e, c, h, now, k, out, *n, &full);
		if (!full) {
			pthread_rwlock_unlock(&e->stat_lock);
			return KNYTT_OK;
		}
	}
	int rc = KNYTT_OK;
	if (c->bits || (rc = knytt__q_filter_bits(e, c)) == KNYTT_OK)
		*n = fallback_scan(e, c, h, now, k, out, *n);
	pthread_rwlock_unlock(&e->stat_lock);
	return rc;
}

double knytt__q_score_of(const knytt_engine *e, float dist)
{
	/* IP index: dist = -q.x; cosine: dist = 1 - cos */
	return e->metric == KNYTT_METRIC_IP ? -dist : 1.0 - dist;
}

int knytt__q_check_query(const knytt_engine *e, size_t k, const char *fn)
{
	if (!e)
		return knytt__err(KNYTT_EINVAL, "%s: engine is NULL", fn);
	if (!e->is_open)
		return knytt__err(KNYTT_ESTATE, "%s: engine is not open", fn);
	if (k == 0)
		return knytt__err(KNYTT_EINVAL, "%s: k is 0", fn);
	if (k > 10000)
		return knytt__err(KNYTT_EINVAL, "%s: k is %zu, at most 10000",
				  fn, k);
	return KNYTT_OK;
}

/* --------------------------------------------------------------- trending */

int knytt__engine_trending(knytt_engine *e, size_t k, double window_s,
			  const char *category, knytt_result *out)
{
	int rc = knytt__q_check_query(e, k, "knytt_engine_trending");
	if (rc)
		return rc;
	if (!out)
		return knytt__err(KNYTT_EINVAL, "trending: out is NULL");
	if (!(window_s > 0) || isinf(window_s))
		return knytt__err(KNYTT_EINVAL,
				  "trending: window must be > 0 seconds");
	/* the nearest kept half-life, on a log scale */
	const double *hl = knytt__trend_half_life;
	int h = 0;
	for (int i = 1; i < NTREND; i++)
		if (fabs(log(window_s / hl[i])) < fabs(log(window_s / hl[h])))
			h = i;
	knytt_filter f;
	knytt_filter_init(&f);
	f.category_prefix = category && *category ? category : NULL;
	pthread_rwlock_rdlock(&e->lock);
	qctx c;
	knytt__q_qctx_init(&c, e, NULL, &f);
	size_t n = 0;
	rc = knytt__q_fallback(e, &c, h, knytt__engine_now(e), k, out, &n);
	pthread_rwlock_unlock(&e->lock);
	knytt__q_qctx_done(&c);
	return rc < 0 ? rc : (int)n;
}
