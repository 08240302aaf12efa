/*
 * sasrecio.c -- sequence models to and from files and memory.
 *
 * Layout (little-endian), version 1:
 *   0  "KNYTTSQR"   magic, 8 bytes
 *   8  u32 version  (1)
 *  12  u32 header   size of the header in bytes (64)
 *  16  u32 dim
 *  20  u32 blocks
 *  24  u32 max_len  L, positions
 *  28  u32 nitems
 *  32  u32 epochs
 *  36  u32 batch
 *  40  f32 dropout  IEEE-754 bits
 *  44  f32 lr
 *  48  u64 seed
 *  56  8 bytes zero (reserved)
 *  64  every parameter, f32, in the order of sasrec.h's flat layout
 *      (item embeddings, positions, blocks, final layer norm)
 *  end u32 CRC-32C of every byte before it
 * Adam's moments are training state and are not kept: a loaded model
 * scores but does not resume training.  The header size lets a later
 * version append fields older readers skip; a newer version is refused
 * (KNYTT_EVERSION).
 */
#include "sasrec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SR_MAGIC "KNYTTSQR"
#define SR_VERSION 1u
#define SR_HEADER 64u

static uint32_t f2u(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

static float u2f(uint32_t u)
{
	float f;
	memcpy(&f, &u, 4);
	return f;
}

int knytt_sasrec_save_buffer(const knytt_sasrec *s, void **buf, size_t *len)
{
	if (!s || !buf || !len)
		return knytt__err(KNYTT_EINVAL,
				  "model, buf and len must not be NULL");
	if (!s->trained)
		return knytt__err(KNYTT_ESTATE, "model not trained");
	const knytt__sr_shape *sh = &s->shape;
	size_t n = SR_HEADER + sh->total * 4 + 4;
	unsigned char *b = calloc(1, n);
	if (!b)
		return knytt__err(KNYTT_ENOMEM, "no memory for %zu bytes", n);
	memcpy(b, SR_MAGIC, 8);
	knytt__put_u32(b + 8, SR_VERSION);
	knytt__put_u32(b + 12, SR_HEADER);
	knytt__put_u32(b + 16, sh->d);
	knytt__put_u32(b + 20, sh->blocks);
	knytt__put_u32(b + 24, sh->L);
	knytt__put_u32(b + 28, sh->nitems);
	knytt__put_u32(b + 32, s->epochs);
	knytt__put_u32(b + 36, s->batch);
	knytt__put_u32(b + 40, f2u(s->dropout));
	knytt__put_u32(b + 44, f2u(s->lr));
	knytt__put_u64(b + 48, s->seed);
	unsigned char *p = b + SR_HEADER;
	for (size_t j = 0; j < sh->total; j++, p += 4)
		knytt__put_u32(p, f2u(s->W[j]));
	knytt__put_u32(p, knytt__crc32c(0, b, n - 4));
	*buf = b;
	*len = n;
	return KNYTT_OK;
}

/* Checks magic, version, size and checksum; fills the header size. */
static int check_buffer(const unsigned char *b, size_t len, uint32_t *hdr)
{
	if (len < 16 || memcmp(b, SR_MAGIC, 8) != 0)
		return knytt__err(KNYTT_ECORRUPT,
				  "not a knytt sequence model (bad magic or "
				  "%zu bytes)",
				  len);
	uint32_t ver = knytt__get_u32(b + 8);
	*hdr = knytt__get_u32(b + 12);
	if (ver > SR_VERSION)
		return knytt__err(KNYTT_EVERSION,
				  "sequence model format version %u, this "
				  "library reads up to %u",
				  ver, SR_VERSION);
	if (ver == 0 || *hdr < SR_HEADER || len < (size_t)*hdr + 4)
		return knytt__err(KNYTT_ECORRUPT,
				  "sequence model truncated or bad header "
				  "(version %u, header %u, %zu bytes)",
				  ver, *hdr, len);
	if (knytt__crc32c(0, b, len - 4) != knytt__get_u32(b + len - 4))
		return knytt__err(KNYTT_ECORRUPT,
				  "sequence model checksum mismatch: the data "
				  "is damaged or truncated");
	return KNYTT_OK;
}

/* The settings of the header into s (checked); 0 or KNYTT_ECORRUPT. */
static int read_header(knytt_sasrec *s, const unsigned char *b)
{
	uint32_t d = knytt__get_u32(b + 16), blocks = knytt__get_u32(b + 20);
	uint32_t L = knytt__get_u32(b + 24), ni = knytt__get_u32(b + 28);
	uint32_t epochs = knytt__get_u32(b + 32), batch = knytt__get_u32(b + 36);
	float drop = u2f(knytt__get_u32(b + 40));
	float lr = u2f(knytt__get_u32(b + 44));
	if (d < 1 || d > 1024 || blocks < 1 || blocks > 8 || L < 1 ||
	    L > 4096 || ni == 0 || epochs < 1 || batch < 1 ||
	    !(drop >= 0.0f && drop <= 0.9f) || !(lr > 0.0f && lr < 1e3f))
		return knytt__err(KNYTT_ECORRUPT,
				  "sequence model header has invalid "
				  "settings");
	s->dim = d;
	s->blocks = blocks;
	s->max_len = L;
	s->epochs = epochs;
	s->batch = batch;
	s->dropout = drop;
	s->lr = lr;
	s->seed = knytt__get_u64(b + 48);
	knytt__sr_shape_init(&s->shape, d, L, blocks, ni);
	return KNYTT_OK;
}

int knytt_sasrec_load_buffer(knytt_sasrec *s, const void *buf, size_t len)
{
	if (!s || (!buf && len))
		return knytt__err(KNYTT_EINVAL, "model and buf must not be NULL");
	if (s->trained)
		return knytt__err(KNYTT_ESTATE,
				  "model already trained or loaded: use a "
				  "new handle");
	const unsigned char *b = buf;
	uint32_t hdr = 0;
	int rc = check_buffer(b, len, &hdr);
	if (rc)
		return rc;
	knytt_sasrec tmp = *s;
	if ((rc = read_header(&tmp, b)) != 0)
		return rc;
	size_t need = (size_t)hdr + tmp.shape.total * 4 + 4;
	if (need != len)
		return knytt__err(KNYTT_ECORRUPT,
				  "sequence model of %u items, dim %u, %u "
				  "blocks, length %u needs %zu bytes, got %zu",
				  tmp.shape.nitems, tmp.shape.d,
				  tmp.shape.blocks, tmp.shape.L, need, len);
	tmp.W = knytt__aalloc(tmp.shape.total * sizeof(float));
	if (!tmp.W)
		return knytt__err(KNYTT_ENOMEM,
				  "no memory for %zu parameters",
				  tmp.shape.total);
	const unsigned char *p = b + hdr;
	for (size_t j = 0; j < tmp.shape.total; j++, p += 4)
		tmp.W[j] = u2f(knytt__get_u32(p));
	tmp.trained = true;
	*s = tmp;
	return KNYTT_OK;
}

int knytt_sasrec_save(const knytt_sasrec *s, const char *path)
{
	if (!path)
		return knytt__err(KNYTT_EINVAL, "path must not be NULL");
	void *buf;
	size_t len;
	int rc = knytt_sasrec_save_buffer(s, &buf, &len);
	return rc ? rc : knytt__write_owned(path, buf, len);
}

int knytt_sasrec_load(knytt_sasrec *s, const char *path)
{
	if (!s || !path)
		return knytt__err(KNYTT_EINVAL, "model and path must not be NULL");
	if (s->trained)
		return knytt__err(KNYTT_ESTATE,
				  "model already trained or loaded: use a "
				  "new handle");
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc = knytt__read_file(path, &buf, &len);
	if (rc)
		return rc;
	rc = knytt__path_err(path, knytt_sasrec_load_buffer(s, buf, len));
	free(buf);
	return rc;
}
