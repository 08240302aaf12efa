/*
 * index.c -- knytt_index: life cycle, settings, storage of vectors and
 * labels, writes (add, upsert, batch, remove) and reads (get, search,
 * filtered and batch search).  The graph itself is in hnsw.c, the file
 * format in io.c, quantization in quant.c.
 *
 * Locking: one rwlock per index.  Searches and other reads take it
 * shared, writes exclusive; the lock is taken once per call, never per
 * node or per distance.  add_batch holds it exclusively while several
 * threads link nodes under per-node spin locks (hnsw.c).  The lock is
 * writer-preferring, so a steady stream of searches cannot starve a
 * writer.
 */
#include "../vec/half.h"
#include "hnsw.h"

#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

static _Atomic uint64_t next_gen = 1;

/* ------------------------------------------------------------ life cycle */

int knytt_index_create(knytt_index **out)
{
	if (!out)
		return knytt__err(KNYTT_EINVAL, "knytt_index_create: out is NULL");
	knytt_index *ix = calloc(1, sizeof *ix);
	if (!ix)
		return knytt__err(KNYTT_ENOMEM, "knytt_index_create: out of memory");
	ix->kind = KNYTT_INDEX_HNSW;
	ix->metric = KNYTT_METRIC_L2;
	ix->quant = KNYTT_QUANT_NONE;
	ix->m = 16;
	ix->efc = 200;
	ix->ef_default = 64;
	ix->seed = 42;
	ix->maxlevel = -1;
	pthread_rwlockattr_t a;
	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(
		&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&ix->rw, &a);
	pthread_rwlockattr_destroy(&a);
	pthread_mutex_init(&ix->glock, NULL);
	ix->gen = atomic_fetch_add(&next_gen, 1);
	*out = ix;
	return KNYTT_OK;
}

void knytt_index_close(knytt_index *ix)
{
	if (!ix)
		return;
	if (!ix->l0_mapped)
		free(ix->l0);
	if (!ix->f32_mapped)
		free(ix->f32);
	if (ix->map)
		munmap(ix->map, ix->maplen);
	free(ix->uoff);
	free(ix->upool);
	free(ix->freel);
	free((void *)ix->nlocks);
	free(ix->qmid);
	free(ix->qcen);
	free(ix->qsv);
	knytt__lmap_free(&ix->labels);
	pthread_rwlock_destroy(&ix->rw);
	pthread_mutex_destroy(&ix->glock);
	free(ix);
}

#define SETTER_PROLOGUE(fn)                                                 \
	if (!ix)                                                            \
		return knytt__err(KNYTT_EINVAL, fn ": index is NULL");      \
	if (ix->is_open)                                                    \
		return knytt__err(KNYTT_ESTATE,                             \
				  fn ": settings are fixed once the index " \
				     "is open")

int knytt_index_set_kind(knytt_index *ix, knytt_index_kind kind)
{
	SETTER_PROLOGUE("knytt_index_set_kind");
	if (kind != KNYTT_INDEX_HNSW && kind != KNYTT_INDEX_FLAT)
		return knytt__err(KNYTT_EINVAL, "kind %d is not HNSW or FLAT",
				  (int)kind);
	ix->kind = kind;
	return KNYTT_OK;
}

int knytt_index_set_metric(knytt_index *ix, knytt_metric metric)
{
	SETTER_PROLOGUE("knytt_index_set_metric");
	if (metric != KNYTT_METRIC_L2 && metric != KNYTT_METRIC_IP &&
	    metric != KNYTT_METRIC_COSINE)
		return knytt__err(KNYTT_EINVAL, "metric %d is not L2, IP or "
						"COSINE",
				  (int)metric);
	ix->metric = metric;
	return KNYTT_OK;
}

int knytt_index_set_m(knytt_index *ix, unsigned m)
{
	SETTER_PROLOGUE("knytt_index_set_m");
	if (m == 0)
		m = 16;
	if (m < 2 || m > 64)
		return knytt__err(KNYTT_EINVAL, "M is %u, must be 2..64", m);
	ix->m = m;
	return KNYTT_OK;
}

int knytt_index_set_ef_construction(knytt_index *ix, unsigned ef)
{
	SETTER_PROLOGUE("knytt_index_set_ef_construction");
	if (ef == 0)
		ef = 200;
	if (ef > 100000)
		return knytt__err(KNYTT_EINVAL,
				  "ef_construction is %u, must be 1..100000",
				  ef);
	ix->efc = ef;
	return KNYTT_OK;
}

int knytt_index_set_ef_search(knytt_index *ix, unsigned ef)
{
	SETTER_PROLOGUE("knytt_index_set_ef_search");
	if (ef > KNYTT_INDEX_MAX_EF)
		return knytt__err(KNYTT_EINVAL,
				  "ef_search is %u, must be 1..%d", ef,
				  KNYTT_INDEX_MAX_EF);
	ix->ef_default = ef ? ef : 64;
	return KNYTT_OK;
}

int knytt_index_set_quant(knytt_index *ix, knytt_quant quant)
{
	SETTER_PROLOGUE("knytt_index_set_quant");
	if (quant != KNYTT_QUANT_NONE && quant != KNYTT_QUANT_INT8 &&
	    quant != KNYTT_QUANT_INT8_ONLY && quant != KNYTT_QUANT_F16)
		return knytt__err(KNYTT_EINVAL, "quant mode %d is unknown",
				  (int)quant);
	ix->quant = quant;
	return KNYTT_OK;
}

int knytt_index_set_seed(knytt_index *ix, uint64_t seed)
{
	SETTER_PROLOGUE("knytt_index_set_seed");
	ix->seed = seed;
	return KNYTT_OK;
}

