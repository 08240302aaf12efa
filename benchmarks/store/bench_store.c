/*
 * bench_store.c -- lib/store throughput and latency on one backend.
 *
 *   bench_store URI WORKDIR DATA_DIR [--quick]
 *
 * Prints one "name value unit" line per figure:
 *   ml100k_import       rows/s   u.data (100k ratings) through the
 *                                 MovieLens importer (items and users
 *                                 imported first, not timed)
 *   gen_import          rows/s   a generated CSV of 2M interactions
 *                                 (--quick: 200k)
 *   anchor_raw_insert   rows/s   the same rows as plain INSERTs into a
 *                                 table without indexes (SQLite only): the
 *                                 ceiling an importer could reach
 *   item_upsert         rows/s   knytt_store_item_upsert, one call (and
 *                                 one transaction) per item
 *   item_import         rows/s   the same items through a CSV import
 *   search_p50 / p99    ms       knytt_store_search, 1-2 word queries, 20
 *                                 results, over 100k generated items:
 *                                 the median of 3 rounds' percentiles
 *                                 (each round's p99 is printed too)
 */
#include "knytt.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* CPU time of this process: the machine may be shared, and for SQLite
 * (in-process) this is the work the import itself does. */
static double cpu(void)
{
	struct timespec t;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double tcpu(void)
{
	struct timespec t;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void die(const char *what)
{
	fprintf(stderr, "bench_store: %s: %s\n", what, knytt_errmsg());
	exit(1);
}

static knytt_store *open_tenant(const char *uri, const char *name)
{
	knytt_store *st;
	uint64_t t;
	if (knytt_store_open(uri, &st))
		die("open");
	if (knytt_store_tenant_find(st, name, &t) &&
	    knytt_store_tenant_create(st, name, &t))
		die("tenant");
	if (knytt_store_use_tenant(st, t))
		die("use tenant");
	return st;
}

/*
 * Words "w100".."w19999" drawn by Zipf's law (rank^-1) over a 20000-word
 * vocabulary whose 100 most frequent ranks are left out, as a search
 * engine drops stop words: the most frequent word left is in about 4% of
 * the items, the median one in a few dozen.
 */
#define VOCAB 20000
#define STOP 100
static double zcdf[VOCAB];
static void zipf_init(void)
{
	double s = 0;
	for (int i = 0; i < VOCAB; i++)
		zcdf[i] = (s += i < STOP ? 0 : pow(i + 1, -1.0));
	for (int i = 0; i < VOCAB; i++)
		zcdf[i] /= s;
}
static int zipf(uint64_t *s)
{
	double u = (double)(rnd(s) >> 11) / 9007199254740992.0;
	int lo = 0, hi = VOCAB - 1;
	while (lo < hi) {
		int m = (lo + hi) / 2;
		if (zcdf[m] < u)
			lo = m + 1;
		else
			hi = m;
	}
	return lo;
}

static int cmpd(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* The p-th percentile of v[0..n) (sorts v). */
static double pct(double *v, int n, int p)
{
	qsort(v, (size_t)n, sizeof *v, cmpd);
	return v[(n * p) / 100 < n ? (n * p) / 100 : n - 1];
}

#define ROUNDS 3 /* odd: the median is pct(.., 50) */

/* the search figures, in the order they are printed */
enum { F_P50, F_P99, F_CPU_P50, F_CPU_P99, F_HEAD_CPU_P99, F_HEAD_P50,
       F_HEAD_P99, NFIG };
static const struct {
	const char *name;
	int cpu;    /* thread CPU time: SQLite only */
	int rounds; /* each round printed too */
} fig_info[NFIG] = {
	{"search_p50", 0, 0},	       {"search_p99", 0, 1},
	{"search_cpu_p50", 1, 0},      {"search_cpu_p99", 1, 0},
	{"search_head_cpu_p99", 1, 0}, {"search_head_p50", 0, 0},
	{"search_head_p99", 0, 1}};

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: bench_store URI WORKDIR DATA_DIR "
				"[--quick]\n");
		return 2;
	}
	const char *uri = argv[1], *work = argv[2], *data = argv[3];
	int quick = argc > 4 && !strcmp(argv[4], "--quick");
	int sqlite = !strncmp(uri, "sqlite:", 7);
	char p[1024], p2[1024], p3[1024];
	double t0, dt, c0, dc;
	int n;

	/* 1. MovieLens 100k ratings */
	snprintf(p, sizeof p, "%s/ml-100k/u.item", data);
	snprintf(p2, sizeof p2, "%s/ml-100k/u.user", data);
	snprintf(p3, sizeof p3, "%s/ml-100k/u.data", data);
	knytt_store *st = open_tenant(uri, "ml100k");
	if (knytt_store_import(st, p, KNYTT_RECORD_ITEMS,
			       KNYTT_FORMAT_MOVIELENS, NULL, NULL) < 0 ||
	    knytt_store_import(st, p2, KNYTT_RECORD_USERS,
			       KNYTT_FORMAT_MOVIELENS, NULL, NULL) < 0)
		die("ml-100k items/users");
	t0 = now();
	c0 = cpu();
	n = knytt_store_import(st, p3, KNYTT_RECORD_INTERACTIONS,
			       KNYTT_FORMAT_MOVIELENS, NULL, NULL);
	dt = now() - t0;
	dc = cpu() - c0;
	if (n != 100000)
		die("ml-100k ratings");
	printf("ml100k_import %.0f rows/s\n", n / dt);
	if (sqlite)
		printf("ml100k_import_cpu %.0f rows/s\n", n / dc);
	knytt_store_close(st);

	/* 2. generated interactions */
	int nix = quick ? 200000 : 2000000, nusers = 50000, nitems = 20000;
	st = open_tenant(uri, "gen");
	snprintf(p, sizeof p, "%s/items.csv", work);
	FILE *f = fopen(p, "w");
	fprintf(f, "id,title,price\n");
	for (int i = 0; i < nitems; i++)
		fprintf(f, "it%d,item %d,%d\n", i, i, i % 500);
	fclose(f);
	if (knytt_store_import(st, p, KNYTT_RECORD_ITEMS, KNYTT_FORMAT_CSV,
			       NULL, NULL) != nitems)
		die("gen items");
	snprintf(p, sizeof p, "%s/ix.csv", work);
	f = fopen(p, "w");
	fprintf(f, "user,item,type,ts_ms,event_id\n");
	uint64_t s = 7;
	static const char *types[] = {"view", "view", "view", "click",
				      "click", "add_to_cart", "purchase",
				      "favorite"};
	for (int i = 0; i < nix; i++)
		fprintf(f, "u%d,it%d,%s,%lld,e%d\n",
			(int)(rnd(&s) % (uint64_t)nusers),
			(int)(rnd(&s) % (uint64_t)nitems), types[rnd(&s) % 8],
			1700000000000LL + i * 10LL, i);
	fclose(f);
	t0 = now();
	c0 = cpu();
	n = knytt_store_import(st, p, KNYTT_RECORD_INTERACTIONS,
			       KNYTT_FORMAT_CSV, NULL, NULL);
	dt = now() - t0;
	dc = cpu() - c0;
	if (n != nix)
		die("gen interactions");
	printf("gen_import %.0f rows/s\n", n / dt);
	if (sqlite)
		printf("gen_import_cpu %.0f rows/s\n", n / dc);
	printf("gen_rows %d rows\n", nix);
	knytt_store_close(st);

	/* anchor: the same rows as bare INSERTs, no index, one transaction */
	if (sqlite) {
		sqlite3 *db;
		snprintf(p2, sizeof p2, "%s/anchor.db", work);
		remove(p2);
		sqlite3_open(p2, &db);
		sqlite3_exec(db,
			     "PRAGMA journal_mode=WAL; PRAGMA synchronous="
			     "NORMAL; CREATE TABLE t(u INTEGER, i INTEGER, "
			     "type TEXT, ts INTEGER, ev TEXT)",
			     NULL, NULL, NULL);
		sqlite3_stmt *q;
		sqlite3_prepare_v2(db, "INSERT INTO t VALUES (?,?,?,?,?)", -1,
				   &q, NULL);
		f = fopen(p, "r");
		char line[256];
		fgets(line, sizeof line, f);
		t0 = now();
		c0 = cpu();
		sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
		int rows = 0;
		while (fgets(line, sizeof line, f)) {
			char *fl[5], *c = line;
			for (int k = 0; k < 5; k++) {
				fl[k] = c;
				c += strcspn(c, ",\n");
				*c++ = '\0';
			}
			sqlite3_bind_int64(q, 1, atoll(fl[0] + 1));
			sqlite3_bind_int64(q, 2, atoll(fl[1] + 2));
			sqlite3_bind_text(q, 3, fl[2], -1, SQLITE_STATIC);
			sqlite3_bind_int64(q, 4, atoll(fl[3]));
			sqlite3_bind_text(q, 5, fl[4], -1, SQLITE_STATIC);
			sqlite3_step(q);
			sqlite3_reset(q);
			rows++;
		}
		sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
		dt = now() - t0;
		dc = cpu() - c0;
		fclose(f);
		sqlite3_finalize(q);
		sqlite3_close(db);
		printf("anchor_raw_insert %.0f rows/s\n", rows / dt);
		printf("anchor_raw_insert_cpu %.0f rows/s\n", rows / dc);
	}

	/* 3. items: single upserts, then a CSV import; then search */
	zipf_init();
	int nsearch = 100000, nup = quick ? 5000 : 20000;
	st = open_tenant(uri, "catalog");
	s = 11;
	char title[256], desc[512], id[32], cat[64];
	t0 = now();
	for (int i = 0; i < nup; i++) {
		snprintf(id, sizeof id, "single%d", i);
		snprintf(title, sizeof title, "w%d w%d w%d", zipf(&s),
			 zipf(&s), zipf(&s));
		knytt_item it = {.struct_size = sizeof it,
				 .ext_id = id,
				 .title = title,
				 .price = (double)(i % 1000),
				 .in_stock = 1};
		if (knytt_store_item_upsert(st, &it, NULL))
			die("upsert");
	}
	dt = now() - t0;
	printf("item_upsert %.0f rows/s\n", nup / dt);
	knytt_store_close(st);

	st = open_tenant(uri, "search");
	snprintf(p, sizeof p, "%s/catalog.csv", work);
	f = fopen(p, "w");
	fprintf(f, "id,title,description,category,price,in_stock\n");
	for (int i = 0; i < nsearch; i++) {
		int nt = 3 + (int)(rnd(&s) % 4), nd = 10 + (int)(rnd(&s) % 11);
		size_t o = 0;
		for (int k = 0; k < nt; k++)
			o += (size_t)snprintf(title + o, sizeof title - o,
					      "%sw%d", k ? " " : "", zipf(&s));
		o = 0;
		for (int k = 0; k < nd; k++)
			o += (size_t)snprintf(desc + o, sizeof desc - o,
					      "%sw%d", k ? " " : "", zipf(&s));
		snprintf(cat, sizeof cat, "c%d/s%d", (int)(rnd(&s) % 10),
			 (int)(rnd(&s) % 5));
		fprintf(f, "p%d,%s,%s,%s,%d,%d\n", i, title, desc, cat,
			(int)(rnd(&s) % 1000), (int)(rnd(&s) % 5 != 0));
	}
	fclose(f);
	t0 = now();
	n = knytt_store_import(st, p, KNYTT_RECORD_ITEMS, KNYTT_FORMAT_CSV,
			       NULL, NULL);
	dt = now() - t0;
	if (n != nsearch)
		die("catalog import");
	printf("item_import %.0f rows/s\n", n / dt);

	/* ROUNDS rounds of nq queries of each kind; a figure is the median
	 * of the rounds' percentiles, so that one stall of a shared machine
	 * (tens of ms, covering dozens of sub-ms queries) moves one round
	 * and not the result.  Each round is printed too. */
	int nq = quick ? 500 : 2000;
	double *lat = malloc((size_t)nq * sizeof *lat);
	double *head = malloc((size_t)nq * sizeof *head);
	double *lc = malloc((size_t)nq * sizeof *lc);
	double *hc = malloc((size_t)nq * sizeof *hc);
	double fig[NFIG][ROUNDS];
	uint64_t ids[20];
	double sc[20];
	char q[128];
	long long hits = 0;
	for (int i = 0; i < 100; i++) { /* warm-up */
		snprintf(q, sizeof q, "w%d", zipf(&s));
		if (knytt_store_search(st, q, NULL, NAN, NAN, 0, ids, sc, 20) <
		    0)
			die("search");
	}
	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < nq; i++) {
			if (rnd(&s) % 2)
				snprintf(q, sizeof q, "w%d", zipf(&s));
			else
				snprintf(q, sizeof q, "w%d w%d", zipf(&s),
					 zipf(&s));
			int filt = (int)(rnd(&s) % 4);
			c0 = tcpu();
			t0 = now();
			int r = knytt_store_search(
				st, q, filt == 1 ? "c3" : NULL,
				filt == 2 ? 100 : NAN, filt == 2 ? 500 : NAN,
				filt == 3, ids, sc, 20);
			lat[i] = (now() - t0) * 1e3;
			lc[i] = (tcpu() - c0) * 1e3;
			if (r < 0)
				die("search");
			hits += r;
		}
		/* worst case: one word among the 20 most frequent (each
		 * matches 1-4% of the items), no filter: every match is
		 * ranked */
		for (int i = 0; i < nq; i++) {
			snprintf(q, sizeof q, "w%d",
				 STOP + (int)(rnd(&s) % 20));
			c0 = tcpu();
			t0 = now();
			if (knytt_store_search(st, q, NULL, NAN, NAN, 0, ids,
					       sc, 20) < 0)
				die("search");
			head[i] = (now() - t0) * 1e3;
			hc[i] = (tcpu() - c0) * 1e3;
		}
		fig[F_P50][round] = pct(lat, nq, 50);
		fig[F_P99][round] = pct(lat, nq, 99);
		fig[F_CPU_P50][round] = pct(lc, nq, 50);
		fig[F_CPU_P99][round] = pct(lc, nq, 99);
		fig[F_HEAD_CPU_P99][round] = pct(hc, nq, 99);
		fig[F_HEAD_P50][round] = pct(head, nq, 50);
		fig[F_HEAD_P99][round] = pct(head, nq, 99);
	}
	/* SQLite ranks in this thread: its CPU time is the latency an idle
	 * core would give (PostgreSQL works in the server process) */
	printf("search_mean_hits %.1f results\n",
	       (double)hits / ((double)nq * ROUNDS));
	for (int k = 0; k < NFIG; k++) {
		if (fig_info[k].cpu && !sqlite)
			continue;
		for (int r = 0; fig_info[k].rounds && r < ROUNDS; r++)
			printf("%s_round%d %.3f ms\n", fig_info[k].name, r + 1,
			       fig[k][r]);
		printf("%s %.3f ms\n", fig_info[k].name,
		       pct(fig[k], ROUNDS, 50));
	}
	free(lc);
	free(hc);
	free(lat);
	free(head);
	knytt_store_close(st);
	return 0;
}
