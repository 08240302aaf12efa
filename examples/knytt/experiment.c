/*
 * experiment.c -- `knytt analytics searches` and `knytt experiment
 * create|list|report|stop`: the search report and A/B experiments of
 * libknytt, as a table or (--json) one JSON document.
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>

/* --since / --until: a time, or a duration meaning that long ago. */
static int arg_when(const cli *c, const args *a, const char *name,
		    int64_t *out)
{
	const char *s = arg_get(a, name);
	double secs;
	*out = 0;
	if (!s)
		return 0;
	if (cli_parse_time(s, out) == 0)
		return 0;
	if (cli_parse_duration(s, &secs) == 0 && secs > 0) {
		int64_t now = c->now_ms ? c->now_ms : (int64_t)time(NULL) * 1000;
		*out = now - (int64_t)(secs * 1000);
		return *out > 0 ? 0 : cli_usage_field(a->cmd, name,
						      "--%s is too far back",
						      name);
	}
	return cli_usage_field(a->cmd, name,
			       "--%s needs a time (2024-05-01, epoch) or a "
			       "duration ago (7d), not '%s'",
			       name, s);
}

static cJSON *qstat_json(const knytt_query_stat *q)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "query", q->query);
	cJSON_AddNumberToObject(o, "searches", (double)q->searches);
	cJSON_AddNumberToObject(o, "zero_results", (double)q->zero_results);
	cJSON_AddNumberToObject(o, "mean_results", q->mean_results);
	cJSON_AddNumberToObject(o, "clicked", (double)q->clicked);
	cJSON_AddNumberToObject(o, "ctr", q->ctr);
	cJSON_AddNumberToObject(o, "mrr", q->mrr);
	return o;
}

static void print_json(cJSON *j)
{
	char *s = cJSON_PrintUnformatted(j);
	if (s)
		printf("%s\n", s);
	free(s);
	cJSON_Delete(j);
}

static void report_json(const knytt_search_report *r)
{
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "command", "analytics searches");
	cJSON_AddNumberToObject(j, "since_ms", (double)r->from_ms);
	cJSON_AddNumberToObject(j, "until_ms", (double)r->to_ms);
	cJSON_AddNumberToObject(j, "window_ms", (double)r->window_ms);
	cJSON_AddNumberToObject(j, "searches", (double)r->searches);
	cJSON_AddNumberToObject(j, "users", (double)r->users);
	cJSON_AddNumberToObject(j, "zero_results", (double)r->zero_results);
	cJSON_AddNumberToObject(j, "clicked", (double)r->clicked);
	cJSON_AddNumberToObject(j, "ctr", r->ctr);
	cJSON_AddNumberToObject(j, "mrr", r->mrr);
	cJSON *top = cJSON_AddArrayToObject(j, "top_queries");
	for (size_t i = 0; i < r->ntop; i++)
		cJSON_AddItemToArray(top, qstat_json(&r->top[i]));
	cJSON *few = cJSON_AddArrayToObject(j, "few_results");
	for (size_t i = 0; i < r->nfew; i++)
		cJSON_AddItemToArray(few, qstat_json(&r->few[i]));
	cJSON *days = cJSON_AddArrayToObject(j, "per_day");
	for (size_t i = 0; i < r->ndays; i++) {
		cJSON *d = cJSON_CreateObject();
		cJSON_AddNumberToObject(d, "day_ms", (double)r->days[i].day_ms);
		cJSON_AddNumberToObject(d, "searches",
					(double)r->days[i].searches);
		cJSON_AddNumberToObject(d, "zero_results",
					(double)r->days[i].zero_results);
		cJSON_AddNumberToObject(d, "clicked",
					(double)r->days[i].clicked);
		cJSON_AddItemToArray(days, d);
	}
	print_json(j);
}

static void qtable(const char *title, const knytt_query_stat *q, size_t n)
{
	printf("\n%s\n%-32s %8s %6s %8s %6s %6s\n", title, "query",
	       "searches", "zero", "results", "ctr", "mrr");
	for (size_t i = 0; i < n; i++) {
		out_cell(stdout, q[i].query, 32, 0);
		printf(" %8llu %6llu %8.1f %6.3f %6.3f\n",
		       (unsigned long long)q[i].searches,
		       (unsigned long long)q[i].zero_results, q[i].mean_results,
		       q[i].ctr, q[i].mrr);
	}
	if (!n)
		printf("(none)\n");
}

