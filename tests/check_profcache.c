/*
 * check_profcache.c -- the engine's profile cache (lib/engine/
 * profcache.c): an engine whose budget evicts every idle profile answers
 * exactly as one that never evicts (exclusions over the whole history,
 * session, long-term taste), the accounted bytes stay under the budget
 * and match the heap, a profile in use is never freed (threads; run
 * under ThreadSanitizer by make tsan), and write-behind feedback still
 * queued is not lost by an eviction.
 */
#include "knytt.h"
#include "../lib/internal.h"
#include "../lib/engine/engine_int.h"
#include "testutil.h"

#include <malloc.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#define NCAT 5
#define PER_CAT 24
#define NUSERS 30
#define EV_PER_USER 20
#define NITEMS (NCAT * PER_CAT)

static const char *cats[NCAT] = { "shoes", "coffee", "garden", "books",
				  "toys" };
static const char *words[NCAT] = { "running shoe", "espresso coffee",
				   "garden rake", "scifi novel",
				   "lego castle" };

/* the as-of time of every engine here: the session decay and the
 * history's decay read it, so two engines agree to the bit */
static const int64_t T0 = 1700000000000LL;

static char base[128], dbb[128];

static void rm_db(const char *p)
{
	tu_rm_db(p);
}

static knytt_engine *open_at(const char *path, uint64_t budget, int async)
{
	char uri[160];
	snprintf(uri, sizeof uri, "sqlite:%s", path);
	knytt_engine *e;
	ck_assert_int_eq(knytt_engine_create(&e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_dim(e, 16), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_threads(e, 1), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_now(e, T0), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_feedback_async(e, async), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_profile_cache(e, budget), KNYTT_OK);
	ck_assert_msg(knytt_engine_open(e, uri) == KNYTT_OK, "%s",
		      knytt_errmsg());
	return e;
}

/* A trained shop in @p base: items of five categories, each shopper's
 * events mostly in one category, 20 to 2 days before T0. */
static void make_shop(void)
{
	snprintf(base, sizeof base, "/tmp/knytt-pcache-%d.db", (int)getpid());
	snprintf(dbb, sizeof dbb, "/tmp/knytt-pcache-%d-b.db", (int)getpid());
	rm_db(base);
	rm_db(dbb);
	knytt_engine *e = open_at(base, UINT64_MAX, 0);
	char ext[32], title[64];
	for (int c = 0; c < NCAT; c++)
		for (int i = 0; i < PER_CAT; i++) {
			knytt_item it;
			memset(&it, 0, sizeof it);
			it.struct_size = sizeof it;
			sprintf(ext, "c%d-%d", c, i);
			sprintf(title, "%s %d", words[c], i);
			it.ext_id = ext;
			it.title = title;
			it.category = cats[c];
			it.price = 10 + i;
			it.in_stock = 1;
			ck_assert_int_eq(knytt_engine_item_upsert(e, &it, NULL, 0),
					 KNYTT_OK);
		}
	uint64_t s = 7;
	for (int u = 0; u < NUSERS; u++) {
		char user[16];
		sprintf(user, "u%d", u);
		for (int k = 0; k < EV_PER_USER; k++) {
			int c = tu_rand(&s) % 8 ? u % NCAT
						: (int)(tu_rand(&s) % NCAT);
			sprintf(ext, "c%d-%d", c, (int)(tu_rand(&s) % PER_CAT));
			int64_t ts = T0 - 2 * 86400000LL -
				     (int64_t)(EV_PER_USER - k) * 3600000LL * 20;
			ck_assert_int_eq(knytt_engine_feedback(
						 e, user, ext,
						 k % 5 == 4 ? "click" : "view", 0,
						 ts),
					 KNYTT_OK);
		}
	}
	ck_assert_msg(knytt_engine_train(e, NULL, NULL) == KNYTT_OK, "%s",
		      knytt_errmsg());
	knytt_engine_close(e);
	/* the same shop twice: each engine writes its own feedback */
	char cmd[600];
	snprintf(cmd, sizeof cmd, "cp %s %s", base, dbb);
	ck_assert_int_eq(system(cmd), 0);
}

static void drop_shop(void)
{
	rm_db(base);
	rm_db(dbb);
}

static void same_results(const knytt_result *a, int na, const knytt_result *b,
			 int nb, const char *what)
{
	ck_assert_msg(na == nb, "%s: %d results, evicting engine %d", what, na,
		      nb);
	for (int i = 0; i < na; i++) {
		ck_assert_msg(strcmp(a[i].ext_id, b[i].ext_id) == 0,
			      "%s: #%d is %s, evicting engine %s", what, i,
			      a[i].ext_id, b[i].ext_id);
		ck_assert_msg(fabs(a[i].score - b[i].score) <=
				      1e-6 * (1 + fabs(a[i].score)),
			      "%s: #%d score %g, evicting engine %g", what, i,
			      a[i].score, b[i].score);
	}
}

/* The tastes of @p user in both engines agree to the bit. */
static void same_taste(knytt_engine *a, knytt_engine *b, const char *user)
{
	int rc;
	knytt__profile *pa = knytt__engine_user(a, user, 0, &rc);
	knytt__profile *pb = knytt__engine_user(b, user, 0, &rc);
	ck_assert_ptr_nonnull(pa);
	ck_assert_ptr_nonnull(pb);
	pthread_mutex_lock(&pa->mu);
	pthread_mutex_lock(&pb->mu);
	ck_assert_uint_eq(pa->nh, pb->nh);
	ck_assert_int_eq(pa->taste.long_ok, pb->taste.long_ok);
	ck_assert_int_eq(pa->taste.has_sess, pb->taste.has_sess);
	ck_assert_int_eq(memcmp(pa->taste.longv, pb->taste.longv,
				a->dim * sizeof(float)), 0);
	ck_assert_int_eq(memcmp(pa->taste.sess, pb->taste.sess,
				a->dim * sizeof(float)), 0);
	ck_assert_int_eq(pa->taste.sess_ts, pb->taste.sess_ts);
	ck_assert_uint_eq(pa->taste.sess_item, pb->taste.sess_item);
	pthread_mutex_unlock(&pb->mu);
	pthread_mutex_unlock(&pa->mu);
	knytt__engine_user_put(b, pb);
	knytt__engine_user_put(a, pa);
}

START_TEST(eviction_keeps_every_answer)
{
	make_shop();
	/* a: never evicts; b: a budget of one byte, so every profile is
	 * evicted as soon as its call is done and loaded again by the next */
	knytt_engine *a = open_at(base, UINT64_MAX, 0);
	knytt_engine *b = open_at(dbb, 1, 0);
	knytt_result ra[NITEMS] = {{.struct_size = sizeof(knytt_result)}};
	knytt_result rb[NITEMS] = {{.struct_size = sizeof(knytt_result)}};
	char user[16], ext[32], what[96];
	uint64_t s = 11;
	/* the session's events: the last hour before T0, in order */
	int64_t ts = T0 - 3600000;
	for (int round = 0; round < 3; round++) {
		for (int u = 0; u < 12; u++) {
			sprintf(user, "u%d", u);
			/* a few events each: the session moves to another
			 * category than the long-term one */
			for (int k = 0; k < 3; k++) {
				sprintf(ext, "c%d-%d", (u + 1 + round) % NCAT,
					(int)(tu_rand(&s) % PER_CAT));
				ts += 1000;
				ck_assert_int_eq(knytt_engine_feedback(
							 a, user, ext, "view", 0,
							 ts),
						 KNYTT_OK);
				ck_assert_int_eq(knytt_engine_feedback(
							 b, user, ext, "view", 0,
							 ts),
						 KNYTT_OK);
				ck_assert_int_eq(knytt__engine_user_loaded(b, user),
						 0);
			}
			int na = knytt_engine_recommend(a, user, NITEMS, NULL,
							NULL, ra);
			int nb = knytt_engine_recommend(b, user, NITEMS, NULL,
							NULL, rb);
			snprintf(what, sizeof what, "recommend %s round %d",
				 user, round);
			ck_assert_int_gt(na, 0);
			same_results(ra, na, rb, nb, what);
			/* exclusions: nothing of the whole history */
			for (int i = 0; i < nb; i++) {
				int rc;
				knytt__profile *p =
					knytt__engine_user(a, user, 0, &rc);
				pthread_mutex_lock(&p->mu);
				ck_assert_uint_eq(knytt__profile_seen(p,
								      rb[i].item_id),
						  0);
				pthread_mutex_unlock(&p->mu);
				knytt__engine_user_put(a, p);
			}
			na = knytt_engine_search(a, "coffee", NULL, 0, 10, NULL,
						 user, ra, NULL);
			nb = knytt_engine_search(b, "coffee", NULL, 0, 10, NULL,
						 user, rb, NULL);
			snprintf(what, sizeof what, "search %s round %d", user,
				 round);
			same_results(ra, na, rb, nb, what);
			same_taste(a, b, user);
			ck_assert_int_eq(knytt__engine_user_loaded(b, user), 0);
		}
	}
	ck_assert_uint_gt(__atomic_load_n(&b->prof_evictions, __ATOMIC_RELAXED),
			  100);
	ck_assert_uint_eq(__atomic_load_n(&a->prof_evictions, __ATOMIC_RELAXED),
			  0);
	ck_assert_uint_eq(__atomic_load_n(&b->prof_bytes, __ATOMIC_RELAXED), 0);
	/* a model swap: the reloaded profile folds in with the new model */
	ck_assert_int_eq(knytt_engine_train(a, NULL, NULL), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_train(b, NULL, NULL), KNYTT_OK);
	for (int u = 0; u < 12; u++) {
		sprintf(user, "u%d", u);
		int na = knytt_engine_recommend(a, user, NITEMS, NULL, NULL, ra);
		int nb = knytt_engine_recommend(b, user, NITEMS, NULL, NULL, rb);
		same_results(ra, na, rb, nb, "after training");
	}
	knytt_engine_close(a);
	knytt_engine_close(b);
	drop_shop();
}
END_TEST

/* The sum the cache keeps, checked against its profiles. */
static uint64_t sum_profiles(knytt_engine *e, size_t *n)
{
	uint64_t sum = 0;
	*n = 0;
	pthread_mutex_lock(&e->users_mu);
	for (size_t i = 0; i < e->nusers; i++) {
		knytt__profile *u = e->users[i];
		if (!u)
			continue;
		ck_assert_uint_ge(u->bytes, knytt__profile_bytes(u, e->dim));
		sum += u->bytes;
		(*n)++;
	}
	pthread_mutex_unlock(&e->users_mu);
	return sum;
}

START_TEST(accounted_memory_stays_under_the_budget)
{
	make_shop();
	knytt_engine *e = open_at(base, UINT64_MAX, 0);
	knytt_result r[10] = {{.struct_size = sizeof(knytt_result)}};
	char user[16];
	/* every profile once: what all of them take */
	for (int u = 0; u < NUSERS; u++) {
		sprintf(user, "u%d", u);
		ck_assert_int_gt(knytt_engine_recommend(e, user, 10, NULL, NULL,
							r),
				 0);
	}
	size_t n;
	uint64_t all = __atomic_load_n(&e->prof_bytes, __ATOMIC_RELAXED);
	ck_assert_uint_eq(sum_profiles(e, &n), all);
	ck_assert_uint_eq(n, NUSERS);
	/* honest: within a factor of the heap those profiles really take
	 * (measured by reloading them all; the store's cache is warm by
	 * then).  Not under ASan, which has its own allocator. */
	if (!tu_sanitize()) {
		ck_assert_int_eq(knytt_engine_set_profile_cache(e, 1), KNYTT_OK);
		ck_assert_uint_eq(sum_profiles(e, &n), 0);
		ck_assert_int_eq(knytt_engine_set_profile_cache(e, UINT64_MAX),
				 KNYTT_OK);
		struct mallinfo2 m0 = mallinfo2();
		for (int u = 0; u < NUSERS; u++) {
			sprintf(user, "u%d", u);
			knytt_engine_recommend(e, user, 10, NULL, NULL, r);
		}
		struct mallinfo2 m1 = mallinfo2();
		double heap = (double)m1.uordblks - (double)m0.uordblks;
		double acc = (double)__atomic_load_n(&e->prof_bytes,
						     __ATOMIC_RELAXED);
		ck_assert_msg(acc >= 0.8 * heap && acc <= 1.5 * heap,
			      "accounted %.0f bytes, heap grew %.0f", acc,
			      heap);
	}
	/* a third of that: the least recently used go, the rest stay */
	uint64_t budget = all / 3;
	ck_assert_int_eq(knytt_engine_set_profile_cache(e, budget), KNYTT_OK);
	ck_assert_uint_le(__atomic_load_n(&e->prof_bytes, __ATOMIC_RELAXED),
			  budget);
	ck_assert_int_eq(knytt__engine_user_loaded(e, "u0"), 0);
	ck_assert_int_eq(knytt__engine_user_loaded(e, "u29"), 1);
	uint64_t s = 3;
	for (int k = 0; k < 300; k++) {
		sprintf(user, "u%d", (int)(tu_rand(&s) % NUSERS));
		if (k % 3 == 0) {
			char ext[32];
			sprintf(ext, "c%d-%d", k % NCAT, k % PER_CAT);
			ck_assert_int_eq(knytt_engine_feedback(e, user, ext,
							       "view", 0, 0),
					 KNYTT_OK);
		} else {
			ck_assert_int_gt(knytt_engine_recommend(e, user, 10,
								NULL, NULL, r),
					 0);
		}
		uint64_t acc = __atomic_load_n(&e->prof_bytes,
					       __ATOMIC_RELAXED);
		ck_assert_uint_le(acc, budget);
		ck_assert_uint_eq(sum_profiles(e, &n), acc);
		ck_assert_uint_gt(n, 0);
	}
	ck_assert_uint_gt(__atomic_load_n(&e->prof_evictions, __ATOMIC_RELAXED),
			  0);
	/* what a service exports */
	knytt_profile_cache_info info = { .struct_size = sizeof info };
	ck_assert_int_eq(knytt_engine_profile_cache_info(e, &info), KNYTT_OK);
	ck_assert_uint_eq(info.budget, budget);
	ck_assert_uint_eq(info.bytes, sum_profiles(e, &n));
	ck_assert_uint_eq(info.profiles, n);
	ck_assert_uint_eq(info.evictions, e->prof_evictions);
	info.struct_size = sizeof info - 1;
	ck_assert_int_eq(knytt_engine_profile_cache_info(e, &info),
			 KNYTT_EINVAL);
	ck_assert_int_eq(knytt_engine_profile_cache_info(e, NULL), KNYTT_EINVAL);
	/* 0: the default */
	ck_assert_int_eq(knytt_engine_set_profile_cache(e, 0), KNYTT_OK);
	ck_assert_uint_eq(e->prof_budget, 64ull << 20);
	ck_assert_int_eq(knytt_engine_set_profile_cache(NULL, 1), KNYTT_EINVAL);
	knytt_engine_close(e);
	drop_shop();
}
END_TEST

START_TEST(held_profile_is_never_evicted)
{
	make_shop();
	knytt_engine *e = open_at(base, 1, 0);
	int rc;
	knytt__profile *u = knytt__engine_user(e, "u3", 0, &rc);
	ck_assert_ptr_nonnull(u);
	/* over budget, but held: it stays, and is the same profile */
	knytt__pcache_trim(e);
	ck_assert_int_eq(knytt__engine_user_loaded(e, "u3"), 1);
	knytt__profile *again = knytt__engine_user(e, "u3", 0, &rc);
	ck_assert_ptr_eq(again, u);
	knytt__engine_user_put(e, again);
	ck_assert_int_eq(knytt__engine_user_loaded(e, "u3"), 1);
	pthread_mutex_lock(&u->mu);
	ck_assert_uint_eq(u->nh, EV_PER_USER);
	pthread_mutex_unlock(&u->mu);
	/* the last put evicts it */
	knytt__engine_user_put(e, u);
	ck_assert_int_eq(knytt__engine_user_loaded(e, "u3"), 0);
	/* an unknown shopper: nothing stays behind */
	knytt_result r[4] = {{.struct_size = sizeof(knytt_result)}};
	ck_assert_int_eq(knytt_engine_recommend(e, "nobody", 4, NULL, NULL, r),
			 KNYTT_ENOTFOUND);
	ck_assert_int_eq(knytt__engine_user_loaded(e, "nobody"), 0);
	ck_assert_uint_eq(e->prof_bytes, 0);
	knytt_engine_close(e);
	drop_shop();
}
END_TEST

/* Write-behind: an event still queued is not in the store, so its
 * profile must stay in memory until the writer has stored it. */
START_TEST(queued_feedback_survives_eviction)
{
	make_shop();
	knytt_engine *e = open_at(base, 1, 1);
	knytt_result r[NITEMS] = {{.struct_size = sizeof(knytt_result)}};
	char ext[32];
	for (int i = 0; i < 2 * PER_CAT; i++) {
		sprintf(ext, "c%d-%d", 3 + i / PER_CAT, i % PER_CAT);
		ck_assert_int_eq(knytt_engine_feedback(e, "u0", ext, "view", 0,
						       T0 - 1000 + i),
				 KNYTT_OK);
		int n = knytt_engine_recommend(e, "u0", NITEMS, NULL, NULL, r);
		for (int k = 0; k < n; k++)
			ck_assert_msg(strcmp(r[k].ext_id, ext) != 0,
				      "%s was just seen", ext);
	}
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);
	knytt_engine_close(e);
	drop_shop();
}
END_TEST

