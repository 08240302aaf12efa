/*
 * jobs.c -- training jobs: POST /api/v1/models/train starts one on a
 * thread of its own and answers 202 with its id at once; the engine keeps
 * answering queries from the model it serves and swaps the new one in
 * atomically when training ends (knytt_engine_train).  One job per
 * tenant at a time (409 otherwise).
 *
 * Each job's record is kept in the store (knytt_store_job_put, the jobs
 * table): written queued before the 202, running when its thread starts,
 * at most once a second while it reports progress, and done or failed
 * when it ends.  GET /api/v1/models/jobs/{id} answers from memory for a
 * job this process runs (the freshest progress) and from the store for
 * any other, so a job's record outlives a restart and every replica
 * reads it.  Both answers are rendered from the same record (job_json),
 * so they have one shape.  Ids are random, never reused across restarts.
 *
 * A record the store says is queued or running may belong to a process
 * that died.  The rule that tells: a job runs only while it holds its
 * tenant's trainer role (the trainer lock between replicas, and one job
 * per tenant in a process).  So whoever holds that role and finds another
 * unfinished record of the tenant marks it failed
 * (knytt_store_job_fail_unfinished): a new job does so when it starts,
 * and a GET that reads an unfinished record no local job owns takes the
 * trainer lock to look (free: nobody runs it; held by another replica:
 * it is alive there).  start_mu keeps a local start from slipping in
 * between that look and the marking.
 *
 * Several replicas on one PostgreSQL database train one at a time per
 * tenant: a job holds the tenant's trainer lock (an advisory lock, on a
 * connection of its own) from start to end, and a replica that cannot
 * take it answers 409.  The tenant's evaluation settings (schedule.c)
 * apply to every job, whether the API or the scheduler started it; a
 * model the gate held back is reported in the job and in the log.
 */
#include "knyttd.h"

#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { J_QUEUED = KNYTT_JOB_QUEUED, J_RUNNING = KNYTT_JOB_RUNNING,
       J_DONE = KNYTT_JOB_DONE, J_FAILED = KNYTT_JOB_FAILED };
static const char *const state_name[] = {"queued", "running", "done",
					 "failed"};

/* What a GET of an unfinished record whose process is gone says. */
#define DEAD_MSG "the knyttd process running this job stopped before it " \
		 "ended (restarted or died); start a new job"
/* Progress is written to the store at most this often. */
#define SAVE_EVERY_MS 1000

typedef struct kd_job {
	char id[48];
	uint64_t tenant;
	kd_eref *ref;             /* the engine it trains, held to the end */
	int state;
	knytt_progress prog; /* last progress report */
	int rc;
	char msg[256];
	int64_t created_ms, started_ms, finished_ms;
	knytt_train_status after; /* when done */
	knytt_train_eval ev;      /* when done (ev.users 0: not evaluated) */
	const char *trigger;      /* "api" or "schedule" */
	knytt_store *lock;        /* holds the trainer lock, or NULL */
	knytt_store *rec;         /* writes the record (the job thread) */
	int64_t saved_ms;         /* when the record was last written */
	pthread_t th;
	struct kd_job *next;
} kd_job;

static pthread_mutex_t jobs_mu = PTHREAD_MUTEX_INITIALIZER;
/* Taken by a job start and by the look for dead records (see above);
 * never while jobs_mu is held. */
static pthread_mutex_t start_mu = PTHREAD_MUTEX_INITIALIZER;
static kd_job *jobs;
static atomic_int stopping;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- the record: one shape from memory and from the store ---------- */

/* The figures of @p j as the record's metrics JSON text (under jobs_mu;
 * cJSON_free it). */
