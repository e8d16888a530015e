"""Population analysis of the two-layer binarized model (docs/math.rst,
sections "Population loss" to "Critical points").

Everything here is an exact expectation over Gaussian inputs ``Z``, in
float64, with no sampling. The expected coarse gradient of any surrogate
lies in span{w_hat, e_perp} and depends on the surrogate only through four
coefficients of ``|w|`` and theta; ``stefast._formulas`` computes them (closed
forms for the named STEs, quadrature for a callable) and assembles the
vector. The paper's Lemma 4 (relu), Lemma 9 (identity) and Lemma 7
(clipped_relu) are special cases; the tests check each against the paper's
own formula and against Monte Carlo.

Conventions (also stated in the docstrings):

* ``theta`` is computed as ``2 atan2(|w_hat - w*_hat|, |w_hat + w*_hat|)``,
  accurate near 0 and pi and never NaN, and snapped to exactly 0 or pi within
  rounding (``stefast._geometry``), where ``e_perp`` does not exist.
* At theta in {0, pi} (always the case for n = 1) ``df/dw`` does not exist;
  ``population_grad`` returns zeros there.
* ``w = 0`` is the model with ``Zw = 0``: sigma(0) = 0 so the prediction is 0,
  ``f(v, 0) = v*'(I + 11')v*/8``, ``df/dv = 0``, ``df/dw`` := 0, and the
  coarse gradient is ``-mu'(0) (v'v*) phi(0) w*_hat`` (exact, not a limit).
"""

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from stefast import _core
from stefast import _formulas as fm
from stefast import _validation as val
from stefast._geometry import dot, geometry, norm, norm_and_unit

__all__ = [
    "PopulationGrad",
    "CriticalPoints",
    "STEReport",
    "VanishCheck",
    "angle",
    "population_loss",
    "population_grad",
    "expected_coarse_grad",
    "critical_points",
    "is_critical",
    "coarse_grad_inner",
    "coarse_grad_cosine",
    "identity_spurious_grad_norm",
    "ste_report",
]


class PopulationGrad(NamedTuple):
    """A pair (grad_v, grad_w) of population gradients.

    Attributes
    ----------
    grad_v : ndarray, shape (..., m)
        Gradient (or expected gradient) with respect to v.
    grad_w : ndarray, shape (..., n)
        Gradient, or expected coarse gradient, with respect to w.
    """

    grad_v: np.ndarray
    grad_w: np.ndarray


def angle(w, w_star):
    """Angle theta(w, w*) in [0, pi] between two nonzero vectors.

    Parameters
    ----------
    w, w_star : array_like, shape (..., n)
        Nonzero vectors; leading axes broadcast.

    Returns
    -------
    ndarray or float
        ``arccos(w'w* / (|w| |w*|))``, computed as
        ``2 atan2(|w_hat - w*_hat|, |w_hat + w*_hat|)`` so it is accurate near 0
        and pi and never NaN (no arccos of a cosine rounded above 1). Angles
        within ``32 eps sqrt(n)`` of 0 or pi are returned as exactly 0 or pi.

    Raises
    ------
    ValueError
        If a vector is zero or non-finite, or the lengths differ.

    Examples
    --------
    >>> import numpy as np, stefast
    >>> float(stefast.angle([1.0, 0.0], [1.0, 1.0]))  # pi / 4
    0.7853981633974483
    >>> float(stefast.angle([2.0, 2.0], [-1.0, -1.0]))
    3.141592653589793
    """
    w, w_star = val.as_batched_vectors(("w", w), ("w_star", w_star), same_length=(("w", "w_star"),))
    val.check_nonzero_vectors(w, "w")
    val.check_nonzero_vectors(w_star, "w_star")
    return geometry(w, w_star).theta[()]


# --------------------------------------------------------------------------
# Lemmas 1 and 2: population loss and its gradient
# --------------------------------------------------------------------------


