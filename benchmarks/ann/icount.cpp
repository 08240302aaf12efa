/*
 * icount.cpp -- knytt and hnswlib searched by one program, so that
 * valgrind --tool=callgrind can count the instructions each spends on the
 * same queries: a figure that other processes on a shared machine cannot
 * disturb, unlike wall-clock QPS.  Driven by benchmarks/ann/icount.
 *
 *   icount BASE.bvecs QUERIES.bvecs EF
 *
 * Both indexes: M 16, ef_construction 200, 1 thread; each searches every
 * query 5 times with k 10 and the given ef, inside run_knytt / run_hnsw.
 */
#include <hnswlib/hnswlib.h>
extern "C" {
#include "knytt.h"
}
#include <cstdio>
#include <cstdlib>
#include <vector>

static std::vector<float> bvecs(const char *p, size_t &n, size_t &d)
{
	std::vector<float> v;
	FILE *f = fopen(p, "rb");
	if (!f) {
		perror(p);
		exit(1);
	}
	int dd;
	n = 0;
	while (fread(&dd, 4, 1, f) == 1) {
		d = (size_t)dd;
		std::vector<unsigned char> b(d);
		if (fread(b.data(), 1, d, f) != d)
			break;
		for (unsigned char c : b)
			v.push_back(c);
		n++;
	}
	fclose(f);
	return v;
}

__attribute__((noinline)) void run_knytt(knytt_index *ix, const float *q,
					 size_t nq, size_t d, unsigned ef)
{
	uint64_t o[10];
	for (int r = 0; r < 5; r++)
		for (size_t i = 0; i < nq; i++)
			knytt_index_search(ix, q + i * d, (uint32_t)d, 10, ef, o,
					   nullptr);
}

__attribute__((noinline)) void run_hnsw(hnswlib::HierarchicalNSW<float> &h,
					const float *q, size_t nq, size_t d,
					unsigned ef)
{
	h.setEf(ef);
	for (int r = 0; r < 5; r++)
		for (size_t i = 0; i < nq; i++)
			h.searchKnn(q + i * d, 10);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: icount BASE.bvecs QUERIES.bvecs EF\n");
		return 2;
	}
	size_t n, d, nq, d2;
	std::vector<float> x = bvecs(argv[1], n, d), q = bvecs(argv[2], nq, d2);
	unsigned ef = (unsigned)atoi(argv[3]);
	hnswlib::L2Space sp(d);
	hnswlib::HierarchicalNSW<float> h(&sp, n, 16, 200, 42);
	for (size_t i = 0; i < n; i++)
		h.addPoint(&x[i * d], i);
	knytt_index *ix;
	std::vector<uint64_t> lab(n);
	for (size_t i = 0; i < n; i++)
		lab[i] = i;
	if (knytt_index_create(&ix) || knytt_index_set_m(ix, 16) ||
	    knytt_index_set_ef_construction(ix, 200) ||
	    knytt_index_open(ix, (uint32_t)d) ||
	    knytt_index_add_batch(ix, n, lab.data(), x.data(), (uint32_t)d, 1)) {
		fprintf(stderr, "knytt: %s\n", knytt_errmsg());
		return 1;
	}
	run_knytt(ix, q.data(), nq, d, ef);
	run_hnsw(h, q.data(), nq, d, ef);
	knytt_index_close(ix);
	return 0;
}
