/*
 * adapter_faiss.cpp -- the FAISS anchor (Debian libfaiss-dev 1.7.3, a
 * static library built by Debian for the baseline CPU): IndexHNSWFlat
 * behind the ann_adapter interface.
 *
 * Build threads are OpenMP threads (omp_set_num_threads before add);
 * searches run with one OpenMP thread and n = 1 query per call, which is
 * what "one query at a time" means for FAISS, per-call set-up included.
 *
 * A seed other than ANN_SEED_DEFAULT replaces the level generator
 * (hnsw.rng, a public member seeded 12345 by HNSW's constructor): add()
 * draws every new node's level from it, one after the other, before the
 * OpenMP threads link them.
 *
 * index_bytes = the size of write_index() into a VectorIOWriter: vectors,
 * levels, offsets and neighbour lists as FAISS serializes them.
 */
#include "annbench.h"

#include <faiss/IndexHNSW.h>
#include <faiss/index_io.h>
#include <faiss/impl/io.h>
#include <faiss/utils/random.h>
#include <omp.h>

#include <cstdio>
#include <exception>
#include <vector>

namespace {

void *faiss_build(const ann_data *d, unsigned m, unsigned efc,
		  unsigned nthreads, uint64_t seed, char *err, size_t errlen)
{
	faiss::IndexHNSWFlat *ix = nullptr;
	try {
		ix = new faiss::IndexHNSWFlat((int)d->dim, (int)m,
					      d->ip ? faiss::METRIC_INNER_PRODUCT
						    : faiss::METRIC_L2);
		ix->hnsw.efConstruction = (int)efc;
		if (seed != ANN_SEED_DEFAULT)
			ix->hnsw.rng = faiss::RandomGenerator((int64_t)seed);
		omp_set_num_threads((int)nthreads);
		ix->add((faiss::Index::idx_t)d->n, d->base);
		omp_set_num_threads(1);
	} catch (const std::exception &e) {
		snprintf(err, errlen, "faiss: %s", e.what());
		delete ix;
		return nullptr;
	}
	return ix;
}

void faiss_search(void *index, const float *query, size_t k, unsigned ef,
		  int64_t *out)
{
	auto *ix = static_cast<faiss::IndexHNSWFlat *>(index);
	float dist[256];
	faiss::Index::idx_t lab[256];
	if (k > 256)
		k = 256;
	ix->hnsw.efSearch = (int)ef;
	ix->search(1, query, (faiss::Index::idx_t)k, dist, lab);
	for (size_t i = 0; i < k; i++)
		out[i] = (int64_t)lab[i];
}

size_t faiss_bytes(void *index)
{
	faiss::VectorIOWriter w;
	faiss::write_index(static_cast<faiss::IndexHNSWFlat *>(index), &w);
	return w.data.size();
}

void faiss_destroy(void *index)
{
	delete static_cast<faiss::IndexHNSWFlat *>(index);
}

const ann_adapter faiss_adapter = {
	"faiss",
	"write_index() size (VectorIOWriter)",
	faiss_build, faiss_search, faiss_bytes, nullptr, faiss_destroy,
};

} // namespace

extern "C" const ann_adapter *ann_adapter_get(const char *variant)
{
	return variant && *variant ? nullptr : &faiss_adapter;
}
