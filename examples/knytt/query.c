/*
 * query.c -- the commands that go through the engine: train, search,
 * recommend, similar, trending, feedback.
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

#define MAX_K 1000

/* ---- shared option parsing -------------------------------------------- */

static int parse_k(const args *a, size_t *k)
{
	unsigned long v = 10;
	int rc = arg_uint(a, "k", 1, MAX_K, &v);
	*k = v;
	return rc;
}

static int parse_filter(const args *a, knytt_filter *f, int *any)
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
		if (strcmp(m, "als") && strcmp(m, "twotower"))
			return cli_usage(a->cmd, "--model is als or twotower, "
						 "not '%s'", m);
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

int cmd_train(cli *c, args *a)
{
	unsigned long epochs = 0;
	int rc;
	c->reg = 0.05; /* the engine's defaults */
	c->alpha = 4;
	if ((rc = parse_model(c, a)) ||
	    (rc = arg_uint(a, "epochs", 1, 1000, &epochs)) ||
	    (rc = arg_double(a, "reg", &c->reg)) ||
	    (rc = arg_double(a, "alpha", &c->alpha)))
		return rc;
	if (c->reg < 0 || c->alpha < 0)
		return cli_usage("train", "--reg and --alpha must be >= 0");
	c->epochs = (unsigned)epochs;
	c->als_set = epochs || arg_has(a, "reg") || arg_has(a, "alpha");
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
	knytt_train_status ts;
	memset(&ts, 0, sizeof ts);
	knytt_engine_train_status(e, &ts);
	if (c->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "model", c->model);
		cJSON_AddNumberToObject(j, "model_version",
					(double)ts.model_version);
		cJSON_AddNumberToObject(j, "epochs", ts.progress.epochs);
		cJSON_AddNumberToObject(j, "loss", ts.progress.loss);
		cJSON_AddNumberToObject(j, "items_indexed",
					(double)ts.items_indexed);
		cJSON_AddNumberToObject(j, "seconds", secs);
		char *t = cJSON_Print(j);
		if (t)
			puts(t);
		cJSON_free(t);
		cJSON_Delete(j);
	} else if (!c->quiet) {
		printf("trained %s model version %lld: %u epochs, loss %.5g, "
		       "%zu items indexed, %.2f s\n",
		       c->model, (long long)ts.model_version,
		       ts.progress.epochs, ts.progress.loss, ts.items_indexed,
		       secs);
	}
	knytt_engine_close(e);
	return EXIT_OK;
}

/* ---- queries ----------------------------------------------------------- */

int cmd_search(cli *c, args *a)
{
	size_t k;
	knytt_filter f;
	int any, rc;
	if ((rc = parse_k(a, &k)) || (rc = parse_filter(a, &f, &any)))
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
	int n = knytt_engine_search(e, q, NULL, 0, k, any ? &f : NULL, user,
				    r, NULL);
	outmeta m = {"search", "query", q, "user", user};
	rc = finish(c, e, &m, r, n, "search");
	free(r);
	return rc;
}

int cmd_recommend(cli *c, args *a)
{
	size_t k;
	knytt_filter f;
	int any, rc;
	double mmr = 1;
	if ((rc = parse_k(a, &k)) || (rc = parse_filter(a, &f, &any)) ||
	    (rc = arg_double(a, "mmr", &mmr)))
		return rc;
	if (mmr < 0 || mmr > 1)
		return cli_usage("recommend", "--mmr must be in 0..1");
	const char *user = a->pos[0];
	knytt_engine *e;
	if ((rc = cli_engine_open(c, &e)))
		return rc;
	rc = knytt_store_user_get(knytt_engine_store(e), user, NULL, NULL,
				  NULL);
	if (rc == KNYTT_ENOTFOUND && arg_has(a, "cold")) {
		/* a new visitor: registered without history, so that the
		 * engine answers with its cold-start list under the filters */
		rc = knytt_store_user_upsert(knytt_engine_store(e), user, NULL,
					     NULL);
	}
	if (rc == KNYTT_ENOTFOUND) {
		fprintf(stderr, "knytt: recommend: no user '%s' (--cold gives "
				"a new visitor's list)\n",
			user);
		knytt_engine_close(e);
		return EXIT_NOTFOUND;
	}
	if (rc < 0) {
		knytt_engine_close(e);
		return cli_liberr(rc, "recommend");
	}
	knytt_rec_options o;
	knytt_rec_options_init(&o);
	o.mmr_lambda = mmr;
	if (arg_has(a, "exclude-seen"))
		o.exclude_seen = 1;
	knytt_result *r = calloc(k, sizeof *r);
	if (!r) {
		knytt_engine_close(e);
		return cli_liberr(KNYTT_ENOMEM, "recommend");
	}
	int n = knytt_engine_recommend(e, user, k, any ? &f : NULL, &o, r);
	outmeta m = {"recommend", "user", user, NULL, NULL};
	rc = finish(c, e, &m, r, n, "recommend");
	free(r);
	return rc;
}

int cmd_similar(cli *c, args *a)
{
	size_t k;
	knytt_filter f;
	int any, rc;
	if ((rc = parse_k(a, &k)) || (rc = parse_filter(a, &f, &any)))
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
	if ((rc = parse_k(a, &k)))
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
