/*
 * internal.h -- helpers shared by every part of libknytt.  Not API.
 *
 * Names that cross files start with knytt__ (two underscores); everything
 * else is static.  Nothing here is exported from libknytt.so: the build
 * uses -fvisibility=hidden and a version script that exports knytt_*.
 */
#ifndef KNYTT_INTERNAL_H
#define KNYTT_INTERNAL_H

#include "knytt.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define KNYTT__PRINTF(f, a) __attribute__((format(printf, f, a)))
#define KNYTT__LIKELY(x) __builtin_expect(!!(x), 1)
#define KNYTT__UNLIKELY(x) __builtin_expect(!!(x), 0)
#else
#define KNYTT__PRINTF(f, a)
#define KNYTT__LIKELY(x) (x)
#define KNYTT__UNLIKELY(x) (x)
#endif

/*
 * Records @p code and a printf-style message as the calling thread's last
 * error and returns @p code, so failures read
 *     return knytt__err(KNYTT_EINVAL, "k must be at least 1");
 */
int knytt__err(int code, const char *fmt, ...) KNYTT__PRINTF(2, 3);
/* The same, for bad input in one named field: the field travels beside
 * the message, so a caller that reports fields (import rejects, knyttd's
 * JSON errors) reads it with the public knytt_errfield() instead of
 * parsing the message.  knytt__err and knytt__err_errno clear it. */
int knytt__err_field(int code, const char *field, const char *fmt, ...)
	KNYTT__PRINTF(3, 4);

/* The calling thread's last error (message and field), kept across
 * clean-up calls that may fail themselves (a ROLLBACK, a join) and put
 * back with knytt__err_restore, so the caller still sees the first
 * failure and the field it named. */
typedef struct knytt__errsave {
	char msg[512];
	char field[64];
} knytt__errsave;
void knytt__err_save(knytt__errsave *s);
/* Makes @p s the thread's last error again; returns @p code. */
int knytt__err_restore(int code, const knytt__errsave *s);

/* Same, appending ": <strerror(errnum)>". */
int knytt__err_errno(int code, int errnum, const char *fmt, ...)
	KNYTT__PRINTF(3, 4);

/* Copies an already formatted message (used to forward a nested error). */
int knytt__err_keep(int code);

/* CRC-32C (Castagnoli) of @p n bytes, continuing from @p crc (0 to start).
 * Uses the SSE4.2 crc32 instruction where the CPU has it. */
uint32_t knytt__crc32c(uint32_t crc, const void *data, size_t n);

/* Wall-clock time in milliseconds since the Unix epoch. */
int64_t knytt__now_ms(void);

/* @p ms milliseconds from now on clock @p clk, into @p t: the deadline
 * of a pthread_cond_timedwait (CLOCK_REALTIME unless the condition was
 * made for another clock). */
struct timespec;
void knytt__deadline(struct timespec *t, int clk, int64_t ms);

/* The one rule for event times, used by the engine's feedback and the
 * store's interaction checks (add and import): KNYTT_EINVAL naming
 * @p field when @p ts_ms is more than @p tol_ms past @p now_ms (an event
 * from the future would stay "fresh" in trending until its time comes);
 * tol_ms < 0 turns the check off.  0 (meaning "now") always passes. */
int knytt__ts_check(const char *field, int64_t ts_ms, int64_t now_ms,
		    int64_t tol_ms);

/* @p n random bytes from the kernel (tags, never keys). */
int knytt__random(void *buf, size_t n);

/* Number of online CPUs, at least 1. */
unsigned knytt__ncpu(void);

/* Makes room for @p need elements of @p elsize bytes in *p (capacity *cap,
 * in elements), doubling; 0 on success, -1 without memory (*p and *cap
 * unchanged).  The one growable-array step: callers keep (ptr, n, cap). */
int knytt__grow(void **p, size_t *cap, size_t need, size_t elsize);
#define KNYTT__GROW(arr, cap, need)                                          \
	knytt__grow((void **)&(arr), &(cap), (need), sizeof *(arr))

/* The capacity class of @p n elements: 16 at least, else @p n rounded up
 * to 1.25, 1.5, 1.75 or 2 times a power of two (about 10% slack on
 * average, 25% at most).  For long-lived blocks that come and go by the
 * thousand (shopper profiles, lib/taste/profile.c): a block freed in a
 * class is the exact size the next one of that class asks for, so the
 * allocator reuses it whole instead of splitting it and keeping the
 * remainder (SIZE_MAX / 2 and above: @p n itself). */
