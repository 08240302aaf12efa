/*
 * check_kdjobs.c -- knyttd's training jobs are kept in the store: a
 * job's record reads the same after a restart, and a record a dead
 * process left queued or running reads failed with a clear error.
 */
#include "testutil.h"

#include "kdtest.h"
#include "knytt.h"

#include <curl/curl.h>
#include <unistd.h>

static kd_srv S;
static char SKA[80], PKA[80], SKB[80], PKB[80];

static void fill(void)
{
	char body[16384];
	int n = snprintf(body, sizeof body, "{\"items\":[");
	for (int i = 0; i < 20; i++)
		n += snprintf(body + n, sizeof body - (size_t)n,
			      "%s{\"item_id\":\"a-%d\",\"title\":\"thing %d\"}",
			      i ? "," : "", i, i);
	snprintf(body + n, sizeof body - (size_t)n, "]}");
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/items", SKA, NULL, body,
				 NULL),
			 200);
	n = snprintf(body, sizeof body, "{\"interactions\":[");
	for (int u = 0; u < 12; u++)
		for (int j = 0; j < 5; j++)
			n += snprintf(body + n, sizeof body - (size_t)n,
				      "%s{\"user_id\":\"u%d\",\"item_id\":"
				      "\"a-%d\",\"interaction_type\":\"view\"}",
				      u || j ? "," : "", u, (u * 3 + j * 7) % 20);
	snprintf(body + n, sizeof body - (size_t)n, "]}");
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/interactions", SKA, NULL,
				 body, NULL),
			 200);
}

static void setup(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
	memset(&S, 0, sizeof S);
	ck_assert_int_eq(kd_start(&S, NULL), 0);
	ck_assert_int_eq(kd_tenant(&S, "shop-a", SKA, PKA), 0);
	ck_assert_int_eq(kd_tenant(&S, "shop-b", SKB, PKB), 0);
	fill();
}

static void teardown(void)
{
	ck_assert_int_eq(kd_stop(&S), 0);
	kd_cleanup(&S);
	curl_global_cleanup();
}

static void restart(void)
{
	ck_assert_int_eq(kd_stop(&S), 0);
	ck_assert_int_eq(kd_start(&S, NULL), 0);
}

static cJSON *get_job(const char *key, const char *id, long want)
{
	char path[160];
	snprintf(path, sizeof path, "/api/v1/models/jobs/%s", id);
	cJSON *o = NULL;
	long st = kd_call(&S, "GET", path, key, NULL, NULL, &o);
	ck_assert_msg(st == want, "GET %s: %ld", path, st);
	return o;
}

static const char *state_of(const cJSON *o)
{
	return cJSON_GetObjectItem(o, "state")->valuestring;
}

/* Starts a job of shop-a and waits for it to end: its id in @p id. */
static void train(char *id, size_t cap)
{
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/models/train", SKA, NULL,
				 NULL, &o),
			 202);
	snprintf(id, cap, "%s", cJSON_GetObjectItem(o, "job_id")->valuestring);
	cJSON_Delete(o);
	for (int i = 0; i < 600; i++) {
		o = get_job(SKA, id, 200);
		const char *st = state_of(o);
		int end = !strcmp(st, "done") || !strcmp(st, "failed");
		cJSON_Delete(o);
		if (end)
			return;
		usleep(100000);
	}
	ck_abort_msg("job %s did not end", id);
}

/* A store handle with shop-a selected (knyttd stopped or running: WAL). */
static knytt_store *store_a(void)
{
	knytt_store *st = NULL;
	uint64_t t = 0;
	ck_assert_int_eq(knytt_store_open(S.uri, &st), 0);
	ck_assert_int_eq(knytt_store_tenant_find(st, "shop-a", &t), 0);
	ck_assert_int_eq(knytt_store_use_tenant(st, t), 0);
	return st;
}

START_TEST(job_record_survives_restart)
{
	char id[64];
	train(id, sizeof id);
	cJSON *o = get_job(SKA, id, 200);
	ck_assert_str_eq(state_of(o), "done");
	ck_assert_int_ge(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metrics"),
					     "model_version")
				 ->valueint,
			 1);
	ck_assert(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "progress"),
				      "fraction")
			  ->valuedouble == 1);
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(o, "started_at_ms"));
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(o, "finished_at_ms"));
	char *before = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	restart();
	/* read from the store now: the same answer, to the byte */
	o = get_job(SKA, id, 200);
	char *after = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	ck_assert_str_eq(after, before);
	free(before);
	free(after);
	/* still the shop's own */
	cJSON_Delete(get_job(SKB, id, 404));
	/* a job started after the restart gets a new id */
	char id2[64];
	train(id2, sizeof id2);
	ck_assert_str_ne(id2, id);
	o = get_job(SKA, id, 200);
	ck_assert_str_eq(state_of(o), "done");
	cJSON_Delete(o);
}
END_TEST

