/*
 * train_bench.c -- training quality and time of the models of lib/model on
 * public data, against published anchors.
 *
 *  ML-1M under the NCF protocol (../shared/data/ncf): train on
 *  ml-1m.train.rating, score each test user's held-out item against its
 *  99 fixed negatives (ml-1m.test.rating + ml-1m.test.negative).
 *  ML-100K (../shared/data/ml-100k/u.data): each user's last interaction
 *  (by timestamp) held out, full ranking with training items excluded.
 *
 * Hyper-parameters are chosen on a validation split carved from the
 * training data (each user's last training interaction, against 99
 * negatives sampled from the user's non-training items with a fixed seed
 * for ML-1M; full ranking for ML-100K); the test files are read only
 * after the choice, and scored once.
 *
 * Two ALS variants are tuned and reported:
 *  - plain iALS (binary interactions, confidence 1 + alpha), comparable
 *    with the published iALS and MF anchors;
 *  - recency-weighted iALS: an interaction that is the user's r-th most
 *    recent weighs 1 + beta * 0.5^(r / half) (knytt_matrix_set_recency),
 *    so confidence favours what the user did last.
 *    Both data sets order each user's interactions in time (ML-1M's
 *    training file by its order column, ML-100K by timestamp), so this
 *    uses training data only; half and beta are tuned on validation like
 *    the rest.
 *
 * usage: train_bench [--quick] [--scores FILE] [--csv FILE] [--plot DIR]
 *                    [--data DIR] [--threads N]
 *                    [--try k,reg,alpha[,nu[,iters[,half,beta]]]]...
 *                    [--ensemble N] [--speed]
 *                    [--sasrec] [--sasrec-try d,blocks,len[,p[,ep[,lr]]]]...
 * --speed only times plain iALS with the numpy reference's settings.
 * --sasrec: ALS as --quick, then the sequence model (SASRec) with the
 * settings chosen on validation (sr_chosen; the epochs by the library's
 * early stopping on its own validation split, whose curve is printed),
 * in the same run on the same test; --scores then gets SASRec's scores.  --sasrec-try trains the
 * given settings on the validation split (each user's sequence without
 * its last training item), scores validation every 10 epochs, then
 * exits.  A full run (no --quick) reports SASRec after the ALS rows.
 * --try evaluates the given settings on the ML-1M validation split only
 * (and, with --ensemble N, the average of N seeds), then exits.
 */
#include <knytt.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* CPU seconds of every thread of the process (user + system). */
static double cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
	       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
}

static double last_cpu; /* CPU seconds of the last train_als() */

static long peak_rss_mb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss / 1024;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "train_bench: %s: %s (%s)\n", what, knytt_errmsg(),
		knytt_errname(rc));
	exit(1);
}

#define CHECK(call)                                                         \
	do {                                                                \
		int rc_ = (call);                                           \
		if (rc_ < 0)                                                \
			die(#call, rc_);                                    \
	} while (0)

/* ---- data ---- */

typedef struct inter {
	uint32_t u, i;
	int64_t t; /* time or order index */
} inter;

typedef struct dataset {
	inter *v;
	size_t n;
	uint32_t nusers, nitems;
} dataset;

static int read_tsv(const char *path, dataset *d, int one_based)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t cap = 1 << 20;
	d->v = malloc(cap * sizeof *d->v);
	d->n = 0;
	d->nusers = d->nitems = 0;
	unsigned long u, i;
	double r;
	long long t;
	while (fscanf(f, "%lu %lu %lf %lld", &u, &i, &r, &t) == 4) {
		if (d->n == cap)
			d->v = realloc(d->v, (cap *= 2) * sizeof *d->v);
		u -= (unsigned long)one_based;
		i -= (unsigned long)one_based;
		d->v[d->n++] = (inter){(uint32_t)u, (uint32_t)i, t};
		if (u + 1 > d->nusers)
			d->nusers = (uint32_t)u + 1;
		if (i + 1 > d->nitems)
			d->nitems = (uint32_t)i + 1;
	}
	fclose(f);
	return 0;
}

/* Index of each user's last interaction (largest t, later line on ties);
 * SIZE_MAX for users without one. */
static size_t *last_of(const dataset *d)
{
	size_t *last = malloc(d->nusers * sizeof *last);
	for (uint32_t u = 0; u < d->nusers; u++)
		last[u] = SIZE_MAX;
	for (size_t j = 0; j < d->n; j++) {
		size_t *l = &last[d->v[j].u];
		if (*l == SIZE_MAX || d->v[j].t >= d->v[*l].t)
			*l = j;
	}
	return last;
}

/*
 * Matrix of d without the entries flagged in skip (may be NULL), with the
 * library's recency weighting (knytt_matrix_set_recency) when half > 0:
 * the user's r-th most recent interaction weighs 1 + beta * 0.5^(r/half),
 * r counted in the user's time order (ML-1M's order column; ML-100K's
 * timestamps).
 */
static knytt_matrix *matrix_rw(const dataset *d, const unsigned char *skip,
			       uint32_t nusers, uint32_t nitems, float half,
			       float beta)
{
	knytt_matrix *m;
	CHECK(knytt_matrix_create(&m));
	if (half > 0)
		CHECK(knytt_matrix_set_recency(m, half, beta));
	for (size_t j = 0; j < d->n; j++)
		if (!skip || !skip[j])
			CHECK(knytt_matrix_add(m, d->v[j].u, d->v[j].i,
					       KNYTT_EVENT_VIEW, 1, d->v[j].t));
	CHECK(knytt_matrix_build(m, nusers, nitems));
	return m;
}

static knytt_matrix *matrix_of(const dataset *d, const unsigned char *skip,
			       uint32_t nusers, uint32_t nitems)
{
	return matrix_rw(d, skip, nusers, nitems, 0, 0);
}

/* Matrix of the flagged entries only. */
static knytt_matrix *matrix_only(const dataset *d, const unsigned char *keep,
				 uint32_t nusers, uint32_t nitems)
{
	knytt_matrix *m;
	CHECK(knytt_matrix_create(&m));
	for (size_t j = 0; j < d->n; j++)
		if (keep[j])
			CHECK(knytt_matrix_add(m, d->v[j].u, d->v[j].i,
					       KNYTT_EVENT_VIEW, 1, 0));
	CHECK(knytt_matrix_build(m, nusers, nitems));
	return m;
}

/* ---- popularity baseline ---- */

typedef struct pop {
	float *count;
	uint32_t n;
} pop;

