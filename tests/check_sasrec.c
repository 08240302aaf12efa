/*
 * check_sasrec.c -- the sequence model: the backward pass against finite
 * differences (with and without dropout), learning a planted next-item
 * pattern, determinism, cancel, save/load and corrupt files, bad input.
 */
#include "../lib/model/sasrec.h"
#include "testutil.h"

#include <unistd.h>

/* Loss of one sequence at W, the masks drawn from a copy of seed. */
static double loss_at(const knytt__sr_shape *sh, const float *W,
		      knytt__sr_work *w, const uint32_t *seq, size_t n,
		      const uint32_t *pos, const uint32_t *neg, float drop,
		      uint64_t seed, float *G)
{
	uint64_t rng = seed;
	return knytt__sr_loss_grad(sh, W, w, seq, n, pos, neg, drop, &rng, G);
}

/*
 * Every parameter's analytic derivative against a central difference
 * (in double over float weights: step 2e-3, tolerance 2% + 2e-3).  Layer
 * norm gains and biases are randomised so that none is at its neutral
 * value; a short sequence (n < L) checks the position offset too.
 */
static void grad_check(float drop, size_t n)
{
	knytt__sr_shape sh;
	knytt__sr_shape_init(&sh, 4, 6, 2, 9);
	float *W = calloc(sh.total, sizeof *W);
	float *G = calloc(sh.total, sizeof *G);
	float *S = calloc(sh.total, sizeof *S);
	uint64_t rng = 7;
	knytt__sr_init(&sh, W, &rng);
	for (unsigned b = 0; b < sh.blocks; b++)
		for (int part = KNYTT__SR_LN1G; part < KNYTT__SR_NPART; part++) {
			if (part == KNYTT__SR_WQKV || part == KNYTT__SR_W1 ||
			    part == KNYTT__SR_W2)
				continue;
			size_t o = knytt__sr_off(&sh, b, part);
			size_t len = part == KNYTT__SR_BQKV ? 3 * sh.d : sh.d;
			for (size_t j = 0; j < len; j++)
				W[o + j] += (float)(knytt__randu(&rng) - 0.5);
		}
	for (size_t j = 0; j < 2 * sh.d; j++)
		W[sh.lnf + j] += (float)(knytt__randu(&rng) - 0.5);
	/* larger embeddings: the scores move, the loss is not flat */
	for (size_t j = 0; j < sh.blk; j++)
		W[j] *= 3.0f;
	knytt__sr_work *w = knytt__sr_work_new(&sh);
	ck_assert_ptr_nonnull(w);
	static const uint32_t seq[6] = {3, 1, 4, 1, 5, 8};
	static const uint32_t pos[6] = {1, 4, 1, 5, 8, 2};
	static const uint32_t neg[6] = {0, 7, 2, 6, 0, 3};
	loss_at(&sh, W, w, seq, n, pos, neg, drop, 99, G);
	double gnorm = 0;
	size_t bad = 0;
	for (size_t j = 0; j < sh.total; j++) {
		float keep = W[j];
		const double h = 2e-3;
		W[j] = (float)(keep + h);
		double up = loss_at(&sh, W, w, seq, n, pos, neg, drop, 99, S);
		W[j] = (float)(keep - h);
		double dn = loss_at(&sh, W, w, seq, n, pos, neg, drop, 99, S);
		W[j] = keep;
		double num = (up - dn) / ((double)(float)(keep + h) -
					  (double)(float)(keep - h));
		gnorm += (double)G[j] * G[j];
		if (fabs(num - G[j]) > 2e-2 * fabs(num) + 2e-3) {
			if (bad++ < 5)
				fprintf(stderr,
					"grad %zu: analytic %g numeric %g\n",
					j, (double)G[j], num);
		}
	}
	ck_assert_uint_eq(bad, 0);
	ck_assert(gnorm > 1e-2); /* a real gradient, not zeros on both sides */
	knytt__sr_work_free(w);
	free(W);
	free(G);
	free(S);
}

START_TEST(gradient_matches_finite_differences)
{
	grad_check(0.0f, 4);
	grad_check(0.0f, 6);
}
END_TEST

START_TEST(gradient_with_dropout_matches)
{
	grad_check(0.3f, 5);
}
END_TEST

/* Only a sequence's last max_len items count, and a short sequence is
 * placed at the newest positions: the same suffix gives the same state. */
