/*
 * where.c -- attribute filters: the expression language of
 * knytt_where_compile (grammar below), compiled to a tree once, and its
 * evaluation to a bitset over the rows of the item table from the
 * attribute index's per-value postings (attrx.c).
 *
 *   expr := and ("or" and)*
 *   and  := not ("and" not)*
 *   not  := "not" not | "(" expr ")" | cmp
 *   cmp  := name ("=" | "!=") value
 *         | name ["not"] "in" "(" value ("," value)* ")"
 *         | name ("<" | "<=" | ">" | ">=") number
 *
 * "!=" and "not in" compile to not(=) and not(in): an item without the
 * attribute passes them, as it would a SQL "IS DISTINCT FROM".  Values are
 * stored canonically (numbers by knytt__attr_canon), the same way the
 * index stores them, so a lookup is one hash probe.  The limits (text,
 * depth, nodes) bound the recursion of both the parser and the evaluator:
 * the text comes from shoppers' URLs.
 */
#include "attrx.h"

#include "../internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TEXT 8192
#define MAX_DEPTH 32
#define MAX_ITEMS 1024 /* comparisons + values */

enum { W_EQ, W_IN, W_LT, W_LE, W_GT, W_GE, W_AND, W_OR, W_NOT };

typedef struct wnode {
	int op;
	uint32_t a, b; /* children: AND and OR both, NOT a */
	char *name;    /* comparisons */
	char **vals;   /* EQ (one) and IN: canonical texts */
	size_t nv;
	double num;    /* the ranges' bound */
} wnode;

struct knytt_where {
	wnode *n;
	size_t nn, cap;
	uint32_t root;
};

typedef struct wparse {
	const char *s;
	size_t i;
	knytt_where *w;
	int depth;
	size_t items; /* comparisons and values so far */
} wparse;

void knytt_where_free(knytt_where *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->nn; i++) {
		free(w->n[i].name);
		for (size_t j = 0; j < w->n[i].nv; j++)
			free(w->n[i].vals[j]);
		free(w->n[i].vals);
	}
	free(w->n);
	free(w);
}

/* ------------------------------------------------------------- lexing */

static int word_char(unsigned char c)
{
	return isalnum(c) || c == '_' || c == '.' || c == '-' || c == '+' ||
	       c == '/' || c == ':' || c >= 0x80;
}

static void skip_ws(wparse *p)
{
	while (p->s[p->i] == ' ' || p->s[p->i] == '\t' ||
	       p->s[p->i] == '\n' || p->s[p->i] == '\r')
		p->i++;
}

/* EINVAL naming the position (1-based), what was expected and what is
 * there. */
static int syntax(const wparse *p, const char *expected)
{
	const char *at = p->s + p->i;
	if (!*at)
		return knytt__err(KNYTT_EINVAL,
				  "where: position %zu: expected %s, found "
				  "the end",
				  p->i + 1, expected);
	size_t n = 0;
	while (at[n] && n < 16 && at[n] != ' ')
		n++;
	return knytt__err(KNYTT_EINVAL,
			  "where: position %zu: expected %s, found '%.*s'",
			  p->i + 1, expected, (int)(n ? n : 1), at);
}

/* Whether the keyword @p kw (lower case) comes next; consumed if so. */
static int keyword(wparse *p, const char *kw)
{
	skip_ws(p);
	size_t n = strlen(kw);
	if (strncasecmp(p->s + p->i, kw, n) != 0 ||
	    word_char((unsigned char)p->s[p->i + n]))
		return 0;
	p->i += n;
	return 1;
}

static int punct(wparse *p, char c)
{
	skip_ws(p);
	if (p->s[p->i] != c)
		return 0;
	p->i++;
	return 1;
}

