/*
 * model_impl.h -- type-generic body of model.c; included once with
 * T = double, SUF = _d and once with T = float, SUF = _f.
 */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SUF)

#include "sample_impl.h"

/*
 * A thread's workspace, one 64-byte-aligned block: copies of w and w_star,
 * then the per-sample scratch (work_init_ returns the pointer to free).
 * The copies put every array the inner loops touch into one small block of
 * our own, so that where the caller's vectors lie cannot matter: with w and
 * w_star on the C stack, timings were measured to swing by up to 40 %
 * between runs (with the stack placement; the exact mechanism was not
 * pinned down), and by under 10 % with the copies.
 */
typedef struct {
    T *w, *ws, *zw, *gv, *gw;
    int64_t *idx;
} FN(work_);

static void *FN(work_init_)(FN(work_) *k, const T *w, const T *ws, int64_t m, int64_t n)
{
    const size_t reals = (size_t)(3 * n + 2 * m);
    const size_t bytes = reals * sizeof(T) + (size_t)m * sizeof(int64_t);
    void *block = malloc(bytes + 64 + 8);
    if (block == NULL) return NULL;
    T *p = (T *)(((uintptr_t)block + 63) / 64 * 64);
    k->w = p; k->ws = p + n; k->zw = p + 2 * n; k->gv = k->zw + m; k->gw = k->gv + m;
    k->idx = (int64_t *)(((uintptr_t)(k->gw + n) + 7) / 8 * 8);
    memcpy(k->w, w, (size_t)n * sizeof(T));
    memcpy(k->ws, ws, (size_t)n * sizeof(T));
    return block;
}

/* Samples [b0, b1) of the batch, written per sample. */
STEFAST_DISPATCH
static void FN(chunk_per_sample_)(const T *Z, const T *v, const T *vs, const FN(work_) *k,
                                  int64_t b0, int64_t b1, int64_t m, int64_t n,
                                  stefast_ste ste, T *loss, T *grad_v, T *grad_w)
{
    for (int64_t b = b0; b < b1; b++)
        FN(sample_)(Z + b * m * n, v, k->w, vs, k->ws, m, n, ste, k->idx, k->zw, loss + b,
                    grad_v + b * m, grad_w + b * n);
}

/* Samples [b0, b1) summed into acc = [loss, grad_v (m), grad_w (n)] in double. */
STEFAST_DISPATCH
static void FN(chunk_sum_)(const T *Z, const T *v, const T *vs, const FN(work_) *k,
                           int64_t b0, int64_t b1, int64_t m, int64_t n,
                           stefast_ste ste, double *acc)
{
    T loss;
    memset(acc, 0, (size_t)(1 + m + n) * sizeof(double));
    for (int64_t b = b0; b < b1; b++) {
        FN(sample_)(Z + b * m * n, v, k->w, vs, k->ws, m, n, ste, k->idx, k->zw, &loss,
                    k->gv, k->gw);
        acc[0] += loss;
        for (int64_t i = 0; i < m; i++) acc[1 + i] += k->gv[i];
        for (int64_t j = 0; j < n; j++) acc[1 + m + j] += k->gw[j];
    }
}

STEFAST_DISPATCH
static void FN(chunk_forward_)(const T *Z, const T *v, const T *w, int64_t b0,
                               int64_t b1, int64_t m, int64_t n, T *y)
{
    for (int64_t b = b0; b < b1; b++) {
        const T *Zb = Z + b * m * n;
        T s = 0;
        for (int64_t i = 0; i < m; i++) s += FN(keep_if_)(FN(dot_)(Zb + i * n, w, n) > 0, v[i]);
        y[b] = s;
    }
}

static int FN(check_args_)(int64_t B, int64_t m, int64_t n, stefast_ste ste, int threads)
{
    if (B < 0 || m < 1 || n < 1 || threads < 1) return STEFAST_EINVAL;
    if (ste < STEFAST_STE_IDENTITY || ste > STEFAST_STE_HARDTANH) return STEFAST_EINVAL;
    return STEFAST_OK;
}

