/*
 * check_abi.c -- the versioned output structs: a caller built against an
 * older knytt.h (a shorter knytt_result or knytt_train_status) gets its
 * results at its own stride, only the members its layout holds, and not
 * a byte past each element; a caller built against a newer one (a longer
 * struct) finds them at its stride too; a struct_size out of range is
 * KNYTT_EINVAL naming "struct_size", with nothing written.
 */
#include "knytt.h"
#include "testutil.h"

#include <stddef.h>
#include <sys/stat.h>
#include <unistd.h>

#define NITEM 30
#define K 8
#define FILL 0xA5

/* knytt_result as a program built before score existed sees it. */
typedef struct old_result {
	size_t struct_size;
	uint64_t item_id;
	char ext_id[KNYTT_STORE_MAX_ID + 1];
} old_result;

/* knytt_result of a later header, with a member this library lacks. */
typedef struct new_result {
	knytt_result r;
	double future[3];
} new_result;

/* knytt_train_status as an older program sees it. */
typedef struct old_status {
	size_t struct_size;
	int running;
	int last_rc;
} old_status;

static knytt_engine *eng;
static char dbpath[96];
static char seen[16]; /* an item with events, so with a vector */
static const int64_t NOW = 1767225600000; /* 2026-01-01, fixed */

static void setup(void)
{
	ck_assert_int_eq(knytt_engine_create(&eng), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(eng, 8), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_threads(eng, 1), KNYTT_OK);
	/* a file: training reads the store on a connection of its own */
	snprintf(dbpath, sizeof dbpath, "/tmp/knytt-abi-%d", (int)getpid());
	char uri[128];
	snprintf(uri, sizeof uri, "sqlite:%s/shop.db", dbpath);
	ck_assert_int_eq(mkdir(dbpath, 0700), 0);
	ck_assert_msg(knytt_engine_open(eng, uri) == KNYTT_OK, "%s",
		      knytt_errmsg());
	ck_assert_int_eq(knytt_engine_set_now(eng, NOW), KNYTT_OK);
	static const char *cats[3] = { "lamps", "chairs", "mugs" };
	for (int i = 0; i < NITEM; i++) {
		char ext[16], title[48];
		snprintf(ext, sizeof ext, "i%d", i);
		snprintf(title, sizeof title, "%s model %d", cats[i % 3], i);
		knytt_item it;
		memset(&it, 0, sizeof it);
		it.struct_size = sizeof it;
		it.ext_id = ext;
		it.title = title;
		it.category = cats[i % 3];
		it.in_stock = 1;
		ck_assert_int_eq(knytt_engine_item_upsert(eng, &it, NULL, 0),
				 KNYTT_OK);
	}
	uint64_t s = 7;
	for (int u = 0; u < 12; u++)
		for (int j = 0; j < 6; j++) {
			char user[16], item[16];
			snprintf(user, sizeof user, "u%d", u);
			snprintf(item, sizeof item, "i%d",
				 (int)(u % 3 + 3 * (tu_rand(&s) % 10)));
			if (!*seen)
				strcpy(seen, item);
			ck_assert_int_eq(knytt_engine_feedback(
						 eng, user, item, "view", 0,
						 NOW - (6 - j) * 60000),
					 KNYTT_OK);
		}
	ck_assert_msg(knytt_engine_train(eng, NULL, NULL) == KNYTT_OK, "%s",
		      knytt_errmsg());
}

static void teardown(void)
{
	knytt_engine_close(eng);
	eng = NULL;
	char cmd[160];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dbpath);
	ck_assert_int_eq(system(cmd), 0);
}

/* The queries, each run into a caller's array @p out. */
enum { Q_RECOMMEND, Q_SIMILAR, Q_SEARCH, Q_TRENDING, NQ };
static const char *qname[NQ] = { "recommend", "similar", "search",
				 "trending" };

static int run(int q, void *out)
{
	switch (q) {
	case Q_RECOMMEND:
		return knytt_engine_recommend(eng, "u1", K, NULL, NULL, out);
	case Q_SIMILAR:
		return knytt_engine_similar(eng, seen, K, NULL, out);
	case Q_SEARCH:
		return knytt_engine_search(eng, "lamps model", NULL, 0, K, NULL,
					   NULL, out, NULL);
	default:
		return knytt_engine_trending(eng, K, 86400, NULL, out);
	}
}

/* Bytes [from, to) of @p p still hold the fill. */
static int untouched(const void *p, size_t from, size_t to)
{
	const unsigned char *b = p;
	for (size_t i = from; i < to; i++)
		if (b[i] != FILL)
			return 0;
	return 1;
}

