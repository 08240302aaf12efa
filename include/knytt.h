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
 * Version.  Same major version = same ABI; the soname carries the major
 * (libknytt.so.1).  Within a major, structs only grow at their end and
 * each one the caller passes, in or out, starts with struct_size, so a
 * program built against an older header keeps working with a newer
 * library (see RECORDS below).  A change that moves a member of a public
 * struct, or removes or retypes a function, bumps the major, renames the
 * soname and is listed here:
 *   1.0.0  knytt_result and knytt_train_status gained struct_size as
 *          their first member (output structs became versioned too).
 * ---------------------------------------------------------------------- */
#define KNYTT_VERSION_MAJOR 1
#define KNYTT_VERSION_MINOR 0
#define KNYTT_VERSION_PATCH 0
#define KNYTT_VERSION_NUMBER                                                \
	(KNYTT_VERSION_MAJOR * 1000000 + KNYTT_VERSION_MINOR * 1000 +           \
	 KNYTT_VERSION_PATCH)
#define KNYTT_VERSION_STRING "1.0.0"

/** The version string of the library actually linked ("1.0.0"). */
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

/**
 * The input field the last failure on the calling thread was about, as the
 * library names it ("price", "ext_id", "user", a CSV column), or "" when
 * it named none (a bad argument, an I/O error).  Set and cleared with
 * knytt_errmsg(), so the two always describe the same failure; a caller
 * that reports errors per field reads it rather than parsing the message.
 */
KNYTT_API const char *knytt_errfield(void);

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
	 * distances are the f32 query's to the decoded vectors, and
	 * knytt_index_get returns the decoded (approximate) vector.  Trained
	 * on 4096 vectors or more, clustered data is coded as residuals from
	 * up to 256 learned cells (one byte more per vector; see
	 * knytt_index_train_quant). */
	KNYTT_QUANT_INT8_ONLY = 2,
	/* f16 (IEEE half) vectors instead of f32: half the vector memory.
	 * Each stored value is rounded to 11 significant bits (relative
	 * error at most 2^-11); queries keep f32, and distances (summed in
	 * f32) are the query's to the rounded vectors.  Stored values must
	 * stay within +-65504 (KNYTT_EINVAL otherwise; cosine stores unit
	 * vectors, so any finite value fits; queries are not limited).
	 * knytt_index_get returns the stored (rounded) vector. */
	KNYTT_QUANT_F16 = 3
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
/** Largest ef a search uses: a larger ef passed to a search call is
 *  clamped to it, not refused (knytt_index_set_ef_search refuses one).
 *  ef is then raised to k, and lowered to the number of items, so a
 *  search's buffers stay within O(min(max(ef, k), count)). */
#define KNYTT_INDEX_MAX_EF 100000

