/*
 * train.c -- the training job and the atomic swap of a new model and
 * index (the "engine-model" blob's codec is modelblob.c).
 *
 * The job runs on its own store connection and builds everything new
 * (matrix, model, index) without holding the engine lock; only the final
 * swap takes the write lock, for as long as it takes to move pointers and
 * re-mark the item table.  Queries keep being answered by the old model
 * until then.
 *
 * A new model version is stored in one transaction: the blob, the item
 * embeddings and the index file (written first under a temporary name,
 * renamed to its version's name inside the transaction), so a failure
 * at any point -- a full disk included -- leaves the previous version
 * the latest one, whole.  Then versions beyond the newest keep_models
 * are deleted with their embeddings and index files.
 *
 * Search words are learned in the same job (qlearn.c): the search log is
 * read before the interactions stream, each interaction is offered to
 * the search before it, and the words are fitted on the new index's item
 * vectors and stored in the same blob, so a model and the words that
 * point into its item space always travel together.
 */
#include "engine_int.h"
#include "qlearn.h"
#include "seqmodel.h"

#include "../model/tune.h"
#include "../vec/vec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ job */

typedef struct job {
	knytt_engine *e;
	knytt_store *st;
	knytt__lmap users, items; /* store id -> dense index */
	uint32_t nusers, nitems;
	uint64_t *item_ids; /* dense -> store id */
	size_t cap_items;
	/* two-tower inputs */
	knytt_twotower_item *feat;
	char **strings; /* owned copies behind feat */
	uint32_t *u, *it;
	float *w;
	int64_t *ts;
	size_t n, cap;
	knytt_matrix *m;
	knytt__qlearn ql; /* search words (qlearn.c) */
	int rc;
} job;

static int dense_item(job *j, uint64_t id, uint32_t *out)
{
	uint32_t x = knytt__lmap_get(&j->items, id);
	if (x != LMAP_EMPTY) {
		*out = x;
		return KNYTT_OK;
	}
	if (j->nitems == j->cap_items) {
		size_t nc = j->cap_items ? j->cap_items * 2 : 1024;
		uint64_t *n = realloc(j->item_ids, nc * sizeof *n);
		if (!n)
			return KNYTT_ENOMEM;
		j->item_ids = n;
		j->cap_items = nc;
	}
	if (knytt__lmap_put(&j->items, id, j->nitems))
		return KNYTT_ENOMEM;
	j->item_ids[j->nitems] = id;
	*out = j->nitems++;
	return KNYTT_OK;
}

static char *dup_or_empty(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s ? s : "", n);
		d[n] = '\0';
	}
	return d;
}

static int feat_cb(const knytt_item *it, void *ctx)
{
	job *j = ctx;
	if (it->deleted)
		return 0;
	uint32_t x;
	if (dense_item(j, it->id, &x))
		return 1;
	/* feature records grow with item_ids */
	knytt_twotower_item *f = realloc(j->feat, j->cap_items * sizeof *f);
	char **s = realloc(j->strings, j->cap_items * 3 * sizeof *s);
	if (f)
		j->feat = f;
	if (s)
		j->strings = s;
	if (!f || !s)
		return 1;
	char *t = dup_or_empty(it->title), *d = dup_or_empty(it->description),
	     *c = dup_or_empty(it->category);
	j->strings[3 * x] = t;
	j->strings[3 * x + 1] = d;
	j->strings[3 * x + 2] = c;
	if (!t || !d || !c)
		return 1;
	j->feat[x].title = t;
	j->feat[x].description = d;
	j->feat[x].category = c;
	j->feat[x].price = it->price;
	return 0;
}

