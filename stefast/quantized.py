"""b-bit quantized ReLU, its straight-through backward pass and the fitted
resolution alpha (docs/math.rst, sections "Quantized ReLU" and "Fitted
resolution").

Conventions, shared with the C kernels (``src_c/quantize.c``) and the NumPy
twins (``stefast.reference``):

* Levels are ``alpha * k`` with ``k in {0, ..., L}``, ``L = 2**bits - 1``.
* ``rounding="ceil"`` is the paper's form: ``k = clip(ceil(x/alpha), 0, L)``,
  i.e. 0 for ``x <= 0``, ``ceil(x/alpha)*alpha`` up to ``(L-1)*alpha`` and
  ``L*alpha`` above.  ``rounding="nearest"`` rounds ``x/alpha`` to the nearest
  integer, ties to the upper level, and clips to ``[0, L]``.  With ``bits=1``
  the ceil form is ``alpha * 1[x > 0]``.
* NaN maps to NaN, ``+inf`` to ``L*alpha``, ``-inf`` to 0.
* Straight-through surrogates ``mu'(x)``: identity 1, relu ``1[x > 0]``,
  clipped_relu ``1[0 < x < L*alpha]`` (the clipped ReLU whose top is the top
  level).  Outside its window the gradient is exactly 0, even for inf/NaN.
* The alpha-gradient is ``sum_i grad_i * dq/dalpha(x_i)``, summed in double
  and returned in the input's dtype.  ``alpha_grad="exact"`` (default) uses
  ``dq/dalpha = k(x/alpha)``, the true derivative of ``q = alpha k(x/alpha)``
  wherever ``x`` is not on a level boundary (no straight-through estimate is
  involved).  ``alpha_grad="lsq"`` uses ``k - x/alpha`` for
  ``0 < x < L*alpha`` and ``k`` elsewhere, the LSQ convention in which the
  rounding is also passed straight through.
* float32 inputs stay float32 (computed in float, like NumPy would); every
  other real dtype becomes float64.
"""

import functools
import math
from typing import NamedTuple

import numpy as np
from scipy import optimize, special

from stefast import _core
from stefast import _validation as val

__all__ = [
    "QuantizedReluGrad",
    "QuantizedSTE",
    "optimal_alpha",
    "quantization_mse",
    "quantized_relu",
    "quantized_relu_grad",
    "quantized_ste",
]

ROUNDINGS = ("ceil", "nearest")
QUANTIZED_STES = ("identity", "relu", "clipped_relu")
ALPHA_GRADS = ("exact", "lsq")
MAX_BITS = 24  # levels stay exact integers in float32


class QuantizedReluGrad(NamedTuple):
    """Result of :func:`quantized_relu_grad`.

    Attributes
    ----------
    grad_x : ndarray
        The straight-through gradient with respect to x.
    grad_alpha : numpy scalar of x's dtype
        ``sum_i grad_i dq/dalpha(x_i)``.
    """

    grad_x: np.ndarray
    grad_alpha: np.floating


# ---- validation (shared with stefast.reference) ----------------------------

def check_bits(bits):
    return val.check_int(bits, "bits", 1, MAX_BITS)


def check_alpha(alpha, dtype=np.dtype(np.float64)):
    """alpha as a Python float: finite, > 0, and still > 0 in ``dtype``."""
    a = val.check_real(alpha, "alpha")
    if not (math.isfinite(a) and a > 0):
        raise ValueError(f"alpha must be finite and > 0, got {a!r}")
    a_t = dtype.type(a)
    if not (np.isfinite(a_t) and a_t > 0):
        raise ValueError(f"alpha = {a!r} is not a finite positive {dtype} number")
    return a


def check_rounding(rounding):
    return val.check_choice(rounding, "rounding", ROUNDINGS)


def check_quantized_ste(ste):
    return val.check_choice(ste, "ste", QUANTIZED_STES)


def check_alpha_grad(alpha_grad):
    return val.check_choice(alpha_grad, "alpha_grad", ALPHA_GRADS)


# ---- fast kernels ------------------------------------------------------------

