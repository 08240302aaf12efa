/*
 * exact_bench.c -- knytt_exact_knn against the bound it is built on: the
 * same cblas_sgemm calls (blocks of 256 queries x 4096 base rows, as
 * lib/vec/exact.c makes them) with nothing after them.  The ratio says
 * what the distance transform and the top-k pass cost on top of BLAS.
 *
 *   exact_bench [--n 100000] [--dim 128] [--nq 1000] [--k 10] [--reps 5]
 *               [--threads 1,2] [--csv FILE] [--batch-n 20000]
 *
 * Threads are OpenBLAS's (openblas_set_num_threads), which knytt's top-k
 * pass follows.  Each repetition times the bound and knytt back to back,
 * in alternating order; the table gives medians of wall time and of
 * process CPU time.
 *
 * Then the scaling of knytt_index_search_batch (issue 20: >= 1.9x from
 * one thread to two): an HNSW index (M=16, efC=200) over the first
 * --batch-n rows (default 20000), the same queries searched as one batch
 * with 1 and 2 threads (ef 64), repeated for 0.3 s per timing, the two
 * alternating, --reps rounds, printed as the median of the rounds' ratios
 *     batch search 2t/1t: X.XX (rounds LO-HI)
 * (--batch-n 0 skips it).  Wall time: on a loaded machine the ratio says
 * more about the other processes than about the index.
 */
#include <knytt.h>

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { QB = 256, XB = 4096 };

static double wall(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static double cpu(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmpd);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void bound(const float *x, size_t n, const float *q, size_t nq,
		  size_t d, float *prod)
{
	for (size_t q0 = 0; q0 < nq; q0 += QB) {
		size_t qb = nq - q0 < QB ? nq - q0 : QB;
		for (size_t x0 = 0; x0 < n; x0 += XB) {
			size_t xb = n - x0 < XB ? n - x0 : XB;
			cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
				    (int)qb, (int)xb, (int)d, 1.0f,
				    q + q0 * d, (int)d, x + x0 * d, (int)d,
				    0.0f, prod, (int)xb);
		}
	}
}

/* low-rank plus noise, like embeddings: the top-k pass sees realistic
 * distance distributions */
static float *gen(size_t n, size_t d, uint64_t *s)
{
	float *v = malloc(n * d * sizeof *v);
	for (size_t i = 0; i < n * d; i++) {
		*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
		v[i] = (float)((*s >> 40) & 0xffff) / 65536.0f - 0.5f;
	}
	return v;
}

/* One batch search timing: the batch repeated until BATCH_MIN_S wall
 * seconds have passed; queries per wall second, or -1 on error.  A
 * single batch of 1000 queries lasts some 50 ms, and one scheduling
 * blip of the shared machine moved a two-thread time by a third (the
 * scaling read 1.68-2.28 over six quiet runs). */
#define BATCH_MIN_S 0.3
static double batch_rate(const knytt_index *ix, const float *q, size_t nq,
			 size_t d, size_t k, unsigned nt, uint64_t *ids,
			 float *dist)
{
	double w0 = wall(), t;
	size_t done = 0;
	do {
		if (knytt_index_search_batch(ix, nq, q, (uint32_t)d, k, 64, nt,
					     ids, dist))
			return -1;
		done += nq;
		t = wall() - w0;
	} while (t < BATCH_MIN_S);
	return (double)done / t;
}

/* knytt_index_search_batch at 1 and 2 threads; prints the scaling: the
 * median over rounds of the ratio within a round (the two thread counts
 * timed back to back, their order swapped every round), so both sides
 * of a ratio saw the same load. */
