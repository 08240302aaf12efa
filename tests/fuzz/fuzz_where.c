/*
 * fuzz_where.c -- libFuzzer target for attribute filters
 * (lib/engine/where.c, attrx.c): the expression parser of
 * knytt_where_compile, the attribute index fed with arbitrary JSON, and
 * the evaluation.  Any bytes must give a compiled filter or KNYTT_EINVAL,
 * never a crash; a compiled filter evaluated over the index must agree,
 * row by row, with knytt_where_match on the row's JSON (the harness
 * aborts if not: a wrong answer is a bug too).
 *
 * Input: the expression, a NUL byte, then one control byte and the items'
 * attributes, one JSON text per line.  Row i of the index gets line
 * i % lines; the rows number lines x (1 + 8 x control), at most 4096,
 * so common values reach the index's bitset form (1024 rows).  The rows
 * are then set a second time, shifted by one line, so every row's
 * postings are also removed and re-added.
 */
#include "fuzz.h"

#include "../../lib/engine/attrx.h"

#define MAX_LINES 64
#define MAX_ROWS 4096

typedef struct lines {
	char *text[MAX_LINES];
	size_t n;
} lines;

static void split(const uint8_t *p, size_t n, lines *l)
{
	l->n = 0;
	size_t a = 0;
	for (size_t i = 0; i <= n && l->n < MAX_LINES; i++) {
		if (i < n && p[i] != '\n')
			continue;
		char *t = malloc(i - a + 1);
		if (!t)
			break;
		memcpy(t, p + a, i - a);
		t[i - a] = '\0'; /* a NUL inside cuts the line short: fine */
		l->text[l->n++] = t;
		a = i + 1;
	}
}

/* Rows of the index against knytt_where_match of their lines. */
static void check(const knytt_where *w, const knytt__attrx *ax,
		  const lines *l, size_t rows, size_t shift)
{
	knytt__wbits b;
	if (knytt__where_eval(w, ax, rows, &b) != KNYTT_OK)
		return; /* out of memory */
	int want[MAX_LINES];
	for (size_t i = 0; i < l->n; i++)
		want[i] = knytt_where_match(w, l->text[i]);
	size_t count = 0;
	for (size_t r = 0; r < rows; r++) {
		int m = want[(r + shift) % l->n];
		if (m < 0)
			continue; /* out of memory */
		count += (size_t)m;
		if (knytt__wbits_has(&b, r) != m) {
			fprintf(stderr, "fuzz_where: row %zu: index %d, "
					"match %d\n",
				r, knytt__wbits_has(&b, r), m);
			abort();
		}
	}
	if (count > b.count) {
		fprintf(stderr, "fuzz_where: count %zu > %zu\n", count,
			b.count);
		abort();
	}
	free(b.rows);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *nul = memchr(data, 0, size);
	size_t elen = nul ? (size_t)(nul - data) : size;
	char *expr = malloc(elen + 1);
	if (!expr)
		return 0;
	memcpy(expr, data, elen);
	expr[elen] = '\0';
	knytt_where *w = NULL;
	int rc = knytt_where_compile(expr, &w);
	free(expr);
	if (rc != KNYTT_OK || !nul || (size_t)(nul - data) + 1 >= size) {
		knytt_where_free(w);
		return 0;
	}
	const uint8_t *rest = nul + 1;
	size_t rlen = size - elen - 1;
	unsigned rep = 1 + 8u * rest[0];
	lines l;
	split(rest + 1, rlen - 1, &l);
	knytt__attrx *ax = knytt__attrx_new();
	size_t rows = l.n * rep > MAX_ROWS ? MAX_ROWS : l.n * rep;
	if (ax && l.n) {
		for (size_t r = 0; r < rows; r++)
			knytt__attrx_set(ax, (uint32_t)r, l.text[r % l.n]);
		check(w, ax, &l, rows, 0);
		for (size_t r = 0; r < rows; r++)
			knytt__attrx_set(ax, (uint32_t)r,
					 l.text[(r + 1) % l.n]);
		check(w, ax, &l, rows, 1);
	}
	knytt__attrx_free(ax);
	for (size_t i = 0; i < l.n; i++)
		free(l.text[i]);
	knytt_where_free(w);
	return 0;
}
