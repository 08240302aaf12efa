/*
 * testutil.h -- helpers shared by the test suites.
 */
#ifndef KNYTT_TESTUTIL_H
#define KNYTT_TESTUTIL_H

#include "suites.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

#endif
