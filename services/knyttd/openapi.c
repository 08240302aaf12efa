/*
 * openapi.c -- GET /api/v1/openapi.json: an OpenAPI 3.1 document made
 * from the route table (route.c: method, pattern, permission) and the
 * table below, the one place with each route's schemas and example.
 *
 * Schemas are JSON text, checked when the document is first built (a
 * typo fails that request with 500, and tests/check_knyttd_ops.c's
 * openapi tests).  Each operation carries an "x-example" (the path, the
 * body, the status it answers) that the test sends to the server in the
 * table's order, validating each answer against the documented schema;
 * a route of route.c without an entry here is documented as
 * "undocumented", which that test refuses.
 */
#include "knyttd.h"

#include <stdlib.h>
#include <string.h>

#define OBJ(req, props)                                                   \
	"{\"type\":\"object\",\"required\":[" req "],\"properties\":{" props \
	"}}"
#define STR "{\"type\":\"string\"}"
#define INT "{\"type\":\"integer\"}"
#define NUM "{\"type\":\"number\"}"
#define BOOL "{\"type\":\"boolean\"}"
#define ARR "{\"type\":\"array\"}"
#define OBJECT "{\"type\":\"object\"}"
#define REF(x) "{\"$ref\":\"#/components/schemas/" x "\"}"

typedef struct kd_doc {
	const char *method, *path; /* OpenAPI path, named parameters */
	const char *summary;
	const char *request;  /* schema of the body, or NULL */
	int status;           /* of the example */
	const char *response; /* schema of that answer */
	const char *ex_path, *ex_body; /* the example */
} kd_doc;

static const char components[] =
	"{\"schemas\":{"
	"\"Error\":" OBJ("\"error\"", "\"error\":" OBJ(
		"\"code\",\"message\"",
		"\"code\":" STR ",\"message\":" STR
		",\"field\":{\"type\":[\"string\",\"null\"]}")) ","
	"\"Item\":" OBJ("\"item_id\"",
			"\"item_id\":" STR ",\"title\":" STR
			",\"category\":" STR ",\"price\":" NUM
			",\"in_stock\":" BOOL ",\"attributes\":" OBJECT) ","
	"\"Report\":" OBJ("\"accepted_count\",\"rejected_count\"",
			  "\"accepted_count\":" INT ",\"rejected_count\":" INT
			  ",\"accepted\":" ARR ",\"rejected\":" ARR) ","
	/* filters of recommendations and search; where is an expression of
	 * knytt_where(3), attributes its structured form: name -> value,
	 * [values] or {"min", "max"} */
	"\"Filters\":" OBJ("", "\"category\":" STR ",\"price_min\":" NUM
			   ",\"price_max\":" NUM ",\"price_range\":" OBJECT
			   ",\"in_stock\":" BOOL ",\"min_quality\":" NUM
			   ",\"where\":" STR ",\"attributes\":" OBJECT) ","
	"\"Results\":" OBJ("\"results\"", "\"results\":" ARR
			   ",\"strategy\":" STR ",\"search_id\":" INT) ","
	"\"Limits\":" OBJ("\"tenant\",\"requests_per_second\",\"burst\","
			  "\"max_items\",\"max_interactions\"",
			  "\"tenant\":" STR ",\"requests_per_second\":" NUM
			  ",\"burst\":" NUM ",\"max_items\":" INT
			  ",\"max_interactions\":" INT) ","
	"\"Token\":" OBJ("\"user_id\",\"token\",\"expires_at_ms\"",
			 "\"user_id\":" STR ",\"token\":" STR
			 ",\"expires_at_ms\":" INT) ","
	"\"Experiment\":" OBJ("\"name\",\"status\",\"variants\"",
			      "\"name\":" STR ",\"status\":" STR
			      ",\"start\":" INT ",\"end\":" INT
			      ",\"window_s\":" INT ",\"variants\":" ARR) ","
	"\"Favorite\":" OBJ("\"user_id\",\"item_id\",\"favorite\"",
			    "\"user_id\":" STR ",\"item_id\":" STR
			    ",\"favorite\":" BOOL) ","
	"\"Schedule\":" OBJ("\"every_interactions\",\"every_hours\","
			    "\"eval_users\",\"margin\"",
			    "\"every_interactions\":" INT
			    ",\"every_hours\":" NUM ",\"eval_users\":" INT
			    ",\"margin\":" NUM) ","
	"\"Embedder\":" OBJ("\"configured\",\"api_key_set\",\"version\"",
			    "\"configured\":" BOOL ",\"url\":" STR
			    ",\"model\":{\"type\":[\"string\",\"null\"]}"
			    ",\"dim\":" INT ",\"timeout_ms\":" INT
			    ",\"api_key_set\":" BOOL ",\"version\":" INT) ","
	"\"Evaluation\":{\"type\":[\"object\",\"null\"],\"properties\":{"
	"\"protocol\":" STR ",\"model_version\":" INT
	",\"test_users\":" INT ",\"negatives\":" INT ",\"hr10\":" NUM
	",\"ndcg10\":" NUM ",\"promoted\":" BOOL
	",\"compared_version\":" INT ",\"compared_ndcg10\":" NUM "}}"
	"},\"securitySchemes\":{"
	"\"admin\":{\"type\":\"http\",\"scheme\":\"bearer\"},"
	"\"secretKey\":{\"type\":\"http\",\"scheme\":\"bearer\"},"
	"\"publicKey\":{\"type\":\"http\",\"scheme\":\"bearer\"},"
	"\"userToken\":{\"type\":\"apiKey\",\"in\":\"header\","
	"\"name\":\"X-User-Token\"}}}";

