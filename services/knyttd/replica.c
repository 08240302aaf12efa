/*
 * replica.c -- several knyttd processes on one PostgreSQL database.
 *
 * Each process keeps the serving state of a tenant in memory (items and
 * their filters, shoppers' histories and tastes, trending counters, the
 * model and its index), so a write accepted by one replica has to reach
 * the memory of the others.  PostgreSQL carries it (knytt_store_notify,
 * lib/store/pgnotify.c): after a write commits, the replica that made it
 * sends a notification on channel "knytt" -- a JSON object with its
 * origin (a random id per process, so it skips its own), the tenant and
 * what changed:
 *   {"k":"items"}                      items upserted or deleted: the
 *                                      others re-read the items and
 *                                      item vectors changed since their
 *                                      last sync;
 *   {"k":"fb","u","i","y","v","ts"}   one feedback event, applied to the
 *                                      others' memory (counters, and the
 *                                      shopper's profile when loaded);
 *   {"k":"model","v"}                  a model version swapped in: the
 *                                      others load it.
 * A listener thread per process holds its own connection.  When that
 * connection is lost, notifications sent meanwhile are lost too, so on
 * reconnecting it catches up from the tables: items changed since the
 * last sync (with popularity and vectors), the newest promoted model,
 * the trending counts of every event stored after the last interaction
 * mark the notifications covered (knytt_engine_refresh_trending), and
 * the stored history of every shopper it has loaded, whose missing
 * events are applied once (knytt_engine_refresh_users).
 *
 * The covered mark.  Every MARK_MS the listener reads the interaction
 * mark (knytt_store_interaction_mark) on its own connection.  An event
 * under mark M was committed before M was read, so the server had queued
 * its notification for this connection by then, and sends it as soon as
 * the connection is idle -- at the latest before the answer to the next
 * query on it.  So once the next mark has been read and a wait has
 * delivered what libpq had buffered, every event under M has been
 * applied: M is covered.  Events above it that this process counted
 * anyway (its own, and notifications applied since) are remembered in
 * counted.c and skipped by the catch-up; the notifications queued on the
 * new connection of events the catch-up counted are skipped as well.
 * (PostgreSQL takes an id at insert and shows the row at commit, so an
 * event committed in the instant a mark is read may be missed or counted
 * twice: the window is that instant, not the outage.)
 *
 * Feedback is written synchronously in this mode (--sync-feedback is
 * implied): the notification goes out after the event is in the store,
 * so a replica that loads the shopper's history later finds it there.
 * Tenants a replica has no engine for are skipped: opening one later
 * reads everything from the store.
 */
#include "knyttd.h"

#include <sodium.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CHANNEL "knytt"
#define WAIT_MS 200
#define MARK_MS 200
/* key class of the trainer lock (knytt_store_try_lock keys are per
 * schema; the tenant id is the rest) */
#define TRAINER_KEY 0x7472000000000000LL

static char origin[33];
static pthread_t th;
static int running;
static atomic_int stop, connected;
static atomic_ullong n_received, n_applied, n_reconnects, n_caught_up;
/* the interaction mark the applied notifications cover (listener) */
static int64_t covered;

/* ---- sending ------------------------------------------------------------ */

static void send_json(knytt_store *st, cJSON *o)
{
	char *txt = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (!st || !txt) {
		cJSON_free(txt);
		return;
	}
	int rc = knytt_store_notify(st, CHANNEL, txt);
	cJSON_free(txt);
	if (rc)
		kd_log("{\"level\":\"warn\",\"msg\":\"notify failed: %s\"}",
		       knytt_errname(rc));
}

static cJSON *head(uint64_t tenant, const char *kind)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "o", origin);
	cJSON_AddNumberToObject(o, "t", (double)tenant);
	cJSON_AddStringToObject(o, "k", kind);
	return o;
}

void kd_replica_after(const kd_req *r)
{
	if (!kd_cfg.replicas || !r->route || r->status < 200 ||
	    r->status > 299)
		return;
	int items = (!strcmp(r->route, "/api/v1/items") &&
		     !strcmp(r->route_method, "POST")) ||
		    (!strcmp(r->route, "/api/v1/items/{}") &&
		     strcmp(r->route_method, "GET") != 0);
	if (items)
		send_json(r->st, head(r->tenant, "items"));
}

void kd_replica_feedback(const kd_req *r, const char *user,
			 const char *item, const char *type, double value,
			 int64_t ts_ms)
{
	if (!kd_cfg.replicas)
		return;
	/* counted here at once: a catch-up must not count it again */
	kd_counted_add(kd_counted_key(r->tenant, user, item, type, ts_ms));
	cJSON *o = head(r->tenant, "fb");
	cJSON_AddStringToObject(o, "u", user);
	cJSON_AddStringToObject(o, "i", item);
	cJSON_AddStringToObject(o, "y", type);
	cJSON_AddNumberToObject(o, "v", value);
	cJSON_AddNumberToObject(o, "ts", (double)ts_ms);
	send_json(r->st, o);
}

