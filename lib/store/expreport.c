/*
 * expreport.c -- an experiment's report: exposures joined with the
 * interactions that followed them (knytt_store_experiment_report).
 *
 * The exposures are read whole (ordered by shopper and time, the shown
 * ids parsed into one pool), then the outcome interactions of the
 * assigned shoppers stream past once in the same order.  For each
 * outcome the shopper's exposures are walked back from the last one at
 * or before it, while still inside the window; the first that showed the
 * item takes it (last touch).  A click marks that exposure as clicked;
 * an add to cart or purchase marks its shopper converted in that
 * exposure's variant.  Memory: the exposures and their shown ids, not
 * the interactions.
 */
#include "store_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define O (st->ops)

typedef struct expo {
	uint64_t user;
	int64_t ts;
	int variant;
	int clicked;
	size_t first, n; /* shown ids: pool[first .. first + n) */
} expo;

typedef struct exps {
	expo *e;
	size_t n, cap;
	uint64_t *pool;
	size_t npool, cappool;
} exps;

static int parse_shown(exps *x, const char *s, expo *e)
{
	e->first = x->npool;
	e->n = 0;
	while (s && *s) {
		char *end;
		unsigned long long v = strtoull(s, &end, 10);
		if (end == s)
			break;
		if (KNYTT__GROW(x->pool, x->cappool, x->npool + 1))
			return KNYTT_ENOMEM;
		x->pool[x->npool++] = v;
		e->n++;
		s = end;
	}
	return 0;
}

static int load_exposures(knytt_store *st, uint64_t eid, exps *x)
{
	knytt__stmt *q;
	int rc = O->prepare(st->db,
			    "SELECT user_id, variant, ts, shown FROM "
			    "experiment_exposures WHERE experiment = ?1 ORDER "
			    "BY user_id, ts, id",
			    &q);
	if (rc)
		return rc;
	O->bind_i64(q, 1, (int64_t)eid);
	while ((rc = O->step(q)) == 1) {
		if (KNYTT__GROW(x->e, x->cap, x->n + 1)) {
			rc = knytt__err(KNYTT_ENOMEM, "out of memory");
			break;
		}
		expo *e = &x->e[x->n++];
		e->user = (uint64_t)O->col_i64(q, 0);
		e->variant = (int)O->col_i64(q, 1);
		e->ts = O->col_i64(q, 2);
		e->clicked = 0;
		if (parse_shown(x, O->col_text(q, 3), e)) {
			rc = knytt__err(KNYTT_ENOMEM, "out of memory");
			break;
		}
	}
	O->finalize(q);
	return rc < 0 ? rc : 0;
}

/* Per-shopper conversion, per variant: bit v of conv[u] for the u-th
 * distinct shopper (in exposure order). */
typedef struct walk {
	exps *x;
	int64_t window;
	size_t lo, hi;       /* exposures of the current shopper */
	size_t ucur;         /* index of the current shopper */
	unsigned char *conv; /* per shopper: variants converted (bits) */
	size_t *ustart;      /* first exposure of each shopper */
	size_t nusers;
} walk;

/* Points w at @p user's exposures; 0 if the user has none. */
static int seek_user(walk *w, uint64_t user)
{
	size_t a = 0, b = w->nusers;
	while (a < b) {
		size_t m = (a + b) / 2;
		if (w->x->e[w->ustart[m]].user < user)
			a = m + 1;
		else
			b = m;
	}
	if (a == w->nusers || w->x->e[w->ustart[a]].user != user)
		return 0;
	w->ucur = a;
	w->lo = w->ustart[a];
	w->hi = a + 1 < w->nusers ? w->ustart[a + 1] : w->x->n;
	return 1;
}

static void attribute(walk *w, uint64_t item, const char *type, int64_t ts)
{
	int click = !strcmp(type, "click");
	size_t i = w->hi;
	while (i > w->lo && w->x->e[i - 1].ts > ts)
		i--;
	for (; i > w->lo; i--) {
		expo *e = &w->x->e[i - 1];
		if (ts - e->ts > w->window)
			return;
		const uint64_t *ids = w->x->pool + e->first;
		for (size_t j = 0; j < e->n; j++) {
			if (ids[j] != item)
				continue;
			if (click)
				e->clicked = 1;
			else if (e->variant >= 0 &&
				 e->variant < KNYTT_EXP_MAX_VARIANTS)
				w->conv[w->ucur] |= (unsigned char)(1u
								    << e->variant);
			return;
		}
	}
}

