/*
 * pg.c -- the PostgreSQL backend over libpq.
 *
 * Statements are prepared once per connection with PQprepare (the SQL's
 * ?N parameters rewritten to $N) and run with PQexecPrepared.  Parameters
 * go as text, except blobs (binary); results come back in binary format
 * and are decoded by column type (int2/4/8, float4/8, bool, text, bytea),
 * which avoids parsing numbers from text.  A step runs the statement on
 * its first call and walks the rows of the result on the next ones; the
 * store pages large scans with keyset queries, so no result is huge.
 *
 * A lost connection (the server restarted, a network cut) is reset on
 * the next call: while the server is away each call fails at once with
 * KNYTT_EIO (knyttd answers 503), and once it is back the connection is
 * made again and each statement prepared again on its next use (the
 * generation counters), so a long-running process heals without a
 * restart (tests/check_faults.c, postgres_restart_while_serving).
 *
 * Bulk interactions go through COPY into a temporary staging table and
 * one INSERT ... SELECT ... ON CONFLICT DO NOTHING, which keeps the
 * event-id deduplication of the normal path at COPY speed.
 */
#include "store_int.h"

#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define OID_BOOL 16
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_INT2 21
#define OID_INT4 23
#define OID_FLOAT4 700
#define OID_FLOAT8 701

typedef struct pg_db {
	knytt__db base;
	PGconn *c;
	unsigned nstmt; /* names k1, k2, ... */
	unsigned gen;   /* connections made: 1 after open, +1 per reset */
} pg_db;

struct knytt__stmt {
	pg_db *db;
	char name[16];
	int np;        /* number of parameters */
	char **vals;   /* np owned buffers (NULL = SQL NULL) */
	int *lens, *fmts;
	PGresult *res;
	int row, nrows; /* row = index of the current row */
	char *oneshot;  /* SQL run unprepared each time (custom plans) */
	char *text;     /* the prepared SQL, to prepare it again */
	unsigned gen;   /* the connection it was prepared on (pg_db.gen) */
	int64_t changes;
};

static void pg_quiet(void *arg, const char *msg);
static int pg_err(pg_db *d, const PGresult *r, const char *what);

static int session_init(pg_db *d)
{
	PQsetNoticeProcessor(d->c, pg_quiet, NULL);
	return PQsetClientEncoding(d->c, "UTF8") == 0 ? 0 : -1;
}

/* Makes the connection again when it was lost: 0 when it is usable,
 * else KNYTT_EIO (the server is still away). */
static int heal(pg_db *d)
{
	/* An idle connection whose server restarted looks fine until a
	 * statement fails on it: the server's goodbye and end of stream
	 * wait unread in the socket.  One zero-timeout poll tells whether
	 * anything waits (a healthy idle connection: nothing, one system
	 * call per statement); only then is it read (twice, since the first
	 * read may take the message and stop short of the end of stream),
	 * which shows the loss now, so the statement runs on a new
	 * connection instead of failing once per connection after every
	 * restart. */
	if (PQstatus(d->c) == CONNECTION_OK) {
		struct pollfd p = {.fd = PQsocket(d->c), .events = POLLIN};
		if (PQtransactionStatus(d->c) != PQTRANS_IDLE ||
		    poll(&p, 1, 0) <= 0 ||
		    (PQconsumeInput(d->c) && PQconsumeInput(d->c) &&
		     PQstatus(d->c) == CONNECTION_OK))
			return 0;
	}
	PQreset(d->c);
	if (PQstatus(d->c) != CONNECTION_OK || session_init(d)) {
		char buf[300];
		snprintf(buf, sizeof buf, "%s", PQerrorMessage(d->c));
		buf[strcspn(buf, "\n")] = '\0';
		return knytt__err(KNYTT_EIO, "postgres: connection lost: %s",
				  buf);
	}
	d->gen++;
	return 0;
}

/* Prepares @p s on the current connection (again, after a reset). */
static int prepare_on(pg_db *d, knytt__stmt *s)
{
	PGresult *r = PQprepare(d->c, s->name, s->text, 0, NULL);
	int rc = PQresultStatus(r) == PGRES_COMMAND_OK
			 ? 0
			 : pg_err(d, r, "prepare");
	PQclear(r);
	if (!rc)
		s->gen = d->gen;
	return rc;
}