int knytt__index_layout(knytt_index *ix)
{
	ix->m0 = ix->kind == KNYTT_INDEX_FLAT ? 0 : 2 * ix->m;
	ix->vbytes = ix->quant == KNYTT_QUANT_NONE  ? (size_t)ix->dim * 4
		     : ix->quant == KNYTT_QUANT_F16 ? (size_t)ix->dim * 2
						    : ix->dim + (ix->qcells > 0);
	ix->off_label = 8 + 4 * (size_t)ix->m0;
	ix->off_vec = ix->off_label + 8;
	if (ix->format1 || ix->quant == KNYTT_QUANT_INT8_ONLY) {
		ix->block = (ix->off_vec + ix->vbytes + 15) & ~(size_t)15;
	} else {
		ix->off_vec = (ix->off_vec + 63) & ~(size_t)63;
		ix->block = (ix->off_vec + ix->vbytes + 63) & ~(size_t)63;
	}
	/* the walk fetches up to 1 KB of a vector, that many vectors
	 * ahead, about 1 KB in all (hnsw.c, prefetch_vec) */
	ix->pf_bytes = ix->vbytes < 1024 ? ix->vbytes : 1024;
	ix->pf_ahead = ix->vbytes >= 512 ? (ix->vbytes >= 1024 ? 1 : 2)
		       : ix->vbytes >= 256 ? 4 : 8;
	ix->ml = 1.0 / log((double)ix->m);
	ix->ops = knytt__vec();
	int neg = ix->metric != KNYTT_METRIC_L2;
	ix->koff = ix->metric == KNYTT_METRIC_COSINE ? 1.0f : 0.0f;
	ix->kf32 = neg ? ix->ops->dot : ix->ops->l2sq;
	if (ix->quant == KNYTT_QUANT_NONE) {
		ix->kid = neg ? KID_F32_NEGDOT : KID_F32_L2;
		ix->kscale = 1.0f;
	} else if (ix->quant == KNYTT_QUANT_F16) {
		ix->kid = neg ? KID_H_NEGDOT : KID_H_L2;
		ix->kscale = 1.0f;
	} else if (ix->qcells) {
		ix->kid = neg ? KID_R_NEGDOT : KID_R_L2;
		ix->kscale = 1.0f;
	} else {
		ix->kid = neg ? KID_I8_NEGDOT : KID_I8_L2;
		ix->kscale = ix->qstep * ix->qstep;
	}
	return KNYTT_OK;
}

int knytt_index_open(knytt_index *ix, uint32_t dim)
{
	if (!ix)
		return knytt__err(KNYTT_EINVAL, "knytt_index_open: index is NULL");
	if (ix->is_open)
		return knytt__err(KNYTT_ESTATE, "index is already open");
	if (dim == 0 || dim > KNYTT__MAX_DIM)
		return knytt__err(KNYTT_EINVAL, "dim is %u, must be 1..%u", dim,
				  KNYTT__MAX_DIM);
	ix->dim = dim;
	ix->rng = ix->seed;
	if (knytt__is_i8(ix)) {
		ix->qmid = calloc(dim, sizeof *ix->qmid);
		if (!ix->qmid)
			return knytt__err(KNYTT_ENOMEM, "out of memory");
	}
	ix->upool_n = 1; /* offset 0 means "no upper levels" */
	knytt__index_layout(ix);
	ix->is_open = 1;
	return KNYTT_OK;
}

/* ---------------------------------------------------------------- storage */

/*
 * Arrays of 4 MiB and more sit on 2 MiB pages where the kernel offers
 * them (knytt__big_realloc): a walk reads one node after another at
 * random, and on 4 KiB pages each costs a page walk of its own.  With
 * them, knytt's QPS per CPU second on emb256 (benchmarks/ann/run --pair,
 * one process, interleaved with hnswlib) went from 1.03-1.07x hnswlib's
 * to 1.11-1.15x at ef 10-32, before the walk's prefetching (hnsw.c) was
 * changed.  A loaded index reads its file's pages until it grows.
 */
static int grow_array(void **p, size_t old_n, size_t new_n, size_t elem,
		      int *mapped)
{
	void *q;
	if (mapped && *mapped) {
		q = knytt__big_realloc(NULL, 0, new_n * elem);
		if (q && old_n)
			memcpy(q, *p, old_n * elem);
	} else {
		q = knytt__big_realloc(*p, old_n * elem, new_n * elem);
	}
	if (!q)
		return -1;
	memset((char *)q + old_n * elem, 0, (new_n - old_n) * elem);
	*p = q;
	if (mapped)
		*mapped = 0;
	return 0;
}

int knytt__index_reserve(knytt_index *ix, size_t need)
{
	if (need <= ix->cap)
		return KNYTT_OK;
	if (need > (size_t)UINT32_MAX - 16)
		return knytt__err(KNYTT_ERANGE,
				  "index is full: %zu vectors requested, at "
				  "most %u",
				  need, UINT32_MAX - 16);
	size_t nc = ix->cap + ix->cap / 2;
	if (nc < need)
		nc = need;
	if (nc < 64)
		nc = 64;
	/* the nslots valid entries are copied; the rest is zeroed */
	if (grow_array((void **)&ix->l0, ix->cap, nc, ix->block,
		       &ix->l0_mapped) ||
	    grow_array((void **)&ix->uoff, ix->cap, nc, sizeof *ix->uoff,
		       NULL) ||
	    grow_array((void **)&ix->nlocks, ix->cap, nc, 1, NULL) ||
	    (ix->quant == KNYTT_QUANT_INT8 &&
	     grow_array((void **)&ix->f32, ix->cap, nc,
			(size_t)ix->dim * sizeof(float), &ix->f32_mapped)))
		return knytt__err(KNYTT_ENOMEM,
				  "out of memory growing the index to %zu "
				  "slots",
				  nc);
	ix->cap = nc;
	return KNYTT_OK;
}