START_TEST(forward_reads_the_last_items)
{
	knytt__sr_shape sh;
	knytt__sr_shape_init(&sh, 8, 4, 1, 20);
	float *W = calloc(sh.total, sizeof *W);
	uint64_t rng = 3;
	knytt__sr_init(&sh, W, &rng);
	knytt__sr_work *w = knytt__sr_work_new(&sh);
	uint32_t a[3] = {5, 6, 7}, b[3] = {9, 6, 7};
	float za[8], zb[8];
	memcpy(za, knytt__sr_forward(&sh, W, w, a, 3, 0, NULL) + 2 * 8,
	       sizeof za);
	memcpy(zb, knytt__sr_forward(&sh, W, w, b, 3, 0, NULL) + 2 * 8,
	       sizeof zb);
	/* causal attention: the newest state depends on every item */
	ck_assert(memcmp(za, zb, sizeof za) != 0);
	/* causal: rows 0 and 1 do not see a later item */
	uint32_t c[3] = {5, 6, 2};
	float ra[16], rc[16];
	memcpy(ra, knytt__sr_forward(&sh, W, w, a, 3, 0, NULL), sizeof ra);
	memcpy(rc, knytt__sr_forward(&sh, W, w, c, 3, 0, NULL), sizeof rc);
	ck_assert(memcmp(ra, rc, sizeof ra) == 0);
	ck_assert(memcmp(knytt__sr_forward(&sh, W, w, c, 3, 0, NULL) + 16,
			 za, sizeof za) != 0);
	knytt__sr_work_free(w);
	free(W);
}
END_TEST

/* ---- planted pattern: item i is followed by i + 1 (mod n), 10% noise */

typedef struct planted {
	size_t nseq;
	size_t *off;
	uint32_t *items;
} planted;

static planted plant(uint32_t ni, size_t nseq, size_t len, uint64_t seed)
{
	planted p = {nseq, malloc((nseq + 1) * sizeof(size_t)),
		     malloc(nseq * len * sizeof(uint32_t))};
	uint64_t rng = seed;
	for (size_t q = 0; q <= nseq; q++)
		p.off[q] = q * len;
	for (size_t q = 0; q < nseq; q++) {
		uint32_t c = (uint32_t)(knytt__rand64(&rng) % ni);
		for (size_t t = 0; t < len; t++) {
			p.items[q * len + t] = c;
			c = knytt__randu(&rng) < 0.9
				    ? (c + 1) % ni
				    : (uint32_t)(knytt__rand64(&rng) % ni);
		}
	}
	return p;
}

static void unplant(planted *p)
{
	free(p->off);
	free(p->items);
}

static knytt_sasrec *small_model(unsigned epochs, unsigned threads)
{
	knytt_sasrec *s;
	ck_assert_int_eq(knytt_sasrec_create(&s), 0);
	ck_assert_int_eq(knytt_sasrec_set_dim(s, 16), 0);
	ck_assert_int_eq(knytt_sasrec_set_blocks(s, 1), 0);
	ck_assert_int_eq(knytt_sasrec_set_max_len(s, 8), 0);
	ck_assert_int_eq(knytt_sasrec_set_dropout(s, 0.1f), 0);
	ck_assert_int_eq(knytt_sasrec_set_learning_rate(s, 0.01f), 0);
	ck_assert_int_eq(knytt_sasrec_set_batch(s, 32), 0);
	ck_assert_int_eq(knytt_sasrec_set_epochs(s, epochs), 0);
	ck_assert_int_eq(knytt_sasrec_set_threads(s, threads), 0);
	return s;
}

typedef struct losses {
	double first, last;
	unsigned n, stop_after;
} losses;

static int on_epoch(void *ctx, const knytt_progress *p)
{
	losses *l = ctx;
	if (p->epoch == 1)
		l->first = p->loss;
	l->last = p->loss;
	l->n++;
	return l->stop_after && p->epoch >= l->stop_after;
}

/* HR@10 of the planted successor over all 100 items for fresh
 * sequences (chance: 0.1). */
