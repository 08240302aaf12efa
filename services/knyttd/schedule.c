/*
 * schedule.c -- the per-tenant training schedule: retrain every N new
 * interactions or when the serving model is T hours old, in the
 * background, each new model evaluated (leave-last-out on the tenant's
 * recent shoppers, lib/engine/holdout.c) and held back when it is worse
 * than the serving one by more than a margin.
 *
 * Settings: --train-every-interactions, --train-every-hours,
 * --train-eval-users and --train-margin give every tenant's defaults;
 * PUT /api/v1/models/schedule sets one tenant's.  A tenant's settings
 * are stored in the store as the metadata of a model named
 * "knyttd-schedule" (a new version per change, no blob), so they outlive
 * a restart and every replica on one PostgreSQL database reads the same.
 *
 * The scheduler thread looks every kd_cfg.sched_tick_ms at the tenants
 * this process has an engine for (a tenant nobody called since start has
 * no new interactions through this process, and a replica that serves
 * it does the looking).  "New interactions" are counted from the store:
 * those stored after the interaction mark the newest model of the
 * tenant recorded when its training read the interactions (any replica's
 * model, swapped in or held back; knytt_store_interaction_mark), so the
 * count survives a restart and every replica counts the same.  Without
 * a model (or with one stored before models recorded their mark), every
 * stored interaction is new.  The count stops at N
 * (knytt_store_interactions_after_count walks the ids past the mark,
 * never the whole history).  In memory only: the mark at which this
 * process last started a training of the tenant, counted from when it is
 * the later one, so a job that failed is not started again at every
 * look.  The job is an ordinary training job
 * (jobs.c): one at a time per tenant, and one trainer per tenant among
 * replicas.
 */
#include "knyttd.h"

#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SCHED_NAME "knyttd-schedule"
#define MODEL_NAME "engine-model"
#define MAX_TENANTS 1024

/* ---- settings ---------------------------------------------------------- */

int kd_sched_get(knytt_store *st, kd_sched *out)
{
	*out = kd_cfg.sched;
	cJSON *o;
	int rc = kd_settings_get(st, SCHED_NAME, &o);
	if (rc || !o)
		return rc;
	out->every_events = (int64_t)kd_json_num(o, "every_interactions",
						 (double)out->every_events);
	out->every_hours = kd_json_num(o, "every_hours", out->every_hours);
	out->eval_users = (unsigned)kd_json_num(o, "eval_users",
						out->eval_users);
	out->margin = kd_json_num(o, "margin", out->margin);
	cJSON_Delete(o);
	return 0;
}

cJSON *kd_sched_json(const kd_sched *s)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "every_interactions",
				(double)s->every_events);
	cJSON_AddNumberToObject(o, "every_hours", s->every_hours);
	cJSON_AddNumberToObject(o, "eval_users", s->eval_users);
	cJSON_AddNumberToObject(o, "margin", s->margin);
	return o;
}

cJSON *kd_eval_json(const knytt_train_eval *ev)
{
	if (!ev->users)
		return NULL;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "protocol", "leave-last-out");
	cJSON_AddNumberToObject(o, "model_version", (double)ev->version);
	cJSON_AddNumberToObject(o, "test_users", (double)ev->users);
	cJSON_AddNumberToObject(o, "negatives", (double)ev->negatives);
	cJSON_AddNumberToObject(o, "hr10", ev->hr);
	cJSON_AddNumberToObject(o, "ndcg10", ev->ndcg);
	cJSON_AddBoolToObject(o, "promoted", ev->promoted);
	if (ev->compared_version) {
		cJSON_AddNumberToObject(o, "compared_version",
					(double)ev->compared_version);
		cJSON_AddNumberToObject(o, "compared_ndcg10",
					ev->compared_ndcg);
	}
	return o;
}

int h_schedule_get(kd_req *r)
{
	kd_sched s;
	int rc = kd_sched_get(r->st, &s);
	if (rc)
		return kd_liberr(r, rc, NULL);
	return kd_ok(r, 200, kd_sched_json(&s));
}

/* One field of the PUT body, within lo..hi: 0 or 400/422 set on r. */
static int field(kd_req *r, const cJSON *b, const char *name, double lo,
		 double hi, double *v)
{
	int got = kd_get_num(r, b, name, v);
	if (got > 1)
		return got;
	if (got == 1 && !(*v >= lo && *v <= hi))
		return kd_err(r, 422, "out_of_range", name,
			      "field %s must be in %g..%g", name, lo, hi);
	return 0;
}

