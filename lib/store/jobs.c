/*
 * jobs.c -- records of a tenant's background jobs (schema version 8):
 * knyttd writes its training jobs here as they start, progress and end,
 * so GET /api/v1/models/jobs/{id} answers after a restart and from every
 * replica on one PostgreSQL database.
 *
 * The store keeps what the caller writes; the one rule of its own is
 * knytt_store_job_fail_unfinished, for the caller that knows the
 * process of a queued or running job is gone.  Jobs are written a few
 * times a second at most, so the statements are prepared per call, as
 * auth.c does, rather than kept in store.c's cache.
 */
#include "store_int.h"

#include <stdlib.h>
#include <string.h>

#define O (st->ops)
#define JOB_ERROR_MAX 4096

static knytt__stmt *prep(knytt_store *st, const char *sql)
{
	knytt__stmt *q = NULL;
	if (O->prepare(st->db, sql, &q))
		return NULL;
	return q;
}

static int need_tenant(const knytt_store *st)
{
	if (!st->tenant)
		return knytt__err(KNYTT_ESTATE, "no tenant selected: call "
						"knytt_store_use_tenant first");
	return 0;
}

static int check_job(const knytt_job *j)
{
	if (j->struct_size < sizeof *j)
		return knytt__err(KNYTT_EINVAL, "job struct_size %zu is smaller "
				  "than sizeof(knytt_job) %zu",
				  j->struct_size, sizeof *j);
	int rc = knytt__st_check_id("id", j->id);
	if (rc || (rc = knytt__check_json_obj("metrics", j->metrics)) ||
	    (rc = knytt__check_text("error", j->error, JOB_ERROR_MAX, 0)))
		return rc;
	if (j->state < KNYTT_JOB_QUEUED || j->state > KNYTT_JOB_FAILED)
		return knytt__err_field(KNYTT_EINVAL, "state",
					"field state is %d, not a "
					"knytt_job_state", (int)j->state);
	if (!(j->progress >= 0 && j->progress <= 1))
		return knytt__err_field(KNYTT_EINVAL, "progress",
					"field progress must be in 0..1");
	if (j->created_ms < 0 || j->started_ms < 0 || j->finished_ms < 0)
		return knytt__err_field(KNYTT_EINVAL,
					j->created_ms < 0   ? "created_ms"
					: j->started_ms < 0 ? "started_ms"
							    : "finished_ms",
					"job times must not be negative");
	return 0;
}

int knytt_store_job_put(knytt_store *st, const knytt_job *job)
{
	if (!st || !job)
		return knytt__err(KNYTT_EINVAL, "store or job is NULL");
	int rc = need_tenant(st);
	if (rc || (rc = check_job(job)))
		return rc;
	knytt__stmt *q = prep(
		st, "INSERT INTO jobs(tenant, id, state, created, started, "
		    "finished, progress, metrics, error, updated) VALUES (?1, "
		    "?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) ON CONFLICT(tenant, "
		    "id) DO UPDATE SET state = excluded.state, started = "
		    "excluded.started, finished = excluded.finished, progress = "
		    "excluded.progress, metrics = excluded.metrics, error = "
		    "excluded.error, updated = excluded.updated");
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, job->id);
	O->bind_i64(q, 3, (int64_t)job->state);
	O->bind_i64(q, 4, job->created_ms);
	O->bind_i64(q, 5, job->started_ms);
	O->bind_i64(q, 6, job->finished_ms);
	O->bind_f64(q, 7, job->progress);
	O->bind_text(q, 8, job->metrics);
	O->bind_text(q, 9, job->error);
	O->bind_i64(q, 10, knytt__now_ms());
	rc = O->step(q);
	O->finalize(q);
	return rc < 0 ? rc : 0;
}

/* The row of @p q as one allocation: the struct, then its strings. */
static int job_copy(knytt_store *st, knytt__stmt *q, knytt_job **out)
{
	const char *id = O->col_text(q, 0), *m = O->col_text(q, 6),
		   *e = O->col_text(q, 7);
	size_t li = id ? strlen(id) + 1 : 1, lm = m ? strlen(m) + 1 : 0,
	       le = e ? strlen(e) + 1 : 0;
	knytt_job *j = calloc(1, sizeof *j + li + lm + le);
	if (!j)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	char *p = (char *)(j + 1);
	j->struct_size = sizeof *j;
	memcpy(p, id ? id : "", li);
	j->id = p;
	p += li;
	if (m) {
		memcpy(p, m, lm);
		j->metrics = p;
		p += lm;
	}
	if (e) {
		memcpy(p, e, le);
		j->error = p;
	}
	j->state = (knytt_job_state)O->col_i64(q, 1);
	j->created_ms = O->col_i64(q, 2);
	j->started_ms = O->col_i64(q, 3);
	j->finished_ms = O->col_i64(q, 4);
	j->progress = O->col_f64(q, 5);
	j->updated_ms = O->col_i64(q, 8);
	*out = j;
	return 0;
}

int knytt_store_job_get(knytt_store *st, const char *id, knytt_job **out)
{
	if (!st || !out)
		return knytt__err(KNYTT_EINVAL, "store or out is NULL");
	*out = NULL;
	int rc = need_tenant(st);
	if (rc || (rc = knytt__st_check_id("id", id)))
		return rc;
	knytt__stmt *q = prep(st, "SELECT id, state, created, started, "
				  "finished, progress, metrics, error, "
				  "updated FROM jobs WHERE tenant = ?1 AND "
				  "id = ?2");
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, id);
	rc = O->step(q);
	if (rc == 1)
		rc = job_copy(st, q, out);
	else if (rc == 0)
		rc = knytt__err_field(KNYTT_ENOTFOUND, "id",
				      "no job '%.200s'", id);
	O->finalize(q);
	return rc;
}

int knytt_store_job_fail_unfinished(knytt_store *st, const char *keep_id,
				    const char *error)
{
	if (!st)
		return knytt__err(KNYTT_EINVAL, "store is NULL");
	int rc = need_tenant(st);
	if (rc || (rc = knytt__check_text("error", error, JOB_ERROR_MAX, 1)))
		return rc;
	if (keep_id && (rc = knytt__st_check_id("keep_id", keep_id)))
		return rc;
	knytt__stmt *q = prep(
		st, "UPDATE jobs SET state = ?3, error = ?4, finished = ?5, "
		    "updated = ?5 WHERE tenant = ?1 AND state IN (?6, ?7) AND "
		    "id <> ?2");
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	int64_t now = knytt__now_ms();
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, keep_id ? keep_id : "");
	O->bind_i64(q, 3, KNYTT_JOB_FAILED);
	O->bind_text(q, 4, error);
	O->bind_i64(q, 5, now);
	O->bind_i64(q, 6, KNYTT_JOB_QUEUED);
	O->bind_i64(q, 7, KNYTT_JOB_RUNNING);
	rc = O->step(q);
	int64_t n = rc >= 0 ? O->changes(q) : 0;
	O->finalize(q);
	return rc < 0 ? rc : (int)n;
}
