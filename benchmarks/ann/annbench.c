/*
 * annbench.c -- data sets, ground truth files, recall and measurements
 * shared by the ANN benchmark drivers (see annbench.h).
 *
 * Synthetic sets are a fixed-seed Gaussian mixture, regenerated in memory
 * on every run (about 2 s for 1M x 128) rather than stored: the data is
 * never committed and the cache holds only the ground truth.  Changing
 * anything in synth_generate() changes the data, so bump SYNTH_VERSION,
 * which is part of the ground-truth file name.
 */
#include "annbench.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define SYNTH_VERSION 1
#define SYNTH_SEED 0x6b6e797474ULL /* "knytt" */
#define SYNTH_DIM 128
#define SYNTH_NQ 1000
#define SYNTH_CLUSTERS 256

/* dim 0: the Gaussian mixture (SYNTH_DIM); else embedding-like */
static const struct synth_set {
	const char *name;
	size_t n, dim;
} synth_sets[] = {
	{"synth100k", 100000, 0},
	{"synth1m", 1000000, 0},
	{"emb256", 100000, 256},
	{"emb512", 100000, 512},
	{"emb768", 100000, 768},
};

static const struct synth_set *synth_find(const char *name)
{
	for (size_t i = 0; i < sizeof synth_sets / sizeof synth_sets[0]; i++)
		if (strcmp(synth_sets[i].name, name) == 0)
			return &synth_sets[i];
	return NULL;
}

int ann_data_is_synthetic(const char *name)
{
	return synth_find(name) != NULL;
}

/* splitmix64: seedable, every stream independent of the others. */
static uint64_t sm64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform on (0, 1): never 0, so log() below is finite. */
static double unif(uint64_t *s)
{
	return ((double)(sm64(s) >> 11) + 0.5) * 0x1p-53;
}

/* Standard normal pairs by Box-Muller; @p spare caches the second. */
struct normal_gen {
	uint64_t s;
	int have;
	double spare;
};

static double normal(struct normal_gen *g)
{
	if (g->have) {
		g->have = 0;
		return g->spare;
	}
	double r = sqrt(-2.0 * log(unif(&g->s)));
	double t = 2.0 * M_PI * unif(&g->s);
	g->spare = r * sin(t);
	g->have = 1;
	return r * cos(t);
}

/*
 * The mixture: SYNTH_CLUSTERS centres with N(0, 1) coordinates; a point
 * picks a centre uniformly and adds noise whose standard deviation decays
 * with the dimension, sd_j = 1 / sqrt(1 + j / 16).  The decay gives the
 * data a lower intrinsic dimension than isotropic noise would (as real
 * descriptors have), so an HNSW graph reaches high recall at moderate ef,
 * while the clusters keep the neighbourhoods uneven.  Base rows and queries
 * come from separate streams of the same mixture, so no query is a base
 * row.
 */
static void synth_rows(const float *centres, size_t n, uint64_t seed,
		       float *out)
{
	struct normal_gen g = {seed, 0, 0.0};
	float sd[SYNTH_DIM];
	for (size_t j = 0; j < SYNTH_DIM; j++)
		sd[j] = (float)(1.0 / sqrt(1.0 + (double)j / 16.0));
	for (size_t i = 0; i < n; i++) {
		size_t c = (size_t)(sm64(&g.s) % SYNTH_CLUSTERS);
		const float *ce = centres + c * SYNTH_DIM;
		float *row = out + i * SYNTH_DIM;
		for (size_t j = 0; j < SYNTH_DIM; j++)
			row[j] = ce[j] + sd[j] * (float)normal(&g);
	}
}

/*
 * Embedding-like rows, the shape of text and image embeddings: most of a
 * row lies in a few dozen directions (EMB_RANK random directions, the
 * k-th with standard deviation (k + 1)^-EMB_DECAY: a power-law spectrum)
 * around one of EMB_TOPICS topic centres, plus isotropic noise carrying
 * EMB_NOISE of the energy, and the row is scaled to unit length; compared
 * by inner product.  Base rows and queries come from separate streams.
 */
#define EMB_VERSION 1
#define EMB_RANK 48
#define EMB_DECAY 0.7
#define EMB_TOPICS 64
#define EMB_NOISE 0.15

