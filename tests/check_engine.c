/*
 * check_engine.c -- knytt_engine on a planted synthetic shop: shoppers
 * who like one category are recommended that category, sessions shift
 * the results, filters hold, purchases and deleted items never return,
 * cold users get popular items, similar items share a category, hybrid
 * search works by keyword and by meaning, state survives a re-open.
 */
#include "knytt.h"
#include "../lib/internal.h"
#include "../lib/engine/engine_int.h"
#include "../lib/store/store_int.h"
#include "testutil.h"
#include "pgserver.h"

#include <math.h>
#include <stddef.h>
#include <time.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#define NCAT 6
#define PER_CAT 40
#define NUSERS 120
#define EV_PER_USER 25

static const char *cats[NCAT] = { "shoes/running", "shoes/hiking",
				  "kitchen/coffee", "garden/tools",
				  "books/scifi", "toys/lego" };
/* each category's words: titles draw from these, so text models can learn
 * that words of one category belong together */
static const char *words[NCAT][6] = {
	{ "running", "marathon", "sprint", "cushioned", "jogging", "trainer" },
	{ "hiking", "trail", "waterproof", "boot", "mountain", "trekking" },
	{ "espresso", "coffee", "grinder", "barista", "brew", "roast" },
	{ "garden", "shovel", "pruning", "rake", "hedge", "soil" },
	{ "galaxy", "starship", "alien", "robot", "cyberpunk", "nebula" },
	{ "brick", "castle", "minifigure", "spaceship", "builder", "set" },
};

static char dbpath[128];

static int cat_of(const char *ext)
{
	/* item ids are "c<cat>-<n>" */
	return ext[1] - '0';
}

static int user_cat(int u)
{
	return u % NCAT;
}

static double item_price(int c, int i)
{
	return 10.0 + 10.0 * c + (i % 10) * 3.0;
}

static void make_item(knytt_item *it, int c, int i, char *ext, char *title)
{
	uint64_t s = (uint64_t)(c * 1000 + i) * 7919u;
	sprintf(ext, "c%d-%d", c, i);
	sprintf(title, "%s %s %s", words[c][tu_rand(&s) % 6],
		words[c][tu_rand(&s) % 6], i % 2 ? "deluxe" : "basic");
	memset(it, 0, sizeof *it);
	it->struct_size = sizeof *it;
	it->ext_id = ext;
	it->title = title;
	it->description = words[c][i % 6];
	it->category = cats[c];
	it->price = item_price(c, i);
	it->in_stock = i % 7 != 0;
	it->quality = (double)(i % 5);
}

typedef void (*engine_cfg)(knytt_engine *e);

static knytt_engine *open_engine_cfg(knytt_model_kind kind, int fresh,
				     int async, engine_cfg cfg)
{
	if (fresh) {
		snprintf(dbpath, sizeof dbpath, "/tmp/knytt-engine-%d-%d.db",
			 (int)getpid(), (int)kind);
		tu_rm_db(dbpath);
	}
	char uri[160];
	snprintf(uri, sizeof uri, "sqlite:%s", dbpath);
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_model(e, kind), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, 16), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_threads(e, 1), KNYTT_OK);
	if (kind == KNYTT_MODEL_TWOTOWER)
		ck_assert_int_eq(knytt_engine_set_twotower(e, 8), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_feedback_async(e, async), KNYTT_OK);
	if (cfg)
		cfg(e);
	ck_assert_msg(knytt_engine_open(e, uri) == KNYTT_OK, "%s",
		      knytt_errmsg());
	return e;
}

static knytt_engine *open_engine_opt(knytt_model_kind kind, int fresh,
				     int async)
{
	return open_engine_cfg(kind, fresh, async, NULL);
}

static knytt_engine *open_engine(knytt_model_kind kind, int fresh)
{
	return open_engine_opt(kind, fresh, 0);
}

static void cleanup(void)
{
	tu_rm_db(dbpath);
}

/* NCAT categories of @p per_cat items each, text only (make_item). */
static void add_items(knytt_engine *e, int per_cat)
{
	char ext[32], title[128];
	knytt_item it;
	for (int c = 0; c < NCAT; c++)
		for (int i = 0; i < per_cat; i++) {
			make_item(&it, c, i, ext, title);
			ck_assert_msg(knytt_engine_item_upsert(e, &it, NULL, 0) ==
					      KNYTT_OK,
				      "%s", knytt_errmsg());
		}
}

/* The shop: items, then each user's past events (90% in their category,
 * purchases now and then), spread over the ten days before @p now_ms. */
static void populate_at(knytt_engine *e, int64_t now_ms)
{
	add_items(e, PER_CAT);
	char ext[32];
	uint64_t s = 99;
	int64_t now = now_ms;
	for (int u = 0; u < NUSERS; u++) {
		char user[16];
		sprintf(user, "u%d", u);
		for (int k = 0; k < EV_PER_USER; k++) {
			int c = tu_rand(&s) % 10 == 0 ? (int)(tu_rand(&s) % NCAT)
						      : user_cat(u);
			/* each user favours a few items of the category, so
			 * co-interactions carry signal */
			int i = (int)(tu_rand(&s) % (PER_CAT / 2)) +
				((u / NCAT) % 2) * (PER_CAT / 2);
			sprintf(ext, "c%d-%d", c, i);
			const char *type = k % 9 == 8 ? "purchase"
					   : k % 3 == 0 ? "click"
							: "view";
			int64_t ts = now - (int64_t)(EV_PER_USER - k) * 3600000 *
						   9;
			ck_assert_msg(knytt_engine_feedback(e, user, ext, type, 0,
							    ts) == KNYTT_OK,
				      "%s", knytt_errmsg());
		}
	}
}

/* Options that keep what the user already saw: the tests of taste and
 * filters measure the ranking of the whole shop, not the exclusion rule
 * (which by default hides every item of the history). */
static const knytt_rec_options *keep_seen(void)
{
	static knytt_rec_options o;
	knytt_rec_options_init(&o);
	o.exclude_seen = 0;
	return &o;
}

static void populate(knytt_engine *e)
{
	populate_at(e, (int64_t)time(NULL) * 1000);
}

static int count_cat(const knytt_result *r, int n, int c)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		k += cat_of(r[i].ext_id) == c;
	return k;
}

START_TEST(recommends_the_planted_category)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	ck_assert_msg(knytt_engine_train(e, NULL, NULL) == KNYTT_OK, "%s",
		      knytt_errmsg());
	knytt_train_status st = {.struct_size = sizeof st};
	ck_assert_int_eq(knytt_engine_train_status(e, &st), KNYTT_OK);
	ck_assert_int_gt(st.model_version, 0);
	ck_assert_uint_gt(st.items_indexed, 0);
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	int good = 0, total = 0;
	for (int u = 0; u < NUSERS; u += 7) {
		char user[16];
		sprintf(user, "u%d", u);
		int n = knytt_engine_recommend(e, user, 10, NULL, keep_seen(),
					       r);
		ck_assert_int_eq(n, 10);
		good += count_cat(r, n, user_cat(u));
		total += n;
		for (int i = 0; i < n; i++) {
			ck_assert(r[i].reason == KNYTT_REASON_TASTE ||
				  r[i].reason == KNYTT_REASON_SESSION);
			if (i)
				ck_assert(r[i].score <= r[i - 1].score + 1e-6);
		}
	}
	ck_assert_msg(good >= total * 8 / 10,
		      "only %d of %d recommendations in the user's category",
		      good, total);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

START_TEST(session_feedback_shifts_results)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	const char *user = "u0"; /* likes category 0 */
	int n = knytt_engine_recommend(e, user, 10, NULL, NULL, r);
	int before = count_cat(r, n, 3);
	/* a burst of interest in garden tools, now */
	char ext[32];
	for (int i = 0; i < 6; i++) {
		sprintf(ext, "c3-%d", i);
		ck_assert_int_eq(knytt_engine_feedback(e, user, ext, "click", 0,
						       0),
				 KNYTT_OK);
	}
	n = knytt_engine_recommend(e, user, 10, NULL, NULL, r);
	int after = count_cat(r, n, 3), sess = 0;
	for (int i = 0; i < n; i++) {
		sess += r[i].reason == KNYTT_REASON_SESSION;
		if (i) /* one ranking, one score scale */
			ck_assert(r[i].score <= r[i - 1].score + 1e-9);
	}
	ck_assert_msg(after >= before + 3,
		      "garden items before %d, after %d", before, after);
	ck_assert_int_gt(sess, 0);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

static int passes(knytt_engine *e, const knytt_result *r,
		  const knytt_filter *f)
{
	knytt_item *it = NULL;
	if (knytt_store_item_get_id(knytt_engine_store(e), r->item_id, &it))
		return 0;
	int ok = !it->deleted;
	if (f->category_prefix) {
		size_t l = strlen(f->category_prefix);
		ok &= strncmp(it->category, f->category_prefix, l) == 0 &&
		      (it->category[l] == 0 || it->category[l] == '/');
	}
	if (f->price_min > 0)
		ok &= it->price >= f->price_min;
	if (!isnan(f->price_max) && f->price_max != 0)
		ok &= it->price <= f->price_max;
	if (f->in_stock_only)
		ok &= it->in_stock;
	if (!isnan(f->min_quality))
		ok &= it->quality >= f->min_quality;
	knytt_free(it);
	return ok;
}

START_TEST(filters_are_never_violated)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	static const char *prefixes[] = { NULL, "shoes", "shoes/hiking",
					  "kitchen", "toys/lego", "sho" };
	uint64_t s = 4242;
	knytt_result r[20] = {{.struct_size = sizeof(knytt_result)}};
	int checked = 0, trials = tu_sanitize() ? 40 : 150;
	for (int t = 0; t < trials; t++) {
		knytt_filter f;
		knytt_filter_init(&f);
		f.category_prefix = prefixes[tu_rand(&s) % 6];
		if (tu_rand(&s) % 2)
			f.price_min = 10 + (double)(tu_rand(&s) % 50);
		if (tu_rand(&s) % 2)
			f.price_max = f.price_min + (double)(tu_rand(&s) % 60);
		f.in_stock_only = (int)(tu_rand(&s) % 2);
		if (tu_rand(&s) % 2)
			f.min_quality = (double)(tu_rand(&s) % 5);
		char user[16];
		sprintf(user, "u%d", (int)(tu_rand(&s) % NUSERS));
		int n;
		float v[16];
		switch (t % 5) {
		case 0:
			n = knytt_engine_recommend(e, user, 20, &f, NULL, r);
			break;
		case 4:
			/* text and a vector: the vector half scans the rows
			 * of a selective filter, else searches the index */
			for (int j = 0; j < 16; j++)
				v[j] = (float)(tu_rand(&s) % 200) / 100.0f - 1;
			n = knytt_engine_search(e, "boot", v, 16, 20, &f, NULL,
						r, NULL);
			break;
		case 1:
			n = knytt_engine_similar(e, "c1-3", 20, &f, r);
			break;
		case 2:
			n = knytt_engine_search(e, "trail boot", NULL, 0, 20, &f,
						user, r, NULL);
			break;
		default:
			n = knytt_engine_trending(e, 20, 86400,
						  f.category_prefix, r);
			f.price_min = 0; /* trending filters category only */
			f.price_max = NAN;
			f.in_stock_only = 0;
			f.min_quality = NAN;
			break;
		}
		ck_assert_msg(n >= 0, "%s", knytt_errmsg());
		for (int i = 0; i < n; i++) {
			ck_assert_msg(passes(e, &r[i], &f),
				      "case %d: %s violates the filter", t,
				      r[i].ext_id);
			checked++;
		}
	}
	/* most filters leave many items: the check saw real results */
	ck_assert_int_gt(checked, trials * 5);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

START_TEST(purchases_and_deleted_items_never_return)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt_result r[60] = {{.struct_size = sizeof(knytt_result)}};
	int n = knytt_engine_recommend(e, "u2", 5, NULL, NULL, r);
	ck_assert_int_eq(n, 5);
	char top[64];
	strcpy(top, r[0].ext_id);
	ck_assert_int_eq(knytt_engine_feedback(e, "u2", top, "purchase", 0, 0),
			 KNYTT_OK);
	n = knytt_engine_recommend(e, "u2", 60, NULL, NULL, r);
	for (int i = 0; i < n; i++)
		ck_assert_str_ne(r[i].ext_id, top);
	/* delete the next best: gone from every query at once */
	char gone[64];
	strcpy(gone, r[0].ext_id);
	ck_assert_int_eq(knytt_engine_item_delete(e, gone), KNYTT_OK);
	n = knytt_engine_recommend(e, "u2", 60, NULL, NULL, r);
	for (int i = 0; i < n; i++)
		ck_assert_str_ne(r[i].ext_id, gone);
	n = knytt_engine_similar(e, top, 60, NULL, r);
	for (int i = 0; i < n; i++)
		ck_assert_str_ne(r[i].ext_id, gone);
	n = knytt_engine_trending(e, 60, 604800, NULL, r);
	for (int i = 0; i < n; i++)
		ck_assert_str_ne(r[i].ext_id, gone);
	n = knytt_engine_search(e, words[cat_of(gone)][0], NULL, 0, 60, NULL,
				NULL, r, NULL);
	for (int i = 0; i < n; i++)
		ck_assert_str_ne(r[i].ext_id, gone);
	ck_assert_int_eq(knytt_engine_feedback(e, "u2", gone, "view", 0, 0),
			 KNYTT_ENOTFOUND);
	ck_assert_int_eq(knytt_engine_similar(e, gone, 5, NULL, r),
			 KNYTT_ENOTFOUND);
	/* a price change holds for the very next query */
	knytt_filter f;
	knytt_filter_init(&f);
	f.price_max = 1000;
	n = knytt_engine_recommend(e, "u2", 1, &f, NULL, r);
	ck_assert_int_eq(n, 1);
	knytt_item *it = NULL;
	ck_assert_int_eq(knytt_store_item_get(knytt_engine_store(e),
					      r[0].ext_id, &it),
			 KNYTT_OK);
	it->price = 5000;
	char moved[64];
	strcpy(moved, r[0].ext_id);
	ck_assert_int_eq(knytt_engine_item_upsert(e, it, NULL, 0), KNYTT_OK);
	knytt_free(it);
	n = knytt_engine_recommend(e, "u2", 60, &f, NULL, r);
	for (int i = 0; i < n; i++)
		ck_assert_str_ne(r[i].ext_id, moved);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

START_TEST(cold_user_gets_popular_items)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	uint64_t uid;
	ck_assert_int_eq(knytt_store_user_upsert(knytt_engine_store(e), "new",
						 NULL, &uid),
			 KNYTT_OK);
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	knytt_result t[10] = {{.struct_size = sizeof(knytt_result)}};
	int n = knytt_engine_recommend(e, "new", 10, NULL, NULL, r);
	ck_assert_int_eq(n, 10);
	for (int i = 0; i < n; i++)
		ck_assert(r[i].reason == KNYTT_REASON_TRENDING ||
			  r[i].reason == KNYTT_REASON_POPULAR);
	int m = knytt_engine_trending(e, 10, 86400, NULL, t);
	ck_assert_int_eq(m, 10);
	ck_assert_str_eq(r[0].ext_id, t[0].ext_id);
	/* within a filter */
	knytt_filter f;
	knytt_filter_init(&f);
	f.category_prefix = "books";
	n = knytt_engine_recommend(e, "new", 10, &f, NULL, r);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(count_cat(r, n, 4), n);
	/* a user the store never saw is an error, not a cold user */
	ck_assert_int_eq(knytt_engine_recommend(e, "nobody", 10, NULL, NULL, r),
			 KNYTT_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "nobody"));
	knytt_engine_close(e);
	cleanup();
}
END_TEST

START_TEST(similar_items_share_the_category)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	int good = 0, total = 0;
	for (int c = 0; c < NCAT; c++) {
		char ext[32];
		sprintf(ext, "c%d-%d", c, 3);
		int n = knytt_engine_similar(e, ext, 10, NULL, r);
		ck_assert_int_gt(n, 0);
		for (int i = 0; i < n; i++) {
			ck_assert_str_ne(r[i].ext_id, ext);
			ck_assert_int_eq(r[i].reason, KNYTT_REASON_SIMILAR);
		}
		good += count_cat(r, n, c);
		total += n;
	}
	ck_assert_msg(good >= total * 8 / 10, "%d of %d similar share the "
					      "category",
		      good, total);
	/* an item added after training has no vector: co-interactions */
	char ext[32] = "c2-new", title[64] = "espresso grinder";
	knytt_item it;
	make_item(&it, 2, 0, ext, title);
	strcpy(ext, "c2-new");
	ck_assert_int_eq(knytt_engine_item_upsert(e, &it, NULL, 0), KNYTT_OK);
	for (int u = 2; u < 40; u += NCAT) {
		char user[16];
		sprintf(user, "u%d", u);
		ck_assert_int_eq(knytt_engine_feedback(e, user, ext, "view", 0,
						       0),
				 KNYTT_OK);
	}
	int n = knytt_engine_similar(e, ext, 10, NULL, r);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(r[0].reason, KNYTT_REASON_COVIEW);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

START_TEST(hybrid_search_by_word_and_meaning)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_TWOTOWER, 1);
	populate(e);
	ck_assert_msg(knytt_engine_train(e, NULL, NULL) == KNYTT_OK, "%s",
		      knytt_errmsg());
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	uint64_t log_id = 0;
	/* an exact title word: keyword hits, the right category first */
	int n = knytt_engine_search(e, "espresso", NULL, 0, 10, NULL, NULL, r,
				    &log_id);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(cat_of(r[0].ext_id), 2);
	ck_assert_int_gt(log_id, 0);
	char *q = NULL;
	int cnt = -1;
	uint64_t clicked = 1;
	ck_assert_int_eq(knytt_store_search_log_get(knytt_engine_store(e),
						    log_id, &q, &cnt, &clicked),
			 KNYTT_OK);
	ck_assert_str_eq(q, "espresso");
	ck_assert_int_eq(cnt, n);
	knytt_free(q);
	/* a related word that no title has: only meaning can find it.
	 * "barista" appears in some titles, "brew" in descriptions; query
	 * a pair whose AND matches nothing */
	n = knytt_engine_search(e, "roast barista grinder", NULL, 0, 10, NULL,
				NULL, r, NULL);
	ck_assert_int_gt(n, 0);
	ck_assert_msg(count_cat(r, n, 2) >= n * 7 / 10,
		      "only %d of %d coffee items", count_cat(r, n, 2), n);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

