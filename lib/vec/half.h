/*
 * half.h -- IEEE 754 binary16 ("half", f16) conversions in plain C, for
 * the f16 index (KNYTT_QUANT_F16): 1 sign bit, 5 exponent bits (bias 15),
 * 10 mantissa bits; normal values from 2^-14 to 65504, subnormals down to
 * 2^-24.  Not API.
 *
 * Encoding rounds to nearest, ties to even, as the F16C instruction
 * vcvtps2ph does in its default mode (tests/check_vec.c compares the two
 * where the CPU has F16C).  Callers keep |x| <= KNYTT__HALF_MAX: the
 * index refuses larger values instead of storing infinities.
 */
#ifndef KNYTT_HALF_H
#define KNYTT_HALF_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#define KNYTT__HALF_MAX 65504.0f

static inline uint16_t knytt__f32_to_f16(float f)
{
	uint32_t x;
	memcpy(&x, &f, 4);
	uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
	x &= 0x7fffffffu;
	if (x >= 0x7f800000u) /* inf, NaN (kept quiet) */
		return (uint16_t)(sign | 0x7c00u | (x > 0x7f800000u ? 0x200u : 0));
	if (x >= 0x477ff000u) /* rounds to 65520 or more: inf */
		return (uint16_t)(sign | 0x7c00u);
	if (x < 0x38800000u) {
		/* below 2^-14: a multiple of 2^-24; the scaling is exact and
		 * lrintf rounds ties to even (the default rounding mode);
		 * 1024 is the smallest normal's encoding, as it should be */
		float a;
		memcpy(&a, &x, 4);
		return (uint16_t)(sign | (uint16_t)lrintf(a * 0x1p24f));
	}
	uint32_t mant = x & 0x7fffffu;
	uint32_t h = ((x >> 23) - 127 + 15) << 10 | mant >> 13;
	uint32_t rem = mant & 0x1fffu;
	if (rem > 0x1000u || (rem == 0x1000u && (h & 1)))
		h++; /* a carry into the exponent is still right */
	return (uint16_t)(sign | h);
}

static inline float knytt__f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
	uint32_t e = (h >> 10) & 0x1fu, mant = h & 0x3ffu, x;
	if (e == 0) {
		float v = (float)mant * 0x1p-24f; /* exact */
		return sign ? -v : v;
	}
	if (e == 31)
		x = sign | 0x7f800000u | mant << 13;
	else
		x = sign | (e - 15 + 127) << 23 | mant << 13;
	float f;
	memcpy(&f, &x, 4);
	return f;
}

/* @p d values each way: a vector stored, a stored vector read back */
static inline void knytt__f16_encode(const float *x, uint16_t *h, size_t d)
{
	for (size_t j = 0; j < d; j++)
		h[j] = knytt__f32_to_f16(x[j]);
}

static inline void knytt__f16_decode(const uint16_t *h, float *x, size_t d)
{
	for (size_t j = 0; j < d; j++)
		x[j] = knytt__f16_to_f32(h[j]);
}

#endif
