/*
 * testutil.h -- helpers shared by the test suites.
 */
#ifndef KNYTT_TESTUTIL_H
#define KNYTT_TESTUTIL_H

#include "suites.h"

#include <check.h>
#include <glob.h>
#include <knytt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Directory of the shared public data sets (../shared/data), or NULL. */
static inline const char *tu_data_dir(void)
{
	const char *d = getenv("KNYTT_DATA_DIR");
	return d && *d ? d : "../shared/data";
}

/* Path of a data file, or NULL (with a SKIP line printed) if absent. */
static inline const char *tu_data_file(const char *rel, char *buf,
				       size_t cap)
{
	snprintf(buf, cap, "%s/%s", tu_data_dir(), rel);
	FILE *f = fopen(buf, "rb");
	if (!f) {
		fprintf(stderr, "SKIP: %s absent (set KNYTT_DATA_DIR)\n", buf);
		return NULL;
	}
	fclose(f);
	return buf;
}

/* 1 under `make sanitize`: slow cases shrink their sizes. */
static inline int tu_sanitize(void)
{
	const char *s = getenv("KNYTT_SANITIZE");
	return s && *s == '1';
}

static inline uint64_t tu_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static inline float tu_randf(uint64_t *s) /* uniform [-1, 1) */
{
	return (float)((double)(tu_rand(s) >> 11) / 4503599627370496.0 - 1.0);
}

static inline float tu_gauss(uint64_t *s)
{
	/* sum of 4 uniforms: close enough to normal for clustered data */
	return (tu_randf(s) + tu_randf(s) + tu_randf(s) + tu_randf(s)) * 0.87f;
}

/* n x d floats from a fixed-seed mixture of @p nclusters Gaussians;
 * caller frees.  cluster_of (may be NULL) receives each row's cluster. */
static inline float *tu_clustered(size_t n, size_t d, size_t nclusters,
				  uint64_t seed, int *cluster_of)
{
	float *c = malloc(nclusters * d * sizeof *c);
	float *v = malloc(n * d * sizeof *v);
	for (size_t i = 0; i < nclusters * d; i++)
		c[i] = tu_randf(&seed) * 4.0f;
	for (size_t i = 0; i < n; i++) {
		size_t k = tu_rand(&seed) % nclusters;
		if (cluster_of)
			cluster_of[i] = (int)k;
		for (size_t j = 0; j < d; j++)
			v[i * d + j] = c[k * d + j] + tu_gauss(&seed);
	}
	free(c);
	return v;
}

/*
 * n x d floats drawn from a fixed mixture of @p ncl clusters, each a
 * Gaussian on a random @p rank-dimensional subspace around its centre
 * plus a little isotropic noise: the low intrinsic dimension of real
 * embeddings.  The mixture depends on @p model_seed only, the points on
 * @p point_seed, so base vectors and queries come from the same mixture.
 * cluster_of (may be NULL) receives each row's cluster.  Caller frees.
 */
static inline float *tu_mixture(size_t n, size_t d, size_t ncl, size_t rank,
				uint64_t model_seed, uint64_t point_seed,
				int *cluster_of)
{
	float *c = malloc(ncl * d * sizeof *c);
	float *basis = malloc(ncl * rank * d * sizeof *basis);
	float *v = malloc(n * d * sizeof *v);
	float sc = 1.5f / sqrtf((float)rank);
	for (size_t i = 0; i < ncl * d; i++)
		c[i] = tu_randf(&model_seed) * 4.0f;
	for (size_t i = 0; i < ncl * rank * d; i++)
		basis[i] = tu_gauss(&model_seed) * sc;
	for (size_t i = 0; i < n; i++) {
		size_t k = tu_rand(&point_seed) % ncl;
		if (cluster_of)
			cluster_of[i] = (int)k;
		float *x = v + i * d;
		for (size_t j = 0; j < d; j++)
			x[j] = c[k * d + j] + 0.05f * tu_gauss(&point_seed);
		for (size_t r = 0; r < rank; r++) {
			float z = tu_gauss(&point_seed);
			const float *b = basis + (k * rank + r) * d;
			for (size_t j = 0; j < d; j++)
				x[j] += z * b[j];
		}
	}
	free(c);
	free(basis);
	return v;
}

/* Removes directory @p dir and all it holds (a test's temporary store). */
static inline void tu_rm_dir(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	ck_assert_int_eq(system(cmd), 0);
}

/* Removes SQLite database @p path and the files beside it: the WAL,
 * its index, the store's bulk-lock file (which the store leaves in
 * place on purpose) and the engine's PATH.* index files. */
static inline void tu_rm_db(const char *path)
{
	static const char *const side[] = {"", "-wal", "-shm", "-knytt-bulk"};
	char p[4200];
	for (size_t i = 0; i < sizeof side / sizeof side[0]; i++) {
		snprintf(p, sizeof p, "%s%s", path, side[i]);
		unlink(p);
	}
	glob_t g;
	snprintf(p, sizeof p, "%s.*", path);
	if (glob(p, 0, NULL, &g) == 0) {
		for (size_t i = 0; i < g.gl_pathc; i++)
			unlink(g.gl_pathv[i]);
		globfree(&g);
	}
}

/* The metadata stored with engine @p e's latest model (knytt_free it). */
static inline char *tu_model_meta(knytt_engine *e)
{
	char *meta = NULL;
	ck_assert_int_eq(knytt_store_model_get(knytt_engine_store(e),
					       "engine-model", 0, NULL, NULL,
					       &meta, NULL, NULL),
			 KNYTT_OK);
	ck_assert_ptr_nonnull(meta);
	return meta;
}

#endif
