/*
 * gen.c -- `knytt gen`: a synthetic shop whose structure is known, so a
 * model's quality can be checked against it.
 *
 * Planted structure (all from one seeded splitmix64 stream):
 *  - 10 top categories with 3 subcategories each ("shoes/running"); each
 *    subcategory has its own nouns and features and each top category its
 *    own adjectives, uses and price range, so titles and descriptions of
 *    one category share words that keyword and semantic search can find
 *    ("waterproof hiking boot");
 *  - prices log-uniform in the category's range, quality 1.0..5.0 skewed
 *    high, ~3% of items out of stock;
 *  - every user has one or two favourite top categories (written to the
 *    user's attributes as {"taste": [...]}); 90% of a user's events fall
 *    in them, the rest anywhere; within a category a few items are much
 *    more popular than the rest (item = floor(n * u^2));
 *  - event types view 62%, click 22%, add_to_cart 10%, purchase 6%, over
 *    the 30 days before --now; and a burst on six items in the last six
 *    hours (3% of the events of the users who like their category), for
 *    trending.
 * The same seed and --now give byte-identical files.
 */
#include "cli.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

typedef struct sub {
	const char *name;
	const char *nouns[4];
	const char *feats[5];
} sub;

typedef struct top {
	const char *name;
	double price_lo, price_hi;
	const char *adjs[4];
	const char *uses[3];
	sub subs[3];
} top;

