/*
 * quantize.c -- b-bit quantized ReLU and its straight-through backward pass
 * (docs/math.rst, section "Quantized ReLU").
 *
 * With L = 2^bits - 1 levels above zero and resolution alpha > 0, every
 * output is alpha * k with an integer level k in {0, ..., L}:
 *
 *   ceil    (the paper's form)  k = clip(ceil(x / alpha), 0, L)
 *           i.e. 0 for x <= 0, ceil(x/alpha) alpha up to (L-1) alpha, L alpha above;
 *   nearest                     k = clip(floor(u) + [u - floor(u) >= 1/2], 0, L),
 *           u = x / alpha, so ties go to the upper level.  u - floor(u) is exact
 *           in floating point, unlike floor(u + 0.5).
 *
 * The clip is written with comparisons, not fmin/fmax, so that NaN passes
 * through: quantized_relu(NaN) = NaN, +inf -> L alpha, -inf -> 0; no output
 * is ever -0.
 *
 * Backward pass, for an upstream gradient g = dloss/dq:
 *   grad_x[k]  = g[k] * mu'(x[k]), exactly 0 outside the surrogate's window
 *                (even for inf/NaN g), windows:
 *                identity 1, relu 1[x > 0], clipped_relu 1[0 < x < L alpha];
 *   grad_alpha = sum_k g[k] * dq/dalpha(x[k]), summed in double, with
 *     exact  dq/dalpha = k(x/alpha): q = alpha k(x/alpha) and k is piecewise
 *            constant, so this is the true derivative wherever x is not on a
 *            level boundary;
 *     lsq    dq/dalpha = k - u inside 0 < x < L alpha, k outside (the LSQ /
 *            straight-through convention that also lets the rounding move).
 *   Terms whose dq/dalpha is exactly 0 contribute exactly 0; a NaN x gives a
 *   NaN grad_alpha.
 *
 * Each function is built in several CPU clones (STEFAST_DISPATCH, internal.h)
 * with branch-free loop bodies; the forward and grad_x loops vectorise, and
 * the clones round identically (the alpha-gradient is summed over a fixed
 * number of partial sums, combined in a fixed order).
 *
 * Each `_f` function computes in float (u = x / alpha in float, as NumPy does
 * for a float32 array), so the reference twin reproduces it bit for bit.
 */
#include <math.h>
#include <stddef.h>

#include "internal.h"
#include "stefast.h"

/* Shared argument check: bits in [1, 62], alpha finite and > 0, len >= 0. */
static int check_args(int64_t len, int bits, double alpha)
{
    if (len < 0 || bits < 1 || bits > 62) return STEFAST_EINVAL;
    if (!(alpha > 0.0) || !isfinite(alpha)) return STEFAST_EINVAL;
    return STEFAST_OK;
}

/* QRELU_CEIL_LEVEL / QRELU_NEAREST_LEVEL(T, u, k, ROUND): k = the clipped
 * level of u = x / alpha (NaN for NaN u); ROUND is ceil/floor for T.  Each
 * comparison is evaluated unconditionally and only values are selected, the
 * form GCC if-converts with trapping math on (no -ffast-math); ceil and floor
 * become round instructions in the SSE4.1+ clones. */
#define QRELU_CEIL_LEVEL(T, u, k, CEIL)                                     \
    {                                                                       \
        (k) = CEIL(u);                                                      \
        (k) = (k) <= (T)0 ? (T)0 : (k); /* NaN stays; -0 -> +0 */           \
        (k) = (k) > L ? L : (k);                                            \
    }
#define QRELU_NEAREST_LEVEL(T, u, k, FLOOR)                                 \
    {                                                                       \
        const T f_ = FLOOR(u);                                              \
        const int up_ = ((u) - f_) >= (T)0.5; /* exact; ties up */          \
        (k) = f_ + (up_ ? (T)1 : (T)0);                                     \
        (k) = (k) <= (T)0 ? (T)0 : (k);                                     \
        (k) = (k) > L ? L : (k);                                            \
    }

/* Body of the forward loop, instantiated for double and float so that each
 * precision keeps its own arithmetic; branch-free. */
