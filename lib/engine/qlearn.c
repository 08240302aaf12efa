/*
 * qlearn.c -- the training job's part that learns what search words mean
 * (the model is lib/model/qterms.c): query -> item pairs from the search
 * log and the events that followed searches.
 *
 * Attribution, as search analytics does it (lib/store/analytics.c) but
 * not limited to the results shown: a click, add to cart, favorite or
 * purchase belongs to its shopper's latest search at or before it,
 * within 30 minutes.  Whether the item was among the results does not
 * matter here -- a shopper who searched "sneakers", found nothing and
 * then bought a running shoe from the category page is exactly what
 * keyword search cannot learn and this can.  An explicit click
 * (knytt_store_search_click) pairs anonymous searches too.
 *
 * The searches are read into memory once (~24 bytes each plus their
 * distinct texts); the interactions stream past in the job's own pass.
 */
#include "engine_int.h"
#include "qlearn.h"

#include "../store/store_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#define WINDOW_MS (30LL * 60 * 1000)
/* Fewer pairs than this teach nothing reliable: the words would point at
 * whatever few items happened to follow them. */
#define MIN_PAIRS 20

static int intern(knytt__qlearn *q, const char *text, uint32_t *out)
{
	uint64_t h = knytt__hash_str(text);
	uint32_t t = knytt__lmap_get(&q->tmap, h);
	if (t != LMAP_EMPTY && strcmp(q->texts[t], text) == 0) {
		*out = t;
		return KNYTT_OK;
	}
	if (KNYTT__GROW(q->texts, q->captexts, q->ntexts + 1))
		return KNYTT_ENOMEM;
	size_t n = strlen(text);
	char *c = malloc(n + 1);
	if (!c)
		return KNYTT_ENOMEM;
	memcpy(c, text, n + 1);
	/* a 64-bit hash collision keeps the first text in the map; the
	 * second is stored, just not shared */
	if (t == LMAP_EMPTY &&
	    knytt__lmap_put(&q->tmap, h, (uint32_t)q->ntexts)) {
		free(c);
		return KNYTT_ENOMEM;
	}
	q->texts[q->ntexts] = c;
	*out = (uint32_t)q->ntexts++;
	return KNYTT_OK;
}

static int add_pair(knytt__qlearn *q, uint32_t text, uint64_t item, float w)
{
	if (KNYTT__GROW(q->p, q->capp, q->np + 1))
		return KNYTT_ENOMEM;
	q->p[q->np].text = text;
	q->p[q->np].item = item;
	q->p[q->np].w = w;
	q->np++;
	return KNYTT_OK;
}

typedef struct load_ctx {
	knytt__qlearn *q;
	float click_w;
	int rc;
} load_ctx;

static int load_cb(const char *query, uint64_t user, int64_t ts,
		   uint64_t clicked, void *ctx)
{
	load_ctx *l = ctx;
	knytt__qlearn *q = l->q;
	uint32_t t;
	q->nsearches++;
	if (!user && !clicked)
		return 0; /* nothing can follow an anonymous search */
	if ((l->rc = intern(q, query, &t)))
		return 1;
	if (clicked && (l->rc = add_pair(q, t, clicked, l->click_w)))
		return 1;
	if (!user)
		return 0;
	if (KNYTT__GROW(q->s, q->caps, q->ns + 1)) {
		l->rc = KNYTT_ENOMEM;
		return 1;
	}
	q->s[q->ns].user = user;
	q->s[q->ns].ts = ts;
	q->s[q->ns].text = t;
	q->s[q->ns].seq = (uint32_t)q->ns;
	q->ns++;
	return 0;
}

