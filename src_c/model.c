/*
 * model.c -- the binarized two-layer model y = v^T sigma(Z w): forward pass,
 * sample loss, exact dl/dv and the STE coarse gradient (docs/math.rst,
 * section "Gradients of one sample").
 *
 * Design. One fused pass per sample: each row z_i of Z is read once to form
 * both z_i.w and z_i.w_star, with aligned loads wherever Z starts (rows a
 * whole number of cache lines long) and prefetching ahead; the residual r
 * follows. g = Z^T a with a_i = mu'(z_i.w) v_i r is r * (sum of v_i z_i over
 * the rows inside the window): for samples that stay in L1 a second pass
 * over those rows, column block by column block; for larger ones with long
 * rows, in the same pass, each row added into a second buffer while it is
 * read and kept if it lies in the window (sample_impl.h). The batch is cut into
 * chunks that depend only on B (internal.h); threads take whole chunks, and
 * batch sums are kept per chunk in double and combined in chunk order, so
 * the result is the same for any thread count.
 */
#include <stdlib.h>
#include <string.h>

#include "stefast.h"
#include "internal.h"

/* each dtype twice: a cache line as one 64-byte vector (_dz, _fz) and as
 * two 32-byte halves (_dy, _fy); stefast_wide_lines() picks (internal.h) */
#define T double
#define TI int64_t /* the signed integer of T's size */
#define LINE_WIDE 1
#define SUF _dz
#include "model_impl.h"
#undef LINE_WIDE
#undef SUF
#define LINE_WIDE 0
#define SUF _dy
#include "model_impl.h"
#undef LINE_WIDE
#undef SUF
#undef T
#undef TI

#define T float
#define TI int32_t
#define LINE_WIDE 1
#define SUF _fz
#include "model_impl.h"
#undef LINE_WIDE
#undef SUF
#define LINE_WIDE 0
#define SUF _fy
#include "model_impl.h"
#undef LINE_WIDE
#undef SUF
#undef T
#undef TI

/* the variant of fn for dtype suffix dt that suits the CPU we run on */
#define PICK(fn, dt) (stefast_wide_lines() ? fn##_##dt##z : fn##_##dt##y)

stefast_status stefast_forward_d(const double *Z, const double *v, const double *w, int64_t B,
                                 int64_t m, int64_t n, double *y, int threads)
{
    return PICK(forward_, d)(Z, v, w, B, m, n, y, threads);
}

stefast_status stefast_forward_f(const float *Z, const float *v, const float *w, int64_t B,
                                 int64_t m, int64_t n, float *y, int threads)
{
    return PICK(forward_, f)(Z, v, w, B, m, n, y, threads);
}

stefast_status stefast_loss_and_grads_d(const double *Z, const double *v, const double *w,
                                        const double *v_star, const double *w_star, int64_t B,
                                        int64_t m, int64_t n, stefast_ste ste, double *loss,
                                        double *grad_v, double *grad_w, int threads)
{
    return PICK(loss_and_grads_, d)(
        Z, v, w, v_star, w_star, B, m, n, ste, NULL, loss, grad_v, grad_w, threads);
}

stefast_status stefast_loss_and_grads_f(const float *Z, const float *v, const float *w,
                                        const float *v_star, const float *w_star, int64_t B,
                                        int64_t m, int64_t n, stefast_ste ste, float *loss,
                                        float *grad_v, float *grad_w, int threads)
{
    return PICK(loss_and_grads_, f)(
        Z, v, w, v_star, w_star, B, m, n, ste, NULL, loss, grad_v, grad_w, threads);
}

stefast_status stefast_loss_and_grads_sum_d(const double *Z, const double *v, const double *w,
                                            const double *v_star, const double *w_star, int64_t B,
                                            int64_t m, int64_t n, stefast_ste ste, double *loss_sum,
                                            double *grad_v_sum, double *grad_w_sum, int threads)
{
    return PICK(loss_and_grads_sum_, d)(
        Z, v, w, v_star, w_star, B, m, n, ste, NULL, loss_sum, grad_v_sum, grad_w_sum, threads);
}

stefast_status stefast_loss_and_grads_sum_f(const float *Z, const float *v, const float *w,
                                            const float *v_star, const float *w_star, int64_t B,
                                            int64_t m, int64_t n, stefast_ste ste, double *loss_sum,
                                            double *grad_v_sum, double *grad_w_sum, int threads)
{
    return PICK(loss_and_grads_sum_, f)(
        Z, v, w, v_star, w_star, B, m, n, ste, NULL, loss_sum, grad_v_sum, grad_w_sum, threads);
}

/* The same with a registry surrogate (the window code ste is then unused). */
stefast_status stefast_loss_and_grads_surrogate_d(const double *Z, const double *v, const double *w,
                                       const double *v_star, const double *w_star, int64_t B,
                                       int64_t m, int64_t n, const stefast_surrogate *s,
                                       double *loss, double *grad_v, double *grad_w, int threads)
{
    if (s == NULL) return STEFAST_EINVAL;
    return PICK(loss_and_grads_, d)(Z, v, w, v_star, w_star, B, m, n, STEFAST_STE_IDENTITY, s,
                                    loss, grad_v, grad_w, threads);
}

stefast_status stefast_loss_and_grads_surrogate_f(const float *Z, const float *v, const float *w,
                                       const float *v_star, const float *w_star, int64_t B,
                                       int64_t m, int64_t n, const stefast_surrogate *s,
                                       float *loss, float *grad_v, float *grad_w, int threads)
{
    if (s == NULL) return STEFAST_EINVAL;
    return PICK(loss_and_grads_, f)(Z, v, w, v_star, w_star, B, m, n, STEFAST_STE_IDENTITY, s,
                                    loss, grad_v, grad_w, threads);
}

stefast_status stefast_loss_and_grads_sum_surrogate_d(const double *Z, const double *v, const double *w,
                                           const double *v_star, const double *w_star,
                                           int64_t B, int64_t m, int64_t n,
                                           const stefast_surrogate *s, double *loss_sum,
                                           double *grad_v_sum, double *grad_w_sum, int threads)
{
    if (s == NULL) return STEFAST_EINVAL;
    return PICK(loss_and_grads_sum_, d)(Z, v, w, v_star, w_star, B, m, n, STEFAST_STE_IDENTITY,
                                        s, loss_sum, grad_v_sum, grad_w_sum, threads);
}

stefast_status stefast_loss_and_grads_sum_surrogate_f(const float *Z, const float *v, const float *w,
                                           const float *v_star, const float *w_star,
                                           int64_t B, int64_t m, int64_t n,
                                           const stefast_surrogate *s, double *loss_sum,
                                           double *grad_v_sum, double *grad_w_sum, int threads)
{
    if (s == NULL) return STEFAST_EINVAL;
    return PICK(loss_and_grads_sum_, f)(Z, v, w, v_star, w_star, B, m, n, STEFAST_STE_IDENTITY,
                                        s, loss_sum, grad_v_sum, grad_w_sum, threads);
}