static const top tops[] = {
	{"shoes", 30, 220, {"lightweight", "cushioned", "breathable", "durable"},
	 {"long runs", "rough terrain", "everyday wear"},
	 {{"running", {"running shoe", "racing flat", "trainer", "road shoe"},
	   {"trail", "carbon plate", "mesh upper", "responsive foam", "marathon"}},
	  {"hiking", {"hiking boot", "trail shoe", "approach shoe", "mountain boot"},
	   {"waterproof", "gore-tex", "vibram sole", "ankle support", "leather"}},
	  {"casual", {"sneaker", "loafer", "slip-on", "canvas shoe"},
	   {"suede", "minimalist", "retro", "low-top", "memory foam"}}}},
	{"electronics", 15, 1200, {"wireless", "compact", "smart", "portable"},
	 {"travel", "the home office", "gaming"},
	 {{"audio", {"headphones", "earbuds", "speaker", "soundbar"},
	   {"noise cancelling", "bluetooth", "bass boost", "hi-res", "over-ear"}},
	  {"computers", {"laptop", "monitor", "keyboard", "mouse"},
	   {"mechanical", "4k", "ultrawide", "ergonomic", "backlit"}},
	  {"phones", {"smartphone", "phone case", "charger", "power bank"},
	   {"usb-c", "fast charging", "5g", "magsafe", "unlocked"}}}},
	{"kitchen", 8, 400, {"stainless", "nonstick", "cast-iron", "ceramic"},
	 {"weeknight dinners", "baking", "brunch"},
	 {{"cookware", {"skillet", "saucepan", "dutch oven", "wok"},
	   {"induction", "oven-safe", "enamel", "tri-ply", "pre-seasoned"}},
	  {"coffee", {"espresso machine", "grinder", "french press", "kettle"},
	   {"burr", "gooseneck", "pour-over", "milk frother", "barista"}},
	  {"knives", {"chef knife", "paring knife", "knife block", "bread knife"},
	   {"damascus", "forged", "japanese", "serrated", "whetstone"}}}},
	{"books", 6, 60, {"bestselling", "illustrated", "award-winning", "classic"},
	 {"a rainy weekend", "the commute", "book clubs"},
	 {{"fiction", {"novel", "thriller", "mystery", "saga"},
	   {"detective", "historical", "suspense", "family", "crime"}},
	  {"science", {"guide", "textbook", "history", "essay collection"},
	   {"physics", "astronomy", "evolution", "mathematics", "climate"}},
	  {"cooking", {"cookbook", "recipe book", "baking guide", "kitchen manual"},
	   {"vegetarian", "sourdough", "italian", "fermentation", "one-pot"}}}},
	{"garden", 5, 500, {"weatherproof", "heavy-duty", "organic", "solar"},
	 {"spring planting", "the patio", "small balconies"},
	 {{"tools", {"pruner", "spade", "rake", "hose"},
	   {"telescopic", "ergonomic grip", "carbon steel", "expandable", "bypass"}},
	  {"plants", {"seed kit", "herb planter", "bulb set", "seedling tray"},
	   {"tomato", "basil", "tulip", "heirloom", "perennial"}},
	  {"furniture", {"bench", "lounge chair", "parasol", "planter box"},
	   {"teak", "folding", "rattan", "acacia", "uv-resistant"}}}},
	{"toys", 5, 150, {"educational", "colourful", "wooden", "interactive"},
	 {"toddlers", "family game night", "rainy afternoons"},
	 {{"building", {"brick set", "construction kit", "marble run", "block set"},
	   {"magnetic", "stem", "robot", "castle", "spaceship"}},
	  {"games", {"board game", "card game", "puzzle", "strategy game"},
	   {"cooperative", "1000-piece", "party", "trivia", "dice"}},
	  {"plush", {"teddy bear", "plush toy", "soft doll", "cuddly animal"},
	   {"unicorn", "dinosaur", "panda", "bunny", "hypoallergenic"}}}},
	{"sports", 10, 900, {"professional", "adjustable", "high-performance",
			     "all-weather"},
	 {"training at home", "race day", "team practice"},
	 {{"cycling", {"road bike", "bike helmet", "cycling jersey", "bike light"},
	   {"aero", "gravel", "clipless", "carbon frame", "rechargeable"}},
	  {"fitness", {"dumbbell set", "yoga mat", "kettlebell", "resistance band"},
	   {"non-slip", "hex", "cork", "foam roller", "pilates"}},
	  {"camping", {"tent", "sleeping bag", "camping stove", "headlamp"},
	   {"ultralight", "4-season", "down", "backpacking", "waterproof"}}}},
	{"beauty", 4, 120, {"gentle", "fragrance-free", "vegan", "hydrating"},
	 {"sensitive skin", "daily routines", "travel kits"},
	 {{"skincare", {"moisturizer", "serum", "cleanser", "face mask"},
	   {"hyaluronic", "vitamin c", "retinol", "niacinamide", "spf 50"}},
	  {"haircare", {"shampoo", "conditioner", "hair oil", "hair dryer"},
	   {"argan", "sulfate-free", "curl", "keratin", "ionic"}},
	  {"makeup", {"lipstick", "mascara", "foundation", "eyeshadow palette"},
	   {"matte", "waterproof", "long-wear", "shimmer", "nude"}}}},
	{"clothing", 10, 300, {"organic cotton", "slim-fit", "oversized", "warm"},
	 {"the office", "cold mornings", "weekends"},
	 {{"outerwear", {"jacket", "parka", "raincoat", "fleece"},
	   {"insulated", "windproof", "hooded", "quilted", "packable"}},
	  {"knitwear", {"sweater", "cardigan", "beanie", "scarf"},
	   {"merino", "cashmere", "cable-knit", "wool", "ribbed"}},
	  {"denim", {"jeans", "denim jacket", "denim shirt", "shorts"},
	   {"selvedge", "raw", "stretch", "distressed", "straight-leg"}}}},
	{"music", 5, 2500, {"vintage", "handmade", "studio", "beginner"},
	 {"practice sessions", "live gigs", "home recording"},
	 {{"guitars", {"acoustic guitar", "electric guitar", "bass guitar",
		       "ukulele"},
	   {"mahogany", "humbucker", "fingerstyle", "six-string", "solid spruce"}},
	  {"keys", {"digital piano", "synthesizer", "midi keyboard", "organ"},
	   {"weighted keys", "analog", "88-key", "polyphonic", "arpeggiator"}},
	  {"vinyl", {"record", "turntable", "vinyl box set", "lp"},
	   {"jazz", "remastered", "180g", "belt-drive", "limited edition"}}}},
};
#define NTOPS (sizeof tops / sizeof tops[0])