void kd_replica_model(knytt_store *st, uint64_t tenant, int64_t version)
{
	if (!kd_cfg.replicas)
		return;
	cJSON *o = head(tenant, "model");
	cJSON_AddNumberToObject(o, "v", (double)version);
	send_json(st, o);
}

int kd_replica_trainer_lock(uint64_t tenant, knytt_store **out)
{
	*out = NULL;
	if (!kd_cfg.replicas)
		return 1;
	knytt_store *st = NULL;
	int rc = knytt_store_open(kd_cfg.db, &st);
	if (rc == 0)
		rc = knytt_store_try_lock(st, TRAINER_KEY | (int64_t)tenant);
	if (rc == 1) {
		*out = st;
		return 1;
	}
	knytt_store_close(st);
	return rc == KNYTT_ENOTSUP ? 1 : rc;
}

void kd_replica_trainer_unlock(uint64_t tenant, knytt_store *st)
{
	if (st)
		knytt_store_unlock(st, TRAINER_KEY | (int64_t)tenant);
	knytt_store_close(st);
}

/* ---- receiving ---------------------------------------------------------- */

static int apply_fb(knytt_engine *e, uint64_t tenant, const char *u,
		    const char *i, const char *y, double v, int64_t ts)
{
	uint64_t key = kd_counted_key(tenant, u, i, y, ts);
	if (kd_counted_take_streamed(key))
		return 0; /* a catch-up counted it from the store */
	int rc = knytt_engine_feedback_apply(e, u, i, y, v, ts);
	if (rc == KNYTT_ENOTFOUND && knytt_engine_sync(e) >= 0)
		rc = knytt_engine_feedback_apply(e, u, i, y, v, ts);
	if (rc == 1) /* counted (0: a loaded profile had it) */
		kd_counted_add(key);
	return rc;
}

