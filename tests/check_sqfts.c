/*
 * check_sqfts.c -- SQLite keyword search (lib/store/sqfts.c) against
 * FTS5's own bm25() in plain SQL: same items, same order, same scores,
 * over random queries, filters, tenants, deletions and capacities; and
 * the pruning really skips work.
 */
#include "../lib/store/store_int.h"
#include "knytt.h"
#include "testutil.h"

#include <math.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define VOCAB 60

static char db_path[256];

/* Words by a Zipf-like law over a small vocabulary, so that frequent
 * words match hundreds of items. */
static int word(uint64_t *s)
{
	double u = (double)(tu_rand(s) >> 11) / 9007199254740992.0;
	return (int)(pow(VOCAB, u)) - 1;
}

static void words(uint64_t *s, char *out, size_t cap, int n)
{
	size_t o = 0;
	out[0] = '\0';
	for (int i = 0; i < n && o + 8 < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%sw%d", i ? " " : "",
				      word(s));
}

/* Removes the test database and its WAL files. */
static void remove_db(void)
{
	tu_rm_db(db_path);
}

static knytt_store *open_tenant(const char *name, uint64_t *id)
{
	char uri[300];
	snprintf(uri, sizeof uri, "sqlite:%s", db_path);
	knytt_store *st;
	ck_assert_int_eq(knytt_store_open(uri, &st), 0);
	if (knytt_store_tenant_find(st, name, id))
		ck_assert_int_eq(knytt_store_tenant_create(st, name, id), 0);
	ck_assert_int_eq(knytt_store_use_tenant(st, *id), 0);
	return st;
}

static void fill(knytt_store *st, const char *prefix, int n, uint64_t *s)
{
	char id[32], title[128], desc[256], cat[32];
	for (int i = 0; i < n; i++) {
		snprintf(id, sizeof id, "%s%d", prefix, i);
		words(s, title, sizeof title, 1 + (int)(tu_rand(s) % 5));
		words(s, desc, sizeof desc, (int)(tu_rand(s) % 14));
		/* category words are query words too (weight 2) */
		snprintf(cat, sizeof cat, "%s/w%d",
			 tu_rand(s) % 3 ? "c1" : "c10", word(s));
		knytt_item it = {.struct_size = sizeof it,
				 .ext_id = id,
				 .title = title,
				 .description = desc[0] ? desc : NULL,
				 .category = cat,
				 .price = (double)(tu_rand(s) % 200),
				 .in_stock = tu_rand(s) % 4 != 0};
		ck_assert_int_eq(knytt_store_item_upsert(st, &it, NULL), 0);
	}
}

