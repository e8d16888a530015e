"""Closed forms of the population analysis, shared by the public modules (private).

``stefast.analytic`` (the public functions) and ``stefast.descent`` (the
population mode of Algorithm 1) evaluate the same formulas: Lemma 1's loss
from scalar summaries, and the expected coarse gradient of any surrogate
from four coefficients of ``|w|`` and theta (docs/math.rst, section
"Expected coarse gradient"):

    A1 = E[g mu'(s g) 1[g > 0]]
    B1 = E[g mu'(s g)]
    c1 = E[x mu'(s x) 1[x cos t + y sin t > 0]]   (w_hat part)
    c2 = E[y mu'(s x) 1[x cos t + y sin t > 0]]   (e_perp part)

with g, x, y independent standard normals; closed forms for the named STEs,
1-D quadrature for a callable. The formulas take Python floats or arrays
alike, so the one-point fast paths and the batched paths share them.
"""

import math
from typing import NamedTuple

import numpy as np
from scipy import integrate, special

from stefast import _validation as val
from stefast._geometry import PHI0, dot, geometry

_SQRT_HALF = math.sqrt(0.5)


def phi(x):
    """Standard normal density."""
    return PHI0 * np.exp(-0.5 * np.square(x))


def loss_formula(dd, od, theta, vvs, vs2, os_, zero_w):
    """Lemma 1 from scalar summaries: d = v - v*, dd = |d|^2, od = 1'd, os_ = 1'v*."""
    if zero_w is True:
        return (vs2 + os_ * os_) / 8.0
    return (dd + od * od) / 8.0 + theta * vvs / (2.0 * math.pi)


class Coefficients(NamedTuple):
    A1: np.ndarray
    B1: np.ndarray
    c1: np.ndarray
    c2: np.ndarray
    mu0: float  # mu'(0), for w = 0


def window_terms(s, geo):
    """phi(a), Phi(a cot theta), Phi(a / sin theta) - 1/2 with a = 1/s, and their limits."""
    a = _inverse_norm(np.where(geo.zero_w, 1.0, s))
    on_axis = geo.sin == 0.0
    sin = np.where(on_axis, 1.0, geo.sin)
    # sin -> 0+: a cot theta -> +inf (theta = 0) or -inf (theta = pi); a / sin -> +inf
    with np.errstate(over="ignore"):  # a / sin overflowing to inf is its limit
        Phi_cot = np.where(on_axis, np.where(geo.cos > 0, 1.0, 0.0),
                           special.ndtr(a * geo.cos / sin))
        half_erf = np.where(on_axis, 0.5, 0.5 * special.erf(_SQRT_HALF * a / sin))
    return phi(np.minimum(a, _PHI_ZERO)), Phi_cot, half_erf


# phi(x) is 0 in float64 beyond about 38.6: a larger a needs no squaring
_PHI_ZERO = 64.0
# 1/|w| is capped here: finite, so a cot(theta) is 0 (not inf * 0 = NaN) at
# cos = 0, and past every point where Phi and erf reach their limits
_A_MAX = 1e300


def _inverse_norm(s):
    """a = 1/|w| for the window terms, at most _A_MAX (|w| may be subnormal)."""
    with np.errstate(divide="ignore", over="ignore"):
        return np.minimum(1.0 / s, _A_MAX)


def window_terms_scalar(s, cos, sin):
    """window_terms for one point with s > 0 (Python floats)."""
    a = min(1.0 / s, _A_MAX) if s > 1.0 / _A_MAX else _A_MAX
    phi_a = PHI0 * math.exp(-0.5 * a * a) if a < _PHI_ZERO else 0.0
    if sin == 0.0:
        return phi_a, (1.0 if cos > 0 else 0.0), 0.5
    # a / sin may overflow to inf, the limit of both terms
    return phi_a, 0.5 * math.erfc(-_SQRT_HALF * a * cos / sin), 0.5 * math.erf(_SQRT_HALF * a / sin)