static double hit_rate(const knytt_sasrec *s, uint32_t ni)
{
	planted t = plant(ni, 200, 6, 777);
	size_t hits = 0;
	float sc[100];
	for (size_t q = 0; q < t.nseq; q++) {
		const uint32_t *seq = t.items + t.off[q];
		uint32_t want = (seq[5] + 1) % ni;
		ck_assert_int_eq(knytt_sasrec_score(s, seq, 6, NULL, ni, sc),
				 0);
		unsigned above = 0;
		for (uint32_t i = 0; i < ni; i++)
			above += sc[i] > sc[want];
		hits += above < 10;
	}
	unplant(&t);
	return (double)hits / 200.0;
}

START_TEST(learns_planted_successor)
{
	const uint32_t ni = 100;
	planted p = plant(ni, 400, 12, 1);
	knytt_sasrec *s = small_model(15, 2);
	losses l = {0};
	ck_assert_int_eq(knytt_sasrec_set_progress(s, on_epoch, &l), 0);
	ck_assert_int_eq(knytt_sasrec_train(s, ni, p.nseq, p.off, p.items),
			 0);
	ck_assert_uint_eq(l.n, 15);
	ck_assert(l.last < 0.6 * l.first);
	double hr = hit_rate(s, ni);
	fprintf(stderr, "sasrec planted: loss %.3f -> %.3f, HR@10 %.3f "
		"(chance 0.1)\n", l.first, l.last, hr);
	ck_assert(hr > 0.8);
	ck_assert_uint_eq(knytt_sasrec_dim(s), 16);
	ck_assert_uint_eq(knytt_sasrec_items(s), ni);
	ck_assert_uint_eq(knytt_sasrec_max_len(s), 8);
	/* encode . item factors is the score */
	float z[16], e[16], sc[3];
	uint32_t cand[3] = {4, 99, 0};
	ck_assert_int_eq(knytt_sasrec_encode(s, p.items, 12, z), 0);
	ck_assert_int_eq(knytt_sasrec_score(s, p.items, 12, cand, 3, sc), 0);
	for (int j = 0; j < 3; j++) {
		ck_assert_int_eq(knytt_sasrec_item_factors(s, cand[j], 1, e),
				 0);
		float dot = 0;
		for (int q = 0; q < 16; q++)
			dot += z[q] * e[q];
		ck_assert_float_eq_tol(sc[j], dot, 1e-4f);
	}
	knytt_sasrec_close(s);
	unplant(&p);
}
END_TEST

START_TEST(deterministic_and_cancelable)
{
	planted p = plant(40, 60, 10, 5);
	knytt_sasrec *a = small_model(3, 2), *b = small_model(3, 2);
	ck_assert_int_eq(knytt_sasrec_train(a, 40, p.nseq, p.off, p.items), 0);
	ck_assert_int_eq(knytt_sasrec_train(b, 40, p.nseq, p.off, p.items), 0);
	ck_assert(memcmp(a->W, b->W, a->shape.total * sizeof(float)) == 0);
	knytt_sasrec_close(b);
	b = small_model(3, 2);
	ck_assert_int_eq(knytt_sasrec_set_seed(b, 43), 0);
	ck_assert_int_eq(knytt_sasrec_train(b, 40, p.nseq, p.off, p.items), 0);
	ck_assert(memcmp(a->W, b->W, a->shape.total * sizeof(float)) != 0);
	knytt_sasrec_close(b);
	/* cancel after epoch 1: the model stays usable */
	knytt_sasrec *c = small_model(5, 1);
	losses l = {.stop_after = 1};
	knytt_sasrec_set_progress(c, on_epoch, &l);
	ck_assert_int_eq(knytt_sasrec_train(c, 40, p.nseq, p.off, p.items),
			 KNYTT_ECANCELED);
	ck_assert_uint_eq(l.n, 1);
	float sc[40];
	ck_assert_int_eq(knytt_sasrec_score(c, p.items, 3, NULL, 40, sc), 0);
	knytt_sasrec_close(c);
	knytt_sasrec_close(a);
	unplant(&p);
}
END_TEST

/* ---- early stopping ---- */

typedef struct curve {
	unsigned n, epoch[64];
	double ndcg[64];
} curve;

/* Records every evaluation the model reports as the latest. */
typedef struct val_ctx {
	const knytt_sasrec *s;
	curve c;
} val_ctx;

static int record_val(void *ctx, const knytt_progress *p)
{
	val_ctx *v = ctx;
	unsigned ep;
	double ndcg;
	if (knytt_sasrec_validation(v->s, 0, &ep, NULL, &ndcg) == 0 &&
	    ep == p->epoch && v->c.n < 64) {
		v->c.epoch[v->c.n] = ep;
		v->c.ndcg[v->c.n++] = ndcg;
	}
	return 0;
}

