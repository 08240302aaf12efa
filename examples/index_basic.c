/*
 * index_basic.c -- the smallest use of the knytt index API: build an
 * index over a few vectors, search it, save it, load it back.
 */
#include <knytt.h>
#include <stdio.h>

int main(void)
{
	float v[4][3] = { { 0, 0, 0 }, { 1, 0, 0 }, { 0, 1, 0 }, { 5, 5, 5 } };
	float q[3] = { 0.9f, 0.1f, 0 };
	uint64_t labels[2];
	float dists[2];
	knytt_index *idx, *again;

	if (knytt_index_create(&idx) != KNYTT_OK)
		return 1;
	knytt_index_set_metric(idx, KNYTT_METRIC_L2);
	if (knytt_index_open(idx, 3) != KNYTT_OK) {
		fprintf(stderr, "open: %s\n", knytt_errmsg());
		return 1;
	}
	for (uint64_t i = 0; i < 4; i++)
		knytt_index_add(idx, 100 + i, v[i], 3);

	int n = knytt_index_search(idx, q, 3, 2, 0, labels, dists);
	for (int i = 0; i < n; i++)
		printf("label %llu  distance %.3f\n",
		       (unsigned long long)labels[i], dists[i]);

	/* errors name what was wrong */
	if (knytt_index_search(idx, q, 2, 2, 0, labels, dists) < 0)
		printf("expected error: %s\n", knytt_errmsg());

	if (knytt_index_save(idx, "index_basic.idx") != KNYTT_OK ||
	    knytt_index_create(&again) != KNYTT_OK ||
	    knytt_index_load(again, "index_basic.idx") != KNYTT_OK) {
		fprintf(stderr, "save/load: %s\n", knytt_errmsg());
		return 1;
	}
	printf("reloaded %zu vectors\n", knytt_index_count(again));
	knytt_index_close(again);
	knytt_index_close(idx);
	remove("index_basic.idx");
	return 0;
}
