/*
 * retention.c -- deleting old model versions: the blobs of a model name
 * below a version, and the embeddings that belonged to them; and
 * knytt_store_model_prune, for settings kept as model versions that must
 * not linger once replaced (a service's credentials).
 */
#include "store_int.h"

#define O (st->ops)

/* Runs one statement with (tenant, name or prefix, version) bound. */
static int run(knytt_store *st, const char *sql, const char *text,
	       const char *text2, int64_t v)
{
	knytt__stmt *q;
	if (O->prepare(st->db, sql, &q))
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, text);
	if (text2)
		O->bind_text(q, 3, text2);
	else
		O->bind_i64(q, 3, v);
	int rc = O->step(q);
	O->finalize(q);
	return rc < 0 ? rc : KNYTT_OK;
}

int knytt__model_prune(knytt_store *st, const char *name, int64_t below,
		       const char *emb_prefix)
{
	if (!st->tenant)
		return knytt__err(KNYTT_ESTATE, "no tenant selected");
	int rc = run(st,
		     "DELETE FROM models WHERE tenant = ?1 AND name = ?2 AND "
		     "version < ?3",
		     name, NULL, below);
	if (rc || !emb_prefix)
		return rc;
	/* the prefix is the engine's ("model-v"): no LIKE wildcard in it */
	return run(st,
		   "DELETE FROM embeddings WHERE tenant = ?1 AND owner = 1 "
		   "AND version LIKE CAST(?3 AS TEXT) || '%' AND version NOT "
		   "IN (SELECT CAST(?3 AS TEXT) || CAST(version AS TEXT) FROM "
		   "models WHERE tenant = ?1 AND name = ?2)",
		   name, emb_prefix, 0);
}

int knytt_store_model_prune(knytt_store *st, const char *name, int64_t below)
{
	int rc = knytt__st_need_tenant(st);
	if (rc || (rc = knytt__st_check_id("name", name)))
		return rc;
	if (below < 1)
		return knytt__err_field(KNYTT_EINVAL, "below",
					"below is %lld, not a version",
					(long long)below);
	knytt__stmt *q;
	if (O->prepare(st->db, "DELETE FROM models WHERE tenant = ?1 AND "
			       "name = ?2 AND version < ?3", &q))
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, name);
	O->bind_i64(q, 3, below);
	rc = O->step(q);
	int64_t n = rc >= 0 ? O->changes(q) : 0;
	O->finalize(q);
	return rc < 0 ? rc : (int)n;
}
