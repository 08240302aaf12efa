/*
 * import.h -- the body of the three import targets (CSV, JSON Lines,
 * MovieLens): knytt_store_import of the input into an in-memory SQLite
 * store.
 *
 * Input: byte 0 chooses the record kind (items, users, interactions:
 * value % 3) and bit 2 of it a batch size of 2 rows instead of 64, so
 * commits inside a file are exercised too; the rest is the file.
 *
 * The store is opened once per process and seeded with items and users
 * whose ids the seeds use ("a".."c", "1".."3", "u1", "u2"), so
 * interaction rows can pass validation and reach the insert; it is
 * reopened every 256 inputs so that what earlier inputs stored cannot
 * grow without bound.  Rejected rows are read back through the
 * callback (field and reason are strings the library must keep valid).
 */
#ifndef KNYTT_FUZZ_IMPORT_H
#define KNYTT_FUZZ_IMPORT_H

#include "fuzz.h"

static knytt_store *fz_st;
static unsigned fz_runs;

static void fz_seed(knytt_store *st)
{
	static const char *const ids[] = { "a", "b", "c", "1", "2", "3" };
	for (size_t i = 0; i < sizeof ids / sizeof *ids; i++) {
		knytt_item it;
		memset(&it, 0, sizeof it);
		it.struct_size = sizeof it;
		it.ext_id = ids[i];
		it.title = ids[i];
		it.in_stock = 1;
		knytt_store_item_upsert(st, &it, NULL);
		knytt_store_user_upsert(st, ids[i], NULL, NULL);
	}
	knytt_store_user_upsert(st, "u1", NULL, NULL);
	knytt_store_user_upsert(st, "u2", NULL, NULL);
}

static knytt_store *fz_store(void)
{
	if (fz_st && ++fz_runs % 256 == 0) {
		knytt_store_close(fz_st);
		fz_st = NULL;
	}
	if (fz_st)
		return fz_st;
	uint64_t t = 0;
	if (knytt_store_open("sqlite::memory:", &fz_st) != KNYTT_OK ||
	    knytt_store_tenant_create(fz_st, "fuzz", &t) != KNYTT_OK ||
	    knytt_store_use_tenant(fz_st, t) != KNYTT_OK) {
		fprintf(stderr, "fuzz: cannot open the store: %s\n",
			knytt_errmsg());
		abort(); /* the harness, not the input, is broken */
	}
	fz_seed(fz_st);
	return fz_st;
}

static void fz_on_reject(size_t line, const char *field, const char *reason,
			 void *ctx)
{
	size_t *sum = ctx;
	*sum += line + strlen(field) + strlen(reason);
}

static int fz_import(const uint8_t *data, size_t size, knytt_format format)
{
	if (size < 1)
		return 0;
	char path[256];
	fuzz_path(path, sizeof path, "import");
	if (fuzz_write(path, data + 1, size - 1) != 0)
		return 0;
	knytt_store *st = fz_store();
	knytt_store_set_batch_size(st, (data[0] & 4) ? 2 : 64);
	size_t sum = 0;
	knytt_store_import(st, path, (knytt_record_kind)(data[0] % 3 + 1),
			   format, fz_on_reject, &sum);
	unlink(path);
	return 0;
}

#endif
