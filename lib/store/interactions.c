/*
 * interactions.c -- interactions: checks, insert, reads by user, item
 * and time.  Moved from store.c.
 */
#include "store_int.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define O (st->ops)

/* ---- interactions ------------------------------------------------------ */

int knytt__ix_prepare(knytt_store *st, const knytt_interaction *caller,
		      knytt__ixrow *r, int resolve)
{
	if (!caller)
		return knytt__err(KNYTT_EINVAL, "interaction is NULL");
	/* an older caller's struct: what it lacks is unset (no weight, no
	 * value, now, no event id) */
	if (!KNYTT__HAS(caller, knytt_interaction, type))
		return knytt__err(KNYTT_EINVAL,
				  "interaction struct_size %zu is too small "
				  "(set it to sizeof(knytt_interaction))",
				  caller->struct_size);
	knytt_interaction full;
	memset(&full, 0, sizeof full);
	KNYTT__STRUCT_IN(&full, caller);
	const knytt_interaction *in = &full;
	int rc;
	if ((rc = knytt__st_check_id("user", in->user)) ||
	    (rc = knytt__st_check_id("item", in->item)))
		return rc;
	const char *t = in->type;
	if (!t)
		return knytt__err_field(KNYTT_EINVAL, "type", "field type is required");
	size_t tl = strlen(t);
	if (tl == 0 || tl > 32)
		return knytt__err_field(KNYTT_EINVAL, "type",
				  "field type must have 1..32 characters");
	for (size_t i = 0; i < tl; i++)
		if (!((t[i] >= 'a' && t[i] <= 'z') ||
		      (t[i] >= '0' && t[i] <= '9') || t[i] == '_'))
			return knytt__err_field(KNYTT_EINVAL, "type",
					  "field type '%.32s' may only hold "
					  "a-z, 0-9 and _",
					  t);
	if (!isfinite(in->weight) || in->weight < 0)
		return knytt__err_field(KNYTT_EINVAL, "weight",
				  "field weight must be finite and >= 0");
	if (in->has_value && !isfinite(in->value))
		return knytt__err_field(KNYTT_EINVAL, "value", "field value must be finite");
	if (in->ts_ms < 0)
		return knytt__err_field(KNYTT_EINVAL, "ts_ms", "field ts_ms must be >= 0");
	if ((rc = knytt__ts_check("ts_ms", in->ts_ms, knytt__now_ms(),
				  st ? st->future_tol_ms
				     : KNYTT_FUTURE_TOLERANCE_MS)))
		return rc;
	if (in->event_id && (rc = knytt__st_check_id("event_id", in->event_id)))
		return rc;
	memset(r, 0, sizeof *r);
	memcpy(r->type, t, tl + 1);
	r->weight = in->weight > 0 ? in->weight
				    : knytt__type_default(knytt__type_bit(t));
	r->has_value = in->has_value != 0;
	r->value = r->has_value ? in->value : 0;
	r->ts = in->ts_ms ? in->ts_ms : knytt__now_ms();
	if (in->event_id) /* check_id bounded its length */
		memcpy(r->event_id, in->event_id, strlen(in->event_id) + 1);
	if (!resolve)
		return 0;
	if ((rc = knytt__item_id(st, in->item, &r->item_id)))
		return rc;
	return knytt__user_ensure(st, in->user, &r->user_id);
}

int knytt__ix_add_txn(knytt_store *st, const knytt_interaction *ix)
{
	knytt__ixrow r;
	int rc = knytt__ix_prepare(st, ix, &r, 1);
	if (rc < 0)
		return rc;
	knytt__stmt *q = knytt__st_q(st, Q_IX_INS);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, (int64_t)r.user_id);
	O->bind_i64(q, 3, (int64_t)r.item_id);
	O->bind_text(q, 4, r.type);
	O->bind_f64(q, 5, r.weight);
	if (r.has_value)
		O->bind_f64(q, 6, r.value);
	else
		O->bind_null(q, 6);
	O->bind_i64(q, 7, r.ts);
	O->bind_text(q, 8, r.event_id[0] ? r.event_id : NULL);
	int row;
	rc = knytt__st_step_one(st, q, &row);
	int64_t ch = O->changes(q);
	O->reset(q);
	/* a favorite event marks the favorite too, in the same commit */
	if (rc == 0 && ch)
		rc = knytt__ix_favorites(st, &r, 1);
	if (rc)
		return rc;
	return ch ? 1 : 0;
}

