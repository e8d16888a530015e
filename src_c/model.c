/*
 * model.c -- the binarized two-layer model y = v^T sigma(Z w): forward pass,
 * sample loss, exact dl/dv and the STE coarse gradient (MATH.md section 2).
 *
 * Design. One fused pass per sample: each row z_i of Z is read once to form
 * both z_i.w and z_i.w_star, with aligned loads wherever Z starts (rows a
 * whole number of cache lines long) and prefetching ahead; the residual r
 * follows. g = Z^T a with a_i = mu'(z_i.w) v_i r is r * (sum of v_i z_i over
 * the rows inside the window): for samples that stay in L1 a second pass
 * over those rows, column block by column block; for larger ones with long
 * rows, in the same pass, each row added into a second buffer while it is
 * read and kept if it lies in the window (sample_impl.h). The batch is cut into
 * chunks that depend only on B (internal.h); threads take whole chunks, and
 * batch sums are kept per chunk in double and combined in chunk order, so
 * the result is the same for any thread count.
 */
#include <stdlib.h>
#include <string.h>

#include "stefast.h"
#include "internal.h"

#define T double
#define TI int64_t /* the signed integer of T's size */
#define SUF _d
#include "model_impl.h"
#undef T
#undef TI
#undef SUF

#define T float
#define TI int32_t
#define SUF _f
#include "model_impl.h"
#undef T
#undef TI
#undef SUF