static int ix_cb(const knytt_interaction *ix, void *ctx)
{
	job *j = ctx;
	if (knytt__qlearn_event(&j->ql, ix, knytt__ix_confidence(j->e, ix)))
		return 1;
	uint32_t ui = knytt__lmap_get(&j->users, ix->user_id), ii;
	if (ui == LMAP_EMPTY) {
		if (knytt__lmap_put(&j->users, ix->user_id, j->nusers))
			return 1;
		ui = j->nusers++;
	}
	if (j->feat) {
		/* two-tower: only items that exist (and are live) */
		ii = knytt__lmap_get(&j->items, ix->item_id);
		if (ii == LMAP_EMPTY)
			return 0;
	} else if (dense_item(j, ix->item_id, &ii)) {
		return 1;
	}
	double w = knytt__ix_confidence(j->e, ix);
	if (!(w > 0))
		return 0;
	if (j->m)
		return knytt_matrix_add(j->m, ui, ii, 0, (float)w, ix->ts_ms)
			       ? 1
			       : 0;
	if (j->n == j->cap) {
		size_t nc = j->cap ? j->cap * 2 : 65536;
		uint32_t *u = realloc(j->u, nc * sizeof *u);
		if (u)
			j->u = u;
		uint32_t *it = realloc(j->it, nc * sizeof *it);
		if (it)
			j->it = it;
		float *w2 = realloc(j->w, nc * sizeof *w2);
		if (w2)
			j->w = w2;
		int64_t *ts = realloc(j->ts, nc * sizeof *ts);
		if (ts)
			j->ts = ts;
		if (!u || !it || !w2 || !ts)
			return 1;
		j->cap = nc;
	}
	j->u[j->n] = ui;
	j->it[j->n] = ii;
	j->w[j->n] = (float)w;
	j->ts[j->n] = ix->ts_ms;
	j->n++;
	return 0;
}

static int progress_cb(void *ctx, const knytt_progress *p)
{
	knytt_engine *e = ctx;
	pthread_mutex_lock(&e->train_mu);
	e->train_progress = *p;
	knytt_progress_fn fn = e->train_fn;
	void *uctx = e->train_ctx;
	pthread_mutex_unlock(&e->train_mu);
	return fn ? fn(uctx, p) : 0;
}

static void job_free(job *j)
{
	knytt__lmap_free(&j->users);
	knytt__lmap_free(&j->items);
	free(j->item_ids);
	if (j->strings)
		for (uint32_t i = 0; i < 3 * j->nitems; i++)
			free(j->strings[i]);
	free(j->strings);
	free(j->feat);
	free(j->u);
	free(j->it);
	free(j->w);
	free(j->ts);
	knytt_matrix_close(j->m);
	knytt__qlearn_free(&j->ql);
	knytt_store_close(j->st);
}

/* The index of a new model: every non-zero model vector. */
int knytt__engine_build_index(knytt_engine *e, knytt_als *als,
			      knytt_twotower *tt, knytt_lightgcn *lgc,
			      const uint64_t *ids, uint32_t n,
			      knytt_index **out)
{
	knytt_index *ix;
	int rc = knytt__engine_new_index(e, &ix);
	if (rc)
		return rc;
	float *v = malloc(((size_t)n ? n : 1) * e->dim * sizeof *v);
	uint64_t *lab = malloc(((size_t)n ? n : 1) * sizeof *lab);
	if (!v || !lab) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		goto out;
	}
	if (n) {
		rc = als   ? knytt_als_item_factors(als, 0, n, v)
		     : lgc ? knytt_lightgcn_item_factors(lgc, 0, n, v)
			   : knytt_twotower_item_embeddings(tt, v,
							    (size_t)n * e->dim);
		if (rc < 0)
			goto out;
	}
	size_t m = 0;
	const knytt__vec_ops *ops = knytt__vec();
	for (uint32_t i = 0; i < n; i++) {
		float *x = v + (size_t)i * e->dim;
		if (!(ops->dot(x, x, e->dim) > 0))
			continue;
		memmove(v + m * e->dim, x, e->dim * sizeof *v);
		lab[m++] = ids[i];
	}
	rc = knytt_index_add_batch(ix, m, lab, v, e->dim, e->threads);
