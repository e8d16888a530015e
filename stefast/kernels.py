"""Public API of the binarized model's kernels (C, through stefast._core).

Conventions, shared with ``stefast.reference``:

* dtypes: float32 inputs compute in float32 and float64 in float64; any
  other real dtype (ints, bool) becomes float64, and mixed inputs follow
  NumPy promotion (float32 with float64 gives float64). Complex and object
  inputs raise TypeError.
* ``sigma(x) = 1[x > 0]``: sigma(0) = 0 and sigma(NaN) = 0.
* surrogate windows mu'(x) (``stefast.STES``): identity 1, relu 1[x > 0],
  clipped_relu 1[0 < x < 1] (both ends open), hardtanh 1[-1 <= x <= 1]
  (both ends closed). Outside its window the gradient is exactly 0, even
  where the incoming gradient is inf or NaN.
* any memory layout is accepted (strided, transposed, Fortran, read-only);
  inputs are never modified. ``out=`` must have the result's exact shape
  and dtype and be writeable; it is returned.
"""

from typing import NamedTuple

import numpy as np

from stefast import _core
from stefast import _validation as val
from stefast.surrogates import c_argument


class LossAndGrads(NamedTuple):
    """Sample loss r^2/2, exact dl/dv and coarse gradient g_mu (docs/math.rst,
    section "Gradients of one sample").

    Attributes
    ----------
    loss : ndarray
        ``r^2/2``, shape () for a reduced batch or a single Z, (B,) otherwise.
    grad_v : ndarray
        ``sigma(Zw) r``, shape (m,) or (B, m).
    grad_w : ndarray
        ``Z^T (mu'(Zw) * v) r``, shape (n,) or (B, n).
    """

    loss: np.ndarray
    grad_v: np.ndarray
    grad_w: np.ndarray


# The kernels take flat C-contiguous buffers: a.ravel() is a view of a
# contiguous array and a contiguous copy of any other.


#: the thread count of threads=None
_ALL_CORES = val.check_threads(None)


def _threads_for(threads, B):
    """The threads worth starting for B samples: no more than samples (an
    idle OpenMP thread woken for a tiny batch costs more than the batch)."""
    return min(val.check_threads(threads), max(B, 1))


def binarize(x, out=None):
    """Binary activation sigma(x) = 1[x > 0], elementwise.

    Parameters
    ----------
    x : array_like
        Real input; float32 stays float32, other reals become float64.
    out : ndarray, optional
        Writeable array of x's shape and float dtype to write into.

    Returns
    -------
    ndarray
        1 where x > 0, else 0 (so sigma(0) = 0 and sigma(NaN) = 0).

    Examples
    --------
    >>> import stefast
    >>> stefast.binarize([-1.0, 0.0, 2.5])
    array([0., 0., 1.])
    """
    if out is None:
        # the common case, checked in the Cython layer: a C-contiguous aligned
        # native float array needs neither conversion nor copy
        result = _core.binarize_common(x)
        if result is not None:
            return result
    x = val.as_float_array(x, "x")
    buffer, out = val.output_buffer(out, x.shape, x.dtype, (x,))
    _core.binarize(x.ravel(), buffer.reshape(-1))
    return val.finish(buffer, out)


def sign(x, out=None):
    """Sign with sign(0) = +1: +1 where x >= 0, -1 where x < 0, NaN for NaN.

    The binarized-network convention (never 0), unlike ``numpy.sign``.

    Parameters
    ----------
    x : array_like
        Real input; float32 stays float32, other reals become float64.
    out : ndarray, optional
        Writeable array of x's shape and float dtype to write into.

    Returns
    -------
    ndarray
        +1.0, -1.0 or NaN elementwise, in x's float dtype.

    Examples
    --------
    >>> import stefast
    >>> stefast.sign([-2.0, 0.0, 3.0])
    array([-1.,  1.,  1.])
    """
    if out is None:  # the common case, as in binarize
        result = _core.sign_common(x)
        if result is not None:
            return result
    x = val.as_float_array(x, "x")
    buffer, out = val.output_buffer(out, x.shape, x.dtype, (x,))
    _core.sign(x.ravel(), buffer.reshape(-1))
    return val.finish(buffer, out)


