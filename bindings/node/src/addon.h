/*
 * addon.h -- shared helpers of the knytt N-API addon (bindings/node).
 *
 * The addon is a thin layer over include/knytt.h: each native function
 * checks its JavaScript arguments, calls the library and turns a
 * negative return into an Error whose `code` is the error's name
 * ("KNYTT_EINVAL") and whose message is knytt_errmsg().  Handles travel
 * to JavaScript as napi_external values wrapping a struct kn_handle;
 * index.js builds the classes, option objects and camelCase names on top.
 *
 * Typed arrays are never copied: a Float32Array argument is read in
 * place and results are written straight into the ArrayBuffers returned.
 * Long calls (training, batch search, import, batch add) run as
 * napi_async_work on libuv's thread pool and settle a Promise.
 */
#ifndef KNYTT_NODE_ADDON_H
#define KNYTT_NODE_ADDON_H

#define NAPI_VERSION 8
#include <node_api.h>
#include <knytt.h>

#include <stddef.h>
#include <stdint.h>

/* What a kn_handle wraps; checked on every use so that a store handle
 * passed where an index is expected fails cleanly. */
enum kn_kind { KN_INDEX = 1, KN_STORE, KN_ENGINE, KN_ALS, KN_TWOTOWER,
	       KN_EMBEDDER };

/* The native side of every handle.  p is NULL once closed.  busy counts
 * async jobs that use p: close() waits for none (it refuses with
 * KNYTT_EBUSY), and the finalizer of a collected handle cannot run while
 * a job holds a reference to it.  owner, for a store borrowed from an
 * engine, keeps the engine alive. */
struct kn_handle {
	void *p;
	enum kn_kind kind;
	int busy;
	int borrowed;
	napi_ref owner;
};

/* Async job: base of every job struct.  exec runs on a pool thread and
 * returns a knytt code (its message is copied into msg there, because
 * knytt_errmsg is per thread); done builds the resolved value on the
 * main thread. */
struct kn_job {
	napi_async_work work;
	napi_deferred deferred;
	int rc;
	char msg[512];
	char field[64]; /* knytt_errfield of the failure, or "" */
	int (*exec)(struct kn_job *job);
	napi_value (*done)(napi_env env, struct kn_job *job);
	void (*release)(struct kn_job *job); /* frees the job's own data */
	napi_ref refs[6];  /* JS values kept alive while the job runs */
	int nrefs;
	/* handles marked busy while the job runs (h2: the engine that owns
	 * a borrowed store), or NULL */
	struct kn_handle *h, *h2;
	/* progress bridge whose callback may have thrown: its exception
	 * then rejects the job, whatever rc says */
	struct kn_progress *pg;
};

#define KN_CALL(env, call)                                                  \
	do {                                                                \
		if ((call) != napi_ok)                                      \
			return kn_pending(env);                             \
	} while (0)

#define KN_ARGS(env, info, n)                                               \
	size_t argc = (n);                                                  \
	napi_value argv[(n) > 0 ? (n) : 1];                                 \
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) \
		return kn_pending(env)

/* errors */
napi_value kn_pending(napi_env env);
napi_value kn_error_value(napi_env env, int rc, const char *msg);
/* The same with the input field at fault as err.field (NULL or "": none). */
napi_value kn_error_field(napi_env env, int rc, const char *msg,
			  const char *field);
napi_value kn_throw(napi_env env, int rc);
napi_value kn_throw_msg(napi_env env, int rc, const char *msg);
napi_value kn_check(napi_env env, int rc, napi_value ok);

/* arguments: each returns 0, or throws and returns -1 */
int kn_handle_arg(napi_env env, napi_value v, enum kn_kind kind,
		  struct kn_handle **out);
struct kn_handle *kn_owner(napi_env env, struct kn_handle *h);
int kn_u32(napi_env env, napi_value v, const char *what, uint32_t *out);
int kn_f64(napi_env env, napi_value v, const char *what, double *out);
int kn_i64(napi_env env, napi_value v, const char *what, int64_t *out);
int kn_u64(napi_env env, napi_value v, const char *what, uint64_t *out);
int kn_bool(napi_env env, napi_value v, int *out);
int kn_is_nullish(napi_env env, napi_value v);
int kn_str(napi_env env, napi_value v, const char *what, char **out);
int kn_str_opt(napi_env env, napi_value v, const char *what, char **out);
int kn_f32(napi_env env, napi_value v, const char *what, float **data,
	   size_t *len);
int kn_u32s(napi_env env, napi_value v, const char *what, uint32_t **data,
	    size_t *len);
int kn_u64s(napi_env env, napi_value v, const char *what, uint64_t **data,
	    size_t *len);
int kn_prop(napi_env env, napi_value obj, const char *name, napi_value *out);

/* results */
napi_value kn_new_handle(napi_env env, void *p, enum kn_kind kind);
napi_value kn_num(napi_env env, double v);
napi_value kn_u64_value(napi_env env, uint64_t v);
napi_value kn_string(napi_env env, const char *s);
napi_value kn_typed(napi_env env, napi_typedarray_type type, size_t n,
		    void **data);
void kn_set(napi_env env, napi_value obj, const char *name, napi_value v);
napi_value kn_undefined(napi_env env);

/* async jobs */
napi_value kn_job_queue(napi_env env, struct kn_job *job, const char *name);
int kn_job_keep(napi_env env, struct kn_job *job, napi_value v);
int kn_job_capture(struct kn_job *job, int rc);

/* training progress bridged to a JavaScript callback */
struct kn_progress;
struct kn_progress *kn_progress_new(napi_env env, napi_value fn);
int kn_progress_fn(void *ctx, const knytt_progress *p);
void kn_progress_free(struct kn_progress *pg);

/* an item record from a JavaScript object (store.c) */
#define ITEM_STRS 7
struct item_in {
	knytt_item it;
	char *s[ITEM_STRS]; /* the strings it points to, owned */
};
int item_from_js(napi_env env, napi_value obj, struct item_in *in);
void item_in_free(struct item_in *in);
napi_value item_to_js(napi_env env, const knytt_item *it);

/* exports of each file */
void kn_init_index(napi_env env, napi_value exports);
void kn_init_store(napi_env env, napi_value exports);
void kn_init_store_read(napi_env env, napi_value exports);
void kn_init_store_embed(napi_env env, napi_value exports);
void kn_init_engine(napi_env env, napi_value exports);
void kn_init_models(napi_env env, napi_value exports);
void kn_init_embedder(napi_env env, napi_value exports);
void kn_export(napi_env env, napi_value exports, const char *name,
	       napi_callback fn);

#endif
