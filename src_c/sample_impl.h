/*
 * sample_impl.h -- type-generic per-sample building blocks of the binarized
 * model (fixed-lane dot products, the STE window, the column-blocked Z^T a,
 * one fused sample).
 * Included by model_impl.h and by any kernel file that needs one sample's
 * loss and gradients (with T, TI, LINE_WIDE and FN(name) defined by the
 * includer). All functions are static inline, so each includer's dispatch
 * clones get their own vectorised copy.
 */
/*
 * Lanes and rounding. A dot product over a row adds element j into lane
 * j mod LANES (LANES = 16 doubles or 32 floats, two cache lines), in
 * increasing j, and then sums the lanes by folding: the upper half is added
 * onto the lower half until one lane is left (fold2_). Every dispatch clone
 * makes exactly these additions, lane by lane, whether a line is one
 * register or several (LINE_WIDE below), so all clones round alike.
 *
 * At every level the fold pairs lane q with lane q + half (mod 2 half), so
 * it gives the same sum when the lanes are held rotated. That lets
 * dot2_lines_ read a row that starts part-way into a cache line with
 * aligned loads (element j then sits in lane (j + offset) mod LANES, the
 * row starting offset values into a line) and
 * still agree to the bit with dot2_, which reads the same row unaligned.
 * It matters: NumPy starts large buffers 16 bytes past a line, where
 * 64-byte loads straddle two lines (docs/performance.rst, section
 * "Aligned loads wherever Z starts").
 */
#include "surrogate.h"

#define WLEN ((int64_t)(64 / sizeof(T)))
#define LANES (2 * WLEN)
#define VLEN ((int64_t)(32 / sizeof(T)))
typedef T FN(vec_) __attribute__((vector_size(32)));
typedef T FN(half_) __attribute__((vector_size(16)));
typedef TI FN(ivec_) __attribute__((vector_size(32)));

STEFAST_INLINE FN(vec_) FN(load_)(const T *p)
{
    FN(vec_) x;
    memcpy(&x, p, sizeof x); /* unaligned load */
    return x;
}

STEFAST_INLINE FN(half_) FN(load_half_)(const T *p)
{
    FN(half_) x;
    memcpy(&x, p, sizeof x);
    return x;
}

/*
 * A cache line of values, the unit of every loop below, and mask_, all
 * bits set or none per value of a line (TI: the signed integer of T's
 * size). The includer picks how a line is held (LINE_WIDE): one 64-byte
 * vector, one AVX-512 register, or two 32-byte halves, one register each
 * with AVX2. GCC keeps a 64-byte vector type in memory on a target
 * without 64-byte registers, while where they exist halves are slower than
 * whole lines (docs/performance.rst, section "CPU dispatch and line
 * registers"). Both add the same lanes in the same order: the same bits.
 *
 * l_load_once_ reads a line of z exactly once (volatile reads): otherwise
 * GCC folds the load into every multiply that uses it, and each line of Z
 * is read from L1 two or three times (docs/performance.rst, section
 * "Short rows in registers").
 */
/* the _unaligned_ types: any address, as a NumPy array may be misaligned even
 * for its element type (UBSan reported the load of such a Z) */
#if LINE_WIDE
typedef T FN(line_) __attribute__((vector_size(64)));
typedef TI FN(mask_) __attribute__((vector_size(64)));
typedef T FN(line_unaligned_) __attribute__((vector_size(64), aligned(1)));

STEFAST_INLINE FN(line_) FN(l_zero_)(void) { return (FN(line_)){0}; }

STEFAST_INLINE FN(line_) FN(l_load_)(const T *p)
{
    FN(line_) x;
    memcpy(&x, p, sizeof x);
    return x;
}

STEFAST_INLINE FN(line_) FN(l_load_once_)(const T *p)
{
    return *(const volatile FN(line_unaligned_) *)p;
}

STEFAST_INLINE void FN(l_store_)(T *p, FN(line_) x) { memcpy(p, &x, sizeof x); }

STEFAST_INLINE FN(line_) FN(l_add_)(FN(line_) a, FN(line_) b) { return a + b; }

/* acc + x * y, lane by lane (no FMA: every clone rounds the same) */
STEFAST_INLINE FN(line_) FN(l_mac_)(FN(line_) acc, FN(line_) x, FN(line_) y)
{
    return acc + x * y;
}

STEFAST_INLINE FN(line_) FN(l_scale_add_)(FN(line_) u, T c, FN(line_) x) { return u + c * x; }

STEFAST_INLINE FN(line_) FN(l_scale_)(FN(line_) x, T c) { return x * c; }

/* x where keep is set, +0 elsewhere (whatever x holds there, NaN included) */
STEFAST_INLINE FN(line_) FN(l_keep_)(FN(line_) x, FN(mask_) keep)
{
    union { FN(line_) x; FN(mask_) bits; } u = {x};
    u.bits &= keep;
    return u.x;
}

STEFAST_INLINE FN(mask_) FN(m_not_)(FN(mask_) m) { return ~m; }

/* the mask keeping the positions p of a line with from <= p < to */
STEFAST_INLINE FN(mask_) FN(m_positions_)(int64_t from, int64_t to)
{
    FN(line_) position;
    for (int64_t p = 0; p < WLEN; p++) position[p] = (T)p;
    return (FN(mask_))((position >= (T)from) & (position < (T)to));
}

/* lanes [0, VLEN) and [VLEN, WLEN) of x */
STEFAST_INLINE void FN(l_halves_)(FN(line_) x, FN(vec_) *lo, FN(vec_) *hi)
{
    union { FN(line_) x; FN(vec_) v[2]; } u = {x};
    *lo = u.v[0];
    *hi = u.v[1];
}
#else
typedef T FN(vec_unaligned_) __attribute__((vector_size(32), aligned(1)));
typedef struct { FN(vec_) lo, hi; } FN(line_);
typedef struct { FN(ivec_) lo, hi; } FN(mask_);

