/*
 * check_storeauth.c -- lib/store/auth.c: shoppers' password hashes,
 * service secrets and tenant names by id.
 */
#include "testutil.h"

#include <knytt.h>
#include <unistd.h>

START_TEST(tenant_name_by_id)
{
	knytt_store *st = NULL;
	ck_assert_int_eq(knytt_store_open("sqlite::memory:", &st), 0);
	uint64_t a = 0;
	ck_assert_int_eq(knytt_store_tenant_create(st, "acme", &a), 0);
	char name[KNYTT_STORE_MAX_ID + 1];
	ck_assert_int_eq(knytt_store_tenant_name(st, a, name, sizeof name), 0);
	ck_assert_str_eq(name, "acme");
	ck_assert_int_eq(knytt_store_tenant_name(st, a, name, 4), KNYTT_ERANGE);
	ck_assert_int_eq(knytt_store_tenant_name(st, a + 7, name, sizeof name),
			 KNYTT_ENOTFOUND);
	ck_assert_int_eq(knytt_store_tenant_name(NULL, a, name, sizeof name),
			 KNYTT_EINVAL);
	knytt_store_close(st);
}
END_TEST

START_TEST(credentials_per_tenant)
{
	knytt_store *st = NULL;
	ck_assert_int_eq(knytt_store_open("sqlite::memory:", &st), 0);
	uint64_t a = 0, b = 0;
	char h[513];
	ck_assert_int_eq(knytt_store_credential_set(st, "u1", "$x$1", 0),
			 KNYTT_ESTATE);
	ck_assert_int_eq(knytt_store_tenant_create(st, "a", &a), 0);
	ck_assert_int_eq(knytt_store_tenant_create(st, "b", &b), 0);
	ck_assert_int_eq(knytt_store_use_tenant(st, a), 0);
	ck_assert_int_eq(knytt_store_credential_set(st, "u1", "$x$1", 0), 0);
	/* the user was created with it */
	uint64_t uid = 0;
	ck_assert_int_eq(knytt_store_user_get(st, "u1", &uid, NULL, NULL), 0);
	ck_assert_uint_ne(uid, 0);
	ck_assert_int_eq(knytt_store_credential_set(st, "u1", "$x$2", 0),
			 KNYTT_EEXIST);
	ck_assert_int_eq(knytt_store_credential_get(st, "u1", h, sizeof h), 0);
	ck_assert_str_eq(h, "$x$1");
	ck_assert_int_eq(knytt_store_credential_set(st, "u1", "$x$3", 1), 0);
	ck_assert_int_eq(knytt_store_credential_get(st, "u1", h, sizeof h), 0);
	ck_assert_str_eq(h, "$x$3");
	ck_assert_int_eq(knytt_store_credential_get(st, "u1", h, 3),
			 KNYTT_ERANGE);
	ck_assert_int_eq(knytt_store_credential_get(st, "nobody", h, sizeof h),
			 KNYTT_ENOTFOUND);
	ck_assert_int_eq(knytt_store_credential_set(st, "", "$x", 0),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_store_credential_set(st, "u\x01", "$x", 0),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_store_credential_set(st, "u2", "", 0),
			 KNYTT_EINVAL);
	/* tenant b has its own u1, without a password */
	ck_assert_int_eq(knytt_store_use_tenant(st, b), 0);
	ck_assert_int_eq(knytt_store_credential_get(st, "u1", h, sizeof h),
			 KNYTT_ENOTFOUND);
	ck_assert_int_eq(knytt_store_credential_set(st, "u1", "$y$1", 0), 0);
	ck_assert_int_eq(knytt_store_use_tenant(st, a), 0);
	ck_assert_int_eq(knytt_store_credential_get(st, "u1", h, sizeof h), 0);
	ck_assert_str_eq(h, "$x$3");
	knytt_store_close(st);
}
END_TEST

START_TEST(secrets_created_once)
{
	char path[] = "/tmp/knytt-secret-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	close(fd);
	char uri[64];
	snprintf(uri, sizeof uri, "sqlite:%s", path);
	knytt_store *s1 = NULL, *s2 = NULL;
	ck_assert_int_eq(knytt_store_open(uri, &s1), 0);
	ck_assert_int_eq(knytt_store_open(uri, &s2), 0);
	unsigned char x[32], y[32], z[32];
	ck_assert_int_eq(knytt_store_secret(s1, "k", x, sizeof x), 0);
	ck_assert_int_eq(knytt_store_secret(s2, "k", y, sizeof y), 0);
	ck_assert_mem_eq(x, y, sizeof x);
	ck_assert_int_eq(knytt_store_secret(s1, "other", z, sizeof z), 0);
	ck_assert(memcmp(x, z, sizeof x) != 0);
	ck_assert_int_eq(knytt_store_secret(s1, "k", z, 16), KNYTT_ECORRUPT);
	ck_assert_int_eq(knytt_store_secret(s1, "k", z, 8), KNYTT_EINVAL);
	ck_assert_int_eq(knytt_store_secret(s1, "", z, 16), KNYTT_EINVAL);
	knytt_store_close(s1);
	knytt_store_close(s2);
	tu_rm_db(path);
}
END_TEST

Suite *storeauth_suite(void)
{
	Suite *s = suite_create("storeauth");
	TCase *tc = tcase_create("sqlite");
	tcase_add_test(tc, tenant_name_by_id);
	tcase_add_test(tc, credentials_per_tenant);
	tcase_add_test(tc, secrets_created_once);
	suite_add_tcase(s, tc);
	return s;
}
