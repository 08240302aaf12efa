/*
 * fuzz_als_load.c -- libFuzzer target for knytt_als_load_buffer: any
 * byte string must load or fail with an error code, never crash; a model
 * that loads must answer every read the engine makes of it (factors,
 * scores, a fold-in).
 *
 * Input: byte 0 is a control byte, the rest the model.  When its bit 0
 * is set the model's trailing CRC-32C is made valid, so that mutations
 * reach the header and size checks behind it.
 */
#include "fuzz.h"

static void use(const knytt_als *als)
{
	unsigned k = knytt_als_factors(als);
	uint32_t nu = knytt_als_users(als), ni = knytt_als_items(als);
	float *v = calloc(k ? k : 1, sizeof *v);
	float s[4];
	uint32_t items[2] = { 0, ni ? ni - 1 : 0 };
	float w[2] = { 1, 2 };
	if (!v)
		return;
	if (nu)
		knytt_als_user_factors(als, nu - 1, 1, v);
	if (ni) {
		knytt_als_item_factors(als, ni - 1, 1, v);
		knytt_als_fold_in(als, 2, items, w, v);
	}
	if (nu && ni)
		knytt_als_score(als, 0, items, 2, s);
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
	knytt_als *als;
	if (knytt_als_create(&als) == KNYTT_OK) {
		knytt_als_set_threads(als, 1);
		if (knytt_als_load_buffer(als, b, size - 1) == KNYTT_OK)
			use(als);
		knytt_als_close(als);
	}
	free(b);
	return 0;
}
