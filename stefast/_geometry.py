"""Geometry shared by every part of stefast (private).

The population analysis, population descent, the projected Monte Carlo
sampler and the reference twins all work in the plane of ``w`` and ``w*``:
the angle theta between them, the unit vector ``e_perp`` orthogonal to
``w_hat`` in that plane, and orthonormal bases of small spans. This module
is the one place where those are computed, with the one snapping rule for
angles at 0 and pi (docs/math.rst, section "Geometry"), and where the
surrogate windows of the named STEs are written down for NumPy code.
"""

import math
from typing import NamedTuple

import numpy as np

PHI0 = 1.0 / math.sqrt(2.0 * math.pi)  # the standard normal density at 0
TWO_PI = 2.0 * math.pi

# Angles within SNAP_EPS * sqrt(n) of 0 or pi are rounding noise of the
# normalisation of w and w*; they snap to exactly 0 or pi, where e_perp does
# not exist.
SNAP_EPS = 32.0 * float(np.finfo(np.float64).eps)

# The three surrogates the paper studies, in the order it lists them.
PAPER_STES = ("identity", "relu", "clipped_relu")

# The named surrogate windows: mu'(x) = 1 on the window, 0 outside (NaN is
# outside every window but identity's).
STE_WINDOWS = {
    "identity": "all x",
    "relu": "0 < x",
    "clipped_relu": "0 < x < 1",
    "hardtanh": "-1 <= x <= 1",
}


def window_mask(x, ste):
    """mu'(x) of a named surrogate as a boolean mask of x's shape."""
    if ste == "identity":
        return np.ones(np.shape(x), dtype=bool)
    if ste == "relu":
        return x > 0
    if ste == "clipped_relu":
        return (x > 0) & (x < 1)
    if ste == "hardtanh":
        return np.abs(x) <= 1
    raise AssertionError(ste)  # validated before


# A sum of squares in [_SS_MIN, _SS_MAX] gives the norm to rounding: no
# square overflowed, and squares that underflowed are below 2**-400 of it.
# Outside, the vector is scaled by its largest entry first.
_SS_MIN, _SS_MAX = 2.0 ** -600, 2.0 ** 1000


def norm_and_unit(x):
    """(|x|, x / |x|) along the last axis at any representable scale.

    x / |x| is 0 where x = 0, and stays a unit vector where |x| overflows
    (inf) or its square underflows: the norm scales before squaring
    (``norm(1e-200 e1) = 1e-200``, not 0).
    """
    ss = np.einsum("...i,...i->...", x, x)
    ok = (ss >= _SS_MIN) & (ss <= _SS_MAX)
    if ok.all():
        s = np.sqrt(ss)
        return s, x / s[..., None]
    big = np.max(np.abs(x), axis=-1)
    top = np.where(ok | (big == 0) | ~np.isfinite(big), 1.0, big)
    y = x / top[..., None]
    r = np.sqrt(np.einsum("...i,...i->...", y, y))
    s = np.where(ok, np.sqrt(ss), top * r)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = np.where((r > 0)[..., None], y / r[..., None], 0.0)
    return s, unit


def norm(x):
    """Euclidean norm along the last axis, without overflow or underflow of the squares."""
    return norm_and_unit(x)[0]


def dot(x, y):
    """Inner product along the last axis."""
    return np.einsum("...i,...i->...", x, y)


def snap_angle(theta, n):
    """theta with values within rounding of 0 or pi set to exactly 0 or pi."""
    snap = SNAP_EPS * math.sqrt(n)
    if isinstance(theta, float):
        return 0.0 if theta <= snap else math.pi if theta >= math.pi - snap else theta
    return np.where(theta <= snap, 0.0, np.where(theta >= np.pi - snap, np.pi, theta))


class Geometry(NamedTuple):
    """The plane of w and w*, batched over leading axes."""

    s: np.ndarray  # |w|
    w_hat: np.ndarray  # w / |w|, 0 where w = 0
    w_star_hat: np.ndarray
    theta: np.ndarray  # in [0, pi]; 0 where w = 0 (unused there)
    cos: np.ndarray
    sin: np.ndarray  # exactly 0 at snapped angles
    e_perp: np.ndarray  # unit, orthogonal to w_hat; 0 where sin = 0
    zero_w: np.ndarray  # bool, w == 0


