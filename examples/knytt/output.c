/*
 * output.c -- result lists as a table (default) or one JSON document.
 *
 * Table columns: rank, item (external id), title, category, price, score,
 * reason.  Titles and categories are cut to fit (by UTF-8 characters, so
 * a multi-byte character is never split) and marked with "~".
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* Characters (not bytes) of UTF-8 text; bytes 10xxxxxx continue one. */
static int u8len(const char *s)
{
	int n = 0;
	for (; *s; s++)
		n += ((unsigned char)*s & 0xC0) != 0x80;
	return n;
}

void out_cell(FILE *f, const char *s, int width, int right)
{
	if (!s)
		s = "";
	int n = u8len(s);
	if (n > width) {
		/* keep width - 1 characters and a "~" */
		int kept = 0;
		const char *p = s;
		while (*p) {
			if (((unsigned char)*p & 0xC0) != 0x80) {
				if (kept == width - 1)
					break;
				kept++;
			}
			p++;
		}
		fwrite(s, 1, (size_t)(p - s), f);
		fputc('~', f);
		return;
	}
	if (right)
		fprintf(f, "%*s", width - n, "");
	fputs(s, f);
	if (!right)
		fprintf(f, "%*s", width - n, "");
}

cJSON *out_result_json(const knytt_result *r, int rank, const knytt_item *it)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "rank", rank);
	cJSON_AddStringToObject(o, "item", r->ext_id);
	cJSON_AddNumberToObject(o, "id", (double)r->item_id);
	if (it) {
		cJSON_AddStringToObject(o, "title", it->title ? it->title : "");
		cJSON_AddStringToObject(o, "category",
					it->category ? it->category : "");
		cJSON_AddNumberToObject(o, "price", it->price);
		cJSON_AddBoolToObject(o, "in_stock", it->in_stock);
		cJSON_AddNumberToObject(o, "quality", it->quality);
	}
	cJSON_AddNumberToObject(o, "score", r->score);
	cJSON_AddStringToObject(o, "reason", knytt_reason_name(r->reason));
	if (r->because)
		cJSON_AddNumberToObject(o, "because", (double)r->because);
	return o;
}

int out_results(const cli *c, knytt_store *st, const outmeta *m,
		const knytt_result *r, int n)
{
	knytt_item **items = calloc((size_t)(n > 0 ? n : 1), sizeof *items);
	if (!items) {
		return cli_liberr(KNYTT_ENOMEM, "output");
	}
	for (int i = 0; i < n; i++)
		if (st && knytt_store_item_get_id(st, r[i].item_id, &items[i]))
			items[i] = NULL; /* shown without details */

	if (c->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "command", m->command);
		if (m->key1 && m->val1)
			cJSON_AddStringToObject(j, m->key1, m->val1);
		if (m->key2 && m->val2)
			cJSON_AddStringToObject(j, m->key2, m->val2);
		cJSON *arr = cJSON_AddArrayToObject(j, "results");
		for (int i = 0; i < n; i++)
			cJSON_AddItemToArray(arr,
					     out_result_json(&r[i], i + 1,
							     items[i]));
		char *t = cJSON_Print(j);
		if (t)
			puts(t);
		cJSON_free(t);
		cJSON_Delete(j);
	} else {
		if (n == 0)
			printf("(no results)\n");
		else
			printf("%4s  %-8s  %-36s  %-20s  %9s  %8s  %s\n",
			       "rank", "item", "title", "category", "price",
			       "score", "reason");
		for (int i = 0; i < n; i++) {
			const knytt_item *it = items[i];
			char price[32] = "", score[32];
			if (it)
				snprintf(price, sizeof price, "%.2f",
					 it->price);
			snprintf(score, sizeof score, "%.4f", r[i].score);
			printf("%4d  ", i + 1);
			out_cell(stdout, r[i].ext_id, 8, 0);
			fputs("  ", stdout);
			out_cell(stdout, it ? it->title : "", 36, 0);
			fputs("  ", stdout);
			out_cell(stdout, it ? it->category : "", 20, 0);
			fputs("  ", stdout);
			out_cell(stdout, price, 9, 1);
			fputs("  ", stdout);
			out_cell(stdout, score, 8, 1);
			printf("  %s\n", knytt_reason_name(r[i].reason));
		}
	}
	for (int i = 0; i < n; i++)
		knytt_free(items[i]);
	free(items);
	return EXIT_OK;
}