START_TEST(jobs_of_a_dead_process_read_failed)
{
	ck_assert_int_eq(kd_stop(&S), 0);
	/* what a knyttd killed in the middle of its jobs leaves behind */
	knytt_store *st = store_a();
	knytt_job run = {.struct_size = sizeof run, .id = "job-dead-run",
			 .state = KNYTT_JOB_RUNNING, .created_ms = 1000,
			 .started_ms = 1001, .progress = 0.4,
			 .metrics = "{\"progress\":{\"epoch\":2,\"epochs\":5},"
				    "\"metrics\":{\"loss\":0.5},"
				    "\"trigger\":\"api\"}"};
	knytt_job queued = {.struct_size = sizeof queued,
			    .id = "job-dead-queued",
			    .state = KNYTT_JOB_QUEUED, .created_ms = 1002};
	knytt_job fine = {.struct_size = sizeof fine, .id = "job-fine",
			  .state = KNYTT_JOB_DONE, .created_ms = 900,
			  .started_ms = 901, .finished_ms = 950, .progress = 1};
	ck_assert_int_eq(knytt_store_job_put(st, &run), 0);
	ck_assert_int_eq(knytt_store_job_put(st, &queued), 0);
	ck_assert_int_eq(knytt_store_job_put(st, &fine), 0);
	knytt_store_close(st);
	ck_assert_int_eq(kd_start(&S, NULL), 0);
	cJSON *o = get_job(SKA, "job-dead-run", 200);
	ck_assert_str_eq(state_of(o), "failed");
	const char *err = cJSON_GetObjectItem(o, "error")->valuestring;
	ck_assert_msg(strstr(err, "stopped before it ended"), "error: %s",
		      err);
	ck_assert_int_gt(cJSON_GetObjectItem(o, "finished_at_ms")->valuedouble,
			 0);
	/* what it had reported stays */
	ck_assert(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "metrics"), "loss")
			  ->valuedouble == 0.5);
	ck_assert_int_eq(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "progress"),
					     "epoch")
				 ->valueint,
			 2);
	cJSON_Delete(o);
	o = get_job(SKA, "job-dead-queued", 200);
	ck_assert_str_eq(state_of(o), "failed");
	cJSON_Delete(o);
	o = get_job(SKA, "job-fine", 200);
	ck_assert_str_eq(state_of(o), "done");
	ck_assert_int_eq(cJSON_GetObjectItem(o, "finished_at_ms")->valueint,
			 950);
	ck_assert_ptr_null(cJSON_GetObjectItem(o, "error"));
	cJSON_Delete(o);
	cJSON_Delete(get_job(SKB, "job-dead-run", 404));
	cJSON_Delete(get_job(SKA, "job-none", 404));
}
END_TEST

/* A job that starts ends the unfinished records of its tenant: they
 * cannot run while it holds the trainer role. */
START_TEST(a_new_job_ends_records_of_dead_jobs)
{
	ck_assert_int_eq(kd_stop(&S), 0);
	knytt_store *st = store_a();
	knytt_job run = {.struct_size = sizeof run, .id = "job-dead-2",
			 .state = KNYTT_JOB_RUNNING, .created_ms = 1000};
	ck_assert_int_eq(knytt_store_job_put(st, &run), 0);
	knytt_store_close(st);
	ck_assert_int_eq(kd_start(&S, NULL), 0);
	char id[64];
	train(id, sizeof id);
	/* read in the store itself: not through GET's own check */
	st = store_a();
	knytt_job *g = NULL;
	ck_assert_int_eq(knytt_store_job_get(st, "job-dead-2", &g), 0);
	ck_assert_int_eq(g->state, KNYTT_JOB_FAILED);
	ck_assert_ptr_nonnull(strstr(g->error, "stopped before it ended"));
	knytt_free(g);
	ck_assert_int_eq(knytt_store_job_get(st, id, &g), 0);
	ck_assert_int_eq(g->state, KNYTT_JOB_DONE);
	ck_assert(g->progress == 1);
	ck_assert_ptr_nonnull(strstr(g->metrics, "\"model_version\""));
	knytt_free(g);
	knytt_store_close(st);
}
END_TEST

/* The tenant's engine swapped while a job trains on the old one (its
 * embedding settings written): the new engine serves the job's model. */
START_TEST(a_model_trained_across_a_swap_is_served)
{
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/models/train", SKA, NULL,
				 NULL, &o),
			 202);
	char id[64];
	snprintf(id, sizeof id, "%s",
		 cJSON_GetObjectItem(o, "job_id")->valuestring);
	cJSON_Delete(o);
	/* a DELETE stores settings anew and swaps the engine at once */
	ck_assert_int_eq(kd_call(&S, "DELETE", "/api/v1/embedder", SKA, NULL,
				 NULL, NULL),
			 200);
	int64_t version = 0;
	for (int i = 0; i < 600 && !version; i++) {
		o = get_job(SKA, id, 200);
		if (!strcmp(state_of(o), "done"))
			version = (int64_t)cJSON_GetObjectItem(
					  cJSON_GetObjectItem(o, "metrics"),
					  "model_version")
					  ->valuedouble;
		else
			ck_assert_str_ne(state_of(o), "failed");
		cJSON_Delete(o);
		if (!version)
			usleep(50000);
	}
	ck_assert_int_ge(version, 1);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/models", SKA, NULL, NULL,
				 &o),
			 200);
	ck_assert_int_eq(cJSON_GetObjectItem(o, "serving_version")->valueint,
			 version);
	cJSON_Delete(o);
}
END_TEST

Suite *kdjobs_suite(void)
{
	Suite *s = suite_create("kdjobs");
	TCase *tc = tcase_create("jobs");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, job_record_survives_restart);
	tcase_add_test(tc, jobs_of_a_dead_process_read_failed);
	tcase_add_test(tc, a_new_job_ends_records_of_dead_jobs);
	tcase_add_test(tc, a_model_trained_across_a_swap_is_served);
	suite_add_tcase(s, tc);
	return s;
}
