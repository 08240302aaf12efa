/*
 * ixstream.c -- interactions for counters: the columns a time-decayed
 * count needs (item id, type, weight, value, time), without the joins
 * that give knytt_store_interactions_since its external ids, in pages of
 * 65536 rows on one prepared statement.
 *
 * Why: the engine seeds its trending counters from the last four weeks
 * at every open.  On PostgreSQL the joined 512-row pages cost 25-40 ms
 * each (a thousand index lookups per page on a loaded 2-core machine):
 * 5 s for 100k events, most of a CLI query's time.  Without the joins
 * and with large pages it is a few round trips.
 */
#include "store_int.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#define O (st->ops)
#define BIG_PAGE 65536

int knytt__ix_stream(knytt_store *st, int64_t since_ms,
		     knytt_interaction_fn fn, void *ctx)
{
	if (!st->tenant)
		return knytt__err(KNYTT_ESTATE, "no tenant selected");
	knytt__stmt *q;
	if (O->prepare(st->db,
		       "SELECT id, item_id, type, weight, value, ts FROM "
		       "interactions WHERE tenant = ?1 AND (ts, id) > (?2, ?3) "
		       "ORDER BY ts, id LIMIT ?4",
		       &q))
		return knytt__err_keep(KNYTT_EDB);
	int64_t k_ts = since_ms, k_id = -1;
	long long visited = 0;
	int rc = 0;
	char type[40];
	for (;;) {
		O->bind_i64(q, 1, (int64_t)st->tenant);
		O->bind_i64(q, 2, k_ts);
		O->bind_i64(q, 3, k_id);
		O->bind_i64(q, 4, BIG_PAGE);
		long long n = 0;
		while ((rc = O->step(q)) == 1) {
			knytt_interaction x;
			memset(&x, 0, sizeof x);
			x.struct_size = sizeof x;
			x.id = (uint64_t)O->col_i64(q, 0);
			x.item_id = (uint64_t)O->col_i64(q, 1);
			snprintf(type, sizeof type, "%s",
				 O->col_text(q, 2) ? O->col_text(q, 2) : "");
			x.type = type;
			x.weight = O->col_f64(q, 3);
			x.has_value = !O->col_null(q, 4);
			x.value = x.has_value ? O->col_f64(q, 4) : 0;
			x.ts_ms = O->col_i64(q, 5);
			k_ts = x.ts_ms;
			k_id = (int64_t)x.id;
			n++;
			if (fn(&x, ctx)) {
				rc = knytt__err(KNYTT_ECANCELED,
						"the callback stopped the scan");
				break;
			}
		}
		O->reset(q);
		visited += n;
		if (rc < 0 || n < BIG_PAGE)
			break;
	}
	O->finalize(q);
	if (rc < 0)
		return rc;
	return visited > INT_MAX ? INT_MAX : (int)visited;
}