int knytt_store_interaction_add(knytt_store *st,
				const knytt_interaction *ix)
{
	int rc = knytt__st_need_tenant(st);
	if (rc)
		return rc;
	/* user creation and the insert commit together */
	if ((rc = knytt__st_begin(st)))
		return rc;
	int added = knytt__ix_add_txn(st, ix);
	if (added < 0) {
		knytt__st_rollback(st);
		return added;
	}
	if ((rc = knytt__st_commit(st)))
		return rc;
	return added;
}

/*
 * A batch in one transaction: every event is checked and resolved, then
 * all go in with the dialect's bulk insert and commit together.  A store
 * that fails part-way (a full disk, a lost connection) rolls back the
 * whole batch, so a client that retries it without event ids cannot
 * store any event twice (knyttd stored 25 of a refused batch of 50 when
 * events committed one by one).
 */
int knytt_store_interactions_add(knytt_store *st,
				 const knytt_interaction *const *ix, size_t n)
{
	int rc = knytt__st_need_tenant(st);
	if (rc)
		return rc;
	if (!ix && n)
		return knytt__err(KNYTT_EINVAL, "interactions is NULL");
	if (n > KNYTT_STORE_MAX_BATCH)
		return knytt__err(KNYTT_ERANGE,
				  "a batch holds at most %d interactions, "
				  "not %zu",
				  KNYTT_STORE_MAX_BATCH, n);
	if (n == 0)
		return 0;
	knytt__ixrow *rows = malloc(n * sizeof *rows);
	if (!rows)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	if ((rc = knytt__st_begin(st))) {
		free(rows);
		return rc;
	}
	size_t i;
	for (i = 0; i < n && rc == 0; i++)
		if ((rc = knytt__ix_prepare(st, ix[i], &rows[i], 1)) > 0)
			rc = 0;
	if (rc < 0) {
		/* the event's own message, with its place in the batch */
		char msg[512], field[64];
		snprintf(msg, sizeof msg, "%s", knytt_errmsg());
		snprintf(field, sizeof field, "%s", knytt_errfield());
		knytt__st_rollback(st);
		free(rows);
		return knytt__err_field(rc, field, "interaction %zu: %s",
					i - 1, msg);
	}
	int stored = O->insert_interactions(st->db, st->tenant, rows, n);
	rc = stored < 0 ? stored : knytt__ix_favorites(st, rows, n);
	free(rows);
	if (rc < 0) {
		knytt__st_rollback(st);
		return rc;
	}
	if ((rc = knytt__st_commit(st)))
		return rc;
	return stored;
}

/* A page of interactions copied out of the statement, so callbacks run
 * with no statement active and may use the store. */
typedef struct ixbuf {
	knytt_interaction ix;
	char user[KNYTT_STORE_MAX_ID + 1], item[KNYTT_STORE_MAX_ID + 1];
	char type[33], event[KNYTT_STORE_MAX_ID + 1];
} ixbuf;

/* Copies column text @p s (NULL reads as "") into @p dst of @p cap
 * bytes, cut to fit.  Not snprintf: a profile load copies three columns
 * per event, and printf's format parsing was a twentieth of the load's
 * time under the soak (perf). */
static void col_copy(char *dst, size_t cap, const char *s)
{
	size_t n = s ? strnlen(s, cap - 1) : 0;
	memcpy(dst, s ? s : "", n);
	dst[n] = 0;
}

