/*
 * attrx.c -- the attribute index: for every (name, value) pair found in
 * the items' attributes, the rows of the item table that carry it (see
 * attrx.h for the structure and the locking).
 *
 * Values.  A JSON string, number or boolean is one value; an array gives
 * one value per scalar element (tags); null, objects and nested arrays
 * give none.  A value that reads as a decimal number (a JSON number, or a
 * string such as "10" or "2.50") is stored in one canonical text
 * (knytt__attr_canon) with its numeric value, so 10, 10.0 and "10" are the
 * same term and range filters can test it.
 *
 * Dense terms.  A term carried by at least DENSE_ON rows also keeps its
 * rows as a bitset over the whole table (bwords words), kept in step with
 * the posting list; it is dropped again below DENSE_OFF rows (the gap
 * stops a term at the edge from flapping).  ORing a bitset costs one word
 * operation per 64 rows of the table, a list one scattered bit write per
 * listed row: at 100k rows the two meet near 1,600 rows, and terms that
 * common are the ones a shop filters on (brands, colours, sizes).
 */
#include "attrx.h"

#include "../internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DENSE_ON 1024
#define DENSE_OFF 512
#define NONE UINT32_MAX

struct knytt__aterm {
	uint32_t name;  /* index into ax->nm */
	uint32_t hnext; /* next term with the same hash, NONE at the end */
	char *val;      /* canonical text */
	double num;     /* the numeric value, NAN for a non-number */
	uint32_t *rows; /* posting list, unordered */
	size_t n, cap;
	uint64_t *bits; /* the same rows as nbw words, or NULL */
	size_t nbw;     /* ax->bwords when bits was sized */
};

typedef struct aname {
	char *s;
	uint32_t hnext;  /* next name with the same hash */
	uint32_t *terms; /* the name's terms, in order of first sight */
	size_t n, cap;
} aname;

/* The terms of one row, and the row's place in each posting list. */
typedef struct arow {
	uint32_t *term, *pos; /* one block of 2 * cap entries */
	uint32_t n, cap;
} arow;

struct knytt__attrx {
	knytt__aterm *t;
	size_t nt, capt;
	aname *nm;
	size_t nn, capn;
	knytt__lmap tmap; /* hash(name, value) -> first term of the chain */
	knytt__lmap nmap; /* hash(name) -> first name of the chain */
	arow *rows;
	size_t nrows; /* rows [0, nrows) have an entry */
	size_t bwords; /* words of every dense bitset */
};

int knytt__attr_number(const char *s, double *num)
{
	const char *p = s;
	if (*p == '+' || *p == '-')
		p++;
	size_t digits = 0;
	while (*p >= '0' && *p <= '9')
		p++, digits++;
	if (*p == '.')
		for (p++; *p >= '0' && *p <= '9'; p++)
			digits++;
	if (!digits)
		return 0;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!(*p >= '0' && *p <= '9'))
			return 0;
		while (*p >= '0' && *p <= '9')
			p++;
	}
	if (*p)
		return 0;
	double v = strtod(s, NULL);
	if (!isfinite(v))
		return 0;
	*num = v == 0 ? 0 : v; /* -0 is 0 */
	return 1;
}

void knytt__attr_canon(char *buf, size_t cap, double num)
{
	if (num == 0)
		num = 0; /* -0 prints as "-0" */
	/* the shortest of %.15g..%.17g that reads back exactly */
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, cap, "%.*g", prec, num);
		if (strtod(buf, NULL) == num)
			return;
	}
}

knytt__attrx *knytt__attrx_new(void)
{
	return calloc(1, sizeof(knytt__attrx));
}

void knytt__attrx_free(knytt__attrx *ax)
{
	if (!ax)
		return;
	for (size_t i = 0; i < ax->nt; i++) {
		free(ax->t[i].val);
		free(ax->t[i].rows);
		free(ax->t[i].bits);
	}
	for (size_t i = 0; i < ax->nn; i++) {
		free(ax->nm[i].s);
		free(ax->nm[i].terms);
	}
	for (size_t i = 0; i < ax->nrows; i++)
		free(ax->rows[i].term);
	free(ax->t);
	free(ax->nm);
	free(ax->rows);
	knytt__lmap_free(&ax->tmap);
	knytt__lmap_free(&ax->nmap);
	free(ax);
}

