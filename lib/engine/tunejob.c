/*
 * tunejob.c -- the engine's side of automatic tuning: the training job
 * hands its interactions to lib/model/tune.c with the engine's settings
 * as the fixed ones, and the blend the tuning chose travels with the
 * model in its metadata ("tune" object), so an engine that opens the
 * store later serves the same blend.
 *
 * The popularity lists the tuner may blend are the engine's own
 * trending counters (knytt__trend_half_life, confidence-weighted,
 * seeded from the four weeks before "now"): the tuner scores the very
 * list recommend will read, and the all-time popularity list (event
 * counts: what the first half of ML-1M held out in 2001 rewards), and
 * the windowed counts of the last 3, 7, 14 and 28 days (recentwin.c:
 * "recent popularity" as a shop measures it, which on ML-100K held out
 * in time ranks the next weeks better than the decayed counters).  The
 * hourly list is left out: an hour of events is too few to rank a month
 * ahead by.
 */
#include "engine_int.h"

#include "../model/tune.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* trending lists the tuner may use: knytt__trend_half_life[FIRST_H..] */
#define FIRST_H 1
/* the windows of the windowed lists, days (at most KNYTT__WIN_KEEP) */
static const int win_days[] = {3, 7, 14, 28};
#define NWIN (int)(sizeof win_days / sizeof win_days[0])
/* the tuner's lists: NTREND - FIRST_H trending, all-time, NWIN windows */
#define ALLTIME (NTREND - FIRST_H)

int knytt__engine_tune(knytt_engine *e, knytt__tune_cfg *cfg,
		       const uint32_t *u, const uint32_t *it, const float *w,
		       const int64_t *ts, size_t n, uint32_t nusers,
		       uint32_t nitems, const knytt__tune_seq *seq,
		       knytt__tune_out *res, char *json, size_t cap)
{
	knytt__rec *recs = malloc((n ? n : 1) * sizeof *recs);
	if (!recs)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	for (size_t j = 0; j < n; j++)
		recs[j] = (knytt__rec){.user = u[j], .item = it[j],
				       .w = w[j], .time = ts[j]};
	knytt__tune_in in = {
		.recs = recs,
		.n = n,
		.nusers = nusers,
		.nitems = nitems,
		.day = 86400000,
		.npop = ALLTIME + 1 + (e->tune_windows ? NWIN : 0),
		.pop_window = 28LL * 86400000,
		.threads = e->threads,
		/* the engine's kind is a setting: the search stays in it */
		.fixed_kind = 1,
		.pools = e->tune_pool,
		.base = *cfg,
		.seq = seq,
	};
	for (int h = 0; h < ALLTIME; h++)
		in.pop_hl[h] = knytt__trend_half_life[FIRST_H + h] * 1000.0;
	in.pop_hl[ALLTIME] = 0; /* the all-time popularity list */
	for (int h = 0; h < NWIN && e->tune_windows; h++) {
		in.pop_hl[ALLTIME + 1 + h] = INFINITY; /* no decay */
		in.pop_win[ALLTIME + 1 + h] = win_days[h] * 86400000LL;
	}
	knytt__tune_out out;
	int rc = knytt__tune(&in, &out);
	free(recs);
	if (rc)
		return rc;
	*cfg = out.best;
	/* the engine's list: a trending one, -1 for popularity, or -2 for
	 * the window out.window_days long */
	cfg->pop = cfg->pop > ALLTIME	 ? -2
		   : cfg->pop == ALLTIME ? -1
					 : cfg->pop + FIRST_H;
	out.best.pop = cfg->pop;
	knytt__tune_json(&out, json, cap);
	if (res)
		*res = out;
	return KNYTT_OK;
}

void knytt__snap_blend_from_meta(knytt__snap *s, const char *meta)
{
	s->sr_w = 0;
	s->blend_w = 0;
	s->blend_h = 0;
	s->blend_win = 0;
	s->blend_pool = 0;
	cJSON *j = meta ? cJSON_Parse(meta) : NULL;
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "tune");
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(t, "blend");
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(t, "popularity_list");
	const cJSON *wd =
		cJSON_GetObjectItemCaseSensitive(t, "popularity_window_days");
	/* the personalised re-rank: a pool of the list, also with weight 0
	 * (the tastes' order of the pool alone); absent in older models */
	const cJSON *pl = cJSON_GetObjectItemCaseSensitive(t, "pool");
	unsigned pool = cJSON_IsNumber(pl) && pl->valuedouble >= 1 &&
				pl->valuedouble <= KNYTT__POOL_MAX
				? (unsigned)pl->valuedouble
				: 0;
	int ok_b = cJSON_IsNumber(b) &&
		   (b->valuedouble > 0 || (pool && b->valuedouble == 0)) &&
		   b->valuedouble <= 1 && cJSON_IsNumber(h);
	if (ok_b && h->valueint >= -1 && h->valueint < NTREND) {
		s->blend_w = (float)b->valuedouble;
		s->blend_h = h->valueint;
		s->blend_pool = pool;
	} else if (ok_b && h->valueint == -2 && cJSON_IsNumber(wd) &&
		   wd->valuedouble > 0 &&
		   wd->valuedouble * 864e5 <= (double)KNYTT__WIN_KEEP) {
		/* a window: the events the engine keeps reach back so far */
		s->blend_w = (float)b->valuedouble;
		s->blend_h = -1;
		s->blend_win = (int64_t)llround(wd->valuedouble * 864e5);
		s->blend_pool = pool;
	}
	/* the session model's weight ("sasrec" object, train.c) */
	const cJSON *sq = cJSON_GetObjectItemCaseSensitive(j, "sasrec");
	const cJSON *sw = cJSON_GetObjectItemCaseSensitive(sq, "weight");
	s->sr_w = cJSON_IsNumber(sw) && sw->valuedouble > 0 &&
			  sw->valuedouble <= 1
		  ? (float)sw->valuedouble
		  : 0;
	cJSON_Delete(j);
}
