/*
 * profcache.c -- the engine's shopper profiles: a cache of bounded
 * memory with reference counts and least-recently-used eviction.
 *
 * Why.  A profile holds its shopper's whole history and seen set
 * (lib/taste/profile.h), so it grows with every event, and an engine
 * that kept every profile it ever loaded grew without end: a 10-minute
 * soak of knyttd (benchmarks/soak) gained 21% of RSS after warm-up,
 * about 40 bytes per feedback event.  Everything in a profile can be
 * rebuilt from the store (the long-term taste is a fold-in of the stored
 * history, the session a replay of its recent events), so an idle
 * profile may go and come back on its next use, read in pages by
 * knytt__store_user_events (knytt_store_user_history without the ext ids).
 *
 * References.  knytt__engine_user returns a held reference; the caller
 * puts it back (knytt__engine_user_put) when it no longer reads the
 * profile.  A profile with a reference is never evicted nor freed, so a
 * query never reads freed memory whatever the budget.  References are
 * taken only under users_mu, from the table; the evictor also holds
 * users_mu, so a profile it sees idle stays idle while it takes it out.
 * The count is atomic because it is given back without the mutex (the
 * common case is one atomic decrement and a budget test).
 *
 * Loading.  A profile is published in the table before it is loaded,
 * with its own mutex held by the loader until the load is done: a second
 * thread asking for the same shopper waits on that mutex instead of
 * reading the store again, and feedback for the shopper (which needs the
 * mutex before it stores its event) cannot store an event the load then
 * misses or reads twice.  A load that fails marks the profile FAILED and
 * takes it out of the table; its waiters try again.
 *
 * Budget.  bytes (knytt__profile_bytes, plus the table's own slots) is
 * recomputed after every change of a profile and summed per engine.
 * When the sum exceeds the budget, the put that finds it so evicts idle
 * profiles from the least recently used end until it fits.  Profiles in
 * use are skipped, so the sum may stand above the budget by what running
 * queries hold; it comes back under it as they finish.  A profile whose
 * last event is still in the write-behind queue (feedq.c) is skipped
 * too: the store does not have that event yet, so a reload would lose
 * it.
 */
#include "engine_int.h"

#include <stdlib.h>

/* What the table spends per profile: its users[] slot, its free-list
 * slot and two by_user slots (the map stays at most half full). */
#define TABLE_BYTES                                              \
	(sizeof(knytt__profile *) + sizeof(uint32_t) +           \
	 2 * (sizeof(uint64_t) + sizeof(uint32_t)))

int knytt_engine_set_profile_cache(knytt_engine *e, uint64_t bytes)
{
	if (!e)
		return knytt__err(KNYTT_EINVAL,
				  "knytt_engine_set_profile_cache: engine is "
				  "NULL");
	if (e->open_failed)
		return knytt__err(KNYTT_ESTATE,
				  "knytt_engine_set_profile_cache: the engine "
				  "failed to open");
	if (bytes == 0)
		bytes = KNYTT_PROFILE_CACHE_DEFAULT;
	__atomic_store_n(&e->prof_budget, bytes, __ATOMIC_RELAXED);
	if (e->is_open)
		knytt__pcache_trim(e);
	return KNYTT_OK;
}

int knytt_engine_profile_cache_info(knytt_engine *e,
				    knytt_profile_cache_info *out)
{
	if (!e || !out)
		return knytt__err(KNYTT_EINVAL,
				  "knytt_engine_profile_cache_info: %s is NULL",
				  !e ? "engine" : "out");
	if (!KNYTT__HAS(out, knytt_profile_cache_info, evictions))
		return knytt__err(KNYTT_EINVAL,
				  "knytt_engine_profile_cache_info: "
				  "struct_size is %zu, set it to "
				  "sizeof(knytt_profile_cache_info)",
				  out->struct_size);
	knytt_profile_cache_info in = { .struct_size = sizeof in };
	in.budget = __atomic_load_n(&e->prof_budget, __ATOMIC_RELAXED);
	in.bytes = __atomic_load_n(&e->prof_bytes, __ATOMIC_RELAXED);
	in.evictions = __atomic_load_n(&e->prof_evictions, __ATOMIC_RELAXED);
	pthread_mutex_lock(&e->users_mu);
	in.profiles = e->nusers - e->nfree;
	pthread_mutex_unlock(&e->users_mu);
	KNYTT__STRUCT_OUT(out, &in);
	return KNYTT_OK;
}

/* ------------------------------------------------- table and LRU list */

static void lru_unlink(knytt_engine *e, knytt__profile *u)
{
	if (u->lru_prev)
		u->lru_prev->lru_next = u->lru_next;
	else
		e->lru_head = u->lru_next;
	if (u->lru_next)
		u->lru_next->lru_prev = u->lru_prev;
	else
		e->lru_tail = u->lru_prev;
	u->lru_prev = u->lru_next = NULL;
}

static void lru_push(knytt_engine *e, knytt__profile *u)
{
	u->lru_prev = NULL;
	u->lru_next = e->lru_head;
	if (e->lru_head)
		e->lru_head->lru_prev = u;
	else
		e->lru_tail = u;
	e->lru_head = u;
}

