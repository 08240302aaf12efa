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
 * Several graphs (--graphs G): one graph's recall at a given ef moves by
 * about 0.01 either way with its random level draw, in both libraries
 * (emb512, ef 16: knytt's seeds 1-4 and 42 drew 0.9418-0.9535), and near
 * recall 0.95 that is a good part of an ef step, so one graph per
 * library can move the ratio at the target by a tenth.  With G > 1, G
 * pairs are built and measured one after the other, each freed before
 * the next, the levels of pair g drawn from seed S + g in both libraries
 * (--seed S, default 1).  Reported then: recall as the mean over the
 * graphs, QPS and ratios as medians over all rounds of all graphs, the
 * ratios at the target on the mean-recall curves (interpolated: each
 * round's QPS on them), and each graph's own interpolated ratio, which
 * shows the spread of the draw.  A seed reproduces a graph only when it
 * is built with one thread: with more, the links follow the threads'
 * timing in both libraries (bigann10k, seed 42, two 2-thread builds:
 * knytt's recall at ef 10 0.876 and 0.879), and hnswlib hands its drawn
 * levels to nodes in the order its threads take them (annbench.h).
 * Without --graphs and --seed each library keeps its own default seed
 * (knytt 42, hnswlib 100), and the output is that of the one-graph
 * driver this was before.
 *
 * Both indexes are built with --build-threads threads (default 2: the
 * build is not what is measured here; ann/run measures it).
 *
 * Usage: ann_pair_ANCHOR --dataset NAME [--variant V]
 *        [--efs 10,16,24,32] [--rounds 9] [--min-time 0.1]
 *        [--target 0.95] [--m 16] [--efc 200] [--build-threads 2]
 *        [--graphs 1] [--seed S]
 *        [--data-dir DIR] [--cache-dir DIR] [--csv FILE]
 *
 * --csv appends one row per ef (the header first when FILE is new):
 * dataset,library,anchor,n,dim,M,ef_construction,ef,recall_library,
 * recall_anchor,qps_cpu_library,qps_cpu_anchor,ratio_cpu,ratio_cpu_min,
 * ratio_cpu_max,ratio_wall,rounds,graphs.  With graphs > 1 the recalls
 * are means over the graphs, the QPS and ratios medians (and extremes)
 * over rounds x graphs rounds; rounds is per graph.
 *
 * One executable per anchor (ann_pair_hnswlib, ann_pair_faiss), linked
 * by ann.mk from the same adapter objects as the one-library drivers,
 * their entry points renamed (objcopy) to ann_adapter_knytt and
 * ann_adapter_anchor; --variant picks knytt's (int8, int8only, f16).
 */
#include "annbench.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define K 10
#define MAX_EFS 32
#define MAX_ROUNDS 99
#define MAX_GRAPHS 16
/* per-round figures pooled over every graph */
#define MAX_SAMPLES (MAX_GRAPHS * MAX_ROUNDS)

const ann_adapter *ann_adapter_knytt(const char *variant);
const ann_adapter *ann_adapter_anchor(const char *variant);

/* The command line.  Index l of ad (and of the arrays below): 0 knytt,
 * 1 the anchor. */
typedef struct pair_opts {
	const char *dataset, *variant, *data_dir, *cache_dir, *efs_arg, *csv;
	const ann_adapter *ad[2];
	unsigned efs[MAX_EFS];
	size_t nef;
	unsigned m, efc, rounds, bthreads;
	unsigned graphs; /* graph pairs, 1..MAX_GRAPHS */
	/* pair g's seed is seed + g; ANN_SEED_DEFAULT (G = 1 only): each
	 * library's own */
	uint64_t seed;
	double min_time, target;
} pair_opts;

/*
 * What was measured, per graph g, library l, ef index e and round r:
 * recall@10, and QPS per CPU second of the searching thread and per wall
 * second.  Static: 1.6 MB at the limits, too much for a stack.
 */
static struct {
	double rec[MAX_GRAPHS][2][MAX_EFS];
	double cpu[MAX_GRAPHS][2][MAX_EFS][MAX_ROUNDS];
	double wall[MAX_GRAPHS][2][MAX_EFS][MAX_ROUNDS];
} meas;

static void usage(const char *argv0)
{
	fprintf(stderr,
		"usage: %s --dataset NAME [--variant V] [--efs LIST]\n"
		"       [--rounds N] [--min-time S] [--target R] [--m M]\n"
		"       [--efc EF] [--build-threads T] [--graphs G]\n"
		"       [--seed S] [--data-dir DIR] [--cache-dir DIR]\n"
		"       [--csv FILE]\n",
		argv0);
	exit(2);
}

static void parse(int argc, char **argv, pair_opts *o)
{
	int seed_set = 0;
	*o = (pair_opts){.variant = "", .data_dir = getenv("KNYTT_DATA_DIR"),
			 .cache_dir = "build/bench-data",
			 .efs_arg = "10,16,24,32", .m = 16, .efc = 200,
			 .rounds = 9, .bthreads = 2, .graphs = 1,
			 .min_time = 0.1, .target = 0.95};
	if (!o->data_dir || !*o->data_dir)
		o->data_dir = "../shared/data";
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!v)
			usage(argv[0]);
		if (strcmp(a, "--dataset") == 0)
			o->dataset = v;
		else if (strcmp(a, "--variant") == 0)
			o->variant = v;
		else if (strcmp(a, "--efs") == 0)
			o->efs_arg = v;
		else if (strcmp(a, "--rounds") == 0)
			o->rounds = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--min-time") == 0)
			o->min_time = strtod(v, NULL);
		else if (strcmp(a, "--target") == 0)
			o->target = strtod(v, NULL);
		else if (strcmp(a, "--m") == 0)
			o->m = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--efc") == 0)
			o->efc = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--build-threads") == 0)
			o->bthreads = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--graphs") == 0)
			o->graphs = (unsigned)strtoul(v, NULL, 10);
		else if (strcmp(a, "--seed") == 0)
			o->seed = strtoull(v, NULL, 10), seed_set = 1;
		else if (strcmp(a, "--data-dir") == 0)
			o->data_dir = v;
		else if (strcmp(a, "--cache-dir") == 0)
			o->cache_dir = v;
		else if (strcmp(a, "--csv") == 0)
			o->csv = v;
		else
			usage(argv[0]);
		i++;
	}
	if (!o->dataset || o->m < 2 || o->efc < 1 || o->rounds < 1 ||
	    o->rounds > MAX_ROUNDS || o->bthreads < 1 || !(o->min_time > 0) ||
	    o->graphs < 1 || o->graphs > MAX_GRAPHS ||
	    (seed_set && o->seed > ANN_SEED_DEFAULT - o->graphs))
		usage(argv[0]);
	/* one graph: the libraries' own seeds, the graphs always measured;
	 * several: seeds both libraries share */
	if (!seed_set)
		o->seed = o->graphs == 1 ? ANN_SEED_DEFAULT : 1;
}

/* Median of v[0..n) (n <= MAX_SAMPLES); v is left as it was.  Sorted
 * copy into *lo and *hi, when given: the smallest and largest. */
static double median(const double *v, size_t n, double *lo, double *hi)
{
	double s[MAX_SAMPLES];
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

/*
 * Builds graph pair @p g, measures it into meas.rec[g], meas.cpu[g] and
 * meas.wall[g], and frees it, so that only one pair is in memory at a
 * time.  -1 after a message when a build fails.
 */
static int measure_graph(const pair_opts *o, const ann_data *d, unsigned g,
			 int64_t *res)
{
	uint64_t seed = o->seed == ANN_SEED_DEFAULT ? o->seed : o->seed + g;
	char tag[128];
	if (seed == ANN_SEED_DEFAULT)
		snprintf(tag, sizeof tag, "pair %s", d->name);
	else
		snprintf(tag, sizeof tag, "pair %s, graph %u/%u, seed %" PRIu64,
			 d->name, g + 1, o->graphs, seed);
	void *ix[2];
	for (int l = 0; l < 2; l++) {
		char err[512] = "";
		fprintf(stderr, "[%s] building %s, %u thread(s)\n", tag,
			o->ad[l]->library, o->bthreads);
		ix[l] = o->ad[l]->build(d, o->m, o->efc, o->bthreads, seed,
					err, sizeof err);
		if (!ix[l]) {
			fprintf(stderr, "[%s] %s: build failed: %s\n", tag,
				o->ad[l]->library, err);
			if (l)
				o->ad[0]->destroy(ix[0]);
			return -1;
		}
	}
	for (int l = 0; l < 2; l++)
		for (size_t e = 0; e < o->nef; e++) {
			double w;
			slice(o->ad[l], ix[l], d, o->efs[e], 1e-9, res, &w);
			meas.rec[g][l][e] = ann_recall(d, res, K);
		}
	for (unsigned r = 0; r < o->rounds; r++) {
		for (size_t e = 0; e < o->nef; e++)
			for (int k = 0; k < 2; k++) {
				int l = (int)((r + k) % 2);
				meas.cpu[g][l][e][r] = slice(
					o->ad[l], ix[l], d, o->efs[e],
					o->min_time, res,
					&meas.wall[g][l][e][r]);
			}
		fprintf(stderr, "[%s] round %u/%u\n", tag, r + 1, o->rounds);
	}
	o->ad[0]->destroy(ix[0]);
	o->ad[1]->destroy(ix[1]);
	return 0;
}

/* Per round of every graph: knytt's QPS (from q: cpu or wall) at ef
 * index @p ea over the anchor's at @p eb, into out; returns the count. */
static size_t ratios(const pair_opts *o,
		     double (*q)[2][MAX_EFS][MAX_ROUNDS], size_t ea,
		     size_t eb, double *out)
{
	size_t n = 0;
	for (unsigned g = 0; g < o->graphs; g++)
		for (unsigned r = 0; r < o->rounds; r++)
			out[n++] = q[g][0][ea][r] / q[g][1][eb][r];
	return n;
}

/* Median over every round of every graph of library l's QPS per CPU
 * second at ef index e. */
static double qps_median(const pair_opts *o, int l, size_t e)
{
	double v[MAX_SAMPLES];
	size_t n = 0;
	for (unsigned g = 0; g < o->graphs; g++)
		for (unsigned r = 0; r < o->rounds; r++)
			v[n++] = meas.cpu[g][l][e][r];
	return median(v, n, NULL, NULL);
}

/*
 * Knytt's QPS over the anchor's, each interpolated to recall exactly
 * the target (qps_at) on the recall curves @p ra and @p rb with the QPS
 * of round r of graph g; -1 when either curve does not allow it.
 */
static double interp_ratio(const pair_opts *o, unsigned g, unsigned r,
			   const double *ra, const double *rb)
{
	double ca[MAX_EFS], cb[MAX_EFS];
	for (size_t e = 0; e < o->nef; e++) {
		ca[e] = meas.cpu[g][0][e][r];
		cb[e] = meas.cpu[g][1][e][r];
	}
	double x = qps_at(ra, ca, o->nef, o->target);
	double y = qps_at(rb, cb, o->nef, o->target);
	return x > 0 && y > 0 ? x / y : -1;
}

/* The run's title; unchanged from the one-graph driver when the
 * libraries keep their own seeds. */
static void print_title(const pair_opts *o, const ann_data *d)
{
	printf("%s: %s against %s, %zu queries, M %u, efC %u, ", d->name,
	       o->ad[0]->library, o->ad[1]->library, d->nq, o->m, o->efc);
	if (o->seed == ANN_SEED_DEFAULT)
		printf("%u rounds", o->rounds);
	else if (o->graphs == 1)
		printf("seed %" PRIu64 ", %u rounds", o->seed, o->rounds);
	else
		printf("%u graphs (seeds %" PRIu64 "-%" PRIu64 ") x %u rounds",
		       o->graphs, o->seed, o->seed + o->graphs - 1, o->rounds);
	printf(" interleaved (QPS per CPU second of the searching thread)\n");
	if (o->graphs > 1)
		printf("recall: mean over the graphs; QPS and ratios: medians "
		       "over all rounds of all graphs\n");
}

/* Opens --csv for appending, its header first when it is new; NULL
 * after a message when it cannot. */
static FILE *open_csv(const char *csv)
{
	FILE *probe = fopen(csv, "r");
	if (probe)
		fclose(probe);
	FILE *out = fopen(csv, "a");
	if (!out) {
		perror(csv);
		return NULL;
	}
	if (!probe)
		fputs("dataset,library,anchor,n,dim,M,ef_construction,ef,"
		      "recall_library,recall_anchor,qps_cpu_library,"
		      "qps_cpu_anchor,ratio_cpu,ratio_cpu_min,ratio_cpu_max,"
		      "ratio_wall,rounds,graphs\n", out);
	return out;
}

/* The per-ef table (and CSV rows, when @p out): mean recalls @p mrec,
 * QPS medians into qa / qb for what follows. */
static void print_efs(const pair_opts *o, const ann_data *d,
		      const double mrec[2][MAX_EFS], FILE *out, double *qa,
		      double *qb)
{
	printf("%5s %10s %10s %12s %12s %12s %14s %12s\n", "ef", "recall_a",
	       "recall_b", "qps_cpu_a", "qps_cpu_b", "ratio_cpu",
	       "ratio_range", "ratio_wall");
	for (size_t e = 0; e < o->nef; e++) {
		double v[MAX_SAMPLES], lo, hi;
		qa[e] = qps_median(o, 0, e);
		qb[e] = qps_median(o, 1, e);
		size_t n = ratios(o, meas.cpu, e, e, v);
		double rmed = median(v, n, &lo, &hi);
		n = ratios(o, meas.wall, e, e, v);
		double wmed = median(v, n, NULL, NULL);
		printf("%5u %10.4f %10.4f %12.0f %12.0f %12.3f %6.3f-%-7.3f "
		       "%12.3f\n", o->efs[e], mrec[0][e], mrec[1][e], qa[e],
		       qb[e], rmed, lo, hi, wmed);
		if (out)
			fprintf(out, "%s,%s,%s,%zu,%zu,%u,%u,%u,%.4f,%.4f,%.1f,"
				"%.1f,%.4f,%.4f,%.4f,%.4f,%u,%u\n", d->name,
				o->ad[0]->library, o->ad[1]->library, d->n,
				d->dim, o->m, o->efc, o->efs[e], mrec[0][e],
				mrec[1][e], qa[e], qb[e], rmed, lo, hi, wmed,
				o->rounds, o->graphs);
	}
}

/* Each graph's recalls, so the spread of the level draw shows. */
static void print_graph_recalls(const pair_opts *o)
{
	printf("recall@10 per graph (%s/%s):\n%5s", o->ad[0]->library,
	       o->ad[1]->library, "ef");
	for (unsigned g = 0; g < o->graphs; g++)
		printf("  seed %-8" PRIu64, o->seed + g);
	printf("\n");
	for (size_t e = 0; e < o->nef; e++) {
		printf("%5u", o->efs[e]);
		for (unsigned g = 0; g < o->graphs; g++)
			printf("  %.4f/%.4f", meas.rec[g][0][e],
			       meas.rec[g][1][e]);
		printf("\n");
	}
}

/* At recall >= the target, each library's fastest ef on its mean-recall
 * curve, and the ratio of their QPS per round of every graph. */
static void print_fastest(const pair_opts *o, const double mrec[2][MAX_EFS],
			  const double *qa, const double *qb)
{
	int best[2] = {-1, -1};
	for (int l = 0; l < 2; l++)
		for (size_t e = 0; e < o->nef; e++) {
			const double *q = l ? qb : qa;
			if (mrec[l][e] >= o->target &&
			    (best[l] < 0 || q[e] > q[best[l]]))
				best[l] = (int)e;
		}
	if (best[0] < 0 || best[1] < 0) {
		printf("at recall@10 >= %.2f: not reached by %s; widen "
		       "--efs\n", o->target,
		       o->ad[best[0] < 0 ? 0 : 1]->library);
		return;
	}
	double v[MAX_SAMPLES], lo, hi;
	size_t n = ratios(o, meas.cpu, (size_t)best[0], (size_t)best[1], v);
	double med = median(v, n, &lo, &hi);
	printf("at recall@10 >= %.2f: %s ef %u (%.4f), %s ef %u (%.4f): "
	       "ratio %.3f (rounds %.3f-%.3f)\n", o->target, o->ad[0]->library,
	       o->efs[best[0]], mrec[0][best[0]], o->ad[1]->library,
	       o->efs[best[1]], mrec[1][best[1]], med, lo, hi);
}

/* The ratio at recall exactly the target: on the mean-recall curves over
 * every round of every graph, then (several graphs) on each graph's own
 * curves over its rounds. */
static void print_interpolated(const pair_opts *o,
			       const double mrec[2][MAX_EFS])
{
	double v[MAX_SAMPLES], lo, hi;
	size_t n = 0, ok = 0;
	for (unsigned g = 0; g < o->graphs; g++)
		for (unsigned r = 0; r < o->rounds; r++, n++) {
			double x = interp_ratio(o, g, r, mrec[0], mrec[1]);
			if (x > 0)
				v[ok++] = x;
		}
	if (ok == n) {
		double med = median(v, n, &lo, &hi);
		printf("at recall@10 = %.2f, interpolated between efs: ratio "
		       "%.3f (rounds %.3f-%.3f)\n", o->target, med, lo, hi);
	} else {
		printf("at recall@10 = %.2f, interpolated: needs an ef below "
		       "and one at or above it for both; widen --efs\n",
		       o->target);
	}
	for (unsigned g = 0; o->graphs > 1 && g < o->graphs; g++) {
		ok = 0;
		for (unsigned r = 0; r < o->rounds; r++) {
			double x = interp_ratio(o, g, r, meas.rec[g][0],
						meas.rec[g][1]);
			if (x > 0)
				v[ok++] = x;
		}
		printf("  seed %" PRIu64 " alone: ", o->seed + g);
		if (ok == o->rounds) {
			double med = median(v, ok, &lo, &hi);
			printf("ratio %.3f (rounds %.3f-%.3f)\n", med, lo, hi);
		} else {
			printf("not interpolable (widen --efs)\n");
		}
	}
}

int main(int argc, char **argv)
{
	pair_opts o;
	parse(argc, argv, &o);
	o.nef = ann_parse_efs(o.efs_arg, o.efs, MAX_EFS);
	if (o.nef == 0)
		return 2;
	o.ad[0] = ann_adapter_knytt(o.variant);
	o.ad[1] = ann_adapter_anchor("");
	if (!o.ad[0] || !o.ad[1]) {
		fprintf(stderr, "%s: unknown --variant '%s'\n", argv[0],
			o.variant);
		return 2;
	}
	ann_data d;
	int rc = ann_data_load(o.dataset, o.data_dir, o.cache_dir, 1, &d);
	if (rc == ANN_SKIP) {
		fprintf(stderr, "[pair %s] SKIP: data files absent\n",
			o.dataset);
		return 3;
	}
	if (rc != ANN_OK)
		return 1;
	int64_t *res = malloc(sizeof *res * d.nq * K);
	if (!res)
		return 1;
	for (unsigned g = 0; g < o.graphs; g++)
		if (measure_graph(&o, &d, g, res) < 0)
			return 1;

	double mrec[2][MAX_EFS], qa[MAX_EFS], qb[MAX_EFS];
	for (int l = 0; l < 2; l++)
		for (size_t e = 0; e < o.nef; e++) {
			double sum = 0;
			for (unsigned g = 0; g < o.graphs; g++)
				sum += meas.rec[g][l][e];
			mrec[l][e] = sum / o.graphs;
		}
	FILE *out = o.csv ? open_csv(o.csv) : NULL;
	if (o.csv && !out)
		return 1;
	print_title(&o, &d);
	print_efs(&o, &d, (const double(*)[MAX_EFS])mrec, out, qa, qb);
	if (out && fclose(out) != 0) {
		perror(o.csv);
		return 1;
	}
	if (o.graphs > 1)
		print_graph_recalls(&o);
	print_fastest(&o, (const double(*)[MAX_EFS])mrec, qa, qb);
	print_interpolated(&o, (const double(*)[MAX_EFS])mrec);
	free(res);
	ann_data_free(&d);
	return 0;
}
