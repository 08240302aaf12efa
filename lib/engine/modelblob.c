/*
 * modelblob.c -- the "engine-model" blob: encode and decode (kind, item
 * map, the model's random tag, model).  Moved from train.c.
 *
 * Blob "engine-model", version 2, little-endian:
 *   "KNYTTENG" | u32 version | u32 kind | u32 dim | u32 nitems |
 *   u64 model bytes | 16-byte tag (random, one per training) |
 *   nitems x u64 store ids (model row order) |
 *   model bytes (knytt_als_save_buffer / knytt_twotower_save_buffer) |
 *   u32 CRC-32C of everything before it
 * Version 1 is the same without the tag (read as an all-zero tag: its
 * index file cannot be vouched for and is rebuilt).  Version 3, written
 * only when training learned search words (so a blob without them stays
 * readable by older libraries), adds u64 word-model bytes after the tag
 * (header 56 bytes) and the words (lib/model/qterms.h) after the model
 * bytes.  Version 4, written only with a SASRec session model
 * (knytt_engine_set_sasrec; seqmodel.c), adds u64 session-model bytes
 * after the word-model bytes (header 64 bytes; 0 words is allowed) and
 * the model (knytt_sasrec_save_buffer, over the same item rows) after
 * the words.  The tag, with the
 * tenant id, is the index file's owner tag (model_owner): a file whose
 * tag differs was not built for this model and is not served.
 */
#include "engine_int.h"
#include "../model/qterms.h"

#include <stdlib.h>
#include <string.h>

#define BLOB_HDR1 32
#define BLOB_HDR 48
#define BLOB_HDR3 56
#define BLOB_HDR4 64

/* --------------------------------------------------------------- blob */

int knytt__engine_encode_model(const knytt_engine *e, knytt_als *als,
			       knytt_twotower *tt, knytt_lightgcn *lgc,
			       const knytt__qterms *qm,
			       const knytt_sasrec *sr,
			       const uint64_t *items,
			       uint32_t nitems,
			       const unsigned char tag[KNYTT__MODEL_TAG],
			       void **blob, size_t *size)
{
	void *mb = NULL;
	size_t ml = 0;
	int rc = als   ? knytt_als_save_buffer(als, &mb, &ml)
		 : lgc ? knytt_lightgcn_save_buffer(lgc, &mb, &ml)
		       : knytt_twotower_save_buffer(tt, &mb, &ml);
	void *sb = NULL;
	size_t sl = 0;
	if (rc || (sr && (rc = knytt_sasrec_save_buffer(sr, &sb, &sl)))) {
		knytt_free(mb);
		return rc;
	}
	uint32_t ver = sr ? 4 : qm ? 3 : 2;
	size_t hdr = ver == 4 ? BLOB_HDR4 : ver == 3 ? BLOB_HDR3 : BLOB_HDR;
	size_t ql = qm ? knytt__qterms_size(qm) : 0;
	size_t n = hdr + (size_t)nitems * 8 + ml + ql + sl + 4;
	unsigned char *b = malloc(n);
	if (!b) {
		knytt_free(mb);
		knytt_free(sb);
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	}
	memcpy(b, "KNYTTENG", 8);
	knytt__put_u32(b + 8, ver);
	knytt__put_u32(b + 12, als   ? KNYTT_MODEL_ALS
			       : lgc ? KNYTT_MODEL_LIGHTGCN
				     : KNYTT_MODEL_TWOTOWER);
	knytt__put_u32(b + 16, e->dim);
	knytt__put_u32(b + 20, nitems);
	knytt__put_u64(b + 24, ml);
	memcpy(b + 32, tag, KNYTT__MODEL_TAG);
	if (ver >= 3)
		knytt__put_u64(b + BLOB_HDR, ql);
	if (ver == 4)
		knytt__put_u64(b + BLOB_HDR3, sl);
	for (uint32_t i = 0; i < nitems; i++)
		knytt__put_u64(b + hdr + (size_t)i * 8, items[i]);
	memcpy(b + hdr + (size_t)nitems * 8, mb, ml);
	knytt_free(mb);
	if (qm)
		knytt__qterms_write(qm, b + hdr + (size_t)nitems * 8 + ml);
	if (sr)
		memcpy(b + hdr + (size_t)nitems * 8 + ml + ql, sb, sl);
	knytt_free(sb);
	knytt__put_u32(b + n - 4, knytt__crc32c(0, b, n - 4));
	*blob = b;
	*size = n;
	return KNYTT_OK;
}