def ste_grad(x, grad, ste="relu", out=None):
    """Straight-through backward pass: ``grad * mu'(x)`` elementwise.

    Parameters
    ----------
    x : array_like
        Pre-activations where the surrogate derivative is evaluated.
    grad : array_like
        Incoming gradient, same shape as x.
    ste : {"identity", "relu", "clipped_relu", "hardtanh"} or stefast.surrogates object
        Surrogate: identity 1; relu 1[x > 0]; clipped_relu 1[0 < x < 1]
        (open ends); hardtanh 1[-1 <= x <= 1] (closed ends); or any
        registry surrogate (``stefast.surrogates.swish_sign(5.0)``), whose
        mu' is evaluated in double and rounded to grad's dtype.
    out : ndarray, optional
        Writeable array of grad's shape and float dtype to write into.

    Returns
    -------
    ndarray
        grad (times mu'(x) for a registry surrogate) where mu'(x) != 0,
        exactly 0 elsewhere (also for inf/NaN grad). NaN x is outside every
        support but identity's.

    Examples
    --------
    >>> import stefast
    >>> stefast.ste_grad([-0.5, 0.5, 1.5], [1.0, 2.0, 3.0], ste="clipped_relu")
    array([0., 2., 0.])
    """
    if out is None and type(ste) is str and ste in _core.STE_CODES:
        result = _core.ste_grad_common(x, grad, _core.STE_CODES[ste])  # as in binarize
        if result is not None:
            return result
    x, grad = val.as_float_arrays(("x", x), ("grad", grad))
    val.check_same_shape(x, "x", grad, "grad")
    code = c_argument(val.check_ste(ste))
    buffer, out = val.output_buffer(out, grad.shape, grad.dtype, (x, grad))
    _core.ste_grad(x.ravel(), grad.ravel(), buffer.reshape(-1), code)
    return val.finish(buffer, out)


def forward(Z, v, w):
    """Prediction y = v^T sigma(Z w) of the binarized two-layer network.

    Parameters
    ----------
    Z : array_like, shape (m, n) or (B, m, n)
        Input patches (rows z_i), one sample or a batch.
    v : array_like, shape (m,)
        Second-layer weights.
    w : array_like, shape (n,)
        Shared first-layer filter.

    Returns
    -------
    float or ndarray of shape (B,)
        The prediction of each sample, in Z's float dtype.

    Examples
    --------
    >>> import numpy as np, stefast
    >>> Z = np.array([[1.0, 0.0], [0.0, -1.0]])
    >>> float(stefast.forward(Z, v=[2.0, 3.0], w=[1.0, 1.0]))
    2.0
    """
    y = _core.forward_common(Z, v, w, _ALL_CORES)  # arguments ready for C: one call
    if y is not None:
        return y
    Z, v, w = val.check_model_inputs(Z, v, w)
    single = Z.ndim == 2
    B = 1 if single else Z.shape[0]
    m, n = Z.shape[-2:]
    y = np.empty(B, dtype=Z.dtype)
    _core.forward(Z.ravel(), v.ravel(), w.ravel(), y, B, m, n, _threads_for(None, B))
    return y[0] if single else y


