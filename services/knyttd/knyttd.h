/*
 * knyttd.h -- the parts of knyttd, the HTTP/JSON service over the engine.
 *
 * A request goes: http.c (libmicrohttpd callbacks: body gathered up to
 * the limit, UTF-8 and JSON checked) -> route.c (the route table finds
 * the handler; the permission of the route is checked against the
 * credential, auth.c) -> a handler in h_*.c, a thin call into the
 * engine or the store through include/knytt.h -> a JSON answer, or an
 * error {"error": {"code", "message", "field"}} (json.c).
 *
 * Threads: libmicrohttpd's pool threads run the handlers.  Each thread
 * has its own store connection (tenants.c, kd_store), because a
 * knytt_store handle is one connection for one thread at a time; the
 * engines, one per tenant opened on first use, are shared (they are
 * thread-safe after open) and reference-counted: a request holds its
 * engine until it ends, so a tenant's engine can be swapped (its
 * embedding service changed, embedder.c) while requests use it.
 * Training jobs run on threads of their own (jobs.c).
 */
#ifndef KNYTTD_H
#define KNYTTD_H

#include <knytt.h>

#include <cJSON.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---- configuration (main.c) ------------------------------------------ */

/* Limits of a tenant (limits.c); 0 = none. */
typedef struct kd_limits {
	double rps;   /* requests a second per key */
	double burst; /* bucket size (>= 1 when rps > 0) */
	int64_t max_items, max_interactions;
} kd_limits;

typedef struct kd_config {
	char db[4096];          /* store URI */
	char host[256];         /* listen address */
	unsigned port;          /* 0 = any free port (printed on start) */
	size_t body_limit;      /* bytes; larger bodies get 413 */
	unsigned threads;       /* libmicrohttpd pool threads */
	char admin_key[256];    /* "" = no admin routes */
	char log_path[4096];    /* "" = stderr */
	int access_log;         /* one JSON line per request */
	int64_t token_ttl_s;    /* shopper tokens' lifetime */
	unsigned long long pwhash_ops; /* argon2id opslimit */
	size_t pwhash_mem;      /* argon2id memlimit, bytes */
	int feedback_async;     /* engines write feedback behind */
	uint64_t profile_cache; /* bytes of shopper profiles per engine
				   (0: the library's default) */
	long malloc_arenas;     /* glibc's M_ARENA_MAX (heap.c): -1 = one
				   per two CPUs, at least 1, unless the
				   environment set it; 0 = glibc's own */
	long drain_ms;          /* SIGTERM: longest wait for requests */
	long key_cache_ms;      /* how long a found API key is trusted */
	long item_cache_ms;     /* item fields of answers: how often the
				   store is asked what changed (0 = no
				   cache, itemcache.c) */
	char www[4096];         /* static pages (static.c); "" = none */
	kd_limits limits;       /* every tenant's defaults */
	struct kd_sched {       /* training schedule (schedule.c) */
		int64_t every_events; /* retrain after N new interactions
					 (0 = not on a count) */
		double every_hours;   /* retrain when the model is this old
					 (0 = not on age) */
		unsigned eval_users;  /* leave-last-out test users (0 = no
					 evaluation) */
		double margin;        /* NDCG@10 a new model may lose before
					 it is held back (< 0 = never) */
	} sched;                /* every tenant's defaults */
	long sched_tick_ms;     /* how often the scheduler looks */
	int replicas;           /* PostgreSQL: notify and listen (replica.c) */
	long replica_retry_ms;  /* the listener's pause before reconnecting */
} kd_config;

extern kd_config kd_cfg;

/* ---- logging (log.c) -------------------------------------------------- */

int kd_log_open(const char *path);
/* Reopens the log file (SIGHUP, after logrotate moved it). */
int kd_log_reopen(void);
void kd_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void kd_log_close(void);

/* ---- credentials and requests ----------------------------------------- */

