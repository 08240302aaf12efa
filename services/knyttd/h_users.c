/*
 * h_users.c -- shoppers' profiles and favorites: PUT/GET
 * /api/v1/users/{id}, GET /api/v1/users/{id}/favorites and
 * GET/PUT/DELETE /api/v1/users/{id}/favorites/{item}.  The route table
 * lets a public key through only with the token of the shopper in the
 * path (KD_P_SELF).
 */
#include "knyttd.h"

#include <stdlib.h>
#include <string.h>

int h_user_put(kd_req *r)
{
	const cJSON *b, *a;
	char *attrs = NULL;
	int rc = kd_body_obj(r, &b);
	if (rc)
		return rc;
	a = cJSON_GetObjectItemCaseSensitive(b, "attributes");
	if (a && !cJSON_IsNull(a)) {
		if (!cJSON_IsObject(a))
			return kd_err(r, 400, "wrong_type", "attributes",
				      "field attributes must be an object");
		attrs = cJSON_PrintUnformatted(a);
	}
	rc = knytt_store_user_upsert(r->st, r->param[0], attrs, NULL);
	free(attrs);
	if (rc)
		return kd_liberr(r, rc, rc == KNYTT_EINVAL ? "user_id" : NULL);
	return h_user_get(r);
}

typedef struct hist {
	cJSON *arr;
} hist;

static int add_event(const knytt_interaction *ix, void *ctx)
{
	hist *h = ctx;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "item_id", ix->item ? ix->item : "");
	cJSON_AddStringToObject(o, "interaction_type", ix->type);
	cJSON_AddNumberToObject(o, "timestamp", (double)ix->ts_ms);
	if (ix->has_value)
		cJSON_AddNumberToObject(o, "value", ix->value);
	cJSON_AddItemToArray(h->arr, o);
	return 0;
}

int h_user_get(kd_req *r)
{
	long long nh;
	knytt_engine *e;
	uint64_t id;
	char *attrs = NULL;
	int64_t created;
	int rc;
	if ((rc = kd_query_int(r, "history", 0, 512, 20, &nh)) ||
	    (rc = kd_engine(r, &e)))
		return rc;
	/* events acknowledged before this request are in the store */
	if ((rc = knytt_engine_flush(e)))
		return kd_liberr(r, rc, NULL);
	rc = knytt_store_user_get(r->st, r->param[0], &id, &attrs, &created);
	if (rc == KNYTT_ENOTFOUND || rc == KNYTT_EINVAL)
		return kd_err(r, 404, "not_found", "user_id",
			      "no user '%.200s'", r->param[0]);
	if (rc)
		return kd_liberr(r, rc, NULL);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "user_id", r->param[0]);
	cJSON *a = attrs ? cJSON_Parse(attrs) : NULL;
	knytt_free(attrs);
	cJSON_AddItemToObject(o, "attributes", a ? a : cJSON_CreateObject());
	cJSON_AddNumberToObject(o, "created_at_ms", (double)created);
	hist h = {cJSON_CreateArray()};
	if (nh > 0) {
		rc = knytt_store_user_recent(r->st, r->param[0], (size_t)nh,
					     add_event, &h);
		if (rc < 0 && rc != KNYTT_ENOTFOUND) {
			cJSON_Delete(o);
			cJSON_Delete(h.arr);
			return kd_liberr(r, rc, NULL);
		}
	}
	cJSON_AddItemToObject(o, "history", h.arr);
	return kd_ok(r, 200, o);
}

#define MAX_FAV 10000

