/*
 * check_model.c -- lib/model: the interaction matrix, implicit ALS,
 * fold-in, save/load, and the evaluation metrics against hand-computed
 * examples.
 */
#include "../lib/model/model.h"
#include "testutil.h"

#include <math.h>
#include <unistd.h>

/* ---- interaction matrix ---- */

START_TEST(matrix_weights_and_duplicates)
{
	knytt_matrix *m;
	ck_assert_int_eq(knytt_matrix_create(&m), 0);
	ck_assert_int_eq(knytt_matrix_add(m, 0, 2, KNYTT_EVENT_VIEW, 1, 0), 0);
	ck_assert_int_eq(knytt_matrix_add(m, 1, 0, KNYTT_EVENT_RATING, 4, 0),
			 0);
	ck_assert_int_eq(knytt_matrix_add(m, 0, 2, KNYTT_EVENT_PURCHASE, 1, 0),
			 0);
	ck_assert_int_eq(knytt_matrix_add(m, 0, 1, KNYTT_EVENT_CLICK, 1, 0), 0);
	ck_assert_int_eq(knytt_matrix_add(m, 2, 1, 7, 1, 0), 0);
	ck_assert_int_eq(knytt_matrix_set_weight(m, 7, 0.25f), 0);
	ck_assert_int_eq(knytt_matrix_users(m), 0);
	ck_assert_int_eq(knytt_matrix_build(m, 0, 0), 0);
	ck_assert_int_eq(knytt_matrix_users(m), 3);
	ck_assert_int_eq(knytt_matrix_items(m), 3);
	ck_assert_uint_eq(knytt_matrix_nnz(m), 4);
	const uint32_t *it;
	const float *w;
	ck_assert_int_eq(knytt_matrix_row(m, 0, &it, &w), 2);
	ck_assert_uint_eq(it[0], 1);
	ck_assert_float_eq(w[0], 2.0f); /* click */
	ck_assert_uint_eq(it[1], 2);
	ck_assert_float_eq(w[1], 9.0f); /* view 1 + purchase 8 */
	ck_assert_int_eq(knytt_matrix_row(m, 1, &it, &w), 1);
	ck_assert_float_eq(w[0], 4.0f); /* rating: its value */
	ck_assert_int_eq(knytt_matrix_row(m, 2, &it, &w), 1);
	ck_assert_float_eq(w[0], 0.25f); /* custom type weight */
	/* the transpose agrees */
	ck_assert_uint_eq(m->colptr[2] - m->colptr[1], 2);
	ck_assert_uint_eq(m->users[m->colptr[1]], 0);
	ck_assert_uint_eq(m->users[m->colptr[1] + 1], 2);
	ck_assert_int_eq(knytt_matrix_row(m, 3, NULL, NULL), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_matrix_add(m, 0, 0, 0, 1, 0), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_matrix_build(m, 0, 0), KNYTT_ESTATE);
	knytt_matrix_close(m);
	knytt_matrix_close(NULL);
}
END_TEST

START_TEST(matrix_decay_and_errors)
{
	knytt_matrix *m;
	ck_assert_int_eq(knytt_matrix_create(&m), 0);
	ck_assert_int_eq(knytt_matrix_set_decay(m, 10, 20), 0);
	ck_assert_int_eq(knytt_matrix_add(m, 0, 0, KNYTT_EVENT_VIEW, 1, 10), 0);
	ck_assert_int_eq(knytt_matrix_add(m, 0, 1, KNYTT_EVENT_ADD_TO_CART, 1, 20), 0);
	ck_assert_int_eq(knytt_matrix_add(m, 0, 0, KNYTT_EVENT_MAX, 1, 0),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_matrix_add(m, 0, 0, 0, -1, 0), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_matrix_add(m, 0, 0, 0, NAN, 0), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_matrix_set_weight(m, 0, -1), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_matrix_set_decay(m, -1, 0), KNYTT_EINVAL);
	/* an item id beyond the given dimension names itself */
	ck_assert_int_eq(knytt_matrix_build(m, 1, 1), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "item 1"));
	ck_assert_int_eq(knytt_matrix_build(m, 4, 5), 0);
	ck_assert_int_eq(knytt_matrix_users(m), 4);
	const float *w;
	ck_assert_int_eq(knytt_matrix_row(m, 0, NULL, &w), 2);
	ck_assert_float_eq_tol(w[0], 0.5f, 1e-6f); /* one half-life old */
	ck_assert_float_eq_tol(w[1], 4.0f, 1e-6f);
	ck_assert_int_eq(knytt_matrix_row(m, 3, NULL, NULL), 0);
	knytt_matrix_close(m);
	ck_assert_int_eq(knytt_matrix_create(NULL), KNYTT_EINVAL);
}
END_TEST

