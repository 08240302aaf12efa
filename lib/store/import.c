/*
 * import.c -- the rows of a bulk import (knytt_store_import): CSV, JSON
 * Lines and the MovieLens files read, each row turned into an item, user
 * or interaction record and its fields checked (numbers, booleans, NUL
 * bytes, columns and keys).  A row that fails is reported with its line
 * and field and skipped; the records go to the write path (importw.c),
 * which validates them as the single-row calls do and stores them.  The
 * entry point, knytt_store_import, is there too: it opens the file and
 * the batches and calls knytt__imp_parse.
 */
#include "csv.h"
#include "import.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- field parsing ------------------------------------------------------- */

static int parse_f64(imp *im, const char *field, const char *s, double *v)
{
	char *end;
	errno = 0;
	double d = strtod(s, &end);
	if (end == s || *end || errno == ERANGE || !isfinite(d)) {
		char msg[160];
		snprintf(msg, sizeof msg, "field %s: '%.40s' is not a number",
			 field, s);
		knytt__imp_reject(im, field, msg);
		return -1;
	}
	*v = d;
	return 0;
}

static int parse_i64(imp *im, const char *field, const char *s, int64_t *v)
{
	char *end;
	errno = 0;
	long long d = strtoll(s, &end, 10);
	if (end == s || *end || errno == ERANGE) {
		char msg[160];
		snprintf(msg, sizeof msg,
			 "field %s: '%.40s' is not an integer", field, s);
		knytt__imp_reject(im, field, msg);
		return -1;
	}
	*v = d;
	return 0;
}

static int parse_bool(imp *im, const char *field, const char *s, int *v)
{
	if (!strcmp(s, "1") || !strcmp(s, "true")) {
		*v = 1;
		return 0;
	}
	if (!strcmp(s, "0") || !strcmp(s, "false")) {
		*v = 0;
		return 0;
	}
	char msg[160];
	snprintf(msg, sizeof msg, "field %s: '%.40s' is not 0/1/true/false",
		 field, s);
	knytt__imp_reject(im, field, msg);
	return -1;
}

/* Column names per kind, in a fixed order (the column's index is its
 * meaning). */
static const char *const item_cols[] = {
	"id",	   "title",   "description", "category",  "price",
	"currency", "in_stock", "quality",    "image_url", "attributes"};
static const char *const user_cols[] = {"id", "attributes"};
static const char *const ix_cols[] = {"user",	"item", "type",	   "weight",
				      "value", "ts_ms", "event_id"};

static void cols_of(knytt_record_kind k, const char *const **names,
		    size_t *n)
{
	if (k == KNYTT_RECORD_ITEMS) {
		*names = item_cols;
		*n = sizeof item_cols / sizeof *item_cols;
	} else if (k == KNYTT_RECORD_USERS) {
		*names = user_cols;
		*n = sizeof user_cols / sizeof *user_cols;
	} else {
		*names = ix_cols;
		*n = sizeof ix_cols / sizeof *ix_cols;
	}
}

/* Builds and writes a record from up to 10 values indexed by column
 * meaning (NULL = no value).  Bit k of @p have is set when column k is in
 * the row at all: an item column missing from the file keeps the stored
 * value, while a column present without a value clears it (NULL, or the
 * default of a number: price 0, quality 0, in_stock 1).  Returns 0, or a
 * fatal error. */
