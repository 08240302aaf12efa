/*
 * check_tune.c -- automatic tuning (lib/model/tune.c) and the rank blend
 * with recent popularity (lib/model/blend.c).
 */
#include "../lib/engine/engine_int.h"
#include "../lib/model/blend.h"
#include "../lib/model/tune.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"

/* ---- the blend ---- */

START_TEST(blend_weight_applied)
{
	uint64_t a[] = {1, 2, 3, 4}, b[] = {9, 8, 7, 6}, out[8];
	unsigned char fb[8];
	/* w = 0: the personal list; w = 1: the popular one */
	ck_assert_uint_eq(knytt__blend_fuse(a, 4, b, 4, 0, 4, out, NULL, fb),
			  4);
	for (int i = 0; i < 4; i++)
		ck_assert_uint_eq(out[i], a[i]);
	ck_assert_uint_eq(knytt__blend_fuse(a, 4, b, 4, 1, 4, out, NULL, fb),
			  4);
	for (int i = 0; i < 4; i++) {
		ck_assert_uint_eq(out[i], b[i]);
		ck_assert_int_eq(fb[i], 1);
	}
	/* w = 0.5 and C = 1: the lists interleave, personal first on ties */
	ck_assert_uint_eq(knytt__blend_fuse(a, 4, b, 4, 0.5, 8, out, NULL, fb),
			  8);
	uint64_t want[] = {1, 9, 2, 8, 3, 7, 4, 6};
	for (int i = 0; i < 8; i++)
		ck_assert_uint_eq(out[i], want[i]);
	/* an item on both lists adds up and goes first */
	uint64_t c[] = {3, 9};
	ck_assert_uint_eq(knytt__blend_fuse(a, 4, c, 2, 0.5, 1, out, NULL, fb),
			  1);
	ck_assert_uint_eq(out[0], 3);
}
END_TEST

/* ---- tuning ---- */

/*
 * A synthetic shop over 60 days: 200 users in 4 taste groups of 50
 * items each (200 items).  When @p recency is set, what everyone takes
 * on a day is drawn mostly from the 10 items "in fashion" that day (a
 * window that moves through the catalog): recent popularity predicts
 * the next days and taste hardly does.  Otherwise every user takes
 * items of his own group only, at random: taste predicts, recent
 * popularity does not.
 */
static knytt__rec *shop(int recency, size_t *n)
{
	size_t cap = 200 * 60, m = 0;
	knytt__rec *r = malloc(cap * sizeof *r);
	uint64_t s = 12345;
	for (int day = 0; day < 60; day++)
		for (uint32_t u = 0; u < 200; u++) {
			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			uint32_t x = (uint32_t)(s >> 33);
			uint32_t item;
			if (recency && x % 10 < 9)
				item = (uint32_t)(day * 3 + x / 10 % 10) % 200;
			else
				item = (u % 4) * 50 + x / 100 % 50;
			r[m++] = (knytt__rec){.user = u, .item = item, .w = 1,
					      .time = (int64_t)day * 86400 +
						      (x % 86400)};
		}
	*n = m;
	return r;
}

static knytt__tune_in shop_in(const knytt__rec *r, size_t n)
{
	knytt__tune_in in = {.recs = r, .n = n, .nusers = 200, .nitems = 200,
			     .day = 86400, .npop = 3, .pop_window = 28 * 86400,
			     .threads = 1, .no_lightgcn = 1,
			     .pop_hl = {86400, 604800, 1209600},
			     .base = {.kind = KNYTT_MODEL_ALS, .dim = 8,
				      .reg = 1, .alpha = 1, .iters = 5}};
	return in;
}

START_TEST(tune_picks_recent_popularity)
{
	size_t n;
	knytt__rec *r = shop(1, &n);
	knytt__tune_in in = shop_in(r, n);
	in.budget = 1000; /* every candidate: the choice, not the clock */
	knytt__tune_out o;
	ck_assert_msg(knytt__tune(&in, &o) == KNYTT_OK, "%s", knytt_errmsg());
	/* fashion moves daily: the blend leans on the 1-day list */
	ck_assert_msg(o.best.blend >= 0.5f, "blend %g", o.best.blend);
	ck_assert_int_eq(o.best.pop, 0);
	ck_assert(o.ndcg > o.base_ndcg + 0.05);
	ck_assert(o.ndcg >= o.pop_ndcg[0] - 1e-9);
	ck_assert_uint_eq(o.tried, 7);
	ck_assert_int_eq(o.cut_short, 0);
	free(r);
}
END_TEST

START_TEST(tune_picks_taste)
{
	size_t n;
	knytt__rec *r = shop(0, &n);
	knytt__tune_in in = shop_in(r, n);
	in.budget = 1000;
	knytt__tune_out o;
	ck_assert_msg(knytt__tune(&in, &o) == KNYTT_OK, "%s", knytt_errmsg());
	/* popularity knows nothing of the groups: the personal list wins */
	ck_assert_msg(o.best.blend <= 0.3f, "blend %g", o.best.blend);
	for (int h = 0; h < 3; h++)
		ck_assert(o.ndcg > o.pop_ndcg[h] + 0.05);
	ck_assert(o.ndcg >= o.base_ndcg);
	free(r);
}
END_TEST