static char *metrics_text(const kd_job *j)
{
	cJSON *o = cJSON_CreateObject();
	cJSON *p = cJSON_AddObjectToObject(o, "progress");
	cJSON_AddNumberToObject(p, "epoch", j->prog.epoch);
	cJSON_AddNumberToObject(p, "epochs", j->prog.epochs);
	cJSON_AddNumberToObject(p, "elapsed_s", j->prog.elapsed);
	cJSON_AddNumberToObject(p, "eta_s", j->prog.eta);
	cJSON *m = cJSON_AddObjectToObject(o, "metrics");
	cJSON_AddNumberToObject(m, "loss", j->prog.loss);
	if (j->state == J_DONE) {
		cJSON_AddNumberToObject(m, "model_version",
					(double)j->after.model_version);
		cJSON_AddNumberToObject(m, "items_indexed",
					(double)j->after.items_indexed);
	}
	cJSON_AddStringToObject(o, "trigger", j->trigger);
	cJSON *ev = j->state == J_DONE ? kd_eval_json(&j->ev) : NULL;
	if (ev)
		cJSON_AddItemToObject(o, "evaluation", ev);
	if (j->state == J_DONE)
		cJSON_AddBoolToObject(o, "promoted",
				      !j->ev.version || j->ev.promoted);
	char *t = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return t;
}

/* @p j as a record (under jobs_mu); *metrics to cJSON_free. */
static void record_of(const kd_job *j, knytt_job *rec, char **metrics)
{
	memset(rec, 0, sizeof *rec);
	rec->struct_size = sizeof *rec;
	rec->id = j->id;
	rec->state = (knytt_job_state)j->state;
	rec->created_ms = j->created_ms;
	rec->started_ms = j->started_ms;
	rec->finished_ms = j->finished_ms;
	rec->progress = j->state == J_DONE ? 1
			: j->prog.epochs ? (double)j->prog.epoch / j->prog.epochs
					 : 0;
	if (rec->progress > 1)
		rec->progress = 1;
	*metrics = metrics_text(j);
	rec->metrics = *metrics;
	rec->error = j->state == J_FAILED ? j->msg : NULL;
}

/* The answer of GET /api/v1/models/jobs/{id} for a record. */
static cJSON *job_json(const knytt_job *rec)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "job_id", rec->id);
	cJSON_AddStringToObject(o, "state", state_name[rec->state & 3]);
	cJSON *m = rec->metrics ? cJSON_Parse(rec->metrics) : NULL;
	while (m && m->child) { /* progress, metrics, trigger, ... */
		cJSON *x = cJSON_DetachItemViaPointer(m, m->child);
		cJSON_AddItemToObject(o, x->string, x);
	}
	cJSON_Delete(m);
	cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "progress");
	if (cJSON_IsObject(p))
		cJSON_AddNumberToObject(p, "fraction", rec->progress);
	cJSON_AddNumberToObject(o, "created_at_ms", (double)rec->created_ms);
	if (rec->started_ms)
		cJSON_AddNumberToObject(o, "started_at_ms",
					(double)rec->started_ms);
	if (rec->finished_ms)
		cJSON_AddNumberToObject(o, "finished_at_ms",
					(double)rec->finished_ms);
	if (rec->state == KNYTT_JOB_FAILED)
		cJSON_AddStringToObject(o, "error",
					rec->error ? rec->error : "");
	return o;
}

/* Writes j's record through @p st (the tenant selected here); a failure
 * is logged, never fatal: the job itself goes on. */
static void save(kd_job *j, knytt_store *st)
{
	knytt_job rec;
	char *metrics = NULL;
	pthread_mutex_lock(&jobs_mu);
	record_of(j, &rec, &metrics);
	pthread_mutex_unlock(&jobs_mu);
	int rc = !st ? KNYTT_EDB
		 : knytt_store_tenant(st) == j->tenant
			 ? 0
			 : knytt_store_use_tenant(st, j->tenant);
	if (!rc)
		rc = metrics ? knytt_store_job_put(st, &rec) : KNYTT_ENOMEM;
	cJSON_free(metrics);
	if (rc)
		kd_log("{\"level\":\"warn\",\"msg\":\"job %s: its record "
		       "cannot be stored: %s\"}",
		       j->id, knytt_errname(rc));
	j->saved_ms = now_ms();
}

/* ---- running ----------------------------------------------------------- */

static int on_progress(void *ctx, const knytt_progress *p)
{
	kd_job *j = ctx;
	pthread_mutex_lock(&jobs_mu);
	j->prog = *p;
	pthread_mutex_unlock(&jobs_mu);
	/* the training thread: it alone uses j->rec while it trains */
	if (now_ms() - j->saved_ms >= SAVE_EVERY_MS)
		save(j, j->rec);
	return atomic_load(&stopping); /* non-zero cancels */
}

