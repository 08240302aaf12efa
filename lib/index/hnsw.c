/*
 * hnsw.c -- the HNSW graph (Malkov & Yashunin, "Efficient and robust
 * approximate nearest neighbor search using Hierarchical Navigable Small
 * World graphs", 2016).
 *
 * What follows the paper: layers with geometric level assignment
 * (mL = 1/ln M), greedy descent through the upper layers, a best-first
 * walk with a bounded result list (ef) on each layer (Algorithm 2), and
 * the neighbour-selection heuristic (Algorithm 4, without
 * extendCandidates or keepPrunedConnections, which the paper found not to
 * help on most data).  A new node keeps M links; on level 0 a node may
 * gather up to M0 = 2M through back-links before it is pruned.
 *
 * Where it departs from the paper:
 *  - Deletion.  The paper has none.  A removed node's neighbours are
 *    repaired at once: each neighbour u that linked to it re-selects its
 *    list (heuristic) from its other links plus the removed node's links,
 *    so the region stays connected.  The removed slot stays in the graph
 *    as a tombstone that still routes (it is never returned) until an
 *    add reuses it.  Since a reused slot may come back with a lower
 *    level, every walk on level l skips links to nodes whose level is
 *    below l.
 *  - Filters are applied to the result list only: nodes that fail the
 *    filter (and tombstones) are still expanded, so they keep routing.
 *    While the result list is not full the walk does not stop early.
 *  - Distances are "keys": the cheapest monotone form (squared L2,
 *    negated dot product, raw int8 sums).  The affine map to the reported
 *    distance is applied once per result, not once per visited node.
 *    f16 vectors (KNYTT_QUANT_F16) are compared with an f32 query by
 *    key() and with each other by key_ss() (the build's selection).
 */
#include "../vec/half.h"
#include "hnsw.h"

#include <math.h>
#include <stdlib.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

/* ---------------------------------------------------------------- scratch */

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p)
{
	knytt__scratch *sc = p;
	if (!sc)
		return;
	free(sc->tags);
	free(sc->cand);
	free(sc->res);
	free(sc->qf);
	free(sc->qc);
	free(sc->tmp);
	free(sc->rq_a);
	free(sc->rq_e);
	free(sc->rq_tag);
	free(sc->ka);
	free(sc->kb);
	free(sc->kd);
	free(sc);
}

static void scratch_init(void)
{
	pthread_key_create(&scratch_key, scratch_free);
}

static int fail_growth; /* tests: knytt__hnsw_fail_growth */

void knytt__hnsw_fail_growth(int on)
{
	fail_growth = on;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (*cap >= need)
		return 0;
	if (fail_growth)
		return -1;
	size_t nc = *cap ? *cap : 64;
	while (nc < need)
		nc *= 2;
	void *q = realloc(*p, nc * elem);
	if (!q)
		return -1;
	*p = q;
	*cap = nc;
	return 0;
}

/* *p resized to @p bytes; on failure *p is kept (freed with the rest) */
static int resize(void **p, size_t bytes)
{
	void *q = realloc(*p, bytes);
	if (!q)
		return -1;
	*p = q;
	return 0;
}

knytt__scratch *knytt__scratch_get(const knytt_index *ix)
{
	pthread_once(&scratch_once, scratch_init);
	knytt__scratch *sc = pthread_getspecific(scratch_key);
	if (!sc) {
		sc = calloc(1, sizeof *sc);
		if (!sc || pthread_setspecific(scratch_key, sc) != 0) {
			free(sc);
			return NULL;
		}
	}
	if (sc->tcap < ix->nslots) {
		size_t nc = ix->cap > ix->nslots ? ix->cap : ix->nslots;
		uint32_t *t = realloc(sc->tags, nc * sizeof *t);
		if (!t)
			return NULL;
		/* new tags are 0 and epochs start at 1: not visited */
		memset(t + sc->tcap, 0, (nc - sc->tcap) * sizeof *t);
		sc->tags = t;
		sc->tcap = nc;
	}
	size_t qn = ix->dim + 16;
	if (sc->qcap < qn) {
		if (resize((void **)&sc->qf, qn * sizeof(float)) ||
		    resize((void **)&sc->qc, qn) ||
		    resize((void **)&sc->ka, qn * sizeof(float)) ||
		    resize((void **)&sc->kb, qn * sizeof(float)))
			return NULL;
		sc->qcap = qn;
	}
	return sc;
}

