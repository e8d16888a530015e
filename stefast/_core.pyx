# cython: language_level=3, boundscheck=False, wraparound=False, initializedcheck=False
"""The one Cython layer: C-contiguous buffers in, C kernels called without
the GIL, status codes turned into exceptions.

Callers (stefast.kernels and friends) have already validated shapes and
dtypes and made the buffers contiguous; nothing here decides semantics. Each
function takes flat 1-d buffers plus sizes, dispatches once on the fused
dtype (float -> `_f` kernel, double -> `_d` kernel) and releases the GIL.

Two sections do whole calls for arguments already fit for C and return None
for anything else (the caller's general path then decides): the common
kernel calls, and the population closed forms at one point, which mirror
stefast._geometry and stefast._formulas in C doubles.
"""
from cpython.buffer cimport (PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_SIMPLE, PyBUF_WRITABLE,
                             PyBuffer_Release, PyObject_GetBuffer)
from libc.math cimport (M_PI, atan2, cos, erf, erfc, exp, fabs, frexp, isfinite, ldexp, sin,
                        sqrt)
from libc.stdint cimport int64_t, uint64_t, uintptr_t
from libc.string cimport memcpy

cimport cython
cimport numpy as cnp
import numpy as np

cnp.import_array()

from stefast.cstefast cimport *

ctypedef fused floating:
    float
    double

STE_CODES = {
    "identity": STEFAST_STE_IDENTITY,
    "relu": STEFAST_STE_RELU,
    "clipped_relu": STEFAST_STE_CLIPPED_RELU,
    "hardtanh": STEFAST_STE_HARDTANH,
}

SURROGATE_KINDS = {
    "window": STEFAST_SURROGATE_WINDOW,
    "piecewise": STEFAST_SURROGATE_PIECEWISE,
    "logistic": STEFAST_SURROGATE_LOGISTIC,
    "swish": STEFAST_SURROGATE_SWISH,
}


cdef class SurrogateSpec:
    """A registry surrogate as the kernels take it (stefast_surrogate), with
    the breakpoint and coefficient buffers it points into kept alive."""
    cdef stefast_surrogate c
    cdef object _buffers

    def __cinit__(self, int kind, params,
                  const double[::1] breakpoints,    # IN  (pieces + 1), may be empty
                  const double[::1] coefficients,   # IN  (pieces * (degree + 1)), may be empty
                  int64_t pieces, int64_t degree):
        self.c.kind = <stefast_surrogate_kind>kind
        for i in range(4):
            self.c.p[i] = params[i] if i < len(params) else 0.0
        self.c.pieces = pieces
        self.c.degree = degree
        self.c.breakpoints = &breakpoints[0] if breakpoints.shape[0] > 0 else NULL
        self.c.coefficients = &coefficients[0] if coefficients.shape[0] > 0 else NULL
        self._buffers = (breakpoints, coefficients)


cdef const stefast_surrogate *surrogate_of(object ste):
    """The struct of a SurrogateSpec, NULL for a window code (an int)."""
    if isinstance(ste, SurrogateSpec):
        return &(<SurrogateSpec>ste).c
    return NULL


cdef int check_status(int status) except -1:
    if status == STEFAST_OK:
        return 0
    if status == STEFAST_ENOMEM:
        raise MemoryError("stefast kernel could not allocate its scratch memory")
    if status == STEFAST_EINTR:
        raise KeyboardInterrupt
    raise ValueError(f"stefast kernel rejected its arguments (status {status})")


# The kernels take whole arrays through the raw buffer protocol, not typed
# memoryviews: on 16 values acquiring two memoryviews cost more than the rest
# of the call. The callers in stefast.kernels have validated, flattened and
# aligned every argument, so a buffer that is not what a kernel needs is a bug
# here, not a user error.

cdef int elementwise_buffer(object a, Py_buffer *view, int flags) except -1:
    """1 with view filled (C-contiguous, native "d" or "f", aligned for it),
    0 if a is not such a buffer."""
    cdef const char *fmt
    try:
        PyObject_GetBuffer(a, view, flags | PyBUF_C_CONTIGUOUS | PyBUF_FORMAT)
    except (BufferError, ValueError, TypeError):
        return 0
    fmt = view.format
    if (fmt == NULL or not ((fmt[0] == b"d" or fmt[0] == b"f") and fmt[1] == 0)
            or <size_t>view.buf % <size_t>view.itemsize != 0):
        PyBuffer_Release(view)
        return 0
    return 1


cdef int model_buffers(tuple arrays, Py_buffer *views, int writable_from) except -1:
    """Fill views[k] for each of arrays (C-contiguous, aligned, all "d" or all
    "f", of one length when elementwise; from index writable_from on,
    writable); on failure release what was taken and raise."""
    cdef int k, taken = 0
    cdef int flags
    try:
        for k in range(len(arrays)):
            flags = PyBUF_WRITABLE if k >= writable_from else PyBUF_SIMPLE
            if not elementwise_buffer(arrays[k], &views[k], flags):
                raise TypeError(f"stefast._core: argument {k} is not a C-contiguous, aligned, "
                                "writeable where written, float32/float64 buffer")
            taken += 1
            if views[k].format[0] != views[0].format[0]:
                raise TypeError(f"stefast._core: argument {k} has another dtype than the first")
    except BaseException:
        release_buffers(views, taken)
        raise
    return 0


cdef inline void release_buffers(Py_buffer *views, int count):
    cdef int k
    for k in range(count):
        PyBuffer_Release(&views[k])


cdef int64_t same_lengths(Py_buffer *views, int count) except -1:
    """The common number of elements of views[:count] (an error otherwise)."""
    cdef int k
    for k in range(1, count):
        if views[k].len != views[0].len:
            release_buffers(views, count)
            raise ValueError("stefast._core: elementwise buffers of different lengths")
    return views[0].len // views[0].itemsize


def binarize(object x,     # IN
             object out):  # OUT (may be x)
    """out = sigma(x)."""
    cdef Py_buffer b[2]
    cdef int status = 0
    model_buffers((x, out), b, 1)
    cdef int64_t n = same_lengths(b, 2)
    try:
        if n > 0:
            with nogil:
                if b[0].itemsize == 8:
                    status = stefast_binarize_d(<const double *>b[0].buf, <double *>b[1].buf, n)
                else:
                    status = stefast_binarize_f(<const float *>b[0].buf, <float *>b[1].buf, n)
    finally:
        release_buffers(b, 2)
    check_status(status)


def sign(object x,     # IN
         object out):  # OUT (may be x)
    """out = sign(x) (sign(0) = +1)."""
    cdef Py_buffer b[2]
    cdef int status = 0
    model_buffers((x, out), b, 1)
    cdef int64_t n = same_lengths(b, 2)
    try:
        if n > 0:
            with nogil:
                if b[0].itemsize == 8:
                    status = stefast_sign_d(<const double *>b[0].buf, <double *>b[1].buf, n)
                else:
                    status = stefast_sign_f(<const float *>b[0].buf, <float *>b[1].buf, n)
    finally:
        release_buffers(b, 2)
    check_status(status)