static void emb_rows(const float *dirs, const float *topics, size_t d,
		     size_t n, uint64_t seed, float *out)
{
	struct normal_gen g = {seed, 0, 0.0};
	double sig = 0;
	for (size_t k = 0; k < EMB_RANK; k++)
		sig += pow((double)(k + 1), -2.0 * EMB_DECAY);
	/* topic offsets carry as much energy as the spectrum */
	double tsc = sqrt(sig / (double)d);
	double nsd = sqrt(EMB_NOISE / (1.0 - EMB_NOISE) * 2.0 * sig / (double)d);
	for (size_t i = 0; i < n; i++) {
		float *row = out + i * d;
		const float *t = topics + (sm64(&g.s) % EMB_TOPICS) * d;
		for (size_t j = 0; j < d; j++)
			row[j] = (float)(tsc * t[j] + nsd * normal(&g));
		for (size_t k = 0; k < EMB_RANK; k++) {
			float z = (float)(normal(&g) *
					  pow((double)(k + 1), -EMB_DECAY));
			const float *u = dirs + k * d;
			for (size_t j = 0; j < d; j++)
				row[j] += z * u[j];
		}
		double s = 0;
		for (size_t j = 0; j < d; j++)
			s += (double)row[j] * row[j];
		float inv = s > 0 ? (float)(1.0 / sqrt(s)) : 0.0f;
		for (size_t j = 0; j < d; j++)
			row[j] *= inv;
	}
}

static int emb_generate(const struct synth_set *ss, ann_data *d)
{
	size_t dim = ss->dim;
	float *dirs = malloc(sizeof(float) * EMB_RANK * dim);
	float *topics = malloc(sizeof(float) * EMB_TOPICS * dim);
	d->base = malloc(sizeof(float) * ss->n * dim);
	d->queries = malloc(sizeof(float) * SYNTH_NQ * dim);
	if (!dirs || !topics || !d->base || !d->queries) {
		free(dirs);
		free(topics);
		fprintf(stderr, "%s: out of memory\n", ss->name);
		return ANN_FAIL;
	}
	/* random directions of unit length (nearly orthogonal in these
	 * dimensions); topic centres N(0, 1) per coordinate */
	struct normal_gen g = {SYNTH_SEED ^ 0x5a5a5a5aULL ^ dim, 0, 0.0};
	for (size_t k = 0; k < EMB_RANK; k++) {
		double s = 0;
		float *u = dirs + k * dim;
		for (size_t j = 0; j < dim; j++) {
			u[j] = (float)normal(&g);
			s += (double)u[j] * u[j];
		}
		for (size_t j = 0; j < dim; j++)
			u[j] = (float)(u[j] / sqrt(s));
	}
	for (size_t i = 0; i < EMB_TOPICS * dim; i++)
		topics[i] = (float)normal(&g);
	emb_rows(dirs, topics, dim, ss->n, SYNTH_SEED ^ 0xe1e1e1e1ULL, d->base);
	emb_rows(dirs, topics, dim, SYNTH_NQ, SYNTH_SEED ^ 0x1e1e1e1eULL,
		 d->queries);
	free(dirs);
	free(topics);
	d->n = ss->n;
	d->dim = dim;
	d->nq = SYNTH_NQ;
	d->ip = 1;
	return ANN_OK;
}

static int synth_generate(const struct synth_set *ss, ann_data *d)
{
	if (ss->dim)
		return emb_generate(ss, d);
	float *centres = malloc(sizeof(float) * SYNTH_CLUSTERS * SYNTH_DIM);
	d->base = malloc(sizeof(float) * ss->n * SYNTH_DIM);
	d->queries = malloc(sizeof(float) * SYNTH_NQ * SYNTH_DIM);
	if (!centres || !d->base || !d->queries) {
		free(centres);
		fprintf(stderr, "%s: out of memory\n", ss->name);
		return ANN_FAIL;
	}
	struct normal_gen g = {SYNTH_SEED ^ 0xc3c3c3c3ULL, 0, 0.0};
	for (size_t i = 0; i < SYNTH_CLUSTERS * SYNTH_DIM; i++)
		centres[i] = (float)normal(&g);
	synth_rows(centres, ss->n, SYNTH_SEED ^ 0xbabababaULL, d->base);
	synth_rows(centres, SYNTH_NQ, SYNTH_SEED ^ 0x9e9e9e9eULL, d->queries);
	free(centres);
	d->n = ss->n;
	d->dim = SYNTH_DIM;
	d->nq = SYNTH_NQ;
	return ANN_OK;
}

