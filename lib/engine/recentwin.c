/*
 * recentwin.c -- windowed recent popularity: each item's confidence of
 * the events in the last W days before "now", the list the tuning may
 * blend with recommend (lib/model/tune.c scores the same count,
 * knytt__tune_poplist with an infinite half-life, as of its validation
 * cut).
 *
 * Why a window and not only the decayed trending counters: on
 * MovieLens held out in time, "the items with the most events in the
 * last 14 days" ranks the next weeks better than any exponentially
 * decayed count the engine kept (half-lives 1 hour to 2 weeks), and is
 * what recent popularity usually means.  A window cannot be kept by
 * decaying a counter: an event leaves it at a precise time, so the
 * engine keeps the events themselves.
 *
 * How: the events of the last KNYTT__WIN_KEEP (four weeks, the longest
 * window the tuning tries) sorted by time, and per item the sum of the
 * confidence of those at or after `from` = now - W, in fixed point so
 * that adding and later subtracting the same event leaves exactly 0.
 * When "now" moves, the events that fell out of the window are
 * subtracted (found by binary search: they are the oldest); an event
 * older than the last one (a replay, another process's row) is inserted
 * at its place.  The ranked list is rebuilt on the next query after a
 * change: a pass over the items and a sort of those with events in the
 * window.  Memory: 16 bytes per event of the last four weeks, 8 per
 * item; kept only by an engine set to tune with windows
 * (knytt_engine_set_tune_windows): another one keeps no events, and a
 * model whose tuning chose a window serves its personal list alone
 * there.  Own mutex (win.mu), a leaf in the engine's lock order: taken
 * under stat_lock by feedback, under lock (read) by queries.
 */
#include "engine_int.h"

#include <math.h>
#include <stdlib.h>

/* fixed point: confidences are floats of modest size */
#define WSCALE 1048576.0

static int64_t fixw(float w)
{
	return (int64_t)llround((double)w * WSCALE);
}

