/*
 * blobs.c -- embeddings and model blobs.  Moved from store.c.
 */
#include "store_int.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define O (st->ops)

/* ---- embeddings and models --------------------------------------------- */

static int owner_ok(knytt_store *st, knytt_owner owner, uint64_t id)
{
	if (owner != KNYTT_OWNER_ITEM && owner != KNYTT_OWNER_USER)
		return knytt__err(KNYTT_EINVAL, "owner %d is not an owner kind",
				  (int)owner);
	knytt__stmt *q = knytt__st_q(st, owner == KNYTT_OWNER_ITEM
						 ? Q_EMB_OWNER_ITEM
						 : Q_EMB_OWNER_USER);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, (int64_t)id);
	int row = 0;
	int rc = knytt__st_step_one(st, q, &row);
	O->reset(q);
	if (rc == 0 && !row)
		return knytt__err(KNYTT_ENOTFOUND, "no %s with id %llu",
				  owner == KNYTT_OWNER_ITEM ? "item" : "user",
				  (unsigned long long)id);
	return rc;
}

int knytt_store_embedding_put(knytt_store *st, knytt_owner owner,
			      uint64_t id, const char *version,
			      const float *vec, uint32_t dim)
{
	int rc = knytt__st_need_tenant(st);
	if (rc || (rc = knytt__st_check_id("version", version)))
		return rc;
	if (!vec || dim == 0 || dim > 65536)
		return knytt__err(KNYTT_EINVAL,
				  "vector is NULL or dim %u is not 1..65536",
				  dim);
	for (uint32_t i = 0; i < dim; i++)
		if (!isfinite(vec[i]))
			return knytt__err(KNYTT_EINVAL,
					  "vector value %u is not finite", i);
	if ((rc = owner_ok(st, owner, id)))
		return rc;
	knytt__stmt *q = knytt__st_q(st, Q_EMB_PUT);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, owner);
	O->bind_text(q, 3, version);
	O->bind_i64(q, 4, (int64_t)id);
	O->bind_i64(q, 5, dim);
	/* x86-64 and arm64 are little-endian: the blob is the array */
	O->bind_blob(q, 6, vec, (size_t)dim * sizeof(float));
	O->bind_i64(q, 7, knytt__now_ms()); /* replicas read changes by it */
	int row;
	rc = knytt__st_step_one(st, q, &row);
	O->reset(q);
	return rc;
}

int knytt_store_embedding_get(knytt_store *st, knytt_owner owner,
			      uint64_t id, const char *version, float *out,
			      uint32_t cap)
{
	int rc = knytt__st_need_tenant(st);
	if (rc || (rc = knytt__st_check_id("version", version)))
		return rc;
	if (!out && cap)
		return knytt__err(KNYTT_EINVAL, "out is NULL");
	knytt__stmt *q = knytt__st_q(st, Q_EMB_GET);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, owner);
	O->bind_text(q, 3, version);
	O->bind_i64(q, 4, (int64_t)id);
	int row = 0;
	rc = knytt__st_step_one(st, q, &row);
	int dim = 0;
	if (rc == 0 && row) {
		size_t n = 0;
		const void *b = O->col_blob(q, 1, &n);
		dim = (int)O->col_i64(q, 0);
		if (dim <= 0 || n != (size_t)dim * sizeof(float))
			rc = knytt__err(KNYTT_ECORRUPT,
					"embedding blob of %zu bytes for dim "
					"%d",
					n, dim);
		else if ((uint32_t)dim <= cap)
			memcpy(out, b, n);
	}
	O->reset(q);
	if (rc == 0 && !row)
		return knytt__err(KNYTT_ENOTFOUND,
				  "no embedding of %llu in version '%.100s'",
				  (unsigned long long)id, version);
	return rc ? rc : dim;
}

/* One page of embeddings read into @p pg (the vectors copied: the
 * callback may use the store).  Keyset: (updated, owner_id) for
 * Q_EMB_CHANGED, owner_id for Q_EMB_EACH. */
enum { EPAGE = 256 };
typedef struct emb_page {
	float *buf;
	size_t cap;
	uint64_t ids[EPAGE];
	uint32_t dims[EPAGE];
	size_t offs[EPAGE];
	int64_t upd[EPAGE];
	size_t n;
} emb_page;