START_TEST(tune_budget_respected)
{
	size_t n;
	knytt__rec *r = shop(0, &n);
	knytt__tune_in in = shop_in(r, n);
	/* a budget of 2 fits: the fixed settings and the refit only */
	in.budget = 2;
	knytt__tune_out o;
	ck_assert_msg(knytt__tune(&in, &o) == KNYTT_OK, "%s", knytt_errmsg());
	ck_assert_uint_eq(o.tried, 1);
	ck_assert_int_eq(o.cut_short, 1);
	/* the six candidates cost what the fixed settings do (ALS of the
	 * same size), the refit about 1.1 of it (the validation period
	 * holds 10% of the events): budget 4 leaves room for one
	 * candidate, 5 for two, 10 for all six */
	static const struct {
		double budget;
		unsigned tried;
	} want[] = {{4, 2}, {5, 3}, {0, 7}};
	for (int j = 0; j < 3; j++) {
		in.budget = want[j].budget;
		ck_assert_int_eq(knytt__tune(&in, &o), KNYTT_OK);
		ck_assert_uint_eq(o.tried, want[j].tried);
		ck_assert_int_eq(o.cut_short, want[j].tried < 7);
		/* counted in units, not seconds: within the budget */
		double b = want[j].budget > 0 ? want[j].budget : 10;
		ck_assert_double_eq_tol(o.budget_units, b * o.base_units,
					1e-6 * o.budget_units);
		ck_assert_msg(o.units <= o.budget_units,
			      "%g units against a budget of %g", o.units,
			      o.budget_units);
		ck_assert(o.units >= o.tried * o.base_units);
	}
	free(r);
}
END_TEST

/* A machine that is slow while tuning: each candidate is followed by a
 * pause (the progress callback sleeps), as when other jobs take the
 * cores.  The search was once limited by seconds, and then tried fewer
 * candidates; counted in work units it does the same on a slow
 * machine as on a fast one. */
static int slow_cb(void *ctx, const knytt_progress *p)
{
	(void)p;
	int *calls = ctx;
	++*calls;
	struct timespec ts = {0, 150 * 1000 * 1000};
	nanosleep(&ts, NULL);
	return 0;
}

static void same_out(const knytt__tune_out *a, const knytt__tune_out *b)
{
	ck_assert_uint_eq(a->tried, b->tried);
	ck_assert_int_eq(a->cut_short, b->cut_short);
	ck_assert_int_eq(a->best.kind, b->best.kind);
	ck_assert_float_eq(a->best.reg, b->best.reg);
	ck_assert_float_eq(a->best.alpha, b->best.alpha);
	ck_assert_uint_eq(a->best.iters, b->best.iters);
	ck_assert_double_eq(a->best.hist_days, b->best.hist_days);
	ck_assert_float_eq(a->best.blend, b->best.blend);
	ck_assert_int_eq(a->best.pop, b->best.pop);
	ck_assert_double_eq(a->ndcg, b->ndcg);
	ck_assert_double_eq(a->recall, b->recall);
	ck_assert_double_eq(a->base_ndcg, b->base_ndcg);
}

START_TEST(tune_same_when_slow)
{
	size_t n;
	knytt__rec *r = shop(1, &n);
	knytt__tune_in in = shop_in(r, n);
	/* a budget that cuts the search short: the clock would decide */
	in.budget = 5;
	knytt__tune_out fast, slow;
	ck_assert_msg(knytt__tune(&in, &fast) == KNYTT_OK, "%s",
		      knytt_errmsg());
	ck_assert_uint_eq(fast.tried, 3);
	ck_assert_int_eq(fast.cut_short, 1);
	int calls = 0;
	in.progress = slow_cb;
	in.ctx = &calls;
	ck_assert_msg(knytt__tune(&in, &slow) == KNYTT_OK, "%s",
		      knytt_errmsg());
	ck_assert_int_eq(calls, (int)slow.tried);
	same_out(&fast, &slow);
	/* the pauses show in the seconds, which are only reported */
	ck_assert(slow.seconds >= 0.15 * slow.tried);
	/* LightGCN a candidate too: its epochs are fixed before it runs
	 * (a budget of 30 leaves room for a few of its 40), the same on a
	 * slow machine */
	in.budget = 30;
	in.no_lightgcn = 0;
	in.progress = NULL;
	ck_assert_int_eq(knytt__tune(&in, &fast), KNYTT_OK);
	ck_assert_uint_eq(fast.tried, 8);
	ck_assert_int_eq(fast.cut_short, 1);
	in.progress = slow_cb;
	ck_assert_int_eq(knytt__tune(&in, &slow), KNYTT_OK);
	same_out(&fast, &slow);
	free(r);
}
END_TEST