static int reserve_upool(knytt_index *ix, size_t extra)
{
	size_t need = ix->upool_n + extra;
	if (need <= ix->upool_cap)
		return KNYTT_OK;
	if (need > UINT32_MAX)
		return knytt__err(KNYTT_ERANGE, "upper-level pool is full");
	size_t nc = ix->upool_cap * 2 > need ? ix->upool_cap * 2 : need;
	if (nc < 256)
		nc = 256;
	if (grow_array((void **)&ix->upool, ix->upool_cap, nc,
		       sizeof *ix->upool, NULL))
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	ix->upool_cap = nc;
	return KNYTT_OK;
}

static int random_level(knytt_index *ix)
{
	if (ix->kind == KNYTT_INDEX_FLAT)
		return 0;
	double u = 1.0 - knytt__randu(&ix->rng); /* (0, 1] */
	int l = (int)(-log(u) * ix->ml);
	return l > KNYTT__MAX_LEVEL ? KNYTT__MAX_LEVEL : l;
}

/* upool entries a node of level L may need (0 if its slot's allocation
 * already fits) */
static size_t upper_need(const knytt_index *ix, uint32_t s, int L,
			 int reused)
{
	if (L == 0)
		return 0;
	if (reused && ix->uoff[s] && (int)ix->upool[ix->uoff[s] - 1] >= L)
		return 0;
	return 1 + (size_t)L * (ix->m + 1);
}

/* Writes the vector, label and level of slot s; space is reserved. */
static void fill_slot(knytt_index *ix, uint32_t s, uint64_t label, int L,
		      const float *x, float *tmp, int reused)
{
	unsigned char *node = knytt__node(ix, s);
	memset(node, 0, ix->off_vec);
	uint16_t lv = (uint16_t)L;
	memcpy(node, &lv, 2);
	memcpy(node + ix->off_label, &label, 8);
	if (L > 0) {
		if (!(reused && ix->uoff[s] &&
		      (int)ix->upool[ix->uoff[s] - 1] >= L)) {
			ix->upool[ix->upool_n] = (uint32_t)L;
			ix->uoff[s] = (uint32_t)ix->upool_n + 1;
			ix->upool_n += 1 + (size_t)L * (ix->m + 1);
		}
		for (int l = 1; l <= L; l++)
			knytt__list(ix, s, l)[0] = 0;
	}
	const float *v = x;
	if (ix->metric == KNYTT_METRIC_COSINE) {
		memcpy(tmp, x, ix->dim * sizeof *tmp);
		knytt__normalize(tmp, ix->dim);
		v = tmp;
	}
	if (ix->quant == KNYTT_QUANT_NONE) {
		memcpy(node + ix->off_vec, v, ix->dim * sizeof(float));
	} else if (ix->quant == KNYTT_QUANT_F16) {
		knytt__f16_encode(v, (uint16_t *)(node + ix->off_vec), ix->dim);
	} else {
		knytt__quant_encode(ix, v, (int8_t *)(node + ix->off_vec));
		if (ix->quant == KNYTT_QUANT_INT8)
			memcpy(ix->f32 + (size_t)s * ix->dim, v,
			       ix->dim * sizeof(float));
	}
}

/* ------------------------------------------------------------- validation */

static int check_open(const knytt_index *ix, const char *fn)
{
	if (!ix)
		return knytt__err(KNYTT_EINVAL, "%s: index is NULL", fn);
	if (!ix->is_open)
		return knytt__err(KNYTT_ESTATE,
				  "%s: index is not open (call "
				  "knytt_index_open or knytt_index_load)",
				  fn);
	return KNYTT_OK;
}

/*
 * A vector passed in: not NULL, the index's dimension, every value
 * finite; one to be stored (@p stores) in an f16 index also within
 * +-65504 (cosine stores unit vectors, so any finite input fits there;
 * queries keep f32 and are not limited).  @p row names the row of a
 * batch, SIZE_MAX none.
 */
static int check_vec(const knytt_index *ix, const float *v, uint32_t dim,
		     const char *what, size_t row, int stores)
{
	if (!v)
		return knytt__err(KNYTT_EINVAL, "%s is NULL", what);
	if (dim != ix->dim)
		return knytt__err(KNYTT_EINVAL,
				  "%s has %u dimensions, index has %u", what,
				  dim, ix->dim);
	float lim = stores && ix->quant == KNYTT_QUANT_F16 &&
				    ix->metric != KNYTT_METRIC_COSINE
			    ? KNYTT__HALF_MAX
			    : FLT_MAX;
	for (uint32_t j = 0; j < dim; j++)
		if (!(fabsf(v[j]) <= lim)) { /* NaN fails too */
			char at[48] = "";
			if (row != SIZE_MAX)
				snprintf(at, sizeof at, " row %zu", row);
			if (!isfinite(v[j]))
				return knytt__err(KNYTT_EINVAL,
						  "%s%s: value %u is not "
						  "finite",
						  what, at, j);
			return knytt__err(KNYTT_EINVAL,
					  "%s%s: value %u is %g, outside the "
					  "f16 index's range (+-65504)",
					  what, at, j, (double)v[j]);
		}
	return KNYTT_OK;
}

/* ----------------------------------------------------------------- writes */