/* The tenant's evaluation settings, read on the trainer lock's
 * connection (opening one more costs a PostgreSQL connection), else on
 * the job's. */
static void apply_eval(kd_job *j, knytt_engine *e)
{
	knytt_store *st = j->rec;
	kd_sched sc = {0, 0, kd_cfg.sched.eval_users, kd_cfg.sched.margin};
	if (st && knytt_store_use_tenant(st, j->tenant) == 0)
		kd_sched_get(st, &sc);
	knytt_engine_set_train_eval(e, sc.eval_users, sc.margin);
}

static void log_end(const kd_job *j)
{
	if (j->state == J_DONE && j->ev.users)
		kd_log("{\"level\":\"info\",\"msg\":\"training job %s done\","
		       "\"tenant\":%llu,\"trigger\":\"%s\",\"model_version\":"
		       "%lld,\"promoted\":%s,\"eval\":{\"test_users\":%zu,"
		       "\"hr10\":%.4f,\"ndcg10\":%.4f,\"compared_version\":"
		       "%lld,\"compared_ndcg10\":%.4f}}",
		       j->id, (unsigned long long)j->tenant, j->trigger,
		       (long long)j->ev.version,
		       j->ev.promoted ? "true" : "false", j->ev.users,
		       j->ev.hr, j->ev.ndcg,
		       (long long)j->ev.compared_version, j->ev.compared_ndcg);
	else
		kd_log("{\"level\":\"info\",\"msg\":\"training job %s %s\","
		       "\"tenant\":%llu,\"trigger\":\"%s\"}",
		       j->id, state_name[j->state],
		       (unsigned long long)j->tenant, j->trigger);
}

static void *run(void *arg)
{
	kd_job *j = arg;
	knytt_engine *e = kd_eref_engine(j->ref);
	knytt_store *own = NULL;
	if (!j->lock && knytt_store_open(kd_cfg.db, &own))
		own = NULL;
	j->rec = j->lock ? j->lock : own;
	pthread_mutex_lock(&jobs_mu);
	j->state = J_RUNNING;
	j->started_ms = now_ms();
	pthread_mutex_unlock(&jobs_mu);
	save(j, j->rec);
	apply_eval(j, e);
	knytt_train_status before = {.struct_size = sizeof before};
	knytt_train_status st = {.struct_size = sizeof st};
	knytt_engine_train_status(e, &before);
	int rc = knytt_engine_train(e, on_progress, j);
	knytt_engine_train_status(e, &st);
	knytt_train_eval ev;
	memset(&ev, 0, sizeof ev);
	ev.struct_size = sizeof ev;
	if (!rc)
		knytt_engine_train_eval(e, 0, &ev);
	char msg[sizeof j->msg] = "";
	if (rc == KNYTT_ECANCELED && atomic_load(&stopping))
		snprintf(msg, sizeof msg, "canceled: knyttd shut down");
	else if (rc)
		snprintf(msg, sizeof msg, "%s: %s", knytt_errname(rc),
			 knytt_errmsg());
	if (!rc && st.model_version != before.model_version) {
		kd_replica_model(j->rec ? j->rec : kd_store(), j->tenant,
				 st.model_version);
		/* the tenant's engine was swapped while this one trained
		 * (embedder settings changed): the new one takes the model */
		kd_eref *cur = kd_eref_get(j->tenant);
		if (cur && cur != j->ref)
			knytt_engine_reload(kd_eref_engine(cur));
		kd_eref_put(cur);
	}
	pthread_mutex_lock(&jobs_mu);
	j->rc = rc;
	j->state = rc ? J_FAILED : J_DONE;
	memcpy(j->msg, msg, sizeof msg);
	j->after = st;
	j->ev = ev;
	j->finished_ms = now_ms();
	pthread_mutex_unlock(&jobs_mu);
	/* stored before the trainer lock goes: whoever takes it next finds
	 * this record finished, not one to mark failed */
	save(j, j->rec);
	j->rec = NULL;
	knytt_store_close(own);
	kd_replica_trainer_unlock(j->tenant, j->lock);
	j->lock = NULL;
	kd_eref_put(j->ref);
	j->ref = NULL;
	log_end(j);
	return NULL;
}

/* The id of @p tenant's queued or running job here into @p id (under
 * jobs_mu): 1, or 0 when none. */