static inline uint32_t new_epoch(knytt__scratch *sc)
{
	if (++sc->epoch == 0) {
		memset(sc->tags, 0, sc->tcap * sizeof *sc->tags);
		sc->epoch = 1;
	}
	return sc->epoch;
}

/* ------------------------------------------------------------------ heaps */

/* min-heap on d (candidates: the closest unexpanded node on top) */
static inline void cpush(knytt__scratch *sc, float d, uint32_t id)
{
	size_t i = sc->nc++;
	knytt__cand *h = sc->cand;
	while (i > 0) {
		size_t p = (i - 1) >> 1;
		if (h[p].d <= d)
			break;
		h[i] = h[p];
		i = p;
	}
	h[i].d = d;
	h[i].id = id;
}

static inline knytt__cand cpop(knytt__scratch *sc)
{
	knytt__cand *h = sc->cand, top = h[0], x = h[--sc->nc];
	size_t n = sc->nc, i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && h[c + 1].d < h[c].d)
			c++;
		if (h[c].d >= x.d)
			break;
		h[i] = h[c];
		i = c;
	}
	if (n)
		h[i] = x;
	return top;
}

/* max-heap on d (results: the worst kept node on top) */
static inline void rpush(knytt__scratch *sc, float d, uint32_t id)
{
	size_t i = sc->nr++;
	knytt__cand *h = sc->res;
	while (i > 0) {
		size_t p = (i - 1) >> 1;
		if (h[p].d >= d)
			break;
		h[i] = h[p];
		i = p;
	}
	h[i].d = d;
	h[i].id = id;
}

static inline void rpop(knytt__scratch *sc)
{
	knytt__cand *h = sc->res, x = h[--sc->nr];
	size_t n = sc->nr, i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && h[c + 1].d > h[c].d)
			c++;
		if (h[c].d <= x.d)
			break;
		h[i] = h[c];
		i = c;
	}
	if (n)
		h[i] = x;
}

/* Drains the result heap into out[], nearest first; returns the count. */
static size_t rdrain(knytt__scratch *sc, knytt__cand *out)
{
	size_t n = sc->nr;
	while (sc->nr > 0) {
		out[sc->nr - 1] = sc->res[0];
		rpop(sc);
	}
	return n;
}

static int cmp_cand(const void *a, const void *b)
{
	const knytt__cand *x = a, *y = b;
	if (x->d != y->d)
		return x->d < y->d ? -1 : 1;
	return x->id < y->id ? -1 : x->id > y->id;
}

/* ------------------------------------------------------------- distances */

int knytt__rq_prepare(const knytt_index *ix, knytt__scratch *sc,
		      const float *q)
{
	size_t d = ix->dim, K = ix->qcells;
	size_t an = ix->metric == KNYTT_METRIC_L2 ? K * d : d;
	if (sc->rq_acap < an) {
		if (resize((void **)&sc->rq_a, an * sizeof(float)))
			return knytt__err(KNYTT_ENOMEM, "out of memory");
		sc->rq_acap = an;
	}
	if (sc->rq_kcap < K) {
		if (resize((void **)&sc->rq_e, K * sizeof(float)) ||
		    resize((void **)&sc->rq_tag, K * sizeof(uint32_t)))
			return knytt__err(KNYTT_ENOMEM, "out of memory");
		/* epochs start at 1: new cells are not filled */
		memset(sc->rq_tag + sc->rq_kcap, 0,
		       (K - sc->rq_kcap) * sizeof *sc->rq_tag);
		sc->rq_kcap = K;
	}
	if (++sc->rq_epoch == 0) {
		memset(sc->rq_tag, 0, sc->rq_kcap * sizeof *sc->rq_tag);
		sc->rq_epoch = 1;
	}
	sc->rq_q = q;
	if (ix->metric != KNYTT_METRIC_L2) {
		for (size_t j = 0; j < d; j++)
			sc->rq_a[j] = q[j] * ix->qsv[j];
		sc->rq_qm = ix->ops->dot(q, ix->qmid, d);
	}
	return KNYTT_OK;
}

