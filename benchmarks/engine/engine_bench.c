/*
 * engine_bench.c -- serving latency of knytt_engine on a generated shop.
 *
 * The shop (fixed seed, written once as CSV under the data directory and
 * reused; --regen writes it again): 100k items in 20 top categories with
 * 5 subcategories each, titles and descriptions drawn from per-category
 * and per-subcategory vocabularies (Zipf word frequencies, plus shared
 * generic words), prices, stock and quality; 20k users with 1-2
 * favourite categories; 2M interactions (view / click / add_to_cart /
 * purchase, weighted 1 / 2 / 4 / 8 like the engine's defaults) over the
 * 30 days before generation, Zipf item popularity inside each category
 * and a skewed user activity.  --quick: 10k items, 2k users, 200k
 * interactions.
 *
 * Setup (timed, not targets): knytt_store_import of both files through
 * knytt_engine_store, knytt_engine_sync, then ALS training (dim 64).  The
 * imported database is copied, and a second engine on the copy trains
 * the two-tower model (dim 64, few epochs), whose text path gives hybrid
 * search its vector half (with ALS, search is keyword + RRF only).
 *
 * Measured on one thread, after a warm-up, per engine, in --rounds
 * rounds (default 3), each op timed alone with CLOCK_MONOTONIC:
 *   recommend-first  first request of a user (loads the history from
 *                    the store and folds it in), distinct users;
 *   recommend        k=10, users already loaded, half with a random
 *                    filter (category prefix / price range / in stock);
 *   search           1-3 words from one category's vocabulary, k=10,
 *                    half filtered (written to the search log, as
 *                    every search is);
 *   feedback         a random event of a loaded user: taste updated
 *                    before return, the event queued for the engine's
 *                    writer thread (write-behind; --sync-feedback:
 *                    stored before return) (second row: users with a
 *                    full 256-event history, the most the engine folds
 *                    in);
 *   store-add        anchor: the same kind of event through
 *                    knytt_store_interaction_add alone (no taste);
 *   similar          a random item (popularity-weighted), k=10, half
 *                    filtered;
 *   trending         k=10, random window, half within a category.
 * Every op must succeed.  The table gives the median over the rounds of
 * each percentile (p50, p90, p99, max, microseconds) of the wall clock
 * and of the calling thread's CPU time: on a shared, loaded machine the
 * wall-clock tail is mostly time spent descheduled (trending, a pure
 * in-memory scan, shows it), which the CPU time leaves out.  Feedback is also
 * checked to take effect at once: right after a "purchase" of a user's
 * top recommendation, the next recommend must not contain it; after
 * clicks on another category, that category must gain ground.
 *
 * Usage: engine_bench --dir DIR [--quick] [--regen] [--rounds N]
 *                     [--samples N] [--csv FILE] [--cdf FILE]
 *                     [--epochs N] [--no-twotower] [--reuse-db]
 *                     [--only OP] [--sync-feedback]
 * --reuse-db skips import and training and opens the databases of an
 * earlier run, restored to their state right after its setup (kept in
 * pristine-als.db/ and pristine-twotower.db/ beside them); --only OP
 * times one operation (with recommend-first, which loads the users), for
 * profiling with perf.
 */
#include <knytt.h>

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- small tools ---------------------------------------------------------- */

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* uniform in [0, 1) */
static double unif(uint64_t *s)
{
	return (double)(rnd(s) >> 11) * (1.0 / 9007199254740992.0);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* CPU time of this thread: excludes the time the scheduler gave the core
 * to other processes, which on a loaded shared machine dominates the
 * wall-clock tails */
static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void die(const char *what)
{
	fprintf(stderr, "engine_bench: %s\n", what);
	exit(1);
}

static void ck(int rc, const char *what)
{
	if (rc < 0) {
		fprintf(stderr, "engine_bench: %s: %s (%s)\n", what,
			knytt_errname(rc), knytt_errmsg());
		exit(1);
	}
}

static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		die("out of memory");
	return p;
}

/* Zipf(s) sampler over ranks 0..n-1: a cumulative table searched by
 * bisection. */
typedef struct zipf {
	double *cdf;
	size_t n;
} zipf;

static void zipf_init(zipf *z, size_t n, double s)
{
	z->n = n;
	z->cdf = xmalloc(n * sizeof *z->cdf);
	double acc = 0;
	for (size_t i = 0; i < n; i++)
		z->cdf[i] = acc += 1.0 / pow((double)(i + 1), s);
	for (size_t i = 0; i < n; i++)
		z->cdf[i] /= acc;
}

