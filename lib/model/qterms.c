/*
 * qterms.c -- query word vectors learned from the search log (see
 * qterms.h for the model).
 *
 * Why a mean of item vectors and not a trained text tower: a word's
 * vector that maximises the summed inner product with its clicked items
 * under a norm bound is exactly their (weighted) mean direction, and the
 * mean needs one pass, no learning rate and no epochs, so it trains in
 * milliseconds inside every engine training.  The co-interaction
 * structure comes with the item space: items bought together have
 * nearby factors, so a word learned from a few popular running shoes
 * also finds the running shoes nobody clicked after that word yet.
 *
 * Shrinkage: a word's sum is divided by its weight plus LAMBDA mean
 * pair weights (a ridge prior at zero), so a word seen once after one
 * click counts for a quarter of one seen often.  A word followed by
 * clicks everywhere ("cheap", "the") averages many directions and its
 * vector comes out short on its own: no stop-word list is needed.
 */
#include "qterms.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LAMBDA 3.0 /* prior weight, in mean pair weights */
#define MAXW 32    /* words read per query */

static uint64_t word_hash(const unsigned char *w, size_t n)
{
	/* FNV-1a, 64-bit */
	uint64_t h = 0xcbf29ce484222325ULL;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = w[i];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c | 0x20);
		h = (h ^ c) * 0x100000001b3ULL;
	}
	return h;
}

static int is_word_byte(unsigned char c)
{
	return c >= 0x80 || (c >= '0' && c <= '9') ||
	       ((c | 0x20) >= 'a' && (c | 0x20) <= 'z');
}

