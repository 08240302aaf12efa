/*
 * toplist.c -- the items with the most trending weight (one list per
 * half-life) and the most interactions, kept in order as events arrive,
 * so trending and the cold-start fallback of recommend read the first
 * few entries instead of scoring all 100k items (~1.3 ms per call on the
 * benchmark shop).
 *
 * Why a list stays right without being recomputed: every trending
 * counter decays at the same rate, so two items keep their order while
 * neither gets an event.  The order at any time is that of the key
 *     log2(trend) + trend_ts / half-life,
 * which changes only when the item's counter does (trend_now is
 * 2^(key - now / half-life)).  Popularity is a count.  Both only grow
 * with events, so an item outside a list can only enter it through an
 * event of its own, which is when the list is updated.  A list holds the
 * TOPN best; while it holds fewer, it holds every item with a positive
 * score.  Deleted items are skipped by the queries (they stay listed).
 * Rebuilt by sorting at open and when popularity is re-read (sync).
 * Written under the engine's write lock, read under the read lock.
 */
#include "engine_int.h"

#include <math.h>
#include <stdlib.h>

static double key_of(const eitem *it, int l)
{
	if (l == NTREND)
		return it->pop > 0 ? it->pop : -INFINITY;
	double t = it->trend[l];
	return t > 0 ? log2(t) + (double)it->trend_ts /
					 (1000.0 * knytt__trend_half_life[l])
		     : -INFINITY;
}

typedef struct keyrow {
	double key;
	uint32_t row;
} keyrow;

static int cmp_key_desc(const void *a, const void *b)
{
	const keyrow *x = a, *y = b;
	if (x->key != y->key)
		return x->key > y->key ? -1 : 1;
	return x->row < y->row ? -1 : x->row > y->row;
}

void knytt__top_build(knytt_engine *e, int only)
{
	e->top_ok = 0;
	keyrow *kr = malloc((e->nitems ? e->nitems : 1) * sizeof *kr);
	for (int l = 0; l <= NTREND; l++) {
		if (only >= 0 && l != only)
			continue;
		toplist *t = &e->top[l];
		if (!t->key) {
			t->key = malloc(TOPN * sizeof *t->key);
			t->row = malloc(TOPN * sizeof *t->row);
		}
		for (size_t r = 0; r < e->nitems; r++)
			e->items[r].intop &= (uint8_t) ~(1u << l);
		t->n = 0;
		if (!kr || !t->key || !t->row)
			continue;
		size_t n = 0;
		for (size_t r = 0; r < e->nitems; r++) {
			double k = key_of(&e->items[r], l);
			if (k > -INFINITY)
				kr[n++] = (keyrow){ k, (uint32_t)r };
		}
		qsort(kr, n, sizeof *kr, cmp_key_desc);
		t->n = n < TOPN ? n : TOPN;
		for (size_t i = 0; i < t->n; i++) {
			t->key[i] = kr[i].key;
			t->row[i] = kr[i].row;
			e->items[kr[i].row].intop |= (uint8_t)(1u << l);
		}
	}
	int ok = kr != NULL;
	for (int l = 0; l <= NTREND; l++)
		ok &= e->top[l].key && e->top[l].row;
	e->top_ok = ok;
	free(kr);
}

void knytt__top_bump(knytt_engine *e, uint32_t row)
{
	if (!e->top_ok)
		return;
	eitem *it = &e->items[row];
	for (int l = 0; l <= NTREND; l++) {
		toplist *t = &e->top[l];
		double k = key_of(it, l);
		uint8_t bit = (uint8_t)(1u << l);
		size_t pos = t->n;
		if (it->intop & bit)
			for (pos = 0; pos < t->n && t->row[pos] != row; pos++)
				;
		if (pos == t->n) { /* not listed yet */
			it->intop &= (uint8_t)~bit;
			if (!(k > -INFINITY) ||
			    (t->n == TOPN && !(k > t->key[TOPN - 1])))
				continue;
			if (t->n == TOPN) /* the last one leaves */
				e->items[t->row[--t->n]].intop &=
					(uint8_t)~bit;
			pos = t->n++;
			it->intop |= bit;
		}
		/* keys only grow: the entry moves toward the front (the
		 * second loop only keeps the order should one ever shrink) */
		while (pos > 0 && t->key[pos - 1] < k) {
			t->key[pos] = t->key[pos - 1];
			t->row[pos] = t->row[pos - 1];
			pos--;
		}
		while (pos + 1 < t->n && t->key[pos + 1] > k) {
			t->key[pos] = t->key[pos + 1];
			t->row[pos] = t->row[pos + 1];
			pos++;
		}
		t->key[pos] = k;
		t->row[pos] = row;
	}
}

void knytt__top_free(knytt_engine *e)
{
	for (int l = 0; l <= NTREND; l++) {
		free(e->top[l].key);
		free(e->top[l].row);
	}
}