static void ix_copy(knytt_store *st, knytt__stmt *q, ixbuf *b)
{
	knytt_interaction *x = &b->ix;
	memset(x, 0, sizeof *x);
	x->struct_size = sizeof *x;
	x->id = (uint64_t)O->col_i64(q, 0);
	col_copy(b->user, sizeof b->user, O->col_text(q, 1));
	col_copy(b->item, sizeof b->item, O->col_text(q, 2));
	x->user_id = (uint64_t)O->col_i64(q, 3);
	x->item_id = (uint64_t)O->col_i64(q, 4);
	col_copy(b->type, sizeof b->type, O->col_text(q, 5));
	x->weight = O->col_f64(q, 6);
	x->has_value = !O->col_null(q, 7);
	x->value = x->has_value ? O->col_f64(q, 7) : 0;
	x->ts_ms = O->col_i64(q, 8);
	const char *e = O->col_text(q, 9);
	if (e)
		col_copy(b->event, sizeof b->event, e);
	x->user = b->user;
	x->item = b->item;
	x->type = b->type;
	x->event_id = e ? b->event : NULL;
}

/*
 * The page a scan reads into: KNYTT__STORE_PAGE rows of ixbuf, 452 KiB,
 * kept by the store handle from its first scan to its close, or a page
 * of the call's own while the kept one is in use (a callback that scans
 * the same handle again; a handle serves one thread at a time).
 * Allocated per scan, it was the largest block knyttd allocated and
 * freed per request: every shopper profile loaded reads its history
 * through here, 166,720 loads in a 10-minute soak once its profile cache
 * was full, up to a thousand a second at its end (benchmarks/soak,
 * counted with an allocation logger).  Such a block comes from the
 * allocator's heap once glibc has raised its mmap threshold (it does
 * after freeing any larger mapped block), and each one freed among the
 * profiles' long-lived blocks could leave the heap in pieces.  The cost:
 * 452 KiB held per handle that has scanned, mapped by glibc as one block
 * of its own (knyttd: the engine's connection, which loads the profiles,
 * and the few that scan for reports).
 */
static ixbuf *ix_page_take(knytt_store *st)
{
	if (!st->ix_page_busy) {
		if (!st->ix_page)
			st->ix_page = malloc(KNYTT__STORE_PAGE * sizeof(ixbuf));
		if (st->ix_page) {
			st->ix_page_busy = 1;
			return st->ix_page;
		}
	}
	return malloc(KNYTT__STORE_PAGE * sizeof(ixbuf));
}

static void ix_page_give(knytt_store *st, ixbuf *page)
{
	if (page == st->ix_page)
		st->ix_page_busy = 0;
	else
		free(page);
}

/* Pages through Q_IX_SINCE (keyset on (ts, id)) or runs a recent-N
 * query once (qid Q_IX_USER / Q_IX_ITEM with owner id and limit). */
static int ix_scan(knytt_store *st, int qid, uint64_t owner, size_t limit,
		   int64_t since, knytt_interaction_fn fn, void *ctx)
{
	ixbuf *page = ix_page_take(st);
	if (!page)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	int64_t k_ts = since, k_id = -1;
	long long visited = 0;
	int rc = 0;
	size_t left = limit;
	for (;;) {
		knytt__stmt *q = knytt__st_q(st, qid);
		if (!q) {
			rc = knytt__err_keep(KNYTT_EDB);
			break;
		}
		size_t want = KNYTT__STORE_PAGE;
		O->bind_i64(q, 1, (int64_t)st->tenant);
		if (qid == Q_IX_AFTER) {
			O->bind_i64(q, 2, k_id < 0 ? since : k_id);
			O->bind_i64(q, 3, KNYTT__STORE_PAGE);
		} else if (qid == Q_IX_SINCE) {
			O->bind_i64(q, 2, k_ts);
			O->bind_i64(q, 3, k_id);
			O->bind_i64(q, 4, KNYTT__STORE_PAGE);
		} else if (qid == Q_IX_USER_ALL || qid == Q_IX_USER_EVENTS) {
			O->bind_i64(q, 2, (int64_t)owner);
			O->bind_i64(q, 3, k_ts);
			O->bind_i64(q, 4, k_id);
			O->bind_i64(q, 5, KNYTT__STORE_PAGE);
		} else {
			want = left < KNYTT__STORE_PAGE ? left : KNYTT__STORE_PAGE;
			O->bind_i64(q, 2, (int64_t)owner);
			O->bind_i64(q, 3, (int64_t)want);
		}
		size_t n = 0;
		while (n < want && (rc = O->step(q)) == 1)
			ix_copy(st, q, &page[n++]);
		O->reset(q);
		if (rc < 0)
			break;
		rc = 0;
		int stop = 0;
		for (size_t i = 0; i < n && !stop; i++) {
			visited++;
			if (fn(&page[i].ix, ctx))
				stop = 1;
		}
		if (stop) {
			rc = knytt__err(KNYTT_ECANCELED,
					"the callback stopped the scan");
			break;
		}
		if (n < want || (qid != Q_IX_SINCE && qid != Q_IX_USER_ALL &&
				 qid != Q_IX_USER_EVENTS && qid != Q_IX_AFTER))
			break; /* recent-N: one query (limit <= KNYTT__STORE_PAGE) */
		k_ts = page[n - 1].ix.ts_ms;
		k_id = (int64_t)page[n - 1].ix.id;
	}
	ix_page_give(st, page);
	if (rc < 0)
		return rc;
	return visited > INT_MAX ? INT_MAX : (int)visited;
}

