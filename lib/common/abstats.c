/*
 * abstats.c -- the statistics of an A/B report: a rate with its 95%
 * interval, and its comparison with the control's rate.
 *
 * Intervals are Wilson score intervals rather than the textbook
 * p +- 1.96 sqrt(p(1-p)/n): the latter collapses to a point at 0 and 1
 * and covers far less than 95% for small n or rates near 0, which is
 * where click and conversion rates live (Brown, Cai & DasGupta 2001).
 * The p-value is the two-sided two-proportion z-test with the pooled
 * rate under the null; the interval of the difference uses the unpooled
 * standard error (the null no longer holds there).  Both rest on the
 * normal approximation, which is poor with fewer than about 10 successes
 * or failures in an arm: such a comparison is flagged "small".
 */
#include "../internal.h"

#include <math.h>
#include <string.h>

#define Z95 1.959963984540054 /* the 97.5% quantile of N(0, 1) */

static void wilson(uint64_t n, uint64_t x, double *lo, double *hi)
{
	if (n == 0) {
		*lo = 0;
		*hi = 1;
		return;
	}
	double p = (double)x / (double)n, z2 = Z95 * Z95, nn = (double)n;
	double den = 1 + z2 / nn;
	double mid = (p + z2 / (2 * nn)) / den;
	double half = Z95 * sqrt(p * (1 - p) / nn + z2 / (4 * nn * nn)) / den;
	*lo = mid - half < 0 ? 0 : mid - half;
	*hi = mid + half > 1 ? 1 : mid + half;
}

int knytt_ab_compare(uint64_t n, uint64_t x, uint64_t cn, uint64_t cx,
		     int is_control, knytt_ab_stat *out)
{
	if (!out)
		return knytt__err(KNYTT_EINVAL, "knytt_ab_compare: out is NULL");
	if (x > n || cx > cn)
		return knytt__err(KNYTT_EINVAL,
				  "knytt_ab_compare: more successes than "
				  "trials");
	memset(out, 0, sizeof *out);
	out->n = n;
	out->x = x;
	out->rate = n ? (double)x / (double)n : 0;
	wilson(n, x, &out->lo, &out->hi);
	out->lift = out->diff_lo = out->diff_hi = out->p = NAN;
	out->small = x < 10 || n - x < 10;
	if (is_control)
		return 0;
	out->small |= cx < 10 || cn - cx < 10;
	if (n == 0 || cn == 0)
		return 0;
	double p1 = out->rate, p0 = (double)cx / (double)cn;
	if (p0 > 0)
		out->lift = p1 / p0 - 1;
	double se_u = sqrt(p1 * (1 - p1) / (double)n + p0 * (1 - p0) / (double)cn);
	out->diff_lo = p1 - p0 - Z95 * se_u;
	out->diff_hi = p1 - p0 + Z95 * se_u;
	double pp = (double)(x + cx) / (double)(n + cn);
	double se = sqrt(pp * (1 - pp) * (1 / (double)n + 1 / (double)cn));
	/* both arms all 0 or all 1: no evidence of any difference */
	out->p = se > 0 ? erfc(fabs(p1 - p0) / se / sqrt(2.0)) : 1;
	return 0;
}
