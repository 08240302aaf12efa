/*
 * data.c -- `knytt init` and `knytt import`.
 *
 * Both go through the store API only: the engine is not needed to load
 * data, and the next engine open (any query command) picks the rows up.
 *
 * Import progress.  knytt_store_import has no progress callback, so on a
 * terminal a second thread with its own store connection counts the rows
 * committed so far (the import commits every batch) and compares them
 * with the lines of the file, counted before the import starts.  The bar
 * therefore shows committed new rows: rows that update existing items or
 * users do not move it, and it advances batch by batch.  With an
 * in-memory database (which a second connection cannot see) only a
 * spinner and the elapsed time are shown.
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cmd_init(cli *c, args *a)
{
	knytt_store *st;
	int rc = cli_store_open(c, 1, &st);
	if (rc)
		return rc;
	int64_t ni = knytt_store_item_count(st);
	int64_t nu = knytt_store_user_count(st);
	int64_t nx = knytt_store_interaction_count(st);
	int ver = knytt_store_schema_version(st);
	if (c->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "db", cli_db_shown(c));
		cJSON_AddStringToObject(j, "backend", knytt_store_backend(st));
		cJSON_AddNumberToObject(j, "schema_version", ver);
		cJSON_AddStringToObject(j, "tenant", c->tenant);
		cJSON_AddNumberToObject(j, "tenant_id",
					(double)knytt_store_tenant(st));
		cJSON_AddNumberToObject(j, "items", (double)ni);
		cJSON_AddNumberToObject(j, "users", (double)nu);
		cJSON_AddNumberToObject(j, "interactions", (double)nx);
		char *t = cJSON_Print(j);
		if (t)
			puts(t);
		cJSON_free(t);
		cJSON_Delete(j);
	} else if (!c->quiet) {
		printf("%s: %s store, schema version %d, tenant '%s': %lld "
		       "items, %lld users, %lld interactions\n",
		       cli_db_shown(c), knytt_store_backend(st), ver, c->tenant,
		       (long long)ni, (long long)nu, (long long)nx);
	}
	knytt_store_close(st);
	(void)a;
	return EXIT_OK;
}

/* ---- import ------------------------------------------------------------ */

#define MAX_REJECTS_SHOWN 20

typedef struct importer {
	const cli *c;
	const char *path;
	knytt_record_kind kind;
	size_t rejects;
	bar b;
	pthread_mutex_t lock; /* stderr: reject lines and the bar */
	/* progress thread */
	int done;
	int64_t base;  /* rows of this kind before the import */
	size_t lines;  /* data lines in the file (estimate of the total) */
	/* a second connection for counting, opened before the import so
	 * that its schema check does not wait for the import's write lock */
	knytt_store *counter;
} importer;

static void on_reject(size_t line, const char *field, const char *reason,
		      void *ctx)
{
	importer *im = ctx;
	pthread_mutex_lock(&im->lock);
	im->rejects++;
	if (im->rejects <= MAX_REJECTS_SHOWN) {
		bar_clear(&im->b);
		if (field && *field && !strstr(reason, field))
			fprintf(stderr, "knytt: import: %s:%zu: field %s: %s\n",
				im->path, line, field, reason);
		else
			fprintf(stderr, "knytt: import: %s:%zu: %s\n",
				im->path, line, reason);
	}
	pthread_mutex_unlock(&im->lock);
}

static int64_t count_rows(knytt_store *st, knytt_record_kind kind)
{
	switch (kind) {
	case KNYTT_RECORD_ITEMS:
		return knytt_store_item_count(st);
	case KNYTT_RECORD_USERS:
		return knytt_store_user_count(st);
	default:
		return knytt_store_interaction_count(st);
	}
}

static size_t count_lines(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	char buf[65536];
	size_t n, lines = 0, last = '\n';
	while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
		for (char *p = buf; (p = memchr(p, '\n', (size_t)(buf + n - p)));
		     p++)
			lines++;
		last = (unsigned char)buf[n - 1];
	}
	fclose(f);
	return lines + (last != '\n');
}

static void *progress_thread(void *arg)
{
	importer *im = arg;
	knytt_store *st = im->counter;
	for (;;) {
		pthread_mutex_lock(&im->lock);
		int done = im->done;
		pthread_mutex_unlock(&im->lock);
		if (done)
			break;
		int64_t now = st ? count_rows(st, im->kind) : -1;
		pthread_mutex_lock(&im->lock);
		if (now >= 0 && im->lines > 0)
			bar_draw(&im->b, (double)(now - im->base) /
						 (double)im->lines,
				 -1, "%lld/%zu rows", (long long)(now - im->base),
				 im->lines);
		else
			bar_draw(&im->b, -1, -1, "importing %s (%.0fs)",
				 im->path, cli_now() - im->b.start);
		pthread_mutex_unlock(&im->lock);
		usleep(150000);
	}
	return NULL;
}