/* A bare word or a quoted string into *out (malloc'd). */
static int word(wparse *p, const char *what, char **out)
{
	skip_ws(p);
	const char *s = p->s;
	size_t i = p->i, n = 0;
	char q = s[i];
	if (q == '\'' || q == '"') {
		size_t j = i + 1;
		while (s[j] && s[j] != q)
			j += s[j] == '\\' && s[j + 1] ? 2 : 1;
		if (!s[j]) {
			p->i = j;
			return syntax(p, "a closing quote");
		}
		char *o = malloc(j - i);
		if (!o)
			return knytt__err(KNYTT_ENOMEM, "out of memory");
		for (size_t k = i + 1; k < j; k++) {
			if (s[k] == '\\' && k + 1 < j)
				k++;
			o[n++] = s[k];
		}
		o[n] = '\0';
		p->i = j + 1;
		*out = o;
		return KNYTT_OK;
	}
	while (word_char((unsigned char)s[i + n]))
		n++;
	if (!n)
		return syntax(p, what);
	if (!(*out = strndup(s + i, n)))
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	p->i += n;
	return KNYTT_OK;
}

/* ------------------------------------------------------------ parsing */

/* A new node; its index in *id. */
static int node(wparse *p, int op, uint32_t *id)
{
	knytt_where *w = p->w;
	if (++p->items > MAX_ITEMS)
		return knytt__err(KNYTT_EINVAL,
				  "where: position %zu: more than %d "
				  "comparisons and values",
				  p->i + 1, MAX_ITEMS);
	if (w->nn == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 8;
		wnode *nn = realloc(w->n, nc * sizeof *nn);
		if (!nn)
			return knytt__err(KNYTT_ENOMEM, "out of memory");
		w->n = nn;
		w->cap = nc;
	}
	memset(&w->n[w->nn], 0, sizeof w->n[w->nn]);
	w->n[w->nn].op = op;
	*id = (uint32_t)w->nn++;
	return KNYTT_OK;
}

/* A value, canonical (a number in the index's text), appended to node
 * @p id's list. */
static int value(wparse *p, uint32_t id)
{
	char *v;
	int rc = word(p, "a value", &v);
	if (rc)
		return rc;
	double num;
	if (knytt__attr_number(v, &num)) {
		char buf[40];
		knytt__attr_canon(buf, sizeof buf, num);
		free(v);
		if (!(v = strdup(buf)))
			return knytt__err(KNYTT_ENOMEM, "out of memory");
	}
	wnode *x = &p->w->n[id];
	char **nv = realloc(x->vals, (x->nv + 1) * sizeof *nv);
	if (!nv || ++p->items > MAX_ITEMS) {
		if (nv)
			x->vals = nv;
		free(v);
		return nv ? knytt__err(KNYTT_EINVAL,
				       "where: position %zu: more than %d "
				       "comparisons and values",
				       p->i + 1, MAX_ITEMS)
			  : knytt__err(KNYTT_ENOMEM, "out of memory");
	}
	x->vals = nv;
	x->vals[x->nv++] = v;
	return KNYTT_OK;
}

/* Wraps node *id in a NOT. */
static int negate(wparse *p, uint32_t *id)
{
	uint32_t n;
	int rc = node(p, W_NOT, &n);
	if (rc)
		return rc;
	p->w->n[n].a = *id;
	*id = n;
	return KNYTT_OK;
}

static int in_list(wparse *p, uint32_t id)
{
	if (!punct(p, '('))
		return syntax(p, "'(' after in");
	int rc;
	do {
		if ((rc = value(p, id)))
			return rc;
	} while (punct(p, ','));
	return punct(p, ')') ? KNYTT_OK : syntax(p, "',' or ')'");
}

static int range(wparse *p, uint32_t id, const char *op)
{
	size_t at = p->i;
	char *v;
	int rc = word(p, "a number", &v);
	if (rc)
		return rc;
	double num;
	int ok = knytt__attr_number(v, &num);
	free(v);
	if (!ok) {
		p->i = at;
		skip_ws(p);
		char what[32];
		snprintf(what, sizeof what, "a number after '%s'", op);
		return syntax(p, what);
	}
	p->w->n[id].num = num;
	return KNYTT_OK;
}