out:
	free(v);
	free(lab);
	if (rc) {
		knytt_index_close(ix);
		return rc;
	}
	*out = ix;
	return KNYTT_OK;
}

/* ---------------------------------------------------------------- gate */

/* The evaluation and swap gate of one training (holdout.c). */
typedef struct gate_t {
	unsigned users;   /* test users wanted; 0 = no evaluation */
	double margin;    /* < 0: swap in whatever the metric */
	knytt_train_eval serving, ev;
	knytt__holdout ho;
} gate_t;

static void gate_begin(knytt_engine *e, gate_t *g)
{
	memset(g, 0, sizeof *g);
	pthread_mutex_lock(&e->train_mu);
	g->users = e->eval_users;
	g->margin = e->eval_margin;
	g->serving = e->serving_eval;
	pthread_mutex_unlock(&e->train_mu);
	g->ev.struct_size = sizeof g->ev;
	g->ev.promoted = 1;
}

/* Holds the test events out of the job's arrays (kept in order); the
 * model trains on what is left (fit_model builds the matrix from it). */
static int hold_out(job *j, gate_t *g)
{
	int rc = knytt__holdout_make(j->u, j->it, j->ts, j->n, j->nusers,
				     j->nitems, g->users, &g->ho);
	if (rc)
		return rc;
	size_t m = 0;
	for (size_t i = 0; i < j->n; i++) {
		if (g->ho.drop[i])
			continue;
		j->u[m] = j->u[i];
		j->it[m] = j->it[i];
		j->w[m] = j->w[i];
		j->ts[m] = j->ts[i];
		m++;
	}
	j->n = m;
	return KNYTT_OK;
}

/* Evaluates the trained model and decides whether it serves. */
static int gate_judge(knytt_engine *e, job *j, knytt_als *als,
		      knytt_twotower *tt, knytt_lightgcn *lgc, gate_t *g)
{
	if (!g->users || !g->ho.ncases || (!als && !tt && !lgc))
		return KNYTT_OK;
	knytt_metrics m;
	int rc = knytt__holdout_eval(&g->ho, als, tt, lgc, e->dim, j->u,
				     j->it, j->w, j->n, j->nusers, j->nitems,
				     &m);
	if (rc)
		return rc;
	g->ev.users = m.users;
	g->ev.negatives = knytt_loo_negatives(g->ho.test);
	g->ev.hr = m.hr;
	g->ev.ndcg = m.ndcg;
	if (g->serving.version > 0 && g->serving.users > 0) {
		g->ev.compared_version = g->serving.version;
		g->ev.compared_ndcg = g->serving.ndcg;
		if (g->margin >= 0 && m.ndcg < g->serving.ndcg - g->margin)
			g->ev.promoted = 0;
	}
	return KNYTT_OK;
}

/* The rest of the metadata JSON (the object is closed here). */
static void gate_meta(const gate_t *g, char *out, size_t cap)
{
	if (!g->ev.users) {
		snprintf(out, cap, ",\"promoted\":true}");
		return;
	}
	snprintf(out, cap,
		 ",\"eval\":{\"protocol\":\"leave-last-out\",\"test_users\":%zu,"
		 "\"negatives\":%zu,\"hr10\":%.6f,\"ndcg10\":%.6f,"
		 "\"compared_version\":%lld,\"compared_ndcg10\":%.6f},"
		 "\"promoted\":%s}",
		 g->ev.users, g->ev.negatives, g->ev.hr, g->ev.ndcg,
		 (long long)g->ev.compared_version, g->ev.compared_ndcg,
		 g->ev.promoted ? "true" : "false");
}

/* knytt__version_prune deletes versions below (its argument - keep + 1):
 * a held-back model must not push the serving one out. */
static int64_t gate_prune_from(knytt_engine *e, const gate_t *g,
			       int64_t version)
{
	if (g->ev.promoted)
		return version;
	pthread_rwlock_rdlock(&e->lock);
	int64_t serving = e->snap->version;
	pthread_rwlock_unlock(&e->lock);
	int64_t cap = serving + (int64_t)e->keep_models - 1;
	return serving > 0 && cap < version ? cap : version;
}

