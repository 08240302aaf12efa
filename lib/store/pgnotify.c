/*
 * pgnotify.c -- what several processes on one PostgreSQL database need to
 * work together: NOTIFY / LISTEN to tell each other what they wrote, and
 * session-level advisory locks to elect one of them for a job.
 *
 * Both are PostgreSQL's own mechanisms rather than a protocol of ours: a
 * notification is delivered at the sender's commit, in commit order, to
 * every listening session, and an advisory lock dies with its session, so
 * a process killed mid-job frees its lock without anyone's help.  SQLite
 * has neither across processes (and one process owns a SQLite file), so
 * every call answers KNYTT_ENOTSUP there.
 *
 * Advisory lock keys are hashed with the current schema: two knytt
 * stores in two schemas of one database (as the test suites run) elect
 * independently.
 */
#include "store_int.h"

#include <errno.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PostgreSQL's limit on a NOTIFY payload is 8000 bytes. */
#define PAYLOAD_MAX 7999

/* The connection of a PostgreSQL store; NULL with *rc set otherwise. */
static PGconn *conn(knytt_store *st, const char *fn, int *rc)
{
	if (!st) {
		*rc = knytt__err(KNYTT_EINVAL, "%s: store is NULL", fn);
		return NULL;
	}
	PGconn *c = knytt__pg_conn(st->db);
	if (!c)
		*rc = knytt__err(KNYTT_ENOTSUP,
				 "%s: only a PostgreSQL store has "
				 "notifications and advisory locks",
				 fn);
	return c;
}

static int channel_ok(const char *ch)
{
	size_t n = ch ? strlen(ch) : 0;
	if (n == 0 || n > 63 || (ch[0] >= '0' && ch[0] <= '9'))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((ch[i] >= 'a' && ch[i] <= 'z') ||
		      (ch[i] >= '0' && ch[i] <= '9') || ch[i] == '_'))
			return 0;
	return 1;
}

/* Runs @p sql with text parameters; the result (tuples or command) or
 * NULL with the error set. */
static PGresult *run(PGconn *c, const char *sql, int np,
		     const char *const *vals, const char *what, int *rc)
{
	PGresult *r = PQexecParams(c, sql, np, NULL, vals, NULL, NULL, 0);
	ExecStatusType s = PQresultStatus(r);
	if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK)
		return r;
	char msg[300];
	snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
	msg[strcspn(msg, "\n")] = '\0';
	PQclear(r);
	*rc = knytt__err(PQstatus(c) == CONNECTION_OK ? KNYTT_EDB : KNYTT_EIO,
			 "postgres: %s: %s", what, msg);
	return NULL;
}

int knytt_store_notify(knytt_store *st, const char *channel,
		       const char *payload)
{
	int rc = KNYTT_OK;
	PGconn *c = conn(st, "knytt_store_notify", &rc);
	if (!c)
		return rc;
	if (!channel_ok(channel))
		return knytt__err(KNYTT_EINVAL,
				  "notify: channel must be [a-z_][a-z0-9_]*, "
				  "up to 63 bytes");
	if (!payload || strlen(payload) > PAYLOAD_MAX)
		return knytt__err(KNYTT_EINVAL,
				  "notify: payload is NULL or over %d bytes",
				  PAYLOAD_MAX);
	const char *v[2] = {channel, payload};
	PGresult *r = run(c, "SELECT pg_notify($1, $2)", 2, v, "notify", &rc);
	if (!r)
		return rc;
	PQclear(r);
	return KNYTT_OK;
}

int knytt_store_listen(knytt_store *st, const char *channel)
{
	int rc = KNYTT_OK;
	PGconn *c = conn(st, "knytt_store_listen", &rc);
	if (!c)
		return rc;
	if (!channel_ok(channel))
		return knytt__err(KNYTT_EINVAL,
				  "listen: channel must be [a-z_][a-z0-9_]*, "
				  "up to 63 bytes");
	char sql[96];
	snprintf(sql, sizeof sql, "LISTEN %s", channel); /* checked above */
	PGresult *r = run(c, sql, 0, NULL, "listen", &rc);
	if (!r)
		return rc;
	PQclear(r);
	return KNYTT_OK;
}

/* Delivers what libpq has read; the count, or KNYTT_ECANCELED. */
static int deliver(PGconn *c, knytt_notify_fn fn, void *ctx, int *stop)
{
	int n = 0;
	PGnotify *m;
	while (!*stop && (m = PQnotifies(c)) != NULL) {
		n++;
		if (fn && fn(ctx, m->relname, m->extra ? m->extra : ""))
			*stop = 1;
		PQfreemem(m);
	}
	return n;
}

int knytt_store_wait_notify(knytt_store *st, int timeout_ms,
			    knytt_notify_fn fn, void *ctx)
{
	int rc = KNYTT_OK;
	PGconn *c = conn(st, "knytt_store_wait_notify", &rc);
	if (!c)
		return rc;
	if (timeout_ms < 0)
		return knytt__err(KNYTT_EINVAL, "wait_notify: timeout_ms < 0");
	int stop = 0, n = 0;
	if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK)
		goto lost;
	n = deliver(c, fn, ctx, &stop);
	if (n || stop || timeout_ms == 0)
		return stop ? KNYTT_ECANCELED : n;
	struct pollfd p = {PQsocket(c), POLLIN, 0};
	if (p.fd < 0)
		goto lost;
	int got = poll(&p, 1, timeout_ms);
	if (got < 0 && errno != EINTR)
		return knytt__err_errno(KNYTT_EIO, errno, "wait_notify: poll");
	if (got <= 0)
		return 0;
	if (!PQconsumeInput(c) || PQstatus(c) != CONNECTION_OK)
		goto lost;
	n = deliver(c, fn, ctx, &stop);
	return stop ? KNYTT_ECANCELED : n;
lost: {
	char msg[300];
	snprintf(msg, sizeof msg, "%s", PQerrorMessage(c));
	msg[strcspn(msg, "\n")] = '\0';
	return knytt__err(KNYTT_EIO, "postgres: connection lost: %s", msg);
}
}

static int lock_op(knytt_store *st, int64_t key, int take)
{
	int rc = KNYTT_OK;
	PGconn *c = conn(st, take ? "knytt_store_try_lock"
				  : "knytt_store_unlock", &rc);
	if (!c)
		return rc;
	char k[32];
	snprintf(k, sizeof k, "%lld", (long long)key);
	const char *v[1] = {k};
	PGresult *r = run(c,
			  take ? "SELECT pg_try_advisory_lock(hashtextextended("
				 "current_schema() || '/' || $1, 0))"
			       : "SELECT pg_advisory_unlock(hashtextextended("
				 "current_schema() || '/' || $1, 0))",
			  1, v, "advisory lock", &rc);
	if (!r)
		return rc;
	int yes = PQntuples(r) == 1 && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	if (take)
		return yes;
	return yes ? KNYTT_OK
		   : knytt__err(KNYTT_ENOTFOUND,
				"unlock: lock %lld is not held by this "
				"connection",
				(long long)key);
}

int knytt_store_try_lock(knytt_store *st, int64_t key)
{
	return lock_op(st, key, 1);
}

int knytt_store_unlock(knytt_store *st, int64_t key)
{
	return lock_op(st, key, 0);
}
