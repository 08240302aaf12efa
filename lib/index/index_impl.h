/*
 * index_impl.h -- the internals of knytt_index, shared by the files of
 * lib/index.  Not API.
 *
 * Layout.  Every vector lives in a slot.  Level 0 of the graph is one
 * array of fixed-size blocks, one per slot, holding everything a search
 * touches for a node in one place (the hnswlib layout):
 *
 *   offset 0            uint16  level   top layer of the node (0..30)
 *          2            uint16  flags   NODE_DELETED
 *          4            uint32  n       links in use on level 0
 *          8            uint32  links[m0]
 *
 * so that, from offset 4, level 0 has the same [n, links...] shape as
 * the upper-level lists.
 *          off_label    uint64  label
 *          off_vec      vector: dim floats, dim f16 halves, or dim int8
 *                       codes (residual codes: and their cell's number,
 *                       one byte)
 *
 * off_vec and the block size are multiples of 64 (a cache line), so on
 * the 64-byte aligned array every vector starts a line: it spans
 * vbytes / 64 lines instead of one more, and no 64-byte load of the
 * AVX-512 kernels straddles two lines.  That costs up to 63 bytes of
 * padding per node (+7% of a 128-d node: 704 bytes for 656) and was
 * worth 6-16% of single-thread QPS on 128-d data and about 3% on 512-d
 * (the same graph built in both layouts in one process, through a
 * switch put into the library for the purpose, the two searched in
 * alternating slices).  Against hnswlib, benchmarks/ann/run --pair 3
 * --graphs 4 at the commit before and after: 1.16x -> 1.31x on
 * bigann10k and 1.16x -> 1.28x on emb512 at recall 0.95.
 * KNYTT_QUANT_INT8_ONLY, the mode chosen for memory, keeps the packed
 * layout (off_vec = off_label + 8, blocks of 16 bytes): on 128-d codes
 * the padding would be 18% of the index for 4-9% of QPS.  Files of
 * format version 1 have the packed layout in every mode: an index
 * loaded from one keeps it (format1) and saves as version 1 again.
 *
 * Upper levels (only ~1/m of the nodes have any) live in one uint32
 * pool: uoff[slot] points at the node's level-1 list, each list being
 * [n, links[m]]; pool[uoff - 1] is the number of levels allocated there,
 * so a reused slot keeps its allocation when its new level fits.
 * uoff == 0 means no upper levels (pool[0] is never handed out).
 *
 * Deleted slots keep their vector and links (they still route searches)
 * until an add reuses them; the free list holds them, newest last.
 */
#ifndef KNYTT_INDEX_IMPL_H
#define KNYTT_INDEX_IMPL_H

#include "../internal.h"
#include "../vec/topk.h"
#include "../vec/vec.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define NODE_DELETED 1u
#define KNYTT__MAX_LEVEL 30
#define KNYTT__MAX_DIM 65536u

/* Which kernel computes the search key (see dist_key in hnsw.c). */
enum { KID_F32_L2, KID_F32_NEGDOT, KID_I8_L2, KID_I8_NEGDOT, KID_H_L2,
       KID_H_NEGDOT, KID_R_L2, KID_R_NEGDOT };

struct knytt_index {
	int is_open;
	knytt_index_kind kind;
	knytt_metric metric;
	knytt_quant quant;
	uint32_t dim;
	unsigned m;          /* links per node on levels >= 1 */
	unsigned m0;         /* links per node on level 0 (2m; 0 for flat) */
	unsigned efc;        /* ef while building */
	unsigned ef_default; /* ef when a search passes 0 */
	uint64_t seed;
	uint64_t rng;        /* level generator state (writers only) */
	double ml;           /* 1 / ln(m): level multiplier of the paper */

	/* block geometry, bytes */
	size_t block, off_label, off_vec, vbytes;
	size_t pf_bytes;   /* of a vector fetched ahead in a walk, */
	uint32_t pf_ahead; /* that many vectors ahead (hnsw.c) */

	size_t cap;    /* slots allocated */
	size_t nslots; /* slots ever used (high-water mark) */
	size_t count;  /* live vectors */
	unsigned char *l0;
	uint32_t *uoff;
	uint32_t *upool;
	size_t upool_n, upool_cap; /* uint32 entries */
	float *f32;                /* cap * dim, KNYTT_QUANT_INT8 only */
	uint32_t *freel;
	size_t nfree, free_cap;
	knytt__lmap labels;
	uint32_t entry;
	int maxlevel; /* -1 while empty */
	int format1;  /* read from a version-1 file: its packed layout, kept */

