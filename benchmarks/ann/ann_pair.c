/*
 * ann_pair.c -- knytt against one anchor library in one process, their
 * queries interleaved, for a speed ratio that holds on a shared machine.
 *
 * Why: benchmarks/ann/run measures each library in a process of its own,
 * one after the other; on a machine shared with other jobs the load moves
 * by tens of percent between those processes (and even the CPU-time
 * figures move with it: the caches and the memory bus are shared), so a
 * ratio of two such figures says as much about the neighbours as about
 * the libraries.  Here both indexes live in one process and the timing
 * alternates between them in short slices (one pass over the queries
 * each, the order swapped every round), so both see the same load, and
 * the ratio of each round is kept: the median of those ratios is the
 * figure, their spread says how far to trust it.
 *
 * Measured: for every ef of the list, recall@10 of each library (one
 * untimed pass), then --rounds rounds, each timing one slice of at least
 * --min-time seconds per library and ef (thread CPU time and wall).
 * Reported per ef: both QPS medians and the median of the per-round
 * ratios (first / second), and at recall@10 >= --target the ratio of
 * each library's fastest ef reaching it (the ann/run summary's
 * definition, here from the interleaved rounds), and the ratio of the
 * two QPS interpolated to recall exactly --target on each library's
 * curve (qps_at), which does not jump with where the curves cross it.
 *
 * Both indexes are built with --build-threads threads (default 2: the
 * build is not what is measured here; ann/run measures it).
 *
 * Usage: ann_pair_ANCHOR --dataset NAME [--variant V]
 *        [--efs 10,16,24,32] [--rounds 9] [--min-time 0.1]
 *        [--target 0.95] [--m 16] [--efc 200] [--build-threads 2]
 *        [--data-dir DIR] [--cache-dir DIR] [--csv FILE]
 *
 * --csv appends one row per ef (the header first when FILE is new):
 * dataset,library,anchor,n,dim,M,ef_construction,ef,recall_library,
 * recall_anchor,qps_cpu_library,qps_cpu_anchor,ratio_cpu,ratio_cpu_min,
 * ratio_cpu_max,ratio_wall,rounds.
 *
 * One executable per anchor (ann_pair_hnswlib, ann_pair_faiss), linked
 * by ann.mk from the same adapter objects as the one-library drivers,
 * their entry points renamed (objcopy) to ann_adapter_knytt and
 * ann_adapter_anchor; --variant picks knytt's (int8, int8only).
 */
#include "annbench.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K 10
#define MAX_EFS 32
#define MAX_ROUNDS 99

const ann_adapter *ann_adapter_knytt(const char *variant);
const ann_adapter *ann_adapter_anchor(const char *variant);

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s --dataset NAME [--variant V] [--efs LIST]\n"
		"       [--rounds N] [--min-time S] [--target R] [--m M]\n"
		"       [--efc EF] [--build-threads T] [--data-dir DIR]\n"
		"       [--cache-dir DIR] [--csv FILE]\n", argv0);
	exit(2);
}

/* Median of v[0..n) (n <= MAX_ROUNDS); v is left as it was.  Sorted
 * copy into *lo and *hi, when given: the smallest and largest. */
