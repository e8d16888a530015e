/*
 * stefast.h -- public C API of stefast.
 *
 * Plain C99, no Python or NumPy: a simulator written in C can include this
 * header and link the kernels directly (see tests/c_api_test.c).
 *
 * Conventions shared by every function:
 *   - arrays are C-contiguous; a batch of B samples Z is B*m*n values, sample
 *     b at Z + b*m*n, row i of it at Z + (b*m + i)*n;
 *   - indices and sizes are int64_t (no 2^31 limits);
 *   - `_d` functions take double, `_f` functions take float; both compute one
 *     sample in its own precision and accumulate batch sums in double;
 *   - the result never depends on `threads`: the batch is cut into chunks
 *     whose size depends only on B, each chunk is summed sequentially, and the
 *     chunk sums are combined in chunk order;
 *   - functions return a stefast_status; on error the outputs are unspecified.
 *   - sigma(x) = 1[x > 0], so sigma(0) = 0 and sigma(NaN) = 0.
 */
#ifndef STEFAST_H
#define STEFAST_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* libstefast.a is compiled with -fvisibility=hidden: the functions declared
 * here are the only ones it leaves global (setup.py; tests/test_embed.py checks it). */
#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility push(default)
#endif

/* The version of this header. stefast_version() gives the library's, which
 * differs only if a program links another stefast than it was compiled with. */
#define STEFAST_VERSION_MAJOR 0
#define STEFAST_VERSION_MINOR 1
#define STEFAST_VERSION_PATCH 0

/* "MAJOR.MINOR.PATCH" of the library (a static string). */
const char *stefast_version(void);

typedef enum {
    STEFAST_OK = 0,
    STEFAST_EINVAL = 1,  /* a size is negative or an enum value is unknown */
    STEFAST_ENOMEM = 2,  /* scratch memory could not be allocated */
    STEFAST_EINTR = 3    /* a long run was stopped by the interrupt flag (below) */
} stefast_status;

/* A short description of status, for messages (a static string; codes not
 * listed above give "unknown stefast status"). Thread-safe. */
const char *stefast_strerror(stefast_status status);

/* ---- interrupting long runs (src_c/interrupt.c) ------------------------- */

/*
 * One process-wide flag stops the long runs early: stefast_mc_accumulate_*
 * poll it before each block of samples and stefast_descent_ensemble_* before
 * each step of each run, and return STEFAST_EINTR once they see it set (what
 * they leave in their outputs is documented with them). It stays set until
 * stefast_clear_interrupt(), so every run in progress stops, and a call made
 * while it is set returns STEFAST_EINTR after checking its arguments, without
 * doing the work. Other functions never look at it.
 *
 * Thread-safe and async-signal-safe (lock-free): a SIGINT handler may call
 * stefast_request_interrupt(), as may another thread. The Python package
 * never sets the flag: its own Ctrl-C stops between C calls.
 */
void stefast_request_interrupt(void);
void stefast_clear_interrupt(void);
/* 1 while the flag is set, else 0. */
int stefast_interrupt_requested(void);

/* Straight-through surrogates mu'(x); the window ends are part of the API. */
typedef enum {
    STEFAST_STE_IDENTITY = 0,      /* 1                 */
    STEFAST_STE_RELU = 1,          /* 1[x > 0]          */
    STEFAST_STE_CLIPPED_RELU = 2,  /* 1[0 < x < 1]      */
    STEFAST_STE_HARDTANH = 3       /* 1[-1 <= x <= 1]   */
} stefast_ste;

/*
 * Surrogates beyond the four named windows (stefast.surrogates in Python):
 * a closed set of kinds with parameters. mu'(x) is evaluated in double
 * (from x converted to double) and rounded to the function's precision;
 * NaN is outside every support (mu' = 0) except a window of the whole line.
 * Every function taking one returns STEFAST_EINVAL for a kind it does not
 * know or a malformed piecewise polynomial.
 */