int knytt_index_train_quant(knytt_index *ix, size_t n, const float *v,
			    uint32_t dim)
{
	int rc = check_open(ix, "knytt_index_train_quant");
	if (rc)
		return rc;
	if (!knytt__is_i8(ix))
		return knytt__err(KNYTT_ENOTSUP,
				  ix->quant == KNYTT_QUANT_F16
					  ? "an f16 index has no quantizer "
					    "to train"
					  : "index is not quantized "
					    "(set_quant)");
	if (n == 0)
		return knytt__err(KNYTT_EINVAL, "n is 0: no sample vectors");
	for (size_t i = 0; i < n; i++)
		if ((rc = check_vec(ix, v ? v + i * ix->dim : NULL, dim,
				    "vectors", i, 0)))
			return rc;
	pthread_rwlock_wrlock(&ix->rw);
	if (ix->nslots > 0)
		rc = knytt__err(KNYTT_ESTATE,
				"the quantizer is trained before the first "
				"add; this index has vectors");
	else
		rc = knytt__quant_train(ix, n, v);
	atomic_fetch_add(&ix->writes, 1);
	pthread_rwlock_unlock(&ix->rw);
	return rc;
}

static int remove_locked(knytt_index *ix, uint32_t s);

/* Inserts n vectors whose labels are known to be absent and distinct. */
typedef struct batch_job {
	knytt_index *ix;
	const uint32_t *slots;
	size_t n;
	_Atomic size_t next;
	_Atomic int rc;
	uint8_t *failed;
} batch_job;

static void batch_worker(void *p, unsigned t)
{
	(void)t;
	batch_job *j = p;
	for (;;) {
		size_t i = atomic_fetch_add(&j->next, 1);
		if (i >= j->n)
			break;
		if (knytt__hnsw_insert(j->ix, j->slots[i]) != KNYTT_OK) {
			j->failed[i] = 1;
			atomic_store(&j->rc, KNYTT_ENOMEM);
		}
	}
}

static int insert_many(knytt_index *ix, size_t n, const uint64_t *labels,
		       const float *v, unsigned nthreads)
{
	int rc;
	if (knytt__is_i8(ix) && !ix->qtrained &&
	    (rc = knytt__quant_train(ix, n, v)))
		return rc;
	/* reserve everything first: after this, filling cannot fail */
	size_t fresh = n > ix->nfree ? n - ix->nfree : 0;
	if ((rc = knytt__index_reserve(ix, ix->nslots + fresh)) ||
	    (rc = knytt__lmap_reserve(&ix->labels, ix->count + n)))
		return rc;
	uint32_t *slots = malloc(n * sizeof *slots);
	int *levels = malloc(n * sizeof *levels);
	uint8_t *failed = calloc(n, 1);
	float *tmp = malloc(ix->dim * sizeof *tmp);
	if (!slots || !levels || !failed || !tmp) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		goto out;
	}
	size_t upneed = 0, nf = ix->nfree, ns = ix->nslots;
	uint64_t rng = ix->rng;
	for (size_t i = 0; i < n; i++) {
		levels[i] = random_level(ix);
		int reused = nf > 0;
		slots[i] = reused ? ix->freel[--nf] : (uint32_t)ns++;
		upneed += upper_need(ix, slots[i], levels[i], reused);
	}
	if ((rc = reserve_upool(ix, upneed))) {
		ix->rng = rng;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		int reused = ix->nfree > 0;
		if (reused)
			ix->nfree--;
		else
			ix->nslots++;
		fill_slot(ix, slots[i], labels[i], levels[i],
			  v + i * ix->dim, tmp, reused);
		knytt__lmap_put(&ix->labels, labels[i], slots[i]);
		ix->count++;
	}
	if (ix->kind == KNYTT_INDEX_HNSW) {
		batch_job job = { .ix = ix, .slots = slots, .n = n,
				  .failed = failed };
		unsigned nt = knytt__threads(nthreads);
		knytt__fork_join(nt > n ? (unsigned)n : nt, batch_worker, &job);
		rc = atomic_load(&job.rc);
		/* a node whose insert failed was never linked: drop it */
		for (size_t i = 0; i < n; i++)
			if (failed[i])
				remove_locked(ix, slots[i]);
		if (rc)
			knytt__err(rc, "out of memory linking %zu vectors", n);
	}
out:
	free(slots);
	free(levels);
	free(failed);
	free(tmp);
	return rc;
}

static int remove_locked(knytt_index *ix, uint32_t s)
{
	int rc;
	if (ix->kind == KNYTT_INDEX_HNSW && (rc = knytt__hnsw_unlink(ix, s)))
		return rc;
	if (ix->nfree == ix->free_cap) {
		size_t nc = ix->free_cap ? ix->free_cap * 2 : 64;
		uint32_t *f = realloc(ix->freel, nc * sizeof *f);
		if (!f)
			return knytt__err(KNYTT_ENOMEM, "out of memory");
		ix->freel = f;
		ix->free_cap = nc;
	}
	unsigned char *node = knytt__node(ix, s);
	uint16_t fl = NODE_DELETED;
	memcpy(node + 2, &fl, 2);
	knytt__lmap_del(&ix->labels, knytt__label(ix, s));
	ix->freel[ix->nfree++] = s;
	ix->count--;
	if (ix->kind == KNYTT_INDEX_HNSW && s == ix->entry) {
		if (ix->count == 0)
			ix->maxlevel = -1;
		else
			knytt__hnsw_new_entry(ix);
	}
	return KNYTT_OK;
}

static int add_one(knytt_index *ix, uint64_t label, const float *v,
		   uint32_t dim, int replace, const char *fn)
{
	int rc = check_open(ix, fn);
	if (rc || (rc = check_vec(ix, v, dim, "vector", SIZE_MAX, 1)))
		return rc;
	pthread_rwlock_wrlock(&ix->rw);
	uint32_t old = knytt__lmap_get(&ix->labels, label);
	if (old != LMAP_EMPTY && !replace) {
		rc = knytt__err(KNYTT_EEXIST,
				"label %llu is already in the index (use "
				"knytt_index_upsert to replace it)",
				(unsigned long long)label);
	} else {
		/* Check capacity before removing, so a failed upsert keeps
		 * the old vector. */
		rc = knytt__index_reserve(ix, ix->nslots +
						      (ix->nfree ? 0 : 1));
		if (!rc)
			rc = reserve_upool(ix, 1 + (size_t)KNYTT__MAX_LEVEL *
							   (ix->m + 1));
		if (!rc && old != LMAP_EMPTY)
			rc = remove_locked(ix, old);
		if (!rc)
			rc = insert_many(ix, 1, &label, v, 1);
	}
	atomic_fetch_add(&ix->writes, 1);
	pthread_rwlock_unlock(&ix->rw);
	return rc;
}

