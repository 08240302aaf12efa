/*
 * sasrectrain.c -- training, settings and scoring of the sequence model
 * (the network itself is in sasrec.c).
 *
 * Training follows the paper (Kang & McAuley 2018, section III-E): each
 * sequence s_1..s_m is cut to its last L + 1 items; positions 1..n are
 * the input and each is trained to score its successor above one item
 * drawn uniformly from those the shopper never touched, by binary
 * cross-entropy; Adam (beta2 0.98, as the paper's code) on mini-batches
 * of sequences, the loss averaged over the batch's positions.
 *
 * Threads: the sequences of a batch are split in contiguous shares, one
 * per thread, each with its own activations and its own gradient array;
 * the Adam step sums the shares.  Each sequence draws its negatives and
 * dropout masks from a generator seeded by (seed, epoch, sequence), so
 * the same seed, settings, data and thread count give the same model.
 */
#include "sasrec.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The training data, checked. */
typedef struct sr_data {
	size_t nseq;
	const size_t *off;
	const uint32_t *items;
	uint32_t *order; /* sequences with >= 2 items, shuffled per epoch */
	size_t norder;
} sr_data;

/* Per-thread state. */
typedef struct sr_thr {
	knytt__sr_work *w;
	float *G;              /* gradient, shape.total floats */
	unsigned char *seen;   /* nitems flags, all 0 between sequences */
	uint32_t *pos, *neg;   /* L targets */
	double loss;
	size_t npos;
} sr_thr;

typedef struct sr_train {
	knytt_sasrec *s;
	sr_data *data;
	sr_thr *thr;
	unsigned nt;
	float *am, *av;        /* Adam moments */
	size_t b0, bn;         /* the batch: order[b0 .. b0 + bn) */
	unsigned epoch;
	uint64_t step;
	float scale, c1, c2;   /* 1 / positions, bias corrections */
} sr_train;

static uint64_t seq_seed(uint64_t seed, unsigned epoch, uint32_t seq)
{
	uint64_t z = seed ^ ((uint64_t)epoch << 32) ^ seq;
	return knytt__rand64(&z);
}

/* Loss and gradient of one sequence into thread state th. */
static void train_seq(sr_train *T, sr_thr *th, uint32_t q)
{
	const knytt__sr_shape *sh = &T->s->shape;
	const uint32_t *s = T->data->items + T->data->off[q];
	size_t m = T->data->off[q + 1] - T->data->off[q];
	size_t n = m - 1 < sh->L ? m - 1 : sh->L;
	uint64_t rng = seq_seed(T->s->seed, T->epoch, q);
	for (size_t j = 0; j < m; j++)
		th->seen[s[j]] = 1;
	for (size_t t = 0; t < n; t++) {
		th->pos[t] = s[m - n + t];
		uint32_t c = 0;
		/* bounded: a shopper who saw every item gets any negative */
		for (int tries = 0; tries < 64; tries++) {
			c = (uint32_t)(knytt__rand64(&rng) % sh->nitems);
			if (!th->seen[c])
				break;
		}
		th->neg[t] = c;
	}
	for (size_t j = 0; j < m; j++)
		th->seen[s[j]] = 0;
	th->loss += knytt__sr_loss_grad(sh, T->s->W, th->w, s + m - 1 - n, n,
					th->pos, th->neg, T->s->dropout, &rng,
					th->G);
	th->npos += n;
}

static void batch_part(void *ctx, unsigned t)
{
	sr_train *T = ctx;
	size_t lo = T->bn * t / T->nt, hi = T->bn * (t + 1) / T->nt;
	for (size_t j = lo; j < hi; j++)
		train_seq(T, &T->thr[t], T->data->order[T->b0 + j]);
}

/* Adam over parameters [lo, hi): the threads' gradients summed (and
 * zeroed for the next batch). */
