/*
 * check_where.c -- attribute filters: the expression parser (good and bad
 * input, with the position in the message), the evaluation against the
 * attribute index compared with a brute-force scan of the items' JSON
 * (also after rows change), and the engine's filtered queries: every
 * result passes, an upsert that changes an attribute moves the item
 * between filter results, a delete drops it, a re-open reloads it, and
 * the results are the exact best passing items.
 */
#include "knytt.h"
#include "../lib/internal.h"
#include "../lib/engine/attrx.h"
#include "../lib/engine/engine_int.h"
#include "../lib/engine/packscan.h"
#include "testutil.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- parser ---- */

START_TEST(parser_accepts_the_grammar)
{
	static const char *ok[] = {
		"brand=acme",
		"brand = acme and size in (m, l) and price < 50",
		"BRAND=acme AND NOT (colour = red OR weight > 2.5)",
		"tags = sale or tags = 'new in'",
		"size not in (xs,xxl) and size != s",
		"a>=1e3 and b<=-2 and c>+0.5",
		"\"odd name\" = \"quoted \\\" value\"",
		"x=\xc3\xa9t\xc3\xa9",
		"((((a=1))))",
		"not not a=1",
		"a in (1)",
		"flag = true",
		"path = shoes/running:v2",
	};
	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		knytt_where *w = NULL;
		int rc = knytt_where_compile(ok[i], &w);
		ck_assert_msg(rc == KNYTT_OK, "'%s': %s", ok[i],
			      knytt_errmsg());
		ck_assert_ptr_nonnull(w);
		knytt_where_free(w);
	}
	knytt_where_free(NULL);
}
END_TEST

START_TEST(parser_rejects_bad_input_naming_the_position)
{
	static const struct {
		const char *text, *msg;
	} bad[] = {
		{ "", "empty" },
		{ "   ", "empty" },
		{ "brand", "position 6: expected =, !=" },
		{ "brand=", "position 7: expected a value, found the end" },
		{ "brand=acme and", "position 15: expected an attribute name" },
		{ "brand=acme size=m", "position 12: expected 'and', 'or'" },
		{ "price < cheap", "position 9: expected a number after '<'" },
		{ "price >= ", "position 10: expected a number" },
		{ "size in m", "position 9: expected '(' after in" },
		{ "size in (m,", "position 12: expected a value" },
		{ "size in (m l)", "position 12: expected ',' or ')'" },
		{ "size not (m)", "position 10: expected 'in' after not" },
		{ "(a=1", "position 5: expected ')'" },
		{ "a='open", "position 8: expected a closing quote" },
		{ "=x", "position 1: expected an attribute name" },
		{ "a==b", "position 3: expected a value, found '=b'" },
		{ "a=1)", "position 4: expected 'and', 'or' or the end" },
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		knytt_where *w = (knytt_where *)1;
		int rc = knytt_where_compile(bad[i].text, &w);
		ck_assert_msg(rc == KNYTT_EINVAL, "'%s' gave %d", bad[i].text,
			      rc);
		ck_assert_ptr_null(w);
		ck_assert_msg(strstr(knytt_errmsg(), bad[i].msg),
			      "'%s': message '%s' lacks '%s'", bad[i].text,
			      knytt_errmsg(), bad[i].msg);
		ck_assert_msg(strncmp(knytt_errmsg(), "where", 5) == 0,
			      "'%s': message '%s' does not name the field",
			      bad[i].text, knytt_errmsg());
	}
	knytt_where *w;
	ck_assert_int_eq(knytt_where_compile(NULL, &w), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_where_compile("a=1", NULL), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_where_match(NULL, "{}"), KNYTT_EINVAL);
	/* the limits: depth, size, count */
	char deep[200] = "";
	for (int i = 0; i < 40; i++)
		strcat(deep, "(");
	strcat(deep, "a=1");
	for (int i = 0; i < 40; i++)
		strcat(deep, ")");
	ck_assert_int_eq(knytt_where_compile(deep, &w), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "nested more than"));
	char *big = malloc(9000);
	memset(big, 'a', 8999);
	big[8999] = '\0';
	ck_assert_int_eq(knytt_where_compile(big, &w), KNYTT_EINVAL);
	/* 1100 values */
	strcpy(big, "a in (1");
	for (int i = 0; i < 1100; i++)
		strcat(big, ",1");
	strcat(big, ")");
	ck_assert_int_eq(knytt_where_compile(big, &w), KNYTT_EINVAL);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "more than 1024"));
	free(big);
}
END_TEST

