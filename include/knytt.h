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
 *  valid 2..128.  Before open.  KNYTT_EINVAL/ESTATE. */
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
				      const float *vectors);

/**
 * Adds one vector (dim floats, copied) under @p label.
 * @return KNYTT_OK, KNYTT_EEXIST (label present: use upsert), KNYTT_EINVAL
 *         (NULL vector, NaN or infinite value), KNYTT_ESTATE (not open),
 *         KNYTT_ENOMEM.
 */
KNYTT_API int knytt_index_add(knytt_index *idx, uint64_t label,
			      const float *vector);

/** Adds @p label, or replaces its vector if present.  Errors as add. */
KNYTT_API int knytt_index_upsert(knytt_index *idx, uint64_t label,
				 const float *vector);

/**
 * Adds @p n vectors (row-major) under @p labels using @p nthreads threads
 * (0 = every core).  All labels are checked before anything is written:
 * a label already present gives KNYTT_EEXIST, a label repeated in the
 * batch or a bad value gives KNYTT_EINVAL, and the index is unchanged.
 */
KNYTT_API int knytt_index_add_batch(knytt_index *idx, size_t n,
				    const uint64_t *labels,
				    const float *vectors, unsigned nthreads);

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
			      float *out);
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
 * @return the number of results (min(k, count)), or KNYTT_EINVAL (NULL
 *         pointer, k 0, non-finite query), KNYTT_ESTATE (not open).
 */
KNYTT_API int knytt_index_search(const knytt_index *idx, const float *query,
				 size_t k, unsigned ef, uint64_t *labels,
				 float *dists);

/**
 * Like knytt_index_search, but only labels for which @p fn returns
 * non-zero are returned.  Filtered-out nodes still route the graph walk;
 * when few labels pass (estimated by sampling) the search switches to an
 * exact scan over the passing ones.  @p fn must be thread-safe if
 * several threads search with it.
 */
KNYTT_API int knytt_index_search_filter(const knytt_index *idx,
					const float *query, size_t k,
					unsigned ef, knytt_filter_fn fn,
					void *ctx, uint64_t *labels,
					float *dists);

/**
 * Like knytt_index_search_filter with a bitset over labels: label L passes
 * when L < nbits and bit (L % 64) of bits[L / 64] is set.  The pass count
 * is counted exactly, so the exact-scan switch needs no sampling.
 */