static pop pop_of(const knytt_matrix *m)
{
	pop p = {calloc(knytt_matrix_items(m), sizeof(float)),
		 knytt_matrix_items(m)};
	for (uint32_t u = 0; u < knytt_matrix_users(m); u++) {
		const uint32_t *it;
		int n = knytt_matrix_row(m, u, &it, NULL);
		for (int j = 0; j < n; j++)
			p.count[it[j]] += 1;
	}
	return p;
}

static int pop_score(void *ctx, uint32_t user, const uint32_t *items,
		     size_t n, float *out)
{
	const pop *p = ctx;
	(void)user;
	for (size_t j = 0; j < n; j++) {
		uint32_t i = items ? items[j] : (uint32_t)j;
		out[j] = i < p->n ? p->count[i] : 0;
	}
	return 0;
}

/* ---- ALS runs ---- */

typedef struct cfg {
	unsigned k;
	float reg, alpha;
	unsigned iters;
	float nu;   /* reg exponent (frequency scaling), 0 = plain reg */
	float half; /* recency half-life in interactions, 0 = off */
	float beta; /* recency boost of the most recent interaction */
} cfg;

typedef struct curve {
	const knytt_loo *val; /* NULL: no per-epoch evaluation */
	const knytt_matrix *vtrain, *vtest; /* full-ranking validation */
	knytt_als *als;
	double loss[512], ndcg[512], t[512];
	unsigned n;
} curve;

static int on_epoch(void *ctx, const knytt_progress *p)
{
	curve *c = ctx;
	if (c->n >= 512)
		return 0;
	knytt_metrics m = {0};
	double t0 = now_s();
	if (c->val)
		knytt_eval_loo(c->val, 10, knytt_als_scorer, c->als, NULL, &m);
	else if (c->vtest)
		knytt_eval_full(c->vtrain, c->vtest, 10, knytt_als_scorer,
				c->als, &m);
	(void)t0;
	c->loss[c->n] = p->loss;
	c->ndcg[c->n] = m.ndcg;
	c->t[c->n] = p->elapsed;
	c->n++;
	return 0;
}

static uint64_t g_seed = 42; /* seed of the next train_als() */

/* Several ALS models of different seeds, scores averaged. */
typedef struct ens {
	knytt_als *m[16];
	unsigned n;
	float *tmp; /* scratch of the largest call */
} ens;

static int ens_score(void *ctx, uint32_t user, const uint32_t *items,
		     size_t n, float *out)
{
	ens *e = ctx;
	memset(out, 0, n * sizeof *out);
	for (unsigned j = 0; j < e->n; j++) {
		int rc = knytt_als_score(e->m[j], user, items, n, e->tmp);
		if (rc)
			return rc;
		for (size_t q = 0; q < n; q++)
			out[q] += e->tmp[q] / (float)e->n;
	}
	return 0;
}

static knytt_als *train_als(const knytt_matrix *m, cfg c, unsigned threads,
			    knytt_als_solver solver, curve *cv, double *secs)
{
	knytt_als *als;
	CHECK(knytt_als_create(&als));
	CHECK(knytt_als_set_factors(als, c.k));
	CHECK(knytt_als_set_reg(als, c.reg));
	CHECK(knytt_als_set_alpha(als, c.alpha));
	CHECK(knytt_als_set_reg_exponent(als, c.nu));
	CHECK(knytt_als_set_iterations(als, c.iters));
	CHECK(knytt_als_set_threads(als, threads));
	CHECK(knytt_als_set_seed(als, g_seed));
	CHECK(knytt_als_set_solver(als, solver, 3));
	if (cv) {
		cv->als = als;
		cv->n = 0;
		CHECK(knytt_als_set_progress(als, on_epoch, cv));
	}
	double t0 = now_s(), c0 = cpu_s();
	CHECK(knytt_als_train(als, m));
	*secs = now_s() - t0;
	last_cpu = cpu_s() - c0;
	return als;
}

/* Trains n models of cfg c with seeds 42.. and returns them as one. */
static ens *train_ens(const knytt_matrix *m, cfg c, unsigned n,
		      unsigned threads, double *secs)
{
	ens *e = calloc(1, sizeof *e);
	e->n = n;
	e->tmp = malloc(knytt_matrix_items(m) * sizeof(float) + 4096);
	*secs = 0;
	for (unsigned j = 0; j < n; j++) {
		double t;
		g_seed = 42 + j;
		e->m[j] = train_als(m, c, threads, KNYTT_ALS_CG, NULL, &t);
		*secs += t;
	}
	g_seed = 42;
	return e;
}

static void free_ens(ens *e)
{
	for (unsigned j = 0; j < e->n; j++)
		knytt_als_close(e->m[j]);
	free(e->tmp);
	free(e);
}

static unsigned n_ensemble = 5; /* models in the ensemble rows */

/* ---- output ---- */

static FILE *csv;

static void row(const char *data, const char *model, const char *params,
		double hr, double ndcg, double secs, long rss,
		const char *note)
{
	char ts[32] = "-", rs[32] = "-";
	if (secs >= 0)
		snprintf(ts, sizeof ts, "%.2f", secs);
	if (rss >= 0)
		snprintf(rs, sizeof rs, "%ld", rss);
	printf("%-8s %-24s %-26s %7.4f %7.4f %8s %7s  %s\n", data, model,
	       params, hr, ndcg, ts, rs, note);
	if (csv)
		fprintf(csv, "%s,%s,\"%s\",%.4f,%.4f,%s,%s,\"%s\"\n", data,
			model, params, hr, ndcg, ts, rs, note);
}

static void header(void)
{
	printf("%-8s %-24s %-26s %7s %7s %8s %7s  %s\n", "data", "model",
	       "params", "HR@10", "NDCG@10", "train_s", "rss_MB", "note");
	if (csv)
		fprintf(csv, "data,model,params,hr10,ndcg10,train_s,rss_mb,"
			     "note\n");
}

static void plot(const char *dir, const char *name, const curve *c)
{
	char dat[512], png[512], cmd[2048];
	snprintf(dat, sizeof dat, "%s/%s.dat", dir, name);
	snprintf(png, sizeof png, "%s/%s.png", dir, name);
	FILE *f = fopen(dat, "w");
	if (!f)
		return;
	for (unsigned e = 0; e < c->n; e++)
		fprintf(f, "%u %.6g %.6f\n", e + 1, c->loss[e], c->ndcg[e]);
	fclose(f);
	snprintf(cmd, sizeof cmd,
		 "gnuplot -e \"set terminal png size 800,500 noenhanced; set output "
		 "'%s'; set xlabel 'epoch'; set ylabel 'training loss'; set "
		 "y2label 'validation NDCG@10'; set y2tics; set ytics nomirror; "
		 "set title '%s'; plot '%s' u 1:2 w lp t 'loss' axes x1y1, "
		 "'' u 1:3 w lp t 'val NDCG@10' axes x1y2\" 2>/dev/null",
		 png, name, dat);
	if (system(cmd) == 0)
		printf("# plot: %s\n", png);
	else
		printf("# gnuplot failed or absent: no %s\n", png);
}