static int put_values(imp *im, const char *const *v, unsigned have)
{
	if (im->kind == KNYTT_RECORD_ITEMS) {
		knytt_item it;
		memset(&it, 0, sizeof it);
		it.struct_size = sizeof it;
		it.ext_id = v[0];
		it.title = v[1];
		it.description = v[2];
		it.category = v[3];
		it.currency = v[5];
		it.image_url = v[8];
		it.attributes = v[9];
		it.in_stock = 1;
		if ((v[4] && parse_f64(im, "price", v[4], &it.price)) ||
		    (v[6] && parse_bool(im, "in_stock", v[6], &it.in_stock)) ||
		    (v[7] && parse_f64(im, "quality", v[7], &it.quality)))
			return 0;
		/* columns 1..9 are the KNYTT__KEEP_* bits 0..8 */
		return knytt__imp_item(im, &it, ~(have >> 1) & 0x1FFu);
	}
	if (im->kind == KNYTT_RECORD_USERS) {
		if (!v[0]) {
			knytt__imp_reject(im, "id", "field id is required");
			return 0;
		}
		return knytt__imp_user(im, v[0], v[1], (have & 2) != 0);
	}
	knytt_interaction x;
	memset(&x, 0, sizeof x);
	x.struct_size = sizeof x;
	x.user = v[0];
	x.item = v[1];
	x.type = v[2];
	x.event_id = v[6];
	if ((v[3] && parse_f64(im, "weight", v[3], &x.weight)) ||
	    (v[5] && parse_i64(im, "ts_ms", v[5], &x.ts_ms)))
		return 0;
	if (v[4]) {
		if (parse_f64(im, "value", v[4], &x.value))
			return 0;
		x.has_value = 1;
	}
	return knytt__imp_ix(im, &x);
}

/* A NUL byte would end the C string of a value early: "c\0ZZZ" would be
 * stored as "c" and overwrite item c.  Such a row is refused whole. */
static void nul_reject(imp *im, const char *field)
{
	char msg[160];
	snprintf(msg, sizeof msg, "field %.64s holds a NUL byte", field);
	knytt__imp_reject(im, field, msg);
}

/* ---- CSV ---------------------------------------------------------------- */

/* The header row: map[i] = the meaning of file column i, *have = the
 * meanings present (bit k for column k).  Returns 0 or KNYTT_EINVAL. */
static int csv_header(knytt__csv *c, const char *const *names,
		      size_t ncols, int *map, unsigned *have)
{
	if (knytt__csv_next(c) != 1 || c->bad)
		return knytt__err(KNYTT_EINVAL, "line 1: no CSV header row%s%s",
				  c->bad ? ": " : "", c->bad ? c->bad : "");
	size_t nf = c->nf;
	if (nf > 64)
		return knytt__err(KNYTT_EINVAL,
				  "line 1: %zu columns, at most 64", nf);
	int seen[16] = {0}, have_req = 0;
	*have = 0;
	for (size_t i = 0; i < nf; i++) {
		const char *h = knytt__csv_field(c, i);
		map[i] = -1;
		for (size_t k = 0; k < ncols; k++)
			if (strcmp(h, names[k]) == 0)
				map[i] = (int)k;
		if (map[i] < 0 || seen[map[i]]++)
			return knytt__err_field(
				KNYTT_EINVAL, h,
				"line 1, field %.64s: %s column", h,
				map[i] < 0 ? "unknown" : "duplicate");
		if (map[i] == 0)
			have_req = 1;
		*have |= 1u << map[i];
	}
	if (!have_req)
		return knytt__err_field(KNYTT_EINVAL, names[0],
				  "line 1, field %s: required column missing",
				  names[0]);
	return 0;
}

static int import_csv(imp *im, FILE *f)
{
	knytt__csv c;
	if (knytt__csv_init(&c, f, ','))
		return knytt__err(KNYTT_ENOMEM, "out of memory");
	const char *const *names;
	size_t ncols;
	cols_of(im->kind, &names, &ncols);
	int map[64]; /* file column -> meaning */
	unsigned have = 0; /* the file's columns, by meaning */
	int rc = csv_header(&c, names, ncols, map, &have);
	if (rc) {
		knytt__csv_free(&c);
		return rc;
	}
	size_t nf = c.nf;
	while ((rc = knytt__csv_next(&c)) == 1) {
		im->line = c.rec_line;
		if (c.bad) {
			knytt__imp_reject(im, "", c.bad);
			continue;
		}
		if (c.nf != nf) {
			char msg[96];
			snprintf(msg, sizeof msg,
				 "row has %zu fields, the header has %zu", c.nf,
				 nf);
			knytt__imp_reject(im, "", msg);
			continue;
		}
		const char *v[16] = {0};
		size_t nul = nf;
		for (size_t i = 0; i < nf; i++) {
			const char *s = knytt__csv_field(&c, i);
			v[map[i]] = *s ? s : NULL; /* empty = no value */
			if (nul == nf && strlen(s) != knytt__csv_field_len(&c, i))
				nul = i;
		}
		if (nul < nf) {
			nul_reject(im, names[map[nul]]);
			continue;
		}
		if ((rc = put_values(im, v, have)))
			break;
	}
	knytt__csv_free(&c);
	return rc < 0 ? rc : 0;
}