/* ---- threads: a profile in use is never freed ---------------------- */

typedef struct churn {
	knytt_engine *e;
	int stop, fail;
	long calls;
	char why[160];
} churn;

static void churn_fail(churn *c, const char *what, int rc)
{
	if (!__atomic_exchange_n(&c->fail, 1, __ATOMIC_ACQ_REL))
		snprintf(c->why, sizeof c->why, "%s: %d %s", what, rc,
			 knytt_errmsg());
}

/* Recommend, search and feedback for eight shoppers, every profile
 * evicted after each call: loads, uses and evictions of one shopper
 * race in every combination. */
static void *churner(void *p)
{
	churn *c = p;
	uint64_t s = (uint64_t)(uintptr_t)&s;
	knytt_result r[20] = {{.struct_size = sizeof(knytt_result)}};
	char user[16], ext[32];
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		sprintf(user, "u%d", (int)(tu_rand(&s) % 8));
		int k = (int)(tu_rand(&s) % 3), rc;
		if (k == 0) {
			rc = knytt_engine_recommend(c->e, user, 20, NULL, NULL,
						    r);
		} else if (k == 1) {
			rc = knytt_engine_search(c->e, "garden", NULL, 0, 10,
						 NULL, user, r, NULL);
		} else {
			sprintf(ext, "c%d-%d", (int)(tu_rand(&s) % NCAT),
				(int)(tu_rand(&s) % PER_CAT));
			rc = knytt_engine_feedback(c->e, user, ext, "view", 0,
						   0);
		}
		if (rc < 0)
			churn_fail(c, k == 0 ? "recommend" : k == 1 ? "search"
								    : "feedback",
				   rc);
		__atomic_add_fetch(&c->calls, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/* Holds a reference and reads the whole profile over and over while the
 * others evict around it: under ASan a freed profile would be a
 * use-after-free, under TSan a race. */
static void *holder(void *p)
{
	churn *c = p;
	while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
		int rc;
		knytt__profile *u = knytt__engine_user(c->e, "u1", 0, &rc);
		if (!u) {
			churn_fail(c, "holder", rc);
			break;
		}
		for (int k = 0; k < 20; k++) {
			pthread_mutex_lock(&u->mu);
			double w = 0;
			for (size_t i = 0; i < u->nh; i++)
				w += u->hist[i].w;
			if (!(w > 0) || u->state != KNYTT__PROF_READY)
				churn_fail(c, "holder: profile emptied", 0);
			pthread_mutex_unlock(&u->mu);
			knytt__pcache_trim(c->e);
		}
		knytt__engine_user_put(c->e, u);
	}
	return NULL;
}

/* Moves the budget between none and everything. */
static void *budgeter(void *p)
{
	churn *c = p;
	struct timespec d = { 0, 2 * 1000000L };
	for (int k = 0; !__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE); k++) {
		knytt_engine_set_profile_cache(c->e, k % 4 ? 1 : 4096);
		nanosleep(&d, NULL);
	}
	return NULL;
}

