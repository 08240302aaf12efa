/*
 * h_admin.c -- /health, /ready and the admin routes: tenants and their
 * API keys.  Keys are shown once, in the answer that creates them; the
 * store keeps only their SHA-256.
 */
#include "knyttd.h"

#include <string.h>

int h_health(kd_req *r)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "status", "ok");
	cJSON_AddStringToObject(o, "version", knytt_version());
	return kd_ok(r, 200, o);
}

static void count_open(knytt_engine *e, uint64_t tenant, void *ctx)
{
	knytt_train_status ts = {.struct_size = sizeof ts};
	int *n = ctx;
	n[0]++;
	if (knytt_engine_train_status(e, &ts) == 0 && ts.model_version > 0)
		n[1]++;
}

/* Ready: the store answers and every engine opened so far is open
 * (engines open on a tenant's first request, so none may be yet). */
int h_ready(kd_req *r)
{
	knytt_store *st = kd_store();
	uint64_t id;
	int rc = st ? knytt_store_tenant_find(st, "knyttd ready probe", &id)
		    : KNYTT_EDB;
	if (rc && rc != KNYTT_ENOTFOUND)
		return kd_err(r, 503, "unavailable", NULL,
			      "the store does not answer: %s",
			      knytt_errmsg());
	int n[2] = {0, 0};
	kd_tenants_each(count_open, n);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "status", "ready");
	cJSON_AddStringToObject(o, "store", knytt_store_backend(st));
	cJSON_AddNumberToObject(o, "engines_open", n[0]);
	cJSON_AddNumberToObject(o, "engines_with_model", n[1]);
	return kd_ok(r, 200, o);
}

int h_admin_tenant_create(kd_req *r)
{
	const cJSON *b;
	const char *name = NULL;
	int rc;
	if ((rc = kd_body_obj(r, &b)) || (rc = kd_get_str(r, b, "name", &name)) > 1)
		return rc;
	if (!name)
		return kd_err(r, 422, "missing_field", "name",
			      "field name is required");
	knytt_store *st = kd_store();
	uint64_t id = 0;
	if (!st)
		return kd_liberr(r, KNYTT_EDB, NULL);
	if ((rc = knytt_store_tenant_create(st, name, &id)))
		return kd_liberr(r, rc, "name");
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", name);
	cJSON_AddNumberToObject(o, "id", (double)id);
	return kd_ok(r, 201, o);
}

/* Selects the tenant named in the path on this thread's store. */
static int use_named(kd_req *r, knytt_store **out)
{
	knytt_store *st = kd_store();
	uint64_t id = 0;
	if (!st)
		return kd_liberr(r, KNYTT_EDB, NULL);
	int rc = knytt_store_tenant_find(st, r->param[0], &id);
	if (rc == KNYTT_ENOTFOUND)
		return kd_err(r, 404, "not_found", "tenant",
			      "no tenant '%.200s'", r->param[0]);
	if (rc || (rc = knytt_store_use_tenant(st, id)))
		return kd_liberr(r, rc, "tenant");
	r->tenant = id;
	*out = st;
	return 0;
}

int h_admin_key_create(kd_req *r)
{
	const cJSON *b;
	const char *kind = NULL;
	knytt_store *st;
	int rc;
	if ((rc = kd_body_obj(r, &b)) || (rc = kd_get_str(r, b, "kind", &kind)) > 1)
		return rc;
	if (!kind || (strcmp(kind, "secret") && strcmp(kind, "public")))
		return kd_err(r, 422, "invalid_field", "kind",
			      "field kind must be \"secret\" or \"public\"");
	if ((rc = use_named(r, &st)))
		return rc;
	char key[KNYTT_STORE_KEY_LEN + 1];
	rc = knytt_store_key_create(st, kind[0] == 's' ? KNYTT_KEY_SECRET
						       : KNYTT_KEY_PUBLIC,
				    key);
	if (rc)
		return kd_liberr(r, rc, NULL);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "key", key);
	cJSON_AddStringToObject(o, "kind", kind);
	cJSON_AddStringToObject(o, "tenant", r->param[0]);
	memset(key, 0, sizeof key);
	return kd_ok(r, 201, o);
}

int h_admin_key_revoke(kd_req *r)
{
	knytt_store *st;
	int rc = use_named(r, &st);
	if (rc)
		return rc;
	if ((rc = knytt_store_key_revoke(st, r->param[1])))
		return kd_liberr(r, rc, "key");
	kd_key_cache_clear();
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "revoked", 1);
	return kd_ok(r, 200, o);
}
