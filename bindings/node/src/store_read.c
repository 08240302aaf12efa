/*
 * store_read.c -- Store reads of the Node addon that return records:
 * userGet, itemsChanged, searchLogGet, itemCounts, and setBatchSize (the import
 * batch knob).  index.js wraps them as Store methods.
 */
#include "addon.h"

#include <stdlib.h>

#define GET_STORE(env, v, st)                                               \
	struct kn_handle *st##_h;                                           \
	if (kn_handle_arg(env, v, KN_STORE, &st##_h))                       \
		return NULL;                                                \
	knytt_store *st = st##_h->p

/* (store, id) -> {id, userId, attributes (JSON text or null), createdMs} */
static napi_value store_user_get(napi_env env, napi_callback_info info)
{
	char *ext, *attrs = NULL;
	uint64_t id;
	int64_t created;
	napi_value o;
	int rc;
	KN_ARGS(env, info, 2);
	GET_STORE(env, argv[0], st);

	if (kn_str(env, argv[1], "user", &ext))
		return NULL;
	rc = knytt_store_user_get(st, ext, &id, &attrs, &created);
	if (rc) {
		free(ext);
		return kn_throw(env, rc);
	}
	KN_CALL(env, napi_create_object(env, &o));
	kn_set(env, o, "id", kn_string(env, ext));
	kn_set(env, o, "userId", kn_u64_value(env, id));
	kn_set(env, o, "attributes", kn_string(env, attrs));
	kn_set(env, o, "createdMs", kn_num(env, (double)created));
	free(ext);
	knytt_free(attrs);
	return o;
}

struct changed {
	napi_env env;
	napi_value arr;
	uint32_t n;
};

/* The item is borrowed (BORROWED RECORDS): item_to_js copies it. */
static int changed_item(const knytt_item *it, void *ctx)
{
	struct changed *c = ctx;
	napi_value v = item_to_js(c->env, it);

	if (!v || napi_set_element(c->env, c->arr, c->n++, v) != napi_ok)
		return KNYTT_ENOMEM;
	return 0;
}

/* (store, sinceMs) -> [item], deleted ones included.  Runs on the main
 * thread: the records are built as JavaScript objects as they come. */
static napi_value store_items_changed(napi_env env, napi_callback_info info)
{
	struct changed c = { env, NULL, 0 };
	int64_t since;
	int rc;
	KN_ARGS(env, info, 2);
	GET_STORE(env, argv[0], st);

	if (kn_i64(env, argv[1], "sinceMs", &since))
		return NULL;
	KN_CALL(env, napi_create_array(env, &c.arr));
	rc = knytt_store_items_changed(st, since, changed_item, &c);
	return kn_check(env, rc, c.arr);
}

/* (store, logId) -> {query, resultCount, clickedItem} */
static napi_value store_search_log_get(napi_env env, napi_callback_info info)
{
	char *q = NULL;
	int count;
	uint64_t id, clicked;
	napi_value o;
	int rc;
	KN_ARGS(env, info, 2);
	GET_STORE(env, argv[0], st);

	if (kn_u64(env, argv[1], "logId", &id))
		return NULL;
	rc = knytt_store_search_log_get(st, id, &q, &count, &clicked);
	if (rc)
		return kn_throw(env, rc);
	KN_CALL(env, napi_create_object(env, &o));
	kn_set(env, o, "query", kn_string(env, q));
	kn_set(env, o, "resultCount", kn_num(env, count));
	kn_set(env, o, "clickedItem", kn_u64_value(env, clicked));
	knytt_free(q);
	return o;
}

/* (store, fromMs, toMs, type | null, cap) -> {itemIds, counts}, two
 * BigUint64Arrays of the same length, most counted first; the library
 * writes straight into them. */
static napi_value store_item_counts(napi_env env, napi_callback_info info)
{
	int64_t from, to;
	uint32_t cap;
	char *type = NULL;
	uint64_t *ids, *counts;
	napi_value a, b, ab, o, sub_a, sub_b;
	int rc;
	KN_ARGS(env, info, 5);
	GET_STORE(env, argv[0], st);

	if (kn_i64(env, argv[1], "fromMs", &from) ||
	    kn_i64(env, argv[2], "toMs", &to) ||
	    kn_u32(env, argv[4], "cap", &cap) ||
	    kn_str_opt(env, argv[3], "type", &type))
		return NULL;
	if (!(a = kn_typed(env, napi_biguint64_array, cap, (void **)&ids)) ||
	    !(b = kn_typed(env, napi_biguint64_array, cap, (void **)&counts))) {
		free(type);
		return NULL;
	}
	rc = knytt_store_item_counts(st, from, to, type, ids, counts, cap);
	free(type);
	if (rc < 0)
		return kn_throw(env, rc);
	/* views of the first rc entries: no copy */
	KN_CALL(env, napi_get_typedarray_info(env, a, NULL, NULL, NULL, &ab,
					      NULL));
	KN_CALL(env, napi_create_typedarray(env, napi_biguint64_array,
					    (size_t)rc, ab, 0, &sub_a));
	KN_CALL(env, napi_get_typedarray_info(env, b, NULL, NULL, NULL, &ab,
					      NULL));
	KN_CALL(env, napi_create_typedarray(env, napi_biguint64_array,
					    (size_t)rc, ab, 0, &sub_b));
	KN_CALL(env, napi_create_object(env, &o));
	kn_set(env, o, "itemIds", sub_a);
	kn_set(env, o, "counts", sub_b);
	return o;
}

/* (store, rows) */
static napi_value store_set_batch_size(napi_env env, napi_callback_info info)
{
	uint32_t rows;
	KN_ARGS(env, info, 2);
	GET_STORE(env, argv[0], st);

	if (kn_u32(env, argv[1], "rows", &rows))
		return NULL;
	return kn_check(env, knytt_store_set_batch_size(st, rows),
			kn_undefined(env));
}

void kn_init_store_read(napi_env env, napi_value exports)
{
	kn_export(env, exports, "storeUserGet", store_user_get);
	kn_export(env, exports, "storeItemsChanged", store_items_changed);
	kn_export(env, exports, "storeSearchLogGet", store_search_log_get);
	kn_export(env, exports, "storeSetBatchSize", store_set_batch_size);
	kn_export(env, exports, "storeItemCounts", store_item_counts);
}
