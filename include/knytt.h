/*
 * knytt.h -- the public interface of libknytt, an embeddable
 * product-discovery and recommendation engine.
 *
 * This is the only public header.  Anything not declared here is not API
 * and may change between any two versions.
 *
 * Conventions that hold for every function below unless its own comment
 * says otherwise:
 *
 *  - Functions return int: 0 (KNYTT_OK) on success, a negative KNYTT_E*
 *    code on failure, or a non-negative count where a count is meaningful.
 *  - On failure, knytt_errmsg() returns a sentence naming what was wrong
 *    ("query has 96 dimensions, index has 128").  A failed call leaves
 *    data already stored intact.
 *  - Results go into arrays the caller owns, with a capacity; the number
 *    written is returned.  Memory the library allocates for the caller is
 *    released with knytt_free().
 *  - Handles are opaque and typed.  Destructors accept NULL and cannot
 *    fail.
 *
 * Copyright (c) 2026 the knytt authors.  MIT licence, see LICENSE.
 */
#ifndef KNYTT_H
#define KNYTT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define KNYTT_API __declspec(dllexport)
#elif defined(__GNUC__)
#define KNYTT_API __attribute__((visibility("default")))
#else
#define KNYTT_API
#endif

/* ------------------------------------------------------------------------
 * Version.  Same major version = same ABI; the soname carries the major.
 * ---------------------------------------------------------------------- */
#define KNYTT_VERSION_MAJOR 0
#define KNYTT_VERSION_MINOR 1
#define KNYTT_VERSION_PATCH 0
#define KNYTT_VERSION_NUMBER                                                \
	(KNYTT_VERSION_MAJOR * 1000000 + KNYTT_VERSION_MINOR * 1000 +           \
	 KNYTT_VERSION_PATCH)
#define KNYTT_VERSION_STRING "0.1.0"

/** The version string of the library actually linked ("0.1.0"). */
KNYTT_API const char *knytt_version(void);
/** KNYTT_VERSION_NUMBER of the library actually linked. */
KNYTT_API int knytt_version_number(void);

/* ------------------------------------------------------------------------
 * Errors.  Codes keep their value forever; new codes get new values.
 * X(NAME, value, "description")
 * ---------------------------------------------------------------------- */
#define KNYTT_ERROR_MAP(X)                                                  \
	X(OK, 0, "success")                                                     \
	X(EINVAL, -1, "invalid argument")                                       \
	X(ENOMEM, -2, "out of memory")                                          \
	X(EIO, -3, "input/output error")                                        \
	X(ECORRUPT, -4, "corrupted or foreign data")                            \
	X(ENOTFOUND, -5, "not found")                                           \
	X(EEXIST, -6, "already exists")                                         \
	X(ERANGE, -7, "value out of range")                                     \
	X(EVERSION, -8, "unsupported version")                                  \
	X(ESTATE, -9, "operation not valid in the current state")               \
	X(EDB, -10, "database error")                                           \
	X(EAUTH, -11, "authentication failed")                                  \
	X(ETIMEDOUT, -12, "timed out")                                          \
	X(EPROTO, -13, "protocol error in a remote answer")                     \
	X(ENOTSUP, -14, "not supported")                                        \
	X(ECANCELED, -15, "canceled")                                           \
	X(EBUSY, -16, "resource busy")

#define KNYTT__ERRENUM(name, value, desc) KNYTT_##name = (value),
enum knytt_status { KNYTT_ERROR_MAP(KNYTT__ERRENUM) KNYTT__ERR_LAST = -17 };
#undef KNYTT__ERRENUM

/** A static description of @p code ("invalid argument"); never NULL. */
KNYTT_API const char *knytt_errstr(int code);
/** The symbolic name of @p code ("KNYTT_EINVAL"); never NULL. */
KNYTT_API const char *knytt_errname(int code);
/**
 * The detail of the last failure on the calling thread: which argument,
 * field, line or file was wrong.
 *
 * The message is thread-local rather than kept in a handle (the model is
 * sqlite3_errmsg, but a per-handle buffer would race between the many
 * threads that may search one index at once, and constructors have no
 * handle yet).  It stays valid until the calling thread's next knytt call
 * that fails.  Never NULL; "" when nothing failed yet.
 */
KNYTT_API const char *knytt_errmsg(void);

/** Releases memory that the library allocated for the caller. NULL is ok. */
KNYTT_API void knytt_free(void *p);