int knytt_index_add(knytt_index *ix, uint64_t label, const float *v,
		    uint32_t dim)
{
	return add_one(ix, label, v, dim, 0, "knytt_index_add");
}

int knytt_index_upsert(knytt_index *ix, uint64_t label, const float *v,
		       uint32_t dim)
{
	return add_one(ix, label, v, dim, 1, "knytt_index_upsert");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int knytt_index_add_batch(knytt_index *ix, size_t n, const uint64_t *labels,
			  const float *v, uint32_t dim, unsigned nthreads)
{
	int rc = check_open(ix, "knytt_index_add_batch");
	if (rc)
		return rc;
	if (n == 0)
		return KNYTT_OK;
	if (!labels)
		return knytt__err(KNYTT_EINVAL, "labels is NULL");
	for (size_t i = 0; i < n; i++)
		if ((rc = check_vec(ix, v ? v + i * ix->dim : NULL, dim,
				    "vectors", i, 1)))
			return rc;
	uint64_t *sorted = malloc(n * sizeof *sorted);
	if (!sorted)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	memcpy(sorted, labels, n * sizeof *sorted);
	qsort(sorted, n, sizeof *sorted, cmp_u64);
	for (size_t i = 1; i < n; i++)
		if (sorted[i] == sorted[i - 1]) {
			rc = knytt__err(KNYTT_EINVAL,
					"label %llu appears twice in the batch",
					(unsigned long long)sorted[i]);
			free(sorted);
			return rc;
		}
	free(sorted);
	pthread_rwlock_wrlock(&ix->rw);
	for (size_t i = 0; i < n && !rc; i++)
		if (knytt__lmap_get(&ix->labels, labels[i]) != LMAP_EMPTY)
			rc = knytt__err(KNYTT_EEXIST,
					"label %llu (row %zu) is already in "
					"the index",
					(unsigned long long)labels[i], i);
	if (!rc)
		rc = insert_many(ix, n, labels, v, nthreads);
	atomic_fetch_add(&ix->writes, 1);
	pthread_rwlock_unlock(&ix->rw);
	return rc;
}

int knytt_index_remove(knytt_index *ix, uint64_t label)
{
	int rc = check_open(ix, "knytt_index_remove");
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&ix->rw);
	uint32_t s = knytt__lmap_get(&ix->labels, label);
	if (s == LMAP_EMPTY)
		rc = knytt__err(KNYTT_ENOTFOUND, "label %llu is not in the index",
				(unsigned long long)label);
	else
		rc = remove_locked(ix, s);
	atomic_fetch_add(&ix->writes, 1);
	pthread_rwlock_unlock(&ix->rw);
	return rc;
}

uint64_t knytt__index_writes(const knytt_index *ix, uint64_t *gen)
{
	*gen = ix->gen;
	return atomic_load(&((knytt_index *)ix)->writes);
}

/* ------------------------------------------------------------------ reads */

int knytt_index_get(const knytt_index *ix, uint64_t label, float *out,
		    uint32_t dim)
{
	int rc = check_open(ix, "knytt_index_get");
	if (rc)
		return rc;
	if (!out)
		return knytt__err(KNYTT_EINVAL, "out is NULL");
	if (dim != ix->dim)
		return knytt__err(KNYTT_EINVAL,
				  "out has %u dimensions, index has %u", dim,
				  ix->dim);
	knytt_index *w = (knytt_index *)ix;
	pthread_rwlock_rdlock(&w->rw);
	uint32_t s = knytt__lmap_get(&ix->labels, label);
	if (s == LMAP_EMPTY) {
		rc = knytt__err(KNYTT_ENOTFOUND, "label %llu is not in the index",
				(unsigned long long)label);
	} else if (ix->quant == KNYTT_QUANT_NONE) {
		memcpy(out, knytt__vecp(ix, s), dim * sizeof *out);
	} else if (ix->quant == KNYTT_QUANT_INT8) {
		memcpy(out, ix->f32 + (size_t)s * dim, dim * sizeof *out);
	} else if (ix->quant == KNYTT_QUANT_F16) {
		knytt__f16_decode((const uint16_t *)knytt__vecp(ix, s), out,
				  dim);
	} else {
		knytt__quant_decode(ix, (const int8_t *)knytt__vecp(ix, s), out);
	}
	pthread_rwlock_unlock(&w->rw);
	return rc;
}

int knytt_index_contains(const knytt_index *ix, uint64_t label)
{
	if (!ix || !ix->is_open)
		return 0;
	knytt_index *w = (knytt_index *)ix;
	pthread_rwlock_rdlock(&w->rw);
	int r = knytt__lmap_get(&ix->labels, label) != LMAP_EMPTY;
	pthread_rwlock_unlock(&w->rw);
	return r;
}

size_t knytt_index_count(const knytt_index *ix)
{
	if (!ix)
		return 0;
	knytt_index *w = (knytt_index *)ix;
	pthread_rwlock_rdlock(&w->rw);
	size_t n = ix->count;
	pthread_rwlock_unlock(&w->rw);
	return n;
}

uint32_t knytt_index_dim(const knytt_index *ix)
{
	return ix && ix->is_open ? ix->dim : 0;
}

/* Vector bytes beside the nodes: INT8's f32 copies, the quantizer's
 * centres, residual codes' cell centres and steps. */