/* Who is calling, from the Authorization header. */
typedef enum kd_cred {
	KD_CRED_NONE = 0,
	KD_CRED_ADMIN = 1,
	KD_CRED_SECRET = 2,
	KD_CRED_PUBLIC = 3
} kd_cred;

/* What a route allows (route.c's table). */
typedef enum kd_perm {
	KD_P_OPEN = 1,   /* anyone: /health, /ready */
	KD_P_ADMIN = 2,  /* the admin key only */
	KD_P_SECRET = 3, /* a secret key of the tenant */
	KD_P_PUBLIC = 4, /* a public or secret key */
	/* a secret key, or a public key with the token of the shopper the
	 * request is about (the handler names that shopper: kd_may_act) */
	KD_P_SELF = 5
} kd_perm;

#define KD_MAX_PARAMS 4

/* Percent-decodes @p s in place, except "%00" (kept: a NUL would end the
 * C string early); the new length. */
size_t kd_unescape(char *s);

typedef struct kd_tenant kd_tenant;
/* A counted reference to an open engine of a tenant (tenants.c). */
typedef struct kd_eref kd_eref;

typedef struct kd_req {
	const char *method;
	const char *url;
	struct MHD_Connection *conn;
	/* body, NUL-terminated; too_big: more than kd_cfg.body_limit came */
	char *body;
	size_t len, cap;
	int too_big;
	/* path parameters ({id} in the pattern), percent-decoded */
	char *param[KD_MAX_PARAMS];
	int nparam;
	char *pathbuf; /* the path, cut into the params (owned) */
	char *rawpath; /* the path as sent, still percent-encoded (owned;
			  NULL: route on url) */
	int started;   /* the access handler has seen the request */
	cJSON *json; /* the parsed body, or NULL */
	/* credential */
	kd_cred cred;
	uint64_t tenant;     /* for secret and public keys */
	char user[KNYTT_STORE_MAX_ID + 1]; /* shopper of the token, or "" */
	knytt_store *st;     /* this thread's connection, tenant selected */
	kd_eref *eref;       /* the engine this request uses (kd_engine),
				held until the request ends, or NULL */
	/* answer */
	int status;
	cJSON *out;          /* body to send (owned), or NULL */
	char *allow;         /* Allow header for 405 (owned) */
	struct MHD_Response *raw; /* a file answer (static.c), or NULL */
	int64_t t0_us;       /* when the request arrived */
	/* operations (issue 16) */
	const char *route;   /* the matched pattern (route.c), or NULL */
	const char *route_method; /* its method */
	char *text;          /* a non-JSON answer (owned), or NULL */
	const char *ctype;   /* its Content-Type */
	size_t bytes_out;    /* bytes of the answer's body */
	char reqid[65];      /* X-Request-Id, the client's or made here */
	char trace[33];      /* trace id of a valid traceparent, or "" */
	long retry_after;    /* Retry-After of a 429, seconds (0 = none) */
	knytt_where *where;  /* the request's attribute filter (kd_filters,
				owned), or NULL */
} kd_req;

typedef int (*kd_handler)(kd_req *r);

/* ---- json.c ------------------------------------------------------------ */