def population_loss(v, w, v_star, w_star):
    """Population loss ``f(v, w) = E_Z[(v'sigma(Zw) - v*'sigma(Zw*))^2 / 2]`` (Lemma 1).

    Parameters
    ----------
    v : array_like, shape (..., m)
        Student second-layer weights, m >= 1.
    w : array_like, shape (..., n)
        Student filter, n >= 1; ``w = 0`` is allowed.
    v_star : array_like, shape (..., m)
        Teacher second-layer weights.
    w_star : array_like, shape (..., n)
        Teacher filter, nonzero (any norm). Leading axes of all four broadcast.

    Returns
    -------
    ndarray or float
        ``f = (|d|^2 + (1'd)^2) / 8 + theta (v'v*) / (2 pi)`` with ``d = v - v*``
        (Lemma 1 rearranged so it does not cancel near the global minimum), and
        ``f(v, 0) = (|v*|^2 + (1'v*)^2) / 8``.

    Examples
    --------
    >>> import stefast
    >>> float(stefast.population_loss([1.0, 2.0], [1.0, 0.0], [1.0, 2.0], [3.0, 0.0]))
    0.0
    >>> round(float(stefast.population_loss([1.0, 2.0], [-1.0, 0.0], [1.0, 2.0], [3.0, 0.0])), 6)
    2.5
    """
    f = _core.population_loss_point(v, w, v_star, w_star)  # one point ready for C
    if f is not None:
        return f
    v, w, v_star, w_star = val.check_population_inputs(v, w, v_star, w_star)
    geo = geometry(w, w_star)
    d = v - v_star
    f = fm.loss_formula(dot(d, d), d.sum(-1), geo.theta, dot(v, v_star),
                      dot(v_star, v_star), v_star.sum(-1), False)
    f0 = fm.loss_formula(0.0, 0.0, 0.0, 0.0, dot(v_star, v_star), v_star.sum(-1), True)
    return np.where(geo.zero_w, f0, f)[()]



def _grad_v(v, v_star, geo):
    """df/dv = (I + 11')(v - v*)/4 + theta v*/(2 pi), and 0 at w = 0."""
    d = v - v_star
    g = (d + d.sum(-1, keepdims=True)) / 4.0 + (geo.theta / (2.0 * np.pi))[..., None] * v_star
    return np.where(geo.zero_w[..., None], 0.0, g)


def _grad_w(v, v_star, geo):
    """df/dw = -(v'v*) / (2 pi |w|) e_perp; 0 where e_perp is undefined."""
    # e_perp = 0 at theta in {0, pi} and w = 0: the coefficient there is 0 over
    # 1, not (v'v*) / |w|, which overflows for a tiny |w| (and inf * 0 = NaN)
    defined = np.any(geo.e_perp != 0, axis=-1)
    coef = np.where(defined, -dot(v, v_star), 0.0) / (2.0 * np.pi * np.where(defined, geo.s, 1.0))
    return coef[..., None] * geo.e_perp + 0.0  # + 0.0 turns -0.0 into 0.0


def population_grad(v, w, v_star, w_star):
    """Gradient of the population loss (Lemma 2).

    Parameters
    ----------
    v, w, v_star, w_star : array_like
        As in :func:`population_loss`.

    Returns
    -------
    PopulationGrad
        ``grad_v = (I + 11')v/4 - ((1 - 2 theta/pi) I + 11')v*/4`` and
        ``grad_w = -(v'v*) / (2 pi |w|) e_perp``. ``f`` is not differentiable
        in w at theta in {0, pi} (every point when n = 1) nor at w = 0; there
        ``grad_w`` is returned as zeros by convention. At ``w = 0``, ``f`` does
        not depend on v, so ``grad_v = 0``.

    Examples
    --------
    >>> import numpy as np, stefast
    >>> gv, gw = stefast.population_grad([1.0, 1.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0])
    >>> gv, gw  # theta = pi/2, v'v* = 1
    (array([0.5, 0.5]), array([-0.15915494,  0.        ]))
    """
    got = _core.population_grad_point(v, w, v_star, w_star)  # one point ready for C
    if got is not None:
        return PopulationGrad(*got)
    v, w, v_star, w_star = val.check_population_inputs(v, w, v_star, w_star)
    geo = geometry(w, w_star)
    return PopulationGrad(_grad_v(v, v_star, geo), _grad_w(v, v_star, geo))


