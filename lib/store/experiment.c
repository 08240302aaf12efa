/*
 * experiment.c -- A/B experiments in the store: definitions, the sticky
 * assignment of shoppers to variants, exposures, and the report.
 *
 * Assignment.  A shopper's variant is a pure function of (tenant,
 * experiment name, user id): a 64-bit FNV-1a hash, mixed by the
 * splitmix64 finaliser so that ids differing in one character spread
 * over the whole range, mapped to [0, 1) and placed on the cumulative
 * shares.  Every replica and every restart computes the same variant
 * without talking to the others.  The first assignment is also stored
 * (experiment_assign), and a stored assignment wins over the hash: a
 * change of traffic shares moves only shoppers not seen yet, never one
 * who has already been shown a variant.
 *
 * Outcomes are not logged apart: they are the interactions the shopper
 * has anyway.  The report attributes a click, add to cart or purchase to
 * the latest exposure of the same shopper that showed the item, if it
 * came no later than the experiment's window before it (last touch: an
 * outcome counts once).
 */
#include "store_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define O (st->ops)
#define DEFAULT_WINDOW_MS (24LL * 3600 * 1000)
#define MAX_SHOWN 100

static const char *const exp_sql[Q__COUNT - Q_EXP_INS] = {
	[Q_EXP_INS - Q_EXP_INS] =
		"INSERT INTO experiments(tenant, name, start_ts, end_ts, "
		"window_ms, stopped, created) VALUES (?1, ?2, ?3, ?4, ?5, 0, "
		"?6) RETURNING id",
	[Q_EXP_VAR_INS - Q_EXP_INS] =
		"INSERT INTO experiment_variants(experiment, idx, name, share, "
		"model, mmr_lambda, exclude_seen) VALUES (?1, ?2, ?3, ?4, ?5, "
		"?6, ?7)",
	[Q_EXP_GET - Q_EXP_INS] =
		"SELECT id, name, start_ts, end_ts, window_ms, stopped FROM "
		"experiments WHERE tenant = ?1 AND name = ?2",
	[Q_EXP_VARS - Q_EXP_INS] =
		"SELECT name, share, model, mmr_lambda, exclude_seen FROM "
		"experiment_variants WHERE experiment = ?1 ORDER BY idx",
	[Q_EXP_LIST - Q_EXP_INS] =
		"SELECT id, name, start_ts, end_ts, window_ms, stopped FROM "
		"experiments WHERE tenant = ?1 ORDER BY id DESC LIMIT ?2",
	[Q_EXP_STOP - Q_EXP_INS] = "UPDATE experiments SET stopped = ?3 "
				   "WHERE tenant = ?1 AND id = ?2",
	[Q_EXP_SHARE - Q_EXP_INS] = "UPDATE experiment_variants SET share = "
				    "?3 WHERE experiment = ?1 AND idx = ?2",
	[Q_EXP_ASSIGN_GET - Q_EXP_INS] =
		"SELECT variant FROM experiment_assign WHERE experiment = ?1 "
		"AND user_id = ?2",
	[Q_EXP_ASSIGN_INS - Q_EXP_INS] =
		"INSERT INTO experiment_assign(experiment, user_id, variant, "
		"ts) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
	[Q_EXP_EXPOSE - Q_EXP_INS] =
		"INSERT INTO experiment_exposures(experiment, variant, "
		"user_id, surface, shown, ts) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
};

const char *knytt__exp_sql(int id)
{
	return exp_sql[id - Q_EXP_INS];
}

void knytt_experiment_init(knytt_experiment *x)
{
	if (!x)
		return;
	memset(x, 0, sizeof *x);
	x->struct_size = sizeof *x;
	x->window_ms = DEFAULT_WINDOW_MS;
	for (int i = 0; i < KNYTT_EXP_MAX_VARIANTS; i++) {
		x->variants[i].share = 1;
		x->variants[i].mmr_lambda = -1;
		x->variants[i].exclude_seen = -1;
	}
}

/* ---- validation ------------------------------------------------------- */

