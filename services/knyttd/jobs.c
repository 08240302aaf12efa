/*
 * jobs.c -- training jobs: POST /api/v1/models/train starts one on a
 * thread of its own and answers 202 with its id at once; the engine keeps
 * answering queries from the model it serves and swaps the new one in
 * atomically when training ends (knytt_engine_train).  One job per
 * tenant at a time (409 otherwise).  Jobs live in memory: a restart
 * forgets them, while the models they stored stay (GET /api/v1/models).
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

static void *run(void *arg)
{
	kd_job *j = arg;
	pthread_mutex_lock(&jobs_mu);
	j->state = J_RUNNING;
	pthread_mutex_unlock(&jobs_mu);
	int rc = knytt_engine_train(j->e, on_progress, j);
	knytt_train_status st;
	memset(&st, 0, sizeof st);
	knytt_engine_train_status(j->e, &st);
	pthread_mutex_lock(&jobs_mu);
	j->rc = rc;
	j->state = rc ? J_FAILED : J_DONE;
	if (rc)
		snprintf(j->msg, sizeof j->msg, "%s: %s", knytt_errname(rc),
			 knytt_errmsg());
	j->after = st;
	j->finished_ms = now_ms();
	pthread_mutex_unlock(&jobs_mu);
	kd_log("{\"level\":\"info\",\"msg\":\"training job %s %s\"}", j->id,
	       state_name[j->state]);
	return NULL;
}

int kd_job_start(kd_req *r, knytt_engine *e, char *id, size_t cap)
{
	if (atomic_load(&stopping))
		return kd_err(r, 503, "shutting_down", NULL,
			      "the server is shutting down");
	pthread_mutex_lock(&jobs_mu);
	for (kd_job *j = jobs; j; j = j->next)
		if (j->tenant == r->tenant && j->state <= J_RUNNING) {
			pthread_mutex_unlock(&jobs_mu);
			return kd_err(r, 409, "busy", NULL,
				      "training job %s is still %s", j->id,
				      state_name[j->state]);
		}
	kd_job *j = calloc(1, sizeof *j);
	if (!j) {
		pthread_mutex_unlock(&jobs_mu);
		return kd_err(r, 503, "no_memory", NULL, "out of memory");
	}
	snprintf(j->id, sizeof j->id, "job-%llu-%llu",
		 (unsigned long long)r->tenant, ++job_seq);
	j->tenant = r->tenant;
	j->e = e;
	j->created_ms = now_ms();
	if (pthread_create(&j->th, NULL, run, j)) {
		pthread_mutex_unlock(&jobs_mu);
		free(j);
		return kd_err(r, 503, "unavailable", NULL,
			      "cannot start a thread");
	}
	j->next = jobs;
	jobs = j;
	snprintf(id, cap, "%s", j->id);
	pthread_mutex_unlock(&jobs_mu);
	return 0;
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
	}
	pthread_mutex_unlock(&jobs_mu);
	return n;
}