int FN(stefast_forward)(const T *Z, const T *v, const T *w, int64_t B, int64_t m,
                        int64_t n, T *y, int threads)
{
    int status = FN(check_args_)(B, m, n, STEFAST_STE_IDENTITY, threads);
    if (status != STEFAST_OK) return status;
    const int64_t chunk = stefast_chunk_size(B);
    const int64_t nchunks = (B + chunk - 1) / chunk;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int64_t c = 0; c < nchunks; c++) {
        const int64_t b0 = c * chunk, b1 = b0 + chunk < B ? b0 + chunk : B;
        FN(chunk_forward_)(Z, v, w, b0, b1, m, n, y);
    }
    return STEFAST_OK;
}

int FN(stefast_loss_and_grads)(const T *Z, const T *v, const T *w, const T *v_star,
                               const T *w_star, int64_t B, int64_t m, int64_t n,
                               stefast_ste ste, T *loss, T *grad_v, T *grad_w,
                               int threads)
{
    int status = FN(check_args_)(B, m, n, ste, threads);
    if (status != STEFAST_OK) return status;
    const int64_t chunk = stefast_chunk_size(B);
    const int64_t nchunks = (B + chunk - 1) / chunk;
#pragma omp parallel num_threads(threads)
    {
        FN(work_) k;
        void *block = FN(work_init_)(&k, w, w_star, m, n);
        if (block == NULL) {
#pragma omp atomic write
            status = STEFAST_ENOMEM;
        }
        /* every thread must reach the worksharing loop, even without memory */
#pragma omp for schedule(dynamic, 1)
        for (int64_t c = 0; c < nchunks; c++) {
            const int64_t b0 = c * chunk, b1 = b0 + chunk < B ? b0 + chunk : B;
            if (block != NULL)
                FN(chunk_per_sample_)(Z, v, v_star, &k, b0, b1, m, n, ste, loss, grad_v,
                                      grad_w);
        }
        free(block);
    }
    return status;
}

int FN(stefast_loss_and_grads_sum)(const T *Z, const T *v, const T *w, const T *v_star,
                                   const T *w_star, int64_t B, int64_t m, int64_t n,
                                   stefast_ste ste, double *loss_sum, double *grad_v_sum,
                                   double *grad_w_sum, int threads)
{
    int status = FN(check_args_)(B, m, n, ste, threads);
    if (status != STEFAST_OK) return status;
    const int64_t chunk = stefast_chunk_size(B);
    const int64_t nchunks = (B + chunk - 1) / chunk;
    const int64_t width = 1 + m + n;
    double *partial = malloc((size_t)(nchunks > 0 ? nchunks : 1) * (size_t)width * sizeof(double));
    if (partial == NULL) return STEFAST_ENOMEM;
#pragma omp parallel num_threads(threads)
    {
        FN(work_) k;
        void *block = FN(work_init_)(&k, w, w_star, m, n);
        if (block == NULL) {
#pragma omp atomic write
            status = STEFAST_ENOMEM;
        }
#pragma omp for schedule(dynamic, 1)
        for (int64_t c = 0; c < nchunks; c++) {
            const int64_t b0 = c * chunk, b1 = b0 + chunk < B ? b0 + chunk : B;
            if (block != NULL)
                FN(chunk_sum_)(Z, v, v_star, &k, b0, b1, m, n, ste, partial + c * width);
        }
        free(block);
    }
    /* combine in chunk order: the thread count cannot change the rounding */
    *loss_sum = 0;
    for (int64_t i = 0; i < m; i++) grad_v_sum[i] = 0;
    for (int64_t j = 0; j < n; j++) grad_w_sum[j] = 0;
    for (int64_t c = 0; c < nchunks; c++) {
        const double *p = partial + c * width;
        *loss_sum += p[0];
        for (int64_t i = 0; i < m; i++) grad_v_sum[i] += p[1 + i];
        for (int64_t j = 0; j < n; j++) grad_w_sum[j] += p[1 + m + j];
    }
    free(partial);
    return status;
}

#undef FN
#undef CAT
#undef CAT_