static int recent(knytt_store *st, int qid, const char *ext, size_t n,
		  knytt_interaction_fn fn, void *ctx)
{
	int rc = knytt__st_need_tenant(st);
	if (rc || (rc = knytt__st_check_id(qid == Q_IX_USER ? "user" : "item", ext)))
		return rc;
	if (!fn)
		return knytt__err(KNYTT_EINVAL, "callback is NULL");
	uint64_t id = 0;
	rc = qid == Q_IX_USER ? knytt__st_user_id(st, ext, &id)
			      : knytt__item_id(st, ext, &id);
	if (rc)
		return rc;
	if (n == 0)
		return 0;
	if (n > KNYTT__STORE_PAGE)
		n = KNYTT__STORE_PAGE; /* documented: recent means at most one page */
	return ix_scan(st, qid, id, n, 0, fn, ctx);
}

int knytt_store_user_recent(knytt_store *st, const char *user, size_t n,
			    knytt_interaction_fn fn, void *ctx)
{
	return recent(st, Q_IX_USER, user, n, fn, ctx);
}

static int user_all(knytt_store *st, int qid, const char *user,
		    knytt_interaction_fn fn, void *ctx)
{
	int rc = knytt__st_need_tenant(st);
	if (rc || (rc = knytt__st_check_id("user", user)))
		return rc;
	if (!fn)
		return knytt__err(KNYTT_EINVAL, "callback is NULL");
	uint64_t id = 0;
	if ((rc = knytt__st_user_id(st, user, &id)))
		return rc;
	return ix_scan(st, qid, id, 0, INT64_MIN, fn, ctx);
}

int knytt_store_user_history(knytt_store *st, const char *user,
			     knytt_interaction_fn fn, void *ctx)
{
	return user_all(st, Q_IX_USER_ALL, user, fn, ctx);
}

/*
 * A profile load reads every event of its shopper, and under the soak
 * (benchmarks/soak, 16 MiB of profile cache, 2,000 shoppers whose
 * histories grow all run) it was the engine's costliest step after the
 * ANN search: perf gave the loads 18% of knyttd's time, 16 points of it
 * in this read and 2 in the replay.  Per event the public query seeks
 * three b-trees (the row, then users and items for the two ext ids) and
 * the copy formats three strings; the profile needs neither ext id (it
 * maps the store's item id to an engine row), so this one reads the
 * interactions alone, and since migration 9 from the interactions_user
 * index alone: a shopper's events are one run of index entries, where
 * the rows lie one per page through the table.  Loading every profile
 * of the soak's database after two runs (416k events, 2,000 shoppers,
 * one thread, the engine's recommendations with a cache too small to
 * keep any profile, less the same with all kept): 580 to 640 us a load
 * with knytt_store_user_history, about 450 without the joins, 146 to
 * 162 with the covering index too.
 */
int knytt__store_user_events(knytt_store *st, const char *user,
			     knytt_interaction_fn fn, void *ctx)
{
	return user_all(st, Q_IX_USER_EVENTS, user, fn, ctx);
}

int knytt_store_item_recent(knytt_store *st, const char *item, size_t n,
			    knytt_interaction_fn fn, void *ctx)
{
	return recent(st, Q_IX_ITEM, item, n, fn, ctx);
}

