/*
 * dispatch.c -- probes the CPU once and chooses the kernel table.
 *
 * x86-64: AVX-512 needs F, BW and VL (BW/VL for the int8 and masked byte
 * loads); AVX2 needs FMA and F16C (the f16 kernels) too.
 * __builtin_cpu_supports also checks that the OS saves the wide registers
 * (XCR0), so a tier is never chosen on a kernel that would fault on it.
 * F16C is read from CPUID leaf 1 directly: clang 14's builtin does not
 * know the name, and the AVX2 test above it already covers XCR0.
 * arm64: NEON is always there.
 */
#include "vec.h"

#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const knytt__vec_ops *tiers[4];
static int ntiers;
static const knytt__vec_ops *chosen;
static pthread_once_t once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
static int has_f16c(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	return (c & bit_F16C) != 0;
}
#endif

static void probe(void)
{
	tiers[ntiers++] = &knytt__vec_scalar;
#if defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
	    has_f16c())
		tiers[ntiers++] = &knytt__vec_avx2;
	if (__builtin_cpu_supports("avx512f") &&
	    __builtin_cpu_supports("avx512bw") &&
	    __builtin_cpu_supports("avx512vl"))
		tiers[ntiers++] = &knytt__vec_avx512;
#elif defined(__aarch64__)
	tiers[ntiers++] = &knytt__vec_neon;
#endif
	chosen = tiers[ntiers - 1];
	const char *force = getenv("KNYTT_SIMD");
	if (force && *force) {
		for (int i = 0; i < ntiers; i++)
			if (strcmp(tiers[i]->name, force) == 0)
				chosen = tiers[i];
	}
}

const knytt__vec_ops *knytt__vec(void)
{
	pthread_once(&once, probe);
	return chosen;
}

int knytt__vec_tiers(const knytt__vec_ops **out, int cap)
{
	pthread_once(&once, probe);
	int n = ntiers < cap ? ntiers : cap;
	for (int i = 0; i < n; i++)
		out[i] = tiers[i];
	return n;
}

const char *knytt_simd_name(void)
{
	return knytt__vec()->name;
}

float knytt__normalize(float *v, size_t d)
{
	float n = sqrtf(knytt__vec()->dot(v, v, d));
	if (n > 0) {
		float inv = 1.0f / n;
		for (size_t i = 0; i < d; i++)
			v[i] *= inv;
	}
	return n;
}

float knytt_distance(knytt_metric metric, const float *a, const float *b,
		     size_t dim)
{
	if (!a || !b)
		return NAN;
	const knytt__vec_ops *ops = knytt__vec();
	switch (metric) {
	case KNYTT_METRIC_L2:
		return ops->l2sq(a, b, dim);
	case KNYTT_METRIC_IP:
		return -ops->dot(a, b, dim);
	case KNYTT_METRIC_COSINE:
		return ops->cosd(a, b, dim);
	}
	return NAN;
}
