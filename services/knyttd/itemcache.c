/*
 * itemcache.c -- the item fields of answers, read from the store once and
 * kept rendered as JSON text.
 *
 * Every result of a recommendation, search, similar or trending answer
 * carries its item's catalog fields.  Reading them from the store for
 * each result (a SQLite query, with its read transaction and file-lock
 * system calls, then a cJSON tree printed) was 40% of knyttd's CPU per
 * recommendation (perf, benchmarks/serve, ten results an answer); here a
 * hit is one copy of the item's text under a stripe lock.
 *
 * The table is direct-mapped: (tenant, store id) hashes to one slot, and
 * a newcomer replaces whatever held it, so memory is bounded by the
 * slot count with no eviction bookkeeping.  Store ids are dense per
 * database, so a catalog smaller than the table mostly lands in slots of
 * its own.
 *
 * Freshness.  An entry is never trusted longer than it takes to learn of
 * a change:
 *  - item writes through this process forget the item (PATCH, DELETE)
 *    or the tenant's items (POST /items) once the store has them;
 *  - writes by anyone else on the database (another knyttd on the same
 *    PostgreSQL, `knytt import` on the SQLite file) are found by asking
 *    the store for the items changed since the last look
 *    (knytt_store_items_changed), at most every kd_cfg.item_cache_ms, by
 *    one request thread of the tenant while the others go on.
 * A miss that read the store while the item was being forgotten must not
 * store what it read: each stripe has a generation, bumped by every
 * forget, and a miss stores its entry only when the generation it saw
 * before reading the store is still the current one.
 *
 * --item-cache-ms 0 turns the table off: every result is read from the
 * store, as before.
 */
#include "knyttd.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* 2^17 slots of 48 bytes (6 MiB, touched as used); the text of an item
 * is about 300 bytes to 1 KiB with its description. */
#define IC_SLOTS (1u << 17)
#define IC_STRIPES 64

typedef struct ic_slot {
	uint64_t tenant, id; /* id 0 = empty */
	char *text;          /* the item's object without its final '}' */
	size_t len;
	double price, quality;
	int in_stock;
	int gone; /* deleted or unknown: no text */
} ic_slot;

static ic_slot *slots;
static pthread_mutex_t stripe_mu[IC_STRIPES];
static uint64_t stripe_gen[IC_STRIPES]; /* under stripe_mu */

/* Per tenant: when the store was last asked for changed items. */
typedef struct ic_tenant {
	uint64_t tenant;
	int64_t since_ms;          /* items changed at or after: unseen */
	_Atomic int64_t next_us;   /* when to ask again (kd_now_us) */
	pthread_mutex_t mu;        /* held by the thread asking */
	struct ic_tenant *next;
} ic_tenant;

static _Atomic(ic_tenant *) tenants; /* push-only list, freed at exit */
static pthread_mutex_t tenants_mu = PTHREAD_MUTEX_INITIALIZER;

int kd_itemcache_init(void)
{
	if (kd_cfg.item_cache_ms <= 0)
		return 0;
	slots = calloc(IC_SLOTS, sizeof *slots);
	if (!slots)
		return -1;
	for (int i = 0; i < IC_STRIPES; i++)
		pthread_mutex_init(&stripe_mu[i], NULL);
	return 0;
}

void kd_itemcache_free(void)
{
	for (size_t i = 0; slots && i < IC_SLOTS; i++)
		free(slots[i].text);
	free(slots);
	slots = NULL;
	ic_tenant *t = atomic_exchange(&tenants, NULL);
	while (t) {
		ic_tenant *n = t->next;
		pthread_mutex_destroy(&t->mu);
		free(t);
		t = n;
	}
}

static uint32_t slot_of(uint64_t tenant, uint64_t id)
{
	/* ids of one tenant stay in consecutive slots; tenants apart */
	uint64_t h = id + tenant * 0x9E3779B97F4A7C15ull;
	return (uint32_t)(h & (IC_SLOTS - 1));
}

static void slot_clear(ic_slot *s)
{
	free(s->text);
	memset(s, 0, sizeof *s);
}

void kd_itemcache_forget(uint64_t tenant, uint64_t id)
{
	if (!slots)
		return;
	uint32_t i = slot_of(tenant, id);
	pthread_mutex_t *mu = &stripe_mu[i % IC_STRIPES];
	pthread_mutex_lock(mu);
	if (slots[i].tenant == tenant && slots[i].id == id)
		slot_clear(&slots[i]);
	stripe_gen[i % IC_STRIPES]++;
	pthread_mutex_unlock(mu);
}

void kd_itemcache_forget_tenant(uint64_t tenant)
{
	if (!slots)
		return;
	for (uint32_t k = 0; k < IC_STRIPES; k++) {
		pthread_mutex_lock(&stripe_mu[k]);
		for (uint32_t i = k; i < IC_SLOTS; i += IC_STRIPES)
			if (slots[i].id && slots[i].tenant == tenant)
				slot_clear(&slots[i]);
		stripe_gen[k]++;
		pthread_mutex_unlock(&stripe_mu[k]);
	}
}

