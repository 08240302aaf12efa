/*
 * csv.c -- a streaming RFC 4180 record reader.
 *
 * Fields may be quoted ("a ""b"" c"), quoted fields may hold separators
 * and line breaks; records end with LF or CRLF.  One record is held at a
 * time (at most KNYTT__CSV_MAX bytes; a longer one is consumed and
 * reported, not stored), so memory stays constant whatever the file size.
 * A malformed record (a quote inside an unquoted field, text after a
 * closing quote, a quote left open at the end of the file) is returned
 * with ->bad set, and reading continues with the next record.
 */
#include "csv.h"

#include <stdlib.h>
#include <string.h>

int knytt__csv_init(knytt__csv *c, FILE *f, char sep)
{
	memset(c, 0, sizeof *c);
	c->f = f;
	c->sep = sep;
	c->line = 1;
	c->cap = 4096;
	c->fcap = 32;
	c->buf = malloc(c->cap);
	c->offs = malloc(c->fcap * sizeof *c->offs);
	if (!c->buf || !c->offs) {
		knytt__csv_free(c);
		return -1;
	}
	/* a UTF-8 byte order mark is not part of the first field */
	int a = getc(f);
	if (a == 0xEF) {
		int b = getc(f), d = getc(f);
		if (b != 0xBB || d != 0xBF) {
			ungetc(d, f); /* rare: only one byte of push-back */
			c->pending[c->npending++] = (char)a;
			c->pending[c->npending++] = (char)b;
		}
	} else if (a != EOF) {
		ungetc(a, f);
	}
	return 0;
}

void knytt__csv_free(knytt__csv *c)
{
	free(c->buf);
	free(c->offs);
	c->buf = NULL;
	c->offs = NULL;
}

static int next(knytt__csv *c)
{
	if (c->ppos < c->npending)
		return (unsigned char)c->pending[c->ppos++];
	return getc_unlocked(c->f);
}

static void put(knytt__csv *c, int ch)
{
	if (c->len + 1 >= c->cap) {
		if (c->cap >= KNYTT__CSV_MAX) {
			c->bad = "record is longer than 1 MiB";
			return;
		}
		size_t nc = c->cap * 2;
		char *nb = realloc(c->buf, nc);
		if (!nb) {
			c->bad = "out of memory";
			return;
		}
		c->buf = nb;
		c->cap = nc;
	}
	c->buf[c->len++] = (char)ch;
}

static void start_field(knytt__csv *c)
{
	if (c->nf == c->fcap) {
		if (c->fcap >= 4096) {
			c->bad = "more than 4096 fields";
			c->nf--; /* overwrite the last offset */
		} else {
			size_t *n = realloc(c->offs,
					    2 * c->fcap * sizeof *c->offs);
			if (!n) {
				c->bad = "out of memory";
				c->nf--;
			} else {
				c->offs = n;
				c->fcap *= 2;
			}
		}
	}
	c->offs[c->nf++] = c->len;
}

int knytt__csv_next(knytt__csv *c)
{
	for (;;) {
		c->len = 0;
		c->nf = 0;
		c->bad = NULL;
		c->rec_line = c->line;
		int ch = next(c);
		if (ch == EOF)
			return 0;
		if (ch == '\n' || ch == '\r') { /* blank line */
			if (ch == '\r') {
				int n2 = next(c);
				if (n2 != '\n' && n2 != EOF)
					ungetc(n2, c->f);
			}
			c->line++;
			continue;
		}
		for (;;) {
			start_field(c);
			if (ch == '"') {
				for (;;) {
					ch = next(c);
					if (ch == EOF) {
						if (!c->bad)
							c->bad = "quoted field "
								 "not closed";
						break;
					}
					if (ch == '"') {
						ch = next(c);
						if (ch == '"') {
							put(c, '"');
							continue;
						}
						break;
					}
					if (ch == '\n')
						c->line++;
					put(c, ch);
				}
				if (ch != c->sep && ch != '\n' && ch != '\r' &&
				    ch != EOF) {
					if (!c->bad)
						c->bad = "text after a closing "
							 "quote";
					while (ch != c->sep && ch != '\n' &&
					       ch != EOF)
						ch = next(c);
				}
			} else {
				while (ch != c->sep && ch != '\n' &&
				       ch != EOF) {
					if (ch == '\r') {
						int n2 = next(c);
						if (n2 == '\n' || n2 == EOF) {
							ch = n2;
							break;
						}
						put(c, '\r');
						ch = n2;
						continue;
					}
					if (ch == '"' && !c->bad)
						c->bad = "quote inside an "
							 "unquoted field";
					put(c, ch);
					ch = next(c);
				}
			}
			put(c, '\0');
			if (ch == c->sep) {
				ch = next(c);
				continue;
			}
			if (ch == '\r') {
				int n2 = next(c);
				if (n2 != '\n' && n2 != EOF)
					ungetc(n2, c->f);
			}
			if (ch != EOF)
				c->line++;
			return 1;
		}
	}
}
