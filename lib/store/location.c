/*
 * location.c -- where a store keeps files beside its database: the saved
 * vector index of each tenant and model version.
 *
 * File names are built from numbers the store assigns (tenant id, model
 * version), never from names a caller chose, so they can neither escape
 * the folder nor collide between tenants or between stores:
 *   SQLite file    DIR/DB.knytt-t<tenant>-v<version>.index beside DB
 *                  (DB's whole file name is the prefix, so the stores
 *                  X.db and X.db.s cannot share a file);
 *   PostgreSQL     CACHE/pg-<key>/t<tenant>-v<version>.index, CACHE being
 *                  $KNYTT_CACHE_DIR, else $XDG_CACHE_HOME/knytt, else
 *                  ~/.cache/knytt; <key> a hash of the server address, of
 *                  the database's name and oid (a database dropped and
 *                  created again gets a new oid, hence new files) and of
 *                  the schema the store's tables are in (search_path);
 *   :memory:       none (KNYTT_ENOTSUP).
 * Whether a file found there really belongs to this model is checked by
 * its reader (the engine keeps a random tag per model version in the
 * model and in the file).
 */
#include "store_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define O (st->ops)

/* The server part of a postgres:// URI ("host:port/db"), without the
 * user and password, which may change without the database changing. */
static char *pg_server_part(const char *uri)
{
	const char *p = strstr(uri, "://");
	p = p ? p + 3 : uri;
	const char *end = p + strcspn(p, "?");
	const char *at = NULL;
	for (const char *q = p; q < end && *q != '/'; q++)
		if (*q == '@')
			at = q;
	if (at)
		p = at + 1;
	size_t n = (size_t)(end - p);
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = '\0';
	}
	return s;
}

int knytt__remember_location(knytt_store *st, const char *uri)
{
	const char *src = NULL;
	char *pg = NULL;
	if (strncmp(uri, "sqlite:", 7) == 0) {
		if (strcmp(uri + 7, ":memory:") == 0 ||
		    strncmp(uri + 7, "file:", 5) == 0)
			return KNYTT_OK;
		src = uri + 7;
	} else {
		if (!(pg = pg_server_part(uri)))
			return knytt__err(KNYTT_ENOMEM, "out of memory");
		src = pg;
	}
	size_t n = strlen(src) + 1;
	st->location = malloc(n);
	if (st->location)
		memcpy(st->location, src, n);
	free(pg);
	return st->location ? KNYTT_OK
			    : knytt__err(KNYTT_ENOMEM, "out of memory");
}

static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return (h ^ 0xff) * 0x100000001b3ULL; /* field separator */
}

/* CACHE/pg-<key>, from the database's own name and oid. */
static int pg_dir(knytt_store *st, char **out)
{
	knytt__stmt *q;
	if (O->prepare(st->db,
		       "SELECT CAST(oid AS BIGINT), datname, current_schema() "
		       "FROM pg_database WHERE datname = current_database()",
		       &q))
		return knytt__err_keep(KNYTT_EDB);
	int rc = O->step(q);
	char oid[32] = "", name[256] = "", schema[256] = "";
	if (rc == 1) {
		snprintf(oid, sizeof oid, "%lld", (long long)O->col_i64(q, 0));
		snprintf(name, sizeof name, "%s",
			 O->col_text(q, 1) ? O->col_text(q, 1) : "");
		snprintf(schema, sizeof schema, "%s",
			 O->col_text(q, 2) ? O->col_text(q, 2) : "");
	}
	O->finalize(q);
	if (rc != 1)
		return rc < 0 ? rc
			      : knytt__err(KNYTT_EDB, "current database not "
						      "found in pg_database");
	uint64_t h = fnv1a(0xcbf29ce484222325ULL, st->location);
	h = fnv1a(fnv1a(fnv1a(h, oid), name), schema);
	const char *env = getenv("KNYTT_CACHE_DIR");
	const char *xdg = getenv("XDG_CACHE_HOME");
	const char *home = getenv("HOME");
	char root[4096];
	if (env && *env)
		snprintf(root, sizeof root, "%s", env);
	else if (xdg && *xdg)
		snprintf(root, sizeof root, "%s/knytt", xdg);
	else if (home && *home)
		snprintf(root, sizeof root, "%s/.cache/knytt", home);
	else
		return knytt__err(KNYTT_ENOTSUP,
				  "no cache folder: set KNYTT_CACHE_DIR, "
				  "XDG_CACHE_HOME or HOME");
	size_t n = strlen(root) + 32;
	if (!(*out = malloc(n)))
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	snprintf(*out, n, "%s/pg-%016llx", root, (unsigned long long)h);
	return KNYTT_OK;
}

/* mkdir -p, private to the user (the files hold the catalog's vectors). */
static int make_dirs(char *path)
{
	for (char *p = path + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		int r = mkdir(path, 0700);
		*p = c;
		if (r != 0 && errno != EEXIST)
			return knytt__err_errno(KNYTT_EIO, errno,
						"cannot create folder %s", path);
		if (c == '\0')
			return KNYTT_OK;
	}
}

int knytt__store_index_dir(knytt_store *st, int create, char **dir,
			   char **prefix)
{
	*dir = *prefix = NULL;
	if (!st->location)
		return knytt__err(KNYTT_ENOTSUP,
				  "an in-memory store keeps no files");
	if (!st->tenant)
		return knytt__err(KNYTT_ESTATE, "no tenant selected");
	int rc = KNYTT_OK;
	char pre[64];
	if (O->dialect == KNYTT__PG) {
		if ((rc = pg_dir(st, dir)))
			return rc;
		snprintf(pre, sizeof pre, "t%llu-v",
			 (unsigned long long)st->tenant);
		if (create && (rc = make_dirs(*dir))) {
			free(*dir);
			*dir = NULL;
			return rc;
		}
	} else {
		const char *slash = strrchr(st->location, '/');
		const char *base = slash ? slash + 1 : st->location;
		/* "a/b.db" -> "a", "/b.db" -> "/", "b.db" -> "." */
		size_t dl = !slash ? 1 : slash == st->location ? 1
				       : (size_t)(slash - st->location);
		size_t bl = strlen(base);
		*dir = malloc(dl + 1);
		*prefix = malloc(bl + sizeof pre);
		if (!*dir || !*prefix) {
			free(*dir);
			free(*prefix);
			*dir = *prefix = NULL;
			return knytt__err(KNYTT_ENOMEM, "out of memory");
		}
		memcpy(*dir, slash ? st->location : ".", dl);
		(*dir)[dl] = '\0';
		snprintf(*prefix, bl + sizeof pre, "%s.knytt-t%llu-v", base,
			 (unsigned long long)st->tenant);
		return KNYTT_OK;
	}
	if (!(*prefix = malloc(strlen(pre) + 1))) {
		free(*dir);
		*dir = NULL;
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	}
	strcpy(*prefix, pre);
	return KNYTT_OK;
}

int knytt__store_index_path(knytt_store *st, int64_t version, int create,
			    char **out)
{
	char *dir, *pre;
	*out = NULL;
	int rc = knytt__store_index_dir(st, create, &dir, &pre);
	if (rc)
		return rc;
	size_t n = strlen(dir) + strlen(pre) + 48;
	if ((*out = malloc(n)))
		snprintf(*out, n, "%s/%s%lld.index", dir, pre,
			 (long long)version);
	else
		rc = knytt__err(KNYTT_ENOMEM, "out of memory");
	free(dir);
	free(pre);
	return rc;
}
