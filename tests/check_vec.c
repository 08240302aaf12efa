/*
 * check_vec.c -- every SIMD tier against the scalar reference on every
 * dimension 1..300 with unaligned pointers; the scan filter of exact
 * search, bit for bit; exact k-NN against a naive double-precision scan.
 */
#include "../lib/vec/half.h"
#include "../lib/vec/vec.h"
#include "testutil.h"

#include <math.h>

#define MAXD 300

/* Relative tolerance for float sums taken in another order. */
static void near(double got, double want, double scale, const char *what,
		 const char *tier, int d)
{
	double tol = 1e-5 * (scale + 1.0);
	ck_assert_msg(fabs(got - want) <= tol,
		      "%s/%s d=%d: got %.9g want %.9g", tier, what, d, got,
		      want);
}

START_TEST(f32_kernels_match_scalar)
{
	int d = _i; /* loop test: dimension */
	const knytt__vec_ops *t[4];
	int nt = knytt__vec_tiers(t, 4);
	uint64_t seed = 1000 + (uint64_t)d;
	/* +3: start at offsets 1 and 3 floats, so loads are unaligned */
	float *a = malloc((MAXD + 4) * sizeof *a);
	float *b = malloc((MAXD + 4) * sizeof *b);
	for (int i = 0; i < MAXD + 4; i++) {
		a[i] = tu_randf(&seed) * 3;
		b[i] = tu_randf(&seed) * 3;
	}
	const float *pa = a + 1, *pb = b + 3;
	double l2 = 0, dt = 0, aa = 0, bb = 0, sabs = 0;
	for (int i = 0; i < d; i++) {
		l2 += (double)(pa[i] - pb[i]) * (pa[i] - pb[i]);
		dt += (double)pa[i] * pb[i];
		aa += (double)pa[i] * pa[i];
		bb += (double)pb[i] * pb[i];
		sabs += fabs((double)pa[i] * pb[i]);
	}
	double cosd = 1.0 - dt / sqrt(aa * bb);
	for (int k = 0; k < nt; k++) {
		near(t[k]->l2sq(pa, pb, (size_t)d), l2, l2, "l2sq", t[k]->name,
		     d);
		near(t[k]->dot(pa, pb, (size_t)d), dt, sabs, "dot",
		     t[k]->name, d);
		near(t[k]->cosd(pa, pb, (size_t)d), cosd,
		     sabs / sqrt(aa * bb) * 10, "cosd", t[k]->name, d);
		/* and agree with the scalar tier itself */
		near(t[k]->l2sq(pa, pb, (size_t)d),
		     knytt__vec_scalar.l2sq(pa, pb, (size_t)d), l2, "l2/ref",
		     t[k]->name, d);
	}
	free(a);
	free(b);
}
END_TEST

START_TEST(i8_kernels_match_scalar_exactly)
{
	int d = _i;
	const knytt__vec_ops *t[4];
	int nt = knytt__vec_tiers(t, 4);
	uint64_t seed = 77 + (uint64_t)d;
	int8_t *a = malloc(MAXD + 8), *b = malloc(MAXD + 8);
	for (int i = 0; i < MAXD + 8; i++) {
		/* include the extremes -127 and 127 */
		a[i] = (int8_t)((int)(tu_rand(&seed) % 255) - 127);
		b[i] = (int8_t)((int)(tu_rand(&seed) % 255) - 127);
	}
	a[1] = 127;
	b[5] = -127;
	const int8_t *pa = a + 1, *pb = b + 5;
	int64_t l2 = 0, dt = 0;
	for (int i = 0; i < d; i++) {
		l2 += (pa[i] - pb[i]) * (pa[i] - pb[i]);
		dt += pa[i] * pb[i];
	}
	for (int k = 0; k < nt; k++) {
		ck_assert_msg(t[k]->l2sq_i8(pa, pb, (size_t)d) == (uint32_t)l2,
			      "%s l2sq_i8 d=%d", t[k]->name, d);
		ck_assert_msg(t[k]->dot_i8(pa, pb, (size_t)d) == (int32_t)dt,
			      "%s dot_i8 d=%d", t[k]->name, d);
	}
	free(a);
	free(b);
}
END_TEST

