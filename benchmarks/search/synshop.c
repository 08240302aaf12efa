/*
 * synshop.c -- the synthetic shop with planted synonyms (synshop.h).
 *
 * Item (c, j) -- concept c, j-th item, "c07-i012" -- has a title made of
 * a brand, a colour, a material, the concept's noun and a model number
 * unique in the shop, all from a stream seeded by (seed, c, j), so the
 * held-out pairs can name titles without reading the store.  Within a
 * concept item j is chosen with probability growing toward j = 0 (j =
 * floor(n u^2), as `knytt gen` does): a few items are popular.
 */
#include "synshop.h"

#include <stdio.h>
#include <string.h>

static const struct {
	const char *noun;   /* as titles say it */
	const char *syn[2]; /* as shoppers say it: in no title */
} concepts[SYNSHOP_MAX_CONCEPTS] = {
	{"running shoe", {"sneakers", "kicks"}},
	{"sofa", {"couch", "settee"}},
	{"laptop", {"notebook", "ultrabook"}},
	{"television", {"tv", "telly"}},
	{"mobile phone", {"cellphone", "smartphone"}},
	{"refrigerator", {"fridge", "icebox"}},
	{"headphones", {"earphones", "headset"}},
	{"trousers", {"pants", "slacks"}},
	{"sweater", {"jumper", "pullover"}},
	{"bicycle", {"bike", "cycle"}},
	{"backpack", {"rucksack", "knapsack"}},
	{"sunglasses", {"shades", "sunnies"}},
	{"wristwatch", {"timepiece", "chronograph"}},
	{"handbag", {"purse", "tote"}},
	{"stroller", {"pram", "buggy"}},
	{"faucet", {"tap", "spigot"}},
	{"vacuum cleaner", {"hoover", "vac"}},
	{"flashlight", {"torch", "lantern"}},
	{"parka", {"anorak", "overcoat"}},
	{"hooded top", {"hoodie", "hoody"}},
	{"soft drink", {"soda", "pop"}},
	{"eraser", {"rubber", "scrubber"}},
	{"garbage can", {"dustbin", "trashcan"}},
	{"cookie", {"biscuit", "shortbread"}},
};

static const char *const brands[] = {"Alder", "Birch",  "Cedar", "Dune",
				     "Ember", "Fjord",  "Grove", "Harbor",
				     "Iris",  "Juniper", "Kestrel", "Lumen"};
static const char *const colours[] = {"black", "white", "red",  "blue",
				      "green", "grey",  "navy", "orange"};
static const char *const materials[] = {"canvas", "leather", "steel",
					"cotton", "wool",    "oak",
					"bamboo", "aluminium"};
#define N(a) (sizeof(a) / sizeof((a)[0]))
#define DAY_MS 86400000LL

static uint64_t mix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double unif(uint64_t *s)
{
	return (double)(mix(s) >> 11) / 9007199254740992.0;
}

static unsigned pick(uint64_t *s, unsigned n)
{
	return (unsigned)(unif(s) * n);
}

static uint64_t stream(const synshop_opts *o, uint64_t salt)
{
	uint64_t s = o->seed * 0x2545f4914f6cdd1dULL + salt;
	mix(&s);
	return s;
}

static void item_ext(int c, unsigned j, char *out, size_t cap)
{
	snprintf(out, cap, "c%02d-i%03u", c, j);
}

/* The title and colour of item (c, j). */
static unsigned item_title(const synshop_opts *o, int c, unsigned j,
			   char *out, size_t cap)
{
	uint64_t s = stream(o, 1000003ULL * (uint64_t)(c + 1) + j);
	unsigned col = pick(&s, N(colours));
	snprintf(out, cap, "%s %s %s %s %u", brands[pick(&s, N(brands))],
		 colours[col], materials[pick(&s, N(materials))],
		 concepts[c].noun, 100 + (unsigned)c * 1000 + j);
	return col;
}

static unsigned popular_item(const synshop_opts *o, uint64_t *s)
{
	double u = unif(s);
	return (unsigned)(u * u * o->items_per);
}

/* The concepts a shopper likes (one or two). */
static void likes(const synshop_opts *o, unsigned u, int fav[2])
{
	uint64_t s = stream(o, 0x5eed0000ULL + u);
	fav[0] = (int)pick(&s, o->concepts);
	fav[1] = unif(&s) < 0.5 ? (int)pick(&s, o->concepts) : fav[0];
}

