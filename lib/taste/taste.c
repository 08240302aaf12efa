/*
 * taste.c -- session decay and long-term / session blending.
 */
#include "taste.h"

#include "../vec/vec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int knytt__taste_init(knytt__taste *t, uint32_t dim)
{
	memset(t, 0, sizeof *t);
	t->longv = calloc(dim, sizeof *t->longv);
	t->sess = calloc(dim, sizeof *t->sess);
	if (!t->longv || !t->sess) {
		knytt__taste_free(t);
		return knytt__err(KNYTT_ENOMEM, "taste: out of memory");
	}
	return KNYTT_OK;
}

void knytt__taste_free(knytt__taste *t)
{
	free(t->longv);
	free(t->sess);
	memset(t, 0, sizeof *t);
}

void knytt__taste_session_add(knytt__taste *t, const float *v, uint32_t dim,
			      float w, int64_t ts_ms, double half_life_s,
			      uint64_t item)
{
	const knytt__vec_ops *ops = knytt__vec();
	float n = sqrtf(ops->dot(v, v, dim));
	if (!(n > 0))
		return;
	float keep = t->has_sess ? (float)knytt__decay(ts_ms - t->sess_ts,
						half_life_s)
				 : 0.0f;
	float add = w / n;
	for (uint32_t j = 0; j < dim; j++)
		t->sess[j] = t->sess[j] * keep + add * v[j];
	t->has_sess = 1;
	if (ts_ms > t->sess_ts)
		t->sess_ts = ts_ms;
	t->sess_item = item;
}

int knytt__taste_blend(const knytt__taste *t, uint32_t dim, int64_t now_ms,
		       double half_life_s, double blend, float *out,
		       float *share)
{
	const knytt__vec_ops *ops = knytt__vec();
	float nl = t->long_ok ? sqrtf(ops->dot(t->longv, t->longv, dim)) : 0;
	float ns = t->has_sess ? sqrtf(ops->dot(t->sess, t->sess, dim)) : 0;
	if (!(nl > 0) && !(ns > 0)) {
		*share = 0;
		return 0;
	}
	float f;
	if (!(nl > 0))
		f = 1.0f;
	else if (!(ns > 0))
		f = 0.0f;
	else
		f = (float)(blend * knytt__decay(now_ms - t->sess_ts, half_life_s));
	for (uint32_t j = 0; j < dim; j++)
		out[j] = (nl > 0 ? (1 - f) * t->longv[j] / nl : 0) +
			 (ns > 0 ? f * t->sess[j] / ns : 0);
	*share = f;
	return 1;
}

int knytt__taste_from_session(const knytt__taste *t, uint32_t dim, float f,
			      const float *v)
{
	if (!t->has_sess || f <= 0)
		return 0;
	if (!t->long_ok || f >= 1)
		return 1;
	const knytt__vec_ops *ops = knytt__vec();
	float nl = sqrtf(ops->dot(t->longv, t->longv, dim));
	float ns = sqrtf(ops->dot(t->sess, t->sess, dim));
	if (!(nl > 0) || !(ns > 0))
		return ns > 0;
	float a = (1 - f) * ops->dot(t->longv, v, dim) / nl;
	float b = f * ops->dot(t->sess, v, dim) / ns;
	return b > a;
}
