/*
 * auth.c -- who is calling: the admin key, tenants' API keys, shoppers'
 * passwords and tokens.
 *
 *  - The admin key comes from KNYTT_ADMIN_KEY or --admin-key-file, never
 *    argv (which every user of the machine can read in /proc).  It is
 *    compared through BLAKE2b digests with sodium_memcmp, so neither its
 *    length nor a matching prefix shows in the time taken.
 *  - API keys are looked up in the store (only their SHA-256 is kept
 *    there), on every request: a revoked key stops working at once, in
 *    every process on the database.
 *  - Shoppers' passwords are hashed with argon2id (libsodium's
 *    crypto_pwhash_str: salt and parameters travel in the PHC string).
 *  - A login answers a token "kt1.<tenant>.<expiry ms>.<hex user>.<mac>"
 *    where mac is HMAC-SHA-256 over everything before it, with a key kept
 *    in the store (knytt_store_secret "knyttd.token"), so any knyttd on
 *    the same database verifies it.  The tenant is inside the signed
 *    part: a token of one shop is worthless at another.
 */
#include "knyttd.h"

#include <microhttpd.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned char token_key[crypto_auth_hmacsha256_KEYBYTES];
static unsigned char admin_digest[crypto_generichash_BYTES];
static int have_admin;

int kd_auth_init(knytt_store *st)
{
	if (sodium_init() < 0) {
		kd_log("{\"level\":\"error\",\"msg\":\"sodium_init failed\"}");
		return -1;
	}
	int rc = knytt_store_secret(st, "knyttd.token", token_key,
				    sizeof token_key);
	if (rc) {
		kd_log("{\"level\":\"error\",\"msg\":\"token key: %s\"}",
		       knytt_errmsg());
		return -1;
	}
	have_admin = kd_cfg.admin_key[0] != 0;
	if (have_admin)
		crypto_generichash(admin_digest, sizeof admin_digest,
				   (const unsigned char *)kd_cfg.admin_key,
				   strlen(kd_cfg.admin_key), NULL, 0);
	sodium_memzero(kd_cfg.admin_key, sizeof kd_cfg.admin_key);
	return 0;
}

static int is_admin(const char *key)
{
	if (!have_admin)
		return 0;
	unsigned char d[crypto_generichash_BYTES];
	crypto_generichash(d, sizeof d, (const unsigned char *)key,
			   strlen(key), NULL, 0);
	return sodium_memcmp(d, admin_digest, sizeof d) == 0;
}

/*
 * Keys found in the store are remembered for kd_cfg.key_cache_ms (1 s by
 * default), which spares a store query per request: at 2,000 requests/s
 * the lookup and the tenant selection were a tenth of knyttd's CPU
 * (perf, benchmarks/serve).  A key revoked through this process is
 * forgotten at once (kd_key_cache_clear); one revoked through another
 * process on the same database stops working within the TTL.  Entries
 * are keyed by the key's BLAKE2b digest, so the table holds no key.
 */
#define KC_SLOTS 512
typedef struct kc_entry {
	unsigned char digest[crypto_generichash_BYTES];
	uint64_t tenant;
	knytt_key_scope scope;
	int64_t expires_us; /* 0 = empty */
} kc_entry;
static kc_entry kcache[KC_SLOTS];
static pthread_mutex_t kc_mu = PTHREAD_MUTEX_INITIALIZER;

static unsigned kc_slot(const char *key, unsigned char *d)
{
	crypto_generichash(d, crypto_generichash_BYTES,
			   (const unsigned char *)key, strlen(key), NULL, 0);
	return (unsigned)(d[0] | d[1] << 8) % KC_SLOTS;
}

static int cache_get(const char *key, uint64_t *tenant,
		     knytt_key_scope *scope)
{
	if (kd_cfg.key_cache_ms <= 0)
		return 0;
	unsigned char d[crypto_generichash_BYTES];
	unsigned i = kc_slot(key, d);
	int hit = 0;
	pthread_mutex_lock(&kc_mu);
	kc_entry *e = &kcache[i];
	if (e->expires_us > kd_now_us() &&
	    sodium_memcmp(e->digest, d, sizeof d) == 0) {
		*tenant = e->tenant;
		*scope = e->scope;
		hit = 1;
	}
	pthread_mutex_unlock(&kc_mu);
	return hit;
}

static void cache_put(const char *key, uint64_t tenant, knytt_key_scope scope)
{
	if (kd_cfg.key_cache_ms <= 0)
		return;
	unsigned char d[crypto_generichash_BYTES];
	unsigned i = kc_slot(key, d);
	pthread_mutex_lock(&kc_mu);
	memcpy(kcache[i].digest, d, sizeof d);
	kcache[i].tenant = tenant;
	kcache[i].scope = scope;
	kcache[i].expires_us = kd_now_us() + kd_cfg.key_cache_ms * 1000;
	pthread_mutex_unlock(&kc_mu);
}

void kd_key_cache_clear(void)
{
	pthread_mutex_lock(&kc_mu);
	memset(kcache, 0, sizeof kcache);
	pthread_mutex_unlock(&kc_mu);
}

