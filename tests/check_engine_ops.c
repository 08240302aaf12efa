/*
 * check_engine_ops.c -- the engine in production (issue 16): the
 * evaluation of each trained model and the swap gate
 * (knytt_engine_set_train_eval, knytt_engine_train_eval), and what
 * replicas need (knytt_engine_feedback_apply, knytt_engine_reload,
 * knytt_engine_feedback_pending).  Two engines on one SQLite file stand
 * for two processes on one database.
 */
#include "testutil.h"

#include <knytt.h>
#include <unistd.h>

#define NITEMS 60
#define NUSERS 90
#define CLUSTER 20
#define T0 1700000000000LL

static char dir[64], uri[128];

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/knytt-engops-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(uri, sizeof uri, "sqlite:%s/k.db", dir);
}

static void teardown(void)
{
	tu_rm_dir(dir);
}

static knytt_engine *open_engine(void)
{
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), 0);
	ck_assert_int_eq(knytt_engine_set_dim(e, 16), 0);
	ck_assert_int_eq(knytt_engine_set_threads(e, 1), 0);
	ck_assert_int_eq(knytt_engine_set_now(e, T0 + 86400000LL), 0);
	ck_assert_int_eq(knytt_engine_open(e, uri), 0);
	return e;
}

static void items(knytt_engine *e)
{
	for (int i = 0; i < NITEMS; i++) {
		char id[16], cat[16];
		snprintf(id, sizeof id, "i%d", i);
		snprintf(cat, sizeof cat, "c%d", i / CLUSTER);
		knytt_item it;
		memset(&it, 0, sizeof it);
		it.struct_size = sizeof it;
		it.ext_id = id;
		it.title = id;
		it.category = cat;
		it.price = 10;
		it.in_stock = 1;
		ck_assert_int_eq(knytt_engine_item_upsert(e, &it, NULL, 0), 0);
	}
}

/* Each shopper buys @p n items: of its own cluster (the model can learn
 * that), or anywhere (noise: the last item is then a coin toss). */
static void events(knytt_engine *e, int n, int noise, int64_t t,
		   uint64_t *rng)
{
	for (int k = 0; k < n; k++)
		for (int u = 0; u < NUSERS; u++) {
			char user[16], item[16];
			int c = u % 3;
			int i = noise ? (int)(tu_rand(rng) % NITEMS)
				      : c * CLUSTER +
						(int)(tu_rand(rng) % CLUSTER);
			snprintf(user, sizeof user, "u%d", u);
			snprintf(item, sizeof item, "i%d", i);
			ck_assert_int_eq(knytt_engine_feedback(
						 e, user, item, "purchase", 0,
						 t + (k * NUSERS + u) * 1000LL),
					 0);
		}
}

static knytt_train_eval eval_of(knytt_engine *e, int serving)
{
	knytt_train_eval ev;
	memset(&ev, 0, sizeof ev);
	ev.struct_size = sizeof ev;
	ck_assert_int_eq(knytt_engine_train_eval(e, serving, &ev), 0);
	return ev;
}

static int64_t serving(knytt_engine *e)
{
	knytt_train_status ts = {.struct_size = sizeof ts};
	ck_assert_int_eq(knytt_engine_train_status(e, &ts), 0);
	return ts.model_version;
}