/* ------------------------------------------------------------------------
 * Vectors (lib/vec): distance kernels and exact search.
 * ---------------------------------------------------------------------- */

/** Distance metrics.  Every search returns distances, smaller is closer:
 *  L2 -> squared Euclidean distance; IP -> the negated inner product
 *  (-q.x); COSINE -> 1 - cos(q, x). */
typedef enum knytt_metric {
	KNYTT_METRIC_L2 = 1,
	KNYTT_METRIC_IP = 2,
	KNYTT_METRIC_COSINE = 3
} knytt_metric;

/**
 * The SIMD tier chosen for this process: "scalar", "avx2", "avx512" or
 * "neon".  The CPU is probed once; the environment variable KNYTT_SIMD
 * (same names) forces a lower tier, never one the CPU lacks.
 * Thread safety: any thread, any time.
 */
KNYTT_API const char *knytt_simd_name(void);

/**
 * The distance between two vectors of @p dim floats under @p metric,
 * computed by the dispatched kernel.  Returns NAN if @p metric is unknown
 * or a pointer is NULL.  Zero vectors have cosine distance 1.
 */
KNYTT_API float knytt_distance(knytt_metric metric, const float *a,
			       const float *b, size_t dim);

/**
 * Exact k-nearest-neighbour search of @p nq queries among @p nb base
 * vectors (row-major, @p dim floats each), through OpenBLAS sgemm
 * (|q|^2 + |x|^2 - 2 q.x for L2) and a partial top-k.
 *
 * @param[out] ids    nq * k row indices into @p base, nearest first; slots
 *                    beyond nb are set to UINT64_MAX.
 * @param[out] dists  nq * k distances (may be NULL); unused slots INFINITY.
 * @return KNYTT_OK, KNYTT_EINVAL (NULL pointer, dim 0, k 0), KNYTT_ENOMEM.
 * Thread safety: reentrant.  OpenBLAS may use its own threads.
 */
KNYTT_API int knytt_exact_knn(knytt_metric metric, size_t dim,
			      const float *base, size_t nb,
			      const float *queries, size_t nq, size_t k,
			      uint64_t *ids, float *dists);

/* ------------------------------------------------------------------------
 * Vector index (lib/index): HNSW (approximate) or flat (exact) over
 * uint64 labels.
 *
 * Life cycle, as in LMDB: knytt_index_create() -> knytt_index_set_*() ->
 * knytt_index_open() (a new, empty index) or knytt_index_load() (from a
 * file) -> add / search / ... -> knytt_index_close().
 *
 * Every call that takes a vector also takes its length @p dim, which must
 * equal the index's dimension: a mismatch fails with KNYTT_EINVAL and a
 * message such as "query has 96 dimensions, index has 128".
 *
 * THREAD SAFETY.  After open or load, any number of threads may call the
 * read functions (search*, get, contains, count, memory, save) at once,
 * alongside one or more threads calling the write functions (add, upsert,
 * remove, add_batch).  Writers take an internal write lock, so one write
 * runs at a time and a search sees the index either before or after each
 * single write, never in between.  The read path keeps no shared mutable
 * state: ef comes with each call and each thread has its own visited set,
 * so concurrent searches with different ef are independent.  Setters are
 * allowed only before open/load.  close must not race with any other
 * call.
 * ---------------------------------------------------------------------- */
typedef struct knytt_index knytt_index;

typedef enum knytt_index_kind {
	KNYTT_INDEX_HNSW = 1, /* approximate: Malkov & Yashunin 2016 */
	KNYTT_INDEX_FLAT = 2  /* exact scan */
} knytt_index_kind;

typedef enum knytt_quant {
	KNYTT_QUANT_NONE = 0, /* f32 vectors */
	/* int8 scalar quantization: the graph is walked on int8 codes and the
	 * best candidates are re-ranked with the f32 vectors, which are kept. */
	KNYTT_QUANT_INT8 = 1,
	/* int8 without the f32 vectors: about 4x less vector memory; returned
	 * distances are the int8 approximations, knytt_index_get returns the
	 * decoded (approximate) vector. */
	KNYTT_QUANT_INT8_ONLY = 2
} knytt_quant;

/** Filter predicate: return non-zero to let @p label into the results.
 *  Called from the searching thread, possibly many times per search. */
typedef int (*knytt_filter_fn)(uint64_t label, void *ctx);

