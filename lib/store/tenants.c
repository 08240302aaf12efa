/*
 * tenants.c -- tenants and their API keys (hashed).  Moved from store.c.
 */
#include "store_int.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <math.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define O (st->ops)

/* ---- tenants and keys -------------------------------------------------- */

/* Tenant names: 1..64 of A-Z a-z 0-9 _ - ., starting with a letter or
 * digit.  They appear in URLs, logs and command lines; no file name is
 * made from them (location.c uses the tenant id). */
static int check_tenant_name(const char *name)
{
	if (!name || !*name)
		return knytt__err_field(KNYTT_EINVAL, "name", "field name: the tenant name "
						"is empty");
	size_t n = strlen(name);
	if (n > 64)
		return knytt__err_field(KNYTT_EINVAL, "name", "field name: the tenant name "
						"has %zu bytes, at most 64",
				  n);
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			    (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '_' && c != '-' && c != '.')))
			return knytt__err_field(KNYTT_EINVAL, "name",
					  "field name: tenant name '%.64s' "
					  "may only hold A-Z a-z 0-9 _ - . and "
					  "must start with a letter or digit",
					  name);
	}
	return KNYTT_OK;
}

int knytt_store_tenant_create(knytt_store *st, const char *name,
			      uint64_t *id)
{
	if (!st)
		return knytt__err(KNYTT_EINVAL, "store is NULL");
	int rc = check_tenant_name(name);
	if (rc)
		return rc;
	knytt__stmt *q = knytt__st_q(st, Q_TENANT_INS);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_text(q, 1, name);
	O->bind_i64(q, 2, knytt__now_ms());
	int row = 0;
	rc = knytt__st_step_id(st, q, &row, id);
	O->reset(q);
	if (rc == KNYTT_EEXIST)
		return knytt__err(KNYTT_EEXIST, "tenant '%s' already exists",
				  name);
	return rc;
}

int knytt_store_tenant_find(knytt_store *st, const char *name, uint64_t *id)
{
	if (!st)
		return knytt__err(KNYTT_EINVAL, "store is NULL");
	int rc = knytt__st_check_id("name", name);
	if (rc)
		return rc;
	knytt__stmt *q = knytt__st_q(st, Q_TENANT_FIND);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_text(q, 1, name);
	int row = 0;
	rc = knytt__st_step_one(st, q, &row);
	if (rc == 0 && row && id)
		*id = (uint64_t)O->col_i64(q, 0);
	O->reset(q);
	if (rc == 0 && !row)
		return knytt__err(KNYTT_ENOTFOUND, "no tenant '%s'", name);
	return rc;
}

int knytt_store_use_tenant(knytt_store *st, uint64_t tenant)
{
	if (!st)
		return knytt__err(KNYTT_EINVAL, "store is NULL");
	knytt__stmt *q = knytt__st_q(st, Q_TENANT_GET);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)tenant);
	int row = 0;
	int rc = knytt__st_step_one(st, q, &row);
	O->reset(q);
	if (rc)
		return rc;
	if (!row)
		return knytt__err(KNYTT_ENOTFOUND, "no tenant with id %llu",
				  (unsigned long long)tenant);
	st->tenant = tenant;
	return 0;
}

uint64_t knytt_store_tenant(const knytt_store *st)
{
	return st ? st->tenant : 0;
}

static void sha256(const char *key, unsigned char md[32])
{
	unsigned int n = 32;
	EVP_Digest(key, strlen(key), md, &n, EVP_sha256(), NULL);
}

/* "kn_sk_" | "kn_pk_" + 64 lower-case hex digits. */
static int key_wellformed(const char *key)
{
	if (strlen(key) != KNYTT_STORE_KEY_LEN)
		return 0;
	if (strncmp(key, "kn_sk_", 6) != 0 && strncmp(key, "kn_pk_", 6) != 0)
		return 0;
	for (const char *p = key + 6; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return 0;
	return 1;
}

int knytt_store_key_create(knytt_store *st, knytt_key_scope scope,
			   char *key)
{
	int rc = knytt__st_need_tenant(st);
	if (rc)
		return rc;
	if (!key)
		return knytt__err(KNYTT_EINVAL, "key buffer is NULL");
	if (scope != KNYTT_KEY_SECRET && scope != KNYTT_KEY_PUBLIC)
		return knytt__err(KNYTT_EINVAL, "scope %d is not a key scope",
				  (int)scope);
	unsigned char rnd[32];
	if (RAND_bytes(rnd, sizeof rnd) != 1)
		return knytt__err(KNYTT_EIO, "RAND_bytes failed");
	memcpy(key, scope == KNYTT_KEY_SECRET ? "kn_sk_" : "kn_pk_", 6);
	for (int i = 0; i < 32; i++)
		snprintf(key + 6 + 2 * i, 3, "%02x", rnd[i]);
	OPENSSL_cleanse(rnd, sizeof rnd);
	unsigned char md[32];
	sha256(key, md);
	knytt__stmt *q = knytt__st_q(st, Q_KEY_INS);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_blob(q, 2, md, 32);
	O->bind_i64(q, 3, scope);
	O->bind_i64(q, 4, knytt__now_ms());
	int row;
	rc = knytt__st_step_one(st, q, &row);
	O->reset(q);
	return rc;
}

int knytt_store_key_lookup(knytt_store *st, const char *key,
			   uint64_t *tenant, knytt_key_scope *scope)
{
	if (!st || !key)
		return knytt__err(KNYTT_EINVAL, "store or key is NULL");
	if (!key_wellformed(key))
		return knytt__err(KNYTT_EAUTH, "malformed API key");
	unsigned char md[32];
	sha256(key, md);
	knytt__stmt *q = knytt__st_q(st, Q_KEY_FIND);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_blob(q, 1, md, 32);
	int row = 0;
	int rc = knytt__st_step_one(st, q, &row);
	if (rc == 0 && row) {
		size_t n = 0;
		const void *h = O->col_blob(q, 3, &n);
		if (n != 32 || CRYPTO_memcmp(h, md, 32) != 0)
			rc = knytt__err(KNYTT_EAUTH, "unknown API key");
		else if (!O->col_null(q, 2))
			rc = knytt__err(KNYTT_EAUTH, "API key was revoked");
		else {
			if (tenant)
				*tenant = (uint64_t)O->col_i64(q, 0);
			if (scope)
				*scope = (knytt_key_scope)O->col_i64(q, 1);
		}
	} else if (rc == 0) {
		rc = knytt__err(KNYTT_EAUTH, "unknown API key");
	}
	O->reset(q);
	return rc;
}

int knytt_store_key_revoke(knytt_store *st, const char *key)
{
	int rc = knytt__st_need_tenant(st);
	if (rc)
		return rc;
	if (!key)
		return knytt__err(KNYTT_EINVAL, "key is NULL");
	if (!key_wellformed(key))
		return knytt__err(KNYTT_ENOTFOUND, "malformed API key");
	unsigned char md[32];
	sha256(key, md);
	knytt__stmt *q = knytt__st_q(st, Q_KEY_REVOKE);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_blob(q, 2, md, 32);
	O->bind_i64(q, 3, knytt__now_ms());
	int row;
	rc = knytt__st_step_one(st, q, &row);
	int64_t ch = O->changes(q);
	O->reset(q);
	if (rc)
		return rc;
	return ch ? 0 : knytt__err(KNYTT_ENOTFOUND,
				   "no such API key for this tenant");
}