# --------------------------------------------------------------------------
# Section 5: expected coarse gradients
# --------------------------------------------------------------------------


def _named_code(ste, breakpoints):
    """The window code (stefast._core.STE_CODES) of a named STE, or of a
    registry window equal to one, for the one-point calls; None for any
    other ste, which the general path resolves and checks."""
    if type(ste) is not str and val.is_registry_surrogate(ste) and ste.named is not None:
        ste = ste.named
    if type(ste) is str and breakpoints is None:
        return _core.STE_CODES.get(ste)
    return None




def expected_coarse_grad(v, w, v_star, w_star, ste="relu", *, breakpoints=None):
    """Population coarse gradient ``E_Z[g_mu(v, w; Z)]`` for a straight-through estimator.

    Parameters
    ----------
    v, w, v_star, w_star : array_like
        As in :func:`population_loss` (leading axes broadcast; ``w_star``
        nonzero of any norm; ``w = 0`` allowed).
    ste : {"identity", "relu", "clipped_relu", "hardtanh"}, stefast.surrogates object or callable
        The surrogate derivative mu'. Named STEs use closed forms (windows as in
        ``stefast.kernels``: 1, 1[x > 0], 1[0 < x < 1], 1[-1 <= x <= 1]); so do
        registry windows and piecewise polynomials (Gaussian moments over the
        pieces, Owen's T); the smooth registry families and callables go
        through the quadrature below. A callable
        must map a float64 array to mu'(x) of the same shape; it is evaluated by
        adaptive quadrature (``scipy.integrate.quad``) of four 1-D Gaussian
        integrals, split at 0 and at the breakpoints, each rescaled to the
        integration variable (``x_k / |w|``, ``x_k / (|w| sin theta)``, ...).
        With the breakpoints of a piecewise-constant mu' the result agrees with
        the closed forms to about 1e-12 relative. The integrals depend on
        ``(|w|, theta)`` only and are computed once per distinct pair.
    breakpoints : sequence of float, optional
        Points where a callable mu' jumps or kinks. Defaults to the callable's
        attribute ``breakpoints`` if it has one, else none (fine for smooth mu').
        Only for a callable ste.

    Returns
    -------
    PopulationGrad
        ``grad_v = df/dv`` (equal to ``E[dl/dv]``, Lemma 4) and ``grad_w = E[g_mu]``:
        identity ``(|v|^2 w_hat - (v'v*) w*_hat) / sqrt(2 pi)`` (Lemma 9); relu
        ``h/(2 sqrt(2 pi)) w_hat - (v'v*)(w_hat + w*_hat)/(2 sqrt(2 pi))`` (Lemma 4,
        zero second term at theta = pi); clipped_relu the Phi-form of docs/math.rst,
        section "Expected coarse gradient" (depends on ``|w|``); hardtanh its analogue over ``[-1, 1]``.
        At ``w = 0`` (where ``Zw = 0`` exactly), ``grad_v = 0`` and
        ``grad_w = -mu'(0) (v'v*) phi(0) w*_hat``.

    Raises
    ------
    ValueError, TypeError
        On mismatched lengths, ``w_star = 0``, non-finite input, an unknown
        ste name, or a callable that fails, returns the wrong shape or a
        non-real / non-finite value.

    Examples
    --------
    >>> import numpy as np, stefast
    >>> v, v_star = np.array([1.0, -0.5, 2.0]), np.array([0.5, 1.0, 1.5])
    >>> w, w_star = np.array([1.0, 0.0]), np.array([1.0, 1.0])
    >>> gv, gw = stefast.expected_coarse_grad(v, w, v_star, w_star, ste="relu")
    >>> gw
    array([ 0.37474237, -0.42314219])

    A callable surrogate with its jumps gives the same numbers:

    >>> def relu_window(x):
    ...     return (x > 0).astype(float)
    >>> relu_window.breakpoints = [0.0]
    >>> _, gw2 = stefast.expected_coarse_grad(v, w, v_star, w_star, ste=relu_window)
    >>> bool(np.allclose(gw2, gw, rtol=1e-10, atol=0))
    True
    """
    code = _named_code(ste, breakpoints)
    if code is not None:
        got = _core.expected_coarse_grad_point(v, w, v_star, w_star, code)  # one point ready for C
        if got is not None:
            return PopulationGrad(*got)
    v, v_star, geo, gw = fm.expected(v, w, v_star, w_star, ste, breakpoints)
    return PopulationGrad(_grad_v(v, v_star, geo), gw)