int cli_import_file(const cli *c, knytt_store *st, const char *path,
		    knytt_record_kind kind, knytt_format fmt, size_t *rejects)
{
	importer im;
	memset(&im, 0, sizeof im);
	im.c = c;
	im.path = path;
	im.kind = kind;
	pthread_mutex_init(&im.lock, NULL);
	bar_start(&im.b, c);
	pthread_t th;
	int threaded = 0;
	if (im.b.on) {
		im.base = count_rows(st, kind);
		if (!strstr(c->db, ":memory:") &&
		    knytt_store_open(c->db, &im.counter) == 0 &&
		    knytt_store_use_tenant(im.counter,
					   knytt_store_tenant(st)) == 0) {
			im.lines = count_lines(path);
			if (im.lines > 0 && fmt == KNYTT_FORMAT_CSV)
				im.lines--; /* the header */
		} else {
			knytt_store_close(im.counter);
			im.counter = NULL;
		}
		if (im.base >= 0)
			threaded = pthread_create(&th, NULL, progress_thread,
						  &im) == 0;
	}
	int rc = knytt_store_import(st, path, kind, fmt, on_reject, &im);
	if (threaded) {
		pthread_mutex_lock(&im.lock);
		im.done = 1;
		pthread_mutex_unlock(&im.lock);
		pthread_join(th, NULL);
	}
	bar_done(&im.b);
	knytt_store_close(im.counter);
	if (im.rejects > MAX_REJECTS_SHOWN)
		fprintf(stderr, "knytt: import: %s: %zu more rejected rows not "
				"shown\n",
			path, im.rejects - MAX_REJECTS_SHOWN);
	pthread_mutex_destroy(&im.lock);
	*rejects = im.rejects;
	return rc;
}

static int guess_format(const char *path, knytt_format *fmt)
{
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	const char *dot = strrchr(base, '.');
	if (dot && !strcmp(dot, ".csv"))
		*fmt = KNYTT_FORMAT_CSV;
	else if (dot && (!strcmp(dot, ".jsonl") || !strcmp(dot, ".json") ||
			 !strcmp(dot, ".ndjson")))
		*fmt = KNYTT_FORMAT_JSONL;
	else if (!strcmp(base, "u.data") || !strcmp(base, "u.item") ||
		 !strcmp(base, "u.user") || (dot && !strcmp(dot, ".dat")))
		*fmt = KNYTT_FORMAT_MOVIELENS;
	else
		return -1;
	return 0;
}

int cmd_import(cli *c, args *a)
{
	static const char *const kinds[] = {"items", "users", "interactions"};
	const char *path = NULL;
	knytt_record_kind kind = 0;
	for (int k = 0; k < 3; k++) {
		const char *p = arg_get(a, kinds[k]);
		if (!p)
			continue;
		if (path)
			return cli_usage("import", "give one of --items, "
						   "--users, --interactions");
		if (!*p)
			return cli_usage("import", "--%s needs a file",
					 kinds[k]);
		path = p;
		kind = (knytt_record_kind)(k + 1);
	}
	if (!path)
		return cli_usage("import", "--items, --users or --interactions "
					   "FILE is required");
	knytt_format fmt;
	const char *f = arg_get(a, "format");
	if (f) {
		if (!strcmp(f, "csv"))
			fmt = KNYTT_FORMAT_CSV;
		else if (!strcmp(f, "jsonl"))
			fmt = KNYTT_FORMAT_JSONL;
		else if (!strcmp(f, "movielens"))
			fmt = KNYTT_FORMAT_MOVIELENS;
		else
			return cli_usage("import", "--format is csv, jsonl or "
						   "movielens, not '%s'", f);
	} else if (guess_format(path, &fmt) != 0) {
		return cli_usage("import", "cannot tell the format of '%s': "
					   "give --format", path);
	}
	unsigned long batch = 0;
	int rc = arg_uint(a, "batch", 1, 10000000, &batch);
	if (rc)
		return rc;
	if (access(path, R_OK) != 0) {
		return cli_error(EXIT_ERR, "KNYTT_EIO", kinds[kind - 1],
				 "import: cannot read %s", path);
	}

	knytt_store *st;
	rc = cli_store_open(c, 1, &st);
	if (rc)
		return rc;
	if (batch)
		knytt_store_set_batch_size(st, batch);
	size_t rejects = 0;
	double t0 = cli_now();
	int n = cli_import_file(c, st, path, kind, fmt, &rejects);
	double secs = cli_now() - t0;
	if (n < 0) {
		int ex = cli_liberr(n, "import");
		knytt_store_close(st);
		return ex;
	}
	int64_t total = count_rows(st, kind);
	/* repeated event ids are valid rows but not imported ones */
	knytt_import_report rep = {.struct_size = sizeof rep};
	if (knytt_store_import_report(st, &rep) != 0)
		rep.imported = n;
	knytt_store_close(st);
	if (c->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "file", path);
		cJSON_AddStringToObject(j, "kind", kinds[kind - 1]);
		cJSON_AddNumberToObject(j, "accepted", n);
		cJSON_AddNumberToObject(j, "imported", (double)rep.imported);
		cJSON_AddNumberToObject(j, "duplicates",
					(double)rep.duplicates);
		cJSON_AddNumberToObject(j, "rejected", (double)rejects);
		cJSON_AddNumberToObject(j, "total", (double)total);
		cJSON_AddNumberToObject(j, "seconds", secs);
		char *t = cJSON_Print(j);
		if (t)
			puts(t);
		cJSON_free(t);
		cJSON_Delete(j);
	} else if (!c->quiet) {
		char dup[48] = "";
		if (kind == KNYTT_RECORD_INTERACTIONS)
			snprintf(dup, sizeof dup, ", %lld duplicates",
				 (long long)rep.duplicates);
		printf("%s: %lld %s imported%s, %zu rejected in %.2f s (%lld "
		       "in the store)\n",
		       path, (long long)rep.imported, kinds[kind - 1], dup,
		       rejects, secs, (long long)total);
	}
	return rejects ? EXIT_REJECTS : EXIT_OK;
}
