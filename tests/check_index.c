/*
 * check_index.c -- knytt_index: recall against brute force, churn,
 * filters, quantization, persistence, corruption, concurrency and the
 * documented errors.
 */
#include "../lib/internal.h"
#include "../lib/index/hnsw.h"
#include "../lib/vec/half.h"
#include <limits.h>
#include "testutil.h"

#include <math.h>
#include <pthread.h>
#include <unistd.h>

enum { N = 20000, D = 32, NQ = 200, K = 10, NCL = 40 };

static float *base_v, *query_v;

static void data_setup(void)
{
	/* +1000 rows beyond N for tests that add more later */
	base_v = tu_mixture(N + 1000, D, NCL, 8, 11, 1, NULL);
	query_v = tu_mixture(NQ, D, NCL, 8, 11, 2, NULL);
}

static void data_teardown(void)
{
	free(base_v);
	free(query_v);
}

static knytt_index *make(knytt_index_kind kind, knytt_metric metric,
			 knytt_quant quant)
{
	knytt_index *ix = NULL;
	ck_assert_int_eq(knytt_index_create(&ix), KNYTT_OK);
	ck_assert_int_eq(knytt_index_set_kind(ix, kind), KNYTT_OK);
	ck_assert_int_eq(knytt_index_set_metric(ix, metric), KNYTT_OK);
	ck_assert_int_eq(knytt_index_set_quant(ix, quant), KNYTT_OK);
	ck_assert_int_eq(knytt_index_set_m(ix, 16), KNYTT_OK);
	ck_assert_int_eq(knytt_index_set_ef_construction(ix, 100), KNYTT_OK);
	ck_assert_int_eq(knytt_index_open(ix, D), KNYTT_OK);
	return ix;
}

static uint64_t *iota(size_t n, uint64_t off)
{
	uint64_t *l = malloc(n * sizeof *l);
	for (size_t i = 0; i < n; i++)
		l[i] = i + off;
	return l;
}

/* recall@K of the index against exact ids (labels = row + off) */
static double recall(const knytt_index *ix, knytt_metric m,
		     const float *x, size_t n, uint64_t off, unsigned ef)
{
	uint64_t *gt = malloc(NQ * K * sizeof *gt), got[K];
	ck_assert_int_eq(knytt_exact_knn(m, D, x, n, query_v, NQ, K, gt, NULL),
			 KNYTT_OK);
	size_t hit = 0;
	for (size_t i = 0; i < NQ; i++) {
		int r = knytt_index_search(ix, query_v + i * D, D, K, ef, got,
					   NULL);
		ck_assert_int_eq(r, K);
		for (size_t a = 0; a < K; a++)
			for (size_t b = 0; b < K; b++)
				hit += got[a] == gt[i * K + b] + off;
	}
	free(gt);
	return (double)hit / (NQ * K);
}

/* a and b give query q (dim floats) the same K labels and distances */
static void same_answer(const knytt_index *a, const knytt_index *b,
			const float *q, uint32_t dim, unsigned ef)
{
	uint64_t x[K], y[K];
	float dx[K], dy[K];
	ck_assert_int_eq(knytt_index_search(a, q, dim, K, ef, x, dx), K);
	ck_assert_int_eq(knytt_index_search(b, q, dim, K, ef, y, dy), K);
	ck_assert_mem_eq(x, y, sizeof x);
	ck_assert_mem_eq(dx, dy, sizeof dx);
}

START_TEST(hnsw_recall_against_brute_force)
{
	static const knytt_metric ms[3] = { KNYTT_METRIC_L2, KNYTT_METRIC_IP,
					    KNYTT_METRIC_COSINE };
	knytt_index *ix = make(KNYTT_INDEX_HNSW, ms[_i], KNYTT_QUANT_NONE);
	uint64_t *lab = iota(N, 0);
	ck_assert_int_eq(knytt_index_add_batch(ix, N, lab, base_v, D, 1),
			 KNYTT_OK);
	ck_assert_uint_eq(knytt_index_count(ix), N);
	double r = recall(ix, ms[_i], base_v, N, 0, 100);
	ck_assert_msg(r >= 0.95, "metric %d recall@10 %.4f < 0.95", ms[_i], r);
	/* distances are true distances, nearest first */
	uint64_t got[K];
	float dd[K];
	ck_assert_int_eq(knytt_index_search(ix, query_v, D, K, 100, got, dd),
			 K);
	for (int i = 0; i < K; i++) {
		float v[D];
		ck_assert_int_eq(knytt_index_get(ix, got[i], v, D), KNYTT_OK);
		float want = knytt_distance(ms[_i], query_v, base_v + got[i] * D,
					    D);
		ck_assert_float_eq_tol(dd[i], want, 1e-3 * (fabsf(want) + 1));
		if (i)
			ck_assert(dd[i] >= dd[i - 1]);
	}
	free(lab);
	knytt_index_close(ix);
}
END_TEST

START_TEST(parallel_build_keeps_recall)
{
	knytt_index *ix = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
			       KNYTT_QUANT_NONE);
	uint64_t *lab = iota(N, 1000);
	ck_assert_int_eq(knytt_index_add_batch(ix, N, lab, base_v, D, 2),
			 KNYTT_OK);
	double r = recall(ix, KNYTT_METRIC_L2, base_v, N, 1000, 100);
	ck_assert_msg(r >= 0.95, "2-thread build recall %.4f", r);
	free(lab);
	knytt_index_close(ix);
}
END_TEST

START_TEST(single_adds_equal_seeded_batch)
{
	/* same seed, same order, one thread: the same graph */
	size_t n = 3000;
	knytt_index *a = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
			      KNYTT_QUANT_NONE);
	knytt_index *b = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
			      KNYTT_QUANT_NONE);
	uint64_t *lab = iota(n, 0);
	ck_assert_int_eq(knytt_index_add_batch(a, n, lab, base_v, D, 1),
			 KNYTT_OK);
	for (size_t i = 0; i < n; i++)
		ck_assert_int_eq(knytt_index_add(b, i, base_v + i * D, D),
				 KNYTT_OK);
	for (size_t i = 0; i < 50; i++)
		same_answer(a, b, query_v + i * D, D, 40);
	free(lab);
	knytt_index_close(a);
	knytt_index_close(b);
}
END_TEST

START_TEST(churn_remove_readd_half)
{
	knytt_index *ix = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
			       KNYTT_QUANT_NONE);
	uint64_t *lab = iota(N, 0);
	ck_assert_int_eq(knytt_index_add_batch(ix, N, lab, base_v, D, 0),
			 KNYTT_OK);
	size_t slots_before = knytt_index_memory(ix);
	/* remove every other item, check, then add them back one by one */
	for (size_t i = 0; i < N; i += 2)
		ck_assert_int_eq(knytt_index_remove(ix, i), KNYTT_OK);
	ck_assert_uint_eq(knytt_index_count(ix), N / 2);
	ck_assert(!knytt_index_contains(ix, 0));
	ck_assert(knytt_index_contains(ix, 1));
	/* removed labels never come back while removed */
	uint64_t got[K];
	for (size_t q = 0; q < NQ; q++) {
		int r = knytt_index_search(ix, query_v + q * D, D, K, 100, got,
					   NULL);
		ck_assert_int_eq(r, K);
		for (int j = 0; j < K; j++)
			ck_assert_msg(got[j] % 2 == 1, "removed %llu returned",
				      (unsigned long long)got[j]);
	}
	for (size_t i = 0; i < N; i += 2)
		ck_assert_int_eq(knytt_index_add(ix, i, base_v + i * D, D),
				 KNYTT_OK);
	ck_assert_uint_eq(knytt_index_count(ix), N);
	/* slots were reused: memory did not grow by half */
	ck_assert_uint_le(knytt_index_memory(ix),
			  slots_before + slots_before / 10);
	double r = recall(ix, KNYTT_METRIC_L2, base_v, N, 0, 100);
	ck_assert_msg(r >= 0.95, "recall after churn %.4f", r);
	free(lab);
	knytt_index_close(ix);
}
END_TEST