# --------------------------------------------------------------------------
# Section 6: the paper's claims as functions
# --------------------------------------------------------------------------


def coarse_grad_inner(v, w, v_star, w_star, ste="relu", *, breakpoints=None):
    """Inner product ``<E[g_mu], df/dw>`` (Lemmas 5, 7, 10).

    Computed from the two vectors, so it is an independent check of the
    paper's closed forms: for theta in (0, pi), relu gives
    ``sin(theta)(v'v*)^2 / (2 (2 pi)^(3/2) |w|)``, identity twice that, and
    clipped_relu ``E2 (v'v*)^2 / (2 pi |w|)``; for any mu' it equals
    ``c2 (v'v*)^2 / (2 pi |w|)`` with ``c2`` the e_perp coefficient of C.
    Zero where ``df/dw`` is defined as zero (theta in {0, pi}, w = 0).

    Parameters
    ----------
    v, w, v_star, w_star : array_like
        As in :func:`population_loss`.
    ste : str or callable
        As in :func:`expected_coarse_grad`.
    breakpoints : sequence of float, optional
        As in :func:`expected_coarse_grad`.

    Returns
    -------
    ndarray or float
        The inner product, one per point of the broadcast batch.

    Examples
    --------
    >>> import numpy as np, stefast
    >>> v, v_star = np.array([1.0, 2.0]), np.array([1.0, 1.0])
    >>> w, w_star = np.array([1.0, 0.0]), np.array([0.0, 1.0])  # theta = pi/2
    >>> x = stefast.coarse_grad_inner(v, w, v_star, w_star, ste="relu")
    >>> bool(np.isclose(x, 9 / (2 * (2 * np.pi) ** 1.5)))
    True
    """
    v, v_star, geo, gw = fm.expected(v, w, v_star, w_star, ste, breakpoints)
    return dot(gw, _grad_w(v, v_star, geo))[()]


def coarse_grad_cosine(v, w, v_star, w_star, ste="relu", *, breakpoints=None):
    """Cosine of the angle between ``E[g_mu]`` and ``df/dw``.

    Positive means ``-E[g_mu]`` is a descent direction of ``f(v, .)``. Defined as
    0 where either vector is zero (e.g. theta in {0, pi}, or v'v* = 0).

    Parameters
    ----------
    v, w, v_star, w_star : array_like
        As in :func:`population_loss`.
    ste : str or callable
        As in :func:`expected_coarse_grad`.
    breakpoints : sequence of float, optional
        As in :func:`expected_coarse_grad`.

    Returns
    -------
    ndarray or float
        Values in [-1, 1].

    Examples
    --------
    >>> import numpy as np, stefast
    >>> c = stefast.coarse_grad_cosine([1.0, 2.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0])
    >>> bool(0 < c <= 1)
    True
    """
    code = _named_code(ste, breakpoints)
    if code is not None:
        c = _core.coarse_grad_cosine_point(v, w, v_star, w_star, code)  # one point ready for C
        if c is not None:
            return c
    v, w, v_star, w_star = val.check_population_inputs(v, w, v_star, w_star)
    # both vectors are quadratic in (v, v*) jointly: scaling v and v* by a
    # power of two keeps their squares and products in range, exactly
    top = np.maximum(np.max(np.abs(v), axis=-1), np.max(np.abs(v_star), axis=-1))
    t = np.ldexp(1.0, -np.frexp(top)[1])[..., None]
    v, v_star, geo, gw = fm.expected(v * t, w, v_star * t, w_star, ste, breakpoints)
    # df/dw = -(v'v*) / (2 pi |w|) e_perp points along -sign(v'v*) e_perp, whose
    # length (which overflows for a tiny |w|) the cosine does not need
    gf_unit = -np.sign(dot(v, v_star))[..., None] * geo.e_perp
    gw_norm, gw_unit = norm_and_unit(gw)
    ok = (gw_norm > 0) & np.any(gf_unit != 0, axis=-1)
    return np.clip(np.where(ok, dot(gw_unit, gf_unit), 0.0), -1.0, 1.0)[()]