START_TEST(reopen_restores_without_retraining)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt_result a[10] = {{.struct_size = sizeof(knytt_result)}};
	knytt_result b[10] = {{.struct_size = sizeof(knytt_result)}};
	int na = knytt_engine_recommend(e, "u5", 10, NULL, NULL, a);
	knytt_train_status s1 = {.struct_size = sizeof s1};
	knytt_train_status s2 = {.struct_size = sizeof s2};
	knytt_engine_train_status(e, &s1);
	knytt_engine_close(e);
	e = open_engine(KNYTT_MODEL_ALS, 0);
	knytt_engine_train_status(e, &s2);
	ck_assert_int_eq(s2.model_version, s1.model_version);
	ck_assert_uint_eq(s2.items_indexed, s1.items_indexed);
	int nb = knytt_engine_recommend(e, "u5", 10, NULL, NULL, b);
	ck_assert_int_eq(na, nb);
	for (int i = 0; i < na; i++)
		ck_assert_str_eq(a[i].ext_id, b[i].ext_id);
	knytt_engine_close(e);
	/* default settings follow the stored model (kind ALS, dim 16) */
	char uri[160];
	snprintf(uri, sizeof uri, "sqlite:%s", dbpath);
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_uint_eq(knytt_engine_dim(e), 0); /* not open */
	ck_assert_uint_eq(knytt_engine_dim(NULL), 0);
	ck_assert_int_eq(knytt_engine_open(e, uri), KNYTT_OK);
	ck_assert_uint_eq(knytt_engine_dim(e), 16); /* not the default 64 */
	knytt_engine_train_status(e, &s2);
	ck_assert_int_eq(s2.model_version, s1.model_version);
	nb = knytt_engine_recommend(e, "u5", 10, NULL, NULL, b);
	ck_assert_int_eq(nb, na);
	ck_assert_str_eq(a[0].ext_id, b[0].ext_id);
	knytt_engine_close(e);
	/* an explicit other dimension means retrain: not served until then */
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, 8), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_open(e, uri), KNYTT_OK);
	knytt_engine_train_status(e, &s2);
	ck_assert_int_eq(s2.model_version, 0);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt_engine_train_status(e, &s2);
	ck_assert_int_gt(s2.model_version, s1.model_version);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

typedef struct qarg {
	knytt_engine *e;
	_Atomic int stop, bad;
	_Atomic long n;
} qarg;

static void *querier(void *p)
{
	qarg *a = p;
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	while (!a->stop) {
		if (knytt_engine_recommend(a->e, "u3", 10, NULL, NULL, r) < 0)
			a->bad = 1;
		a->n++;
	}
	return NULL;
}

START_TEST(background_training_keeps_serving)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	qarg a = { .e = e };
	pthread_t th;
	pthread_create(&th, NULL, querier, &a);
	ck_assert_int_eq(knytt_engine_train_start(e, NULL, NULL), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_train_start(e, NULL, NULL), KNYTT_EBUSY);
	ck_assert_int_eq(knytt_engine_train_wait(e), KNYTT_OK);
	a.stop = 1;
	pthread_join(th, NULL);
	ck_assert(!a.bad);
	ck_assert_int_gt(a.n, 0);
	knytt_train_status st = {.struct_size = sizeof st};
	knytt_engine_train_status(e, &st);
	ck_assert_int_eq(st.model_version, 2);
	ck_assert_int_eq(st.running, 0);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

/* An older caller's filter and options (a smaller struct_size): the
 * members it does not know keep their defaults, whatever bytes follow. */
START_TEST(older_callers_smaller_structs)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt_filter f, full;
	knytt_filter_init(&full);
	full.category_prefix = "shoes";
	full.price_max = 40;
	f = full;
	f.struct_size = offsetof(knytt_filter, in_stock_only);
	/* beyond the old struct: values that would fail or filter */
	f.in_stock_only = 1;
	f.min_quality = INFINITY;
	knytt_result a[20] = {{.struct_size = sizeof(knytt_result)}};
	knytt_result b[20] = {{.struct_size = sizeof(knytt_result)}};
	int na = knytt_engine_recommend(e, "u1", 20, &f, NULL, a);
	ck_assert_msg(na > 0, "%s", knytt_errmsg());
	int nb = knytt_engine_recommend(e, "u1", 20, &full, NULL, b);
	ck_assert_int_eq(na, nb);
	for (int i = 0; i < na; i++)
		ck_assert_str_eq(a[i].ext_id, b[i].ext_id);
	ck_assert_int_eq(knytt_engine_similar(e, "c0-1", 5, &f, a) >= 0, 1);
	ck_assert_int_eq(knytt_engine_search(e, "running", NULL, 0, 5, &f,
					     NULL, a, NULL) >= 0,
			 1);
	/* options without exclude_seen: the engine's rule (exclude) */
	knytt_rec_options o;
	knytt_rec_options_init(&o);
	o.struct_size = offsetof(knytt_rec_options, exclude_seen);
	o.exclude_seen = 0; /* unknown to this caller: must be ignored */
	na = knytt_engine_recommend(e, "u1", 20, NULL, &o, a);
	nb = knytt_engine_recommend(e, "u1", 20, NULL, NULL, b);
	ck_assert_int_eq(na, nb);
	for (int i = 0; i < na; i++)
		ck_assert_str_eq(a[i].ext_id, b[i].ext_id);
	/* too small to hold the first member: refused, naming the field */
	f.struct_size = sizeof(size_t);
	ck_assert_int_eq(knytt_engine_recommend(e, "u1", 4, &f, NULL, a),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "struct_size"));
	knytt_engine_close(e);
	cleanup();
}
END_TEST

/* knytt_filter_init from a program built against an older knytt.h: its
 * knytt_filter ends before `where`, and the library must not write past
 * that (the exported function); the macro passes the caller's sizeof. */
START_TEST(filter_init_writes_only_the_callers_struct)
{
	unsigned char buf[sizeof(knytt_filter) + 16];
	size_t v1 = offsetof(knytt_filter, where);
	memset(buf, 0xab, sizeof buf);
	(knytt_filter_init)((knytt_filter *)(void *)buf);
	knytt_filter f;
	memcpy(&f, buf, sizeof f);
	ck_assert_uint_eq(f.struct_size, v1);
	ck_assert_ptr_null(f.category_prefix);
	ck_assert(isnan(f.price_max) && isnan(f.min_quality));
	for (size_t i = v1; i < sizeof buf; i++)
		ck_assert_msg(buf[i] == 0xab, "byte %zu written", i);
	/* a caller's own size, here shorter still */
	size_t v0 = offsetof(knytt_filter, in_stock_only);
	memset(buf, 0xab, sizeof buf);
	knytt_filter_init_size((knytt_filter *)(void *)buf, v0);
	memcpy(&f, buf, sizeof f);
	ck_assert_uint_eq(f.struct_size, v0);
	for (size_t i = v0; i < sizeof buf; i++)
		ck_assert_msg(buf[i] == 0xab, "byte %zu written", i);
	/* this header's callers: the whole struct */
	knytt_filter_init(&f);
	ck_assert_uint_eq(f.struct_size, sizeof f);
	ck_assert_ptr_null(f.where);
	/* NULL, or too small for struct_size: nothing written */
	knytt_filter_init_size(NULL, sizeof f);
	memset(buf, 0xab, sizeof buf);
	knytt_filter_init_size((knytt_filter *)(void *)buf, 4);
	ck_assert_uint_eq(buf[0], 0xab);
}
END_TEST

START_TEST(bad_input_is_an_error)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	knytt_result r[4] = {{.struct_size = sizeof(knytt_result)}};
	knytt_filter f;
	knytt_filter_init(&f);
	ck_assert_int_eq(knytt_engine_recommend(e, "u1", 0, NULL, NULL, r),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_recommend(e, NULL, 4, NULL, NULL, r),
			 KNYTT_EINVAL);
	f.price_min = 50;
	f.price_max = 10;
	ck_assert_int_eq(knytt_engine_recommend(e, "u1", 4, &f, NULL, r),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "price_min"));
	f.struct_size = 3;
	ck_assert_int_eq(knytt_engine_similar(e, "c1-1", 4, &f, r),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_similar(e, "nope", 4, NULL, r),
			 KNYTT_ENOTFOUND);
	ck_assert_int_eq(knytt_engine_feedback(e, "u1", "nope", "view", 0, 0),
			 KNYTT_ENOTFOUND);
	ck_assert_int_eq(knytt_engine_feedback(e, "u1", "c1-1", "", 0, 0),
			 KNYTT_EINVAL);
	ck_assert_str_eq(knytt_errfield(), "type");
	ck_assert_int_eq(knytt_engine_feedback(e, "u1", "c1-1", "view", NAN,
					       0),
			 KNYTT_EINVAL);
	ck_assert_str_eq(knytt_errfield(), "value");
	ck_assert_int_eq(knytt_engine_feedback(e, "u1", "c1-1", "Bad Type", 0,
					       0),
			 KNYTT_EINVAL);
	ck_assert_str_eq(knytt_errfield(), "type");
	ck_assert_int_eq(knytt_engine_search(e, NULL, NULL, 0, 4, NULL, NULL, r,
					     NULL),
			 KNYTT_EINVAL);
	float v[3] = { 1, 2, 3 };
	ck_assert_int_eq(knytt_engine_search(e, NULL, v, 3, 4, NULL, NULL, r,
					     NULL),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_trending(e, 4, -1, NULL, r), KNYTT_EINVAL);
	knytt_rec_options o;
	knytt_rec_options_init(&o);
	o.mmr_lambda = 2;
	ck_assert_int_eq(knytt_engine_recommend(e, "u1", 4, NULL, &o, r),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_dim(e, 8), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_engine_train_wait(e), KNYTT_ESTATE);
	ck_assert_str_eq(knytt_reason_name(KNYTT_REASON_SESSION), "session");
	knytt_engine_close(e);
	knytt_engine_close(NULL);
	cleanup();
}
END_TEST

START_TEST(mmr_diversifies)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt_result a[10] = {{.struct_size = sizeof(knytt_result)}};
	knytt_result b[10] = {{.struct_size = sizeof(knytt_result)}};
	knytt_rec_options o;
	knytt_rec_options_init(&o);
	int na = knytt_engine_recommend(e, "u4", 10, NULL, &o, a);
	o.mmr_lambda = 0.3;
	int nb = knytt_engine_recommend(e, "u4", 10, NULL, &o, b);
	ck_assert_int_eq(na, 10);
	ck_assert_int_eq(nb, 10);
	/* the most relevant item stays first; the rest changes */
	ck_assert_str_eq(a[0].ext_id, b[0].ext_id);
	int same = 0;
	for (int i = 0; i < 10; i++)
		for (int j = 0; j < 10; j++)
			same += strcmp(a[i].ext_id, b[j].ext_id) == 0;
	ck_assert_int_lt(same, 10);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

START_TEST(category_moves_reach_cached_filters)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt_result r[PER_CAT * 2] = {{.struct_size = sizeof(knytt_result)}};
	/* warm the "books" list, then move a shoe into books and a book out */
	int n = knytt_engine_trending(e, PER_CAT * 2, 604800, "books", r);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(count_cat(r, n, 4), n);
	knytt_item *it = NULL;
	knytt_store *st = knytt_engine_store(e);
	ck_assert_int_eq(knytt_store_item_get(st, "c0-1", &it), KNYTT_OK);
	it->category = "books/sport";
	ck_assert_int_eq(knytt_engine_item_upsert(e, it, NULL, 0), KNYTT_OK);
	knytt_free(it);
	ck_assert_int_eq(knytt_store_item_get(st, "c4-1", &it), KNYTT_OK);
	it->category = "toys/lego";
	ck_assert_int_eq(knytt_engine_item_upsert(e, it, NULL, 0), KNYTT_OK);
	knytt_free(it);
	n = knytt_engine_trending(e, PER_CAT * 2, 604800, "books", r);
	int moved_in = 0;
	for (int i = 0; i < n; i++) {
		ck_assert_str_ne(r[i].ext_id, "c4-1");
		moved_in += strcmp(r[i].ext_id, "c0-1") == 0;
	}
	ck_assert_int_eq(moved_in, 1);
	/* the same through the index: similar within books */
	knytt_filter f;
	knytt_filter_init(&f);
	f.category_prefix = "books";
	n = knytt_engine_similar(e, "c0-2", 10, &f, r);
	for (int i = 0; i < n; i++)
		ck_assert_str_ne(r[i].ext_id, "c4-1");
	knytt_engine_close(e);
	cleanup();
}
END_TEST

static void reprice(knytt_engine *e, const char *ext, double price)
{
	knytt_item *it = NULL;
	ck_assert_int_eq(knytt_store_item_get(knytt_engine_store(e), ext, &it),
			 KNYTT_OK);
	it->price = price;
	ck_assert_int_eq(knytt_engine_item_upsert(e, it, NULL, 0), KNYTT_OK);
	knytt_free(it);
}

/* Filters on a category or a price range are answered by an exact scan
 * of the engine's vector copy: the same answer as the index gives
 * unfiltered when the filter passes everything, and prices changed after
 * the price order was sorted (a few, then enough to re-sort) are seen. */
START_TEST(price_and_category_scans_match_the_index)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt_result a[10] = {{.struct_size = sizeof(knytt_result)}};
	knytt_result b[10] = {{.struct_size = sizeof(knytt_result)}};
	knytt_filter f;
	knytt_filter_init(&f);
	f.price_min = 0.01; /* every item: the scan over all of them */
	for (int u = 0; u < 12; u++) {
		char user[16];
		sprintf(user, "u%d", u);
		int na = knytt_engine_recommend(e, user, 10, NULL, NULL, a);
		int nb = knytt_engine_recommend(e, user, 10, &f, NULL, b);
		ck_assert_int_eq(na, 10);
		ck_assert_int_eq(nb, na);
		for (int i = 0; i < na; i++) {
			ck_assert_str_eq(a[i].ext_id, b[i].ext_id);
			ck_assert_int_eq(a[i].reason, b[i].reason);
			ck_assert_double_eq_tol(a[i].score, b[i].score, 1e-5);
		}
	}
	/* a band no item is in, until one is re-priced into it */
	f.price_min = 1000;
	f.price_max = 2000;
	ck_assert_int_eq(knytt_engine_recommend(e, "u0", 10, &f, NULL, a), 0);
	reprice(e, "c3-4", 1500);
	int n = knytt_engine_recommend(e, "u0", 10, &f, NULL, a);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(a[0].ext_id, "c3-4");
	reprice(e, "c3-4", 25);
	ck_assert_int_eq(knytt_engine_recommend(e, "u0", 10, &f, NULL, a), 0);
	/* every fourth item moves up into the band; twice over the shop is
	 * more changes than the price order keeps unsorted: it is re-sorted
	 * on the way */
	char ext[32];
	for (int round = 0; round < 2; round++)
		for (int c = 0; c < NCAT; c++)
			for (int i = 0; i < PER_CAT; i++) {
				sprintf(ext, "c%d-%d", c, i);
				reprice(e, ext,
					i % 4 ? item_price(c, i)
					      : 1000 + c * 100 + i + round);
			}
	f.price_min = 1100;
	f.price_max = 1199; /* category 1's repriced items only */
	n = knytt_engine_recommend(e, "u1", 10, &f, keep_seen(), a);
	ck_assert_int_eq(n, 10);
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(cat_of(a[i].ext_id), 1);
		ck_assert_int_eq(atoi(a[i].ext_id + 3) % 4, 0);
	}
	/* a category prefix together with a price range */
	f.category_prefix = "shoes";
	f.price_min = 1000;
	f.price_max = 1199;
	n = knytt_engine_recommend(e, "u0", 10, &f, NULL, a);
	ck_assert_int_eq(n, 10);
	for (int i = 0; i < n; i++) {
		ck_assert(passes(e, &a[i], &f));
		ck_assert_int_le(cat_of(a[i].ext_id), 1);
	}
	knytt_engine_close(e);
	cleanup();
}
END_TEST

/* Trending and popularity are read from lists kept in order as events
 * arrive (1024 long): planted counts come back in order, the list
 * follows new events, and items that fell off a full list are still
 * found when a filter needs them. */