START_TEST(train_eval_gate_holds_back_a_worse_model)
{
	uint64_t rng = 7;
	knytt_engine *e = open_engine();
	items(e);
	events(e, 8, 0, T0, &rng);
	ck_assert_int_eq(knytt_engine_set_train_eval(e, 60, 0.05), 0);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), 0);
	knytt_train_eval a = eval_of(e, 0);
	ck_assert_int_eq(a.version, 1);
	ck_assert_int_eq(a.promoted, 1);
	ck_assert_uint_eq(a.users, 60);
	ck_assert_uint_eq(a.negatives, NITEMS / 2);
	/* chance is about 10/31 for HR@10: clusters are learnt */
	ck_assert_msg(a.hr > 0.45 && a.ndcg > 0.25, "hr %g ndcg %g", a.hr,
		      a.ndcg);
	ck_assert_int_eq(a.compared_version, 0);
	ck_assert_int_eq(eval_of(e, 1).version, 1);
	ck_assert_int_eq(serving(e), 1);

	/* later events anywhere: each shopper's last item is noise, so the
	 * next model scores near chance on the held-out items */
	events(e, 8, 1, T0 + 3600000LL, &rng);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), 0);
	knytt_train_eval b = eval_of(e, 0);
	ck_assert_int_eq(b.version, 2);
	ck_assert_msg(b.ndcg < a.ndcg - 0.05, "ndcg %g then %g", a.ndcg,
		      b.ndcg);
	ck_assert_int_eq(b.promoted, 0);
	ck_assert_int_eq(b.compared_version, 1);
	ck_assert(fabs(b.compared_ndcg - a.ndcg) < 1e-5);
	ck_assert_int_eq(serving(e), 1); /* kept, not swapped in */
	ck_assert_int_eq(eval_of(e, 1).version, 1);

	/* stored, marked, and not what a new engine serves */
	char *meta = NULL;
	int64_t got = 0;
	ck_assert_int_eq(knytt_store_model_get(knytt_engine_store(e),
					       "engine-model", 0, NULL, NULL,
					       &meta, &got, NULL),
			 0);
	ck_assert_int_eq(got, 2);
	ck_assert_ptr_nonnull(strstr(meta, "\"promoted\":false"));
	ck_assert_ptr_nonnull(strstr(meta, "\"ndcg10\":"));
	knytt_free(meta);
	knytt_engine *e2 = open_engine();
	ck_assert_int_eq(serving(e2), 1);
	ck_assert(fabs(eval_of(e2, 1).ndcg - a.ndcg) < 1e-5);
	ck_assert_int_eq(knytt_engine_reload(e2), 0); /* 2 is held back */
	knytt_engine_close(e2);

	/* held-back versions never push the serving one out: keep 3 */
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), 0);
	ck_assert_int_eq(eval_of(e, 0).promoted, 0);
	ck_assert_int_eq(knytt_store_model_get(knytt_engine_store(e),
					       "engine-model", 1, NULL, NULL,
					       NULL, &got, NULL),
			 0);

	/* a negative margin swaps every model in */
	ck_assert_int_eq(knytt_engine_set_train_eval(e, 60, -1), 0);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), 0);
	ck_assert_int_eq(eval_of(e, 0).promoted, 1);
	ck_assert_int_eq(serving(e), 6);
	knytt_engine_close(e);
}
END_TEST

/* The two-tower model is evaluated through its item tower. */
START_TEST(train_eval_twotower)
{
	uint64_t rng = 3;
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), 0);
	ck_assert_int_eq(knytt_engine_set_model(e, KNYTT_MODEL_TWOTOWER), 0);
	ck_assert_int_eq(knytt_engine_set_dim(e, 16), 0);
	ck_assert_int_eq(knytt_engine_set_twotower(e, 3), 0);
	ck_assert_int_eq(knytt_engine_set_threads(e, 1), 0);
	ck_assert_int_eq(knytt_engine_set_now(e, T0 + 86400000LL), 0);
	ck_assert_int_eq(knytt_engine_open(e, uri), 0);
	items(e);
	events(e, 6, 0, T0, &rng);
	ck_assert_int_eq(knytt_engine_set_train_eval(e, 30, 0.05), 0);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), 0);
	knytt_train_eval ev = eval_of(e, 0);
	ck_assert_uint_eq(ev.users, 30);
	ck_assert_int_eq(ev.promoted, 1);
	ck_assert_msg(ev.ndcg > 0 && ev.ndcg <= 1 && ev.hr >= ev.ndcg,
		      "hr %g ndcg %g", ev.hr, ev.ndcg);
	ck_assert_int_eq(serving(e), 1);
	knytt_engine_close(e);
}
END_TEST

/* A LightGCN model is evaluated through its propagated embeddings, and
 * gated like the others (it used to be stored unevaluated). */
