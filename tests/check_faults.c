/*
 * check_faults.c -- kill -9 at random points (issue 21): knyttd under a
 * feedback load, knyttd while it trains, and `knytt import`, 50 kills in
 * all, each followed by the checks that matter after a crash:
 *   - no acknowledged write is lost (knyttd runs --sync-feedback: its
 *     200 means stored; the write-behind default acknowledges before
 *     the store write by design, knyttd(8)) and none is stored twice;
 *   - an import leaves whole batches only;
 *   - the SQLite file passes PRAGMA integrity_check;
 *   - the stored model is the old one or the new one (the engine opens
 *     it: GET /api/v1/models answers and recommendations are served);
 *   - the next start serves.
 * The kill points are drawn from a seed printed on failure
 * (KNYTT_FAULT_SEED=N replays one run).
 *
 * Also: the PostgreSQL server stopped (pg_ctl) and SIGKILLed (crash
 * recovery on restart) under a serving knyttd, and a disk that fills up
 * under feedback batches, item batches, training and `knytt import`
 * (a tmpfs of its own: root only).
 */
#include "testutil.h"

#include "kdtest.h"
#include "pgserver.h"

#include <knytt.h>

#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define NEVENTS 100000
#define TS0 1700000000000LL /* event n has ts_ms TS0 + n */
#define IMPORT_TS0 1600000000000LL
#define IMPORT_ROWS 30000
#define IMPORT_BATCH 500

static kd_srv S;
static char SK[80], PK[80];
static atomic_int next_ev;
static atomic_uchar acked[NEVENTS];
static atomic_int stop_load;
static uint64_t seed;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static const char *cli_bin(void)
{
	const char *b = getenv("KNYTT_BIN");
	return b && *b ? b : "build/bin/knytt";
}

static void *load(void *arg)
{
	(void)arg;
	char body[256];
	while (!atomic_load(&stop_load)) {
		int n = atomic_fetch_add(&next_ev, 1);
		if (n >= NEVENTS)
			break;
		snprintf(body, sizeof body,
			 "{\"user_id\":\"u%d\",\"item_id\":\"it-%d\","
			 "\"interaction_type\":\"view\",\"timestamp\":%lld}",
			 n % 13, n % 7, TS0 + n);
		long st = kd_call(&S, "POST", "/api/v1/interactions", SK, NULL,
				  body, NULL);
		if (st == 200)
			atomic_store(&acked[n], 1);
		else if (st == 0)
			break; /* killed */
		else
			ck_abort_msg("feedback answered %ld", st);
	}
	return NULL;
}

typedef struct seen {
	unsigned char *http; /* per event: times stored */
	int import_rows, dup;
} seen;

static int on_ix(const knytt_interaction *ix, void *ctx)
{
	seen *s = ctx;
	if (ix->ts_ms >= TS0 && ix->ts_ms < TS0 + NEVENTS) {
		if (s->http[ix->ts_ms - TS0]++)
			s->dup++;
	} else if (ix->ts_ms >= IMPORT_TS0 &&
		   ix->ts_ms < IMPORT_TS0 + IMPORT_ROWS) {
		s->import_rows++;
	}
	return 0;
}

/* The store after a kill: integrity, every acknowledged event once; the
 * import's rows (never fewer than before: *imported). */
static void check_store(int point, int *imported)
{
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(S.uri + 7, &db), SQLITE_OK);
	sqlite3_stmt *q;
	ck_assert_int_eq(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1,
					    &q, NULL),
			 SQLITE_OK);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	ck_assert_msg(!strcmp((const char *)sqlite3_column_text(q, 0), "ok"),
		      "point %d (seed %llu): integrity_check: %s", point,
		      (unsigned long long)seed, sqlite3_column_text(q, 0));
	sqlite3_finalize(q);
	sqlite3_close(db);
	knytt_store *st;
	uint64_t t;
	ck_assert_int_eq(knytt_store_open(S.uri, &st), KNYTT_OK);
	ck_assert_int_eq(knytt_store_tenant_find(st, "faults", &t), KNYTT_OK);
	ck_assert_int_eq(knytt_store_use_tenant(st, t), KNYTT_OK);
	seen s = {calloc(NEVENTS, 1), 0, 0};
	ck_assert_int_ge(knytt_store_interactions_since(st, 0, on_ix, &s), 0);
	knytt_store_close(st);
	ck_assert_msg(s.dup == 0, "point %d (seed %llu): %d events stored "
		      "twice", point, (unsigned long long)seed, s.dup);
	int lost = 0, first = -1;
	for (int n = 0; n < NEVENTS; n++)
		if (atomic_load(&acked[n]) && !s.http[n] && lost++ == 0)
			first = n;
	ck_assert_msg(lost == 0, "point %d (seed %llu): %d acknowledged "
		      "events lost (first %d)", point,
		      (unsigned long long)seed, lost, first);
	ck_assert_msg(s.import_rows % IMPORT_BATCH == 0 &&
			      s.import_rows >= *imported,
		      "point %d: import left %d rows (batches of %d, %d "
		      "before)", point, s.import_rows, IMPORT_BATCH,
		      *imported);
	*imported = s.import_rows;
	free(s.http);
}