START_TEST(remove_everything_then_add_again)
{
	knytt_index *ix = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
			       KNYTT_QUANT_NONE);
	for (uint64_t i = 0; i < 500; i++)
		ck_assert_int_eq(knytt_index_add(ix, i, base_v + i * D, D), 0);
	for (uint64_t i = 0; i < 500; i++)
		ck_assert_int_eq(knytt_index_remove(ix, (i * 7) % 500), 0);
	ck_assert_uint_eq(knytt_index_count(ix), 0);
	uint64_t got[K];
	ck_assert_int_eq(knytt_index_search(ix, query_v, D, K, 0, got, NULL),
			 0);
	ck_assert_uint_eq(got[0], UINT64_MAX);
	for (uint64_t i = 0; i < 300; i++)
		ck_assert_int_eq(knytt_index_add(ix, i + 7, base_v + i * D, D),
				 0);
	ck_assert_int_eq(knytt_index_search(ix, base_v + 5 * D, D, 1, 50,
					    got, NULL),
			 1);
	ck_assert_uint_eq(got[0], 12);
	knytt_index_close(ix);
}
END_TEST

/* Issue 12 item 19: ef = 1e9 grew the search buffers towards gigabytes,
 * and a failed growth returned 0 results as a success.  ef is clamped
 * (KNYTT_INDEX_MAX_EF, then the item count) and a failed growth is
 * KNYTT_ENOMEM. */
START_TEST(huge_ef_is_bounded)
{
	knytt_index *ix = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
			       KNYTT_QUANT_NONE);
	enum { CNT = 2000 };
	for (uint64_t i = 0; i < CNT; i++)
		ck_assert_int_eq(knytt_index_add(ix, i, base_v + i * D, D), 0);
	uint64_t got[K];
	float dd[K];
	/* the buffers must grow for ef 1500 (the build used 100) */
	knytt__hnsw_fail_growth(1);
	int rc = knytt_index_search(ix, query_v, D, K, 1500, got, dd);
	knytt__hnsw_fail_growth(0);
	ck_assert_int_eq(rc, KNYTT_ENOMEM);
	ck_assert_uint_eq(got[0], UINT64_MAX);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "out of memory"));
	/* ef 1e9: the answer of a search over every item, in buffers of a
	 * few entries per item */
	uint64_t all[K];
	ck_assert_int_eq(knytt_index_search(ix, query_v, D, K, 1000000000u,
					    got, NULL),
			 K);
	ck_assert_int_eq(knytt_index_search(ix, query_v, D, K, CNT, all,
					    NULL),
			 K);
	for (int i = 0; i < K; i++)
		ck_assert_uint_eq(got[i], all[i]);
	size_t entries = knytt__hnsw_scratch_entries(ix);
	ck_assert_msg(entries <= 8 * CNT, "search buffers hold %zu entries",
		      entries);
	/* UINT_MAX too, through the filtered and the batch paths */
	ck_assert_int_eq(knytt_index_search_bitset(ix, query_v, D, K, UINT_MAX,
						   NULL, 0, got, NULL),
			 0);
	uint64_t bl[2 * K];
	ck_assert_int_eq(knytt_index_search_batch(ix, 2, query_v, D, K,
						  UINT_MAX, 1, bl, NULL),
			 0);
	ck_assert_uint_ne(bl[K], UINT64_MAX);
	ck_assert_uint_le(knytt__hnsw_scratch_entries(ix), 8 * CNT);
	knytt_index_close(ix);
}
END_TEST

START_TEST(upsert_replaces_vector)
{
	knytt_index *ix = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
			       KNYTT_QUANT_NONE);
	for (uint64_t i = 0; i < 1000; i++)
		ck_assert_int_eq(knytt_index_add(ix, i, base_v + i * D, D), 0);
	ck_assert_int_eq(knytt_index_add(ix, 5, base_v, D), KNYTT_EEXIST);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "upsert"));
	/* move label 5 onto item 700's vector */
	ck_assert_int_eq(knytt_index_upsert(ix, 5, base_v + 700 * D, D), 0);
	ck_assert_uint_eq(knytt_index_count(ix), 1000);
	float v[D];
	ck_assert_int_eq(knytt_index_get(ix, 5, v, D), KNYTT_OK);
	ck_assert_mem_eq(v, base_v + 700 * D, sizeof v);
	uint64_t got[2];
	ck_assert_int_eq(knytt_index_search(ix, base_v + 700 * D, D, 2, 50,
					    got, NULL),
			 2);
	ck_assert((got[0] == 5 && got[1] == 700) ||
		  (got[0] == 700 && got[1] == 5));
	/* upsert of a new label adds it */
	ck_assert_int_eq(knytt_index_upsert(ix, 99999, base_v, D), 0);
	ck_assert_uint_eq(knytt_index_count(ix), 1001);
	knytt_index_close(ix);
}
END_TEST

/* -------------------------------------------------------------- filters */

typedef struct fctx {
	unsigned mod;
	_Atomic size_t calls;
} fctx;

static int pass_mod(uint64_t label, void *ctx)
{
	fctx *c = ctx;
	c->calls++;
	return label % c->mod == 0;
}

START_TEST(filter_matches_filtered_brute_force)
{
	static const unsigned mods[3] = { 2, 10, 100 }; /* 50%, 10%, 1% */
	unsigned mod = mods[_i];
	knytt_index *ix = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
			       KNYTT_QUANT_NONE);
	uint64_t *lab = iota(N, 0);
	ck_assert_int_eq(knytt_index_add_batch(ix, N, lab, base_v, D, 0),
			 KNYTT_OK);
	/* filtered ground truth: exact search over the passing rows */
	size_t np = 0;
	float *sub = malloc(N * D * sizeof *sub);
	uint64_t *subl = malloc(N * sizeof *subl);
	for (size_t i = 0; i < N; i++)
		if (i % mod == 0) {
			memcpy(sub + np * D, base_v + i * D, D * sizeof *sub);
			subl[np++] = i;
		}
	uint64_t *gt = malloc(NQ * K * sizeof *gt);
	knytt_exact_knn(KNYTT_METRIC_L2, D, sub, np, query_v, NQ, K, gt, NULL);
	size_t nbits = N;
	uint64_t *bits = calloc((nbits + 63) / 64, sizeof *bits);
	for (size_t i = 0; i < N; i += mod)
		bits[i / 64] |= 1ULL << (i % 64);
	fctx c = { mod, 0 };
	size_t hit_fn = 0, hit_bits = 0;
	for (size_t q = 0; q < NQ; q++) {
		uint64_t a[K], b[K];
		ck_assert_int_eq(knytt_index_search_filter(ix, query_v + q * D,
							   D, K, 100, pass_mod,
							   &c, a, NULL),
				 K);
		ck_assert_int_eq(knytt_index_search_bitset(ix, query_v + q * D,
							   D, K, 100, bits,
							   nbits, b, NULL),
				 K);
		for (int x = 0; x < K; x++) {
			ck_assert_msg(a[x] % mod == 0, "filter violated");
			ck_assert_msg(b[x] % mod == 0, "bitset violated");
			for (int y = 0; y < K; y++) {
				hit_fn += a[x] == subl[gt[q * K + y]];
				hit_bits += b[x] == subl[gt[q * K + y]];
			}
		}
	}
	double rf = (double)hit_fn / (NQ * K), rb = (double)hit_bits / (NQ * K);
	ck_assert_msg(rf >= 0.95, "1/%u: predicate recall %.4f", mod, rf);
	ck_assert_msg(rb >= 0.95, "1/%u: bitset recall %.4f", mod, rb);
	ck_assert_uint_gt(c.calls, 0);
	free(sub);
	free(subl);
	free(gt);
	free(bits);
	free(lab);
	knytt_index_close(ix);
}
END_TEST

static int pass_none(uint64_t label, void *ctx)
{
	(void)label;
	(void)ctx;
	return 0;
}

START_TEST(filter_edge_cases)
{
	knytt_index *ix = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
			       KNYTT_QUANT_NONE);
	for (uint64_t i = 0; i < 2000; i++)
		ck_assert_int_eq(knytt_index_add(ix, i, base_v + i * D, D), 0);
	uint64_t got[K];
	float dd[K];
	/* nothing passes */
	ck_assert_int_eq(knytt_index_search_filter(ix, query_v, D, K, 50,
						   pass_none, NULL, got, dd),
			 0);
	ck_assert_uint_eq(got[0], UINT64_MAX);
	ck_assert(isinf(dd[K - 1]));
	/* three pass: exactly those, k > passing count */
	uint64_t bits[1] = { (1ULL << 3) | (1ULL << 40) | (1ULL << 63) };
	ck_assert_int_eq(knytt_index_search_bitset(ix, query_v, D, K, 50, bits,
						   64, got, NULL),
			 3);
	uint64_t s[3] = { got[0], got[1], got[2] };
	ck_assert(s[0] != s[1] && s[1] != s[2] && s[0] != s[2]);
	for (int i = 0; i < 3; i++)
		ck_assert(s[i] == 3 || s[i] == 40 || s[i] == 63);
	ck_assert_uint_eq(got[3], UINT64_MAX);
	/* nbits 0: nothing passes; NULL fn / bits are errors */
	ck_assert_int_eq(knytt_index_search_bitset(ix, query_v, D, K, 50, NULL,
						   0, got, NULL),
			 0);
	ck_assert_int_eq(knytt_index_search_bitset(ix, query_v, D, K, 50, NULL,
						   5, got, NULL),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_index_search_filter(ix, query_v, D, K, 50, NULL,
						   NULL, got, NULL),
			 KNYTT_EINVAL);
	knytt_index_close(ix);
}
END_TEST

