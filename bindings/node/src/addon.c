/*
 * addon.c -- module entry, errors, argument and result helpers, async
 * jobs and the progress bridge of the knytt N-API addon.
 */
#include "addon.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- errors ------------------------------------------------------------ */

/* An N-API call failed: an exception is pending (or we make one). */
napi_value kn_pending(napi_env env)
{
	bool pending = false;

	napi_is_exception_pending(env, &pending);
	if (!pending) {
		const napi_extended_error_info *info = NULL;

		napi_get_last_error_info(env, &info);
		napi_throw_error(env, "KNYTT_EINVAL",
				 info && info->error_message ?
				 info->error_message : "N-API call failed");
	}
	return NULL;
}

/* An Error with code = the error's name and status = its value. */
napi_value kn_error_value(napi_env env, int rc, const char *msg)
{
	const char *name = knytt_errname(rc);
	char text[700];
	napi_value code, message, err, status;

	if (!msg || !*msg)
		msg = knytt_errstr(rc);
	snprintf(text, sizeof(text), "%s: %s", name, msg);
	napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &code);
	napi_create_string_utf8(env, text, NAPI_AUTO_LENGTH, &message);
	if (rc == KNYTT_EINVAL || rc == KNYTT_ERANGE)
		napi_create_range_error(env, code, message, &err);
	else
		napi_create_error(env, code, message, &err);
	napi_create_int32(env, rc, &status);
	napi_set_named_property(env, err, "status", status);
	return err;
}

napi_value kn_throw_msg(napi_env env, int rc, const char *msg)
{
	napi_throw(env, kn_error_value(env, rc, msg));
	return NULL;
}

napi_value kn_error_field(napi_env env, int rc, const char *msg,
			  const char *field)
{
	napi_value err = kn_error_value(env, rc, msg);
	if (field && *field) { /* as the library names it */
		napi_value f;
		napi_create_string_utf8(env, field, NAPI_AUTO_LENGTH, &f);
		napi_set_named_property(env, err, "field", f);
	}
	return err;
}

napi_value kn_throw(napi_env env, int rc)
{
	napi_throw(env, kn_error_field(env, rc, knytt_errmsg(),
				       knytt_errfield()));
	return NULL;
}

/* Returns @ok, or throws when @rc is negative. */
napi_value kn_check(napi_env env, int rc, napi_value ok)
{
	return rc < 0 ? kn_throw(env, rc) : ok;
}

static int type_error(napi_env env, const char *what, const char *want)
{
	char msg[300];

	snprintf(msg, sizeof(msg), "%s must be %s", what, want);
	napi_throw_type_error(env, "KNYTT_EINVAL", msg);
	return -1;
}

/* ---- handles ----------------------------------------------------------- */

static void close_handle(struct kn_handle *h)
{
	void *p = h->p;

	h->p = NULL;
	if (!p || h->borrowed)
		return;
	switch (h->kind) {
	case KN_INDEX: knytt_index_close(p); break;
	case KN_STORE: knytt_store_close(p); break;
	case KN_ENGINE: knytt_engine_close(p); break;
	case KN_ALS: knytt_als_close(p); break;
	case KN_TWOTOWER: knytt_twotower_close(p); break;
	case KN_EMBEDDER: knytt_embedder_close(p); break;
	}
}

static void finalize_handle(napi_env env, void *data, void *hint)
{
	struct kn_handle *h = data;

	close_handle(h);
	if (h->owner)
		napi_delete_reference(env, h->owner);
	free(h);
}

napi_value kn_new_handle(napi_env env, void *p, enum kn_kind kind)
{
	struct kn_handle *h = calloc(1, sizeof(*h));
	napi_value v;

	if (!h)
		return kn_throw_msg(env, KNYTT_ENOMEM, "out of memory");
	h->p = p;
	h->kind = kind;
	if (napi_create_external(env, h, finalize_handle, NULL, &v) != napi_ok) {
		close_handle(h);
		free(h);
		return kn_pending(env);
	}
	return v;
}

