/*
 * blend.c -- the rank blend of a personal and a popular list (blend.h).
 *
 * Lists are short (twice the answer), so the merge is a sort of at most
 * na + nb entries; an id found in both lists is found by a sorted copy
 * of b, not by a quadratic search.
 */
#include "blend.h"

#include <stdlib.h>

typedef struct bent {
	uint64_t id;
	double s, sb;  /* total, and b's part */
	size_t ra;     /* rank in a, SIZE_MAX when absent */
} bent;

static int cmp_bent(const void *x, const void *y)
{
	const bent *p = x, *q = y;
	if (p->s != q->s)
		return p->s > q->s ? -1 : 1;
	if (p->ra != q->ra)
		return p->ra < q->ra ? -1 : 1;
	return (p->id > q->id) - (p->id < q->id);
}

typedef struct bidx {
	uint64_t id;
	size_t rank;
} bidx;

static int cmp_bidx(const void *x, const void *y)
{
	const bidx *p = x, *q = y;
	return (p->id > q->id) - (p->id < q->id);
}

size_t knytt__blend_fuse(const uint64_t *a, size_t na, const uint64_t *b,
			 size_t nb, double w, size_t cap, uint64_t *out,
			 double *score, unsigned char *from_b)
{
	bent *t = malloc((na + nb + 1) * sizeof *t);
	bidx *sb = malloc((nb + 1) * sizeof *sb);
	unsigned char *used = calloc(nb + 1, 1);
	size_t n = 0;
	if (!t || !sb || !used)
		goto out;
	for (size_t j = 0; j < nb; j++)
		sb[j] = (bidx){b[j], j};
	qsort(sb, nb, sizeof *sb, cmp_bidx);
	for (size_t i = 0; i < na; i++) {
		double s = (1.0 - w) / (KNYTT__BLEND_C + (double)i), pb = 0;
		bidx key = {a[i], 0};
		bidx *hit = nb ? bsearch(&key, sb, nb, sizeof *sb, cmp_bidx)
			       : NULL;
		if (hit) {
			pb = w / (KNYTT__BLEND_C + (double)hit->rank);
			used[hit->rank] = 1;
		}
		t[n++] = (bent){a[i], s + pb, pb, i};
	}
	for (size_t j = 0; j < nb; j++) {
		if (used[j])
			continue;
		double pb = w / (KNYTT__BLEND_C + (double)j);
		t[n++] = (bent){b[j], pb, pb, SIZE_MAX};
	}
	qsort(t, n, sizeof *t, cmp_bent);
	if (n > cap)
		n = cap;
	for (size_t i = 0; i < n; i++) {
		out[i] = t[i].id;
		if (score)
			score[i] = t[i].s;
		if (from_b)
			from_b[i] = t[i].sb > t[i].s - t[i].sb;
	}
out:
	free(t);
	free(sb);
	free(used);
	return n;
}