/* --------------------------------------------------------- quantization */

/* INT8_ONLY ranks by the f32 query against the stored codes: every
 * distance returned is the query's distance to the decoded vector (what
 * knytt_index_get returns), nearest first.  (Rounding the query to codes
 * too, as the walk does, made these differ.) */
START_TEST(int8_only_distances_are_asymmetric)
{
	static const knytt_metric ms[3] = { KNYTT_METRIC_L2, KNYTT_METRIC_IP,
					    KNYTT_METRIC_COSINE };
	knytt_metric m = ms[_i];
	knytt_index *ix = make(KNYTT_INDEX_HNSW, m, KNYTT_QUANT_INT8_ONLY);
	size_t n = 5000;
	uint64_t *lab = iota(n, 0);
	ck_assert_int_eq(knytt_index_add_batch(ix, n, lab, base_v, D, 0), 0);
	for (size_t qi = 0; qi < 20; qi++) {
		const float *q = query_v + qi * D;
		float qn[D];
		memcpy(qn, q, sizeof qn);
		if (m == KNYTT_METRIC_COSINE)
			knytt__normalize(qn, D);
		uint64_t got[K];
		float dd[K];
		ck_assert_int_eq(knytt_index_search(ix, q, D, K, 200, got, dd),
				 K);
		for (int i = 0; i < K; i++) {
			float v[D];
			ck_assert_int_eq(knytt_index_get(ix, got[i], v, D),
					 KNYTT_OK);
			double want = 0;
			for (int j = 0; j < D; j++)
				want += m == KNYTT_METRIC_L2
						? (double)(qn[j] - v[j]) * (qn[j] - v[j])
						: -(double)qn[j] * v[j];
			if (m == KNYTT_METRIC_COSINE)
				want += 1.0;
			ck_assert_msg(fabs(dd[i] - want) <=
					      1e-5 * (fabs(want) + 1.0),
				      "metric %d query %zu rank %d: %.6f, want "
				      "%.6f",
				      m, qi, i, dd[i], want);
			if (i)
				ck_assert(dd[i] >= dd[i - 1]);
		}
	}
	free(lab);
	knytt_index_close(ix);
}
END_TEST

/* Mean squared decode error of rows [0, n) of base_v in @p ix. */
static double decode_mse(const knytt_index *ix, size_t n)
{
	double e = 0;
	for (size_t i = 0; i < n; i++) {
		float v[D];
		ck_assert_int_eq(knytt_index_get(ix, i, v, D), KNYTT_OK);
		for (int j = 0; j < D; j++) {
			double r = v[j] - base_v[i * D + j];
			e += r * r;
		}
	}
	return e / (double)(n * D);
}

/* The L2 quantizer's step as the full range gives it (quant.c). */
static float full_range_step(size_t n)
{
	float step = 0;
	for (int j = 0; j < D; j++) {
		float lo = INFINITY, hi = -INFINITY;
		for (size_t i = 0; i < n; i++) {
			lo = fminf(lo, base_v[i * D + j]);
			hi = fmaxf(hi, base_v[i * D + j]);
		}
		step = fmaxf(step, (hi - lo) / 254.0f);
	}
	return step;
}

/* A large sample narrows the step where the tails are mostly empty: less
 * squared error than the full range's step gives (half a step rounding,
 * step^2 / 12 per coordinate); a small one keeps the full range, so every
 * sample row decodes within half a step. */
START_TEST(int8_step_fits_the_sample)
{
	knytt_index *big = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
				KNYTT_QUANT_INT8_ONLY);
	uint64_t *lab = iota(N, 0);
	ck_assert_int_eq(knytt_index_add_batch(big, N, lab, base_v, D, 0), 0);
	float full = full_range_step(N);
	double mse = decode_mse(big, N);
	ck_assert_msg(mse < 0.92 * (double)full * full / 12.0,
		      "decode error %.3g, full-range step gives %.3g", mse,
		      (double)full * full / 12.0);
	knytt_index_close(big);

	size_t n = 500;
	knytt_index *small = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
				  KNYTT_QUANT_INT8_ONLY);
	ck_assert_int_eq(knytt_index_add_batch(small, n, lab, base_v, D, 0),
			 0);
	float st = full_range_step(n);
	for (size_t i = 0; i < n; i++) {
		float v[D];
		ck_assert_int_eq(knytt_index_get(small, i, v, D), KNYTT_OK);
		for (int j = 0; j < D; j++)
			ck_assert_float_le(fabsf(v[j] - base_v[i * D + j]),
					   0.5f * st * 1.001f);
	}
	knytt_index_close(small);
	free(lab);
}
END_TEST

START_TEST(int8_recall_and_memory)
{
	knytt_index *f = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
			      KNYTT_QUANT_NONE);
	knytt_index *q8 = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
			       KNYTT_QUANT_INT8);
	knytt_index *q8o = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
				KNYTT_QUANT_INT8_ONLY);
	uint64_t *lab = iota(N, 0);
	ck_assert_int_eq(knytt_index_train_quant(q8, N, base_v, D), KNYTT_OK);
	ck_assert_int_eq(knytt_index_add_batch(f, N, lab, base_v, D, 0), 0);
	ck_assert_int_eq(knytt_index_add_batch(q8, N, lab, base_v, D, 0), 0);
	ck_assert_int_eq(knytt_index_add_batch(q8o, N, lab, base_v, D, 0), 0);
	double r8 = recall(q8, KNYTT_METRIC_L2, base_v, N, 0, 100);
	double r8o = recall(q8o, KNYTT_METRIC_L2, base_v, N, 0, 200);
	ck_assert_msg(r8 >= 0.95, "int8 + re-rank recall %.4f", r8);
	ck_assert_msg(r8o >= 0.95, "int8 only recall %.4f at ef 200", r8o);
	double ratio = (double)knytt_index_vector_memory(q8o) /
		       (double)knytt_index_vector_memory(f);
	ck_assert_msg(ratio <= 0.3, "int8-only vector memory ratio %.3f", ratio);
	ck_assert_uint_lt(knytt_index_memory(q8o), knytt_index_memory(f));
	/* get decodes to within half a step per dimension */
	float v[D];
	ck_assert_int_eq(knytt_index_get(q8o, 17, v, D), KNYTT_OK);
	for (int j = 0; j < D; j++)
		ck_assert_float_eq_tol(v[j], base_v[17 * D + j], 0.1f);
	/* re-ranked distances are exact */
	uint64_t got[K];
	float dd[K];
	knytt_index_search(q8, query_v, D, K, 64, got, dd);
	ck_assert_float_eq_tol(dd[0],
			       knytt_distance(KNYTT_METRIC_L2, query_v,
					      base_v + got[0] * D, D),
			       1e-3);
	/* training after adds is refused; f32 indexes have no quantizer */
	ck_assert_int_eq(knytt_index_train_quant(q8, N, base_v, D),
			 KNYTT_ESTATE);
	ck_assert_int_eq(knytt_index_train_quant(f, N, base_v, D),
			 KNYTT_ENOTSUP);
	free(lab);
	knytt_index_close(f);
	knytt_index_close(q8);
	knytt_index_close(q8o);
}
END_TEST

START_TEST(int8_cosine_and_ip)
{
	static const knytt_metric ms[2] = { KNYTT_METRIC_COSINE,
					    KNYTT_METRIC_IP };
	knytt_index *ix = make(KNYTT_INDEX_HNSW, ms[_i], KNYTT_QUANT_INT8);
	uint64_t *lab = iota(N, 0);
	ck_assert_int_eq(knytt_index_add_batch(ix, N, lab, base_v, D, 0), 0);
	double r = recall(ix, ms[_i], base_v, N, 0, 100);
	ck_assert_msg(r >= 0.95, "metric %d int8 recall %.4f", ms[_i], r);
	free(lab);
	knytt_index_close(ix);
}
END_TEST