int kd_authenticate(kd_req *r)
{
	const char *h = MHD_lookup_connection_value(
		r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	r->cred = KD_CRED_NONE;
	if (!h)
		return 0;
	if (strncmp(h, "Bearer ", 7) != 0 || !h[7])
		return kd_err(r, 401, "unauthorized", NULL,
			      "the Authorization header must be "
			      "'Bearer KEY'");
	const char *key = h + 7;
	if (is_admin(key)) {
		r->cred = KD_CRED_ADMIN;
		return 0;
	}
	knytt_key_scope scope;
	if (!cache_get(key, &r->tenant, &scope)) {
		knytt_store *st = kd_store();
		if (!st)
			return kd_liberr(r, KNYTT_EDB, NULL);
		int rc = knytt_store_key_lookup(st, key, &r->tenant, &scope);
		if (rc == KNYTT_EAUTH)
			return kd_err(r, 401, "unauthorized", NULL,
				      "unknown or revoked API key");
		if (rc)
			return kd_liberr(r, rc, NULL);
		cache_put(key, r->tenant, scope);
	}
	r->cred = scope == KNYTT_KEY_SECRET ? KD_CRED_SECRET : KD_CRED_PUBLIC;
	const char *tok = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
						      "X-User-Token");
	if (tok && kd_token_check(tok, r->tenant, r->user, sizeof r->user))
		return kd_err(r, 401, "unauthorized", NULL,
			      "invalid or expired user token");
	return 0;
}

int kd_may_act(kd_req *r, const char *user)
{
	if (r->cred == KD_CRED_SECRET)
		return 0;
	if (r->cred == KD_CRED_PUBLIC && r->user[0] && user &&
	    strcmp(r->user, user) == 0)
		return 0;
	if (r->cred == KD_CRED_PUBLIC && !r->user[0])
		return kd_err(r, 403, "forbidden", "user_id",
			      "a public key acts for a shopper only with "
			      "that shopper's token (X-User-Token)");
	return kd_err(r, 403, "forbidden", "user_id",
		      "this token belongs to another shopper");
}

int kd_pw_hash(const char *pw, char *out, size_t cap)
{
	if (cap < crypto_pwhash_STRBYTES)
		return -1;
	return crypto_pwhash_str_alg(out, pw, strlen(pw), kd_cfg.pwhash_ops,
				     kd_cfg.pwhash_mem,
				     crypto_pwhash_ALG_ARGON2ID13);
}

int kd_pw_verify(const char *hash, const char *pw)
{
	return crypto_pwhash_str_verify(hash, pw, strlen(pw));
}

static void mac_hex(const char *msg, size_t n, char *hex)
{
	unsigned char mac[crypto_auth_hmacsha256_BYTES];
	crypto_auth_hmacsha256_state s;
	crypto_auth_hmacsha256_init(&s, token_key, sizeof token_key);
	crypto_auth_hmacsha256_update(&s, (const unsigned char *)msg, n);
	crypto_auth_hmacsha256_final(&s, mac);
	sodium_bin2hex(hex, 2 * sizeof mac + 1, mac, sizeof mac);
}

int kd_token_make(uint64_t tenant, const char *user, int64_t exp_ms,
		  char *out, size_t cap)
{
	size_t ul = strlen(user);
	if (cap < 64 + 2 * ul + 2 * crypto_auth_hmacsha256_BYTES)
		return -1;
	int n = snprintf(out, cap, "kt1.%llu.%lld.", (unsigned long long)tenant,
			 (long long)exp_ms);
	sodium_bin2hex(out + n, 2 * ul + 1, (const unsigned char *)user, ul);
	n += (int)(2 * ul);
	out[n++] = '.';
	mac_hex(out, (size_t)n - 1, out + n);
	return 0;
}

int kd_token_check(const char *tok, uint64_t tenant, char *user, size_t cap)
{
	const char *dot = strrchr(tok, '.');
	if (strncmp(tok, "kt1.", 4) != 0 || !dot ||
	    strlen(dot + 1) != 2 * crypto_auth_hmacsha256_BYTES)
		return -1;
	char want[2 * crypto_auth_hmacsha256_BYTES + 1];
	mac_hex(tok, (size_t)(dot - tok), want);
	if (sodium_memcmp(want, dot + 1, sizeof want - 1) != 0)
		return -1;
	/* signed by us: the fields are well-formed unless the key leaked */
	char *end;
	unsigned long long t = strtoull(tok + 4, &end, 10);
	if (*end != '.' || t != tenant)
		return -1;
	long long exp = strtoll(end + 1, &end, 10);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (*end != '.' ||
	    exp <= (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000)
		return -1;
	const char *hex = end + 1;
	size_t bin = 0;
	if (sodium_hex2bin((unsigned char *)user, cap - 1, hex,
			   (size_t)(dot - hex), NULL, &bin, NULL) != 0)
		return -1;
	user[bin] = 0;
	return bin ? 0 : -1;
}
