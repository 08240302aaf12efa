/*
 * h_events.c -- POST /api/v1/interactions (the shop's back end, secret
 * key) and POST /api/v1/feedback (a shopper's own events: public key and
 * that shopper's token, or a secret key).  Both take one event or
 * {"interactions": [...]} (up to 10,000) and answer which were accepted
 * and which rejected.  A batch's accepted events are recorded as one unit
 * (knytt_engine_feedback_batch): all stored, or none with a 503.
 *
 * Events go through knytt_engine_feedback: the shopper's taste and the
 * trending counters see them before the answer; with write-behind (the
 * default, --sync-feedback turns it off) the store write follows within
 * a commit or two, and SIGTERM flushes what is queued before exit.
 */
#include "knyttd.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_BATCH 10000

typedef struct event {
	const char *user, *item, *type;
	double value;
	int64_t ts_ms;
	const char *field; /* on error: fieldbuf */
	char fieldbuf[64];
	char reason[256];
	int status; /* on error: 400, 403 or 422 */
} event;

static int ev_bad(event *ev, int status, const char *field,
		  const char *reason)
{
	ev->status = status;
	/* a copy: the library's field name is the thread's, until its next
	 * failing call */
	snprintf(ev->fieldbuf, sizeof ev->fieldbuf, "%s", field ? field : "");
	ev->field = ev->fieldbuf;
	snprintf(ev->reason, sizeof ev->reason, "%s", reason);
	return -1;
}

/* "2026-12-06T10:00:00Z", "...T10:00:00.250+01:00": Unix ms, or -1. */
static int64_t parse_time(const char *s)
{
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	int ms = 0, n = 0;
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return -1;
	const char *p = s + n;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 3)
				ms = ms * 10 + (*p - '0');
		while (digits > 0 && digits < 3)
			ms *= 10, digits++;
	}
	long off = 0;
	if (*p == 'Z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int h, m;
		if (sscanf(p + 1, "%2d:%2d", &h, &m) != 2)
			return -1;
		off = (h * 60L + m) * 60 * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return -1;
	}
	if (*p || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 60)
		return -1;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	return ((int64_t)t - off) * 1000 + ms;
}

static int ev_str(event *ev, const cJSON *o, const char *name,
		  const char **dst)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsString(v))
		return ev_bad(ev, 400, name, "must be a string");
	*dst = v->valuestring;
	return 0;
}

static int ev_time(event *ev, const cJSON *o)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "timestamp");
	if (!v || cJSON_IsNull(v))
		return 0;
	if (cJSON_IsNumber(v) && isfinite(v->valuedouble) &&
	    v->valuedouble > 0 && v->valuedouble < 1e15)
		ev->ts_ms = (int64_t)v->valuedouble;
	else if (cJSON_IsString(v) && (ev->ts_ms = parse_time(v->valuestring)) > 0)
		return 0;
	else
		return ev_bad(ev, 400, "timestamp",
			      "must be Unix milliseconds or an RFC 3339 time "
			      "such as 2026-12-06T10:00:00Z");
	return 0;
}

/* Reads one event; @p self: the token's shopper fills a missing user. */
static int parse_event(kd_req *r, const cJSON *o, event *ev)
{
	memset(ev, 0, sizeof *ev);
	if (!cJSON_IsObject(o))
		return ev_bad(ev, 400, "", "an event must be a JSON object");
	const cJSON *val = cJSON_GetObjectItemCaseSensitive(o, "value");
	if (ev_str(ev, o, "user_id", &ev->user) ||
	    ev_str(ev, o, "item_id", &ev->item) ||
	    ev_str(ev, o, "interaction_type", &ev->type) ||
	    (!ev->type && ev_str(ev, o, "type", &ev->type)) || ev_time(ev, o))
		return -1;
	if (val && !cJSON_IsNull(val)) {
		if (!cJSON_IsNumber(val) || !isfinite(val->valuedouble))
			return ev_bad(ev, 400, "value",
				      "must be a finite number");
		ev->value = val->valuedouble;
	}
	if (!ev->user && r->cred == KD_CRED_PUBLIC && r->user[0])
		ev->user = r->user;
	if (!ev->user || !*ev->user)
		return ev_bad(ev, 422, "user_id", "is required");
	if (!ev->item || !*ev->item)
		return ev_bad(ev, 422, "item_id", "is required");
	if (!ev->type || !*ev->type)
		return ev_bad(ev, 422, "interaction_type", "is required");
	return 0;
}

