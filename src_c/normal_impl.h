/*
 * normal_impl.h -- private: stefast's standard normal generator (included by
 * rng.c and montecarlo.c).
 *
 * Design. The normals of a stream are a pure function of (key, stream s):
 *
 *   Seeding. Stream s runs 16 xoshiro256++ generators ("lanes", Blackman &
 *   Vigna 2018) and one scalar side generator of the same kind. Their 256-bit
 *   states are outputs of the counter-based Threefry2x64-20 (Salmon et al.,
 *   SC'11; Random123's known-answer vectors pass) at counters (j, s):
 *   lane l takes j = 2l, 2l+1, the side generator j = 32, 33. So a stream
 *   costs 34 Threefry blocks to start, and each 64-bit word after that one
 *   xoshiro step (about 11 integer operations, against about 40 per word
 *   for Threefry itself; docs/performance.rst, section "The Gaussian generator").
 *   Streams are tied to samples, not threads, so any thread count gives the
 *   same values. (An all-zero lane state, probability 2^-256, would output
 *   zeros.)
 *
 *   Words come 32 at a time, two steps of every lane: lane l's first word
 *   at position l, its second at 16 + l.
 *
 *   float64: Marsaglia & Tsang's ziggurat, 256 layers (ziggurat_tables.h),
 *     one value per word: layer i = bits 0-7, sign = bit 8, magnitude
 *     k = bits 12-63 (52 bits); x = k w[i], accepted at once when k < k[i]
 *     (98.8 % of words). The fast path is branch-free (two table gathers, a
 *     multiply and a compare), so it vectorises across a chunk of 32 words
 *     (two words per lane: normals 32c + l and 32c + 16 + l of chunk c). A
 *     rejected value goes to the slow path, one at a time in index order:
 *     the wedge test or Marsaglia's tail algorithm, with fresh words from
 *     the side generator, retrying from a fresh word on rejection. The slow
 *     path is one non-inlined function compiled once (not per dispatch
 *     clone) and calls libm's exp and log only to decide acceptance. The
 *     fast path is far cheaper than Box-Muller's log/sqrt/sin/cos
 *     polynomials (docs/performance.rst, section "The Gaussian generator").
 *   float32: Box-Muller, four normals per lane and chunk of 64 from the two
 *     words of the lane: u from 31 bits of each word's high half
 *     (round_f32(k) 2^-31 + 2^-32, in (0, 1]), the angle from its low 32
 *     bits; normals 64c + l, 64c + 16 + l (first word), 64c + 32 + l,
 *     64c + 48 + l (second word). Largest |z| = sqrt(64 log 2) = 6.66. (A
 *     float ziggurat is slower: its gathers and slow path cost per value
 *     about what they cost in float64.) log and sin/cos
 *     are polynomials written here (no libm call, so they vectorise), sqrt
 *     is the IEEE instruction: log(u) = e log 2 + 2 atanh(s) with
 *     s = (m-1)/(m+1), series to s^9; sin, cos of a = 2 pi r, |r| <= 1/8
 *     turn (quadrant from the integer bits, exact), Taylor to a^9 / a^10;
 *     truncation < 2e-9.
 *
 * Only +, -, *, /, sqrt and bit operations are used in the fast paths, all
 * correctly rounded, and -ffp-contract=off forbids FMA contraction, so every
 * clone (baseline, AVX2, AVX-512) returns bitwise identical normals.
 */
#ifndef STEFAST_NORMAL_IMPL_H
#define STEFAST_NORMAL_IMPL_H

#include <stdint.h>
#include <math.h>
#include <string.h>

#include "internal.h"
#include "ziggurat_tables.h"

#define STEFAST_RNG_LANES 16
#define STEFAST_NORMAL_CHUNK_D 32 /* normals per chunk, float64 */
#define STEFAST_NORMAL_CHUNK_F 64 /* normals per chunk, float32 */

/* the index of a uint64_t's low 32 bits when it is read as two uint32_t */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
#define STEFAST_LOW_HALF 1
#else
#define STEFAST_LOW_HALF 0
#endif

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

/* one xoshiro256++ step of the state (s0, s1, s2, s3): returns the output */
#define STEFAST_XOSHIRO_NEXT(s0, s1, s2, s3, out)                              \
    do {                                                                       \
        (out) = STEFAST_ROTL64((s0) + (s3), 23) + (s0);                        \
        const uint64_t t_ = (s1) << 17;                                        \
        (s2) ^= (s0);                                                          \
        (s3) ^= (s1);                                                          \
        (s1) ^= (s2);                                                          \
        (s0) ^= (s3);                                                          \
        (s2) ^= t_;                                                            \
        (s3) = STEFAST_ROTL64((s3), 45);                                       \
    } while (0)

