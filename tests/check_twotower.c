/*
 * check_twotower.c -- the two-tower model: feature hashing, planted
 * clusters (warm items, a cold item, a query), save/load round trips and
 * corruption, hyper-parameter errors, determinism, cancellation, and the
 * loss gradient against finite differences on a tiny model.
 */
#include "../lib/model/features.h"
#include "../lib/model/twotower.h"
#include "testutil.h"

#include <math.h>
#include <unistd.h>

/* ---- feature hashing ------------------------------------------------- */

static int same_feats(const uint32_t *a, size_t na, const uint32_t *b,
		      size_t nb)
{
	return na == nb && memcmp(a, b, na * sizeof *a) == 0;
}

/* every element of a[] is in b[] (both sorted) */
static int subset(const uint32_t *a, size_t na, const uint32_t *b, size_t nb)
{
	size_t j = 0;
	for (size_t i = 0; i < na; i++) {
		while (j < nb && b[j] < a[i])
			j++;
		if (j == nb || b[j] != a[i])
			return 0;
	}
	return 1;
}

START_TEST(tokenizer_and_hashing)
{
	uint32_t a[64], b[64];
	const uint32_t NB = 1u << 20;
	/* case and punctuation do not matter; sorted and distinct */
	size_t na = knytt__tt_text_features("Running Shoes!", 1, NB, a, 64);
	size_t nb = knytt__tt_text_features("running,  shoes", 1, NB, b, 64);
	ck_assert_uint_eq(na, 3); /* running, shoes, running_shoes */
	ck_assert(same_feats(a, na, b, nb));
	for (size_t i = 1; i < na; i++)
		ck_assert_uint_lt(a[i - 1], a[i]);
	/* word order matters through the bigram only */
	nb = knytt__tt_text_features("shoes running", 1, NB, b, 64);
	ck_assert_uint_eq(nb, 3);
	ck_assert(!same_feats(a, na, b, nb));
	/* repeated words collapse */
	nb = knytt__tt_text_features("shoes shoes shoes", 1, NB, b, 64);
	ck_assert_uint_eq(nb, 2); /* shoes, shoes_shoes */
	/* UTF-8 bytes are word characters: one token, not two */
	nb = knytt__tt_text_features("Am\xc3\xa9lie", 1, NB, b, 64);
	ck_assert_uint_eq(nb, 1);
	/* the seed changes the buckets */
	nb = knytt__tt_text_features("running shoes", 2, NB, b, 64);
	ck_assert(!same_feats(a, na, b, nb));
	/* empty / separator-only text has no features */
	ck_assert_uint_eq(knytt__tt_text_features("  ,.;", 1, NB, b, 64), 0);
	ck_assert_uint_eq(knytt__hash64("abc", 3, 7),
			  knytt__hash64("abc", 3, 7));
	ck_assert_uint_ne(knytt__hash64("abc", 3, 7),
			  knytt__hash64("abd", 3, 7));

	/* a query's words are among the item's features */
	knytt_twotower_item it = { "Trail Running Shoes", "light and fast",
				   "Shoes/Running", 89.0 };
	uint32_t fi[256];
	size_t ni = knytt__tt_item_features(&it, 1, NB, fi, 256);
	na = knytt__tt_text_features("running shoes", 1, NB, a, 64);
	ck_assert(subset(a, na, fi, ni));
	/* category spelling variants are the same path */
	knytt_twotower_item c1 = { NULL, NULL, "Shoes/Running", -1 };
	knytt_twotower_item c2 = { NULL, NULL, " shoes > running ", -1 };
	knytt_twotower_item c3 = { NULL, NULL, "shoes", -1 };
	na = knytt__tt_item_features(&c1, 1, NB, a, 64);
	nb = knytt__tt_item_features(&c2, 1, NB, b, 64);
	ck_assert_uint_eq(na, 4); /* words shoes, running; shoes; shoes/running */
	ck_assert(same_feats(a, na, b, nb));
	/* the prefix "shoes" is shared with the parent category */
	nb = knytt__tt_item_features(&c3, 1, NB, b, 64);
	ck_assert_uint_eq(nb, 2);
	ck_assert(subset(b, nb, a, na));
	/* price buckets are half octaves: 12 ~ 13, 12 != 1000 */
	knytt_twotower_item p1 = { NULL, NULL, NULL, 12.0 };
	knytt_twotower_item p2 = { NULL, NULL, NULL, 13.0 };
	knytt_twotower_item p3 = { NULL, NULL, NULL, 1000.0 };
	knytt_twotower_item p4 = { NULL, NULL, NULL, NAN };
	na = knytt__tt_item_features(&p1, 1, NB, a, 64);
	ck_assert_uint_eq(na, 1);
	nb = knytt__tt_item_features(&p2, 1, NB, b, 64);
	ck_assert(same_feats(a, na, b, nb));
	nb = knytt__tt_item_features(&p3, 1, NB, b, 64);
	ck_assert(!same_feats(a, na, b, nb));
	ck_assert_uint_eq(knytt__tt_item_features(&p4, 1, NB, b, 64), 0);
	/* the cap truncates, never overflows */
	ck_assert_uint_le(knytt__tt_text_features("a b c d e f g h", 1, NB, b,
						   4),
			  4);
	/* every bucket is in range for a tiny table */
	nb = knytt__tt_item_features(&it, 1, 16, b, 64);
	for (size_t i = 0; i < nb; i++)
		ck_assert_uint_lt(b[i], 16);
}
END_TEST

