/*
 * sasrecval.c -- the sequence model's own validation, for early stopping
 * (knytt_sasrec_set_early_stop).
 *
 * The split is the paper's (Kang & McAuley 2018, section IV-B): the last
 * item of every sequence of 3 or more items is held out, the model trains
 * on the rest, and the held-out item is ranked after the remaining
 * sequence against up to 100 items the shopper never touched, drawn once
 * with a seed of its own (so the training's negatives and dropout masks
 * are the same as training on the shortened sequences without any
 * validation).  A sequence of 2 items stays whole: held out, it would
 * leave one item, which teaches nothing.  The metric is NDCG@10 (HR@10
 * alongside); a negative scoring equal to the held-out item ranks above
 * it, so a constant model scores worst.
 *
 * The held-out items are not trained on afterwards: the paper's test
 * model is the one chosen on validation, trained without them, and
 * refitting on everything would double the cost.
 */
#include "sasrec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SR_VAL_NEG 100 /* negatives per held-out item (the paper's) */
#define SR_VAL_K 10    /* cut-off of HR and NDCG */

/* Up to SR_VAL_NEG distinct items with seen[] 0, into neg; returns how
 * many.  Few unseen items (at most twice the count): a uniform choice
 * among all of them by a partial shuffle; else rejection sampling. */
static unsigned draw_negatives(unsigned char *seen, uint32_t nitems,
			       size_t nseen, uint32_t *neg, uint64_t *rng)
{
	unsigned k = 0;
	if (nitems - nseen <= 2 * SR_VAL_NEG) {
		uint32_t all[2 * SR_VAL_NEG];
		unsigned n = 0;
		for (uint32_t i = 0; i < nitems; i++)
			if (!seen[i])
				all[n++] = i;
		for (; k < n && k < SR_VAL_NEG; k++) {
			unsigned j = k + (unsigned)(knytt__rand64(rng) %
						    (n - k));
			neg[k] = all[j];
			all[j] = all[k];
		}
		return k;
	}
	while (k < SR_VAL_NEG) {
		uint32_t c = (uint32_t)(knytt__rand64(rng) % nitems);
		if (seen[c])
			continue;
		seen[c] = 2; /* drawn: distinct negatives */
		neg[k++] = c;
	}
	for (unsigned j = 0; j < k; j++)
		seen[neg[j]] = 0;
	return k;
}

/* Negatives of every validated sequence, from the whole sequence. */
static int val_negatives(knytt__sr_val *v, uint32_t nitems,
			 const size_t *off, const uint32_t *items,
			 uint64_t seed)
{
	unsigned char *seen = calloc(nitems, 1);
	if (!seen)
		return -1;
	uint64_t rng = seed ^ 0x5a5a5a5a17171717ull;
	for (size_t j = 0; j < v->nval; j++) {
		uint32_t q = v->seq[j];
		size_t nseen = 0;
		for (size_t x = off[q]; x < off[q + 1]; x++)
			if (!seen[items[x]]) {
				seen[items[x]] = 1;
				nseen++;
			}
		v->nneg[j] = (uint8_t)draw_negatives(
			seen, nitems, nseen, v->neg + j * SR_VAL_NEG, &rng);
		for (size_t x = off[q]; x < off[q + 1]; x++)
			seen[items[x]] = 0;
	}
	free(seen);
	return 0;
}

int knytt__sr_val_init(knytt__sr_val *v, uint32_t nitems, size_t nseq,
		       const size_t *off, const uint32_t *items, uint64_t seed)
{
	memset(v, 0, sizeof *v);
	for (size_t q = 0; q < nseq; q++)
		v->nval += off[q + 1] - off[q] >= 3;
	if (v->nval == 0)
		return knytt__err(KNYTT_EINVAL,
				  "early stopping needs a sequence of 3 "
				  "items: none to hold the last item of out");
	v->off = malloc((nseq + 1) * sizeof *v->off);
	v->items = malloc((off[nseq] - v->nval) * sizeof *v->items + 1);
	v->seq = malloc(v->nval * sizeof *v->seq);
	v->target = malloc(v->nval * sizeof *v->target);
	v->nneg = malloc(v->nval);
	v->neg = malloc(v->nval * SR_VAL_NEG * sizeof *v->neg);
	if (!v->off || !v->items || !v->seq || !v->target || !v->nneg ||
	    !v->neg)
		goto nomem;
	v->off[0] = 0;
	size_t j = 0;
	for (size_t q = 0; q < nseq; q++) {
		size_t m = off[q + 1] - off[q];
		if (m >= 3) {
			v->seq[j] = (uint32_t)q;
			v->target[j++] = items[off[q + 1] - 1];
			m--;
		}
		memcpy(v->items + v->off[q], items + off[q],
		       m * sizeof *v->items);
		v->off[q + 1] = v->off[q] + m;
	}
	if (val_negatives(v, nitems, off, items, seed) == 0)
		return KNYTT_OK;
nomem:
	knytt__sr_val_free(v);
	return knytt__err(KNYTT_ENOMEM,
			  "no memory for the validation of %zu sequences",
			  nseq);
}

void knytt__sr_val_free(knytt__sr_val *v)
{
	free(v->off);
	free(v->items);
	free(v->seq);
	free(v->target);
	free(v->nneg);
	free(v->neg);
	memset(v, 0, sizeof *v);
}

typedef struct val_run {
	const knytt__sr_val *v;
	const knytt__sr_shape *sh;
	const float *W;
	knytt__sr_work **w;
	unsigned nt;
	double hit[256], ndcg[256];
} val_run;

static void val_part(void *ctx, unsigned t)
{
	val_run *r = ctx;
	const knytt__sr_val *v = r->v;
	const knytt__sr_shape *sh = r->sh;
	size_t lo = v->nval * t / r->nt, hi = v->nval * (t + 1) / r->nt;
	for (size_t j = lo; j < hi; j++) {
		uint32_t q = v->seq[j];
		size_t m = v->off[q + 1] - v->off[q];
		size_t n = m < sh->L ? m : sh->L;
		const float *z = knytt__sr_forward(sh, r->W, r->w[t],
						   v->items + v->off[q + 1] - n,
						   n, 0, NULL);
		z += (n - 1) * sh->d;
		const float *E = r->W + sh->E;
		double sp = 0;
		for (unsigned x = 0; x < sh->d; x++)
			sp += z[x] * E[(size_t)v->target[j] * sh->d + x];
		unsigned rank = 0;
		for (unsigned k = 0; k < v->nneg[j]; k++) {
			const float *e = E + (size_t)v->neg[j * SR_VAL_NEG + k] *
						     sh->d;
			double s = 0;
			for (unsigned x = 0; x < sh->d; x++)
				s += z[x] * e[x];
			rank += s >= sp;
		}
		if (rank < SR_VAL_K) {
			r->hit[t] += 1;
			r->ndcg[t] += 1.0 / log2((double)rank + 2);
		}
	}
}

void knytt__sr_val_eval(const knytt__sr_val *v, const knytt__sr_shape *sh,
			const float *W, knytt__sr_work **w, unsigned nt,
			double *hr, double *ndcg)
{
	val_run r = {.v = v, .sh = sh, .W = W, .w = w,
		     .nt = nt < 256 ? nt : 256};
	knytt__fork_join(r.nt, val_part, &r);
	double h = 0, g = 0;
	for (unsigned t = 0; t < r.nt; t++) {
		h += r.hit[t];
		g += r.ndcg[t];
	}
	*hr = h / (double)v->nval;
	*ndcg = g / (double)v->nval;
}