def identity_spurious_grad_norm(v_star):
    """``|E[g_id]|`` at the spurious minimiser, Lemma 9's closed form.

    ``2 (m - 1)(1'v*)^2 / (sqrt(2 pi) (m + 1)^2)``: nonzero when ``1'v* != 0``
    and ``m > 1``, so the identity STE does not stop at the spurious minimiser.
    The formula is the norm at ``(v_spurious, -w*)`` of :func:`critical_points`,
    which is a local minimiser only where ``spurious_exists`` holds.

    Parameters
    ----------
    v_star : array_like, shape (..., m)
        Teacher second-layer weights.

    Returns
    -------
    ndarray or float
        The norm, one per teacher of the batch.

    Examples
    --------
    >>> import stefast
    >>> round(float(stefast.identity_spurious_grad_norm([1.0, 1.0, 1.0])), 6)
    0.89762
    """
    (v_star,) = val.as_batched_vectors(("v_star", v_star))
    m = v_star.shape[-1]
    S = v_star.sum(-1)
    return (2.0 * (m - 1) * S * S / (math.sqrt(2.0 * math.pi) * (m + 1) ** 2))[()]


# --------------------------------------------------------------------------
# Proposition 1: critical points
# --------------------------------------------------------------------------


class CriticalPoints(NamedTuple):
    """Critical points of f for a teacher v* (Proposition 1), shapes (..., m) / (...).

    Attributes
    ----------
    v_global : ndarray
        ``v*``; with any ``w = c w*, c > 0`` (theta = 0) the global minimisers, f = 0.
    spurious_exists : ndarray of bool
        ``(1'v*)^2 < (m + 1)/2 |v*|^2``: the condition for spurious minimisers
        and saddles.
    v_spurious : ndarray
        ``(2 (1'v*)/(m + 1)) 1 - v*``, with ``w = -c w*`` (theta = pi) a local
        minimiser; NaN where ``spurious_exists`` is False.
    theta_saddle : ndarray
        ``(pi/2)(m + 1)|v*|^2 / ((m + 1)|v*|^2 - (1'v*)^2)``; every w at this
        angle to w* is a saddle with ``v_saddle``. NaN where none exist.
    v_saddle : ndarray
        ``(I + 11')^-1 ((1 - 2 theta/pi) I + 11') v*``, orthogonal to v*; NaN
        where none exist.
    """

    v_global: np.ndarray
    spurious_exists: np.ndarray
    v_spurious: np.ndarray
    theta_saddle: np.ndarray
    v_saddle: np.ndarray


