/*
 * tenants.c -- the store connection of each thread and the engine of
 * each tenant.
 *
 * A knytt_store handle is one connection for one thread at a time, so
 * every pool thread of libmicrohttpd opens its own on first use (kept in
 * thread-specific data, closed when the thread ends; its page cache
 * small, KD_STORE_CACHE_BYTES) and selects the request's tenant on it.
 * Engines are thread-safe after open and costly to open (items, model
 * and index are loaded), so there is one per tenant, opened by the first
 * request that needs it.
 *
 * An engine is replaced while requests use it when the tenant's embedding
 * service settings change (embedder.c): the engine is opened with the
 * embedder, which can only be set before open.  So each open engine sits
 * in a reference-counted holder (kd_eref): a request takes a reference
 * for its whole life (kd_engine; dropped in http.c when the request
 * ends), as do training jobs and the threads that walk the engines.  A
 * swap opens the new engine first, with no lock held, publishes it under
 * the tenant's lock and drops the holder's own reference to the old one;
 * whoever drops the last reference closes it (which writes its queued
 * feedback).  Requests that started on the old engine finish on it.
 *
 * Each process looks at the tenant's stored settings when a request
 * finds them EMB_RELOAD_US old, so a change made through one replica
 * reaches the others within that time; the process that took the change
 * swaps at once (kd_engine_reopen).
 *
 * Locks: reg_mu (the list) -> t->mu (t->cur) are held only to find or
 * swap pointers; t->open_mu serializes the opens of one tenant, so a slow
 * open holds up neither other tenants nor requests served by the old
 * engine.
 */
#include "knyttd.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define EMB_RELOAD_US 5000000LL

struct kd_eref {
	knytt_engine *e;
	knytt_embedder *emb;  /* owned, closed after e; NULL: none */
	int64_t emb_version;  /* the settings version it was opened with */
	atomic_int refs;
};

struct kd_tenant {
	uint64_t id;
	kd_eref *cur;         /* NULL until opened; under mu */
	int64_t checked_us;   /* last look at the stored settings; under mu */
	pthread_mutex_t mu;
	pthread_mutex_t open_mu; /* held while opening */
	kd_tenant *next;
};

static pthread_key_t store_key;
static pthread_once_t store_once = PTHREAD_ONCE_INIT;
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static kd_tenant *tenants;

static void store_free(void *p)
{
	knytt_store_close(p);
}

static void store_key_init(void)
{
	pthread_key_create(&store_key, store_free);
}

int kd_store_open(knytt_store **out)
{
	int rc = knytt_store_open(kd_cfg.db, out);
	if (rc)
		return rc;
	/* see KD_STORE_CACHE_BYTES; a failure leaves the default, which
	 * serves as well */
	(void)knytt_store_set_cache_size(*out, KD_STORE_CACHE_BYTES);
	return 0;
}

knytt_store *kd_store(void)
{
	pthread_once(&store_once, store_key_init);
	knytt_store *st = pthread_getspecific(store_key);
	if (st)
		return st;
	if (kd_store_open(&st)) {
		kd_log("{\"level\":\"error\",\"msg\":\"store open: %s\"}",
		       knytt_errmsg());
		return NULL;
	}
	pthread_setspecific(store_key, st);
	return st;
}

/* ---- references ------------------------------------------------------ */

knytt_engine *kd_eref_engine(const kd_eref *x)
{
	return x->e;
}

int kd_eref_external(const kd_eref *x)
{
	return x->emb != NULL;
}

static kd_eref *ref_take(kd_eref *x)
{
	if (x)
		atomic_fetch_add(&x->refs, 1);
	return x;
}

void kd_eref_put(kd_eref *x)
{
	if (!x || atomic_fetch_sub(&x->refs, 1) != 1)
		return;
	knytt_engine_close(x->e); /* waits for its writer and training */
	knytt_embedder_close(x->emb);
	free(x);
}

static kd_tenant *find(uint64_t id, int add)
{
	pthread_mutex_lock(&reg_mu);
	kd_tenant *t = tenants;
	while (t && t->id != id)
		t = t->next;
	if (!t && add && (t = calloc(1, sizeof *t))) {
		t->id = id;
		pthread_mutex_init(&t->mu, NULL);
		pthread_mutex_init(&t->open_mu, NULL);
		t->next = tenants;
		tenants = t;
	}
	pthread_mutex_unlock(&reg_mu);
	return t;
}

