/*
 * engine.c -- knytt_engine: settings, open/restore, item ingest,
 * feedback and taste, and the item table.  Queries are in query.c,
 * training and model persistence in train.c.
 */
#include "engine_int.h"
#include "packscan.h"
#include "../store/store_int.h"

#include "../vec/vec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* ------------------------------------------------------------- utilities */

uint64_t knytt__hash_str(const char *s)
{
	/* FNV-1a, then a final mix so short ids spread over the table */
	uint64_t h = 0xcbf29ce484222325ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	h ^= h >> 31;
	h *= 0x7fb5d329728ea185ULL;
	return h ^ (h >> 27);
}

static char *dupstr(const char *s)
{
	if (!s)
		return NULL;
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	if (d)
		memcpy(d, s, n);
	return d;
}

uint32_t knytt__engine_row(const knytt_engine *e, uint64_t id)
{
	uint32_t r = knytt__lmap_get(&e->by_id, id);
	return r == LMAP_EMPTY ? UINT32_MAX : r;
}

/* Row of an external id, or UINT32_MAX.  The hash map is checked against
 * the stored string; a 64-bit collision (about 3e-8 for a million items)
 * gets no map slot, so such an item is found by a scan of the table --
 * slower, still memory only, and the table holds every item the store
 * had at the last sync, as the map does. */
uint32_t knytt__engine_row_by_ext(const knytt_engine *e, const char *ext)
{
	uint32_t r = knytt__lmap_get(&e->by_ext, knytt__hash_str(ext));
	if (r == LMAP_EMPTY)
		return UINT32_MAX;
	if (strcmp(e->items[r].ext_id, ext) == 0)
		return r;
	for (size_t i = 0; i < e->nitems; i++)
		if (strcmp(e->items[i].ext_id, ext) == 0)
			return (uint32_t)i;
	return UINT32_MAX;
}

const char *knytt_reason_name(knytt_reason r)
{
	switch (r) {
	case KNYTT_REASON_TASTE: return "taste";
	case KNYTT_REASON_SESSION: return "session";
	case KNYTT_REASON_SIMILAR: return "similar";
	case KNYTT_REASON_TRENDING: return "trending";
	case KNYTT_REASON_POPULAR: return "popular";
	case KNYTT_REASON_KEYWORD: return "keyword";
	case KNYTT_REASON_SEMANTIC: return "semantic";
	case KNYTT_REASON_HYBRID: return "hybrid";
	case KNYTT_REASON_COVIEW: return "co-interaction";
	}
	return "unknown";
}

void knytt_filter_init_size(knytt_filter *f, size_t size)
{
	if (!f || size < sizeof f->struct_size)
		return;
	knytt_filter full;
	memset(&full, 0, sizeof full);
	full.price_max = NAN;
	full.min_quality = NAN;
	knytt__struct_copy(f, size, &full, sizeof full,
			   size < sizeof full ? size : sizeof full);
}

/* The symbol programs built before knytt_filter_init became a macro
 * call: their knytt_filter ends before `where`. */
void(knytt_filter_init)(knytt_filter *f)
{
	knytt_filter_init_size(f, offsetof(knytt_filter, where));
}

void knytt_rec_options_init(knytt_rec_options *o)
{
	if (!o)
		return;
	memset(o, 0, sizeof *o);
	o->struct_size = sizeof *o;
	o->mmr_lambda = 1.0;
	o->exclude_seen = -1;
}

/* -------------------------------------------------------- life cycle */

int knytt_engine_create(knytt_engine **out)
{
	if (!out)
		return knytt__err(KNYTT_EINVAL, "knytt_engine_create: out is NULL");
	knytt_engine *e = calloc(1, sizeof *e);
	if (!e || !(e->ax = knytt__attrx_new())) {
		free(e);
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	}
	e->kind = KNYTT_MODEL_ALS;
	e->dim = KNYTT_ENGINE_DEFAULT_DIM;
	e->m = 16;
	e->efc = 200;
	e->efs = 64;
	for (unsigned t = 0; t < KNYTT__NTYPES; t++)
		e->w_type[t] = knytt__type_default(t);
	e->sess_half_life = 1800;
	e->sess_blend = 0.5;
	e->als_reg = (float)KNYTT_ENGINE_DEFAULT_ALS_REG;
	e->als_alpha = (float)KNYTT_ENGINE_DEFAULT_ALS_ALPHA;
	e->als_iters = KNYTT_ENGINE_DEFAULT_ALS_ITERATIONS;
	e->tune = 1;
	e->sasrec_w = -1; /* off (sasrec_epochs 0); weight: validated */
	e->tt_epochs = KNYTT_ENGINE_DEFAULT_TWOTOWER_EPOCHS;
	e->exclude_seen = 1;
	e->excl_types = KNYTT__TYPES_ALL;
	e->future_tol_ms = KNYTT_FUTURE_TOLERANCE_MS;
	e->keep_models = KNYTT_KEEP_MODELS;
	e->prof_budget = KNYTT_PROFILE_CACHE_DEFAULT;
	pthread_rwlock_init(&e->lock, NULL);
	pthread_mutex_init(&e->st_lock, NULL);
	pthread_mutex_init(&e->gw_mu, NULL);
	pthread_cond_init(&e->gw_cv, NULL);
	e->gw_tail = &e->gw_head;
	pthread_rwlock_init(&e->stat_lock, NULL);
	pthread_mutex_init(&e->users_mu, NULL);
	pthread_mutex_init(&e->train_mu, NULL);
	pthread_mutex_init(&e->cat_mu, NULL);
	pthread_mutex_init(&e->fq_mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->fq_wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&e->fq_done, NULL);
	knytt__rd_init(e);
	knytt__win_init(e);
	(void)knytt__packs_init(e); /* without memory: scans read the table */
	*out = e;
	return KNYTT_OK;
}

void knytt_engine_close(knytt_engine *e)
{
	if (!e)
		return;
	if (e->train_joinable)
		pthread_join(e->train_thread, NULL);
	/* queued feedback is written before the store closes; a failure
	 * now has no caller to go to (knytt_engine_flush first to see it) */
	knytt__fq_stop(e);
	for (size_t i = 0; i < e->nitems; i++) {
		free(e->items[i].ext_id);
		free(e->items[i].category);
	}
	free(e->items);
	knytt__pcache_free(e);
	knytt__lmap_free(&e->by_id);
	knytt__lmap_free(&e->by_ext);
	knytt__snap_put(e->snap);
	knytt__rd_free(e);
	knytt_store_close(e->st);
	free(e->uri);
	free(e->tenant_name);
	pthread_rwlock_destroy(&e->lock);
	pthread_mutex_destroy(&e->st_lock);
	pthread_mutex_destroy(&e->gw_mu);
	pthread_cond_destroy(&e->gw_cv);
	pthread_rwlock_destroy(&e->stat_lock);
	pthread_mutex_destroy(&e->users_mu);
	pthread_mutex_destroy(&e->train_mu);
	knytt__filterx_free(e);
	knytt__attrx_free(e->ax);
	knytt__top_free(e);
	knytt__win_free(e);
	knytt__rowvec_free(e);
	knytt__packs_free(e);
	pthread_mutex_destroy(&e->cat_mu);
	pthread_mutex_destroy(&e->fq_mu);
	pthread_cond_destroy(&e->fq_wake);
	pthread_cond_destroy(&e->fq_done);
	free(e);
}

#define SETTER(fn)                                                          \
	if (!e)                                                             \
		return knytt__err(KNYTT_EINVAL, fn ": engine is NULL");     \
	if (e->is_open)                                                     \
		return knytt__err(KNYTT_ESTATE,                             \
				  fn ": settings are fixed once the engine " \
				     "is open")

