/*
 * vec_avx2.c -- AVX2 + FMA kernels (built with -mavx2 -mfma; only called
 * after the CPU probe in dispatch.c says both are there).
 *
 * f32: four independent 8-lane FMA accumulators (32 floats per step) hide
 * the 4-cycle FMA latency; the last < 8 floats come in through a masked
 * load (vmaskmovps), so no scalar tail and no read past the end.
 * int8: 16 codes per step are sign-extended to 16-bit (vpmovsxbw), the
 * difference or product pairs summed into 32-bit lanes by vpmaddwd; the
 * tail is scalar.  Loads are unaligned throughout.
 * f16: 8 halves per load widened by vcvtph2ps (F16C, which every AVX2
 * CPU has and dispatch.c checks), four accumulators as for f32; the
 * last < 8 go through the scalar loop.
 * below: 8 values per step with separate multiplies and adds (no FMA, so
 * the values equal the scalar reference's bit for bit), a compare with
 * the threshold and vmovmskps; a step with no candidate costs no branch
 * miss, and candidates are rare once the caller's heap is full.
 */
#include "vec.h"

#include <immintrin.h>
#include <math.h>

static inline float hsum8(__m256 v)
{
	__m128 lo = _mm256_castps256_ps128(v);
	__m128 hi = _mm256_extractf128_ps(v, 1);
	lo = _mm_add_ps(lo, hi);
	lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
	lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
	return _mm_cvtss_f32(lo);
}

static inline __m256i tail_mask(size_t r)
{
	/* lanes 0..r-1 all ones */
	const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
	return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)r), idx);
}

static float l2sq(const float *a, const float *b, size_t d)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 32 <= d; i += 32) {
		__m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i),
					  _mm256_loadu_ps(b + i));
		__m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8),
					  _mm256_loadu_ps(b + i + 8));
		__m256 t2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16),
					  _mm256_loadu_ps(b + i + 16));
		__m256 t3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24),
					  _mm256_loadu_ps(b + i + 24));
		s0 = _mm256_fmadd_ps(t0, t0, s0);
		s1 = _mm256_fmadd_ps(t1, t1, s1);
		s2 = _mm256_fmadd_ps(t2, t2, s2);
		s3 = _mm256_fmadd_ps(t3, t3, s3);
	}
	for (; i + 8 <= d; i += 8) {
		__m256 t = _mm256_sub_ps(_mm256_loadu_ps(a + i),
					 _mm256_loadu_ps(b + i));
		s0 = _mm256_fmadd_ps(t, t, s0);
	}
	if (i < d) {
		__m256i m = tail_mask(d - i);
		__m256 t = _mm256_sub_ps(_mm256_maskload_ps(a + i, m),
					 _mm256_maskload_ps(b + i, m));
		s1 = _mm256_fmadd_ps(t, t, s1);
	}
	return hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1),
				   _mm256_add_ps(s2, s3)));
}

static float dot(const float *a, const float *b, size_t d)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 32 <= d; i += 32) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i),
				     _mm256_loadu_ps(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8),
				     _mm256_loadu_ps(b + i + 8), s1);
		s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16),
				     _mm256_loadu_ps(b + i + 16), s2);
		s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24),
				     _mm256_loadu_ps(b + i + 24), s3);
	}
	for (; i + 8 <= d; i += 8)
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i),
				     _mm256_loadu_ps(b + i), s0);
	if (i < d) {
		__m256i m = tail_mask(d - i);
		s1 = _mm256_fmadd_ps(_mm256_maskload_ps(a + i, m),
				     _mm256_maskload_ps(b + i, m), s1);
	}
	return hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1),
				   _mm256_add_ps(s2, s3)));
}

