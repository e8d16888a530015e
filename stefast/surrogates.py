"""The surrogate derivatives mu'(x) practitioners train with, as parameterised families.

Every ``ste=`` argument of stefast accepts one of these objects as well as
the names in ``stefast.STES`` (which are shortcuts for four windows). Each
object is immutable and carries

* ``derivative(x)``: mu'(x), vectorised, exact (NumPy, float64 or float32 in,
  the same dtype out);
* ``name`` and ``params``: the family and its parameters (``repr`` rebuilds it);
* ``breakpoints``: where mu' or its derivatives jump or bend, for quadrature;
* ``kind`` and ``c_params``: the closed set of kinds the C kernels evaluate
  (``"window"``, ``"piecewise"``, ``"logistic"``, ``"swish"``) and their numbers.

Sign versus sigma: the factor of 2
----------------------------------
stefast's network binarises with sigma(x) = 1[x > 0], a step of height 1; a
surrogate for it should integrate to 1 over the line (``integral``). Larq's
quantizers binarise with sign(x), a step of height 2 = 2 sigma(x) - 1, and
their derivatives integrate to 2 (times the window width for ``ste_sign``).
The families below follow Larq's definitions where Larq has the same name,
so ``approx_sign()`` is 2 - 2|x| on |x| <= 1 exactly as in Larq. To use one
as the surrogate of sigma with the matching height, pass ``scale=0.5``:
``approx_sign(scale=0.5)`` is 1 - |x|. A constant factor rescales E[g] and so
the learning rate, never the direction of a coarse gradient.

Conventions at the edges: NaN is outside every surrogate's support (mu' = 0)
except the window of the whole line (``identity``), where mu' is its height
everywhere; mu' of +-inf is the limit (0 for the smooth families).

Examples
--------
>>> import numpy as np, stefast
>>> from stefast import surrogates
>>> swish = surrogates.swish_sign(5.0)
>>> swish, swish.integral
(swish_sign(beta=5.0, scale=1.0), 2.0)
>>> rng = np.random.default_rng(0)
>>> v, w, v_star, w_star = np.ones(3), np.array([1.0, 0.0]), np.ones(3), np.array([1.0, 1.0])
>>> g = stefast.expected_coarse_grad(v, w, v_star, w_star, ste=swish).grad_w
>>> est = stefast.monte_carlo(v, w, v_star, w_star, ste=swish, n_samples=100_000, rng=0)
>>> bool(np.all(np.abs(est.grad_w - g) < 5 * est.grad_w_se))
True
"""

import math

import numpy as np

from stefast import _core
from stefast import _validation as val

__all__ = [
    "Surrogate", "window", "identity", "relu", "clipped_relu", "hardtanh", "ste_heaviside",
    "ste_sign", "approx_sign", "swish_sign", "tanh", "sigmoid", "piecewise_polynomial",
    "named", "registry", "c_argument",
]

# The kinds the C kernels evaluate (stefast_surrogate_kind in src_c/stefast.h).
KINDS = ("window", "piecewise", "logistic", "swish")


