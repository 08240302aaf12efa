/*
 * tune.h -- automatic tuning on a validation period cut from the end of
 * the training data (tune.c).  Not API: the engine's training job
 * (lib/engine/train.c) calls it, tests/check_tune.c checks it.
 */
#ifndef KNYTT_MODEL_TUNE_H
#define KNYTT_MODEL_TUNE_H

#include "model.h"

#define KNYTT__TUNE_NPOP 8 /* popularity lists the blend may use */
#define KNYTT__TUNE_NSEQ 8 /* weights of a sequence model's list scored */
#define KNYTT__TUNE_NPOOL 4 /* sizes of the personalised re-rank's pool
			       (knytt__tune_pool; 0: every item) */

/*
 * A sequence model the caller fits (the engine's SASRec session model,
 * lib/engine/seqmodel.c), blended into the chosen pipeline's list as a
 * third list.  The tuning knows nothing of the model: fit is called
 * once, after the search, with the start of the validation period (fit
 * on the events before it; KNYTT_EINVAL: no model, the weight stays 0);
 * list then writes user @p user's best @p depth dense items, best
 * first, none of them marked in mark[] (items met before the cut), into
 * out and their count into *n.
 */
typedef struct knytt__tune_seq {
	int (*fit)(void *ctx, int64_t cut);
	int (*list)(void *ctx, uint32_t user, const unsigned char *mark,
		    size_t depth, uint64_t *out, size_t *n);
	void *ctx;
} knytt__tune_seq;

/* One setting of the whole pipeline: the model, the history's decay and
 * the blend with recent popularity. */
typedef struct knytt__tune_cfg {
	knytt_model_kind kind; /* KNYTT_MODEL_ALS or KNYTT_MODEL_LIGHTGCN */
	unsigned dim;          /* factors / embedding size */
	float reg;             /* ALS reg, LightGCN L2 weight */
	float alpha;           /* ALS confidence scale */
	unsigned iters;        /* ALS iterations, LightGCN epochs */
	unsigned layers;       /* LightGCN */
	float lr;              /* LightGCN Adam step */
	unsigned batch;        /* LightGCN triples per batch */
	double hist_days;      /* half-life of the history's weights, days;
				  0 = no decay */
	float blend;           /* weight of recent popularity, 0..1 */
	int pop;               /* which popularity list (0..npop-1) */
	unsigned pool;         /* > 0: the personal list is the first pool
				  items of that popularity list re-ranked
				  by the model (a personalised re-rank);
				  0: the model's best over every item */
} knytt__tune_cfg;

typedef struct knytt__tune_in {
	/* every interaction: w = its confidence (type weight x value),
	 * type ignored; dense ids below nusers / nitems */
	const knytt__rec *recs;
	size_t n;
	uint32_t nusers, nitems;
	int64_t day; /* time units per day (86400000 for ms) */
	/* the popularity lists: time-decayed confidence with these
	 * half-lives (time units), over the pop_window before the cut (or
	 * list h's own pop_win[h] when > 0); a half-life of 0 is the
	 * all-time count of events instead, one of INFINITY the plain sum
	 * of confidence in the window (a windowed count: "the last W days",
	 * as recent popularity is usually measured) */
	double pop_hl[KNYTT__TUNE_NPOP];
	int64_t pop_win[KNYTT__TUNE_NPOP];
	int npop;
	int64_t pop_window;
	knytt__tune_cfg base; /* the fixed settings (blend 0): tried first */
	double vfrac;  /* share of interactions in the validation period;
			  0 = 0.1 */
	double budget; /* whole tuning plus the refit, in fits of base
			  counted in work units (fitcost.c); 0 = 10 */
	int no_lightgcn; /* 1: LightGCN is not a candidate */
	int pools;       /* 1: every fit is also scored with the
			    personalised re-rank of each popularity list's
			    pools (knytt__tune_pool); 0: the model's best
			    over every item only */
	int fixed_kind;  /* 1: no candidate of another kind than base's */
	unsigned threads;
	/* NULL: no sequence model; else its list's weight is chosen on the
	 * validation period for the best setting (seq_w in the output) */
	const knytt__tune_seq *seq;
	/* called after each candidate (epoch = candidates done), may
	 * cancel (KNYTT_ECANCELED) */
	knytt_progress_fn progress;
	void *ctx;
} knytt__tune_in;