typedef enum {
    /* p = {lo, hi, ends, height}: height on the window, 0 elsewhere; ends
     * bit 0: lo belongs to it, bit 1: hi does; lo = -inf and hi = +inf:
     * everywhere, NaN included */
    STEFAST_SURROGATE_WINDOW = 0,
    /* sum_k coefficients[i*(degree+1) + k] x^k on [breakpoints[i],
     * breakpoints[i+1]), by Horner from the highest power; 0 outside */
    STEFAST_SURROGATE_PIECEWISE = 1,
    /* p = {rate, height, offset}: height t / (1 + t)^2 + offset with
     * t = exp(-rate |x|) (the sigmoid's and tanh's derivatives) */
    STEFAST_SURROGATE_LOGISTIC = 2,
    /* p = {beta, scale}: Larq's swish_sign, scale beta (2 - y (1 - t) / (1 + t))
     * 2 t / (1 + t)^2 with y = beta |x|, t = exp(-y); 0 where t = 0 */
    STEFAST_SURROGATE_SWISH = 3
} stefast_surrogate_kind;

typedef struct {
    stefast_surrogate_kind kind;
    double p[4];                /* parameters of the kind (above) */
    int64_t pieces, degree;     /* PIECEWISE: pieces >= 1, 0 <= degree <= 8 */
    const double *breakpoints;  /* PIECEWISE: pieces + 1 increasing values */
    const double *coefficients; /* PIECEWISE: pieces * (degree + 1) values */
} stefast_surrogate;

/* ---- elementwise ------------------------------------------------------ */

/* out[k] = 1[x[k] > 0].  x: IN, len values; out: OUT, len values (may alias x). */
stefast_status stefast_binarize_d(const double *x, double *out, int64_t len);
stefast_status stefast_binarize_f(const float *x, float *out, int64_t len);

/* out[k] = +1 if x[k] >= 0, -1 if x[k] < 0, NaN if x[k] is NaN. */
stefast_status stefast_sign_d(const double *x, double *out, int64_t len);
stefast_status stefast_sign_f(const float *x, float *out, int64_t len);

/* out[k] = grad[k] if mu'(x[k]) = 1 else 0 (exactly 0, even for inf/NaN grad).
 * x, grad: IN, len values; out: OUT, len values (may alias grad). */
stefast_status stefast_ste_grad_d(const double *x, const double *grad, double *out,
                                  int64_t len, stefast_ste ste);
stefast_status stefast_ste_grad_f(const float *x, const float *grad, float *out,
                                  int64_t len, stefast_ste ste);

/* out[k] = grad[k] * mu'(x[k]) where mu'(x[k]) != 0, else exactly 0 (even
 * for inf/NaN grad), for a registry surrogate s (IN). */
stefast_status stefast_ste_grad_surrogate_d(const double *x, const double *grad, double *out,
                                 int64_t len, const stefast_surrogate *s);
stefast_status stefast_ste_grad_surrogate_f(const float *x, const float *grad, float *out,
                                 int64_t len, const stefast_surrogate *s);

/* ---- the two-layer binarized model y = v^T sigma(Z w) -------------------- */

/* y[b] = v^T sigma(Z_b w) for b < B.
 * Z: IN (B, m, n); v: IN (m); w: IN (n); y: OUT (B); threads >= 1. */
stefast_status stefast_forward_d(const double *Z, const double *v, const double *w,
                                 int64_t B, int64_t m, int64_t n, double *y, int threads);
stefast_status stefast_forward_f(const float *Z, const float *v, const float *w,
                                 int64_t B, int64_t m, int64_t n, float *y, int threads);

/* Per-sample loss and gradients (docs/math.rst, section "Gradients of one
 * sample"), with
 * r_b = v^T sigma(Z_b w) - v_star^T sigma(Z_b w_star):
 *   loss[b]          = r_b^2 / 2
 *   grad_v[b*m + i]  = sigma(z_bi . w) r_b               (exact dl/dv)
 *   grad_w[b*n + j]  = sum_i Z_bij mu'(z_bi . w) v_i r_b (coarse gradient)
 * Z: IN (B, m, n); v, v_star: IN (m); w, w_star: IN (n);
 * loss: OUT (B); grad_v: OUT (B, m); grad_w: OUT (B, n). */