static ic_tenant *tenant_state(uint64_t tenant)
{
	for (ic_tenant *t = atomic_load(&tenants); t; t = t->next)
		if (t->tenant == tenant)
			return t;
	pthread_mutex_lock(&tenants_mu);
	ic_tenant *t = atomic_load(&tenants);
	while (t && t->tenant != tenant)
		t = t->next;
	if (!t && (t = calloc(1, sizeof *t))) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		t->tenant = tenant;
		/* a second back: a change made while this entry is being
		 * created is asked for again rather than missed */
		t->since_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000 -
			      1000;
		atomic_store(&t->next_us,
			     kd_now_us() + kd_cfg.item_cache_ms * 1000);
		pthread_mutex_init(&t->mu, NULL);
		t->next = atomic_load(&tenants);
		atomic_store(&tenants, t);
	}
	pthread_mutex_unlock(&tenants_mu);
	return t;
}

typedef struct changed {
	uint64_t tenant;
	int64_t newest_ms;
} changed;

static int on_changed(const knytt_item *it, void *ctx)
{
	changed *c = ctx;
	kd_itemcache_forget(c->tenant, it->id);
	if (it->updated_ms > c->newest_ms)
		c->newest_ms = it->updated_ms;
	return 0;
}

/* Forgets the items of r's tenant changed in the store since the last
 * look, when that was kd_cfg.item_cache_ms ago; one thread asks. */
static void refresh(kd_req *r, ic_tenant *t)
{
	int64_t now = kd_now_us();
	if (now < atomic_load(&t->next_us) || pthread_mutex_trylock(&t->mu))
		return;
	if (now >= atomic_load(&t->next_us)) {
		changed c = {t->tenant, t->since_ms};
		/* the newest millisecond is read again next time: rows
		 * written later within it are not missed */
		if (knytt_store_items_changed(r->st, t->since_ms, on_changed,
					      &c) >= 0)
			t->since_ms = c.newest_ms;
		atomic_store(&t->next_us,
			     kd_now_us() + kd_cfg.item_cache_ms * 1000);
	}
	pthread_mutex_unlock(&t->mu);
}

/* The item from the store, rendered into @p s (text owned by s): 1 when
 * @p s may be kept, 0 after a store error or without memory (the result
 * is left out of this answer, and the next one asks again). */
static int load(kd_req *r, uint64_t id, ic_slot *s)
{
	knytt_item *it = NULL;
	memset(s, 0, sizeof *s);
	s->tenant = r->tenant;
	s->id = id;
	s->gone = 1;
	int rc = knytt_store_item_get_id(r->st, id, &it);
	if (rc) /* unknown in this tenant: gone for good */
		return rc == KNYTT_ENOTFOUND;
	if (!it->deleted) {
		cJSON *o = kd_item_json(it);
		char *txt = o ? cJSON_PrintUnformatted(o) : NULL;
		cJSON_Delete(o);
		size_t n = txt ? strlen(txt) : 0;
		if (n >= 2 && txt[n - 1] == '}') {
			txt[n - 1] = 0;
			s->text = txt;
			s->len = n - 1;
			s->price = it->price;
			s->quality = it->quality;
			s->in_stock = it->in_stock;
			s->gone = 0;
		} else {
			free(txt);
			knytt_free(it);
			return 0;
		}
	}
	knytt_free(it);
	return 1;
}

/* Copies what @p s says into @p b and @p brief: 1, or 0 when gone. */
static int give(const ic_slot *s, kd_buf *b, kd_item_brief *brief)
{
	if (s->gone)
		return 0;
	kd_buf_put(b, s->text, s->len);
	brief->price = s->price;
	brief->quality = s->quality;
	brief->in_stock = s->in_stock;
	return 1;
}

int kd_item_fields(kd_req *r, uint64_t id, kd_buf *b, kd_item_brief *brief)
{
	ic_slot fresh;
	if (!slots) { /* no cache: the store every time */
		load(r, id, &fresh);
		int ok = give(&fresh, b, brief);
		free(fresh.text);
		return ok;
	}
	ic_tenant *t = tenant_state(r->tenant);
	if (t)
		refresh(r, t);
	uint32_t i = slot_of(r->tenant, id), k = i % IC_STRIPES;
	pthread_mutex_lock(&stripe_mu[k]);
	if (t && slots[i].id == id && slots[i].tenant == r->tenant) {
		int ok = give(&slots[i], b, brief);
		pthread_mutex_unlock(&stripe_mu[k]);
		return ok;
	}
	uint64_t gen = stripe_gen[k];
	pthread_mutex_unlock(&stripe_mu[k]);
	/* no lock held while the store is read */
	int keep = load(r, id, &fresh);
	int ok = give(&fresh, b, brief);
	pthread_mutex_lock(&stripe_mu[k]);
	if (t && keep && stripe_gen[k] == gen) {
		slot_clear(&slots[i]);
		slots[i] = fresh;
		fresh.text = NULL;
	}
	pthread_mutex_unlock(&stripe_mu[k]);
	free(fresh.text);
	return ok;
}