START_TEST(train_eval_lightgcn)
{
	uint64_t rng = 5;
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), 0);
	ck_assert_int_eq(knytt_engine_set_model(e, KNYTT_MODEL_LIGHTGCN), 0);
	ck_assert_int_eq(knytt_engine_set_dim(e, 16), 0);
	ck_assert_int_eq(knytt_engine_set_threads(e, 1), 0);
	ck_assert_int_eq(knytt_engine_set_now(e, T0 + 86400000LL), 0);
	ck_assert_int_eq(knytt_engine_open(e, uri), 0);
	items(e);
	events(e, 8, 0, T0, &rng);
	ck_assert_int_eq(knytt_engine_set_train_eval(e, 60, 0.05), 0);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), 0);
	knytt_train_eval a = eval_of(e, 0);
	ck_assert_uint_eq(a.users, 60);
	ck_assert_int_eq(a.promoted, 1);
	/* chance is about 10/31 for HR@10: clusters are learnt */
	ck_assert_msg(a.hr > 0.45 && a.ndcg > 0.25, "hr %g ndcg %g", a.hr,
		      a.ndcg);
	/* noise as each shopper's last items: held back */
	events(e, 8, 1, T0 + 3600000LL, &rng);
	ck_assert_int_eq(knytt_engine_train(e, NULL, NULL), 0);
	knytt_train_eval b = eval_of(e, 0);
	ck_assert_msg(b.ndcg < a.ndcg - 0.05, "ndcg %g then %g", a.ndcg,
		      b.ndcg);
	ck_assert_int_eq(b.promoted, 0);
	ck_assert_int_eq(serving(e), a.version);
	knytt_engine_close(e);
}
END_TEST

START_TEST(train_eval_bad_arguments)
{
	knytt_engine *e = open_engine();
	ck_assert_int_eq(knytt_engine_set_train_eval(NULL, 1, 0), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_train_eval(e, 1, NAN), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "margin"));
	ck_assert_int_eq(knytt_engine_set_train_eval(e, 2000000, 0),
			 KNYTT_EINVAL);
	knytt_train_eval ev;
	memset(&ev, 0, sizeof ev);
	ck_assert_int_eq(knytt_engine_train_eval(e, 0, &ev), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "struct_size"));
	ck_assert_int_eq(knytt_engine_train_eval(e, 0, NULL), KNYTT_EINVAL);
	/* never trained: zeros */
	ev.struct_size = sizeof ev;
	ck_assert_int_eq(knytt_engine_train_eval(e, 1, &ev), 0);
	ck_assert_int_eq(ev.version, 0);
	ck_assert_uint_eq(ev.users, 0);
	ck_assert_int_eq(knytt_engine_feedback_pending(NULL), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_reload(NULL), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_feedback_apply(e, "u", "i0", "view", 0,
						     0),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_feedback_apply(e, "u", "nope", "view",
						     0, T0),
			 KNYTT_ENOTFOUND);
	knytt_engine_close(e);
}
END_TEST

/* Whether @p item is among @p user's recommendations (all items). */
static int recommended(knytt_engine *e, const char *user, const char *item)
{
	knytt_result res[NITEMS] = {{.struct_size = sizeof(knytt_result)}};
	int n = knytt_engine_recommend(e, user, NITEMS, NULL, NULL, res);
	ck_assert_int_ge(n, 0);
	for (int i = 0; i < n; i++)
		if (!strcmp(res[i].ext_id, item))
			return 1;
	return 0;
}