/* NDCG@10 of each sequence's last item after the rest, against every
 * item the sequence never contains (what the model's validation draws
 * when fewer than 100 are left), ties ranked above. */
static double held_out_ndcg(const knytt_sasrec *s, const planted *p,
			    uint32_t ni)
{
	double g = 0;
	float sc[256];
	for (size_t q = 0; q < p->nseq; q++) {
		const uint32_t *seq = p->items + p->off[q];
		size_t m = p->off[q + 1] - p->off[q];
		unsigned char in[256] = {0};
		for (size_t j = 0; j < m; j++)
			in[seq[j]] = 1;
		ck_assert_int_eq(knytt_sasrec_score(s, seq, m - 1, NULL, ni,
						    sc),
				 0);
		unsigned rank = 0;
		for (uint32_t i = 0; i < ni; i++)
			rank += !in[i] && sc[i] >= sc[seq[m - 1]];
		g += rank < 10 ? 1.0 / log2(rank + 2.0) : 0;
	}
	return g / (double)p->nseq;
}

/*
 * A high learning rate on a planted order: validation NDCG@10 climbs far
 * above chance, then stalls; training stops patience evaluations after
 * the best, before the most epochs, and the model keeps the best epoch's
 * weights: the same, bit for bit, as a model trained for that many
 * epochs on the sequences without their last items.
 */
START_TEST(early_stop_keeps_best)
{
	const uint32_t ni = 60;
	planted p = plant(ni, 200, 10, 3);
	knytt_sasrec *s = small_model(40, 2);
	ck_assert_int_eq(knytt_sasrec_set_learning_rate(s, 0.05f), 0);
	ck_assert_int_eq(knytt_sasrec_set_early_stop(s, 2, 2), 0);
	val_ctx v = {.s = s};
	ck_assert_int_eq(knytt_sasrec_set_progress(s, record_val, &v), 0);
	ck_assert_int_eq(knytt_sasrec_validation(s, 1, NULL, NULL, NULL),
			 KNYTT_ESTATE);
	ck_assert_int_eq(knytt_sasrec_train(s, ni, p.nseq, p.off, p.items),
			 0);
	unsigned best, last;
	double hr, ndcg;
	ck_assert_int_eq(knytt_sasrec_validation(s, 1, &best, &hr, &ndcg), 0);
	ck_assert_int_eq(knytt_sasrec_validation(s, 0, &last, NULL, NULL), 0);
	fprintf(stderr, "sasrec early stop: best NDCG@10 %.3f HR@10 %.3f at "
		"epoch %u, stopped at %u (of 40), %u evaluations\n",
		ndcg, hr, best, last, v.c.n);
	/* an evaluation every 2 epochs, each reported once */
	ck_assert_uint_eq(v.c.n, last / 2);
	for (unsigned j = 0; j < v.c.n; j++) {
		ck_assert_uint_eq(v.c.epoch[j], 2 * (j + 1));
		ck_assert(v.c.ndcg[j] <= ndcg);
		if (v.c.epoch[j] < best)
			ck_assert(v.c.ndcg[j] < ndcg);
	}
	ck_assert(ndcg > 0.5 && hr > 0.6); /* chance: about 0.1 */
	/* the figure is the kept model's, computed another way */
	ck_assert(fabs(held_out_ndcg(s, &p, ni) - ndcg) < 1e-6);
	ck_assert_uint_lt(last, 40);
	ck_assert_uint_eq(last, best + 2 * 2);
	/* the kept weights are the best epoch's */
	planted q = plant(ni, 200, 10, 3);
	for (size_t k = 0; k < q.nseq; k++)
		q.off[k + 1] = q.off[k] + 9;
	for (size_t k = 0; k < q.nseq; k++)
		memmove(q.items + q.off[k], p.items + p.off[k],
			9 * sizeof *q.items);
	knytt_sasrec *r = small_model(best, 2);
	ck_assert_int_eq(knytt_sasrec_set_learning_rate(r, 0.05f), 0);
	ck_assert_int_eq(knytt_sasrec_train(r, ni, q.nseq, q.off, q.items),
			 0);
	ck_assert(memcmp(r->W, s->W, s->shape.total * sizeof(float)) == 0);
	ck_assert_int_eq(knytt_sasrec_validation(r, 1, NULL, NULL, NULL),
			 KNYTT_ESTATE);
	knytt_sasrec_close(r);
	unplant(&q);
	knytt_sasrec_close(s);
	unplant(&p);
}
END_TEST

