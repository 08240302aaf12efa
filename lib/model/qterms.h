/*
 * qterms.h -- what query words mean, learned from what shoppers did
 * after searching them (qterms.c).  Not API.
 *
 * Each word of the search log gets a vector in the item space the engine
 * already serves (ALS / LightGCN item factors, or two-tower item
 * embeddings): the shrunken mean of the unit vectors of the items
 * clicked, put in the cart or bought after searches holding it, weighted
 * by the events' confidences.  A query's vector is the sum of its known
 * words' vectors, so "sneakers" points where the running shoes shoppers
 * chose after searching it live, whether or not a title says so.
 */
#ifndef KNYTT_MODEL_QTERMS_H
#define KNYTT_MODEL_QTERMS_H

#include "../internal.h"

typedef struct knytt__qterms {
	uint32_t dim;
	uint32_t n;     /* words */
	uint64_t *hash; /* n word hashes, ascending (binary search) */
	float *vec;     /* n x dim: the word's vector, row by row */
} knytt__qterms;

/* One query -> item pair: the query's text (index into the caller's
 * texts), the item's row in the caller's vectors and the pair's weight
 * (> 0: the confidence of the events behind it). */
typedef struct knytt__qpair {
	uint32_t text;
	uint32_t item;
	float w;
} knytt__qpair;

/* Up to @p cap distinct word hashes of @p text (words as keyword search
 * splits them: runs of ASCII letters and digits and non-ASCII bytes,
 * ASCII folded to lower case, a plural "s" dropped).  Returns the count. */
size_t knytt__qterms_words(const char *text, uint64_t *out, size_t cap);

/* Learns the word vectors from @p n pairs over @p texts and the item
 * vectors @p vecs (nvec x dim, any norms).  KNYTT_OK with *out (free
 * with knytt__qterms_free), KNYTT_EINVAL (no word in any paired query)
 * or KNYTT_ENOMEM. */
int knytt__qterms_train(const char *const *texts, size_t ntexts,
			const knytt__qpair *p, size_t n, const float *vecs,
			uint32_t nvec, uint32_t dim, knytt__qterms **out);

/* The query vector of @p text into @p q (dim floats, unit length):
 * returns the number of its words the model knows; 0 leaves q zero. */
int knytt__qterms_embed(const knytt__qterms *m, const char *text, float *q);

/* Serialised form (little-endian, within the engine-model blob):
 *   "KQTERMS1" | u32 dim | u32 n | n x u64 hash | n x dim f32 */
size_t knytt__qterms_size(const knytt__qterms *m);
void knytt__qterms_write(const knytt__qterms *m, unsigned char *out);
/* KNYTT_OK or KNYTT_ECORRUPT (a message naming what is wrong). */
int knytt__qterms_read(const unsigned char *b, size_t size, uint32_t dim,
		       knytt__qterms **out);
void knytt__qterms_free(knytt__qterms *m);

#endif
