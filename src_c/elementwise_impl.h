/*
 * elementwise_impl.h -- type-generic body of elementwise.c; included once
 * with T = double, SUF = _d and once with T = float, SUF = _f.
 */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SUF)

STEFAST_DISPATCH
static int FN(binarize_)(const T *x, T *out, int64_t len)
{
    if (len < 0) return STEFAST_EINVAL;
    for (int64_t k = 0; k < len; k++) out[k] = x[k] > 0 ? (T)1 : (T)0;
    return STEFAST_OK;
}

STEFAST_DISPATCH
static int FN(sign_)(const T *x, T *out, int64_t len)
{
    if (len < 0) return STEFAST_EINVAL;
    /* NaN fails both comparisons and is passed through */
    for (int64_t k = 0; k < len; k++)
        out[k] = x[k] >= 0 ? (T)1 : (x[k] < 0 ? (T)-1 : x[k]);
    return STEFAST_OK;
}

STEFAST_DISPATCH
static int FN(ste_grad_)(const T *x, const T *grad, T *out, int64_t len, stefast_ste ste)
{
    if (len < 0) return STEFAST_EINVAL;
    switch (ste) {
    case STEFAST_STE_IDENTITY:
        for (int64_t k = 0; k < len; k++) out[k] = grad[k];
        break;
    case STEFAST_STE_RELU:
        for (int64_t k = 0; k < len; k++) out[k] = x[k] > 0 ? grad[k] : (T)0;
        break;
    case STEFAST_STE_CLIPPED_RELU:
        for (int64_t k = 0; k < len; k++)
            out[k] = (x[k] > 0 && x[k] < 1) ? grad[k] : (T)0;
        break;
    case STEFAST_STE_HARDTANH:
        for (int64_t k = 0; k < len; k++)
            out[k] = (x[k] >= -1 && x[k] <= 1) ? grad[k] : (T)0;
        break;
    default:
        return STEFAST_EINVAL;
    }
    return STEFAST_OK;
}

/* the public names (dispatched functions are static: internal.h) */
stefast_status FN(stefast_binarize)(const T *x, T *out, int64_t len)
{
    return FN(binarize_)(x, out, len);
}

stefast_status FN(stefast_sign)(const T *x, T *out, int64_t len)
{
    return FN(sign_)(x, out, len);
}

stefast_status FN(stefast_ste_grad)(const T *x, const T *grad, T *out, int64_t len,
                                    stefast_ste ste)
{
    return FN(ste_grad_)(x, grad, out, len, ste);
}

#undef FN
#undef CAT
#undef CAT_
