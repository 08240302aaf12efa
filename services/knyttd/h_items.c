/*
 * h_items.c -- the catalog: POST /api/v1/items (a batch of up to 10,000
 * items, validated one by one), GET /api/v1/items/{id} and
 * /api/v1/products/{id}, PATCH and DELETE /api/v1/items/{id}.
 *
 * A batch answers which items were accepted and which rejected (index,
 * item_id, field, reason); each item is stored whole or not at all
 * (knytt_engine_item_upsert changes nothing on error), and a rejected
 * item does not stop the others, like knytt_store_import's rows.
 */
#include "knyttd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCH 10000
#define MAX_DIM 4096

cJSON *kd_item_json(const knytt_item *it)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "item_id", it->ext_id);
	if (it->title)
		cJSON_AddStringToObject(o, "title", it->title);
	if (it->description)
		cJSON_AddStringToObject(o, "description", it->description);
	if (it->category)
		cJSON_AddStringToObject(o, "category", it->category);
	cJSON_AddNumberToObject(o, "price", it->price);
	if (it->currency)
		cJSON_AddStringToObject(o, "currency", it->currency);
	cJSON_AddBoolToObject(o, "in_stock", it->in_stock);
	cJSON_AddNumberToObject(o, "quality_score", it->quality);
	if (it->image_url)
		cJSON_AddStringToObject(o, "image_url", it->image_url);
	cJSON *a = it->attributes ? cJSON_Parse(it->attributes) : NULL;
	if (a)
		cJSON_AddItemToObject(o, "attributes", a);
	cJSON_AddNumberToObject(o, "created_at_ms", (double)it->created_ms);
	cJSON_AddNumberToObject(o, "updated_at_ms", (double)it->updated_ms);
	return o;
}

/* One item of a request, parsed; strings borrow from the JSON, except
 * attributes (printed) and the vector. */
typedef struct parsed {
	knytt_item it;
	char *attrs;
	float *vec;
	uint32_t dim;
	const char *field; /* on error: the field */
	char fieldbuf[64];
	char reason[256];  /* on error: why */
} parsed;

static void parsed_free(parsed *p)
{
	free(p->attrs);
	free(p->vec);
}

static int bad(parsed *p, const char *field, const char *reason)
{
	p->field = field;
	snprintf(p->reason, sizeof p->reason, "%s", reason);
	return -1;
}

static int opt_str(parsed *p, const cJSON *o, const char *name,
		   const char **dst)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return bad(p, name, "must be a string");
	*dst = v->valuestring;
	return 0;
}

static int opt_num(parsed *p, const cJSON *o, const char *name, double *dst)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		return bad(p, name, "must be a finite number");
	*dst = v->valuedouble;
	return 0;
}

static int read_embedding(parsed *p, const cJSON *o)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "embedding");
	if (!v || cJSON_IsNull(v))
		return 0;
	int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
	if (n <= 0 || n > MAX_DIM)
		return bad(p, "embedding", "must be an array of 1..4096 "
					   "numbers");
	if (!(p->vec = malloc((size_t)n * sizeof *p->vec)))
		return bad(p, "embedding", "out of memory");
	int i = 0;
	const cJSON *x;
	cJSON_ArrayForEach(x, v)
	{
		if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble))
			return bad(p, "embedding", "must hold finite numbers");
		p->vec[i++] = (float)x->valuedouble;
	}
	p->dim = (uint32_t)n;
	return 0;
}

/* Reads the fields present in @p o over p->it (PATCH starts from the
 * stored item, POST from defaults).  0 or -1 with field and reason. */
static int parse_fields(parsed *p, const cJSON *o)
{
	if (!cJSON_IsObject(o))
		return bad(p, "", "an item must be a JSON object");
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "in_stock");
	if (st && !cJSON_IsNull(st)) {
		if (!cJSON_IsBool(st))
			return bad(p, "in_stock", "must be true or false");
		p->it.in_stock = cJSON_IsTrue(st);
	}
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "attributes");
	if (a && !cJSON_IsNull(a)) {
		if (!cJSON_IsObject(a))
			return bad(p, "attributes", "must be a JSON object");
		if (!(p->attrs = cJSON_PrintUnformatted(a)))
			return bad(p, "attributes", "out of memory");
		p->it.attributes = p->attrs;
	}
	double q = p->it.quality;
	if (opt_str(p, o, "title", &p->it.title) ||
	    opt_str(p, o, "description", &p->it.description) ||
	    opt_str(p, o, "category", &p->it.category) ||
	    opt_str(p, o, "currency", &p->it.currency) ||
	    opt_str(p, o, "image_url", &p->it.image_url) ||
	    opt_num(p, o, "price", &p->it.price) ||
	    opt_num(p, o, "quality", &q) ||
	    opt_num(p, o, "quality_score", &q) || read_embedding(p, o))
		return -1;
	p->it.quality = q;
	return 0;
}

static int parse_new(parsed *p, const cJSON *o)
{
	memset(p, 0, sizeof *p);
	p->it.struct_size = sizeof p->it;
	p->it.in_stock = 1;
	if (cJSON_IsObject(o) && opt_str(p, o, "item_id", &p->it.ext_id))
		return -1;
	if (parse_fields(p, o))
		return -1;
	if (!p->it.ext_id || !*p->it.ext_id)
		return bad(p, "item_id", "is required");
	return 0;
}

