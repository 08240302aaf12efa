/*
 * vec_neon.c -- NEON kernels for arm64 (NEON is part of the AArch64 base
 * ISA, so no probe is needed; this file is built only on aarch64).
 *
 * f32: four 4-lane FMA accumulators (16 floats per step), scalar tail.
 * int8: 8 codes per step widened to 16-bit; differences are squared into
 * 32-bit lanes (vmlal_s16), products (at most 127^2, fit int16) summed
 * pairwise into 32-bit lanes (vpadalq_s16); scalar tail.
 */
#include "vec.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#include <math.h>

static float l2sq(const float *a, const float *b, size_t d)
{
	float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 16 <= d; i += 16) {
		float32x4_t t0 = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
		float32x4_t t1 =
			vsubq_f32(vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
		float32x4_t t2 =
			vsubq_f32(vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
		float32x4_t t3 = vsubq_f32(vld1q_f32(a + i + 12),
					   vld1q_f32(b + i + 12));
		s0 = vfmaq_f32(s0, t0, t0);
		s1 = vfmaq_f32(s1, t1, t1);
		s2 = vfmaq_f32(s2, t2, t2);
		s3 = vfmaq_f32(s3, t3, t3);
	}
	for (; i + 4 <= d; i += 4) {
		float32x4_t t = vsubq_f32(vld1q_f32(a + i), vld1q_f32(b + i));
		s0 = vfmaq_f32(s0, t, t);
	}
	float r = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
	for (; i < d; i++) {
		float t = a[i] - b[i];
		r += t * t;
	}
	return r;
}

static float dot(const float *a, const float *b, size_t d)
{
	float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
	size_t i = 0;
	for (; i + 16 <= d; i += 16) {
		s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
		s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
		s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
		s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12),
			       vld1q_f32(b + i + 12));
	}
	for (; i + 4 <= d; i += 4)
		s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
	float r = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
	for (; i < d; i++)
		r += a[i] * b[i];
	return r;
}

static float cosd(const float *a, const float *b, size_t d)
{
	float32x4_t ab = vdupq_n_f32(0), aa = ab, bb = ab;
	size_t i = 0;
	for (; i + 4 <= d; i += 4) {
		float32x4_t x = vld1q_f32(a + i), y = vld1q_f32(b + i);
		ab = vfmaq_f32(ab, x, y);
		aa = vfmaq_f32(aa, x, x);
		bb = vfmaq_f32(bb, y, y);
	}
	float sab = vaddvq_f32(ab), saa = vaddvq_f32(aa), sbb = vaddvq_f32(bb);
	for (; i < d; i++) {
		sab += a[i] * b[i];
		saa += a[i] * a[i];
		sbb += b[i] * b[i];
	}
	if (saa == 0 || sbb == 0)
		return 1.0f;
	return 1.0f - sab / sqrtf(saa * sbb);
}

static uint32_t l2sq_i8(const int8_t *a, const int8_t *b, size_t d)
{
	int32x4_t s = vdupq_n_s32(0);
	size_t i = 0;
	for (; i + 8 <= d; i += 8) {
		int16x8_t t = vsubl_s8(vld1_s8(a + i), vld1_s8(b + i));
		/* a difference reaches 254, its square overflows int16:
		 * widen before multiplying */
		s = vmlal_s16(s, vget_low_s16(t), vget_low_s16(t));
		s = vmlal_high_s16(s, t, t);
	}
	uint32_t r = (uint32_t)vaddvq_s32(s);
	for (; i < d; i++) {
		int t = a[i] - b[i];
		r += (uint32_t)(t * t);
	}
	return r;
}

static int32_t dot_i8(const int8_t *a, const int8_t *b, size_t d)
{
	int32x4_t s = vdupq_n_s32(0);
	size_t i = 0;
	for (; i + 8 <= d; i += 8)
		s = vpadalq_s16(s, vmull_s8(vld1_s8(a + i), vld1_s8(b + i)));
	int32_t r = vaddvq_s32(s);
	for (; i < d; i++)
		r += a[i] * b[i];
	return r;
}

/* 8 codes widened to two float32x4 (int8 -> int16 -> int32 -> f32) */
static inline void f8_load(const int8_t *b, float32x4_t *lo, float32x4_t *hi)
{
	int16x8_t w = vmovl_s8(vld1_s8(b));
	*lo = vcvtq_f32_s32(vmovl_s16(vget_low_s16(w)));
	*hi = vcvtq_f32_s32(vmovl_high_s16(w));
}

static float l2sq_f8(const float *a, const int8_t *b, size_t d)
{
	float32x4_t s0 = vdupq_n_f32(0), s1 = s0;
	size_t i = 0;
	for (; i + 8 <= d; i += 8) {
		float32x4_t lo, hi;
		f8_load(b + i, &lo, &hi);
		float32x4_t t0 = vsubq_f32(vld1q_f32(a + i), lo),
			    t1 = vsubq_f32(vld1q_f32(a + i + 4), hi);
		s0 = vfmaq_f32(s0, t0, t0);
		s1 = vfmaq_f32(s1, t1, t1);
	}
	float r = vaddvq_f32(vaddq_f32(s0, s1));
	for (; i < d; i++) {
		float t = a[i] - (float)b[i];
		r += t * t;
	}
	return r;
}

static float dot_f8(const float *a, const int8_t *b, size_t d)
{
	float32x4_t s0 = vdupq_n_f32(0), s1 = s0;
	size_t i = 0;
	for (; i + 8 <= d; i += 8) {
		float32x4_t lo, hi;
		f8_load(b + i, &lo, &hi);
		s0 = vfmaq_f32(s0, vld1q_f32(a + i), lo);
		s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), hi);
	}
	float r = vaddvq_f32(vaddq_f32(s0, s1));
	for (; i < d; i++)
		r += a[i] * (float)b[i];
	return r;
}

/* one row at a time (not measured on an arm64 machine) */
static void dot_f8_rows(const float *a, const int8_t *codes,
			const float *scale, const uint32_t *rows, size_t n,
			size_t d, float *out)
{
	knytt__dot_f8_rows_by(dot_f8, a, codes, scale, rows, n, d, out);
}

/* below: the scalar filter; the exact scan's cost is the sgemm. */
const knytt__vec_ops knytt__vec_neon = {
	"neon", l2sq, dot, cosd, l2sq_i8, dot_i8, knytt__below_scalar,
	l2sq_f8, dot_f8, dot_f8_rows,
	/* f16: the scalar loops (this tier is not built or run on the
	 * x86 machines the project is tested on) */
	knytt__l2sq_h_scalar, knytt__dot_h_scalar, knytt__l2sq_fh_scalar,
	knytt__dot_fh_scalar, knytt__l2sq_f8w_scalar, knytt__sub_scalar,
};
#endif