static double median(const double *v, size_t n, double *lo, double *hi)
{
	double s[MAX_ROUNDS];
	memcpy(s, v, n * sizeof *s);
	qsort(s, n, sizeof *s, ann_cmp_double);
	if (lo)
		*lo = s[0];
	if (hi)
		*hi = s[n - 1];
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/*
 * QPS at recall exactly @p target on one library's curve: between the
 * first ef of the list reaching it and the ef before, log QPS taken as
 * linear in recall.  The fastest-ef figure jumps with where each
 * library's curve happens to cross the target (one more ef step can be
 * 20% slower); this one does not.  -1 when the target is not reached,
 * or reached at the first ef (nothing to interpolate from).
 */
static double qps_at(const double *rec, const double *q, size_t nef,
		     double target)
{
	for (size_t e = 1; e < nef; e++) {
		if (rec[e] < target)
			continue;
		if (rec[e - 1] >= target)
			return -1;
		double t = (target - rec[e - 1]) / (rec[e] - rec[e - 1]);
		return exp(log(q[e - 1]) + t * (log(q[e]) - log(q[e - 1])));
	}
	return -1;
}

/* Passes over the queries until @p min_time wall seconds are spent;
 * returns queries per CPU second of this thread, wall QPS in *wall. */
static double slice(const ann_adapter *ad, void *ix, const ann_data *d,
		    unsigned ef, double min_time, int64_t *res, double *wall)
{
	double c0 = ann_thread_cpu(), t0 = ann_now(), t;
	size_t passes = 0;
	do {
		for (size_t q = 0; q < d->nq; q++)
			ad->search(ix, d->queries + q * d->dim, K, ef,
				   res + q * K);
		passes++;
		t = ann_now() - t0;
	} while (t < min_time);
	double cpu = ann_thread_cpu() - c0;
	*wall = (double)(passes * d->nq) / t;
	return (double)(passes * d->nq) / (cpu > 0 ? cpu : t);
}

int main(int argc, char **argv)
{
	const char *dataset = NULL, *variant = "";
	const char *data_dir = getenv("KNYTT_DATA_DIR");
	const char *cache_dir = "build/bench-data";
	const char *efs_arg = "10,16,24,32", *csv = NULL;
	unsigned m = 16, efc = 200, rounds = 9, bthreads = 2;
	double min_time = 0.1, target = 0.95;
	if (!data_dir || !*data_dir)
		data_dir = "../shared/data";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage(argv[0]);
		if (strcmp(a, "--dataset") == 0)
			dataset = v;
		else if (strcmp(a, "--variant") == 0)
			variant = v;
		else if (strcmp(a, "--efs") == 0)
			efs_arg = v;
		else if (strcmp(a, "--rounds") == 0)
			rounds = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--min-time") == 0)
			min_time = strtod(v, NULL);
		else if (strcmp(a, "--target") == 0)
			target = strtod(v, NULL);
		else if (strcmp(a, "--m") == 0)
			m = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--efc") == 0)
			efc = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--build-threads") == 0)
			bthreads = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--data-dir") == 0)
			data_dir = v;
		else if (strcmp(a, "--cache-dir") == 0)
			cache_dir = v;
		else if (strcmp(a, "--csv") == 0)
			csv = v;
		else
			usage(argv[0]);
		i++;
	}
	if (!dataset || m < 2 || efc < 1 || rounds < 1 ||
	    rounds > MAX_ROUNDS || bthreads < 1 || !(min_time > 0))
		usage(argv[0]);

	unsigned efs[MAX_EFS];
	size_t nef = ann_parse_efs(efs_arg, efs, MAX_EFS);
	if (nef == 0)
		return 2;

	const ann_adapter *ad[2] = {ann_adapter_knytt(variant),
				    ann_adapter_anchor("")};
	if (!ad[0] || !ad[1]) {
		fprintf(stderr, "%s: unknown --variant '%s'\n", argv[0],
			variant);
		return 2;
	}
	ann_data d;
	int rc = ann_data_load(dataset, data_dir, cache_dir, 1, &d);
	if (rc == ANN_SKIP) {
		fprintf(stderr, "[pair %s] SKIP: data files absent\n",
			dataset);
		return 3;
	}
	if (rc != ANN_OK)
		return 1;

	void *ix[2];
	for (int l = 0; l < 2; l++) {
		char err[512] = "";
		fprintf(stderr, "[pair %s] building %s, %u thread(s)\n",
			d.name, ad[l]->library, bthreads);
		ix[l] = ad[l]->build(&d, m, efc, bthreads, ANN_SEED_DEFAULT,
				     err, sizeof err);
		if (!ix[l]) {
			fprintf(stderr, "[pair %s] %s: build failed: %s\n",
				d.name, ad[l]->library, err);
			return 1;
		}
	}

	int64_t *res = malloc(sizeof *res * d.nq * K);
	static double rec[2][MAX_EFS], cpu[2][MAX_EFS][MAX_ROUNDS],
		wall[2][MAX_EFS][MAX_ROUNDS], ratio[MAX_EFS][MAX_ROUNDS],
		wratio[MAX_EFS][MAX_ROUNDS];
	if (!res)
		return 1;
	for (int l = 0; l < 2; l++)
		for (size_t e = 0; e < nef; e++) {
			double w;
			slice(ad[l], ix[l], &d, efs[e], 1e-9, res, &w);
			rec[l][e] = ann_recall(&d, res, K);
		}
	for (unsigned r = 0; r < rounds; r++) {
		for (size_t e = 0; e < nef; e++)
			for (int o = 0; o < 2; o++) {
				int l = (int)((r + o) % 2);
				cpu[l][e][r] = slice(ad[l], ix[l], &d, efs[e],
						     min_time, res,
						     &wall[l][e][r]);
			}
		for (size_t e = 0; e < nef; e++) {
			ratio[e][r] = cpu[0][e][r] / cpu[1][e][r];
			wratio[e][r] = wall[0][e][r] / wall[1][e][r];
		}
		fprintf(stderr, "[pair %s] round %u/%u\n", d.name, r + 1,
			rounds);
	}

	printf("%s: %s against %s, %zu queries, M %u, efC %u, %u rounds "
	       "interleaved (QPS per CPU second of the searching thread)\n",
	       d.name, ad[0]->library, ad[1]->library, d.nq, m, efc, rounds);
	printf("%5s %10s %10s %12s %12s %12s %14s %12s\n", "ef", "recall_a",
	       "recall_b", "qps_cpu_a", "qps_cpu_b", "ratio_cpu",
	       "ratio_range", "ratio_wall");
	FILE *out = NULL;
	if (csv) {
		FILE *probe = fopen(csv, "r");
		if (probe)
			fclose(probe);
		out = fopen(csv, "a");
		if (!out) {
			perror(csv);
			return 1;
		}
		if (!probe)
			fputs("dataset,library,anchor,n,dim,M,ef_construction,"
			      "ef,recall_library,recall_anchor,qps_cpu_library,"
			      "qps_cpu_anchor,ratio_cpu,ratio_cpu_min,"
			      "ratio_cpu_max,ratio_wall,rounds\n", out);
	}
	double qa[MAX_EFS], qb[MAX_EFS];
	for (size_t e = 0; e < nef; e++) {
		double lo, hi;
		qa[e] = median(cpu[0][e], rounds, NULL, NULL);
		qb[e] = median(cpu[1][e], rounds, NULL, NULL);
		double rmed = median(ratio[e], rounds, &lo, &hi);
		double wmed = median(wratio[e], rounds, NULL, NULL);
		printf("%5u %10.4f %10.4f %12.0f %12.0f %12.3f %6.3f-%-7.3f "
		       "%12.3f\n", efs[e], rec[0][e], rec[1][e], qa[e], qb[e],
		       rmed, lo, hi, wmed);
		if (out)
			fprintf(out, "%s,%s,%s,%zu,%zu,%u,%u,%u,%.4f,%.4f,%.1f,"
				"%.1f,%.4f,%.4f,%.4f,%.4f,%u\n", d.name,
				ad[0]->library, ad[1]->library, d.n, d.dim, m,
				efc, efs[e], rec[0][e], rec[1][e], qa[e], qb[e],
				rmed, lo, hi, wmed, rounds);
	}
	if (out && fclose(out) != 0) {
		perror(csv);
		return 1;
	}
	/* each library's fastest ef reaching the target */
	int best[2] = {-1, -1};
	for (int l = 0; l < 2; l++)
		for (size_t e = 0; e < nef; e++) {
			double q = l ? qb[e] : qa[e];
			if (rec[l][e] >= target &&
			    (best[l] < 0 ||
			     q > (l ? qb[best[l]] : qa[best[l]])))
				best[l] = (int)e;
		}
	if (best[0] < 0 || best[1] < 0) {
		printf("at recall@10 >= %.2f: not reached by %s; widen "
		       "--efs\n", target,
		       best[0] < 0 ? ad[0]->library : ad[1]->library);
	} else {
		/* per round: a's QPS at its ef over b's at its ef */
		double rr[MAX_ROUNDS], lo, hi;
		for (unsigned r = 0; r < rounds; r++)
			rr[r] = cpu[0][best[0]][r] / cpu[1][best[1]][r];
		double med = median(rr, rounds, &lo, &hi);
		printf("at recall@10 >= %.2f: %s ef %u (%.4f), %s ef %u "
		       "(%.4f): ratio %.3f (rounds %.3f-%.3f)\n", target,
		       ad[0]->library, efs[best[0]], rec[0][best[0]],
		       ad[1]->library, efs[best[1]], rec[1][best[1]], med,
		       lo, hi);
	}
	/* the same, each library's QPS interpolated to the target */
	double rr[MAX_ROUNDS], lo, hi, ca[MAX_EFS], cb[MAX_EFS];
	unsigned ok = 0;
	for (unsigned r = 0; r < rounds; r++) {
		for (size_t e = 0; e < nef; e++) {
			ca[e] = cpu[0][e][r];
			cb[e] = cpu[1][e][r];
		}
		double x = qps_at(rec[0], ca, nef, target);
		double y = qps_at(rec[1], cb, nef, target);
		if (x > 0 && y > 0)
			rr[ok++] = x / y;
	}
	if (ok == rounds) {
		double med = median(rr, rounds, &lo, &hi);
		printf("at recall@10 = %.2f, interpolated between efs: ratio "
		       "%.3f (rounds %.3f-%.3f)\n", target, med, lo, hi);
	} else {
		printf("at recall@10 = %.2f, interpolated: needs an ef below "
		       "and one at or above it for both; widen --efs\n",
		       target);
	}
	ad[0]->destroy(ix[0]);
	ad[1]->destroy(ix[1]);
	free(res);
	ann_data_free(&d);
	return 0;
}
