/*
 * seqmodel.h -- SASRec as the engine's session model (seqmodel.c).
 * Not API.
 */
#ifndef KNYTT_SEQMODEL_H
#define KNYTT_SEQMODEL_H

#include "engine_int.h"
#include "../model/tune.h"

struct qctx;

/* The training job's sequences and the validation fit.  off: nusers + 1
 * offsets into items/ts (each shopper's events oldest first); cut_len:
 * each shopper's events before the validation cut; val: the model
 * fitted before it (NULL: none); epochs: the epoch its early stopping
 * kept (0: no validation fit); trained_epochs: of the refit. */
typedef struct knytt__seqjob {
	knytt_engine *e;
	size_t *off;
	uint32_t *items;
	int64_t *ts;
	uint32_t *cut_len;
	uint32_t nusers, nitems;
	knytt_sasrec *val;
	unsigned epochs, trained_epochs;
	double val_ndcg10; /* the early stopping's best NDCG@10 */
	float *sc;         /* nitems scores (scratch) */
	struct knytt__pair *heap; /* the tuner's list (scratch) */
	size_t heap_cap;
} knytt__seqjob;

/* Sequences from the job's @p n events (dense users and items, ms). */
int knytt__seq_init(knytt__seqjob *q, knytt_engine *e, const uint32_t *u,
		    const uint32_t *it, const int64_t *ts, size_t n,
		    uint32_t nusers, uint32_t nitems);
void knytt__seq_free(knytt__seqjob *q);
/* The tuner's hooks (lib/model/tune.h) over @p q. */
void knytt__seq_tune(knytt__seqjob *q, knytt__tune_seq *t);
/* The model on every event: the epochs the validation kept, else the
 * engine's maximum. */
int knytt__seq_train(knytt__seqjob *q, knytt_progress_fn fn, void *ctx,
		     knytt_sasrec **out);
/* The snapshot's model's best kk items after shopper @p u's sequence
 * that pass the query (filter and exclusions), best first, reason
 * SESSION because of the newest item of the sequence; *n = 0 when the
 * sequence is empty.  Caller holds u->mu and the engine's read lock,
 * c->snap->sr is not NULL. */
int knytt__seq_list(knytt_engine *e, struct qctx *c,
		    const knytt__profile *u, int64_t now, size_t kk,
		    knytt_result *out, size_t *n);

#endif
