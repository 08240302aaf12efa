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
#include <unistd.h>

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
	const char *f = kd_errfield();
	snprintf(p->fieldbuf, sizeof p->fieldbuf, "%s", f ? f : "");
	p->field = p->fieldbuf;
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

/*
 * Batches of BULK_MIN items or more (those without an embedding) go
 * through knytt_store_import: one transaction per batch of rows instead
 * of one per item.  Each item commit costs a WAL write in SQLite, so
 * 10,000 items took 13.7 s one by one on the shared test machine; the
 * engine then takes them in with knytt_engine_sync.  Items with an
 * embedding need knytt_engine_item_upsert for their vector.
 */
#define BULK_MIN 64

typedef struct bulk {
	parsed *ps;
	int *state;     /* per index: 0 pending, 1 accepted, -1 rejected */
	size_t *index;  /* per line of the file (0-based): the item index */
	size_t nlines;
} bulk;

static void on_reject(size_t line, const char *field, const char *reason,
		      void *ctx)
{
	bulk *b = ctx;
	if (line == 0 || line > b->nlines)
		return;
	size_t i = b->index[line - 1];
	parsed *p = &b->ps[i];
	p->field = !strcmp(field, "id")		 ? "item_id"
		   : !strcmp(field, "quality") ? "quality_score"
					       : (snprintf(p->fieldbuf,
							   sizeof p->fieldbuf,
							   "%s", field),
						  p->fieldbuf);
	snprintf(p->reason, sizeof p->reason, "%s", reason);
	b->state[i] = -1;
}

/* One parsed item as a line of the import's JSON Lines format. */
static char *jsonl(const parsed *p)
{
	const knytt_item *it = &p->it;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", it->ext_id);
	const char *s[][2] = {{"title", it->title},
			      {"description", it->description},
			      {"category", it->category},
			      {"currency", it->currency},
			      {"image_url", it->image_url}};
	for (size_t k = 0; k < sizeof s / sizeof s[0]; k++)
		if (s[k][1])
			cJSON_AddStringToObject(o, s[k][0], s[k][1]);
	cJSON_AddNumberToObject(o, "price", it->price);
	cJSON_AddBoolToObject(o, "in_stock", it->in_stock);
	cJSON_AddNumberToObject(o, "quality", it->quality);
	if (it->attributes)
		cJSON_AddItemToObject(o, "attributes",
				      cJSON_Parse(it->attributes));
	char *t = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return t;
}

/* Imports the pending items without a vector; 0 or an error status. */
static int store_bulk(kd_req *r, knytt_engine *e, bulk *b, size_t n)
{
	const char *tmp = getenv("TMPDIR");
	char path[4096];
	snprintf(path, sizeof path, "%s/knyttd-items-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	int fd = mkstemp(path);
	FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
	if (!f) {
		if (fd >= 0)
			close(fd);
		return kd_err(r, 503, "unavailable", NULL,
			      "cannot write a temporary file");
	}
	int ok = 1;
	b->nlines = 0;
	for (size_t i = 0; i < n && ok; i++) {
		if (b->state[i] || b->ps[i].vec)
			continue;
		char *t = jsonl(&b->ps[i]);
		ok = t && fputs(t, f) >= 0 && fputc('\n', f) != EOF;
		free(t);
		b->index[b->nlines++] = i;
	}
	ok = fclose(f) == 0 && ok;
	int rc = ok ? knytt_store_import(r->st, path, KNYTT_RECORD_ITEMS,
					 KNYTT_FORMAT_JSONL, on_reject, b)
		    : KNYTT_EIO;
	unlink(path);
	if (rc < 0)
		return kd_liberr(r, rc, NULL);
	for (size_t l = 0; l < b->nlines; l++)
		if (b->state[b->index[l]] == 0)
			b->state[b->index[l]] = 1;
	rc = knytt_engine_sync(e);
	return rc < 0 ? kd_liberr(r, rc, NULL) : 0;
}

/* The answer: accepted ids and rejections, in request order. */
static int batch_answer(kd_req *r, const bulk *b, size_t n)
{
	cJSON *out = cJSON_CreateObject(), *acc = cJSON_CreateArray(),
	      *rej = cJSON_CreateArray();
	size_t nacc = 0;
	for (size_t i = 0; i < n; i++) {
		if (b->state[i] == 1) {
			cJSON_AddItemToArray(
				acc, cJSON_CreateString(b->ps[i].it.ext_id));
			nacc++;
		} else {
			cJSON_AddItemToArray(rej, rejection(i, &b->ps[i]));
		}
	}
	cJSON_AddNumberToObject(out, "accepted_count", (double)nacc);
	cJSON_AddNumberToObject(out, "rejected_count", (double)(n - nacc));
	cJSON_AddItemToObject(out, "accepted", acc);
	cJSON_AddItemToObject(out, "rejected", rej);
	return kd_ok(r, 200, out);
}

/* Stores the pending items of @p b: in bulk when there are enough,
 * the rest one by one.  0 or an error status. */
static int store_items(kd_req *r, knytt_engine *e, bulk *b, size_t n)
{
	size_t plain = 0;
	for (size_t i = 0; i < n; i++)
		plain += b->state[i] == 0 && !b->ps[i].vec;
	int rc;
	/* the bulk path stores no vector: with an embedding service every
	 * item goes through the engine, which embeds it */
	if (plain >= BULK_MIN && !kd_eref_external(r->eref) &&
	    (rc = store_bulk(r, e, b, n)))
		return rc;
	for (size_t i = 0; i < n; i++) {
		if (b->state[i])
			continue;
		rc = store_one(e, &b->ps[i]);
		if (rc < -1) /* the store failed: stop */
			return kd_liberr(r, rc, NULL);
		b->state[i] = rc == 0 ? 1 : -1;
	}
	return 0;
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
	bulk bk = {calloc((size_t)n, sizeof *bk.ps),
		   calloc((size_t)n, sizeof *bk.state),
		   calloc((size_t)n, sizeof *bk.index), 0};
	if (!bk.ps || !bk.state || !bk.index) {
		rc = kd_err(r, 503, "no_memory", NULL, "out of memory");
		goto done;
	}
	const cJSON *o = single ? b : items->child;
	for (size_t i = 0; i < (size_t)n; i++, o = single ? NULL : o->next)
		if (parse_new(&bk.ps[i], o))
			bk.state[i] = -1;
	rc = store_items(r, e, &bk, (size_t)n);
	/* accepted items may have been cached with their old fields */
	kd_itemcache_forget_tenant(r->tenant);
	if (rc == 0)
		rc = batch_answer(r, &bk, (size_t)n);
done:
	for (size_t i = 0; bk.ps && i < (size_t)n; i++)
		parsed_free(&bk.ps[i]);
	free(bk.ps);
	free(bk.state);
	free(bk.index);
	return rc;
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
	kd_itemcache_forget(r->tenant, old->id);
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
	uint64_t id = it->id;
	knytt_free(it);
	rc = knytt_engine_item_delete(e, r->param[0]);
	kd_itemcache_forget(r->tenant, id);
	if (rc)
		return kd_liberr(r, rc == KNYTT_EINVAL ? KNYTT_ENOTFOUND : rc,
				 "item_id");
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "item_id", r->param[0]);
	cJSON_AddBoolToObject(o, "deleted", 1);
	return kd_ok(r, 200, o);
}