KNYTT_API int knytt_index_search_bitset(const knytt_index *idx,
					const float *query, size_t k,
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
				       const float *queries, size_t k,
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
/* ------------------------------------------------------------------------
 * Two-tower retrieval model (lib/model/twotower.c, lib/model/features.c).
 *
 * Item tower: v = normalize(id_embedding[item] + mean of the embeddings
 * of the item's hashed features).  The features are the word unigrams
 * and bigrams of title and description, every prefix of the category
 * path ("shoes", "shoes/running") and a log-scale price bucket, hashed
 * with a seeded 64-bit hash into a table of `buckets` rows.  A brand-new
 * item has no id embedding: its vector comes from its features alone
 * (cold start), and a free-text query takes the same text path into item
 * space.  User tower: u = normalize(id_embedding[user] + mean of the item
 * vectors of the user's most recent items).  Score: u . v.
 *
 * Training minimises an in-batch sampled softmax over the positives of a
 * mini-batch, logits = U V^T / temperature - log q(item) (the sampling
 * bias correction of Yi et al., RecSys 2019), with Adam on the rows a
 * batch touches (lazy Adam).  The history of a training interaction is
 * the user's items strictly before it in time, so the target never leaks
 * into the user tower.  Same seed + same thread count -> bit-identical
 * model.
 *
 * Life cycle: knytt_twotower_create() -> knytt_twotower_set_*() ->
 * knytt_twotower_train() or knytt_twotower_load*() -> embed / score ->
 * knytt_twotower_close().  Setters apply to the next train; a loaded or
 * trained model keeps its own dimension and bucket count.
 *
 * THREAD SAFETY.  After train or load, any number of threads may call
 * the const functions (embed_*, *_embeddings, dim, count_*, save*) at
 * once.  train, load*, the setters and close must not run concurrently
 * with any other call on the same handle.  train uses its own threads
 * (set_threads) and OpenBLAS sgemm.
 * ---------------------------------------------------------------------- */
typedef struct knytt_twotower knytt_twotower;

/** The features of one item.  Every string may be NULL (absent) and is
 *  only read during the call.  Text is UTF-8 (or any ASCII superset):
 *  ASCII letters are lower-cased, bytes >= 0x80 are word characters. */
typedef struct knytt_twotower_item {
	const char *title;
	const char *description;
	/* Category path, segments separated by '/' or '>'; several paths
	 * separated by '|' ("Comedy|Drama"). */
	const char *category;
	/* Price in any currency unit; negative or NaN = unknown. */
	double price;
} knytt_twotower_item;

/** User index meaning "no id embedding" (an unknown or new user). */
#define KNYTT_TWOTOWER_NO_USER UINT32_MAX

/**
 * Training progress, called after every epoch from the thread that runs
 * knytt_twotower_train.
 * @param epoch    epochs done so far (1-based).
 * @param epochs   epochs planned.
 * @param loss     mean sampled-softmax loss of this epoch (nats).
 * @param elapsed  seconds since training started.
 * @param eta      estimated seconds left.
 * @return 0 to go on; non-zero cancels: train returns KNYTT_ECANCELED and
 *         the model trained before (if any) stays in place.
 */
typedef int (*knytt_twotower_progress_fn)(unsigned epoch, unsigned epochs,
					  double loss, double elapsed,
					  double eta, void *ctx);

/**
 * Allocates a two-tower handle with default settings and no model.
 * @param[out] out  the handle, freed with knytt_twotower_close().
 * @return KNYTT_OK, KNYTT_EINVAL (out NULL), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_twotower_create(knytt_twotower **out);

/** Frees the handle and its model.  NULL is a no-op. */
KNYTT_API void knytt_twotower_close(knytt_twotower *tt);

/** Embedding dimension.  0 = default 64; valid 2..4096.  KNYTT_EINVAL. */
KNYTT_API int knytt_twotower_set_dim(knytt_twotower *tt, uint32_t dim);
/** Passes over the interactions.  0 = default 10; valid 1..100000. */
KNYTT_API int knytt_twotower_set_epochs(knytt_twotower *tt, unsigned epochs);
/** Positives per mini-batch (they are each other's negatives).
 *  0 = default 512; valid 2..65536. */
KNYTT_API int knytt_twotower_set_batch(knytt_twotower *tt, unsigned batch);
/** Adam learning rate.  0 = default 0.01; must be finite, in (0, 10]. */
KNYTT_API int knytt_twotower_set_lr(knytt_twotower *tt, float lr);
/** Softmax temperature.  0 = default 0.05; finite, in [0.001, 100]. */
KNYTT_API int knytt_twotower_set_temperature(knytt_twotower *tt,
					     float temperature);
/** Seed of initialisation, shuffling, id dropout and feature hashing
 *  (default 42). */
KNYTT_API int knytt_twotower_set_seed(knytt_twotower *tt, uint64_t seed);
/** Training threads.  0 = default (every core); at most 256. */
KNYTT_API int knytt_twotower_set_threads(knytt_twotower *tt,
					 unsigned threads);
/** Rows of the hashed feature table.  0 = default 2^18; valid 16..2^26. */
KNYTT_API int knytt_twotower_set_buckets(knytt_twotower *tt,
					 uint32_t buckets);
/** Recent items pooled by the user tower.  0 = default 20; 1..1000. */
KNYTT_API int knytt_twotower_set_history(knytt_twotower *tt,
					 unsigned history);
/** Probability that a training item is embedded without its id
 *  embedding, which teaches the feature path to stand alone (cold
 *  start).  Default 0.25; valid [0, 1); NaN is KNYTT_EINVAL. */
KNYTT_API int knytt_twotower_set_id_dropout(knytt_twotower *tt, float p);
/** Progress callback (NULL = none) and its context. */
KNYTT_API int knytt_twotower_set_progress(knytt_twotower *tt,
					  knytt_twotower_progress_fn fn,
					  void *ctx);

/**
 * Trains a model from @p n interactions: interaction k says user
 * users[k] (< nusers) met item items_idx[k] (< nitems).
 * @param items     nitems feature records (NULL: ids only, no features);
 *                  only read during the call.
 * @param weights   loss weight per interaction, finite and >= 0 (NULL: all
 *                  1); zero-weight interactions only feed histories.
 * @param times     time per interaction, any monotone unit (NULL: the
 *                  array order is the time order); ties keep array order.
 * @return KNYTT_OK; KNYTT_EINVAL (NULL array, n 0, index out of range,
 *         bad weight; the message names the interaction), KNYTT_ENOMEM,
 *         KNYTT_ECANCELED (the progress callback asked to stop).  On any
 *         failure the previous model, if any, is kept.
 */
KNYTT_API int knytt_twotower_train(knytt_twotower *tt, uint32_t nusers,
				   uint32_t nitems,
				   const knytt_twotower_item *items, size_t n,
				   const uint32_t *users,
				   const uint32_t *items_idx,
				   const float *weights, const int64_t *times);

/** Dimension of the current model (0 if none or tt NULL). */
KNYTT_API uint32_t knytt_twotower_dim(const knytt_twotower *tt);
/** Users of the current model (0 if none). */
KNYTT_API uint32_t knytt_twotower_count_users(const knytt_twotower *tt);
/** Items of the current model (0 if none). */
KNYTT_API uint32_t knytt_twotower_count_items(const knytt_twotower *tt);

/**
 * Copies the item-tower vectors of all known items (ids + features),
 * row-major, into @p out, which has room for @p cap rows of dim floats.
 * @return the number of rows (count_items); KNYTT_EINVAL (NULL),
 *         KNYTT_ERANGE (cap too small), KNYTT_ESTATE (no model).
 */
KNYTT_API int knytt_twotower_item_embeddings(const knytt_twotower *tt,
					     float *out, size_t cap);
/**
 * Copies the user-tower vectors of all known users (id + the training
 * history's most recent items).  Same contract as item_embeddings.
 */
KNYTT_API int knytt_twotower_user_embeddings(const knytt_twotower *tt,
					     float *out, size_t cap);

/**
 * Embeds an item from its features alone (no id embedding): for items
 * the model has never seen.  @p out receives dim floats: unit length, or
 * zeros for an item without any feature (every hashed feature has a
 * row, so unseen words still land somewhere).
 * @return KNYTT_OK, KNYTT_EINVAL (NULL), KNYTT_ESTATE (no model).
 */
KNYTT_API int knytt_twotower_embed_item(const knytt_twotower *tt,
					const knytt_twotower_item *item,
					float *out);
/**
 * Embeds a free-text query into item space through the text features of
 * the item tower (unigrams and bigrams), for semantic search.  An empty
 * query gives a zero vector.
 * @return KNYTT_OK, KNYTT_EINVAL (NULL), KNYTT_ESTATE (no model).
 */
KNYTT_API int knytt_twotower_embed_query(const knytt_twotower *tt,
					 const char *text, float *out);
/**
 * The user-tower vector for @p user (KNYTT_TWOTOWER_NO_USER for a user
 * without id embedding) whose recent items, most recent LAST, are
 * @p recent[0..n) (item indices of the model; only the last `history`
 * are used; n may be 0).  The engine calls this after new feedback.
 * @return KNYTT_OK, KNYTT_EINVAL (NULL, user or item out of range),
 *         KNYTT_ESTATE (no model).
 */
KNYTT_API int knytt_twotower_embed_user(const knytt_twotower *tt,
					uint32_t user, const uint32_t *recent,
					size_t n, float *out);

/**
 * Writes the model to @p path (temporary file + rename).  Format:
 * "KNYTTTT1" magic, version, sizes, parameters, feature and history
 * tables, all little-endian, then a CRC-32C of everything before it.
 * @return KNYTT_OK, KNYTT_EIO (path and errno text), KNYTT_ESTATE (no
 *         model), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_twotower_save(const knytt_twotower *tt,
				  const char *path);
/**
 * Serialises the model (same bytes as the file) into a buffer the
 * library allocates; free it with knytt_free().
 * @return KNYTT_OK, KNYTT_EINVAL, KNYTT_ESTATE, KNYTT_ENOMEM.
 */
KNYTT_API int knytt_twotower_save_mem(const knytt_twotower *tt, void **buf,
				      size_t *len);
/**
 * Replaces the handle's model with the one in @p path.
 * @return KNYTT_OK, KNYTT_EIO, KNYTT_ECORRUPT (bad magic, truncated,
 *         checksum mismatch, inconsistent tables: the message says
 *         which), KNYTT_EVERSION (newer format), KNYTT_ENOMEM.  On
 *         failure the previous model is kept.
 */
KNYTT_API int knytt_twotower_load(knytt_twotower *tt, const char *path);
/** Same as knytt_twotower_load from @p len bytes at @p buf (copied). */
KNYTT_API int knytt_twotower_load_mem(knytt_twotower *tt, const void *buf,
				      size_t len);
/* ===== end part: twotower ===== */

/* ===== part: engine (lib/engine, lib/taste) ===== */
/* ===== end part: engine ===== */

#ifdef __cplusplus
}
#endif

#endif /* KNYTT_H */