STEFAST_INLINE FN(line_) FN(l_zero_)(void) { return (FN(line_)){{0}, {0}}; }

STEFAST_INLINE FN(line_) FN(l_load_)(const T *p)
{
    return (FN(line_)){FN(load_)(p), FN(load_)(p + VLEN)};
}

STEFAST_INLINE FN(line_) FN(l_load_once_)(const T *p)
{
    return (FN(line_)){*(const volatile FN(vec_unaligned_) *)p,
                       *(const volatile FN(vec_unaligned_) *)(p + VLEN)};
}

STEFAST_INLINE void FN(l_store_)(T *p, FN(line_) x)
{
    memcpy(p, &x.lo, sizeof x.lo);
    memcpy(p + VLEN, &x.hi, sizeof x.hi);
}

STEFAST_INLINE FN(line_) FN(l_add_)(FN(line_) a, FN(line_) b)
{
    return (FN(line_)){a.lo + b.lo, a.hi + b.hi};
}

STEFAST_INLINE FN(line_) FN(l_mac_)(FN(line_) acc, FN(line_) x, FN(line_) y)
{
    return (FN(line_)){acc.lo + x.lo * y.lo, acc.hi + x.hi * y.hi};
}

STEFAST_INLINE FN(line_) FN(l_scale_add_)(FN(line_) u, T c, FN(line_) x)
{
    return (FN(line_)){u.lo + c * x.lo, u.hi + c * x.hi};
}

STEFAST_INLINE FN(line_) FN(l_scale_)(FN(line_) x, T c) { return (FN(line_)){x.lo * c, x.hi * c}; }

STEFAST_INLINE FN(line_) FN(l_keep_)(FN(line_) x, FN(mask_) keep)
{
    union { FN(vec_) x; FN(ivec_) bits; } lo = {x.lo}, hi = {x.hi};
    lo.bits &= keep.lo;
    hi.bits &= keep.hi;
    return (FN(line_)){lo.x, hi.x};
}

STEFAST_INLINE FN(mask_) FN(m_not_)(FN(mask_) m) { return (FN(mask_)){~m.lo, ~m.hi}; }

STEFAST_INLINE FN(mask_) FN(m_positions_)(int64_t from, int64_t to)
{
    FN(vec_) lo, hi;
    for (int64_t p = 0; p < VLEN; p++) {
        lo[p] = (T)p;
        hi[p] = (T)(p + VLEN);
    }
    return (FN(mask_)){(FN(ivec_))((lo >= (T)from) & (lo < (T)to)),
                       (FN(ivec_))((hi >= (T)from) & (hi < (T)to))};
}

STEFAST_INLINE void FN(l_halves_)(FN(line_) x, FN(vec_) *lo, FN(vec_) *hi)
{
    *lo = x.lo;
    *hi = x.hi;
}
#endif

/* WLEN values from p, or the count < WLEN left (none if count <= 0), zero-padded. */
STEFAST_INLINE FN(line_) FN(l_load_part_)(const T *p, int64_t count)
{
    if (count >= WLEN) return FN(l_load_)(p);
    T x[64 / sizeof(T)] = {0};
    for (int64_t k = 0; k < count; k++) x[k] = p[k];
    return FN(l_load_)(x);
}

/*
 * Where a row lies in cache lines when a row is a whole number of lines
 * long (then the same for every row of Z): its first line starting at
 * value `first` of the row (-offset, so 0 or negative), `lines` lines in
 * all. `shared`: the row starts off a line, and shares its first and last
 * lines with the rows before and after it; the masks keep the row's own
 * values there (all set when not shared). dot2_lines_ reads the lines as
 * `pairs` pairs and then `rest` (0 to 2) lines, the last of them masked:
 * see there.
 */
typedef struct {
    int64_t shared, first, lines, pairs, rest;
    FN(mask_) first_keep, last_keep;
} FN(lines_);

/* The FN(lines_) of rows of n values, a multiple of WLEN and at least 3
 * lines, that start `offset` values past a line. */
STEFAST_INLINE void FN(lines_init_)(FN(lines_) *L, int64_t offset, int64_t n)
{
    L->shared = offset > 0;
    L->first = -offset;
    L->lines = n / WLEN + (offset > 0);
    L->pairs = offset > 0 ? (L->lines - 1) / 2 : L->lines / 2;
    L->rest = L->lines - 2 * L->pairs;
    L->first_keep = FN(m_positions_)(offset, WLEN);
    L->last_keep = FN(m_positions_)(0, n + offset - (L->lines - 1) * WLEN);
}

/* Prefetch the line `ahead` bytes past p (integer arithmetic: the address
 * may lie past the end of Z, where prefetching is harmless). */
STEFAST_INLINE void FN(prefetch_)(const T *p, int64_t ahead)
{
    if (ahead > 0) __builtin_prefetch((const void *)((uintptr_t)p + (uintptr_t)ahead), 0, 3);
}

/*
 * Lane k of the result is lane from[k] of a (from[k] < VLEN) or lane
 * from[k] - VLEN of b, GCC's __builtin_shuffle(a, b, from). Other compilers
 * (clang) have only __builtin_shufflevector, whose lanes must be literal
 * constants; the element-wise moves below fold into the same shuffle once
 * the caller's constant mask is propagated.
 */
STEFAST_INLINE FN(vec_) FN(shuffle_)(FN(vec_) a, FN(vec_) b, FN(ivec_) from)
{
#if defined(__GNUC__) && !defined(__clang__)
    return __builtin_shuffle(a, b, from);
#else
    FN(vec_) r;
    for (int k = 0; k < VLEN; k++) r[k] = from[k] < VLEN ? a[from[k]] : b[from[k] - VLEN];
    return r;
#endif
}