def ste_grad(object x,      # IN
             object grad,   # IN
             object out,    # OUT (may be x or grad)
             object ste):   # a window code or a SurrogateSpec
    """out = grad * mu'(x)."""
    cdef Py_buffer b[3]
    cdef int status = 0
    cdef const stefast_surrogate *sur = surrogate_of(ste)
    cdef int code = 0 if sur != NULL else ste
    model_buffers((x, grad, out), b, 2)
    cdef int64_t n = same_lengths(b, 3)
    try:
        if n > 0:
            with nogil:
                if sur != NULL and b[0].itemsize == 8:
                    status = stefast_ste_grad_surrogate_d(
                        <const double *>b[0].buf, <const double *>b[1].buf, <double *>b[2].buf,
                        n, sur)
                elif sur != NULL:
                    status = stefast_ste_grad_surrogate_f(
                        <const float *>b[0].buf, <const float *>b[1].buf, <float *>b[2].buf,
                        n, sur)
                elif b[0].itemsize == 8:
                    status = stefast_ste_grad_d(<const double *>b[0].buf, <const double *>b[1].buf,
                                                <double *>b[2].buf, n, <stefast_ste>code)
                else:
                    status = stefast_ste_grad_f(<const float *>b[0].buf, <const float *>b[1].buf,
                                                <float *>b[2].buf, n, <stefast_ste>code)
    finally:
        release_buffers(b, 3)
    check_status(status)


def forward(object Z,   # IN  (B*m*n)
            object v,   # IN  (m)
            object w,   # IN  (n)
            object y,   # OUT (B)
            int64_t B, int64_t m, int64_t n, int threads):
    cdef Py_buffer b[4]
    cdef int status = 0
    if B == 0:
        return
    model_buffers((Z, v, w, y), b, 3)
    try:
        with nogil:
            if b[0].itemsize == 8:
                status = stefast_forward_d(<const double *>b[0].buf, <const double *>b[1].buf,
                                           <const double *>b[2].buf, B, m, n,
                                           <double *>b[3].buf, threads)
            else:
                status = stefast_forward_f(<const float *>b[0].buf, <const float *>b[1].buf,
                                           <const float *>b[2].buf, B, m, n,
                                           <float *>b[3].buf, threads)
    finally:
        release_buffers(b, 4)
    check_status(status)


def loss_and_grads(object Z,        # IN  (B*m*n)
                   object v,        # IN  (m)
                   object w,        # IN  (n)
                   object v_star,   # IN  (m)
                   object w_star,   # IN  (n)
                   object loss,     # OUT (B)
                   object grad_v,   # OUT (B*m)
                   object grad_w,   # OUT (B*n)
                   int64_t B, int64_t m, int64_t n, object ste, int threads):
    cdef Py_buffer b[8]
    cdef int status = 0
    cdef const stefast_surrogate *sur = surrogate_of(ste)
    cdef int code = 0 if sur != NULL else ste
    if B == 0:
        return
    model_buffers((Z, v, w, v_star, w_star, loss, grad_v, grad_w), b, 5)
    try:
        with nogil:
            if b[0].itemsize == 8:
                if sur != NULL:
                    status = stefast_loss_and_grads_surrogate_d(
                        <const double *>b[0].buf, <const double *>b[1].buf,
                        <const double *>b[2].buf, <const double *>b[3].buf,
                        <const double *>b[4].buf, B, m, n, sur, <double *>b[5].buf,
                        <double *>b[6].buf, <double *>b[7].buf, threads)
                else:
                    status = stefast_loss_and_grads_d(
                        <const double *>b[0].buf, <const double *>b[1].buf,
                        <const double *>b[2].buf, <const double *>b[3].buf,
                        <const double *>b[4].buf, B, m, n, <stefast_ste>code,
                        <double *>b[5].buf, <double *>b[6].buf, <double *>b[7].buf, threads)
            else:
                if sur != NULL:
                    status = stefast_loss_and_grads_surrogate_f(
                        <const float *>b[0].buf, <const float *>b[1].buf,
                        <const float *>b[2].buf, <const float *>b[3].buf,
                        <const float *>b[4].buf, B, m, n, sur, <float *>b[5].buf,
                        <float *>b[6].buf, <float *>b[7].buf, threads)
                else:
                    status = stefast_loss_and_grads_f(
                        <const float *>b[0].buf, <const float *>b[1].buf,
                        <const float *>b[2].buf, <const float *>b[3].buf,
                        <const float *>b[4].buf, B, m, n, <stefast_ste>code,
                        <float *>b[5].buf, <float *>b[6].buf, <float *>b[7].buf, threads)
    finally:
        release_buffers(b, 8)
    check_status(status)


def loss_and_grads_sum(object Z,        # IN  (B*m*n), may be empty
                       object v,        # IN  (m)
                       object w,        # IN  (n)
                       object v_star,   # IN  (m)
                       object w_star,   # IN  (n)
                       double[::1] sums,   # OUT (1 + m + n): loss, grad_v, grad_w
                       int64_t B, int64_t m, int64_t n, object ste, int threads):
    cdef Py_buffer b[5]
    cdef int status = 0
    cdef const void *Zp
    cdef double *out = &sums[0]
    cdef const stefast_surrogate *sur = surrogate_of(ste)
    cdef int code = 0 if sur != NULL else ste
    model_buffers((Z, v, w, v_star, w_star), b, 5)
    Zp = b[0].buf if B > 0 else NULL
    try:
        with nogil:
            if b[1].itemsize == 8:
                if sur != NULL:
                    status = stefast_loss_and_grads_sum_surrogate_d(
                        <const double *>Zp, <const double *>b[1].buf,
                        <const double *>b[2].buf, <const double *>b[3].buf,
                        <const double *>b[4].buf, B, m, n, sur, out, out + 1, out + 1 + m,
                        threads)
                else:
                    status = stefast_loss_and_grads_sum_d(
                        <const double *>Zp, <const double *>b[1].buf,
                        <const double *>b[2].buf, <const double *>b[3].buf,
                        <const double *>b[4].buf, B, m, n, <stefast_ste>code, out, out + 1,
                        out + 1 + m, threads)
            else:
                if sur != NULL:
                    status = stefast_loss_and_grads_sum_surrogate_f(
                        <const float *>Zp, <const float *>b[1].buf,
                        <const float *>b[2].buf, <const float *>b[3].buf,
                        <const float *>b[4].buf, B, m, n, sur, out, out + 1, out + 1 + m,
                        threads)
                else:
                    status = stefast_loss_and_grads_sum_f(
                        <const float *>Zp, <const float *>b[1].buf,
                        <const float *>b[2].buf, <const float *>b[3].buf,
                        <const float *>b[4].buf, B, m, n, <stefast_ste>code, out, out + 1,
                        out + 1 + m, threads)
    finally:
        release_buffers(b, 5)
    check_status(status)