/* ---- ML-1M, NCF protocol ---- */

/* The plain iALS setting a full run chose on validation (the default of
 * an untuned run). */
static const cfg QUICK = {.k = 128, .reg = 30, .alpha = 1, .iters = 15};

/* --try k,reg,alpha,nu,iters (repeatable): evaluate on validation only */
static cfg tries[256];
static size_t ntries;

/* The grid a full run searches. */
static size_t default_grid(cfg *g)
{
	static const unsigned ks[] = {64, 128};
	static const float regs[] = {0.1f, 1, 10, 30, 100};
	static const float alphas[] = {1, 2, 4, 8, 16};
	size_t n = 0;
	for (size_t a = 0; a < 2; a++)
		for (size_t b = 0; b < 5; b++)
			for (size_t c = 0; c < 5; c++)
				g[n++] = (cfg){.k = ks[a],
					       .reg = regs[b],
					       .alpha = alphas[c],
					       .iters = 15};
	return n;
}

static knytt_loo *val_negatives(const dataset *d, const size_t *last,
				const knytt_matrix *full)
{
	/* 99 negatives per user, uniform over the items the user has no
	 * training interaction with, fixed seed. */
	uint32_t nu = d->nusers, ni = d->nitems;
	uint32_t *users = malloc(nu * sizeof *users);
	uint32_t *items = malloc(nu * sizeof *items);
	uint32_t *negs = malloc((size_t)nu * 99 * sizeof *negs);
	unsigned char *seen = calloc(ni, 1);
	uint64_t s = 2024;
	size_t n = 0;
	for (uint32_t u = 0; u < nu; u++) {
		if (last[u] == SIZE_MAX)
			continue;
		const uint32_t *it;
		int c = knytt_matrix_row(full, u, &it, NULL);
		for (int j = 0; j < c; j++)
			seen[it[j]] = 1;
		users[n] = u;
		items[n] = d->v[last[u]].i;
		for (int q = 0; q < 99;) {
			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			uint32_t i = (uint32_t)((s >> 33) % ni);
			if (!seen[i]) {
				negs[n * 99 + (size_t)q++] = i;
			}
		}
		for (int j = 0; j < c; j++)
			seen[it[j]] = 0;
		n++;
	}
	knytt_loo *t;
	CHECK(knytt_loo_create(n, users, items, 99, negs, &t));
	free(users);
	free(items);
	free(negs);
	free(seen);
	return t;
}

static int write_scores(const char *path, const knytt_loo *t,
			const float *sc)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	size_t m = 1 + knytt_loo_negatives(t);
	for (size_t j = 0; j < knytt_loo_count(t); j++) {
		uint32_t u;
		knytt_loo_case(t, j, &u, NULL, NULL);
		for (size_t q = 0; q < m; q++)
			fprintf(f, "%s%.9g", q ? "\t" : "", sc[j * m + q]);
		fputc('\n', f);
	}
	return fclose(f);
}

static void cfg_str(const cfg *c, char *buf, size_t cap)
{
	int n = snprintf(buf, cap, "k=%u reg=%g a=%g", c->k, c->reg, c->alpha);
	if (c->nu > 0 && n > 0 && (size_t)n < cap)
		n += snprintf(buf + n, cap - (size_t)n, " nu=%g", c->nu);
	if (c->half > 0 && n > 0 && (size_t)n < cap)
		snprintf(buf + n, cap - (size_t)n, " rec=%g,%g", c->half,
			 c->beta);
}

/* Validation NDCG@10 of one setting (prints a line). */
static double val_run(const knytt_matrix *vtrain, const knytt_loo *val,
		      cfg g, unsigned threads)
{
	double secs;
	knytt_als *als = train_als(vtrain, g, threads, KNYTT_ALS_CG, NULL,
				   &secs);
	knytt_metrics m;
	CHECK(knytt_eval_loo(val, 10, knytt_als_scorer, als, NULL, &m));
	char p[128];
	cfg_str(&g, p, sizeof p);
	printf("#  %-38s it=%-2u val HR@10 %.4f NDCG@10 %.4f  %.2fs\n", p,
	       g.iters, m.hr, m.ndcg, secs);
	knytt_als_close(als);
	if (ntries && n_ensemble > 1) {
		ens *e = train_ens(vtrain, g, n_ensemble, threads, &secs);
		CHECK(knytt_eval_loo(val, 10, ens_score, e, NULL, &m));
		printf("#   ensemble of %u: val HR@10 %.4f NDCG@10 %.4f\n",
		       n_ensemble, m.hr, m.ndcg);
		free_ens(e);
	}
	return m.ndcg;
}

/* The recency-weighted setting a full run chose on validation (val
 * NDCG@10 0.5593, against 0.4633 for the best plain setting); --quick
 * trains it directly. */
static const cfg QUICK_REC = {.k = 128, .reg = 100, .alpha = 2, .iters = 15,
			      .half = 3, .beta = 100};

static double median5(double *t)
{
	for (int a = 0; a < 5; a++)
		for (int b = a + 1; b < 5; b++)
			if (t[b] < t[a]) {
				double x = t[a];
				t[a] = t[b];
				t[b] = x;
			}
	return t[2];
}

/*
 * The speed target in isolation: plain iALS with the numpy reference's
 * settings (64 factors, reg 10, alpha 2, 15 sweeps; 19 s on 2 cores,
 * HR@10 0.7172, NDCG@10 0.4442), trained 5 times on 2 threads.
 */