static int emb_read(knytt_store *st, int qid, knytt_owner owner,
		    const char *version, int64_t k_upd, int64_t k_id,
		    emb_page *pg)
{
	knytt__stmt *q = knytt__st_q(st, qid);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	int changed = qid == Q_EMB_CHANGED, rc;
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, owner);
	O->bind_text(q, 3, version);
	if (changed)
		O->bind_i64(q, 4, k_upd);
	O->bind_i64(q, 4 + changed, k_id);
	O->bind_i64(q, 5 + changed, EPAGE);
	size_t used = 0;
	pg->n = 0;
	while ((rc = O->step(q)) == 1) {
		size_t bn = 0;
		const void *b = O->col_blob(q, 2, &bn);
		int64_t d = O->col_i64(q, 1);
		if (d <= 0 || bn != (size_t)d * sizeof(float)) {
			rc = knytt__err(KNYTT_ECORRUPT,
					"embedding blob of %zu bytes for dim "
					"%lld",
					bn, (long long)d);
			break;
		}
		if (used + (size_t)d > pg->cap) {
			size_t nc = (used + (size_t)d) * 2;
			float *nb = realloc(pg->buf, nc * sizeof *nb);
			if (!nb) {
				rc = knytt__err(KNYTT_ENOMEM, "out of memory");
				break;
			}
			pg->buf = nb;
			pg->cap = nc;
		}
		memcpy(pg->buf + used, b, bn);
		pg->ids[pg->n] = (uint64_t)O->col_i64(q, 0);
		pg->dims[pg->n] = (uint32_t)d;
		pg->offs[pg->n] = used;
		pg->upd[pg->n] = changed ? O->col_i64(q, 3) : 0;
		used += (size_t)d;
		pg->n++;
	}
	O->reset(q);
	return rc < 0 ? rc : KNYTT_OK;
}

/* Pages through the embeddings of @p owner and @p version (from
 * updated >= @p since for Q_EMB_CHANGED), calling @p fn or @p cfn. */
static int emb_scan(knytt_store *st, int qid, knytt_owner owner,
		    const char *version, int64_t since, knytt_embedding_fn fn,
		    knytt__emb_changed_fn cfn, void *ctx)
{
	int rc = knytt__st_need_tenant(st);
	if (rc || (rc = knytt__st_check_id("version", version)))
		return rc;
	if (!fn && !cfn)
		return knytt__err(KNYTT_EINVAL, "callback is NULL");
	emb_page *pg = calloc(1, sizeof *pg);
	if (!pg)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	int64_t k_upd = since, k_id = -1;
	long long visited = 0;
	while ((rc = emb_read(st, qid, owner, version, k_upd, k_id, pg)) ==
	       KNYTT_OK) {
		int stop = 0;
		for (size_t i = 0; i < pg->n && !stop; i++) {
			const float *v = pg->buf + pg->offs[i];
			visited++;
			stop = (fn ? fn(pg->ids[i], v, pg->dims[i], ctx)
				   : cfn(pg->ids[i], v, pg->dims[i],
					 pg->upd[i], ctx)) != 0;
		}
		if (stop) {
			rc = knytt__err(KNYTT_ECANCELED,
					"the callback stopped the scan");
			break;
		}
		if (pg->n < EPAGE)
			break;
		k_upd = pg->upd[pg->n - 1];
		k_id = (int64_t)pg->ids[pg->n - 1];
	}
	free(pg->buf);
	free(pg);
	if (rc < 0)
		return rc;
	return visited > INT_MAX ? INT_MAX : (int)visited;
}

int knytt_store_embeddings_each(knytt_store *st, knytt_owner owner,
				const char *version, knytt_embedding_fn fn,
				void *ctx)
{
	if (!fn)
		return knytt__err(KNYTT_EINVAL, "callback is NULL");
	return emb_scan(st, Q_EMB_EACH, owner, version, 0, fn, NULL, ctx);
}

int knytt__embeddings_changed(knytt_store *st, knytt_owner owner,
			      const char *version, int64_t since_ms,
			      knytt__emb_changed_fn fn, void *ctx)
{
	if (!fn)
		return knytt__err(KNYTT_EINVAL, "callback is NULL");
	/* (updated, id) > (since - 1, -1): updated >= since, so rows written
	 * later in the millisecond of the last look are not missed */
	return emb_scan(st, Q_EMB_CHANGED, owner, version, since_ms - 1, NULL,
			fn, ctx);
}

