/*
 * analytics.c -- search analytics from the search log and the
 * interactions that follow searches (knytt_store_search_report).
 *
 * Click-through attribution.  An explicit click (knytt_store_search_click)
 * always counts.  Otherwise a search is clicked when its shopper has a
 * click, add to cart, favorite or purchase on one of its results within
 * the window after it, and no later search of theirs came in between
 * (the latest search before an interaction takes it, as a session would).
 * The result's position in the shown list (migration 6: the ids the
 * engine returned, best first) gives the rank, hence the reciprocal rank;
 * a search logged without that list can only be clicked explicitly, and
 * then counts with reciprocal rank 0 when its item's position is unknown.
 *
 * Queries are grouped by a folded form (ASCII case, spaces trimmed and
 * collapsed), so "Red  Shoes" and "red shoes" are one line of the report.
 * The searches of the range are read into memory (about 80 bytes each
 * plus the shown ids); the interactions stream past once.
 */
#include "store_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define O (st->ops)
#define DAY_MS 86400000LL
#define DEFAULT_WINDOW_MS (30LL * 60 * 1000)
#define MAX_TOP 10000

typedef struct srch {
	char *q; /* folded query */
	uint64_t user;
	int64_t ts;
	int count;
	int clicked;
	double rr;
	uint64_t shown[20];
	int nshown;
} srch;

typedef struct slist {
	srch *s;
	size_t n, cap;
} slist;

static char *fold(const char *in)
{
	size_t n = strlen(in);
	char *out = malloc(n + 1), *o = out;
	if (!out)
		return NULL;
	int space = 0;
	for (const char *p = in; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (isspace(c)) {
			space = o != out;
			continue;
		}
		if (space)
			*o++ = ' ';
		space = 0;
		*o++ = (char)(c < 0x80 ? tolower(c) : c);
	}
	*o = 0;
	/* at most 256 bytes, not cutting a UTF-8 sequence */
	if (o - out > 256) {
		size_t cut = 256;
		while (cut > 0 && ((unsigned char)out[cut] & 0xC0) == 0x80)
			cut--;
		out[cut] = 0;
	}
	return out;
}

static void parse_ids(srch *s, const char *txt)
{
	s->nshown = 0;
	while (txt && *txt && s->nshown < 20) {
		char *end;
		unsigned long long v = strtoull(txt, &end, 10);
		if (end == txt)
			break;
		s->shown[s->nshown++] = v;
		txt = end;
	}
}

static int rank_of(const srch *s, uint64_t item)
{
	for (int i = 0; i < s->nshown; i++)
		if (s->shown[i] == item)
			return i + 1;
	return 0;
}

static int load_searches(knytt_store *st, int64_t from, int64_t to,
			 slist *l)
{
	knytt__stmt *q;
	int rc = O->prepare(st->db,
			    "SELECT query, user_id, result_count, ts, "
			    "clicked_item, shown FROM search_log WHERE tenant "
			    "= ?1 AND ts >= ?2 AND ts < ?3 ORDER BY user_id, "
			    "ts, id",
			    &q);
	if (rc)
		return rc;
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, from);
	O->bind_i64(q, 3, to);
	while ((rc = O->step(q)) == 1) {
		if (KNYTT__GROW(l->s, l->cap, l->n + 1)) {
			rc = knytt__err(KNYTT_ENOMEM, "out of memory");
			break;
		}
		srch *s = &l->s[l->n];
		memset(s, 0, sizeof *s);
		if (!(s->q = fold(O->col_text(q, 0) ? O->col_text(q, 0) : ""))) {
			rc = knytt__err(KNYTT_ENOMEM, "out of memory");
			break;
		}
		l->n++;
		s->user = O->col_null(q, 1) ? 0 : (uint64_t)O->col_i64(q, 1);
		s->count = (int)O->col_i64(q, 2);
		s->ts = O->col_i64(q, 3);
		parse_ids(s, O->col_text(q, 5));
		if (!O->col_null(q, 4) && O->col_i64(q, 4)) {
			int r = rank_of(s, (uint64_t)O->col_i64(q, 4));
			s->clicked = 1;
			s->rr = r ? 1.0 / r : 0;
		}
	}
	O->finalize(q);
	return rc < 0 ? rc : 0;
}

