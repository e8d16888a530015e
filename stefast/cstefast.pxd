# cstefast.pxd -- Cython declarations of stefast's public C API, the header
# stefast/stefast.h installed with the package (src_c/stefast.h in the
# sources), mirrored once: the same names, every function nogil. See the
# header for the meaning, units, shapes and aliasing rules of every argument.
#
# Another package uses it as
#
#     from stefast cimport cstefast
#     with nogil:
#         status = cstefast.stefast_loss_and_grads_sum_d(...)
#
# compiled with stefast.get_include() on its include path and linked with
# libstefast.a from stefast.get_library_dir() (examples/embed/cython).
# stefast._core cimports these declarations too; nothing else in the package
# declares C.
from libc.stdint cimport int64_t, uint64_t

cdef extern from "stefast/stefast.h" nogil:
    # the header's version (stefast_version() gives the linked library's)
    enum:
        STEFAST_VERSION_MAJOR
        STEFAST_VERSION_MINOR
        STEFAST_VERSION_PATCH

    ctypedef enum stefast_status:
        STEFAST_OK
        STEFAST_EINVAL
        STEFAST_ENOMEM
        STEFAST_EINTR

    const char *stefast_version()
    const char *stefast_strerror(stefast_status status)

    # the process-wide interrupt flag of the long runs (async-signal-safe)
    void stefast_request_interrupt()
    void stefast_clear_interrupt()
    int stefast_interrupt_requested()

    ctypedef enum stefast_ste:
        STEFAST_STE_IDENTITY
        STEFAST_STE_RELU
        STEFAST_STE_CLIPPED_RELU
        STEFAST_STE_HARDTANH

    ctypedef enum stefast_surrogate_kind:
        STEFAST_SURROGATE_WINDOW
        STEFAST_SURROGATE_PIECEWISE
        STEFAST_SURROGATE_LOGISTIC
        STEFAST_SURROGATE_SWISH

    ctypedef struct stefast_surrogate:
        stefast_surrogate_kind kind
        double p[4]
        int64_t pieces, degree
        const double *breakpoints
        const double *coefficients

    stefast_status stefast_binarize_d(const double *x, double *out, int64_t len)
    stefast_status stefast_binarize_f(const float *x, float *out, int64_t len)
    stefast_status stefast_sign_d(const double *x, double *out, int64_t len)
    stefast_status stefast_sign_f(const float *x, float *out, int64_t len)
    stefast_status stefast_ste_grad_d(const double *x, const double *grad, double *out,
            int64_t len, stefast_ste ste)
    stefast_status stefast_ste_grad_f(const float *x, const float *grad, float *out,
            int64_t len, stefast_ste ste)

    stefast_status stefast_ste_grad_surrogate_d(const double *x, const double *grad,
            double *out, int64_t len, const stefast_surrogate *s)
    stefast_status stefast_ste_grad_surrogate_f(const float *x, const float *grad, float *out,
            int64_t len, const stefast_surrogate *s)

    stefast_status stefast_forward_d(const double *Z, const double *v, const double *w,
            int64_t B, int64_t m, int64_t n, double *y, int threads)
    stefast_status stefast_forward_f(const float *Z, const float *v, const float *w, int64_t B,
            int64_t m, int64_t n, float *y, int threads)
    stefast_status stefast_loss_and_grads_d(const double *Z, const double *v, const double *w,
            const double *v_star, const double *w_star, int64_t B, int64_t m, int64_t n,
            stefast_ste ste, double *loss, double *grad_v, double *grad_w, int threads)
    stefast_status stefast_loss_and_grads_f(const float *Z, const float *v, const float *w,
            const float *v_star, const float *w_star, int64_t B, int64_t m, int64_t n,
            stefast_ste ste, float *loss, float *grad_v, float *grad_w, int threads)
    stefast_status stefast_loss_and_grads_sum_d(const double *Z, const double *v,
            const double *w, const double *v_star, const double *w_star, int64_t B, int64_t m,
            int64_t n, stefast_ste ste, double *loss_sum, double *grad_v_sum,
            double *grad_w_sum, int threads)
    stefast_status stefast_loss_and_grads_sum_f(const float *Z, const float *v, const float *w,
            const float *v_star, const float *w_star, int64_t B, int64_t m, int64_t n,
            stefast_ste ste, double *loss_sum, double *grad_v_sum, double *grad_w_sum,
            int threads)
    stefast_status stefast_loss_and_grads_surrogate_d(const double *Z, const double *v,
            const double *w, const double *v_star, const double *w_star, int64_t B, int64_t m,
            int64_t n, const stefast_surrogate *s, double *loss, double *grad_v,
            double *grad_w, int threads)
    stefast_status stefast_loss_and_grads_surrogate_f(const float *Z, const float *v,
            const float *w, const float *v_star, const float *w_star, int64_t B, int64_t m,
            int64_t n, const stefast_surrogate *s, float *loss, float *grad_v, float *grad_w,
            int threads)
    stefast_status stefast_loss_and_grads_sum_surrogate_d(const double *Z, const double *v,
            const double *w, const double *v_star, const double *w_star, int64_t B, int64_t m,
            int64_t n, const stefast_surrogate *s, double *loss_sum, double *grad_v_sum,
            double *grad_w_sum, int threads)
    stefast_status stefast_loss_and_grads_sum_surrogate_f(const float *Z, const float *v,
            const float *w, const float *v_star, const float *w_star, int64_t B, int64_t m,
            int64_t n, const stefast_surrogate *s, double *loss_sum, double *grad_v_sum,
            double *grad_w_sum, int threads)

    # ---- quantized ReLU ----
    ctypedef enum stefast_rounding:
        STEFAST_ROUND_CEIL
        STEFAST_ROUND_NEAREST

    ctypedef enum stefast_alpha_grad:
        STEFAST_ALPHA_GRAD_EXACT
        STEFAST_ALPHA_GRAD_LSQ

    stefast_status stefast_quantized_relu_d(const double *x, double *out, int64_t len,
            int bits, double alpha, stefast_rounding rounding)
    stefast_status stefast_quantized_relu_f(const float *x, float *out, int64_t len, int bits,
            double alpha, stefast_rounding rounding)
    stefast_status stefast_quantized_relu_grad_d(const double *x, const double *grad,
            double *grad_x, double *grad_alpha, int64_t len, int bits, double alpha,
            stefast_rounding rounding, stefast_ste ste, stefast_alpha_grad alpha_grad)
    stefast_status stefast_quantized_relu_grad_f(const float *x, const float *grad,
            float *grad_x, double *grad_alpha, int64_t len, int bits, double alpha,
            stefast_rounding rounding, stefast_ste ste, stefast_alpha_grad alpha_grad)

    # ---- Gaussian sampling and Monte Carlo ----
    ctypedef enum stefast_mc_method:
        STEFAST_MC_FULL
        STEFAST_MC_PROJECTED
        STEFAST_MC_CONDITIONAL

    void stefast_threefry2x64_20(const uint64_t *ctr, const uint64_t *key, uint64_t *out)
    stefast_status stefast_normals_d(const uint64_t *key, uint64_t first_stream,
            int64_t nstreams, int64_t stream_len, double *out, int threads)
    stefast_status stefast_normals_f(const uint64_t *key, uint64_t first_stream,
            int64_t nstreams, int64_t stream_len, float *out, int threads)
    int64_t stefast_mc_width(stefast_mc_method method, int64_t m, int64_t n, int64_t k)
    stefast_status stefast_mc_accumulate_d(const double *v, const double *w,
            const double *v_star, const double *w_star, const double *Q, const double *alpha,
            const double *beta, int64_t k, int64_t m, int64_t n, stefast_ste ste,
            stefast_mc_method method, const uint64_t *key, int64_t first_sample,
            int64_t n_samples, int64_t block, int64_t *count, double *mean, double *m2,
            int threads)
    stefast_status stefast_mc_accumulate_f(const float *v, const float *w, const float *v_star,
            const float *w_star, const float *Q, const float *alpha, const float *beta,
            int64_t k, int64_t m, int64_t n, stefast_ste ste, stefast_mc_method method,
            const uint64_t *key, int64_t first_sample, int64_t n_samples, int64_t block,
            int64_t *count, double *mean, double *m2, int threads)
    stefast_status stefast_mc_accumulate_surrogate_d(const double *v, const double *w,
            const double *v_star, const double *w_star, const double *Q, const double *alpha,
            const double *beta, int64_t k, int64_t m, int64_t n, const stefast_surrogate *s,
            stefast_mc_method method, const uint64_t *key, int64_t first_sample,
            int64_t n_samples, int64_t block, int64_t *count, double *mean, double *m2,
            int threads)
    stefast_status stefast_mc_accumulate_surrogate_f(const float *v, const float *w,
            const float *v_star, const float *w_star, const float *Q, const float *alpha,
            const float *beta, int64_t k, int64_t m, int64_t n, const stefast_surrogate *s,
            stefast_mc_method method, const uint64_t *key, int64_t first_sample,
            int64_t n_samples, int64_t block, int64_t *count, double *mean, double *m2,
            int threads)

    # ---- coarse gradient descent ensembles ----
    ctypedef struct stefast_descent_options:
        double lr
        int64_t steps
        int64_t batch_size
        int64_t record_every
        double tol
        double label_noise
        stefast_ste ste
        uint64_t key[2]
        const stefast_surrogate *surrogate

    stefast_status stefast_descent_ensemble_d(const double *v0, const double *w0,
            const double *v_star, const double *w_star, int64_t teacher_stride,
            const double *Z, const double *y, int64_t R, int64_t N, int64_t m, int64_t n,
            uint64_t first_run, const stefast_descent_options *opt, double *v, double *w,
            int64_t *steps_taken, double *final_loss, double *rec_loss, double *rec_v,
            double *rec_w, int64_t n_rec, int threads)
    stefast_status stefast_descent_ensemble_f(const float *v0, const float *w0,
            const float *v_star, const float *w_star, int64_t teacher_stride, const float *Z,
            const float *y, int64_t R, int64_t N, int64_t m, int64_t n, uint64_t first_run,
            const stefast_descent_options *opt, float *v, float *w, int64_t *steps_taken,
            double *final_loss, double *rec_loss, float *rec_v, float *rec_w, int64_t n_rec,
            int threads)