class Surrogate:
    """A surrogate derivative mu'(x) of a registry family (immutable).

    Build one with the family functions of this module (``swish_sign(5.0)``,
    ``window(-0.5, 0.5)``, ...), not with this class.

    Attributes
    ----------
    name : str
        The family (``"swish_sign"``); ``repr`` rebuilds the object.
    params : tuple of (str, value)
        The family's parameters.
    kind : {"window", "piecewise", "logistic", "swish"}
        The C kernels' kind (``stefast_surrogate_kind``).
    c_params : tuple of float
        The kind's numbers as the C kernels take them.
    breakpoints : tuple of float
        Where mu' jumps, bends or changes scale, for quadrature.
    integral : float
        The integral of mu' over the line: 2 for a surrogate of sign, 1 for
        sigma (inf for an unbounded support).
    """

    __slots__ = ("name", "params", "kind", "c_params", "breakpoints", "integral",
                 "_pieces", "_named", "_spec")

    def __init__(self, name, params, kind, c_params, breakpoints, integral, pieces=None,
                 named=None):
        set_ = object.__setattr__
        set_(self, "name", name)
        set_(self, "params", tuple(params))  # ((key, value), ...)
        set_(self, "kind", kind)
        set_(self, "c_params", tuple(float(p) for p in c_params))
        set_(self, "breakpoints", tuple(float(b) for b in breakpoints))
        set_(self, "integral", float(integral))
        set_(self, "_pieces", pieces)
        set_(self, "_named", named)
        set_(self, "_spec", None)

    def __setattr__(self, key, value):
        raise AttributeError(f"{type(self).__name__} is immutable")

    def __reduce__(self):
        # pickled by its fields (a process pool or a Dask worker gets a copy);
        # the C spec is rebuilt there on first use, it holds pointers
        return (Surrogate, (self.name, self.params, self.kind, self.c_params, self.breakpoints,
                            self.integral, self._pieces, self._named))

    def __repr__(self):
        args = ", ".join(f"{k}={_plain(v)!r}" for k, v in self.params)
        return f"{self.name}({args})"

    def __eq__(self, other):
        return (isinstance(other, Surrogate) and self.name == other.name
                and self.params == other.params)

    def __hash__(self):
        return hash((self.name, self.params))

    @property
    def named(self):
        """The name in ``stefast.STES`` of the same window, or None."""
        return self._named

    @property
    def pieces(self):
        """(breakpoints, coefficients) of mu' as a piecewise polynomial, or None.

        Piece i is ``sum_k coefficients[i][k] x**k`` on ``[b_i, b_{i+1})``
        (breakpoints may be infinite at the ends); 0 outside ``[b_0, b_K)``.
        Windows and piecewise polynomials have them; the smooth families not.
        """
        return self._pieces

    def c_spec(self):
        """Return this surrogate as the C kernels take it.

        Returns
        -------
        stefast._core.SurrogateSpec
            The kind, its numbers and the piecewise arrays, built once.
        """
        if self._spec is None:
            if self.kind == "piecewise":
                b, c = self._pieces
                pieces, degree = len(c), len(c[0]) - 1
                spec = _core.SurrogateSpec(_core.SURROGATE_KINDS["piecewise"], (),
                                           np.array(b, dtype=np.float64),
                                           np.array(c, dtype=np.float64).reshape(-1),
                                           pieces, degree)
            else:
                empty = np.zeros(0)
                spec = _core.SurrogateSpec(_core.SURROGATE_KINDS[self.kind], self.c_params,
                                           empty, empty, 0, 0)
            object.__setattr__(self, "_spec", spec)
        return self._spec

    def derivative_scalar(self, x):
        """Return mu'(x) of one float, in plain Python floats (smooth kinds only).

        For the quadrature, where a NumPy call per point cost ten times the
        arithmetic.

        Parameters
        ----------
        x : float
            The point.

        Returns
        -------
        float
            mu'(x), the same expression as ``derivative``.
        """
        return _SCALARS[self.kind](self.c_params, x)

    def derivative(self, x):
        """Return mu'(x), elementwise.

        Parameters
        ----------
        x : array_like
            Points; float32 stays float32, other reals become float64.

        Returns
        -------
        ndarray
            mu'(x), evaluated in float64 and rounded to x's dtype.
        """
        x = val.as_float_array(x, "x")
        with np.errstate(over="ignore", invalid="ignore"):
            return _DERIVATIVES[self.kind](self, x).astype(x.dtype, copy=False)


def _plain(v):
    return tuple(_plain(u) for u in v) if isinstance(v, tuple) else v


# ---- mu' per kind (NumPy; the C kernels compute the same expressions) ----

def _window_derivative(sur, x):
    lo, hi, ends, height = sur.c_params
    ends = int(ends)
    if math.isinf(lo) and math.isinf(hi):  # the whole line: NaN included
        return np.full(x.shape, height)
    above = x >= lo if ends & 1 else x > lo
    below = x <= hi if ends & 2 else x < hi
    return np.where(above & below, height, 0.0)


