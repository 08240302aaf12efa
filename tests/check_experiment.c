/*
 * check_experiment.c -- search analytics and A/B experiments: the
 * deterministic assignment (chi-square over 100k simulated shoppers),
 * the statistics (a true +20% is found, A/A is not in ~95% of seeds),
 * sticky assignment across a change of shares, outcome attribution
 * windows, and the search report's top queries, zero-result queries,
 * click-through rate and MRR.  Store cases run on SQLite and, in the
 * TCase "postgres" (tagged), on a throwaway PostgreSQL server.
 */
#include "knytt.h"
#include "../lib/store/store_int.h"
#include "testutil.h"
#include "pgserver.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define HOUR 3600000LL
#define DAY (24 * HOUR)

static knytt_store *st;
static int64_t t0; /* a time in the recent past: events are not future */

/* loop index 0: SQLite in memory, 1: PostgreSQL */
static void open_store(int pg)
{
	char uri[1024] = "sqlite::memory:";
	if (pg)
		pgs_new_store(uri, sizeof uri);
	ck_assert_msg(knytt_store_open(uri, &st) == KNYTT_OK, "%s",
		      knytt_errmsg());
	uint64_t t;
	ck_assert_int_eq(knytt_store_tenant_create(st, "shop", &t), KNYTT_OK);
	ck_assert_int_eq(knytt_store_use_tenant(st, t), KNYTT_OK);
	t0 = (knytt__now_ms() - 20 * DAY) / DAY * DAY;
	for (int i = 0; i < 20; i++) {
		char ext[16], title[32];
		snprintf(ext, sizeof ext, "i%d", i);
		snprintf(title, sizeof title, "item %d", i);
		knytt_item it;
		memset(&it, 0, sizeof it);
		it.struct_size = sizeof it;
		it.ext_id = ext;
		it.title = title;
		it.category = "c";
		it.price = 10;
		it.in_stock = 1;
		ck_assert_int_eq(knytt_store_item_upsert(st, &it, NULL),
				 KNYTT_OK);
	}
}

static void close_store(void)
{
	knytt_store_close(st);
	st = NULL;
}

static uint64_t item_id(int i)
{
	char ext[16];
	snprintf(ext, sizeof ext, "i%d", i);
	uint64_t id = 0;
	ck_assert_int_eq(knytt__item_id(st, ext, &id), KNYTT_OK);
	return id;
}

static void event(const char *user, int item, const char *type, int64_t ts)
{
	char ext[16];
	snprintf(ext, sizeof ext, "i%d", item);
	knytt_interaction ix;
	memset(&ix, 0, sizeof ix);
	ix.struct_size = sizeof ix;
	ix.user = user;
	ix.item = ext;
	ix.type = type;
	ix.ts_ms = ts;
	ck_assert_msg(knytt_store_interaction_add(st, &ix) == 1, "%s",
		      knytt_errmsg());
}

static void two_arms(knytt_experiment *x, const char *name, double a,
		     double b)
{
	knytt_experiment_init(x);
	snprintf(x->name, sizeof x->name, "%s", name);
	x->nvariants = 2;
	strcpy(x->variants[0].name, "A");
	strcpy(x->variants[1].name, "B");
	x->variants[0].share = a;
	x->variants[1].share = b;
}

/* ---- assignment and statistics (no store) ------------------------------ */

