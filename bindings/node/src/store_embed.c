/*
 * store_embed.c -- embedding rows of a Store in the Node addon:
 * embeddingPut, embeddingGet and embeddings (every row of a kind and
 * version).  Vectors are Float32Arrays, read in place and written by
 * the library straight into the arrays returned.
 */
#include "addon.h"

#include <stdlib.h>

#define GET_STORE(env, v, st)                                               \
	struct kn_handle *st##_h;                                           \
	if (kn_handle_arg(env, v, KN_STORE, &st##_h))                       \
		return NULL;                                                \
	knytt_store *st = st##_h->p

/* owner (1 item, 2 user; index.js maps the names), id, version */
static int embed_key(napi_env env, napi_value *argv, uint32_t *owner,
		     uint64_t *id, char **version)
{
	return kn_u32(env, argv[0], "owner", owner) ||
	       kn_u64(env, argv[1], "id", id) ||
	       kn_str(env, argv[2], "version", version) ? -1 : 0;
}

/* storeEmbeddingPut(h, owner, id, version, Float32Array) */
static napi_value store_embedding_put(napi_env env, napi_callback_info info)
{
	uint32_t owner;
	uint64_t id;
	char *version;
	float *vec;
	size_t dim;
	int rc;
	KN_ARGS(env, info, 5);
	GET_STORE(env, argv[0], st);

	if (kn_f32(env, argv[4], "vector", &vec, &dim) ||
	    embed_key(env, argv + 1, &owner, &id, &version))
		return NULL;
	if (dim > UINT32_MAX) {
		free(version);
		return kn_throw_msg(env, KNYTT_EINVAL, "vector is too long");
	}
	rc = knytt_store_embedding_put(st, (knytt_owner)owner, id, version,
				       vec, (uint32_t)dim);
	free(version);
	return kn_check(env, rc, kn_undefined(env));
}

/* storeEmbeddingGet(h, owner, id, version) -> Float32Array.  The first
 * call learns the dimension; a second writes into an array of it. */
static napi_value store_embedding_get(napi_env env, napi_callback_info info)
{
	uint32_t owner;
	uint64_t id;
	char *version;
	float one, *out;
	napi_value arr = NULL;
	int dim;
	KN_ARGS(env, info, 4);
	GET_STORE(env, argv[0], st);

	if (embed_key(env, argv + 1, &owner, &id, &version))
		return NULL;
	dim = knytt_store_embedding_get(st, (knytt_owner)owner, id, version,
					&one, 1);
	if (dim >= 0 &&
	    (arr = kn_typed(env, napi_float32_array, (size_t)dim,
			    (void **)&out)))
		dim = knytt_store_embedding_get(st, (knytt_owner)owner, id,
						version, out, (uint32_t)dim);
	free(version);
	if (dim < 0)
		return kn_throw(env, dim);
	return arr;
}

struct each {
	napi_env env;
	napi_value map, set;
};

/* vec is borrowed: copied into a new Float32Array. */
static int each_row(uint64_t id, const float *vec, uint32_t dim, void *ctx)
{
	struct each *c = ctx;
	napi_value arr, args[2], ret;
	float *out;

	if (!(arr = kn_typed(c->env, napi_float32_array, dim, (void **)&out)))
		return KNYTT_ENOMEM;
	for (uint32_t i = 0; i < dim; i++)
		out[i] = vec[i];
	args[0] = kn_u64_value(c->env, id);
	args[1] = arr;
	if (napi_call_function(c->env, c->map, c->set, 2, args, &ret) !=
	    napi_ok)
		return KNYTT_ENOMEM;
	return 0;
}

/* storeEmbeddings(h, owner, version, map): fills map (a Map) id -> vector */
static napi_value store_embeddings(napi_env env, napi_callback_info info)
{
	struct each c = { env, NULL, NULL };
	uint32_t owner;
	char *version;
	int rc;
	KN_ARGS(env, info, 4);
	GET_STORE(env, argv[0], st);

	if (kn_u32(env, argv[1], "owner", &owner) ||
	    kn_str(env, argv[2], "version", &version))
		return NULL;
	c.map = argv[3];
	if (kn_prop(env, c.map, "set", &c.set)) {
		free(version);
		return NULL;
	}
	rc = knytt_store_embeddings_each(st, (knytt_owner)owner, version,
					 each_row, &c);
	free(version);
	return kn_check(env, rc, c.map);
}

void kn_init_store_embed(napi_env env, napi_value exports)
{
	kn_export(env, exports, "storeEmbeddingPut", store_embedding_put);
	kn_export(env, exports, "storeEmbeddingGet", store_embedding_get);
	kn_export(env, exports, "storeEmbeddings", store_embeddings);
}