stefast_status stefast_loss_and_grads_d(const double *Z, const double *v, const double *w,
                                        const double *v_star, const double *w_star,
                                        int64_t B, int64_t m, int64_t n, stefast_ste ste,
                                        double *loss, double *grad_v, double *grad_w,
                                        int threads);
stefast_status stefast_loss_and_grads_f(const float *Z, const float *v, const float *w,
                                        const float *v_star, const float *w_star,
                                        int64_t B, int64_t m, int64_t n, stefast_ste ste,
                                        float *loss, float *grad_v, float *grad_w,
                                        int threads);

/* The same quantities summed over the batch, in double whatever the input:
 * loss_sum: OUT (1); grad_v_sum: OUT (m); grad_w_sum: OUT (n).
 * B = 0 gives zeros. */
stefast_status stefast_loss_and_grads_sum_d(const double *Z, const double *v, const double *w,
                                            const double *v_star, const double *w_star,
                                            int64_t B, int64_t m, int64_t n, stefast_ste ste,
                                            double *loss_sum, double *grad_v_sum,
                                            double *grad_w_sum, int threads);
stefast_status stefast_loss_and_grads_sum_f(const float *Z, const float *v, const float *w,
                                            const float *v_star, const float *w_star,
                                            int64_t B, int64_t m, int64_t n, stefast_ste ste,
                                            double *loss_sum, double *grad_v_sum,
                                            double *grad_w_sum, int threads);

/* stefast_loss_and_grads_* and stefast_loss_and_grads_sum_* with a registry
 * surrogate s (IN) in place of a named window: grad_w sums
 * Z_bij (mu'(z_bi . w) v_i) r_b over the rows where mu' != 0. */
stefast_status stefast_loss_and_grads_surrogate_d(const double *Z, const double *v, const double *w,
                                       const double *v_star, const double *w_star,
                                       int64_t B, int64_t m, int64_t n,
                                       const stefast_surrogate *s, double *loss,
                                       double *grad_v, double *grad_w, int threads);
stefast_status stefast_loss_and_grads_surrogate_f(const float *Z, const float *v, const float *w,
                                       const float *v_star, const float *w_star,
                                       int64_t B, int64_t m, int64_t n,
                                       const stefast_surrogate *s, float *loss,
                                       float *grad_v, float *grad_w, int threads);
stefast_status stefast_loss_and_grads_sum_surrogate_d(const double *Z, const double *v, const double *w,
                                           const double *v_star, const double *w_star,
                                           int64_t B, int64_t m, int64_t n,
                                           const stefast_surrogate *s, double *loss_sum,
                                           double *grad_v_sum, double *grad_w_sum,
                                           int threads);
stefast_status stefast_loss_and_grads_sum_surrogate_f(const float *Z, const float *v, const float *w,
                                           const float *v_star, const float *w_star,
                                           int64_t B, int64_t m, int64_t n,
                                           const stefast_surrogate *s, double *loss_sum,
                                           double *grad_v_sum, double *grad_w_sum,
                                           int threads);

/* ---- quantized ReLU (src_c/quantize.c) --------------------------------- */

/* Levels of the b-bit quantized ReLU are alpha*k, k in {0..L}, L = 2^b - 1. */
typedef enum {
    STEFAST_ROUND_CEIL = 0,     /* k = clip(ceil(x/alpha), 0, L): the paper's form */
    STEFAST_ROUND_NEAREST = 1   /* nearest level, ties up, clipped at L alpha     */
} stefast_rounding;

/* How dq/dalpha is taken in the backward pass (u = x/alpha, k the level). */
typedef enum {
    STEFAST_ALPHA_GRAD_EXACT = 0,  /* k: exact wherever x is off a level boundary */
    STEFAST_ALPHA_GRAD_LSQ = 1     /* k - u for 0 < x < L alpha, else k          */
} stefast_alpha_grad;

/* out[i] = alpha * k(x[i]); NaN -> NaN, +inf -> L alpha, -inf -> 0.
 * x: IN, len values; out: OUT, len values (may alias x); bits in [1, 62];
 * alpha finite and > 0, otherwise STEFAST_EINVAL. */