/* ---- JSON Lines ---------------------------------------------------------- */

/* Whether a string of JSON line @p s holds a NUL: a raw byte, or the
 * escape \u0000, which cJSON turns into the end of a C string.  On 1,
 * @p key holds the top-level key it belongs to ("" if none). */
static int jsonl_nul(const char *s, size_t n, char *key, size_t kcap)
{
	int depth = 0, in_str = 0, want_key = 0, is_key = 0;
	size_t start = 0;
	key[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];
		if (ch == '\0')
			return 1;
		if (in_str) {
			if (ch == '\\') {
				if (i + 5 < n && s[i + 1] == 'u' &&
				    memcmp(s + i + 2, "0000", 4) == 0)
					return 1;
				i++; /* the escaped character */
			} else if (ch == '"') {
				in_str = 0;
				if (is_key)
					snprintf(key, kcap, "%.*s",
						 (int)(i - start), s + start);
			}
			continue;
		}
		if (ch == '"') {
			in_str = 1;
			start = i + 1;
			is_key = depth == 1 && want_key;
			want_key = 0;
		} else if (ch == '{' || ch == '[') {
			want_key = ++depth == 1 && ch == '{';
		} else if (ch == '}' || ch == ']') {
			depth--;
		} else if (ch == ',' && depth == 1) {
			want_key = 1;
		}
	}
	return 0;
}

/* One key @p e of a JSON Lines object into v[k], k its column's meaning
 * (set in *have): numbers printed into num[k], the attributes object
 * into *owned (the caller frees it), "" and null as no value.  Returns
 * 0, or -1 when the key or its value was refused (reported). */
static int jsonl_value(imp *im, const cJSON *e, const char *const *names,
		       size_t ncols, const char **v, char (*num)[40],
		       char **owned, unsigned *have)
{
	int k = -1;
	for (size_t i = 0; i < ncols; i++)
		if (e->string && !strcmp(e->string, names[i]))
			k = (int)i;
	char msg[160];
	if (k < 0) {
		snprintf(msg, sizeof msg, "field %.64s: unknown field",
			 e->string ? e->string : "");
		knytt__imp_reject(im, e->string ? e->string : "", msg);
		return -1;
	}
	const char *nm = names[k];
	int is_num = !strcmp(nm, "price") || !strcmp(nm, "quality") ||
		     !strcmp(nm, "weight") || !strcmp(nm, "value") ||
		     !strcmp(nm, "ts_ms");
	int is_bool = !strcmp(nm, "in_stock");
	*have |= 1u << k;
	if (cJSON_IsNull(e))
		return 0;
	if (!strcmp(nm, "attributes")) {
		if (!cJSON_IsObject(e)) {
			snprintf(msg, sizeof msg,
				 "field %s: expected an object", nm);
			knytt__imp_reject(im, nm, msg);
			return -1;
		}
		if (!*owned) {
			*owned = cJSON_PrintUnformatted(e);
			v[k] = *owned;
		}
	} else if (is_num || is_bool) {
		if (is_bool && cJSON_IsBool(e)) {
			v[k] = cJSON_IsTrue(e) ? "1" : "0";
		} else if (cJSON_IsNumber(e)) {
			snprintf(num[k], sizeof num[k],
				 !strcmp(nm, "ts_ms") ? "%.0f" : "%.17g",
				 e->valuedouble);
			v[k] = num[k];
		} else {
			snprintf(msg, sizeof msg, "field %s: expected a %s",
				 nm, is_bool ? "boolean" : "number");
			knytt__imp_reject(im, nm, msg);
			return -1;
		}
	} else if (cJSON_IsString(e)) {
		/* "" clears, as null does (not the id) */
		if (k == 0 || e->valuestring[0])
			v[k] = e->valuestring;
	} else if (cJSON_IsNumber(e) && k == 0) {
		/* numeric ids are common: accept 42 as "42" */
		snprintf(num[k], sizeof num[k], "%.17g", e->valuedouble);
		v[k] = num[k];
	} else {
		snprintf(msg, sizeof msg, "field %s: expected a string", nm);
		knytt__imp_reject(im, nm, msg);
		return -1;
	}
	return 0;
}

