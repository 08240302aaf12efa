/*
 * model.h -- internals shared by the files of lib/model.  Not API.
 */
#ifndef KNYTT_MODEL_H
#define KNYTT_MODEL_H

#include "../internal.h"

/* CG steps per row and half-iteration of ALS unless set otherwise
 * (knytt_als_set_solver); the tuning's cost model (fitcost.c) counts
 * them. */
#define KNYTT__ALS_CG_STEPS 3

/* One recorded interaction, before build. */
typedef struct knytt__rec {
	uint32_t user, item;
	float w; /* type weight * value, before decay */
	uint32_t type;
	int64_t time;
} knytt__rec;

struct knytt_matrix {
	/* builder state */
	knytt__rec *recs;
	size_t nrec, caprec;
	float type_w[KNYTT_EVENT_MAX];
	double half_life; /* 0 = no decay */
	int64_t now;
	double rec_half, rec_boost; /* recency in interactions; 0 = off */
	bool built;

	/* CSR: row u holds items[rowptr[u] .. rowptr[u+1]), ascending, with
	 * weights w[] (summed over duplicates, decayed). */
	uint32_t nusers, nitems;
	size_t nnz;
	size_t *rowptr; /* nusers + 1 */
	uint32_t *items;
	float *w;
	/* The transpose (CSC): column i holds users[colptr[i] ..
	 * colptr[i+1]), ascending, weights cw[]. */
	size_t *colptr; /* nitems + 1 */
	uint32_t *users;
	float *cw;
};

struct knytt_als {
	/* settings */
	unsigned k;      /* factors */
	float reg, alpha;
	float nu; /* frequency scaling exponent of reg; 0 = plain reg */
	unsigned iters;
	uint64_t seed;
	unsigned threads;      /* 0 = every core */
	knytt_als_solver solver;
	unsigned cg_steps;
	knytt_progress_fn progress;
	void *progress_ctx;

	/* model; valid when trained */
	bool trained;
	unsigned kp; /* row stride in floats: k rounded up to 16, pad zero */
	uint32_t nusers, nitems;
	float *X; /* nusers * kp, 64-byte aligned */
	float *Y; /* nitems * kp */
	/* YtY + reg I over the final item factors (kp * kp, padding rows
	 * and columns zero): what every user solve and fold-in uses. */
	float *GY;
};

/* Solves every user row against the current item factors (one half of an
 * epoch) and refreshes GY.  Exposed for the fold-in equality test. */
int knytt__als_user_pass(knytt_als *als, const knytt_matrix *m);

/* Allocates X, Y, GY (zeroed) for als->k and the sizes; 0 or -1. */
int knytt__als_alloc(knytt_als *als, uint32_t nusers, uint32_t nitems);

/* Computes GY from Y (after load). */
void knytt__als_gram_items(knytt_als *als);

#endif