static void speed(const char *dir)
{
	char ptrain[1024], ptest[1024], pneg[1024];
	snprintf(ptrain, sizeof ptrain, "%s/ncf/ml-1m.train.rating", dir);
	snprintf(ptest, sizeof ptest, "%s/ncf/ml-1m.test.rating", dir);
	snprintf(pneg, sizeof pneg, "%s/ncf/ml-1m.test.negative", dir);
	dataset d;
	knytt_loo *test;
	if (read_tsv(ptrain, &d, 0) != 0 ||
	    knytt_loo_load_ncf(ptest, pneg, &test) != 0) {
		printf("# SKIP speed: ML-1M NCF files absent under %s/ncf\n",
		       dir);
		return;
	}
	knytt_matrix *m = matrix_of(&d, NULL, d.nusers, 3706);
	cfg c = {.k = 64, .reg = 10, .alpha = 2, .iters = 15};
	double t[5], cp[5];
	knytt_als *als = NULL;
	for (int r = 0; r < 5; r++) {
		knytt_als_close(als);
		als = train_als(m, c, 2, KNYTT_ALS_CG, NULL, &t[r]);
		cp[r] = last_cpu;
	}
	knytt_metrics x;
	CHECK(knytt_eval_loo(test, 10, knytt_als_scorer, als, NULL, &x));
	double tm = median5(t), cm = median5(cp);
	char note[96];
	snprintf(note, sizeof note, "median of 5; CPU %.2f s; 19 s / wall = "
				    "%.0fx",
		 cm, 19.0 / tm);
	row("ml-1m", "ALS CG, numpy settings", "k=64 reg=10 a=2 it=15", x.hr,
	    x.ndcg, tm, peak_rss_mb(), note);
	/* Fold-in, as the engine runs it on every feedback event: every
	 * user once, from a zero start (a new user). */
	float v[64];
	double f0 = now_s();
	size_t total = 0;
	for (uint32_t u = 0; u < knytt_matrix_users(m); u++) {
		const uint32_t *it;
		const float *w;
		int n = knytt_matrix_row(m, u, &it, &w);
		memset(v, 0, sizeof v);
		CHECK(knytt_als_fold_in(als, (size_t)n, it, w, v));
		total += (size_t)n;
	}
	double per = (now_s() - f0) / knytt_matrix_users(m);
	printf("# fold-in: %.1f us per user (mean %.0f items, 64 factors, "
	       "CG 3 steps, 1 thread)\n",
	       per * 1e6, (double)total / knytt_matrix_users(m));
	knytt_als_close(als);
	knytt_loo_close(test);
	knytt_matrix_close(m);
	free(d.v);
}

static int by_user_time(const void *a, const void *b);

/* ---- the sequence model (SASRec) on ML-1M ---- */

/* Settings of one SASRec run; every > 0: the library's early stopping
 * (knytt_sasrec_set_early_stop), epochs then the most. */
typedef struct srcfg {
	unsigned dim, blocks, len, epochs;
	float dropout, lr;
	unsigned every, patience;
} srcfg;

/* The paper's ML-1M setting (d 50, 2 blocks, L 200, dropout 0.2, lr
 * 0.001, up to the paper's 200 epochs); the epochs are chosen by the
 * library's early stopping on its own validation split (each user's
 * last training item against 100 sampled negatives, NDCG@10 every 5
 * epochs, stop after 4 evaluations without a better one, the best
 * weights kept).  The test never takes part in the choice.  Earlier,
 * by hand (--sasrec-try 50,2,200,0.2,60): validation NDCG@10 0.449 ..
 * 0.605 at epochs 10 .. 60, still rising. */
static srcfg sr_chosen = {.dim = 50, .blocks = 2, .len = 200, .epochs = 200,
			  .dropout = 0.2f, .lr = 0.001f, .every = 5,
			  .patience = 4};
static srcfg sr_tries[64];
static size_t sr_ntries;
static int sr_only; /* --sasrec: quick ALS, then the sequence model */

/* Each user's items in time order (the order column), as CSR. */
typedef struct seqs {
	size_t *off; /* nusers + 1 */
	uint32_t *items;
	uint32_t nusers;
} seqs;

static seqs seqs_of(const dataset *d)
{
	inter **o = malloc(d->n * sizeof *o);
	for (size_t j = 0; j < d->n; j++)
		o[j] = &d->v[j];
	qsort(o, d->n, sizeof *o, by_user_time);
	seqs s = {calloc(d->nusers + 1, sizeof(size_t)),
		  malloc(d->n * sizeof(uint32_t)), d->nusers};
	for (size_t j = 0; j < d->n; j++) {
		s.items[j] = o[j]->i;
		s.off[o[j]->u + 1]++;
	}
	for (uint32_t u = 0; u < d->nusers; u++)
		s.off[u + 1] += s.off[u];
	free(o);
	return s;
}

/* The same without each user's last item (the validation split). */
static seqs seqs_drop_last(const seqs *a)
{
	seqs s = {calloc(a->nusers + 1, sizeof(size_t)),
		  malloc(a->off[a->nusers] * sizeof(uint32_t)), a->nusers};
	for (uint32_t u = 0; u < a->nusers; u++) {
		size_t n = a->off[u + 1] - a->off[u];
		n = n ? n - 1 : 0;
		memcpy(s.items + s.off[u], a->items + a->off[u], n * 4);
		s.off[u + 1] = s.off[u] + n;
	}
	return s;
}

typedef struct sr_ctx {
	const knytt_sasrec *m;
	const seqs *s;
	const knytt_loo *val; /* per-epoch validation, or NULL */
	unsigned every;
	double best;
	unsigned best_epoch;
} sr_ctx;

static int sr_score(void *ctx, uint32_t user, const uint32_t *items,
		    size_t n, float *out)
{
	const sr_ctx *c = ctx;
	const seqs *s = c->s;
	size_t len = s->off[user + 1] - s->off[user];
	if (len == 0) { /* no history: every candidate alike */
		for (size_t j = 0; j < n; j++)
			out[j] = 0;
		return 0;
	}
	return knytt_sasrec_score(c->m, s->items + s->off[user], len, items,
				  n, out);
}

static int sr_epoch(void *ctx, const knytt_progress *p)
{
	sr_ctx *c = ctx;
	if (!c->val || (p->epoch % c->every && p->epoch != p->epochs))
		return 0;
	knytt_metrics m;
	CHECK(knytt_eval_loo(c->val, 10, sr_score, c, NULL, &m));
	printf("#   epoch %3u loss %.4f  val HR@10 %.4f NDCG@10 %.4f  "
	       "%.0fs\n",
	       p->epoch, p->loss, m.hr, m.ndcg, p->elapsed);
	if (m.ndcg > c->best) {
		c->best = m.ndcg;
		c->best_epoch = p->epoch;
	}
	return 0;
}

/* The library's own validation, printed when one was due. */
static int sr_es_epoch(void *ctx, const knytt_progress *p)
{
	const knytt_sasrec *m = ctx;
	unsigned ep;
	double hr, ndcg;
	if (knytt_sasrec_validation(m, 0, &ep, &hr, &ndcg) == 0 &&
	    ep == p->epoch) {
		printf("#   epoch %3u loss %.4f  val HR@10 %.4f NDCG@10 %.4f  "
		       "%.0fs\n",
		       p->epoch, p->loss, hr, ndcg, p->elapsed);
		fflush(stdout);
	}
	return 0;
}

