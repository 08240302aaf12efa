/*
 * ann_prep.c -- exact ground truth of a synthetic data set, cached.
 *
 * Usage: ann_prep --dataset synth100k|synth1m [--cache-dir DIR]
 *
 * Regenerates the data set, and if DIR/<name>-v<version>-gt100.ivecs is
 * absent computes the 100 nearest base rows of every query with
 * knytt_exact_knn (OpenBLAS sgemm), then re-ranks its 116 candidates by
 * squared L2 computed in double: the sgemm form |q|^2 + |x|^2 - 2 q.x
 * loses digits to cancellation, which could swap near-ties at the k-th
 * place.  Ties left after that are ordered by row number.
 */
#include "annbench.h"

#include <knytt.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CAND (ANN_GT_K + 16)

struct cand {
	double d;
	int32_t id;
};

static int cmp_cand(const void *a, const void *b)
{
	const struct cand *x = a, *y = b;
	if (x->d != y->d)
		return x->d < y->d ? -1 : 1;
	return (x->id > y->id) - (x->id < y->id);
}

static int mkdirs(const char *path)
{
	char buf[4096];
	snprintf(buf, sizeof buf, "%s", path);
	for (char *p = buf + 1; *p; p++)
		if (*p == '/') {
			*p = 0;
			if (mkdir(buf, 0755) != 0 && errno != EEXIST)
				return -1;
			*p = '/';
		}
	return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

int main(int argc, char **argv)
{
	const char *dataset = NULL, *cache_dir = "build/bench-data";
	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--dataset") == 0)
			dataset = argv[i + 1];
		else if (strcmp(argv[i], "--cache-dir") == 0)
			cache_dir = argv[i + 1];
	}
	if (!dataset || argc % 2 == 0) {
		fprintf(stderr, "usage: %s --dataset NAME [--cache-dir DIR]\n",
			argv[0]);
		return 2;
	}
	if (!ann_data_is_synthetic(dataset))
		return 0; /* real sets ship their ground truth */

	char path[4096];
	ann_gt_path(dataset, cache_dir, path, sizeof path);
	struct stat st;
	if (stat(path, &st) == 0)
		return 0;
	if (mkdirs(cache_dir) != 0) {
		fprintf(stderr, "%s: %s\n", cache_dir, strerror(errno));
		return 1;
	}

	ann_data d;
	if (ann_data_load(dataset, "", cache_dir, 0, &d) != ANN_OK)
		return 1;
	fprintf(stderr, "[prep %s] exact ground truth of %zu queries over "
		"%zu x %zu (knytt_exact_knn) -> %s\n", dataset, d.nq, d.n,
		d.dim, path);
	double t0 = ann_now();
	uint64_t *ids = malloc(sizeof *ids * d.nq * CAND);
	int32_t *gt = malloc(sizeof *gt * d.nq * ANN_GT_K);
	if (!ids || !gt) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	int rc = knytt_exact_knn(d.ip ? KNYTT_METRIC_IP : KNYTT_METRIC_L2,
				 d.dim, d.base, d.n,
				 d.queries, d.nq, CAND, ids, NULL);
	if (rc < 0) {
		fprintf(stderr, "knytt_exact_knn: %s: %s\n", knytt_errname(rc),
			knytt_errmsg());
		return 1;
	}
	for (size_t q = 0; q < d.nq; q++) {
		struct cand c[CAND];
		const float *qv = d.queries + q * d.dim;
		for (size_t i = 0; i < CAND; i++) {
			const float *x = d.base + ids[q * CAND + i] * d.dim;
			double s = 0;
			for (size_t j = 0; j < d.dim; j++) {
				double t = (double)qv[j] - (double)x[j];
				/* nearest first: the largest product */
				s += d.ip ? -(double)qv[j] * x[j] : t * t;
			}
			c[i].d = s;
			c[i].id = (int32_t)ids[q * CAND + i];
		}
		qsort(c, CAND, sizeof c[0], cmp_cand);
		for (size_t i = 0; i < ANN_GT_K; i++)
			gt[q * ANN_GT_K + i] = c[i].id;
	}
	rc = ann_write_ivecs(path, gt, d.nq, ANN_GT_K);
	fprintf(stderr, "[prep %s] done in %.1f s\n", dataset, ann_now() - t0);
	free(ids);
	free(gt);
	ann_data_free(&d);
	return rc == ANN_OK ? 0 : 1;
}
