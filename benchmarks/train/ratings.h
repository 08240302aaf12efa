/*
 * ratings.h -- the ratings reader the training benchmarks share
 * (time_bench.c, cost_bench.c): one line a rating, "u i r t" (tabs or
 * spaces) or "u::i::r::t", ids 1-based, the time in seconds.
 */
#ifndef KNYTT_BENCH_RATINGS_H
#define KNYTT_BENCH_RATINGS_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

typedef struct rating {
	uint32_t u, i; /* 0-based */
	int64_t t;     /* seconds */
} rating;

typedef struct ratings {
	rating *v;
	size_t n;
	uint32_t nu, ni; /* the largest 1-based ids */
} ratings;

/* Reads every rating of @p f into @p d; 0, or -1 when none was read or
 * memory ran out (d->v is then freed). */
static int read_ratings(FILE *f, ratings *d)
{
	size_t cap = 1 << 17;
	d->v = malloc(cap * sizeof *d->v);
	d->n = 0;
	d->nu = d->ni = 0;
	char line[256];
	while (d->v && fgets(line, sizeof line, f)) {
		for (char *p = line; *p; p++)
			if (*p == ':')
				*p = ' ';
		unsigned long u, i;
		double r;
		long long t;
		if (sscanf(line, "%lu %lu %lf %lld", &u, &i, &r, &t) != 4 ||
		    u == 0 || i == 0)
			continue;
		if (d->n == cap) {
			rating *w = realloc(d->v, (cap *= 2) * sizeof *w);
			if (!w) {
				free(d->v);
				d->v = NULL;
				break;
			}
			d->v = w;
		}
		d->v[d->n++] = (rating){(uint32_t)u - 1, (uint32_t)i - 1, t};
		if (u > d->nu)
			d->nu = (uint32_t)u;
		if (i > d->ni)
			d->ni = (uint32_t)i;
	}
	if (d->v && d->n)
		return 0;
	free(d->v);
	d->v = NULL;
	return -1;
}

/* Calls @p fn on the pipeline's time splits (the latest 30%, 20% and 10%
 * of the ratings held out): ML-100K under @p dir, then, unless @p quick,
 * the first half of ML-1M (the NCF reconstruction's ratings), printing a
 * SKIP line for a data set that cannot be read. */
static inline void each_time_split(const char *dir, int quick,
				   void (*fn)(const char *name,
					      const ratings *d,
					      double holdout))
{
	static const double hold[3] = {0.3, 0.2, 0.1};
	char path[1024];
	snprintf(path, sizeof path, "%s/ml-100k/u.data", dir);
	ratings d;
	FILE *f = fopen(path, "r");
	if (f && read_ratings(f, &d) == 0) {
		for (int k = 0; k < 3; k++)
			fn("ml100k", &d, hold[k]);
		free(d.v);
	} else {
		printf("# SKIP ML-100K: %s absent\n", path);
	}
	if (f)
		fclose(f);
	if (quick)
		return;
	char cmd[1200];
	snprintf(cmd, sizeof cmd,
		 "gzip -dc %s/ncf/reconstruction_inputs/dsmlai_ratings.dat.gz "
		 "2>/dev/null",
		 dir);
	f = popen(cmd, "r");
	if (f && read_ratings(f, &d) == 0) {
		for (int k = 0; k < 3; k++)
			fn("ml1m-half", &d, hold[k]);
		free(d.v);
	} else {
		printf("# SKIP ML-1M (first half): not readable\n");
	}
	if (f)
		pclose(f);
}

#endif
