/*
 * auth.c -- what a service needs from the store to authenticate people
 * who are not API-key holders: shoppers' password hashes, named secrets
 * (the key that signs shoppers' tokens) and a tenant's name by id.
 *
 * The store never sees a password: callers hash it (knyttd uses argon2id
 * from libsodium) and hand over the PHC string, which is stored as text.
 * These calls are rare (a register or login, once per process for a
 * secret), so their statements are prepared per call rather than kept in
 * the handle's cache, which keeps this file out of store.c's table.
 */
#include "store_int.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <string.h>

#define O (st->ops)

/* Prepares @p sql on @p st (a failure keeps the database's message). */
static knytt__stmt *prep(knytt_store *st, const char *sql)
{
	knytt__stmt *q = NULL;
	if (O->prepare(st->db, sql, &q))
		return NULL;
	return q;
}

int knytt_store_tenant_name(knytt_store *st, uint64_t id, char *name,
			    size_t cap)
{
	if (!st || !name || cap == 0)
		return knytt__err(KNYTT_EINVAL, "store or name is NULL");
	knytt__stmt *q = prep(st, "SELECT name FROM tenants WHERE id = ?1");
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)id);
	int rc = O->step(q);
	if (rc == 1) {
		const char *s = O->col_text(q, 0);
		size_t n = s ? strlen(s) : 0;
		if (n >= cap)
			rc = knytt__err(KNYTT_ERANGE, "tenant name needs %zu "
						      "bytes", n + 1);
		else {
			memcpy(name, s ? s : "", n + 1);
			rc = 0;
		}
	} else if (rc == 0) {
		rc = knytt__err(KNYTT_ENOTFOUND, "no tenant with id %llu",
				(unsigned long long)id);
	}
	O->finalize(q);
	return rc;
}

/* The checks of a shopper id: those of every external id. */
static int check_user(const char *user)
{
	int rc = knytt__check_text("user", user, KNYTT_STORE_MAX_ID, 1);
	if (rc)
		return rc;
	for (const unsigned char *p = (const unsigned char *)user; *p; p++)
		if (*p < 0x20 || *p == 0x7F)
			return knytt__err_field(KNYTT_EINVAL, "user", "field user contains "
							"a control character");
	return 0;
}

int knytt_store_credential_set(knytt_store *st, const char *user,
			       const char *hash, int replace)
{
	if (!st)
		return knytt__err(KNYTT_EINVAL, "store is NULL");
	if (!st->tenant)
		return knytt__err(KNYTT_ESTATE, "no tenant selected: call "
						"knytt_store_use_tenant first");
	int rc = check_user(user);
	if (rc || (rc = knytt__check_text("hash", hash, 512, 1)))
		return rc;
	/* user creation and the credential commit together */
	if ((rc = knytt__st_begin(st)))
		return rc;
	uint64_t uid = 0;
	if ((rc = knytt__user_ensure(st, user, &uid)))
		goto fail;
	knytt__stmt *q = prep(
		st, replace ? "INSERT INTO shopper_auth(tenant, user_id, hash,"
			      " updated) VALUES (?1, ?2, ?3, ?4) ON CONFLICT"
			      "(tenant, user_id) DO UPDATE SET hash = "
			      "excluded.hash, updated = excluded.updated"
			    : "INSERT INTO shopper_auth(tenant, user_id, hash,"
			      " updated) VALUES (?1, ?2, ?3, ?4) ON CONFLICT"
			      "(tenant, user_id) DO NOTHING");
	if (!q) {
		rc = knytt__err_keep(KNYTT_EDB);
		goto fail;
	}
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, (int64_t)uid);
	O->bind_text(q, 3, hash);
	O->bind_i64(q, 4, knytt__now_ms());
	rc = O->step(q);
	int64_t changed = rc >= 0 ? O->changes(q) : 0;
	O->finalize(q);
	if (rc < 0)
		goto fail;
	if (changed == 0) {
		rc = knytt__err(KNYTT_EEXIST, "user '%.200s' already has a "
					      "password", user);
		goto fail;
	}
	return knytt__st_commit(st);