/* Fills the prepared query's view of cell @p k (knytt__scratch). */
static __attribute__((noinline)) void rq_fill(const knytt_index *ix,
					      knytt__scratch *sc, unsigned k)
{
	size_t d = ix->dim;
	const float *cen = ix->qcen + (size_t)k * d;
	if (ix->metric == KNYTT_METRIC_L2) {
		float *p = sc->rq_a + (size_t)k * d;
		ix->ops->sub(sc->rq_q, cen, p, d);
		ix->ops->sub(p, ix->qmid, p, d);
	} else {
		sc->rq_e[k] = ix->ops->dot(sc->rq_q, cen, d) + sc->rq_qm;
	}
	sc->rq_tag[k] = sc->rq_epoch;
}

/* residual int8-only: the key of the query prepared in @p sc to the
 * codes @p v (quant.c) */
static inline float rq_key(const knytt_index *ix, knytt__scratch *sc,
			   const int8_t *v)
{
	unsigned k = ((const uint8_t *)v)[ix->dim];
	if (sc->rq_tag[k] != sc->rq_epoch)
		rq_fill(ix, sc, k);
	if (ix->kid == KID_R_L2)
		return ix->ops->l2sq_f8w(sc->rq_a + (size_t)k * ix->dim,
					 ix->qsv, v, ix->dim);
	return -(sc->rq_e[k] + ix->ops->dot_f8(sc->rq_a, v, ix->dim));
}

static inline __attribute__((always_inline)) float
key(const knytt_index *ix, const void *q, const void *v)
{
	switch (ix->kid) {
	case KID_F32_L2:
		return ix->kf32(q, v, ix->dim);
	case KID_F32_NEGDOT:
		return -ix->kf32(q, v, ix->dim);
	case KID_I8_L2:
		return (float)ix->ops->l2sq_i8(q, v, ix->dim);
	case KID_H_L2:
		return ix->ops->l2sq_fh(q, v, ix->dim);
	case KID_H_NEGDOT:
		return -ix->ops->dot_fh(q, v, ix->dim);
	case KID_R_L2:
	case KID_R_NEGDOT:
		return rq_key(ix, (knytt__scratch *)q, v);
	default:
		return -(float)ix->ops->dot_i8(q, v, ix->dim);
	}
}

/*
 * key of two stored vectors (the build's neighbour selection).  The same
 * as key() but for f16, whose walks take an f32 query (a search's own,
 * or an inserted node's vector widened into the scratch: exact, so both
 * ways give the same sums) and whose stored side is halves.  Residual
 * codes of two cells are compared decoded, in f32: the caller passes a
 * as ss_left gave it, b is decoded into sc's kb.
 */
static inline float key_ss(const knytt_index *ix, knytt__scratch *sc,
			   const void *a, const void *b)
{
	switch (ix->kid) {
	case KID_H_L2:
		return ix->ops->l2sq_h(a, b, ix->dim);
	case KID_H_NEGDOT:
		return -ix->ops->dot_h(a, b, ix->dim);
	case KID_R_L2:
	case KID_R_NEGDOT:
		knytt__resid_decode(ix, b, sc->kb);
		return ix->kid == KID_R_L2 ? ix->ops->l2sq(a, sc->kb, ix->dim)
					   : -ix->ops->dot(a, sc->kb, ix->dim);
	default:
		return key(ix, a, b);
	}
}

/* The left side of key_ss for node s's vector, compared with many: as
 * stored, or for residual codes decoded once (into sc's ka). */
static inline const void *ss_left(const knytt_index *ix, knytt__scratch *sc,
				  uint32_t s)
{
	if (!ix->qcells)
		return knytt__vecp(ix, s);
	knytt__resid_decode(ix, (const int8_t *)knytt__vecp(ix, s), sc->ka);
	return sc->ka;
}

float knytt__key(const knytt_index *ix, const void *q, const void *v)
{
	return key(ix, q, v);
}

