/*
 * feedbatch.c -- knytt_engine_feedback_batch: many events recorded as one
 * unit.
 *
 * knyttd's batch forms (POST /api/v1/interactions and /feedback with
 * {"interactions": [...]}) once called knytt_engine_feedback per event,
 * each its own commit: a disk that filled up in the middle left half a
 * refused batch stored, and a client retrying it stored that half twice.
 * Here a batch goes in four steps, and only the third touches the store:
 *   1. every event is checked (the engine's rules, the store's rules, the
 *      item known); a bad one is reported through the callback and left
 *      out, the others go on;
 *   2. the profile of each shopper is loaded (or created) -- before the
 *      write, as knytt_engine_feedback does, so a profile loaded from the
 *      store never holds an event that is then applied again;
 *   3. the accepted events are stored in one transaction
 *      (knytt_store_interactions_add), or queued as one entry for the
 *      write-behind writer, which writes them in one transaction;
 *   4. only then does memory see them: counters, history, taste.
 * A store failure in step 3 returns before step 4: nothing of the batch
 * is stored or applied, and the caller may retry the whole batch.
 */
#include "engine_int.h"

#include "../store/store_int.h"

#include <stdlib.h>
#include <string.h>

/* One event of the batch as the steps see it. */
typedef struct fbev {
	knytt_interaction ix; /* checked; time and weight resolved */
	double w;             /* confidence in memory */
	uint32_t row;         /* the item's engine row */
	knytt__profile *u;    /* the shopper, from step 2: a reference
				 (NULL until taken), given back after step 4 */
} fbev;

static int is_event_error(int rc)
{
	return rc == KNYTT_EINVAL || rc == KNYTT_ERANGE ||
	       rc == KNYTT_ENOTFOUND;
}

/* Step 1 for event @p in: 0 (accepted into @p out), or its error. */
static int check_event(knytt_engine *e, const knytt_interaction *in,
		       fbev *out)
{
	if (!in)
		return knytt__err(KNYTT_EINVAL, "feedback: event is NULL");
	if (!KNYTT__HAS(in, knytt_interaction, ts_ms))
		return knytt__err(KNYTT_EINVAL,
				  "feedback: struct_size %zu is too small "
				  "(set it to sizeof(knytt_interaction))",
				  in->struct_size);
	knytt_interaction full;
	memset(&full, 0, sizeof full);
	KNYTT__STRUCT_IN(&full, in);
	/* the store would skip a repeated event id, but memory would count
	 * it again: refused rather than half honoured */
	if (full.event_id)
		return knytt__err_field(KNYTT_EINVAL, "event_id",
					"feedback: field event_id is not "
					"supported (knytt_store_interactions_"
					"add takes it)");
	int rc = knytt__feedback_event(e, full.user, full.item, full.type,
				       full.value, full.ts_ms, &out->ix,
				       &out->w);
	knytt__ixrow row; /* the store's rules, without touching it */
	if (rc || (rc = knytt__ix_prepare(e->st, &out->ix, &row, 0)) < 0)
		return rc;
	pthread_rwlock_rdlock(&e->lock);
	uint32_t r = knytt__engine_row_by_ext(e, full.item);
	int gone = r != UINT32_MAX && e->items[r].deleted;
	pthread_rwlock_unlock(&e->lock);
	if (r == UINT32_MAX || gone)
		return knytt__err_field(KNYTT_ENOTFOUND, "item",
					"item '%s' is unknown%s", full.item,
					gone ? " (deleted)" : "");
	out->row = r;
	return KNYTT_OK;
}

/* Step 1 for the whole batch: the accepted events packed at the front of
 * @p f; their number, or a failure that is not the event's fault. */
static int check_all(knytt_engine *e, const knytt_interaction *const *ev,
		     size_t n, fbev *f, knytt_event_reject_fn on_reject,
		     void *ctx)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		int rc = check_event(e, ev[i], &f[k]);
		if (rc == KNYTT_OK) {
			k++;
			continue;
		}
		if (!is_event_error(rc))
			return rc;
		if (on_reject)
			on_reject(i, rc, knytt_errfield(), knytt_errmsg(),
				  ctx);
	}
	return (int)k;
}

/* Step 3: the accepted events stored (or queued) as one unit. */
static int store_all(knytt_engine *e, const fbev *f, size_t k)
{
	const knytt_interaction **p = malloc(k * sizeof *p);
	if (!p)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	for (size_t i = 0; i < k; i++)
		p[i] = &f[i].ix;
	int rc;
	if (e->fq_running) {
		rc = knytt__fq_push_batch(e, p, k);
	} else {
		pthread_mutex_lock(&e->st_lock);
		rc = knytt_store_interactions_add(e->st, p, k);
		pthread_mutex_unlock(&e->st_lock);
	}
	free(p);
	return rc < 0 ? rc : KNYTT_OK;
}

int knytt_engine_feedback_batch(knytt_engine *e,
				const knytt_interaction *const *ev, size_t n,
				knytt_event_reject_fn on_reject, void *ctx)
{
	int rc = knytt__engine_check_open(e, "knytt_engine_feedback_batch");
	if (rc)
		return rc;
	if (!ev && n)
		return knytt__err(KNYTT_EINVAL, "feedback_batch: events is NULL");
	if (n > KNYTT_STORE_MAX_BATCH)
		return knytt__err(KNYTT_ERANGE,
				  "feedback_batch: at most %d events, not %zu",
				  KNYTT_STORE_MAX_BATCH, n);
	/* an earlier queued write that failed is reported first, and this
	 * batch is not recorded (as knytt_engine_feedback does) */
	if (n == 0 || (e->fq_running && (rc = knytt__fq_take_err(e))))
		return rc;
	fbev *f = calloc(n, sizeof *f);
	if (!f)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	int k = check_all(e, ev, n, f, on_reject, ctx);
	rc = k < 0 ? k : KNYTT_OK;
	for (int i = 0; i < k && rc == KNYTT_OK; i++)
		if (!(f[i].u = knytt__engine_user(e, f[i].ix.user, 1, &rc)) &&
		    rc == KNYTT_OK)
			rc = knytt__err(KNYTT_ENOMEM, "out of memory");
	if (rc == KNYTT_OK && k > 0)
		rc = store_all(e, f, (size_t)k);
	if (rc) {
		for (int i = 0; i < k; i++)
			knytt__engine_user_put(e, f[i].u);
		free(f);
		return rc;
	}
	/* queued: none of these profiles is evicted before the writer has
	 * stored the batch (a reload would miss it) */
	uint64_t seq = e->fq_running ? knytt__fq_pushed(e) : 0;
	/* step 4, in the batch's order.  The events are stored: a profile
	 * that cannot grow (out of memory) misses one in memory only, and
	 * the batch still succeeds -- an error now would make the caller
	 * retry a stored batch and store it twice. */
	for (int i = 0; i < k; i++) {
		knytt__profile *u = f[i].u;
		pthread_mutex_lock(&u->mu);
		if (seq > u->fq_seq)
			u->fq_seq = seq;
		knytt__feedback_mem(e, u, f[i].row, f[i].w, f[i].ix.ts_ms,
				    knytt__type_bit(f[i].ix.type));
		pthread_mutex_unlock(&u->mu);
		knytt__engine_user_put(e, u);
	}
	free(f);
	return k;
}