# ---- the common case of a model call, whole --------------------------------
# A simulator calling loss_and_grads or forward once per step on one small
# sample pays the call, not the work. When every argument is already what the
# kernel takes (C-contiguous, aligned, one native float dtype, shapes that
# fit), these do the call from start to finish here; anything else returns
# None and stefast.kernels takes its general path, where the rules and the
# error messages are written. They never decide what the general path would
# refuse.

cdef enum:
    SMALL_WIDTH = 512   # 1 + m + n at most: the sums live on the stack


cdef inline bint ready_array(object a, int typenum, int ndim):
    """a is an ndarray of dtype typenum (native order), ndim dimensions,
    C-contiguous and aligned."""
    return (cnp.PyArray_CheckExact(a) and cnp.PyArray_TYPE(<cnp.ndarray>a) == typenum
            and cnp.PyArray_ISNOTSWAPPED(<cnp.ndarray>a)
            and cnp.PyArray_NDIM(<cnp.ndarray>a) == ndim
            and cnp.PyArray_CHKFLAGS(<cnp.ndarray>a,
                                     cnp.NPY_ARRAY_C_CONTIGUOUS | cnp.NPY_ARRAY_ALIGNED))


cdef int model_arrays(object Z, tuple vectors, const void **data, int64_t *shape):
    """1 with data = the pointers of Z (2-d or 3-d) and of vectors (1-d,
    lengths m, n, m, n in turn), all ndarrays ready for C (ready_array) of
    Z's float dtype, and shape = (B, m, n); 0 otherwise."""
    cdef int k, typenum
    cdef int64_t want
    cdef cnp.npy_intp *dims
    if not cnp.PyArray_CheckExact(Z):
        return 0
    typenum = cnp.PyArray_TYPE(<cnp.ndarray>Z)
    if typenum != cnp.NPY_DOUBLE and typenum != cnp.NPY_FLOAT:
        return 0
    dims = cnp.PyArray_DIMS(<cnp.ndarray>Z)
    if ready_array(Z, typenum, 3):
        shape[0], shape[1], shape[2] = dims[0], dims[1], dims[2]
    elif ready_array(Z, typenum, 2):
        shape[0], shape[1], shape[2] = 1, dims[0], dims[1]
    else:
        return 0
    if shape[1] < 1 or shape[2] < 1:
        return 0
    data[0] = cnp.PyArray_DATA(<cnp.ndarray>Z)
    for k in range(len(vectors)):
        want = shape[1] if k % 2 == 0 else shape[2]
        a = vectors[k]
        if not ready_array(a, typenum, 1) or cnp.PyArray_DIMS(<cnp.ndarray>a)[0] != want:
            return 0
        data[1 + k] = cnp.PyArray_DATA(<cnp.ndarray>a)
    return 1


cdef object vector_of(const double *values, int64_t length, bint as_double):
    """A new float64 (as_double) or float32 array of length values."""
    cdef cnp.npy_intp dims[1]
    cdef int64_t i
    dims[0] = length
    out = cnp.PyArray_EMPTY(1, dims, cnp.NPY_DOUBLE if as_double else cnp.NPY_FLOAT, 0)
    cdef void *p = cnp.PyArray_DATA(<cnp.ndarray>out)
    if as_double:
        memcpy(p, values, <size_t>length * sizeof(double))
    else:
        for i in range(length):
            (<float *>p)[i] = <float>values[i]
    return out


# ---- elementwise calls on arrays already fit for C --------------------------
# The common case (out=None, a C-contiguous aligned native float ndarray, a
# named window) whole, through NumPy's C API; None sends the call to the
# general path in stefast.kernels.

cdef inline bint float_array(object a):
    """a is an ndarray of float64 or float32 ready for C (ready_array)."""
    if not cnp.PyArray_CheckExact(a):
        return False
    cdef int t = cnp.PyArray_TYPE(<cnp.ndarray>a)
    return ((t == cnp.NPY_DOUBLE or t == cnp.NPY_FLOAT)
            and ready_array(a, t, cnp.PyArray_NDIM(<cnp.ndarray>a)))


cdef inline object empty_like_array(object a):
    return cnp.PyArray_EMPTY(cnp.PyArray_NDIM(<cnp.ndarray>a), cnp.PyArray_DIMS(<cnp.ndarray>a),
                             cnp.PyArray_TYPE(<cnp.ndarray>a), 0)


def binarize_common(object x):
    """sigma(x) as a new array, or None if x is not an array ready for C."""
    cdef int status = 0
    if not float_array(x):
        return None
    out = empty_like_array(x)
    cdef int64_t n = cnp.PyArray_SIZE(<cnp.ndarray>x)
    cdef void *px = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef void *po = cnp.PyArray_DATA(<cnp.ndarray>out)
    if n > 0:
        with nogil:
            if cnp.PyArray_TYPE(<cnp.ndarray>x) == cnp.NPY_DOUBLE:
                status = stefast_binarize_d(<const double *>px, <double *>po, n)
            else:
                status = stefast_binarize_f(<const float *>px, <float *>po, n)
    check_status(status)
    return out


def sign_common(object x):
    """sign(x) as a new array, or None if x is not an array ready for C."""
    cdef int status = 0
    if not float_array(x):
        return None
    out = empty_like_array(x)
    cdef int64_t n = cnp.PyArray_SIZE(<cnp.ndarray>x)
    cdef void *px = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef void *po = cnp.PyArray_DATA(<cnp.ndarray>out)
    if n > 0:
        with nogil:
            if cnp.PyArray_TYPE(<cnp.ndarray>x) == cnp.NPY_DOUBLE:
                status = stefast_sign_d(<const double *>px, <double *>po, n)
            else:
                status = stefast_sign_f(<const float *>px, <float *>po, n)
    check_status(status)
    return out


