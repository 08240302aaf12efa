/*
 * twotower.c -- the two-tower retrieval model: settings, towers, embedding
 * of new items, queries and users, and the model file.  Training with an
 * in-batch sampled softmax is in tt_train.c.
 *
 * Where this departs from the textbook model (Yi et al., "Sampling-bias-
 * corrected neural modeling for large corpus item recommendations",
 * RecSys 2019):
 *  - The towers are linear bags of embeddings followed by L2
 *    normalisation, no MLP.  Retrieval quality on catalog-sized data comes
 *    mostly from the id and feature embeddings; the normalisation makes
 *    the temperature the one knob of the logit scale.
 *  - q(item) is the exact frequency of the item among the training
 *    positives (known up front), not the streaming estimate of the paper.
 *  - Id dropout: each item in a batch loses its id embedding with
 *    probability id_dropout, so the feature path alone learns to place
 *    items well.  Without it the feature rows get little gradient once
 *    the id rows fit, and cold items land poorly.
 *  - Lazy Adam: only rows a batch touched are updated (their moments
 *    too), with the global step count in the bias correction.
 *
 * Parameters live in one array W of (nusers + nitems + nbuckets) rows of
 * dim floats: user ids, then item ids, then hashed features.  Gradients
 * and Adam moments have the same layout during training only.
 *
 * Determinism: the shuffle and dropout draws come from one splitmix64
 * stream on the training thread; threads compute disjoint rows of the
 * forward pass and disjoint rows of the Adam update; every reduction into
 * a shared row runs on one thread in batch order.  OpenBLAS sgemm splits
 * its output among threads but never the inner (k) dimension, so it too
 * is reproducible.
 */
#include "features.h"
#include "twotower.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FILE_MAGIC "KNYTTTT1"
#define FILE_VERSION 1u
#define HDR_SIZE 64

void knytt__tt_model_free(tt_model *m)
{
	if (!m)
		return;
	knytt__afree(m->W);
	free(m->foff);
	free(m->feat);
	free(m->hoff);
	free(m->hist);
	knytt__afree(m->iemb);
	knytt__afree(m->uemb);
	free(m);
}

/* ---- settings ---------------------------------------------------------- */

int knytt_twotower_create(knytt_twotower **out)
{
	if (!out)
		return knytt__err(KNYTT_EINVAL, "out is NULL");
	knytt_twotower *tt = calloc(1, sizeof *tt);
	if (!tt)
		return knytt__err(KNYTT_ENOMEM, "out of memory for a twotower");
	tt->dim = DEF_DIM;
	tt->buckets = DEF_BUCKETS;
	tt->epochs = DEF_EPOCHS;
	tt->batch = DEF_BATCH;
	tt->history = DEF_HISTORY;
	tt->lr = DEF_LR;
	tt->temp = DEF_TEMP;
	tt->id_drop = DEF_ID_DROPOUT;
	tt->seed = 42;
	*out = tt;
	return KNYTT_OK;
}

void knytt_twotower_close(knytt_twotower *tt)
{
	if (!tt)
		return;
	knytt__tt_model_free(tt->m);
	free(tt);
}


int knytt_twotower_set_dim(knytt_twotower *tt, uint32_t dim)
{
	NEED_TT(tt);
	if (dim == 0)
		dim = DEF_DIM;
	if (dim < 2 || dim > 4096)
		return knytt__err(KNYTT_EINVAL,
				  "dim %u out of range (valid 2..4096)", dim);
	tt->dim = dim;
	return KNYTT_OK;
}

int knytt_twotower_set_epochs(knytt_twotower *tt, unsigned epochs)
{
	NEED_TT(tt);
	if (epochs == 0)
		epochs = DEF_EPOCHS;
	if (epochs > 100000)
		return knytt__err(KNYTT_EINVAL,
				  "epochs %u out of range (valid 1..100000)",
				  epochs);
	tt->epochs = epochs;
	return KNYTT_OK;
}

