/*
 * heap.c -- the C library's allocator, set up for a long-running server
 * and watched from /metrics.
 *
 * Why fewer arenas.  glibc gives each thread that allocates an arena of
 * its own, up to eight per CPU, and what is freed into an arena stays in
 * it: only free memory at the top of a heap goes back to the system (or
 * whole free pages, on malloc_trim).  The engine's profile cache
 * (lib/engine/profcache.c) makes that costly: a shopper's profile is
 * allocated in the arena of the request thread that loads it, grown
 * there by the threads that serve the shopper's feedback, and freed by
 * whichever thread's request finds the cache over its budget.  Under
 * eviction churn every arena climbs to its own peak and keeps its free
 * chunks, fragmented between live ones, apart from the other arenas'.
 *
 * Measured on the soak shop (benchmarks/soak: 840k events, knyttd
 * --threads 4 --profile-cache 16, 2 CPUs shared with other jobs, 90 to
 * 180 s of its mixed traffic at 800 evictions a second; the allocator's
 * bytes from malloc_stats and /metrics).  The bytes in use were the same
 * whatever the setting, 54-55 MiB, flat once the cache was full: no leak
 * (LeakSanitizer, make sanitize's knyttd, found none after 12k
 * evictions either).  What differed was what the allocator kept free:
 *   arenas        runs  kept free (MiB)  RssAnon (MiB)   CPU/request
 *   8 (default)   3     22.2 - 23.7      71.7 - 74.8     384, 478 us
 *   2             7     11.1 - 22.2 (14.4 median)
 *                                        58.8 - 72.9 (63.9)
 *                                                        390 - 520 us
 *   1             2     7.6 - 8.3        57.9 - 58.1     260, 461 us
 * (CPU time per request where it was read; the machine's load moved it
 * more than the setting did).  The engine alone agrees: benchmarks/engine
 * /run --quick --reuse-db --only recommend, run with MALLOC_ARENA_MAX=1
 * and without, two runs each, interleaved (load 3.4 to 4.9): recommend
 * p99 on one thread 132 and 339 us (ALS), 189 and 192 us (two-tower)
 * with glibc's arenas, 165 and 166, 134 and 160 with one arena; the
 * 2-thread throughput no lower with one.  What one arena still keeps is
 * fragmentation inside it (free chunks of 3 KB to 2 MB between live
 * ones), reached within the first minute of evictions and flat after.
 *
 * Tried and left out, measured the same way: malloc_trim(0) from the
 * eviction path, at most once a second, held RssAnon at 58-60 MiB but
 * took 24 ms a call (median; 108 ms at worst) under the arena locks, and
 * p99 rose from 30-55 ms to 125 ms.  A fixed M_MMAP_THRESHOLD (64 or
 * 256 KiB, MALLOC_MMAP_THRESHOLD_) kept only 5-6 MiB free, but the CPU
 * per request rose, 558 us against 480 in the same minutes (one run
 * each; every block above the threshold is mapped and unmapped).
 *
 * One arena per two CPUs (at least 1): on the 2 CPUs measured, one
 * arena kept the least and cost no CPU time that could be seen; with
 * more CPUs, more threads allocate at once and share the arena locks, so
 * the limit grows with them.  Only the 2-CPU figures are measured.
 *
 * Why a fixed mmap threshold.  glibc maps a block of 128 KiB or more
 * with an mmap of its own and unmaps it when it is freed -- but on
 * freeing a mapped block larger than its threshold, it raises the
 * threshold to that block's size (up to 32 MiB) and the trim threshold
 * to twice that, and from then on blocks up to that size come from the
 * heap.  knyttd frees such blocks from its first seconds (SQLite's WAL
 * checkpoint allocates and frees 0.1 to 2.5 MiB about 8 times a second,
 * its size following the WAL's length), so every later transient block
 * of a few hundred KiB was carved from the heap among the profiles'
 * long-lived small blocks; freed, its room was split by the small blocks
 * allocated meanwhile, and the next one took fresh room at the top: the
 * heap grew in steps while the bytes in use did not.  Seen on a fresh
 * soak shop (benchmarks/soak --minutes 10 --profile-cache 16, 2 CPUs
 * shared with other jobs, an allocation logger preloaded that sampled
 * the allocator every second): after warm-up the bytes in use stayed at
 * 52-54 MiB while the bytes kept free went 8 -> 21 MiB and RssAnon 56 ->
 * 69 MiB, in steps of ~5 MiB of free room added within ten seconds
 * (250, 300 and 360 s).  The blocks of 64 KiB or more it counted, by
 * call site: 87 KB per search (SQLite's RETURNING, now gone:
 * lib/store/store.c), 452 KiB per profile load (a scan's page, now kept
 * by the store handle: lib/store/interactions.c), the checkpoint's.  In
 * 454 samples after warm-up glibc never held more than the 7 mapped
 * blocks of the engine's tables: the hundreds of 452 KiB blocks a
 * second came from the heap.
 *
 * Setting the threshold turns the raising off: blocks of 128 KiB or
 * more are always mapped, go back to the system whole when freed and
 * never divide the heap, and free room over 128 KiB at the top of the
 * heap is returned.  The cost is an mmap and munmap per such block,
 * which is why it was left out before (above): at 64 or 256 KiB it cost
 * CPU time while every profile load made one.  With the two
 * per-request blocks gone, the soak from the same fresh shop, plain (no
 * logger), one run at a time on the same shared machine, old code then
 * new code twice (mean CPU per request over the run; RssAnon from the
 * end of warm-up to the end):
 *   before  4.16M requests  149 us  RssAnon 55.2 -> 54.8 MiB (-0.7%)
 *   after   3.84M requests  141 us  RssAnon 48.4 -> 52.0 MiB (+7.4%)
 *   after   4.30M requests  147 us  RssAnon 49.3 -> 52.1 MiB (+5.7%)
 * all with 0 errors and kept-free bytes under 10 MiB; with the logger
 * preloaded, the new code grew 16.1% in one soak (kept free 5.4 -> 13.2
 * MiB).  The growth is intermittent: the old code grew 23-24% in two
 * soaks (one with the logger, the lead's quiet one) and stayed flat in
 * two, so these runs show no growth left, not its absence.  What the
 * WAL checkpoint allocates follows the WAL's length (9.75 MB a time
 * once the WAL had reached 20 GB): the background checkpoints now bound
 * the WAL at 2048 frames (lib/store/sqlite.c), and the block, mapped,
 * goes back after each checkpoint.  A 10-minute fresh-shop soak after
 * that: RssAnon 50.4 -> 48.0 MiB after warm-up, 0 errors.
 */