/* ---- evaluation against a brute-force scan ---- */

#define NROWS 5000
static const char *brands[] = { "acme", "zenith", "nova", "orbit",
				 "pixel", "quark" };
static const char *sizes[] = { "xs", "s", "m", "l", "xl" };
static const char *tags[] = { "sale", "new", "eco", "gift" };

/* A random item's attributes: brands skewed (acme on about half the rows,
 * so its term is dense), size, tags (an array), weight (a number, now and
 * then a numeric string), sometimes nothing at all. */
static void rand_attrs(uint64_t *s, char *buf, size_t cap)
{
	if (tu_rand(s) % 20 == 0) {
		snprintf(buf, cap, "%s", tu_rand(s) % 2 ? "{}" : "");
		return;
	}
	int b = tu_rand(s) % 2 ? 0 : (int)(tu_rand(s) % 6);
	size_t o = (size_t)snprintf(buf, cap, "{\"brand\":\"%s\"", brands[b]);
	if (tu_rand(s) % 4)
		o += (size_t)snprintf(buf + o, cap - o, ",\"size\":\"%s\"",
				      sizes[tu_rand(s) % 5]);
	o += (size_t)snprintf(buf + o, cap - o, ",\"tags\":[");
	int nt = (int)(tu_rand(s) % 3);
	for (int i = 0; i < nt; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s\"%s\"",
				      i ? "," : "", tags[tu_rand(s) % 4]);
	int w = (int)(tu_rand(s) % 100);
	if (tu_rand(s) % 10 == 0)
		o += (size_t)snprintf(buf + o, cap - o,
				      "],\"weight\":\"%d.0\"}", w);
	else
		o += (size_t)snprintf(buf + o, cap - o,
				      "],\"weight\":%d.5,\"on\":%s}", w,
				      w % 2 ? "true" : "false");
}

/* A random expression as text, and the same as a tree for the brute
 * force: kinds 0 =, 1 !=, 2 in, 3 not in, 4 <, 5 >=, 6 and, 7 or, 8 not. */
typedef struct tnode {
	int kind;
	const char *name;
	char vals[3][16];
	int nv;
	double num;
	struct tnode *a, *b;
} tnode;

static tnode *rand_expr(uint64_t *s, int depth, char *buf, size_t cap)
{
	tnode *t = calloc(1, sizeof *t);
	int kind = depth < 3 ? (int)(tu_rand(s) % 9) : (int)(tu_rand(s) % 6);
	t->kind = kind;
	if (kind >= 6) {
		char l[512], r[512];
		t->a = rand_expr(s, depth + 1, l, sizeof l);
		if (kind == 8) {
			snprintf(buf, cap, "not (%s)", l);
			return t;
		}
		t->b = rand_expr(s, depth + 1, r, sizeof r);
		snprintf(buf, cap, "(%s) %s (%s)", l, kind == 6 ? "and" : "or",
			 r);
		return t;
	}
	int attr = (int)(tu_rand(s) % 4);
	if (kind >= 4)
		attr = 3; /* ranges on weight */
	t->name = (const char *[]){ "brand", "size", "tags", "weight" }[attr];
	if (kind >= 4) {
		t->num = (double)(tu_rand(s) % 110) - 5;
		snprintf(buf, cap, "%s %s %g", t->name, kind == 4 ? "<" : ">=",
			 t->num);
		return t;
	}
	t->nv = kind >= 2 ? 1 + (int)(tu_rand(s) % 3) : 1;
	for (int i = 0; i < t->nv; i++) {
		const char *v = attr == 0 ? brands[tu_rand(s) % 6]
			      : attr == 1 ? sizes[tu_rand(s) % 5]
			      : attr == 2 ? tags[tu_rand(s) % 4]
					  : NULL;
		if (v)
			snprintf(t->vals[i], sizeof t->vals[i], "%s", v);
		else /* "12.5" as 12.50: numbers compare by value */
			snprintf(t->vals[i], sizeof t->vals[i], "%d.50",
				 (int)(tu_rand(s) % 100));
	}
	size_t o = (size_t)snprintf(buf, cap, "%s %s ", t->name,
				    (const char *[]){ "=", "!=", "in",
						      "not in" }[kind]);
	if (kind >= 2)
		o += (size_t)snprintf(buf + o, cap - o, "(");
	for (int i = 0; i < t->nv; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s'%s'", i ? ", " : "",
				      t->vals[i]);
	if (kind >= 2)
		snprintf(buf + o, cap - o, ")");
	return t;
}