int knytt_engine_set_model(knytt_engine *e, knytt_model_kind kind)
{
	SETTER("knytt_engine_set_model");
	if (kind != KNYTT_MODEL_ALS && kind != KNYTT_MODEL_TWOTOWER &&
	    kind != KNYTT_MODEL_EXTERNAL && kind != KNYTT_MODEL_LIGHTGCN)
		return knytt__err(KNYTT_EINVAL, "model kind %d is unknown",
				  (int)kind);
	e->kind = kind;
	e->kind_set = 1;
	return KNYTT_OK;
}

int knytt_engine_set_dim(knytt_engine *e, uint32_t dim)
{
	SETTER("knytt_engine_set_dim");
	if (dim == 0 || dim > 4096)
		return knytt__err(KNYTT_EINVAL, "dim is %u, must be 1..4096",
				  dim);
	e->dim = dim;
	e->dim_set = 1;
	return KNYTT_OK;
}

int knytt_engine_set_index(knytt_engine *e, unsigned m, unsigned efc,
			   unsigned efs)
{
	SETTER("knytt_engine_set_index");
	if (m && (m < 2 || m > 64))
		return knytt__err(KNYTT_EINVAL, "M is %u, must be 2..64", m);
	if (efc > 100000 || efs > 100000)
		return knytt__err(KNYTT_EINVAL, "ef must be at most 100000");
	e->m = m ? m : 16;
	e->efc = efc ? efc : 200;
	e->efs = efs ? efs : 64;
	return KNYTT_OK;
}

int knytt_engine_set_weight(knytt_engine *e, const char *type, double w)
{
	SETTER("knytt_engine_set_weight");
	if (!type || !*type)
		return knytt__err(KNYTT_EINVAL, "type is NULL or empty");
	if (!isfinite(w) || w <= 0)
		return knytt__err(KNYTT_EINVAL,
				  "weight of '%s' must be finite and > 0", type);
	/* a custom name sets the weight every custom type shares */
	e->w_type[knytt__type_bit(type)] = w;
	return KNYTT_OK;
}

int knytt_engine_set_taste(knytt_engine *e, double sess_half_life_s,
			   double blend, double hist_half_life_days)
{
	SETTER("knytt_engine_set_taste");
	if (!isfinite(sess_half_life_s) || sess_half_life_s <= 0)
		return knytt__err(KNYTT_EINVAL,
				  "session half-life must be > 0 seconds");
	if (!(blend >= 0 && blend <= 1))
		return knytt__err(KNYTT_EINVAL, "blend must be in 0..1");
	if (!isfinite(hist_half_life_days) || hist_half_life_days < 0)
		return knytt__err(KNYTT_EINVAL,
				  "history half-life must be >= 0 days");
	e->sess_half_life = sess_half_life_s;
	e->sess_blend = blend;
	e->hist_half_life_days = hist_half_life_days;
	return KNYTT_OK;
}

int knytt_engine_set_exclude_seen(knytt_engine *e, int seen)
{
	SETTER("knytt_engine_set_exclude_seen");
	e->exclude_seen = seen != 0;
	return KNYTT_OK;
}

int knytt_engine_set_exclude_type(knytt_engine *e, const char *type,
				  int exclude)
{
	SETTER("knytt_engine_set_exclude_type");
	if (!type || !*type)
		return knytt__err(KNYTT_EINVAL, "type is NULL or empty");
	unsigned bit = strcmp(type, "*") == 0 ? KNYTT__T_OTHER
					      : knytt__type_bit(type);
	if (exclude)
		e->excl_types |= 1u << bit;
	else
		e->excl_types &= ~(1u << bit);
	return KNYTT_OK;
}

int knytt_engine_set_log(knytt_engine *e, knytt_log_fn fn, void *ctx)
{
	SETTER("knytt_engine_set_log");
	e->log_fn = fn;
	e->log_ctx = ctx;
	return KNYTT_OK;
}

int knytt_engine_set_now(knytt_engine *e, int64_t now_ms)
{
	if (!e)
		return knytt__err(KNYTT_EINVAL,
				  "knytt_engine_set_now: engine is NULL");
	if (now_ms < 0)
		return knytt__err(KNYTT_EINVAL,
				  "now_ms is negative (0 = the wall clock)");
	__atomic_store_n(&e->now_ms, now_ms, __ATOMIC_RELAXED);
	return KNYTT_OK;
}

int knytt_engine_set_future_tolerance(knytt_engine *e, int64_t ms)
{
	SETTER("knytt_engine_set_future_tolerance");
	if (ms < 0)
		return knytt__err(KNYTT_EINVAL, "tolerance_ms is negative");
	e->future_tol_ms = ms;
	return KNYTT_OK;
}

int knytt_engine_set_keep_models(knytt_engine *e, unsigned n)
{
	SETTER("knytt_engine_set_keep_models");
	if (n > 1000)
		return knytt__err(KNYTT_EINVAL, "keep_models is %u, must be "
						"0..1000 (0 = default)", n);
	e->keep_models = n ? n : KNYTT_KEEP_MODELS;
	return KNYTT_OK;
}

int knytt_engine_set_als(knytt_engine *e, float reg, float alpha,
			 unsigned iterations)
{
	SETTER("knytt_engine_set_als");
	if (!isfinite(reg) || reg < 0 || !isfinite(alpha) || alpha < 0 ||
	    iterations == 0 || iterations > 1000)
		return knytt__err(KNYTT_EINVAL,
				  "ALS: reg and alpha must be >= 0, "
				  "iterations 1..1000");
	e->als_reg = reg;
	e->als_alpha = alpha;
	e->als_iters = iterations;
	return KNYTT_OK;
}

int knytt_engine_set_twotower(knytt_engine *e, unsigned epochs)
{
	SETTER("knytt_engine_set_twotower");
	if (epochs == 0 || epochs > 10000)
		return knytt__err(KNYTT_EINVAL, "epochs must be 1..10000");
	e->tt_epochs = epochs;
	return KNYTT_OK;
}

int knytt_engine_set_tune(knytt_engine *e, int tune)
{
	SETTER("knytt_engine_set_tune");
	if (tune != 0 && tune != 1)
		return knytt__err(KNYTT_EINVAL, "tune must be 0 or 1 (got %d)",
				  tune);
	e->tune = tune;
	return KNYTT_OK;
}

int knytt_engine_set_tune_windows(knytt_engine *e, int on)
{
	SETTER("knytt_engine_set_tune_windows");
	if (on != 0 && on != 1)
		return knytt__err(KNYTT_EINVAL,
				  "tune windows must be 0 or 1 (got %d)", on);
	e->tune_windows = on;
	return KNYTT_OK;
}

int knytt_engine_set_tune_pool(knytt_engine *e, int on)
{
	SETTER("knytt_engine_set_tune_pool");
	if (on != 0 && on != 1)
		return knytt__err(KNYTT_EINVAL,
				  "tune pool must be 0 or 1 (got %d)", on);
	e->tune_pool = on;
	return KNYTT_OK;
}

int knytt_engine_set_sasrec(knytt_engine *e, unsigned max_epochs)
{
	SETTER("knytt_engine_set_sasrec");
	if (max_epochs > 10000)
		return knytt__err(KNYTT_EINVAL,
				  "sasrec max_epochs must be 0 (off) or "
				  "1..10000 (got %u)",
				  max_epochs);
	e->sasrec_epochs = max_epochs;
	return KNYTT_OK;
}