static int pg_err(pg_db *d, const PGresult *r, const char *what)
{
	const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = r ? PQresultErrorMessage(r) : PQerrorMessage(d->c);
	char buf[400];
	snprintf(buf, sizeof buf, "%s", msg ? msg : "");
	size_t n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	int code = KNYTT_EDB;
	if (state && strcmp(state, "23505") == 0)
		code = KNYTT_EEXIST;
	else if (state && (strcmp(state, "40001") == 0 ||
			   strcmp(state, "40P01") == 0 ||
			   strcmp(state, "55P03") == 0))
		code = KNYTT_EBUSY;
	return knytt__err(code, "postgres: %s: %s", what, buf);
}

static void pg_quiet(void *arg, const char *msg)
{
	(void)arg;
	(void)msg;
}

static int pg_exec(knytt__db *db, const char *sql)
{
	pg_db *d = (pg_db *)db;
	int hrc = heal(d);
	if (hrc)
		return hrc;
	PGresult *r = PQexec(d->c, sql);
	ExecStatusType s = PQresultStatus(r);
	int rc = 0;
	if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK)
		rc = pg_err(d, r, "exec");
	PQclear(r);
	return rc;
}

/* ?N -> $N; returns the highest N. */
static int rewrite(const char *sql, char *out)
{
	int maxp = 0;
	for (const char *p = sql; *p; p++) {
		if (*p == '?' && p[1] >= '0' && p[1] <= '9') {
			*out++ = '$';
			int v = 0;
			while (p[1] >= '0' && p[1] <= '9') {
				v = v * 10 + (p[1] - '0');
				*out++ = *++p;
			}
			if (v > maxp)
				maxp = v;
		} else {
			*out++ = *p;
		}
	}
	*out = '\0';
	return maxp;
}