/* The shuffle mask taking lane k + width to lane k for the first `width`
 * lanes of each 16 bytes (and lane k to itself elsewhere). */
STEFAST_INLINE FN(ivec_) FN(lane_shift_)(int width)
{
    FN(ivec_) from;
    for (int k = 0; k < VLEN; k++) from[k] = k % (VLEN / 2) < width ? k + width : k;
    return from;
}

/*
 * The sum of the LANES lanes held in a0, a1 into *d and of those in b0, b1
 * into *ds (see the top of this file), the two sums side by side in one
 * vector from the second level on: the same additions as one fold at a
 * time, in fewer instructions. Vector values throughout: taking the
 * accumulators' address keeps them in memory, where every add waits on a
 * store, and unions of 16-byte halves go through the stack, where a 32-byte
 * reload of two 16-byte stores stalls (docs/performance.rst, section
 * "Sums across vector lanes").
 */
STEFAST_INLINE void FN(fold2_)(FN(line_) a0, FN(line_) a1, FN(line_) b0, FN(line_) b1,
                               T *d, T *ds)
{
    enum { H = 16 / sizeof(T) }; /* the lanes of 16 bytes; VLEN = 2 H */
    FN(vec_) alo, ahi, blo, bhi;
    FN(l_halves_)(FN(l_add_)(a0, a1), &alo, &ahi);
    FN(l_halves_)(FN(l_add_)(b0, b1), &blo, &bhi);
    const FN(vec_) ca = alo + ahi, cb = blo + bhi;
    /* [lower 16 bytes of ca | of cb] + [upper of ca | of cb] */
    FN(ivec_) lower, upper;
    for (int k = 0; k < 2 * H; k++) {
        lower[k] = k < H ? k : k + H;
        upper[k] = lower[k] + H;
    }
    FN(vec_) e = FN(shuffle_)(ca, cb, lower) + FN(shuffle_)(ca, cb, upper);
    /* then within each 16 bytes, lane k + width onto lane k (written out:
     * GCC built the shuffle masks at run time in a loop over width) */
    if (H == 4) e += FN(shuffle_)(e, e, FN(lane_shift_)(2));
    e += FN(shuffle_)(e, e, FN(lane_shift_)(1));
    *d = e[0];
    *ds = e[H];
}

/* z.w and z.ws in one pass over the n values of z, any placement.
 * prefetch: bytes ahead of the reads to prefetch (0: none). */
STEFAST_INLINE void FN(dot2_)(const T *restrict z, const T *restrict w,
                              const T *restrict ws, int64_t n, int64_t prefetch,
                              T *d, T *ds)
{
    FN(line_) a0 = FN(l_zero_)(), a1 = a0, b0 = a0, b1 = a0;
    int64_t j = 0;
    for (; j + LANES <= n; j += LANES) {
        FN(prefetch_)(z + j, prefetch);
        FN(prefetch_)(z + j + WLEN, prefetch);
        const FN(line_) z0 = FN(l_load_once_)(z + j), z1 = FN(l_load_once_)(z + j + WLEN);
        a0 = FN(l_mac_)(a0, z0, FN(l_load_)(w + j));
        a1 = FN(l_mac_)(a1, z1, FN(l_load_)(w + j + WLEN));
        b0 = FN(l_mac_)(b0, z0, FN(l_load_)(ws + j));
        b1 = FN(l_mac_)(b1, z1, FN(l_load_)(ws + j + WLEN));
    }
    if (j < n) { /* the last n - j < LANES values, zero-padded */
        const FN(line_) z0 = FN(l_load_part_)(z + j, n - j);
        a0 = FN(l_mac_)(a0, z0, FN(l_load_part_)(w + j, n - j));
        b0 = FN(l_mac_)(b0, z0, FN(l_load_part_)(ws + j, n - j));
    }
    if (j + WLEN < n) {
        const FN(line_) z1 = FN(l_load_part_)(z + j + WLEN, n - j - WLEN);
        a1 = FN(l_mac_)(a1, z1, FN(l_load_part_)(w + j + WLEN, n - j - WLEN));
        b1 = FN(l_mac_)(b1, z1, FN(l_load_part_)(ws + j + WLEN, n - j - WLEN));
    }
    FN(fold2_)(a0, a1, b0, b1, d, ds);
}

/*
 * dot2_lines_ for rows of 2 to SMALL_LINES lines (L->lines), with w and ws
 * held in registers: W[t], S[t] are the lines of the copies beside line t
 * of the row, W[SMALL_LINES], S[SMALL_LINES] those beside its last line.
 * Per line of z one load then, not three (9 lines: 18 of AVX-512's 32
 * registers; docs/performance.rst, section "Short rows in registers"). Line
 * t goes to accumulator t mod 2: the lanes are rotated relative to dot2_
 * by another amount, which the fold ignores. The lines are read in order:
 * fetching the last line first slows the stream.
 * L may also be the lines_init_ of offset 0 for rows that start off a
 * line: then each line is read where it lies, across two cache lines.
 */
