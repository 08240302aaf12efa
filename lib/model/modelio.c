/*
 * modelio.c -- ALS models to and from files and memory.
 *
 * Layout (little-endian), version 1:
 *   0  "KNYTTALS"   magic, 8 bytes
 *   8  u32 version  (1)
 *  12  u32 header   size of the header in bytes (64)
 *  16  u32 k        factors
 *  20  u32 nusers
 *  24  u32 nitems
 *  28  u32 solver   knytt_als_solver
 *  32  u32 cg_steps
 *  36  u32 iters
 *  40  f32 reg      IEEE-754 bits
 *  44  f32 alpha
 *  48  u64 seed
 *  56  f32 nu       exponent of the frequency-scaled reg (0 = plain)
 *  60  4 bytes zero (reserved)
 *  64  nusers * k f32 user factors, then nitems * k f32 item factors
 *  end u32 CRC-32C of every byte before it
 * The header size lets a later version append fields that older readers
 * skip; a newer version number is refused with KNYTT_EVERSION.
 */
#include "model.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ALS_MAGIC "KNYTTALS"
#define ALS_VERSION 1u
#define ALS_HEADER 64u

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

int knytt_als_save_buffer(const knytt_als *als, void **buf, size_t *len)
{
	if (!als || !buf || !len)
		return knytt__err(KNYTT_EINVAL,
				  "model, buf and len must not be NULL");
	if (!als->trained)
		return knytt__err(KNYTT_ESTATE, "model not trained");
	size_t nf = ((size_t)als->nusers + als->nitems) * als->k;
	size_t n = ALS_HEADER + nf * 4 + 4;
	unsigned char *b = calloc(1, n);
	if (!b)
		return knytt__err(KNYTT_ENOMEM, "no memory for %zu bytes", n);
	memcpy(b, ALS_MAGIC, 8);
	knytt__put_u32(b + 8, ALS_VERSION);
	knytt__put_u32(b + 12, ALS_HEADER);
	knytt__put_u32(b + 16, als->k);
	knytt__put_u32(b + 20, als->nusers);
	knytt__put_u32(b + 24, als->nitems);
	knytt__put_u32(b + 28, (uint32_t)als->solver);
	knytt__put_u32(b + 32, als->cg_steps);
	knytt__put_u32(b + 36, als->iters);
	knytt__put_u32(b + 40, f2u(als->reg));
	knytt__put_u32(b + 44, f2u(als->alpha));
	knytt__put_u64(b + 48, als->seed);
	knytt__put_u32(b + 56, f2u(als->nu));
	unsigned char *p = b + ALS_HEADER;
	for (int side = 0; side < 2; side++) {
		const float *M = side ? als->Y : als->X;
		uint32_t rows = side ? als->nitems : als->nusers;
		for (size_t r = 0; r < rows; r++)
			for (unsigned t = 0; t < als->k; t++, p += 4)
				knytt__put_u32(p, f2u(M[r * als->kp + t]));
	}
	knytt__put_u32(p, knytt__crc32c(0, b, n - 4));
	*buf = b;
	*len = n;
	return KNYTT_OK;
}

int knytt_als_load_buffer(knytt_als *als, const void *buf, size_t len)
{
	if (!als || (!buf && len))
		return knytt__err(KNYTT_EINVAL, "model and buf must not be NULL");
	if (als->trained)
		return knytt__err(KNYTT_ESTATE,
				  "model already trained or loaded: use a "
				  "new handle");
	const unsigned char *b = buf;
	if (len < 16 || memcmp(b, ALS_MAGIC, 8) != 0)
		return knytt__err(KNYTT_ECORRUPT,
				  "not a knytt ALS model (bad magic or %zu "
				  "bytes)",
				  len);
	uint32_t ver = knytt__get_u32(b + 8), hdr = knytt__get_u32(b + 12);
	if (ver > ALS_VERSION)
		return knytt__err(KNYTT_EVERSION,
				  "ALS model format version %u, this library "
				  "reads up to %u",
				  ver, ALS_VERSION);
	if (ver == 0 || hdr < ALS_HEADER || len < (size_t)hdr + 4)
		return knytt__err(KNYTT_ECORRUPT,
				  "ALS model truncated or bad header (version "
				  "%u, header %u, %zu bytes)",
				  ver, hdr, len);
	uint32_t crc = knytt__get_u32(b + len - 4);
	if (knytt__crc32c(0, b, len - 4) != crc)
		return knytt__err(KNYTT_ECORRUPT,
				  "ALS model checksum mismatch: the data is "
				  "damaged or truncated");
	uint32_t k = knytt__get_u32(b + 16), nu = knytt__get_u32(b + 20);
	uint32_t ni = knytt__get_u32(b + 24), solver = knytt__get_u32(b + 28);
	uint32_t steps = knytt__get_u32(b + 32), iters = knytt__get_u32(b + 36);
	float reg = u2f(knytt__get_u32(b + 40));
	float alpha = u2f(knytt__get_u32(b + 44));
	float rexp = u2f(knytt__get_u32(b + 56));
	if (k < 1 || k > 1024 || (solver != KNYTT_ALS_CG &&
				  solver != KNYTT_ALS_CHOLESKY) ||
	    !(reg >= 0) || !(alpha >= 0) || !(rexp >= 0 && rexp <= 2) ||
	    steps < 1 || steps > 1000)
		return knytt__err(KNYTT_ECORRUPT,
				  "ALS model header has invalid settings");
	size_t nf = ((size_t)nu + ni) * k;
	if ((size_t)hdr + nf * 4 + 4 != len)
		return knytt__err(KNYTT_ECORRUPT,
				  "ALS model of %u x %u factors needs %zu "
				  "bytes, got %zu",
				  nu + ni, k, (size_t)hdr + nf * 4 + 4, len);
	als->k = k;
	als->solver = (knytt_als_solver)solver;
	als->cg_steps = steps;
	als->iters = iters;
	als->reg = reg;
	als->alpha = alpha;
	als->nu = rexp;
	als->seed = knytt__get_u64(b + 48);
	if (knytt__als_alloc(als, nu, ni) != 0)
		return knytt__err(KNYTT_ENOMEM, "no memory for %u x %u factors",
				  nu + ni, k);
	const unsigned char *p = b + hdr;
	for (int side = 0; side < 2; side++) {
		float *M = side ? als->Y : als->X;
		uint32_t rows = side ? ni : nu;
		for (size_t r = 0; r < rows; r++)
			for (unsigned t = 0; t < k; t++, p += 4)
				M[r * als->kp + t] = u2f(knytt__get_u32(p));
	}
	knytt__als_gram_items(als);
	als->trained = true;
	return KNYTT_OK;
}

int knytt_als_save(const knytt_als *als, const char *path)
{
	if (!path)
		return knytt__err(KNYTT_EINVAL, "path must not be NULL");
	void *buf;
	size_t len;
	int rc = knytt_als_save_buffer(als, &buf, &len);
	return rc ? rc : knytt__write_owned(path, buf, len);
}

int knytt_als_load(knytt_als *als, const char *path)
{
	if (!als || !path)
		return knytt__err(KNYTT_EINVAL, "model and path must not be NULL");
	if (als->trained)
		return knytt__err(KNYTT_ESTATE,
				  "model already trained or loaded: use a "
				  "new handle");
	unsigned char *buf;
	size_t len;
	int rc = knytt__read_file(path, &buf, &len);
	if (rc)
		return rc;
	rc = knytt__path_err(path, knytt_als_load_buffer(als, buf, len));
	free(buf);
	return rc;
}