const char *const gen_top_categories[] = {
	"shoes", "electronics", "kitchen", "books", "garden",
	"toys",  "sports",      "beauty",  "clothing", "music", NULL};

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* uniform in [0, 1) */
static double unif(uint64_t *s)
{
	return (double)(rnd(s) >> 11) / 9007199254740992.0;
}

static size_t pick(uint64_t *s, size_t n)
{
	return (size_t)(unif(s) * (double)n);
}

/* Writes one CSV field, quoted when it holds a comma, quote or newline. */
static void csv(FILE *f, const char *s, int last)
{
	if (strpbrk(s, ",\"\n\r")) {
		fputc('"', f);
		for (; *s; s++) {
			if (*s == '"')
				fputc('"', f);
			fputc(*s, f);
		}
		fputc('"', f);
	} else {
		fputs(s, f);
	}
	fputc(last ? '\n' : ',', f);
}

typedef struct event {
	int64_t ts;
	uint32_t user, item;
	uint8_t type;
} event;

static int cmp_event(const void *pa, const void *pb)
{
	const event *a = pa, *b = pb;
	if (a->ts != b->ts)
		return a->ts < b->ts ? -1 : 1;
	if (a->user != b->user)
		return a->user < b->user ? -1 : 1;
	return a->item < b->item ? -1 : a->item > b->item;
}