/* The generator of one stream: 16 lane states and the side state. */
typedef struct {
    uint64_t s0[STEFAST_RNG_LANES], s1[STEFAST_RNG_LANES];
    uint64_t s2[STEFAST_RNG_LANES], s3[STEFAST_RNG_LANES];
    uint64_t side[4];
} stefast_stream_;

STEFAST_INLINE void stefast_stream_init_(stefast_stream_ *g, const uint64_t *key, uint64_t s)
{
    const uint64_t k0 = key[0], k1 = key[1];
    for (int l = 0; l < STEFAST_RNG_LANES; l++) {
        uint64_t a = 2 * (uint64_t)l, b = s, c = 2 * (uint64_t)l + 1, d = s;
        STEFAST_THREEFRY2X64_20(a, b, k0, k1);
        STEFAST_THREEFRY2X64_20(c, d, k0, k1);
        g->s0[l] = a;
        g->s1[l] = b;
        g->s2[l] = c;
        g->s3[l] = d;
    }
    uint64_t a = 2 * STEFAST_RNG_LANES, b = s, c = 2 * STEFAST_RNG_LANES + 1, d = s;
    STEFAST_THREEFRY2X64_20(a, b, k0, k1);
    STEFAST_THREEFRY2X64_20(c, d, k0, k1);
    g->side[0] = a;
    g->side[1] = b;
    g->side[2] = c;
    g->side[3] = d;
}

/* The next two words of every lane: first OUT (16 words, lane l's at l),
 * then second OUT (16). Two steps per pass keep the state traffic (it
 * lives in memory between passes) at half a load and store per word. */