/*
 * KNYTT_QUANT_F16: recall against brute force on the f32 vectors, each
 * stored value the f16 rounding of the input, distances those of the f32
 * query to the rounded vectors, half the f32 index's vector bytes; values
 * beyond f16's range refused (cosine excepted: it stores unit vectors).
 */
START_TEST(f16_recall_values_and_memory)
{
	static const knytt_metric ms[3] = { KNYTT_METRIC_L2, KNYTT_METRIC_IP,
					    KNYTT_METRIC_COSINE };
	knytt_metric m = ms[_i % 3];
	knytt_index_kind kind = _i < 3 ? KNYTT_INDEX_HNSW : KNYTT_INDEX_FLAT;
	knytt_index *ix = make(kind, m, KNYTT_QUANT_F16);
	knytt_index *f = make(kind, m, KNYTT_QUANT_NONE);
	size_t n = kind == KNYTT_INDEX_HNSW ? N : 3000;
	uint64_t *lab = iota(n, 0);
	ck_assert_int_eq(knytt_index_add_batch(ix, n, lab, base_v, D, 2), 0);
	ck_assert_int_eq(knytt_index_add_batch(f, n, lab, base_v, D, 2), 0);
	double r = recall(ix, m, base_v, n, 0, 100);
	ck_assert_msg(r >= (kind == KNYTT_INDEX_FLAT ? 0.99 : 0.95),
		      "metric %d kind %d recall@10 %.4f", m, kind, r);
	ck_assert_uint_eq(2 * knytt_index_vector_memory(ix),
			  knytt_index_vector_memory(f));
	/* stored values are the inputs rounded to f16 */
	float v[D], w[D];
	for (uint64_t i = 0; i < n; i += 97) {
		ck_assert_int_eq(knytt_index_get(ix, i, v, D), 0);
		ck_assert_int_eq(knytt_index_get(f, i, w, D), 0);
		for (int j = 0; j < D; j++) {
			ck_assert_float_eq(v[j],
					   knytt__f16_to_f32(
						   knytt__f32_to_f16(w[j])));
			ck_assert(fabsf(v[j] - w[j]) <=
				  0x1p-11f * fabsf(w[j]) + 0x1p-24f);
		}
	}
	/* distances: the f32 query against the rounded vector */
	uint64_t got[K];
	float dd[K];
	ck_assert_int_eq(knytt_index_search(ix, query_v, D, K, 100, got, dd),
			 K);
	float q[D];
	memcpy(q, query_v, sizeof q);
	if (m == KNYTT_METRIC_COSINE)
		knytt__normalize(q, D);
	for (int i = 0; i < K; i++) {
		ck_assert_int_eq(knytt_index_get(ix, got[i], v, D), 0);
		double want = 0;
		for (int j = 0; j < D; j++)
			want += m == KNYTT_METRIC_L2
					? ((double)q[j] - v[j]) * (q[j] - v[j])
					: (double)q[j] * v[j];
		if (m != KNYTT_METRIC_L2)
			want = (m == KNYTT_METRIC_COSINE) - want;
		ck_assert_msg(fabs(dd[i] - want) <= 1e-4 * (fabs(want) + 1),
			      "result %d: %g, want %g", i, dd[i], want);
		if (i)
			ck_assert(dd[i] >= dd[i - 1]);
	}
	/* out of range: refused, nothing changed; cosine normalizes first */
	memcpy(v, base_v, sizeof v);
	v[3] = 70000.0f;
	size_t before = knytt_index_count(ix);
	int rc = knytt_index_add(ix, 999999, v, D);
	if (m == KNYTT_METRIC_COSINE) {
		ck_assert_int_eq(rc, KNYTT_OK);
		ck_assert_int_eq(knytt_index_search(ix, v, D, 1, 50, got, NULL),
				 1);
		ck_assert_uint_eq(got[0], 999999);
	} else {
		ck_assert_int_eq(rc, KNYTT_EINVAL);
		ck_assert_msg(strstr(knytt_errmsg(), "value 3 is 70000") &&
				      strstr(knytt_errmsg(), "f16"),
			      "%s", knytt_errmsg());
		ck_assert_uint_eq(knytt_index_count(ix), before);
		ck_assert(!knytt_index_contains(ix, 999999));
		/* a query keeps f32: any finite value */
		ck_assert_int_eq(knytt_index_search(ix, v, D, K, 0, got, NULL),
				 K);
		uint64_t two[2] = { 999998, 999999 };
		float rows[2 * D];
		memcpy(rows, base_v, sizeof rows);
		rows[D + 5] = -65600.0f;
		ck_assert_int_eq(knytt_index_add_batch(ix, 2, two, rows, D, 1),
				 KNYTT_EINVAL);
		ck_assert_msg(strstr(knytt_errmsg(), "row 1: value 5"), "%s",
			      knytt_errmsg());
		rows[D + 5] = -65504.0f; /* the largest half fits */
		ck_assert_int_eq(knytt_index_add_batch(ix, 2, two, rows, D, 1),
				 KNYTT_OK);
		ck_assert_int_eq(knytt_index_get(ix, 999999, v, D), 0);
		ck_assert_float_eq(v[5], -65504.0f);
	}
	ck_assert_int_eq(knytt_index_train_quant(ix, 1, base_v, D),
			 KNYTT_ENOTSUP);
	free(lab);
	knytt_index_close(ix);
	knytt_index_close(f);
}
END_TEST

START_TEST(flat_is_exact)
{
	knytt_index *ix = make(KNYTT_INDEX_FLAT, KNYTT_METRIC_L2,
			       KNYTT_QUANT_NONE);
	uint64_t *lab = iota(5000, 0);
	ck_assert_int_eq(knytt_index_add_batch(ix, 5000, lab, base_v, D, 0), 0);
	ck_assert_int_eq(knytt_index_remove(ix, 3), 0);
	uint64_t gt[K + 1], got[K];
	for (int q = 0; q < 20; q++) {
		knytt_exact_knn(KNYTT_METRIC_L2, D, base_v, 5000,
				query_v + q * D, 1, K + 1, gt, NULL);
		ck_assert_int_eq(knytt_index_search(ix, query_v + q * D, D, K, 0,
						    got, NULL),
				 K);
		/* ground truth without the removed row 3 */
		for (int i = 0, j = 0; i < K; i++, j++) {
			if (gt[j] == 3)
				j++;
			ck_assert_uint_eq(got[i], gt[j]);
		}
	}
	free(lab);
	knytt_index_close(ix);
}
END_TEST

START_TEST(batch_search_equals_single)
{
	knytt_index *ix = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
			       KNYTT_QUANT_NONE);
	uint64_t *lab = iota(5000, 0);
	ck_assert_int_eq(knytt_index_add_batch(ix, 5000, lab, base_v, D, 0), 0);
	uint64_t *bl = malloc(NQ * K * sizeof *bl);
	float *bd = malloc(NQ * K * sizeof *bd);
	ck_assert_int_eq(knytt_index_search_batch(ix, NQ, query_v, D, K, 50, 0,
						  bl, bd),
			 KNYTT_OK);
	for (size_t q = 0; q < NQ; q++) {
		uint64_t got[K];
		float dd[K];
		knytt_index_search(ix, query_v + q * D, D, K, 50, got, dd);
		ck_assert_mem_eq(got, bl + q * K, sizeof got);
		ck_assert_mem_eq(dd, bd + q * K, sizeof dd);
	}
	ck_assert_int_eq(knytt_index_search_batch(ix, NQ, query_v, D + 1, K, 50,
						  0, bl, bd),
			 KNYTT_EINVAL);
	free(bl);
	free(bd);
	free(lab);
	knytt_index_close(ix);
}
END_TEST

/* ---------------------------------------------------------- persistence */

static char *tmp_path(const char *name)
{
	char *p = malloc(256);
	snprintf(p, 256, "/tmp/knytt-test-%d-%s", (int)getpid(), name);
	return p;
}

/* An index nothing was added to saves and loads (its upper-level pool
 * was never allocated: the save read 4 bytes from NULL, found by
 * fuzz_engine_model through an engine model without items). */
