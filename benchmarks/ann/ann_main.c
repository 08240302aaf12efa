/*
 * ann_main.c -- the driver every library shares: load one data set, build
 * the index (with 2 threads, dropped, then with 1 thread, kept), sweep ef
 * measuring recall@10 and single-thread QPS, and print one CSV row per ef
 * on stdout.  Progress goes to stderr.
 *
 * QPS is one query at a time on the calling thread.  Each ef gets one
 * untimed pass over the queries (its results give recall@10 and warm the
 * caches), then --reps timed repetitions (each sweeping every ef); a
 * repetition of one ef repeats the query set until it lasts --min-time
 * seconds, so 100 queries of 50 us are not timed as one 5 ms blip.  The
 * median repetition is reported.
 *
 * The machine is shared, so two extra columns are less sensitive to other
 * processes taking the core: qps_cpu (queries per second of this thread's
 * CPU time, CLOCK_THREAD_CPUTIME_ID) and build_cpu_s (process CPU seconds
 * of the 1-thread build).  Wall-clock qps and build_s stay the headline.
 *
 * --seed S seeds both builds' level draws (annbench.h, build); without it
 * each library uses its own default, so the graphs are those measured
 * before the option existed.
 *
 * Usage: ann_<lib> --dataset NAME [--data-dir DIR] [--cache-dir DIR]
 *        [--efs 10,16,...] [--m 16] [--efc 200] [--reps 3]
 *        [--min-time 0.2] [--no-build-2t] [--variant V] [--seed S]
 *        | --header
 */
#include "annbench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K 10
#define MAX_EFS 64

static const char header[] =
	"library,dataset,n,dim,M,ef_construction,ef,recall_at_10,qps,"
	"build_s,build_s_2t,index_bytes,vector_bytes,vector_ratio_f32,"
	"peak_rss_bytes,data_rss_bytes,nq,reps,qps_cpu,build_cpu_s";

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s --dataset NAME [--data-dir DIR] [--cache-dir DIR]\n"
		"       [--efs LIST] [--m M] [--efc EF] [--reps N] "
		"[--min-time S]\n"
		"       [--no-build-2t] [--variant V] [--seed S]\n"
		"   or: %s --header\n", argv0, argv0);
	exit(2);
}

static void *timed_build(const ann_adapter *ad, const ann_data *d,
			 unsigned m, unsigned efc, unsigned nthreads,
			 uint64_t seed, double *secs, double *cpu)
{
	char err[512] = "";
	fprintf(stderr, "[%s %s] building, M=%u ef_construction=%u, "
		"%u thread(s)\n", ad->library, d->name, m, efc, nthreads);
	double c0 = ann_process_cpu(), t0 = ann_now();
	void *ix = ad->build(d, m, efc, nthreads, seed, err, sizeof err);
	*secs = ann_now() - t0;
	*cpu = ann_process_cpu() - c0;
	if (!ix)
		fprintf(stderr, "[%s %s] build failed: %s\n", ad->library,
			d->name, err);
	else
		fprintf(stderr, "[%s %s] built in %.2f s\n", ad->library,
			d->name, *secs);
	return ix;
}

/* One pass over the queries: wall seconds returned, thread CPU seconds
 * added to *cpu. */
static double one_pass(const ann_adapter *ad, void *ix, const ann_data *d,
		       unsigned ef, int64_t *res, double *cpu)
{
	double c0 = ann_thread_cpu(), t0 = ann_now();
	for (size_t q = 0; q < d->nq; q++)
		ad->search(ix, d->queries + q * d->dim, K, ef, res + q * K);
	double t = ann_now() - t0;
	*cpu += ann_thread_cpu() - c0;
	return t;
}