static int active_locked(uint64_t tenant, char *id, size_t cap)
{
	for (kd_job *j = jobs; j; j = j->next)
		if (j->tenant == tenant && j->state <= J_RUNNING) {
			if (id)
				snprintf(id, cap, "%s", j->id);
			return 1;
		}
	return 0;
}

int kd_job_active(uint64_t tenant)
{
	pthread_mutex_lock(&jobs_mu);
	int busy = active_locked(tenant, NULL, 0);
	pthread_mutex_unlock(&jobs_mu);
	return busy;
}

static char why[256]; /* the last refusal of kd_job_start_for, under
			 jobs_mu */

static int refuse(int status, const char *msg)
{
	pthread_mutex_lock(&jobs_mu);
	snprintf(why, sizeof why, "%s", msg);
	pthread_mutex_unlock(&jobs_mu);
	return status;
}

/* A new job of @p tenant (not yet listed), its record written queued
 * through @p st and older unfinished records of the tenant ended: they
 * cannot run while this process holds the trainer role. */
static kd_job *job_new(uint64_t tenant, kd_eref *ref, const char *trigger,
		       knytt_store *lock, knytt_store *st)
{
	kd_job *j = calloc(1, sizeof *j);
	if (!j)
		return NULL;
	unsigned char rnd[8];
	randombytes_buf(rnd, sizeof rnd);
	snprintf(j->id, sizeof j->id, "job-%llu-", (unsigned long long)tenant);
	for (size_t i = 0; i < sizeof rnd; i++)
		snprintf(j->id + strlen(j->id), 3, "%02x", rnd[i]);
	j->tenant = tenant;
	j->ref = ref;
	j->trigger = trigger;
	j->lock = lock;
	j->created_ms = now_ms();
	save(j, st);
	if (st && knytt_store_job_fail_unfinished(st, j->id, DEAD_MSG) < 0)
		kd_log("{\"level\":\"warn\",\"msg\":\"job %s: older records "
		       "of the tenant not checked: %s\"}",
		       j->id, knytt_errmsg());
	return j;
}

int kd_job_start_for(uint64_t tenant, const char *trigger, char *id,
		     size_t cap)
{
	if (atomic_load(&stopping))
		return 503;
	kd_eref *ref = kd_eref_get(tenant);
	if (!ref)
		return refuse(503, "the tenant's engine is not open");
	if (kd_eref_external(ref)) {
		kd_eref_put(ref);
		return refuse(409, "the tenant's vectors come from its "
				   "embedding service (/api/v1/embedder): "
				   "there is no model to train");
	}
	pthread_mutex_lock(&start_mu);
	knytt_store *lock = NULL;
	int here = kd_job_active(tenant);
	int got = here ? 0 : kd_replica_trainer_lock(tenant, &lock);
	if (got <= 0) {
		pthread_mutex_unlock(&start_mu);
		kd_eref_put(ref);
		return refuse(got == 0 ? 409 : 503,
			      here	 ? "a training job of this tenant is "
					   "still running"
			      : got == 0 ? "another replica is training this "
					   "tenant"
					 : "the trainer lock cannot be taken");
	}
	kd_job *j = job_new(tenant, ref, trigger, lock,
			    lock ? lock : kd_store());
	if (!j || pthread_create(&j->th, NULL, run, j)) {
		pthread_mutex_unlock(&start_mu);
		kd_replica_trainer_unlock(tenant, lock);
		kd_eref_put(ref);
		free(j);
		return refuse(503, j ? "cannot start a thread"
				     : "out of memory");
	}
	pthread_mutex_lock(&jobs_mu);
	j->next = jobs;
	jobs = j;
	snprintf(id, cap, "%s", j->id);
	pthread_mutex_unlock(&jobs_mu);
	pthread_mutex_unlock(&start_mu);
	return 0;
}

int kd_job_start(kd_req *r, char *id, size_t cap)
{
	int st = kd_job_start_for(r->tenant, "api", id, cap);
	if (st == 0)
		return 0;
	char msg[256];
	pthread_mutex_lock(&jobs_mu);
	snprintf(msg, sizeof msg, "%s", why);
	pthread_mutex_unlock(&jobs_mu);
	if (atomic_load(&stopping))
		return kd_err(r, 503, "shutting_down", NULL,
			      "the server is shutting down");
	return kd_err(r, st, st == 409 ? "busy" : "unavailable", NULL, "%s",
		      msg);
}