static FILE *open_out(const char *dir, const char *name, char *path,
		      size_t plen, char *err, size_t errlen)
{
	snprintf(path, plen, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		snprintf(err, errlen, "cannot write %s: %s", path,
			 strerror(errno));
	return f;
}

static int close_out(FILE *f, const char *path, char *err, size_t errlen)
{
	int bad = ferror(f);
	if (fclose(f) != 0 || bad) {
		snprintf(err, errlen, "error writing %s", path);
		return -1;
	}
	return 0;
}

int gen_write(const gen_opts *o, char *err, size_t errlen)
{
	static const char *const types[] = {"view", "click", "add_to_cart",
					    "purchase"};
	uint64_t s = o->seed * 0x2545f4914f6cdd1dULL + 1;
	char path[4096];
	FILE *f = NULL;
	event *ev = NULL;
	uint32_t *item_cat = NULL, *cat_items = NULL, *cat_off = NULL;
	uint8_t (*fav)[2] = NULL;
	int ret = -1;
	const size_t nsub = NTOPS * 3;

	if (mkdir(o->dir, 0777) != 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", o->dir,
			 strerror(errno));
		return -1;
	}
	item_cat = malloc(o->items * sizeof *item_cat);
	cat_items = malloc(o->items * sizeof *cat_items);
	cat_off = calloc(nsub + 1, sizeof *cat_off);
	fav = malloc(o->users * sizeof *fav);
	ev = malloc((o->events ? o->events : 1) * sizeof *ev);
	if (!item_cat || !cat_items || !cat_off || !fav || !ev) {
		snprintf(err, errlen, "out of memory");
		goto done;
	}

	/* ---- items ---- */
	f = open_out(o->dir, "items.csv", path, sizeof path, err, errlen);
	if (!f)
		goto done;
	fputs("id,title,description,category,price,currency,in_stock,quality\n",
	      f);
	for (size_t i = 0; i < o->items; i++) {
		/* the first 30 items cover every subcategory once */
		size_t c = i < nsub ? i : pick(&s, nsub);
		const top *t = &tops[c / 3];
		const sub *u = &t->subs[c % 3];
		item_cat[i] = (uint32_t)c;
		cat_off[c + 1]++;
		const char *adj = t->adjs[pick(&s, 4)];
		const char *f1 = u->feats[pick(&s, 5)];
		const char *f2 = u->feats[pick(&s, 5)];
		const char *noun = u->nouns[pick(&s, 4)];
		const char *use = t->uses[pick(&s, 3)];
		char id[32], title[256], desc[512], cat[64];
		snprintf(id, sizeof id, "i%05zu", i + 1);
		snprintf(title, sizeof title, "%c%s %s %s", adj[0] - 32,
			 adj + 1, f1, noun);
		if (f2 == f1)
			snprintf(desc, sizeof desc, "%c%s %s for %s, with %s.",
				 adj[0] - 32, adj + 1, noun, use, f1);
		else
			snprintf(desc, sizeof desc, "%c%s %s for %s: %s, %s.",
				 adj[0] - 32, adj + 1, noun, use, f1, f2);
		snprintf(cat, sizeof cat, "%s/%s", t->name, u->name);
		csv(f, id, 0);
		csv(f, title, 0);
		csv(f, desc, 0);
		csv(f, cat, 0);
		double price = t->price_lo *
			       pow(t->price_hi / t->price_lo, unif(&s));
		price = floor(price) + 0.99;
		double quality = 1 + 4 * sqrt(unif(&s));
		int stock = unif(&s) >= 0.03;
		fprintf(f, "%.2f,USD,%d,%.1f\n", price, stock, quality);
	}
	if (close_out(f, path, err, errlen))
		goto done;
	f = NULL;
	for (size_t c = 0; c < nsub; c++)
		cat_off[c + 1] += cat_off[c];
	{
		uint32_t *fill = calloc(nsub, sizeof *fill);
		if (!fill) {
			snprintf(err, errlen, "out of memory");
			goto done;
		}
		for (size_t i = 0; i < o->items; i++) {
			uint32_t c = item_cat[i];
			cat_items[cat_off[c] + fill[c]++] = (uint32_t)i;
		}
		free(fill);
	}

	/* ---- users ---- */
	f = open_out(o->dir, "users.csv", path, sizeof path, err, errlen);
	if (!f)
		goto done;
	fputs("id,attributes\n", f);
	for (size_t u = 0; u < o->users; u++) {
		fav[u][0] = (uint8_t)pick(&s, NTOPS);
		fav[u][1] = fav[u][0];
		if (unif(&s) < 0.5)
			while (fav[u][1] == fav[u][0])
				fav[u][1] = (uint8_t)pick(&s, NTOPS);
		char attr[128];
		if (fav[u][1] == fav[u][0])
			snprintf(attr, sizeof attr, "{\"taste\":[\"%s\"]}",
				 tops[fav[u][0]].name);
		else
			snprintf(attr, sizeof attr,
				 "{\"taste\":[\"%s\",\"%s\"]}",
				 tops[fav[u][0]].name, tops[fav[u][1]].name);
		fprintf(f, "u%04zu,", u + 1);
		csv(f, attr, 1);
	}
	if (close_out(f, path, err, errlen))
		goto done;
	f = NULL;

	/* ---- interactions ---- */
	const int64_t day = 86400000;
	uint32_t burst[6];
	for (int b = 0; b < 6; b++)
		burst[b] = (uint32_t)pick(&s, o->items);
	for (size_t k = 0; k < o->events; k++) {
		event *e = &ev[k];
		e->user = (uint32_t)pick(&s, o->users);
		if (unif(&s) < 0.03) {
			/* the burst reaches the users who like its category */
			uint32_t b = burst[pick(&s, 6)];
			uint32_t bt = item_cat[b] / 3;
			if (bt == fav[e->user][0] || bt == fav[e->user][1]) {
				e->item = b;
				e->type = unif(&s) < 0.7 ? 0 : 1;
				e->ts = o->now_ms - 1 -
					(int64_t)(unif(&s) * day / 4);
				continue;
			}
		}
		size_t t = unif(&s) < 0.9 ? fav[e->user][pick(&s, 2)] :
					    pick(&s, NTOPS);
		size_t c = t * 3 + pick(&s, 3);
		double u = unif(&s);
		size_t n = cat_off[c + 1] - cat_off[c];
		if (n == 0) { /* a tiny catalog: any item */
			e->item = (uint32_t)pick(&s, o->items);
		} else {
			e->item = cat_items[cat_off[c] +
					    (size_t)(u * u * (double)n)];
		}
		double r = unif(&s);
		e->type = r < 0.62 ? 0 : r < 0.84 ? 1 : r < 0.94 ? 2 : 3;
		e->ts = o->now_ms - 1 - (int64_t)(unif(&s) * 30 * day);
	}
	qsort(ev, o->events, sizeof *ev, cmp_event);
	f = open_out(o->dir, "interactions.csv", path, sizeof path, err,
		     errlen);
	if (!f)
		goto done;
	fputs("user,item,type,ts_ms,event_id\n", f);
	for (size_t k = 0; k < o->events; k++)
		fprintf(f, "u%04u,i%05u,%s,%lld,g%llu-%zu\n", ev[k].user + 1,
			ev[k].item + 1, types[ev[k].type],
			(long long)ev[k].ts, (unsigned long long)o->seed,
			k + 1);
	if (close_out(f, path, err, errlen))
		goto done;
	f = NULL;
	ret = 0;
done:
	if (f)
		fclose(f);
	free(item_cat);
	free(cat_items);
	free(cat_off);
	free(fav);
	free(ev);
	return ret;
}