START_TEST(matrix_recency)
{
	/* half-life 1, boost 2: ranks 0, 1, 2 weigh 3, 2, 1.5; equal times
	 * rank the later addition as more recent. */
	knytt_matrix *m;
	ck_assert_int_eq(knytt_matrix_create(&m), 0);
	ck_assert_int_eq(knytt_matrix_set_recency(m, 1, 2), 0);
	ck_assert_int_eq(knytt_matrix_add(m, 0, 5, KNYTT_EVENT_VIEW, 1, 10), 0);
	ck_assert_int_eq(knytt_matrix_add(m, 1, 0, KNYTT_EVENT_PURCHASE, 1, 3),
			 0);
	ck_assert_int_eq(knytt_matrix_add(m, 0, 7, KNYTT_EVENT_VIEW, 1, 20), 0);
	ck_assert_int_eq(knytt_matrix_add(m, 0, 6, KNYTT_EVENT_CLICK, 1, 20),
			 0);
	ck_assert_int_eq(knytt_matrix_set_recency(m, -1, 2), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_matrix_set_recency(m, 1, NAN), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_matrix_build(m, 0, 0), 0);
	const uint32_t *it;
	const float *w;
	ck_assert_int_eq(knytt_matrix_row(m, 0, &it, &w), 3);
	ck_assert_uint_eq(it[0], 5);
	ck_assert_float_eq_tol(w[0], 1.5f, 1e-6f); /* oldest: rank 2 */
	ck_assert_uint_eq(it[1], 6);
	ck_assert_float_eq_tol(w[1], 2 * 3.0f, 1e-6f); /* click, latest */
	ck_assert_uint_eq(it[2], 7);
	ck_assert_float_eq_tol(w[2], 2.0f, 1e-6f); /* same time, earlier */
	ck_assert_int_eq(knytt_matrix_row(m, 1, &it, &w), 1);
	ck_assert_float_eq_tol(w[0], 8 * 3.0f, 1e-5f); /* purchase, rank 0 */
	ck_assert_int_eq(knytt_matrix_set_recency(m, 1, 2), KNYTT_ESTATE);
	knytt_matrix_close(m);
}
END_TEST

/* ---- metrics, leave-one-out ---- */

static int table_score(void *ctx, uint32_t user, const uint32_t *items,
		       size_t n, float *out)
{
	const float *tab = ctx; /* score by item, the same for every user */
	(void)user;
	for (size_t j = 0; j < n; j++)
		out[j] = tab[items ? items[j] : j];
	return 0;
}

START_TEST(loo_metrics_by_hand)
{
	/* Case 0: held-out 10 (0.5) against 11 (0.9), 12 (0.5, a tie that
	 * counts against the model), 13, 14: rank 2.  Case 1: held-out 20
	 * (1.0), its duplicate among the negatives is ignored, 22 (2.0)
	 * beats it: rank 1. */
	uint32_t users[2] = {0, 1}, items[2] = {10, 20};
	uint32_t negs[8] = {11, 12, 13, 14, 21, 20, 22, 23};
	float tab[24] = {0};
	tab[10] = 0.5f, tab[11] = 0.9f, tab[12] = 0.5f, tab[13] = 0.1f,
	tab[14] = 0.2f;
	tab[20] = 1.0f, tab[21] = 0.3f, tab[22] = 2.0f, tab[23] = 0.0f;
	knytt_loo *t;
	ck_assert_int_eq(knytt_loo_create(2, users, items, 4, negs, &t), 0);
	ck_assert_uint_eq(knytt_loo_count(t), 2);
	ck_assert_uint_eq(knytt_loo_negatives(t), 4);
	knytt_metrics m;
	float sc[10];
	ck_assert_int_eq(knytt_eval_loo(t, 3, table_score, tab, sc, &m), 0);
	ck_assert_uint_eq(m.users, 2);
	ck_assert_double_eq_tol(m.hr, 1.0, 1e-12);
	ck_assert_double_eq_tol(m.ndcg, (1 / log2(4.0) + 1 / log2(3.0)) / 2,
				1e-12);
	ck_assert_double_eq_tol(m.map, (1.0 / 3 + 1.0 / 2) / 2, 1e-12);
	ck_assert_double_eq_tol(m.recall, 1.0, 1e-12);
	ck_assert_double_eq_tol(m.precision, 1.0 / 3, 1e-12);
	/* scores kept in call order: held-out first, negatives in order */
	ck_assert_float_eq(sc[0], 0.5f);
	ck_assert_float_eq(sc[1], 0.9f);
	ck_assert_float_eq(sc[5], 1.0f);
	ck_assert_float_eq(sc[6], 0.3f);
	ck_assert_float_eq(sc[7], 1.0f);
	ck_assert_int_eq(knytt_eval_loo(t, 2, table_score, tab, NULL, &m), 0);
	ck_assert_double_eq_tol(m.hr, 0.5, 1e-12);
	ck_assert_double_eq_tol(m.ndcg, 1 / log2(3.0) / 2, 1e-12);
	ck_assert_double_eq_tol(m.map, 0.25, 1e-12);
	/* coverage at 1: top items 11 and 22 of 9 candidates */
	ck_assert_int_eq(knytt_eval_loo(t, 1, table_score, tab, NULL, &m), 0);
	ck_assert_double_eq_tol(m.coverage, 2.0 / 9, 1e-12);
	ck_assert_double_eq_tol(m.hr, 0.0, 1e-12);
	ck_assert_int_eq(knytt_eval_loo(t, 0, table_score, tab, NULL, &m),
			 KNYTT_EINVAL);
	uint32_t u, i, ng[4];
	ck_assert_int_eq(knytt_loo_case(t, 1, &u, &i, ng), 0);
	ck_assert_uint_eq(u, 1);
	ck_assert_uint_eq(i, 20);
	ck_assert_uint_eq(ng[2], 22);
	ck_assert_int_eq(knytt_loo_case(t, 2, &u, &i, ng), KNYTT_EINVAL);
	knytt_loo_close(t);
}
END_TEST

