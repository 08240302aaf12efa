/*
 * query.c -- recommend, similar, hybrid search and trending.
 *
 * Every query applies the caller's filter inside the index walk (a
 * predicate on the in-memory item table), so results that violate it are
 * never produced rather than removed afterwards, and lists stay full as
 * long as enough items pass.
 */
#include "engine_int.h"
#include "../store/store_int.h"
#include "../model/blend.h"

#include "../vec/topk.h"
#include "../vec/vec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- filters */

typedef struct qctx {
	const knytt_engine *e;
	const knytt_filter *f;
	size_t plen;           /* length of the category prefix, 0 = any */
	const uint64_t *excl;  /* sorted store ids never to return */
	size_t nexcl;
	const knytt__profile *prof; /* with excl_mask: items the shopper
				       had an event of these types on
				       never return (0 = none) */
	unsigned excl_mask;
	uint64_t *bits;        /* passing store ids, when the filter
				  restricts anything (filter_bits) */
	size_t nbits;
	uint32_t *cand;        /* rows that may pass, a superset from the
				  filter indexes (filter_cands) */
	size_t ncand, capcand;
} qctx;

/* A category or price range with at most this many items is answered by
 * an exact scan of the engine's vector copy (scan.c) rather than by the
 * index.  On the benchmark shop (memory-bound, dim 64) the scan costs
 * ~60-100 ns per item for both tastes, the index's filtered search
 * ~100 ns per item and taste below its own exact-scan switch (~14k
 * items) and some 0.5-1 ms above it. */
#define SCAN_MAX 16384

/* Whether @p f (not NULL) has an upper price bound (0 or NAN = none). */
static int has_price_max(const knytt_filter *f)
{
	return !isnan(f->price_max) && f->price_max != 0;
}

/* Whether @p f restricts the price at all. */
static int has_price_range(const knytt_filter *f)
{
	return f->price_min > 0 || has_price_max(f);
}

/* knytt__price_rows over @p f's price range (open ends unbounded). */
static int price_rows_of(knytt_engine *e, const knytt_filter *f,
			 void (*fn)(uint32_t row, void *ctx), void *ctx)
{
	return knytt__price_rows(e, f->price_min > 0 ? f->price_min : -INFINITY,
				 has_price_max(f) ? f->price_max : INFINITY, fn,
				 ctx);
}

/* The caller's filter as this version's struct: members beyond an older
 * caller's struct_size keep knytt_filter_init's defaults.  *io is the
 * filter to use from then on (@p tmp, or NULL for none). */
static int check_filter(const knytt_filter **io, knytt_filter *tmp)
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
	tmp->category_prefix = in->category_prefix;
	if (KNYTT__HAS(in, knytt_filter, price_min))
		tmp->price_min = in->price_min;
	if (KNYTT__HAS(in, knytt_filter, price_max))
		tmp->price_max = in->price_max;
	if (KNYTT__HAS(in, knytt_filter, in_stock_only))
		tmp->in_stock_only = in->in_stock_only;
	if (KNYTT__HAS(in, knytt_filter, min_quality))
		tmp->min_quality = in->min_quality;
	const knytt_filter *f = *io = tmp;
	if (isnan(f->price_min) || isinf(f->price_min))
		return knytt__err(KNYTT_EINVAL,
				  "filter.price_min must be finite");
	int has_max = has_price_max(f);
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

static int item_passes(const qctx *c, const eitem *it)
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
		if (has_price_max(f) && !(it->price <= f->price_max))
			return 0;
		if (f->in_stock_only && !it->in_stock)
			return 0;
		if (!isnan(f->min_quality) && !(it->quality >= f->min_quality))
			return 0;
	}
	return (c->nexcl == 0 && c->excl_mask == 0) || !excluded(c, it->id);
}

static int label_passes(uint64_t label, void *ctx)
{
	const qctx *c = ctx;
	uint32_t r = knytt__engine_row(c->e, label);
	return r != UINT32_MAX && item_passes(c, &c->e->items[r]);
}

/* The keyword search's filter: the bitset when there is one.  Called by
 * the store with the engine unlocked: the read lock for the test. */
static int kw_accept_locked(uint64_t id, void *ctx)
{
	const qctx *c = ctx;
	if (c->bits)
		return id < c->nbits && (c->bits[id >> 6] >> (id & 63) & 1);
	pthread_rwlock_rdlock(&((knytt_engine *)c->e)->lock);
	int ok = label_passes(id, ctx);
	pthread_rwlock_unlock(&((knytt_engine *)c->e)->lock);
	return ok;
}

static void qctx_init(qctx *c, const knytt_engine *e, const knytt_filter *f)
{
	memset(c, 0, sizeof *c);
	c->e = e;
	c->f = f;
	if (f && f->category_prefix)
		c->plen = strlen(f->category_prefix);
}

typedef struct bits_fill {
	qctx *c;
	const eitem *items;
} bits_fill;