/*
 * The start of a node's vector, ix->pf_bytes of it (up to 1 KB: the
 * whole of a 256-float vector, the first third of 768 floats; the
 * hardware streams the rest once the kernel reads on).  The walk fetches
 * vectors ix->pf_ahead neighbours ahead, so about 1 KB is on its way
 * while a distance is computed (index.c, knytt__index_layout).
 *
 * Measured with benchmarks/ann/run --pair (knytt and hnswlib in one
 * process, their queries timed in alternating slices, QPS per CPU
 * second, ef 10-24, load 5-9): the walk used to fetch the first two
 * lines of the neighbour two ahead (hnswlib fetches one line), and left
 * the distance kernel waiting on the rest: most of its time sat on the
 * loads (perf annotate).  knytt / hnswlib on emb768, two runs each,
 * interleaved: 1.10-1.12x as it was, 1.10-1.13x fetching whole vectors
 * one ahead (48 lines at a time are too many), 1.38-1.46x fetching 1 KB
 * one ahead, 1.38-1.43x 1 KB two ahead.  emb256 (1 KB vectors, whole
 * ones fetched): 1.03-1.12x before, 1.27-1.47x after.  On a quiet
 * machine after: 1.24-1.37x on emb256, emb512 and emb768 at ef 10-48.
 * On an index that fits in the caches it costs nothing that can be
 * seen: bigann10k (10k x 128), the pair driver built at f0634a0 (before),
 * at this code and at this code with the old loop, run in turn three
 * times each, gave 1.20-1.27x, 1.17-1.26x and 1.18-1.27x at ef 24 (two
 * separate quiet runs had suggested 1.23x -> 1.18x); synth100k (100k x
 * 128) went from 1.12-1.21x to 1.33-1.39x.
 * The upper levels' greedy descent fetched nothing ahead, its few nodes
 * taken to stay cached; on 100k x 512 they do not (perf record -g of
 * build/bench-ann/ann_knytt --dataset emb512 while it searches: 6% of
 * the time in greedy).  It now fetches like the walk, and the walk
 * fetches the links of the next candidate while it measures this one's
 * neighbours.  Measured with a switch for both put into the library for
 * the purpose (not kept: a branch in the walk), the same graph searched
 * with and without them in alternating slices in one process, 31-41
 * rounds, ef 10-48: +1-6% on emb512, 0-6% on bigann10k, the median
 * above 1.0 at 9 efs of 10 (0.999 at the tenth; each round's ratio
 * spreads by +-30% on this machine).
 */
static inline void prefetch_span(const void *p, size_t n)
{
	uintptr_t a = (uintptr_t)p, e = a + n;
	for (a &= ~(uintptr_t)63; a < e; a += 64)
		__builtin_prefetch((const void *)a, 0, 3);
}

static inline void prefetch_vec(const knytt_index *ix, uint32_t s)
{
	prefetch_span(knytt__vecp(ix, s), ix->pf_bytes);
}

/* the greedy descent's: the node's first line (its level) and vector */
static inline void prefetch_head_vec(const knytt_index *ix, uint32_t s)
{
	__builtin_prefetch(knytt__node(ix, s), 0, 3);
	prefetch_vec(ix, s);
}

/* node s's level-0 list: [n, links[m0]] from offset 4 of its block */
static inline void prefetch_links(const knytt_index *ix, uint32_t s)
{
	prefetch_span(knytt__node(ix, s), 8 + 4 * (size_t)ix->m0);
}

/* Keeps in todo[] the neighbours links[0..n) not visited yet (marking
 * them) and, above level 0, present on level l; returns their count. */
static inline uint32_t unvisited(const knytt_index *ix, uint32_t *tags,
				 uint32_t epoch, const uint32_t *links,
				 uint32_t n, int l, uint32_t *todo)
{
	uint32_t nt = 0;
	for (uint32_t j = 0; j < n; j++) {
		uint32_t nb = links[j];
		if (tags[nb] == epoch)
			continue;
		tags[nb] = epoch;
		if (l > 0 && knytt__level(ix, nb) < l)
			continue;
		todo[nt++] = nb;
	}
	return nt;
}

/* ------------------------------------------------------------ node locks */

