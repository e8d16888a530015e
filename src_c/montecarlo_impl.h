/*
 * montecarlo_impl.h -- type-generic body of montecarlo.c; included once with
 * T = double, SUF = _d, NORMAL_CHUNK_FN = stefast_normal_chunk_d_,
 * NORMAL_CHUNK = STEFAST_NORMAL_CHUNK_D and once with the float names.
 */
#define CAT_(a, b) a##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SUF)

#include "sample_impl.h"

typedef struct {
    const T *v, *w, *vs, *ws; /* model (w, ws: full method only) */
    const T *Q, *alpha, *beta; /* basis (k, n) and coordinates (k) */
    int64_t k, m, n, p;        /* p: statistics per sample */
    stefast_ste ste;
    stefast_mc_method method;
    const uint64_t *key; /* 2 words */
    const stefast_surrogate *sur; /* NULL: the window ste; else this surrogate */
} FN(mc_args_);

/* Normals 0 .. count-1 of stream s into out, which holds count rounded up
 * to a whole chunk (the extra values are generated and ignored). */
STEFAST_INLINE void FN(normals_)(const uint64_t *key, uint64_t s, T *restrict out,
                                 int64_t count)
{
    stefast_stream_ g;
    stefast_stream_init_(&g, key, s);
    for (int64_t c = 0; c * NORMAL_CHUNK < count; c++) NORMAL_CHUNK_FN(&g, out + c * NORMAL_CHUNK);
}

/* a_i = mu'(zw_i) v_i r for every row, with the surrogate chosen outside
 * the loop (the loop body is then branch-free). */
STEFAST_INLINE void FN(window_times_)(const T *restrict zw, const T *restrict v, T r,
                                      int64_t m, stefast_ste ste, T *restrict act)
{
    switch (ste) {
    case STEFAST_STE_IDENTITY:
        for (int64_t i = 0; i < m; i++) act[i] = v[i] * r;
        break;
    case STEFAST_STE_RELU:
        for (int64_t i = 0; i < m; i++) act[i] = zw[i] > 0 ? v[i] * r : (T)0;
        break;
    case STEFAST_STE_CLIPPED_RELU:
        for (int64_t i = 0; i < m; i++) act[i] = zw[i] > 0 && zw[i] < 1 ? v[i] * r : (T)0;
        break;
    default: /* STEFAST_STE_HARDTANH */
        for (int64_t i = 0; i < m; i++) act[i] = zw[i] >= -1 && zw[i] <= 1 ? v[i] * r : (T)0;
        break;
    }
}

/* One sample of the projected / conditional methods (docs/math.rst,
 * section "Monte Carlo samplers").
 * G: IN normals (m k [+ n]), row i of S = G[i k .. i k + k); zw, zws, act
 * (m each) scratch; x: OUT the p statistics. Sums over i run in index order
 * (no reassociation), so every dispatch clone rounds alike. */
STEFAST_INLINE void FN(projected_sample_)(const FN(mc_args_) *A, const T *restrict G,
                                          T *restrict zw, T *restrict zws,
                                          T *restrict act, T *restrict x)
{
    const int64_t m = A->m, n = A->n, k = A->k;
    const T *restrict v = A->v, *restrict vs = A->vs;
    const T a0 = k > 0 ? A->alpha[0] : 0, a1 = k > 1 ? A->alpha[1] : 0;
    const T b0 = k > 0 ? A->beta[0] : 0, b1 = k > 1 ? A->beta[1] : 0;
    /* Zw = S alpha, Zw* = S beta (elementwise, vectorised) */
    if (k == 2) {
        for (int64_t i = 0; i < m; i++) {
            zw[i] = G[2 * i] * a0 + G[2 * i + 1] * a1;
            zws[i] = G[2 * i] * b0 + G[2 * i + 1] * b1;
        }
    } else if (k == 1) {
        for (int64_t i = 0; i < m; i++) {
            zw[i] = G[i] * a0;
            zws[i] = G[i] * b0;
        }
    } else {
        for (int64_t i = 0; i < m; i++) zw[i] = zws[i] = 0;
    }
    T y = 0, y_star = 0;
    for (int64_t i = 0; i < m; i++) {
        y += zw[i] > 0 ? v[i] : (T)0;
        y_star += zws[i] > 0 ? vs[i] : (T)0;
    }
    const T r = y - y_star;
    x[0] = (T)0.5 * r * r;
    for (int64_t i = 0; i < m; i++) x[1 + i] = zw[i] > 0 ? r : (T)0;
    if (A->sur != NULL) {
        /* zws is spent: it takes mu'(zw) */
        FN(surrogate_rows_)(A->sur, zw, zws, m);
        for (int64_t i = 0; i < m; i++) act[i] = zws[i] != 0 ? zws[i] * v[i] * r : (T)0;
    } else {
        FN(window_times_)(zw, v, r, m, A->ste, act);
    }
    /* c = S^T a, the coordinates of E[g | S] in the basis Q, and |a|^2 */
    T c0 = 0, c1 = 0, na2 = 0;
    if (k == 2) {
        for (int64_t i = 0; i < m; i++) {
            c0 += G[2 * i] * act[i];
            c1 += G[2 * i + 1] * act[i];
        }
    } else if (k == 1) {
        for (int64_t i = 0; i < m; i++) c0 += G[i] * act[i];
    }
    if (A->method == STEFAST_MC_CONDITIONAL) {
        if (k > 0) x[1 + m] = c0;
        if (k > 1) {
            x[1 + m + 1] = c1;
            x[1 + m + 2] = c0 + c1;
        }
        return;
    }
    for (int64_t i = 0; i < m; i++) na2 += act[i] * act[i];
    /* projected: g = Q^T (c - |a| Q xi) + |a| xi, xi ~ N(0, I_n) */
    const T *restrict xi = G + m * k;
    const T na = (T)sqrt((double)na2);
    const T coef0 = k > 0 ? c0 - na * FN(dot_)(A->Q, xi, n, 0) : 0;
    const T coef1 = k > 1 ? c1 - na * FN(dot_)(A->Q + n, xi, n, 0) : 0;
    T *restrict g = x + 1 + m;
    const T *restrict q0 = A->Q, *restrict q1 = A->Q + n;
    if (k == 2)
        for (int64_t j = 0; j < n; j++) g[j] = na * xi[j] + coef0 * q0[j] + coef1 * q1[j];
    else if (k == 1)
        for (int64_t j = 0; j < n; j++) g[j] = na * xi[j] + coef0 * q0[j];
    else
        for (int64_t j = 0; j < n; j++) g[j] = na * xi[j];
}