STEFAST_INLINE void stefast_stream_words_(stefast_stream_ *restrict g, uint64_t *restrict first,
                                          uint64_t *restrict second)
{
    /* lanes are independent: the loop body is vectorised across l */
    for (int l = 0; l < STEFAST_RNG_LANES; l++) {
        uint64_t s0 = g->s0[l], s1 = g->s1[l], s2 = g->s2[l], s3 = g->s3[l];
        STEFAST_XOSHIRO_NEXT(s0, s1, s2, s3, first[l]);
        STEFAST_XOSHIRO_NEXT(s0, s1, s2, s3, second[l]);
        g->s0[l] = s0;
        g->s1[l] = s1;
        g->s2[l] = s2;
        g->s3[l] = s3;
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

/* sqrt for the Box-Muller radius. IEEE square roots are correctly rounded
 * on every SIMD unit, so the clones agree; the build's -fno-math-errno lets
 * GCC vectorise it (with errno semantics it branches per value); it beat a
 * Newton iteration (docs/performance.rst, section "The Gaussian generator"). */
STEFAST_INLINE float stefast_sqrt_f_(float x)
{
    return __builtin_sqrtf(x);
}

/* A uniform double in (0, 1) from the side generator (52 bits). */
static double stefast_side_uniform_(uint64_t st[4])
{
    uint64_t w;
    STEFAST_XOSHIRO_NEXT(st[0], st[1], st[2], st[3], w);
    return ((double)(w >> 12) + 0.5) * 0x1p-52;
}

/* The ziggurat's slow path for a word u whose fast test failed (see the top
 * of this file); st: the stream's side state, IN/OUT. */
__attribute__((noinline, cold, unused))
static double stefast_ziggurat_slow_d_(uint64_t st[4], uint64_t u)
{
    for (;;) {
        const int i = (int)(u & 255);
        const int negative = (int)((u >> 8) & 1);
        const int64_t k = (int64_t)(u >> 12);
        double x = (double)k * stefast_zig_w_d[i];
        if (k < stefast_zig_k_d[i]) return negative ? -x : x;
        if (i == 0) { /* the base layer's tail beyond R (Marsaglia 1964) */
            double t, y;
            do {
                t = -log(stefast_side_uniform_(st)) / STEFAST_ZIG_R;
                y = -log(stefast_side_uniform_(st));
            } while (y + y < t * t);
            x = STEFAST_ZIG_R + t;
            return negative ? -x : x;
        }
        /* the wedge between layer i's rectangle and the curve */
        const double f_lo = stefast_zig_f_d[i], f_hi = stefast_zig_f_d[i - 1];
        if (f_lo + stefast_side_uniform_(st) * (f_hi - f_lo) < exp(-0.5 * x * x))
            return negative ? -x : x;
        STEFAST_XOSHIRO_NEXT(st[0], st[1], st[2], st[3], u);
    }
}

/* The next 32 normals of the stream (chunk layout at the top): out OUT. */
STEFAST_INLINE void stefast_normal_chunk_d_(stefast_stream_ *restrict g, double *restrict out)
{
    const int L = STEFAST_RNG_LANES;
    uint64_t x[2 * STEFAST_RNG_LANES], slow[2 * STEFAST_RNG_LANES];
    stefast_stream_words_(g, x, x + L);
    for (int l = 0; l < 2 * L; l++) {
        const uint64_t u = x[l];
        const int64_t i = (int64_t)(u & 255), k = (int64_t)(u >> 12);
        /* k as a double without an int64 -> double conversion (exact) */
        const double mag = stefast_bits_d_(0x4330000000000000ull | (u >> 12)) - 0x1p52;
        const double z = mag * stefast_zig_w_d[i];
        out[l] = stefast_bits_d_(stefast_dbits_(z) | ((u << 55) & 0x8000000000000000ull));
        slow[l] = (uint64_t)(k >= stefast_zig_k_d[i]);
    }
    /* flags first, bit mask only when needed: building the mask inside the
     * loop above kept it from vectorising */
    uint64_t any = 0;
    for (int l = 0; l < 2 * L; l++) any |= slow[l];
    if (!any) return; /* two chunks in three */
    uint64_t mask = 0;
    for (int l = 0; l < 2 * L; l++) mask |= slow[l] << l;
    while (mask) { /* in index order: the side words are used in that order */
        const int l = __builtin_ctzll(mask);
        mask &= mask - 1;
        out[l] = stefast_ziggurat_slow_d_(g->side, x[l]);
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

/* Box-Muller for lane l of a chunk: four normals from two words given as
 * their high 31 bits (ha, hb: the radii) and low 32 bits (la, lb: the angles) */
STEFAST_INLINE void stefast_box_muller_f_(uint32_t ha, uint32_t hb, uint32_t la, uint32_t lb,
                                          float *restrict out, int l)
{
    const int L = STEFAST_RNG_LANES;
    /* u in (0, 1]: 31 bits, rounded to float, plus 2^-32 */
    const float ua = (float)(int32_t)ha * 4.656612873077392578125e-10f + 2.3283064365386962890625e-10f;
    const float ub = (float)(int32_t)hb * 4.656612873077392578125e-10f + 2.3283064365386962890625e-10f;
    const float Ra = stefast_sqrt_f_(__builtin_fabsf(stefast_m2log_f_(ua)));
    const float Rb = stefast_sqrt_f_(__builtin_fabsf(stefast_m2log_f_(ub)));
    const stefast_cs_f_ a = stefast_cossin_turn_f_(la);
    const stefast_cs_f_ b = stefast_cossin_turn_f_(lb);
    out[l] = Ra * a.c;
    out[L + l] = Ra * a.s;
    out[2 * L + l] = Rb * b.c;
    out[3 * L + l] = Rb * b.s;
}

/* The next 64 normals of the stream (chunk layout at the top): out OUT. */
STEFAST_INLINE void stefast_normal_chunk_f_(stefast_stream_ *restrict g, float *restrict out)
{
    uint64_t x0[STEFAST_RNG_LANES], x1[STEFAST_RNG_LANES];
    stefast_stream_words_(g, x0, x1);
    /* the words read as 32-bit halves, so the transform loop has 32-bit
     * lanes only: Clang vectorises a loop that mixes 64-bit and 32-bit lanes
     * at the 64-bit width, half of GCC's, and a separate splitting loop
     * stores half vectors that the next loop loads whole, which defeats
     * store forwarding (docs/performance.rst, section "GCC and Clang"). */
    uint32_t w0[2 * STEFAST_RNG_LANES], w1[2 * STEFAST_RNG_LANES];
    memcpy(w0, x0, sizeof w0);
    memcpy(w1, x1, sizeof w1);
    const int lo = STEFAST_LOW_HALF, hi = 1 - STEFAST_LOW_HALF;
    for (int l = 0; l < STEFAST_RNG_LANES; l++)
        stefast_box_muller_f_(w0[2 * l + hi] >> 1, w1[2 * l + hi] >> 1, w0[2 * l + lo],
                              w1[2 * l + lo], out, l);
}

#endif /* STEFAST_NORMAL_IMPL_H */