/* Records one parsed event: 0, -1 (rejected: ev says why) or < -1 (the
 * store failed). */
static int record(kd_req *r, knytt_engine *e, event *ev)
{
	/* replicas are told the stored time (replica.c) */
	if (kd_cfg.replicas && !ev->ts_ms) {
		struct timespec now;
		clock_gettime(CLOCK_REALTIME, &now);
		ev->ts_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
	}
	int rc = knytt_engine_feedback(e, ev->user, ev->item, ev->type,
				       ev->value, ev->ts_ms);
	if (rc == 0) {
		kd_replica_feedback(r, ev->user, ev->item, ev->type, ev->value,
				    ev->ts_ms);
		return 0;
	}
	const char *f = kd_errfield();
	if (rc == KNYTT_ENOTFOUND)
		return ev_bad(ev, 422, "item_id", knytt_errmsg());
	if (rc == KNYTT_EINVAL || rc == KNYTT_ERANGE)
		/* the type's weight is the event's value to the API */
		return ev_bad(ev, 422,
			      !f || !strcmp(f, "weight") ? "value" : f,
			      knytt_errmsg());
	return rc < -1 ? rc : -2;
}

static cJSON *rejection(size_t index, const event *ev)
{
	cJSON *x = cJSON_CreateObject();
	cJSON_AddNumberToObject(x, "index", (double)index);
	cJSON_AddStringToObject(x, "field", ev->field ? ev->field : "");
	cJSON_AddStringToObject(x, "reason", ev->reason);
	return x;
}

/* The API's name of a library field. */
static const char *api_field(const char *f)
{
	return !f || !*f		? ""
	       : !strcmp(f, "type")	? "interaction_type"
	       : !strcmp(f, "user")	? "user_id"
	       : !strcmp(f, "item")	? "item_id"
	       : strstr(f, "ts_ms")	? "timestamp"
					: f;
}

/* The events handed to the engine, and where each came from. */
typedef struct batchctx {
	event *ev;       /* every event of the request, in order */
	size_t *at;      /* engine index -> request index */
	knytt_interaction *ix;
	const knytt_interaction **p;
} batchctx;

static void on_reject(size_t i, int code, const char *field,
		      const char *reason, void *ctx)
{
	batchctx *b = ctx;
	ev_bad(&b->ev[b->at[i]], 422, api_field(field), reason);
	(void)code;
}

static void batch_free(batchctx *b)
{
	free(b->ev);
	free(b->at);
	free(b->ix);
	free(b->p);
}

/* Parses every event; those that pass knyttd's own checks are set up for
 * the engine.  How many. */
static size_t batch_parse(kd_req *r, const cJSON *list, int self, batchctx *b)
{
	size_t i = 0, k = 0;
	for (const cJSON *o = list->child; o; o = o->next, i++) {
		event *ev = &b->ev[i];
		int rc = parse_event(r, o, ev);
		if (rc == 0 && self && r->cred == KD_CRED_PUBLIC &&
		    strcmp(ev->user, r->user) != 0)
			rc = ev_bad(ev, 403, "user_id",
				    "a shopper may send only their own events");
		if (rc)
			continue;
		/* replicas are told the stored time (replica.c) */
		if (kd_cfg.replicas && !ev->ts_ms) {
			struct timespec now;
			clock_gettime(CLOCK_REALTIME, &now);
			ev->ts_ms = (int64_t)now.tv_sec * 1000 +
				    now.tv_nsec / 1000000;
		}
		knytt_interaction *x = &b->ix[k];
		memset(x, 0, sizeof *x);
		x->struct_size = sizeof *x;
		x->user = ev->user;
		x->item = ev->item;
		x->type = ev->type;
		x->value = ev->value;
		x->ts_ms = ev->ts_ms;
		b->p[k] = x;
		b->at[k++] = i;
	}
	return k;
}