/* The examples run in this order (grouped by path, as the document
 * lists them): a later one may use what an earlier one made (items ex-1
 * and ex-2, the favorite marked before it is read). */
static const kd_doc docs[] = {
	{"GET", "/health", "liveness", NULL, 200,
	 OBJ("\"status\",\"version\"", "\"status\":" STR ",\"version\":" STR),
	 "/health", NULL},
	{"GET", "/ready", "readiness: the store answers", NULL, 200,
	 OBJ("\"status\",\"store\",\"engines_open\"",
	     "\"status\":" STR ",\"store\":" STR ",\"engines_open\":" INT),
	 "/ready", NULL},
	{"GET", "/metrics", "Prometheus text format (text/plain)", NULL, 200,
	 STR, "/metrics", NULL},
	{"POST", "/api/v1/admin/tenants", "create a tenant",
	 OBJ("\"name\"", "\"name\":" STR), 201,
	 OBJ("\"name\",\"id\"", "\"name\":" STR ",\"id\":" INT),
	 "/api/v1/admin/tenants", "{\"name\":\"oa-example\"}"},
	{"POST", "/api/v1/admin/tenants/{name}/keys", "make an API key",
	 OBJ("\"kind\"", "\"kind\":{\"enum\":[\"secret\",\"public\"]}"), 201,
	 OBJ("\"key\",\"kind\",\"tenant\"",
	     "\"key\":" STR ",\"kind\":" STR ",\"tenant\":" STR),
	 "/api/v1/admin/tenants/oa-example/keys", "{\"kind\":\"public\"}"},
	{"DELETE", "/api/v1/admin/tenants/{name}/keys/{key}",
	 "revoke an API key (the example names no key: 404)", NULL, 404,
	 REF("Error"), "/api/v1/admin/tenants/oa-example/keys/kn_pk_none",
	 NULL},
	{"GET", "/api/v1/admin/tenants/{name}/limits", "a tenant's limits",
	 NULL, 200, REF("Limits"), "/api/v1/admin/tenants/oa-example/limits",
	 NULL},
	{"PUT", "/api/v1/admin/tenants/{name}/limits",
	 "set a tenant's limits, stored for restarts and replicas (absent "
	 "fields kept, 0 = none; the token buckets are per process)",
	 OBJ("", "\"requests_per_second\":" NUM ",\"burst\":" NUM
		 ",\"max_items\":" INT ",\"max_interactions\":" INT),
	 200, REF("Limits"), "/api/v1/admin/tenants/oa-example/limits",
	 "{\"max_items\":0}"},
	{"POST", "/api/v1/auth/register", "register a shopper",
	 OBJ("\"user_id\",\"password\"",
	     "\"user_id\":" STR ",\"password\":" STR),
	 201, REF("Token"), "/api/v1/auth/register",
	 "{\"user_id\":\"oa-new\",\"password\":\"correct horse\"}"},
	{"POST", "/api/v1/auth/login", "a shopper's token",
	 OBJ("\"user_id\",\"password\"",
	     "\"user_id\":" STR ",\"password\":" STR),
	 200, REF("Token"), "/api/v1/auth/login",
	 "{\"user_id\":\"alice\",\"password\":\"correct horse\"}"},
	{"POST", "/api/v1/items", "upsert items (one, or up to 10000)",
	 "{\"oneOf\":[" REF("Item") "," OBJ("\"items\"", "\"items\":" ARR)
	 "]}",
	 200, REF("Report"), "/api/v1/items",
	 "{\"items\":[{\"item_id\":\"ex-1\",\"title\":\"example one\","
	 "\"price\":10},{\"item_id\":\"ex-2\",\"title\":\"example two\"}]}"},
	{"GET", "/api/v1/items/{item_id}", "an item", NULL, 200, REF("Item"),
	 "/api/v1/items/ex-1", NULL},
	{"PATCH", "/api/v1/items/{item_id}", "change an item's fields",
	 OBJ("", "\"title\":" STR ",\"category\":" STR ",\"price\":" NUM
		 ",\"in_stock\":" BOOL ",\"attributes\":" OBJECT),
	 200, REF("Item"), "/api/v1/items/ex-1",
	 "{\"price\":12}"},
	{"DELETE", "/api/v1/items/{item_id}", "delete an item (soft)", NULL,
	 200,
	 OBJ("\"item_id\",\"deleted\"",
	     "\"item_id\":" STR ",\"deleted\":" BOOL),
	 "/api/v1/items/ex-2", NULL},
	{"GET", "/api/v1/products/{item_id}", "an item (alias)", NULL, 200,
	 REF("Item"), "/api/v1/products/ex-1", NULL},
	{"POST", "/api/v1/interactions",
	 "record events (one, or a batch stored whole or not at all)",
	 OBJ("", "\"user_id\":" STR ",\"item_id\":" STR
		 ",\"interaction_type\":" STR ",\"interactions\":" ARR),
	 200, REF("Report"), "/api/v1/interactions",
	 "{\"user_id\":\"u1\",\"item_id\":\"ex-1\",\"interaction_type\":"
	 "\"view\"}"},
	{"POST", "/api/v1/feedback", "a shopper's own event",
	 OBJ("\"item_id\",\"interaction_type\"",
	     "\"item_id\":" STR ",\"interaction_type\":" STR),
	 200, REF("Report"), "/api/v1/feedback",
	 "{\"item_id\":\"ex-1\",\"interaction_type\":\"click\"}"},
	{"POST", "/api/v1/recommendations", "recommendations",
	 OBJ("", "\"user_id\":" STR ",\"count\":" INT
		 ",\"filters\":" REF("Filters") ",\"exclude\":" ARR),
	 200, REF("Results"), "/api/v1/recommendations",
	 "{\"user_id\":\"alice\",\"count\":3,\"filters\":{\"attributes\":"
	 "{\"size\":[38,42]}}}"},
	{"POST", "/api/v1/recommend", "recommendations (alias)",
	 OBJ("", "\"user_id\":" STR ",\"count\":" INT), 200, REF("Results"),
	 "/api/v1/recommend", "{\"count\":3}"},
	{"POST", "/api/v1/search", "keyword and vector search",
	 OBJ("", "\"query\":" STR ",\"vector\":" ARR ",\"count\":" INT
		 ",\"filters\":" REF("Filters") ",\"user_id\":" STR),
	 200, REF("Results"), "/api/v1/search",
	 "{\"query\":\"example\",\"filters\":{\"where\":"
	 "\"colour = red or size < 40\"}}"},
	{"GET", "/api/v1/similar/{item_id}",
	 "items like an item (query: count, category, in_stock, where)", NULL,
	 200, REF("Results"), "/api/v1/similar/ex-1?where=colour%3Dred",
	 NULL},
	{"GET", "/api/v1/trending", "trending items", NULL, 200,
	 REF("Results"), "/api/v1/trending", NULL},
	{"PUT", "/api/v1/users/{user_id}", "a shopper's attributes",
	 OBJ("", "\"attributes\":" OBJECT), 200,
	 OBJ("\"user_id\"", "\"user_id\":" STR ",\"attributes\":" OBJECT),
	 "/api/v1/users/alice", "{\"attributes\":{\"size\":42}}"},
	{"GET", "/api/v1/users/{user_id}", "a shopper, with recent events",
	 NULL, 200,
	 OBJ("\"user_id\"", "\"user_id\":" STR ",\"attributes\":" OBJECT),
	 "/api/v1/users/alice", NULL},
	{"GET", "/api/v1/users/{user_id}/favorites", "favorite items", NULL,
	 200,
	 OBJ("\"user_id\",\"favorites\"",
	     "\"user_id\":" STR ",\"favorites\":" ARR),
	 "/api/v1/users/alice/favorites", NULL},
	{"PUT", "/api/v1/users/{user_id}/favorites/{item_id}",
	 "mark a favorite", NULL, 200, REF("Favorite"),
	 "/api/v1/users/alice/favorites/ex-1", NULL},
	{"GET", "/api/v1/users/{user_id}/favorites/{item_id}",
	 "whether an item is a favorite", NULL, 200, REF("Favorite"),
	 "/api/v1/users/alice/favorites/ex-1", NULL},
	{"DELETE", "/api/v1/users/{user_id}/favorites/{item_id}",
	 "unmark a favorite", NULL, 200, REF("Favorite"),
	 "/api/v1/users/alice/favorites/ex-1", NULL},
	{"POST", "/api/v1/models/train", "train in the background", NULL, 202,
	 OBJ("\"job_id\",\"state\"", "\"job_id\":" STR ",\"state\":" STR),
	 "/api/v1/models/train", NULL},
	{"GET", "/api/v1/models/jobs/{job_id}",
	 "a training job: state, progress, metrics; kept in the store, so "
	 "readable after a restart and from every replica (a job whose "
	 "process died reads failed) (the example's is unknown: 404)",
	 NULL, 404,
	 REF("Error"), "/api/v1/models/jobs/job-0-0", NULL},
	{"GET", "/api/v1/models",
	 "stored model versions (held_back: kept, not swapped in), the "
	 "evaluations of the serving and the last trained model, and the "
	 "training schedule",
	 NULL, 200,
	 OBJ("\"serving_version\",\"items_indexed\",\"training\","
	     "\"versions\",\"serving_evaluation\",\"last_evaluation\","
	     "\"schedule\"",
	     "\"serving_version\":" INT ",\"items_indexed\":" INT
	     ",\"training\":" BOOL ",\"versions\":{\"type\":\"array\","
	     "\"items\":" OBJ("\"version\",\"created_at_ms\",\"held_back\","
			      "\"serving\"",
			      "\"version\":" INT ",\"created_at_ms\":" INT
			      ",\"size_bytes\":" INT ",\"held_back\":" BOOL
			      ",\"serving\":" BOOL ",\"metadata\":" OBJECT) "}"
	     ",\"serving_evaluation\":" REF("Evaluation")
	     ",\"last_evaluation\":" REF("Evaluation")
	     ",\"schedule\":" REF("Schedule")),
	 "/api/v1/models", NULL},
	{"GET", "/api/v1/analytics/searches",
	 "search analytics: top queries, few results, click-through, MRR",
	 NULL, 200,
	 OBJ("\"searches\",\"users\",\"zero_results\",\"clicked\","
	     "\"ctr\",\"mrr\",\"top_queries\",\"few_results\",\"per_day\"",
	     "\"searches\":" INT ",\"users\":" INT ",\"zero_results\":" INT
	     ",\"clicked\":" INT ",\"ctr\":" NUM ",\"mrr\":" NUM
	     ",\"top_queries\":" ARR ",\"few_results\":" ARR
	     ",\"per_day\":" ARR ",\"since\":" INT ",\"until\":" INT
	     ",\"window_s\":" INT),
	 "/api/v1/analytics/searches?top=5", NULL},
	{"POST", "/api/v1/experiments", "create an A/B experiment",
	 OBJ("\"name\",\"variants\"",
	     "\"name\":" STR ",\"variants\":" ARR ",\"start\":" INT
	     ",\"end\":" INT ",\"window_s\":" INT),
	 201, REF("Experiment"), "/api/v1/experiments",
	 "{\"name\":\"oa-exp\",\"variants\":[{\"name\":\"A\"},"
	 "{\"name\":\"B\",\"diversity\":0.5}]}"},
	{"GET", "/api/v1/experiments", "the tenant's experiments", NULL, 200,
	 OBJ("\"experiments\"", "\"experiments\":" ARR),
	 "/api/v1/experiments", NULL},
	{"GET", "/api/v1/experiments/{name}",
	 "an experiment and its report per variant", NULL, 200,
	 OBJ("\"name\",\"status\",\"variants\",\"report\",\"small_sample\"",
	     "\"name\":" STR ",\"status\":" STR ",\"variants\":" ARR
	     ",\"report\":" ARR ",\"small_sample\":" BOOL),
	 "/api/v1/experiments/oa-exp", NULL},
	{"POST", "/api/v1/experiments/{name}/stop", "stop an experiment",
	 NULL, 200, REF("Experiment"), "/api/v1/experiments/oa-exp/stop",
	 NULL},
	{"GET", "/api/v1/models/schedule",
	 "the tenant's training schedule (0 = off) and evaluation settings",
	 NULL, 200, REF("Schedule"), "/api/v1/models/schedule", NULL},
	{"PUT", "/api/v1/models/schedule",
	 "set the training schedule (absent fields kept; margin < 0: never "
	 "hold a model back)",
	 OBJ("", "\"every_interactions\":" INT ",\"every_hours\":" NUM
		 ",\"eval_users\":" INT ",\"margin\":" NUM),
	 200, REF("Schedule"), "/api/v1/models/schedule",
	 "{\"every_interactions\":0,\"eval_users\":50,\"margin\":0.05}"},
	{"GET", "/api/v1/stats", "the shop's requests, errors and latency by "
	 "second (stats.c)", NULL, 200,
	 OBJ("\"interval_s\",\"tracked\",\"seconds\"",
	     "\"interval_s\":" INT ",\"tracked\":" BOOL ",\"seconds\":" ARR),
	 "/api/v1/stats", NULL},
	{"GET", "/api/v1/embedder",
	 "the tenant's embedding service (the API key is never shown)", NULL,
	 200, REF("Embedder"), "/api/v1/embedder", NULL},
	{"PUT", "/api/v1/embedder",
	 "set the tenant's embedding service (/v1/embeddings protocol): "
	 "items without an embedding and search text are embedded by it; "
	 "stored for restarts and replicas; an absent api_key keeps the "
	 "stored one, \"\" removes it",
	 OBJ("\"url\",\"dim\"", "\"url\":" STR ",\"model\":" STR
	     ",\"api_key\":" STR ",\"dim\":" INT ",\"timeout_ms\":" INT),
	 200, REF("Embedder"), "/api/v1/embedder",
	 "{\"url\":\"http://127.0.0.1:9/\",\"model\":\"example\","
	 "\"api_key\":\"example-key\",\"dim\":8}"},
	{"DELETE", "/api/v1/embedder",
	 "remove the tenant's embedding service", NULL, 200, REF("Embedder"),
	 "/api/v1/embedder", NULL},
	{"GET", "/api/v1/admin/tenants/{name}/embedder",
	 "a tenant's embedding service", NULL, 200, REF("Embedder"),
	 "/api/v1/admin/tenants/oa-example/embedder", NULL},
	{"PUT", "/api/v1/admin/tenants/{name}/embedder",
	 "set a tenant's embedding service (as PUT /api/v1/embedder; the "
	 "example's URL is refused: 422)",
	 OBJ("\"url\",\"dim\"", "\"url\":" STR ",\"model\":" STR
	     ",\"api_key\":" STR ",\"dim\":" INT ",\"timeout_ms\":" INT),
	 422, REF("Error"), "/api/v1/admin/tenants/oa-example/embedder",
	 "{\"url\":\"ftp://example\",\"dim\":8}"},
	{"DELETE", "/api/v1/admin/tenants/{name}/embedder",
	 "remove a tenant's embedding service", NULL, 200, REF("Embedder"),
	 "/api/v1/admin/tenants/oa-example/embedder", NULL},
	{"GET", "/api/v1/openapi.json", "this document", NULL, 200,
	 OBJ("\"openapi\",\"info\",\"paths\"",
	     "\"openapi\":" STR ",\"info\":" OBJECT ",\"paths\":" OBJECT),
	 "/api/v1/openapi.json", NULL},
};
#define NDOCS (sizeof docs / sizeof docs[0])