START_TEST(profiles_in_use_survive_eviction_threads)
{
	make_shop();
	knytt_engine *e = open_at(base, 1, _i);
	static churn c;
	memset(&c, 0, sizeof c);
	c.e = e;
	const char *ms = getenv("KNYTT_STRESS_MS");
	long run_ms = ms ? atol(ms) : 1500;
	pthread_t th[5];
	void *(*role[5])(void *) = { churner, churner, churner, holder,
				     budgeter };
	for (int i = 0; i < 5; i++)
		ck_assert_int_eq(pthread_create(&th[i], NULL, role[i], &c), 0);
	struct timespec ts = { run_ms / 1000, (run_ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
	__atomic_store_n(&c.stop, 1, __ATOMIC_RELEASE);
	for (int i = 0; i < 5; i++)
		pthread_join(th[i], NULL);
	ck_assert_msg(!c.fail, "%s", c.why);
	ck_assert_int_gt(c.calls, 20);
	ck_assert_uint_gt(__atomic_load_n(&e->prof_evictions, __ATOMIC_RELAXED),
			  10);
	/* every event is in memory once, and in the store */
	ck_assert_int_eq(knytt_engine_flush(e), KNYTT_OK);
	ck_assert_int_eq(knytt_engine_set_profile_cache(e, 1), KNYTT_OK);
	ck_assert_uint_eq(__atomic_load_n(&e->prof_bytes, __ATOMIC_RELAXED), 0);
	fprintf(stderr, "profcache threads (async %d): %ld calls, %llu "
			"evictions in %ld ms\n",
		_i, c.calls,
		(unsigned long long)__atomic_load_n(&e->prof_evictions,
						    __ATOMIC_RELAXED),
		run_ms);
	knytt_engine_close(e);
	drop_shop();
}
END_TEST

Suite *profcache_suite(void)
{
	Suite *s = suite_create("profcache");
	TCase *tc = tcase_create("budget");
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, eviction_keeps_every_answer);
	tcase_add_test(tc, accounted_memory_stays_under_the_budget);
	tcase_add_test(tc, held_profile_is_never_evicted);
	tcase_add_test(tc, queued_feedback_survives_eviction);
	suite_add_tcase(s, tc);
	tc = tcase_create("concurrency");
	tcase_set_timeout(tc, 600);
	/* loop 0: synchronous feedback, 1: write-behind */
	tcase_add_loop_test(tc, profiles_in_use_survive_eviction_threads, 0, 2);
	suite_add_tcase(s, tc);
	return s;
}