int h_schedule_put(kd_req *r)
{
	static const char *const known[] = {"every_interactions",
					    "every_hours", "eval_users",
					    "margin"};
	const cJSON *b;
	kd_sched s;
	int rc = kd_body_obj(r, &b);
	if (rc)
		return rc;
	for (const cJSON *f = b->child; f; f = f->next) {
		size_t k = 0;
		while (k < 4 && strcmp(f->string, known[k]))
			k++;
		if (k == 4)
			return kd_err(r, 422, "unknown_field", f->string,
				      "field %.64s is not a schedule setting "
				      "(every_interactions, every_hours, "
				      "eval_users, margin)",
				      f->string);
	}
	if ((rc = kd_sched_get(r->st, &s)))
		return kd_liberr(r, rc, NULL);
	double ev = (double)s.every_events, eh = s.every_hours,
	       eu = s.eval_users, m = s.margin;
	if ((rc = field(r, b, "every_interactions", 0, 1e12, &ev)) ||
	    (rc = field(r, b, "every_hours", 0, 1e5, &eh)) ||
	    (rc = field(r, b, "eval_users", 0, 1e6, &eu)) ||
	    (rc = field(r, b, "margin", -1, 1, &m)))
		return rc;
	if (ev != floor(ev) || eu != floor(eu))
		return kd_err(r, 422, "invalid_field",
			      ev != floor(ev) ? "every_interactions"
					      : "eval_users",
			      "field %s must be a whole number",
			      ev != floor(ev) ? "every_interactions"
					      : "eval_users");
	s.every_events = (int64_t)ev;
	s.every_hours = eh;
	s.eval_users = (unsigned)eu;
	s.margin = m;
	cJSON *o = kd_sched_json(&s);
	char *txt = cJSON_PrintUnformatted(o);
	rc = txt ? knytt_store_model_put(r->st, SCHED_NAME, "", 0, txt, NULL)
		 : KNYTT_ENOMEM;
	cJSON_free(txt);
	if (rc) {
		cJSON_Delete(o);
		return kd_liberr(r, rc, NULL);
	}
	return kd_ok(r, 200, o);
}

/* ---- the scheduler thread -------------------------------------------- */

/* The mark at which this process last started a training of a tenant. */
typedef struct started {
	uint64_t tenant;
	int64_t mark;
} started;

static started table[MAX_TENANTS];
static int nstarted;
static pthread_t th;
static int running;
static atomic_int stop;

/* kd_tenants_each's callback: @p ctx is the scheduler's connection. */
static void look_cb(knytt_engine *e, uint64_t tenant, void *ctx);

static started *started_of(uint64_t tenant, int add)
{
	for (int i = 0; i < nstarted; i++)
		if (table[i].tenant == tenant)
			return &table[i];
	if (!add || nstarted == MAX_TENANTS)
		return NULL;
	table[nstarted] = (started){tenant, 0};
	return &table[nstarted++];
}

static int64_t wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The interaction mark the newest stored model of the tenant recorded
 * (0: none, or a model trained before models recorded it); *created and
 * *has_model describe that model. */
static int64_t model_mark(knytt_store *st, int64_t *created, int *has_model)
{
	char *meta = NULL;
	*created = 0;
	*has_model = knytt_store_model_get(st, MODEL_NAME, 0, NULL, NULL,
					   &meta, NULL, created) == 0;
	cJSON *o = meta ? cJSON_Parse(meta) : NULL;
	knytt_free(meta);
	int64_t m = (int64_t)kd_json_num(o, "interaction_mark", 0);
	cJSON_Delete(o);
	return m > 0 ? m : 0;
}

/* Whether @p tenant is due; *mark gets the interaction mark now. */
static int due(knytt_store *st, const kd_sched *s, uint64_t tenant,
	       int64_t *mark)
{
	int has_model;
	int64_t created;
	int64_t from = model_mark(st, &created, &has_model);
	const started *x = started_of(tenant, 0);
	if (x && x->mark > from)
		from = x->mark;
	if (knytt_store_interaction_mark(st, mark))
		return 0;
	/* enough to decide: N, or one for the age trigger */
	int64_t want = s->every_events > 0 ? s->every_events : 1;
	int64_t fresh = knytt_store_interactions_after_count(st, from, want);
	if (fresh <= 0)
		return 0;
	if (s->every_events > 0 && fresh >= s->every_events)
		return 1;
	return s->every_hours > 0 &&
	       (!has_model ||
		(double)(wall_ms() - created) >= s->every_hours * 3600e3);
}

static void look(knytt_store *st, uint64_t tenant)
{
	kd_sched s;
	int64_t mark;
	if (knytt_store_use_tenant(st, tenant) || kd_sched_get(st, &s) ||
	    (s.every_events <= 0 && s.every_hours <= 0) ||
	    kd_job_active(tenant) || !due(st, &s, tenant, &mark))
		return;
	char id[48];
	int rc = kd_job_start_for(tenant, "schedule", id, sizeof id);
	if (rc == 0) {
		started *x = started_of(tenant, 1);
		if (x)
			x->mark = mark;
		kd_log("{\"level\":\"info\",\"msg\":\"scheduled training\","
		       "\"tenant\":%llu,\"job_id\":\"%s\","
		       "\"interaction_mark\":%lld}",
		       (unsigned long long)tenant, id, (long long)mark);
	}
}

static void look_cb(knytt_engine *e, uint64_t tenant, void *ctx)
{
	(void)e; /* the job takes its own reference to the engine */
	if (!atomic_load(&stop))
		look(ctx, tenant);
}

static void *loop(void *arg)
{
	(void)arg;
	knytt_store *st = NULL;
	while (!atomic_load(&stop)) {
		if (!st && kd_store_open(&st))
			st = NULL;
		if (st)
			kd_tenants_each(look_cb, st);
		for (long t = 0; t < kd_cfg.sched_tick_ms && !atomic_load(&stop);
		     t += 50)
			usleep(50000);
	}
	knytt_store_close(st);
	return NULL;
}

int kd_sched_start(void)
{
	if (pthread_create(&th, NULL, loop, NULL)) {
		kd_log("{\"level\":\"error\",\"msg\":\"cannot start the "
		       "training scheduler\"}");
		return -1;
	}
	running = 1;
	return 0;
}

void kd_sched_stop(void)
{
	atomic_store(&stop, 1);
	if (running)
		pthread_join(th, NULL);
	running = 0;
}
