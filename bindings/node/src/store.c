/*
 * store.c -- knytt_store for Node: tenants and keys, items, users,
 * interactions, favorites, keyword search, search log, model blobs and
 * bulk import (async).
 */
#include "addon.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define GET_STORE(env, v, st)                                               \
	struct kn_handle *st##_h;                                           \
	if (kn_handle_arg(env, v, KN_STORE, &st##_h))                       \
		return NULL;                                                \
	knytt_store *st = st##_h->p

/* ---- records ------------------------------------------------------------ */

void item_in_free(struct item_in *in)
{
	for (int i = 0; i < ITEM_STRS; i++)
		free(in->s[i]);
}

/* {id, title, description, category, price, currency, inStock, quality,
 *  imageUrl, attributes (a JSON string; index.js stringifies objects)} */
int item_from_js(napi_env env, napi_value obj, struct item_in *in)
{
	static const char *const names[ITEM_STRS] = {
		"id", "title", "description", "category", "currency",
		"imageUrl", "attributes"};
	napi_value v;

	memset(in, 0, sizeof(*in));
	in->it.struct_size = sizeof(knytt_item);
	in->it.in_stock = 1;
	for (int i = 0; i < ITEM_STRS; i++)
		if (kn_prop(env, obj, names[i], &v) ||
		    kn_str_opt(env, v, names[i], &in->s[i]))
			goto fail;
	in->it.ext_id = in->s[0];
	in->it.title = in->s[1];
	in->it.description = in->s[2];
	in->it.category = in->s[3];
	in->it.currency = in->s[4];
	in->it.image_url = in->s[5];
	in->it.attributes = in->s[6];
	if (kn_prop(env, obj, "price", &v) ||
	    (!kn_is_nullish(env, v) && kn_f64(env, v, "price", &in->it.price)))
		goto fail;
	if (kn_prop(env, obj, "quality", &v) ||
	    (!kn_is_nullish(env, v) &&
	     kn_f64(env, v, "quality", &in->it.quality)))
		goto fail;
	if (kn_prop(env, obj, "inStock", &v) ||
	    (!kn_is_nullish(env, v) && kn_bool(env, v, &in->it.in_stock)))
		goto fail;
	return 0;
fail:
	item_in_free(in);
	return -1;
}

napi_value item_to_js(napi_env env, const knytt_item *it)
{
	napi_value o, b;

	napi_create_object(env, &o);
	kn_set(env, o, "id", kn_string(env, it->ext_id));
	kn_set(env, o, "itemId", kn_u64_value(env, it->id));
	kn_set(env, o, "title", kn_string(env, it->title));
	kn_set(env, o, "description", kn_string(env, it->description));
	kn_set(env, o, "category", kn_string(env, it->category));
	kn_set(env, o, "price", kn_num(env, it->price));
	kn_set(env, o, "currency", kn_string(env, it->currency));
	napi_get_boolean(env, it->in_stock, &b);
	kn_set(env, o, "inStock", b);
	kn_set(env, o, "quality", kn_num(env, it->quality));
	kn_set(env, o, "imageUrl", kn_string(env, it->image_url));
	kn_set(env, o, "attributes", kn_string(env, it->attributes));
	kn_set(env, o, "createdMs", kn_num(env, (double)it->created_ms));
	kn_set(env, o, "updatedMs", kn_num(env, (double)it->updated_ms));
	napi_get_boolean(env, it->deleted, &b);
	kn_set(env, o, "deleted", b);
	return o;
}

static napi_value interaction_to_js(napi_env env, const knytt_interaction *x)
{
	napi_value o;

	napi_create_object(env, &o);
	kn_set(env, o, "id", kn_u64_value(env, x->id));
	kn_set(env, o, "user", kn_string(env, x->user));
	kn_set(env, o, "item", kn_string(env, x->item));
	kn_set(env, o, "userId", kn_u64_value(env, x->user_id));
	kn_set(env, o, "itemId", kn_u64_value(env, x->item_id));
	kn_set(env, o, "type", kn_string(env, x->type));
	kn_set(env, o, "weight", kn_num(env, x->weight));
	kn_set(env, o, "value", x->has_value ? kn_num(env, x->value) :
	       kn_string(env, NULL));
	kn_set(env, o, "tsMs", kn_num(env, (double)x->ts_ms));
	kn_set(env, o, "eventId", kn_string(env, x->event_id));
	return o;
}

/* ---- open, tenants, keys ---------------------------------------------------- */

static napi_value store_open(napi_env env, napi_callback_info info)
{
	knytt_store *st;
	char *uri;
	int rc;
	KN_ARGS(env, info, 1);

	if (kn_str(env, argv[0], "uri", &uri))
		return NULL;
	rc = knytt_store_open(uri, &st);
	free(uri);
	return rc ? kn_throw(env, rc) : kn_new_handle(env, st, KN_STORE);
}

/* storeTenant(h, name, mode): mode 0 find, 1 create, 2 find or create
 * and select.  Returns the id. */
static napi_value store_tenant(napi_env env, napi_callback_info info)
{
	char *name;
	uint32_t mode;
	uint64_t id = 0;
	int rc;
	KN_ARGS(env, info, 3);
	GET_STORE(env, argv[0], st);

	if (kn_u32(env, argv[2], "mode", &mode) ||
	    kn_str(env, argv[1], "tenant", &name))
		return NULL;
	if (mode == 1)
		rc = knytt_store_tenant_create(st, name, &id);
	else if ((rc = knytt_store_tenant_find(st, name, &id)) ==
		 KNYTT_ENOTFOUND && mode == 2)
		rc = knytt_store_tenant_create(st, name, &id);
	if (rc == 0 && mode == 2)
		rc = knytt_store_use_tenant(st, id);
	free(name);
	return kn_check(env, rc, kn_u64_value(env, id));
}

static napi_value store_use_tenant(napi_env env, napi_callback_info info)
{
	uint64_t id;
	KN_ARGS(env, info, 2);
	GET_STORE(env, argv[0], st);

	if (kn_u64(env, argv[1], "tenant", &id))
		return NULL;
	return kn_check(env, knytt_store_use_tenant(st, id), kn_undefined(env));
}

/* storeInfo(h) -> {backend, schemaVersion, tenant, items, users,
 * interactions} (counts only with a tenant selected). */
static napi_value store_info(napi_env env, napi_callback_info info)
{
	napi_value o;
	KN_ARGS(env, info, 1);
	GET_STORE(env, argv[0], st);

	napi_create_object(env, &o);
	kn_set(env, o, "backend", kn_string(env, knytt_store_backend(st)));
	kn_set(env, o, "schemaVersion",
	       kn_num(env, knytt_store_schema_version(st)));
	kn_set(env, o, "tenant", kn_u64_value(env, knytt_store_tenant(st)));
	if (knytt_store_tenant(st)) {
		kn_set(env, o, "items",
		       kn_num(env, (double)knytt_store_item_count(st)));
		kn_set(env, o, "users",
		       kn_num(env, (double)knytt_store_user_count(st)));
		kn_set(env, o, "interactions",
		       kn_num(env, (double)knytt_store_interaction_count(st)));
	}
	return o;
}

/* storeKey(h, op, arg): op 0 create (arg scope 1|2) -> key; 1 lookup
 * (arg key) -> {tenant, scope}; 2 revoke (arg key). */
static napi_value store_key(napi_env env, napi_callback_info info)
{
	uint32_t op, scope;
	char key[KNYTT_STORE_KEY_LEN + 1], *arg;
	uint64_t tenant;
	knytt_key_scope sc;
	napi_value o;
	int rc;
	KN_ARGS(env, info, 3);
	GET_STORE(env, argv[0], st);

	if (kn_u32(env, argv[1], "op", &op))
		return NULL;
	if (op == 0) {
		if (kn_u32(env, argv[2], "scope", &scope))
			return NULL;
		rc = knytt_store_key_create(st, (knytt_key_scope)scope, key);
		return kn_check(env, rc, kn_string(env, key));
	}
	if (kn_str(env, argv[2], "key", &arg))
		return NULL;
	if (op == 2) {
		rc = knytt_store_key_revoke(st, arg);
		free(arg);
		return kn_check(env, rc, kn_undefined(env));
	}
	rc = knytt_store_key_lookup(st, arg, &tenant, &sc);
	free(arg);
	if (rc)
		return kn_throw(env, rc);
	napi_create_object(env, &o);
	kn_set(env, o, "tenant", kn_u64_value(env, tenant));
	kn_set(env, o, "scope", kn_string(env, sc == KNYTT_KEY_SECRET ?
					  "secret" : "public"));
	return o;
}

/* ---- items ----------------------------------------------------------------- */

static napi_value store_item_upsert(napi_env env, napi_callback_info info)
{
	struct item_in in;
	uint64_t id = 0;
	int rc;
	KN_ARGS(env, info, 2);
	GET_STORE(env, argv[0], st);

	if (item_from_js(env, argv[1], &in))
		return NULL;
	rc = knytt_store_item_upsert(st, &in.it, &id);
	item_in_free(&in);
	return kn_check(env, rc, kn_u64_value(env, id));
}

/* storeItemGet(h, extId | internal id number) */
static napi_value store_item_get(napi_env env, napi_callback_info info)
{
	knytt_item *it = NULL;
	napi_valuetype t;
	napi_value o;
	char *ext;
	uint64_t id;
	int rc;
	KN_ARGS(env, info, 2);
	GET_STORE(env, argv[0], st);

	napi_typeof(env, argv[1], &t);
	if (t == napi_string) {
		if (kn_str(env, argv[1], "id", &ext))
			return NULL;
		rc = knytt_store_item_get(st, ext, &it);
		free(ext);
	} else {
		if (kn_u64(env, argv[1], "id", &id))
			return NULL;
		rc = knytt_store_item_get_id(st, id, &it);
	}
	if (rc)
		return kn_throw(env, rc);
	o = item_to_js(env, it);
	knytt_free(it);
	return o;
}

static napi_value store_item_delete(napi_env env, napi_callback_info info)
{
	char *ext;
	int rc;
	KN_ARGS(env, info, 2);
	GET_STORE(env, argv[0], st);

	if (kn_str(env, argv[1], "id", &ext))
		return NULL;
	rc = knytt_store_item_delete(st, ext);
	free(ext);
	return kn_check(env, rc, kn_undefined(env));
}

/* storeSearch(h, query, k, category, priceMin, priceMax, inStockOnly)
 * -> [{itemId, score}] */
static napi_value store_search(napi_env env, napi_callback_info info)
{
	char *query = NULL, *cat = NULL;
	uint32_t k;
	double pmin = NAN, pmax = NAN;
	int stock = 0, n;
	uint64_t *ids = NULL;
	double *scores = NULL;
	napi_value arr = NULL, o;
	KN_ARGS(env, info, 7);
	GET_STORE(env, argv[0], st);

	if (kn_str(env, argv[1], "query", &query) ||
	    kn_u32(env, argv[2], "k", &k) ||
	    kn_str_opt(env, argv[3], "category", &cat) ||
	    (!kn_is_nullish(env, argv[4]) &&
	     kn_f64(env, argv[4], "priceMin", &pmin)) ||
	    (!kn_is_nullish(env, argv[5]) &&
	     kn_f64(env, argv[5], "priceMax", &pmax)) ||
	    kn_bool(env, argv[6], &stock))
		goto out;
	ids = malloc((k + 1) * sizeof(*ids));
	scores = malloc((k + 1) * sizeof(*scores));
	if (!ids || !scores) {
		kn_throw_msg(env, KNYTT_ENOMEM, "out of memory");
		goto out;
	}
	n = knytt_store_search(st, query, cat, pmin, pmax, stock, ids, scores,
			       k);
	if (n < 0) {
		kn_throw(env, n);
		goto out;
	}
	napi_create_array_with_length(env, n, &arr);
	for (int i = 0; i < n; i++) {
		napi_create_object(env, &o);
		kn_set(env, o, "itemId", kn_u64_value(env, ids[i]));
		kn_set(env, o, "score", kn_num(env, scores[i]));
		napi_set_element(env, arr, i, o);
	}
out:
	free(query);
	free(cat);
	free(ids);
	free(scores);
	return arr;
}

/* ---- users, interactions, favorites, search log ------------------------------ */

static napi_value store_user_upsert(napi_env env, napi_callback_info info)
{
	char *ext = NULL, *attrs = NULL;
	uint64_t id = 0;
	int rc;
	KN_ARGS(env, info, 3);
	GET_STORE(env, argv[0], st);

	if (kn_str(env, argv[1], "user", &ext) ||
	    kn_str_opt(env, argv[2], "attributes", &attrs)) {
		free(ext);
		return NULL;
	}
	rc = knytt_store_user_upsert(st, ext, attrs, &id);
	free(ext);
	free(attrs);
	return kn_check(env, rc, kn_u64_value(env, id));
}

/* storeInteractionAdd(h, {user, item, type, weight, value, tsMs,
 * eventId}) -> true (stored) | false (duplicate event id) */
static napi_value store_interaction_add(napi_env env, napi_callback_info info)
{
	static const char *const names[] = {"user", "item", "type", "eventId"};
	char *s[4] = {NULL, NULL, NULL, NULL};
	knytt_interaction x = {.struct_size = sizeof(x)};
	napi_value v, ret = NULL;
	int rc;
	KN_ARGS(env, info, 2);
	GET_STORE(env, argv[0], st);

	for (int i = 0; i < 4; i++)
		if (kn_prop(env, argv[1], names[i], &v) ||
		    kn_str_opt(env, v, names[i], &s[i]))
			goto out;
	x.user = s[0];
	x.item = s[1];
	x.type = s[2] ? s[2] : "view";
	x.event_id = s[3];
	if (kn_prop(env, argv[1], "weight", &v) ||
	    (!kn_is_nullish(env, v) && kn_f64(env, v, "weight", &x.weight)) ||
	    kn_prop(env, argv[1], "tsMs", &v) ||
	    (!kn_is_nullish(env, v) && kn_i64(env, v, "tsMs", &x.ts_ms)) ||
	    kn_prop(env, argv[1], "value", &v))
		goto out;
	if (!kn_is_nullish(env, v)) {
		if (kn_f64(env, v, "value", &x.value))
			goto out;
		x.has_value = 1;
	}
	rc = knytt_store_interaction_add(st, &x);
	if (rc < 0)
		kn_throw(env, rc);
	else
		napi_get_boolean(env, rc == 1, &ret);
out:
	for (int i = 0; i < 4; i++)
		free(s[i]);
	return ret;
}

struct collect {
	napi_env env;
	napi_value arr;
	uint32_t n;
};

static int collect_interaction(const knytt_interaction *x, void *ctx)
{
	struct collect *c = ctx;

	napi_set_element(c->env, c->arr, c->n++, interaction_to_js(c->env, x));
	return 0;
}

/* storeRecent(h, user|item, n, ofItem) -> [interaction] */
static napi_value store_recent(napi_env env, napi_callback_info info)
{
	char *who;
	uint32_t n;
	int of_item, rc;
	struct collect c = {env, NULL, 0};
	KN_ARGS(env, info, 4);
	GET_STORE(env, argv[0], st);

	if (kn_u32(env, argv[2], "n", &n) || kn_bool(env, argv[3], &of_item) ||
	    kn_str(env, argv[1], of_item ? "item" : "user", &who))
		return NULL;
	napi_create_array(env, &c.arr);
	rc = of_item ? knytt_store_item_recent(st, who, n, collect_interaction,
					       &c) :
		       knytt_store_user_recent(st, who, n, collect_interaction,
					       &c);
	free(who);
	return kn_check(env, rc, c.arr);
}

/* storeInteractionsSince(h, sinceMs) -> [interaction], (tsMs, id) order */
static napi_value store_interactions_since(napi_env env,
					   napi_callback_info info)
{
	int64_t since;
	int rc;
	struct collect c = {env, NULL, 0};
	KN_ARGS(env, info, 2);
	GET_STORE(env, argv[0], st);

	if (kn_i64(env, argv[1], "sinceMs", &since))
		return NULL;
	KN_CALL(env, napi_create_array(env, &c.arr));
	rc = knytt_store_interactions_since(st, since, collect_interaction,
					    &c);
	return kn_check(env, rc, c.arr);
}

/* storeFavorite(h, user, item, set) */
static napi_value store_favorite(napi_env env, napi_callback_info info)
{
	char *user = NULL, *item = NULL;
	int set, rc;
	KN_ARGS(env, info, 4);
	GET_STORE(env, argv[0], st);

	if (kn_bool(env, argv[3], &set) ||
	    kn_str(env, argv[1], "user", &user) ||
	    kn_str(env, argv[2], "item", &item)) {
		free(user);
		return NULL;
	}
	rc = set ? knytt_store_favorite_set(st, user, item) :
		   knytt_store_favorite_unset(st, user, item);
	free(user);
	free(item);
	return kn_check(env, rc, kn_undefined(env));
}

/* storeFavoriteList(h, user, cap) -> [internal item id] */
static napi_value store_favorite_list(napi_env env, napi_callback_info info)
{
	char *user;
	uint32_t cap;
	uint64_t *ids;
	napi_value arr;
	int n;
	KN_ARGS(env, info, 3);
	GET_STORE(env, argv[0], st);

	if (kn_u32(env, argv[2], "cap", &cap) ||
	    kn_str(env, argv[1], "user", &user))
		return NULL;
	if (!(ids = malloc((cap + 1) * sizeof(*ids)))) {
		free(user);
		return kn_throw_msg(env, KNYTT_ENOMEM, "out of memory");
	}
	n = knytt_store_favorite_list(st, user, ids, cap);
	free(user);
	if (n < 0) {
		free(ids);
		return kn_throw(env, n);
	}
	napi_create_array_with_length(env, n, &arr);
	for (int i = 0; i < n; i++)
		napi_set_element(env, arr, i, kn_u64_value(env, ids[i]));
	free(ids);
	return arr;
}

/* storeSearchLog(h, query, user, resultCount) -> log id;
 * storeSearchClick(h, logId, item) */
static napi_value store_search_log(napi_env env, napi_callback_info info)
{
	char *q = NULL, *user = NULL;
	uint32_t count;
	uint64_t id = 0;
	int rc;
	KN_ARGS(env, info, 4);
	GET_STORE(env, argv[0], st);

	if (kn_u32(env, argv[3], "resultCount", &count) ||
	    kn_str(env, argv[1], "query", &q) ||
	    kn_str_opt(env, argv[2], "user", &user)) {
		free(q);
		return NULL;
	}
	rc = knytt_store_search_log(st, q, user, (int)count, 0, &id);
	free(q);
	free(user);
	return kn_check(env, rc, kn_u64_value(env, id));
}

static napi_value store_search_click(napi_env env, napi_callback_info info)
{
	uint64_t id;
	char *item;
	int rc;
	KN_ARGS(env, info, 3);
	GET_STORE(env, argv[0], st);

	if (kn_u64(env, argv[1], "logId", &id) ||
	    kn_str(env, argv[2], "item", &item))
		return NULL;
	rc = knytt_store_search_click(st, id, item);
	free(item);
	return kn_check(env, rc, kn_undefined(env));
}

/* ---- model blobs --------------------------------------------------------------- */

/* storeModelPut(h, name, Uint8Array, metadataJson) -> version */
static napi_value store_model_put(napi_env env, napi_callback_info info)
{
	char *name = NULL, *meta = NULL;
	void *data;
	size_t len;
	napi_typedarray_type type;
	bool is = false;
	int64_t ver = 0;
	int rc;
	KN_ARGS(env, info, 4);
	GET_STORE(env, argv[0], st);

	if (napi_is_typedarray(env, argv[2], &is) != napi_ok || !is ||
	    napi_get_typedarray_info(env, argv[2], &type, &len, &data, NULL,
				     NULL) != napi_ok ||
	    type != napi_uint8_array)
		return kn_throw_msg(env, KNYTT_EINVAL,
				    "blob must be a Uint8Array or Buffer");
	if (kn_str(env, argv[1], "name", &name) ||
	    kn_str_opt(env, argv[3], "metadata", &meta)) {
		free(name);
		return NULL;
	}
	rc = knytt_store_model_put(st, name, data, len, meta, &ver);
	free(name);
	free(meta);
	return kn_check(env, rc, kn_num(env, (double)ver));
}

/* storeModelGet(h, name, version) -> {blob: Buffer, metadata, version,
 * createdMs} */
static napi_value store_model_get(napi_env env, napi_callback_info info)
{
	char *name, *meta = NULL;
	void *blob = NULL, *copy;
	size_t size = 0;
	int64_t ver, got = 0, created = 0;
	napi_value o, buf;
	int rc;
	KN_ARGS(env, info, 3);
	GET_STORE(env, argv[0], st);

	if (kn_i64(env, argv[2], "version", &ver) ||
	    kn_str(env, argv[1], "name", &name))
		return NULL;
	rc = knytt_store_model_get(st, name, ver, &blob, &size, &meta, &got,
				   &created);
	free(name);
	if (rc)
		return kn_throw(env, rc);
	napi_create_buffer_copy(env, size, blob ? blob : "", &copy, &buf);
	knytt_free(blob);
	napi_create_object(env, &o);
	kn_set(env, o, "blob", buf);
	kn_set(env, o, "metadata", kn_string(env, meta));
	kn_set(env, o, "version", kn_num(env, (double)got));
	kn_set(env, o, "createdMs", kn_num(env, (double)created));
	knytt_free(meta);
	return o;
}

/* ---- bulk import (async) --------------------------------------------------------- */

struct reject {
	size_t line;
	char *field, *reason;
};

struct import_job {
	struct kn_job base;
	knytt_store *st;
	char *path;
	uint32_t kind, format;
	struct reject *rejects; /* collected on the pool thread */
	size_t nrej, caprej;
};

static void on_reject(size_t line, const char *field, const char *reason,
		      void *ctx)
{
	struct import_job *j = ctx;
	struct reject *r;

	if (j->nrej == j->caprej) {
		size_t cap = j->caprej ? 2 * j->caprej : 16;

		if (!(r = realloc(j->rejects, cap * sizeof(*r))))
			return;
		j->rejects = r;
		j->caprej = cap;
	}
	r = &j->rejects[j->nrej];
	r->line = line;
	r->field = strdup(field ? field : "");
	r->reason = strdup(reason ? reason : "");
	if (r->field && r->reason)
		j->nrej++;
}

static int import_exec(struct kn_job *job)
{
	struct import_job *j = (struct import_job *)job;

	return knytt_store_import(j->st, j->path, (knytt_record_kind)j->kind,
				  (knytt_format)j->format, on_reject, j);
}

static napi_value import_done(napi_env env, struct kn_job *job)
{
	struct import_job *j = (struct import_job *)job;
	napi_value o, arr, r;

	napi_create_object(env, &o);
	kn_set(env, o, "accepted", kn_num(env, job->rc));
	napi_create_array_with_length(env, j->nrej, &arr);
	for (size_t i = 0; i < j->nrej; i++) {
		napi_create_object(env, &r);
		kn_set(env, r, "line", kn_num(env, (double)j->rejects[i].line));
		kn_set(env, r, "field", kn_string(env, j->rejects[i].field));
		kn_set(env, r, "reason", kn_string(env, j->rejects[i].reason));
		napi_set_element(env, arr, (uint32_t)i, r);
	}
	kn_set(env, o, "rejects", arr);
	return o;
}

static void import_release(struct kn_job *job)
{
	struct import_job *j = (struct import_job *)job;

	for (size_t i = 0; i < j->nrej; i++) {
		free(j->rejects[i].field);
		free(j->rejects[i].reason);
	}
	free(j->rejects);
	free(j->path);
}

/* storeImport(h, path, kind, format) -> Promise<{accepted, rejects}> */
static napi_value store_import(napi_env env, napi_callback_info info)
{
	struct import_job *j;
	KN_ARGS(env, info, 4);
	GET_STORE(env, argv[0], st);

	if (!(j = calloc(1, sizeof(*j))))
		return kn_throw_msg(env, KNYTT_ENOMEM, "out of memory");
	j->st = st;
	if (kn_u32(env, argv[2], "kind", &j->kind) ||
	    kn_u32(env, argv[3], "format", &j->format) ||
	    kn_str(env, argv[1], "path", &j->path)) {
		free(j);
		return NULL;
	}
	j->base.exec = import_exec;
	j->base.done = import_done;
	j->base.release = import_release;
	j->base.h = st_h;
	j->base.h2 = kn_owner(env, st_h);
	if (kn_job_keep(env, &j->base, argv[0])) {
		free(j->path);
		free(j);
		return kn_pending(env);
	}
	return kn_job_queue(env, &j->base, "knytt.import");
}

void kn_init_store(napi_env env, napi_value exports)
{
	kn_export(env, exports, "storeOpen", store_open);
	kn_export(env, exports, "storeTenant", store_tenant);
	kn_export(env, exports, "storeUseTenant", store_use_tenant);
	kn_export(env, exports, "storeInfo", store_info);
	kn_export(env, exports, "storeKey", store_key);
	kn_export(env, exports, "storeItemUpsert", store_item_upsert);
	kn_export(env, exports, "storeItemGet", store_item_get);
	kn_export(env, exports, "storeItemDelete", store_item_delete);
	kn_export(env, exports, "storeSearch", store_search);
	kn_export(env, exports, "storeUserUpsert", store_user_upsert);
	kn_export(env, exports, "storeInteractionAdd", store_interaction_add);
	kn_export(env, exports, "storeRecent", store_recent);
	kn_export(env, exports, "storeInteractionsSince",
		  store_interactions_since);
	kn_export(env, exports, "storeFavorite", store_favorite);
	kn_export(env, exports, "storeFavoriteList", store_favorite_list);
	kn_export(env, exports, "storeSearchLog", store_search_log);
	kn_export(env, exports, "storeSearchClick", store_search_click);
	kn_export(env, exports, "storeModelPut", store_model_put);
	kn_export(env, exports, "storeModelGet", store_model_get);
	kn_export(env, exports, "storeImport", store_import);
}
