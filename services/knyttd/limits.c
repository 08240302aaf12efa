/*
 * limits.c -- per-key rate limits and per-tenant quotas (kd_limit_check,
 * which route.c calls after the credential and the body are checked),
 * and the admin routes that set them.
 *
 * Rate: a token bucket per API key (a secret or public key; the admin key
 * and open routes are not limited): it holds up to "burst" tokens, gains
 * "requests_per_second" a second, and a request takes one; an empty
 * bucket answers 429 with Retry-After, the whole seconds until a token
 * is back.  Buckets are keyed by a keyed hash of the key (libsodium
 * shorthash), so the table never holds a key.  The table is fixed: when
 * it is full, the least recently used bucket of the probe window is
 * reused (that key starts again with a full bucket).
 *
 * Quotas: items and stored interactions per tenant.  A batch that would
 * take the tenant past its quota is refused whole with 409
 * quota_exceeded; every item of a batch counts as new (an update of an
 * item already stored counts too: knowing which are new costs a lookup
 * per item).  Counts come from the store and are kept for a second, so
 * writers racing within that second can pass a quota by their batches.
 *
 * Settings: --rate-limit / --rate-burst / --max-items /
 * --max-interactions give every tenant's defaults (0 = none); PUT
 * /api/v1/admin/tenants/{name}/limits overrides one tenant's.  The
 * override is stored in the store (the metadata of a model named
 * "knyttd-limits", a new version per change, as the training schedule
 * does), so it outlives a restart; each process reads a tenant's
 * settings again when they are LIMITS_RELOAD_US old, so a change made
 * through one replica reaches the others within that time.  The buckets
 * themselves stay per process (knyttd(8), REPLICAS).
 */
#include "knyttd.h"

#include <math.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define NBUCKETS 8192
#define PROBE 8
#define MAX_TENANTS 4096
#define LIMITS_NAME "knyttd-limits"
#define LIMITS_RELOAD_US 5000000LL

typedef struct bucket {
	uint64_t key; /* 0 = free */
	double tokens;
	int64_t last_us;
} bucket;

typedef struct tlimits {
	uint64_t tenant; /* 0 = free */
	kd_limits l;
	int64_t items, events, counted_us; /* cached store counts */
	int64_t loaded_us; /* when l was read from the store; -1 never */
} tlimits;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static bucket buckets[NBUCKETS];
static tlimits tenants[MAX_TENANTS];
static unsigned char hkey[crypto_shorthash_KEYBYTES];
static pthread_once_t hkey_once = PTHREAD_ONCE_INIT;

static void hkey_init(void)
{
	crypto_shorthash_keygen(hkey);
}

/* The settings of @p tenant (an entry made from the defaults when none);
 * NULL when the table is full. Under mu. */
static tlimits *of(uint64_t tenant)
{
	for (int i = 0; i < MAX_TENANTS; i++) {
		if (tenants[i].tenant == tenant)
			return &tenants[i];
		if (!tenants[i].tenant) {
			tenants[i].tenant = tenant;
			tenants[i].l = kd_cfg.limits;
			tenants[i].counted_us = -1;
			tenants[i].loaded_us = -1;
			return &tenants[i];
		}
	}
	return NULL;
}

/* The stored settings of the tenant @p st has selected, over the
 * defaults: 0 (none stored: the defaults) or a store error. */
static int limits_read(knytt_store *st, kd_limits *l)
{
	*l = kd_cfg.limits;
	cJSON *o;
	int rc = kd_settings_get(st, LIMITS_NAME, &o);
	if (rc || !o)
		return rc;
	l->rps = kd_json_num(o, "requests_per_second", l->rps);
	l->burst = kd_json_num(o, "burst", l->burst);
	l->max_items = (int64_t)kd_json_num(o, "max_items",
					    (double)l->max_items);
	l->max_interactions = (int64_t)kd_json_num(o, "max_interactions",
						   (double)l->max_interactions);
	cJSON_Delete(o);
	return 0;
}

/* Reads the settings of @p tenant (selected on @p st) from the store
 * into the table when they are older than LIMITS_RELOAD_US, or @p force.
 * A store failure keeps what the table has (and tries again later). */
static void limits_refresh(knytt_store *st, uint64_t tenant, int force)
{
	int64_t now = kd_now_us();
	pthread_mutex_lock(&mu);
	tlimits *t = of(tenant);
	int stale = t && (force || t->loaded_us < 0 ||
			  now - t->loaded_us > LIMITS_RELOAD_US);
	if (stale)
		t->loaded_us = now; /* one reader at a time, not a stampede */
	pthread_mutex_unlock(&mu);
	kd_limits l;
	if (!stale || !st || limits_read(st, &l))
		return;
	pthread_mutex_lock(&mu);
	if ((t = of(tenant)))
		t->l = l;
	pthread_mutex_unlock(&mu);
}

