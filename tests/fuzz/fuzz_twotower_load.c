/*
 * fuzz_twotower_load.c -- libFuzzer target for
 * knytt_twotower_load_buffer: any byte string must load or fail with an
 * error code, never crash; a model that loads must embed items, queries
 * and users (the paths the engine takes) without reading out of bounds.
 *
 * Input: byte 0 is a control byte, the rest the model.  When its bit 0
 * is set the model's trailing CRC-32C is made valid, so that mutations
 * reach the table checks behind it.
 */
#include "fuzz.h"

static void use(const knytt_twotower *tt)
{
	uint32_t d = knytt_twotower_dim(tt);
	uint32_t nu = knytt_twotower_count_users(tt);
	uint32_t ni = knytt_twotower_count_items(tt);
	/* the tables the engine copies out: bounded here, a loader that
	 * accepted a huge model would fail the malloc limit instead */
	float *rows = calloc((size_t)(nu > ni ? nu : ni) * d + 1, sizeof *rows);
	float *v = calloc((size_t)d + 1, sizeof *v);
	if (rows && v) {
		knytt_twotower_item_embeddings(tt, rows, ni);
		knytt_twotower_user_embeddings(tt, rows, nu);
		knytt_twotower_item it = { "red shoes", "running, light",
					   "shoes/running|sale", 49.5 };
		knytt_twotower_embed_item(tt, &it, v);
		knytt_twotower_embed_query(tt, "red running shoes", v);
		uint32_t recent[3] = { 0, ni ? ni - 1 : 0, 0 };
		knytt_twotower_embed_user(tt, nu ? nu - 1 : 0, recent, 3, v);
		knytt_twotower_embed_user(tt, KNYTT_TWOTOWER_NO_USER, recent,
					  3, v);
	}
	free(rows);
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
	knytt_twotower *tt;
	if (knytt_twotower_create(&tt) == KNYTT_OK) {
		knytt_twotower_set_threads(tt, 1);
		if (knytt_twotower_load_buffer(tt, b, size - 1) == KNYTT_OK)
			use(tt);
		knytt_twotower_close(tt);
	}
	free(b);
	return 0;
}