static float cosd(const float *a, const float *b, size_t d)
{
	__m256 ab = _mm256_setzero_ps(), aa = ab, bb = ab;
	size_t i = 0;
	for (; i + 8 <= d; i += 8) {
		__m256 x = _mm256_loadu_ps(a + i), y = _mm256_loadu_ps(b + i);
		ab = _mm256_fmadd_ps(x, y, ab);
		aa = _mm256_fmadd_ps(x, x, aa);
		bb = _mm256_fmadd_ps(y, y, bb);
	}
	if (i < d) {
		__m256i m = tail_mask(d - i);
		__m256 x = _mm256_maskload_ps(a + i, m);
		__m256 y = _mm256_maskload_ps(b + i, m);
		ab = _mm256_fmadd_ps(x, y, ab);
		aa = _mm256_fmadd_ps(x, x, aa);
		bb = _mm256_fmadd_ps(y, y, bb);
	}
	float sab = hsum8(ab), saa = hsum8(aa), sbb = hsum8(bb);
	if (saa == 0 || sbb == 0)
		return 1.0f;
	return 1.0f - sab / sqrtf(saa * sbb);
}

static inline int32_t hsum8i(__m256i v)
{
	__m128i x = _mm_add_epi32(_mm256_castsi256_si128(v),
				  _mm256_extracti128_si256(v, 1));
	x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0x4e));
	x = _mm_add_epi32(x, _mm_shuffle_epi32(x, 0xb1));
	return _mm_cvtsi128_si32(x);
}

static uint32_t l2sq_i8(const int8_t *a, const int8_t *b, size_t d)
{
	/* Per-lane sums stay below 2^31: a lane sees d/16 pairs of at most
	 * 2 * 254^2 each, 2.1e9 only past d = 262144. */
	__m256i s = _mm256_setzero_si256();
	size_t i = 0;
	for (; i + 16 <= d; i += 16) {
		__m256i x = _mm256_cvtepi8_epi16(
			_mm_loadu_si128((const __m128i *)(a + i)));
		__m256i y = _mm256_cvtepi8_epi16(
			_mm_loadu_si128((const __m128i *)(b + i)));
		__m256i t = _mm256_sub_epi16(x, y);
		s = _mm256_add_epi32(s, _mm256_madd_epi16(t, t));
	}
	uint32_t r = (uint32_t)hsum8i(s);
	for (; i < d; i++) {
		int t = a[i] - b[i];
		r += (uint32_t)(t * t);
	}
	return r;
}

static int32_t dot_i8(const int8_t *a, const int8_t *b, size_t d)
{
	__m256i s = _mm256_setzero_si256();
	size_t i = 0;
	for (; i + 16 <= d; i += 16) {
		__m256i x = _mm256_cvtepi8_epi16(
			_mm_loadu_si128((const __m128i *)(a + i)));
		__m256i y = _mm256_cvtepi8_epi16(
			_mm_loadu_si128((const __m128i *)(b + i)));
		s = _mm256_add_epi32(s, _mm256_madd_epi16(x, y));
	}
	int32_t r = hsum8i(s);
	for (; i < d; i++)
		r += a[i] * b[i];
	return r;
}

/* 8 codes sign-extended to 32-bit lanes and converted to float */
static inline __m256 f8_load(const int8_t *b)
{
	return _mm256_cvtepi32_ps(
		_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)b)));
}

static float l2sq_f8(const float *a, const int8_t *b, size_t d)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0;
	size_t i = 0;
	for (; i + 16 <= d; i += 16) {
		__m256 t0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), f8_load(b + i));
		__m256 t1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8),
					  f8_load(b + i + 8));
		s0 = _mm256_fmadd_ps(t0, t0, s0);
		s1 = _mm256_fmadd_ps(t1, t1, s1);
	}
	for (; i + 8 <= d; i += 8) {
		__m256 t = _mm256_sub_ps(_mm256_loadu_ps(a + i), f8_load(b + i));
		s0 = _mm256_fmadd_ps(t, t, s0);
	}
	float r = hsum8(_mm256_add_ps(s0, s1));
	for (; i < d; i++) {
		float t = a[i] - (float)b[i];
		r += t * t;
	}
	return r;
}