int knytt_twotower_set_batch(knytt_twotower *tt, unsigned batch)
{
	NEED_TT(tt);
	if (batch == 0)
		batch = DEF_BATCH;
	if (batch < 2 || batch > 65536)
		return knytt__err(KNYTT_EINVAL,
				  "batch %u out of range (valid 2..65536: the "
				  "in-batch softmax needs negatives)",
				  batch);
	tt->batch = batch;
	return KNYTT_OK;
}

int knytt_twotower_set_lr(knytt_twotower *tt, float lr)
{
	NEED_TT(tt);
	if (lr == 0.0f)
		lr = DEF_LR;
	if (!isfinite(lr) || lr <= 0.0f || lr > 10.0f)
		return knytt__err(KNYTT_EINVAL,
				  "learning rate %g out of range (valid (0, 10])",
				  (double)lr);
	tt->lr = lr;
	return KNYTT_OK;
}

int knytt_twotower_set_temperature(knytt_twotower *tt, float temperature)
{
	NEED_TT(tt);
	if (temperature == 0.0f)
		temperature = DEF_TEMP;
	if (!isfinite(temperature) || temperature < 0.001f ||
	    temperature > 100.0f)
		return knytt__err(KNYTT_EINVAL,
				  "temperature %g out of range (valid "
				  "[0.001, 100])",
				  (double)temperature);
	tt->temp = temperature;
	return KNYTT_OK;
}

int knytt_twotower_set_seed(knytt_twotower *tt, uint64_t seed)
{
	NEED_TT(tt);
	tt->seed = seed;
	return KNYTT_OK;
}

int knytt_twotower_set_threads(knytt_twotower *tt, unsigned threads)
{
	NEED_TT(tt);
	if (threads > 256)
		return knytt__err(KNYTT_EINVAL,
				  "threads %u out of range (valid 0..256)",
				  threads);
	tt->threads = threads;
	return KNYTT_OK;
}

int knytt_twotower_set_buckets(knytt_twotower *tt, uint32_t buckets)
{
	NEED_TT(tt);
	if (buckets == 0)
		buckets = DEF_BUCKETS;
	if (buckets < 16 || buckets > (1u << 26))
		return knytt__err(KNYTT_EINVAL,
				  "buckets %u out of range (valid 16..2^26)",
				  buckets);
	tt->buckets = buckets;
	return KNYTT_OK;
}

int knytt_twotower_set_history(knytt_twotower *tt, unsigned history)
{
	NEED_TT(tt);
	if (history == 0)
		history = DEF_HISTORY;
	if (history > 1000)
		return knytt__err(KNYTT_EINVAL,
				  "history %u out of range (valid 1..1000)",
				  history);
	tt->history = history;
	return KNYTT_OK;
}

int knytt_twotower_set_id_dropout(knytt_twotower *tt, float p)
{
	NEED_TT(tt);
	if (!(p >= 0.0f && p < 1.0f))
		return knytt__err(KNYTT_EINVAL,
				  "id dropout %g out of range (valid [0, 1))",
				  (double)p);
	tt->id_drop = p;
	return KNYTT_OK;
}

int knytt_twotower_set_progress(knytt_twotower *tt, knytt_progress_fn fn,
				void *ctx)
{
	NEED_TT(tt);
	tt->progress = fn;
	tt->pctx = ctx;
	return KNYTT_OK;
}

uint32_t knytt_twotower_dim(const knytt_twotower *tt)
{
	return tt && tt->m ? tt->m->dim : 0;
}
uint32_t knytt_twotower_count_users(const knytt_twotower *tt)
{
	return tt && tt->m ? tt->m->nusers : 0;
}
uint32_t knytt_twotower_count_items(const knytt_twotower *tt)
{
	return tt && tt->m ? tt->m->nitems : 0;
}

/* ---- towers ------------------------------------------------------------ */

