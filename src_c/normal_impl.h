/*
 * normal_impl.h -- private: the Threefry2x64-20 counter-based generator and a
 * vectorisable Box-Muller transform (included by rng.c and montecarlo.c).
 *
 * Design. A standard normal is a pure function of (key, stream, index):
 *
 *   Threefry2x64-20 (Salmon et al., SC'11; Random123, add-rotate-xor only, so
 *   it vectorises on any SIMD unit) maps a counter (j, s) and a 128-bit key
 *   (k0, k1) to two 64-bit words; j is the group index within stream s.
 *   (Philox4x32-10 was tried first: GCC emulates its 32x32->64 multiplies
 *   with three vpmuludq each, and it ran at a third of this speed.)
 *
 *   float64: one group gives two normals from two 52-bit uniforms (the top
 *     bits of each word): u1 = 1 - k1 2^-52 in [2^-52, 1], t = k2 2^-52 in
 *     [0, 1); R = sqrt(-2 log u1), (R cos 2 pi t, R sin 2 pi t).
 *     Largest |z| = sqrt(104 log 2) = 8.49.
 *   float32: one group gives four normals, two Box-Muller pairs: u from 31
 *     bits of each word's high half (round_f32(k) 2^-31 + 2^-32, in (0, 1]),
 *     the angle from its low 32 bits. Largest |z| = sqrt(64 log 2) = 6.66.
 *
 *   Normals come in chunks of 16 groups ("lanes"). In chunk c of a stream,
 *   lane l (group j = 16c + l) writes, in float64, normals 32c + l (cos)
 *   and 32c + 16 + l (sin); in float32 normals 64c + l, 64c + 16 + l,
 *   64c + 32 + l, 64c + 48 + l. The layout lets every dispatch clone store
 *   whole vectors; it does not depend on the ISA.
 *
 * log, sin/cos and sqrt are polynomials / Newton steps written here (no libm
 * call; GCC vectorises __builtin_sqrt only under -fno-math-errno, which the
 * build does not set). Only +, -, *, / and bit operations are used, all
 * correctly rounded, and -ffp-contract=off forbids FMA contraction, so every
 * clone (baseline, AVX2, AVX-512) returns bitwise identical normals.
 *   log(u), u in [2^-52, 1]: u = 2^e m, m in [sqrt(1/2), sqrt 2),
 *     log m = 2 atanh(s), s = (m-1)/(m+1), |s| <= 0.1716, series to s^23:
 *     truncation < 2e-18 relative.
 *   sin, cos of a = 2 pi r, |r| <= 1/8 turn (the quadrant is taken from the
 *     integer bits, so the reduction is exact): Taylor to a^15 / a^16,
 *     truncation < 5e-17.
 *   sqrt: see stefast_sqrt_d_.
 *   Measured: the float64 normals agree with NumPy's log/cos/sin/sqrt applied
 *   to the same words within 4 eps R (R = sqrt(z1^2 + z2^2) of the pair), on
 *   128000 values; tests/test_rng.py checks rtol 1e-13. float32 uses the same forms
 *   with fewer terms (log to s^9, sin to a^9, cos to a^10; truncation < 2e-9).
 */
#ifndef STEFAST_NORMAL_IMPL_H
#define STEFAST_NORMAL_IMPL_H

#include <stdint.h>
#include <string.h>

#include "internal.h"

#define STEFAST_RNG_LANES 16
#define STEFAST_NORMAL_CHUNK_D 32 /* normals per chunk, float64 */
#define STEFAST_NORMAL_CHUNK_F 64 /* normals per chunk, float32 */

#define STEFAST_ROTL64(x, r) (((x) << (r)) | ((x) >> (64 - (r))))
#define STEFAST_TF_ROUND(x0, x1, r)                                            \
    do {                                                                       \
        (x0) += (x1);                                                          \
        (x1) = STEFAST_ROTL64((x1), (r));                                      \
        (x1) ^= (x0);                                                          \
    } while (0)
/* key injection number s after every 4 rounds (ks0..ks2: extended key) */
#define STEFAST_TF_INJECT(x0, x1, ka, kb, s)                                   \
    do {                                                                       \
        (x0) += (ka);                                                          \
        (x1) += (kb) + (uint64_t)(s);                                          \
    } while (0)
#define STEFAST_TF_PARITY 0x1BD11BDAA9FC1A22ull

/* Threefry2x64-20 of counter (x0, x1) under key (k0, k1), in place
 * (Random123's rotation constants 16 42 12 31 16 32 24 21). */
