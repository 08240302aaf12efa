/*
 * demo.c -- `knytt demo`: the whole path on a fresh SQLite file.
 *
 * The database is removed first (with its WAL files and the engine's
 * index files next to it, PATH.TENANT.index.vN).
 *
 * gen (2000 items, 300 users, 30000 events) -> import -> train ALS ->
 * recommendations for a user whose planted taste is known -> search ->
 * similar items -> trending -> feedback in another category and the
 * recommendations shifting toward it.  Every step is the same library
 * call the corresponding subcommand makes.
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEMO_DB "sqlite:build/demo.db"
#define DEMO_USER "u0001"
#define REC_K 8

static void heading(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void heading(const char *fmt, ...)
{
	va_list ap;
	printf("\n== ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
}

/* The top category of an item ("shoes" of "shoes/running") into buf. */
static void top_of(knytt_store *st, uint64_t id, char *buf, size_t n)
{
	knytt_item *it = NULL;
	buf[0] = 0;
	if (knytt_store_item_get_id(st, id, &it) == 0 && it->category) {
		size_t l = strcspn(it->category, "/");
		if (l >= n)
			l = n - 1;
		memcpy(buf, it->category, l);
		buf[l] = 0;
	}
	knytt_free(it);
}

static int in_list(const char *s, char list[][32], int n)
{
	for (int i = 0; i < n; i++)
		if (!strcmp(s, list[i]))
			return 1;
	return 0;
}

/* The user's planted taste from the attributes gen wrote. */
static int taste_of(knytt_store *st, const char *user, char taste[][32])
{
	char *attr = NULL;
	int n = 0;
	if (knytt_store_user_get(st, user, NULL, &attr, NULL) != 0 || !attr)
		return 0;
	cJSON *j = cJSON_Parse(attr);
	cJSON *t = cJSON_GetObjectItemCaseSensitive(j, "taste");
	cJSON *e;
	cJSON_ArrayForEach(e, t)
	{
		if (cJSON_IsString(e) && n < 2) {
			snprintf(taste[n], 32, "%s", e->valuestring);
			n++;
		}
	}
	cJSON_Delete(j);
	knytt_free(attr);
	return n;
}

static int count_in(knytt_store *st, const knytt_result *r, int n,
		    char list[][32], int nl)
{
	int hits = 0;
	char top[32];
	for (int i = 0; i < n; i++) {
		top_of(st, r[i].item_id, top, sizeof top);
		hits += in_list(top, list, nl);
	}
	return hits;
}

static void rm_f(const char *path)
{
	if (unlink(path) != 0 && errno != ENOENT)
		fprintf(stderr, "knytt: demo: cannot remove %s: %s\n", path,
			strerror(errno));
}

