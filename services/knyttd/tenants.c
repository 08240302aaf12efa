/*
 * tenants.c -- the store connection of each thread and the engine of
 * each tenant.
 *
 * A knytt_store handle is one connection for one thread at a time, so
 * every pool thread of libmicrohttpd opens its own on first use (kept in
 * thread-specific data, closed when the thread ends) and selects the
 * request's tenant on it.  Engines are thread-safe after open and costly
 * to open (items, model and index are loaded), so there is one per
 * tenant, opened by the first request that needs it and shared by all
 * threads until shutdown.  The registry lock is held only to find or add
 * an entry; opening happens under the entry's own lock, so one tenant's
 * slow open does not hold up the others.
 */
#include "knyttd.h"

#include <stdlib.h>
#include <string.h>

struct kd_tenant {
	uint64_t id;
	knytt_engine *e; /* NULL until opened */
	pthread_mutex_t mu; /* taken while opening */
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

knytt_store *kd_store(void)
{
	pthread_once(&store_once, store_key_init);
	knytt_store *st = pthread_getspecific(store_key);
	if (st)
		return st;
	if (knytt_store_open(kd_cfg.db, &st)) {
		kd_log("{\"level\":\"error\",\"msg\":\"store open: %s\"}",
		       knytt_errmsg());
		return NULL;
	}
	pthread_setspecific(store_key, st);
	return st;
}

static kd_tenant *entry(uint64_t id)
{
	pthread_mutex_lock(&reg_mu);
	kd_tenant *t = tenants;
	while (t && t->id != id)
		t = t->next;
	if (!t && (t = calloc(1, sizeof *t))) {
		t->id = id;
		pthread_mutex_init(&t->mu, NULL);
		t->next = tenants;
		tenants = t;
	}
	pthread_mutex_unlock(&reg_mu);
	return t;
}

static int open_engine(kd_req *r, kd_tenant *t)
{
	char name[KNYTT_STORE_MAX_ID + 1];
	int rc = knytt_store_tenant_name(r->st, t->id, name, sizeof name);
	if (rc)
		return kd_liberr(r, rc, NULL);
	knytt_engine *e = NULL;
	if ((rc = knytt_engine_create(&e)) ||
	    (rc = knytt_engine_set_tenant(e, name)) ||
	    (rc = knytt_engine_set_feedback_async(e, kd_cfg.feedback_async)) ||
	    (rc = knytt_engine_set_profile_cache(e, kd_cfg.profile_cache)) ||
	    (rc = knytt_engine_open(e, kd_cfg.db))) {
		kd_log("{\"level\":\"error\",\"msg\":\"engine of tenant %llu: "
		       "%s\"}",
		       (unsigned long long)t->id, knytt_errmsg());
		knytt_engine_close(e);
		return kd_err(r, 503, "unavailable", NULL,
			      "the tenant's engine cannot open: %s",
			      knytt_errmsg());
	}
	t->e = e;
	return 0;
}

int kd_engine(kd_req *r, knytt_engine **out)
{
	kd_tenant *t = r->t ? r->t : entry(r->tenant);
	if (!t)
		return kd_err(r, 503, "no_memory", NULL, "out of memory");
	r->t = t;
	pthread_mutex_lock(&t->mu);
	int rc = t->e ? 0 : open_engine(r, t); /* a failed open is retried */
	*out = t->e;
	pthread_mutex_unlock(&t->mu);
	return rc;
}

void kd_tenants_each(void (*fn)(knytt_engine *e, uint64_t tenant,
				void *ctx),
		     void *ctx)
{
	pthread_mutex_lock(&reg_mu);
	for (kd_tenant *t = tenants; t; t = t->next) {
		pthread_mutex_lock(&t->mu);
		if (t->e)
			fn(t->e, t->id, ctx);
		pthread_mutex_unlock(&t->mu);
	}
	pthread_mutex_unlock(&reg_mu);
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
	while (tenants) {
		kd_tenant *t = tenants;
		tenants = t->next;
		knytt_engine_close(t->e);
		pthread_mutex_destroy(&t->mu);
		free(t);
	}
	pthread_mutex_unlock(&reg_mu);
	/* the main thread's own connection, if it used one */
	pthread_once(&store_once, store_key_init);
	knytt_store *st = pthread_getspecific(store_key);
	pthread_setspecific(store_key, NULL);
	knytt_store_close(st);
}

knytt_engine *kd_tenant_engine(uint64_t tenant)
{
	knytt_engine *e = NULL;
	pthread_mutex_lock(&reg_mu);
	kd_tenant *t = tenants;
	while (t && t->id != tenant)
		t = t->next;
	pthread_mutex_unlock(&reg_mu);
	if (t) {
		/* engines live until shutdown once opened */
		pthread_mutex_lock(&t->mu);
		e = t->e;
		pthread_mutex_unlock(&t->mu);
	}
	return e;
}
