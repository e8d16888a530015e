/*
 * sample_impl.h -- type-generic per-sample building blocks of the binarized
 * model (fixed-lane dot products, the STE window, one fused sample).
 * Included by model_impl.h and by any kernel file that needs one sample's
 * loss and gradients (with T and FN(name) defined by the includer). All
 * functions are static inline, so each includer's dispatch clones get
 * their own vectorised copy.
 */
/*
 * Dot products keep 4 x VLEN partial sums in four GCC/Clang vectors of 32
 * bytes (VLEN = 4 doubles or 8 floats): full blocks of VLEN values go to
 * acc[0], acc[1], acc[2], acc[3] in turn, a last partial block (zero-padded)
 * to the next one. 32 bytes is one AVX2/AVX-512VL register or two SSE2
 * registers, so every dispatch clone keeps the accumulators in registers and
 * adds lane by lane in the same order: the clones round identically. The
 * partial sums are then added in a fixed pairwise tree.
 */
#define VLEN ((int64_t)(32 / sizeof(T)))
typedef T FN(vec_) __attribute__((vector_size(32)));
typedef T FN(half_) __attribute__((vector_size(16)));
/*
 * Two of those lanes side by side. Elementwise arithmetic on a 64-byte
 * vector rounds exactly like the two 32-byte halves done apart, so it
 * changes no result; it only issues half the instructions where the
 * AVX-512 clone has zmm registers (Zen 4 runs a 512-bit operation as one
 * macro-op, so the out-of-order window holds twice the work and keeps more
 * reads of Z in flight). Other clones split it into their own registers.
 */
typedef T FN(wide_) __attribute__((vector_size(64)));
#define WLEN ((int64_t)(64 / sizeof(T)))

STEFAST_INLINE FN(vec_) FN(load_)(const T *p)
{
    FN(vec_) x;
    memcpy(&x, p, sizeof x); /* unaligned load */
    return x;
}

STEFAST_INLINE FN(wide_) FN(load_wide_)(const T *p)
{
    FN(wide_) x;
    memcpy(&x, p, sizeof x);
    return x;
}

STEFAST_INLINE int FN(aligned64_)(const T *p)
{
    return (uintptr_t)p % 64 == 0;
}

/* The 32-byte halves of a 64-byte vector. */
STEFAST_INLINE void FN(split_)(FN(wide_) x, FN(vec_) *lo, FN(vec_) *hi)
{
    memcpy(lo, &x, sizeof *lo);
    memcpy(hi, (const char *)&x + sizeof *lo, sizeof *hi);
}

/* A block of VLEN values from p, or the count < VLEN left, zero-padded. */
STEFAST_INLINE FN(vec_) FN(load_part_)(const T *p, int64_t count)
{
    if (count >= VLEN) return FN(load_)(p);
    FN(vec_) x = {0};
    for (int64_t k = 0; k < count; k++) x[k] = p[k];
    return x;
}

STEFAST_INLINE T FN(lane_sum_)(FN(vec_) a0, FN(vec_) a1, FN(vec_) a2, FN(vec_) a3)
{
    const FN(vec_) s = (a0 + a1) + (a2 + a3);
    FN(half_) h[2];
    memcpy(h, &s, sizeof h);
    h[0] += h[1];
    T t[16 / sizeof(T)];
    memcpy(t, &h[0], sizeof t);
    for (int64_t width = (int64_t)(16 / sizeof(T)) / 2; width > 0; width /= 2)
        for (int64_t k = 0; k < width; k++) t[k] += t[k + width];
    return t[0];
}

