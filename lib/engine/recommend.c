/*
 * recommend.c -- knytt_engine_recommend: the shopper's long-term and
 * session tastes searched with the caller's filter, fused by rank
 * (fusion.c), optionally diversified (MMR), topped up by trending and
 * popular items.  Moved from query.c.
 */
#include "query.h"
#include "seqmodel.h"
#include "../store/store_int.h"
#include "../model/blend.h"

#include "../vec/topk.h"
#include "../vec/vec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
		if (knytt_index_get(e->snap->ix, cand[i].item_id, v + i * d, d))
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

int knytt__q_cmp_score(const void *a, const void *b)
{
	const knytt_result *x = a, *y = b;
	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return x->item_id < y->item_id ? -1 : x->item_id > y->item_id;
}

/* One taste query of shopper @p u (which: 0 long-term, 1 session): up
 * to kk filtered results into res[0..*n); the index's answer may be the
 * one kept from the shopper's last such query (annmemo.c). */
static int search_taste(knytt_engine *e, qctx *c, knytt__profile *u,
			int which, const float *q, size_t kk, uint64_t *lab,
			float *dist, knytt_result *res, size_t *n,
			knytt_reason why, uint64_t because)
{
	int got = knytt__q_ann_memo(e, c, u, which, q, kk, lab, dist);
	if (got < 0)
		return got;
	for (int i = 0; i < got; i++) {
		uint32_t r = knytt__engine_row(e, lab[i]);
		/* a query still on a snapshot that a delete replaced can meet
		 * the deleted item (the exclusions-only search trusts the
		 * index's labels) */
		if (r == UINT32_MAX || e->items[r].deleted)
			continue;
		knytt__q_fill(e, &res[(*n)++], r, knytt__q_score_of(e, dist[i]),
			      why, because);
	}
	return KNYTT_OK;
}

/*
 * Fuses the long-term list a and the session list b by weighted
 * reciprocal rank (fusion.c, k = 0): score = (1 - f) / rank in a + f /
 * rank in b.  With f = 0.5 the two lists alternate; with f = 0.25 the
 * session gets about one slot in four; an item on both lists adds up.
 * Scores are comparable within the answer and the result is sorted by
 * them.  Each entry (and so its reason) is the one of the list that
 * contributed more.  Writes at most cap entries into dst (which may be
 * a).  Returns the count, or a negative error code.
 */
static int fuse_lists(const knytt_result *a, size_t na,
		      const knytt_result *b, size_t nb, float f, size_t cap,
		      knytt_result *dst)
{
	uint64_t *ids = malloc((na + nb + 1) * sizeof *ids);
	knytt_result *t = malloc((na + nb + 1) * sizeof *t);
	knytt__rrf r;
	int rc = !ids || !t ? knytt__err(KNYTT_ENOMEM, "out of memory")
			    : knytt__rrf_init(&r, 0, na + nb);
	if (rc) {
		free(ids);
		free(t);
		return rc;
	}
	for (size_t i = 0; i < na; i++)
		ids[i] = a[i].item_id;
	for (size_t j = 0; j < nb; j++)
		ids[na + j] = b[j].item_id;
	size_t n = 0;
	if (!(rc = knytt__rrf_add(&r, 0, 1.0 - f, ids, na)) &&
	    !(rc = knytt__rrf_add(&r, 1, f, ids + na, nb))) {
		knytt__rrf_sort(&r);
		n = r.n < cap ? r.n : cap;
		for (size_t i = 0; i < n; i++) {
			const knytt__fused *x = &r.f[i];
			t[i] = x->best ? b[x->best_pos] : a[x->best_pos];
			t[i].score = x->score;
		}
		memcpy(dst, t, n * sizeof *dst);
	}
	knytt__rrf_free(&r);
	free(ids);
	free(t);
	return rc ? rc : (int)n;
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
 * Blends the personal list cand[0..*n) with list pl[0..np) of weight w
 * by the rule of lib/model/blend.h; the result replaces cand (at most kk
 * entries).  A result keeps the reason of the list that contributed
 * more to it.
 */
static int blend_list(size_t kk, const knytt_result *pl, size_t np, float w,
		      knytt_result *cand, size_t *n)
{
	size_t na = *n, nt = 0;
	knytt_result *res = malloc((kk ? kk : 1) * sizeof *res);
	uint64_t *ids = malloc((na + np + 1) * sizeof *ids);
	uint64_t *out = malloc((na + np + 1) * sizeof *out);
	double *sc = malloc((na + np + 1) * sizeof *sc);
	unsigned char *fb = malloc(na + np + 1);
	idres *by = malloc((na + np + 1) * sizeof *by);
	int rc = KNYTT_OK;
	if (!res || !ids || !out || !sc || !fb || !by) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		goto out;
	}
	/* by[0..na): the personal list by id; by[na..na+np): the other */
	for (size_t i = 0; i < na + np; i++) {
		const knytt_result *r = i < na ? &cand[i] : &pl[i - na];
		ids[i] = r->item_id;
		by[i] = (idres){r->item_id, r};
	}
	qsort(by, na, sizeof *by, cmp_idres);
	qsort(by + na, np, sizeof *by, cmp_idres);
	nt = knytt__blend_fuse(ids, na, ids + na, np, w, kk, out, sc, fb);
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
	free(res);
	free(ids);
	free(out);
	free(sc);
	free(fb);
	free(by);
	return rc;
}