int knytt_engine_set_sasrec_weight(knytt_engine *e, double w)
{
	SETTER("knytt_engine_set_sasrec_weight");
	if (isnan(w) || w > 1)
		return knytt__err(KNYTT_EINVAL,
				  "sasrec weight must be in [0, 1], or < 0 "
				  "for the validation's choice");
	e->sasrec_w = w < 0 ? -1 : w;
	return KNYTT_OK;
}

int knytt_engine_set_embedder(knytt_engine *e, knytt_embedder *emb)
{
	SETTER("knytt_engine_set_embedder");
	e->emb = emb;
	return KNYTT_OK;
}

int knytt_engine_set_tenant(knytt_engine *e, const char *name)
{
	SETTER("knytt_engine_set_tenant");
	if (!name || !*name)
		return knytt__err(KNYTT_EINVAL, "tenant name is empty");
	char *d = dupstr(name);
	if (!d)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	free(e->tenant_name);
	e->tenant_name = d;
	return KNYTT_OK;
}

int knytt_engine_set_threads(knytt_engine *e, unsigned threads)
{
	SETTER("knytt_engine_set_threads");
	e->threads = threads;
	return KNYTT_OK;
}

int knytt_engine_set_feedback_async(knytt_engine *e, int async)
{
	SETTER("knytt_engine_set_feedback_async");
	e->fb_async = async != 0;
	return KNYTT_OK;
}

knytt_store *knytt_engine_store(knytt_engine *e)
{
	if (!e)
		return NULL;
	/* the writer thread shares the handle: let it finish first */
	knytt__fq_wait(e);
	return e->st;
}

/* ------------------------------------------------------------ item table */

/* two weeks too: on ML-100K held out in time, the last two weeks' counts
 * rank the next month better than the last week's (NDCG@20 0.241 against
 * 0.198), and the tuned blend uses it */
const double knytt__trend_half_life[NTREND] = { 3600.0, 86400.0, 604800.0,
						1209600.0 };

/* Adds weight w at time ts to an item's trending counters. */
static void trend_add(eitem *it, double w, int64_t ts)
{
	if (ts >= it->trend_ts) {
		for (int h = 0; h < NTREND; h++)
			it->trend[h] = it->trend[h] *
					       knytt__decay(ts - it->trend_ts,
							knytt__trend_half_life[h]) +
				       w;
		it->trend_ts = ts;
	} else {
		for (int h = 0; h < NTREND; h++)
			it->trend[h] += w * knytt__decay(it->trend_ts - ts,
						     knytt__trend_half_life[h]);
	}
}

/* Inserts or refreshes the row of a store item (caller holds lock for
 * writing, or is opening). */
static int table_put(knytt_engine *e, const knytt_item *it, uint32_t *row)
{
	uint32_t r = knytt__engine_row(e, it->id);
	char *cat = it->category && *it->category ? dupstr(it->category)
						  : NULL;
	if (it->category && *it->category && !cat)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	int fresh = r == UINT32_MAX;
	if (fresh) {
		if (e->nitems == e->capitems) {
			size_t nc = e->capitems ? e->capitems * 2 : 1024;
			eitem *n = realloc(e->items, nc * sizeof *n);
			if (!n) {
				free(cat);
				return knytt__err(KNYTT_ENOMEM, "out of memory");
			}
			e->items = n;
			e->capitems = nc;
			knytt__rowvec_grow(e, nc);
		}
		char *ext = dupstr(it->ext_id);
		if (!ext || knytt__lmap_put(&e->by_id, it->id,
					    (uint32_t)e->nitems) ||
		    knytt__lmap_put(&e->by_ext, knytt__hash_str(it->ext_id),
				    (uint32_t)e->nitems)) {
			free(ext);
			free(cat);
			return knytt__err(KNYTT_ENOMEM, "out of memory");
		}
		r = (uint32_t)e->nitems++;
		memset(&e->items[r], 0, sizeof e->items[r]);
		e->items[r].id = it->id;
		e->items[r].ext_id = ext;
		e->items[r].midx = UINT32_MAX;
	}
	eitem *x = &e->items[r];
	int moved = !x->category || !cat || strcmp(x->category, cat) != 0;
	free(x->category);
	x->category = cat;
	if (it->id > e->max_id)
		e->max_id = it->id;
	int repriced = fresh || x->price != it->price;
	x->price = it->price;
	x->quality = it->quality;
	x->in_stock = it->in_stock;
	x->deleted = it->deleted;
	if ((moved && cat) || repriced)
		knytt__filterx_changed(e, r, moved && cat, repriced);
	if (row)
		*row = r;
	/* a deleted item leaves the attribute postings; without memory the
	 * row has no attributes (its filters fail) and the caller hears */
	return knytt__attrx_set(e->ax, r, x->deleted ? NULL : it->attributes);
}

static int load_item_cb(const knytt_item *it, void *ctx)
{
	knytt_engine *e = ctx;
	if (it->updated_ms > e->synced_ms)
		e->synced_ms = it->updated_ms;
	return table_put(e, it, NULL) ? 1 : 0;
}

static int trend_seed_cb(const knytt_interaction *ix, void *ctx)
{
	knytt_engine *e = ctx;
	uint32_t r = knytt__engine_row(e, ix->item_id);
	/* replaying an earlier time (knytt_engine_set_now): what happened
	 * after it has not happened yet */
	if (ix->ts_ms > knytt__engine_now(e) + e->future_tol_ms)
		return 0;
	if (r != UINT32_MAX) {
		double w = knytt__ix_confidence(e, ix);
		trend_add(&e->items[r], w, ix->ts_ms);
		knytt__win_add(e, r, (float)w, ix->ts_ms,
			       knytt__engine_now(e));
	}
	return 0;
}

/* The all-time event counts per item, read from the store (caller holds
 * st_lock, or is opening): @p cap slots (the table's size then; rows
 * added since keep the counters feedback gave them). */
typedef struct popcounts {
	uint64_t *ids, *cnt;
	int n;
} popcounts;

static int read_popularity(knytt_engine *e, size_t cap, int64_t now,
			   popcounts *p)
{
	cap = cap ? cap : 1;
	p->n = 0;
	p->ids = malloc(cap * sizeof *p->ids);
	p->cnt = malloc(cap * sizeof *p->cnt);
	if (!p->ids || !p->cnt)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	int n = knytt_store_item_counts(e->st, 0, now + 1, NULL, p->ids,
					p->cnt, cap);
	if (n < 0)
		return n;
	p->n = n;
	return KNYTT_OK;
}

/* Sets the counts read (caller holds lock for writing, or is opening). */
static void apply_popularity(knytt_engine *e, popcounts *p)
{
	for (int i = 0; i < p->n; i++) {
		uint32_t r = knytt__engine_row(e, p->ids[i]);
		if (r != UINT32_MAX)
			e->items[r].pop = (double)p->cnt[i];
	}
	free(p->ids);
	free(p->cnt);
	p->ids = p->cnt = NULL;
}

static int load_popularity(knytt_engine *e, int64_t now)
{
	popcounts p = { 0 };
	int rc = read_popularity(e, e->nitems, now, &p);
	apply_popularity(e, &p);
	return rc;
}

/* ---------------------------------------------------------------- index */

int knytt__engine_new_index(const knytt_engine *e, knytt_index **out)
{
	knytt_index *ix;
	int rc = knytt_index_create(&ix);
	if (rc)
		return rc;
	if ((rc = knytt_index_set_metric(ix, e->metric)) ||
	    (rc = knytt_index_set_m(ix, e->m)) ||
	    (rc = knytt_index_set_ef_construction(ix, e->efc)) ||
	    (rc = knytt_index_set_ef_search(ix, e->efs)) ||
	    (rc = knytt_index_open(ix, e->dim))) {
		knytt_index_close(ix);
		return rc;
	}
	*out = ix;
	return KNYTT_OK;
}