static float l2sq_f8w(const float *a, const float *s, const int8_t *b,
		       size_t d)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0;
	size_t i = 0;
	for (; i + 16 <= d; i += 16) {
		__m256 t0 = _mm256_fnmadd_ps(_mm256_loadu_ps(s + i),
					     f8_load(b + i),
					     _mm256_loadu_ps(a + i));
		__m256 t1 = _mm256_fnmadd_ps(_mm256_loadu_ps(s + i + 8),
					     f8_load(b + i + 8),
					     _mm256_loadu_ps(a + i + 8));
		s0 = _mm256_fmadd_ps(t0, t0, s0);
		s1 = _mm256_fmadd_ps(t1, t1, s1);
	}
	for (; i + 8 <= d; i += 8) {
		__m256 t = _mm256_fnmadd_ps(_mm256_loadu_ps(s + i),
					    f8_load(b + i),
					    _mm256_loadu_ps(a + i));
		s0 = _mm256_fmadd_ps(t, t, s0);
	}
	return hsum8(_mm256_add_ps(s0, s1)) +
	       knytt__l2sq_f8w_scalar(a + i, s + i, b + i, d - i);
}

static void vsub(const float *a, const float *b, float *out, size_t d)
{
	size_t i = 0;
	for (; i + 8 <= d; i += 8)
		_mm256_storeu_ps(out + i, _mm256_sub_ps(_mm256_loadu_ps(a + i),
							_mm256_loadu_ps(b + i)));
	knytt__sub_scalar(a + i, b + i, out + i, d - i);
}

static float dot_f8(const float *a, const int8_t *b, size_t d)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0;
	size_t i = 0;
	for (; i + 16 <= d; i += 16) {
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), f8_load(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8),
				     f8_load(b + i + 8), s1);
	}
	for (; i + 8 <= d; i += 8)
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), f8_load(b + i), s0);
	float r = hsum8(_mm256_add_ps(s0, s1));
	for (; i < d; i++)
		r += a[i] * (float)b[i];
	return r;
}

/* The sums of four vectors at once: [sum a, sum b, sum c, sum d]. */
static inline __m128 hsum8x4(__m256 a, __m256 b, __m256 c, __m256 d)
{
	/* per 128-bit lane: pairs, then quads, of each input in turn */
	__m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
	return _mm_add_ps(_mm256_castps256_ps128(t),
			  _mm256_extractf128_ps(t, 1));
}