#define SMALL_LINES 9
STEFAST_INLINE void FN(dot2_small_)(const T *restrict z, const FN(line_) *W,
                                    const FN(line_) *S, const FN(lines_) *L,
                                    int64_t prefetch, T *d, T *ds)
{
    const int64_t last = L->lines - 1;
    const T *zl = z + L->first;
    FN(line_) a0 = FN(l_zero_)(), a1 = a0, b0 = a0, b1 = a0;
    /* a shared first line was prefetched as the last line of the row before */
    if (!L->shared) FN(prefetch_)(zl, prefetch);
    FN(line_) first = FN(l_load_once_)(zl);
    if (L->shared) first = FN(l_keep_)(first, L->first_keep);
    a0 = FN(l_mac_)(a0, first, W[0]);
    b0 = FN(l_mac_)(b0, first, S[0]);
#pragma GCC unroll 16
    for (int t = 1; t < SMALL_LINES; t++) {
        if (t >= last) break;
        FN(prefetch_)(zl + t * WLEN, prefetch);
        const FN(line_) zz = FN(l_load_once_)(zl + t * WLEN);
        if (t % 2 == 0) {
            a0 = FN(l_mac_)(a0, zz, W[t]);
            b0 = FN(l_mac_)(b0, zz, S[t]);
        } else {
            a1 = FN(l_mac_)(a1, zz, W[t]);
            b1 = FN(l_mac_)(b1, zz, S[t]);
        }
    }
    /* the last line, into the accumulator of its parity */
    FN(prefetch_)(zl + last * WLEN, prefetch);
    FN(line_) end = FN(l_load_once_)(zl + last * WLEN);
    if (L->shared) end = FN(l_keep_)(end, L->last_keep);
    if (last % 2 == 0) {
        a0 = FN(l_mac_)(a0, end, W[SMALL_LINES]);
        b0 = FN(l_mac_)(b0, end, S[SMALL_LINES]);
    } else {
        a1 = FN(l_mac_)(a1, end, W[SMALL_LINES]);
        b1 = FN(l_mac_)(b1, end, S[SMALL_LINES]);
    }
    FN(fold2_)(a0, a1, b0, b1, d, ds);
}

/* z.w over n values, with the same summation order as dot2_. */
STEFAST_INLINE T FN(dot_)(const T *restrict z, const T *restrict w, int64_t n,
                          int64_t prefetch)
{
    T d, unused;
    FN(dot2_)(z, w, w, n, prefetch, &d, &unused);
    return d;
}

/*
 * x if cond else +0, by masking the bits rather than branching: the signs
 * of z.w are random, a branch on them mispredicts half the time, and that
 * (not memory) dominates small samples. A plain `cond ? x : 0` is not
 * enough: GCC made one of those a branch in the dispatch build
 * (docs/performance.rst, section "Selects, not branches"). A masked-out NaN
 * or inf gives exactly +0.
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

/*
 * The sum over i < m of c[i] where x[i] > 0 (y = v^T sigma(Z w) from
 * x = Z w, c = v), row i into lane i mod VLEN and the lanes then folded by
 * halves: the same additions on every read path and dispatch clone.
 * One sum in row order chains m additions of 3-4 cycles each, which short
 * rows in float cannot hide (docs/performance.rst, section "Sums across
 * vector lanes"). Every path stores z.w and z.ws per row for it (zw, zws).
 */