def ste_grad_common(object x, object grad, int code):
    """grad * mu'(x) for a window code as a new array, or None if x and grad
    are not arrays ready for C of one dtype and one shape."""
    cdef int status = 0
    cdef int k, ndim
    if not (float_array(x) and float_array(grad)):
        return None
    ndim = cnp.PyArray_NDIM(<cnp.ndarray>x)
    if (cnp.PyArray_TYPE(<cnp.ndarray>x) != cnp.PyArray_TYPE(<cnp.ndarray>grad)
            or cnp.PyArray_NDIM(<cnp.ndarray>grad) != ndim):
        return None
    for k in range(ndim):
        if cnp.PyArray_DIMS(<cnp.ndarray>x)[k] != cnp.PyArray_DIMS(<cnp.ndarray>grad)[k]:
            return None
    out = empty_like_array(grad)
    cdef int64_t n = cnp.PyArray_SIZE(<cnp.ndarray>x)
    cdef void *px = cnp.PyArray_DATA(<cnp.ndarray>x)
    cdef void *pg = cnp.PyArray_DATA(<cnp.ndarray>grad)
    cdef void *po = cnp.PyArray_DATA(<cnp.ndarray>out)
    if n > 0:
        with nogil:
            if cnp.PyArray_TYPE(<cnp.ndarray>x) == cnp.NPY_DOUBLE:
                status = stefast_ste_grad_d(<const double *>px, <const double *>pg,
                                            <double *>po, n, <stefast_ste>code)
            else:
                status = stefast_ste_grad_f(<const float *>px, <const float *>pg,
                                            <float *>po, n, <stefast_ste>code)
    check_status(status)
    return out


def loss_and_grads_reduced(object Z, object v, object w, object v_star, object w_star,
                           int code, bint mean, int threads):
    """(loss, grad_v, grad_w) summed or averaged over the batch, as
    stefast.loss_and_grads returns them for a window code; None if the
    arguments are not the common case (or the mean of an empty batch)."""
    cdef const void *p[5]
    cdef int64_t shape[3]
    cdef double sums[SMALL_WIDTH]
    cdef int64_t B, m, n, k
    cdef int status = 0
    cdef bint dbl
    if not model_arrays(Z, (v, w, v_star, w_star), p, shape):
        return None
    B, m, n = shape[0], shape[1], shape[2]
    if 1 + m + n > SMALL_WIDTH or (mean and B == 0):
        return None
    dbl = cnp.PyArray_TYPE(<cnp.ndarray>Z) == cnp.NPY_DOUBLE
    if B == 0:
        p[0] = NULL
    if threads > B:
        threads = B if B > 0 else 1
    with nogil:
        if dbl:
            status = stefast_loss_and_grads_sum_d(
                <const double *>p[0], <const double *>p[1], <const double *>p[2],
                <const double *>p[3], <const double *>p[4], B, m, n, <stefast_ste>code,
                sums, sums + 1, sums + 1 + m, threads)
        else:
            status = stefast_loss_and_grads_sum_f(
                <const float *>p[0], <const float *>p[1], <const float *>p[2],
                <const float *>p[3], <const float *>p[4], B, m, n, <stefast_ste>code,
                sums, sums + 1, sums + 1 + m, threads)
    check_status(status)
    if mean:
        for k in range(1 + m + n):
            sums[k] /= B
    loss = np.float64(sums[0]) if dbl else np.float32(sums[0])
    return loss, vector_of(sums + 1, m, dbl), vector_of(sums + 1 + m, n, dbl)


def forward_common(object Z, object v, object w, int threads):
    """stefast.forward's result (a scalar for one Z, shape (B,) for a batch);
    None if the arguments are not the common case."""
    cdef const void *p[3]
    cdef int64_t shape[3]
    cdef int64_t B, m, n
    cdef int status = 0
    cdef bint dbl
    cdef cnp.npy_intp dims[1]
    if not model_arrays(Z, (v, w), p, shape):
        return None
    B, m, n = shape[0], shape[1], shape[2]
    dbl = cnp.PyArray_TYPE(<cnp.ndarray>Z) == cnp.NPY_DOUBLE
    if threads > B:
        threads = B if B > 0 else 1
    dims[0] = B
    y = cnp.PyArray_EMPTY(1, dims, cnp.NPY_DOUBLE if dbl else cnp.NPY_FLOAT, 0)
    cdef void *out = cnp.PyArray_DATA(<cnp.ndarray>y)
    if B > 0:
        with nogil:
            if dbl:
                status = stefast_forward_d(<const double *>p[0], <const double *>p[1],
                                           <const double *>p[2], B, m, n, <double *>out,
                                           threads)
            else:
                status = stefast_forward_f(<const float *>p[0], <const float *>p[1],
                                           <const float *>p[2], B, m, n, <float *>out,
                                           threads)
    check_status(status)
    return y[0] if cnp.PyArray_NDIM(<cnp.ndarray>Z) == 2 else y


# ---- closed forms at one point ---------------------------------------------
# stefast.analytic's population_loss, population_grad, expected_coarse_grad and
# coarse_grad_cosine at one point whose four arguments are already valid:
# 1-d float64 ndarrays ready for C (ready_array), finite, of lengths m, n, m, n
# with m >= 1, 1 <= n <= POINT_MAX_N, w* nonzero, and a named STE. At this
# size the NumPy path costs far more than the arithmetic (issue 19, "cheap
# validation"). The steps are those of stefast._geometry.geometry and
# stefast._formulas (the reference, which every other input takes), in the
# same order of operations; only sums run in index order where NumPy may pair
# or vectorise them, and cos, sin, exp, erf come from the C library, so results
# agree to rounding, not bit for bit. None sends the call to the general path:
# for any input it would refuse (it raises, with its message) and for a result
# that is not finite (an overflow, which the general path reports with its own
# values and warnings).

cdef enum:
    POINT_MAX_N = 256   # scratch n-vectors live on the stack

ONE_POINT_MAX_N = POINT_MAX_N   # for the tests

# the constants of the reference, read from it (one place)
from stefast._formulas import _A_MAX, _PHI_ZERO, _SQRT_HALF
from stefast._geometry import _SS_MAX, _SS_MIN, PHI0 as _PHI0, SNAP_EPS as _SNAP_EPS

cdef double PHI0 = _PHI0                # 1 / sqrt(2 pi)
cdef double SQRT_HALF = _SQRT_HALF
cdef double SS_MIN = _SS_MIN            # a sum of squares in [SS_MIN, SS_MAX]
cdef double SS_MAX = _SS_MAX            # gives the norm to rounding
cdef double SNAP_EPS = _SNAP_EPS        # angles within SNAP_EPS sqrt(n) of 0, pi snap
cdef double PHI_ZERO = _PHI_ZERO        # phi(a) = 0 for a >= PHI_ZERO
cdef double A_MAX = _A_MAX              # the cap of a = 1 / |w|
cdef double PI = M_PI
cdef double TWO_PI = 2.0 * M_PI

cdef struct point_t:
    int64_t m, n
    const double *v
    const double *w
    const double *vs
    const double *ws
    double nv2, vs2, vvs, ov, os, dd, od   # |v|^2, |v*|^2, v'v*, 1'v, 1'v*, |d|^2, 1'd
    double s, theta, cos, sin              # |w| and the angle, as _geometry.Geometry
    bint zero_w
    bint has_perp                          # e_perp exists (it is 0 otherwise)
    double w_hat[POINT_MAX_N]              # w / |w| (0 if w = 0)
    double ws_hat[POINT_MAX_N]             # w* / |w*|
    double e_perp[POINT_MAX_N]             # w*'s part across w, unit (0 where none)