START_TEST(early_stop_bad_input)
{
	knytt_sasrec *s;
	ck_assert_int_eq(knytt_sasrec_create(&s), 0);
	ck_assert_int_eq(knytt_sasrec_set_early_stop(NULL, 1, 1),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_set_early_stop(s, 1, 0), KNYTT_EINVAL);
	ck_assert(strstr(knytt_errmsg(), "patience") != NULL);
	ck_assert_int_eq(knytt_sasrec_set_early_stop(s, 100001, 1),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_set_early_stop(s, 0, 0), 0);
	ck_assert_int_eq(knytt_sasrec_validation(NULL, 1, NULL, NULL, NULL),
			 KNYTT_EINVAL);
	/* sequences of 2 items: nothing to hold out */
	size_t off[3] = {0, 2, 4};
	uint32_t it[4] = {0, 1, 2, 3};
	ck_assert_int_eq(knytt_sasrec_set_early_stop(s, 1, 1), 0);
	ck_assert_int_eq(knytt_sasrec_train(s, 4, 2, off, it), KNYTT_EINVAL);
	ck_assert(strstr(knytt_errmsg(), "3 items") != NULL);
	ck_assert_uint_eq(knytt_sasrec_dim(s), 0);
	/* one of 3: trains, one evaluation at the last epoch */
	size_t off3[3] = {0, 2, 5};
	uint32_t it3[5] = {0, 1, 2, 3, 1};
	ck_assert_int_eq(knytt_sasrec_set_dim(s, 8), 0);
	ck_assert_int_eq(knytt_sasrec_set_epochs(s, 3), 0);
	ck_assert_int_eq(knytt_sasrec_set_early_stop(s, 10, 1), 0);
	ck_assert_int_eq(knytt_sasrec_train(s, 4, 2, off3, it3), 0);
	unsigned ep;
	ck_assert_int_eq(knytt_sasrec_validation(s, 0, &ep, NULL, NULL), 0);
	ck_assert_uint_eq(ep, 3);
	ck_assert_int_eq(knytt_sasrec_set_early_stop(s, 1, 1), KNYTT_ESTATE);
	/* a loaded model has no validation */
	void *buf;
	size_t len;
	ck_assert_int_eq(knytt_sasrec_save_buffer(s, &buf, &len), 0);
	knytt_sasrec *l;
	ck_assert_int_eq(knytt_sasrec_create(&l), 0);
	ck_assert_int_eq(knytt_sasrec_load_buffer(l, buf, len), 0);
	ck_assert_int_eq(knytt_sasrec_validation(l, 0, NULL, NULL, NULL),
			 KNYTT_ESTATE);
	knytt_free(buf);
	knytt_sasrec_close(l);
	knytt_sasrec_close(s);
}
END_TEST

/* ---- files ---- */

static knytt_sasrec *trained_tiny(void)
{
	planted p = plant(30, 40, 8, 9);
	knytt_sasrec *s = small_model(2, 1);
	ck_assert_int_eq(knytt_sasrec_set_blocks(s, 2), 0);
	ck_assert_int_eq(knytt_sasrec_train(s, 30, p.nseq, p.off, p.items), 0);
	unplant(&p);
	return s;
}