/* The published profile of @p ext, or NULL; caller holds users_mu. */
static knytt__profile *find(knytt_engine *e, const char *ext, uint64_t h)
{
	uint32_t s = knytt__lmap_get(&e->by_user, h);
	if (s == LMAP_EMPTY || strcmp(e->users[s]->ext_id, ext) != 0)
		return NULL;
	return e->users[s];
}

/* Puts @p u in the table; caller holds users_mu.  1: published; 0: the
 * 64-bit hash of the id is another shopper's (about 3e-8 for a million
 * shoppers), so @p u stays private to its caller, loaded for the call
 * and freed by its put; KNYTT_ENOMEM. */
static int table_add(knytt_engine *e, knytt__profile *u, uint64_t h)
{
	if (knytt__lmap_get(&e->by_user, h) != LMAP_EMPTY)
		return 0;
	if (e->nfree == 0 && e->nusers == e->capusers) {
		size_t nc = e->capusers ? e->capusers * 2 : 64;
		knytt__profile **nu = realloc(e->users, nc * sizeof *nu);
		if (nu)
			e->users = nu;
		uint32_t *nf = nu ? realloc(e->free_slots, nc * sizeof *nf)
				  : NULL;
		if (!nf)
			return knytt__err(KNYTT_ENOMEM,
					  "out of memory loading user");
		e->free_slots = nf;
		e->capusers = nc;
	}
	uint32_t s = e->nfree ? e->free_slots[e->nfree - 1]
			      : (uint32_t)e->nusers;
	if (knytt__lmap_put(&e->by_user, h, s))
		return KNYTT_ENOMEM;
	if (e->nfree)
		e->nfree--;
	else
		e->nusers++;
	e->users[s] = u;
	u->slot = s;
	lru_push(e, u);
	__atomic_store_n(&u->published, 1, __ATOMIC_RELEASE);
	return 1;
}

/* Takes published @p u out of the table; caller holds users_mu.  Never
 * allocates (the free list has room for every slot). */
static void table_remove(knytt_engine *e, knytt__profile *u)
{
	knytt__lmap_del(&e->by_user, knytt__hash_str(u->ext_id));
	e->users[u->slot] = NULL;
	e->free_slots[e->nfree++] = u->slot;
	lru_unlink(e, u);
	__atomic_store_n(&u->published, 0, __ATOMIC_RELEASE);
}

static void unaccount(knytt_engine *e, const knytt__profile *u)
{
	__atomic_sub_fetch(&e->prof_bytes, (uint64_t)u->bytes,
			   __ATOMIC_RELAXED);
}

/* ------------------------------------------------------------ eviction */

void knytt__pcache_trim(knytt_engine *e)
{
	/* read first, without users_mu: it only grows, so an older value
	 * keeps a profile a little longer, never evicts one too early */
	uint64_t written = knytt__fq_written(e);
	knytt__profile *victims = NULL;
	pthread_mutex_lock(&e->users_mu);
	uint64_t budget = __atomic_load_n(&e->prof_budget, __ATOMIC_RELAXED);
	knytt__profile *u = e->lru_tail;
	while (u && __atomic_load_n(&e->prof_bytes, __ATOMIC_RELAXED) >
			    budget) {
		knytt__profile *prev = u->lru_prev;
		/* acquire: pairs with the release of the last put, so the
		 * profile's fields as its last user left them are seen */
		if (__atomic_load_n(&u->refs, __ATOMIC_ACQUIRE) == 0 &&
		    u->fq_seq <= written) {
			table_remove(e, u);
			unaccount(e, u);
			u->lru_next = victims;
			victims = u;
			__atomic_add_fetch(&e->prof_evictions, 1,
					   __ATOMIC_RELAXED);
		}
		u = prev;
	}
	pthread_mutex_unlock(&e->users_mu);
	while (victims) {
		knytt__profile *next = victims->lru_next;
		knytt__profile_free(victims);
		victims = next;
	}
}

static int over_budget(const knytt_engine *e)
{
	return __atomic_load_n(&e->prof_bytes, __ATOMIC_RELAXED) >
	       __atomic_load_n(&e->prof_budget, __ATOMIC_RELAXED);
}

void knytt__engine_user_put(knytt_engine *e, knytt__profile *u)
{
	if (!u)
		return;
	/* read before the decrement: once it is given back, a published
	 * profile may be evicted and freed at any time.  A profile
	 * unpublished before this put stays so. */
	int pub = __atomic_load_n(&u->published, __ATOMIC_ACQUIRE);
	if (__atomic_sub_fetch(&u->refs, 1, __ATOMIC_ACQ_REL) == 0 && !pub) {
		unaccount(e, u);
		knytt__profile_free(u);
		return;
	}
	if (over_budget(e))
		knytt__pcache_trim(e);
}