/* 1 when OpenAPI @p path ("{name}") has the shape of @p pattern ("{}"). */
static int same_shape(const char *path, const char *pattern)
{
	while (*path && *pattern) {
		if (*path == '{' && pattern[0] == '{' && pattern[1] == '}') {
			while (*path && *path != '}')
				path++;
			if (!*path)
				return 0;
			path++;
			pattern += 2;
		} else if (*path++ != *pattern++) {
			return 0;
		}
	}
	return !*path && !*pattern;
}

static cJSON *parse(const char *txt, int *bad)
{
	cJSON *j = cJSON_Parse(txt);
	if (!j)
		*bad = 1;
	return j;
}

static const char *const security[] = {
	[KD_P_OPEN] = NULL,	       [KD_P_ADMIN] = "admin",
	[KD_P_SECRET] = "secretKey",   [KD_P_PUBLIC] = "publicKey",
	[KD_P_SELF] = "publicKey",
};

static cJSON *operation(const kd_doc *d, kd_perm perm, int *bad)
{
	cJSON *op = cJSON_CreateObject();
	cJSON_AddStringToObject(op, "summary", d->summary);
	cJSON *params = cJSON_AddArrayToObject(op, "parameters");
	for (const char *p = strchr(d->path, '{'); p; p = strchr(p + 1, '{')) {
		const char *e = strchr(p, '}');
		char name[64];
		snprintf(name, sizeof name, "%.*s", (int)(e - p - 1), p + 1);
		cJSON *x = cJSON_CreateObject();
		cJSON_AddStringToObject(x, "name", name);
		cJSON_AddStringToObject(x, "in", "path");
		cJSON_AddBoolToObject(x, "required", 1);
		/* route.c splits the path before decoding it */
		cJSON_AddStringToObject(x, "description",
					"percent-encoded: a '/' in the value "
					"is sent as %2F");
		cJSON_AddItemToObject(x, "schema", parse(STR, bad));
		cJSON_AddItemToArray(params, x);
	}
	if (security[perm]) {
		cJSON *sec = cJSON_AddArrayToObject(op, "security");
		cJSON *s = cJSON_CreateObject();
		cJSON_AddItemToObject(s, security[perm], cJSON_CreateArray());
		if (perm == KD_P_SELF) /* or a secret key alone */
			cJSON_AddItemToObject(s, "userToken",
					      cJSON_CreateArray());
		cJSON_AddItemToArray(sec, s);
	}
	if (d->request) {
		cJSON *rb = cJSON_AddObjectToObject(op, "requestBody");
		cJSON *c = cJSON_AddObjectToObject(
			cJSON_AddObjectToObject(rb, "content"),
			"application/json");
		cJSON_AddItemToObject(c, "schema", parse(d->request, bad));
	}
	cJSON *resp = cJSON_AddObjectToObject(op, "responses");
	char st[8];
	snprintf(st, sizeof st, "%d", d->status);
	cJSON *r = cJSON_AddObjectToObject(resp, st);
	cJSON_AddStringToObject(r, "description", d->summary);
	int text = !strcmp(d->path, "/metrics");
	cJSON *c = cJSON_AddObjectToObject(
		cJSON_AddObjectToObject(r, "content"),
		text ? "text/plain" : "application/json");
	cJSON_AddItemToObject(c, "schema", parse(d->response, bad));
	if (d->status < 400) {
		cJSON *e = cJSON_AddObjectToObject(resp, "default");
		cJSON_AddStringToObject(e, "description",
					"an error (knyttd(8), ERRORS)");
		cJSON_AddItemToObject(
			cJSON_AddObjectToObject(
				cJSON_AddObjectToObject(e, "content"),
				"application/json"),
			"schema", parse(REF("Error"), bad));
	}
	cJSON *ex = cJSON_AddObjectToObject(op, "x-example");
	cJSON_AddStringToObject(ex, "path", d->ex_path);
	if (d->ex_body)
		cJSON_AddItemToObject(ex, "body", parse(d->ex_body, bad));
	cJSON_AddNumberToObject(ex, "status", d->status);
	return op;
}