static void adam_part(void *ctx, size_t lo, size_t hi)
{
	sr_train *T = ctx;
	float *W = T->s->W, lr = T->s->lr;
	for (size_t j = lo; j < hi; j++) {
		float g = 0;
		for (unsigned t = 0; t < T->nt; t++) {
			g += T->thr[t].G[j];
			T->thr[t].G[j] = 0;
		}
		g *= T->scale;
		T->am[j] = 0.9f * T->am[j] + 0.1f * g;
		T->av[j] = 0.98f * T->av[j] + 0.02f * g * g;
		float mh = T->am[j] / T->c1, vh = T->av[j] / T->c2;
		W[j] -= lr * mh / (sqrtf(vh) + 1e-8f);
	}
}

static void shuffle(uint32_t *v, size_t n, uint64_t *rng)
{
	for (size_t j = n; j > 1; j--) {
		size_t k = (size_t)(knytt__rand64(rng) % j);
		uint32_t x = v[j - 1];
		v[j - 1] = v[k];
		v[k] = x;
	}
}

/* One epoch; returns the mean loss per position. */
static double epoch(sr_train *T, uint64_t *rng)
{
	sr_data *D = T->data;
	double loss = 0;
	size_t npos = 0;
	shuffle(D->order, D->norder, rng);
	for (T->b0 = 0; T->b0 < D->norder; T->b0 += T->bn) {
		T->bn = D->norder - T->b0 < T->s->batch ? D->norder - T->b0
							 : T->s->batch;
		knytt__fork_join(T->nt, batch_part, T);
		size_t bp = 0;
		for (unsigned t = 0; t < T->nt; t++) {
			loss += T->thr[t].loss;
			bp += T->thr[t].npos;
			T->thr[t].loss = 0;
			T->thr[t].npos = 0;
		}
		npos += bp;
		T->step++;
		T->scale = 1.0f / (float)bp;
		T->c1 = 1.0f - powf(0.9f, (float)T->step);
		T->c2 = 1.0f - powf(0.98f, (float)T->step);
		knytt__parallel_for(T->nt, T->s->shape.total, 4096, adam_part,
				    T);
	}
	return npos ? loss / (double)npos : 0;
}

static int check_data(const knytt_sasrec *s, uint32_t nitems, size_t nseq,
		      const size_t *off, const uint32_t *items, size_t *nuse)
{
	if (!s)
		return knytt__err(KNYTT_EINVAL, "model must not be NULL");
	if (s->trained)
		return knytt__err(KNYTT_ESTATE,
				  "model already trained or loaded: use a "
				  "new handle");
	if (nitems == 0 || nseq == 0 || !off)
		return knytt__err(KNYTT_EINVAL,
				  "nitems and nseq must be > 0 and offsets "
				  "not NULL");
	if (nseq > UINT32_MAX - 1)
		return knytt__err(KNYTT_EINVAL, "nseq %zu: at most 2^32 - 2",
				  nseq);
	if (off[0] != 0)
		return knytt__err(KNYTT_EINVAL, "offsets[0] must be 0");
	if (off[nseq] && !items)
		return knytt__err(KNYTT_EINVAL, "items must not be NULL");
	*nuse = 0;
	for (size_t q = 0; q < nseq; q++) {
		if (off[q + 1] < off[q])
			return knytt__err(KNYTT_EINVAL,
					  "offsets[%zu] < offsets[%zu]: "
					  "offsets must not decrease",
					  q + 1, q);
		*nuse += off[q + 1] - off[q] >= 2;
	}
	for (size_t j = 0; j < off[nseq]; j++)
		if (items[j] >= nitems)
			return knytt__err(KNYTT_EINVAL,
					  "items[%zu] = %u: out of range "
					  "(nitems %u)",
					  j, items[j], nitems);
	if (*nuse == 0)
		return knytt__err(KNYTT_EINVAL,
				  "no sequence has 2 items: nothing to "
				  "learn a next item from");
	return KNYTT_OK;
}

static void thr_free(sr_train *T)
{
	for (unsigned t = 0; T->thr && t < T->nt; t++) {
		knytt__sr_work_free(T->thr[t].w);
		knytt__afree(T->thr[t].G);
		free(T->thr[t].seen);
		free(T->thr[t].pos);
		free(T->thr[t].neg);
	}
	free(T->thr);
	knytt__afree(T->am);
	knytt__afree(T->av);
}

