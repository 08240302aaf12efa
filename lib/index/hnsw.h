/*
 * hnsw.h -- graph operations and per-thread search scratch.  Not API.
 */
#ifndef KNYTT_HNSW_H
#define KNYTT_HNSW_H

#include "index_impl.h"

/* (key, slot) pair of the candidate and result heaps */
typedef struct knytt__cand {
	float d;
	uint32_t id;
} knytt__cand;

/*
 * Per-thread scratch.  The visited set is a tag array: slot s is visited
 * in the current walk when tags[s] == epoch.  Each walk takes a new epoch
 * from this thread's counter, so nothing is cleared between walks, and
 * because the counter is per thread (not per index) one array serves
 * every index the thread uses; it is cleared only when the 32-bit epoch
 * wraps.  Nothing here is shared between threads: the read path has no
 * shared mutable state.
 */
typedef struct knytt__scratch {
	uint32_t *tags;
	size_t tcap;
	uint32_t epoch;
	knytt__cand *cand, *res; /* min-heap, max-heap */
	size_t ccap, rcap;
	size_t nc, nr;
	float *qf; /* prepared query: normalized f32 ... */
	int8_t *qc; /* ... or int8 codes */
	size_t qcap;
	knytt__cand *tmp; /* selection and repair buffers */
	size_t tmpcap;
	/* Residual int8-only (KID_R_*, quant.c): the prepared query rq_q,
	 * and its view of each cell, filled when a walk first meets the
	 * cell (rq_tag[k] == rq_epoch): L2, the row rq_a + k dim is
	 * q - c_k - mid; IP/cosine, rq_e[k] is q.(c_k + mid), rq_qm is
	 * q.mid, and rq_a is q times the steps.  ka, kb: two decoded
	 * vectors (key_ss); kd: the decoded neighbours a selection kept
	 * (kdcap floats). */
	const float *rq_q;
	float *rq_a, *rq_e, *ka, *kb, *kd;
	float rq_qm;
	size_t kdcap;
	uint32_t *rq_tag;
	uint32_t rq_epoch;
	size_t rq_acap, rq_kcap; /* floats of rq_a; cells of rq_e, rq_tag */
} knytt__scratch;

/* The calling thread's scratch, sized for @p ix; NULL if out of memory. */
knytt__scratch *knytt__scratch_get(const knytt_index *ix);

typedef struct knytt__filter {
	knytt_filter_fn fn;
	void *ctx;
	const uint64_t *bits;
	size_t nbits;
	/* has_est: the caller knows about how many labels pass (est), so
	 * the search does not sample the predicate to guess it */
	int has_est;
	size_t est;
} knytt__filter;

/* Whether @p label passes filter @p f (NULL passes everything). */
static inline int knytt__filter_pass(const knytt__filter *f, uint64_t label)
{
	if (!f)
		return 1;
	if (f->bits)
		return label < f->nbits &&
		       (f->bits[label >> 6] >> (label & 63)) & 1;
	return f->fn(label, f->ctx) != 0;
}

/* Prepares @p sc for walks with the f32 query @p q (residual int8-only:
 * the walk's query is then sc itself).  0 or KNYTT_ENOMEM. */
int knytt__rq_prepare(const knytt_index *ix, knytt__scratch *sc,
		      const float *q);

/* Search key between a prepared query (or a stored vector) and the
 * stored vector @p v: smaller is closer; distance = key*kscale + koff. */
float knytt__key(const knytt_index *ix, const void *q, const void *v);

/* Links slot @p s (vector, level and label already written) into the
 * graph.  Safe to call from several threads at once (node locks). */
int knytt__hnsw_insert(knytt_index *ix, uint32_t s);

/* Repairs the neighbours of slot @p s before it is marked deleted. */
int knytt__hnsw_unlink(knytt_index *ix, uint32_t s);

/* Picks a live entry point after the entry was deleted. */
void knytt__hnsw_new_entry(knytt_index *ix);

/*
 * k-NN of the prepared query @p q on the graph; results (nearest first,
 * keys not yet scaled) go to sc->tmp[0..ret), valid until the thread's
 * next search or insert.  @p f may be NULL.  Caller holds the read lock.
 * Returns the count, or KNYTT_ENOMEM when the search buffers cannot grow
 * to @p ef (the caller bounds ef).
 */
long knytt__hnsw_search(const knytt_index *ix, knytt__scratch *sc,
			const void *q, size_t k, size_t ef,
			const knytt__filter *f);

/* Tests: with @p on, every growth of a search buffer fails, as if memory
 * ran out (process-wide; not for concurrent use). */
void knytt__hnsw_fail_growth(int on);
/* Tests: the capacities of the calling thread's search buffers, in
 * entries (result list + candidate heap + scratch). */
size_t knytt__hnsw_scratch_entries(const knytt_index *ix);

#endif
