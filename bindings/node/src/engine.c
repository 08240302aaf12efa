/*
 * engine.c -- knytt_engine for Node: open with an options object,
 * catalog and feedback, recommend / similar / search / trending
 * (synchronous: they answer from memory in microseconds), training as
 * async work with a progress callback, and the engine's own store.
 */
#include "addon.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GET_ENGINE(env, v, e)                                               \
	struct kn_handle *e##_h;                                            \
	if (kn_handle_arg(env, v, KN_ENGINE, &e##_h))                       \
		return NULL;                                                \
	knytt_engine *e = e##_h->p

/* opts.name as a number, if present: 1 set, 0 absent, -1 thrown. */
static int opt_num(napi_env env, napi_value opts, const char *name,
		   double *out)
{
	napi_value v;

	if (kn_prop(env, opts, name, &v))
		return -1;
	if (kn_is_nullish(env, v))
		return 0;
	return kn_f64(env, v, name, out) ? -1 : 1;
}

/* opts.name = [a, b, c] of numbers. */
static int opt_triple(napi_env env, napi_value opts, const char *name,
		      double out[3])
{
	napi_value v, x;
	bool is = false;
	uint32_t len = 0;

	if (kn_prop(env, opts, name, &v))
		return -1;
	if (kn_is_nullish(env, v))
		return 0;
	if (napi_is_array(env, v, &is) != napi_ok || !is ||
	    napi_get_array_length(env, v, &len) != napi_ok || len != 3) {
		kn_throw_msg(env, KNYTT_EINVAL, name);
		return -1;
	}
	for (uint32_t i = 0; i < 3; i++)
		if (napi_get_element(env, v, i, &x) != napi_ok ||
		    kn_f64(env, x, name, &out[i]))
			return -1;
	return 1;
}

static int set_weights(napi_env env, knytt_engine *e, napi_value opts)
{
	napi_value w, keys, key, val;
	uint32_t n = 0;
	char *name;
	double d;
	int rc;

	if (kn_prop(env, opts, "weights", &w) || kn_is_nullish(env, w))
		return kn_is_nullish(env, w) ? 0 : -1;
	if (napi_get_property_names(env, w, &keys) != napi_ok ||
	    napi_get_array_length(env, keys, &n) != napi_ok)
		return kn_pending(env), -1;
	for (uint32_t i = 0; i < n; i++) {
		if (napi_get_element(env, keys, i, &key) != napi_ok ||
		    napi_get_property(env, w, key, &val) != napi_ok ||
		    kn_str(env, key, "weight name", &name))
			return -1;
		if (kn_f64(env, val, name, &d)) {
			free(name);
			return -1;
		}
		rc = knytt_engine_set_weight(e, name, d);
		free(name);
		if (rc)
			return kn_throw(env, rc), -1;
	}
	return 0;
}

/* The settings of knytt_engine_set_* from the options object. */
static int configure(napi_env env, knytt_engine *e, napi_value opts)
{
	double d[3], x;
	int rc = 0, got;
	char *tenant = NULL;
	napi_value v;

#define NUM(name, call)                                                     \
	if ((got = opt_num(env, opts, name, &x)) < 0)                       \
		return -1;                                                  \
	if (got && (rc = (call)))                                           \
		return kn_throw(env, rc), -1
	NUM("model", knytt_engine_set_model(e, (knytt_model_kind)x));
	NUM("dim", knytt_engine_set_dim(e, (uint32_t)x));
	NUM("excludeSeen", knytt_engine_set_exclude_seen(e, x != 0));
	NUM("twotowerEpochs", knytt_engine_set_twotower(e, (unsigned)x));
	NUM("threads", knytt_engine_set_threads(e, (unsigned)x));
	NUM("feedbackAsync", knytt_engine_set_feedback_async(e, x != 0));
#undef NUM
	if ((got = opt_triple(env, opts, "index", d)) < 0 ||
	    (got && (rc = knytt_engine_set_index(e, (unsigned)d[0],
						 (unsigned)d[1],
						 (unsigned)d[2]))))
		return rc ? kn_throw(env, rc), -1 : -1;
	if ((got = opt_triple(env, opts, "taste", d)) < 0 ||
	    (got && (rc = knytt_engine_set_taste(e, d[0], d[1], d[2]))))
		return rc ? kn_throw(env, rc), -1 : -1;
	if ((got = opt_triple(env, opts, "als", d)) < 0 ||
	    (got && (rc = knytt_engine_set_als(e, (float)d[0], (float)d[1],
					       (unsigned)d[2]))))
		return rc ? kn_throw(env, rc), -1 : -1;
	if (kn_prop(env, opts, "tenant", &v) ||
	    kn_str_opt(env, v, "tenant", &tenant))
		return -1;
	if (tenant) {
		rc = knytt_engine_set_tenant(e, tenant);
		free(tenant);
		if (rc)
			return kn_throw(env, rc), -1;
	}
	return set_weights(env, e, opts);
}

/* engineOpen(uri, opts) */
static napi_value engine_open(napi_env env, napi_callback_info info)
{
	knytt_engine *e;
	char *uri;
	int rc;
	KN_ARGS(env, info, 2);

	if (kn_str(env, argv[0], "uri", &uri))
		return NULL;
	if ((rc = knytt_engine_create(&e))) {
		free(uri);
		return kn_throw(env, rc);
	}
	if (configure(env, e, argv[1])) {
		free(uri);
		knytt_engine_close(e);
		return NULL;
	}
	rc = knytt_engine_open(e, uri);
	free(uri);
	if (rc) {
		napi_value err = kn_error_field(env, rc, knytt_errmsg(),
					       knytt_errfield());

		knytt_engine_close(e);
		napi_throw(env, err);
		return NULL;
	}
	return kn_new_handle(env, e, KN_ENGINE);
}

/* engineStore(h) -> a borrowed store handle that keeps the engine alive
 * and stops working when the engine is closed. */
static napi_value engine_store(napi_env env, napi_callback_info info)
{
	napi_value v;
	struct kn_handle *sh;
	KN_ARGS(env, info, 1);
	GET_ENGINE(env, argv[0], e);

	if (!(v = kn_new_handle(env, knytt_engine_store(e), KN_STORE)))
		return NULL;
	napi_get_value_external(env, v, (void **)&sh);
	sh->borrowed = 1;
	if (napi_create_reference(env, argv[0], 1, &sh->owner) != napi_ok)
		return kn_pending(env);
	return v;
}

/* engineItemUpsert(h, item, vector | undefined) */
static napi_value engine_item_upsert(napi_env env, napi_callback_info info)
{
	struct item_in in;
	float *vec = NULL;
	size_t n = 0;
	int rc;
	KN_ARGS(env, info, 3);
	GET_ENGINE(env, argv[0], e);

	if (!kn_is_nullish(env, argv[2]) &&
	    kn_f32(env, argv[2], "vector", &vec, &n))
		return NULL;
	if (item_from_js(env, argv[1], &in))
		return NULL;
	rc = knytt_engine_item_upsert(e, &in.it, vec, (uint32_t)n);
	item_in_free(&in);
	return kn_check(env, rc, kn_undefined(env));
}

/* engineSimple(h, op, arg): op 0 itemDelete(extId), 1 sync() -> n,
 * 2 flush() */
static napi_value engine_simple(napi_env env, napi_callback_info info)
{
	uint32_t op;
	char *s;
	int rc;
	KN_ARGS(env, info, 3);
	GET_ENGINE(env, argv[0], e);

	if (kn_u32(env, argv[1], "op", &op))
		return NULL;
	if (op == 1)
		return (rc = knytt_engine_sync(e)) < 0 ? kn_throw(env, rc) :
		       kn_num(env, rc);
	if (op == 2)
		return kn_check(env, knytt_engine_flush(e), kn_undefined(env));
	if (kn_str(env, argv[2], "id", &s))
		return NULL;
	rc = knytt_engine_item_delete(e, s);
	free(s);
	return kn_check(env, rc, kn_undefined(env));
}

/* engineFeedback(h, user, item, type, value, tsMs) */
static napi_value engine_feedback(napi_env env, napi_callback_info info)
{
	char *s[3] = {NULL, NULL, NULL};
	static const char *const names[] = {"user", "item", "type"};
	double value;
	int64_t ts;
	napi_value ret = NULL;
	int rc;
	KN_ARGS(env, info, 6);
	GET_ENGINE(env, argv[0], e);

	if (kn_f64(env, argv[4], "value", &value) ||
	    kn_i64(env, argv[5], "tsMs", &ts))
		return NULL;
	for (int i = 0; i < 3; i++)
		if (kn_str(env, argv[1 + i], names[i], &s[i]))
			goto out;
	rc = knytt_engine_feedback(e, s[0], s[1], s[2], value, ts);
	ret = kn_check(env, rc, kn_undefined(env));
out:
	for (int i = 0; i < 3; i++)
		free(s[i]);
	return ret;
}

/* ---- queries ------------------------------------------------------------- */

/* A knytt_filter from {category, priceMin, priceMax, inStockOnly,
 * minQuality}; *cat is the category copy to free.  1 = filter set,
 * 0 = none (nullish), -1 = thrown. */
static int filter_from_js(napi_env env, napi_value obj, knytt_filter *f,
			  char **cat)
{
	napi_value v;
	double d;
	int got, b = 0;

	*cat = NULL;
	if (kn_is_nullish(env, obj))
		return 0;
	knytt_filter_init(f);
	if (kn_prop(env, obj, "category", &v) ||
	    kn_str_opt(env, v, "category", cat))
		return -1;
	f->category_prefix = *cat;
	if ((got = opt_num(env, obj, "priceMin", &d)) < 0)
		goto fail;
	if (got)
		f->price_min = d;
	if ((got = opt_num(env, obj, "priceMax", &d)) < 0)
		goto fail;
	if (got)
		f->price_max = d;
	if ((got = opt_num(env, obj, "minQuality", &d)) < 0)
		goto fail;
	if (got)
		f->min_quality = d;
	if (kn_prop(env, obj, "inStockOnly", &v) || kn_bool(env, v, &b))
		goto fail;
	f->in_stock_only = b;
	return 1;
fail:
	free(*cat);
	*cat = NULL;
	return -1;
}

static napi_value results_to_js(napi_env env, const knytt_result *r, int n)
{
	napi_value arr, o;

	napi_create_array_with_length(env, n, &arr);
	for (int i = 0; i < n; i++) {
		napi_create_object(env, &o);
		kn_set(env, o, "id", kn_string(env, r[i].ext_id));
		kn_set(env, o, "itemId", kn_u64_value(env, r[i].item_id));
		kn_set(env, o, "score", kn_num(env, r[i].score));
		kn_set(env, o, "reason",
		       kn_string(env, knytt_reason_name(r[i].reason)));
		kn_set(env, o, "because", kn_u64_value(env, r[i].because));
		napi_set_element(env, arr, i, o);
	}
	return arr;
}

/* Common frame of the four queries: k, filter, output buffer. */
struct query {
	uint32_t k;
	knytt_filter f;
	int has_filter;
	char *cat;
	knytt_result *out;
};

static int query_begin(napi_env env, napi_value k, napi_value filter,
		       struct query *q)
{
	memset(q, 0, sizeof(*q));
	if (kn_u32(env, k, "k", &q->k))
		return -1;
	if ((q->has_filter = filter_from_js(env, filter, &q->f, &q->cat)) < 0)
		return -1;
	if (!(q->out = calloc(q->k + 1, sizeof(*q->out)))) {
		free(q->cat);
		kn_throw_msg(env, KNYTT_ENOMEM, "out of memory");
		return -1;
	}
	q->out[0].struct_size = sizeof(*q->out); /* the array's stride */
	return 0;
}

static napi_value query_end(napi_env env, struct query *q, int n)
{
	napi_value v = n < 0 ? kn_throw(env, n) : results_to_js(env, q->out, n);

	free(q->cat);
	free(q->out);
	return v;
}

/* engineRecommend(h, user, k, filter, mmrLambda, excludeSeen) */
static napi_value engine_recommend(napi_env env, napi_callback_info info)
{
	struct query q;
	knytt_rec_options o;
	char *user;
	double lambda;
	int got, n, seen;
	KN_ARGS(env, info, 6);
	GET_ENGINE(env, argv[0], e);

	knytt_rec_options_init(&o);
	if (!kn_is_nullish(env, argv[4])) {
		if (kn_f64(env, argv[4], "mmrLambda", &lambda))
			return NULL;
		o.mmr_lambda = lambda;
	}
	if (!kn_is_nullish(env, argv[5])) {
		if (kn_bool(env, argv[5], &seen))
			return NULL;
		o.exclude_seen = seen;
	}
	if (kn_str(env, argv[1], "user", &user))
		return NULL;
	if ((got = query_begin(env, argv[2], argv[3], &q)) < 0) {
		free(user);
		return NULL;
	}
	n = knytt_engine_recommend(e, user, q.k, q.has_filter ? &q.f : NULL,
				   &o, q.out);
	free(user);
	return query_end(env, &q, n);
}

/* engineSimilar(h, item, k, filter) */
static napi_value engine_similar(napi_env env, napi_callback_info info)
{
	struct query q;
	char *item;
	int n;
	KN_ARGS(env, info, 4);
	GET_ENGINE(env, argv[0], e);

	if (kn_str(env, argv[1], "item", &item))
		return NULL;
	if (query_begin(env, argv[2], argv[3], &q)) {
		free(item);
		return NULL;
	}
	n = knytt_engine_similar(e, item, q.k, q.has_filter ? &q.f : NULL,
				 q.out);
	free(item);
	return query_end(env, &q, n);
}

/* engineSearch(h, text, vector, k, filter, user) -> {results, logId} */
static napi_value engine_search(napi_env env, napi_callback_info info)
{
	struct query q;
	char *text = NULL, *user = NULL;
	float *vec = NULL;
	size_t dim = 0;
	uint64_t log_id = 0;
	napi_value res, o;
	int n;
	KN_ARGS(env, info, 6);
	GET_ENGINE(env, argv[0], e);

	if ((!kn_is_nullish(env, argv[2]) &&
	     kn_f32(env, argv[2], "vector", &vec, &dim)) ||
	    kn_str_opt(env, argv[1], "text", &text))
		return NULL;
	if (kn_str_opt(env, argv[5], "user", &user) ||
	    query_begin(env, argv[3], argv[4], &q)) {
		free(text);
		free(user);
		return NULL;
	}
	n = knytt_engine_search(e, text, vec, (uint32_t)dim, q.k,
				q.has_filter ? &q.f : NULL, user, q.out,
				&log_id);
	free(text);
	free(user);
	if (!(res = query_end(env, &q, n)))
		return NULL;
	napi_create_object(env, &o);
	kn_set(env, o, "results", res);
	kn_set(env, o, "logId", kn_u64_value(env, log_id));
	return o;
}

/* engineTrending(h, k, windowS, category) */
static napi_value engine_trending(napi_env env, napi_callback_info info)
{
	struct query q;
	char *cat;
	double window;
	napi_value undef;
	int n;
	KN_ARGS(env, info, 4);
	GET_ENGINE(env, argv[0], e);

	napi_get_undefined(env, &undef);
	if (kn_f64(env, argv[2], "window", &window) ||
	    kn_str_opt(env, argv[3], "category", &cat))
		return NULL;
	if (query_begin(env, argv[1], undef, &q)) {
		free(cat);
		return NULL;
	}
	n = knytt_engine_trending(e, q.k, window, cat, q.out);
	free(cat);
	return query_end(env, &q, n);
}

/* engineEmbedQuery(h, text) -> Float32Array (unit length) or null */
static napi_value engine_embed_query(napi_env env, napi_callback_info info)
{
	char *text;
	float *out;
	napi_value arr, null;
	int rc;
	KN_ARGS(env, info, 2);
	GET_ENGINE(env, argv[0], e);

	uint32_t dim = knytt_engine_dim(e);
	if (dim == 0)
		return kn_throw_msg(env, KNYTT_ESTATE, "engine is not open");
	if (kn_str(env, argv[1], "text", &text))
		return NULL;
	if (!(arr = kn_typed(env, napi_float32_array, dim, (void **)&out))) {
		free(text);
		return NULL;
	}
	rc = knytt_engine_embed_query(e, text, out, dim);
	free(text);
	if (rc < 0)
		return kn_throw(env, rc);
	if (rc == 0) {
		napi_get_null(env, &null);
		return null;
	}
	return arr;
}

/* engineDim(h) -> the dimension of the engine's vectors */
static napi_value engine_dim(napi_env env, napi_callback_info info)
{
	napi_value v;
	KN_ARGS(env, info, 1);
	GET_ENGINE(env, argv[0], e);

	napi_create_uint32(env, knytt_engine_dim(e), &v);
	return v;
}

/* ---- training (async) ------------------------------------------------------ */

struct train_job {
	struct kn_job base;
	knytt_engine *e;
	struct kn_progress *pg;
};

static int train_exec(struct kn_job *job)
{
	struct train_job *t = (struct train_job *)job;

	return knytt_engine_train(t->e, t->pg ? kn_progress_fn : NULL, t->pg);
}

static napi_value train_status_js(napi_env env, knytt_engine *e)
{
	knytt_train_status st = {.struct_size = sizeof st};
	napi_value o, b;
	int rc = knytt_engine_train_status(e, &st);

	if (rc)
		return kn_throw(env, rc);
	napi_create_object(env, &o);
	napi_get_boolean(env, st.running, &b);
	kn_set(env, o, "running", b);
	kn_set(env, o, "lastRc", kn_num(env, st.last_rc));
	kn_set(env, o, "epoch", kn_num(env, st.progress.epoch));
	kn_set(env, o, "epochs", kn_num(env, st.progress.epochs));
	kn_set(env, o, "loss", kn_num(env, st.progress.loss));
	kn_set(env, o, "modelVersion", kn_num(env, (double)st.model_version));
	kn_set(env, o, "itemsIndexed", kn_num(env, (double)st.items_indexed));
	return o;
}

static napi_value train_done(napi_env env, struct kn_job *job)
{
	return train_status_js(env, ((struct train_job *)job)->e);
}

static void train_release(struct kn_job *job)
{
	kn_progress_free(((struct train_job *)job)->pg);
}

/* engineTrain(h, onProgress) -> Promise<status> */
static napi_value engine_train(napi_env env, napi_callback_info info)
{
	struct train_job *t;
	bool pending = false;
	KN_ARGS(env, info, 2);
	GET_ENGINE(env, argv[0], e);

	if (!(t = calloc(1, sizeof(*t))))
		return kn_throw_msg(env, KNYTT_ENOMEM, "out of memory");
	t->e = e;
	t->pg = kn_progress_new(env, argv[1]);
	napi_is_exception_pending(env, &pending);
	if (pending || kn_job_keep(env, &t->base, argv[0])) {
		kn_progress_free(t->pg);
		free(t);
		return kn_pending(env);
	}
	t->base.exec = train_exec;
	t->base.done = train_done;
	t->base.release = train_release;
	t->base.h = e_h;
	t->base.pg = t->pg;
	return kn_job_queue(env, &t->base, "knytt.train");
}

/* engineTrainStart(h): the same job on the engine's own background
 * thread; queries go on meanwhile.  No progress callback: a JavaScript
 * function could not be called from that thread once nothing on the
 * JavaScript side waits for it, so progress is read with trainStatus. */
static napi_value engine_train_start(napi_env env, napi_callback_info info)
{
	KN_ARGS(env, info, 1);
	GET_ENGINE(env, argv[0], e);

	return kn_check(env, knytt_engine_train_start(e, NULL, NULL),
			kn_undefined(env));
}

static int train_wait_exec(struct kn_job *job)
{
	return knytt_engine_train_wait(((struct train_job *)job)->e);
}

/* engineTrainWait(h) -> Promise<status>: joins the background job on a
 * pool thread (the join blocks) and settles with its result. */
static napi_value engine_train_wait(napi_env env, napi_callback_info info)
{
	struct train_job *t;
	KN_ARGS(env, info, 1);
	GET_ENGINE(env, argv[0], e);

	if (!(t = calloc(1, sizeof(*t))))
		return kn_throw_msg(env, KNYTT_ENOMEM, "out of memory");
	t->e = e;
	if (kn_job_keep(env, &t->base, argv[0])) {
		free(t);
		return kn_pending(env);
	}
	t->base.exec = train_wait_exec;
	t->base.done = train_done;
	t->base.release = train_release;
	t->base.h = e_h;
	return kn_job_queue(env, &t->base, "knytt.trainWait");
}

static napi_value engine_train_status(napi_env env, napi_callback_info info)
{
	KN_ARGS(env, info, 1);
	GET_ENGINE(env, argv[0], e);

	return train_status_js(env, e);
}

/* engineSetProfileCache(h, bytes: number or BigInt) */
static napi_value engine_set_profile_cache(napi_env env,
					   napi_callback_info info)
{
	uint64_t bytes;
	KN_ARGS(env, info, 2);
	GET_ENGINE(env, argv[0], e);

	if (kn_u64(env, argv[1], "profileCache", &bytes))
		return NULL;
	return kn_check(env, knytt_engine_set_profile_cache(e, bytes),
			kn_undefined(env));
}

/* engineProfileCacheInfo(h) -> {budget (Infinity: no limit), bytes,
 * profiles, evictions} */
static napi_value engine_profile_cache_info(napi_env env,
					    napi_callback_info info)
{
	knytt_profile_cache_info pc = {.struct_size = sizeof pc};
	napi_value o;
	KN_ARGS(env, info, 1);
	GET_ENGINE(env, argv[0], e);

	int rc = knytt_engine_profile_cache_info(e, &pc);
	if (rc)
		return kn_throw(env, rc);
	napi_create_object(env, &o);
	kn_set(env, o, "budget",
	       kn_num(env, pc.budget == UINT64_MAX ? INFINITY
						    : (double)pc.budget));
	kn_set(env, o, "bytes", kn_num(env, (double)pc.bytes));
	kn_set(env, o, "profiles", kn_num(env, (double)pc.profiles));
	kn_set(env, o, "evictions", kn_num(env, (double)pc.evictions));
	return o;
}

void kn_init_engine(napi_env env, napi_value exports)
{
	kn_export(env, exports, "engineOpen", engine_open);
	kn_export(env, exports, "engineStore", engine_store);
	kn_export(env, exports, "engineItemUpsert", engine_item_upsert);
	kn_export(env, exports, "engineSimple", engine_simple);
	kn_export(env, exports, "engineFeedback", engine_feedback);
	kn_export(env, exports, "engineRecommend", engine_recommend);
	kn_export(env, exports, "engineSimilar", engine_similar);
	kn_export(env, exports, "engineSearch", engine_search);
	kn_export(env, exports, "engineTrending", engine_trending);
	kn_export(env, exports, "engineEmbedQuery", engine_embed_query);
	kn_export(env, exports, "engineDim", engine_dim);
	kn_export(env, exports, "engineSetProfileCache",
		  engine_set_profile_cache);
	kn_export(env, exports, "engineProfileCacheInfo",
		  engine_profile_cache_info);
	kn_export(env, exports, "engineTrain", engine_train);
	kn_export(env, exports, "engineTrainStatus", engine_train_status);
	kn_export(env, exports, "engineTrainStart", engine_train_start);
	kn_export(env, exports, "engineTrainWait", engine_train_wait);
}