START_TEST(empty_index_saves_and_loads)
{
	static const knytt_index_kind kinds[2] = { KNYTT_INDEX_HNSW,
						   KNYTT_INDEX_FLAT };
	knytt_index *a = make(kinds[_i], KNYTT_METRIC_L2, KNYTT_QUANT_INT8);
	char *path = tmp_path("empty.idx");
	ck_assert_int_eq(knytt_index_save(a, path), KNYTT_OK);
	knytt_index *b;
	knytt_index_create(&b);
	ck_assert_msg(knytt_index_load(b, path) == KNYTT_OK, "%s",
		      knytt_errmsg());
	ck_assert_uint_eq(knytt_index_count(b), 0);
	ck_assert_uint_eq(knytt_index_dim(b), D);
	uint64_t lab[K];
	float dist[K];
	ck_assert_int_eq(knytt_index_search(b, query_v, D, K, 40, lab, dist),
			 0);
	ck_assert_int_eq(knytt_index_add(b, 5, base_v, D), KNYTT_OK);
	ck_assert_int_eq(knytt_index_search(b, base_v, D, K, 40, lab, dist),
			 1);
	ck_assert_uint_eq(lab[0], 5);
	knytt_index_close(a);
	knytt_index_close(b);
	remove(path);
	free(path);
}
END_TEST

START_TEST(save_load_round_trip)
{
	static const struct {
		knytt_index_kind k;
		knytt_metric m;
		knytt_quant q;
	} cfg[6] = {
		{ KNYTT_INDEX_HNSW, KNYTT_METRIC_L2, KNYTT_QUANT_NONE },
		{ KNYTT_INDEX_HNSW, KNYTT_METRIC_IP, KNYTT_QUANT_F16 },
		{ KNYTT_INDEX_HNSW, KNYTT_METRIC_COSINE, KNYTT_QUANT_INT8 },
		{ KNYTT_INDEX_HNSW, KNYTT_METRIC_IP, KNYTT_QUANT_INT8_ONLY },
		{ KNYTT_INDEX_FLAT, KNYTT_METRIC_L2, KNYTT_QUANT_NONE },
		{ KNYTT_INDEX_FLAT, KNYTT_METRIC_L2, KNYTT_QUANT_INT8 },
	};
	knytt_index *a = make(cfg[_i].k, cfg[_i].m, cfg[_i].q);
	size_t n = 4000;
	uint64_t *lab = iota(n, 77);
	ck_assert_int_eq(knytt_index_add_batch(a, n, lab, base_v, D, 0), 0);
	for (uint64_t i = 0; i < 300; i++) /* tombstones and free slots */
		ck_assert_int_eq(knytt_index_remove(a, 77 + i * 3), 0);
	char *path = tmp_path("rt.idx");
	ck_assert_int_eq(knytt_index_save(a, path), KNYTT_OK);
	knytt_index *b;
	knytt_index_create(&b);
	ck_assert_msg(knytt_index_load(b, path) == KNYTT_OK, "%s",
		      knytt_errmsg());
	ck_assert_uint_eq(knytt_index_count(b), knytt_index_count(a));
	ck_assert_uint_eq(knytt_index_dim(b), D);
	for (size_t q = 0; q < 50; q++)
		same_answer(a, b, query_v + q * D, D, 40);
	/* the loaded index stays writable: same next state as the original */
	for (uint64_t i = 0; i < 500; i++) {
		ck_assert_int_eq(knytt_index_add(a, 900000 + i,
						 base_v + (n + i) * D, D),
				 0);
		ck_assert_int_eq(knytt_index_add(b, 900000 + i,
						 base_v + (n + i) * D, D),
				 0);
	}
	same_answer(a, b, query_v, D, 40);
	/* saving a loaded (mapped) index over its own file works */
	ck_assert_int_eq(knytt_index_save(b, path), KNYTT_OK);
	unlink(path);
	free(path);
	free(lab);
	knytt_index_close(a);
	knytt_index_close(b);
}
END_TEST

static unsigned char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	fseek(f, 0, SEEK_END);
	*len = (size_t)ftell(f);
	fseek(f, 0, SEEK_SET);
	unsigned char *b = malloc(*len);
	ck_assert_uint_eq(fread(b, 1, *len, f), *len);
	fclose(f);
	return b;
}

static void spit(const char *path, const void *b, size_t len)
{
	FILE *f = fopen(path, "wb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(b, 1, len, f), len);
	fclose(f);
}

static int try_load(const char *path)
{
	knytt_index *ix;
	knytt_index_create(&ix);
	int rc = knytt_index_load(ix, path);
	if (rc == KNYTT_OK) { /* must be usable */
		uint64_t got[K];
		knytt_index_search(ix, query_v, D, K, 20, got, NULL);
	}
	knytt_index_close(ix);
	return rc;
}

/* An edited file @p b (@p len bytes), its checksums made valid again,
 * written to @p path and loaded: try_load's answer. */
static int load_edited(const char *path, unsigned char *b, size_t len)
{
	knytt__put_u32(b + 168, knytt__crc32c(0, b + 256, len - 256));
	knytt__put_u32(b + 252, knytt__crc32c(0, b, 252));
	spit(path, b, len);
	return try_load(path);
}

START_TEST(corrupt_truncated_foreign_files)
{
	knytt_index *a = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
			      KNYTT_QUANT_NONE);
	uint64_t *lab = iota(1000, 0);
	ck_assert_int_eq(knytt_index_add_batch(a, 1000, lab, base_v, D, 0), 0);
	char *path = tmp_path("good.idx"), *bad = tmp_path("bad.idx");
	ck_assert_int_eq(knytt_index_save(a, path), 0);
	size_t len;
	unsigned char *orig = slurp(path, &len), *b = malloc(len);

	/* missing file: EIO, names the path */
	ck_assert_int_eq(try_load("/nonexistent/x.idx"), KNYTT_EIO);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "/nonexistent/x.idx"));
	/* every truncation point tried on a sample of lengths */
	for (size_t cut = 0; cut < len; cut += len / 97 + 1) {
		spit(bad, orig, cut);
		ck_assert_int_eq(try_load(bad), KNYTT_ECORRUPT);
	}
	spit(bad, orig, len - 1);
	ck_assert_int_eq(try_load(bad), KNYTT_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "truncated"));
	/* single flipped bytes anywhere */
	for (size_t pos = 0; pos < len; pos += len / 61 + 1) {
		memcpy(b, orig, len);
		b[pos] ^= 0x5a;
		spit(bad, b, len);
		ck_assert_int_eq(try_load(bad), KNYTT_ECORRUPT);
	}
	/* foreign file */
	memset(b, 'x', len);
	spit(bad, b, len);
	ck_assert_int_eq(try_load(bad), KNYTT_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "not a knytt index"));
	/* newer format version, properly sealed */
	memcpy(b, orig, len);
	knytt__put_u32(b + 8, 99);
	ck_assert_int_eq(load_edited(bad, b, len), KNYTT_EVERSION);
	/* valid checksums but a link pointing outside the index */
	memcpy(b, orig, len);
	knytt__put_u32(b + 256 + 8, 0);          /* node 0: first link ... */
	knytt__put_u32(b + 256 + 8 + 4, 123456); /* ... second is bad */
	knytt__put_u32(b + 256 + 4, 2);
	ck_assert_int_eq(load_edited(bad, b, len), KNYTT_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "links outside"));
	/* sealed, but a count that does not match */
	memcpy(b, orig, len);
	knytt__put_u64(b + 88, 999);
	ck_assert_int_eq(load_edited(bad, b, len), KNYTT_ECORRUPT);
	/* the original still loads; a handle with an index cannot load */
	ck_assert_int_eq(try_load(path), KNYTT_OK);
	ck_assert_int_eq(knytt_index_load(a, path), KNYTT_ESTATE);
	unlink(path);
	unlink(bad);
	free(path);
	free(bad);
	free(orig);
	free(b);
	free(lab);
	knytt_index_close(a);
}
END_TEST

/* The index of the v1 fixture (tests/fixtures/make_index_v1.c: row i
 * at label 5000 + i, rows 0..9 removed) over rows all[0..n) answers 20
 * queries exactly (ef covers the index): the queries are rows q * step
 * mod n. */
static void v1_exact_answers(const knytt_index *ix, const float *all,
			     size_t n, size_t step)
{
	for (size_t q = 0; q < 20; q++) {
		const float *qv = all + (q * step % n) * 8;
		uint64_t gt[15], got[5];
		float gd[15], dd[5];
		knytt_exact_knn(KNYTT_METRIC_L2, 8, all, n, qv, 1, 15, gt, gd);
		ck_assert_int_eq(knytt_index_search(ix, qv, 8, 5, (unsigned)n,
						    got, dd),
				 5);
		/* compare distances: equal-distance rows may swap places */
		for (int i = 0, j = 0; i < 5; i++, j++) {
			while (gt[j] < 10) /* removed rows */
				j++;
			ck_assert_uint_ge(got[i], 5010);
			ck_assert_float_eq_tol(dd[i], gd[j], 1e-5);
			ck_assert_float_eq_tol(
				dd[i],
				knytt_distance(KNYTT_METRIC_L2, qv,
					       all + (got[i] - 5000) * 8, 8),
				1e-5);
		}
	}
}

