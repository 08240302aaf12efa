/*
 * eval.c -- ranking metrics for any model, through a scoring callback.
 *
 * Two protocols:
 *  - leave-one-out with fixed sampled negatives, as the NCF files define
 *    it (He et al., WWW 2017, section 4.1): the held-out item is ranked
 *    against its 99 negatives;
 *  - full ranking: the held-out items are ranked against every item the
 *    user has not interacted with in training.
 * Ties count against the model: a competitor scoring equal to a relevant
 * item ranks above it, so a constant model scores worst, not best (a
 * "random tie-break" would hand a constant scorer HR@10 ~ 0.1 on NCF).
 */
#include "model.h"

#include "../vec/topk.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct knytt_loo {
	size_t n, nneg;
	uint32_t *users; /* n */
	uint32_t *items; /* n */
	uint32_t *negs;  /* n * nneg */
};

void knytt_loo_close(knytt_loo *t)
{
	if (!t)
		return;
	free(t->users);
	free(t->items);
	free(t->negs);
	free(t);
}

static knytt_loo *loo_alloc(size_t n, size_t nneg)
{
	knytt_loo *t = calloc(1, sizeof *t);
	if (!t)
		return NULL;
	t->n = n;
	t->nneg = nneg;
	t->users = malloc((n ? n : 1) * sizeof *t->users);
	t->items = malloc((n ? n : 1) * sizeof *t->items);
	t->negs = malloc((n * nneg > 0 ? n * nneg : 1) * sizeof *t->negs);
	if (!t->users || !t->items || !t->negs) {
		knytt_loo_close(t);
		return NULL;
	}
	return t;
}

int knytt_loo_create(size_t n, const uint32_t *users, const uint32_t *items,
		     size_t nneg, const uint32_t *negs, knytt_loo **out)
{
	if (!out || !users || !items || (nneg && !negs))
		return knytt__err(KNYTT_EINVAL, "arrays and out must not be NULL");
	if (n == 0)
		return knytt__err(KNYTT_EINVAL, "a test set needs a test case");
	if (nneg > SIZE_MAX / sizeof(uint32_t) / n)
		return knytt__err(KNYTT_EINVAL, "%zu x %zu negatives overflow",
				  n, nneg);
	knytt_loo *t = loo_alloc(n, nneg);
	if (!t)
		return knytt__err(KNYTT_ENOMEM, "no memory for %zu test cases",
				  n);
	memcpy(t->users, users, n * sizeof *users);
	memcpy(t->items, items, n * sizeof *items);
	if (nneg)
		memcpy(t->negs, negs, n * nneg * sizeof *negs);
	*out = t;
	return KNYTT_OK;
}

size_t knytt_loo_count(const knytt_loo *t)
{
	return t ? t->n : 0;
}

size_t knytt_loo_negatives(const knytt_loo *t)
{
	return t ? t->nneg : 0;
}

int knytt_loo_case(const knytt_loo *t, size_t j, uint32_t *user,
		   uint32_t *item, uint32_t *negs)
{
	if (!t)
		return knytt__err(KNYTT_EINVAL, "test set must not be NULL");
	if (j >= t->n)
		return knytt__err(KNYTT_EINVAL,
				  "test case %zu out of range (%zu cases)", j,
				  t->n);
	if (user)
		*user = t->users[j];
	if (item)
		*item = t->items[j];
	if (negs && t->nneg)
		memcpy(negs, t->negs + j * t->nneg, t->nneg * sizeof *negs);
	return KNYTT_OK;
}

/* ---- NCF files ---- */

/* Reads a whole text file into a NUL-terminated buffer. */
static int slurp(const char *path, char **out)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return knytt__err_errno(KNYTT_EIO, errno, "cannot open %s", path);
	size_t cap = 1 << 16, len = 0;
	char *b = malloc(cap);
	for (;;) {
		if (!b) {
			fclose(f);
			return knytt__err(KNYTT_ENOMEM, "no memory to read %s",
					  path);
		}
		len += fread(b + len, 1, cap - len - 1, f);
		if (len < cap - 1)
			break;
		cap *= 2;
		char *nb = realloc(b, cap);
		if (!nb)
			free(b);
		b = nb;
	}
	int err = ferror(f);
	fclose(f);
	if (err) {
		free(b);
		return knytt__err(KNYTT_EIO, "cannot read %s", path);
	}
	b[len] = '\0';
	*out = b;
	return KNYTT_OK;
}