/* ---- planted clusters ------------------------------------------------ */

#define NCL 8
#define IPC 25 /* items per cluster */
#define UPC 20 /* users per cluster */
#define PER_USER 15

static const char *cluster_word[NCL] = { "alpha", "bravo", "charlie",
					 "delta", "echo",  "foxtrot",
					 "golf",  "hotel" };
static const char *filler[8] = { "deluxe", "classic", "new",  "super",
				 "mini",   "pro",     "basic", "max" };

typedef struct planted {
	uint32_t nusers, nitems;
	size_t n;
	uint32_t *u, *i;
	knytt_twotower_item *items;
	char (*titles)[64];
	char (*cats)[32];
} planted;

/* Items of cluster k have the cluster word in their title and category
 * "k-word/sub"; users of cluster k interact only with cluster-k items. */
static void planted_make(planted *P, uint64_t seed)
{
	P->nitems = NCL * IPC;
	P->nusers = NCL * UPC;
	P->n = (size_t)P->nusers * PER_USER;
	P->u = malloc(P->n * sizeof *P->u);
	P->i = malloc(P->n * sizeof *P->i);
	P->items = calloc(P->nitems, sizeof *P->items);
	P->titles = calloc(P->nitems, sizeof *P->titles);
	P->cats = calloc(P->nitems, sizeof *P->cats);
	for (uint32_t it = 0; it < P->nitems; it++) {
		uint32_t k = it / IPC;
		snprintf(P->titles[it], 64, "%s %s %s item%u",
			 filler[tu_rand(&seed) % 8], cluster_word[k],
			 filler[tu_rand(&seed) % 8], it);
		snprintf(P->cats[it], 32, "%s/sub%u", cluster_word[k],
			 (unsigned)(tu_rand(&seed) % 2));
		P->items[it] = (knytt_twotower_item){ P->titles[it], NULL,
						      P->cats[it],
						      (double)(10 + it % 7) };
	}
	size_t n = 0;
	for (uint32_t u = 0; u < P->nusers; u++) {
		uint32_t k = u / UPC;
		for (int j = 0; j < PER_USER; j++) {
			P->u[n] = u;
			P->i[n] = k * IPC + (uint32_t)(tu_rand(&seed) % IPC);
			n++;
		}
	}
}

static void planted_free(planted *P)
{
	free(P->u);
	free(P->i);
	free(P->items);
	free(P->titles);
	free(P->cats);
}

static knytt_twotower *planted_model(const planted *P, uint64_t seed,
				     unsigned threads)
{
	knytt_twotower *tt;
	ck_assert_int_eq(knytt_twotower_create(&tt), 0);
	ck_assert_int_eq(knytt_twotower_set_dim(tt, 16), 0);
	ck_assert_int_eq(knytt_twotower_set_buckets(tt, 4096), 0);
	ck_assert_int_eq(knytt_twotower_set_epochs(tt, 12), 0);
	ck_assert_int_eq(knytt_twotower_set_batch(tt, 128), 0);
	ck_assert_int_eq(knytt_twotower_set_lr(tt, 0.02f), 0);
	ck_assert_int_eq(knytt_twotower_set_temperature(tt, 0.1f), 0);
	ck_assert_int_eq(knytt_twotower_set_history(tt, 5), 0);
	ck_assert_int_eq(knytt_twotower_set_id_dropout(tt, 0.5f), 0);
	ck_assert_int_eq(knytt_twotower_set_seed(tt, seed), 0);
	ck_assert_int_eq(knytt_twotower_set_threads(tt, threads), 0);
	ck_assert_int_eq(knytt_twotower_train(tt, P->nusers, P->nitems,
					      P->items, P->n, P->u, P->i, NULL,
					      NULL),
			 0);
	return tt;
}

