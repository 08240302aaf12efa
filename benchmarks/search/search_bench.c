/*
 * search_bench.c -- search that learns from the shop, measured on a
 * synthetic shop with planted synonyms (synshop.h): Recall@10 of the
 * clicked item on held-out query -> click pairs for keyword search
 * alone, the vector half alone and the hybrid, before and after the
 * engine trains on the search log, and how often an exact title query
 * gets its item first.
 *
 * usage: search_bench [--quick] [--csv FILE] [--seed N] [--dim N]
 */
#include "synshop.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define K 10
#define NHELD 2000

typedef struct score {
	size_t hit[3], n[3]; /* per synshop_kind: Recall@10 hits, pairs */
	size_t first;        /* exact title queries with the item first */
} score;

static void die(const char *what, int rc)
{
	fprintf(stderr, "search_bench: %s: %s (%s)\n", what, knytt_errmsg(),
		knytt_errname(rc));
	exit(1);
}

static int in_results(const knytt_result *r, int n, const char *ext)
{
	for (int i = 0; i < n; i++)
		if (strcmp(r[i].ext_id, ext) == 0)
			return i + 1;
	return 0;
}

/* method 0 keyword alone, 1 vector alone, 2 hybrid */
static int ranked(knytt_engine *e, int method, const char *q,
		  knytt_result *r, float *v, uint32_t dim)
{
	knytt_store *st = knytt_engine_store(e);
	if (method == 0) {
		uint64_t ids[K];
		int n = knytt_store_search(st, q, NULL, NAN, NAN, 0, ids, NULL,
					   K);
		if (n < 0)
			return 0; /* a query with no word */
		for (int i = 0; i < n; i++) {
			knytt_item *it = NULL;
			if (knytt_store_item_get_id(st, ids[i], &it))
				die("item_get_id", -1);
			snprintf(r[i].ext_id, sizeof r[i].ext_id, "%s",
				 it->ext_id);
			knytt_free(it);
		}
		return n;
	}
	if (method == 1) {
		int has = knytt_engine_embed_query(e, q, v, dim);
		if (has < 0)
			die("embed_query", has);
		if (!has)
			return 0;
		int n = knytt_engine_search(e, NULL, v, dim, K, NULL, NULL, r,
					    NULL);
		if (n < 0)
			die("search (vector)", n);
		return n;
	}
	int n = knytt_engine_search(e, q, NULL, 0, K, NULL, NULL, r, NULL);
	if (n < 0)
		die("search", n);
	return n;
}

static void measure(knytt_engine *e, const synshop_pair *p, size_t np,
		    uint32_t dim, score out[3])
{
	knytt_result r[K] = {{.struct_size = sizeof(knytt_result)}};
	float *v = malloc(dim * sizeof *v);
	memset(out, 0, 3 * sizeof *out);
	for (int m = 0; m < 3; m++)
		for (size_t i = 0; i < np; i++) {
			int n = ranked(e, m, p[i].query, r, v, dim);
			int at = in_results(r, n, p[i].item);
			out[m].n[p[i].kind]++;
			out[m].hit[p[i].kind] += at > 0;
			if (p[i].kind == SYNSHOP_EXACT && at == 1)
				out[m].first++;
		}
	free(v);
}

static void search_report(knytt_engine *e, char *out, size_t cap)
{
	char *meta = NULL;
	snprintf(out, cap, "?");
	if (knytt_store_model_get(knytt_engine_store(e), "engine-model", 0,
				  NULL, NULL, &meta, NULL, NULL) == KNYTT_OK &&
	    meta) {
		const char *s = strstr(meta, "\"search\":");
		if (s) {
			s += 9;
			const char *end = strchr(s, '}');
			snprintf(out, cap, "%.*s", end ? (int)(end - s + 1) : 0,
				 s);
		}
	}
	knytt_free(meta);
}

static double secs_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) +
	       (double)(t.tv_nsec - t0->tv_nsec) * 1e-9;
}

static double rate(size_t a, size_t b)
{
	return b ? (double)a / (double)b : 0;
}

static const char *const phase[2] = {"before", "after"};
static const char *const method[3] = {"keyword", "vector", "hybrid"};

static void print_row(FILE *csv, int ph, int m, const score *s)
{
	size_t all = s->hit[0] + s->hit[1] + s->hit[2],
	       nall = s->n[0] + s->n[1] + s->n[2];
	printf("%-7s %-8s %9.3f %9.3f %9.3f %9.3f   %4zu/%-4zu\n", phase[ph],
	       method[m], rate(s->hit[0], s->n[0]), rate(s->hit[1], s->n[1]),
	       rate(s->hit[2], s->n[2]), rate(all, nall), s->first, s->n[2]);
	if (csv)
		fprintf(csv, "%s,%s,%.4f,%.4f,%.4f,%.4f,%zu,%zu\n", phase[ph],
			method[m], rate(s->hit[0], s->n[0]),
			rate(s->hit[1], s->n[1]), rate(s->hit[2], s->n[2]),
			rate(all, nall), s->first, s->n[2]);
}