/* A float query against int8 codes: every tier within float rounding of
 * a double-precision reference (the tiers sum in different orders).
 * l2sq_f8w with a step per dimension (0.01..2, unaligned too). */
START_TEST(f8_kernels_match_reference)
{
	int d = _i;
	const knytt__vec_ops *t[4];
	int nt = knytt__vec_tiers(t, 4);
	uint64_t seed = 991 + (uint64_t)d;
	float *a = malloc((MAXD + 8) * sizeof *a);
	float *st = malloc((MAXD + 8) * sizeof *st);
	int8_t *b = malloc(MAXD + 8);
	for (int i = 0; i < MAXD + 8; i++) {
		a[i] = (float)((double)(tu_rand(&seed) % 20001) / 100.0 - 100.0);
		b[i] = (int8_t)((int)(tu_rand(&seed) % 255) - 127);
		st[i] = (float)((double)(1 + tu_rand(&seed) % 200) / 100.0);
	}
	b[4] = -127;
	b[7] = 127;
	/* unaligned on both sides */
	const float *pa = a + 3, *ps = st + 5;
	const int8_t *pb = b + 7;
	double l2 = 0, dt = 0, mag = 0, w2 = 0;
	for (int i = 0; i < d; i++) {
		double x = pa[i] - pb[i];
		l2 += x * x;
		dt += (double)pa[i] * pb[i];
		mag += fabs((double)pa[i] * pb[i]);
		double y = pa[i] - (double)ps[i] * pb[i];
		w2 += y * y;
	}
	float *o = malloc((MAXD + 8) * sizeof *o), *want = malloc(d * sizeof *want + 1);
	for (int i = 0; i < d; i++)
		want[i] = pa[i] - ps[i];
	for (int k = 0; k < nt; k++) {
		double g = t[k]->l2sq_f8w(pa, ps, pb, (size_t)d);
		ck_assert_msg(fabs(g - w2) <= 1e-5 * w2 + 1e-3,
			      "%s l2sq_f8w d=%d: %g, want %g", t[k]->name, d,
			      g, w2);
		/* sub: exact, and nothing written past d */
		for (int i = 0; i < MAXD + 8; i++)
			o[i] = -1.5f;
		t[k]->sub(pa, ps, o + 1, (size_t)d);
		ck_assert_msg(memcmp(o + 1, want, d * sizeof *o) == 0,
			      "%s sub d=%d", t[k]->name, d);
		ck_assert(o[0] == -1.5f && o[d + 1] == -1.5f);
		/* in place, as the residual walk uses it (out == a) */
		memcpy(o, pa, d * sizeof *o);
		t[k]->sub(o, ps, o, (size_t)d);
		ck_assert_msg(memcmp(o, want, d * sizeof *o) == 0,
			      "%s sub in place d=%d", t[k]->name, d);
	}
	free(o);
	free(want);
	free(st);
	for (int k = 0; k < nt; k++) {
		double g = t[k]->l2sq_f8(pa, pb, (size_t)d);
		ck_assert_msg(fabs(g - l2) <= 1e-5 * l2 + 1e-3,
			      "%s l2sq_f8 d=%d: %g, want %g", t[k]->name, d, g,
			      l2);
		g = t[k]->dot_f8(pa, pb, (size_t)d);
		ck_assert_msg(fabs(g - dt) <= 1e-5 * mag + 1e-3,
			      "%s dot_f8 d=%d: %g, want %g", t[k]->name, d, g,
			      dt);
	}
	free(a);
	free(b);
}
END_TEST

/* Many rows of one code table at once (the int8 pass of wide filtered
 * scans): every tier within float rounding of a double-precision
 * reference, through a row list (repeats and any order, counts that are
 * not a multiple of the kernels' four rows) and laid end to end. */
