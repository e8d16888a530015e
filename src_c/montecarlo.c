/*
 * montecarlo.c -- Monte Carlo estimates of E[loss], E[dl/dv] and E[g_mu]
 * with standard errors (docs/math.rst,
 * section "Monte Carlo samplers").
 *
 * Design. A sample is the unit of randomness: sample b draws its normals
 * from stream b of the generator (normal_impl.h), so its
 * value depends only on (key, b). Samples are grouped in blocks of a fixed
 * size; OpenMP threads take whole blocks, each block keeps shifted sums
 * (shift = its first sample) in double, and the blocks are folded into the
 * running (count, mean, M2) in block order after the parallel loop. Nothing
 * depends on the thread count, and a run split into several calls (the
 * Python layer's super-blocks, for progress and Ctrl-C) gives the same bits
 * as one call as long as every call but the last covers whole blocks.
 *
 * Methods, per sample:
 *   full         Z (m x n) generated into a cache-resident buffer, then the
 *                fused forward/backward of sample_impl.h (the same code as
 *                stefast_loss_and_grads);
 *   projected    S = Z Q^T (m x k, k <= 2) and xi (n): g = Q^T(c - |a| Q xi)
 *                + |a| xi with c = S^T a; identical in distribution to full;
 *   conditional  only S: the Rao-Blackwell mean E[g | S] = Q^T c. Only c (k
 *                numbers, and c_0 + c_1 for the covariance) is accumulated:
 *                O(m) work per sample; the caller maps it back through Q.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stefast.h"
#include "internal.h"
#include "normal_impl.h"

int64_t stefast_mc_width(stefast_mc_method method, int64_t m, int64_t n, int64_t k)
{
    if (m < 1 || n < 1 || k < 0 || k > 2) return -1;
    switch (method) {
    case STEFAST_MC_FULL:
    case STEFAST_MC_PROJECTED: return 1 + m + n;
    case STEFAST_MC_CONDITIONAL: return 1 + m + k + (k == 2);
    default: return -1;
    }
}

#define T double
#define TI int64_t /* the signed integer of T's size */
#define LINE_WIDE 0 /* its samples are in L1: halves in every clone (sample_impl.h) */
#define SUF _d
#define NORMAL_CHUNK_FN stefast_normal_chunk_d_
#define NORMAL_CHUNK ((int64_t)STEFAST_NORMAL_CHUNK_D)
#include "montecarlo_impl.h"
#undef T
#undef TI
#undef LINE_WIDE
#undef SUF
#undef NORMAL_CHUNK_FN
#undef NORMAL_CHUNK

#define T float
#define TI int32_t
#define LINE_WIDE 0
#define SUF _f
#define NORMAL_CHUNK_FN stefast_normal_chunk_f_
#define NORMAL_CHUNK ((int64_t)STEFAST_NORMAL_CHUNK_F)
#include "montecarlo_impl.h"
#undef T
#undef TI
#undef LINE_WIDE
#undef SUF
#undef NORMAL_CHUNK_FN
#undef NORMAL_CHUNK
