/*
 * vec_avx512.c -- AVX-512 F/BW/VL kernels (built with -mavx512f
 * -mavx512bw -mavx512vl; only called after the CPU probe).
 *
 * f32: two 16-lane FMA accumulators (32 floats per step); the tail is a
 * masked load (k-register), so there is no scalar loop at all.
 * int8: 32 codes per step are sign-extended to 16-bit (vpmovsxbw zmm) and
 * summed in pairs into 32-bit lanes by vpmaddwd; the tail uses a masked
 * byte load whose zeroed lanes add nothing.
 * below: 16 values per step (separate multiplies and adds, as the scalar
 * reference), compared into a mask; candidates are written with
 * vcompressps / vpcompressd, no per-lane branch.
 * f16: 16 halves per load widened by vcvtph2ps (AVX-512F), two
 * accumulators as for f32; the tail is a masked 16-bit load (BW + VL).
 */
#include "vec.h"

#include <immintrin.h>
#include <math.h>

static inline __mmask16 m16(size_t r)
{
	return (__mmask16)((1u << r) - 1u);
}

static float l2sq(const float *a, const float *b, size_t d)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0;
	size_t i = 0;
	for (; i + 32 <= d; i += 32) {
		__m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(a + i),
					  _mm512_loadu_ps(b + i));
		__m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16),
					  _mm512_loadu_ps(b + i + 16));
		s0 = _mm512_fmadd_ps(t0, t0, s0);
		s1 = _mm512_fmadd_ps(t1, t1, s1);
	}
	for (; i + 16 <= d; i += 16) {
		__m512 t = _mm512_sub_ps(_mm512_loadu_ps(a + i),
					 _mm512_loadu_ps(b + i));
		s0 = _mm512_fmadd_ps(t, t, s0);
	}
	if (i < d) {
		__mmask16 m = m16(d - i);
		__m512 t = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i),
					 _mm512_maskz_loadu_ps(m, b + i));
		s1 = _mm512_fmadd_ps(t, t, s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static float dot(const float *a, const float *b, size_t d)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0;
	size_t i = 0;
	for (; i + 32 <= d; i += 32) {
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i),
				     _mm512_loadu_ps(b + i), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16),
				     _mm512_loadu_ps(b + i + 16), s1);
	}
	for (; i + 16 <= d; i += 16)
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i),
				     _mm512_loadu_ps(b + i), s0);
	if (i < d) {
		__mmask16 m = m16(d - i);
		s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i),
				     _mm512_maskz_loadu_ps(m, b + i), s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static float cosd(const float *a, const float *b, size_t d)
{
	__m512 ab = _mm512_setzero_ps(), aa = ab, bb = ab;
	for (size_t i = 0; i < d; i += 16) {
		__mmask16 m = d - i >= 16 ? (__mmask16)0xffff : m16(d - i);
		__m512 x = _mm512_maskz_loadu_ps(m, a + i);
		__m512 y = _mm512_maskz_loadu_ps(m, b + i);
		ab = _mm512_fmadd_ps(x, y, ab);
		aa = _mm512_fmadd_ps(x, x, aa);
		bb = _mm512_fmadd_ps(y, y, bb);
	}
	float sab = _mm512_reduce_add_ps(ab), saa = _mm512_reduce_add_ps(aa),
	      sbb = _mm512_reduce_add_ps(bb);
	if (saa == 0 || sbb == 0)
		return 1.0f;
	return 1.0f - sab / sqrtf(saa * sbb);
}

static uint32_t l2sq_i8(const int8_t *a, const int8_t *b, size_t d)
{
	__m512i s = _mm512_setzero_si512();
	for (size_t i = 0; i < d; i += 32) {
		__mmask32 m = d - i >= 32 ? (__mmask32)0xffffffffu
					  : (__mmask32)((1u << (d - i)) - 1u);
		__m512i x = _mm512_cvtepi8_epi16(
			_mm256_maskz_loadu_epi8(m, a + i));
		__m512i y = _mm512_cvtepi8_epi16(
			_mm256_maskz_loadu_epi8(m, b + i));
		__m512i t = _mm512_sub_epi16(x, y);
		s = _mm512_add_epi32(s, _mm512_madd_epi16(t, t));
	}
	return (uint32_t)_mm512_reduce_add_epi32(s);
}