static int caller_vec_cb(uint64_t id, const float *vec, uint32_t dim,
			 int64_t updated_ms, void *ctx)
{
	knytt_engine *e = ctx;
	if (updated_ms > e->vec_synced_ms)
		e->vec_synced_ms = updated_ms; /* sync reads from there */
	uint32_t r = knytt__engine_row(e, id);
	if (r == UINT32_MAX || e->items[r].deleted || dim != e->dim)
		return 0;
	if (knytt_index_upsert(e->snap->ix, id, vec, dim))
		return 1;
	e->items[r].has_vec = 1;
	e->items[r].caller_vec = 1;
	return 0;
}

/* Vectors of model items: ALS item factors or two-tower item tower. */
static int add_model_vectors(knytt_engine *e, knytt_index *ix,
			     knytt_als *als, knytt_twotower *tt,
			     knytt_lightgcn *lgc, const uint64_t *items,
			     uint32_t n)
{
	if (n == 0)
		return KNYTT_OK;
	float *v = malloc((size_t)n * e->dim * sizeof *v);
	uint64_t *lab = malloc((size_t)n * sizeof *lab);
	int rc = KNYTT_OK;
	if (!v || !lab) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		goto out;
	}
	if (als)
		rc = knytt_als_item_factors(als, 0, n, v);
	else if (lgc)
		rc = knytt_lightgcn_item_factors(lgc, 0, n, v);
	else
		rc = knytt_twotower_item_embeddings(tt, v, n); /* rows */
	if (rc < 0)
		goto out;
	rc = KNYTT_OK;
	/* keep only live items with a non-zero vector */
	size_t m = 0;
	const knytt__vec_ops *ops = knytt__vec();
	for (uint32_t i = 0; i < n; i++) {
		uint32_t r = knytt__engine_row(e, items[i]);
		float *x = v + (size_t)i * e->dim;
		if (r == UINT32_MAX || e->items[r].deleted ||
		    !(ops->dot(x, x, e->dim) > 0))
			continue;
		memmove(v + m * e->dim, x, e->dim * sizeof *v);
		lab[m++] = items[i];
	}
	rc = knytt_index_add_batch(ix, m, lab, v, e->dim, e->threads);
out:
	free(v);
	free(lab);
	return rc;
}

/* ------------------------------------------------------------------ open */

static int load_model_and_index(knytt_engine *e)
{
	void *blob = NULL;
	size_t size = 0;
	int64_t version = 0, want = 0;
	char *meta = NULL;
	/* filled below, before any other thread can see the engine */
	if (!(e->snap = knytt__snap_new(NULL, NULL, NULL, NULL, NULL, 0, 0,
					NULL, 0)))
		return KNYTT_ENOMEM;
	/* the newest version the swap gate did not hold back (holdout.c) */
	knytt_train_eval sev;
	int rc = knytt__serving_version(e->st, &want, &sev);
	if (rc == KNYTT_OK)
		rc = want ? knytt_store_model_get(e->st, "engine-model", want,
						  &blob, &size, &meta, &version,
						  NULL)
			  : KNYTT_ENOTFOUND;
	if (rc == KNYTT_ENOTFOUND)
		rc = KNYTT_OK; /* never trained */
	else if (rc == KNYTT_OK && size >= 24 &&
		 memcmp(blob, "KNYTTENG", 8) == 0) {
		/* settings left at their defaults follow the stored model;
		 * explicit ones that differ mean "retrain": the stored model
		 * is then not served, and the next train replaces it */
		const unsigned char *h = blob;
		knytt_model_kind sk = (knytt_model_kind)knytt__get_u32(h + 12);
		uint32_t sd = knytt__get_u32(h + 16);
		if (!e->kind_set && e->kind != KNYTT_MODEL_EXTERNAL)
			e->kind = sk;
		if (!e->dim_set && sd > 0 && sd <= 4096)
			e->dim = sd;
		if (e->kind != sk || e->dim != sd) {
			knytt_free(blob);
			blob = NULL;
		}
	}
	if (rc == KNYTT_OK && blob) {
		knytt_als *als = NULL;
		knytt_twotower *tt = NULL;
		knytt_lightgcn *lgc = NULL;
		struct knytt__qterms *qm = NULL;
		knytt_sasrec *sr = NULL;
		uint64_t *items = NULL;
		uint32_t n = 0;
		rc = knytt__engine_decode_model(e, blob, size, &als, &tt,
						&lgc, &qm, &sr, &items, &n,
						e->snap->tag);
		if (rc == KNYTT_OK) {
			knytt__snap_blend_from_meta(e->snap, meta);
			e->snap->qm = qm;
			e->snap->sr = sr;
			e->snap->als = als;
			e->snap->tt = tt;
			e->snap->lgc = lgc;
			e->snap->items = items;
			e->snap->nitems = n;
			e->snap->version = version;
			e->serving_eval = sev;
			for (uint32_t i = 0; i < n; i++) {
				uint32_t r = knytt__engine_row(e, items[i]);
				if (r != UINT32_MAX)
					e->items[r].midx = i;
			}
		}
	}
	knytt_free(blob);
	knytt_free(meta);
	if (rc)
		return rc;

	/* The index file saved after training, if it belongs to this model
	 * version; otherwise rebuilt from the model's vectors and saved for
	 * the next open (the CLI opens an engine per command). */
	knytt_index *ix = NULL;
	if (e->snap->version > 0)
		ix = knytt__version_index_load(e, e->snap->version,
					       e->snap->tag);
	if (!ix) {
		if ((rc = knytt__engine_new_index(e, &ix)))
			return rc;
		if ((rc = add_model_vectors(e, ix, e->snap->als, e->snap->tt,
					    e->snap->lgc, e->snap->items,
					    e->snap->nitems))) {
			knytt_index_close(ix);
			return rc;
		}
		if (e->snap->version > 0)
			knytt__version_index_save(e, ix, e->snap->version,
						  e->snap->tag);
	}
	e->snap->ix = ix;
	/* caller-supplied vectors (and items embedded at ingest) */
	rc = knytt__embeddings_changed(e->st, KNYTT_OWNER_ITEM, "caller", 0,
				       caller_vec_cb, e);
	if (rc < 0 && rc != KNYTT_ENOTFOUND)
		return rc;
	/* every indexed label is a live item */
	for (size_t r = 0; r < e->nitems; r++) {
		eitem *it = &e->items[r];
		if (it->deleted && knytt_index_contains(e->snap->ix, it->id))
			knytt_index_remove(e->snap->ix, it->id);
		it->has_vec = knytt_index_contains(e->snap->ix, it->id);
	}
	knytt__rowvec_fill(e);
	return KNYTT_OK;
}