static float dot(const float *a, const float *b, uint32_t d)
{
	float s = 0;
	for (uint32_t k = 0; k < d; k++)
		s += a[k] * b[k];
	return s;
}

/* The cluster whose item centroid is closest (by dot) to v. */
static int nearest_cluster(const float *V, uint32_t d, const float *v)
{
	int best = -1;
	float bs = -INFINITY;
	for (int k = 0; k < NCL; k++) {
		float s = 0;
		for (int j = 0; j < IPC; j++)
			s += dot(V + (size_t)(k * IPC + j) * d, v, d);
		if (s > bs) {
			bs = s;
			best = k;
		}
	}
	return best;
}

START_TEST(planted_clusters_separate)
{
	planted P;
	planted_make(&P, 11);
	knytt_twotower *tt = planted_model(&P, 3, 2);
	uint32_t d = knytt_twotower_dim(tt);
	ck_assert_uint_eq(d, 16);
	ck_assert_uint_eq(knytt_twotower_count_items(tt), P.nitems);
	ck_assert_uint_eq(knytt_twotower_count_users(tt), P.nusers);
	float *V = malloc((size_t)P.nitems * d * sizeof *V);
	float *U = malloc((size_t)P.nusers * d * sizeof *U);
	ck_assert_int_eq(knytt_twotower_item_embeddings(tt, V, P.nitems),
			 (int)P.nitems);
	ck_assert_int_eq(knytt_twotower_user_embeddings(tt, U, P.nusers),
			 (int)P.nusers);
	/* each user's 10 best items: nearly all from the user's cluster
	 * (a random model gets 1/8) */
	size_t in = 0, total = 0;
	for (uint32_t u = 0; u < P.nusers; u++) {
		float top[10];
		uint32_t topi[10];
		for (int t = 0; t < 10; t++)
			top[t] = -INFINITY;
		for (uint32_t it = 0; it < P.nitems; it++) {
			float s = dot(U + (size_t)u * d, V + (size_t)it * d, d);
			if (s <= top[9])
				continue;
			int t = 9;
			while (t > 0 && top[t - 1] < s) {
				top[t] = top[t - 1];
				topi[t] = topi[t - 1];
				t--;
			}
			top[t] = s;
			topi[t] = it;
		}
		for (int t = 0; t < 10; t++)
			in += topi[t] / IPC == u / UPC;
		total += 10;
	}
	ck_assert_msg(in >= total * 95 / 100, "in-cluster top-10: %zu of %zu",
		      in, total);
	/* a cold item (never trained, new name) lands in its cluster, and
	 * so does a one-word query */
	float v[16];
	for (int k = 0; k < NCL; k++) {
		char title[64];
		snprintf(title, sizeof title, "%s brandnew%d", cluster_word[k],
			 k);
		knytt_twotower_item it = { title, "unseen words here", NULL,
					   -1 };
		ck_assert_int_eq(knytt_twotower_embed_item(tt, &it, v), 0);
		ck_assert_int_eq(nearest_cluster(V, d, v), k);
		ck_assert_int_eq(knytt_twotower_embed_query(tt, cluster_word[k],
							    v),
				 0);
		ck_assert_int_eq(nearest_cluster(V, d, v), k);
	}
	/* embed_user with the training history reproduces the user table;
	 * a new user with cluster-3 history lands in cluster 3 */
	uint32_t hist[PER_USER];
	size_t nh = 0;
	for (size_t k = 0; k < P.n; k++)
		if (P.u[k] == 17)
			hist[nh++] = P.i[k];
	ck_assert_int_eq(knytt_twotower_embed_user(tt, 17, hist, nh, v), 0);
	for (uint32_t k = 0; k < d; k++)
		ck_assert_float_eq_tol(v[k], U[17 * d + k], 1e-6);
	uint32_t fresh[3] = { 3 * IPC, 3 * IPC + 1, 3 * IPC + 2 };
	ck_assert_int_eq(knytt_twotower_embed_user(tt, KNYTT_TWOTOWER_NO_USER,
						   fresh, 3, v),
			 0);
	ck_assert_int_eq(nearest_cluster(V, d, v), 3);
	/* unit-length outputs; an item without features is zero */
	ck_assert_float_eq_tol(dot(v, v, d), 1.0f, 1e-4);
	knytt_twotower_item none = { NULL, NULL, NULL, -1 };
	ck_assert_int_eq(knytt_twotower_embed_item(tt, &none, v), 0);
	ck_assert_float_eq(dot(v, v, d), 0.0f);
	free(V);
	free(U);
	knytt_twotower_close(tt);
	planted_free(&P);
}
END_TEST