void kd_limits_get(uint64_t tenant, kd_limits *out)
{
	pthread_mutex_lock(&mu);
	tlimits *t = of(tenant);
	*out = t ? t->l : kd_cfg.limits;
	pthread_mutex_unlock(&mu);
}

int kd_limits_set(uint64_t tenant, const kd_limits *l)
{
	pthread_mutex_lock(&mu);
	tlimits *t = of(tenant);
	if (t)
		t->l = *l;
	pthread_mutex_unlock(&mu);
	return t ? 0 : -1;
}

/* 0, or the seconds to wait when the key's bucket is empty. */
static long take_token(uint64_t key, const kd_limits *l)
{
	int64_t now = kd_now_us();
	size_t h = (size_t)(key % NBUCKETS), victim = h;
	bucket *b = NULL;
	for (size_t i = 0; i < PROBE && !b; i++) {
		bucket *c = &buckets[(h + i) % NBUCKETS];
		if (c->key == key || !c->key)
			b = c;
		else if (c->last_us < buckets[victim].last_us)
			victim = (h + i) % NBUCKETS;
	}
	if (!b)
		b = &buckets[victim];
	if (b->key != key) {
		b->key = key;
		b->tokens = l->burst;
		b->last_us = now;
	}
	b->tokens += (double)(now - b->last_us) / 1e6 * l->rps;
	if (b->tokens > l->burst)
		b->tokens = l->burst;
	b->last_us = now;
	if (b->tokens >= 1) {
		b->tokens -= 1;
		return 0;
	}
	long wait = (long)ceil((1 - b->tokens) / l->rps);
	return wait < 1 ? 1 : wait;
}

static uint64_t key_hash(const char *auth)
{
	pthread_once(&hkey_once, hkey_init);
	unsigned char out[crypto_shorthash_BYTES];
	crypto_shorthash(out, (const unsigned char *)auth, strlen(auth), hkey);
	uint64_t k;
	memcpy(&k, out, sizeof k);
	return k ? k : 1;
}

/* How many items or interactions the request adds (0: not a write). */
static long long adds(const kd_req *r, int *events)
{
	*events = 0;
	if (!r->route || strcmp(r->route_method, "POST"))
		return 0;
	const char *arr = NULL;
	if (!strcmp(r->route, "/api/v1/items"))
		arr = "items";
	else if (!strcmp(r->route, "/api/v1/interactions"))
		arr = "interactions", *events = 1;
	else if (!strcmp(r->route, "/api/v1/feedback"))
		return *events = 1;
	if (!arr)
		return 0;
	const cJSON *a = cJSON_GetObjectItem(r->json, arr);
	return cJSON_IsArray(a) ? cJSON_GetArraySize(a) : 1;
}

static int quota(kd_req *r, tlimits *t)
{
	int events;
	long long n = adds(r, &events);
	int64_t max = events ? t->l.max_interactions : t->l.max_items;
	if (n == 0 || max <= 0)
		return 0;
	int64_t now = kd_now_us();
	if (t->counted_us < 0 || now - t->counted_us > 1000000) {
		t->items = knytt_store_item_count(r->st);
		t->events = knytt_store_interaction_count(r->st);
		t->counted_us = now;
	}
	int64_t have = events ? t->events : t->items;
	if (have >= 0 && have + n > max)
		return kd_err(r, 409, "quota_exceeded",
			      events ? "interactions" : "items",
			      "the tenant's quota is %lld %s; it holds %lld "
			      "and this request adds %lld",
			      (long long)max,
			      events ? "interactions" : "items",
			      (long long)have, n);
	if (events)
		t->events += n;
	else
		t->items += n;
	return 0;
}

