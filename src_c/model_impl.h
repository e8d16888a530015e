/*
 * model_impl.h -- type-generic body of model.c, included once per dtype
 * (T, TI) and way of holding a cache line (LINE_WIDE, sample_impl.h), with
 * SUF naming the combination.
 */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SUF)

#include "sample_impl.h"

/*
 * How far ahead of its reads the first pass prefetches Z. The hardware
 * prefetcher alone leaves the kernel waiting on memory, so Z is prefetched
 * far ahead; a Z small enough to be in cache, as one just written usually
 * is, is prefetched nearer, since there the far prefetches cost more than
 * they save. IN_CACHE_BYTES sits below the cache size measured, to leave
 * room for CPUs with smaller caches; forward follows the same rule. The
 * measurements: docs/performance.rst, section "Software prefetch distance".
 */
#define PREFETCH_BYTES 14336
#define PREFETCH_BYTES_IN_CACHE 8192
#define IN_CACHE_BYTES ((int64_t)8 << 20)

/* the prefetch distance for a Z of `bytes` bytes */
STEFAST_INLINE int64_t FN(prefetch_bytes_for_)(int64_t bytes)
{
    return bytes <= IN_CACHE_BYTES ? PREFETCH_BYTES_IN_CACHE : PREFETCH_BYTES;
}

/*
 * How the rows of Z are read (sample_impl.h): with aligned loads when every
 * row starts at the same place within a cache line (a row a whole number of
 * lines long, Z aligned to its values) and is at least 3 lines long, else
 * unaligned (on 2-line rows the masked first and last lines cost more than
 * they save: docs/performance.rst, section "Aligned loads wherever Z starts").
 * Returns L, filled in, or NULL.
 */
static const FN(lines_) *FN(lines_for_)(FN(lines_) *L, const T *Z, int64_t n)
{
    if ((n * (int64_t)sizeof(T)) % 64 != 0 || n < LANES + WLEN || (uintptr_t)Z % sizeof(T) != 0)
        return NULL;
    FN(lines_init_)(L, (int64_t)((uintptr_t)Z % 64 / sizeof(T)), n);
    return L;
}

/*
 * Samples of at least this many bytes, with rows too long to keep w in
 * registers, compute Z^T a in the same pass over Z as z.w
 * (sample_onepass_); the others, which stay in L1, in a second pass over
 * the rows inside the window: one pass pays from about this size on, and
 * not on short rows (docs/performance.rst, section "One pass for long rows").
 */
#define ONEPASS_MIN_BYTES 32768

/*
 * A thread's workspace, one block of its own: copies of w and w_star, the
 * two buffers of sample_onepass_ and its copy of an edge row, then the
 * per-sample scratch (work_init_ returns the pointer to free). The copies
 * and the buffers start where Z's rows start within a line, with zeros
 * around them, as dot2_lines_ requires (when L is NULL, on a line); the
 * scratch holds z.w and z.ws (zw, 2 m), grad_v, grad_w (with WLEN values
 * of padding on either side, SAMPLE_PADDED_GW) and the row list.
 * The copies also put every array the inner loops touch into one small
 * block, which steadies the timings (docs/performance.rst, section
 * "One workspace block per thread").
 */
typedef struct {
    FN(model_) model;
    int64_t B;
    T *zw, *gv, *gw;
    int64_t *idx;
} FN(work_);

static void *FN(work_init_)(FN(work_) *k, const T *v, const T *w, const T *vs,
                            const T *ws, int64_t m, int64_t n, stefast_ste ste,
                            const stefast_surrogate *sur, const FN(lines_) *L, const T *Z,
                            int64_t B)
{
    /* per array: WLEN zeros and the shift within a line, n values, at least
     * LANES zeros; a whole number of lines */
    const int64_t shift = L != NULL ? (int64_t)((uintptr_t)Z % 64 / sizeof(T)) : 0;
    const int64_t region = (WLEN + n + LANES + WLEN + WLEN - 1) / WLEN * WLEN;
    const size_t reals = (size_t)(5 * region + 2 * m + m + WLEN + n + WLEN);
    const size_t bytes = reals * sizeof(T) + (size_t)m * sizeof(int64_t);
    void *block = calloc(bytes + 64 + 8, 1);
    if (block == NULL) return NULL;
    T *p = (T *)(((uintptr_t)block + 63) / 64 * 64);
    T *w_copy = p + WLEN + shift, *ws_copy = w_copy + region, *u = ws_copy + region;
    T *u_next = u + region, *edge_row = u_next + region;
    memcpy(w_copy, w, (size_t)n * sizeof(T));
    memcpy(ws_copy, ws, (size_t)n * sizeof(T));
    /* one pass adds each row with coefficient v_i before mu'(z.w) is known:
     * windows only */
    const int onepass = sur == NULL && L != NULL && L->lines > SMALL_LINES &&
                        m * n * (int64_t)sizeof(T) >= ONEPASS_MIN_BYTES;
    k->zw = p + 5 * region; k->gv = k->zw + 2 * m; k->gw = k->gv + m + WLEN;
    k->idx = (int64_t *)(((uintptr_t)(k->gw + n + WLEN) + 7) / 8 * 8);
    k->model = (FN(model_)){v, vs, w_copy, ws_copy, m, n, ste, L, onepass ? u : NULL,
                            onepass ? u_next : NULL,
                            FN(prefetch_bytes_for_)(B * m * n * (int64_t)sizeof(T)),
                            onepass ? edge_row : NULL, sur};
    k->B = B;
    return block;
}

