/*
 * seqmodel.c -- SASRec as the engine's session model
 * (knytt_engine_set_sasrec): trained by the training job on every
 * shopper's events in time order, stored in the engine-model blob,
 * served from the snapshot, and blended into recommend as the session's
 * list of next items.
 *
 * Training.  The job's interactions become one sequence per shopper
 * (dense items, oldest first; events at the same time keep the store's
 * order).  With tuning on, the tuner (lib/model/tune.c, seq_step) calls
 * back here: a model with the library's early stopping fits the events
 * before the validation cut (seq_fit), and each validation shopper's
 * list is the model's best items after his sequence before the cut
 * (seq_list), so the blend weight is chosen on the period after it as
 * recommend will use it.  The refit on every event then trains for the
 * epochs the early stopping kept.  Without a validation (tuning off,
 * too little data) the model trains for the maximum epochs and the
 * weight is the fixed one (KNYTT_ENGINE_DEFAULT_SASREC_WEIGHT unless
 * set).
 *
 * Serving.  The sequence is the shopper's history as the profile holds
 * it (the last max_len events no later than "now" on items the model
 * knows, by time), so an event fed back moves the next answer at once:
 * no retraining, no state beyond the history.  One encode per
 * recommendation (O(L d^2) per block), then one dot product per model
 * item (O(items x d): 1,682 x 50 on ML-100K; 1M items x 50 would be
 * some ms, the part to bound first on a large catalog), and the best
 * items passing the query's filter and exclusions are kept in a heap.
 * The whole recommend call on ML-100K's model: 269-381 us with the
 * session model against 20-59 us without (benchmarks/train/run
 * --pipeline --sasrec prints the mean call; time_bench --sasrec-weight
 * 0.3 forces it in).
 */
#include "seqmodel.h"
#include "query.h"

#include "../model/blend.h"
#include "../vec/topk.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The model's settings: the paper's block structure at d = 50 and the
 * last 50 items; a learning rate of 0.005, five times the paper's,
 * because a shop's data gives few batches per epoch (ML-100K: 8): at
 * 0.001 the validation NDCG@10 of ML-100K climbed for 80 epochs and
 * more, at 0.005 it is as high by epoch 25. */
#define SEQ_DIM 50
#define SEQ_BLOCKS 2
#define SEQ_LEN 50
#define SEQ_LR 0.005f
/* early stopping on the validation fit: every 5 epochs, patience 2 */
#define SEQ_EVERY 5
#define SEQ_PATIENCE 2

typedef struct evref {
	uint32_t user;
	uint32_t pos; /* input order, for a stable sort */
	int64_t ts;
} evref;

static int cmp_ev(const void *a, const void *b)
{
	const evref *x = a, *y = b;
	if (x->user != y->user)
		return x->user < y->user ? -1 : 1;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return (x->pos > y->pos) - (x->pos < y->pos);
}

int knytt__seq_init(knytt__seqjob *q, knytt_engine *e, const uint32_t *u,
		    const uint32_t *it, const int64_t *ts, size_t n,
		    uint32_t nusers, uint32_t nitems)
{
	memset(q, 0, sizeof *q);
	q->e = e;
	q->nusers = nusers;
	q->nitems = nitems;
	evref *r = malloc((n ? n : 1) * sizeof *r);
	q->off = calloc((size_t)nusers + 1, sizeof *q->off);
	q->items = malloc((n ? n : 1) * sizeof *q->items);
	q->ts = malloc((n ? n : 1) * sizeof *q->ts);
	q->cut_len = calloc(nusers ? nusers : 1, sizeof *q->cut_len);
	q->sc = malloc((nitems ? nitems : 1) * sizeof *q->sc);
	if (!r || !q->off || !q->items || !q->ts || !q->cut_len || !q->sc) {
		free(r);
		knytt__seq_free(q);
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	}
	for (size_t j = 0; j < n; j++)
		r[j] = (evref){u[j], (uint32_t)j, ts[j]};
	qsort(r, n, sizeof *r, cmp_ev);
	for (size_t j = 0; j < n; j++) {
		q->off[r[j].user + 1]++;
		q->items[j] = it[r[j].pos];
		q->ts[j] = r[j].ts;
	}
	for (uint32_t x = 0; x < nusers; x++)
		q->off[x + 1] += q->off[x];
	free(r);
	return KNYTT_OK;
}

void knytt__seq_free(knytt__seqjob *q)
{
	free(q->off);
	free(q->items);
	free(q->ts);
	free(q->cut_len);
	free(q->sc);
	free(q->heap);
	knytt_sasrec_close(q->val);
	memset(q, 0, sizeof *q);
}