static int name_ok(const char *field, const char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > max)
		return knytt__err_field(KNYTT_EINVAL, field,
					"field %s must be 1..%zu bytes",
					field, max);
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '_' || *p == '-' ||
		      *p == '.'))
			return knytt__err_field(KNYTT_EINVAL, field,
					  "field %s may hold only letters, "
					  "digits, '_', '-' and '.'",
					  field);
	return 0;
}

static int shares_ok(const knytt_experiment *x)
{
	if (x->nvariants < 2 || x->nvariants > KNYTT_EXP_MAX_VARIANTS)
		return knytt__err_field(KNYTT_EINVAL, "variants",
				  "field variants must hold 2..%d variants",
				  KNYTT_EXP_MAX_VARIANTS);
	for (int i = 0; i < x->nvariants; i++)
		if (!(x->variants[i].share > 0) || isinf(x->variants[i].share))
			return knytt__err_field(KNYTT_EINVAL, "share",
					  "field share of variant %d must be "
					  "a number > 0",
					  i);
	return 0;
}

static int exp_check(const knytt_experiment *x)
{
	if (!x || !KNYTT__HAS(x, knytt_experiment, variants))
		return knytt__err(KNYTT_EINVAL,
				  "experiment is NULL or its struct_size is "
				  "wrong (use knytt_experiment_init)");
	int rc = name_ok("name", x->name, KNYTT_EXP_MAX_NAME);
	if (rc || (rc = shares_ok(x)))
		return rc;
	if (x->start_ms < 0 || x->end_ms < 0 || x->window_ms < 0)
		return knytt__err_field(KNYTT_EINVAL, "start",
					"field start, end and window "
					"must be >= 0");
	if (x->end_ms && x->end_ms <= x->start_ms)
		return knytt__err_field(KNYTT_EINVAL, "end",
					"field end must be after the start");
	for (int i = 0; i < x->nvariants; i++) {
		const knytt_variant *v = &x->variants[i];
		if ((rc = name_ok("variant", v->name, 32)))
			return rc;
		for (int j = 0; j < i; j++)
			if (!strcmp(x->variants[j].name, v->name))
				return knytt__err_field(KNYTT_EINVAL, "variant",
						  "field variant: name '%s' "
						  "is used twice",
						  v->name);
		if (memchr(v->model, 0, sizeof v->model) == NULL ||
		    (*v->model && (rc = knytt__st_check_id("model", v->model))))
			return rc ? rc
				  : knytt__err_field(KNYTT_EINVAL, "model",
					       "field model is not terminated");
		if (v->mmr_lambda != -1 &&
		    !(v->mmr_lambda >= 0 && v->mmr_lambda <= 1))
			return knytt__err_field(KNYTT_EINVAL, "mmr_lambda",
					  "field mmr_lambda must be -1 or in "
					  "0..1");
		if (v->exclude_seen < -1 || v->exclude_seen > 1)
			return knytt__err_field(KNYTT_EINVAL, "exclude_seen",
					  "field exclude_seen must be -1, 0 "
					  "or 1");
	}
	return 0;
}

/* ---- assignment ------------------------------------------------------- */

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
	const unsigned char *s = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ s[i]) * 0x100000001b3ULL;
	return h;
}

int knytt_experiment_bucket(const knytt_experiment *x, uint64_t tenant,
			    const char *user)
{
	if (!user)
		return knytt__err_field(KNYTT_EINVAL, "user",
					"field user is NULL");
	int rc = x ? shares_ok(x) : knytt__err(KNYTT_EINVAL, "experiment "
							     "is NULL");
	if (rc)
		return rc;
	unsigned char t[8];
	knytt__put_u64(t, tenant);
	uint64_t h = fnv(0xcbf29ce484222325ULL, t, 8);
	h = fnv(h, x->name, strlen(x->name) + 1); /* NUL: a separator */
	h = fnv(h, user, strlen(user));
	h ^= h >> 30; /* splitmix64's finaliser */
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	double u = (double)(h >> 11) * 0x1.0p-53, total = 0, acc = 0;
	for (int i = 0; i < x->nvariants; i++)
		total += x->variants[i].share;
	for (int i = 0; i < x->nvariants - 1; i++) {
		acc += x->variants[i].share;
		if (u * total < acc)
			return i;
	}
	return x->nvariants - 1;
}

