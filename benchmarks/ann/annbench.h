/*
 * annbench.h -- the shared part of the ANN benchmark drivers: data sets,
 * ground truth, recall, timing, memory figures and the CSV row.
 *
 * Each library is measured by its own executable (ann_knytt, ann_hnswlib,
 * ann_faiss), one process per library and data set, so peak RSS belongs to
 * one library.  They share ann_main.c, which calls the library through the
 * small adapter below.  This header is C and C++ so the C++ adapters can
 * use it; benchmark code only, never part of libknytt.
 */
#ifndef ANNBENCH_H
#define ANNBENCH_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Neighbours per query kept in ground-truth files (bigann10k ships 100). */
#define ANN_GT_K 100

/*
 * A loaded data set.  Vectors are row-major floats whatever the file type
 * (bigann's uint8 values are converted exactly).  gt holds, per query,
 * gt_k 0-based row numbers into base, nearest first (squared L2, or the
 * largest inner product when ip is set: the embedding-like sets).
 */
typedef struct ann_data {
	char name[64];
	size_t n, dim, nq, gt_k;
	int ip; /* 1: inner product on unit vectors; 0: L2 */
	float *base;    /* n * dim */
	float *queries; /* nq * dim */
	int32_t *gt;    /* nq * gt_k, or NULL when not loaded */
} ann_data;

/* Loader outcome: ANN_OK, ANN_SKIP (files absent: a message saying which
 * was printed, the caller skips the data set), ANN_FAIL (bad file, bad
 * name, out of memory: message printed). */
enum { ANN_OK = 0, ANN_SKIP = 1, ANN_FAIL = -1 };

/*
 * Loads data set @p name: "bigann10k" (its holdout base, 100 queries and
 * ground truth under @p data_dir/bigann10k), "synth100k" or "synth1m"
 * (the Gaussian mixture), "emb256", "emb512" or "emb768" (embedding-like:
 * 100k unit vectors, inner product); synthetic sets are regenerated in
 * memory, their ground truth read from @p cache_dir, written there by
 * ann_prep.  With @p want_gt 0 the ground
 * truth is not read (ann_prep uses this to compute it).
 */
int ann_data_load(const char *name, const char *data_dir,
		  const char *cache_dir, int want_gt, ann_data *d);
void ann_data_free(ann_data *d);

/* 1 if @p name is a synthetic set (ground truth computed by ann_prep). */
int ann_data_is_synthetic(const char *name);

/* Path of the cached ground-truth file of synthetic set @p name. */
void ann_gt_path(const char *name, const char *cache_dir, char *buf,
		 size_t cap);

/* Writes @p nq rows of @p k int32 ids as .ivecs (temp file + rename). */
int ann_write_ivecs(const char *path, const int32_t *ids, size_t nq,
		    size_t k);

/* Mean recall@k: |result_i[0..k) ∩ gt_i[0..k)| / k over the queries.
 * @p res holds nq rows of @p k labels (row numbers), -1 for none. */
double ann_recall(const ann_data *d, const int64_t *res, size_t k);

/* Parses a comma list of positive integers (an ef sweep) into
 * efs[0..cap); returns the count, or 0 after a message on stderr. */
size_t ann_parse_efs(const char *arg, unsigned *efs, size_t cap);
/* qsort comparison of doubles, ascending. */
int ann_cmp_double(const void *a, const void *b);

/* Monotonic seconds. */
double ann_now(void);
/* CPU seconds of the calling thread (CLOCK_THREAD_CPUTIME_ID). */
double ann_thread_cpu(void);
/* CPU seconds of the whole process, user + system (getrusage). */
double ann_process_cpu(void);
/* Peak resident set of this process in bytes (getrusage ru_maxrss). */
size_t ann_peak_rss(void);
/* Current resident set in bytes (/proc/self/statm), 0 if unknown. */
size_t ann_cur_rss(void);

/*
 * build()'s seed meaning "the library's own default" (knytt 42, hnswlib
 * 100, FAISS 12345), so a driver run without --seed draws the graphs it
 * always drew.
 */
#define ANN_SEED_DEFAULT UINT64_MAX

/*
 * What a driver needs from a library.  build() returns an opaque index
 * holding all of d's base vectors under labels 0..n-1, built with
 * @p nthreads threads, its random levels drawn from @p seed (or the
 * library's default seed: ANN_SEED_DEFAULT), or NULL after writing a
 * reason into @p err.  The seed fixes the sequence of levels drawn.
 * knytt's add_batch and FAISS's add draw every node's level before the
 * threads start, so there the seed also fixes which node gets which;
 * hnswlib draws in each inserting thread, so with more than one build
 * thread its levels go to nodes in the order the threads take them.  With
 * more than one thread the links may follow the threads' timing too.
 * search() answers one query on the calling thread and writes up to k
 * labels (nearest first, -1 for none) into @p out.
 */
typedef struct ann_adapter {
	const char *library; /* CSV "library" column */
	const char *bytes_note; /* how index_bytes is measured */
	void *(*build)(const ann_data *d, unsigned m, unsigned ef_construction,
		       unsigned nthreads, uint64_t seed, char *err,
		       size_t errlen);
	void (*search)(void *index, const float *query, size_t k, unsigned ef,
		       int64_t *out);
	size_t (*index_bytes)(void *index);
	size_t (*vector_bytes)(void *index); /* 0 = not reported */
	void (*destroy)(void *index);
} ann_adapter;

/* Each driver links exactly one adapter file, which defines this.
 * @p variant is the --variant option ("" when absent); NULL = unknown. */
const ann_adapter *ann_adapter_get(const char *variant);

#ifdef __cplusplus
}
#endif

#endif /* ANNBENCH_H */