START_TEST(format_v1_fixture_still_loads)
{
	/* written by tests/fixtures/make_index_v1.c when version 1 shipped */
	const char *path = "tests/fixtures/index-v1.idx";
	knytt_index *ix;
	knytt_index_create(&ix);
	ck_assert_msg(knytt_index_load(ix, path) == KNYTT_OK, "%s",
		      knytt_errmsg());
	ck_assert_uint_eq(knytt_index_count(ix), 290);
	ck_assert_uint_eq(knytt_index_dim(ix), 8);
	ck_assert(!knytt_index_contains(ix, 5009));
	ck_assert(knytt_index_contains(ix, 5010));
	float all[300 * 8];
	for (int i = 0; i < 300; i++)
		for (int j = 0; j < 8; j++)
			all[i * 8 + j] = sinf((float)i * (float)(j + 1));
	float v[8];
	ck_assert_int_eq(knytt_index_get(ix, 5123, v, 8), KNYTT_OK);
	ck_assert_mem_eq(v, all + 123 * 8, sizeof v);
	v1_exact_answers(ix, all, 300, 13);
	knytt_index_close(ix);
}
END_TEST

/* Saves @p ix to @p path, checks the file's format version, loads it
 * into a new handle. */
static knytt_index *save_reload(knytt_index *ix, const char *path,
				uint32_t version)
{
	ck_assert_int_eq(knytt_index_save(ix, path), 0);
	size_t len;
	unsigned char *f = slurp(path, &len);
	ck_assert_uint_eq(knytt__get_u32(f + 8), version);
	free(f);
	knytt_index *b;
	knytt_index_create(&b);
	ck_assert_msg(knytt_index_load(b, path) == KNYTT_OK, "%s",
		      knytt_errmsg());
	return b;
}

/* Values that f16 holds exactly (integers 0..255, as SIFT's) and whose
 * sums are exact in f32: the f16 index builds the same graph as the f32
 * one, one thread and the same seed, and answers the same, bit for bit
 * -- the f16 kernels compute what the f32 ones do. */
START_TEST(f16_equals_f32_on_exact_values)
{
	knytt_metric m = _i ? KNYTT_METRIC_IP : KNYTT_METRIC_L2;
	size_t n = 3000;
	float *v = malloc(n * D * sizeof *v);
	uint64_t seed = 31;
	for (size_t i = 0; i < n * D; i++)
		v[i] = (float)(tu_rand(&seed) % 256);
	knytt_index *h = make(KNYTT_INDEX_HNSW, m, KNYTT_QUANT_F16);
	knytt_index *f = make(KNYTT_INDEX_HNSW, m, KNYTT_QUANT_NONE);
	uint64_t *lab = iota(n, 0);
	ck_assert_int_eq(knytt_index_add_batch(h, n, lab, v, D, 1), 0);
	ck_assert_int_eq(knytt_index_add_batch(f, n, lab, v, D, 1), 0);
	for (size_t q = 0; q < 40; q++)
		same_answer(h, f, v + (q * 71 % n) * D, D, 30);
	free(v);
	free(lab);
	knytt_index_close(h);
	knytt_index_close(f);
}
END_TEST

/* Mean squared error of knytt_index_get against rows [0, n) of base_v
 * (normalized for cosine). */
static double stored_mse(const knytt_index *ix, knytt_metric m, size_t n)
{
	double e = 0;
	for (size_t i = 0; i < n; i++) {
		float v[D], x[D];
		memcpy(x, base_v + i * D, sizeof x);
		if (m == KNYTT_METRIC_COSINE)
			knytt__normalize(x, D);
		ck_assert_int_eq(knytt_index_get(ix, i, v, D), KNYTT_OK);
		for (int j = 0; j < D; j++)
			e += (double)(v[j] - x[j]) * (v[j] - x[j]);
	}
	return e / (double)(n * D);
}

/* INT8_ONLY on clustered data codes each vector as its residual from the
 * nearest of up to 256 cells, with a step per dimension (quant.c): less
 * error than the shared step (kept when the sample is too small to
 * learn cells from), recall at least as high, distances the query's to
 * the decoded vectors, and a format-4 file that loads to the same
 * answers; a file whose cells or steps do not fit is corrupt. */
START_TEST(int8_only_residual_codes)
{
	static const knytt_metric ms[3] = { KNYTT_METRIC_L2, KNYTT_METRIC_IP,
					    KNYTT_METRIC_COSINE };
	knytt_metric m = ms[_i];
	knytt_index *r = make(KNYTT_INDEX_HNSW, m, KNYTT_QUANT_INT8_ONLY);
	knytt_index *s = make(KNYTT_INDEX_HNSW, m, KNYTT_QUANT_INT8_ONLY);
	knytt_index *f = make(KNYTT_INDEX_HNSW, m, KNYTT_QUANT_NONE);
	uint64_t *lab = iota(N, 0);
	ck_assert_int_eq(knytt_index_add_batch(r, N, lab, base_v, D, 0), 0);
	ck_assert_int_eq(knytt_index_train_quant(s, 2000, base_v, D), 0);
	ck_assert_int_eq(knytt_index_add_batch(s, N, lab, base_v, D, 0), 0);
	ck_assert_int_eq(knytt_index_add_batch(f, N, lab, base_v, D, 0), 0);
	ck_assert_uint_gt(r->qcells, 1);
	ck_assert_uint_le(r->qcells, 256);
	ck_assert_uint_eq(s->qcells, 0);
	double er = stored_mse(r, m, N), es = stored_mse(s, m, N);
	ck_assert_msg(er < 0.8 * es, "metric %d: residual error %.3g, shared "
		      "%.3g", m, er, es);
	double rr = recall(r, m, base_v, N, 0, 200);
	double rs = recall(s, m, base_v, N, 0, 200);
	ck_assert_msg(rr >= 0.95 && rr >= rs,
		      "metric %d: recall@10 residual %.4f, shared %.4f", m, rr,
		      rs);
	/* one byte per vector beyond the codes, and the cells' centres */
	ck_assert_uint_eq(knytt_index_vector_memory(r),
			  r->cap * (D + 1) +
				  ((size_t)r->qcells + 2) * D * sizeof(float));
	/* each distance is the query's to the decoded vector */
	for (size_t qi = 0; qi < 20; qi++) {
		float qn[D];
		memcpy(qn, query_v + qi * D, sizeof qn);
		if (m == KNYTT_METRIC_COSINE)
			knytt__normalize(qn, D);
		uint64_t got[K];
		float dd[K];
		ck_assert_int_eq(knytt_index_search(r, query_v + qi * D, D, K,
						    100, got, dd), K);
		for (int i = 0; i < K; i++) {
			float v[D];
			ck_assert_int_eq(knytt_index_get(r, got[i], v, D), 0);
			double want = m == KNYTT_METRIC_COSINE ? 1.0 : 0.0;
			for (int j = 0; j < D; j++)
				want += m == KNYTT_METRIC_L2
						? (double)(qn[j] - v[j]) *
							  (qn[j] - v[j])
						: -(double)qn[j] * v[j];
			ck_assert_msg(fabs(dd[i] - want) <=
					      1e-5 * (fabs(want) + 1.0),
				      "metric %d rank %d: %.6f, want %.6f", m,
				      i, dd[i], want);
		}
	}
	/* an upsert re-codes in its new vector's cell */
	ck_assert_int_eq(knytt_index_upsert(r, 5, base_v + 9 * D, D), 0);
	float a[D], b[D];
	ck_assert_int_eq(knytt_index_get(r, 5, a, D), 0);
	ck_assert_int_eq(knytt_index_get(r, 9, b, D), 0);
	ck_assert_mem_eq(a, b, sizeof a);

	char *path = tmp_path("resid.idx");
	knytt_index *c = save_reload(r, path, 4);
	ck_assert_uint_eq(c->qcells, r->qcells);
	for (size_t q = 0; q < 30; q++)
		same_answer(r, c, query_v + q * D, D, 60);
	knytt_index_close(c);
	size_t len;
	unsigned char *buf = slurp(path, &len);
	unsigned char *bad = malloc(len);
	size_t qsec = (size_t)knytt__get_u64(buf + 152);
	struct { size_t at; uint32_t v; } cases[] = {
		{ 116, 300 },		 /* more cells than a byte numbers */
		{ 116, r->qcells - 1 },	 /* sections no longer fit */
		{ 8, 3 },		 /* residual codes before version 4 */
		{ qsec + D * 4, 0 },	 /* a step of 0 */
		{ qsec + 2 * D * 4, 0x7fc00000u }, /* a NaN centre */
	};
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		memcpy(bad, buf, len);
		knytt__put_u32(bad + cases[i].at, cases[i].v);
		ck_assert_msg(load_edited(path, bad, len) == KNYTT_ECORRUPT,
			      "case %zu", i);
	}
	free(buf);
	free(bad);
	/* fewer cells than a byte numbers: a node's cell past them is
	 * corrupt (a search would read past the centres) */
	knytt_index *few = make(KNYTT_INDEX_HNSW, m, KNYTT_QUANT_INT8_ONLY);
	ck_assert_int_eq(knytt_index_train_quant(few, 6000, base_v, D), 0);
	ck_assert_int_eq(knytt_index_add_batch(few, 100, lab, base_v, D, 1),
			 0);
	ck_assert_uint_gt(few->qcells, 0);
	ck_assert_uint_lt(few->qcells, 255);
	knytt_index_close(save_reload(few, path, 4));
	buf = slurp(path, &len);
	buf[256 + few->off_vec + D] = 255; /* node 0, the first block */
	ck_assert_int_eq(load_edited(path, buf, len), KNYTT_ECORRUPT);
	knytt_index_close(few);
	unlink(path);
	free(path);
	free(buf);
	free(lab);
	knytt_index_close(r);
	knytt_index_close(s);
	knytt_index_close(f);
}
END_TEST