START_TEST(loo_constant_model_scores_zero)
{
	/* Ties count against the model: a constant scorer never hits. */
	uint32_t users[1] = {0}, items[1] = {0}, negs[3] = {1, 2, 3};
	float tab[4] = {1, 1, 1, 1};
	knytt_loo *t;
	ck_assert_int_eq(knytt_loo_create(1, users, items, 3, negs, &t), 0);
	knytt_metrics m;
	ck_assert_int_eq(knytt_eval_loo(t, 3, table_score, tab, NULL, &m), 0);
	ck_assert_double_eq(m.hr, 0.0);
	ck_assert_int_eq(knytt_eval_loo(t, 4, table_score, tab, NULL, &m), 0);
	ck_assert_double_eq_tol(m.ndcg, 1 / log2(5.0), 1e-12);
	knytt_loo_close(t);
}
END_TEST

/* ---- metrics, full ranking ---- */

static int user_table_score(void *ctx, uint32_t user, const uint32_t *items,
			    size_t n, float *out)
{
	const float(*tab)[6] = ctx;
	ck_assert_ptr_null(items);
	ck_assert_uint_eq(n, 6);
	memcpy(out, tab[user], 6 * sizeof *out);
	return 0;
}

static knytt_matrix *mat(const uint32_t *u, const uint32_t *i, size_t n,
			 uint32_t nu, uint32_t ni)
{
	knytt_matrix *m;
	ck_assert_int_eq(knytt_matrix_create(&m), 0);
	for (size_t j = 0; j < n; j++)
		ck_assert_int_eq(knytt_matrix_add(m, u[j], i[j], 0, 1, 0), 0);
	ck_assert_int_eq(knytt_matrix_build(m, nu, ni), 0);
	return m;
}

START_TEST(full_metrics_by_hand)
{
	/* User 0: train {0}, test {3}; scores 1:1 2:5 3:5 4:2 5:0 -> item 3
	 * ties item 2, rank 1.  User 1: train {1,2}, test {4,5}; scores
	 * 0:3 3:4 4:1 5:3.5 -> item 5 rank 1, item 4 rank 3. */
	static const float tab[2][6] = {{9, 1, 5, 5, 2, 0},
					{3, 9, 9, 4, 1, 3.5f}};
	uint32_t tu[3] = {0, 1, 1}, ti[3] = {0, 1, 2};
	uint32_t su[3] = {0, 1, 1}, si[3] = {3, 4, 5};
	knytt_matrix *train = mat(tu, ti, 3, 2, 6), *test = mat(su, si, 3, 2, 6);
	knytt_metrics m;
	ck_assert_int_eq(knytt_eval_full(train, test, 2, user_table_score,
					 (void *)tab, &m),
			 0);
	double l3 = 1 / log2(3.0);
	ck_assert_uint_eq(m.users, 2);
	ck_assert_double_eq_tol(m.hr, 1.0, 1e-12);
	ck_assert_double_eq_tol(m.ndcg, (l3 + l3 / (1 + l3)) / 2, 1e-12);
	ck_assert_double_eq_tol(m.recall, 0.75, 1e-12);
	ck_assert_double_eq_tol(m.precision, 0.5, 1e-12);
	ck_assert_double_eq_tol(m.map, 0.375, 1e-12);
	ck_assert_double_eq_tol(m.coverage, 0.5, 1e-12);
	/* at 4, user 1 hits both: AP = (1/2 + 2/4) / 2 */
	ck_assert_int_eq(knytt_eval_full(train, test, 4, user_table_score,
					 (void *)tab, &m),
			 0);
	ck_assert_double_eq_tol(m.map, (0.5 + 0.5) / 2, 1e-12);
	ck_assert_double_eq_tol(m.recall, 1.0, 1e-12);
	knytt_matrix *other = mat(su, si, 3, 2, 7);
	ck_assert_int_eq(knytt_eval_full(train, other, 2, user_table_score,
					 (void *)tab, &m),
			 KNYTT_EINVAL);
	knytt_matrix_close(other);
	knytt_matrix_close(train);
	knytt_matrix_close(test);
}
END_TEST

/* ---- NCF files ---- */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

START_TEST(ncf_parser_small_files)
{
	char r[64], n[64];
	snprintf(r, sizeof r, "/tmp/knytt_ncf_%d.rating", (int)getpid());
	snprintf(n, sizeof n, "/tmp/knytt_ncf_%d.negative", (int)getpid());
	write_file(r, "0\t5\t1\t978\n1\t7\t3\t979\n");
	write_file(n, "(0,5)\t1\t2\t3\n(1,7)\t7\t4\t6\n");
	knytt_loo *t;
	ck_assert_int_eq(knytt_loo_load_ncf(r, n, &t), 0);
	ck_assert_uint_eq(knytt_loo_count(t), 2);
	ck_assert_uint_eq(knytt_loo_negatives(t), 3);
	uint32_t u, i, ng[3];
	ck_assert_int_eq(knytt_loo_case(t, 1, &u, &i, ng), 0);
	ck_assert_uint_eq(u, 1);
	ck_assert_uint_eq(i, 7);
	ck_assert_uint_eq(ng[0], 7);
	ck_assert_uint_eq(ng[2], 6);
	/* Item 7 scores 0 and its negatives -1: the duplicate 7 is not
	 * counted against it, so both users hit at rank 0. */
	float tab[8] = {-1, -1, -1, -1, -1, 0, -1, 0};
	knytt_metrics m;
	ck_assert_int_eq(knytt_eval_loo(t, 1, table_score, tab, NULL, &m), 0);
	ck_assert_double_eq_tol(m.hr, 1.0, 1e-12);
	knytt_loo_close(t);
	/* malformed: a short line names its file and line */
	write_file(n, "(0,5)\t1\t2\t3\n(1,7)\t7\t4\n");
	ck_assert_int_eq(knytt_loo_load_ncf(r, n, &t), KNYTT_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "line 2"));
	write_file(n, "(0,5)\t1\t2\t3\n(1,8)\t7\t4\t6\n");
	ck_assert_int_eq(knytt_loo_load_ncf(r, n, &t), KNYTT_ECORRUPT);
	write_file(n, "(0,5)\t1\t2\t3\n");
	ck_assert_int_eq(knytt_loo_load_ncf(r, n, &t), KNYTT_ECORRUPT);
	remove(n);
	ck_assert_int_eq(knytt_loo_load_ncf(r, n, &t), KNYTT_EIO);
	remove(r);
}
END_TEST

