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
alike, so population descent's one-point path and the batched paths share
them; stefast._core evaluates the same steps in C for the public closed
forms at one point (and reads its constants from here and _geometry).
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


class Quadrature:
    """A vectorised mu'(x) (a user's callable or a smooth registry family),
    checked once, with its breakpoints: the coefficients by 1-D quadrature."""

    _LIMIT = 40.0  # phi(40) underflows: the integrands vanish beyond +-40
    _SPLITS = (-40.0, -4.0, 0.0, 4.0, 40.0)
    _QUAD = dict(epsabs=1e-15, epsrel=1e-12, limit=200)

    def __init__(self, fn, breakpoints, name=None, scalar=None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", type(fn).__name__)
        if scalar is not None:  # a float -> float twin of fn, for the integrands
            self.scalar = scalar
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


def _xk_phi(x, k):
    """x^k phi(x), 0 at +-inf."""
    return 0.0 if math.isinf(x) else x ** k * PHI0 * math.exp(-0.5 * x * x)


def _Phi_between(lo, hi):
    """Phi(hi) - Phi(lo) without cancelling in the upper tail."""
    if lo > 0.0:
        return 0.5 * (math.erfc(_SQRT_HALF * lo) - math.erfc(_SQRT_HALF * hi))
    return 0.5 * (math.erfc(-_SQRT_HALF * hi) - math.erfc(-_SQRT_HALF * lo))


def gaussian_moments(lo, hi, kmax):
    """[M_0 .. M_kmax], M_k = int_lo^hi x^k phi(x) dx (ends may be infinite).

    M_k = lo^(k-1) phi(lo) - hi^(k-1) phi(hi) + (k - 1) M_(k-2): integration by
    parts of x^(k-1) (x phi(x)).
    """
    if max(abs(lo), abs(hi)) <= 1.0:
        # on a short piece the recursion cancels (its terms reach 1 / (hi - lo)^k
        # times the result): the Taylor series of phi, term by term, instead
        return [_series_moment(lo, hi, k) for k in range(kmax + 1)]
    M = [_Phi_between(lo, hi), _xk_phi(lo, 0) - _xk_phi(hi, 0)]
    for k in range(2, kmax + 1):
        M.append(_xk_phi(lo, k - 1) - _xk_phi(hi, k - 1) + (k - 1) * M[k - 2])
    return M[:kmax + 1]


def _series_moment(lo, hi, k):
    """int_lo^hi x^k phi(x) dx for |lo|, |hi| <= 1: phi(0) sum_j (-1/2)^j / j! x^(k+2j+1) / (k+2j+1)."""
    total, coef = 0.0, PHI0
    for j in range(40):  # (1/2)^j / j! < 1e-60 by j = 40
        p = k + 2 * j + 1
        total += coef * (hi ** p - lo ** p) / p
        coef *= -0.5 / (j + 1)
    return total


def _tail_phi_Phi(h, c):
    """int_h^inf phi(x) Phi(c x) dx = T(h, c) + Phi(-h) / 2 (Owen's T)."""
    if h == math.inf:
        return 0.0
    if h == -math.inf:
        return 0.5
    return float(special.owens_t(h, c)) + 0.25 * math.erfc(_SQRT_HALF * h)


def skew_moments(lo, hi, kmax, cos, sin):
    """[J_0 .. J_kmax], J_k = int_lo^hi x^k phi(x) Phi(x cot) dx, 0 < theta < pi.

    By parts, with phi(x) phi(c x) = phi(0) phi(x / sin) (c = cot):
    J_k = [-x^(k-1) phi(x) Phi(c x)] + c phi(0) sin^k M_(k-1)(lo/sin, hi/sin)
    + (k - 1) J_(k-2); J_0 by Owen's T.
    """
    c = cos / sin
    M = gaussian_moments(lo / sin, hi / sin, max(kmax - 1, 0))

    def edge(x, k):  # x^(k-1) phi(x) Phi(c x)
        return 0.0 if math.isinf(x) else _xk_phi(x, k - 1) * special.ndtr(c * x)

    J = [_tail_phi_Phi(lo, c) - _tail_phi_Phi(hi, c)]
    for k in range(1, kmax + 1):
        prev = (k - 1) * J[k - 2] if k >= 2 else 0.0
        J.append(edge(lo, k) - edge(hi, k) + c * PHI0 * sin ** k * M[k - 1] + prev)
    return J


class Piecewise:
    """A piecewise-polynomial mu' (registry windows and piecewise polynomials):
    the four coefficients in closed form, Gaussian moments over the pieces.

    Accuracy: near rounding for windows and linear pieces; c1's upward
    recursion (skew_moments) cancels on pieces much shorter than 1 (a
    breakpoint interval divided by a large |w|) when they carry x^2 or
    higher terms: about 1e-7 relative for a cubic piece at |w| = 40.
    """

    def __init__(self, sur):
        self.name = repr(sur)
        self.breakpoints, self.coef = sur.pieces
        self.mu0 = float(sur.derivative(np.zeros(1))[0])

    def coefficients(self, s, theta):
        """(A1, B1, c1, c2) at one (s > 0, theta): the integrals of docs/math.rst,
        section "Expected coarse gradient", of x^k over each piece
        [b_i / s, b_(i+1) / s) of mu'(s x)."""
        cos = -1.0 if theta == np.pi else math.cos(theta)
        sin = 0.0 if theta in (0.0, np.pi) else math.sin(theta)
        A1 = B1 = c1 = c2 = 0.0
        b = self.breakpoints
        for i, row in enumerate(self.coef):
            lo, hi = b[i] / s, b[i + 1] / s
            deg = len(row) - 1
            pos = gaussian_moments(max(lo, 0.0), max(hi, 0.0), deg + 1)
            full = gaussian_moments(lo, hi, deg + 1)
            if sin > 0.0:
                skew = skew_moments(lo, hi, deg + 1, cos, sin)
                tilt = gaussian_moments(b[i] / (s * sin), b[i + 1] / (s * sin), deg)
            for k, ck in enumerate(row):
                if ck == 0.0:
                    continue
                w = ck * s ** k
                A1 += w * pos[k + 1]
                B1 += w * full[k + 1]
                if sin > 0.0:
                    c1 += w * skew[k + 1]
                    # c2 = phi(0) sin E[mu'(s sin u)], u standard normal
                    c2 += ck * (s * sin) ** k * tilt[k]
        c2 *= PHI0 * sin
        if sin == 0.0:
            c1 = A1 if cos > 0 else B1 - A1  # Phi(x cot) -> 1[x > 0] or 1[x < 0]
        return A1, B1, c1, c2


def resolve_ste(ste, breakpoints):
    """A named STE string, a Piecewise (registry windows and piecewise
    polynomials), or a Quadrature (smooth registry families and callables);
    one already resolved passes."""
    if isinstance(ste, (Quadrature, Piecewise)):
        return ste
    if isinstance(ste, str) or not callable(ste):
        if not isinstance(ste, str) and not val.is_registry_surrogate(ste):
            raise TypeError(
                f"ste must be one of {', '.join(map(repr, val.STES))}, a stefast.surrogates "
                f"object or a callable mu'(x); got {type(ste).__name__}"
            )
        ste = val.check_ste(ste)
        if breakpoints is not None:
            raise ValueError(f"breakpoints is only used with a callable ste, not with ste={ste!r}")
        if isinstance(ste, str):
            return ste
        if ste.pieces is not None:
            return Piecewise(ste)
        return Quadrature(ste.derivative, val.check_breakpoints(ste.breakpoints), repr(ste),
                          ste.derivative_scalar)
    if breakpoints is None:
        breakpoints = getattr(ste, "breakpoints", ())
    return Quadrature(ste, val.check_breakpoints(breakpoints))


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