/* Scales v to unit length; returns the old norm (0: left as zeros). */
float knytt__tt_unit(float *v, uint32_t d)
{
	double s = 0;
	for (uint32_t k = 0; k < d; k++)
		s += (double)v[k] * v[k];
	float n = (float)sqrt(s);
	if (n < 1e-12f) {
		memset(v, 0, d * sizeof *v);
		return 0.0f;
	}
	float inv = 1.0f / n;
	for (uint32_t k = 0; k < d; k++)
		v[k] *= inv;
	return n;
}

/* Item tower: out = id row (if @p id) + mean of the feature rows, then
 * normalised; returns the pre-normalisation norm. */
float knytt__tt_item_tower(const tt_model *m, const float *id,
			const uint32_t *feat, size_t nf, float *out)
{
	uint32_t d = m->dim;
	if (id)
		memcpy(out, id, d * sizeof *out);
	else
		memset(out, 0, d * sizeof *out);
	if (nf > 0) {
		float w = 1.0f / (float)nf;
		for (size_t j = 0; j < nf; j++) {
			axpy(out, w, row_feat(m, feat[j]), d);
		}
	}
	return knytt__tt_unit(out, d);
}

static void known_item(const tt_model *m, uint32_t i, float *out)
{
	knytt__tt_item_tower(m, row_item(m, i), m->feat + m->foff[i],
		   m->foff[i + 1] - m->foff[i], out);
}

/* User tower from item vectors: out = id row + mean(vecs), normalised. */
static void user_tower(const tt_model *m, const float *id,
		       const float *const *vecs, size_t n, float *out)
{
	uint32_t d = m->dim;
	if (id)
		memcpy(out, id, d * sizeof *out);
	else
		memset(out, 0, d * sizeof *out);
	if (n > 0) {
		float w = 1.0f / (float)n;
		for (size_t j = 0; j < n; j++)
			axpy(out, w, vecs[j], d);
	}
	knytt__tt_unit(out, d);
}

/* Fills the cached item and user vectors of a trained or loaded model. */
int knytt__tt_model_cache(tt_model *m)
{
	uint32_t d = m->dim;
	m->iemb = knytt__aalloc((size_t)m->nitems * d * sizeof(float));
	m->uemb = knytt__aalloc((size_t)m->nusers * d * sizeof(float));
	const float **vecs = malloc((m->history + 1) * sizeof *vecs);
	if (!m->iemb || !m->uemb || !vecs) {
		free(vecs);
		return knytt__err(KNYTT_ENOMEM, "out of memory for embeddings");
	}
	for (uint32_t i = 0; i < m->nitems; i++)
		known_item(m, i, m->iemb + (size_t)i * d);
	for (uint32_t u = 0; u < m->nusers; u++) {
		size_t n = 0;
		for (uint32_t j = m->hoff[u]; j < m->hoff[u + 1]; j++)
			vecs[n++] = m->iemb + (size_t)m->hist[j] * d;
		user_tower(m, row_user(m, u), vecs, n,
			   m->uemb + (size_t)u * d);
	}
	free(vecs);
	return KNYTT_OK;
}

/* ---- embedding --------------------------------------------------------- */

#define NEED_MODEL(tt)                                                    \
	do {                                                              \
		if (!(tt))                                                \
			return knytt__err(KNYTT_EINVAL, "twotower is NULL"); \
		if (!(tt)->m)                                             \
			return knytt__err(KNYTT_ESTATE,                   \
					  "no model: train or load first"); \
	} while (0)

int knytt_twotower_item_embeddings(const knytt_twotower *tt, float *out,
				   size_t cap)
{
	NEED_MODEL(tt);
	if (!out)
		return knytt__err(KNYTT_EINVAL, "out is NULL");
	if (cap < tt->m->nitems)
		return knytt__err(KNYTT_ERANGE,
				  "room for %zu rows, the model has %u items",
				  cap, tt->m->nitems);
	memcpy(out, tt->m->iemb,
	       (size_t)tt->m->nitems * tt->m->dim * sizeof(float));
	return (int)tt->m->nitems;
}