kd_eref *kd_eref_get(uint64_t tenant)
{
	kd_tenant *t = find(tenant, 0);
	if (!t)
		return NULL;
	pthread_mutex_lock(&t->mu);
	kd_eref *x = ref_take(t->cur);
	pthread_mutex_unlock(&t->mu);
	return x;
}

/* ---- opening and swapping ------------------------------------------- */

/* Opens an engine of tenant @p id with the settings stored for it (read
 * through @p st, the tenant selected): 0 and *out, or a knytt error
 * (logged). */
static int open_one(knytt_store *st, uint64_t id, kd_eref **out)
{
	char name[KNYTT_STORE_MAX_ID + 1];
	kd_emb_conf c;
	kd_eref *x = calloc(1, sizeof *x);
	if (!x)
		return KNYTT_ENOMEM;
	int rc = knytt_store_tenant_name(st, id, name, sizeof name);
	if (!rc)
		rc = kd_emb_conf_get(st, &c);
	if (!rc && c.on)
		rc = kd_emb_make(&c, &x->emb, NULL);
	x->emb_version = c.version;
	if (!rc)
		rc = knytt_engine_create(&x->e);
	if (!rc)
		rc = knytt_engine_set_tenant(x->e, name);
	if (!rc)
		rc = knytt_engine_set_feedback_async(x->e,
						     kd_cfg.feedback_async);
	if (!rc)
		rc = knytt_engine_set_profile_cache(x->e, kd_cfg.profile_cache);
	/* the service's vectors live in its own space: the engine serves
	 * them alone (no trained model mixed in) */
	if (!rc && x->emb && !(rc = knytt_engine_set_model(
				       x->e, KNYTT_MODEL_EXTERNAL)) &&
	    !(rc = knytt_engine_set_dim(x->e, c.dim)))
		rc = knytt_engine_set_embedder(x->e, x->emb);
	if (!rc)
		rc = knytt_engine_open(x->e, kd_cfg.db);
	kd_emb_conf_clear(&c);
	if (rc) {
		kd_log("{\"level\":\"error\",\"msg\":\"engine of tenant %llu: "
		       "%s\"}",
		       (unsigned long long)id, knytt_errmsg());
		knytt_engine_close(x->e);
		knytt_embedder_close(x->emb);
		free(x);
		return rc;
	}
	atomic_init(&x->refs, 1); /* the tenant's own */
	*out = x;
	return 0;
}

/* What reopen does when an engine serves already. */
#define IF_NONE (-2) /* nothing */
#define ALWAYS (-1)  /* open anew */
/* (a version >= 0: open anew unless the serving one was opened with it) */

/* Opens t's engine anew or for the first time, as @p want says; the old
 * one is released.  0 or a knytt error (the old engine, if any, keeps
 * serving). */
static int reopen(knytt_store *st, kd_tenant *t, int64_t want)
{
	pthread_mutex_lock(&t->open_mu);
	pthread_mutex_lock(&t->mu);
	int same = t->cur && (want == IF_NONE ||
			      (want >= 0 && t->cur->emb_version == want));
	pthread_mutex_unlock(&t->mu);
	int rc = 0;
	kd_eref *x = NULL, *old = NULL;
	if (!same && !(rc = open_one(st, t->id, &x))) {
		pthread_mutex_lock(&t->mu);
		old = t->cur;
		t->cur = x;
		t->checked_us = kd_now_us();
		pthread_mutex_unlock(&t->mu);
		if (old) {
			/* what reached the old engine after the new one read
			 * the store: its feedback written, its items read */
			knytt_engine_flush(old->e);
			knytt_engine_sync(x->e);
			kd_itemcache_forget_tenant(t->id);
			kd_log("{\"level\":\"info\",\"msg\":\"engine of tenant "
			       "%llu reopened\",\"embedder\":%s}",
			       (unsigned long long)t->id,
			       x->emb ? "true" : "false");
		}
	}
	pthread_mutex_unlock(&t->open_mu);
	kd_eref_put(old);
	return rc;
}

/* Whether t's stored settings changed since its engine opened (looked at
 * every EMB_RELOAD_US): reopens then.  A failed look or open keeps the
 * engine serving and is tried again at the next look. */
