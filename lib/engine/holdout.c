/*
 * holdout.c -- the evaluation of a new model on the tenant's own recent
 * data, and which stored version is the one to serve.
 *
 * Protocol: leave-last-out with sampled negatives (He et al., NCF, WWW
 * 2017, section 4.1).  The most recently active shoppers are the test
 * users because a shop cares how the model does on what shoppers do now,
 * not on the tail of years-old accounts; each one's last item is held
 * out (every event on it, or the model would have seen the answer) and
 * ranked against items the shopper never touched.  The negatives come
 * from a generator with a fixed seed, so two trainings on the same data
 * draw the same test and their metrics compare like for like.
 *
 * The gate compares the new NDCG@10 with the one recorded for the model
 * serving when it was trained.  The two test sets differ (the data moved
 * on), which is the price of evaluating each model once, on data it did
 * not see; evaluating the serving model again on the new test would
 * flatter it, since it was trained on most of those held-out events.
 */
#include "engine_int.h"

#include "../vec/vec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NEG_MAX 99
#define CUT 10
#define SEED 0x6b6e797474ULL

void knytt__holdout_free(knytt__holdout *h)
{
	free(h->drop);
	knytt_loo_close(h->test);
	memset(h, 0, sizeof *h);
}

typedef struct cand {
	uint32_t user;
	int64_t ts; /* of the last event */
	size_t last;
} cand;

static int by_recent(const void *a, const void *b)
{
	const cand *x = a, *y = b;
	if (x->ts != y->ts)
		return x->ts > y->ts ? -1 : 1;
	return x->user < y->user ? -1 : x->user > y->user;
}