static const char *kind_name(enum kn_kind kind)
{
	static const char *const names[] = {"?", "index", "store", "engine",
					    "ALS model", "two-tower model",
					    "embedder"};
	return names[kind <= KN_EMBEDDER ? kind : 0];
}

/* The handle in @v, open and of @kind (a borrowed store also needs its
 * engine open). */
int kn_handle_arg(napi_env env, napi_value v, enum kn_kind kind,
		  struct kn_handle **out)
{
	napi_valuetype t;
	struct kn_handle *h = NULL;

	if (napi_typeof(env, v, &t) != napi_ok || t != napi_external ||
	    napi_get_value_external(env, v, (void **)&h) != napi_ok || !h ||
	    h->kind != kind)
		return type_error(env, "handle", kind_name(kind));
	if (h->owner) {
		napi_value ov;
		struct kn_handle *o = NULL;

		if (napi_get_reference_value(env, h->owner, &ov) != napi_ok ||
		    napi_get_value_external(env, ov, (void **)&o) != napi_ok ||
		    !o || !o->p)
			h->p = NULL;
	}
	if (!h->p) {
		char msg[64];

		snprintf(msg, sizeof(msg), "%s is closed", kind_name(kind));
		kn_throw_msg(env, KNYTT_ESTATE, msg);
		return -1;
	}
	*out = h;
	return 0;
}

/* The engine handle that owns a borrowed store, or NULL. */
struct kn_handle *kn_owner(napi_env env, struct kn_handle *h)
{
	napi_value ov;
	struct kn_handle *o = NULL;

	if (!h->owner ||
	    napi_get_reference_value(env, h->owner, &ov) != napi_ok ||
	    napi_get_value_external(env, ov, (void **)&o) != napi_ok)
		return NULL;
	return o;
}

static napi_value native_close(napi_env env, napi_callback_info info)
{
	struct kn_handle *h = NULL;
	napi_valuetype t;
	KN_ARGS(env, info, 1);

	if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external ||
	    napi_get_value_external(env, argv[0], (void **)&h) != napi_ok ||
	    !h)
		return type_error(env, "handle", "a knytt handle"), NULL;
	if (h->busy)
		return kn_throw_msg(env, KNYTT_EBUSY,
				    "an async call still uses this handle; "
				    "await it before close()");
	close_handle(h);
	return kn_undefined(env);
}

/* ---- arguments ----------------------------------------------------------- */

int kn_is_nullish(napi_env env, napi_value v)
{
	napi_valuetype t;

	return !v || (napi_typeof(env, v, &t) == napi_ok &&
		      (t == napi_undefined || t == napi_null));
}

int kn_f64(napi_env env, napi_value v, const char *what, double *out)
{
	napi_valuetype t;

	if (napi_typeof(env, v, &t) != napi_ok || t != napi_number ||
	    napi_get_value_double(env, v, out) != napi_ok)
		return type_error(env, what, "a number");
	return 0;
}

int kn_u32(napi_env env, napi_value v, const char *what, uint32_t *out)
{
	double d;
	char msg[200];

	if (kn_f64(env, v, what, &d))
		return -1;
	if (!(d >= 0 && d <= UINT32_MAX && d == floor(d))) {
		snprintf(msg, sizeof(msg), "%s must be an integer in "
			 "0..4294967295, got %g", what, d);
		kn_throw_msg(env, KNYTT_EINVAL, msg);
		return -1;
	}
	*out = (uint32_t)d;
	return 0;
}

int kn_i64(napi_env env, napi_value v, const char *what, int64_t *out)
{
	double d;

	if (kn_f64(env, v, what, &d))
		return -1;
	if (!(fabs(d) <= 9007199254740992.0) || d != floor(d))
		return type_error(env, what, "a safe integer");
	*out = (int64_t)d;
	return 0;
}