cdef inline double sum_squares(const double *x, int64_t n) noexcept nogil:
    cdef double ss = 0.0
    cdef int64_t i
    for i in range(n):
        ss += x[i] * x[i]
    return ss


@cython.cdivision(True)
cdef double norm_unit(const double *x, int64_t n, double *unit) noexcept nogil:
    """_geometry.norm_and_unit of one finite vector: |x|, and x / |x| (0 where
    x = 0) into unit unless it is NULL; scaled by the largest entry when the
    sum of squares would over- or underflow."""
    cdef double ss = sum_squares(x, n), top = 0.0, r = 0.0, s
    cdef int64_t i
    if SS_MIN <= ss <= SS_MAX:
        s = sqrt(ss)
        if unit != NULL:
            for i in range(n):
                unit[i] = x[i] / s
        return s
    for i in range(n):
        top = fmax(top, fabs(x[i]))
    if top == 0.0:
        if unit != NULL:
            for i in range(n):
                unit[i] = 0.0
        return 0.0
    for i in range(n):
        r += (x[i] / top) * (x[i] / top)
    r = sqrt(r)
    if unit != NULL:
        for i in range(n):
            unit[i] = (x[i] / top) / r
    return top * r


cdef inline double fmax(double a, double b) noexcept nogil:
    return a if a >= b else b


cdef inline bint all_finite(const double *x, int64_t n) noexcept nogil:
    cdef int64_t i
    for i in range(n):
        if not isfinite(x[i]):
            return False
    return True


@cython.cdivision(True)
cdef int point_of(tuple arrays, point_t *pt) noexcept:
    """1 with pt filled for (v, w, v*, w*) = arrays, 0 if they are not one
    valid point ready for C (see above)."""
    cdef int k
    cdef const double *p[4]
    cdef double tmp[POINT_MAX_N]
    cdef double d, c, pn, snap
    cdef int64_t i, m, n
    for k in range(4):
        a = arrays[k]
        if not ready_array(a, cnp.NPY_DOUBLE, 1):
            return 0
        p[k] = <const double *>cnp.PyArray_DATA(<cnp.ndarray>a)
    m = cnp.PyArray_DIMS(<cnp.ndarray>arrays[0])[0]
    n = cnp.PyArray_DIMS(<cnp.ndarray>arrays[1])[0]
    if (m < 1 or n < 1 or n > POINT_MAX_N or cnp.PyArray_DIMS(<cnp.ndarray>arrays[2])[0] != m
            or cnp.PyArray_DIMS(<cnp.ndarray>arrays[3])[0] != n):
        return 0
    pt.m, pt.n, pt.v, pt.w, pt.vs, pt.ws = m, n, p[0], p[1], p[2], p[3]
    if not (all_finite(p[0], m) and all_finite(p[1], n) and all_finite(p[2], m)
            and all_finite(p[3], n)):
        return 0
    if norm_unit(pt.ws, n, pt.ws_hat) == 0.0:
        return 0   # w* = 0: the general path refuses it
    pt.nv2 = pt.vs2 = pt.vvs = pt.ov = pt.os = pt.dd = pt.od = 0.0
    for i in range(m):
        pt.nv2 += pt.v[i] * pt.v[i]
        pt.vs2 += pt.vs[i] * pt.vs[i]
        pt.vvs += pt.v[i] * pt.vs[i]
        pt.ov += pt.v[i]
        pt.os += pt.vs[i]
        d = pt.v[i] - pt.vs[i]
        pt.dd += d * d
        pt.od += d
    # _geometry.geometry
    pt.s = norm_unit(pt.w, n, pt.w_hat)
    pt.zero_w = pt.s == 0.0
    pt.has_perp = False
    if pt.zero_w:
        pt.theta, pt.cos, pt.sin = 0.0, 1.0, 0.0
        for i in range(n):
            pt.e_perp[i] = 0.0
        return 1
    # Kahan's angle formula, snapped to 0 or pi within rounding
    for i in range(n):
        tmp[i] = pt.w_hat[i] - pt.ws_hat[i]
    d = norm_unit(tmp, n, NULL)
    for i in range(n):
        tmp[i] = pt.w_hat[i] + pt.ws_hat[i]
    pt.theta = 2.0 * atan2(d, norm_unit(tmp, n, NULL))
    snap = SNAP_EPS * sqrt(<double>n)
    if pt.theta <= snap:
        pt.theta = 0.0
    elif pt.theta >= PI - snap:
        pt.theta = PI
    if pt.theta == 0.0 or pt.theta == PI:
        pt.cos, pt.sin = (1.0 if pt.theta == 0.0 else -1.0), 0.0
        for i in range(n):
            pt.e_perp[i] = 0.0
        return 1
    pt.cos, pt.sin = cos(pt.theta), sin(pt.theta)
    c = 0.0
    for i in range(n):
        c += pt.w_hat[i] * pt.ws_hat[i]
    for i in range(n):
        tmp[i] = pt.ws_hat[i] - c * pt.w_hat[i]
    pn = norm_unit(tmp, n, NULL)
    pt.has_perp = pn > 0.0
    for i in range(n):
        pt.e_perp[i] = tmp[i] / pn if pt.has_perp else 0.0
    return 1


cdef inline double ndtr(double x) noexcept nogil:
    """scipy.special.ndtr's formula (Cephes) on the C library's erf and erfc."""
    cdef double t = x * SQRT_HALF, y
    if fabs(t) < SQRT_HALF:
        return 0.5 + 0.5 * erf(t)
    y = 0.5 * erfc(fabs(t))
    return 1.0 - y if t > 0.0 else y


@cython.cdivision(True)
cdef void named_coefficients(int code, const point_t *pt, double *co) noexcept nogil:
    """co = (A1, B1, c1, c2) of a named STE at a point with w != 0:
    _formulas.named_formula with _formulas.window_terms."""
    cdef double a, x, phi_a, Phi_cot, half_erf, A1
    if code == STEFAST_STE_IDENTITY:
        co[0], co[1], co[2], co[3] = PHI0, 0.0, PHI0 * pt.cos, PHI0 * pt.sin
        return
    if code == STEFAST_STE_RELU:
        co[0], co[1] = PHI0, PHI0
        co[2], co[3] = PHI0 * (1.0 + pt.cos) / 2.0, PHI0 * pt.sin / 2.0
        return
    a = 1.0 / pt.s   # inf for a subnormal |w|, capped next
    if not a <= A_MAX:
        a = A_MAX
    x = a if a < PHI_ZERO else PHI_ZERO
    phi_a = PHI0 * exp(-0.5 * (x * x))
    if pt.sin == 0.0:
        Phi_cot, half_erf = (1.0 if pt.cos > 0.0 else 0.0), 0.5
    else:
        Phi_cot = ndtr(a * pt.cos / pt.sin)
        half_erf = 0.5 * erf(SQRT_HALF * a / pt.sin)
    A1 = PHI0 - phi_a
    if code == STEFAST_STE_CLIPPED_RELU:
        co[0], co[1] = A1, A1
        co[2] = PHI0 / 2.0 - phi_a * Phi_cot + pt.cos * PHI0 * half_erf
        co[3] = pt.sin * PHI0 * half_erf
    else:   # hardtanh
        co[0], co[1] = A1, 0.0
        co[2] = phi_a * (1.0 - 2.0 * Phi_cot) + 2.0 * pt.cos * PHI0 * half_erf
        co[3] = 2.0 * pt.sin * PHI0 * half_erf