static void start(void)
{
	const char *extra[] = {"--sync-feedback", NULL};
	ck_assert_int_eq(kd_start(&S, extra), 0);
}

static void kill9(void)
{
	kill(S.pid, SIGKILL);
	kd_stop(&S); /* reaps it */
}

/* The next start serves: health, a recommendation, the models list. */
static void check_serves(int point)
{
	start();
	ck_assert_int_eq(kd_call(&S, "GET", "/health", NULL, NULL, NULL, NULL),
			 200);
	long st = kd_call(&S, "POST", "/api/v1/recommendations", SK, NULL,
			  "{\"user_id\":\"u1\",\"count\":3}", NULL);
	ck_assert_msg(st == 200, "point %d: recommendations %ld after restart",
		      point, st);
	ck_assert_int_eq(kd_call(&S, "GET", "/api/v1/models", SK, NULL, NULL,
				 NULL),
			 200);
}

static void faults_setup(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
	memset(&S, 0, sizeof S);
	const char *env = getenv("KNYTT_FAULT_SEED");
	seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL);
	start();
	ck_assert_int_eq(kd_tenant(&S, "faults", SK, PK), 0);
	char body[4096];
	int n = snprintf(body, sizeof body, "{\"items\":[");
	for (int i = 0; i < 7; i++)
		n += snprintf(body + n, sizeof body - (size_t)n,
			      "%s{\"item_id\":\"it-%d\",\"title\":\"thing %d\"}",
			      i ? "," : "", i, i);
	snprintf(body + n, sizeof body - (size_t)n, "]}");
	ck_assert_int_eq(kd_call(&S, "POST", "/api/v1/items", SK, NULL, body,
				 NULL),
			 200);
	char csv[256];
	snprintf(csv, sizeof csv, "%s/ix.csv", S.dir);
	FILE *f = fopen(csv, "w");
	ck_assert_ptr_nonnull(f);
	/* event ids make a re-run idempotent: each kill's import starts
	 * over and the rows already stored are skipped */
	fprintf(f, "user,item,type,ts_ms,event_id\n");
	for (int i = 0; i < IMPORT_ROWS; i++)
		fprintf(f, "m%d,it-%d,view,%lld,imp-%d\n", i % 31, i % 7,
			IMPORT_TS0 + i, i);
	fclose(f);
	/* the test runs in a child process (CK_FORK), which can only wait
	 * for servers it started itself */
	ck_assert_int_eq(kd_stop(&S), 0);
}

static void faults_teardown(void)
{
	kd_stop(&S);
	kd_cleanup(&S);
	curl_global_cleanup();
}

/* `knytt import` of the whole file, killed after @p us microseconds. */
static void import_killed(long us)
{
	char db[160], csv[256], batch[16];
	snprintf(db, sizeof db, "%s", S.uri);
	snprintf(csv, sizeof csv, "%s/ix.csv", S.dir);
	snprintf(batch, sizeof batch, "%d", IMPORT_BATCH);
	pid_t pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		execl(cli_bin(), cli_bin(), "--db", db, "--tenant", "faults",
		      "--quiet", "import", "--interactions", csv, "--batch",
		      batch, (char *)NULL);
		_exit(127);
	}
	usleep((useconds_t)us);
	kill(pid, SIGKILL);
	int status;
	waitpid(pid, &status, 0);
	ck_assert_msg(!WIFEXITED(status) || WEXITSTATUS(status) == 0,
		      "knytt import exited %d", WEXITSTATUS(status));
}

/* 50 kills: knyttd under load (20), knyttd training under load (15),
 * knytt import beside a live knyttd (15), in a shuffled order. */
START_TEST(sigkill_at_random_points)
{
	int kinds[50];
	for (int i = 0; i < 50; i++)
		kinds[i] = i < 20 ? 0 : i < 35 ? 1 : 2;
	uint64_t r = seed | 1;
	for (int i = 49; i > 0; i--) {
		int j = (int)(tu_rand(&r) % (uint64_t)(i + 1));
		int k = kinds[i];
		kinds[i] = kinds[j];
		kinds[j] = k;
	}
	int imported = 0;
	start();
	for (int point = 0; point < 50; point++) {
		/* knyttd: 10..200 ms into the load; an import: 50..800 ms
		 * (it starts and stores 30,000 rows in about a second) */
		long us = kinds[point] == 2
				  ? 50000 + (long)(tu_rand(&r) % 750000)
				  : 10000 + (long)(tu_rand(&r) % 190000);
		pthread_t th[2];
		atomic_store(&stop_load, 0);
		for (int i = 0; i < 2; i++)
			pthread_create(&th[i], NULL, load, NULL);
		if (kinds[point] == 1) {
			usleep((useconds_t)(tu_rand(&r) % 20000));
			long st = kd_call(&S, "POST", "/api/v1/models/train",
					  SK, NULL, "{}", NULL);
			ck_assert_msg(st == 202 || st == 409 || st == 0,
				      "train answered %ld", st);
		}
		if (kinds[point] == 2)
			import_killed(us);
		else
			usleep((useconds_t)us);
		if (kinds[point] != 2)
			kill9();
		atomic_store(&stop_load, 1);
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		if (kinds[point] == 2)
			kill9();
		double t1 = now_s();
		check_store(point, &imported);
		double t2 = now_s();
		check_serves(point);
		if (getenv("KNYTT_FAULT_VERBOSE"))
			fprintf(stderr, "point %d kind %d: %ld us, check %.3f s, "
				"restart %.3f s, %d import rows\n", point,
				kinds[point], us, t2 - t1, now_s() - t2,
				imported);
	}
	fprintf(stderr, "faults: 50 kills (seed %llu): %d events sent, "
		"%d import rows stored\n", (unsigned long long)seed,
		atomic_load(&next_ev), imported);
	ck_assert_int_eq(kd_stop(&S), 0);
}
END_TEST