static int import_jsonl(imp *im, FILE *f)
{
	const char *const *names;
	size_t ncols;
	cols_of(im->kind, &names, &ncols);
	char *line = NULL;
	size_t lcap = 0;
	ssize_t n;
	int rc = 0;
	im->line = 0;
	while ((n = getline(&line, &lcap, f)) >= 0) {
		im->line++;
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (strspn(line, " \t") == (size_t)n)
			continue;
		if ((size_t)n > KNYTT__CSV_MAX) {
			knytt__imp_reject(im, "", "line is longer than 1 MiB");
			continue;
		}
		char nulkey[64];
		if (jsonl_nul(line, (size_t)n, nulkey, sizeof nulkey)) {
			nul_reject(im, nulkey);
			continue;
		}
		cJSON *j = cJSON_ParseWithLength(line, (size_t)n);
		if (!j || !cJSON_IsObject(j)) {
			knytt__imp_reject(im, "",
					  j ? "line is not a JSON object"
					    : "malformed JSON");
			cJSON_Delete(j);
			continue;
		}
		const char *v[16] = {0};
		unsigned have = 0; /* keys present, even null or "" */
		char *owned = NULL;
		char num[16][40];
		int bad = 0;
		for (cJSON *e = j->child; e && !bad; e = e->next)
			bad = jsonl_value(im, e, names, ncols, v, num, &owned,
					  &have) < 0;
		if (!bad)
			rc = put_values(im, v, have);
		free(owned);
		cJSON_Delete(j);
		if (rc)
			break;
	}
	free(line);
	return rc;
}

/* ---- MovieLens ----------------------------------------------------------- */

static const char *const ml_genres[19] = {
	"unknown", "Action",  "Adventure", "Animation", "Children's",
	"Comedy",  "Crime",   "Documentary", "Drama",  "Fantasy",
	"Film-Noir", "Horror", "Musical",  "Mystery",  "Romance",
	"Sci-Fi",  "Thriller", "War",      "Western"};

/* ISO-8859-1 -> UTF-8 (every byte is a code point). */
static void latin1(const char *in, char *out, size_t cap)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)in;
	     *p && o + 3 < cap; p++) {
		if (*p < 0x80) {
			out[o++] = (char)*p;
		} else {
			out[o++] = (char)(0xC0 | (*p >> 6));
			out[o++] = (char)(0x80 | (*p & 0x3F));
		}
	}
	out[o] = '\0';
}

/* Splits @p s in place on @p sep ("|", "\t" or "::"). */
static size_t split(char *s, const char *sep, char **f, size_t max)
{
	size_t n = 0, sl = strlen(sep);
	while (n < max) {
		f[n++] = s;
		char *e = strstr(s, sep);
		if (!e)
			break;
		*e = '\0';
		s = e + sl;
	}
	return n;
}

/* JSON string escaping for the small values of the mapping: writes at
 * most @p cap bytes with the NUL (a value that does not fit is cut) and
 * returns the length written. */