/* The cost model (fitcost.c) follows the loops: linear in iterations,
 * blind to reg, alpha and decay, LightGCN's epochs growing with the
 * square of the pairs in part (every batch propagates through the
 * graph). */
START_TEST(fit_units_shape)
{
	knytt__tune_cfg a = {.kind = KNYTT_MODEL_ALS, .dim = 64, .reg = 1,
			     .alpha = 1, .iters = 15};
	double u = knytt__fit_units(&a, 9e4, 943, 1682);
	ck_assert(u > 0);
	knytt__tune_cfg b = a;
	b.reg = 100;
	b.alpha = 16;
	b.hist_days = 30;
	ck_assert_double_eq(knytt__fit_units(&b, 9e4, 943, 1682), u);
	b.iters = 30;
	ck_assert_double_eq_tol(knytt__fit_units(&b, 9e4, 943, 1682), 2 * u,
				1e-9 * u);
	/* ALS: more pairs, more work, at most in proportion */
	double u2 = knytt__fit_units(&a, 18e4, 943, 1682);
	ck_assert(u2 > u && u2 <= 2 * u);
	knytt__tune_cfg g = {.kind = KNYTT_MODEL_LIGHTGCN, .dim = 64,
			     .layers = 2, .batch = 4096, .iters = 1};
	double g1 = knytt__fit_units(&g, 9e4, 943, 1682);
	g.iters = 40;
	ck_assert_double_eq_tol(knytt__fit_units(&g, 9e4, 943, 1682),
				40 * g1, 1e-9 * g1);
	g.iters = 1;
	ck_assert(knytt__fit_units(&g, 18e4, 943, 1682) > 2.5 * g1);
	/* measured on ML-100K: an epoch of LightGCN's candidate takes
	 * about two whole ALS fits of 15 iterations (0.112 s of CPU
	 * against 0.056 s) */
	ck_assert(g1 > u && g1 < 3 * u);
}
END_TEST

START_TEST(tune_bad_input)
{
	knytt__tune_out o;
	knytt__rec r[2] = {{.user = 0, .item = 0, .w = 1, .time = 5},
			   {.user = 0, .item = 1, .w = 1, .time = 5}};
	knytt__tune_in in = shop_in(r, 2);
	in.nusers = 1;
	in.nitems = 2;
	/* every interaction at one time: nothing precedes the period */
	ck_assert_int_eq(knytt__tune(&in, &o), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "no period"));
	in.npop = 0;
	ck_assert_int_eq(knytt__tune(&in, &o), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "npop"));
	ck_assert_int_eq(knytt__tune(NULL, &o), KNYTT_EINVAL);
}
END_TEST


/* ---- windowed recent popularity ---- */

/* The tuner's windowed list (infinite half-life): the confidence of the
 * events in [cut - window, cut), nothing else. */
START_TEST(tune_window_list_counts)
{
	const int64_t D = 86400;
	knytt__rec r[] = {
		{.item = 0, .w = 1, .time = 10 * D - 1},  /* before: out */
		{.item = 0, .w = 1, .time = 17 * D - 1},  /* before: out */
		{.item = 1, .w = 1, .time = 17 * D},      /* first in */
		{.item = 1, .w = 2, .time = 19 * D},
		{.item = 2, .w = 1, .time = 20 * D - 1},  /* last in */
		{.item = 2, .w = 5, .time = 20 * D},      /* the cut: out */
		{.item = 3, .w = 1, .time = 18 * D},
		{.item = 3, .w = 1, .time = 18 * D + 5},
		{.item = 3, .w = 1, .time = 19 * D},
	};
	uint32_t order[5];
	/* window 3 days before the cut at day 20 */
	ck_assert_uint_eq(knytt__tune_poplist(r, 9, 5, 20 * D, 3 * D,
					      INFINITY, order),
			  3);
	ck_assert_uint_eq(order[0], 1); /* 3 (1 + 2): ties by id */
	ck_assert_uint_eq(order[1], 3); /* 3 */
	ck_assert_uint_eq(order[2], 2); /* 1 */
}
END_TEST

/* The engine's windowed counts (recentwin.c) on hand-made events:
 * exactly the events at or after now - window, as now moves, as late
 * events arrive out of order, and as the window changes. */