int cmd_demo(cli *c, args *a)
{
	if (c->json)
		return cli_usage("demo", "the demo has no --json output");
	/* the demo wipes its database: never the one of KNYTT_DB */
	c->db = arg_get(a, "db") ? arg_get(a, "db") : DEMO_DB;
	if (strncmp(c->db, "sqlite:", 7) != 0 || !c->db[7] ||
	    strstr(c->db, ":memory:"))
		return cli_usage("demo", "the demo needs --db sqlite:PATH (it "
					 "removes PATH first)");
	const char *path = c->db + 7;
	if (strlen(path) > 4000)
		return cli_usage("demo", "the database path is too long");
	char buf[8400], dir[4096];
	int rc, ex = EXIT_ERR;
	knytt_store *st = NULL;
	knytt_engine *e = NULL;
	double t0 = cli_now(), t;

	/* fresh database: the file, its WAL, and files the engine keeps
	 * next to it (PATH.*) */
	snprintf(dir, sizeof dir, "%s", path);
	char *slash = strrchr(dir, '/');
	if (slash) {
		*slash = 0;
		if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
			return cli_error(EXIT_ERR, "KNYTT_EIO", "db",
					 "demo: cannot create %s: %s", dir,
					 strerror(errno));
		}
	}
	rm_f(path);
	static const char *const sfx[] = {"-wal", "-shm", "-journal"};
	for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
		snprintf(buf, sizeof buf, "%s%s", path, sfx[i]);
		rm_f(buf);
	}
	/* the engine's index files: PATH.TENANT.index.vN */
	snprintf(buf, sizeof buf, "%s.*.index*", path);
	glob_t gl;
	if (glob(buf, 0, NULL, &gl) == 0) {
		for (size_t i = 0; i < gl.gl_pathc; i++)
			rm_f(gl.gl_pathv[i]);
		globfree(&gl);
	}

	printf("knytt demo: a synthetic shop in %s\n", path);
	/* ---- gen ---- */
	gen_opts g = {.items = 2000, .users = 300, .events = 30000, .seed = 1};
	char gdir[4200];
	snprintf(gdir, sizeof gdir, "%s.data", path);
	g.dir = gdir;
	{
		int64_t now = (int64_t)time(NULL);
		g.now_ms = (now - now % 3600) * 1000;
	}
	t = cli_now();
	if (gen_write(&g, buf, sizeof buf) != 0) {
		return cli_error(EXIT_ERR, "KNYTT_EIO", NULL, "demo: %s", buf);
	}
	heading("gen: %lu items in 30 categories, %lu users with planted "
		"tastes, %lu events (%.2f s)",
		g.items, g.users, g.events, cli_now() - t);

	/* ---- import ---- */
	if ((rc = cli_store_open(c, 1, &st)))
		return rc;
	static const char *const files[] = {"items.csv", "users.csv",
					    "interactions.csv"};
	for (int k = 0; k < 3; k++) {
		size_t rej = 0;
		snprintf(buf, sizeof buf, "%s/%s", gdir, files[k]);
		t = cli_now();
		rc = cli_import_file(c, st, buf, (knytt_record_kind)(k + 1),
				     KNYTT_FORMAT_CSV, &rej);
		if (rc < 0) {
			ex = cli_liberr(rc, "demo: import");
			goto out;
		}
		printf("import %-17s %6d rows, %zu rejected (%.2f s)\n",
		       files[k], rc, rej, cli_now() - t);
		if (!arg_has(a, "keep"))
			rm_f(buf);
	}
	if (!arg_has(a, "keep"))
		rmdir(gdir);
	knytt_store_close(st);
	st = NULL;

	/* ---- train ---- */
	if ((rc = cli_engine_open(c, &e)))
		return rc;
	st = knytt_engine_store(e);
	double secs;
	rc = cli_train(c, e, &secs);
	if (rc < 0) {
		ex = cli_liberr(rc, "demo: train");
		goto out_engine;
	}
	knytt_train_status ts = {.struct_size = sizeof ts};
	knytt_engine_train_status(e, &ts);
	heading("train: ALS, %u epochs, loss %.5g, %zu items indexed "
		"(%.2f s)",
		ts.progress.epochs, ts.progress.loss, ts.items_indexed, secs);

	/* ---- recommend ---- */
	char taste[2][32];
	int nt = taste_of(st, DEMO_USER, taste);
	knytt_result r[REC_K] = {{.struct_size = sizeof(knytt_result)}};
	knytt_rec_options ro;
	knytt_rec_options_init(&ro);
	ro.exclude_seen = 1; /* only items new to the user */
	int n = knytt_engine_recommend(e, DEMO_USER, REC_K, NULL, &ro, r);
	if (n < 0) {
		ex = cli_liberr(n, "demo: recommend");
		goto out_engine;
	}
	heading("knytt recommend %s --exclude-seen   (planted taste: %s%s%s)",
		DEMO_USER,
		nt > 0 ? taste[0] : "?", nt > 1 ? ", " : "",
		nt > 1 ? taste[1] : "");
	outmeta m = {"recommend", "user", DEMO_USER, NULL, NULL};
	out_results(c, st, &m, r, n);
	int before = count_in(st, r, n, taste, nt);
	printf("-> %d of %d recommendations are in the user's favourite "
	       "categories\n",
	       before, n);

	/* ---- search ---- */
	const char *query = "waterproof hiking boot";
	knytt_result s[5] = {{.struct_size = sizeof(knytt_result)}};
	n = knytt_engine_search(e, query, NULL, 0, 5, NULL, NULL, s, NULL);
	if (n < 0) {
		ex = cli_liberr(n, "demo: search");
		goto out_engine;
	}
	heading("knytt search \"%s\" --k 5", query);
	m = (outmeta){"search", "query", query, NULL, NULL};
	out_results(c, st, &m, s, n);

	/* ---- similar ---- */
	if (r[0].ext_id[0]) {
		char item[KNYTT_STORE_MAX_ID + 1];
		snprintf(item, sizeof item, "%s", r[0].ext_id);
		n = knytt_engine_similar(e, item, 5, NULL, s);
		if (n < 0) {
			ex = cli_liberr(n, "demo: similar");
			goto out_engine;
		}
		heading("knytt similar %s --k 5", item);
		m = (outmeta){"similar", "item", item, NULL, NULL};
		out_results(c, st, &m, s, n);
	}

	/* ---- trending ---- */
	n = knytt_engine_trending(e, 5, 86400, NULL, s);
	if (n < 0) {
		ex = cli_liberr(n, "demo: trending");
		goto out_engine;
	}
	heading("knytt trending --window 1d --k 5");
	m = (outmeta){"trending", "window", "1d", NULL, NULL};
	out_results(c, st, &m, s, n);

	/* ---- feedback in a new category ---- */
	char other[1][32];
	snprintf(other[0], sizeof other[0], "%s", "music");
	for (int i = 0; gen_top_categories[i]; i++)
		if (!in_list(gen_top_categories[i], taste, nt)) {
			snprintf(other[0], sizeof other[0], "%s",
				 gen_top_categories[i]);
			break;
		}
	knytt_result pick[4] = {{.struct_size = sizeof(knytt_result)}};
	int np = knytt_engine_trending(e, 4, 604800, other[0], pick);
	if (np < 0) {
		ex = cli_liberr(np, "demo: trending");
		goto out_engine;
	}
	heading("%s now browses %s:", DEMO_USER, other[0]);
	static const char *const types[] = {"view", "click", "add_to_cart",
					    "view"};
	for (int i = 0; i < np; i++) {
		rc = knytt_engine_feedback(e, DEMO_USER, pick[i].ext_id,
					   types[i], 0, 0);
		if (rc < 0) {
			ex = cli_liberr(rc, "demo: feedback");
			goto out_engine;
		}
		printf("knytt feedback %s %s %s\n", DEMO_USER, pick[i].ext_id,
		       types[i]);
	}
	/* as `knytt recommend` would: a new process opens the store again */
	knytt_engine_close(e);
	e = NULL;
	if ((rc = cli_engine_open(c, &e)))
		return rc;
	st = knytt_engine_store(e);
	n = knytt_engine_recommend(e, DEMO_USER, REC_K, NULL, &ro, r);
	if (n < 0) {
		ex = cli_liberr(n, "demo: recommend");
		goto out_engine;
	}
	heading("knytt recommend %s --exclude-seen   (after the feedback)",
		DEMO_USER);
	m = (outmeta){"recommend", "user", DEMO_USER, NULL, NULL};
	out_results(c, st, &m, r, n);
	int now_other = count_in(st, r, n, other, 1);
	printf("-> %d of %d recommendations are now in %s (the session "
	       "taste follows the new clicks)\n",
	       now_other, n, other[0]);
	if (arg_has(a, "experiment") && (ex = demo_experiment(c, e)))
		goto out_engine;
	ex = EXIT_ERR;
	printf("\ndemo finished in %.1f s; the store is %s (try: knytt --db "
	       "%s recommend u0002)\n",
	       cli_now() - t0, path, c->db);
	ex = EXIT_OK;