/* Uniform data has no clusters for cells to follow: residuals gain
 * less than RES_GAIN, and the shared code stays (format 2). */
START_TEST(int8_only_keeps_shared_codes_without_clusters)
{
	size_t n = 6000;
	uint64_t seed = 5;
	float *v = malloc(n * D * sizeof *v);
	for (size_t i = 0; i < n * D; i++)
		v[i] = tu_randf(&seed);
	knytt_index *ix = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
			       KNYTT_QUANT_INT8_ONLY);
	uint64_t *lab = iota(n, 0);
	ck_assert_int_eq(knytt_index_add_batch(ix, n, lab, v, D, 0), 0);
	ck_assert_uint_eq(ix->qcells, 0);
	char *path = tmp_path("shared.idx");
	knytt_index_close(save_reload(ix, path, 2));
	unlink(path);
	free(path);
	free(v);
	free(lab);
	knytt_index_close(ix);
}
END_TEST

/* An f16 file says version 3, which version-2 readers refuse; a file
 * that claims f16 under version 2 is corrupt, and one of a version after
 * this library's (5) is refused as newer. */
START_TEST(f16_file_is_version_3)
{
	knytt_index *ix = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
			       KNYTT_QUANT_F16);
	uint64_t *lab = iota(500, 0);
	ck_assert_int_eq(knytt_index_add_batch(ix, 500, lab, base_v, D, 1), 0);
	char *path = tmp_path("f16.idx");
	knytt_index *b = save_reload(ix, path, 3);
	same_answer(ix, b, query_v, D, 50);
	knytt_index_close(b);
	size_t len;
	unsigned char *buf = slurp(path, &len);
	knytt__put_u32(buf + 8, 2);
	ck_assert_int_eq(load_edited(path, buf, len), KNYTT_ECORRUPT);
	knytt__put_u32(buf + 8, 5);
	ck_assert_int_eq(load_edited(path, buf, len), KNYTT_EVERSION);
	unlink(path);
	free(path);
	free(buf);
	free(lab);
	knytt_index_close(ix);
}
END_TEST

/* Every vector starts a cache line (index_impl.h), in memory and as
 * mapped from the file, which says format version 2 (3 for f16);
 * int8-only keeps the packed layout. */
START_TEST(vectors_start_cache_lines)
{
	static const struct {
		knytt_index_kind kind;
		knytt_quant quant;
		uint32_t dim;
	} cases[] = {
		{KNYTT_INDEX_HNSW, KNYTT_QUANT_NONE, 3},
		{KNYTT_INDEX_HNSW, KNYTT_QUANT_NONE, 128},
		{KNYTT_INDEX_HNSW, KNYTT_QUANT_INT8, 20},
		{KNYTT_INDEX_HNSW, KNYTT_QUANT_INT8_ONLY, 100},
		{KNYTT_INDEX_FLAT, KNYTT_QUANT_NONE, 7},
		{KNYTT_INDEX_HNSW, KNYTT_QUANT_F16, 24},
		{KNYTT_INDEX_FLAT, KNYTT_QUANT_F16, 5},
	};
	char *path = tmp_path("aligned.idx");
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		uint32_t d = cases[c].dim;
		size_t n = 300;
		float *v = malloc(n * d * sizeof *v);
		for (size_t i = 0; i < n * d; i++)
			v[i] = sinf((float)i * 0.37f);
		knytt_index *ix;
		ck_assert_int_eq(knytt_index_create(&ix), 0);
		ck_assert_int_eq(knytt_index_set_kind(ix, cases[c].kind), 0);
		ck_assert_int_eq(knytt_index_set_quant(ix, cases[c].quant), 0);
		ck_assert_int_eq(knytt_index_open(ix, d), 0);
		for (size_t i = 0; i < n; i++)
			ck_assert_int_eq(knytt_index_add(ix, i, v + i * d, d), 0);
		int packed = cases[c].quant == KNYTT_QUANT_INT8_ONLY;
		if (packed) {
			ck_assert_uint_eq(ix->off_vec, ix->off_label + 8);
			ck_assert_uint_eq(ix->block,
					  (ix->off_vec + d + 15) & ~(size_t)15);
		} else {
			ck_assert_uint_eq(ix->block % 64, 0);
			for (uint32_t s = 0; s < ix->nslots; s++)
				ck_assert_msg(((uintptr_t)knytt__vecp(ix, s) &
					       63) == 0,
					      "case %zu slot %u", c, s);
		}
		knytt_index *b = save_reload(
			ix, path, cases[c].quant == KNYTT_QUANT_F16 ? 3 : 2);
		ck_assert(b->l0_mapped);
		ck_assert_uint_eq(b->block, ix->block);
		for (uint32_t s = 0; s < b->nslots && !packed; s++)
			ck_assert(((uintptr_t)knytt__vecp(b, s) & 63) == 0);
		/* the same answers from the loaded copy */
		for (size_t q = 0; q < 10; q++)
			same_answer(ix, b, v + q * 29 * d, d, 300);
		knytt_index_close(b);
		knytt_index_close(ix);
		free(v);
	}
	unlink(path);
	free(path);
}
END_TEST

/* An index read from a version-1 file keeps that file's packed layout:
 * it grows, answers exactly and saves as version 1 again. */
START_TEST(format_v1_index_keeps_its_layout)
{
	knytt_index *ix;
	knytt_index_create(&ix);
	ck_assert_msg(knytt_index_load(ix, "tests/fixtures/index-v1.idx") ==
			      KNYTT_OK,
		      "%s", knytt_errmsg());
	ck_assert(ix->format1);
	ck_assert_uint_eq(ix->off_vec, 8 + 4 * ix->m0 + 8);
	float all[500 * 8];
	for (int i = 0; i < 500; i++)
		for (int j = 0; j < 8; j++)
			all[i * 8 + j] = sinf((float)i * (float)(j + 1));
	/* 200 more rows: the mapped blocks are copied to the heap */
	for (int i = 300; i < 500; i++)
		ck_assert_int_eq(knytt_index_add(ix, 5000 + (uint64_t)i,
						 all + i * 8, 8),
				 0);
	ck_assert(!ix->l0_mapped);
	ck_assert_uint_eq(knytt_index_count(ix), 490);
	char *path = tmp_path("v1again.idx");
	knytt_index *b = save_reload(ix, path, 1);
	ck_assert(b->format1);
	ck_assert_uint_eq(knytt_index_count(b), 490);
	v1_exact_answers(b, all, 500, 23);
	knytt_index_close(b);
	knytt_index_close(ix);
	unlink(path);
	free(path);
}
END_TEST

/* --------------------------------------------------------------- errors */

