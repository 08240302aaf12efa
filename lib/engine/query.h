/*
 * query.h -- what the query files share (query.c: filters, candidates,
 * index and scan searches, results, fallbacks; recommend.c, similar.c,
 * search.c, trending in query.c).  Not API.
 */
#ifndef KNYTT_QUERY_H
#define KNYTT_QUERY_H

#include "engine_int.h"
#include "results.h"

typedef struct qctx {
	const knytt_engine *e;
	knytt__snap *snap;     /* the query's reference: its index */
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
	knytt__wbits w;        /* rows passing f->where (where_ready) */
	int w_rc;              /* where_ready's result, once tried */
} qctx;

/* A category or price range with at most this many items is answered by
 * an exact scan of the engine's vector copy (scan.c) rather than by the
 * index.  On the benchmark shop (memory-bound, dim 64) the scan costs
 * ~60-100 ns per item for both tastes, the index's filtered search
 * ~100 ns per item and taste below its own exact-scan switch (~14k
 * items) and some 0.5-1 ms above it. */
#define SCAN_MAX 16384

int knytt__q_check_filter(const knytt_filter **io, knytt_filter *tmp);
int knytt__q_item_passes(const qctx *c, const eitem *it);
int knytt__q_kw_accept_locked(uint64_t id, void *ctx);
void knytt__q_qctx_init(qctx *c, const knytt_engine *e, knytt__snap *snap,
		      const knytt_filter *f);
void knytt__q_qctx_done(qctx *c);
int knytt__q_filter_bits(knytt_engine *e, qctx *c);
int knytt__q_filter_cands(knytt_engine *e, qctx *c);
int knytt__q_ann(const knytt_engine *e, qctx *c, const float *q, size_t kk,
	       uint64_t *lab, float *dist);
/* knytt__q_ann for a taste search of shopper @p u (which: 0 long-term,
 * 1 session): the answer kept in u's memo when nothing it depends on has
 * changed, else the walk, kept for next time (annmemo.c).  Caller holds
 * u->mu and the engine's read lock. */
int knytt__q_ann_memo(knytt_engine *e, qctx *c, knytt__profile *u,
		      int which, const float *q, size_t kk, uint64_t *lab,
		      float *dist);
/* 1 when c's filter restricts nothing but exclusions (query.c). */
int knytt__q_only_exclusions(const qctx *c);
int knytt__q_scan_one(const knytt_engine *e, const qctx *c, const float *q,
		    size_t kk, uint64_t *lab, float *dist);
void knytt__q_fill(const knytt_engine *e, knytt_result *r, uint32_t row,
		 double score, knytt_reason why, uint64_t because);
int knytt__q_scan_tastes(const knytt_engine *e, const qctx *c,
		       const float *const *q, size_t nq, size_t kk,
		       knytt_result **res, size_t *n, const knytt_reason *why,
		       const uint64_t *because);
int knytt__q_fallback(knytt_engine *e, qctx *c, int h, int64_t now, size_t k,
		    knytt_result *out, size_t *n);
int knytt__q_win_fallback(knytt_engine *e, const qctx *c, int64_t win,
			  int64_t now, size_t k, knytt_result *out, size_t *n);
double knytt__q_score_of(const knytt_engine *e, float dist);
int knytt__q_check_query(const knytt_engine *e, size_t k, const char *fn);
int knytt__q_cmp_score(const void *a, const void *b);
int knytt__q_has_price_range(const knytt_filter *f);
int knytt__q_has_price_max(const knytt_filter *f);

#endif
