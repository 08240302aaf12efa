/*
 * counted.c -- the feedback events this process counted into a tenant's
 * trending counters lately, so that a replica's catch-up (replica.c)
 * counts each event once.
 *
 * After its listening connection was lost, a replica counts the events
 * stored after the last interaction mark its notifications covered
 * (knytt_engine_refresh_trending).  Some of those it counted already:
 * its own writes (knytt_engine_feedback counts them at once) and the
 * notifications it applied after that mark.  Those are remembered here,
 * each under a key (a hash of tenant, shopper, item, type and time:
 * what an event is to a profile, lib/engine), and forgotten once the
 * covered mark has moved past them: an entry lives EPOCHS advances of
 * that mark (each advance is a tick), long enough for the mark of a
 * notification's event to have been covered (replica.c explains the
 * two-read lag).  While the listener is down the mark does not move, so
 * the entries of an outage wait for its catch-up.
 *
 * Second use: the events the catch-up counted may also come as
 * notifications that were queued on the new connection meanwhile; those
 * are claimed from the "streamed" set and not applied again.
 *
 * Both are multisets in open-addressing tables of 64-bit keys; a table
 * holds at most MAX_KEYS (an outage of ~500k own events): past that the
 * set is marked overflowed and the catch-up leaves trending alone
 * rather than count twice (it logs so).  One mutex guards both.
 */
#include "knyttd.h"

#include <stdlib.h>
#include <string.h>

#define EPOCHS 5
#define MAX_KEYS (1u << 19)

typedef struct slot {
	uint64_t key;   /* 0: empty */
	uint32_t count; /* 0: a removed entry, still on the probe path */
	uint32_t epoch;
} slot;

typedef struct kset {
	slot *s;
	size_t cap, used; /* used: slots with a key (counts included 0) */
	int overflow;
} kset;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static kset counted, streamed;
static uint32_t epoch;

uint64_t kd_counted_key(uint64_t tenant, const char *user, const char *item,
			const char *type, int64_t ts_ms)
{
	/* FNV-1a over the fields, separated, then a final mix */
	uint64_t h = 0xcbf29ce484222325ULL ^ tenant;
	const char *f[3] = {user, item, type};
	for (int k = 0; k < 3; k++) {
		for (const char *p = f[k]; p && *p; p++)
			h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
		h = (h ^ 0xff) * 0x100000001b3ULL;
	}
	h ^= (uint64_t)ts_ms;
	h *= 0x9e3779b97f4a7c15ULL;
	h ^= h >> 29;
	return h ? h : 1;
}

static slot *find(const kset *t, uint64_t key)
{
	size_t m = t->cap - 1;
	for (size_t i = key & m;; i = (i + 1) & m)
		if (t->s[i].key == key || t->s[i].key == 0)
			return &t->s[i];
}

/* Rebuilds @p t into @p cap slots, keeping live entries of recent
 * epochs (all of them with @p all). */
static int rebuild(kset *t, size_t cap, int all)
{
	slot *old = t->s;
	size_t ocap = t->cap;
	t->s = calloc(cap, sizeof *t->s);
	if (!t->s) {
		t->s = old;
		return -1;
	}
	t->cap = cap;
	t->used = 0;
	for (size_t i = 0; i < ocap; i++) {
		const slot *o = &old[i];
		if (!o->key || !o->count ||
		    (!all && epoch - o->epoch > EPOCHS))
			continue;
		*find(t, o->key) = *o;
		t->used++;
	}
	free(old);
	return 0;
}

static void add(kset *t, uint64_t key)
{
	if (t->overflow)
		return;
	if ((t->used + 1) * 2 > t->cap) {
		size_t live = 0;
		for (size_t i = 0; i < t->cap; i++)
			live += t->s[i].key && t->s[i].count;
		if (live >= MAX_KEYS ||
		    rebuild(t, t->cap ? (live * 4 > t->cap ? t->cap * 2
							    : t->cap)
				      : 1024,
			    1)) {
			t->overflow = 1;
			return;
		}
	}
	slot *x = find(t, key);
	if (!x->key) {
		x->key = key;
		t->used++;
	}
	x->count++;
	x->epoch = epoch;
}

static int take(kset *t, uint64_t key)
{
	if (!t->cap)
		return 0;
	slot *x = find(t, key);
	if (!x->key || !x->count)
		return 0;
	x->count--;
	return 1;
}

void kd_counted_add(uint64_t key)
{
	pthread_mutex_lock(&mu);
	add(&counted, key);
	pthread_mutex_unlock(&mu);
}

int kd_counted_take(uint64_t key)
{
	pthread_mutex_lock(&mu);
	int yes = take(&counted, key);
	pthread_mutex_unlock(&mu);
	return yes;
}

void kd_counted_streamed(uint64_t key)
{
	pthread_mutex_lock(&mu);
	add(&streamed, key);
	pthread_mutex_unlock(&mu);
}

int kd_counted_take_streamed(uint64_t key)
{
	pthread_mutex_lock(&mu);
	int yes = take(&streamed, key);
	pthread_mutex_unlock(&mu);
	return yes;
}

int kd_counted_overflowed(void)
{
	pthread_mutex_lock(&mu);
	int o = counted.overflow;
	pthread_mutex_unlock(&mu);
	return o;
}

void kd_counted_tick(void)
{
	pthread_mutex_lock(&mu);
	epoch++;
	kset *t[2] = {&counted, &streamed};
	for (int k = 0; k < 2; k++) {
		/* a sweep every EPOCHS ticks keeps the tables small */
		if (t[k]->cap && epoch % EPOCHS == 0)
			rebuild(t[k], t[k]->cap, 0);
	}
	pthread_mutex_unlock(&mu);
}

void kd_counted_reset_overflow(void)
{
	pthread_mutex_lock(&mu);
	free(counted.s);
	memset(&counted, 0, sizeof counted);
	pthread_mutex_unlock(&mu);
}
