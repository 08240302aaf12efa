/*
 * lightgcn.h -- internals of the LightGCN model (lightgcn.c, lightgcnio.c)
 * and the hooks tests/check_lightgcn.c uses to check the propagation and
 * the gradient on a hand-computed graph.  Not API.
 */
#ifndef KNYTT_MODEL_LIGHTGCN_H
#define KNYTT_MODEL_LIGHTGCN_H

#include "model.h"

struct knytt_lightgcn {
	/* settings */
	unsigned dim, layers;
	float reg, lr;
	unsigned batch, epochs;
	uint64_t seed;
	unsigned threads; /* 0 = every core */
	knytt_progress_fn progress;
	void *progress_ctx;

	/* model; valid when trained */
	bool trained;
	uint32_t nusers, nitems;
	/* Final (layer-averaged) embeddings, users then items, dim floats a
	 * row: (nusers + nitems) * dim, 64-byte aligned. */
	float *E;
	/* Per item, what a new user's fold-in adds for it:
	 * sum_{l<L} e_i(l) / ((L + 1) sqrt(|N(i)|)); nitems * dim. */
	float *F;
};

/* Allocates E and F for the sizes (zeroed); 0 or -1. */
int knytt__lgc_alloc(knytt_lightgcn *g, uint32_t nusers, uint32_t nitems);

/* Training state over one matrix: the graph's normalisation and the
 * buffers of a propagation.  Rows 0..nusers-1 are users, then items. */
typedef struct knytt__lgc_graph {
	const knytt_matrix *m;
	unsigned dim, layers, threads;
	uint32_t nusers, nitems;
	size_t nrows;   /* nusers + nitems */
	float *dinv;    /* nrows: 1 / sqrt(degree), 0 for an isolated node */
	float *a, *b;   /* nrows * dim: layer l and l + 1 */
	float *G, *dE0; /* nrows * dim: gradient at the output and input */
} knytt__lgc_graph;

int knytt__lgc_graph_init(knytt__lgc_graph *gr, const knytt_matrix *m,
			  unsigned dim, unsigned layers, unsigned threads);
void knytt__lgc_graph_free(knytt__lgc_graph *gr);

/*
 * out = (X + A X + ... + A^L X) / (L + 1), A the normalised adjacency;
 * when @p partial is not NULL it receives X + A X + ... + A^(L-1) X (not
 * divided).  X, out, partial: nrows * dim, distinct from a and b.
 */
void knytt__lgc_propagate(knytt__lgc_graph *gr, const float *X, float *out,
			  float *partial);

/*
 * Mean loss of the @p n triples (u, i, j) (item ids 0-based) at the
 * layer-0 embeddings E0 whose final embeddings are E, and its gradient
 * with respect to E0 in gr->dE0:
 *   loss = 1/n sum softplus(-(e_u . (e_i - e_j)))
 *        + reg / (2 n) sum (|E0_u|^2 + |E0_i|^2 + |E0_j|^2).
 */
double knytt__lgc_grad(knytt__lgc_graph *gr, const float *E0, const float *E,
		       const uint32_t *triples, size_t n, float reg);

/* Makes @p g (untrained, settings set) the model of the layer-0
 * embeddings E0 ((nusers + nitems) * dim) on matrix @p m, as training
 * publishes it after each epoch: lets a test set E0 by hand.  0 or -1
 * without memory. */
int knytt__lgc_set_embeddings(knytt_lightgcn *g, const knytt_matrix *m,
			      const float *E0);

#endif