/* ---- save / load ------------------------------------------------------ */

static void same_model(const knytt_twotower *a, const knytt_twotower *b)
{
	uint32_t d = knytt_twotower_dim(a), ni = knytt_twotower_count_items(a),
		 nu = knytt_twotower_count_users(a);
	ck_assert_uint_eq(knytt_twotower_dim(b), d);
	ck_assert_uint_eq(knytt_twotower_count_items(b), ni);
	ck_assert_uint_eq(knytt_twotower_count_users(b), nu);
	size_t nn = (size_t)(ni > nu ? ni : nu) * d;
	float *x = malloc(nn * sizeof *x), *y = malloc(nn * sizeof *y);
	ck_assert_int_eq(knytt_twotower_item_embeddings(a, x, ni), (int)ni);
	ck_assert_int_eq(knytt_twotower_item_embeddings(b, y, ni), (int)ni);
	ck_assert(memcmp(x, y, (size_t)ni * d * sizeof *x) == 0);
	ck_assert_int_eq(knytt_twotower_user_embeddings(a, x, nu), (int)nu);
	ck_assert_int_eq(knytt_twotower_user_embeddings(b, y, nu), (int)nu);
	ck_assert(memcmp(x, y, (size_t)nu * d * sizeof *x) == 0);
	ck_assert_int_eq(knytt_twotower_embed_query(a, "golf deluxe", x), 0);
	ck_assert_int_eq(knytt_twotower_embed_query(b, "golf deluxe", y), 0);
	ck_assert(memcmp(x, y, d * sizeof *x) == 0);
	free(x);
	free(y);
}

START_TEST(save_load_round_trip_and_corruption)
{
	planted P;
	planted_make(&P, 5);
	knytt_twotower *tt = planted_model(&P, 9, 1), *t2, *t3;
	char path[] = "/tmp/knytt_tt_XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	ck_assert_int_eq(knytt_twotower_save(tt, path), 0);
	ck_assert_int_eq(knytt_twotower_create(&t2), 0);
	ck_assert_int_eq(knytt_twotower_load(t2, path), 0);
	same_model(tt, t2);
	/* the memory form is the same bytes */
	void *buf;
	size_t len;
	ck_assert_int_eq(knytt_twotower_save_buffer(tt, &buf, &len), 0);
	FILE *f = fopen(path, "rb");
	unsigned char *fb = malloc(len + 1);
	ck_assert_uint_eq(fread(fb, 1, len + 1, f), len);
	fclose(f);
	ck_assert(memcmp(fb, buf, len) == 0);
	ck_assert_int_eq(knytt_twotower_create(&t3), 0);
	ck_assert_int_eq(knytt_twotower_load_buffer(t3, buf, len), 0);
	same_model(tt, t3);

	/* corruption: every failure keeps the loaded model */
	unsigned char *c = malloc(len);
	memcpy(c, buf, len);
	c[len / 2] ^= 0x10; /* a parameter bit */
	ck_assert_int_eq(knytt_twotower_load_buffer(t3, c, len), KNYTT_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "checksum"));
	memcpy(c, buf, len);
	ck_assert_int_eq(knytt_twotower_load_buffer(t3, c, len - 9),
			 KNYTT_ECORRUPT); /* truncated */
	ck_assert_int_eq(knytt_twotower_load_buffer(t3, c, 10), KNYTT_ECORRUPT);
	c[0] = 'X';
	ck_assert_int_eq(knytt_twotower_load_buffer(t3, c, len), KNYTT_ECORRUPT);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "magic"));
	/* a newer version, with a valid checksum */
	memcpy(c, buf, len);
	c[8] = 2;
	uint32_t crc = knytt__crc32c(0, c, len - 4);
	c[len - 4] = (unsigned char)crc;
	c[len - 3] = (unsigned char)(crc >> 8);
	c[len - 2] = (unsigned char)(crc >> 16);
	c[len - 1] = (unsigned char)(crc >> 24);
	ck_assert_int_eq(knytt_twotower_load_buffer(t3, c, len), KNYTT_EVERSION);
	/* a consistent checksum over an inconsistent table */
	memcpy(c, buf, len);
	c[24] = 0xff; /* nitems */
	crc = knytt__crc32c(0, c, len - 4);
	c[len - 4] = (unsigned char)crc;
	c[len - 3] = (unsigned char)(crc >> 8);
	c[len - 2] = (unsigned char)(crc >> 16);
	c[len - 1] = (unsigned char)(crc >> 24);
	ck_assert_int_eq(knytt_twotower_load_buffer(t3, c, len), KNYTT_ECORRUPT);
	same_model(tt, t3);
	/* a corrupted file */
	f = fopen(path, "r+b");
	fseek(f, (long)(len - 100), SEEK_SET);
	fputc(fb[len - 100] ^ 0xff, f);
	fclose(f);
	ck_assert_int_eq(knytt_twotower_load(t2, path), KNYTT_ECORRUPT);
	same_model(tt, t2);
	remove(path);
	ck_assert_int_eq(knytt_twotower_load(t2, path), KNYTT_EIO);
	ck_assert_int_eq(knytt_twotower_save(tt, "/nonexistent-dir/x.tt"),
			 KNYTT_EIO);
	free(c);
	free(fb);
	knytt_free(buf);
	knytt_twotower_close(tt);
	knytt_twotower_close(t2);
	knytt_twotower_close(t3);
	planted_free(&P);
}
END_TEST

