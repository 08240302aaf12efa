/*
 * index.c -- knytt_index for Node: create/load, add, batch add (async),
 * search (sync; a filter function or a label bitset), batch search
 * (async), save, exact k-NN and distance.
 */
#include "addon.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GET_INDEX(env, v, ix)                                               \
	struct kn_handle *ix##_h;                                           \
	if (kn_handle_arg(env, v, KN_INDEX, &ix##_h))                       \
		return NULL;                                                \
	knytt_index *ix = ix##_h->p

/* indexOpen(dim, metric, kind, m, efConstruction, efSearch, quant, seed)
 * -- numbers, enum values from index.js; seed may be undefined. */
static napi_value index_open(napi_env env, napi_callback_info info)
{
	uint32_t v[7];
	uint64_t seed = 0;
	knytt_index *ix;
	int rc;
	KN_ARGS(env, info, 8);
	static const char *const what[] = {"dim", "metric", "kind", "m",
					   "efConstruction", "efSearch",
					   "quant"};

	for (int i = 0; i < 7; i++)
		if (kn_u32(env, argv[i], what[i], &v[i]))
			return NULL;
	if (!kn_is_nullish(env, argv[7]) && kn_u64(env, argv[7], "seed", &seed))
		return NULL;
	if ((rc = knytt_index_create(&ix)))
		return kn_throw(env, rc);
	if ((rc = knytt_index_set_metric(ix, (knytt_metric)v[1])) ||
	    (rc = knytt_index_set_kind(ix, (knytt_index_kind)v[2])) ||
	    (rc = knytt_index_set_m(ix, v[3])) ||
	    (rc = knytt_index_set_ef_construction(ix, v[4])) ||
	    (rc = knytt_index_set_ef_search(ix, v[5])) ||
	    (rc = knytt_index_set_quant(ix, (knytt_quant)v[6])) ||
	    (!kn_is_nullish(env, argv[7]) &&
	     (rc = knytt_index_set_seed(ix, seed))) ||
	    (rc = knytt_index_open(ix, v[0]))) {
		napi_value err = kn_error_field(env, rc, knytt_errmsg(),
					       knytt_errfield());

		knytt_index_close(ix);
		napi_throw(env, err);
		return NULL;
	}
	return kn_new_handle(env, ix, KN_INDEX);
}

static napi_value index_load(napi_env env, napi_callback_info info)
{
	knytt_index *ix;
	char *path;
	int rc;
	KN_ARGS(env, info, 1);

	if (kn_str(env, argv[0], "path", &path))
		return NULL;
	if ((rc = knytt_index_create(&ix)) == 0 &&
	    (rc = knytt_index_load(ix, path)) != 0) {
		napi_value err = kn_error_field(env, rc, knytt_errmsg(),
					       knytt_errfield());

		knytt_index_close(ix);
		free(path);
		napi_throw(env, err);
		return NULL;
	}
	free(path);
	return rc ? kn_throw(env, rc) : kn_new_handle(env, ix, KN_INDEX);
}

/* indexInfo(h) -> {dim, count, memory, vectorMemory} */
static napi_value index_info(napi_env env, napi_callback_info info)
{
	napi_value obj;
	KN_ARGS(env, info, 1);
	GET_INDEX(env, argv[0], ix);

	napi_create_object(env, &obj);
	kn_set(env, obj, "dim", kn_num(env, knytt_index_dim(ix)));
	kn_set(env, obj, "count", kn_num(env, (double)knytt_index_count(ix)));
	kn_set(env, obj, "memory", kn_num(env, (double)knytt_index_memory(ix)));
	kn_set(env, obj, "vectorMemory",
	       kn_num(env, (double)knytt_index_vector_memory(ix)));
	return obj;
}

/* indexAdd(h, label, vector, upsert) */
static napi_value index_add(napi_env env, napi_callback_info info)
{
	uint64_t label;
	float *vec;
	size_t n;
	int upsert;
	KN_ARGS(env, info, 4);
	GET_INDEX(env, argv[0], ix);

	if (kn_u64(env, argv[1], "label", &label) ||
	    kn_f32(env, argv[2], "vector", &vec, &n) ||
	    kn_bool(env, argv[3], &upsert))
		return NULL;
	return kn_check(env, upsert ?
			knytt_index_upsert(ix, label, vec, (uint32_t)n) :
			knytt_index_add(ix, label, vec, (uint32_t)n),
			kn_undefined(env));
}

static napi_value index_remove(napi_env env, napi_callback_info info)
{
	uint64_t label;
	KN_ARGS(env, info, 2);
	GET_INDEX(env, argv[0], ix);

	if (kn_u64(env, argv[1], "label", &label))
		return NULL;
	return kn_check(env, knytt_index_remove(ix, label), kn_undefined(env));
}

static napi_value index_contains(napi_env env, napi_callback_info info)
{
	uint64_t label;
	napi_value b;
	KN_ARGS(env, info, 2);
	GET_INDEX(env, argv[0], ix);

	if (kn_u64(env, argv[1], "label", &label))
		return NULL;
	napi_get_boolean(env, knytt_index_contains(ix, label) == 1, &b);
	return b;
}

/* indexGet(h, label) -> Float32Array */
static napi_value index_get(napi_env env, napi_callback_info info)
{
	uint64_t label;
	void *out;
	napi_value arr;
	KN_ARGS(env, info, 2);
	GET_INDEX(env, argv[0], ix);

	if (kn_u64(env, argv[1], "label", &label))
		return NULL;
	if (!(arr = kn_typed(env, napi_float32_array, knytt_index_dim(ix),
			     &out)))
		return NULL;
	return kn_check(env, knytt_index_get(ix, label, out,
					     knytt_index_dim(ix)), arr);
}

static napi_value index_train_quant(napi_env env, napi_callback_info info)
{
	float *v;
	size_t n;
	uint32_t dim;
	KN_ARGS(env, info, 2);
	GET_INDEX(env, argv[0], ix);

	if (kn_f32(env, argv[1], "vectors", &v, &n))
		return NULL;
	dim = knytt_index_dim(ix);
	if (n % dim)
		return kn_throw_msg(env, KNYTT_EINVAL, "vectors length is not a "
				    "multiple of the index dimension");
	return kn_check(env, knytt_index_train_quant(ix, n / dim, v, dim),
			kn_undefined(env));
}

static napi_value index_save(napi_env env, napi_callback_info info)
{
	char *path;
	int rc;
	KN_ARGS(env, info, 2);
	GET_INDEX(env, argv[0], ix);

	if (kn_str(env, argv[1], "path", &path))
		return NULL;
	rc = knytt_index_save(ix, path);
	free(path);
	return kn_check(env, rc, kn_undefined(env));
}

/* ---- single search ----------------------------------------------------- */

/* A JavaScript filter called from inside the graph walk (same thread). */
struct js_filter {
	napi_env env;
	napi_value fn;
	int failed;
};

static int js_filter_call(uint64_t label, void *ctx)
{
	struct js_filter *f = ctx;
	napi_value arg, ret, undef;
	int keep = 0;

	if (f->failed)
		return 0;
	arg = kn_u64_value(f->env, label);
	napi_get_undefined(f->env, &undef);
	if (napi_call_function(f->env, undef, f->fn, 1, &arg, &ret) != napi_ok ||
	    kn_bool(f->env, ret, &keep)) {
		f->failed = 1;   /* the exception stays pending */
		return 0;
	}
	return keep;
}

/* indexSearch(h, query, ef, filter, labels, distances) -> count.  k is
 * the length of the BigUint64Array labels (and of the Float32Array
 * distances), which index.js allocates: results are written straight
 * into them, and allocating typed arrays in JavaScript is cheaper than
 * through N-API.  filter is undefined, a function(label) or {bits:
 * BigUint64Array, nbits}. */
static napi_value index_search(napi_env env, napi_callback_info info)
{
	float *q, *dists;
	size_t qn, k, kd;
	uint32_t ef;
	uint64_t *labels;
	napi_value fv;
	napi_valuetype ft = napi_undefined;
	int n;
	KN_ARGS(env, info, 6);
	GET_INDEX(env, argv[0], ix);

	if (kn_f32(env, argv[1], "query", &q, &qn) ||
	    kn_u32(env, argv[2], "ef", &ef) ||
	    kn_u64s(env, argv[4], "labels", &labels, &k) ||
	    kn_f32(env, argv[5], "distances", &dists, &kd))
		return NULL;
	if (kd != k)
		return kn_throw_msg(env, KNYTT_EINVAL, "labels and distances "
				    "differ in length");
	fv = argv[3];
	napi_typeof(env, fv, &ft);
	if (ft == napi_function) {
		struct js_filter f = {env, fv, 0};

		n = knytt_index_search_filter(ix, q, (uint32_t)qn, k, ef,
					      js_filter_call, &f, labels,
					      dists);
		if (f.failed)
			return NULL;
	} else if (ft == napi_object) {
		napi_value bv, nv;
		uint64_t *bits, nbits;
		size_t words;

		if (kn_prop(env, fv, "bits", &bv) ||
		    kn_prop(env, fv, "nbits", &nv) ||
		    kn_u64s(env, bv, "filter bits", &bits, &words) ||
		    kn_u64(env, nv, "filter nbits", &nbits))
			return NULL;
		if (nbits > words * 64)
			return kn_throw_msg(env, KNYTT_EINVAL,
					    "filter nbits exceeds its bits");
		n = knytt_index_search_bitset(ix, q, (uint32_t)qn, k, ef, bits,
					      nbits, labels, dists);
	} else {
		n = knytt_index_search(ix, q, (uint32_t)qn, k, ef, labels,
				       dists);
	}
	return n < 0 ? kn_throw(env, n) : kn_num(env, n);
}

/* ---- async batch search and batch add ---------------------------------------- */

struct batch_job {
	struct kn_job base;
	knytt_index *ix;
	const float *vecs;
	size_t n;
	uint32_t dim, k, ef, threads;
	uint64_t *labels;  /* in for add, out for search */
	float *dists;
};

static int search_exec(struct kn_job *job)
{
	struct batch_job *b = (struct batch_job *)job;

	return knytt_index_search_batch(b->ix, b->n, b->vecs, b->dim, b->k,
					b->ef, b->threads, b->labels,
					b->dists);
}

static napi_value search_done(napi_env env, struct kn_job *job)
{
	napi_value res, la, da;

	/* refs[1] and refs[2] are the output arrays made before queueing */
	napi_get_reference_value(env, job->refs[1], &la);
	napi_get_reference_value(env, job->refs[2], &da);
	napi_create_object(env, &res);
	kn_set(env, res, "labels", la);
	kn_set(env, res, "distances", da);
	return res;
}

/* indexSearchBatch(h, queries, k, ef, threads) -> Promise */
static napi_value index_search_batch(napi_env env, napi_callback_info info)
{
	struct batch_job *b;
	float *q;
	size_t qn;
	uint32_t k, ef, threads, dim;
	napi_value la, da;
	KN_ARGS(env, info, 5);
	GET_INDEX(env, argv[0], ix);

	if (kn_f32(env, argv[1], "queries", &q, &qn) ||
	    kn_u32(env, argv[2], "k", &k) || kn_u32(env, argv[3], "ef", &ef) ||
	    kn_u32(env, argv[4], "threads", &threads))
		return NULL;
	dim = knytt_index_dim(ix);
	if (qn % dim)
		return kn_throw_msg(env, KNYTT_EINVAL, "queries length is not a "
				    "multiple of the index dimension");
	if (!k)
		return kn_throw_msg(env, KNYTT_EINVAL, "k must be at least 1");
	if (!(b = calloc(1, sizeof(*b))))
		return kn_throw_msg(env, KNYTT_ENOMEM, "out of memory");
	b->ix = ix;
	b->vecs = q;
	b->n = qn / dim;
	b->dim = dim;
	b->k = k;
	b->ef = ef;
	b->threads = threads;
	b->base.exec = search_exec;
	b->base.done = search_done;
	b->base.h = ix_h;
	if (!(la = kn_typed(env, napi_biguint64_array, b->n * k,
			    (void **)&b->labels)) ||
	    !(da = kn_typed(env, napi_float32_array, b->n * k,
			    (void **)&b->dists)) ||
	    kn_job_keep(env, &b->base, argv[1]) ||
	    kn_job_keep(env, &b->base, la) || kn_job_keep(env, &b->base, da) ||
	    kn_job_keep(env, &b->base, argv[0])) {
		for (int i = 0; i < b->base.nrefs; i++)
			napi_delete_reference(env, b->base.refs[i]);
		free(b);
		return kn_pending(env);
	}
	return kn_job_queue(env, &b->base, "knytt.searchBatch");
}

static int add_exec(struct kn_job *job)
{
	struct batch_job *b = (struct batch_job *)job;

	return knytt_index_add_batch(b->ix, b->n, b->labels, b->vecs, b->dim,
				     b->threads);
}

static napi_value add_done(napi_env env, struct kn_job *job)
{
	return kn_undefined(env);
}

/* indexAddBatch(h, labels: BigUint64Array, vectors, threads) -> Promise */
static napi_value index_add_batch(napi_env env, napi_callback_info info)
{
	struct batch_job *b;
	float *v;
	uint64_t *labels;
	size_t vn, ln;
	uint32_t threads, dim;
	KN_ARGS(env, info, 4);
	GET_INDEX(env, argv[0], ix);

	if (kn_u64s(env, argv[1], "labels", &labels, &ln) ||
	    kn_f32(env, argv[2], "vectors", &v, &vn) ||
	    kn_u32(env, argv[3], "threads", &threads))
		return NULL;
	dim = knytt_index_dim(ix);
	if (vn != ln * dim) {
		char msg[160];

		snprintf(msg, sizeof(msg), "vectors has %zu values for %zu "
			 "labels of %u dimensions", vn, ln, dim);
		return kn_throw_msg(env, KNYTT_EINVAL, msg);
	}
	if (!(b = calloc(1, sizeof(*b))))
		return kn_throw_msg(env, KNYTT_ENOMEM, "out of memory");
	*b = (struct batch_job){.ix = ix, .vecs = v, .n = ln, .dim = dim,
				.threads = threads, .labels = labels};
	b->base.exec = add_exec;
	b->base.done = add_done;
	b->base.h = ix_h;
	if (kn_job_keep(env, &b->base, argv[1]) ||
	    kn_job_keep(env, &b->base, argv[2]) ||
	    kn_job_keep(env, &b->base, argv[0])) {
		for (int i = 0; i < b->base.nrefs; i++)
			napi_delete_reference(env, b->base.refs[i]);
		free(b);
		return kn_pending(env);
	}
	return kn_job_queue(env, &b->base, "knytt.addBatch");
}

/* ---- exact search and distance ------------------------------------------------- */

/* exactKnn(metric, dim, base, queries, k) -> {ids, distances} */
static napi_value exact_knn(napi_env env, napi_callback_info info)
{
	uint32_t metric, dim, k;
	float *base, *q, *dists;
	size_t bn, qn;
	uint64_t *ids;
	napi_value res, ia, da;
	KN_ARGS(env, info, 5);

	if (kn_u32(env, argv[0], "metric", &metric) ||
	    kn_u32(env, argv[1], "dim", &dim) ||
	    kn_f32(env, argv[2], "base", &base, &bn) ||
	    kn_f32(env, argv[3], "queries", &q, &qn) ||
	    kn_u32(env, argv[4], "k", &k))
		return NULL;
	if (!dim || bn % dim || qn % dim)
		return kn_throw_msg(env, KNYTT_EINVAL, "base and queries lengths "
				    "must be multiples of dim");
	if (!(ia = kn_typed(env, napi_biguint64_array, qn / dim * k,
			    (void **)&ids)) ||
	    !(da = kn_typed(env, napi_float32_array, qn / dim * k,
			    (void **)&dists)))
		return NULL;
	if (!k)
		return kn_throw_msg(env, KNYTT_EINVAL, "k must be at least 1");
	napi_create_object(env, &res);
	kn_set(env, res, "ids", ia);
	kn_set(env, res, "distances", da);
	return kn_check(env, knytt_exact_knn((knytt_metric)metric, dim, base,
					     bn / dim, q, qn / dim, k, ids,
					     dists), res);
}

static napi_value distance(napi_env env, napi_callback_info info)
{
	uint32_t metric;
	float *a, *b;
	size_t an, bn;
	KN_ARGS(env, info, 3);

	if (kn_u32(env, argv[0], "metric", &metric) ||
	    kn_f32(env, argv[1], "a", &a, &an) ||
	    kn_f32(env, argv[2], "b", &b, &bn))
		return NULL;
	if (an != bn)
		return kn_throw_msg(env, KNYTT_EINVAL,
				    "a and b differ in length");
	return kn_num(env, knytt_distance((knytt_metric)metric, a, b, an));
}

void kn_init_index(napi_env env, napi_value exports)
{
	kn_export(env, exports, "indexOpen", index_open);
	kn_export(env, exports, "indexLoad", index_load);
	kn_export(env, exports, "indexInfo", index_info);
	kn_export(env, exports, "indexAdd", index_add);
	kn_export(env, exports, "indexRemove", index_remove);
	kn_export(env, exports, "indexContains", index_contains);
	kn_export(env, exports, "indexGet", index_get);
	kn_export(env, exports, "indexTrainQuant", index_train_quant);
	kn_export(env, exports, "indexSave", index_save);
	kn_export(env, exports, "indexSearch", index_search);
	kn_export(env, exports, "indexSearchBatch", index_search_batch);
	kn_export(env, exports, "indexAddBatch", index_add_batch);
	kn_export(env, exports, "exactKnn", exact_knn);
	kn_export(env, exports, "distance", distance);
}
