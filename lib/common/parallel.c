/*
 * parallel.c -- fork/join on plain pthreads, the one copy of the pattern
 * that the index, the models and the embedding client share.
 *
 * No pool: every caller runs for milliseconds at least (a batch insert, an
 * ALS half-sweep, a training step over thousands of rows), so a
 * pthread_create of ~20 us per thread is noise, and the library keeps no
 * threads alive behind its users' backs.  The calling thread always takes
 * part (worker 0), so one thread costs nothing.  A thread that cannot
 * start is not an error: its share runs on the caller after worker 0, so
 * the partition, and with it every result, is the same whatever the
 * system allowed.
 */
#include "../internal.h"

#include <pthread.h>

#define MAX_THREADS 256

typedef struct fj_arg {
	knytt__fork_fn fn;
	void *ctx;
	unsigned t;
} fj_arg;

static void *fj_main(void *p)
{
	fj_arg *a = p;
	a->fn(a->ctx, a->t);
	return NULL;
}

void knytt__fork_join(unsigned nt, knytt__fork_fn fn, void *ctx)
{
	if (nt > MAX_THREADS)
		nt = MAX_THREADS;
	if (nt <= 1) {
		fn(ctx, 0);
		return;
	}
	pthread_t th[MAX_THREADS];
	fj_arg arg[MAX_THREADS];
	unsigned char started[MAX_THREADS];
	for (unsigned t = 1; t < nt; t++) {
		arg[t] = (fj_arg){ fn, ctx, t };
		started[t] = pthread_create(&th[t], NULL, fj_main, &arg[t]) == 0;
	}
	fn(ctx, 0);
	for (unsigned t = 1; t < nt; t++)
		if (!started[t])
			fn(ctx, t);
	for (unsigned t = 1; t < nt; t++)
		if (started[t])
			pthread_join(th[t], NULL);
}

typedef struct pfor_ctx {
	knytt__range_fn fn;
	void *ctx;
	size_t n;
	unsigned nt;
} pfor_ctx;

static void pfor_part(void *p, unsigned t)
{
	const pfor_ctx *c = p;
	size_t lo = c->n * t / c->nt, hi = c->n * (t + 1) / c->nt;
	if (lo < hi)
		c->fn(c->ctx, lo, hi);
}

void knytt__parallel_for(unsigned nt, size_t n, size_t grain,
			 knytt__range_fn fn, void *ctx)
{
	if (n == 0)
		return;
	if (grain == 0)
		grain = 1;
	if ((size_t)nt > n / grain)
		nt = (unsigned)(n / grain);
	if (nt <= 1) {
		fn(ctx, 0, n);
		return;
	}
	pfor_ctx c = { fn, ctx, n, nt };
	knytt__fork_join(nt, pfor_part, &c);
}

unsigned knytt__threads(unsigned requested)
{
	return requested ? requested : knytt__ncpu();
}