static size_t side_bytes(const knytt_index *ix)
{
	size_t b = 0;
	if (ix->f32)
		b += ix->cap * ix->dim * sizeof(float);
	if (ix->qmid)
		b += ix->dim * sizeof(float);
	if (ix->qcells)
		b += ((size_t)ix->qcells + 1) * ix->dim * sizeof(float);
	return b;
}

size_t knytt_index_vector_memory(const knytt_index *ix)
{
	if (!ix)
		return 0;
	return ix->cap * ix->vbytes + side_bytes(ix);
}

size_t knytt_index_memory(const knytt_index *ix)
{
	if (!ix)
		return 0;
	knytt_index *w = (knytt_index *)ix;
	pthread_rwlock_rdlock(&w->rw);
	size_t b = sizeof *ix + ix->cap * ix->block +
		   ix->cap * (sizeof *ix->uoff + 1) +
		   ix->upool_cap * sizeof *ix->upool +
		   ix->free_cap * sizeof *ix->freel +
		   knytt__lmap_bytes(&ix->labels) + side_bytes(ix);
	pthread_rwlock_unlock(&w->rw);
	return b;
}

/* ----------------------------------------------------------------- search */

typedef struct prepared {
	const float *f;   /* f32 query as stored (normalized for cosine) */
	const void *key;  /* what the graph compares: f32 (also for f16
			     vectors: only the stored side is rounded) or
			     int8 codes */
	/* INT8_ONLY: the query for the asymmetric distances (f32 query
	 * against int8 codes), in code units for L2: (f - mid) / step */
	const float *a;
} prepared;

/* the walk compares the query's int8 codes with the nodes', so its ef
 * best are re-ranked (slot_dist); every other walk's key is the
 * distance (residual codes: the f32 query against the codes) */
static inline int walks_on_codes(const knytt_index *ix)
{
	return knytt__is_i8(ix) && !ix->qcells;
}

/* Prepares query @p q in @p sc into *p: 0, or KNYTT_ENOMEM. */
static int prepare(const knytt_index *ix, knytt__scratch *sc,
		   const float *q, prepared *p)
{
	*p = (prepared){ q, q, q };
	if (ix->metric == KNYTT_METRIC_COSINE) {
		memcpy(sc->qf, q, ix->dim * sizeof *q);
		knytt__normalize(sc->qf, ix->dim);
		p->f = p->key = p->a = sc->qf;
	}
	if (ix->qcells) {
		/* residual codes: the walk takes the f32 query (hnsw.c) */
		p->key = sc;
		return knytt__rq_prepare(ix, sc, p->f);
	}
	if (knytt__is_i8(ix)) {
		knytt__quant_encode(ix, p->f, sc->qc);
		p->key = sc->qc;
	}
	if (ix->quant == KNYTT_QUANT_INT8_ONLY &&
	    ix->metric == KNYTT_METRIC_L2) {
		/* qf is free for L2 (only cosine normalizes into it) */
		float inv = 1.0f / ix->qstep;
		for (uint32_t j = 0; j < ix->dim; j++)
			sc->qf[j] = (q[j] - ix->qmid[j]) * inv;
		p->a = sc->qf;
	}
	return KNYTT_OK;
}

/*
 * INT8_ONLY: the distance of the f32 query to slot s's codes, the stored
 * side alone rounded.  The walk compares int8 codes with int8 codes (the
 * fast integer kernels); rounding the query too added its own error to
 * every distance, and recall stopped rising with ef (0.956 on synth100k
 * at any ef): the final order of the candidates the walk found is set
 * here, by these distances, as INT8 mode sets it with the f32 vectors.
 *   L2:     |q - (mid + s c)|^2 = s^2 |(q - mid)/s - c|^2
 *   IP/cos: koff - q.(s c)       (mid is 0 for these metrics)
 */
static inline float a8_dist(const knytt_index *ix, const prepared *p,
			    uint32_t s)
{
	const int8_t *c = (const int8_t *)knytt__vecp(ix, s);
	if (ix->metric == KNYTT_METRIC_L2)
		return ix->qstep * ix->qstep * ix->ops->l2sq_f8(p->a, c, ix->dim);
	return ix->koff - ix->qstep * ix->ops->dot_f8(p->a, c, ix->dim);
}

/* f32 distance of a prepared query to slot s (INT8 mode re-ranking) */
static inline float f32_dist(const knytt_index *ix, const float *q,
			     uint32_t s)
{
	const float *v = ix->f32 + (size_t)s * ix->dim;
	if (ix->metric == KNYTT_METRIC_L2)
		return ix->ops->l2sq(q, v, ix->dim);
	return ix->koff - ix->ops->dot(q, v, ix->dim);
}

/* The most precise distance the index has for slot s: f32 vectors
 * (none, INT8), the asymmetric one (INT8_ONLY). */
static inline float slot_dist(const knytt_index *ix, const prepared *p,
			      uint32_t s)
{
	if (ix->quant == KNYTT_QUANT_INT8)
		return f32_dist(ix, p->f, s);
	if (walks_on_codes(ix)) /* INT8_ONLY, shared step */
		return a8_dist(ix, p, s);
	return knytt__key(ix, p->key, knytt__vecp(ix, s)) * ix->kscale +
	       ix->koff;
}

/* Exact scan over live, passing slots.  Uses f32 vectors when the index
 * has them (so INT8 mode is exact here too). */
