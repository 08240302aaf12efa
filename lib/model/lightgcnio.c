/*
 * lightgcnio.c -- LightGCN models to and from files and memory.
 *
 * Layout (little-endian), version 1:
 *   0  "KNYTTLGC"   magic, 8 bytes
 *   8  u32 version  (1)
 *  12  u32 header   size of the header in bytes (64)
 *  16  u32 dim
 *  20  u32 layers
 *  24  u32 nusers
 *  28  u32 nitems
 *  32  u32 epochs
 *  36  u32 batch
 *  40  f32 reg      IEEE-754 bits
 *  44  f32 lr
 *  48  u64 seed
 *  56  8 bytes zero (reserved)
 *  64  (nusers + nitems) * dim f32 final embeddings (users, then items),
 *      then nitems * dim f32 fold-in vectors
 *  end u32 CRC-32C of every byte before it
 * Only what serving needs is kept: the layer-0 embeddings and Adam's
 * moments are training state, so a loaded model scores and folds in but
 * does not resume training.  The header size lets a later version append
 * fields older readers skip; a newer version is refused (KNYTT_EVERSION).
 */
#include "lightgcn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LGC_MAGIC "KNYTTLGC"
#define LGC_VERSION 1u
#define LGC_HEADER 64u

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

/* Floats of the body: embeddings then fold-in vectors. */
static size_t body_floats(uint32_t dim, uint32_t nu, uint32_t ni)
{
	return ((size_t)nu + 2 * (size_t)ni) * dim;
}

int knytt_lightgcn_save_buffer(const knytt_lightgcn *g, void **buf,
			       size_t *len)
{
	if (!g || !buf || !len)
		return knytt__err(KNYTT_EINVAL,
				  "model, buf and len must not be NULL");
	if (!g->trained)
		return knytt__err(KNYTT_ESTATE, "model not trained");
	size_t ne = ((size_t)g->nusers + g->nitems) * g->dim;
	size_t nf = (size_t)g->nitems * g->dim;
	size_t n = LGC_HEADER + (ne + nf) * 4 + 4;
	unsigned char *b = calloc(1, n);
	if (!b)
		return knytt__err(KNYTT_ENOMEM, "no memory for %zu bytes", n);
	memcpy(b, LGC_MAGIC, 8);
	knytt__put_u32(b + 8, LGC_VERSION);
	knytt__put_u32(b + 12, LGC_HEADER);
	knytt__put_u32(b + 16, g->dim);
	knytt__put_u32(b + 20, g->layers);
	knytt__put_u32(b + 24, g->nusers);
	knytt__put_u32(b + 28, g->nitems);
	knytt__put_u32(b + 32, g->epochs);
	knytt__put_u32(b + 36, g->batch);
	knytt__put_u32(b + 40, f2u(g->reg));
	knytt__put_u32(b + 44, f2u(g->lr));
	knytt__put_u64(b + 48, g->seed);
	unsigned char *p = b + LGC_HEADER;
	for (size_t j = 0; j < ne; j++, p += 4)
		knytt__put_u32(p, f2u(g->E[j]));
	for (size_t j = 0; j < nf; j++, p += 4)
		knytt__put_u32(p, f2u(g->F[j]));
	knytt__put_u32(p, knytt__crc32c(0, b, n - 4));
	*buf = b;
	*len = n;
	return KNYTT_OK;
}

/* Checks magic, version, size and checksum; fills the header fields. */
static int check_buffer(const unsigned char *b, size_t len, uint32_t *hdr)
{
	if (len < 16 || memcmp(b, LGC_MAGIC, 8) != 0)
		return knytt__err(KNYTT_ECORRUPT,
				  "not a knytt LightGCN model (bad magic or "
				  "%zu bytes)",
				  len);
	uint32_t ver = knytt__get_u32(b + 8);
	*hdr = knytt__get_u32(b + 12);
	if (ver > LGC_VERSION)
		return knytt__err(KNYTT_EVERSION,
				  "LightGCN model format version %u, this "
				  "library reads up to %u",
				  ver, LGC_VERSION);
	if (ver == 0 || *hdr < LGC_HEADER || len < (size_t)*hdr + 4)
		return knytt__err(KNYTT_ECORRUPT,
				  "LightGCN model truncated or bad header "
				  "(version %u, header %u, %zu bytes)",
				  ver, *hdr, len);
	if (knytt__crc32c(0, b, len - 4) != knytt__get_u32(b + len - 4))
		return knytt__err(KNYTT_ECORRUPT,
				  "LightGCN model checksum mismatch: the data "
				  "is damaged or truncated");
	return KNYTT_OK;
}