static void gate_end(knytt_engine *e, gate_t *g, int64_t version)
{
	g->ev.version = version;
	pthread_mutex_lock(&e->train_mu);
	e->last_eval = g->ev;
	if (g->ev.promoted)
		e->serving_eval = g->ev;
	pthread_mutex_unlock(&e->train_mu);
}

/* The settings as given (knytt_engine_set_tune(e, 0), or data too small
 * to tune on): the engine's ALS settings, or LightGCN's defaults at the
 * engine's dimension. */
static knytt__tune_cfg fixed_cfg(const knytt_engine *e)
{
	if (e->kind == KNYTT_MODEL_LIGHTGCN)
		return (knytt__tune_cfg){.kind = KNYTT_MODEL_LIGHTGCN,
					 .dim = e->dim,
					 .layers = 3,
					 .reg = 1e-4f,
					 .lr = 0.005f,
					 .batch = 8192,
					 .iters = 30};
	return (knytt__tune_cfg){.kind = KNYTT_MODEL_ALS,
				 .dim = e->dim,
				 .reg = e->als_reg,
				 .alpha = e->als_alpha,
				 .iters = e->als_iters,
				 .hist_days = e->hist_half_life_days};
}

/*
 * ALS and LightGCN: tuning (tunejob.c) on the interactions the job
 * collected, unless it is off, then the chosen model on all of them.
 * When the data is too small or too short in time to carve a
 * validation period from, the fixed settings train and the report says
 * why.  The report (JSON) goes to @p tune ("" without tuning), the
 * tuner's output to *res (seq_ok 0 without tuning).  @p sq: the SASRec
 * session model's sequences (NULL: none), whose weight the tuning
 * chooses.
 */
static int fit_model(job *j, knytt__seqjob *sq, knytt__tune_out *res,
		     char *tune, size_t cap, knytt_als **als,
		     knytt_lightgcn **lgc)
{
	knytt_engine *e = j->e;
	knytt__tune_cfg c = fixed_cfg(e);
	knytt__tune_seq hooks;
	int rc = KNYTT_OK;
	if (sq)
		knytt__seq_tune(sq, &hooks);
	if (e->tune)
		rc = knytt__engine_tune(e, &c, j->u, j->it, j->w, j->ts, j->n,
					j->nusers, j->nitems,
					sq ? &hooks : NULL, res, tune, cap);
	if (rc == KNYTT_EINVAL) {
		char msg[512];
		snprintf(msg, sizeof msg, "%s", knytt_errmsg());
		for (char *p = msg; *p; p++)
			if (*p == '"' || *p == '\\')
				*p = '\'';
		snprintf(tune, cap, "{\"skipped\":\"%s\"}", msg);
		c = fixed_cfg(e);
	} else if (rc) {
		return rc;
	}
	if ((rc = knytt_matrix_create(&j->m)))
		return rc;
	knytt_matrix_set_weight(j->m, 0, 1.0f);
	if (c.hist_days > 0)
		knytt_matrix_set_decay(j->m, c.hist_days * 864e5,
				       knytt__engine_now(e));
	for (size_t x = 0; x < j->n && !rc; x++)
		rc = knytt_matrix_add(j->m, j->u[x], j->it[x], 0, j->w[x],
				      j->ts[x]);
	if (!rc)
		rc = knytt_matrix_build(j->m, j->nusers, j->nitems);
	if (!rc)
		rc = knytt__tune_fit(&c, j->m, e->threads, progress_cb, e, als,
				     lgc);
	return rc;
}

/*
 * The SASRec session model (seqmodel.c) on every event, and its weight:
 * the one the tuning chose on the validation period (res->seq_ok), else
 * the fixed one (knytt_engine_set_sasrec_weight), else the default.  A
 * model whose weight is 0 is not kept: it would never be read.  The
 * report (JSON) goes to @p json.
 */