/* sample_'s edge flags for sample b of B (SAMPLE_FIRST, SAMPLE_LAST) */
STEFAST_INLINE int FN(edge_)(int64_t b, int64_t B)
{
    return (b == 0 ? SAMPLE_FIRST : 0) | (b == B - 1 ? SAMPLE_LAST : 0);
}

/* Samples [b0, b1) of the batch, written per sample. */
STEFAST_DISPATCH
static void FN(chunk_per_sample_)(const T *Z, const FN(work_) *k, int64_t b0, int64_t b1,
                                  T *loss, T *grad_v, T *grad_w)
{
    /* locals, not k->...: the stores through idx and the outputs could
     * alias *k as far as the compiler knows, which then re-read it per row
     * (docs/performance.rst, section "Selects, not branches") */
    const FN(model_) M = k->model;
    const int64_t m = M.m, n = M.n, B = k->B;
    T *restrict zw = k->zw;
    int64_t *restrict idx = k->idx;
    for (int64_t b = b0; b < b1; b++)
        FN(sample_)(&M, Z + b * m * n, FN(edge_)(b, B), idx, zw, loss + b,
                    grad_v + b * m, grad_w + b * n);
}

/* Samples [b0, b1) summed into acc = [loss, grad_v (m), grad_w (n)] in double. */
STEFAST_DISPATCH
static void FN(chunk_sum_)(const T *Z, const FN(work_) *k, int64_t b0, int64_t b1,
                           double *acc)
{
    const FN(model_) M = k->model; /* locals, as in chunk_per_sample_ */
    const int64_t m = M.m, n = M.n, B = k->B;
    T *restrict gv = k->gv, *restrict gw = k->gw, *restrict zw = k->zw;
    int64_t *restrict idx = k->idx;
    T loss;
    memset(acc, 0, (size_t)(1 + m + n) * sizeof(double));
    for (int64_t b = b0; b < b1; b++) {
        FN(sample_)(&M, Z + b * m * n, FN(edge_)(b, B) | SAMPLE_PADDED_GW, idx, zw, &loss, gv,
                    gw);
        acc[0] += loss;
        for (int64_t i = 0; i < m; i++) acc[1 + i] += gv[i];
        for (int64_t j = 0; j < n; j++) acc[1 + m + j] += gw[j];
    }
}

STEFAST_DISPATCH
static void FN(chunk_forward_)(const T *Z, const T *v, const T *w, int64_t b0,
                               int64_t b1, int64_t m, int64_t n, int64_t prefetch, T *y)
{
    for (int64_t b = b0; b < b1; b++) {
        const T *Zb = Z + b * m * n;
        T s = 0;
        for (int64_t i = 0; i < m; i++) s += FN(keep_if_)(FN(dot_)(Zb + i * n, w, n, prefetch) > 0, v[i]);
        y[b] = s;
    }
}

static int FN(check_args_)(int64_t B, int64_t m, int64_t n, stefast_ste ste,
                          const stefast_surrogate *sur, int threads)
{
    if (B < 0 || m < 1 || n < 1 || threads < 1) return STEFAST_EINVAL;
    if (sur != NULL) return stefast_surrogate_ok_(sur) ? STEFAST_OK : STEFAST_EINVAL;
    if (ste < STEFAST_STE_IDENTITY || ste > STEFAST_STE_HARDTANH) return STEFAST_EINVAL;
    return STEFAST_OK;
}