/* Parses an unsigned decimal id at *p; advances; -1 if none or too big. */
static int64_t parse_id(const char **p)
{
	const char *s = *p;
	if (*s < '0' || *s > '9')
		return -1;
	uint64_t v = 0;
	while (*s >= '0' && *s <= '9') {
		v = v * 10 + (uint64_t)(*s - '0');
		if (v >= UINT32_MAX)
			return -1;
		s++;
	}
	*p = s;
	return (int64_t)v;
}

/* Lines of b, not counting an empty last one. */
static size_t count_lines(const char *b)
{
	size_t n = 0;
	for (const char *s = b; *s;) {
		const char *e = strchr(s, '\n');
		n++;
		if (!e)
			break;
		s = e + 1;
	}
	return n;
}

int knytt_loo_load_ncf(const char *test_rating, const char *test_negative,
		       knytt_loo **out)
{
	if (!test_rating || !test_negative || !out)
		return knytt__err(KNYTT_EINVAL, "paths and out must not be NULL");
	char *rb = NULL, *nb = NULL;
	knytt_loo *t = NULL;
	int rc = slurp(test_rating, &rb);
	if (rc)
		return rc;
	rc = slurp(test_negative, &nb);
	if (rc) {
		free(rb);
		return rc;
	}
	size_t n = count_lines(rb);
	if (n == 0 || count_lines(nb) != n) {
		rc = knytt__err(KNYTT_ECORRUPT,
				"%s has %zu lines, %s has %zu: they must "
				"match and not be empty",
				test_rating, n, test_negative,
				count_lines(nb));
		goto out;
	}
	/* Negatives per line: count the fields of the first line. */
	size_t nneg = 0;
	for (const char *s = nb; *s && *s != '\n'; s++)
		if (*s == '\t')
			nneg++;
	t = loo_alloc(n, nneg);
	if (!t) {
		rc = knytt__err(KNYTT_ENOMEM, "no memory for %zu test cases", n);
		goto out;
	}
	const char *r = rb, *q = nb;
	for (size_t j = 0; j < n; j++) {
		int64_t u = parse_id(&r);
		if (u < 0 || *r != '\t') {
			rc = knytt__err(KNYTT_ECORRUPT,
					"%s line %zu: expected user<TAB>item",
					test_rating, j + 1);
			goto out;
		}
		r++;
		int64_t it = parse_id(&r);
		if (it < 0 || (*r != '\t' && *r != '\n' && *r != '\r' &&
			       *r != '\0')) {
			rc = knytt__err(KNYTT_ECORRUPT,
					"%s line %zu: bad item field",
					test_rating, j + 1);
			goto out;
		}
		r = strchr(r, '\n');
		r = r ? r + 1 : "";
		t->users[j] = (uint32_t)u;
		t->items[j] = (uint32_t)it;

		int64_t qu = -1, qi = -1;
		if (*q == '(') {
			q++;
			qu = parse_id(&q);
			if (qu >= 0 && *q == ',') {
				q++;
				qi = parse_id(&q);
			}
		}
		if (qu < 0 || qi < 0 || *q != ')') {
			rc = knytt__err(KNYTT_ECORRUPT,
					"%s line %zu: expected (user,item)",
					test_negative, j + 1);
			goto out;
		}
		q++;
		if (qu != u || qi != it) {
			rc = knytt__err(KNYTT_ECORRUPT,
					"%s line %zu: (%lld,%lld) but %s line "
					"%zu has user %lld item %lld",
					test_negative, j + 1, (long long)qu,
					(long long)qi, test_rating, j + 1,
					(long long)u, (long long)it);
			goto out;
		}
		for (size_t k = 0; k < nneg; k++) {
			int64_t v = -1;
			if (*q == '\t') {
				q++;
				v = parse_id(&q);
			}
			if (v < 0) {
				rc = knytt__err(KNYTT_ECORRUPT,
						"%s line %zu: negative %zu "
						"missing or malformed (%zu "
						"expected)",
						test_negative, j + 1, k + 1,
						nneg);
				goto out;
			}
			t->negs[j * nneg + k] = (uint32_t)v;
		}
		while (*q == '\t' || *q == '\r' || *q == ' ')
			q++;
		if (*q != '\n' && *q != '\0') {
			rc = knytt__err(KNYTT_ECORRUPT,
					"%s line %zu: more than %zu negatives",
					test_negative, j + 1, nneg);
			goto out;
		}
		if (*q)
			q++;
	}
	*out = t;
	t = NULL;
	rc = KNYTT_OK;
out:
	knytt_loo_close(t);
	free(rb);
	free(nb);
	return rc;
}

/* ---- shared helpers ---- */

