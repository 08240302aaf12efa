/*
 * filterx.c -- the engine's filter indexes: which rows of the item table
 * a category prefix or a price range can match, so a filtered query
 * tests a few thousand rows instead of the whole table.
 *
 *  - Category lists (catlist): the rows of one prefix.  Every prefix
 *    that ends at a '/' boundary of some item's category ("shoes",
 *    "shoes/running") gets its list at open, in one sorted pass; other
 *    prefixes are built on first use by a scan.  Up to NCATLIST lists
 *    are kept, then the oldest ad-hoc ones are replaced.  (With 64 lists
 *    and round-robin replacement, the 120 prefixes of the benchmark shop
 *    evicted each other and every second category query scanned the
 *    whole table: 1.4 ms of a 1.6 ms median.)
 *  - The price order: (price, row) pairs sorted by price, as of the last
 *    sort, plus the rows added or re-priced since.  A price range is two
 *    binary searches plus the recent rows; the whole table is re-sorted
 *    when the recent rows pass an eighth of it.  (A price band scanned
 *    all 100k rows: about 1 ms per query.)
 *
 * Both are supersets: every row they give is tested against the whole
 * filter by the query (item_passes), so a row that left a category or
 * changed its price since costs a test, never a wrong answer.  Both are
 * guarded by e->cat_mu, taken inside the engine lock.
 */
#include "engine_int.h"

#include <stdlib.h>
#include <string.h>

static int list_add(catlist *cl, uint32_t row)
{
	if (cl->n == cl->cap) {
		size_t nc = cl->cap ? cl->cap * 2 : 64;
		uint32_t *nr = realloc(cl->rows, nc * sizeof *nr);
		if (!nr)
			return -1;
		cl->rows = nr;
		cl->cap = nc;
	}
	cl->rows[cl->n++] = row;
	return 0;
}

static void list_drop(knytt_engine *e, size_t i)
{
	free(e->cats[i].prefix);
	free(e->cats[i].rows);
	e->cats[i] = e->cats[--e->ncats];
	memset(&e->cats[e->ncats], 0, sizeof e->cats[e->ncats]);
	if (e->cat_next > e->ncats)
		e->cat_next = 0;
}

static catlist *list_find(knytt_engine *e, const char *prefix, size_t plen)
{
	for (size_t i = e->ncats; i-- > 0;)
		if (e->cats[i].plen == plen &&
		    memcmp(e->cats[i].prefix, prefix, plen) == 0)
			return &e->cats[i];
	return NULL;
}

/* A new, empty list for @p prefix: a free slot, else the next slot of
 * the round-robin (which may hold a list built at open: it comes back
 * on demand). */
static catlist *list_new(knytt_engine *e, const char *prefix, size_t plen)
{
	char *p = malloc(plen + 1);
	if (!p)
		return NULL;
	memcpy(p, prefix, plen);
	p[plen] = '\0';
	size_t slot;
	if (e->ncats < NCATLIST) {
		slot = e->ncats++;
	} else {
		slot = e->cat_next++ % NCATLIST;
		free(e->cats[slot].prefix);
		free(e->cats[slot].rows);
	}
	memset(&e->cats[slot], 0, sizeof e->cats[slot]);
	e->cats[slot].prefix = p;
	e->cats[slot].plen = plen;
	return &e->cats[slot];
}

const catlist *knytt__cat_rows(knytt_engine *e, const char *prefix,
			       size_t plen)
{
	catlist *cl = list_find(e, prefix, plen);
	if (cl)
		return cl;
	if (!(cl = list_new(e, prefix, plen)))
		return NULL;
	for (size_t r = 0; r < e->nitems; r++) {
		if (!knytt__cat_match(e->items[r].category, prefix, plen))
			continue;
		if (list_add(cl, (uint32_t)r)) {
			list_drop(e, (size_t)(cl - e->cats));
			return NULL;
		}
	}
	return cl;
}

static int cmp_row_cat(const void *a, const void *b, void *ctx)
{
	const eitem *it = ctx;
	return strcmp(it[*(const uint32_t *)a].category,
		      it[*(const uint32_t *)b].category);
}

