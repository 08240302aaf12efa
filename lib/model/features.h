/*
 * features.h -- hashed text/category/price features of the two-tower
 * item tower.  Not API.
 */
#ifndef KNYTT_MODEL_FEATURES_H
#define KNYTT_MODEL_FEATURES_H

#include "../internal.h"

/* Most features kept per item or query; longer texts are truncated. */
#define KNYTT__TT_MAXFEAT 256

/* Seeded 64-bit hash of @p n bytes (FNV-1a over the bytes, started from
 * the seed, then a murmur3 fmix64 finaliser for avalanche). */
uint64_t knytt__hash64(const void *data, size_t n, uint64_t seed);

/* Feature buckets of an item: sorted, distinct, each < nbuckets.
 * Returns how many were written (<= cap). */
size_t knytt__tt_item_features(const knytt_twotower_item *it, uint64_t seed,
			       uint32_t nbuckets, uint32_t *out, size_t cap);

/* Feature buckets of free text (unigrams and bigrams), the same buckets
 * the title and description of an item produce for that text. */
size_t knytt__tt_text_features(const char *text, uint64_t seed,
			       uint32_t nbuckets, uint32_t *out, size_t cap);

#endif