static void tfree(tnode *t)
{
	if (!t)
		return;
	tfree(t->a);
	tfree(t->b);
	free(t);
}

/* Whether one JSON scalar equals text @p v (numbers by value). */
static int json_eq(const cJSON *j, const char *v)
{
	if (cJSON_IsString(j)) {
		char *end;
		double a = strtod(j->valuestring, &end), b = strtod(v, NULL);
		if (*j->valuestring && !*end)
			return a == b;
		return strcmp(j->valuestring, v) == 0;
	}
	if (cJSON_IsNumber(j))
		return j->valuedouble == strtod(v, NULL);
	return 0;
}

static int json_has(const cJSON *obj, const char *name, const char *v)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, name);
	if (cJSON_IsArray(a)) {
		for (const cJSON *x = a->child; x; x = x->next)
			if (json_eq(x, v))
				return 1;
		return 0;
	}
	return a && json_eq(a, v);
}

static int brute(const tnode *t, const cJSON *obj)
{
	switch (t->kind) {
	case 6: return brute(t->a, obj) && brute(t->b, obj);
	case 7: return brute(t->a, obj) || brute(t->b, obj);
	case 8: return !brute(t->a, obj);
	case 4:
	case 5: {
		const cJSON *a = cJSON_GetObjectItemCaseSensitive(obj, t->name);
		double x = cJSON_IsNumber(a)   ? a->valuedouble
			   : cJSON_IsString(a) ? strtod(a->valuestring, NULL)
					       : NAN;
		return t->kind == 4 ? x < t->num : x >= t->num;
	}
	default: {
		int any = 0;
		for (int i = 0; i < t->nv; i++)
			any |= obj && json_has(obj, t->name, t->vals[i]);
		return t->kind % 2 ? !any : any;
	}
	}
}

static void check_exprs(knytt__attrx *ax, char attrs[][256], uint64_t *s,
			int nexpr)
{
	cJSON *objs[NROWS];
	for (int r = 0; r < NROWS; r++)
		objs[r] = cJSON_Parse(attrs[r]);
	for (int q = 0; q < nexpr; q++) {
		char text[4096];
		tnode *t = rand_expr(s, 0, text, sizeof text);
		knytt_where *w;
		ck_assert_msg(knytt_where_compile(text, &w) == KNYTT_OK,
			      "'%s': %s", text, knytt_errmsg());
		knytt__wbits b;
		ck_assert_int_eq(knytt__where_eval(w, ax, NROWS, &b), KNYTT_OK);
		size_t count = 0;
		for (int r = 0; r < NROWS; r++) {
			int want = brute(t, objs[r]);
			count += (size_t)want;
			ck_assert_msg(knytt__wbits_has(&b, (size_t)r) == want,
				      "'%s', row %d (%s): want %d", text, r,
				      attrs[r], want);
			/* one item outside the engine: the same answer */
			if (r % 97 == 0)
				ck_assert_int_eq(knytt_where_match(w, attrs[r]),
						 want);
		}
		ck_assert_uint_eq(b.count, count);
		free(b.rows);
		knytt_where_free(w);
		tfree(t);
	}
	for (int r = 0; r < NROWS; r++)
		cJSON_Delete(objs[r]);
}