static knytt_sasrec *sr_train(const seqs *s, uint32_t ni, srcfg g,
			      unsigned threads, sr_ctx *c, double *secs)
{
	knytt_sasrec *m;
	CHECK(knytt_sasrec_create(&m));
	CHECK(knytt_sasrec_set_dim(m, g.dim));
	CHECK(knytt_sasrec_set_blocks(m, g.blocks));
	CHECK(knytt_sasrec_set_max_len(m, g.len));
	CHECK(knytt_sasrec_set_dropout(m, g.dropout));
	CHECK(knytt_sasrec_set_learning_rate(m, g.lr));
	CHECK(knytt_sasrec_set_epochs(m, g.epochs));
	CHECK(knytt_sasrec_set_threads(m, threads));
	CHECK(knytt_sasrec_set_early_stop(m, g.every, g.patience));
	if (g.every)
		CHECK(knytt_sasrec_set_progress(m, sr_es_epoch, m));
	if (c) {
		c->m = m;
		CHECK(knytt_sasrec_set_progress(m, sr_epoch, c));
	}
	double t0 = now_s();
	CHECK(knytt_sasrec_train(m, ni, s->nusers, s->off, s->items));
	*secs = now_s() - t0;
	return m;
}

static void sr_str(const srcfg *g, char *buf, size_t cap)
{
	snprintf(buf, cap, "d=%u b=%u L=%u p=%g lr=%g ep=%u", g->dim,
		 g->blocks, g->len, g->dropout, g->lr, g->epochs);
}

/* The epochs early stopping kept (g->epochs on return) and where it
 * stopped. */
static void sr_stopped(const knytt_sasrec *m, srcfg *g)
{
	unsigned best, last;
	double hr, ndcg;
	if (knytt_sasrec_validation(m, 1, &best, &hr, &ndcg) != 0 ||
	    knytt_sasrec_validation(m, 0, &last, NULL, NULL) != 0)
		return;
	printf("# early stopping: best val HR@10 %.4f NDCG@10 %.4f at epoch "
	       "%u, stopped after epoch %u of at most %u\n",
	       hr, ndcg, best, last, g->epochs);
	g->epochs = best;
}

/* Validation: each try trained on the sequences without their last
 * item, scored every 10 epochs; the best (settings, epoch) is kept. */
static void sr_validate(const seqs *all, uint32_t ni, const knytt_loo *val,
			unsigned threads)
{
	seqs vs = seqs_drop_last(all);
	double best = -1;
	for (size_t k = 0; k < sr_ntries; k++) {
		char p[128];
		sr_str(&sr_tries[k], p, sizeof p);
		printf("# SASRec validation %s:\n", p);
		sr_ctx c = {.s = &vs, .val = val, .every = 10, .best = -1};
		double secs;
		knytt_sasrec_close(sr_train(&vs, ni, sr_tries[k], threads, &c,
					    &secs));
		printf("#   best val NDCG@10 %.4f at epoch %u (%.0fs)\n",
		       c.best, c.best_epoch, secs);
		if (c.best > best) {
			best = c.best;
			sr_chosen = sr_tries[k];
			sr_chosen.epochs = c.best_epoch;
		}
	}
	free(vs.off);
	free(vs.items);
}

/* The chosen settings on all the training sequences, the test once. */
static void sr_test(const seqs *all, uint32_t ni, const knytt_loo *test,
		    unsigned threads, const char *scores)
{
	double secs, cpu0 = cpu_s();
	if (sr_chosen.every)
		printf("# SASRec: early stopping on the library's validation "
		       "split, every %u epochs, patience %u:\n",
		       sr_chosen.every, sr_chosen.patience);
	knytt_sasrec *m = sr_train(all, ni, sr_chosen, threads, NULL, &secs);
	double cpu = cpu_s() - cpu0;
	sr_stopped(m, &sr_chosen);
	sr_ctx c = {.m = m, .s = all};
	size_t m1 = 1 + knytt_loo_negatives(test);
	float *sc = malloc(knytt_loo_count(test) * m1 * sizeof *sc);
	knytt_metrics x;
	CHECK(knytt_eval_loo(test, 10, sr_score, &c, sc, &x));
	char params[128], note[96];
	sr_str(&sr_chosen, params, sizeof params);
	snprintf(note, sizeof note, "CPU %.0f s; anchor 0.8245 / 0.5905",
		 cpu);
	row("ml-1m", "SASRec (sequence)", params, x.hr, x.ndcg, secs,
	    peak_rss_mb(), note);
	if (scores && write_scores(scores, test, sc) != 0)
		fprintf(stderr, "train_bench: cannot write %s\n", scores);
	printf("SUMMARY ml-1m NCF SASRec %s HR@10=%.4f NDCG@10=%.4f "
	       "train=%.1fs cpu=%.1fs threads=%u peak_rss=%ldMB\n",
	       params, x.hr, x.ndcg, secs, cpu, threads, peak_rss_mb());
	free(sc);
	knytt_sasrec_close(m);
}