static int cmp_srch(const void *a, const void *b)
{
	const knytt__qsrch *x = a, *y = b;
	if (x->user != y->user)
		return x->user < y->user ? -1 : 1;
	if (x->ts != y->ts)
		return x->ts < y->ts ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

int knytt__qlearn_load(knytt__qlearn *q, const knytt_engine *e,
		       knytt_store *st)
{
	memset(q, 0, sizeof *q);
	load_ctx l = {q, (float)e->w_type[KNYTT__T_CLICK], KNYTT_OK};
	int rc = knytt__search_log_each(st, load_cb, &l);
	if (l.rc)
		return knytt__err(KNYTT_ENOMEM, "out of memory (search log)");
	if (rc < 0)
		return rc;
	/* equal times keep the log's order (seq), so the later entry takes
	 * the event: the latest search wins */
	if (q->ns > 1)
		qsort(q->s, q->ns, sizeof *q->s, cmp_srch);
	return KNYTT_OK;
}

int knytt__qlearn_event(knytt__qlearn *q, const knytt_interaction *ix,
			double w)
{
	unsigned t = knytt__type_bit(ix->type);
	if (!q->ns || !(w > 0) ||
	    (t != KNYTT__T_CLICK && t != KNYTT__T_CART &&
	     t != KNYTT__T_PURCHASE && t != KNYTT__T_FAVORITE))
		return KNYTT_OK;
	/* the shopper's last search at or before the event */
	size_t lo = 0, hi = q->ns;
	while (lo < hi) {
		size_t m = lo + (hi - lo) / 2;
		const knytt__qsrch *s = &q->s[m];
		if (s->user < ix->user_id ||
		    (s->user == ix->user_id && s->ts <= ix->ts_ms))
			lo = m + 1;
		else
			hi = m;
	}
	if (lo == 0)
		return KNYTT_OK;
	const knytt__qsrch *s = &q->s[lo - 1];
	if (s->user != ix->user_id || ix->ts_ms - s->ts > WINDOW_MS)
		return KNYTT_OK;
	return add_pair(q, s->text, ix->item_id, (float)w);
}

/* The pairs' items as rows of a vector table read from the index. */
static int item_vectors(knytt__qlearn *q, uint32_t dim, knytt_index *ix,
			knytt__qpair *pp, float **vecs, uint32_t *nv)
{
	knytt__lmap rows;
	memset(&rows, 0, sizeof rows);
	float *v = NULL;
	size_t cap = 0;
	uint32_t n = 0;
	int rc = KNYTT_OK;
	for (size_t i = 0; i < q->np && !rc; i++) {
		uint32_t r = knytt__lmap_get(&rows, q->p[i].item);
		if (r == LMAP_EMPTY) {
			if (!knytt_index_contains(ix, q->p[i].item)) {
				pp[i].w = 0; /* no vector: not learned from */
				continue;
			}
			if (knytt__grow((void **)&v, &cap, (size_t)n + 1,
					dim * sizeof *v) ||
			    knytt__lmap_put(&rows, q->p[i].item, n)) {
				rc = KNYTT_ENOMEM;
				break;
			}
			if (knytt_index_get(ix, q->p[i].item,
					    v + (size_t)n * dim, dim))
				memset(v + (size_t)n * dim, 0,
				       dim * sizeof *v);
			r = n++;
		}
		pp[i].text = q->p[i].text;
		pp[i].item = r;
		pp[i].w = q->p[i].w;
	}
	knytt__lmap_free(&rows);
	if (rc) {
		free(v);
		return knytt__err(KNYTT_ENOMEM, "out of memory (search pairs)");
	}
	*vecs = v;
	*nv = n;
	return KNYTT_OK;
}

int knytt__qlearn_fit(knytt__qlearn *q, uint32_t dim, knytt_index *ix,
		      knytt__qterms **out, char *json, size_t cap)
{
	*out = NULL;
	if (q->np < MIN_PAIRS) {
		snprintf(json, cap,
			 "{\"skipped\":\"the search log has %zu searches and "
			 "%zu query-item pairs (a search followed within 30 "
			 "minutes by a click, add to cart, favorite or "
			 "purchase); at least %d pairs are needed\"}",
			 q->nsearches, q->np, MIN_PAIRS);
		return KNYTT_OK;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	knytt__qpair *pp = calloc(q->np, sizeof *pp);
	float *vecs = NULL;
	uint32_t nv = 0;
	if (!pp)
		return knytt__err(KNYTT_ENOMEM, "out of memory (search pairs)");
	int rc = item_vectors(q, dim, ix, pp, &vecs, &nv);
	if (!rc)
		rc = knytt__qterms_train((const char *const *)q->texts,
					 q->ntexts, pp, q->np, vecs, nv, dim,
					 out);
	free(pp);
	free(vecs);
	if (rc == KNYTT_EINVAL) {
		snprintf(json, cap,
			 "{\"skipped\":\"none of the %zu query-item pairs has "
			 "a word and an item the model has a vector for\"}",
			 q->np);
		return KNYTT_OK;
	}
	if (rc)
		return rc;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	snprintf(json, cap,
		 "{\"searches\":%zu,\"pairs\":%zu,\"items\":%u,\"words\":%u,"
		 "\"seconds\":%.3f}",
		 q->nsearches, q->np, nv, (*out)->n,
		 (double)(t1.tv_sec - t0.tv_sec) +
			 (double)(t1.tv_nsec - t0.tv_nsec) * 1e-9);
	return KNYTT_OK;
}

void knytt__qlearn_free(knytt__qlearn *q)
{
	for (size_t i = 0; i < q->ntexts; i++)
		free(q->texts[i]);
	free(q->texts);
	free(q->s);
	free(q->p);
	knytt__lmap_free(&q->tmap);
	memset(q, 0, sizeof *q);
}