int synshop_fill(knytt_engine *e, const synshop_opts *o)
{
	char ext[24], title[128], desc[256], cat[64];
	int rc;
	for (int c = 0; c < (int)o->concepts; c++) {
		snprintf(cat, sizeof cat, "%s", concepts[c].noun);
		for (char *p = cat; *p; p++)
			if (*p == ' ')
				*p = '-';
		for (unsigned j = 0; j < o->items_per; j++) {
			item_ext(c, j, ext, sizeof ext);
			unsigned col = item_title(o, c, j, title, sizeof title);
			snprintf(desc, sizeof desc, "A %s %s, made to last.",
				 colours[col], concepts[c].noun);
			knytt_item it;
			memset(&it, 0, sizeof it);
			it.struct_size = sizeof it;
			it.ext_id = ext;
			it.title = title;
			it.description = desc;
			it.category = cat;
			it.price = 10 + j % 90;
			it.in_stock = 1;
			if ((rc = knytt_engine_item_upsert(e, &it, NULL, 0)))
				return rc;
		}
	}
	static const char *const types[] = {"view", "view", "view", "click",
					    "add_to_cart", "purchase"};
	uint64_t s = stream(o, 0xb0b0ULL);
	char user[24];
	for (unsigned u = 0; u < o->users; u++) {
		int fav[2];
		likes(o, u, fav);
		snprintf(user, sizeof user, "u%04u", u);
		for (unsigned k = 0; k < o->events_per_user; k++) {
			int c = unif(&s) < 0.9 ? fav[pick(&s, 2)]
					       : (int)pick(&s, o->concepts);
			item_ext(c, popular_item(o, &s), ext, sizeof ext);
			int64_t ts = o->now_ms - 3600000LL -
				     (int64_t)(unif(&s) * 29 * DAY_MS);
			if ((rc = knytt_engine_feedback(e, user, ext,
							types[pick(&s, 6)], 0,
							ts)))
				return rc;
		}
	}
	return KNYTT_OK;
}

/* One query for concept @p c of kind @p kind, and the item clicked. */
static void session(const synshop_opts *o, uint64_t *s, int c, int kind,
		    synshop_pair *p)
{
	unsigned j = popular_item(o, s);
	char title[128];
	unsigned col = item_title(o, c, j, title, sizeof title);
	item_ext(c, j, p->item, sizeof p->item);
	p->kind = kind;
	p->concept = c;
	/* a third of the queries name the colour of the item then chosen */
	int colour = unif(s) < 0.33;
	const char *word = kind == SYNSHOP_SYNONYM
				   ? concepts[c].syn[pick(s, 2)]
				   : concepts[c].noun;
	if (kind == SYNSHOP_EXACT)
		snprintf(p->query, sizeof p->query, "%s", title);
	else if (colour)
		snprintf(p->query, sizeof p->query, "%s %s", colours[col],
			 word);
	else
		snprintf(p->query, sizeof p->query, "%s", word);
}

int synshop_searches(knytt_engine *e, const synshop_opts *o)
{
	knytt_store *st = knytt_engine_store(e);
	uint64_t s = stream(o, 0x5ea4c4ULL);
	char user[24];
	int rc;
	for (unsigned k = 0; k < o->searches; k++) {
		unsigned u = pick(&s, o->users);
		int fav[2];
		likes(o, u, fav);
		snprintf(user, sizeof user, "u%04u", u);
		synshop_pair p;
		/* shoppers say it their way two times in three */
		session(o, &s, fav[pick(&s, 2)],
			unif(&s) < 0.67 ? SYNSHOP_SYNONYM : SYNSHOP_TITLE, &p);
		int64_t ts = o->now_ms - 3600000LL -
			     (int64_t)(unif(&s) * 29 * DAY_MS);
		if ((rc = knytt_store_search_log(st, p.query, user, 0, ts,
						 NULL)) ||
		    (rc = knytt_engine_feedback(e, user, p.item, "click", 0,
						ts + 20000)))
			return rc;
		double r = unif(&s);
		if (r < 0.3 && (rc = knytt_engine_feedback(e, user, p.item,
							   "add_to_cart", 0,
							   ts + 60000)))
			return rc;
		if (r < 0.1 && (rc = knytt_engine_feedback(e, user, p.item,
							   "purchase", 0,
							   ts + 120000)))
			return rc;
	}
	return KNYTT_OK;
}

size_t synshop_heldout(const synshop_opts *o, synshop_pair *out, size_t cap)
{
	uint64_t s = stream(o, 0x401d07ULL);
	for (size_t k = 0; k < cap; k++) {
		double r = unif(&s);
		int kind = r < 0.6 ? SYNSHOP_SYNONYM
			   : r < 0.9 ? SYNSHOP_TITLE
				     : SYNSHOP_EXACT;
		session(o, &s, (int)pick(&s, o->concepts), kind, &out[k]);
	}
	return cap;
}

int synshop_concept(const char *ext)
{
	int c;
	unsigned j;
	if (!ext || sscanf(ext, "c%d-i%u", &c, &j) != 2 || c < 0 ||
	    c >= SYNSHOP_MAX_CONCEPTS)
		return -1;
	return c;
}

const char *synshop_synonym(int c)
{
	return c >= 0 && c < SYNSHOP_MAX_CONCEPTS ? concepts[c].syn[0] : NULL;
}

const char *synshop_noun(int c)
{
	return c >= 0 && c < SYNSHOP_MAX_CONCEPTS ? concepts[c].noun : NULL;
}
