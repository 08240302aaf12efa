/*
 * packscan.c -- packed copies of the int8 codes of row sets that wide
 * filtered scans read again and again.
 *
 * The int8 pass of a wide filtered scan (scan.c) reads one code row per
 * passing item: for a 10% filter on 100k items of 64 dimensions, 10k rows
 * scattered over the 6.4 MB code table, each a cache line of its own
 * that is rarely still cached from the last query (about 23 ns a row,
 * benchmarks/engine/run --filters, against ~5 ns for the same rows laid
 * end to end).  A shop's filters repeat (its brands, colours, sizes), so
 * the second time a row set is scanned, its codes and steps are copied
 * end to end and kept, and later scans of the same rows read the copy.
 *
 * A set is known by its rows: a hash, then compared in full.  A copy
 * holds for one generation of the code table: every vector change bumps
 * e->rowq_gen under the write lock, and a copy of an older generation is
 * dropped when next met.  The copies share a budget, twice the code
 * table's bytes and at least PACK_MIN_BUDGET, and the least recently used
 * goes first; a set seen once is only remembered by its hash (the last
 * PACK_SEEN of them), so one-off filters cost no copy.  Scans run in
 * parallel under the read lock: the cache has its own mutex, and a scan
 * holds a reference on the copy it reads.
 */
#include "engine_int.h"
#include "packscan.h"

#include <stdlib.h>
#include <string.h>

#define PACK_SEEN 32
#define PACK_MIN_BUDGET ((size_t)4 << 20)

struct knytt__packs {
	pthread_mutex_t mu;
	knytt__pack *head;
	size_t count, bytes;
	uint64_t tick;
	uint64_t seen[PACK_SEEN]; /* hashes of sets met once (0: none) */
	size_t seen_next;
	uint64_t hits, builds;
};

int knytt__packs_init(knytt_engine *e)
{
	e->packs = calloc(1, sizeof *e->packs);
	if (!e->packs)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	pthread_mutex_init(&e->packs->mu, NULL);
	return KNYTT_OK;
}

static void pack_free(knytt__pack *p)
{
	free(p->rows);
	free(p->codes);
	free(p->scale);
	free(p);
}

void knytt__packs_free(knytt_engine *e)
{
	if (!e->packs)
		return;
	for (knytt__pack *p = e->packs->head, *nx; p; p = nx) {
		nx = p->next;
		pack_free(p);
	}
	pthread_mutex_destroy(&e->packs->mu);
	free(e->packs);
	e->packs = NULL;
}

/* never 0 (0 marks an empty slot of seen[]) */
static uint64_t rows_hash(const uint32_t *rows, size_t n)
{
	uint64_t h = 0x9e3779b97f4a7c15ull ^ n;
	for (size_t i = 0; i < n; i++) {
		h ^= rows[i];
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 29;
	}
	return h ? h : 1;
}

/* Caller holds mu: takes @p p out of the list (freed now, or by the last
 * scan reading it). */