START_TEST(assignment_is_deterministic_and_follows_shares)
{
	knytt_experiment x;
	two_arms(&x, "hero", 1, 1);
	x.nvariants = 3;
	strcpy(x.variants[2].name, "C");
	x.variants[0].share = 5, x.variants[1].share = 3;
	x.variants[2].share = 2;
	const int N = 100000;
	long cnt[3] = {0};
	int same_other = 0;
	knytt_experiment y = x;
	strcpy(y.name, "other");
	for (int i = 0; i < N; i++) {
		char u[32];
		snprintf(u, sizeof u, "user-%d", i);
		int v = knytt_experiment_bucket(&x, 7, u);
		ck_assert(v >= 0 && v < 3);
		ck_assert_int_eq(knytt_experiment_bucket(&x, 7, u), v);
		cnt[v]++;
		same_other += knytt_experiment_bucket(&y, 7, u) == v;
	}
	/* chi-square, 2 degrees of freedom: 13.8 is the 0.1% point */
	const double share[3] = {0.5, 0.3, 0.2};
	double chi = 0;
	for (int v = 0; v < 3; v++) {
		double exp = N * share[v];
		chi += (cnt[v] - exp) * (cnt[v] - exp) / exp;
	}
	ck_assert_msg(chi < 13.8, "chi-square %.2f (%ld %ld %ld)", chi,
		      cnt[0], cnt[1], cnt[2]);
	printf("experiment: chi-square %.2f over %d shoppers (5:3:2, "
	       "0.1%% point 13.8)\n", chi, N);
	/* another experiment's assignment is independent of this one's:
	 * P(same) = .25 + .09 + .04 = .38 */
	double ps = (double)same_other / N;
	ck_assert_msg(fabs(ps - 0.38) < 0.01, "P(same variant) %.4f", ps);
	/* the tenant is part of the hash too */
	int diff = 0;
	for (int i = 0; i < 1000; i++) {
		char u[32];
		snprintf(u, sizeof u, "user-%d", i);
		diff += knytt_experiment_bucket(&x, 7, u) !=
			knytt_experiment_bucket(&x, 8, u);
	}
	ck_assert(diff > 400);
	x.variants[1].share = 0;
	ck_assert_int_eq(knytt_experiment_bucket(&x, 7, "u"), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "share"));
}
END_TEST

START_TEST(ab_compare_matches_hand_computed_values)
{
	knytt_ab_stat c, b;
	ck_assert_int_eq(knytt_ab_compare(1000, 100, 1000, 100, 1, &c), 0);
	ck_assert(isnan(c.p) && isnan(c.lift));
	/* Wilson 95% for 100/1000: [0.0829, 0.1203] */
	ck_assert_msg(fabs(c.lo - 0.0829) < 5e-4 && fabs(c.hi - 0.1203) < 5e-4,
		      "%f %f", c.lo, c.hi);
	ck_assert_int_eq(knytt_ab_compare(1000, 130, 1000, 100, 0, &b), 0);
	/* pooled 0.115: z = 0.03 / sqrt(.115 * .885 * .002) = 2.103 */
	ck_assert_msg(fabs(b.p - 0.0355) < 5e-4, "p %f", b.p);
	ck_assert(fabs(b.lift - 0.30) < 1e-9);
	ck_assert(b.diff_lo > 0 && b.diff_hi > b.diff_lo);
	ck_assert_int_eq(b.small, 0);
	ck_assert_int_eq(knytt_ab_compare(40, 3, 40, 2, 0, &b), 0);
	ck_assert_int_eq(b.small, 1);
	ck_assert_int_eq(knytt_ab_compare(10, 11, 10, 1, 0, &b), KNYTT_EINVAL);
}
END_TEST

/* One simulated experiment: @p users shoppers assigned by the hash of
 * experiment @p name, each converting with probability p[variant];
 * the comparison of B with A. */
static void simulate(const char *name, int users, const double p[2],
		     uint64_t seed, knytt_ab_stat *out)
{
	knytt_experiment x;
	two_arms(&x, name, 1, 1);
	uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1, n[2] = {0}, c[2] = {0};
	for (int i = 0; i < users; i++) {
		char u[24];
		snprintf(u, sizeof u, "shopper-%d", i);
		int v = knytt_experiment_bucket(&x, 1, u);
		n[v]++;
		c[v] += (double)(tu_rand(&s) >> 11) * 0x1.0p-53 < p[v];
	}
	ck_assert_int_eq(knytt_ab_compare(n[1], c[1], n[0], c[0], 0, out), 0);
}