/** Default search ef when a search passes ef = 0.  0 = default 64;
 *  valid 1..KNYTT_INDEX_MAX_EF.  Before open.  KNYTT_EINVAL/ESTATE. */
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
 * KNYTT_QUANT_INT8_ONLY, from 4096 sample vectors or more, also learns
 * up to 256 cells (k-means, one per 40 sample vectors) and keeps them
 * when coding each vector's residual from its nearest cell, with a step
 * per dimension, has less than 0.8 times the squared error over the
 * sample; such an index saves as file format 4.
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
 * @param ef       candidate list size for this call (HNSW; clamped to
 *                 KNYTT_INDEX_MAX_EF, then raised to k if smaller;
 *                 0 = the index's default).  Ignored by flat.
 * @param[out] labels  k labels, nearest first.
 * @param[out] dists   k distances (may be NULL).
 * @return the number of results written, or KNYTT_EINVAL (NULL pointer,
 *         k 0, wrong dim, non-finite query), KNYTT_ESTATE (not open),
 *         KNYTT_ENOMEM (the search buffers could not grow; every label
 *         is then UINT64_MAX).
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
/* ------------------------------------------------------------------------
 * Store (lib/store): catalog, users, interactions, favorites, search log,
 * embeddings, models, tenants and API keys in SQLite or PostgreSQL.
 *
 * Life cycle: knytt_store_open() -> knytt_store_use_tenant() -> calls ->
 * knytt_store_close().  Every row belongs to a tenant; a handle works for
 * the one tenant selected with knytt_store_use_tenant() and no call made
 * through it reads or changes another tenant's rows (tenant creation and
 * API-key lookup, which must work before a tenant is known, are the only
 * calls that take no tenant).  Calls that need a tenant fail with
 * KNYTT_ESTATE while none is selected.
 *
 * TIMES are int64 Unix milliseconds (UTC) everywhere.  A time argument of
 * 0 on input means "now".
 *
 * IDS.  Items and users have the caller's external id (a UTF-8 string,
 * unique per tenant, 1..256 bytes) and a stable internal id (uint64,
 * never reused, unique across tenants) that the vector index uses as its
 * label.
 *
 * RECORDS.  Items and interactions have many fields, so they travel in
 * versioned structs: the first member, struct_size, is set by the caller
 * to sizeof(the struct) as compiled against its header.  A later version
 * may append members, never reorder or remove them; the library reads
 * only the members that lie within struct_size and treats the others as
 * unset (the same pattern as Win32's cbSize), so old binaries keep
 * working without a rebuild.  Records the library hands out (item get,
 * callbacks) always have the library's full size.  Strings in records are
 * NUL-terminated UTF-8; invalid UTF-8 is rejected with KNYTT_EINVAL.
 *
 * BORROWED RECORDS.  Records passed to callbacks, and their strings, are
 * valid only during the callback.  A callback returns 0 to continue or
 * non-zero to stop; the iterating call then returns KNYTT_ECANCELED.
 * Callbacks may call other functions on the same store handle.
 *
 * BACKENDS.  "sqlite:PATH" (one file in WAL mode with a 5 s busy timeout;
 * "sqlite::memory:" for a private in-memory database) and
 * "postgres://..." / "postgresql://..." (any libpq connection URI).
 * Schema migrations are numbered, run on open inside one transaction and
 * recorded in the table knytt_schema; a database whose schema is newer
 * than this library fails to open with KNYTT_EVERSION.
 *
 * THREAD SAFETY.  A knytt_store handle is one database connection: use it
 * from one thread at a time (distinct handles, even on one database, may
 * be used from distinct threads and processes at once; SQLite serializes
 * writers, PostgreSQL runs them concurrently).
 * ---------------------------------------------------------------------- */
typedef struct knytt_store knytt_store;

/** Largest external id, in bytes. */
#define KNYTT_STORE_MAX_ID 256
/** Length of an API key string (without the terminating NUL). */
#define KNYTT_STORE_KEY_LEN 70

/**
 * Opens (creating if needed) the store at @p uri and brings its schema up
 * to date.
 * @param uri       "sqlite:PATH", "sqlite::memory:", "postgres://..." or
 *                  "postgresql://...".
 * @param[out] out  the handle; free with knytt_store_close().
 * @return KNYTT_OK, KNYTT_EINVAL (NULL argument, unknown scheme),
 *         KNYTT_EIO / KNYTT_EDB (cannot open or connect; the message has
 *         the database's own words), KNYTT_EVERSION (schema newer than the
 *         library), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_store_open(const char *uri, knytt_store **out);

/** Closes the connection and frees the handle.  NULL is a no-op. */
KNYTT_API void knytt_store_close(knytt_store *st);

/**
 * Writes @p uri to @p out with every password replaced by "***": the
 * user info of a URL (postgres://user:PASS@host, percent-encoded or
 * not), a password= query parameter, and password= in the keyword/value
 * form (host=h password=PASS, or password='a b').  Other text is copied
 * unchanged.  Use it wherever a store URI is shown: the library's own
 * messages already do.
 * @param[out] out  room for @p cap bytes; always NUL-terminated when cap
 *                  is not 0 (truncated if too small).
 * @return the length of the whole redacted text (as snprintf: a value
 *         >= cap means it was truncated), KNYTT_EINVAL (NULL uri, or NULL
 *         out with cap > 0).
 */
KNYTT_API int knytt_uri_redact(const char *uri, char *out, size_t cap);

/** Default of knytt_store_set_busy_timeout for SQLite, in ms. */
#define KNYTT_STORE_BUSY_MS 30000

/**
 * How long a call waits for a lock that another connection or process
 * holds before it fails with KNYTT_EBUSY (nothing of that call is then
 * stored).  SQLite: one writer at a time per database file; a waiting
 * writer tries again every millisecond, so writers that commit often
 * (imports commit every batch) take turns instead of starving each
 * other; default KNYTT_STORE_BUSY_MS.  PostgreSQL: its lock_timeout;
 * default no limit.  @p ms = 0 restores the default.
 * @return KNYTT_OK, KNYTT_EINVAL (NULL, ms over 3600000), KNYTT_EDB.
 */
KNYTT_API int knytt_store_set_busy_timeout(knytt_store *st, unsigned ms);

/** Default of knytt_store_set_cache_size for SQLite, in bytes (8 MiB). */
#define KNYTT_STORE_CACHE_BYTES (8u << 20)

/**
 * The most memory this connection keeps as its own cache of database
 * pages.  SQLite: the connection's page cache (PRAGMA cache_size),
 * default KNYTT_STORE_CACHE_BYTES; @p bytes = 0 restores it.  SQLite
 * empties a connection's cache whenever another connection has committed
 * since its last read, so in a database that another connection writes
 * all the time (a server's reading connections beside the engine's) a
 * large cache gains nothing between calls, and keeps whatever the last
 * big read left in it (a count over every interaction) until the next
 * call on the handle; there a small one (knyttd's: 1 MiB) holds as fast
 * and bounds that memory.  The search and experiment reports, which seek
 * into the interactions once per shopper, read with the default on a
 * connection set below it and set it back after.  The connection that
 * makes the writes keeps its cache.  PostgreSQL: no page cache in the
 * client; accepted, no effect.
 * @return KNYTT_OK, KNYTT_EINVAL (NULL, bytes over 1 TiB), KNYTT_EDB.
 */
KNYTT_API int knytt_store_set_cache_size(knytt_store *st, size_t bytes);

/** "sqlite" or "postgres" ("" if st is NULL). */
KNYTT_API const char *knytt_store_backend(const knytt_store *st);

/** The schema version of the open database (a positive number), or
 *  KNYTT_EINVAL. */
KNYTT_API int knytt_store_schema_version(const knytt_store *st);

/**
 * Number of rows per transaction used by knytt_store_import (default
 * 50000; 0 = default; at most 10000000).  Larger batches commit less
 * often: in SQLite each commit writes every index page the batch touched
 * to the WAL, so at 2M interactions 100k-row batches import about 40%
 * faster than 10k-row ones.  KNYTT_EINVAL.
 */
KNYTT_API int knytt_store_set_batch_size(knytt_store *st, size_t rows);

/* ---- tenants and API keys -------------------------------------------- */

/** API key scopes: a secret key may ingest, train and administer; a
 *  public key may only search, recommend and send feedback. */
typedef enum knytt_key_scope {
	KNYTT_KEY_SECRET = 1,
	KNYTT_KEY_PUBLIC = 2
} knytt_key_scope;

/**
 * Creates tenant @p name (unique; 1..64 characters of A-Z a-z 0-9 _ - .,
 * the first a letter or digit).
 * @param[out] id  its id (may be NULL).
 * @return KNYTT_OK, KNYTT_EEXIST, KNYTT_EINVAL, KNYTT_EDB.
 */
KNYTT_API int knytt_store_tenant_create(knytt_store *st, const char *name,
					uint64_t *id);

/** Looks tenant @p name up.  KNYTT_OK, KNYTT_ENOTFOUND, KNYTT_EINVAL. */
KNYTT_API int knytt_store_tenant_find(knytt_store *st, const char *name,
				      uint64_t *id);

/**
 * Selects the tenant that every following call works for.
 * @return KNYTT_OK, KNYTT_ENOTFOUND (no such tenant), KNYTT_EINVAL.
 */
KNYTT_API int knytt_store_use_tenant(knytt_store *st, uint64_t tenant);

/** The selected tenant's id, or 0 when none is selected. */
KNYTT_API uint64_t knytt_store_tenant(const knytt_store *st);

/**
 * Creates an API key for the selected tenant.  The key ("kn_sk_" or
 * "kn_pk_" and 64 hex digits from RAND_bytes) is written to @p key and
 * shown this once: only its SHA-256 is stored.
 * @param[out] key  KNYTT_STORE_KEY_LEN + 1 bytes.
 * @return KNYTT_OK, KNYTT_EINVAL, KNYTT_ESTATE (no tenant), KNYTT_EIO
 *         (no randomness), KNYTT_EDB.
 */
KNYTT_API int knytt_store_key_create(knytt_store *st, knytt_key_scope scope,
				     char *key);

/**
 * Finds the tenant and scope of @p key (works without a selected tenant).
 * The lookup goes by the key's SHA-256 through a unique index, so its
 * time does not depend on how much of a wrong key matches; the hash read
 * back is compared with CRYPTO_memcmp.
 * @return KNYTT_OK, KNYTT_EAUTH (unknown, malformed or revoked key),
 *         KNYTT_EINVAL (NULL), KNYTT_EDB.
 */
KNYTT_API int knytt_store_key_lookup(knytt_store *st, const char *key,
				     uint64_t *tenant,
				     knytt_key_scope *scope);

/** Revokes @p key of the selected tenant (a key of another tenant is
 *  KNYTT_ENOTFOUND).  KNYTT_OK, KNYTT_ENOTFOUND, KNYTT_ESTATE. */
KNYTT_API int knytt_store_key_revoke(knytt_store *st, const char *key);

/* ---- shoppers' credentials and service secrets (lib/store/auth.c) ----- */

/**
 * The name of tenant @p id, copied into @p name (room for @p cap bytes;
 * KNYTT_STORE_MAX_ID + 1 always suffices).  Works without a selected
 * tenant: a service that found the tenant by an API key names it this way.
 * @return KNYTT_OK, KNYTT_ENOTFOUND, KNYTT_ERANGE (cap too small),
 *         KNYTT_EINVAL, KNYTT_EDB.
 */
KNYTT_API int knytt_store_tenant_name(knytt_store *st, uint64_t id,
				      char *name, size_t cap);

/**
 * Stores the password hash of shopper @p user of the selected tenant (the
 * user is created if unknown, in the same transaction).  @p hash is the
 * caller's opaque string (a PHC string such as libsodium's argon2id
 * "$argon2id$v=19$...", 1..512 bytes): the store never sees a password.
 * @param replace  0: fail with KNYTT_EEXIST when the user has one already
 *                 (registration); 1: replace it (a password change).
 * @return KNYTT_OK, KNYTT_EEXIST, KNYTT_EINVAL (the message names the
 *         field), KNYTT_ESTATE (no tenant), KNYTT_EDB.
 */
KNYTT_API int knytt_store_credential_set(knytt_store *st, const char *user,
					 const char *hash, int replace);

/**
 * Copies the password hash of shopper @p user of the selected tenant into
 * @p hash (room for @p cap bytes; 513 always suffices).
 * @return KNYTT_OK, KNYTT_ENOTFOUND (unknown user or no password),
 *         KNYTT_ERANGE, KNYTT_EINVAL, KNYTT_ESTATE, KNYTT_EDB.
 */
KNYTT_API int knytt_store_credential_get(knytt_store *st, const char *user,
					 char *hash, size_t cap);

/**
 * Reads the service secret @p name (1..256 bytes; not per tenant),
 * creating it from RAND_bytes on first use: @p len bytes (16..256) into
 * @p out.  Every process on one database reads the same bytes, so tokens
 * signed by one knyttd verify in another.
 * @return KNYTT_OK, KNYTT_ECORRUPT (the stored secret has another
 *         length), KNYTT_EINVAL, KNYTT_EIO (no randomness), KNYTT_EDB.
 */
KNYTT_API int knytt_store_secret(knytt_store *st, const char *name,
				 unsigned char *out, size_t len);

/* ---- items ----------------------------------------------------------- */

/**
 * A catalog item (versioned struct, see RECORDS above).  On upsert, NULL
 * strings are stored as NULL (absent); ext_id is required.
 */
typedef struct knytt_item {
	size_t struct_size;      /* sizeof(knytt_item), set by the caller */
	uint64_t id;             /* internal id; output only */
	const char *ext_id;      /* required, 1..256 bytes */
	const char *title;       /* <= 1024 bytes */
	const char *description; /* <= 65536 bytes */
	const char *category;    /* path "shoes/running", <= 512 bytes,
				    no empty segment */
	double price;            /* >= 0, finite */
	const char *currency;    /* 3 upper-case letters (ISO 4217) or NULL */
	int in_stock;            /* 0 or 1 */
	double quality;          /* quality score, finite (any scale) */
	const char *image_url;   /* <= 2048 bytes */
	const char *attributes;  /* a JSON object, <= 65536 bytes, or NULL */
	int64_t created_ms;      /* output only */
	int64_t updated_ms;      /* output only: time of the last change */
	int deleted;             /* output only: 1 after knytt_store_item_delete */
} knytt_item;

/**
 * Inserts the item, or updates the item with the same ext_id (and
 * undeletes it).  An update that changes nothing keeps updated_ms, so
 * unchanged items do not show up in knytt_store_items_changed.
 * @param[out] id  the internal id (may be NULL).
 * @return KNYTT_OK, KNYTT_EINVAL (NULL, bad field: the message names it),
 *         KNYTT_ESTATE (no tenant), KNYTT_EDB.
 */
KNYTT_API int knytt_store_item_upsert(knytt_store *st, const knytt_item *item,
				      uint64_t *id);

/**
 * Reads an item by external id (deleted items too; see ->deleted).
 * @param[out] out  one allocation holding the record and its strings;
 *                  release it with knytt_free().
 * @return KNYTT_OK, KNYTT_ENOTFOUND, KNYTT_EINVAL, KNYTT_ESTATE, KNYTT_EDB.
 */
KNYTT_API int knytt_store_item_get(knytt_store *st, const char *ext_id,
				   knytt_item **out);

/** Same, by internal id (an id of another tenant is KNYTT_ENOTFOUND). */
KNYTT_API int knytt_store_item_get_id(knytt_store *st, uint64_t id,
				      knytt_item **out);

/**
 * Soft-deletes an item: it stays readable with deleted = 1, leaves keyword
 * search and shows up in knytt_store_items_changed so indexes drop it.
 * @return KNYTT_OK, KNYTT_ENOTFOUND, KNYTT_EINVAL, KNYTT_ESTATE.
 */
KNYTT_API int knytt_store_item_delete(knytt_store *st, const char *ext_id);

/** Callback over items; see BORROWED RECORDS. */
typedef int (*knytt_item_fn)(const knytt_item *item, void *ctx);

/**
 * Calls @p fn for every item (deleted ones included) whose updated_ms is
 * >= @p since_ms, in (updated_ms, id) order: the incremental feed of an
 * index.  Pages through the table, so memory stays constant.
 * @return the number of items visited, KNYTT_ECANCELED (fn stopped),
 *         KNYTT_EINVAL, KNYTT_ESTATE, KNYTT_EDB.
 */
KNYTT_API int knytt_store_items_changed(knytt_store *st, int64_t since_ms,
					knytt_item_fn fn, void *ctx);

/** Number of items of the tenant (deleted ones excluded), or an error. */
KNYTT_API int64_t knytt_store_item_count(knytt_store *st);

/* ---- keyword search -------------------------------------------------- */

/**
 * Keyword search over title, description and category with the
 * database's own engine: FTS5 ranked by bm25() with column weights
 * title 3, description 1, category 2 (SQLite), or a weighted tsvector with
 * a GIN index ranked by ts_rank (PostgreSQL).  Both use the 'simple'
 * tokenization: lower-cased words, no stemming.  Every word of @p query
 * must match (AND); punctuation separates words and operators have no
 * meaning, so any text is safe.  Deleted items never match.
 *
 * @param category_prefix  NULL, or a category path: an item matches when
 *                         its category equals it or starts with it and "/".
 * @param price_min, price_max  inclusive bounds; NAN = unbounded.
 * @param in_stock_only    non-zero: only items with in_stock = 1.
 * @param[out] ids     up to @p cap internal item ids, best first.
 * @param[out] scores  their scores, higher is better (may be NULL).  The
 *                     scales of the two backends differ.
 * @return the number of results, KNYTT_EINVAL (NULL, query without a
 *         word), KNYTT_ESTATE, KNYTT_EDB.
 */
KNYTT_API int knytt_store_search(knytt_store *st, const char *query,
				 const char *category_prefix,
				 double price_min, double price_max,
				 int in_stock_only, uint64_t *ids,
				 double *scores, size_t cap);

/** A caller's filter for knytt_store_search_fn: non-zero keeps the item. */
typedef int (*knytt_accept_fn)(uint64_t item_id, void *ctx);

/**
 * knytt_store_search() with a filter of the caller's instead of the
 * category, price and stock ones: @p accept (not NULL) is asked about
 * candidate items, in no particular order, and only accepted ones are
 * returned; the results are the best accepted items, exactly as if the
 * filter were applied to a full ranking.  Meant for callers that hold
 * item attributes in memory (the engine tests a bitset): SQLite asks it
 * before reading anything else about a row, so a selective filter costs
 * no database lookups for the rows it refuses.  @p accept may be called
 * for items of other tenants and deleted ones (they are never returned)
 * and must not use the store.
 *
 * @return as knytt_store_search().
 */
KNYTT_API int knytt_store_search_fn(knytt_store *st, const char *query,
				    knytt_accept_fn accept, void *ctx,
				    uint64_t *ids, double *scores, size_t cap);

/* ---- users ----------------------------------------------------------- */

/**
 * Inserts or updates user @p ext_id with @p attributes (a JSON object or
 * NULL).
 * @param[out] id  internal id (may be NULL).
 * @return KNYTT_OK, KNYTT_EINVAL, KNYTT_ESTATE, KNYTT_EDB.
 */
KNYTT_API int knytt_store_user_upsert(knytt_store *st, const char *ext_id,
				      const char *attributes, uint64_t *id);

/**
 * Reads user @p ext_id.
 * @param[out] id          internal id (may be NULL).
 * @param[out] attributes  a copy of the JSON text, or NULL when none;
 *                         free with knytt_free().  May be NULL.
 * @param[out] created_ms  creation time (may be NULL).
 * @return KNYTT_OK, KNYTT_ENOTFOUND, KNYTT_EINVAL, KNYTT_ESTATE.
 */
KNYTT_API int knytt_store_user_get(knytt_store *st, const char *ext_id,
				   uint64_t *id, char **attributes,
				   int64_t *created_ms);

/** Number of users of the tenant, or an error. */
KNYTT_API int64_t knytt_store_user_count(knytt_store *st);

/* ---- interactions ---------------------------------------------------- */

/**
 * One interaction (versioned struct).  Types: "view", "click",
 * "add_to_cart", "purchase", "favorite", "rating", or a custom name
 * ([a-z0-9_], 1..32 bytes).  Default weights (weight 0 on input): view 1,
 * click 2, add_to_cart 4, favorite 4, purchase 8, rating 1, custom 1.
 */
typedef struct knytt_interaction {
	size_t struct_size;   /* sizeof(knytt_interaction), set by caller */
	uint64_t id;          /* output only: append order */
	const char *user;     /* user external id; created if unknown */
	const char *item;     /* item external id; must exist */
	uint64_t user_id;     /* output only */
	uint64_t item_id;     /* output only */
	const char *type;     /* see above */
	double weight;        /* > 0, or 0 for the type's default */
	int has_value;        /* 1 if value holds a value (a rating) */
	double value;         /* finite */
	int64_t ts_ms;        /* event time; 0 = now */
	const char *event_id; /* client event id or NULL; a repeated one is
				 ignored (idempotent retries) */
} knytt_interaction;

/**
 * Appends one interaction.  Interactions are never changed or removed.
 * A "favorite" interaction also marks the favorite
 * (knytt_store_favorite_set, dated by the event) in the same commit.
 * @return 1 (stored), 0 (a duplicate event_id, ignored), KNYTT_EINVAL
 *         (bad field), KNYTT_ENOTFOUND (unknown item), KNYTT_ESTATE,
 *         KNYTT_EDB.
 */
KNYTT_API int knytt_store_interaction_add(knytt_store *st,
					  const knytt_interaction *ix);

/** Most interactions in one knytt_store_interactions_add batch. */
#define KNYTT_STORE_MAX_BATCH 10000

/**
 * Appends the @p n interactions @p ix points to (at most
 * KNYTT_STORE_MAX_BATCH) in one transaction: all of them are stored, or
 * none is.  A bad event (its message names it: "interaction 3: field
 * type ...") or a store failure part-way (a full disk, a lost
 * connection) rolls the whole batch back, so retrying it cannot store
 * an event twice even without event ids.  Events with an event_id
 * already stored (or repeated in the batch) are skipped, as by
 * knytt_store_interaction_add; favorites are marked in the same commit.
 * @return the number stored (duplicates skipped), KNYTT_EINVAL (bad
 *         event; nothing stored), KNYTT_ENOTFOUND (unknown item; nothing
 *         stored), KNYTT_ERANGE (too many), KNYTT_ESTATE, KNYTT_EBUSY,
 *         KNYTT_EDB (nothing stored).
 * Thread note: as every store call, one thread at a time per handle.
 */
KNYTT_API int knytt_store_interactions_add(knytt_store *st,
					   const knytt_interaction *const *ix,
					   size_t n);

/** Callback over interactions; see BORROWED RECORDS. */
typedef int (*knytt_interaction_fn)(const knytt_interaction *ix, void *ctx);

/**
 * The @p n most recent interactions of user @p user (n at most 512; more
 * is read as 512), newest first.
 * @return the number visited, KNYTT_ENOTFOUND (unknown user),
 *         KNYTT_ECANCELED, KNYTT_EINVAL, KNYTT_ESTATE.
 */
KNYTT_API int knytt_store_user_recent(knytt_store *st, const char *user,
				      size_t n, knytt_interaction_fn fn,
				      void *ctx);

/**
 * Every interaction of user @p user, oldest first (by time, then id),
 * read a page at a time: the engine loads a shopper's whole history
 * with it.
 * @return the number visited, KNYTT_ENOTFOUND (unknown user),
 *         KNYTT_ECANCELED (@p fn returned non-zero), KNYTT_EINVAL,
 *         KNYTT_ESTATE, KNYTT_EDB.
 */
KNYTT_API int knytt_store_user_history(knytt_store *st, const char *user,
				       knytt_interaction_fn fn, void *ctx);

/** The @p n most recent interactions with item @p item, newest first.
 *  Errors as knytt_store_user_recent. */
KNYTT_API int knytt_store_item_recent(knytt_store *st, const char *item,
				      size_t n, knytt_interaction_fn fn,
				      void *ctx);

/**
 * Streams every interaction with ts_ms >= @p since_ms in (ts_ms, id)
 * order, a page of rows at a time (constant memory for any count: a
 * training run reads millions this way).
 * @return the number visited (saturating at INT_MAX), KNYTT_ECANCELED,
 *         KNYTT_EINVAL, KNYTT_ESTATE, KNYTT_EDB.
 */
KNYTT_API int knytt_store_interactions_since(knytt_store *st,
					     int64_t since_ms,
					     knytt_interaction_fn fn,
					     void *ctx);

/** Number of interactions of the tenant, or an error. */
KNYTT_API int64_t knytt_store_interaction_count(knytt_store *st);

/**
 * The interaction high-water mark: the highest interaction id stored in
 * the database, any tenant (0 when there is none).  Ids grow with every
 * insert and are never reused, so the interactions "after" a mark are
 * those stored since it was read, whatever their event times.
 * @param[out] mark  the mark.
 * @return KNYTT_OK, KNYTT_EINVAL (NULL), KNYTT_EDB.
 */
KNYTT_API int knytt_store_interaction_mark(knytt_store *st, int64_t *mark);

/**
 * How many interactions of the tenant were stored after @p mark,
 * counting at most @p limit (>= 1): the cost grows with the ids walked
 * past the mark (all tenants'), never with the whole history.
 * @return the count, KNYTT_EINVAL, KNYTT_ESTATE, KNYTT_EDB.
 */
KNYTT_API int64_t knytt_store_interactions_after_count(knytt_store *st,
						       int64_t mark,
						       int64_t limit);

/**
 * Streams the tenant's interactions stored after @p mark, in id order,
 * a page at a time (records borrowed as for
 * knytt_store_interactions_since).
 * @return the number visited, KNYTT_ECANCELED, KNYTT_EINVAL,
 *         KNYTT_ESTATE, KNYTT_EDB.
 */
KNYTT_API int knytt_store_interactions_after(knytt_store *st, int64_t mark,
					     knytt_interaction_fn fn,
					     void *ctx);

/**
 * Counts interactions per item with from_ms <= ts_ms < to_ms (for
 * trending), optionally of one @p type (NULL = all), most counted first
 * (ties by item id).
 * @param[out] item_ids, counts  up to @p cap entries.
 * @return the number of entries, KNYTT_EINVAL, KNYTT_ESTATE, KNYTT_EDB.
 */
KNYTT_API int knytt_store_item_counts(knytt_store *st, int64_t from_ms,
				      int64_t to_ms, const char *type,
				      uint64_t *item_ids, uint64_t *counts,
				      size_t cap);

/* ---- favorites and search log ------------------------------------------ */

/** Marks @p item a favorite of @p user (user created if unknown).
 *  Idempotent.  KNYTT_OK, KNYTT_ENOTFOUND (item), KNYTT_EINVAL. */
KNYTT_API int knytt_store_favorite_set(knytt_store *st, const char *user,
				       const char *item);
/** Removes the mark.  KNYTT_OK (also when it was not set),
 *  KNYTT_ENOTFOUND (unknown user or item), KNYTT_EINVAL. */
KNYTT_API int knytt_store_favorite_unset(knytt_store *st, const char *user,
					 const char *item);
/** Internal ids of @p user's favorites, newest first, up to @p cap.
 *  Returns the count (0 for an unknown user) or an error. */
KNYTT_API int knytt_store_favorite_list(knytt_store *st, const char *user,
					uint64_t *item_ids, size_t cap);

/**
 * Logs a search: @p query (<= 1024 bytes), @p user (NULL = anonymous),
 * the number of results and the time (0 = now).
 * @param[out] log_id  the entry's id, for knytt_store_search_click.
 * @return KNYTT_OK, KNYTT_EINVAL, KNYTT_ESTATE, KNYTT_EDB.
 */
KNYTT_API int knytt_store_search_log(knytt_store *st, const char *query,
				     const char *user, int result_count,
				     int64_t ts_ms, uint64_t *log_id);
/** Records that @p item was clicked after search @p log_id.
 *  KNYTT_OK, KNYTT_ENOTFOUND (log entry or item), KNYTT_EINVAL. */
KNYTT_API int knytt_store_search_click(knytt_store *st, uint64_t log_id,
				       const char *item);
/**
 * Reads a search log entry.
 * @param[out] query         a copy, free with knytt_free() (may be NULL).
 * @param[out] result_count  (may be NULL).
 * @param[out] clicked_item  internal id, 0 when nothing was clicked.
 * @return KNYTT_OK, KNYTT_ENOTFOUND, KNYTT_EINVAL, KNYTT_ESTATE.
 */
KNYTT_API int knytt_store_search_log_get(knytt_store *st, uint64_t log_id,
					 char **query, int *result_count,
					 uint64_t *clicked_item);

/* ---- embeddings and models --------------------------------------------- */

/** What an embedding belongs to. */
typedef enum knytt_owner {
	KNYTT_OWNER_ITEM = 1,
	KNYTT_OWNER_USER = 2
} knytt_owner;

/**
 * Stores (replacing) the embedding of item or user @p id for model
 * version @p version (1..256 bytes): @p dim floats, kept as a
 * little-endian float blob.
 * @return KNYTT_OK, KNYTT_EINVAL (NULL, dim 0 or > 65536, non-finite
 *         value), KNYTT_ENOTFOUND (no such item/user), KNYTT_ESTATE.
 */
KNYTT_API int knytt_store_embedding_put(knytt_store *st, knytt_owner owner,
					uint64_t id, const char *version,
					const float *vec, uint32_t dim);

/**
 * Reads an embedding into @p out (room for @p cap floats).
 * @return its dimension (> cap means nothing was copied),
 *         KNYTT_ENOTFOUND, KNYTT_EINVAL, KNYTT_ESTATE, KNYTT_ECORRUPT.
 */
KNYTT_API int knytt_store_embedding_get(knytt_store *st, knytt_owner owner,
					uint64_t id, const char *version,
					float *out, uint32_t cap);

/** Callback over embeddings: @p vec (dim floats) is borrowed. */
typedef int (*knytt_embedding_fn)(uint64_t id, const float *vec,
				  uint32_t dim, void *ctx);

/** Calls @p fn for every embedding of @p owner kind and @p version, by
 *  ascending id.  Returns the count, KNYTT_ECANCELED or an error. */
KNYTT_API int knytt_store_embeddings_each(knytt_store *st, knytt_owner owner,
					  const char *version,
					  knytt_embedding_fn fn, void *ctx);

/**
 * Stores model @p name (1..256 bytes) as a new version: 1 + the highest
 * stored version of that name.
 * @param blob, size   the model bytes (size may be 0).
 * @param metadata     a JSON object (metrics, training time...) or NULL.
 * @param[out] version the version assigned (may be NULL).
 * @return KNYTT_OK, KNYTT_EINVAL, KNYTT_ESTATE, KNYTT_EDB.
 */
KNYTT_API int knytt_store_model_put(knytt_store *st, const char *name,
				    const void *blob, size_t size,
				    const char *metadata, int64_t *version);

/**
 * Reads version @p version (0 = the latest) of model @p name.  With
 * @p blob NULL the blob's bytes are not read at all (its size still is).
 * @param[out] blob      a copy, free with knytt_free() (may be NULL).
 * @param[out] size      its size (may be NULL).
 * @param[out] metadata  a copy of the JSON or NULL; knytt_free().
 * @param[out] version_out  the version read (may be NULL).
 * @param[out] created_ms   when it was stored (may be NULL).
 * @return KNYTT_OK, KNYTT_ENOTFOUND, KNYTT_EINVAL, KNYTT_ESTATE.
 */
KNYTT_API int knytt_store_model_get(knytt_store *st, const char *name,
				    int64_t version, void **blob,
				    size_t *size, char **metadata,
				    int64_t *version_out,
				    int64_t *created_ms);

/**
 * Deletes the versions of model @p name below @p below (the newest ones
 * stay): for settings kept as model versions that must not linger once
 * replaced, such as a service's credentials.  Versions are never reused:
 * the next knytt_store_model_put still numbers after the newest kept.
 * @return the number of versions deleted, KNYTT_EINVAL (bad name, below
 *         < 1), KNYTT_ESTATE (no tenant), KNYTT_EDB.
 */
KNYTT_API int knytt_store_model_prune(knytt_store *st, const char *name,
				      int64_t below);

/* ---- background jobs (lib/store/jobs.c) ------------------------------ */
/*
 * The record of a background job of a tenant (a training job of knyttd),
 * kept in the store so that it outlives the process that ran it and is
 * readable from every process on the database.  The store keeps what the
 * caller writes; the meaning of the states is the caller's, except that
 * knytt_store_job_fail_unfinished() ends the queued and running ones.
 */
typedef enum knytt_job_state {
	KNYTT_JOB_QUEUED = 0,
	KNYTT_JOB_RUNNING = 1,
	KNYTT_JOB_DONE = 2,
	KNYTT_JOB_FAILED = 3
} knytt_job_state;

/** A job record.  Versioned struct: set struct_size = sizeof(knytt_job). */
typedef struct knytt_job {
	size_t struct_size;    /* sizeof(knytt_job), set by the caller */
	const char *id;        /* required, 1..256 bytes, unique per tenant */
	knytt_job_state state;
	int64_t created_ms;    /* when it was asked for */
	int64_t started_ms;    /* 0 = not yet */
	int64_t finished_ms;   /* 0 = not yet */
	double progress;       /* 0..1 */
	const char *metrics;   /* a JSON object, <= 65536 bytes, or NULL */
	const char *error;     /* why it failed, <= 4096 bytes, or NULL */
	int64_t updated_ms;    /* output only: the record's last write */
} knytt_job;

/**
 * Inserts the job record of the selected tenant, or replaces the one with
 * the same id (every member is written; created_ms of the first write is
 * kept).
 * @return KNYTT_OK, KNYTT_EINVAL (NULL, struct_size too small, a bad
 *         member: the message names it), KNYTT_ESTATE (no tenant),
 *         KNYTT_EDB.
 */
KNYTT_API int knytt_store_job_put(knytt_store *st, const knytt_job *job);

/**
 * Reads job @p id of the selected tenant.
 * @param[out] out  a copy (its strings in the same block), freed with
 *                  knytt_free(); struct_size is set.
 * @return KNYTT_OK, KNYTT_ENOTFOUND, KNYTT_EINVAL, KNYTT_ESTATE,
 *         KNYTT_EDB.
 */
KNYTT_API int knytt_store_job_get(knytt_store *st, const char *id,
				  knytt_job **out);

/**
 * Marks every queued or running job of the selected tenant, except
 * @p keep_id (may be NULL), failed with @p error (required) and
 * finished now: what a process does when it knows nobody runs those
 * jobs any more (their process died).  Finished jobs are left alone.
 * @return the number of jobs marked, KNYTT_EINVAL, KNYTT_ESTATE,
 *         KNYTT_EDB.
 */
KNYTT_API int knytt_store_job_fail_unfinished(knytt_store *st,
					      const char *keep_id,
					      const char *error);

/* ---- notifications and advisory locks (PostgreSQL) -------------------- */

/**
 * A notification received by knytt_store_wait_notify: @p channel and
 * @p payload are borrowed for the call.  Non-zero stops the wait.
 */
typedef int (*knytt_notify_fn)(void *ctx, const char *channel,
			       const char *payload);

/**
 * Sends @p payload (UTF-8, under 8000 bytes) on @p channel (a lowercase
 * identifier: [a-z_][a-z0-9_]*, up to 63 bytes) to every connection of
 * the database listening on it (PostgreSQL NOTIFY: delivered when the
 * sender's transaction commits, at once outside a transaction, in
 * order).  Several processes on one database (replicas) tell each other
 * what they wrote this way.
 * @return KNYTT_OK, KNYTT_EINVAL (bad channel or payload), KNYTT_ENOTSUP
 *         (SQLite: one process owns the file), KNYTT_EDB.
 */
KNYTT_API int knytt_store_notify(knytt_store *st, const char *channel,
				 const char *payload);
/**
 * Starts listening on @p channel on this connection (PostgreSQL
 * LISTEN); notifications queue up until knytt_store_wait_notify reads
 * them.  Use a connection of its own: queries on it delay reading.
 * @return KNYTT_OK, KNYTT_EINVAL, KNYTT_ENOTSUP (SQLite), KNYTT_EDB.
 */
KNYTT_API int knytt_store_listen(knytt_store *st, const char *channel);
/**
 * Waits up to @p timeout_ms (0: does not wait) for notifications on the
 * channels this connection listens on and calls @p fn for each, in the
 * order they were sent.
 * @return the number delivered (0 on a timeout), KNYTT_ECANCELED (fn
 *         stopped), KNYTT_EINVAL, KNYTT_ENOTSUP (SQLite), KNYTT_EIO (the
 *         connection is lost: notifications sent meanwhile are lost
 *         too; open a new handle, listen again and catch up from the
 *         tables).
 */
KNYTT_API int knytt_store_wait_notify(knytt_store *st, int timeout_ms,
				      knytt_notify_fn fn, void *ctx);
/**
 * Tries to take the session-level advisory lock @p key of this database
 * schema (PostgreSQL pg_try_advisory_lock on a hash of the schema and
 * the key), without waiting.  It is held until knytt_store_unlock or
 * until the connection ends, also when the process dies, so a crashed
 * holder never blocks the others.  Used to elect one worker among
 * processes (one trainer per tenant).
 * @return 1 taken, 0 held by another connection, KNYTT_ENOTSUP (SQLite),
 *         KNYTT_EINVAL, KNYTT_EDB.
 */
KNYTT_API int knytt_store_try_lock(knytt_store *st, int64_t key);
/** Releases a lock taken by knytt_store_try_lock on this connection.
 *  @return KNYTT_OK, KNYTT_ENOTFOUND (not held), KNYTT_ENOTSUP, KNYTT_EDB. */
KNYTT_API int knytt_store_unlock(knytt_store *st, int64_t key);

/* ---- bulk import ------------------------------------------------------- */

/** What a file holds. */
typedef enum knytt_record_kind {
	KNYTT_RECORD_ITEMS = 1,
	KNYTT_RECORD_USERS = 2,
	KNYTT_RECORD_INTERACTIONS = 3
} knytt_record_kind;

/** File formats.  See knytt_store(3) for the columns of each. */
typedef enum knytt_format {
	/* RFC 4180 CSV, UTF-8, header row naming the columns */
	KNYTT_FORMAT_CSV = 1,
	/* one JSON object per line */
	KNYTT_FORMAT_JSONL = 2,
	/* MovieLens: u.item / movies.dat (items), u.user / users.dat
	 * (users), u.data (interactions); ISO-8859-1 text converted */
	KNYTT_FORMAT_MOVIELENS = 3
} knytt_format;

/** Called for each rejected row: @p line (1-based), @p field (the column,
 *  or "" for the whole row) and @p reason; strings borrowed. */
typedef void (*knytt_reject_fn)(size_t line, const char *field,
				const char *reason, void *ctx);

/**
 * Imports @p path, streaming: memory does not grow with the file size
 * (bounded caches only: up to 1M id look-ups, and in SQLite a page cache
 * raised to at most 512 MiB for the duration of the import, so that
 * index inserts do not read pages back).  Every row is validated;
 * a rejected row is reported through @p on_reject (may be NULL) and does
 * not stop the others.  Accepted rows commit in transactions of
 * knytt_store_set_batch_size rows, so a crash keeps every committed batch
 * and running the same import again converges to the same state: items
 * and users are upserted by external id, interactions deduplicated by
 * event id (interactions without one are appended again; MovieLens
 * ratings get the event id "ml:USER:ITEM").  On PostgreSQL, interactions
 * go in through COPY and their ids are resolved a batch at a time, so a
 * row rejected for an unknown item is reported when its batch is written
 * (after rows rejected later in the file for other reasons).
 *
 * CSV columns (header row; any order; unknown columns reject the file):
 *   items: id, title, description, category, price, currency, in_stock,
 *          quality, image_url, attributes;
 *   users: id, attributes;
 *   interactions: user, item, type, weight, value, ts_ms, event_id.
 * JSON Lines use the same names as keys (attributes as an object).
 * An existing item keeps the stored value of a column the file does not
 * have (a JSON Lines key that is absent); an empty cell (null or "")
 * clears it (NULL; price and quality 0, in_stock 1).  A row holding a
 * NUL byte (CSV, MovieLens) or a NUL in a JSON string (\u0000) is
 * rejected: it would otherwise be cut short at the NUL.  "favorite"
 * interactions also mark favorites.  Counts: knytt_store_import_report.
 *
 * @return the number of rows accepted (valid; repeated event ids
 *         included), or KNYTT_EINVAL (arguments,
 *         unknown column, file not valid as a whole: the message names
 *         line and field), KNYTT_EIO (cannot read), KNYTT_ESTATE,
 *         KNYTT_EDB (the database failed: batches committed before stay).
 */
KNYTT_API int knytt_store_import(knytt_store *st, const char *path,
				 knytt_record_kind kind, knytt_format format,
				 knytt_reject_fn on_reject, void *ctx);

/** What the last knytt_store_import on a handle did (versioned struct,
 *  see RECORDS above). */
typedef struct knytt_import_report {
	size_t struct_size;  /* sizeof(knytt_import_report), set by caller */
	int64_t accepted;    /* rows that passed validation: the count
				knytt_store_import returned */
	int64_t imported;    /* accepted rows written: accepted minus
				duplicates */
	int64_t duplicates;  /* interactions whose event id was stored
				already, or came earlier in the file: not
				stored again */
	int64_t rejected;    /* rows refused (each one reported through
				on_reject) */
} knytt_import_report;

/**
 * Fills @p out with the counts of the last knytt_store_import on @p st
 * (all 0 before the first; after a failed import, the rows up to the
 * failure).  Members past the caller's struct_size are not written.
 * @return KNYTT_OK, KNYTT_EINVAL (NULL, struct_size too small).
 */
KNYTT_API int knytt_store_import_report(const knytt_store *st,
					knytt_import_report *out);
/* ===== end part: store ===== */

/* ===== part: model (lib/model) ===== */
/* ------------------------------------------------------------------------
 * Models (lib/model): the interaction matrix, implicit ALS, evaluation.
 *
 * Interactions go into a knytt_matrix (users x items, CSR), each with a
 * confidence weight from its type; knytt_als learns user and item factors
 * from it (Hu, Koren & Volinsky 2008); knytt_eval_loo / knytt_eval_full
 * measure any model through a scoring callback, so every model of the
 * library (and any outside one) is scored by the same code.
 * ---------------------------------------------------------------------- */

/** Interaction types with a default weight; types 0..KNYTT_EVENT_MAX-1
 *  may be given any weight with knytt_matrix_set_weight(). */
typedef enum knytt_event {
	KNYTT_EVENT_VIEW = 0,        /* default weight 1 */
	KNYTT_EVENT_CLICK = 1,       /* default weight 2 */
	KNYTT_EVENT_ADD_TO_CART = 2, /* default weight 4 */
	KNYTT_EVENT_PURCHASE = 3,    /* default weight 8 */
	KNYTT_EVENT_RATING = 4,      /* default weight 1: the rating itself */
	KNYTT_EVENT_FAVORITE = 5     /* default weight 4 */
} knytt_event;
#define KNYTT_EVENT_MAX 16

/**
 * Interaction matrix (users x items, compressed sparse rows).
 *
 * Life cycle: knytt_matrix_create() -> knytt_matrix_set_*() ->
 * knytt_matrix_add() for every interaction -> knytt_matrix_build() ->
 * read (row, nnz, ..., training, evaluation) -> knytt_matrix_close().
 *
 * The weight of one interaction is weight(type) * value * decay *
 * recency, where decay = 0.5 ^ ((now - time) / half_life) when a
 * half-life is set and recency is set by knytt_matrix_set_recency (both
 * 1 by default); several interactions of one (user, item) pair add up to
 * one entry.  Users and items are dense 0-based ids (the store maps its own
 * ids to them).
 *
 * THREAD SAFETY.  Building (set, add, build) needs one thread at a time.
 * After build the matrix is read-only and any number of threads may read
 * it and train or evaluate on it at once.
 */
typedef struct knytt_matrix knytt_matrix;

/**
 * Allocates an empty matrix builder.
 * @param[out] out  the new handle, freed with knytt_matrix_close().
 * @return KNYTT_OK, KNYTT_EINVAL (out NULL), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_matrix_create(knytt_matrix **out);

/**
 * Sets the weight of interaction type @p type (0..KNYTT_EVENT_MAX-1).
 * Before build; applies to interactions added afterwards and before.
 * @return KNYTT_OK, KNYTT_EINVAL (type out of range, weight negative or
 *         not finite), KNYTT_ESTATE (already built).
 */
KNYTT_API int knytt_matrix_set_weight(knytt_matrix *m, unsigned type,
				      float weight);

/**
 * Enables time decay: an interaction at time t weighs
 * 0.5 ^ ((now - t) / half_life) times its type weight.  Times are in any
 * unit (seconds usually), the same for @p now, @p half_life and every
 * interaction; half_life 0 disables decay (the default).  Before build.
 * @return KNYTT_OK, KNYTT_EINVAL (half_life negative or not finite),
 *         KNYTT_ESTATE (already built).
 */
KNYTT_API int knytt_matrix_set_decay(knytt_matrix *m, double half_life,
				     int64_t now);

/**
 * Enables recency weighting, measured in interactions rather than time:
 * the r-th most recent interaction of a user (r = 0 for the latest by
 * time; equal times are ordered by the order of knytt_matrix_add) weighs
 * 1 + boost * 0.5 ^ (r / half_life) times more.  It lets the confidence
 * follow what each user did last whatever his pace (on ML-1M under the
 * NCF protocol it lifts ALS from NDCG@10 0.45 to 0.54; see
 * benchmarks/train).  half_life 0 disables it (the default).  Before
 * build.
 * @return KNYTT_OK, KNYTT_EINVAL (half_life or boost negative or not
 *         finite), KNYTT_ESTATE (already built).
 */
KNYTT_API int knytt_matrix_set_recency(knytt_matrix *m, double half_life,
				       double boost);

/**
 * Records one interaction (copied).
 * @param type   interaction type, 0..KNYTT_EVENT_MAX-1 (knytt_event).
 * @param value  multiplier of the type weight: 1 for events, the rating
 *               for KNYTT_EVENT_RATING.  Must be finite and >= 0.
 * @param time   time of the interaction (used only with decay).
 * @return KNYTT_OK, KNYTT_EINVAL (bad type or value, ids of
 *         UINT32_MAX), KNYTT_ESTATE (already built), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_matrix_add(knytt_matrix *m, uint32_t user,
			       uint32_t item, unsigned type, float value,
			       int64_t time);

/**
 * Builds the CSR (and its transpose, for item-side training) from the
 * interactions added.  @p nusers / @p nitems give the dimensions (0 =
 * largest id seen + 1); ids at or beyond a non-zero dimension fail.
 * @return KNYTT_OK, KNYTT_EINVAL (an id beyond the dimension: the message
 *         names it), KNYTT_ESTATE (already built), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_matrix_build(knytt_matrix *m, uint32_t nusers,
				 uint32_t nitems);

/** Frees the matrix.  NULL is a no-op. */
KNYTT_API void knytt_matrix_close(knytt_matrix *m);

/** Number of users (rows) after build; 0 before or for NULL. */
KNYTT_API uint32_t knytt_matrix_users(const knytt_matrix *m);
/** Number of items (columns) after build; 0 before or for NULL. */
KNYTT_API uint32_t knytt_matrix_items(const knytt_matrix *m);
/** Number of stored (user, item) entries after build; 0 before. */
KNYTT_API size_t knytt_matrix_nnz(const knytt_matrix *m);

/**
 * Borrows one user's row: item ids (ascending) and their summed weights.
 * The pointers stay valid until knytt_matrix_close().
 * @param[out] items, weights  may be NULL.
 * @return the number of entries, KNYTT_EINVAL (user out of range),
 *         KNYTT_ESTATE (not built).
 */
KNYTT_API int knytt_matrix_row(const knytt_matrix *m, uint32_t user,
			       const uint32_t **items, const float **weights);

/* ---- training progress, shared by every model ---- */

/** What a training run reports after each epoch (ALS: one sweep over
 *  users and items). */
typedef struct knytt_progress {
	unsigned epoch;  /* epochs finished, 1-based */
	unsigned epochs; /* epochs planned */
	double loss;     /* training objective after this epoch */
	double elapsed;  /* seconds since training started */
	double eta;      /* estimated seconds left */
} knytt_progress;

/**
 * Progress callback, called on the training thread after each epoch.  The
 * model's read functions (scores, factors) may be called from inside it
 * and see the model as of that epoch.  Return 0 to continue, non-zero to
 * cancel: training then stops with KNYTT_ECANCELED and the model keeps
 * the factors of the last finished epoch.
 */
typedef int (*knytt_progress_fn)(void *ctx, const knytt_progress *p);

/* ---- implicit ALS ---- */

/**
 * Implicit-feedback matrix factorization by alternating least squares
 * (Hu, Koren & Volinsky, ICDM 2008).  With confidence c = 1 + alpha * w
 * for an entry of weight w (preference 1) and c = 1, preference 0 for
 * every other pair, it minimizes
 *     sum_ui c_ui (p_ui - x_u . y_i)^2 + reg (sum |x_u|^2 + sum |y_i|^2).
 * Each epoch solves every item row given the user factors, then every
 * user row given the item factors, so that the final user factors are
 * the exact answer to the final item factors (which fold-in reproduces).
 * Rows are solved by a few steps of conjugate gradient warm-started from
 * the previous vector (Takacs, Pilaszy & Tikk, RecSys 2011; the default)
 * or exactly by Cholesky (LAPACK), on several threads.
 *
 * Life cycle: knytt_als_create() -> knytt_als_set_*() ->
 * knytt_als_train() or knytt_als_load*() -> scores, factors, fold-in,
 * save -> knytt_als_close().
 *
 * DETERMINISM.  Rows are split statically over threads and each row is
 * solved by one thread in a fixed order, so the same seed, settings and
 * matrix give bit-identical factors on every run (the loss is summed per
 * thread, so it may differ in the last bits across thread counts).
 *
 * THREAD SAFETY.  Setters, train and load need exclusive access.  After
 * training or loading, any number of threads may call the read functions
 * (score, scorer, factors, fold_in, save, dims) at once.
 */
typedef struct knytt_als knytt_als;

/** Row solvers of knytt_als_set_solver(). */
typedef enum knytt_als_solver {
	KNYTT_ALS_CG = 1,      /* conjugate gradient, cg_steps per row */
	KNYTT_ALS_CHOLESKY = 2 /* exact solve, LAPACK spotrf/spotrs */
} knytt_als_solver;

/**
 * Allocates an untrained ALS model with default settings: 64 factors,
 * reg 0.1, alpha 1, 15 epochs, seed 42, CG with 3 steps, every core.
 * @param[out] out  the new handle, freed with knytt_als_close().
 * @return KNYTT_OK, KNYTT_EINVAL (out NULL), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_als_create(knytt_als **out);

/** Number of factors, 1..1024 (default 64; 0 is an error, not a default,
 *  so that a missing setting is caught).  KNYTT_EINVAL, KNYTT_ESTATE (set
 *  after training or loading). */
KNYTT_API int knytt_als_set_factors(knytt_als *als, unsigned factors);
/** L2 regularization (>= 0, finite).  KNYTT_EINVAL / KNYTT_ESTATE. */
KNYTT_API int knytt_als_set_reg(knytt_als *als, float reg);
/** Confidence scale alpha (>= 0, finite).  KNYTT_EINVAL / KNYTT_ESTATE. */
KNYTT_API int knytt_als_set_alpha(knytt_als *als, float alpha);
/** Epochs, 1..10000 (default 15).  KNYTT_EINVAL / KNYTT_ESTATE. */
KNYTT_API int knytt_als_set_iterations(knytt_als *als, unsigned iterations);
/**
 * Frequency-scaled regularization (Rendle, Krichene, Zhang & Koren,
 * RecSys 2022): a row with n entries is regularized by
 * reg * (n + nother / (1 + alpha))^nu, where nother is the number of rows
 * of the other side (items for a user).  0 (the default) keeps the plain
 * reg of Hu et al.; 1 is the paper's choice; valid 0..2.  With nu > 0,
 * reg values are much smaller (the base is in the thousands).
 * KNYTT_EINVAL / KNYTT_ESTATE.
 */
KNYTT_API int knytt_als_set_reg_exponent(knytt_als *als, float nu);
/** Seed of the initial factors (default 42).  KNYTT_ESTATE. */
KNYTT_API int knytt_als_set_seed(knytt_als *als, uint64_t seed);
/** Worker threads (0 = every core; at most 256).  KNYTT_EINVAL /
 *  KNYTT_ESTATE. */
KNYTT_API int knytt_als_set_threads(knytt_als *als, unsigned threads);
/** Row solver and, for CG, steps per row (0 = 3; at most 1000).
 *  KNYTT_EINVAL / KNYTT_ESTATE. */
KNYTT_API int knytt_als_set_solver(knytt_als *als, knytt_als_solver solver,
				   unsigned cg_steps);
/** Progress callback (NULL = none).  Any time before train. */
KNYTT_API int knytt_als_set_progress(knytt_als *als, knytt_progress_fn fn,
				     void *ctx);

/**
 * Trains on @p m (built): users are its rows, items its columns.
 * @return KNYTT_OK, KNYTT_EINVAL (matrix NULL, not built or without any
 *         entry; a setting invalid for it), KNYTT_ESTATE (already trained
 *         or loaded), KNYTT_ECANCELED (the progress callback asked to
 *         stop), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_als_train(knytt_als *als, const knytt_matrix *m);

/** Number of factors of a trained or loaded model (0 otherwise). */
KNYTT_API unsigned knytt_als_factors(const knytt_als *als);
/** Users of a trained or loaded model (0 otherwise). */
KNYTT_API uint32_t knytt_als_users(const knytt_als *als);
/** Items of a trained or loaded model (0 otherwise). */
KNYTT_API uint32_t knytt_als_items(const knytt_als *als);

/**
 * Copies the factors of users [first, first + n) into @p out (n *
 * factors floats, row-major).
 * @return KNYTT_OK, KNYTT_EINVAL (NULL out, range beyond the users),
 *         KNYTT_ESTATE (not trained).
 */
KNYTT_API int knytt_als_user_factors(const knytt_als *als, uint32_t first,
				     uint32_t n, float *out);
/** The same for items [first, first + n). */
KNYTT_API int knytt_als_item_factors(const knytt_als *als, uint32_t first,
				     uint32_t n, float *out);

/**
 * Fold-in: one user's vector from that user's weighted items and the item
 * factors, by the very solve an epoch applies to a user row (same
 * confidence, same solver, same steps), so it equals what a full sweep
 * would give that user.  Fast enough for every feedback event (one
 * factors x factors system).
 * @param items, weights  the user's @p n entries (weights as a
 *                 knytt_matrix row holds them: type weight * value *
 *                 decay, summed per item; items need not be sorted but
 *                 must be distinct).
 * @param[in,out] vec  factors floats.  On input the user's current vector
 *                 (the CG warm start, as the sweep uses it; zeros for a
 *                 new user; ignored by Cholesky); on output the new one.
 * @return KNYTT_OK, KNYTT_EINVAL (NULL pointer, item out of range,
 *         weight negative or not finite), KNYTT_ESTATE (not trained),
 *         KNYTT_ENOMEM.
 * Thread safety: any number of threads at once.
 */
KNYTT_API int knytt_als_fold_in(const knytt_als *als, size_t n,
				const uint32_t *items, const float *weights,
				float *vec);

/**
 * Scores of @p n items for @p user: x_user . y_item.
 * @param items  the items, or NULL for items 0..n-1.
 * @param[out] out  n scores.
 * @return KNYTT_OK, KNYTT_EINVAL (user or item out of range, NULL out),
 *         KNYTT_ESTATE (not trained).
 */
KNYTT_API int knytt_als_score(const knytt_als *als, uint32_t user,
			      const uint32_t *items, size_t n, float *out);

/**
 * knytt_als_score with the signature of knytt_score_fn (@p ctx is the
 * knytt_als *), to pass an ALS model to knytt_eval_loo / knytt_eval_full.
 */
KNYTT_API int knytt_als_scorer(void *ctx, uint32_t user,
			       const uint32_t *items, size_t n, float *out);

/**
 * Writes the model to @p path (a temporary file renamed over it).  The
 * format is little-endian with a magic, a version and a CRC-32C.
 * @return KNYTT_OK, KNYTT_EIO (with path and errno text), KNYTT_ESTATE
 *         (not trained), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_als_save(const knytt_als *als, const char *path);

/**
 * The same format into memory (for the store's model blobs).
 * @param[out] buf  a buffer the caller frees with knytt_free().
 * @param[out] len  its size in bytes.
 * @return KNYTT_OK, KNYTT_EINVAL, KNYTT_ESTATE, KNYTT_ENOMEM.
 */
KNYTT_API int knytt_als_save_buffer(const knytt_als *als, void **buf,
				    size_t *len);

/**
 * Loads a model saved by knytt_als_save into a handle from
 * knytt_als_create (settings are replaced by the file's; threads and the
 * progress callback are kept).
 * @return KNYTT_OK, KNYTT_EIO, KNYTT_ECORRUPT (truncated, damaged or not
 *         an ALS model: the message says which), KNYTT_EVERSION (newer
 *         format), KNYTT_ESTATE (already trained or loaded), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_als_load(knytt_als *als, const char *path);

/** The same from @p len bytes at @p buf (copied). */
KNYTT_API int knytt_als_load_buffer(knytt_als *als, const void *buf,
				    size_t len);

/** Frees the model.  NULL is a no-op. */
KNYTT_API void knytt_als_close(knytt_als *als);

/* ---- evaluation ---- */

/**
 * Scoring callback through which any model is evaluated: writes to
 * @p out the scores of @p user for @p n items (@p items, or items 0..n-1
 * when @p items is NULL); larger is better.  Returns 0, or a negative
 * KNYTT_E* code that stops the evaluation and is returned by it.  It is
 * called from the evaluating thread only.
 */
typedef int (*knytt_score_fn)(void *ctx, uint32_t user,
			      const uint32_t *items, size_t n, float *out);

/**
 * Ranking metrics at a cut-off k, averaged over the evaluated users.  A
 * relevant item that scores equal to an irrelevant one ranks below it
 * (ties count against the model).
 */
typedef struct knytt_metrics {
	double hr;        /* share of users with a relevant item in the top k */
	double ndcg;      /* normalized discounted cumulative gain at k */
	double recall;    /* relevant items in the top k / relevant items */
	double precision; /* relevant items in the top k / k */
	double map;       /* mean average precision at k */
	double coverage;  /* distinct items in any top k / items */
	size_t users;     /* users evaluated */
} knytt_metrics;

/**
 * Leave-one-out test set with fixed sampled negatives (the protocol of
 * He et al., NCF, WWW 2017): per test user one held-out item and a list
 * of negatives, ranked against each other.  Read-only after creation;
 * any number of threads may evaluate with it at once.
 */
typedef struct knytt_loo knytt_loo;

/**
 * Reads the NCF files @p test_rating ("user<TAB>item<TAB>...", one line
 * per test user) and @p test_negative ("(user,item)<TAB>neg<TAB>..." in
 * the same order).  A negative equal to its user's held-out item is kept
 * in the list (it is part of the files) but ignored when ranking, as
 * NCF's evaluate.py does.
 * @param[out] out  the test set, freed with knytt_loo_close().
 * @return KNYTT_OK, KNYTT_EIO (cannot open: path and errno),
 *         KNYTT_ECORRUPT (a malformed line: file and line number; the two
 *         files disagree), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_loo_load_ncf(const char *test_rating,
				 const char *test_negative, knytt_loo **out);

/**
 * A test set from arrays (copied): test case j is user users[j], held-out
 * item items[j] and negatives negs[j * nneg .. j * nneg + nneg).
 * @return KNYTT_OK, KNYTT_EINVAL (NULL arrays, n 0), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_loo_create(size_t n, const uint32_t *users,
			       const uint32_t *items, size_t nneg,
			       const uint32_t *negs, knytt_loo **out);

/** Test cases (users) in @p t; 0 for NULL. */
KNYTT_API size_t knytt_loo_count(const knytt_loo *t);
/** Negatives per test case in @p t; 0 for NULL. */
KNYTT_API size_t knytt_loo_negatives(const knytt_loo *t);

/**
 * Copies test case @p j: its user, held-out item and negatives (@p negs
 * holds knytt_loo_negatives() ids; any out pointer may be NULL).
 * @return KNYTT_OK, KNYTT_EINVAL (j out of range).
 */
KNYTT_API int knytt_loo_case(const knytt_loo *t, size_t j, uint32_t *user,
			     uint32_t *item, uint32_t *negs);

/** Frees a test set.  NULL is a no-op. */
KNYTT_API void knytt_loo_close(knytt_loo *t);

/**
 * Leave-one-out evaluation: for each test case, scores the held-out item
 * and its negatives in one call to @p fn (items: held-out first, then the
 * negatives in file order) and ranks the held-out item: rank = number of
 * negatives (other than the held-out item itself) scoring >= it.
 * HR@k = rank < k, NDCG@k = 1 / log2(rank + 2), recall = HR, precision =
 * HR / k, MAP@k = 1 / (rank + 1) when rank < k; coverage counts the
 * distinct items of the top-k candidate lists over the number of distinct
 * candidate items.
 * @param[out] scores  optional (NULL = not kept): count * (1 + negatives)
 *                 floats, test case after test case, in call order.
 * @return KNYTT_OK, KNYTT_EINVAL (NULL test/fn/out, k 0), KNYTT_ENOMEM,
 *         or the first error of @p fn.
 */
KNYTT_API int knytt_eval_loo(const knytt_loo *t, unsigned k,
			     knytt_score_fn fn, void *ctx, float *scores,
			     knytt_metrics *out);

/**
 * Full-ranking evaluation: for each user with at least one entry in
 * @p test, scores every item (one call, items NULL, n = items of
 * @p train), drops the user's items in @p train, and ranks the @p test
 * items among all the others.  Typical use: each user's last interaction
 * held out in @p test, the rest in @p train.
 * @param train, test  built matrices with the same number of items
 *                 (users beyond train's rows have no training items).
 * @return KNYTT_OK, KNYTT_EINVAL (NULL, not built, item counts differ,
 *         k 0, no test user), KNYTT_ENOMEM, or the first error of @p fn.
 */
KNYTT_API int knytt_eval_full(const knytt_matrix *train,
			      const knytt_matrix *test, unsigned k,
			      knytt_score_fn fn, void *ctx,
			      knytt_metrics *out);

/* ---- evaluation in time ---- */

/**
 * A global time split of interactions (the protocol of issue 19 and of
 * most production evaluations): every interaction before a cut time is
 * training data, every one at or after it is test data, for all users at
 * once, so no model sees the future of any user.  The cut is either
 * given (knytt_timesplit_set_cut) or chosen so that a fraction of the
 * interactions, the latest by time, is held out (knytt_timesplit_set_
 * holdout; 0.2 by default).  knytt_timesplit_split() then fills two
 * matrices the caller created and configured (weights, decay, recency),
 * and the caller builds them: train gets the interactions before the cut;
 * test gets those after it, without
 *  - users who have no training interaction (cold users: no personal
 *    model can rank for them, so they are counted in the info and left
 *    out of the personal metrics), and
 *  - (user, item) pairs the user already met in training (full ranking
 *    excludes a user's training items, so they could never be hit).
 * Items first seen after the cut stay in the test: a model that cannot
 * recommend them misses them, as it would in production.
 *
 * Typical use: split, build both matrices with the same dimensions, train
 * any model on train, and score it with knytt_eval_full(train, test, 20,
 * ...) next to the popularity anchors of knytt_timesplit_popularity()
 * passed to knytt_static_scorer().
 *
 * THREAD SAFETY.  Setters, add and split need one thread at a time; info
 * and popularity may be called from many threads after a split.
 */
typedef struct knytt_timesplit knytt_timesplit;

/** What a split did (knytt_timesplit_info).  Times in the unit of the
 *  interactions. */
typedef struct knytt_timesplit_info {
	int64_t cut;          /* first test time: train < cut <= test */
	int64_t first, last;  /* earliest and latest interaction */
	size_t train;         /* interactions before the cut */
	size_t test;          /* interactions after it, put in test */
	size_t test_cold;     /* after it, dropped: user without training */
	size_t test_seen;     /* after it, dropped: pair met in training */
	size_t users_test;    /* users with at least one test interaction */
	size_t users_cold;    /* users active after the cut only */
} knytt_timesplit_info;

/**
 * Allocates an empty split (holdout 0.2, no explicit cut).
 * @param[out] out  freed with knytt_timesplit_close().
 * @return KNYTT_OK, KNYTT_EINVAL (out NULL), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_timesplit_create(knytt_timesplit **out);

/**
 * Records one interaction (copied), with the arguments of
 * knytt_matrix_add (type 0..KNYTT_EVENT_MAX-1, value finite and >= 0,
 * ids below UINT32_MAX) and its time in any unit.
 * @return KNYTT_OK, KNYTT_EINVAL (the message names the field),
 *         KNYTT_ENOMEM.
 */
KNYTT_API int knytt_timesplit_add(knytt_timesplit *s, uint32_t user,
				  uint32_t item, unsigned type, float value,
				  int64_t time);

/**
 * Holds out the latest @p fraction of the interactions (0 < fraction <
 * 1): the cut is the time of the interaction at position
 * floor(n * (1 - fraction)) in time order, and every interaction at that
 * very time goes to the test too (ties are never split), so the test
 * holds at least the fraction.  Clears an explicit cut.
 * @return KNYTT_OK, KNYTT_EINVAL (fraction out of range or not finite).
 */
KNYTT_API int knytt_timesplit_set_holdout(knytt_timesplit *s,
					  double fraction);

/** Sets the cut time explicitly (train < cut <= test); overrides the
 *  holdout.  KNYTT_EINVAL (s NULL). */
KNYTT_API int knytt_timesplit_set_cut(knytt_timesplit *s, int64_t cut);

/**
 * Chooses the cut and adds every interaction to @p train or @p test
 * (both created, configured and not yet built: the caller builds them,
 * with the same number of items).  Either may be NULL to fill only the
 * other.  May be called again for another pair (same result).
 * @return KNYTT_OK, KNYTT_EINVAL (no interaction; the cut leaves train or
 *         test empty: the message gives the cut and the time range),
 *         KNYTT_ESTATE (a matrix already built), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_timesplit_split(knytt_timesplit *s, knytt_matrix *train,
				    knytt_matrix *test);

/** Copies what the last split did into @p out.  KNYTT_EINVAL (NULL),
 *  KNYTT_ESTATE (no split yet). */
KNYTT_API int knytt_timesplit_info_get(const knytt_timesplit *s,
				       knytt_timesplit_info *out);

/**
 * Popularity anchors: out[i] = number of training interactions with item
 * i in the window [cut - window, cut) (window 0 = all of training), for
 * items 0..nitems-1 (items never seen count 0).  Each interaction counts
 * once, whatever its type or value, so the anchor needs no tuning.
 * @return KNYTT_OK, KNYTT_EINVAL (NULL, window negative), KNYTT_ESTATE
 *         (no split yet).
 */
KNYTT_API int knytt_timesplit_popularity(const knytt_timesplit *s,
					 int64_t window, uint32_t nitems,
					 float *out);

/** Frees the split.  NULL is a no-op. */
KNYTT_API void knytt_timesplit_close(knytt_timesplit *s);

/** Scores that are the same for every user (a popularity anchor). */
typedef struct knytt_item_scores {
	const float *scores; /* one per item, borrowed */
	uint32_t n;          /* items; an id at or beyond n scores -inf */
} knytt_item_scores;

/**
 * A knytt_score_fn for a model that scores every user alike: @p ctx is a
 * `const knytt_item_scores *` (e.g. counts from
 * knytt_timesplit_popularity).  Always returns KNYTT_OK.
 */
KNYTT_API int knytt_static_scorer(void *ctx, uint32_t user,
				  const uint32_t *items, size_t n, float *out);

/* ---- LightGCN ---- */

/**
 * LightGCN (He, Deng, Wang, Li, Zhang & Wang, SIGIR 2020): a graph model
 * of the user-item bipartite graph.  Each user and item has a free
 * embedding e(0); layer l + 1 is the symmetric-normalised sum over the
 * neighbours, e_u(l+1) = sum_{i in N(u)} e_i(l) / sqrt(|N(u)| |N(i)|) (and
 * the same for items), with no feature transform and no non-linearity;
 * the final embedding is the layer average e = (e(0) + ... + e(L)) /
 * (L + 1), and a score is e_u . e_i.  Training minimises the BPR loss
 * -ln sigmoid(e_u . e_i - e_u . e_j) over (user, positive, uniformly
 * sampled negative) triples plus reg / 2 (|e_u(0)|^2 + |e_i(0)|^2 +
 * |e_j(0)|^2) per triple, by Adam on mini-batches; each batch propagates
 * through the whole graph, forward and back (the propagation is
 * symmetric, so the backward pass is the same sparse product).
 *
 * The graph is the matrix's entries (any stored entry is an edge;
 * weights are ignored, as in the paper).
 *
 * Life cycle: knytt_lightgcn_create() -> knytt_lightgcn_set_*() ->
 * knytt_lightgcn_train() or knytt_lightgcn_load*() -> score, scorer,
 * factors, fold-in, save -> knytt_lightgcn_close().
 *
 * DETERMINISM.  Triples are drawn from one generator seeded by the seed,
 * and every propagated row is summed by one thread in a fixed order, so
 * the same seed, settings and matrix give bit-identical embeddings for
 * any thread count (the reported loss may differ in the last bits).
 *
 * THREAD SAFETY.  Setters, train and load need exclusive access; after
 * them any number of threads may call the read functions at once.
 */
typedef struct knytt_lightgcn knytt_lightgcn;

/**
 * Allocates an untrained model with default settings: 64 dimensions,
 * 3 layers, reg 1e-4, learning rate 0.005, 8192 triples per batch,
 * 30 epochs of nnz triples each, seed 42, every core.
 * @param[out] out  the new handle, freed with knytt_lightgcn_close().
 * @return KNYTT_OK, KNYTT_EINVAL (out NULL), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_lightgcn_create(knytt_lightgcn **out);
/** Embedding size, 1..1024.  KNYTT_EINVAL, KNYTT_ESTATE (after training
 *  or loading). */
KNYTT_API int knytt_lightgcn_set_dim(knytt_lightgcn *g, unsigned dim);
/** Propagation layers L, 0..8 (0 is plain BPR matrix factorisation).
 *  KNYTT_EINVAL / KNYTT_ESTATE. */
KNYTT_API int knytt_lightgcn_set_layers(knytt_lightgcn *g, unsigned layers);
/** L2 weight on the layer-0 embeddings of each triple (>= 0, finite).
 *  KNYTT_EINVAL / KNYTT_ESTATE. */
KNYTT_API int knytt_lightgcn_set_reg(knytt_lightgcn *g, float reg);
/** Adam learning rate (> 0, finite).  KNYTT_EINVAL / KNYTT_ESTATE. */
KNYTT_API int knytt_lightgcn_set_learning_rate(knytt_lightgcn *g, float lr);
/** Triples per mini-batch, 1..2^24 (one propagation each).
 *  KNYTT_EINVAL / KNYTT_ESTATE. */
KNYTT_API int knytt_lightgcn_set_batch(knytt_lightgcn *g, unsigned batch);
/** Epochs, 1..100000; an epoch draws as many triples as the matrix has
 *  entries.  KNYTT_EINVAL / KNYTT_ESTATE. */
KNYTT_API int knytt_lightgcn_set_epochs(knytt_lightgcn *g, unsigned epochs);
/** Seed of the initial embeddings and of the sampling (default 42).
 *  KNYTT_EINVAL (g NULL) / KNYTT_ESTATE. */
KNYTT_API int knytt_lightgcn_set_seed(knytt_lightgcn *g, uint64_t seed);
/** Worker threads (0 = every core; at most 256).  KNYTT_EINVAL. */
KNYTT_API int knytt_lightgcn_set_threads(knytt_lightgcn *g,
					 unsigned threads);
/** Progress callback after each epoch (loss = mean BPR loss of the
 *  epoch's triples plus the reg term), NULL = none; as for ALS, the read
 *  functions work from inside it and a non-zero return cancels. */
KNYTT_API int knytt_lightgcn_set_progress(knytt_lightgcn *g,
					  knytt_progress_fn fn, void *ctx);

/**
 * Trains on @p m (built): users are its rows, items its columns.
 * @return KNYTT_OK, KNYTT_EINVAL (matrix NULL, not built or without any
 *         entry), KNYTT_ESTATE (already trained or loaded),
 *         KNYTT_ECANCELED (the progress callback asked to stop: the
 *         model keeps the last finished epoch), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_lightgcn_train(knytt_lightgcn *g, const knytt_matrix *m);

/** Embedding size of a trained or loaded model (0 otherwise). */
KNYTT_API unsigned knytt_lightgcn_dim(const knytt_lightgcn *g);
/** Users of a trained or loaded model (0 otherwise). */
KNYTT_API uint32_t knytt_lightgcn_users(const knytt_lightgcn *g);
/** Items of a trained or loaded model (0 otherwise). */
KNYTT_API uint32_t knytt_lightgcn_items(const knytt_lightgcn *g);

/**
 * Copies the final (layer-averaged) embeddings of users [first, first +
 * n) into @p out (n * dim floats, row-major).
 * @return KNYTT_OK, KNYTT_EINVAL (NULL out, range beyond the users),
 *         KNYTT_ESTATE (not trained).
 */
KNYTT_API int knytt_lightgcn_user_factors(const knytt_lightgcn *g,
					  uint32_t first, uint32_t n,
					  float *out);
/** The same for items [first, first + n). */
KNYTT_API int knytt_lightgcn_item_factors(const knytt_lightgcn *g,
					  uint32_t first, uint32_t n,
					  float *out);

/**
 * Fold-in: the final embedding of a user who is not in the graph, from
 * the @p n distinct items he interacted with, by the model's own
 * propagation with the items' embeddings held fixed: a new user has no
 * layer-0 embedding, and layer l + 1 of his is the normalised sum of his
 * items' layer l, so
 *     vec = 1 / (L + 1) sum_{l=0}^{L-1} sum_i e_i(l) / sqrt(n |N(i)|).
 * For a user of the training graph this equals his final embedding less
 * his own e_u(0) / (L + 1).  No solve: O(n dim).
 * @param[out] vec  dim floats.
 * @return KNYTT_OK, KNYTT_EINVAL (NULL pointer, item out of range or
 *         given twice), KNYTT_ESTATE (not trained).  n = 0 gives zeros.
 * Thread safety: any number of threads at once.
 */
KNYTT_API int knytt_lightgcn_fold_in(const knytt_lightgcn *g, size_t n,
				     const uint32_t *items, float *vec);

/**
 * Scores of @p n items for @p user: e_user . e_item.
 * @param items  the items, or NULL for items 0..n-1.
 * @return KNYTT_OK, KNYTT_EINVAL (user or item out of range, NULL out),
 *         KNYTT_ESTATE (not trained).
 */
KNYTT_API int knytt_lightgcn_score(const knytt_lightgcn *g, uint32_t user,
				   const uint32_t *items, size_t n,
				   float *out);

/** knytt_lightgcn_score as a knytt_score_fn (@p ctx is the model), for
 *  knytt_eval_loo / knytt_eval_full. */
KNYTT_API int knytt_lightgcn_scorer(void *ctx, uint32_t user,
				    const uint32_t *items, size_t n,
				    float *out);

/**
 * Writes the model to @p path (a temporary renamed over it): magic
 * "KNYTTLGC", version, settings, the final user and item embeddings and
 * the items' fold-in vectors, little-endian, CRC-32C at the end.
 * @return KNYTT_OK, KNYTT_EIO, KNYTT_ESTATE (not trained), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_lightgcn_save(const knytt_lightgcn *g, const char *path);
/** The same format into memory; @p buf is freed with knytt_free().
 *  KNYTT_EINVAL, KNYTT_ESTATE, KNYTT_ENOMEM. */
KNYTT_API int knytt_lightgcn_save_buffer(const knytt_lightgcn *g,
					 void **buf, size_t *len);
/**
 * Loads a saved model into a handle from knytt_lightgcn_create (settings
 * replaced by the file's; threads and progress kept).
 * @return KNYTT_OK, KNYTT_EIO, KNYTT_ECORRUPT (truncated, damaged, not a
 *         LightGCN model), KNYTT_EVERSION (newer format), KNYTT_ESTATE
 *         (already trained or loaded), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_lightgcn_load(knytt_lightgcn *g, const char *path);
/** The same from @p len bytes at @p buf (copied). */
KNYTT_API int knytt_lightgcn_load_buffer(knytt_lightgcn *g, const void *buf,
					 size_t len);
/** Frees the model.  NULL is a no-op. */
KNYTT_API void knytt_lightgcn_close(knytt_lightgcn *g);

/* ---- sequence model (SASRec) ---- */

/**
 * A self-attentive sequence model (Kang & McAuley, ICDM 2018): the next
 * item given the shopper's recent items, in order.  The last L items
 * (item embedding * sqrt(dim) + a learned embedding per position) pass
 * through causal self-attention blocks (one head, layer norm, residual,
 * point-wise feed-forward with ReLU, dropout); the final state after
 * the newest item, dotted with an item's embedding (the input table,
 * shared), is that item's score.  Training: every position predicts its
 * successor against one item the shopper never touched, drawn
 * uniformly, by binary cross-entropy; Adam on mini-batches of sequences.
 * Forward and backward passes are written out on BLAS (cblas_sgemm), the
 * sequences of a batch shared among threads.
 *
 * Input: sequences of item indices 0..nitems-1, oldest first, as a CSR
 * pair (offsets[q] .. offsets[q + 1] in items[] is sequence q), e.g. one
 * per shopper.  Sequences shorter than 2 items teach nothing and are
 * skipped.
 *
 * Life cycle: knytt_sasrec_create() -> knytt_sasrec_set_*() ->
 * knytt_sasrec_train() or knytt_sasrec_load*() -> encode, score, item
 * factors, save -> knytt_sasrec_close().
 *
 * DETERMINISM.  Negatives and dropout masks of a sequence come from a
 * generator seeded by (seed, epoch, sequence); the same seed, settings,
 * data and thread count give the same model.
 *
 * THREAD SAFETY.  Setters, train and load need exclusive access; after
 * them any number of threads may call the read functions at once.
 */
typedef struct knytt_sasrec knytt_sasrec;

/**
 * Allocates an untrained model with default settings: 50 dimensions,
 * 2 blocks, the last 50 items, dropout 0.2, learning rate 0.001, 128
 * sequences per batch, 20 epochs, seed 42, every core.
 * @param[out] out  the new handle, freed with knytt_sasrec_close().
 * @return KNYTT_OK, KNYTT_EINVAL (out NULL), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_sasrec_create(knytt_sasrec **out);
/** Embedding and hidden size, 1..1024.  KNYTT_EINVAL, KNYTT_ESTATE (after
 *  training or loading). */
KNYTT_API int knytt_sasrec_set_dim(knytt_sasrec *s, unsigned dim);
/** Self-attention blocks, 1..8.  KNYTT_EINVAL / KNYTT_ESTATE. */
KNYTT_API int knytt_sasrec_set_blocks(knytt_sasrec *s, unsigned blocks);
/** Maximum sequence length L, 1..4096: the model reads the last L items.
 *  KNYTT_EINVAL / KNYTT_ESTATE. */
KNYTT_API int knytt_sasrec_set_max_len(knytt_sasrec *s, unsigned len);
/** Dropout rate in [0, 0.9].  KNYTT_EINVAL / KNYTT_ESTATE. */
KNYTT_API int knytt_sasrec_set_dropout(knytt_sasrec *s, float rate);
/** Adam learning rate (> 0, finite).  KNYTT_EINVAL / KNYTT_ESTATE. */
KNYTT_API int knytt_sasrec_set_learning_rate(knytt_sasrec *s, float lr);
/** Sequences per mini-batch, 1..2^20.  KNYTT_EINVAL / KNYTT_ESTATE. */
KNYTT_API int knytt_sasrec_set_batch(knytt_sasrec *s, unsigned batch);
/** Epochs (passes over every sequence), 1..100000.
 *  KNYTT_EINVAL / KNYTT_ESTATE. */
KNYTT_API int knytt_sasrec_set_epochs(knytt_sasrec *s, unsigned epochs);
/** Seed of the initial weights and of the sampling (default 42).
 *  KNYTT_EINVAL (s NULL) / KNYTT_ESTATE. */
KNYTT_API int knytt_sasrec_set_seed(knytt_sasrec *s, uint64_t seed);
/**
 * Early stopping on a validation split the model carves itself (off by
 * default): the last item of every sequence of 3 or more items is held
 * out and not trained on; every @p every epochs (and after the last) the
 * held-out item is ranked after the rest of its sequence against up to
 * 100 items the sequence never touched (drawn once, from the seed), by
 * NDCG@10.  Training stops when @p patience evaluations in a row have not
 * beaten the best one, or after the set epochs, and the model keeps the
 * weights of the best evaluation (also when the progress callback
 * cancels).  The negatives and dropout masks of training are the same as
 * without validation, so the model equals one trained for the chosen
 * epochs on the shortened sequences.  Read the figures with
 * knytt_sasrec_validation().
 * @param every     0 (off) or 1..100000.
 * @param patience  1..100000 (ignored when every is 0).
 * @return KNYTT_OK, KNYTT_EINVAL (out of range; train: no sequence of 3
 *         items), KNYTT_ESTATE (after training or loading).
 */
KNYTT_API int knytt_sasrec_set_early_stop(knytt_sasrec *s, unsigned every,
					  unsigned patience);
/**
 * Validation figures of early stopping: the best evaluation (@p best non
 * zero: the one whose weights the model keeps) or the latest one, also
 * from inside the progress callback (the latest is then the epoch just
 * finished, when an evaluation was due).  Out pointers may be NULL.
 * @param[out] epoch  1-based epoch of that evaluation.
 * @param[out] hr     HR@10 on the held-out items.
 * @param[out] ndcg   NDCG@10 on the held-out items.
 * @return KNYTT_OK, KNYTT_EINVAL (s NULL), KNYTT_ESTATE (no evaluation:
 *         early stopping off, none due yet, or a loaded model).
 */
KNYTT_API int knytt_sasrec_validation(const knytt_sasrec *s, int best,
				      unsigned *epoch, double *hr,
				      double *ndcg);
/** Worker threads (0 = every core; at most 256).  KNYTT_EINVAL. */
KNYTT_API int knytt_sasrec_set_threads(knytt_sasrec *s, unsigned threads);
/** Progress callback after each epoch (loss = mean binary cross-entropy
 *  per position, positive and negative summed), NULL = none; the read
 *  functions work from inside it and a non-zero return cancels. */
KNYTT_API int knytt_sasrec_set_progress(knytt_sasrec *s,
					knytt_progress_fn fn, void *ctx);

/**
 * Trains on @p nseq sequences over items 0..nitems-1: sequence q is
 * items[offsets[q] .. offsets[q + 1]), oldest first (offsets has nseq + 1
 * entries, offsets[0] = 0).  The arrays are read during the call only.
 * @return KNYTT_OK, KNYTT_EINVAL (NULL pointer, nitems or nseq 0,
 *         decreasing offsets, an item out of range, no sequence of 2
 *         items: the message names the entry), KNYTT_ESTATE (already
 *         trained or loaded), KNYTT_ECANCELED (the progress callback
 *         asked to stop: the model keeps the last finished epoch),
 *         KNYTT_ENOMEM.
 */
KNYTT_API int knytt_sasrec_train(knytt_sasrec *s, uint32_t nitems,
				 size_t nseq, const size_t *offsets,
				 const uint32_t *items);

/** Embedding size of a trained or loaded model (0 otherwise). */
KNYTT_API unsigned knytt_sasrec_dim(const knytt_sasrec *s);
/** Items of a trained or loaded model (0 otherwise). */
KNYTT_API uint32_t knytt_sasrec_items(const knytt_sasrec *s);
/** Maximum sequence length of a trained or loaded model (0 otherwise). */
KNYTT_API unsigned knytt_sasrec_max_len(const knytt_sasrec *s);

/**
 * The model's state after the @p n items of @p seq (oldest first; only
 * the last max_len count): a vector in item-embedding space whose dot
 * product with an item's factors is its score.
 * @param[out] vec  dim floats.
 * @return KNYTT_OK, KNYTT_EINVAL (NULL pointer, n 0, an item out of
 *         range: the message names it), KNYTT_ESTATE (not trained),
 *         KNYTT_ENOMEM.
 * Thread safety: any number of threads at once.
 */
KNYTT_API int knytt_sasrec_encode(const knytt_sasrec *s, const uint32_t *seq,
				  size_t n, float *vec);

/**
 * Scores of @p count items as the next after @p seq (as encode).
 * @param items  the candidates, or NULL for items 0..count-1 (all of
 *               them with count = knytt_sasrec_items()).
 * @param[out] out  count floats; higher is more likely next.
 * @return as knytt_sasrec_encode, and KNYTT_EINVAL for a candidate out
 *         of range.
 */
KNYTT_API int knytt_sasrec_score(const knytt_sasrec *s, const uint32_t *seq,
				 size_t n, const uint32_t *items, size_t count,
				 float *out);

/** Copies the embeddings of items [first, first + n) into @p out (n * dim
 *  floats): the vectors knytt_sasrec_encode's output is scored against.
 *  KNYTT_EINVAL (range, NULL), KNYTT_ESTATE (not trained). */
KNYTT_API int knytt_sasrec_item_factors(const knytt_sasrec *s,
					uint32_t first, uint32_t n,
					float *out);

/**
 * Writes the model to @p path (a temporary renamed over it): magic
 * "KNYTTSQR", version, settings, every weight, little-endian, CRC-32C at
 * the end.
 * @return KNYTT_OK, KNYTT_EIO, KNYTT_ESTATE (not trained), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_sasrec_save(const knytt_sasrec *s, const char *path);
/** The same format into memory; @p buf is freed with knytt_free().
 *  KNYTT_EINVAL, KNYTT_ESTATE, KNYTT_ENOMEM. */
KNYTT_API int knytt_sasrec_save_buffer(const knytt_sasrec *s, void **buf,
				       size_t *len);
/**
 * Loads a saved model into a handle from knytt_sasrec_create (settings
 * replaced by the file's; threads and progress kept).
 * @return KNYTT_OK, KNYTT_EIO, KNYTT_ECORRUPT (truncated, damaged, not a
 *         sequence model), KNYTT_EVERSION (newer format), KNYTT_ESTATE
 *         (already trained or loaded), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_sasrec_load(knytt_sasrec *s, const char *path);
/** The same from @p len bytes at @p buf (copied). */
KNYTT_API int knytt_sasrec_load_buffer(knytt_sasrec *s, const void *buf,
				       size_t len);
/** Frees the model.  NULL is a no-op. */
KNYTT_API void knytt_sasrec_close(knytt_sasrec *s);
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
/** Progress callback (NULL = none) and its context, shared with ALS
 *  (knytt_progress_fn): called after each epoch with the epoch, the
 *  epochs planned, the mean sampled-softmax loss (nats), the seconds
 *  elapsed and the estimated seconds left.  A non-zero return cancels:
 *  train returns KNYTT_ECANCELED and the model trained before, if any,
 *  stays in place. */
KNYTT_API int knytt_twotower_set_progress(knytt_twotower *tt,
					  knytt_progress_fn fn, void *ctx);

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
KNYTT_API int knytt_twotower_save_buffer(const knytt_twotower *tt, void **buf,
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
KNYTT_API int knytt_twotower_load_buffer(knytt_twotower *tt, const void *buf,
				      size_t len);
/* ===== end part: twotower ===== */

/* ===== part: engine (lib/engine, lib/taste) ===== */
/* --- external embedder --- */
/*
 * External embedding service (lib/engine/embedder.c): an HTTP client
 * (libcurl) for the common embeddings protocol.  Each call POSTs
 *     {"model": "<model>", "input": ["text", ...]}
 * to <base>/v1/embeddings and reads the answer
 *     {"data": [{"index": 0, "embedding": [0.1, ...]}, ...]}
 * ("index" is optional; when present it gives the input each embedding
 * belongs to).  Big calls are split into batches; timeouts, connection
 * errors, HTTP 429 and 5xx are retried with exponential backoff and
 * jitter.
 *
 * Life cycle: knytt_embedder_create() -> knytt_embedder_set_*() ->
 * knytt_embedder_open() -> knytt_embedder_embed() ... ->
 * knytt_embedder_close().  open checks the settings and does not contact
 * the server; knytt_embedder_probe() does, if the dimension is wanted
 * before the first real call.
 *
 * The API key is sent as "Authorization: Bearer <key>" and never appears
 * in an error message; neither do the user-info and query parts of the
 * URL (a server that echoes the key in an error body has it replaced by
 * "***").
 *
 * THREAD SAFETY.  After open, any number of threads may call embed,
 * probe and dim on one handle at once.  Each call takes an idle libcurl
 * easy handle from a small pool inside the embedder (or makes one) and
 * returns it afterwards, so connections to the server are kept alive and
 * reused across calls while no easy handle is ever used by two threads.
 * The dimension learned from the first answer is stored atomically.
 * Setters are allowed only before open; close must not race with any
 * other call.  libcurl's global initialisation runs once per process
 * (pthread_once) on the first open; the library never calls
 * curl_global_cleanup().  Requests run with CURLOPT_NOSIGNAL, so no
 * signal handler is installed; libcurl avoids SIGPIPE where the system
 * allows, but a program talking HTTPS from several threads should ignore
 * SIGPIPE itself (libcurl-thread(3)).
 */
typedef struct knytt_embedder knytt_embedder;

/**
 * Allocates an unconfigured embedder.  Defaults: no model (the "model"
 * member is then left out of requests), no API key, timeout 30000 ms,
 * 2 retries with a 100 ms base backoff, batches of 32 inputs, dimension
 * learned from the first answer.
 * @param[out] out  the new handle, freed with knytt_embedder_close().
 * @return KNYTT_OK, KNYTT_EINVAL (out NULL), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_embedder_create(knytt_embedder **out);

/**
 * Sets where requests go (required).  @p base_url is copied.  Accepted
 * forms, with or without a trailing slash:
 *   "http://host:port"            -> http://host:port/v1/embeddings
 *   "https://host/prefix"         -> https://host/prefix/v1/embeddings
 *   "https://api.example.com/v1"  -> https://api.example.com/v1/embeddings
 *   "http://host/path/embeddings" -> used as is
 * A query string ("?key=...") is kept after the path.
 * @return KNYTT_OK, KNYTT_EINVAL (NULL, empty, not http:// or https://,
 *         contains whitespace or control characters), KNYTT_ESTATE (after
 *         open), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_embedder_set_url(knytt_embedder *e, const char *base_url);

/** Model name sent in each request (copied; NULL or "" = leave the
 *  member out).  Before open.  KNYTT_EINVAL (not valid UTF-8), ESTATE,
 *  ENOMEM. */
KNYTT_API int knytt_embedder_set_model(knytt_embedder *e, const char *model);

/** API key, sent as "Authorization: Bearer <key>" (copied, wiped from
 *  memory on close; NULL or "" = no Authorization header).  Before open.
 *  KNYTT_EINVAL (contains control characters or spaces), ESTATE,
 *  ENOMEM. */
KNYTT_API int knytt_embedder_set_api_key(knytt_embedder *e, const char *key);

/** Time limit of one HTTP request, connection included, in milliseconds
 *  (0 = default 30000; valid 1..3600000).  Each retry gets the full
 *  limit again.  Before open.  KNYTT_EINVAL/ESTATE. */
KNYTT_API int knytt_embedder_set_timeout_ms(knytt_embedder *e, long ms);

/**
 * Retry policy: up to @p retries further attempts (0..100) after a
 * timeout, a connection error, HTTP 429 or HTTP 5xx; never after other
 * 4xx answers or a malformed 200 answer.  The wait before retry i
 * (1-based) is drawn uniformly from [d/2, d] with d = backoff_ms *
 * 2^(i-1), capped at 30 s; a Retry-After header asking for longer is
 * honoured up to 30 s, beyond that the call fails at once.
 * @p backoff_ms is 0..60000 (0 = retry without waiting).  Before open.
 * @return KNYTT_OK, KNYTT_EINVAL, KNYTT_ESTATE.
 */
KNYTT_API int knytt_embedder_set_retries(knytt_embedder *e, unsigned retries,
					 long backoff_ms);

/** Largest number of inputs per request (0 = default 32; valid
 *  1..65536); embed splits bigger calls into consecutive requests.
 *  Before open.  KNYTT_EINVAL/ESTATE. */
KNYTT_API int knytt_embedder_set_batch(knytt_embedder *e, unsigned max_inputs);

/** Largest number of requests one embed call keeps in flight at once
 *  (0 = default 1; valid 1..64).  A call of many batches then runs them
 *  on that many threads, each with its own connection: a remote service
 *  that takes tens of milliseconds per batch is kept busy, which is what
 *  bulk ingest needs.  With more than one, which failure a failing call
 *  reports is the first to happen, not the one of the lowest batch.
 *  Before open.  KNYTT_EINVAL/ESTATE. */
KNYTT_API int knytt_embedder_set_parallel(knytt_embedder *e,
					  unsigned requests);

/** Expected dimension of every embedding (0 = learn it from the first
 *  answer; valid up to 65536).  Before open.  KNYTT_EINVAL/ESTATE. */
KNYTT_API int knytt_embedder_set_dim(knytt_embedder *e, uint32_t dim);

/**
 * Checks the settings and makes the embedder usable.  Does not contact
 * the server.
 * @return KNYTT_OK, KNYTT_EINVAL (no URL set), KNYTT_ESTATE (already
 *         open), KNYTT_ENOMEM, KNYTT_EIO (libcurl cannot initialise).
 */
KNYTT_API int knytt_embedder_open(knytt_embedder *e);

/**
 * Embeds @p n texts and writes their embeddings, in input order, to
 * @p out (n * dim floats, row i = texts[i]).
 *
 * @p dim is the row length of @p out.  It must equal the embedder's
 * dimension if that is known (set, or learned from an earlier answer);
 * if not, the answer must have @p dim dimensions and the embedder learns
 * it.  Texts are checked before anything is sent: each must be non-NULL
 * valid UTF-8.  n = 0 returns at once.  On failure the content of
 * @p out is unspecified (earlier batches may have been written).
 *
 * @param[in]  texts  n NUL-terminated UTF-8 strings, borrowed for the call.
 * @param[out] out    n * dim floats, owned by the caller.
 * @return KNYTT_OK, or
 *   KNYTT_EINVAL     NULL pointer, dim 0 or not the embedder's dimension,
 *                    a NULL text or one that is not valid UTF-8 (the
 *                    message gives its index);
 *   KNYTT_ESTATE     not open;
 *   KNYTT_ETIMEDOUT  the last attempt timed out;
 *   KNYTT_EAUTH      HTTP 401 or 403 (not retried);
 *   KNYTT_EBUSY      HTTP 429 after every retry, or a Retry-After over 30 s;
 *   KNYTT_EPROTO     the answer is not the protocol: not JSON, no "data"
 *                    array, "answer has 3 embeddings for 4 inputs",
 *                    "embedding 2 has 384 dimensions, expected 768", a
 *                    value that is not a finite float, a bad "index",
 *                    an answer over 64 MiB;
 *   KNYTT_EIO        connection failure after every retry, or any other
 *                    HTTP error status (the message gives the status and
 *                    the start of the body);
 *   KNYTT_ENOMEM.
 */
KNYTT_API int knytt_embedder_embed(knytt_embedder *e, size_t n,
				   const char *const *texts, float *out,
				   uint32_t dim);

/**
 * Sends one short request (the text "dimension probe") if the dimension
 * is not known yet, and returns the dimension.
 * @return the dimension (> 0), or the errors of knytt_embedder_embed().
 */
KNYTT_API int knytt_embedder_probe(knytt_embedder *e);

/** The dimension: set, or learned from an answer; 0 while unknown or if
 *  e is NULL. */
KNYTT_API uint32_t knytt_embedder_dim(const knytt_embedder *e);

/** Closes pooled connections, wipes the API key and frees the handle.
 *  NULL is a no-op. */
KNYTT_API void knytt_embedder_close(knytt_embedder *e);


/* --- engine --- */
/* ------------------------------------------------------------------------
 * Engine (lib/engine, lib/taste): the store, the vector index and the
 * models tied together.  Items are embedded and indexed as they are
 * ingested; every feedback event updates the shopper's taste at once;
 * recommend, similar, search and trending answer from memory and the
 * index, with business filters that are never violated.
 *
 * Life cycle: knytt_engine_create() -> knytt_engine_set_*() ->
 * knytt_engine_open(uri) -> ... -> knytt_engine_close().
 *
 * Items are named by their external ids (strings) in every call; results
 * carry both the external id and the store's internal id (which is also
 * the item's label in the vector index).
 *
 * THREAD SAFETY.  After open, any number of threads may call recommend,
 * similar, search, trending, feedback and item_upsert/item_delete on one
 * engine at once: queries share a read lock, writes serialize on short
 * internal locks, and training runs in its own thread with its own store
 * connection, swapping the new model and index in atomically when done.
 * Setters are for before open; close must not race with other calls.
 * ---------------------------------------------------------------------- */
typedef struct knytt_engine knytt_engine;

/** Where item and query vectors come from. */
typedef enum knytt_model_kind {
	/* implicit ALS on interactions; items without interactions get no
	 * vector until the next training (caller vectors still work) */
	KNYTT_MODEL_ALS = 1,
	/* two-tower: text and category features embed every item, new ones
	 * included, and free-text queries */
	KNYTT_MODEL_TWOTOWER = 2,
	/* no trained model: vectors come from the caller or the external
	 * embedder (knytt_engine_set_embedder) */
	KNYTT_MODEL_EXTERNAL = 3,
	/* LightGCN (knytt_lightgcn) on interactions: as ALS, items without
	 * interactions get no vector until the next training; a shopper's
	 * taste is the fold-in of his items (knytt_lightgcn_fold_in) */
	KNYTT_MODEL_LIGHTGCN = 4
} knytt_model_kind;

/** Why a result was chosen. */
typedef enum knytt_reason {
	KNYTT_REASON_TASTE = 1,    /* close to the shopper's long-term taste */
	KNYTT_REASON_SESSION = 2,  /* close to what the shopper just did */
	KNYTT_REASON_SIMILAR = 3,  /* close to the given item */
	KNYTT_REASON_TRENDING = 4, /* many recent interactions */
	KNYTT_REASON_POPULAR = 5,  /* many interactions overall */
	KNYTT_REASON_KEYWORD = 6,  /* full-text match */
	KNYTT_REASON_SEMANTIC = 7, /* vector match of the query */
	KNYTT_REASON_HYBRID = 8,   /* both keyword and vector match */
	KNYTT_REASON_COVIEW = 9    /* often interacted with together */
} knytt_reason;

/**
 * A compiled attribute filter: a boolean expression over the items'
 * attributes (the JSON object of knytt_item.attributes), such as
 *
 *     brand = acme and size in (m, l) and not (colour = red or weight > 2)
 *
 * Comparisons: name = value, name != value, name in (v1, v2, ...),
 * name not in (...), and name < <= > >= number; combined with and, or,
 * not and parentheses (and binds tighter than or).  Names and bare values
 * are runs of letters, digits, '_', '.', '-', '+', '/', ':' and UTF-8
 * bytes; anything else goes in single or double quotes (\' \" \\ escape).
 * Keywords are case-insensitive; names and values are compared exactly.
 * An attribute matches a value when it equals it, or, for a JSON array,
 * when one element does (tags = sale).  Numbers compare by value (size =
 * 10 matches 10, 10.0 and "10"); true and false match JSON booleans.  An
 * item without the attribute fails =, in and the ranges, and passes !=
 * and not in.  Nested objects are not indexed.
 *
 * Compile once, use in any number of queries (knytt_filter.where) from
 * any number of threads: the object is immutable.  The engine evaluates
 * it against per-value bitsets it keeps current as items change.
 */
typedef struct knytt_where knytt_where;

/**
 * Compiles @p expr (NUL-terminated, at most 8192 bytes, nesting at most
 * 32 deep, at most 1024 comparisons and values) into *out, to be freed
 * with knytt_where_free().
 * @return KNYTT_OK; KNYTT_EINVAL for a syntax error (knytt_errmsg() names
 *         the byte position, 1-based, and what was expected), an empty
 *         expression or one over the limits; KNYTT_ENOMEM.
 */
KNYTT_API int knytt_where_compile(const char *expr, knytt_where **out);

/** Frees a compiled filter (NULL is allowed). */
KNYTT_API void knytt_where_free(knytt_where *w);

/**
 * Whether an item with @p attributes (a JSON object, or NULL / "" for
 * none; other text counts as none) passes @p w: for callers that hold
 * items outside the engine (a server filtering a cached list).
 * @return 1 (passes), 0 (fails), KNYTT_EINVAL (w NULL), KNYTT_ENOMEM.
 */
KNYTT_API int knytt_where_match(const knytt_where *w, const char *attributes);

/** Business filters.  Versioned struct: set struct_size =
 *  sizeof(knytt_filter); fields added later sit after these and default
 *  to "no filter" for callers built against this version.  A NULL filter
 *  pointer means no filter. */
typedef struct knytt_filter {
	size_t struct_size;
	const char *category_prefix; /* "shoes" matches "shoes/running";
					NULL or "" = any */
	double price_min;            /* inclusive; <= 0 = no minimum */
	double price_max;            /* inclusive; 0 or NAN = no maximum */
	int in_stock_only;           /* 1: only items in stock */
	double min_quality;          /* inclusive; NAN = no minimum */
	/* an attribute filter (knytt_where_compile), borrowed
	 * for the call; NULL = any */
	const knytt_where *where;
} knytt_filter;

/** Initializes the @p size bytes at @p f (the caller's
 *  sizeof(knytt_filter)) to "no filter" and sets struct_size; members of
 *  this version past @p size are not written. */
KNYTT_API void knytt_filter_init_size(knytt_filter *f, size_t size);
/** Initializes @p f to "no filter".  A macro passing the caller's own
 *  sizeof to knytt_filter_init_size, so that a program built against an
 *  older knytt.h (a shorter knytt_filter) is never written past its end
 *  by a newer library; the function of this name, called by programs
 *  built before the macro, writes the first version's members only. */
KNYTT_API void(knytt_filter_init)(knytt_filter *f);
#define knytt_filter_init(f) knytt_filter_init_size((f), sizeof *(f))

/**
 * One answer of recommend, similar, search or trending.  Versioned, as an
 * array: the caller sets out[0].struct_size = sizeof(knytt_result) (the
 * size it was compiled with) before the call; the library takes it as the
 * distance in bytes between consecutive results, writes into each result
 * it returns only the members that lie wholly within it (members a newer
 * header added stay untouched when this library is older) and sets that
 * result's struct_size to the same value.  Nothing past out[k-1] and
 * nothing past struct_size bytes of a result is written.  A struct_size
 * below offsetof(knytt_result, item_id) + 8 (a layout without item_id,
 * such as 0 from a caller that forgot it) or above 65536 fails with
 * KNYTT_EINVAL naming the field "struct_size", before anything is
 * written.  The other elements' struct_size need not be set.
 */
typedef struct knytt_result {
	size_t struct_size;                /* sizeof(knytt_result): out[0]'s
					      set by the caller */
	uint64_t item_id;                  /* store id = index label */
	char ext_id[KNYTT_STORE_MAX_ID + 1]; /* external id, NUL-terminated */
	double score;                      /* higher is better; comparable
					      within one answer only */
	knytt_reason reason;
	/* for KNYTT_REASON_SIMILAR / SESSION: the item that led here
	 * (its store id), else 0 */
	uint64_t because;
} knytt_result;

/** Recommendation options (versioned struct, see knytt_filter). */
typedef struct knytt_rec_options {
	size_t struct_size;
	/* MMR diversity: 1 = pure relevance (default), 0.3..0.9 trades
	 * relevance for variety (Carbonell & Goldstein 1998). */
	double mmr_lambda;
	/* -1 (default): the engine's setting; 0: exclude nothing for this
	 * call; 1: apply the exclusion rule (knytt_engine_set_exclude_seen,
	 * knytt_engine_set_exclude_type). */
	int exclude_seen;
} knytt_rec_options;

/** Initializes @p o to the defaults (lambda 1, engine's exclusion). */
KNYTT_API void knytt_rec_options_init(knytt_rec_options *o);

/** Training progress as reported by knytt_engine_train_status.
 *  Versioned: the caller sets struct_size = sizeof(knytt_train_status);
 *  the library writes only the bytes within it (at least struct_size and
 *  running: a smaller struct_size is KNYTT_EINVAL naming "struct_size"). */
typedef struct knytt_train_status {
	size_t struct_size; /* sizeof(knytt_train_status), set by the caller */
	int running;       /* 1 while a training job runs */
	int last_rc;       /* result of the last finished job (0 = ok) */
	knytt_progress progress; /* of the running or last job */
	int64_t model_version; /* version serving queries (0 = none) */
	size_t items_indexed;  /* vectors in the serving index */
} knytt_train_status;

/** The engine's defaults for training, the values a plain
 *  knytt_engine_train uses when the setters below are not called.  They
 *  are here so that tools that show or fill in one of them (knytt(1)
 *  train) agree with the engine: the engine sets them from these. */
#define KNYTT_ENGINE_DEFAULT_DIM 64
#define KNYTT_ENGINE_DEFAULT_ALS_REG 1
#define KNYTT_ENGINE_DEFAULT_ALS_ALPHA 1
#define KNYTT_ENGINE_DEFAULT_ALS_ITERATIONS 15
#define KNYTT_ENGINE_DEFAULT_TWOTOWER_EPOCHS 10
/* knytt_engine_set_sasrec: epochs at most, when on; the session model's
 * weight when no validation chose one */
#define KNYTT_ENGINE_DEFAULT_SASREC_EPOCHS 60
#define KNYTT_ENGINE_DEFAULT_SASREC_WEIGHT 0.3

/**
 * Creates an engine handle with the default settings (ALS of dimension
 * KNYTT_ENGINE_DEFAULT_DIM, HNSW 16/200/64, the default interaction
 * weights, synchronous feedback, the wall clock).  Nothing is opened
 * yet: call the knytt_engine_set_* setters, then knytt_engine_open.
 * @param[out] out  the new handle; the caller owns it and frees it with
 *                  knytt_engine_close, whether or not an open succeeded.
 * @return KNYTT_OK, KNYTT_EINVAL (out NULL), KNYTT_ENOMEM.
 * @note Thread safety: until knytt_engine_open returns, one thread at a
 *       time configures the handle.
 */
KNYTT_API int knytt_engine_create(knytt_engine **out);

/** Model kind (default KNYTT_MODEL_ALS).  Before open. */
KNYTT_API int knytt_engine_set_model(knytt_engine *e, knytt_model_kind kind);
/** Embedding dimension (default KNYTT_ENGINE_DEFAULT_DIM, 64): ALS
 *  factors, two-tower dimension, or the dimension of caller / embedder
 *  vectors.  Before open. */
KNYTT_API int knytt_engine_set_dim(knytt_engine *e, uint32_t dim);
/** HNSW parameters (0 = defaults 16, 200, 64).  Before open. */
KNYTT_API int knytt_engine_set_index(knytt_engine *e, unsigned m,
				     unsigned ef_construction,
				     unsigned ef_search);
/** Confidence weight of an interaction type ("view", "click",
 *  "add_to_cart", "purchase", "favorite", "rating" -- for rating the
 *  value multiplies it -- or a custom name, which sets the weight all
 *  custom types share).  Defaults: view 1, click 2, add_to_cart 4,
 *  purchase 8, favorite 4, rating 1, custom 1.  It applies to every row
 *  of the type, imported or fed back, in histories, trending and
 *  training: a row's stored weight is scaled by this over the default
 *  (a weight the caller gave one row keeps its ratio).  Before open. */
KNYTT_API int knytt_engine_set_weight(knytt_engine *e, const char *type,
				      double weight);
/** Taste: session half-life in seconds (default 1800), session share of
 *  the blended taste when the session is fresh (0..1, default 0.5), and
 *  the half-life in days of the long-term history (0 = no decay, the
 *  default).  Before open. */
KNYTT_API int knytt_engine_set_taste(knytt_engine *e,
				     double session_half_life_s,
				     double session_blend,
				     double history_half_life_days);
/**
 * The exclusion rule of recommend.  By default (seen = 1) an item the
 * shopper has interacted with, by an interaction of any type and at any
 * time of the whole history, is not recommended again, as shoppers
 * expect; seen = 0 turns every exclusion off (a call can choose with
 * knytt_rec_options.exclude_seen).  Before open.
 */
KNYTT_API int knytt_engine_set_exclude_seen(knytt_engine *e, int seen);
/**
 * Whether an interaction of @p type ("view", "click", "add_to_cart",
 * "purchase", "favorite", "rating"; any other name, or "*", stands for
 * every custom type) excludes the item from the shopper's
 * recommendations (default: every type does).  Buying again is opt-in:
 * knytt_engine_set_exclude_type(e, "purchase", 0) lets bought items come
 * back (an item is still excluded if another excluding type touched it).
 * Before open.
 * @return KNYTT_OK, KNYTT_EINVAL (NULL or empty type), KNYTT_ESTATE.
 */
KNYTT_API int knytt_engine_set_exclude_type(knytt_engine *e,
					    const char *type, int exclude);

/** A warning from the engine: @p msg is borrowed for the call. */
typedef void (*knytt_log_fn)(void *ctx, const char *msg);
/**
 * Where the engine reports what it recovered from without failing the
 * call (e.g. an index file that belongs to another store, tenant or
 * model version is refused and the index rebuilt).  NULL (default): not
 * reported.  The callback may run on the training thread.  Before open.
 * @return KNYTT_OK, KNYTT_EINVAL, KNYTT_ESTATE.
 */
KNYTT_API int knytt_engine_set_log(knytt_engine *e, knytt_log_fn fn,
				   void *ctx);

/** Default knytt_engine_set_future_tolerance: one hour. */
#define KNYTT_FUTURE_TOLERANCE_MS 3600000LL
/** Default knytt_engine_set_keep_models. */
#define KNYTT_KEEP_MODELS 3

/**
 * The engine's "now" in ms since the epoch; 0 (the default) = the wall
 * clock.  Trending, the session decay, the history's recency weights,
 * popularity (events up to now) and the time of feedback given without
 * one all read it, so data of another time (MovieLens of 1998, a replay
 * for an evaluation) can be served as of its own date.  May be called
 * while the engine is open (e.g. to advance a replay); set it before
 * open to seed trending with the four weeks before it.
 * @return KNYTT_OK, KNYTT_EINVAL (NULL engine, negative time).
 * Thread note: safe from any thread.
 */
KNYTT_API int knytt_engine_set_now(knytt_engine *e, int64_t now_ms);
/**
 * Feedback later than now + @p tolerance_ms (default
 * KNYTT_FUTURE_TOLERANCE_MS, 1 hour) is refused with KNYTT_EINVAL naming
 * ts_ms: a far-future time would otherwise keep an item at the top of
 * trending.  Before open.  (knytt_store_interaction_add and imports
 * apply the same check against the wall clock, with this default; the
 * engine's store handle uses the engine's tolerance.)
 * @return KNYTT_OK, KNYTT_EINVAL (negative), KNYTT_ESTATE.
 */
KNYTT_API int knytt_engine_set_future_tolerance(knytt_engine *e,
						int64_t tolerance_ms);
/**
 * How many trained model versions train keeps (default
 * KNYTT_KEEP_MODELS, 3; 0 = default): after a new version is stored, the
 * older ones beyond the newest @p n are deleted with their item
 * embeddings and index files.  Before open.
 * @return KNYTT_OK, KNYTT_EINVAL (over 1000), KNYTT_ESTATE.
 */
KNYTT_API int knytt_engine_set_keep_models(knytt_engine *e, unsigned n);
/** ALS hyper-parameters used by train (defaults KNYTT_ENGINE_DEFAULT_ALS_*:
 *  reg 1, alpha 1 -- the interaction weights above already scale
 *  confidence -- 15 iterations).  Factors = the engine dimension. */
KNYTT_API int knytt_engine_set_als(knytt_engine *e, float reg, float alpha,
				   unsigned iterations);
/**
 * Automatic tuning of ALS training (default on: @p tune = 1).  Train then
 * carves a validation period from the end of the interactions (the
 * latest 10% by time), fits the fixed settings (the dimension,
 * knytt_engine_set_als and the history half-life of
 * knytt_engine_set_taste) and, while a budget of ten such fits (the
 * final refit included) lasts, one change at a time from the best so
 * far: reg x10 and x100, alpha x4 and x16, a decay of the history's
 * weights.  The budget counts work estimated from the data's size and
 * the settings, not seconds: the same interactions, settings and
 * thread count train the same model however busy the machine is.  Each fit is scored by NDCG@20 on the validation period for
 * every blend weight with the 1-day, 1-week and 2-week trending lists
 * and the all-time popularity list (0 = no blend, 1 = the list alone);
 * the best setting is refitted on every interaction, and recommend
 * blends the shopper's personal list with the chosen list by that
 * weight.  The choice and its
 * validation figures are stored in the model's metadata (a "tune"
 * object: knytt_store_model_get, name "engine-model"), which also
 * restores the blend at open.  When the data is too small or too short
 * in time to validate on, the fixed settings train and "tune" says why
 * ("skipped").  0: fixed settings, no blend.  The dimension is never
 * tuned (the index is built for it).  Before open.
 * @return KNYTT_OK, KNYTT_EINVAL (not 0 or 1), KNYTT_ESTATE.
 */
KNYTT_API int knytt_engine_set_tune(knytt_engine *e, int tune);
/**
 * 1: the tuning may also blend the windowed counts of the last 3, 7, 14
 * or 28 days before "now" (recent popularity as a shop usually measures
 * it), which recommend then keeps current from the events of the last
 * four weeks held in memory (16 bytes each).  0 (the default): only the
 * decayed trending lists and all-time popularity; on MovieLens 100K held
 * out in time the windows validated well and ranked the test period
 * worse (README, "Automatic tuning").  Before open.
 * @return KNYTT_OK, KNYTT_EINVAL (not 0 or 1), KNYTT_ESTATE.
 */
KNYTT_API int knytt_engine_set_tune_windows(knytt_engine *e, int on);
/**
 * 1: the tuning may also choose the personalised re-rank of a
 * popularity list: recommend's personal list is then the first 50, 100
 * or 200 items of the chosen list (those passing the query) ordered by
 * the shopper's tastes, instead of the tastes' best over every item,
 * before the blend with the same list; the pool and the weight are
 * chosen on the validation period like the rest, and the model's
 * "tune" object records the pool ("pool", 0: none) and the best
 * validation NDCG@20 with each ("pool_ndcg20").  A model that chose a
 * pool is served so by any engine that opens it.  0 (the default): not
 * a candidate; on MovieLens held out in time it validated slightly
 * better and lost on one test period (README, "Automatic tuning").
 * Before open.
 * @return KNYTT_OK, KNYTT_EINVAL (not 0 or 1), KNYTT_ESTATE.
 */
KNYTT_API int knytt_engine_set_tune_pool(knytt_engine *e, int on);
/**
 * A sequence model as the session part of recommendations (off by
 * default): train also fits SASRec (knytt_sasrec, 50 dimensions, 2
 * blocks, the last 50 items, learning rate 0.005) on every shopper's
 * events in time order, stores it with the engine's model (the same
 * version, loaded at open, swapped in with it), and recommend encodes
 * the shopper's latest events (his history as the engine holds it, fed
 * back events included, no later than "now"; items the model does not
 * know are skipped) and blends the model's best next items that pass
 * the query into the answer by rank, after the blend with recent
 * popularity, with the reason KNYTT_REASON_SESSION.
 *
 * With tuning on (knytt_engine_set_tune) the model first fits the
 * events before the tuning's validation period, its epochs chosen by
 * the library's early stopping (knytt_sasrec_set_early_stop, every 5,
 * patience 2, at most @p max_epochs), and the weight of its list by
 * NDCG@20 on the period (0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8 or 1: 0 when
 * it does not win, and the model is then not kept); the final model
 * trains on every event for the epochs that won.  Without a validation
 * it trains @p max_epochs epochs and weighs
 * KNYTT_ENGINE_DEFAULT_SASREC_WEIGHT (0.3) unless
 * knytt_engine_set_sasrec_weight fixed one.  The choice is
 * reported in the model's metadata ("sasrec" object).  Costs: training
 * is far slower than ALS (ML-100K: ~0.3 s an epoch on one core, 943
 * shoppers), outside the tuning's budget; recommend adds an encode
 * of at most 50 items (~0.11 ms on one core) and a dot product per
 * model item (O(items x 50)).
 * @param max_epochs  0 (off) or 1..10000.  Before open.
 * @return KNYTT_OK, KNYTT_EINVAL (out of range), KNYTT_ESTATE (open).
 */
KNYTT_API int knytt_engine_set_sasrec(knytt_engine *e, unsigned max_epochs);
/**
 * The session model's weight in recommend's blend: @p w in [0, 1] fixes
 * it (0: not trained); a negative value (the default,
 * -1) lets the validation choose.  Before open.
 * @return KNYTT_OK, KNYTT_EINVAL (above 1, not a number), KNYTT_ESTATE.
 */
KNYTT_API int knytt_engine_set_sasrec_weight(knytt_engine *e, double w);
/** Two-tower epochs used by train (default
 *  KNYTT_ENGINE_DEFAULT_TWOTOWER_EPOCHS, 10). */
KNYTT_API int knytt_engine_set_twotower(knytt_engine *e, unsigned epochs);
/** External embedding service for item texts and queries (borrowed: must
 *  outlive the engine).  With KNYTT_MODEL_EXTERNAL it embeds items that
 *  come without a vector.  Before open. */
KNYTT_API int knytt_engine_set_embedder(knytt_engine *e,
					knytt_embedder *emb);
/** Tenant name (default "default"; created if absent).  Before open. */
KNYTT_API int knytt_engine_set_tenant(knytt_engine *e, const char *name);
/** Training threads (0 = every core).  Before open. */
KNYTT_API int knytt_engine_set_threads(knytt_engine *e, unsigned threads);
/**
 * Feedback write-behind.  0 (the default): knytt_engine_feedback commits
 * the event to the store before it returns.  1: it validates the event
 * with the store's rules, updates the taste and the item counters in
 * memory, queues the event and returns; a writer thread of the engine
 * stores queued events in order, one transaction each.  Every in-memory
 * read (recommend, trending, search's taste) sees an event at once either
 * way.  The trade-off is durability: an event acknowledged but not yet
 * written is lost if the process dies (the queue is normally empty within
 * a commit or two; knytt_engine_flush waits for it).  Calls that read
 * interactions back from the store or hand the store out (sync, train,
 * item_delete, knytt_engine_store) wait for the queue first.  Before open.
 * @return KNYTT_OK, KNYTT_EINVAL (e NULL), KNYTT_ESTATE (after open).
 */
KNYTT_API int knytt_engine_set_feedback_async(knytt_engine *e, int async);
/**
 * Memory budget of the engine's shopper profiles, in bytes (0 = the
 * default, 64 MiB; UINT64_MAX = no limit).  A profile holds a shopper's
 * whole history, the items the shopper has seen and the taste vectors;
 * the engine loads it from the store on the shopper's first request.
 * When the profiles in memory take more than the budget, the least
 * recently used idle ones are evicted and loaded again on their next
 * request: answers are the same either way (exclusions still cover the
 * whole history, the session is replayed from the recent stored events),
 * only that request pays the load.  A profile in use by a call is never
 * evicted, so memory may pass the budget by what running calls hold, nor
 * one whose feedback is still queued by write-behind.  Counted: events,
 * seen set, vectors, unused capacity and the allocator's overhead.
 * Before or after open (after: idle profiles over a lower budget go at
 * once).
 * @return KNYTT_OK, KNYTT_EINVAL (e NULL), KNYTT_ESTATE (after a failed
 *         open).
 * @note Thread safety: may be called while other calls run on @p e.
 */
KNYTT_API int knytt_engine_set_profile_cache(knytt_engine *e,
					     uint64_t bytes);

/** The profile cache as knytt_engine_profile_cache_info sees it
 *  (versioned struct: set struct_size to sizeof(knytt_profile_cache_info)
 *  before the call). */
typedef struct knytt_profile_cache_info {
	size_t struct_size;
	uint64_t budget;    /* bytes (UINT64_MAX: no limit) */
	uint64_t bytes;     /* bytes of the profiles in memory, counted as
			       the budget counts them */
	uint64_t profiles;  /* profiles in memory */
	uint64_t evictions; /* profiles evicted since open */
} knytt_profile_cache_info;

/**
 * The state of the engine's profile cache (knytt_engine_set_profile_cache):
 * its budget, the bytes and number of the profiles in memory, and the
 * evictions since open, so a service can export them and tell a budget
 * too small for its shoppers (evictions growing as fast as requests).
 * @return KNYTT_OK, KNYTT_EINVAL (e or out NULL, struct_size too small).
 * @note Thread safety: may be called while other calls run on @p e; the
 *       figures are each read at one moment, not all at the same one.
 */
KNYTT_API int knytt_engine_profile_cache_info(knytt_engine *e,
					      knytt_profile_cache_info *out);

/**
 * Opens the store at @p uri (see knytt_store_open) and restores the
 * serving state: items and their filters from the store, the latest
 * trained model and the vector index (from the index file saved next to
 * a SQLite database, else rebuilt from the stored embeddings), trending
 * counters from recent interactions.  Nothing is retrained.  A model
 * kind or dimension left at its default follows the stored model; one set
 * explicitly to something else means "retrain": the stored model is then
 * not served (recommendations fall back to trending and popular items)
 * until knytt_engine_train replaces it.
 * @return KNYTT_OK, KNYTT_EINVAL, KNYTT_ESTATE, KNYTT_EDB, KNYTT_EIO,
 *         KNYTT_ECORRUPT, KNYTT_ENOMEM.
 */
KNYTT_API int knytt_engine_open(knytt_engine *e, const char *uri);

/**
 * Closes the engine and frees the handle: waits for a running training
 * job to finish (it is not cancelled), writes the feedback still queued
 * (a failure then has no caller to go to: call knytt_engine_flush first
 * to see it), closes the store and frees the items, profiles, model and
 * index.  NULL is a no-op.
 *
 * After a failed knytt_engine_open the handle is good for nothing but
 * knytt_engine_close (as LMDB's mdb_env_close after a failed
 * mdb_env_open): close it, which frees what the open had loaded, and
 * create a new one to try again; a second knytt_engine_open on it
 * returns KNYTT_ESTATE.
 * @note Thread safety: no other call on @p e may run during or after it;
 *       the store handle from knytt_engine_store ends with it.
 */
KNYTT_API void knytt_engine_close(knytt_engine *e);

/** The engine's store handle (borrowed, valid until close), for imports
 *  and listings.  Do not use it from two threads at once, nor while the
 *  engine's own calls run on other threads. */
KNYTT_API knytt_store *knytt_engine_store(knytt_engine *e);

/**
 * Upserts @p item in the store and makes it searchable at once: filters
 * see its new price, stock and category on the very next query.  Its
 * vector is @p vec if given (dim floats), else the two-tower item tower,
 * else the external embedder (title + description), else the trained
 * ALS vector it already had (if any).
 * @return KNYTT_OK or an error; on error nothing changed.
 */
KNYTT_API int knytt_engine_item_upsert(knytt_engine *e,
				       const knytt_item *item,
				       const float *vec, uint32_t dim);
/** Soft-deletes an item: never returned again.  KNYTT_ENOTFOUND. */
KNYTT_API int knytt_engine_item_delete(knytt_engine *e, const char *ext_id);
/** Re-reads items changed in the store since the last sync (e.g. after a
 *  bulk import through knytt_engine_store, or another process's writes
 *  on one PostgreSQL database), and indexes the item vectors stored
 *  since (the "caller" embeddings knytt_engine_item_upsert writes, new
 *  or changed, even when the item's fields did not change); returns how
 *  many items changed. */
KNYTT_API int knytt_engine_sync(knytt_engine *e);

/**
 * Records that @p user did @p type ("view", "purchase", ...) on @p item
 * (value: the rating for "rating", else ignored; ts_ms 0 = now) and
 * updates the user's taste before returning: the next recommend sees it.
 * The event is in the store on return, or, with write-behind
 * (knytt_engine_set_feedback_async), queued for the engine's writer.
 * @return KNYTT_OK, KNYTT_ENOTFOUND (unknown item), KNYTT_EINVAL (a bad
 *         field, with the store's rules), KNYTT_EDB; with write-behind,
 *         also the error of an earlier queued write that failed and was
 *         not reported yet -- this event is then not recorded (retry).
 */
KNYTT_API int knytt_engine_feedback(knytt_engine *e, const char *user,
				    const char *item, const char *type,
				    double value, int64_t ts_ms);

/** Called for each event knytt_engine_feedback_batch refuses: @p index
 *  (0-based, in the batch), @p code (KNYTT_EINVAL, KNYTT_ERANGE or
 *  KNYTT_ENOTFOUND), @p field ("user", "item", "type", "value", "ts_ms",
 *  "event_id" or "") and @p reason; strings borrowed for the call. */
typedef void (*knytt_event_reject_fn)(size_t index, int code,
				      const char *field, const char *reason,
				      void *ctx);

/**
 * knytt_engine_feedback for @p n events (at most KNYTT_STORE_MAX_BATCH)
 * as one unit.  Each event reads user, item, type, value (the rating for
 * "rating") and ts_ms (0 = now) of its knytt_interaction; weight is the
 * type's default, and an event_id is refused (KNYTT_EINVAL: memory could
 * not tell a repeated event).  Bad events (bad field, unknown item) are
 * reported through @p on_reject (may be NULL) and left out; the others
 * are stored in one transaction (knytt_store_interactions_add) -- all
 * of them or, if the store fails (a full disk, a lost connection), none
 * -- and only after that commit does the shoppers' taste see them.
 * With write-behind the batch is queued as one entry and written in one
 * transaction by the engine's writer; its failure is reported as for
 * knytt_engine_feedback.
 * @return the number of events recorded (n minus the refused ones), or
 *         an error with nothing recorded: KNYTT_EINVAL (NULL events),
 *         KNYTT_ERANGE (too many), KNYTT_ESTATE, KNYTT_ENOMEM,
 *         KNYTT_EBUSY, KNYTT_EDB, KNYTT_EIO (the store's failure: retry
 *         the whole batch), and with write-behind an earlier queued
 *         write's failure not reported yet.
 * Thread note: safe from any thread, as knytt_engine_feedback.
 */
KNYTT_API int knytt_engine_feedback_batch(knytt_engine *e,
					  const knytt_interaction *const *ev,
					  size_t n,
					  knytt_event_reject_fn on_reject,
					  void *ctx);

/**
 * Waits until every feedback event accepted before the call is in the
 * store (write-behind engines, knytt_engine_set_feedback_async), and
 * reports the first write that failed since the last report.  Returns at
 * once with KNYTT_OK on a synchronous engine.  May be called from any
 * thread; it waits for events queued by other threads too.
 * @return KNYTT_OK, KNYTT_EINVAL (e NULL), KNYTT_ESTATE (not open), or
 *         the error of a failed write (KNYTT_EDB, ...: the message names
 *         the user and the item).
 */
KNYTT_API int knytt_engine_flush(knytt_engine *e);

/**
 * Up to @p k items for @p user within @p filter (may be NULL), best
 * first.  Items the shopper interacted with are excluded by the rule of
 * knytt_engine_set_exclude_seen / knytt_engine_set_exclude_type (by
 * default: everything of the whole history).  A known user without history (created by
 * knytt_store_user_upsert or an import) gets trending, then popular
 * items; for anonymous visitors use knytt_engine_trending.  @p opt may be
 * NULL.
 * @param[out] out  room for @p k results; out[0].struct_size set by the
 *         caller to sizeof(knytt_result), the array's stride (see
 *         knytt_result).  The same holds for every call that fills
 *         knytt_result arrays: similar, search, trending and the _exp
 *         variants.
 * @return the number of results, or KNYTT_EINVAL (k 0, bad filter, out
 *         NULL, out[0].struct_size out of range: the field is
 *         "struct_size"), KNYTT_ENOTFOUND (the store has never seen
 *         @p user).
 */
KNYTT_API int knytt_engine_recommend(knytt_engine *e, const char *user,
				     size_t k, const knytt_filter *filter,
				     const knytt_rec_options *opt,
				     knytt_result *out);

/** Items like @p item (never itself) within @p filter; for an item with
 *  no vector yet, the items most often interacted with by the same
 *  users.  Returns the count; KNYTT_ENOTFOUND for an unknown item. */
KNYTT_API int knytt_engine_similar(knytt_engine *e, const char *item,
				   size_t k, const knytt_filter *filter,
				   knytt_result *out);

/**
 * Hybrid search: full-text results for @p text and vector results for
 * @p vec (dim floats) or, when vec is NULL, for @p text embedded by the
 * model's text path or the external embedder, fused by reciprocal rank
 * fusion (k = 60).  With @p user, results are re-ranked toward the
 * user's taste.  Every search is written to the search log; the log id is
 * stored in *log_id when log_id is not NULL (for knytt_store_search_click).
 * A log the store cannot take (a full disk, an unreachable server) does
 * not fail the search: *log_id is then 0 and the engine's warning
 * callback is told.
 */
KNYTT_API int knytt_engine_search(knytt_engine *e, const char *text,
				  const float *vec, uint32_t dim, size_t k,
				  const knytt_filter *filter, const char *user,
				  knytt_result *out, uint64_t *log_id);

/**
 * The vector knytt_engine_search's vector half uses for @p text when the
 * caller gives none: the search words the last training learned from
 * the search log (see knytt_engine_train), the two-tower text path, the
 * two summed when the model has both, or the external embedder.  For
 * searching by vector alone (knytt_engine_search with text NULL) or
 * inspecting what the engine understood.
 * @param[out] out  @p dim floats, unit length; zeros when there is none.
 * @return 1 (a vector), 0 (no path knows a word of @p text), KNYTT_EINVAL
 *         (NULL, empty text, @p dim not the engine's), KNYTT_ESTATE (not
 *         open), or an embedder error.
 * Thread-safe like knytt_engine_search.
 */
KNYTT_API int knytt_engine_embed_query(knytt_engine *e, const char *text,
				       float *out, uint32_t dim);

/** The dimension of the engine's vectors: the one set before open, or
 *  the stored model's when none was set (what knytt_engine_embed_query
 *  and vector searches take).  0 for NULL or before open. */
KNYTT_API uint32_t knytt_engine_dim(const knytt_engine *e);

/** The @p k items with the highest time-decayed interaction counts, with
 *  a half-life of @p window_s seconds (3600, 86400, 604800 or 1209600;
 *  other values use the nearest), optionally within a category prefix.
 *  Counters are kept incrementally by feedback, not recounted. */
KNYTT_API int knytt_engine_trending(knytt_engine *e, size_t k,
				    double window_s, const char *category,
				    knytt_result *out);

/**
 * Trains the configured model on every interaction in the store, stores
 * the model and item embeddings, builds a new index and swaps it in.
 * knytt_engine_train blocks; knytt_engine_train_start runs the same job
 * in a background thread (KNYTT_EBUSY if one runs) while queries go on;
 * knytt_engine_train_wait joins it and returns its result.  The progress
 * callback (may be NULL) is called from the training thread; returning
 * non-zero cancels (KNYTT_ECANCELED).
 */
KNYTT_API int knytt_engine_train(knytt_engine *e, knytt_progress_fn fn,
				 void *ctx);
KNYTT_API int knytt_engine_train_start(knytt_engine *e, knytt_progress_fn fn,
				       void *ctx);
KNYTT_API int knytt_engine_train_wait(knytt_engine *e);
KNYTT_API int knytt_engine_train_status(knytt_engine *e,
					knytt_train_status *out);

/**
 * The evaluation of a trained model and the swap gate
 * (knytt_engine_set_train_eval).  Versioned struct: set struct_size =
 * sizeof(knytt_train_eval) before knytt_engine_train_eval.
 */
typedef struct knytt_train_eval {
	size_t struct_size;
	int64_t version;  /* the model version evaluated (0 = none yet) */
	int promoted;     /* 1: swapped in (serving); 0: stored, held back */
	size_t users;     /* test users (0: not evaluated) */
	size_t negatives; /* sampled negatives per test user */
	double hr, ndcg;  /* HR@10 and NDCG@10 of the held-out items */
	/* the serving model it was compared with (0: none, or it had no
	 * recorded evaluation) and that model's recorded NDCG@10 */
	int64_t compared_version;
	double compared_ndcg;
} knytt_train_eval;

/**
 * Evaluates each model train makes, and gates its swap.  With @p users
 * > 0, training holds out the last item of each of the @p users most
 * recently active shoppers with at least two items (every event of the
 * shopper on that item), trains on the rest, and ranks each held-out
 * item against up to 99 sampled items the shopper never touched
 * (leave-last-out with sampled negatives, He et al. 2017): HR@10 and
 * NDCG@10 go into the stored version's metadata ("eval") and
 * knytt_engine_train_eval.  The served model then lacks those events
 * (the shoppers' tastes, folded in at query time, still have them).
 * With @p margin >= 0, a new model whose NDCG@10 is below the serving
 * model's recorded one by more than @p margin is stored but not swapped
 * in ("promoted": false in its metadata): queries, knytt_engine_open
 * and knytt_engine_reload keep serving the newest promoted version.
 * A negative margin swaps every model in.  @p users 0 (the default)
 * evaluates nothing and gates nothing.  May be called while open (the
 * next training uses it).
 * @return KNYTT_OK, KNYTT_EINVAL (e NULL, users over 1000000, margin not
 *         finite).
 */
KNYTT_API int knytt_engine_set_train_eval(knytt_engine *e, unsigned users,
					  double margin);
/**
 * The evaluation of the last model trained by this engine (@p serving
 * 0) or the one of the model serving (@p serving 1: recorded when it was
 * trained, here or by another process).  Fields are 0 when there is
 * none.  Copies min(out->struct_size, sizeof) bytes.
 * @return KNYTT_OK, KNYTT_EINVAL (NULL, struct_size too small).
 */
KNYTT_API int knytt_engine_train_eval(knytt_engine *e, int serving,
				      knytt_train_eval *out);

/**
 * Events accepted by knytt_engine_feedback and not yet written to the
 * store (write-behind engines; always 0 for synchronous ones).
 * @return the count, or KNYTT_EINVAL (e NULL).  Any thread.
 */
KNYTT_API int64_t knytt_engine_feedback_pending(knytt_engine *e);

/**
 * Applies a feedback event that another process (a replica on the same
 * PostgreSQL database) stored: the item's popularity and trending
 * counters, and the shopper's history and taste when this engine has
 * the shopper loaded (otherwise the history is read from the store on
 * first use, where the event already is).  Nothing is written.  An event
 * the loaded profile already holds (same item, type and time) is not
 * applied twice, so a catch-up may replay events.  @p ts_ms is the
 * stored time (not 0).
 * @return 1 applied, 0 already there, KNYTT_ENOTFOUND (item unknown to
 *         this engine: knytt_engine_sync first), KNYTT_EINVAL.
 */
KNYTT_API int knytt_engine_feedback_apply(knytt_engine *e, const char *user,
					  const char *item, const char *type,
					  double value, int64_t ts_ms);

/**
 * Brings every shopper profile this engine has loaded up to the store:
 * events another process stored that the profile lacks (same item, type
 * and time), whatever their times, are applied as by
 * knytt_engine_feedback_apply.  For a replica whose notifications were
 * lost (a dropped connection).  Costs a history read per loaded shopper.
 * @return the number of events applied, or an error (KNYTT_ESTATE,
 *         KNYTT_EDB, KNYTT_ENOMEM).
 */
KNYTT_API int knytt_engine_refresh_users(knytt_engine *e);

/**
 * The trending counters' part of a replica's catch-up: counts every
 * interaction of the tenant stored after @p after_mark
 * (knytt_store_interaction_mark) into the trending counters, except the
 * events this engine already counted at open, those of shoppers it has
 * loaded (knytt_engine_refresh_users counts their missing events: call
 * it after this one), and those @p skip claims (non-zero: "counted
 * already", e.g. the caller's own writes; may be NULL).  Popularity is
 * not touched (knytt_engine_sync re-reads it).  Reads the store on a
 * connection of its own.
 * @param[out] last_mark  the highest interaction id read (or
 *                        @p after_mark); may be NULL.
 * @return the number of events counted, KNYTT_EINVAL, KNYTT_ESTATE, or
 *         a store error.
 */
KNYTT_API int knytt_engine_refresh_trending(knytt_engine *e,
					    int64_t after_mark,
					    knytt_interaction_fn skip,
					    void *ctx, int64_t *last_mark);

/**
 * Serves the newest promoted model version in the store if it is newer
 * than the one serving (trained by another process on the same
 * database): its index file or an index built from it, swapped in
 * atomically as after training.  Queries go on meanwhile.
 * @return 1 a new version serves, 0 nothing newer, or an error
 *         (KNYTT_ESTATE not open, KNYTT_EDB, KNYTT_ECORRUPT, ...).
 */
KNYTT_API int knytt_engine_reload(knytt_engine *e);

/** The human-readable name of a reason ("taste", "session", ...). */
KNYTT_API const char *knytt_reason_name(knytt_reason r);
/* ===== end part: engine ===== */

/* ===== part: analytics and experiments (lib/store/analytics.c,
 * lib/store/experiment.c, lib/common/abstats.c, lib/engine/experiment.c)
 * ===== */

/** One query of a search report (queries are grouped case-folded, with
 *  spaces trimmed and collapsed). */
typedef struct knytt_query_stat {
	char query[257];       /* the grouped text, cut at 256 bytes */
	uint64_t searches;     /* searches of it in the range */
	uint64_t zero_results; /* of which found nothing */
	double mean_results;   /* mean result count */
	uint64_t clicked;      /* searches followed by a click on a result */
	double ctr;            /* clicked / searches */
	double mrr;            /* mean over searches of 1/rank of the first
				  clicked result (0 for no click) */
} knytt_query_stat;

/** Searches of one UTC day. */
typedef struct knytt_day_stat {
	int64_t day_ms; /* midnight UTC opening the day */
	uint64_t searches, zero_results, clicked;
} knytt_day_stat;

/**
 * A search report (knytt_store_search_report), one allocation: free it
 * with knytt_free().  The arrays point inside it.
 */
typedef struct knytt_search_report {
	int64_t from_ms, to_ms; /* the range, [from, to) */
	int64_t window_ms;      /* the click attribution window */
	uint64_t searches, zero_results, clicked, users;
	double ctr, mrr;
	size_t ntop;            /* most searched queries, most first */
	knytt_query_stat *top;
	size_t nfew;            /* queries with few results (mean <= the
				   threshold), most searched first */
	knytt_query_stat *few;
	size_t ndays;           /* days with searches, oldest first */
	knytt_day_stat *days;
} knytt_search_report;

/**
 * What shoppers searched for between @p from_ms and @p to_ms (0 = open
 * ends) in the selected tenant, from the search log.  A search counts as
 * clicked when knytt_store_search_click recorded a click for it, or when
 * the same shopper interacted (click, add to cart, favorite, purchase)
 * with one of its results within @p window_ms after it (0 = 30 minutes)
 * and before their next search: the rank of that result gives the
 * reciprocal rank.  Only searches logged with their results
 * (knytt_engine_search) can be attributed that way.
 * @param top  the number of queries in each list (1..10000; 0 = 20).
 * @param few  a query has "few results" when its mean count is at most
 *             this (0 = zero results only).
 * @param[out] out  the report, free with knytt_free().
 * @return KNYTT_OK, KNYTT_EINVAL (a range ending before it starts, top
 *         too large, negative window), KNYTT_ESTATE, KNYTT_EDB.
 * Thread safety: as any call on @p st.
 */
KNYTT_API int knytt_store_search_report(knytt_store *st, int64_t from_ms,
					int64_t to_ms, size_t top, int few,
					int64_t window_ms,
					knytt_search_report **out);

#define KNYTT_EXP_MAX_VARIANTS 8
#define KNYTT_EXP_MAX_NAME 64

/** One arm of an experiment.  The first variant is the control. */
typedef struct knytt_variant {
	char name[33];     /* [A-Za-z0-9_.-], 1..32 bytes */
	double share;      /* traffic share, > 0 (shares are normalised) */
	char model[65];    /* the model serving it: "" = the engine's own,
			      else a label of knytt_engine_set_variant_engine */
	double mmr_lambda; /* diversity for recommendations, 0..1; -1 = the
			      request's own */
	int exclude_seen;  /* -1 = the request's own, 0, 1 (as in
			      knytt_rec_options) */
} knytt_variant;

/** Experiment status, as knytt_store_experiment_get reports it. */
typedef enum knytt_exp_status {
	KNYTT_EXP_SCHEDULED = 0, /* before its start */
	KNYTT_EXP_RUNNING = 1,
	KNYTT_EXP_ENDED = 2,     /* past its end */
	KNYTT_EXP_STOPPED = 3    /* knytt_store_experiment_stop */
} knytt_exp_status;

/** An experiment (versioned struct: set struct_size, or call
 *  knytt_experiment_init). */
typedef struct knytt_experiment {
	size_t struct_size;
	uint64_t id;                       /* set by the store */
	char name[KNYTT_EXP_MAX_NAME + 1]; /* [A-Za-z0-9_.-], unique */
	int64_t start_ms;                  /* 0 = when created */
	int64_t end_ms;                    /* 0 = open-ended */
	int64_t window_ms; /* outcomes count this long after an exposure
			      (0 = 24 hours) */
	int64_t stopped_ms;                /* 0 = not stopped */
	knytt_exp_status status;           /* read: at the time of the call */
	int nvariants;                     /* 2..KNYTT_EXP_MAX_VARIANTS */
	knytt_variant variants[KNYTT_EXP_MAX_VARIANTS];
} knytt_experiment;

/** Sets @p x to an empty experiment (no variants, 24 h window) and each
 *  variant slot to share 1, model "", lambda -1, exclude_seen -1. */
KNYTT_API void knytt_experiment_init(knytt_experiment *x);

/**
 * The variant a shopper gets when first exposed: the hash of (@p tenant,
 * the experiment's name, @p user) placed on the cumulative traffic
 * shares.  Pure and deterministic: every replica and restart computes the
 * same, and the share of users per variant tends to the traffic shares.
 * @return the variant index, or KNYTT_EINVAL (NULL, fewer than 2
 *         variants, a share not > 0).
 */
KNYTT_API int knytt_experiment_bucket(const knytt_experiment *x,
				      uint64_t tenant, const char *user);

/**
 * Stores a new experiment in the selected tenant.
 * @param[out] id  its id (may be NULL).
 * @return KNYTT_OK, KNYTT_EINVAL (the message names the field),
 *         KNYTT_EEXIST (the name is taken), KNYTT_ESTATE, KNYTT_EDB.
 */
KNYTT_API int knytt_store_experiment_create(knytt_store *st,
					    const knytt_experiment *x,
					    uint64_t *id);
/** Reads experiment @p name into @p out (struct_size set by the caller);
 *  KNYTT_OK, KNYTT_ENOTFOUND, KNYTT_EINVAL. */
KNYTT_API int knytt_store_experiment_get(knytt_store *st, const char *name,
					 knytt_experiment *out);
/** Up to @p cap experiments of the tenant, newest first (each out[i]
 *  needs struct_size set).  Returns the count or an error. */
KNYTT_API int knytt_store_experiment_list(knytt_store *st,
					  knytt_experiment *out, size_t cap);
/** Stops experiment @p name at @p at_ms (0 = now): no new exposures;
 *  outcomes of earlier exposures still count within the window.
 *  KNYTT_OK, KNYTT_ENOTFOUND, KNYTT_ESTATE (already stopped). */
KNYTT_API int knytt_store_experiment_stop(knytt_store *st, const char *name,
					  int64_t at_ms);
/** Changes the traffic shares (@p n = the number of variants).  Shoppers
 *  already assigned keep their variant; new ones follow the new shares.
 *  KNYTT_OK, KNYTT_EINVAL, KNYTT_ENOTFOUND. */
KNYTT_API int knytt_store_experiment_set_shares(knytt_store *st,
						const char *name,
						const double *shares, int n);

/**
 * The variant of @p user in running experiment @p name at @p ts_ms (0 =
 * now): the stored assignment if the shopper has one (sticky), else
 * knytt_experiment_bucket's, which is then stored.  The user is created
 * if unknown.
 * @return the variant index, KNYTT_ENOTFOUND (no such experiment),
 *         KNYTT_ESTATE (not running at @p ts_ms), KNYTT_EINVAL.
 */
KNYTT_API int knytt_store_experiment_assign(knytt_store *st, const char *name,
					    const char *user, int64_t ts_ms);
/**
 * Logs that @p user saw the @p n items @p item_ids (store ids, best
 * first; only the first 100 are kept) of variant @p variant on @p surface
 * ("recommend", "search", ... <= 32 bytes) at @p ts_ms (0 = now).
 * @return KNYTT_OK, KNYTT_EINVAL, KNYTT_ENOTFOUND, KNYTT_EDB.
 */
KNYTT_API int knytt_store_experiment_expose(knytt_store *st, const char *name,
					    const char *user, int variant,
					    const char *surface,
					    const uint64_t *item_ids, size_t n,
					    int64_t ts_ms);

/** The comparison of a rate with the control's (knytt_ab_compare). */
typedef struct knytt_ab_stat {
	uint64_t n, x;      /* trials and successes */
	double rate;        /* x / n (0 when n is 0) */
	double lo, hi;      /* its 95% Wilson interval */
	double lift;        /* rate / control rate - 1; NAN for the control
			       or a control rate of 0 */
	double diff_lo, diff_hi; /* 95% interval of rate - control rate */
	double p;           /* two-sided p-value of the two-proportion
			       z-test against the control; NAN for it */
	int small;          /* 1: fewer than 10 successes or failures in
			       an arm; the normal approximation is weak */
} knytt_ab_stat;

/**
 * Fills @p out for x successes in n trials, against the control's @p cx
 * of @p cn (out->lift, diff and p are NAN when @p is_control).
 * @return KNYTT_OK, KNYTT_EINVAL (x > n, NULL).
 */
KNYTT_API int knytt_ab_compare(uint64_t n, uint64_t x, uint64_t cn,
			       uint64_t cx, int is_control,
			       knytt_ab_stat *out);

/** One variant's results. */
typedef struct knytt_variant_report {
	char name[33];
	uint64_t exposures, users;
	knytt_ab_stat ctr;        /* exposures with a click on a shown item
				     in the window / exposures */
	knytt_ab_stat conversion; /* users with an add to cart or purchase
				     of a shown item in the window / users */
} knytt_variant_report;

/** An experiment's report (knytt_store_experiment_report). */
typedef struct knytt_exp_report {
	knytt_experiment exp;
	int nvariants;
	knytt_variant_report v[KNYTT_EXP_MAX_VARIANTS];
	int small_sample; /* some arm too small for the z-test */
} knytt_exp_report;

/**
 * Computes the report of experiment @p name from its exposures and the
 * interactions that followed them.  An outcome (click; add to cart or
 * purchase) counts when the exposed shopper had it on an item of the
 * exposure within the experiment's window after it, and goes to the
 * latest such exposure only.
 * @param[out] out  filled; out->exp.struct_size is set here.
 * @return KNYTT_OK, KNYTT_ENOTFOUND, KNYTT_EINVAL, KNYTT_EDB.
 */
KNYTT_API int knytt_store_experiment_report(knytt_store *st,
					    const char *name,
					    knytt_exp_report *out);

/**
 * Lets engine @p other (open on the same store and tenant) serve the
 * variants whose model is @p label (1..64 bytes), e.g. a second model
 * kind.  @p other NULL removes the label.  Call before serving: it is
 * not safe against concurrent queries on @p e.  At most 8 labels.
 * @return KNYTT_OK, KNYTT_EINVAL, KNYTT_ERANGE (too many labels).
 */
KNYTT_API int knytt_engine_set_variant_engine(knytt_engine *e,
					      const char *label,
					      knytt_engine *other);

/** The variant an answer was served by. */
typedef struct knytt_exp_served {
	int variant;  /* index in the experiment */
	char name[33];
	char model[65];
} knytt_exp_served;

/**
 * knytt_engine_recommend for @p user inside running experiment @p exp:
 * assigns the shopper (knytt_store_experiment_assign), serves the answer
 * with the variant's model and settings (its mmr_lambda and exclude_seen
 * override @p opt's when set), logs the exposure and reports the variant
 * in @p served.
 * @return as knytt_engine_recommend, plus KNYTT_ENOTFOUND (no such
 *         experiment) and KNYTT_ESTATE (not running; nothing is served),
 *         KNYTT_ENOTFOUND also when the variant's model label has no
 *         engine.
 */
KNYTT_API int knytt_engine_recommend_exp(knytt_engine *e, const char *exp,
					 const char *user, size_t k,
					 const knytt_filter *filter,
					 const knytt_rec_options *opt,
					 knytt_result *out,
					 knytt_exp_served *served);
/** knytt_engine_search inside experiment @p exp for @p user (required),
 *  as knytt_engine_recommend_exp: the variant's model serves the search;
 *  the exposure's surface is "search". */
KNYTT_API int knytt_engine_search_exp(knytt_engine *e, const char *exp,
				      const char *text, const float *vec,
				      uint32_t dim, size_t k,
				      const knytt_filter *filter,
				      const char *user, knytt_result *out,
				      uint64_t *log_id,
				      knytt_exp_served *served);
/* ===== end part: analytics and experiments ===== */

#ifdef __cplusplus
}
#endif

#endif /* KNYTT_H */