START_TEST(older_result_gets_its_members_at_its_stride)
{
	int q = _i;
	knytt_result full[K] = {{.struct_size = sizeof(knytt_result)}};
	int n = run(q, full);
	/* two at least: the second result is where the stride shows */
	ck_assert_msg(n >= 2, "%s: %d %s", qname[q], n, knytt_errmsg());
	for (int i = 0; i < n; i++)
		ck_assert_uint_eq(full[i].struct_size, sizeof(knytt_result));
	/* K + 1 elements: the last one guards the end of the array */
	old_result old[K + 1];
	memset(old, FILL, sizeof old);
	old[0].struct_size = sizeof(old_result);
	ck_assert_int_eq(run(q, old), n);
	size_t end = offsetof(old_result, ext_id) + sizeof old[0].ext_id;
	for (int i = 0; i < n; i++) {
		ck_assert_uint_eq(old[i].struct_size, sizeof(old_result));
		ck_assert_uint_eq(old[i].item_id, full[i].item_id);
		ck_assert_str_eq(old[i].ext_id, full[i].ext_id);
		/* the padding after ext_id is where score would start */
		ck_assert_msg(untouched(&old[i], end, sizeof old[i]),
			      "%s: result %d written past its members",
			      qname[q], i);
	}
	ck_assert_msg(untouched(&old[n], 0, (size_t)(K + 1 - n) * sizeof *old),
		      "%s: written past result %d", qname[q], n - 1);
}
END_TEST

START_TEST(newer_result_keeps_its_own_members)
{
	int q = _i;
	knytt_result full[K] = {{.struct_size = sizeof(knytt_result)}};
	int n = run(q, full);
	ck_assert_int_ge(n, 2);
	new_result nw[K + 1];
	memset(nw, FILL, sizeof nw);
	nw[0].r.struct_size = sizeof(new_result);
	ck_assert_int_eq(run(q, nw), n);
	for (int i = 0; i < n; i++) {
		ck_assert_uint_eq(nw[i].r.struct_size, sizeof(new_result));
		ck_assert_uint_eq(nw[i].r.item_id, full[i].item_id);
		ck_assert_str_eq(nw[i].r.ext_id, full[i].ext_id);
		ck_assert(nw[i].r.score == full[i].score);
		ck_assert_int_eq(nw[i].r.reason, full[i].reason);
		ck_assert_uint_eq(nw[i].r.because, full[i].because);
		ck_assert(untouched(nw[i].future, 0, sizeof nw[i].future));
	}
	ck_assert(untouched(&nw[n], 0, (size_t)(K + 1 - n) * sizeof *nw));
}
END_TEST

/* A struct_size without room for item_id, 0 (never set) or beyond any
 * layout: KNYTT_EINVAL naming struct_size, and not a byte written. */
START_TEST(bad_result_struct_size_is_einval)
{
	int q = _i;
	static const size_t bad[] = { 0, 8, 15, 65537, (size_t)-1 };
	for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
		knytt_result r[K];
		memset(r, FILL, sizeof r);
		r[0].struct_size = bad[b];
		ck_assert_int_eq(run(q, r), KNYTT_EINVAL);
		ck_assert_str_eq(knytt_errfield(), "struct_size");
		ck_assert_uint_eq(r[0].struct_size, bad[b]);
		ck_assert(untouched(r, sizeof(size_t), sizeof r));
	}
	ck_assert_int_eq(run(q, NULL), KNYTT_EINVAL);
	ck_assert_str_eq(knytt_errfield(), "out");
	/* the smallest layout accepted: struct_size and item_id */
	struct { size_t struct_size; uint64_t item_id; } tiny[K + 1];
	memset(tiny, FILL, sizeof tiny);
	tiny[0].struct_size = sizeof *tiny;
	int n = run(q, tiny);
	ck_assert_int_ge(n, 2);
	for (int i = 0; i < n; i++)
		ck_assert_uint_eq(tiny[i].struct_size, sizeof *tiny);
	ck_assert(untouched(&tiny[n], 0, (size_t)(K + 1 - n) * sizeof *tiny));
}
END_TEST