START_TEST(true_lift_is_significant_and_aa_is_not)
{
	/* B converts 20% better (12% against 10%), 20000 shoppers split by
	 * the assignment hash: the power is above 99%, so every seed must
	 * find it */
	const double ab[2] = {0.10, 0.12}, aa[2] = {0.10, 0.10};
	for (uint64_t seed = 1; seed <= 20; seed++) {
		char name[32];
		snprintf(name, sizeof name, "ab-%llu", (unsigned long long)seed);
		knytt_ab_stat r;
		simulate(name, 20000, ab, seed, &r);
		ck_assert_msg(r.p < 0.05 && r.lift > 0.05 && r.lift < 0.40,
			      "seed %llu: p %g lift %g",
			      (unsigned long long)seed, r.p, r.lift);
	}
	/* A/A: significant at 5% in about 5% of 400 seeds (binomial sd
	 * 4.4 around 20: the bounds are 2.7 sd away) */
	int sig = 0;
	for (uint64_t seed = 1; seed <= 400; seed++) {
		char name[32];
		snprintf(name, sizeof name, "aa-%llu", (unsigned long long)seed);
		knytt_ab_stat r;
		simulate(name, 4000, aa, seed, &r);
		sig += r.p < 0.05;
	}
	ck_assert_msg(sig >= 8 && sig <= 32, "A/A significant in %d of 400",
		      sig);
	printf("experiment: A/A significant at 5%% in %d of 400 seeds\n", sig);
}
END_TEST

/* ---- experiments in the store ----------------------------------------- */

START_TEST(experiment_create_list_stop_and_errors)
{
	open_store(_i);
	knytt_experiment x, y;
	two_arms(&x, "rec-model", 1, 1);
	x.start_ms = t0;
	strcpy(x.variants[1].model, "twotower");
	x.variants[1].mmr_lambda = 0.5;
	uint64_t id = 0;
	ck_assert_int_eq(knytt_store_experiment_create(st, &x, &id), KNYTT_OK);
	ck_assert(id > 0);
	ck_assert_int_eq(knytt_store_experiment_create(st, &x, NULL),
			 KNYTT_EEXIST);
	y.struct_size = sizeof y;
	ck_assert_int_eq(knytt_store_experiment_get(st, "rec-model", &y), 0);
	ck_assert_int_eq(y.nvariants, 2);
	ck_assert_str_eq(y.variants[1].model, "twotower");
	ck_assert(y.variants[1].mmr_lambda == 0.5);
	ck_assert_int_eq(y.variants[0].exclude_seen, -1);
	ck_assert_int_eq(y.status, KNYTT_EXP_RUNNING);
	ck_assert_int_eq(y.window_ms, DAY);
	/* the errors name their field, and store nothing */
	knytt_experiment bad = x;
	strcpy(bad.name, "bad name");
	ck_assert_int_eq(knytt_store_experiment_create(st, &bad, NULL),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "name"));
	bad = x;
	strcpy(bad.name, "one");
	bad.nvariants = 1;
	ck_assert_int_eq(knytt_store_experiment_create(st, &bad, NULL),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "variants"));
	bad.nvariants = 2;
	strcpy(bad.variants[1].name, "A");
	ck_assert_int_eq(knytt_store_experiment_create(st, &bad, NULL),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "twice"));
	strcpy(bad.variants[1].name, "B");
	bad.end_ms = bad.start_ms - 1;
	ck_assert_int_eq(knytt_store_experiment_create(st, &bad, NULL),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "end"));
	knytt_experiment list[4];
	for (int i = 0; i < 4; i++)
		list[i].struct_size = sizeof list[i];
	ck_assert_int_eq(knytt_store_experiment_list(st, list, 4), 1);
	ck_assert_str_eq(list[0].name, "rec-model");
	ck_assert_int_eq(knytt_store_experiment_stop(st, "rec-model", 0), 0);
	ck_assert_int_eq(knytt_store_experiment_stop(st, "rec-model", 0),
			 KNYTT_ESTATE);
	ck_assert_int_eq(knytt_store_experiment_get(st, "rec-model", &y), 0);
	ck_assert_int_eq(y.status, KNYTT_EXP_STOPPED);
	ck_assert_int_eq(knytt_store_experiment_assign(st, "rec-model", "u1",
						       0),
			 KNYTT_ESTATE);
	ck_assert_int_eq(knytt_store_experiment_get(st, "nope", &y),
			 KNYTT_ENOTFOUND);
	close_store();
}
END_TEST