static void set_if_passes(uint32_t row, void *ctx)
{
	bits_fill *b = ctx;
	const eitem *it = &b->items[row];
	if (item_passes(b->c, it))
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
static int filter_bits(knytt_engine *e, qctx *c)
{
	const knytt_filter *f = c->f;
	if (!f || !(c->plen || has_price_range(f)))
		return KNYTT_OK;
	c->nbits = (size_t)e->max_id + 1;
	c->bits = calloc((c->nbits + 63) / 64, sizeof *c->bits);
	if (!c->bits)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	bits_fill b = { c, e->items };
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
	if (has_price_range(f) && price_rows_of(e, f, set_if_passes, &b) == 0)
		return KNYTT_OK;
	for (size_t r = 0; r < e->nitems; r++)
		set_if_passes((uint32_t)r, &b);
	return KNYTT_OK;
}

static void qctx_done(qctx *c)
{
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
static int filter_cands(knytt_engine *e, qctx *c)
{
	const knytt_filter *f = c->f;
	if (!e->rowvec_ok || !f || !(c->plen || has_price_range(f)))
		return 0;
	if (!(c->cand = malloc(SCAN_MAX * sizeof *c->cand)))
		return 0;
	c->capcand = SCAN_MAX;
	c->ncand = 0;
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
	return it->has_vec && item_passes(s->c, it);
}

/* Filtered k-NN on the index: the bitset when there is one. */
static int ann(const knytt_engine *e, qctx *c, const float *q, size_t kk,
	       uint64_t *lab, float *dist)
{
	unsigned ef = e->efs > kk ? e->efs : (unsigned)kk;
	if (c->bits)
		return knytt_index_search_bitset(e->ix, q, e->dim, kk, ef,
						 c->bits, c->nbits, lab, dist);
	return knytt_index_search_filter(e->ix, q, e->dim, kk, ef,
					 label_passes, c, lab, dist);
}

/* Filtered k-NN by the exact scan of scan.c over c->cand (filter_cands
 * gave them): labels and distances as ann gives them. */
static int scan_one(const knytt_engine *e, const qctx *c, const float *q,
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

static void fill(const knytt_engine *e, knytt_result *r, uint32_t row,
		 double score, knytt_reason why, uint64_t because)
{
	const eitem *it = &e->items[row];
	r->item_id = it->id;
	snprintf(r->ext_id, sizeof r->ext_id, "%s", it->ext_id);
	r->score = score;
	r->reason = why;
	r->because = because;
}

/* The exact search of scan.c for nq taste vectors at once: list j gets
 * up to kk results into res[j] (count in n[j]), reason why[j]. */
static int scan_tastes(const knytt_engine *e, const qctx *c,
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
			fill(e, &res[j][n[j]++], orow[j * kk + i],
			     osc[j * kk + i], why[j], because[j]);
	free(orow);
	free(osc);
	return KNYTT_OK;
}

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
	size_t want = k;
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
		if (!(s > 0) || !item_passes(c, it))
			continue;
		/* heap keeps the smallest keys: use -score */
		if ((float)-s < knytt__topk_worst(&t))
			knytt__topk_push(&t, (float)-s, r);
	}
	size_t got = knytt__topk_drain(&t, rows, sc);
	for (size_t i = 0; i < got && n < k; i++) {
		if (taken(out, n, e->items[rows[i]].id))
			continue;
		fill(e, &out[n++], (uint32_t)rows[i], -sc[i],
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
	for (size_t i = 0; i < t->n && n < k; i++) {
		const eitem *it = &e->items[t->row[i]];
		double s = h >= 0 ? knytt__trend_now(it, h, now) : it->pop;
		if (!(s > 0) || !item_passes(c, it) || taken(out, n, it->id))
			continue;
		fill(e, &out[n++], t->row[i], s,
		     h >= 0 ? KNYTT_REASON_TRENDING : KNYTT_REASON_POPULAR, 0);
	}
	*full = n < k && t->n == TOPN;
	return n;
}

/* Trending (h >= 0) or popular items after out[0..*n): the head of the
 * kept list, and only when that runs out, a scan of the passing items
 * (their bitset built now if the query has none yet). */
static int fallback(knytt_engine *e, qctx *c, int h, int64_t now, size_t k,
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
	if (c->bits || (rc = filter_bits(e, c)) == KNYTT_OK)
		*n = fallback_scan(e, c, h, now, k, out, *n);
	pthread_rwlock_unlock(&e->stat_lock);
	return rc;
}

static double score_of(const knytt_engine *e, float dist)
{
	/* IP index: dist = -q.x; cosine: dist = 1 - cos */
	return e->metric == KNYTT_METRIC_IP ? -dist : 1.0 - dist;
}

static int check_query(const knytt_engine *e, size_t k, const char *fn)
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

/* -------------------------------------------------------------- recommend */

/* Maximal marginal relevance: re-orders cand[0..n) so each pick
 * maximizes lambda * relevance - (1 - lambda) * max cosine to the
 * picks so far; relevance is rescaled to 0..1 first. */
static void mmr(const knytt_engine *e, knytt_result *cand, size_t n,
		size_t k, double lambda)
{
	uint32_t d = e->dim;
	float *v = malloc(n * d * sizeof *v);
	double *maxsim = malloc(n * sizeof *maxsim);
	if (!v || !maxsim)
		goto out;
	double lo = INFINITY, hi = -INFINITY;
	for (size_t i = 0; i < n; i++) {
		if (knytt_index_get(e->ix, cand[i].item_id, v + i * d, d))
			memset(v + i * d, 0, d * sizeof *v);
		knytt__normalize(v + i * d, d);
		maxsim[i] = -1.0;
		lo = fmin(lo, cand[i].score);
		hi = fmax(hi, cand[i].score);
	}
	double span = hi > lo ? hi - lo : 1.0;
	const knytt__vec_ops *ops = knytt__vec();
	for (size_t pick = 0; pick < k && pick < n; pick++) {
		size_t best = pick;
		double bv = -INFINITY;
		for (size_t i = pick; i < n; i++) {
			double rel = (cand[i].score - lo) / span;
			double div = pick ? maxsim[i] : 0.0;
			double val = lambda * rel - (1 - lambda) * div;
			if (val > bv) {
				bv = val;
				best = i;
			}
		}
		knytt_result tr = cand[pick];
		cand[pick] = cand[best];
		cand[best] = tr;
		float tv[4096];
		memcpy(tv, v + pick * d, d * sizeof *v);
		memcpy(v + pick * d, v + best * d, d * sizeof *v);
		memcpy(v + best * d, tv, d * sizeof *v);
		double tm = maxsim[pick];
		maxsim[pick] = maxsim[best];
		maxsim[best] = tm;
		for (size_t i = pick + 1; i < n; i++) {
			double s = ops->dot(v + i * d, v + pick * d, d);
			if (s > maxsim[i])
				maxsim[i] = s;
		}
	}
out:
	free(v);
	free(maxsim);
}

static int cmp_score(const void *a, const void *b)
{
	const knytt_result *x = a, *y = b;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->item_id < y->item_id ? -1 : x->item_id > y->item_id;
}

/* One taste query: up to kk filtered results into res[0..*n). */
static int search_taste(const knytt_engine *e, qctx *c, const float *q,
			size_t kk, uint64_t *lab, float *dist,
			knytt_result *res, size_t *n, knytt_reason why,
			uint64_t because)
{
	int got = ann(e, c, q, kk, lab, dist);
	if (got < 0)
		return got;
	for (int i = 0; i < got; i++)
		fill(e, &res[(*n)++], knytt__engine_row(e, lab[i]),
		     score_of(e, dist[i]), why, because);
	return KNYTT_OK;
}

/*
 * Fuses the long-term list a and the session list b by weighted
 * reciprocal rank: score = (1 - f) / (1 + rank in a) + f / (1 + rank in
 * b).  With f = 0.5 the two lists alternate; with f = 0.25 the session
 * gets about one slot in four; an item on both lists adds up.  Scores
 * are comparable within the answer and the result is sorted by them.
 * The reason is the list that contributed more.  Writes at most cap
 * entries into dst (which may be a: a is copied first).
 */
static size_t fuse_lists(const knytt_result *a, size_t na,
			 const knytt_result *b, size_t nb, float f, size_t cap,
			 knytt_result *dst)
{
	knytt_result *t = malloc((na + nb + 1) * sizeof *t);
	double *part_b = malloc((na + nb + 1) * sizeof *part_b);
	if (!t || !part_b) {
		free(t);
		free(part_b);
		return 0;
	}
	size_t n = 0;
	for (size_t i = 0; i < na; i++) {
		t[n] = a[i];
		t[n].score = (1.0 - f) / (1.0 + (double)i);
		part_b[n++] = 0;
	}
	for (size_t j = 0; j < nb; j++) {
		double sb = f / (1.0 + (double)j);
		size_t i;
		for (i = 0; i < n && t[i].item_id != b[j].item_id; i++)
			;
		if (i == n) {
			t[n] = b[j];
			t[n].score = 0;
			part_b[n++] = 0;
		}
		t[i].score += sb;
		part_b[i] += sb;
		if (part_b[i] > t[i].score - part_b[i]) {
			t[i].reason = b[j].reason;
			t[i].because = b[j].because;
		}
	}
	qsort(t, n, sizeof *t, cmp_score);
	if (n > cap)
		n = cap;
	memcpy(dst, t, n * sizeof *dst);
	free(t);
	free(part_b);
	return n;
}

typedef struct idres {
	uint64_t id;
	const knytt_result *r;
} idres;

static int cmp_idres(const void *a, const void *b)
{
	const idres *x = a, *y = b;
	return (x->id > y->id) - (x->id < y->id);
}

/* The entry of @p id in the sorted by[0..n), or NULL. */
static const knytt_result *find_res(const idres *by, size_t n, uint64_t id)
{
	idres key = {id, NULL};
	const idres *hit = n ? bsearch(&key, by, n, sizeof *by, cmp_idres)
			     : NULL;
	return hit ? hit->r : NULL;
}

/*
 * Blends the personal list cand[0..*n) with trending list e->blend_h
 * (popularity for -1)
 * (its top kk items that pass the query's filter and exclusions) by the
 * rule of lib/model/blend.h, with the weight the model's tuning chose;
 * the result replaces cand (at most kk entries).  A result keeps the
 * reason of the list that contributed more to it.
 */
static int blend_recent(knytt_engine *e, qctx *c, int64_t now, size_t kk,
			knytt_result *cand, size_t *n)
{
	size_t np = 0, na = *n, nt = 0;
	knytt_result *pl = malloc(kk * sizeof *pl);
	knytt_result *res = malloc(kk * sizeof *res);
	uint64_t *ids = malloc((na + kk + 1) * sizeof *ids);
	uint64_t *out = malloc((na + kk + 1) * sizeof *out);
	double *sc = malloc((na + kk + 1) * sizeof *sc);
	unsigned char *fb = malloc(na + kk + 1);
	idres *by = malloc((na + kk + 1) * sizeof *by);
	int rc = KNYTT_OK;
	if (!pl || !res || !ids || !out || !sc || !fb || !by) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		goto out;
	}
	if ((rc = fallback(e, c, e->blend_h, now, kk, pl, &np)))
		goto out;
	/* by[0..na): the personal list by id; by[na..na+np): trending */
	for (size_t i = 0; i < na + np; i++) {
		const knytt_result *r = i < na ? &cand[i] : &pl[i - na];
		ids[i] = r->item_id;
		by[i] = (idres){r->item_id, r};
	}
	qsort(by, na, sizeof *by, cmp_idres);
	qsort(by + na, np, sizeof *by, cmp_idres);
	nt = knytt__blend_fuse(ids, na, ids + na, np, e->blend_w, kk, out, sc,
			       fb);
	for (size_t i = 0; i < nt; i++) {
		const knytt_result *pr = find_res(by, na, out[i]);
		const knytt_result *tr = find_res(by + na, np, out[i]);
		res[i] = *(fb[i] && tr ? tr : pr ? pr : tr);
		res[i].score = sc[i];
	}
	if (nt > 0 || na + np == 0) { /* 0 of some: out of memory */
		memcpy(cand, res, nt * sizeof *cand);
		*n = nt;
	}
out:
	free(pl);
	free(res);
	free(ids);
	free(out);
	free(sc);
	free(fb);
	free(by);
	return rc;
}

int knytt_engine_recommend(knytt_engine *e, const char *user, size_t k,
			   const knytt_filter *filter,
			   const knytt_rec_options *opt, knytt_result *out)
{
	int rc = check_query(e, k, "knytt_engine_recommend");
	knytt_filter fbuf;
	if (rc || (rc = check_filter(&filter, &fbuf)))
		return rc;
	if (!user || !*user || !out)
		return knytt__err(KNYTT_EINVAL, "recommend: %s is NULL or empty",
				  !out ? "out" : "user");
	double lambda = 1.0;
	int seen = e->exclude_seen;
	if (opt) {
		/* members beyond an older caller's struct_size: defaults */
		if (!KNYTT__HAS(opt, knytt_rec_options, mmr_lambda))
			return knytt__err(KNYTT_EINVAL,
					  "options.struct_size is %zu, too small "
					  "(use knytt_rec_options_init)",
					  opt->struct_size);
		if (!(opt->mmr_lambda >= 0 && opt->mmr_lambda <= 1))
			return knytt__err(KNYTT_EINVAL,
					  "options.mmr_lambda must be in 0..1");
		lambda = opt->mmr_lambda;
		if (KNYTT__HAS(opt, knytt_rec_options, exclude_seen) &&
		    opt->exclude_seen >= 0)
			seen = opt->exclude_seen != 0;
	}
	/* the profile (loaded from the store first if need be, with no
	 * lock held), then its own lock for the whole query -- the seen set
	 * and the taste are read throughout -- and the engine's read lock */
	knytt__profile *u = knytt__engine_user(e, user, 0, &rc);
	if (!u) /* unknown user, out of memory, a store error */
		return rc;
	pthread_mutex_lock(&u->mu);
	pthread_rwlock_rdlock(&e->lock);
	knytt__engine_user_fresh(e, u);
	int64_t now = knytt__engine_now(e);
	uint32_t d = e->dim;
	float *q = malloc(d * sizeof *q), share = 0;
	size_t kk = lambda < 1 ? 4 * k : k;
	/* the blend with recent popularity reads deeper lists (blend.h) */
	if (e->blend_w > 0 && kk < knytt__blend_depth(k))
		kk = knytt__blend_depth(k);
	uint64_t *lab = malloc(kk * sizeof *lab);
	float *dist = malloc(kk * sizeof *dist);
	knytt_result *cand = malloc(kk * sizeof *cand);
	float *v = malloc(d * sizeof *v);
	size_t n = 0;
	qctx c;
	qctx_init(&c, e, filter);
	if (!q || !lab || !dist || !cand || !v) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		goto out;
	}
	/* the whole history's items, by the types the rule names: one
	 * lookup in the profile's seen set per candidate */
	c.prof = u;
	c.excl_mask = seen ? e->excl_types : 0;
	/* a selective category or price range: the exact scan (scan.c);
	 * otherwise the passing set as a bitset for the index */
	int scanned = filter_cands(e, &c);
	if (!scanned && (rc = filter_bits(e, &c)))
		goto out;
	int warm = knytt__taste_blend(&u->taste, d, now, e->sess_half_life,
				      e->sess_blend, q, &share);
	if (warm && knytt_index_count(e->ix) > 0) {
		/*
		 * Long-term and session are searched separately and fused by
		 * rank (fuse_lists): about a share f of the slots goes to the
		 * session's best items.  A linear blend of the two vectors
		 * cannot do this: the long-term vector scores other
		 * categories below zero, so a fresh interest would need f
		 * near 1 to show at all.
		 */
		size_t nl = 0, ns = 0;
		knytt_result *lc = cand, *sc = NULL;
		if (scanned) {
			/* both tastes in one exact pass over the few passing
			 * items (scan.c) */
			float *qv[2];
			knytt_result *res[2];
			size_t got[2] = { 0, 0 }, nq = 0;
			knytt_reason why[2];
			uint64_t bec[2];
			float *sv = NULL;
			if (share > 0 && !(sc = malloc(kk * sizeof *sc))) {
				rc = knytt__err(KNYTT_ENOMEM, "out of memory");
				goto out;
			}
			if (share > 0 && !(sv = malloc(d * sizeof *sv))) {
				free(sc);
				rc = knytt__err(KNYTT_ENOMEM, "out of memory");
				goto out;
			}
			if (share < 1) {
				memcpy(v, u->taste.longv, d * sizeof *v);
				knytt__normalize(v, d);
				qv[nq] = v;
				res[nq] = lc;
				why[nq] = KNYTT_REASON_TASTE;
				bec[nq++] = 0;
			}
			if (share > 0) {
				memcpy(sv, u->taste.sess, d * sizeof *sv);
				knytt__normalize(sv, d);
				qv[nq] = sv;
				res[nq] = sc;
				why[nq] = KNYTT_REASON_SESSION;
				bec[nq++] = u->taste.sess_item;
			}
			rc = scan_tastes(e, &c, (const float *const *)qv, nq,
					 kk, res, got, why, bec);
			free(sv);
			if (rc) {
				free(sc);
				goto out;
			}
			nl = share < 1 ? got[0] : 0;
			ns = share > 0 ? got[nq - 1] : 0;
		} else if (share < 1) {
			memcpy(v, u->taste.longv, d * sizeof *v);
			knytt__normalize(v, d);
			if ((rc = search_taste(e, &c, v, kk, lab, dist, lc, &nl,
					       KNYTT_REASON_TASTE, 0)))
				goto out;
		}
		if (share > 0 && !scanned) {
			sc = malloc(kk * sizeof *sc);
			if (!sc) {
				rc = knytt__err(KNYTT_ENOMEM, "out of memory");
				goto out;
			}
			memcpy(v, u->taste.sess, d * sizeof *v);
			knytt__normalize(v, d);
			if ((rc = search_taste(e, &c, v, kk, lab, dist, sc, &ns,
					       KNYTT_REASON_SESSION,
					       u->taste.sess_item))) {
				free(sc);
				goto out;
			}
		}
		if (sc)
			n = fuse_lists(lc, nl, sc, ns, share, kk, cand);
		else
			n = nl; /* long-term only: its own scores and order */
		free(sc);
		if (e->blend_w > 0 &&
		    (rc = blend_recent(e, &c, now, kk, cand, &n)))
			goto out;
		if (lambda < 1 && n > 1)
			mmr(e, cand, n, k, lambda);
		if (n > k)
			n = k;
		memcpy(out, cand, n * sizeof *out);
	}
	/* cold users, or too few personal results: trending, then popular */
	if ((rc = fallback(e, &c, 1, now, k, out, &n)) ||
	    (rc = fallback(e, &c, -1, now, k, out, &n)))
		goto out;
	rc = (int)n;
out:
	pthread_rwlock_unlock(&e->lock);
	pthread_mutex_unlock(&u->mu);
	qctx_done(&c);
	free(q);
	free(lab);
	free(dist);
	free(cand);
	free(v);
	return rc;
}

/* ---------------------------------------------------------------- similar */

typedef struct coview {
	knytt_engine *e;
	uint64_t self;
	char **users;
	size_t nu, capu;
	double *count; /* per item row */
	size_t ncount; /* rows when the count was allocated */
} coview;

static int coview_user_cb(const knytt_interaction *ix, void *ctx)
{
	coview *cv = ctx;
	for (size_t i = 0; i < cv->nu; i++)
		if (strcmp(cv->users[i], ix->user) == 0)
			return 0;
	if (cv->nu == cv->capu)
		return 0;
	size_t l = strlen(ix->user) + 1;
	cv->users[cv->nu] = malloc(l);
	if (!cv->users[cv->nu])
		return 1;
	memcpy(cv->users[cv->nu++], ix->user, l);
	return 0;
}

static int coview_item_cb(const knytt_interaction *ix, void *ctx)
{
	coview *cv = ctx;
	/* a store callback: the engine's read lock for the lookup only */
	pthread_rwlock_rdlock(&cv->e->lock);
	uint32_t r = knytt__engine_row(cv->e, ix->item_id);
	pthread_rwlock_unlock(&cv->e->lock);
	if (r < cv->ncount && ix->item_id != cv->self)
		cv->count[r] += 1;
	return 0;
}

int knytt_engine_similar(knytt_engine *e, const char *item, size_t k,
			 const knytt_filter *filter, knytt_result *out)
{
	int rc = check_query(e, k, "knytt_engine_similar");
	knytt_filter fbuf;
	if (rc || (rc = check_filter(&filter, &fbuf)))
		return rc;
	if (!item || !*item || !out)
		return knytt__err(KNYTT_EINVAL, "similar: %s is NULL or empty",
				  !out ? "out" : "item");
	pthread_rwlock_rdlock(&e->lock);
	uint32_t d = e->dim;
	uint32_t row = knytt__engine_row_by_ext(e, item);
	if (row == UINT32_MAX || e->items[row].deleted) {
		pthread_rwlock_unlock(&e->lock);
		return knytt__err(KNYTT_ENOTFOUND, "item '%s' is unknown", item);
	}
	const eitem *self = &e->items[row];
	/* a copy: the table may grow while the coview path reads the store */
	uint64_t self_id = self->id;
	qctx c;
	qctx_init(&c, e, filter);
	c.excl = &self_id;
	c.nexcl = 1;
	size_t n = 0;
	if ((rc = filter_bits(e, &c))) {
		pthread_rwlock_unlock(&e->lock);
		return rc;
	}
	if (self->has_vec) {
		/* With an inner-product index, v.x favours long (popular)
		 * vectors whatever their direction; similarity is about
		 * direction.  Take 4k candidates by inner product and rank
		 * them by cosine. */
		size_t kk = k * 4 < 40 ? 40 : k * 4;
		float *v = malloc(d * sizeof *v), *x = malloc(d * sizeof *x);
		uint64_t *lab = malloc(kk * sizeof *lab);
		float *dist = malloc(kk * sizeof *dist);
		knytt_result *cand = malloc(kk * sizeof *cand);
		if (!v || !x || !lab || !dist || !cand) {
			rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		} else if ((rc = knytt_index_get(e->ix, self->id, v, d)) == 0) {
			knytt__normalize(v, d);
			int got = ann(e, &c, v, kk, lab, dist);
			if (got < 0)
				rc = got;
			size_t m = 0;
			for (int i = 0; i < got; i++) {
				if (knytt_index_get(e->ix, lab[i], x, d))
					continue;
				knytt__normalize(x, d);
				fill(e, &cand[m++], knytt__engine_row(e, lab[i]),
				     knytt__vec()->dot(v, x, d),
				     KNYTT_REASON_SIMILAR, self->id);
			}
			qsort(cand, m, sizeof *cand, cmp_score);
			n = m < k ? m : k;
			memcpy(out, cand, n * sizeof *out);
		}
		free(v);
		free(x);
		free(lab);
		free(dist);
		free(cand);
	} else {
		/* no vector yet: items the same users interacted with */
		coview cv = { .e = e, .self = self->id, .capu = 64 };
		cv.ncount = e->nitems;
		cv.users = calloc(cv.capu, sizeof *cv.users);
		cv.count = calloc(e->nitems ? e->nitems : 1, sizeof *cv.count);
		if (!cv.users || !cv.count) {
			rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		} else {
			/* the store is read with the engine unlocked (the
			 * filter's bitset and cv.count stay ours) */
			pthread_rwlock_unlock(&e->lock);
			pthread_mutex_lock(&e->st_lock);
			rc = knytt_store_item_recent(e->st, item, 500,
						     coview_user_cb, &cv);
			for (size_t i = 0; rc >= 0 && i < cv.nu; i++)
				rc = knytt_store_user_recent(e->st, cv.users[i],
							     100,
							     coview_item_cb,
							     &cv);
			pthread_mutex_unlock(&e->st_lock);
			pthread_rwlock_rdlock(&e->lock);
			if (rc == KNYTT_ENOTFOUND)
				rc = KNYTT_OK;
			if (rc > 0)
				rc = KNYTT_OK;
			knytt__pair *heap = malloc(k * sizeof *heap);
			uint64_t *rows = malloc(k * sizeof *rows);
			float *sc = malloc(k * sizeof *sc);
			if (rc == KNYTT_OK && heap && rows && sc) {
				knytt__topk t = { heap, 0, k };
				for (size_t r = 0; r < cv.ncount; r++)
					if (cv.count[r] > 0 &&
					    item_passes(&c, &e->items[r]) &&
					    (float)-cv.count[r] <
						    knytt__topk_worst(&t))
						knytt__topk_push(
							&t, (float)-cv.count[r],
							r);
				size_t got = knytt__topk_drain(&t, rows, sc);
				for (size_t i = 0; i < got; i++)
					fill(e, &out[n++], (uint32_t)rows[i],
					     -sc[i], KNYTT_REASON_COVIEW,
					     self_id);
			} else if (rc == KNYTT_OK) {
				rc = knytt__err(KNYTT_ENOMEM, "out of memory");
			}
			free(heap);
			free(rows);
			free(sc);
		}
		for (size_t i = 0; i < cv.nu; i++)
			free(cv.users[i]);
		free(cv.users);
		free(cv.count);
	}
	pthread_rwlock_unlock(&e->lock);
	qctx_done(&c);
	return rc < 0 ? rc : (int)n;
}

/* ----------------------------------------------------------------- search */

typedef struct fused {
	uint64_t id;
	double score;
	int kw, vec; /* which lists it came from */
} fused;

static fused *fuse_find(fused *f, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].id == id)
			return &f[i];
	return NULL;
}

