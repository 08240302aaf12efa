/*
 * kwsearch.c -- keyword search: the query words, FTS5 (SQLite) or
 * tsvector (PostgreSQL) with the caller's filter.  Moved from store.c.
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

#define O (st->ops)

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

int knytt__store_shareable(knytt_store *st)
{
	if (!st)
		return 0;
	return st->ops->dialect != KNYTT__SQLITE ||
	       knytt__sqlite_shareable(st->db);
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
	int rc = knytt__st_need_tenant(st);
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
		return knytt__err_field(KNYTT_EINVAL, "query",
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

int knytt__store_search_owned(knytt_store *st, const char *query,
			      knytt_accept_fn accept, void *ctx,
			      uint64_t *ids, double *scores, size_t cap)
{
	if (!accept)
		return knytt__err(KNYTT_EINVAL, "accept is NULL");
	knytt__search s = {.price_min = NAN,
			   .price_max = NAN,
			   .accept = accept,
			   .ctx = ctx,
			   .accept_all = 1};
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