static const char *jstr(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static double jnum(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static int on_notify(void *ctx, const char *channel, const char *payload)
{
	(void)ctx;
	(void)channel;
	cJSON *o = cJSON_Parse(payload);
	const char *from = jstr(o, "o"), *k = jstr(o, "k");
	if (!from || !k || !strcmp(from, origin)) {
		cJSON_Delete(o);
		return 0;
	}
	atomic_fetch_add(&n_received, 1);
	kd_eref *ref = kd_eref_get((uint64_t)jnum(o, "t"));
	knytt_engine *e = ref ? kd_eref_engine(ref) : NULL;
	int rc = 0;
	if (e && !strcmp(k, "items"))
		rc = knytt_engine_sync(e);
	else if (e && !strcmp(k, "model"))
		rc = knytt_engine_reload(e);
	else if (e && !strcmp(k, "fb") && jstr(o, "u") && jstr(o, "i") &&
		 jstr(o, "y"))
		rc = apply_fb(e, (uint64_t)jnum(o, "t"), jstr(o, "u"),
			      jstr(o, "i"), jstr(o, "y"), jnum(o, "v"),
			      (int64_t)jnum(o, "ts"));
	if (e && rc >= 0)
		atomic_fetch_add(&n_applied, 1);
	else if (e)
		kd_log("{\"level\":\"warn\",\"msg\":\"replica event %s of "
		       "tenant %.0f not applied: %s\"}",
		       k, jnum(o, "t"), knytt_errname(rc));
	kd_eref_put(ref);
	cJSON_Delete(o);
	return 0;
}

/* Whether the catch-up should leave an event out of trending: this
 * process counted it (else it is about to: its notification, queued on
 * the new connection, must then be left out). */
static int counted_cb(const knytt_interaction *ix, void *ctx)
{
	uint64_t key = kd_counted_key(*(const uint64_t *)ctx, ix->user,
				      ix->item, ix->type, ix->ts_ms);
	if (kd_counted_take(key))
		return 1;
	kd_counted_streamed(key);
	return 0;
}

/* The catch-up of one engine (kd_tenants_each holds a reference to it
 * for the call); @p ctx: {tenants seen, whether trending is caught up}. */
static void catch_up_one(knytt_engine *e, uint64_t tenant, void *ctx)
{
	int *c = ctx;
	c[0]++;
	knytt_engine_sync(e);
	knytt_engine_reload(e);
	/* trending first: a shopper loaded meanwhile is then counted here
	 * and found complete by refresh_users */
	int t = c[1] ? knytt_engine_refresh_trending(e, covered, counted_cb,
						     &tenant, NULL)
		     : 0;
	int n = knytt_engine_refresh_users(e);
	if (t < 0 || n < 0)
		kd_log("{\"level\":\"warn\",\"msg\":\"replica catch-up of "
		       "tenant %llu: %s\"}",
		       (unsigned long long)tenant,
		       knytt_errname(t < 0 ? t : n));
	n = (t > 0 ? t : 0) + (n > 0 ? n : 0);
	if (n > 0)
		atomic_fetch_add(&n_caught_up, (unsigned long long)n);
}

/* What the notifications lost meanwhile would have said.  Not by the
 * events' times: a client may send an event dated an hour back. */
static void catch_up(void)
{
	int c[2] = {0, !kd_counted_overflowed()};
	if (!c[1])
		kd_log("{\"level\":\"warn\",\"msg\":\"replica catch-up: "
		       "too many events during the outage to tell which "
		       "were counted; trending counters left as they are\"}");
	kd_tenants_each(catch_up_one, c);
	if (!c[1])
		kd_counted_reset_overflow();
	kd_log("{\"level\":\"info\",\"msg\":\"replica caught up\","
	       "\"tenants\":%d,\"after_mark\":%lld}",
	       c[0], (long long)covered);
}

/* The database URI with application_name=knyttd-listener: operators
 * (and the tests) find the listener in pg_stat_activity. */
static char *listener_uri(void)
{
	const char *db = kd_cfg.db;
	const char *sep = strstr(db, "://") ? (strchr(db, '?') ? "&" : "?")
					    : " ";
	size_t n = strlen(db) + 40;
	char *u = malloc(n);
	if (u)
		snprintf(u, n, "%s%sapplication_name=knyttd-listener", db, sep);
	return u;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void pause_ms(long ms)
{
	for (long t = 0; t < ms && !atomic_load(&stop); t += 50)
		usleep(50000);
}

/* Waits for notifications and moves the covered mark (see the top of
 * the file) until the connection is lost or stop is set. */
static void serve(knytt_store *st, int64_t m0)
{
	int64_t older = m0, newer = m0, last = mono_ms();
	int pending = 0;
	for (;;) {
		int rc = knytt_store_wait_notify(st, WAIT_MS, on_notify, NULL);
		if (atomic_load(&stop))
			return;
		if (rc >= 0 && pending) {
			covered = older;
			kd_counted_tick();
			pending = 0;
		}
		if (rc >= 0 && mono_ms() - last >= MARK_MS) {
			int64_t m;
			rc = knytt_store_interaction_mark(st, &m);
			if (rc == 0) {
				older = newer;
				newer = m;
				pending = 1;
				last = mono_ms();
			}
		}
		if (rc < 0) {
			kd_log("{\"level\":\"warn\",\"msg\":\"replica "
			       "listener lost its connection\"}");
			return;
		}
	}
}

static void *listen_loop(void *arg)
{
	(void)arg;
	int ever = 0;
	char *uri = listener_uri();
	while (uri && !atomic_load(&stop)) {
		knytt_store *st = NULL;
		int64_t m0 = 0;
		/* the mark after LISTEN: an event above it is notified */
		if (knytt_store_open(uri, &st) ||
		    knytt_store_listen(st, CHANNEL) ||
		    knytt_store_interaction_mark(st, &m0)) {
			knytt_store_close(st);
			pause_ms(kd_cfg.replica_retry_ms);
			continue;
		}
		atomic_store(&connected, 1);
		if (ever) {
			atomic_fetch_add(&n_reconnects, 1);
			catch_up();
		}
		ever = 1;
		/* up to m0: notified before the loss, or counted by the
		 * catch-up (it read the store after m0 was read) */
		covered = m0;
		serve(st, m0);
		atomic_store(&connected, 0);
		knytt_store_close(st);
		pause_ms(kd_cfg.replica_retry_ms);
	}
	free(uri);
	return NULL;
}

int kd_replica_start(void)
{
	if (!kd_cfg.replicas)
		return 0;
	unsigned char b[16];
	randombytes_buf(b, sizeof b);
	sodium_bin2hex(origin, sizeof origin, b, sizeof b);
	if (pthread_create(&th, NULL, listen_loop, NULL)) {
		kd_log("{\"level\":\"error\",\"msg\":\"cannot start the "
		       "replica listener\"}");
		return -1;
	}
	running = 1;
	return 0;
}

void kd_replica_stop(void)
{
	atomic_store(&stop, 1);
	if (running)
		pthread_join(th, NULL);
	running = 0;
}

void kd_replica_stats(kd_replica_stat *out)
{
	out->on = kd_cfg.replicas;
	out->connected = atomic_load(&connected);
	out->received = atomic_load(&n_received);
	out->applied = atomic_load(&n_applied);
	out->reconnects = atomic_load(&n_reconnects);
	out->caught_up = atomic_load(&n_caught_up);
}