START_TEST(bad_arguments)
{
	knytt_index *ix;
	ck_assert_int_eq(knytt_index_create(NULL), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_index_create(&ix), KNYTT_OK);
	ck_assert_int_eq(knytt_index_open(ix, 0), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "dim"));
	ck_assert_int_eq(knytt_index_open(ix, 70000), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_index_set_m(ix, 1), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_index_set_m(ix, 65), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_index_set_kind(ix, (knytt_index_kind)7),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_index_set_metric(ix, (knytt_metric)0),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_index_set_quant(ix, (knytt_quant)5),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_index_set_ef_construction(ix, 200000),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_index_set_ef_search(ix, 200000), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_index_set_ef_search(ix, 0), KNYTT_OK);
	ck_assert_int_eq(knytt_index_set_seed(ix, 7), KNYTT_OK);
	float v[D] = { 0 };
	uint64_t got[K];
	/* before open */
	ck_assert_int_eq(knytt_index_add(ix, 1, v, D), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_index_search(ix, v, D, 1, 0, got, NULL),
			 KNYTT_ESTATE);
	ck_assert_int_eq(knytt_index_open(ix, D), KNYTT_OK);
	ck_assert_int_eq(knytt_index_open(ix, D), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_index_set_m(ix, 8), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_index_set_seed(ix, 8), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_index_add(NULL, 1, v, D), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_index_add(ix, 1, NULL, D), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_index_add(ix, 1, v, D - 1), KNYTT_EINVAL);
	ck_assert_str_eq(knytt_errmsg(), "vector has 31 dimensions, index has 32");
	v[3] = NAN;
	ck_assert_int_eq(knytt_index_add(ix, 1, v, D), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "not finite"));
	v[3] = 0;
	for (uint64_t i = 0; i < 5; i++)
		ck_assert_int_eq(knytt_index_add(ix, i, base_v + i * D, D), 0);
	/* wrong query dimension, NULL query/labels, k 0 */
	ck_assert_int_eq(knytt_index_search(ix, v, 96, K, 0, got, NULL),
			 KNYTT_EINVAL);
	ck_assert_str_eq(knytt_errmsg(), "query has 96 dimensions, index has 32");
	ck_assert_int_eq(knytt_index_search(ix, NULL, D, K, 0, got, NULL),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_index_search(ix, v, D, K, 0, NULL, NULL),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_index_search(ix, v, D, 0, 0, got, NULL),
			 KNYTT_EINVAL);
	/* k larger than the count: count results, the rest marked */
	float dd[K];
	ck_assert_int_eq(knytt_index_search(ix, base_v, D, K, 0, got, dd), 5);
	ck_assert_uint_eq(got[0], 0);
	ck_assert_uint_eq(got[5], UINT64_MAX);
	ck_assert(isinf(dd[9]));
	/* get / remove / contains */
	ck_assert_int_eq(knytt_index_get(ix, 77, v, D), KNYTT_ENOTFOUND);
	ck_assert_int_eq(knytt_index_get(ix, 1, v, D + 1), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_index_get(ix, 1, NULL, D), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_index_remove(ix, 77), KNYTT_ENOTFOUND);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "77"));
	ck_assert_int_eq(knytt_index_contains(NULL, 1), 0);
	ck_assert_uint_eq(knytt_index_count(NULL), 0);
	ck_assert_uint_eq(knytt_index_dim(NULL), 0);
	ck_assert_uint_eq(knytt_index_memory(NULL), 0);
	ck_assert_uint_eq(knytt_index_vector_memory(NULL), 0);
	/* batch: duplicate in batch and existing label leave it unchanged */
	uint64_t dup[3] = { 100, 101, 100 }, ex[2] = { 200, 3 };
	ck_assert_int_eq(knytt_index_add_batch(ix, 3, dup, base_v, D, 1),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "twice"));
	ck_assert_int_eq(knytt_index_add_batch(ix, 2, ex, base_v, D, 1),
			 KNYTT_EEXIST);
	ck_assert_int_eq(knytt_index_add_batch(ix, 2, NULL, base_v, D, 1),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_index_add_batch(ix, 2, ex, NULL, D, 1),
			 KNYTT_EINVAL);
	ck_assert_uint_eq(knytt_index_count(ix), 5);
	ck_assert(!knytt_index_contains(ix, 100));
	ck_assert(!knytt_index_contains(ix, 200));
	ck_assert_int_eq(knytt_index_save(ix, NULL), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_index_save(ix, "/nonexistent/dir/x.idx"),
			 KNYTT_EIO);
	ck_assert_int_eq(knytt_index_load(NULL, "x"), KNYTT_EINVAL);
	knytt_index_close(ix);
	knytt_index_close(NULL);
}
END_TEST

/* ---------------------------------------------------------- concurrency */

typedef struct cctx {
	knytt_index *ix;
	_Atomic int stop;
	_Atomic size_t searches;
	_Atomic int bad;
} cctx;

static void *searcher(void *p)
{
	cctx *c = p;
	uint64_t got[K];
	size_t i = 0;
	while (!c->stop) {
		/* ef differs per thread and per call */
		unsigned ef = 10 + (unsigned)(i % 7) * 20;
		int r = knytt_index_search(c->ix, query_v + (i % NQ) * D, D, K,
					   ef, got, NULL);
		if (r < 0)
			c->bad = 1;
		for (int j = 0; j < r; j++)
			if (got[j] >= 6000) /* never a label not yet written */
				c->bad = 1;
		c->searches++;
		i++;
	}
	return NULL;
}

START_TEST(concurrent_searches_with_a_writer)
{
	cctx c = { .ix = make(KNYTT_INDEX_HNSW, KNYTT_METRIC_L2,
			      KNYTT_QUANT_NONE) };
	for (uint64_t i = 0; i < 1000; i++)
		ck_assert_int_eq(knytt_index_add(c.ix, i, base_v + i * D, D), 0);
	pthread_t th[3];
	for (int t = 0; t < 3; t++)
		pthread_create(&th[t], NULL, searcher, &c);
	size_t n = tu_sanitize() ? 2000 : 5000;
	for (uint64_t i = 1000; i < n; i++) {
		ck_assert_int_eq(knytt_index_add(c.ix, i, base_v + i * D, D), 0);
		if (i % 5 == 0)
			ck_assert_int_eq(knytt_index_remove(c.ix, i - 500), 0);
		if (i % 7 == 0)
			ck_assert_int_eq(knytt_index_upsert(c.ix, i - 3,
							    base_v + i * D, D),
					 0);
	}
	c.stop = 1;
	for (int t = 0; t < 3; t++)
		pthread_join(th[t], NULL);
	ck_assert(!c.bad);
	ck_assert_uint_gt(c.searches, 0);
	knytt_index_close(c.ix);
}
END_TEST

Suite *index_suite(void)
{
	Suite *s = suite_create("index");
	TCase *tc = tcase_create("hnsw");
	tcase_add_unchecked_fixture(tc, data_setup, data_teardown);
	tcase_set_timeout(tc, 600);
	tcase_add_loop_test(tc, hnsw_recall_against_brute_force, 0, 3);
	tcase_add_test(tc, parallel_build_keeps_recall);
	tcase_add_test(tc, single_adds_equal_seeded_batch);
	tcase_add_test(tc, churn_remove_readd_half);
	tcase_add_test(tc, remove_everything_then_add_again);
	tcase_add_test(tc, upsert_replaces_vector);
	tcase_add_test(tc, huge_ef_is_bounded);
	tcase_add_loop_test(tc, filter_matches_filtered_brute_force, 0, 3);
	tcase_add_test(tc, filter_edge_cases);
	tcase_add_test(tc, int8_recall_and_memory);
	tcase_add_loop_test(tc, int8_only_distances_are_asymmetric, 0, 3);
	tcase_add_test(tc, int8_step_fits_the_sample);
	tcase_add_loop_test(tc, int8_cosine_and_ip, 0, 2);
	tcase_add_test(tc, flat_is_exact);
	tcase_add_loop_test(tc, f16_recall_values_and_memory, 0, 6);
	tcase_add_test(tc, batch_search_equals_single);
	tcase_add_loop_test(tc, save_load_round_trip, 0, 6);
	tcase_add_loop_test(tc, empty_index_saves_and_loads, 0, 2);
	tcase_add_test(tc, corrupt_truncated_foreign_files);
	tcase_add_test(tc, format_v1_fixture_still_loads);
	tcase_add_test(tc, vectors_start_cache_lines);
	tcase_add_test(tc, f16_file_is_version_3);
	tcase_add_loop_test(tc, int8_only_residual_codes, 0, 3);
	tcase_add_test(tc, int8_only_keeps_shared_codes_without_clusters);
	tcase_add_loop_test(tc, f16_equals_f32_on_exact_values, 0, 2);
	tcase_add_test(tc, format_v1_index_keeps_its_layout);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, concurrent_searches_with_a_writer);
	suite_add_tcase(s, tc);
	return s;
}