START_TEST(engine_window_counts)
{
	const int64_t D = 86400000, T = 100 * D;
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	/* an engine not set to tune with windows keeps no events */
	knytt__win_add(e, 0, 1, T - D, T);
	ck_assert_uint_eq(e->win.n, 0);
	ck_assert_int_eq(knytt_engine_set_tune_windows(e, 1), KNYTT_OK);
	knytt__win_add(e, 0, 1, T - 5 * D, T);     /* out of a 3-day window */
	knytt__win_add(e, 1, 1, T - 3 * D, T);     /* on its edge: in */
	knytt__win_add(e, 2, 2, T - D, T);
	knytt__win_add(e, 3, 1, T - 3 * D - 1, T); /* late, 1 ms out */
	knytt__win_add(e, 4, 1, T - 40 * D, T);    /* beyond four weeks */
	const uint32_t *rows;
	const int64_t *cnt;
	size_t n = knytt__win_lock(e, 3 * D, T, &rows, &cnt);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(rows[0], 2);
	ck_assert_uint_eq(rows[1], 1);
	ck_assert_double_eq(knytt__win_score(cnt[2]), 2);
	ck_assert_double_eq(knytt__win_score(cnt[1]), 1);
	ck_assert_int_eq(cnt[0], 0);
	ck_assert_int_eq(cnt[3], 0);
	knytt__win_unlock(e);
	/* a day later row 1 has left; a late event of row 0 inside the
	 * window is counted where it belongs */
	knytt__win_add(e, 0, 3, T - D / 2, T + D);
	n = knytt__win_lock(e, 3 * D, T + D, &rows, &cnt);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(rows[0], 0);
	ck_assert_uint_eq(rows[1], 2);
	ck_assert_int_eq(cnt[1], 0);
	ck_assert_double_eq(knytt__win_score(cnt[0]), 3);
	knytt__win_unlock(e);
	/* a 10-day window counts the older events again, exactly */
	n = knytt__win_lock(e, 10 * D, T + D, &rows, &cnt);
	ck_assert_uint_eq(n, 4);
	ck_assert_double_eq(knytt__win_score(cnt[0]), 4);
	ck_assert_double_eq(knytt__win_score(cnt[1]), 1);
	ck_assert_double_eq(knytt__win_score(cnt[2]), 2);
	ck_assert_double_eq(knytt__win_score(cnt[3]), 1);
	ck_assert_int_eq(cnt[4], 0);
	knytt__win_unlock(e);
	/* two weeks on, nothing is left */
	n = knytt__win_lock(e, 10 * D, T + 14 * D, &rows, &cnt);
	ck_assert_uint_eq(n, 0);
	knytt__win_unlock(e);
	/* without queries the log still forgets what is four weeks old */
	for (int d = 0; d < 60; d++)
		knytt__win_add(e, 5, 1, T + (20 + d) * D, T + (20 + d) * D);
	ck_assert_uint_le(e->win.n - e->win.head, 29);
	knytt_engine_close(e);
}
END_TEST

/* Planted: fashion moves daily, and the all-time list knows nothing of
 * it; the tuner blends the 1-day window, not the other lists. */
START_TEST(tune_picks_window)
{
	size_t n;
	knytt__rec *r = shop(1, &n);
	knytt__tune_in in = shop_in(r, n);
	in.budget = 1000;
	in.npop = 3;
	in.pop_hl[0] = 0; /* all time */
	in.pop_hl[1] = INFINITY;
	in.pop_win[1] = 86400; /* the last day */
	in.pop_hl[2] = INFINITY;
	in.pop_win[2] = 28 * 86400;
	knytt__tune_out o;
	ck_assert_msg(knytt__tune(&in, &o) == KNYTT_OK, "%s", knytt_errmsg());
	ck_assert_int_eq(o.best.pop, 1);
	ck_assert_msg(o.best.blend >= 0.5f, "blend %g", o.best.blend);
	ck_assert_double_eq(o.window_days, 1);
	ck_assert(o.ndcg > o.base_ndcg + 0.05);
	ck_assert(o.ndcg > o.pop_ndcg[0] + 0.05);
	ck_assert(o.ndcg > o.pop_ndcg[2] + 0.05);
	char json[2048];
	knytt__tune_json(&o, json, sizeof json);
	ck_assert_ptr_nonnull(strstr(json, "\"popularity_window_days\":1,"));
	free(r);
}
END_TEST

/* recommend serves the window a model's metadata chose, relative to the
 * engine's "now", and follows events as they arrive. */