/*
 * Samples [s0, s1): statistics per block as (shift, sum of x - shift,
 * sum of (x - shift)^2), shift = the block's first sample, in double.
 * Shifting by a sample keeps the sums of squares free of cancellation.
 */
STEFAST_DISPATCH
static void FN(mc_block_)(const FN(mc_args_) *A, int64_t s0, int64_t s1,
                          T *restrict G, T *restrict zw, T *restrict zws,
                          T *restrict act, int64_t *restrict idx, T *restrict x,
                          double *restrict shift, double *restrict sum1,
                          double *restrict sum2)
{
    const int64_t m = A->m, n = A->n, k = A->k, p = A->p;
    const int64_t count = A->method == STEFAST_MC_FULL ? m * n
                        : A->method == STEFAST_MC_PROJECTED ? m * k + n : m * k;
    /* G is in cache: no prefetching, and rows read unaligned */
    const FN(model_) M = {A->v, A->vs, A->w, A->ws, m, n, A->ste, NULL, NULL, NULL, 0, NULL,
                          A->sur};
    for (int64_t c = 0; c < p; c++) sum1[c] = sum2[c] = 0;
    for (int64_t s = s0; s < s1; s++) {
        FN(normals_)(A->key, (uint64_t)s, G, count);
        if (A->method == STEFAST_MC_FULL)
            FN(sample_)(&M, G, SAMPLE_FIRST | SAMPLE_LAST, idx, zw, x, x + 1, x + 1 + m);
        else
            FN(projected_sample_)(A, G, zw, zws, act, x);
        if (s == s0) {
            for (int64_t c = 0; c < p; c++) shift[c] = (double)x[c];
        } else {
            for (int64_t c = 0; c < p; c++) {
                const double d = (double)x[c] - shift[c];
                sum1[c] += d;
                sum2[c] += d * d;
            }
        }
    }
}

