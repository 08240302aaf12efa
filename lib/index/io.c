/*
 * io.c -- knytt_index_save / knytt_index_load.
 *
 * File format, version 4.  All integers little-endian.
 *
 *   0    8  magic "KNYTTIDX"
 *   8    4  format version: 4 for int8-only residual codes (header byte
 *           116 and the quantizer section's cells), 3 for f16 vectors
 *           (KNYTT_QUANT_F16), which readers of version 2 cannot use;
 *           else 2, or 1 for the packed
 *           level-0 layout (index_impl.h).  All three are read, and an
 *           index keeps the layout, and so the version, of the file it
 *           came from; a file is written with the lowest version that
 *           can hold it, so older readers load what they can
 *   12   4  endian tag 0x01020304
 *   16   4  header size (256)
 *   20  ... settings and counts (see put_header), section offsets
 *   160  8  file size
 *   168  4  CRC-32C of bytes [256, file size)
 *   176 32  owner tag (knytt__index_set_owner; zero = none; files from
 *           before the tag have zeros there, so the format stays 1)
 *   252  4  CRC-32C of bytes [0, 252)
 *
 * Sections follow at 64-byte aligned offsets: level-0 blocks (nslots x
 * block, byte for byte the in-memory layout), uoff (nslots x u32), the
 * upper-level pool (upool_n x u32), f32 vectors (INT8 mode) and the
 * quantizer's centres (the int8 modes: dim floats; residual codes, u32
 * qcells at header byte 116, then dim steps and qcells x dim cell
 * centres).
 *
 * Load maps the file (MAP_PRIVATE: later writes copy pages, never touch
 * the file), verifies both checksums, then every structural invariant a
 * search relies on (link targets, counts, levels, pool offsets, label
 * uniqueness), so even a file with valid checksums but inconsistent
 * content is refused with KNYTT_ECORRUPT instead of crashing a search.
 * The level-0 blocks and f32 vectors are used in place from the mapping;
 * the first growth copies them to the heap.
 */
#include "hnsw.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HDR 256
#define FORMAT_VERSION 4

static size_t align64(size_t x)
{
	return (x + 63) & ~(size_t)63;
}

typedef struct sections {
	size_t l0, uoff, upool, f32, qmid, end;
} sections;

static sections layout_sections(const knytt_index *ix, size_t nslots,
				size_t upool_n)
{
	sections s;
	s.l0 = HDR;
	s.uoff = align64(s.l0 + nslots * ix->block);
	s.upool = align64(s.uoff + nslots * 4);
	s.f32 = align64(s.upool + upool_n * 4);
	s.qmid = align64(s.f32 + (ix->quant == KNYTT_QUANT_INT8
					  ? nslots * ix->dim * 4
					  : 0));
	s.end = s.qmid + (knytt__is_i8(ix) ? ix->dim * 4 : 0) +
		(size_t)(ix->qcells ? ix->qcells + 1 : 0) * ix->dim * 4;
	return s;
}

/* write_all that also carries the file's CRC-32C */
static int write_all(int fd, const void *p, size_t n, uint32_t *crc)
{
	if (crc)
		*crc = knytt__crc32c(*crc, p, n);
	return knytt__write_all(fd, p, n);
}

static int pad_to(int fd, size_t *off, size_t target, uint32_t *crc)
{
	static const unsigned char zeros[64];
	while (*off < target) {
		size_t n = target - *off > 64 ? 64 : target - *off;
		if (write_all(fd, zeros, n, crc))
			return -1;
		*off += n;
	}
	return 0;
}