void knytt__cats_prebuild(knytt_engine *e)
{
	uint32_t *rows = malloc((e->nitems ? e->nitems : 1) * sizeof *rows);
	if (!rows)
		return; /* lists are then built on first use */
	size_t n = 0;
	for (size_t r = 0; r < e->nitems; r++)
		if (e->items[r].category)
			rows[n++] = (uint32_t)r;
	qsort_r(rows, n, sizeof *rows, cmp_row_cat, e->items);
	pthread_mutex_lock(&e->cat_mu);
	/* half the slots at most: the rest is for prefixes asked for later */
	size_t cap = NCATLIST / 2;
	catlist *lists[64];
	size_t nl = 0;
	for (size_t i = 0; i < n;) {
		const char *cat = e->items[rows[i]].category;
		size_t j = i + 1;
		while (j < n && strcmp(e->items[rows[j]].category, cat) == 0)
			j++;
		/* the lists of every '/' boundary of this category */
		nl = 0;
		for (size_t l = 1; cat[l - 1] && nl < 64; l++) {
			if (cat[l] != '/' && cat[l] != '\0')
				continue;
			catlist *cl = list_find(e, cat, l);
			if (!cl && e->ncats < cap)
				cl = list_new(e, cat, l);
			if (cl)
				lists[nl++] = cl;
		}
		for (size_t x = 0; x < nl; x++)
			for (size_t k = i; k < j; k++)
				if (list_add(lists[x], rows[k]))
					goto out; /* no memory: on demand */
		i = j;
	}
out:
	pthread_mutex_unlock(&e->cat_mu);
	free(rows);
}

typedef struct pricepair {
	double price;
	uint32_t row;
} pricepair;

static int cmp_price(const void *a, const void *b)
{
	const pricepair *x = a, *y = b;
	return x->price < y->price ? -1 : x->price > y->price;
}

/* Caller holds cat_mu.  Sorts every row by its current price. */
static int price_sort(knytt_engine *e)
{
	pricepair *p = malloc((e->nitems ? e->nitems : 1) * sizeof *p);
	if (!p)
		return -1;
	size_t n = 0;
	/* deleted rows too: one brought back by an upsert keeps its price
	 * and is found again (queries skip deleted rows) */
	for (size_t r = 0; r < e->nitems; r++)
		p[n++] = (pricepair){ e->items[r].price, (uint32_t)r };
	qsort(p, n, sizeof *p, cmp_price);
	free(e->price_sorted);
	e->price_sorted = p;
	e->nprice_sorted = n;
	e->nprice_recent = 0;
	e->price_ok = 1;
	return 0;
}

void knytt__filterx_changed(knytt_engine *e, uint32_t row, int moved,
			    int repriced)
{
	pthread_mutex_lock(&e->cat_mu);
	const char *cat = e->items[row].category;
	if (moved && cat) {
		/* the item enters the cached prefixes it now matches */
		for (size_t i = 0; i < e->ncats; i++) {
			catlist *cl = &e->cats[i];
			if (knytt__cat_match(cat, cl->prefix, cl->plen) &&
			    list_add(cl, row)) {
				list_drop(e, i); /* rebuilt when used */
				i--;
			}
		}
	}
	if (repriced && e->price_ok) {
		if (e->nprice_recent == e->cap_price_recent) {
			size_t nc = e->cap_price_recent
					    ? e->cap_price_recent * 2
					    : 256;
			uint32_t *nr = realloc(e->price_recent,
					       nc * sizeof *nr);
			if (!nr) {
				e->price_ok = 0; /* re-sorted when used */
				goto out;
			}
			e->price_recent = nr;
			e->cap_price_recent = nc;
		}
		e->price_recent[e->nprice_recent++] = row;
		if (e->nprice_recent > 256 + e->nprice_sorted / 8)
			e->price_ok = 0;
	}
out:
	pthread_mutex_unlock(&e->cat_mu);
}

/* First index of @p p[0..n) whose price is >= x (or > x with @p after). */
static size_t price_bound(const pricepair *p, size_t n, double x, int after)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (after ? p[mid].price <= x : p[mid].price < x)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int knytt__price_rows(knytt_engine *e, double lo, double hi,
		      void (*fn)(uint32_t row, void *ctx), void *ctx)
{
	pthread_mutex_lock(&e->cat_mu);
	if (!e->price_ok && price_sort(e)) {
		pthread_mutex_unlock(&e->cat_mu);
		return -1;
	}
	const pricepair *p = e->price_sorted;
	size_t n = e->nprice_sorted;
	size_t a = price_bound(p, n, lo, 0), b = price_bound(p, n, hi, 1);
	for (size_t i = a; i < b; i++)
		fn(p[i].row, ctx);
	for (size_t i = 0; i < e->nprice_recent; i++)
		fn(e->price_recent[i], ctx);
	pthread_mutex_unlock(&e->cat_mu);
	return 0;
}

void knytt__filterx_free(knytt_engine *e)
{
	for (size_t i = 0; i < e->ncats; i++) {
		free(e->cats[i].prefix);
		free(e->cats[i].rows);
	}
	e->ncats = 0;
	free(e->price_sorted);
	free(e->price_recent);
	e->price_sorted = NULL;
	e->price_recent = NULL;
}
