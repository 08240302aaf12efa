/*
 * vec.h -- the kernel table of lib/vec.  Not API.
 *
 * Every tier implements the same fifteen kernels; vec_scalar.c is the
 * reference that tests compare the others with on every dimension 1..300.
 */
#ifndef KNYTT_VEC_H
#define KNYTT_VEC_H

#include "../internal.h"

typedef struct knytt__vec_ops {
	const char *name;
	/* sum (a_i - b_i)^2 */
	float (*l2sq)(const float *a, const float *b, size_t d);
	/* sum a_i b_i */
	float (*dot)(const float *a, const float *b, size_t d);
	/* 1 - a.b / (|a| |b|); 1 when either vector is zero */
	float (*cosd)(const float *a, const float *b, size_t d);
	/* int8 codes in [-127, 127]: sum (a_i - b_i)^2 (fits uint32 for
	 * d <= 65536) and sum a_i b_i (fits int32) */
	uint32_t (*l2sq_i8)(const int8_t *a, const int8_t *b, size_t d);
	int32_t (*dot_i8)(const int8_t *a, const int8_t *b, size_t d);
	/* The filter of an exact scan (exact.c): of the n values
	 *     d_i = c + a * (p_i * m_i) + v_i
	 * (m NULL: m_i = 1; v NULL: v_i = 0), writes the index and value of
	 * those with d_i < thr to idx/out, in order, and returns how many.
	 * Every tier evaluates d_i with the same operations in the same
	 * order (multiplies and adds, never fused), so all tiers return the
	 * same candidates, bit for bit. */
	size_t (*below)(const float *p, const float *m, const float *v,
			float a, float c, float thr, size_t n, uint32_t *idx,
			float *out);
	/* A float query against int8 codes (the asymmetric distances of
	 * the int8-only index: the query keeps its precision, only the
	 * stored side is rounded): sum (a_i - b_i)^2 and sum a_i b_i.  The
	 * tiers sum in different orders, so they agree to float rounding,
	 * not bit for bit. */
	float (*l2sq_f8)(const float *a, const int8_t *b, size_t d);
	float (*dot_f8)(const float *a, const int8_t *b, size_t d);
	/* dot_f8 for many rows of one code table: for i < n,
	 *     out[i] = scale[rows[i]] * sum_j a_j codes[rows[i] d + j]
	 * (rows NULL: row i is codes + i d, its step scale[i]) (the int8
	 * pass of a wide filtered scan, lib/engine/scan.c).  One
	 * call per row through the table cost ~9 ns at d = 64, mostly the
	 * horizontal sum each row waits on: the SIMD tiers score four rows
	 * at a time, sum them together and prefetch the rows ahead. */
	void (*dot_f8_rows)(const float *a, const int8_t *codes,
			    const float *scale, const uint32_t *rows,
			    size_t n, size_t d, float *out);
	/* f16 vectors (IEEE binary16, half.h; the f16 index,
	 * KNYTT_QUANT_F16), widened to f32 and summed in f32, so they agree
	 * with the f32 kernels run on the widened values to rounding:
	 * sum (a_i - b_i)^2 and sum a_i b_i.  _h: f16 on both sides (stored
	 * against stored, while building); _fh: an f32 query against f16
	 * (searches: the query keeps its precision). */
	float (*l2sq_h)(const uint16_t *a, const uint16_t *b, size_t d);
	float (*dot_h)(const uint16_t *a, const uint16_t *b, size_t d);
	float (*l2sq_fh)(const float *a, const uint16_t *b, size_t d);
	float (*dot_fh)(const float *a, const uint16_t *b, size_t d);
	/* A float query against int8 codes with a step per dimension:
	 * sum (a_i - s_i b_i)^2 (the int8-only index's residual codes,
	 * lib/index/quant.c).  As l2sq_f8, the tiers agree to rounding. */
	float (*l2sq_f8w)(const float *a, const float *s, const int8_t *b,
			  size_t d);
	/* out_i = a_i - b_i: one rounding each, so every tier writes the
	 * same floats (out may be a: in place) */
	void (*sub)(const float *a, const float *b, float *out, size_t d);
} knytt__vec_ops;

/* dot_f8_rows one row at a time through @p one (vec_scalar.c): the
 * scalar and NEON tiers, and the rows the SIMD ones leave over. */
void knytt__dot_f8_rows_by(float (*one)(const float *, const int8_t *,
					   size_t),
			   const float *a, const int8_t *codes,
			   const float *scale, const uint32_t *rows, size_t n,
			   size_t d, float *out);

/* The SIMD tiers' dot_f8_rows step, four rows at a time: the rows
 * i..i+3 (of @p rows, or i..i+3 themselves when rows is NULL: laid end
 * to end) into r[], after prefetching the codes of the rows
 * KNYTT__ROWS_AHEAD further on (none for rows end to end). */
#define KNYTT__ROWS_AHEAD 16
static inline void knytt__rows4(const int8_t *codes, const uint32_t *rows,
				size_t i, size_t n, size_t d, size_t r[4])
{
	for (size_t k = 0; k < 4; k++) {
		size_t a = i + KNYTT__ROWS_AHEAD + k;
		if (rows && a < n) {
			const int8_t *p = codes + (size_t)rows[a] * d;
			for (size_t o = 0; o < d; o += 64)
				__builtin_prefetch(p + o);
		}
		r[k] = rows ? rows[i + k] : i + k;
	}
}

/* The scalar f16 kernels, also the NEON tier's and the SIMD tiers'
 * tails (vec_scalar.c). */
float knytt__l2sq_h_scalar(const uint16_t *a, const uint16_t *b, size_t d);
float knytt__dot_h_scalar(const uint16_t *a, const uint16_t *b, size_t d);
float knytt__l2sq_fh_scalar(const float *a, const uint16_t *b, size_t d);
float knytt__dot_fh_scalar(const float *a, const uint16_t *b, size_t d);
/* The scalar l2sq_f8w and sub, also the NEON tier's and the SIMD tiers'
 * tails. */
float knytt__l2sq_f8w_scalar(const float *a, const float *s, const int8_t *b,
			     size_t d);
void knytt__sub_scalar(const float *a, const float *b, float *out, size_t d);

/* The scalar filter, also the tail of the SIMD ones and the NEON tier's
 * (vec_scalar.c). */
size_t knytt__below_scalar(const float *p, const float *m, const float *v,
			   float a, float c, float thr, size_t n,
			   uint32_t *idx, float *out);

extern const knytt__vec_ops knytt__vec_scalar;
#if defined(__x86_64__)
extern const knytt__vec_ops knytt__vec_avx2;
extern const knytt__vec_ops knytt__vec_avx512;
#endif
#if defined(__aarch64__)
extern const knytt__vec_ops knytt__vec_neon;
#endif

/* The table chosen for this CPU (probed once, KNYTT_SIMD honoured). */
const knytt__vec_ops *knytt__vec(void);

/* Every tier this CPU can run, scalar first; returns how many (<= 4). */
int knytt__vec_tiers(const knytt__vec_ops **out, int cap);

/* Scales @p v (d floats) to unit length in place; a zero vector stays
 * zero.  Returns the original norm. */
float knytt__normalize(float *v, size_t d);

#endif
