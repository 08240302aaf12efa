/*
 * json.c -- JSON answers, errors and typed field getters.
 *
 * Every error has one shape, {"error": {"code", "message", "field"}},
 * and the status that means it: 400 for a body that is not what the
 * route reads (not JSON, not UTF-8, a field of the wrong type), 422 for
 * a well-formed value the rules refuse (a negative price), 404, 409 and
 * so on.  Unknown fields are ignored, so clients may send more than a
 * route reads.
 */
#include "knyttd.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

int kd_ok(kd_req *r, int status, cJSON *body)
{
	cJSON_Delete(r->out);
	r->out = body;
	r->status = body ? status : 503;
	if (!body) /* out of memory: say so without allocating much */
		return kd_err(r, 503, "no_memory", NULL, "out of memory");
	return status;
}

int kd_err(kd_req *r, int status, const char *code, const char *field,
	   const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	cJSON_Delete(r->out);
	r->out = NULL;
	r->status = status;
	cJSON *root = cJSON_CreateObject(), *e = cJSON_CreateObject();
	if (!root || !e) {
		cJSON_Delete(root);
		cJSON_Delete(e);
		return status; /* http.c answers with a fixed text */
	}
	cJSON_AddItemToObject(root, "error", e);
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", msg);
	if (field)
		cJSON_AddStringToObject(e, "field", field);
	else
		cJSON_AddNullToObject(e, "field");
	r->out = root;
	return status;
}

/* The library names fields after its structs; the API after its JSON. */
static const char *api_field(const char *f)
{
	static const char *const map[][2] = {
		{"ext_id", "item_id"}, {"user", "user_id"},
		{"item", "item_id"},   {"type", "interaction_type"},
		{"quality", "quality_score"}, {"ts_ms", "timestamp"},
	};
	for (size_t i = 0; f && i < sizeof map / sizeof map[0]; i++)
		if (strcmp(f, map[i][0]) == 0)
			return map[i][1];
	return f;
}

int kd_settings_get(knytt_store *st, const char *name, cJSON **out)
{
	*out = NULL;
	char *meta = NULL;
	int rc = knytt_store_model_get(st, name, 0, NULL, NULL, &meta, NULL,
				       NULL);
	if (rc == KNYTT_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	cJSON *o = meta ? cJSON_Parse(meta) : NULL;
	knytt_free(meta);
	if (cJSON_IsObject(o))
		*out = o;
	else
		cJSON_Delete(o);
	return 0;
}

double kd_json_num(const cJSON *o, const char *k, double def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : def;
}

const char *kd_errfield(void)
{
	const char *f = knytt_errfield();
	return *f ? api_field(f) : NULL;
}

int kd_liberr(kd_req *r, int rc, const char *field)
{
	const char *msg = knytt_errmsg();
	if (!field)
		field = kd_errfield();
	if (!*msg)
		msg = knytt_errstr(rc);
	switch (rc) {
	case KNYTT_EINVAL:
	case KNYTT_ERANGE:
		return kd_err(r, 422, "invalid_field", field, "%s", msg);
	case KNYTT_ENOTFOUND:
		return kd_err(r, 404, "not_found", field, "%s", msg);
	case KNYTT_EEXIST:
		return kd_err(r, 409, "conflict", field, "%s", msg);
	case KNYTT_EBUSY:
		return kd_err(r, 409, "busy", field, "%s", msg);
	case KNYTT_EAUTH:
		/* with an embedding service, the service refused knyttd's
		 * key, not the client's */
		if (r->eref && kd_eref_external(r->eref))
			return kd_err(r, 502, "embedding_service", field,
				      "the embedding service refused: %s", msg);
		return kd_err(r, 401, "unauthorized", field, "%s", msg);
	case KNYTT_EPROTO: /* only an embedding service's answer */
		return kd_err(r, 502, "embedding_service", field,
			      "the embedding service answered wrongly: %s",
			      msg);
	case KNYTT_EDB:
	case KNYTT_EIO:
	case KNYTT_ETIMEDOUT:
		kd_metrics_store_error(rc);
		return kd_err(r, 503, "unavailable", field, "%s", msg);
	case KNYTT_ENOMEM:
	case KNYTT_ESTATE:
		return kd_err(r, 503, "unavailable", field, "%s", msg);
	default:
		return kd_err(r, 500, "internal", field, "%s: %s",
			      knytt_errname(rc), msg);
	}
}

static int wrong_type(kd_req *r, const char *name, const char *want)
{
	return kd_err(r, 400, "wrong_type", name, "field %s must be %s", name,
		      want);
}

int kd_get_str(kd_req *r, const cJSON *obj, const char *name,
	       const char **out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return wrong_type(r, name, "a string");
	/* a \u0000 escape would cut the string short silently */
	*out = v->valuestring;
	return 1;
}

int kd_get_num(kd_req *r, const cJSON *obj, const char *name, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		return wrong_type(r, name, "a finite number");
	*out = v->valuedouble;
	return 1;
}

int kd_get_int(kd_req *r, const cJSON *obj, const char *name, long long lo,
	       long long hi, long long *out)
{
	double d = 0;
	int rc = kd_get_num(r, obj, name, &d);
	if (rc != 1)
		return rc;
	if (d != floor(d))
		return wrong_type(r, name, "an integer");
	if (d < (double)lo || d > (double)hi)
		return kd_err(r, 422, "out_of_range", name,
			      "field %s must be in %lld..%lld", name, lo, hi);
	*out = (long long)d;
	return 1;
}

int kd_get_bool(kd_req *r, const cJSON *obj, const char *name, int *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsBool(v))
		return wrong_type(r, name, "true or false");
	*out = cJSON_IsTrue(v);
	return 1;
}

int kd_body_obj(kd_req *r, const cJSON **out)
{
	if (!r->json || !cJSON_IsObject(r->json))
		return kd_err(r, 400, "bad_body", NULL,
			      "the body must be a JSON object");
	*out = r->json;
	return 0;
}

const char *kd_query(kd_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND,
					   name);
}

int kd_query_int(kd_req *r, const char *name, long long lo, long long hi,
		 long long def, long long *out)
{
	const char *s = kd_query(r, name);
	*out = def;
	if (!s)
		return 0;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (end == s || *end || errno)
		return kd_err(r, 400, "wrong_type", name,
			      "parameter %s must be an integer", name);
	if (v < lo || v > hi)
		return kd_err(r, 422, "out_of_range", name,
			      "parameter %s must be in %lld..%lld", name, lo,
			      hi);
	*out = v;
	return 0;
}