static void unlink_pack(struct knytt__packs *c, knytt__pack *p)
{
	for (knytt__pack **pp = &c->head; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	c->count--;
	c->bytes -= p->bytes;
	if (p->refs > 0)
		p->dead = 1;
	else
		pack_free(p);
}

/* Caller holds mu: the valid copy of the set, or NULL; a copy of an
 * older generation is dropped (*stale set). */
static knytt__pack *find(struct knytt__packs *c, uint64_t h, uint64_t gen,
			 const uint32_t *rows, size_t n, int *stale)
{
	for (knytt__pack *p = c->head; p; p = p->next) {
		if (p->hash != h || p->n != n ||
		    memcmp(p->rows, rows, n * sizeof *rows) != 0)
			continue;
		if (p->gen == gen)
			return p;
		*stale = 1;
		unlink_pack(c, p);
		return NULL;
	}
	return NULL;
}

/* Caller holds mu: was the set met before?  If not, it is now. */
static int seen_before(struct knytt__packs *c, uint64_t h)
{
	for (size_t i = 0; i < PACK_SEEN; i++)
		if (c->seen[i] == h)
			return 1;
	c->seen[c->seen_next++ % PACK_SEEN] = h;
	return 0;
}

/* The copy itself (caller holds the engine lock, so the codes hold
 * still); NULL without memory. */
static knytt__pack *build(const knytt_engine *e, uint64_t h,
			  const uint32_t *rows, size_t n)
{
	size_t d = e->dim;
	knytt__pack *p = calloc(1, sizeof *p);
	if (!p)
		return NULL;
	p->rows = malloc(n * sizeof *p->rows);
	p->codes = malloc(n * d);
	p->scale = malloc(n * sizeof *p->scale);
	if (!p->rows || !p->codes || !p->scale) {
		pack_free(p);
		return NULL;
	}
	memcpy(p->rows, rows, n * sizeof *rows);
	for (size_t i = 0; i < n; i++) {
		memcpy(p->codes + i * d, e->rowq + (size_t)rows[i] * d, d);
		p->scale[i] = e->rowq_s[rows[i]];
	}
	p->hash = h;
	p->gen = e->rowq_gen;
	p->n = n;
	p->bytes = sizeof *p + n * (d + sizeof *p->rows + sizeof *p->scale);
	return p;
}

/* Caller holds mu: room for @p need more bytes by dropping the least
 * recently used copies no scan reads; whether it fits. */
static int make_room(struct knytt__packs *c, size_t need, size_t budget)
{
	while (c->bytes + need > budget) {
		knytt__pack *lru = NULL;
		for (knytt__pack *p = c->head; p; p = p->next)
			if (p->refs == 0 && (!lru || p->used < lru->used))
				lru = p;
		if (!lru)
			return 0;
		unlink_pack(c, lru);
	}
	return 1;
}

const knytt__pack *knytt__pack_get(const knytt_engine *e,
				   const uint32_t *rows, size_t n)
{
	struct knytt__packs *c = e->packs;
	if (!c || !e->rowq || n == 0)
		return NULL;
	size_t budget = 2 * e->rowvec_cap * (e->dim + sizeof(float));
	if (budget < PACK_MIN_BUDGET)
		budget = PACK_MIN_BUDGET;
	uint64_t h = rows_hash(rows, n);
	int stale = 0;
	pthread_mutex_lock(&c->mu);
	knytt__pack *p = find(c, h, e->rowq_gen, rows, n, &stale);
	if (p) {
		p->refs++;
		p->used = ++c->tick;
		c->hits++;
		pthread_mutex_unlock(&c->mu);
		return p;
	}
	int again = stale || seen_before(c, h);
	pthread_mutex_unlock(&c->mu);
	if (!again)
		return NULL;
	knytt__pack *np = build(e, h, rows, n);
	if (!np)
		return NULL;
	pthread_mutex_lock(&c->mu);
	/* another scan may have made the same copy meanwhile */
	p = find(c, h, e->rowq_gen, rows, n, &stale);
	if (!p && make_room(c, np->bytes, budget)) {
		np->next = c->head;
		c->head = np;
		c->count++;
		c->bytes += np->bytes;
		c->builds++;
		p = np;
		np = NULL;
	}
	if (p) {
		p->refs++;
		p->used = ++c->tick;
	}
	pthread_mutex_unlock(&c->mu);
	if (np)
		pack_free(np);
	return p;
}

void knytt__pack_put(const knytt_engine *e, const knytt__pack *cp)
{
	if (!cp)
		return;
	struct knytt__packs *c = e->packs;
	knytt__pack *p = (knytt__pack *)cp;
	pthread_mutex_lock(&c->mu);
	int gone = --p->refs == 0 && p->dead;
	pthread_mutex_unlock(&c->mu);
	if (gone)
		pack_free(p);
}

void knytt__packs_stats(const knytt_engine *e, knytt__pack_stats *out)
{
	memset(out, 0, sizeof *out);
	struct knytt__packs *c = e->packs;
	if (!c)
		return;
	pthread_mutex_lock(&c->mu);
	out->hits = c->hits;
	out->builds = c->builds;
	out->count = c->count;
	out->bytes = c->bytes;
	pthread_mutex_unlock(&c->mu);
}