int main(int argc, char **argv)
{
	const char *csvpath = NULL;
	int quick = 0;
	unsigned long seed = 1, dim = 32;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			quick = 1;
		else if (!strcmp(argv[i], "--csv") && i + 1 < argc)
			csvpath = argv[++i];
		else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
			seed = strtoul(argv[++i], NULL, 10);
		else if (!strcmp(argv[i], "--dim") && i + 1 < argc)
			dim = strtoul(argv[++i], NULL, 10);
		else {
			fprintf(stderr, "usage: search_bench [--quick] [--csv "
					"FILE] [--seed N] [--dim N]\n");
			return 2;
		}
	}
	int64_t now = 1767225600000LL; /* 2026-01-01 */
	synshop_opts o = {.concepts = 24,
			  .items_per = quick ? 15 : 40,
			  .users = quick ? 400 : 2000,
			  .events_per_user = 20,
			  .searches = quick ? 2000 : 10000,
			  .seed = seed,
			  .now_ms = now};
	size_t np = quick ? NHELD / 4 : NHELD;
	synshop_pair *p = calloc(np, sizeof *p);
	np = synshop_heldout(&o, p, np);

	char dir[] = "/tmp/knytt-searchbench-XXXXXX", uri[96];
	if (!mkdtemp(dir))
		die("mkdtemp", -1);
	snprintf(uri, sizeof uri, "sqlite:%s/db", dir);
	knytt_engine *e;
	int rc;
	if ((rc = knytt_engine_create(&e)) ||
	    (rc = knytt_engine_set_dim(e, (uint32_t)dim)) ||
	    (rc = knytt_engine_set_tune(e, 0)) ||
	    (rc = knytt_engine_set_threads(e, 1)) ||
	    (rc = knytt_engine_set_now(e, now)) ||
	    (rc = knytt_engine_open(e, uri)))
		die("engine", rc);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if ((rc = synshop_fill(e, &o)))
		die("fill", rc);
	printf("shop: %u concepts x %u items, %u shoppers x %u events, "
	       "%.1f s\n", o.concepts, o.items_per, o.users,
	       o.events_per_user, secs_since(&t0));
	score s[2][3];
	char rep[512];
	for (int ph = 0; ph < 2; ph++) {
		if (ph == 1) {
			clock_gettime(CLOCK_MONOTONIC, &t0);
			if ((rc = synshop_searches(e, &o)))
				die("searches", rc);
			printf("search log: %u sessions, %.1f s\n", o.searches,
			       secs_since(&t0));
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		if ((rc = knytt_engine_train(e, NULL, NULL)))
			die("train", rc);
		search_report(e, rep, sizeof rep);
		printf("train (%s the search log): %.1f s; search words: %s\n",
		       phase[ph], secs_since(&t0), rep);
		measure(e, p, np, (uint32_t)dim, s[ph]);
	}
	FILE *csv = csvpath ? fopen(csvpath, "w") : NULL;
	if (csvpath && !csv)
		die("cannot write the CSV file", -1);
	if (csv)
		fprintf(csv, "phase,method,recall10_synonym,recall10_title,"
			     "recall10_exact,recall10_all,exact_first,"
			     "exact_queries\n");
	printf("\nRecall@10 of the clicked item, %zu held-out pairs (%zu "
	       "synonym, %zu title words, %zu exact titles)\n",
	       np, s[0][0].n[0], s[0][0].n[1], s[0][0].n[2]);
	printf("%-7s %-8s %9s %9s %9s %9s   %s\n", "phase", "method",
	       "synonym", "title", "exact", "all", "exact first");
	for (int ph = 0; ph < 2; ph++)
		for (int m = 0; m < 3; m++)
			print_row(csv, ph, m, &s[ph][m]);
	if (csv)
		fclose(csv);
	knytt_engine_close(e);
	char cmd[160];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "search_bench: could not remove %s\n", dir);
	free(p);
	/* the claims the benchmark exists for */
	const score *kw = &s[1][0], *hy = &s[1][2];
	size_t kwall = kw->hit[0] + kw->hit[1] + kw->hit[2];
	size_t hyall = hy->hit[0] + hy->hit[1] + hy->hit[2];
	int ok = hyall > kwall && hy->first >= kw->first &&
		 hy->first == hy->n[2];
	printf("\nhybrid after training %s keyword alone (%zu vs %zu hits); "
	       "exact titles first: hybrid %zu, keyword %zu of %zu\n",
	       hyall > kwall ? "beats" : "does NOT beat", hyall, kwall,
	       hy->first, kw->first, hy->n[2]);
	return ok ? 0 : 1;
}
