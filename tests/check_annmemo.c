/*
 * check_annmemo.c -- the taste searches a profile keeps (lib/engine/
 * annmemo.c): a recommendation asked again answers from the memo, to
 * the bit as the walk does, and every change the walk would see makes
 * the next one walk again: the shopper's feedback, an item written to or
 * deleted from the index, a retrain, a filter.
 */
#include "knytt.h"
#include "../lib/internal.h"
#include "../lib/engine/engine_int.h"
#include "testutil.h"

#include <unistd.h>

#define NCAT 4
#define PER_CAT 40
#define K 10

static const char *cats[NCAT] = { "shoes", "coffee", "garden", "books" };
static const int64_t T0 = 1700000000000LL;
static char path[128];

static void rm_db(void)
{
	tu_rm_db(path);
}

static void add_item_vec(knytt_engine *e, int c, int i, const float *v,
			 uint32_t dim)
{
	char ext[32], title[64];
	knytt_item it;
	memset(&it, 0, sizeof it);
	it.struct_size = sizeof it;
	sprintf(ext, "c%d-%d", c, i);
	sprintf(title, "%s item %d", cats[c], i);
	it.ext_id = ext;
	it.title = title;
	it.category = cats[c];
	it.price = 10 + i;
	it.in_stock = 1;
	ck_assert_int_eq(knytt_engine_item_upsert(e, &it, v, dim), KNYTT_OK);
}

static void add_item(knytt_engine *e, int c, int i)
{
	add_item_vec(e, c, i, NULL, 0);
}

/* A trained shop: 160 items, 20 shoppers each mostly in one category. */
static knytt_engine *shop(void)
{
	snprintf(path, sizeof path, "/tmp/knytt-annmemo-%d.db", (int)getpid());
	rm_db();
	char uri[160];
	snprintf(uri, sizeof uri, "sqlite:%s", path);
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, 16), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_threads(e, 1), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_now(e, T0), KNYTT_OK);
	ck_assert_msg(knytt_engine_open(e, uri) == KNYTT_OK, "%s",
		      knytt_errmsg());
	for (int c = 0; c < NCAT; c++)
		for (int i = 0; i < PER_CAT; i++)
			add_item(e, c, i);
	uint64_t s = 11;
	for (int u = 0; u < 20; u++)
		for (int k = 0; k < 12; k++) {
			char user[16], ext[32];
			sprintf(user, "u%d", u);
			int c = tu_rand(&s) % 6 ? u % NCAT
						: (int)(tu_rand(&s) % NCAT);
			sprintf(ext, "c%d-%d", c, (int)(tu_rand(&s) % PER_CAT));
			ck_assert_int_eq(
				knytt_engine_feedback(e, user, ext, "view", 0,
						      T0 - 3 * 86400000LL +
							      k * 3600000LL),
				KNYTT_OK);
		}
	ck_assert_msg(knytt_engine_train(e, NULL, NULL) == KNYTT_OK, "%s",
		      knytt_errmsg());
	return e;
}

static uint64_t hits(knytt_engine *e)
{
	return __atomic_load_n(&e->memo_hits, __ATOMIC_RELAXED);
}

static uint64_t walks(knytt_engine *e)
{
	return __atomic_load_n(&e->memo_walks, __ATOMIC_RELAXED);
}

static int rec(knytt_engine *e, const char *user, const knytt_filter *f,
	       knytt_result *out)
{
	out[0].struct_size = sizeof *out;
	int n = knytt_engine_recommend(e, user, K, f, NULL, out);
	ck_assert_msg(n > 0, "recommend %s: %d %s", user, n, knytt_errmsg());
	return n;
}

static void same(const knytt_result *a, int na, const knytt_result *b,
		 int nb, const char *what)
{
	ck_assert_msg(na == nb, "%s: %d results, then %d", what, na, nb);
	for (int i = 0; i < na; i++) {
		ck_assert_msg(!strcmp(a[i].ext_id, b[i].ext_id),
			      "%s: #%d %s, then %s", what, i, a[i].ext_id,
			      b[i].ext_id);
		ck_assert_msg(a[i].score == b[i].score &&
				      a[i].reason == b[i].reason,
			      "%s: #%d score %.9g, then %.9g", what, i,
			      a[i].score, b[i].score);
	}
}

/* Forgets what u keeps, so the next recommendation walks. */
static void forget(knytt_engine *e, const char *user)
{
	int rc;
	knytt__profile *u = knytt__engine_user(e, user, 0, &rc);
	ck_assert_ptr_nonnull(u);
	pthread_mutex_lock(&u->mu);
	u->memo[0].valid = u->memo[1].valid = 0;
	pthread_mutex_unlock(&u->mu);
	knytt__engine_user_put(e, u);
}

