/*
 * query.c -- the commands that go through the engine: train, search,
 * similar, trending, feedback (recommend has its own file).
 *
 * Each opens the engine on the store (which restores the last trained
 * model and the index; nothing is retrained), does one call, prints the
 * answer and closes it.
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- shared option parsing -------------------------------------------- */

int cli_parse_k(const args *a, size_t *k)
{
	unsigned long v = 10;
	int rc = arg_uint(a, "k", 1, CLI_MAX_K, &v);
	*k = v;
	return rc;
}

static knytt_where *cli_where; /* --where, compiled */

static void where_free(void)
{
	knytt_where_free(cli_where);
	cli_where = NULL;
}

int cli_parse_filter(const args *a, knytt_filter *f, int *any)
{
	int rc;
	knytt_filter_init(f);
	*any = 0;
	const char *cat = arg_get(a, "category");
	if (cat && *cat) {
		f->category_prefix = cat;
		*any = 1;
	}
	double lo = NAN, hi = NAN, q = NAN;
	if ((rc = arg_double(a, "price-min", &lo)) ||
	    (rc = arg_double(a, "price-max", &hi)) ||
	    (rc = arg_double(a, "min-quality", &q)))
		return rc;
	if (!isnan(lo)) {
		if (lo < 0)
			return cli_usage(a->cmd, "--price-min must be >= 0");
		f->price_min = lo;
		*any = 1;
	}
	if (!isnan(hi)) {
		if (hi < 0 || (!isnan(lo) && hi < lo))
			return cli_usage(a->cmd, "--price-max must be >= 0 and "
						 ">= --price-min");
		/* 0 means "no maximum" to the engine; a maximum of 0 is
		 * the smallest positive price instead */
		f->price_max = hi > 0 ? hi : 1e-9;
		*any = 1;
	}
	if (!isnan(q)) {
		f->min_quality = q;
		*any = 1;
	}
	if (arg_has(a, "in-stock")) {
		f->in_stock_only = 1;
		*any = 1;
	}
	const char *where = arg_get(a, "where");
	if (where) {
		/* one filter per process, freed at exit whichever way the
		 * command returns; a second parse (the fuzzer parses many
		 * command lines in one process) replaces the first */
		static int registered;
		where_free();
		if (!registered && atexit(where_free) == 0)
			registered = 1;
		if ((rc = knytt_where_compile(where, &cli_where)))
			return rc == KNYTT_EINVAL
				       ? cli_usage_field(a->cmd, "where", "%s",
							 knytt_errmsg())
				       : cli_liberr(rc, "where");
		f->where = cli_where;
		*any = 1;
	}
	return 0;
}

/* Runs one engine query and prints it: a shared tail for the commands. */
static int finish(cli *c, knytt_engine *e, const outmeta *m,
		  const knytt_result *r, int n, const char *what)
{
	int ex;
	if (n < 0)
		ex = cli_liberr(n, what);
	else
		ex = out_results(c, knytt_engine_store(e), m, r, n);
	knytt_engine_close(e);
	return ex;
}

/* ---- train ------------------------------------------------------------- */

/* Training reports progress only per epoch; reading the interactions
 * before the first epoch and building the index after the last take a
 * while on large stores, so a ticker thread animates the bar (as a
 * spinner) during those phases. */
typedef struct trainer {
	bar b;
	pthread_mutex_t lock;
	int phase; /* 0 reading, 1 epochs, 2 indexing, 3 done */
} trainer;

static int on_progress(void *ctx, const knytt_progress *p)
{
	trainer *t = ctx;
	pthread_mutex_lock(&t->lock);
	t->phase = p->epoch >= p->epochs ? 2 : 1;
	double frac = p->epochs ? (double)p->epoch / p->epochs : -1;
	if (t->phase == 1)
		bar_draw(&t->b, frac, p->eta, "epoch %u/%u  loss %.5g",
			 p->epoch, p->epochs, p->loss);
	pthread_mutex_unlock(&t->lock);
	return cli_interrupted();
}

