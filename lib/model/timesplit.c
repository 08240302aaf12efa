/*
 * timesplit.c -- a global time split of interactions, for evaluation in
 * time (train on everything before a date, test on the period after it).
 *
 * Why global and not per user: a per-user "last item out" split lets the
 * model train on events that happened after some test events of other
 * users, which leaks what became popular; a shop only ever knows the
 * past.  Every user is cut at the same instant here.
 *
 * The test set is what full ranking can score fairly: users without any
 * training interaction are left out (no personal model has anything to
 * go on: the cold-start path is measured elsewhere), and so are pairs
 * the user met in training (knytt_eval_full excludes a user's training
 * items from the ranking, so such a test item could never be hit).  Both
 * are counted in knytt_timesplit_info so a reader sees what was dropped.
 */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct knytt_timesplit {
	knytt__rec *recs; /* as added; w holds the value */
	size_t n, cap;
	double holdout;   /* used when !has_cut */
	int64_t cut;
	bool has_cut;
	bool split;       /* info valid */
	knytt_timesplit_info info;
};

int knytt_timesplit_create(knytt_timesplit **out)
{
	if (!out)
		return knytt__err(KNYTT_EINVAL, "out must not be NULL");
	knytt_timesplit *s = calloc(1, sizeof *s);
	if (!s)
		return knytt__err(KNYTT_ENOMEM, "no memory for a time split");
	s->holdout = 0.2;
	*out = s;
	return KNYTT_OK;
}

void knytt_timesplit_close(knytt_timesplit *s)
{
	if (!s)
		return;
	free(s->recs);
	free(s);
}

int knytt_timesplit_add(knytt_timesplit *s, uint32_t user, uint32_t item,
			unsigned type, float value, int64_t time)
{
	if (!s)
		return knytt__err(KNYTT_EINVAL, "split must not be NULL");
	if (type >= KNYTT_EVENT_MAX)
		return knytt__err(KNYTT_EINVAL, "type %u out of range (0..%d)",
				  type, KNYTT_EVENT_MAX - 1);
	if (!isfinite(value) || value < 0)
		return knytt__err(KNYTT_EINVAL,
				  "value of user %u item %u must be finite "
				  "and >= 0",
				  user, item);
	if (user == UINT32_MAX || item == UINT32_MAX)
		return knytt__err(KNYTT_EINVAL,
				  "user and item ids must be below %u",
				  UINT32_MAX);
	if (KNYTT__GROW(s->recs, s->cap, s->n + 1) != 0)
		return knytt__err(KNYTT_ENOMEM,
				  "no memory for %zu interactions", s->n + 1);
	s->recs[s->n++] = (knytt__rec){.user = user,
				       .item = item,
				       .w = value,
				       .type = type,
				       .time = time};
	return KNYTT_OK;
}

int knytt_timesplit_set_holdout(knytt_timesplit *s, double fraction)
{
	if (!s)
		return knytt__err(KNYTT_EINVAL, "split must not be NULL");
	if (!isfinite(fraction) || fraction <= 0 || fraction >= 1)
		return knytt__err(KNYTT_EINVAL,
				  "holdout fraction must be in (0, 1) (got "
				  "%g)",
				  fraction);
	s->holdout = fraction;
	s->has_cut = false;
	return KNYTT_OK;
}

