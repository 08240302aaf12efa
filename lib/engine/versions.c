/*
 * versions.c -- a model version in the store and on disk: stored whole
 * or not at all, its index file found again and vouched for, old
 * versions deleted.
 *
 * Index files live where the store says (knytt__store_index_path: named
 * by tenant id and model version, beside a SQLite file or in the user's
 * cache folder for PostgreSQL).  Each carries an owner tag -- "KNYTTENG",
 * the tenant id and the model's random tag -- that the engine compares
 * with the model blob's before serving the file, so a file left by
 * another store, tenant or training, or planted, is refused and the
 * index rebuilt from the model (then saved again for the next open).
 */
#include "engine_int.h"
#include "../store/store_int.h"

#include <dirent.h>
#include <stdarg.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Temporary files (an index being written, or waiting for its version's
 * commit) older than this belong to a process that died: deleted. */
#define STALE_S 600
/* An empty one is never a write in progress for this long. */
#define STALE_EMPTY_S 60

void knytt__engine_model_owner(const knytt_store *st,
				const unsigned char tag[KNYTT__MODEL_TAG],
				unsigned char out[KNYTT__INDEX_OWNER])
{
	memset(out, 0, KNYTT__INDEX_OWNER);
	memcpy(out, "KNYTTENG", 8);
	knytt__put_u64(out + 8, knytt_store_tenant(st));
	memcpy(out + 16, tag, KNYTT__MODEL_TAG);
}

/* A model stored before tags (blob version 1) has an all-zero tag: no
 * file can be vouched for, so none is read or written for it. */
static int tag_known(const unsigned char tag[KNYTT__MODEL_TAG])
{
	for (int i = 0; i < KNYTT__MODEL_TAG; i++)
		if (tag[i])
			return 1;
	return 0;
}

void knytt__engine_warn(knytt_engine *e, const char *fmt, ...)
{
	if (!e->log_fn)
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	e->log_fn(e->log_ctx, msg);
}

/* "<dir>/<prefix>new-<tag hex>.index": an index waiting for its commit. */
static char *pending_path(const char *dir, const char *pre,
			  const unsigned char tag[KNYTT__MODEL_TAG])
{
	size_t n = strlen(dir) + strlen(pre) + 2 * KNYTT__MODEL_TAG + 16;
	char *p = malloc(n);
	if (!p)
		return NULL;
	int k = snprintf(p, n, "%s/%snew-", dir, pre);
	for (int i = 0; i < KNYTT__MODEL_TAG; i++)
		k += snprintf(p + k, n - (size_t)k, "%02x", tag[i]);
	snprintf(p + k, n - (size_t)k, ".index");
	return p;
}

/* Writes the item embeddings of version @p v (inside the transaction). */
static int put_embeddings(knytt_engine *e, knytt_store *st, knytt_index *ix,
			  const uint64_t *ids, uint32_t n, int64_t v)
{
	char ver[32];
	snprintf(ver, sizeof ver, "model-v%lld", (long long)v);
	float *x = malloc(e->dim * sizeof *x);
	if (!x)
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	int rc = KNYTT_OK;
	for (uint32_t i = 0; i < n && !rc; i++)
		if (knytt_index_get(ix, ids[i], x, e->dim) == KNYTT_OK)
			rc = knytt_store_embedding_put(st, KNYTT_OWNER_ITEM,
						       ids[i], ver, x, e->dim);
	free(x);
	return rc;
}

int knytt__version_commit(knytt_engine *e, knytt_store *st, knytt_index *ix,
			  const unsigned char tag[KNYTT__MODEL_TAG],
			  const void *blob, size_t size, const char *meta,
			  const uint64_t *ids, uint32_t n, int64_t *version)
{
	char *dir = NULL, *pre = NULL, *pending = NULL, *final = NULL;
	int rc = knytt__store_index_dir(st, 1, &dir, &pre);
	if (rc == KNYTT_ENOTSUP)
		rc = KNYTT_OK; /* an in-memory store: no file */
	else if (rc)
		return rc;
	if (dir) {
		unsigned char owner[KNYTT__INDEX_OWNER];
		knytt__engine_model_owner(st, tag, owner);
		knytt__index_set_owner(ix, owner);
		if (!(pending = pending_path(dir, pre, tag)))
			rc = knytt__err(KNYTT_ENOMEM, "out of memory");
		else
			rc = knytt_index_save(ix, pending);
	}
	int64_t v = 0;
	if (!rc && !(rc = knytt__st_begin(st))) {
		if (!(rc = knytt_store_model_put(st, "engine-model", blob, size,
						 meta, &v)) &&
		    !(rc = put_embeddings(e, st, ix, ids, n, v)) && pending &&
		    !(rc = knytt__store_index_path(st, v, 1, &final)) &&
		    rename(pending, final) != 0)
			rc = knytt__err_errno(KNYTT_EIO, errno,
					      "cannot rename %s", pending);
		if (rc)
			knytt__st_rollback(st);
		else
			rc = knytt__st_commit(st);
	}
	if (rc) {
		/* nothing of this version stays: not its file either */
		if (pending)
			unlink(pending);
		if (final)
			unlink(final);
	} else {
		*version = v;
	}
	free(dir);
	free(pre);
	free(pending);
	free(final);
	return rc;
}