def geometry(w, w_star):
    """Geometry of float64 arrays w, w_star of shape (..., n); w* nonzero."""
    n = w.shape[-1]
    s, w_hat = norm_and_unit(w)
    zero_w = s == 0
    w_star_hat = norm_and_unit(w_star)[1]
    # Kahan's angle formula: accurate at 0 and pi where arccos loses half the digits
    theta = 2.0 * np.arctan2(norm(w_hat - w_star_hat), norm(w_hat + w_star_hat))
    theta = np.where(zero_w, 0.0, snap_angle(theta, n))
    on_axis = (theta == 0.0) | (theta == np.pi)
    cos = np.where(theta == 0.0, 1.0, np.where(theta == np.pi, -1.0, np.cos(theta)))
    sin = np.where(on_axis, 0.0, np.sin(theta))
    p = w_star_hat - dot(w_hat, w_star_hat)[..., None] * w_hat
    p_norm = norm(p)
    good = ~on_axis & (p_norm > 0)
    e_perp = np.where(good[..., None], p / np.where(good, p_norm, 1.0)[..., None], 0.0)
    return Geometry(s, w_hat, w_star_hat, theta, cos, sin, e_perp, zero_w)


def _list_dot(a, b):
    return sum([x * y for x, y in zip(a, b)])


def list_norm(x):
    """|x| of a list of floats at any representable scale: the scalar twin of
    :func:`norm` for one point, in Python floats."""
    ss = _list_dot(x, x)
    if _SS_MIN <= ss <= _SS_MAX:
        return math.sqrt(ss)
    big = max(map(abs, x), default=0.0)
    if big == 0.0 or not math.isfinite(big):
        return math.sqrt(ss)
    y = [a / big for a in x]
    return big * math.sqrt(_list_dot(y, y))


def unit_geometry(w_hat, w_star_hat, n):
    """(theta, cos, sin, e_perp) of two unit vectors given as lists of floats.

    The scalar twin of :func:`geometry` for one point, in Python floats (a
    NumPy call costs more than the whole computation at this size); ``n`` is
    the dimension that sets the snapping, which may exceed ``len(w_hat)``
    when the vectors are coordinates in a subspace. ``e_perp`` is None where
    it does not exist.
    """
    dm = [a - b for a, b in zip(w_hat, w_star_hat)]
    dp = [a + b for a, b in zip(w_hat, w_star_hat)]
    theta = snap_angle(2.0 * math.atan2(math.sqrt(_list_dot(dm, dm)),
                                        math.sqrt(_list_dot(dp, dp))), n)
    if theta == 0.0:
        return theta, 1.0, 0.0, None
    if theta == math.pi:
        return theta, -1.0, 0.0, None
    c = _list_dot(w_hat, w_star_hat)
    p = [b - c * a for a, b in zip(w_hat, w_star_hat)]
    pn = math.sqrt(_list_dot(p, p))
    e_perp = [a / pn for a in p] if pn > 0 else None
    return theta, math.cos(theta), math.sin(theta), e_perp


def orthonormal_basis(vectors):
    """Orthonormal rows Q (k, n) spanning the given nonzero vectors, in order.

    Modified Gram-Schmidt, twice (orthogonal to rounding). A vector whose
    part orthogonal to the rows so far is below rounding of its own norm
    (64 eps sqrt(n)) adds no row, so parallel vectors give one row; zero
    vectors are skipped.
    """
    vectors = [np.asarray(x, dtype=np.float64) for x in vectors]
    n = vectors[0].shape[0]
    tol = 64.0 * float(np.finfo(np.float64).eps) * math.sqrt(n)
    rows = []
    for x in vectors:
        nx, r = norm_and_unit(x)
        if nx == 0:
            continue
        for _ in range(2):
            for q in rows:
                r = r - q * (q @ r)
        nr = norm(r)
        if nr > tol:
            rows.append(r / nr)
    return np.array(rows, dtype=np.float64).reshape(len(rows), n)


def at_angle(w_star, theta, norm_, gen):
    """A vector of the given norm at angle theta from w_star, in a random plane."""
    u = w_star / np.linalg.norm(w_star)
    e = gen.standard_normal(u.shape[0])
    e -= (e @ u) * u
    e /= np.linalg.norm(e)
    return norm_ * (math.cos(theta) * u + math.sin(theta) * e)