int knytt_timesplit_set_cut(knytt_timesplit *s, int64_t cut)
{
	if (!s)
		return knytt__err(KNYTT_EINVAL, "split must not be NULL");
	s->cut = cut;
	s->has_cut = true;
	return KNYTT_OK;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* The cut of a holdout fraction: the time at position floor(n (1 - f)) of
 * the sorted times.  Also fills first / last.  0 or -1 without memory. */
static int choose_cut(knytt_timesplit *s, int64_t *cut)
{
	int64_t *t = malloc(s->n * sizeof *t);
	if (!t)
		return -1;
	for (size_t j = 0; j < s->n; j++)
		t[j] = s->recs[j].time;
	qsort(t, s->n, sizeof *t, cmp_i64);
	s->info.first = t[0];
	s->info.last = t[s->n - 1];
	size_t pos = (size_t)floor((double)s->n * (1.0 - s->holdout));
	if (pos >= s->n)
		pos = s->n - 1;
	*cut = s->has_cut ? s->cut : t[pos];
	free(t);
	return 0;
}

static uint64_t pair_key(const knytt__rec *r)
{
	return (uint64_t)r->user << 32 | r->item;
}

/* Sorted (user, item) keys of the training pairs; NULL without memory. */
static uint64_t *train_pairs(const knytt_timesplit *s, int64_t cut,
			     size_t *np)
{
	uint64_t *k = malloc((s->n ? s->n : 1) * sizeof *k);
	if (!k)
		return NULL;
	size_t n = 0;
	for (size_t j = 0; j < s->n; j++)
		if (s->recs[j].time < cut)
			k[n++] = pair_key(&s->recs[j]);
	qsort(k, n, sizeof *k, cmp_u64);
	*np = n;
	return k;
}

static bool has_user(const uint64_t *k, size_t n, uint32_t user)
{
	uint64_t lo = (uint64_t)user << 32;
	size_t a = 0, b = n; /* first key >= lo */
	while (a < b) {
		size_t m = a + (b - a) / 2;
		if (k[m] < lo)
			a = m + 1;
		else
			b = m;
	}
	return a < n && (k[a] >> 32) == user;
}

/* Test fate of each record: train, kept in test, or dropped. */
enum { F_TRAIN, F_TEST, F_COLD, F_SEEN };

/* Distinct users of the records with fate f, by a mark per user id. */
static size_t distinct_users(const knytt_timesplit *s,
			     const unsigned char *fate, int f,
			     unsigned char *mark, uint32_t nu)
{
	memset(mark, 0, nu);
	size_t n = 0;
	for (size_t j = 0; j < s->n; j++)
		if (fate[j] == f && !mark[s->recs[j].user]) {
			mark[s->recs[j].user] = 1;
			n++;
		}
	return n;
}

/* Decides every record's fate for the cut; fills the info counts. */
static int decide(knytt_timesplit *s, int64_t cut, unsigned char *fate)
{
	size_t np = 0;
	uint64_t *k = train_pairs(s, cut, &np);
	if (!k)
		return -1;
	knytt_timesplit_info *in = &s->info;
	in->train = in->test = in->test_cold = in->test_seen = 0;
	uint32_t nu = 0;
	for (size_t j = 0; j < s->n; j++) {
		const knytt__rec *r = &s->recs[j];
		if (r->user >= nu)
			nu = r->user + 1;
		uint64_t key = pair_key(r);
		if (r->time < cut) {
			fate[j] = F_TRAIN;
			in->train++;
		} else if (!has_user(k, np, r->user)) {
			fate[j] = F_COLD;
			in->test_cold++;
		} else if (bsearch(&key, k, np, sizeof *k, cmp_u64)) {
			fate[j] = F_SEEN;
			in->test_seen++;
		} else {
			fate[j] = F_TEST;
			in->test++;
		}
	}
	free(k);
	unsigned char *mark = malloc(nu ? nu : 1);
	if (!mark)
		return -1;
	in->users_test = distinct_users(s, fate, F_TEST, mark, nu);
	in->users_cold = distinct_users(s, fate, F_COLD, mark, nu);
	free(mark);
	return 0;
}

int knytt_timesplit_split(knytt_timesplit *s, knytt_matrix *train,
			  knytt_matrix *test)
{
	if (!s)
		return knytt__err(KNYTT_EINVAL, "split must not be NULL");
	if ((train && train->built) || (test && test->built))
		return knytt__err(KNYTT_ESTATE,
				  "train and test must not be built yet: the "
				  "split fills them, the caller builds them");
	if (s->n == 0)
		return knytt__err(KNYTT_EINVAL,
				  "no interaction to split: add some first");
	int64_t cut;
	unsigned char *fate = malloc(s->n);
	if (!fate || choose_cut(s, &cut) != 0 || decide(s, cut, fate) != 0) {
		free(fate);
		return knytt__err(KNYTT_ENOMEM,
				  "no memory to split %zu interactions", s->n);
	}
	s->info.cut = cut;
	s->split = true;
	if (s->info.train == 0 || s->info.test == 0) {
		free(fate);
		return knytt__err(KNYTT_EINVAL,
				  "cut %lld leaves %s empty (interactions "
				  "from %lld to %lld; %zu after the cut of "
				  "which %zu by cold users)",
				  (long long)cut,
				  s->info.train ? "the test" : "training",
				  (long long)s->info.first,
				  (long long)s->info.last,
				  s->n - s->info.train, s->info.test_cold);
	}
	int rc = KNYTT_OK;
	for (size_t j = 0; j < s->n && rc == KNYTT_OK; j++) {
		const knytt__rec *r = &s->recs[j];
		knytt_matrix *m = fate[j] == F_TRAIN ? train
				  : fate[j] == F_TEST ? test
						      : NULL;
		if (m)
			rc = knytt_matrix_add(m, r->user, r->item, r->type,
					      r->w, r->time);
	}
	free(fate);
	return rc;
}

int knytt_timesplit_info_get(const knytt_timesplit *s,
			     knytt_timesplit_info *out)
{
	if (!s || !out)
		return knytt__err(KNYTT_EINVAL, "split and out must not be NULL");
	if (!s->split)
		return knytt__err(KNYTT_ESTATE,
				  "no split yet: call knytt_timesplit_split");
	*out = s->info;
	return KNYTT_OK;
}

int knytt_timesplit_popularity(const knytt_timesplit *s, int64_t window,
			       uint32_t nitems, float *out)
{
	if (!s || (!out && nitems))
		return knytt__err(KNYTT_EINVAL, "split and out must not be NULL");
	if (window < 0)
		return knytt__err(KNYTT_EINVAL, "window must be >= 0 (got %lld)",
				  (long long)window);
	if (!s->split)
		return knytt__err(KNYTT_ESTATE,
				  "no split yet: call knytt_timesplit_split");
	int64_t cut = s->info.cut;
	/* cut - window may underflow for huge windows: compare the gap. */
	memset(out, 0, (size_t)nitems * sizeof *out);
	for (size_t j = 0; j < s->n; j++) {
		const knytt__rec *r = &s->recs[j];
		if (r->time >= cut || r->item >= nitems)
			continue;
		if (window > 0 && (uint64_t)cut - (uint64_t)r->time >
					  (uint64_t)window)
			continue;
		out[r->item] += 1;
	}
	return KNYTT_OK;
}

int knytt_static_scorer(void *ctx, uint32_t user, const uint32_t *items,
			size_t n, float *out)
{
	const knytt_item_scores *sc = ctx;
	(void)user;
	for (size_t j = 0; j < n; j++) {
		uint32_t i = items ? items[j] : (uint32_t)j;
		out[j] = sc && i < sc->n ? sc->scores[i] : -INFINITY;
	}
	return KNYTT_OK;
}
