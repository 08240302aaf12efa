/*
 * pgserver.h -- a throwaway PostgreSQL server for test suites: initdb and
 * pg_ctl from PGSERVER_BIN in a temporary directory (as the postgres user
 * when the tests run as root), on a Unix socket only, stopped and removed
 * when the process that started it exits.  Each caller gets a schema of
 * its own, so the suites' stores never meet.
 */
#ifndef KNYTT_PGSERVER_H
#define KNYTT_PGSERVER_H

#include <check.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define PGSERVER_BIN "/usr/lib/postgresql/15/bin"

static char pgs_dir[256];   /* server directory, "" = none */
static char pgs_why[512];   /* why there is no server */
static pid_t pgs_owner;

static int pgs_run(const char *cmd)
{
	int rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static const char *pgs_as(void)
{
	return geteuid() == 0 ? "runuser -u postgres --" : "";
}

static void pgs_stop(void)
{
	if (!pgs_dir[0] || getpid() != pgs_owner)
		return;
	char cmd[1024];
	snprintf(cmd, sizeof cmd,
		 "%s %s/pg_ctl -D %s/data -m immediate -w stop >/dev/null "
		 "2>&1; rm -rf %s",
		 pgs_as(), PGSERVER_BIN, pgs_dir, pgs_dir);
	pgs_run(cmd);
	pgs_dir[0] = '\0';
}

/* Starts the server once per process (an unchecked fixture); a failure
 * is kept in pgs_why for the cases to report. */
static void pgs_start(void)
{
	if (pgs_dir[0] || pgs_why[0])
		return;
	if (access(PGSERVER_BIN "/initdb", X_OK) != 0) {
		snprintf(pgs_why, sizeof pgs_why,
			 "no " PGSERVER_BIN "/initdb (run `make deps`)");
		return;
	}
	snprintf(pgs_dir, sizeof pgs_dir, "/tmp/knytt-pgs-XXXXXX");
	if (!mkdtemp(pgs_dir)) {
		pgs_dir[0] = '\0';
		snprintf(pgs_why, sizeof pgs_why, "mkdtemp failed");
		return;
	}
	pgs_owner = getpid();
	atexit(pgs_stop);
	char cmd[2048];
	if (geteuid() == 0) {
		snprintf(cmd, sizeof cmd, "chown postgres %s", pgs_dir);
		pgs_run(cmd);
	}
	snprintf(cmd, sizeof cmd,
		 "%s %s/initdb -D %s/data -A trust -U postgres -E UTF8 "
		 "--locale=C --no-sync >%s/initdb.log 2>&1 && %s "
		 "%s/pg_ctl -D %s/data -l %s/server.log -w -t 60 -o \"-k %s "
		 "-c listen_addresses='' -F -c max_connections=20\" start "
		 ">/dev/null 2>&1",
		 pgs_as(), PGSERVER_BIN, pgs_dir, pgs_dir, pgs_as(),
		 PGSERVER_BIN, pgs_dir, pgs_dir, pgs_dir);
	if (pgs_run(cmd) != 0)
		snprintf(pgs_why, sizeof pgs_why,
			 "the server did not start, see %s", pgs_dir);
}

/* A store URI in a new schema of the server. */
static void pgs_new_store(char *uri, size_t cap)
{
	ck_assert_msg(pgs_dir[0] && !pgs_why[0], "no PostgreSQL server: %s",
		      pgs_why[0] ? pgs_why : "not started");
	static unsigned n;
	char admin[512], sql[128], schema[64];
	snprintf(admin, sizeof admin, "postgresql://postgres@/postgres?host=%s",
		 pgs_dir);
	snprintf(schema, sizeof schema, "e%ld_%u", (long)getpid(), n++);
	snprintf(sql, sizeof sql, "CREATE SCHEMA %s", schema);
	PGconn *c = PQconnectdb(admin);
	ck_assert_msg(PQstatus(c) == CONNECTION_OK, "%s", PQerrorMessage(c));
	PGresult *r = PQexec(c, sql);
	ck_assert_msg(PQresultStatus(r) == PGRES_COMMAND_OK, "%s",
		      PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	snprintf(uri, cap,
		 "postgresql://postgres@/postgres?host=%s&options="
		 "-csearch_path%%3D%s",
		 pgs_dir, schema);
}

#endif