#define QRELU_BODY(T, CEIL, FLOOR)                                          \
    const T a = (T)alpha;                                                   \
    const T L = (T)((((int64_t)1) << bits) - 1);                            \
    int64_t i;                                                              \
    if (rounding == STEFAST_ROUND_CEIL) {                                   \
        for (i = 0; i < len; i++) {                                         \
            const T u = x[i] / a;                                           \
            T k;                                                            \
            QRELU_CEIL_LEVEL(T, u, k, CEIL)                                 \
            out[i] = k * a;                                                 \
        }                                                                   \
    } else if (rounding == STEFAST_ROUND_NEAREST) {                         \
        for (i = 0; i < len; i++) {                                         \
            const T u = x[i] / a;                                           \
            T k;                                                            \
            QRELU_NEAREST_LEVEL(T, u, k, FLOOR)                             \
            out[i] = k * a;                                                 \
        }                                                                   \
    } else {                                                                \
        return STEFAST_EINVAL;                                              \
    }                                                                       \
    return STEFAST_OK;

/*
 * out[i] = quantized ReLU of x[i].
 *   x:        IN, len values
 *   out:      OUT, len values (may alias x)
 *   len:      number of values, >= 0
 *   bits:     bit width b in [1, 62]; L = 2^b - 1
 *   alpha:    resolution, finite and > 0 (rounded to float by the _f twin)
 *   rounding: STEFAST_ROUND_CEIL or STEFAST_ROUND_NEAREST
 */
STEFAST_DISPATCH
static int quantized_relu_d_(const double *x, double *out, int64_t len,
                             int bits, double alpha, stefast_rounding rounding)
{
    int st = check_args(len, bits, alpha);
    if (st != STEFAST_OK) return st;
    QRELU_BODY(double, ceil, floor)
}

STEFAST_DISPATCH
static int quantized_relu_f_(const float *x, float *out, int64_t len,
                             int bits, double alpha, stefast_rounding rounding)
{
    int st = check_args(len, bits, alpha);
    if (st != STEFAST_OK) return st;
    if (!((float)alpha > 0.0f) || !isfinite((float)alpha)) return STEFAST_EINVAL;
    QRELU_BODY(float, ceilf, floorf)
}

#undef QRELU_BODY

#define QRELU_LANES 8

/* lane[j] += grad * dq/dalpha at element i + j (inside QRELU_GRAD_BODY). */
#define QRELU_ALPHA_TERM(T, LEVEL, ROUND)                                   \
    {                                                                       \
        const T xi = x[i + j];                                              \
        const T u = xi / a;                                                 \
        const double gd_ = (double)grad[i + j];                             \
        T k, d;                                                             \
        int in_, nz_;                                                       \
        LEVEL(T, u, k, ROUND)                                               \
        in_ = (xi > (T)0) & (xi < top);                                     \
        d = (lsq & in_) ? k - u : k;                                        \
        nz_ = d != (T)0;                                                    \
        lane[j] += nz_ ? gd_ * (double)d : 0.0;                             \
    }

/* lane sums over all of x for one rounding (inside QRELU_GRAD_BODY). */
#define QRELU_ALPHA_LOOP(T, LEVEL, ROUND)                                   \
    for (i = 0; i < full; i += QRELU_LANES)                                 \
        for (j = 0; j < QRELU_LANES; j++)                                   \
            QRELU_ALPHA_TERM(T, LEVEL, ROUND)                               \
    for (j = 0; j < len - full; j++) /* tail, i == full */                  \
        QRELU_ALPHA_TERM(T, LEVEL, ROUND)

/* Body of the backward pass: first the alpha-gradient sum (in double; it
 * reads grad, which grad_x may alias, so it runs first), then the masked copy
 * of grad, one simple loop per surrogate so that each vectorises. */
#define QRELU_GRAD_BODY(T, CEIL, FLOOR)                                     \
    const T a = (T)alpha;                                                   \
    const T L = (T)((((int64_t)1) << bits) - 1);                            \
    const T top = L * a; /* right end of the clipped_relu window */         \
    const int lsq = alpha_grad == STEFAST_ALPHA_GRAD_LSQ;                   \
    const int ceiling = rounding == STEFAST_ROUND_CEIL;                     \
    int64_t i;                                                              \
    if (rounding != STEFAST_ROUND_CEIL && rounding != STEFAST_ROUND_NEAREST) \
        return STEFAST_EINVAL;                                              \
    if (ste != STEFAST_STE_IDENTITY && ste != STEFAST_STE_RELU &&           \
        ste != STEFAST_STE_CLIPPED_RELU)                                    \
        return STEFAST_EINVAL;                                              \
    if (alpha_grad != STEFAST_ALPHA_GRAD_EXACT && !lsq)                     \
        return STEFAST_EINVAL;                                              \
    if (grad_alpha != NULL) {                                               \
        /* QRELU_LANES independent partial sums combined in a fixed order:   \
         * vectorisable, and the same result in every CPU clone */          \
        double lane[QRELU_LANES] = {0.0};                                   \
        double acc = 0.0;                                                   \
        int64_t j;                                                          \
        const int64_t full = len - len % QRELU_LANES;                       \
        if (ceiling) {                                                      \
            QRELU_ALPHA_LOOP(T, QRELU_CEIL_LEVEL, CEIL)                     \
        } else {                                                            \
            QRELU_ALPHA_LOOP(T, QRELU_NEAREST_LEVEL, FLOOR)                 \
        }                                                                   \
        for (j = 0; j < QRELU_LANES; j++) acc += lane[j];                   \
        *grad_alpha = acc;                                                  \
    }                                                                       \
    if (grad_x != NULL) {                                                   \
        if (ste == STEFAST_STE_IDENTITY) {                                  \
            for (i = 0; i < len; i++) grad_x[i] = grad[i];                  \
        } else if (ste == STEFAST_STE_RELU) {                               \
            for (i = 0; i < len; i++)                                       \
                grad_x[i] = x[i] > (T)0 ? grad[i] : (T)0;                   \
        } else {                                                            \
            for (i = 0; i < len; i++)                                       \
                grad_x[i] = ((x[i] > (T)0) & (x[i] < top)) ? grad[i] : (T)0;    \
        }                                                                   \
    }                                                                       \
    return STEFAST_OK;