out_engine:
	knytt_engine_close(e);
	return ex;
out:
	knytt_store_close(st);
	return ex;
}

/* ---- knytt demo --experiment ------------------------------------------
 * An A/B test between the ALS engine the demo trained (control) and a
 * two-tower model trained on the same store, served by a second engine.
 * Each of the shop's users comes for two sessions; a simulated shopper
 * clicks a recommended item of their planted taste with probability 0.12
 * (0.02 otherwise) and buys a clicked item with probability 0.25.  The
 * report is the library's, from the exposures and the feedback. */

static double unif(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (double)(*s >> 11) * 0x1.0p-53;
}

static int simulate(knytt_engine *e, const char *exp, int users)
{
	knytt_store *st = knytt_engine_store(e);
	uint64_t seed = 0x5EEDULL;
	knytt_rec_options ro;
	knytt_rec_options_init(&ro);
	ro.exclude_seen = 1;
	for (int s = 0; s < 2; s++)
		for (int u = 1; u <= users; u++) {
			char user[16], taste[2][32], top[32];
			snprintf(user, sizeof user, "u%04d", u);
			int nt = taste_of(st, user, taste);
			knytt_result r[REC_K] = {
				{.struct_size = sizeof(knytt_result)}};
			knytt_exp_served sv;
			int n = knytt_engine_recommend_exp(e, exp, user, REC_K,
							   NULL, &ro, r, &sv);
			if (n < 0)
				return n;
			for (int i = 0; i < n; i++) {
				top_of(st, r[i].item_id, top, sizeof top);
				double p = in_list(top, taste, nt) ? 0.12 : 0.02;
				if (unif(&seed) >= p)
					continue;
				int rc = knytt_engine_feedback(e, user,
							       r[i].ext_id,
							       "click", 0, 0);
				if (rc == 0 && unif(&seed) < 0.25)
					rc = knytt_engine_feedback(
						e, user, r[i].ext_id,
						"purchase", 0, 0);
				if (rc < 0)
					return rc;
			}
		}
	return knytt_engine_flush(e);
}