START_TEST(evaluation_matches_a_brute_force_scan)
{
	static char attrs[NROWS][256];
	uint64_t s = 42;
	knytt__attrx *ax = knytt__attrx_new();
	ck_assert_ptr_nonnull(ax);
	for (int r = 0; r < NROWS; r++) {
		rand_attrs(&s, attrs[r], sizeof attrs[r]);
		ck_assert_int_eq(knytt__attrx_set(ax, (uint32_t)r, attrs[r]),
				 KNYTT_OK);
	}
	check_exprs(ax, attrs, &s, 300);
	/* churn: rows change and lose their attributes, dense terms go
	 * sparse (acme drops below the threshold) and back */
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < NROWS / 2; i++) {
			int r = (int)(tu_rand(&s) % NROWS);
			if (round == 1)
				snprintf(attrs[r], sizeof attrs[r],
					 "{\"brand\":\"nova\"}");
			else
				rand_attrs(&s, attrs[r], sizeof attrs[r]);
			ck_assert_int_eq(knytt__attrx_set(ax, (uint32_t)r,
							  attrs[r]),
					 KNYTT_OK);
		}
		check_exprs(ax, attrs, &s, 100);
	}
	/* not JSON, or not an object: no attributes */
	ck_assert_int_eq(knytt__attrx_set(ax, 0, "[1,2]"), KNYTT_OK);
	ck_assert_int_eq(knytt__attrx_set(ax, 1, "{broken"), KNYTT_OK);
	strcpy(attrs[0], "{}");
	strcpy(attrs[1], "{}");
	check_exprs(ax, attrs, &s, 50);
	ck_assert_uint_gt(knytt__attrx_bytes(ax), 0);
	knytt__attrx_free(ax);
}
END_TEST

/* ---- the engine ---- */

#define DIM 8
#define NITEMS 400

static char dbpath[128];

static void item_vec(int i, float *v)
{
	uint64_t s = (uint64_t)i * 2654435761u + 1;
	for (int j = 0; j < DIM; j++)
		v[j] = tu_randf(&s);
}

static void put(knytt_engine *e, int i, const char *brand)
{
	char ext[32], attrs[128];
	snprintf(ext, sizeof ext, "it-%d", i);
	snprintf(attrs, sizeof attrs,
		 "{\"brand\":\"%s\",\"size\":\"%s\",\"weight\":%d}", brand,
		 sizes[i % 5], i % 50);
	knytt_item it;
	memset(&it, 0, sizeof it);
	it.struct_size = sizeof it;
	it.ext_id = ext;
	it.title = "thing";
	it.price = 10 + i % 30;
	it.in_stock = 1;
	it.attributes = attrs;
	float v[DIM];
	item_vec(i, v);
	ck_assert_int_eq(knytt_engine_item_upsert(e, &it, v, DIM), KNYTT_OK);
}

static int has_item(const knytt_result *r, int n, const char *ext)
{
	for (int i = 0; i < n; i++)
		if (strcmp(r[i].ext_id, ext) == 0)
			return 1;
	return 0;
}

/* Items by cosine to @p q among those @p pass accepts (by number),
 * best first, into best[0..k). */
static int exact_best(const float *q, int (*pass)(int i), int k, int *best)
{
	double sc[NITEMS];
	int n = 0, idx[NITEMS];
	for (int i = 0; i < NITEMS; i++) {
		if (!pass(i))
			continue;
		float v[DIM];
		item_vec(i, v);
		double d = 0, nq = 0, nv = 0;
		for (int j = 0; j < DIM; j++) {
			d += q[j] * v[j];
			nq += q[j] * q[j];
			nv += v[j] * v[j];
		}
		sc[i] = d / sqrt(nq * nv);
		idx[n++] = i;
	}
	for (int a = 0; a < n && a < k; a++)
		for (int b = a + 1; b < n; b++)
			if (sc[idx[b]] > sc[idx[a]]) {
				int t = idx[a];
				idx[a] = idx[b];
				idx[b] = t;
			}
	for (int a = 0; a < n && a < k; a++)
		best[a] = idx[a];
	return n < k ? n : k;
}

static int brand_of(int i)
{
	return i % 4; /* acme, zenith, nova, orbit */
}

static int pass_acme_ml_light(int i)
{
	return brand_of(i) == 0 && (i % 5 == 2 || i % 5 == 3) && i % 50 < 30;
}

static knytt_engine *open_engine(const char *uri)
{
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_model(e, KNYTT_MODEL_EXTERNAL),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, DIM), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_open(e, uri), KNYTT_OK);
	return e;
}