int knytt_engine_open(knytt_engine *e, const char *uri)
{
	if (!e || !uri)
		return knytt__err(KNYTT_EINVAL, "knytt_engine_open: %s is NULL",
				  !e ? "engine" : "uri");
	if (e->is_open)
		return knytt__err(KNYTT_ESTATE, "engine is already open");
	/* a failed open may leave items and lists loaded: only close may
	 * follow it (knytt.h) */
	if (e->open_failed)
		return knytt__err(KNYTT_ESTATE,
				  "a failed knytt_engine_open leaves only "
				  "knytt_engine_close; create a new engine");
	int rc = KNYTT_OK;
	if (e->kind == KNYTT_MODEL_TWOTOWER && e->dim > 1024) {
		rc = knytt__err(KNYTT_EINVAL, "two-tower dim must be <= 1024");
		goto fail;
	}
	if (!e->tenant_name && !(e->tenant_name = dupstr("default"))) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		goto fail;
	}
	e->metric = e->kind == KNYTT_MODEL_EXTERNAL ? KNYTT_METRIC_COSINE
						    : KNYTT_METRIC_IP;
	if ((rc = knytt_store_open(uri, &e->st)))
		goto fail;
	/* the engine's writes go through this connection (the write-behind
	 * thread, upserts), so its memory map survives them */
	knytt__store_set_mapped(e->st, 1);
	/* serving: WAL checkpoints off the request path */
	if ((rc = knytt__store_bg_checkpoint(e->st, 1)))
		goto fail;
	uint64_t tenant = 0;
	rc = knytt_store_tenant_find(e->st, e->tenant_name, &tenant);
	if (rc == KNYTT_ENOTFOUND)
		rc = knytt_store_tenant_create(e->st, e->tenant_name, &tenant);
	if (rc || (rc = knytt_store_use_tenant(e->st, tenant)))
		goto fail;
	e->tenant_id = tenant;
	/* an in-memory database cannot be reached by a second connection:
	 * searches share the engine's */
	e->rd_off = !knytt__store_shareable(e->st);
	if (!(e->uri = dupstr(uri))) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		goto fail;
	}
	/* the engine checks event times against its own now; its store
	 * handle applies the same tolerance (wall clock) */
	e->st->future_tol_ms = e->future_tol_ms;
	/* items (deleted ones too, so their ids never come back) */
	rc = knytt_store_items_changed(e->st, 0, load_item_cb, e);
	if (rc < 0)
		goto fail;
	knytt__cats_prebuild(e);
	int64_t now = knytt__engine_now(e);
	if ((rc = load_popularity(e, now)))
		goto fail;
	/* what the counters hold: the stream below reads at least every
	 * interaction up to this mark (knytt_engine_refresh_trending) */
	if ((rc = knytt_store_interaction_mark(e->st, &e->open_mark)))
		goto fail;
	/* trending: four weeks of history is 28 half-lives of the longest
	 * window, enough for the counters to converge */
	rc = knytt__ix_stream(e->st, now - 28LL * 86400000, trend_seed_cb, e);
	if (rc < 0)
		goto fail;
	knytt__top_build(e, -1);
	if ((rc = load_model_and_index(e)))
		goto fail;
	if (e->fb_async && (rc = knytt__fq_start(e)))
		goto fail;
	e->is_open = 1;
	return KNYTT_OK;
fail:
	e->open_failed = 1;
	knytt_store_close(e->st);
	e->st = NULL;
	knytt__snap_put(e->snap);
	e->snap = NULL;
	return rc;
}

/* --------------------------------------------------------------- ingest */

static int check_open(const knytt_engine *e, const char *fn)
{
	if (!e)
		return knytt__err(KNYTT_EINVAL, "%s: engine is NULL", fn);
	if (!e->is_open)
		return knytt__err(KNYTT_ESTATE, "%s: engine is not open", fn);
	return KNYTT_OK;
}

int knytt__engine_check_open(const knytt_engine *e, const char *fn)
{
	return check_open(e, fn);
}

/* The vector an item gets at ingest when the caller gives none: the
 * model's item tower (a snapshot reference, no lock: the model never
 * changes), else the embedder, called with no lock held (an HTTP round
 * trip). */
static int embed_item(knytt_engine *e, const knytt_item *it, float *out,
		      int *got)
{
	*got = 0;
	knytt__snap *s = knytt__snap_get(e);
	int rc = KNYTT_OK;
	if (s->tt) {
		knytt_twotower_item f = { it->title, it->description,
					  it->category, it->price };
		rc = knytt_twotower_embed_item(s->tt, &f, out);
		*got = rc == KNYTT_OK;
	}
	int tower = s->tt != NULL;
	knytt__snap_put(s);
	if (tower || !e->emb)
		return rc < 0 ? rc : KNYTT_OK;
	size_t lt = it->title ? strlen(it->title) : 0;
	size_t ld = it->description ? strlen(it->description) : 0;
	char *text = malloc(lt + ld + 2);
	if (!text)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	memcpy(text, it->title ? it->title : "", lt);
	text[lt] = ' ';
	memcpy(text + lt + 1, it->description ? it->description : "", ld);
	text[lt + 1 + ld] = '\0';
	const char *texts[1] = { text };
	rc = knytt_embedder_embed(e->emb, 1, texts, out, e->dim);
	free(text);
	if (rc < 0)
		return rc;
	*got = 1;
	return KNYTT_OK;
}

static int check_vec(const knytt_engine *e, const float *vec, uint32_t dim)
{
	if (vec && dim != e->dim)
		return knytt__err(KNYTT_EINVAL,
				  "vector has %u dimensions, engine has %u",
				  dim, e->dim);
	for (uint32_t j = 0; vec && j < dim; j++)
		if (!isfinite(vec[j]))
			return knytt__err(KNYTT_EINVAL,
					  "vector value %u is not finite", j);
	return KNYTT_OK;
}

/* Embeds (if the caller gave no vector), writes the store, then takes
 * the write lock only to update the table and the index. */
int knytt_engine_item_upsert(knytt_engine *e, const knytt_item *item,
			     const float *vec, uint32_t dim)
{
	int rc = check_open(e, "knytt_engine_item_upsert");
	if (rc)
		return rc;
	if (!item)
		return knytt__err(KNYTT_EINVAL, "item is NULL");
	if ((rc = check_vec(e, vec, dim)))
		return rc;
	float *v = malloc(e->dim * sizeof *v);
	if (!v)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	int have = 0;
	if (vec) {
		memcpy(v, vec, e->dim * sizeof *v);
		have = 1;
	}
	/* embed first: if that fails, nothing is written */
	if (!have && (rc = embed_item(e, item, v, &have))) {
		free(v);
		return rc;
	}
	pthread_mutex_lock(&e->st_lock);
	uint64_t id = 0;
	rc = knytt_store_item_upsert(e->st, item, &id);
	knytt_item *stored = NULL;
	if (!rc)
		rc = knytt_store_item_get_id(e->st, id, &stored);
	if (!rc && have)
		rc = knytt_store_embedding_put(e->st, KNYTT_OWNER_ITEM, id,
					       "caller", v, e->dim);
	pthread_mutex_unlock(&e->st_lock);
	pthread_rwlock_wrlock(&e->lock);
	uint32_t row = UINT32_MAX;
	if (!rc)
		rc = table_put(e, stored, &row);
	if (!rc && have) {
		rc = knytt_index_upsert(e->snap->ix, id, v, e->dim);
		if (!rc) {
			knytt__rowvec_set(e, row, v);
			e->items[row].has_vec = 1;
			e->items[row].caller_vec = 1;
		}
	}
	if (!rc && stored->updated_ms > e->synced_ms)
		e->synced_ms = stored->updated_ms;
	pthread_rwlock_unlock(&e->lock);
	knytt_free(stored);
	free(v);
	return rc;
}