/* The chosen popularity list's first @p k items that pass the query
 * (recentwin.c's window or a trending or popular list) after out[0..*n)
 * (blend_recent and the personalised re-rank read the same list). */
static int chosen_list(knytt_engine *e, qctx *c, int64_t now, size_t k,
		       knytt_result *out, size_t *n)
{
	return c->snap->blend_win > 0
		       ? knytt__q_win_fallback(e, c, c->snap->blend_win, now,
					       k, out, n)
		       : knytt__q_fallback(e, c, c->snap->blend_h, now, k,
					   out, n);
}

/* The best kk rows of rows[0..n) by taste @p q (unit length) into res
 * (reason why, because), best first: the engine's copy of the vectors
 * (scan.c), or the index's when there is none. */
static size_t rank_rows(knytt_engine *e, const qctx *c, const uint32_t *rows,
			size_t n, const float *q, size_t kk, knytt_reason why,
			uint64_t because, knytt_result *res)
{
	uint32_t d = e->dim;
	const knytt__vec_ops *ops = knytt__vec();
	knytt__pair *heap = malloc((kk ? kk : 1) * sizeof *heap);
	uint64_t *ids = malloc((kk ? kk : 1) * sizeof *ids);
	float *sc = malloc((kk ? kk : 1) * sizeof *sc), x[4096];
	size_t got = 0;
	if (!heap || !ids || !sc)
		goto out;
	knytt__topk t = {heap, 0, kk};
	for (size_t i = 0; i < n; i++) {
		const float *v = x;
		if (e->rowvec_ok)
			v = e->rowvec + (size_t)rows[i] * d;
		else if (knytt_index_get(c->snap->ix, e->items[rows[i]].id, x,
					 d) < 0)
			continue; /* no vector: not ranked */
		/* ties keep the list's order: its position breaks them */
		knytt__topk_push(&t, -ops->dot(q, v, d), i);
	}
	got = knytt__topk_drain(&t, ids, sc);
	for (size_t j = 0; j < got; j++)
		knytt__q_fill(e, &res[j], rows[ids[j]], -sc[j], why, because);
out:
	free(heap);
	free(ids);
	free(sc);
	return got;
}

/*
 * The personalised re-rank (snap->blend_pool > 0), the list the tuning
 * scored (lib/model/tune.c, pool_top): the chosen popularity list's
 * first blend_pool items that pass the query, ranked by the shopper's
 * long-term taste and by his session, the two fused as recommend fuses
 * its index searches (fuse_lists, share f); the best kk into cand.  So
 * the model is asked about every item of the pool, also those below its
 * own best over all items, which the plain blend never sees.
 */
static int pool_tastes(knytt_engine *e, qctx *c, const knytt__profile *u,
		       int64_t now, float share, size_t kk, knytt_result *cand,
		       size_t *n)
{
	size_t P = c->snap->blend_pool, np = 0, nl = 0, ns = 0;
	uint32_t d = e->dim;
	knytt_result *pool = malloc(P * sizeof *pool);
	knytt_result *sl = malloc((kk ? kk : 1) * sizeof *sl);
	uint32_t *rows = malloc(P * sizeof *rows);
	float *v = malloc(d * sizeof *v);
	int rc = !pool || !sl || !rows || !v
			 ? knytt__err(KNYTT_ENOMEM, "out of memory")
			 : chosen_list(e, c, now, P, pool, &np);
	if (rc)
		goto out;
	for (size_t i = 0; i < np; i++)
		rows[i] = knytt__engine_row(e, pool[i].item_id);
	if (share < 1) {
		memcpy(v, u->taste.longv, d * sizeof *v);
		knytt__normalize(v, d);
		nl = rank_rows(e, c, rows, np, v, kk, KNYTT_REASON_TASTE, 0,
			       cand);
	}
	if (share > 0) {
		memcpy(v, u->taste.sess, d * sizeof *v);
		knytt__normalize(v, d);
		ns = rank_rows(e, c, rows, np, v, kk, KNYTT_REASON_SESSION,
			       u->taste.sess_item, sl);
	}
	int nf = share > 0 ? fuse_lists(cand, nl, sl, ns, share, kk, cand)
			   : (int)nl;
	if (nf < 0)
		rc = nf;
	else
		*n = (size_t)nf;
out:
	free(pool);
	free(sl);
	free(rows);
	free(v);
	return rc;
}