START_TEST(assignment_is_sticky_across_a_share_change)
{
	open_store(_i);
	knytt_experiment x;
	two_arms(&x, "sticky", 1, 1);
	x.start_ms = t0;
	ck_assert_int_eq(knytt_store_experiment_create(st, &x, NULL), 0);
	int before[200], n1 = 0;
	for (int i = 0; i < 200; i++) {
		char u[16];
		snprintf(u, sizeof u, "s%d", i);
		before[i] = knytt_store_experiment_assign(st, "sticky", u, 0);
		ck_assert_int_eq(before[i],
				 knytt_experiment_bucket(&x, knytt_store_tenant(
								     st),
							 u));
		n1 += before[i] == 1;
	}
	ck_assert(n1 > 60 && n1 < 140);
	double shares[2] = {0.01, 0.99};
	ck_assert_int_eq(knytt_store_experiment_set_shares(st, "sticky",
							   shares, 2),
			 0);
	for (int i = 0; i < 200; i++) {
		char u[16];
		snprintf(u, sizeof u, "s%d", i);
		ck_assert_int_eq(knytt_store_experiment_assign(st, "sticky", u,
							       0),
				 before[i]);
	}
	int newb = 0;
	for (int i = 0; i < 200; i++) {
		char u[16];
		snprintf(u, sizeof u, "new%d", i);
		newb += knytt_store_experiment_assign(st, "sticky", u, 0) == 1;
	}
	ck_assert_msg(newb > 185, "%d of 200 new shoppers in B", newb);
	ck_assert_int_eq(knytt_store_experiment_set_shares(st, "sticky",
							   shares, 3),
			 KNYTT_EINVAL);
	close_store();
}
END_TEST

START_TEST(outcomes_count_only_inside_the_window)
{
	open_store(_i);
	knytt_experiment x;
	two_arms(&x, "win", 1, 1);
	x.start_ms = t0;
	x.window_ms = HOUR;
	ck_assert_int_eq(knytt_store_experiment_create(st, &x, NULL), 0);
	uint64_t shown[2] = {item_id(1), item_id(2)};
	/* five shoppers, each shown items 1 and 2 at t0 + 1 h */
	const char *u[5] = {"w0", "w1", "w2", "w3", "w4"};
	int v[5];
	int64_t te = t0 + HOUR;
	for (int i = 0; i < 5; i++) {
		v[i] = knytt_store_experiment_assign(st, "win", u[i], te);
		ck_assert(v[i] >= 0);
		ck_assert_int_eq(knytt_store_experiment_expose(
					 st, "win", u[i], v[i], "recommend",
					 shown, 2, te),
				 0);
	}
	event("w0", 1, "click", te + HOUR - 1);    /* inside: counts */
	event("w1", 2, "click", te + HOUR + 1);    /* 1 ms too late */
	event("w2", 3, "click", te + 10);          /* not shown */
	event("w3", 1, "click", te - 10);          /* before the exposure */
	event("w4", 2, "purchase", te + HOUR / 2); /* conversion */
	event("w0", 1, "purchase", te + 2 * HOUR); /* too late */
	knytt_exp_report r;
	ck_assert_msg(knytt_store_experiment_report(st, "win", &r) == 0, "%s",
		      knytt_errmsg());
	uint64_t expo = 0, clicks = 0, users = 0, conv = 0;
	for (int k = 0; k < 2; k++) {
		expo += r.v[k].exposures;
		clicks += r.v[k].ctr.x;
		users += r.v[k].users;
		conv += r.v[k].conversion.x;
	}
	ck_assert_int_eq(expo, 5);
	ck_assert_int_eq(users, 5);
	ck_assert_int_eq(clicks, 1);
	ck_assert_int_eq(conv, 1);
	ck_assert_int_eq(r.v[v[0]].ctr.x, 1);
	ck_assert_int_eq(r.v[v[4]].conversion.x, 1);
	ck_assert_int_eq(r.small_sample, 1);
	/* a later exposure that shows the item again takes the outcome */
	ck_assert_int_eq(knytt_store_experiment_expose(st, "win", "w1", v[1],
						       "search", shown, 2,
						       te + HOUR),
			 0);
	ck_assert_int_eq(knytt_store_experiment_report(st, "win", &r), 0);
	ck_assert_int_eq(r.v[0].exposures + r.v[1].exposures, 6);
	ck_assert_int_eq(r.v[0].ctr.x + r.v[1].ctr.x, 2);
	ck_assert_int_eq(knytt_store_experiment_expose(st, "win", "w1", 5,
						       "search", shown, 2, te),
			 KNYTT_EINVAL);
	close_store();
}
END_TEST

