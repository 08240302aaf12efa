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
	double reg, alpha;
	unsigned dim;       /* --dim, 0 = engine default */
	unsigned threads;   /* --threads, 0 = every core */
	int64_t now_ms;     /* --now: the engine's as-of time, 0 = clock */
} cli;

/* ---- util.c ---- */
/* Usage error: prints "knytt: CMD: message (try 'knytt CMD --help')" and
 * returns EXIT_USAGE. */
int cli_usage(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
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
/* Opens the store at c->db and selects c->tenant, creating the tenant
 * when @p create is set.  Returns 0 or an exit status (printed). */
int cli_store_open(const cli *c, int create, knytt_store **out);
/* Opens the engine on c->db / c->tenant with c's model settings; the kind
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
int cmd_demo(cli *c, args *a);

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