static void report_table(const knytt_search_report *r)
{
	printf("%llu searches by %llu shoppers, %llu with no result; "
	       "click-through %.3f, MRR %.3f (window %lld min)\n",
	       (unsigned long long)r->searches, (unsigned long long)r->users,
	       (unsigned long long)r->zero_results, r->ctr, r->mrr,
	       (long long)(r->window_ms / 60000));
	qtable("top queries:", r->top, r->ntop);
	qtable("queries with few results:", r->few, r->nfew);
	printf("\nsearches per day (UTC):\n");
	for (size_t i = 0; i < r->ndays; i++) {
		time_t t = (time_t)(r->days[i].day_ms / 1000);
		struct tm tm;
		char day[16];
		gmtime_r(&t, &tm);
		strftime(day, sizeof day, "%Y-%m-%d", &tm);
		printf("%s %8llu searches %6llu zero %6llu clicked\n", day,
		       (unsigned long long)r->days[i].searches,
		       (unsigned long long)r->days[i].zero_results,
		       (unsigned long long)r->days[i].clicked);
	}
}

int cmd_analytics(cli *c, args *a)
{
	if (strcmp(a->pos[0], "searches") != 0)
		return cli_usage_field("analytics", "report",
				       "unknown report '%s' (try searches)",
				       a->pos[0]);
	int64_t since, until;
	unsigned long top = 20, few = 0;
	double win = 0;
	int rc;
	if ((rc = arg_when(c, a, "since", &since)) ||
	    (rc = arg_when(c, a, "until", &until)) ||
	    (rc = arg_uint(a, "top", 1, 10000, &top)) ||
	    (rc = arg_uint(a, "few", 0, 1000000, &few)))
		return rc;
	if (arg_get(a, "window") &&
	    (cli_parse_duration(arg_get(a, "window"), &win) || !(win > 0)))
		return cli_usage_field("analytics", "window",
				       "--window needs a duration (30m, 1h)");
	knytt_store *st;
	if ((rc = cli_store_open(c, 0, &st)))
		return rc;
	knytt_search_report *r = NULL;
	rc = knytt_store_search_report(st, since, until, top, (int)few,
				       (int64_t)(win * 1000), &r);
	knytt_store_close(st);
	if (rc < 0)
		return cli_liberr(rc, "analytics searches");
	if (c->json)
		report_json(r);
	else
		report_table(r);
	knytt_free(r);
	return EXIT_OK;
}

/* ---- experiments ------------------------------------------------------ */

/* "NAME[:SHARE][,model=LABEL][,mmr=L][,exclude-seen=0|1]" into @p v. */
static int parse_variant(const char *spec, knytt_variant *v)
{
	char buf[512];
	if (strlen(spec) >= sizeof buf)
		return cli_usage_field("experiment", "variant",
				       "--variant is too long");
	snprintf(buf, sizeof buf, "%s", spec);
	char *save = NULL, *part = strtok_r(buf, ",", &save);
	char *colon = part ? strchr(part, ':') : NULL;
	if (colon) {
		*colon = 0;
		char *end;
		v->share = strtod(colon + 1, &end);
		if (*end || !(v->share > 0) || !isfinite(v->share))
			return cli_usage_field("experiment", "variant",
					       "--variant %s: the share must "
					       "be a number > 0", spec);
	}
	if (!part || strlen(part) >= sizeof v->name)
		return cli_usage_field("experiment", "variant",
				       "--variant needs NAME[:SHARE] (1..32 "
				       "bytes), not '%s'", spec);
	snprintf(v->name, sizeof v->name, "%s", part);
	while ((part = strtok_r(NULL, ",", &save))) {
		char *eq = strchr(part, '='), *end = NULL;
		if (eq)
			*eq++ = 0;
		if (eq && !strcmp(part, "model") &&
		    strlen(eq) < sizeof v->model)
			snprintf(v->model, sizeof v->model, "%s", eq);
		else if (eq && !strcmp(part, "mmr"))
			v->mmr_lambda = strtod(eq, &end);
		else if (eq && !strcmp(part, "exclude-seen"))
			v->exclude_seen = (int)strtol(eq, &end, 10);
		else
			return cli_usage_field("experiment", "variant",
					       "--variant %s: unknown setting "
					       "'%s' (model=, mmr=, "
					       "exclude-seen=)",
					       spec, part);
		if (end && (*end || end == eq))
			return cli_usage_field("experiment", "variant",
					       "--variant %s: '%s' needs a "
					       "number", spec, part);
	}
	return 0;
}