/* stefast_mc_accumulate with the window ste (sur NULL) or the surrogate sur */
static int FN(mc_accumulate_)(const T *v, const T *w, const T *v_star, const T *w_star,
                              const T *Q, const T *alpha, const T *beta, int64_t k,
                              int64_t m, int64_t n, stefast_ste ste, const stefast_surrogate *sur,
                              stefast_mc_method method, const uint64_t key[2],
                              int64_t first_sample, int64_t n_samples, int64_t block,
                              int64_t *count, double *mean, double *m2, int threads)
{
    const int64_t p = stefast_mc_width(method, m, n, k);
    if (p < 0 || first_sample < 0 || n_samples < 0 || block < 1 || threads < 1 ||
        *count < 0)
        return STEFAST_EINVAL;
    if (sur != NULL ? !stefast_surrogate_ok_(sur)
                    : (ste < STEFAST_STE_IDENTITY || ste > STEFAST_STE_HARDTANH))
        return STEFAST_EINVAL;
    if (n_samples == 0) return STEFAST_OK;
    const FN(mc_args_) A = {v, w, v_star, w_star, Q, alpha, beta, k, m, n, p, ste, method, key,
                            sur};
    const int64_t nblocks = (n_samples + block - 1) / block;
    const int64_t per_sample = method == STEFAST_MC_FULL ? m * n
                             : method == STEFAST_MC_PROJECTED ? m * k + n : m * k;
    const int64_t glen = (per_sample + NORMAL_CHUNK - 1) / NORMAL_CHUNK * NORMAL_CHUNK;
    double *partial = malloc((size_t)nblocks * (size_t)(3 * p) * sizeof(double));
    unsigned char *finished = calloc((size_t)nblocks, 1); /* blocks not skipped */
    if (partial == NULL || finished == NULL) {
        free(partial);
        free(finished);
        return STEFAST_ENOMEM;
    }
    int status = STEFAST_OK;
#pragma omp parallel num_threads(threads)
    {
        T *G = malloc((size_t)(glen > 0 ? glen : NORMAL_CHUNK) * sizeof(T));
        T *scratch = malloc((size_t)(3 * m + p) * sizeof(T));
        int64_t *idx = malloc((size_t)m * sizeof(int64_t));
        if (G == NULL || scratch == NULL || idx == NULL) {
#pragma omp atomic write
            status = STEFAST_ENOMEM;
        }
        /* every thread must reach the worksharing loop, even without memory */
#pragma omp for schedule(dynamic, 1)
        for (int64_t b = 0; b < nblocks; b++) {
            const int64_t s0 = first_sample + b * block;
            const int64_t s1 = b == nblocks - 1 ? first_sample + n_samples : s0 + block;
            double *part = partial + b * 3 * p;
            /* an interrupt skips the blocks not yet started (an OpenMP loop
             * cannot be left early) */
            if (G != NULL && scratch != NULL && idx != NULL && !stefast_interrupt_requested()) {
                FN(mc_block_)(&A, s0, s1, G, scratch, scratch + m, scratch + 2 * m, idx,
                              scratch + 3 * m, part, part + p, part + 2 * p);
                finished[b] = 1;
            }
        }
        free(G);
        free(scratch);
        free(idx);
    }
    if (status != STEFAST_OK) {
        free(partial);
        free(finished);
        return status;
    }
    /* fold the blocks into the accumulator in block order (Chan et al.), up
     * to the first one an interrupt skipped */
    for (int64_t b = 0; b < nblocks; b++) {
        if (!finished[b]) {
            status = STEFAST_EINTR;
            break;
        }
        const int64_t s0 = b * block;
        const int64_t nb = b == nblocks - 1 ? n_samples - s0 : block;
        const double *shift = partial + b * 3 * p, *sum1 = shift + p, *sum2 = shift + 2 * p;
        const int64_t na = *count, ntot = na + nb;
        const double fb = (double)nb / (double)ntot;
        const double cross = (double)na * (double)nb / (double)ntot;
        for (int64_t c = 0; c < p; c++) {
            const double mb = shift[c] + sum1[c] / (double)nb;
            double m2b = sum2[c] - sum1[c] * (sum1[c] / (double)nb);
            if (!(m2b >= 0)) m2b = m2b < 0 ? 0 : m2b; /* rounding below 0; NaN stays */
            if (na == 0) {
                mean[c] = mb;
                m2[c] = m2b;
            } else {
                const double delta = mb - mean[c];
                mean[c] += delta * fb;
                m2[c] += m2b + delta * delta * cross;
            }
        }
        *count = ntot;
    }
    free(partial);
    free(finished);
    return status;
}

stefast_status FN(stefast_mc_accumulate)(const T *v, const T *w, const T *v_star, const T *w_star,
                              const T *Q, const T *alpha, const T *beta, int64_t k,
                              int64_t m, int64_t n, stefast_ste ste,
                              stefast_mc_method method, const uint64_t key[2],
                              int64_t first_sample, int64_t n_samples, int64_t block,
                              int64_t *count, double *mean, double *m2, int threads)
{
    return FN(mc_accumulate_)(v, w, v_star, w_star, Q, alpha, beta, k, m, n, ste, NULL, method,
                              key, first_sample, n_samples, block, count, mean, m2, threads);
}

stefast_status FN(stefast_mc_accumulate_surrogate)(const T *v, const T *w, const T *v_star,
                                        const T *w_star, const T *Q, const T *alpha,
                                        const T *beta, int64_t k, int64_t m, int64_t n,
                                        const stefast_surrogate *s, stefast_mc_method method,
                                        const uint64_t key[2], int64_t first_sample,
                                        int64_t n_samples, int64_t block, int64_t *count,
                                        double *mean, double *m2, int threads)
{
    if (s == NULL) return STEFAST_EINVAL;
    return FN(mc_accumulate_)(v, w, v_star, w_star, Q, alpha, beta, k, m, n,
                              STEFAST_STE_IDENTITY, s, method, key, first_sample, n_samples,
                              block, count, mean, m2, threads);
}

#undef FN
#undef CAT
#undef CAT_