@cython.cdivision(True)
cdef void expected_grad_w(int code, const point_t *pt, double *gw) noexcept nogil:
    """E[g_mu] into gw (n): _formulas.assemble."""
    cdef double co[4]
    cdef double coef_w, coef_p, mu0
    cdef int64_t i
    if pt.zero_w:
        # mu'(0): 1 for identity and hardtanh, 0 for relu and clipped_relu
        mu0 = 1.0 if code == STEFAST_STE_IDENTITY or code == STEFAST_STE_HARDTANH else 0.0
        coef_w = -mu0 * PHI0 * pt.vvs
        for i in range(pt.n):
            gw[i] = coef_w * pt.ws_hat[i]
        return
    named_coefficients(code, pt, co)
    # _formulas.coarse_formula
    coef_w = (pt.nv2 * co[0] + (pt.ov * pt.ov - pt.nv2) * co[1] / 2.0 - pt.vvs * co[2]
              - (pt.ov * pt.os - pt.vvs) * co[1] / 2.0)
    coef_p = -pt.vvs * co[3]
    for i in range(pt.n):
        gw[i] = coef_w * pt.w_hat[i] + coef_p * pt.e_perp[i]


@cython.cdivision(True)
cdef void grad_v(const point_t *pt, double *gv) noexcept nogil:
    """df/dv = (I + 11')(v - v*)/4 + theta v*/(2 pi), 0 at w = 0 (analytic._grad_v)."""
    cdef double k = pt.theta / TWO_PI
    cdef int64_t i
    for i in range(pt.m):
        gv[i] = 0.0 if pt.zero_w else (pt.v[i] - pt.vs[i] + pt.od) / 4.0 + k * pt.vs[i]


cdef object new_vector(int64_t length, double **data):
    cdef cnp.npy_intp dims[1]
    dims[0] = length
    out = cnp.PyArray_EMPTY(1, dims, cnp.NPY_DOUBLE, 0)
    data[0] = <double *>cnp.PyArray_DATA(<cnp.ndarray>out)
    return out


cdef object finite_pair(object gv, const double *pv, int64_t m, object gw, const double *pw,
                        int64_t n):
    """(gv, gw), or None if an entry is not finite."""
    if not (all_finite(pv, m) and all_finite(pw, n)):
        return None
    return gv, gw


_float64 = np.float64


@cython.cdivision(True)
def population_loss_point(object v, object w, object v_star, object w_star):
    """analytic.population_loss at one point ready for C; None otherwise."""
    cdef point_t pt
    cdef double f
    if not point_of((v, w, v_star, w_star), &pt):
        return None
    # _formulas.loss_formula
    if pt.zero_w:
        f = (pt.vs2 + pt.os * pt.os) / 8.0
    else:
        f = (pt.dd + pt.od * pt.od) / 8.0 + pt.theta * pt.vvs / TWO_PI
    return _float64(f) if isfinite(f) else None


@cython.cdivision(True)
def population_grad_point(object v, object w, object v_star, object w_star):
    """analytic.population_grad's (grad_v, grad_w) at one point ready for C; None otherwise."""
    cdef point_t pt
    cdef double *pv
    cdef double *pw
    cdef double coef
    cdef int64_t i
    if not point_of((v, w, v_star, w_star), &pt):
        return None
    gv = new_vector(pt.m, &pv)
    gw = new_vector(pt.n, &pw)
    grad_v(&pt, pv)
    # analytic._grad_w: -(v'v*) / (2 pi |w|) e_perp, with coefficient 0 where
    # e_perp is undefined (0), so that no overflow makes inf * 0 there; + 0.0
    # turns -0.0 into 0.0
    coef = -pt.vvs / (TWO_PI * pt.s) if pt.has_perp else 0.0
    for i in range(pt.n):
        pw[i] = coef * pt.e_perp[i] + 0.0
    return finite_pair(gv, pv, pt.m, gw, pw, pt.n)


def expected_coarse_grad_point(object v, object w, object v_star, object w_star, int code):
    """analytic.expected_coarse_grad's (grad_v, grad_w) for the window code
    (STE_CODES) at one point ready for C; None otherwise."""
    cdef point_t pt
    cdef double *pv
    cdef double *pw
    if not point_of((v, w, v_star, w_star), &pt):
        return None
    gv = new_vector(pt.m, &pv)
    gw = new_vector(pt.n, &pw)
    grad_v(&pt, pv)
    expected_grad_w(code, &pt, pw)
    return finite_pair(gv, pv, pt.m, gw, pw, pt.n)


@cython.cdivision(True)
def coarse_grad_cosine_point(object v, object w, object v_star, object w_star, int code):
    """analytic.coarse_grad_cosine for the window code at one point ready for
    C; None otherwise."""
    cdef point_t pt
    cdef double gw[POINT_MAX_N]
    cdef double gw_unit[POINT_MAX_N]
    cdef double top = 0.0, t, a, b, sign, gw_norm, c
    cdef int e
    cdef int64_t i
    cdef bint any_perp = False
    if not point_of((v, w, v_star, w_star), &pt):
        return None
    # as coarse_grad_cosine: v and v* scaled by a power of two that brings
    # their largest entry into [1/2, 1) (exact), so that no square or product
    # overflows; E[g_mu] reads only these four summaries of them, and with
    # entries below 1 and unit w_hat, e_perp it is finite
    for i in range(pt.m):
        top = fmax(top, fmax(fabs(pt.v[i]), fabs(pt.vs[i])))
    frexp(top, &e)
    t = ldexp(1.0, -e)
    pt.nv2 = pt.vvs = pt.ov = pt.os = 0.0
    for i in range(pt.m):
        a, b = pt.v[i] * t, pt.vs[i] * t
        pt.nv2 += a * a
        pt.vvs += a * b
        pt.ov += a
        pt.os += b
    expected_grad_w(code, &pt, gw)
    # df/dw points along -sign(v'v*) e_perp
    sign = 1.0 if pt.vvs > 0.0 else (-1.0 if pt.vvs < 0.0 else 0.0)
    gw_norm = norm_unit(gw, pt.n, gw_unit)
    c = 0.0
    for i in range(pt.n):
        any_perp = any_perp or (-sign * pt.e_perp[i] != 0.0)
        c += gw_unit[i] * (-sign * pt.e_perp[i])
    if not (gw_norm > 0.0 and any_perp):
        c = 0.0
    return _float64(-1.0 if c < -1.0 else (1.0 if c > 1.0 else c))