START_TEST(simulated_lift_is_reported_through_the_store)
{
	open_store(_i);
	knytt_experiment x;
	two_arms(&x, "sim", 1, 1);
	x.start_ms = t0;
	ck_assert_int_eq(knytt_store_experiment_create(st, &x, NULL), 0);
	uint64_t s = 12345, ids[3] = {item_id(0), item_id(1), item_id(2)};
	const int N = _i ? 3000 : 8000; /* fewer round trips on PostgreSQL */
	for (int i = 0; i < N; i++) {
		char u[16];
		snprintf(u, sizeof u, "sim%d", i);
		int64_t ts = t0 + (i % 1000) * 1000;
		int v = knytt_store_experiment_assign(st, "sim", u, ts);
		ck_assert(v >= 0);
		knytt_store_experiment_expose(st, "sim", u, v, "recommend",
					      ids, 3, ts);
		double p = v ? 0.30 * 1.2 : 0.30;
		if ((double)(tu_rand(&s) >> 11) * 0x1.0p-53 < p)
			event(u, (int)(tu_rand(&s) % 3), "purchase", ts + 5000);
	}
	knytt_exp_report r;
	ck_assert_int_eq(knytt_store_experiment_report(st, "sim", &r), 0);
	ck_assert_int_eq(r.v[0].users + r.v[1].users, (uint64_t)N);
	knytt_ab_stat *b = &r.v[1].conversion;
	ck_assert_msg(b->p < 0.05 && b->lift > 0.08 && b->lift < 0.35,
		      "p %g lift %g (%llu/%llu vs %llu/%llu)", b->p, b->lift,
		      (unsigned long long)b->x, (unsigned long long)b->n,
		      (unsigned long long)r.v[0].conversion.x,
		      (unsigned long long)r.v[0].conversion.n);
	ck_assert(b->lo < b->rate && b->rate < b->hi);
	ck_assert_int_eq(r.small_sample, 1); /* no clicks at all: ctr small */
	close_store();
}
END_TEST

/* ---- search analytics ------------------------------------------------- */

static void logq(const char *q, const char *user, int n, int64_t ts,
		 const int *items, int ni)
{
	uint64_t ids[20];
	for (int i = 0; i < ni; i++)
		ids[i] = item_id(items[i]);
	char shown[KNYTT__SHOWN_CAP];
	knytt__shown_text(ids, (size_t)ni, sizeof ids[0], shown, sizeof shown);
	ck_assert_int_eq(knytt__search_log_ins(st, q, user, n, ts, shown, NULL),
			 0);
}