static int stream_outcomes(knytt_store *st, const knytt_experiment *xp,
			   walk *w)
{
	if (w->x->n == 0)
		return 0;
	int64_t lo = w->x->e[0].ts, hi = lo;
	for (size_t i = 0; i < w->x->n; i++) {
		if (w->x->e[i].ts < lo)
			lo = w->x->e[i].ts;
		if (w->x->e[i].ts > hi)
			hi = w->x->e[i].ts;
	}
	knytt__stmt *q;
	int rc = O->prepare(
		st->db,
		"SELECT user_id, item_id, type, ts FROM interactions WHERE "
		"tenant = ?1 AND ts >= ?2 AND ts <= ?3 AND type IN ('click', "
		"'add_to_cart', 'purchase') AND user_id IN (SELECT user_id "
		"FROM experiment_assign WHERE experiment = ?4) ORDER BY "
		"user_id, ts, id",
		&q);
	if (rc)
		return rc;
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, lo);
	O->bind_i64(q, 3, hi + xp->window_ms);
	O->bind_i64(q, 4, (int64_t)xp->id);
	uint64_t cur = 0;
	int have = 0;
	while ((rc = O->step(q)) == 1) {
		uint64_t u = (uint64_t)O->col_i64(q, 0);
		if (u != cur || !have) {
			cur = u;
			have = seek_user(w, u);
		}
		if (have)
			attribute(w, (uint64_t)O->col_i64(q, 1),
				  O->col_text(q, 2), O->col_i64(q, 3));
	}
	O->finalize(q);
	return rc < 0 ? rc : 0;
}

static void tally(const knytt_experiment *xp, const walk *w,
		  knytt_exp_report *out)
{
	uint64_t expo_n[KNYTT_EXP_MAX_VARIANTS] = {0},
		 clicks[KNYTT_EXP_MAX_VARIANTS] = {0},
		 users[KNYTT_EXP_MAX_VARIANTS] = {0},
		 conv[KNYTT_EXP_MAX_VARIANTS] = {0};
	for (size_t u = 0; u < w->nusers; u++) {
		size_t a = w->ustart[u];
		size_t b = u + 1 < w->nusers ? w->ustart[u + 1] : w->x->n;
		unsigned seen = 0;
		for (size_t i = a; i < b; i++) {
			const expo *e = &w->x->e[i];
			if (e->variant < 0 || e->variant >= xp->nvariants)
				continue;
			expo_n[e->variant]++;
			clicks[e->variant] += (uint64_t)e->clicked;
			seen |= 1u << e->variant;
		}
		for (int v = 0; v < xp->nvariants; v++) {
			users[v] += (seen >> v) & 1;
			conv[v] += (seen >> v) & (w->conv[u] >> v) & 1;
		}
	}
	out->nvariants = xp->nvariants;
	out->small_sample = 0;
	for (int v = 0; v < xp->nvariants; v++) {
		knytt_variant_report *r = &out->v[v];
		memcpy(r->name, xp->variants[v].name, sizeof r->name);
		r->exposures = expo_n[v];
		r->users = users[v];
		knytt_ab_compare(expo_n[v], clicks[v], expo_n[0], clicks[0],
				 v == 0, &r->ctr);
		knytt_ab_compare(users[v], conv[v], users[0], conv[0], v == 0,
				 &r->conversion);
		out->small_sample |= r->ctr.small | r->conversion.small;
	}
}

int knytt_store_experiment_report(knytt_store *st, const char *name,
				  knytt_exp_report *out)
{
	if (!out)
		return knytt__err(KNYTT_EINVAL, "out is NULL");
	memset(out, 0, sizeof *out);
	out->exp.struct_size = sizeof out->exp;
	int rc = knytt_store_experiment_get(st, name, &out->exp);
	if (rc)
		return rc;
	exps x = {0};
	walk w = {.x = &x, .window = out->exp.window_ms};
	int64_t cache = knytt__st_cache_widen(st); /* store_int.h */
	if ((rc = load_exposures(st, out->exp.id, &x)))
		goto done;
	w.conv = calloc(x.n + 1, 1);
	w.ustart = malloc((x.n + 1) * sizeof *w.ustart);
	if (!w.conv || !w.ustart) {
		rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		goto done;
	}
	for (size_t i = 0; i < x.n; i++)
		if (i == 0 || x.e[i].user != x.e[i - 1].user)
			w.ustart[w.nusers++] = i;
	if ((rc = stream_outcomes(st, &out->exp, &w)))
		goto done;
	tally(&out->exp, &w, out);
done:
	knytt__st_cache_restore(st, cache);
	free(x.e);
	free(x.pool);
	free(w.conv);
	free(w.ustart);
	return rc;
}