def critical_points(v_star):
    """The critical points of the population loss (Proposition 1).

    Parameters
    ----------
    v_star : array_like, shape (..., m)
        Teacher second-layer weights (finite, m >= 1).

    Returns
    -------
    CriticalPoints
        Named tuple (v_global, spurious_exists, v_spurious, theta_saddle,
        v_saddle); NaN marks "does not exist".

    Examples
    --------
    >>> import stefast
    >>> cp = stefast.critical_points([1.0, -1.0, 0.5])
    >>> bool(cp.spurious_exists), cp.v_spurious
    (True, array([-0.75,  1.25, -0.25]))
    >>> round(float(cp.theta_saddle), 6)
    1.615676
    """
    (v_star,) = val.as_batched_vectors(("v_star", v_star))
    m = v_star.shape[-1]
    S = v_star.sum(-1)
    n2 = dot(v_star, v_star)
    exists = S * S < (m + 1) / 2.0 * n2
    denom = np.where(exists, (m + 1) * n2 - S * S, 1.0)
    theta_s = np.where(exists, (np.pi / 2.0) * (m + 1) * n2 / denom, np.nan)
    v_sp = (2.0 * S / (m + 1))[..., None] - v_star
    # (I + 11')^-1 (c I + 11') v* = c v* + S (1 - c)/(m + 1) 1, c = 1 - 2 theta/pi
    c = 1.0 - 2.0 * theta_s / np.pi
    v_sd = c[..., None] * v_star + (S * (1.0 - c) / (m + 1))[..., None]
    nan = np.where(exists[..., None], 0.0, np.nan)
    return CriticalPoints(v_star.copy(), exists[()], v_sp + nan, theta_s[()], v_sd + nan)


def is_critical(v, w, v_star, w_star, *, atol=1e-9):
    """Whether (v, w) is a critical point of f (Proposition 1), to a tolerance.

    f is smooth in w for theta in (0, pi) and has a kink in theta at 0 and pi,
    so "critical" means no first-order descent direction: ``df/dv = 0`` and

    * theta in (0, pi): ``v'v* = 0`` (so ``df/dw = 0``);
    * theta = 0: ``v'v* >= 0``; theta = pi: ``v'v* <= 0`` (moving w only
      raises f to first order); w = 0 is never reported critical.

    Tolerances: ``|df/dv| <= atol (1 + |v*|)`` and ``|v'v*| <= atol (1 + |v*|^2)``
    (the inequalities get the same slack).

    Parameters
    ----------
    v, w, v_star, w_star : array_like
        As in :func:`population_loss`.
    atol : float, optional
        Relative tolerance scale, default 1e-9.

    Returns
    -------
    ndarray of bool or bool
        True where (v, w) is critical within the tolerance.

    Examples
    --------
    >>> import numpy as np, stefast
    >>> v_star, w_star = np.array([1.0, -1.0, 0.5]), np.array([0.0, 2.0])
    >>> cp = stefast.critical_points(v_star)
    >>> w = np.array([np.sin(cp.theta_saddle), np.cos(cp.theta_saddle)])
    >>> bool(stefast.is_critical(cp.v_saddle, w, v_star, w_star))
    True
    >>> bool(stefast.is_critical(cp.v_saddle, [0.0, 1.0], v_star, w_star))
    False
    """
    atol = val.check_nonnegative_float(atol, "atol")
    v, w, v_star, w_star = val.check_population_inputs(v, w, v_star, w_star)
    geo = geometry(w, w_star)
    vs2 = dot(v_star, v_star)
    gv_ok = norm(_grad_v(v, v_star, geo)) <= atol * (1.0 + np.sqrt(vs2))
    vvs = dot(v, v_star)
    tol = atol * (1.0 + vs2)
    w_ok = np.where(geo.theta == 0.0, vvs >= -tol,
                    np.where(geo.theta == np.pi, vvs <= tol, np.abs(vvs) <= tol))
    return (gv_ok & w_ok & ~geo.zero_w)[()]


# --------------------------------------------------------------------------
# STE report card
# --------------------------------------------------------------------------


class VanishCheck(NamedTuple):
    """Largest ``|E[g_mu]|`` over the tested points of one kind of critical point."""

    site: str
    n_points: int
    max_norm: float
    tolerance: float
    vanishes: bool


