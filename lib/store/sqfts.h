/*
 * sqfts.h -- SQLite keyword search with top-k pruning (sqfts.c).
 */
#ifndef KNYTT_SQFTS_H
#define KNYTT_SQFTS_H

#include "store_int.h"

#include <sqlite3.h>

typedef struct knytt__sqfts knytt__sqfts;

/* Registers the knytt_bm25 FTS5 function on @p h.  Returns an SQLite
 * result code; on failure the store falls back to plain SQL. */
int knytt__sqfts_open(sqlite3 *h, knytt__sqfts **out);
/* Finalizes the statements; call before closing the connection. */
void knytt__sqfts_close(knytt__sqfts *x);
/* The @p cap best items, best first.  Returns the count, or a negated
 * SQLite result code (the connection's error message tells more). */
int knytt__sqfts_search(knytt__sqfts *x, uint64_t tenant,
			const knytt__search *q, uint64_t *ids, double *scores,
			size_t cap);
/* Of the last search: rows whose exact score was computed, and item rows
 * read for the filters (the rest were pruned by the bound). */
void knytt__sqfts_stats(const knytt__sqfts *x, long long *scored,
			long long *read);

#endif