START_TEST(engine_filters_follow_upserts_and_deletes)
{
	snprintf(dbpath, sizeof dbpath, "/tmp/knytt-where-%d.db",
		 (int)getpid());
	char uri[160];
	snprintf(uri, sizeof uri, "sqlite:%s", dbpath);
	unlink(dbpath);
	knytt_engine *e = open_engine(uri);
	for (int i = 0; i < NITEMS; i++)
		put(e, i, brands[brand_of(i)]);
	knytt_where *w;
	ck_assert_int_eq(knytt_where_compile("brand = acme and size in (m, l) "
					     "and weight < 30",
					     &w),
			 KNYTT_OK);
	knytt_filter f;
	knytt_filter_init(&f);
	f.where = w;
	knytt_result r[NITEMS] = {{.struct_size = sizeof(knytt_result)}};
	/* exact: the best passing items, in order */
	for (int qi = 0; qi < 5; qi++) {
		float q[DIM];
		item_vec(1000 + qi, q);
		int best[10];
		int nb = exact_best(q, pass_acme_ml_light, 10, best);
		int n = knytt_engine_search(e, NULL, q, DIM, 10, &f, NULL, r,
					    NULL);
		ck_assert_int_eq(n, nb);
		for (int i = 0; i < n; i++) {
			char ext[32];
			snprintf(ext, sizeof ext, "it-%d", best[i]);
			ck_assert_str_eq(r[i].ext_id, ext);
		}
	}
	/* it-12 is acme, size m, weight 12: similar finds it from it-6 */
	int n = knytt_engine_similar(e, "it-6", NITEMS, &f, r);
	ck_assert_int_gt(n, 0);
	for (int i = 0; i < n; i++) {
		int id = atoi(r[i].ext_id + 3);
		ck_assert_msg(pass_acme_ml_light(id), "%s passed",
			      r[i].ext_id);
	}
	ck_assert(has_item(r, n, "it-12"));
	/* an upsert that changes the brand moves it-12 out, and into a
	 * filter on its new brand */
	put(e, 12, "zenith");
	n = knytt_engine_similar(e, "it-6", NITEMS, &f, r);
	ck_assert(!has_item(r, n, "it-12"));
	knytt_where *wz;
	ck_assert_int_eq(knytt_where_compile("brand=zenith and weight=12", &wz),
			 KNYTT_OK);
	knytt_filter fz;
	knytt_filter_init(&fz);
	fz.where = wz;
	n = knytt_engine_similar(e, "it-6", NITEMS, &fz, r);
	ck_assert_int_eq(n, 1);
	ck_assert_str_eq(r[0].ext_id, "it-12");
	/* back to acme: back in */
	put(e, 12, "acme");
	n = knytt_engine_similar(e, "it-6", NITEMS, &f, r);
	ck_assert(has_item(r, n, "it-12"));
	n = knytt_engine_similar(e, "it-6", NITEMS, &fz, r);
	ck_assert_int_eq(n, 0);
	/* a delete drops it */
	ck_assert_int_eq(knytt_engine_item_delete(e, "it-12"), KNYTT_OK);
	n = knytt_engine_similar(e, "it-6", NITEMS, &f, r);
	ck_assert(!has_item(r, n, "it-12"));
	/* recommend honours it too */
	ck_assert_int_eq(knytt_engine_feedback(e, "u1", "it-7", "view", 0, 0),
			 KNYTT_OK);
	n = knytt_engine_recommend(e, "u1", 20, &f, NULL, r);
	ck_assert_int_gt(n, 0);
	for (int i = 0; i < n; i++)
		ck_assert(pass_acme_ml_light(atoi(r[i].ext_id + 3)));
	/* an older caller's struct (no where member) filters nothing */
	f.struct_size = offsetof(knytt_filter, where);
	n = knytt_engine_similar(e, "it-6", 50, &f, r);
	ck_assert_int_eq(n, 50);
	f.struct_size = sizeof f;
	knytt_engine_close(e);
	/* a re-open reads the attributes from the store; a second engine's
	 * change arrives by sync */
	e = open_engine(uri);
	knytt_engine *e2 = open_engine(uri);
	n = knytt_engine_similar(e, "it-6", NITEMS, &f, r);
	ck_assert_int_gt(n, 0);
	for (int i = 0; i < n; i++)
		ck_assert(pass_acme_ml_light(atoi(r[i].ext_id + 3)));
	ck_assert(has_item(r, n, "it-8"));
	put(e2, 8, "nova");
	ck_assert_int_ge(knytt_engine_sync(e), 1);
	n = knytt_engine_similar(e, "it-6", NITEMS, &f, r);
	ck_assert(!has_item(r, n, "it-8"));
	knytt_engine_close(e2);
	knytt_engine_close(e);
	knytt_where_free(w);
	knytt_where_free(wz);
	tu_rm_db(dbpath);
}
END_TEST

