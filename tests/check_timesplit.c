/*
 * check_timesplit.c -- evaluation in time: the global time split, its
 * popularity anchors and metrics computed by hand on a tiny data set.
 */
#include "testutil.h"

#include <knytt.h>

/*
 * The tiny data set (times in days):
 *   user 0: item 0 @1, item 1 @2 | item 2 @9
 *   user 1: item 0 @3, item 2 @2 | item 1 @8, item 3 @10
 *   user 2: item 2 @4, item 0 @5 | item 0 @9 (met in training: dropped)
 *   user 3:                      | item 4 @9 (cold user: dropped)
 * 11 times sorted 1 2 2 3 4 5 8 9 9 9 10; holdout 0.4 -> position
 * floor(11 * 0.6) = 6 -> cut 8.
 */
static const struct {
	uint32_t u, i;
	int64_t t;
} tiny[] = {{0, 0, 1}, {0, 1, 2}, {0, 2, 9}, {1, 0, 3}, {1, 2, 2}, {1, 1, 8},
	    {1, 3, 10}, {2, 2, 4}, {2, 0, 5}, {2, 0, 9}, {3, 4, 9}};
#define NTINY (sizeof tiny / sizeof tiny[0])

static knytt_timesplit *tiny_split(double holdout, knytt_matrix **tr,
				   knytt_matrix **te)
{
	knytt_timesplit *s;
	ck_assert_int_eq(knytt_timesplit_create(&s), 0);
	for (size_t j = 0; j < NTINY; j++)
		ck_assert_int_eq(knytt_timesplit_add(s, tiny[j].u, tiny[j].i,
						     KNYTT_EVENT_VIEW, 1,
						     tiny[j].t),
				 0);
	ck_assert_int_eq(knytt_timesplit_set_holdout(s, holdout), 0);
	ck_assert_int_eq(knytt_matrix_create(tr), 0);
	ck_assert_int_eq(knytt_matrix_create(te), 0);
	ck_assert_int_eq(knytt_timesplit_split(s, *tr, *te), 0);
	ck_assert_int_eq(knytt_matrix_build(*tr, 4, 5), 0);
	ck_assert_int_eq(knytt_matrix_build(*te, 4, 5), 0);
	return s;
}

static void row_is(const knytt_matrix *m, uint32_t u, size_t n,
		   const uint32_t *want)
{
	const uint32_t *it;
	int got = knytt_matrix_row(m, u, &it, NULL);
	ck_assert_int_eq(got, (int)n);
	for (size_t j = 0; j < n; j++)
		ck_assert_uint_eq(it[j], want[j]);
}

START_TEST(split_tiny_by_hand)
{
	knytt_matrix *tr, *te;
	knytt_timesplit *s = tiny_split(0.4, &tr, &te);
	knytt_timesplit_info in;
	ck_assert_int_eq(knytt_timesplit_info_get(s, &in), 0);
	ck_assert_int_eq(in.cut, 8);
	ck_assert_int_eq(in.first, 1);
	ck_assert_int_eq(in.last, 10);
	ck_assert_uint_eq(in.train, 6);
	ck_assert_uint_eq(in.test, 3);
	ck_assert_uint_eq(in.test_cold, 1);
	ck_assert_uint_eq(in.test_seen, 1);
	ck_assert_uint_eq(in.users_test, 2);
	ck_assert_uint_eq(in.users_cold, 1);
	static const uint32_t t0[] = {0, 1}, t1[] = {0, 2}, t2[] = {0, 2};
	static const uint32_t s0[] = {2}, s1[] = {1, 3};
	row_is(tr, 0, 2, t0);
	row_is(tr, 1, 2, t1);
	row_is(tr, 2, 2, t2);
	row_is(tr, 3, 0, NULL);
	row_is(te, 0, 1, s0);
	row_is(te, 1, 2, s1);
	row_is(te, 2, 0, NULL);
	row_is(te, 3, 0, NULL);
	/* an explicit cut gives the same partition */
	knytt_matrix *a, *b;
	ck_assert_int_eq(knytt_timesplit_set_cut(s, 6), 0);
	ck_assert_int_eq(knytt_matrix_create(&a), 0);
	ck_assert_int_eq(knytt_matrix_create(&b), 0);
	ck_assert_int_eq(knytt_timesplit_split(s, a, b), 0);
	ck_assert_int_eq(knytt_timesplit_info_get(s, &in), 0);
	ck_assert_int_eq(in.cut, 6);
	ck_assert_uint_eq(in.train, 6);
	ck_assert_uint_eq(in.test, 3);
	knytt_matrix_close(a);
	knytt_matrix_close(b);
	knytt_timesplit_close(s);
	knytt_matrix_close(tr);
	knytt_matrix_close(te);
}
END_TEST