START_TEST(f8_rows_kernels_match_reference)
{
	int d = _i;
	enum { NR = 41, NT = 23 };
	const knytt__vec_ops *t[4];
	int nt = knytt__vec_tiers(t, 4);
	uint64_t seed = 4243 + (uint64_t)d;
	float *a = malloc((size_t)d * sizeof *a);
	int8_t *codes = malloc((size_t)NT * (size_t)d);
	float scale[NT], out[NR];
	uint32_t rows[NR];
	for (int i = 0; i < d; i++)
		a[i] = (float)((double)(tu_rand(&seed) % 20001) / 100.0 - 100.0);
	for (int i = 0; i < NT * d; i++)
		codes[i] = (int8_t)((int)(tu_rand(&seed) % 255) - 127);
	for (int r = 0; r < NT; r++)
		scale[r] = (float)(tu_rand(&seed) % 1000 + 1) / 4096.0f;
	for (int i = 0; i < NR; i++)
		rows[i] = (uint32_t)(tu_rand(&seed) % NT);
	rows[3] = rows[2]; /* a repeat */
	for (int k = 0; k < nt; k++) {
		for (int listed = 0; listed < 2; listed++) {
			/* every count up to NR: each tail length */
			size_t n = listed ? NR - (size_t)(d % 4) : NT;
			memset(out, 0, sizeof out);
			t[k]->dot_f8_rows(a, codes, scale, listed ? rows : NULL,
					  n, (size_t)d, out);
			for (size_t i = 0; i < n; i++) {
				uint32_t r = listed ? rows[i] : (uint32_t)i;
				const int8_t *c = codes + (size_t)r * (size_t)d;
				double want = 0, mag = 0;
				for (int j = 0; j < d; j++) {
					want += (double)a[j] * c[j];
					mag += fabs((double)a[j] * c[j]);
				}
				want *= scale[r];
				mag *= scale[r];
				ck_assert_msg(fabs(out[i] - want) <=
						      1e-5 * mag + 1e-3,
					      "%s dot_f8_rows d=%d row %zu "
					      "(%s): %g, want %g",
					      t[k]->name, d, i,
					      listed ? "listed" : "packed",
					      out[i], want);
			}
		}
	}
	free(a);
	free(codes);
}
END_TEST

START_TEST(i8_extremes_do_not_overflow)
{
	enum { D = 4096 };
	int8_t *a = malloc(D), *b = malloc(D);
	memset(a, 127, D);
	memset(b, -127, D);
	const knytt__vec_ops *t[4];
	int nt = knytt__vec_tiers(t, 4);
	for (int k = 0; k < nt; k++) {
		ck_assert_uint_eq(t[k]->l2sq_i8(a, b, D), 254u * 254u * D);
		ck_assert_int_eq(t[k]->dot_i8(a, b, D), -127 * 127 * D);
	}
	free(a);
	free(b);
}
END_TEST

/* f16 kernels (f16 on both sides, and an f32 query against f16): every
 * tier against a double-precision sum of the widened values, unaligned,
 * with negative values and subnormals. */