START_TEST(ncf_parser_real_files)
{
	char r[512], n[512];
	if (!tu_data_file("ncf/ml-1m.test.rating", r, sizeof r) ||
	    !tu_data_file("ncf/ml-1m.test.negative", n, sizeof n))
		return;
	knytt_loo *t;
	ck_assert_int_eq(knytt_loo_load_ncf(r, n, &t), 0);
	ck_assert_uint_eq(knytt_loo_count(t), 6040);
	ck_assert_uint_eq(knytt_loo_negatives(t), 99);
	uint32_t u, i, ng[99];
	ck_assert_int_eq(knytt_loo_case(t, 0, &u, &i, ng), 0);
	ck_assert_uint_eq(u, 0);
	ck_assert_uint_eq(i, 25);
	ck_assert_uint_eq(ng[0], 1064);
	ck_assert_uint_eq(ng[1], 174);
	ck_assert_int_eq(knytt_loo_case(t, 6039, &u, &i, NULL), 0);
	ck_assert_uint_eq(u, 6039);
	ck_assert_uint_eq(i, 434);
	knytt_loo_close(t);
}
END_TEST

/* ---- ALS ---- */

/*
 * Planted structure: users and items fall into 10 groups; each user
 * interacts with 15 of its group's 30 items plus one random item.  One
 * more in-group item per user is held out.  A rank-10 model can recover
 * the groups; popularity cannot.
 */
#define NU 500
#define NI 300
#define NG 10

typedef struct planted {
	knytt_matrix *train, *test;
} planted;

static planted make_planted(uint64_t seed)
{
	planted p;
	ck_assert_int_eq(knytt_matrix_create(&p.train), 0);
	ck_assert_int_eq(knytt_matrix_create(&p.test), 0);
	for (uint32_t u = 0; u < NU; u++) {
		uint32_t g = u % NG, per = NI / NG;
		unsigned char pick[NI / NG] = {0};
		for (int c = 0; c < 16;) {
			uint32_t j = (uint32_t)(tu_rand(&seed) % per);
			if (pick[j])
				continue;
			pick[j] = 1;
			knytt_matrix *m = c == 15 ? p.test : p.train;
			ck_assert_int_eq(knytt_matrix_add(m, u, g * per + j,
							  KNYTT_EVENT_VIEW, 1,
							  0),
					 0);
			c++;
		}
		uint32_t noise = (uint32_t)(tu_rand(&seed) % NI);
		if (noise / per != g)
			ck_assert_int_eq(knytt_matrix_add(p.train, u, noise,
							  KNYTT_EVENT_CLICK, 1,
							  0),
					 0);
	}
	ck_assert_int_eq(knytt_matrix_build(p.train, NU, NI), 0);
	ck_assert_int_eq(knytt_matrix_build(p.test, NU, NI), 0);
	return p;
}

static void free_planted(planted *p)
{
	knytt_matrix_close(p->train);
	knytt_matrix_close(p->test);
}

static knytt_als *make_als(unsigned k, float reg, float alpha, unsigned it,
			   knytt_als_solver solver, unsigned threads)
{
	knytt_als *a;
	ck_assert_int_eq(knytt_als_create(&a), 0);
	ck_assert_int_eq(knytt_als_set_factors(a, k), 0);
	ck_assert_int_eq(knytt_als_set_reg(a, reg), 0);
	ck_assert_int_eq(knytt_als_set_alpha(a, alpha), 0);
	ck_assert_int_eq(knytt_als_set_iterations(a, it), 0);
	ck_assert_int_eq(knytt_als_set_solver(a, solver, 3), 0);
	ck_assert_int_eq(knytt_als_set_threads(a, threads), 0);
	return a;
}

static int count_score(void *ctx, uint32_t user, const uint32_t *items,
		       size_t n, float *out)
{
	const knytt_matrix *m = ctx;
	(void)user;
	for (size_t j = 0; j < n; j++) {
		uint32_t i = items ? items[j] : (uint32_t)j;
		out[j] = (float)(m->colptr[i + 1] - m->colptr[i]);
	}
	return 0;
}