/* A label or id: a non-negative safe integer Number or a BigInt. */
int kn_u64(napi_env env, napi_value v, const char *what, uint64_t *out)
{
	napi_valuetype t;
	bool lossless;
	double d;

	if (napi_typeof(env, v, &t) != napi_ok)
		return kn_pending(env), -1;
	if (t == napi_bigint) {
		if (napi_get_value_bigint_uint64(env, v, out, &lossless) !=
		    napi_ok || !lossless)
			return type_error(env, what, "a BigInt in 0..2^64-1");
		return 0;
	}
	if (t != napi_number || napi_get_value_double(env, v, &d) != napi_ok ||
	    !(d >= 0 && d <= 9007199254740991.0) || d != floor(d))
		return type_error(env, what,
				  "a non-negative integer or a BigInt");
	*out = (uint64_t)d;
	return 0;
}

int kn_bool(napi_env env, napi_value v, int *out)
{
	bool b = false;
	napi_value coerced;

	if (napi_coerce_to_bool(env, v, &coerced) != napi_ok ||
	    napi_get_value_bool(env, coerced, &b) != napi_ok)
		return kn_pending(env), -1;
	*out = b;
	return 0;
}

/* A string as a malloc'd UTF-8 copy (free it). */
int kn_str(napi_env env, napi_value v, const char *what, char **out)
{
	napi_valuetype t;
	size_t len;
	char *s;

	if (napi_typeof(env, v, &t) != napi_ok || t != napi_string ||
	    napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok)
		return type_error(env, what, "a string");
	if (!(s = malloc(len + 1)))
		return kn_throw_msg(env, KNYTT_ENOMEM, "out of memory"), -1;
	napi_get_value_string_utf8(env, v, s, len + 1, &len);
	if (strlen(s) != len) {
		free(s);
		return type_error(env, what, "a string without NUL characters");
	}
	*out = s;
	return 0;
}

/* Like kn_str; undefined and null give NULL. */
int kn_str_opt(napi_env env, napi_value v, const char *what, char **out)
{
	*out = NULL;
	return kn_is_nullish(env, v) ? 0 : kn_str(env, v, what, out);
}

static int typed(napi_env env, napi_value v, const char *what,
		 napi_typedarray_type want, const char *want_name,
		 void **data, size_t *len)
{
	bool is = false;
	napi_typedarray_type type;

	if (napi_is_typedarray(env, v, &is) != napi_ok || !is ||
	    napi_get_typedarray_info(env, v, &type, len, data, NULL, NULL) !=
	    napi_ok || type != want)
		return type_error(env, what, want_name);
	return 0;
}

/* A Float32Array, read in place (no copy). */
int kn_f32(napi_env env, napi_value v, const char *what, float **data,
	   size_t *len)
{
	return typed(env, v, what, napi_float32_array, "a Float32Array",
		     (void **)data, len);
}

int kn_u32s(napi_env env, napi_value v, const char *what, uint32_t **data,
	    size_t *len)
{
	return typed(env, v, what, napi_uint32_array, "a Uint32Array",
		     (void **)data, len);
}

int kn_u64s(napi_env env, napi_value v, const char *what, uint64_t **data,
	    size_t *len)
{
	return typed(env, v, what, napi_biguint64_array, "a BigUint64Array",
		     (void **)data, len);
}

/* obj[name], undefined when obj is nullish. */
int kn_prop(napi_env env, napi_value obj, const char *name, napi_value *out)
{
	if (kn_is_nullish(env, obj)) {
		napi_get_undefined(env, out);
		return 0;
	}
	if (napi_get_named_property(env, obj, name, out) != napi_ok)
		return kn_pending(env), -1;
	return 0;
}

/* ---- results --------------------------------------------------------------- */

napi_value kn_undefined(napi_env env)
{
	napi_value v;

	napi_get_undefined(env, &v);
	return v;
}