/* A model with the engine's settings (early stopping when @p stop). */
static int seq_new(const knytt__seqjob *q, unsigned epochs, int stop,
		   knytt_sasrec **out)
{
	knytt_sasrec *s = NULL;
	int rc;
	if ((rc = knytt_sasrec_create(&s)) ||
	    (rc = knytt_sasrec_set_dim(s, SEQ_DIM)) ||
	    (rc = knytt_sasrec_set_blocks(s, SEQ_BLOCKS)) ||
	    (rc = knytt_sasrec_set_max_len(s, SEQ_LEN)) ||
	    (rc = knytt_sasrec_set_learning_rate(s, SEQ_LR)) ||
	    (rc = knytt_sasrec_set_epochs(s, epochs)) ||
	    (rc = knytt_sasrec_set_threads(s, q->e->threads)) ||
	    (stop && (rc = knytt_sasrec_set_early_stop(s, SEQ_EVERY,
						       SEQ_PATIENCE)))) {
		knytt_sasrec_close(s);
		return rc;
	}
	*out = s;
	return KNYTT_OK;
}

/* The tuner's fit: the events before @p cut, early stopping on. */
static int seq_fit(void *ctx, int64_t cut)
{
	knytt__seqjob *q = ctx;
	size_t *off = malloc(((size_t)q->nusers + 1) * sizeof *off);
	uint32_t *items = malloc((q->off[q->nusers] + 1) * sizeof *items);
	int rc = !off || !items ? knytt__err(KNYTT_ENOMEM, "out of memory")
				: KNYTT_OK;
	size_t n = 0, long3 = 0;
	for (uint32_t u = 0; u < q->nusers && !rc; u++) {
		off[u] = n;
		size_t a = q->off[u], b = q->off[u + 1], l = 0;
		while (a + l < b && q->ts[a + l] < cut)
			l++;
		memcpy(items + n, q->items + a, l * sizeof *items);
		n += l;
		q->cut_len[u] = (uint32_t)l;
		long3 += l >= 3;
	}
	if (!rc) {
		off[q->nusers] = n;
		/* early stopping needs a sequence of 3 items */
		if (long3 == 0)
			rc = knytt__err(KNYTT_EINVAL,
					"SASRec: no shopper has 3 events "
					"before the validation period");
	}
	knytt_sasrec_close(q->val);
	q->val = NULL;
	if (!rc && !(rc = seq_new(q, q->e->sasrec_epochs, 1, &q->val)))
		rc = knytt_sasrec_train(q->val, q->nitems, q->nusers, off,
					items);
	if (!rc) {
		double hr = 0, nd = 0;
		rc = knytt_sasrec_validation(q->val, 1, &q->epochs, &hr, &nd);
		q->val_ndcg10 = nd;
	}
	if (rc) {
		knytt_sasrec_close(q->val);
		q->val = NULL;
		q->epochs = 0;
	}
	free(off);
	free(items);
	return rc;
}

/* The tuner's list: user's best @p depth items not marked, after his
 * sequence before the cut. */
static int seq_list(void *ctx, uint32_t user, const unsigned char *mark,
		    size_t depth, uint64_t *out, size_t *n)
{
	knytt__seqjob *q = ctx;
	*n = 0;
	size_t l = q->cut_len[user];
	if (!q->val || l == 0)
		return KNYTT_OK;
	const uint32_t *seq = q->items + q->off[user];
	int rc = knytt_sasrec_score(q->val, seq, l, NULL, q->nitems, q->sc);
	if (rc)
		return rc;
	if (depth > q->heap_cap) { /* once: every call asks the same depth */
		knytt__pair *h = realloc(q->heap, depth * sizeof *h);
		if (!h)
			return knytt__err(KNYTT_ENOMEM, "out of memory");
		q->heap = h;
		q->heap_cap = depth;
	}
	knytt__topk top = {q->heap, 0, depth};
	for (uint32_t i = 0; i < q->nitems; i++)
		if (!mark[i] && isfinite(q->sc[i]))
			knytt__topk_push(&top, -q->sc[i], i);
	*n = knytt__topk_drain(&top, out, NULL);
	return KNYTT_OK;
}

void knytt__seq_tune(knytt__seqjob *q, knytt__tune_seq *t)
{
	t->fit = seq_fit;
	t->list = seq_list;
	t->ctx = q;
}

