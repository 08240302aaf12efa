/*
 * models.c -- knytt_als and knytt_twotower for Node: create with an
 * options object, fit as async work with a progress callback, factors
 * and embeddings as Float32Arrays written in place, save/load to files
 * and Buffers.
 */
#include "addon.h"

#include <stdlib.h>
#include <string.h>

/* opts[name] as an unsigned / float setter argument: 1 set, 0 absent. */
static int opt(napi_env env, napi_value opts, const char *name, double *out)
{
	napi_value v;

	if (kn_prop(env, opts, name, &v))
		return -1;
	if (kn_is_nullish(env, v))
		return 0;
	return kn_f64(env, v, name, out) ? -1 : 1;
}

static napi_value to_buffer(napi_env env, int rc, void *buf, size_t len)
{
	napi_value b;
	void *copy;

	if (rc)
		return kn_throw(env, rc);
	napi_create_buffer_copy(env, len, buf, &copy, &b);
	knytt_free(buf);
	return b;
}

/* A rows x cols Float32Array filled by @fill (0 rows: still called, so
 * an untrained model reports KNYTT_ESTATE). */
static napi_value matrix_out(napi_env env, size_t n,
			     int (*fill)(const void *m, float *out, size_t n),
			     const void *m)
{
	float *out;
	napi_value arr = kn_typed(env, napi_float32_array, n, (void **)&out);
	float dummy;

	if (!arr)
		return NULL;
	return kn_check(env, fill(m, n ? out : &dummy, n), arr);
}

/* ---- fit jobs -------------------------------------------------------------- */

struct fit_job {
	struct kn_job base;
	void *model;
	struct kn_progress *pg;
	const uint32_t *users, *items, *types;
	const float *values, *weights;
	size_t n;
	uint32_t nusers, nitems;
	knytt_twotower_item *feats; /* two-tower features (owned) */
	char **strs;                /* their strings (owned) */
	size_t nstrs;
};

static int als_fit_exec(struct kn_job *job)
{
	struct fit_job *f = (struct fit_job *)job;
	knytt_matrix *m;
	int rc;

	if ((rc = knytt_matrix_create(&m)))
		return rc;
	for (size_t i = 0; i < f->n && !rc; i++)
		rc = knytt_matrix_add(m, f->users[i], f->items[i],
				      f->types ? f->types[i] : 0,
				      f->values ? f->values[i] : 1.0f, 0);
	if (!rc)
		rc = knytt_matrix_build(m, f->nusers, f->nitems);
	if (!rc)
		rc = knytt_als_set_progress(f->model, f->pg ? kn_progress_fn :
					    NULL, f->pg);
	if (!rc)
		rc = knytt_als_train(f->model, m);
	if (f->pg)
		knytt_als_set_progress(f->model, NULL, NULL);
	knytt_matrix_close(m);
	return rc;
}

static int tt_fit_exec(struct kn_job *job)
{
	struct fit_job *f = (struct fit_job *)job;
	int rc = knytt_twotower_set_progress(f->model, f->pg ? kn_progress_fn :
					     NULL, f->pg);

	if (!rc)
		rc = knytt_twotower_train(f->model, f->nusers, f->nitems,
					  f->feats, f->n, f->users, f->items,
					  f->weights, NULL);
	if (f->pg)
		knytt_twotower_set_progress(f->model, NULL, NULL);
	return rc;
}

static napi_value fit_done(napi_env env, struct kn_job *job)
{
	return kn_undefined(env);
}

static void fit_release(struct kn_job *job)
{
	struct fit_job *f = (struct fit_job *)job;

	kn_progress_free(f->pg);
	for (size_t i = 0; i < f->nstrs; i++)
		free(f->strs[i]);
	free(f->strs);
	free(f->feats);
}

/* Two-tower features: an array of {title, description, category,
 * price}, copied to C memory since the pool thread cannot read JS. */
