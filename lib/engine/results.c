/*
 * results.c -- the caller's knytt_result arrays, and the public query
 * calls that fill them.
 *
 * knytt_result is versioned like the input structs, but it travels as an
 * array: out[0].struct_size, set by the caller to the sizeof its header
 * gave it, is the stride between results.  A program built against an
 * older header (a shorter knytt_result) must not be written past each of
 * its elements, and one built against a newer header must find its
 * results at its own stride.  This file is the only place that knows the
 * caller's stride: every query computes in this version's layout, and
 * the wrappers below hand the answer over, member by member, writing a
 * member only when the caller's layout holds it whole.  When the stride
 * is this version's (the usual case) the query writes the caller's array
 * directly and nothing is copied.
 */
#include "results.h"
#include "query.h"

#include <stdlib.h>
#include <string.h>

int knytt__rout_begin(knytt__rout *r, knytt_result *out, size_t k,
		      const char *fn)
{
	if (!out)
		return knytt__err_field(KNYTT_EINVAL, "out", "%s: out is NULL",
					fn);
	size_t s = out->struct_size;
	if (s < KNYTT__RESULT_MIN || s > KNYTT__RESULT_MAX)
		return knytt__err_field(
			KNYTT_EINVAL, "struct_size",
			"%s: out[0].struct_size is %zu: set it to "
			"sizeof(knytt_result) (%zu..%zu bytes)",
			fn, s, KNYTT__RESULT_MIN, KNYTT__RESULT_MAX);
	r->out = out;
	r->stride = s;
	r->full = out;
	if (s == sizeof(knytt_result))
		return KNYTT_OK;
	/* a k the query will reject (0, or over its maximum) needs no room:
	 * the query fails before it writes */
	size_t cap = k && k <= 10000 ? k : 1;
	r->full = malloc(cap * sizeof *r->full);
	if (!r->full)
		return knytt__err(KNYTT_ENOMEM, "%s: no memory for %zu results",
				  fn, cap);
	return KNYTT_OK;
}

/* Member f of @p src into the caller's result @p dst when the caller's
 * layout of @p stride bytes holds it whole.  Members keep their offsets
 * across versions (structs grow at the end only). */
#define PUT(dst, stride, src, f)                                             \
	do {                                                                 \
		if ((stride) >= offsetof(knytt_result, f) + sizeof(src)->f)  \
			memcpy((char *)(dst) + offsetof(knytt_result, f),    \
			       &(src)->f, sizeof(src)->f);                   \
	} while (0)

static void put_result(void *dst, size_t stride, const knytt_result *src)
{
	memcpy(dst, &stride, sizeof stride); /* struct_size */
	PUT(dst, stride, src, item_id);
	PUT(dst, stride, src, ext_id);
	PUT(dst, stride, src, score);
	PUT(dst, stride, src, reason);
	PUT(dst, stride, src, because);
}

int knytt__rout_end(knytt__rout *r, int n)
{
	if (r->full == r->out) {
		for (int i = 0; i < n; i++)
			r->full[i].struct_size = sizeof(knytt_result);
		return n;
	}
	for (int i = 0; i < n; i++)
		put_result(knytt__result_at(r->out, r->stride, (size_t)i),
			   r->stride, &r->full[i]);
	free(r->full);
	return n;
}

/* ------------------------------------------------ the public query calls */

int knytt_engine_recommend(knytt_engine *e, const char *user, size_t k,
			   const knytt_filter *filter,
			   const knytt_rec_options *opt, knytt_result *out)
{
	const char *fn = "knytt_engine_recommend";
	knytt__rout r;
	int rc = knytt__q_check_query(e, k, fn);
	if (rc || (rc = knytt__rout_begin(&r, out, k, fn)))
		return rc;
	return knytt__rout_end(
		&r, knytt__engine_recommend(e, user, k, filter, opt, r.full));
}

int knytt_engine_similar(knytt_engine *e, const char *item, size_t k,
			 const knytt_filter *filter, knytt_result *out)
{
	const char *fn = "knytt_engine_similar";
	knytt__rout r;
	int rc = knytt__q_check_query(e, k, fn);
	if (rc || (rc = knytt__rout_begin(&r, out, k, fn)))
		return rc;
	return knytt__rout_end(
		&r, knytt__engine_similar(e, item, k, filter, r.full));
}

int knytt_engine_search(knytt_engine *e, const char *text, const float *vec,
			uint32_t dim, size_t k, const knytt_filter *filter,
			const char *user, knytt_result *out, uint64_t *log_id)
{
	const char *fn = "knytt_engine_search";
	knytt__rout r;
	int rc = knytt__q_check_query(e, k, fn);
	if (rc || (rc = knytt__rout_begin(&r, out, k, fn)))
		return rc;
	return knytt__rout_end(&r, knytt__engine_search(e, text, vec, dim, k,
							filter, user, r.full,
							log_id));
}

int knytt_engine_trending(knytt_engine *e, size_t k, double window_s,
			  const char *category, knytt_result *out)
{
	const char *fn = "knytt_engine_trending";
	knytt__rout r;
	int rc = knytt__q_check_query(e, k, fn);
	if (rc || (rc = knytt__rout_begin(&r, out, k, fn)))
		return rc;
	return knytt__rout_end(
		&r, knytt__engine_trending(e, k, window_s, category, r.full));
}

/* The experiment calls check their engine themselves (an experiment's
 * variant serves on another engine): only the array is checked here. */
int knytt_engine_recommend_exp(knytt_engine *e, const char *exp,
			       const char *user, size_t k,
			       const knytt_filter *filter,
			       const knytt_rec_options *opt, knytt_result *out,
			       knytt_exp_served *served)
{
	knytt__rout r;
	int rc = knytt__rout_begin(&r, out, k, "knytt_engine_recommend_exp");
	if (rc)
		return rc;
	return knytt__rout_end(&r, knytt__engine_recommend_exp(
					   e, exp, user, k, filter, opt,
					   r.full, served));
}

int knytt_engine_search_exp(knytt_engine *e, const char *exp,
			    const char *text, const float *vec, uint32_t dim,
			    size_t k, const knytt_filter *filter,
			    const char *user, knytt_result *out,
			    uint64_t *log_id, knytt_exp_served *served)
{
	knytt__rout r;
	int rc = knytt__rout_begin(&r, out, k, "knytt_engine_search_exp");
	if (rc)
		return rc;
	return knytt__rout_end(&r, knytt__engine_search_exp(
					   e, exp, text, vec, dim, k, filter,
					   user, r.full, log_id, served));
}