START_TEST(engine_serves_window_blend)
{
	char dir[] = "/tmp/knytt-win-XXXXXX", uri[64], ext[16];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(uri, sizeof uri, "sqlite:%s/db", dir);
	const int64_t D = 86400000, T = 1700000000000LL;
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_tune(e, 0), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_tune_windows(e, 2), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_tune_windows(e, 1), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, 4), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_threads(e, 1), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_now(e, T), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_open(e, uri), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_tune_windows(e, 0), KNYTT_ESTATE);
	for (int i = 0; i < 12; i++) {
		knytt_item it;
		memset(&it, 0, sizeof it);
		snprintf(ext, sizeof ext, "i%d", i);
		it.struct_size = sizeof it;
		it.ext_id = ext;
		it.title = ext;
		ck_assert_int_eq(knytt_engine_item_upsert(e, &it, NULL, 0),
				 KNYTT_OK);
	}
	/* i1: many views, but before the 3-day window; i2 twice in it,
	 * i5 on its edge, i4 a millisecond before it */
	static const struct {
		const char *u, *i;
		int64_t ago;
	} ev[] = {{"a", "i1", 5 * D}, {"b", "i1", 5 * D}, {"c", "i1", 5 * D},
		  {"a", "i2", D},     {"b", "i2", D},     {"c", "i3", D / 2},
		  {"a", "i5", 3 * D}, {"b", "i4", 3 * D + 1},
		  {"me", "i0", 6 * D}, {"me", "i9", 6 * D}, {"a", "i9", 6 * D}};
	for (size_t j = 0; j < sizeof ev / sizeof ev[0]; j++)
		ck_assert_int_eq(knytt_engine_feedback(e, ev[j].u, ev[j].i,
						       "view", 0,
						       T - ev[j].ago),
				 KNYTT_OK);
	ck_assert_msg(knytt_engine_train(e, NULL, NULL) == KNYTT_OK, "%s",
		      knytt_errmsg());
	/* the blend a tuning that chose the 3-day window records */
	pthread_rwlock_wrlock(&e->lock);
	knytt__snap_blend_from_meta(
		e->snap, "{\"tune\":{\"blend\":1,\"popularity_list\":-2,"
			 "\"popularity_window_days\":3}}");
	ck_assert_int_eq(e->snap->blend_win, 3 * D);
	pthread_rwlock_unlock(&e->lock);
	knytt_result res[3] = {{.struct_size = sizeof(knytt_result)}};
	ck_assert_int_eq(knytt_engine_recommend(e, "me", 3, NULL, NULL, res),
			 3);
	/* the window's counts: i2 2, i3 1, i5 1 (ties by row) */
	ck_assert_str_eq(res[0].ext_id, "i2");
	ck_assert_str_eq(res[1].ext_id, "i3");
	ck_assert_str_eq(res[2].ext_id, "i5");
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(res[i].reason, KNYTT_REASON_TRENDING);
	/* a day later i5 has left the window; a new event counts at once */
	ck_assert_int_eq(knytt_engine_set_now(e, T + D), KNYTT_OK);
	for (int j = 0; j < 3; j++)
		ck_assert_int_eq(knytt_engine_feedback(e, j ? "b" : "a", "i7",
						       "view", 0, T + D),
				 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_recommend(e, "me", 3, NULL, NULL, res),
			 3);
	ck_assert_str_eq(res[0].ext_id, "i7");
	ck_assert_str_eq(res[1].ext_id, "i2");
	ck_assert_str_eq(res[2].ext_id, "i3");
	knytt_engine_close(e);
	char cmd[96];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- the personalised re-rank of a popularity list's pool ---- */

/*
 * Fashion within taste: 200 users in 4 groups of 100 items, 60 days; in
 * the ten days of block b = day / 10 the items g*100 + (8b + k) % 100,
 * k < 8, are in fashion in group g.  On a day a user takes, one time in
 * two, one of his group's fashionable items 9 times in 10 (else any
 * item of his group).  Recent popularity knows what is in fashion but
 * not whose group it is; the model knows the group, and fashion only
 * as well as his few recent items tell it.  The pool re-rank, the
 * popular items ordered by taste, knows both.
 */
#define FASHION_ITEMS 400
static knytt__rec *fashion_shop(size_t *n)
{
	size_t m = 0;
	knytt__rec *r = malloc(200 * 60 * sizeof *r);
	uint64_t s = 777;
	for (int day = 0; day < 60; day++)
		for (uint32_t u = 0; u < 200; u++) {
			s = s * 6364136223846793005ULL + 1442695040888963407ULL;
			uint32_t x = (uint32_t)(s >> 33), g = u % 4;
			if (x % 2)
				continue;
			uint32_t item =
				x / 2 % 10 < 9
					? g * 100 +
						  ((uint32_t)day / 10 * 8 +
						   x / 20 % 8) % 100
					: g * 100 + x / 200 % 100;
			r[m++] = (knytt__rec){.user = u, .item = item, .w = 1,
					      .time = (int64_t)day * 86400 +
						      (x % 86400)};
		}
	*n = m;
	return r;
}

START_TEST(tune_picks_pool)
{
	size_t n;
	knytt__rec *r = fashion_shop(&n);
	knytt__tune_in in = shop_in(r, n);
	in.nitems = FASHION_ITEMS;
	in.budget = 1000;
	knytt__tune_out o, off;
	/* not a candidate unless asked for: as before */
	ck_assert_msg(knytt__tune(&in, &off) == KNYTT_OK, "%s", knytt_errmsg());
	ck_assert_uint_eq(off.best.pool, 0);
	ck_assert_int_eq(off.npool, 1);
	in.pools = 1;
	ck_assert_msg(knytt__tune(&in, &o) == KNYTT_OK, "%s", knytt_errmsg());
	ck_assert_int_eq(o.npool, KNYTT__TUNE_NPOOL);
	ck_assert_msg(o.best.pool > 0, "pool %u: %.4f %.4f %.4f %.4f",
		      o.best.pool, o.pool_ndcg[0], o.pool_ndcg[1],
		      o.pool_ndcg[2], o.pool_ndcg[3]);
	/* clearly better than the plain blend, which off found too */
	ck_assert_double_eq_tol(o.pool_ndcg[0], off.ndcg, 1e-9);
	ck_assert_msg(o.ndcg > off.ndcg + 0.05, "pool %.4f, plain %.4f",
		      o.ndcg, off.ndcg);
	int p = 0;
	while (knytt__tune_pool[p] != o.best.pool)
		p++;
	ck_assert_double_eq_tol(o.pool_ndcg[p], o.ndcg, 1e-9);
	char json[2048];
	knytt__tune_json(&o, json, sizeof json);
	char want[32];
	snprintf(want, sizeof want, "\"pool\":%u,", o.best.pool);
	ck_assert_ptr_nonnull(strstr(json, want));
	ck_assert_ptr_nonnull(strstr(json, "\"pool_ndcg20\":[0."));
	knytt__tune_json(&off, json, sizeof json);
	ck_assert_ptr_nonnull(strstr(json, "\"pool\":0,"));
	free(r);
}
END_TEST