/* The version number of an index file name after the prefix
 * ("<digits>.index"), or -1 (a temporary file, or someone else's). */
static int64_t file_version(const char *rest)
{
	char *end;
	if (*rest < '0' || *rest > '9')
		return -1;
	long long v = strtoll(rest, &end, 10);
	return strcmp(end, ".index") == 0 ? v : -1;
}

static int is_temporary(const char *rest)
{
	return strncmp(rest, "new-", 4) == 0 || strstr(rest, ".tmp.") != NULL;
}

/* Deletes index files of versions below @p below, and temporary files
 * left by a process that died. */
static void prune_files(knytt_engine *e, knytt_store *st, int64_t below)
{
	char *dir, *pre;
	if (knytt__store_index_dir(st, 0, &dir, &pre))
		return;
	DIR *d = opendir(dir);
	size_t pl = strlen(pre);
	time_t now = time(NULL);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (strncmp(de->d_name, pre, pl) != 0)
			continue;
		const char *rest = de->d_name + pl;
		char path[4096];
		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		int64_t v = file_version(rest);
		struct stat sb;
		int drop = v >= 0 ? v < below
				  : is_temporary(rest) && stat(path, &sb) == 0 &&
					    (now - sb.st_mtime > STALE_S ||
					     (sb.st_size == 0 &&
					      now - sb.st_mtime > STALE_EMPTY_S));
		if (drop && unlink(path) != 0 && errno != ENOENT)
			knytt__engine_warn(e, "cannot delete %s: %s", path,
					   strerror(errno));
	}
	if (d)
		closedir(d);
	free(dir);
	free(pre);
}

int knytt__version_prune(knytt_engine *e, knytt_store *st, int64_t newest)
{
	int64_t below = newest - (int64_t)e->keep_models + 1;
	int rc = KNYTT_OK;
	if (below > 1)
		rc = knytt__model_prune(st, "engine-model", below, "model-v");
	prune_files(e, st, below > 1 ? below : 1);
	return rc;
}

knytt_index *knytt__version_index_load(knytt_engine *e, int64_t v,
				       const unsigned char tag[KNYTT__MODEL_TAG])
{
	char *path = NULL;
	if (!tag_known(tag) || knytt__store_index_path(e->st, v, 0, &path))
		return NULL;
	struct stat sb;
	knytt_index *ix = NULL;
	if (stat(path, &sb) != 0) {
		free(path);
		return NULL;
	}
	unsigned char want[KNYTT__INDEX_OWNER], got[KNYTT__INDEX_OWNER];
	knytt__engine_model_owner(e->st, tag, want);
	int rc = knytt_index_create(&ix);
	if (!rc && (rc = knytt_index_load(ix, path)) == KNYTT_OK) {
		knytt__index_owner(ix, got);
		if (memcmp(got, want, sizeof want) != 0)
			rc = knytt__err(KNYTT_ECORRUPT,
					"%s was not built for this store, "
					"tenant and model version",
					path);
		else if (knytt_index_dim(ix) != e->dim)
			rc = knytt__err(KNYTT_ECORRUPT,
					"%s has dimension %u, the engine %u",
					path, knytt_index_dim(ix), e->dim);
	}
	if (rc) {
		knytt__engine_warn(e, "index file refused, rebuilding it: %s",
				   knytt_errmsg());
		knytt_index_close(ix);
		ix = NULL;
	}
	free(path);
	return ix;
}

void knytt__version_index_save(knytt_engine *e, knytt_index *ix, int64_t v,
			       const unsigned char tag[KNYTT__MODEL_TAG])
{
	char *path = NULL;
	if (!tag_known(tag))
		return;
	int rc = knytt__store_index_path(e->st, v, 1, &path);
	if (rc == KNYTT_ENOTSUP)
		return;
	unsigned char owner[KNYTT__INDEX_OWNER];
	knytt__engine_model_owner(e->st, tag, owner);
	knytt__index_set_owner(ix, owner);
	if (!rc)
		rc = knytt_index_save(ix, path);
	if (rc)
		knytt__engine_warn(e, "the rebuilt index is not saved (the "
				      "next open rebuilds it again): %s",
				   knytt_errmsg());
	free(path);
}
