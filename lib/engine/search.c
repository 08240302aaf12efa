/*
 * search.c -- knytt_engine_search: keyword (the store's full-text) and
 * vector halves fused by reciprocal rank (fusion.c), an optional personal
 * re-rank, and the search log.  Moved from query.c.
 *
 * The query vector, when the caller gives none: the search words the
 * last training learned from the search log (lib/model/qterms.c), the
 * two-tower text path, both summed when the model has both, or the
 * external embedder.  An item whose title is the query, word for word,
 * keeps the first places whatever the vector half says: fusion may
 * reorder keyword matches, never push the exact one down.
 */
#include "query.h"
#include "../model/qterms.h"
#include "../store/store_int.h"

#include "../vec/topk.h"
#include "../vec/vec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------- search */

/* The search log: every search, with its result count; with write-behind
 * and no id wanted, by the writer thread.  Caller holds no engine lock. */
static int search_log(knytt_engine *e, const char *lq, const char *lu, int n,
		      const char *shown, uint64_t *log_id)
{
	int lrc;
	if (e->fq_running && !log_id) {
		/* the store's checks now, so a bad entry fails this call */
		lrc = knytt__search_log_check(lq, lu);
		if (lrc == 0)
			lrc = knytt__fq_push_log(e, lq, lu, n, shown,
						 knytt__engine_now(e));
	} else {
		uint64_t lid = 0;
		lrc = knytt__stw_log(e, lq, lu, n, shown, &lid);
		if (lrc == 0 && log_id)
			*log_id = lid;
	}
	return lrc;
}

/* Does @p title hold the same words as @p query, in order (ASCII case
 * folded; words are what keyword search splits on)? */
static int same_words(const char *title, const char *query)
{
	const unsigned char *a = (const unsigned char *)title,
			    *b = (const unsigned char *)query;
#define WB(c) ((c) >= 0x80 || ((c) >= '0' && (c) <= '9') || \
	       (((c) | 0x20) >= 'a' && ((c) | 0x20) <= 'z'))
	for (;;) {
		while (*a && !WB(*a))
			a++;
		while (*b && !WB(*b))
			b++;
		if (!*a || !*b)
			return !*a && !*b;
		while (*a && WB(*a) && *b && WB(*b)) {
			/* | 0x20 folds ASCII letters, leaves digits */
			unsigned char x = *a < 0x80 ? (unsigned char)(*a | 0x20)
						    : *a;
			unsigned char y = *b < 0x80 ? (unsigned char)(*b | 0x20)
						    : *b;
			if (x != y)
				return 0;
			a++;
			b++;
		}
		if ((*a && WB(*a)) || (*b && WB(*b)))
			return 0;
	}
#undef WB
}

/* The query vector of @p text for snapshot @p snap into @p q (d floats;
 * tmp: d floats of scratch): 1 = written (unit length), 0 = none (no
 * path knows a word of it), < 0 an embedder error.  Caller holds no
 * engine lock: the embedder is an HTTP call. */
static int text_vector(knytt_engine *e, knytt__snap *snap, const char *text,
		       float *q, float *tmp)
{
	uint32_t d = e->dim;
	int has = 0;
	if (snap->tt &&
	    knytt_twotower_embed_query(snap->tt, text, q) == KNYTT_OK)
		has = knytt__normalize(q, d) > 0;
	if (snap->qm && knytt__qterms_embed(snap->qm, text, tmp) > 0) {
		/* both unit length: the sum weighs the tower's text features
		 * and the shop's own evidence equally */
		for (uint32_t i = 0; i < d; i++)
			q[i] = has ? q[i] + tmp[i] : tmp[i];
		has = knytt__normalize(q, d) > 0;
	}
	if (!snap->tt && !has && e->emb && e->kind == KNYTT_MODEL_EXTERNAL) {
		const char *texts[1] = { text };
		int rc = knytt_embedder_embed(e->emb, 1, texts, q, d);
		if (rc < 0)
			return rc;
		has = rc == KNYTT_OK;
	}
	return has;
}

uint32_t knytt_engine_dim(const knytt_engine *e)
{
	return e && e->is_open ? e->dim : 0;
}