static int32_t dot_i8(const int8_t *a, const int8_t *b, size_t d)
{
	__m512i s = _mm512_setzero_si512();
	for (size_t i = 0; i < d; i += 32) {
		__mmask32 m = d - i >= 32 ? (__mmask32)0xffffffffu
					  : (__mmask32)((1u << (d - i)) - 1u);
		__m512i x = _mm512_cvtepi8_epi16(
			_mm256_maskz_loadu_epi8(m, a + i));
		__m512i y = _mm512_cvtepi8_epi16(
			_mm256_maskz_loadu_epi8(m, b + i));
		s = _mm512_add_epi32(s, _mm512_madd_epi16(x, y));
	}
	return _mm512_reduce_add_epi32(s);
}

/* 16 codes (a masked byte load for the tail: zero lanes) sign-extended
 * to 32-bit lanes and converted to float */
static inline __m512 f8_load(const int8_t *b, __mmask16 m)
{
	return _mm512_cvtepi32_ps(
		_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, b)));
}

static float l2sq_f8(const float *a, const int8_t *b, size_t d)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0;
	size_t i = 0;
	for (; i + 32 <= d; i += 32) {
		__m512 t0 = _mm512_sub_ps(_mm512_loadu_ps(a + i),
					  f8_load(b + i, 0xffff));
		__m512 t1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16),
					  f8_load(b + i + 16, 0xffff));
		s0 = _mm512_fmadd_ps(t0, t0, s0);
		s1 = _mm512_fmadd_ps(t1, t1, s1);
	}
	for (; i < d; i += 16) {
		__mmask16 m = d - i >= 16 ? (__mmask16)0xffff : m16(d - i);
		__m512 t = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i),
					 f8_load(b + i, m));
		s0 = _mm512_fmadd_ps(t, t, s0);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static float l2sq_f8w(const float *a, const float *s, const int8_t *b,
		       size_t d)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0;
	size_t i = 0;
	for (; i + 32 <= d; i += 32) {
		__m512 t0 = _mm512_fnmadd_ps(_mm512_loadu_ps(s + i),
					     f8_load(b + i, 0xffff),
					     _mm512_loadu_ps(a + i));
		__m512 t1 = _mm512_fnmadd_ps(_mm512_loadu_ps(s + i + 16),
					     f8_load(b + i + 16, 0xffff),
					     _mm512_loadu_ps(a + i + 16));
		s0 = _mm512_fmadd_ps(t0, t0, s0);
		s1 = _mm512_fmadd_ps(t1, t1, s1);
	}
	for (; i < d; i += 16) {
		__mmask16 m = d - i >= 16 ? (__mmask16)0xffff : m16(d - i);
		__m512 t = _mm512_fnmadd_ps(_mm512_maskz_loadu_ps(m, s + i),
					    f8_load(b + i, m),
					    _mm512_maskz_loadu_ps(m, a + i));
		s0 = _mm512_fmadd_ps(t, t, s0);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static void vsub(const float *a, const float *b, float *out, size_t d)
{
	for (size_t i = 0; i < d; i += 16) {
		__mmask16 m = d - i >= 16 ? (__mmask16)0xffff : m16(d - i);
		_mm512_mask_storeu_ps(out + i, m,
				      _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i),
						    _mm512_maskz_loadu_ps(m, b + i)));
	}
}