static int cmp(wparse *p, uint32_t *id)
{
	char *name;
	int rc = word(p, "an attribute name, 'not' or '('", &name);
	if (rc)
		return rc;
	if ((rc = node(p, W_EQ, id))) {
		free(name);
		return rc;
	}
	wnode *x = &p->w->n[*id];
	x->name = name;
	skip_ws(p);
	const char *s = p->s + p->i;
	static const struct { const char *t; int op; } ops[] = {
		{ "<=", W_LE }, { ">=", W_GE }, { "!=", W_EQ },
		{ "<", W_LT },  { ">", W_GT },  { "=", W_EQ },
	};
	for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
		size_t n = strlen(ops[k].t);
		if (strncmp(s, ops[k].t, n) != 0)
			continue;
		p->i += n;
		x->op = ops[k].op;
		if (ops[k].op != W_EQ)
			return range(p, *id, ops[k].t);
		if ((rc = value(p, *id)))
			return rc;
		return s[0] == '!' ? negate(p, id) : KNYTT_OK;
	}
	int neg = keyword(p, "not");
	if (!keyword(p, "in"))
		return syntax(p, neg ? "'in' after not"
				     : "=, !=, <, <=, >, >=, in or not in");
	x->op = W_IN;
	if ((rc = in_list(p, *id)))
		return rc;
	return neg ? negate(p, id) : KNYTT_OK;
}

static int expr(wparse *p, uint32_t *id);

static int unary(wparse *p, uint32_t *id)
{
	if (++p->depth > MAX_DEPTH)
		return knytt__err(KNYTT_EINVAL,
				  "where: position %zu: nested more than %d "
				  "deep",
				  p->i + 1, MAX_DEPTH);
	int rc;
	if (keyword(p, "not")) {
		if (!(rc = unary(p, id)))
			rc = negate(p, id);
	} else if (punct(p, '(')) {
		if (!(rc = expr(p, id)) && !punct(p, ')'))
			rc = syntax(p, "')'");
	} else {
		rc = cmp(p, id);
	}
	p->depth--;
	return rc;
}

/* a op b op c ... for one operator (and: unary terms, or: and terms) */
static int chain(wparse *p, uint32_t *id, int op)
{
	int rc = op == W_OR ? chain(p, id, W_AND) : unary(p, id);
	while (!rc && keyword(p, op == W_OR ? "or" : "and")) {
		uint32_t rhs, n;
		if ((rc = op == W_OR ? chain(p, &rhs, W_AND) : unary(p, &rhs)))
			break;
		if ((rc = node(p, op, &n)))
			break;
		p->w->n[n].a = *id;
		p->w->n[n].b = rhs;
		*id = n;
	}
	return rc;
}

static int expr(wparse *p, uint32_t *id)
{
	return chain(p, id, W_OR);
}

int knytt_where_compile(const char *text, knytt_where **out)
{
	if (!text || !out)
		return knytt__err(KNYTT_EINVAL, "where: %s is NULL",
				  !text ? "expression" : "out");
	*out = NULL;
	if (strlen(text) > MAX_TEXT)
		return knytt__err(KNYTT_EINVAL,
				  "where: expression longer than %d bytes",
				  MAX_TEXT);
	wparse p = { .s = text };
	skip_ws(&p);
	if (!text[p.i])
		return knytt__err(KNYTT_EINVAL, "where: expression is empty");
	if (!(p.w = calloc(1, sizeof *p.w)))
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	int rc = expr(&p, &p.w->root);
	skip_ws(&p);
	if (!rc && text[p.i])
		rc = syntax(&p, "'and', 'or' or the end");
	if (rc) {
		knytt_where_free(p.w);
		return rc;
	}
	*out = p.w;
	return KNYTT_OK;
}

/* ---------------------------------------------------------- evaluation */

typedef struct range_ctx {
	const wnode *x;
	uint64_t *out;
	size_t nwords;
} range_ctx;