stefast_status stefast_quantized_relu_d(const double *x, double *out, int64_t len,
                                        int bits, double alpha, stefast_rounding rounding);
stefast_status stefast_quantized_relu_f(const float *x, float *out, int64_t len,
                                        int bits, double alpha, stefast_rounding rounding);

/* grad_x[i] = grad[i] if mu'(x[i]) = 1 else exactly 0, with the windows
 * identity 1, relu 1[x > 0], clipped_relu 1[0 < x < L alpha] (hardtanh is
 * EINVAL here); *grad_alpha = sum_i grad[i] dq/dalpha(x[i]), in double.
 * x, grad: IN, len values; grad_x: OUT, len values (may alias grad, NULL
 * skips it); grad_alpha: OUT, one double (NULL skips it). */
stefast_status stefast_quantized_relu_grad_d(const double *x, const double *grad,
                                             double *grad_x, double *grad_alpha,
                                             int64_t len, int bits, double alpha,
                                             stefast_rounding rounding, stefast_ste ste,
                                             stefast_alpha_grad alpha_grad);
stefast_status stefast_quantized_relu_grad_f(const float *x, const float *grad,
                                             float *grad_x, double *grad_alpha,
                                             int64_t len, int bits, double alpha,
                                             stefast_rounding rounding, stefast_ste ste,
                                             stefast_alpha_grad alpha_grad);

/* ---- Gaussian sampling and Monte Carlo (src_c/rng.c, src_c/montecarlo.c) */

/*
 * Standard normals are a pure function of (key, stream, index): each stream
 * runs 16 xoshiro256++ lanes seeded by the counter-based Threefry2x64-20
 * (Salmon et al., SC'11) at counters (j, stream); float64 values come from a
 * ziggurat, float32 values from Box-Muller. Design and bit-level layout:
 * src_c/normal_impl.h. Every CPU dispatch clone gives identical bits.
 */

/* The Threefry2x64-20 block function, exposed for known-answer tests.
 * ctr: IN (2 words); key: IN (2 words); out: OUT (2 words). */
void stefast_threefry2x64_20(const uint64_t ctr[2], const uint64_t key[2],
                             uint64_t out[2]);

/* out[i*stream_len + t] = standard normal number t of stream
 * (first_stream + i) under key, for i < nstreams, t < stream_len.
 * key: IN 128-bit key (2 words); first_stream: IN id of the first stream;
 * nstreams, stream_len: IN >= 0; out: OUT (nstreams*stream_len);
 * threads: IN >= 1 (the values never depend on it). */
stefast_status stefast_normals_d(const uint64_t key[2], uint64_t first_stream, int64_t nstreams,
                                 int64_t stream_len, double *out, int threads);
stefast_status stefast_normals_f(const uint64_t key[2], uint64_t first_stream, int64_t nstreams,
                                 int64_t stream_len, float *out, int threads);

/* Monte Carlo estimators of E[loss], E[dl/dv], E[g_mu] (docs/math.rst, section
 * "Monte Carlo samplers"). */
typedef enum {
    STEFAST_MC_FULL = 0,        /* Z drawn whole: m*n normals per sample          */
    STEFAST_MC_PROJECTED = 1,   /* S = ZQ^T and P_perp Z^T a: m*k + n normals     */
    STEFAST_MC_CONDITIONAL = 2  /* E[g | S] = Q^T S^T a (Rao-Blackwell): m*k      */
} stefast_mc_method;

/* Per-sample statistics accumulated by stefast_mc_accumulate, in this order:
 *   full, projected: 1 + m + n   (loss, grad_v, grad_w);
 *   conditional:     1 + m + k + (k == 2)
 *                    (loss, grad_v, c = S^T a with g = Q^T c, then c_0 + c_1
 *                    when k = 2, from which the caller recovers cov(c_0, c_1)).
 * Returns -1 for an unknown method, m < 1, n < 1 or k not in {0, 1, 2}. */
int64_t stefast_mc_width(stefast_mc_method method, int64_t m, int64_t n, int64_t k);