/* ---- definitions ------------------------------------------------------ */

static knytt_exp_status status_at(const knytt_experiment *x, int64_t t)
{
	if (x->stopped_ms && t >= x->stopped_ms)
		return KNYTT_EXP_STOPPED;
	if (t < x->start_ms)
		return KNYTT_EXP_SCHEDULED;
	if (x->end_ms && t >= x->end_ms)
		return KNYTT_EXP_ENDED;
	return KNYTT_EXP_RUNNING;
}

/* Row columns of Q_EXP_GET / Q_EXP_LIST into @p x (no variants). */
static void read_head(knytt_store *st, knytt__stmt *q, knytt_experiment *x)
{
	size_t sz = x->struct_size;
	knytt_experiment_init(x);
	x->struct_size = sz;
	x->id = (uint64_t)O->col_i64(q, 0);
	snprintf(x->name, sizeof x->name, "%s", O->col_text(q, 1));
	x->start_ms = O->col_i64(q, 2);
	x->end_ms = O->col_i64(q, 3);
	x->window_ms = O->col_i64(q, 4);
	x->stopped_ms = O->col_i64(q, 5);
}

static int read_variants(knytt_store *st, knytt_experiment *x)
{
	knytt__stmt *q = knytt__st_q(st, Q_EXP_VARS);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)x->id);
	int rc;
	x->nvariants = 0;
	while ((rc = O->step(q)) == 1 &&
	       x->nvariants < KNYTT_EXP_MAX_VARIANTS) {
		knytt_variant *v = &x->variants[x->nvariants++];
		snprintf(v->name, sizeof v->name, "%s", O->col_text(q, 0));
		v->share = O->col_f64(q, 1);
		snprintf(v->model, sizeof v->model, "%s", O->col_text(q, 2));
		v->mmr_lambda = O->col_f64(q, 3);
		v->exclude_seen = (int)O->col_i64(q, 4);
	}
	O->reset(q);
	x->status = status_at(x, knytt__now_ms());
	return rc < 0 ? rc : 0;
}

int knytt_store_experiment_get(knytt_store *st, const char *name,
			       knytt_experiment *out)
{
	int rc = knytt__st_need_tenant(st);
	if (rc || (rc = name_ok("name", name, KNYTT_EXP_MAX_NAME)))
		return rc;
	if (!out || !KNYTT__HAS(out, knytt_experiment, variants))
		return knytt__err(KNYTT_EINVAL, "out is NULL or its "
						"struct_size is wrong");
	knytt__stmt *q = knytt__st_q(st, Q_EXP_GET);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, name);
	rc = O->step(q);
	if (rc == 1)
		read_head(st, q, out);
	O->reset(q);
	if (rc == 0)
		return knytt__err(KNYTT_ENOTFOUND, "no experiment '%s'", name);
	return rc < 0 ? rc : read_variants(st, out);
}

static int insert_variant(knytt_store *st, uint64_t id, int i,
			  const knytt_variant *v)
{
	knytt__stmt *q = knytt__st_q(st, Q_EXP_VAR_INS);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)id);
	O->bind_i64(q, 2, i);
	O->bind_text(q, 3, v->name);
	O->bind_f64(q, 4, v->share);
	O->bind_text(q, 5, v->model);
	O->bind_f64(q, 6, v->mmr_lambda);
	O->bind_i64(q, 7, v->exclude_seen);
	int rc = O->step(q);
	O->reset(q);
	return rc < 0 ? rc : 0;
}