START_TEST(trending_lists_follow_feedback)
{
	enum { NIT = 1100 };
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_model(e, KNYTT_MODEL_EXTERNAL),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, 4), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_feedback_async(e, 1), KNYTT_OK);
	snprintf(dbpath, sizeof dbpath, "/tmp/knytt-engine-%d-top.db",
		 (int)getpid());
	cleanup();
	char uri[160], ext[32];
	snprintf(uri, sizeof uri, "sqlite:%s", dbpath);
	ck_assert_int_eq(knytt_engine_open(e, uri), KNYTT_OK);
	knytt_item it;
	memset(&it, 0, sizeof it);
	it.struct_size = sizeof it;
	it.ext_id = ext;
	it.title = "thing";
	it.price = 5;
	it.in_stock = 1;
	for (int i = 0; i < NIT; i++) {
		sprintf(ext, "x%d", i);
		it.category = i >= NIT - 3 ? "rare" : i % 2 ? "odd" : "even";
		ck_assert_int_eq(knytt_engine_item_upsert(e, &it, NULL, 0),
				 KNYTT_OK);
	}
	/* one view each, at one instant; every 50th item 2..23 views */
	int64_t t = (int64_t)time(NULL) * 1000 - 1000;
	for (int i = 0; i < NIT; i++) {
		sprintf(ext, "x%d", i);
		int c = i % 50 ? 1 : 2 + i / 50;
		for (int j = 0; j < c; j++)
			ck_assert_int_eq(knytt_engine_feedback(e, "v", ext,
							       "view", 0, t),
					 KNYTT_OK);
	}
	knytt_result r[40] = {{.struct_size = sizeof(knytt_result)}};
	for (int w = 0; w < 3; w++) {
		static const double win[3] = { 3600, 86400, 604800 };
		int n = knytt_engine_trending(e, 30, win[w], NULL, r);
		ck_assert_int_eq(n, 30);
		for (int i = 0; i < 22; i++) {
			sprintf(ext, "x%d", (21 - i) * 50);
			ck_assert_str_eq(r[i].ext_id, ext);
		}
		for (int i = 1; i < n; i++)
			ck_assert(r[i].score <= r[i - 1].score);
		ck_assert_double_eq_tol(r[0].score / r[21].score, 23.0 / 2.0,
					1e-6);
	}
	/* a filter: only its items, still in order */
	int n = knytt_engine_trending(e, 12, 86400, "even", r);
	ck_assert_int_eq(n, 12);
	for (int i = 0; i < n; i++) { /* the planted ones are all even */
		sprintf(ext, "x%d", (21 - i) * 50);
		ck_assert_str_eq(r[i].ext_id, ext);
	}
	/* the last items never made the full list (ties do not enter), yet
	 * a filter that needs them finds them */
	n = knytt_engine_trending(e, 10, 3600, "rare", r);
	ck_assert_int_eq(n, 3);
	/* new events move an item to the front of every list */
	for (int j = 0; j < 40; j++)
		ck_assert_int_eq(knytt_engine_feedback(e, "v", "x1096", "view",
						       0, t),
				 KNYTT_OK);
	for (int w = 0; w < 3; w++) {
		static const double win[3] = { 3600, 86400, 604800 };
		ck_assert_int_eq(knytt_engine_trending(e, 5, win[w], NULL, r),
				 5);
		ck_assert_str_eq(r[0].ext_id, "x1096");
		ck_assert_str_eq(r[1].ext_id, "x1050");
	}
	/* popularity: a shopper known to the store but without history */
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);
	uint64_t uid;
	ck_assert_int_eq(knytt_store_user_upsert(knytt_engine_store(e), "cold",
						 NULL, &uid),
			 KNYTT_OK);
	n = knytt_engine_recommend(e, "cold", 10, NULL, NULL, r);
	ck_assert_int_eq(n, 10);
	ck_assert_str_eq(r[0].ext_id, "x1096");
	knytt_engine_close(e);
	cleanup();
}
END_TEST

static int hist_item_cb(const knytt_interaction *ix, void *ctx)
{
	char (*seen)[32] = ctx;
	for (int i = 0; i < 64; i++)
		if (!seen[i][0]) {
			snprintf(seen[i], 32, "%s", ix->item);
			break;
		}
	return 0;
}

START_TEST(settings_exclusion_tenants_and_sync)
{
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_weight(e, "view", 0), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_weight(e, "", 1), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_weight(e, "wishlist", NAN),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_weight(e, "purchase", 10), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_taste(e, 0, 0.5, 0), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_taste(e, 600, 1.5, 0), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_taste(e, 600, 0.5, -1), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_taste(e, 600, 0.5, 30), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_als(e, 1, 1, 0), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_als(e, 0.5f, 2, 10), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_index(e, 1, 0, 0), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_index(e, 8, 100, 32), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_tenant(e, ""), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_embedder(e, NULL), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_exclude_seen(e, 1), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, 16), KNYTT_OK);
	snprintf(dbpath, sizeof dbpath, "/tmp/knytt-engine-%d-set.db",
		 (int)getpid());
	cleanup();
	char uri[160];
	snprintf(uri, sizeof uri, "sqlite:%s", dbpath);
	ck_assert_int_eq(knytt_engine_open(e, uri), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_exclude_seen(e, 0), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_engine_set_embedder(e, NULL), KNYTT_ESTATE);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);

	/* exclude_seen: nothing from the user's history comes back */
	char seen[64][32];
	memset(seen, 0, sizeof seen);
	ck_assert_int_ge(knytt_store_user_recent(knytt_engine_store(e), "u1",
						 64, hist_item_cb, seen),
			 0);
	ck_assert(seen[0][0]);
	knytt_result r[40] = {{.struct_size = sizeof(knytt_result)}};
	int n = knytt_engine_recommend(e, "u1", 40, NULL, NULL, r);
	ck_assert_int_eq(n, 40);
	for (int i = 0; i < n; i++)
		for (int j = 0; j < 64 && seen[j][0]; j++)
			ck_assert_str_ne(r[i].ext_id, seen[j]);

	/* an item written straight to the store is unknown until sync */
	knytt_item it;
	char ext[32] = "c2-direct", title[64];
	make_item(&it, 2, 1, ext, title);
	strcpy(ext, "c2-direct");
	uint64_t id;
	ck_assert_int_eq(knytt_store_item_upsert(knytt_engine_store(e), &it,
						 &id),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_feedback(e, "u1", ext, "view", 0, 0),
			 KNYTT_ENOTFOUND);
	ck_assert_int_ge(knytt_engine_sync(e), 1);
	ck_assert_int_eq(knytt_engine_feedback(e, "u1", ext, "view", 0, 0),
			 KNYTT_OK);
	knytt_engine_close(e);

	/* another tenant of the same database sees none of it */
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_tenant(e, "other"), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_open(e, uri), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_recommend(e, "u1", 5, NULL, NULL, r),
			 KNYTT_ENOTFOUND);
	ck_assert_int_eq(knytt_engine_trending(e, 5, 86400, NULL, r), 0);
	ck_assert_int_eq(knytt_engine_similar(e, "c0-1", 5, NULL, r),
			 KNYTT_ENOTFOUND);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

/* caller vectors: category c points along axis c, plus a little noise */
static void caller_vec(int c, int i, float *v)
{
	uint64_t s = (uint64_t)(c * 977 + i);
	for (int j = 0; j < 16; j++)
		v[j] = 0.1f * tu_randf(&s);
	v[c] += 1.0f;
}

START_TEST(external_vectors_without_a_model)
{
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_model(e, KNYTT_MODEL_EXTERNAL),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, 16), KNYTT_OK);
	snprintf(dbpath, sizeof dbpath, "/tmp/knytt-engine-%d-ext.db",
		 (int)getpid());
	cleanup();
	char uri[160];
	snprintf(uri, sizeof uri, "sqlite:%s", dbpath);
	ck_assert_int_eq(knytt_engine_open(e, uri), KNYTT_OK);
	char ext[32], title[128];
	knytt_item it;
	float v[16];
	for (int c = 0; c < NCAT; c++)
		for (int i = 0; i < 20; i++) {
			make_item(&it, c, i, ext, title);
			caller_vec(c, i, v);
			ck_assert_int_eq(knytt_engine_item_upsert(e, &it, v, 16),
					 KNYTT_OK);
		}
	ck_assert_int_eq(knytt_engine_item_upsert(e, &it, v, 15),
			 KNYTT_EINVAL);
	for (int i = 0; i < 5; i++) {
		sprintf(ext, "c4-%d", i);
		ck_assert_int_eq(knytt_engine_feedback(e, "x", ext, "view", 0,
						       0),
				 KNYTT_OK);
	}
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	int n = knytt_engine_recommend(e, "x", 10, NULL, NULL, r);
	ck_assert_int_eq(n, 10);
	ck_assert_int_ge(count_cat(r, n, 4), 9);
	/* a caller vector as the query */
	caller_vec(5, 99, v);
	n = knytt_engine_search(e, NULL, v, 16, 5, NULL, NULL, r, NULL);
	ck_assert_int_eq(n, 5);
	ck_assert_int_eq(count_cat(r, n, 5), 5);
	ck_assert_int_eq(r[0].reason, KNYTT_REASON_SEMANTIC);
	/* nothing to train; the vectors survive a re-open */
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_ENOTSUP);
	knytt_engine_close(e);
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_model(e, KNYTT_MODEL_EXTERNAL),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, 16), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_open(e, uri), KNYTT_OK);
	n = knytt_engine_similar(e, "c3-2", 5, NULL, r);
	ck_assert_int_eq(n, 5);
	ck_assert_int_eq(count_cat(r, n, 3), 5);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

/* ---- feedback write-behind ---- */

static int count_cb(const knytt_interaction *ix, void *ctx)
{
	(void)ix;
	(*(int *)ctx)++;
	return 0;
}

/* Events queued by write-behind feedback: visible to recommend before
 * they are stored, all in the store after flush, and after close. */
START_TEST(write_behind_feedback_reaches_the_store)
{
	knytt_engine *e = open_engine_opt(KNYTT_MODEL_ALS, 1, 1);
	populate(e); /* 3000 events through the queue */
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);
	ck_assert_int_eq(
		knytt_store_interaction_count(knytt_engine_store(e)),
		NUSERS * EV_PER_USER);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);

	/* a shopper the store has not seen yet, known from queued events
	 * only: recommend answers from them at once */
	char ext[32];
	for (int i = 0; i < 8; i++) {
		sprintf(ext, "c5-%d", i);
		ck_assert_int_eq(knytt_engine_feedback(e, "fresh", ext, "click",
						       0, 0),
				 KNYTT_OK);
	}
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	int n = knytt_engine_recommend(e, "fresh", 10, NULL, NULL, r);
	ck_assert_int_eq(n, 10);
	ck_assert_int_ge(count_cat(r, n, 5), 8);
	/* a queued purchase is excluded at once too */
	ck_assert_int_eq(knytt_engine_feedback(e, "fresh", r[0].ext_id,
					       "purchase", 0, 0),
			 KNYTT_OK);
	char bought[KNYTT_STORE_MAX_ID + 1];
	snprintf(bought, sizeof bought, "%s", r[0].ext_id);
	n = knytt_engine_recommend(e, "fresh", 10, NULL, NULL, r);
	for (int i = 0; i < n; i++)
		ck_assert_str_ne(r[i].ext_id, bought);

	/* after flush the store has all nine, newest (the purchase) first */
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);
	int cnt = 0;
	ck_assert_int_eq(knytt_store_user_recent(knytt_engine_store(e), "fresh",
						 100, count_cb, &cnt),
			 9);
	ck_assert_int_eq(cnt, 9);
	ck_assert_int_eq(
		knytt_store_interaction_count(knytt_engine_store(e)),
		NUSERS * EV_PER_USER + 9);

	/* a search whose caller wants no log id is logged by the writer:
	 * the entries lie between two logged synchronously */
	uint64_t lid = 0, lid2 = 0;
	ck_assert_int_ge(knytt_engine_search(e, "c2", NULL, 0, 5, NULL, NULL,
					     r, &lid),
			 0);
	for (int i = 0; i < 3; i++)
		ck_assert_int_ge(knytt_engine_search(e, i == 1 ? "c3" : "c2",
						     NULL, 0, 5, NULL, "fresh",
						     r, NULL),
				 0);
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);
	/* an entry the store would refuse fails the search itself, as it
	 * does synchronously, instead of the writer later */
	ck_assert_int_eq(knytt_engine_search(e, "c2", NULL, 0, 5, NULL,
					     "bad\x01user", r, NULL),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "user"));
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);
	ck_assert_int_ge(knytt_engine_search(e, "c2", NULL, 0, 5, NULL, NULL,
					     r, &lid2),
			 0);
	ck_assert_uint_eq(lid2, lid + 4);
	char *lq = NULL;
	int lcount = -1;
	uint64_t clicked = 1;
	ck_assert_int_eq(knytt_store_search_log_get(knytt_engine_store(e),
						    lid + 2, &lq, &lcount,
						    &clicked),
			 KNYTT_OK);
	ck_assert_str_eq(lq, "c3");
	ck_assert_int_ge(lcount, 0);
	ck_assert_uint_eq(clicked, 0);
	knytt_free(lq);

	/* close writes what is still queued */
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(knytt_engine_feedback(e, "late", "c1-1", "view",
						       0, 0),
				 KNYTT_OK);
	knytt_engine_close(e);
	e = open_engine(KNYTT_MODEL_ALS, 0);
	ck_assert_int_eq(
		knytt_store_interaction_count(knytt_engine_store(e)),
		NUSERS * EV_PER_USER + 14);
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK); /* synchronous */
	knytt_engine_close(e);
	cleanup();
}
END_TEST

typedef struct fb_rejects {
	size_t idx[8];
	char field[8][16];
	int n;
} fb_rejects;

static void fb_on_reject(size_t i, int code, const char *field,
		      const char *reason, void *ctx)
{
	fb_rejects *r = ctx;
	ck_assert(code == KNYTT_EINVAL || code == KNYTT_ENOTFOUND);
	ck_assert_ptr_nonnull(reason);
	if (r->n < 8) {
		r->idx[r->n] = i;
		snprintf(r->field[r->n], sizeof r->field[0], "%s", field);
	}
	r->n++;
}

static double pop_of(knytt_engine *e, const char *ext)
{
	uint32_t r = knytt__engine_row_by_ext(e, ext);
	ck_assert_uint_ne(r, UINT32_MAX);
	return e->items[r].pop;
}

/* knytt_engine_feedback_batch, synchronous and write-behind: bad events
 * reported and left out, the rest recorded as one unit; when the store
 * fills up in the middle (PRAGMA max_page_count) nothing of the batch is
 * stored and memory does not see it either; the same batch retried is
 * then stored exactly once. */
START_TEST(feedback_batch_all_or_nothing)
{
	enum { N = 2000 };
	for (int async = 0; async < 2; async++) {
		knytt_engine *e = open_engine_opt(KNYTT_MODEL_ALS, 1, async);
		char ext[32], title[128];
		knytt_item it;
		for (int i = 0; i < 4; i++) {
			make_item(&it, 1, i, ext, title);
			ck_assert_int_eq(knytt_engine_item_upsert(e, &it, NULL, 0),
					 KNYTT_OK);
		}
		knytt_interaction *ev = calloc(N, sizeof *ev);
		const knytt_interaction **p = calloc(N, sizeof *p);
		char(*who)[48] = calloc(N, sizeof *who);
		ck_assert(ev && p && who);
		for (int i = 0; i < N; i++) {
			snprintf(who[i], sizeof who[i],
				 "a-shopper-with-a-long-name-%d", i % 700);
			ev[i].struct_size = sizeof ev[i];
			ev[i].user = who[i];
			ev[i].item = "c1-2";
			ev[i].type = "view";
			p[i] = &ev[i];
		}
		/* bad events: reported by index and field, the rest kept */
		ev[3].item = "nope";
		ev[5].type = "Bad Type";
		ev[8].event_id = "x";
		fb_rejects rj = {.n = 0};
		ck_assert_int_eq(knytt_engine_feedback_batch(e, p, 10,
							     fb_on_reject, &rj),
				 7);
		ck_assert_int_eq(rj.n, 3);
		ck_assert_uint_eq(rj.idx[0], 3);
		ck_assert_str_eq(rj.field[0], "item");
		ck_assert_uint_eq(rj.idx[1], 5);
		ck_assert_str_eq(rj.field[1], "type");
		ck_assert_uint_eq(rj.idx[2], 8);
		ck_assert_str_eq(rj.field[2], "event_id");
		ev[3].item = ev[5].item = "c1-2";
		ev[5].type = "view";
		ev[8].event_id = NULL;
		ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);
		knytt_store *st = knytt_engine_store(e);
		ck_assert_int_eq(knytt_store_interaction_count(st), 7);
		double pop = pop_of(e, "c1-2");
		/* the database fills up in the middle of the next batch */
		int64_t pages = -1;
		knytt__pragma_i64(st, "PRAGMA page_count", &pages);
		char sql[80];
		snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld",
			 (long long)pages + 8);
		knytt__pragma_i64(st, sql, &pages);
		int rc = knytt_engine_feedback_batch(e, p, N, NULL, NULL);
		if (async) { /* queued; the writer's failure comes next */
			ck_assert_int_eq(rc, N);
			rc = knytt_engine_flush(e);
		}
		ck_assert_msg(rc == KNYTT_EDB && strstr(knytt_errmsg(), "full"),
			      "async %d: %d %s", async, rc, knytt_errmsg());
		ck_assert_int_eq(knytt_store_interaction_count(st), 7);
		if (!async) /* memory saw nothing either */
			ck_assert(pop_of(e, "c1-2") == pop);
		knytt__pragma_i64(st, "PRAGMA max_page_count = 1073741823",
				  &pages);
		ck_assert_int_eq(knytt_engine_feedback_batch(e, p, N, NULL,
							     NULL),
				 N);
		ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);
		ck_assert_int_eq(knytt_store_interaction_count(st), 7 + N);
		/* arguments */
		ck_assert_int_eq(knytt_engine_feedback_batch(e, p, 0, NULL,
							     NULL),
				 0);
		ck_assert_int_eq(knytt_engine_feedback_batch(e, NULL, 1, NULL,
							     NULL),
				 KNYTT_EINVAL);
		ck_assert_int_eq(knytt_engine_feedback_batch(
					 e, p, KNYTT_STORE_MAX_BATCH + 1, NULL,
					 NULL),
				 KNYTT_ERANGE);
		ck_assert_int_eq(knytt_engine_feedback_batch(NULL, p, 1, NULL,
							     NULL),
				 KNYTT_EINVAL);
		free(ev);
		free(p);
		free(who);
		knytt_engine_close(e);
		cleanup();
	}
}
END_TEST

/* Bad events are refused before they are queued, with the store's
 * rules; the setting is fixed at open. */
START_TEST(write_behind_checks_before_queueing)
{
	ck_assert_int_eq(knytt_engine_flush(NULL), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_feedback_async(NULL, 1),
			 KNYTT_EINVAL);
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_ESTATE);
	knytt_engine_close(e);

	e = open_engine_opt(KNYTT_MODEL_ALS, 1, 1);
	ck_assert_int_eq(knytt_engine_set_feedback_async(e, 0), KNYTT_ESTATE);
	char ext[32], title[128];
	knytt_item it;
	make_item(&it, 0, 0, ext, title);
	ck_assert_int_eq(knytt_engine_item_upsert(e, &it, NULL, 0), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_feedback(e, "u", ext, "Bad-Type", 0, 0),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "type"));
	ck_assert_int_eq(knytt_engine_feedback(e, "u\x01", ext, "view", 0, 0),
			 KNYTT_EINVAL);
	char longid[300];
	memset(longid, 'x', sizeof longid - 1);
	longid[sizeof longid - 1] = '\0';
	ck_assert_int_eq(knytt_engine_feedback(e, longid, ext, "view", 0, 0),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_feedback(e, "u", "nope", "view", 0, 0),
			 KNYTT_ENOTFOUND);
	ck_assert_int_eq(knytt_engine_feedback(e, "u", ext, "rating", 4, 0),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);
	/* only the good event was stored */
	ck_assert_int_eq(
		knytt_store_interaction_count(knytt_engine_store(e)), 1);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