static inline void nlock(const knytt_index *ix, uint32_t s)
{
	while (atomic_exchange_explicit(&ix->nlocks[s], 1,
					memory_order_acquire))
		cpu_relax();
}

static inline void nunlock(const knytt_index *ix, uint32_t s)
{
	atomic_store_explicit(&ix->nlocks[s], 0, memory_order_release);
}

/* Copies node s's level-l list into buf (under its lock when building);
 * returns the count. */
static inline uint32_t read_list(const knytt_index *ix, uint32_t s, int l,
				 uint32_t *buf, int locked)
{
	if (locked)
		nlock(ix, s);
	const uint32_t *lst = knytt__list(ix, s, l);
	uint32_t n = lst[0];
	memcpy(buf, lst + 1, n * sizeof *buf);
	if (locked)
		nunlock(ix, s);
	return n;
}

/* ------------------------------------------------------------------ walks */

static inline int passes(const knytt_index *ix, uint32_t s,
			 const knytt__filter *f)
{
	if (knytt__flags(ix, s) & NODE_DELETED)
		return 0;
	return !f || knytt__filter_pass(f, knytt__label(ix, s));
}

/* Greedy descent on levels top..bottom+1 from (*ep, *epd). */
static void greedy(const knytt_index *ix, const void *q, int top, int bottom,
		   uint32_t *ep, float *epd, int locked)
{
	uint32_t buf[130];
	uint32_t cur = *ep;
	float curd = *epd;
	for (int l = top; l > bottom; l--) {
		int changed = 1;
		while (changed) {
			changed = 0;
			uint32_t n = read_list(ix, cur, l, buf, locked);
			/* each neighbour's level (the block's first line) and
			 * vector fetched ahead, as in the walk: on an index
			 * larger than the caches the upper levels' nodes are
			 * not all cached either */
			uint32_t A = ix->pf_ahead;
			for (uint32_t j = 0; j < n && j < A; j++)
				prefetch_head_vec(ix, buf[j]);
			for (uint32_t j = 0; j < n; j++) {
				uint32_t nb = buf[j];
				if (j + A < n)
					prefetch_head_vec(ix, buf[j + A]);
				if (knytt__level(ix, nb) < l)
					continue;
				float d = key(ix, q, knytt__vecp(ix, nb));
				if (d < curd) {
					curd = d;
					cur = nb;
					changed = 1;
				}
			}
		}
	}
	*ep = cur;
	*epd = curd;
}

/*
 * Best-first walk on level @p l from one entry (Algorithm 2).  Leaves at
 * most ef results (passing nodes only) in sc->res.  Specialised by the
 * compiler for the query path (level 0, no locks, maybe no filter) and
 * the build path.
 */
static inline __attribute__((always_inline)) void
walk(const knytt_index *ix, knytt__scratch *sc, const void *q, uint32_t ep,
     float epd, size_t ef, int l, const knytt__filter *f, int locked,
     int may_skip)
{
	uint32_t epoch = new_epoch(sc);
	uint32_t *tags = sc->tags;
	uint32_t buf[130], todo[130];
	sc->nc = sc->nr = 0;
	tags[ep] = epoch;
	cpush(sc, epd, ep);
	if (!may_skip || passes(ix, ep, f))
		rpush(sc, epd, ep);
	float lb = sc->nr ? sc->res[0].d : INFINITY;

	while (sc->nc > 0) {
		knytt__cand c = sc->cand[0];
		if (c.d > lb && (sc->nr >= ef || !may_skip))
			break;
		cpop(sc);
		/* the next candidate's links (most often the next expanded),
		 * on their way while this one's neighbours are measured */
		if (l == 0 && sc->nc > 0)
			prefetch_links(ix, sc->cand[0].id);
		const uint32_t *links;
		uint32_t n;
		if (l == 0 && !locked) {
			const uint32_t *lst = knytt__list(ix, c.id, 0);
			n = lst[0];
			links = lst + 1;
		} else {
			n = read_list(ix, c.id, l, buf, locked);
			links = buf;
		}
		/* the unvisited first, then their distances, each vector
		 * fetched ahead (prefetch_vec) */
		uint32_t nt = unvisited(ix, tags, epoch, links, n, l, todo);
		uint32_t A = ix->pf_ahead;
		for (uint32_t j = 0; j < nt && j < A; j++)
			prefetch_vec(ix, todo[j]);
		for (uint32_t j = 0; j < nt; j++) {
			uint32_t nb = todo[j];
			if (j + A < nt)
				prefetch_vec(ix, todo[j + A]);
			float d = key(ix, q, knytt__vecp(ix, nb));
			if (sc->nr < ef || d < lb) {
				cpush(sc, d, nb);
				if (!may_skip || passes(ix, nb, f)) {
					rpush(sc, d, nb);
					if (sc->nr > ef)
						rpop(sc);
					lb = sc->res[0].d;
				}
			}
		}
	}
}