size_t knytt__cap_class(size_t n);

/* Does the caller's struct, of size s->struct_size, reach member f?
 * Public structs grow at the end only; a member beyond an older caller's
 * struct_size keeps its default.  The one test every entry point uses. */
#define KNYTT__HAS(s, T, f)                                                  \
	((s)->struct_size >= offsetof(T, f) + sizeof((s)->f))

/* The caller's versioned struct @p in copied over @p out, this version's
 * struct holding the defaults: the bytes within in->struct_size replace
 * them, the members past it keep them; out->struct_size becomes
 * sizeof *out.  The caller has checked KNYTT__HAS for the members it
 * requires. */
#define KNYTT__STRUCT_IN(out, in)                                            \
	knytt__struct_copy((out), sizeof *(out), (in), (in)->struct_size,    \
			   sizeof *(out))
/* A struct the library filled (@p full, this version's) copied into the
 * caller's @p out, of out->struct_size bytes: members past it are never
 * written, and out->struct_size keeps the caller's value. */
#define KNYTT__STRUCT_OUT(out, full)                                         \
	knytt__struct_copy((out), (out)->struct_size, (full), sizeof *(full), \
			   (out)->struct_size)
/* Copies min(outsz, insz) bytes of @p in to @p out, then sets the leading
 * size_t of @p out (struct_size) to @p size. */
void knytt__struct_copy(void *out, size_t outsz, const void *in,
			size_t insz, size_t size);

/* ---- fork/join (parallel.c) ----
 * knytt__fork_join runs fn(ctx, t) for t in [0, nt): t = 0 on the calling
 * thread, the others on new threads (a thread that cannot start runs on
 * the caller: same partition, same results).  knytt__parallel_for splits
 * [0, n) into at most nt contiguous ranges of at least grain elements.
 * knytt__threads(0) = the number of CPUs, else the request. */
typedef void (*knytt__fork_fn)(void *ctx, unsigned t);
typedef void (*knytt__range_fn)(void *ctx, size_t lo, size_t hi);
void knytt__fork_join(unsigned nt, knytt__fork_fn fn, void *ctx);
void knytt__parallel_for(unsigned nt, size_t n, size_t grain,
			 knytt__range_fn fn, void *ctx);
unsigned knytt__threads(unsigned requested);

/* ---- atomic file write (fileio.c) ----
 * begin: a temporary beside @p path, open for writing on f->fd;
 * commit: fsync, rename over path, fsync the directory (failed != 0, or a
 * step failing, removes the temporary and returns KNYTT_EIO naming path);
 * abort: removes the temporary.  atomic_write does all three for a
 * buffer.  write_all: write(2) until done, -1 with errno on failure. */
typedef struct knytt__atomic_file {
	int fd;
	char *path, *tmp;
} knytt__atomic_file;
int knytt__atomic_begin(knytt__atomic_file *f, const char *path);
int knytt__atomic_commit(knytt__atomic_file *f, int failed);
void knytt__atomic_abort(knytt__atomic_file *f);
int knytt__atomic_write(const char *path, const void *buf, size_t n);
int knytt__write_all(int fd, const void *buf, size_t n);
/* The whole file at @p path into a malloc'd buffer (*out, free(); may be
 * empty): KNYTT_EIO naming path, KNYTT_ENOMEM. */
int knytt__read_file(const char *path, unsigned char **out, size_t *len);
/* The tails every model's file I/O shares (its codec works on buffers):
 * write_owned writes @p buf atomically to @p path and frees it; path_err
 * prefixes @p path to the message of a KNYTT_ECORRUPT or KNYTT_EVERSION
 * @p rc (a load of that file), other codes pass through. */
int knytt__write_owned(const char *path, void *buf, size_t n);
int knytt__path_err(const char *path, int rc);

/* 64-byte aligned allocation, zero-filled; free with knytt__afree. */
void *knytt__aalloc(size_t n);
void knytt__afree(void *p);
/* realloc for large tables read at random rows: 2 MiB pages where the
 * kernel gives them (util.c); @p old bytes are kept. */
void *knytt__big_realloc(void *p, size_t old, size_t n);

