/*
 * fileio.c -- the one atomic file write: a temporary file next to the
 * target, written, fsync'd, renamed over the target, and the directory
 * fsync'd so that the rename itself survives a power cut.  A reader sees
 * the old file or the new one, never a torn one; a failure leaves the old
 * file and no temporary behind.  And the one whole-file read that the
 * model loaders share.
 */
#include "../internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int knytt__atomic_begin(knytt__atomic_file *f, const char *path)
{
	memset(f, 0, sizeof *f);
	f->fd = -1;
	if (!path || !*path)
		return knytt__err(KNYTT_EINVAL, "path must not be empty");
	size_t n = strlen(path) + 32;
	f->path = strdup(path);
	f->tmp = malloc(n);
	if (!f->path || !f->tmp) {
		knytt__atomic_abort(f);
		return knytt__err(KNYTT_ENOMEM, "no memory for a path");
	}
	/* pid and a counter: two threads or processes writing the same
	 * target never share a temporary */
	static _Atomic unsigned seq;
	snprintf(f->tmp, n, "%s.tmp.%ld.%u", path, (long)getpid(), seq++);
	f->fd = open(f->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (f->fd < 0) {
		int err = errno;
		knytt__atomic_abort(f);
		return knytt__err_errno(KNYTT_EIO, err, "cannot create a "
				       "temporary file for %s", path);
	}
	return KNYTT_OK;
}

static int sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash ? strndup(path, (size_t)(slash - path + 1))
			  : strdup(".");
	if (!dir)
		return -1;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(dir);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	close(fd);
	return rc;
}

int knytt__atomic_commit(knytt__atomic_file *f, int failed)
{
	int err = failed ? (errno ? errno : EIO) : 0;
	if (!err && fsync(f->fd) != 0)
		err = errno;
	if (close(f->fd) != 0 && !err)
		err = errno;
	f->fd = -1;
	if (!err && rename(f->tmp, f->path) != 0)
		err = errno;
	int rc = KNYTT_OK;
	if (err) {
		unlink(f->tmp);
		rc = knytt__err_errno(KNYTT_EIO, err, "cannot write %s",
				      f->path);
	} else {
		/* the data is safe; a directory that cannot be synced only
		 * weakens durability of the name, so it is not an error */
		(void)sync_dir(f->path);
	}
	free(f->tmp);
	free(f->path);
	f->tmp = f->path = NULL;
	return rc;
}

void knytt__atomic_abort(knytt__atomic_file *f)
{
	if (f->fd >= 0) {
		close(f->fd);
		unlink(f->tmp);
	}
	f->fd = -1;
	free(f->tmp);
	free(f->path);
	f->tmp = f->path = NULL;
}

int knytt__write_all(int fd, const void *buf, size_t n)
{
	const unsigned char *p = buf;
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int knytt__atomic_write(const char *path, const void *buf, size_t n)
{
	knytt__atomic_file f;
	int rc = knytt__atomic_begin(&f, path);
	if (rc)
		return rc;
	return knytt__atomic_commit(&f, knytt__write_all(f.fd, buf, n) != 0);
}

int knytt__read_file(const char *path, unsigned char **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return knytt__err_errno(KNYTT_EIO, errno, "cannot open %s", path);
	unsigned char *buf = NULL;
	size_t n = 0, cap = 0;
	int rc = KNYTT_OK;
	for (;;) {
		if (KNYTT__GROW(buf, cap, n + 65536)) {
			rc = knytt__err(KNYTT_ENOMEM, "no memory to read %s",
					path);
			break;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = knytt__err_errno(KNYTT_EIO, errno,
					      "cannot read %s", path);
			break;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	if (rc) {
		free(buf);
		return rc;
	}
	*out = buf;
	*len = n;
	return KNYTT_OK;
}

int knytt__write_owned(const char *path, void *buf, size_t n)
{
	int rc = knytt__atomic_write(path, buf, n);
	free(buf);
	return rc;
}

int knytt__path_err(const char *path, int rc)
{
	if (rc != KNYTT_ECORRUPT && rc != KNYTT_EVERSION)
		return rc;
	char msg[400];
	snprintf(msg, sizeof msg, "%s", knytt_errmsg());
	return knytt__err(rc, "%s: %s", path, msg);
}
