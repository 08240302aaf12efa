/*
 * check_qlearn.c -- search that learns from the shop: the query word
 * model (lib/model/qterms.c), its training from the search log
 * (lib/engine/qlearn.c), its place in the model blob, and
 * knytt_engine_search / knytt_engine_embed_query using it, on the
 * synthetic shop with planted synonyms (benchmarks/search/synshop.c).
 */
#include "../lib/model/qterms.h"
#include "../benchmarks/search/synshop.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define NOW 1767225600000LL
#define DIM 16

static const synshop_opts small = {.concepts = 8,
				   .items_per = 12,
				   .users = 160,
				   .events_per_user = 15,
				   .searches = 600,
				   .seed = 7,
				   .now_ms = NOW};

static char dir[64], uri[96];

static knytt_engine *engine_open(knytt_model_kind kind)
{
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, DIM), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_model(e, kind), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_tune(e, 0), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_threads(e, 1), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_now(e, NOW), KNYTT_OK);
	ck_assert_msg(knytt_engine_open(e, uri) == KNYTT_OK, "%s",
		      knytt_errmsg());
	return e;
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/knytt-qlearn-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(uri, sizeof uri, "sqlite:%s/db", dir);
}

static void teardown(void)
{
	tu_rm_dir(dir);
}

/* The "search" report stored with the latest model. */
static char *search_meta(knytt_engine *e)
{
	char *meta = tu_model_meta(e);
	ck_assert_ptr_nonnull(strstr(meta, "\"search\":{"));
	return meta;
}

static void train(knytt_engine *e)
{
	ck_assert_msg(knytt_engine_train(e, NULL, NULL) == KNYTT_OK, "%s",
		      knytt_errmsg());
}

/* Items of concept @p c among the first k hybrid results for @p q. */
static int concept_hits(knytt_engine *e, const char *q, int c, int *first)
{
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	int n = knytt_engine_search(e, q, NULL, 0, 10, NULL, NULL, r, NULL);
	ck_assert_int_ge(n, 0);
	int hits = 0;
	for (int i = 0; i < n; i++)
		hits += synshop_concept(r[i].ext_id) == c;
	*first = n > 0 && synshop_concept(r[0].ext_id) == c;
	return hits;
}

/* ---- the word model ---- */

START_TEST(qterms_words_fold)
{
	uint64_t a[8], b[8];
	/* case, punctuation and a plural "s" do not make another word */
	size_t na = knytt__qterms_words("Black SNEAKERS!", a, 8);
	size_t nb = knytt__qterms_words("black, sneaker black", b, 8);
	ck_assert_uint_eq(na, 2);
	ck_assert_uint_eq(nb, 2);
	ck_assert(a[0] == b[0] && a[1] == b[1]);
	/* "glass" keeps its s; short words keep theirs */
	ck_assert_uint_eq(knytt__qterms_words("glass glas", a, 8), 2);
	ck_assert_uint_eq(knytt__qterms_words("bus bu", a, 8), 2);
	ck_assert_uint_eq(knytt__qterms_words(" ,;", a, 8), 0);
	ck_assert_uint_eq(knytt__qterms_words(NULL, a, 8), 0);
	ck_assert_uint_eq(knytt__qterms_words("a b c d", a, 2), 2);
}
END_TEST

