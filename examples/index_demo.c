/*
 * index_demo.c -- builds an HNSW index over generated vectors and answers
 * queries, comparing with exact search.
 *
 *   index_demo [-n VECTORS] [-d DIM] [-q QUERIES] [-k K] [-t THREADS]
 *
 * The vectors are a fixed-seed mixture of Gaussian clusters on low-rank
 * subspaces (like real embeddings); the demo prints the build time, then
 * recall@k and queries per second for several ef values, then saves the
 * index, loads it back and checks that the answers are identical.
 */
#include <knytt.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t rng(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static float gauss(uint64_t *s)
{
	/* Box-Muller */
	double u = ((double)(rng(s) >> 11) + 1.0) / 9007199254740993.0;
	double v = (double)(rng(s) >> 11) / 9007199254740992.0;
	return (float)(sqrt(-2.0 * log(u)) * cos(6.283185307179586 * v));
}

/* n points of a mixture of 64 clusters, each on an 8-dim subspace */
static float *mixture(size_t n, size_t d, uint64_t point_seed)
{
	enum { NCL = 64, RANK = 8 };
	uint64_t ms = 2026;
	float *c = malloc(NCL * d * sizeof *c);
	float *b = malloc((size_t)NCL * RANK * d * sizeof *b);
	float *x = malloc(n * d * sizeof *x);
	if (!c || !b || !x) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	for (size_t i = 0; i < NCL * d; i++)
		c[i] = 4.0f * gauss(&ms);
	for (size_t i = 0; i < (size_t)NCL * RANK * d; i++)
		b[i] = gauss(&ms) * 0.5f;
	for (size_t i = 0; i < n; i++) {
		size_t k = rng(&point_seed) % NCL;
		float *p = x + i * d;
		for (size_t j = 0; j < d; j++)
			p[j] = c[k * d + j] + 0.1f * gauss(&point_seed);
		for (size_t r = 0; r < RANK; r++) {
			float z = gauss(&point_seed);
			for (size_t j = 0; j < d; j++)
				p[j] += z * b[(k * RANK + r) * d + j];
		}
	}
	free(c);
	free(b);
	return x;
}

static void die(const char *what)
{
	fprintf(stderr, "index_demo: %s: %s\n", what, knytt_errmsg());
	exit(1);
}

int main(int argc, char **argv)
{
	size_t n = 50000, d = 64, nq = 1000, k = 10;
	unsigned threads = 0;
	int opt;
	while ((opt = getopt(argc, argv, "n:d:q:k:t:h")) != -1) {
		switch (opt) {
		case 'n': n = strtoul(optarg, NULL, 10); break;
		case 'd': d = strtoul(optarg, NULL, 10); break;
		case 'q': nq = strtoul(optarg, NULL, 10); break;
		case 'k': k = strtoul(optarg, NULL, 10); break;
		case 't': threads = (unsigned)strtoul(optarg, NULL, 10); break;
		default:
			fprintf(stderr, "usage: index_demo [-n VECTORS] [-d DIM] "
					"[-q QUERIES] [-k K] [-t THREADS]\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	if (n == 0 || d == 0 || nq == 0 || k == 0) {
		fprintf(stderr, "index_demo: -n, -d, -q and -k must be > 0\n");
		return 2;
	}
	printf("knytt %s, kernels: %s\n", knytt_version(), knytt_simd_name());
	printf("generating %zu vectors and %zu queries of %zu dimensions\n", n,
	       nq, d);
	float *x = mixture(n, d, 1), *q = mixture(nq, d, 2);
	uint64_t *labels = malloc(n * sizeof *labels);
	uint64_t *gt = malloc(nq * k * sizeof *gt);
	uint64_t *got = malloc(nq * k * sizeof *got);
	if (!labels || !gt || !got)
		return 1;
	for (size_t i = 0; i < n; i++)
		labels[i] = 1000000 + i;

	double t0 = now();
	if (knytt_exact_knn(KNYTT_METRIC_L2, d, x, n, q, nq, k, gt, NULL))
		die("exact search");
	printf("exact search (OpenBLAS): %.1f ms for all queries\n",
	       (now() - t0) * 1e3);

	knytt_index *idx;
	if (knytt_index_create(&idx) || knytt_index_open(idx, (uint32_t)d))
		die("open");
	t0 = now();
	if (knytt_index_add_batch(idx, n, labels, x, (uint32_t)d, threads))
		die("add");
	printf("HNSW build: %.2f s, %.1f MiB\n\n", now() - t0,
	       (double)knytt_index_memory(idx) / 1048576.0);

	printf("%6s %10s %12s %10s\n", "ef", "recall@k", "queries/s", "us/query");
	static const unsigned efs[] = { 16, 32, 64, 128, 256 };
	for (size_t e = 0; e < sizeof efs / sizeof *efs; e++) {
		t0 = now();
		for (size_t i = 0; i < nq; i++)
			if (knytt_index_search(idx, q + i * d, (uint32_t)d, k,
					       efs[e], got + i * k, NULL) < 0)
				die("search");
		double t = now() - t0;
		size_t hit = 0;
		for (size_t i = 0; i < nq; i++)
			for (size_t a = 0; a < k; a++)
				for (size_t b = 0; b < k; b++)
					hit += got[i * k + a] ==
					       gt[i * k + b] + 1000000;
		printf("%6u %10.4f %12.0f %10.1f\n", efs[e],
		       (double)hit / (double)(nq * k), (double)nq / t,
		       t / (double)nq * 1e6);
	}

	char path[] = "/tmp/knytt-demo-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0) {
		perror("mkstemp");
		return 1;
	}
	close(fd);
	knytt_index *loaded;
	if (knytt_index_save(idx, path) || knytt_index_create(&loaded) ||
	    knytt_index_load(loaded, path))
		die("save/load");
	uint64_t a[16], b[16];
	size_t kk = k < 16 ? k : 16, same = 1;
	for (size_t i = 0; i < nq && same; i++) {
		knytt_index_search(idx, q + i * d, (uint32_t)d, kk, 64, a, NULL);
		knytt_index_search(loaded, q + i * d, (uint32_t)d, kk, 64, b,
				   NULL);
		same = memcmp(a, b, kk * sizeof *a) == 0;
	}
	printf("\nsaved and reloaded %zu vectors: answers %s\n",
	       knytt_index_count(loaded), same ? "identical" : "DIFFER");
	remove(path);
	knytt_index_close(loaded);
	knytt_index_close(idx);
	free(x);
	free(q);
	free(labels);
	free(gt);
	free(got);
	return same ? 0 : 1;
}
