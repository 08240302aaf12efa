/*
 * results.h -- the caller's knytt_result arrays (results.c) and the query
 * entry points the public ones wrap.  Not API.
 */
#ifndef KNYTT_RESULTS_H
#define KNYTT_RESULTS_H

#include "engine_int.h"

/* The queries proper, in this version's layout: @p out holds k results
 * of sizeof(knytt_result) bytes each.  The public knytt_engine_* of the
 * same names (results.c) check the caller's stride and wrap them. */
int knytt__engine_recommend(knytt_engine *e, const char *user, size_t k,
			    const knytt_filter *filter,
			    const knytt_rec_options *opt, knytt_result *out);
int knytt__engine_similar(knytt_engine *e, const char *item, size_t k,
			  const knytt_filter *filter, knytt_result *out);
int knytt__engine_search(knytt_engine *e, const char *text, const float *vec,
			 uint32_t dim, size_t k, const knytt_filter *filter,
			 const char *user, knytt_result *out,
			 uint64_t *log_id);
int knytt__engine_trending(knytt_engine *e, size_t k, double window_s,
			   const char *category, knytt_result *out);
int knytt__engine_recommend_exp(knytt_engine *e, const char *exp,
				const char *user, size_t k,
				const knytt_filter *filter,
				const knytt_rec_options *opt,
				knytt_result *out, knytt_exp_served *served);
int knytt__engine_search_exp(knytt_engine *e, const char *exp,
			     const char *text, const float *vec, uint32_t dim,
			     size_t k, const knytt_filter *filter,
			     const char *user, knytt_result *out,
			     uint64_t *log_id, knytt_exp_served *served);

/* The smallest caller layout accepted (struct_size and item_id) and the
 * largest (a guard against an uninitialised struct_size, far above any
 * layout this struct will grow to). */
#define KNYTT__RESULT_MIN (offsetof(knytt_result, item_id) + sizeof(uint64_t))
#define KNYTT__RESULT_MAX ((size_t)65536)

/* Result i of a caller's array whose elements are @p stride bytes. */
static inline void *knytt__result_at(void *out, size_t stride, size_t i)
{
	return (char *)out + i * stride;
}

/* One call's results on their way to the caller: the query fills @p full
 * (this version's layout), which is the caller's array itself when its
 * stride is sizeof(knytt_result), else a copy of room for k results that
 * knytt__rout_end writes member by member at the caller's stride. */
typedef struct knytt__rout {
	knytt_result *full;
	void *out;      /* the caller's array */
	size_t stride;  /* the caller's out[0].struct_size, in bytes */
} knytt__rout;

/* Checks @p out and its out[0].struct_size (KNYTT_EINVAL naming "out" or
 * "struct_size", @p fn in the message) and sets up @p r for k results;
 * KNYTT_ENOMEM.  Nothing is written to out. */
int knytt__rout_begin(knytt__rout *r, knytt_result *out, size_t k,
		      const char *fn);
/* The query's answer @p n: when n > 0, its n results reach the caller's
 * array (each with struct_size = the stride); returns n. */
int knytt__rout_end(knytt__rout *r, int n);

#endif
