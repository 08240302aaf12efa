/*
 * reload.c -- serving a model version another process trained
 * (knytt_engine_reload): replicas on one PostgreSQL database train one at
 * a time per tenant, and the others load what the trainer stored.
 *
 * The version is read, decoded and its index loaded (or built) before
 * any engine lock is taken, then swapped in by knytt__engine_install as
 * after a local training.  A local training job and a reload do not run
 * together (the reload gives way: the job installs its own model, and
 * the next reload sees whether the store has a newer one), so an older
 * version never replaces a newer one.
 */
#include "engine_int.h"
#include "../model/qterms.h"

#include <stdlib.h>

/* Reads version @p v and builds what serving it needs; caller holds
 * st_lock (the index file's path comes from the store handle). */
static int prepare(knytt_engine *e, int64_t v, knytt_index **ix,
		   knytt_als **als, knytt_twotower **tt, knytt_lightgcn **lgc,
		   struct knytt__qterms **qm, knytt_sasrec **sr,
		   uint64_t **items, uint32_t *n,
		   unsigned char tag[KNYTT__MODEL_TAG], char **meta)
{
	void *blob = NULL;
	size_t size = 0;
	int64_t got = 0;
	int rc = knytt_store_model_get(e->st, "engine-model", v, &blob, &size,
				       meta, &got, NULL);
	if (rc == KNYTT_OK)
		rc = knytt__engine_decode_model(e, blob, size, als, tt, lgc,
						qm, sr, items, n, tag);
	knytt_free(blob);
	if (rc)
		return rc;
	*ix = knytt__version_index_load(e, v, tag);
	if (*ix)
		return KNYTT_OK;
	rc = knytt__engine_build_index(e, *als, *tt, *lgc, *items, *n, ix);
	if (rc == KNYTT_OK) {
		knytt__version_index_save(e, *ix, v, tag);
		return KNYTT_OK;
	}
	knytt_als_close(*als);
	knytt_twotower_close(*tt);
	knytt_lightgcn_close(*lgc);
	knytt__qterms_free(*qm);
	knytt_sasrec_close(*sr);
	free(*items);
	return rc;
}

static int local_training(knytt_engine *e)
{
	pthread_mutex_lock(&e->train_mu);
	int busy = e->train_running;
	pthread_mutex_unlock(&e->train_mu);
	return busy;
}

int knytt_engine_reload(knytt_engine *e)
{
	if (!e)
		return knytt__err(KNYTT_EINVAL, "knytt_engine_reload: engine "
						"is NULL");
	if (!e->is_open)
		return knytt__err(KNYTT_ESTATE, "knytt_engine_reload: engine "
						"is not open");
	if (e->kind == KNYTT_MODEL_EXTERNAL || local_training(e))
		return 0;
	int64_t want = 0;
	knytt_train_eval sev;
	pthread_mutex_lock(&e->st_lock);
	int rc = knytt__serving_version(e->st, &want, &sev);
	pthread_rwlock_rdlock(&e->lock);
	int64_t cur = e->snap->version;
	pthread_rwlock_unlock(&e->lock);
	knytt_index *ix = NULL;
	knytt_als *als = NULL;
	knytt_twotower *tt = NULL;
	knytt_lightgcn *lgc = NULL;
	struct knytt__qterms *qm = NULL;
	knytt_sasrec *sr = NULL;
	uint64_t *items = NULL;
	uint32_t n = 0;
	unsigned char tag[KNYTT__MODEL_TAG];
	char *meta = NULL;
	if (rc == KNYTT_OK && want > cur)
		rc = prepare(e, want, &ix, &als, &tt, &lgc, &qm, &sr, &items,
			     &n, tag, &meta);
	pthread_mutex_unlock(&e->st_lock);
	if (rc || want <= cur) {
		knytt_free(meta);
		return rc;
	}
	if (local_training(e)) { /* started meanwhile: it wins */
		knytt_index_close(ix);
		knytt_als_close(als);
		knytt_twotower_close(tt);
		knytt_lightgcn_close(lgc);
		knytt__qterms_free(qm);
		knytt_sasrec_close(sr);
		free(items);
		knytt_free(meta);
		return 0;
	}
	knytt__engine_install(e, ix, als, tt, lgc, qm, sr, items, n, want,
			      tag, meta);
	knytt_free(meta);
	pthread_mutex_lock(&e->train_mu);
	e->serving_eval = sev;
	pthread_mutex_unlock(&e->train_mu);
	return 1;
}