static float dot_f8(const float *a, const int8_t *b, size_t d)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0;
	size_t i = 0;
	for (; i + 32 <= d; i += 32) {
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i),
				     f8_load(b + i, 0xffff), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16),
				     f8_load(b + i + 16, 0xffff), s1);
	}
	for (; i < d; i += 16) {
		__mmask16 m = d - i >= 16 ? (__mmask16)0xffff : m16(d - i);
		s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i),
				     f8_load(b + i, m), s0);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

/* the 256-bit sum of the two halves of @p v (AVX-512F alone: no DQ) */
static inline __m256 half_sum(__m512 v)
{
	return _mm256_add_ps(_mm512_castps512_ps256(v),
			     _mm256_castpd_ps(_mm512_extractf64x4_pd(
				     _mm512_castps_pd(v), 1)));
}

/* The sums of four vectors at once: [sum a, sum b, sum c, sum d]. */
static inline __m128 hsum16x4(__m512 a, __m512 b, __m512 c, __m512 d)
{
	/* per 128-bit lane: pairs, then quads, of each input in turn */
	__m256 t = _mm256_hadd_ps(_mm256_hadd_ps(half_sum(a), half_sum(b)),
				  _mm256_hadd_ps(half_sum(c), half_sum(d)));
	return _mm_add_ps(_mm256_castps256_ps128(t),
			  _mm256_extractf128_ps(t, 1));
}

static void dot_f8_rows(const float *a, const int8_t *codes,
			const float *scale, const uint32_t *rows, size_t n,
			size_t d, float *out)
{
	size_t i = 0;
	for (; i + 4 <= n; i += 4) {
		size_t r[4];
		knytt__rows4(codes, rows, i, n, d, r);
		const int8_t *b0 = codes + r[0] * d, *b1 = codes + r[1] * d,
			     *b2 = codes + r[2] * d, *b3 = codes + r[3] * d;
		__m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
		for (size_t j = 0; j < d; j += 16) {
			__mmask16 m = d - j >= 16 ? (__mmask16)0xffff
						  : m16(d - j);
			__m512 q = _mm512_maskz_loadu_ps(m, a + j);
			s0 = _mm512_fmadd_ps(q, f8_load(b0 + j, m), s0);
			s1 = _mm512_fmadd_ps(q, f8_load(b1 + j, m), s1);
			s2 = _mm512_fmadd_ps(q, f8_load(b2 + j, m), s2);
			s3 = _mm512_fmadd_ps(q, f8_load(b3 + j, m), s3);
		}
		__m128 sc = _mm_setr_ps(scale[r[0]], scale[r[1]], scale[r[2]],
					scale[r[3]]);
		_mm_storeu_ps(out + i, _mm_mul_ps(sc, hsum16x4(s0, s1, s2, s3)));
	}
	/* the last rows, one at a time */
	knytt__dot_f8_rows_by(dot_f8, a, rows ? codes : codes + i * d,
			      rows ? scale : scale + i, rows ? rows + i : NULL,
			      n - i, d, out + i);
}

static size_t below(const float *p, const float *m, const float *v,
		    float a, float c, float thr, size_t n, uint32_t *idx,
		    float *out)
{
	const __m512 va = _mm512_set1_ps(a), vc = _mm512_set1_ps(c),
		     vt = _mm512_set1_ps(thr);
	const __m512i lane = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
					       10, 11, 12, 13, 14, 15);
	size_t got = 0, i = 0;
	for (; i < n; i += 16) {
		__mmask16 live = n - i >= 16 ? (__mmask16)0xffff : m16(n - i);
		__m512 t = _mm512_maskz_loadu_ps(live, p + i);
		if (m)
			t = _mm512_mul_ps(t, _mm512_maskz_loadu_ps(live, m + i));
		__m512 d = _mm512_add_ps(vc, _mm512_mul_ps(va, t));
		if (v)
			d = _mm512_add_ps(d, _mm512_maskz_loadu_ps(live, v + i));
		__mmask16 k = _mm512_mask_cmp_ps_mask(live, d, vt, _CMP_LT_OQ);
		if (!k)
			continue;
		__m512i ix = _mm512_add_epi32(lane,
					      _mm512_set1_epi32((int)i));
		_mm512_mask_compressstoreu_ps(out + got, k, d);
		_mm512_mask_compressstoreu_epi32(idx + got, k, ix);
		got += (size_t)__builtin_popcount((unsigned)k);
	}
	return got;
}