/* A write that fails in the writer thread is reported by the next
 * flush, or by the next feedback (which then records nothing), once. */
START_TEST(write_behind_failure_is_reported)
{
	knytt_engine *e = open_engine_opt(KNYTT_MODEL_ALS, 1, 1);
	char ext[32], title[128];
	knytt_item it;
	make_item(&it, 0, 0, ext, title);
	ck_assert_int_eq(knytt_engine_item_upsert(e, &it, NULL, 0), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_feedback(e, "u", ext, "view", 0, 0),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);
	/* another connection takes the interactions table away */
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db,
				      "ALTER TABLE interactions RENAME TO "
				      "interactions_gone",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(knytt_engine_feedback(e, "u", ext, "click", 0, 0),
			 KNYTT_OK); /* queued: the failure comes later */
	int rc = knytt_engine_flush(e);
	ck_assert_int_lt(rc, 0);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "not stored"));
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK); /* reported once */

	/* the next feedback reports a failure it did not cause, and does
	 * not record its own event (the taste keeps one click) */
	ck_assert_int_eq(knytt_engine_feedback(e, "u", ext, "click", 0, 0),
			 KNYTT_OK);
	knytt_engine_store(e); /* waits for the writer, keeps the error */
	ck_assert_int_eq(knytt_engine_feedback(e, "u", ext, "click", 0, 0),
			 rc);
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);

	/* the table back: writes work again */
	ck_assert_int_eq(sqlite3_exec(db,
				      "ALTER TABLE interactions_gone RENAME "
				      "TO interactions",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	sqlite3_close(db);
	ck_assert_int_eq(knytt_engine_feedback(e, "u", ext, "purchase", 0, 0),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);
	ck_assert_int_eq(
		knytt_store_interaction_count(knytt_engine_store(e)), 2);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

/* A trigger, from another connection, that refuses the insert of any
 * event dated @p ts: one event the store refuses among good ones. */
static void refuse_events_at(int64_t ts)
{
	sqlite3 *db;
	char sql[256];
	snprintf(sql, sizeof sql,
		 "CREATE TRIGGER refuse BEFORE INSERT ON interactions WHEN "
		 "NEW.ts = %lld BEGIN SELECT RAISE(ABORT, 'refused by the "
		 "test'); END;", (long long)ts);
	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	ck_assert_int_eq(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

#define BAD_TS 1234567

/* Feedback events pushed from a thread of their own while the test holds
 * the store: that thread holds no engine lock while it takes a
 * profile's, so no lock order is reversed (st_lock, then a profile's
 * mutex, would be, on the test's thread). */
typedef struct wb_feed {
	knytt_engine *e;
	const char *user, *item;
	int n, bad; /* events; the one dated BAD_TS (-1: none) */
	int failed;
} wb_feed;

static void *wb_push(void *p)
{
	wb_feed *f = p;
	for (int i = 0; i < f->n; i++)
		if (knytt_engine_feedback(f->e, i == f->bad ? "g-bad" : f->user,
					  f->item, "view", 0,
					  i == f->bad ? BAD_TS : 0) != KNYTT_OK)
			f->failed++;
	return NULL;
}

/* Runs @p f on its own thread while the writer waits for the store. */
static void wb_push_held(wb_feed *f)
{
	pthread_t th;
	pthread_mutex_lock(&f->e->st_lock);
	ck_assert_int_eq(pthread_create(&th, NULL, wb_push, f), 0);
	pthread_join(th, NULL);
	pthread_mutex_unlock(&f->e->st_lock);
	ck_assert_int_eq(f->failed, 0);
}

/* Write-behind: single events queued while the writer is held share one
 * transaction, in order; a group with an event the store refuses is
 * written event by event, and only that event is lost and reported. */
START_TEST(write_behind_events_share_commits)
{
	knytt_engine *e = open_engine_opt(KNYTT_MODEL_ALS, 1, 1);
	add_items(e, 2);
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);
	refuse_events_at(BAD_TS);
	/* the shoppers' profiles loaded (that reads the store) */
	static const char *who[3] = { "g1", "g2", "g-bad" };
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(knytt_engine_feedback(e, who[i], "c0-0", "view",
						       0, 0),
				 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);
	knytt_store *st = knytt_engine_store(e);
	int64_t n0 = knytt_store_interaction_count(st);
	uint64_t c0 = e->fq_ev_commits;
	/* the writer held: 40 events queue behind the first */
	wb_push_held(&(wb_feed){e, "g1", "c1-1", 41, -1, 0});
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);
	ck_assert_int_eq(knytt_store_interaction_count(st), n0 + 41);
	ck_assert_msg(e->fq_ev_commits - c0 <= 2,
		      "%llu commits for 41 queued events",
		      (unsigned long long)(e->fq_ev_commits - c0));

	/* one refused event among ten: nine stored, its failure reported
	 * with its user and item */
	wb_push_held(&(wb_feed){e, "g2", "c2-0", 10, 6, 0});
	int rc = knytt_engine_flush(e);
	ck_assert_int_lt(rc, 0);
	ck_assert_msg(strstr(knytt_errmsg(), "g-bad") &&
			      strstr(knytt_errmsg(), "refused by the test"),
		      "%s", knytt_errmsg());
	ck_assert_int_eq(knytt_store_interaction_count(st), n0 + 41 + 9);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

/* A caller of the group commit: feedback of @p user, or with @p user
 * NULL a search-log row whose id it wants (as knyttd's searches). */
typedef struct gc_call {
	knytt_engine *e;
	const char *user;
	int64_t ts;
	int rc;
	uint64_t log_id;
	char msg[256];
	pthread_t th;
} gc_call;

static void *gc_write(void *p)
{
	gc_call *c = p;
	c->rc = c->user ? knytt_engine_feedback(c->e, c->user, "c3-1", "click",
						0, c->ts)
			: knytt__stw_log(c->e, "gc boots", NULL, 3, NULL,
					 &c->log_id);
	snprintf(c->msg, sizeof c->msg, "%s", c->rc < 0 ? knytt_errmsg() : "");
	return NULL;
}

/* Waits (at most 10 s) until a caller leads a group and @p n writes
 * wait for the next. */
static void gc_wait(knytt_engine *e, size_t n)
{
	for (int i = 0; i < 10000; i++) {
		size_t q = 0;
		pthread_mutex_lock(&e->gw_mu);
		int busy = e->gw_busy;
		for (knytt__stw *w = e->gw_head; w; w = w->next)
			q++;
		pthread_mutex_unlock(&e->gw_mu);
		if (busy && q >= n)
			return;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	ck_abort_msg("no group led with %zu writes queued", n);
}

/* Synchronous feedback and a search-log row from several threads: the
 * writes that arrive while one commits share the next commit, each
 * caller returns once its own write is stored (the row with its id), and
 * an event the store refuses fails its own caller only, with its own
 * message (stgroup.c). */
START_TEST(sync_feedback_shares_commits)
{
	knytt_engine *e = open_engine_opt(KNYTT_MODEL_ALS, 1, 0);
	add_items(e, 2);
	refuse_events_at(BAD_TS);
	knytt_store *st = knytt_engine_store(e);
	static const char *users[5] = { "s0", "s1", "s2", "s3", "s4" };
	/* the shoppers' profiles loaded (that reads the store) */
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(knytt_engine_feedback(e, users[i], "c0-0",
						       "view", 0, 0),
				 KNYTT_OK);
	for (int round = 0; round < 2; round++) {
		int64_t n0 = knytt_store_interaction_count(st);
		uint64_t shared0 = e->gw_shared;
		gc_call c[6];
		/* the store held: the first call leads and waits for it,
		 * the others (the last a search-log row) queue behind */
		pthread_mutex_lock(&e->st_lock);
		for (int i = 0; i < 6; i++) {
			c[i] = (gc_call){ .e = e, .user = i < 5 ? users[i] : NULL,
					  .ts = round && i == 3 ? BAD_TS : 0 };
			ck_assert_int_eq(pthread_create(&c[i].th, NULL,
							gc_write, &c[i]),
					 0);
			if (i == 0)
				gc_wait(e, 0);
		}
		gc_wait(e, 5);
		pthread_mutex_unlock(&e->st_lock);
		for (int i = 0; i < 6; i++)
			pthread_join(c[i].th, NULL);
		/* the row is stored under the id its caller got */
		char *q = NULL;
		ck_assert_msg(c[5].rc == 0, "%s", c[5].msg);
		ck_assert_int_eq(knytt_store_search_log_get(st, c[5].log_id, &q,
							    NULL, NULL),
				 0);
		ck_assert_str_eq(q, "gc boots");
		knytt_free(q);
		for (int i = 0; i < 5; i++) {
			if (round && i == 3) {
				ck_assert_int_lt(c[i].rc, 0);
				ck_assert_msg(strstr(c[i].msg, "refused by the "
							       "test"),
					      "%s", c[i].msg);
			} else {
				ck_assert_msg(c[i].rc == KNYTT_OK, "%s: %s",
					      users[i], c[i].msg);
			}
		}
		ck_assert_int_eq(knytt_store_interaction_count(st),
				 n0 + (round ? 4 : 5));
		/* round 0: four events and the row in one commit; round 1:
		 * that group failed and went write by write */
		ck_assert_int_eq(e->gw_shared - shared0, round ? 0 : 5);
	}
	knytt_engine_close(e);
	cleanup();
}
END_TEST

/* An "engine-model" blob (lib/engine/train.c) around @p model, with
 * @p nids of the store ids @p ids and header dimension @p dim. */
static unsigned char *engine_blob(knytt_model_kind kind, uint32_t dim,
				  const uint64_t *ids, uint32_t nids,
				  const void *model, size_t ml, size_t *n)
{
	*n = 32 + (size_t)nids * 8 + ml + 4;
	unsigned char *b = calloc(1, *n);
	ck_assert_ptr_nonnull(b);
	memcpy(b, "KNYTTENG", 8);
	knytt__put_u32(b + 8, 1);
	knytt__put_u32(b + 12, (uint32_t)kind);
	knytt__put_u32(b + 16, dim);
	knytt__put_u32(b + 20, nids);
	knytt__put_u64(b + 24, ml);
	for (uint32_t i = 0; i < nids; i++)
		knytt__put_u64(b + 32 + 8 * i, ids[i]);
	memcpy(b + 32 + (size_t)nids * 8, model, ml);
	knytt__put_u32(b + *n - 4, knytt__crc32c(0, b, *n - 4));
	return b;
}

/* Stores @p blob as the latest engine model of a fresh store holding
 * @p ids' items and returns what knytt_engine_open says. */
static int open_with_blob(const unsigned char *blob, size_t n)
{
	snprintf(dbpath, sizeof dbpath, "/tmp/knytt-engine-%d-blob.db",
		 (int)getpid());
	cleanup();
	char uri[160];
	snprintf(uri, sizeof uri, "sqlite:%s", dbpath);
	knytt_store *st;
	uint64_t t;
	ck_assert_int_eq(knytt_store_open(uri, &st), KNYTT_OK);
	ck_assert_int_eq(knytt_store_tenant_create(st, "default", &t), 0);
	ck_assert_int_eq(knytt_store_use_tenant(st, t), KNYTT_OK);
	ck_assert_int_eq(knytt_store_model_put(st, "engine-model", blob, n,
					       NULL, NULL),
			 KNYTT_OK);
	knytt_store_close(st);
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_threads(e, 1), KNYTT_OK);
	int rc = knytt_engine_open(e, uri);
	knytt_engine_close(e);
	cleanup();
	return rc;
}

/* Found by fuzz_engine_model: a stored blob whose item map is shorter
 * than its model's item table, or whose header dimension is not the
 * model's, made knytt_engine_open copy the model's vectors past the end
 * of a buffer sized from the header.  It must be refused as corrupt. */
START_TEST(stored_model_must_match_its_header)
{
	static const uint32_t U[] = { 0, 0, 1, 1, 2, 2, 0 };
	static const uint32_t I[] = { 0, 1, 1, 2, 2, 3, 3 };
	static const uint64_t ids[] = { 1, 2, 3, 4 };
	knytt_twotower *tt;
	void *tb;
	size_t tl, n;
	ck_assert_int_eq(knytt_twotower_create(&tt), KNYTT_OK);
	ck_assert_int_eq(knytt_twotower_set_dim(tt, 4), KNYTT_OK);
	ck_assert_int_eq(knytt_twotower_set_buckets(tt, 16), KNYTT_OK);
	ck_assert_int_eq(knytt_twotower_set_epochs(tt, 1), KNYTT_OK);
	ck_assert_int_eq(knytt_twotower_set_threads(tt, 1), KNYTT_OK);
	ck_assert_int_eq(knytt_twotower_train(tt, 3, 4, NULL, 7, U, I, NULL,
					      NULL),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_twotower_save_buffer(tt, &tb, &tl), KNYTT_OK);
	knytt_twotower_close(tt);
	/* the well-formed blob opens */
	unsigned char *b = engine_blob(KNYTT_MODEL_TWOTOWER, 4, ids, 4, tb,
				       tl, &n);
	ck_assert_msg(open_with_blob(b, n) == KNYTT_OK, "%s", knytt_errmsg());
	free(b);
	/* three ids for a model of four items */
	b = engine_blob(KNYTT_MODEL_TWOTOWER, 4, ids, 3, tb, tl, &n);
	ck_assert_int_eq(open_with_blob(b, n), KNYTT_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "4 items"));
	free(b);
	/* header dimension 2 for a model of dimension 4 */
	b = engine_blob(KNYTT_MODEL_TWOTOWER, 2, ids, 4, tb, tl, &n);
	ck_assert_int_eq(open_with_blob(b, n), KNYTT_ECORRUPT);
	free(b);
	knytt_free(tb);

	/* ALS: 8 factors under a header that says 4 */
	knytt_matrix *m;
	knytt_als *als;
	void *ab;
	size_t al;
	ck_assert_int_eq(knytt_matrix_create(&m), KNYTT_OK);
	for (size_t k = 0; k < 7; k++)
		ck_assert_int_eq(knytt_matrix_add(m, U[k], I[k], 0, 1, 0), 0);
	ck_assert_int_eq(knytt_matrix_build(m, 3, 4), KNYTT_OK);
	ck_assert_int_eq(knytt_als_create(&als), KNYTT_OK);
	ck_assert_int_eq(knytt_als_set_factors(als, 8), KNYTT_OK);
	ck_assert_int_eq(knytt_als_set_threads(als, 1), KNYTT_OK);
	ck_assert_int_eq(knytt_als_train(als, m), KNYTT_OK);
	ck_assert_int_eq(knytt_als_save_buffer(als, &ab, &al), KNYTT_OK);
	knytt_als_close(als);
	knytt_matrix_close(m);
	b = engine_blob(KNYTT_MODEL_ALS, 8, ids, 4, ab, al, &n);
	ck_assert_msg(open_with_blob(b, n) == KNYTT_OK, "%s", knytt_errmsg());
	free(b);
	b = engine_blob(KNYTT_MODEL_ALS, 4, ids, 4, ab, al, &n);
	ck_assert_int_eq(open_with_blob(b, n), KNYTT_ECORRUPT);
	free(b);
	knytt_free(ab);
}
END_TEST


/* ---- exclusions, the whole history, as-of time, future events ---------- */

static int64_t wall_ms(void)
{
	return (int64_t)time(NULL) * 1000;
}

/* Whether @p ext is among r[0..n). */
static int listed(const knytt_result *r, int n, const char *ext)
{
	for (int i = 0; i < n; i++)
		if (strcmp(r[i].ext_id, ext) == 0)
			return 1;
	return 0;
}

START_TEST(exclusion_covers_the_whole_history)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	/* a heavy shopper: one view of every item but the last 30, then
	 * 260 clicks on ten of them -- 470 events, far more than a window
	 * of the last 256 would hold */
	int64_t t = wall_ms() - 1000LL * 3600 * 1000;
	char ext[32];
	int seen = NCAT * PER_CAT - 30;
	for (int k = 0; k < seen; k++) {
		sprintf(ext, "c%d-%d", k / PER_CAT, k % PER_CAT);
		ck_assert_int_eq(knytt_engine_feedback(e, "heavy", ext, "view",
						       0, t += 60000),
				 KNYTT_OK);
	}
	for (int k = 0; k < 260; k++) {
		sprintf(ext, "c%d-%d", NCAT - 1, k % 10);
		ck_assert_int_eq(knytt_engine_feedback(e, "heavy", ext, "click",
						       0, t += 60000),
				 KNYTT_OK);
	}
	knytt_result r[NCAT * PER_CAT] = {
		{.struct_size = sizeof(knytt_result)}};
	for (int round = 0; round < 2; round++) {
		/* live, then loaded from the store by a new engine */
		int n = knytt_engine_recommend(e, "heavy", NCAT * PER_CAT, NULL,
					       NULL, r);
		ck_assert_int_eq(n, 30);
		for (int i = 0; i < n; i++) {
			int c = cat_of(r[i].ext_id);
			int it = atoi(strchr(r[i].ext_id, '-') + 1);
			ck_assert_msg(c * PER_CAT + it >= seen,
				      "%s was seen, round %d", r[i].ext_id,
				      round);
		}
		knytt_engine_close(e);
		if (round == 0)
			e = open_engine(KNYTT_MODEL_ALS, 0);
	}
	cleanup();
}
END_TEST

typedef struct hist_seen {
	int n;
	int64_t last_ts;
	int ordered;
} hist_seen;

static int hist_order_cb(const knytt_interaction *ix, void *ctx)
{
	hist_seen *h = ctx;
	if (ix->ts_ms < h->last_ts)
		h->ordered = 0;
	h->last_ts = ix->ts_ms;
	h->n++;
	return 0;
}

START_TEST(store_reads_a_whole_history)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	/* 1300 events of one user: three pages of the store's reads */
	char csv[200];
	snprintf(csv, sizeof csv, "%s.hist.csv", dbpath);
	FILE *f = fopen(csv, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "user,item,type,ts_ms\n");
	int64_t t = wall_ms() - 2000LL * 60000;
	for (int k = 0; k < 1300; k++)
		fprintf(f, "long,c%d-%d,view,%lld\n", k % NCAT, k % PER_CAT,
			(long long)(t + (k * 7919 % 1300) * 60000LL));
	fclose(f);
	knytt_store *st = knytt_engine_store(e);
	ck_assert_int_eq(knytt_store_import(st, csv, KNYTT_RECORD_INTERACTIONS,
					    KNYTT_FORMAT_CSV, NULL, NULL),
			 1300);
	remove(csv);
	hist_seen h = { 0, INT64_MIN, 1 };
	ck_assert_int_eq(knytt_store_user_history(st, "long", hist_order_cb,
						  &h),
			 1300);
	ck_assert_int_eq(h.n, 1300);
	ck_assert(h.ordered);
	ck_assert_int_eq(knytt_store_user_history(st, "nobody", hist_order_cb,
						  &h),
			 KNYTT_ENOTFOUND);
	ck_assert_int_eq(knytt_store_user_history(st, "long", NULL, NULL),
			 KNYTT_EINVAL);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

START_TEST(trending_is_seeded_from_every_page)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	/* 70000 views of one item in the last hour: more than one page of
	 * the seeding scan */
	char csv[200];
	snprintf(csv, sizeof csv, "%s.burst.csv", dbpath);
	FILE *f = fopen(csv, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "user,item,type,ts_ms\n");
	int64_t t = wall_ms() - 3600000;
	for (int k = 0; k < 70000; k++)
		fprintf(f, "b%d,c2-7,view,%lld\n", k % 50,
			(long long)(t + k * 50));
	fclose(f);
	ck_assert_int_eq(knytt_store_import(knytt_engine_store(e), csv,
					    KNYTT_RECORD_INTERACTIONS,
					    KNYTT_FORMAT_CSV, NULL, NULL),
			 70000);
	remove(csv);
	knytt_engine_close(e);
	e = open_engine(KNYTT_MODEL_ALS, 0);
	knytt_result r[1] = {{.struct_size = sizeof(knytt_result)}};
	ck_assert_int_eq(knytt_engine_trending(e, 1, 604800, NULL, r), 1);
	ck_assert_str_eq(r[0].ext_id, "c2-7");
	ck_assert_msg(r[0].score > 69000, "score %g", r[0].score);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

static void no_session(knytt_engine *e)
{
	ck_assert_int_eq(knytt_engine_set_taste(e, 600, 0, 0), KNYTT_OK);
}

/* A session 9 hours old (18 half-lives: a share of ~2e-6) cannot move
 * any rank, so the engine skips its index search (session_moot in
 * lib/engine/query.c): the answer must be the long-term ranking, item for
 * item, as an engine without sessions gives it. */
START_TEST(faded_session_keeps_the_long_term_order)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e); /* each user's last event: 9 hours ago */
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt_engine_close(e);
	enum { NU = NUSERS / 8 };
	static knytt_result with[NU][10], without[NU][10];
	int nw[NU], nwo[NU];
	e = open_engine(KNYTT_MODEL_ALS, 0);
	for (int u = 0; u < NU; u++) {
		char user[16];
		sprintf(user, "u%d", u * 8);
		with[u][0].struct_size = sizeof(knytt_result);
		nw[u] = knytt_engine_recommend(e, user, 10, NULL, keep_seen(),
					       with[u]);
	}
	knytt_engine_close(e);
	e = open_engine_cfg(KNYTT_MODEL_ALS, 0, 0, no_session);
	for (int u = 0; u < NU; u++) {
		char user[16];
		sprintf(user, "u%d", u * 8);
		without[u][0].struct_size = sizeof(knytt_result);
		nwo[u] = knytt_engine_recommend(e, user, 10, NULL, keep_seen(),
						without[u]);
	}
	knytt_engine_close(e);
	for (int u = 0; u < NU; u++) {
		ck_assert_int_eq(nw[u], 10);
		ck_assert_int_eq(nw[u], nwo[u]);
		for (int i = 0; i < nw[u]; i++) {
			ck_assert_str_eq(with[u][i].ext_id, without[u][i].ext_id);
			ck_assert(with[u][i].reason == KNYTT_REASON_TASTE);
			if (i) /* the fused scores: by rank */
				ck_assert(with[u][i].score <
					  with[u][i - 1].score);
		}
	}
	cleanup();
}
END_TEST