/* ---- PostgreSQL restarted under a serving knyttd -------------------- */

static kd_srv P;
static char PSK[80];

static void pg_setup(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
	pgs_start();
	memset(&P, 0, sizeof P);
	snprintf(P.dir, sizeof P.dir, "/tmp/knyttd-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(P.dir));
	char uri[512];
	pgs_new_store(uri, sizeof uri);
	ck_assert_uint_lt(strlen(uri), sizeof P.uri);
	memcpy(P.uri, uri, strlen(uri) + 1);
	ck_assert_int_eq(kd_start(&P, NULL), 0);
	char pk[80];
	ck_assert_int_eq(kd_tenant(&P, "pgshop", PSK, pk), 0);
	ck_assert_int_eq(kd_call(&P, "POST", "/api/v1/items", PSK, NULL,
				 "{\"items\":[{\"item_id\":\"p1\",\"title\":"
				 "\"red shoe\"},{\"item_id\":\"p2\",\"title\":"
				 "\"blue shoe\"}]}",
				 NULL),
			 200);
}

static void pg_teardown(void)
{
	kd_stop(&P);
	kd_cleanup(&P);
	curl_global_cleanup();
}

static int pg_ctl(const char *what)
{
	char cmd[1024];
	/* the options of pgs_start: the socket in pgs_dir */
	snprintf(cmd, sizeof cmd,
		 "%s %s/pg_ctl -D %s/data -l %s/server.log -w -t 60 -o \"-k %s "
		 "-c listen_addresses='' -F -c max_connections=20\" %s "
		 ">/dev/null 2>&1",
		 pgs_as(), PGSERVER_BIN, pgs_dir, pgs_dir, pgs_dir, what);
	return pgs_run(cmd);
}

/* One round of the requests a shop makes: their statuses, worst first
 * (0 = connection failed), and the slowest one's seconds in *secs. */
static long shop_round(double *secs)
{
	static const char *const q[][3] = {
		{"POST", "/api/v1/search", "{\"query\":\"shoe\"}"},
		{"POST", "/api/v1/interactions",
		 "{\"user_id\":\"pu\",\"item_id\":\"p1\","
		 "\"interaction_type\":\"view\"}"},
		{"GET", "/api/v1/items/p2", NULL},
		{"POST", "/api/v1/recommendations", "{\"user_id\":\"pu\"}"},
	};
	long worst = 200;
	*secs = 0;
	for (size_t i = 0; i < sizeof q / sizeof q[0]; i++) {
		double t = now_s();
		long st = kd_call(&P, q[i][0], q[i][1], PSK, NULL, q[i][2],
				  NULL);
		t = now_s() - t;
		if (t > *secs)
			*secs = t;
		if (st != 200 && (worst == 200 || st == 0 || st > worst))
			worst = st;
		if (st != 200 && getenv("KNYTT_FAULT_VERBOSE"))
			fprintf(stderr, "shop_round: %s %s -> %ld\n", q[i][0],
				q[i][1], st);
	}
	return worst;
}

/* The database goes away under a serving knyttd: requests fail fast
 * with 503 while it is down and succeed again once it is back, with the
 * same knyttd process. */
START_TEST(postgres_restart_while_serving)
{
	double secs;
	pid_t pid = P.pid;
	ck_assert_int_eq(shop_round(&secs), 200);
	ck_assert_int_eq(pg_ctl("-m fast stop"), 0);
	for (int i = 0; i < 3; i++) {
		long st = shop_round(&secs);
		ck_assert_msg(st == 503, "while the database is down: %ld", st);
		ck_assert_msg(secs < 5, "a 503 took %.2f s", secs);
	}
	ck_assert_int_eq(kd_call(&P, "GET", "/health", NULL, NULL, NULL, NULL),
			 200);
	ck_assert_int_eq(pg_ctl("start"), 0);
	long st = 0;
	double t0 = now_s();
	while (now_s() - t0 < 20 && (st = shop_round(&secs)) != 200)
		usleep(200 * 1000);
	ck_assert_msg(st == 200, "after the restart: %ld for %.1f s", st,
		      now_s() - t0);
	/* every thread's connection came back, not just one */
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(shop_round(&secs), 200);
	ck_assert_int_eq(P.pid, pid);
	ck_assert_int_eq(kill(pid, 0), 0);
}
END_TEST

/* ---- kill -9 of the PostgreSQL server under a feedback load --------- */

static kd_srv Q;
static char QSK[80];
static atomic_int q_next, q_503, q_other;
static atomic_uchar q_acked[NEVENTS];

static void pgk_setup(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
	pgs_start();
}

static void pgk_teardown(void)
{
	curl_global_cleanup();
}

/* Load on Q: single events (even threads) or batches of 10 (odd), each
 * event with its own time; a 200 marks the events acknowledged, a 503
 * (the database down) is counted and the events given up. */
static void *pg_load(void *arg)
{
	int batch = (int)(intptr_t)arg % 2 ? 10 : 1;
	char body[2048];
	while (!atomic_load(&stop_load)) {
		int n0 = atomic_fetch_add(&q_next, batch);
		if (n0 + batch > NEVENTS)
			break;
		int len = snprintf(body, sizeof body, "%s",
				   batch > 1 ? "{\"interactions\":[" : "");
		for (int i = 0; i < batch; i++)
			len += snprintf(body + len, sizeof body - (size_t)len,
					"%s{\"user_id\":\"q%d\",\"item_id\":"
					"\"p%d\",\"interaction_type\":\"view\","
					"\"timestamp\":%lld}",
					i ? "," : "", (n0 + i) % 11,
					1 + (n0 + i) % 2, TS0 + n0 + i);
		snprintf(body + len, sizeof body - (size_t)len, "%s",
			 batch > 1 ? "]}" : "");
		double t = now_s();
		cJSON *o = NULL;
		long st = kd_call(&Q, "POST", "/api/v1/interactions", QSK, NULL,
				  body, &o);
		const cJSON *acc = cJSON_GetObjectItem(o, "accepted_count");
		if (st == 200 && acc && acc->valuedouble == batch) {
			for (int i = 0; i < batch; i++)
				atomic_store(&q_acked[n0 + i], 1);
		} else if (st == 503 && now_s() - t < 5) {
			atomic_fetch_add(&q_503, 1);
		} else {
			atomic_fetch_add(&q_other, 1);
			fprintf(stderr, "pg_load: %ld after %.2f s\n", st,
				now_s() - t);
		}
		cJSON_Delete(o);
		if (st == 503)
			usleep(20 * 1000);
	}
	return NULL;
}

static pid_t postmaster_pid(void)
{
	char path[320];
	snprintf(path, sizeof path, "%s/data/postmaster.pid", pgs_dir);
	FILE *f = fopen(path, "r");
	long pid = 0;
	if (f) {
		if (fscanf(f, "%ld", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return (pid_t)pid;
}

/* The store's events: each acknowledged one exactly once, none twice;
 * PostgreSQL's own check of the table's B-tree indexes (amcheck). */
static void pg_check_store(void)
{
	knytt_store *st;
	uint64_t t;
	ck_assert_int_eq(knytt_store_open(Q.uri, &st), KNYTT_OK);
	ck_assert_int_eq(knytt_store_tenant_find(st, "pgkill", &t), KNYTT_OK);
	ck_assert_int_eq(knytt_store_use_tenant(st, t), KNYTT_OK);
	seen s = {calloc(NEVENTS, 1), 0, 0};
	ck_assert_int_ge(knytt_store_interactions_since(st, 0, on_ix, &s), 0);
	knytt_store_close(st);
	int lost = 0, stored = 0, nacked = 0;
	for (int n = 0; n < NEVENTS; n++) {
		stored += s.http[n] != 0;
		nacked += atomic_load(&q_acked[n]);
		lost += atomic_load(&q_acked[n]) && !s.http[n];
	}
	fprintf(stderr, "postgres_sigkill: %d events sent, %d acknowledged, "
		"%d stored, %d answers 503 while down\n", atomic_load(&q_next),
		nacked, stored, atomic_load(&q_503));
	ck_assert_msg(s.dup == 0, "%d events stored twice", s.dup);
	ck_assert_msg(lost == 0, "%d acknowledged events lost", lost);
	free(s.http);
	PGconn *c = PQconnectdb(Q.uri);
	ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
	PGresult *r = PQexec(c, "CREATE EXTENSION IF NOT EXISTS amcheck");
	int have = PQresultStatus(r) == PGRES_COMMAND_OK;
	PQclear(r);
	if (have) {
		r = PQexec(c, "SELECT count(bt_index_check(i.indexrelid, true))"
			      " FROM pg_index i JOIN pg_class c ON c.oid = "
			      "i.indexrelid JOIN pg_am a ON a.oid = c.relam "
			      "WHERE a.amname = 'btree' AND c.relnamespace = "
			      "current_schema()::regnamespace");
		ck_assert_msg(PQresultStatus(r) == PGRES_TUPLES_OK,
			      "amcheck: %s", PQerrorMessage(c));
		ck_assert_int_gt(atoi(PQgetvalue(r, 0, 0)), 0);
		PQclear(r);
	} else {
		fprintf(stderr, "postgres_sigkill: no amcheck extension: "
			"indexes not checked\n");
	}
	PQfinish(c);
}

/* The PostgreSQL server is SIGKILLed while knyttd (--sync-feedback: a
 * 200 means committed) takes events one by one and in batches; pg_ctl
 * starts it again (crash recovery).  Every acknowledged event is stored
 * exactly once, knyttd answers 503 (fast) while the database is down and
 * 200 again after, and it is the same process throughout. */
START_TEST(postgres_sigkill_while_serving)
{
	if (!pgs_dir[0] || pgs_why[0]) {
		fprintf(stderr, "postgres_sigkill_while_serving: SKIPPED (no "
			"PostgreSQL server: %s)\n",
			pgs_why[0] ? pgs_why : "not started");
		return;
	}
	memset(&Q, 0, sizeof Q);
	snprintf(Q.dir, sizeof Q.dir, "/tmp/knyttd-test-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(Q.dir));
	char uri[512];
	pgs_new_store(uri, sizeof uri);
	ck_assert_uint_lt(strlen(uri), sizeof Q.uri);
	memcpy(Q.uri, uri, strlen(uri) + 1);
	const char *sync[] = {"--sync-feedback", NULL};
	ck_assert_int_eq(kd_start(&Q, sync), 0);
	char pk[80];
	ck_assert_int_eq(kd_tenant(&Q, "pgkill", QSK, pk), 0);
	ck_assert_int_eq(kd_call(&Q, "POST", "/api/v1/items", QSK, NULL,
				 "{\"items\":[{\"item_id\":\"p1\"},"
				 "{\"item_id\":\"p2\"}]}",
				 NULL),
			 200);
	pid_t kpid = Q.pid;
	double t0 = now_s();
	pthread_t th[4];
	atomic_store(&stop_load, 0);
	for (intptr_t i = 0; i < 4; i++)
		pthread_create(&th[i], NULL, pg_load, (void *)i);
	usleep(400 * 1000);
	pid_t pm = postmaster_pid();
	ck_assert_int_gt(pm, 0);
	ck_assert_int_eq(kill(pm, SIGKILL), 0);
	/* down for about a second: the load gets 503s */
	usleep(1000 * 1000);
	int started = 0;
	/* the killed server's backends exit when they notice; until then
	 * the new postmaster refuses their shared memory */
	for (int i = 0; i < 40 && !started; i++)
		if (!(started = pg_ctl("start") == 0))
			usleep(250 * 1000);
	ck_assert_msg(started, "PostgreSQL did not start again");
	long st = 0;
	double up = now_s();
	while (now_s() - up < 15 &&
	       (st = kd_call(&Q, "POST", "/api/v1/search", QSK, NULL,
			     "{\"query\":\"p1\"}", NULL)) != 200)
		usleep(100 * 1000);
	ck_assert_msg(st == 200, "after the restart: %ld", st);
	int before = atomic_load(&q_next);
	usleep(400 * 1000); /* load after the restart */
	atomic_store(&stop_load, 1);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	ck_assert_msg(atomic_load(&q_next) > before + 10,
		      "no load went through after the restart");
	ck_assert_int_eq(atomic_load(&q_other), 0);
	ck_assert_int_gt(atomic_load(&q_503), 0);
	ck_assert_int_eq(Q.pid, kpid);
	ck_assert_int_eq(kill(kpid, 0), 0);
	ck_assert_int_eq(kd_call(&Q, "POST", "/api/v1/recommendations", QSK,
				 NULL, "{\"user_id\":\"q3\"}", NULL),
			 200);
	long stopped = kd_stop(&Q);
	ck_assert_msg(stopped == 0, "knyttd stopped with %ld", stopped);
	pg_check_store();
	kd_cleanup(&Q);
	fprintf(stderr, "postgres_sigkill: %.1f s in all\n", now_s() - t0);
}
END_TEST

/* ---- the disk fills up --------------------------------------------- */

static kd_srv F;
static char FSK[80];
static int mounted;

static void full_setup(void)
{
	curl_global_init(CURL_GLOBAL_ALL);
	memset(&F, 0, sizeof F);
	snprintf(F.dir, sizeof F.dir, "/tmp/knyttd-full-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(F.dir));
	char cmd[256];
	/* a 3 MB filesystem of its own (root only: CI runs as root) */
	snprintf(cmd, sizeof cmd,
		 "mount -t tmpfs -o size=24m tmpfs %s 2>/dev/null", F.dir);
	mounted = system(cmd) == 0;
	if (!mounted)
		return;
	snprintf(F.uri, sizeof F.uri, "sqlite:%s/k.db", F.dir);
	const char *extra[] = {"--sync-feedback", NULL};
	ck_assert_int_eq(kd_start(&F, extra), 0);
	char pk[80];
	ck_assert_int_eq(kd_tenant(&F, "full", FSK, pk), 0);
	char body[4096];
	int n = snprintf(body, sizeof body, "{\"items\":[");
	for (int i = 0; i < 7; i++)
		n += snprintf(body + n, sizeof body - (size_t)n,
			      "%s{\"item_id\":\"it-%d\",\"title\":\"shoe "
			      "%d\"}",
			      i ? "," : "", i, i);
	snprintf(body + n, sizeof body - (size_t)n, "]}");
	ck_assert_int_eq(kd_call(&F, "POST", "/api/v1/items", FSK, NULL, body,
				 NULL),
			 200);
	/* leave about 6 MB free: the feedback below fills them */
	struct statvfs vf;
	ck_assert_int_eq(statvfs(F.dir, &vf), 0);
	long long fill = (long long)vf.f_bavail * (long long)vf.f_frsize -
			 (6LL << 20);
	snprintf(cmd, sizeof cmd, "fallocate -l %lld %s/filler", fill, F.dir);
	ck_assert_int_eq(system(cmd), 0);
	ck_assert_int_eq(kd_stop(&F), 0); /* the test starts its own */
}

static void full_teardown(void)
{
	if (F.pid)
		kd_stop(&F);
	char cmd[256];
	if (mounted) {
		snprintf(cmd, sizeof cmd, "umount %s", F.dir);
		ck_assert_int_eq(system(cmd), 0);
	}
	kd_cleanup(&F);
	curl_global_cleanup();
}

static int full_ix(const knytt_interaction *ix, void *ctx)
{
	unsigned char *got = ctx;
	if (ix->ts_ms >= TS0 && ix->ts_ms < TS0 + NEVENTS)
		got[ix->ts_ms - TS0]++;
	return 0;
}

static int full_run(const char *cmd)
{
	int rc = system(cmd);
	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

/* Frees @p mb MB of the tmpfs (the filler file shrinks). */
static void full_free(int mb)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "truncate -s -%dM %s/filler", mb, F.dir);
	ck_assert_int_eq(full_run(cmd), 0);
}

/* POST /api/v1/items in batches of 100 (one import transaction each)
 * until the disk is full: the refused batch gets a 503 naming the cause
 * and none of its items is visible; the catalog is still served. */
static void full_items(void)
{
	enum { IB = 100 };
	full_free(2);
	char *body = malloc(IB * 400 + 64);
	ck_assert_ptr_nonnull(body);
	int b, refused = -1;
	for (b = 0; b < 200 && refused < 0; b++) {
		int n = sprintf(body, "{\"items\":[");
		for (int i = 0; i < IB; i++)
			n += sprintf(body + n,
				     "%s{\"item_id\":\"fill-%d\",\"title\":"
				     "\"garden chair %d\",\"description\":"
				     "\"%0300d\"}",
				     i ? "," : "", b * IB + i, b * IB + i, i);
		strcpy(body + n, "]}");
		cJSON *o = NULL;
		long st = kd_call(&F, "POST", "/api/v1/items", FSK, NULL, body,
				  &o);
		if (st != 200) {
			char *t = o ? cJSON_PrintUnformatted(o) : NULL;
			ck_assert_msg(st == 503 && t &&
					      strstr(t, "disk is full"),
				      "items batch %d: %ld %s", b, st,
				      t ? t : "");
			fprintf(stderr, "disk_full: items batch %d: %ld %s\n",
				b, st, t);
			free(t);
			refused = b;
		}
		cJSON_Delete(o);
	}
	free(body);
	ck_assert_msg(refused >= 0, "the disk never filled up with items");
	char url[64];
	for (int i = 0; i < IB; i += 33) { /* none of the refused batch */
		snprintf(url, sizeof url, "/api/v1/items/fill-%d",
			 refused * IB + i);
		ck_assert_int_eq(kd_call(&F, "GET", url, FSK, NULL, NULL, NULL),
				 404);
	}
	if (refused > 0) { /* every item of the accepted ones */
		snprintf(url, sizeof url, "/api/v1/items/fill-%d",
			 refused * IB - 1);
		ck_assert_int_eq(kd_call(&F, "GET", url, FSK, NULL, NULL, NULL),
				 200);
	}
	ck_assert_int_eq(kd_call(&F, "POST", "/api/v1/search", FSK, NULL,
				 "{\"query\":\"garden\"}", NULL),
			 200);
	fprintf(stderr, "disk_full: %d item batches of %d stored\n", refused,
		IB);
}

static int full_import_ix(const knytt_interaction *ix, void *ctx)
{
	if (ix->ts_ms >= IMPORT_TS0 && ix->ts_ms < IMPORT_TS0 + IMPORT_ROWS)
		(*(int *)ctx)++;
	return 0;
}

/* `knytt import` beside the serving knyttd until the disk is full: it
 * exits with an error naming the cause, and leaves whole batches. */
static void full_cli_import(void)
{
	full_free(2);
	char csv[] = "/tmp/knytt-full-ix-XXXXXX";
	int fd = mkstemp(csv);
	ck_assert_int_ge(fd, 0);
	FILE *f = fdopen(fd, "w");
	fprintf(f, "user,item,type,ts_ms,event_id\n");
	for (int i = 0; i < IMPORT_ROWS; i++)
		fprintf(f, "importer-with-a-long-name-%d,it-%d,view,%lld,"
			"imp-%d\n", i % 3001, i % 7, IMPORT_TS0 + i, i);
	fclose(f);
	char cmd[1024], out[256];
	snprintf(out, sizeof out, "%s.out", csv);
	snprintf(cmd, sizeof cmd, "%s --db %s --tenant full import "
		 "--interactions %s --format csv --batch %d >%s 2>&1",
		 cli_bin(), F.uri, csv, IMPORT_BATCH, out);
	int ex = full_run(cmd);
	char msg[512] = "";
	f = fopen(out, "r");
	if (f) {
		size_t n = fread(msg, 1, sizeof msg - 1, f);
		msg[n] = 0;
		fclose(f);
	}
	unlink(csv);
	unlink(out);
	ck_assert_msg(ex != 0 && strstr(msg, "disk is full"),
		      "knytt import on a full disk: exit %d: %s", ex, msg);
	knytt_store *st;
	uint64_t tn;
	int rows = 0;
	ck_assert_int_eq(knytt_store_open(F.uri, &st), KNYTT_OK);
	ck_assert_int_eq(knytt_store_tenant_find(st, "full", &tn), KNYTT_OK);
	ck_assert_int_eq(knytt_store_use_tenant(st, tn), KNYTT_OK);
	ck_assert_int_ge(knytt_store_interactions_since(st, 0, full_import_ix,
							&rows),
			 0);
	knytt_store_close(st);
	ck_assert_msg(rows % IMPORT_BATCH == 0 && rows < IMPORT_ROWS,
		      "the import left %d rows (batches of %d)", rows,
		      IMPORT_BATCH);
	fprintf(stderr, "disk_full: knytt import stored %d of %d rows, exit "
		"%d: %.*s\n", rows, IMPORT_ROWS, ex,
		(int)strcspn(msg, "\n"), msg);
	ck_assert_int_eq(kd_call(&F, "POST", "/api/v1/recommendations", FSK,
				 NULL, "{\"user_id\":\"user-with-a-long-name-3\"}",
				 NULL),
			 200);
}

/* Feedback batches until the disk is full: the failing batch gets a
 * clear 503 and is stored not at all, every acknowledged one wholly;
 * queries keep being answered; training fails cleanly and the old
 * model keeps serving; the import of the CLI fails with the reason. */
START_TEST(disk_full)
{
	if (!mounted) {
		fprintf(stderr, "disk_full: SKIPPED (cannot mount a tmpfs: "
				"not root?)\n");
		return;
	}
	enum { BATCH = 50 };
	static unsigned char acked_b[NEVENTS / BATCH];
	const char *sync[] = {"--sync-feedback", NULL};
	ck_assert_int_eq(kd_start(&F, sync), 0);
	char *body = malloc(BATCH * 160 + 64);
	ck_assert_ptr_nonnull(body);
	int b, full = 0;
	for (b = 0; b < NEVENTS / BATCH && !full; b++) {
		int n = sprintf(body, "{\"interactions\":[");
		for (int i = 0; i < BATCH; i++) {
			int e = b * BATCH + i;
			n += sprintf(body + n,
				     "%s{\"user_id\":\"user-with-a-long-name-"
				     "%d\",\"item_id\":\"it-%d\",\"interaction_"
				     "type\":\"view\",\"timestamp\":%lld}",
				     i ? "," : "", e % 997, e % 7, TS0 + e);
		}
		strcpy(body + n, "]}");
		cJSON *o = NULL;
		long st = kd_call(&F, "POST", "/api/v1/interactions", FSK, NULL,
				  body, &o);
		const cJSON *acc = cJSON_GetObjectItem(o, "accepted_count");
		if (st == 200 && acc && acc->valuedouble == BATCH) {
			acked_b[b] = 1;
		} else {
			char *t = o ? cJSON_PrintUnformatted(o) : NULL;
			ck_assert_msg(st == 503 && t && strstr(t, "full") &&
					      strstr(t, "\"unavailable\""),
				      "batch %d: %ld %s", b, st, t ? t : "");
			fprintf(stderr, "disk_full: batch %d: %ld %s\n", b, st,
				t);
			free(t);
			full = 1;
		}
		cJSON_Delete(o);
	}
	free(body);
	ck_assert_msg(full, "the disk never filled up");
	/* queries are answered */
	ck_assert_int_eq(kd_call(&F, "POST", "/api/v1/recommendations", FSK,
				 NULL, "{\"user_id\":\"user-with-a-long-name-1\"}",
				 NULL),
			 200);
	ck_assert_int_eq(kd_call(&F, "GET", "/api/v1/items/it-3", FSK, NULL,
				 NULL, NULL),
			 200);
	/* training: a job that fails with a reason, or one that fits */
	cJSON *o = NULL;
	ck_assert_int_eq(kd_call(&F, "POST", "/api/v1/models/train", FSK, NULL,
				 "{}", &o),
			 202);
	char url[128];
	snprintf(url, sizeof url, "/api/v1/models/jobs/%s",
		 cJSON_GetObjectItem(o, "job_id")->valuestring);
	cJSON_Delete(o);
	const char *state = "";
	for (int i = 0; i < 600; i++) {
		o = NULL;
		ck_assert_int_eq(kd_call(&F, "GET", url, FSK, NULL, NULL, &o),
				 200);
		state = cJSON_GetObjectItem(o, "state")->valuestring;
		if (!strcmp(state, "done") || !strcmp(state, "failed"))
			break;
		cJSON_Delete(o);
		o = NULL;
		usleep(100 * 1000);
	}
	char *t = cJSON_PrintUnformatted(o);
	ck_assert_msg(!strcmp(state, "done") || strstr(t, "full"),
		      "training on a full disk: %s", t);
	fprintf(stderr, "disk_full: %d batches of %d stored; training %s\n", b - 1,
		BATCH, state);
	free(t);
	cJSON_Delete(o);
	ck_assert_int_eq(kd_call(&F, "POST", "/api/v1/recommendations", FSK,
				 NULL, "{\"user_id\":\"user-with-a-long-name-2\"}",
				 NULL),
			 200);
	ck_assert_int_eq(kd_call(&F, "GET", "/api/v1/models", FSK, NULL, NULL,
				 NULL),
			 200);
	full_items();
	full_cli_import();
	long stopped = kd_stop(&F);
	ck_assert_msg(stopped == 0, "knyttd stopped with %ld", stopped);
	/* nothing half: acknowledged batches whole, the refused one absent */
	knytt_store *st;
	uint64_t tn;
	ck_assert_int_eq(knytt_store_open(F.uri, &st), KNYTT_OK);
	ck_assert_int_eq(knytt_store_tenant_find(st, "full", &tn), KNYTT_OK);
	ck_assert_int_eq(knytt_store_use_tenant(st, tn), KNYTT_OK);
	unsigned char *got = calloc(NEVENTS, 1);
	ck_assert_int_ge(knytt_store_interactions_since(st, 0, full_ix, got),
			 0);
	knytt_store_close(st);
	/* each event is whole or absent and none is stored twice; the
	 * refused batch is stored not at all (one transaction), so a client
	 * may retry it without event ids */
	int refused_in = 0;
	for (int e = 0; e < NEVENTS; e++) {
		ck_assert_msg(got[e] <= 1, "event %d stored %d times", e,
			      got[e]);
		if (acked_b[e / BATCH])
			ck_assert_msg(got[e] == 1, "acknowledged event %d "
				      "lost", e);
		else if (e / BATCH == b - 1)
			refused_in += got[e];
		else
			ck_assert_msg(got[e] == 0, "event %d of an unsent "
				      "batch stored", e);
	}
	fprintf(stderr, "disk_full: %d of the %d events of the refused batch "
		"were stored\n", refused_in, BATCH);
	ck_assert_msg(refused_in == 0, "the refused batch left %d of its %d "
		      "events stored", refused_in, BATCH);
	free(got);
	sqlite3 *db;
	ck_assert_int_eq(sqlite3_open(F.uri + 7, &db), SQLITE_OK);
	sqlite3_stmt *q;
	sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &q, NULL);
	ck_assert_int_eq(sqlite3_step(q), SQLITE_ROW);
	ck_assert_str_eq((const char *)sqlite3_column_text(q, 0), "ok");
	sqlite3_finalize(q);
	sqlite3_close(db);
	/* the next start still serves on the full disk */
	const char *extra[] = {"--sync-feedback", NULL};
	ck_assert_int_eq(kd_start(&F, extra), 0);
	ck_assert_int_eq(kd_call(&F, "POST", "/api/v1/search", FSK, NULL,
				 "{\"query\":\"shoe\"}", NULL),
			 200);
	ck_assert_int_eq(kd_stop(&F), 0);
}
END_TEST

Suite *faults_suite(void)
{
	Suite *s = suite_create("faults");
	TCase *tc = tcase_create("sigkill");
	tcase_add_unchecked_fixture(tc, faults_setup, faults_teardown);
	tcase_set_timeout(tc, 240);
	tcase_add_test(tc, sigkill_at_random_points);
	suite_add_tcase(s, tc);
	tc = tcase_create("diskfull");
	tcase_add_unchecked_fixture(tc, full_setup, full_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, disk_full);
	suite_add_tcase(s, tc);
	tc = tcase_create("postgres");
	tcase_set_tags(tc, "postgres");
	tcase_add_unchecked_fixture(tc, pg_setup, pg_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, postgres_restart_while_serving);
	suite_add_tcase(s, tc);
	tc = tcase_create("pgkill");
	tcase_set_tags(tc, "postgres");
	tcase_add_unchecked_fixture(tc, pgk_setup, pgk_teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, postgres_sigkill_while_serving);
	suite_add_tcase(s, tc);
	return s;
}
