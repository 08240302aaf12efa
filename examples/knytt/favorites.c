/*
 * favorites.c -- `knytt favorites USER [--add ITEM | --remove ITEM]`.
 *
 * Favorites are a list the shopper keeps, not a signal: this command
 * marks and unmarks them in the store's favorites table and lists them.
 * Recording that a shopper favorited an item, with the weight that has on
 * their taste, is `knytt feedback USER ITEM favorite`.
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* Every favorite of @p user: ids into *out (malloc'd), the count or a
 * negative knytt code.  The list is read again with a larger array until
 * it fits, as the store returns at most its capacity. */
static int fav_ids(knytt_store *st, const char *user, uint64_t **out)
{
	size_t cap = 256;
	for (;;) {
		uint64_t *ids = malloc(cap * sizeof *ids);
		if (!ids)
			return KNYTT_ENOMEM;
		int n = knytt_store_favorite_list(st, user, ids, cap);
		if (n < 0 || (size_t)n < cap) {
			*out = ids;
			if (n < 0)
				free(ids);
			return n;
		}
		free(ids);
		cap *= 4;
	}
}

static void fav_print(const cli *c, knytt_store *st, const char *user,
		      const uint64_t *ids, int n)
{
	cJSON *j = NULL, *arr = NULL;
	if (c->json) {
		j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "command", "favorites");
		cJSON_AddStringToObject(j, "user", user);
		arr = cJSON_AddArrayToObject(j, "results");
	} else if (n == 0) {
		printf("(no favorites)\n");
	} else {
		printf("%4s  %-8s  %-36s  %-20s  %9s\n", "rank", "item",
		       "title", "category", "price");
	}
	for (int i = 0; i < n; i++) {
		knytt_item *it = NULL;
		if (knytt_store_item_get_id(st, ids[i], &it) != 0)
			it = NULL; /* a deleted item: shown by id */
		knytt_result r;
		memset(&r, 0, sizeof r);
		r.item_id = ids[i];
		if (it && it->ext_id)
			snprintf(r.ext_id, sizeof r.ext_id, "%s", it->ext_id);
		if (c->json) {
			cJSON *o = out_result_json(&r, i + 1, it);
			/* a favorite has no score or reason */
			cJSON_DeleteItemFromObject(o, "score");
			cJSON_DeleteItemFromObject(o, "reason");
			cJSON_AddItemToArray(arr, o);
		} else {
			char price[32] = "";
			if (it)
				snprintf(price, sizeof price, "%.2f",
					 it->price);
			printf("%4d  ", i + 1);
			out_cell(stdout, r.ext_id, 8, 0);
			fputs("  ", stdout);
			out_cell(stdout, it ? it->title : "", 36, 0);
			fputs("  ", stdout);
			out_cell(stdout, it ? it->category : "", 20, 0);
			fputs("  ", stdout);
			out_cell(stdout, price, 9, 1);
			putchar('\n');
		}
		knytt_free(it);
	}
	if (j) {
		char *t = cJSON_Print(j);
		if (t)
			puts(t);
		cJSON_free(t);
		cJSON_Delete(j);
	}
}

static int fav_list(const cli *c, knytt_store *st, const char *user)
{
	int rc = knytt_store_user_get(st, user, NULL, NULL, NULL);
	if (rc == KNYTT_ENOTFOUND)
		return cli_error(EXIT_NOTFOUND, "KNYTT_ENOTFOUND", "user",
				 "favorites: no user '%s'", user);
	if (rc < 0)
		return cli_liberr(rc, "favorites");
	uint64_t *ids = NULL;
	int n = fav_ids(st, user, &ids);
	if (n < 0)
		return cli_liberr(n, "favorites");
	fav_print(c, st, user, ids, n);
	free(ids);
	return EXIT_OK;
}

static int fav_change(const cli *c, knytt_store *st, const char *user,
		      const char *item, int add)
{
	int rc = add ? knytt_store_favorite_set(st, user, item) :
		       knytt_store_favorite_unset(st, user, item);
	if (rc < 0)
		return cli_liberr(rc, "favorites");
	if (c->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "user", user);
		cJSON_AddStringToObject(j, "item", item);
		cJSON_AddBoolToObject(j, "favorite", add);
		char *t = cJSON_Print(j);
		if (t)
			puts(t);
		cJSON_free(t);
		cJSON_Delete(j);
	} else if (!c->quiet) {
		printf("%s: %s %s favorites\n", user, item,
		       add ? "added to" : "removed from");
	}
	return EXIT_OK;
}

int cmd_favorites(cli *c, args *a)
{
	const char *user = a->pos[0];
	const char *add = arg_get(a, "add"), *rm = arg_get(a, "remove");
	if (!*user)
		return cli_usage_field("favorites", "user", "USER must not be "
				       "empty");
	if (add && rm)
		return cli_usage_field("favorites", "remove", "give --add or "
				       "--remove, not both");
	if ((add && !*add) || (rm && !*rm))
		return cli_usage_field("favorites", add ? "add" : "remove",
				       "--%s needs an item", add ? "add" :
				       "remove");
	knytt_store *st;
	int rc = cli_store_open(c, 0, &st);
	if (rc)
		return rc;
	if (add || rm)
		rc = fav_change(c, st, user, add ? add : rm, add != NULL);
	else
		rc = fav_list(c, st, user);
	knytt_store_close(st);
	return rc;
}