static int ensure_heaps(knytt__scratch *sc, const knytt_index *ix,
			size_t ef)
{
	/* candidates: every slot may enter once */
	size_t cneed = ef + (size_t)ix->m0 * 4 + 64;
	if (grow((void **)&sc->res, &sc->rcap, ef + 2, sizeof *sc->res) ||
	    grow((void **)&sc->cand, &sc->ccap, cneed, sizeof *sc->cand) ||
	    grow((void **)&sc->tmp, &sc->tmpcap, ef + 3 * ix->m0 + 8,
		 sizeof *sc->tmp) ||
	    (ix->qcells && grow((void **)&sc->kd, &sc->kdcap,
				((size_t)ix->m0 + 1) * ix->dim,
				sizeof *sc->kd)))
		return knytt__err(KNYTT_ENOMEM, "search scratch: out of memory");
	return 0;
}

/* The candidate heap can outgrow its first size on long filtered walks;
 * keep it at least as large as the number of slots that may enter. */
static int ensure_cand_full(knytt__scratch *sc, const knytt_index *ix)
{
	if (grow((void **)&sc->cand, &sc->ccap, ix->nslots + 1,
		 sizeof *sc->cand))
		return knytt__err(KNYTT_ENOMEM, "search scratch: out of memory");
	return 0;
}

long knytt__hnsw_search(const knytt_index *ix, knytt__scratch *sc,
			const void *q, size_t k, size_t ef,
			const knytt__filter *f)
{
	if (ix->maxlevel < 0)
		return 0;
	if (ef < k)
		ef = k;
	int rc = ensure_heaps(sc, ix, ef);
	if (rc || (rc = ensure_cand_full(sc, ix)))
		return rc;
	uint32_t ep = ix->entry;
	float epd = key(ix, q, knytt__vecp(ix, ep));
	greedy(ix, q, ix->maxlevel, 0, &ep, &epd, 0);
	if (!f && ix->nfree == 0)
		walk(ix, sc, q, ep, epd, ef, 0, NULL, 0, 0);
	else
		walk(ix, sc, q, ep, epd, ef, 0, f, 0, 1);
	/* tmp holds ef + 3 m0 entries (ensure_heaps) and the walk does not
	 * use it */
	return (long)rdrain(sc, sc->tmp);
}

size_t knytt__hnsw_scratch_entries(const knytt_index *ix)
{
	knytt__scratch *sc = knytt__scratch_get(ix);
	return sc ? sc->rcap + sc->ccap + sc->tmpcap : 0;
}

/* -------------------------------------------------------------- building */

/*
 * Algorithm 4 (heuristic): walk the candidates nearest first and keep one
 * only if it is closer to the base than to every neighbour kept so far,
 * so links spread in all directions instead of bunching in one cluster.
 * cands must be sorted; keeps at most @p m; returns the count kept
 * (moved to the front of cands).
 */