napi_value kn_num(napi_env env, double d)
{
	napi_value v;

	napi_create_double(env, d, &v);
	return v;
}

/* A Number when exact (ids are small in practice), else a BigInt. */
napi_value kn_u64_value(napi_env env, uint64_t x)
{
	napi_value v;

	if (x <= 9007199254740991ull)
		napi_create_double(env, (double)x, &v);
	else
		napi_create_bigint_uint64(env, x, &v);
	return v;
}

napi_value kn_string(napi_env env, const char *s)
{
	napi_value v;

	if (!s)
		napi_get_null(env, &v);
	else
		napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
	return v;
}

/* A new typed array of n elements; *data is where C writes them. */
napi_value kn_typed(napi_env env, napi_typedarray_type type, size_t n,
		    void **data)
{
	size_t size = type == napi_biguint64_array ? 8 :
		      type == napi_uint8_array ? 1 : 4;
	napi_value ab, arr;

	if (napi_create_arraybuffer(env, n * size, data, &ab) != napi_ok ||
	    napi_create_typedarray(env, type, n, ab, 0, &arr) != napi_ok)
		return kn_pending(env);
	return arr;
}

void kn_set(napi_env env, napi_value obj, const char *name, napi_value v)
{
	napi_set_named_property(env, obj, name, v);
}

/* ---- async jobs -------------------------------------------------------------- */

/* Keeps @v alive until the job ends (typed arrays read by exec). */
int kn_job_keep(napi_env env, struct kn_job *job, napi_value v)
{
	if (job->nrefs == (int)(sizeof(job->refs) / sizeof(job->refs[0])))
		return -1;
	if (napi_create_reference(env, v, 1, &job->refs[job->nrefs]) !=
	    napi_ok)
		return -1;
	job->nrefs++;
	return 0;
}

/* On the pool thread: records rc and, on failure, this thread's message. */
int kn_job_capture(struct kn_job *job, int rc)
{
	job->rc = rc;
	if (rc < 0) {
		snprintf(job->msg, sizeof(job->msg), "%s", knytt_errmsg());
		snprintf(job->field, sizeof(job->field), "%s",
			 knytt_errfield());
	}
	return rc;
}

static void job_execute(napi_env env, void *data)
{
	struct kn_job *job = data;

	kn_job_capture(job, job->exec(job));
}

static void job_free(napi_env env, struct kn_job *job)
{
	for (int i = 0; i < job->nrefs; i++)
		napi_delete_reference(env, job->refs[i]);
	if (job->h)
		job->h->busy--;
	if (job->h2)
		job->h2->busy--;
	if (job->release)
		job->release(job);
	napi_delete_async_work(env, job->work);
	free(job);
}

static int progress_take_error(napi_env env, struct kn_progress *pg,
			       napi_value *exc);

static void job_complete(napi_env env, napi_status status, void *data)
{
	struct kn_job *job = data;
	napi_value result = NULL;

	if (progress_take_error(env, job->pg, &result))
		;   /* the progress callback threw: that is the failure */
	else if (status == napi_cancelled)
		result = kn_error_value(env, KNYTT_ECANCELED, "cancelled");
	else if (job->rc >= 0 && (result = job->done(env, job)) != NULL) {
		napi_resolve_deferred(env, job->deferred, result);
		job_free(env, job);
		return;
	} else if (job->rc >= 0) {
		/* done() threw (a JS callback failed): reject with that. */
		napi_get_and_clear_last_exception(env, &result);
	} else {
		result = kn_error_field(env, job->rc, job->msg, job->field);
	}
	napi_reject_deferred(env, job->deferred, result);
	job_free(env, job);
}

/* Queues @job (calloc'd, exec/done set) and returns its Promise.  On
 * failure the job is freed and an exception is pending. */