START_TEST(popularity_and_metrics_by_hand)
{
	knytt_matrix *tr, *te;
	knytt_timesplit *s = tiny_split(0.4, &tr, &te);
	float pop[5];
	/* training counts: item 0 x3, item 1 x1, item 2 x2 */
	ck_assert_int_eq(knytt_timesplit_popularity(s, 0, 5, pop), 0);
	ck_assert_float_eq(pop[0], 3);
	ck_assert_float_eq(pop[1], 1);
	ck_assert_float_eq(pop[2], 2);
	ck_assert_float_eq(pop[3], 0);
	ck_assert_float_eq(pop[4], 0);
	/* window 3 before cut 8 = [5, 8): only user 2's item 0 @5 */
	float rec[5];
	ck_assert_int_eq(knytt_timesplit_popularity(s, 3, 5, rec), 0);
	ck_assert_float_eq(rec[0], 1);
	ck_assert_float_eq(rec[1] + rec[2] + rec[3] + rec[4], 0);
	/* window 4 = [4, 8) adds item 2 @4 */
	ck_assert_int_eq(knytt_timesplit_popularity(s, 4, 5, rec), 0);
	ck_assert_float_eq(rec[2], 1);

	/*
	 * Popularity ranked, training items excluded:
	 *  user 0: candidates 2 (2), 3 (0), 4 (0); test {2}: rank 0.
	 *  user 1: candidates 1 (1), 3 (0), 4 (0); test {1, 3}: item 1
	 *  rank 0; item 3 ties item 4 (ties count against) and is below
	 *  item 1: rank 2.
	 * k = 2: recall (1 + 1/2) / 2; NDCG (1 + 1 / (1 + 1/log2 3)) / 2.
	 * k = 1: recall 0.75, NDCG 1, coverage {2, 1} / 5 items = 0.4.
	 */
	knytt_item_scores sc = {pop, 5};
	knytt_metrics m;
	ck_assert_int_eq(knytt_eval_full(tr, te, 2, knytt_static_scorer, &sc,
					 &m),
			 0);
	ck_assert_uint_eq(m.users, 2);
	ck_assert_double_eq_tol(m.recall, 0.75, 1e-12);
	ck_assert_double_eq_tol(m.ndcg, (1 + 1 / (1 + 1 / log2(3.0))) / 2,
				1e-12);
	ck_assert_int_eq(knytt_eval_full(tr, te, 1, knytt_static_scorer, &sc,
					 &m),
			 0);
	ck_assert_double_eq_tol(m.recall, 0.75, 1e-12);
	ck_assert_double_eq_tol(m.ndcg, 1.0, 1e-12);
	ck_assert_double_eq_tol(m.coverage, 0.4, 1e-12);
	/* items beyond the scores' length score -inf: user 0's item 2 can
	 * no longer be hit (it ties the other -inf items), user 1's item 1
	 * still is: recall (0 + 1/2) / 2 */
	knytt_item_scores short_sc = {pop, 2};
	ck_assert_int_eq(knytt_eval_full(tr, te, 1, knytt_static_scorer,
					 &short_sc, &m),
			 0);
	ck_assert_double_eq_tol(m.recall, 0.25, 1e-12);
	knytt_timesplit_close(s);
	knytt_matrix_close(tr);
	knytt_matrix_close(te);
}
END_TEST

/*
 * Boundaries on random data: every record's value is a distinct power of
 * two, so a matrix entry's summed weight says exactly which records went
 * into it: train entries must be made of records before the cut only,
 * test entries of records at or after it only.
 */