START_TEST(qterms_mean_and_roundtrip)
{
	/* two items on the axes; "x" was followed by item 0 three times,
	 * "y" by item 1 once, "both" by each once */
	const char *texts[] = {"x", "y", "both"};
	float vecs[] = {2, 0, 0, 5};
	knytt__qpair p[] = {{0, 0, 1}, {0, 0, 2}, {1, 1, 1}, {2, 0, 1},
			    {2, 1, 1}, {9, 0, 1}, {0, 7, 1}, {0, 1, 0}};
	knytt__qterms *m;
	ck_assert_int_eq(knytt__qterms_train(texts, 3, p, 8, vecs, 2, 2, &m),
			 KNYTT_OK);
	ck_assert_uint_eq(m->n, 3);
	float q[2];
	ck_assert_int_eq(knytt__qterms_embed(m, "X", q), 1);
	ck_assert(fabsf(q[0] - 1) < 1e-6f && fabsf(q[1]) < 1e-6f);
	ck_assert_int_eq(knytt__qterms_embed(m, "both", q), 1);
	ck_assert(fabsf(q[0] - q[1]) < 1e-6f);
	/* words summed: "x y" leans to x, seen more often */
	ck_assert_int_eq(knytt__qterms_embed(m, "x y", q), 2);
	ck_assert(q[0] > q[1] && q[1] > 0);
	ck_assert_int_eq(knytt__qterms_embed(m, "zzz", q), 0);
	ck_assert(q[0] == 0 && q[1] == 0);

	size_t n = knytt__qterms_size(m);
	unsigned char *b = malloc(n);
	knytt__qterms_write(m, b);
	knytt__qterms *r;
	ck_assert_int_eq(knytt__qterms_read(b, n, 2, &r), KNYTT_OK);
	ck_assert_uint_eq(r->n, m->n);
	ck_assert_mem_eq(r->vec, m->vec, m->n * 2 * sizeof(float));
	knytt__qterms_free(r);
	/* corrupt forms are refused, not read */
	ck_assert_int_eq(knytt__qterms_read(b, n, 3, &r), KNYTT_ECORRUPT);
	ck_assert_int_eq(knytt__qterms_read(b, n - 1, 2, &r), KNYTT_ECORRUPT);
	ck_assert_ptr_null(r);
	unsigned char h[8];
	memcpy(h, b + 16, 8); /* hashes out of order */
	memcpy(b + 16, b + 24, 8);
	memcpy(b + 24, h, 8);
	ck_assert_int_eq(knytt__qterms_read(b, n, 2, &r), KNYTT_ECORRUPT);
	memcpy(b + 24, b + 16, 8);
	memcpy(b + 16, h, 8);
	memcpy(b + n - 4, &(float){NAN}, 4);
	ck_assert_int_eq(knytt__qterms_read(b, n, 2, &r), KNYTT_ECORRUPT);
	b[0] = 'X';
	ck_assert_int_eq(knytt__qterms_read(b, n, 2, &r), KNYTT_ECORRUPT);
	free(b);
	knytt__qterms_free(m);
	/* nothing to learn from */
	ck_assert_int_eq(knytt__qterms_train(texts, 3, p + 5, 3, vecs, 2, 2,
					     &m),
			 KNYTT_EINVAL);
	ck_assert_ptr_null(m);
}
END_TEST

/* ---- the engine ---- */

START_TEST(empty_log_reports_skip)
{
	knytt_engine *e = engine_open(KNYTT_MODEL_ALS);
	ck_assert_int_eq(synshop_fill(e, &small), KNYTT_OK);
	train(e);
	char *meta = search_meta(e);
	ck_assert_msg(strstr(meta, "\"search\":{\"skipped\":\"the search log "
				   "has 0 searches"),
		      "%s", meta);
	knytt_free(meta);
	/* no words learned: no vector, and a synonym finds nothing */
	float v[DIM];
	ck_assert_int_eq(knytt_engine_embed_query(e, "sneakers", v, DIM), 0);
	for (int i = 0; i < DIM; i++)
		ck_assert(v[i] == 0);
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	ck_assert_int_eq(knytt_engine_search(e, "sneakers", NULL, 0, 10, NULL,
					     NULL, r, NULL),
			 0);
	knytt_engine_close(e);
}
END_TEST

/*
 * The planted structure: a synonym occurs in no title or description, so
 * keyword search finds nothing for it; every click after it is on an
 * item of its concept, so its learned vector is a positive mix of that
 * concept's item vectors, and shoppers browse within their concepts, so
 * those vectors sit together.  At least half of the top ten (12 items
 * per concept) must then be the concept's, and its first result too.
 */
START_TEST(synonym_finds_its_items)
{
	knytt_engine *e = engine_open(KNYTT_MODEL_ALS);
	ck_assert_int_eq(synshop_fill(e, &small), KNYTT_OK);
	ck_assert_int_eq(synshop_searches(e, &small), KNYTT_OK);
	train(e);
	char *meta = search_meta(e);
	ck_assert_msg(strstr(meta, "\"pairs\":") != NULL, "%s", meta);
	knytt_free(meta);
	uint64_t ids[4];
	for (int pass = 0; pass < 2; pass++) {
		for (int c = 0; c < (int)small.concepts; c++) {
			const char *syn = synshop_synonym(c);
			ck_assert_int_eq(knytt_store_search(
						 knytt_engine_store(e), syn,
						 NULL, NAN, NAN, 0, ids, NULL,
						 4),
					 0);
			int first, hits = concept_hits(e, syn, c, &first);
			ck_assert_msg(hits >= 5 && first,
				      "%s: %d of 10 from its concept", syn,
				      hits);
		}
		/* the words are stored with the model: a reopened engine
		 * (blob version 3) answers the same way */
		knytt_engine_close(e);
		e = engine_open(KNYTT_MODEL_ALS);
	}
	knytt_engine_close(e);
}
END_TEST

/*
 * An exact title keeps its item first though the vector half ranks the
 * concept's popular items high: the least popular item of each concept,
 * whose title shares its noun with all of them.
 */