static int features_from_js(napi_env env, napi_value arr, struct fit_job *f)
{
	static const char *const names[] = {"title", "description",
					    "category"};
	uint32_t n;
	napi_value o, v;
	double price;

	if (napi_get_array_length(env, arr, &n) != napi_ok)
		return kn_throw_msg(env, KNYTT_EINVAL, "features must be an "
				    "array"), -1;
	f->feats = calloc(n + 1, sizeof(*f->feats));
	f->strs = calloc(3 * (size_t)n + 1, sizeof(*f->strs));
	if (!f->feats || !f->strs)
		return kn_throw_msg(env, KNYTT_ENOMEM, "out of memory"), -1;
	if (n != f->nitems)
		return kn_throw_msg(env, KNYTT_EINVAL, "features must have one "
				    "entry per item"), -1;
	for (uint32_t i = 0; i < n; i++) {
		const char **dst[3] = {&f->feats[i].title,
				       &f->feats[i].description,
				       &f->feats[i].category};

		if (napi_get_element(env, arr, i, &o) != napi_ok)
			return kn_pending(env), -1;
		for (int j = 0; j < 3; j++) {
			char *s;

			if (kn_prop(env, o, names[j], &v) ||
			    kn_str_opt(env, v, names[j], &s))
				return -1;
			f->strs[f->nstrs++] = s;
			*dst[j] = s;
		}
		f->feats[i].price = -1;
		if (opt(env, o, "price", &price) < 0)
			return -1;
		if (opt(env, o, "price", &price) == 1)
			f->feats[i].price = price;
	}
	return 0;
}

/* alsFit / ttFit(h, users, items, nusers, nitems, extra, extra2,
 * onProgress): ALS extra = types (Uint32Array) and extra2 = values
 * (Float32Array); two-tower extra = features (array) and extra2 =
 * weights (Float32Array).  -> Promise */
static napi_value fit(napi_env env, napi_callback_info info, enum kn_kind k)
{
	struct fit_job *f;
	struct kn_handle *h;
	size_t nu, ni, nx;
	bool pending = false;
	KN_ARGS(env, info, 8);

	if (kn_handle_arg(env, argv[0], k, &h))
		return NULL;
	if (!(f = calloc(1, sizeof(*f))))
		return kn_throw_msg(env, KNYTT_ENOMEM, "out of memory");
	f->model = h->p;
	f->base.release = fit_release;
	if (kn_u32s(env, argv[1], "users", (uint32_t **)&f->users, &nu) ||
	    kn_u32s(env, argv[2], "items", (uint32_t **)&f->items, &ni) ||
	    kn_u32(env, argv[3], "nusers", &f->nusers) ||
	    kn_u32(env, argv[4], "nitems", &f->nitems))
		goto fail;
	f->n = nu;
	if (ni != nu) {
		kn_throw_msg(env, KNYTT_EINVAL, "users and items differ in "
			     "length");
		goto fail;
	}
	if (k == KN_ALS && !kn_is_nullish(env, argv[5])) {
		if (kn_u32s(env, argv[5], "types", (uint32_t **)&f->types,
			    &nx))
			goto fail;
		if (nx != nu) {
			kn_throw_msg(env, KNYTT_EINVAL, "types and users differ "
				     "in length");
			goto fail;
		}
	}
	if (k == KN_TWOTOWER && !kn_is_nullish(env, argv[5]) &&
	    features_from_js(env, argv[5], f))
		goto fail;
	if (!kn_is_nullish(env, argv[6])) {
		if (kn_f32(env, argv[6], k == KN_ALS ? "values" : "weights",
			   (float **)(k == KN_ALS ? &f->values : &f->weights),
			   &nx))
			goto fail;
		if (nx != nu) {
			kn_throw_msg(env, KNYTT_EINVAL, "values / weights and "
				     "users differ in length");
			goto fail;
		}
	}
	f->pg = kn_progress_new(env, argv[7]);
	napi_is_exception_pending(env, &pending);
	if (pending)
		goto fail;
	/* the handle and the typed arrays the pool thread reads; two-tower
	 * features were copied */
	for (int i = 0; i < 7; i++)
		if ((i < 3 || i == 6 || (i == 5 && k == KN_ALS)) &&
		    !kn_is_nullish(env, argv[i]) &&
		    kn_job_keep(env, &f->base, argv[i]))
			goto fail;
	f->base.exec = k == KN_ALS ? als_fit_exec : tt_fit_exec;
	f->base.done = fit_done;
	f->base.h = h;
	f->base.pg = f->pg;
	return kn_job_queue(env, &f->base, "knytt.fit");
fail:
	for (int i = 0; i < f->base.nrefs; i++)
		napi_delete_reference(env, f->base.refs[i]);
	fit_release(&f->base);
	free(f);
	return kn_pending(env);
}