/* The experiment calls take the same path. */
START_TEST(experiment_calls_honour_the_stride)
{
	knytt_store *s = knytt_engine_store(eng);
	knytt_experiment x;
	knytt_experiment_init(&x);
	snprintf(x.name, sizeof x.name, "abi");
	x.nvariants = 2;
	strcpy(x.variants[0].name, "A");
	strcpy(x.variants[1].name, "B");
	x.variants[0].share = x.variants[1].share = 1;
	x.start_ms = NOW - 3600000;
	ck_assert_int_eq(knytt_store_experiment_create(s, &x, NULL), 0);
	knytt_exp_served sv;
	knytt_result full[K] = {{.struct_size = sizeof(knytt_result)}};
	old_result old[K + 1];
	size_t end = offsetof(old_result, ext_id) + sizeof old[0].ext_id;
	for (int search = 0; search < 2; search++) {
		memset(old, FILL, sizeof old);
		old[0].struct_size = sizeof(old_result);
		int n = search ? knytt_engine_search_exp(eng, "abi", "mugs",
							 NULL, 0, K, NULL,
							 "u2", full, NULL, &sv)
			       : knytt_engine_recommend_exp(eng, "abi", "u2",
							    K, NULL, NULL,
							    full, &sv);
		ck_assert_msg(n > 0, "%d %s", n, knytt_errmsg());
		int m = search ? knytt_engine_search_exp(eng, "abi", "mugs",
							 NULL, 0, K, NULL,
							 "u2", (void *)old,
							 NULL, &sv)
			       : knytt_engine_recommend_exp(eng, "abi", "u2",
							    K, NULL, NULL,
							    (void *)old, &sv);
		ck_assert_int_eq(m, n);
		for (int i = 0; i < n; i++) {
			ck_assert_uint_eq(old[i].item_id, full[i].item_id);
			ck_assert_str_eq(old[i].ext_id, full[i].ext_id);
			ck_assert(untouched(&old[i], end, sizeof old[i]));
		}
		ck_assert(untouched(&old[n], 0,
				    (size_t)(K + 1 - n) * sizeof *old));
		old[0].struct_size = 0;
		ck_assert_int_eq(
			search ? knytt_engine_search_exp(eng, "abi", "mugs",
							 NULL, 0, K, NULL,
							 "u2", (void *)old,
							 NULL, &sv)
			       : knytt_engine_recommend_exp(eng, "abi", "u2",
							    K, NULL, NULL,
							    (void *)old, &sv),
			KNYTT_EINVAL);
		ck_assert_str_eq(knytt_errfield(), "struct_size");
	}
}
END_TEST

START_TEST(train_status_writes_only_the_callers_members)
{
	knytt_train_status full = {.struct_size = sizeof full};
	ck_assert_int_eq(knytt_engine_train_status(eng, &full), KNYTT_OK);
	ck_assert_uint_eq(full.struct_size, sizeof full);
	ck_assert_int_gt(full.model_version, 0);
	ck_assert_uint_gt(full.items_indexed, 0);
	struct {
		old_status s;
		unsigned char guard[sizeof(knytt_train_status)];
	} o;
	memset(&o, FILL, sizeof o);
	o.s.struct_size = sizeof o.s;
	ck_assert_int_eq(knytt_engine_train_status(eng, (void *)&o.s), KNYTT_OK);
	ck_assert_uint_eq(o.s.struct_size, sizeof o.s);
	ck_assert_int_eq(o.s.running, full.running);
	ck_assert_int_eq(o.s.last_rc, full.last_rc);
	ck_assert(untouched(o.guard, 0, sizeof o.guard));
	/* without room for running: EINVAL, nothing written */
	static const size_t bad[] = { 0, sizeof(size_t),
				      offsetof(knytt_train_status, running) +
					      sizeof(int) - 1 };
	for (size_t b = 0; b < sizeof bad / sizeof *bad; b++) {
		memset(&o, FILL, sizeof o);
		o.s.struct_size = bad[b];
		ck_assert_int_eq(knytt_engine_train_status(eng, (void *)&o.s),
				 KNYTT_EINVAL);
		ck_assert_str_eq(knytt_errfield(), "struct_size");
		ck_assert(untouched(&o, sizeof(size_t), sizeof o));
	}
}
END_TEST

START_TEST(version_is_the_abi_major)
{
	ck_assert_int_eq(KNYTT_VERSION_MAJOR, 1);
	ck_assert_int_eq(knytt_version_number(), KNYTT_VERSION_NUMBER);
	ck_assert_str_eq(knytt_version(), KNYTT_VERSION_STRING);
	ck_assert_uint_eq(offsetof(knytt_result, struct_size), 0);
	ck_assert_uint_eq(offsetof(knytt_train_status, struct_size), 0);
}
END_TEST

Suite *abi_suite(void)
{
	Suite *s = suite_create("abi");
	TCase *tc = tcase_create("results");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, older_result_gets_its_members_at_its_stride, 0,
			    NQ);
	tcase_add_loop_test(tc, newer_result_keeps_its_own_members, 0, NQ);
	tcase_add_loop_test(tc, bad_result_struct_size_is_einval, 0, NQ);
	tcase_add_test(tc, experiment_calls_honour_the_stride);
	tcase_add_test(tc, train_status_writes_only_the_callers_members);
	suite_add_tcase(s, tc);
	TCase *tv = tcase_create("version");
	tcase_add_test(tv, version_is_the_abi_major);
	suite_add_tcase(s, tv);
	return s;
}