START_TEST(als_recovers_planted_structure)
{
	planted p = make_planted(7);
	knytt_metrics pop, als_m;
	ck_assert_int_eq(knytt_eval_full(p.train, p.test, 10, count_score,
					 p.train, &pop),
			 0);
	for (int s = 0; s < 2; s++) {
		knytt_als_solver solver = s ? KNYTT_ALS_CHOLESKY : KNYTT_ALS_CG;
		knytt_als *a = make_als(16, 1.0f, 4.0f, 10, solver, 2);
		ck_assert_int_eq(knytt_als_train(a, p.train), 0);
		ck_assert_int_eq(knytt_eval_full(p.train, p.test, 10,
						 knytt_als_scorer, a, &als_m),
				 0);
		ck_assert_msg(als_m.hr > 0.5 && als_m.hr > 4 * pop.hr,
			      "solver %d: ALS HR@10 %.3f, popularity %.3f",
			      (int)solver, als_m.hr, pop.hr);
		ck_assert(als_m.ndcg > 3 * pop.ndcg);
		ck_assert_uint_eq(als_m.users, NU);
		knytt_als_close(a);
	}
	free_planted(&p);
}
END_TEST

START_TEST(als_fold_in_equals_sweep_cholesky)
{
	/* _i = 0: plain reg; 1: frequency-scaled reg */
	planted p = make_planted(11);
	knytt_als *a = make_als(12, _i ? 0.002f : 0.5f, 3.0f, 4,
				KNYTT_ALS_CHOLESKY, 2);
	ck_assert_int_eq(knytt_als_set_reg_exponent(a, (float)_i), 0);
	ck_assert_int_eq(knytt_als_train(a, p.train), 0);
	float x[12], v[12];
	for (uint32_t u = 0; u < NU; u += 7) {
		const uint32_t *it;
		const float *w;
		int n = knytt_matrix_row(p.train, u, &it, &w);
		ck_assert_int_eq(knytt_als_user_factors(a, u, 1, x), 0);
		for (int t = 0; t < 12; t++)
			v[t] = 123.0f; /* ignored by Cholesky */
		ck_assert_int_eq(knytt_als_fold_in(a, (size_t)n, it, w, v), 0);
		for (int t = 0; t < 12; t++)
			ck_assert_float_eq_tol(v[t], x[t], 1e-5f);
	}
	knytt_als_close(a);
	free_planted(&p);
}
END_TEST

START_TEST(als_fold_in_equals_sweep_cg)
{
	planted p = make_planted(13);
	/* 60 and 128 factors (strides 64, 128) run the register kernels,
	 * 20 the general one; _i = 1 also scales reg by frequency. */
	static const unsigned ks[3] = {20, 60, 128};
	const unsigned K = ks[_i];
	knytt_als *a = make_als(K, _i == 1 ? 0.002f : 0.5f, 3.0f, 3,
				KNYTT_ALS_CG, 2);
	ck_assert_int_eq(knytt_als_set_reg_exponent(a, _i == 1 ? 1.0f : 0.0f),
			 0);
	ck_assert_int_eq(knytt_als_train(a, p.train), 0);
	float *before = malloc(NU * K * sizeof *before);
	float *after = malloc(NU * K * sizeof *after);
	ck_assert_int_eq(knytt_als_user_factors(a, 0, NU, before), 0);
	/* one more user half-epoch: what a full sweep gives each user */
	ck_assert_int_eq(knytt__als_user_pass(a, p.train), 0);
	ck_assert_int_eq(knytt_als_user_factors(a, 0, NU, after), 0);
	int moved = 0;
	for (uint32_t u = 0; u < NU; u++) {
		const uint32_t *it;
		const float *w;
		int n = knytt_matrix_row(p.train, u, &it, &w);
		/* items given in reverse order: fold-in sorts them */
		uint32_t ri[64];
		float rw[64];
		for (int j = 0; j < n; j++) {
			ri[j] = it[n - 1 - j];
			rw[j] = w[n - 1 - j];
		}
		float v[128];
		memcpy(v, before + u * K, K * sizeof *v);
		ck_assert_int_eq(knytt_als_fold_in(a, (size_t)n, ri, rw, v), 0);
		for (unsigned t = 0; t < K; t++) {
			ck_assert_float_eq_tol(v[t], after[u * K + t], 1e-5f);
			moved += fabsf(before[u * K + t] - after[u * K + t]) >
				 1e-6f;
		}
	}
	ck_assert_int_gt(moved, 0); /* the pass did change something */
	/* bad input */
	uint32_t bad = NI;
	float one = 1, v[128] = {0};
	ck_assert_int_eq(knytt_als_fold_in(a, 1, &bad, &one, v), KNYTT_EINVAL);
	uint32_t dup[2] = {3, 3};
	float w2[2] = {1, 1};
	ck_assert_int_eq(knytt_als_fold_in(a, 2, dup, w2, v), KNYTT_EINVAL);
	float neg = -1;
	ck_assert_int_eq(knytt_als_fold_in(a, 1, dup, &neg, v), KNYTT_EINVAL);
	/* a user without items gets the zero vector */
	v[0] = 5;
	ck_assert_int_eq(knytt_als_fold_in(a, 0, NULL, NULL, v), 0);
	ck_assert_float_eq(v[0], 0.0f);
	free(before);
	free(after);
	knytt_als_close(a);
	free_planted(&p);
}
END_TEST