START_TEST(split_boundaries_random)
{
	enum { N = 20, NU = 4, NI = 5 };
	uint64_t rng = 99 + (uint64_t)_i;
	uint32_t u[N], it[N];
	int64_t t[N];
	knytt_timesplit *s;
	ck_assert_int_eq(knytt_timesplit_create(&s), 0);
	for (int j = 0; j < N; j++) {
		u[j] = (uint32_t)(tu_rand(&rng) % NU);
		it[j] = (uint32_t)(tu_rand(&rng) % NI);
		t[j] = (int64_t)(tu_rand(&rng) % 12); /* many ties */
		ck_assert_int_eq(knytt_timesplit_add(s, u[j], it[j],
						     KNYTT_EVENT_VIEW,
						     (float)(1u << j), t[j]),
				 0);
	}
	ck_assert_int_eq(knytt_timesplit_set_holdout(s, 0.3), 0);
	knytt_matrix *tr, *te;
	ck_assert_int_eq(knytt_matrix_create(&tr), 0);
	ck_assert_int_eq(knytt_matrix_create(&te), 0);
	int rc = knytt_timesplit_split(s, tr, te);
	if (rc == KNYTT_EINVAL) { /* this draw left a side empty */
		knytt_timesplit_close(s);
		knytt_matrix_close(tr);
		knytt_matrix_close(te);
		return;
	}
	ck_assert_int_eq(rc, 0);
	knytt_timesplit_info in;
	ck_assert_int_eq(knytt_timesplit_info_get(s, &in), 0);
	/* the cut is the time at position floor(N * 0.7) */
	int64_t sorted[N];
	memcpy(sorted, t, sizeof t);
	for (int a = 0; a < N; a++)
		for (int b = a + 1; b < N; b++)
			if (sorted[b] < sorted[a]) {
				int64_t x = sorted[a];
				sorted[a] = sorted[b];
				sorted[b] = x;
			}
	ck_assert_int_eq(in.cut, sorted[(int)floor(N * 0.7)]);
	ck_assert_int_eq(knytt_matrix_build(tr, NU, NI), 0);
	ck_assert_int_eq(knytt_matrix_build(te, NU, NI), 0);
	size_t ntrain = 0;
	for (uint32_t uu = 0; uu < NU; uu++) {
		for (int side = 0; side < 2; side++) {
			const uint32_t *its;
			const float *w;
			int n = knytt_matrix_row(side ? te : tr, uu, &its, &w);
			for (int q = 0; q < n; q++) {
				uint32_t bits = (uint32_t)w[q];
				ck_assert_float_eq(w[q], (float)bits);
				for (int j = 0; j < N; j++) {
					if (!(bits & (1u << j)))
						continue;
					ck_assert_uint_eq(u[j], uu);
					ck_assert_uint_eq(it[j], its[q]);
					if (side)
						ck_assert_int_ge(t[j], in.cut);
					else
						ck_assert_int_lt(t[j], in.cut);
					ntrain += !side;
				}
			}
		}
	}
	ck_assert_uint_eq(ntrain, in.train);
	size_t before = 0;
	for (int j = 0; j < N; j++)
		before += t[j] < in.cut;
	ck_assert_uint_eq(before, in.train);
	knytt_timesplit_close(s);
	knytt_matrix_close(tr);
	knytt_matrix_close(te);
}
END_TEST

START_TEST(split_bad_input)
{
	knytt_timesplit *s;
	ck_assert_int_eq(knytt_timesplit_create(NULL), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_timesplit_create(&s), 0);
	ck_assert_int_eq(knytt_timesplit_set_holdout(s, 0), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_timesplit_set_holdout(s, 1), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_timesplit_set_holdout(s, NAN), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_timesplit_add(s, 0, 0, KNYTT_EVENT_MAX, 1, 0),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_timesplit_add(s, 0, 0, 0, -1, 0), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_timesplit_add(s, UINT32_MAX, 0, 0, 1, 0),
			 KNYTT_EINVAL);
	knytt_matrix *a, *b;
	ck_assert_int_eq(knytt_matrix_create(&a), 0);
	ck_assert_int_eq(knytt_matrix_create(&b), 0);
	/* nothing added */
	ck_assert_int_eq(knytt_timesplit_split(s, a, b), KNYTT_EINVAL);
	float pop[2];
	ck_assert_int_eq(knytt_timesplit_popularity(s, 0, 2, pop),
			 KNYTT_ESTATE);
	knytt_timesplit_info in;
	ck_assert_int_eq(knytt_timesplit_info_get(s, &in), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_timesplit_add(s, 0, 0, 0, 1, 5), 0);
	ck_assert_int_eq(knytt_timesplit_add(s, 0, 1, 0, 1, 6), 0);
	/* a cut after everything leaves the test empty, one before
	 * everything leaves training empty: both named */
	ck_assert_int_eq(knytt_timesplit_set_cut(s, 100), 0);
	ck_assert_int_eq(knytt_timesplit_split(s, a, b), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "test"));
	ck_assert_int_eq(knytt_timesplit_set_cut(s, 0), 0);
	ck_assert_int_eq(knytt_timesplit_split(s, a, b), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "training"));
	ck_assert_uint_eq(knytt_matrix_nnz(a), 0);
	ck_assert_int_eq(knytt_timesplit_popularity(s, -1, 2, pop),
			 KNYTT_EINVAL);
	/* a built matrix cannot be filled */
	ck_assert_int_eq(knytt_matrix_build(a, 1, 2), 0);
	ck_assert_int_eq(knytt_timesplit_set_cut(s, 6), 0);
	ck_assert_int_eq(knytt_timesplit_split(s, a, b), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_timesplit_split(s, NULL, b), 0);
	knytt_timesplit_close(s);
	knytt_timesplit_close(NULL);
	knytt_matrix_close(a);
	knytt_matrix_close(b);
}
END_TEST

Suite *timesplit_suite(void)
{
	Suite *s = suite_create("timesplit");
	TCase *tc = tcase_create("split");
	tcase_add_test(tc, split_tiny_by_hand);
	tcase_add_test(tc, popularity_and_metrics_by_hand);
	tcase_add_loop_test(tc, split_boundaries_random, 0, 20);
	tcase_add_test(tc, split_bad_input);
	suite_add_tcase(s, tc);
	return s;
}