napi_value kn_job_queue(napi_env env, struct kn_job *job, const char *name)
{
	napi_value promise, res_name;

	if (napi_create_promise(env, &job->deferred, &promise) != napi_ok)
		goto fail;
	napi_create_string_utf8(env, name, NAPI_AUTO_LENGTH, &res_name);
	if (napi_create_async_work(env, NULL, res_name, job_execute,
				   job_complete, job, &job->work) != napi_ok)
		goto fail;
	if (napi_queue_async_work(env, job->work) != napi_ok) {
		napi_delete_async_work(env, job->work);
		goto fail;
	}
	if (job->h)
		job->h->busy++;
	if (job->h2)
		job->h2->busy++;
	return promise;
fail:
	job->work = NULL;
	for (int i = 0; i < job->nrefs; i++)
		napi_delete_reference(env, job->refs[i]);
	if (job->release)
		job->release(job);
	free(job);
	return kn_pending(env);
}

/* ---- progress --------------------------------------------------------------- */

/* The training thread hands each epoch's progress to the main thread
 * and waits for the JavaScript callback to return, so that returning
 * true cancels at that very epoch and every call has run before the
 * Promise settles. */
struct kn_progress {
	napi_threadsafe_function tsfn;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int pending;
	int cancel;
	struct kn_env *envst; /* its environment's exit flag */
	napi_ref error; /* exception thrown by the callback */
	knytt_progress cur;
};

static void progress_call_js(napi_env env, napi_value fn, void *context,
			     void *data)
{
	struct kn_progress *pg = data;
	napi_value obj, ret, global, exc;
	int stop = 0;

	if (env && fn) {
		napi_create_object(env, &obj);
		kn_set(env, obj, "epoch", kn_num(env, pg->cur.epoch));
		kn_set(env, obj, "epochs", kn_num(env, pg->cur.epochs));
		kn_set(env, obj, "loss", kn_num(env, pg->cur.loss));
		kn_set(env, obj, "elapsed", kn_num(env, pg->cur.elapsed));
		kn_set(env, obj, "eta", kn_num(env, pg->cur.eta));
		napi_get_global(env, &global);
		if (napi_call_function(env, global, fn, 1, &obj, &ret) ==
		    napi_ok) {
			if (kn_bool(env, ret, &stop))
				stop = 1;
		} else {
			stop = 1;
		}
		if (napi_get_and_clear_last_exception(env, &exc) == napi_ok &&
		    !kn_is_nullish(env, exc) && !pg->error)
			napi_create_reference(env, exc, 1, &pg->error);
	}
	pthread_mutex_lock(&pg->mu);
	pg->cancel |= stop;
	pg->pending = 0;
	pthread_cond_signal(&pg->cv);
	pthread_mutex_unlock(&pg->mu);
}

/* Per environment (main thread or worker): set when it exits.  Node's
 * exit path joins libuv's pool threads (uv_library_shutdown) before
 * exit(), and a training thread waiting for the main thread to run its
 * progress callback would then wait forever: waiters poll this flag
 * and cancel instead.  index.js sets it from process.on('exit'), which
 * process.exit(), a normal exit and an uncaught exception all emit.
 * Never freed: a pool thread may still look at it while the environment
 * is torn down. */
struct kn_env {
	atomic_int exiting;
};

static struct kn_env *env_state(napi_env env)
{
	struct kn_env *st = NULL;

	napi_get_instance_data(env, (void **)&st);
	return st;
}

static napi_value native_shutdown(napi_env env, napi_callback_info info)
{
	struct kn_env *st = env_state(env);

	if (st)
		atomic_store(&st->exiting, 1);
	return kn_undefined(env);
}

/* NULL (and nothing pending) when @fn is undefined or null. */
struct kn_progress *kn_progress_new(napi_env env, napi_value fn)
{
	struct kn_progress *pg;
	napi_value name;
	napi_valuetype t;

