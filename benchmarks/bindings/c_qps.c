/*
 * bindings_qps -- search QPS through the C API, the baseline that
 * benchmarks/bindings/run compares the Python and Node bindings with.
 *
 *   bindings_qps INDEX QUERIES DIM K EF MODE SECONDS THREADS BATCH
 *
 * Loads INDEX (knytt_index_save format) and the raw float32 QUERIES, then
 * for about SECONDS repeats a chunk of work: MODE "single" = one pass of
 * knytt_index_search over the queries, one at a time; MODE "batch" = one
 * knytt_index_search_batch over BATCH rows (the queries repeated) on
 * THREADS threads.  Each chunk is timed by the wall clock and by the
 * process's CPU clock, and the program prints
 *     qps BEST cpu_qps BEST_CPU mean_qps MEAN
 * where BEST is the fastest chunk's queries per wall second, BEST_CPU
 * the fastest chunk's queries per CPU second and MEAN the whole run's
 * rate.  On a machine shared with other jobs a chunk of a few
 * milliseconds either runs undisturbed or not at all, so the fastest
 * chunk measures the code rather than the neighbours.  py_qps.py and
 * node_qps.js do exactly the same through their bindings.
 */
#include <knytt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double clock_s(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static float *read_queries(const char *path, uint32_t dim, size_t *n)
{
	FILE *f = fopen(path, "rb");
	float *q;
	long size;

	if (!f || fseek(f, 0, SEEK_END) || (size = ftell(f)) <= 0 ||
	    fseek(f, 0, SEEK_SET))
		return NULL;
	*n = (size_t)size / (dim * sizeof(float));
	if (!(q = malloc(*n * dim * sizeof(float))) ||
	    fread(q, dim * sizeof(float), *n, f) != *n) {
		free(q);
		q = NULL;
	}
	fclose(f);
	return q;
}

struct run {
	const knytt_index *ix;
	const float *q;   /* single: the queries; batch: the batch rows */
	size_t nq;        /* rows in q */
	uint32_t dim;
	size_t k;
	unsigned ef, threads;
	int batch;
	uint64_t *labels; /* nq * k */
	float *dists;
};

static void chunk(const struct run *r)
{
	if (r->batch) {
		if (knytt_index_search_batch(r->ix, r->nq, r->q, r->dim, r->k,
					     r->ef, r->threads, r->labels,
					     r->dists))
			exit(1);
		return;
	}
	for (size_t i = 0; i < r->nq; i++)
		if (knytt_index_search(r->ix, r->q + i * r->dim, r->dim, r->k,
				       r->ef, r->labels, r->dists) < 0)
			exit(1);
}

static void measure(const struct run *r, double secs)
{
	double t0 = clock_s(CLOCK_MONOTONIC), best = 0, best_cpu = 0, t;
	size_t done = 0;

	do {
		double w = clock_s(CLOCK_MONOTONIC);
		double c = clock_s(CLOCK_PROCESS_CPUTIME_ID);

		chunk(r);
		w = clock_s(CLOCK_MONOTONIC) - w;
		c = clock_s(CLOCK_PROCESS_CPUTIME_ID) - c;
		if (w > 0 && r->nq / w > best)
			best = r->nq / w;
		if (c > 0 && r->nq / c > best_cpu)
			best_cpu = r->nq / c;
		done += r->nq;
	} while ((t = clock_s(CLOCK_MONOTONIC) - t0) < secs);
	printf("qps %.1f cpu_qps %.1f mean_qps %.1f\n", best, best_cpu,
	       (double)done / t);
}

int main(int argc, char **argv)
{
	knytt_index *ix;
	struct run r;
	size_t nq, rows;
	float *q;
	int rc;

	if (argc != 10) {
		fprintf(stderr, "usage: bindings_qps INDEX QUERIES DIM K EF "
				"single|batch SECONDS THREADS BATCH\n");
		return 2;
	}
	memset(&r, 0, sizeof(r));
	r.dim = (uint32_t)atoi(argv[3]);
	r.k = (size_t)atoi(argv[4]);
	r.ef = (unsigned)atoi(argv[5]);
	r.batch = strcmp(argv[6], "single") != 0;
	r.threads = (unsigned)atoi(argv[8]);
	if ((rc = knytt_index_create(&ix)) || (rc = knytt_index_load(ix, argv[1]))) {
		fprintf(stderr, "%s: %s\n", argv[1], knytt_errmsg());
		return 1;
	}
	if (!r.dim || !r.k || !(q = read_queries(argv[2], r.dim, &nq))) {
		fprintf(stderr, "%s: cannot read queries\n", argv[2]);
		return 1;
	}
	rows = r.batch ? (size_t)atol(argv[9]) : nq;
	r.ix = ix;
	r.nq = rows;
	r.q = q;
	if (r.batch) {
		float *b = malloc(rows * r.dim * sizeof(float));

		if (!b)
			return 1;
		for (size_t i = 0; i < rows; i++)
			memcpy(b + i * r.dim, q + (i % nq) * r.dim,
			       r.dim * sizeof(float));
		r.q = b;
	}
	r.labels = malloc(rows * r.k * sizeof(*r.labels));
	r.dists = malloc(rows * r.k * sizeof(*r.dists));
	if (!r.labels || !r.dists)
		return 1;
	measure(&r, atof(argv[7]));
	if (r.q != q)
		free((void *)r.q);
	free(q);
	free(r.labels);
	free(r.dists);
	knytt_index_close(ix);
	return 0;
}