START_TEST(als_deterministic)
{
	planted p = make_planted(17);
	float *f[3];
	unsigned threads[3] = {2, 2, 3};
	for (int r = 0; r < 3; r++) {
		knytt_als *a = make_als(16, 0.3f, 2.0f, 4, KNYTT_ALS_CG,
					threads[r]);
		ck_assert_int_eq(knytt_als_set_seed(a, 99), 0);
		ck_assert_int_eq(knytt_als_train(a, p.train), 0);
		f[r] = malloc((NU + NI) * 16 * sizeof(float));
		ck_assert_int_eq(knytt_als_user_factors(a, 0, NU, f[r]), 0);
		ck_assert_int_eq(knytt_als_item_factors(a, 0, NI,
							f[r] + NU * 16),
				 0);
		knytt_als_close(a);
	}
	ck_assert_int_eq(memcmp(f[0], f[1], (NU + NI) * 16 * sizeof(float)),
			 0);
	/* rows are solved independently, so even the thread count does not
	 * change the factors */
	ck_assert_int_eq(memcmp(f[0], f[2], (NU + NI) * 16 * sizeof(float)),
			 0);
	/* another seed gives other factors */
	knytt_als *a = make_als(16, 0.3f, 2.0f, 4, KNYTT_ALS_CG, 2);
	ck_assert_int_eq(knytt_als_set_seed(a, 100), 0);
	ck_assert_int_eq(knytt_als_train(a, p.train), 0);
	ck_assert_int_eq(knytt_als_user_factors(a, 0, NU, f[2]), 0);
	ck_assert_int_ne(memcmp(f[0], f[2], NU * 16 * sizeof(float)), 0);
	knytt_als_close(a);
	for (int r = 0; r < 3; r++)
		free(f[r]);
	free_planted(&p);
}
END_TEST

typedef struct prog {
	unsigned calls, cancel_at;
	double loss[32];
	knytt_als *als;
	float seen;
} prog;

static int on_progress(void *ctx, const knytt_progress *p)
{
	prog *g = ctx;
	ck_assert_uint_eq(p->epoch, g->calls + 1);
	ck_assert(p->elapsed >= 0 && p->eta >= 0);
	g->loss[g->calls++] = p->loss;
	/* read functions work from inside the callback */
	ck_assert_int_eq(knytt_als_score(g->als, 0, NULL, 1, &g->seen), 0);
	return g->cancel_at && p->epoch == g->cancel_at;
}

START_TEST(als_progress_loss_and_cancel)
{
	planted p = make_planted(19);
	prog g = {0};
	knytt_als *a = make_als(8, 1.0f, 2.0f, 6, KNYTT_ALS_CHOLESKY, 2);
	g.als = a;
	ck_assert_int_eq(knytt_als_set_progress(a, on_progress, &g), 0);
	ck_assert_int_eq(knytt_als_train(a, p.train), 0);
	ck_assert_uint_eq(g.calls, 6);
	/* exact ALS never increases its objective */
	for (unsigned e = 1; e < g.calls; e++)
		ck_assert_msg(g.loss[e] <= g.loss[e - 1] * (1 + 1e-5),
			      "loss rose at epoch %u: %g -> %g", e + 1,
			      g.loss[e - 1], g.loss[e]);
	ck_assert(g.loss[5] > 0);
	knytt_als_close(a);
	/* the same with frequency-scaled reg */
	memset(&g, 0, sizeof g);
	a = make_als(8, 0.002f, 2.0f, 6, KNYTT_ALS_CHOLESKY, 2);
	g.als = a;
	ck_assert_int_eq(knytt_als_set_reg_exponent(a, 1.0f), 0);
	ck_assert_int_eq(knytt_als_set_progress(a, on_progress, &g), 0);
	ck_assert_int_eq(knytt_als_train(a, p.train), 0);
	for (unsigned e = 1; e < g.calls; e++)
		ck_assert_msg(g.loss[e] <= g.loss[e - 1] * (1 + 1e-5),
			      "nu=1: loss rose at epoch %u: %g -> %g", e + 1,
			      g.loss[e - 1], g.loss[e]);
	knytt_als_close(a);

	prog c = {.cancel_at = 2};
	a = make_als(8, 1.0f, 2.0f, 6, KNYTT_ALS_CG, 1);
	c.als = a;
	ck_assert_int_eq(knytt_als_set_progress(a, on_progress, &c), 0);
	ck_assert_int_eq(knytt_als_train(a, p.train), KNYTT_ECANCELED);
	ck_assert_uint_eq(c.calls, 2);
	float s;
	ck_assert_int_eq(knytt_als_score(a, 0, NULL, 1, &s), 0);
	ck_assert_float_eq(s, c.seen); /* the factors of epoch 2 */
	knytt_als_close(a);
	free_planted(&p);
}
END_TEST

