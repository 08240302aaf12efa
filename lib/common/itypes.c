/*
 * itypes.c -- the interaction types knytt names and their default
 * weights: the one table import, feedback and training read.
 *
 * The weights order the strength of a signal (a purchase says more than
 * a view) and are the confidences of implicit ALS (Hu, Koren & Volinsky
 * 2008, section 4).  The store keeps a row's weight as given, or this
 * default when none was given; the engine scales it by its own setting
 * for the type (knytt_engine_set_weight) at one point,
 * knytt__ix_confidence, whether the row came from an import, from live
 * feedback or is read back for training.
 */
#include "../internal.h"

#include <string.h>

static const struct {
	const char *name;
	double weight;
} types[KNYTT__NTYPES] = {
	[KNYTT__T_VIEW] = { "view", 1 },
	[KNYTT__T_CLICK] = { "click", 2 },
	[KNYTT__T_CART] = { "add_to_cart", 4 },
	[KNYTT__T_PURCHASE] = { "purchase", 8 },
	[KNYTT__T_FAVORITE] = { "favorite", 4 },
	[KNYTT__T_RATING] = { "rating", 1 }, /* times the rating */
	[KNYTT__T_OTHER] = { NULL, 1 },      /* every custom type */
};

unsigned knytt__type_bit(const char *name)
{
	/* called per imported row: compare only names that could match */
	for (unsigned i = 0; i < KNYTT__T_OTHER; i++)
		if (name[0] == types[i].name[0] &&
		    strcmp(name, types[i].name) == 0)
			return i;
	return KNYTT__T_OTHER;
}

double knytt__type_default(unsigned t)
{
	return t < KNYTT__NTYPES ? types[t].weight : 1;
}

const char *knytt__type_name(unsigned t)
{
	return t < KNYTT__T_OTHER ? types[t].name : NULL;
}