START_TEST(h_kernels_match_reference)
{
	int d = _i;
	const knytt__vec_ops *t[4];
	int nt = knytt__vec_tiers(t, 4);
	uint64_t seed = 4242 + (uint64_t)d;
	uint16_t *a = malloc((MAXD + 8) * sizeof *a);
	uint16_t *b = malloc((MAXD + 8) * sizeof *b);
	for (int i = 0; i < MAXD + 8; i++) {
		float x = (float)((double)(tu_rand(&seed) % 20001) / 100.0 -
				  100.0);
		float y = (float)((double)(tu_rand(&seed) % 20001) / 1000.0 -
				  10.0);
		a[i] = knytt__f32_to_f16(x);
		b[i] = knytt__f32_to_f16(y);
	}
	b[2] = 0x0003; /* subnormals */
	a[5] = 0x8201;
	/* the same values widened, for the f32-against-f16 kernels */
	float *fa = malloc((MAXD + 8) * sizeof *fa);
	for (int i = 0; i < MAXD + 8; i++)
		fa[i] = knytt__f16_to_f32(a[i]);
	const uint16_t *pa = a + 1, *pb = b + 3;
	double l2 = 0, dt = 0, mag = 0;
	for (int i = 0; i < d; i++) {
		double x = knytt__f16_to_f32(pa[i]), y = knytt__f16_to_f32(pb[i]);
		l2 += (x - y) * (x - y);
		dt += x * y;
		mag += fabs(x * y);
	}
	for (int k = 0; k < nt; k++) {
		double g = t[k]->l2sq_h(pa, pb, (size_t)d);
		ck_assert_msg(fabs(g - l2) <= 1e-5 * l2 + 1e-3,
			      "%s l2sq_h d=%d: %g, want %g", t[k]->name, d, g,
			      l2);
		g = t[k]->dot_h(pa, pb, (size_t)d);
		ck_assert_msg(fabs(g - dt) <= 1e-5 * mag + 1e-3,
			      "%s dot_h d=%d: %g, want %g", t[k]->name, d, g,
			      dt);
		g = t[k]->l2sq_fh(fa + 1, pb, (size_t)d);
		ck_assert_msg(fabs(g - l2) <= 1e-5 * l2 + 1e-3,
			      "%s l2sq_fh d=%d: %g, want %g", t[k]->name, d, g,
			      l2);
		g = t[k]->dot_fh(fa + 1, pb, (size_t)d);
		ck_assert_msg(fabs(g - dt) <= 1e-5 * mag + 1e-3,
			      "%s dot_fh d=%d: %g, want %g", t[k]->name, d, g,
			      dt);
	}
	free(a);
	free(b);
	free(fa);
}
END_TEST

#if defined(__x86_64__)
#include <immintrin.h>
__attribute__((target("f16c"))) static uint16_t hw_to_f16(float f)
{
	return (uint16_t)_cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT);
}
__attribute__((target("f16c"))) static float hw_from_f16(uint16_t h)
{
	return _cvtsh_ss(h);
}
#endif

static int same_float(float a, float b)
{
	return memcmp(&a, &b, sizeof a) == 0 || (isnan(a) && isnan(b));
}

/* half.h: values worked by hand, every half decoded and encoded back,
 * and (with F16C) the hardware's conversions of every half and of a
 * million floats around the rounding boundaries. */
