/*
 * sample_impl.h -- type-generic per-sample building blocks of the binarized
 * model (fixed-lane dot products, the STE window, one fused sample).
 * Included by model_impl.h and by any kernel file that needs one sample's
 * loss and gradients (with T and FN(name) defined by the includer). All
 * functions are static inline, so each includer's dispatch clones get
 * their own vectorised copy.
 */
/*
 * Dot products keep 2 x VLEN partial sums in two GCC/Clang vectors of 64
 * bytes (VLEN = 8 doubles or 16 floats): partial sum k of acc[h] collects
 * the elements j = 2*VLEN*t + h*VLEN + k. The compiler maps each vector onto
 * one AVX-512, two AVX2 or four SSE2 registers, lane by lane, so every
 * dispatch clone adds in the same order and rounds the same way. The partial
 * sums are then added in a fixed pairwise tree.
 */
#define VLEN ((int64_t)(64 / sizeof(T)))
typedef T FN(vec_) __attribute__((vector_size(64)));
typedef T FN(half_) __attribute__((vector_size(32)));
typedef T FN(quarter_) __attribute__((vector_size(16)));

STEFAST_INLINE FN(vec_) FN(load_)(const T *p)
{
    FN(vec_) x;
    memcpy(&x, p, sizeof x); /* unaligned load */
    return x;
}

/* The last partial block (count < VLEN values), zero-padded. */
STEFAST_INLINE FN(vec_) FN(load_tail_)(const T *p, int64_t count)
{
    FN(vec_) x = {0};
    for (int64_t k = 0; k < count; k++) x[k] = p[k];
    return x;
}

STEFAST_INLINE T FN(lane_sum_)(FN(vec_) a, FN(vec_) b)
{
    FN(vec_) s = a + b;
    FN(half_) h[2];
    memcpy(h, &s, sizeof h);
    h[0] += h[1];
    FN(quarter_) q[2];
    memcpy(q, &h[0], sizeof q);
    q[0] += q[1];
    T t[16 / sizeof(T)];
    memcpy(t, &q[0], sizeof t);
    for (int64_t width = (int64_t)(16 / sizeof(T)) / 2; width > 0; width /= 2)
        for (int64_t k = 0; k < width; k++) t[k] += t[k + width];
    return t[0];
}


/* z.w over n values. */
STEFAST_INLINE T FN(dot_)(const T *restrict z, const T *restrict w, int64_t n)
{
    FN(vec_) a0 = {0}, a1 = {0};
    int64_t j = 0;
    for (; j + 2 * VLEN <= n; j += 2 * VLEN) {
        a0 += FN(load_)(z + j) * FN(load_)(w + j);
        a1 += FN(load_)(z + j + VLEN) * FN(load_)(w + j + VLEN);
    }
    if (j + VLEN <= n) {
        a0 += FN(load_)(z + j) * FN(load_)(w + j);
        j += VLEN;
    }
    if (j < n) a1 += FN(load_tail_)(z + j, n - j) * FN(load_tail_)(w + j, n - j);
    return FN(lane_sum_)(a0, a1);
}

/* z.w and z.ws in one pass over z, with the same summation order as dot_. */
STEFAST_INLINE void FN(dot2_)(const T *restrict z, const T *restrict w,
                              const T *restrict ws, int64_t n, T *d, T *ds)
{
    FN(vec_) a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};
    int64_t j = 0;
    for (; j + 2 * VLEN <= n; j += 2 * VLEN) {
        const FN(vec_) z0 = FN(load_)(z + j), z1 = FN(load_)(z + j + VLEN);
        a0 += z0 * FN(load_)(w + j);
        a1 += z1 * FN(load_)(w + j + VLEN);
        b0 += z0 * FN(load_)(ws + j);
        b1 += z1 * FN(load_)(ws + j + VLEN);
    }
    if (j + VLEN <= n) {
        const FN(vec_) z0 = FN(load_)(z + j);
        a0 += z0 * FN(load_)(w + j);
        b0 += z0 * FN(load_)(ws + j);
        j += VLEN;
    }
    if (j < n) {
        const FN(vec_) zt = FN(load_tail_)(z + j, n - j);
        a1 += zt * FN(load_tail_)(w + j, n - j);
        b1 += zt * FN(load_tail_)(ws + j, n - j);
    }
    *d = FN(lane_sum_)(a0, a1);
    *ds = FN(lane_sum_)(b0, b1);
}

STEFAST_INLINE int FN(in_window_)(T x, stefast_ste ste)
{
    switch (ste) {
    case STEFAST_STE_IDENTITY: return 1;
    case STEFAST_STE_RELU: return x > 0;
    case STEFAST_STE_CLIPPED_RELU: return x > 0 && x < 1;
    default: return x >= -1 && x <= 1; /* STEFAST_STE_HARDTANH */
    }
}

/*
 * One sample: Z (m, n) IN; idx (m) scratch; zw (m) scratch; loss (1),
 * grad_v (m), grad_w (n) OUT in T.
 *
 * Rows outside the surrogate's window are skipped in Z^T a (they add exactly
 * nothing, even when non-finite), so the second pass visits only the active
 * rows, listed without branches first. The conditional sums are selects, not
 * branches: the signs of z.w are random and would defeat branch prediction.
 */
STEFAST_INLINE void FN(sample_)(const T *restrict Z, const T *restrict v,
                                const T *restrict w, const T *restrict vs,
                                const T *restrict ws, int64_t m, int64_t n,
                                stefast_ste ste, int64_t *restrict idx,
                                T *restrict zw, T *restrict loss,
                                T *restrict grad_v, T *restrict grad_w)
{
    T y = 0, y_star = 0;
    for (int64_t i = 0; i < m; i++) {
        T d, ds;
        FN(dot2_)(Z + i * n, w, ws, n, &d, &ds);
        zw[i] = d;
        y += d > 0 ? v[i] : (T)0;
        y_star += ds > 0 ? vs[i] : (T)0;
    }
    const T r = y - y_star;
    *loss = (T)0.5 * r * r;
    int64_t active = 0;
    for (int64_t i = 0; i < m; i++) {
        grad_v[i] = zw[i] > 0 ? r : (T)0;
        idx[active] = i;
        active += FN(in_window_)(zw[i], ste);
    }
    for (int64_t j = 0; j < n; j++) grad_w[j] = 0;
    for (int64_t k = 0; k < active; k++) {
        const int64_t i = idx[k];
        const T a = v[i] * r;
        const T *restrict z = Z + i * n;
        for (int64_t j = 0; j < n; j++) grad_w[j] += a * z[j];
    }
}