static int cmp_fused(const void *a, const void *b)
{
	const fused *x = a, *y = b;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* The search log: every search, with its result count; with write-behind
 * and no id wanted, by the writer thread.  Caller holds no engine lock. */
static int search_log(knytt_engine *e, const char *lq, const char *lu, int n,
		      uint64_t *log_id)
{
	int lrc;
	if (e->fq_running && !log_id) {
		/* the store's checks now, so a bad entry fails this call */
		lrc = knytt__search_log_check(lq, lu);
		if (lrc == 0)
			lrc = knytt__fq_push_log(e, lq, lu, n,
						 knytt__engine_now(e));
	} else {
		uint64_t lid = 0;
		pthread_mutex_lock(&e->st_lock);
		lrc = knytt_store_search_log(e->st, lq, lu, n, 0, &lid);
		pthread_mutex_unlock(&e->st_lock);
		if (lrc == 0 && log_id)
			*log_id = lid;
	}
	return lrc;
}

int knytt_engine_search(knytt_engine *e, const char *text, const float *vec,
			uint32_t dim, size_t k, const knytt_filter *filter,
			const char *user, knytt_result *out, uint64_t *log_id)
{
	int rc = check_query(e, k, "knytt_engine_search");
	knytt_filter fbuf;
	if (rc || (rc = check_filter(&filter, &fbuf)))
		return rc;
	if (!out)
		return knytt__err(KNYTT_EINVAL, "search: out is NULL");
	int has_text = text && *text;
	if (!has_text && !vec)
		return knytt__err(KNYTT_EINVAL,
				  "search: give a text, a vector or both");
	if (vec && dim != e->dim)
		return knytt__err(KNYTT_EINVAL,
				  "query vector has %u dimensions, engine has %u",
				  dim, e->dim);
	uint32_t d = e->dim;
	size_t cap = k * 4 < 50 ? 50 : k * 4;
	uint64_t *kw = malloc(cap * sizeof *kw), *lab = malloc(cap * 8);
	float *dist = malloc(cap * sizeof *dist), *q = malloc(d * sizeof *q);
	float *t = malloc(d * sizeof *t), *v = malloc(d * sizeof *v);
	fused *f = malloc(2 * cap * sizeof *f);
	if (!kw || !lab || !dist || !q || !t || !v || !f) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		goto early;
	}
	/* the user's taste for the personal re-rank (loads the user) */
	int personal = 0;
	float share;
	if (user && *user) {
		int urc;
		knytt__profile *u = knytt__engine_user(e, user, 1, &urc);
		if (u) {
			pthread_mutex_lock(&u->mu);
			pthread_rwlock_rdlock(&e->lock);
			knytt__engine_user_fresh(e, u);
			personal = knytt__taste_blend(&u->taste, d,
						      knytt__engine_now(e),
						      e->sess_half_life,
						      e->sess_blend, t, &share);
			pthread_rwlock_unlock(&e->lock);
			pthread_mutex_unlock(&u->mu);
		}
		if (personal)
			knytt__normalize(t, d);
	}
	/* the query vector: given, or the model's text path (memory, under
	 * the read lock), or the embedding service (HTTP, with no lock) */
	int has_q = 0;
	if (vec) {
		memcpy(q, vec, d * sizeof *q);
		has_q = 1;
	} else if (has_text) {
		pthread_rwlock_rdlock(&e->lock);
		int tower = e->tt != NULL;
		if (tower)
			has_q = knytt_twotower_embed_query(e->tt, text, q) ==
				KNYTT_OK;
		pthread_rwlock_unlock(&e->lock);
		if (!tower && e->emb && e->kind == KNYTT_MODEL_EXTERNAL) {
			const char *texts[1] = { text };
			rc = knytt_embedder_embed(e->emb, 1, texts, q, d);
			has_q = rc == KNYTT_OK;
		}
		if (rc < 0)
			goto early;
	}

	pthread_rwlock_rdlock(&e->lock);
	qctx c;
	qctx_init(&c, e, filter);
	size_t nf = 0, n = 0;
	/*
	 * The filter: a selective category or price range gives its
	 * candidate rows, and the vector half is an exact scan over them
	 * (scan.c), as in recommend.  A category also gives the bitset the
	 * keyword half tests its matches against (built from the
	 * category's row list, and used by the index when the category is
	 * too big to scan).  A wide price range gets no bitset: testing
	 * every row in the range (tens of thousands, ~1 ms) costs more
	 * than the predicate on the matches and index nodes met.
	 */
	int vec_half = has_q && knytt_index_count(e->ix) > 0;
	int scanned = vec_half && filter_cands(e, &c);
	if (c.plen && (rc = filter_bits(e, &c)))
		goto out;
	if (has_text) {
		/* a filter is tested in memory (the bitset, or the item
		 * table) before the store reads anything about a match */
		int filtered = filter &&
			       (c.plen || has_price_range(filter) ||
				filter->in_stock_only ||
				!isnan(filter->min_quality));
		/* the store with the engine unlocked; the filter callback
		 * takes the read lock for its test (st_lock, then lock) */
		pthread_rwlock_unlock(&e->lock);
		pthread_mutex_lock(&e->st_lock);
		int nk = filtered ? knytt_store_search_fn(e->st, text,
							  kw_accept_locked, &c,
							  kw, NULL, cap)
				  : knytt_store_search(e->st, text, NULL, NAN,
						       NAN, 0, kw, NULL, cap);
		pthread_mutex_unlock(&e->st_lock);
		pthread_rwlock_rdlock(&e->lock);
		if (nk == KNYTT_EINVAL)
			nk = 0; /* a query with no word: vector part only */
		if (nk < 0) {
			rc = nk;
			goto out;
		}
		/* reciprocal rank fusion, k = 60 (Cormack et al. 2009) */
		size_t rank = 0;
		for (int i = 0; i < nk; i++) {
			uint32_t r = knytt__engine_row(e, kw[i]);
			if (r == UINT32_MAX || !item_passes(&c, &e->items[r]))
				continue;
			f[nf].id = kw[i];
			f[nf].score = 1.0 / (60.0 + (double)++rank);
			f[nf].kw = 1;
			f[nf++].vec = 0;
		}
	}
	if (vec_half) {
		int nv = scanned ? scan_one(e, &c, q, cap, lab, dist)
				 : ann(e, &c, q, cap, lab, dist);
		if (nv < 0) {
			rc = nv;
			goto out;
		}
		for (int i = 0; i < nv; i++) {
			double s = 1.0 / (60.0 + (double)(i + 1));
			fused *x = fuse_find(f, nf, lab[i]);
			if (x) {
				x->score += s;
				x->vec = 1;
			} else {
				f[nf].id = lab[i];
				f[nf].score = s;
				f[nf].kw = 0;
				f[nf++].vec = 1;
			}
		}
	}
	if (personal) {
		/* nudge toward the shopper: up to +50% for an item pointing
		 * the same way as their taste, -50% for the opposite */
		for (size_t i = 0; i < nf; i++) {
			if (knytt_index_get(e->ix, f[i].id, v, d) != KNYTT_OK)
				continue;
			knytt__normalize(v, d);
			f[i].score *= 1.0 + 0.5 * knytt__vec()->dot(t, v, d);
		}
	}
	qsort(f, nf, sizeof *f, cmp_fused);
	n = nf < k ? nf : k;
	for (size_t i = 0; i < n; i++)
		fill(e, &out[i], knytt__engine_row(e, f[i].id), f[i].score,
		     f[i].kw && f[i].vec ? KNYTT_REASON_HYBRID
		     : f[i].kw	       ? KNYTT_REASON_KEYWORD
				       : KNYTT_REASON_SEMANTIC,
		     0);
	rc = (int)n;
out:
	pthread_rwlock_unlock(&e->lock);
	qctx_done(&c);
	if (rc >= 0) {
		int lrc = search_log(e, has_text ? text : "(vector)",
				     user && *user ? user : NULL, (int)n,
				     log_id);
		if (lrc < 0)
			rc = lrc;
	}
early:
	free(kw);
	free(lab);
	free(dist);
	free(q);
	free(t);
	free(v);
	free(f);
	return rc;
}

/* --------------------------------------------------------------- trending */

int knytt_engine_trending(knytt_engine *e, size_t k, double window_s,
			  const char *category, knytt_result *out)
{
	int rc = check_query(e, k, "knytt_engine_trending");
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
	qctx_init(&c, e, &f);
	size_t n = 0;
	rc = fallback(e, &c, h, knytt__engine_now(e), k, out, &n);
	pthread_rwlock_unlock(&e->lock);
	qctx_done(&c);
	return rc < 0 ? rc : (int)n;
}