int h_favorites_list(kd_req *r)
{
	uint64_t *ids = malloc(MAX_FAV * sizeof *ids);
	if (!ids)
		return kd_err(r, 503, "no_memory", NULL, "out of memory");
	int n = knytt_store_favorite_list(r->st, r->param[0], ids, MAX_FAV);
	if (n < 0) {
		free(ids);
		return kd_liberr(r, n, "user_id");
	}
	cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
	for (int i = 0; i < n; i++) {
		knytt_item *it;
		if (knytt_store_item_get_id(r->st, ids[i], &it))
			continue;
		if (!it->deleted)
			cJSON_AddItemToArray(arr, kd_item_json(it));
		knytt_free(it);
	}
	free(ids);
	cJSON_AddStringToObject(o, "user_id", r->param[0]);
	cJSON_AddItemToObject(o, "favorites", arr);
	return kd_ok(r, 200, o);
}

int h_favorite_get(kd_req *r)
{
	knytt_item *it;
	int rc = knytt_store_item_get(r->st, r->param[1], &it);
	if (rc == KNYTT_ENOTFOUND || rc == KNYTT_EINVAL)
		return kd_err(r, 404, "not_found", "item_id",
			      "no item '%.200s'", r->param[1]);
	if (rc)
		return kd_liberr(r, rc, NULL);
	uint64_t want = it->id;
	knytt_free(it);
	uint64_t *ids = malloc(MAX_FAV * sizeof *ids);
	if (!ids)
		return kd_err(r, 503, "no_memory", NULL, "out of memory");
	int n = knytt_store_favorite_list(r->st, r->param[0], ids, MAX_FAV);
	int found = 0;
	for (int i = 0; i < n && !found; i++)
		found = ids[i] == want;
	free(ids);
	if (n < 0)
		return kd_liberr(r, n, "user_id");
	if (!found)
		return kd_err(r, 404, "not_found", "item_id",
			      "'%.200s' is not a favorite of '%.200s'",
			      r->param[1], r->param[0]);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "user_id", r->param[0]);
	cJSON_AddStringToObject(o, "item_id", r->param[1]);
	cJSON_AddBoolToObject(o, "favorite", 1);
	return kd_ok(r, 200, o);
}

static int fav_answer(kd_req *r, int on)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "user_id", r->param[0]);
	cJSON_AddStringToObject(o, "item_id", r->param[1]);
	cJSON_AddBoolToObject(o, "favorite", on);
	return kd_ok(r, 200, o);
}

/* A favorite is also a "favorite" event, so the shopper's taste and the
 * trending counters learn from it like from any other signal. */
int h_favorite_put(kd_req *r)
{
	knytt_engine *e;
	int rc = kd_engine(r, &e);
	if (rc)
		return rc;
	rc = knytt_store_favorite_set(r->st, r->param[0], r->param[1]);
	if (rc == KNYTT_ENOTFOUND)
		return kd_err(r, 404, "not_found", "item_id",
			      "no item '%.200s'", r->param[1]);
	if (rc || (rc = knytt_engine_feedback(e, r->param[0], r->param[1],
					       "favorite", 0, 0)))
		return kd_liberr(r, rc, NULL);
	return fav_answer(r, 1);
}

/* The "favorite" event of an earlier PUT marks the favorite again when
 * the store writes it (same commit), and events are written behind: the
 * queue is drained first, else a PUT then DELETE could end marked
 * (seen on PostgreSQL, tests/check_knyttd.c users_and_favorites). */
int h_favorite_delete(kd_req *r)
{
	knytt_engine *e;
	int rc = kd_engine(r, &e);
	if (rc)
		return rc;
	if ((rc = knytt_engine_flush(e)))
		/* another event's write failed: not this request's error */
		kd_log("{\"level\":\"warn\",\"msg\":\"feedback write: %s\"}",
		       knytt_errname(rc));
	rc = knytt_store_favorite_unset(r->st, r->param[0], r->param[1]);
	if (rc == KNYTT_ENOTFOUND)
		return kd_err(r, 404, "not_found", "item_id",
			      "no user '%.200s' or item '%.200s'", r->param[0],
			      r->param[1]);
	if (rc)
		return kd_liberr(r, rc, NULL);
	return fav_answer(r, 0);
}