int knytt_twotower_user_embeddings(const knytt_twotower *tt, float *out,
				   size_t cap)
{
	NEED_MODEL(tt);
	if (!out)
		return knytt__err(KNYTT_EINVAL, "out is NULL");
	if (cap < tt->m->nusers)
		return knytt__err(KNYTT_ERANGE,
				  "room for %zu rows, the model has %u users",
				  cap, tt->m->nusers);
	memcpy(out, tt->m->uemb,
	       (size_t)tt->m->nusers * tt->m->dim * sizeof(float));
	return (int)tt->m->nusers;
}

int knytt_twotower_embed_item(const knytt_twotower *tt,
			      const knytt_twotower_item *item, float *out)
{
	NEED_MODEL(tt);
	if (!item || !out)
		return knytt__err(KNYTT_EINVAL, "item or out is NULL");
	uint32_t f[KNYTT__TT_MAXFEAT];
	size_t nf = knytt__tt_item_features(item, tt->m->seed, tt->m->nbuckets,
					    f, KNYTT__TT_MAXFEAT);
	knytt__tt_item_tower(tt->m, NULL, f, nf, out);
	return KNYTT_OK;
}

int knytt_twotower_embed_query(const knytt_twotower *tt, const char *text,
			       float *out)
{
	NEED_MODEL(tt);
	if (!text || !out)
		return knytt__err(KNYTT_EINVAL, "text or out is NULL");
	uint32_t f[KNYTT__TT_MAXFEAT];
	size_t nf = knytt__tt_text_features(text, tt->m->seed, tt->m->nbuckets,
					    f, KNYTT__TT_MAXFEAT);
	knytt__tt_item_tower(tt->m, NULL, f, nf, out);
	return KNYTT_OK;
}

int knytt_twotower_embed_user(const knytt_twotower *tt, uint32_t user,
			      const uint32_t *recent, size_t n, float *out)
{
	NEED_MODEL(tt);
	const tt_model *m = tt->m;
	if (!out || (n > 0 && !recent))
		return knytt__err(KNYTT_EINVAL, "out or recent is NULL");
	if (user != KNYTT_TWOTOWER_NO_USER && user >= m->nusers)
		return knytt__err(KNYTT_EINVAL,
				  "user %u >= model users %u (pass "
				  "KNYTT_TWOTOWER_NO_USER for a new user)",
				  user, m->nusers);
	size_t first = n > m->history ? n - m->history : 0;
	const float **vecs = malloc((n - first + 1) * sizeof *vecs);
	if (!vecs)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	for (size_t j = first; j < n; j++) {
		if (recent[j] >= m->nitems) {
			free(vecs);
			return knytt__err(KNYTT_EINVAL,
					  "recent[%zu] = %u >= model items %u",
					  j, recent[j], m->nitems);
		}
		vecs[j - first] = m->iemb + (size_t)recent[j] * m->dim;
	}
	user_tower(m,
		   user == KNYTT_TWOTOWER_NO_USER ? NULL : row_user(m, user),
		   vecs, n - first, out);
	free(vecs);
	return KNYTT_OK;
}

/* ---- model file -------------------------------------------------------- */

static void put_u32s(unsigned char **p, const uint32_t *a, size_t n)
{
	for (size_t k = 0; k < n; k++, *p += 4)
		knytt__put_u32(*p, a[k]);
}

