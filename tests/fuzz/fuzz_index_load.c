/*
 * fuzz_index_load.c -- libFuzzer target for knytt_index_load: any byte
 * string must load cleanly or fail with an error code, never crash; a
 * file that loads must answer a search.
 *
 *   make fuzz && ./build-fuzz/fuzz_index_load -max_total_time=60 \
 *       tests/fixtures
 */
#include <knytt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* from lib/internal.h (linked statically here) */
uint32_t knytt__crc32c(uint32_t crc, const void *data, size_t n);

static void put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64];
	snprintf(path, sizeof path, "/tmp/knytt-fuzz-%d.idx", (int)getpid());
	FILE *f = fopen(path, "wb");
	if (!f)
		return 0;
	/* Inputs whose last byte is odd get valid checksums, so mutations
	 * reach the structural checks behind them instead of stopping at
	 * the CRC. */
	uint8_t *copy = malloc(size ? size : 1);
	if (!copy) {
		fclose(f);
		return 0;
	}
	memcpy(copy, data, size);
	if (size >= 256 && (data[size - 1] & 1)) {
		put32(copy + 160, (uint32_t)size);
		put32(copy + 164, 0);
		put32(copy + 168, knytt__crc32c(0, copy + 256, size - 256));
		put32(copy + 252, knytt__crc32c(0, copy, 252));
	}
	fwrite(copy, 1, size, f);
	free(copy);
	fclose(f);
	knytt_index *ix;
	if (knytt_index_create(&ix) == KNYTT_OK) {
		if (knytt_index_load(ix, path) == KNYTT_OK) {
			uint32_t d = knytt_index_dim(ix);
			float *q = calloc(d, sizeof *q);
			uint64_t lab[4];
			if (q)
				knytt_index_search(ix, q, d, 4, 16, lab, NULL);
			free(q);
		}
		knytt_index_close(ix);
	}
	unlink(path);
	return 0;
}