void ann_gt_path(const char *name, const char *cache_dir, char *buf,
		 size_t cap)
{
	const struct synth_set *ss = synth_find(name);
	snprintf(buf, cap, "%s/%s-v%d-gt%d.ivecs", cache_dir, name,
		 ss && ss->dim ? EMB_VERSION : SYNTH_VERSION, ANN_GT_K);
}

/*
 * Reads a TEXMEX .bvecs / .ivecs / .fvecs file: per row an int32 dimension
 * then dim elements of @p esize bytes.  Returns the elements packed
 * (rows * dim * esize bytes) or NULL with a message; ANN_SKIP in *status
 * when the file does not exist.
 */
static void *read_vecs(const char *path, size_t esize, size_t *rows,
		       size_t *dim, int *status)
{
	*status = ANN_FAIL;
	FILE *f = fopen(path, "rb");
	if (!f) {
		if (errno == ENOENT)
			*status = ANN_SKIP;
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return NULL;
	}
	int32_t d32;
	if (fread(&d32, 4, 1, f) != 1 || d32 <= 0 || d32 > 65536) {
		fprintf(stderr, "%s: not a vecs file (bad first dimension)\n",
			path);
		fclose(f);
		return NULL;
	}
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	fseek(f, 0, SEEK_SET);
	size_t row_bytes = 4 + (size_t)d32 * esize;
	if (size <= 0 || (size_t)size % row_bytes != 0) {
		fprintf(stderr, "%s: size %ld is not a multiple of the row "
			"size %zu\n", path, size, row_bytes);
		fclose(f);
		return NULL;
	}
	size_t n = (size_t)size / row_bytes;
	unsigned char *out = malloc(n * (size_t)d32 * esize);
	if (!out) {
		fprintf(stderr, "%s: out of memory\n", path);
		fclose(f);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		int32_t di;
		if (fread(&di, 4, 1, f) != 1 || di != d32 ||
		    fread(out + i * (size_t)d32 * esize, esize, (size_t)d32,
			  f) != (size_t)d32) {
			fprintf(stderr, "%s: row %zu: bad dimension or short "
				"read\n", path, i);
			free(out);
			fclose(f);
			return NULL;
		}
	}
	fclose(f);
	*rows = n;
	*dim = (size_t)d32;
	*status = ANN_OK;
	return out;
}

static float *bvecs_to_float(const char *path, size_t *rows, size_t *dim,
			     int *status)
{
	unsigned char *b = read_vecs(path, 1, rows, dim, status);
	if (!b)
		return NULL;
	float *f = malloc(sizeof(float) * *rows * *dim);
	if (!f) {
		fprintf(stderr, "%s: out of memory\n", path);
		*status = ANN_FAIL;
	} else {
		for (size_t i = 0; i < *rows * *dim; i++)
			f[i] = (float)b[i];
	}
	free(b);
	return f;
}

static int load_bigann10k(const char *data_dir, int want_gt, ann_data *d)
{
	char pb[4096], pq[4096], pg[4096];
	snprintf(pb, sizeof pb, "%s/bigann10k/bigann10k_holdout_base.bvecs",
		 data_dir);
	snprintf(pq, sizeof pq, "%s/bigann10k/bigann10k_query.bvecs",
		 data_dir);
	snprintf(pg, sizeof pg,
		 "%s/bigann10k/bigann10k_holdout_groundtruth.ivecs", data_dir);
	int st;
	size_t dq, dg, nqg;
	d->base = bvecs_to_float(pb, &d->n, &d->dim, &st);
	if (!d->base)
		return st;
	d->queries = bvecs_to_float(pq, &d->nq, &dq, &st);
	if (!d->queries)
		return st;
	if (dq != d->dim) {
		fprintf(stderr, "%s: %zu dimensions, base has %zu\n", pq, dq,
			d->dim);
		return ANN_FAIL;
	}
	if (!want_gt)
		return ANN_OK;
	d->gt = read_vecs(pg, 4, &nqg, &dg, &st);
	if (!d->gt)
		return st;
	if (nqg != d->nq || dg < 10) {
		fprintf(stderr, "%s: %zu rows of %zu ids, expected %zu rows of "
			"at least 10\n", pg, nqg, dg, d->nq);
		return ANN_FAIL;
	}
	d->gt_k = dg;
	return ANN_OK;
}

