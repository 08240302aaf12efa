/*
 * filter_bench.c -- attribute filters (knytt_where) in engine queries:
 * recall@10 and latency at 1%, 10% and 50% selectivity against the same
 * queries unfiltered, side by side.
 *
 * The shop: N items (default 100k; --quick 20k) with caller vectors of
 * 64 dimensions (a mixture of 200 Gaussian clusters, unit norm: the
 * engine's external-vector mode, cosine) and attributes drawn
 * independently of the vectors: brand b00..b99 (1% each), colour
 * c0..c9 (10% each), half yes / no (50%).  Items go in through
 * knytt_engine_item_upsert on an in-memory SQLite store; the search log
 * is written behind (knytt_engine_set_feedback_async), as a server does.
 *
 * Queries: Q vectors drawn like the items (default 1000), knytt_engine_search
 * with the vector only, k = 10, under four filters: none, half = yes,
 * colour = c3, brand = b07.  Each query runs the four filters back to
 * back in a rotating order, so that the load of the shared machine falls
 * on all of them alike; the ratios p99(filtered) / p99(unfiltered) are
 * the figures to read, the absolute times move with the load.  The
 * truth is an exact scan of the passing items (cosine).  The compiled
 * filter (knytt_where_compile) is made once and reused, as a server
 * would for a saved facet.
 *
 * Usage: filter_bench [--quick] [--items N] [--queries Q]
 */
#include <knytt.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DIM 64
#define K 10
#define NCL 200
#define NMODE 4

static const char *const mode_name[NMODE] = { "unfiltered", "50% half=yes",
					      "10% colour=c3",
					      "1% brand=b07" };
static const char *const mode_expr[NMODE] = { NULL, "half = yes",
					      "colour = c3", "brand = b07" };

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static double gauss(uint64_t *s)
{
	double u = ((double)(rnd(s) >> 11) + 0.5) / 9007199254740992.0;
	double v = ((double)(rnd(s) >> 11) + 0.5) / 9007199254740992.0;
	return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static double cpu_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static void ck(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "filter_bench: %s: %s (%s)\n", what,
			knytt_errname(rc), knytt_errmsg());
		exit(1);
	}
}

/* A vector near cluster centre c (centres: NCL x DIM), unit norm. */
static void draw(const float *centres, uint64_t *s, float *v)
{
	const float *c = centres + (rnd(s) % NCL) * DIM;
	double n = 0;
	for (int j = 0; j < DIM; j++) {
		v[j] = c[j] + 0.35f * (float)gauss(s);
		n += (double)v[j] * v[j];
	}
	for (int j = 0; j < DIM; j++)
		v[j] = (float)(v[j] / sqrt(n));
}

/* The item's attributes: brand, colour, half from its number. */
static void attrs_of(size_t i, uint64_t seed, int *brand, int *colour,
		     int *half)
{
	uint64_t s = (i + 1) * 0x9E3779B97F4A7C15ULL ^ seed;
	rnd(&s);
	*brand = (int)(rnd(&s) % 100);
	*colour = (int)(rnd(&s) % 10);
	*half = (int)(rnd(&s) % 2);
}

