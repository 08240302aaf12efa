/*
 * packscan.h -- packed copies of the int8 codes of row sets that wide
 * filtered scans read again and again (packscan.c).  Not API.
 */
#ifndef KNYTT_PACKSCAN_H
#define KNYTT_PACKSCAN_H

#include <stddef.h>
#include <stdint.h>

struct knytt_engine;

/* One row set's codes, end to end, in the order of its rows. */
typedef struct knytt__pack {
	uint64_t hash, gen;
	size_t n, bytes;
	uint32_t *rows;  /* the set, as the scan was given it */
	int8_t *codes;   /* n * dim, row i's codes at i * dim */
	float *scale;    /* n steps */
	int refs;        /* scans reading it (under the cache's mutex) */
	int dead;        /* out of the list: the last put frees it */
	uint64_t used;   /* tick of its last use (least recently used) */
	struct knytt__pack *next;
} knytt__pack;

typedef struct knytt__pack_stats {
	uint64_t hits, builds; /* scans that read a copy, copies made */
	size_t count, bytes;   /* copies kept now and their bytes */
} knytt__pack_stats;

/* init: the engine's cache (0, or KNYTT_ENOMEM); free: at close. */
int knytt__packs_init(struct knytt_engine *e);
void knytt__packs_free(struct knytt_engine *e);
/* The copy of rows[0..n), made now if this set was scanned before;
 * NULL: scan the code table (first sight, over budget, no memory).
 * Caller holds the engine lock (read or write) until the put. */
const knytt__pack *knytt__pack_get(const struct knytt_engine *e,
				   const uint32_t *rows, size_t n);
void knytt__pack_put(const struct knytt_engine *e, const knytt__pack *p);
void knytt__packs_stats(const struct knytt_engine *e, knytt__pack_stats *out);

#endif
