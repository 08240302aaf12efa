/*
 * h_models.c -- POST /api/v1/models/train (202 + job id),
 * GET /api/v1/models/jobs/{id} and GET /api/v1/models (the stored
 * versions and the one serving, the evaluations of the serving and of
 * the last trained model, and the training schedule).  A version the
 * training gate held back is listed with "held_back": true.
 */
#include "knyttd.h"

#include <string.h>

/* The engine stores its models under this name (lib/engine/train.c). */
#define MODEL_NAME "engine-model"
#define MAX_VERSIONS 20

int h_train(kd_req *r)
{
	knytt_engine *e;
	char id[48];
	int rc;
	if ((rc = kd_engine(r, &e)) || (rc = kd_job_start(r, id, sizeof id)))
		return rc;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "job_id", id);
	cJSON_AddStringToObject(o, "state", "queued");
	return kd_ok(r, 202, o);
}

int h_job_get(kd_req *r)
{
	cJSON *o = NULL;
	int rc = kd_job_get(r, r->param[0], &o);
	if (rc == KNYTT_ENOTFOUND || rc == KNYTT_EINVAL)
		return kd_err(r, 404, "not_found", "job_id", "no job '%.100s'",
			      r->param[0]);
	if (rc)
		return kd_liberr(r, rc, NULL);
	return kd_ok(r, 200, o);
}

static cJSON *version_json(kd_req *r, int64_t v, int64_t *got)
{
	size_t size = 0;
	char *meta = NULL;
	int64_t created = 0;
	*got = 0;
	if (knytt_store_model_get(r->st, MODEL_NAME, v, NULL, &size, &meta,
				  got, &created))
		return NULL;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "version", (double)*got);
	cJSON_AddNumberToObject(o, "created_at_ms", (double)created);
	cJSON_AddNumberToObject(o, "size_bytes", (double)size);
	cJSON *m = meta ? cJSON_Parse(meta) : NULL;
	knytt_free(meta);
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(m, "promoted");
	cJSON_AddBoolToObject(o, "held_back", cJSON_IsFalse(p));
	if (m)
		cJSON_AddItemToObject(o, "metadata", m);
	return o;
}

int h_models(kd_req *r)
{
	knytt_engine *e;
	knytt_train_status ts = {.struct_size = sizeof ts};
	int rc;
	if ((rc = kd_engine(r, &e)) || (rc = knytt_engine_train_status(e, &ts)))
		return rc > 0 ? rc : kd_liberr(r, rc, NULL);
	cJSON *o = cJSON_CreateObject(), *arr = cJSON_CreateArray();
	cJSON_AddNumberToObject(o, "serving_version", (double)ts.model_version);
	cJSON_AddNumberToObject(o, "items_indexed", (double)ts.items_indexed);
	cJSON_AddBoolToObject(o, "training", ts.running);
	int64_t v = 0, got;
	cJSON *x = version_json(r, 0, &got); /* the latest */
	for (int i = 0; x && i < MAX_VERSIONS; i++) {
		cJSON_AddItemToArray(arr, x);
		v = got - 1;
		x = v > 0 ? version_json(r, v, &got) : NULL;
	}
	cJSON_Delete(x);
	for (cJSON *y = arr->child; y; y = y->next) {
		const cJSON *yv = cJSON_GetObjectItemCaseSensitive(y, "version");
		cJSON_AddBoolToObject(y, "serving",
				      (int64_t)yv->valuedouble ==
					      ts.model_version);
	}
	cJSON_AddItemToObject(o, "versions", arr);
	knytt_train_eval ev = {.struct_size = sizeof ev};
	for (int which = 1; which >= 0; which--) {
		knytt_engine_train_eval(e, which, &ev);
		cJSON *j = kd_eval_json(&ev);
		cJSON_AddItemToObject(o, which ? "serving_evaluation"
					       : "last_evaluation",
				      j ? j : cJSON_CreateNull());
	}
	kd_sched sc;
	if ((rc = kd_sched_get(r->st, &sc))) {
		cJSON_Delete(o);
		return kd_liberr(r, rc, NULL);
	}
	cJSON_AddItemToObject(o, "schedule", kd_sched_json(&sc));
	return kd_ok(r, 200, o);
}