START_TEST(half_conversions_round_to_nearest_even)
{
	static const struct {
		float f;
		uint16_t h;
	} hand[] = {
		{ 1.0f, 0x3c00 },	    { -2.0f, 0xc000 },
		{ 0.0f, 0x0000 },	    { -0.0f, 0x8000 },
		{ 65504.0f, 0x7bff },	    { 65519.0f, 0x7bff },
		{ 65520.0f, 0x7c00 },	    { 0.1f, 0x2e66 },
		{ 0x1p-14f, 0x0400 },	    { 0x1p-24f, 0x0001 },
		{ 0x1p-25f, 0x0000 },	    /* tie: to even (0) */
		{ 0x1.8p-24f, 0x0002 },	    /* tie: to even (2) */
		{ 0x1.002p0f, 0x3c00 },	    /* 1 + 2^-11: tie, to even */
		{ 0x1.006p0f, 0x3c02 },	    /* 1 + 3 2^-11: tie, up to even */
		{ 0x1.0021p0f, 0x3c01 },    /* just above the tie */
		{ 0x1.ffep-15f, 0x0400 },   /* subnormal rounding to normal */
		{ INFINITY, 0x7c00 },	    { -INFINITY, 0xfc00 },
		{ 2048.0f, 0x6800 },	    { 2049.0f, 0x6800 },
		{ 2051.0f, 0x6802 },	    { 218.0f, 0x5ad0 },
	};
	for (size_t i = 0; i < sizeof hand / sizeof hand[0]; i++) {
		ck_assert_msg(knytt__f32_to_f16(hand[i].f) == hand[i].h,
			      "%a -> %#x, want %#x", (double)hand[i].f,
			      knytt__f32_to_f16(hand[i].f), hand[i].h);
	}
	ck_assert_float_eq(knytt__f16_to_f32(0x7bff), 65504.0f);
	ck_assert_float_eq(knytt__f16_to_f32(0xc000), -2.0f);
	ck_assert(same_float(knytt__f16_to_f32(0x8000), -0.0f));
	ck_assert_float_eq(knytt__f16_to_f32(0x0001), 0x1p-24f);
	ck_assert_float_eq(knytt__f16_to_f32(0x3555), 0x1.554p-2f);
	ck_assert(isnan(knytt__f16_to_f32(knytt__f32_to_f16(NAN))));
	int hw = 0;
#if defined(__x86_64__)
	hw = __builtin_cpu_supports("f16c");
#endif
	for (uint32_t h = 0; h < 65536; h++) {
		float f = knytt__f16_to_f32((uint16_t)h);
		if (!isnan(f))
			ck_assert_uint_eq(knytt__f32_to_f16(f), h);
#if defined(__x86_64__)
		if (hw)
			ck_assert_msg(same_float(f, hw_from_f16((uint16_t)h)),
				      "%#x", h);
#endif
	}
#if defined(__x86_64__)
	if (hw) {
		uint64_t seed = 77;
		for (int i = 0; i < 1000000; i++) {
			/* random bits, narrowed to the half range (and a
			 * little past it) so that most land on ties and
			 * near-ties of 13 dropped bits */
			uint32_t x = (uint32_t)tu_rand(&seed);
			uint32_t e = 96 + (x >> 24) % 50; /* 2^-31..2^18 */
			x = (x & 0x807fffffu) | e << 23;
			if (i & 1)
				x = (x & ~0x1fffu) | (i & 2 ? 0x1000u : 0xfffu);
			float f;
			memcpy(&f, &x, 4);
			ck_assert_msg(knytt__f32_to_f16(f) == hw_to_f16(f),
				      "%a: %#x, F16C %#x", (double)f,
				      knytt__f32_to_f16(f), hw_to_f16(f));
		}
	}
#endif
}
END_TEST

START_TEST(dispatch_reports_a_tier)
{
	const char *n = knytt_simd_name();
	ck_assert(strcmp(n, "scalar") == 0 || strcmp(n, "avx2") == 0 ||
		  strcmp(n, "avx512") == 0 || strcmp(n, "neon") == 0);
	float a[3] = { 1, 2, 3 }, b[3] = { 1, 0, 0 }, z[3] = { 0 };
	ck_assert_float_eq_tol(knytt_distance(KNYTT_METRIC_L2, a, b, 3),
			       13.0f, 1e-5);
	ck_assert_float_eq_tol(knytt_distance(KNYTT_METRIC_IP, a, b, 3),
			       -1.0f, 1e-5);
	ck_assert_float_eq_tol(knytt_distance(KNYTT_METRIC_COSINE, a, a, 3),
			       0.0f, 1e-5);
	ck_assert_float_eq(knytt_distance(KNYTT_METRIC_COSINE, a, z, 3), 1.0f);
	ck_assert(isnan(knytt_distance((knytt_metric)9, a, b, 3)));
	ck_assert(isnan(knytt_distance(KNYTT_METRIC_L2, NULL, b, 3)));
	float v[2] = { 3, 4 };
	ck_assert_float_eq_tol(knytt__normalize(v, 2), 5.0f, 1e-6);
	ck_assert_float_eq_tol(v[0], 0.6f, 1e-6);
}
END_TEST

