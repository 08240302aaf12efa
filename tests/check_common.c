/*
 * check_common.c -- version, error codes and messages, CRC-32C.
 */
#include "../lib/internal.h"
#include "testutil.h"

#include <string.h>

START_TEST(version_matches_header)
{
	ck_assert_str_eq(knytt_version(), KNYTT_VERSION_STRING);
	ck_assert_int_eq(knytt_version_number(), KNYTT_VERSION_NUMBER);
}
END_TEST

START_TEST(every_code_has_name_and_text)
{
	for (int c = 0; c > KNYTT__ERR_LAST; c--) {
		ck_assert_str_ne(knytt_errstr(c), "unknown error");
		ck_assert_str_ne(knytt_errname(c), "KNYTT_UNKNOWN");
		ck_assert_int_eq(strncmp(knytt_errname(c), "KNYTT_", 6), 0);
	}
	ck_assert_str_eq(knytt_errname(KNYTT_ECORRUPT), "KNYTT_ECORRUPT");
	ck_assert_str_eq(knytt_errstr(12345), "unknown error");
	ck_assert_str_eq(knytt_errname(12345), "KNYTT_UNKNOWN");
}
END_TEST

START_TEST(message_is_thread_local_and_formatted)
{
	ck_assert_int_eq(knytt__err(KNYTT_EINVAL, "query has %d dims", 96),
			 KNYTT_EINVAL);
	ck_assert_str_eq(knytt_errmsg(), "query has 96 dims");
	ck_assert_int_eq(knytt__err_errno(KNYTT_EIO, 2, "open %s", "x"),
			 KNYTT_EIO);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "open x: "));
	knytt_free(NULL);
	knytt_free(malloc(16));
}
END_TEST

START_TEST(crc32c_known_values)
{
	/* RFC 3720 B.4 test vectors */
	unsigned char zeros[32] = { 0 }, ones[32], inc[32];
	memset(ones, 0xff, sizeof ones);
	for (int i = 0; i < 32; i++)
		inc[i] = (unsigned char)i;
	ck_assert_uint_eq(knytt__crc32c(0, zeros, 32), 0x8A9136AAu);
	ck_assert_uint_eq(knytt__crc32c(0, ones, 32), 0x62A8AB43u);
	ck_assert_uint_eq(knytt__crc32c(0, inc, 32), 0x46DD794Eu);
	ck_assert_uint_eq(knytt__crc32c(0, "123456789", 9), 0xE3069283u);
	/* incremental = whole */
	uint32_t c = knytt__crc32c(0, "1234", 4);
	ck_assert_uint_eq(knytt__crc32c(c, "56789", 5), 0xE3069283u);
}
END_TEST

Suite *common_suite(void)
{
	Suite *s = suite_create("common");
	TCase *tc = tcase_create("core");
	tcase_add_test(tc, version_matches_header);
	tcase_add_test(tc, every_code_has_name_and_text);
	tcase_add_test(tc, message_is_thread_local_and_formatted);
	tcase_add_test(tc, crc32c_known_values);
	suite_add_tcase(s, tc);
	return s;
}