/* Sets an error answer and returns @p status. */
int kd_err(kd_req *r, int status, const char *code, const char *field,
	   const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Maps a knytt error code (with knytt_errmsg) to an HTTP error. */
int kd_liberr(kd_req *r, int rc, const char *field);
/* Sets @p body (owned) as a @p status answer and returns @p status. */
int kd_ok(kd_req *r, int status, cJSON *body);
/* The API's name (item_id, user_id, interaction_type, ...) of the field
 * the calling thread's last library error named (knytt_errfield), or
 * NULL when it named none. */
const char *kd_errfield(void);
/* A tenant's settings (schedule.c, limits.c): the JSON object stored as
 * the metadata of the newest version of model @p name, into *out (NULL
 * when none is stored or it is not an object; cJSON_Delete it); 0 or a
 * store error.  kd_json_num: member @p k of @p o if a number, else @p def. */
int kd_settings_get(knytt_store *st, const char *name, cJSON **out);
double kd_json_num(const cJSON *o, const char *k, double def);

/* Typed field getters of a JSON object.  Each returns 0 when the field is
 * absent (leaving *out as it was), 1 when present and of the right type,
 * or the error status (400, already set on @p r) for a wrong type.
 * @p name is the field's JSON name, also used in the error's "field". */
int kd_get_str(kd_req *r, const cJSON *obj, const char *name,
	       const char **out);
int kd_get_num(kd_req *r, const cJSON *obj, const char *name, double *out);
int kd_get_int(kd_req *r, const cJSON *obj, const char *name, long long lo,
	       long long hi, long long *out);
int kd_get_bool(kd_req *r, const cJSON *obj, const char *name, int *out);
/* The body as an object: 400 if it is not one. */
int kd_body_obj(kd_req *r, const cJSON **out);
/* Query-string parameter, or NULL. */
const char *kd_query(kd_req *r, const char *name);
/* Query-string integer in lo..hi (default @p def): 0 or 400. */
int kd_query_int(kd_req *r, const char *name, long long lo, long long hi,
		 long long def, long long *out);

/* ---- jtext.c: answers written as JSON text ------------------------ */

typedef struct kd_buf {
	char *p;      /* NUL-terminated text, or NULL */
	size_t n, cap;
	int oom;      /* an append failed: the answer becomes a 503 */
} kd_buf;

void kd_buf_put(kd_buf *b, const char *s, size_t n);
void kd_buf_cstr(kd_buf *b, const char *s);
/* @p s as a JSON string, quoted and escaped like cJSON does. */
void kd_buf_jstr(kd_buf *b, const char *s);
/* @p d as cJSON prints a number. */
void kd_buf_num(kd_buf *b, double d);
/* A score of an answer: 9 significant digits (null when not finite). */
void kd_buf_score(kd_buf *b, double d);
/* Sends the text of @p b (taken; b is reset) as a @p status JSON answer;
 * a buffer that ran out of memory answers 503. */
int kd_ok_buf(kd_req *r, int status, kd_buf *b);

/* ---- heap.c: the C library's allocator ------------------------------- */

typedef struct kd_heap_stat {
	long arenas;     /* arenas the allocator has made */
	uint64_t in_use; /* bytes allocated and not freed (mmapped too) */
	uint64_t free;   /* bytes free in the arenas, kept for reuse */
} kd_heap_stat;

/* Sets the arena limit from kd_cfg.malloc_arenas; call before any thread
 * starts.  0, or -1 (said why on stderr). */
int kd_heap_init(void);
/* The allocator's figures now: 0, or -1 when the C library gives none
 * (not glibc). */
int kd_heap_stats(kd_heap_stat *s);

/* ---- itemcache.c: item fields of answers ---------------------------- */

/* What filters of knyttd itself test (anonymous answers). */
typedef struct kd_item_brief {
	double price, quality;
	int in_stock;
} kd_item_brief;

int kd_itemcache_init(void);
void kd_itemcache_free(void);
/* Appends item @p id's JSON object of r's tenant, without its final '}',
 * to @p b and fills @p brief: 1, or 0 when the item is deleted or
 * unknown (nothing appended). */
int kd_item_fields(kd_req *r, uint64_t id, kd_buf *b, kd_item_brief *brief);
/* After a write of the store: forgets an item, or every item of a
 * tenant. */
void kd_itemcache_forget(uint64_t tenant, uint64_t id);
void kd_itemcache_forget_tenant(uint64_t tenant);

/* ---- auth.c ------------------------------------------------------------ */

int kd_auth_init(knytt_store *st);
/* Sets r->cred, r->tenant, r->user from the headers; 0 or 401. */
int kd_authenticate(kd_req *r);
/* 0 when the credential may act for shopper @p user: a secret key, or a
 * public key with that shopper's token; else 403 (set on r). */
int kd_may_act(kd_req *r, const char *user);
/* Forgets every remembered API key (after a revocation). */
void kd_key_cache_clear(void);
/* argon2id hash / verify (libsodium). */
int kd_pw_hash(const char *pw, char *out, size_t cap);
int kd_pw_verify(const char *hash, const char *pw);
/* A signed token for shopper @p user of @p tenant: "kt1.<payload>.<mac>". */
int kd_token_make(uint64_t tenant, const char *user, int64_t exp_ms,
		  char *out, size_t cap);
/* 0 and *user filled when @p tok is valid for @p tenant, else -1. */
int kd_token_check(const char *tok, uint64_t tenant, char *user,
		   size_t cap);

/* ---- http.c: the daemon -------------------------------------------- */

/* Starts listening (kd_cfg.host, kd_cfg.port); *port gets the port. */
int kd_http_start(unsigned *port);
/* Stops accepting, waits up to @p wait_ms for requests in flight;
 * returns how many still run. */
long kd_http_quiesce(long wait_ms);
void kd_http_stop(void);
/* Hands a connected socket to the daemon as if accepted from 127.0.0.1
 * (it owns @p fd then, even on failure); 0 or -1.  tests/fuzz's
 * fuzz_knyttd_request feeds each input through a socketpair so. */
int kd_http_adopt(int fd);

/* ---- route.c ----------------------------------------------------------- */

/* Finds and runs the handler of r; always leaves an answer on r. */
void kd_dispatch(kd_req *r);
/* Route @p i of the table: 1 with its method, pattern and permission,
 * 0 past the end (openapi.c walks it). */
int kd_route_at(size_t i, const char **method, const char **pattern,
		kd_perm *perm);
int h_openapi(kd_req *r);
/* Per-key rate limit and per-tenant quotas (limits.c): 0 to go on, else
 * 429 (rate) or 409 (quota) set on r. */
int kd_limit_check(kd_req *r);
/* A tenant's limits (the defaults until set). */
void kd_limits_get(uint64_t tenant, kd_limits *out);
int kd_limits_set(uint64_t tenant, const kd_limits *l);
int h_admin_limits_get(kd_req *r);
int h_admin_limits_put(kd_req *r);

/* ---- reqlog.c: request ids, traceparent, the access-log line ------ */

/* Sets r->reqid (X-Request-Id or a new one) and r->trace. */
void kd_reqlog_begin(kd_req *r);
/* 1 and the trace id in @p trace when @p tp is a valid W3C traceparent. */
int kd_traceparent_ok(const char *tp, char *trace, size_t cap);
/* The JSON access-log line of an answered request. */
void kd_reqlog_line(const kd_req *r, int aborted);

/* ---- metrics.c: GET /metrics (Prometheus text format) -------------- */

/* Counts @p r (its route, status, duration) once it is answered. */
void kd_metrics_observe(const kd_req *r, double seconds);
/* A request refused by a rate limit or quota (kd_limit_check). */
void kd_metrics_rate_limited(void);
/* A store error answered (kd_liberr): EDB, EIO or ETIMEDOUT. */
void kd_metrics_store_error(int rc);
/* Requests being handled now (http.c). */
long kd_http_inflight(void);
int h_metrics(kd_req *r);

/* ---- stats.c: GET /api/v1/stats, a shop's own live figures ---------- */

/* Counts @p r for its tenant (none: not counted). */
void kd_stats_observe(const kd_req *r, double seconds);
int h_stats(kd_req *r);

/* ---- static.c: the web pages under kd_cfg.www ----------------------- */

/* The default www directory: next to the binary in the checkout
 * (build/bin/../../services/knyttd/www) or installed
 * (bin/../share/knytt/www); "" when neither exists. */
void kd_static_default(char *out, size_t cap);
/* Answers a GET or HEAD outside /api/ from kd_cfg.www: 1 when it did
 * (a file, 304 or 404 set on r), 0 when the path is not its to serve. */
int kd_static(kd_req *r);

/* ---- tenants.c: store connections and engines ------------------------ */

/*
 * The page cache of knyttd's own store connections (each request
 * thread's, the training scheduler's): 1 MiB, not the library's 8.  The
 * engine's connection writes all the time, and SQLite empties the cache
 * of every other connection whenever another one has committed since
 * its last read, so these connections start each call cold whatever
 * their size; a big read (the /metrics counts walk every interaction)
 * filled the thread's 8 MiB and kept it until that thread next read the
 * store, seconds later: the soak's in-use bytes stepped by 8 MiB at
 * every scrape, and RssAnon stayed that much above them.
 */
#define KD_STORE_CACHE_BYTES (1u << 20)
/* Opens a store connection of knyttd's own on kd_cfg.db, its page cache
 * set (KD_STORE_CACHE_BYTES): 0 or a knytt error. */
int kd_store_open(knytt_store **out);
/* This thread's store connection (opened on first use), or NULL. */
knytt_store *kd_store(void);
/* The engine of r->tenant, opened on first use (and opened anew when
 * the tenant's embedder settings changed); a reference is held on r
 * until the request ends (kd_engine_release, http.c), so one request
 * sees one engine even if it is swapped meanwhile.  0 or an error
 * status. */
int kd_engine(kd_req *r, knytt_engine **out);
void kd_engine_release(kd_req *r);
/* Opens @p tenant's engine anew with its stored settings (read through
 * @p st, the tenant selected) if this process has it open; requests
 * holding the old one finish on it.  0 or a knytt error. */
int kd_engine_reopen(knytt_store *st, uint64_t tenant);
/* A reference to @p tenant's engine if this process has it open, else
 * NULL; kd_eref_put releases it (the last one closes the engine). */
kd_eref *kd_eref_get(uint64_t tenant);
void kd_eref_put(kd_eref *x);
knytt_engine *kd_eref_engine(const kd_eref *x);
/* 1 when the engine's vectors come from an embedding service. */
int kd_eref_external(const kd_eref *x);
/* Each open engine: @p fn(engine, tenant id, ctx), called with a
 * reference held and no lock (fn may be slow); e is valid only during
 * the call. */
void kd_tenants_each(void (*fn)(knytt_engine *e, uint64_t tenant,
				void *ctx),
		     void *ctx);
/* Flushes write-behind feedback of every engine; the first error. */
int kd_tenants_flush(void);
void kd_tenants_close(void);

/* ---- jobs.c: training jobs ------------------------------------------- */

/* Starts a training job of r's tenant (its engine open): 0 or an error
 * status set on r. */
int kd_job_start(kd_req *r, char *id, size_t cap);
/* The same without a request (the scheduler): 0, or the HTTP status it
 * would have answered (409 busy, trained elsewhere or nothing to train,
 * 503). */
int kd_job_start_for(uint64_t tenant, const char *trigger, char *id,
		     size_t cap);
/* 1 while a job of @p tenant is queued or running here. */
int kd_job_active(uint64_t tenant);
/* Job @p id of r's tenant as JSON (*out): from memory when this process
 * runs it, else from the store (where a record left queued or running by
 * a process that died is marked failed first); 0 or a knytt error
 * (KNYTT_ENOTFOUND). */
int kd_job_get(kd_req *r, const char *id, cJSON **out);
/* One job as seen by GET /metrics. */
typedef struct kd_job_stat {
	uint64_t tenant;
	const char *state; /* queued, running, done, failed */
	double seconds;    /* running time so far, or until it ended */
	double loss;       /* last reported */
	int64_t finished_ms; /* 0 while it runs */
	knytt_train_eval ev; /* when done (ev.users 0: not evaluated) */
} kd_job_stat;
/* Copies up to @p cap jobs, newest first; how many were copied. */
int kd_jobs_snapshot(kd_job_stat *out, int cap);
/* Cancels running jobs and joins their threads. */
void kd_jobs_stop(void);

/* ---- schedule.c: per-tenant training schedule ------------------------- */

typedef struct kd_sched kd_sched;
/* The schedule of @p tenant (stored, else the defaults) read through
 * @p st (the tenant selected on it); 0 or a knytt error. */
int kd_sched_get(knytt_store *st, kd_sched *out);
/* Starts / stops the scheduler thread. */
int kd_sched_start(void);
void kd_sched_stop(void);
int h_schedule_get(kd_req *r);
int h_schedule_put(kd_req *r);
/* A schedule as JSON. */
cJSON *kd_sched_json(const kd_sched *s);
/* An evaluation as JSON (NULL when ev->users is 0). */
cJSON *kd_eval_json(const knytt_train_eval *ev);

/* ---- replica.c: several knyttd on one PostgreSQL database ------------- */

/* Starts listening (when kd_cfg.replicas); 0 or -1. */
int kd_replica_start(void);
void kd_replica_stop(void);
/* After a handler: tells the other replicas what r changed (items). */
void kd_replica_after(const kd_req *r);
/* A feedback event r's handler accepted (stored, at @p ts_ms). */
void kd_replica_feedback(const kd_req *r, const char *user,
			 const char *item, const char *type, double value,
			 int64_t ts_ms);
/* A model version of @p tenant swapped in here, sent on @p st. */
void kd_replica_model(knytt_store *st, uint64_t tenant, int64_t version);
/* The advisory lock of @p tenant's trainer on a connection of its own:
 * 1 held (*out: the connection to close when done, NULL when there is
 * nothing to hold: SQLite), 0 another process holds it, < 0 error. */
int kd_replica_trainer_lock(uint64_t tenant, knytt_store **out);
/* Releases it (at once, not when the server sees the connection go)
 * and closes @p st; NULL is a no-op. */
void kd_replica_trainer_unlock(uint64_t tenant, knytt_store *st);
/* For GET /metrics. */
typedef struct kd_replica_stat {
	int on, connected;
	unsigned long long received, applied, reconnects, caught_up;
} kd_replica_stat;
void kd_replica_stats(kd_replica_stat *out);
/* ---- counted.c: events counted lately, for the catch-up --------------- */

/* The key of a feedback event (never 0). */
uint64_t kd_counted_key(uint64_t tenant, const char *user, const char *item,
			const char *type, int64_t ts_ms);
/* This process counted the event (its own write, or a notification). */
void kd_counted_add(uint64_t key);
/* 1 if it was counted (and is forgotten now), else 0. */
int kd_counted_take(uint64_t key);
/* The catch-up counted it; the notification of it, if it comes, is
 * claimed with kd_counted_take_streamed. */
void kd_counted_streamed(uint64_t key);
int kd_counted_take_streamed(uint64_t key);
/* The covered interaction mark moved: entries age by one. */
void kd_counted_tick(void);
/* Whether the set of counted events overflowed; starting afresh. */
int kd_counted_overflowed(void);
void kd_counted_reset_overflow(void);

/* ---- embedder.c: a tenant's embedding service ------------------------ */

/* The settings of a tenant's embedding service (stored as the metadata
 * of model "knyttd-embedder"). */
typedef struct kd_emb_conf {
	int on;              /* 0: none configured */
	char url[2048];      /* base URL, http:// or https:// */
	char model[256];     /* "" = none sent */
	char api_key[1024];  /* "" = none; wiped by kd_emb_conf_clear */
	uint32_t dim;        /* 1..4096 */
	long timeout_ms;     /* 0 = the library's default */
	int64_t version;     /* stored settings version, 0 = never set */
} kd_emb_conf;

/* The stored settings of the tenant selected on @p st: 0 or a knytt
 * error. */
int kd_emb_conf_get(knytt_store *st, kd_emb_conf *out);
/* Only the version (0 = never set): 0 or a knytt error. */
int kd_emb_version(knytt_store *st, int64_t *out);
/* An open embedder for @p c: 0 or a knytt error, *field (may be NULL)
 * naming the setting refused (NULL: none was). */
int kd_emb_make(const kd_emb_conf *c, knytt_embedder **out,
		const char **field);
/* Wipes the API key. */
void kd_emb_conf_clear(kd_emb_conf *c);
int h_embedder_get(kd_req *r);
int h_embedder_put(kd_req *r);
int h_embedder_delete(kd_req *r);
int h_admin_embedder_get(kd_req *r);
int h_admin_embedder_put(kd_req *r);
int h_admin_embedder_delete(kd_req *r);

/* ---- handlers (h_*.c) ------------------------------------------------- */

int h_health(kd_req *r);
int h_ready(kd_req *r);
int h_admin_tenant_create(kd_req *r);
int h_admin_key_create(kd_req *r);
int h_admin_key_revoke(kd_req *r);
int h_auth_register(kd_req *r);
int h_auth_login(kd_req *r);
int h_items_post(kd_req *r);
int h_item_get(kd_req *r);
int h_item_patch(kd_req *r);
int h_item_delete(kd_req *r);
int h_interactions_post(kd_req *r);
int h_feedback_post(kd_req *r);
int h_recommend(kd_req *r);
int h_search(kd_req *r);
int h_similar(kd_req *r);
int h_trending(kd_req *r);
int h_user_put(kd_req *r);
int h_user_get(kd_req *r);
int h_favorites_list(kd_req *r);
int h_favorite_get(kd_req *r);
int h_favorite_put(kd_req *r);
int h_favorite_delete(kd_req *r);
int h_train(kd_req *r);
int h_job_get(kd_req *r);
int h_models(kd_req *r);
/* ---- h_experiments.c: search analytics and A/B experiments ---------- */
int h_analytics_searches(kd_req *r);
int h_experiments_list(kd_req *r);
int h_experiment_create(kd_req *r);
int h_experiment_get(kd_req *r);
int h_experiment_stop(kd_req *r);
/* Recommend / search for the body's "experiment" if it names one (else
 * the plain engine call): the result count or a library error; *xo the
 * answer's "experiment" object or NULL; *st an answered status (return
 * it) or 0. */
int kd_exp_recommend(kd_req *r, const cJSON *b, knytt_engine *e,
		     const char *user, size_t k, const knytt_filter *f,
		     const knytt_rec_options *opt, knytt_result *res,
		     cJSON **xo, int *st);
int kd_exp_search(kd_req *r, const cJSON *b, knytt_engine *e,
		  const char *text, const float *vec, uint32_t dim, size_t k,
		  const knytt_filter *f, const char *user, knytt_result *res,
		  uint64_t *log_id, cJSON **xo, int *st);

/* Shared by handlers (h_items.c): an item as JSON (NULL on no memory). */
cJSON *kd_item_json(const knytt_item *it);
/* Results of a query as the text {"results": [...] -- the object left
 * open for the caller's fields -- with each item's fields; *got: how many
 * results were written (gone items are left out). */
void kd_results_text(kd_req *r, kd_buf *b, const knytt_result *res, int n,
		     int *got);
/* The "filters" object of a query into @p f: 0 or 400/422. */
int kd_filters(kd_req *r, const cJSON *body, knytt_filter *f);

/* Microseconds of a monotonic clock. */
int64_t kd_now_us(void);
/* 1 when shutting down (SIGTERM): /ready answers 503. */
extern volatile int kd_draining;

#endif