START_TEST(long_term_taste_reads_the_whole_history)
{
	knytt_engine *e = open_engine_cfg(KNYTT_MODEL_ALS, 1, 0, no_session);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	/* 300 views in category 0, then 260 in category 1: the last 256
	 * events alone would say "category 1 only" */
	int64_t t = wall_ms() - 1000LL * 3600 * 1000;
	char ext[32];
	for (int k = 0; k < 560; k++) {
		sprintf(ext, "c%d-%d", k < 300 ? 0 : 1, k % PER_CAT);
		ck_assert_int_eq(knytt_engine_feedback(e, "deep", ext, "view",
						       0, t += 60000),
				 KNYTT_OK);
	}
	knytt_result r[20] = {{.struct_size = sizeof(knytt_result)}};
	for (int round = 0; round < 2; round++) {
		int n = knytt_engine_recommend(e, "deep", 20, NULL, keep_seen(),
					       r);
		ck_assert_int_eq(n, 20);
		int c0 = count_cat(r, n, 0), c1 = count_cat(r, n, 1);
		ck_assert_msg(c0 >= 5 && c1 >= 5,
			      "round %d: %d of category 0, %d of category 1",
			      round, c0, c1);
		knytt_engine_close(e);
		if (round == 0)
			e = open_engine_cfg(KNYTT_MODEL_ALS, 0, 0, no_session);
	}
	cleanup();
}
END_TEST

static void rebuy(knytt_engine *e)
{
	ck_assert_int_eq(knytt_engine_set_exclude_type(e, "", 0), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_exclude_type(e, "purchase", 0),
			 KNYTT_OK);
}

static void exclude_nothing(knytt_engine *e)
{
	ck_assert_int_eq(knytt_engine_set_exclude_seen(e, 0), KNYTT_OK);
}

START_TEST(exclusion_rule_default_and_per_type)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_feedback(e, "x", "c0-1", "view", 0, 0),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_feedback(e, "x", "c0-2", "purchase", 0,
					       0),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_feedback(e, "x", "c0-3", "wishlist", 0,
					       0),
			 KNYTT_OK);
	const int all = NCAT * PER_CAT;
	knytt_result r[NCAT * PER_CAT] = {
		{.struct_size = sizeof(knytt_result)}};
	/* the default: nothing the shopper touched, whatever the type */
	int n = knytt_engine_recommend(e, "x", all, NULL, NULL, r);
	ck_assert_int_eq(n, all - 3);
	ck_assert(!listed(r, n, "c0-1") && !listed(r, n, "c0-2") &&
		  !listed(r, n, "c0-3"));
	/* one call may ask for everything */
	n = knytt_engine_recommend(e, "x", all, NULL, keep_seen(), r);
	ck_assert_int_eq(n, all);
	ck_assert_int_eq(knytt_engine_set_exclude_type(e, "view", 0),
			 KNYTT_ESTATE);
	knytt_engine_close(e);
	/* buying again is opt-in per type */
	e = open_engine_cfg(KNYTT_MODEL_ALS, 0, 0, rebuy);
	n = knytt_engine_recommend(e, "x", all, NULL, NULL, r);
	ck_assert_int_eq(n, all - 2);
	ck_assert(listed(r, n, "c0-2"));
	ck_assert(!listed(r, n, "c0-1") && !listed(r, n, "c0-3"));
	knytt_engine_close(e);
	/* and the engine may turn exclusions off */
	e = open_engine_cfg(KNYTT_MODEL_ALS, 0, 0, exclude_nothing);
	ck_assert_int_eq(knytt_engine_recommend(e, "x", all, NULL, NULL, r),
			 all);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

/* 1998-04-21 00:00 UTC, the MovieLens 100k era. */
#define T1998 893116800000LL

static void as_of_1998(knytt_engine *e)
{
	ck_assert_int_eq(knytt_engine_set_now(e, -1), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_now(e, T1998), KNYTT_OK);
}

static void as_of_before_1998(knytt_engine *e)
{
	ck_assert_int_eq(knytt_engine_set_now(e, T1998 - 30 * 86400000LL),
			 KNYTT_OK);
}

static int has_reason(const knytt_result *r, int n, knytt_reason why)
{
	for (int i = 0; i < n; i++)
		if (r[i].reason == why)
			return 1;
	return 0;
}

START_TEST(as_of_time_replays_old_data)
{
	knytt_engine *e = open_engine_cfg(KNYTT_MODEL_ALS, 1, 0, as_of_1998);
	populate_at(e, T1998);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	/* trending as of 1998, live and after a reopen (seeded from the
	 * store's four weeks before "now") */
	ck_assert_int_eq(knytt_engine_trending(e, 5, 86400, NULL, r), 5);
	ck_assert_double_gt(r[0].score, 0.01);
	/* a shopper's session of a minute ago, in 1998 */
	for (int i = 0; i < 3; i++) {
		char ext[32];
		sprintf(ext, "c4-%d", i);
		ck_assert_int_eq(knytt_engine_feedback(e, "u0", ext, "view", 0,
						       T1998 - 60000 + i),
				 KNYTT_OK);
	}
	knytt_engine_close(e);
	e = open_engine_cfg(KNYTT_MODEL_ALS, 0, 0, as_of_1998);
	ck_assert_int_eq(knytt_engine_trending(e, 5, 86400, NULL, r), 5);
	int n = knytt_engine_recommend(e, "u0", 10, NULL, NULL, r);
	ck_assert_int_eq(n, 10);
	ck_assert_msg(has_reason(r, n, KNYTT_REASON_SESSION),
		      "the 1998 session is fresh as of 1998");
	/* now may move while open: a year later the session is cold */
	ck_assert_int_eq(knytt_engine_set_now(e, T1998 + 365 * 86400000LL),
			 KNYTT_OK);
	n = knytt_engine_recommend(e, "u0", 10, NULL, NULL, r);
	ck_assert(!has_reason(r, n, KNYTT_REASON_SESSION));
	knytt_engine_close(e);
	/* the wall clock sees 1998 as ancient: no session at load */
	e = open_engine(KNYTT_MODEL_ALS, 0);
	n = knytt_engine_recommend(e, "u0", 10, NULL, NULL, r);
	ck_assert(!has_reason(r, n, KNYTT_REASON_SESSION));
	knytt_engine_close(e);
	/* a month before the data: nothing has happened yet */
	e = open_engine_cfg(KNYTT_MODEL_ALS, 0, 0, as_of_before_1998);
	ck_assert_int_eq(knytt_engine_trending(e, 5, 86400, NULL, r), 0);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

static int rejects;
static void count_reject(size_t line, const char *field, const char *reason,
			 void *ctx)
{
	(void)line;
	(void)reason;
	(void)ctx;
	ck_assert_str_eq(field, "ts_ms");
	rejects++;
}

static void strict_future(knytt_engine *e)
{
	ck_assert_int_eq(knytt_engine_set_future_tolerance(e, -1),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_future_tolerance(e, 0), KNYTT_OK);
}

START_TEST(future_events_are_refused)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	knytt_result r[5] = {{.struct_size = sizeof(knytt_result)}};
	ck_assert_int_eq(knytt_engine_trending(e, 1, 3600, NULL, r), 1);
	char top[64];
	strcpy(top, r[0].ext_id);
	/* an event in year 292 million would top trending forever */
	ck_assert_int_eq(knytt_engine_feedback(e, "u1", "c5-39", "purchase", 0,
					       INT64_MAX),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "ts_ms"));
	ck_assert_int_eq(knytt_engine_feedback(e, "u1", "c5-39", "view", 0,
					       wall_ms() + 2 * 3600000LL),
			 KNYTT_EINVAL);
	/* clock skew within the tolerance (an hour) is fine */
	ck_assert_int_eq(knytt_engine_feedback(e, "u1", "c5-38", "view", 0,
					       wall_ms() + 600000),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_trending(e, 1, 3600, NULL, r), 1);
	ck_assert_str_ne(r[0].ext_id, "c5-39");
	/* the store's own paths: add and import */
	knytt_store *st = knytt_engine_store(e);
	knytt_interaction ix;
	memset(&ix, 0, sizeof ix);
	ix.struct_size = sizeof ix;
	ix.user = "u1";
	ix.item = "c5-39";
	ix.type = "view";
	ix.ts_ms = INT64_MAX;
	ck_assert_int_eq(knytt_store_interaction_add(st, &ix), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "ts_ms"));
	char csv[200];
	snprintf(csv, sizeof csv, "%s.future.csv", dbpath);
	FILE *f = fopen(csv, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "user,item,type,ts_ms\nu1,c5-37,view,%lld\n"
		   "u1,c5-39,view,9223372036854775807\n",
		(long long)wall_ms());
	fclose(f);
	rejects = 0;
	ck_assert_int_eq(knytt_store_import(st, csv, KNYTT_RECORD_INTERACTIONS,
					    KNYTT_FORMAT_CSV, count_reject,
					    NULL),
			 1);
	ck_assert_int_eq(rejects, 1);
	remove(csv);
	knytt_engine_close(e);
	/* the tolerance is a setting, measured from the engine's now */
	e = open_engine_cfg(KNYTT_MODEL_ALS, 0, 0, strict_future);
	ck_assert_int_eq(knytt_engine_feedback(e, "u1", "c5-38", "view", 0,
					       wall_ms() + 5000),
			 KNYTT_EINVAL);
	knytt_engine_close(e);
	e = open_engine_cfg(KNYTT_MODEL_ALS, 0, 0, as_of_1998);
	ck_assert_int_eq(knytt_engine_feedback(e, "u1", "c5-38", "view", 0,
					       T1998 + 2 * 3600000LL),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_feedback(e, "u1", "c5-38", "view", 0,
					       T1998 - 1000),
			 KNYTT_OK);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

/* ---- model versions: retention, index files, atomic training --------- */

/* "<dbpath>.knytt-t<tenant>-v<tail>": a file of the index family. */
static void index_file(char *out, size_t cap, const char *db,
		       uint64_t tenant, const char *tail)
{
	int n = snprintf(out, cap, "%s.knytt-t%llu-v%s", db,
			 (unsigned long long)tenant, tail);
	ck_assert(n > 0 && (size_t)n < cap);
}

static int exists(const char *path)
{
	return access(path, F_OK) == 0;
}

static int emb_count_cb(uint64_t id, const float *v, uint32_t dim, void *ctx)
{
	(void)id;
	(void)v;
	(void)dim;
	(*(int *)ctx)++;
	return 0;
}

static int emb_count(knytt_store *st, const char *version)
{
	int n = 0;
	int rc = knytt_store_embeddings_each(st, KNYTT_OWNER_ITEM, version,
					     emb_count_cb, &n);
	ck_assert(rc >= 0 || rc == KNYTT_ENOTFOUND);
	return n;
}

static void keep_two(knytt_engine *e)
{
	ck_assert_int_eq(knytt_engine_set_keep_models(e, 1001), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_keep_models(e, 2), KNYTT_OK);
}

static void touch(const char *path, time_t age_s)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	struct timeval tv[2];
	gettimeofday(&tv[0], NULL);
	tv[0].tv_sec -= age_s;
	tv[1] = tv[0];
	ck_assert_int_eq(utimes(path, tv), 0);
}

START_TEST(old_models_and_files_are_pruned)
{
	knytt_engine *e = open_engine_cfg(KNYTT_MODEL_ALS, 1, 0, keep_two);
	populate(e);
	uint64_t t = knytt_store_tenant(knytt_engine_store(e));
	char stale[300], fresh[300], path[300];
	index_file(stale, sizeof stale, dbpath, t, "new-dead.index.tmp.AbCdEf");
	index_file(fresh, sizeof fresh, dbpath, t, "new-busy.index");
	for (int i = 0; i < 4; i++) {
		if (i == 3) {
			touch(stale, 2 * 3600); /* a writer that died */
			touch(fresh, 0);        /* a writer at work */
		}
		ck_assert_msg(knytt_engine_train(e, NULL, NULL) == KNYTT_OK,
			      "%s", knytt_errmsg());
	}
	knytt_store *st = knytt_engine_store(e);
	for (int v = 1; v <= 4; v++) {
		char ver[32];
		snprintf(ver, sizeof ver, "model-v%d", v);
		ck_assert_int_eq(knytt_store_model_get(st, "engine-model", v,
						       NULL, NULL, NULL, NULL,
						       NULL),
				 v <= 2 ? KNYTT_ENOTFOUND : KNYTT_OK);
		ck_assert_int_eq(emb_count(st, ver) > 0, v > 2);
		snprintf(ver, sizeof ver, "%d.index", v);
		index_file(path, sizeof path, dbpath, t, ver);
		ck_assert_msg(exists(path) == (v > 2), "%s", path);
	}
	ck_assert(!exists(stale));
	ck_assert(exists(fresh));
	knytt_engine_close(e);
	cleanup();
}
END_TEST

static int warnings;
static char last_warning[1024];

static void on_log(void *ctx, const char *msg)
{
	(void)ctx;
	warnings++;
	snprintf(last_warning, sizeof last_warning, "%s", msg);
}

static knytt_engine *open_tenant(const char *db, const char *tenant)
{
	char uri[300];
	snprintf(uri, sizeof uri, "sqlite:%s", db);
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, 16), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_threads(e, 1), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_tenant(e, tenant), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_log(e, on_log, NULL), KNYTT_OK);
	ck_assert_msg(knytt_engine_open(e, uri) == KNYTT_OK, "%s",
		      knytt_errmsg());
	return e;
}