def piecewise_values(breakpoints, coefficients, x):
    """sum_k c[i][k] x**k on [b_i, b_{i+1}), by Horner in float64; 0 elsewhere and at NaN."""
    x64 = np.asarray(x, dtype=np.float64)
    # Horner at +-inf clamped to the largest finite value: the rows' zero
    # padding then adds 0, not 0 * inf = NaN, to an unbounded piece's limit
    big = np.finfo(np.float64).max
    xh = np.where(x64 > big, big, np.where(x64 < -big, -big, x64))
    out = np.zeros(x64.shape)
    for i, coef in enumerate(coefficients):
        inside = (x64 >= breakpoints[i]) & (x64 < breakpoints[i + 1])
        p = np.full(x64.shape, coef[-1])
        for c in reversed(coef[:-1]):
            p = p * xh + c
        out = np.where(inside, p, out)
    return out


def _piecewise_derivative(sur, x):
    b, c = sur.pieces
    return piecewise_values(b, c, x)


def logistic_bump(u):
    """t / (1 + t)^2 with t = exp(-|u|): sigmoid'(u), even, never overflowing."""
    t = np.exp(-np.abs(u))
    return t / ((1.0 + t) * (1.0 + t))


def _logistic_derivative(sur, x):
    rate, height, offset = sur.c_params
    x64 = np.asarray(x, dtype=np.float64)
    return np.where(np.isnan(x64), 0.0, height * logistic_bump(rate * x64) + offset)


def _swish_derivative(sur, x):
    beta, scale = sur.c_params
    # Larq's beta (2 - beta x tanh(beta x / 2)) / (1 + cosh(beta x)) in t = exp(-beta |x|):
    # 1 + cosh = (1 + t)^2 / (2 t), y tanh(y / 2) = |y| (1 - t) / (1 + t)
    y = beta * np.abs(np.asarray(x, dtype=np.float64))
    t = np.exp(-y)
    value = scale * beta * (2.0 - y * ((1.0 - t) / (1.0 + t))) * (2.0 * t / ((1.0 + t) * (1.0 + t)))
    return np.where(np.isnan(y) | (t == 0.0), 0.0, value)


def _logistic_scalar(params, x):
    rate, height, offset = params
    if x != x:
        return 0.0
    t = math.exp(-rate * abs(x))
    return height * (t / ((1.0 + t) * (1.0 + t))) + offset


def _swish_scalar(params, x):
    beta, scale = params
    y = beta * abs(x)
    t = math.exp(-y)
    if y != y or t == 0.0:
        return 0.0
    return scale * beta * (2.0 - y * ((1.0 - t) / (1.0 + t))) * (2.0 * t / ((1.0 + t) * (1.0 + t)))


_SCALARS = {"logistic": _logistic_scalar, "swish": _swish_scalar}

_DERIVATIVES = {"window": _window_derivative, "piecewise": _piecewise_derivative,
                "logistic": _logistic_derivative, "swish": _swish_derivative}


# ---- the families ----

_NAMED_WINDOWS = {  # name: (lo, hi, lo closed, hi closed)
    "identity": (-math.inf, math.inf, True, True),
    "relu": (0.0, math.inf, False, True),
    "clipped_relu": (0.0, 1.0, False, False),
    "hardtanh": (-1.0, 1.0, True, True),
}


def _window(name, params, lo, hi, lo_closed, hi_closed, scale):
    # an infinite end has no condition: +inf is inside relu, -inf inside identity
    lo_closed = lo_closed or math.isinf(lo)
    hi_closed = hi_closed or math.isinf(hi)
    named = None
    if scale == 1.0:
        for key, ends in _NAMED_WINDOWS.items():
            if (lo, hi, lo_closed, hi_closed) == ends:
                named = key
    ends = int(lo_closed) | 2 * int(hi_closed)
    breakpoints = [p for p in (lo, hi) if math.isfinite(p)]
    pieces = ((lo, hi), ((scale,),))
    return Surrogate(name, params, "window", (lo, hi, ends, scale), breakpoints,
                     scale * (hi - lo), pieces, named)