#define STEFAST_THREEFRY2X64_20(x0, x1, k0, k1)                                \
    do {                                                                       \
        const uint64_t ks0_ = (k0), ks1_ = (k1);                               \
        const uint64_t ks2_ = STEFAST_TF_PARITY ^ ks0_ ^ ks1_;                 \
        (x0) += ks0_;                                                          \
        (x1) += ks1_;                                                          \
        STEFAST_TF_ROUND(x0, x1, 16); STEFAST_TF_ROUND(x0, x1, 42);            \
        STEFAST_TF_ROUND(x0, x1, 12); STEFAST_TF_ROUND(x0, x1, 31);            \
        STEFAST_TF_INJECT(x0, x1, ks1_, ks2_, 1);                              \
        STEFAST_TF_ROUND(x0, x1, 16); STEFAST_TF_ROUND(x0, x1, 32);            \
        STEFAST_TF_ROUND(x0, x1, 24); STEFAST_TF_ROUND(x0, x1, 21);            \
        STEFAST_TF_INJECT(x0, x1, ks2_, ks0_, 2);                              \
        STEFAST_TF_ROUND(x0, x1, 16); STEFAST_TF_ROUND(x0, x1, 42);            \
        STEFAST_TF_ROUND(x0, x1, 12); STEFAST_TF_ROUND(x0, x1, 31);            \
        STEFAST_TF_INJECT(x0, x1, ks0_, ks1_, 3);                              \
        STEFAST_TF_ROUND(x0, x1, 16); STEFAST_TF_ROUND(x0, x1, 32);            \
        STEFAST_TF_ROUND(x0, x1, 24); STEFAST_TF_ROUND(x0, x1, 21);            \
        STEFAST_TF_INJECT(x0, x1, ks1_, ks2_, 4);                              \
        STEFAST_TF_ROUND(x0, x1, 16); STEFAST_TF_ROUND(x0, x1, 42);            \
        STEFAST_TF_ROUND(x0, x1, 12); STEFAST_TF_ROUND(x0, x1, 31);            \
        STEFAST_TF_INJECT(x0, x1, ks2_, ks0_, 5);                              \
    } while (0)

/* The two words of groups j0 .. j0+15 of stream s under key k:
 * counter (j, s), x0, x1 OUT (16 each). */
STEFAST_INLINE void stefast_rng_lanes_(const uint64_t *key, uint64_t s, uint64_t j0,
                                       uint64_t *restrict x0, uint64_t *restrict x1)
{
    const uint64_t k0 = key[0], k1 = key[1];
    /* lanes are independent: the loop body is vectorised across l */
    for (int l = 0; l < STEFAST_RNG_LANES; l++) {
        uint64_t a = j0 + (uint64_t)l, b = s;
        STEFAST_THREEFRY2X64_20(a, b, k0, k1);
        x0[l] = a;
        x1[l] = b;
    }
}

STEFAST_INLINE double stefast_bits_d_(uint64_t u)
{
    double x;
    memcpy(&x, &u, sizeof x);
    return x;
}

