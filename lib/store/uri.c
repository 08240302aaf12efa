/*
 * uri.c -- knytt_uri_redact: a store URI with its password hidden.
 *
 * A PostgreSQL URI may carry a password in three places, all of which
 * libpq accepts: the user info of the URL (postgres://user:PASS@host),
 * a query parameter (postgres://host/db?password=PASS), and the
 * keyword/value form (host=h password=PASS or password = 'a b').  Each
 * becomes "***", so that messages, --json output and logs can show the
 * URI.  Percent-encoded passwords need no decoding: the encoded text is
 * replaced whole, up to the delimiter the syntax defines ('@' ends the
 * user info, '&' or '#' a query value, blank a keyword value, the closing
 * quote a quoted one).
 */
#include "../internal.h"

#include <string.h>

#define MASK "***"

/* Appends to out[0..cap) (always terminated when cap > 0), counting
 * what would have been written. */
typedef struct sink {
	char *out;
	size_t cap, len;
} sink;

static void put(sink *k, const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++, k->len++)
		if (k->len + 1 < k->cap)
			k->out[k->len] = s[i];
	if (k->cap)
		k->out[k->len + 1 < k->cap ? k->len : k->cap - 1] = '\0';
}

/* Is s[i..] the key "password" of a query or keyword list: preceded by
 * the start, '?', '&' or a blank, and followed by optional blanks and
 * '='?  Returns the index just after '=' (and the blanks after it in
 * keyword form), or 0. */
static size_t password_key(const char *s, size_t i, int in_query)
{
	static const char key[] = "password";
	if (strncmp(s + i, key, sizeof key - 1) != 0)
		return 0;
	if (i > 0) {
		char p = s[i - 1];
		if (in_query ? p != '?' && p != '&'
			     : p != ' ' && p != '\t' && p != '\n')
			return 0;
	}
	size_t j = i + sizeof key - 1;
	while (!in_query && (s[j] == ' ' || s[j] == '\t'))
		j++;
	if (s[j] != '=')
		return 0;
	j++;
	while (!in_query && (s[j] == ' ' || s[j] == '\t'))
		j++;
	return j;
}

/* The end of a keyword-form value starting at s[j]: quoted ('...' with
 * backslash escapes) or up to a blank. */
static size_t keyword_value_end(const char *s, size_t j)
{
	if (s[j] != '\'') {
		while (s[j] && s[j] != ' ' && s[j] != '\t' && s[j] != '\n')
			j++;
		return j;
	}
	for (j++; s[j] && s[j] != '\''; j++)
		if (s[j] == '\\' && s[j + 1])
			j++;
	return s[j] ? j + 1 : j;
}

/* Copies @p s from @p i with every password value masked; @p in_query
 * picks the query syntax over the keyword one. */
static void mask_values(sink *k, const char *s, size_t i, int in_query)
{
	while (s[i]) {
		size_t v = password_key(s, i, in_query);
		if (!v) {
			put(k, s + i, 1);
			i++;
			continue;
		}
		put(k, s + i, v - i);
		size_t e = v;
		if (in_query)
			while (s[e] && s[e] != '&' && s[e] != '#')
				e++;
		else
			e = keyword_value_end(s, v);
		put(k, MASK, sizeof MASK - 1);
		i = e;
	}
}

int knytt_uri_redact(const char *uri, char *out, size_t cap)
{
	if (!uri || (!out && cap))
		return knytt__err(KNYTT_EINVAL, "uri or out is NULL");
	sink k = {out, cap, 0};
	if (cap)
		out[0] = '\0';
	const char *sep = strstr(uri, "://");
	if (!sep) {
		/* keyword/value form, unless a '?' opens a query before the
		 * first '=' (a URI without authority, sqlite:PATH?...) */
		size_t q = strcspn(uri, "?"), eq = strcspn(uri, "=");
		mask_values(&k, uri, 0, q < eq);
		return k.len > INT32_MAX ? INT32_MAX : (int)k.len;
	}
	size_t a = (size_t)(sep - uri) + 3;           /* authority start */
	size_t ae = a + strcspn(uri + a, "/?#");      /* authority end */
	const char *at = NULL;
	for (size_t i = a; i < ae; i++)
		if (uri[i] == '@')
			at = uri + i; /* the last one ends the user info */
	size_t colon = at ? a + strcspn(uri + a, ":@") : ae;
	if (at && uri + colon < at) {
		put(&k, uri, colon + 1);
		put(&k, MASK, sizeof MASK - 1);
		put(&k, at, (size_t)(uri + ae - at));
	} else {
		put(&k, uri, ae);
	}
	mask_values(&k, uri, ae, 1);
	return k.len > INT32_MAX ? INT32_MAX : (int)k.len;
}
