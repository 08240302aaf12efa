/*
 * util.c -- version, CPU count, aligned allocation, growable arrays,
 * CRC-32C.
 */
#include "../internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/random.h>
#include <errno.h>
#include <unistd.h>
#include <sys/mman.h>

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>
#endif

const char *knytt_version(void)
{
	return KNYTT_VERSION_STRING;
}

int knytt_version_number(void)
{
	return KNYTT_VERSION_NUMBER;
}

int64_t knytt__now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void knytt__deadline(struct timespec *t, int clk, int64_t ms)
{
	clock_gettime((clockid_t)clk, t);
	int64_t ns = t->tv_nsec + ms % 1000 * 1000000;
	t->tv_sec += (time_t)(ms / 1000 + ns / 1000000000);
	t->tv_nsec = (long)(ns % 1000000000);
}

int knytt__ts_check(const char *field, int64_t ts_ms, int64_t now_ms,
		    int64_t tol_ms)
{
	if (tol_ms < 0 || ts_ms <= now_ms)
		return KNYTT_OK;
	/* ts - now cannot overflow here: both are >= 0 on this path, or
	 * now < 0 and then ts - now is still below 2^63 for any real ts */
	if (now_ms >= 0 && ts_ms - now_ms > tol_ms)
		return knytt__err_field(KNYTT_EINVAL, field,
				  "field %s %lld is %.1f hours in the future "
				  "(now is %lld; at most %lld ms ahead is "
				  "accepted)",
				  field, (long long)ts_ms,
				  (double)(ts_ms - now_ms) / 3.6e6,
				  (long long)now_ms, (long long)tol_ms);
	return KNYTT_OK;
}

int knytt__random(void *buf, size_t n)
{
	unsigned char *p = buf;
	while (n > 0) {
		ssize_t r = getrandom(p, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return knytt__err_errno(KNYTT_EIO, errno,
						"getrandom failed");
		}
		p += r;
		n -= (size_t)r;
	}
	return KNYTT_OK;
}

unsigned knytt__ncpu(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n < 1 ? 1u : (unsigned)n;
}

void *knytt__aalloc(size_t n)
{
	void *p = NULL;
	size_t sz = (n + 63) & ~(size_t)63;
	if (sz == 0)
		sz = 64;
	if (posix_memalign(&p, 64, sz) != 0)
		return NULL;
	memset(p, 0, sz);
	return p;
}

void knytt__afree(void *p)
{
	free(p);
}

/*
 * Large tables read at random rows (the engine's vector copies) on 2 MiB
 * pages where the kernel offers them (transparent huge pages in
 * "madvise" mode, Debian's default): a random row then costs no page
 * walk, and on a virtual machine a page walk is a walk of two tables.
 * Measured on the 10%-filter scan of benchmarks/engine/run --filters
 * (100k rows): 3.3x the unfiltered query's CPU time with them, 5.0x
 * without, three runs each, interleaved.  Below 4 MiB, or where
 * madvise says no, it is plain memory aligned to a cache line.  Unlike
 * realloc it copies the @p old bytes kept; free with free().
 */
void *knytt__big_realloc(void *p, size_t old, size_t n)
{
	const size_t huge = (size_t)2 << 20;
	void *q = NULL;
	if (n < 2 * huge) {
		/* cache-line aligned, as the index's vectors expect
		 * (lib/index/index_impl.h) */
		if (posix_memalign(&q, 64, n ? n : 1) != 0)
			return NULL;
		if (p && old)
			memcpy(q, p, old < n ? old : n);
		free(p);
		return q;
	}
	if (posix_memalign(&q, huge, (n + huge - 1) & ~(huge - 1)) != 0)
		return NULL;
	(void)madvise(q, (n + huge - 1) & ~(huge - 1), MADV_HUGEPAGE);
	if (p && old)
		memcpy(q, p, old < n ? old : n);
	free(p);
	return q;
}

int knytt__grow(void **p, size_t *cap, size_t need, size_t elsize)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 16;
	while (c < need) {
		if (c > SIZE_MAX / 2)
			return -1;
		c *= 2;
	}
	if (elsize && c > SIZE_MAX / elsize)
		return -1;
	void *q = realloc(*p, c * elsize);
	if (!q)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

size_t knytt__cap_class(size_t n)
{
	if (n <= 16)
		return 16;
	if (n > SIZE_MAX / 2)
		return n;
	/* q: the largest power of two below n, so n is in (q, 2q]; the
	 * classes there are 1.25q, 1.5q, 1.75q and 2q */
	size_t q = (size_t)1 << (8 * sizeof(long long) - 1 -
				 (size_t)__builtin_clzll(n - 1));
	size_t step = q / 4;
	return (n + step - 1) / step * step;
}

/*
 * CRC-32C, reflected polynomial 0x82F63B78.  The table path does one byte
 * per step (enough for fallback CPUs); on x86-64 with SSE4.2 the crc32
 * instruction does eight bytes per step, about 20x faster, which matters
 * because index loads checksum the whole file.
 */
static uint32_t crc_table[256];
static int crc_hw;
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
#if defined(__x86_64__)
	unsigned a, b, c, d;
	if (__get_cpuid(1, &a, &b, &c, &d))
		crc_hw = (c & bit_SSE4_2) != 0;
#endif
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
crc_sse42(uint32_t crc, const unsigned char *p, size_t n)
{
	uint64_t c = crc;
	while (n >= 8) {
		uint64_t v;
		memcpy(&v, p, 8);
		c = _mm_crc32_u64(c, v);
		p += 8;
		n -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (n--)
		c32 = _mm_crc32_u8(c32, *p++);
	return c32;
}
#endif

uint32_t knytt__crc32c(uint32_t crc, const void *data, size_t n)
{
	const unsigned char *p = data;
	pthread_once(&crc_once, crc_init);
	crc = ~crc;
#if defined(__x86_64__)
	if (crc_hw)
		return ~crc_sse42(crc, p, n);
#endif
	while (n--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return ~crc;
}

void knytt__struct_copy(void *out, size_t outsz, const void *in,
			size_t insz, size_t size)
{
	memcpy(out, in, outsz < insz ? outsz : insz);
	memcpy(out, &size, sizeof size); /* struct_size leads every struct */
}