int kd_limit_check(kd_req *r)
{
	if (r->cred != KD_CRED_SECRET && r->cred != KD_CRED_PUBLIC)
		return 0;
	const char *auth = MHD_lookup_connection_value(
		r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	uint64_t key = auth ? key_hash(auth) : 0;
	int64_t now = kd_now_us();
	pthread_mutex_lock(&mu);
	tlimits *t = of(r->tenant);
	if (t && r->st && now - t->loaded_us > LIMITS_RELOAD_US) {
		/* settings older than the period (rare): read again outside
		 * the lock every request thread takes */
		pthread_mutex_unlock(&mu);
		limits_refresh(r->st, r->tenant, 0);
		pthread_mutex_lock(&mu);
		t = of(r->tenant);
	}
	kd_limits l = t ? t->l : kd_cfg.limits;
	long wait = key && l.rps > 0 ? take_token(key, &l) : 0;
	int rc = wait || !t ? 0 : quota(r, t);
	pthread_mutex_unlock(&mu);
	if (rc)
		return rc;
	if (!wait)
		return 0;
	kd_metrics_rate_limited();
	r->retry_after = wait;
	return kd_err(r, 429, "rate_limited", NULL,
		      "more than %g requests a second (burst %g) with this "
		      "key; retry in %ld s",
		      l.rps, l.burst, wait);
}

/* ---- GET/PUT /api/v1/admin/tenants/{name}/limits ---------------------- */

/* The tenant named in the path, selected on this thread's connection
 * (*stp), its settings read afresh from the store. */
static int tenant_of(kd_req *r, uint64_t *id, knytt_store **stp)
{
	knytt_store *st = kd_store();
	if (!st)
		return kd_err(r, 503, "unavailable", NULL,
			      "the store cannot be reached");
	int rc = knytt_store_tenant_find(st, r->param[0], id);
	if (rc == KNYTT_ENOTFOUND)
		return kd_err(r, 404, "not_found", "name", "no tenant '%.100s'",
			      r->param[0]);
	if (!rc && knytt_store_tenant(st) != *id)
		rc = knytt_store_use_tenant(st, *id);
	if (rc)
		return kd_liberr(r, rc, "name");
	limits_refresh(st, *id, 1);
	*stp = st;
	return 0;
}

static int limits_answer(kd_req *r, uint64_t id)
{
	kd_limits l;
	kd_limits_get(id, &l);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "tenant", r->param[0]);
	cJSON_AddNumberToObject(o, "requests_per_second", l.rps);
	cJSON_AddNumberToObject(o, "burst", l.burst);
	cJSON_AddNumberToObject(o, "max_items", (double)l.max_items);
	cJSON_AddNumberToObject(o, "max_interactions",
				(double)l.max_interactions);
	return kd_ok(r, 200, o);
}

int h_admin_limits_get(kd_req *r)
{
	uint64_t id;
	knytt_store *st;
	int rc = tenant_of(r, &id, &st);
	return rc ? rc : limits_answer(r, id);
}

/* Fields absent keep their value; 0 lifts a limit. */
int h_admin_limits_put(kd_req *r)
{
	const cJSON *b;
	uint64_t id;
	knytt_store *st;
	int rc;
	if ((rc = kd_body_obj(r, &b)) || (rc = tenant_of(r, &id, &st)))
		return rc;
	kd_limits l;
	kd_limits_get(id, &l);
	double rps = l.rps, burst = l.burst;
	long long items = l.max_items, events = l.max_interactions;
	if ((rc = kd_get_num(r, b, "requests_per_second", &rps)) > 1 ||
	    (rc = kd_get_num(r, b, "burst", &burst)) > 1 ||
	    (rc = kd_get_int(r, b, "max_items", 0, 1LL << 40, &items)) > 1 ||
	    (rc = kd_get_int(r, b, "max_interactions", 0, 1LL << 40,
			     &events)) > 1)
		return rc;
	if (!(rps >= 0 && rps <= 1e6))
		return kd_err(r, 422, "invalid_field", "requests_per_second",
			      "requests_per_second must be in 0..1000000");
	if (!cJSON_GetObjectItem(b, "burst") && rps > 0 && burst < 1)
		burst = rps < 1 ? 1 : rps;
	if (rps > 0 && !(burst >= 1 && burst <= 1e6))
		return kd_err(r, 422, "invalid_field", "burst",
			      "burst must be in 1..1000000 with a rate");
	l.rps = rps;
	l.burst = burst;
	l.max_items = items;
	l.max_interactions = events;
	/* stored first: what the answer shows is what a restart keeps */
	char meta[256];
	snprintf(meta, sizeof meta,
		 "{\"requests_per_second\":%.17g,\"burst\":%.17g,"
		 "\"max_items\":%lld,\"max_interactions\":%lld}",
		 l.rps, l.burst, (long long)l.max_items,
		 (long long)l.max_interactions);
	if ((rc = knytt_store_model_put(st, LIMITS_NAME, "", 0, meta, NULL)))
		return kd_liberr(r, rc, NULL);
	if (kd_limits_set(id, &l))
		return kd_err(r, 503, "no_memory", NULL,
			      "too many tenants with limits");
	return limits_answer(r, id);
}
