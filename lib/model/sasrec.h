/*
 * sasrec.h -- internals of the sequence model (sasrec.c: the network's
 * forward and backward passes; sasrectrain.c: training, settings and
 * scoring; sasrecio.c: files), and the hooks tests/check_sasrec.c uses
 * for the finite-difference gradient check.  Not API.
 */
#ifndef KNYTT_MODEL_SASREC_H
#define KNYTT_MODEL_SASREC_H

#include "model.h"

/*
 * Shape of a network and where each parameter lives in the one flat
 * array W (so that Adam, the gradient reduction and the file are plain
 * loops over it).  Offsets in floats:
 *   E      nitems * d   item embeddings, input and output (shared)
 *   P      L * d        positional embeddings, P[L - 1] is the newest
 *   block b at blk + b * bsz, each:
 *     +0          ln1 gain (d), +d ln1 bias (d)
 *     +2d         Wqkv (d x 3d, row-major: x Wqkv = [q k v])
 *     +2d+3d^2    bqkv (3d)
 *     then ln2 gain, ln2 bias (d each), W1 (d x d), b1 (d), W2 (d x d),
 *     b2 (d)
 *   lnf    final layer norm gain (d), then bias (d)
 */
typedef struct knytt__sr_shape {
	unsigned d, L, blocks;
	uint32_t nitems;
	size_t E, P, blk, bsz, lnf, total;
} knytt__sr_shape;

/* Offsets inside one block. */
enum {
	KNYTT__SR_LN1G,
	KNYTT__SR_LN1B,
	KNYTT__SR_WQKV,
	KNYTT__SR_BQKV,
	KNYTT__SR_LN2G,
	KNYTT__SR_LN2B,
	KNYTT__SR_W1,
	KNYTT__SR_B1,
	KNYTT__SR_W2,
	KNYTT__SR_B2,
	KNYTT__SR_NPART
};

void knytt__sr_shape_init(knytt__sr_shape *s, unsigned d, unsigned L,
			  unsigned blocks, uint32_t nitems);
/* Offset in W of part @p part (KNYTT__SR_*) of block @p b. */
size_t knytt__sr_off(const knytt__sr_shape *s, unsigned b, int part);

/* Activations of one sequence (forward, kept for backward) and the
 * scratch of its backward pass, sized for L positions.  One per thread. */
typedef struct knytt__sr_work knytt__sr_work;
knytt__sr_work *knytt__sr_work_new(const knytt__sr_shape *s);
void knytt__sr_work_free(knytt__sr_work *w);

/*
 * Forward pass over the n (1..L) items of @p seq (oldest first), placed
 * at positions L - n .. L - 1.  dropout in [0, 1): the rate of the
 * inverted dropout masks, drawn from *rng (0: none, rng unused).  The
 * final normalised hidden states (n x d) are left in the work and a
 * pointer to them returned.
 */
const float *knytt__sr_forward(const knytt__sr_shape *s, const float *W,
			       knytt__sr_work *w, const uint32_t *seq,
			       size_t n, float dropout, uint64_t *rng);

/*
 * Loss and gradient of one sequence: forward as above, then
 *   loss = sum_t softplus(-z_t . E[pos_t]) + softplus(z_t . E[neg_t])
 * (binary cross-entropy of the next item against one sampled negative,
 * per position), and the gradient of that sum added into G (s->total
 * floats, same layout as W).  Returns the loss (not averaged).
 */
double knytt__sr_loss_grad(const knytt__sr_shape *s, const float *W,
			   knytt__sr_work *w, const uint32_t *seq, size_t n,
			   const uint32_t *pos, const uint32_t *neg,
			   float dropout, uint64_t *rng, float *G);

/* The Xavier-uniform initialisation of the paper's code (gains 1, biases
 * 0) from generator state *rng. */
void knytt__sr_init(const knytt__sr_shape *s, float *W, uint64_t *rng);

/*
 * The model's own validation split (sasrecval.c): the last item of each
 * sequence of >= 3 items held out (seq[j] -> target[j]), the shortened
 * sequences as a CSR copy to train on, and up to 100 negatives per held-
 * out item (nneg[j] of them at neg[j * 100]), drawn once.
 */
typedef struct knytt__sr_val {
	size_t *off;       /* nseq + 1: the training sequences */
	uint32_t *items;
	size_t nval;       /* sequences validated */
	uint32_t *seq, *target;
	uint8_t *nneg;
	uint32_t *neg;
} knytt__sr_val;

/* Builds the split of the nseq sequences (off, items as for training);
 * KNYTT_EINVAL when no sequence has 3 items, KNYTT_ENOMEM. */
int knytt__sr_val_init(knytt__sr_val *v, uint32_t nitems, size_t nseq,
		       const size_t *off, const uint32_t *items,
		       uint64_t seed);
void knytt__sr_val_free(knytt__sr_val *v);
/* HR@10 and NDCG@10 of weights W on the split, nt threads, w[t] the
 * activations of thread t. */
void knytt__sr_val_eval(const knytt__sr_val *v, const knytt__sr_shape *sh,
			const float *W, knytt__sr_work **w, unsigned nt,
			double *hr, double *ndcg);

/* One evaluation on the validation split. */
typedef struct knytt__sr_score {
	unsigned epoch; /* 1-based; 0 = none yet */
	double hr, ndcg;
} knytt__sr_score;

struct knytt_sasrec {
	/* settings */
	unsigned dim, blocks, max_len;
	float dropout, lr;
	unsigned batch, epochs;
	uint64_t seed;
	unsigned threads; /* 0 = every core */
	knytt_progress_fn progress;
	void *progress_ctx;
	unsigned es_every;    /* early stopping: evaluate every N epochs,
			       * 0 = off */
	unsigned es_patience; /* stop after this many evaluations without a
			       * better NDCG@10 */

	/* validation of the last training with early stopping */
	knytt__sr_score val_last, val_best;

	/* model; valid when trained */
	bool trained;
	knytt__sr_shape shape;
	float *W; /* shape.total floats, 64-byte aligned */
};

#endif