static int u32cmp(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* The chosen users (slot[u] < nc), most recent first. */
static cand *choose(const uint32_t *u, const int64_t *ts, size_t n,
		    uint32_t nusers, unsigned max_users, size_t *nc)
{
	size_t *last = malloc((size_t)nusers * sizeof *last);
	uint32_t *cnt = calloc(nusers, sizeof *cnt);
	cand *c = malloc(((size_t)nusers ? nusers : 1) * sizeof *c);
	*nc = 0;
	if (!last || !cnt || !c) {
		free(last);
		free(cnt);
		free(c);
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t x = u[i];
		if (cnt[x]++ == 0 || ts[i] >= ts[last[x]])
			last[x] = i;
	}
	for (uint32_t x = 0; x < nusers; x++)
		if (cnt[x] >= 2)
			c[(*nc)++] = (cand){x, ts[last[x]], last[x]};
	qsort(c, *nc, sizeof *c, by_recent);
	if (*nc > max_users)
		*nc = max_users;
	free(last);
	free(cnt);
	return c;
}

/* Marks the held-out events; a user left with nothing to train on is
 * dropped from the test (its events go back). */
static void mark(const uint32_t *u, const uint32_t *it, size_t n,
		 cand *c, size_t *nc, const uint32_t *slot, uint8_t *drop,
		 uint32_t *kept)
{
	for (size_t i = 0; i < n; i++) {
		uint32_t s = slot[u[i]];
		if (s == UINT32_MAX)
			continue;
		if (it[i] == it[c[s].last])
			drop[i] = 1;
		else
			kept[s]++;
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t s = slot[u[i]];
		if (s != UINT32_MAX && !kept[s])
			drop[i] = 0;
	}
	size_t m = 0;
	for (size_t s = 0; s < *nc; s++)
		if (kept[s])
			c[m++] = c[s];
	*nc = m;
}

int knytt__holdout_make(const uint32_t *u, const uint32_t *it,
			const int64_t *ts, size_t n, uint32_t nusers,
			uint32_t nitems, unsigned max_users,
			knytt__holdout *out)
{
	memset(out, 0, sizeof *out);
	size_t nc;
	cand *c = choose(u, ts, n, nusers, max_users, &nc);
	uint32_t *slot = malloc(((size_t)nusers ? nusers : 1) * sizeof *slot);
	uint32_t *kept = calloc(nc ? nc : 1, sizeof *kept);
	out->drop = calloc(n ? n : 1, 1);
	size_t nneg = nitems / 2 < NEG_MAX ? nitems / 2 : NEG_MAX;
	/* per test user: its items, sorted (the negatives avoid them) */
	size_t *off = calloc(nc + 1, sizeof *off);
	uint32_t *items = NULL, *tu = NULL, *ti = NULL, *neg = NULL;
	int rc = KNYTT_OK;
	if (!c || !slot || !kept || !out->drop || !off) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory (evaluation)");
		goto out;
	}
	if (nneg == 0)
		goto out; /* one item: nothing to rank against */
	memset(slot, 0xff, (size_t)nusers * sizeof *slot);
	for (size_t s = 0; s < nc; s++)
		slot[c[s].user] = (uint32_t)s;
	mark(u, it, n, c, &nc, slot, out->drop, kept);
	memset(slot, 0xff, (size_t)nusers * sizeof *slot);
	for (size_t s = 0; s < nc; s++)
		slot[c[s].user] = (uint32_t)s;
	if (nc == 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (slot[u[i]] != UINT32_MAX)
			off[slot[u[i]] + 1]++;
	for (size_t s = 0; s < nc; s++)
		off[s + 1] += off[s];
	items = malloc((off[nc] ? off[nc] : 1) * sizeof *items);
	tu = malloc(nc * sizeof *tu);
	ti = malloc(nc * sizeof *ti);
	neg = malloc(nc * nneg * sizeof *neg);
	size_t *fill = calloc(nc, sizeof *fill);
	if (!items || !tu || !ti || !neg || !fill) {
		free(fill);
		rc = knytt__err(KNYTT_ENOMEM, "out of memory (evaluation)");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		uint32_t s = slot[u[i]];
		if (s != UINT32_MAX)
			items[off[s] + fill[s]++] = it[i];
	}
	free(fill);
	uint64_t rng = SEED;
	size_t m = 0;
	for (size_t s = 0; s < nc; s++) {
		uint32_t *own = items + off[s];
		size_t no = off[s + 1] - off[s], got = 0;
		qsort(own, no, sizeof *own, u32cmp);
		uint32_t *ng = neg + m * nneg;
		for (size_t tries = 0; got < nneg && tries < 50 * nneg;
		     tries++) {
			uint32_t x = (uint32_t)(knytt__rand64(&rng) % nitems);
			int dup = bsearch(&x, own, no, sizeof x, u32cmp) != NULL;
			for (size_t k = 0; k < got && !dup; k++)
				dup = ng[k] == x;
			if (!dup)
				ng[got++] = x;
		}
		if (got < nneg)
			continue; /* a shopper who touched nearly everything */
		tu[m] = c[s].user;
		ti[m] = it[c[s].last];
		m++;
	}
	if (m)
		rc = knytt_loo_create(m, tu, ti, nneg, neg, &out->test);
	out->ncases = rc ? 0 : m;
out:
	free(c);
	free(slot);
	free(kept);
	free(off);
	free(items);
	free(tu);
	free(ti);
	free(neg);
	if (rc)
		knytt__holdout_free(out);
	return rc;
}

/* Two-tower scoring: user vector = weighted mean of the vectors of its
 * training items (the engine's own fold of a history into the item
 * space), score = dot product with the item tower's vector. */
typedef struct ttscore {
	const float *item; /* nitems x dim */
	const float *user; /* nusers x dim, zero for users without events */
	uint32_t dim, nitems;
} ttscore;

static int tt_scorer(void *ctx, uint32_t user, const uint32_t *items,
		     size_t n, float *out)
{
	const ttscore *t = ctx;
	const knytt__vec_ops *ops = knytt__vec();
	const float *uv = t->user + (size_t)user * t->dim;
	for (size_t k = 0; k < n; k++) {
		uint32_t x = items ? items[k] : (uint32_t)k;
		if (x >= t->nitems)
			return knytt__err(KNYTT_EINVAL, "item out of range");
		out[k] = ops->dot(uv, t->item + (size_t)x * t->dim, t->dim);
	}
	return 0;
}

static int tt_eval(const knytt__holdout *h, knytt_twotower *tt, uint32_t dim,
		   const uint32_t *u, const uint32_t *it, const float *w,
		   size_t n, uint32_t nusers, uint32_t nitems,
		   knytt_metrics *out)
{
	float *iv = malloc((size_t)nitems * dim * sizeof *iv);
	float *uv = calloc((size_t)nusers * dim, sizeof *uv);
	int rc = KNYTT_OK;
	if (!iv || !uv) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory (evaluation)");
		goto out;
	}
	rc = knytt_twotower_item_embeddings(tt, iv, nitems);
	if (rc < 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		float *x = uv + (size_t)u[i] * dim;
		const float *y = iv + (size_t)it[i] * dim;
		for (uint32_t d = 0; d < dim; d++)
			x[d] += w[i] * y[d];
	}
	ttscore t = {iv, uv, dim, nitems};
	rc = knytt_eval_loo(h->test, CUT, tt_scorer, &t, NULL, out);
out:
	free(iv);
	free(uv);
	return rc;
}