fail:
	knytt__st_rollback(st);
	return rc;
}

int knytt_store_credential_get(knytt_store *st, const char *user, char *hash,
			       size_t cap)
{
	if (!st || !hash || cap == 0)
		return knytt__err(KNYTT_EINVAL, "store or hash is NULL");
	if (!st->tenant)
		return knytt__err(KNYTT_ESTATE, "no tenant selected: call "
						"knytt_store_use_tenant first");
	int rc = check_user(user);
	if (rc)
		return rc;
	knytt__stmt *q = prep(st, "SELECT a.hash FROM shopper_auth a JOIN "
				  "users u ON u.id = a.user_id WHERE "
				  "a.tenant = ?1 AND u.tenant = ?1 AND "
				  "u.ext_id = ?2");
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, user);
	rc = O->step(q);
	if (rc == 1) {
		const char *s = O->col_text(q, 0);
		size_t n = s ? strlen(s) : 0;
		if (n >= cap)
			rc = knytt__err(KNYTT_ERANGE, "hash needs %zu bytes",
					n + 1);
		else {
			memcpy(hash, s ? s : "", n + 1);
			rc = 0;
		}
	} else if (rc == 0) {
		rc = knytt__err(KNYTT_ENOTFOUND, "user '%.200s' has no "
						 "password", user);
	}
	O->finalize(q);
	return rc;
}

/* Inserts @p len fresh random bytes as secret @p name unless one exists
 * (two processes racing both insert-or-ignore, then both read the
 * winner's). */
static int secret_insert(knytt_store *st, const char *name, size_t len)
{
	unsigned char rnd[256];
	if (RAND_bytes(rnd, (int)len) != 1)
		return knytt__err(KNYTT_EIO, "RAND_bytes failed");
	knytt__stmt *q = prep(st, "INSERT INTO service_secrets(name, value, "
				  "created) VALUES (?1, ?2, ?3) ON CONFLICT"
				  "(name) DO NOTHING");
	if (!q) {
		OPENSSL_cleanse(rnd, sizeof rnd);
		return knytt__err_keep(KNYTT_EDB);
	}
	O->bind_text(q, 1, name);
	O->bind_blob(q, 2, rnd, len);
	O->bind_i64(q, 3, knytt__now_ms());
	int rc = O->step(q);
	O->finalize(q);
	OPENSSL_cleanse(rnd, sizeof rnd);
	return rc < 0 ? rc : 0;
}

int knytt_store_secret(knytt_store *st, const char *name, unsigned char *out,
		       size_t len)
{
	if (!st || !out)
		return knytt__err(KNYTT_EINVAL, "store or out is NULL");
	int rc = knytt__check_text("name", name, KNYTT_STORE_MAX_ID, 1);
	if (rc)
		return rc;
	if (len < 16 || len > 256)
		return knytt__err(KNYTT_EINVAL, "len %zu is not in 16..256",
				  len);
	if ((rc = secret_insert(st, name, len)))
		return rc;
	knytt__stmt *q = prep(st, "SELECT value FROM service_secrets WHERE "
				  "name = ?1");
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_text(q, 1, name);
	rc = O->step(q);
	if (rc == 1) {
		size_t n = 0;
		const void *v = O->col_blob(q, 0, &n);
		if (n != len || !v)
			rc = knytt__err(KNYTT_ECORRUPT, "secret '%.200s' has "
						"%zu bytes, not %zu", name, n,
					len);
		else {
			memcpy(out, v, len);
			rc = 0;
		}
	} else if (rc == 0) {
		rc = knytt__err(KNYTT_EDB, "secret '%.200s' vanished", name);
	}
	O->finalize(q);
	return rc;
}