static size_t jstr(char *o, size_t cap, const char *s)
{
	size_t n = 0;
	if (cap < 3) {
		if (cap)
			o[0] = '\0';
		return 0;
	}
	o[n++] = '"';
	for (; *s && n + 8 < cap; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			o[n++] = '\\';
			o[n++] = (char)ch;
		} else if (ch < 0x20) {
			n += (size_t)snprintf(o + n, cap - n, "\\u%04x", ch);
		} else {
			o[n++] = (char)ch;
		}
	}
	o[n++] = '"';
	o[n] = '\0';
	return n;
}

static int ml_item(imp *im, char **f, size_t nf, int dat)
{
	/* attrs holds the worst case, as jstr escapes a byte into at most
	 * 6: movies.dat, 511 bytes of genres -> 6 * 511 + 3 * 19 + 13;
	 * u.item, fixed genre names (< 300) + a 199-byte date and a
	 * 599-byte URL -> 300 + 6 * 798 + 40.  (At 1536 bytes, a genres
	 * field of control characters overflowed it.) */
	char title[2048], genres[512] = "", attrs[8192], desc[600];
	const char *g[19];
	size_t ng = 0;
	if (dat) { /* movies.dat: id::title::G1|G2 */
		if (nf != 3) {
			knytt__imp_reject(im, "",
					  "expected MovieID::Title::Genres");
			return 0;
		}
		snprintf(genres, sizeof genres, "%s", f[2]);
		char *p = genres;
		while (ng < 19) {
			g[ng++] = p;
			char *e = strchr(p, '|');
			if (!e)
				break;
			*e = '\0';
			p = e + 1;
		}
	} else { /* u.item: id|title|date|video date|url|19 flags */
		if (nf != 24) {
			knytt__imp_reject(im, "",
					  "expected 24 '|'-separated fields");
			return 0;
		}
		for (int i = 0; i < 19; i++) {
			if (strcmp(f[5 + i], "1") == 0)
				g[ng++] = ml_genres[i];
			else if (strcmp(f[5 + i], "0") != 0) {
				knytt__imp_reject(im, ml_genres[i],
						  "genre flag is not 0 or 1");
				return 0;
			}
		}
	}
	latin1(f[1], title, sizeof title);
	/* attributes: {"genres":[...], "release_date":..., "imdb_url":...} */
	size_t o = (size_t)snprintf(attrs, sizeof attrs, "{\"genres\":[");
	size_t d = 0;
	desc[0] = '\0';
	for (size_t i = 0; i < ng; i++) {
		if (i)
			attrs[o++] = ',';
		o += jstr(attrs + o, sizeof attrs - o, g[i]);
		d += (size_t)snprintf(desc + d, sizeof desc - d, "%s%s",
				      i ? ", " : "", g[i]);
		if (d >= sizeof desc)
			d = sizeof desc - 1;
	}
	o += (size_t)snprintf(attrs + o, sizeof attrs - o, "]");
	if (!dat) {
		char tmp[600];
		o += (size_t)snprintf(attrs + o, sizeof attrs - o,
				      ",\"release_date\":");
		latin1(f[2], tmp, 200);
		o += jstr(attrs + o, sizeof attrs - o, tmp);
		o += (size_t)snprintf(attrs + o, sizeof attrs - o,
				      ",\"imdb_url\":");
		latin1(f[4], tmp, sizeof tmp);
		o += jstr(attrs + o, sizeof attrs - o, tmp);
	}
	snprintf(attrs + o, sizeof attrs - o, "}");
	knytt_item it;
	memset(&it, 0, sizeof it);
	it.struct_size = sizeof it;
	it.ext_id = f[0];
	it.title = title;
	it.category = ng ? g[0] : NULL;
	it.description = ng ? desc : NULL;
	it.in_stock = 1;
	it.attributes = attrs;
	return knytt__imp_item(im, &it, 0);
}

