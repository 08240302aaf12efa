/*
 * similar.c -- knytt_engine_similar: items near an item's vector (cosine
 * re-rank), or, for an item without one, items the same shoppers
 * interacted with.  Moved from query.c.
 */
#include "query.h"
#include "../store/store_int.h"

#include "../vec/topk.h"
#include "../vec/vec.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- similar */

typedef struct coview {
	knytt_engine *e;
	uint64_t self;
	char **users;
	size_t nu, capu;
	double *count; /* per item row */
	size_t ncount; /* rows when the count was allocated */
} coview;

static int coview_user_cb(const knytt_interaction *ix, void *ctx)
{
	coview *cv = ctx;
	for (size_t i = 0; i < cv->nu; i++)
		if (strcmp(cv->users[i], ix->user) == 0)
			return 0;
	if (cv->nu == cv->capu)
		return 0;
	size_t l = strlen(ix->user) + 1;
	cv->users[cv->nu] = malloc(l);
	if (!cv->users[cv->nu])
		return 1;
	memcpy(cv->users[cv->nu++], ix->user, l);
	return 0;
}

static int coview_item_cb(const knytt_interaction *ix, void *ctx)
{
	coview *cv = ctx;
	/* a store callback: the engine's read lock for the lookup only */
	pthread_rwlock_rdlock(&cv->e->lock);
	uint32_t r = knytt__engine_row(cv->e, ix->item_id);
	pthread_rwlock_unlock(&cv->e->lock);
	if (r < cv->ncount && ix->item_id != cv->self)
		cv->count[r] += 1;
	return 0;
}

int knytt__engine_similar(knytt_engine *e, const char *item, size_t k,
			 const knytt_filter *filter, knytt_result *out)
{
	int rc = knytt__q_check_query(e, k, "knytt_engine_similar");
	knytt_filter fbuf;
	if (rc || (rc = knytt__q_check_filter(&filter, &fbuf)))
		return rc;
	if (!item || !*item || !out)
		return knytt__err(KNYTT_EINVAL, "similar: %s is NULL or empty",
				  !out ? "out" : "item");
	pthread_rwlock_rdlock(&e->lock);
	uint32_t d = e->dim;
	uint32_t row = knytt__engine_row_by_ext(e, item);
	if (row == UINT32_MAX || e->items[row].deleted) {
		pthread_rwlock_unlock(&e->lock);
		return knytt__err(KNYTT_ENOTFOUND, "item '%s' is unknown", item);
	}
	const eitem *self = &e->items[row];
	/* a copy: the table may grow while the coview path reads the store */
	uint64_t self_id = self->id;
	qctx c;
	knytt__q_qctx_init(&c, e, knytt__snap_ref(e->snap), filter);
	c.excl = &self_id;
	c.nexcl = 1;
	size_t n = 0;
	if ((rc = knytt__q_filter_bits(e, &c))) {
		pthread_rwlock_unlock(&e->lock);
		knytt__q_qctx_done(&c);
		return rc;
	}
	if (self->has_vec) {
		/* With an inner-product index, v.x favours long (popular)
		 * vectors whatever their direction; similarity is about
		 * direction.  Take 4k candidates by inner product and rank
		 * them by cosine. */
		size_t kk = k * 4 < 40 ? 40 : k * 4;
		float *v = malloc(d * sizeof *v), *x = malloc(d * sizeof *x);
		uint64_t *lab = malloc(kk * sizeof *lab);
		float *dist = malloc(kk * sizeof *dist);
		knytt_result *cand = malloc(kk * sizeof *cand);
		if (!v || !x || !lab || !dist || !cand) {
			rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		} else if ((rc = knytt_index_get(c.snap->ix, self->id, v,
						 d)) == 0) {
			knytt__normalize(v, d);
			int got = knytt__q_ann(e, &c, v, kk, lab, dist);
			if (got < 0)
				rc = got;
			size_t m = 0;
			for (int i = 0; i < got; i++) {
				uint32_t r = knytt__engine_row(e, lab[i]);
				if (r == UINT32_MAX || e->items[r].deleted ||
				    knytt_index_get(c.snap->ix, lab[i], x, d))
					continue;
				knytt__normalize(x, d);
				knytt__q_fill(e, &cand[m++], r,
				     knytt__vec()->dot(v, x, d),
				     KNYTT_REASON_SIMILAR, self->id);
			}
			qsort(cand, m, sizeof *cand, knytt__q_cmp_score);
			n = m < k ? m : k;
			memcpy(out, cand, n * sizeof *out);
		}
		free(v);
		free(x);
		free(lab);
		free(dist);
		free(cand);
	} else {
		/* no vector yet: items the same users interacted with */
		coview cv = { .e = e, .self = self->id, .capu = 64 };
		cv.ncount = e->nitems;
		cv.users = calloc(cv.capu, sizeof *cv.users);
		cv.count = calloc(e->nitems ? e->nitems : 1, sizeof *cv.count);
		if (!cv.users || !cv.count) {
			rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		} else {
			/* the store is read with the engine unlocked (the
			 * filter's bitset and cv.count stay ours) */
			pthread_rwlock_unlock(&e->lock);
			pthread_mutex_lock(&e->st_lock);
			rc = knytt_store_item_recent(e->st, item, 500,
						     coview_user_cb, &cv);
			for (size_t i = 0; rc >= 0 && i < cv.nu; i++)
				rc = knytt_store_user_recent(e->st, cv.users[i],
							     100,
							     coview_item_cb,
							     &cv);
			pthread_mutex_unlock(&e->st_lock);
			pthread_rwlock_rdlock(&e->lock);
			if (rc == KNYTT_ENOTFOUND)
				rc = KNYTT_OK;
			if (rc > 0)
				rc = KNYTT_OK;
			knytt__pair *heap = malloc(k * sizeof *heap);
			uint64_t *rows = malloc(k * sizeof *rows);
			float *sc = malloc(k * sizeof *sc);
			if (rc == KNYTT_OK && heap && rows && sc) {
				knytt__topk t = { heap, 0, k };
				for (size_t r = 0; r < cv.ncount; r++)
					if (cv.count[r] > 0 &&
					    knytt__q_item_passes(&c, &e->items[r]) &&
					    (float)-cv.count[r] <
						    knytt__topk_worst(&t))
						knytt__topk_push(
							&t, (float)-cv.count[r],
							r);
				size_t got = knytt__topk_drain(&t, rows, sc);
				for (size_t i = 0; i < got; i++)
					knytt__q_fill(e, &out[n++], (uint32_t)rows[i],
					     -sc[i], KNYTT_REASON_COVIEW,
					     self_id);
			} else if (rc == KNYTT_OK) {
				rc = knytt__err(KNYTT_ENOMEM, "out of memory");
			}
			free(heap);
			free(rows);
			free(sc);
		}
		for (size_t i = 0; i < cv.nu; i++)
			free(cv.users[i]);
		free(cv.users);
		free(cv.count);
	}
	pthread_rwlock_unlock(&e->lock);
	knytt__q_qctx_done(&c);
	return rc < 0 ? rc : (int)n;
}

