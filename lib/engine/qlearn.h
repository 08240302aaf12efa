/*
 * qlearn.h -- learning search words from the search log during engine
 * training (qlearn.c).  Not API.
 *
 * load: reads the search log (before the interactions stream);
 * event: offers one interaction (store ids, its confidence w) to the
 * search before it; fit: the word model over the new index's item
 * vectors into *out (NULL when skipped) and its report, a JSON object,
 * into json ("skipped" says why).  All KNYTT_OK or an error.
 */
#ifndef KNYTT_ENGINE_QLEARN_H
#define KNYTT_ENGINE_QLEARN_H

#include "engine_int.h"
#include "../model/qterms.h"

typedef struct knytt__qsrch {
	uint64_t user; /* store id */
	int64_t ts;    /* ms */
	uint32_t text; /* index into texts */
	uint32_t seq;  /* order in the log, for equal times */
} knytt__qsrch;

typedef struct knytt__qlearn {
	knytt__qsrch *s; /* searches with a shopper, by (user, ts) */
	size_t ns, caps;
	char **texts;    /* distinct query texts */
	size_t ntexts, captexts;
	knytt__lmap tmap; /* hash(text) -> index in texts */
	struct knytt__qlpair {
		uint32_t text;
		uint64_t item; /* store id */
		float w;
	} *p;
	size_t np, capp;
	size_t nsearches; /* log entries read */
} knytt__qlearn;

int knytt__qlearn_load(knytt__qlearn *q, const knytt_engine *e,
		       knytt_store *st);
int knytt__qlearn_event(knytt__qlearn *q, const knytt_interaction *ix,
			double w);
int knytt__qlearn_fit(knytt__qlearn *q, uint32_t dim, knytt_index *ix,
		      knytt__qterms **out, char *json, size_t cap);
void knytt__qlearn_free(knytt__qlearn *q);

#endif