static void ml1m(const char *dir, int quick, const char *scores,
		 unsigned threads, const char *plotdir)
{
	char ptrain[1024], ptest[1024], pneg[1024];
	snprintf(ptrain, sizeof ptrain, "%s/ncf/ml-1m.train.rating", dir);
	snprintf(ptest, sizeof ptest, "%s/ncf/ml-1m.test.rating", dir);
	snprintf(pneg, sizeof pneg, "%s/ncf/ml-1m.test.negative", dir);
	dataset d;
	if (read_tsv(ptrain, &d, 0) != 0) {
		printf("# SKIP ML-1M/NCF: %s absent\n", ptrain);
		return;
	}
	FILE *tf = fopen(ptest, "r"), *nf = fopen(pneg, "r");
	if (!tf || !nf) {
		printf("# SKIP ML-1M/NCF: %s or %s absent\n", ptest, pneg);
		if (tf)
			fclose(tf);
		if (nf)
			fclose(nf);
		return;
	}
	fclose(tf);
	fclose(nf);
	/* Item ids run to 3705 (3,706 items) though 2 never occur in
	 * training; the negatives may name them. */
	uint32_t nu = d.nusers, ni = d.nitems < 3706 ? 3706 : d.nitems;
	d.nitems = ni;
	knytt_matrix *full = matrix_of(&d, NULL, nu, ni);
	cfg best = QUICK, best_rec = QUICK_REC;
	double bestv = -1, bestv_rec = -1;
	seqs all = seqs_of(&d);

	if (sr_ntries) {
		/* SASRec settings on validation only, like --try */
		size_t *last = last_of(&d);
		knytt_loo *val = val_negatives(&d, last, full);
		sr_validate(&all, ni, val, threads);
		printf("# --sasrec-try given: validation only\n");
		exit(0);
	}
	if (!quick) {
		/* Validation: each user's last training interaction. */
		size_t *last = last_of(&d);
		unsigned char *skip = calloc(d.n, 1);
		for (uint32_t u = 0; u < nu; u++)
			if (last[u] != SIZE_MAX)
				skip[last[u]] = 1;
		knytt_loo *val = val_negatives(&d, last, full);
		printf("# validation (ML-1M, each user's last training item "
		       "vs 99 sampled negatives):\n");
		if (ntries) {
			for (size_t gi = 0; gi < ntries; gi++) {
				knytt_matrix *vt =
					matrix_rw(&d, skip, nu, ni,
						  tries[gi].half, tries[gi].beta);
				val_run(vt, val, tries[gi], threads);
				knytt_matrix_close(vt);
			}
			printf("# --try given: validation only\n");
			exit(0);
		}
		/* (a) plain iALS, as the published anchors. */
		knytt_matrix *vtrain = matrix_of(&d, skip, nu, ni);
		cfg grid[256];
		size_t ng = default_grid(grid);
		for (size_t gi = 0; gi < ng; gi++) {
			double v = val_run(vtrain, val, grid[gi], threads);
			if (v > bestv) {
				bestv = v;
				best = grid[gi];
			}
		}
		/* (b) recency-weighted confidence: the training file orders
		 * each user's interactions in time (column 4). */
		static const float halves[] = {3, 5, 10};
		static const float betas[] = {10, 30, 100};
		static const float regs[] = {30, 100, 300};
		static const float alphas[] = {2, 4, 8};
		for (size_t h = 0; h < 3; h++)
			for (size_t b = 0; b < 3; b++) {
				knytt_matrix *vt = matrix_rw(
					&d, skip, nu, ni, halves[h], betas[b]);
				for (size_t r = 0; r < 3; r++)
					for (size_t a = 0; a < 3; a++) {
						cfg g = {.k = 64,
							 .reg = regs[r],
							 .alpha = alphas[a],
							 .iters = 15,
							 .half = halves[h],
							 .beta = betas[b]};
						double v = val_run(vt, val, g,
								   threads);
						if (v > bestv_rec) {
							bestv_rec = v;
							best_rec = g;
						}
					}
				knytt_matrix_close(vt);
			}
		/* the best of (b) with 128 factors */
		{
			cfg g = best_rec;
			g.k = 128;
			knytt_matrix *vt = matrix_rw(&d, skip, nu, ni, g.half,
						     g.beta);
			double v = val_run(vt, val, g, threads);
			if (v > bestv_rec) {
				bestv_rec = v;
				best_rec = g;
			}
			knytt_matrix_close(vt);
		}
		char p1[128], p2[128];
		cfg_str(&best, p1, sizeof p1);
		cfg_str(&best_rec, p2, sizeof p2);
		printf("# chosen on validation: plain %s (val NDCG@10 %.4f); "
		       "recency-weighted %s (val NDCG@10 %.4f)\n",
		       p1, bestv, p2, bestv_rec);
		/* Per-epoch curves of both choices on validation. */
		for (int c = 0; c < 2; c++) {
			curve *cv = calloc(1, sizeof *cv);
			cv->val = val;
			double secs;
			cfg g = c ? best_rec : best;
			g.iters = 30;
			knytt_matrix *vt =
				matrix_rw(&d, skip, nu, ni, g.half, g.beta);
			knytt_als_close(train_als(vt, g, threads, KNYTT_ALS_CG,
						  cv, &secs));
			if (plotdir)
				plot(plotdir,
				     c ? "ml1m_als_recency_epochs"
				       : "ml1m_als_epochs",
				     cv);
			knytt_matrix_close(vt);
			free(cv);
		}
		knytt_loo_close(val);
		knytt_matrix_close(vtrain);
		free(skip);
		free(last);
	}

	/* The test, scored once per model. */
	knytt_loo *test;
	CHECK(knytt_loo_load_ncf(ptest, pneg, &test));
	size_t m1 = 1 + knytt_loo_negatives(test);
	float *sc = malloc(knytt_loo_count(test) * m1 * sizeof *sc);
	knytt_metrics m;
	char params[128];
	double secs;
	knytt_als *als;
	if (!quick) {
		pop p = pop_of(full);
		CHECK(knytt_eval_loo(test, 10, pop_score, &p, NULL, &m));
		row("ml-1m", "popularity", "-", m.hr, m.ndcg, -1, -1, "");
		free(p.count);
		als = train_als(full, best, threads, KNYTT_ALS_CG, NULL, &secs);
		CHECK(knytt_eval_loo(test, 10, knytt_als_scorer, als, NULL,
				     &m));
		cfg_str(&best, params, sizeof params);
		row("ml-1m", "ALS plain iALS", params, m.hr, m.ndcg, secs,
		    peak_rss_mb(), "chosen on validation");
		knytt_als_close(als);
	}
	/* The overall choice: recency-weighted, if validation prefers it
	 * (a --quick run uses the choice of the last full run). */
	cfg ch = (quick || bestv_rec > bestv) ? best_rec : best;
	knytt_matrix *trw = matrix_rw(&d, NULL, nu, ni, ch.half, ch.beta);
	als = train_als(trw, ch, threads, KNYTT_ALS_CG, NULL, &secs);
	double cpu = last_cpu;
	CHECK(knytt_eval_loo(test, 10, knytt_als_scorer, als, sc, &m));
	cfg_str(&ch, params, sizeof params);
	row("ml-1m", ch.half > 0 ? "ALS recency-weighted" : "ALS plain iALS",
	    params, m.hr, m.ndcg, secs, peak_rss_mb(),
	    sr_only ? "chosen overall" : "chosen overall; scores file");
	if (scores && !sr_only) {
		if (write_scores(scores, test, sc) != 0)
			fprintf(stderr, "train_bench: cannot write %s\n",
				scores);
		else
			printf("# scores: %s (%zu users x %zu: held-out "
			       "first, then the negatives in file order)\n",
			       scores, knytt_loo_count(test), m1);
	}
	if (!quick || sr_only)
		sr_test(&all, ni, test, threads, sr_only ? scores : NULL);
	free(all.off);
	free(all.items);
	if (quick)
		printf("SUMMARY ml-1m NCF ALS %s iters=%u HR@10=%.4f "
		       "NDCG@10=%.4f train=%.2fs cpu=%.2fs threads=%u "
		       "peak_rss=%ldMB\n",
		       params, ch.iters, m.hr, m.ndcg, secs, cpu, threads,
		       peak_rss_mb());
	knytt_als_close(als);
	if (!quick) {
		/* Speed: 64 factors, 15 sweeps, 2 threads, median of 5; the
		 * exact Cholesky solver for comparison. */
		cfg s64 = ch;
		s64.k = 64;
		s64.iters = 15;
		double t[5], c5[5];
		for (int r = 0; r < 5; r++) {
			als = train_als(trw, s64, 2, KNYTT_ALS_CG, NULL, &t[r]);
			c5[r] = last_cpu;
			if (r < 4)
				knytt_als_close(als);
		}
		for (int a = 0; a < 5; a++)
			for (int b = a + 1; b < 5; b++) {
				if (t[b] < t[a]) {
					double x = t[a];
					t[a] = t[b];
					t[b] = x;
				}
				if (c5[b] < c5[a]) {
					double x = c5[a];
					c5[a] = c5[b];
					c5[b] = x;
				}
			}
		CHECK(knytt_eval_loo(test, 10, knytt_als_scorer, als, NULL,
				     &m));
		cfg_str(&s64, params, sizeof params);
		char note[96];
		/* On a shared machine the wall time depends on the load;
		 * the CPU time does not. */
		snprintf(note, sizeof note,
			 "median of 5; CPU %.2f s; numpy 19 s / wall = %.0fx",
			 c5[2], 19.0 / t[2]);
		row("ml-1m", "ALS CG 64f 2 threads", params, m.hr, m.ndcg,
		    t[2], peak_rss_mb(), note);
		knytt_als_close(als);
		als = train_als(trw, s64, 2, KNYTT_ALS_CHOLESKY, NULL, &secs);
		CHECK(knytt_eval_loo(test, 10, knytt_als_scorer, als, NULL,
				     &m));
		row("ml-1m", "ALS Cholesky 64f 2 thr", params, m.hr, m.ndcg,
		    secs, peak_rss_mb(), "exact row solves");
		knytt_als_close(als);
		/* Published anchors, same protocol, for the table. */
		row("ml-1m", "anchor: popularity", "published", 0.4535, 0.2543,
		    -1, -1, "");
		row("ml-1m", "anchor: iALS Rendle'20", "published", 0.7111,
		    0.4383, -1, -1, "");
		row("ml-1m", "anchor: EASE", "measured by lead", 0.7182, 0.4511,
		    -1, -1, "");
		row("ml-1m", "anchor: iALS numpy", "k=128 reg=100 a=16", 0.7235,
		    0.4453, 53, -1, "2 cores");
		row("ml-1m", "anchor: iALS numpy", "k=64 reg=10 a=2", 0.7172,
		    0.4442, 19, -1, "2 cores");
		row("ml-1m", "anchor: NeuMF", "He et al. 2017", 0.730, 0.447,
		    -1, -1, "");
		row("ml-1m", "anchor: MF Rendle'20", "best published", 0.7294,
		    0.4523, -1, -1, "");
	}
	knytt_matrix_close(trw);
	free(sc);
	knytt_loo_close(test);
	knytt_matrix_close(full);
	free(d.v);
}