static void follow_settings(kd_req *r, kd_tenant *t)
{
	int64_t now = kd_now_us();
	pthread_mutex_lock(&t->mu);
	int look = t->cur && now - t->checked_us > EMB_RELOAD_US;
	int64_t have = t->cur ? t->cur->emb_version : 0;
	if (look)
		t->checked_us = now; /* one looker at a time */
	pthread_mutex_unlock(&t->mu);
	int64_t v;
	if (look && kd_emb_version(r->st, &v) == 0 && v != have)
		reopen(r->st, t, v);
}

int kd_engine(kd_req *r, knytt_engine **out)
{
	if (r->eref) { /* one engine for the whole request */
		*out = r->eref->e;
		return 0;
	}
	kd_tenant *t = find(r->tenant, 1);
	if (!t)
		return kd_err(r, 503, "no_memory", NULL, "out of memory");
	follow_settings(r, t);
	pthread_mutex_lock(&t->mu);
	kd_eref *x = ref_take(t->cur);
	pthread_mutex_unlock(&t->mu);
	if (!x) { /* a failed open is retried by the next request */
		int rc = reopen(r->st, t, IF_NONE);
		if (rc)
			return rc == KNYTT_EDB || rc == KNYTT_EIO
				       ? kd_liberr(r, rc, NULL)
				       : kd_err(r, 503, "unavailable", NULL,
						"the tenant's engine cannot "
						"open: %s",
						knytt_errmsg());
		pthread_mutex_lock(&t->mu);
		x = ref_take(t->cur);
		pthread_mutex_unlock(&t->mu);
	}
	if (!x)
		return kd_err(r, 503, "unavailable", NULL,
			      "the tenant's engine is not open");
	r->eref = x;
	*out = x->e;
	return 0;
}

int kd_engine_reopen(knytt_store *st, uint64_t tenant)
{
	kd_tenant *t = find(tenant, 0);
	/* never opened here: the first request opens it with the settings */
	return t ? reopen(st, t, ALWAYS) : 0;
}

void kd_engine_release(kd_req *r)
{
	kd_eref_put(r->eref);
	r->eref = NULL;
}

/* ---- walking the engines --------------------------------------------- */

void kd_tenants_each(void (*fn)(knytt_engine *e, uint64_t tenant,
				void *ctx),
		     void *ctx)
{
	/* references taken under the locks, fn called without them: fn may
	 * take its time (a catch-up, a training start) */
	size_t n = 0, cap = 0;
	kd_eref **xs = NULL;
	uint64_t *ids = NULL;
	pthread_mutex_lock(&reg_mu);
	for (kd_tenant *t = tenants; t; t = t->next)
		cap++;
	xs = calloc(cap ? cap : 1, sizeof *xs);
	ids = calloc(cap ? cap : 1, sizeof *ids);
	for (kd_tenant *t = tenants; t && xs && ids; t = t->next) {
		pthread_mutex_lock(&t->mu);
		if ((xs[n] = ref_take(t->cur)))
			ids[n++] = t->id;
		pthread_mutex_unlock(&t->mu);
	}
	pthread_mutex_unlock(&reg_mu);
	for (size_t i = 0; i < n; i++) {
		fn(xs[i]->e, ids[i], ctx);
		kd_eref_put(xs[i]);
	}
	free(xs);
	free(ids);
}

static void flush_one(knytt_engine *e, uint64_t tenant, void *ctx)
{
	int rc = knytt_engine_flush(e);
	if (rc) {
		kd_log("{\"level\":\"error\",\"msg\":\"flush of tenant %llu: "
		       "%s\"}",
		       (unsigned long long)tenant, knytt_errmsg());
		if (!*(int *)ctx)
			*(int *)ctx = rc;
	}
}

int kd_tenants_flush(void)
{
	int first = 0;
	kd_tenants_each(flush_one, &first);
	return first;
}

void kd_tenants_close(void)
{
	pthread_mutex_lock(&reg_mu);
	kd_tenant *list = tenants;
	tenants = NULL;
	pthread_mutex_unlock(&reg_mu);
	while (list) {
		kd_tenant *t = list;
		list = t->next;
		kd_eref_put(t->cur); /* the last reference: requests ended */
		pthread_mutex_destroy(&t->mu);
		pthread_mutex_destroy(&t->open_mu);
		free(t);
	}
	/* the main thread's own connection, if it used one */
	pthread_once(&store_once, store_key_init);
	knytt_store *st = pthread_getspecific(store_key);
	pthread_setspecific(store_key, NULL);
	knytt_store_close(st);
}
