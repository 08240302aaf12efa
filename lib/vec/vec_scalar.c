/*
 * vec_scalar.c -- the reference kernels: plain loops, float accumulators
 * (int64 for the int8 kernels).  The SIMD tiers must agree with these to
 * within rounding of their different summation order.
 */
#include "half.h"
#include "vec.h"

#include <math.h>

static float l2sq(const float *a, const float *b, size_t d)
{
	float s = 0;
	for (size_t i = 0; i < d; i++) {
		float t = a[i] - b[i];
		s += t * t;
	}
	return s;
}

static float dot(const float *a, const float *b, size_t d)
{
	float s = 0;
	for (size_t i = 0; i < d; i++)
		s += a[i] * b[i];
	return s;
}

static float cosd(const float *a, const float *b, size_t d)
{
	float ab = 0, aa = 0, bb = 0;
	for (size_t i = 0; i < d; i++) {
		ab += a[i] * b[i];
		aa += a[i] * a[i];
		bb += b[i] * b[i];
	}
	if (aa == 0 || bb == 0)
		return 1.0f;
	return 1.0f - ab / sqrtf(aa * bb);
}

static uint32_t l2sq_i8(const int8_t *a, const int8_t *b, size_t d)
{
	int64_t s = 0;
	for (size_t i = 0; i < d; i++) {
		int t = a[i] - b[i];
		s += t * t;
	}
	return (uint32_t)s;
}

static int32_t dot_i8(const int8_t *a, const int8_t *b, size_t d)
{
	int64_t s = 0;
	for (size_t i = 0; i < d; i++)
		s += a[i] * b[i];
	return (int32_t)s;
}

static float l2sq_f8(const float *a, const int8_t *b, size_t d)
{
	float s = 0;
	for (size_t i = 0; i < d; i++) {
		float t = a[i] - (float)b[i];
		s += t * t;
	}
	return s;
}

static float dot_f8(const float *a, const int8_t *b, size_t d)
{
	float s = 0;
	for (size_t i = 0; i < d; i++)
		s += a[i] * (float)b[i];
	return s;
}

void knytt__dot_f8_rows_by(float (*one)(const float *, const int8_t *,
					   size_t),
			   const float *a, const int8_t *codes,
			   const float *scale, const uint32_t *rows, size_t n,
			   size_t d, float *out)
{
	for (size_t i = 0; i < n; i++) {
		size_t r = rows ? rows[i] : i;
		out[i] = scale[r] * one(a, codes + r * d, d);
	}
}

static void dot_f8_rows(const float *a, const int8_t *codes,
			const float *scale, const uint32_t *rows, size_t n,
			size_t d, float *out)
{
	knytt__dot_f8_rows_by(dot_f8, a, codes, scale, rows, n, d, out);
}

size_t knytt__below_scalar(const float *p, const float *m, const float *v,
			   float a, float c, float thr, size_t n,
			   uint32_t *idx, float *out)
{
	size_t got = 0;
	for (size_t i = 0; i < n; i++) {
		float t = m ? p[i] * m[i] : p[i];
		float d = c + a * t;
		if (v)
			d = d + v[i];
		if (d < thr) {
			idx[got] = (uint32_t)i;
			out[got++] = d;
		}
	}
	return got;
}

float knytt__l2sq_h_scalar(const uint16_t *a, const uint16_t *b, size_t d)
{
	float s = 0;
	for (size_t i = 0; i < d; i++) {
		float t = knytt__f16_to_f32(a[i]) - knytt__f16_to_f32(b[i]);
		s += t * t;
	}
	return s;
}

float knytt__dot_h_scalar(const uint16_t *a, const uint16_t *b, size_t d)
{
	float s = 0;
	for (size_t i = 0; i < d; i++)
		s += knytt__f16_to_f32(a[i]) * knytt__f16_to_f32(b[i]);
	return s;
}

float knytt__l2sq_fh_scalar(const float *a, const uint16_t *b, size_t d)
{
	float s = 0;
	for (size_t i = 0; i < d; i++) {
		float t = a[i] - knytt__f16_to_f32(b[i]);
		s += t * t;
	}
	return s;
}

float knytt__dot_fh_scalar(const float *a, const uint16_t *b, size_t d)
{
	float s = 0;
	for (size_t i = 0; i < d; i++)
		s += a[i] * knytt__f16_to_f32(b[i]);
	return s;
}

float knytt__l2sq_f8w_scalar(const float *a, const float *s, const int8_t *b,
			     size_t d)
{
	float r = 0;
	for (size_t i = 0; i < d; i++) {
		float t = a[i] - s[i] * (float)b[i];
		r += t * t;
	}
	return r;
}

void knytt__sub_scalar(const float *a, const float *b, float *out, size_t d)
{
	for (size_t i = 0; i < d; i++)
		out[i] = a[i] - b[i];
}

const knytt__vec_ops knytt__vec_scalar = {
	"scalar", l2sq, dot, cosd, l2sq_i8, dot_i8, knytt__below_scalar,
	l2sq_f8, dot_f8, dot_f8_rows, knytt__l2sq_h_scalar,
	knytt__dot_h_scalar, knytt__l2sq_fh_scalar, knytt__dot_fh_scalar,
	knytt__l2sq_f8w_scalar, knytt__sub_scalar,
};
