/*
 * kdtest.h -- helpers of the knyttd suites: start build/bin/knyttd on
 * 127.0.0.1 on a free port with a temporary SQLite store, and talk to it
 * over real HTTP with libcurl.
 */
#ifndef KNYTT_KDTEST_H
#define KNYTT_KDTEST_H

#include <cJSON.h>
#include <sys/types.h>

#define KD_ADMIN "test-admin-key-0123456789"

typedef struct kd_srv {
	pid_t pid;
	unsigned port;
	char dir[64];  /* temporary directory holding the store */
	char uri[128]; /* its store URI */
	char base[64]; /* http://127.0.0.1:PORT */
} kd_srv;

/* Starts knyttd on the store in @p s->dir (made when empty) with the
 * extra arguments @p extra (NULL-terminated, may be NULL).  0 or -1. */
int kd_start(kd_srv *s, const char *const *extra);
/* SIGTERM, then waits: the exit status, or -1 if it had to be killed. */
int kd_stop(kd_srv *s);
/* Removes the store directory. */
void kd_cleanup(kd_srv *s);

/* One HTTP exchange.  @p key: the Bearer key (NULL = none); @p token:
 * X-User-Token (NULL = none); @p body: sent as application/json (NULL =
 * no body).  Returns the status (0 when the connection failed) and, if
 * @p out is not NULL, the parsed answer (cJSON_Delete it; NULL when not
 * JSON). */
long kd_call(const kd_srv *s, const char *method, const char *path,
	     const char *key, const char *token, const char *body,
	     cJSON **out);
/* Same with a given Content-Type (NULL = none), body of @p len bytes,
 * and extra header lines; @p allow gets the Allow header if not NULL. */
long kd_call_raw(const kd_srv *s, const char *method, const char *path,
		 const char *key, const char *ctype, const char *body,
		 size_t len, const char *const *headers, cJSON **out,
		 char *allow, size_t allow_cap);

/* Creates tenant @p name with a secret and a public key. */
int kd_tenant(const kd_srv *s, const char *name, char *sk, char *pk);
/* Registers shopper @p user of the public key's shop; the token. */
int kd_register(const kd_srv *s, const char *pk, const char *user,
		char *token, size_t cap);

/* The error code of an answer ("" when none). */
const char *kd_code(const cJSON *o);
/* The "field" of an error answer ("" when none or null). */
const char *kd_field(const cJSON *o);

#endif