int knytt_index_save(const knytt_index *ix, const char *path)
{
	if (!ix || !path)
		return knytt__err(KNYTT_EINVAL, "knytt_index_save: %s is NULL",
				  !ix ? "index" : "path");
	if (!ix->is_open)
		return knytt__err(KNYTT_ESTATE, "knytt_index_save: index is "
						"not open");
	if (!knytt__host_le())
		return knytt__err(KNYTT_ENOTSUP,
				  "saving from a big-endian host is not "
				  "supported");
	knytt__atomic_file af;
	int rc = knytt__atomic_begin(&af, path);
	if (rc)
		return rc;
	int fd = af.fd;
	knytt_index *w = (knytt_index *)ix;
	pthread_rwlock_rdlock(&w->rw);
	size_t ns = ix->nslots;
	sections s = layout_sections(ix, ns, ix->upool_n);
	unsigned char h[HDR];
	memset(h, 0, sizeof h);
	memcpy(h, "KNYTTIDX", 8);
	knytt__put_u32(h + 8, ix->format1			? 1u
			      : ix->qcells			? 4u
			      : ix->quant == KNYTT_QUANT_F16 ? 3u
							     : 2u);
	knytt__put_u32(h + 12, 0x01020304u);
	knytt__put_u32(h + 16, HDR);
	knytt__put_u32(h + 20, (uint32_t)ix->kind);
	knytt__put_u32(h + 24, (uint32_t)ix->metric);
	knytt__put_u32(h + 28, (uint32_t)ix->quant);
	knytt__put_u32(h + 32, ix->dim);
	knytt__put_u32(h + 36, ix->m);
	knytt__put_u32(h + 40, ix->m0);
	knytt__put_u32(h + 44, ix->efc);
	knytt__put_u32(h + 48, ix->ef_default);
	knytt__put_u32(h + 52, (uint32_t)ix->maxlevel);
	knytt__put_u32(h + 56, ix->entry);
	knytt__put_u32(h + 60, (uint32_t)ix->qtrained);
	knytt__put_u64(h + 64, ix->seed);
	knytt__put_u64(h + 72, ix->rng);
	knytt__put_u64(h + 80, ns);
	knytt__put_u64(h + 88, ix->count);
	knytt__put_u64(h + 96, ix->block);
	knytt__put_u64(h + 104, ix->upool_n);
	uint32_t qs;
	memcpy(&qs, &ix->qstep, 4);
	knytt__put_u32(h + 112, qs);
	knytt__put_u32(h + 116, ix->qcells);
	knytt__put_u64(h + 120, s.l0);
	knytt__put_u64(h + 128, s.uoff);
	knytt__put_u64(h + 136, s.upool);
	knytt__put_u64(h + 144, s.f32);
	knytt__put_u64(h + 152, s.qmid);
	knytt__put_u64(h + 160, s.end);
	memcpy(h + 176, ix->owner, KNYTT__INDEX_OWNER);

	uint32_t crc = 0;
	size_t off = HDR;
	int bad = pad_to(fd, &(size_t){ 0 }, HDR, NULL); /* header slot */
	bad = bad || write_all(fd, ix->l0, ns * ix->block, &crc);
	off += ns * ix->block;
	bad = bad || pad_to(fd, &off, s.uoff, &crc) ||
	      write_all(fd, ix->uoff, ns * 4, &crc);
	off += ns * 4;
	bad = bad || pad_to(fd, &off, s.upool, &crc);
	if (ix->upool) {
		bad = bad || write_all(fd, ix->upool, ix->upool_n * 4, &crc);
		off += ix->upool_n * 4;
	} else { /* nothing added yet: the pool is its unused slot 0 */
		bad = bad || pad_to(fd, &off, off + ix->upool_n * 4, &crc);
	}
	bad = bad || pad_to(fd, &off, s.f32, &crc);
	if (ix->quant == KNYTT_QUANT_INT8) {
		bad = bad || write_all(fd, ix->f32, ns * ix->dim * 4, &crc);
		off += ns * ix->dim * 4;
	}
	bad = bad || pad_to(fd, &off, s.qmid, &crc);
	if (knytt__is_i8(ix))
		bad = bad || write_all(fd, ix->qmid, ix->dim * 4, &crc);
	if (ix->qcells)
		bad = bad || write_all(fd, ix->qsv, ix->dim * 4, &crc) ||
		      write_all(fd, ix->qcen,
				(size_t)ix->qcells * ix->dim * 4, &crc);
	pthread_rwlock_unlock(&w->rw);

	knytt__put_u32(h + 168, crc);
	knytt__put_u32(h + 252, knytt__crc32c(0, h, 252));
	bad = bad || pwrite(fd, h, HDR, 0) != HDR;
	return knytt__atomic_commit(&af, bad);
}

void knytt__index_set_owner(knytt_index *ix,
			    const unsigned char tag[KNYTT__INDEX_OWNER])
{
	memcpy(ix->owner, tag, KNYTT__INDEX_OWNER);
}

void knytt__index_owner(const knytt_index *ix,
			unsigned char out[KNYTT__INDEX_OWNER])
{
	memcpy(out, ix->owner, KNYTT__INDEX_OWNER);
}

/* --------------------------------------------------------------------- load */

#define CORRUPT(...) knytt__err(KNYTT_ECORRUPT, __VA_ARGS__)