STEFAST_INLINE T FN(sum_where_positive_)(const T *restrict x, const T *restrict c, int64_t m)
{
    FN(vec_) acc = {0};
    int64_t i = 0;
    for (; i + VLEN <= m; i += VLEN) {
        union { FN(vec_) x; FN(ivec_) bits; } term = {FN(load_)(c + i)};
        term.bits &= (FN(ivec_))(FN(load_)(x + i) > 0);
        acc += term.x;
    }
    for (int64_t k = 0; i + k < m; k++) acc[k] += FN(keep_if_)(x[i + k] > 0, c[i + k]);
    for (int h = VLEN / 2; h >= 1; h /= 2)
        for (int k = 0; k < h; k++) acc[k] += acc[k + h];
    return acc[0];
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
 * g[j] = scale * sum_k coef[k] * Z[idx[k]][j] for the listed rows, column
 * block by column block: a block of g stays in registers while the listed
 * rows pass through it, so Z is the only array read per term (a row-by-row
 * update also reloads and stores g for every row; docs/performance.rst, section
 * "Stores the caller reads back as vectors"). The terms of each sum are added in list
 * order whatever the block, so neither the vector width nor where the
 * blocks start changes the result. Blocks are 8 32-byte vectors (256
 * bytes of a row), then the columns left over in blocks of up to 7 32-byte
 * vectors, one 16-byte one, single values. This is the path for rows at any
 * placement; rows a whole number of lines long take rows_combine_lines_.
 */
#define COMBINE_BLOCK(VEC, LOAD, WIDTH)                                             \
    do {                                                                            \
        VEC acc[8];                                                                 \
        for (int q = 0; q < nvec; q++) acc[q] = (VEC){0};                           \
        for (int64_t k = 0; k < count; k++) {                                       \
            const T *restrict z = Z + idx[k] * n;                                   \
            for (int q = 0; q < nvec; q++) acc[q] += coef[k] * LOAD(z + q * WIDTH); \
        }                                                                           \
        for (int q = 0; q < nvec; q++) {                                            \
            const VEC out = acc[q] * scale;                                         \
            memcpy(g + q * WIDTH, &out, sizeof out);                                \
        }                                                                           \
    } while (0)

STEFAST_INLINE void FN(combine_block_)(const T *restrict Z, int64_t n,
                                       const int64_t *restrict idx,
                                       const T *restrict coef, int64_t count, T scale,
                                       T *restrict g, const int nvec)
{
    COMBINE_BLOCK(FN(vec_), FN(load_), VLEN);
}

STEFAST_INLINE void FN(combine_half_)(const T *restrict Z, int64_t n,
                                      const int64_t *restrict idx,
                                      const T *restrict coef, int64_t count, T scale,
                                      T *restrict g)
{
    const int nvec = 1;
    COMBINE_BLOCK(FN(half_), FN(load_half_), (int64_t)(16 / sizeof(T)));
}
#undef COMBINE_BLOCK

/* Columns [j, end) of g, fewer than 8 32-byte vectors of them: one block,
 * so that short rows (n = 16, say) still have independent sums to overlap. */
STEFAST_INLINE void FN(combine_rest_)(const T *restrict Z, int64_t n,
                                      const int64_t *restrict idx,
                                      const T *restrict coef, int64_t count, T scale,
                                      T *restrict g, int64_t j, int64_t end)
{
    switch ((end - j) / VLEN) {
    case 7: FN(combine_block_)(Z + j, n, idx, coef, count, scale, g + j, 7); break;
    case 6: FN(combine_block_)(Z + j, n, idx, coef, count, scale, g + j, 6); break;
    case 5: FN(combine_block_)(Z + j, n, idx, coef, count, scale, g + j, 5); break;
    case 4: FN(combine_block_)(Z + j, n, idx, coef, count, scale, g + j, 4); break;
    case 3: FN(combine_block_)(Z + j, n, idx, coef, count, scale, g + j, 3); break;
    case 2: FN(combine_block_)(Z + j, n, idx, coef, count, scale, g + j, 2); break;
    case 1: FN(combine_block_)(Z + j, n, idx, coef, count, scale, g + j, 1); break;
    default: break;
    }
    j += (end - j) / VLEN * VLEN;
    if (j + (int64_t)(16 / sizeof(T)) <= end) {
        FN(combine_half_)(Z + j, n, idx, coef, count, scale, g + j);
        j += (int64_t)(16 / sizeof(T));
    }
    for (; j < end; j++) {
        T acc = 0;
        for (int64_t k = 0; k < count; k++) acc += coef[k] * Z[idx[k] * n + j];
        g[j] = acc * scale;
    }
}

STEFAST_INLINE void FN(rows_combine_)(const T *restrict Z, int64_t n,
                                      const int64_t *restrict idx,
                                      const T *restrict coef, int64_t count, T scale,
                                      T *restrict g)
{
    int64_t j = 0;
    for (; j + 8 * VLEN <= n; j += 8 * VLEN)
        FN(combine_block_)(Z + j, n, idx, coef, count, scale, g + j, 8);
    FN(combine_rest_)(Z, n, idx, coef, count, scale, g, j, n);
}

/* Store the values of line x that are columns of g (col0: the column of
 * its first value; columns outside [0, n) belong to the neighbouring rows).
 * padded: g has WLEN values before it and WLEN after it that may be
 * overwritten, so the whole line is stored: after a copy of part of a line
 * (a memcpy call as GCC compiles it) the caller's vector reads of g cannot
 * be forwarded from the stores and wait for them (docs/performance.rst, section
 * "Stores the caller reads back as vectors"). */
STEFAST_INLINE void FN(store_columns_)(T *restrict g, int64_t n, int64_t col0, FN(line_) x,
                                       int padded)
{
    if (padded || (col0 >= 0 && col0 + WLEN <= n)) {
        FN(l_store_)(g + col0, x);
        return;
    }
    T values[64 / sizeof(T)];
    FN(l_store_)(values, x);
    const int64_t lo = col0 < 0 ? -col0 : 0, hi = n - col0 < WLEN ? n - col0 : WLEN;
    for (int64_t p = lo; p < hi; p++) g[col0 + p] = values[p];
}

/* Lines [col0, col0 + nlines * WLEN) of every listed row, one accumulator
 * line each, kept in registers while the list passes (nlines: a constant
 * after inlining). */
#define COMBINE_LINES (LINE_WIDE ? 12 : 4)
STEFAST_INLINE void FN(combine_lines_)(const T *restrict Z, int64_t n,
                                       const int64_t *restrict idx,
                                       const T *restrict coef, int64_t count, T scale,
                                       T *restrict g, int64_t col0, const int nlines,
                                       int padded)
{
    FN(line_) acc[COMBINE_LINES];
    for (int q = 0; q < nlines; q++) acc[q] = FN(l_zero_)();
    for (int64_t k = 0; k < count; k++) {
        const T *restrict z = Z + idx[k] * n + col0;
        for (int q = 0; q < nlines; q++)
            acc[q] = FN(l_scale_add_)(acc[q], coef[k], FN(l_load_)(z + q * WLEN));
    }
    for (int q = 0; q < nlines; q++)
        FN(store_columns_)(g, n, col0 + q * WLEN, FN(l_scale_)(acc[q], scale), padded);
}

/*
 * rows_combine_ for rows laid out as L says (the same sums to the bit:
 * each column adds the same terms in list order), a whole line at a time
 * with aligned loads. The first and last lines of a row also hold values
 * of its neighbours; they are summed in lanes of their own and never
 * stored. Column blocks that start at column 0 cut such rows into five
 * passes over the list at m=32, n=64 in double, two of them one vector
 * wide and so bound by the latency of an add; here that is one pass (three
 * with 32-byte halves). padded: as for store_columns_.
 */
STEFAST_INLINE void FN(rows_combine_lines_)(const T *restrict Z, int64_t n,
                                            const int64_t *restrict idx,
                                            const T *restrict coef, int64_t count, T scale,
                                            T *restrict g, const FN(lines_) *L, int padded)
{
    const int64_t first = L->first;
    int64_t t = 0;
    for (; t + COMBINE_LINES <= L->lines; t += COMBINE_LINES)
        FN(combine_lines_)(Z, n, idx, coef, count, scale, g, first + t * WLEN, COMBINE_LINES,
                           padded);
    const int64_t rest = L->lines - t, col0 = first + t * WLEN;
    switch (rest) { /* rest < COMBINE_LINES */
#define COMBINE_CASE(c)                                                                  \
    case c:                                                                              \
        if (c < COMBINE_LINES)                                                           \
            FN(combine_lines_)(Z, n, idx, coef, count, scale, g, col0, c, padded);        \
        break
    COMBINE_CASE(1); COMBINE_CASE(2); COMBINE_CASE(3); COMBINE_CASE(4);
    COMBINE_CASE(5); COMBINE_CASE(6); COMBINE_CASE(7); COMBINE_CASE(8);
    COMBINE_CASE(9); COMBINE_CASE(10); COMBINE_CASE(11);
#undef COMBINE_CASE
    default: break;
    }
}

/*
 * The same two sums, bit for bit, for a row z laid out as L says, read with
 * aligned loads only. w and ws are copies that lie at the same place within
 * a line as z, with at least WLEN zeros before them and LANES after. The
 * first and last lines are shared with the neighbouring rows when
 * L->shared (their values are masked off), so z must then not be the
 * first or last row of Z. Line t of the row goes to accumulator t mod 2:
 * the lanes are rotated, which the fold ignores.
 *
 * The loop over pairs starts at the row's first line and, unless the last
 * line needs its mask, ends at its last: then every load in it steps by
 * two lines from one iteration to the next, across rows too, and the
 * hardware's per-instruction stride prefetcher stays trained; peeling the
 * first and last lines off would break that stride (docs/performance.rst, section
 * "Loops whose loads stride evenly"). The first line's mask is
 * therefore applied inside the loop, to the first iteration only.
 *
 * With next not NULL, also next[j] = u[j] + c * z[j] in the same pass over
 * the lines: the sum of Z^T a so far with this row added, kept only if the
 * row turns out to lie inside the window (sample_onepass_). The same
 * additions in the same order as rows_combine_lines_; the masks keep the
 * neighbouring rows' values out, whatever they hold. (The function is
 * inlined, so a NULL next costs nothing. In sample_onepass_ the test on
 * next stays in the loop, as the pointers are swapped through integers;
 * a constant flag in its place was no faster.)
 */
#define ADD_ROW(ZZ, J)                                                              \
    do {                                                                            \
        if (next != NULL)                                                           \
            FN(l_store_)(next + (J), FN(l_scale_add_)(FN(l_load_)(u + (J)), c, (ZZ))); \
    } while (0)

STEFAST_INLINE void FN(dot2_lines_)(const T *restrict z, const T *restrict w,
                                    const T *restrict ws, const FN(lines_) *L,
                                    int64_t prefetch, T c, const T *restrict u,
                                    T *restrict next, T *d, T *ds)
{
    FN(line_) a0 = FN(l_zero_)(), a1 = a0, b0 = a0, b1 = a0;
    z += L->first;
    w += L->first;
    ws += L->first;
    if (next != NULL) {
        u += L->first;
        next += L->first;
    }
    const FN(mask_) all = FN(m_not_)((FN(mask_)){0});
    FN(mask_) keep = L->first_keep;
    int64_t j = 0;
    for (int64_t k = 0; k < L->pairs; k++, j += LANES) {
        FN(prefetch_)(z + j, prefetch);
        FN(prefetch_)(z + j + WLEN, prefetch);
        const FN(line_) z0 = FN(l_keep_)(FN(l_load_once_)(z + j), keep);
        const FN(line_) z1 = FN(l_load_once_)(z + j + WLEN);
        keep = all;
        a0 = FN(l_mac_)(a0, z0, FN(l_load_)(w + j));
        a1 = FN(l_mac_)(a1, z1, FN(l_load_)(w + j + WLEN));
        b0 = FN(l_mac_)(b0, z0, FN(l_load_)(ws + j));
        b1 = FN(l_mac_)(b1, z1, FN(l_load_)(ws + j + WLEN));
        ADD_ROW(z0, j);
        ADD_ROW(z1, j + WLEN);
    }
    if (L->rest > 0) {
        FN(prefetch_)(z + j, prefetch);
        FN(line_) z0 = FN(l_load_once_)(z + j);
        z0 = FN(l_keep_)(z0, L->rest == 1 ? L->last_keep : all);
        a0 = FN(l_mac_)(a0, z0, FN(l_load_)(w + j));
        b0 = FN(l_mac_)(b0, z0, FN(l_load_)(ws + j));
        ADD_ROW(z0, j);
        if (L->rest == 2) {
            FN(prefetch_)(z + j + WLEN, prefetch);
            const FN(line_) z1 = FN(l_keep_)(FN(l_load_once_)(z + j + WLEN), L->last_keep);
            a1 = FN(l_mac_)(a1, z1, FN(l_load_)(w + j + WLEN));
            b1 = FN(l_mac_)(b1, z1, FN(l_load_)(ws + j + WLEN));
            ADD_ROW(z1, j + WLEN);
        }
    }
    FN(fold2_)(a0, a1, b0, b1, d, ds);
}
#undef ADD_ROW

/*
 * What a sample needs besides Z. v, vs: the caller's vectors. w, ws: when
 * lines is NULL any copies of w and w_star, and the rows are read by dot2_;
 * otherwise copies placed as dot2_lines_ requires, and rows are read with
 * aligned loads. u, u_next: NULL, or two buffers for Z^T a in one pass
 * (sample_onepass_), placed like w (WLEN values before each and LANES after
 * belong to it too). prefetch: bytes ahead of the first pass to prefetch
 * (0: none). edge_row: with u, a buffer placed like them for a copy of the
 * first or the last row of Z (sample_onepass_).
 */
typedef struct {
    const T *v, *vs, *w, *ws;
    int64_t m, n;
    stefast_ste ste;
    const FN(lines_) *lines;
    T *u, *u_next;
    int64_t prefetch;
    T *edge_row;
    const stefast_surrogate *sur; /* NULL: the named window ste; else this
                                     surrogate (then u is NULL) */
} FN(model_);

/*
 * From z.w (zw[i]) and z.ws (zw[m + i]) of every row: the residual r, which
 * it returns, *loss = r^2 / 2 and grad_v. grad_v in a loop of its own,
 * which vectorises: the callers' vector reads of grad_v could not be
 * forwarded from one store per value.
 */
STEFAST_INLINE T FN(residual_)(const T *restrict zw, const T *restrict v, const T *restrict vs,
                               int64_t m, T *restrict loss, T *restrict grad_v)
{
    const T r = FN(sum_where_positive_)(zw, v, m) - FN(sum_where_positive_)(zw + m, vs, m);
    *loss = (T)0.5 * r * r;
    for (int64_t i = 0; i < m; i++) grad_v[i] = FN(keep_if_)(zw[i] > 0, r);
    return r;
}

/* sample_'s flags: Z is the first or the last sample of the batch (or
 * both); grad_w is padded as store_columns_ says */
#define SAMPLE_FIRST 1
#define SAMPLE_LAST 2
#define SAMPLE_PADDED_GW 4

/*
 * Z^T a with a = mu'(Z w) v r is computed as r * (sum of v_i z_i over the
 * rows inside the window), in the one pass over the sample: while a row is
 * read, the sum so far plus that row goes into the other buffer, and the
 * buffers trade places (a select, not a branch) when the row turns out to
 * lie inside the window. A second pass over the listed rows (the sample
 * has left L1), adding each row in while reading the next (rows read back
 * behind the stream slow it) and a branch that skips rows outside the
 * window (it mispredicts half the time) were all slower or no faster
 * (docs/performance.rst, section "One pass for long rows").
 *
 * The first row of the batch's first sample and the last row of its last
 * share a line with memory outside Z when the rows start off a line; those
 * are read from a copy placed like the others (same bits); reading them
 * unaligned instead would send those samples down the slower two-pass path.
 */
STEFAST_INLINE void FN(sample_onepass_)(const FN(model_) *M, const T *restrict Z, int flags,
                                        T *restrict zw, T *restrict loss,
                                        T *restrict grad_v, T *restrict grad_w)
{
    const int64_t m = M->m, n = M->n;
    const T *restrict v = M->v, *restrict vs = M->vs;
    const FN(lines_) *L = M->lines;
    T *u = M->u, *next = M->u_next;
    memset(u, 0, (size_t)n * sizeof(T)); /* the pads around u only ever get +0 */
    T *restrict zws = zw + m;
    int any_active = 0;
    for (int64_t i = 0; i < m; i++) {
        T d, ds;
        const T *z = Z + i * n;
        if (L->shared && ((i == 0 && (flags & SAMPLE_FIRST)) || (i == m - 1 && (flags & SAMPLE_LAST)))) {
            memcpy(M->edge_row, z, (size_t)n * sizeof(T));
            z = M->edge_row;
        }
        FN(dot2_lines_)(z, M->w, M->ws, L, M->prefetch, v[i], u, next, &d, &ds);
        zw[i] = d;
        zws[i] = ds;
        const int active = FN(in_window_)(d, M->ste);
        any_active |= active;
        /* swap u and next if active, by masking the pointers' bits */
        const uintptr_t swap = ((uintptr_t)u ^ (uintptr_t)next) & ((uintptr_t)0 - (uintptr_t)active);
        u = (T *)((uintptr_t)u ^ swap);
        next = (T *)((uintptr_t)next ^ swap);
    }
    const T r = FN(residual_)(zw, v, vs, m, loss, grad_v);
    const T scale = any_active ? r : (T)1; /* as in sample_ */
    for (int64_t j = 0; j < n; j++) grad_w[j] = u[j] * scale;
    /* r = 0: g = sum_i z_i (v_i r) is 0 as the reference computes it, but
     * r (sum_i v_i z_i) is 0 inf = NaN where that sum overflowed; such
     * columns are summed again the reference's way (NaN then only from a
     * non-finite z) */
    if (r == 0 && any_active) {
        for (int64_t j = 0; j < n; j++) {
            if (grad_w[j] == grad_w[j]) continue;
            T g = 0;
            for (int64_t i = 0; i < m; i++)
                if (FN(in_window_)(zw[i], M->ste)) g += Z[i * n + j] * (v[i] * r);
            grad_w[j] = g;
        }
    }
}

/* List the rows whose z.w (zw[i]) lies in the window and their v_i: idx
 * and zw get them in row order, zw overwritten behind the reads (the count
 * listed <= i). Returns the count. */
STEFAST_INLINE int64_t FN(list_rows_)(T *restrict zw, const T *restrict v, int64_t m,
                                      int64_t *restrict idx, const stefast_ste ste)
{
    int64_t active = 0;
    for (int64_t i = 0; i < m; i++) {
        const T d = zw[i];
        idx[active] = i;
        zw[active] = v[i];
        active += FN(in_window_)(d, ste);
    }
    return active;
}

/* mu[i] = mu'(x[i]) of surrogate s for i < m, evaluated in double (surrogate.h)
 * and rounded to T. */
STEFAST_INLINE void FN(surrogate_rows_)(const stefast_surrogate *s, const T *restrict x,
                                        T *restrict mu, int64_t m)
{
    double xb[STEFAST_SURROGATE_BLOCK], mb[STEFAST_SURROGATE_BLOCK];
    for (int64_t i0 = 0; i0 < m; i0 += STEFAST_SURROGATE_BLOCK) {
        const int64_t len = m - i0 < STEFAST_SURROGATE_BLOCK ? m - i0 : STEFAST_SURROGATE_BLOCK;
        for (int64_t k = 0; k < len; k++) xb[k] = (double)x[i0 + k];
        stefast_surrogate_block_(s, xb, mb, len);
        for (int64_t k = 0; k < len; k++) mu[i0 + k] = (T)mb[k];
    }
}

/* list_rows_ for a registry surrogate: the rows where mu'(z.w) != 0, with
 * coefficient mu'(z.w) v_i. zw holds z.w (m) and then z.ws (m), which is
 * spent once the residual is known and takes mu' here. */
STEFAST_INLINE int64_t FN(list_rows_surrogate_)(T *restrict zw, const T *restrict v, int64_t m,
                                                int64_t *restrict idx,
                                                const stefast_surrogate *s)
{
    T *restrict mu = zw + m;
    FN(surrogate_rows_)(s, zw, mu, m);
    int64_t active = 0;
    for (int64_t i = 0; i < m; i++) {
        idx[active] = i;
        zw[active] = mu[i] * v[i];
        active += mu[i] != 0;
    }
    return active;
}

/*
 * One sample: Z (m, n) IN; idx (m) scratch; zw (2 m) scratch; loss (1),
 * grad_v (m), grad_w (n) OUT in T. flags: SAMPLE_FIRST and/or SAMPLE_LAST
 * when Z is the first or the last sample of the whole batch, whose outer
 * lines may belong to nobody (then read from a copy in one pass, or only by
 * dot2_ otherwise: samples that small are many, and the same result);
 * with SAMPLE_PADDED_GW, grad_w is padded as store_columns_ says.
 *
 * Rows outside the surrogate's window are skipped in Z^T a (they add exactly
 * nothing, even when non-finite), so the second pass visits only the active
 * rows, listed without branches first. The conditional sums are selects, not
 * branches: the signs of z.w are random and would defeat branch prediction.
 */
STEFAST_INLINE void FN(sample_)(const FN(model_) *M, const T *restrict Z, int flags,
                                int64_t *restrict idx, T *restrict zw,
                                T *restrict loss, T *restrict grad_v,
                                T *restrict grad_w)
{
    const int64_t m = M->m, n = M->n;
    const T *restrict v = M->v, *restrict vs = M->vs;
    const FN(lines_) *L = M->lines;
    if (L != NULL && M->u != NULL) {
        FN(sample_onepass_)(M, Z, flags, zw, loss, grad_v, grad_w);
        return;
    }
    if (L != NULL && (flags & (SAMPLE_FIRST | SAMPLE_LAST)) && L->shared) L = NULL;
    T *restrict zws = zw + m; /* z.w in zw[i], z.ws in zws[i] */
    if (L != NULL && L->lines <= SMALL_LINES) {
        /* LS: how the rows are read. Rows of at most 4 lines that start
         * off a line are read where they lie, with loads that straddle two
         * lines, not as one line more with its ends masked off: rows that
         * short are bound by arithmetic, which the extra line adds a
         * quarter or a third to. The same bits (only the lanes' rotation
         * changes); at 5 lines it no longer pays (docs/performance.rst, section
         * "Aligned loads wherever Z starts"). */
        FN(lines_) whole;
        const FN(lines_) *LS = L;
        if (L->shared && n / WLEN <= 4) {
            FN(lines_init_)(&whole, 0, n);
            LS = &whole;
        }
        /* W[t], S[t]: line t of the copies; [SMALL_LINES]: the last one */
        FN(line_) W[SMALL_LINES + 1], S[SMALL_LINES + 1];
        const int64_t first = LS->first;
#pragma GCC unroll 16
        for (int t = 0; t < SMALL_LINES; t++) {
            W[t] = t < LS->lines ? FN(l_load_)(M->w + first + t * WLEN) : FN(l_zero_)();
            S[t] = t < LS->lines ? FN(l_load_)(M->ws + first + t * WLEN) : FN(l_zero_)();
        }
        W[SMALL_LINES] = FN(l_load_)(M->w + first + (LS->lines - 1) * WLEN);
        S[SMALL_LINES] = FN(l_load_)(M->ws + first + (LS->lines - 1) * WLEN);
        for (int64_t i = 0; i < m; i++)
            FN(dot2_small_)(Z + i * n, W, S, LS, M->prefetch, zw + i, zws + i);
    } else
    for (int64_t i = 0; i < m; i++) {
        if (L != NULL)
            FN(dot2_lines_)(Z + i * n, M->w, M->ws, L, M->prefetch, 0, NULL, NULL, zw + i, zws + i);
        else
            FN(dot2_)(Z + i * n, M->w, M->ws, n, M->prefetch, zw + i, zws + i);
    }
    const T r = FN(residual_)(zw, v, vs, m, loss, grad_v);
    int64_t active = 0;
    if (M->sur != NULL)
        active = FN(list_rows_surrogate_)(zw, v, m, idx, M->sur);
    else
    switch (M->ste) { /* one loop per surrogate, none branching on it */
    case STEFAST_STE_IDENTITY: active = FN(list_rows_)(zw, v, m, idx, STEFAST_STE_IDENTITY); break;
    case STEFAST_STE_RELU: active = FN(list_rows_)(zw, v, m, idx, STEFAST_STE_RELU); break;
    case STEFAST_STE_CLIPPED_RELU: active = FN(list_rows_)(zw, v, m, idx, STEFAST_STE_CLIPPED_RELU); break;
    default: active = FN(list_rows_)(zw, v, m, idx, STEFAST_STE_HARDTANH); break;
    }
    /* no row in the window: g = 0 exactly, even for a non-finite r. r = 0:
     * the coefficients become v_i r, as in the reference, so that a sum of
     * v_i z_i that overflows cannot make 0 inf = NaN (sample_onepass_) */
    if (r == 0)
        for (int64_t k = 0; k < active; k++) zw[k] *= r;
    const T scale = active > 0 && r != 0 ? r : (T)1;
    if (L != NULL)
        FN(rows_combine_lines_)(Z, n, idx, zw, active, scale, grad_w, L, flags & SAMPLE_PADDED_GW);
    else
        FN(rows_combine_)(Z, n, idx, zw, active, scale, grad_w);
}
