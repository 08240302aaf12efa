/*
 * fuzz.h -- what the libFuzzer targets of tests/fuzz/ share.
 *
 * Each tests/fuzz/fuzz_<target>.c defines LLVMFuzzerTestOneInput and is
 * built twice: by clang with -fsanitize=fuzzer,address,undefined
 * (make fuzz: build-fuzz/<target>) and by the normal compiler with
 * tests/fuzz/replay.c as main (make test: build/fuzz/<target>, which
 * replays the seed corpus and every crash kept under
 * tests/fuzz/regress/<target>/).  So a harness must be warning-free C11,
 * must not exit or abort on bad input, and must leave no file behind.
 *
 * Checksummed formats: a harness repairs the checksums of the inputs
 * whose control byte asks for it, so that mutations also reach the
 * structural checks behind the CRC instead of all stopping at it.
 */
#ifndef KNYTT_FUZZ_H
#define KNYTT_FUZZ_H

#include "../../lib/internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A per-process scratch path "<dir>/knytt-fuzz-<pid>-<tag>": /dev/shm
 * when it exists (no disk writes at tens of thousands of runs a
 * second), else the temporary directory. */
static inline void fuzz_path(char *out, size_t cap, const char *tag)
{
	const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm"
			  : getenv("TMPDIR")            ? getenv("TMPDIR")
							: "/tmp";
	snprintf(out, cap, "%s/knytt-fuzz-%d-%s", dir, (int)getpid(), tag);
}

/* Writes @p n bytes to @p path; 0 or -1. */
static inline int fuzz_write(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	int ok = fwrite(p, 1, n, f) == n;
	return fclose(f) == 0 && ok ? 0 : -1;
}

/* A heap copy of @p n bytes (never NULL for n == 0, so ASan sees reads
 * past the end of an empty input as well). */
static inline unsigned char *fuzz_dup(const uint8_t *p, size_t n)
{
	unsigned char *c = malloc(n ? n : 1);
	if (c && n)
		memcpy(c, p, n);
	return c;
}

/* Sets the trailing CRC-32C of a buffer of @p n bytes (the layout of the
 * model files and the engine blob: CRC of every byte before it). */
static inline void fuzz_fix_crc(unsigned char *b, size_t n)
{
	if (n >= 4)
		knytt__put_u32(b + n - 4, knytt__crc32c(0, b, n - 4));
}

#endif