/* Monte Carlo over the samples first_sample .. first_sample + n_samples - 1.
 * Sample b draws its normals from stream b under key (so a sample's value
 * depends only on (key, b), never on threads or on how a run is split).
 * The samples are cut into blocks of `block` consecutive samples (the last
 * may be shorter); each block's mean and sum of squared deviations are
 * computed in double and folded into (count, mean, m2) in block order
 * (Chan et al.), so the result is bitwise identical for any `threads` and
 * for any split of a run into calls whose lengths are multiples of `block`.
 *   v, v_star: IN (m) student and teacher second-layer weights;
 *   w, w_star: IN (n) filters (read by the full method only; may be NULL
 *              otherwise);
 *   Q: IN (k, n) orthonormal rows spanning {w, w_star} (projected and
 *      conditional; may be NULL for full or k = 0);
 *   alpha, beta: IN (k) coordinates w = Q^T alpha, w_star = Q^T beta (same);
 *   k: IN 0, 1 or 2; m, n: IN >= 1; ste: IN surrogate; method: IN;
 *   key: IN 128-bit generator key (2 words); first_sample: IN >= 0; n_samples: IN >= 0;
 *   block: IN >= 1 samples per block;
 *   count: IN/OUT samples already in the accumulator (0 to start);
 *   mean, m2: IN/OUT (stefast_mc_width(...)) running means and sums of
 *             squared deviations, in double whatever the precision;
 *   threads: IN >= 1.
 * Samples are computed in the precision of the function (_d double, _f
 * float); accumulation is in double.
 * Returns STEFAST_EINTR when it sees the interrupt flag: (count, mean, m2)
 * then hold the blocks finished before it, in order from the first (a whole
 * number of blocks, possibly none), with the very bits a call over just
 * those samples gives; the caller can continue from sample
 * first_sample + (count - the count it passed). */
stefast_status stefast_mc_accumulate_d(const double *v, const double *w, const double *v_star,
                                       const double *w_star, const double *Q,
                                       const double *alpha, const double *beta, int64_t k,
                                       int64_t m, int64_t n, stefast_ste ste,
                                       stefast_mc_method method, const uint64_t key[2],
                                       int64_t first_sample, int64_t n_samples, int64_t block,
                                       int64_t *count, double *mean, double *m2, int threads);
stefast_status stefast_mc_accumulate_f(const float *v, const float *w, const float *v_star,
                                       const float *w_star, const float *Q,
                                       const float *alpha, const float *beta, int64_t k,
                                       int64_t m, int64_t n, stefast_ste ste,
                                       stefast_mc_method method, const uint64_t key[2],
                                       int64_t first_sample, int64_t n_samples, int64_t block,
                                       int64_t *count, double *mean, double *m2, int threads);

/* stefast_mc_accumulate_* with a registry surrogate s (IN) in place of ste. */
stefast_status stefast_mc_accumulate_surrogate_d(const double *v, const double *w, const double *v_star,
                                      const double *w_star, const double *Q,
                                      const double *alpha, const double *beta, int64_t k,
                                      int64_t m, int64_t n, const stefast_surrogate *s,
                                      stefast_mc_method method, const uint64_t key[2],
                                      int64_t first_sample, int64_t n_samples, int64_t block,
                                      int64_t *count, double *mean, double *m2, int threads);
stefast_status stefast_mc_accumulate_surrogate_f(const float *v, const float *w, const float *v_star,
                                      const float *w_star, const float *Q,
                                      const float *alpha, const float *beta, int64_t k,
                                      int64_t m, int64_t n, const stefast_surrogate *s,
                                      stefast_mc_method method, const uint64_t key[2],
                                      int64_t first_sample, int64_t n_samples, int64_t block,
                                      int64_t *count, double *mean, double *m2, int threads);

/* ---- coarse gradient descent ensembles (src_c/descent.c) ----------------- */

