/*
 * slogread.c -- the search log read back whole, for learning what
 * queries mean from what shoppers did after them (lib/engine/qlearn.c).
 *
 * One statement, rows in id order (the order they were written).  Vector
 * searches are logged as "(vector)" and carry no words: left out here.
 * The callback gets borrowed strings, valid for the call only, and must
 * not use the store.
 */
#include "store_int.h"

#define O (st->ops)

int knytt__search_log_each(knytt_store *st, knytt__slog_fn fn, void *ctx)
{
	int rc = knytt__st_need_tenant(st);
	if (rc)
		return rc;
	if (!fn)
		return knytt__err(KNYTT_EINVAL, "search log reader: fn is NULL");
	knytt__stmt *q;
	if (O->prepare(st->db,
		       "SELECT user_id, ts, query, clicked_item FROM search_log "
		       "WHERE tenant = ?1 AND query <> '(vector)' ORDER BY id",
		       &q))
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	int n = 0;
	while ((rc = O->step(q)) == 1) {
		const char *text = O->col_text(q, 2);
		uint64_t user = O->col_null(q, 0) ? 0 :
				(uint64_t)O->col_i64(q, 0);
		uint64_t clicked = O->col_null(q, 3) ? 0 :
				   (uint64_t)O->col_i64(q, 3);
		if (fn(text ? text : "", user, O->col_i64(q, 1), clicked,
		       ctx)) {
			rc = knytt__err(KNYTT_ECANCELED,
					"search log reader stopped");
			break;
		}
		if (n < INT32_MAX)
			n++;
	}
	O->finalize(q);
	return rc < 0 ? rc : n;
}