static int ml_user(imp *im, char **f, size_t nf, int dat)
{
	if (nf != 5) {
		knytt__imp_reject(im, "",
				  dat ? "expected UserID::Gender::Age::"
					"Occupation::Zip-code"
				      : "expected id|age|gender|occupation|zip");
		return 0;
	}
	const char *age = dat ? f[2] : f[1], *gender = dat ? f[1] : f[2];
	int64_t a;
	if (parse_i64(im, "age", age, &a))
		return 0;
	char attrs[2048], occ[300], zip[300], gs[40];
	latin1(f[3], occ, 200);
	latin1(f[4], zip, 200);
	char o1[420], o2[420];
	jstr(o1, sizeof o1, occ);
	jstr(o2, sizeof o2, zip);
	latin1(gender, occ, 16);
	jstr(gs, sizeof gs, occ);
	/* users.dat codes occupations as numbers 0..20: kept as numbers */
	int64_t oc = 0;
	if (dat && parse_i64(im, "occupation", f[3], &oc))
		return 0;
	if (dat)
		snprintf(attrs, sizeof attrs,
			 "{\"age\":%lld,\"gender\":%s,\"occupation\":%lld,"
			 "\"zip\":%s}",
			 (long long)a, gs, (long long)oc, o2);
	else
		snprintf(attrs, sizeof attrs,
			 "{\"age\":%lld,\"gender\":%s,\"occupation\":%s,"
			 "\"zip\":%s}",
			 (long long)a, gs, o1, o2);
	return knytt__imp_user(im, f[0], attrs, 1);
}

static int ml_rating(imp *im, char **f, size_t nf)
{
	if (nf != 4) {
		knytt__imp_reject(im, "",
				  "expected user, item, rating, timestamp");
		return 0;
	}
	knytt_interaction x;
	memset(&x, 0, sizeof x);
	x.struct_size = sizeof x;
	x.user = f[0];
	x.item = f[1];
	x.type = "rating";
	x.has_value = 1;
	int64_t ts;
	if (parse_f64(im, "rating", f[2], &x.value) ||
	    parse_i64(im, "timestamp", f[3], &ts))
		return 0;
	/* seconds; in milliseconds it must still fit an int64 (a larger
	 * value overflowed the product: found by fuzz_import_movielens) */
	if (ts <= 0 || ts > INT64_MAX / 1000) {
		knytt__imp_reject(im, "timestamp",
				  "field timestamp must be > 0 and at most "
				  "9223372036854775 (seconds)");
		return 0;
	}
	x.ts_ms = ts * 1000;
	char ev[600];
	snprintf(ev, sizeof ev, "ml:%.250s:%.250s", f[0], f[1]);
	x.event_id = ev;
	return knytt__imp_ix(im, &x);
}

static int import_movielens(imp *im, FILE *f)
{
	char *line = NULL;
	size_t lcap = 0;
	ssize_t n;
	int rc = 0;
	im->line = 0;
	while ((n = getline(&line, &lcap, f)) >= 0) {
		im->line++;
		while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		if (n == 0)
			continue;
		if (memchr(line, '\0', (size_t)n)) {
			nul_reject(im, "");
			continue;
		}
		int dat = strstr(line, "::") != NULL;
		char *fl[32];
		size_t nf;
		if (dat)
			nf = split(line, "::", fl, 32);
		else if (im->kind == KNYTT_RECORD_INTERACTIONS)
			nf = split(line, "\t", fl, 32);
		else
			nf = split(line, "|", fl, 32);
		if (im->kind == KNYTT_RECORD_ITEMS)
			rc = ml_item(im, fl, nf, dat);
		else if (im->kind == KNYTT_RECORD_USERS)
			rc = ml_user(im, fl, nf, dat);
		else
			rc = ml_rating(im, fl, nf);
		if (rc)
			break;
	}
	free(line);
	return rc;
}

/* ---- the file ------------------------------------------------------------ */

int knytt__imp_parse(imp *im, FILE *f, knytt_format format)
{
	if (format == KNYTT_FORMAT_CSV)
		return import_csv(im, f);
	if (format == KNYTT_FORMAT_JSONL)
		return import_jsonl(im, f);
	return import_movielens(im, f);
}
