/*
 * check_kdstatic.c -- knyttd's web pages (services/knyttd/static.c):
 * files from --www with their Content-Type and caching headers, 304 on a
 * matching ETag, 404 for missing files, and no way out of the directory.
 *
 * Requests are written on a raw socket, because libcurl (like browsers)
 * folds "/../" before sending and the point is to send it as an attacker
 * would.
 */
#include "testutil.h"

#include "kdtest.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static kd_srv S;
static char WWW[64];

static void put(const char *rel, const char *text)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", WWW, rel);
	FILE *f = fopen(p, "w");
	ck_assert_ptr_nonnull(f);
	fputs(text, f);
	fclose(f);
}

static void www_setup(void)
{
	snprintf(WWW, sizeof WWW, "/tmp/knyttd-www-XXXXXX");
	ck_assert_ptr_nonnull(mkdtemp(WWW));
	char p[256];
	snprintf(p, sizeof p, "%s/admin", WWW);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	put("index.html", "<!doctype html><title>shop</title>");
	put("app.css", "body{color:#111}");
	put("app.js", "console.log(1)");
	put("admin/index.html", "<!doctype html><title>admin</title>");
	put(".secret", "hidden");
	/* ways out: a symlinked directory and a symlinked file */
	snprintf(p, sizeof p, "%s/etc", WWW);
	ck_assert_int_eq(symlink("/etc", p), 0);
	snprintf(p, sizeof p, "%s/hosts.txt", WWW);
	ck_assert_int_eq(symlink("/etc/hosts", p), 0);
	const char *const extra[] = {"--www", WWW, NULL};
	ck_assert_int_eq(kd_start(&S, extra), 0);
}

static void www_teardown(void)
{
	kd_stop(&S);
	kd_cleanup(&S);
	const char *const rel[] = {"index.html", "app.css", "app.js",
				   "admin/index.html", ".secret", "etc",
				   "hosts.txt", "admin"};
	char p[256];
	for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
		snprintf(p, sizeof p, "%s/%s", WWW, rel[i]);
		remove(p);
	}
	rmdir(WWW);
}

/* Sends "METHOD PATH" with @p extra header lines; the whole answer
 * (headers and body) in @p out; the status, or 0. */
static int raw(const char *method, const char *path, const char *extra,
	       char *out, size_t cap)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET,
				 .sin_port = htons((uint16_t)S.port)};
	inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa)) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	char req[1024];
	int n = snprintf(req, sizeof req,
			 "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
			 "%s\r\n",
			 method, path, extra ? extra : "");
	if (write(fd, req, (size_t)n) != n) {
		close(fd);
		return 0;
	}
	size_t len = 0;
	ssize_t got;
	while (len < cap - 1 && (got = read(fd, out + len, cap - 1 - len)) > 0)
		len += (size_t)got;
	out[len] = 0;
	close(fd);
	int status = 0;
	sscanf(out, "HTTP/1.1 %d", &status);
	return status;
}

/* The value of header @p name in answer @p a, or "". */
static const char *header(const char *a, const char *name, char *buf,
			  size_t cap)
{
	char key[64];
	snprintf(key, sizeof key, "\r\n%s: ", name);
	buf[0] = 0;
	const char *p = strcasestr(a, key);
	if (p) {
		p += strlen(key);
		size_t n = strcspn(p, "\r\n");
		snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
	}
	return buf;
}

