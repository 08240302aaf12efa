/*
 * check_taste.c -- shopper profiles (lib/taste/profile.c): type bits,
 * the seen set, the fold-in input; and the fold-in cost that sets
 * KNYTT__FOLD_MAX (printed with KNYTT_FOLD_BENCH=1).
 */
#include "../lib/taste/profile.h"
#include "testutil.h"

#include <time.h>

START_TEST(type_bits_name_every_type)
{
	ck_assert_uint_eq(knytt__type_bit("view"), KNYTT__T_VIEW);
	ck_assert_uint_eq(knytt__type_bit("add_to_cart"), KNYTT__T_CART);
	ck_assert_uint_eq(knytt__type_bit("purchase"), KNYTT__T_PURCHASE);
	ck_assert_uint_eq(knytt__type_bit("favorite"), KNYTT__T_FAVORITE);
	ck_assert_uint_eq(knytt__type_bit("rating"), KNYTT__T_RATING);
	ck_assert_uint_eq(knytt__type_bit("wishlist"), KNYTT__T_OTHER);
	ck_assert_uint_eq(knytt__type_bit(""), KNYTT__T_OTHER);
}
END_TEST

START_TEST(seen_set_holds_every_event)
{
	knytt__profile *p = knytt__profile_new("u", 8);
	ck_assert_ptr_nonnull(p);
	/* far more events than any window: each item remembered, with
	 * every type it was touched by */
	for (uint32_t i = 0; i < 5000; i++)
		ck_assert_int_eq(knytt__profile_add(p, 1000 + i % 3000, i % 3000,
						    1.0f, i,
						    i < 3000 ? KNYTT__T_VIEW
							     : KNYTT__T_PURCHASE),
				 KNYTT_OK);
	ck_assert_uint_eq(p->nh, 5000);
	ck_assert_uint_eq(knytt__profile_seen(p, 1000), (1u << KNYTT__T_VIEW) |
							  (1u << KNYTT__T_PURCHASE));
	ck_assert_uint_eq(knytt__profile_seen(p, 3999), 1u << KNYTT__T_VIEW);
	ck_assert_uint_eq(knytt__profile_seen(p, 4000), 0);
	ck_assert_uint_eq(knytt__profile_seen(p, 999), 0);
	knytt__profile_free(p);
}
END_TEST

/* The history's capacity is a capacity class, whatever count a load
 * reserves or the adds reach, so evicted profiles' blocks fit the next
 * loads (profile.c).  Before classes, a reserve of 37 took exactly 37. */
START_TEST(history_capacity_is_a_class)
{
	size_t counts[] = { 1, 17, 37, 100, 413, 1025, 5000 };
	for (size_t i = 0; i < sizeof counts / sizeof *counts; i++) {
		knytt__profile *p = knytt__profile_new("u", 8);
		ck_assert_ptr_nonnull(p);
		ck_assert_int_eq(knytt__profile_reserve(p, counts[i]),
				 KNYTT_OK);
		ck_assert_uint_eq(p->caph, knytt__cap_class(counts[i]));
		/* growing past it stays in classes and keeps the events */
		for (uint32_t j = 0; j < 3 * counts[i]; j++) {
			ck_assert_int_eq(knytt__profile_add(p, j, j, 1.0f, j,
							    KNYTT__T_VIEW),
					 KNYTT_OK);
			ck_assert_uint_eq(p->caph, knytt__cap_class(p->caph));
		}
		for (uint32_t j = 0; j < 3 * counts[i]; j++)
			ck_assert_uint_eq(p->hist[j].row, j);
		/* reserving less than held never shrinks */
		size_t cap = p->caph;
		ck_assert_int_eq(knytt__profile_reserve(p, 1), KNYTT_OK);
		ck_assert_uint_eq(p->caph, cap);
		knytt__profile_free(p);
	}
}
END_TEST

static uint32_t identity(uint32_t row, void *ctx)
{
	(void)ctx;
	return row % 2 ? UINT32_MAX : row; /* odd rows: not in the model */
}

