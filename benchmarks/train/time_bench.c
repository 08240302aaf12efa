/*
 * time_bench.c -- the default pipeline (knytt train, tuned, then
 * recommend through the engine) against recent popularity, held out in
 * time, in one run (benchmarks/train/run --pipeline).
 *
 * For each data set and each holdout (the latest 30%, 20% and 10% of the
 * ratings by time): a global time split (knytt_timesplit); the training
 * ratings go into a fresh SQLite store as "view" events (implicit
 * feedback: every rating is an interaction, as the anchors count them);
 * an engine with "now" at the cut trains as `knytt train` does -- tuned
 * by default, and once more with tuning off -- and recommend(user, 20)
 * is scored for every test user against his test items: NDCG@20 and
 * Recall@20 with knytt_eval_full's definitions (full ranking, seen items
 * excluded, users first seen after the cut left out).  The tuning sees
 * only the training ratings (it carves its own validation period from
 * their end); the test is scored once.  Anchors of the same split:
 * popularity, recent popularity over the last 14 and 7 days.
 *
 * Data: ML-100K (u.data), and the first half of ML-1M (users 1..2999,
 * 487,650 ratings with their real timestamps: the only part of ML-1M's
 * ratings.dat with times on this machine, ncf/reconstruction_inputs).
 *
 * usage: time_bench [--data DIR] [--csv FILE] [--threads N] [--quick]
 *                   [--windows] [--sasrec] [--inner F] [--pool]
 * --pool: one more row per split, the tuning with the personalised
 * re-rank of a popularity list's pool among its candidates
 * (knytt_engine_set_tune_pool).
 * --inner F: judge a design without the test: each split's test period
 * is dropped unread, and the same protocol runs inside its training
 * ratings with their latest F held out (rows "ml100k-20%/in-15%").
 * --quick: ML-100K only.  --windows: the tuning may also blend the
 * windowed counts of the last 3-28 days (knytt_engine_set_tune_windows).
 * --sasrec: one more row per split, the tuned pipeline with the SASRec
 * session model (knytt_engine_set_sasrec, at most
 * KNYTT_ENGINE_DEFAULT_SASREC_EPOCHS epochs; its epochs and weight
 * chosen on the tuning's validation period, the test scored once); the
 * recommendations then encode each test user's training sequence.
 * --sasrec-weight W (repeatable): a row with the weight fixed at W, the
 * epochs still validated -- a diagnostic of the validation's choice,
 * never a way to choose.
 */
#include <knytt.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ratings.h"

static unsigned g_threads = 2;
static int g_windows; /* --windows: knytt_engine_set_tune_windows(e, 1) */
static int g_sasrec;  /* --sasrec: a row with the SASRec session model */
/* --pool: a row with knytt_engine_set_tune_pool(e, 1) (g_pool_on while
 * that row trains) */
static int g_pool, g_pool_on;
/* --sasrec-weight W: also rows with the session model's weight fixed at
 * each W given (a diagnostic of the validation's choice: the test must
 * not choose anything) */
static double g_sw[8];
static int g_nsw;
/* --inner F: each split's test period is left out unread and the split
 * is made again inside its training ratings, the latest F of them held
 * out: a whole pipeline scored on data the tuning of the real split may
 * see, to judge a design without reading the test */
static double g_inner;
static FILE *csv;

static void die(const char *what, int rc)
{
	fprintf(stderr, "time_bench: %s: %s (%s)\n", what, knytt_errmsg(),
		knytt_errname(rc));
	exit(1);
}