def quantized_relu(x, bits, alpha, rounding="ceil", out=None):
    """b-bit quantized ReLU ``alpha * clip(round(x / alpha), 0, 2**bits - 1)``.

    Parameters
    ----------
    x : array_like
        Input, any shape; float32 stays float32, other reals become float64.
    bits : int
        Bit width b in [1, 24]; there are ``L = 2**b - 1`` levels above 0.
    alpha : float
        Resolution (level spacing), finite and > 0.
    rounding : {"ceil", "nearest"}
        ``"ceil"`` is the paper's form (0 for x <= 0, ``ceil(x/alpha)*alpha``
        up to ``(L-1)*alpha``, ``L*alpha`` above); ``"nearest"`` rounds to the
        nearest level (ties up) and clips at ``L*alpha``.
    out : ndarray, optional
        Writeable array of x's shape and result dtype; returned if given.

    Returns
    -------
    ndarray
        The quantized values, of x's shape. NaN stays NaN, +inf gives
        ``L*alpha``, -inf gives 0.

    Examples
    --------
    >>> import stefast
    >>> stefast.quantized_relu([-1.0, 0.1, 0.5, 0.6, 9.0], bits=2, alpha=0.5)
    array([0. , 0.5, 0.5, 1. , 1.5])
    >>> stefast.quantized_relu([0.2, 0.3], bits=2, alpha=0.5, rounding="nearest")
    array([0. , 0.5])
    """
    x = val.as_float_array(x, "x")
    bits = check_bits(bits)
    alpha = check_alpha(alpha, x.dtype)
    rounding = check_rounding(rounding)
    buffer, out = val.output_buffer(out, x.shape, x.dtype, (x,))
    _core.quantized_relu(x.ravel(), buffer.reshape(-1), bits, alpha,
                         _core.ROUNDING_CODES[rounding])
    return val.finish(buffer, out)


def quantized_relu_grad(x, grad, bits, alpha, ste="clipped_relu", out=None, *,
                        rounding="ceil", alpha_grad="exact"):
    """Straight-through backward pass of :func:`quantized_relu`.

    Parameters
    ----------
    x : array_like
        The forward input.
    grad : array_like
        Upstream gradient dloss/dq, same shape as x.
    bits, alpha : int, float
        As in :func:`quantized_relu`.
    ste : {"identity", "relu", "clipped_relu"}
        Surrogate derivative: 1, ``1[x > 0]`` or ``1[0 < x < L*alpha]``.
    out : ndarray, optional
        Receives ``grad_x``.
    rounding : {"ceil", "nearest"}
        The forward rounding (it matters for the alpha-gradient only).
    alpha_grad : {"exact", "lsq"}
        ``"exact"``: ``dq/dalpha = k(x/alpha)``, the true derivative wherever
        x is off a level boundary. ``"lsq"``: ``k - x/alpha`` inside
        ``0 < x < L*alpha``, ``k`` outside.

    Returns
    -------
    QuantizedReluGrad
        ``(grad_x, grad_alpha)``: ``grad_x = grad * mu'(x)`` (exactly 0 outside
        the window) and ``grad_alpha = sum(grad * dq/dalpha)``, accumulated in
        double and returned as a scalar of the result dtype. A NaN in x makes
        grad_alpha NaN; terms with ``dq/dalpha = 0`` contribute exactly 0.

    Examples
    --------
    >>> import stefast
    >>> g = stefast.quantized_relu_grad([-1.0, 0.2, 0.7, 2.0], [1.0, 1.0, 1.0, 1.0],
    ...                                 bits=1, alpha=1.0, ste="clipped_relu")
    >>> g.grad_x
    array([0., 1., 1., 0.])
    >>> float(g.grad_alpha)
    3.0
    """
    x, grad = val.as_float_arrays(("x", x), ("grad", grad))
    val.check_same_shape(x, "x", grad, "grad")
    bits = check_bits(bits)
    alpha = check_alpha(alpha, x.dtype)
    ste = check_quantized_ste(ste)
    rounding = check_rounding(rounding)
    alpha_grad = check_alpha_grad(alpha_grad)
    buffer, out = val.output_buffer(out, x.shape, x.dtype, (x, grad))
    ga = _core.quantized_relu_grad(
        x.ravel(), grad.ravel(), buffer.reshape(-1), bits, alpha,
        _core.ROUNDING_CODES[rounding], _core.STE_CODES[ste], _core.ALPHA_GRAD_CODES[alpha_grad])
    return QuantizedReluGrad(val.finish(buffer, out), x.dtype.type(ga))


# ---- surrogates for the analysis module --------------------------------------