static size_t select_heuristic(const knytt_index *ix, knytt__scratch *sc,
			       knytt__cand *cands, size_t n, size_t m)
{
	if (ix->qcells) {
		/* residual codes: each candidate decoded once, the kept
		 * ones' decodings kept in kd (m0 + 1 rows, ensure_heaps) */
		size_t kept = 0, d = ix->dim;
		for (size_t i = 0; i < n && kept < m; i++) {
			knytt__cand c = cands[i];
			float *cv = sc->kd + kept * d;
			knytt__resid_decode(
				ix, (const int8_t *)knytt__vecp(ix, c.id), cv);
			int good = 1;
			for (size_t r = 0; r < kept && good; r++) {
				const float *rv = sc->kd + r * d;
				float k = ix->kid == KID_R_L2
						  ? ix->ops->l2sq(cv, rv, d)
						  : -ix->ops->dot(cv, rv, d);
				good = !(k < c.d);
			}
			if (good)
				cands[kept++] = c;
		}
		return kept;
	}
	size_t kept = 0;
	for (size_t i = 0; i < n && kept < m; i++) {
		knytt__cand c = cands[i];
		const void *cv = knytt__vecp(ix, c.id);
		int good = 1;
		for (size_t r = 0; r < kept; r++) {
			if (key_ss(ix, sc, cv, knytt__vecp(ix, cands[r].id)) <
			    c.d) {
				good = 0;
				break;
			}
		}
		if (good)
			cands[kept++] = c;
	}
	return kept;
}

static inline unsigned max_links(const knytt_index *ix, int l)
{
	return l == 0 ? ix->m0 : ix->m;
}

/* Adds @p s to the level-l list of @p n, pruning by the heuristic when
 * the list is full.  Takes n's lock. */
static void add_backlink(knytt_index *ix, knytt__scratch *sc, uint32_t n,
			 uint32_t s, int l)
{
	unsigned mx = max_links(ix, l);
	nlock(ix, n);
	uint32_t *lst = knytt__list(ix, n, l);
	uint32_t cnt = lst[0];
	for (uint32_t j = 0; j < cnt; j++)
		if (lst[1 + j] == s) {
			nunlock(ix, n);
			return;
		}
	if (cnt < mx) {
		lst[1 + cnt] = s;
		lst[0] = cnt + 1;
		nunlock(ix, n);
		return;
	}
	const void *nv = ss_left(ix, sc, n);
	knytt__cand *t = sc->tmp;
	size_t m = 0;
	t[m].id = s;
	t[m++].d = key_ss(ix, sc, nv, knytt__vecp(ix, s));
	for (uint32_t j = 0; j < cnt; j++) {
		uint32_t x = lst[1 + j];
		t[m].id = x;
		t[m++].d = key_ss(ix, sc, nv, knytt__vecp(ix, x));
	}
	qsort(t, m, sizeof *t, cmp_cand);
	size_t kept = select_heuristic(ix, sc, t, m, mx);
	for (size_t j = 0; j < kept; j++)
		lst[1 + j] = t[j].id;
	lst[0] = (uint32_t)kept;
	nunlock(ix, n);
}

int knytt__hnsw_insert(knytt_index *ix, uint32_t s)
{
	knytt__scratch *sc = knytt__scratch_get(ix);
	if (!sc || ensure_heaps(sc, ix, ix->efc) || ensure_cand_full(sc, ix))
		return knytt__err(KNYTT_ENOMEM, "insert: out of memory");
	int L = knytt__level(ix, s);
	const void *q = knytt__vecp(ix, s);
	if (ix->quant == KNYTT_QUANT_F16) {
		/* the walks take an f32 query: this node's halves widened
		 * (qf is free: only a search prepares a query in it) */
		knytt__f16_decode(q, sc->qf, ix->dim);
		q = sc->qf;
	} else if (ix->qcells) {
		/* residual codes: the walks take this node's decoded vector
		 * as their f32 query (prepared in sc) */
		knytt__resid_decode(ix, q, sc->qf);
		if (knytt__rq_prepare(ix, sc, sc->qf))
			return knytt__err(KNYTT_ENOMEM,
					  "insert: out of memory");
		q = sc;
	}

	pthread_mutex_lock(&ix->glock);
	int maxl = ix->maxlevel;
	uint32_t ep = ix->entry;
	if (maxl < 0) {
		ix->entry = s;
		ix->maxlevel = L;
		pthread_mutex_unlock(&ix->glock);
		return KNYTT_OK;
	}
	/* A node that raises the top level holds the global lock for its
	 * whole insert, so no other node can take the entry meanwhile. */
	int hold = L > maxl;
	if (!hold)
		pthread_mutex_unlock(&ix->glock);

	float epd = key(ix, q, knytt__vecp(ix, ep));
	greedy(ix, q, maxl, L, &ep, &epd, 1);
	for (int l = L < maxl ? L : maxl; l >= 0; l--) {
		walk(ix, sc, q, ep, epd, ix->efc, l, NULL, 1, 1);
		knytt__cand *w = sc->tmp;
		size_t nw = rdrain(sc, w), m = 0;
		/* drop s itself: stale links from a reused slot can reach it */
		for (size_t i = 0; i < nw; i++)
			if (w[i].id != s)
				w[m++] = w[i];
		if (m == 0)
			continue;
		ep = w[0].id;
		epd = w[0].d;
		size_t kept = select_heuristic(ix, sc, w, m, ix->m);
		/* w may be reused by add_backlink: copy the kept ids out */
		uint32_t sel[130];
		for (size_t i = 0; i < kept; i++)
			sel[i] = w[i].id;
		nlock(ix, s);
		uint32_t *lst = knytt__list(ix, s, l);
		for (size_t i = 0; i < kept; i++)
			lst[1 + i] = sel[i];
		lst[0] = (uint32_t)kept;
		nunlock(ix, s);
		for (size_t i = 0; i < kept; i++)
			add_backlink(ix, sc, sel[i], s, l);
	}
	if (hold) {
		ix->entry = s;
		ix->maxlevel = L;
		pthread_mutex_unlock(&ix->glock);
	}
	return KNYTT_OK;
}