int knytt_twotower_save_buffer(const knytt_twotower *tt, void **buf,
			    size_t *len)
{
	NEED_MODEL(tt);
	if (!buf || !len)
		return knytt__err(KNYTT_EINVAL, "buf or len is NULL");
	const tt_model *m = tt->m;
	size_t nw = nrows(m) * m->dim;
	size_t nf = m->foff[m->nitems], nh = m->hoff[m->nusers];
	size_t total = HDR_SIZE +
		       4 * (nw + (size_t)m->nitems + 1 + nf +
			    (size_t)m->nusers + 1 + nh) +
		       4;
	unsigned char *b = malloc(total), *p = b;
	if (!b)
		return knytt__err(KNYTT_ENOMEM,
				  "out of memory for a %zu-byte model", total);
	memset(b, 0, HDR_SIZE);
	memcpy(p, FILE_MAGIC, 8);
	knytt__put_u32(p + 8, FILE_VERSION);
	knytt__put_u32(p + 12, m->dim);
	knytt__put_u32(p + 16, m->nbuckets);
	knytt__put_u32(p + 20, m->nusers);
	knytt__put_u32(p + 24, m->nitems);
	knytt__put_u32(p + 28, m->history);
	knytt__put_u64(p + 32, m->seed);
	knytt__put_u64(p + 40, nf);
	knytt__put_u64(p + 48, nh);
	p += HDR_SIZE;
	for (size_t k = 0; k < nw; k++, p += 4) {
		uint32_t v;
		memcpy(&v, &m->W[k], 4);
		knytt__put_u32(p, v);
	}
	put_u32s(&p, m->foff, (size_t)m->nitems + 1);
	put_u32s(&p, m->feat, nf);
	put_u32s(&p, m->hoff, (size_t)m->nusers + 1);
	put_u32s(&p, m->hist, nh);
	knytt__put_u32(p, knytt__crc32c(0, b, total - 4));
	*buf = b;
	*len = total;
	return KNYTT_OK;
}

int knytt_twotower_save(const knytt_twotower *tt, const char *path)
{
	NEED_MODEL(tt);
	if (!path)
		return knytt__err(KNYTT_EINVAL, "path is NULL");
	void *buf;
	size_t len;
	int rc = knytt_twotower_save_buffer(tt, &buf, &len);
	return rc ? rc : knytt__write_owned(path, buf, len);
}

static void get_u32s(const unsigned char **p, uint32_t *a, size_t n)
{
	for (size_t k = 0; k < n; k++, *p += 4)
		a[k] = knytt__get_u32(*p);
}

/* Checks that off[0..n] rises from 0 to total and vals < bound. */
static int check_csr(const uint32_t *off, size_t n, const uint32_t *vals,
		     size_t total, uint32_t bound, const char *what)
{
	if (off[0] != 0 || off[n] != total)
		return knytt__err(KNYTT_ECORRUPT,
				  "model file: %s offsets do not span the table",
				  what);
	for (size_t k = 0; k < n; k++)
		if (off[k + 1] < off[k])
			return knytt__err(KNYTT_ECORRUPT,
					  "model file: %s offsets decrease at "
					  "row %zu",
					  what, k);
	for (size_t k = 0; k < total; k++)
		if (vals[k] >= bound)
			return knytt__err(KNYTT_ECORRUPT,
					  "model file: %s entry %zu = %u out of "
					  "range (< %u)",
					  what, k, vals[k], bound);
	return KNYTT_OK;
}