static int exp_create(cli *c, args *a, knytt_store *st, const char *name)
{
	knytt_experiment x;
	knytt_experiment_init(&x);
	if (strlen(name) > KNYTT_EXP_MAX_NAME)
		return cli_usage_field("experiment", "name",
				       "the name is longer than %d bytes",
				       KNYTT_EXP_MAX_NAME);
	snprintf(x.name, sizeof x.name, "%s", name);
	int rc;
	for (int i = 0; i < a->nopts; i++) {
		if (strcmp(a->names[i], "variant"))
			continue;
		if (x.nvariants == KNYTT_EXP_MAX_VARIANTS)
			return cli_usage_field("experiment", "variant",
					       "at most %d variants",
					       KNYTT_EXP_MAX_VARIANTS);
		if ((rc = parse_variant(a->vals[i], &x.variants[x.nvariants])))
			return rc;
		x.nvariants++;
	}
	if (x.nvariants < 2)
		return cli_usage_field("experiment", "variant",
				       "give two or more --variant NAME[:SHARE]");
	double win = 0;
	if ((rc = arg_when(c, a, "start", &x.start_ms)))
		return rc;
	if (arg_get(a, "end") && cli_parse_time(arg_get(a, "end"), &x.end_ms))
		return cli_usage_field("experiment", "end",
				       "--end needs a time (2024-05-01)");
	if (arg_get(a, "window") &&
	    (cli_parse_duration(arg_get(a, "window"), &win) || !(win > 0)))
		return cli_usage_field("experiment", "window",
				       "--window needs a duration (1h, 1d)");
	x.window_ms = (int64_t)(win * 1000);
	uint64_t id = 0;
	rc = knytt_store_experiment_create(st, &x, &id);
	if (rc < 0)
		return cli_liberr(rc, "experiment create");
	if (c->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "command", "experiment create");
		cJSON_AddStringToObject(j, "name", x.name);
		cJSON_AddNumberToObject(j, "id", (double)id);
		print_json(j);
	} else {
		cli_info(c, "experiment '%s' created with %d variants\n",
			 x.name, x.nvariants);
	}
	return EXIT_OK;
}

static const char *status_name(knytt_exp_status s)
{
	static const char *const n[] = {"scheduled", "running", "ended",
					"stopped"};
	return (unsigned)s < 4 ? n[s] : "?";
}

static cJSON *exp_json(const knytt_experiment *x)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", x->name);
	cJSON_AddStringToObject(o, "status", status_name(x->status));
	cJSON_AddNumberToObject(o, "start_ms", (double)x->start_ms);
	cJSON_AddNumberToObject(o, "end_ms", (double)x->end_ms);
	cJSON_AddNumberToObject(o, "stopped_ms", (double)x->stopped_ms);
	cJSON_AddNumberToObject(o, "window_ms", (double)x->window_ms);
	cJSON *arr = cJSON_AddArrayToObject(o, "variants");
	for (int i = 0; i < x->nvariants; i++) {
		const knytt_variant *v = &x->variants[i];
		cJSON *vo = cJSON_CreateObject();
		cJSON_AddStringToObject(vo, "name", v->name);
		cJSON_AddNumberToObject(vo, "share", v->share);
		cJSON_AddStringToObject(vo, "model", v->model);
		cJSON_AddNumberToObject(vo, "mmr_lambda", v->mmr_lambda);
		cJSON_AddNumberToObject(vo, "exclude_seen", v->exclude_seen);
		cJSON_AddItemToArray(arr, vo);
	}
	return o;
}

static int exp_list(cli *c, knytt_store *st)
{
	enum { CAP = 200 };
	knytt_experiment *x = calloc(CAP, sizeof *x);
	if (!x)
		return cli_error(EXIT_ERR, "KNYTT_ENOMEM", NULL, "out of memory");
	for (int i = 0; i < CAP; i++)
		x[i].struct_size = sizeof x[i];
	int n = knytt_store_experiment_list(st, x, CAP);
	if (n < 0) {
		free(x);
		return cli_liberr(n, "experiment list");
	}
	if (c->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "command", "experiment list");
		cJSON *arr = cJSON_AddArrayToObject(j, "experiments");
		for (int i = 0; i < n; i++)
			cJSON_AddItemToArray(arr, exp_json(&x[i]));
		print_json(j);
	} else {
		for (int i = 0; i < n; i++) {
			printf("%-24s %-9s", x[i].name,
			       status_name(x[i].status));
			for (int v = 0; v < x[i].nvariants; v++)
				printf(" %s:%g%s%s", x[i].variants[v].name,
				       x[i].variants[v].share,
				       x[i].variants[v].model[0] ? "/" : "",
				       x[i].variants[v].model);
			printf("\n");
		}
		if (n == 0)
			printf("(no experiments)\n");
	}
	free(x);
	return EXIT_OK;
}

static void add_num(cJSON *o, const char *k, double v)
{
	if (isnan(v))
		cJSON_AddNullToObject(o, k);
	else
		cJSON_AddNumberToObject(o, k, v);
}

static cJSON *ab_json(const knytt_ab_stat *s)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "n", (double)s->n);
	cJSON_AddNumberToObject(o, "successes", (double)s->x);
	cJSON_AddNumberToObject(o, "rate", s->rate);
	cJSON_AddNumberToObject(o, "ci_low", s->lo);
	cJSON_AddNumberToObject(o, "ci_high", s->hi);
	add_num(o, "lift", s->lift);
	add_num(o, "p_value", s->p);
	cJSON_AddBoolToObject(o, "small_sample", s->small);
	return o;
}