static void *ticker(void *arg)
{
	trainer *t = arg;
	for (;;) {
		pthread_mutex_lock(&t->lock);
		int ph = t->phase;
		if (ph == 0 || ph == 2)
			bar_draw(&t->b, -1, -1, "%s (%.0fs)",
				 ph == 0 ? "reading interactions" :
					   "building the index",
				 cli_now() - t->b.start);
		pthread_mutex_unlock(&t->lock);
		if (ph == 3)
			return NULL;
		usleep(150000);
	}
}

int cli_train(const cli *c, knytt_engine *e, double *secs)
{
	trainer t;
	memset(&t, 0, sizeof t);
	pthread_mutex_init(&t.lock, NULL);
	bar_start(&t.b, c);
	pthread_t th;
	int ticking = t.b.on && pthread_create(&th, NULL, ticker, &t) == 0;
	double t0 = cli_now();
	int rc = knytt_engine_train(e, on_progress, &t);
	*secs = cli_now() - t0;
	pthread_mutex_lock(&t.lock);
	t.phase = 3;
	pthread_mutex_unlock(&t.lock);
	if (ticking)
		pthread_join(th, NULL);
	bar_done(&t.b);
	pthread_mutex_destroy(&t.lock);
	return rc;
}

static int parse_model(cli *c, const args *a)
{
	const char *m = arg_get(a, "model");
	if (m) {
		if (strcmp(m, "als") && strcmp(m, "twotower") &&
		    strcmp(m, "lightgcn"))
			return cli_usage(a->cmd, "--model is als, twotower or "
						 "lightgcn, not '%s'", m);
		c->model = m;
		c->model_set = 1;
	}
	unsigned long v = 0;
	int rc = arg_uint(a, "dim", 2, 1024, &v);
	if (rc)
		return rc;
	c->dim = (unsigned)v;
	v = 0;
	if ((rc = arg_uint(a, "threads", 1, 256, &v)))
		return rc;
	c->threads = (unsigned)v;
	return 0;
}

/*
 * A store serves one model; a train that asks for another kind or
 * dimension than the stored model's would silently replace it (and the
 * engine, left to itself, would follow the stored kind instead of the one
 * asked for).  So a differing --model or --dim is refused unless
 * --replace-model says the replacement is meant.
 */
static int check_replace(cli *c, const args *a)
{
	const char *kind;
	unsigned dim;
	if (!cli_stored_model(c, &kind, &dim))
		return 0;
	int other_kind = c->model_set && strcmp(c->model, kind) != 0;
	int other_dim = c->dim && dim && c->dim != dim;
	if ((other_kind || other_dim) && !arg_has(a, "replace-model")) {
		char want[64];
		if (other_kind)
			snprintf(want, sizeof want, "--model %s", c->model);
		else
			snprintf(want, sizeof want, "--dim %u", c->dim);
		return cli_error_hint(EXIT_ERR, "KNYTT_ESTATE",
				      other_kind ? "model" : "dim",
				      " (give --replace-model to retrain it "
				      "so, or use another store or tenant)",
				      "train: the store holds a%s %s model of "
				      "dimension %u; %s would replace it",
				      strcmp(kind, "als") ? "" : "n", kind, dim,
				      want);
	}
	if (!c->model_set)
		c->model = kind;
	return 0;
}

/* The metadata of the stored model as JSON (NULL if none). */
static cJSON *stored_meta(cli *c)
{
	knytt_store *st;
	if (cli_store_open(c, 0, &st))
		return NULL;
	char *meta = NULL;
	knytt_store_model_get(st, "engine-model", 0, NULL, NULL, &meta, NULL,
			      NULL);
	knytt_store_close(st);
	cJSON *j = meta ? cJSON_Parse(meta) : NULL;
	knytt_free(meta);
	return j;
}

/* The tuning report stored with the model (knytt_engine_set_tune), one
 * line: what was chosen and what it scored on the validation period. */
