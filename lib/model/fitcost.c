/*
 * fitcost.c -- the work of one model fit, in units computed from the
 * data's shape and the settings alone, for the tuning's budget
 * (tune.c).
 *
 * Why not seconds: a budget in seconds tries fewer candidates on a busy
 * machine, so the same data and code gave another model from run to run
 * (ML-1M first half, 10% time split: NDCG@20 0.138 in one loaded run,
 * 0.219 in another).  Units make the search, and so the model, a
 * function of the data and the settings.
 *
 * A unit is one multiply-add of the ALS solver's inner loops; each term
 * below follows a loop of als.c or lightgcn.c.  The weights of the
 * terms that are not ALS multiply-adds (LightGCN's gathers through the
 * graph, its passes over every row, its triples) were measured against
 * ALS on ML-100K: see PROP_W.  Only the ratios matter: the budget is
 * a multiple of the fixed settings' units.
 */
#include "tune.h"

#include <math.h>

/*
 * ALS (als.c, CG solver), per iteration, k factors with row stride kp
 * (k rounded up to 16), s CG steps:
 *  - two Gramians (gram: ssyrk over the users, then the items), about
 *    k^2 / 2 multiply-adds a row: (nusers + nitems) k^2 / 2;
 *  - each side's rows (run_half -> solve_row): the residual and s
 *    products with A = G + sum c f f^T, each 2 kp a entry (a dot and an
 *    axpy) plus kp^2 a row (G p): (1 + s) (2 nnz kp + rows kp^2), for
 *    both sides (1 + s) (4 nnz kp + (nusers + nitems) kp^2).
 * Decayed histories change the weights, not the loops: the same cost.
 */
static double als_units(const knytt__tune_cfg *c, double nnz, double rows)
{
	double k = c->dim, kp = (double)((c->dim + 15u) & ~15u);
	double s = 1 + KNYTT__ALS_CG_STEPS;
	double it = rows * k * k / 2 + s * (4 * nnz * kp + rows * kp * kp);
	return (double)c->iters * it;
}

/*
 * LightGCN (lightgcn.c), per epoch, d = dim, L layers, B = ceil(nnz /
 * batch) batches, each of which
 *  - propagates forward and the gradient backward through the whole
 *    graph (knytt__lgc_propagate): L layers of one gather per edge and
 *    side, 2 x L x 2 nnz rows of d (the gather works in chunks of 64
 *    columns: D = d rounded up to 64), PROP_W units a float;
 *  - passes over every row a few times (copies, the 1 / (L + 1) scale,
 *    zeroing the gradient, Adam's update with its square root and
 *    divisions): ROW_W units a float;
 * then publishes the model (one more forward pass: 2 L nnz rows), and
 * the epoch's nnz triples are sampled (a binary search over the users,
 * draws of a negative) and scored (double-precision dot products, the
 * softplus, three row updates and the L2 term): TRIPLE_W units a float
 * of d.  The graph passes run once a batch, so an epoch costs about
 * nnz^2 / batch: the refit on all the data grows faster than the
 * interactions do.
 *
 * The weights, in ALS units, were measured with benchmarks/train/run
 * --cost --reps 3 --ml1m (cost_bench.c): CPU seconds of the fastest of
 * 3 fits on 1 thread, on the validation-training part of ML-100K (the
 * latest 10% held out as tune.c does: 943 users, 1682 items, ~90k
 * pairs).  ALS took 0.027 ns a unit at dim 64 (0.027-0.031 at 64 and
 * 128, on ML-100K and on the first half of ML-1M alike).  LightGCN at
 * dim 64, 2 layers, batches of 4096 took 0.112 s an epoch (1 and 4
 * epochs: linear); one layer more or less moved it by 1.07 ms a batch
 * (PROP_W = 1.07 ms / 0.027 ns / (4 x 90k x 64) = 1.7); batches of 1024
 * and 16384 gave 2.8 ms a batch in all, the 0.66 ms beyond the
 * propagation over 2625 x 64 floats (ROW_W = 145); the 50 ms an epoch
 * left over is the triples' (TRIPLE_W = 50 ms / 0.027 ns / 90k / 64 =
 * 314).  With these weights (the same command again) every fit
 * measured took 0.026-0.033 ns of CPU a unit -- ALS at dims 64 and 128,
 * reg, alpha and decay alike, LightGCN at 1 to 3 layers, batches of 1024
 * to 16384, dims 32 to 128 -- except ALS at dim 32, 0.085-0.093: ALS
 * has kernels for rows of 64 and 128 floats (als.c) and a generic one
 * otherwise.  Every ALS fit of one tuning has the same dim, so that
 * only shifts how LightGCN compares with ALS at such dims.  The weights
 * are this machine's (AVX-512); elsewhere the units stay the same, and
 * so does the search, only their seconds differ.
 */
#define PROP_W 1.7
#define ROW_W 145.0
#define TRIPLE_W 314.0

static double lgc_units(const knytt__tune_cfg *c, double nnz, double rows)
{
	double d = c->dim, L = c->layers;
	double D = 64.0 * ceil(d / 64.0);
	double B = ceil(nnz / (double)(c->batch ? c->batch : 8192));
	double batch = PROP_W * 4 * L * nnz * D + ROW_W * rows * d;
	double ep = B * batch + PROP_W * 2 * L * nnz * D +
		    TRIPLE_W * nnz * d;
	return (double)c->iters * ep;
}

double knytt__fit_units(const knytt__tune_cfg *c, double nnz,
			uint32_t nusers, uint32_t nitems)
{
	double rows = (double)nusers + (double)nitems;
	if (c->kind == KNYTT_MODEL_LIGHTGCN)
		return lgc_units(c, nnz, rows);
	return als_units(c, nnz, rows);
}
