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
 * counts: what the first half of ML-1M held out in 2001 rewards).  The
 * hourly list is left out: an hour of events is too few to rank a month
 * ahead by.
 */
#include "engine_int.h"

#include "../model/tune.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* trending lists the tuner may use: knytt__trend_half_life[FIRST_H..] */
#define FIRST_H 1

int knytt__engine_tune(knytt_engine *e, knytt__tune_cfg *cfg,
		       const uint32_t *u, const uint32_t *it, const float *w,
		       const int64_t *ts, size_t n, uint32_t nusers,
		       uint32_t nitems, char *json, size_t cap)
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
		.npop = NTREND - FIRST_H + 1,
		.pop_window = 28LL * 86400000,
		.threads = e->threads,
		/* the engine's kind is a setting: the search stays in it */
		.fixed_kind = 1,
		.base = *cfg,
	};
	for (int h = 0; h + 1 < in.npop; h++)
		in.pop_hl[h] = knytt__trend_half_life[FIRST_H + h] * 1000.0;
	in.pop_hl[in.npop - 1] = 0; /* the all-time popularity list */
	knytt__tune_out out;
	int rc = knytt__tune(&in, &out);
	free(recs);
	if (rc)
		return rc;
	*cfg = out.best;
	/* the engine's list: a trending one, or -1 for popularity */
	cfg->pop = cfg->pop == in.npop - 1 ? -1 : cfg->pop + FIRST_H;
	out.best.pop = cfg->pop;
	knytt__tune_json(&out, json, cap);
	return KNYTT_OK;
}

void knytt__snap_blend_from_meta(knytt__snap *s, const char *meta)
{
	s->blend_w = 0;
	s->blend_h = 0;
	cJSON *j = meta ? cJSON_Parse(meta) : NULL;
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "tune");
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(t, "blend");
	const cJSON *h = cJSON_GetObjectItemCaseSensitive(t, "popularity_list");
	if (cJSON_IsNumber(b) && cJSON_IsNumber(h) && b->valuedouble > 0 &&
	    b->valuedouble <= 1 && h->valueint >= -1 && h->valueint < NTREND) {
		s->blend_w = (float)b->valuedouble;
		s->blend_h = h->valueint;
	}
	cJSON_Delete(j);
}