int demo_experiment(cli *c, knytt_engine *e)
{
	static const char exp[] = "demo-als-vs-twotower";
	knytt_engine *tt = NULL;
	double t = cli_now();
	int rc = knytt_engine_create(&tt);
	if (rc == 0)
		rc = knytt_engine_set_model(tt, KNYTT_MODEL_TWOTOWER);
	if (rc == 0)
		rc = knytt_engine_set_twotower(tt, 2);
	if (rc == 0)
		rc = knytt_engine_set_tenant(tt, c->tenant);
	if (rc == 0)
		rc = knytt_engine_open(tt, c->db);
	if (rc == 0)
		rc = knytt_engine_train(tt, NULL, NULL);
	if (rc < 0) {
		int ex = cli_liberr(rc, "demo: two-tower engine");
		knytt_engine_close(tt);
		return ex;
	}
	heading("experiment: a two-tower model trained beside ALS (%.2f s)",
		cli_now() - t);
	knytt_experiment x;
	knytt_experiment_init(&x);
	snprintf(x.name, sizeof x.name, "%s", exp);
	x.nvariants = 2;
	snprintf(x.variants[0].name, sizeof x.variants[0].name, "als");
	snprintf(x.variants[1].name, sizeof x.variants[1].name, "twotower");
	snprintf(x.variants[1].model, sizeof x.variants[1].model, "twotower");
	x.window_ms = 3600 * 1000;
	knytt_store *st = knytt_engine_store(e);
	rc = knytt_store_experiment_create(st, &x, NULL);
	if (rc == 0)
		rc = knytt_engine_set_variant_engine(e, "twotower", tt);
	t = cli_now();
	if (rc == 0)
		rc = simulate(e, exp, 300);
	if (rc < 0) {
		int ex = cli_liberr(rc, "demo: experiment");
		knytt_engine_set_variant_engine(e, "twotower", NULL);
		knytt_engine_close(tt);
		return ex;
	}
	heading("knytt experiment report %s   (300 simulated shoppers, two "
		"sessions each, %.2f s)", exp, cli_now() - t);
	knytt_exp_report r;
	rc = knytt_store_experiment_report(st, exp, &r);
	if (rc == 0)
		cli_exp_report_print(c, &r);
	knytt_engine_set_variant_engine(e, "twotower", NULL);
	knytt_engine_close(tt);
	return rc < 0 ? cli_liberr(rc, "demo: report") : EXIT_OK;
}
