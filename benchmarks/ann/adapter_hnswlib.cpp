/*
 * adapter_hnswlib.cpp -- the hnswlib anchor (Debian libhnswlib-dev,
 * header-only, version 0.6.2) behind the ann_adapter interface.
 *
 * Compiled with -O3 -march=native, as hnswlib's own Python build does:
 * this hnswlib picks its SSE/AVX/AVX-512 distance at compile time, so a
 * baseline build would handicap the anchor.
 *
 * Multi-threaded build: hnswlib's addPoint is safe for distinct labels
 * from many threads (per-node link locks); as in its Python binding, the
 * first point goes in alone and the rest are handed out to std::threads
 * through an atomic counter.
 *
 * index_bytes = everything the index itself allocates, counted the way
 * knytt_index_memory counts knytt's: the level-0 block (max_elements *
 * size_data_per_element: links, vector and label of every node), the
 * upper-layer link lists, the per-node level array, link-list pointers
 * and link mutexes, and the label -> id hash map (its bucket array plus
 * one 32-byte node per label: next pointer, key, value, allocator
 * header).  As for knytt, the per-thread visited lists of the search are
 * left out.
 */
#include "annbench.h"

#include <hnswlib/hnswlib.h>

#include <atomic>
#include <cstdio>
#include <exception>
#include <thread>
#include <vector>

namespace {

struct hnsw_index {
	hnswlib::L2Space l2;
	hnswlib::InnerProductSpace ip;
	hnswlib::HierarchicalNSW<float> *alg;
	hnsw_index(size_t dim) : l2(dim), ip(dim), alg(nullptr) {}
	~hnsw_index() { delete alg; }
};

void *hnsw_build(const ann_data *d, unsigned m, unsigned efc,
		 unsigned nthreads, uint64_t seed, char *err, size_t errlen)
{
	hnsw_index *ix = nullptr;
	try {
		ix = new hnsw_index(d->dim);
		hnswlib::SpaceInterface<float> *sp = &ix->l2;
		if (d->ip)
			sp = &ix->ip;
		/* without a seed, the constructor's own default (100) */
		if (seed == ANN_SEED_DEFAULT)
			ix->alg = new hnswlib::HierarchicalNSW<float>(sp, d->n,
								      m, efc);
		else
			ix->alg = new hnswlib::HierarchicalNSW<float>(
				sp, d->n, m, efc, (size_t)seed);
		if (d->n == 0)
			return ix;
		ix->alg->addPoint(d->base, 0);
		std::atomic<size_t> next(1);
		auto work = [&]() {
			for (size_t i; (i = next++) < d->n;)
				ix->alg->addPoint(d->base + i * d->dim, i);
		};
		std::vector<std::thread> pool;
		for (unsigned t = 1; t < nthreads; t++)
			pool.emplace_back(work);
		work();
		for (auto &th : pool)
			th.join();
	} catch (const std::exception &e) {
		snprintf(err, errlen, "hnswlib: %s", e.what());
		delete ix;
		return nullptr;
	}
	return ix;
}

void hnsw_search(void *index, const float *query, size_t k, unsigned ef,
		 int64_t *out)
{
	hnsw_index *ix = static_cast<hnsw_index *>(index);
	ix->alg->setEf(ef);
	auto pq = ix->alg->searchKnn(query, k);
	size_t n = pq.size();
	for (size_t i = n; i < k; i++)
		out[i] = -1;
	/* The queue pops the farthest first. */
	for (size_t i = n; i-- > 0; pq.pop())
		out[i] = (int64_t)pq.top().second;
}

size_t hnsw_bytes(void *index)
{
	const auto *a = static_cast<hnsw_index *>(index)->alg;
	size_t bytes = a->max_elements_ * a->size_data_per_element_;
	for (size_t i = 0; i < a->cur_element_count; i++)
		bytes += a->size_links_per_element_ * a->element_levels_[i];
	bytes += a->max_elements_ *
		 (sizeof(int) + sizeof(char *) + sizeof(std::mutex));
	bytes += a->label_lookup_.bucket_count() * sizeof(void *) +
		 a->label_lookup_.size() * 32;
	return bytes;
}

void hnsw_destroy(void *index)
{
	delete static_cast<hnsw_index *>(index);
}

const ann_adapter hnsw_adapter = {
	"hnswlib",
	"level-0 block + upper link lists (= saveIndex payload)",
	hnsw_build, hnsw_search, hnsw_bytes, nullptr, hnsw_destroy,
};

} // namespace

extern "C" const ann_adapter *ann_adapter_get(const char *variant)
{
	return variant && *variant ? nullptr : &hnsw_adapter;
}