/* A filter passing thousands of rows is scanned from the int8 copy of
 * the vectors first (scan.c), then its best few exactly: the answer must
 * be the exact one, with another filter part failing most of the int8
 * pass's best (the scan then falls back to the exact one), and after an
 * upsert changed a vector. */
#define WN 6000
#define WD 32
static float wvec[WN][WD];
static int w_in_stock(int i)
{
	return i % 97 == 0;
}

static void wput(knytt_engine *e, int i)
{
	char ext[32], attrs[64];
	snprintf(ext, sizeof ext, "w-%d", i);
	snprintf(attrs, sizeof attrs, "{\"half\":\"%s\"}",
		 i % 2 ? "no" : "yes");
	knytt_item it;
	memset(&it, 0, sizeof it);
	it.struct_size = sizeof it;
	it.ext_id = ext;
	it.title = "thing";
	it.in_stock = w_in_stock(i);
	it.attributes = attrs;
	ck_assert_int_eq(knytt_engine_item_upsert(e, &it, wvec[i], WD),
			 KNYTT_OK);
}

/* An engine of WN items with random vectors drawn from @p s (into
 * wvec), no model of its own. */
static knytt_engine *w_engine(uint64_t *s)
{
	for (int i = 0; i < WN; i++)
		for (int j = 0; j < WD; j++)
			wvec[i][j] = tu_randf(s) - 0.5f;
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_model(e, KNYTT_MODEL_EXTERNAL),
			 KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, WD), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_open(e, "sqlite::memory:"), KNYTT_OK);
	for (int i = 0; i < WN; i++)
		wput(e, i);
	return e;
}

/* @p f: the filter "half = yes" (the even rows) alone; returns the
 * compiled expression, for knytt_where_free. */
static knytt_where *w_half(knytt_filter *f)
{
	knytt_where *w;
	ck_assert_int_eq(knytt_where_compile("half = yes", &w), KNYTT_OK);
	knytt_filter_init(f);
	f->where = w;
	return w;
}

/* the k best rows by cosine among i % 2 == 0 (and in stock), in order */
static int w_best(const float *q, int stock, int k, int *best)
{
	static double sc[WN];
	int n = 0;
	for (int i = 0; i < WN; i++) {
		double d = 0, nv = 0;
		for (int j = 0; j < WD; j++) {
			d += (double)q[j] * wvec[i][j];
			nv += (double)wvec[i][j] * wvec[i][j];
		}
		sc[i] = d / sqrt(nv);
	}
	for (int a = 0; a < k; a++) {
		int b = -1;
		for (int i = 0; i < WN; i++) {
			if (i % 2 || (stock && !w_in_stock(i)))
				continue;
			int taken = 0;
			for (int c = 0; c < n; c++)
				taken |= best[c] == i;
			if (!taken && (b < 0 || sc[i] > sc[b]))
				b = i;
		}
		if (b < 0)
			break;
		best[n++] = b;
	}
	return n;
}

static void w_check(knytt_engine *e, const float *q, const knytt_filter *f,
		    int stock)
{
	int best[10];
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	int nb = w_best(q, stock, 10, best);
	int n = knytt_engine_search(e, NULL, q, WD, 10, f, NULL, r, NULL);
	ck_assert_int_eq(n, nb);
	for (int i = 0; i < n; i++) {
		char ext[32];
		snprintf(ext, sizeof ext, "w-%d", best[i]);
		ck_assert_str_eq(r[i].ext_id, ext);
	}
}

START_TEST(wide_filter_scan_is_exact)
{
	uint64_t s = 99;
	knytt_engine *e = w_engine(&s);
	knytt_filter f, fs;
	knytt_where *w = w_half(&f);
	fs = f;
	fs.in_stock_only = 1; /* 31 of the 3,000 rows */
	float q[WD];
	for (int t = 0; t < 8; t++) {
		for (int j = 0; j < WD; j++)
			q[j] = tu_randf(&s) - 0.5f;
		w_check(e, q, &f, 0);
		w_check(e, q, &fs, 1);
	}
	/* the best row turned away from the query: gone, and the rest as
	 * the exact scan says */
	int best[10];
	ck_assert_int_eq(w_best(q, 0, 10, best), 10);
	for (int j = 0; j < WD; j++)
		wvec[best[0]][j] = -q[j];
	wput(e, best[0]);
	w_check(e, q, &f, 0);
	/* a row turned toward it: first */
	for (int j = 0; j < WD; j++)
		wvec[best[5]][j] = q[j];
	wput(e, best[5]);
	w_check(e, q, &f, 0);
	knytt_engine_close(e);
	knytt_where_free(w);
}
END_TEST