START_TEST(replica_reload_and_feedback_apply)
{
	uint64_t rng = 11;
	knytt_engine *a = open_engine();
	items(a);
	events(a, 4, 0, T0, &rng);
	knytt_engine *b = open_engine(); /* the other replica */
	ck_assert_int_eq(serving(b), 0);
	ck_assert_int_eq(knytt_engine_reload(b), 0); /* nothing yet */
	ck_assert_int_eq(knytt_engine_train(a, NULL, NULL), 0);
	ck_assert_int_eq(serving(b), 0);
	ck_assert_int_eq(knytt_engine_reload(b), 1);
	ck_assert_int_eq(serving(b), 1);
	ck_assert_int_eq(knytt_engine_reload(b), 0);

	/* u0 is loaded on b; a stores an event b never saw */
	const char *x = NULL;
	for (int i = 0; i < CLUSTER && !x; i++) {
		static char buf[16];
		snprintf(buf, sizeof buf, "i%d", i);
		if (recommended(b, "u0", buf))
			x = buf;
	}
	ck_assert_ptr_nonnull(x);
	ck_assert_int_eq(knytt_engine_feedback(a, "u0", x, "purchase", 0,
					       T0 + 7200000LL),
			 0);
	ck_assert(recommended(b, "u0", x)); /* b does not know yet */
	ck_assert_int_eq(knytt_engine_feedback_apply(b, "u0", x, "purchase",
						     0, T0 + 7200000LL),
			 1);
	ck_assert(!recommended(b, "u0", x));
	/* replayed (a catch-up): applied once */
	ck_assert_int_eq(knytt_engine_feedback_apply(b, "u0", x, "purchase",
						     0, T0 + 7200000LL),
			 0);
	/* a shopper b has not loaded: counters only, the history comes
	 * from the store on first use */
	ck_assert_int_eq(knytt_engine_feedback(a, "u1", x, "view", 0,
					       T0 + 7200000LL),
			 0);
	ck_assert_int_eq(knytt_engine_feedback_apply(b, "u1", x, "view", 0,
						     T0 + 7200000LL),
			 1);
	ck_assert(!recommended(b, "u1", x));
	ck_assert_int_eq(knytt_engine_feedback_pending(b), 0);

	/* notifications lost: b compares its loaded shoppers with the
	 * store, whatever the events' times (this one is dated a day
	 * before the others) */
	const char *y = NULL;
	for (int i = 0; i < CLUSTER && !y; i++) {
		static char buf2[16];
		snprintf(buf2, sizeof buf2, "i%d", i);
		if (strcmp(buf2, x) && recommended(b, "u0", buf2))
			y = buf2;
	}
	ck_assert_ptr_nonnull(y);
	ck_assert_int_eq(knytt_engine_feedback(a, "u0", y, "click", 0,
					       T0 - 86400000LL),
			 0);
	ck_assert(recommended(b, "u0", y));
	ck_assert_int_eq(knytt_engine_refresh_users(b), 1);
	ck_assert(!recommended(b, "u0", y));
	ck_assert_int_eq(knytt_engine_refresh_users(b), 0);
	ck_assert_int_eq(knytt_engine_refresh_users(NULL), KNYTT_EINVAL);
	knytt_engine_close(b);
	knytt_engine_close(a);
}
END_TEST

START_TEST(feedback_pending_counts_the_write_behind_queue)
{
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), 0);
	ck_assert_int_eq(knytt_engine_set_feedback_async(e, 1), 0);
	ck_assert_int_eq(knytt_engine_open(e, uri), 0);
	items(e);
	int64_t most = 0;
	for (int i = 0; i < 2000; i++) {
		char user[16];
		snprintf(user, sizeof user, "p%d", i % 50);
		ck_assert_int_eq(knytt_engine_feedback(e, user, "i1", "view",
						       0, 0),
				 0);
		int64_t n = knytt_engine_feedback_pending(e);
		ck_assert_int_ge(n, 0);
		if (n > most)
			most = n;
	}
	/* the writer commits one event per transaction: it falls behind */
	ck_assert_int_gt(most, 0);
	ck_assert_int_eq(knytt_engine_flush(e), 0);
	ck_assert_int_eq(knytt_engine_feedback_pending(e), 0);
	knytt_engine_close(e);
}
END_TEST

Suite *engine_ops_suite(void)
{
	Suite *s = suite_create("engine_ops");
	TCase *tc = tcase_create("eval");
	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, train_eval_gate_holds_back_a_worse_model);
	tcase_add_test(tc, train_eval_twotower);
	tcase_add_test(tc, train_eval_lightgcn);
	tcase_add_test(tc, train_eval_bad_arguments);
	tcase_add_test(tc, replica_reload_and_feedback_apply);
	tcase_add_test(tc, feedback_pending_counts_the_write_behind_queue);
	suite_add_tcase(s, tc);
	return s;
}
