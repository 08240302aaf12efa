/*
 * features.c -- the tokenizer and feature hashing of the two-tower item
 * tower.
 *
 * Text is split into tokens on every byte that is neither an ASCII letter
 * or digit nor >= 0x80; ASCII letters are lower-cased and bytes >= 0x80
 * (UTF-8 sequences, or Latin-1 letters in older data) are kept as they
 * are, so "Amélie" is one token and "Children's" is "children" + "s".
 * Each token is hashed once; a bigram's hash combines its two tokens'
 * hashes, so no token text is ever copied.
 *
 * Namespaces keep the feature kinds apart in the shared table: title and
 * description words share the "word" space on purpose (a query word then
 * lands on the same row whichever field the item had it in), category
 * path prefixes and price buckets have their own.  Category path words
 * also go into the word space, so a query "running shoes" reaches items
 * filed under "shoes/running".
 */
#include "features.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { NS_WORD = 1, NS_BIGRAM = 2, NS_CAT = 3, NS_PRICE = 4 };

static uint64_t fmix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return k;
}

uint64_t knytt__hash64(const void *data, size_t n, uint64_t seed)
{
	const unsigned char *p = data;
	uint64_t h = 0xcbf29ce484222325ULL ^ fmix64(seed + 0x9e3779b97f4a7c15ULL);
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ULL;
	}
	return fmix64(h ^ n);
}

/* The bucket of a feature with hash @p h in namespace @p ns. */
static uint32_t bucket(uint64_t h, int ns, uint32_t nb)
{
	uint64_t x = fmix64(h ^ ((uint64_t)ns * 0x9e3779b97f4a7c15ULL));
	/* multiply-shift maps 32 random bits onto [0, nb) without the bias
	 * of a modulo by a non-power of two */
	return (uint32_t)(((x >> 32) * (uint64_t)nb) >> 32);
}

typedef struct fbuf {
	uint32_t *out;
	size_t n, cap;
	uint32_t nb;
} fbuf;

static void push(fbuf *f, uint64_t h, int ns)
{
	if (f->n < f->cap)
		f->out[f->n++] = bucket(h, ns, f->nb);
}

static int is_word(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
	       (c >= 'A' && c <= 'Z') || c >= 0x80;
}

/* Hash of the token starting at s[i], ending before the first non-word
 * byte or at @p end; *len receives its length in bytes. */
static uint64_t token_hash(const char *s, size_t end, uint64_t seed,
			   size_t *len)
{
	unsigned char buf[64];
	size_t n = 0, i = 0;
	uint64_t h = 0;
	int chained = 0;
	while (i < end && is_word((unsigned char)s[i])) {
		unsigned char c = (unsigned char)s[i++];
		if (c >= 'A' && c <= 'Z')
			c = (unsigned char)(c - 'A' + 'a');
		buf[n++] = c;
		if (n == sizeof buf) { /* very long token: chain the chunks */
			h = knytt__hash64(buf, n, seed ^ h);
			chained = 1;
			n = 0;
		}
	}
	*len = i;
	if (n > 0 || !chained)
		h = knytt__hash64(buf, n, seed ^ h);
	return h;
}

/* Unigrams (and bigrams if @p bigrams) of s[0..len). */
static void text_feats(fbuf *f, const char *s, size_t len, uint64_t seed,
		       int bigrams)
{
	uint64_t prev = 0;
	int have_prev = 0;
	size_t i = 0;
	while (i < len) {
		if (!is_word((unsigned char)s[i])) {
			i++;
			continue;
		}
		size_t tl;
		uint64_t h = token_hash(s + i, len - i, seed, &tl);
		i += tl;
		push(f, h, NS_WORD);
		if (bigrams && have_prev)
			push(f, prev * 0x100000001b3ULL ^ fmix64(h), NS_BIGRAM);
		prev = h;
		have_prev = 1;
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

static size_t finish(fbuf *f)
{
	if (f->n == 0)
		return 0;
	qsort(f->out, f->n, sizeof *f->out, cmp_u32);
	size_t k = 1;
	for (size_t i = 1; i < f->n; i++)
		if (f->out[i] != f->out[k - 1])
			f->out[k++] = f->out[i];
	return k;
}

/* Every prefix of each '|'-separated path: segments split on '/' or '>',
 * trimmed and lower-cased, so "Shoes > Running" and "shoes/running" are
 * the same category. */
static void cat_feats(fbuf *f, const char *c, uint64_t seed)
{
	size_t i = 0, n = strlen(c);
	while (i < n) {
		size_t e = i;
		while (e < n && c[e] != '|')
			e++;
		text_feats(f, c + i, e - i, seed, 0);
		uint64_t h = seed;
		size_t s = i;
		while (s < e) {
			size_t t = s;
			while (t < e && c[t] != '/' && c[t] != '>')
				t++;
			size_t a = s, b = t;
			while (a < b && (c[a] == ' ' || c[a] == '\t'))
				a++;
			while (b > a && (c[b - 1] == ' ' || c[b - 1] == '\t'))
				b--;
			if (b > a) {
				unsigned char seg[128];
				size_t m = b - a < sizeof seg ? b - a : sizeof seg;
				for (size_t k = 0; k < m; k++) {
					unsigned char ch = (unsigned char)c[a + k];
					seg[k] = ch >= 'A' && ch <= 'Z'
							 ? (unsigned char)(ch + 32)
							 : ch;
				}
				h = knytt__hash64(seg, m, h);
				push(f, h, NS_CAT);
			}
			s = t + 1;
		}
		i = e + 1;
	}
}

size_t knytt__tt_text_features(const char *text, uint64_t seed,
			       uint32_t nbuckets, uint32_t *out, size_t cap)
{
	fbuf f = { out, 0, cap, nbuckets };
	if (text)
		text_feats(&f, text, strlen(text), seed, 1);
	return finish(&f);
}

size_t knytt__tt_item_features(const knytt_twotower_item *it, uint64_t seed,
			       uint32_t nbuckets, uint32_t *out, size_t cap)
{
	fbuf f = { out, 0, cap, nbuckets };
	if (it->title)
		text_feats(&f, it->title, strlen(it->title), seed, 1);
	if (it->category)
		cat_feats(&f, it->category, seed);
	/* Half-octave price buckets: 1 -> 2, 10 -> 6, 100 -> 13 ... */
	if (isfinite(it->price) && it->price >= 0) {
		double b = floor(2.0 * log2(1.0 + it->price));
		unsigned char pb = (unsigned char)(b > 127 ? 127 : b);
		push(&f, knytt__hash64(&pb, 1, seed), NS_PRICE);
	}
	/* description last: when the cap truncates, it loses words first */
	if (it->description)
		text_feats(&f, it->description, strlen(it->description), seed,
			   1);
	return finish(&f);
}
