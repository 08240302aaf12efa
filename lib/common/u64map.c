/*
 * u64map.c -- uint64 key -> uint32 value (index labels -> slots, engine
 * ids -> rows), open addressing with linear
 * probing.  Keys are mixed (labels are often sequential ids, which would
 * cluster under the identity hash); the table is kept at most two thirds
 * full counting tombstones, so probes stay short after heavy churn (a
 * miss probes 5 slots on average at two thirds, 2.5 at one half: eight
 * keys are one cache line).  At one half, a power-of-two table was 24-48
 * bytes per key; the index's map alone took the index of 9,900 SIFT
 * vectors past hnswlib's bytes once its vectors were cache-line
 * aligned (lib/index/index_impl.h); at two thirds it is 18-36.
 */
#include "../internal.h"

#include <string.h>

#include <stdlib.h>

static inline size_t mix(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdULL;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ULL;
	k ^= k >> 33;
	return (size_t)k;
}

uint32_t knytt__lmap_get(const knytt__lmap *m, uint64_t key)
{
	if (m->cap == 0)
		return LMAP_EMPTY;
	size_t mask = m->cap - 1;
	for (size_t i = mix(key) & mask;; i = (i + 1) & mask) {
		uint32_t v = m->vals[i];
		if (v == LMAP_EMPTY)
			return LMAP_EMPTY;
		if (v != LMAP_TOMB && m->keys[i] == key)
			return v;
	}
}

static int rehash(knytt__lmap *m, size_t cap)
{
	uint64_t *keys = malloc(cap * sizeof *keys);
	uint32_t *vals = malloc(cap * sizeof *vals);
	if (!keys || !vals) {
		free(keys);
		free(vals);
		return knytt__err(KNYTT_ENOMEM, "label map: out of memory");
	}
	for (size_t i = 0; i < cap; i++)
		vals[i] = LMAP_EMPTY;
	size_t mask = cap - 1;
	for (size_t i = 0; i < m->cap; i++) {
		if (m->vals[i] >= LMAP_TOMB)
			continue;
		size_t j = mix(m->keys[i]) & mask;
		while (vals[j] != LMAP_EMPTY)
			j = (j + 1) & mask;
		keys[j] = m->keys[i];
		vals[j] = m->vals[i];
	}
	free(m->keys);
	free(m->vals);
	m->keys = keys;
	m->vals = vals;
	m->cap = cap;
	m->used = m->n;
	return KNYTT_OK;
}

int knytt__lmap_reserve(knytt__lmap *m, size_t n)
{
	size_t cap = m->cap ? m->cap : 16;
	while (2 * cap < 3 * (n + 1))
		cap *= 2;
	if (cap == m->cap && 3 * (m->used + 1) <= 2 * cap)
		return KNYTT_OK;
	return rehash(m, cap);
}

int knytt__lmap_put(knytt__lmap *m, uint64_t key, uint32_t slot)
{
	if (m->cap == 0 || 3 * (m->used + 1) > 2 * m->cap) {
		int rc = knytt__lmap_reserve(m, m->n + 1);
		if (rc)
			return rc;
	}
	size_t mask = m->cap - 1, tomb = SIZE_MAX;
	for (size_t i = mix(key) & mask;; i = (i + 1) & mask) {
		uint32_t v = m->vals[i];
		if (v == LMAP_EMPTY) {
			if (tomb != SIZE_MAX)
				i = tomb;
			else
				m->used++;
			m->keys[i] = key;
			m->vals[i] = slot;
			m->n++;
			return KNYTT_OK;
		}
		if (v == LMAP_TOMB) {
			if (tomb == SIZE_MAX)
				tomb = i;
		} else if (m->keys[i] == key) {
			m->vals[i] = slot;
			return KNYTT_OK;
		}
	}
}

void knytt__lmap_del(knytt__lmap *m, uint64_t key)
{
	if (m->cap == 0)
		return;
	size_t mask = m->cap - 1;
	for (size_t i = mix(key) & mask;; i = (i + 1) & mask) {
		uint32_t v = m->vals[i];
		if (v == LMAP_EMPTY)
			return;
		if (v != LMAP_TOMB && m->keys[i] == key) {
			m->vals[i] = LMAP_TOMB;
			m->n--;
			return;
		}
	}
}

void knytt__lmap_free(knytt__lmap *m)
{
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof *m);
}

size_t knytt__lmap_bytes(const knytt__lmap *m)
{
	return m->cap * (sizeof(uint64_t) + sizeof(uint32_t));
}
