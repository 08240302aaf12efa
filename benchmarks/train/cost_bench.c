/*
 * cost_bench.c -- is the tuning's cost model (lib/model/fitcost.c)
 * honest?  Fits the candidate kinds the tuning tries on the data it
 * fits them on -- the validation-training part of a time split, the
 * latest 10% of the ratings held out as tune.c does -- and prints, per
 * fit, the estimated work units, the measured seconds (the fastest of
 * --reps fits, wall clock and the process's CPU time: on a shared
 * machine the CPU time is the steadier) and CPU nanoseconds per unit.
 * The spread of ns/unit over the kinds is how far the budget in units
 * departs from one in seconds; the weights in fitcost.c (PROP_W, ROW_W,
 * TRIPLE_W) come from the LightGCN rows against the ALS ones.
 *
 * usage: cost_bench [--data DIR] [--threads N] [--reps N] [--ml1m]
 * (benchmarks/train/run --cost).  --ml1m adds ALS on the first half of
 * ML-1M (time_bench's) to check the units scale with the data.
 */
#include "../../lib/model/tune.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ratings.h"

static double clock_s(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* The ratings before the tuner's cut (position floor(0.9 n) by time),
 * history decayed with a half-life of @p days when > 0. */
static knytt_matrix *train_part(const rating *v, size_t n, uint32_t nu,
				uint32_t ni, double days)
{
	int64_t *t = malloc(n * sizeof *t);
	for (size_t j = 0; j < n; j++)
		t[j] = v[j].t;
	qsort(t, n, sizeof *t, cmp_i64);
	int64_t cut = t[(size_t)(0.9 * (double)n)];
	free(t);
	knytt_matrix *m;
	if (knytt_matrix_create(&m))
		return NULL;
	if (days > 0)
		knytt_matrix_set_decay(m, days * 86400, cut);
	for (size_t j = 0; j < n; j++)
		if (v[j].t < cut)
			knytt_matrix_add(m, v[j].u, v[j].i, 0, 1, v[j].t);
	if (knytt_matrix_build(m, nu, ni)) {
		knytt_matrix_close(m);
		return NULL;
	}
	return m;
}

static int g_reps = 3;
static unsigned g_threads = 1;

static void measure(const char *data, const char *what,
		    knytt__tune_cfg c, const knytt_matrix *m)
{
	double best = 1e30, cpu = 1e30;
	for (int r = 0; r < g_reps; r++) {
		knytt_als *a;
		knytt_lightgcn *g;
		double t = clock_s(CLOCK_MONOTONIC);
		double p = clock_s(CLOCK_PROCESS_CPUTIME_ID);
		if (knytt__tune_fit(&c, m, g_threads, NULL, NULL, &a, &g)) {
			fprintf(stderr, "%s: %s\n", what, knytt_errmsg());
			exit(1);
		}
		double s = clock_s(CLOCK_MONOTONIC) - t;
		double q = clock_s(CLOCK_PROCESS_CPUTIME_ID) - p;
		best = s < best ? s : best;
		cpu = q < cpu ? q : cpu;
		knytt_als_close(a);
		knytt_lightgcn_close(g);
	}
	double u = knytt__fit_units(&c, (double)knytt_matrix_nnz(m),
				    knytt_matrix_users(m),
				    knytt_matrix_items(m));
	printf("%-10s %-30s %11.4g %8.3f %8.3f %8.4f\n", data, what, u, best,
	       cpu, cpu / u * 1e9);
	fflush(stdout);
}

static void kinds(const char *data, const rating *v, size_t n, uint32_t nu,
		  uint32_t ni, int lgc)
{
	knytt_matrix *m = train_part(v, n, nu, ni, 0);
	knytt_matrix *md = train_part(v, n, nu, ni, 30);
	char what[64];
	static const unsigned dims[] = {32, 64, 128};
	for (int j = 0; j < 3; j++) {
		knytt__tune_cfg c = {.kind = KNYTT_MODEL_ALS, .dim = dims[j],
				     .reg = 1, .alpha = 1, .iters = 15};
		snprintf(what, sizeof what, "als dim %u, 15 it", dims[j]);
		measure(data, what, c, m);
		if (dims[j] == 64) {
			c.reg = 100;
			measure(data, "als dim 64, reg 100", c, m);
			c.reg = 1;
			c.alpha = 16;
			measure(data, "als dim 64, alpha 16", c, m);
			c.alpha = 1;
			measure(data, "als dim 64, decay 30 d", c, md);
		}
	}
	/* LightGCN: the tuning's candidate (dim 64, 2 layers, batches of
	 * 4096), then one thing changed at a time, so that each term of
	 * the model (per fit, epoch, batch, layer, dimension) shows */
	static const struct {
		unsigned dim, layers, batch, epochs;
	} g[] = {{64, 2, 4096, 4},  {64, 2, 4096, 1}, {64, 1, 4096, 2},
		 {64, 3, 4096, 2},  {64, 2, 1024, 1}, {64, 2, 16384, 4},
		 {32, 2, 4096, 2},  {128, 2, 4096, 2}};
	for (size_t j = 0; j < sizeof g / sizeof g[0] && lgc; j++) {
		knytt__tune_cfg c = {.kind = KNYTT_MODEL_LIGHTGCN,
				     .dim = g[j].dim, .reg = 1e-4f,
				     .lr = 0.01f, .batch = g[j].batch,
				     .layers = g[j].layers,
				     .iters = g[j].epochs};
		snprintf(what, sizeof what, "lightgcn d%u L%u b%u, %u ep",
			 c.dim, c.layers, c.batch, c.iters);
		measure(data, what, c, m);
	}
	knytt_matrix_close(m);
	knytt_matrix_close(md);
}

int main(int argc, char **argv)
{
	const char *dir = getenv("KNYTT_DATA_DIR");
	int ml1m = 0;
	for (int a = 1; a < argc; a++)
		if (!strcmp(argv[a], "--data") && a + 1 < argc)
			dir = argv[++a];
		else if (!strcmp(argv[a], "--threads") && a + 1 < argc)
			g_threads = (unsigned)atoi(argv[++a]);
		else if (!strcmp(argv[a], "--reps") && a + 1 < argc)
			g_reps = atoi(argv[++a]);
		else if (!strcmp(argv[a], "--ml1m"))
			ml1m = 1;
		else {
			fprintf(stderr,
				"usage: %s [--data DIR] [--threads N] "
				"[--reps N] [--ml1m]\n",
				argv[0]);
			return 2;
		}
	if (!dir)
		dir = "../shared/data";
	if (g_reps < 1)
		g_reps = 1;
	char path[512];
	ratings d;
	printf("# fit cost model: estimated units against seconds (fastest "
	       "of %d; wall and CPU), %u thread(s)\n"
	       "%-10s %-30s %11s %8s %8s %8s\n",
	       g_reps, g_threads, "data", "fit", "units", "wall s", "cpu s",
	       "cpu ns/u");
	snprintf(path, sizeof path, "%s/ml-100k/u.data", dir);
	FILE *f = fopen(path, "r");
	int rc = f ? read_ratings(f, &d) : -1;
	if (f)
		fclose(f);
	if (rc) {
		fprintf(stderr, "%s: not found\n", path);
		return 1;
	}
	kinds("ml100k", d.v, d.n, d.nu, d.ni, 1);
	free(d.v);
	/* the first half of ML-1M with its real times (time_bench) */
	snprintf(path, sizeof path,
		 "gzip -dc %s/ncf/reconstruction_inputs/"
		 "dsmlai_ratings.dat.gz 2>/dev/null",
		 dir);
	f = ml1m ? popen(path, "r") : NULL;
	if (f && read_ratings(f, &d) == 0) {
		kinds("ml1m-half", d.v, d.n, d.nu, d.ni, 0);
		free(d.v);
	}
	if (f)
		pclose(f);
	return 0;
}
