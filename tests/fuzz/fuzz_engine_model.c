/*
 * fuzz_engine_model.c -- libFuzzer target for the stored engine model
 * (the "engine-model" blob of lib/engine/modelblob.c: header, item map,
 * ALS, LightGCN or two-tower model, search words, SASRec session model,
 * CRC): a damaged blob in the store must make
 * knytt_engine_open fail with an error or serve without it, never crash.
 *
 * Two steps.  Every input goes through knytt__engine_decode_model on an
 * engine set to the blob's own kind and dimension (fast: no store).
 * Inputs it accepts -- the interesting ones, a small share -- are then
 * stored as the latest "engine-model" of a copy of a small SQLite store
 * (four items) and an engine is opened on it and asked for
 * recommendations and similar items: that is the path a real damaged
 * database takes, including the index built from the model's vectors.
 *
 * Input: byte 0 is a control byte, the rest the blob.  Bit 0 makes the
 * inner model's CRC valid (when the blob's sizes locate it), bit 1 the
 * blob's own CRC, so mutations reach the structural checks.
 */
#include "fuzz.h"

#include "../../lib/engine/engine_int.h"
#include "../../lib/model/qterms.h"

#define HDR 32 /* BLOB_HDR of train.c */

static char fz_db[256];

/* The store every accepted input is tried against: created once. */
static int fz_template(void)
{
	static int made;
	if (made)
		return 0;
	fuzz_path(fz_db, sizeof fz_db, "engine.db");
	char uri[300];
	snprintf(uri, sizeof uri, "sqlite:%s", fz_db);
	unlink(fz_db);
	knytt_store *st;
	uint64_t t;
	if (knytt_store_open(uri, &st) != KNYTT_OK)
		return -1;
	int rc = knytt_store_tenant_create(st, "default", &t);
	if (rc == KNYTT_OK)
		rc = knytt_store_use_tenant(st, t);
	static const char *const ids[] = { "a", "b", "c", "d" };
	for (size_t i = 0; rc == KNYTT_OK && i < 4; i++) {
		knytt_item it;
		memset(&it, 0, sizeof it);
		it.struct_size = sizeof it;
		it.ext_id = ids[i];
		it.title = ids[i];
		it.in_stock = 1;
		rc = knytt_store_item_upsert(st, &it, NULL);
	}
	if (rc == KNYTT_OK)
		rc = knytt_store_user_upsert(st, "u", NULL, NULL);
	knytt_store_close(st);
	made = rc == KNYTT_OK;
	return made ? 0 : -1;
}

static void fz_unlink_db(void)
{
	static const char *const sfx[] = { "", "-wal", "-shm", "-journal" };
	char p[320];
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof p, "%s.run%s", fz_db, sfx[i]);
		unlink(p);
	}
}

/* Stores @p b as the latest model of a fresh copy of the template and
 * serves from it. */
static void fz_serve(const unsigned char *b, size_t n)
{
	char db[300], uri[320];
	snprintf(db, sizeof db, "%s.run", fz_db);
	snprintf(uri, sizeof uri, "sqlite:%s", db);
	FILE *in = fopen(fz_db, "rb"), *out = fopen(db, "wb");
	char buf[8192];
	size_t got;
	while (in && out && (got = fread(buf, 1, sizeof buf, in)) > 0)
		fwrite(buf, 1, got, out);
	if (in)
		fclose(in);
	if (out)
		fclose(out);
	knytt_store *st;
	uint64_t t;
	if (knytt_store_open(uri, &st) != KNYTT_OK)
		goto out;
	if (knytt_store_tenant_find(st, "default", &t) == KNYTT_OK &&
	    knytt_store_use_tenant(st, t) == KNYTT_OK)
		knytt_store_model_put(st, "engine-model", b, n, NULL, NULL);
	knytt_store_close(st);
	knytt_engine *e;
	if (knytt_engine_create(&e) != KNYTT_OK)
		goto out;
	knytt_engine_set_threads(e, 1);
	if (knytt_engine_open(e, uri) == KNYTT_OK) {
		knytt_result r[4] = {{.struct_size = sizeof(knytt_result)}};
		knytt_engine_recommend(e, "u", 4, NULL, NULL, r);
		knytt_engine_similar(e, "a", 4, NULL, r);
	}
	knytt_engine_close(e);
out:
	fz_unlink_db();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || fz_template() != 0)
		return 0;
	size_t n = size - 1;
	unsigned char *b = fuzz_dup(data + 1, n);
	if (!b)
		return 0;
	if (n >= HDR + 4) {
		uint64_t ni = knytt__get_u32(b + 20), ml = knytt__get_u64(b + 24);
		/* sizes bounded first: a huge ml or ni must not wrap the
		 * sum around to n (the harness's own overflow) */
		if ((data[0] & 1) && ml >= 4 && ml <= n && ni <= n / 8 &&
		    HDR + ni * 8 + ml + 4 == n)
			fuzz_fix_crc(b + HDR + ni * 8, (size_t)ml);
		if (data[0] & 2)
			fuzz_fix_crc(b, n);
	}
	knytt_engine *e;
	int ok = 0;
	if (n >= HDR && knytt_engine_create(&e) == KNYTT_OK) {
		knytt_als *als = NULL;
		knytt_twotower *tt = NULL;
		knytt_lightgcn *lgc = NULL;
		struct knytt__qterms *qm = NULL;
		knytt_sasrec *sr = NULL;
		uint64_t *items = NULL;
		uint32_t nitems = 0;
		unsigned char tag[KNYTT__MODEL_TAG];
		/* a kind the setter refuses: the engine open path adopts
		 * the stored kind unchecked, so try it as "external" (the
		 * one setting decode does not compare) */
		if (knytt_engine_set_model(e, (knytt_model_kind)
					       knytt__get_u32(b + 12)) !=
		    KNYTT_OK)
			knytt_engine_set_model(e, KNYTT_MODEL_EXTERNAL);
		if (knytt_engine_set_dim(e, knytt__get_u32(b + 16)) ==
			    KNYTT_OK &&
		    knytt__engine_decode_model(e, b, n, &als, &tt, &lgc,
					       &qm, &sr, &items, &nitems,
					       tag) == KNYTT_OK) {
			ok = 1;
			knytt_als_close(als);
			knytt_twotower_close(tt);
			knytt_lightgcn_close(lgc);
			knytt__qterms_free(qm);
			knytt_sasrec_close(sr);
			free(items);
		}
		knytt_engine_close(e);
	}
	if (ok)
		fz_serve(b, n);
	free(b);
	return 0;
}