int knytt_engine_item_delete(knytt_engine *e, const char *ext_id)
{
	int rc = check_open(e, "knytt_engine_item_delete");
	if (rc)
		return rc;
	if (!ext_id)
		return knytt__err(KNYTT_EINVAL, "item id is NULL");
	/* queued events on the item go in while it is still live */
	knytt__fq_wait(e);
	pthread_mutex_lock(&e->st_lock);
	rc = knytt_store_item_delete(e->st, ext_id);
	pthread_mutex_unlock(&e->st_lock);
	if (rc)
		return rc;
	pthread_rwlock_wrlock(&e->lock);
	uint32_t r = knytt__engine_row_by_ext(e, ext_id);
	if (r != UINT32_MAX) {
		eitem *it = &e->items[r];
		it->deleted = 1;
		if (it->has_vec)
			knytt_index_remove(e->snap->ix, it->id);
		it->has_vec = 0;
		knytt__attrx_set(e->ax, r, NULL); /* frees, cannot fail */
	}
	pthread_rwlock_unlock(&e->lock);
	return rc;
}

/* The items sync read, copied out of the store's callback so the table
 * is updated after the store is done. */
typedef struct synced {
	knytt_item *it;
	size_t n, cap;
} synced;

static int sync_cb(const knytt_item *it, void *ctx)
{
	synced *s = ctx;
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 64;
		knytt_item *x = realloc(s->it, nc * sizeof *x);
		if (!x)
			return 1;
		s->it = x;
		s->cap = nc;
	}
	knytt_item *x = &s->it[s->n];
	*x = *it;
	x->ext_id = dupstr(it->ext_id);
	x->category = it->category ? dupstr(it->category) : NULL;
	x->attributes = it->attributes ? dupstr(it->attributes) : NULL;
	x->title = x->description = x->currency = x->image_url = NULL;
	if (!x->ext_id || (it->category && !x->category) ||
	    (it->attributes && !x->attributes)) {
		free((char *)x->ext_id);
		free((char *)x->category);
		free((char *)x->attributes);
		return 1;
	}
	s->n++;
	return 0;
}

/* Applies what sync read; caller holds the write lock. */
static int sync_apply(knytt_engine *e, const synced *s)
{
	for (size_t i = 0; i < s->n; i++) {
		const knytt_item *it = &s->it[i];
		uint32_t r;
		if (it->updated_ms > e->synced_ms)
			e->synced_ms = it->updated_ms;
		int rc = table_put(e, it, &r);
		if (rc)
			return rc;
		eitem *x = &e->items[r];
		if (x->deleted && x->has_vec) {
			knytt_index_remove(e->snap->ix, x->id);
			x->has_vec = 0;
		}
	}
	return KNYTT_OK;
}

int knytt_engine_sync(knytt_engine *e)
{
	int rc = check_open(e, "knytt_engine_sync");
	if (rc)
		return rc;
	/* popularity is re-read from the store: it must hold every event
	 * the in-memory counters already have */
	knytt__fq_wait(e);
	synced s = { 0 };
	popcounts p = { 0 };
	knytt__vecsync vs;
	pthread_rwlock_rdlock(&e->lock);
	int64_t since = e->synced_ms, vsince = e->vec_synced_ms;
	size_t nitems = e->nitems;
	pthread_rwlock_unlock(&e->lock);
	pthread_mutex_lock(&e->st_lock);
	/* the millisecond of the last sync is read again: rows written later
	 * in that same millisecond are not missed (re-reading is harmless) */
	rc = knytt_store_items_changed(e->st, since, sync_cb, &s);
	if (rc == KNYTT_ECANCELED)
		rc = knytt__err(KNYTT_ENOMEM, "out of memory reading items");
	int visited = rc, r2 = KNYTT_OK;
	if (rc >= 0)
		r2 = read_popularity(e, nitems + s.n, knytt__engine_now(e), &p);
	/* vectors after the items: an item new to this engine gets its
	 * row first, then its vector */
	int r3 = knytt__vecsync_read(e, vsince, &vs);
	pthread_mutex_unlock(&e->st_lock);
	pthread_rwlock_wrlock(&e->lock);
	if (rc >= 0 && (r2 = sync_apply(e, &s)) == KNYTT_OK) {
		apply_popularity(e, &p);
		knytt__top_build(e, NTREND); /* counts may have moved down */
		if (r3 == KNYTT_OK)
			r3 = knytt__vecsync_apply(e, &vs);
	}
	rc = r2 < 0 ? r2 : r3 < 0 ? r3 : visited;
	pthread_rwlock_unlock(&e->lock);
	knytt__vecsync_free(&vs);
	free(p.ids);
	free(p.cnt);
	for (size_t i = 0; i < s.n; i++) {
		free((char *)s.it[i].ext_id);
		free((char *)s.it[i].category);
		free((char *)s.it[i].attributes);
	}
	free(s.it);
	return rc;
}

/* ---------------------------------------------------------------- users */

static uint32_t model_row_of(uint32_t row, void *ctx)
{
	const knytt_engine *e = ctx;
	return e->items[row].midx;
}

static uint32_t vec_row_of(uint32_t row, void *ctx)
{
	const knytt_engine *e = ctx;
	return e->items[row].has_vec ? row : UINT32_MAX;
}

/* Without a model: the weighted mean of the unit item vectors of the
 * fold-in input (engine rows). */
static int mean_of_items(knytt_engine *e, const uint32_t *rows,
			 const float *w, size_t n, float *out)
{
	uint32_t d = e->dim;
	float *v = malloc(d * sizeof *v);
	if (!v)
		return 0;
	int got = 0;
	memset(out, 0, d * sizeof *out);
	for (size_t i = 0; i < n; i++) {
		if (knytt_index_get(e->snap->ix, e->items[rows[i]].id, v, d) !=
		    KNYTT_OK)
			continue;
		knytt__normalize(v, d);
		for (uint32_t j = 0; j < d; j++)
			out[j] += w[i] * v[j];
		got = 1;
	}
	free(v);
	return got;
}

/* The two-tower user tower: the model rows of the history in event order
 * (the tower pools the most recent of them). */
static int tower_of_history(knytt_engine *e, const knytt__profile *u,
			    float *out)
{
	uint32_t *m = malloc((u->nh ? u->nh : 1) * sizeof *m);
	if (!m)
		return 0;
	size_t n = 0;
	for (size_t i = 0; i < u->nh; i++)
		if (e->items[u->hist[i].row].midx != UINT32_MAX)
			m[n++] = e->items[u->hist[i].row].midx;
	int ok = n > 0 && knytt_twotower_embed_user(e->snap->tt,
						    KNYTT_TWOTOWER_NO_USER,
						    m, n, out) == KNYTT_OK;
	free(m);
	return ok;
}

/* Recomputes the long-term taste of @p u from its whole history (the
 * fold-in input: knytt__profile_fold). */
static void refresh_long(knytt_engine *e, knytt__profile *u, int64_t now)
{
	knytt__taste *t = &u->taste;
	t->long_ok = 0;
	u->long_gen = e->snap->gen;
	u->ver++; /* the long-term vector changes: kept answers go */
	if (u->nh == 0)
		return;
	if (e->snap->tt) {
		t->long_ok = tower_of_history(e, u, t->longv);
		return;
	}
	double hl = e->hist_half_life_days * 86400.0;
	size_t cap = u->nh < KNYTT__FOLD_MAX ? u->nh : KNYTT__FOLD_MAX;
	uint32_t *idx = malloc(cap * sizeof *idx);
	float *w = malloc(cap * sizeof *w);
	if (idx && w) {
		size_t n = knytt__profile_fold(u, e->snap->als || e->snap->lgc
							  ? model_row_of
							  : vec_row_of,
					       e, now, hl, cap, idx, w);
		if (e->snap->als && n > 0) {
			memset(t->longv, 0, e->dim * sizeof *t->longv);
			t->long_ok = knytt_als_fold_in(e->snap->als, n, idx, w,
						       t->longv) == KNYTT_OK;
		} else if (e->snap->lgc && n > 0) {
			/* LightGCN propagates the user's items, unweighted
			 * (the graph has no weights) */
			t->long_ok = knytt_lightgcn_fold_in(e->snap->lgc, n,
							    idx, t->longv) ==
				     KNYTT_OK;
		} else if (!e->snap->als && !e->snap->lgc) {
			t->long_ok = mean_of_items(e, idx, w, n, t->longv);
		}
	}
	free(idx);
	free(w);
}