static int passes(int mode, int brand, int colour, int half)
{
	return mode == 0 || (mode == 1 && half) || (mode == 2 && colour == 3) ||
	       (mode == 3 && brand == 7);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The exact top K of every mode for query q: ids into truth[mode][K]. */
static void exact(const float *base, const unsigned char *pass, size_t n,
		  const float *q, uint64_t truth[NMODE][K])
{
	float best[NMODE][K];
	for (int m = 0; m < NMODE; m++)
		for (int k = 0; k < K; k++) {
			best[m][k] = -INFINITY;
			truth[m][k] = UINT64_MAX;
		}
	for (size_t i = 0; i < n; i++) {
		const float *x = base + i * DIM;
		float d = 0;
		for (int j = 0; j < DIM; j++)
			d += q[j] * x[j];
		for (int m = 0; m < NMODE; m++) {
			if (!(pass[i] >> m & 1) || d <= best[m][K - 1])
				continue;
			int k = K - 1;
			while (k > 0 && best[m][k - 1] < d) {
				best[m][k] = best[m][k - 1];
				truth[m][k] = truth[m][k - 1];
				k--;
			}
			best[m][k] = d;
			truth[m][k] = i;
		}
	}
}

int main(int argc, char **argv)
{
	size_t n = 100000, nq = 1000;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			n = 20000;
		else if (!strcmp(argv[i], "--items") && i + 1 < argc)
			n = (size_t)atol(argv[++i]);
		else if (!strcmp(argv[i], "--queries") && i + 1 < argc)
			nq = (size_t)atol(argv[++i]);
		else {
			fprintf(stderr, "usage: filter_bench [--quick] "
					"[--items N] [--queries Q]\n");
			return 2;
		}
	}
	uint64_t s = 42;
	float *centres = malloc(NCL * DIM * sizeof *centres);
	float *base = malloc(n * DIM * sizeof *base);
	unsigned char *pass = malloc(n);
	if (!centres || !base || !pass)
		return 1;
	for (size_t i = 0; i < (size_t)NCL * DIM; i++)
		centres[i] = (float)gauss(&s);
	knytt_engine *e;
	ck(knytt_engine_create(&e), "create");
	ck(knytt_engine_set_model(e, KNYTT_MODEL_EXTERNAL), "model");
	ck(knytt_engine_set_dim(e, DIM), "dim");
	/* the search log written behind, as a server runs (engine_bench.c
	 * does the same): its store write would otherwise add the same
	 * ~200 us to every query and hide what the filters cost */
	ck(knytt_engine_set_feedback_async(e, 1), "async");
	ck(knytt_engine_open(e, "sqlite::memory:"), "open");
	double t0 = now_us();
	for (size_t i = 0; i < n; i++) {
		int b, c, h;
		attrs_of(i, 7, &b, &c, &h);
		pass[i] = 1;
		for (int m = 1; m < NMODE; m++)
			pass[i] |= (unsigned char)(passes(m, b, c, h) << m);
		char ext[32], attrs[128];
		snprintf(ext, sizeof ext, "i%zu", i);
		snprintf(attrs, sizeof attrs,
			 "{\"brand\":\"b%02d\",\"colour\":\"c%d\","
			 "\"half\":\"%s\"}",
			 b, c, h ? "yes" : "no");
		draw(centres, &s, base + i * DIM);
		knytt_item it;
		memset(&it, 0, sizeof it);
		it.struct_size = sizeof it;
		it.ext_id = ext;
		it.title = "item";
		it.price = 10;
		it.in_stock = 1;
		it.attributes = attrs;
		ck(knytt_engine_item_upsert(e, &it, base + i * DIM, DIM),
		   "upsert");
	}
	printf("filters: %zu items, %d dims, %zu queries; ingest %.1f s\n", n,
	       DIM, nq, (now_us() - t0) / 1e6);
	knytt_where *w[NMODE] = { NULL };
	knytt_filter f[NMODE];
	for (int m = 0; m < NMODE; m++) {
		knytt_filter_init(&f[m]);
		if (mode_expr[m]) {
			ck(knytt_where_compile(mode_expr[m], &w[m]), "compile");
			f[m].where = w[m];
		}
	}
	double *lat[NMODE], *cpu[NMODE];
	double hits[NMODE] = { 0 }, passing[NMODE] = { 0 };
	for (int m = 0; m < NMODE; m++)
		lat[m] = malloc(nq * sizeof *lat[m]),
		cpu[m] = malloc(nq * sizeof *cpu[m]);
	for (size_t i = 0; i < n; i++)
		for (int m = 0; m < NMODE; m++)
			passing[m] += pass[i] >> m & 1;
	float q[DIM];
	knytt_result r[K] = {{.struct_size = sizeof(knytt_result)}};
	/* warm-up: the first queries fault pages in */
	for (int i = 0; i < 50; i++) {
		draw(centres, &s, q);
		for (int m = 0; m < NMODE; m++)
			ck(knytt_engine_search(e, NULL, q, DIM, K,
					       m ? &f[m] : NULL, NULL, r, NULL),
			   "search");
	}
	for (size_t i = 0; i < nq; i++) {
		draw(centres, &s, q);
		uint64_t truth[NMODE][K];
		exact(base, pass, n, q, truth);
		for (int j = 0; j < NMODE; j++) {
			int m = (int)((i + (size_t)j) % NMODE);
			double a = now_us(), ac = cpu_us();
			int got = knytt_engine_search(e, NULL, q, DIM, K,
						      m ? &f[m] : NULL, NULL,
						      r, NULL);
			lat[m][i] = now_us() - a;
			cpu[m][i] = cpu_us() - ac;
			ck(got, "search");
			for (int x = 0; x < got; x++) {
				size_t id = (size_t)atol(r[x].ext_id + 1);
				if (!(pass[id] >> m & 1)) {
					fprintf(stderr, "filter_bench: %s "
						"returned %s\n", mode_name[m],
						r[x].ext_id);
					return 1;
				}
				for (int k = 0; k < K; k++)
					hits[m] += truth[m][k] == id;
			}
		}
	}
	/* wall clock, and the thread's CPU time, which leaves out the time
	 * the loaded machine kept the thread descheduled */
	double p99_0 = 0, c99_0 = 0;
	printf("%-15s %8s %9s %8s %8s %8s %8s %10s %10s\n", "filter",
	       "passing", "recall@10", "p50 us", "p99 us", "cpu p50",
	       "cpu p99", "p99 ratio", "cpu ratio");
	for (int m = 0; m < NMODE; m++) {
		qsort(lat[m], nq, sizeof *lat[m], cmp_d);
		qsort(cpu[m], nq, sizeof *cpu[m], cmp_d);
		size_t i50 = nq / 2, i99 = (nq * 99) / 100;
		double p99 = lat[m][i99], c99 = cpu[m][i99];
		if (m == 0) {
			p99_0 = p99;
			c99_0 = c99;
		}
		printf("%-15s %7.1f%% %9.4f %8.0f %8.0f %8.0f %8.0f %9.2fx "
		       "%9.2fx\n",
		       mode_name[m], 100.0 * passing[m] / (double)n,
		       hits[m] / (double)(nq * K), lat[m][i50], p99,
		       cpu[m][i50], c99, p99 / p99_0, c99 / c99_0);
		free(lat[m]);
		free(cpu[m]);
		knytt_where_free(w[m]);
	}
	knytt_engine_close(e);
	free(centres);
	free(base);
	free(pass);
	return 0;
}
