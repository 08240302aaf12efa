/*
 * check_common.c -- version, error codes and messages, CRC-32C, the
 * fork/join and atomic-file helpers, growable arrays.
 */
#include "../lib/internal.h"
#include "testutil.h"

#include <dirent.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	/* the field travels beside the message; text is never parsed */
	ck_assert_int_eq(knytt__err_field(KNYTT_EINVAL, "price", "bad %s",
					  "price"),
			 KNYTT_EINVAL);
	ck_assert_str_eq(knytt_errfield(), "price");
	ck_assert_str_eq(knytt_errmsg(), "bad price");
	knytt__err(KNYTT_EINVAL, "field title looks like a field");
	ck_assert_str_eq(knytt_errfield(), "");
	knytt__err_field(KNYTT_EINVAL, "x", "y");
	knytt__err_errno(KNYTT_EIO, 2, "z");
	ck_assert_str_eq(knytt_errfield(), "");
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

static void count_t(void *ctx, unsigned t)
{
	_Atomic int *seen = ctx;
	atomic_fetch_add(&seen[t], 1);
}

START_TEST(fork_join_runs_each_worker_once)
{
	static _Atomic int seen[300];
	for (unsigned nt = 0; nt <= 5; nt++) {
		for (int i = 0; i < 300; i++)
			atomic_store(&seen[i], 0);
		knytt__fork_join(nt, count_t, seen);
		unsigned want = nt ? nt : 1;
		for (unsigned t = 0; t < 8; t++)
			ck_assert_int_eq(atomic_load(&seen[t]), t < want);
	}
	/* more than the cap: capped, never out of bounds */
	for (int i = 0; i < 300; i++)
		atomic_store(&seen[i], 0);
	knytt__fork_join(1000, count_t, seen);
	ck_assert_int_eq(atomic_load(&seen[255]), 1);
	ck_assert_int_eq(atomic_load(&seen[256]), 0);
}
END_TEST

typedef struct cover {
	_Atomic int *hits;
	_Atomic int calls;
	size_t min_len;
} cover;

static void cover_range(void *ctx, size_t lo, size_t hi)
{
	cover *c = ctx;
	atomic_fetch_add(&c->calls, 1);
	ck_assert_uint_lt(lo, hi);
	if (hi - lo < c->min_len)
		c->min_len = hi - lo;
	for (size_t i = lo; i < hi; i++)
		atomic_fetch_add(&c->hits[i], 1);
}

START_TEST(parallel_for_covers_range_once_in_grains)
{
	static const size_t ns[] = { 0, 1, 7, 64, 100, 1001 };
	_Atomic int *hits = calloc(1001, sizeof *hits);
	ck_assert_ptr_nonnull(hits);
	for (size_t a = 0; a < sizeof ns / sizeof *ns; a++)
		for (unsigned nt = 1; nt <= 4; nt++) {
			size_t n = ns[a];
			cover c = { .hits = hits, .min_len = SIZE_MAX };
			for (size_t i = 0; i < n; i++)
				atomic_store(&hits[i], 0);
			knytt__parallel_for(nt, n, 10, cover_range, &c);
			for (size_t i = 0; i < n; i++)
				ck_assert_int_eq(atomic_load(&hits[i]), 1);
			ck_assert_int_le(atomic_load(&c.calls), (int)nt);
			ck_assert_int_eq(atomic_load(&c.calls) == 0, n == 0);
			/* ranges shorter than the grain only when n is */
			if (n >= 10)
				ck_assert_uint_ge(c.min_len, 10);
		}
	free(hits);
}
END_TEST

static char *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *b = malloc(4096);
	*n = fread(b, 1, 4096, f);
	fclose(f);
	return b;
}

