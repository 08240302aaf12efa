/*
 * main.c -- knytt(1): global options, the subcommand table and its help.
 *
 *   knytt [GLOBAL OPTIONS] COMMAND [ARGS] [OPTIONS]
 *
 * Options may come before or after the command; a command accepts the
 * global options plus its own.  "--" ends the options.  Every command
 * answers --help with its usage on stdout and exit status 0; any usage
 * error is one line on stderr and exit status 2.
 */
#include "cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct command {
	const char *name;
	int (*fn)(cli *c, args *a);
	const char *opts; /* ",name=,flag," : '=' takes a value */
	int minpos, maxpos;
	const char *summary;
	const char *usage;
} command;

#define FILTER_OPTS                                                         \
	"category=,price-min=,price-max=,in-stock,min-quality=,where=,"
#define FILTER_HELP                                                         \
	"  --category PREFIX   only items whose category is PREFIX or below\n" \
	"  --price-min X       only items priced X or more\n"                  \
	"  --price-max Y       only items priced Y or less\n"                  \
	"  --in-stock          only items in stock\n"                          \
	"  --min-quality Q     only items of quality Q or more\n"                \
	"  --where EXPR        only items whose attributes match EXPR, e.g.\n"  \
	"                      'brand=acme and size in (m,l) and weight<2'\n"

