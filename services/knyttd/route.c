/*
 * route.c -- the route table, with the permission of each route, and the
 * checks every request passes before its handler runs.
 *
 * The table is the one place that says who may call what (the service's
 * row-level security); tests/check_knyttd.c walks it against every kind
 * of credential.  The order of the checks gives each failure one status:
 *   no route 404 -> wrong method 405 -> credential 401/403 -> body
 *   415/400 -> limits 429 -> the handler.
 * The tenant is never taken from the request: it is the API key's.
 */
#include "knyttd.h"

#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct kd_route {
	const char *method;
	const char *pattern; /* "{}" matches one path segment */
	kd_perm perm;
	kd_handler fn;
} kd_route;

/* KD_P_SELF routes name the shopper in their first path parameter; the
 * check is made here.  Routes whose body names a shopper (feedback,
 * recommendations, search) check it in the handler with kd_may_act. */
static const kd_route routes[] = {
	{"GET", "/health", KD_P_OPEN, h_health},
	{"GET", "/ready", KD_P_OPEN, h_ready},
	{"GET", "/metrics", KD_P_ADMIN, h_metrics},
	{"POST", "/api/v1/admin/tenants", KD_P_ADMIN, h_admin_tenant_create},
	{"POST", "/api/v1/admin/tenants/{}/keys", KD_P_ADMIN,
	 h_admin_key_create},
	{"DELETE", "/api/v1/admin/tenants/{}/keys/{}", KD_P_ADMIN,
	 h_admin_key_revoke},
	{"GET", "/api/v1/admin/tenants/{}/limits", KD_P_ADMIN,
	 h_admin_limits_get},
	{"PUT", "/api/v1/admin/tenants/{}/limits", KD_P_ADMIN,
	 h_admin_limits_put},
	{"GET", "/api/v1/admin/tenants/{}/embedder", KD_P_ADMIN,
	 h_admin_embedder_get},
	{"PUT", "/api/v1/admin/tenants/{}/embedder", KD_P_ADMIN,
	 h_admin_embedder_put},
	{"DELETE", "/api/v1/admin/tenants/{}/embedder", KD_P_ADMIN,
	 h_admin_embedder_delete},
	{"POST", "/api/v1/auth/register", KD_P_PUBLIC, h_auth_register},
	{"POST", "/api/v1/auth/login", KD_P_PUBLIC, h_auth_login},
	{"POST", "/api/v1/items", KD_P_SECRET, h_items_post},
	{"GET", "/api/v1/items/{}", KD_P_PUBLIC, h_item_get},
	{"PATCH", "/api/v1/items/{}", KD_P_SECRET, h_item_patch},
	{"DELETE", "/api/v1/items/{}", KD_P_SECRET, h_item_delete},
	{"GET", "/api/v1/products/{}", KD_P_PUBLIC, h_item_get},
	{"POST", "/api/v1/interactions", KD_P_SECRET, h_interactions_post},
	{"POST", "/api/v1/feedback", KD_P_PUBLIC, h_feedback_post},
	{"POST", "/api/v1/recommendations", KD_P_PUBLIC, h_recommend},
	{"POST", "/api/v1/recommend", KD_P_PUBLIC, h_recommend},
	{"POST", "/api/v1/search", KD_P_PUBLIC, h_search},
	{"GET", "/api/v1/similar/{}", KD_P_PUBLIC, h_similar},
	{"GET", "/api/v1/trending", KD_P_PUBLIC, h_trending},
	{"PUT", "/api/v1/users/{}", KD_P_SELF, h_user_put},
	{"GET", "/api/v1/users/{}", KD_P_SELF, h_user_get},
	{"GET", "/api/v1/users/{}/favorites", KD_P_SELF, h_favorites_list},
	{"GET", "/api/v1/users/{}/favorites/{}", KD_P_SELF, h_favorite_get},
	{"PUT", "/api/v1/users/{}/favorites/{}", KD_P_SELF, h_favorite_put},
	{"DELETE", "/api/v1/users/{}/favorites/{}", KD_P_SELF,
	 h_favorite_delete},
	{"POST", "/api/v1/models/train", KD_P_SECRET, h_train},
	{"GET", "/api/v1/models/jobs/{}", KD_P_SECRET, h_job_get},
	{"GET", "/api/v1/models", KD_P_SECRET, h_models},
	{"GET", "/api/v1/analytics/searches", KD_P_SECRET,
	 h_analytics_searches},
	{"GET", "/api/v1/experiments", KD_P_SECRET, h_experiments_list},
	{"POST", "/api/v1/experiments", KD_P_SECRET, h_experiment_create},
	{"GET", "/api/v1/experiments/{}", KD_P_SECRET, h_experiment_get},
	{"POST", "/api/v1/experiments/{}/stop", KD_P_SECRET,
	 h_experiment_stop},
	{"GET", "/api/v1/models/schedule", KD_P_SECRET, h_schedule_get},
	{"PUT", "/api/v1/models/schedule", KD_P_SECRET, h_schedule_put},
	{"GET", "/api/v1/stats", KD_P_SECRET, h_stats},
	{"GET", "/api/v1/embedder", KD_P_SECRET, h_embedder_get},
	{"PUT", "/api/v1/embedder", KD_P_SECRET, h_embedder_put},
	{"DELETE", "/api/v1/embedder", KD_P_SECRET, h_embedder_delete},
	{"GET", "/api/v1/openapi.json", KD_P_OPEN, h_openapi},
};
#define NROUTES (sizeof routes / sizeof routes[0])