int main(int argc, char **argv)
{
	const char *dataset = NULL, *variant = "";
	const char *data_dir = getenv("KNYTT_DATA_DIR");
	const char *cache_dir = "build/bench-data";
	const char *efs_arg = "10,16,24,32,48,64,96,128,192,256";
	unsigned m = 16, efc = 200, reps = 3, build_2t = 1;
	uint64_t seed = ANN_SEED_DEFAULT;
	double min_time = 0.2;
	if (!data_dir || !*data_dir)
		data_dir = "../shared/data";

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--header") == 0) {
			puts(header);
			return 0;
		} else if (strcmp(a, "--no-build-2t") == 0) {
			build_2t = 0;
			continue;
		}
		if (!v)
			usage(argv[0]);
		if (strcmp(a, "--dataset") == 0)
			dataset = v;
		else if (strcmp(a, "--data-dir") == 0)
			data_dir = v;
		else if (strcmp(a, "--cache-dir") == 0)
			cache_dir = v;
		else if (strcmp(a, "--efs") == 0)
			efs_arg = v;
		else if (strcmp(a, "--m") == 0)
			m = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--efc") == 0)
			efc = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--reps") == 0)
			reps = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--min-time") == 0)
			min_time = strtod(v, NULL);
		else if (strcmp(a, "--variant") == 0)
			variant = v;
		else if (strcmp(a, "--seed") == 0)
			seed = strtoull(v, NULL, 10);
		else
			usage(argv[0]);
		i++;
	}
	if (!dataset || m < 2 || efc < 1 || reps < 1 || reps > 99)
		usage(argv[0]);

	unsigned efs[MAX_EFS];
	size_t nef = ann_parse_efs(efs_arg, efs, MAX_EFS);
	if (nef == 0)
		return 2;

	const ann_adapter *ad = ann_adapter_get(variant);
	if (!ad) {
		fprintf(stderr, "%s: unknown --variant '%s'\n", argv[0],
			variant);
		return 2;
	}

	ann_data d;
	int rc = ann_data_load(dataset, data_dir, cache_dir, 1, &d);
	if (rc == ANN_SKIP) {
		fprintf(stderr, "[%s %s] SKIP: data files absent\n",
			ad->library, dataset);
		return 3;
	}
	if (rc != ANN_OK)
		return 1;
	size_t data_rss = ann_cur_rss();

	double build_1t = 0, build_2t_s = -1, cpu_1t = 0, cpu_2t = 0;
	if (build_2t) {
		void *ix2 = timed_build(ad, &d, m, efc, 2, seed, &build_2t_s,
					&cpu_2t);
		if (!ix2)
			return 1;
		ad->destroy(ix2);
	}
	void *ix = timed_build(ad, &d, m, efc, 1, seed, &build_1t, &cpu_1t);
	if (!ix)
		return 1;
	size_t ibytes = ad->index_bytes(ix);
	size_t vbytes = ad->vector_bytes ? ad->vector_bytes(ix) : 0;

	int64_t *res = malloc(sizeof(int64_t) * d.nq * K);
	if (!res) {
		fprintf(stderr, "out of memory\n");
		return 1;
	}
	struct {
		double recall, qps, qps_cpu;
	} out[MAX_EFS];
	static double q[MAX_EFS][100], qc[MAX_EFS][100];
	for (size_t e = 0; e < nef; e++) {
		double cpu = 0;
		one_pass(ad, ix, &d, efs[e], res, &cpu);
		out[e].recall = ann_recall(&d, res, K);
	}
	/* Repetitions outer, ef inner: a burst of load from another process
	 * then spoils one repetition of several ef values, which the median
	 * discards, rather than every repetition of one ef. */
	for (unsigned r = 0; r < reps; r++) {
		for (size_t e = 0; e < nef; e++) {
			double spent = 0, cpu = 0;
			size_t passes = 0;
			do {
				spent += one_pass(ad, ix, &d, efs[e], res,
						  &cpu);
				passes++;
			} while (spent < min_time);
			q[e][r] = (double)(passes * d.nq) / spent;
			qc[e][r] = (double)(passes * d.nq) / cpu;
		}
	}
	for (size_t e = 0; e < nef; e++) {
		qsort(q[e], reps, sizeof q[e][0], ann_cmp_double);
		qsort(qc[e], reps, sizeof qc[e][0], ann_cmp_double);
		out[e].qps = q[e][reps / 2];
		out[e].qps_cpu = qc[e][reps / 2];
		fprintf(stderr, "[%s %s] ef=%u recall@10=%.4f qps=%.0f "
			"qps_cpu=%.0f\n", ad->library, d.name, efs[e],
			out[e].recall, out[e].qps, out[e].qps_cpu);
	}
	size_t peak = ann_peak_rss();

	char ratio[32] = "", b2[32] = "";
	if (vbytes)
		snprintf(ratio, sizeof ratio, "%.4f",
			 (double)vbytes /
				 (double)(d.n * d.dim * sizeof(float)));
	if (build_2t_s >= 0)
		snprintf(b2, sizeof b2, "%.3f", build_2t_s);
	for (size_t e = 0; e < nef; e++)
		printf("%s,%s,%zu,%zu,%u,%u,%u,%.4f,%.1f,%.3f,%s,%zu,%zu,%s,"
		       "%zu,%zu,%zu,%u,%.1f,%.3f\n",
		       ad->library, d.name, d.n, d.dim, m, efc, efs[e],
		       out[e].recall, out[e].qps, build_1t, b2, ibytes, vbytes,
		       ratio, peak, data_rss, d.nq, reps, out[e].qps_cpu,
		       cpu_1t);
	fflush(stdout);
	ad->destroy(ix);
	free(res);
	ann_data_free(&d);
	return 0;
}