int knytt_twotower_load_buffer(knytt_twotower *tt, const void *buf, size_t len)
{
	NEED_TT(tt);
	if (!buf)
		return knytt__err(KNYTT_EINVAL, "buf is NULL");
	const unsigned char *b = buf, *p;
	if (len < HDR_SIZE + 4 || memcmp(b, FILE_MAGIC, 8) != 0)
		return knytt__err(KNYTT_ECORRUPT,
				  "not a knytt two-tower model (bad magic or "
				  "only %zu bytes)",
				  len);
	uint32_t ver = knytt__get_u32(b + 8);
	if (ver > FILE_VERSION)
		return knytt__err(KNYTT_EVERSION,
				  "model file version %u, this library reads up "
				  "to %u",
				  ver, FILE_VERSION);
	if (knytt__crc32c(0, b, len - 4) != knytt__get_u32(b + len - 4))
		return knytt__err(KNYTT_ECORRUPT,
				  "model file checksum mismatch (%zu bytes): "
				  "truncated or corrupted",
				  len);
	if (ver == 0)
		return knytt__err(KNYTT_ECORRUPT, "model file version 0");
	tt_model *m = calloc(1, sizeof *m);
	if (!m)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	m->dim = knytt__get_u32(b + 12);
	m->nbuckets = knytt__get_u32(b + 16);
	m->nusers = knytt__get_u32(b + 20);
	m->nitems = knytt__get_u32(b + 24);
	m->history = knytt__get_u32(b + 28);
	m->seed = knytt__get_u64(b + 32);
	uint64_t nf = knytt__get_u64(b + 40), nh = knytt__get_u64(b + 48);
	int rc;
	if (m->dim < 2 || m->dim > 4096 || m->nbuckets < 16 ||
	    m->nbuckets > (1u << 26) || m->nusers == 0 || m->nitems == 0 ||
	    m->history == 0 || m->history > 1000 || nf > UINT32_MAX ||
	    nh > UINT32_MAX) {
		rc = knytt__err(KNYTT_ECORRUPT,
				"model file header out of range (dim %u, "
				"buckets %u, users %u, items %u)",
				m->dim, m->nbuckets, m->nusers, m->nitems);
		goto fail;
	}
	size_t nw = nrows(m) * m->dim;
	/* every count is < 2^32 and dim <= 4096: no overflow in size_t */
	size_t want = HDR_SIZE +
		      4 * (nw + (size_t)m->nitems + 1 + nf +
			   (size_t)m->nusers + 1 + nh) +
		      4;
	if (want != len) {
		rc = knytt__err(KNYTT_ECORRUPT,
				"model file has %zu bytes, its header implies "
				"%zu",
				len, want);
		goto fail;
	}
	m->W = knytt__aalloc(nw * sizeof(float));
	m->foff = malloc(((size_t)m->nitems + 1) * sizeof *m->foff);
	m->feat = malloc((nf ? nf : 1) * sizeof *m->feat);
	m->hoff = malloc(((size_t)m->nusers + 1) * sizeof *m->hoff);
	m->hist = malloc((nh ? nh : 1) * sizeof *m->hist);
	if (!m->W || !m->foff || !m->feat || !m->hoff || !m->hist) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory loading a model");
		goto fail;
	}
	p = b + HDR_SIZE;
	for (size_t k = 0; k < nw; k++, p += 4) {
		uint32_t v = knytt__get_u32(p);
		memcpy(&m->W[k], &v, 4);
		if (!isfinite(m->W[k])) {
			rc = knytt__err(KNYTT_ECORRUPT,
					"model file: parameter %zu is not "
					"finite",
					k);
			goto fail;
		}
	}
	get_u32s(&p, m->foff, (size_t)m->nitems + 1);
	get_u32s(&p, m->feat, nf);
	get_u32s(&p, m->hoff, (size_t)m->nusers + 1);
	get_u32s(&p, m->hist, nh);
	rc = check_csr(m->foff, m->nitems, m->feat, nf, m->nbuckets,
		       "item feature");
	if (!rc)
		rc = check_csr(m->hoff, m->nusers, m->hist, nh, m->nitems,
			       "user history");
	for (uint32_t u = 0; !rc && u < m->nusers; u++)
		if (m->hoff[u + 1] - m->hoff[u] > m->history)
			rc = knytt__err(KNYTT_ECORRUPT,
					"model file: user %u has %u history "
					"items, more than %u",
					u, m->hoff[u + 1] - m->hoff[u],
					m->history);
	if (!rc)
		rc = knytt__tt_model_cache(m);
	if (rc)
		goto fail;
	knytt__tt_model_free(tt->m);
	tt->m = m;
	return KNYTT_OK;
fail:
	knytt__tt_model_free(m);
	return rc;
}

int knytt_twotower_load(knytt_twotower *tt, const char *path)
{
	NEED_TT(tt);
	if (!path)
		return knytt__err(KNYTT_EINVAL, "path is NULL");
	unsigned char *buf;
	size_t len;
	int rc = knytt__read_file(path, &buf, &len);
	if (!rc)
		rc = knytt_twotower_load_buffer(tt, buf, len);
	free(buf);
	return rc;
}