typedef struct knytt__tune_out {
	knytt__tune_cfg best;
	double ndcg, recall;      /* validation @20 of best */
	double base_ndcg;         /* the fixed settings, no blend */
	double pop_ndcg[KNYTT__TUNE_NPOP]; /* each popularity list alone */
	/* the best NDCG@20 over every fit, list and blend weight with each
	 * of the first npool pools of knytt__tune_pool (the first: every
	 * item; npool 1 without in->pools) */
	double pool_ndcg[KNYTT__TUNE_NPOOL];
	int npool;
	int npop;                 /* lists scored (in->npop) */
	double window_days;       /* best's list is windowed: its length,
				     days; 0 otherwise */
	unsigned tried;           /* model fits on the validation data */
	int cut_short;            /* the budget left out a candidate or
				     some of LightGCN's epochs (a function
				     of the data and settings, like every
				     field but the seconds) */
	/* work units (fitcost.c, one ALS multiply-add): the budget is
	 * counted in them, never in seconds */
	double base_units;        /* the fit of base on validation data */
	double budget_units;      /* budget x base_units */
	double units;             /* the fits tried plus the best's refit;
				     <= budget_units */
	double base_seconds;      /* the fit of base on validation data,
				     measured: reported only */
	double seconds;           /* the whole tuning, measured */
	size_t val_users, val_interactions;
	int64_t cut;              /* start of the validation period */
	/* the sequence model's list (in->seq): its weight in the blend
	 * (0: it did not win, or there was none), NDCG@20 on validation of
	 * the best setting blended with it at each weight of
	 * knytt__tune_seq_w (seq_ok 0: not scored) and the seconds of its
	 * fit and scoring */
	float seq_w;
	int seq_ok;
	double seq_ndcg[KNYTT__TUNE_NSEQ];
	double seq_seconds;
} knytt__tune_out;

/* The pool sizes of the personalised re-rank the tuning scores for every
 * fit (the first is 0: the model over every item). */
extern const unsigned knytt__tune_pool[KNYTT__TUNE_NPOOL];

/* The weights of the sequence model's list the tuning scores (the first
 * is 0: without it). */
extern const float knytt__tune_seq_w[KNYTT__TUNE_NSEQ];

/*
 * Carves the validation period (the latest vfrac of the interactions by
 * time), fits base and then the candidates of a small search on what
 * precedes it while the budget lasts, scores each fit with every blend
 * weight and popularity list by NDCG@20 on the validation period, and
 * writes the best setting (and the figures) to @p out.  Does not refit:
 * the caller trains the chosen setting on everything.
 * KNYTT_OK, KNYTT_EINVAL (no validation user: the data is too small or
 * too short in time), KNYTT_ECANCELED, KNYTT_ENOMEM.
 */
int knytt__tune(const knytt__tune_in *in, knytt__tune_out *out);

/* Trains the model of @p c on @p m (built) into *als or *lgc (the other
 * NULL).  Cancelling through @p fn keeps the last finished epoch. */
int knytt__tune_fit(const knytt__tune_cfg *c, const knytt_matrix *m,
		    unsigned threads, knytt_progress_fn fn, void *ctx,
		    knytt_als **als, knytt_lightgcn **lgc);

/* The work of fitting @p c (its iters included) on a matrix of @p nnz
 * entries (a double: the refit's is scaled) over nusers x nitems, in
 * units of one ALS multiply-add (fitcost.c): a function of the shape
 * and the settings only, so that the tuning's budget does not depend on
 * the machine's load. */
double knytt__fit_units(const knytt__tune_cfg *c, double nnz,
			uint32_t nusers, uint32_t nitems);

/* The popularity list of @p recs as of @p cut: items by time-decayed
 * confidence (half-life @p hl) of events in [cut - window, cut), or by
 * their count of events before the cut when hl is 0, best first, into
 * order[]; returns the count of items with a positive score (NULL
 * arrays: 0). */
uint32_t knytt__tune_poplist(const knytt__rec *recs, size_t n,
			     uint32_t nitems, int64_t cut, int64_t window,
			     double hl, uint32_t *order);

/* The setting as JSON (a "tune" object for the model's metadata) into
 * buf; returns what snprintf returns. */
int knytt__tune_json(const knytt__tune_out *o, char *buf, size_t cap);

#endif