size_t knytt__qterms_words(const char *text, uint64_t *out, size_t cap)
{
	const unsigned char *p = (const unsigned char *)(text ? text : "");
	size_t n = 0;
	while (*p && n < cap) {
		while (*p && !is_word_byte(*p))
			p++;
		if (!*p)
			break;
		const unsigned char *w = p;
		while (*p && is_word_byte(*p))
			p++;
		size_t len = (size_t)(p - w);
		/* "sneakers" and "sneaker" are one word; "glass" stays */
		if (len > 3 && (w[len - 1] | 0x20) == 's' &&
		    (w[len - 2] | 0x20) != 's')
			len--;
		uint64_t h = word_hash(w, len);
		size_t i = 0;
		while (i < n && out[i] != h)
			i++;
		if (i == n)
			out[n++] = h;
	}
	return n;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* Adds the pair's unit item vector to each word of its query. */
static int accumulate(const uint64_t *words, size_t nw, const float *u,
		      float w, uint32_t dim, knytt__lmap *map, float **acc,
		      double **wt, size_t *n, size_t *cap, uint64_t **hash)
{
	for (size_t k = 0; k < nw; k++) {
		uint32_t t = knytt__lmap_get(map, words[k]);
		if (t == LMAP_EMPTY) {
			if (*n == *cap) {
				size_t nc = *cap ? *cap * 2 : 256;
				float *a = realloc(*acc, nc * dim * sizeof *a);
				if (a)
					*acc = a;
				double *x = realloc(*wt, nc * sizeof *x);
				if (x)
					*wt = x;
				uint64_t *h = realloc(*hash, nc * sizeof *h);
				if (h)
					*hash = h;
				if (!a || !x || !h)
					return KNYTT_ENOMEM;
				*cap = nc;
			}
			t = (uint32_t)*n;
			if (knytt__lmap_put(map, words[k], t))
				return KNYTT_ENOMEM;
			memset(*acc + (size_t)t * dim, 0, dim * sizeof **acc);
			(*wt)[t] = 0;
			(*hash)[t] = words[k];
			(*n)++;
		}
		float *a = *acc + (size_t)t * dim;
		for (uint32_t d = 0; d < dim; d++)
			a[d] += w * u[d];
		(*wt)[t] += w;
	}
	return KNYTT_OK;
}

/* The model from the accumulated sums: words sorted by hash, each sum
 * divided by its weight plus the prior. */
static int finish(const float *acc, const double *wt, const uint64_t *hash,
		  size_t n, uint32_t dim, double prior, knytt__qterms **out)
{
	knytt__qterms *m = calloc(1, sizeof *m);
	uint64_t *ord = malloc((n ? n : 1) * 2 * sizeof *ord);
	if (m) {
		m->hash = malloc((n ? n : 1) * sizeof *m->hash);
		m->vec = malloc((n ? n : 1) * dim * sizeof *m->vec);
	}
	if (!m || !ord || !m->hash || !m->vec) {
		free(ord);
		knytt__qterms_free(m);
		return knytt__err(KNYTT_ENOMEM, "out of memory (query words)");
	}
	/* (hash, slot) pairs sorted by hash */
	for (size_t i = 0; i < n; i++) {
		ord[2 * i] = hash[i];
		ord[2 * i + 1] = i;
	}
	qsort(ord, n, 2 * sizeof *ord, cmp_u64);
	for (size_t i = 0; i < n; i++) {
		size_t t = (size_t)ord[2 * i + 1];
		m->hash[i] = hash[t];
		float s = (float)(1.0 / (wt[t] + prior));
		for (uint32_t d = 0; d < dim; d++)
			m->vec[i * dim + d] = acc[t * dim + d] * s;
	}
	m->dim = dim;
	m->n = (uint32_t)n;
	free(ord);
	*out = m;
	return KNYTT_OK;
}

int knytt__qterms_train(const char *const *texts, size_t ntexts,
			const knytt__qpair *p, size_t n, const float *vecs,
			uint32_t nvec, uint32_t dim, knytt__qterms **out)
{
	*out = NULL;
	knytt__lmap map;
	memset(&map, 0, sizeof map);
	float *acc = NULL, *u = malloc((dim ? dim : 1) * sizeof *u);
	double *wt = NULL, total = 0;
	uint64_t *hash = NULL, words[MAXW];
	size_t nt = 0, cap = 0, used = 0;
	int rc = u ? KNYTT_OK : KNYTT_ENOMEM;
	for (size_t i = 0; i < n && !rc; i++) {
		if (p[i].text >= ntexts || p[i].item >= nvec || !(p[i].w > 0))
			continue;
		const float *v = vecs + (size_t)p[i].item * dim;
		double nn = 0;
		for (uint32_t d = 0; d < dim; d++)
			nn += (double)v[d] * v[d];
		if (!(nn > 0))
			continue; /* an item the model has no vector for */
		float inv = (float)(1.0 / sqrt(nn));
		for (uint32_t d = 0; d < dim; d++)
			u[d] = v[d] * inv;
		size_t nw = knytt__qterms_words(texts[p[i].text], words, MAXW);
		if (!nw)
			continue;
		rc = accumulate(words, nw, u, p[i].w, dim, &map, &acc, &wt,
				&nt, &cap, &hash);
		total += p[i].w;
		used++;
	}
	if (rc == KNYTT_ENOMEM)
		rc = knytt__err(KNYTT_ENOMEM, "out of memory (query words)");
	else if (!rc && nt == 0)
		rc = knytt__err(KNYTT_EINVAL, "no query with a word was "
					      "followed by an item the model "
					      "has a vector for");
	if (!rc)
		rc = finish(acc, wt, hash, nt, dim, LAMBDA * total / used, out);
	knytt__lmap_free(&map);
	free(acc);
	free(wt);
	free(hash);
	free(u);
	return rc;
}

int knytt__qterms_embed(const knytt__qterms *m, const char *text, float *q)
{
	memset(q, 0, m->dim * sizeof *q);
	uint64_t words[MAXW];
	size_t nw = knytt__qterms_words(text, words, MAXW);
	int known = 0;
	for (size_t k = 0; k < nw; k++) {
		const uint64_t *h = bsearch(&words[k], m->hash, m->n,
					    sizeof *m->hash, cmp_u64);
		if (!h)
			continue;
		const float *v = m->vec + (size_t)(h - m->hash) * m->dim;
		for (uint32_t d = 0; d < m->dim; d++)
			q[d] += v[d];
		known++;
	}
	double nn = 0;
	for (uint32_t d = 0; d < m->dim; d++)
		nn += (double)q[d] * q[d];
	if (!(nn > 0)) {
		memset(q, 0, m->dim * sizeof *q);
		return 0;
	}
	float inv = (float)(1.0 / sqrt(nn));
	for (uint32_t d = 0; d < m->dim; d++)
		q[d] *= inv;
	return known;
}

#define QT_HDR 16

size_t knytt__qterms_size(const knytt__qterms *m)
{
	return QT_HDR + (size_t)m->n * 8 + (size_t)m->n * m->dim * 4;
}

void knytt__qterms_write(const knytt__qterms *m, unsigned char *b)
{
	memcpy(b, "KQTERMS1", 8);
	knytt__put_u32(b + 8, m->dim);
	knytt__put_u32(b + 12, m->n);
	unsigned char *p = b + QT_HDR;
	for (uint32_t i = 0; i < m->n; i++, p += 8)
		knytt__put_u64(p, m->hash[i]);
	for (size_t i = 0; i < (size_t)m->n * m->dim; i++, p += 4) {
		uint32_t x;
		memcpy(&x, &m->vec[i], 4);
		knytt__put_u32(p, x);
	}
}

int knytt__qterms_read(const unsigned char *b, size_t size, uint32_t dim,
		       knytt__qterms **out)
{
	*out = NULL;
	if (size < QT_HDR || memcmp(b, "KQTERMS1", 8) != 0)
		return knytt__err(KNYTT_ECORRUPT,
				  "stored query words: not a query word model");
	uint32_t d = knytt__get_u32(b + 8), n = knytt__get_u32(b + 12);
	if (d != dim)
		return knytt__err(KNYTT_ECORRUPT,
				  "stored query words: dimension %u, the model "
				  "has %u", d, dim);
	if ((uint64_t)QT_HDR + (uint64_t)n * 8 + (uint64_t)n * d * 4 != size)
		return knytt__err(KNYTT_ECORRUPT,
				  "stored query words: sizes do not add up");
	knytt__qterms *m = calloc(1, sizeof *m);
	if (m) {
		m->hash = malloc((n ? n : 1) * sizeof *m->hash);
		size_t nv = (size_t)n * d;
		m->vec = malloc((nv ? nv : 1) * sizeof *m->vec);
	}
	if (!m || !m->hash || !m->vec) {
		knytt__qterms_free(m);
		return knytt__err(KNYTT_ENOMEM, "out of memory (query words)");
	}
	m->dim = d;
	m->n = n;
	const unsigned char *p = b + QT_HDR;
	for (uint32_t i = 0; i < n; i++, p += 8) {
		m->hash[i] = knytt__get_u64(p);
		/* binary search needs them strictly ascending */
		if (i && m->hash[i] <= m->hash[i - 1]) {
			knytt__qterms_free(m);
			return knytt__err(KNYTT_ECORRUPT,
					  "stored query words: not sorted");
		}
	}
	for (size_t i = 0; i < (size_t)n * d; i++, p += 4) {
		uint32_t x = knytt__get_u32(p);
		memcpy(&m->vec[i], &x, 4);
		if (!isfinite(m->vec[i])) {
			knytt__qterms_free(m);
			return knytt__err(KNYTT_ECORRUPT,
					  "stored query words: a value is not "
					  "finite");
		}
	}
	*out = m;
	return KNYTT_OK;
}

void knytt__qterms_free(knytt__qterms *m)
{
	if (!m)
		return;
	free(m->hash);
	free(m->vec);
	free(m);
}
