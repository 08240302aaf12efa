/*
 * fuzz_import_movielens.c -- libFuzzer target for knytt_store_import of
 * MovieLens files (the u.item, u.user, u.data, movies.dat, users.dat
 * and ratings.dat shapes): any byte string
 * must import what is valid, reject the rest with a line and a reason,
 * and never crash.  Input layout: see import.h.
 *
 *   make fuzz FUZZ_TARGETS=fuzz_import_movielens FUZZ_SECONDS=60
 */
#include "import.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fz_import(data, size, KNYTT_FORMAT_MOVIELENS);
}