static napi_value als_fit(napi_env env, napi_callback_info info)
{
	return fit(env, info, KN_ALS);
}

static napi_value tt_fit(napi_env env, napi_callback_info info)
{
	return fit(env, info, KN_TWOTOWER);
}

/* ---- ALS --------------------------------------------------------------------- */

/* alsCreate({factors, reg, alpha, iterations, regExponent, seed,
 * threads, solver (1 cg, 2 cholesky), cgSteps}) */
static napi_value als_create(napi_env env, napi_callback_info info)
{
	knytt_als *als;
	double x, steps = 0;
	int rc = 0, got;
	KN_ARGS(env, info, 1);

	if ((rc = knytt_als_create(&als)))
		return kn_throw(env, rc);
#define SET(name, call)                                                     \
	if ((got = opt(env, argv[0], name, &x)) < 0)                        \
		goto fail;                                                  \
	if (got && (rc = (call)))                                           \
		goto fail
	SET("factors", knytt_als_set_factors(als, (unsigned)x));
	SET("reg", knytt_als_set_reg(als, (float)x));
	SET("alpha", knytt_als_set_alpha(als, (float)x));
	SET("iterations", knytt_als_set_iterations(als, (unsigned)x));
	SET("regExponent", knytt_als_set_reg_exponent(als, (float)x));
	SET("seed", knytt_als_set_seed(als, (uint64_t)x));
	SET("threads", knytt_als_set_threads(als, (unsigned)x));
	if (opt(env, argv[0], "cgSteps", &steps) < 0)
		goto fail;
	SET("solver", knytt_als_set_solver(als, (knytt_als_solver)x,
					   (unsigned)steps));
#undef SET
	return kn_new_handle(env, als, KN_ALS);
fail:
	if (rc) {
		napi_value err = kn_error_field(env, rc, knytt_errmsg(),
					       knytt_errfield());

		napi_throw(env, err);
	}
	knytt_als_close(als);
	return NULL;
}

/* alsLoad(path | Buffer) */
static napi_value als_load(napi_env env, napi_callback_info info)
{
	knytt_als *als;
	bool is_buf = false;
	void *data;
	size_t len;
	char *path;
	int rc;
	KN_ARGS(env, info, 1);

	if ((rc = knytt_als_create(&als)))
		return kn_throw(env, rc);
	napi_is_buffer(env, argv[0], &is_buf);
	if (is_buf) {
		napi_get_buffer_info(env, argv[0], &data, &len);
		rc = knytt_als_load_buffer(als, data, len);
	} else if (kn_str(env, argv[0], "path", &path)) {
		knytt_als_close(als);
		return NULL;
	} else {
		rc = knytt_als_load(als, path);
		free(path);
	}
	if (rc) {
		napi_value err = kn_error_field(env, rc, knytt_errmsg(),
					       knytt_errfield());

		knytt_als_close(als);
		napi_throw(env, err);
		return NULL;
	}
	return kn_new_handle(env, als, KN_ALS);
}

static int als_users_fill(const void *m, float *out, size_t n)
{
	return knytt_als_user_factors(m, 0, knytt_als_users(m), out);
}

static int als_items_fill(const void *m, float *out, size_t n)
{
	return knytt_als_item_factors(m, 0, knytt_als_items(m), out);
}

/* alsGet(h, what): 0 info {factors, users, items}, 1 user factors,
 * 2 item factors, 3 Buffer */
