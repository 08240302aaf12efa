/*
 * h_shopper.c -- shoppers register and log in (with a public or secret
 * key of the shop); both answer a signed token that lets a public key
 * act for that shopper alone (auth.c).
 */
#include "knyttd.h"

#include <sodium.h>
#include <string.h>
#include <time.h>

#define PW_MIN 8
#define PW_MAX 1024

/* The user_id and password of the body: 0, 400 or 422. */
static int read_creds(kd_req *r, const char **user, const char **pw)
{
	const cJSON *b;
	int rc;
	*user = *pw = NULL;
	if ((rc = kd_body_obj(r, &b)) ||
	    (rc = kd_get_str(r, b, "user_id", user)) > 1 ||
	    (rc = kd_get_str(r, b, "password", pw)) > 1)
		return rc;
	if (!*user || !**user)
		return kd_err(r, 422, "missing_field", "user_id",
			      "field user_id is required");
	if (!*pw)
		return kd_err(r, 422, "missing_field", "password",
			      "field password is required");
	return 0;
}

static int token_answer(kd_req *r, int status, const char *user)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t exp = ((int64_t)ts.tv_sec + kd_cfg.token_ttl_s) * 1000;
	char tok[1024];
	if (kd_token_make(r->tenant, user, exp, tok, sizeof tok))
		return kd_err(r, 500, "internal", NULL, "token too long");
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "user_id", user);
	cJSON_AddStringToObject(o, "token", tok);
	cJSON_AddNumberToObject(o, "expires_at_ms", (double)exp);
	return kd_ok(r, status, o);
}

int h_auth_register(kd_req *r)
{
	const char *user, *pw;
	int rc = read_creds(r, &user, &pw);
	if (rc)
		return rc;
	size_t n = strlen(pw);
	if (n < PW_MIN || n > PW_MAX)
		return kd_err(r, 422, "invalid_field", "password",
			      "field password must have %d..%d bytes", PW_MIN,
			      PW_MAX);
	char hash[crypto_pwhash_STRBYTES];
	if (kd_pw_hash(pw, hash, sizeof hash))
		return kd_err(r, 503, "no_memory", NULL,
			      "cannot hash the password (out of memory)");
	if ((rc = knytt_store_credential_set(r->st, user, hash, 0)))
		return kd_liberr(r, rc, "user_id");
	return token_answer(r, 201, user);
}

/* A hash to verify against when the user is unknown, so that a wrong
 * user id takes as long as a wrong password. */
static char dummy[crypto_pwhash_STRBYTES];
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static void dummy_init(void)
{
	if (kd_pw_hash("knyttd-no-such-user", dummy, sizeof dummy))
		dummy[0] = 0;
}

int h_auth_login(kd_req *r)
{
	const char *user, *pw;
	int rc = read_creds(r, &user, &pw);
	if (rc)
		return rc;
	char hash[513];
	rc = knytt_store_credential_get(r->st, user, hash, sizeof hash);
	if (rc == KNYTT_ENOTFOUND || rc == KNYTT_EINVAL) {
		pthread_once(&dummy_once, dummy_init);
		if (dummy[0])
			kd_pw_verify(dummy, pw);
	} else if (rc) {
		return kd_liberr(r, rc, NULL);
	}
	if (rc || kd_pw_verify(hash, pw) != 0)
		return kd_err(r, 401, "unauthorized", NULL,
			      "wrong user_id or password");
	return token_answer(r, 200, user);
}
