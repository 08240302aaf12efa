/*
 * adapter_knytt.c -- knytt's HNSW index behind the ann_adapter interface,
 * through the public header only (linked with build/libknytt.a).
 *
 * --variant int8 / int8only select KNYTT_QUANT_INT8 (walk on int8 codes,
 * re-rank with f32) and KNYTT_QUANT_INT8_ONLY; the quantizer's ranges are
 * learned from the whole base (add_batch's first batch is all of it).
 * --variant int8only-exact is a flat index (exact scan) over the same
 * int8 codes and asymmetric distances: the recall the codes allow at
 * all, the ceiling of the int8only walk at any ef.
 * --variant f16 selects KNYTT_QUANT_F16 (vectors stored as IEEE halves).
 *
 * index_bytes = knytt_index_memory(); vector_bytes =
 * knytt_index_vector_memory().
 */
#include "annbench.h"

#include <knytt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static knytt_quant quant = KNYTT_QUANT_NONE;
static knytt_index_kind kind = KNYTT_INDEX_HNSW;

/* The index calls take the dimension (a mismatch is an error, not an
 * overread); the adapter interface does not carry it, so keep it here. */
static uint32_t kn_dim;

static void *kn_build(const ann_data *d, unsigned m, unsigned efc,
		      unsigned nthreads, uint64_t seed, char *err,
		      size_t errlen)
{
	knytt_index *ix = NULL;
	uint64_t *labels = malloc(sizeof *labels * (d->n ? d->n : 1));
	int rc = labels ? knytt_index_create(&ix) : KNYTT_ENOMEM;
	if (rc == 0)
		rc = knytt_index_set_kind(ix, kind);
	if (rc == 0)
		rc = knytt_index_set_m(ix, m);
	if (rc == 0)
		rc = knytt_index_set_ef_construction(ix, efc);
	if (rc == 0)
		rc = knytt_index_set_quant(ix, quant);
	if (rc == 0 && d->ip)
		rc = knytt_index_set_metric(ix, KNYTT_METRIC_IP);
	if (rc == 0 && seed != ANN_SEED_DEFAULT)
		rc = knytt_index_set_seed(ix, seed);
	if (rc == 0)
		rc = knytt_index_open(ix, (uint32_t)d->dim);
	if (rc == 0) {
		for (size_t i = 0; i < d->n; i++)
			labels[i] = i;
		rc = knytt_index_add_batch(ix, d->n, labels, d->base,
					   (uint32_t)d->dim, nthreads);
	}
	free(labels);
	kn_dim = (uint32_t)d->dim;
	if (rc < 0) {
		snprintf(err, errlen, "knytt: %s: %s", knytt_errname(rc),
			 knytt_errmsg());
		knytt_index_close(ix);
		return NULL;
	}
	return ix;
}

static void kn_search(void *index, const float *query, size_t k,
		      unsigned ef, int64_t *out)
{
	uint64_t lab[256];
	if (k > 256)
		k = 256;
	int n = knytt_index_search(index, query, kn_dim, k, ef, lab,
				   NULL);
	for (size_t i = 0; i < k; i++)
		out[i] = n > 0 && i < (size_t)n ? (int64_t)lab[i] : -1;
}

static size_t kn_bytes(void *index)
{
	return knytt_index_memory(index);
}

static size_t kn_vector_bytes(void *index)
{
	return knytt_index_vector_memory(index);
}

static void kn_destroy(void *index)
{
	knytt_index_close(index);
}

static ann_adapter kn_adapter = {
	"knytt",
	"knytt_index_memory()",
	kn_build, kn_search, kn_bytes, kn_vector_bytes, kn_destroy,
};

const ann_adapter *ann_adapter_get(const char *variant)
{
	kind = KNYTT_INDEX_HNSW;
	if (!variant || !*variant) {
		quant = KNYTT_QUANT_NONE;
		kn_adapter.library = "knytt";
	} else if (strcmp(variant, "int8") == 0) {
		quant = KNYTT_QUANT_INT8;
		kn_adapter.library = "knytt-int8";
	} else if (strcmp(variant, "int8only") == 0) {
		quant = KNYTT_QUANT_INT8_ONLY;
		kn_adapter.library = "knytt-int8only";
	} else if (strcmp(variant, "f16") == 0) {
		quant = KNYTT_QUANT_F16;
		kn_adapter.library = "knytt-f16";
	} else if (strcmp(variant, "int8only-exact") == 0) {
		quant = KNYTT_QUANT_INT8_ONLY;
		kind = KNYTT_INDEX_FLAT;
		kn_adapter.library = "knytt-int8only-exact";
	} else {
		return NULL;
	}
	return &kn_adapter;
}