/* z.w and z.ws in one pass over z. */
STEFAST_INLINE void FN(dot2_)(const T *restrict z, const T *restrict w,
                              const T *restrict ws, int64_t n, T *d, T *ds)
{
    FN(vec_) a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    FN(vec_) b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
    int64_t j = 0;
    if (sizeof(T) == sizeof(double) && FN(aligned64_)(z)) {
        /* the same four lanes, as pairs (a0|a1) and (a2|a3). Measured at
         * m=32, n=64 from memory: about 9 % faster in double when z is
         * 64-byte aligned; 9-16 % slower when it is not (each load then
         * spans two cache lines; NumPy's own buffers start 16 bytes past a
         * line), and 2-7 % slower in float. Those keep the 32-byte loop. */
        FN(wide_) a01 = {0}, a23 = {0}, b01 = {0}, b23 = {0};
        for (; j + 4 * VLEN <= n; j += 4 * VLEN) {
            const FN(wide_) z01 = FN(load_wide_)(z + j), z23 = FN(load_wide_)(z + j + 2 * VLEN);
            a01 += z01 * FN(load_wide_)(w + j);
            a23 += z23 * FN(load_wide_)(w + j + 2 * VLEN);
            b01 += z01 * FN(load_wide_)(ws + j);
            b23 += z23 * FN(load_wide_)(ws + j + 2 * VLEN);
        }
        FN(split_)(a01, &a0, &a1);
        FN(split_)(a23, &a2, &a3);
        FN(split_)(b01, &b0, &b1);
        FN(split_)(b23, &b2, &b3);
    }
    for (; j + 4 * VLEN <= n; j += 4 * VLEN) {
        const FN(vec_) z0 = FN(load_)(z + j), z1 = FN(load_)(z + j + VLEN);
        const FN(vec_) z2 = FN(load_)(z + j + 2 * VLEN), z3 = FN(load_)(z + j + 3 * VLEN);
        a0 += z0 * FN(load_)(w + j);
        a1 += z1 * FN(load_)(w + j + VLEN);
        a2 += z2 * FN(load_)(w + j + 2 * VLEN);
        a3 += z3 * FN(load_)(w + j + 3 * VLEN);
        b0 += z0 * FN(load_)(ws + j);
        b1 += z1 * FN(load_)(ws + j + VLEN);
        b2 += z2 * FN(load_)(ws + j + 2 * VLEN);
        b3 += z3 * FN(load_)(ws + j + 3 * VLEN);
    }
    /* the rest: at most 3 full blocks and a partial one, in a fixed order */
    if (j < n) {
        const FN(vec_) zz = FN(load_part_)(z + j, n - j);
        a0 += zz * FN(load_part_)(w + j, n - j);
        b0 += zz * FN(load_part_)(ws + j, n - j);
        j += VLEN;
    }
    if (j < n) {
        const FN(vec_) zz = FN(load_part_)(z + j, n - j);
        a1 += zz * FN(load_part_)(w + j, n - j);
        b1 += zz * FN(load_part_)(ws + j, n - j);
        j += VLEN;
    }
    if (j < n) {
        const FN(vec_) zz = FN(load_part_)(z + j, n - j);
        a2 += zz * FN(load_part_)(w + j, n - j);
        b2 += zz * FN(load_part_)(ws + j, n - j);
        j += VLEN;
    }
    if (j < n) {
        const FN(vec_) zz = FN(load_part_)(z + j, n - j);
        a3 += zz * FN(load_part_)(w + j, n - j);
        b3 += zz * FN(load_part_)(ws + j, n - j);
    }
    *d = FN(lane_sum_)(a0, a1, a2, a3);
    *ds = FN(lane_sum_)(b0, b1, b2, b3);
}

/* z.w over n values, with the same summation order as dot2_. */
STEFAST_INLINE T FN(dot_)(const T *restrict z, const T *restrict w, int64_t n)
{
    T d, unused;
    FN(dot2_)(z, w, w, n, &d, &unused);
    return d;
}

/*
 * x if cond else +0, by masking the bits rather than branching: the signs
 * of z.w are random, a branch on them mispredicts half the time, and that
 * (not memory) was measured to dominate small samples (3x slower at m=8,
 * n=16 on random data). A masked-out NaN or inf gives exactly +0.
 */
STEFAST_INLINE T FN(keep_if_)(int cond, T x)
{
    if (sizeof(T) == sizeof(uint64_t)) {
        uint64_t u = 0;
        memcpy(&u, &x, sizeof x);
        u &= (uint64_t)0 - (uint64_t)(cond != 0);
        memcpy(&x, &u, sizeof x);
    } else {
        uint32_t u = 0;
        memcpy(&u, &x, sizeof x < sizeof u ? sizeof x : sizeof u);
        u &= (uint32_t)0 - (uint32_t)(cond != 0);
        memcpy(&x, &u, sizeof x < sizeof u ? sizeof x : sizeof u);
    }
    return x;
}

STEFAST_INLINE int FN(in_window_)(T x, stefast_ste ste)
{
    switch (ste) {
    case STEFAST_STE_IDENTITY: return 1;
    case STEFAST_STE_RELU: return x > 0;
    case STEFAST_STE_CLIPPED_RELU: return (x > 0) & (x < 1);
    default: return (x >= -1) & (x <= 1); /* STEFAST_STE_HARDTANH */
    }
}