/* Taste alone (no fashion): a pool of popular items knows nothing the
 * model does not, so the choice stays the model over every item. */
START_TEST(tune_pool_not_picked_for_taste)
{
	size_t n;
	knytt__rec *r = shop(0, &n);
	knytt__tune_in in = shop_in(r, n);
	in.budget = 1000;
	in.pools = 1;
	knytt__tune_out o;
	ck_assert_msg(knytt__tune(&in, &o) == KNYTT_OK, "%s", knytt_errmsg());
	ck_assert_uint_eq(o.best.pool, 0);
	ck_assert_msg(o.best.blend <= 0.3f, "blend %g", o.best.blend);
	for (int p = 1; p < KNYTT__TUNE_NPOOL; p++)
		ck_assert(o.pool_ndcg[p] <= o.pool_ndcg[0] + 1e-9);
	free(r);
}
END_TEST

/* The id of each result, as a string list for messages. */
static void ids_of(const knytt_result *res, int n, char *buf, size_t cap)
{
	size_t l = 0;
	buf[0] = '\0';
	for (int i = 0; i < n && l < cap; i++)
		l += (size_t)snprintf(buf + l, cap - l, "%s ", res[i].ext_id);
}

/*
 * recommend serves the pool re-rank a model's metadata records as the
 * tuner scores it (tune.c, pool_top, then the blend): the first P items
 * of the chosen list that pass the query (the shopper's own items left
 * out), in the order of his taste over every item, then blended with
 * the list by the chosen weight.
 */