static napi_value als_get(napi_env env, napi_callback_info info)
{
	struct kn_handle *h;
	uint32_t what;
	knytt_als *als;
	napi_value o;
	void *buf = NULL;
	size_t len = 0;
	KN_ARGS(env, info, 2);

	if (kn_handle_arg(env, argv[0], KN_ALS, &h) ||
	    kn_u32(env, argv[1], "what", &what))
		return NULL;
	als = h->p;
	if (what == 1 || what == 2)
		return matrix_out(env, (size_t)knytt_als_factors(als) *
				  (what == 1 ? knytt_als_users(als) :
				   knytt_als_items(als)),
				  what == 1 ? als_users_fill : als_items_fill,
				  als);
	if (what == 3) {
		int rc = knytt_als_save_buffer(als, &buf, &len);

		return to_buffer(env, rc, buf, len);
	}
	napi_create_object(env, &o);
	kn_set(env, o, "factors", kn_num(env, knytt_als_factors(als)));
	kn_set(env, o, "users", kn_num(env, knytt_als_users(als)));
	kn_set(env, o, "items", kn_num(env, knytt_als_items(als)));
	return o;
}

/* alsScore(h, user, items | undefined) -> Float32Array */
static napi_value als_score(napi_env env, napi_callback_info info)
{
	struct kn_handle *h;
	uint32_t user, *items = NULL;
	size_t n;
	float *out;
	napi_value arr;
	KN_ARGS(env, info, 3);

	if (kn_handle_arg(env, argv[0], KN_ALS, &h) ||
	    kn_u32(env, argv[1], "user", &user))
		return NULL;
	if (kn_is_nullish(env, argv[2]))
		n = knytt_als_items(h->p);
	else if (kn_u32s(env, argv[2], "items", &items, &n))
		return NULL;
	if (!(arr = kn_typed(env, napi_float32_array, n, (void **)&out)))
		return NULL;
	return kn_check(env, knytt_als_score(h->p, user, items, n, out), arr);
}

/* alsFoldIn(h, items Uint32Array, weights Float32Array, start | null)
 * -> Float32Array(factors): a user vector by the epoch's own solve,
 * written straight into the array returned (start is the warm start). */
static napi_value als_fold_in(napi_env env, napi_callback_info info)
{
	struct kn_handle *h;
	uint32_t *items;
	float *w, *start = NULL, *out;
	size_t n, nw, ns = 0, f;
	napi_value arr;
	KN_ARGS(env, info, 4);

	if (kn_handle_arg(env, argv[0], KN_ALS, &h) ||
	    kn_u32s(env, argv[1], "items", &items, &n) ||
	    kn_f32(env, argv[2], "weights", &w, &nw) ||
	    (!kn_is_nullish(env, argv[3]) &&
	     kn_f32(env, argv[3], "start", &start, &ns)))
		return NULL;
	f = knytt_als_factors(h->p);
	if (nw != n)
		return kn_throw_msg(env, KNYTT_EINVAL,
				    "weights must have as many entries as items");
	if (start && ns != f)
		return kn_throw_msg(env, KNYTT_EINVAL,
				    "start must have factors entries");
	if (!(arr = kn_typed(env, napi_float32_array, f, (void **)&out)))
		return NULL;
	for (size_t i = 0; i < f; i++)
		out[i] = start ? start[i] : 0.0f;
	return kn_check(env, knytt_als_fold_in(h->p, n, items, w, out), arr);
}

/* modelSave(h, path) for either kind */
static napi_value model_save(napi_env env, napi_callback_info info)
{
	struct kn_handle *h = NULL;
	char *path;
	int rc;
	napi_valuetype t;
	KN_ARGS(env, info, 2);

	if (napi_typeof(env, argv[0], &t) != napi_ok || t != napi_external)
		return kn_throw_msg(env, KNYTT_EINVAL, "not a model handle");
	napi_get_value_external(env, argv[0], (void **)&h);
	if (kn_handle_arg(env, argv[0], h && h->kind == KN_TWOTOWER ?
			  KN_TWOTOWER : KN_ALS, &h) ||
	    kn_str(env, argv[1], "path", &path))
		return NULL;
	rc = h->kind == KN_ALS ? knytt_als_save(h->p, path) :
				 knytt_twotower_save(h->p, path);
	free(path);
	return kn_check(env, rc, kn_undefined(env));
}