/* A wide filter met again reads a packed copy of its rows' codes: made
 * the second time, read from the third, dropped when a vector in it
 * changes; the answers stay the exact ones throughout. */
START_TEST(repeated_wide_filters_read_a_packed_copy)
{
	uint64_t s = 7;
	knytt_engine *e = w_engine(&s);
	knytt_filter f;
	knytt_where *w = w_half(&f);
	float q[WD];
	knytt__pack_stats st;
	for (int t = 0; t < 5; t++) {
		for (int j = 0; j < WD; j++)
			q[j] = tu_randf(&s) - 0.5f;
		w_check(e, q, &f, 0);
		knytt__packs_stats(e, &st);
		/* first sight: none; second: made; then read */
		ck_assert_uint_eq(st.builds, t >= 1);
		ck_assert_uint_eq(st.hits, t >= 2 ? (uint64_t)t - 1 : 0);
	}
	ck_assert_uint_eq(st.count, 1);
	/* a row of the set turned toward the query: the copy is stale, a
	 * new one is made, and the row comes first */
	int best[10];
	ck_assert_int_eq(w_best(q, 0, 10, best), 10);
	for (int j = 0; j < WD; j++)
		wvec[best[7]][j] = q[j];
	wput(e, best[7]);
	w_check(e, q, &f, 0);
	knytt__packs_stats(e, &st);
	ck_assert_uint_eq(st.builds, 2);
	ck_assert_uint_eq(st.count, 1);
	knytt_engine_close(e);
	knytt_where_free(w);
}
END_TEST

/* The copies keep to their budget (4 MiB here), the least recently used
 * going first but never one a scan reads, and a stale copy a scan still
 * reads is freed by its last reader. */
START_TEST(packed_copies_keep_to_their_budget)
{
	uint64_t s = 11;
	knytt_engine *e = w_engine(&s);
	enum { SETS = 40, N = 4000 };
	static uint32_t rows[N];
	pthread_rwlock_rdlock(&e->lock);
	const knytt__pack *held = NULL;
	for (int set = 0; set < SETS; set++) {
		/* N of the WN rows, a different stride each time */
		for (int i = 0; i < N; i++)
			rows[i] = (uint32_t)((i * (set + 1)) % WN);
		ck_assert_ptr_null(knytt__pack_get(e, rows, N));
		const knytt__pack *p = knytt__pack_get(e, rows, N);
		ck_assert_ptr_nonnull(p);
		ck_assert_uint_eq(p->n, N);
		if (set == 0)
			held = p;
		else
			knytt__pack_put(e, p);
	}
	knytt__pack_stats st;
	knytt__packs_stats(e, &st);
	ck_assert_uint_eq(st.builds, SETS);
	ck_assert_uint_le(st.bytes, (size_t)4 << 20);
	ck_assert_uint_lt(st.count, SETS);
	/* the held copy was never evicted: a scan reads it */
	for (int i = 0; i < N; i++)
		ck_assert_int_eq(memcmp(held->codes + (size_t)i * WD,
					e->rowq + (size_t)held->rows[i] * WD,
					WD), 0);
	/* a vector of its set changes: the next scan of the set drops the
	 * stale copy and makes another, while the holder still reads the
	 * old one (AddressSanitizer would see it freed) */
	pthread_rwlock_unlock(&e->lock);
	wvec[0][0] += 1.0f;
	wput(e, 0);
	pthread_rwlock_rdlock(&e->lock);
	for (int i = 0; i < N; i++)
		rows[i] = (uint32_t)i % WN;
	const knytt__pack *p = knytt__pack_get(e, rows, N);
	ck_assert_ptr_nonnull(p);
	ck_assert_ptr_ne(p, held);
	knytt__packs_stats(e, &st);
	ck_assert_uint_eq(st.builds, SETS + 1);
	long sum = 0;
	for (size_t i = 0; i < (size_t)N * WD; i++)
		sum += held->codes[i];
	ck_assert_int_ne(sum, LONG_MIN);
	knytt__pack_put(e, held);
	knytt__pack_put(e, p);
	pthread_rwlock_unlock(&e->lock);
	knytt_engine_close(e);
}
END_TEST