/* ---- ML-100K, full ranking, last interaction held out ---- */

/* Replaces each time by its rank in the user's time order (ties by line
 * order), so recency counts interactions, as ML-1M's order index does. */
static int by_user_time(const void *a, const void *b)
{
	const inter *x = *(inter *const *)a, *y = *(inter *const *)b;
	if (x->u != y->u)
		return x->u < y->u ? -1 : 1;
	if (x->t != y->t)
		return x->t < y->t ? -1 : 1;
	return x < y ? -1 : x > y;
}

static void rank_times(dataset *d)
{
	inter **o = malloc(d->n * sizeof *o);
	for (size_t j = 0; j < d->n; j++)
		o[j] = &d->v[j];
	qsort(o, d->n, sizeof *o, by_user_time);
	int64_t r = 0;
	for (size_t j = 0; j < d->n; j++) {
		r = (j > 0 && o[j - 1]->u == o[j]->u) ? r + 1 : 0;
		o[j]->t = r;
	}
	free(o);
}

static void ml100k(const char *dir, unsigned threads, const char *plotdir)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/ml-100k/u.data", dir);
	dataset d;
	if (read_tsv(path, &d, 1) != 0) {
		printf("# SKIP ML-100K: %s absent\n", path);
		return;
	}
	rank_times(&d);
	uint32_t nu = d.nusers, ni = d.nitems;
	size_t *last = last_of(&d);
	unsigned char *test_flag = calloc(d.n, 1);
	for (uint32_t u = 0; u < nu; u++)
		if (last[u] != SIZE_MAX)
			test_flag[last[u]] = 1;
	/* Validation inside training: the last of what remains. */
	dataset tr = {malloc(d.n * sizeof(inter)), 0, nu, ni};
	for (size_t j = 0; j < d.n; j++)
		if (!test_flag[j])
			tr.v[tr.n++] = d.v[j];
	size_t *vlast = last_of(&tr);
	unsigned char *val_flag = calloc(tr.n, 1);
	for (uint32_t u = 0; u < nu; u++)
		if (vlast[u] != SIZE_MAX)
			val_flag[vlast[u]] = 1;
	knytt_matrix *vtest = matrix_only(&tr, val_flag, nu, ni);
	static const unsigned ks[] = {32, 64};
	static const float regs[] = {1, 10, 30, 100};
	static const float alphas[] = {1, 4, 16};
	static const float halves[] = {3, 10}, betas[] = {10, 100};
	cfg grid[128];
	size_t ng = 0;
	for (size_t a = 0; a < 2; a++)
		for (size_t b = 0; b < 4; b++)
			for (size_t c = 0; c < 3; c++)
				grid[ng++] = (cfg){.k = ks[a],
						   .reg = regs[b],
						   .alpha = alphas[c],
						   .iters = 15};
	size_t nplain = ng;
	for (size_t h = 0; h < 2; h++)
		for (size_t e = 0; e < 2; e++)
			for (size_t b = 1; b < 4; b++)
				for (size_t c = 0; c < 2; c++)
					grid[ng++] = (cfg){.k = 64,
							   .reg = regs[b],
							   .alpha = alphas[c],
							   .iters = 15,
							   .half = halves[h],
							   .beta = betas[e]};
	cfg best[2] = {grid[0], grid[nplain]};
	double bestv[2] = {-1, -1};
	for (size_t gi = 0; gi < ng; gi++) {
		cfg g = grid[gi];
		knytt_matrix *vt =
			matrix_rw(&tr, val_flag, nu, ni, g.half, g.beta);
		double secs;
		knytt_als *als =
			train_als(vt, g, threads, KNYTT_ALS_CG, NULL, &secs);
		knytt_metrics m;
		CHECK(knytt_eval_full(vt, vtest, 10, knytt_als_scorer, als,
				      &m));
		int kind = gi >= nplain;
		if (m.ndcg > bestv[kind]) {
			bestv[kind] = m.ndcg;
			best[kind] = g;
		}
		knytt_als_close(als);
		knytt_matrix_close(vt);
	}
	char p0[128], p1[128];
	cfg_str(&best[0], p0, sizeof p0);
	cfg_str(&best[1], p1, sizeof p1);
	printf("# ML-100K chosen on validation (full ranking): plain %s "
	       "(val NDCG@10 %.4f); recency-weighted %s (%.4f)\n",
	       p0, bestv[0], p1, bestv[1]);
	if (plotdir) {
		curve *cv = calloc(1, sizeof *cv);
		cfg g = bestv[1] > bestv[0] ? best[1] : best[0];
		knytt_matrix *vt =
			matrix_rw(&tr, val_flag, nu, ni, g.half, g.beta);
		cv->vtrain = vt;
		cv->vtest = vtest;
		double secs;
		g.iters = 30;
		knytt_als_close(
			train_als(vt, g, threads, KNYTT_ALS_CG, cv, &secs));
		plot(plotdir, "ml100k_als_epochs", cv);
		knytt_matrix_close(vt);
		free(cv);
	}
	knytt_matrix *train = matrix_of(&d, test_flag, nu, ni);
	knytt_matrix *test = matrix_only(&d, test_flag, nu, ni);
	knytt_metrics m;
	pop p = pop_of(train);
	CHECK(knytt_eval_full(train, test, 10, pop_score, &p, &m));
	char note[96];
	snprintf(note, sizeof note, "recall %.4f MAP %.4f cov %.3f", m.recall,
		 m.map, m.coverage);
	row("ml-100k", "popularity", "full ranking", m.hr, m.ndcg, -1, -1,
	    note);
	free(p.count);
	for (int kind = 0; kind < 2; kind++) {
		knytt_matrix *tw = matrix_rw(&d, test_flag, nu, ni,
					     best[kind].half, best[kind].beta);
		double secs;
		knytt_als *als = train_als(tw, best[kind], threads,
					   KNYTT_ALS_CG, NULL, &secs);
		CHECK(knytt_eval_full(tw, test, 10, knytt_als_scorer, als, &m));
		char params[128];
		cfg_str(&best[kind], params, sizeof params);
		snprintf(note, sizeof note, "recall %.4f MAP %.4f cov %.3f",
			 m.recall, m.map, m.coverage);
		row("ml-100k", kind ? "ALS recency-weighted" : "ALS plain iALS",
		    params, m.hr, m.ndcg, secs, -1, note);
		knytt_als_close(als);
		knytt_matrix_close(tw);
	}
	knytt_matrix_close(train);
	knytt_matrix_close(test);
	knytt_matrix_close(vtest);
	free(val_flag);
	free(vlast);
	free(tr.v);
	free(test_flag);
	free(last);
	free(d.v);
}