/**
 * Allocates an unconfigured index handle.
 * @param[out] out  the new handle, to be freed with knytt_index_close().
 * @return KNYTT_OK, KNYTT_EINVAL (out NULL), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_index_create(knytt_index **out);

/** Kind (default KNYTT_INDEX_HNSW).  Before open.  KNYTT_EINVAL/ESTATE. */
KNYTT_API int knytt_index_set_kind(knytt_index *idx, knytt_index_kind kind);
/** Metric (default KNYTT_METRIC_L2).  Before open.  KNYTT_EINVAL/ESTATE. */
KNYTT_API int knytt_index_set_metric(knytt_index *idx, knytt_metric metric);
/** HNSW links per node on upper layers, 2*M on layer 0.  0 = default 16;
 *  valid 2..64.  Before open.  KNYTT_EINVAL/ESTATE. */
KNYTT_API int knytt_index_set_m(knytt_index *idx, unsigned m);
/** HNSW candidate list size while building.  0 = default 200; valid
 *  1..100000.  Before open.  KNYTT_EINVAL/ESTATE. */
KNYTT_API int knytt_index_set_ef_construction(knytt_index *idx, unsigned ef);
/** Default search ef when a search passes ef = 0.  0 = default 64.
 *  Before open.  KNYTT_EINVAL/ESTATE. */
KNYTT_API int knytt_index_set_ef_search(knytt_index *idx, unsigned ef);
/** Quantization mode (default KNYTT_QUANT_NONE).  Before open. */
KNYTT_API int knytt_index_set_quant(knytt_index *idx, knytt_quant quant);
/** Seed of the level generator (default 42): same seed, same inserts in
 *  the same order -> same graph.  Before open. */
KNYTT_API int knytt_index_set_seed(knytt_index *idx, uint64_t seed);

/**
 * Makes an empty index of vectors with @p dim floats using the settings
 * made so far.
 * @return KNYTT_OK, KNYTT_EINVAL (dim 0 or over 65536), KNYTT_ESTATE
 *         (already open or loaded), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_index_open(knytt_index *idx, uint32_t dim);

/** Frees the index and everything it owns.  NULL is a no-op. */
KNYTT_API void knytt_index_close(knytt_index *idx);

/**
 * Learns the per-dimension value ranges of an int8-quantized index from
 * @p n sample vectors.  If it is never called, the first add or add_batch
 * learns them from the vectors it is given (values outside the learned
 * range are clipped later), so pass a representative first batch or call
 * this first.  Fails with KNYTT_ESTATE once vectors were added.
 * @return KNYTT_OK, KNYTT_EINVAL, KNYTT_ESTATE, KNYTT_ENOTSUP (index is
 *         not quantized).
 */
KNYTT_API int knytt_index_train_quant(knytt_index *idx, size_t n,
				      const float *vectors, uint32_t dim);

/**
 * Adds one vector (dim floats, copied) under @p label.
 * @return KNYTT_OK, KNYTT_EEXIST (label present: use upsert), KNYTT_EINVAL
 *         (NULL vector, NaN or infinite value), KNYTT_ESTATE (not open),
 *         KNYTT_ENOMEM.
 */
KNYTT_API int knytt_index_add(knytt_index *idx, uint64_t label,
			      const float *vector, uint32_t dim);

/** Adds @p label, or replaces its vector if present.  Errors as add. */
KNYTT_API int knytt_index_upsert(knytt_index *idx, uint64_t label,
				 const float *vector, uint32_t dim);

/**
 * Adds @p n vectors (row-major) under @p labels using @p nthreads threads
 * (0 = every core).  All labels are checked before anything is written:
 * a label already present gives KNYTT_EEXIST, a label repeated in the
 * batch or a bad value gives KNYTT_EINVAL, and the index is unchanged.
 */
KNYTT_API int knytt_index_add_batch(knytt_index *idx, size_t n,
				    const uint64_t *labels,
				    const float *vectors, uint32_t dim,
				    unsigned nthreads);

/**
 * Removes @p label.  Its slot is reused by later adds; the links of its
 * graph neighbours are repaired at once so that recall holds after heavy
 * churn.
 * @return KNYTT_OK, KNYTT_ENOTFOUND, KNYTT_ESTATE.
 */
KNYTT_API int knytt_index_remove(knytt_index *idx, uint64_t label);

/** Copies the stored vector of @p label into @p out (dim floats).  For
 *  COSINE the stored vector is the normalized one.  KNYTT_ENOTFOUND. */
KNYTT_API int knytt_index_get(const knytt_index *idx, uint64_t label,
			      float *out, uint32_t dim);