/* Scans of one wide filter from several threads while vectors change:
 * copies are made, read, dropped and freed under the scans (run under
 * ThreadSanitizer by make tsan), and every answer passes the filter. */
typedef struct packrace {
	knytt_engine *e;
	const knytt_filter *f;
	int stop, fail; /* atomic */
	long queries;   /* atomic */
} packrace;

static void *pr_query(void *p)
{
	packrace *c = p;
	uint64_t s = (uint64_t)(uintptr_t)&s;
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	float q[WD];
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		for (int j = 0; j < WD; j++)
			q[j] = tu_randf(&s) - 0.5f;
		int n = knytt_engine_search(c->e, NULL, q, WD, 10, c->f, NULL,
					    r, NULL);
		int row = -1;
		if (n != 10)
			__atomic_store_n(&c->fail, 1, __ATOMIC_RELEASE);
		for (int i = 0; i < n; i++)
			if (sscanf(r[i].ext_id, "w-%d", &row) != 1 || row % 2)
				__atomic_store_n(&c->fail, 2, __ATOMIC_RELEASE);
		__atomic_add_fetch(&c->queries, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

static void *pr_write(void *p)
{
	packrace *c = p;
	uint64_t s = 5;
	float v[WD];
	char ext[32];
	knytt_item it;
	memset(&it, 0, sizeof it);
	it.struct_size = sizeof it;
	it.title = "thing";
	it.attributes = "{\"half\":\"yes\"}";
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		int i = 2 * (int)(tu_rand(&s) % (WN / 2)); /* stays in */
		for (int j = 0; j < WD; j++)
			v[j] = tu_randf(&s) - 0.5f;
		snprintf(ext, sizeof ext, "w-%d", i);
		it.ext_id = ext;
		it.in_stock = w_in_stock(i);
		if (knytt_engine_item_upsert(c->e, &it, v, WD) != KNYTT_OK)
			__atomic_store_n(&c->fail, 3, __ATOMIC_RELEASE);
		usleep(2000);
	}
	return NULL;
}

START_TEST(packed_copies_under_parallel_scans)
{
	uint64_t s = 13;
	knytt_engine *e = w_engine(&s);
	knytt_filter f;
	knytt_where *w = w_half(&f);
	packrace c = { .e = e, .f = &f };
	pthread_t th[4];
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, pr_query, &c), 0);
	ck_assert_int_eq(pthread_create(&th[3], NULL, pr_write, &c), 0);
	usleep(1500 * 1000);
	__atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(c.fail, 0);
	knytt__pack_stats st;
	knytt__packs_stats(e, &st);
	ck_assert_uint_gt(st.hits, 0);
	ck_assert_uint_gt(st.builds, 1);
	fprintf(stderr, "packed copies: %ld queries, %llu read a copy, "
		"%llu copies made\n", c.queries,
		(unsigned long long)st.hits, (unsigned long long)st.builds);
	knytt_engine_close(e);
	knytt_where_free(w);
}
END_TEST

Suite *where_suite(void)
{
	Suite *s = suite_create("where");
	TCase *tc = tcase_create("parser");
	tcase_add_test(tc, parser_accepts_the_grammar);
	tcase_add_test(tc, parser_rejects_bad_input_naming_the_position);
	suite_add_tcase(s, tc);
	tc = tcase_create("eval");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, evaluation_matches_a_brute_force_scan);
	tcase_add_test(tc, engine_filters_follow_upserts_and_deletes);
	tcase_add_test(tc, wide_filter_scan_is_exact);
	suite_add_tcase(s, tc);
	/* make tsan runs this case alone */
	tc = tcase_create("packs");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, repeated_wide_filters_read_a_packed_copy);
	tcase_add_test(tc, packed_copies_keep_to_their_budget);
	tcase_add_test(tc, packed_copies_under_parallel_scans);
	suite_add_tcase(s, tc);
	return s;
}