static int fit_session(knytt_engine *e, knytt__seqjob *sq,
		       const knytt__tune_out *res, knytt_sasrec **sr,
		       char *json, size_t cap)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	double w = e->sasrec_w >= 0	? e->sasrec_w
		   : res->seq_ok	? res->seq_w
					: KNYTT_ENGINE_DEFAULT_SASREC_WEIGHT;
	int rc = w > 0 ? knytt__seq_train(sq, progress_cb, e, sr) : KNYTT_OK;
	if (rc)
		return rc;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) +
		      (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;
	char val[KNYTT__TUNE_NSEQ * 24] = "";
	size_t l = 0;
	for (int i = 0; res->seq_ok && i < KNYTT__TUNE_NSEQ; i++)
		l += (size_t)snprintf(val + l, sizeof val - l, "%s[%g,%.4f]",
				      i ? "," : "", knytt__tune_seq_w[i],
				      res->seq_ndcg[i]);
	snprintf(json, cap,
		 "{\"weight\":%g,\"chosen\":\"%s\",\"epochs\":%u,"
		 "\"max_epochs\":%u,\"early_stop_ndcg10\":%.4f,"
		 "\"validation_ndcg20\":[%s],\"validation_seconds\":%.3f,"
		 "\"train_seconds\":%.3f}",
		 w,
		 e->sasrec_w >= 0 ? "fixed"
		 : res->seq_ok	  ? "validation"
				  : "default",
		 *sr ? sq->trained_epochs : 0, e->sasrec_epochs, sq->val_ndcg10,
		 val, res->seq_seconds, secs);
	return KNYTT_OK;
}