START_TEST(engine_serves_pool_rerank)
{
	char dir[] = "/tmp/knytt-pool-XXXXXX", uri[64], ext[16], uid[16];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(uri, sizeof uri, "sqlite:%s/db", dir);
	int64_t t0 = 1700000000000LL;
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_tune_pool(e, 2), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_tune_pool(e, 1), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_tune(e, 0), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, 8), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_threads(e, 1), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_now(e, t0 + 61LL * 86400000),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_open(e, uri), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_tune_pool(e, 0), KNYTT_ESTATE);
	for (int i = 0; i < FASHION_ITEMS; i++) {
		knytt_item it;
		memset(&it, 0, sizeof it);
		snprintf(ext, sizeof ext, "i%d", i);
		it.struct_size = sizeof it;
		it.ext_id = ext;
		it.title = ext;
		ck_assert_int_eq(knytt_engine_item_upsert(e, &it, NULL, 0),
				 KNYTT_OK);
	}
	size_t n;
	knytt__rec *r = fashion_shop(&n);
	for (size_t j = 0; j < n; j++) {
		snprintf(ext, sizeof ext, "i%u", r[j].item);
		snprintf(uid, sizeof uid, "u%u", r[j].user);
		ck_assert_int_eq(knytt_engine_feedback(e, uid, ext, "view", 0,
						       t0 + r[j].time * 1000),
				 KNYTT_OK);
	}
	free(r);
	ck_assert_msg(knytt_engine_train(e, NULL, NULL) == KNYTT_OK, "%s",
		      knytt_errmsg());
	enum { P = 30, K = 10 };
	knytt_result all[FASHION_ITEMS], pop[P], got[K], want[K];
	for (int i = 0; i < FASHION_ITEMS; i++)
		all[i].struct_size = sizeof all[i];
	pop[0].struct_size = got[0].struct_size = sizeof(knytt_result);
	/* the list (all-time popularity alone) and the taste over every
	 * item, as the engine serves them without a pool */
	pthread_rwlock_wrlock(&e->lock);
	knytt__snap_blend_from_meta(
		e->snap, "{\"tune\":{\"blend\":1,\"popularity_list\":-1}}");
	pthread_rwlock_unlock(&e->lock);
	int np = knytt_engine_recommend(e, "u1", P, NULL, NULL, pop);
	ck_assert_int_eq(np, P);
	pthread_rwlock_wrlock(&e->lock);
	knytt__snap_blend_from_meta(e->snap, "{}");
	ck_assert_uint_eq(e->snap->blend_pool, 0);
	pthread_rwlock_unlock(&e->lock);
	int na = knytt_engine_recommend(e, "u1", FASHION_ITEMS, NULL, NULL,
					all);
	ck_assert_int_gt(na, P);
	/* the pool in the taste's order */
	uint64_t pl[P], ql[P], fl[K];
	int m = 0;
	for (int i = 0; i < na && m < P; i++)
		for (int j = 0; j < np; j++)
			if (all[i].item_id == pop[j].item_id)
				pl[m++] = all[i].item_id;
	ck_assert_int_eq(m, P);
	for (int j = 0; j < P; j++)
		ql[j] = pop[j].item_id;
	static const struct {
		const char *meta;
		double w;
	} cfg[] = {
		{"{\"tune\":{\"blend\":0,\"popularity_list\":-1,"
		 "\"pool\":30}}",
		 0},
		{"{\"tune\":{\"blend\":0.5,\"popularity_list\":-1,"
		 "\"pool\":30}}",
		 0.5},
	};
	for (size_t c = 0; c < sizeof cfg / sizeof cfg[0]; c++) {
		pthread_rwlock_wrlock(&e->lock);
		knytt__snap_blend_from_meta(e->snap, cfg[c].meta);
		ck_assert_uint_eq(e->snap->blend_pool, 30);
		pthread_rwlock_unlock(&e->lock);
		ck_assert_int_eq(knytt_engine_recommend(e, "u1", K, NULL,
							NULL, got),
				 K);
		/* the tuner's rule on the two lists (blend.h), D = 2 K deep */
		size_t nf = knytt__blend_fuse(pl, 2 * K, ql, 2 * K, cfg[c].w,
					      K, fl, NULL, NULL);
		ck_assert_uint_eq(nf, K);
		char gs[256], ws[256];
		for (int i = 0; i < K; i++) {
			want[i] = got[i];
			snprintf(want[i].ext_id, sizeof want[i].ext_id, "?");
			for (int j = 0; j < na; j++)
				if (all[j].item_id == fl[i])
					want[i] = all[j];
		}
		ids_of(got, K, gs, sizeof gs);
		ids_of(want, K, ws, sizeof ws);
		ck_assert_msg(!strcmp(gs, ws), "w %g: got %s, want %s",
			      cfg[c].w, gs, ws);
		if (cfg[c].w == 0)
			for (int i = 0; i < K; i++)
				ck_assert_int_eq(got[i].reason,
						 KNYTT_REASON_TASTE);
	}
	/* a window's pool on an engine that keeps no window events: the
	 * tastes' best over every item, as without a pool */
	pthread_rwlock_wrlock(&e->lock);
	knytt__snap_blend_from_meta(
		e->snap, "{\"tune\":{\"blend\":0,\"popularity_list\":-2,"
			 "\"popularity_window_days\":3,\"pool\":30}}");
	ck_assert_uint_eq(e->snap->blend_pool, 30);
	ck_assert_int_gt(e->snap->blend_win, 0);
	pthread_rwlock_unlock(&e->lock);
	ck_assert_int_eq(knytt_engine_recommend(e, "u1", K, NULL, NULL, got),
			 K);
	for (int i = 0; i < K; i++)
		ck_assert_str_eq(got[i].ext_id, all[i].ext_id);
	/* a model without the field, or with a pool out of range: none */
	pthread_rwlock_wrlock(&e->lock);
	knytt__snap_blend_from_meta(
		e->snap, "{\"tune\":{\"blend\":0,\"popularity_list\":-1,"
			 "\"pool\":5000}}");
	ck_assert_uint_eq(e->snap->blend_pool, 0);
	ck_assert_double_eq(e->snap->blend_w, 0);
	pthread_rwlock_unlock(&e->lock);
	knytt_engine_close(e);
	char cmd[96];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ---- the engine: tuned by default, fixed with set_tune(0) ---- */

/* Trains an engine over a temporary store of the recency shop (one day
 * of the shop = one hour of engine time, so it fits in the default
 * future tolerance of the wall clock); returns the stored metadata. */