int ann_data_load(const char *name, const char *data_dir,
		  const char *cache_dir, int want_gt, ann_data *d)
{
	memset(d, 0, sizeof *d);
	snprintf(d->name, sizeof d->name, "%s", name);
	int rc;
	const struct synth_set *ss = synth_find(name);
	if (strcmp(name, "bigann10k") == 0) {
		rc = load_bigann10k(data_dir, want_gt, d);
	} else if (ss) {
		rc = synth_generate(ss, d);
		if (rc == ANN_OK && want_gt) {
			char pg[4096];
			size_t nqg, dg;
			ann_gt_path(name, cache_dir, pg, sizeof pg);
			d->gt = read_vecs(pg, 4, &nqg, &dg, &rc);
			if (d->gt && (nqg != d->nq || dg != ANN_GT_K)) {
				fprintf(stderr, "%s: %zu x %zu, expected %zu x "
					"%d (stale cache? delete it)\n", pg,
					nqg, dg, d->nq, ANN_GT_K);
				rc = ANN_FAIL;
			}
			if (rc == ANN_SKIP)
				fprintf(stderr, "%s: run ann_prep first\n", pg);
			d->gt_k = dg;
		}
	} else {
		fprintf(stderr, "unknown data set '%s' (bigann10k, synth100k, "
			"synth1m, emb256, emb512, emb768)\n", name);
		rc = ANN_FAIL;
	}
	if (rc != ANN_OK)
		ann_data_free(d);
	return rc;
}

void ann_data_free(ann_data *d)
{
	free(d->base);
	free(d->queries);
	free(d->gt);
	d->base = d->queries = NULL;
	d->gt = NULL;
}

int ann_write_ivecs(const char *path, const int32_t *ids, size_t nq,
		    size_t k)
{
	char tmp[4200];
	snprintf(tmp, sizeof tmp, "%s.tmp%ld", path, (long)getpid());
	FILE *f = fopen(tmp, "wb");
	if (!f) {
		fprintf(stderr, "%s: %s\n", tmp, strerror(errno));
		return ANN_FAIL;
	}
	int32_t k32 = (int32_t)k;
	int ok = 1;
	for (size_t i = 0; i < nq && ok; i++)
		ok = fwrite(&k32, 4, 1, f) == 1 &&
		     fwrite(ids + i * k, 4, k, f) == k;
	if (fclose(f) != 0 || !ok || rename(tmp, path) != 0) {
		fprintf(stderr, "%s: write failed: %s\n", path,
			strerror(errno));
		remove(tmp);
		return ANN_FAIL;
	}
	return ANN_OK;
}

double ann_recall(const ann_data *d, const int64_t *res, size_t k)
{
	size_t hits = 0;
	for (size_t q = 0; q < d->nq; q++) {
		const int32_t *g = d->gt + q * d->gt_k;
		const int64_t *r = res + q * k;
		for (size_t i = 0; i < k; i++)
			for (size_t j = 0; j < k; j++)
				if (r[i] >= 0 && r[i] == g[j]) {
					hits++;
					break;
				}
	}
	return (double)hits / (double)(d->nq * k);
}

size_t ann_parse_efs(const char *arg, unsigned *efs, size_t cap)
{
	size_t n = 0;
	for (const char *p = arg; *p && n < cap;) {
		char *end;
		unsigned long e = strtoul(p, &end, 10);
		if (end == p || e == 0 || e > 1u << 20) {
			fprintf(stderr, "--efs: bad list '%s'\n", arg);
			return 0;
		}
		efs[n++] = (unsigned)e;
		p = *end == ',' ? end + 1 : end;
	}
	if (n == 0)
		fprintf(stderr, "--efs: empty list\n");
	return n;
}

int ann_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double ann_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

size_t ann_peak_rss(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (size_t)ru.ru_maxrss * 1024; /* Linux reports KiB */
}

size_t ann_cur_rss(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	unsigned long size, res;
	if (!f)
		return 0;
	int ok = fscanf(f, "%lu %lu", &size, &res) == 2;
	fclose(f);
	return ok ? (size_t)res * (size_t)sysconf(_SC_PAGESIZE) : 0;
}

double ann_thread_cpu(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

double ann_process_cpu(void)
{
	struct rusage ru;
	if (getrusage(RUSAGE_SELF, &ru) != 0)
		return 0;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}