static void naive_knn(knytt_metric m, size_t d, const float *x, size_t nb,
		      const float *q, size_t k, uint64_t *ids, double *dd)
{
	for (size_t r = 0; r < k; r++)
		dd[r] = INFINITY, ids[r] = UINT64_MAX;
	for (size_t i = 0; i < nb; i++) {
		double s = 0, aa = 0, bb = 0, ab = 0;
		for (size_t j = 0; j < d; j++) {
			double t = (double)q[j] - x[i * d + j];
			s += t * t;
			ab += (double)q[j] * x[i * d + j];
			aa += (double)q[j] * q[j];
			bb += (double)x[i * d + j] * x[i * d + j];
		}
		double dist = m == KNYTT_METRIC_L2   ? s
			      : m == KNYTT_METRIC_IP ? -ab
						     : 1 - ab / sqrt(aa * bb);
		/* insertion into the sorted top-k */
		size_t p = k;
		while (p > 0 && dd[p - 1] > dist)
			p--;
		if (p >= k)
			continue;
		memmove(dd + p + 1, dd + p, (k - p - 1) * sizeof *dd);
		memmove(ids + p + 1, ids + p, (k - p - 1) * sizeof *ids);
		dd[p] = dist;
		ids[p] = i;
	}
}

START_TEST(exact_knn_matches_naive)
{
	static const knytt_metric ms[3] = { KNYTT_METRIC_L2, KNYTT_METRIC_IP,
					    KNYTT_METRIC_COSINE };
	knytt_metric m = ms[_i];
	/* 5000 base rows cross the 4096-row block; 300 queries cross 256 */
	size_t nb = 5000, nq = 300, d = 37, k = 10;
	float *x = tu_clustered(nb, d, 20, 5, NULL);
	float *q = tu_clustered(nq, d, 20, 6, NULL);
	uint64_t *ids = malloc(nq * k * sizeof *ids), want[10];
	float *dist = malloc(nq * k * sizeof *dist);
	double wd[10];
	ck_assert_int_eq(knytt_exact_knn(m, d, x, nb, q, nq, k, ids, dist),
			 KNYTT_OK);
	size_t agree = 0;
	for (size_t i = 0; i < nq; i++) {
		naive_knn(m, d, x, nb, q + i * d, k, want, wd);
		for (size_t r = 0; r < k; r++) {
			agree += ids[i * k + r] == want[r];
			ck_assert_msg(fabs(dist[i * k + r] - wd[r]) <=
					      1e-3 * (fabs(wd[r]) + 1),
				      "q%zu r%zu: %g vs %g", i, r,
				      dist[i * k + r], wd[r]);
		}
	}
	/* float vs double may swap near-ties: demand 99.5% identical ids */
	ck_assert_msg(agree >= nq * k * 995 / 1000, "agree %zu", agree);
	free(x);
	free(q);
	free(ids);
	free(dist);
}
END_TEST

START_TEST(exact_knn_fewer_rows_than_k_and_errors)
{
	float x[6] = { 0, 0, 1, 1, 5, 5 }, q[2] = { 0.9f, 1.2f };
	uint64_t ids[5];
	float d[5];
	ck_assert_int_eq(knytt_exact_knn(KNYTT_METRIC_L2, 2, x, 3, q, 1, 5,
					 ids, d),
			 KNYTT_OK);
	ck_assert_uint_eq(ids[0], 1);
	ck_assert_uint_eq(ids[1], 0);
	ck_assert_uint_eq(ids[2], 2);
	ck_assert_uint_eq(ids[3], UINT64_MAX);
	ck_assert(isinf(d[4]));
	ck_assert_int_eq(knytt_exact_knn(KNYTT_METRIC_L2, 0, x, 3, q, 1, 5,
					 ids, d),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "dim"));
	ck_assert_int_eq(knytt_exact_knn(KNYTT_METRIC_L2, 2, x, 3, q, 1, 0,
					 ids, d),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_exact_knn(KNYTT_METRIC_L2, 2, x, 3, NULL, 1,
					 1, ids, d),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "queries"));
	ck_assert_int_eq(knytt_exact_knn((knytt_metric)0, 2, x, 3, q, 1, 1,
					 ids, d),
			 KNYTT_EINVAL);
}
END_TEST

/* The filter by hand, in double, for the expected candidates: the tiers
 * must agree with the scalar one exactly, and the scalar one with this
 * wherever a value is not within rounding of the threshold. */
