/*
 * attrx.h -- the engine's attribute index (attrx.c) and the evaluation of
 * compiled attribute filters against it (where.c).  Not API.
 *
 * A term is one (attribute name, value) pair seen on some item: brand =
 * "acme", tags = "sale", size = 10.  Each term lists the rows of the
 * item table that carry it (its posting list), and a term carried by
 * many rows also keeps them as a bitset over rows, so an equality or a
 * set membership on a common value costs a few thousand word ORs, not a
 * bit set per row.  Every row remembers its terms and its place in each
 * posting list, so an upsert that changes an attribute moves the row in
 * O(terms of the row).
 *
 * Locking: the index belongs to the item table.  It is written under the
 * engine's write lock (table_put, item delete) or while opening, and read
 * under its read lock; it takes no lock of its own.
 */
#ifndef KNYTT_ENGINE_ATTRX_H
#define KNYTT_ENGINE_ATTRX_H

#include <stddef.h>
#include <stdint.h>

typedef struct knytt__attrx knytt__attrx;
typedef struct knytt_where knytt_where;

/* An empty index (NULL without memory). */
knytt__attrx *knytt__attrx_new(void);
void knytt__attrx_free(knytt__attrx *ax);
/* Row @p row now carries the attributes of @p json (a JSON object, or
 * NULL / "" for none; a text that is not a JSON object counts as none).
 * Returns 0, or KNYTT_ENOMEM with the row holding no terms. */
int knytt__attrx_set(knytt__attrx *ax, uint32_t row, const char *json);
/* Whether @p s is a decimal number ([+-]digits[.digits][e[+-]digits],
 * finite), its value in *num; and the one text every number is stored and
 * looked up under ("10" for 10, 10.0 and "10.00"). */
int knytt__attr_number(const char *s, double *num);
void knytt__attr_canon(char *buf, size_t cap, double num);
/* Bytes held by the index (for tests and the benchmark). */
size_t knytt__attrx_bytes(const knytt__attrx *ax);

/* For where.c: the term (name, value text), or NULL. */
typedef struct knytt__aterm knytt__aterm;
const knytt__aterm *knytt__attrx_term(const knytt__attrx *ax,
				      const char *name, const char *val);
/* ORs the rows of @p t into out[0..nwords) (rows beyond are ignored). */
void knytt__attrx_or(const knytt__aterm *t, uint64_t *out, size_t nwords);
/* Calls fn for every term of attribute @p name that has a numeric value
 * (stops on a non-zero return). */
void knytt__attrx_each_num(const knytt__attrx *ax, const char *name,
			   int (*fn)(const knytt__aterm *t, double num,
				     void *ctx),
			   void *ctx);

/* The rows of the item table that pass @p w: a bitset of nwords words
 * (rows nrows and beyond are 0) and its population count. */
typedef struct knytt__wbits {
	uint64_t *rows; /* NULL = no attribute filter */
	size_t nwords;
	size_t count;
} knytt__wbits;

/* Evaluates @p w over rows [0, nrows) of @p ax into *out (caller frees
 * out->rows).  Returns 0 or KNYTT_ENOMEM. */
int knytt__where_eval(const knytt_where *w, const knytt__attrx *ax,
		      size_t nrows, knytt__wbits *out);

/* Whether row @p r passes (rows outside the bitset do not). */
static inline int knytt__wbits_has(const knytt__wbits *b, size_t r)
{
	return r / 64 < b->nwords && (b->rows[r / 64] >> (r % 64) & 1);
}

#endif
