/*
 * model.c -- the binarized two-layer model y = v^T sigma(Z w): forward pass,
 * sample loss, exact dl/dv and the STE coarse gradient (MATH.md section 2).
 *
 * Design. One fused pass per sample: each row z_i of Z is read once to form
 * both z_i.w and z_i.w_star; the residual r follows; then g = Z^T a with
 * a_i = mu'(z_i.w) v_i r is accumulated over the rows inside the window,
 * column block by column block, while the sample (m*n values, 16 KiB at
 * m=32, n=64 in double) is still in L1/L2 (sample_impl.h). The batch is
 * cut into chunks that depend only on B (internal.h); threads take whole
 * chunks, and batch sums are kept per chunk in double and combined in chunk
 * order, so the result is the same for any thread count.
 */
#include <stdlib.h>
#include <string.h>

#include "stefast.h"
#include "internal.h"

#define T double
#define SUF _d
#include "model_impl.h"
#undef T
#undef SUF

#define T float
#define SUF _f
#include "model_impl.h"
#undef T
#undef SUF
