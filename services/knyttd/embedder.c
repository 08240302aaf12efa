/*
 * embedder.c -- a tenant's external embedding service (the /v1/embeddings
 * protocol of knytt_embedder): GET/PUT/DELETE /api/v1/embedder with the
 * tenant's secret key, and the same under
 * /api/v1/admin/tenants/{name}/embedder with the admin key.
 *
 * With a service configured, the tenant's engine is opened with it as an
 * external-vector engine (KNYTT_MODEL_EXTERNAL, the service's dimension;
 * tenants.c): items that come without an "embedding" are embedded from
 * their title and description, search text is embedded by the service,
 * and recommendations come from the shoppers' tastes in that space.
 * There is then no model to train (POST /api/v1/models/train answers
 * 409).  Items stored before the service was configured get a vector
 * when they are next written.
 *
 * Settings are stored in the store as the metadata of a model named
 * "knyttd-embedder", a new version per change (as the schedule and the
 * limits are), so they outlive a restart and every replica reads them;
 * a change swaps the tenant's engine at once in the process that took it
 * and within tenants.c's EMB_RELOAD_US in the others.  Older versions are
 * deleted at each change (knytt_store_model_prune), so a replaced API key
 * does not linger in the store.
 *
 * The API key must be sent to the service, so it cannot be hashed: it is
 * stored as given, readable by whoever can read the database (SECURITY.md,
 * knyttd(8)).  No answer and no log line shows it; GET says only whether
 * one is set, and shows the URL without its user-info and query (where
 * some services take a key too).  Copies in memory are wiped after use.
 */
#include "knyttd.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define EMB_NAME "knyttd-embedder"

static void copy(char *dst, size_t cap, const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	snprintf(dst, cap, "%s", cJSON_IsString(v) ? v->valuestring : "");
}

int kd_emb_conf_get(knytt_store *st, kd_emb_conf *out)
{
	memset(out, 0, sizeof *out);
	char *meta = NULL;
	int rc = knytt_store_model_get(st, EMB_NAME, 0, NULL, NULL, &meta,
				       &out->version, NULL);
	if (rc == KNYTT_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	cJSON *o = meta ? cJSON_Parse(meta) : NULL;
	if (meta)
		sodium_memzero(meta, strlen(meta));
	knytt_free(meta);
	copy(out->url, sizeof out->url, o, "url");
	copy(out->model, sizeof out->model, o, "model");
	copy(out->api_key, sizeof out->api_key, o, "api_key");
	out->dim = (uint32_t)kd_json_num(o, "dim", 0);
	out->timeout_ms = (long)kd_json_num(o, "timeout_ms", 0);
	out->on = *out->url && out->dim > 0;
	cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "api_key");
	if (cJSON_IsString(k))
		sodium_memzero(k->valuestring, strlen(k->valuestring));
	cJSON_Delete(o);
	return 0;
}

int kd_emb_version(knytt_store *st, int64_t *out)
{
	*out = 0;
	int rc = knytt_store_model_get(st, EMB_NAME, 0, NULL, NULL, NULL, out,
				       NULL);
	return rc == KNYTT_ENOTFOUND ? 0 : rc;
}

void kd_emb_conf_clear(kd_emb_conf *c)
{
	sodium_memzero(c->api_key, sizeof c->api_key);
}

int kd_emb_make(const kd_emb_conf *c, knytt_embedder **out,
		const char **field)
{
	knytt_embedder *e = NULL;
	const char *f = NULL;
	int rc = knytt_embedder_create(&e);
	if (!rc && (rc = knytt_embedder_set_url(e, c->url)))
		f = "url";
	if (!rc && *c->model && (rc = knytt_embedder_set_model(e, c->model)))
		f = "model";
	if (!rc && *c->api_key &&
	    (rc = knytt_embedder_set_api_key(e, c->api_key)))
		f = "api_key";
	if (!rc && c->timeout_ms &&
	    (rc = knytt_embedder_set_timeout_ms(e, c->timeout_ms)))
		f = "timeout_ms";
	if (!rc && (rc = knytt_embedder_set_dim(e, c->dim)))
		f = "dim";
	if (!rc)
		rc = knytt_embedder_open(e);
	if (field)
		*field = f;
	if (rc) {
		knytt_embedder_close(e);
		return rc;
	}
	*out = e;
	return 0;
}

/* ---- the routes -------------------------------------------------------- */