START_TEST(index_files_are_named_by_ids_and_checked)
{
	char dir[] = "/tmp/knytt-paths-XXXXXX", db[2][200], cmd[700];
	char file[2][300];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	/* tenant names: a documented set, refused with the field named */
	snprintf(db[0], sizeof db[0], "sqlite:%s/names.db", dir);
	knytt_store *st;
	ck_assert_int_eq(knytt_store_open(db[0], &st), KNYTT_OK);
	const char *bad[] = { "z/../../outside/pwned", "a/b", ".hidden", "",
			      "-x", "tab\tname",
			      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
			      "aaaaaaaaaaaaaaaa" };
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		ck_assert_int_eq(knytt_store_tenant_create(st, bad[i], NULL),
				 KNYTT_EINVAL);
		ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "name"));
	}
	ck_assert_int_eq(knytt_store_tenant_create(st, "shop-1.eu_2", NULL),
			 KNYTT_OK);
	knytt_store_close(st);
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_tenant(e, "z/../../outside/pwned"),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_open(e, db[0]), KNYTT_EINVAL);
	knytt_engine_close(e);

	/* "s.evil" of X.db and "evil" of X.db.s: two files, never one */
	snprintf(db[0], sizeof db[0], "%s/X.db", dir);
	snprintf(db[1], sizeof db[1], "%s/X.db.s", dir);
	const char *tenant[2] = { "s.evil", "evil" };
	warnings = 0;
	for (int i = 0; i < 2; i++) {
		e = open_tenant(db[i], tenant[i]);
		populate(e);
		ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
		index_file(file[i], sizeof file[i], db[i],
			   knytt_store_tenant(knytt_engine_store(e)), "1.index");
		ck_assert_msg(exists(file[i]), "%s", file[i]);
		knytt_engine_close(e);
	}
	ck_assert_str_ne(file[0], file[1]);
	for (int i = 0; i < 2; i++) {
		knytt_engine_close(open_tenant(db[i], tenant[i]));
		ck_assert_int_eq(warnings, 0);
	}
	/* a foreign file in X.db's place: refused, rebuilt, saved again */
	snprintf(cmd, sizeof cmd, "cp %s %s", file[1], file[0]);
	ck_assert_int_eq(system(cmd), 0);
	e = open_tenant(db[0], tenant[0]);
	ck_assert_int_eq(warnings, 1);
	ck_assert_ptr_nonnull(strstr(last_warning, "not built for this"));
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	ck_assert_int_eq(knytt_engine_recommend(e, "u3", 10, NULL, NULL, r),
			 10);
	knytt_engine_close(e);
	knytt_engine_close(open_tenant(db[0], tenant[0]));
	ck_assert_int_eq(warnings, 1);
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* Empties the WAL, so the next writes start at offset 0 of the file. */
static void wal_truncate(void)
{
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
	sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
	sqlite3_close(db);
}

START_TEST(training_is_all_or_nothing)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt_store *st = knytt_engine_store(e);
	uint64_t t = knytt_store_tenant(st);
	char v2[300];
	index_file(v2, sizeof v2, dbpath, t, "2.index");
	/* a full disk, at growing sizes: the file-size limit makes every
	 * write past it fail (EFBIG), in the index file or in the WAL */
	signal(SIGXFSZ, SIG_IGN);
	struct rlimit unl, lim;
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &unl), 0);
	int failed = 0, rc = -1;
	for (rlim_t kb = 4; kb <= 2048 && rc != KNYTT_OK; kb += 12) {
		wal_truncate();
		lim = unl;
		lim.rlim_cur = kb * 1024;
		setrlimit(RLIMIT_FSIZE, &lim);
		rc = knytt_engine_train(e, NULL, NULL);
		setrlimit(RLIMIT_FSIZE, &unl);
		if (rc == KNYTT_OK)
			break;
		failed++;
		/* nothing of version 2 is visible, served or left behind */
		knytt_train_status ts = {.struct_size = sizeof ts};
		ck_assert_int_eq(knytt_engine_train_status(e, &ts), KNYTT_OK);
		ck_assert_int_eq(ts.model_version, 1);
		int64_t latest = 0;
		ck_assert_int_eq(knytt_store_model_get(st, "engine-model", 0,
						       NULL, NULL, NULL,
						       &latest, NULL),
				 KNYTT_OK);
		ck_assert_msg(latest == 1, "version %lld committed at %u KiB",
			      (long long)latest, (unsigned)kb);
		ck_assert_int_eq(emb_count(st, "model-v2"), 0);
		ck_assert(!exists(v2));
	}
	ck_assert_msg(failed >= 3, "only %d failures", failed);
	ck_assert_int_eq(rc, KNYTT_OK);
	ck_assert_int_gt(emb_count(st, "model-v2"), 0);
	ck_assert(exists(v2));
	knytt_engine_close(e);
	e = open_engine(KNYTT_MODEL_ALS, 0);
	knytt_train_status ts = {.struct_size = sizeof ts};
	ck_assert_int_eq(knytt_engine_train_status(e, &ts), KNYTT_OK);
	ck_assert_int_eq(ts.model_version, 2);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

/* ---- the search log under write-behind ------------------------------- */

#define SL_THREADS 4
#define SL_PER 150

typedef struct sl_worker {
	knytt_engine *e;
	int id;
	int failed; /* searches that returned an error */
	pthread_t th;
} sl_worker;

static void *sl_search(void *p)
{
	sl_worker *w = p;
	knytt_result r[8] = {{.struct_size = sizeof(knytt_result)}};
	char q[64];
	for (int i = 0; i < SL_PER; i++) {
		/* a word of the shop, so the keyword half finds something */
		snprintf(q, sizeof q, "%s w%d n%d", words[i % NCAT][0], w->id,
			 i);
		if (knytt_engine_search(w->e, q, NULL, 0, 8, NULL, NULL, r,
					NULL) < 0)
			w->failed++;
		/* paced, so the writer thread has a core to itself and
		 * would keep up row by row if it wrote at once */
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	return NULL;
}

/* Per writer thread, the next search number expected in the log. */
typedef struct sl_seen {
	int next[SL_THREADS];
	int bad;
} sl_seen;

static int sl_row(const char *query, uint64_t user, int64_t ts,
		  uint64_t clicked, void *ctx)
{
	sl_seen *s = ctx;
	const char *w = strstr(query, " w");
	int t, i;
	if (!w || sscanf(w, " w%d n%d", &t, &i) != 2 || t < 0 ||
	    t >= SL_THREADS || i != s->next[t])
		s->bad++;
	else
		s->next[t]++;
	return 0;
}

static double sl_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* Searches from SL_THREADS threads on an engine with write-behind over
 * @p uri: every one logged, each thread's in the order it searched, and
 * the rows written a group per transaction -- not a commit per search,
 * which made every search connection re-read its pages (feedq.c). */
static void logged_searches_share_commits(const char *uri)
{
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, 16), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_threads(e, 1), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_feedback_async(e, 1), KNYTT_OK);
	ck_assert_msg(knytt_engine_open(e, uri) == KNYTT_OK, "%s",
		      knytt_errmsg());
	add_items(e, 4);
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);
	uint64_t c0 = e->fq_log_commits;
	sl_worker w[SL_THREADS];
	double t0 = sl_now_ms();
	for (int i = 0; i < SL_THREADS; i++) {
		w[i] = (sl_worker){ .e = e, .id = i };
		ck_assert_int_eq(pthread_create(&w[i].th, NULL, sl_search,
						&w[i]),
				 0);
	}
	for (int i = 0; i < SL_THREADS; i++) {
		pthread_join(w[i].th, NULL);
		ck_assert_int_eq(w[i].failed, 0);
	}
	double ms = sl_now_ms() - t0;
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);
	/* one commit per LOG_DELAY_MS, one per full group, plus the ends */
	uint64_t commits = e->fq_log_commits - c0,
		 bound = (uint64_t)(ms / KNYTT__LOG_DELAY_MS) +
			 SL_THREADS * SL_PER / KNYTT__LOG_GROUP + 3;
	ck_assert_msg(commits <= bound,
		      "%llu search-log commits for %d rows in %.0f ms (at "
		      "most %llu)", (unsigned long long)commits,
		      SL_THREADS * SL_PER, ms, (unsigned long long)bound);
	sl_seen s = { { 0 }, 0 };
	ck_assert_int_eq(knytt__search_log_each(knytt_engine_store(e),
						sl_row, &s),
			 SL_THREADS * SL_PER);
	ck_assert_int_eq(s.bad, 0);
	for (int i = 0; i < SL_THREADS; i++)
		ck_assert_int_eq(s.next[i], SL_PER);
	knytt_engine_close(e);
}

START_TEST(search_log_rows_share_commits_in_order)
{
	snprintf(dbpath, sizeof dbpath, "/tmp/knytt-engine-%d-slog.db",
		 (int)getpid());
	cleanup();
	char uri[160];
	snprintf(uri, sizeof uri, "sqlite:%s", dbpath);
	logged_searches_share_commits(uri);
	cleanup();
}
END_TEST

/* Counts the rows of the search log. */
static int sl_count(const char *query, uint64_t user, int64_t ts,
		    uint64_t clicked, void *ctx)
{
	++*(int *)ctx;
	return 0;
}

/* A search-log row waiting for company reaches the store on its own,
 * without a flush, and close writes the rows still waiting. */
START_TEST(waiting_search_log_rows_are_written)
{
	knytt_engine *e = open_engine_opt(KNYTT_MODEL_ALS, 1, 1);
	knytt_result r[8] = {{.struct_size = sizeof(knytt_result)}};
	ck_assert_int_ge(knytt_engine_search(e, "trail boot", NULL, 0, 8,
					     NULL, NULL, r, NULL),
			 0);
	double t0 = sl_now_ms();
	while (knytt_engine_feedback_pending(e) > 0 &&
	       sl_now_ms() - t0 < 10000) {
		struct timespec ts = { 0, 5000000 };
		nanosleep(&ts, NULL);
	}
	ck_assert_int_eq(knytt_engine_feedback_pending(e), 0);
	for (int i = 0; i < 40; i++)
		ck_assert_int_ge(knytt_engine_search(e, "trail", NULL, 0, 8,
						     NULL, NULL, r, NULL),
				 0);
	knytt_engine_close(e); /* no flush */
	knytt_store *st;
	char uri[160];
	snprintf(uri, sizeof uri, "sqlite:%s", dbpath);
	uint64_t t = 0;
	ck_assert_int_eq(knytt_store_open(uri, &st), KNYTT_OK);
	ck_assert_int_eq(knytt_store_tenant_find(st, "default", &t), KNYTT_OK);
	ck_assert_int_eq(knytt_store_use_tenant(st, t), KNYTT_OK);
	int n = 0;
	ck_assert_int_eq(knytt__search_log_each(st, sl_count, &n), 41);
	ck_assert_int_eq(n, 41);
	knytt_store_close(st);
	cleanup();
}
END_TEST

/* ---- PostgreSQL: the index is kept in the cache folder ---------------- */

static void pg_fixture(void)
{
	const char *ex = getenv("CK_EXCLUDE_TAGS");
	if (!(ex && strstr(ex, "postgres")))
		pgs_start();
}

static knytt_engine *open_uri(const char *uri)
{
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, 16), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_threads(e, 1), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_log(e, on_log, NULL), KNYTT_OK);
	ck_assert_msg(knytt_engine_open(e, uri) == KNYTT_OK, "%s",
		      knytt_errmsg());
	return e;
}

/* The one index file under @p cache (pg-KEY/t1-v1.index): its path. */
static int find_index(const char *cache, char *out, size_t cap)
{
	char cmd[400];
	snprintf(cmd, sizeof cmd, "ls %s/pg-*/t*-v1.index 2>/dev/null",
		 cache);
	FILE *p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	int n = 0;
	char line[512];
	while (fgets(line, sizeof line, p)) {
		line[strcspn(line, "\n")] = '\0';
		snprintf(out, cap, "%s", line);
		n++;
	}
	pclose(p);
	return n;
}