/* Upserts one parsed item; 0 or -1 with the library's reason. */
static int store_one(knytt_engine *e, parsed *p)
{
	int rc = knytt_engine_item_upsert(e, &p->it, p->vec, p->dim);
	if (rc == 0)
		return 0;
	const char *f = kd_field_of(knytt_errmsg(), p->fieldbuf,
				    sizeof p->fieldbuf);
	p->field = !f ? "" : !strcmp(f, "ext_id") ? "item_id"
			   : !strcmp(f, "quality") ? "quality_score"
						  : f;
	snprintf(p->reason, sizeof p->reason, "%s", knytt_errmsg());
	return rc == KNYTT_EINVAL || rc == KNYTT_ERANGE ? -1 : rc;
}

static cJSON *rejection(size_t index, const parsed *p)
{
	cJSON *x = cJSON_CreateObject();
	cJSON_AddNumberToObject(x, "index", (double)index);
	if (p->it.ext_id)
		cJSON_AddStringToObject(x, "item_id", p->it.ext_id);
	cJSON_AddStringToObject(x, "field", p->field ? p->field : "");
	cJSON_AddStringToObject(x, "reason", p->reason);
	return x;
}

int h_items_post(kd_req *r)
{
	const cJSON *b, *items;
	int rc = kd_body_obj(r, &b);
	if (rc)
		return rc;
	items = cJSON_GetObjectItemCaseSensitive(b, "items");
	int single = !items && cJSON_GetObjectItemCaseSensitive(b, "item_id");
	int n = single ? 1 : cJSON_IsArray(items) ? cJSON_GetArraySize(items)
						  : -1;
	if (n < 0)
		return kd_err(r, 400, "wrong_type", "items",
			      "field items must be an array of items");
	if (n == 0 || n > MAX_BATCH)
		return kd_err(r, 422, "out_of_range", "items",
			      "field items must hold 1..%d items", MAX_BATCH);
	knytt_engine *e;
	if ((rc = kd_engine(r, &e)))
		return rc;
	cJSON *out = cJSON_CreateObject(), *acc = cJSON_CreateArray(),
	      *rej = cJSON_CreateArray();
	size_t index = 0, nacc = 0;
	const cJSON *o = single ? b : items->child;
	for (; o && index < (size_t)n; o = single ? NULL : o->next, index++) {
		parsed p;
		rc = parse_new(&p, o);
		if (rc == 0)
			rc = store_one(e, &p);
		if (rc == 0) {
			cJSON_AddItemToArray(acc,
					     cJSON_CreateString(p.it.ext_id));
			nacc++;
		} else if (rc == -1) {
			cJSON_AddItemToArray(rej, rejection(index, &p));
		}
		parsed_free(&p);
		if (rc < -1) { /* the store failed: stop, report so far */
			cJSON_Delete(out);
			cJSON_Delete(acc);
			cJSON_Delete(rej);
			return kd_liberr(r, rc, NULL);
		}
	}
	cJSON_AddNumberToObject(out, "accepted_count", (double)nacc);
	cJSON_AddNumberToObject(out, "rejected_count",
				(double)(index - nacc));
	cJSON_AddItemToObject(out, "accepted", acc);
	cJSON_AddItemToObject(out, "rejected", rej);
	return kd_ok(r, 200, out);
}

/* The live item of the path, or 404. */
static int get_item(kd_req *r, knytt_item **it)
{
	int rc = knytt_store_item_get(r->st, r->param[0], it);
	if (rc == 0 && (*it)->deleted) {
		knytt_free(*it);
		rc = KNYTT_ENOTFOUND;
	}
	if (rc == KNYTT_ENOTFOUND || rc == KNYTT_EINVAL)
		return kd_err(r, 404, "not_found", "item_id",
			      "no item '%.200s'", r->param[0]);
	return rc ? kd_liberr(r, rc, NULL) : 0;
}

int h_item_get(kd_req *r)
{
	knytt_item *it;
	int rc = get_item(r, &it);
	if (rc)
		return rc;
	cJSON *o = kd_item_json(it);
	knytt_free(it);
	return kd_ok(r, 200, o);
}

int h_item_patch(kd_req *r)
{
	const cJSON *b;
	knytt_item *old;
	knytt_engine *e;
	int rc;
	if ((rc = kd_body_obj(r, &b)) || (rc = kd_engine(r, &e)) ||
	    (rc = get_item(r, &old)))
		return rc;
	parsed p;
	memset(&p, 0, sizeof p);
	p.it = *old;
	p.it.struct_size = sizeof p.it;
	p.it.ext_id = old->ext_id; /* the path's id, whatever the body says */
	if (parse_fields(&p, b))
		rc = kd_err(r, 400, "wrong_type", p.field, "field %s %s",
			    p.field, p.reason);
	else if ((rc = store_one(e, &p)) == -1)
		rc = kd_err(r, 422, "invalid_field", p.field, "%s", p.reason);
	else if (rc)
		rc = kd_liberr(r, rc, NULL);
	parsed_free(&p);
	knytt_free(old);
	return rc ? rc : h_item_get(r);
}

int h_item_delete(kd_req *r)
{
	knytt_engine *e;
	knytt_item *it;
	int rc;
	/* an item deleted already is gone: 404, like one never stored */
	if ((rc = kd_engine(r, &e)) || (rc = get_item(r, &it)))
		return rc;
	knytt_free(it);
	if ((rc = knytt_engine_item_delete(e, r->param[0])))
		return kd_liberr(r, rc == KNYTT_EINVAL ? KNYTT_ENOTFOUND : rc,
				 "item_id");
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "item_id", r->param[0]);
	cJSON_AddBoolToObject(o, "deleted", 1);
	return kd_ok(r, 200, o);
}