/* Settings shared by every run of an ensemble. */
typedef struct {
    double lr;            /* step size, > 0 */
    int64_t steps;        /* updates per run, >= 0 */
    int64_t batch_size;   /* samples per step: 0 or >= N is the full training set;
                             0 < B < N mini-batches over epochs shuffled per run;
                             online runs (Z NULL and N = 0) draw B fresh samples */
    int64_t record_every; /* record step t when t % record_every == 0; 0: never */
    double tol;           /* stop a run when the mean update direction's norm < tol;
                             0: never */
    double label_noise;   /* labels y* + label_noise * N(0, 1), fixed per training
                             sample (fresh per online sample); 0: none */
    stefast_ste ste;      /* the surrogate of the coarse gradient */
    uint64_t key[2];      /* generator key of drawn data, noise and shuffles */
    const stefast_surrogate *surrogate; /* NULL: ste; else this registry
                                           surrogate (ste unused) */
} stefast_descent_options;

/*
 * R independent runs of Algorithm 1: v <- v - lr mean(dl/dv), w <- w - lr
 * mean(g_mu) over each step's batch, sums in double, updates rounded to the
 * precision of the function. Run r (of this call; its random streams are
 * numbered first_run + r) starts from (v0[r], w0[r]) with teacher
 * (v_star[r * teacher_stride], w_star[r * teacher_stride]) and trains on
 *   - Z[r] (N samples) when Z is not NULL, with labels y[r] when y is not
 *     NULL, else the teacher's labels (plus noise);
 *   - a training set drawn from its stream when Z is NULL and N >= 1: the
 *     stream's first N m n normals (sample-major), then N label noises;
 *   - fresh samples each step (online) when Z is NULL and N = 0: each step
 *     takes the next B m n normals of the stream, then B label noises.
 * The results never depend on threads, and equal those of R calls with one
 * run each (first_run advanced by one per call).
 *   v0, v_star: IN (R, m) / (m or R*m); w0, w_star: IN (R, n) / (n or R*n);
 *   teacher_stride: IN 0 (one teacher) or 1 (one per run);
 *   Z: IN (R, N, m, n) or NULL; y: IN (R, N) or NULL (needs Z, no noise);
 *   v, w: OUT (R, m), (R, n) final iterates (may not alias the inputs);
 *   steps_taken: OUT (R) updates made (a run that turned non-finite stops
 *                after the update that did it, with final_loss NaN);
 *   final_loss: OUT (R) mean loss on the last step's batch at the final iterate;
 *   rec_loss: OUT (R, n_rec) or NULL: the mean batch loss at each recorded step;
 *   rec_v, rec_w: OUT (R, n_rec, m), (R, n_rec, n) or NULL: recorded iterates;
 *             slots past a run's last step are left as they were;
 *   n_rec: IN number of record slots per run (steps / record_every + 1);
 *   threads: IN >= 1.
 * Returns STEFAST_EINVAL for inconsistent arguments, STEFAST_ENOMEM when
 * scratch cannot be allocated, STEFAST_EINTR when it sees the interrupt flag:
 * then the runs that had finished have all their outputs, and every other run
 * has steps_taken -1 (its other outputs unspecified). Thread-safe: no state
 * outside the arguments but the interrupt flag. */
stefast_status stefast_descent_ensemble_d(const double *v0, const double *w0, const double *v_star,
                               const double *w_star, int64_t teacher_stride,
                               const double *Z, const double *y, int64_t R, int64_t N,
                               int64_t m, int64_t n, uint64_t first_run,
                               const stefast_descent_options *opt, double *v, double *w,
                               int64_t *steps_taken, double *final_loss, double *rec_loss,
                               double *rec_v, double *rec_w, int64_t n_rec, int threads);
stefast_status stefast_descent_ensemble_f(const float *v0, const float *w0, const float *v_star,
                               const float *w_star, int64_t teacher_stride,
                               const float *Z, const float *y, int64_t R, int64_t N,
                               int64_t m, int64_t n, uint64_t first_run,
                               const stefast_descent_options *opt, float *v, float *w,
                               int64_t *steps_taken, double *final_loss, double *rec_loss,
                               float *rec_v, float *rec_w, int64_t n_rec, int threads);

#if defined(__GNUC__) && !defined(_WIN32)
#pragma GCC visibility pop
#endif

#ifdef __cplusplus
}
#endif

#endif /* STEFAST_H */
