/*
 * jobs.c -- training jobs: POST /api/v1/models/train starts one on a
 * thread of its own and answers 202 with its id at once; the engine keeps
 * answering queries from the model it serves and swaps the new one in
 * atomically when training ends (knytt_engine_train).  One job per
 * tenant at a time (409 otherwise).  Jobs live in memory: a restart
 * forgets them, while the models they stored stay (GET /api/v1/models).
 *
 * Several replicas on one PostgreSQL database train one at a time per
 * tenant: a job holds the tenant's trainer lock (an advisory lock, on a
 * connection of its own) from start to end, and a replica that cannot
 * take it answers 409.  The tenant's evaluation settings (schedule.c)
 * apply to every job, whether the API or the scheduler started it; a
 * model the gate held back is reported in the job and in the log.
 */
#include "knyttd.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { J_QUEUED, J_RUNNING, J_DONE, J_FAILED };
static const char *const state_name[] = {"queued", "running", "done",
					 "failed"};

typedef struct kd_job {
	char id[48];
	uint64_t tenant;
	knytt_engine *e;
	int state;
	knytt_progress prog; /* last progress report */
	int rc;
	char msg[256];
	int64_t created_ms, finished_ms;
	knytt_train_status after; /* when done */
	knytt_train_eval ev;      /* when done (ev.users 0: not evaluated) */
	const char *trigger;      /* "api" or "schedule" */
	knytt_store *lock;        /* holds the trainer lock, or NULL */
	pthread_t th;
	struct kd_job *next;
} kd_job;

static pthread_mutex_t jobs_mu = PTHREAD_MUTEX_INITIALIZER;
static kd_job *jobs;
static unsigned long long job_seq;
static atomic_int stopping;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int on_progress(void *ctx, const knytt_progress *p)
{
	kd_job *j = ctx;
	pthread_mutex_lock(&jobs_mu);
	j->prog = *p;
	pthread_mutex_unlock(&jobs_mu);
	return atomic_load(&stopping); /* non-zero cancels */
}

/* The tenant's evaluation settings, read on the trainer lock's
 * connection (opening one more costs a PostgreSQL connection), else on
 * this thread's. */
static void apply_eval(kd_job *j)
{
	knytt_store *st = j->lock ? j->lock : kd_store();
	kd_sched sc = {0, 0, kd_cfg.sched.eval_users, kd_cfg.sched.margin};
	if (st && knytt_store_use_tenant(st, j->tenant) == 0)
		kd_sched_get(st, &sc);
	knytt_engine_set_train_eval(j->e, sc.eval_users, sc.margin);
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
	pthread_mutex_lock(&jobs_mu);
	j->state = J_RUNNING;
	pthread_mutex_unlock(&jobs_mu);
	apply_eval(j);
	knytt_train_status before = {.struct_size = sizeof before};
	knytt_train_status st = {.struct_size = sizeof st};
	knytt_engine_train_status(j->e, &before);
	int rc = knytt_engine_train(j->e, on_progress, j);
	knytt_engine_train_status(j->e, &st);
	knytt_train_eval ev;
	memset(&ev, 0, sizeof ev);
	ev.struct_size = sizeof ev;
	if (!rc)
		knytt_engine_train_eval(j->e, 0, &ev);
	char msg[sizeof j->msg] = "";
	if (rc)
		snprintf(msg, sizeof msg, "%s: %s", knytt_errname(rc),
			 knytt_errmsg());
	if (!rc && st.model_version != before.model_version)
		kd_replica_model(j->lock ? j->lock : kd_store(), j->tenant,
				 st.model_version);
	/* the trainer lock goes before the job is seen to end: a job
	 * started after that must find it free */
	kd_replica_trainer_unlock(j->tenant, j->lock);
	j->lock = NULL;
	pthread_mutex_lock(&jobs_mu);
	j->rc = rc;
	j->state = rc ? J_FAILED : J_DONE;
	memcpy(j->msg, msg, sizeof msg);
	j->after = st;
	j->ev = ev;
	j->finished_ms = now_ms();
	pthread_mutex_unlock(&jobs_mu);
	log_end(j);
	return NULL;
}

