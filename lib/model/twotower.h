/*
 * twotower.h -- testing hooks of the two-tower trainer.  Not API.
 *
 * They let tests/check_twotower.c compare the analytic gradient of the
 * in-batch softmax loss with finite differences on a tiny model.
 */
#ifndef KNYTT_MODEL_TWOTOWER_H
#define KNYTT_MODEL_TWOTOWER_H

#include "../internal.h"

typedef struct knytt__tt_debug knytt__tt_debug;

/* Validates and prepares training state as knytt_twotower_train would
 * (weights 1, array order = time order), without training. */
int knytt__tt_debug_prepare(const knytt_twotower *tt, uint32_t nusers,
			    uint32_t nitems, const knytt_twotower_item *items,
			    size_t n, const uint32_t *users,
			    const uint32_t *items_idx, knytt__tt_debug **out);

/* Loss of one batch made of the first @p nex (<= 64) training examples,
 * without id dropout; *W and *G point at the parameters and their
 * gradient (both *nparams floats).  W may be edited between calls. */
double knytt__tt_debug_loss(knytt__tt_debug *dbg, size_t nex, float **W,
			    const float **G, size_t *nparams);

void knytt__tt_debug_free(knytt__tt_debug *dbg);

#endif