/* ---- two-tower ------------------------------------------------------------- */

static napi_value tt_create(napi_env env, napi_callback_info info)
{
	knytt_twotower *tt;
	double x;
	int rc = 0, got;
	KN_ARGS(env, info, 1);

	if ((rc = knytt_twotower_create(&tt)))
		return kn_throw(env, rc);
#define SET(name, call)                                                     \
	if ((got = opt(env, argv[0], name, &x)) < 0)                        \
		goto fail;                                                  \
	if (got && (rc = (call)))                                           \
		goto fail
	SET("dim", knytt_twotower_set_dim(tt, (uint32_t)x));
	SET("epochs", knytt_twotower_set_epochs(tt, (unsigned)x));
	SET("batch", knytt_twotower_set_batch(tt, (unsigned)x));
	SET("lr", knytt_twotower_set_lr(tt, (float)x));
	SET("temperature", knytt_twotower_set_temperature(tt, (float)x));
	SET("seed", knytt_twotower_set_seed(tt, (uint64_t)x));
	SET("threads", knytt_twotower_set_threads(tt, (unsigned)x));
	SET("buckets", knytt_twotower_set_buckets(tt, (uint32_t)x));
	SET("history", knytt_twotower_set_history(tt, (unsigned)x));
	SET("idDropout", knytt_twotower_set_id_dropout(tt, (float)x));
#undef SET
	return kn_new_handle(env, tt, KN_TWOTOWER);
fail:
	if (rc) {
		napi_value err = kn_error_field(env, rc, knytt_errmsg(),
					       knytt_errfield());

		napi_throw(env, err);
	}
	knytt_twotower_close(tt);
	return NULL;
}

static napi_value tt_load(napi_env env, napi_callback_info info)
{
	knytt_twotower *tt;
	bool is_buf = false;
	void *data;
	size_t len;
	char *path;
	int rc;
	KN_ARGS(env, info, 1);

	if ((rc = knytt_twotower_create(&tt)))
		return kn_throw(env, rc);
	napi_is_buffer(env, argv[0], &is_buf);
	if (is_buf) {
		napi_get_buffer_info(env, argv[0], &data, &len);
		rc = knytt_twotower_load_buffer(tt, data, len);
	} else if (kn_str(env, argv[0], "path", &path)) {
		knytt_twotower_close(tt);
		return NULL;
	} else {
		rc = knytt_twotower_load(tt, path);
		free(path);
	}
	if (rc) {
		napi_value err = kn_error_field(env, rc, knytt_errmsg(),
					       knytt_errfield());

		knytt_twotower_close(tt);
		napi_throw(env, err);
		return NULL;
	}
	return kn_new_handle(env, tt, KN_TWOTOWER);
}

static int tt_items_fill(const void *m, float *out, size_t n)
{
	int rc = knytt_twotower_item_embeddings(
		m, out, knytt_twotower_count_items(m));
	return rc < 0 ? rc : 0;
}

static int tt_users_fill(const void *m, float *out, size_t n)
{
	int rc = knytt_twotower_user_embeddings(
		m, out, knytt_twotower_count_users(m));
	return rc < 0 ? rc : 0;
}

/* ttGet(h, what): 0 info {dim, users, items}, 1 user embeddings,
 * 2 item embeddings, 3 Buffer */