START_TEST(below_kernels_match_scalar_bit_for_bit)
{
	int n = _i; /* loop test: row length */
	const knytt__vec_ops *t[4];
	int nt = knytt__vec_tiers(t, 4);
	uint64_t seed = 77 + (uint64_t)n;
	float *p = malloc((MAXD + 4) * sizeof *p);
	float *m = malloc((MAXD + 4) * sizeof *m);
	float *v = malloc((MAXD + 4) * sizeof *v);
	for (int i = 0; i < MAXD + 4; i++) {
		p[i] = tu_randf(&seed) * 4;
		m[i] = fabsf(tu_randf(&seed)) + 0.1f;
		v[i] = fabsf(tu_randf(&seed)) * 5;
	}
	uint32_t ri[MAXD], gi[MAXD];
	float rd[MAXD], gd[MAXD];
	for (int form = 0; form < 4; form++) {
		const float *pm = form & 1 ? m + 3 : NULL;
		const float *pv = form & 2 ? v + 2 : NULL;
		float a = form == 3 ? -2.0f : -1.0f, c = form & 2 ? 1.5f : 0.5f;
		for (int th = 0; th < 3; th++) {
			float thr = th == 0 ? INFINITY : th == 1 ? 0.0f : -3.0f;
			size_t want = knytt__vec_scalar.below(
				p + 1, pm, pv, a, c, thr, (size_t)n, ri, rd);
			/* the reference against the formula in double,
			 * wherever rounding cannot decide */
			size_t j = 0;
			for (int i = 0; i < n; i++) {
				double d = c + (double)a * p[1 + i] *
						       (pm ? pm[i] : 1) +
					   (pv ? pv[i] : 0);
				int in = j < want && ri[j] == (uint32_t)i;
				j += in;
				if (fabs(d - thr) > 1e-4 * (fabs(d) + 1))
					ck_assert_int_eq(in, d < thr);
				if (in)
					ck_assert(fabs(rd[j - 1] - d) <=
						  1e-4 * (fabs(d) + 1));
			}
			ck_assert_uint_eq(j, want);
			if (th == 0)
				ck_assert_uint_eq(want, (size_t)n);
			ck_assert_uint_le(want, (size_t)n);
			for (int k = 0; k < nt; k++) {
				size_t got = t[k]->below(p + 1, pm, pv, a, c,
							 thr, (size_t)n, gi,
							 gd);
				ck_assert_msg(got == want,
					      "%s n=%d form=%d: %zu vs %zu",
					      t[k]->name, n, form, got, want);
				for (size_t g = 0; g < got; g++) {
					ck_assert_uint_eq(gi[g], ri[g]);
					ck_assert_int_eq(memcmp(&gd[g], &rd[g],
								4),
							 0);
				}
			}
		}
	}
	free(p);
	free(m);
	free(v);
}
END_TEST

Suite *vec_suite(void)
{
	Suite *s = suite_create("vec");
	TCase *tc = tcase_create("kernels");
	tcase_add_loop_test(tc, f32_kernels_match_scalar, 1, MAXD + 1);
	tcase_add_loop_test(tc, i8_kernels_match_scalar_exactly, 1, MAXD + 1);
	tcase_add_loop_test(tc, below_kernels_match_scalar_bit_for_bit, 1,
			    MAXD + 1);
	tcase_add_test(tc, i8_extremes_do_not_overflow);
	tcase_add_loop_test(tc, f8_kernels_match_reference, 1, MAXD + 1);
	tcase_add_loop_test(tc, f8_rows_kernels_match_reference, 1, MAXD + 1);
	tcase_add_loop_test(tc, h_kernels_match_reference, 1, MAXD + 1);
	tcase_add_test(tc, half_conversions_round_to_nearest_even);
	tcase_add_test(tc, dispatch_reports_a_tier);
	suite_add_tcase(s, tc);
	TCase *te = tcase_create("exact");
	tcase_add_loop_test(te, exact_knn_matches_naive, 0, 3);
	tcase_add_test(te, exact_knn_fewer_rows_than_k_and_errors);
	suite_add_tcase(s, te);
	return s;
}