int knytt_store_interactions_since(knytt_store *st, int64_t since_ms,
				   knytt_interaction_fn fn, void *ctx)
{
	int rc = knytt__st_need_tenant(st);
	if (rc)
		return rc;
	if (!fn)
		return knytt__err(KNYTT_EINVAL, "callback is NULL");
	return ix_scan(st, Q_IX_SINCE, 0, 0, since_ms, fn, ctx);
}

int64_t knytt_store_interaction_count(knytt_store *st)
{
	return knytt__st_count_q(st, Q_IX_COUNT);
}

/*
 * Marks.  Interaction ids are given in insertion order and never reused
 * (the table only grows; retention deletes the oldest), across all
 * tenants, so the highest id is a high-water mark of what the database
 * holds: "the interactions after mark M" are those stored since M was
 * read.  A model records the mark read before its training read the
 * interactions (knyttd's schedule counts what came after), a replica
 * the mark of what its notifications covered (its catch-up reads what
 * came after).  PostgreSQL assigns an id at insert and publishes the row
 * at commit, so a transaction slower to commit than a later one can
 * surface below a mark already read: an event in the instant of a mark
 * may be counted on the wrong side of it.
 */
int knytt_store_interaction_mark(knytt_store *st, int64_t *mark)
{
	if (!st || !mark)
		return knytt__err(KNYTT_EINVAL, "interaction_mark: %s is NULL",
				  !st ? "store" : "mark");
	knytt__stmt *q = knytt__st_q(st, Q_IX_MARK);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	int row = 0;
	int rc = knytt__st_step_one(st, q, &row);
	*mark = rc == 0 && row ? O->col_i64(q, 0) : 0;
	O->reset(q);
	return rc;
}

int64_t knytt_store_interactions_after_count(knytt_store *st, int64_t mark,
					     int64_t limit)
{
	int rc = knytt__st_need_tenant(st);
	if (rc)
		return rc;
	if (mark < 0 || limit < 1)
		return knytt__err(KNYTT_EINVAL, "interactions_after_count: %s",
				  mark < 0 ? "mark is negative"
					   : "limit must be >= 1");
	knytt__stmt *q = knytt__st_q(st, Q_IX_AFTER_N);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, mark);
	O->bind_i64(q, 3, limit);
	int row = 0;
	rc = knytt__st_step_one(st, q, &row);
	int64_t n = row ? O->col_i64(q, 0) : 0;
	O->reset(q);
	return rc ? rc : n;
}

int knytt_store_interactions_after(knytt_store *st, int64_t mark,
				   knytt_interaction_fn fn, void *ctx)
{
	int rc = knytt__st_need_tenant(st);
	if (rc)
		return rc;
	if (mark < 0 || !fn)
		return knytt__err(KNYTT_EINVAL, "interactions_after: %s",
				  mark < 0 ? "mark is negative"
					   : "callback is NULL");
	return ix_scan(st, Q_IX_AFTER, 0, 0, mark, fn, ctx);
}

int knytt_store_item_counts(knytt_store *st, int64_t from_ms, int64_t to_ms,
			    const char *type, uint64_t *item_ids,
			    uint64_t *counts, size_t cap)
{
	int rc = knytt__st_need_tenant(st);
	if (rc)
		return rc;
	if (!item_ids || !counts)
		return knytt__err(KNYTT_EINVAL, "item_ids or counts is NULL");
	if ((rc = knytt__check_text("type", type, 32, 0)))
		return rc;
	if (cap == 0)
		return 0;
	knytt__stmt *q = knytt__st_q(st, type ? Q_IX_COUNTS_T : Q_IX_COUNTS);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, from_ms);
	O->bind_i64(q, 3, to_ms);
	O->bind_i64(q, 4, cap > INT_MAX ? INT_MAX : (int64_t)cap);
	if (type)
		O->bind_text(q, 5, type);
	int n = 0;
	while ((size_t)n < cap && (rc = O->step(q)) == 1) {
		item_ids[n] = (uint64_t)O->col_i64(q, 0);
		counts[n] = (uint64_t)O->col_i64(q, 1);
		n++;
	}
	O->reset(q);
	return rc < 0 ? rc : n;
}