/* The searches of shopper @p user in @p l (sorted by user, ts): [*a, *b). */
static void user_range(const slist *l, uint64_t user, size_t *a, size_t *b)
{
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t m = (lo + hi) / 2;
		if (l->s[m].user < user)
			lo = m + 1;
		else
			hi = m;
	}
	*a = lo;
	while (hi < l->n && l->s[hi].user == user)
		hi++;
	*b = hi < lo ? lo : hi;
}

static void attribute(slist *l, size_t a, size_t b, uint64_t item,
		      int64_t ts, int64_t window)
{
	size_t i = b;
	while (i > a && l->s[i - 1].ts > ts)
		i--;
	if (i == a)
		return;
	srch *s = &l->s[i - 1]; /* the latest search at or before ts */
	if (ts - s->ts > window || s->clicked)
		return;
	int r = rank_of(s, item);
	if (r) {
		s->clicked = 1;
		s->rr = 1.0 / r;
	}
}

static int stream_clicks(knytt_store *st, int64_t from, int64_t to,
			 int64_t window, slist *l)
{
	knytt__stmt *q;
	int rc = O->prepare(
		st->db,
		"SELECT user_id, item_id, ts FROM interactions WHERE tenant = "
		"?1 AND ts >= ?2 AND ts <= ?4 AND type IN ('click', "
		"'add_to_cart', 'favorite', 'purchase') AND user_id IN (SELECT "
		"user_id FROM search_log WHERE tenant = ?1 AND ts >= ?2 AND ts "
		"< ?3 AND user_id IS NOT NULL) ORDER BY user_id, ts, id",
		&q);
	if (rc)
		return rc;
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, from);
	O->bind_i64(q, 3, to);
	O->bind_i64(q, 4, to > INT64_MAX - window ? INT64_MAX : to + window);
	uint64_t cur = 0;
	size_t a = 0, b = 0;
	while ((rc = O->step(q)) == 1) {
		uint64_t u = (uint64_t)O->col_i64(q, 0);
		if (u != cur || b == 0) {
			cur = u;
			user_range(l, u, &a, &b);
		}
		if (a < b)
			attribute(l, a, b, (uint64_t)O->col_i64(q, 1),
				  O->col_i64(q, 2), window);
	}
	O->finalize(q);
	return rc < 0 ? rc : 0;
}

/* ---- grouping --------------------------------------------------------- */

static int cmp_q(const void *x, const void *y)
{
	return strcmp((*(const srch *const *)x)->q, (*(const srch *const *)y)->q);
}

static int cmp_stat(const void *x, const void *y)
{
	const knytt_query_stat *a = x, *b = y;
	if (a->searches != b->searches)
		return a->searches > b->searches ? -1 : 1;
	return strcmp(a->query, b->query);
}

static int cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return (a > b) - (a < b);
}

/* One stat per distinct query, sorted most searched first; the count. */
static size_t group(srch **p, size_t n, knytt_query_stat *g)
{
	qsort(p, n, sizeof *p, cmp_q);
	size_t ng = 0;
	for (size_t i = 0; i < n;) {
		knytt_query_stat *s = &g[ng++];
		memset(s, 0, sizeof *s);
		snprintf(s->query, sizeof s->query, "%s", p[i]->q);
		double results = 0, rr = 0;
		size_t j = i;
		for (; j < n && !strcmp(p[j]->q, p[i]->q); j++) {
			s->searches++;
			s->zero_results += p[j]->count == 0;
			s->clicked += (uint64_t)p[j]->clicked;
			results += p[j]->count;
			rr += p[j]->rr;
		}
		s->mean_results = results / (double)s->searches;
		s->ctr = (double)s->clicked / (double)s->searches;
		s->mrr = rr / (double)s->searches;
		i = j;
	}
	qsort(g, ng, sizeof *g, cmp_stat);
	return ng;
}

static size_t count_days(const slist *l, int64_t *day)
{
	for (size_t i = 0; i < l->n; i++)
		day[i] = l->s[i].ts / DAY_MS * DAY_MS;
	qsort(day, l->n, sizeof *day, cmp_i64);
	size_t nd = 0;
	for (size_t i = 0; i < l->n; i++)
		nd += i == 0 || day[i] != day[i - 1];
	return nd;
}