int knytt__engine_train_job(knytt_engine *e)
{
	if (e->kind == KNYTT_MODEL_EXTERNAL)
		return knytt__err(KNYTT_ENOTSUP,
				  "the engine uses external vectors "
				  "(KNYTT_MODEL_EXTERNAL): there is no model "
				  "to train");
	job j;
	memset(&j, 0, sizeof j);
	j.e = e;
	knytt__seqjob sq; /* the SASRec session model's sequences */
	memset(&sq, 0, sizeof sq);
	gate_t gate;
	gate_begin(e, &gate);
	int rc = knytt_store_open(e->uri, &j.st);
	uint64_t tenant = 0;
	if (!rc)
		rc = knytt_store_tenant_find(j.st, e->tenant_name, &tenant);
	if (!rc)
		rc = knytt_store_use_tenant(j.st, tenant);
	if (rc)
		goto out;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	knytt_als *als = NULL;
	knytt_twotower *tt = NULL;
	knytt_lightgcn *lgc = NULL;
	knytt__qterms *qm = NULL;
	knytt_sasrec *sr = NULL;
	if ((rc = knytt__qlearn_load(&j.ql, e, j.st)))
		goto out;
	/* ALS and LightGCN keep the interactions as arrays: the matrix
	 * follows from the tuning's choice (fit_model) */
	if (e->kind == KNYTT_MODEL_TWOTOWER) {
		/* every live item has features, interactions or not */
		rc = knytt_store_items_changed(j.st, 0, feat_cb, &j);
		if (rc < 0)
			goto out;
	}
	/* the mark before the read: what is stored after it is new to this
	 * model (knyttd's schedule counts it, knytt_store_interaction_mark) */
	int64_t mark = 0;
	if ((rc = knytt_store_interaction_mark(j.st, &mark)))
		goto out;
	rc = knytt_store_interactions_since(j.st, 0, ix_cb, &j);
	if (rc < 0)
		goto out;
	if (j.nusers == 0 || j.nitems == 0) {
		rc = knytt__err(KNYTT_ESTATE,
				"nothing to train on: %u users and %u items "
				"with interactions",
				j.nusers, j.nitems);
		goto out;
	}
	if (gate.users && (rc = hold_out(&j, &gate)))
		goto out;
	char tune[1536] = "", sjson[512] = "";
	knytt__tune_out tres;
	memset(&tres, 0, sizeof tres);
	if (e->sasrec_epochs &&
	    (rc = knytt__seq_init(&sq, e, j.u, j.it, j.ts, j.n, j.nusers,
				  j.nitems)))
		goto fail_model;
	if (e->kind != KNYTT_MODEL_TWOTOWER) {
		if ((rc = fit_model(&j, e->sasrec_epochs ? &sq : NULL, &tres,
				    tune, sizeof tune, &als, &lgc)))
			goto fail_model;
	} else {
		if ((rc = knytt_twotower_create(&tt)) ||
		    (rc = knytt_twotower_set_dim(tt, e->dim)) ||
		    (rc = knytt_twotower_set_epochs(tt, e->tt_epochs)) ||
		    /* 2^16 feature buckets: a catalog's vocabulary fits, and
		     * the model stays 16 MB at dim 64 instead of 67 */
		    (rc = knytt_twotower_set_buckets(tt, 1u << 16)) ||
		    (rc = knytt_twotower_set_threads(tt, e->threads)) ||
		    (rc = knytt_twotower_set_progress(tt, progress_cb, e)) ||
		    (rc = knytt_twotower_train(tt, j.nusers, j.nitems, j.feat,
					       j.n, j.u, j.it, j.w, j.ts)))
			goto fail_model;
	}
	/* the model's last loss, before the session model's epochs report
	 * theirs */
	pthread_mutex_lock(&e->train_mu);
	double loss = e->train_progress.loss;
	pthread_mutex_unlock(&e->train_mu);
	if (e->sasrec_epochs &&
	    (rc = fit_session(e, &sq, &tres, &sr, sjson, sizeof sjson)))
		goto fail_model;
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) +
		      (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9;

	knytt_index *ix = NULL;
	void *blob = NULL;
	size_t size = 0;
	int64_t version = 0;
	unsigned char tag[KNYTT__MODEL_TAG];
	char words[512];
	if ((rc = knytt__engine_build_index(e, als, tt, lgc, j.item_ids,
					     j.nitems, &ix)) ||
	    (rc = knytt__qlearn_fit(&j.ql, e->dim, ix, &qm, words,
				    sizeof words)) ||
	    (rc = knytt__random(tag, sizeof tag)) ||
	    (rc = knytt__engine_encode_model(e, als, tt, lgc, qm, sr,
					     j.item_ids, j.nitems, tag, &blob,
					     &size)))
		goto fail_index;
	/* a shop without a search log is normal, not a warning: the skip
	 * and its reason go to the metadata ("search") only */
	char meta[3072];
	int k = snprintf(meta, sizeof meta,
			 "{\"kind\":\"%s\",\"dim\":%u,\"users\":%u,"
			 "\"items\":%u,\"interactions\":%zu,\"loss\":%.6g,"
			 "\"train_seconds\":%.3f,\"interaction_mark\":%lld,"
			 "\"search\":%s%s%s%s%s",
			 als ? "als" : lgc ? "lightgcn" : "twotower", e->dim,
			 j.nusers, j.nitems, j.m ? knytt_matrix_nnz(j.m) : j.n,
			 isfinite(loss) ? loss : 0, secs, (long long)mark,
			 words,
			 *tune ? ",\"tune\":" : "", tune,
			 *sjson ? ",\"sasrec\":" : "", sjson);
	if (k < 0 || (size_t)k >= sizeof meta - 256) {
		rc = knytt__err(KNYTT_EINVAL, "model metadata too long");
		goto fail_index;
	}
	if ((rc = gate_judge(e, &j, als, tt, lgc, &gate)))
		goto fail_index;
	gate_meta(&gate, meta + k, sizeof meta - (size_t)k);
	rc = knytt__version_commit(e, j.st, ix, tag, blob, size, meta,
				   j.item_ids, j.nitems, &version);
	free(blob);
	if (rc)
		goto fail_index;
	/* the new version is whole and stored: older ones beyond
	 * keep_models go (a failure here leaves extra files, no harm),
	 * never the one serving */
	knytt__version_prune(e, j.st, gate_prune_from(e, &gate, version));
	gate_end(e, &gate, version);
	if (!gate.ev.promoted) {
		knytt_index_close(ix);
		knytt_als_close(als);
		knytt_twotower_close(tt);
		knytt_lightgcn_close(lgc);
		knytt__qterms_free(qm);
		knytt_sasrec_close(sr);
		knytt__engine_warn(e,
				   "model version %lld held back: NDCG@10 "
				   "%.4f, the serving version %lld had %.4f",
				   (long long)version, gate.ev.ndcg,
				   (long long)gate.ev.compared_version,
				   gate.ev.compared_ndcg);
		rc = KNYTT_OK;
		goto out;
	}
	uint64_t *ids = j.item_ids;
	j.item_ids = NULL;
	knytt__engine_install(e, ix, als, tt, lgc, qm, sr, ids, j.nitems,
			      version, tag, meta);
	rc = KNYTT_OK;
	goto out;
fail_index:
	knytt_index_close(ix);
	knytt__qterms_free(qm);
fail_model:
	knytt_als_close(als);
	knytt_twotower_close(tt);
	knytt_lightgcn_close(lgc);
	knytt_sasrec_close(sr);
out:
	knytt__seq_free(&sq);
	knytt__holdout_free(&gate.ho);
	job_free(&j);
	return rc;
}