#define CHECK(call)                                                         \
	do {                                                                \
		int rc_ = (call);                                           \
		if (rc_ < 0)                                                \
			die(#call, rc_);                                    \
	} while (0)

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void row(const char *data, const char *model, const char *params,
		double recall, double ndcg, double secs)
{
	char ts[32] = "-";
	if (secs >= 0)
		snprintf(ts, sizeof ts, "%.2f", secs);
	printf("%-13s %-34s %8.4f %8.4f %8s  %s\n", data, model, recall, ndcg,
	       ts, params);
	if (csv)
		fprintf(csv, "%s,%s,%.4f,%.4f,%s,\"%s\"\n", data, model, recall,
			ndcg, ts, params);
}

/* The store of the training ratings: items "m<i>", users "u<u>". */
static void make_store(const char *dir, const ratings *d, int64_t cut)
{
	char p[1024];
	snprintf(p, sizeof p, "%s/items.csv", dir);
	FILE *f = fopen(p, "w");
	fprintf(f, "id,title\n");
	for (uint32_t i = 0; i < d->ni; i++)
		fprintf(f, "m%u,movie %u\n", i, i);
	fclose(f);
	snprintf(p, sizeof p, "%s/ix.csv", dir);
	f = fopen(p, "w");
	fprintf(f, "user,item,type,ts_ms\n");
	for (size_t j = 0; j < d->n; j++)
		if (d->v[j].t < cut)
			fprintf(f, "u%u,m%u,view,%lld\n", d->v[j].u, d->v[j].i,
				(long long)d->v[j].t * 1000);
	fclose(f);
	char uri[1100];
	snprintf(uri, sizeof uri, "sqlite:%s/db", dir);
	knytt_store *st;
	CHECK(knytt_store_open(uri, &st));
	uint64_t tenant;
	if (knytt_store_tenant_find(st, "default", &tenant) != KNYTT_OK)
		CHECK(knytt_store_tenant_create(st, "default", &tenant));
	CHECK(knytt_store_use_tenant(st, tenant));
	snprintf(p, sizeof p, "%s/items.csv", dir);
	CHECK(knytt_store_import(st, p, KNYTT_RECORD_ITEMS, KNYTT_FORMAT_CSV,
				 NULL, NULL));
	snprintf(p, sizeof p, "%s/ix.csv", dir);
	CHECK(knytt_store_import(st, p, KNYTT_RECORD_INTERACTIONS,
				 KNYTT_FORMAT_CSV, NULL, NULL));
	knytt_store_close(st);
}

/* Trains an engine on the store as `knytt train` does (tuned unless
 * @p no_tune; with the SASRec session model when @p sasrec) with "now"
 * at the cut, then scores recommend(user, 20) for every test user; the
 * tuning report (with sasrec: the session model's) goes to @p tune. */
static void pipeline(const char *dir, const knytt_matrix *te, int64_t cut,
		     int no_tune, int sasrec, double sw, double *recall,
		     double *ndcg, double *secs, char *tune, size_t cap)
{
	char uri[1100];
	snprintf(uri, sizeof uri, "sqlite:%s/db", dir);
	knytt_engine *e;
	CHECK(knytt_engine_create(&e));
	CHECK(knytt_engine_set_now(e, cut * 1000));
	CHECK(knytt_engine_set_threads(e, g_threads));
	CHECK(knytt_engine_set_tune(e, !no_tune));
	CHECK(knytt_engine_set_tune_windows(e, g_windows));
	CHECK(knytt_engine_set_tune_pool(e, g_pool_on));
	if (sasrec)
		CHECK(knytt_engine_set_sasrec(
			e, KNYTT_ENGINE_DEFAULT_SASREC_EPOCHS));
	if (sasrec && sw >= 0)
		CHECK(knytt_engine_set_sasrec_weight(e, sw));
	CHECK(knytt_engine_open(e, uri));
	double t0 = now_s();
	CHECK(knytt_engine_train(e, NULL, NULL));
	*secs = now_s() - t0;
	char *meta = NULL;
	CHECK(knytt_store_model_get(knytt_engine_store(e), "engine-model", 0,
				    NULL, NULL, &meta, NULL, NULL));
	const char *key = sasrec ? "\"sasrec\":" : "\"tune\":";
	const char *t = meta ? strstr(meta, key) : NULL;
	snprintf(tune, cap, "%s", t ? t + strlen(key) : "(fixed settings)");
	/* the object alone: up to its closing brace */
	for (size_t i = 0, depth = 0; t && tune[i]; i++) {
		depth += tune[i] == '{';
		if (tune[i] == '}' && --depth == 0) {
			tune[i + 1] = '\0';
			break;
		}
	}
	knytt_free(meta);
	knytt_result res[20] = {{.struct_size = sizeof(knytt_result)}};
	double sr = 0, sn = 0, tq = 0;
	size_t users = 0;
	for (uint32_t u = 0; u < knytt_matrix_users(te); u++) {
		const uint32_t *it;
		int nt = knytt_matrix_row(te, u, &it, NULL);
		if (nt <= 0)
			continue;
		char ext[32];
		snprintf(ext, sizeof ext, "u%u", u);
		double q0 = now_s();
		int n = knytt_engine_recommend(e, ext, 20, NULL, NULL, res);
		tq += now_s() - q0;
		if (n < 0)
			die("recommend", n);
		double dcg = 0, idcg = 0;
		int hits = 0;
		for (int q = 0; q < nt && q < 20; q++)
			idcg += 1.0 / log2(q + 2.0);
		for (int p = 0; p < n; p++) {
			uint32_t i = (uint32_t)strtoul(res[p].ext_id + 1, NULL,
						       10);
			for (int q = 0; q < nt; q++)
				if (it[q] == i) {
					dcg += 1.0 / log2(p + 2.0);
					hits++;
				}
		}
		sn += dcg / idcg;
		sr += (double)hits / nt;
		users++;
	}
	*ndcg = sn / (double)users;
	*recall = sr / (double)users;
	/* the mean recommend call: the pass above loads each profile on
	 * first use; a second pass over the same users, profiles in
	 * memory, times the query alone (the median of 3 passes) */
	double pass[3];
	for (int p = 0; p < 3; p++) {
		double p0 = now_s();
		for (uint32_t u = 0; u < knytt_matrix_users(te); u++) {
			char ext[32];
			if (knytt_matrix_row(te, u, NULL, NULL) <= 0)
				continue;
			snprintf(ext, sizeof ext, "u%u", u);
			if (knytt_engine_recommend(e, ext, 20, NULL, NULL,
						   res) < 0)
				die("recommend", -1);
		}
		pass[p] = (now_s() - p0) / (double)users * 1e6;
	}
	double lo = fmin(pass[0], fmin(pass[1], pass[2]));
	double hi = fmax(pass[0], fmax(pass[1], pass[2]));
	size_t l = strlen(tune);
	snprintf(tune + l, cap - l,
		 " [recommend %.0f us/call first, %.0f us/call loaded]",
		 tq / (double)users * 1e6,
		 pass[0] + pass[1] + pass[2] - lo - hi);
	knytt_engine_close(e);
}

static void anchors(const char *name, knytt_timesplit *s,
		    const knytt_matrix *tr, const knytt_matrix *te,
		    uint32_t ni)
{
	static const struct {
		const char *label;
		int64_t window;
	} a[] = {{"popularity", 0},
		 {"recent popularity 14 days", 14 * 86400},
		 {"recent popularity 7 days", 7 * 86400}};
	float *pop = malloc(ni * sizeof *pop);
	for (size_t j = 0; j < 3; j++) {
		CHECK(knytt_timesplit_popularity(s, a[j].window, ni, pop));
		knytt_item_scores sc = {pop, ni};
		knytt_metrics m;
		CHECK(knytt_eval_full(tr, te, 20, knytt_static_scorer, &sc,
				      &m));
		row(name, a[j].label, "anchor", m.recall, m.ndcg, -1);
	}
	free(pop);
}

static void one_split(const char *name, const ratings *d, double holdout)
{
	knytt_timesplit *s;
	knytt_matrix *tr, *te;
	CHECK(knytt_timesplit_create(&s));
	for (size_t j = 0; j < d->n; j++)
		CHECK(knytt_timesplit_add(s, d->v[j].u, d->v[j].i,
					  KNYTT_EVENT_VIEW, 1, d->v[j].t));
	CHECK(knytt_timesplit_set_holdout(s, holdout));
	CHECK(knytt_matrix_create(&tr));
	CHECK(knytt_matrix_create(&te));
	CHECK(knytt_timesplit_split(s, tr, te));
	CHECK(knytt_matrix_build(tr, d->nu, d->ni));
	CHECK(knytt_matrix_build(te, d->nu, d->ni));
	knytt_timesplit_info in;
	CHECK(knytt_timesplit_info_get(s, &in));
	char label[64];
	snprintf(label, sizeof label, "%s-%.0f%%", name, holdout * 100);
	if (g_inner > 0) {
		/* the test period is dropped unread: the split is made
		 * again inside the training ratings */
		ratings sub = *d;
		sub.v = malloc((d->n ? d->n : 1) * sizeof *sub.v);
		sub.n = 0;
		for (size_t j = 0; j < d->n && sub.v; j++)
			if (d->v[j].t < in.cut)
				sub.v[sub.n++] = d->v[j];
		double f = g_inner;
		g_inner = 0;
		snprintf(label, sizeof label, "%s-%.0f%%/in",
			 name, holdout * 100);
		if (sub.v)
			one_split(label, &sub, f);
		g_inner = f;
		free(sub.v);
		knytt_timesplit_close(s);
		knytt_matrix_close(tr);
		knytt_matrix_close(te);
		return;
	}
	printf("# %s: cut %lld, train %zu ratings, test %zu ratings of %zu "
	       "users (left out: %zu by %zu cold users)\n",
	       label, (long long)in.cut, in.train, in.test, in.users_test,
	       in.test_cold, in.users_cold);
	anchors(label, s, tr, te, d->ni);
	char dir[] = "/tmp/knytt-time-XXXXXX";
	if (!mkdtemp(dir))
		die("mkdtemp", KNYTT_EIO);
	make_store(dir, d, in.cut);
	char tune[2048];
	double r, n, secs;
	for (int nt = 0; nt < 2; nt++) {
		pipeline(dir, te, in.cut, nt, 0, -1, &r, &n, &secs, tune,
			 sizeof tune);
		row(label, nt ? "knytt train --no-tune + recommend"
			      : "knytt train (tuned) + recommend",
		    tune, r, n, secs);
	}
	if (g_pool) {
		g_pool_on = 1;
		pipeline(dir, te, in.cut, 0, 0, -1, &r, &n, &secs, tune,
			 sizeof tune);
		g_pool_on = 0;
		row(label, "tuned, pool re-rank a candidate", tune, r, n,
		    secs);
	}
	if (g_sasrec) {
		pipeline(dir, te, in.cut, 0, 1, -1, &r, &n, &secs, tune,
			 sizeof tune);
		row(label, "tuned + SASRec session", tune, r, n, secs);
	}
	for (int w = 0; w < g_nsw; w++) {
		char name[64];
		pipeline(dir, te, in.cut, 0, 1, g_sw[w], &r, &n, &secs, tune,
			 sizeof tune);
		snprintf(name, sizeof name, "tuned + SASRec, weight %g fixed",
			 g_sw[w]);
		row(label, name, tune, r, n, secs);
	}
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "time_bench: could not remove %s\n", dir);
	knytt_timesplit_close(s);
	knytt_matrix_close(tr);
	knytt_matrix_close(te);
}

