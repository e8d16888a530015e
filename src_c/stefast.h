/*
 * stefast.h -- public C API of stefast.
 *
 * Plain C99, no Python or NumPy: a simulator written in C can include this
 * header and link the kernels directly (see tests/c_api_test.c).
 *
 * Conventions shared by every function:
 *   - arrays are C-contiguous; a batch of B samples Z is B*m*n values, sample
 *     b at Z + b*m*n, row i of it at Z + (b*m + i)*n;
 *   - indices and sizes are int64_t (no 2^31 limits);
 *   - `_d` functions take double, `_f` functions take float; both compute one
 *     sample in its own precision and accumulate batch sums in double;
 *   - the result never depends on `threads`: the batch is cut into chunks
 *     whose size depends only on B, each chunk is summed sequentially, and the
 *     chunk sums are combined in chunk order;
 *   - functions return a stefast_status; on error the outputs are unspecified.
 *   - sigma(x) = 1[x > 0], so sigma(0) = 0 and sigma(NaN) = 0.
 */
#ifndef STEFAST_H
#define STEFAST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    STEFAST_OK = 0,
    STEFAST_EINVAL = 1,  /* a size is negative or an enum value is unknown */
    STEFAST_ENOMEM = 2,  /* scratch memory could not be allocated */
    STEFAST_EINTR = 3    /* a long run was stopped by its interrupt flag */
} stefast_status;

/* Straight-through surrogates mu'(x); the window ends are part of the API. */
typedef enum {
    STEFAST_STE_IDENTITY = 0,      /* 1                 */
    STEFAST_STE_RELU = 1,          /* 1[x > 0]          */
    STEFAST_STE_CLIPPED_RELU = 2,  /* 1[0 < x < 1]      */
    STEFAST_STE_HARDTANH = 3       /* 1[-1 <= x <= 1]   */
} stefast_ste;

/* ---- elementwise ------------------------------------------------------ */

/* out[k] = 1[x[k] > 0].  x: IN, len values; out: OUT, len values (may alias x). */
int stefast_binarize_d(const double *x, double *out, int64_t len);
int stefast_binarize_f(const float *x, float *out, int64_t len);

/* out[k] = +1 if x[k] >= 0, -1 if x[k] < 0, NaN if x[k] is NaN. */
int stefast_sign_d(const double *x, double *out, int64_t len);
int stefast_sign_f(const float *x, float *out, int64_t len);

/* out[k] = grad[k] if mu'(x[k]) = 1 else 0 (exactly 0, even for inf/NaN grad).
 * x, grad: IN, len values; out: OUT, len values (may alias grad). */
int stefast_ste_grad_d(const double *x, const double *grad, double *out,
                       int64_t len, stefast_ste ste);
int stefast_ste_grad_f(const float *x, const float *grad, float *out,
                       int64_t len, stefast_ste ste);

/* ---- the two-layer binarized model y = v^T sigma(Z w) -------------------- */

/* y[b] = v^T sigma(Z_b w) for b < B.
 * Z: IN (B, m, n); v: IN (m); w: IN (n); y: OUT (B); threads >= 1. */
int stefast_forward_d(const double *Z, const double *v, const double *w,
                      int64_t B, int64_t m, int64_t n, double *y, int threads);
int stefast_forward_f(const float *Z, const float *v, const float *w,
                      int64_t B, int64_t m, int64_t n, float *y, int threads);

/* Per-sample loss and gradients of MATH.md section 2, with
 * r_b = v^T sigma(Z_b w) - v_star^T sigma(Z_b w_star):
 *   loss[b]          = r_b^2 / 2
 *   grad_v[b*m + i]  = sigma(z_bi . w) r_b               (exact dl/dv)
 *   grad_w[b*n + j]  = sum_i Z_bij mu'(z_bi . w) v_i r_b (coarse gradient)
 * Z: IN (B, m, n); v, v_star: IN (m); w, w_star: IN (n);
 * loss: OUT (B); grad_v: OUT (B, m); grad_w: OUT (B, n). */