def window(lo, hi, closed=True, scale=1.0):
    """mu'(x) = scale on the interval from lo to hi, 0 elsewhere.

    Parameters
    ----------
    lo, hi : float
        Ends, lo < hi; either may be infinite (an infinite end includes
        +-inf). ``window(-inf, inf)`` is identity, ``window(0, inf,
        closed=False)`` relu, ``window(0, 1, closed=False)`` clipped_relu,
        ``window(-1, 1)`` hardtanh: those four run the named STEs' code.
    closed : bool or (bool, bool)
        Whether the ends belong to the window (both, or (lo, hi) apart).
    scale : float
        The height, > 0.

    Returns
    -------
    Surrogate
        The window; ``.named`` is its name in ``stefast.STES`` if it is one.

    Examples
    --------
    >>> from stefast import surrogates
    >>> surrogates.window(-0.5, 0.5).derivative([-0.5, 0.0, 0.7])
    array([1., 1., 0.])
    >>> surrogates.window(0, 1, closed=False).named
    'clipped_relu'
    """
    lo, hi = val.check_window_ends(lo, hi)
    lo_closed, hi_closed = val.check_window_closed(closed)
    scale = val.check_positive_float(scale, "scale")
    params = (("lo", lo), ("hi", hi), ("closed", (lo_closed, hi_closed)), ("scale", scale))
    return _window("window", params, lo, hi, lo_closed, hi_closed, scale)


def named(name):
    """Return the registry window of a name in ``stefast.STES``.

    Parameters
    ----------
    name : {"identity", "relu", "clipped_relu", "hardtanh"}
        The named STE.

    Returns
    -------
    Surrogate
        The window with that name's ends (``named("relu").named == "relu"``).
    """
    lo, hi, lo_closed, hi_closed = _NAMED_WINDOWS[val.check_ste(name)]
    return window(lo, hi, closed=(lo_closed, hi_closed))


def identity():
    """Return the window mu'(x) = 1 (the paper's identity STE).

    Returns
    -------
    Surrogate
        ``named("identity")``.
    """
    return named("identity")


def relu():
    """Return the window mu'(x) = 1[x > 0] (the paper's ReLU STE).

    Returns
    -------
    Surrogate
        ``named("relu")``.
    """
    return named("relu")


def clipped_relu():
    """Return the window mu'(x) = 1[0 < x < 1] (the paper's clipped ReLU STE).

    Returns
    -------
    Surrogate
        ``named("clipped_relu")``.
    """
    return named("clipped_relu")


def hardtanh():
    """Return the window mu'(x) = 1[-1 <= x <= 1].

    Returns
    -------
    Surrogate
        ``named("hardtanh")``.
    """
    return named("hardtanh")


def ste_sign(clip_value=1.0, scale=1.0):
    """Return Larq's ``ste_sign``: mu'(x) = scale on ``|x| <= clip_value`` (ends included).

    A surrogate for sign (step 2); ``scale=0.5`` matches sigma's step of 1.
    ``ste_sign(1.0)`` is the hardtanh window.

    Parameters
    ----------
    clip_value : float
        Half-width of the window, > 0.
    scale : float
        The height, > 0.

    Returns
    -------
    Surrogate
        The immutable registry object (``derivative``, ``name``, ``params``,
        ``breakpoints``, ``integral``).
    """
    clip = val.check_positive_float(clip_value, "clip_value")
    scale = val.check_positive_float(scale, "scale")
    return _window("ste_sign", (("clip_value", clip), ("scale", scale)),
                   -clip, clip, True, True, scale)