int knytt__seq_train(knytt__seqjob *q, knytt_progress_fn fn, void *ctx,
		     knytt_sasrec **out)
{
	*out = NULL;
	unsigned epochs = q->epochs ? q->epochs : q->e->sasrec_epochs;
	knytt_sasrec *s = NULL;
	int rc = seq_new(q, epochs, 0, &s);
	if (!rc && fn)
		rc = knytt_sasrec_set_progress(s, fn, ctx);
	if (!rc)
		rc = knytt_sasrec_train(s, q->nitems, q->nusers, q->off,
					q->items);
	if (rc) {
		knytt_sasrec_close(s);
		return rc;
	}
	q->trained_epochs = epochs;
	*out = s;
	return KNYTT_OK;
}

/* ------------------------------------------------------------- serving */

/* The shopper's sequence for the model: the last @p cap events of his
 * history no later than @p now on items the model knows, oldest first
 * (the history is kept in the order events arrived; a late event is put
 * in its place by time).  Returns the count. */
static size_t user_seq(const knytt_engine *e, const knytt__profile *u,
		       int64_t now, size_t cap, uint32_t *seq, int64_t *ts)
{
	size_t n = 0;
	for (size_t i = u->nh; i-- > 0 && n < cap;) {
		const knytt__hev *h = &u->hist[i];
		uint32_t m = e->items[h->row].midx;
		if (m == UINT32_MAX || h->ts > now)
			continue;
		seq[n] = m;
		ts[n++] = h->ts;
	}
	/* newest first now: reverse, then insertion sort by time (stable,
	 * and nearly sorted already) */
	for (size_t i = 0; i < n / 2; i++) {
		uint32_t s = seq[i];
		int64_t t = ts[i];
		seq[i] = seq[n - 1 - i];
		ts[i] = ts[n - 1 - i];
		seq[n - 1 - i] = s;
		ts[n - 1 - i] = t;
	}
	for (size_t i = 1; i < n; i++) {
		uint32_t s = seq[i];
		int64_t t = ts[i];
		size_t j = i;
		while (j > 0 && ts[j - 1] > t) {
			seq[j] = seq[j - 1];
			ts[j] = ts[j - 1];
			j--;
		}
		seq[j] = s;
		ts[j] = t;
	}
	return n;
}

int knytt__seq_list(knytt_engine *e, qctx *c, const knytt__profile *u,
		    int64_t now, size_t kk, knytt_result *out, size_t *n)
{
	*n = 0;
	const knytt__snap *sn = c->snap;
	size_t ni = sn->nitems, L = knytt_sasrec_max_len(sn->sr);
	/* one block per call, 8-byte parts first: heap, ids and ts, then
	 * the scores, the distances and the sequence */
	unsigned char *blk = malloc(kk * (sizeof(knytt__pair) +
					  sizeof(uint64_t) + sizeof(float)) +
				    L * (sizeof(int64_t) + sizeof(uint32_t)) +
				    ni * sizeof(float) + 1);
	if (!blk)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	knytt__pair *heap = (knytt__pair *)(void *)blk;
	uint64_t *ids = (uint64_t *)(void *)(heap + kk);
	int64_t *ts = (int64_t *)(void *)(ids + kk);
	float *sc = (float *)(void *)(ts + L);
	float *neg = sc + ni;
	uint32_t *seq = (uint32_t *)(void *)(neg + kk);
	int rc = KNYTT_OK;
	size_t len = user_seq(e, u, now, L, seq, ts);
	if (len == 0 || ni != knytt_sasrec_items(sn->sr))
		goto out;
	if ((rc = knytt_sasrec_score(sn->sr, seq, len, NULL, ni, sc)))
		goto out;
	/* the filter is checked only for an item that would enter the
	 * heap: a comparison per item, a lookup for the few that beat the
	 * worst kept */
	knytt__topk top = {heap, 0, kk};
	for (uint32_t m = 0; m < (uint32_t)ni; m++) {
		float d = -sc[m];
		if (!(d < knytt__topk_worst(&top)))
			continue;
		uint32_t r = knytt__engine_row(e, sn->items[m]);
		if (r == UINT32_MAX || !knytt__q_item_passes(c, &e->items[r]))
			continue;
		knytt__topk_push(&top, d, r);
	}
	size_t got = knytt__topk_drain(&top, ids, neg);
	uint64_t because = sn->items[seq[len - 1]];
	for (size_t i = 0; i < got; i++)
		knytt__q_fill(e, &out[i], (uint32_t)ids[i], -(double)neg[i],
			      KNYTT_REASON_SESSION, because);
	*n = got;
out:
	free(blk);
	return rc;
}
