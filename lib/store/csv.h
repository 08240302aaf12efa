/*
 * csv.h -- the streaming CSV reader of the importer.  Not API.
 */
#ifndef KNYTT_STORE_CSV_H
#define KNYTT_STORE_CSV_H

#include <stddef.h>
#include <stdio.h>

#define KNYTT__CSV_MAX ((size_t)1 << 20)

typedef struct knytt__csv {
	FILE *f;
	char sep;
	size_t line;     /* line number of the next character (1-based) */
	size_t rec_line; /* line where the current record starts */
	char *buf;       /* the fields, each NUL-terminated */
	size_t len, cap;
	size_t *offs;    /* offsets of the nf fields in buf */
	size_t nf, fcap;
	const char *bad; /* why the current record is malformed, or NULL */
	char pending[2];
	int npending, ppos;
} knytt__csv;

int knytt__csv_init(knytt__csv *c, FILE *f, char sep);
void knytt__csv_free(knytt__csv *c);
/* 1 = a record (check ->bad), 0 = end of file. */
int knytt__csv_next(knytt__csv *c);

static inline const char *knytt__csv_field(const knytt__csv *c, size_t i)
{
	return c->buf + c->offs[i];
}

/* The length of field @p i as read, which a NUL byte in it makes longer
 * than its strlen(). */
static inline size_t knytt__csv_field_len(const knytt__csv *c, size_t i)
{
	size_t end = i + 1 < c->nf ? c->offs[i + 1] : c->len;
	return end - c->offs[i] - 1;
}

#endif