	if (kn_is_nullish(env, fn))
		return NULL;
	if (napi_typeof(env, fn, &t) != napi_ok || t != napi_function) {
		type_error(env, "onProgress", "a function");
		return NULL;
	}
	if (!(pg = calloc(1, sizeof(*pg)))) {
		kn_throw_msg(env, KNYTT_ENOMEM, "out of memory");
		return NULL;
	}
	pg->envst = env_state(env);
	pthread_mutex_init(&pg->mu, NULL);
	pthread_cond_init(&pg->cv, NULL);
	napi_create_string_utf8(env, "knytt.progress", NAPI_AUTO_LENGTH, &name);
	if (napi_create_threadsafe_function(env, fn, NULL, name, 0, 1, NULL,
					    NULL, NULL, progress_call_js,
					    &pg->tsfn) != napi_ok) {
		free(pg);
		kn_pending(env);
		return NULL;
	}
	return pg;
}

/* knytt_progress_fn: on the training thread. */
int kn_progress_fn(void *ctx, const knytt_progress *p)
{
	struct kn_progress *pg = ctx;
	int cancel;

	pthread_mutex_lock(&pg->mu);
	pg->cur = *p;
	pg->pending = 1;
	pthread_mutex_unlock(&pg->mu);
	if (napi_call_threadsafe_function(pg->tsfn, pg, napi_tsfn_blocking) !=
	    napi_ok)
		return 0;
	pthread_mutex_lock(&pg->mu);
	while (pg->pending &&
	       !(pg->envst && atomic_load(&pg->envst->exiting))) {
		struct timespec until;

		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += 50 * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&pg->cv, &pg->mu, &until);
	}
	cancel = pg->cancel || pg->pending;
	pthread_mutex_unlock(&pg->mu);
	return cancel;
}

/* On the main thread once the job is done: the exception the callback
 * threw, if any (taken: a second call finds none). */
static int progress_take_error(napi_env env, struct kn_progress *pg,
			       napi_value *exc)
{
	if (!pg || !pg->error)
		return 0;
	napi_get_reference_value(env, pg->error, exc);
	napi_delete_reference(env, pg->error);
	pg->error = NULL;
	return 1;
}

void kn_progress_free(struct kn_progress *pg)
{
	if (!pg)
		return;
	napi_release_threadsafe_function(pg->tsfn, napi_tsfn_release);
	pthread_mutex_destroy(&pg->mu);
	pthread_cond_destroy(&pg->cv);
	free(pg);
}

/* ---- module ------------------------------------------------------------------ */

void kn_export(napi_env env, napi_value exports, const char *name,
	       napi_callback fn)
{
	napi_value f;

	napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f);
	napi_set_named_property(env, exports, name, f);
}

static napi_value native_version(napi_env env, napi_callback_info info)
{
	napi_value obj;

	napi_create_object(env, &obj);
	kn_set(env, obj, "version", kn_string(env, knytt_version()));
	kn_set(env, obj, "simd", kn_string(env, knytt_simd_name()));
	return obj;
}

static napi_value native_errors(napi_env env, napi_callback_info info)
{
	napi_value obj;

	napi_create_object(env, &obj);
	for (int rc = -1; rc > KNYTT__ERR_LAST; rc--)
		kn_set(env, obj, knytt_errname(rc), kn_num(env, rc));
	return obj;
}

NAPI_MODULE_INIT()
{
	struct kn_env *st = calloc(1, sizeof(*st));

	if (st)
		napi_set_instance_data(env, st, NULL, NULL);
	kn_export(env, exports, "shutdown", native_shutdown);
	kn_export(env, exports, "close", native_close);
	kn_export(env, exports, "version", native_version);
	kn_export(env, exports, "errors", native_errors);
	kn_init_index(env, exports);
	kn_init_store(env, exports);
	kn_init_store_read(env, exports);
	kn_init_store_embed(env, exports);
	kn_init_embedder(env, exports);
	kn_init_engine(env, exports);
	kn_init_models(env, exports);
	return exports;
}