/* ---- errors ---------------------------------------------------------- */

START_TEST(bad_hyperparameters_and_input)
{
	knytt_twotower *tt;
	ck_assert_int_eq(knytt_twotower_create(NULL), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_twotower_create(&tt), 0);
	ck_assert_int_eq(knytt_twotower_set_dim(tt, 1), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "dim"));
	ck_assert_int_eq(knytt_twotower_set_dim(tt, 5000), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_twotower_set_temperature(tt, -1.0f),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "temperature"));
	ck_assert_int_eq(knytt_twotower_set_temperature(tt, NAN),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_twotower_set_lr(tt, -0.1f), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "learning rate"));
	ck_assert_int_eq(knytt_twotower_set_lr(tt, INFINITY), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_twotower_set_batch(tt, 1), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "batch"));
	ck_assert_int_eq(knytt_twotower_set_buckets(tt, 8), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_twotower_set_epochs(tt, 200000), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_twotower_set_history(tt, 5000), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_twotower_set_threads(tt, 1000), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_twotower_set_id_dropout(tt, 1.0f),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_twotower_set_id_dropout(tt, NAN), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_twotower_set_progress(NULL, NULL, NULL),
			 KNYTT_EINVAL);
	/* 0 = default is accepted everywhere */
	ck_assert_int_eq(knytt_twotower_set_dim(tt, 0), 0);
	ck_assert_int_eq(knytt_twotower_set_lr(tt, 0), 0);
	ck_assert_int_eq(knytt_twotower_set_temperature(tt, 0), 0);
	ck_assert_int_eq(knytt_twotower_set_batch(tt, 0), 0);
	/* no model yet */
	float v[64];
	ck_assert_int_eq(knytt_twotower_embed_query(tt, "x", v), KNYTT_ESTATE);
	ck_assert_int_eq(knytt_twotower_item_embeddings(tt, v, 1),
			 KNYTT_ESTATE);
	void *buf;
	size_t len;
	ck_assert_int_eq(knytt_twotower_save_buffer(tt, &buf, &len),
			 KNYTT_ESTATE);
	ck_assert_uint_eq(knytt_twotower_dim(tt), 0);
	/* bad interactions: the message names the interaction */
	uint32_t us[3] = { 0, 1, 0 }, is[3] = { 0, 1, 7 };
	float w[3] = { 1, -1, 1 };
	ck_assert_int_eq(knytt_twotower_train(tt, 2, 5, NULL, 3, us, is, NULL,
					      NULL),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "interaction 2"));
	is[2] = 2;
	ck_assert_int_eq(knytt_twotower_train(tt, 2, 5, NULL, 3, us, is, w,
					      NULL),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "weight"));
	ck_assert_int_eq(knytt_twotower_train(tt, 2, 5, NULL, 0, us, is, NULL,
					      NULL),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_twotower_train(tt, 2, 5, NULL, 3, NULL, is,
					      NULL, NULL),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_twotower_train(tt, 2, 5, NULL, 1, us, is, NULL,
					      NULL),
			 KNYTT_EINVAL); /* one positive: no negatives */
	/* a valid id-only model (no features at all) trains */
	ck_assert_int_eq(knytt_twotower_set_dim(tt, 8), 0);
	ck_assert_int_eq(knytt_twotower_set_buckets(tt, 64), 0);
	ck_assert_int_eq(knytt_twotower_set_epochs(tt, 2), 0);
	ck_assert_int_eq(knytt_twotower_train(tt, 2, 5, NULL, 3, us, is, NULL,
					      NULL),
			 0);
	ck_assert_int_eq(knytt_twotower_item_embeddings(tt, v, 4),
			 KNYTT_ERANGE);
	/* items 3 and 4 never met an interaction and have no features:
	 * their id rows are not left at their random start */
	ck_assert_int_eq(knytt_twotower_item_embeddings(tt, v, 5), 5);
	for (int k = 0; k < 8; k++) {
		ck_assert_float_eq(v[3 * 8 + k], 0.0f);
		ck_assert_float_eq(v[4 * 8 + k], 0.0f);
	}
	ck_assert_float_eq_tol(dot(v, v, 8), 1.0f, 1e-4);
	ck_assert_int_eq(knytt_twotower_embed_user(tt, 2, NULL, 0, v),
			 KNYTT_EINVAL);
	uint32_t bad = 5;
	ck_assert_int_eq(knytt_twotower_embed_user(tt, 0, &bad, 1, v),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_twotower_embed_user(tt, 0, NULL, 0, v), 0);
	knytt_twotower_close(tt);
	knytt_twotower_close(NULL);
}
END_TEST