static int thr_init(sr_train *T)
{
	const knytt__sr_shape *sh = &T->s->shape;
	size_t tot = sh->total * sizeof(float);
	T->thr = calloc(T->nt, sizeof *T->thr);
	T->am = knytt__aalloc(tot);
	T->av = knytt__aalloc(tot);
	if (!T->thr || !T->am || !T->av)
		return -1;
	for (unsigned t = 0; t < T->nt; t++) {
		sr_thr *th = &T->thr[t];
		th->w = knytt__sr_work_new(sh);
		th->G = knytt__aalloc(tot);
		th->seen = calloc(sh->nitems, 1);
		th->pos = malloc(sh->L * sizeof *th->pos);
		th->neg = malloc(sh->L * sizeof *th->neg);
		if (!th->w || !th->G || !th->seen || !th->pos || !th->neg)
			return -1;
	}
	return 0;
}

static int report(knytt_sasrec *s, unsigned ep, double loss, double t0)
{
	if (!s->progress)
		return 0;
	double el = now_s() - t0;
	knytt_progress p = {.epoch = ep + 1,
			    .epochs = s->epochs,
			    .loss = loss,
			    .elapsed = el,
			    .eta = el / (ep + 1) * (s->epochs - ep - 1)};
	return s->progress(s->progress_ctx, &p);
}

/* Early stopping after epoch ep (0-based): evaluates when one is due,
 * keeps a copy of the best weights in best; returns 1 when patience
 * evaluations in a row have not beaten the best NDCG@10. */
static int validate(sr_train *T, const knytt__sr_val *V, float *best,
		    unsigned ep, unsigned *bad)
{
	knytt_sasrec *s = T->s;
	if ((ep + 1) % s->es_every && ep + 1 != s->epochs)
		return 0;
	knytt__sr_work *w[256];
	unsigned nt = T->nt < 256 ? T->nt : 256;
	for (unsigned t = 0; t < nt; t++)
		w[t] = T->thr[t].w;
	knytt__sr_score sc = {.epoch = ep + 1};
	knytt__sr_val_eval(V, &s->shape, s->W, w, nt, &sc.hr, &sc.ndcg);
	s->val_last = sc;
	if (!s->val_best.epoch || sc.ndcg > s->val_best.ndcg) {
		s->val_best = sc;
		memcpy(best, s->W, s->shape.total * sizeof *best);
		*bad = 0;
		return 0;
	}
	return ++*bad >= s->es_patience;
}

/* The epochs, with early stopping when V is not NULL: the model ends
 * with the best evaluated weights (also when the callback cancels). */
static int run_epochs(sr_train *T, const knytt__sr_val *V, uint64_t *rng)
{
	knytt_sasrec *s = T->s;
	float *best = NULL;
	if (V && !(best = knytt__aalloc(s->shape.total * sizeof *best)))
		return knytt__err(KNYTT_ENOMEM,
				  "no memory for the best weights of early "
				  "stopping");
	int rc = KNYTT_OK;
	unsigned bad = 0;
	double t0 = now_s();
	for (unsigned ep = 0; ep < s->epochs; ep++) {
		T->epoch = ep;
		double loss = epoch(T, rng);
		int stop = V && validate(T, V, best, ep, &bad);
		if (report(s, ep, loss, t0) != 0) {
			rc = knytt__err(KNYTT_ECANCELED,
					"training canceled after epoch %u of "
					"%u",
					ep + 1, s->epochs);
			break;
		}
		if (stop)
			break;
	}
	if (V && s->val_best.epoch && s->val_best.epoch != s->val_last.epoch)
		memcpy(s->W, best, s->shape.total * sizeof *best);
	knytt__afree(best);
	return rc;
}