STEFAST_INLINE uint64_t stefast_dbits_(double x)
{
    uint64_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

STEFAST_INLINE float stefast_bits_f_(uint32_t u)
{
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

STEFAST_INLINE uint32_t stefast_fbits_(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/*
 * sqrt(x) for x >= 0 from +, -, * only. GCC vectorises __builtin_sqrt only
 * under -fno-math-errno (not set by the build), so: a bit-level guess of
 * 1/sqrt(x) (relative error < 3.5%), three Newton steps (error < 4e-11),
 * then s = x y and one Newton correction of s, which squares the error
 * (< 1e-20 before rounding). x = 0 gives 0.
 */
STEFAST_INLINE double stefast_sqrt_d_(double x)
{
    double y = stefast_bits_d_(0x5FE6EB50C7B537A9ull - (stefast_dbits_(x) >> 1));
    const double hx = 0.5 * x;
    y = y * (1.5 - hx * y * y);
    y = y * (1.5 - hx * y * y);
    y = y * (1.5 - hx * y * y);
    const double s = x * y;
    return s + (0.5 * y) * (x - s * s);
}

/* The float version: two Newton steps (error < 5e-6), s = x y, one correction. */
STEFAST_INLINE float stefast_sqrt_f_(float x)
{
    float y = stefast_bits_f_(0x5F375A86u - (stefast_fbits_(x) >> 1));
    const float hx = 0.5f * x;
    y = y * (1.5f - hx * y * y);
    y = y * (1.5f - hx * y * y);
    const float s = x * y;
    return s + (0.5f * y) * (x - s * s);
}

/* -2 log(u) for a normal double u in (0, 1]. */
STEFAST_INLINE double stefast_m2log_d_(double u)
{
    const uint64_t bits = stefast_dbits_(u);
    const uint64_t frac = bits & 0x000FFFFFFFFFFFFFull;
    /* mantissa above sqrt(2): halve it (exponent 1022) and bump e */
    const uint64_t big = frac > 0x6A09E667F3BCDull;
    const double m = stefast_bits_d_(frac | ((1023ull - big) << 52));
    /* e + 1024 as a double without an int64 -> double conversion */
    const uint64_t ebias = (bits >> 52) + 1ull + big; /* (e + 1023) + 1 + big = e' + 1024 */
    const double e = stefast_bits_d_(0x4330000000000000ull | ebias) - (4503599627370496.0 + 1024.0);
    const double f = m - 1.0;
    const double s = f / (2.0 + f);
    const double s2 = s * s;
    double p = 1.0 / 23;
    p = p * s2 + 1.0 / 21;
    p = p * s2 + 1.0 / 19;
    p = p * s2 + 1.0 / 17;
    p = p * s2 + 1.0 / 15;
    p = p * s2 + 1.0 / 13;
    p = p * s2 + 1.0 / 11;
    p = p * s2 + 1.0 / 9;
    p = p * s2 + 1.0 / 7;
    p = p * s2 + 1.0 / 5;
    p = p * s2 + 1.0 / 3;
    const double logm = 2.0 * s + 2.0 * s * (s2 * p); /* 2 atanh(s) */
    const double ln2_hi = 6.93147180369123816490e-01, ln2_lo = 1.90821492927058770002e-10;
    return -2.0 * (e * ln2_hi + (e * ln2_lo + logm));
}

/* cos and sin of 2 pi t, t = k 2^-52 for a 52-bit integer k. */
typedef struct { double c, s; } stefast_cs_d_;
STEFAST_INLINE stefast_cs_d_ stefast_cossin_turn_d_(uint64_t k)
{
    /* nearest quarter turn q and the signed remainder in [-2^49, 2^49) */
    const uint64_t t = (k + (1ull << 49)) & 0x000FFFFFFFFFFFFFull;
    const uint64_t q = ((k + (1ull << 49)) >> 50) & 3u;
    const uint64_t rem = (t & ((1ull << 50) - 1)) + (1ull << 51) - (1ull << 49);
    /* rem - 2^51 + 2^49 ... as exact double: (rem) - 2^51 in [-2^49, 2^49) */
    const double r = (stefast_bits_d_(0x4330000000000000ull | rem) - (4503599627370496.0 + 2251799813685248.0))
                     * 2.220446049250313080847e-16; /* 2^-52 turns */
    const double a = r * 6.28318530717958647693;
    const double a2 = a * a;
    double ps = -1.0 / 1307674368000.0;
    ps = ps * a2 + 1.0 / 6227020800.0;
    ps = ps * a2 - 1.0 / 39916800.0;
    ps = ps * a2 + 1.0 / 362880.0;
    ps = ps * a2 - 1.0 / 5040.0;
    ps = ps * a2 + 1.0 / 120.0;
    ps = ps * a2 - 1.0 / 6.0;
    const double sn = a + a * (a2 * ps);
    double pc = 1.0 / 20922789888000.0;
    pc = pc * a2 - 1.0 / 87178291200.0;
    pc = pc * a2 + 1.0 / 479001600.0;
    pc = pc * a2 - 1.0 / 3628800.0;
    pc = pc * a2 + 1.0 / 40320.0;
    pc = pc * a2 - 1.0 / 720.0;
    pc = pc * a2 + 1.0 / 24.0;
    pc = pc * a2 - 0.5;
    const double cs = 1.0 + a2 * pc;
    /* rotate by q quarter turns: (c, s) -> (-s, c) per quarter */
    const uint64_t swap = q & 1u;
    const uint64_t negc = (q ^ (q >> 1)) & 1u, negs = (q >> 1) & 1u;
    const double x = swap ? sn : cs, y = swap ? cs : sn;
    stefast_cs_d_ r2 = {stefast_bits_d_(stefast_dbits_(x) ^ (negc << 63)),
                        stefast_bits_d_(stefast_dbits_(y) ^ (negs << 63))};
    return r2;
}

/* Normals 32c .. 32c+31 of stream s: out OUT (32 doubles). */
STEFAST_INLINE void stefast_normal_chunk_d_(const uint64_t *key, uint64_t s, uint64_t c,
                                            double *restrict out)
{
    uint64_t x0[STEFAST_RNG_LANES], x1[STEFAST_RNG_LANES];
    stefast_rng_lanes_(key, s, c * STEFAST_RNG_LANES, x0, x1);
    for (int l = 0; l < STEFAST_RNG_LANES; l++) {
        const uint64_t k1 = x0[l] >> 12, k2 = x1[l] >> 12; /* top 52 bits */
        /* 1 - k1 2^-52, exactly: [1, 2) minus 1 gives k1 2^-52 */
        const double u1 = 2.0 - stefast_bits_d_(0x3FF0000000000000ull | k1);
        const double R = stefast_sqrt_d_(__builtin_fabs(stefast_m2log_d_(u1)));
        const stefast_cs_d_ cs = stefast_cossin_turn_d_(k2);
        out[l] = R * cs.c;
        out[STEFAST_RNG_LANES + l] = R * cs.s;
    }
}

/* -2 log(u) for a normal float u in (0, 1]. */
STEFAST_INLINE float stefast_m2log_f_(float u)
{
    const uint32_t bits = stefast_fbits_(u);
    const uint32_t frac = bits & 0x007FFFFFu;
    const uint32_t big = frac > 0x3504F3u;
    const float m = stefast_bits_f_(frac | ((127u - big) << 23));
    const int32_t ei = (int32_t)(bits >> 23) - 127 + (int32_t)big;
    const float e = (float)ei;
    const float f = m - 1.0f;
    const float s = f / (2.0f + f);
    const float s2 = s * s;
    float p = 1.0f / 9;
    p = p * s2 + 1.0f / 7;
    p = p * s2 + 1.0f / 5;
    p = p * s2 + 1.0f / 3;
    const float logm = 2.0f * s + 2.0f * s * (s2 * p);
    const float ln2_hi = 6.9313812256e-01f, ln2_lo = 9.0580006145e-06f;
    return -2.0f * (e * ln2_hi + (e * ln2_lo + logm));
}

/* cos and sin of 2 pi k 2^-32 for a 32-bit k. */
typedef struct { float c, s; } stefast_cs_f_;
STEFAST_INLINE stefast_cs_f_ stefast_cossin_turn_f_(uint32_t k)
{
    const uint32_t t = k + (1u << 29);
    const uint32_t q = t >> 30;
    const int32_t rem = (int32_t)(t & ((1u << 30) - 1)) - (int32_t)(1u << 29);
    const float a = (float)rem * (6.28318530717958647693f / 4294967296.0f);
    const float a2 = a * a;
    float ps = 1.0f / 362880.0f;
    ps = ps * a2 - 1.0f / 5040.0f;
    ps = ps * a2 + 1.0f / 120.0f;
    ps = ps * a2 - 1.0f / 6.0f;
    const float sn = a + a * (a2 * ps);
    float pc = -1.0f / 3628800.0f;
    pc = pc * a2 + 1.0f / 40320.0f;
    pc = pc * a2 - 1.0f / 720.0f;
    pc = pc * a2 + 1.0f / 24.0f;
    pc = pc * a2 - 0.5f;
    const float cs = 1.0f + a2 * pc;
    const uint32_t swap = q & 1u;
    const uint32_t negc = (q ^ (q >> 1)) & 1u, negs = (q >> 1) & 1u;
    const float x = swap ? sn : cs, y = swap ? cs : sn;
    stefast_cs_f_ r2 = {stefast_bits_f_(stefast_fbits_(x) ^ (negc << 31)),
                        stefast_bits_f_(stefast_fbits_(y) ^ (negs << 31))};
    return r2;
}

/* Normals 64c .. 64c+63 of stream s: out OUT (64 floats). */
STEFAST_INLINE void stefast_normal_chunk_f_(const uint64_t *key, uint64_t s, uint64_t c,
                                            float *restrict out)
{
    uint64_t x0[STEFAST_RNG_LANES], x1[STEFAST_RNG_LANES];
    stefast_rng_lanes_(key, s, c * STEFAST_RNG_LANES, x0, x1);
    const int L = STEFAST_RNG_LANES;
    for (int l = 0; l < STEFAST_RNG_LANES; l++) {
        /* u in (0, 1]: 31 bits (of the high halves), rounded to float, plus 2^-32 */
        const float ua = (float)(int32_t)(uint32_t)(x0[l] >> 33) * 4.656612873077392578125e-10f + 2.3283064365386962890625e-10f;
        const float ub = (float)(int32_t)(uint32_t)(x1[l] >> 33) * 4.656612873077392578125e-10f + 2.3283064365386962890625e-10f;
        const float Ra = stefast_sqrt_f_(__builtin_fabsf(stefast_m2log_f_(ua)));
        const float Rb = stefast_sqrt_f_(__builtin_fabsf(stefast_m2log_f_(ub)));
        const stefast_cs_f_ a = stefast_cossin_turn_f_((uint32_t)x0[l]);
        const stefast_cs_f_ b = stefast_cossin_turn_f_((uint32_t)x1[l]);
        out[l] = Ra * a.c;
        out[L + l] = Ra * a.s;
        out[2 * L + l] = Rb * b.c;
        out[3 * L + l] = Rb * b.s;
    }
}

#endif /* STEFAST_NORMAL_IMPL_H */