/* ---- determinism and cancel ------------------------------------------ */

START_TEST(same_seed_same_threads_same_model)
{
	planted P;
	planted_make(&P, 21);
	knytt_twotower *a = planted_model(&P, 77, 2);
	knytt_twotower *b = planted_model(&P, 77, 2);
	same_model(a, b);
	/* another seed gives another model (the test can fail) */
	knytt_twotower *c = planted_model(&P, 78, 2);
	uint32_t d = knytt_twotower_dim(a);
	float *x = malloc((size_t)P.nitems * d * sizeof *x);
	float *y = malloc((size_t)P.nitems * d * sizeof *y);
	knytt_twotower_item_embeddings(a, x, P.nitems);
	knytt_twotower_item_embeddings(c, y, P.nitems);
	ck_assert(memcmp(x, y, (size_t)P.nitems * d * sizeof *x) != 0);
	free(x);
	free(y);
	knytt_twotower_close(a);
	knytt_twotower_close(b);
	knytt_twotower_close(c);
	planted_free(&P);
}
END_TEST

typedef struct prog {
	unsigned calls, stop_at;
	double last_loss, first_loss;
} prog;

static int on_progress(void *ctx, const knytt_progress *pr)
{
	unsigned epoch = pr->epoch, epochs = pr->epochs;
	double loss = pr->loss, elapsed = pr->elapsed, eta = pr->eta;
	prog *p = ctx;
	p->calls++;
	ck_assert_uint_eq(epoch, p->calls);
	ck_assert_uint_ge(epochs, epoch);
	ck_assert(isfinite(loss) && loss > 0);
	ck_assert(elapsed >= 0 && eta >= 0);
	if (epoch == 1)
		p->first_loss = loss;
	p->last_loss = loss;
	return p->stop_at && epoch >= p->stop_at;
}