static int exact_scan(const knytt_index *ix, const prepared *p, size_t k,
		      const knytt__filter *f, uint64_t *labels, float *dists)
{
	if (k > ix->count) /* no more results than items: bounds the heap */
		k = ix->count;
	knytt__pair *heap = malloc(k * sizeof *heap);
	if (!heap)
		return knytt__err(KNYTT_ENOMEM, "search: out of memory");
	knytt__topk t = { heap, 0, k };
	if (f && f->bits && f->nbits / 64 < ix->nslots) {
		/* A bitset names the passing labels: visit those through the
		 * label map instead of reading every node's block. */
		size_t words = (f->nbits + 63) / 64;
		for (size_t w = 0; w < words; w++) {
			uint64_t bits = f->bits[w];
			if (w == words - 1 && (f->nbits & 63))
				bits &= (1ULL << (f->nbits & 63)) - 1;
			while (bits) {
				uint64_t lab = w * 64 + (uint64_t)__builtin_ctzll(bits);
				bits &= bits - 1;
				uint32_t s = knytt__lmap_get(&ix->labels, lab);
				if (s == LMAP_EMPTY)
					continue;
				float d = slot_dist(ix, p, s);
				if (d < knytt__topk_worst(&t))
					knytt__topk_push(&t, d, lab);
			}
		}
		size_t got = knytt__topk_drain(&t, labels, dists);
		free(heap);
		return (int)got;
	}
	for (size_t s = 0; s < ix->nslots; s++) {
		if (knytt__flags(ix, (uint32_t)s) & NODE_DELETED)
			continue;
		uint64_t lab = knytt__label(ix, (uint32_t)s);
		if (!knytt__filter_pass(f, lab))
			continue;
		float d = slot_dist(ix, p, (uint32_t)s);
		if (d < knytt__topk_worst(&t))
			knytt__topk_push(&t, d, lab);
	}
	size_t got = knytt__topk_drain(&t, labels, dists);
	free(heap);
	return (int)got;
}

/* Estimated number of live labels passing the filter. */
static size_t estimate_pass(const knytt_index *ix, const knytt__filter *f)
{
	if (f->bits) {
		size_t words = (f->nbits + 63) / 64, c = 0;
		for (size_t i = 0; i < words; i++) {
			uint64_t w = f->bits[i];
			if (i == words - 1 && (f->nbits & 63))
				w &= (1ULL << (f->nbits & 63)) - 1;
			c += (size_t)__builtin_popcountll(w);
		}
		return c < ix->count ? c : ix->count;
	}
	/* evenly spaced sample of up to 256 slots */
	size_t step = ix->nslots / 256 ? ix->nslots / 256 : 1, live = 0,
	       pass = 0;
	for (size_t s = step / 2; s < ix->nslots; s += step) {
		if (knytt__flags(ix, (uint32_t)s) & NODE_DELETED)
			continue;
		live++;
		pass += f->fn(knytt__label(ix, (uint32_t)s), f->ctx) != 0;
	}
	return live ? (size_t)((double)pass / (double)live *
			       (double)ix->count + 0.5)
		    : 0;
}

static int cmp_f(const void *a, const void *b)
{
	const knytt__cand *x = a, *y = b;
	return x->d < y->d ? -1 : x->d > y->d;
}

/* Caller holds the read lock.  Returns the count or a negative error. */
static int search_locked(const knytt_index *ix, const float *q, size_t k,
			 unsigned ef, const knytt__filter *f,
			 uint64_t *labels, float *dists)
{
	if (ix->count == 0)
		return 0;
	knytt__scratch *sc = knytt__scratch_get(ix);
	if (!sc)
		return knytt__err(KNYTT_ENOMEM, "search: out of memory");
	prepared p;
	int rc = prepare(ix, sc, q, &p);
	if (rc)
		return rc;
	/* The walk's buffers grow with ef: an ef of 1e9 asked for
	 * gigabytes.  ef is clamped to KNYTT_INDEX_MAX_EF, then raised to k
	 * as always, and never exceeds the number of items, since the
	 * result list cannot hold more. */
	size_t efv = ef ? ef : ix->ef_default;
	if (efv > KNYTT_INDEX_MAX_EF)
		efv = KNYTT_INDEX_MAX_EF;
	if (efv < k)
		efv = k;
	if (efv > ix->count)
		efv = ix->count;
	if (ix->kind == KNYTT_INDEX_FLAT)
		return exact_scan(ix, &p, k, f, labels, dists);
	size_t est = SIZE_MAX;
	if (f) {
		/* Few passing items: the walk would visit ~1/selectivity
		 * nodes per result, an exact scan costs count predicate
		 * checks plus est distances.  Scan when est^2 < 32 ef n. */
		est = !f->has_est	    ? estimate_pass(ix, f)
		      : f->est < ix->count ? f->est
					    : ix->count;
		if ((double)est * (double)est <
		    32.0 * (double)efv * (double)ix->count)
			return exact_scan(ix, &p, k, f, labels, dists);
	}
	/* the int8 modes walk on codes and re-rank the ef best: INT8 with
	 * the f32 vectors, INT8_ONLY with the asymmetric distances */
	long walked = knytt__hnsw_search(ix, sc, p.key, k, efv, f);
	if (walked < 0)
		return (int)walked;
	size_t got = (size_t)walked;
	knytt__cand *out = sc->tmp; /* no allocation per query */
	if (walks_on_codes(ix)) {
		for (size_t i = 0; i < got; i++)
			out[i].d = slot_dist(ix, &p, out[i].id);
		qsort(out, got, sizeof *out, cmp_f);
	} else {
		for (size_t i = 0; i < got; i++)
			out[i].d = out[i].d * ix->kscale + ix->koff;
	}
	if (f && got < k && est >= k) {
		/* the walk came back short of a filter that should fill k:
		 * answer exactly rather than return too few */
		return exact_scan(ix, &p, k, f, labels, dists);
	}
	if (got > k)
		got = k;
	for (size_t i = 0; i < got; i++) {
		labels[i] = knytt__label(ix, out[i].id);
		if (dists)
			dists[i] = out[i].d;
	}
	return (int)got;
}