void knytt__engine_install(knytt_engine *e, knytt_index *ix, knytt_als *als,
			   knytt_twotower *tt, knytt_lightgcn *lgc,
			   knytt__qterms *qm, knytt_sasrec *sr,
			   uint64_t *items,
			   uint32_t nitems, int64_t version,
			   const unsigned char tag[KNYTT__MODEL_TAG],
			   const char *meta)
{
	knytt__snap *s = knytt__snap_new(ix, als, tt, lgc, items, nitems,
					 version, tag, 0);
	if (!s) {
		knytt__qterms_free(qm);
		knytt_sasrec_close(sr);
		return; /* all freed; the current snapshot keeps serving */
	}
	s->qm = qm;
	s->sr = sr;
	knytt__snap_blend_from_meta(s, meta);
	float *v = malloc(e->dim * sizeof *v);
	pthread_rwlock_wrlock(&e->lock);
	knytt_index *old = e->snap->ix;
	for (size_t r = 0; r < e->nitems; r++) {
		eitem *it = &e->items[r];
		it->midx = UINT32_MAX;
		if (it->deleted) {
			if (knytt_index_contains(ix, it->id))
				knytt_index_remove(ix, it->id);
			continue;
		}
		/* items outside the model keep the vectors callers gave */
		if (it->caller_vec && v && !knytt_index_contains(ix, it->id) &&
		    knytt_index_get(old, it->id, v, e->dim) == KNYTT_OK)
			knytt_index_upsert(ix, it->id, v, e->dim);
	}
	for (uint32_t i = 0; i < nitems; i++) {
		uint32_t r = knytt__engine_row(e, items[i]);
		if (r != UINT32_MAX)
			e->items[r].midx = i;
	}
	for (size_t r = 0; r < e->nitems; r++)
		e->items[r].has_vec = !e->items[r].deleted &&
				      knytt_index_contains(ix, e->items[r].id);
	/* publish: readers that took the old snapshot keep it until they
	 * put it back; the last one frees it, outside every lock */
	knytt__snap *prev = e->snap;
	s->gen = prev->gen + 1; /* profiles see a new model */
	e->snap = s;
	knytt__rowvec_fill(e);
	pthread_rwlock_unlock(&e->lock);
	free(v);
	knytt__snap_put(prev);
}

/* ------------------------------------------------------------- public */

int knytt_engine_train(knytt_engine *e, knytt_progress_fn fn, void *ctx)
{
	int rc = knytt_engine_train_start(e, fn, ctx);
	if (rc)
		return rc;
	return knytt_engine_train_wait(e);
}