/*
 * Straight-through backward pass of the quantized ReLU.
 *   x:          IN, len values (the forward input)
 *   grad:       IN, len values (dloss/dq at each output)
 *   grad_x:     OUT, len values, may alias grad; NULL skips it
 *   grad_alpha: OUT, one double, sum_i grad[i] dq/dalpha(x[i]); NULL skips it
 *   len:        number of values, >= 0
 *   bits:       bit width b in [1, 62]
 *   alpha:      resolution, finite and > 0
 *   rounding:   STEFAST_ROUND_CEIL or STEFAST_ROUND_NEAREST
 *   ste:        STEFAST_STE_IDENTITY, _RELU or _CLIPPED_RELU; for this
 *               function the clipped_relu window is 0 < x < L alpha
 *               (hardtanh is rejected with STEFAST_EINVAL)
 *   alpha_grad: STEFAST_ALPHA_GRAD_EXACT or STEFAST_ALPHA_GRAD_LSQ
 */
STEFAST_DISPATCH
static int quantized_relu_grad_d_(const double *x, const double *grad,
                                  double *grad_x, double *grad_alpha,
                                  int64_t len, int bits, double alpha,
                                  stefast_rounding rounding, stefast_ste ste,
                                  stefast_alpha_grad alpha_grad)
{
    int st = check_args(len, bits, alpha);
    if (st != STEFAST_OK) return st;
    QRELU_GRAD_BODY(double, ceil, floor)
}

STEFAST_DISPATCH
static int quantized_relu_grad_f_(const float *x, const float *grad,
                                  float *grad_x, double *grad_alpha,
                                  int64_t len, int bits, double alpha,
                                  stefast_rounding rounding, stefast_ste ste,
                                  stefast_alpha_grad alpha_grad)
{
    int st = check_args(len, bits, alpha);
    if (st != STEFAST_OK) return st;
    if (!((float)alpha > 0.0f) || !isfinite((float)alpha)) return STEFAST_EINVAL;
    QRELU_GRAD_BODY(float, ceilf, floorf)
}

#undef QRELU_GRAD_BODY
#undef QRELU_LANES
#undef QRELU_ALPHA_TERM
#undef QRELU_ALPHA_LOOP
#undef QRELU_CEIL_LEVEL
#undef QRELU_NEAREST_LEVEL

/* the public names (dispatched functions are static: internal.h) */
#define QRELU_PUBLIC(T, SUF)                                                                   \
    stefast_status stefast_quantized_relu##SUF(const T *x, T *out, int64_t len, int bits,      \
                                               double alpha, stefast_rounding rounding)        \
    {                                                                                          \
        return quantized_relu##SUF##_(x, out, len, bits, alpha, rounding);                     \
    }                                                                                          \
    stefast_status stefast_quantized_relu_grad##SUF(                                           \
        const T *x, const T *grad, T *grad_x, double *grad_alpha, int64_t len, int bits,       \
        double alpha, stefast_rounding rounding, stefast_ste ste, stefast_alpha_grad alpha_grad) \
    {                                                                                          \
        return quantized_relu_grad##SUF##_(x, grad, grad_x, grad_alpha, len, bits, alpha,      \
                                           rounding, ste, alpha_grad);                         \
    }
QRELU_PUBLIC(double, _d)
QRELU_PUBLIC(float, _f)
#undef QRELU_PUBLIC