/*
 * Blends the personal list cand[0..*n) with the trending list the
 * snapshot's tuning chose (blend_h; -1: popularity; or the window of
 * blend_win ms, recentwin.c), its top kk items that pass the query's
 * filter and exclusions, with the chosen weight (blend_list).
 */
static int blend_recent(knytt_engine *e, qctx *c, int64_t now, size_t kk,
			knytt_result *cand, size_t *n)
{
	size_t np = 0;
	knytt_result *pl = malloc((kk ? kk : 1) * sizeof *pl);
	if (!pl)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	int rc = chosen_list(e, c, now, kk, pl, &np);
	if (!rc)
		rc = blend_list(kk, pl, np, c->snap->blend_w, cand, n);
	free(pl);
	return rc;
}

/*
 * Blends the SASRec session model's next items after shopper @p u's
 * latest events (seqmodel.c), its top kk that pass the query, into
 * cand[0..*n) with the weight its training chose (blend_list).  Comes
 * after the blend with recent popularity, as the tuning scored it
 * (lib/model/tune.c, seq_step).  An empty sequence leaves cand as it is.
 */
static int blend_seq(knytt_engine *e, qctx *c, const knytt__profile *u,
		     int64_t now, size_t kk, knytt_result *cand, size_t *n)
{
	size_t ns = 0;
	knytt_result *sl = malloc((kk ? kk : 1) * sizeof *sl);
	if (!sl)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	int rc = knytt__seq_list(e, c, u, now, kk, sl, &ns);
	if (!rc && ns > 0)
		rc = blend_list(kk, sl, ns, c->snap->sr_w, cand, n);
	free(sl);
	return rc;
}

/*
 * Whether the session search can leave the answer as it is: the
 * session's share f is so small that no fused rank can change (a
 * session hours old decays to f ~ 1e-6, never to 0).  In fuse_lists a
 * long-term item at rank i scores (1-f)/(1+i), so neighbours among the
 * first kk differ by more than (1-f)/(kk(kk+1)), and a session item adds
 * at most f.  With f below that gap and a full long-term list (nl = kk =
 * k: no MMR, which would weigh the lower candidates), the session can
 * neither reorder the list, nor push in an item of its own (it would
 * score <= f, below the k-th long-term item), nor give an item its
 * reason; only the scores would move, by less than f.  Skipping it
 * halves the index work of most recommendations.
 */
static int session_moot(float f, size_t k, size_t kk, size_t nl)
{
	return kk == k && nl >= kk && f < 1 &&
	       (double)f < (1.0 - f) / ((double)kk * (double)(kk + 1));
}

/* The personal list cand[0..*n) made final into out: blended with the
 * chosen popular list and the session model where the model says so,
 * diversified (lambda < 1), cut to k. */
static int finish_personal(knytt_engine *e, qctx *c, const knytt__profile *u,
			   int64_t now, size_t kk, size_t k, double lambda,
			   int seqm, knytt_result *cand, size_t *n,
			   knytt_result *out)
{
	int rc;
	if ((c->snap->blend_w > 0 &&
	     (rc = blend_recent(e, c, now, kk, cand, n))) ||
	    (seqm && (rc = blend_seq(e, c, u, now, kk, cand, n))))
		return rc;
	if (lambda < 1 && *n > 1)
		mmr(e, cand, *n, k, lambda);
	if (*n > k)
		*n = k;
	memcpy(out, cand, *n * sizeof *out);
	return KNYTT_OK;
}