static const command commands[] = {
	{"init", cmd_init, "", 0, 0,
	 "create or upgrade the store and the tenant",
	 "usage: knytt init [--db URI] [--tenant NAME]\n"
	 "\n"
	 "Creates the database if needed, runs its schema migrations and\n"
	 "creates the tenant.  Safe to run again.\n"},
	{"import", cmd_import, "items=,users=,interactions=,format=,batch=,",
	 0, 0, "bulk-load items, users or interactions",
	 "usage: knytt import (--items|--users|--interactions) FILE\n"
	 "                    [--format csv|jsonl|movielens] [--batch ROWS]\n"
	 "\n"
	 "Validates every row; rejected rows are listed on stderr with their\n"
	 "line, field and reason, and the others are stored.  The format is\n"
	 "guessed from the file name (.csv, .jsonl/.json, u.data/.dat) unless\n"
	 "given.  Exit status 4 when some rows were rejected.\n"},
	{"train", cmd_train,
	 "model=,dim=,epochs=,threads=,reg=,alpha=,replace-model,no-tune,"
	 "sasrec=,tune-pool,", 0,
	 0, "train the model on every interaction and index the items",
	 "usage: knytt train [--model als|twotower|lightgcn] [--dim N]\n"
	 "                   [--epochs N]\n"
	 "                   [--reg R] [--alpha A] [--threads N]\n"
	 "                   [--replace-model] [--no-tune] [--sasrec N]\n"
	 "                   [--tune-pool]\n"
	 "\n"
	 "Trains on every stored interaction, stores the model and item\n"
	 "embeddings and rebuilds the vector index.  A progress bar with\n"
	 "epoch, loss and ETA is drawn when stderr is a terminal.\n"
	 "Kind and dimension default to those of the stored model; another\n"
	 "--model or --dim is refused (exit 1) unless --replace-model is\n"
	 "given, which trains the new kind or dimension in its place.\n"
	 "Defaults (libknytt's): als, dim " CLI_STR(KNYTT_ENGINE_DEFAULT_DIM)
	 ", " CLI_STR(KNYTT_ENGINE_DEFAULT_ALS_ITERATIONS) " epochs\n"
	 "(two-tower " CLI_STR(KNYTT_ENGINE_DEFAULT_TWOTOWER_EPOCHS)
	 "), reg " CLI_STR(KNYTT_ENGINE_DEFAULT_ALS_REG) ", alpha "
	 CLI_STR(KNYTT_ENGINE_DEFAULT_ALS_ALPHA) " (ALS confidence scale),\n"
	 "every core; an option left out keeps its default.\n"
	 "ALS tunes itself (knytt_engine_set_tune(3)): the latest 10% of the\n"
	 "interactions validate a small search from these settings (reg,\n"
	 "alpha, history decay) and the weight of a blend with a trending\n"
	 "or the popularity list, within ten fits' time; the choice and its\n"
	 "validation NDCG@20\n"
	 "are printed and stored with the model.  --no-tune trains the\n"
	 "settings as given, without a blend.  --tune-pool lets the tuning\n"
	 "also choose a re-rank of the list's first 50-200 items by taste\n"
	 "(knytt_engine_set_tune_pool(3)).\n"
	 "--sasrec N also trains a sequence model (SASRec, at most N epochs)\n"
	 "as the session part of recommend: its epochs and weight are chosen\n"
	 "on the validation period (weight 0: not used), stored with the\n"
	 "model (knytt_engine_set_sasrec(3)).  Much slower than ALS.\n"},
	{"eval", cmd_eval,
	 "model=,dim=,epochs=,threads=,k=,reg=,alpha=,protocol=,holdout=,", 0,
	 0, "measure recommendation quality (leave-last-out or in time)",
	 "usage: knytt eval [--protocol last|time] [--k N] [--dim N]\n"
	 "                  [--epochs N] [--reg R] [--alpha A] [--threads N]\n"
	 "                  [--holdout 10%] [--model als|lightgcn|all]\n"
	 "\n"
	 "last (default): holds out each user's last interaction, trains ALS\n"
	 "on the rest and ranks every item the user has not met: prints\n"
	 "HR@k, NDCG@k, Recall@k and catalog coverage, next to a most-popular\n"
	 "baseline (default k 10).\n"
	 "time: trains on everything before a cut (the latest --holdout of\n"
	 "the interactions is held out, 10% by default) and ranks every item\n"
	 "for the users active after it: Recall@k, NDCG@k and coverage\n"
	 "(default k 20) of ALS (--model lightgcn|all: LightGCN too) next to\n"
	 "popularity and the popularity of the last 7 and 14 days before the\n"
	 "cut.  Users first seen after the cut are left out and counted.\n"
	 "The served model is not changed.  ALS settings default to train's\n"
	 "(see knytt train --help).\n"},
	{"search", cmd_search, "k=,user=," FILTER_OPTS, 1, 1,
	 "hybrid keyword + semantic search",
	 "usage: knytt search QUERY [--k N] [--user USER] [filters]\n"
	 "\n"
	 "Full-text and vector results fused by reciprocal rank; with --user\n"
	 "re-ranked toward that shopper's taste.\n"
	 "\n" FILTER_HELP},
	{"recommend", cmd_recommend,
	 "k=,mmr=,exclude-seen,cold,users=," FILTER_OPTS, 0, 1,
	 "recommendations for a user, or for every user of a file",
	 "usage: knytt recommend USER [--k N] [--mmr LAMBDA] [--exclude-seen]\n"
	 "                       [--cold] [filters]\n"
	 "       knytt recommend --users FILE [options as above]\n"
	 "\n"
	 "  --users FILE        one user id per line (- for stdin): one\n"
	 "                      answer line per user, \"USER ITEM ITEM ...\"\n"
	 "                      (with --json one JSON object per line), in\n"
	 "                      one process and one model load\n"
	 "  --mmr LAMBDA        diversify (1 = pure relevance, 0.3..0.9 more\n"
	 "                      variety)\n"
	 "  --exclude-seen      leave out everything the user interacted with\n"
	 "                      (the default; kept for scripts)\n"
	 "  --cold              accept an unknown user: registered as a new\n"
	 "                      visitor, who gets trending, then popular items\n"
	 "                      (without it an unknown user exits 3)\n"
	 FILTER_HELP},
	{"similar", cmd_similar, "k=," FILTER_OPTS, 1, 1,
	 "items like an item",
	 "usage: knytt similar ITEM [--k N] [filters]\n\n" FILTER_HELP},
	{"trending", cmd_trending, "k=,window=,category=,", 0, 0,
	 "items with the most recent interactions",
	 "usage: knytt trending [--k N] [--window DURATION] [--category C]\n"
	 "\n"
	 "Time-decayed interaction counts with the window as half-life\n"
	 "(default 1d): 30m, 12h, 14d, 2w or plain seconds; the engine keeps\n"
	 "counters for 1h, 1d and 7d and uses the nearest.  With --now,\n"
	 "as of that time.\n"},
	{"feedback", cmd_feedback, "value=,", 3, 3,
	 "record an interaction and update the user's taste",
	 "usage: knytt feedback USER ITEM TYPE [--value V]\n"
	 "\n"
	 "TYPE is view, click, add_to_cart, purchase, favorite, rating (which\n"
	 "needs --value) or a custom name.  The next recommend sees it.\n"},
	{"favorites", cmd_favorites, "add=,remove=,", 1, 1,
	 "list, add or remove a user's favorite items",
	 "usage: knytt favorites USER [--add ITEM | --remove ITEM]\n"
	 "\n"
	 "Without an option, lists USER's favorites, newest first.  --add\n"
	 "marks ITEM a favorite (the user is created if new), --remove\n"
	 "unmarks it; both are idempotent.  An unknown item, or an unknown\n"
	 "user to list or remove from, exits 3.\n"},
	{"gen", cmd_gen, "out=,items=,users=,events=,seed=,", 0, 0,
	 "write a synthetic catalog with planted tastes",
	 "usage: knytt gen --out DIR [--items N] [--users N] [--events N]\n"
	 "                 [--seed S] [--now TIME]\n"
	 "\n"
	 "Writes DIR/items.csv, DIR/users.csv and DIR/interactions.csv:\n"
	 "categories with their own vocabulary, prices and quality scores;\n"
	 "users whose events fall ~90% in one or two favourite categories\n"
	 "(recorded in the user's attributes as \"taste\").  Defaults: 2000\n"
	 "items, 300 users, 30000 events, seed 1, now = this hour.  The same\n"
	 "seed and --now give the same files.\n"},
	{"demo", cmd_demo, "keep,experiment,", 0, 0,
	 "generate, import, train and query a demo store",
	 "usage: knytt demo [--db URI] [--keep] [--experiment]\n"
	 "\n"
	 "Removes the demo database (default sqlite:build/demo.db), generates\n"
	 "a catalog, imports it, trains ALS and shows recommendations,\n"
	 "search, similar items, trending and the effect of new feedback.\n"
	 "--keep keeps the generated CSV files next to the database.\n"
	 "--experiment then runs an A/B test of ALS against a two-tower\n"
	 "model with simulated shoppers and prints its report.\n"},
	{"analytics", cmd_analytics, "since=,until=,top=,few=,window=,", 1, 1,
	 "search analytics: top queries, no results, click-through",
	 "usage: knytt analytics searches [--since TIME|DURATION]\n"
	 "                       [--until TIME] [--top N] [--few N]\n"
	 "                       [--window DURATION]\n"
	 "\n"
	 "From the search log: searches, shoppers, searches with no result,\n"
	 "click-through rate and mean reciprocal rank of the clicked result,\n"
	 "overall and for the --top N (default 20) queries, the queries\n"
	 "whose mean result count is at most --few (default 0), and the\n"
	 "searches per day.  A search is clicked when its shopper clicked,\n"
	 "carted, favorited or bought one of its results within --window\n"
	 "(default 30m) and before their next search.  --since takes a\n"
	 "time or a duration ago (7d).\n"},
	{"experiment", cmd_experiment,
	 "variant=,start=,end=,window=,", 1, 2,
	 "A/B experiments: create, list, report, stop",
	 "usage: knytt experiment create NAME --variant SPEC --variant SPEC\n"
	 "                        [--start TIME] [--end TIME]\n"
	 "                        [--window DURATION]\n"
	 "       knytt experiment list\n"
	 "       knytt experiment report NAME\n"
	 "       knytt experiment stop NAME\n"
	 "\n"
	 "SPEC is NAME[:SHARE][,model=LABEL][,mmr=LAMBDA][,exclude-seen=0|1];\n"
	 "the first variant is the control; shares default to 1 (equal).\n"
	 "Outcomes (clicks; add to cart or purchase) count within --window\n"
	 "(default 1d) after an exposure that showed the item.  The report\n"
	 "gives per variant the exposures, users, click-through and\n"
	 "conversion rates with 95% intervals, the lift against the control\n"
	 "and the p-value of a two-proportion z-test.\n"},
	{"help", NULL, "", 0, 1, "help on knytt or on one command",
	 "usage: knytt help [COMMAND]\n"
	 "\n"
	 "The same as knytt --help, or knytt COMMAND --help.\n"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static const char global_opts[] = ",db=,tenant=,json,quiet,q,help,h,now=,";

static void main_usage(FILE *f)
{
	fprintf(f,
		"usage: knytt [--db URI] [--tenant NAME] [--json] [--quiet] "
		"COMMAND [ARGS]\n"
		"       knytt help [COMMAND] | knytt COMMAND --help | "
		"knytt --version\n\n"
		"Commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i].name,
			commands[i].summary);
	fprintf(f,
		"\nGlobal options:\n"
		"  --db URI        store: sqlite:PATH (default sqlite:knytt.db, "
		"or $KNYTT_DB)\n"
		"                  or postgres://...\n"
		"  --tenant NAME   tenant (default \"default\")\n"
		"  --json          one JSON document on stdout\n"
		"  --quiet, -q     no progress bars or messages\n"
		"  --help, -h      help (of a command after its name)\n"
		"  --version       versions of knytt and libknytt\n\n"
		"See knytt(1).\n");
}

static const command *find_command(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

/* 1 = flag, 2 = takes a value, 0 = unknown. */
static int opt_kind(const char *list, const char *name, size_t len)
{
	for (const char *p = list; (p = strstr(p, name)) != NULL; p++) {
		if (p != list && p[-1] != ',')
			continue;
		if (p[len] == ',')
			return 1;
		if (p[len] == '=' && p[len + 1] == ',')
			return 2;
	}
	return 0;
}

static int parse(int argc, char **argv, const command **cmdp, args *a,
		 int *want_help, int *want_version)
{
	const command *cmd = NULL;
	int only_pos = 0;
	memset(a, 0, sizeof *a);
	for (int i = 1; i < argc; i++) {
		char *s = argv[i];
		if (only_pos || s[0] != '-' || !s[1]) {
			if (!cmd) {
				cmd = find_command(s);
				if (!cmd)
					return cli_usage(NULL,
							 "unknown command '%s'",
							 s);
				a->cmd = cmd->name;
				continue;
			}
			if (a->npos >= CLI_MAX_POS)
				return cli_usage(a->cmd, "too many arguments");
			a->pos[a->npos++] = s;
			continue;
		}
		if (!strcmp(s, "--")) {
			only_pos = 1;
			continue;
		}
		if (!strcmp(s, "--version") || !strcmp(s, "-V")) {
			*want_version = 1;
			continue;
		}
		const char *name = s + (s[1] == '-' ? 2 : 1);
		if (s[1] != '-' && strlen(name) != 1)
			return cli_usage(a->cmd, "unknown option '%s'", s);
		const char *eq = strchr(name, '=');
		size_t len = eq ? (size_t)(eq - name) : strlen(name);
		char key[64];
		if (len == 0 || len >= sizeof key)
			return cli_usage(a->cmd, "unknown option '%s'", s);
		memcpy(key, name, len);
		key[len] = 0;
		int kind = opt_kind(global_opts, key, len);
		if (!kind && cmd)
			kind = opt_kind(cmd->opts, key, len);
		if (!kind)
			return cli_usage(a->cmd, "unknown option '%s'", s);
		if (!strcmp(key, "help") || !strcmp(key, "h")) {
			*want_help = 1;
			continue;
		}
		const char *val = "";
		if (kind == 2) {
			if (eq)
				val = eq + 1;
			else if (i + 1 < argc)
				val = argv[++i];
			else
				return cli_usage(a->cmd, "option --%s needs a "
							 "value", key);
		} else if (eq) {
			return cli_usage(a->cmd, "option --%s takes no value",
					 key);
		}
		if (a->nopts >= CLI_MAX_OPTS)
			return cli_usage(a->cmd, "too many options");
		a->names[a->nopts] = strndup(key, len);
		a->vals[a->nopts] = val;
		if (!a->names[a->nopts])
			return cli_usage(a->cmd, "out of memory");
		a->nopts++;
	}
	*cmdp = cmd;
	return 0;
}

/* --json anywhere before "--": errors found while parsing are then
 * reported as JSON too. */
static int wants_json(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--json"))
			return 1;
	return 0;
}

/* knytt help [COMMAND] */
static int help_command(const args *a)
{
	if (a->npos == 0) {
		main_usage(stdout);
		return EXIT_OK;
	}
	const command *c = find_command(a->pos[0]);
	if (!c)
		return cli_usage_field("help", "command", "unknown command '%s'",
				       a->pos[0]);
	fputs(c->usage, stdout);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	const command *cmd = NULL;
	args a;
	int help = 0, version = 0;
	cli_json_errors = wants_json(argc, argv);
	int rc = parse(argc, argv, &cmd, &a, &help, &version);
	if (rc)
		goto out;
	if (version) {
		printf("knytt %s (libknytt %s, SIMD %s)\n", KNYTT_VERSION_STRING,
		       knytt_version(), knytt_simd_name());
		goto out;
	}
	if (!cmd) {
		if (help) {
			main_usage(stdout);
		} else {
			main_usage(stderr);
			rc = EXIT_USAGE;
		}
		goto out;
	}
	if (help) {
		fputs(cmd->usage, stdout);
		printf("\nGlobal options: --db URI, --tenant NAME, --json, "
		       "--quiet, --now TIME.  See knytt(1).\n");
		goto out;
	}
	if (!cmd->fn) {
		rc = help_command(&a);
		goto out;
	}
	if (a.npos < cmd->minpos) {
		rc = cli_usage(cmd->name, "missing argument");
		goto out;
	}
	if (a.npos > cmd->maxpos) {
		rc = cli_usage(cmd->name, "unexpected argument '%s'",
			       a.pos[cmd->maxpos]);
		goto out;
	}

	cli c;
	memset(&c, 0, sizeof c);
	const char *env = getenv("KNYTT_DB");
	c.db = arg_get(&a, "db");
	if (!c.db)
		c.db = env && *env ? env : "sqlite:knytt.db";
	c.tenant = arg_get(&a, "tenant");
	if (!c.tenant)
		c.tenant = "default";
	if (!*c.tenant) {
		rc = cli_usage(cmd->name, "--tenant needs a name");
		goto out;
	}
	c.json = arg_has(&a, "json");
	c.quiet = arg_has(&a, "quiet") || arg_has(&a, "q");
	c.progress = !c.quiet && isatty(STDERR_FILENO);
	c.model = "als";
	const char *now = arg_get(&a, "now");
	if (now && cli_parse_time(now, &c.now_ms) != 0) {
		rc = cli_usage(cmd->name, "--now needs ISO 8601 (2024-05-01, "
					  "2024-05-01T12:30:00Z) or epoch "
					  "seconds or ms, not '%s'", now);
		goto out;
	}
	cli_catch_sigint();
	rc = cmd->fn(&c, &a);
	fflush(stdout);
	if (ferror(stdout)) {
		fprintf(stderr, "knytt: error writing the output\n");
		rc = EXIT_ERR;
	}
out:
	for (int i = 0; i < a.nopts; i++)
		free((char *)a.names[i]);
	return rc;
}