/* Splits the path into segments in r->pathbuf, each then percent-
 * decoded: the path as sent (http.c) is cut at its own slashes only, so
 * "%2F" is a '/' inside an id (GET /api/v1/items/a%2Fb names item
 * "a/b"), never a separator.  The count, or -1 (too many). */
static int split(kd_req *r, char **seg, int cap)
{
	free(r->pathbuf);
	r->pathbuf = strdup(r->rawpath ? r->rawpath : r->url);
	if (!r->pathbuf)
		return -1;
	int n = 0;
	for (char *p = r->pathbuf; *p;) {
		if (*p == '/') {
			*p++ = 0;
			continue;
		}
		if (n == cap)
			return -1;
		seg[n++] = p;
		while (*p && *p != '/')
			p++;
	}
	for (int i = 0; r->rawpath && i < n; i++)
		kd_unescape(seg[i]); /* in place: a segment only shrinks */
	return n;
}

/* 1 when @p pattern matches the @p n segments (params filled). */
static int match(kd_req *r, const char *pattern, char **seg, int n)
{
	int i = 0, np = 0;
	const char *p = pattern;
	while (*p) {
		p++; /* '/' */
		const char *e = strchr(p, '/');
		size_t len = e ? (size_t)(e - p) : strlen(p);
		if (i == n)
			return 0;
		if (len == 2 && p[0] == '{') {
			if (np == KD_MAX_PARAMS)
				return 0;
			r->param[np++] = seg[i];
		} else if (strlen(seg[i]) != len || memcmp(seg[i], p, len)) {
			return 0;
		}
		i++;
		p += len;
	}
	if (i != n)
		return 0;
	r->nparam = np;
	return 1;
}

/* 0 when r's credential may call a route of @p perm, else 401/403. */
static int permit(kd_req *r, kd_perm perm)
{
	if (perm == KD_P_OPEN)
		return 0;
	int rc = kd_authenticate(r);
	if (rc)
		return rc;
	if (r->cred == KD_CRED_NONE)
		return kd_err(r, 401, "unauthorized", NULL,
			      "this route needs 'Authorization: Bearer KEY'");
	if (perm == KD_P_ADMIN)
		return r->cred == KD_CRED_ADMIN
			       ? 0
			       : kd_err(r, 403, "forbidden", NULL,
					"this route needs the admin key");
	if (r->cred == KD_CRED_ADMIN)
		return kd_err(r, 403, "forbidden", NULL,
			      "the admin key manages tenants; use a key of "
			      "the tenant");
	if (perm == KD_P_SECRET && r->cred != KD_CRED_SECRET)
		return kd_err(r, 403, "forbidden", NULL,
			      "this route needs a secret key");
	r->st = kd_store();
	if (!r->st)
		return kd_err(r, 503, "unavailable", NULL,
			      "the store cannot be reached");
	/* tenants are never deleted: one selected by an earlier request
	 * of this thread still exists */
	if (knytt_store_tenant(r->st) != r->tenant &&
	    (rc = knytt_store_use_tenant(r->st, r->tenant)))
		return kd_liberr(r, rc, NULL);
	if (perm == KD_P_SELF)
		return kd_may_act(r, r->param[0]);
	return 0;
}

