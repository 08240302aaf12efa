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
 * --threads 4 --profile-cache 16, 2 CPUs, 120 s of its mixed traffic,
 * 150k evictions; malloc_stats at the end): glibc's default made 8
 * arenas holding 78.7 MiB for 55.0 MiB in use, and RssAnon was 75 MiB and
 * still creeping; with at most 2 arenas, 65.2 MiB held for 53.5 in use,
 * RssAnon flat at 60 MiB from the first minute on, and requests no slower
 * (3.5k req/s, p99 15 ms, against 2.1k and 52 ms; the machine is shared,
 * so only "no slower" is claimed).  It was no leak: the bytes in use
 * stayed put over the last 75k evictions, and LeakSanitizer (make
 * sanitize's knyttd) reported nothing after 12k.  A malloc_trim(0) after
 * the run gave back only 6 to 7 MiB with either setting, the free chunks
 * lying between live ones, so knyttd does not trim on a timer: fewer
 * arenas is what bounds the slack.
 *
 * One arena per CPU (at least 2): no more threads than CPUs run at once,
 * so this many arenas keep the threads that allocate together mostly
 * apart; a 2-CPU machine gets the 2 measured above.
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
		n = sysconf(_SC_NPROCESSORS_ONLN);
		if (n < 2)
			n = 2;
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