START_TEST(fold_input_sums_decays_and_caps)
{
	knytt__profile *p = knytt__profile_new("u", 8);
	ck_assert_ptr_nonnull(p);
	const int64_t day = 86400000;
	/* row 0 three times, row 2 once a day ago, row 4 once 10 days ago,
	 * row 1 (not in the model) */
	ck_assert_int_eq(knytt__profile_add(p, 10, 0, 1, 10 * day, 0), 0);
	ck_assert_int_eq(knytt__profile_add(p, 10, 0, 2, 10 * day, 0), 0);
	ck_assert_int_eq(knytt__profile_add(p, 12, 2, 4, 9 * day, 0), 0);
	ck_assert_int_eq(knytt__profile_add(p, 11, 1, 8, 10 * day, 0), 0);
	ck_assert_int_eq(knytt__profile_add(p, 14, 4, 8, 0, 0), 0);
	ck_assert_int_eq(knytt__profile_add(p, 10, 0, 1, 10 * day, 0), 0);
	uint32_t m[8];
	float w[8];
	/* no decay: sums per item */
	size_t n = knytt__profile_fold(p, identity, NULL, 10 * day, 0, 8, m, w);
	ck_assert_uint_eq(n, 3);
	ck_assert_uint_eq(m[0], 0);
	ck_assert_float_eq_tol(w[0], 4, 1e-6);
	ck_assert_uint_eq(m[2], 4);
	ck_assert_float_eq_tol(w[2], 8, 1e-6);
	/* a half-life of one day: 10 days old weighs 2^-10 */
	n = knytt__profile_fold(p, identity, NULL, 10 * day, 86400, 8, m, w);
	ck_assert_uint_eq(n, 3);
	ck_assert_float_eq_tol(w[1], 2, 1e-6);
	ck_assert_float_eq_tol(w[2], 8.0 / 1024, 1e-6);
	/* capped: the heaviest stay */
	n = knytt__profile_fold(p, identity, NULL, 10 * day, 86400, 2, m, w);
	ck_assert_uint_eq(n, 2);
	ck_assert_uint_eq(m[0], 0);
	ck_assert_uint_eq(m[1], 2);
	knytt__profile_free(p);
}
END_TEST

static double secs(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* The cost of one ALS fold-in by the number of distinct items, dim 64:
 * the measurement behind KNYTT__FOLD_MAX (profile.c).  Only with
 * KNYTT_FOLD_BENCH=1 (it trains a 20,000-item model). */
START_TEST(fold_in_cost)
{
	const char *on = getenv("KNYTT_FOLD_BENCH");
	if (!on || strcmp(on, "1") != 0)
		return;
	const uint32_t items = 20000, users = 2000, dim = 64;
	knytt_matrix *mx;
	ck_assert_int_eq(knytt_matrix_create(&mx), KNYTT_OK);
	uint64_t s = 7;
	for (uint32_t u = 0; u < users; u++)
		for (int k = 0; k < 40; k++)
			ck_assert_int_eq(knytt_matrix_add(mx, u,
							  (uint32_t)(tu_rand(&s) %
								     items),
							  0, 1, 0),
					 KNYTT_OK);
	ck_assert_int_eq(knytt_matrix_build(mx, users, items), KNYTT_OK);
	knytt_als *als;
	ck_assert_int_eq(knytt_als_create(&als), KNYTT_OK);
	ck_assert_int_eq(knytt_als_set_factors(als, dim), KNYTT_OK);
	ck_assert_int_eq(knytt_als_set_iterations(als, 2), KNYTT_OK);
	ck_assert_int_eq(knytt_als_train(als, mx), KNYTT_OK);
	uint32_t *m = malloc(items * sizeof *m);
	float *w = malloc(items * sizeof *w), v[64];
	for (uint32_t i = 0; i < items; i++) {
		m[i] = i;
		w[i] = 1.0f + (float)(i % 7);
	}
	for (size_t n = 256; n <= 16384; n *= 4) {
		int reps = n <= 1024 ? 50 : 10;
		double t0 = secs();
		for (int r = 0; r < reps; r++)
			ck_assert_int_eq(knytt_als_fold_in(als, n, m, w, v),
					 KNYTT_OK);
		fprintf(stderr, "fold-in of %5zu items, dim %u: %.2f ms\n", n,
			dim, (secs() - t0) * 1e3 / reps);
	}
	free(m);
	free(w);
	knytt_als_close(als);
	knytt_matrix_close(mx);
}
END_TEST

Suite *taste_suite(void)
{
	Suite *s = suite_create("taste");
	TCase *tc = tcase_create("profile");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, type_bits_name_every_type);
	tcase_add_test(tc, seen_set_holds_every_event);
	tcase_add_test(tc, history_capacity_is_a_class);
	tcase_add_test(tc, fold_input_sums_decays_and_caps);
	tcase_add_test(tc, fold_in_cost);
	suite_add_tcase(s, tc);
	return s;
}