static void dot_f8_rows(const float *a, const int8_t *codes,
			const float *scale, const uint32_t *rows, size_t n,
			size_t d, float *out)
{
	size_t i = 0, d8 = d & ~(size_t)7;
	for (; i + 4 <= n; i += 4) {
		size_t r[4];
		knytt__rows4(codes, rows, i, n, d, r);
		const int8_t *b0 = codes + r[0] * d, *b1 = codes + r[1] * d,
			     *b2 = codes + r[2] * d, *b3 = codes + r[3] * d;
		__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
		for (size_t j = 0; j < d8; j += 8) {
			__m256 q = _mm256_loadu_ps(a + j);
			s0 = _mm256_fmadd_ps(q, f8_load(b0 + j), s0);
			s1 = _mm256_fmadd_ps(q, f8_load(b1 + j), s1);
			s2 = _mm256_fmadd_ps(q, f8_load(b2 + j), s2);
			s3 = _mm256_fmadd_ps(q, f8_load(b3 + j), s3);
		}
		float t[4];
		_mm_storeu_ps(t, hsum8x4(s0, s1, s2, s3));
		for (size_t j = d8; j < d; j++) {
			t[0] += a[j] * (float)b0[j];
			t[1] += a[j] * (float)b1[j];
			t[2] += a[j] * (float)b2[j];
			t[3] += a[j] * (float)b3[j];
		}
		for (size_t k = 0; k < 4; k++)
			out[i + k] = scale[r[k]] * t[k];
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
	const __m256 va = _mm256_set1_ps(a), vc = _mm256_set1_ps(c),
		     vt = _mm256_set1_ps(thr);
	size_t got = 0, i = 0;
	for (; i + 8 <= n; i += 8) {
		__m256 t = _mm256_loadu_ps(p + i);
		if (m)
			t = _mm256_mul_ps(t, _mm256_loadu_ps(m + i));
		__m256 d = _mm256_add_ps(vc, _mm256_mul_ps(va, t));
		if (v)
			d = _mm256_add_ps(d, _mm256_loadu_ps(v + i));
		unsigned bits = (unsigned)_mm256_movemask_ps(
			_mm256_cmp_ps(d, vt, _CMP_LT_OQ));
		if (!bits)
			continue;
		float dd[8];
		_mm256_storeu_ps(dd, d);
		while (bits) {
			unsigned b = (unsigned)__builtin_ctz(bits);
			bits &= bits - 1;
			idx[got] = (uint32_t)(i + b);
			out[got++] = dd[b];
		}
	}
	size_t more = knytt__below_scalar(p + i, m ? m + i : NULL,
					  v ? v + i : NULL, a, c, thr, n - i,
					  idx + got, out + got);
	for (size_t j = got; j < got + more; j++)
		idx[j] += (uint32_t)i;
	return got + more;
}

static inline __m256 h_load(const uint16_t *p)
{
	return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

/* 8 values of the left operand from i: halves (ah) or floats */
static inline __attribute__((always_inline)) __m256
a_load(const void *a, size_t i, int ah)
{
	return ah ? h_load((const uint16_t *)a + i)
		  : _mm256_loadu_ps((const float *)a + i);
}

/* The f16 kernels, the left operand halves (ah: _h) or floats (_fh);
 * the compiler makes one of each.  A step: 8 values from i into the
 * accumulator s (four named ones: an array of them was kept on the stack
 * at -O2). */
#define L2_STEP(s, i)                                                   \
	do {                                                            \
		__m256 t_ = _mm256_sub_ps(a_load(a, (i), ah),           \
					  h_load(b + (i)));             \
		s = _mm256_fmadd_ps(t_, t_, s);                         \
	} while (0)

static inline __attribute__((always_inline)) float
l2sq_any(const void *a, const uint16_t *b, size_t d, int ah)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 32 <= d; i += 32) {
		L2_STEP(s0, i);
		L2_STEP(s1, i + 8);
		L2_STEP(s2, i + 16);
		L2_STEP(s3, i + 24);
	}
	for (; i + 8 <= d; i += 8)
		L2_STEP(s0, i);
	float r = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1),
				      _mm256_add_ps(s2, s3)));
	if (i == d)
		return r;
	return r + (ah ? knytt__l2sq_h_scalar((const uint16_t *)a + i, b + i,
					      d - i)
		       : knytt__l2sq_fh_scalar((const float *)a + i, b + i,
					       d - i));
}

#define DOT_STEP(s, i)                                                  \
	(s = _mm256_fmadd_ps(a_load(a, (i), ah), h_load(b + (i)), s))

static inline __attribute__((always_inline)) float
dot_any(const void *a, const uint16_t *b, size_t d, int ah)
{
	__m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 32 <= d; i += 32) {
		DOT_STEP(s0, i);
		DOT_STEP(s1, i + 8);
		DOT_STEP(s2, i + 16);
		DOT_STEP(s3, i + 24);
	}
	for (; i + 8 <= d; i += 8)
		DOT_STEP(s0, i);
	float r = hsum8(_mm256_add_ps(_mm256_add_ps(s0, s1),
				      _mm256_add_ps(s2, s3)));
	if (i == d)
		return r;
	return r + (ah ? knytt__dot_h_scalar((const uint16_t *)a + i, b + i,
					     d - i)
		       : knytt__dot_fh_scalar((const float *)a + i, b + i,
					      d - i));
}
#undef L2_STEP
#undef DOT_STEP

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

const knytt__vec_ops knytt__vec_avx2 = {
	"avx2", l2sq, dot, cosd, l2sq_i8, dot_i8, below, l2sq_f8, dot_f8,
	dot_f8_rows, l2sq_h, dot_h, l2sq_fh, dot_fh, l2sq_f8w, vsub,
};