static int validate_graph(const knytt_index *ix, const char *path)
{
	size_t live = 0;
	for (size_t s = 0; s < ix->nslots; s++) {
		uint32_t id = (uint32_t)s;
		const uint32_t *l0 = knytt__list(ix, id, 0);
		int lv = knytt__level(ix, id);
		uint16_t fl = knytt__flags(ix, id);
		if (l0[0] > ix->m0 || lv > KNYTT__MAX_LEVEL ||
		    (fl & ~NODE_DELETED))
			return CORRUPT("%s: node %zu has a bad header", path, s);
		/* residual codes: the cell's number indexes the centres */
		if (ix->qcells && knytt__vecp(ix, id)[ix->dim] >= ix->qcells)
			return CORRUPT("%s: node %zu has cell %u of %u", path,
				       s, knytt__vecp(ix, id)[ix->dim],
				       ix->qcells);
		for (uint32_t j = 0; j < l0[0]; j++)
			if (l0[1 + j] >= ix->nslots)
				return CORRUPT("%s: node %zu links outside "
					       "the index",
					       path, s);
		if (lv > 0) {
			uint32_t u = ix->uoff[s];
			if (u == 0 || u > ix->upool_n ||
			    ix->upool[u - 1] < (uint32_t)lv ||
			    (size_t)u + (size_t)ix->upool[u - 1] * (ix->m + 1) >
				    ix->upool_n)
				return CORRUPT("%s: node %zu has a bad upper "
					       "level offset",
					       path, s);
			for (int l = 1; l <= lv; l++) {
				const uint32_t *ul = knytt__list(ix, id, l);
				if (ul[0] > ix->m)
					return CORRUPT("%s: node %zu level %d "
						       "has too many links",
						       path, s, l);
				for (uint32_t j = 0; j < ul[0]; j++)
					if (ul[1 + j] >= ix->nslots)
						return CORRUPT(
							"%s: node %zu links "
							"outside the index",
							path, s);
			}
		}
		if (!(fl & NODE_DELETED))
			live++;
	}
	if (live != ix->count)
		return CORRUPT("%s: %zu live nodes, header says %zu", path, live,
			       ix->count);
	if (ix->maxlevel >= 0 &&
	    (ix->entry >= ix->nslots ||
	     (knytt__flags(ix, ix->entry) & NODE_DELETED) ||
	     knytt__level(ix, ix->entry) != ix->maxlevel))
		return CORRUPT("%s: bad entry point", path);
	if (ix->maxlevel < 0 && ix->count > 0 && ix->kind == KNYTT_INDEX_HNSW)
		return CORRUPT("%s: vectors but no entry point", path);
	return KNYTT_OK;
}