/* FNV-1a over the name, a 0 byte, then the value (NULL: the name only). */
static uint64_t hash2(const char *name, const char *val)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	h = (h ^ 0) * 0x100000001b3ULL;
	for (const char *p = val; p && *p; p++)
		h = (h ^ (unsigned char)*p) * 0x100000001b3ULL;
	return h;
}

static uint32_t name_find(const knytt__attrx *ax, const char *name)
{
	uint32_t i = knytt__lmap_get(&ax->nmap, hash2(name, NULL));
	while (i != NONE && strcmp(ax->nm[i].s, name) != 0)
		i = ax->nm[i].hnext;
	return i;
}

const knytt__aterm *knytt__attrx_term(const knytt__attrx *ax,
				      const char *name, const char *val)
{
	uint32_t nid = name_find(ax, name);
	if (nid == NONE)
		return NULL;
	uint32_t i = knytt__lmap_get(&ax->tmap, hash2(name, val));
	while (i != NONE &&
	       (ax->t[i].name != nid || strcmp(ax->t[i].val, val) != 0))
		i = ax->t[i].hnext;
	return i == NONE ? NULL : &ax->t[i];
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 16;
	while (nc < need)
		nc *= 2;
	void *np = realloc(*p, nc * size);
	if (!np)
		return -1;
	*p = np;
	*cap = nc;
	return 0;
}

static uint32_t name_get(knytt__attrx *ax, const char *name)
{
	uint32_t i = name_find(ax, name);
	if (i != NONE)
		return i;
	if (ax->nn >= NONE - 1 ||
	    grow((void **)&ax->nm, &ax->capn, ax->nn + 1, sizeof *ax->nm))
		return NONE;
	char *s = strdup(name);
	uint64_t h = hash2(name, NULL);
	uint32_t head = knytt__lmap_get(&ax->nmap, h);
	if (!s || knytt__lmap_put(&ax->nmap, h, (uint32_t)ax->nn)) {
		free(s);
		return NONE;
	}
	ax->nm[ax->nn] = (aname){ .s = s, .hnext = head };
	return (uint32_t)ax->nn++;
}

/* The term (name, val), created when new; NONE without memory. */
static uint32_t term_get(knytt__attrx *ax, const char *name, const char *val,
			 double num)
{
	const knytt__aterm *f = knytt__attrx_term(ax, name, val);
	if (f)
		return (uint32_t)(f - ax->t);
	uint32_t nid = name_get(ax, name);
	if (nid == NONE || ax->nt >= NONE - 1 ||
	    grow((void **)&ax->t, &ax->capt, ax->nt + 1, sizeof *ax->t))
		return NONE;
	aname *an = &ax->nm[nid];
	if (grow((void **)&an->terms, &an->cap, an->n + 1, sizeof *an->terms))
		return NONE;
	char *v = strdup(val);
	uint64_t h = hash2(name, val);
	uint32_t head = knytt__lmap_get(&ax->tmap, h);
	if (!v || knytt__lmap_put(&ax->tmap, h, (uint32_t)ax->nt)) {
		free(v);
		return NONE;
	}
	an->terms[an->n++] = (uint32_t)ax->nt;
	ax->t[ax->nt] = (knytt__aterm){
		.name = nid, .hnext = head, .val = v, .num = num
	};
	return (uint32_t)ax->nt++;
}

/* Every dense bitset covers row @p row. */
static int bits_cover(knytt__attrx *ax, size_t row)
{
	if (row / 64 < ax->bwords)
		return 0;
	size_t nw = ax->bwords ? ax->bwords * 2 : 64;
	while (nw <= row / 64)
		nw *= 2;
	for (size_t i = 0; i < ax->nt; i++) {
		knytt__aterm *t = &ax->t[i];
		if (!t->bits || t->nbw >= nw)
			continue;
		uint64_t *nb = realloc(t->bits, nw * sizeof *nb);
		if (!nb)
			return -1;
		memset(nb + t->nbw, 0, (nw - t->nbw) * sizeof *nb);
		t->bits = nb;
		t->nbw = nw;
	}
	ax->bwords = nw;
	return 0;
}