/* splitmix64: a small, fast, seedable generator (state advanced in place). */
static inline uint64_t knytt__rand64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform double in [0, 1). */
static inline double knytt__randu(uint64_t *s)
{
	return (double)(knytt__rand64(s) >> 11) * (1.0 / 9007199254740992.0);
}

/* Little-endian stores and loads, for file formats. */
static inline void knytt__put_u32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}
static inline void knytt__put_u64(unsigned char *p, uint64_t v)
{
	knytt__put_u32(p, (uint32_t)v);
	knytt__put_u32(p + 4, (uint32_t)(v >> 32));
}
static inline uint32_t knytt__get_u32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}
static inline uint64_t knytt__get_u64(const unsigned char *p)
{
	return (uint64_t)knytt__get_u32(p) |
	       (uint64_t)knytt__get_u32(p + 4) << 32;
}

/* True when the host stores integers little-endian: the in-memory layout
 * of saved arrays then equals the file layout and can be mapped as is. */
static inline bool knytt__host_le(void)
{
	const uint16_t one = 1;
	return *(const unsigned char *)&one == 1;
}

/* ---- index owner tag (lib/index/io.c): 32 opaque bytes saved in the
 * index file's header and read back by knytt_index_load, so the owner of
 * a file can tell whether it wrote it. ---- */
#define KNYTT__INDEX_OWNER 32
struct knytt_index;
void knytt__index_set_owner(struct knytt_index *ix,
			    const unsigned char tag[KNYTT__INDEX_OWNER]);
void knytt__index_owner(const struct knytt_index *ix,
			unsigned char out[KNYTT__INDEX_OWNER]);
/* The writes made to @p ix so far, and in *gen the handle's number
 * (unique per handle in the process): while both are unchanged the
 * index holds the same vectors and graph, so a search asked again
 * answers the same (lib/engine/annmemo.c keeps answers on that). */
uint64_t knytt__index_writes(const struct knytt_index *ix, uint64_t *gen);
/* knytt_index_search_filter for a caller that knows about how many
 * labels pass @p fn (@p est): the search skips estimating it, 256
 * predicate calls per query (lib/index/index.c). */
int knytt__index_search_filter_est(const struct knytt_index *ix,
				   const float *q, uint32_t dim, size_t k,
				   unsigned ef, knytt_filter_fn fn, void *ctx,
				   size_t est, uint64_t *labels, float *dists);

/* ---- uint64 -> uint32 map: open addressing, linear probing (u64map.c).
 * Index labels -> slots, engine ids -> table rows. ---- */
typedef struct knytt__lmap {
	uint64_t *keys;
	uint32_t *vals; /* LMAP_EMPTY, LMAP_TOMB or a slot */
	size_t cap;     /* power of two, or 0 */
	size_t n;       /* live entries */
	size_t used;    /* live + tombstones (drives resizing) */
} knytt__lmap;

#define LMAP_EMPTY UINT32_MAX
#define LMAP_TOMB (UINT32_MAX - 1)

uint32_t knytt__lmap_get(const knytt__lmap *m, uint64_t key);
int knytt__lmap_put(knytt__lmap *m, uint64_t key, uint32_t slot);
void knytt__lmap_del(knytt__lmap *m, uint64_t key);
int knytt__lmap_reserve(knytt__lmap *m, size_t n);
void knytt__lmap_free(knytt__lmap *m);
size_t knytt__lmap_bytes(const knytt__lmap *m);

/* ---- interaction types (itypes.c): the one table of the types knytt
 * names and their default weights; as bits of a mask, one bit shared by
 * every other (custom) type name. ---- */
enum {
	KNYTT__T_VIEW,
	KNYTT__T_CLICK,
	KNYTT__T_CART,
	KNYTT__T_PURCHASE,
	KNYTT__T_FAVORITE,
	KNYTT__T_RATING,
	KNYTT__T_OTHER,
	KNYTT__NTYPES
};
#define KNYTT__TYPES_ALL ((1u << KNYTT__NTYPES) - 1)

/* type_bit: the KNYTT__T_ number of type @p name (KNYTT__T_OTHER for a
 * name knytt does not define); type_default: its default weight (the
 * store's for a row given none); type_name: its name (NULL for
 * KNYTT__T_OTHER). */
unsigned knytt__type_bit(const char *name);
double knytt__type_default(unsigned t);
const char *knytt__type_name(unsigned t);

#endif
