/*
 * surrogate.c -- the STE backward mask for a registry surrogate,
 * elementwise: grad * mu'(x) where mu'(x) != 0, exactly 0 elsewhere.
 * mu' in double by blocks (surrogate.h); the select, not a product, makes a
 * blocked gradient exactly 0 even when grad is inf or NaN.
 */
#include "stefast.h"
#include "internal.h"
#include "surrogate.h"

#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)

/* dispatched clones static behind a plain public function, as in every file
 * (clang names an external clone set's resolver name.ifunc, internal.h) */
#define STE_GRAD_SURROGATE(T, SUF)                                                        \
    STEFAST_DISPATCH                                                                      \
    static int CAT(ste_grad_surrogate_, SUF)(const T *x, const T *grad, T *out,           \
                                             int64_t len, const stefast_surrogate *s)     \
    {                                                                                     \
        if (len < 0 || !stefast_surrogate_ok_(s)) return STEFAST_EINVAL;                 \
        double xb[STEFAST_SURROGATE_BLOCK], mb[STEFAST_SURROGATE_BLOCK];                  \
        for (int64_t k0 = 0; k0 < len; k0 += STEFAST_SURROGATE_BLOCK) {                   \
            const int64_t b = len - k0 < STEFAST_SURROGATE_BLOCK ? len - k0               \
                                                                 : STEFAST_SURROGATE_BLOCK; \
            for (int64_t k = 0; k < b; k++) xb[k] = (double)x[k0 + k];                    \
            stefast_surrogate_block_(s, xb, mb, b);                                       \
            for (int64_t k = 0; k < b; k++) {                                             \
                const T mu = (T)mb[k];                                                    \
                out[k0 + k] = mu != 0 ? grad[k0 + k] * mu : (T)0;                         \
            }                                                                             \
        }                                                                                 \
        return STEFAST_OK;                                                                \
    }

STE_GRAD_SURROGATE(double, _d)
STE_GRAD_SURROGATE(float, _f)

stefast_status stefast_ste_grad_surrogate_d(const double *x, const double *grad, double *out, int64_t len,
                                 const stefast_surrogate *s)
{
    return ste_grad_surrogate__d(x, grad, out, len, s);
}

stefast_status stefast_ste_grad_surrogate_f(const float *x, const float *grad, float *out, int64_t len,
                                 const stefast_surrogate *s)
{
    return ste_grad_surrogate__f(x, grad, out, len, s);
}