/* Adds one event to the session part of the taste. */
static void session_event(knytt_engine *e, knytt__profile *u,
			  const eitem *it, float w, int64_t ts)
{
	if (!it->has_vec)
		return;
	float *v = malloc(e->dim * sizeof *v);
	if (v && knytt_index_get(e->snap->ix, it->id, v, e->dim) == KNYTT_OK) {
		knytt__taste_session_add(&u->taste, v, e->dim, w, ts,
					 e->sess_half_life, it->id);
		u->ver++; /* the session vector changes */
	}
	free(v);
}

/* A user's stored history as the store gave it, read before any engine
 * lock is taken: one entry per event, oldest first. */
typedef struct rawev {
	uint64_t item;
	float w;
	int64_t ts;
	uint8_t type;
} rawev;

typedef struct rawhist {
	const knytt_engine *e;
	rawev *ev;
	size_t n, cap;
	int rc;
} rawhist;

static int hist_cb(const knytt_interaction *ix, void *ctx)
{
	rawhist *h = ctx;
	if (h->n == h->cap) {
		size_t nc = h->cap ? h->cap * 2 : 64;
		rawev *x = realloc(h->ev, nc * sizeof *x);
		if (!x) {
			h->rc = knytt__err(KNYTT_ENOMEM, "out of memory");
			return 1;
		}
		h->ev = x;
		h->cap = nc;
	}
	h->ev[h->n++] = (rawev){ ix->item_id,
				 (float)knytt__ix_confidence(h->e, ix),
				 ix->ts_ms, (uint8_t)knytt__type_bit(ix->type) };
	return 0;
}

/* Fills new profile @p u from its stored history (every event the store
 * holds, oldest first): the history and seen set, the session replayed
 * from the recent events, the long-term taste.  The store is read with
 * st_lock alone, then the profile built under the engine's read lock. */
int knytt__engine_user_load(knytt_engine *e, knytt__profile *u, int create)
{
	rawhist h = { .e = e };
	pthread_mutex_lock(&e->st_lock);
	int rc = knytt__store_user_events(e->st, u->ext_id, hist_cb, &h);
	pthread_mutex_unlock(&e->st_lock);
	if (rc < 0 && !(rc == KNYTT_ENOTFOUND && create)) {
		if (rc == KNYTT_ENOTFOUND)
			knytt__err(KNYTT_ENOTFOUND, "user '%s' is unknown",
				   u->ext_id);
		rc = h.rc ? h.rc : rc;
		free(h.ev);
		return rc;
	}
	/* the count is known: the history takes no growth slack */
	rc = knytt__profile_reserve(u, h.n);
	pthread_rwlock_rdlock(&e->lock);
	int64_t now = knytt__engine_now(e);
	for (size_t i = 0; i < h.n && !rc; i++) {
		const rawev *x = &h.ev[i];
		uint32_t r = knytt__engine_row(e, x->item);
		if (r == UINT32_MAX)
			continue;
		rc = knytt__profile_add(u, x->item, r, x->w, x->ts, x->type);
		/* the session: events of the last four half-lives */
		if (!rc &&
		    now - x->ts < (int64_t)(4000.0 * e->sess_half_life))
			session_event(e, u, &e->items[r], x->w, x->ts);
	}
	if (!rc)
		refresh_long(e, u, now);
	pthread_rwlock_unlock(&e->lock);
	free(h.ev);
	return rc;
}

void knytt__engine_user_fresh(knytt_engine *e, knytt__profile *u)
{
	if (u->long_gen != e->snap->gen) /* a new model since */
		refresh_long(e, u, knytt__engine_now(e));
}

/* Checks the arguments of a feedback call; fills @p ev (time resolved
 * against the engine's now, weight from the engine's settings).  The
 * error names its field (knytt_engine_feedback_batch reports it). */
int knytt__feedback_event(knytt_engine *e, const char *user,
			  const char *item, const char *type, double value,
			  int64_t ts_ms, knytt_interaction *ev, double *w)
{
	if (!user || !*user || !item || !*item || !type || !*type) {
		const char *f = !user || !*user	  ? "user"
				: !item || !*item ? "item"
						  : "type";
		return knytt__err_field(KNYTT_EINVAL, f,
					"feedback: %s is NULL or empty", f);
	}
	if (!isfinite(value))
		return knytt__err_field(KNYTT_EINVAL, "value",
					"feedback: value is not finite");
	if (ts_ms < 0)
		return knytt__err_field(KNYTT_EINVAL, "ts_ms",
					"feedback: ts_ms is negative");
	int64_t now = knytt__engine_now(e);
	int rc = knytt__ts_check("ts_ms", ts_ms, now,
				 e->future_tol_ms);
	if (rc)
		return rc;
	unsigned t = knytt__type_bit(type);
	memset(ev, 0, sizeof *ev);
	ev->struct_size = sizeof *ev;
	ev->user = user;
	ev->item = item;
	ev->type = type;
	/* stored as an import stores it (the type's default): the engine's
	 * own weight applies when the row is read, as for every row */
	ev->weight = knytt__type_default(t);
	ev->has_value = t == KNYTT__T_RATING;
	ev->value = value;
	ev->ts_ms = ts_ms ? ts_ms : now;
	*w = knytt__ix_confidence(e, ev);
	return KNYTT_OK;
}

/* Counts an event in the item's popularity and trending counters. */
static void count_event(knytt_engine *e, uint32_t r, double w, int64_t ts)
{
	pthread_rwlock_wrlock(&e->stat_lock);
	eitem *it = &e->items[r];
	it->pop += 1;
	trend_add(it, w, ts);
	knytt__top_bump(e, r);
	knytt__win_add(e, r, (float)w, ts, knytt__engine_now(e));
	pthread_rwlock_unlock(&e->stat_lock);
}

void knytt__engine_trend_event(knytt_engine *e, uint32_t r, double w,
			       int64_t ts)
{
	pthread_rwlock_wrlock(&e->stat_lock);
	trend_add(&e->items[r], w, ts);
	knytt__top_bump(e, r);
	knytt__win_add(e, r, (float)w, ts, knytt__engine_now(e));
	pthread_rwlock_unlock(&e->stat_lock);
}

/* The memory work of one stored (or queued) event: counters, history,
 * session and taste.  Caller holds u->mu. */
int knytt__feedback_mem(knytt_engine *e, knytt__profile *u, uint32_t r,
			double w, int64_t ts, unsigned bit)
{
	/* rows are never reused, so r still names the item */
	pthread_rwlock_rdlock(&e->lock);
	count_event(e, r, w, ts);
	eitem *it = &e->items[r];
	int rc = knytt__profile_add(u, it->id, r, (float)w, ts, bit);
	if (!rc) {
		session_event(e, u, it, (float)w, ts);
		int64_t now = knytt__engine_now(e);
		refresh_long(e, u, ts > now ? ts : now);
	}
	pthread_rwlock_unlock(&e->lock);
	knytt__pcache_account(e, u);
	return rc;
}

/*
 * Feedback holds the shopper's profile lock throughout (other shoppers
 * never wait), and the engine's read lock only for memory work: the
 * item check, and the counters, history and taste after the store write.
 */
