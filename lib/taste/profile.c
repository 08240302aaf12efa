/*
 * profile.c -- a shopper's whole history, seen set and fold-in input.
 */
#include "profile.h"

#include <stdlib.h>
#include <string.h>

knytt__profile *knytt__profile_new(const char *ext_id, uint32_t dim)
{
	knytt__profile *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	pthread_mutex_init(&p->mu, NULL);
	size_t n = strlen(ext_id) + 1;
	p->ext_id = malloc(n);
	if (!p->ext_id || knytt__taste_init(&p->taste, dim)) {
		knytt__profile_free(p);
		return NULL;
	}
	memcpy(p->ext_id, ext_id, n);
	return p;
}

void knytt__profile_free(knytt__profile *p)
{
	if (!p)
		return;
	free(p->ext_id);
	free(p->hist);
	knytt__lmap_free(&p->seen);
	knytt__taste_free(&p->taste);
	for (int i = 0; i < 2; i++)
		free(p->memo[i].lab);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/*
 * The history's capacity is always a capacity class (knytt__cap_class),
 * not the exact count a load reads.  Why: the profile cache evicts and
 * reloads profiles all day, each history a block of its own length, and
 * glibc's allocator split the freed blocks to fit the next, different
 * lengths, keeping the remainders: a 10-minute soak at a 16 MiB budget
 * (benchmarks/soak) saw the bytes kept free grow from 6.2 to 10.5 MiB
 * after the cache was full, about 0.5 MiB a minute at the end.  With
 * classes a freed history is reused whole by the next of its class.
 */
int knytt__profile_reserve(knytt__profile *p, size_t n)
{
	if (n <= p->caph)
		return KNYTT_OK;
	n = knytt__cap_class(n);
	knytt__hev *h = realloc(p->hist, n * sizeof *h);
	if (!h)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	p->hist = h;
	p->caph = n;
	return KNYTT_OK;
}

/* What glibc's malloc adds to a block (its size word, rounded to 16
 * bytes): counted per block so that many small profiles are not
 * undercounted. */
#define ALLOC_OVERHEAD 16

size_t knytt__profile_bytes(const knytt__profile *p, uint32_t dim)
{
	size_t b = sizeof *p + strlen(p->ext_id) + 1 +
		   p->caph * sizeof *p->hist + knytt__lmap_bytes(&p->seen) +
		   2 * (size_t)dim * sizeof(float);
	size_t blocks = 4 + (p->hist != NULL) + 2 * (p->seen.cap > 0);
	for (int i = 0; i < 2; i++)
		if (p->memo[i].lab) {
			b += p->memo[i].cap *
			     (sizeof(uint64_t) + sizeof(float));
			blocks++;
		}
	return b + blocks * ALLOC_OVERHEAD;
}

int knytt__profile_add(knytt__profile *p, uint64_t id, uint32_t row,
		       float w, int64_t ts, unsigned type_bit)
{
	/* doubling a class gives a class */
	if (p->nh == p->caph &&
	    knytt__profile_reserve(p, p->caph ? 2 * p->caph : 1))
		return KNYTT_ENOMEM;
	uint32_t m = knytt__lmap_get(&p->seen, id);
	uint32_t nm = (m == LMAP_EMPTY ? 0 : m) | (1u << type_bit);
	if (nm != m && knytt__lmap_put(&p->seen, id, nm))
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	p->hist[p->nh++] = (knytt__hev){ row, w, ts, (uint8_t)type_bit };
	p->ver++;
	return KNYTT_OK;
}

typedef struct foldent {
	uint32_t midx;
	float w;
} foldent;

static int by_midx(const void *a, const void *b)
{
	uint32_t x = ((const foldent *)a)->midx, y = ((const foldent *)b)->midx;
	return x < y ? -1 : x > y;
}

static int by_weight_desc(const void *a, const void *b)
{
	float x = ((const foldent *)a)->w, y = ((const foldent *)b)->w;
	return x > y ? -1 : x < y;
}

/*
 * Why a cap.  The fold-in runs on every event of the shopper, and its
 * cost grows with the distinct items it is given.  Measured with
 * `KNYTT_FOLD_BENCH=1 CK_RUN_SUITE=taste ./build/check_knytt` (ALS, dim
 * 64, a 20,000-item model; this 2-core machine under a load average of
 * about 12): 256 items 0.01 ms, 1,024 items 0.03 ms, 4,096 items 0.12 ms,
 * 16,384 items 1.7 to 3.0 ms per fold-in -- past 4,096 the item factors
 * it reads (16,384 x 64 floats = 4 MB) leave the cache and the cost
 * grows 15 to 25 times for 4 times the items.  4,096 distinct items
 * covers the whole history of all but the most extreme shoppers at a
 * tenth of a millisecond; past it the least-weighted items (oldest,
 * lightest: the ones the decay has nearly erased) are left out.  The
 * pass over the events themselves (decay, sort) stays linear in the
 * history and is not capped.
 */
size_t knytt__profile_fold(const knytt__profile *p,
			   uint32_t (*model_row)(uint32_t row, void *ctx),
			   void *ctx, int64_t now_ms, double half_life_s,
			   size_t cap, uint32_t *midx, float *w)
{
	if (p->nh == 0 || cap == 0)
		return 0;
	foldent *f = malloc(p->nh * sizeof *f);
	if (!f)
		return 0;
	size_t n = 0;
	for (size_t i = 0; i < p->nh; i++) {
		uint32_t m = model_row(p->hist[i].row, ctx);
		if (m == UINT32_MAX)
			continue;
		double d = half_life_s > 0
				   ? knytt__decay(now_ms - p->hist[i].ts,
						  half_life_s)
				   : 1.0;
		f[n++] = (foldent){ m, (float)(p->hist[i].w * d) };
	}
	/* the same item several times: one entry with the summed weight */
	qsort(f, n, sizeof *f, by_midx);
	size_t m = 0;
	for (size_t i = 0; i < n; i++) {
		if (m > 0 && f[m - 1].midx == f[i].midx)
			f[m - 1].w += f[i].w;
		else
			f[m++] = f[i];
	}
	if (m > cap) {
		qsort(f, m, sizeof *f, by_weight_desc);
		m = cap;
	}
	for (size_t i = 0; i < m; i++) {
		midx[i] = f[i].midx;
		w[i] = f[i].w;
	}
	free(f);
	return m;
}