static char *engine_meta(int tune, knytt_model_kind kind, float *blend)
{
	char dir[] = "/tmp/knytt-tune-XXXXXX", uri[64], ext[16], uid[16];
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(uri, sizeof uri, "sqlite:%s/db", dir);
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_tune(e, 2), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_set_tune(e, tune), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, 8), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_model(e, kind), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_threads(e, 1), KNYTT_OK);
	int64_t t0 = 1700000000000LL;
	ck_assert_int_eq(knytt_engine_set_now(e, t0 + 61LL * 86400000),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_open(e, uri), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_tune(e, 1), KNYTT_ESTATE);
	for (int i = 0; i < 200; i++) {
		knytt_item it;
		memset(&it, 0, sizeof it);
		snprintf(ext, sizeof ext, "i%d", i);
		it.struct_size = sizeof it;
		it.ext_id = ext;
		it.title = ext;
		ck_assert_int_eq(knytt_engine_item_upsert(e, &it, NULL, 0),
				 KNYTT_OK);
	}
	size_t n;
	knytt__rec *r = shop(1, &n);
	for (size_t j = 0; j < n; j += 3) { /* a third: a quick test */
		snprintf(ext, sizeof ext, "i%u", r[j].item);
		snprintf(uid, sizeof uid, "u%u", r[j].user);
		ck_assert_int_eq(knytt_engine_feedback(e, uid, ext, "view", 0,
						       t0 + r[j].time * 1000),
				 KNYTT_OK);
	}
	free(r);
	ck_assert_msg(knytt_engine_train(e, NULL, NULL) == KNYTT_OK, "%s",
		      knytt_errmsg());
	char *meta = tu_model_meta(e);
	knytt_result res[10] = {{.struct_size = sizeof(knytt_result)}};
	ck_assert_int_eq(knytt_engine_recommend(e, "u1", 10, NULL, NULL, res),
			 10);
	/* a blended answer holds trending items */
	*blend = 0;
	for (int i = 0; i < 10; i++)
		*blend += res[i].reason == KNYTT_REASON_TRENDING;
	knytt_engine_close(e);
	/* the stored model serves again after a reopen, its kind followed;
	 * a shopper new to the model gets a fold-in taste (checked without
	 * a blend, which may fill every slot with trending items) */
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_now(e, t0 + 61LL * 86400000),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_open(e, uri), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_feedback(e, "newcomer", "i7", "view", 0,
					       t0 + 60LL * 86400000),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_recommend(e, "newcomer", 10, NULL, NULL,
						res),
			 10);
	int personal = 0;
	for (int i = 0; i < 10; i++)
		personal += res[i].reason == KNYTT_REASON_TASTE ||
			    res[i].reason == KNYTT_REASON_SESSION;
	ck_assert_msg(tune || personal > 0,
		      "no personal result for a new shopper");
	knytt_engine_close(e);
	char cmd[96];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	ck_assert_int_eq(system(cmd), 0);
	return meta;
}

START_TEST(engine_tunes_by_default)
{
	float trending;
	char *meta = engine_meta(1, KNYTT_MODEL_ALS, &trending);
	ck_assert_ptr_nonnull(strstr(meta, "\"tune\":{"));
	ck_assert_ptr_nonnull(strstr(meta, "\"validation\""));
	ck_assert_ptr_null(strstr(meta, "\"blend\":0,"));
	ck_assert_msg(trending > 0, "no trending item in a blended answer");
	knytt_free(meta);
}
END_TEST

START_TEST(engine_no_tune_keeps_settings)
{
	float trending;
	char *meta = engine_meta(0, KNYTT_MODEL_ALS, &trending);
	ck_assert_ptr_null(strstr(meta, "\"tune\""));
	ck_assert_ptr_nonnull(strstr(meta, "\"dim\":8"));
	ck_assert_msg(trending == 0, "%g trending items without a blend",
		      trending);
	knytt_free(meta);
}
END_TEST

START_TEST(engine_lightgcn_kind)
{
	float trending;
	char *meta = engine_meta(1, KNYTT_MODEL_LIGHTGCN, &trending);
	ck_assert_ptr_nonnull(strstr(meta, "\"kind\":\"lightgcn\""));
	ck_assert_ptr_nonnull(strstr(meta, "\"tune\":{\"kind\":\"lightgcn\""));
	knytt_free(meta);
	meta = engine_meta(0, KNYTT_MODEL_LIGHTGCN, &trending);
	ck_assert_ptr_nonnull(strstr(meta, "\"kind\":\"lightgcn\""));
	ck_assert_ptr_null(strstr(meta, "\"tune\""));
	knytt_free(meta);
}
END_TEST

Suite *tune_suite(void)
{
	Suite *s = suite_create("tune");
	TCase *tc = tcase_create("tune");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, blend_weight_applied);
	tcase_add_test(tc, tune_picks_recent_popularity);
	tcase_add_test(tc, tune_picks_taste);
	tcase_add_test(tc, tune_budget_respected);
	tcase_add_test(tc, tune_same_when_slow);
	tcase_add_test(tc, fit_units_shape);
	tcase_add_test(tc, tune_bad_input);
	tcase_add_test(tc, tune_window_list_counts);
	tcase_add_test(tc, engine_window_counts);
	tcase_add_test(tc, tune_picks_window);
	tcase_add_test(tc, engine_serves_window_blend);
	tcase_add_test(tc, tune_picks_pool);
	tcase_add_test(tc, tune_pool_not_picked_for_taste);
	tcase_add_test(tc, engine_serves_pool_rerank);
	tcase_add_test(tc, engine_tunes_by_default);
	tcase_add_test(tc, engine_no_tune_keeps_settings);
	tcase_add_test(tc, engine_lightgcn_kind);
	suite_add_tcase(s, tc);
	return s;
}