int knytt_sasrec_train(knytt_sasrec *s, uint32_t nitems, size_t nseq,
		       const size_t *offsets, const uint32_t *items)
{
	size_t nuse = 0;
	int rc = check_data(s, nitems, nseq, offsets, items, &nuse);
	if (rc)
		return rc;
	/* Early stopping trains on the sequences without their held-out
	 * last items (a sequence of >= 3 stays >= 2: nuse is unchanged). */
	knytt__sr_val V = {0};
	bool es = s->es_every > 0;
	s->val_last = s->val_best = (knytt__sr_score){0};
	if (es && (rc = knytt__sr_val_init(&V, nitems, nseq, offsets, items,
					    s->seed)) != 0)
		return rc;
	if (es) {
		offsets = V.off;
		items = V.items;
	}
	sr_data D = {nseq, offsets, items, malloc(nuse * sizeof(uint32_t)),
		     0};
	sr_train T = {.s = s, .data = &D, .nt = knytt__threads(s->threads)};
	knytt__sr_shape_init(&s->shape, s->dim, s->max_len, s->blocks, nitems);
	s->W = knytt__aalloc(s->shape.total * sizeof(float));
	if (!D.order || !s->W || thr_init(&T)) {
		rc = knytt__err(KNYTT_ENOMEM,
				"no memory for a sequence model of %zu "
				"parameters",
				s->shape.total);
		goto out;
	}
	for (size_t q = 0; q < nseq; q++)
		if (offsets[q + 1] - offsets[q] >= 2)
			D.order[D.norder++] = (uint32_t)q;
	uint64_t rng = s->seed;
	knytt__sr_init(&s->shape, s->W, &rng);
	/* Our threads already split the batch; OpenBLAS threading each
	 * sequence-sized product on top of them made an ML-1M epoch (L 200,
	 * 2 cores) take 214 s instead of 10 s, most of it in thread
	 * hand-offs.  One BLAS thread while training, the setting restored
	 * after (a BLAS call elsewhere in the process meanwhile runs on one
	 * thread: slower, never wrong). */
	int blas_threads = openblas_get_num_threads();
	openblas_set_num_threads(1);
	s->trained = true; /* read functions work from the callback */
	rc = run_epochs(&T, es ? &V : NULL, &rng);
	openblas_set_num_threads(blas_threads);
out:
	if (rc && rc != KNYTT_ECANCELED) {
		knytt__afree(s->W);
		s->W = NULL;
		s->trained = false;
	}
	thr_free(&T);
	free(D.order);
	knytt__sr_val_free(&V);
	return rc;
}

/* ---------------------------------------------------------------------
 * Scoring.
 * ------------------------------------------------------------------- */

/* The final hidden state after the last of the n items of seq. */
static int encode(const knytt_sasrec *s, const uint32_t *seq, size_t n,
		  float *vec)
{
	if (!s || !seq || !vec)
		return knytt__err(KNYTT_EINVAL,
				  "model, seq and vec must not be NULL");
	if (!s->trained)
		return knytt__err(KNYTT_ESTATE, "model not trained");
	if (n == 0)
		return knytt__err(KNYTT_EINVAL,
				  "sequence is empty: nothing to follow");
	const knytt__sr_shape *sh = &s->shape;
	for (size_t j = 0; j < n; j++)
		if (seq[j] >= sh->nitems)
			return knytt__err(KNYTT_EINVAL,
					  "seq[%zu] = %u: out of range "
					  "(nitems %u)",
					  j, seq[j], sh->nitems);
	size_t m = n < sh->L ? n : sh->L;
	knytt__sr_work *w = knytt__sr_work_new(sh);
	if (!w)
		return knytt__err(KNYTT_ENOMEM, "no memory to score");
	const float *z = knytt__sr_forward(sh, s->W, w, seq + n - m, m, 0,
					   NULL);
	memcpy(vec, z + (m - 1) * sh->d, sh->d * sizeof *vec);
	knytt__sr_work_free(w);
	return KNYTT_OK;
}

