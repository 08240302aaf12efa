/*
 * fuzz_sasrec_load.c -- libFuzzer target for knytt_sasrec_load_buffer:
 * any byte string must load or fail with an error code, never crash; a
 * model that loads must answer every read the engine and the benchmarks
 * make of it (the state after a short sequence and after one longer than
 * max_len, scores of the first and last item, the last item's factors).
 *
 * Input: byte 0 is a control byte, the rest the model.  When its bit 0
 * is set the model's trailing CRC-32C is made valid, so that mutations
 * reach the header and size checks behind it.
 */
#include "fuzz.h"

static void use(const knytt_sasrec *s)
{
	unsigned dim = knytt_sasrec_dim(s), len = knytt_sasrec_max_len(s);
	uint32_t ni = knytt_sasrec_items(s);
	if (!ni || !dim)
		return;
	/* one past max_len (capped: a damaged length must not make the
	 * harness itself allocate gigabytes), every entry in range */
	size_t n = (len < 64 ? len : 64) + 1;
	uint32_t *seq = malloc(n * sizeof *seq);
	float *v = malloc(dim * sizeof *v), sc[2];
	uint32_t cand[2] = {0, ni - 1};
	if (seq && v) {
		for (size_t i = 0; i < n; i++)
			seq[i] = (uint32_t)(i * 7919u % ni);
		knytt_sasrec_encode(s, seq, 1, v);
		knytt_sasrec_encode(s, seq, n, v);
		knytt_sasrec_score(s, seq, n, cand, 2, sc);
		knytt_sasrec_item_factors(s, ni - 1, 1, v);
	}
	free(seq);
	free(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	unsigned char *b = fuzz_dup(data + 1, size - 1);
	if (!b)
		return 0;
	if (data[0] & 1)
		fuzz_fix_crc(b, size - 1);
	knytt_sasrec *s;
	if (knytt_sasrec_create(&s) == KNYTT_OK) {
		knytt_sasrec_set_threads(s, 1);
		if (knytt_sasrec_load_buffer(s, b, size - 1) == KNYTT_OK)
			use(s);
		knytt_sasrec_close(s);
	}
	free(b);
	return 0;
}