def ste_heaviside(clip_value=1.0, scale=1.0):
    """Return Larq's ``ste_heaviside``: mu'(x) = scale on ``|x| <= clip_value`` (ends included).

    Larq uses it for the 0/1 step, sigma itself; its derivative is the same
    window as ``ste_sign``'s, which integrates to 2 clip_value.

    Parameters
    ----------
    clip_value : float
        Half-width of the window, > 0.
    scale : float
        The height, > 0.

    Returns
    -------
    Surrogate
        The immutable registry object (``derivative``, ``name``, ``params``,
        ``breakpoints``, ``integral``).
    """
    clip = val.check_positive_float(clip_value, "clip_value")
    scale = val.check_positive_float(scale, "scale")
    return _window("ste_heaviside", (("clip_value", clip), ("scale", scale)),
                   -clip, clip, True, True, scale)


def _piecewise(name, params, breakpoints, coefficients):
    b = tuple(float(x) for x in breakpoints)
    c = tuple(tuple(float(x) for x in row) for row in coefficients)
    # the integral of each piece's polynomial over its interval (inf if unbounded)
    integral = 0.0
    for (lo, hi), row in zip(zip(b[:-1], b[1:]), c):
        if any(row) and (math.isinf(lo) or math.isinf(hi)):
            integral = math.inf
            break
        integral += sum(ck * (hi ** (k + 1) - lo ** (k + 1)) / (k + 1) for k, ck in enumerate(row))
    degree = max(len(row) for row in c) - 1
    c = tuple(row + (0.0,) * (degree + 1 - len(row)) for row in c)
    c_params = (len(c), degree)
    return Surrogate(name, params, "piecewise", c_params, [x for x in b if math.isfinite(x)],
                     integral, (b, c))


def piecewise_polynomial(breakpoints, coefficients):
    """Return mu'(x) = sum_k coefficients[i][k] x**k on [breakpoints[i], breakpoints[i+1]).

    Parameters
    ----------
    breakpoints : sequence of K + 1 increasing floats
        The ends of the K pieces; the first may be -inf and the last +inf.
        mu' is 0 below the first and from the last on.
    coefficients : K sequences of floats
        Ascending powers of x (global x, not x - b_i); rows may differ in length.

    Returns
    -------
    Surrogate
        The piecewise polynomial (``.pieces`` holds it, rows padded to one degree).

    Notes
    -----
    The expected coarse gradient has a closed form (Gaussian moments over the
    pieces, with Owen's T for the odd-degree terms of c1); the C kernels
    evaluate it by Horner in double. Which side of a breakpoint holds the
    jump changes nothing in expectation (a null set).

    Examples
    --------
    >>> from stefast import surrogates
    >>> bump = surrogates.piecewise_polynomial([-1, 0, 1], [[1, 1], [1, -1]])  # 1 - |x|
    >>> bump.derivative([-0.5, 0.0, 0.25, 2.0])
    array([0.5 , 1.  , 0.75, 0.  ])
    """
    b, c = val.check_piecewise(breakpoints, coefficients)
    params = (("breakpoints", tuple(b)), ("coefficients", tuple(tuple(r) for r in c)))
    return _piecewise("piecewise_polynomial", params, b, c)


def approx_sign(scale=1.0):
    """Return Larq's ``approx_sign`` (Bi-Real Net): mu'(x) = ``scale (2 - 2|x|)`` on ``|x| <= 1``.

    A surrogate for sign (integral 2); ``scale=0.5`` gives ``1 - |x|`` for sigma.

    Parameters
    ----------
    scale : float
        Factor on Larq's derivative, > 0.

    Returns
    -------
    Surrogate
        The immutable registry object (``derivative``, ``name``, ``params``,
        ``breakpoints``, ``integral``).
    """
    scale = val.check_positive_float(scale, "scale")
    two = 2.0 * scale
    return _piecewise("approx_sign", (("scale", scale),), (-1.0, 0.0, 1.0),
                      ((two, two), (two, -two)))


def _smooth_breakpoints(rate):
    return (-8.0 / rate, -2.0 / rate, 0.0, 2.0 / rate, 8.0 / rate)