void knytt__pcache_account(knytt_engine *e, knytt__profile *u)
{
	size_t b = knytt__profile_bytes(u, e->dim) + TABLE_BYTES;
	if (b >= u->bytes)
		__atomic_add_fetch(&e->prof_bytes, (uint64_t)(b - u->bytes),
				   __ATOMIC_RELAXED);
	else
		__atomic_sub_fetch(&e->prof_bytes, (uint64_t)(u->bytes - b),
				   __ATOMIC_RELAXED);
	u->bytes = b;
}

/* ------------------------------------------------------------- lookups */

/* A reference to the published profile of @p ext (most recently used
 * now), or NULL. */
static knytt__profile *find_ref(knytt_engine *e, const char *ext, uint64_t h)
{
	pthread_mutex_lock(&e->users_mu);
	knytt__profile *u = find(e, ext, h);
	if (u) {
		__atomic_add_fetch(&u->refs, 1, __ATOMIC_RELAXED);
		lru_unlink(e, u);
		lru_push(e, u);
	}
	pthread_mutex_unlock(&e->users_mu);
	return u;
}

/* Whether @p u has been loaded (waits for a load under way). */
static int is_ready(knytt__profile *u)
{
	pthread_mutex_lock(&u->mu);
	int st = u->state;
	pthread_mutex_unlock(&u->mu);
	return st == KNYTT__PROF_READY;
}

/* A new profile of @p ext, published and loaded: NULL when another
 * thread published one first (*rc KNYTT_OK: look again) or on failure. */
static knytt__profile *load_new(knytt_engine *e, const char *ext,
				uint64_t h, int create, int *rc)
{
	knytt__profile *u = knytt__profile_new(ext, e->dim);
	if (!u) {
		*rc = knytt__err(KNYTT_ENOMEM, "out of memory loading user");
		return NULL;
	}
	u->refs = 1;
	u->state = KNYTT__PROF_LOADING;
	pthread_mutex_lock(&u->mu);
	pthread_mutex_lock(&e->users_mu);
	int pub = find(e, ext, h) ? 2 : table_add(e, u, h);
	pthread_mutex_unlock(&e->users_mu);
	if (pub == 2 || pub < 0) { /* another thread's first, or no memory */
		pthread_mutex_unlock(&u->mu);
		knytt__profile_free(u);
		*rc = pub < 0 ? pub : KNYTT_OK;
		return NULL;
	}
	*rc = knytt__engine_user_load(e, u, create);
	if (*rc == KNYTT_OK) {
		u->state = KNYTT__PROF_READY;
		knytt__pcache_account(e, u);
		pthread_mutex_unlock(&u->mu);
		return u;
	}
	u->state = KNYTT__PROF_FAILED;
	if (pub) {
		pthread_mutex_lock(&e->users_mu);
		table_remove(e, u);
		pthread_mutex_unlock(&e->users_mu);
	}
	pthread_mutex_unlock(&u->mu);
	knytt__engine_user_put(e, u);
	return NULL;
}

knytt__profile *knytt__engine_user(knytt_engine *e, const char *ext,
				   int create, int *rc)
{
	uint64_t h = knytt__hash_str(ext);
	for (;;) {
		*rc = KNYTT_OK;
		knytt__profile *u = find_ref(e, ext, h);
		if (u) {
			if (is_ready(u))
				return u;
			/* its loader failed and took it out: try again */
			knytt__engine_user_put(e, u);
			continue;
		}
		if ((u = load_new(e, ext, h, create, rc)) || *rc)
			return u;
	}
}

knytt__profile *knytt__engine_user_if_loaded(knytt_engine *e,
					     const char *ext)
{
	knytt__profile *u = find_ref(e, ext, knytt__hash_str(ext));
	if (u && !is_ready(u)) {
		knytt__engine_user_put(e, u);
		u = NULL;
	}
	return u;
}

int knytt__engine_user_loaded(knytt_engine *e, const char *ext)
{
	pthread_mutex_lock(&e->users_mu);
	int yes = find(e, ext, knytt__hash_str(ext)) != NULL;
	pthread_mutex_unlock(&e->users_mu);
	return yes;
}

knytt__profile **knytt__engine_users_held(knytt_engine *e, size_t *n)
{
	pthread_mutex_lock(&e->users_mu);
	size_t cnt = e->nusers - e->nfree;
	knytt__profile **out = malloc((cnt ? cnt : 1) * sizeof *out);
	*n = 0;
	for (size_t i = 0; out && i < e->nusers; i++) {
		if (!e->users[i])
			continue;
		__atomic_add_fetch(&e->users[i]->refs, 1, __ATOMIC_RELAXED);
		out[(*n)++] = e->users[i];
	}
	pthread_mutex_unlock(&e->users_mu);
	return out;
}

void knytt__pcache_free(knytt_engine *e)
{
	for (size_t i = 0; i < e->nusers; i++)
		knytt__profile_free(e->users[i]);
	free(e->users);
	free(e->free_slots);
	knytt__lmap_free(&e->by_user);
	e->users = NULL;
	e->free_slots = NULL;
	e->nusers = e->capusers = e->nfree = 0;
	e->lru_head = e->lru_tail = NULL;
	e->prof_bytes = 0;
}