START_TEST(progress_reports_and_cancels)
{
	planted P;
	planted_make(&P, 4);
	knytt_twotower *tt;
	prog pr = { 0, 0, 0, 0 };
	ck_assert_int_eq(knytt_twotower_create(&tt), 0);
	knytt_twotower_set_dim(tt, 16);
	knytt_twotower_set_buckets(tt, 1024);
	knytt_twotower_set_epochs(tt, 6);
	knytt_twotower_set_batch(tt, 128);
	knytt_twotower_set_progress(tt, on_progress, &pr);
	ck_assert_int_eq(knytt_twotower_train(tt, P.nusers, P.nitems, P.items,
					      P.n, P.u, P.i, NULL, NULL),
			 0);
	ck_assert_uint_eq(pr.calls, 6);
	ck_assert_msg(pr.last_loss < pr.first_loss * 0.9,
		      "loss did not fall: %g -> %g", pr.first_loss,
		      pr.last_loss);
	/* cancel after epoch 2: ECANCELED, the old model stays */
	float *before = malloc((size_t)P.nitems * 16 * sizeof *before);
	float *after = malloc((size_t)P.nitems * 16 * sizeof *after);
	knytt_twotower_item_embeddings(tt, before, P.nitems);
	pr = (prog){ 0, 2, 0, 0 };
	knytt_twotower_set_seed(tt, 1234);
	ck_assert_int_eq(knytt_twotower_train(tt, P.nusers, P.nitems, P.items,
					      P.n, P.u, P.i, NULL, NULL),
			 KNYTT_ECANCELED);
	ck_assert_uint_eq(pr.calls, 2);
	knytt_twotower_item_embeddings(tt, after, P.nitems);
	ck_assert(memcmp(before, after,
			 (size_t)P.nitems * 16 * sizeof *before) == 0);
	free(before);
	free(after);
	knytt_twotower_close(tt);
	planted_free(&P);
}
END_TEST

/* ---- gradient -------------------------------------------------------- */

START_TEST(gradient_matches_finite_differences)
{
	/* 3 users, 6 items, history 2, 16 buckets (collisions included),
	 * item 4 twice in the batch (masked as its own negative) */
	uint32_t us[10] = { 0, 0, 0, 1, 1, 1, 2, 2, 2, 2 };
	uint32_t is[10] = { 0, 1, 2, 2, 3, 4, 4, 5, 0, 1 };
	knytt_twotower_item items[6] = {
		{ "red shoe", NULL, "shoes/red", 10 },
		{ "blue shoe", "comfy", "shoes", 20 },
		{ "red hat", NULL, NULL, 5 },
		{ NULL, NULL, "hats", -1 },
		{ "green scarf", "warm wool", NULL, 15 },
		{ "scarf", NULL, "scarves/wool", 300 },
	};
	knytt_twotower *tt;
	ck_assert_int_eq(knytt_twotower_create(&tt), 0);
	knytt_twotower_set_dim(tt, 4);
	knytt_twotower_set_buckets(tt, 16);
	knytt_twotower_set_history(tt, 2);
	knytt_twotower_set_temperature(tt, 0.5f);
	knytt_twotower_set_seed(tt, 3);
	knytt__tt_debug *dbg;
	ck_assert_int_eq(knytt__tt_debug_prepare(tt, 3, 6, items, 10, us, is,
						 &dbg),
			 0);
	float *W;
	const float *G;
	size_t np;
	double loss = knytt__tt_debug_loss(dbg, 10, &W, &G, &np);
	ck_assert(isfinite(loss) && loss > 0);
	ck_assert_uint_eq(np, (3 + 6 + 16) * 4);
	float *g = malloc(np * sizeof *g);
	memcpy(g, G, np * sizeof *g);
	double gabs = 0;
	int bad = 0;
	const float eps = 1e-3f;
	for (size_t k = 0; k < np; k++) {
		float w0 = W[k];
		W[k] = w0 + eps;
		double lp = knytt__tt_debug_loss(dbg, 10, &W, &G, &np);
		W[k] = w0 - eps;
		double lm = knytt__tt_debug_loss(dbg, 10, &W, &G, &np);
		W[k] = w0;
		double num = (lp - lm) / (2.0 * eps);
		double tol = 2e-2 * fmax(fabs(num), fabs(g[k])) + 2e-3;
		if (fabs(num - g[k]) > tol) {
			fprintf(stderr, "grad %zu: analytic %g numeric %g\n",
				k, (double)g[k], num);
			bad++;
		}
		gabs += fabs(g[k]);
	}
	ck_assert_int_eq(bad, 0);
	ck_assert_msg(gabs > 0.1, "gradient is (nearly) zero: %g", gabs);
	free(g);
	knytt__tt_debug_free(dbg);
	knytt_twotower_close(tt);
}
END_TEST