def swish_sign(beta=5.0, scale=1.0):
    """Return Larq's ``swish_sign`` (BNN+'s SignSwish).

    mu'(x) = scale beta (2 - beta x tanh(beta x / 2)) / (1 + cosh(beta x)),
    the derivative of 2 sigmoid(beta x)(1 + beta x (1 - sigmoid(beta x))) - 1,
    a surrogate for sign (integral 2; ``scale=0.5`` for sigma). It is
    negative for ``|beta x|`` beyond about 2.4.

    Parameters
    ----------
    beta : float
        Sharpness, > 0 (Larq's default 5).
    scale : float
        Factor on Larq's derivative, > 0.

    Returns
    -------
    Surrogate
        The immutable registry object (``derivative``, ``name``, ``params``,
        ``breakpoints``, ``integral``).
    """
    beta = val.check_positive_float(beta, "beta")
    scale = val.check_positive_float(scale, "scale")
    return Surrogate("swish_sign", (("beta", beta), ("scale", scale)), "swish", (beta, scale),
                     _smooth_breakpoints(beta), 2.0 * scale)


def tanh(beta=1.0, scale=1.0, offset=0.0):
    """Return mu'(x) = scale beta (1 - tanh(beta x)^2) + offset.

    The derivative of scale tanh(beta x) + offset x; scale tanh has a step of
    2 scale, so ``scale=0.5`` matches sigma. OneBit's 1.001 - tanh(x)^2 is
    ``tanh(1.0, 1.0, 0.001)``.

    Parameters
    ----------
    beta : float
        Sharpness, > 0.
    scale : float
        Factor, > 0.
    offset : float
        Constant added everywhere, >= 0.

    Returns
    -------
    Surrogate
        The immutable registry object (``derivative``, ``name``, ``params``,
        ``breakpoints``, ``integral``).
    """
    beta = val.check_positive_float(beta, "beta")
    scale = val.check_positive_float(scale, "scale")
    offset = val.check_nonnegative_float(offset, "offset")
    # beta sech^2(beta x) = 4 beta t / (1 + t)^2 with t = exp(-2 beta |x|)
    return Surrogate("tanh", (("beta", beta), ("scale", scale), ("offset", offset)), "logistic",
                     (2.0 * beta, 4.0 * scale * beta, offset), _smooth_breakpoints(2.0 * beta),
                     math.inf if offset > 0 else 2.0 * scale)


def sigmoid(beta=1.0, scale=1.0):
    """Return mu'(x) = scale beta s (1 - s) with s = 1 / (1 + exp(-beta x)).

    The derivative of scale sigmoid(beta x), a surrogate for sigma (integral
    scale).

    Parameters
    ----------
    beta : float
        Sharpness, > 0.
    scale : float
        Factor, > 0.

    Returns
    -------
    Surrogate
        The immutable registry object (``derivative``, ``name``, ``params``,
        ``breakpoints``, ``integral``).
    """
    beta = val.check_positive_float(beta, "beta")
    scale = val.check_positive_float(scale, "scale")
    return Surrogate("sigmoid", (("beta", beta), ("scale", scale)), "logistic",
                     (beta, scale * beta, 0.0), _smooth_breakpoints(beta), scale)


def c_argument(ste):
    """The C kernels' ste argument for a checked ste (``_validation.check_ste``):
    the window code of a name, the ``c_spec()`` of a registry object."""
    return _core.STE_CODES[ste] if isinstance(ste, str) else ste.c_spec()


def registry():
    """Return every family at its default parameters, by name (the STE zoo).

    Returns
    -------
    dict of str to Surrogate
        The four named windows, ste_sign, ste_heaviside, approx_sign,
        swish_sign, tanh and sigmoid.
    """
    return {
        "identity": identity(), "relu": relu(), "clipped_relu": clipped_relu(),
        "hardtanh": hardtanh(), "ste_sign": ste_sign(), "ste_heaviside": ste_heaviside(),
        "approx_sign": approx_sign(), "swish_sign": swish_sign(), "tanh": tanh(),
        "sigmoid": sigmoid(),
    }