static size_t zipf_draw(const zipf *z, uint64_t *s)
{
	double u = unif(s);
	size_t lo = 0, hi = z->n - 1;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (z->cdf[mid] < u)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* ---- the shop --------------------------------------------------------------- */

#define NCAT 20
#define NSUB 5
#define CAT_WORDS 60
#define SUB_WORDS 15
#define NBRAND 25
#define WLEN 12

static const char *const cat_name[NCAT] = {
	"electronics", "fashion", "shoes",   "home",	  "kitchen",
	"garden",      "sports",  "toys",    "books",	  "music",
	"beauty",      "health",  "grocery", "pets",	  "automotive",
	"office",      "tools",   "baby",    "jewelry",	  "outdoor"};

/* shared words every category uses, so some queries hit many items */
static const char *const generic[] = {
	"black", "white", "blue",  "red",     "green",  "grey",   "large",
	"small", "mini",  "pro",   "classic", "modern", "premium", "basic",
	"eco",	 "smart", "light", "heavy",   "soft",   "compact", "deluxe",
	"new",	 "set",	  "pack",  "kit",     "edition", "original", "travel"};
#define NGEN (sizeof generic / sizeof *generic)

typedef struct shop {
	size_t nitems, nusers, nix;
	/* vocabularies (pseudo-words, unique per seed): [cat][w], [cat][sub][w],
	 * [cat][brand] */
	char catw[NCAT][CAT_WORDS][WLEN];
	char subw[NCAT][NSUB][SUB_WORDS][WLEN];
	char subname[NCAT][NSUB][WLEN];
	char brand[NCAT][NBRAND][WLEN];
	/* per item: category c = i % NCAT, rank j = i / NCAT inside it */
	unsigned char *sub;
	double *price;
	unsigned char *in_stock;
	double cat_price[NCAT]; /* the category's median price */
	zipf wz_cat, wz_sub, item_z;
	size_t per_cat;
} shop;

static void pseudo_word(uint64_t *s, char *out)
{
	static const char cons[] = "bdfgklmnprstvzch";
	static const char vow[] = "aeiou";
	int syl = 2 + (int)(rnd(s) % 2), o = 0;
	for (int k = 0; k < syl; k++) {
		out[o++] = cons[rnd(s) % 16];
		out[o++] = vow[rnd(s) % 5];
	}
	if (rnd(s) % 3 == 0)
		out[o++] = "nrstlx"[rnd(s) % 6];
	out[o] = '\0';
}

static void shop_init(shop *sh, int quick)
{
	memset(sh, 0, sizeof *sh);
	sh->nitems = quick ? 10000 : 100000;
	sh->nusers = quick ? 2000 : 20000;
	sh->nix = quick ? 200000 : 2000000;
	sh->per_cat = sh->nitems / NCAT;
	uint64_t s = 20261121;
	for (int c = 0; c < NCAT; c++) {
		for (int w = 0; w < CAT_WORDS; w++)
			pseudo_word(&s, sh->catw[c][w]);
		for (int b = 0; b < NBRAND; b++)
			pseudo_word(&s, sh->brand[c][b]);
		for (int u = 0; u < NSUB; u++) {
			pseudo_word(&s, sh->subname[c][u]);
			for (int w = 0; w < SUB_WORDS; w++)
				pseudo_word(&s, sh->subw[c][u][w]);
		}
		sh->cat_price[c] = 5.0 * pow(1.35, (double)c);
	}
	zipf_init(&sh->wz_cat, CAT_WORDS, 1.0);
	zipf_init(&sh->wz_sub, SUB_WORDS, 0.8);
	zipf_init(&sh->item_z, sh->per_cat, 1.0);
	sh->sub = xmalloc(sh->nitems);
	sh->price = xmalloc(sh->nitems * sizeof *sh->price);
	sh->in_stock = xmalloc(sh->nitems);
	uint64_t t = 7;
	for (size_t i = 0; i < sh->nitems; i++) {
		int c = (int)(i % NCAT);
		sh->sub[i] = (unsigned char)(rnd(&t) % NSUB);
		/* log-normal around the category's price, 2 decimals */
		double g = sqrt(-2 * log(1 - unif(&t))) *
			   cos(6.283185307179586 * unif(&t));
		sh->price[i] =
			round(sh->cat_price[c] * exp(0.6 * g) * 100) / 100 + 0.5;
		sh->in_stock[i] = rnd(&t) % 10 != 0;
	}
}

static void shop_free(shop *sh)
{
	free(sh->sub);
	free(sh->price);
	free(sh->in_stock);
	free(sh->wz_cat.cdf);
	free(sh->wz_sub.cdf);
	free(sh->item_z.cdf);
}

/* a word of item/query text for category c, subcategory u */
static const char *shop_word(const shop *sh, int c, int u, uint64_t *s)
{
	double r = unif(s);
	if (r < 0.15)
		return generic[rnd(s) % NGEN];
	if (r < 0.5)
		return sh->subw[c][u][zipf_draw(&sh->wz_sub, s)];
	return sh->catw[c][zipf_draw(&sh->wz_cat, s)];
}

static void write_items(const shop *sh, const char *path)
{
	FILE *f = fopen(path, "w");
	if (!f)
		die("cannot write the items file");
	fprintf(f, "id,title,description,category,price,currency,in_stock,"
		   "quality\n");
	uint64_t s = 11;
	for (size_t i = 0; i < sh->nitems; i++) {
		int c = (int)(i % NCAT), u = sh->sub[i];
		fprintf(f, "i%zu,%s", i, sh->brand[c][rnd(&s) % NBRAND]);
		int nt = 2 + (int)(rnd(&s) % 3);
		for (int w = 0; w < nt; w++)
			fprintf(f, " %s", shop_word(sh, c, u, &s));
		fputc(',', f);
		int nd = 8 + (int)(rnd(&s) % 17);
		for (int w = 0; w < nd; w++)
			fprintf(f, "%s%s", w ? " " : "",
				shop_word(sh, c, u, &s));
		fprintf(f, ",%s/%s,%.2f,EUR,%d,%.2f\n", cat_name[c],
			sh->subname[c][u], sh->price[i], sh->in_stock[i],
			5.0 * unif(&s));
	}
	if (fclose(f))
		die("cannot write the items file");
}

static const char *const ev_type[4] = {"view", "click", "add_to_cart",
					"purchase"};
static const int ev_weight[4] = {1, 2, 4, 8};

static int draw_type(uint64_t *s)
{
	double r = unif(s);
	return r < 0.70 ? 0 : r < 0.90 ? 1 : r < 0.97 ? 2 : 3;
}

/* users' favourite categories: 1 or 2, from the user's own seed */
static int user_favs(size_t u, int fav[2])
{
	uint64_t s = 1000003u * (u + 1);
	fav[0] = (int)(rnd(&s) % NCAT);
	fav[1] = (int)(rnd(&s) % NCAT);
	return rnd(&s) % 2 ? 2 : 1;
}

static size_t draw_item(const shop *sh, int c, uint64_t *s)
{
	return zipf_draw(&sh->item_z, s) * NCAT + (size_t)c;
}

/* Writes the interactions to @p path, or with path NULL replays the same
 * draws and counts each user's events into @p count. */
static void write_interactions(const shop *sh, const char *path,
			       uint32_t *count)
{
	FILE *f = path ? fopen(path, "w") : NULL;
	if (path && !f)
		die("cannot write the interactions file");
	if (f)
		fprintf(f, "user,item,type,weight,ts_ms\n");
	uint64_t s = 23;
	int64_t now = (int64_t)time(NULL) * 1000;
	for (size_t n = 0; n < sh->nix; n++) {
		/* skewed activity: a few heavy users, a long tail */
		size_t u = (size_t)((double)sh->nusers * pow(unif(&s), 1.6));
		int fav[2], nf = user_favs(u, fav);
		int c = unif(&s) < 0.85 ? fav[rnd(&s) % (uint64_t)nf]
					: (int)(rnd(&s) % NCAT);
		size_t it = draw_item(sh, c, &s);
		int t = draw_type(&s);
		int64_t ts = now - (int64_t)(unif(&s) * 30 * 86400000.0);
		if (f)
			fprintf(f, "u%zu,i%zu,%s,%d,%lld\n", u, it,
				ev_type[t], ev_weight[t], (long long)ts);
		else
			count[u]++;
	}
	if (f && fclose(f))
		die("cannot write the interactions file");
}

/* ---- samples and percentiles ------------------------------------------------ */

enum {
	OP_REC1,
	OP_REC,
	OP_SEARCH,
	OP_FEEDBACK,
	OP_STORE_ADD,
	OP_SIMILAR,
	OP_TREND,
	NOP
};
static const char *const op_name[NOP] = {
	"recommend-first", "recommend", "search",  "feedback",
	"store-add",	   "similar",	"trending"};
/* targets of the engine issue (p99, microseconds), 0 = none */
static const double op_target[NOP] = {0, 2000, 5000, 200, 0, 0, 0};
/* what the second row of each op holds: the filtered calls, or for
 * feedback and store-add the users with a full history (at least
 * HIST_MAX = 256 events: the engine keeps and folds in the last 256) */
#define HEAVY 256
static const char *sub_name(int op)
{
	return op == OP_FEEDBACK || op == OP_STORE_ADD ? "hist256"
						       : "filtered";
}

#define NPCT 4
static const double pct[NPCT] = {50, 90, 99, 100};

typedef struct series {
	double *us;  /* wall-clock latencies of one round, microseconds */
	double *cpu; /* the same calls' thread CPU time, microseconds */
	unsigned char *filtered;
	size_t n, cap;
} series;

static void series_add(series *x, double us, double cpu, int filtered)
{
	if (x->n == x->cap) {
		x->cap = x->cap ? x->cap * 2 : 1024;
		x->us = realloc(x->us, x->cap * sizeof *x->us);
		x->cpu = realloc(x->cpu, x->cap * sizeof *x->cpu);
		x->filtered = realloc(x->filtered, x->cap);
		if (!x->us || !x->cpu || !x->filtered)
			die("out of memory");
	}
	x->us[x->n] = us;
	x->cpu[x->n] = cpu;
	x->filtered[x->n++] = (unsigned char)filtered;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* nearest-rank percentiles of v[0..n) (sorted here) */
static void percentiles(double *v, size_t n, double out[NPCT])
{
	qsort(v, n, sizeof *v, cmp_d);
	for (int p = 0; p < NPCT; p++) {
		size_t r = (size_t)ceil(pct[p] / 100.0 * (double)n);
		out[p] = n ? v[r ? r - 1 : 0] : NAN;
	}
}

static double median3(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_d);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* ---- one engine ---------------------------------------------------------- */

typedef struct bench {
	const shop *sh;
	knytt_engine *e;
	const char *label;
	size_t samples;
	uint64_t seed;
	/* users whose state is loaded in the engine (recommend-first done) */
	size_t *loaded;
	size_t nloaded;
	size_t next_user; /* next never-requested user for recommend-first */
	const size_t *perm;    /* the users in a seeded random order */
	const uint32_t *count; /* each user's generated events */
	size_t empty[NOP]; /* queries that returned no result */
} bench;

static void random_filter(const bench *b, uint64_t *s, knytt_filter *f,
			  char *catbuf)
{
	knytt_filter_init(f);
	int c = (int)(rnd(s) % NCAT);
	switch (rnd(s) % 3) {
	case 0:
		if (rnd(s) % 2)
			snprintf(catbuf, 64, "%s", cat_name[c]);
		else
			snprintf(catbuf, 64, "%s/%s", cat_name[c],
				 b->sh->subname[c][rnd(s) % NSUB]);
		f->category_prefix = catbuf;
		break;
	case 1: {
		/* a price band around some category's prices */
		double m = b->sh->cat_price[c];
		f->price_min = m * (0.5 + 0.5 * unif(s));
		f->price_max = f->price_min * (1.5 + unif(s));
		break;
	}
	default:
		f->in_stock_only = 1;
	}
}

static void random_query(const bench *b, uint64_t *s, char *q)
{
	int c = (int)(rnd(s) % NCAT), u = (int)(rnd(s) % NSUB);
	int nw = 1 + (int)(rnd(s) % 3), o = 0;
	for (int w = 0; w < nw; w++)
		o += snprintf(q + o, 128 - (size_t)o, "%s%s", w ? " " : "",
			      shop_word(b->sh, c, u, s));
}

static void user_name(size_t u, char *out)
{
	snprintf(out, 32, "u%zu", u);
}

static size_t pick_loaded(bench *b, uint64_t *s, char *buf)
{
	size_t u = b->loaded[rnd(s) % b->nloaded];
	user_name(u, buf);
	return u;
}

/* Runs @p n ops of kind @p op; with @p x, records each latency. */
static void run_ops(bench *b, int op, size_t n, series *x)
{
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	char user[32], item[32], cat[64], q[128];
	uint64_t *s = &b->seed;
	for (size_t i = 0; i < n; i++) {
		knytt_filter f;
		int filt = 0, rc = 0;
		double t0 = 0, t1 = 0, c0 = 0, c1 = 0;
		switch (op) {
		case OP_REC1: {
			if (b->next_user >= b->sh->nusers)
				die("out of fresh users: fewer samples");
			size_t u = b->perm[b->next_user++];
			user_name(u, user);
			c0 = cpu_s();
			t0 = now_s();
			rc = knytt_engine_recommend(b->e, user, 10, NULL, NULL,
						    r);
			t1 = now_s();
			c1 = cpu_s();
			if (rc == KNYTT_ENOTFOUND) /* never generated */
				continue;
			b->loaded[b->nloaded++] = u;
			break;
		}
		case OP_REC:
			pick_loaded(b, s, user);
			if ((filt = (int)(rnd(s) % 2)))
				random_filter(b, s, &f, cat);
			c0 = cpu_s();
			t0 = now_s();
			rc = knytt_engine_recommend(b->e, user, 10,
						    filt ? &f : NULL, NULL, r);
			t1 = now_s();
			c1 = cpu_s();
			break;
		case OP_SEARCH:
			random_query(b, s, q);
			if ((filt = (int)(rnd(s) % 2)))
				random_filter(b, s, &f, cat);
			c0 = cpu_s();
			t0 = now_s();
			rc = knytt_engine_search(b->e, q, NULL, 0, 10,
						 filt ? &f : NULL, NULL, r, NULL);
			t1 = now_s();
			c1 = cpu_s();
			break;
		case OP_FEEDBACK: {
			size_t u = pick_loaded(b, s, user);
			filt = b->count[u] >= HEAVY;
			int c = (int)(rnd(s) % NCAT), t = draw_type(s);
			snprintf(item, sizeof item, "i%zu",
				 draw_item(b->sh, c, s));
			c0 = cpu_s();
			t0 = now_s();
			rc = knytt_engine_feedback(b->e, user, item, ev_type[t],
						   0, 0);
			t1 = now_s();
			c1 = cpu_s();
			break;
		}
		case OP_STORE_ADD: {
			/* anchor: the store's part of feedback alone (the
			 * same kind of row, no taste update) */
			size_t u = pick_loaded(b, s, user);
			filt = b->count[u] >= HEAVY;
			int c = (int)(rnd(s) % NCAT), t = draw_type(s);
			snprintf(item, sizeof item, "i%zu",
				 draw_item(b->sh, c, s));
			knytt_interaction ix;
			memset(&ix, 0, sizeof ix);
			ix.struct_size = sizeof ix;
			ix.user = user;
			ix.item = item;
			ix.type = ev_type[t];
			ix.weight = ev_weight[t];
			/* outside the clock: with write-behind feedback the
			 * call first waits for the engine's queue */
			knytt_store *st = knytt_engine_store(b->e);
			c0 = cpu_s();
			t0 = now_s();
			rc = knytt_store_interaction_add(st, &ix);
			t1 = now_s();
			c1 = cpu_s();
			break;
		}
		case OP_SIMILAR:
			snprintf(item, sizeof item, "i%zu",
				 draw_item(b->sh, (int)(rnd(s) % NCAT), s));
			if ((filt = (int)(rnd(s) % 2)))
				random_filter(b, s, &f, cat);
			c0 = cpu_s();
			t0 = now_s();
			rc = knytt_engine_similar(b->e, item, 10,
						  filt ? &f : NULL, r);
			t1 = now_s();
			c1 = cpu_s();
			break;
		case OP_TREND: {
			static const double win[3] = {3600, 86400, 604800};
			const char *c = NULL;
			if ((filt = (int)(rnd(s) % 2)))
				c = cat_name[rnd(s) % NCAT];
			c0 = cpu_s();
			t0 = now_s();
			rc = knytt_engine_trending(b->e, 10, win[rnd(s) % 3], c,
						   r);
			t1 = now_s();
			c1 = cpu_s();
			break;
		}
		}
		/* (the bound test quiets a false GCC 12 array-bounds error) */
		ck(rc, op < NOP ? op_name[op] : "op");
		if (op != OP_FEEDBACK && op != OP_STORE_ADD && rc == 0)
			b->empty[op]++;
		if (x)
			series_add(x, (t1 - t0) * 1e6, (c1 - c0) * 1e6, filt);
	}
}

/*
 * Feedback takes effect before it returns: for @p n loaded users, the
 * top recommendation is "purchased" and must be gone from the very next
 * answer; then three clicks on the best-selling items of a category the
 * user does not favour must raise that category's share of the next
 * answer.  Returns the counts through the pointers.
 */
static void verify_feedback(bench *b, size_t n, size_t *bought_ok,
			    size_t *shift_ok, size_t *tried)
{
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	knytt_result r2[10] = {{.struct_size = sizeof(knytt_result)}};
	char user[32], item[32];
	uint64_t s = 4242;
	*bought_ok = *shift_ok = *tried = 0;
	for (size_t i = 0; i < n && i < b->nloaded; i++) {
		size_t u = b->loaded[i];
		user_name(u, user);
		int got = knytt_engine_recommend(b->e, user, 10, NULL, NULL, r);
		ck(got, "verify: recommend");
		if (got == 0)
			continue;
		(*tried)++;
		ck(knytt_engine_feedback(b->e, user, r[0].ext_id, "purchase", 0,
					 0),
		   "verify: feedback");
		got = knytt_engine_recommend(b->e, user, 10, NULL, NULL, r2);
		ck(got, "verify: recommend");
		int gone = 1;
		for (int k = 0; k < got; k++)
			if (r2[k].item_id == r[0].item_id)
				gone = 0;
		*bought_ok += (size_t)gone;
		/* a new interest: the top items of a category not favoured */
		int fav[2], nf = user_favs(u, fav), c;
		do
			c = (int)(rnd(&s) % NCAT);
		while (c == fav[0] || (nf == 2 && c == fav[1]));
		int before = 0, after = 0;
		got = knytt_engine_recommend(b->e, user, 10, NULL, NULL, r2);
		ck(got, "verify: recommend");
		for (int k = 0; k < got; k++)
			before += (size_t)atoi(r2[k].ext_id + 1) % NCAT ==
				  (size_t)c;
		for (int k = 0; k < 3; k++) {
			snprintf(item, sizeof item, "i%d", k * NCAT + c);
			ck(knytt_engine_feedback(b->e, user, item, "click", 0,
						 0),
			   "verify: feedback");
		}
		got = knytt_engine_recommend(b->e, user, 10, NULL, NULL, r2);
		ck(got, "verify: recommend");
		for (int k = 0; k < got; k++)
			after += (size_t)atoi(r2[k].ext_id + 1) % NCAT ==
				 (size_t)c;
		*shift_ok += after > before;
	}
}

/* ---- report ------------------------------------------------------------------ */

typedef struct result {
	const char *engine;
	int op;
	const char *subset; /* "all", or the second row (see sub_name) */
	size_t n;           /* samples per round */
	/* [0] wall clock, [1] thread CPU time: the median over rounds of
	 * each percentile, and each round's percentiles */
	double med[2][NPCT];
	double round[2][8][NPCT];
	int rounds;
} result;

static void summarize(result *res, const char *engine, int op,
		      const char *subset, series *rs, int rounds)
{
	memset(res, 0, sizeof *res);
	res->engine = engine;
	res->op = op;
	res->subset = subset;
	res->rounds = rounds;
	int only_f = strcmp(subset, "all") != 0;
	for (int clk = 0; clk < 2; clk++) {
		for (int k = 0; k < rounds; k++) {
			double *v = xmalloc(rs[k].n * sizeof *v);
			const double *src = clk ? rs[k].cpu : rs[k].us;
			size_t m = 0;
			for (size_t i = 0; i < rs[k].n; i++)
				if (!only_f || rs[k].filtered[i])
					v[m++] = src[i];
			percentiles(v, m, res->round[clk][k]);
			res->n = m;
			free(v);
		}
		for (int p = 0; p < NPCT; p++) {
			double v[8];
			for (int k = 0; k < rounds; k++)
				v[k] = res->round[clk][k][p];
			res->med[clk][p] = median3(v, rounds);
		}
	}
}

/* pass / FAIL of the p99 target on clock clk, "" without a target */
static const char *verdict(const result *r, int clk)
{
	double t = op_target[r->op];
	if (!(t > 0) || strcmp(r->subset, "all"))
		return "";
	return r->med[clk][2] <= t ? "pass" : "FAIL";
}

static void csv_rows(FILE *f, const result *r, int clk)
{
	if (r->n == 0) /* no such calls (recommend-first is never filtered) */
		return;
	for (int k = -1; k < r->rounds; k++) {
		const double *v = k < 0 ? r->med[clk] : r->round[clk][k];
		char rn[16];
		snprintf(rn, sizeof rn, k < 0 ? "median" : "%d", k + 1);
		fprintf(f, "%s,%s,%s,%s,%s,%zu,%.2f,%.2f,%.2f,%.2f,%g,%s\n",
			r->engine, op_name[r->op], r->subset,
			clk ? "cpu" : "wall", rn, r->n, v[0], v[1], v[2], v[3],
			op_target[r->op], k < 0 ? verdict(r, clk) : "");
	}
}

/* ---- main ------------------------------------------------------------------ */

static int file_exists(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && st.st_size > 0;
}

static void rm_db(const char *p)
{
	static const char *const suf[] = {"", "-wal", "-shm"};
	char q[4200];
	for (int i = 0; i < 3; i++) {
		snprintf(q, sizeof q, "%s%s", p, suf[i]);
		if (unlink(q) && errno != ENOENT)
			die("cannot remove an old database");
	}
	/* the engine saves its index next to the database */
	snprintf(q, sizeof q, "rm -f '%s'.*", p);
	if (system(q) != 0)
		die("cannot remove old index files");
}

/* The state right after setup, kept beside the database (dir
 * pristine-NAME/: the database and the index files the engine saved next
 * to it), so that --reuse-db measures the same database every time:
 * every run adds its searches to the search log and its feedback to the
 * interactions (one database had grown to 6.9 million search-log rows
 * and 1.5x its interactions over a day of reruns).  keep: copy it
 * (the database closed); restore: put it back, 0 when there is none. */
static void pristine_dir(const char *db, char *out, size_t cap)
{
	const char *slash = strrchr(db, '/');
	int dl = slash ? (int)(slash - db) : 1;
	snprintf(out, cap, "%.*s/pristine-%s", dl, slash ? db : ".",
		 slash ? slash + 1 : db);
}

static void pristine_keep(const char *db)
{
	char dir[4200], cmd[30000];
	pristine_dir(db, dir, sizeof dir);
	snprintf(cmd, sizeof cmd,
		 "rm -rf '%s' && mkdir -p '%s' && cp -p '%s' '%s'/ && "
		 "for f in '%s'.*; do if [ -e \"$f\" ]; then "
		 "cp -p \"$f\" '%s'/ || exit 1; fi; done",
		 dir, dir, db, dir, db, dir);
	if (system(cmd) != 0)
		die("cannot keep a copy of the database after setup");
}

static int pristine_restore(const char *db)
{
	char dir[4200], cmd[9000];
	pristine_dir(db, dir, sizeof dir);
	struct stat sb;
	if (stat(dir, &sb) != 0)
		return 0;
	rm_db(db);
	snprintf(cmd, sizeof cmd, "cp -p '%s'/* '%.*s'/", dir,
		 (int)(strrchr(db, '/') ? strrchr(db, '/') - db : 1),
		 strrchr(db, '/') ? db : ".");
	if (system(cmd) != 0)
		die("cannot restore the database kept after setup");
	return 1;
}

static void reject_cb(size_t line, const char *field, const char *reason,
		      void *ctx)
{
	size_t *n = ctx;
	if ((*n)++ < 5)
		fprintf(stderr, "rejected line %zu, field %s: %s\n", line,
			field, reason);
}

/* 1: feedback commits before it returns (the engine's default); 0:
 * write-behind, the way a server would run it */
static int sync_feedback;

static knytt_engine *engine_open(const char *db, knytt_model_kind kind,
				 unsigned epochs)
{
	knytt_engine *e;
	char uri[4200];
	ck(knytt_engine_create(&e), "create");
	ck(knytt_engine_set_model(e, kind), "set_model");
	ck(knytt_engine_set_dim(e, 64), "set_dim");
	ck(knytt_engine_set_threads(e, 1), "set_threads");
	ck(knytt_engine_set_feedback_async(e, !sync_feedback),
	   "set_feedback_async");
	if (kind == KNYTT_MODEL_TWOTOWER)
		ck(knytt_engine_set_twotower(e, epochs), "set_twotower");
	snprintf(uri, sizeof uri, "sqlite:%s", db);
	ck(knytt_engine_open(e, uri), "open");
	return e;
}

static int progress_cb(void *ctx, const knytt_progress *p)
{
	fprintf(stderr, "  %s epoch %u/%u loss %.4g %.1f s\n",
		(const char *)ctx, p->epoch, p->epochs, p->loss, p->elapsed);
	return 0;
}

typedef struct setup_times {
	double gen, import_items, import_ix, sync, reopen, train_als,
		train_tt;
	size_t rejected;
} setup_times;

/* Imports the shop into a fresh database, copies it for the two-tower
 * engine, trains both; times each step into @p st. */
static void setup(setup_times *st, const char *items_csv, const char *ix_csv,
		  const char *db_als, const char *db_tt, int twotower,
		  unsigned epochs, knytt_engine **out, knytt_engine **out2)
{
	double t;
	/* import into a fresh database, then copy it for the two-tower */
	rm_db(db_als);
	rm_db(db_tt);
	knytt_engine *e = engine_open(db_als, KNYTT_MODEL_ALS, 0);
	t = now_s();
	int n = knytt_store_import(knytt_engine_store(e), items_csv,
				   KNYTT_RECORD_ITEMS, KNYTT_FORMAT_CSV,
				   reject_cb, &st->rejected);
	ck(n, "import items");
	st->import_items = now_s() - t;
	t = now_s();
	n = knytt_store_import(knytt_engine_store(e), ix_csv,
			       KNYTT_RECORD_INTERACTIONS, KNYTT_FORMAT_CSV,
			       reject_cb, &st->rejected);
	ck(n, "import interactions");
	st->import_ix = now_s() - t;
	if (st->rejected)
		die("the import rejected rows");
	t = now_s();
	ck(knytt_engine_sync(e), "sync");
	st->sync = now_s() - t;
	knytt_engine_close(e);
	if (twotower) {
		char cmd[9000];
		snprintf(cmd, sizeof cmd, "cp '%s' '%s'", db_als, db_tt);
		if (system(cmd) != 0)
			die("cannot copy the database");
	}
	t = now_s();
	e = engine_open(db_als, KNYTT_MODEL_ALS, 0);
	st->reopen = now_s() - t;
	t = now_s();
	fprintf(stderr, "training ALS (dim 64, one thread)\n");
	ck(knytt_engine_train(e, progress_cb, "als"), "train ALS");
	st->train_als = now_s() - t;

	knytt_engine *e2 = NULL;
	if (twotower) {
		e2 = engine_open(db_tt, KNYTT_MODEL_TWOTOWER, epochs);
		t = now_s();
		fprintf(stderr, "training two-tower (dim 64, %u epochs)\n",
			epochs);
		ck(knytt_engine_train(e2, progress_cb, "two-tower"),
		   "train two-tower");
		st->train_tt = now_s() - t;
	}
	/* the state after setup, for later --reuse-db runs */
	knytt_engine_close(e);
	pristine_keep(db_als);
	e = engine_open(db_als, KNYTT_MODEL_ALS, 0);
	if (e2) {
		knytt_engine_close(e2);
		pristine_keep(db_tt);
		e2 = engine_open(db_tt, KNYTT_MODEL_TWOTOWER, epochs);
	}

	*out = e;
	*out2 = e2;
}

/* ---- threads --------------------------------------------------------------- */

/* One thread of a throughput run: its own copy of the bench (own seed,
 * own counters; the loaded users are shared, read only). */
typedef struct worker {
	bench b;
	int op;
	double secs;
	size_t done;
	double cpu; /* this thread's CPU time, seconds */
	pthread_t th;
} worker;

static void *worker_run(void *p)
{
	worker *w = p;
	double end = now_s() + w->secs, c0 = cpu_s();
	while (now_s() < end) {
		run_ops(&w->b, w->op, 20, NULL);
		w->done += 20;
	}
	w->cpu = cpu_s() - c0;
	return NULL;
}

/* CPU time of the whole process (every thread: the engine's writer and
 * checkpoint threads too), seconds */
static double proc_cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Queries per second of @p op with @p nt threads for @p secs seconds;
 * CPU microseconds per query into @p cpu_q (the querying threads') and
 * @p cpu_p (the process's, the writer's backlog flushed included): on a
 * shared machine these say what a query costs when the wall clock
 * cannot. */
static double throughput(const bench *b, int op, int nt, double secs,
			 double *cpu_q, double *cpu_p)
{
	worker *w = calloc((size_t)nt, sizeof *w);
	if (!w)
		die("out of memory");
	/* no backlog of an earlier run's search log in the write-behind
	 * queue: each run pays for its own */
	ck(knytt_engine_flush(b->e), "flush");
	double t0 = now_s(), p0 = proc_cpu_s(), cq = 0;
	for (int i = 0; i < nt; i++) {
		w[i].b = *b;
		w[i].b.seed = b->seed + 1000u * (uint64_t)(i + 1);
		w[i].op = op;
		w[i].secs = secs;
		if (pthread_create(&w[i].th, NULL, worker_run, &w[i]))
			die("pthread_create");
	}
	size_t done = 0;
	for (int i = 0; i < nt; i++) {
		pthread_join(w[i].th, NULL);
		done += w[i].done;
		cq += w[i].cpu;
	}
	double el = now_s() - t0;
	ck(knytt_engine_flush(b->e), "flush");
	*cpu_q = 1e6 * cq / (double)done;
	*cpu_p = 1e6 * (proc_cpu_s() - p0) / (double)done;
	free(w);
	return (double)done / el;
}

/* A feedback writer at a fixed rate, until stop. */
typedef struct feeder {
	bench b;
	double rate;
	int stop; /* atomic */
	size_t sent;
	pthread_t th;
} feeder;

static void *feeder_run(void *p)
{
	feeder *f = p;
	double t0 = now_s();
	while (!__atomic_load_n(&f->stop, __ATOMIC_RELAXED)) {
		double due = t0 + (double)f->sent / f->rate;
		double wait = due - now_s();
		if (wait > 0) {
			struct timespec ts = {(time_t)wait,
					      (long)((wait - (double)(time_t)wait) *
						     1e9)};
			nanosleep(&ts, NULL);
			continue;
		}
		run_ops(&f->b, OP_FEEDBACK, 1, NULL);
		f->sent++;
	}
	return NULL;
}

/*
 * Throughput of recommend and hybrid search at 1..nt threads and the
 * scaling from 1 to 2, then recommend latency on one thread while
 * another feeds back 1,000 events per second.
 */
#define FEED_SECS 5.0 /* recommend beside the feeder at least this long */

static void thread_report(bench *b, int nt, double secs)
{
	static const int ops[2] = {OP_REC, OP_SEARCH};
	static const char *names[2] = {"recommend", "search"};
	enum { TR = 5 }; /* interleaved rounds */
	double load[3] = {0, 0, 0};
	if (getloadavg(load, 3) < 0)
		load[0] = load[1] = load[2] = -1;
	/*
	 * The speed of a shared virtual CPU drifts by tens of percent over
	 * seconds, so 1 and 2 threads measured one after the other can
	 * differ by the drift alone.  Each thread count runs TR times,
	 * interleaved (1, 2, .. N, then N .. 1, ...), and the scaling is
	 * the median of the per-round ratios, each taken seconds apart.
	 */
	printf("\n%s: threads (%d interleaved rounds of %.1f s per thread "
	       "count, medians; load average before: %.2f %.2f %.2f, %ld "
	       "CPUs online)\n",
	       b->label, TR, secs / TR * 2, load[0], load[1], load[2],
	       sysconf(_SC_NPROCESSORS_ONLN));
	for (int k = 0; k < 2; k++) {
		double q[9][TR], cq[9][TR], cp[9][TR], ratio[TR];
		for (int r = 0; r < TR; r++) {
			for (int i = 1; i <= nt; i++) {
				int t = r % 2 ? nt + 1 - i : i;
				q[t][r] = throughput(b, ops[k], t, secs / TR * 2,
						     &cq[t][r], &cp[t][r]);
			}
			ratio[r] = q[2][r] / q[1][r];
		}
		for (int t = 1; t <= nt; t++)
			printf("throughput %s %dt: %.0f/s (cpu per query: "
			       "%.1f us in the querying threads, %.1f us in "
			       "the process)\n", names[k], t,
			       median3(q[t], TR), median3(cq[t], TR),
			       median3(cp[t], TR));
		double lo = ratio[0], hi = ratio[0];
		for (int r = 1; r < TR; r++) {
			lo = ratio[r] < lo ? ratio[r] : lo;
			hi = ratio[r] > hi ? ratio[r] : hi;
		}
		printf("scaling %s 2t/1t: %.2f (rounds %.2f to %.2f)\n",
		       names[k], median3(ratio, TR), lo, hi);
	}
	/* recommend p99 beside a writer at 1,000 events/s */
	feeder f;
	memset(&f, 0, sizeof f);
	f.b = *b;
	f.b.seed = b->seed + 77;
	f.rate = 1000;
	series x;
	memset(&x, 0, sizeof x);
	ck(knytt_engine_flush(b->e), "flush");
	double t0 = now_s();
	if (pthread_create(&f.th, NULL, feeder_run, &f))
		die("pthread_create");
	/* long enough for thousands of events (1,000 samples alone took
	 * ~30 ms: a few dozen events) */
	do
		run_ops(b, OP_REC, b->samples, &x);
	while (now_s() - t0 < FEED_SECS);
	__atomic_store_n(&f.stop, 1, __ATOMIC_RELAXED);
	pthread_join(f.th, NULL);
	double el = now_s() - t0, pc[NPCT];
	percentiles(x.us, x.n, pc);
	printf("recommend 1t beside feedback at %.0f/s (%zu events and %zu "
	       "recommends in %.1f s): p50 %.1f us, p99 %.1f us, max %.1f "
	       "us\n",
	       f.rate, f.sent, x.n, el, pc[0], pc[2], pc[3]);
	if (getloadavg(load, 3) >= 0)
		printf("load average after: %.2f %.2f %.2f\n", load[0],
		       load[1], load[2]);
	free(x.us);
	free(x.cpu);
	free(x.filtered);
}

int main(int argc, char **argv)
{
	int quick = 0, regen = 0, rounds = 3, twotower = 1, reuse = 0;
	int only = -1, threads = 0;
	unsigned epochs = 1;
	size_t samples = 0;
	const char *dir = NULL, *csv = NULL, *cdf = NULL;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--quick"))
			quick = 1;
		else if (!strcmp(a, "--regen"))
			regen = 1;
		else if (!strcmp(a, "--no-twotower"))
			twotower = 0;
		else if (!strcmp(a, "--reuse-db"))
			reuse = 1;
		else if (!strcmp(a, "--sync-feedback"))
			sync_feedback = 1;
		else if (!strcmp(a, "--only") && i + 1 < argc) {
			const char *o = argv[++i];
			for (int k = 0; k < NOP; k++)
				if (!strcmp(o, op_name[k]))
					only = k;
			if (only < 0)
				die("--only: recommend-first, recommend, search, "
				    "feedback, similar or trending");
		}
		else if (!strcmp(a, "--dir") && i + 1 < argc)
			dir = argv[++i];
		else if (!strcmp(a, "--csv") && i + 1 < argc)
			csv = argv[++i];
		else if (!strcmp(a, "--cdf") && i + 1 < argc)
			cdf = argv[++i];
		else if (!strcmp(a, "--rounds") && i + 1 < argc)
			rounds = atoi(argv[++i]);
		else if (!strcmp(a, "--samples") && i + 1 < argc)
			samples = (size_t)atol(argv[++i]);
		else if (!strcmp(a, "--epochs") && i + 1 < argc)
			epochs = (unsigned)atoi(argv[++i]);
		else if (!strcmp(a, "--threads") && i + 1 < argc)
			threads = atoi(argv[++i]);
		else
			die("usage: engine_bench [--quick] [--regen] [--dir DIR] "
			    "[--rounds N] [--samples N] [--csv FILE] "
			    "[--cdf FILE] [--epochs N] [--no-twotower] "
			    "[--reuse-db] [--only OP] [--sync-feedback] "
			    "[--threads N]");
	}
	if (threads < 0 || threads > 8)
		die("--threads must be 1..8");
	if (rounds < 1 || rounds > 8)
		die("--rounds must be 1..8");
	if (!dir)
		die("--dir is required");
	if (!samples)
		samples = quick ? 1000 : 4000;
	/* the quick run always reports the 1 -> 2 thread scaling */
	if (quick && !threads)
		threads = 2;
	mkdir(dir, 0777);

	shop sh;
	shop_init(&sh, quick);
	setup_times st;
	memset(&st, 0, sizeof st);
	char items_csv[4096], ix_csv[4096], db_als[4096], db_tt[4096];
	snprintf(items_csv, sizeof items_csv, "%s/items.csv", dir);
	snprintf(ix_csv, sizeof ix_csv, "%s/interactions.csv", dir);
	snprintf(db_als, sizeof db_als, "%s/als.db", dir);
	snprintf(db_tt, sizeof db_tt, "%s/twotower.db", dir);
	double t = now_s();
	if (regen || !file_exists(items_csv) || !file_exists(ix_csv)) {
		fprintf(stderr, "generating %zu items, %zu users, %zu "
				"interactions in %s\n",
			sh.nitems, sh.nusers, sh.nix, dir);
		write_items(&sh, items_csv);
		write_interactions(&sh, ix_csv, NULL);
		st.gen = now_s() - t;
	}

	knytt_engine *e, *e2 = NULL;
	int restored = 0;
	if (reuse) {
		/* the databases of an earlier run, model and index restored */
		if (!file_exists(db_als) || (twotower && !file_exists(db_tt)))
			die("--reuse-db: no database of an earlier run");
		restored = pristine_restore(db_als);
		if (twotower)
			restored &= pristine_restore(db_tt);
		e = engine_open(db_als, KNYTT_MODEL_ALS, 0);
		if (twotower)
			e2 = engine_open(db_tt, KNYTT_MODEL_TWOTOWER, epochs);
	} else {
		setup(&st, items_csv, ix_csv, db_als, db_tt, twotower, epochs,
		      &e, &e2);
	}

	/* the users in a seeded random order (user ids correlate with
	 * activity), and their event counts */
	size_t *perm = xmalloc(sh.nusers * sizeof *perm);
	uint32_t *count = calloc(sh.nusers, sizeof *count);
	if (!count)
		die("out of memory");
	write_interactions(&sh, NULL, count);
	uint64_t ps = 31337;
	for (size_t i = 0; i < sh.nusers; i++)
		perm[i] = i;
	for (size_t i = sh.nusers; i > 1; i--) {
		size_t j = rnd(&ps) % i, x = perm[i - 1];
		perm[i - 1] = perm[j];
		perm[j] = x;
	}

	/* per engine: first requests, warm-up, then rounds of every op */
	int neng = twotower ? 2 : 1;
	knytt_engine *eng[2] = {e, e2};
	const char *label[2] = {"als", "twotower"};
	size_t nfirst = quick ? 200 : 1000;
	result res[2][NOP][2];
	size_t empty[2][NOP], vt[2], vb[2], vs[2];
	FILE *cf = cdf ? fopen(cdf, "w") : NULL;
	if (cdf && !cf)
		die("cannot write the CDF file");
	for (int en = 0; en < neng; en++) {
		bench b;
		memset(&b, 0, sizeof b);
		b.sh = &sh;
		b.e = eng[en];
		b.label = label[en];
		b.samples = samples;
		b.seed = 99 + (uint64_t)en;
		b.loaded = xmalloc(sh.nusers * sizeof *b.loaded);
		b.perm = perm;
		b.count = count;
		series rs[NOP][8];
		memset(rs, 0, sizeof rs);
		fprintf(stderr, "%s: measuring\n", label[en]);
		/* warm-up: the first requests are measured apart; then a few
		 * hundred of every op, not recorded */
		run_ops(&b, OP_REC1, 100, NULL);
		for (int op = OP_REC; op < NOP; op++)
			run_ops(&b, op, 300, NULL);
		for (int k = 0; k < rounds; k++) {
			run_ops(&b, OP_REC1, nfirst, &rs[OP_REC1][k]);
			for (int op = OP_REC; op < NOP; op++)
				if (only < 0 || only == op)
					run_ops(&b, op,
						op == OP_TREND ? samples / 4
							       : samples,
						&rs[op][k]);
		}
		for (int op = 0; op < NOP; op++) {
			summarize(&res[en][op][0], label[en], op, "all", rs[op],
				  rounds);
			summarize(&res[en][op][1], label[en], op, sub_name(op),
				  rs[op], rounds);
		}
		if (threads)
			thread_report(&b, threads < 2 ? 2 : threads,
				      quick ? 3.0 : 5.0);
		memcpy(empty[en], b.empty, sizeof b.empty);
		verify_feedback(&b, quick ? 100 : 200, &vb[en], &vs[en],
				&vt[en]);
		if (cf) {
			/* the last round's distribution per op */
			for (int op = 0; op < NOP; op++) {
				series *x = &rs[op][rounds - 1];
				for (int clk = 0; clk < 2; clk++) {
					double *v = clk ? x->cpu : x->us;
					qsort(v, x->n, sizeof *v, cmp_d);
					fprintf(cf, "# %s %s %s\n", label[en],
						op_name[op],
						clk ? "cpu" : "wall");
					for (size_t i = 0; i < x->n; i++)
						fprintf(cf, "%.2f %.5f\n", v[i],
							(double)(i + 1) /
								(double)x->n);
					fprintf(cf, "\n\n");
				}
			}
		}
		for (int op = 0; op < NOP; op++)
			for (int k = 0; k < rounds; k++) {
				free(rs[op][k].us);
				free(rs[op][k].cpu);
				free(rs[op][k].filtered);
			}
		free(b.loaded);
	}
	if (cf && fclose(cf))
		die("cannot write the CDF file");

	/* the report */
	printf("\nknytt engine latency: %zu items (64 dims), %zu users, %zu "
	       "interactions, SQLite, one thread, %s\n",
	       sh.nitems, sh.nusers, sh.nix, knytt_simd_name());
	printf("median over %d rounds of each percentile, microseconds; "
	       "k = 10; %zu samples per op and round (trending %zu, "
	       "recommend-first %zu); feedback %s\n\n",
	       rounds, samples, samples / 4, nfirst,
	       sync_feedback ? "stored before return (--sync-feedback)"
			     : "write-behind");
	printf("%-8s %-15s %-8s %5s | %8s %8s %8s %8s | %8s %8s | "
	       "%s\n",
	       "engine", "op", "subset", "n", "p50", "p90", "p99", "max",
	       "cpu p50", "cpu p99", "target p99: wall / cpu");
	for (int en = 0; en < neng; en++)
		for (int op = 0; op < NOP; op++)
			for (int sub = 0; sub < 2; sub++) {
				const result *r = &res[en][op][sub];
				if ((sub == 1 && op == OP_REC1) || r->n == 0)
					continue;
				char tg[48] = "";
				if (op_target[op] > 0 && sub == 0)
					snprintf(tg, sizeof tg,
						 "<= %g us: %s / %s",
						 op_target[op], verdict(r, 0),
						 verdict(r, 1));
				printf("%-8s %-15s %-8s %5zu | %8.1f %8.1f "
				       "%8.1f %8.1f | %8.1f %8.1f | %s\n",
				       r->engine, op_name[op], r->subset, r->n,
				       r->med[0][0], r->med[0][1], r->med[0][2],
				       r->med[0][3], r->med[1][0], r->med[1][2],
				       tg);
			}
	if (reuse) {
		printf("\nsetup: databases of an earlier run reused "
		       "(--reuse-db), nothing imported or trained; %s\n",
		       restored ? "restored to their state after that run's "
				  "setup"
				: "as that run left them (no copy of their "
				  "state after setup: run without --reuse-db "
				  "once)");
	} else {
		printf("\nsetup (one thread, not targets): generate %.1f s%s, "
		       "import items %.1f s, import interactions %.1f s, "
		       "sync %.1f s, re-open %.1f s, train ALS %.1f s",
		       st.gen, st.gen > 0 ? "" : " (CSV reused)",
		       st.import_items, st.import_ix, st.sync, st.reopen,
		       st.train_als);
		if (twotower)
			printf(", train two-tower (%u epochs) %.1f s", epochs,
			       st.train_tt);
		printf("\n");
	}
	for (int en = 0; en < neng; en++)
		printf("%s: feedback takes effect at once: purchased top item "
		       "gone from the next recommend %zu/%zu, 3 clicks raise "
		       "the clicked category %zu/%zu; empty answers: "
		       "recommend %zu, search %zu, similar %zu, trending %zu\n",
		       label[en], vb[en], vt[en], vs[en], vt[en],
		       empty[en][OP_REC] + empty[en][OP_REC1],
		       empty[en][OP_SEARCH], empty[en][OP_SIMILAR],
		       empty[en][OP_TREND]);

	if (csv) {
		FILE *f = fopen(csv, "w");
		if (!f)
			die("cannot write the CSV file");
		fprintf(f, "engine,op,subset,clock,round,n,p50_us,p90_us,"
			   "p99_us,max_us,target_p99_us,verdict\n");
		for (int en = 0; en < neng; en++)
			for (int op = 0; op < NOP; op++)
				for (int sub = 0; sub < 2; sub++)
					for (int clk = 0; clk < 2; clk++)
						csv_rows(f, &res[en][op][sub],
							 clk);
		/* setup times: subset "seconds", the value in p50_us */
		const char *sn[6] = {"generate", "import_items",
				     "import_interactions", "sync",
				     "train_als", "train_twotower"};
		double sv[6] = {st.gen,	 st.import_items, st.import_ix,
				st.sync, st.train_als,	  st.train_tt};
		for (int i = 0; i < (twotower ? 6 : 5); i++)
			fprintf(f, "setup,%s,seconds,,,1,%.2f,,,,,\n", sn[i],
				sv[i]);
		if (fclose(f))
			die("cannot write the CSV file");
	}
	knytt_engine_close(e);
	knytt_engine_close(e2);
	shop_free(&sh);
	free(perm);
	free(count);
	return 0;
}