@dataclass(frozen=True)
class STEReport:
    """How well a straight-through estimator's population gradient behaves.

    Attributes
    ----------
    ste : str
        Name of the surrogate.
    m, n : int
        Model sizes tested.
    n_points : int
        Interior points (theta in (0, pi)) where the cosine was measured.
    cosine_min, cosine_median : float
        Cosine between ``E[g_mu]`` and ``df/dw`` over those points.
    inner_min : float
        Smallest ``<E[g_mu], df/dw>`` over those points.
    descent : bool
        ``<E[g_mu], df/dw> > 0`` at every tested point: ``-E[g_mu]`` is a descent
        direction of ``f(v, .)`` everywhere tested.
    vanishing : tuple of VanishCheck
        At the global minimisers, the spurious minimisers and the saddles.
    """

    ste: str
    m: int
    n: int
    n_points: int
    cosine_min: float
    cosine_median: float
    inner_min: float
    descent: bool
    vanishing: tuple = field(default_factory=tuple)

    def vanishes_at(self, site):
        """Whether E[g_mu] vanished at one kind of critical point.

        Parameters
        ----------
        site : {"global", "spurious", "saddle"}
            The kind of critical point.

        Returns
        -------
        bool or None
            None if no such point exists for the teachers drawn.
        """
        for chk in self.vanishing:
            if chk.site == site:
                return chk.vanishes if chk.n_points else None
        raise KeyError(site)

    def to_markdown(self):
        yes = {True: "yes", False: "**no**", None: "n/a"}
        lines = [
            f"### STE report: `{self.ste}` (m = {self.m}, n = {self.n})",
            "",
            "| check | value |",
            "|---|---|",
            f"| interior points tested | {self.n_points} |",
            f"| min cosine(E[g], df/dw) | {self.cosine_min:.4f} |",
            f"| median cosine(E[g], df/dw) | {self.cosine_median:.4f} |",
            f"| min <E[g], df/dw> | {self.inner_min:.3e} |",
            f"| -E[g] a descent direction everywhere | {yes[self.descent]} |",
        ]
        for chk in self.vanishing:
            if chk.n_points:
                lines.append(f"| E[g] vanishes at {chk.site} ({chk.n_points} pts) | "
                             f"{yes[chk.vanishes]} (max norm {chk.max_norm:.2e}) |")
            else:
                lines.append(f"| E[g] vanishes at {chk.site} | n/a (none exist) |")
        return "\n".join(lines)

    def __str__(self):
        return self.to_markdown()