START_TEST(asked_again_answers_from_the_memo)
{
	knytt_engine *e = shop();
	knytt_result a[K], b[K], c[K];
	for (int u = 0; u < 20; u++) {
		char user[16];
		sprintf(user, "u%d", u);
		uint64_t h0 = hits(e), w0 = walks(e);
		int na = rec(e, user, NULL, a);
		ck_assert_uint_gt(walks(e), w0);
		ck_assert_uint_eq(hits(e), h0);
		w0 = walks(e);
		int nb = rec(e, user, NULL, b);
		ck_assert_uint_eq(walks(e), w0); /* no walk: the memo */
		ck_assert_uint_gt(hits(e), h0);
		same(a, na, b, nb, "memo");
		/* and the walk, asked again from scratch, agrees */
		forget(e, user);
		int nc = rec(e, user, NULL, c);
		ck_assert_uint_gt(walks(e), w0);
		same(a, na, c, nc, "walked again");
	}
	knytt_engine_close(e);
	rm_db();
}
END_TEST

/* Each change in turn: the next recommendation walks, and answers as a
 * walk from scratch does. */
START_TEST(every_change_walks_again)
{
	knytt_engine *e = shop();
	knytt_result a[K], b[K];
	const char *user = "u3";
	char gone[KNYTT_STORE_MAX_ID + 1] = "";
	rec(e, user, NULL, a);
	for (int step = 0; step < 5; step++) {
		uint64_t w0 = walks(e), h0 = hits(e);
		knytt_filter f, *fp = NULL;
		switch (step) {
		case 0: /* the shopper's own event */
			ck_assert_int_eq(knytt_engine_feedback(
						 e, user, "c1-5", "purchase", 0,
						 T0 - 1000),
					 KNYTT_OK);
			break;
		case 1: { /* an item written to the index (its own vector) */
			float v[16];
			for (int j = 0; j < 16; j++)
				v[j] = (float)(j % 3) - 1;
			add_item_vec(e, 2, PER_CAT, v, 16);
			break;
		}
		case 2: { /* an item of the answer deleted */
			int n = rec(e, user, NULL, a);
			ck_assert_int_gt(n, 0);
			w0 = walks(e);
			h0 = hits(e);
			snprintf(gone, sizeof gone, "%s", a[0].ext_id);
			ck_assert_int_eq(knytt_engine_item_delete(e, gone),
					 KNYTT_OK);
			break;
		}
		case 3: /* a new model */
			ck_assert_int_eq(knytt_engine_train(e, NULL, NULL),
					 KNYTT_OK);
			break;
		case 4: /* a filter (the index's, not a scan): never kept */
			knytt_filter_init(&f);
			f.in_stock_only = 1;
			fp = &f;
			break;
		}
		int na = rec(e, user, fp, a);
		ck_assert_msg((step == 4 || walks(e) > w0) && hits(e) == h0,
			      "step %d: answered from the memo", step);
		if (step == 2)
			for (int i = 0; i < na; i++)
				ck_assert_str_ne(a[i].ext_id, gone);
		forget(e, user);
		int nb = rec(e, user, fp, b);
		same(a, na, b, nb, "after a change");
		if (step == 4) { /* asked again, still not from the memo */
			rec(e, user, fp, b);
			ck_assert_uint_eq(hits(e), h0);
		}
	}
	knytt_engine_close(e);
	rm_db();
}
END_TEST

/* The memo's bytes are counted in the profile's. */
START_TEST(memo_bytes_are_accounted)
{
	knytt_engine *e = shop();
	knytt_result a[K];
	int rc;
	knytt__profile *u = knytt__engine_user(e, "u5", 0, &rc);
	ck_assert_ptr_nonnull(u);
	pthread_mutex_lock(&u->mu);
	size_t before = knytt__profile_bytes(u, e->dim);
	pthread_mutex_unlock(&u->mu);
	knytt__engine_user_put(e, u);
	rec(e, "u5", NULL, a);
	u = knytt__engine_user(e, "u5", 0, &rc);
	pthread_mutex_lock(&u->mu);
	ck_assert_int_eq(u->memo[0].valid, 1);
	ck_assert_uint_ge(knytt__profile_bytes(u, e->dim),
			  before + u->memo[0].cap * 12);
	/* accounted with the memo, not only as it was before */
	ck_assert_uint_ge(u->bytes, knytt__profile_bytes(u, e->dim));
	pthread_mutex_unlock(&u->mu);
	knytt__engine_user_put(e, u);
	knytt_engine_close(e);
	rm_db();
}
END_TEST

Suite *annmemo_suite(void)
{
	Suite *s = suite_create("annmemo");
	TCase *tc = tcase_create("memo");
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, asked_again_answers_from_the_memo);
	tcase_add_test(tc, every_change_walks_again);
	tcase_add_test(tc, memo_bytes_are_accounted);
	suite_add_tcase(s, tc);
	return s;
}