/* The URL to show: user-info and query replaced by "***". */
static void url_shown(const char *url, char *out, size_t cap)
{
	const char *host = strstr(url, "://");
	host = host ? host + 3 : url;
	const char *end = host + strcspn(host, "/?#");
	const char *at = memchr(host, '@', (size_t)(end - host));
	const char *q = strchr(url, '?');
	size_t n = (size_t)(host - url);
	snprintf(out, cap, "%.*s%s", (int)n, url, at ? "***@" : "");
	const char *rest = at ? at + 1 : host;
	size_t len = strlen(out);
	snprintf(out + len, cap - len, "%.*s%s",
		 (int)(q ? (size_t)(q - rest) : strlen(rest)), rest,
		 q ? "?***" : "");
}

static int answer(kd_req *r, const kd_emb_conf *c)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddBoolToObject(o, "configured", c->on);
	if (c->on) {
		char shown[sizeof c->url + 8];
		url_shown(c->url, shown, sizeof shown);
		cJSON_AddStringToObject(o, "url", shown);
		if (*c->model)
			cJSON_AddStringToObject(o, "model", c->model);
		else
			cJSON_AddNullToObject(o, "model");
		cJSON_AddNumberToObject(o, "dim", c->dim);
		cJSON_AddNumberToObject(o, "timeout_ms",
					c->timeout_ms ? (double)c->timeout_ms
						      : 30000);
	}
	cJSON_AddBoolToObject(o, "api_key_set", c->on && *c->api_key);
	cJSON_AddNumberToObject(o, "version", (double)c->version);
	return kd_ok(r, 200, o);
}

/* The tenant of the route on a connection with it selected: the key's
 * own (secret key routes) or the one named in the path (admin routes). */
static int tenant_of(kd_req *r, int admin, uint64_t *id, knytt_store **stp)
{
	if (!admin) {
		*id = r->tenant;
		*stp = r->st;
		return 0;
	}
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
	*stp = st;
	return 0;
}

static int get_common(kd_req *r, int admin)
{
	uint64_t id;
	knytt_store *st;
	kd_emb_conf c;
	int rc = tenant_of(r, admin, &id, &st);
	if (rc)
		return rc;
	if ((rc = kd_emb_conf_get(st, &c)))
		return kd_liberr(r, rc, NULL);
	rc = answer(r, &c);
	kd_emb_conf_clear(&c);
	return rc;
}

/* A string field of at most cap - 1 bytes without control characters
 * into @p dst (absent: left alone): 0 or 400/422. */
static int text_field(kd_req *r, const cJSON *b, const char *name,
		      char *dst, size_t cap, int *given)
{
	const char *s = NULL;
	int got = kd_get_str(r, b, name, &s);
	if (got != 1)
		return got;
	if (strlen(s) >= cap)
		return kd_err(r, 422, "invalid_field", name,
			      "field %s is longer than %zu bytes", name,
			      cap - 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7F)
			return kd_err(r, 422, "invalid_field", name,
				      "field %s contains a control character",
				      name);
	snprintf(dst, cap, "%s", s);
	if (given)
		*given = 1;
	return 0;
}

/* The settings of a PUT body over the stored ones (*c): 0 or 400/422. */
static int read_conf(kd_req *r, const cJSON *b, kd_emb_conf *c)
{
	char old_key[sizeof c->api_key];
	memcpy(old_key, c->api_key, sizeof old_key);
	memset(c->url, 0, sizeof c->url);
	memset(c->model, 0, sizeof c->model);
	int key_given = 0, rc;
	long long dim = 0, tmo = 0;
	if ((rc = text_field(r, b, "url", c->url, sizeof c->url, NULL)) ||
	    (rc = text_field(r, b, "model", c->model, sizeof c->model, NULL)) ||
	    (rc = text_field(r, b, "api_key", c->api_key, sizeof c->api_key,
			     &key_given)) ||
	    (rc = kd_get_int(r, b, "dim", 1, 4096, &dim)) > 1 ||
	    (rc = kd_get_int(r, b, "timeout_ms", 1, 3600000, &tmo)) > 1) {
		sodium_memzero(old_key, sizeof old_key);
		return rc;
	}
	/* no api_key in the body keeps the stored one; "" removes it */
	if (!key_given)
		memcpy(c->api_key, old_key, sizeof old_key);
	sodium_memzero(old_key, sizeof old_key);
	if (!*c->url)
		return kd_err(r, 422, "missing_field", "url",
			      "field url is required");
	if (strncasecmp(c->url, "http://", 7) &&
	    strncasecmp(c->url, "https://", 8))
		return kd_err(r, 422, "invalid_field", "url",
			      "field url must start with http:// or https://");
	if (!dim)
		return kd_err(r, 422, "missing_field", "dim",
			      "field dim is required (the service's "
			      "embedding dimension, 1..4096)");
	c->dim = (uint32_t)dim;
	c->timeout_ms = (long)tmo;
	c->on = 1;
	return 0;
}