/* The first event at or after @p ts in ev[head..n). */
static size_t lower(const knytt__recwin *rw, int64_t ts)
{
	size_t lo = rw->head, hi = rw->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (rw->ev[mid].ts < ts)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int grow_cnt(knytt__recwin *rw, uint32_t row)
{
	if (row < rw->ncnt)
		return 0;
	size_t m = rw->ncnt ? rw->ncnt : 1024;
	while (m <= row)
		m *= 2;
	int64_t *c = realloc(rw->cnt, m * sizeof *c);
	if (!c)
		return -1;
	for (size_t i = rw->ncnt; i < m; i++)
		c[i] = 0;
	rw->cnt = c;
	rw->ncnt = m;
	return 0;
}

/* Room for one more event at the end (expired ones moved out first). */
static int room(knytt__recwin *rw)
{
	if (rw->head > 0 && rw->head >= rw->n / 2) {
		memmove(rw->ev, rw->ev + rw->head,
			(rw->n - rw->head) * sizeof *rw->ev);
		rw->n -= rw->head;
		rw->head = 0;
	}
	if (rw->n < rw->cap)
		return 0;
	size_t m = rw->cap ? rw->cap * 2 : 4096;
	knytt__wev *v = realloc(rw->ev, m * sizeof *v);
	if (!v)
		return -1;
	rw->ev = v;
	rw->cap = m;
	return 0;
}

static void advance(knytt__recwin *rw, int64_t win, int64_t now);

void knytt__win_add(knytt_engine *e, uint32_t row, float w, int64_t ts,
		    int64_t now)
{
	knytt__recwin *rw = &e->win;
	/* only an engine set to tune with windows keeps events */
	if (!e->tune_windows || !(w > 0) || ts < now - KNYTT__WIN_KEEP)
		return;
	pthread_mutex_lock(&rw->mu);
	/* the window follows "now" here too, so the log stays four weeks
	 * long even when no query moves it */
	if (rw->win > 0)
		advance(rw, rw->win, now);
	else
		while (rw->head < rw->n &&
		       rw->ev[rw->head].ts < now - KNYTT__WIN_KEEP)
			rw->head++;
	/* without memory the event is not counted: the list is a ranking
	 * aid, never the record (the store is) */
	if (room(rw) == 0 && grow_cnt(rw, row) == 0) {
		size_t at = rw->n;
		if (at > rw->head && rw->ev[at - 1].ts > ts) {
			at = lower(rw, ts + 1);
			memmove(rw->ev + at + 1, rw->ev + at,
				(rw->n - at) * sizeof *rw->ev);
		}
		rw->ev[at] = (knytt__wev){ts, row, w};
		rw->n++;
		if (rw->win > 0 && ts >= rw->from) {
			rw->cnt[row] += fixw(w);
			rw->dirty = 1;
		}
	}
	pthread_mutex_unlock(&rw->mu);
}

/* Brings the counts to the window [now - win, ...) (caller holds mu). */
static void advance(knytt__recwin *rw, int64_t win, int64_t now)
{
	int64_t from = now - win;
	if (win != rw->win || from < rw->from) { /* recount */
		for (size_t i = 0; i < rw->ncnt; i++)
			rw->cnt[i] = 0;
		for (size_t j = lower(rw, from); j < rw->n; j++)
			rw->cnt[rw->ev[j].row] += fixw(rw->ev[j].w);
		rw->win = win;
		rw->from = from;
		rw->dirty = 1;
	} else if (from > rw->from) { /* the oldest leave */
		size_t a = lower(rw, rw->from), b = lower(rw, from);
		for (size_t j = a; j < b; j++)
			rw->cnt[rw->ev[j].row] -= fixw(rw->ev[j].w);
		rw->from = from;
		rw->dirty |= b > a;
	}
	/* forget what no window reaches any more */
	int64_t keep = now - KNYTT__WIN_KEEP;
	rw->head = lower(rw, keep < rw->from ? keep : rw->from);
}

typedef struct wkey {
	int64_t c;
	uint32_t row;
} wkey;

static int cmp_wkey(const void *a, const void *b)
{
	const wkey *x = a, *y = b;
	if (x->c != y->c)
		return x->c > y->c ? -1 : 1;
	return (x->row > y->row) - (x->row < y->row);
}

/* The ranked list from the counts (caller holds mu); -1 without
 * memory (the list then stays empty). */
static int rank(knytt__recwin *rw)
{
	size_t m = 0;
	for (size_t i = 0; i < rw->ncnt; i++)
		m += rw->cnt[i] > 0;
	wkey *k = malloc((m ? m : 1) * sizeof *k);
	uint32_t *o = realloc(rw->order, (m ? m : 1) * sizeof *o);
	if (o)
		rw->order = o;
	rw->norder = 0;
	if (!k || !o) {
		free(k);
		return -1;
	}
	m = 0;
	for (size_t i = 0; i < rw->ncnt; i++)
		if (rw->cnt[i] > 0)
			k[m++] = (wkey){rw->cnt[i], (uint32_t)i};
	qsort(k, m, sizeof *k, cmp_wkey);
	for (size_t i = 0; i < m; i++)
		rw->order[i] = k[i].row;
	rw->norder = m;
	rw->dirty = 0;
	free(k);
	return 0;
}

size_t knytt__win_lock(knytt_engine *e, int64_t win, int64_t now,
		       const uint32_t **rows, const int64_t **cnt)
{
	knytt__recwin *rw = &e->win;
	pthread_mutex_lock(&rw->mu);
	advance(rw, win, now);
	if (rw->dirty)
		rank(rw);
	*rows = rw->order;
	*cnt = rw->cnt;
	return rw->norder;
}

void knytt__win_unlock(knytt_engine *e)
{
	pthread_mutex_unlock(&e->win.mu);
}

double knytt__win_score(int64_t c)
{
	return (double)c / WSCALE;
}

void knytt__win_init(knytt_engine *e)
{
	memset(&e->win, 0, sizeof e->win);
	pthread_mutex_init(&e->win.mu, NULL);
}

void knytt__win_free(knytt_engine *e)
{
	free(e->win.ev);
	free(e->win.cnt);
	free(e->win.order);
	pthread_mutex_destroy(&e->win.mu);
}
