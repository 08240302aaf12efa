/*
 * recommend.c -- `knytt recommend USER` and `knytt recommend --users FILE`.
 *
 * Batch mode exists because opening the engine (the store, the model, the
 * vector index) costs far more than one recommendation: one process per
 * user pays it every time (65 to 120 ms), one process for the whole file
 * pays it once.  The answers are the same as one call per user, in the
 * order of the file; a user that fails (unknown without --cold, a bad id)
 * gets an error line and does not stop the others.
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* The options of one recommend run, applied to every user. */
typedef struct recq {
	size_t k;
	knytt_filter f;
	int any;  /* a filter option was given */
	int cold; /* --cold: unknown users are registered as new visitors */
	knytt_rec_options o;
} recq;

static int parse_recq(const args *a, recq *q)
{
	double mmr = 1;
	int rc;
	memset(q, 0, sizeof *q);
	if ((rc = cli_parse_k(a, &q->k)) ||
	    (rc = cli_parse_filter(a, &q->f, &q->any)) ||
	    (rc = arg_double(a, "mmr", &mmr)))
		return rc;
	if (mmr < 0 || mmr > 1)
		return cli_usage_field("recommend", "mmr",
				       "--mmr must be in 0..1");
	knytt_rec_options_init(&q->o);
	q->o.mmr_lambda = mmr;
	if (arg_has(a, "exclude-seen"))
		q->o.exclude_seen = 1;
	q->cold = arg_has(a, "cold");
	return 0;
}

/* Recommendations for @p user into @p r: the count, or a negative knytt
 * code (KNYTT_ENOTFOUND: unknown user and no --cold). */
static int recommend_one(knytt_engine *e, const recq *q, const char *user,
			 knytt_result *r)
{
	knytt_store *st = knytt_engine_store(e);
	int rc = knytt_store_user_get(st, user, NULL, NULL, NULL);
	if (rc == KNYTT_ENOTFOUND && q->cold) {
		/* a new visitor: registered without history, so that the
		 * engine answers with its cold-start list under the filters */
		rc = knytt_store_user_upsert(st, user, NULL, NULL);
	}
	if (rc < 0)
		return rc;
	return knytt_engine_recommend(e, user, q->k, q->any ? &q->f : NULL,
				      &q->o, r);
}

static int recommend_single(cli *c, knytt_engine *e, const recq *q,
			    const char *user, knytt_result *r)
{
	int n = recommend_one(e, q, user, r);
	if (n == KNYTT_ENOTFOUND)
		return cli_error(EXIT_NOTFOUND, "KNYTT_ENOTFOUND", "user",
				 "recommend: no user '%s' (--cold gives a new "
				 "visitor's list)", user);
	if (n < 0)
		return cli_liberr(n, "recommend");
	outmeta m = {"recommend", "user", user, NULL, NULL};
	return out_results(c, knytt_engine_store(e), &m, r, n);
}

/* One answer line: "USER ITEM ITEM ..." or a JSON object. */
static void batch_line(const cli *c, knytt_store *st, const char *user,
		       const knytt_result *r, int n)
{
	if (!c->json) {
		fputs(user, stdout);
		for (int i = 0; i < n; i++)
			printf(" %s", r[i].ext_id);
		putchar('\n');
		return;
	}
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "user", user);
	cJSON *arr = cJSON_AddArrayToObject(j, "results");
	for (int i = 0; i < n; i++) {
		knytt_item *it = NULL;
		if (knytt_store_item_get_id(st, r[i].item_id, &it) != 0)
			it = NULL; /* shown without details */
		cJSON_AddItemToArray(arr, out_result_json(&r[i], i + 1, it));
		knytt_free(it);
	}
	char *t = cJSON_PrintUnformatted(j);
	if (t)
		puts(t);
	cJSON_free(t);
	cJSON_Delete(j);
}

/* A user that failed: a line on stderr, and an answer line that says so
 * (the user alone, or {"user", "error"} with --json), so that answer
 * lines stay one per user. */
static int batch_error(const cli *c, const char *path, size_t line,
		       const char *user, int rc)
{
	const char *msg = knytt_errmsg();
	char text[600];
	if (rc == KNYTT_ENOTFOUND)
		snprintf(text, sizeof text, "no user '%s'", user);
	else
		snprintf(text, sizeof text, "user '%s': %s", user,
			 msg && *msg ? msg : knytt_errstr(rc));
	fprintf(stderr, "knytt: recommend: %s:%zu: %s\n", path, line, text);
	if (!c->json) {
		printf("%s\n", user);
	} else {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "user", user);
		cJSON *e = cJSON_AddObjectToObject(j, "error");
		cJSON_AddStringToObject(e, "code", knytt_errname(rc));
		cJSON_AddStringToObject(e, "message", text);
		cJSON_AddStringToObject(e, "field", "user");
		char *t = cJSON_PrintUnformatted(j);
		if (t)
			puts(t);
		cJSON_free(t);
		cJSON_Delete(j);
	}
	return cli_exit_for(rc);
}

/* The user id of a line: without the line end and surrounding blanks. */
static char *trim(char *s)
{
	size_t n = strlen(s);
	while (n && strchr(" \t\r\n", s[n - 1]))
		s[--n] = 0;
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

static int recommend_batch(cli *c, knytt_engine *e, const recq *q,
			   const char *path, knytt_result *r)
{
	FILE *f = strcmp(path, "-") ? fopen(path, "r") : stdin;
	if (!f)
		return cli_error(EXIT_ERR, "KNYTT_EIO", "users",
				 "recommend: cannot read %s: %s", path,
				 strerror(errno));
	char *buf = NULL;
	size_t cap = 0, line = 0;
	int ex = EXIT_OK;
	while (getline(&buf, &cap, f) >= 0) {
		line++;
		char *user = trim(buf);
		if (!*user)
			continue;
		if (cli_interrupted()) {
			ex = EXIT_INTR;
			break;
		}
		int n = recommend_one(e, q, user, r);
		if (n >= 0) {
			batch_line(c, knytt_engine_store(e), user, r, n);
			continue;
		}
		int st = batch_error(c, path, line, user, n);
		/* the worst status wins: an error over "not found" */
		if (ex == EXIT_OK || st == EXIT_ERR)
			ex = st;
	}
	if (ferror(f))
		ex = cli_error(EXIT_ERR, "KNYTT_EIO", "users",
			       "recommend: error reading %s", path);
	free(buf);
	if (f != stdin)
		fclose(f);
	return ex;
}

int cmd_recommend(cli *c, args *a)
{
	recq q;
	int rc;
	if ((rc = parse_recq(a, &q)))
		return rc;
	const char *users = arg_get(a, "users");
	if (users && a->npos)
		return cli_usage_field("recommend", "users", "give USER or "
				       "--users FILE, not both");
	if (!users && !a->npos)
		return cli_usage("recommend", "missing argument: USER or "
					      "--users FILE");
	if (users && !*users)
		return cli_usage_field("recommend", "users", "--users needs a "
				       "file (- for standard input)");
	knytt_engine *e;
	if ((rc = cli_engine_open(c, &e)))
		return rc;
	knytt_result *r = calloc(q.k, sizeof *r);
	if (r)
		r[0].struct_size = sizeof *r; /* the array's stride */
	if (!r)
		rc = cli_liberr(KNYTT_ENOMEM, "recommend");
	else if (users)
		rc = recommend_batch(c, e, &q, users, r);
	else
		rc = recommend_single(c, e, &q, a->pos[0], r);
	free(r);
	knytt_engine_close(e);
	return rc;
}