/*
 * g[j] = sum_k coef[k] * Z[idx[k]][j] for the listed rows, column block by
 * column block: a block of g stays in registers while the listed rows pass
 * through it, so Z is the only array read per term (a row-by-row update
 * also reloads and stores g for every row, which was measured to cost about
 * 15 % at m=32, n=64). The terms of each g[j] are added in list order, as a
 * row-by-row update would add them, so the vector width does not matter to
 * the result. Full blocks are 256 bytes of a row: 4 64-byte vectors when
 * every row starts on a cache line (4-6 % faster at m=32, n=64 and m=128,
 * n=512), else 8 32-byte ones (64-byte loads that span two lines were
 * slower); then one block of up to 7 32-byte vectors, then single values.
 */
#define COMBINE_BLOCK(VEC, LOAD, WIDTH)                                             \
    do {                                                                            \
        VEC acc[8];                                                                 \
        for (int q = 0; q < nvec; q++) acc[q] = (VEC){0};                           \
        for (int64_t k = 0; k < count; k++) {                                       \
            const T *restrict z = Z + idx[k] * n;                                   \
            for (int q = 0; q < nvec; q++) acc[q] += coef[k] * LOAD(z + q * WIDTH); \
        }                                                                           \
        memcpy(g, acc, (size_t)nvec * sizeof acc[0]);                               \
    } while (0)

STEFAST_INLINE void FN(combine_wide_)(const T *restrict Z, int64_t n,
                                      const int64_t *restrict idx,
                                      const T *restrict coef, int64_t count,
                                      T *restrict g, const int nvec)
{
    COMBINE_BLOCK(FN(wide_), FN(load_wide_), WLEN);
}

STEFAST_INLINE void FN(combine_block_)(const T *restrict Z, int64_t n,
                                       const int64_t *restrict idx,
                                       const T *restrict coef, int64_t count,
                                       T *restrict g, const int nvec)
{
    COMBINE_BLOCK(FN(vec_), FN(load_), VLEN);
}
#undef COMBINE_BLOCK

STEFAST_INLINE void FN(rows_combine_)(const T *restrict Z, int64_t n,
                                      const int64_t *restrict idx,
                                      const T *restrict coef, int64_t count,
                                      T *restrict g)
{
    int64_t j = 0;
    if (FN(aligned64_)(Z) && (n * (int64_t)sizeof(T)) % 64 == 0) {
        for (; j + 4 * WLEN <= n; j += 4 * WLEN)
            FN(combine_wide_)(Z + j, n, idx, coef, count, g + j, 4);
    } else {
        for (; j + 8 * VLEN <= n; j += 8 * VLEN)
            FN(combine_block_)(Z + j, n, idx, coef, count, g + j, 8);
    }
    /* up to 7 vectors left: one block of them, so that short rows (n = 16,
     * say) still have independent sums to overlap */
    switch ((n - j) / VLEN) {
    case 7: FN(combine_block_)(Z + j, n, idx, coef, count, g + j, 7); break;
    case 6: FN(combine_block_)(Z + j, n, idx, coef, count, g + j, 6); break;
    case 5: FN(combine_block_)(Z + j, n, idx, coef, count, g + j, 5); break;
    case 4: FN(combine_block_)(Z + j, n, idx, coef, count, g + j, 4); break;
    case 3: FN(combine_block_)(Z + j, n, idx, coef, count, g + j, 3); break;
    case 2: FN(combine_block_)(Z + j, n, idx, coef, count, g + j, 2); break;
    case 1: FN(combine_block_)(Z + j, n, idx, coef, count, g + j, 1); break;
    default: break;
    }
    j += (n - j) / VLEN * VLEN;
    for (; j < n; j++) {
        T acc = 0;
        for (int64_t k = 0; k < count; k++) acc += coef[k] * Z[idx[k] * n + j];
        g[j] = acc;
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
        y += FN(keep_if_)(d > 0, v[i]);
        y_star += FN(keep_if_)(ds > 0, vs[i]);
    }
    const T r = y - y_star;
    *loss = (T)0.5 * r * r;
    /* list the active rows and their coefficients a_i = v_i r; the list
     * overwrites zw behind the reads (active <= i) */
    int64_t active = 0;
    for (int64_t i = 0; i < m; i++) {
        const T d = zw[i];
        grad_v[i] = FN(keep_if_)(d > 0, r);
        idx[active] = i;
        zw[active] = v[i] * r;
        active += FN(in_window_)(d, ste);
    }
    FN(rows_combine_)(Z, n, idx, zw, active, grad_w);
}