static int load_mapped(knytt_index *ix, const unsigned char *p, size_t len,
		       const char *path)
{
	if (len < HDR)
		return CORRUPT("%s: truncated: %zu bytes, a header needs %d",
			       path, len, HDR);
	if (memcmp(p, "KNYTTIDX", 8) != 0)
		return CORRUPT("%s: not a knytt index file (bad magic)", path);
	if (knytt__get_u32(p + 252) != knytt__crc32c(0, p, 252))
		return CORRUPT("%s: header checksum mismatch", path);
	if (knytt__get_u32(p + 12) != 0x01020304u)
		return CORRUPT("%s: bad endian tag", path);
	uint32_t ver = knytt__get_u32(p + 8);
	if (ver > FORMAT_VERSION)
		return knytt__err(KNYTT_EVERSION,
				  "%s: format version %u is newer than this "
				  "library reads (%d)",
				  path, ver, FORMAT_VERSION);
	if (ver == 0 || knytt__get_u32(p + 16) != HDR)
		return CORRUPT("%s: bad version or header size", path);
	uint64_t fsize = knytt__get_u64(p + 160);
	if (fsize != len)
		return CORRUPT("%s: truncated or padded: %zu bytes, header "
			       "says %llu",
			       path, len, (unsigned long long)fsize);
	if (knytt__get_u32(p + 168) != knytt__crc32c(0, p + HDR, len - HDR))
		return CORRUPT("%s: data checksum mismatch", path);

	memcpy(ix->owner, p + 176, KNYTT__INDEX_OWNER);
	ix->kind = (knytt_index_kind)knytt__get_u32(p + 20);
	ix->metric = (knytt_metric)knytt__get_u32(p + 24);
	ix->quant = (knytt_quant)knytt__get_u32(p + 28);
	ix->dim = knytt__get_u32(p + 32);
	ix->m = knytt__get_u32(p + 36);
	ix->efc = knytt__get_u32(p + 44);
	ix->ef_default = knytt__get_u32(p + 48);
	ix->maxlevel = (int32_t)knytt__get_u32(p + 52);
	ix->entry = knytt__get_u32(p + 56);
	ix->qtrained = (int)knytt__get_u32(p + 60);
	ix->seed = knytt__get_u64(p + 64);
	ix->rng = knytt__get_u64(p + 72);
	uint64_t ns = knytt__get_u64(p + 80);
	ix->count = (size_t)knytt__get_u64(p + 88);
	uint64_t block = knytt__get_u64(p + 96);
	uint64_t upn = knytt__get_u64(p + 104);
	uint32_t qs = knytt__get_u32(p + 112);
	memcpy(&ix->qstep, &qs, 4);
	ix->qcells = knytt__get_u32(p + 116);
	if ((ix->kind != KNYTT_INDEX_HNSW && ix->kind != KNYTT_INDEX_FLAT) ||
	    ix->metric < KNYTT_METRIC_L2 || ix->metric > KNYTT_METRIC_COSINE ||
	    (unsigned)ix->quant > KNYTT_QUANT_F16 ||
	    (ix->quant == KNYTT_QUANT_F16 && ver < 3) ||
	    (ix->qcells && (ver < 4 || ix->quant != KNYTT_QUANT_INT8_ONLY ||
			    !ix->qtrained || ix->qcells > 256)) ||
	    ix->dim == 0 ||
	    ix->dim > KNYTT__MAX_DIM || ix->m < 2 || ix->m > 64 ||
	    ix->maxlevel < -1 || ix->maxlevel > KNYTT__MAX_LEVEL ||
	    ns > UINT32_MAX - 16 || ix->count > ns || upn < 1 ||
	    upn > UINT32_MAX || ix->efc == 0 || ix->ef_default == 0 ||
	    (knytt__is_i8(ix) && (!ix->qtrained && ns > 0)) ||
	    (knytt__is_i8(ix) && ix->qtrained &&
	     !(ix->qstep > 0 && isfinite(ix->qstep) &&
	       isfinite(1.0f / ix->qstep))))
		return CORRUPT("%s: settings out of range", path);
	ix->format1 = ver == 1;
	knytt__index_layout(ix);
	if (knytt__get_u32(p + 40) != ix->m0 || block != ix->block)
		return CORRUPT("%s: block layout does not match its settings",
			       path);
	sections s = layout_sections(ix, (size_t)ns, (size_t)upn);
	if (knytt__get_u64(p + 120) != s.l0 ||
	    knytt__get_u64(p + 128) != s.uoff ||
	    knytt__get_u64(p + 136) != s.upool ||
	    knytt__get_u64(p + 144) != s.f32 ||
	    knytt__get_u64(p + 152) != s.qmid || s.end != len)
		return CORRUPT("%s: section offsets do not match its sizes",
			       path);

	ix->nslots = ix->cap = (size_t)ns;
	ix->upool_n = ix->upool_cap = (size_t)upn;
	ix->l0 = (unsigned char *)p + s.l0;
	ix->l0_mapped = 1;
	ix->uoff = malloc((ns ? ns : 1) * 4);
	ix->upool = malloc(upn * 4);
	ix->nlocks = calloc(ns ? ns : 1, 1);
	if (!ix->uoff || !ix->upool || !ix->nlocks)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	memcpy(ix->uoff, p + s.uoff, ns * 4);
	memcpy(ix->upool, p + s.upool, upn * 4);
	if (ix->quant == KNYTT_QUANT_INT8) {
		ix->f32 = (float *)(p + s.f32);
		ix->f32_mapped = 1;
	}
	if (knytt__is_i8(ix)) {
		ix->qmid = malloc(ix->dim * 4);
		if (!ix->qmid)
			return knytt__err(KNYTT_ENOMEM, "out of memory");
		memcpy(ix->qmid, p + s.qmid, ix->dim * 4);
		/* A query is encoded against these: a NaN or infinite
		 * midpoint would turn every code into NaN. */
		for (uint32_t j = 0; j < ix->dim; j++)
			if (!isfinite(ix->qmid[j]))
				return CORRUPT("%s: quantizer midpoint %u is "
					       "not finite", path, j);
	}
	if (ix->qcells) {
		size_t nc = (size_t)ix->qcells * ix->dim;
		ix->qsv = malloc(ix->dim * 4);
		ix->qcen = malloc(nc * 4);
		if (!ix->qsv || !ix->qcen)
			return knytt__err(KNYTT_ENOMEM, "out of memory");
		memcpy(ix->qsv, p + s.qmid + ix->dim * 4, ix->dim * 4);
		memcpy(ix->qcen, p + s.qmid + 2 * (size_t)ix->dim * 4, nc * 4);
		/* steps divide in every encode; centres enter every key */
		for (uint32_t j = 0; j < ix->dim; j++)
			if (!(ix->qsv[j] > 0) || !isfinite(ix->qsv[j]) ||
			    !isfinite(1.0f / ix->qsv[j]))
				return CORRUPT("%s: quantizer step %u is "
					       "out of range", path, j);
		for (size_t j = 0; j < nc; j++)
			if (!isfinite(ix->qcen[j]))
				return CORRUPT("%s: quantizer cell centre "
					       "value %zu is not finite",
					       path, j);
	}
	int rc = validate_graph(ix, path);
	if (rc)
		return rc;
	/* labels and free list */
	if ((rc = knytt__lmap_reserve(&ix->labels, ix->count)))
		return rc;
	size_t nfree = ns - ix->count;
	ix->freel = malloc((nfree ? nfree : 1) * sizeof *ix->freel);
	if (!ix->freel)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	ix->free_cap = nfree ? nfree : 1;
	for (size_t i = 0; i < ns; i++) {
		uint32_t id = (uint32_t)i;
		if (knytt__flags(ix, id) & NODE_DELETED) {
			ix->freel[ix->nfree++] = id;
			continue;
		}
		uint64_t lab = knytt__label(ix, id);
		if (knytt__lmap_get(&ix->labels, lab) != LMAP_EMPTY)
			return CORRUPT("%s: label %llu appears twice", path,
				       (unsigned long long)lab);
		if ((rc = knytt__lmap_put(&ix->labels, lab, id)))
			return rc;
	}
	return KNYTT_OK;
}