START_TEST(als_bad_settings)
{
	knytt_als *a;
	ck_assert_int_eq(knytt_als_create(&a), 0);
	ck_assert_int_eq(knytt_als_set_factors(a, 0), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "factors"));
	ck_assert_int_eq(knytt_als_set_factors(a, 5000), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_als_set_reg(a, -0.1f), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "reg"));
	ck_assert_int_eq(knytt_als_set_reg(a, NAN), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_als_set_alpha(a, -1), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_als_set_iterations(a, 0), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_als_set_threads(a, 1000), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_als_set_reg_exponent(a, -0.5f), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_als_set_reg_exponent(a, 3.0f), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_als_set_reg_exponent(a, 0.5f), 0);
	ck_assert_int_eq(knytt_als_set_reg_exponent(a, 0.0f), 0);
	ck_assert_int_eq(knytt_als_set_solver(a, (knytt_als_solver)9, 0),
			 KNYTT_EINVAL);
	/* empty matrix */
	knytt_matrix *m;
	ck_assert_int_eq(knytt_matrix_create(&m), 0);
	ck_assert_int_eq(knytt_als_train(a, m), KNYTT_EINVAL); /* not built */
	ck_assert_int_eq(knytt_matrix_build(m, 10, 10), 0);
	ck_assert_int_eq(knytt_als_train(a, m), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "empty"));
	ck_assert_int_eq(knytt_als_train(a, NULL), KNYTT_EINVAL);
	/* untrained model: read functions refuse */
	float v[64];
	ck_assert_int_eq(knytt_als_score(a, 0, NULL, 1, v), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_als_fold_in(a, 0, NULL, NULL, v), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_als_user_factors(a, 0, 1, v), KNYTT_ESTATE);
	void *buf;
	size_t len;
	ck_assert_int_eq(knytt_als_save_buffer(a, &buf, &len), KNYTT_ESTATE);
	ck_assert_uint_eq(knytt_als_factors(a), 0);
	knytt_matrix_close(m);
	knytt_als_close(a);
	knytt_als_close(NULL);
	/* reg 0 with Cholesky is refused */
	planted p = make_planted(23);
	a = make_als(8, 0.0f, 1.0f, 2, KNYTT_ALS_CHOLESKY, 1);
	ck_assert_int_eq(knytt_als_train(a, p.train), KNYTT_EINVAL);
	knytt_als_close(a);
	/* trained: settings frozen, ranges checked */
	a = make_als(8, 0.1f, 1.0f, 2, KNYTT_ALS_CG, 1);
	ck_assert_int_eq(knytt_als_train(a, p.train), 0);
	ck_assert_int_eq(knytt_als_train(a, p.train), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_als_set_factors(a, 4), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_als_score(a, NU, NULL, 1, v), KNYTT_EINVAL);
	uint32_t bad = NI;
	ck_assert_int_eq(knytt_als_score(a, 0, &bad, 1, v), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_als_item_factors(a, NI - 1, 2, v), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_als_item_factors(a, NI - 1, 1, v), 0);
	ck_assert_uint_eq(knytt_als_factors(a), 8);
	ck_assert_uint_eq(knytt_als_users(a), NU);
	ck_assert_uint_eq(knytt_als_items(a), NI);
	knytt_als_close(a);
	free_planted(&p);
}
END_TEST

START_TEST(als_save_load_round_trip)
{
	planted p = make_planted(29);
	knytt_als *a = make_als(20, 0.005f, 2.0f, 3, KNYTT_ALS_CG, 2);
	/* nu travels with the model: the fold-in check below needs it */
	ck_assert_int_eq(knytt_als_set_reg_exponent(a, 1.0f), 0);
	ck_assert_int_eq(knytt_als_train(a, p.train), 0);
	void *buf;
	size_t len;
	ck_assert_int_eq(knytt_als_save_buffer(a, &buf, &len), 0);
	char path[64];
	snprintf(path, sizeof path, "/tmp/knytt_als_%d.model", (int)getpid());
	ck_assert_int_eq(knytt_als_save(a, path), 0);

	knytt_als *b, *c;
	ck_assert_int_eq(knytt_als_create(&b), 0);
	ck_assert_int_eq(knytt_als_load_buffer(b, buf, len), 0);
	ck_assert_int_eq(knytt_als_create(&c), 0);
	ck_assert_int_eq(knytt_als_load(c, path), 0);
	ck_assert_int_eq(knytt_als_load(c, path), KNYTT_ESTATE);
	float sa[NI], sb[NI], sc[NI];
	for (uint32_t u = 0; u < NU; u += 13) {
		ck_assert_int_eq(knytt_als_score(a, u, NULL, NI, sa), 0);
		ck_assert_int_eq(knytt_als_score(b, u, NULL, NI, sb), 0);
		ck_assert_int_eq(knytt_als_score(c, u, NULL, NI, sc), 0);
		ck_assert_int_eq(memcmp(sa, sb, sizeof sa), 0);
		ck_assert_int_eq(memcmp(sa, sc, sizeof sa), 0);
	}
	/* a loaded model folds in like the original */
	const uint32_t *it;
	const float *w;
	int n = knytt_matrix_row(p.train, 5, &it, &w);
	float va[20] = {0}, vb[20] = {0};
	ck_assert_int_eq(knytt_als_fold_in(a, (size_t)n, it, w, va), 0);
	ck_assert_int_eq(knytt_als_fold_in(b, (size_t)n, it, w, vb), 0);
	ck_assert_int_eq(memcmp(va, vb, sizeof va), 0);
	knytt_als_close(b);
	knytt_als_close(c);

	/* damage: one flipped bit, truncation, foreign magic, newer version */
	unsigned char *d = malloc(len);
	memcpy(d, buf, len);
	d[len / 2] ^= 0x10;
	ck_assert_int_eq(knytt_als_create(&b), 0);
	ck_assert_int_eq(knytt_als_load_buffer(b, d, len), KNYTT_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "checksum"));
	ck_assert_int_eq(knytt_als_load_buffer(b, buf, len - 9),
			 KNYTT_ECORRUPT);
	ck_assert_int_eq(knytt_als_load_buffer(b, buf, 10), KNYTT_ECORRUPT);
	memcpy(d, buf, len);
	d[0] = 'X';
	ck_assert_int_eq(knytt_als_load_buffer(b, d, len), KNYTT_ECORRUPT);
	memcpy(d, buf, len);
	d[8] = 2;
	ck_assert_int_eq(knytt_als_load_buffer(b, d, len), KNYTT_EVERSION);
	ck_assert_uint_eq(knytt_als_factors(b), 0); /* still usable */
	ck_assert_int_eq(knytt_als_load_buffer(b, buf, len), 0);
	knytt_als_close(b);
	/* a damaged file */
	FILE *f = fopen(path, "r+b");
	ck_assert_ptr_nonnull(f);
	fseek(f, 100, SEEK_SET);
	fputc(0x55 ^ ((unsigned char *)buf)[100], f);
	fclose(f);
	ck_assert_int_eq(knytt_als_create(&b), 0);
	ck_assert_int_eq(knytt_als_load(b, path), KNYTT_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), path));
	remove(path);
	ck_assert_int_eq(knytt_als_load(b, path), KNYTT_EIO);
	ck_assert_int_eq(knytt_als_save(a, "/nonexistent-dir/x.model"),
			 KNYTT_EIO);
	knytt_als_close(b);
	free(d);
	knytt_free(buf);
	knytt_als_close(a);
	free_planted(&p);
}
END_TEST