/* Stores @p c (NULL: none) as the tenant's settings, drops the older
 * versions and swaps the engine here; the answer. */
static int store_conf(kd_req *r, knytt_store *st, uint64_t id,
		      kd_emb_conf *c)
{
	cJSON *o = cJSON_CreateObject();
	if (c) {
		cJSON_AddStringToObject(o, "url", c->url);
		if (*c->model)
			cJSON_AddStringToObject(o, "model", c->model);
		if (*c->api_key)
			cJSON_AddStringToObject(o, "api_key", c->api_key);
		cJSON_AddNumberToObject(o, "dim", c->dim);
		if (c->timeout_ms)
			cJSON_AddNumberToObject(o, "timeout_ms",
						(double)c->timeout_ms);
	}
	char *txt = cJSON_PrintUnformatted(o);
	cJSON *k = cJSON_GetObjectItemCaseSensitive(o, "api_key");
	if (k)
		sodium_memzero(k->valuestring, strlen(k->valuestring));
	cJSON_Delete(o);
	int64_t v = 0;
	int rc = txt ? knytt_store_model_put(st, EMB_NAME, "", 0, txt, &v)
		     : KNYTT_ENOMEM;
	if (txt)
		sodium_memzero(txt, strlen(txt));
	cJSON_free(txt);
	if (!rc && v > 1 && knytt_store_model_prune(st, EMB_NAME, v) < 0)
		kd_log("{\"level\":\"warn\",\"msg\":\"older embedder settings "
		       "of tenant %llu not deleted: %s\"}",
		       (unsigned long long)id, knytt_errmsg());
	if (rc)
		return kd_liberr(r, rc, NULL);
	if ((rc = kd_engine_reopen(st, id)))
		return kd_err(r, 503, "unavailable", NULL,
			      "the settings are stored, but the tenant's "
			      "engine cannot open with them: %s",
			      knytt_errmsg());
	kd_itemcache_forget_tenant(id);
	kd_emb_conf now;
	if ((rc = kd_emb_conf_get(st, &now)))
		return kd_liberr(r, rc, NULL);
	rc = answer(r, &now);
	kd_emb_conf_clear(&now);
	return rc;
}

static int put_common(kd_req *r, int admin)
{
	const cJSON *b;
	uint64_t id;
	knytt_store *st;
	kd_emb_conf c;
	int rc;
	if ((rc = kd_body_obj(r, &b)) || (rc = tenant_of(r, admin, &id, &st)))
		return rc;
	if ((rc = kd_emb_conf_get(st, &c)))
		return kd_liberr(r, rc, NULL);
	if ((rc = read_conf(r, b, &c))) {
		kd_emb_conf_clear(&c);
		return rc;
	}
	/* what the library refuses is refused here, before anything is
	 * stored */
	knytt_embedder *e = NULL;
	const char *f = NULL;
	if ((rc = kd_emb_make(&c, &e, &f))) {
		kd_emb_conf_clear(&c);
		if (!f)
			return kd_liberr(r, rc, NULL);
		return kd_err(r, 422, "invalid_field", f, "field %s: %s", f,
			      knytt_errmsg());
	}
	knytt_embedder_close(e);
	rc = store_conf(r, st, id, &c);
	kd_emb_conf_clear(&c);
	return rc;
}

static int delete_common(kd_req *r, int admin)
{
	uint64_t id;
	knytt_store *st;
	int rc = tenant_of(r, admin, &id, &st);
	return rc ? rc : store_conf(r, st, id, NULL);
}

int h_embedder_get(kd_req *r) { return get_common(r, 0); }
int h_embedder_put(kd_req *r) { return put_common(r, 0); }
int h_embedder_delete(kd_req *r) { return delete_common(r, 0); }
int h_admin_embedder_get(kd_req *r) { return get_common(r, 1); }
int h_admin_embedder_put(kd_req *r) { return put_common(r, 1); }
int h_admin_embedder_delete(kd_req *r) { return delete_common(r, 1); }