typedef struct cover {
	uint64_t *bits;
	size_t nbits;
} cover;

static int cover_init(cover *c, size_t nbits)
{
	c->nbits = nbits;
	c->bits = calloc((nbits + 63) / 64 + 1, sizeof *c->bits);
	return c->bits ? 0 : -1;
}

static void cover_set(cover *c, uint64_t i)
{
	if (i < c->nbits)
		c->bits[i / 64] |= 1ull << (i % 64);
}

static size_t cover_count(const cover *c)
{
	size_t n = 0;
	for (size_t j = 0; j < (c->nbits + 63) / 64; j++)
		n += (size_t)__builtin_popcountll(c->bits[j]);
	return n;
}

static float clean(float s)
{
	return isnan(s) ? -INFINITY : s;
}

/* ---- leave-one-out ---- */

int knytt_eval_loo(const knytt_loo *t, unsigned k, knytt_score_fn fn,
		   void *ctx, float *scores, knytt_metrics *out)
{
	if (!t || !fn || !out)
		return knytt__err(KNYTT_EINVAL,
				  "test set, fn and out must not be NULL");
	if (k == 0)
		return knytt__err(KNYTT_EINVAL, "k must be at least 1");
	size_t m = 1 + t->nneg;
	uint32_t *items = malloc(m * sizeof *items);
	float *s = malloc(m * sizeof *s);
	knytt__pair *heap = malloc((size_t)k * sizeof *heap);
	uint32_t maxid = 0;
	for (size_t j = 0; j < t->n; j++) {
		if (t->items[j] > maxid)
			maxid = t->items[j];
		for (size_t q = 0; q < t->nneg; q++)
			if (t->negs[j * t->nneg + q] > maxid)
				maxid = t->negs[j * t->nneg + q];
	}
	cover cov = {0}, cand = {0};
	int rc = KNYTT_OK;
	if (!items || !s || !heap || cover_init(&cov, (size_t)maxid + 1) ||
	    cover_init(&cand, (size_t)maxid + 1)) {
		rc = knytt__err(KNYTT_ENOMEM, "no memory to evaluate");
		goto out;
	}
	double hr = 0, ndcg = 0, map = 0;
	for (size_t j = 0; j < t->n; j++) {
		uint32_t pos = t->items[j];
		items[0] = pos;
		memcpy(items + 1, t->negs + j * t->nneg,
		       t->nneg * sizeof *items);
		rc = fn(ctx, t->users[j], items, m, s);
		if (rc) {
			if (rc > 0)
				rc = KNYTT_EINVAL;
			knytt__err_keep(rc);
			goto out;
		}
		if (scores)
			memcpy(scores + j * m, s, m * sizeof *s);
		float sp = clean(s[0]);
		size_t rank = 0;
		knytt__topk top = {heap, 0, k};
		knytt__topk_push(&top, -sp, pos);
		cover_set(&cand, pos);
		for (size_t q = 1; q < m; q++) {
			if (items[q] == pos)
				continue; /* NCF collapses this duplicate */
			float sq = clean(s[q]);
			if (sq >= sp)
				rank++;
			knytt__topk_push(&top, -sq, items[q]);
			cover_set(&cand, items[q]);
		}
		for (size_t q = 0; q < top.n; q++)
			cover_set(&cov, top.h[q].id);
		if (rank < k) {
			hr += 1;
			ndcg += 1.0 / log2((double)rank + 2);
			map += 1.0 / ((double)rank + 1);
		}
	}
	size_t nc = cover_count(&cand);
	out->users = t->n;
	out->hr = hr / (double)t->n;
	out->ndcg = ndcg / (double)t->n;
	out->recall = out->hr;
	out->precision = out->hr / k;
	out->map = map / (double)t->n;
	out->coverage = nc ? (double)cover_count(&cov) / (double)nc : 0;
out:
	free(items);
	free(s);
	free(heap);
	free(cov.bits);
	free(cand.bits);
	return rc;
}

/* ---- full ranking ---- */