static int pg_prepare(knytt__db *db, const char *sql, knytt__stmt **out)
{
	pg_db *d = (pg_db *)db;
	knytt__stmt *s = calloc(1, sizeof *s);
	char *text = malloc(strlen(sql) + 1);
	if (!s || !text) {
		free(s);
		free(text);
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	}
	s->np = rewrite(sql, text);
	s->db = d;
	if (strncmp(sql, "/* oneshot */", 13) == 0) {
		s->oneshot = text;
		text = NULL;
	}
	snprintf(s->name, sizeof s->name, "k%u", ++d->nstmt);
	if (s->np) {
		s->vals = calloc((size_t)s->np, sizeof *s->vals);
		s->lens = calloc((size_t)s->np, sizeof *s->lens);
		s->fmts = calloc((size_t)s->np, sizeof *s->fmts);
		if (!s->vals || !s->lens || !s->fmts) {
			free(text);
			free(s->oneshot);
			free(s->vals);
			free(s->lens);
			free(s->fmts);
			free(s);
			return knytt__err(KNYTT_ENOMEM, "out of memory");
		}
	}
	if (s->oneshot) {
		*out = s;
		return 0;
	}
	s->text = text;
	int rc = heal(d);
	if (!rc)
		rc = prepare_on(d, s);
	if (rc) {
		free(s->text);
		free(s->vals);
		free(s->lens);
		free(s->fmts);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

static void clear_params(knytt__stmt *s)
{
	for (int i = 0; i < s->np; i++) {
		free(s->vals[i]);
		s->vals[i] = NULL;
		s->lens[i] = 0;
		s->fmts[i] = 0;
	}
}

static void pg_reset(knytt__stmt *s)
{
	PQclear(s->res);
	s->res = NULL;
	s->row = s->nrows = 0;
	clear_params(s);
}

static void pg_finalize(knytt__stmt *s)
{
	if (!s)
		return;
	pg_reset(s);
	free(s->oneshot);
	free(s->text);
	free(s->vals);
	free(s->lens);
	free(s->fmts);
	free(s);
}

static int set_param(knytt__stmt *s, int i, const void *v, size_t n,
		     int fmt)
{
	if (i < 1 || i > s->np)
		return knytt__err(KNYTT_EINVAL, "postgres: parameter %d of %d",
				  i, s->np);
	free(s->vals[i - 1]);
	s->vals[i - 1] = NULL;
	if (!v)
		return 0;
	char *b = malloc(n + 1);
	if (!b)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	memcpy(b, v, n);
	b[n] = '\0';
	s->vals[i - 1] = b;
	s->lens[i - 1] = (int)n;
	s->fmts[i - 1] = fmt;
	return 0;
}

static int pg_bind_null(knytt__stmt *s, int i)
{
	return set_param(s, i, NULL, 0, 0);
}
static int pg_bind_i64(knytt__stmt *s, int i, int64_t v)
{
	char b[32];
	int n = snprintf(b, sizeof b, "%lld", (long long)v);
	return set_param(s, i, b, (size_t)n, 0);
}
static int pg_bind_f64(knytt__stmt *s, int i, double v)
{
	char b[40];
	int n = snprintf(b, sizeof b, "%.17g", v);
	return set_param(s, i, b, (size_t)n, 0);
}
static int pg_bind_text(knytt__stmt *s, int i, const char *v)
{
	return set_param(s, i, v, v ? strlen(v) : 0, 0);
}
static int pg_bind_blob(knytt__stmt *s, int i, const void *v, size_t n)
{
	return set_param(s, i, v ? v : "", n, 1);
}

static int pg_step(knytt__stmt *s)
{
	if (!s->res) {
		int rc = heal(s->db);
		if (!rc && !s->oneshot && s->gen != s->db->gen)
			rc = prepare_on(s->db, s);
		if (rc)
			return rc;
		if (s->oneshot)
			s->res = PQexecParams(s->db->c, s->oneshot, s->np, NULL,
					      (const char *const *)s->vals,
					      s->lens, s->fmts, 1);
		else
			s->res = PQexecPrepared(s->db->c, s->name, s->np,
						(const char *const *)s->vals,
						s->lens, s->fmts, 1);
		ExecStatusType t = PQresultStatus(s->res);
		if (t == PGRES_COMMAND_OK) {
			const char *ct = PQcmdTuples(s->res);
			s->changes = ct && *ct ? atoll(ct) : 0;
			s->nrows = 0;
		} else if (t == PGRES_TUPLES_OK) {
			s->nrows = PQntuples(s->res);
			const char *ct = PQcmdTuples(s->res);
			s->changes = ct && *ct ? atoll(ct) : 0;
		} else {
			rc = pg_err(s->db, s->res, "query");
			PQclear(s->res);
			s->res = NULL;
			return rc;
		}
		s->row = -1;
	}
	if (s->row + 1 < s->nrows) {
		s->row++;
		return 1;
	}
	s->row = s->nrows;
	return 0;
}

static uint64_t be(const unsigned char *p, int n)
{
	uint64_t v = 0;
	for (int i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

static int pg_col_null(knytt__stmt *s, int c)
{
	return PQgetisnull(s->res, s->row, c);
}

static int64_t pg_col_i64(knytt__stmt *s, int c)
{
	if (PQgetisnull(s->res, s->row, c))
		return 0;
	const unsigned char *p =
		(const unsigned char *)PQgetvalue(s->res, s->row, c);
	switch (PQftype(s->res, c)) {
	case OID_INT8:
		return (int64_t)be(p, 8);
	case OID_INT4:
		return (int32_t)(uint32_t)be(p, 4);
	case OID_INT2:
		return (int16_t)(uint16_t)be(p, 2);
	case OID_BOOL:
		return p[0] != 0;
	case OID_FLOAT8:
	case OID_FLOAT4: {
		double d;
		if (PQftype(s->res, c) == OID_FLOAT8) {
			uint64_t u = be(p, 8);
			memcpy(&d, &u, 8);
		} else {
			uint32_t u = (uint32_t)be(p, 4);
			float f;
			memcpy(&f, &u, 4);
			d = f;
		}
		return (int64_t)d;
	}
	default:
		return atoll((const char *)p);
	}
}

static double pg_col_f64(knytt__stmt *s, int c)
{
	if (PQgetisnull(s->res, s->row, c))
		return 0;
	const unsigned char *p =
		(const unsigned char *)PQgetvalue(s->res, s->row, c);
	Oid t = PQftype(s->res, c);
	if (t == OID_FLOAT8) {
		uint64_t u = be(p, 8);
		double d;
		memcpy(&d, &u, 8);
		return d;
	}
	if (t == OID_FLOAT4) {
		uint32_t u = (uint32_t)be(p, 4);
		float f;
		memcpy(&f, &u, 4);
		return f;
	}
	if (t == OID_INT8 || t == OID_INT4 || t == OID_INT2 || t == OID_BOOL)
		return (double)pg_col_i64(s, c);
	return atof((const char *)p);
}

static const char *pg_col_text(knytt__stmt *s, int c)
{
	if (PQgetisnull(s->res, s->row, c))
		return NULL;
	return PQgetvalue(s->res, s->row, c);
}

static const void *pg_col_blob(knytt__stmt *s, int c, size_t *n)
{
	if (PQgetisnull(s->res, s->row, c)) {
		*n = 0;
		return NULL;
	}
	*n = (size_t)PQgetlength(s->res, s->row, c);
	return PQgetvalue(s->res, s->row, c);
}

static int64_t pg_changes(knytt__stmt *s)
{
	return s->changes;
}

/* COPY text format: backslash, tab, newline and carriage return escaped. */
static size_t copy_esc(char *o, const char *v)
{
	size_t n = 0;
	for (; *v; v++) {
		switch (*v) {
		case '\\': o[n++] = '\\'; o[n++] = '\\'; break;
		case '\t': o[n++] = '\\'; o[n++] = 't'; break;
		case '\n': o[n++] = '\\'; o[n++] = 'n'; break;
		case '\r': o[n++] = '\\'; o[n++] = 'r'; break;
		default: o[n++] = *v;
		}
	}
	return n;
}

/*
 * One batch of resolved rows.  During a bulk import (unique index
 * dropped, st->bulk) they are COPYed straight into interactions;
 * otherwise into a session-local staging table first, from which one
 * INSERT ... ON CONFLICT DO NOTHING skips events already stored.
 */
static int pg_insert_ix(knytt__db *db, uint64_t tenant,
			const knytt__ixrow *rows, size_t n)
{
	pg_db *d = (pg_db *)db;
	int direct = db->st && db->st->bulk, rc = 0;
	if (!direct &&
	    (rc = pg_exec(db, "CREATE TEMP TABLE IF NOT EXISTS knytt_ix_stage ("
			      "ord BIGINT, tenant BIGINT, user_id BIGINT, "
			      "item_id BIGINT, type TEXT, weight FLOAT8, "
			      "value FLOAT8, ts BIGINT, event_id TEXT)")))
		return rc;
	PGresult *r = PQexec(d->c, direct ? "COPY interactions (tenant, "
					    "user_id, item_id, type, weight, "
					    "value, ts, event_id) FROM STDIN"
					  : "COPY knytt_ix_stage FROM STDIN");
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		rc = pg_err(d, r, "COPY");
		PQclear(r);
		return rc;
	}
	PQclear(r);
	/* rows are sent in chunks of about 64 KiB; one row needs < 4 KiB */
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap + 4096);
	int bad = buf == NULL;
	for (size_t i = 0; i < n && !bad; i++) {
		const knytt__ixrow *x = &rows[i];
		if (!direct)
			len += (size_t)snprintf(buf + len, 32, "%zu\t", i);
		len += (size_t)snprintf(buf + len, 80, "%llu\t%llu\t%llu\t",
					(unsigned long long)tenant,
					(unsigned long long)x->user_id,
					(unsigned long long)x->item_id);
		len += copy_esc(buf + len, x->type);
		if (x->has_value)
			len += (size_t)snprintf(buf + len, 100,
						"\t%.17g\t%.17g\t%lld\t",
						x->weight, x->value,
						(long long)x->ts);
		else
			len += (size_t)snprintf(buf + len, 100,
						"\t%.17g\t\\N\t%lld\t",
						x->weight, (long long)x->ts);
		if (x->event_id[0]) {
			len += copy_esc(buf + len, x->event_id);
		} else {
			buf[len++] = '\\';
			buf[len++] = 'N';
		}
		buf[len++] = '\n';
		if (len >= cap || i + 1 == n) {
			if (PQputCopyData(d->c, buf, (int)len) != 1)
				bad = 1;
			len = 0;
		}
	}
	free(buf);
	if (PQputCopyEnd(d->c, bad ? "aborted" : NULL) != 1)
		bad = 1;
	int stored = 0;
	while ((r = PQgetResult(d->c))) {
		if (!rc && PQresultStatus(r) != PGRES_COMMAND_OK)
			rc = pg_err(d, r, "COPY");
		else if (!rc)
			stored = atoi(PQcmdTuples(r));
		PQclear(r);
	}
	if (rc || bad)
		return rc ? rc : knytt__err(KNYTT_EDB, "postgres: COPY failed");
	if (direct)
		return stored;
	r = PQexec(d->c, "INSERT INTO interactions (tenant, user_id, item_id, "
			 "type, weight, value, ts, event_id) SELECT tenant, "
			 "user_id, item_id, type, weight, value, ts, event_id "
			 "FROM knytt_ix_stage ORDER BY ord ON CONFLICT DO "
			 "NOTHING");
	if (PQresultStatus(r) != PGRES_COMMAND_OK) {
		rc = pg_err(d, r, "insert");
		PQclear(r);
		return rc;
	}
	stored = atoi(PQcmdTuples(r));
	PQclear(r);
	rc = pg_exec(db, "TRUNCATE knytt_ix_stage");
	return rc ? rc : stored;
}

/* A session-level advisory lock: PostgreSQL drops it when the session
 * ends, including when the client was killed. */
static int pg_bulk_lock(knytt__db *db, int take)
{
	pg_db *d = (pg_db *)db;
	PGresult *r = PQexec(d->c, take ? "SELECT pg_try_advisory_lock(7746012)"
					: "SELECT pg_advisory_unlock(7746012)");
	int rc;
	if (PQresultStatus(r) != PGRES_TUPLES_OK)
		rc = pg_err(d, r, "advisory lock");
	else
		rc = take && PQgetvalue(r, 0, 0)[0] == 't';
	PQclear(r);
	return rc;
}

/* lock_timeout: a lock wait longer than @p ms fails (SQLSTATE 55P03,
 * KNYTT_EBUSY); 0 waits as long as it takes, PostgreSQL's default. */
static int pg_set_busy(knytt__db *db, int ms)
{
	char sql[64];
	snprintf(sql, sizeof sql, "SET lock_timeout = %d", ms);
	return pg_exec(db, sql);
}

static void pg_close(knytt__db *db)
{
	pg_db *d = (pg_db *)db;
	PQfinish(d->c);
	free(d);
}

static const knytt__dbops pg_ops = {
	"postgres",   KNYTT__PG,    pg_exec,     pg_prepare,  pg_finalize,
	pg_bind_null, pg_bind_i64,  pg_bind_f64, pg_bind_text, pg_bind_blob,
	pg_step,      pg_reset,     pg_col_null, pg_col_i64,  pg_col_f64,
	pg_col_text,  pg_col_blob,  pg_changes,  pg_insert_ix, NULL,
	pg_bulk_lock, pg_close,     pg_set_busy,
};

int knytt__pg_open(const char *conninfo, knytt__db **out)
{
	pg_db *d = calloc(1, sizeof *d);
	if (!d)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	d->base.ops = &pg_ops;
	d->c = PQconnectdb(conninfo);
	if (!d->c || PQstatus(d->c) != CONNECTION_OK) {
		char buf[300];
		snprintf(buf, sizeof buf, "%s",
			 d->c ? PQerrorMessage(d->c) : "out of memory");
		size_t n = strlen(buf);
		while (n && buf[n - 1] == '\n')
			buf[--n] = '\0';
		PQfinish(d->c);
		free(d);
		return knytt__err(KNYTT_EIO, "postgres: cannot connect: %s",
				  buf);
	}
	d->gen = 1;
	if (session_init(d)) {
		pg_close(&d->base);
		return knytt__err(KNYTT_EDB,
				  "postgres: cannot set client encoding UTF8");
	}
	*out = &d->base;
	return 0;
}

PGconn *knytt__pg_conn(knytt__db *db)
{
	return db && db->ops == &pg_ops ? ((pg_db *)db)->c : NULL;
}