static int files_in(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

START_TEST(atomic_write_replaces_or_keeps_old)
{
	char dir[] = "/tmp/knytt-fileio-XXXXXX";
	ck_assert_ptr_nonnull(mkdtemp(dir));
	char path[256];
	snprintf(path, sizeof path, "%s/a.bin", dir);
	ck_assert_int_eq(knytt__atomic_write(path, "old", 3), KNYTT_OK);
	ck_assert_int_eq(knytt__atomic_write(path, "newer", 5), KNYTT_OK);
	size_t n;
	char *b = slurp(path, &n);
	ck_assert_uint_eq(n, 5);
	ck_assert_int_eq(memcmp(b, "newer", 5), 0);
	free(b);
	ck_assert_int_eq(files_in(dir), 1); /* no temporary left */

	/* a writer that fails: the old file stays, the temporary goes */
	knytt__atomic_file f;
	ck_assert_int_eq(knytt__atomic_begin(&f, path), KNYTT_OK);
	ck_assert_int_eq(knytt__write_all(f.fd, "torn", 4), 0);
	ck_assert_int_eq(files_in(dir), 2);
	ck_assert_int_eq(knytt__atomic_commit(&f, 1), KNYTT_EIO);
	ck_assert_ptr_nonnull(strstr(knytt_errmsg(), "a.bin"));
	b = slurp(path, &n);
	ck_assert_uint_eq(n, 5);
	free(b);
	ck_assert_int_eq(files_in(dir), 1);
	ck_assert_int_eq(knytt__atomic_begin(&f, path), KNYTT_OK);
	knytt__atomic_abort(&f);
	ck_assert_int_eq(files_in(dir), 1);

	/* the one whole-file read of the model loaders */
	unsigned char *rb;
	size_t rn;
	ck_assert_int_eq(knytt__read_file(path, &rb, &rn), KNYTT_OK);
	ck_assert_uint_eq(rn, 5);
	ck_assert_int_eq(memcmp(rb, "newer", 5), 0);
	free(rb);
	ck_assert_int_eq(knytt__read_file(dir, &rb, &rn), KNYTT_EIO);
	ck_assert_ptr_null(rb);

	/* a folder that does not exist: a clear error, nothing written */
	char bad[300];
	snprintf(bad, sizeof bad, "%s/no/such/dir/x", dir);
	ck_assert_int_eq(knytt__atomic_write(bad, "x", 1), KNYTT_EIO);
	ck_assert_int_eq(knytt__atomic_write("", "x", 1), KNYTT_EINVAL);
	unlink(path);
	rmdir(dir);
}
END_TEST

START_TEST(grow_doubles_and_keeps_contents)
{
	int *a = NULL;
	size_t cap = 0;
	for (int i = 0; i < 1000; i++) {
		ck_assert_int_eq(KNYTT__GROW(a, cap, (size_t)i + 1), 0);
		ck_assert_uint_ge(cap, (size_t)i + 1);
		a[i] = i;
	}
	for (int i = 0; i < 1000; i++)
		ck_assert_int_eq(a[i], i);
	size_t before = cap;
	ck_assert_int_eq(KNYTT__GROW(a, cap, 3), 0); /* no shrink */
	ck_assert_uint_eq(cap, before);
	/* an impossible size fails and leaves the array as it was */
	ck_assert_int_eq(KNYTT__GROW(a, cap, SIZE_MAX / 2), -1);
	ck_assert_uint_eq(cap, before);
	ck_assert_int_eq(a[999], 999);
	free(a);
}
END_TEST

/* capacity classes: at least n, at most a quarter more, a fixed point,
 * monotone, and few: the whole point is that different counts share a
 * block size */
START_TEST(cap_class_rounds_to_few_sizes)
{
	ck_assert_uint_eq(knytt__cap_class(0), 16);
	ck_assert_uint_eq(knytt__cap_class(16), 16);
	ck_assert_uint_eq(knytt__cap_class(17), 20);
	ck_assert_uint_eq(knytt__cap_class(100), 112);
	ck_assert_uint_eq(knytt__cap_class(129), 160);
	ck_assert_uint_eq(knytt__cap_class(1024), 1024);
	ck_assert_uint_eq(knytt__cap_class(1025), 1280);
	size_t prev = 16, classes = 1;
	for (size_t n = 1; n <= 100000; n++) {
		size_t c = knytt__cap_class(n);
		ck_assert_uint_ge(c, n);
		ck_assert_uint_le(c, n < 16 ? 16 : n + n / 4);
		ck_assert_uint_eq(knytt__cap_class(c), c);
		ck_assert_uint_eq(knytt__cap_class(2 * c), 2 * c);
		ck_assert_uint_ge(c, prev);
		classes += c != prev;
		prev = c;
	}
	/* 4 per doubling from 16 to 2^17 */
	ck_assert_uint_le(classes, 1 + 4 * 13);
	ck_assert_uint_eq(knytt__cap_class(SIZE_MAX), SIZE_MAX);
}
END_TEST

/* big_realloc keeps the bytes asked for, both below 4 MiB (realloc)
 * and above (2 MiB-aligned memory, then a copy), growing and shrinking */
START_TEST(big_realloc_keeps_contents)
{
	size_t sizes[] = { 1000, 3000, 3u << 20, 5u << 20, 9u << 20, 6u << 20,
			   100 };
	unsigned char *p = NULL;
	size_t have = 0;
	for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
		size_t n = sizes[s], keep = have < n ? have : n;
		p = knytt__big_realloc(p, keep, n);
		ck_assert_ptr_nonnull(p);
		size_t bad = 0;
		for (size_t i = 0; i < keep; i++)
			bad += p[i] != (unsigned char)(i * 7 + 3);
		ck_assert_uint_eq(bad, 0);
		if (n >= (4u << 20))
			ck_assert_uint_eq((uintptr_t)p % (2u << 20), 0);
		else /* a cache line, as the index's vectors expect */
			ck_assert_uint_eq((uintptr_t)p % 64, 0);
		for (size_t i = keep; i < n; i++)
			p[i] = (unsigned char)(i * 7 + 3);
		have = n;
	}
	free(p);
}
END_TEST