#include "knyttd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* glibc's own starting value, kept: see "Why a fixed mmap threshold" */
#define KD_MMAP_THRESHOLD (128 * 1024)

/* Whether the environment already chose a glibc setting: its variable
 * @p var, or its tunable @p tunable in GLIBC_TUNABLES. */
static int env_chose(const char *var, const char *tunable)
{
	const char *t = getenv("GLIBC_TUNABLES");
	return getenv(var) != NULL || (t && strstr(t, tunable) != NULL);
}

int kd_heap_init(void)
{
#ifdef __GLIBC__
	/* the threshold first: the arena limit may return early */
	if (!env_chose("MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold"))
		(void)mallopt(M_MMAP_THRESHOLD, KD_MMAP_THRESHOLD);
	long n = kd_cfg.malloc_arenas;
	int asked = n >= 0;
	if (!asked) {
		if (env_chose("MALLOC_ARENA_MAX", "glibc.malloc.arena_max"))
			return 0;
		n = sysconf(_SC_NPROCESSORS_ONLN) / 2;
		if (n < 1)
			n = 1;
	}
	/* a sanitizer's allocator stands in for glibc's and refuses: only
	 * an explicit --malloc-arenas makes that an error */
	if (n > 0 && mallopt(M_ARENA_MAX, (int)n) != 1 && asked) {
		fprintf(stderr, "knyttd: the C library refused "
				"--malloc-arenas %ld\n", n);
		return -1;
	}
#endif
	return 0;
}

int kd_heap_stats(kd_heap_stat *s)
{
	memset(s, 0, sizeof *s);
#ifdef __GLIBC__
	struct mallinfo2 mi = mallinfo2();
	s->in_use = mi.uordblks + mi.hblkhd;
	s->free = mi.fordblks;
	/* the arenas: one <heap nr="..."> element each in malloc_info */
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);
	if (!f)
		return -1;
	int rc = malloc_info(0, f);
	fclose(f);
	for (const char *p = text; rc == 0 && p && (p = strstr(p, "<heap nr="));
	     p++)
		s->arenas++;
	free(text);
	return rc == 0 && s->arenas > 0 ? 0 : -1;
#else
	return -1;
#endif
}