int knytt_store_model_put(knytt_store *st, const char *name,
			  const void *blob, size_t size, const char *metadata,
			  int64_t *version)
{
	int rc = knytt__st_need_tenant(st);
	if (rc || (rc = knytt__st_check_id("name", name)) ||
	    (rc = knytt__check_json_obj("metadata", metadata)))
		return rc;
	if (!blob && size)
		return knytt__err(KNYTT_EINVAL, "blob is NULL");
	if (size > (size_t)1 << 30)
		return knytt__err(KNYTT_EINVAL,
				  "model blob of %zu bytes is over 1 GiB",
				  size);
	/* inside a caller's transaction (the engine stores a model version
	 * with its embeddings as one), the version is the caller's to
	 * commit or roll back */
	int own = !st->in_txn;
	if (own && (rc = knytt__st_begin(st)))
		return rc;
	knytt__stmt *q = knytt__st_q(st, Q_MODEL_MAX);
	int64_t v = 0;
	int row = 0;
	if (!q) {
		rc = knytt__err_keep(KNYTT_EDB);
	} else {
		O->bind_i64(q, 1, (int64_t)st->tenant);
		O->bind_text(q, 2, name);
		rc = knytt__st_step_one(st, q, &row);
		if (rc == 0 && row && !O->col_null(q, 0))
			v = O->col_i64(q, 0);
		O->reset(q);
	}
	v++;
	if (rc == 0 && !(q = knytt__st_q(st, Q_MODEL_INS)))
		rc = knytt__err_keep(KNYTT_EDB);
	if (rc == 0) {
		O->bind_i64(q, 1, (int64_t)st->tenant);
		O->bind_text(q, 2, name);
		O->bind_i64(q, 3, v);
		O->bind_blob(q, 4, blob, size);
		O->bind_text(q, 5, metadata);
		O->bind_i64(q, 6, knytt__now_ms());
		rc = knytt__st_step_one(st, q, &row);
		O->reset(q);
	}
	if (rc) {
		if (own)
			knytt__st_rollback(st);
		return rc;
	}
	if (own && (rc = knytt__st_commit(st)))
		return rc;
	if (version)
		*version = v;
	return 0;
}

int knytt_store_model_get(knytt_store *st, const char *name,
			  int64_t version, void **blob, size_t *size,
			  char **metadata, int64_t *version_out,
			  int64_t *created_ms)
{
	int rc = knytt__st_need_tenant(st);
	if (rc || (rc = knytt__st_check_id("name", name)))
		return rc;
	if (version < 0)
		return knytt__err(KNYTT_EINVAL, "version must be >= 0");
	if (blob)
		*blob = NULL;
	if (metadata)
		*metadata = NULL;
	/* Without @p blob the row is read without the blob's bytes.  A
	 * stored model is megabytes (3 MB for the soak's shop) and the
	 * callers that want its version, size or metadata alone run often:
	 * knyttd's /metrics on every scrape, the serving-version walk at
	 * every engine open.  Selecting the blob made SQLite copy it into a
	 * buffer of its own each time, and those multi-megabyte blocks, come
	 * and gone between the profiles' long-lived ones, were a step of
	 * kept-free heap in the soak (benchmarks/soak) each time one found
	 * no hole big enough. */
	knytt__stmt *q = knytt__st_q(st, blob ? (version ? Q_MODEL_GET
							: Q_MODEL_LATEST)
					      : (version ? Q_MODEL_HEAD
							 : Q_MODEL_HEAD_LATEST));
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, name);
	if (version)
		O->bind_i64(q, 3, version);
	int row = 0;
	rc = knytt__st_step_one(st, q, &row);
	if (rc == 0 && row) {
		size_t n = 0;
		const void *b = NULL;
		if (blob)
			b = O->col_blob(q, 1, &n);
		else
			n = (size_t)O->col_i64(q, 1);
		if (version_out)
			*version_out = O->col_i64(q, 0);
		if (created_ms)
			*created_ms = O->col_i64(q, 3);
		if (size)
			*size = n;
		if (blob) {
			*blob = malloc(n ? n : 1);
			if (!*blob)
				rc = knytt__err(KNYTT_ENOMEM, "out of memory");
			else if (n)
				memcpy(*blob, b, n);
		}
		const char *m = O->col_text(q, 2);
		if (rc == 0 && metadata && m && !(*metadata = knytt__st_dupstr(m)))
			rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		if (rc && blob) {
			free(*blob);
			*blob = NULL;
		}
	}
	O->reset(q);
	if (rc == 0 && !row)
		return knytt__err(KNYTT_ENOTFOUND, "no model '%.200s'%s", name,
				  version ? " of that version" : "");
	return rc;
}