static void fill_days(const slist *l, const int64_t *dayv, size_t nd,
		      knytt_day_stat *d)
{
	size_t k = 0;
	for (size_t i = 0; i < l->n; i++)
		if (i == 0 || dayv[i] != dayv[i - 1]) {
			memset(&d[k], 0, sizeof d[k]);
			d[k++].day_ms = dayv[i];
		}
	for (size_t i = 0; i < l->n; i++) {
		int64_t day = l->s[i].ts / DAY_MS * DAY_MS;
		size_t a = 0, b = nd; /* d is sorted by day */
		while (a < b) {
			size_t m = (a + b) / 2;
			if (d[m].day_ms < day)
				a = m + 1;
			else
				b = m;
		}
		d[a].searches++;
		d[a].zero_results += l->s[i].count == 0;
		d[a].clicked += (uint64_t)l->s[i].clicked;
	}
}

/* The report in one block: the struct, then top, few and days. */
static int build(const slist *l, size_t top, int few,
		 knytt_search_report **out)
{
	srch **p = malloc((l->n + 1) * sizeof *p);
	knytt_query_stat *g = malloc((l->n + 1) * sizeof *g);
	int64_t *dayv = malloc((l->n + 1) * sizeof *dayv);
	int rc = 0;
	if (!p || !g || !dayv) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < l->n; i++)
		p[i] = &l->s[i];
	size_t ng = group(p, l->n, g);
	size_t nfew = 0;
	for (size_t i = 0; i < ng; i++)
		if (g[i].mean_results <= few)
			nfew++;
	size_t ntop = ng < top ? ng : top;
	nfew = nfew < top ? nfew : top;
	size_t nd = count_days(l, dayv);
	size_t sz = sizeof **out + (ntop + nfew) * sizeof *g +
		    nd * sizeof(knytt_day_stat);
	knytt_search_report *r = calloc(1, sz);
	if (!r) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		goto done;
	}
	r->top = (knytt_query_stat *)(r + 1);
	r->few = r->top + ntop;
	r->days = (knytt_day_stat *)(r->few + nfew);
	r->ntop = ntop;
	memcpy(r->top, g, ntop * sizeof *g);
	for (size_t i = 0; i < ng && r->nfew < nfew; i++)
		if (g[i].mean_results <= few)
			r->few[r->nfew++] = g[i];
	r->ndays = nd;
	fill_days(l, dayv, nd, r->days);
	double rr = 0;
	for (size_t i = 0; i < l->n; i++) {
		r->searches++;
		r->zero_results += l->s[i].count == 0;
		r->clicked += (uint64_t)l->s[i].clicked;
		rr += l->s[i].rr;
		r->users += l->s[i].user &&
			    (i == 0 || l->s[i].user != l->s[i - 1].user);
	}
	r->ctr = l->n ? (double)r->clicked / (double)l->n : 0;
	r->mrr = l->n ? rr / (double)l->n : 0;
	*out = r;
done:
	free(p);
	free(g);
	free(dayv);
	return rc;
}

int knytt_store_search_report(knytt_store *st, int64_t from_ms, int64_t to_ms,
			      size_t top, int few, int64_t window_ms,
			      knytt_search_report **out)
{
	int rc = knytt__st_need_tenant(st);
	if (rc)
		return rc;
	if (!out)
		return knytt__err(KNYTT_EINVAL, "out is NULL");
	*out = NULL;
	if (from_ms < 0 || to_ms < 0 || (to_ms && to_ms <= from_ms))
		return knytt__err_field(KNYTT_EINVAL, "until",
				  "field until must be after since (both >= 0)");
	if (top > MAX_TOP)
		return knytt__err_field(KNYTT_EINVAL, "top",
					"field top must be 1..%d",
					MAX_TOP);
	if (window_ms < 0 || few < 0)
		return knytt__err_field(KNYTT_EINVAL, "window",
					"field window and few must be >= 0");
	int64_t to = to_ms ? to_ms : INT64_MAX;
	int64_t win = window_ms ? window_ms : DEFAULT_WINDOW_MS;
	slist l = {0};
	int64_t cache = knytt__st_cache_widen(st); /* store_int.h */
	if ((rc = load_searches(st, from_ms, to, &l)) == 0)
		rc = stream_clicks(st, from_ms, to, win, &l);
	knytt__st_cache_restore(st, cache);
	if (rc == 0 && (rc = build(&l, top ? top : 20, few, out)) == 0) {
		(*out)->from_ms = from_ms;
		(*out)->to_ms = to_ms;
		(*out)->window_ms = win;
	}
	for (size_t i = 0; i < l.n; i++)
		free(l.s[i].q);
	free(l.s);
	return rc;
}