START_TEST(save_load_round_trip)
{
	knytt_sasrec *s = trained_tiny(), *h, *f;
	void *buf;
	size_t len;
	ck_assert_int_eq(knytt_sasrec_save_buffer(s, &buf, &len), 0);
	ck_assert_int_eq(knytt_sasrec_create(&h), 0);
	ck_assert_int_eq(knytt_sasrec_load_buffer(h, buf, len), 0);
	char path[64];
	snprintf(path, sizeof path, "/tmp/knytt_sqr_%d.bin", (int)getpid());
	ck_assert_int_eq(knytt_sasrec_save(s, path), 0);
	ck_assert_int_eq(knytt_sasrec_create(&f), 0);
	ck_assert_int_eq(knytt_sasrec_load(f, path), 0);
	unlink(path);
	uint32_t seq[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 29};
	float a[30], b[30], c[30];
	for (size_t n = 1; n <= 12; n += 5) {
		ck_assert_int_eq(knytt_sasrec_score(s, seq, n, NULL, 30, a), 0);
		ck_assert_int_eq(knytt_sasrec_score(h, seq, n, NULL, 30, b), 0);
		ck_assert_int_eq(knytt_sasrec_score(f, seq, n, NULL, 30, c), 0);
		ck_assert(memcmp(a, b, sizeof a) == 0);
		ck_assert(memcmp(a, c, sizeof a) == 0);
	}
	ck_assert_uint_eq(knytt_sasrec_max_len(h), 8);
	ck_assert_int_eq(knytt_sasrec_load_buffer(h, buf, len), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_sasrec_set_dim(h, 8), KNYTT_ESTATE);
	knytt_free(buf);
	knytt_sasrec_close(s);
	knytt_sasrec_close(h);
	knytt_sasrec_close(f);
}
END_TEST

static int load_copy(const unsigned char *buf, size_t len)
{
	knytt_sasrec *h;
	ck_assert_int_eq(knytt_sasrec_create(&h), 0);
	int rc = knytt_sasrec_load_buffer(h, buf, len);
	if (rc == 0) /* a loaded model must score */
		ck_assert_uint_gt(knytt_sasrec_items(h), 0);
	knytt_sasrec_close(h);
	return rc;
}

static void reseal(unsigned char *b, size_t len)
{
	knytt__put_u32(b + len - 4, knytt__crc32c(0, b, len - 4));
}

START_TEST(corrupt_buffers_rejected)
{
	knytt_sasrec *s = trained_tiny();
	void *v;
	size_t len;
	ck_assert_int_eq(knytt_sasrec_save_buffer(s, &v, &len), 0);
	unsigned char *b = malloc(len);
	ck_assert_int_eq(load_copy(v, len), 0);
	/* every truncation */
	for (size_t n = 0; n < len; n += n < 100 ? 1 : 997)
		ck_assert_int_eq(load_copy(v, n), KNYTT_ECORRUPT);
	/* a flipped bit anywhere */
	for (size_t j = 0; j < len; j += 61) {
		memcpy(b, v, len);
		b[j] ^= 0x10;
		ck_assert_int_eq(load_copy(b, len), KNYTT_ECORRUPT);
	}
	/* newer version, resealed */
	memcpy(b, v, len);
	knytt__put_u32(b + 8, 2);
	reseal(b, len);
	ck_assert_int_eq(load_copy(b, len), KNYTT_EVERSION);
	ck_assert(strstr(knytt_errmsg(), "version 2") != NULL);
	/* valid checksum over impossible settings or a wrong size */
	static const size_t fields[] = {16, 20, 24, 28, 40};
	static const uint32_t vals[] = {0, 9, 0, 0, 0x7fc00000u};
	for (size_t k = 0; k < 5; k++) {
		memcpy(b, v, len);
		knytt__put_u32(b + fields[k], vals[k]);
		reseal(b, len);
		ck_assert_int_eq(load_copy(b, len), KNYTT_ECORRUPT);
	}
	memcpy(b, v, len);
	knytt__put_u32(b + 28, 31); /* one item more than the body holds */
	reseal(b, len);
	ck_assert_int_eq(load_copy(b, len), KNYTT_ECORRUPT);
	ck_assert(strstr(knytt_errmsg(), "needs") != NULL);
	/* a file that is damaged names its path */
	char path[64];
	snprintf(path, sizeof path, "/tmp/knytt_sqr_bad_%d.bin",
		 (int)getpid());
	memcpy(b, v, len);
	b[len / 2] ^= 1;
	FILE *fp = fopen(path, "wb");
	fwrite(b, 1, len, fp);
	fclose(fp);
	knytt_sasrec *h;
	knytt_sasrec_create(&h);
	ck_assert_int_eq(knytt_sasrec_load(h, path), KNYTT_ECORRUPT);
	ck_assert(strstr(knytt_errmsg(), path) != NULL);
	unlink(path);
	ck_assert_int_eq(knytt_sasrec_load(h, path), KNYTT_EIO);
	knytt_sasrec_close(h);
	free(b);
	knytt_free(v);
	knytt_sasrec_close(s);
}
END_TEST

