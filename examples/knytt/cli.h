/*
 * cli.h -- shared declarations of the knytt command-line tool.
 *
 * The tool is a thin consumer of <knytt.h>: every file here goes through
 * the public API only.  main.c parses the global options and dispatches;
 * each subcommand is a function `int cmd_X(cli *c, args *a)` returning the
 * process exit status (see EXIT_* below and knytt(1), EXIT STATUS).
 */
#ifndef KNYTT_CLI_H
#define KNYTT_CLI_H

#include <knytt.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit statuses, documented in man/knytt.1 (EXIT STATUS). */
#define EXIT_OK 0
#define EXIT_ERR 1      /* a library or system error */
#define EXIT_USAGE 2    /* bad command line */
#define EXIT_NOTFOUND 3 /* unknown user, item or tenant */
#define EXIT_REJECTS 4  /* import done, but some rows were rejected */
#define EXIT_INTR 130   /* interrupted (SIGINT) */

/* CLI_STR(KNYTT_X): a numeric constant as a string literal, for help
 * texts that quote libknytt's defaults. */
#define CLI_STR_(x) #x
#define CLI_STR(x) CLI_STR_(x)

#define CLI_MAX_OPTS 32
#define CLI_MAX_POS 8

/* A parsed command line: options by name (without the leading "--"),
 * flags have the value "" ; positional arguments in order. */
typedef struct args {
	const char *cmd;
	const char *names[CLI_MAX_OPTS];
	const char *vals[CLI_MAX_OPTS];
	int nopts;
	const char *pos[CLI_MAX_POS];
	int npos;
} args;

/* Global state of one run. */
typedef struct cli {
	const char *db;     /* store URI */
	const char *tenant; /* tenant name */
	int json;           /* --json: one JSON document on stdout */
	int quiet;          /* --quiet: no progress, no chatter */
	int progress;       /* draw progress bars (stderr is a TTY) */
	const char *model;  /* "als" or "twotower" (--model) */
	int model_set;      /* --model was given */
	/* train settings (0 = engine default): epochs, and ALS reg/alpha
	 * when als_set */
	unsigned epochs;
	int als_set;
	int no_tune; /* train --no-tune: fixed settings */
	int tune_pool; /* train --tune-pool: the pool re-rank a candidate */
	unsigned sasrec; /* train --sasrec N: the session model's epochs at
			    most (0: none) */
	double reg, alpha;
	unsigned dim;       /* --dim, 0 = engine default */
	unsigned threads;   /* --threads, 0 = every core */
	int64_t now_ms;     /* --now: the engine's as-of time, 0 = clock */
} cli;

/* ---- util.c ---- */
/* Set by main when --json is on the command line: errors are then also
 * printed as {"error": {"code", "message", "field", "exit_status"}} on
 * stdout. */
extern int cli_json_errors;
/* A failure: prints "knytt: message" on stderr (and the JSON document
 * with --json) and returns @p status.  @p code is a KNYTT_E* name, @p
 * field the option or argument at fault (NULL if none). */