int knytt__engine_decode_model(const knytt_engine *e, const void *blob,
			       size_t size, knytt_als **als,
			       knytt_twotower **tt, knytt_lightgcn **lgc,
			       knytt__qterms **qm, knytt_sasrec **sr,
			       uint64_t **items, uint32_t *nitems,
			       unsigned char tag[KNYTT__MODEL_TAG])
{
	const unsigned char *b = blob;
	if (size < BLOB_HDR1 + 4 || memcmp(b, "KNYTTENG", 8) != 0)
		return knytt__err(KNYTT_ECORRUPT,
				  "stored engine model: not an engine model");
	if (knytt__get_u32(b + size - 4) != knytt__crc32c(0, b, size - 4))
		return knytt__err(KNYTT_ECORRUPT,
				  "stored engine model: checksum mismatch");
	uint32_t bver = knytt__get_u32(b + 8);
	if (bver < 1 || bver > 4)
		return knytt__err(KNYTT_EVERSION,
				  "stored engine model: version %u is newer "
				  "than this library",
				  bver);
	size_t hdr = bver == 1	 ? BLOB_HDR1
		     : bver == 2 ? BLOB_HDR
		     : bver == 3 ? BLOB_HDR3
				 : BLOB_HDR4;
	if (size < hdr + 4)
		return knytt__err(KNYTT_ECORRUPT,
				  "stored engine model: sizes do not add up");
	uint32_t kind = knytt__get_u32(b + 12), dim = knytt__get_u32(b + 16);
	uint32_t n = knytt__get_u32(b + 20);
	uint64_t ml = knytt__get_u64(b + 24);
	uint64_t ql = bver >= 3 ? knytt__get_u64(b + BLOB_HDR) : 0;
	uint64_t sl = bver == 4 ? knytt__get_u64(b + BLOB_HDR3) : 0;
	/* each part no larger than the blob, so the sum cannot wrap */
	if (ml > size || ql > size || sl > size || n > size ||
	    (bver == 4 && sl == 0) ||
	    (uint64_t)hdr + (uint64_t)n * 8 + ml + ql + sl + 4 != size)
		return knytt__err(KNYTT_ECORRUPT,
				  "stored engine model: sizes do not add up");
	if (dim != e->dim)
		return knytt__err(KNYTT_EINVAL,
				  "the stored model has dimension %u, the "
				  "engine is set to %u (knytt_engine_set_dim)",
				  dim, e->dim);
	if (kind != KNYTT_MODEL_ALS && kind != KNYTT_MODEL_TWOTOWER &&
	    kind != KNYTT_MODEL_LIGHTGCN)
		return knytt__err(KNYTT_ECORRUPT,
				  "stored engine model: kind %u is unknown",
				  kind);
	if (kind != (uint32_t)e->kind)
		return knytt__err(KNYTT_EINVAL,
				  "the stored model is %s, the engine is set "
				  "to another kind (knytt_engine_set_model)",
				  kind == KNYTT_MODEL_ALS	 ? "ALS"
				  : kind == KNYTT_MODEL_LIGHTGCN ? "LightGCN"
								 : "two-tower");
	uint64_t *ids = malloc((n ? n : 1) * sizeof *ids);
	if (!ids)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	for (uint32_t i = 0; i < n; i++)
		ids[i] = knytt__get_u64(b + hdr + (size_t)i * 8);
	const unsigned char *mb = b + hdr + (size_t)n * 8;
	if (bver == 1)
		memset(tag, 0, KNYTT__MODEL_TAG);
	else
		memcpy(tag, b + 32, KNYTT__MODEL_TAG);
	int rc;
	*als = NULL;
	*tt = NULL;
	*lgc = NULL;
	*qm = NULL;
	*sr = NULL;
	if (kind == KNYTT_MODEL_ALS) {
		if ((rc = knytt_als_create(als)) == KNYTT_OK)
			rc = knytt_als_load_buffer(*als, mb, (size_t)ml);
	} else if (kind == KNYTT_MODEL_LIGHTGCN) {
		if ((rc = knytt_lightgcn_create(lgc)) == KNYTT_OK)
			rc = knytt_lightgcn_load_buffer(*lgc, mb, (size_t)ml);
	} else {
		if ((rc = knytt_twotower_create(tt)) == KNYTT_OK)
			rc = knytt_twotower_load_buffer(*tt, mb, (size_t)ml);
	}
	/* The model must be the one the header describes: a row per stored
	 * id and the engine's dimension, since the engine copies n x dim
	 * floats out of it.  (A blob with fewer ids than model rows once
	 * overflowed the copy at knytt_engine_open.) */
	uint32_t mi = 0, md = 0;
	if (rc == KNYTT_OK) {
		mi = *als ? knytt_als_items(*als)
		     : *lgc ? knytt_lightgcn_items(*lgc)
			    : (uint32_t)knytt_twotower_count_items(*tt);
		md = *als ? knytt_als_factors(*als)
		     : *lgc ? knytt_lightgcn_dim(*lgc)
			    : knytt_twotower_dim(*tt);
	}
	if (rc == KNYTT_OK && (mi != n || md != dim))
		rc = knytt__err(KNYTT_ECORRUPT,
				"stored engine model: the model has %u items "
				"of dimension %u, the header %u of %u",
				mi, md, n, dim);
	if (rc == KNYTT_OK && ql)
		rc = knytt__qterms_read(mb + ml, (size_t)ql, dim, qm);
	/* the session model ranks the same item rows */
	if (rc == KNYTT_OK && sl && (rc = knytt_sasrec_create(sr)) == KNYTT_OK)
		rc = knytt_sasrec_load_buffer(*sr, mb + ml + ql, (size_t)sl);
	if (rc == KNYTT_OK && *sr && knytt_sasrec_items(*sr) != n)
		rc = knytt__err(KNYTT_ECORRUPT,
				"stored engine model: the session model has "
				"%u items, the header %u",
				knytt_sasrec_items(*sr), n);
	if (rc) {
		knytt_sasrec_close(*sr);
		*sr = NULL;
		knytt__qterms_free(*qm);
		*qm = NULL;
		knytt_als_close(*als);
		knytt_twotower_close(*tt);
		knytt_lightgcn_close(*lgc);
		*als = NULL;
		*tt = NULL;
		*lgc = NULL;
		free(ids);
		return rc;
	}
	*items = ids;
	*nitems = n;
	return KNYTT_OK;
}