START_TEST(search_equals_sql_bm25)
{
	snprintf(db_path, sizeof db_path, "/tmp/knytt-sqfts-%d.db",
		 (int)getpid());
	remove(db_path);
	uint64_t s = 42, ta, tb;
	int n_items = tu_sanitize() ? 600 : 2500;
	knytt_store *other = open_tenant("b", &tb);
	fill(other, "b", n_items / 4, &s);
	knytt_store *st = open_tenant("a", &ta);
	fill(st, "a", n_items, &s);
	char id[32];
	for (int i = 0; i < n_items; i += 7) {
		snprintf(id, sizeof id, "a%d", i);
		ck_assert_int_eq(knytt_store_item_delete(st, id), 0);
	}
	/* the reference: FTS5's bm25() with the same weights, in SQL */
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(db_path, &db), SQLITE_OK);
	sqlite3_stmt *ref;
	ck_assert_int_eq(
		sqlite3_prepare_v2(
			db,
			"SELECT i.id, -bm25(items_fts, 3.0, 1.0, 2.0) AS s "
			"FROM items_fts JOIN items i ON i.id = "
			"items_fts.rowid WHERE items_fts MATCH ?1 AND "
			"i.tenant = ?2 AND i.deleted = 0 AND (?3 IS NULL OR "
			"i.category = ?3 OR substr(i.category, 1, length(?3)"
			" + 1) = ?3 || '/') AND (?4 IS NULL OR i.price >= ?4)"
			" AND (?5 IS NULL OR i.price <= ?5) AND (?6 = 0 OR "
			"i.in_stock = 1) ORDER BY s DESC, i.id LIMIT ?7",
			-1, &ref, NULL),
		SQLITE_OK);
	uint64_t ids[40];
	double sc[40];
	long long scored = 0, matched = 0, results = 0;
	int queries = tu_sanitize() ? 60 : 200;
	/* a second connection of the same tenant, for changes the first one
	 * learns about only from the database */
	uint64_t ta2;
	knytt_store *st2 = open_tenant("a", &ta2);
	for (int round = 0; round < 3; round++)
	for (int q = 0; q < queries; q++) {
		if (q == 0 && round > 0) {
			/* rewrite a third of the texts, so their token counts
			 * change: round 1 through this handle, round 2
			 * through the other connection */
			for (int i = 1; i < n_items; i += 3) {
				char desc[256], title[128];
				snprintf(id, sizeof id, "a%d", i);
				words(&s, title, sizeof title,
				      1 + (int)(tu_rand(&s) % 6));
				words(&s, desc, sizeof desc,
				      (int)(tu_rand(&s) % 20));
				knytt_item it = {.struct_size = sizeof it,
						 .ext_id = id,
						 .title = title,
						 .description = desc,
						 .category = "c1/w2",
						 .price = 50,
						 .in_stock = 1};
				ck_assert_int_eq(
					knytt_store_item_upsert(
						round == 1 ? st : st2, &it,
						NULL),
					0);
			}
		}
		char text[64], fts[96];
		words(&s, text, sizeof text, 1 + (int)(tu_rand(&s) % 2));
		/* the store quotes each word; the reference gets the same */
		size_t o = 0;
		for (char *w = text, *e; *w; w = *e ? e + 1 : e) {
			e = w + strcspn(w, " ");
			o += (size_t)snprintf(fts + o, sizeof fts - o,
					      "%s\"%.*s\"", o ? " " : "",
					      (int)(e - w), w);
		}
		int f = (int)(tu_rand(&s) % 5);
		const char *cat = f == 1 ? "c1" : f == 4 ? "c10/w1" : NULL;
		double lo = f == 2 ? 20 : NAN, hi = f == 2 ? 120 : NAN;
		int stock = f == 3;
		size_t cap = 1 + tu_rand(&s) % 40;
		int n = knytt_store_search(st, text, cat, lo, hi, stock, ids, sc,
					   cap);
		ck_assert_msg(n >= 0, "%s", knytt_errmsg());
		long long a, b;
		knytt__store_search_stats(st, &a, &b);
		ck_assert_int_ge(a, 0); /* the pruning path ran */
		scored += a;
		sqlite3_bind_text(ref, 1, fts, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(ref, 2, (sqlite3_int64)ta);
		if (cat)
			sqlite3_bind_text(ref, 3, cat, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(ref, 3);
		if (f == 2) {
			sqlite3_bind_double(ref, 4, lo);
			sqlite3_bind_double(ref, 5, hi);
		} else {
			sqlite3_bind_null(ref, 4);
			sqlite3_bind_null(ref, 5);
		}
		sqlite3_bind_int(ref, 6, stock);
		sqlite3_bind_int64(ref, 7, (sqlite3_int64)cap);
		int j = 0;
		while (sqlite3_step(ref) == SQLITE_ROW) {
			ck_assert_msg(j < n, "query '%s' filter %d: store "
					     "returned %d, SQL more",
				      text, f, n);
			ck_assert_msg((uint64_t)sqlite3_column_int64(ref, 0) ==
					      ids[j],
				      "query '%s' filter %d cap %zu: rank %d "
				      "is %llu, SQL says %lld",
				      text, f, cap, j,
				      (unsigned long long)ids[j],
				      (long long)sqlite3_column_int64(ref, 0));
			ck_assert_double_eq_tol(sqlite3_column_double(ref, 1),
						sc[j], 1e-9);
			j++;
		}
		ck_assert_int_eq(j, n);
		sqlite3_reset(ref);
		results += n;
		/* every match of the words, for the pruning figure */
		sqlite3_stmt *c;
		ck_assert_int_eq(sqlite3_prepare_v2(db,
						    "SELECT count(*) FROM "
						    "items_fts WHERE "
						    "items_fts MATCH ?1",
						    -1, &c, NULL),
				 SQLITE_OK);
		sqlite3_bind_text(c, 1, fts, -1, SQLITE_TRANSIENT);
		ck_assert_int_eq(sqlite3_step(c), SQLITE_ROW);
		matched += sqlite3_column_int64(c, 0);
		sqlite3_finalize(c);
	}
	if (getenv("KNYTT_TEST_VERBOSE"))
		printf("sqfts: %lld results, scored %lld of %lld rows\n",
		       results, scored, matched);
	/* the queries found things, and the bound spared a share of the
	 * exact scores (40% of the rows of this seed, 28% of the smaller
	 * data set of the sanitizer run) */
	ck_assert_int_gt(results, 3 * queries * 3);
	knytt_store_close(st2);
	ck_assert_msg(scored < matched * 4 / 5,
		      "scored %lld of %lld matching rows", scored, matched);
	sqlite3_finalize(ref);
	sqlite3_close(db);
	knytt_store_close(st);
	knytt_store_close(other);
	remove_db();
}
END_TEST

/* The best matches belong to another tenant or are deleted: the rows
 * kept unchecked during the walk all fail, and the search must walk
 * again checking as it goes (and keep doing so for a while). */
START_TEST(crowded_by_other_rows)
{
	snprintf(db_path, sizeof db_path, "/tmp/knytt-sqfts-c-%d.db",
		 (int)getpid());
	remove(db_path);
	uint64_t tbig, tsmall;
	knytt_store *big = open_tenant("big", &tbig);
	knytt_store *small = open_tenant("small", &tsmall);
	char id[32], desc[200];
	for (int i = 0; i < 200; i++) {
		snprintf(id, sizeof id, "b%d", i);
		knytt_item it = {.struct_size = sizeof it,
				 .ext_id = id,
				 .title = "zz"};
		ck_assert_int_eq(knytt_store_item_upsert(big, &it, NULL), 0);
	}
	for (int i = 0; i < 30; i++) { /* short, then deleted */
		snprintf(id, sizeof id, "d%d", i);
		knytt_item it = {.struct_size = sizeof it,
				 .ext_id = id,
				 .title = "zz zz"};
		ck_assert_int_eq(knytt_store_item_upsert(small, &it, NULL), 0);
		ck_assert_int_eq(knytt_store_item_delete(small, id), 0);
	}
	for (int i = 0; i < 8; i++) { /* longer and longer descriptions */
		snprintf(id, sizeof id, "s%d", i);
		size_t o = (size_t)snprintf(desc, sizeof desc, "zz");
		for (int j = 0; j <= i; j++)
			o += (size_t)snprintf(desc + o, sizeof desc - o,
					      " filler%d", j);
		knytt_item it = {.struct_size = sizeof it,
				 .ext_id = id,
				 .title = "plain",
				 .description = desc};
		ck_assert_int_eq(knytt_store_item_upsert(small, &it, NULL), 0);
	}
	/* 40 searches: the first walks twice, the next 32 check inline,
	 * then the unchecked pool is tried again */
	for (int q = 0; q < 40; q++) {
		uint64_t ids[5];
		double sc[5];
		int n = knytt_store_search(small, "zz", NULL, NAN, NAN, 0, ids,
					   sc, 3);
		ck_assert_int_eq(n, 3);
		for (int i = 0; i < 3; i++) {
			knytt_item *it = NULL;
			ck_assert_int_eq(knytt_store_item_get_id(small,
								     ids[i],
								     &it),
					 0);
			/* the shortest rows first: s0, s1, s2 */
			snprintf(id, sizeof id, "s%d", i);
			ck_assert_str_eq(it->ext_id, id);
			knytt_free(it);
		}
		ck_assert(sc[0] > sc[1] && sc[1] > sc[2]);
	}
	knytt_store_close(big);
	knytt_store_close(small);
	remove_db();
}
END_TEST

Suite *sqfts_suite(void)
{
	Suite *s = suite_create("sqfts");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, search_equals_sql_bm25);
	tcase_add_test(tc, crowded_by_other_rows);
	suite_add_tcase(s, tc);
	return s;
}