def named_formula(ste, cos, sin, window):
    """(A1, B1, c1, c2, mu'(0)) of a named STE; floats or arrays alike."""
    if ste == "identity":
        # C = phi(0) w*_hat: Lemma 9, E[g] = (|v|^2 w_hat - (v'v*) w*_hat) / sqrt(2 pi)
        return PHI0, 0.0, PHI0 * cos, PHI0 * sin, 1.0
    if ste == "relu":
        # C = (w_hat + w*_hat) / (2 sqrt(2 pi)) = cos(theta/2) u / sqrt(2 pi): Lemma 4
        return PHI0, PHI0, PHI0 * (1.0 + cos) / 2.0, PHI0 * sin / 2.0, 0.0
    phi_a, Phi_cot, half_erf = window()
    A1 = PHI0 - phi_a
    if ste == "clipped_relu":
        # E1, E2: integration by parts of Lemma 7's p, q, xi (docs/math.rst,
        # section "Expected coarse gradient", clipped ReLU)
        E1 = PHI0 / 2.0 - phi_a * Phi_cot + cos * PHI0 * half_erf
        E2 = sin * PHI0 * half_erf
        return A1, A1, E1, E2, 0.0
    if ste == "hardtanh":
        # mu' = 1[|x| <= 1] is even, so B1 = 0; same integration by parts over [-a, a]
        H1 = phi_a * (1.0 - 2.0 * Phi_cot) + 2.0 * cos * PHI0 * half_erf
        H2 = 2.0 * sin * PHI0 * half_erf
        return A1, 0.0, H1, H2, 1.0
    raise AssertionError(ste)  # validated before


def named_coefficients(ste, geo):
    A1, B1, c1, c2, mu0 = named_formula(ste, geo.cos, geo.sin, lambda: window_terms(geo.s, geo))
    return Coefficients(*np.broadcast_arrays(A1, B1, c1, c2, geo.theta)[:4], mu0)


class Surrogate:
    """A user's vectorised mu'(x), checked once, with its breakpoints."""

    _LIMIT = 40.0  # phi(40) underflows: the integrands vanish beyond +-40
    _SPLITS = (-40.0, -4.0, 0.0, 4.0, 40.0)
    _QUAD = dict(epsabs=1e-15, epsrel=1e-12, limit=200)

    def __init__(self, fn, breakpoints):
        self.fn = fn
        self.name = getattr(fn, "__name__", type(fn).__name__)
        self.breakpoints = breakpoints
        probe = np.concatenate([[-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0], breakpoints])
        val.check_surrogate_values(self._call(probe), probe.shape)
        self.mu0 = float(self._call(np.zeros(1))[0])

    def _call(self, x):
        try:
            return np.asarray(self.fn(x))
        except Exception as exc:  # report which argument failed, keep the cause
            raise TypeError(
                f"ste callable failed on a float64 array of shape {x.shape}: {exc!r}; "
                "a callable ste must map an array x to mu'(x) of the same shape"
            ) from exc

    def scalar(self, x):
        """mu'(x) at one point, as quadrature evaluates it; must be finite there too."""
        y = float(self.fn(np.array([x]))[0])
        if not math.isfinite(y):
            raise ValueError(
                f"ste callable returned {y} at x = {x!r} (a point of the quadrature); "
                "mu'(x) must be finite for every real x")
        return y

    def _integral(self, f, scale):
        """Integral of f over (-L, L), split at 0, +-4 and the breakpoints / scale."""
        pts = set(self._SPLITS)
        if scale > 0:
            pts.update(float(p) / scale for p in self.breakpoints
                       if abs(p) < self._LIMIT * scale)
        pts = sorted(pts)
        parts = [integrate.quad(f, lo, hi, **self._QUAD)[0] for lo, hi in zip(pts[:-1], pts[1:])]
        neg = sum(r for r, hi in zip(parts, pts[1:]) if hi <= 0.0)
        pos = sum(r for r, lo in zip(parts, pts[:-1]) if lo >= 0.0)
        return neg, pos

    def coefficients(self, s, theta):
        """(A1, B1, c1, c2) at one (s > 0, theta) by quadrature."""
        mu = self.scalar
        cos = -1.0 if theta == np.pi else math.cos(theta)
        sin = 0.0 if theta in (0.0, np.pi) else math.sin(theta)
        neg, A1 = self._integral(lambda x: x * PHI0 * math.exp(-0.5 * x * x) * mu(s * x), s)
        B1 = neg + A1
        if sin == 0.0:
            c2 = 0.0
        else:
            # c2 = int phi(x) phi(x cot) mu'(s x) dx; x = t sin removes the spike at 0
            neg2, pos2 = self._integral(
                lambda t: PHI0 * math.exp(-0.5 * t * t) * mu(s * sin * t), s * sin)
            c2 = sin * PHI0 * (neg2 + pos2)
        if sin == 0.0:
            c1 = A1 if cos > 0 else B1 - A1  # Phi(x cot) -> 1[x > 0] or 1[x < 0]
        elif abs(cos) >= _SQRT_HALF:
            # near 0 or pi Phi(x cot) is a step of width |tan|: integrate the step
            # exactly and the remainder after x = u |tan|, which is smooth in u
            tn = sin / abs(cos)
            neg3, pos3 = self._integral(
                lambda u: abs(u) * math.exp(-0.5 * (u * tn) ** 2) * PHI0
                * special.ndtr(-abs(u)) * mu(s * tn * u), s * tn)
            base = A1 if cos > 0 else B1 - A1
            c1 = base - math.copysign(tn * tn, cos) * (neg3 + pos3)
        else:
            cot = cos / sin
            neg4, pos4 = self._integral(
                lambda x: x * PHI0 * math.exp(-0.5 * x * x) * special.ndtr(x * cot)
                * mu(s * x), s)
            c1 = neg4 + pos4
        return A1, B1, c1, c2