/* Term @p t's posting list as a bitset, once it has DENSE_ON rows (without
 * memory it stays a list, which is slower, not wrong). */
static void dense_on(knytt__attrx *ax, knytt__aterm *t)
{
	if (t->bits || t->n < DENSE_ON)
		return;
	if (!(t->bits = calloc(ax->bwords, sizeof *t->bits)))
		return;
	t->nbw = ax->bwords;
	for (size_t i = 0; i < t->n; i++)
		t->bits[t->rows[i] / 64] |= 1ULL << (t->rows[i] % 64);
}

/* Removes entry i of row @p row from its term's posting list, moving the
 * list's last row into the hole (and fixing that row's recorded place). */
static void unlink_one(knytt__attrx *ax, uint32_t row, uint32_t i)
{
	arow *ar = &ax->rows[row];
	uint32_t tid = ar->term[i], pos = ar->pos[i];
	knytt__aterm *t = &ax->t[tid];
	uint32_t last = t->rows[--t->n];
	if (pos != t->n) {
		t->rows[pos] = last;
		arow *lr = &ax->rows[last];
		for (uint32_t j = 0; j < lr->n; j++)
			if (lr->term[j] == tid) {
				lr->pos[j] = pos;
				break;
			}
	}
	if (t->bits) {
		t->bits[row / 64] &= ~(1ULL << (row % 64));
		if (t->n < DENSE_OFF) {
			free(t->bits);
			t->bits = NULL;
		}
	}
}

static void row_clear(knytt__attrx *ax, uint32_t row)
{
	arow *ar = &ax->rows[row];
	for (uint32_t i = 0; i < ar->n; i++)
		unlink_one(ax, row, i);
	ar->n = 0;
}

/* Adds (name, val) to row @p row unless it has it already. */
static int row_add(knytt__attrx *ax, uint32_t row, const char *name,
		   const char *val, double num)
{
	uint32_t tid = term_get(ax, name, val, num);
	if (tid == NONE)
		return -1;
	arow *ar = &ax->rows[row];
	for (uint32_t i = 0; i < ar->n; i++)
		if (ar->term[i] == tid)
			return 0; /* ["a", "a"] */
	if (ar->n == ar->cap) {
		uint32_t nc = ar->cap ? ar->cap * 2 : 8;
		uint32_t *nb = malloc(2 * (size_t)nc * sizeof *nb);
		if (!nb)
			return -1;
		if (ar->n) { /* a fresh row has no arrays: no memcpy(NULL) */
			memcpy(nb, ar->term, ar->n * sizeof *nb);
			memcpy(nb + nc, ar->pos, ar->n * sizeof *nb);
		}
		free(ar->term);
		ar->term = nb;
		ar->pos = nb + nc;
		ar->cap = nc;
	}
	knytt__aterm *t = &ax->t[tid];
	if (grow((void **)&t->rows, &t->cap, t->n + 1, sizeof *t->rows))
		return -1;
	ar->term[ar->n] = tid;
	ar->pos[ar->n++] = (uint32_t)t->n;
	t->rows[t->n++] = row;
	if (t->bits && row / 64 >= t->nbw) {
		free(t->bits); /* not grown (no memory): a list again */
		t->bits = NULL;
	}
	if (t->bits)
		t->bits[row / 64] |= 1ULL << (row % 64);
	else
		dense_on(ax, t);
	return 0;
}

/* One scalar of the JSON: its canonical text into buf, numeric value into
 * *num.  0 for a value to index, -1 for one that gives none. */