class QuantizedSTE:
    """The surrogate derivative mu'(x) of a quantized ReLU's STE as a callable.

    ``QuantizedSTE(bits, alpha, ste)(x)`` returns ``mu'(x)`` as float64 (1 on
    the window, 0 off it); ``breakpoints`` lists the window ends, where mu'
    jumps. ``forward(x)`` is the quantized ReLU itself (ceil rounding unless
    ``rounding`` says otherwise). Use it wherever stefast accepts a callable
    surrogate.
    """

    def __init__(self, bits, alpha, ste="clipped_relu", rounding="ceil"):
        self.bits = check_bits(bits)
        self.alpha = check_alpha(alpha)
        self.ste = check_quantized_ste(ste)
        self.rounding = check_rounding(rounding)
        self.levels = 2 ** self.bits - 1
        top = self.levels * self.alpha
        self.breakpoints = {"identity": (), "relu": (0.0,), "clipped_relu": (0.0, top)}[ste]
        self.__name__ = f"quantized_{ste}_b{self.bits}"

    def __call__(self, x):
        x = np.asarray(x, dtype=np.float64)
        if self.ste == "identity":
            return np.ones_like(x)
        if self.ste == "relu":
            return (x > 0).astype(np.float64)
        return ((x > 0) & (x < self.levels * self.alpha)).astype(np.float64)

    def forward(self, x):
        return quantized_relu(x, self.bits, self.alpha, self.rounding)

    def __repr__(self):
        return (f"QuantizedSTE(bits={self.bits}, alpha={self.alpha!r}, "
                f"ste={self.ste!r}, rounding={self.rounding!r})")


def quantized_ste(bits, alpha, ste="clipped_relu", rounding="ceil"):
    """Vectorised surrogate ``mu'(x)`` with a ``breakpoints`` attribute.

    For :func:`stefast.expected_coarse_grad`, :func:`stefast.ste_report` and
    population-mode :func:`stefast.coarse_gradient_descent`, which take a
    callable surrogate.

    Parameters
    ----------
    bits : int
        Bit width in [1, 24].
    alpha : float
        Resolution, finite and > 0.
    ste : {"identity", "relu", "clipped_relu"}
        The surrogate; clipped_relu's window is ``0 < x < L*alpha``.
    rounding : {"ceil", "nearest"}
        The forward quantizer (its ``forward`` method).

    Returns
    -------
    QuantizedSTE
        A callable mapping x to mu'(x) as float64, with ``breakpoints`` (the
        window's ends) and ``forward(x)`` (the quantized ReLU).

    Examples
    --------
    >>> import stefast
    >>> mu = stefast.quantized_ste(2, 0.5, "clipped_relu")
    >>> mu([-1.0, 0.5, 1.6])
    array([0., 1., 0.])
    >>> mu.breakpoints
    (0.0, 1.5)
    """
    return QuantizedSTE(bits, alpha, ste, rounding)


# ---- the fitted resolution ---------------------------------------------------

def _cells(alpha, bits, rounding):
    """Cells (lo, hi, level value) covering x > 0 for the given quantizer."""
    L = 2 ** bits - 1
    k = np.arange(L + 1, dtype=np.float64)
    if rounding == "ceil":
        # (0, a] -> a, ((k-1)a, ka] -> ka, ((L-1)a, inf) -> La
        lo = np.concatenate([[0.0], (k[1:-1]) * alpha])
        hi = np.concatenate([k[1:-1] * alpha, [np.inf]])
        values = k[1:] * alpha
    else:
        # [0, a/2) -> 0, [(k-1/2)a, (k+1/2)a) -> ka, [(L-1/2)a, inf) -> La
        edges = (k[:-1] + 0.5) * alpha
        lo = np.concatenate([[0.0], edges])
        hi = np.concatenate([edges, [np.inf]])
        values = k * alpha
    return lo, hi, values


def quantization_mse(alpha, bits, rounding="nearest"):
    """E[(q(X) - X)^2] for X = |N(0, 1)| (half-Gaussian), in closed form.

    Summed cell by cell up to 13 bits; from 14 bits on in O(1) by a Taylor
    series on each cell and Euler-Maclaurin over the cells (exact to about
    1e-13 relative, where the cell-by-cell sum loses digits).

    On a cell (a, b) where q = c, with phi and Phi the standard normal pdf and
    cdf, ``int_a^b (x - c)^2 phi = (1 + c^2)(Phi(b) - Phi(a))
    + (a - 2c) phi(a) - (b - 2c) phi(b)``; the half-Gaussian density is
    ``2 phi`` on x > 0.
    """
    bits = check_bits(bits)
    alpha = check_alpha(alpha)
    rounding = check_rounding(rounding)
    if bits >= _EM_MIN_BITS:
        return float(_mse_many_levels(alpha, bits, rounding))
    return _mse_cells(alpha, bits, rounding)