int knytt_store_experiment_create(knytt_store *st, const knytt_experiment *x,
				  uint64_t *id)
{
	int rc = knytt__st_need_tenant(st);
	if (rc || (rc = exp_check(x)))
		return rc;
	knytt_experiment old;
	old.struct_size = sizeof old;
	rc = knytt_store_experiment_get(st, x->name, &old);
	if (rc == 0)
		return knytt__err_field(KNYTT_EEXIST, "name",
					"field name: experiment '%s' exists",
					x->name);
	if (rc != KNYTT_ENOTFOUND)
		return rc;
	int64_t now = knytt__now_ms();
	if ((rc = knytt__st_begin(st)))
		return rc;
	knytt__stmt *q = knytt__st_q(st, Q_EXP_INS);
	if (!q) {
		rc = knytt__err_keep(KNYTT_EDB);
		goto fail;
	}
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_text(q, 2, x->name);
	O->bind_i64(q, 3, x->start_ms ? x->start_ms : now);
	O->bind_i64(q, 4, x->end_ms);
	O->bind_i64(q, 5, x->window_ms ? x->window_ms : DEFAULT_WINDOW_MS);
	O->bind_i64(q, 6, now);
	int row;
	uint64_t eid = 0;
	rc = knytt__st_step_id(st, q, &row, &eid);
	O->reset(q);
	if (rc < 0)
		goto fail;
	for (int i = 0; i < x->nvariants; i++)
		if ((rc = insert_variant(st, eid, i, &x->variants[i])))
			goto fail;
	if ((rc = knytt__st_commit(st)))
		return rc;
	if (id)
		*id = eid;
	return 0;
fail:
	knytt__st_rollback(st);
	return rc;
}

int knytt_store_experiment_list(knytt_store *st, knytt_experiment *out,
				size_t cap)
{
	int rc = knytt__st_need_tenant(st);
	if (rc)
		return rc;
	if (cap && !out)
		return knytt__err(KNYTT_EINVAL, "out is NULL");
	for (size_t i = 0; i < cap; i++)
		if (!KNYTT__HAS(&out[i], knytt_experiment, variants))
			return knytt__err(KNYTT_EINVAL, "out[%zu].struct_size "
							"is wrong", i);
	knytt__stmt *q = knytt__st_q(st, Q_EXP_LIST);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, cap > 100000 ? 100000 : (int64_t)cap);
	size_t n = 0;
	while (n < cap && (rc = O->step(q)) == 1)
		read_head(st, q, &out[n++]);
	O->reset(q);
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < n; i++)
		if ((rc = read_variants(st, &out[i])))
			return rc;
	return (int)n;
}

int knytt_store_experiment_stop(knytt_store *st, const char *name,
				int64_t at_ms)
{
	knytt_experiment x;
	x.struct_size = sizeof x;
	int rc = knytt_store_experiment_get(st, name, &x);
	if (rc)
		return rc;
	if (at_ms < 0)
		return knytt__err_field(KNYTT_EINVAL, "at",
					"field at must be >= 0");
	if (x.stopped_ms)
		return knytt__err(KNYTT_ESTATE, "experiment '%s' is already "
						"stopped", name);
	knytt__stmt *q = knytt__st_q(st, Q_EXP_STOP);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)st->tenant);
	O->bind_i64(q, 2, (int64_t)x.id);
	O->bind_i64(q, 3, at_ms ? at_ms : knytt__now_ms());
	rc = O->step(q);
	O->reset(q);
	return rc < 0 ? rc : 0;
}

int knytt_store_experiment_set_shares(knytt_store *st, const char *name,
				      const double *shares, int n)
{
	knytt_experiment x;
	x.struct_size = sizeof x;
	int rc = knytt_store_experiment_get(st, name, &x);
	if (rc)
		return rc;
	if (!shares || n != x.nvariants)
		return knytt__err_field(KNYTT_EINVAL, "shares",
					"field shares must hold %d numbers",
					x.nvariants);
	for (int i = 0; i < n; i++)
		x.variants[i].share = shares[i];
	if ((rc = shares_ok(&x)) || (rc = knytt__st_begin(st)))
		return rc;
	for (int i = 0; i < n && rc == 0; i++) {
		knytt__stmt *q = knytt__st_q(st, Q_EXP_SHARE);
		if (!q) {
			rc = knytt__err_keep(KNYTT_EDB);
			break;
		}
		O->bind_i64(q, 1, (int64_t)x.id);
		O->bind_i64(q, 2, i);
		O->bind_f64(q, 3, shares[i]);
		int s = O->step(q);
		O->reset(q);
		rc = s < 0 ? s : 0;
	}
	if (rc) {
		knytt__st_rollback(st);
		return rc;
	}
	return knytt__st_commit(st);
}