int kd_job_active(uint64_t tenant)
{
	int busy = 0;
	pthread_mutex_lock(&jobs_mu);
	for (kd_job *j = jobs; j && !busy; j = j->next)
		busy = j->tenant == tenant && j->state <= J_RUNNING;
	pthread_mutex_unlock(&jobs_mu);
	return busy;
}

static char why[256]; /* the last refusal of kd_job_start_for, under
			 jobs_mu */

int kd_job_start_for(uint64_t tenant, knytt_engine *e, const char *trigger,
		     char *id, size_t cap)
{
	if (atomic_load(&stopping))
		return 503;
	if (kd_job_active(tenant)) {
		pthread_mutex_lock(&jobs_mu);
		snprintf(why, sizeof why, "a training job of this tenant is "
					  "still running");
		pthread_mutex_unlock(&jobs_mu);
		return 409;
	}
	knytt_store *lock = NULL;
	int got = kd_replica_trainer_lock(tenant, &lock);
	if (got <= 0) {
		pthread_mutex_lock(&jobs_mu);
		snprintf(why, sizeof why, "%s",
			 got == 0 ? "another replica is training this tenant"
				  : "the trainer lock cannot be taken");
		pthread_mutex_unlock(&jobs_mu);
		return got == 0 ? 409 : 503;
	}
	pthread_mutex_lock(&jobs_mu);
	int busy = 0;
	for (kd_job *j = jobs; j && !busy; j = j->next)
		busy = j->tenant == tenant && j->state <= J_RUNNING;
	kd_job *j = busy ? NULL : calloc(1, sizeof *j);
	if (!j) {
		snprintf(why, sizeof why, "%s",
			 busy ? "a training job of this tenant is still running"
			      : "out of memory");
		pthread_mutex_unlock(&jobs_mu);
		kd_replica_trainer_unlock(tenant, lock);
		return busy ? 409 : 503;
	}
	snprintf(j->id, sizeof j->id, "job-%llu-%llu",
		 (unsigned long long)tenant, ++job_seq);
	j->tenant = tenant;
	j->e = e;
	j->trigger = trigger;
	j->lock = lock;
	j->created_ms = now_ms();
	if (pthread_create(&j->th, NULL, run, j)) {
		snprintf(why, sizeof why, "cannot start a thread");
		pthread_mutex_unlock(&jobs_mu);
		kd_replica_trainer_unlock(tenant, lock);
		free(j);
		return 503;
	}
	j->next = jobs;
	jobs = j;
	snprintf(id, cap, "%s", j->id);
	pthread_mutex_unlock(&jobs_mu);
	return 0;
}

int kd_job_start(kd_req *r, knytt_engine *e, char *id, size_t cap)
{
	int st = kd_job_start_for(r->tenant, e, "api", id, cap);
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

cJSON *kd_job_json(uint64_t tenant, const char *id)
{
	cJSON *o = NULL;
	pthread_mutex_lock(&jobs_mu);
	kd_job *j = jobs;
	while (j && (j->tenant != tenant || strcmp(j->id, id)))
		j = j->next;
	if (j && (o = cJSON_CreateObject())) {
		cJSON_AddStringToObject(o, "job_id", j->id);
		cJSON_AddStringToObject(o, "state", state_name[j->state]);
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
		cJSON_AddNumberToObject(o, "created_at_ms", (double)j->created_ms);
		if (j->finished_ms)
			cJSON_AddNumberToObject(o, "finished_at_ms",
						(double)j->finished_ms);
		if (j->state == J_FAILED)
			cJSON_AddStringToObject(o, "error", j->msg);
		cJSON_AddStringToObject(o, "trigger", j->trigger);
		cJSON *ev = j->state == J_DONE ? kd_eval_json(&j->ev) : NULL;
		if (ev)
			cJSON_AddItemToObject(o, "evaluation", ev);
		if (j->state == J_DONE)
			cJSON_AddBoolToObject(o, "promoted",
					      !j->ev.version || j->ev.promoted);
	}
	pthread_mutex_unlock(&jobs_mu);
	return o;
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