START_TEST(exact_title_stays_first)
{
	knytt_engine *e = engine_open(KNYTT_MODEL_ALS);
	ck_assert_int_eq(synshop_fill(e, &small), KNYTT_OK);
	ck_assert_int_eq(synshop_searches(e, &small), KNYTT_OK);
	train(e);
	knytt_store *st = knytt_engine_store(e);
	for (int c = 0; c < (int)small.concepts; c++) {
		char ext[24];
		snprintf(ext, sizeof ext, "c%02d-i%03u", c,
			 small.items_per - 1);
		knytt_item *it;
		ck_assert_int_eq(knytt_store_item_get(st, ext, &it), KNYTT_OK);
		char q[160];
		/* case and punctuation do not matter */
		snprintf(q, sizeof q, "%s!", it->title);
		for (char *p = q; *p; p++)
			if (*p >= 'a' && *p <= 'z')
				*p = (char)(*p - 32);
		knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
		int n = knytt_engine_search(e, q, NULL, 0, 10, NULL, NULL, r,
					    NULL);
		ck_assert_int_ge(n, 2); /* the vector half answered too */
		ck_assert_msg(strcmp(r[0].ext_id, ext) == 0,
			      "%s: first is %s", it->title, r[0].ext_id);
		ck_assert(r[0].reason == KNYTT_REASON_KEYWORD ||
			  r[0].reason == KNYTT_REASON_HYBRID);
		knytt_free(it);
	}
	/* A new item titled with the synonym itself, no vector yet: the
	 * keyword half's only hit and the vector half's first running shoe
	 * tie in fusion, and the shoe, with the smaller id, used to win. */
	knytt_item it;
	memset(&it, 0, sizeof it);
	it.struct_size = sizeof it;
	it.ext_id = "new-sneakers";
	it.title = "Sneakers";
	ck_assert_int_eq(knytt_engine_item_upsert(e, &it, NULL, 0), KNYTT_OK);
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	int n = knytt_engine_search(e, "sneakers", NULL, 0, 10, NULL, NULL, r,
				    NULL);
	ck_assert_int_ge(n, 2);
	ck_assert_str_eq(r[0].ext_id, "new-sneakers");
	ck_assert_int_eq(synshop_concept(r[1].ext_id), 0);
	knytt_engine_close(e);
}
END_TEST

/* The two-tower model keeps its text path and adds the learned words. */
START_TEST(twotower_blends_words)
{
	synshop_opts o = small;
	o.concepts = 4;
	o.users = 80;
	o.searches = 200;
	knytt_engine *e = engine_open(KNYTT_MODEL_TWOTOWER);
	ck_assert_int_eq(knytt_engine_set_twotower(e, 3), KNYTT_ESTATE);
	ck_assert_int_eq(synshop_fill(e, &o), KNYTT_OK);
	train(e);
	float before[DIM], after[DIM];
	/* the tower embeds any text */
	ck_assert_int_eq(knytt_engine_embed_query(e, "sneakers", before, DIM),
			 1);
	ck_assert_int_eq(synshop_searches(e, &o), KNYTT_OK);
	train(e);
	ck_assert_int_eq(knytt_engine_embed_query(e, "sneakers", after, DIM),
			 1);
	int first, hits = concept_hits(e, "sneakers", 0, &first);
	ck_assert_msg(hits >= 5 && first, "%d of 10 running shoes", hits);
	knytt_engine_close(e);
}
END_TEST

START_TEST(embed_query_errors)
{
	knytt_engine *e;
	float v[DIM];
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_embed_query(e, "x", v, DIM),
			 KNYTT_ESTATE);
	ck_assert_int_eq(knytt_engine_embed_query(NULL, "x", v, DIM),
			 KNYTT_EINVAL);
	knytt_engine_close(e);
	e = engine_open(KNYTT_MODEL_ALS);
	ck_assert_int_eq(knytt_engine_embed_query(e, NULL, v, DIM),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "text"));
	ck_assert_int_eq(knytt_engine_embed_query(e, "", v, DIM), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_embed_query(e, "x", NULL, DIM),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_embed_query(e, "x", v, DIM + 1),
			 KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "dim"));
	/* never trained: no vector */
	ck_assert_int_eq(knytt_engine_embed_query(e, "x", v, DIM), 0);
	knytt_engine_close(e);
}
END_TEST

Suite *qlearn_suite(void)
{
	Suite *s = suite_create("qlearn");
	TCase *t = tcase_create("words");
	tcase_add_test(t, qterms_words_fold);
	tcase_add_test(t, qterms_mean_and_roundtrip);
	suite_add_tcase(s, t);
	t = tcase_create("engine");
	tcase_add_checked_fixture(t, setup, teardown);
	tcase_set_timeout(t, 120);
	tcase_add_test(t, empty_log_reports_skip);
	tcase_add_test(t, synonym_finds_its_items);
	tcase_add_test(t, exact_title_stays_first);
	tcase_add_test(t, twotower_blends_words);
	tcase_add_test(t, embed_query_errors);
	suite_add_tcase(s, t);
	return s;
}