/* ---- assignment and exposure ----------------------------------------- */

static int stored_variant(knytt_store *st, uint64_t eid, uint64_t uid)
{
	knytt__stmt *q = knytt__st_q(st, Q_EXP_ASSIGN_GET);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)eid);
	O->bind_i64(q, 2, (int64_t)uid);
	int rc = O->step(q);
	int v = rc == 1 ? (int)O->col_i64(q, 0) : -1;
	O->reset(q);
	return rc < 0 ? rc : rc == 1 ? v : KNYTT_ENOTFOUND;
}

int knytt_store_experiment_assign(knytt_store *st, const char *name,
				  const char *user, int64_t ts_ms)
{
	knytt_experiment x;
	x.struct_size = sizeof x;
	int rc = knytt_store_experiment_get(st, name, &x);
	if (rc || (rc = knytt__st_check_id("user", user)))
		return rc;
	int64_t t = ts_ms > 0 ? ts_ms : knytt__now_ms();
	if (status_at(&x, t) != KNYTT_EXP_RUNNING)
		return knytt__err(KNYTT_ESTATE,
				  "experiment '%s' is not running", name);
	uint64_t uid = 0;
	if ((rc = knytt__user_ensure(st, user, &uid)))
		return rc;
	int v = stored_variant(st, x.id, uid);
	if (v != KNYTT_ENOTFOUND)
		return v;
	v = knytt_experiment_bucket(&x, st->tenant, user);
	if (v < 0)
		return v;
	knytt__stmt *q = knytt__st_q(st, Q_EXP_ASSIGN_INS);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)x.id);
	O->bind_i64(q, 2, (int64_t)uid);
	O->bind_i64(q, 3, v);
	O->bind_i64(q, 4, t);
	rc = O->step(q);
	int64_t ch = rc == 0 ? O->changes(q) : 0;
	O->reset(q);
	if (rc < 0)
		return rc;
	/* another replica assigned the shopper first: theirs stands */
	return ch ? v : stored_variant(st, x.id, uid);
}

int knytt_store_experiment_expose(knytt_store *st, const char *name,
				  const char *user, int variant,
				  const char *surface, const uint64_t *item_ids,
				  size_t n, int64_t ts_ms)
{
	knytt_experiment x;
	x.struct_size = sizeof x;
	int rc = knytt_store_experiment_get(st, name, &x);
	if (rc || (rc = knytt__st_check_id("user", user)) ||
	    (rc = name_ok("surface", surface, 32)))
		return rc;
	if (variant < 0 || variant >= x.nvariants)
		return knytt__err_field(KNYTT_EINVAL, "variant",
					"field variant must be in "
					"0..%d", x.nvariants - 1);
	if (n && !item_ids)
		return knytt__err_field(KNYTT_EINVAL, "item_ids",
					"field item_ids is NULL");
	if (ts_ms < 0)
		return knytt__err_field(KNYTT_EINVAL, "ts",
					"field ts must be >= 0");
	uint64_t uid = 0;
	if ((rc = knytt__user_ensure(st, user, &uid)))
		return rc;
	char shown[MAX_SHOWN * 21 + 1];
	size_t len = 0;
	shown[0] = 0;
	for (size_t i = 0; i < n && i < MAX_SHOWN; i++)
		len += (size_t)snprintf(shown + len, sizeof shown - len,
					"%s%llu", i ? " " : "",
					(unsigned long long)item_ids[i]);
	knytt__stmt *q = knytt__st_q(st, Q_EXP_EXPOSE);
	if (!q)
		return knytt__err_keep(KNYTT_EDB);
	O->bind_i64(q, 1, (int64_t)x.id);
	O->bind_i64(q, 2, variant);
	O->bind_i64(q, 3, (int64_t)uid);
	O->bind_text(q, 4, surface);
	O->bind_text(q, 5, shown);
	O->bind_i64(q, 6, ts_ms ? ts_ms : knytt__now_ms());
	rc = O->step(q);
	O->reset(q);
	return rc < 0 ? rc : 0;
}