int knytt_lightgcn_load_buffer(knytt_lightgcn *g, const void *buf,
			       size_t len)
{
	if (!g || (!buf && len))
		return knytt__err(KNYTT_EINVAL, "model and buf must not be NULL");
	if (g->trained)
		return knytt__err(KNYTT_ESTATE,
				  "model already trained or loaded: use a "
				  "new handle");
	const unsigned char *b = buf;
	uint32_t hdr = 0;
	int rc = check_buffer(b, len, &hdr);
	if (rc)
		return rc;
	uint32_t dim = knytt__get_u32(b + 16), layers = knytt__get_u32(b + 20);
	uint32_t nu = knytt__get_u32(b + 24), ni = knytt__get_u32(b + 28);
	uint32_t epochs = knytt__get_u32(b + 32), batch = knytt__get_u32(b + 36);
	float reg = u2f(knytt__get_u32(b + 40)), lr = u2f(knytt__get_u32(b + 44));
	if (dim < 1 || dim > 1024 || layers > 8 || !(reg >= 0) ||
	    !(lr > 0) || epochs < 1 || batch < 1 || nu == 0 || ni == 0)
		return knytt__err(KNYTT_ECORRUPT,
				  "LightGCN model header has invalid settings");
	size_t need = (size_t)hdr + body_floats(dim, nu, ni) * 4 + 4;
	if (need != len)
		return knytt__err(KNYTT_ECORRUPT,
				  "LightGCN model of %u users, %u items, dim "
				  "%u needs %zu bytes, got %zu",
				  nu, ni, dim, need, len);
	g->dim = dim;
	g->layers = layers;
	g->epochs = epochs;
	g->batch = batch;
	g->reg = reg;
	g->lr = lr;
	g->seed = knytt__get_u64(b + 48);
	if (knytt__lgc_alloc(g, nu, ni) != 0)
		return knytt__err(KNYTT_ENOMEM,
				  "no memory for %u x %u embeddings", nu + ni,
				  dim);
	const unsigned char *p = b + hdr;
	size_t ne = ((size_t)nu + ni) * dim, nf = (size_t)ni * dim;
	for (size_t j = 0; j < ne; j++, p += 4)
		g->E[j] = u2f(knytt__get_u32(p));
	for (size_t j = 0; j < nf; j++, p += 4)
		g->F[j] = u2f(knytt__get_u32(p));
	g->trained = true;
	return KNYTT_OK;
}

int knytt_lightgcn_save(const knytt_lightgcn *g, const char *path)
{
	if (!path)
		return knytt__err(KNYTT_EINVAL, "path must not be NULL");
	void *buf;
	size_t len;
	int rc = knytt_lightgcn_save_buffer(g, &buf, &len);
	return rc ? rc : knytt__write_owned(path, buf, len);
}

int knytt_lightgcn_load(knytt_lightgcn *g, const char *path)
{
	if (!g || !path)
		return knytt__err(KNYTT_EINVAL, "model and path must not be NULL");
	if (g->trained)
		return knytt__err(KNYTT_ESTATE,
				  "model already trained or loaded: use a "
				  "new handle");
	unsigned char *buf = NULL;
	size_t len = 0;
	int rc = knytt__read_file(path, &buf, &len);
	if (rc)
		return rc;
	rc = knytt__path_err(path, knytt_lightgcn_load_buffer(g, buf, len));
	free(buf);
	return rc;
}