# ---- quantized ReLU ----
ROUNDING_CODES = {"ceil": STEFAST_ROUND_CEIL, "nearest": STEFAST_ROUND_NEAREST}
ALPHA_GRAD_CODES = {"exact": STEFAST_ALPHA_GRAD_EXACT, "lsq": STEFAST_ALPHA_GRAD_LSQ}


def quantized_relu(const floating[::1] x,   # IN
                   floating[::1] out,       # OUT (may alias x)
                   int bits, double alpha, int rounding):
    cdef int status = 0
    cdef int64_t n = x.shape[0]
    if n == 0:
        return
    with nogil:
        if floating is double:
            status = stefast_quantized_relu_d(&x[0], &out[0], n, bits, alpha,
                                              <stefast_rounding>rounding)
        else:
            status = stefast_quantized_relu_f(&x[0], &out[0], n, bits, alpha,
                                              <stefast_rounding>rounding)
    check_status(status)


def quantized_relu_grad(const floating[::1] x,      # IN
                        const floating[::1] grad,   # IN
                        floating[::1] grad_x,       # OUT (may alias grad)
                        int bits, double alpha, int rounding, int ste,
                        int alpha_grad):
    """Fills grad_x and returns sum_i grad[i] dq/dalpha(x[i]) as a double."""
    cdef int status = 0
    cdef double grad_alpha = 0.0
    cdef int64_t n = x.shape[0]
    if n == 0:
        return 0.0
    with nogil:
        if floating is double:
            status = stefast_quantized_relu_grad_d(
                &x[0], &grad[0], &grad_x[0], &grad_alpha, n, bits, alpha,
                <stefast_rounding>rounding, <stefast_ste>ste,
                <stefast_alpha_grad>alpha_grad)
        else:
            status = stefast_quantized_relu_grad_f(
                &x[0], &grad[0], &grad_x[0], &grad_alpha, n, bits, alpha,
                <stefast_rounding>rounding, <stefast_ste>ste,
                <stefast_alpha_grad>alpha_grad)
    check_status(status)
    return grad_alpha


# ---- Monte Carlo ----

MC_METHOD_CODES = {
    "full": STEFAST_MC_FULL,
    "projected": STEFAST_MC_PROJECTED,
    "conditional": STEFAST_MC_CONDITIONAL,
}


def threefry2x64_20(uint64_t ctr0, uint64_t ctr1, uint64_t key0, uint64_t key1):
    """The generator's block function (known-answer tests): two 64-bit words."""
    cdef uint64_t ctr[2]
    cdef uint64_t key[2]
    cdef uint64_t out[2]
    ctr[0] = ctr0
    ctr[1] = ctr1
    key[0] = key0
    key[1] = key1
    stefast_threefry2x64_20(ctr, key, out)
    return out[0], out[1]


def normals(const uint64_t[::1] key,   # IN  (2)
            uint64_t first_stream,
            floating[::1] out,         # OUT (nstreams*stream_len)
            int64_t nstreams, int64_t stream_len, int threads):
    cdef int status = 0
    if nstreams * stream_len == 0:
        return
    with nogil:
        if floating is double:
            status = stefast_normals_d(&key[0], first_stream, nstreams, stream_len,
                                       &out[0], threads)
        else:
            status = stefast_normals_f(&key[0], first_stream, nstreams, stream_len,
                                       &out[0], threads)
    check_status(status)


def mc_width(int method, int64_t m, int64_t n, int64_t k):
    return stefast_mc_width(<stefast_mc_method>method, m, n, k)


def mc_accumulate(const floating[::1] v,        # IN  (m)
                  const floating[::1] w,        # IN  (n)
                  const floating[::1] v_star,   # IN  (m)
                  const floating[::1] w_star,   # IN  (n)
                  const floating[::1] Q,        # IN  (k*n), may be empty
                  const floating[::1] alpha,    # IN  (k), may be empty
                  const floating[::1] beta,     # IN  (k), may be empty
                  int64_t k, int64_t m, int64_t n, object ste, int method,
                  const uint64_t[::1] key,      # IN  (2)
                  int64_t first_sample, int64_t n_samples, int64_t block,
                  int64_t[::1] count,           # IN/OUT (1)
                  double[::1] mean,             # IN/OUT (width)
                  double[::1] m2,               # IN/OUT (width)
                  int threads):
    cdef int status = 0
    cdef const floating *Qp = NULL
    cdef const floating *ap = NULL
    cdef const floating *bp = NULL
    if Q.shape[0] > 0:
        Qp = &Q[0]
    cdef const stefast_surrogate *sur = surrogate_of(ste)
    cdef int code = 0 if sur != NULL else ste
    if alpha.shape[0] > 0:
        ap = &alpha[0]
        bp = &beta[0]
    with nogil:
        if sur != NULL:
            if floating is double:
                status = stefast_mc_accumulate_surrogate_d(
                    &v[0], &w[0], &v_star[0], &w_star[0], Qp, ap, bp, k, m, n,
                    sur, <stefast_mc_method>method, &key[0], first_sample,
                    n_samples, block, &count[0], &mean[0], &m2[0], threads)
            else:
                status = stefast_mc_accumulate_surrogate_f(
                    &v[0], &w[0], &v_star[0], &w_star[0], Qp, ap, bp, k, m, n,
                    sur, <stefast_mc_method>method, &key[0], first_sample,
                    n_samples, block, &count[0], &mean[0], &m2[0], threads)
        elif floating is double:
            status = stefast_mc_accumulate_d(
                &v[0], &w[0], &v_star[0], &w_star[0], Qp, ap, bp, k, m, n,
                <stefast_ste>code, <stefast_mc_method>method, &key[0], first_sample,
                n_samples, block, &count[0], &mean[0], &m2[0], threads)
        else:
            status = stefast_mc_accumulate_f(
                &v[0], &w[0], &v_star[0], &w_star[0], Qp, ap, bp, k, m, n,
                <stefast_ste>code, <stefast_mc_method>method, &key[0], first_sample,
                n_samples, block, &count[0], &mean[0], &m2[0], threads)
    check_status(status)