START_TEST(search_report_counts_top_zero_ctr_and_mrr)
{
	open_store(_i);
	int res[3] = {4, 5, 6};
	int64_t d1 = t0 + HOUR, d2 = t0 + DAY + HOUR;
	logq("Red Shoes", "a", 3, d1, res, 3);
	event("a", 5, "click", d1 + 60000); /* rank 2 */
	logq("red  shoes ", "b", 3, d1, res, 3);
	event("b", 4, "add_to_cart", d1 + 31 * 60000); /* outside 30 min */
	logq("red shoes", "c", 3, d2, res, 3);
	event("c", 9, "click", d2 + 1000); /* not a result */
	logq("unicorn", "a", 0, d2, NULL, 0);
	logq("unicorn", NULL, 0, d2 + 5, NULL, 0);
	logq("lamp", "d", 3, d2, res, 3);
	logq("lamp", "d", 3, d2 + 1000, res, 3); /* the later search takes */
	event("d", 4, "click", d2 + 2000);        /* rank 1 */
	uint64_t lid;
	ck_assert_int_eq(knytt_store_search_log(st, "old", NULL, 1, t0 - DAY,
						&lid),
			 0);
	knytt_search_report *r = NULL;
	ck_assert_int_eq(knytt_store_search_report(st, t0, 0, 10, 0, 0, &r),
			 0);
	ck_assert_int_eq(r->searches, 7);
	ck_assert_int_eq(r->zero_results, 2);
	ck_assert_int_eq(r->clicked, 2);
	ck_assert_int_eq(r->users, 4);
	ck_assert_int_eq(r->ntop, 3);
	ck_assert_str_eq(r->top[0].query, "red shoes");
	ck_assert_int_eq(r->top[0].searches, 3);
	ck_assert_int_eq(r->top[0].clicked, 1);
	ck_assert(fabs(r->top[0].mrr - 0.5 / 3) < 1e-9);
	ck_assert_str_eq(r->top[1].query, "lamp");
	ck_assert(fabs(r->top[1].ctr - 0.5) < 1e-9);
	ck_assert(fabs(r->top[1].mrr - 0.5) < 1e-9);
	ck_assert_int_eq(r->nfew, 1);
	ck_assert_str_eq(r->few[0].query, "unicorn");
	ck_assert_int_eq(r->few[0].zero_results, 2);
	ck_assert_int_eq(r->ndays, 2);
	ck_assert_int_eq(r->days[0].day_ms, t0);
	ck_assert_int_eq(r->days[0].searches, 2);
	ck_assert_int_eq(r->days[1].searches, 5);
	knytt_free(r);
	/* a longer window catches b's add to cart; a range drops day 2 */
	ck_assert_int_eq(knytt_store_search_report(st, t0, t0 + DAY, 1, 0,
						   HOUR, &r),
			 0);
	ck_assert_int_eq(r->searches, 2);
	ck_assert_int_eq(r->clicked, 2);
	ck_assert_int_eq(r->ntop, 1);
	knytt_free(r);
	/* an explicit click counts, ranked when its item was shown */
	ck_assert_int_eq(knytt_store_search_report(st, t0, t0 + 1, 0, 0, 0,
						   &r),
			 0);
	ck_assert_int_eq(r->searches, 0);
	knytt_free(r);
	ck_assert_int_eq(knytt_store_search_report(st, 5, 4, 0, 0, 0, &r),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "until"));
	ck_assert_ptr_null(r);
	ck_assert_int_eq(knytt_store_search_click(st, lid, "i7"), 0);
	ck_assert_int_eq(knytt_store_search_report(st, t0 - 2 * DAY, t0, 0, 0,
						   0, &r),
			 0);
	ck_assert_int_eq(r->clicked, 1);
	ck_assert(r->mrr == 0); /* logged without its results */
	knytt_free(r);
	close_store();
}
END_TEST

/* The engine logs the results it showed; its exposures name the
 * variant. */