int knytt_engine_embed_query(knytt_engine *e, const char *text, float *out,
			     uint32_t dim)
{
	if (!e || !text || !out)
		return knytt__err(KNYTT_EINVAL, "knytt_engine_embed_query: %s "
				  "is NULL", !e ? "engine" : !text ? "text"
							     : "out");
	if (!e->is_open)
		return knytt__err(KNYTT_ESTATE, "knytt_engine_embed_query: "
				  "engine is not open");
	if (!*text)
		return knytt__err_field(KNYTT_EINVAL, "text",
					"knytt_engine_embed_query: text is "
					"empty");
	if (dim != e->dim)
		return knytt__err_field(KNYTT_EINVAL, "dim",
					"knytt_engine_embed_query: dim is %u, "
					"the engine has %u", dim, e->dim);
	float *tmp = malloc(dim * sizeof *tmp);
	if (!tmp)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	knytt__snap *snap = knytt__snap_get(e);
	int rc = text_vector(e, snap, text, out, tmp);
	knytt__snap_put(snap);
	free(tmp);
	if (rc == 0)
		memset(out, 0, dim * sizeof *out);
	return rc;
}

/* Keyword hits among the first PIN_MAX whose title is the query word for
 * word; @p st is a store connection the caller holds (knytt__rd_take).
 * Returns their count (in keyword order). */
#define PIN_MAX 3
static size_t exact_titles(knytt_store *st, const char *text,
			   const uint64_t *kw, int nk, uint64_t *pin)
{
	size_t n = 0;
	for (int i = 0; i < nk && i < PIN_MAX; i++) {
		knytt_item *it = NULL;
		if (knytt_store_item_get_id(st, kw[i], &it) == KNYTT_OK &&
		    it->title && same_words(it->title, text))
			pin[n++] = kw[i];
		knytt_free(it);
	}
	return n;
}

/* Moves the pinned keyword hits to the front of the sorted fusion, in
 * keyword order; the rest keep theirs. */
static void pin_front(knytt__rrf *f, const uint64_t *pin, size_t npin)
{
	size_t at = 0;
	for (size_t p = 0; p < npin; p++) {
		size_t i = at;
		while (i < f->n && f->f[i].id != pin[p])
			i++;
		if (i == f->n || !(f->f[i].lists & 1))
			continue; /* filtered out */
		knytt__fused x = f->f[i];
		memmove(&f->f[at + 1], &f->f[at], (i - at) * sizeof x);
		f->f[at++] = x;
	}
}