int main(int argc, char **argv)
{
	int quick = 0, speed_only = 0;
	const char *scores = NULL, *csvpath = NULL, *plotdir = NULL;
	const char *dir = getenv("KNYTT_DATA_DIR");
	unsigned threads = 2;
	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--quick"))
			quick = 1;
		else if (!strcmp(argv[a], "--speed"))
			speed_only = 1;
		else if (!strcmp(argv[a], "--scores") && a + 1 < argc)
			scores = argv[++a];
		else if (!strcmp(argv[a], "--csv") && a + 1 < argc)
			csvpath = argv[++a];
		else if (!strcmp(argv[a], "--plot") && a + 1 < argc)
			plotdir = argv[++a];
		else if (!strcmp(argv[a], "--data") && a + 1 < argc)
			dir = argv[++a];
		else if (!strcmp(argv[a], "--try") && a + 1 < argc &&
			 ntries < 256) {
			cfg *c = &tries[ntries++];
			*c = (cfg){.k = 64, .reg = 1, .alpha = 1, .iters = 15};
			if (sscanf(argv[++a], "%u,%f,%f,%f,%u,%f,%f", &c->k,
				   &c->reg, &c->alpha, &c->nu, &c->iters,
				   &c->half, &c->beta) < 3) {
				fprintf(stderr, "--try k,reg,alpha[,nu[,iters[,"
						"half,beta]]]\n");
				return 2;
			}
		} else if (!strcmp(argv[a], "--ensemble") && a + 1 < argc) {
			n_ensemble = (unsigned)atoi(argv[++a]);
			if (n_ensemble < 1 || n_ensemble > 16)
				n_ensemble = 1;
		} else if (!strcmp(argv[a], "--sasrec"))
			sr_only = quick = 1;
		else if (!strcmp(argv[a], "--sasrec-try") && a + 1 < argc &&
			 sr_ntries < 64) {
			srcfg *g = &sr_tries[sr_ntries++];
			*g = sr_chosen; /* epochs by hand: no early stop */
			g->every = 0;
			if (sscanf(argv[++a], "%u,%u,%u,%f,%u,%f", &g->dim,
				   &g->blocks, &g->len, &g->dropout,
				   &g->epochs, &g->lr) < 3) {
				fprintf(stderr, "--sasrec-try dim,blocks,len"
						"[,dropout[,epochs[,lr]]]\n");
				return 2;
			}
		} else if (!strcmp(argv[a], "--threads") && a + 1 < argc)
			threads = (unsigned)atoi(argv[++a]);
		else {
			fprintf(stderr,
				"usage: %s [--quick] [--scores FILE] [--csv "
				"FILE] [--plot DIR] [--data DIR] [--threads "
				"N] [--sasrec] [--sasrec-try d,b,len[,p[,ep"
				"[,lr]]]]\n",
				argv[0]);
			return 2;
		}
	}
	if (!dir || !*dir)
		dir = "../shared/data";
	if (csvpath && !(csv = fopen(csvpath, "w"))) {
		fprintf(stderr, "train_bench: cannot write %s\n", csvpath);
		return 1;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# knytt %s, SIMD %s, %u threads\n", knytt_version(),
	       knytt_simd_name(), threads);
	header();
	if (speed_only) {
		speed(dir);
		if (csv)
			fclose(csv);
		return 0;
	}
	ml1m(dir, quick, scores, threads, plotdir);
	if (!quick)
		speed(dir);
	if (!quick)
		ml100k(dir, threads, plotdir);
	if (csv)
		fclose(csv);
	return 0;
}