START_TEST(engine_search_and_recommend_report_the_variant)
{
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, 8), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_threads(e, 1), KNYTT_OK);
	ck_assert_msg(knytt_engine_open(e, "sqlite::memory:") == KNYTT_OK,
		      "%s", knytt_errmsg());
	for (int i = 0; i < 10; i++) {
		char ext[16], title[32];
		snprintf(ext, sizeof ext, "e%d", i);
		snprintf(title, sizeof title, "lamp model %d", i);
		knytt_item it;
		memset(&it, 0, sizeof it);
		it.struct_size = sizeof it;
		it.ext_id = ext;
		it.title = title;
		it.in_stock = 1;
		ck_assert_int_eq(knytt_engine_item_upsert(e, &it, NULL, 0), KNYTT_OK);
	}
	ck_assert_int_eq(knytt_engine_feedback(e, "fan", "e1", "view", 0, 0),
			 KNYTT_OK);
	knytt_store *s = knytt_engine_store(e);
	knytt_experiment x;
	two_arms(&x, "eng", 1, 1);
	x.start_ms = knytt__now_ms() - HOUR;
	strcpy(x.variants[1].model, "second");
	ck_assert_int_eq(knytt_store_experiment_create(s, &x, NULL), 0);
	knytt_result out[5] = {{.struct_size = sizeof(knytt_result)}};
	knytt_exp_served sv;
	/* a variant whose model has no engine is an error, not a silent
	 * fallback; find a user in B to see it */
	char u[16];
	int i = 0, v;
	do {
		snprintf(u, sizeof u, "fan%d", i++);
		v = knytt_experiment_bucket(&x, knytt_store_tenant(s), u);
	} while (v != 1);
	ck_assert_int_eq(knytt_engine_search_exp(e, "eng", "lamp", NULL, 0, 5,
						 NULL, u, out, NULL, &sv),
			 KNYTT_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "second"));
	ck_assert_int_eq(knytt_engine_set_variant_engine(e, "second", e), 0);
	int n = knytt_engine_search_exp(e, "eng", "lamp", NULL, 0, 5, NULL, u,
					out, NULL, &sv);
	ck_assert_msg(n > 0, "%d %s", n, knytt_errmsg());
	ck_assert_int_eq(sv.variant, 1);
	ck_assert_str_eq(sv.name, "B");
	ck_assert_str_eq(sv.model, "second");
	n = knytt_engine_recommend_exp(e, "eng", u, 3, NULL, NULL, out, &sv);
	ck_assert_msg(n >= 0, "%s", knytt_errmsg());
	ck_assert_int_eq(sv.variant, 1);
	ck_assert_int_eq(knytt_engine_flush(e), 0);
	knytt_exp_report r;
	ck_assert_int_eq(knytt_store_experiment_report(s, "eng", &r), 0);
	ck_assert_int_eq(r.v[1].exposures, 2);
	ck_assert_int_eq(r.v[1].users, 1);
	/* the search log kept the ids shown: a click ranks */
	ck_assert_int_eq(knytt_engine_feedback(e, u, out[0].ext_id, "click",
					       0, 0),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_flush(e), 0);
	knytt_search_report *sr;
	ck_assert_int_eq(knytt_store_search_report(s, 0, 0, 0, 0, 0, &sr), 0);
	ck_assert_int_eq(sr->searches, 1);
	ck_assert_int_eq(sr->clicked, sr->top[0].clicked);
	knytt_free(sr);
	ck_assert_int_eq(knytt_engine_recommend_exp(e, "nope", u, 3, NULL,
						    NULL, out, &sv),
			 KNYTT_ENOTFOUND);
	knytt_engine_close(e);
}
END_TEST

static void pg_fixture(void)
{
	const char *ex = getenv("CK_EXCLUDE_TAGS");
	if (!(ex && strstr(ex, "postgres")))
		pgs_start();
}

Suite *experiment_suite(void)
{
	Suite *s = suite_create("experiment");
	TCase *tc = tcase_create("stats");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, assignment_is_deterministic_and_follows_shares);
	tcase_add_test(tc, ab_compare_matches_hand_computed_values);
	tcase_add_test(tc, true_lift_is_significant_and_aa_is_not);
	suite_add_tcase(s, tc);
	tc = tcase_create("sqlite");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, experiment_create_list_stop_and_errors, 0, 1);
	tcase_add_loop_test(tc, assignment_is_sticky_across_a_share_change, 0,
			    1);
	tcase_add_loop_test(tc, outcomes_count_only_inside_the_window, 0, 1);
	tcase_add_loop_test(tc, simulated_lift_is_reported_through_the_store,
			    0, 1);
	tcase_add_loop_test(tc, search_report_counts_top_zero_ctr_and_mrr, 0,
			    1);
	tcase_add_test(tc, engine_search_and_recommend_report_the_variant);
	suite_add_tcase(s, tc);
	tc = tcase_create("postgres");
	tcase_set_tags(tc, "postgres");
	tcase_set_timeout(tc, 300);
	tcase_add_unchecked_fixture(tc, pg_fixture, NULL);
	tcase_add_loop_test(tc, experiment_create_list_stop_and_errors, 1, 2);
	tcase_add_loop_test(tc, assignment_is_sticky_across_a_share_change, 1,
			    2);
	tcase_add_loop_test(tc, outcomes_count_only_inside_the_window, 1, 2);
	tcase_add_loop_test(tc, simulated_lift_is_reported_through_the_store,
			    1, 2);
	tcase_add_loop_test(tc, search_report_counts_top_zero_ctr_and_mrr, 1,
			    2);
	suite_add_tcase(s, tc);
	return s;
}