static void *train_main(void *p)
{
	knytt_engine *e = p;
	int rc = knytt__engine_train_job(e);
	char msg[512];
	snprintf(msg, sizeof msg, "%s", knytt_errmsg());
	pthread_mutex_lock(&e->train_mu);
	e->train_rc = rc;
	e->train_running = 0;
	pthread_mutex_unlock(&e->train_mu);
	/* the message travels with the result: the waiter re-raises it */
	char *m = malloc(strlen(msg) + 1);
	if (m)
		strcpy(m, msg);
	return m;
}

int knytt_engine_train_start(knytt_engine *e, knytt_progress_fn fn,
			     void *ctx)
{
	if (!e)
		return knytt__err(KNYTT_EINVAL, "engine is NULL");
	if (!e->is_open)
		return knytt__err(KNYTT_ESTATE, "engine is not open");
	/* the job reads interactions from the store: acknowledged feedback
	 * still queued belongs in the model */
	knytt__fq_wait(e);
	pthread_mutex_lock(&e->train_mu);
	if (e->train_running || e->train_joinable) {
		pthread_mutex_unlock(&e->train_mu);
		return knytt__err(KNYTT_EBUSY,
				  "a training job is already running (or "
				  "not yet waited for)");
	}
	e->train_running = 1;
	e->train_joinable = 1;
	e->train_fn = fn;
	e->train_ctx = ctx;
	memset(&e->train_progress, 0, sizeof e->train_progress);
	pthread_mutex_unlock(&e->train_mu);
	if (pthread_create(&e->train_thread, NULL, train_main, e) != 0) {
		pthread_mutex_lock(&e->train_mu);
		e->train_running = 0;
		e->train_joinable = 0;
		pthread_mutex_unlock(&e->train_mu);
		return knytt__err(KNYTT_ENOMEM, "cannot start a thread");
	}
	return KNYTT_OK;
}

int knytt_engine_train_wait(knytt_engine *e)
{
	if (!e)
		return knytt__err(KNYTT_EINVAL, "engine is NULL");
	pthread_mutex_lock(&e->train_mu);
	int joinable = e->train_joinable;
	pthread_mutex_unlock(&e->train_mu);
	if (!joinable)
		return knytt__err(KNYTT_ESTATE, "no training job to wait for");
	void *msg = NULL;
	pthread_join(e->train_thread, &msg);
	pthread_mutex_lock(&e->train_mu);
	e->train_joinable = 0;
	int rc = e->train_rc;
	pthread_mutex_unlock(&e->train_mu);
	if (rc && msg)
		knytt__err(rc, "%s", (char *)msg);
	free(msg);
	return rc;
}

/* Fills this version's struct, then hands the caller the bytes its
 * struct_size holds (an older caller's struct is shorter). */
int knytt_engine_train_status(knytt_engine *e, knytt_train_status *out)
{
	if (!e || !out)
		return knytt__err_field(KNYTT_EINVAL, !e ? "e" : "out",
					"train_status: %s is NULL",
					!e ? "engine" : "out");
	if (!KNYTT__HAS(out, knytt_train_status, running))
		return knytt__err_field(
			KNYTT_EINVAL, "struct_size",
			"train_status: struct_size is %zu: set it to "
			"sizeof(knytt_train_status)",
			out->struct_size);
	knytt_train_status st = {.struct_size = sizeof st};
	pthread_mutex_lock(&e->train_mu);
	st.running = e->train_running;
	st.last_rc = e->train_rc;
	st.progress = e->train_progress;
	pthread_mutex_unlock(&e->train_mu);
	if (e->is_open) {
		pthread_rwlock_rdlock(&e->lock);
		st.model_version = e->snap->version;
		st.items_indexed = knytt_index_count(e->snap->ix);
		pthread_rwlock_unlock(&e->lock);
	}
	KNYTT__STRUCT_OUT(out, &st);
	return KNYTT_OK;
}