static inline __m512 h_load(const uint16_t *p)
{
	return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

static inline __m512 h_loadm(__mmask16 m, const uint16_t *p)
{
	return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p));
}

/* 16 values of the left operand from i (the lanes of mask m): halves
 * (ah) or floats */
static inline __attribute__((always_inline)) __m512
a_load(const void *a, size_t i, __mmask16 m, int ah)
{
	return ah ? h_loadm(m, (const uint16_t *)a + i)
		  : _mm512_maskz_loadu_ps(m, (const float *)a + i);
}

/* The f16 kernels, the left operand halves (ah: _h) or floats (_fh);
 * the compiler makes one of each. */
static inline __attribute__((always_inline)) float
l2sq_any(const void *a, const uint16_t *b, size_t d, int ah)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0;
	size_t i = 0;
	for (; i + 32 <= d; i += 32) {
		__m512 t0 = _mm512_sub_ps(a_load(a, i, 0xffff, ah),
					  h_load(b + i));
		__m512 t1 = _mm512_sub_ps(a_load(a, i + 16, 0xffff, ah),
					  h_load(b + i + 16));
		s0 = _mm512_fmadd_ps(t0, t0, s0);
		s1 = _mm512_fmadd_ps(t1, t1, s1);
	}
	for (; i + 16 <= d; i += 16) {
		__m512 t = _mm512_sub_ps(a_load(a, i, 0xffff, ah),
					 h_load(b + i));
		s0 = _mm512_fmadd_ps(t, t, s0);
	}
	if (i < d) {
		__mmask16 m = m16(d - i);
		__m512 t = _mm512_sub_ps(a_load(a, i, m, ah), h_loadm(m, b + i));
		s1 = _mm512_fmadd_ps(t, t, s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static inline __attribute__((always_inline)) float
dot_any(const void *a, const uint16_t *b, size_t d, int ah)
{
	__m512 s0 = _mm512_setzero_ps(), s1 = s0;
	size_t i = 0;
	for (; i + 32 <= d; i += 32) {
		s0 = _mm512_fmadd_ps(a_load(a, i, 0xffff, ah), h_load(b + i),
				     s0);
		s1 = _mm512_fmadd_ps(a_load(a, i + 16, 0xffff, ah),
				     h_load(b + i + 16), s1);
	}
	for (; i + 16 <= d; i += 16)
		s0 = _mm512_fmadd_ps(a_load(a, i, 0xffff, ah), h_load(b + i),
				     s0);
	if (i < d) {
		__mmask16 m = m16(d - i);
		s1 = _mm512_fmadd_ps(a_load(a, i, m, ah), h_loadm(m, b + i), s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

static float l2sq_h(const uint16_t *a, const uint16_t *b, size_t d)
{
	return l2sq_any(a, b, d, 1);
}

static float dot_h(const uint16_t *a, const uint16_t *b, size_t d)
{
	return dot_any(a, b, d, 1);
}

static float l2sq_fh(const float *a, const uint16_t *b, size_t d)
{
	return l2sq_any(a, b, d, 0);
}

static float dot_fh(const float *a, const uint16_t *b, size_t d)
{
	return dot_any(a, b, d, 0);
}

const knytt__vec_ops knytt__vec_avx512 = {
	"avx512", l2sq, dot, cosd, l2sq_i8, dot_i8, below, l2sq_f8, dot_f8,
	dot_f8_rows, l2sq_h, dot_h, l2sq_fh, dot_fh, l2sq_f8w, vsub,
};