START_TEST(postgres_index_is_kept_between_opens)
{
	char cache[] = "/tmp/knytt-cache-XXXXXX", uri[2][1024], path[512],
	     cmd[600];
	ck_assert_ptr_nonnull(mkdtemp(cache));
	setenv("KNYTT_CACHE_DIR", cache, 1);
	pgs_new_store(uri[0], sizeof uri[0]);
	warnings = 0;
	knytt_engine *e = open_uri(uri[0]);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt_engine_close(e);
	ck_assert_int_eq(find_index(cache, path, sizeof path), 1);
	struct stat a, b;
	ck_assert_int_eq(stat(path, &a), 0);
	/* the next open loads that file: not rebuilt, not written again */
	e = open_uri(uri[0]);
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	ck_assert_int_eq(knytt_engine_recommend(e, "u3", 10, NULL, NULL, r),
			 10);
	ck_assert_int_eq(knytt_engine_trending(e, 5, 86400, NULL, r), 5);
	knytt_engine_close(e);
	ck_assert_int_eq(stat(path, &b), 0);
	ck_assert(a.st_ino == b.st_ino && a.st_mtime == b.st_mtime);
	ck_assert_int_eq(warnings, 0);
	/* without it: rebuilt once, saved, then loaded again */
	ck_assert_int_eq(unlink(path), 0);
	knytt_engine_close(open_uri(uri[0]));
	ck_assert_int_eq(stat(path, &a), 0);
	knytt_engine_close(open_uri(uri[0]));
	ck_assert_int_eq(stat(path, &b), 0);
	ck_assert(a.st_ino == b.st_ino);
	/* another store (schema) of the same server: a folder of its own */
	pgs_new_store(uri[1], sizeof uri[1]);
	e = open_uri(uri[1]);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt_engine_close(e);
	ck_assert_int_eq(find_index(cache, path, sizeof path), 2);
	ck_assert_int_eq(warnings, 0);
	snprintf(cmd, sizeof cmd, "rm -rf %s", cache);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(postgres_search_log_rows_share_commits_in_order)
{
	char uri[1024];
	pgs_new_store(uri, sizeof uri);
	logged_searches_share_commits(uri);
}
END_TEST

/* ------------------------------------------------------------ concurrency */

/*
 * Queries, feedback, item writes, deletes and training swaps from several
 * threads at once (run under ThreadSanitizer by make tsan).  Every result
 * must pass its filter by the planted attributes (make_item: the test
 * never reads the engine's store handle, which is the engine's), carry no
 * duplicate, and never name an item whose delete returned before the
 * query began.
 */
#define CC_EXTRA 16 /* items the writer adds to each category */
#define CC_ROWS (PER_CAT + CC_EXTRA)

typedef struct ccstate {
	knytt_engine *e;
	int stop;                      /* atomic */
	int deleted[NCAT][CC_ROWS];    /* atomic: delete returned */
	int fail;                      /* atomic */
	char why[256];
	long queries, events, writes, swaps; /* per role, atomic */
	long overlapped; /* atomic: queries a snapshot swap landed in */
} ccstate;

static int cc_stopped(ccstate *c)
{
	return __atomic_load_n(&c->stop, __ATOMIC_ACQUIRE);
}

static void cc_fail(ccstate *c, const char *fmt, const char *a, int n)
{
	if (__atomic_exchange_n(&c->fail, 1, __ATOMIC_ACQ_REL) == 0)
		snprintf(c->why, sizeof c->why, fmt, a, n);
}

/* The filter by the attributes make_item planted. */
static int cc_passes(const char *ext, const knytt_filter *f)
{
	int c, i;
	if (sscanf(ext, "c%d-%d", &c, &i) != 2 || c < 0 || c >= NCAT ||
	    i < 0 || i >= CC_ROWS)
		return 0;
	if (f->category_prefix) {
		size_t l = strlen(f->category_prefix);
		if (strncmp(cats[c], f->category_prefix, l) != 0 ||
		    (cats[c][l] != 0 && cats[c][l] != '/'))
			return 0;
	}
	double price = item_price(c, i);
	if (f->price_min > 0 && price < f->price_min)
		return 0;
	if (!isnan(f->price_max) && price > f->price_max)
		return 0;
	if (f->in_stock_only && i % 7 == 0)
		return 0;
	if (!isnan(f->min_quality) && (double)(i % 5) < f->min_quality)
		return 0;
	return 1;
}

static int cc_deletable(int i)
{
	return i % 8 == 5;
}

/* The generation of the serving snapshot (test-only peek). */
static uint64_t cc_gen(knytt_engine *e)
{
	knytt__snap *s = knytt__snap_get(e);
	uint64_t g = s->gen;
	knytt__snap_put(s);
	return g;
}

static void *cc_querier(void *p)
{
	ccstate *c = p;
	static const char *prefixes[] = { NULL, "shoes", "kitchen/coffee",
					  "toys" };
	uint64_t s = (uint64_t)(uintptr_t)&s;
	knytt_result r[20] = {{.struct_size = sizeof(knytt_result)}};
	int was[NCAT][CC_ROWS];
	while (!cc_stopped(c)) {
		knytt_filter f;
		knytt_filter_init(&f);
		f.category_prefix = prefixes[tu_rand(&s) % 4];
		if (tu_rand(&s) % 2)
			f.price_max = 20 + (double)(tu_rand(&s) % 60);
		f.in_stock_only = (int)(tu_rand(&s) % 2);
		char user[16], item[16];
		sprintf(user, "u%d", (int)(tu_rand(&s) % NUSERS));
		sprintf(item, "c%d-%d", (int)(tu_rand(&s) % NCAT),
			(int)(tu_rand(&s) % 4) * 8); /* never deleted */
		for (int a = 0; a < NCAT; a++)
			for (int b = 0; b < CC_ROWS; b++)
				was[a][b] = __atomic_load_n(&c->deleted[a][b],
							    __ATOMIC_ACQUIRE);
		int op = (int)(tu_rand(&s) % 4), n;
		/* the serving generation before and after: a query that a
		 * swap overlapped must finish on its snapshot all the same */
		uint64_t gen0 = cc_gen(c->e);
		if (op == 0)
			n = knytt_engine_recommend(c->e, user, 20, &f, NULL, r);
		else if (op == 1)
			n = knytt_engine_similar(c->e, item, 20, &f, r);
		else if (op == 2)
			n = knytt_engine_search(c->e, "trail coffee boot", NULL,
						0, 20, &f, user, r, NULL);
		else
			n = knytt_engine_trending(c->e, 20, 3600,
						  f.category_prefix, r);
		if (cc_gen(c->e) != gen0)
			__atomic_add_fetch(&c->overlapped, 1, __ATOMIC_RELAXED);
		if (op == 3) { /* trending filters by category only */
			f.price_max = NAN;
			f.in_stock_only = 0;
		}
		if (n < 0 || n > 20) {
			cc_fail(c, "query failed: %s (%d)", knytt_errmsg(), n);
			break;
		}
		for (int i = 0; i < n; i++) {
			int a, b;
			if (!cc_passes(r[i].ext_id, &f))
				cc_fail(c, "%s violates the filter (op %d)",
					r[i].ext_id, op);
			else if (sscanf(r[i].ext_id, "c%d-%d", &a, &b) == 2 &&
				 was[a][b])
				cc_fail(c, "deleted item %s returned (op %d)",
					r[i].ext_id, op);
			for (int j = 0; j < i; j++)
				if (r[j].item_id == r[i].item_id)
					cc_fail(c, "%s twice (op %d)",
						r[i].ext_id, op);
		}
		__atomic_add_fetch(&c->queries, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *cc_feeder(void *p)
{
	ccstate *c = p;
	uint64_t s = 77;
	static const char *types[] = { "view", "click", "add_to_cart",
				       "purchase" };
	while (!cc_stopped(c)) {
		char user[16], item[16];
		int a = (int)(tu_rand(&s) % NCAT), b = (int)(tu_rand(&s) % PER_CAT);
		/* known shoppers and new ones */
		sprintf(user, "u%d", (int)(tu_rand(&s) % (NUSERS + 40)));
		sprintf(item, "c%d-%d", a, b);
		int rc = knytt_engine_feedback(c->e, user, item,
					       types[tu_rand(&s) % 4], 0, 0);
		if (rc != KNYTT_OK && !(rc == KNYTT_ENOTFOUND &&
					cc_deletable(b))) {
			cc_fail(c, "feedback failed: %s (%d)", knytt_errmsg(),
				rc);
			break;
		}
		__atomic_add_fetch(&c->events, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* New items (and re-writes of them), deletes of the deletable ones. */
static void *cc_writer(void *p)
{
	ccstate *c = p;
	char ext[32], title[128];
	knytt_item it;
	for (int k = 0; !cc_stopped(c); k++) {
		int a = k % NCAT, i = PER_CAT + (k / NCAT) % CC_EXTRA;
		make_item(&it, a, i, ext, title);
		int rc = knytt_engine_item_upsert(c->e, &it, NULL, 0);
		if (rc == KNYTT_OK && k % 3 == 0) {
			int d = (k / 3) % CC_ROWS;
			if (cc_deletable(d) && d < PER_CAT &&
			    !__atomic_load_n(&c->deleted[a][d],
					     __ATOMIC_ACQUIRE)) {
				sprintf(ext, "c%d-%d", a, d);
				rc = knytt_engine_item_delete(c->e, ext);
				if (rc == KNYTT_OK)
					__atomic_store_n(&c->deleted[a][d], 1,
							 __ATOMIC_RELEASE);
			}
		}
		if (rc != KNYTT_OK) {
			cc_fail(c, "item write failed: %s (%d)", knytt_errmsg(),
				rc);
			break;
		}
		__atomic_add_fetch(&c->writes, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *cc_trainer(void *p)
{
	ccstate *c = p;
	while (!cc_stopped(c)) {
		int rc = knytt_engine_train_start(c->e, NULL, NULL);
		if (rc == KNYTT_OK)
			rc = knytt_engine_train_wait(c->e);
		if (rc != KNYTT_OK) {
			cc_fail(c, "training failed: %s (%d)", knytt_errmsg(),
				rc);
			break;
		}
		__atomic_add_fetch(&c->swaps, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* After a failed open only close is left (knytt.h): a second open is
 * refused, and close frees what the failed one loaded (ASan checks). */
START_TEST(failed_open_leaves_only_close)
{
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_ne(knytt_engine_open(e, "sqlite:/nonexistent/dir/x.db"),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_open(e, "sqlite::memory:"),
			 KNYTT_ESTATE);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "knytt_engine_close"));
	knytt_engine_close(e);
	/* a setting the open refuses: fixing it does not revive the handle */
	knytt_engine_close(open_engine(KNYTT_MODEL_ALS, 1)); /* a store */
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_model(e, KNYTT_MODEL_TWOTOWER),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, 2000), KNYTT_OK);
	char uri[160];
	snprintf(uri, sizeof uri, "sqlite:%s", dbpath);
	ck_assert_int_eq(knytt_engine_open(e, uri), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_dim(e, 16), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_open(e, uri), KNYTT_ESTATE);
	knytt_engine_close(e);
	knytt_engine_close(NULL);
	cleanup();
}
END_TEST

/* Reciprocal rank fusion (lib/engine/fusion.c) against values worked
 * out by hand. */
START_TEST(rank_fusion_by_hand)
{
	knytt__rrf r;
	/* hybrid search: k = 60, weights 1 */
	const uint64_t kw[] = { 10, 20, 30 }, vec[] = { 20, 40 };
	ck_assert_int_eq(knytt__rrf_init(&r, 60, 1), KNYTT_OK); /* grows */
	ck_assert_int_eq(knytt__rrf_add(&r, 0, 1, kw, 3), KNYTT_OK);
	ck_assert_int_eq(knytt__rrf_add(&r, 1, 1, vec, 2), KNYTT_OK);
	knytt__rrf_sort(&r);
	ck_assert_uint_eq(r.n, 4);
	/* 20: 1/62 + 1/61; 10: 1/61; 40: 1/62; 30: 1/63 */
	const uint64_t want[] = { 20, 10, 40, 30 };
	const double score[] = { 0.0325224749, 0.0163934426, 0.0161290323,
				 0.0158730159 };
	const unsigned lists[] = { 3, 1, 2, 1 };
	for (int i = 0; i < 4; i++) {
		ck_assert_uint_eq(r.f[i].id, want[i]);
		ck_assert_double_eq_tol(r.f[i].score, score[i], 1e-9);
		ck_assert_uint_eq(r.f[i].lists, lists[i]);
	}
	/* 20 gained more from rank 1 of the vector list than from rank 2 */
	ck_assert_uint_eq(r.f[0].best, 1);
	ck_assert_uint_eq(r.f[0].best_pos, 0);
	knytt__rrf_free(&r);

	/* recommend: k = 0, long-term 0.75, session 0.25 */
	const uint64_t a[] = { 1, 2, 3 }, b[] = { 3, 4 };
	ck_assert_int_eq(knytt__rrf_init(&r, 0, 8), KNYTT_OK);
	ck_assert_int_eq(knytt__rrf_add(&r, 0, 0.75, a, 3), KNYTT_OK);
	ck_assert_int_eq(knytt__rrf_add(&r, 1, 0.25, b, 2), KNYTT_OK);
	knytt__rrf_sort(&r);
	/* 1: .75; 3: .75/3 + .25/1 = .5; 2: .375; 4: .125 */
	const uint64_t want2[] = { 1, 3, 2, 4 };
	const double score2[] = { 0.75, 0.5, 0.375, 0.125 };
	for (int i = 0; i < 4; i++) {
		ck_assert_uint_eq(r.f[i].id, want2[i]);
		ck_assert_double_eq_tol(r.f[i].score, score2[i], 1e-12);
	}
	/* 3: .25 from each list, the tie goes to the earlier list */
	ck_assert_uint_eq(r.f[1].best, 0);
	ck_assert_uint_eq(r.f[1].best_pos, 2);
	ck_assert_uint_eq(r.f[3].best, 1);
	ck_assert_uint_eq(r.f[3].best_pos, 1);
	knytt__rrf_free(&r);

	/* equal scores: the smaller id first; an id twice in a list counts
	 * once, at its first rank */
	const uint64_t x[] = { 7, 7 }, y[] = { 5 };
	ck_assert_int_eq(knytt__rrf_init(&r, 0, 2), KNYTT_OK);
	ck_assert_int_eq(knytt__rrf_add(&r, 0, 1, x, 2), KNYTT_OK);
	ck_assert_int_eq(knytt__rrf_add(&r, 1, 1, y, 1), KNYTT_OK);
	knytt__rrf_sort(&r);
	ck_assert_uint_eq(r.n, 2);
	ck_assert_uint_eq(r.f[0].id, 5);
	ck_assert_uint_eq(r.f[1].id, 7);
	ck_assert_double_eq_tol(r.f[1].score, 1.0, 1e-12);
	knytt__rrf_free(&r);

	/* many ids: linear in the lists (a map, not a scan per entry) */
	uint64_t *big = malloc(20000 * sizeof *big);
	ck_assert_ptr_nonnull(big);
	for (int i = 0; i < 20000; i++)
		big[i] = (uint64_t)(i * 2654435761u);
	ck_assert_int_eq(knytt__rrf_init(&r, 60, 16), KNYTT_OK);
	ck_assert_int_eq(knytt__rrf_add(&r, 0, 1, big, 20000), KNYTT_OK);
	ck_assert_int_eq(knytt__rrf_add(&r, 1, 1, big + 10000, 10000),
			 KNYTT_OK);
	knytt__rrf_sort(&r);
	ck_assert_uint_eq(r.n, 20000);
	/* big[10000]: 1/10061 + 1/61, the best of all */
	ck_assert_uint_eq(r.f[0].id, big[10000]);
	ck_assert_double_eq_tol(r.f[0].score, 1.0 / 10061 + 1.0 / 61, 1e-12);
	knytt__rrf_free(&r);
	free(big);
}
END_TEST

/*
 * A reader's snapshot outlives the swap: it still answers from its own
 * index and model after a training run published the next one, and it
 * is freed when the reader puts it back (ASan in make sanitize reports a
 * leak or a use after free otherwise).
 */
START_TEST(snapshot_outlives_a_swap)
{
	knytt_engine *e = open_engine_opt(KNYTT_MODEL_ALS, 1, 0);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt__snap *old = knytt__snap_get(e);
	ck_assert_int_eq(__atomic_load_n(&old->refs, __ATOMIC_RELAXED), 2);
	size_t count = knytt_index_count(old->ix);
	int64_t version = old->version;
	ck_assert_uint_gt(count, 0);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt__snap *now = knytt__snap_get(e);
	ck_assert_ptr_ne(now, old);
	ck_assert_int_gt(now->version, version);
	ck_assert_uint_eq(now->gen, old->gen + 1);
	/* the engine let go of the old one; this reader still holds it */
	ck_assert_int_eq(__atomic_load_n(&old->refs, __ATOMIC_RELAXED), 1);
	ck_assert_uint_eq(knytt_index_count(old->ix), count);
	float v[64];
	uint64_t lab[5];
	float dist[5];
	ck_assert_uint_le(e->dim, 64);
	for (uint32_t i = 0; i < e->dim; i++)
		v[i] = 1.0f / (float)(i + 1);
	ck_assert_int_eq(knytt_index_search(old->ix, v, e->dim, 5, 0, lab,
					    dist), 5);
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	ck_assert_int_gt(knytt_engine_recommend(e, "u1", 10, NULL, NULL, r),
			 0);
	knytt__snap_put(old); /* the last reader: frees it */
	knytt__snap_put(now);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

/*
 * knytt_engine_set_weight reaches rows the engine never saw as feedback:
 * interactions imported through the store (weight column empty: the
 * type's default) train a different model when the engine weighs the
 * type differently.  Training is deterministic for a seed and a thread
 * count, so equal weights give equal vectors and the check is exact.
 */
static void import_views_and_purchases(const char *path)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fprintf(f, "user,item,type,weight,ts_ms\n");
	uint64_t s = 5;
	int64_t now = (int64_t)time(NULL) * 1000;
	for (int u = 0; u < NUSERS; u++)
		for (int k = 0; k < 12; k++) {
			/* views in the user's category, purchases in the
			 * next one: the weights decide which one counts */
			int buy = k % 4 == 0;
			int c = (user_cat(u) + buy) % NCAT;
			fprintf(f, "u%d,c%d-%d,%s,,%lld\n", u, c,
				(int)(tu_rand(&s) % PER_CAT),
				buy ? "purchase" : "view",
				(long long)(now - (int64_t)(12 - k) * 3600000));
		}
	fclose(f);
	knytt_store *st;
	uint64_t tenant;
	char uri[160];
	snprintf(uri, sizeof uri, "sqlite:%s", dbpath);
	ck_assert_int_eq(knytt_store_open(uri, &st), KNYTT_OK);
	ck_assert_int_eq(knytt_store_tenant_find(st, "default", &tenant),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_store_use_tenant(st, tenant), KNYTT_OK);
	ck_assert_msg(knytt_store_import(st, path, KNYTT_RECORD_INTERACTIONS,
					 KNYTT_FORMAT_CSV, NULL, NULL) > 0,
		      "%s", knytt_errmsg());
	knytt_store_close(st);
}

/* Fixed settings: automatic tuning stops when its wall-clock budget
 * runs out, so two tuned trainings need not be the same model. */
static void fixed_settings(knytt_engine *e)
{
	ck_assert_int_eq(knytt_engine_set_tune(e, 0), KNYTT_OK);
}

static void heavy_views(knytt_engine *e)
{
	fixed_settings(e);
	ck_assert_int_eq(knytt_engine_set_weight(e, "view", 40), KNYTT_OK);
}

/* The trained vector of item c0-3 (the index of the current snapshot). */
static void trained_vector(knytt_engine *e, float *v)
{
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt__snap *s = knytt__snap_get(e);
	uint32_t r = knytt__engine_row_by_ext(e, "c0-3");
	ck_assert_uint_ne(r, UINT32_MAX);
	ck_assert_int_eq(knytt_index_get(s->ix, e->items[r].id, v, e->dim),
			 KNYTT_OK);
	knytt__snap_put(s);
}

START_TEST(engine_weights_reach_imported_rows)
{
	knytt_engine *e = open_engine(KNYTT_MODEL_ALS, 1);
	char csv[300];
	add_items(e, PER_CAT);
	knytt_engine_close(e);
	snprintf(csv, sizeof csv, "%s.csv", dbpath);
	import_views_and_purchases(csv);
	float a[16], b[16], c2[16];
	e = open_engine_cfg(KNYTT_MODEL_ALS, 0, 0, fixed_settings);
	trained_vector(e, a);
	knytt_engine_close(e);
	e = open_engine_cfg(KNYTT_MODEL_ALS, 0, 0, fixed_settings);
	trained_vector(e, c2); /* the same weights: the same model */
	knytt_engine_close(e);
	e = open_engine_cfg(KNYTT_MODEL_ALS, 0, 0, heavy_views);
	trained_vector(e, b);
	/* the history agrees: the imported views weigh 40 there too */
	knytt__profile *u = knytt__engine_user(e, "u1", 0, &(int){ 0 });
	ck_assert_ptr_nonnull(u);
	pthread_mutex_lock(&u->mu);
	int views = 0;
	for (size_t i = 0; i < u->nh; i++)
		if (u->hist[i].type == KNYTT__T_VIEW) {
			ck_assert_float_eq_tol(u->hist[i].w, 40, 1e-4);
			views++;
		}
	pthread_mutex_unlock(&u->mu);
	knytt__engine_user_put(e, u);
	ck_assert_int_gt(views, 0);
	knytt_engine_close(e);
	double same = 0, diff = 0;
	for (int i = 0; i < 16; i++) {
		same += fabs((double)a[i] - (double)c2[i]);
		diff += fabs((double)a[i] - (double)b[i]);
	}
	ck_assert_msg(same == 0, "training is not deterministic (%g)", same);
	ck_assert_msg(diff > 1e-3, "view weight 40 trained the same model");
	remove(csv);
	cleanup();
}
END_TEST

/* A search whose log row the store cannot take (the disk is full) is
 * answered all the same: log id 0 and a warning, never an error. */
static int slog_warnings;
static void on_slog_warning(void *ctx, const char *msg)
{
	(void)ctx;
	if (strstr(msg, "search not logged"))
		slog_warnings++;
}

static void with_slog_warnings(knytt_engine *e)
{
	ck_assert_int_eq(knytt_engine_set_log(e, on_slog_warning, NULL),
			 KNYTT_OK);
}

/* The engine's store connection held by a writer for a while (st_lock,
 * no search flag): a search waits for it and borrows nothing (a borrowed
 * connection would start with a cold cache after the write). */
typedef struct st_holder {
	knytt_engine *e;
	int held; /* set once st_lock is taken */
} st_holder;

static void *hold_st_lock(void *p)
{
	st_holder *h = p;
	pthread_mutex_lock(&h->e->st_lock);
	__atomic_store_n(&h->held, 1, __ATOMIC_RELEASE);
	usleep(200 * 1000);
	pthread_mutex_unlock(&h->e->st_lock);
	return NULL;
}

/* A keyword search finding the engine's store connection used by another
 * search (here the test holds st_lock and raises the search flag) borrows
 * a connection of its own (rdpool.c) and answers the same; on the old
 * code it waited for st_lock, here for ever.  An in-memory store, which a
 * second connection cannot reach, never borrows. */
/* The engine's own connection reads through a memory map; a plain store
 * and a freshly borrowed search connection do not (SQLite drops a
 * connection's map whenever another one has written; rdpool.c maps a
 * borrowed one once commits prove rare, see below). */
START_TEST(only_the_engine_connection_is_mapped)
{
	knytt_engine *e = open_engine_opt(KNYTT_MODEL_ALS, 1, 1);
	populate(e);
	int64_t m = -1;
	knytt__pragma_i64(knytt_engine_store(e), "PRAGMA mmap_size", &m);
	ck_assert_int_gt(m, 0);
	knytt_store *st = NULL;
	ck_assert_int_eq(knytt_store_open(e->uri, &st), KNYTT_OK);
	m = -1;
	knytt__pragma_i64(st, "PRAGMA mmap_size", &m);
	ck_assert_int_eq(m, 0);
	knytt_store_close(st);
	/* a borrowed connection: another search holds the engine's */
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	pthread_mutex_lock(&e->st_lock);
	__atomic_store_n(&e->st_search, 1, __ATOMIC_RELAXED);
	knytt_engine_search(e, "espresso", NULL, 0, 10, NULL, NULL, r, NULL);
	__atomic_store_n(&e->st_search, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&e->st_lock);
	ck_assert_uint_eq(knytt__rd_count(e), 1);
	m = -1;
	knytt__pragma_i64(e->rd[0].st, "PRAGMA mmap_size", &m);
	ck_assert_int_eq(m, 0);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

/* Searches on a borrowed connection: the test holds the engine's, as
 * another search would, so the engine's writer commits nothing until
 * they are done. */
static void borrowed_searches(knytt_engine *e, int n)
{
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	pthread_mutex_lock(&e->st_lock);
	__atomic_store_n(&e->st_search, 1, __ATOMIC_RELAXED);
	for (int i = 0; i < n; i++)
		ck_assert_int_gt(knytt_engine_search(e, "espresso", NULL, 0,
						     10, NULL, NULL, r, NULL),
				 0);
	__atomic_store_n(&e->st_search, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&e->st_lock);
}

static int64_t mmap_size_of(knytt_store *st)
{
	int64_t m = -1;
	knytt__pragma_i64(st, "PRAGMA mmap_size", &m);
	return m;
}

/* A borrowed connection maps the file once its searches rarely find
 * another connection's commit in between, and stops mapping when most
 * of them do (rdpool.c read_mode): on the old code it never mapped. */
START_TEST(a_borrowed_connection_maps_while_commits_are_rare)
{
	knytt_engine *e = open_engine_opt(KNYTT_MODEL_ALS, 1, 1);
	populate(e);
	knytt_engine_flush(e);
	ck_assert_int_eq(knytt__rd_mapped(e, 0), -1); /* not open */
	/* no commit between them (their log rows wait for st_lock) */
	borrowed_searches(e, 20);
	ck_assert_uint_eq(knytt__rd_count(e), 1);
	ck_assert_int_eq(knytt__rd_mapped(e, 0), 0); /* not yet */
	ck_assert_int_eq(mmap_size_of(e->rd[0].st), 0);
	borrowed_searches(e, 130);
	ck_assert_int_eq(knytt__rd_mapped(e, 0), 1);
	ck_assert_int_gt(mmap_size_of(e->rd[0].st), 0);
	/* now a commit of another connection before every search */
	knytt_store *other = NULL;
	ck_assert_int_eq(knytt_store_open(e->uri, &other), KNYTT_OK);
	ck_assert_int_eq(knytt_store_use_tenant(other, e->tenant_id),
			 KNYTT_OK);
	int i = 0;
	for (; i < 60 && knytt__rd_mapped(e, 0) == 1; i++) {
		ck_assert_int_eq(knytt_store_search_log(other, "mugs", NULL, 0,
							1000 + i, NULL),
				 KNYTT_OK);
		borrowed_searches(e, 1);
	}
	ck_assert_int_eq(knytt__rd_mapped(e, 0), 0);
	ck_assert_int_ge(i, 2);  /* not on the first stale search */
	ck_assert_int_le(i, 40); /* but within a few dozen */
	ck_assert_int_eq(mmap_size_of(e->rd[0].st), 0);
	knytt_store_close(other);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

START_TEST(search_borrows_a_connection_when_the_store_is_busy)
{
	/* write-behind: the search log row goes to the writer thread, which
	 * waits for st_lock; a synchronous log row would wait here */
	knytt_engine *e = open_engine_opt(KNYTT_MODEL_ALS, 1, 1);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt_filter f;
	knytt_filter_init(&f);
	f.category_prefix = "kitchen";
	/* a[0..10): plain search; a[5..15): the filtered one (k = 10) */
	knytt_result a[15] = {{.struct_size = sizeof(knytt_result)}};
	knytt_result b[10] = {{.struct_size = sizeof(knytt_result)}};
	a[5].struct_size = sizeof(knytt_result); /* a + 5 is an out array */
	int na = knytt_engine_search(e, "espresso", NULL, 0, 10, NULL, NULL, a,
				     NULL);
	int nf = knytt_engine_search(e, "coffee", NULL, 0, 10, &f, NULL, a + 5,
				     NULL);
	ck_assert_int_gt(na, 0);
	ck_assert_int_gt(nf, 0);
	ck_assert_uint_eq(knytt__rd_count(e), 0); /* nobody was waiting */
	knytt_engine_flush(e);
	/* a writer holding the connection is waited for */
	st_holder h = {e, 0};
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, hold_st_lock, &h), 0);
	while (!__atomic_load_n(&h.held, __ATOMIC_ACQUIRE))
		usleep(1000);
	ck_assert_int_eq(knytt_engine_search(e, "espresso", NULL, 0, 10, NULL,
					     NULL, b, NULL),
			 na);
	pthread_join(th, NULL);
	ck_assert_uint_eq(knytt__rd_count(e), 0);
	knytt_engine_flush(e);
	/* another search holding it is not */
	pthread_mutex_lock(&e->st_lock);
	__atomic_store_n(&e->st_search, 1, __ATOMIC_RELAXED);
	int nb = knytt_engine_search(e, "espresso", NULL, 0, 10, NULL, NULL, b,
				     NULL);
	ck_assert_uint_eq(knytt__rd_count(e), 1);
	ck_assert_int_eq(nb, na);
	for (int i = 0; i < na && i < 5; i++)
		ck_assert_str_eq(a[i].ext_id, b[i].ext_id);
	/* the filter callback (lock for reading) on the borrowed one */
	nb = knytt_engine_search(e, "coffee", NULL, 0, 10, &f, NULL, b, NULL);
	ck_assert_int_eq(nb, nf);
	for (int i = 0; i < nf && i < 5; i++)
		ck_assert_str_eq(a[5 + i].ext_id, b[i].ext_id);
	ck_assert_uint_eq(knytt__rd_count(e), 1); /* reused, not reopened */
	__atomic_store_n(&e->st_search, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&e->st_lock);
	/* an item written through the engine is seen by the borrowed
	 * connection on the next search */
	knytt_item it;
	memset(&it, 0, sizeof it);
	it.struct_size = sizeof it;
	it.ext_id = "zz-1";
	it.title = "zanzibar espresso cup";
	it.category = "kitchen/coffee";
	ck_assert_int_eq(knytt_engine_item_upsert(e, &it, NULL, 0), KNYTT_OK);
	knytt_engine_flush(e);
	pthread_mutex_lock(&e->st_lock);
	__atomic_store_n(&e->st_search, 1, __ATOMIC_RELAXED);
	nb = knytt_engine_search(e, "zanzibar", NULL, 0, 10, NULL, NULL, b,
				 NULL);
	__atomic_store_n(&e->st_search, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&e->st_lock);
	ck_assert_int_ge(nb, 1);
	ck_assert_str_eq(b[0].ext_id, "zz-1");
	knytt_engine_close(e);
	cleanup();

	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_open(e, "sqlite::memory:"), KNYTT_OK);
	ck_assert_int_eq(e->rd_off, 1);
	knytt_engine_close(e);
}
END_TEST

/* A "writer" holding st_lock for @c ms, then marking @c released. */
typedef struct st_writer {
	knytt_engine *e;
	int ms;
	int held, released; /* __atomic_* */
} st_writer;

static void *write_hold(void *p)
{
	st_writer *w = p;
	pthread_mutex_lock(&w->e->st_lock);
	__atomic_store_n(&w->held, 1, __ATOMIC_RELEASE);
	usleep((useconds_t)w->ms * 1000);
	__atomic_store_n(&w->released, 1, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&w->e->st_lock);
	return NULL;
}

/* Runs a search while another thread holds st_lock as a writer would;
 * returns whether that writer had let go when the search returned. */
static int search_beside_writer(knytt_engine *e, int ms)
{
	st_writer w = {e, ms, 0, 0};
	pthread_t th;
	ck_assert_int_eq(pthread_create(&th, NULL, write_hold, &w), 0);
	while (!__atomic_load_n(&w.held, __ATOMIC_ACQUIRE))
		usleep(1000);
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	ck_assert_int_gt(knytt_engine_search(e, "espresso", NULL, 0, 10, NULL,
					     NULL, r, NULL),
			 0);
	int released = __atomic_load_n(&w.released, __ATOMIC_ACQUIRE);
	pthread_join(th, NULL);
	return released;
}

/* A thread that borrowed a connection keeps it while searches overlap
 * (rdpool.c: swapping connections between threads cost CPU), so a writer
 * on the engine's connection does not hold it up; after a second with no
 * other search it is back on the engine's connection and waits for the
 * writer, as a lone search should.  The old code waited both times. */
START_TEST(a_borrowing_thread_keeps_its_connection_while_busy)
{
	knytt_engine *e = open_engine_opt(KNYTT_MODEL_ALS, 1, 1);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	knytt_engine_flush(e);
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	/* another search holds the engine's connection: borrow */
	pthread_mutex_lock(&e->st_lock);
	__atomic_store_n(&e->st_search, 1, __ATOMIC_RELAXED);
	ck_assert_int_gt(knytt_engine_search(e, "espresso", NULL, 0, 10, NULL,
					     NULL, r, NULL),
			 0);
	__atomic_store_n(&e->st_search, 0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&e->st_lock);
	ck_assert_uint_eq(knytt__rd_count(e), 1);
	/* at once: still on the borrowed connection, the writer is not
	 * waited for (it holds st_lock for 3 s) */
	ck_assert_int_eq(search_beside_writer(e, 3000), 0);
	knytt_engine_flush(e);
	/* no other search for over a second: back on the engine's one */
	usleep(1300 * 1000);
	ck_assert_int_eq(search_beside_writer(e, 100), 1);
	ck_assert_uint_eq(knytt__rd_count(e), 1);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

START_TEST(search_answers_when_its_log_cannot_be_written)
{
	knytt_engine *e = open_engine_cfg(KNYTT_MODEL_ALS, 1, 0,
					  with_slog_warnings);
	add_items(e, 4);
	knytt_store *st = knytt_engine_store(e);
	knytt_result r[8] = {{.struct_size = sizeof(knytt_result)}};
	uint64_t lid = 0;
	ck_assert_int_gt(knytt_engine_search(e, "trail", NULL, 0, 8, NULL,
					     NULL, r, &lid),
			 0);
	ck_assert_uint_gt(lid, 0);
	/* no page may be added from now on */
	int64_t pages = -1;
	knytt__pragma_i64(st, "PRAGMA page_count", &pages);
	char sql[80];
	snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld",
		 (long long)pages);
	knytt__pragma_i64(st, sql, &pages);
	slog_warnings = 0;
	char q[400] = "";
	for (int i = 0; i < 60; i++)
		strcat(q, "trail "); /* a long query: rows fill pages fast */
	int unlogged = 0;
	for (int i = 0; i < 300 && !unlogged; i++) {
		lid = 1;
		int n = knytt_engine_search(e, q, NULL, 0, 8, NULL, NULL, r,
					    &lid);
		ck_assert_msg(n > 0, "search %d failed: %d %s", i, n,
			      knytt_errmsg());
		unlogged = lid == 0;
	}
	ck_assert_msg(unlogged, "the search log never filled the database");
	ck_assert_int_ge(slog_warnings, 1);
	/* a query that cannot be logged at all is still refused */
	ck_assert_int_eq(knytt_engine_search(e, "trail", NULL, 0, 8, NULL,
					     "bad\tuser", r, &lid),
			 KNYTT_EINVAL);
	knytt__pragma_i64(st, "PRAGMA max_page_count = 1073741823", &pages);
	ck_assert_int_gt(knytt_engine_search(e, "trail", NULL, 0, 8, NULL,
					     NULL, r, &lid),
			 0);
	ck_assert_uint_gt(lid, 0);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

START_TEST(queries_feedback_writes_and_swaps_in_parallel)
{
	knytt_engine *e = open_engine_opt(KNYTT_MODEL_ALS, 1, _i);
	populate(e);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), KNYTT_OK);
	static ccstate c;
	memset(&c, 0, sizeof c);
	c.e = e;
	const char *ms = getenv("KNYTT_STRESS_MS");
	long run_ms = ms ? atol(ms) : 2000;
	pthread_t th[5];
	void *(*role[5])(void *) = { cc_querier, cc_querier, cc_feeder,
				     cc_writer, cc_trainer };
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, role[i], &c), 0);
	struct timespec ts = { run_ms / 1000, (run_ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
	/* on a loaded machine (sanitizers, other jobs) a training may take
	 * longer than the run: go on, up to 30 times as long, until every
	 * role has progressed and a swap has landed under a query */
	struct timespec tick = { 0, 50 * 1000000L };
	long waited = 0;
	for (; waited < 29 * run_ms &&
	       !__atomic_load_n(&c.fail, __ATOMIC_ACQUIRE);
	     waited += 50) {
		if (__atomic_load_n(&c.queries, __ATOMIC_RELAXED) > 10 &&
		    __atomic_load_n(&c.events, __ATOMIC_RELAXED) > 10 &&
		    __atomic_load_n(&c.writes, __ATOMIC_RELAXED) > 3 &&
		    __atomic_load_n(&c.overlapped, __ATOMIC_RELAXED) >= 1)
			break;
		nanosleep(&tick, NULL);
	}
	__atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 5; i++)
		pthread_join(th[i], NULL);
	ck_assert_msg(!c.fail, "%s", c.why);
	/* every role made progress while the others ran */
	ck_assert_int_gt(c.queries, 10);
	ck_assert_int_gt(c.events, 10);
	ck_assert_int_gt(c.writes, 3);
	ck_assert_int_ge(c.swaps, 1);
	/* swaps landed under running queries: the case this test is for */
	ck_assert_int_ge(c.overlapped, 1);
	fprintf(stderr,
		"concurrency (async %d): %ld queries, %ld events, %ld writes, "
		"%ld swaps (%ld under a query) in %ld ms\n",
		_i, c.queries, c.events, c.writes, c.swaps, c.overlapped,
		run_ms + waited);
	knytt_engine_close(e);
	cleanup();
}
END_TEST

Suite *engine_suite(void)
{
	Suite *s = suite_create("engine");
	TCase *tc = tcase_create("planted");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, recommends_the_planted_category);
	tcase_add_test(tc, session_feedback_shifts_results);
	tcase_add_test(tc, filters_are_never_violated);
	tcase_add_test(tc, purchases_and_deleted_items_never_return);
	tcase_add_test(tc, cold_user_gets_popular_items);
	tcase_add_test(tc, similar_items_share_the_category);
	tcase_add_test(tc, hybrid_search_by_word_and_meaning);
	tcase_add_test(tc, search_borrows_a_connection_when_the_store_is_busy);
	tcase_add_test(tc, a_borrowing_thread_keeps_its_connection_while_busy);
	tcase_add_test(tc, only_the_engine_connection_is_mapped);
	tcase_add_test(tc, a_borrowed_connection_maps_while_commits_are_rare);
	tcase_add_test(tc, reopen_restores_without_retraining);
	tcase_add_test(tc, background_training_keeps_serving);
	tcase_add_test(tc, filter_init_writes_only_the_callers_struct);
	tcase_add_test(tc, bad_input_is_an_error);
	tcase_add_test(tc, older_callers_smaller_structs);
	tcase_add_test(tc, mmr_diversifies);
	tcase_add_test(tc, category_moves_reach_cached_filters);
	tcase_add_test(tc, price_and_category_scans_match_the_index);
	tcase_add_test(tc, trending_lists_follow_feedback);
	tcase_add_test(tc, settings_exclusion_tenants_and_sync);
	tcase_add_test(tc, external_vectors_without_a_model);
	tcase_add_test(tc, write_behind_feedback_reaches_the_store);
	tcase_add_test(tc, feedback_batch_all_or_nothing);
	tcase_add_test(tc, search_answers_when_its_log_cannot_be_written);
	tcase_add_test(tc, search_log_rows_share_commits_in_order);
	tcase_add_test(tc, waiting_search_log_rows_are_written);
	tcase_add_test(tc, write_behind_checks_before_queueing);
	tcase_add_test(tc, write_behind_failure_is_reported);
	tcase_add_test(tc, write_behind_events_share_commits);
	tcase_add_test(tc, sync_feedback_shares_commits);
	tcase_add_test(tc, stored_model_must_match_its_header);
	tcase_add_test(tc, exclusion_covers_the_whole_history);
	tcase_add_test(tc, store_reads_a_whole_history);
	tcase_add_test(tc, trending_is_seeded_from_every_page);
	tcase_add_test(tc, long_term_taste_reads_the_whole_history);
	tcase_add_test(tc, faded_session_keeps_the_long_term_order);
	tcase_add_test(tc, exclusion_rule_default_and_per_type);
	tcase_add_test(tc, as_of_time_replays_old_data);
	tcase_add_test(tc, future_events_are_refused);
	suite_add_tcase(s, tc);
	tc = tcase_create("versions");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, old_models_and_files_are_pruned);
	tcase_add_test(tc, index_files_are_named_by_ids_and_checked);
	tcase_add_test(tc, training_is_all_or_nothing);
	tcase_add_test(tc, snapshot_outlives_a_swap);
	tcase_add_test(tc, failed_open_leaves_only_close);
	tcase_add_test(tc, rank_fusion_by_hand);
	tcase_add_test(tc, engine_weights_reach_imported_rows);
	suite_add_tcase(s, tc);
	tc = tcase_create("concurrency");
	tcase_set_timeout(tc, 600);
	/* loop 0: synchronous feedback, 1: write-behind */
	tcase_add_loop_test(tc, queries_feedback_writes_and_swaps_in_parallel,
			    0, 2);
	suite_add_tcase(s, tc);
	tc = tcase_create("postgres");
	tcase_set_tags(tc, "postgres");
	tcase_set_timeout(tc, 600);
	tcase_add_unchecked_fixture(tc, pg_fixture, NULL);
	tcase_add_test(tc, postgres_index_is_kept_between_opens);
	tcase_add_test(tc, postgres_search_log_rows_share_commits_in_order);
	suite_add_tcase(s, tc);
	return s;
}