int knytt_engine_feedback(knytt_engine *e, const char *user,
			  const char *item, const char *type, double value,
			  int64_t ts_ms)
{
	int rc = check_open(e, "knytt_engine_feedback");
	knytt_interaction ev;
	double w = 0;
	if (rc || (rc = knytt__feedback_event(e, user, item, type, value, ts_ms, &ev,
				       &w)))
		return rc;
	int64_t ts = ev.ts_ms;
	/* write-behind: the store's checks now (and an earlier write that
	 * failed: reported instead of recording this event), the insert
	 * later */
	if (e->fq_running && (rc = knytt__fq_check(e, &ev)))
		return rc;
	pthread_rwlock_rdlock(&e->lock);
	uint32_t r = knytt__engine_row_by_ext(e, item);
	int gone = r != UINT32_MAX && e->items[r].deleted;
	pthread_rwlock_unlock(&e->lock);
	if (r == UINT32_MAX || gone)
		return knytt__err(KNYTT_ENOTFOUND, "item '%s' is unknown%s",
				  item, gone ? " (deleted)" : "");
	/* the profile first: a new one is loaded from the store, which must
	 * not hold this event yet (it is stored or queued after) */
	knytt__profile *u = knytt__engine_user(e, user, 1, &rc);
	if (!u)
		return rc;
	pthread_mutex_lock(&u->mu);
	if (e->fq_running) {
		/* not evicted before the writer has stored it: a reload
		 * would not find it in the store */
		if ((rc = knytt__fq_push(e, &ev)) >= 0)
			u->fq_seq = knytt__fq_pushed(e);
	} else {
		rc = knytt__stw_event(e, &ev);
	}
	if (rc < 0)
		goto out;
	/* 1 = stored; no event id here, so no duplicates */
	rc = knytt__feedback_mem(e, u, r, w, ts, knytt__type_bit(type));
out:
	pthread_mutex_unlock(&u->mu);
	knytt__engine_user_put(e, u);
	return rc;
}

/* Whether @p u already holds the event (same item row, time and type);
 * caller holds u->mu.  Newest first: a replayed event is recent. */
static int profile_has(const knytt__profile *u, uint32_t row, int64_t ts,
		       unsigned type)
{
	for (size_t i = u->nh; i-- > 0;)
		if (u->hist[i].row == row && u->hist[i].ts == ts &&
		    u->hist[i].type == type)
			return 1;
	return 0;
}

/*
 * An event another process stored (a replica on the same database):
 * the same memory work as knytt_engine_feedback after its store write,
 * for a profile only if this engine has it loaded -- one loaded later
 * reads the event from the store with the rest of the history.
 */
int knytt_engine_feedback_apply(knytt_engine *e, const char *user,
				const char *item, const char *type,
				double value, int64_t ts_ms)
{
	int rc = check_open(e, "knytt_engine_feedback_apply");
	if (rc)
		return rc;
	if (!user || !*user || !item || !*item || !type || !*type)
		return knytt__err(KNYTT_EINVAL,
				  "feedback_apply: %s is NULL or empty",
				  !user || !*user   ? "user"
				  : !item || !*item ? "item"
						    : "type");
	if (!isfinite(value) || ts_ms <= 0)
		return knytt__err(KNYTT_EINVAL, "feedback_apply: %s",
				  ts_ms <= 0 ? "ts_ms must be > 0"
					     : "value is not finite");
	/* the event's stored weight is the type's default; a value that
	 * came with it is its rating (0: none) */
	knytt_interaction ev = {.struct_size = sizeof ev, .type = type,
				.has_value = value != 0, .value = value};
	double w = knytt__ix_confidence(e, &ev);
	unsigned bit = knytt__type_bit(type);
	pthread_rwlock_rdlock(&e->lock);
	uint32_t r = knytt__engine_row_by_ext(e, item);
	pthread_rwlock_unlock(&e->lock);
	if (r == UINT32_MAX)
		return knytt__err(KNYTT_ENOTFOUND, "item '%s' is unknown",
				  item);
	knytt__profile *u = knytt__engine_user_if_loaded(e, user);
	if (u) {
		pthread_mutex_lock(&u->mu);
		if (profile_has(u, r, ts_ms, bit)) {
			pthread_mutex_unlock(&u->mu);
			knytt__engine_user_put(e, u);
			return 0;
		}
	}
	pthread_rwlock_rdlock(&e->lock);
	count_event(e, r, w, ts_ms);
	if (u) {
		eitem *it = &e->items[r];
		rc = knytt__profile_add(u, it->id, r, (float)w, ts_ms, bit);
		if (!rc) {
			session_event(e, u, it, (float)w, ts_ms);
			int64_t now = knytt__engine_now(e);
			refresh_long(e, u, ts_ms > now ? ts_ms : now);
		}
	}
	pthread_rwlock_unlock(&e->lock);
	if (u) {
		knytt__pcache_account(e, u);
		pthread_mutex_unlock(&u->mu);
		knytt__engine_user_put(e, u);
	}
	return rc ? rc : 1;
}

/* Applies the events of @p h that @p u lacks; caller holds u->mu and
 * lock (read).  How many were applied. */
static int refresh_one(knytt_engine *e, knytt__profile *u, const rawhist *h)
{
	int applied = 0;
	for (size_t i = 0; i < h->n; i++) {
		const rawev *x = &h->ev[i];
		uint32_t r = knytt__engine_row(e, x->item);
		/* the seen mask answers most of them without a scan */
		if (r == UINT32_MAX ||
		    ((knytt__profile_seen(u, x->item) >> x->type & 1) &&
		     profile_has(u, r, x->ts, x->type)))
			continue;
		if (knytt__profile_add(u, x->item, r, x->w, x->ts, x->type))
			break;
		count_event(e, r, x->w, x->ts);
		session_event(e, u, &e->items[r], x->w, x->ts);
		applied++;
	}
	if (applied)
		refresh_long(e, u, knytt__engine_now(e));
	return applied;
}

/*
 * Another process's events this engine was never told of (a replica
 * whose notifications were lost): every loaded profile is compared with
 * the history the store holds, whatever the events' times, and what it
 * lacks is applied as by knytt_engine_feedback_apply.
 */
int knytt_engine_refresh_users(knytt_engine *e)
{
	int rc = check_open(e, "knytt_engine_refresh_users");
	if (rc)
		return rc;
	size_t n;
	/* a reference to each: none is evicted while it is compared */
	knytt__profile **us = knytt__engine_users_held(e, &n);
	if (!us)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	int applied = 0;
	for (size_t k = 0; k < n; k++) {
		knytt__profile *u = us[k];
		rawhist h = { .e = e };
		int got = KNYTT_OK;
		if (!rc) {
			pthread_mutex_lock(&e->st_lock);
			got = knytt__store_user_events(e->st, u->ext_id,
						       hist_cb, &h);
			pthread_mutex_unlock(&e->st_lock);
		}
		if (got < 0 && got != KNYTT_ENOTFOUND)
			rc = h.rc ? h.rc : got;
		if (!rc) {
			/* (one still loading reads the store itself) */
			pthread_mutex_lock(&u->mu);
			if (u->state == KNYTT__PROF_READY) {
				pthread_rwlock_rdlock(&e->lock);
				applied += refresh_one(e, u, &h);
				pthread_rwlock_unlock(&e->lock);
				knytt__pcache_account(e, u);
			}
			pthread_mutex_unlock(&u->mu);
		}
		free(h.ev);
		knytt__engine_user_put(e, us[k]);
	}
	free(us);
	return rc ? rc : applied;
}