static void print_tune(cli *c)
{
	cJSON *j = stored_meta(c);
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "tune");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, "validation");
	const cJSON *sk = cJSON_GetObjectItemCaseSensitive(t, "skipped");
	if (cJSON_IsString(sk))
		printf("tuning skipped: %s\n", sk->valuestring);
	if (v) {
		static const char *hl[] = {"all-time popularity",
					   "trending 1 hour", "trending 1 day",
					   "trending 1 week",
					   "trending 2 weeks"};
		double g = cJSON_GetNumberValue(
			cJSON_GetObjectItemCaseSensitive(t, "popularity_list"));
		int h = g >= -1 && g < 4 ? (int)g + 1 : 0;
		double b = cJSON_GetNumberValue(
			cJSON_GetObjectItemCaseSensitive(t, "blend"));
		double pool = cJSON_GetNumberValue(
			cJSON_GetObjectItemCaseSensitive(t, "pool"));
		char blend[128] = "no blend";
		if (pool > 0) /* knytt_engine_set_tune_pool */
			snprintf(blend, sizeof blend,
				 "the first %.0f of %s re-ranked by taste, "
				 "blend %g with it",
				 pool, hl[h], b);
		else if (b > 0)
			snprintf(blend, sizeof blend, "blend %g with %s", b,
				 hl[h]);
		printf("tuned: reg %g, alpha %g, history half-life %.3g days, "
		       "%s; validation NDCG@20 %.4f "
		       "(fixed settings %.4f), %d fits in %.2f s%s\n",
		       cJSON_GetNumberValue(
			       cJSON_GetObjectItemCaseSensitive(t, "reg")),
		       cJSON_GetNumberValue(
			       cJSON_GetObjectItemCaseSensitive(t, "alpha")),
		       cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(
			       t, "history_half_life_days")),
		       blend,
		       cJSON_GetNumberValue(
			       cJSON_GetObjectItemCaseSensitive(v, "ndcg20")),
		       cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(
			       v, "fixed_ndcg20")),
		       (int)cJSON_GetNumberValue(
			       cJSON_GetObjectItemCaseSensitive(t, "fits")),
		       cJSON_GetNumberValue(
			       cJSON_GetObjectItemCaseSensitive(t, "seconds")),
		       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(
			       t, "cut_short"))
			       ? " (budget reached)"
			       : "");
	}
	cJSON_Delete(j);
}

/* The SASRec session model's report (the "sasrec" object stored with
 * the model), one line, when training fitted one. */
static void print_sasrec(cli *c)
{
	cJSON *j = stored_meta(c);
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "sasrec");
	if (t) {
		const cJSON *ch = cJSON_GetObjectItemCaseSensitive(t, "chosen");
		printf("session model (SASRec): weight %g (%s), %d epochs, "
		       "%.2f s\n",
		       cJSON_GetNumberValue(
			       cJSON_GetObjectItemCaseSensitive(t, "weight")),
		       cJSON_IsString(ch) ? ch->valuestring : "?",
		       (int)cJSON_GetNumberValue(
			       cJSON_GetObjectItemCaseSensitive(t, "epochs")),
		       cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(
			       t, "validation_seconds")) +
			       cJSON_GetNumberValue(
				       cJSON_GetObjectItemCaseSensitive(
					       t, "train_seconds")));
	}
	cJSON_Delete(j);
}

/* What training learned from the search log (the "search" object stored
 * with the model), one line. */
static void print_search_words(cli *c)
{
	cJSON *j = stored_meta(c);
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "search");
	const cJSON *sk = cJSON_GetObjectItemCaseSensitive(t, "skipped");
	if (cJSON_IsString(sk))
		printf("search words not learned: %s\n", sk->valuestring);
	else if (t)
		printf("search words: %d learned from %d query-item pairs "
		       "(%d searches)\n",
		       (int)cJSON_GetNumberValue(
			       cJSON_GetObjectItemCaseSensitive(t, "words")),
		       (int)cJSON_GetNumberValue(
			       cJSON_GetObjectItemCaseSensitive(t, "pairs")),
		       (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(
			       t, "searches")));
	cJSON_Delete(j);
}