static int scalar(const cJSON *j, char *buf, size_t cap, const char **txt,
		  double *num)
{
	*num = NAN;
	if (cJSON_IsNumber(j)) {
		*num = j->valuedouble;
		knytt__attr_canon(buf, cap, *num);
		*txt = buf;
	} else if (cJSON_IsBool(j)) {
		*txt = cJSON_IsTrue(j) ? "true" : "false";
	} else if (cJSON_IsString(j) && j->valuestring) {
		*txt = j->valuestring;
		if (knytt__attr_number(*txt, num)) {
			knytt__attr_canon(buf, cap, *num);
			*txt = buf;
		}
	} else {
		return -1;
	}
	return 0;
}

static int add_json(knytt__attrx *ax, uint32_t row, const cJSON *obj)
{
	char buf[40];
	const char *txt;
	double num;
	for (const cJSON *a = obj->child; a; a = a->next) {
		if (!a->string)
			continue;
		if (cJSON_IsArray(a)) {
			for (const cJSON *x = a->child; x; x = x->next)
				if (!scalar(x, buf, sizeof buf, &txt, &num) &&
				    row_add(ax, row, a->string, txt, num))
					return -1;
		} else if (!scalar(a, buf, sizeof buf, &txt, &num) &&
			   row_add(ax, row, a->string, txt, num)) {
			return -1;
		}
	}
	return 0;
}

int knytt__attrx_set(knytt__attrx *ax, uint32_t row, const char *json)
{
	if (row >= ax->nrows) {
		size_t cap = ax->nrows;
		if (grow((void **)&ax->rows, &cap, (size_t)row + 1,
			 sizeof *ax->rows))
			return knytt__err(KNYTT_ENOMEM, "out of memory");
		memset(ax->rows + ax->nrows, 0,
		       (cap - ax->nrows) * sizeof *ax->rows);
		ax->nrows = cap;
	}
	row_clear(ax, row);
	if (!json || !*json)
		return KNYTT_OK;
	if (bits_cover(ax, row))
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	cJSON *j = cJSON_Parse(json);
	int bad = 0;
	if (cJSON_IsObject(j))
		bad = add_json(ax, row, j);
	cJSON_Delete(j);
	if (bad) {
		row_clear(ax, row);
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	}
	return KNYTT_OK;
}

void knytt__attrx_or(const knytt__aterm *t, uint64_t *out, size_t nwords)
{
	if (t->bits) {
		/* bits holds bwords words: it covers every row with
		 * attributes, maybe not the whole table (or more of it) */
		size_t nw = nwords < t->nbw ? nwords : t->nbw;
		for (size_t w = 0; w < nw; w++)
			out[w] |= t->bits[w];
		return;
	}
	for (size_t i = 0; i < t->n; i++) {
		uint32_t r = t->rows[i];
		if (r / 64 < nwords)
			out[r / 64] |= 1ULL << (r % 64);
	}
}

void knytt__attrx_each_num(const knytt__attrx *ax, const char *name,
			   int (*fn)(const knytt__aterm *t, double num,
				     void *ctx),
			   void *ctx)
{
	uint32_t nid = name_find(ax, name);
	if (nid == NONE)
		return;
	const aname *an = &ax->nm[nid];
	for (size_t i = 0; i < an->n; i++) {
		const knytt__aterm *t = &ax->t[an->terms[i]];
		if (!isnan(t->num) && t->n && fn(t, t->num, ctx))
			return;
	}
}

size_t knytt__attrx_bytes(const knytt__attrx *ax)
{
	size_t b = sizeof *ax + ax->capt * sizeof *ax->t +
		   ax->capn * sizeof *ax->nm + ax->nrows * sizeof *ax->rows +
		   knytt__lmap_bytes(&ax->tmap) + knytt__lmap_bytes(&ax->nmap);
	for (size_t i = 0; i < ax->nt; i++)
		b += strlen(ax->t[i].val) + 1 + ax->t[i].cap * 4 +
		     (ax->t[i].bits ? ax->t[i].nbw * 8 : 0);
	for (size_t i = 0; i < ax->nn; i++)
		b += strlen(ax->nm[i].s) + 1 + ax->nm[i].cap * 4;
	for (size_t i = 0; i < ax->nrows; i++)
		b += (size_t)ax->rows[i].cap * 8;
	return b;
}