static int range_hit(const knytt__aterm *t, double num, void *ctx)
{
	range_ctx *r = ctx;
	double b = r->x->num;
	int op = r->x->op;
	if (op == W_LT ? num < b
	    : op == W_LE ? num <= b
	    : op == W_GT ? num > b
			 : num >= b)
		knytt__attrx_or(t, r->out, r->nwords);
	return 0;
}

/* Node @p id's rows into out[0..nwords); rows >= nrows stay 0. */
static int eval(const knytt_where *w, uint32_t id, const knytt__attrx *ax,
		size_t nrows, uint64_t *out, size_t nwords)
{
	const wnode *x = &w->n[id];
	if (x->op == W_AND || x->op == W_OR) {
		int rc = eval(w, x->a, ax, nrows, out, nwords);
		if (rc)
			return rc;
		uint64_t any = 0;
		for (size_t i = 0; i < nwords && x->op == W_AND; i++)
			any |= out[i];
		if (x->op == W_AND && !any)
			return KNYTT_OK; /* nothing to intersect */
		uint64_t *tmp = malloc(nwords * sizeof *tmp);
		if (!tmp)
			return knytt__err(KNYTT_ENOMEM, "out of memory");
		rc = eval(w, x->b, ax, nrows, tmp, nwords);
		for (size_t i = 0; !rc && i < nwords; i++)
			out[i] = x->op == W_AND ? out[i] & tmp[i]
						: out[i] | tmp[i];
		free(tmp);
		return rc;
	}
	if (x->op == W_NOT) {
		int rc = eval(w, x->a, ax, nrows, out, nwords);
		for (size_t i = 0; !rc && i < nwords; i++)
			out[i] = ~out[i];
		if (nrows % 64 && nwords)
			out[nwords - 1] &= (1ULL << (nrows % 64)) - 1;
		return rc;
	}
	memset(out, 0, nwords * sizeof *out);
	if (x->op == W_EQ || x->op == W_IN) {
		for (size_t v = 0; v < x->nv; v++) {
			const knytt__aterm *t =
				knytt__attrx_term(ax, x->name, x->vals[v]);
			if (t)
				knytt__attrx_or(t, out, nwords);
		}
		return KNYTT_OK;
	}
	range_ctx r = { x, out, nwords };
	knytt__attrx_each_num(ax, x->name, range_hit, &r);
	return KNYTT_OK;
}

int knytt__where_eval(const knytt_where *w, const knytt__attrx *ax,
		      size_t nrows, knytt__wbits *out)
{
	out->nwords = (nrows + 63) / 64;
	out->count = 0;
	out->rows = malloc((out->nwords ? out->nwords : 1) * sizeof(uint64_t));
	if (!out->rows)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	int rc = eval(w, w->root, ax, nrows, out->rows, out->nwords);
	if (rc) {
		free(out->rows);
		out->rows = NULL;
		return rc;
	}
	/* the postings may hold rows >= nrows (added since nrows was
	 * read): leave them out, as the NOT branch does */
	if (nrows % 64 && out->nwords)
		out->rows[out->nwords - 1] &= (1ULL << (nrows % 64)) - 1;
	for (size_t i = 0; i < out->nwords; i++)
		out->count += (size_t)__builtin_popcountll(out->rows[i]);
	return KNYTT_OK;
}

/* One item: a one-row index, evaluated as the engine would.  Costs a
 * JSON parse and a few allocations: fine for a page of results, not for
 * a catalogue (the engine keeps its index instead). */
int knytt_where_match(const knytt_where *w, const char *attributes)
{
	if (!w)
		return knytt__err(KNYTT_EINVAL, "where: filter is NULL");
	knytt__attrx *ax = knytt__attrx_new();
	if (!ax)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	knytt__wbits b = { 0 };
	int rc = knytt__attrx_set(ax, 0, attributes);
	if (!rc)
		rc = knytt__where_eval(w, ax, 1, &b);
	if (!rc)
		rc = b.count == 1;
	free(b.rows);
	knytt__attrx_free(ax);
	return rc;
}