int knytt__engine_search(knytt_engine *e, const char *text, const float *vec,
			uint32_t dim, size_t k, const knytt_filter *filter,
			const char *user, knytt_result *out, uint64_t *log_id)
{
	int rc = knytt__q_check_query(e, k, "knytt_engine_search");
	knytt_filter fbuf;
	if (rc || (rc = knytt__q_check_filter(&filter, &fbuf)))
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
	knytt__rrf f;
	memset(&f, 0, sizeof f);
	if (!kw || !lab || !dist || !q || !t || !v) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		goto early;
	}
	/* reciprocal rank fusion of the keyword (list 0) and vector (list 1)
	 * halves, k = 60 (Cormack et al. 2009) */
	if ((rc = knytt__rrf_init(&f, 60, 2 * cap)))
		goto early;
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
			knytt__engine_user_put(e, u);
		}
		if (personal)
			knytt__normalize(t, d);
	}
	/* the query vector: given, or the model's text path (memory; the
	 * snapshot reference keeps the model, no lock), or the embedding
	 * service (HTTP, with no lock).  The vector half searches the same
	 * snapshot's index, so query and items share one model even if a
	 * training swap lands meanwhile. */
	knytt__snap *snap = knytt__snap_get(e);
	int has_q = 0;
	if (vec) {
		memcpy(q, vec, d * sizeof *q);
		has_q = 1;
	} else if (has_text) {
		has_q = text_vector(e, snap, text, q, v);
		if (has_q < 0) {
			rc = has_q;
			knytt__snap_put(snap);
			goto early;
		}
	}
	uint64_t pin[PIN_MAX];
	size_t npin = 0;

	pthread_rwlock_rdlock(&e->lock);
	qctx c;
	knytt__q_qctx_init(&c, e, snap, filter);
	size_t n = 0;
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
	int vec_half = has_q && knytt_index_count(snap->ix) > 0;
	int scanned = vec_half && knytt__q_filter_cands(e, &c);
	/* an attribute filter too wide to scan: its bitset for the index
	 * (else the index would test all items by the predicate) */
	if ((c.plen || (filter && filter->where && (has_text || !scanned))) &&
	    (rc = knytt__q_filter_bits(e, &c)))
		goto out;
	if (has_text) {
		/* a match is tested in memory (the bitset, or the item
		 * table: the tenant's live items, the filter) before the
		 * store reads anything about it, and the store reads no
		 * item row for those checks (knytt__store_search_owned;
		 * the item reads were a seventh of a search's CPU) */
		/* the store with the engine unlocked, on a connection of
		 * its own when another thread holds the engine's
		 * (rdpool.c); the callback takes the read lock for its test
		 * (the connection's mutex, then lock) */
		pthread_rwlock_unlock(&e->lock);
		pthread_mutex_t *held;
		knytt_store *st = knytt__rd_take(e, &held);
		int nk = knytt__store_search_owned(st, text,
						   knytt__q_kw_accept_locked,
						   &c, kw, NULL, cap);
		/* only fusion with vectors or the personal re-rank can move
		 * a keyword hit: the titles are read only then */
		if (nk > 0 && (vec_half || personal))
			npin = exact_titles(st, text, kw, nk, pin);
		knytt__rd_give(e, held);
		pthread_rwlock_rdlock(&e->lock);
		if (nk == KNYTT_EINVAL)
			nk = 0; /* a query with no word: vector part only */
		if (nk < 0) {
			rc = nk;
			goto out;
		}
		/* ranked among the matches that pass the filter */
		size_t nkw = 0;
		for (int i = 0; i < nk; i++) {
			uint32_t r = knytt__engine_row(e, kw[i]);
			if (r != UINT32_MAX && knytt__q_item_passes(&c, &e->items[r]))
				kw[nkw++] = kw[i];
		}
		if ((rc = knytt__rrf_add(&f, 0, 1, kw, nkw)))
			goto out;
	}
	if (vec_half) {
		int nv = scanned ? knytt__q_scan_one(e, &c, q, cap, lab, dist)
				 : knytt__q_ann(e, &c, q, cap, lab, dist);
		if (nv < 0) {
			rc = nv;
			goto out;
		}
		if ((rc = knytt__rrf_add(&f, 1, 1, lab, (size_t)nv)))
			goto out;
	}
	if (personal) {
		/* nudge toward the shopper: up to +50% for an item pointing
		 * the same way as their taste, -50% for the opposite */
		for (size_t i = 0; i < f.n; i++) {
			knytt__fused *x = &f.f[i];
			if (knytt_index_get(snap->ix, x->id, v, d) != KNYTT_OK)
				continue;
			knytt__normalize(v, d);
			x->score *= 1.0 + 0.5 * knytt__vec()->dot(t, v, d);
		}
	}
	knytt__rrf_sort(&f);
	pin_front(&f, pin, npin);
	n = f.n < k ? f.n : k;
	for (size_t i = 0; i < n; i++)
		knytt__q_fill(e, &out[i], knytt__engine_row(e, f.f[i].id), f.f[i].score,
		     f.f[i].lists == 3	 ? KNYTT_REASON_HYBRID
		     : f.f[i].lists == 1 ? KNYTT_REASON_KEYWORD
					 : KNYTT_REASON_SEMANTIC,
		     0);
	rc = (int)n;
out:
	pthread_rwlock_unlock(&e->lock);
	knytt__q_qctx_done(&c);
	if (rc >= 0) {
		/* the ids shown, so search analytics can rank a later click */
		char shown[KNYTT__SHOWN_CAP];
		knytt__shown_text(&out[0].item_id, n, sizeof *out, shown,
				  sizeof shown);
		int lrc = search_log(e, has_text ? text : "(vector)",
				     user && *user ? user : NULL, (int)n,
				     shown, log_id);
		if (lrc == KNYTT_EINVAL || lrc == KNYTT_ERANGE) {
			rc = lrc; /* the query or user cannot be logged */
		} else if (lrc < 0) {
			/* a store that cannot take the row (a full disk, a
			 * lost server) costs the analytics one row; the
			 * shopper still gets the answer */
			if (log_id)
				*log_id = 0;
			knytt__engine_warn(e, "search not logged: %s",
					   knytt_errmsg());
		}
	}
early:
	free(kw);
	free(lab);
	free(dist);
	free(q);
	free(t);
	free(v);
	knytt__rrf_free(&f);
	return rc;
}

