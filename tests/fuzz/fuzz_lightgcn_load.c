/*
 * fuzz_lightgcn_load.c -- libFuzzer target for knytt_lightgcn_load_buffer:
 * any byte string must load or fail with an error code, never crash; a
 * model that loads must answer every read the engine and knytt eval make
 * of it (factors of the last user and item, scores, a fold-in).
 *
 * Input: byte 0 is a control byte, the rest the model.  When its bit 0
 * is set the model's trailing CRC-32C is made valid, so that mutations
 * reach the header and size checks behind it.
 */
#include "fuzz.h"

static void use(const knytt_lightgcn *g)
{
	unsigned dim = knytt_lightgcn_dim(g);
	uint32_t nu = knytt_lightgcn_users(g), ni = knytt_lightgcn_items(g);
	float *v = calloc(dim ? dim : 1, sizeof *v);
	float s[2];
	uint32_t items[2] = { 0, ni ? ni - 1 : 0 };
	if (!v)
		return;
	if (nu)
		knytt_lightgcn_user_factors(g, nu - 1, 1, v);
	if (ni) {
		knytt_lightgcn_item_factors(g, ni - 1, 1, v);
		knytt_lightgcn_fold_in(g, ni > 1 ? 2 : 1, items, v);
	}
	if (nu && ni)
		knytt_lightgcn_score(g, nu - 1, items, 2, s);
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
	knytt_lightgcn *g;
	if (knytt_lightgcn_create(&g) == KNYTT_OK) {
		knytt_lightgcn_set_threads(g, 1);
		if (knytt_lightgcn_load_buffer(g, b, size - 1) == KNYTT_OK)
			use(g);
		knytt_lightgcn_close(g);
	}
	free(b);
	return 0;
}