static int search_api(const knytt_index *ix, const float *q, uint32_t dim,
		      size_t k, unsigned ef, const knytt__filter *f,
		      uint64_t *labels, float *dists, const char *fn)
{
	int rc = check_open(ix, fn);
	if (rc || (rc = check_vec(ix, q, dim, "query", SIZE_MAX, 0)))
		return rc;
	if (!labels)
		return knytt__err(KNYTT_EINVAL, "%s: labels is NULL", fn);
	if (k == 0)
		return knytt__err(KNYTT_EINVAL, "%s: k is 0", fn);
	if (k > INT32_MAX)
		return knytt__err(KNYTT_EINVAL, "%s: k is %zu, too large", fn,
				  k);
	knytt_index *w = (knytt_index *)ix;
	pthread_rwlock_rdlock(&w->rw);
	rc = search_locked(ix, q, k, ef, f, labels, dists);
	pthread_rwlock_unlock(&w->rw);
	for (size_t i = rc < 0 ? 0 : (size_t)rc; i < k; i++) {
		labels[i] = UINT64_MAX;
		if (dists)
			dists[i] = INFINITY;
	}
	return rc;
}

int knytt_index_search(const knytt_index *ix, const float *q, uint32_t dim,
		       size_t k, unsigned ef, uint64_t *labels, float *dists)
{
	return search_api(ix, q, dim, k, ef, NULL, labels, dists,
			  "knytt_index_search");
}

int knytt_index_search_filter(const knytt_index *ix, const float *q,
			      uint32_t dim, size_t k, unsigned ef,
			      knytt_filter_fn fn, void *ctx, uint64_t *labels,
			      float *dists)
{
	if (!fn)
		return knytt__err(KNYTT_EINVAL,
				  "knytt_index_search_filter: fn is NULL");
	knytt__filter f = { fn, ctx, NULL, 0, 0, 0 };
	return search_api(ix, q, dim, k, ef, &f, labels, dists,
			  "knytt_index_search_filter");
}

int knytt__index_search_filter_est(const knytt_index *ix, const float *q,
				   uint32_t dim, size_t k, unsigned ef,
				   knytt_filter_fn fn, void *ctx, size_t est,
				   uint64_t *labels, float *dists)
{
	if (!fn)
		return knytt__err(KNYTT_EINVAL,
				  "knytt_index_search_filter: fn is NULL");
	knytt__filter f = { fn, ctx, NULL, 0, 1, est };
	return search_api(ix, q, dim, k, ef, &f, labels, dists,
			  "knytt_index_search_filter");
}

int knytt_index_search_bitset(const knytt_index *ix, const float *q,
			      uint32_t dim, size_t k, unsigned ef,
			      const uint64_t *bits, size_t nbits,
			      uint64_t *labels, float *dists)
{
	if (!bits && nbits > 0)
		return knytt__err(KNYTT_EINVAL,
				  "knytt_index_search_bitset: bits is NULL");
	static const uint64_t none = 0;
	knytt__filter f = { NULL, NULL, bits ? bits : &none, nbits, 0, 0 };
	return search_api(ix, q, dim, k, ef, &f, labels, dists,
			  "knytt_index_search_bitset");
}

typedef struct sbatch {
	const knytt_index *ix;
	const float *q;
	size_t nq, k;
	unsigned ef;
	uint64_t *labels;
	float *dists;
	_Atomic size_t next;
	_Atomic int rc;
} sbatch;

static void sbatch_worker(void *p, unsigned t)
{
	(void)t;
	sbatch *b = p;
	knytt_index *w = (knytt_index *)b->ix;
	for (;;) {
		size_t i0 = atomic_fetch_add(&b->next, 8);
		if (i0 >= b->nq)
			break;
		size_t i1 = i0 + 8 < b->nq ? i0 + 8 : b->nq;
		for (size_t i = i0; i < i1; i++) {
			uint64_t *lab = b->labels + i * b->k;
			float *dd = b->dists ? b->dists + i * b->k : NULL;
			pthread_rwlock_rdlock(&w->rw);
			int rc = search_locked(b->ix, b->q + i * b->ix->dim,
					       b->k, b->ef, NULL, lab, dd);
			pthread_rwlock_unlock(&w->rw);
			if (rc < 0) {
				int zero = 0;
				atomic_compare_exchange_strong(&b->rc, &zero,
							       rc);
				rc = 0;
			}
			for (size_t r = (size_t)rc; r < b->k; r++) {
				lab[r] = UINT64_MAX;
				if (dd)
					dd[r] = INFINITY;
			}
		}
	}
}

int knytt_index_search_batch(const knytt_index *ix, size_t nq,
			     const float *queries, uint32_t dim, size_t k,
			     unsigned ef, unsigned nthreads, uint64_t *labels,
			     float *dists)
{
	int rc = check_open(ix, "knytt_index_search_batch");
	if (rc)
		return rc;
	if (nq == 0)
		return KNYTT_OK;
	if (!labels || k == 0 || k > INT32_MAX)
		return knytt__err(KNYTT_EINVAL, "knytt_index_search_batch: %s",
				  !labels ? "labels is NULL" : "k is invalid");
	for (size_t i = 0; i < nq; i++)
		if ((rc = check_vec(ix, queries ? queries + i * ix->dim : NULL,
				    dim, "queries", i, 0)))
			return rc;
	sbatch b = { .ix = ix, .q = queries, .nq = nq, .k = k, .ef = ef,
		     .labels = labels, .dists = dists };
	/* workers take 8 queries at a time: no more threads than that */
	unsigned nt = knytt__threads(nthreads);
	if ((size_t)nt > (nq + 7) / 8)
		nt = (unsigned)((nq + 7) / 8);
	knytt__fork_join(nt, sbatch_worker, &b);
	return atomic_load(&b.rc);
}