/* Strict UTF-8: no overlong forms, no surrogates, nothing above
 * U+10FFFF (RFC 3629); cJSON itself does not check. */
static int utf8_ok(const unsigned char *s, size_t n)
{
	size_t i = 0;
	while (i < n) {
		unsigned c = s[i];
		size_t k;
		unsigned min, cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if ((c & 0xE0) == 0xC0) {
			k = 1, min = 0x80, cp = c & 0x1F;
		} else if ((c & 0xF0) == 0xE0) {
			k = 2, min = 0x800, cp = c & 0x0F;
		} else if ((c & 0xF8) == 0xF0) {
			k = 3, min = 0x10000, cp = c & 0x07;
		} else {
			return 0;
		}
		if (i + k >= n)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((s[i + j] & 0xC0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + j] & 0x3F);
		}
		if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return 0;
		i += k + 1;
	}
	return 1;
}

/* Parses the body into r->json: 0, 415 or 400. */
static int parse_body(kd_req *r)
{
	if (r->len == 0)
		return 0;
	const char *ct = MHD_lookup_connection_value(
		r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
	if (!ct || strncasecmp(ct, "application/json", 16) != 0 ||
	    (ct[16] && ct[16] != ';' && ct[16] != ' '))
		return kd_err(r, 415, "unsupported_media_type", NULL,
			      "the body must be application/json");
	if (!utf8_ok((const unsigned char *)r->body, r->len))
		return kd_err(r, 400, "invalid_utf8", NULL,
			      "the body is not valid UTF-8");
	/* cJSON decodes \u0000 to a NUL that would cut a string short */
	if (strstr(r->body, "\\u0000"))
		return kd_err(r, 400, "invalid_json", NULL,
			      "strings may not contain \\u0000");
	if (memchr(r->body, 0, r->len))
		return kd_err(r, 400, "invalid_json", NULL,
			      "the body contains a NUL byte");
	/* the length counts the terminating NUL: cJSON's check that
	 * nothing follows the value looks for it */
	const char *end = NULL;
	r->json = cJSON_ParseWithLengthOpts(r->body, r->len + 1, &end, 1);
	if (!r->json)
		return kd_err(r, 400, "invalid_json", NULL,
			      "the body is not valid JSON (at byte %zu)",
			      end ? (size_t)(end - r->body) : (size_t)0);
	return 0;
}

int kd_route_at(size_t i, const char **method, const char **pattern,
		kd_perm *perm)
{
	if (i >= NROUTES)
		return 0;
	*method = routes[i].method;
	*pattern = routes[i].pattern;
	*perm = routes[i].perm;
	return 1;
}

void kd_dispatch(kd_req *r)
{
	char *seg[16];
	int n = split(r, seg, 16);
	const kd_route *hit = NULL;
	char allow[128] = "";
	for (size_t i = 0; n >= 0 && i < NROUTES; i++) {
		if (!match(r, routes[i].pattern, seg, n))
			continue;
		if (strcmp(routes[i].method, r->method) == 0) {
			hit = &routes[i];
			break;
		}
		if (!strstr(allow, routes[i].method)) {
			if (*allow)
				strcat(allow, ", ");
			strcat(allow, routes[i].method);
		}
	}
	if (!hit && *allow) {
		r->allow = strdup(allow);
		kd_err(r, 405, "method_not_allowed", NULL,
		       "%s is not allowed here (allowed: %s)", r->method,
		       allow);
		return;
	}
	if (hit) {
		r->route = hit->pattern;
		r->route_method = hit->method;
	}
	if (!hit && !kd_static(r)) {
		kd_err(r, 404, "no_route", NULL, "no route %s %s", r->method,
		       r->url);
		return;
	}
	if (!hit)
		return;
	if (permit(r, hit->perm) || parse_body(r) || kd_limit_check(r))
		return;
	hit->fn(r);
	kd_replica_after(r);
}