START_TEST(files_types_and_caching)
{
	char a[8192], h[256], etag[128];
	ck_assert_int_eq(raw("GET", "/", NULL, a, sizeof a), 200);
	ck_assert_str_eq(header(a, "Content-Type", h, sizeof h),
			 "text/html; charset=utf-8");
	ck_assert_str_eq(header(a, "Cache-Control", h, sizeof h), "no-cache");
	ck_assert_str_eq(header(a, "X-Content-Type-Options", h, sizeof h),
			 "nosniff");
	ck_assert_ptr_nonnull(strstr(a, "<title>shop</title>"));
	header(a, "ETag", etag, sizeof etag);
	ck_assert_int_gt(strlen(etag), 2);

	/* the browser has it: 304, no body */
	char inm[256];
	snprintf(inm, sizeof inm, "If-None-Match: %s\r\n", etag);
	ck_assert_int_eq(raw("GET", "/", inm, a, sizeof a), 304);
	ck_assert_ptr_null(strstr(a, "<title>"));
	ck_assert_int_eq(raw("GET", "/", "If-None-Match: \"other\"\r\n", a,
			     sizeof a),
			 200);

	ck_assert_int_eq(raw("GET", "/app.css", NULL, a, sizeof a), 200);
	ck_assert_str_eq(header(a, "Content-Type", h, sizeof h),
			 "text/css; charset=utf-8");
	ck_assert_str_eq(header(a, "Cache-Control", h, sizeof h),
			 "public, max-age=300");
	ck_assert_int_eq(raw("GET", "/app.js", NULL, a, sizeof a), 200);
	ck_assert_str_eq(header(a, "Content-Type", h, sizeof h),
			 "text/javascript; charset=utf-8");
	ck_assert_str_eq(header(a, "Content-Length", h, sizeof h), "14");

	/* a directory is its index.html, with or without the slash */
	ck_assert_int_eq(raw("GET", "/admin", NULL, a, sizeof a), 200);
	ck_assert_ptr_nonnull(strstr(a, "<title>admin</title>"));
	ck_assert_int_eq(raw("GET", "/admin/", NULL, a, sizeof a), 200);
	ck_assert_ptr_nonnull(strstr(a, "<title>admin</title>"));

	/* HEAD: the headers without the body */
	ck_assert_int_eq(raw("HEAD", "/app.js", NULL, a, sizeof a), 200);
	ck_assert_ptr_null(strstr(a, "console.log"));
}
END_TEST

START_TEST(missing_and_not_get)
{
	char a[8192];
	ck_assert_int_eq(raw("GET", "/nothing.js", NULL, a, sizeof a), 404);
	ck_assert_ptr_nonnull(strstr(a, "\"not_found\""));
	ck_assert_int_eq(raw("GET", "/admin/nothing.html", NULL, a, sizeof a),
			 404);
	/* pages are read-only */
	ck_assert_int_eq(raw("POST", "/", NULL, a, sizeof a), 404);
	ck_assert_int_eq(raw("DELETE", "/app.js", NULL, a, sizeof a), 404);
	/* the API keeps its own 404 */
	ck_assert_int_eq(raw("GET", "/api/v1/nothing", NULL, a, sizeof a),
			 404);
	ck_assert_ptr_nonnull(strstr(a, "\"no_route\""));
	ck_assert_int_eq(raw("GET", "/health", NULL, a, sizeof a), 200);
}
END_TEST

START_TEST(no_path_traversal)
{
	/* each would reach the store (k.db next to nothing served), a
	 * system file or a hidden file */
	static const char *const bad[] = {
		"/../k.db",
		"/%2e%2e/%2e%2e/etc/passwd",
		"/..%2f..%2fetc%2fpasswd",
		"/admin/../../etc/passwd",
		"/admin/%2E%2E/%2E%2E/etc/hosts",
		"/./index.html",
		"//etc/passwd",
		"/.secret",
		"/etc/passwd",
		"/etc/hosts",
		"/hosts.txt",
		"/admin\\..\\..\\etc\\passwd",
		"/../../../../../../../../etc/passwd",
	};
	char a[8192];
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int st = raw("GET", bad[i], NULL, a, sizeof a);
		if (st != 404 && st != 400)
			ck_abort_msg("%s answered %d", bad[i], st);
		ck_assert_ptr_null(strstr(a, "root:"));
		ck_assert_ptr_null(strstr(a, "localhost"));
		ck_assert_ptr_null(strstr(a, "hidden"));
		ck_assert_ptr_null(strstr(a, "SQLite"));
	}
}
END_TEST

START_TEST(www_must_be_a_directory)
{
	kd_srv s2;
	memset(&s2, 0, sizeof s2);
	const char *const extra[] = {"--www", "/nonexistent/www", NULL};
	ck_assert_int_eq(kd_start(&s2, extra), -1);
	kd_cleanup(&s2);
}
END_TEST

Suite *kdstatic_suite(void)
{
	Suite *s = suite_create("kdstatic");
	TCase *tc = tcase_create("www");
	tcase_add_unchecked_fixture(tc, www_setup, www_teardown);
	tcase_add_test(tc, files_types_and_caching);
	tcase_add_test(tc, missing_and_not_get);
	tcase_add_test(tc, no_path_traversal);
	tcase_add_test(tc, www_must_be_a_directory);
	suite_add_tcase(s, tc);
	return s;
}