int cmd_train(cli *c, args *a)
{
	unsigned long epochs = 0;
	int rc;
	/* options left out keep the engine's defaults */
	c->reg = KNYTT_ENGINE_DEFAULT_ALS_REG;
	c->alpha = KNYTT_ENGINE_DEFAULT_ALS_ALPHA;
	if ((rc = parse_model(c, a)) ||
	    (rc = arg_uint(a, "epochs", 1, 1000, &epochs)) ||
	    (rc = arg_double(a, "reg", &c->reg)) ||
	    (rc = arg_double(a, "alpha", &c->alpha)))
		return rc;
	if (c->reg < 0 || c->alpha < 0)
		return cli_usage("train", "--reg and --alpha must be >= 0");
	c->epochs = (unsigned)epochs;
	c->als_set = epochs || arg_has(a, "reg") || arg_has(a, "alpha");
	c->no_tune = arg_has(a, "no-tune");
	c->tune_pool = arg_has(a, "tune-pool");
	unsigned long sq = 0;
	if ((rc = arg_uint(a, "sasrec", 1, 10000, &sq)))
		return rc;
	c->sasrec = (unsigned)sq;
	if ((rc = cli_store_must_exist(c)) || (rc = check_replace(c, a)))
		return rc;
	if (!strcmp(c->model, "twotower") &&
	    (arg_has(a, "reg") || arg_has(a, "alpha")))
		return cli_usage_field("train", arg_has(a, "reg") ? "reg" :
				       "alpha", "--reg and --alpha are ALS "
				       "settings, not two-tower ones");
	knytt_engine *e = NULL;
	if ((rc = cli_engine_open(c, &e)))
		return rc;
	double secs;
	rc = cli_train(c, e, &secs);
	if (rc < 0) {
		int ex = cli_liberr(rc, "train");
		knytt_engine_close(e);
		return ex;
	}
	knytt_train_status ts = {.struct_size = sizeof ts};
	knytt_engine_train_status(e, &ts);
	knytt_engine_close(e);
	/* name the kind the store now holds: what was really trained */
	const char *kind = c->model;
	unsigned dim = c->dim;
	cli_stored_model(c, &kind, &dim);
	if (!kind)
		kind = c->model;
	if (c->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "model", kind);
		cJSON_AddNumberToObject(j, "dim", dim);
		cJSON_AddNumberToObject(j, "model_version",
					(double)ts.model_version);
		cJSON_AddNumberToObject(j, "epochs", ts.progress.epochs);
		cJSON_AddNumberToObject(j, "loss", ts.progress.loss);
		cJSON_AddNumberToObject(j, "items_indexed",
					(double)ts.items_indexed);
		cJSON_AddNumberToObject(j, "seconds", secs);
		/* the tuning report, as stored with the model */
		cJSON *m = stored_meta(c);
		cJSON *tn = cJSON_DetachItemFromObjectCaseSensitive(m, "tune");
		if (tn)
			cJSON_AddItemToObject(j, "tune", tn);
		/* the session model's report, when one was asked for */
		cJSON *sr = cJSON_DetachItemFromObjectCaseSensitive(m,
								    "sasrec");
		if (sr)
			cJSON_AddItemToObject(j, "sasrec", sr);
		/* and what it learned from the search log */
		cJSON *sw = cJSON_DetachItemFromObjectCaseSensitive(m,
								    "search");
		if (sw)
			cJSON_AddItemToObject(j, "search", sw);
		cJSON_Delete(m);
		char *t = cJSON_Print(j);
		if (t)
			puts(t);
		cJSON_free(t);
		cJSON_Delete(j);
	} else if (!c->quiet) {
		printf("trained %s model version %lld (dimension %u): %u "
		       "epochs, loss %.5g, %zu items indexed, %.2f s\n",
		       kind, (long long)ts.model_version, dim,
		       ts.progress.epochs, ts.progress.loss, ts.items_indexed,
		       secs);
		print_tune(c);
		print_sasrec(c);
		print_search_words(c);
	}
	return EXIT_OK;
}

/* ---- queries ----------------------------------------------------------- */