/* The version-1 file format: a fixture written by the first release
 * (tiny model: dim 4, 16 buckets, 3 users, 6 items) must keep loading
 * to the same vectors. */
START_TEST(format_v1_fixture_loads)
{
	knytt_twotower *tt;
	ck_assert_int_eq(knytt_twotower_create(&tt), 0);
	int rc = knytt_twotower_load(tt, "tests/fixtures/twotower-v1.tt");
	ck_assert_msg(rc == 0, "load: %s", knytt_errmsg());
	ck_assert_uint_eq(knytt_twotower_dim(tt), 4);
	ck_assert_uint_eq(knytt_twotower_count_users(tt), 3);
	ck_assert_uint_eq(knytt_twotower_count_items(tt), 6);
	const float q[4] = { 0.0546478182f, 0.565276086f, 0.775537431f,
			     -0.27571398f };
	const float u2[4] = { -0.683919966f, -0.202723429f, 0.355223566f,
			      -0.604129851f };
	float v[4], u[12];
	ck_assert_int_eq(knytt_twotower_embed_query(tt, "red shoe", v), 0);
	for (int k = 0; k < 4; k++)
		ck_assert_float_eq_tol(v[k], q[k], 1e-6);
	ck_assert_int_eq(knytt_twotower_user_embeddings(tt, u, 3), 3);
	for (int k = 0; k < 4; k++)
		ck_assert_float_eq_tol(u[8 + k], u2[k], 1e-6);
	knytt_twotower_close(tt);
}
END_TEST

/* Loader robustness: random edits with a recomputed (valid) checksum
 * reach the structural checks; every result is OK, ECORRUPT or EVERSION
 * and nothing is read out of bounds (ASan in make sanitize). */
START_TEST(loader_survives_random_edits)
{
	FILE *f = fopen("tests/fixtures/twotower-v1.tt", "rb");
	ck_assert_ptr_nonnull(f);
	unsigned char buf[4096], c[4096];
	size_t len = fread(buf, 1, sizeof buf, f);
	fclose(f);
	ck_assert_uint_gt(len, 68);
	knytt_twotower *tt;
	ck_assert_int_eq(knytt_twotower_create(&tt), 0);
	uint64_t s = 99;
	int ok = 0, corrupt = 0;
	for (int it = 0; it < 2000; it++) {
		memcpy(c, buf, len);
		int edits = 1 + (int)(tu_rand(&s) % 3);
		for (int e = 0; e < edits; e++) {
			/* mostly the header and tables, where structure is */
			size_t at = tu_rand(&s) % 2 ? tu_rand(&s) % 64
						    : tu_rand(&s) % (len - 4);
			c[at] = (unsigned char)tu_rand(&s);
		}
		uint32_t crc = knytt__crc32c(0, c, len - 4);
		c[len - 4] = (unsigned char)crc;
		c[len - 3] = (unsigned char)(crc >> 8);
		c[len - 2] = (unsigned char)(crc >> 16);
		c[len - 1] = (unsigned char)(crc >> 24);
		int rc = knytt_twotower_load_buffer(tt, c, len);
		ck_assert_msg(rc == 0 || rc == KNYTT_ECORRUPT ||
				      rc == KNYTT_EVERSION,
			      "edit %d: rc %d", it, rc);
		ok += rc == 0;
		corrupt += rc == KNYTT_ECORRUPT;
	}
	ck_assert_int_gt(corrupt, 100); /* the structural checks do fire */
	ck_assert_int_gt(ok, 0);        /* parameter edits load fine */
	knytt_twotower_close(tt);
}
END_TEST

Suite *twotower_suite(void)
{
	Suite *s = suite_create("twotower");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, tokenizer_and_hashing);
	tcase_add_test(tc, planted_clusters_separate);
	tcase_add_test(tc, save_load_round_trip_and_corruption);
	tcase_add_test(tc, bad_hyperparameters_and_input);
	tcase_add_test(tc, same_seed_same_threads_same_model);
	tcase_add_test(tc, progress_reports_and_cancels);
	tcase_add_test(tc, gradient_matches_finite_differences);
	tcase_add_test(tc, format_v1_fixture_loads);
	tcase_add_test(tc, loader_survives_random_edits);
	suite_add_tcase(s, tc);
	return s;
}