int cli_error(int status, const char *code, const char *field,
	      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The same with @p hint appended to the stderr line only. */
int cli_error_hint(int status, const char *code, const char *field,
		   const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
/* Usage error: prints "knytt: CMD: message (try 'knytt CMD --help')" and
 * returns EXIT_USAGE (code KNYTT_EINVAL). */
int cli_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The same, naming the option or argument at fault. */
int cli_usage_field(const char *cmd, const char *field, const char *fmt,
		    ...) __attribute__((format(printf, 3, 4)));
/* Library error: prints "knytt: KNYTT_EXXX: <knytt_errmsg()>" (or the
 * code's description when the message is empty) and returns the exit
 * status for @p rc (EXIT_NOTFOUND for KNYTT_ENOTFOUND, else EXIT_ERR). */
int cli_liberr(int rc, const char *what);
/* Prints to stderr unless --quiet. */
void cli_info(const cli *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
int cli_exit_for(int rc);

const char *arg_get(const args *a, const char *name);
int arg_has(const args *a, const char *name);
/* Parse helpers: return 0, or EXIT_USAGE after printing the message. */
int arg_uint(const args *a, const char *name, unsigned long lo,
	     unsigned long hi, unsigned long *out);
int arg_double(const args *a, const char *name, double *out);

/* c->db as messages and output show it: any password replaced by ***
 * (knytt_uri_redact).  Valid until the next call. */
const char *cli_db_shown(const cli *c);
/* 0 when c->db is not a SQLite file or the file exists, else an error
 * naming the path (EXIT_NOTFOUND, printed).  Opening a missing SQLite
 * file would create an empty store, so a mistyped --db would silently
 * answer from nothing: only init and import (and demo) create one. */
int cli_store_must_exist(const cli *c);
/* Opens the store at c->db and selects c->tenant; with @p create, creates
 * the store and the tenant when missing, else both must exist.  Returns
 * 0 or an exit status (printed). */
int cli_store_open(const cli *c, int create, knytt_store **out);
/* The kind ("als" or "twotower", a static string) and dimension (0 if
 * not recorded) of the model the store holds for c->tenant: 1, or 0 when
 * it holds none. */
int cli_stored_model(const cli *c, const char **kind, unsigned *dim);
/* Opens the engine on c->db (which must exist, see cli_store_must_exist)
 * / c->tenant with c's model settings; the kind
 * and dimension not given on the command line are those of the model the
 * store holds (c->model and c->dim are updated). */
int cli_engine_open(cli *c, knytt_engine **out);

/* --now TIME: ISO 8601 (2024-05-01, 2024-05-01T12:30[:SS][Z|+HH:MM],
 * UTC without an offset) or epoch digits (seconds below 1e11, else ms).
 * --window DURATION: a number with s, m, min, h, d or w (plain = s).
 * Both return 0 or -1. */
int cli_parse_time(const char *s, int64_t *out_ms);
int cli_parse_duration(const char *s, double *out_s);
/* Engine warnings to stderr (unless --quiet); ctx is the cli. */
void cli_engine_warning(void *ctx, const char *msg);

double cli_now(void);
int cli_interrupted(void);
void cli_catch_sigint(void);

/* Progress bar on stderr (only when c->progress). */
typedef struct bar {
	int on;
	double start;
	double last_draw;
	int drawn;
} bar;
void bar_start(bar *b, const cli *c);
/* frac in [0, 1] or < 0 for unknown (spinner); eta < 0 = unknown. */
void bar_draw(bar *b, double frac, double eta, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
void bar_clear(bar *b); /* erase the line (before other stderr output) */
void bar_done(bar *b);  /* erase and stop */

/* ---- query.c: options shared by the query commands ---- */
#define CLI_MAX_K 1000
/* --k (1..CLI_MAX_K, default 10).  0 or EXIT_USAGE (printed). */
int cli_parse_k(const args *a, size_t *k);
/* The filter options into @p f; *any = 1 when one was given. */
int cli_parse_filter(const args *a, knytt_filter *f, int *any);

/* ---- output.c ---- */
/* Prints a result list (table or, with --json, one JSON object with the
 * fields of @p meta and a "results" array).  Titles, categories and
 * prices are looked up in the store.  Returns 0 or an exit status. */
typedef struct outmeta {
	const char *command;
	const char *key1, *val1; /* e.g. "user", "u0001" (may be NULL) */
	const char *key2, *val2;
} outmeta;
int out_results(const cli *c, knytt_store *st, const outmeta *m,
		const knytt_result *r, int n);
/* One result as a JSON object: rank, item, id, the item's title,
 * category, price, in_stock and quality when @p it is given, score,
 * reason, because.  (cJSON is the CLI's own dependency.) */
struct cJSON;
struct cJSON *out_result_json(const knytt_result *r, int rank,
			      const knytt_item *it);
/* Appends a string of at most @p width display columns to @p f, padded. */
void out_cell(FILE *f, const char *s, int width, int right);

/* ---- commands ---- */
int cmd_init(cli *c, args *a);
int cmd_import(cli *c, args *a);
int cmd_gen(cli *c, args *a);
int cmd_train(cli *c, args *a);
int cmd_eval(cli *c, args *a);
int cmd_search(cli *c, args *a);
int cmd_recommend(cli *c, args *a);
int cmd_similar(cli *c, args *a);
int cmd_trending(cli *c, args *a);
int cmd_feedback(cli *c, args *a);
int cmd_favorites(cli *c, args *a);
int cmd_demo(cli *c, args *a);
int cmd_analytics(cli *c, args *a);
int cmd_experiment(cli *c, args *a);
/* experiment.c: prints an experiment report (table or --json). */
void cli_exp_report_print(const cli *c, const knytt_exp_report *r);
/* demo.c's --experiment part: an A/B test on the demo shop. */
int demo_experiment(cli *c, knytt_engine *e);

/* gen.c, used by demo as well. */
typedef struct gen_opts {
	const char *dir;
	unsigned long items, users, events;
	uint64_t seed;
	int64_t now_ms;
} gen_opts;
int gen_write(const gen_opts *o, char *err, size_t errlen);
/* The top categories gen plants (NULL-terminated). */
extern const char *const gen_top_categories[];

/* import helper shared by import and demo: returns accepted rows or a
 * negative knytt code; *rejects gets the number of rejected rows. */
int cli_import_file(const cli *c, knytt_store *st, const char *path,
		    knytt_record_kind kind, knytt_format fmt,
		    size_t *rejects);
/* train helper shared by train and demo. */
int cli_train(const cli *c, knytt_engine *e, double *secs);

#endif