int cmd_gen(cli *c, args *a)
{
	gen_opts o = {.items = 2000, .users = 300, .events = 30000, .seed = 1};
	unsigned long seed = 1;
	int rc;
	o.dir = arg_get(a, "out");
	if (!o.dir || !*o.dir)
		return cli_usage("gen", "--out DIR is required");
	if ((rc = arg_uint(a, "items", 1, 10000000, &o.items)) ||
	    (rc = arg_uint(a, "users", 1, 10000000, &o.users)) ||
	    (rc = arg_uint(a, "events", 0, 200000000, &o.events)) ||
	    (rc = arg_uint(a, "seed", 0, (unsigned long)-1, &seed)))
		return rc;
	o.seed = seed;
	if (c->now_ms) { /* the global --now */
		o.now_ms = c->now_ms;
	} else {
		int64_t t = (int64_t)time(NULL);
		o.now_ms = (t - t % 3600) * 1000;
	}
	char err[512];
	if (gen_write(&o, err, sizeof err) != 0) {
		return cli_error(EXIT_ERR, "KNYTT_EIO", "out", "gen: %s", err);
	}
	if (c->json) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "dir", o.dir);
		cJSON_AddNumberToObject(j, "items", (double)o.items);
		cJSON_AddNumberToObject(j, "users", (double)o.users);
		cJSON_AddNumberToObject(j, "events", (double)o.events);
		cJSON_AddNumberToObject(j, "seed", (double)o.seed);
		cJSON_AddNumberToObject(j, "now_ms", (double)o.now_ms);
		cJSON *cats = cJSON_AddArrayToObject(j, "categories");
		for (size_t t = 0; t < NTOPS; t++)
			cJSON_AddItemToArray(cats,
					     cJSON_CreateString(tops[t].name));
		char *txt = cJSON_Print(j);
		if (txt)
			puts(txt);
		cJSON_free(txt);
		cJSON_Delete(j);
	} else if (!c->quiet) {
		printf("wrote %s/items.csv (%lu items in %zu categories), "
		       "%s/users.csv (%lu users),\n      %s/interactions.csv "
		       "(%lu events over 30 days), seed %llu\n",
		       o.dir, o.items, NTOPS * 3, o.dir, o.users, o.dir,
		       o.events, (unsigned long long)o.seed);
	}
	return EXIT_OK;
}