/* The job of this process, as JSON, or NULL. */
static cJSON *memory_json(uint64_t tenant, const char *id)
{
	knytt_job rec;
	char *metrics = NULL;
	cJSON *o = NULL;
	pthread_mutex_lock(&jobs_mu);
	kd_job *j = jobs;
	while (j && (j->tenant != tenant || strcmp(j->id, id)))
		j = j->next;
	if (j) {
		record_of(j, &rec, &metrics);
		o = job_json(&rec);
	}
	pthread_mutex_unlock(&jobs_mu);
	cJSON_free(metrics);
	return o;
}

/* A stored record says queued or running and no job here owns it: if
 * nobody holds the tenant's trainer role, its process is gone and the
 * record is marked failed (see the comment at the top). */
static void end_if_dead(knytt_store *st, uint64_t tenant)
{
	/* a client polls a job running on another replica: the lock is
	 * tried (a PostgreSQL connection of its own) once a second at most
	 * per tenant */
	static struct {
		uint64_t tenant;
		int64_t held_us;
	} seen[64];
	char keep[48];
	int64_t now = kd_now_us();
	pthread_mutex_lock(&start_mu);
	unsigned slot = (unsigned)(tenant % 64);
	if (seen[slot].tenant == tenant &&
	    now - seen[slot].held_us < 1000000) {
		pthread_mutex_unlock(&start_mu);
		return;
	}
	pthread_mutex_lock(&jobs_mu);
	int here = active_locked(tenant, keep, sizeof keep);
	pthread_mutex_unlock(&jobs_mu);
	knytt_store *lock = NULL;
	int free_role = here || kd_replica_trainer_lock(tenant, &lock) == 1;
	if (!free_role) {
		seen[slot].tenant = tenant;
		seen[slot].held_us = now;
	}
	if (free_role &&
	    knytt_store_job_fail_unfinished(st, here ? keep : NULL,
					    DEAD_MSG) < 0)
		kd_log("{\"level\":\"warn\",\"msg\":\"dead job records of "
		       "tenant %llu not marked: %s\"}",
		       (unsigned long long)tenant, knytt_errmsg());
	if (!here && free_role)
		kd_replica_trainer_unlock(tenant, lock);
	pthread_mutex_unlock(&start_mu);
}

int kd_job_get(kd_req *r, const char *id, cJSON **out)
{
	*out = memory_json(r->tenant, id);
	if (*out)
		return 0;
	knytt_job *rec = NULL;
	int rc = knytt_store_job_get(r->st, id, &rec);
	if (!rc && rec->state <= KNYTT_JOB_RUNNING) {
		knytt_free(rec);
		rec = NULL;
		end_if_dead(r->st, r->tenant);
		/* read again: it may also have ended meanwhile, or be the
		 * local job that just started */
		if ((*out = memory_json(r->tenant, id)))
			return 0;
		rc = knytt_store_job_get(r->st, id, &rec);
	}
	if (rc)
		return rc;
	*out = job_json(rec);
	knytt_free(rec);
	return 0;
}

void kd_jobs_stop(void)
{
	atomic_store(&stopping, 1);
	pthread_mutex_lock(&jobs_mu);
	kd_job *list = jobs;
	jobs = NULL;
	pthread_mutex_unlock(&jobs_mu);
	/* joined without the lock: on_progress takes it */
	while (list) {
		kd_job *j = list;
		list = j->next;
		pthread_join(j->th, NULL);
		free(j);
	}
}

int kd_jobs_snapshot(kd_job_stat *out, int cap)
{
	int n = 0;
	int64_t now = now_ms();
	pthread_mutex_lock(&jobs_mu);
	for (kd_job *j = jobs; j && n < cap; j = j->next, n++) {
		out[n].tenant = j->tenant;
		out[n].state = state_name[j->state];
		out[n].seconds = (double)((j->finished_ms ? j->finished_ms
							  : now) -
					  j->created_ms) /
				 1000.0;
		out[n].loss = j->prog.loss;
		out[n].finished_ms = j->finished_ms;
		out[n].ev = j->ev;
	}
	pthread_mutex_unlock(&jobs_mu);
	return n;
}