int knytt_sasrec_encode(const knytt_sasrec *s, const uint32_t *seq,
			size_t n, float *vec)
{
	return encode(s, seq, n, vec);
}

int knytt_sasrec_score(const knytt_sasrec *s, const uint32_t *seq, size_t n,
		       const uint32_t *items, size_t count, float *out)
{
	if (!out && count)
		return knytt__err(KNYTT_EINVAL, "out must not be NULL");
	if (s && s->trained) {
		uint32_t ni = s->shape.nitems;
		if (!items && count > ni)
			return knytt__err(KNYTT_EINVAL,
					  "count %zu: more than the model's "
					  "%u items",
					  count, ni);
		for (size_t j = 0; items && j < count; j++)
			if (items[j] >= ni)
				return knytt__err(KNYTT_EINVAL,
						  "items[%zu] = %u: out of "
						  "range (nitems %u)",
						  j, items[j], ni);
	}
	float z[1024];
	int rc = encode(s, seq, n, z);
	if (rc)
		return rc;
	unsigned d = s->shape.d;
	for (size_t j = 0; j < count; j++) {
		const float *e = s->W + s->shape.E +
				 (size_t)(items ? items[j] : j) * d;
		float a = 0;
		for (unsigned q = 0; q < d; q++)
			a += z[q] * e[q];
		out[j] = a;
	}
	return KNYTT_OK;
}

int knytt_sasrec_item_factors(const knytt_sasrec *s, uint32_t first,
			      uint32_t n, float *out)
{
	if (!s || (!out && n))
		return knytt__err(KNYTT_EINVAL, "model and out must not be NULL");
	if (!s->trained)
		return knytt__err(KNYTT_ESTATE, "model not trained");
	if ((uint64_t)first + n > s->shape.nitems)
		return knytt__err(KNYTT_EINVAL,
				  "items [%u, %u + %u) beyond the model's %u",
				  first, first, n, s->shape.nitems);
	memcpy(out, s->W + s->shape.E + (size_t)first * s->shape.d,
	       (size_t)n * s->shape.d * sizeof *out);
	return KNYTT_OK;
}

unsigned knytt_sasrec_dim(const knytt_sasrec *s)
{
	return s && s->trained ? s->shape.d : 0;
}

uint32_t knytt_sasrec_items(const knytt_sasrec *s)
{
	return s && s->trained ? s->shape.nitems : 0;
}

unsigned knytt_sasrec_max_len(const knytt_sasrec *s)
{
	return s && s->trained ? s->shape.L : 0;
}

/* ---------------------------------------------------------------------
 * Settings.
 * ------------------------------------------------------------------- */

int knytt_sasrec_create(knytt_sasrec **out)
{
	if (!out)
		return knytt__err(KNYTT_EINVAL, "out must not be NULL");
	knytt_sasrec *s = calloc(1, sizeof *s);
	if (!s)
		return knytt__err(KNYTT_ENOMEM,
				  "no memory for a sequence model");
	s->dim = 50;
	s->blocks = 2;
	s->max_len = 50;
	s->dropout = 0.2f;
	s->lr = 0.001f;
	s->batch = 128;
	s->epochs = 20;
	s->seed = 42;
	*out = s;
	return KNYTT_OK;
}

void knytt_sasrec_close(knytt_sasrec *s)
{
	if (!s)
		return;
	knytt__afree(s->W);
	free(s);
}

/* The checks every setter of a training setting shares. */
static int settable(const knytt_sasrec *s)
{
	if (!s)
		return knytt__err(KNYTT_EINVAL, "model must not be NULL");
	if (s->trained)
		return knytt__err(KNYTT_ESTATE,
				  "model already trained or loaded: settings "
				  "are fixed");
	return KNYTT_OK;
}

static int set_uint(knytt_sasrec *s, unsigned *field, unsigned v,
		    unsigned lo, unsigned hi, const char *name)
{
	int rc = settable(s);
	if (rc)
		return rc;
	if (v < lo || v > hi)
		return knytt__err(KNYTT_EINVAL, "%s %u: must be %u..%u", name,
				  v, lo, hi);
	*field = v;
	return KNYTT_OK;
}