def descent_ensemble(const floating[::1] v0,       # IN  (R*m)
                     const floating[::1] w0,       # IN  (R*n)
                     const floating[::1] v_star,   # IN  (m or R*m)
                     const floating[::1] w_star,   # IN  (n or R*n)
                     int64_t teacher_stride,
                     const floating[::1] Z,        # IN  (R*N*m*n), empty: drawn/online
                     const floating[::1] y,        # IN  (R*N), empty: teacher labels
                     int64_t R, int64_t N, int64_t m, int64_t n, uint64_t first_run,
                     double lr, int64_t steps, int64_t batch_size, int64_t record_every,
                     double tol, double label_noise,
                     object ste,                   # a window code or a SurrogateSpec
                     const uint64_t[::1] key,      # IN  (2)
                     floating[::1] v,              # OUT (R*m)
                     floating[::1] w,              # OUT (R*n)
                     int64_t[::1] steps_taken,     # OUT (R)
                     double[::1] final_loss,       # OUT (R)
                     double[::1] rec_loss,         # OUT (R*n_rec), may be empty
                     floating[::1] rec_v,          # OUT (R*n_rec*m), may be empty
                     floating[::1] rec_w,          # OUT (R*n_rec*n), may be empty
                     int64_t n_rec, int threads):
    cdef int status = 0
    cdef stefast_descent_options opt
    cdef const floating *Zp = NULL
    cdef const floating *yp = NULL
    cdef double *lp = NULL
    cdef floating *vp = NULL
    cdef floating *wp = NULL
    if R == 0:
        return
    opt.lr = lr
    opt.steps = steps
    opt.batch_size = batch_size
    opt.record_every = record_every
    opt.tol = tol
    opt.label_noise = label_noise
    opt.surrogate = surrogate_of(ste)
    opt.ste = <stefast_ste>(<int>0 if opt.surrogate != NULL else <int>ste)
    opt.key[0] = key[0]
    opt.key[1] = key[1]
    if Z.shape[0] > 0:
        Zp = &Z[0]
    if y.shape[0] > 0:
        yp = &y[0]
    if rec_loss.shape[0] > 0:
        lp = &rec_loss[0]
    if rec_v.shape[0] > 0:
        vp = &rec_v[0]
        wp = &rec_w[0]
    with nogil:
        if floating is double:
            status = stefast_descent_ensemble_d(
                &v0[0], &w0[0], &v_star[0], &w_star[0], teacher_stride, Zp, yp, R, N, m, n,
                first_run, &opt, &v[0], &w[0], &steps_taken[0], &final_loss[0], lp, vp, wp,
                n_rec, threads)
        else:
            status = stefast_descent_ensemble_f(
                &v0[0], &w0[0], &v_star[0], &w_star[0], teacher_stride, Zp, yp, R, N, m, n,
                first_run, &opt, &v[0], &w[0], &steps_taken[0], &final_loss[0], lp, vp, wp,
                n_rec, threads)
    check_status(status)


# ---- the C functions' addresses, for JIT compilers (stefast.jit) ----

# Taken here, where the extension links libstefast.a, so they never depend on
# the extension's dynamic symbol table (which other link options or a
# platform may strip); stefast.jit gives each one its signature from
# cstefast.pxd. tests/test_numba.py checks that this names every function
# cstefast.pxd declares.
C_FUNCTION_ADDRESSES = {
    "stefast_version": <uintptr_t>&stefast_version,
    "stefast_strerror": <uintptr_t>&stefast_strerror,
    "stefast_request_interrupt": <uintptr_t>&stefast_request_interrupt,
    "stefast_clear_interrupt": <uintptr_t>&stefast_clear_interrupt,
    "stefast_interrupt_requested": <uintptr_t>&stefast_interrupt_requested,
    "stefast_binarize_d": <uintptr_t>&stefast_binarize_d,
    "stefast_binarize_f": <uintptr_t>&stefast_binarize_f,
    "stefast_sign_d": <uintptr_t>&stefast_sign_d,
    "stefast_sign_f": <uintptr_t>&stefast_sign_f,
    "stefast_ste_grad_d": <uintptr_t>&stefast_ste_grad_d,
    "stefast_ste_grad_f": <uintptr_t>&stefast_ste_grad_f,
    "stefast_ste_grad_surrogate_d": <uintptr_t>&stefast_ste_grad_surrogate_d,
    "stefast_ste_grad_surrogate_f": <uintptr_t>&stefast_ste_grad_surrogate_f,
    "stefast_forward_d": <uintptr_t>&stefast_forward_d,
    "stefast_forward_f": <uintptr_t>&stefast_forward_f,
    "stefast_loss_and_grads_d": <uintptr_t>&stefast_loss_and_grads_d,
    "stefast_loss_and_grads_f": <uintptr_t>&stefast_loss_and_grads_f,
    "stefast_loss_and_grads_sum_d": <uintptr_t>&stefast_loss_and_grads_sum_d,
    "stefast_loss_and_grads_sum_f": <uintptr_t>&stefast_loss_and_grads_sum_f,
    "stefast_loss_and_grads_surrogate_d": <uintptr_t>&stefast_loss_and_grads_surrogate_d,
    "stefast_loss_and_grads_surrogate_f": <uintptr_t>&stefast_loss_and_grads_surrogate_f,
    "stefast_loss_and_grads_sum_surrogate_d": <uintptr_t>&stefast_loss_and_grads_sum_surrogate_d,
    "stefast_loss_and_grads_sum_surrogate_f": <uintptr_t>&stefast_loss_and_grads_sum_surrogate_f,
    "stefast_quantized_relu_d": <uintptr_t>&stefast_quantized_relu_d,
    "stefast_quantized_relu_f": <uintptr_t>&stefast_quantized_relu_f,
    "stefast_quantized_relu_grad_d": <uintptr_t>&stefast_quantized_relu_grad_d,
    "stefast_quantized_relu_grad_f": <uintptr_t>&stefast_quantized_relu_grad_f,
    "stefast_threefry2x64_20": <uintptr_t>&stefast_threefry2x64_20,
    "stefast_normals_d": <uintptr_t>&stefast_normals_d,
    "stefast_normals_f": <uintptr_t>&stefast_normals_f,
    "stefast_mc_width": <uintptr_t>&stefast_mc_width,
    "stefast_mc_accumulate_d": <uintptr_t>&stefast_mc_accumulate_d,
    "stefast_mc_accumulate_f": <uintptr_t>&stefast_mc_accumulate_f,
    "stefast_mc_accumulate_surrogate_d": <uintptr_t>&stefast_mc_accumulate_surrogate_d,
    "stefast_mc_accumulate_surrogate_f": <uintptr_t>&stefast_mc_accumulate_surrogate_f,
    "stefast_descent_ensemble_d": <uintptr_t>&stefast_descent_ensemble_d,
    "stefast_descent_ensemble_f": <uintptr_t>&stefast_descent_ensemble_f,
}

STATUS_CODES = {
    "STEFAST_OK": STEFAST_OK,
    "STEFAST_EINVAL": STEFAST_EINVAL,
    "STEFAST_ENOMEM": STEFAST_ENOMEM,
    "STEFAST_EINTR": STEFAST_EINTR,
}