def ste_report(ste, m=5, n=4, rng=None, *, breakpoints=None, n_theta=15,
               w_norms=(0.5, 1.0, 2.0), n_pairs=4):
    """Report card of a straight-through estimator on the population problem.

    Draws ``n_pairs`` teachers ``(v*, w*)`` (``v*`` conditioned on spurious
    minimisers existing, ``w*`` of random norm) and students ``v``, then over
    ``n_theta`` angles in (0, pi) and the norms ``w_norms`` of w measures the
    cosine between ``E[g_mu]`` and ``df/dw``, whether ``-E[g_mu]`` is a descent
    direction of f in w everywhere, and ``|E[g_mu]|`` at the global minimisers
    ``(v*, c w*)``, the spurious minimisers ``(v_spurious, -c w*)`` and the
    saddles (``v_saddle``, w at ``theta_saddle``) for each ``c`` in ``w_norms``.
    A site "vanishes" if every norm there is ``<= 1e-8 (1 + |v*|^2)``.

    Parameters
    ----------
    ste : str, stefast.surrogates object or callable
        As in :func:`expected_coarse_grad`.
    m : int, optional
        Length of v (>= 1; for m = 1 there are no spurious minimisers).
    n : int, optional
        Length of w (>= 2, so that theta can be interior).
    rng : None, int or numpy.random.Generator, optional
        Seed or generator for the random draws.
    breakpoints : sequence of float, optional
        For a callable ste, as in :func:`expected_coarse_grad`.
    n_theta : int, optional
        Number of interior angles.
    w_norms : sequence of float, optional
        Positive norms of w.
    n_pairs : int, optional
        Number of random (v, v*, w*) draws.

    Returns
    -------
    STEReport
        ``str(report)`` is a markdown table.

    Examples
    --------
    >>> import stefast
    >>> rep = stefast.ste_report("identity", m=4, n=3, rng=0)
    >>> rep.descent, rep.vanishes_at("global"), rep.vanishes_at("spurious")
    (True, True, False)
    """
    sur = fm.resolve_ste(ste, breakpoints)
    name = sur if isinstance(sur, str) else sur.name
    m = val.check_positive_int(m, "m")
    n = val.check_positive_int(n, "n", minimum=2)
    n_theta = val.check_positive_int(n_theta, "n_theta")
    n_pairs = val.check_positive_int(n_pairs, "n_pairs")
    w_norms = val.as_float_array(w_norms, "w_norms").astype(np.float64).reshape(-1)
    if w_norms.size == 0 or not np.all(np.isfinite(w_norms) & (w_norms > 0)):
        raise ValueError(f"w_norms must be a non-empty sequence of positive finite numbers, "
                         f"got {w_norms.tolist()}")
    gen = val.check_rng(rng)

    thetas = np.linspace(0.0, np.pi, n_theta + 2)[1:-1]
    cosines, inners = [], []
    sites = {"global": [], "spurious": [], "saddle": []}
    for _ in range(n_pairs):
        v_star = gen.standard_normal(m)
        for _ in range(1000):  # condition on spurious minimisers existing (when possible)
            if m == 1 or critical_points(v_star).spurious_exists:
                break
            v_star = gen.standard_normal(m)
        v = gen.standard_normal(m)
        w_star = gen.standard_normal(n) * gen.uniform(0.5, 2.0)
        u = w_star / np.linalg.norm(w_star)
        e = gen.standard_normal(n)
        e -= (e @ u) * u
        e /= np.linalg.norm(e)
        tol = 1e-8 * (1.0 + v_star @ v_star)

        def along(t, c):
            return np.asarray(c)[..., None] * (np.cos(t)[..., None] * u + np.sin(t)[..., None] * e)

        T, C = np.meshgrid(thetas, w_norms, indexing="ij")
        W = along(T.reshape(-1), C.reshape(-1))
        gw = _assemble_at(v, W, v_star, w_star, sur)
        gf = population_grad(v, W, v_star, w_star).grad_w
        inner = np.einsum("ij,ij->i", gw, gf)
        denom = np.linalg.norm(gw, axis=-1) * np.linalg.norm(gf, axis=-1)
        inners.append(inner)
        cosines.append(np.where(denom > 0, inner / np.where(denom > 0, denom, 1.0), 0.0))

        cp = critical_points(v_star)
        norms = np.linalg.norm(_assemble_at(v_star, along(np.zeros_like(w_norms), w_norms),
                                            v_star, w_star, sur), axis=-1)
        sites["global"].append((norms, tol))
        if cp.spurious_exists:
            t = np.full_like(w_norms, np.pi)
            norms = np.linalg.norm(_assemble_at(cp.v_spurious, along(t, w_norms),
                                                v_star, w_star, sur), axis=-1)
            sites["spurious"].append((norms, tol))
            t = np.full_like(w_norms, cp.theta_saddle)
            norms = np.linalg.norm(_assemble_at(cp.v_saddle, along(t, w_norms),
                                                v_star, w_star, sur), axis=-1)
            sites["saddle"].append((norms, tol))

    cos_all = np.concatenate(cosines)
    inner_all = np.concatenate(inners)
    checks = []
    for site, rows in sites.items():
        if not rows:
            checks.append(VanishCheck(site, 0, float("nan"), float("nan"), False))
            continue
        max_norm = max(float(r.max()) for r, _ in rows)
        ok = all(bool(np.all(r <= t)) for r, t in rows)
        checks.append(VanishCheck(site, sum(r.size for r, _ in rows), max_norm,
                                  max(t for _, t in rows), ok))
    return STEReport(
        ste=str(name), m=m, n=n, n_points=int(cos_all.size),
        cosine_min=float(cos_all.min()), cosine_median=float(np.median(cos_all)),
        inner_min=float(inner_all.min()), descent=bool(np.all(inner_all > 0)),
        vanishing=tuple(checks),
    )


def _assemble_at(v, w, v_star, w_star, sur):
    """E[g_mu] for an already-resolved surrogate."""
    return fm.expected(v, w, v_star, w_star, sur, None)[3]