int knytt__hnsw_unlink(knytt_index *ix, uint32_t s)
{
	knytt__scratch *sc = knytt__scratch_get(ix);
	if (!sc || ensure_heaps(sc, ix, ix->efc))
		return knytt__err(KNYTT_ENOMEM, "remove: out of memory");
	int L = knytt__level(ix, s);
	uint32_t dl[130];
	for (int l = 0; l <= L; l++) {
		uint32_t nd = read_list(ix, s, l, dl, 0);
		for (uint32_t i = 0; i < nd; i++) {
			uint32_t u = dl[i];
			if (u == s || (knytt__flags(ix, u) & NODE_DELETED) ||
			    knytt__level(ix, u) < l)
				continue;
			uint32_t *ul = knytt__list(ix, u, l);
			uint32_t nu = ul[0], j;
			for (j = 0; j < nu && ul[1 + j] != s; j++)
				;
			if (j == nu)
				continue; /* u does not link back */
			/* candidates: u's other links + s's links, deduped */
			uint32_t epoch = new_epoch(sc);
			sc->tags[u] = epoch;
			sc->tags[s] = epoch;
			knytt__cand *t = sc->tmp;
			size_t m = 0;
			const void *uv = ss_left(ix, sc, u);
			for (int pass = 0; pass < 2; pass++) {
				const uint32_t *src = pass ? dl : ul + 1;
				uint32_t ns = pass ? nd : nu;
				for (uint32_t x = 0; x < ns; x++) {
					uint32_t c = src[x];
					if (sc->tags[c] == epoch ||
					    (knytt__flags(ix, c) &
					     NODE_DELETED) ||
					    knytt__level(ix, c) < l)
						continue;
					sc->tags[c] = epoch;
					t[m].id = c;
					t[m++].d = key_ss(ix, sc, uv,
							  knytt__vecp(ix, c));
				}
			}
			qsort(t, m, sizeof *t, cmp_cand);
			size_t kept = select_heuristic(ix, sc, t, m,
						       max_links(ix, l));
			for (size_t x = 0; x < kept; x++)
				ul[1 + x] = t[x].id;
			ul[0] = (uint32_t)kept;
		}
	}
	return KNYTT_OK;
}

void knytt__hnsw_new_entry(knytt_index *ix)
{
	int best = -1;
	uint32_t e = 0;
	for (size_t s = 0; s < ix->nslots; s++) {
		if (knytt__flags(ix, (uint32_t)s) & NODE_DELETED)
			continue;
		int l = knytt__level(ix, (uint32_t)s);
		if (l > best) {
			best = l;
			e = (uint32_t)s;
			if (l == ix->maxlevel)
				break;
		}
	}
	ix->entry = e;
	ix->maxlevel = best;
}