static const kd_doc *doc_of(const char *method, const char *pattern)
{
	for (size_t i = 0; i < NDOCS; i++)
		if (!strcmp(docs[i].method, method) &&
		    same_shape(docs[i].path, pattern))
			return &docs[i];
	return NULL;
}

static char *build(void)
{
	int bad = 0;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "openapi", "3.1.0");
	cJSON *info = cJSON_AddObjectToObject(o, "info");
	cJSON_AddStringToObject(info, "title", "knyttd");
	cJSON_AddStringToObject(info, "version", knytt_version());
	cJSON_AddStringToObject(
		info, "description",
		"knytt's HTTP service (knyttd(8)).  Errors are "
		"{\"error\":{\"code\",\"message\",\"field\"}}.  Rate limits "
		"(429 rate_limited with Retry-After) are token buckets per "
		"API key and per knyttd process: behind a load balancer "
		"that spreads a key over N replicas, the key gets up to N "
		"times its rate and burst, unless the balancer sends each "
		"key to one replica.  Limit settings (PUT "
		"/api/v1/admin/tenants/{name}/limits) are kept by the "
		"process that received them; quotas (409 quota_exceeded) "
		"count from the shared database.");
	cJSON *paths = cJSON_AddObjectToObject(o, "paths");
	const char *method, *pattern;
	kd_perm perm;
	/* the examples run in the docs' order: that order, then routes
	 * without docs (documented as such) */
	for (size_t i = 0; i < NDOCS; i++) {
		for (size_t k = 0; kd_route_at(k, &method, &pattern, &perm); k++)
			if (doc_of(method, pattern) == &docs[i]) {
				cJSON *p = cJSON_GetObjectItem(paths,
							       docs[i].path);
				if (!p)
					p = cJSON_AddObjectToObject(
						paths, docs[i].path);
				char m[8];
				size_t n = 0;
				for (; method[n] && n < 7; n++)
					m[n] = (char)(method[n] | 0x20);
				m[n] = 0;
				cJSON_AddItemToObject(
					p, m, operation(&docs[i], perm, &bad));
			}
	}
	for (size_t k = 0; kd_route_at(k, &method, &pattern, &perm); k++)
		if (!doc_of(method, pattern)) {
			cJSON *u = cJSON_GetObjectItem(o, "x-undocumented");
			if (!u)
				u = cJSON_AddArrayToObject(o, "x-undocumented");
			char s[300];
			snprintf(s, sizeof s, "%s %s", method, pattern);
			cJSON_AddItemToArray(u, cJSON_CreateString(s));
		}
	cJSON_AddItemToObject(o, "components", parse(components, &bad));
	char *txt = bad ? NULL : cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return txt;
}

static char *doc_text;
static pthread_once_t doc_once = PTHREAD_ONCE_INIT;

static void doc_init(void)
{
	doc_text = build();
}

int h_openapi(kd_req *r)
{
	pthread_once(&doc_once, doc_init);
	if (!doc_text)
		return kd_err(r, 500, "internal", NULL,
			      "the OpenAPI document does not build (a schema "
			      "in openapi.c is not JSON)");
	if (!(r->text = strdup(doc_text)))
		return kd_err(r, 503, "no_memory", NULL, "out of memory");
	r->ctype = "application/json";
	r->status = 200;
	return 200;
}