START_TEST(bad_input)
{
	knytt_sasrec *s;
	ck_assert_int_eq(knytt_sasrec_create(NULL), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_create(&s), 0);
	ck_assert_int_eq(knytt_sasrec_set_dim(s, 0), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_set_blocks(s, 9), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_set_max_len(s, 0), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_set_dropout(s, 1.0f), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_set_dropout(s, NAN), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_set_learning_rate(s, 0), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_set_batch(s, 0), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_set_epochs(s, 0), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_set_threads(s, 1000), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_set_dim(NULL, 8), KNYTT_EINVAL);
	size_t off[3] = {0, 2, 4}, bad_off[3] = {0, 3, 2}, one[3] = {0, 1, 2};
	uint32_t it[4] = {0, 1, 2, 3}, out_of_range[4] = {0, 1, 9, 3};
	ck_assert_int_eq(knytt_sasrec_train(s, 4, 2, off, out_of_range),
			 KNYTT_EINVAL);
	ck_assert(strstr(knytt_errmsg(), "items[2]") != NULL);
	ck_assert_int_eq(knytt_sasrec_train(s, 4, 2, bad_off, it),
			 KNYTT_EINVAL);
	ck_assert(strstr(knytt_errmsg(), "offsets") != NULL);
	ck_assert_int_eq(knytt_sasrec_train(s, 4, 2, one, it), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_train(s, 0, 2, off, it), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_train(s, 4, 2, NULL, it), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_train(s, 4, 2, off, NULL), KNYTT_EINVAL);
	/* not trained */
	float v[64];
	ck_assert_int_eq(knytt_sasrec_encode(s, it, 2, v), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_sasrec_save_buffer(s, (void **)&v, &off[0]),
			 KNYTT_ESTATE);
	ck_assert_uint_eq(knytt_sasrec_dim(s), 0);
	ck_assert_int_eq(knytt_sasrec_set_dim(s, 8), 0);
	ck_assert_int_eq(knytt_sasrec_set_epochs(s, 1), 0);
	ck_assert_int_eq(knytt_sasrec_set_max_len(s, 3), 0);
	ck_assert_int_eq(knytt_sasrec_train(s, 4, 2, off, it), 0);
	ck_assert_int_eq(knytt_sasrec_train(s, 4, 2, off, it), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_sasrec_set_dim(s, 8), KNYTT_ESTATE);
	/* scoring */
	ck_assert_int_eq(knytt_sasrec_encode(s, it, 0, v), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_encode(s, out_of_range, 3, v),
			 KNYTT_EINVAL);
	ck_assert(strstr(knytt_errmsg(), "seq[2]") != NULL);
	ck_assert_int_eq(knytt_sasrec_score(s, it, 2, NULL, 5, v),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_score(s, it, 2, out_of_range, 4, v),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_score(s, it, 2, NULL, 4, NULL),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_score(s, it, 2, NULL, 4, v), 0);
	/* a sequence longer than max_len reads its last items */
	float w4[4];
	uint32_t tail[3] = {1, 2, 3};
	ck_assert_int_eq(knytt_sasrec_score(s, it, 4, NULL, 4, v), 0);
	ck_assert_int_eq(knytt_sasrec_score(s, tail, 3, NULL, 4, w4), 0);
	ck_assert(memcmp(v, w4, sizeof w4) == 0);
	ck_assert_int_eq(knytt_sasrec_item_factors(s, 3, 2, v), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_sasrec_save(s, NULL), KNYTT_EINVAL);
	knytt_sasrec_close(s);
	knytt_sasrec_close(NULL);
}
END_TEST

Suite *sasrec_suite(void)
{
	Suite *s = suite_create("sasrec");
	TCase *tc = tcase_create("math");
	tcase_add_test(tc, gradient_matches_finite_differences);
	tcase_add_test(tc, gradient_with_dropout_matches);
	tcase_add_test(tc, forward_reads_the_last_items);
	suite_add_tcase(s, tc);
	tc = tcase_create("train");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, learns_planted_successor);
	tcase_add_test(tc, deterministic_and_cancelable);
	tcase_add_test(tc, early_stop_keeps_best);
	tcase_add_test(tc, early_stop_bad_input);
	suite_add_tcase(s, tc);
	tc = tcase_create("io");
	tcase_add_test(tc, save_load_round_trip);
	tcase_add_test(tc, corrupt_buffers_rejected);
	tcase_add_test(tc, bad_input);
	suite_add_tcase(s, tc);
	return s;
}