def _mse_cells(alpha, bits, rounding):
    """quantization_mse as a sum over the 2**bits cells."""
    lo, hi, c = _cells(alpha, bits, rounding)
    top = np.isinf(hi)
    hi_f = np.where(top, 0.0, hi)
    phi_lo = np.exp(-0.5 * lo * lo) / math.sqrt(2 * math.pi)
    phi_hi = np.exp(-0.5 * hi_f * hi_f) / math.sqrt(2 * math.pi)
    hi_phi_hi = np.where(top, 0.0, (hi_f - 2 * c) * phi_hi)  # b phi(b) -> 0 as b -> inf
    # Phi(b) - Phi(a) computed from the upper tail for accuracy far out
    mass = special.ndtr(-lo) - special.ndtr(-hi)
    return float(2.0 * np.sum((1 + c * c) * mass + (lo - 2 * c) * phi_lo - hi_phi_hi))


def _mse_derivative(alpha, bits, rounding):
    """d/dalpha of quantization_mse: on a cell (lo, hi) = (s alpha, t alpha) with
    level c = j alpha, d/dalpha int_lo^hi (x - c)^2 p = -2 j int_lo^hi (x - c) p
    + t (hi - c)^2 p(hi) - s (lo - c)^2 p(lo), p = 2 phi the half-Gaussian density
    (the boundary terms cancel for "nearest", not for "ceil")."""
    lo, hi, c = _cells(alpha, bits, rounding)
    j = c / alpha
    top = np.isinf(hi)
    hi_f = np.where(top, 0.0, hi)
    p_lo = 2 * np.exp(-0.5 * lo * lo) / math.sqrt(2 * math.pi)
    p_hi = np.where(top, 0.0, 2 * np.exp(-0.5 * hi_f * hi_f) / math.sqrt(2 * math.pi))
    mass = 2 * (special.ndtr(-lo) - special.ndtr(-hi))
    first = (p_lo - p_hi) - c * mass  # int_lo^hi (x - c) p
    ends = (hi_f / alpha) * (hi_f - c) ** 2 * p_hi - (lo / alpha) * (lo - c) ** 2 * p_lo
    return float(np.sum(-2 * j * first + ends))


# ---- many levels: Taylor in the cell, Euler-Maclaurin over the cells ---------
#
# With 2**14 levels or more, every cell below the top one is at most
# 16 / 2**14 wide, and its error int (x - c)^2 phi over the cell is a short
# Taylor series in phi's derivatives at the level c; the sum of those over
# the levels k alpha is Euler-Maclaurin's, with phi's antiderivatives and
# derivatives at 0 and L alpha only. So the error costs O(1), not O(L) (16.7
# million cells at 24 bits), and is more accurate than the cell-by-cell sum,
# whose terms cancel to a few digits when the cells are that narrow.

_EM_MIN_BITS = 14
_TAYLOR_TERMS = 9  # the next term is below 1e-20 of the first at 2**14 levels
_BERNOULLI = (1.0 / 6.0, -1.0 / 30.0, 1.0 / 42.0, -1.0 / 30.0)  # B_2, B_4, B_6, B_8


def _phi_derivatives(x, count):
    """phi^(n)(x) = (-1)^n He_n(x) phi(x) for n < count (He: Hermite polynomials)."""
    phi = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
    he = [1.0, x]
    for n in range(2, count):
        he.append(x * he[-1] - (n - 1) * he[-2])
    return [(-1) ** n * he[n] * phi for n in range(count)]


def _top_cell_error(lo, c):
    """int_lo^inf (x - c)^2 phi(x) dx (complex alpha allowed)."""
    return (1 + c * c) * special.ndtr(-lo) + (lo - 2 * c) * _phi_derivatives(lo, 1)[0]


