/*
 * static.c -- the web pages (storefront at /, back office at /admin)
 * served from kd_cfg.www.
 *
 * Safety before convenience: a path is served only when every segment is
 * made of [A-Za-z0-9._-] and does not start with a dot (no "..", no
 * hidden files; microhttpd has already decoded %2e%2e), the file opens
 * without following a final symlink, is a regular file, and its real path
 * lies under the real www directory (no symlinked directory leads out).
 * Anything else is the same 404 as a missing file, so a probe learns
 * nothing about what lies outside.
 *
 * Caching: an ETag (size and mtime) on every file, answered 304 when the
 * browser has it; HTML is "no-cache" (always revalidated, so a new
 * version shows at once) and the rest may be reused for five minutes.
 */
#include "knyttd.h"

#include <fcntl.h>
#include <limits.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

void kd_static_default(char *out, size_t cap)
{
	static const char *const rel[] = {"../../services/knyttd/www",
					  "../share/knytt/www"};
	char exe[PATH_MAX];
	out[0] = 0;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return;
	exe[n] = 0;
	char *slash = strrchr(exe, '/');
	if (!slash)
		return;
	*slash = 0;
	for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
		char p[PATH_MAX + 64];
		snprintf(p, sizeof p, "%s/%s", exe, rel[i]);
		char real[PATH_MAX];
		if (is_dir(p) && realpath(p, real) &&
		    strlen(real) < cap) {
			snprintf(out, cap, "%s", real);
			return;
		}
	}
}

/* 1 when every segment of @p path is [A-Za-z0-9._-]+ not starting with
 * a dot; "/" alone is fine. */
static int path_ok(const char *path)
{
	if (path[0] != '/' || strlen(path) > 512)
		return 0;
	for (const char *p = path + 1; *p;) {
		if (*p == '.' || *p == '/')
			return 0; /* hidden, "..", or an empty segment */
		while (*p && *p != '/') {
			char c = *p++;
			if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
			      c == '-'))
				return 0;
		}
		if (*p == '/')
			p++;
	}
	return 1;
}

static const char *mime_of(const char *path)
{
	static const char *const map[][2] = {
		{".html", "text/html; charset=utf-8"},
		{".css", "text/css; charset=utf-8"},
		{".js", "text/javascript; charset=utf-8"},
		{".json", "application/json"},
		{".svg", "image/svg+xml"},
		{".png", "image/png"},
		{".jpg", "image/jpeg"},
		{".ico", "image/x-icon"},
		{".txt", "text/plain; charset=utf-8"},
		{".csv", "text/csv; charset=utf-8"},
	};
	const char *dot = strrchr(path, '.');
	for (size_t i = 0; dot && i < sizeof map / sizeof map[0]; i++)
		if (!strcmp(dot, map[i][0]))
			return map[i][1];
	return "application/octet-stream";
}

/* Opens the file of @p url under kd_cfg.www (a directory means its
 * index.html); the fd and its stat, or -1. */
static int open_under_www(const char *url, char *file, size_t cap,
			  struct stat *st)
{
	char root[PATH_MAX], real[PATH_MAX];
	if (!realpath(kd_cfg.www, root))
		return -1;
	snprintf(file, cap, "%s%s", root, url);
	if (is_dir(file)) {
		size_t n = strlen(file);
		snprintf(file + n, cap - n, "%sindex.html",
			 file[n - 1] == '/' ? "" : "/");
	}
	int fd = open(file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t rl = strlen(root);
	if (fstat(fd, st) || !S_ISREG(st->st_mode) || !realpath(file, real) ||
	    strncmp(real, root, rl) != 0 || real[rl] != '/') {
		close(fd);
		return -1;
	}
	return fd;
}

int kd_static(kd_req *r)
{
	if (strcmp(r->method, "GET") && strcmp(r->method, "HEAD"))
		return 0;
	if (!kd_cfg.www[0] || !strncmp(r->url, "/api/", 5))
		return 0;
	char file[PATH_MAX + 600];
	struct stat st;
	int fd = -1;
	if (path_ok(r->url))
		fd = open_under_www(r->url, file, sizeof file, &st);
	if (fd < 0) {
		kd_err(r, 404, "not_found", NULL, "no page %s", r->url);
		return 1;
	}
	char etag[64];
	snprintf(etag, sizeof etag, "\"%llx-%llx\"",
		 (unsigned long long)st.st_size,
		 (unsigned long long)st.st_mtim.tv_sec * 1000000000ULL +
			 (unsigned long long)st.st_mtim.tv_nsec);
	const char *inm = MHD_lookup_connection_value(
		r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	int fresh = inm && strstr(inm, etag);
	if (fresh) {
		close(fd);
		r->raw = MHD_create_response_from_buffer(0, (void *)"",
							 MHD_RESPMEM_PERSISTENT);
		r->status = 304;
	} else {
		r->raw = MHD_create_response_from_fd((uint64_t)st.st_size, fd);
		r->status = 200;
		if (!r->raw)
			close(fd);
	}
	if (!r->raw) {
		kd_err(r, 503, "no_memory", NULL, "out of memory");
		return 1;
	}
	const char *mime = mime_of(file);
	MHD_add_response_header(r->raw, MHD_HTTP_HEADER_ETAG, etag);
	MHD_add_response_header(r->raw, MHD_HTTP_HEADER_CACHE_CONTROL,
				!strncmp(mime, "text/html", 9)
					? "no-cache"
					: "public, max-age=300");
	if (!fresh)
		MHD_add_response_header(r->raw, MHD_HTTP_HEADER_CONTENT_TYPE,
					mime);
	MHD_add_response_header(r->raw, "X-Content-Type-Options", "nosniff");
	/* the storefront's URL carries the public key: keep it home */
	MHD_add_response_header(r->raw, "Referrer-Policy", "no-referrer");
	if (kd_draining)
		MHD_add_response_header(r->raw, MHD_HTTP_HEADER_CONNECTION,
					"close");
	return 1;
}