int cmd_search(cli *c, args *a)
{
	size_t k;
	knytt_filter f;
	int any, rc;
	if ((rc = cli_parse_k(a, &k)) || (rc = cli_parse_filter(a, &f, &any)))
		return rc;
	const char *q = a->pos[0];
	const char *user = arg_get(a, "user");
	if (!*q)
		return cli_usage("search", "the query is empty");
	knytt_engine *e;
	if ((rc = cli_engine_open(c, &e)))
		return rc;
	knytt_result *r = calloc(k, sizeof *r);
	if (!r) {
		knytt_engine_close(e);
		return cli_liberr(KNYTT_ENOMEM, "search");
	}
	r[0].struct_size = sizeof *r; /* the array's stride */
	int n = knytt_engine_search(e, q, NULL, 0, k, any ? &f : NULL, user,
				    r, NULL);
	outmeta m = {"search", "query", q, "user", user};
	rc = finish(c, e, &m, r, n, "search");
	free(r);
	return rc;
}

int cmd_similar(cli *c, args *a)
{
	size_t k;
	knytt_filter f;
	int any, rc;
	if ((rc = cli_parse_k(a, &k)) || (rc = cli_parse_filter(a, &f, &any)))
		return rc;
	const char *item = a->pos[0];
	knytt_engine *e;
	if ((rc = cli_engine_open(c, &e)))
		return rc;
	knytt_result *r = calloc(k, sizeof *r);
	if (!r) {
		knytt_engine_close(e);
		return cli_liberr(KNYTT_ENOMEM, "similar");
	}
	r[0].struct_size = sizeof *r; /* the array's stride */
	int n = knytt_engine_similar(e, item, k, any ? &f : NULL, r);
	outmeta m = {"similar", "item", item, NULL, NULL};
	rc = finish(c, e, &m, r, n, "similar");
	free(r);
	return rc;
}

int cmd_trending(cli *c, args *a)
{
	size_t k;
	int rc;
	if ((rc = cli_parse_k(a, &k)))
		return rc;
	const char *w = arg_get(a, "window");
	double win = 86400;
	if (w && cli_parse_duration(w, &win) != 0)
		return cli_usage("trending", "--window needs a duration such "
					     "as 30m, 12h, 14d or 3600 "
					     "(seconds), not '%s'", w);
	const char *cat = arg_get(a, "category");
	if (cat && !*cat)
		cat = NULL;
	knytt_engine *e;
	if ((rc = cli_engine_open(c, &e)))
		return rc;
	knytt_result *r = calloc(k, sizeof *r);
	if (!r) {
		knytt_engine_close(e);
		return cli_liberr(KNYTT_ENOMEM, "trending");
	}
	r[0].struct_size = sizeof *r; /* the array's stride */
	int n = knytt_engine_trending(e, k, win, cat, r);
	outmeta m = {"trending", "window", w ? w : "1d", "category", cat};
	rc = finish(c, e, &m, r, n, "trending");
	free(r);
	return rc;
}

int cmd_feedback(cli *c, args *a)
{
	const char *user = a->pos[0], *item = a->pos[1], *type = a->pos[2];
	double value = 0;
	int rc;
	if ((rc = arg_double(a, "value", &value)))
		return rc;
	if (!*user || !*item || !*type)
		return cli_usage("feedback", "USER, ITEM and TYPE must not be "
					     "empty");
	/* a rating without its value would be stored as a rating of 0 */
	if (!strcmp(type, "rating") && !arg_has(a, "value"))
		return cli_usage_field("feedback", "value", "a rating needs "
				       "--value");
	knytt_engine *e;
	if ((rc = cli_engine_open(c, &e)))
		return rc;
	rc = knytt_engine_feedback(e, user, item, type, value, 0);
	knytt_engine_close(e);
	if (rc < 0)
		return cli_liberr(rc, "feedback");
	if (c->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "user", user);
		cJSON_AddStringToObject(j, "item", item);
		cJSON_AddStringToObject(j, "type", type);
		if (arg_has(a, "value"))
			cJSON_AddNumberToObject(j, "value", value);
		cJSON_AddBoolToObject(j, "stored", 1);
		char *t = cJSON_Print(j);
		if (t)
			puts(t);
		cJSON_free(t);
		cJSON_Delete(j);
	} else if (!c->quiet) {
		printf("recorded: %s %s %s\n", user, type, item);
	}
	return EXIT_OK;
}
