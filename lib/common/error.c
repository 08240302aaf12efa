/*
 * error.c -- status codes, their names and the thread-local message.
 */
#include "../internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 512 bytes holds a message naming a field, a line and a path; longer
 * messages are truncated, never overflowed. */
static _Thread_local char errmsg_buf[512];
static _Thread_local char errfield_buf[64];

const char *knytt_errstr(int code)
{
	switch (code) {
#define X(name, value, desc)                                                \
	case value:                                                         \
		return desc;
		KNYTT_ERROR_MAP(X)
#undef X
	}
	return "unknown error";
}

const char *knytt_errname(int code)
{
	switch (code) {
#define X(name, value, desc)                                                \
	case value:                                                         \
		return "KNYTT_" #name;
		KNYTT_ERROR_MAP(X)
#undef X
	}
	return "KNYTT_UNKNOWN";
}

const char *knytt_errmsg(void)
{
	return errmsg_buf;
}

int knytt__err(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg_buf, sizeof errmsg_buf, fmt, ap);
	va_end(ap);
	errfield_buf[0] = '\0';
	return code;
}

int knytt__err_field(int code, const char *field, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg_buf, sizeof errmsg_buf, fmt, ap);
	va_end(ap);
	snprintf(errfield_buf, sizeof errfield_buf, "%s", field ? field : "");
	return code;
}

const char *knytt_errfield(void)
{
	return errfield_buf;
}

void knytt__err_save(knytt__errsave *s)
{
	snprintf(s->msg, sizeof s->msg, "%s", errmsg_buf);
	snprintf(s->field, sizeof s->field, "%s", errfield_buf);
}

int knytt__err_restore(int code, const knytt__errsave *s)
{
	snprintf(errmsg_buf, sizeof errmsg_buf, "%s", s->msg);
	snprintf(errfield_buf, sizeof errfield_buf, "%s", s->field);
	return code;
}

int knytt__err_errno(int code, int errnum, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(errmsg_buf, sizeof errmsg_buf, fmt, ap);
	va_end(ap);
	errfield_buf[0] = '\0';
	if (n >= 0 && (size_t)n < sizeof errmsg_buf)
		snprintf(errmsg_buf + n, sizeof errmsg_buf - (size_t)n, ": %s",
			 strerror(errnum));
	return code;
}

int knytt__err_keep(int code)
{
	if (errmsg_buf[0] == '\0')
		snprintf(errmsg_buf, sizeof errmsg_buf, "%s",
			 knytt_errstr(code));
	return code;
}

void knytt_free(void *p)
{
	free(p);
}
