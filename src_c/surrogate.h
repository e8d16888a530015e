/*
 * surrogate.h -- mu'(x) of a registry surrogate (stefast_surrogate in
 * stefast.h), in double, over short blocks of values (private).
 *
 * Everything is static inline and written as loops of plain arithmetic and
 * selects over a block, so each dispatch clone of a caller gets its own
 * vectorised copy and every clone rounds alike: exp is computed here, not
 * by libm (whose calls do not vectorise and whose last bit may differ from
 * one libm to another), with the build's no-FMA rule (internal.h).
 */
#ifndef STEFAST_SURROGATE_H
#define STEFAST_SURROGATE_H

#include <stdint.h>
#include <string.h>

#include "stefast.h"
#include "internal.h"

/* values per block: the callers' stack buffers */
#define STEFAST_SURROGATE_BLOCK 64

/*
 * exp(-u) for u >= 0, to about 2 ulp: u = k ln2 + r with |r| <= ln2 / 2
 * (Cody-Waite: k ln2_hi is exact), exp(-r) by its Taylor polynomial of
 * degree 13 (the next term is below 5e-18), and 2^-k applied in two halves
 * so that results down to the subnormals stay exact in the exponent. u is
 * clamped at 800 (exp(-800) underflows to 0), which also maps +inf and NaN
 * to 0 (the callers mask NaN themselves).
 */
STEFAST_INLINE double stefast_exp_neg_(double u)
{
    const double LOG2E = 0x1.71547652b82fep+0, SHIFT = 0x1.8p52;
    const double LN2_HI = 0x1.62e42fee00000p-1, LN2_LO = 0x1.a39ef35793c76p-33;
    u = u < 800.0 ? u : 800.0;
    double kd = u * LOG2E + SHIFT; /* k = round(u / ln2) in the low bits */
    uint64_t kbits;
    memcpy(&kbits, &kd, sizeof kbits);
    const uint64_t k = kbits - UINT64_C(0x4338000000000000);
    kd -= SHIFT;
    const double q = -((u - kd * LN2_HI) - kd * LN2_LO);
    double p = 1.0 / 6227020800.0; /* 1/13! */
    p = p * q + 1.0 / 479001600.0;
    p = p * q + 1.0 / 39916800.0;
    p = p * q + 1.0 / 3628800.0;
    p = p * q + 1.0 / 362880.0;
    p = p * q + 1.0 / 40320.0;
    p = p * q + 1.0 / 5040.0;
    p = p * q + 1.0 / 720.0;
    p = p * q + 1.0 / 120.0;
    p = p * q + 1.0 / 24.0;
    p = p * q + 1.0 / 6.0;
    p = p * q + 0.5;
    p = p * q + 1.0;
    p = p * q + 1.0;
    const uint64_t k1 = k >> 1, k2 = k - k1; /* k <= 1155: both halves normal */
    const uint64_t b1 = (UINT64_C(1023) - k1) << 52, b2 = (UINT64_C(1023) - k2) << 52;
    double s1, s2;
    memcpy(&s1, &b1, sizeof s1);
    memcpy(&s2, &b2, sizeof s2);
    return p * s1 * s2;
}

/* Whether s is well formed (kind known, pieces consistent). */
static inline int stefast_surrogate_ok_(const stefast_surrogate *s)
{
    if (s == NULL) return 0;
    switch (s->kind) {
    case STEFAST_SURROGATE_WINDOW:
    case STEFAST_SURROGATE_LOGISTIC:
    case STEFAST_SURROGATE_SWISH:
        return 1;
    case STEFAST_SURROGATE_PIECEWISE:
        return s->pieces >= 1 && s->degree >= 0 && s->degree <= 8 && s->breakpoints != NULL &&
               s->coefficients != NULL;
    default:
        return 0;
    }
}

/* mu[k] = mu'(x[k]) for k < len <= STEFAST_SURROGATE_BLOCK; s well formed.
 * The expressions are those of stefast/surrogates.py, operation by operation. */
STEFAST_INLINE void stefast_surrogate_block_(const stefast_surrogate *s,
                                             const double *restrict x,
                                             double *restrict mu, int64_t len)
{
    switch (s->kind) {
    case STEFAST_SURROGATE_WINDOW: {
        const double lo = s->p[0], hi = s->p[1], height = s->p[3];
        const int ends = (int)s->p[2];
        const int lo_closed = ends & 1, hi_closed = (ends >> 1) & 1;
        const int whole = lo == -__builtin_inf() && hi == __builtin_inf();
        for (int64_t k = 0; k < len; k++) {
            const double xk = x[k];
            const int above = (xk > lo) | (lo_closed & (xk == lo));
            const int below = (xk < hi) | (hi_closed & (xk == hi));
            mu[k] = (whole | (above & below)) ? height : 0.0;
        }
        break;
    }
    case STEFAST_SURROGATE_PIECEWISE: {
        const int64_t deg = s->degree;
        /* Horner at +-inf clamped to the largest finite value: the rows'
         * zero padding then adds 0, not 0 * inf = NaN, to an unbounded
         * piece's limit */
        double p[STEFAST_SURROGATE_BLOCK], xh[STEFAST_SURROGATE_BLOCK];
        for (int64_t k = 0; k < len; k++) {
            mu[k] = 0.0;
            xh[k] = x[k] > 0x1.fffffffffffffp+1023 ? 0x1.fffffffffffffp+1023
                  : x[k] < -0x1.fffffffffffffp+1023 ? -0x1.fffffffffffffp+1023 : x[k];
        }
        for (int64_t i = 0; i < s->pieces; i++) {
            const double *c = s->coefficients + i * (deg + 1);
            const double b0 = s->breakpoints[i], b1 = s->breakpoints[i + 1];
            for (int64_t k = 0; k < len; k++) p[k] = c[deg];
            for (int64_t d = deg - 1; d >= 0; d--)
                for (int64_t k = 0; k < len; k++) p[k] = p[k] * xh[k] + c[d];
            for (int64_t k = 0; k < len; k++)
                mu[k] = ((x[k] >= b0) & (x[k] < b1)) ? p[k] : mu[k];
        }
        break;
    }
    case STEFAST_SURROGATE_LOGISTIC: {
        const double rate = s->p[0], height = s->p[1], offset = s->p[2];
        for (int64_t k = 0; k < len; k++) {
            const double t = stefast_exp_neg_(rate * __builtin_fabs(x[k]));
            const double value = height * (t / ((1.0 + t) * (1.0 + t))) + offset;
            mu[k] = x[k] == x[k] ? value : 0.0;
        }
        break;
    }
    default: { /* STEFAST_SURROGATE_SWISH */
        const double beta = s->p[0], scale = s->p[1];
        for (int64_t k = 0; k < len; k++) {
            const double y = beta * __builtin_fabs(x[k]);
            const double t = stefast_exp_neg_(y);
            const double value = scale * beta * (2.0 - y * ((1.0 - t) / (1.0 + t))) *
                                 (2.0 * t / ((1.0 + t) * (1.0 + t)));
            /* NaN x gives t = 0 here (stefast_exp_neg_ clamps NaN to 800) */
            mu[k] = t != 0.0 ? value : 0.0;
        }
        break;
    }
    }
}

#endif /* STEFAST_SURROGATE_H */