def surrogate_coefficients(sur, geo):
    s = geo.s.reshape(-1)
    theta = geo.theta.reshape(-1)
    keys = np.stack([s, theta], axis=-1)
    # the coefficients depend on (|w|, theta) only: integrate once per distinct pair
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    table = np.zeros((len(uniq), 4))
    for i, (si, ti) in enumerate(uniq):
        if si > 0:
            table[i] = sur.coefficients(float(si), float(ti))
    out = table[inverse.reshape(-1)].reshape(geo.theta.shape + (4,))
    return Coefficients(*np.moveaxis(out, -1, 0), sur.mu0)


def resolve_ste(ste, breakpoints):
    """A named STE string, or a Surrogate for a callable (one already resolved passes)."""
    if isinstance(ste, Surrogate):
        return ste
    if isinstance(ste, str):
        val.check_ste(ste)
        if breakpoints is not None:
            raise ValueError(f"breakpoints is only used with a callable ste, not with ste={ste!r}")
        return ste
    if not callable(ste):
        raise TypeError(
            f"ste must be one of {', '.join(map(repr, val.STES))} or a callable mu'(x); "
            f"got {type(ste).__name__}"
        )
    if breakpoints is None:
        breakpoints = getattr(ste, "breakpoints", ())
    return Surrogate(ste, val.check_breakpoints(breakpoints))


def coefficients(ste, geo):
    if isinstance(ste, str):
        return named_coefficients(ste, geo)
    return surrogate_coefficients(ste, geo)


def coarse_formula(nv2, ov, os_, vvs, A1, B1, c1, c2):
    """E[g_mu] = coef_w w_hat + coef_p e_perp (docs/math.rst,
    section "Expected coarse gradient", general surrogate)."""
    coef_w = nv2 * A1 + (ov * ov - nv2) * B1 / 2.0 - vvs * c1 - (ov * os_ - vvs) * B1 / 2.0
    return coef_w, -vvs * c2


def assemble(v, v_star, geo, co):
    """E[g_mu] from the four coefficients."""
    vvs = dot(v, v_star)
    coef_w, coef_p = coarse_formula(dot(v, v), v.sum(-1), v_star.sum(-1), vvs,
                                     co.A1, co.B1, co.c1, co.c2)
    g = coef_w[..., None] * geo.w_hat + coef_p[..., None] * geo.e_perp
    # w = 0: Zw = 0, r = -y*, so E[g] = mu'(0) sum_i v_i E[z_i r] = -mu'(0)(v'v*) phi(0) w*_hat
    g0 = (-co.mu0 * PHI0 * vvs)[..., None] * geo.w_star_hat
    return np.where(geo.zero_w[..., None], g0, g)


def expected(v, w, v_star, w_star, ste, breakpoints):
    v, w, v_star, w_star = val.check_population_inputs(v, w, v_star, w_star)
    sur = resolve_ste(ste, breakpoints)
    geo = geometry(w, w_star)
    gw = assemble(v, v_star, geo, coefficients(sur, geo))
    return v, v_star, geo, gw