int knytt__engine_recommend(knytt_engine *e, const char *user, size_t k,
			   const knytt_filter *filter,
			   const knytt_rec_options *opt, knytt_result *out)
{
	int rc = knytt__q_check_query(e, k, "knytt_engine_recommend");
	knytt_filter fbuf;
	if (rc || (rc = knytt__q_check_filter(&filter, &fbuf)))
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
		knytt_rec_options o;
		knytt_rec_options_init(&o);
		KNYTT__STRUCT_IN(&o, opt);
		if (!(o.mmr_lambda >= 0 && o.mmr_lambda <= 1))
			return knytt__err(KNYTT_EINVAL,
					  "options.mmr_lambda must be in 0..1");
		lambda = o.mmr_lambda;
		if (o.exclude_seen >= 0)
			seen = o.exclude_seen != 0;
	}
	/* a reference to the profile (loaded from the store first if need
	 * be, with no lock held; given back at the end, so it is not
	 * evicted meanwhile), then its own lock for the whole query -- the
	 * seen set and the taste are read throughout -- and the engine's
	 * read lock */
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
	/* the blends with recent popularity and the session model read
	 * deeper lists (blend.h) */
	int seqm = e->snap->sr && e->snap->sr_w > 0;
	if ((e->snap->blend_w > 0 || e->snap->blend_pool > 0 || seqm) &&
	    kk < knytt__blend_depth(k))
		kk = knytt__blend_depth(k);
	uint64_t *lab = malloc(kk * sizeof *lab);
	float *dist = malloc(kk * sizeof *dist);
	knytt_result *cand = malloc(kk * sizeof *cand);
	float *v = malloc(d * sizeof *v);
	size_t n = 0;
	qctx c;
	knytt__q_qctx_init(&c, e, knytt__snap_ref(e->snap), filter);
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
	int scanned = knytt__q_filter_cands(e, &c);
	if (!scanned && (rc = knytt__q_filter_bits(e, &c)))
		goto out;
	int warm = knytt__taste_blend(&u->taste, d, now, e->sess_half_life,
				      e->sess_blend, q, &share);
	/* a window's pool needs the events only an engine set to tune
	 * with windows keeps (recentwin.c): another serves the tastes'
	 * best over every item, as it serves such a blend */
	if (warm && c.snap->blend_pool > 0 &&
	    !(c.snap->blend_win > 0 && !e->tune_windows)) {
		/* the personalised re-rank of the chosen list: no index
		 * search (pool_tastes) */
		if ((rc = pool_tastes(e, &c, u, now, share, kk, cand, &n)) ||
		    (rc = finish_personal(e, &c, u, now, kk, k, lambda, seqm,
					  cand, &n, out)))
			goto out;
	} else if (warm && knytt_index_count(c.snap->ix) > 0) {
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
			rc = knytt__q_scan_tastes(e, &c, (const float *const *)qv, nq,
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
			if ((rc = search_taste(e, &c, u, 0, v, kk, lab, dist,
					       lc, &nl, KNYTT_REASON_TASTE,
					       0)))
				goto out;
		}
		if (share > 0 && !scanned && !session_moot(share, k, kk, nl)) {
			sc = malloc(kk * sizeof *sc);
			if (!sc) {
				rc = knytt__err(KNYTT_ENOMEM, "out of memory");
				goto out;
			}
			memcpy(v, u->taste.sess, d * sizeof *v);
			knytt__normalize(v, d);
			if ((rc = search_taste(e, &c, u, 1, v, kk, lab, dist,
					       sc, &ns, KNYTT_REASON_SESSION,
					       u->taste.sess_item))) {
				free(sc);
				goto out;
			}
		}
		/* both lists, or the session's left out (session_moot): the
		 * fused scores either way; long-term only: its own order */
		int nf = share > 0 ? fuse_lists(lc, nl, sc, ns, share, kk, cand)
				   : (int)nl;
		free(sc);
		if (nf < 0) {
			rc = nf;
			goto out;
		}
		n = (size_t)nf;
		if ((rc = finish_personal(e, &c, u, now, kk, k, lambda, seqm,
					  cand, &n, out)))
			goto out;
	}
	/* cold users, or too few personal results: trending, then popular */
	if ((rc = knytt__q_fallback(e, &c, 1, now, k, out, &n)) ||
	    (rc = knytt__q_fallback(e, &c, -1, now, k, out, &n)))
		goto out;
	rc = (int)n;
out:
	pthread_rwlock_unlock(&e->lock);
	pthread_mutex_unlock(&u->mu);
	knytt__engine_user_put(e, u);
	knytt__q_qctx_done(&c);
	free(q);
	free(lab);
	free(dist);
	free(cand);
	free(v);
	return rc;
}

