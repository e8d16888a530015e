/*
 * descent.c -- many independent runs of coarse gradient descent (Algorithm 1
 * on a finite training set or on fresh samples), threaded over runs.
 *
 * Design. A run is the unit of work and of randomness: run r draws from
 * stream r of the Gaussian generator (its training set, then its label
 * noise; or, online, each step's batch and its noise), and shuffles its
 * epochs with Threefry at counters (r, epoch * N + i) under a key of its
 * own domain. A thread owns a run from start to end, with only that run's
 * data in its scratch, so the results are bitwise the same for any thread
 * count and equal to running the runs one call at a time. Each step sums
 * loss and gradients in double over the batch: through the model kernel
 * (stefast_loss_and_grads_sum_*) when the labels are the teacher's, by a
 * plain loop when labels are given or noisy; the mean gradient updates v
 * and w in double, rounded to the run's precision (docs/math.rst, section
 * "Algorithm 1").
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stefast.h"
#include "internal.h"
#include "normal_impl.h"
#include "surrogate.h"

/* Threefry key domain of the epoch shuffles ("shuffle" in ASCII), so that
 * their counters never meet the normal generator's */
#define STEFAST_SHUFFLE_DOMAIN UINT64_C(0x73687566666c65)

/* mu'(x) of a named window; x in double is exact for either precision */
STEFAST_INLINE int in_window_(double x, stefast_ste ste)
{
    switch (ste) {
    case STEFAST_STE_IDENTITY: return 1;
    case STEFAST_STE_RELU: return x > 0;
    case STEFAST_STE_CLIPPED_RELU: return x > 0 && x < 1;
    default: return x >= -1 && x <= 1;
    }
}

/* mu'(x) of the options' surrogate: a named window or a registry one
 * (evaluated in double as surrogate.h says) */
STEFAST_INLINE double mu_prime_(double x, const stefast_descent_options *opt)
{
    if (opt->surrogate == NULL) return in_window_(x, opt->ste);
    double mu;
    stefast_surrogate_block_(opt->surrogate, &x, &mu, 1);
    return mu;
}

#define T double
#define SUF _d
#define NORMAL_CHUNK_FN stefast_normal_chunk_d_
#define NORMAL_CHUNK ((int64_t)STEFAST_NORMAL_CHUNK_D)
#define LOSS_SUM_FN stefast_loss_and_grads_sum_d
#define LOSS_SUM_SURROGATE_FN stefast_loss_and_grads_sum_surrogate_d
#include "descent_impl.h"
#undef LOSS_SUM_SURROGATE_FN
#undef T
#undef SUF
#undef NORMAL_CHUNK_FN
#undef NORMAL_CHUNK
#undef LOSS_SUM_FN

#define T float
#define SUF _f
#define NORMAL_CHUNK_FN stefast_normal_chunk_f_
#define NORMAL_CHUNK ((int64_t)STEFAST_NORMAL_CHUNK_F)
#define LOSS_SUM_FN stefast_loss_and_grads_sum_f
#define LOSS_SUM_SURROGATE_FN stefast_loss_and_grads_sum_surrogate_f
#include "descent_impl.h"
#undef LOSS_SUM_SURROGATE_FN
#undef T
#undef SUF
#undef NORMAL_CHUNK_FN
#undef NORMAL_CHUNK
#undef LOSS_SUM_FN