def _granular_error(alpha, levels, rounding):
    """Sum over the levels c = k alpha, 0 < k < L, of the error on their cells:
    (c - alpha, c] ("ceil") or [c - alpha/2, c + alpha/2) ("nearest")."""
    top = levels * alpha
    d0 = _phi_derivatives(0.0, _TAYLOR_TERMS + 2 * len(_BERNOULLI))
    dt = _phi_derivatives(top, _TAYLOR_TERMS + 2 * len(_BERNOULLI))
    total = 0.0
    for r in range(_TAYLOR_TERMS):
        # int over the cell of t^2 t^r / r!, t = x - c
        if rounding == "ceil":
            weight = (-1) ** r * alpha ** (r + 3) / (math.factorial(r) * (r + 3))
        elif r % 2 == 0:
            weight = 2 * (alpha / 2) ** (r + 3) / (math.factorial(r) * (r + 3))
        else:
            continue
        # sum_{0 < k < L} phi^(r)(k alpha) by Euler-Maclaurin
        integral = special.ndtr(top) - 0.5 if r == 0 else dt[r - 1] - d0[r - 1]
        s = integral / alpha - (d0[r] + dt[r]) / 2
        for i, b in enumerate(_BERNOULLI, start=1):
            s = s + b / math.factorial(2 * i) * alpha ** (2 * i - 1) \
                * (dt[r + 2 * i - 1] - d0[r + 2 * i - 1])
        total = total + weight * s
    return total


def _mse_many_levels(alpha, bits, rounding):
    """quantization_mse for bits >= _EM_MIN_BITS in O(1); alpha may be complex."""
    L = 2 ** bits - 1
    if rounding == "ceil":
        edge = _top_cell_error((L - 1) * alpha, L * alpha)
    else:
        # the cell [0, alpha/2) at level 0 by its Taylor series too: the closed
        # form subtracts numbers of size alpha to get one of size alpha^3
        h, d0 = alpha / 2, _phi_derivatives(0.0, _TAYLOR_TERMS)
        edge = sum(d0[r] * h ** (r + 3) / (math.factorial(r) * (r + 3))
                   for r in range(0, _TAYLOR_TERMS, 2)) \
            + _top_cell_error((L - 0.5) * alpha, L * alpha)
    return 2.0 * (edge + _granular_error(alpha, L, rounding))


def _mse_many_levels_derivative(alpha, bits, rounding):
    """d/dalpha of _mse_many_levels by a complex step (exact to rounding)."""
    h = alpha * 1e-30
    return float(np.imag(_mse_many_levels(complex(alpha, h), bits, rounding)) / h)


@functools.lru_cache(maxsize=None)
def _optimal_alpha(bits, rounding):
    L = 2 ** bits - 1
    if bits >= _EM_MIN_BITS:
        f = functools.partial(_mse_many_levels, bits=bits, rounding=rounding)
        df = functools.partial(_mse_many_levels_derivative, bits=bits, rounding=rounding)
    else:
        f = functools.partial(_mse_cells, bits=bits, rounding=rounding)
        df = functools.partial(_mse_derivative, bits=bits, rounding=rounding)
    # The error need not be convex in alpha: scan a geometric grid of the top
    # level L*alpha over [0.25, 16] (every minimum lies well inside), then
    # solve d mse / d alpha = 0 next to the best grid point. The root of the
    # closed-form derivative is sharp where the minimum of mse itself is flat.
    grid = np.geomspace(0.25, 16.0, 401) / L
    values = np.array([f(a) for a in grid])
    i = int(np.clip(np.argmin(values), 1, len(grid) - 2))
    lo_b, hi_b = grid[i - 1], grid[i + 1]
    if df(lo_b) < 0 < df(hi_b):
        return float(optimize.brentq(df, lo_b, hi_b, xtol=1e-15, rtol=1e-15, maxiter=200))
    res = optimize.minimize_scalar(f, bounds=(lo_b, hi_b), method="bounded",
                                   options={"xatol": 1e-12, "maxiter": 500})
    return float(res.x)


def optimal_alpha(bits, rounding="nearest"):
    """Resolution minimising the mean squared quantisation error of ``|N(0, 1)|``.

    A batch norm without scale and shift before each activation makes its
    positive inputs half-Gaussian, so the paper fixes alpha to the best
    uniform-quantizer fit of that law (docs/math.rst, section "Fitted
    resolution"). The error is
    computed in closed form (:func:`quantization_mse`) and minimised by a grid
    scan followed by a root solve of its closed-form derivative; the result
    is deterministic and accurate to about 1e-12.

    Parameters
    ----------
    bits : int
        Bit width in [1, 24].
    rounding : {"nearest", "ceil"}
        The quantizer whose error is minimised.

    Returns
    -------
    float
        The resolution alpha.

    Examples
    --------
    >>> import stefast
    >>> round(stefast.optimal_alpha(1, "ceil"), 6)  # E|N(0,1)| = sqrt(2/pi)
    0.797885
    """
    return _optimal_alpha(check_bits(bits), check_rounding(rounding))