int knytt__holdout_eval(const knytt__holdout *h, knytt_als *als,
			knytt_twotower *tt, knytt_lightgcn *lgc, uint32_t dim,
			const uint32_t *u, const uint32_t *it, const float *w,
			size_t n, uint32_t nusers, uint32_t nitems,
			knytt_metrics *out)
{
	memset(out, 0, sizeof *out);
	if (!h->test)
		return KNYTT_OK;
	if (als)
		return knytt_eval_loo(h->test, CUT, knytt_als_scorer, als,
				      NULL, out);
	if (lgc) /* users' propagated embeddings against items' */
		return knytt_eval_loo(h->test, CUT, knytt_lightgcn_scorer,
				      lgc, NULL, out);
	return tt_eval(h, tt, dim, u, it, w, n, nusers, nitems, out);
}

/* ---------------------------------------------------- serving version */

/* A number after "key": in a metadata JSON text, or @p def. */
static double meta_num(const char *meta, const char *key, double def)
{
	const char *p = meta ? strstr(meta, key) : NULL;
	if (!p)
		return def;
	char *end;
	double v = strtod(p + strlen(key), &end);
	return end == p + strlen(key) ? def : v;
}

/* How far back to look for a promoted version: the gate keeps the
 * serving version when it prunes (train.c), so it is within reach. */
#define LOOK_BACK 1000

int knytt__serving_version(knytt_store *st, int64_t *version,
			   knytt_train_eval *ev)
{
	*version = 0;
	memset(ev, 0, sizeof *ev);
	ev->struct_size = sizeof *ev;
	int64_t v = 0, got = 0;
	for (int i = 0; i < LOOK_BACK; i++) {
		char *meta = NULL;
		int rc = knytt_store_model_get(st, "engine-model", v, NULL,
					       NULL, &meta, &got, NULL);
		if (rc == KNYTT_ENOTFOUND)
			return KNYTT_OK; /* none, or none promoted */
		if (rc)
			return rc;
		int held = meta && strstr(meta, "\"promoted\":false");
		if (!held) {
			*version = got;
			ev->version = got;
			ev->promoted = 1;
			ev->users = (size_t)meta_num(meta, "\"test_users\":", 0);
			ev->negatives =
				(size_t)meta_num(meta, "\"negatives\":", 0);
			ev->hr = meta_num(meta, "\"hr10\":", 0);
			ev->ndcg = meta_num(meta, "\"ndcg10\":", 0);
			knytt_free(meta);
			return KNYTT_OK;
		}
		knytt_free(meta);
		if (got <= 1)
			return KNYTT_OK;
		v = got - 1;
	}
	return KNYTT_OK;
}

/* ------------------------------------------------------------- public */

int knytt_engine_set_train_eval(knytt_engine *e, unsigned users,
				double margin)
{
	if (!e)
		return knytt__err(KNYTT_EINVAL, "engine is NULL");
	if (users > 1000000 || !isfinite(margin))
		return knytt__err(KNYTT_EINVAL,
				  "train eval: users must be 0..1000000 and "
				  "margin finite");
	pthread_mutex_lock(&e->train_mu);
	e->eval_users = users;
	e->eval_margin = margin;
	pthread_mutex_unlock(&e->train_mu);
	return KNYTT_OK;
}

int knytt_engine_train_eval(knytt_engine *e, int serving,
			    knytt_train_eval *out)
{
	if (!e || !out)
		return knytt__err(KNYTT_EINVAL, "train_eval: %s is NULL",
				  !e ? "engine" : "out");
	size_t want = out->struct_size;
	if (want < offsetof(knytt_train_eval, compared_version))
		return knytt__err(KNYTT_EINVAL,
				  "train_eval: struct_size is %zu, set it "
				  "to sizeof(knytt_train_eval)",
				  want);
	pthread_mutex_lock(&e->train_mu);
	knytt_train_eval ev = serving ? e->serving_eval : e->last_eval;
	pthread_mutex_unlock(&e->train_mu);
	ev.struct_size = want < sizeof ev ? want : sizeof ev;
	memcpy(out, &ev, ev.struct_size);
	out->struct_size = want;
	return KNYTT_OK;
}