static int batch_scaling(const float *x, size_t n, const float *q, size_t nq,
			 size_t d, size_t k, int reps, FILE *out)
{
	knytt_index *ix = NULL;
	uint64_t *lab = malloc(n * sizeof *lab);
	uint64_t *ids = malloc(nq * k * sizeof *ids);
	float *dist = malloc(nq * k * sizeof *dist);
	int rc = !lab || !ids || !dist;
	for (size_t i = 0; !rc && i < n; i++)
		lab[i] = i;
	if (!rc)
		rc = knytt_index_create(&ix) ||
		     knytt_index_open(ix, (uint32_t)d) ||
		     knytt_index_add_batch(ix, n, lab, x, (uint32_t)d, 2);
	double w[2][99], ratio[99];
	for (int r = 0; !rc && r < reps; r++) {
		for (int o = 0; o < 2 && !rc; o++) {
			int nt = 1 + (r + o) % 2;
			w[nt - 1][r] = batch_rate(ix, q, nq, d, k,
						  (unsigned)nt, ids, dist);
			rc = w[nt - 1][r] < 0;
		}
		if (!rc)
			ratio[r] = w[1][r] / w[0][r];
	}
	if (rc) {
		fprintf(stderr, "exact_bench: batch search: %s\n",
			knytt_errmsg());
	} else {
		double q1 = median(w[0], reps), q2 = median(w[1], reps);
		double rm = median(ratio, reps); /* sorts: range after */
		printf("\nHNSW batch search: %zu queries, %zu rows, ef 64, "
		       "%d rounds of %.1f s each per thread count\n", nq, n,
		       reps, BATCH_MIN_S);
		printf("%-8s %12s\n%-8d %12.0f\n%-8d %12.0f\n", "threads",
		       "q/s", 1, q1, 2, q2);
		printf("batch search 2t/1t: %.2f (rounds %.2f-%.2f)\n", rm,
		       ratio[0], ratio[reps - 1]);
		if (out)
			fprintf(out, "batch,%zu,%zu,%zu,%zu,%.1f,%.1f,%.4f,,\n",
				n, d, nq, k, q1, q2, rm);
	}
	knytt_index_close(ix);
	free(lab);
	free(ids);
	free(dist);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	size_t n = 100000, d = 128, nq = 1000, k = 10, bn = 20000;
	int reps = 5;
	const char *threads = "1,2", *csv = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : "";
		if (!strcmp(a, "--n")) n = strtoul(v, NULL, 10), i++;
		else if (!strcmp(a, "--dim")) d = strtoul(v, NULL, 10), i++;
		else if (!strcmp(a, "--nq")) nq = strtoul(v, NULL, 10), i++;
		else if (!strcmp(a, "--k")) k = strtoul(v, NULL, 10), i++;
		else if (!strcmp(a, "--reps")) reps = atoi(v), i++;
		else if (!strcmp(a, "--threads")) threads = v, i++;
		else if (!strcmp(a, "--csv")) csv = v, i++;
		else if (!strcmp(a, "--batch-n")) bn = strtoul(v, NULL, 10), i++;
		else {
			fprintf(stderr, "exact_bench: unknown option %s\n", a);
			return 2;
		}
	}
	if (!n || !d || !nq || !k || reps < 1 || reps > 99) {
		fprintf(stderr, "exact_bench: bad sizes\n");
		return 2;
	}
	uint64_t seed = 7;
	float *x = gen(n, d, &seed), *q = gen(nq, d, &seed);
	float *prod = malloc((size_t)QB * XB * sizeof *prod);
	uint64_t *ids = malloc(nq * k * sizeof *ids);
	float *dist = malloc(nq * k * sizeof *dist);
	FILE *out = csv ? fopen(csv, "w") : NULL;
	if (out)
		fprintf(out, "threads,n,dim,nq,k,sgemm_qps,knytt_qps,ratio,"
			     "sgemm_cpu_s,knytt_cpu_s\n");
	printf("exact k-NN: %zu queries x %zu rows x %zu dims, k=%zu, "
	       "median of %d (simd %s)\n", nq, n, d, k, reps,
	       knytt_simd_name());
	printf("%-8s %12s %12s %8s %12s %12s\n", "threads", "sgemm q/s",
	       "knytt q/s", "ratio", "sgemm cpu s", "knytt cpu s");
	char *list = strdup(threads);
	for (char *t = strtok(list, ","); t; t = strtok(NULL, ",")) {
		int nt = atoi(t);
		openblas_set_num_threads(nt);
		double bw[99], kw[99], bc[99], kc[99];
		bound(x, n, q, nq, d, prod); /* warm */
		for (int r = 0; r < reps; r++) {
			for (int o = 0; o < 2; o++) {
				int first = (r + o) % 2;
				double w0 = wall(), c0 = cpu();
				if (first)
					bound(x, n, q, nq, d, prod);
				else if (knytt_exact_knn(KNYTT_METRIC_L2, d, x,
							 n, q, nq, k, ids,
							 dist)) {
					fprintf(stderr, "%s\n",
						knytt_errmsg());
					return 1;
				}
				double w = wall() - w0, c = cpu() - c0;
				if (first)
					bw[r] = w, bc[r] = c;
				else
					kw[r] = w, kc[r] = c;
			}
		}
		double b = median(bw, reps), kk = median(kw, reps);
		double sq = nq / b, kq = nq / kk;
		printf("%-8d %12.0f %12.0f %8.2f %12.3f %12.3f\n", nt, sq, kq,
		       kq / sq, median(bc, reps), median(kc, reps));
		printf("exact vs sgemm at %d thread%s: %.2f\n", nt,
		       nt == 1 ? "" : "s", kq / sq);
		if (out)
			fprintf(out, "%d,%zu,%zu,%zu,%zu,%.1f,%.1f,%.4f,%.4f,"
				     "%.4f\n", nt, n, d, nq, k, sq, kq,
				kq / sq, median(bc, reps), median(kc, reps));
	}
	free(list);
	int brc = 0;
	if (bn) {
		/* the batch rows: OpenBLAS is not used, one thread for it */
		openblas_set_num_threads(1);
		brc = batch_scaling(x, bn < n ? bn : n, q, nq, d, k, reps,
				    out);
	}
	if (out)
		fclose(out);
	free(x);
	free(q);
	free(prod);
	free(ids);
	free(dist);
	return brc;
}