	/* int8 quantization: code = round((x - mid) / step), clipped to
	 * [-127, 127].  For IP/cosine mid is 0 (so products stay products). */
	int qtrained;
	float *qmid; /* dim */
	float qstep;
	/* INT8_ONLY's residual codes (quant.c), when training chose them
	 * (qcells > 0): a node is coded as its residual from the nearest
	 * of qcells centres, less qmid, in steps of qsv (one per
	 * dimension); its cell's number is the byte after its codes. */
	uint32_t qcells;
	float *qcen; /* qcells x dim */
	float *qsv;  /* dim */

	/* an opaque tag its owner sets and finds again after a load (the
	 * engine: which store, tenant and model the file was built for);
	 * all zero = none.  Header bytes 176..207 of the file. */
	unsigned char owner[KNYTT__INDEX_OWNER];

	/* key -> distance: dist = key * kscale + koff */
	int kid;
	float kscale, koff;
	const knytt__vec_ops *ops;
	/* the f32 kernel of kid, cached: one load less per distance */
	float (*kf32)(const float *, const float *, size_t);

	pthread_rwlock_t rw;     /* searches: read; writes: write */
	pthread_mutex_t glock;   /* entry/maxlevel during parallel build */
	_Atomic unsigned char *nlocks; /* per-slot spin locks (build) */
	uint64_t gen;            /* unique per handle, for scratch reuse */
	/* writes since the handle was created, bumped under rw's write
	 * lock by every add, upsert, remove and quantizer training: a
	 * caller that kept a search's answer knows it still stands while
	 * (gen, writes) are the same (knytt__index_writes) */
	_Atomic uint64_t writes;

	void *map; /* mmap of a loaded file, or NULL */
	size_t maplen;
	int l0_mapped, f32_mapped;
};

static inline unsigned char *knytt__node(const knytt_index *ix, uint32_t s)
{
	return ix->l0 + (size_t)s * ix->block;
}
static inline uint32_t *knytt__links0(const knytt_index *ix, uint32_t s)
{
	return (uint32_t *)(knytt__node(ix, s) + 8);
}
static inline uint16_t knytt__level(const knytt_index *ix, uint32_t s)
{
	uint16_t l;
	memcpy(&l, knytt__node(ix, s), 2);
	return l;
}
static inline uint16_t knytt__flags(const knytt_index *ix, uint32_t s)
{
	uint16_t f;
	memcpy(&f, knytt__node(ix, s) + 2, 2);
	return f;
}
static inline uint64_t knytt__label(const knytt_index *ix, uint32_t s)
{
	uint64_t l;
	memcpy(&l, knytt__node(ix, s) + ix->off_label, 8);
	return l;
}
static inline const unsigned char *knytt__vecp(const knytt_index *ix,
					       uint32_t s)
{
	return knytt__node(ix, s) + ix->off_vec;
}
/* list of node s on level l: [n, links...]; level 0 -> the block */
static inline uint32_t *knytt__list(const knytt_index *ix, uint32_t s,
				    int l)
{
	if (l == 0)
		return (uint32_t *)(knytt__node(ix, s) + 4);
	return ix->upool + ix->uoff[s] + (size_t)(l - 1) * (ix->m + 1);
}

/* the modes with an int8 quantizer (codes, midpoints, a step) */
static inline int knytt__is_i8(const knytt_index *ix)
{
	return ix->quant == KNYTT_QUANT_INT8 ||
	       ix->quant == KNYTT_QUANT_INT8_ONLY;
}

/* geometry and kernels from the settings; called by open and load */
int knytt__index_layout(knytt_index *ix);
/* grow every per-slot array to hold at least @p need slots */
int knytt__index_reserve(knytt_index *ix, size_t need);
/* encode one f32 vector into int8 codes with the trained parameters */
void knytt__quant_encode(const knytt_index *ix, const float *x, int8_t *c);
void knytt__quant_decode(const knytt_index *ix, const int8_t *c, float *x);
int knytt__quant_train(knytt_index *ix, size_t n, const float *v);

/* The residual codes' decoded vector (residual INT8_ONLY): cell k's
 * centre plus qmid plus the codes times their steps. */
static inline void knytt__resid_decode(const knytt_index *ix,
				       const int8_t *c, float *x)
{
	const float *cen = ix->qcen + (size_t)((const uint8_t *)c)[ix->dim] *
					      ix->dim;
	for (uint32_t j = 0; j < ix->dim; j++)
		x[j] = cen[j] + ix->qmid[j] + ix->qsv[j] * (float)c[j];
}

#endif