int main(int argc, char **argv)
{
	const char *dir = getenv("KNYTT_DATA_DIR"), *csvpath = NULL;
	int quick = 0;
	for (int a = 1; a < argc; a++) {
		if (!strcmp(argv[a], "--csv") && a + 1 < argc)
			csvpath = argv[++a];
		else if (!strcmp(argv[a], "--data") && a + 1 < argc)
			dir = argv[++a];
		else if (!strcmp(argv[a], "--threads") && a + 1 < argc)
			g_threads = (unsigned)atoi(argv[++a]);
		else if (!strcmp(argv[a], "--quick"))
			quick = 1;
		else if (!strcmp(argv[a], "--inner") && a + 1 < argc)
			g_inner = atof(argv[++a]);
		else if (!strcmp(argv[a], "--pool"))
			g_pool = 1;
		else if (!strcmp(argv[a], "--windows"))
			g_windows = 1;
		else if (!strcmp(argv[a], "--sasrec"))
			g_sasrec = 1;
		else if (!strcmp(argv[a], "--sasrec-weight") && a + 1 < argc &&
			 g_nsw < 8)
			g_sw[g_nsw++] = atof(argv[++a]);
		else {
			fprintf(stderr, "usage: %s [--data DIR] [--csv FILE] "
					"[--threads N] [--quick] [--windows] "
					"[--sasrec] [--sasrec-weight W]... "
					"[--inner F] [--pool]\n",
				argv[0]);
			return 2;
		}
	}
	if (!dir || !*dir)
		dir = "../shared/data";
	if (csvpath && !(csv = fopen(csvpath, "w"))) {
		fprintf(stderr, "time_bench: cannot write %s\n", csvpath);
		return 1;
	}
	if (csv)
		fprintf(csv, "data,model,recall20,ndcg20,train_s,params\n");
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("# knytt %s, %u threads: NDCG@20 / Recall@20, time split, "
	       "full ranking\n",
	       knytt_version(), g_threads);
	printf("%-13s %-34s %8s %8s %8s  %s\n", "data", "model", "Recall", "NDCG",
	       "train_s", "params / tuning report");
	each_time_split(dir, quick, one_split);
	return 0;
}
