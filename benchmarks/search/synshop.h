/*
 * synshop.h -- a synthetic shop with planted synonyms, for measuring
 * search that learns from the shop (benchmarks/search, tests/check_qlearn.c).
 *
 * Every concept (running shoes, sofas, ...) has items whose titles name
 * it one way ("Alder black canvas running shoe 117") and shoppers who
 * search for it with words no title or description holds ("sneakers",
 * "kicks").  Shoppers like one or two concepts: their browsing gives the
 * co-interaction structure a recommender learns; their search sessions
 * (a search, then a click on an item of the concept searched, sometimes
 * a cart and a purchase) give the search log.  The held-out pairs are
 * drawn the same way and never written.
 *
 * Deterministic: the same options give the same shop and pairs.
 */
#ifndef KNYTT_SYNSHOP_H
#define KNYTT_SYNSHOP_H

#include <knytt.h>

#define SYNSHOP_MAX_CONCEPTS 24

typedef struct synshop_opts {
	unsigned concepts;  /* 1..SYNSHOP_MAX_CONCEPTS */
	unsigned items_per; /* items per concept, 1..900 */
	unsigned users;
	unsigned events_per_user; /* browsing events per shopper */
	unsigned searches;  /* search sessions written to the log */
	uint64_t seed;
	int64_t now_ms;     /* everything happens in the 30 days before */
} synshop_opts;

enum synshop_kind {
	SYNSHOP_SYNONYM,  /* words of no title: "black sneakers" */
	SYNSHOP_TITLE,    /* the concept's title words: "running shoe" */
	SYNSHOP_EXACT     /* an item's whole title */
};

typedef struct synshop_pair {
	char query[128];
	char item[24]; /* the item clicked (external id) */
	int kind;      /* enum synshop_kind */
	int concept;
} synshop_pair;

/* The items and the shoppers' browsing, through the engine (open).
 * KNYTT_OK or the engine's error. */
int synshop_fill(knytt_engine *e, const synshop_opts *o);
/* The search sessions: the log entries (through the engine's store) and
 * the events after them (through the engine).  KNYTT_OK or an error. */
int synshop_searches(knytt_engine *e, const synshop_opts *o);
/* Up to @p cap held-out pairs (shares: 60% synonym, 30% title words, 10%
 * exact titles) into @p out; returns the count. */
size_t synshop_heldout(const synshop_opts *o, synshop_pair *out, size_t cap);
/* The concept of item @p ext (-1 if not one of the shop's), and the
 * words a concept goes by: its first synonym and its title noun. */
int synshop_concept(const char *ext);
const char *synshop_synonym(int concept);
const char *synshop_noun(int concept);

#endif