START_TEST(als_load_fuzz)
{
	/* Every truncation and many random damages are refused cleanly. */
	planted p = make_planted(31);
	knytt_als *a = make_als(4, 0.5f, 2.0f, 2, KNYTT_ALS_CG, 1);
	ck_assert_int_eq(knytt_als_train(a, p.train), 0);
	void *buf;
	size_t len;
	ck_assert_int_eq(knytt_als_save_buffer(a, &buf, &len), 0);
	knytt_als *b;
	ck_assert_int_eq(knytt_als_create(&b), 0);
	size_t step = tu_sanitize() ? 97 : 7;
	for (size_t n = 0; n < len; n += step)
		ck_assert_int_eq(knytt_als_load_buffer(b, buf, n),
				 KNYTT_ECORRUPT);
	unsigned char *d = malloc(len);
	uint64_t seed = 5;
	for (int r = 0; r < 300; r++) {
		memcpy(d, buf, len);
		int flips = 1 + (int)(tu_rand(&seed) % 4);
		for (int f = 0; f < flips; f++)
			d[tu_rand(&seed) % len] ^=
				(unsigned char)(1 + tu_rand(&seed) % 255);
		int rc = knytt_als_load_buffer(b, d, len);
		ck_assert_msg(rc == KNYTT_ECORRUPT || rc == KNYTT_EVERSION,
			      "damage %d gave %d", r, rc);
	}
	free(d);
	knytt_free(buf);
	knytt_als_close(b);
	knytt_als_close(a);
	free_planted(&p);
}
END_TEST

START_TEST(als_load_fixture_v1)
{
	/* tests/fixtures/als-v1.model: 3 users, 3 items, 2 factors, written
	 * by format version 1; it must keep loading to these values. */
	static const float users[6] = {
		0x1.ae26dcp-7f,	 -0x1.79cfc8p-1f, -0x1.2daabap-5f,
		-0x1.44f6d6p-1f, -0x1.cf411ep-1f, 0x1.0a6a3cp-7f};
	static const float items[6] = {0x1.15dc5p-5f,  -0x1.c97cc4p-1f,
				       -0x1.02d476p-5f, -0x1.630a3p+0f,
				       -0x1.0fdc42p+0f, 0x1.0b8a4ep-5f};
	knytt_als *a;
	ck_assert_int_eq(knytt_als_create(&a), 0);
	int rc = knytt_als_load(a, "tests/fixtures/als-v1.model");
	if (rc == KNYTT_EIO) {
		fprintf(stderr, "SKIP: tests/fixtures/als-v1.model not found "
				"(run from the source tree)\n");
		knytt_als_close(a);
		return;
	}
	ck_assert_int_eq(rc, 0);
	ck_assert_uint_eq(knytt_als_factors(a), 2);
	ck_assert_uint_eq(knytt_als_users(a), 3);
	ck_assert_uint_eq(knytt_als_items(a), 3);
	float u[6], it[6];
	ck_assert_int_eq(knytt_als_user_factors(a, 0, 3, u), 0);
	ck_assert_int_eq(knytt_als_item_factors(a, 0, 3, it), 0);
	ck_assert_int_eq(memcmp(u, users, sizeof u), 0);
	ck_assert_int_eq(memcmp(it, items, sizeof it), 0);
	knytt_als_close(a);
}
END_TEST

Suite *model_suite(void)
{
	Suite *s = suite_create("model");
	TCase *tc = tcase_create("matrix");
	tcase_add_test(tc, matrix_weights_and_duplicates);
	tcase_add_test(tc, matrix_decay_and_errors);
	tcase_add_test(tc, matrix_recency);
	suite_add_tcase(s, tc);
	tc = tcase_create("eval");
	tcase_add_test(tc, loo_metrics_by_hand);
	tcase_add_test(tc, loo_constant_model_scores_zero);
	tcase_add_test(tc, full_metrics_by_hand);
	tcase_add_test(tc, ncf_parser_small_files);
	tcase_add_test(tc, ncf_parser_real_files);
	suite_add_tcase(s, tc);
	tc = tcase_create("als");
	tcase_add_test(tc, als_recovers_planted_structure);
	tcase_add_loop_test(tc, als_fold_in_equals_sweep_cholesky, 0, 2);
	tcase_add_loop_test(tc, als_fold_in_equals_sweep_cg, 0, 3);
	tcase_add_test(tc, als_deterministic);
	tcase_add_test(tc, als_progress_loss_and_cancel);
	tcase_add_test(tc, als_bad_settings);
	tcase_add_test(tc, als_save_load_round_trip);
	tcase_add_test(tc, als_load_fuzz);
	tcase_add_test(tc, als_load_fixture_v1);
	suite_add_tcase(s, tc);
	return s;
}