static napi_value tt_get(napi_env env, napi_callback_info info)
{
	struct kn_handle *h;
	uint32_t what;
	knytt_twotower *tt;
	napi_value o;
	void *buf = NULL;
	size_t len = 0;
	KN_ARGS(env, info, 2);

	if (kn_handle_arg(env, argv[0], KN_TWOTOWER, &h) ||
	    kn_u32(env, argv[1], "what", &what))
		return NULL;
	tt = h->p;
	if (what == 1 || what == 2)
		return matrix_out(env, (size_t)knytt_twotower_dim(tt) *
				  (what == 1 ? knytt_twotower_count_users(tt) :
				   knytt_twotower_count_items(tt)),
				  what == 1 ? tt_users_fill : tt_items_fill,
				  tt);
	if (what == 3) {
		int rc = knytt_twotower_save_buffer(tt, &buf, &len);

		return to_buffer(env, rc, buf, len);
	}
	napi_create_object(env, &o);
	kn_set(env, o, "dim", kn_num(env, knytt_twotower_dim(tt)));
	kn_set(env, o, "users", kn_num(env, knytt_twotower_count_users(tt)));
	kn_set(env, o, "items", kn_num(env, knytt_twotower_count_items(tt)));
	return o;
}

/* ttEmbed(h, what, arg, recent): 0 item {title, description, category,
 * price}; 1 query text; 2 user (number or null) with recent
 * (Uint32Array).  -> Float32Array(dim) */
static napi_value tt_embed(napi_env env, napi_callback_info info)
{
	struct kn_handle *h;
	uint32_t what, user = KNYTT_TWOTOWER_NO_USER, *recent = NULL, dim;
	size_t nrec = 0;
	float *out;
	napi_value arr, v;
	char *s[3] = {NULL, NULL, NULL};
	static const char *const names[] = {"title", "description",
					    "category"};
	int rc = KNYTT_EINVAL;
	KN_ARGS(env, info, 4);

	if (kn_handle_arg(env, argv[0], KN_TWOTOWER, &h) ||
	    kn_u32(env, argv[1], "what", &what))
		return NULL;
	dim = knytt_twotower_dim(h->p);
	if (!(arr = kn_typed(env, napi_float32_array, dim ? dim : 1,
			     (void **)&out)))
		return NULL;
	if (what == 0) {
		knytt_twotower_item it = {.price = -1};
		double price;

		for (int i = 0; i < 3; i++)
			if (kn_prop(env, argv[2], names[i], &v) ||
			    kn_str_opt(env, v, names[i], &s[i]))
				goto out;
		it.title = s[0];
		it.description = s[1];
		it.category = s[2];
		if (opt(env, argv[2], "price", &price) == 1)
			it.price = price;
		rc = knytt_twotower_embed_item(h->p, &it, out);
	} else if (what == 1) {
		if (kn_str(env, argv[2], "text", &s[0]))
			goto out;
		rc = knytt_twotower_embed_query(h->p, s[0], out);
	} else {
		if ((!kn_is_nullish(env, argv[2]) &&
		     kn_u32(env, argv[2], "user", &user)) ||
		    (!kn_is_nullish(env, argv[3]) &&
		     kn_u32s(env, argv[3], "recent", &recent, &nrec)))
			goto out;
		rc = knytt_twotower_embed_user(h->p, user, recent, nrec, out);
	}
	for (int i = 0; i < 3; i++)
		free(s[i]);
	return kn_check(env, rc, arr);
out:
	for (int i = 0; i < 3; i++)
		free(s[i]);
	return NULL;
}

void kn_init_models(napi_env env, napi_value exports)
{
	kn_export(env, exports, "alsCreate", als_create);
	kn_export(env, exports, "alsLoad", als_load);
	kn_export(env, exports, "alsFit", als_fit);
	kn_export(env, exports, "alsGet", als_get);
	kn_export(env, exports, "alsScore", als_score);
	kn_export(env, exports, "alsFoldIn", als_fold_in);
	kn_export(env, exports, "modelSave", model_save);
	kn_export(env, exports, "ttCreate", tt_create);
	kn_export(env, exports, "ttLoad", tt_load);
	kn_export(env, exports, "ttFit", tt_fit);
	kn_export(env, exports, "ttGet", tt_get);
	kn_export(env, exports, "ttEmbed", tt_embed);
}