static int FN(forward_)(const T *Z, const T *v, const T *w, int64_t B, int64_t m, int64_t n,
                        T *y, int threads)
{
    int status = FN(check_args_)(B, m, n, STEFAST_STE_IDENTITY, NULL, threads);
    if (status != STEFAST_OK) return status;
    const int64_t chunk = stefast_chunk_size(B);
    const int64_t nchunks = (B + chunk - 1) / chunk;
    const int64_t prefetch = FN(prefetch_bytes_for_)(B * m * n * (int64_t)sizeof(T));
    /* one thread: no parallel region, whose start and end cost more than a
     * small batch (a single sample) */
    if (threads == 1) {
        FN(chunk_forward_)(Z, v, w, 0, B, m, n, prefetch, y);
        return STEFAST_OK;
    }
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (int64_t c = 0; c < nchunks; c++) {
        const int64_t b0 = c * chunk, b1 = b0 + chunk < B ? b0 + chunk : B;
        FN(chunk_forward_)(Z, v, w, b0, b1, m, n, prefetch, y);
    }
    return STEFAST_OK;
}

static int FN(loss_and_grads_)(const T *Z, const T *v, const T *w, const T *v_star,
                               const T *w_star, int64_t B, int64_t m, int64_t n,
                               stefast_ste ste, const stefast_surrogate *sur, T *loss,
                               T *grad_v, T *grad_w, int threads)
{
    int status = FN(check_args_)(B, m, n, ste, sur, threads);
    if (status != STEFAST_OK) return status;
    const int64_t chunk = stefast_chunk_size(B);
    const int64_t nchunks = (B + chunk - 1) / chunk;
    FN(lines_) lines;
    const FN(lines_) *L = FN(lines_for_)(&lines, Z, n);
    /* one thread: no parallel region (see forward_); per-sample outputs do
     * not depend on the chunking */
    if (threads == 1) {
        FN(work_) k;
        void *block = FN(work_init_)(&k, v, w, v_star, w_star, m, n, ste, sur, L, Z, B);
        if (block == NULL) return STEFAST_ENOMEM;
        FN(chunk_per_sample_)(Z, &k, 0, B, loss, grad_v, grad_w);
        free(block);
        return STEFAST_OK;
    }
#pragma omp parallel num_threads(threads)
    {
        FN(work_) k;
        void *block = FN(work_init_)(&k, v, w, v_star, w_star, m, n, ste, sur, L, Z, B);
        if (block == NULL) {
#pragma omp atomic write
            status = STEFAST_ENOMEM;
        }
        /* every thread must reach the worksharing loop, even without memory */
#pragma omp for schedule(dynamic, 1)
        for (int64_t c = 0; c < nchunks; c++) {
            const int64_t b0 = c * chunk, b1 = b0 + chunk < B ? b0 + chunk : B;
            if (block != NULL)
                FN(chunk_per_sample_)(Z, &k, b0, b1, loss, grad_v, grad_w);
        }
        free(block);
    }
    return status;
}

static int FN(loss_and_grads_sum_)(const T *Z, const T *v, const T *w, const T *v_star,
                                   const T *w_star, int64_t B, int64_t m, int64_t n,
                                   stefast_ste ste, const stefast_surrogate *sur,
                                   double *loss_sum, double *grad_v_sum,
                                   double *grad_w_sum, int threads)
{
    int status = FN(check_args_)(B, m, n, ste, sur, threads);
    if (status != STEFAST_OK) return status;
    const int64_t chunk = stefast_chunk_size(B);
    const int64_t nchunks = (B + chunk - 1) / chunk;
    const int64_t width = 1 + m + n;
    double *partial = malloc((size_t)(nchunks > 0 ? nchunks : 1) * (size_t)width * sizeof(double));
    if (partial == NULL) return STEFAST_ENOMEM;
    FN(lines_) lines;
    const FN(lines_) *L = FN(lines_for_)(&lines, Z, n);
    if (threads == 1) { /* the same chunks, in order, without a parallel region */
        FN(work_) k;
        void *block = FN(work_init_)(&k, v, w, v_star, w_star, m, n, ste, sur, L, Z, B);
        if (block == NULL) {
            free(partial);
            return STEFAST_ENOMEM;
        }
        for (int64_t c = 0; c < nchunks; c++) {
            const int64_t b0 = c * chunk, b1 = b0 + chunk < B ? b0 + chunk : B;
            FN(chunk_sum_)(Z, &k, b0, b1, partial + c * width);
        }
        free(block);
    } else {
#pragma omp parallel num_threads(threads)
        {
            FN(work_) k;
            void *block = FN(work_init_)(&k, v, w, v_star, w_star, m, n, ste, sur, L, Z, B);
            if (block == NULL) {
#pragma omp atomic write
                status = STEFAST_ENOMEM;
            }
#pragma omp for schedule(dynamic, 1)
            for (int64_t c = 0; c < nchunks; c++) {
                const int64_t b0 = c * chunk, b1 = b0 + chunk < B ? b0 + chunk : B;
                if (block != NULL)
                    FN(chunk_sum_)(Z, &k, b0, b1, partial + c * width);
            }
            free(block);
        }
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
