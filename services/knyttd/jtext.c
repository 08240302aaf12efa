/*
 * jtext.c -- JSON answers written straight as text.
 *
 * The answers of the hot routes (recommendations, search, similar,
 * trending) are mostly item fields that itemcache.c keeps rendered, so
 * they are put together as text rather than as a cJSON tree printed at
 * the end: building and printing the tree of ten items was a fifth of
 * knyttd's CPU per recommendation (perf, benchmarks/serve), most of it
 * cJSON's number printing (sprintf, then sscanf to check the digits).
 *
 * The text is what cJSON_PrintUnformatted writes for the same values
 * (strings escaped the same way, numbers with the same digits), so a
 * client sees no difference.  A buffer that ran out of memory remembers
 * it (oom) and the answer becomes the usual 503.
 */
#include "knyttd.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int grow(kd_buf *b, size_t more)
{
	if (b->oom)
		return 0;
	if (b->n + more + 1 <= b->cap)
		return 1;
	size_t cap = b->cap ? b->cap : 1024;
	while (cap < b->n + more + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = 1;
		return 0;
	}
	b->p = p;
	b->cap = cap;
	return 1;
}

void kd_buf_put(kd_buf *b, const char *s, size_t n)
{
	if (!grow(b, n))
		return;
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = 0;
}

void kd_buf_cstr(kd_buf *b, const char *s)
{
	kd_buf_put(b, s, strlen(s));
}

/* A JSON string: '"' and '\\' escaped, control characters as cJSON
 * writes them (\b \f \n \r \t, else \u00XX); UTF-8 passes as it is. */
void kd_buf_jstr(kd_buf *b, const char *s)
{
	static const char hexd[] = "0123456789abcdef";
	size_t n = strlen(s);
	if (!grow(b, 6 * n + 2)) /* the worst case: every byte \u00XX */
		return;
	char *o = b->p + b->n;
	*o++ = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;
		if (c >= 0x20 && c != '"' && c != '\\') {
			*o++ = (char)c;
			continue;
		}
		*o++ = '\\';
		switch (c) {
		case '"': *o++ = '"'; break;
		case '\\': *o++ = '\\'; break;
		case '\b': *o++ = 'b'; break;
		case '\f': *o++ = 'f'; break;
		case '\n': *o++ = 'n'; break;
		case '\r': *o++ = 'r'; break;
		case '\t': *o++ = 't'; break;
		default:
			memcpy(o, "u00", 3);
			o[3] = hexd[c >> 4];
			o[4] = hexd[c & 15];
			o += 5;
		}
	}
	*o++ = '"';
	b->n = (size_t)(o - b->p);
	b->p[b->n] = 0;
}

/* A number as cJSON prints it: null for NaN and infinities, an integer
 * without a fraction, else the shortest of 15 or 17 significant digits
 * that reads back as the same double. */
void kd_buf_num(kd_buf *b, double d)
{
	char t[40];
	int n;
	if (!isfinite(d))
		n = snprintf(t, sizeof t, "null");
	else if (fabs(d) < 1e15 && d == (double)(long long)d)
		n = snprintf(t, sizeof t, "%lld", (long long)d);
	else if ((n = snprintf(t, sizeof t, "%1.15g", d)), strtod(t, NULL) != d)
		n = snprintf(t, sizeof t, "%1.17g", d);
	kd_buf_put(b, t, (size_t)n);
}

/*
 * A score, to 9 significant digits.  Scores are only compared within one
 * answer, and 9 digits keep apart any two that differ in float precision
 * (what the index computes); cJSON's exact form cost two printf-family
 * calls per result, 7% of a recommendation's CPU (perf).  The usual
 * range is done with integer arithmetic; the rest goes to "%.9g".
 */
void kd_buf_score(kd_buf *b, double d)
{
	char t[48];
	double a = fabs(d);
	if (!(a >= 1e-3 && a < 1e9)) {
		if (!isfinite(d))
			kd_buf_cstr(b, "null");
		else
			kd_buf_put(b, t, (size_t)snprintf(t, sizeof t, "%.9g",
							  d));
		return;
	}
	/* frac: digits after the point so that 9 are significant */
	int frac = 9; /* for 0.1 <= a < 1 */
	for (double p = 1; a >= p; p *= 10)
		frac--;
	for (double p = 0.1; a < p; p /= 10)
		frac++;
	unsigned long long scale = 1;
	for (int i = 0; i < frac; i++)
		scale *= 10;
	unsigned long long v = (unsigned long long)llround(a * (double)scale);
	unsigned long long whole = v / scale, part = v % scale;
	char w[24];
	int nw = 0, n = 0;
	do {
		w[nw++] = (char)('0' + whole % 10);
		whole /= 10;
	} while (whole);
	if (d < 0)
		t[n++] = '-';
	while (nw)
		t[n++] = w[--nw];
	if (part) {
		int k = frac;
		while (part % 10 == 0) {
			part /= 10;
			k--;
		}
		t[n++] = '.';
		for (int i = k - 1; i >= 0; i--, part /= 10)
			t[n + i] = (char)('0' + part % 10);
		n += k;
	}
	kd_buf_put(b, t, (size_t)n);
}

int kd_ok_buf(kd_req *r, int status, kd_buf *b)
{
	if (b->oom || !b->p) {
		free(b->p);
		memset(b, 0, sizeof *b);
		return kd_err(r, 503, "no_memory", NULL, "out of memory");
	}
	cJSON_Delete(r->out);
	r->out = NULL;
	free(r->text);
	r->text = b->p; /* http.c sends and frees it */
	r->ctype = "application/json";
	r->status = status;
	memset(b, 0, sizeof *b);
	return status;
}