def loss_and_grads(Z, v, w, v_star, w_star, *, ste="relu", reduce="mean", threads=None):
    """Sample loss, exact gradient in v and STE coarse gradient in w.

    For each sample Z (m x n) with residual r = v^T sigma(Zw) - v*^T sigma(Zw*):
    loss = r^2/2, grad_v = sigma(Zw) r (exact), grad_w = Z^T (mu'(Zw) * v) r
    (the coarse gradient g_mu); docs/math.rst, section "Gradients of one
    sample".

    Parameters
    ----------
    Z : array_like, shape (m, n) or (B, m, n)
        One input or a batch of B inputs.
    v : array_like, shape (m,)
        Student second-layer weights.
    w : array_like, shape (n,)
        Student filter.
    v_star : array_like, shape (m,)
        Teacher second-layer weights.
    w_star : array_like, shape (n,)
        Teacher filter.
    ste : {"identity", "relu", "clipped_relu", "hardtanh"} or stefast.surrogates object
        A registry surrogate adds each row with mu'(z.w) != 0 with
        coefficient mu'(z.w) v_i (mu' in double, rounded to the dtype).
    reduce : {"mean", "sum", "none"}
        "mean"/"sum" over the batch give shapes (), (m,), (n,); "none"
        gives (B,), (B, m), (B, n) (or (), (m,), (n,) for a single Z).
        Batch sums are accumulated in float64 whatever the input dtype, then
        returned in the input dtype. The mean of an empty batch is an error.
    threads : int, optional
        Threads over the batch; None uses every core. The result is bitwise
        identical for any value.

    Returns
    -------
    LossAndGrads
        Named tuple (loss, grad_v, grad_w).

    Notes
    -----
    Each sample is computed in the input precision (dot products over 16
    fixed lanes, so every CPU dispatch path rounds the same way). Rows of Z
    outside the surrogate's window add exactly nothing to grad_w. A NaN in a
    row of Z makes z.w NaN: the row is inactive (sigma(NaN) = 0), outside
    every window but identity's, and with identity it makes that sample's
    grad_w NaN.

    Examples
    --------
    >>> import numpy as np, stefast
    >>> rng = np.random.default_rng(0)
    >>> Z = rng.standard_normal((1000, 4, 6))
    >>> v, w = np.ones(4), np.ones(6)
    >>> out = stefast.loss_and_grads(Z, v, w, v, w)   # student == teacher
    >>> float(out.loss), out.grad_w.shape
    (0.0, (6,))
    """
    if (reduce == "mean" or reduce == "sum") and type(ste) is str and ste in _core.STE_CODES:
        # arguments ready for C (see _core.loss_and_grads_reduced): one call
        got = _core.loss_and_grads_reduced(
            Z, v, w, v_star, w_star, _core.STE_CODES[ste], reduce == "mean",
            _ALL_CORES if threads is None else val.check_threads(threads))
        if got is not None:
            return LossAndGrads(*got)
    Z, v, w, v_star, w_star = val.check_model_inputs(Z, v, w, v_star, w_star)
    code = c_argument(val.check_ste(ste))
    reduce = val.check_reduce(reduce)
    single = Z.ndim == 2
    B = 1 if single else Z.shape[0]
    threads = _threads_for(threads, B)
    m, n = Z.shape[-2:]
    dt = Z.dtype
    args = (Z.ravel(), v.ravel(), w.ravel(), v_star.ravel(), w_star.ravel())

    if reduce == "none":
        loss = np.empty(B, dtype=dt)
        grad_v = np.empty((B, m), dtype=dt)
        grad_w = np.empty((B, n), dtype=dt)
        _core.loss_and_grads(*args, loss, grad_v.reshape(-1), grad_w.reshape(-1),
                            B, m, n, code, threads)
        if single:
            return LossAndGrads(loss[0], grad_v[0], grad_w[0])
        return LossAndGrads(loss, grad_v, grad_w)

    if reduce == "mean" and B == 0:
        raise ValueError("Z has an empty batch (B = 0): the mean is undefined; "
                         "use reduce='sum' or 'none'")
    sums = np.empty(1 + m + n, dtype=np.float64)
    _core.loss_and_grads_sum(*args, sums, B, m, n, code, threads)
    if reduce == "mean":
        sums /= B
    sums = sums.astype(dt, copy=False)
    return LossAndGrads(sums[0], sums[1:1 + m], sums[1 + m:])