/* Back to the state of knytt_index_create after a failed load. */
static void unload(knytt_index *ix)
{
	free(ix->uoff);
	free(ix->upool);
	free((void *)ix->nlocks);
	free(ix->qmid);
	free(ix->qcen);
	free(ix->qsv);
	free(ix->freel);
	knytt__lmap_free(&ix->labels);
	ix->uoff = NULL;
	ix->upool = NULL;
	ix->nlocks = NULL;
	ix->qmid = NULL;
	ix->qcen = NULL;
	ix->qsv = NULL;
	ix->qcells = 0;
	ix->freel = NULL;
	ix->l0 = NULL;
	ix->f32 = NULL;
	ix->l0_mapped = ix->f32_mapped = 0;
	ix->nslots = ix->cap = ix->count = ix->nfree = ix->free_cap = 0;
	ix->upool_n = ix->upool_cap = 0;
	ix->maxlevel = -1;
	ix->entry = 0;
	ix->qtrained = 0;
}

int knytt_index_load(knytt_index *ix, const char *path)
{
	if (!ix || !path)
		return knytt__err(KNYTT_EINVAL, "knytt_index_load: %s is NULL",
				  !ix ? "index" : "path");
	if (ix->is_open)
		return knytt__err(KNYTT_ESTATE,
				  "knytt_index_load: the handle already holds "
				  "an index; load into a new handle");
	if (!knytt__host_le())
		return knytt__err(KNYTT_ENOTSUP,
				  "loading on a big-endian host is not "
				  "supported");
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return knytt__err_errno(KNYTT_EIO, errno, "cannot open %s", path);
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return knytt__err_errno(KNYTT_EIO, e, "cannot stat %s", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		return knytt__err(KNYTT_EIO, "%s is not a regular file", path);
	}
	size_t len = (size_t)st.st_size;
	if (len < HDR) {
		close(fd);
		return CORRUPT("%s: truncated: %zu bytes, a header needs %d",
			       path, len, HDR);
	}
	void *map = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	int e = errno;
	close(fd);
	if (map == MAP_FAILED)
		return knytt__err_errno(KNYTT_EIO, e, "cannot map %s", path);
	/* the file's settings replace these only if the load succeeds */
	knytt_index_kind kind = ix->kind;
	knytt_metric metric = ix->metric;
	knytt_quant quant = ix->quant;
	unsigned m = ix->m, efc = ix->efc, efs = ix->ef_default;
	uint64_t seed = ix->seed;
	int rc = load_mapped(ix, map, len, path);
	if (rc) {
		unload(ix);
		munmap(map, len);
		ix->kind = kind;
		ix->metric = metric;
		ix->quant = quant;
		ix->m = m;
		ix->efc = efc;
		ix->ef_default = efs;
		ix->seed = seed;
		ix->dim = 0;
		ix->format1 = 0;
		return rc;
	}
	ix->map = map;
	ix->maplen = len;
	ix->is_open = 1;
	return KNYTT_OK;
}