/* The batch form: every event parsed and checked, the accepted ones
 * recorded as one unit (knytt_engine_feedback_batch): all of them, or,
 * when the store fails (a full disk, the database gone), none, with a
 * 503 -- so a client may retry a refused batch without storing an event
 * twice. */
static int batch(kd_req *r, knytt_engine *e, const cJSON *list, int self)
{
	int n = cJSON_GetArraySize(list);
	if (n == 0 || n > MAX_BATCH)
		return kd_err(r, 422, "out_of_range", "interactions",
			      "field interactions must hold 1..%d events",
			      MAX_BATCH);
	batchctx b = {calloc((size_t)n, sizeof *b.ev),
		      calloc((size_t)n, sizeof *b.at),
		      calloc((size_t)n, sizeof *b.ix),
		      calloc((size_t)n, sizeof *b.p)};
	if (!b.ev || !b.at || !b.ix || !b.p) {
		batch_free(&b);
		return kd_err(r, 503, "unavailable", "", "out of memory");
	}
	size_t k = batch_parse(r, list, self, &b);
	int rc = k ? knytt_engine_feedback_batch(e, b.p, k, on_reject, &b) : 0;
	if (rc < 0) {
		batch_free(&b);
		return kd_liberr(r, rc, NULL);
	}
	cJSON *out = cJSON_CreateObject(), *rej = cJSON_CreateArray();
	for (size_t j = 0; j < k; j++) {
		const event *ev = &b.ev[b.at[j]];
		if (!ev->status)
			kd_replica_feedback(r, ev->user, ev->item, ev->type,
					    ev->value, ev->ts_ms);
	}
	for (size_t i = 0; i < (size_t)n; i++)
		if (b.ev[i].status)
			cJSON_AddItemToArray(rej, rejection(i, &b.ev[i]));
	cJSON_AddNumberToObject(out, "accepted_count", (double)rc);
	cJSON_AddNumberToObject(out, "rejected_count", (double)(n - rc));
	cJSON_AddItemToObject(out, "rejected", rej);
	batch_free(&b);
	return kd_ok(r, 200, out);
}

static int post_events(kd_req *r, int self)
{
	const cJSON *b, *list;
	knytt_engine *e;
	int rc = kd_body_obj(r, &b);
	if (rc)
		return rc;
	list = cJSON_GetObjectItemCaseSensitive(b, "interactions");
	if (list && !cJSON_IsArray(list))
		return kd_err(r, 400, "wrong_type", "interactions",
			      "field interactions must be an array");
	if (self && r->cred == KD_CRED_PUBLIC && !r->user[0])
		return kd_may_act(r, NULL);
	if ((rc = kd_engine(r, &e)))
		return rc;
	if (list)
		return batch(r, e, list, self);
	event ev;
	if (parse_event(r, b, &ev))
		return kd_err(r, ev.status, ev.status == 400 ? "wrong_type"
							     : "invalid_field",
			      ev.field, "field %s %s", ev.field, ev.reason);
	if (self && (rc = kd_may_act(r, ev.user)))
		return rc;
	if ((rc = record(r, e, &ev)) < -1)
		return kd_liberr(r, rc, NULL);
	if (rc)
		return kd_err(r, 422, !strcmp(ev.field, "item_id")
					      ? "unknown_item"
					      : "invalid_field",
			      ev.field, "%s", ev.reason);
	cJSON *out = cJSON_CreateObject();
	cJSON_AddNumberToObject(out, "accepted_count", 1);
	cJSON_AddNumberToObject(out, "rejected_count", 0);
	return kd_ok(r, 200, out);
}

int h_interactions_post(kd_req *r)
{
	return post_events(r, 0);
}

int h_feedback_post(kd_req *r)
{
	return post_events(r, 1);
}