int stefast_loss_and_grads_d(const double *Z, const double *v, const double *w,
                             const double *v_star, const double *w_star,
                             int64_t B, int64_t m, int64_t n, stefast_ste ste,
                             double *loss, double *grad_v, double *grad_w,
                             int threads);
int stefast_loss_and_grads_f(const float *Z, const float *v, const float *w,
                             const float *v_star, const float *w_star,
                             int64_t B, int64_t m, int64_t n, stefast_ste ste,
                             float *loss, float *grad_v, float *grad_w,
                             int threads);

/* The same quantities summed over the batch, in double whatever the input:
 * loss_sum: OUT (1); grad_v_sum: OUT (m); grad_w_sum: OUT (n).
 * B = 0 gives zeros. */
int stefast_loss_and_grads_sum_d(const double *Z, const double *v, const double *w,
                                 const double *v_star, const double *w_star,
                                 int64_t B, int64_t m, int64_t n, stefast_ste ste,
                                 double *loss_sum, double *grad_v_sum,
                                 double *grad_w_sum, int threads);
int stefast_loss_and_grads_sum_f(const float *Z, const float *v, const float *w,
                                 const float *v_star, const float *w_star,
                                 int64_t B, int64_t m, int64_t n, stefast_ste ste,
                                 double *loss_sum, double *grad_v_sum,
                                 double *grad_w_sum, int threads);

/* ---- quantized ReLU (src_c/quantize.c) --------------------------------- */

/* Levels of the b-bit quantized ReLU are alpha*k, k in {0..L}, L = 2^b - 1. */
typedef enum {
    STEFAST_ROUND_CEIL = 0,     /* k = clip(ceil(x/alpha), 0, L): the paper's form */
    STEFAST_ROUND_NEAREST = 1   /* nearest level, ties up, clipped at L alpha     */
} stefast_rounding;

/* How dq/dalpha is taken in the backward pass (u = x/alpha, k the level). */
typedef enum {
    STEFAST_ALPHA_GRAD_EXACT = 0,  /* k: exact wherever x is off a level boundary */
    STEFAST_ALPHA_GRAD_LSQ = 1     /* k - u for 0 < x < L alpha, else k          */
} stefast_alpha_grad;

/* out[i] = alpha * k(x[i]); NaN -> NaN, +inf -> L alpha, -inf -> 0.
 * x: IN, len values; out: OUT, len values (may alias x); bits in [1, 62];
 * alpha finite and > 0, otherwise STEFAST_EINVAL. */
int stefast_quantized_relu_d(const double *x, double *out, int64_t len,
                             int bits, double alpha, stefast_rounding rounding);
int stefast_quantized_relu_f(const float *x, float *out, int64_t len,
                             int bits, double alpha, stefast_rounding rounding);

/* grad_x[i] = grad[i] if mu'(x[i]) = 1 else exactly 0, with the windows
 * identity 1, relu 1[x > 0], clipped_relu 1[0 < x < L alpha] (hardtanh is
 * EINVAL here); *grad_alpha = sum_i grad[i] dq/dalpha(x[i]), in double.
 * x, grad: IN, len values; grad_x: OUT, len values (may alias grad, NULL
 * skips it); grad_alpha: OUT, one double (NULL skips it). */
int stefast_quantized_relu_grad_d(const double *x, const double *grad,
                                  double *grad_x, double *grad_alpha,
                                  int64_t len, int bits, double alpha,
                                  stefast_rounding rounding, stefast_ste ste,
                                  stefast_alpha_grad alpha_grad);
int stefast_quantized_relu_grad_f(const float *x, const float *grad,
                                  float *grad_x, double *grad_alpha,
                                  int64_t len, int bits, double alpha,
                                  stefast_rounding rounding, stefast_ste ste,
                                  stefast_alpha_grad alpha_grad);

/* ---- Gaussian sampling and Monte Carlo (src_c/rng.c, src_c/montecarlo.c) */

#ifdef __cplusplus
}
#endif

#endif /* STEFAST_H */
