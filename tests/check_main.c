/*
 * check_main.c -- runs every suite.  CK_RUN_SUITE / CK_RUN_CASE select
 * one, CK_FORK=no runs in-process (for gdb), CK_EXCLUDE_TAGS=postgres
 * skips the PostgreSQL cases.
 */
#include "suites.h"

#include <stdlib.h>

int main(void)
{
	SRunner *sr = srunner_create(NULL);
#define KNYTT_SUITE(part) srunner_add_suite(sr, part##_suite());
#include "suites.inc"
#undef KNYTT_SUITE
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