/* The label map (u64map.c) finds every key through growth, deletes and
 * reuse, and stays between a third and two thirds full (tombstones
 * counted in the upper bound) once past its first 16 slots. */
START_TEST(lmap_finds_keys_one_to_two_thirds_full)
{
	knytt__lmap m = { 0 };
	const uint64_t N = 20000;
	for (uint64_t k = 0; k < N; k++) {
		ck_assert_int_eq(knytt__lmap_put(&m, k * 1000003u, (uint32_t)k),
				 0);
		ck_assert_uint_le(3 * m.used, 2 * m.cap);
		if (m.cap > 16)
			ck_assert_msg(3 * m.n > m.cap, "%zu keys in %zu slots",
				      m.n, m.cap);
	}
	ck_assert_uint_eq(knytt__lmap_bytes(&m), m.cap * 12);
	for (uint64_t k = 0; k < N; k += 2) /* half deleted: tombstones */
		knytt__lmap_del(&m, k * 1000003u);
	for (uint64_t k = N; k < N + N / 2; k++) {
		ck_assert_int_eq(knytt__lmap_put(&m, k * 1000003u, (uint32_t)k),
				 0);
		ck_assert_uint_le(3 * m.used, 2 * m.cap);
	}
	ck_assert_uint_eq(m.n, N);
	for (uint64_t k = 0; k < N + N / 2; k++)
		ck_assert_uint_eq(knytt__lmap_get(&m, k * 1000003u),
				  k < N && k % 2 == 0 ? LMAP_EMPTY : (uint32_t)k);
	ck_assert_uint_eq(knytt__lmap_get(&m, 7), LMAP_EMPTY);
	knytt__lmap_free(&m);
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
	tcase_add_test(tc, fork_join_runs_each_worker_once);
	tcase_add_test(tc, parallel_for_covers_range_once_in_grains);
	tcase_add_test(tc, atomic_write_replaces_or_keeps_old);
	tcase_add_test(tc, grow_doubles_and_keeps_contents);
	tcase_add_test(tc, cap_class_rounds_to_few_sizes);
	tcase_add_test(tc, big_realloc_keeps_contents);
	tcase_add_test(tc, lmap_finds_keys_one_to_two_thirds_full);
	suite_add_tcase(s, tc);
	return s;
}