#define SMALL_NOTE                                                          \
	"an arm has fewer than 10 successes or failures: the z-test and "   \
	"intervals are rough; wait for more data"

static void ab_cell(const knytt_ab_stat *s, int control)
{
	printf("  %6.2f%% [%5.2f, %5.2f]", 100 * s->rate, 100 * s->lo,
	       100 * s->hi);
	if (control || isnan(s->p))
		printf(" %8s %8s", "control", "");
	else if (isnan(s->lift))
		printf(" %8s p=%.4f", "-", s->p);
	else
		printf(" %+7.1f%% p=%.4f", 100 * s->lift, s->p);
}

void cli_exp_report_print(const cli *c, const knytt_exp_report *r)
{
	if (c->json) {
		cJSON *j = exp_json(&r->exp);
		cJSON_AddStringToObject(j, "command", "experiment report");
		cJSON_AddBoolToObject(j, "small_sample", r->small_sample);
		if (r->small_sample)
			cJSON_AddStringToObject(j, "note", SMALL_NOTE);
		cJSON *arr = cJSON_AddArrayToObject(j, "report");
		for (int v = 0; v < r->nvariants; v++) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "variant", r->v[v].name);
			cJSON_AddNumberToObject(o, "exposures",
						(double)r->v[v].exposures);
			cJSON_AddNumberToObject(o, "users",
						(double)r->v[v].users);
			cJSON_AddItemToObject(o, "ctr", ab_json(&r->v[v].ctr));
			cJSON_AddItemToObject(o, "conversion",
					      ab_json(&r->v[v].conversion));
			cJSON_AddItemToArray(arr, o);
		}
		print_json(j);
		return;
	}
	printf("experiment %s (%s), outcomes within %lld min of an "
	       "exposure\n",
	       r->exp.name, status_name(r->exp.status),
	       (long long)(r->exp.window_ms / 60000));
	printf("%-10s %9s %7s  %-24s %-17s  %-24s %s\n", "variant",
	       "exposures", "users", "click-through [95% CI]", "lift, p",
	       "conversion [95% CI]", "lift, p");
	for (int v = 0; v < r->nvariants; v++) {
		printf("%-10s %9llu %7llu", r->v[v].name,
		       (unsigned long long)r->v[v].exposures,
		       (unsigned long long)r->v[v].users);
		ab_cell(&r->v[v].ctr, v == 0);
		ab_cell(&r->v[v].conversion, v == 0);
		printf("\n");
	}
	printf("lift: relative to %s; p: two-sided two-proportion z-test.\n",
	       r->nvariants ? r->v[0].name : "the control");
	if (r->small_sample)
		printf("note: %s.\n", SMALL_NOTE);
}

int cmd_experiment(cli *c, args *a)
{
	const char *sub = a->pos[0], *name = a->npos > 1 ? a->pos[1] : NULL;
	int list = !strcmp(sub, "list");
	if (!list && strcmp(sub, "create") && strcmp(sub, "report") &&
	    strcmp(sub, "stop"))
		return cli_usage_field("experiment", "action",
				       "unknown action '%s' (create, list, "
				       "report, stop)", sub);
	if (!list && !name)
		return cli_usage_field("experiment", "name",
				       "experiment %s needs a NAME", sub);
	if (list && name)
		return cli_usage("experiment", "unexpected argument '%s'",
				 name);
	knytt_store *st;
	int rc = cli_store_open(c, 0, &st);
	if (rc)
		return rc;
	if (list) {
		rc = exp_list(c, st);
	} else if (!strcmp(sub, "create")) {
		rc = exp_create(c, a, st, name);
	} else if (!strcmp(sub, "stop")) {
		int64_t at = c->now_ms;
		rc = knytt_store_experiment_stop(st, name, at);
		rc = rc < 0 ? cli_liberr(rc, "experiment stop") : EXIT_OK;
		if (rc == EXIT_OK && c->json) {
			cJSON *j = cJSON_CreateObject();
			cJSON_AddStringToObject(j, "command", "experiment stop");
			cJSON_AddStringToObject(j, "name", name);
			cJSON_AddStringToObject(j, "status", "stopped");
			print_json(j);
		} else if (rc == EXIT_OK) {
			cli_info(c, "experiment '%s' stopped\n", name);
		}
	} else {
		knytt_exp_report r;
		rc = knytt_store_experiment_report(st, name, &r);
		if (rc < 0)
			rc = cli_liberr(rc, "experiment report");
		else
			cli_exp_report_print(c, &r);
	}
	knytt_store_close(st);
	return rc;
}