int knytt_sasrec_set_dim(knytt_sasrec *s, unsigned dim)
{
	return set_uint(s, s ? &s->dim : NULL, dim, 1, 1024, "dim");
}

int knytt_sasrec_set_blocks(knytt_sasrec *s, unsigned blocks)
{
	return set_uint(s, s ? &s->blocks : NULL, blocks, 1, 8, "blocks");
}

int knytt_sasrec_set_max_len(knytt_sasrec *s, unsigned len)
{
	return set_uint(s, s ? &s->max_len : NULL, len, 1, 4096, "max_len");
}

int knytt_sasrec_set_batch(knytt_sasrec *s, unsigned batch)
{
	return set_uint(s, s ? &s->batch : NULL, batch, 1, 1u << 20,
			"batch");
}

int knytt_sasrec_set_epochs(knytt_sasrec *s, unsigned epochs)
{
	return set_uint(s, s ? &s->epochs : NULL, epochs, 1, 100000,
			"epochs");
}

int knytt_sasrec_set_dropout(knytt_sasrec *s, float rate)
{
	int rc = settable(s);
	if (rc)
		return rc;
	if (!(rate >= 0.0f && rate <= 0.9f))
		return knytt__err(KNYTT_EINVAL,
				  "dropout %g: must be in [0, 0.9]",
				  (double)rate);
	s->dropout = rate;
	return KNYTT_OK;
}

int knytt_sasrec_set_learning_rate(knytt_sasrec *s, float lr)
{
	int rc = settable(s);
	if (rc)
		return rc;
	if (!(lr > 0.0f && lr < 1e3f))
		return knytt__err(KNYTT_EINVAL,
				  "learning rate %g: must be > 0 and finite",
				  (double)lr);
	s->lr = lr;
	return KNYTT_OK;
}

int knytt_sasrec_set_seed(knytt_sasrec *s, uint64_t seed)
{
	int rc = settable(s);
	if (rc)
		return rc;
	s->seed = seed;
	return KNYTT_OK;
}

int knytt_sasrec_set_early_stop(knytt_sasrec *s, unsigned every,
				unsigned patience)
{
	int rc = settable(s);
	if (rc)
		return rc;
	if (every > 100000 || (every && (patience < 1 || patience > 100000)))
		return knytt__err(KNYTT_EINVAL,
				  "early stop every %u, patience %u: every "
				  "must be 0 (off) or 1..100000 and patience "
				  "1..100000",
				  every, patience);
	s->es_every = every;
	s->es_patience = patience;
	return KNYTT_OK;
}

int knytt_sasrec_validation(const knytt_sasrec *s, int best,
			    unsigned *epoch, double *hr, double *ndcg)
{
	if (!s)
		return knytt__err(KNYTT_EINVAL, "model must not be NULL");
	const knytt__sr_score *sc = best ? &s->val_best : &s->val_last;
	if (!sc->epoch)
		return knytt__err(KNYTT_ESTATE,
				  "no validation: the model was not trained "
				  "with early stopping, or no evaluation is "
				  "due yet");
	if (epoch)
		*epoch = sc->epoch;
	if (hr)
		*hr = sc->hr;
	if (ndcg)
		*ndcg = sc->ndcg;
	return KNYTT_OK;
}

int knytt_sasrec_set_threads(knytt_sasrec *s, unsigned threads)
{
	if (!s)
		return knytt__err(KNYTT_EINVAL, "model must not be NULL");
	if (threads > 256)
		return knytt__err(KNYTT_EINVAL, "threads %u: at most 256",
				  threads);
	s->threads = threads;
	return KNYTT_OK;
}

int knytt_sasrec_set_progress(knytt_sasrec *s, knytt_progress_fn fn,
			      void *ctx)
{
	if (!s)
		return knytt__err(KNYTT_EINVAL, "model must not be NULL");
	s->progress = fn;
	s->progress_ctx = ctx;
	return KNYTT_OK;
}
