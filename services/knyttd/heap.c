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
 */
#include "knyttd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

/* Whether the environment already chose glibc's arena limit. */
static int env_chose(void)
{
	const char *t = getenv("GLIBC_TUNABLES");
	return getenv("MALLOC_ARENA_MAX") != NULL ||
	       (t && strstr(t, "glibc.malloc.arena_max") != NULL);
}

int kd_heap_init(void)
{
#ifdef __GLIBC__
	long n = kd_cfg.malloc_arenas;
	int asked = n >= 0;
	if (!asked) {
		if (env_chose())
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