/** 1 if @p label is present, 0 if not (or idx NULL). */
KNYTT_API int knytt_index_contains(const knytt_index *idx, uint64_t label);
/** Number of live vectors (0 if idx NULL). */
KNYTT_API size_t knytt_index_count(const knytt_index *idx);
/** Dimension (0 if idx NULL or not open). */
KNYTT_API uint32_t knytt_index_dim(const knytt_index *idx);
/** Bytes of memory the index holds (vectors, links, labels, maps). */
KNYTT_API size_t knytt_index_memory(const knytt_index *idx);
/** Bytes the vectors alone take (codes and/or f32 copies). */
KNYTT_API size_t knytt_index_vector_memory(const knytt_index *idx);

/**
 * The @p k nearest live vectors to @p query.
 * @param ef       candidate list size for this call (HNSW; raised to k if
 *                 smaller; 0 = the index's default).  Ignored by flat.
 * @param[out] labels  k labels, nearest first.
 * @param[out] dists   k distances (may be NULL).
 * @return the number of results written, or KNYTT_EINVAL (NULL pointer,
 *         k 0, wrong dim, non-finite query), KNYTT_ESTATE (not open).
 *         k larger than the count is not an error: the call returns
 *         count results and sets the remaining k - count labels to
 *         UINT64_MAX and distances to INFINITY.
 */
KNYTT_API int knytt_index_search(const knytt_index *idx, const float *query,
				 uint32_t dim, size_t k, unsigned ef, uint64_t *labels,
				 float *dists);

/**
 * Like knytt_index_search, but only labels for which @p fn returns
 * non-zero are returned.  Filtered-out nodes still route the graph walk;
 * when few labels pass (estimated by sampling) the search switches to an
 * exact scan over the passing ones.  @p fn must be thread-safe if
 * several threads search with it.
 */
KNYTT_API int knytt_index_search_filter(const knytt_index *idx,
					const float *query, uint32_t dim,
					size_t k,
					unsigned ef, knytt_filter_fn fn,
					void *ctx, uint64_t *labels,
					float *dists);

/**
 * Like knytt_index_search_filter with a bitset over labels: label L passes
 * when L < nbits and bit (L % 64) of bits[L / 64] is set.  The pass count
 * is counted exactly, so the exact-scan switch needs no sampling.
 */
KNYTT_API int knytt_index_search_bitset(const knytt_index *idx,
					const float *query, uint32_t dim,
					size_t k,
					unsigned ef, const uint64_t *bits,
					size_t nbits, uint64_t *labels,
					float *dists);

/**
 * Searches @p nq queries (row-major) on @p nthreads threads (0 = every
 * core).  Row i of @p labels / @p dists (k entries each) receives query
 * i's results; missing results are UINT64_MAX / INFINITY.
 * @return KNYTT_OK or the first error of a single search.
 */
KNYTT_API int knytt_index_search_batch(const knytt_index *idx, size_t nq,
				       const float *queries, uint32_t dim,
				       size_t k,
				       unsigned ef, unsigned nthreads,
				       uint64_t *labels, float *dists);

/**
 * Writes the index to @p path (written to a temporary file, then renamed,
 * so a crash leaves the old file).  The format is versioned, little-endian
 * and covered by a CRC-32C checksum.
 * @return KNYTT_OK, KNYTT_EIO (with the path and errno text), KNYTT_ESTATE.
 */
KNYTT_API int knytt_index_save(const knytt_index *idx, const char *path);

/**
 * Loads an index saved by knytt_index_save into a handle from
 * knytt_index_create (its settings are replaced by the file's).  The file
 * is mapped with mmap; its checksum is verified first.
 * @return KNYTT_OK, KNYTT_EIO (cannot open/read), KNYTT_ECORRUPT
 *         (truncated, corrupted or not a knytt index; the message says
 *         which), KNYTT_EVERSION (written by a newer format), KNYTT_ESTATE.
 */
KNYTT_API int knytt_index_load(knytt_index *idx, const char *path);

/* ===== part: store (lib/store) ===== */
/* ===== end part: store ===== */

/* ===== part: model (lib/model) ===== */
/* ===== end part: model ===== */

/* ===== part: twotower (lib/model) ===== */
/* ===== end part: twotower ===== */

/* ===== part: engine (lib/engine, lib/taste) ===== */
/* ===== end part: engine ===== */

#ifdef __cplusplus
}
#endif

#endif /* KNYTT_H */