int knytt_eval_full(const knytt_matrix *train, const knytt_matrix *test,
		    unsigned k, knytt_score_fn fn, void *ctx,
		    knytt_metrics *out)
{
	if (!train || !test || !fn || !out)
		return knytt__err(KNYTT_EINVAL,
				  "matrices, fn and out must not be NULL");
	if (!train->built || !test->built)
		return knytt__err(KNYTT_EINVAL, "matrices must be built");
	if (train->nitems != test->nitems)
		return knytt__err(KNYTT_EINVAL,
				  "train has %u items, test %u: they must "
				  "match",
				  train->nitems, test->nitems);
	if (k == 0)
		return knytt__err(KNYTT_EINVAL, "k must be at least 1");
	size_t ni = train->nitems;
	float *s = malloc((ni ? ni : 1) * sizeof *s);
	unsigned char *mark = calloc(ni ? ni : 1, 1); /* 1 train, 2 test */
	float *rs = NULL;
	size_t *ranks = NULL, cap = 0;
	knytt__pair *heap = malloc((size_t)k * sizeof *heap);
	cover cov = {0};
	int rc = KNYTT_OK;
	if (!s || !mark || !heap || cover_init(&cov, ni)) {
		rc = knytt__err(KNYTT_ENOMEM, "no memory to evaluate");
		goto out;
	}
	double hr = 0, ndcg = 0, rec = 0, prec = 0, map = 0;
	size_t nusers = 0;
	for (uint32_t u = 0; u < test->nusers; u++) {
		size_t a = test->rowptr[u], nt = test->rowptr[u + 1] - a;
		if (nt == 0)
			continue;
		if (nt > cap) {
			free(rs);
			free(ranks);
			cap = nt * 2;
			rs = malloc(cap * sizeof *rs);
			ranks = malloc(cap * sizeof *ranks);
			if (!rs || !ranks) {
				rc = knytt__err(KNYTT_ENOMEM,
						"no memory to evaluate");
				goto out;
			}
		}
		rc = fn(ctx, u, NULL, ni, s);
		if (rc) {
			if (rc > 0)
				rc = KNYTT_EINVAL;
			knytt__err_keep(rc);
			goto out;
		}
		size_t ta = 0, tb = 0;
		if (u < train->nusers) {
			ta = train->rowptr[u];
			tb = train->rowptr[u + 1];
		}
		for (size_t q = ta; q < tb; q++)
			mark[train->items[q]] = 1;
		for (size_t q = 0; q < nt; q++) {
			uint32_t it = test->items[a + q];
			mark[it] = 2;
			rs[q] = clean(s[it]);
			ranks[q] = 0;
		}
		knytt__topk top = {heap, 0, k};
		for (size_t i = 0; i < ni; i++) {
			if (mark[i] == 1)
				continue;
			float si = clean(s[i]);
			knytt__topk_push(&top, -si, i);
			if (mark[i] == 2)
				continue;
			for (size_t q = 0; q < nt; q++)
				if (si >= rs[q])
					ranks[q]++;
		}
		/* Relevant items among themselves: by score, then id. */
		for (size_t q = 0; q < nt; q++)
			for (size_t r = 0; r < nt; r++)
				if (r != q &&
				    (rs[r] > rs[q] ||
				     (rs[r] == rs[q] &&
				      test->items[a + r] < test->items[a + q])))
					ranks[q]++;
		for (size_t q = 0; q < top.n; q++)
			cover_set(&cov, top.h[q].id);
		for (size_t q = ta; q < tb; q++)
			mark[train->items[q]] = 0;
		for (size_t q = 0; q < nt; q++)
			mark[test->items[a + q]] = 0;

		/* Metrics of this user. */
		size_t hits = 0;
		double dcg = 0, idcg = 0, ap = 0;
		for (size_t q = 0; q < nt && q < k; q++)
			idcg += 1.0 / log2((double)q + 2);
		for (size_t q = 0; q < nt; q++)
			if (ranks[q] < k) {
				hits++;
				dcg += 1.0 / log2((double)ranks[q] + 2);
				/* hits ranked at or above this one */
				size_t above = 0;
				for (size_t r = 0; r < nt; r++)
					if (ranks[r] <= ranks[q])
						above++;
				ap += (double)above / ((double)ranks[q] + 1);
			}
		nusers++;
		hr += hits > 0;
		ndcg += dcg / idcg;
		rec += (double)hits / (double)nt;
		prec += (double)hits / k;
		map += ap / (double)(nt < k ? nt : k);
	}
	if (nusers == 0) {
		rc = knytt__err(KNYTT_EINVAL, "test matrix has no entries");
		goto out;
	}
	out->users = nusers;
	out->hr = hr / (double)nusers;
	out->ndcg = ndcg / (double)nusers;
	out->recall = rec / (double)nusers;
	out->precision = prec / (double)nusers;
	out->map = map / (double)nusers;
	out->coverage = ni ? (double)cover_count(&cov) / (double)ni : 0;
out:
	free(s);
	free(mark);
	free(rs);
	free(ranks);
	free(heap);
	free(cov.bits);
	return rc;
}
