"""Coarse gradient descent (Algorithm 1, MATH.md section 7) and the paper's claims.

Algorithm 1 updates ``v <- v - lr E[dl/dv]`` and ``w <- w - lr E[g_mu]``.

Population mode (exact expectations) never touches an m- or n-vector inside
the loop. ``E[dl/dv] = (I + 11')(v - v*)/4 + theta v*/(2 pi)`` keeps v in
span{v0, v*, 1}, and ``E[g_mu]`` lies in span{w_hat, e_perp} = span{w, w*},
so w stays in span{w0, w*}. The loop therefore runs on at most 3 + 2
coordinates in orthonormal bases of those spans, in Python floats, with the
shared formulas of ``stefast.analytic`` (``_loss_formula``,
``_named_formula``, ``_coarse_formula``): about 10 us per step whatever m and
n. The recorded iterates are mapped back to R^m, R^n on demand
(``Trajectory.v``, ``Trajectory.w``); the tests check this route against a
step-by-step loop over ``stefast.expected_coarse_grad``.

Sampled mode draws a fresh batch of Gaussian inputs each step and uses the
C kernels (``stefast.loss_and_grads``, mean over the batch): mini-batch
coarse SGD. The recorded quantities are always the exact population ones.

The ``theorem1``, ``theorem2``, ``figure1`` and ``sampled_vs_population``
functions run the experiments behind the paper's claims (MATH.md section 6);
``stefast reproduce`` and the tests call them.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from stefast import _validation as val
from stefast import analytic as an
from stefast.kernels import loss_and_grads

__all__ = [
    "Trajectory", "coarse_gradient_descent", "Theorem1Result", "theorem1",
    "Theorem2Result", "theorem2", "Figure1Result", "figure1", "SampledResult",
    "sampled_vs_population", "spurious_start", "theorem2_start",
]

_TWO_PI = 2.0 * math.pi
_PHI0 = an._PHI0


# --------------------------------------------------------------------------
# trajectory container
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Trajectory:
    """Recorded iterates of coarse gradient descent.

    Arrays have one entry per recorded step (every ``record_every`` steps,
    always including step 0 and the last step taken).

    Attributes
    ----------
    step : ndarray of int
    f : ndarray
        Population loss f(v, w) (exact, Lemma 1).
    theta : ndarray
        Angle between w and w* (0 where w = 0).
    w_norm : ndarray
        ``|w|``.
    grad_v_norm : ndarray
        ``|df/dv|``.
    inner : ndarray
        ``<E[g_mu], df/dw>`` (Lemmas 5, 7, 10); 0 where df/dw is undefined.
    v_final, w_final : ndarray
        The last iterate.
    ste, lr, mode : as passed
    steps_taken : int
        Number of updates performed (< steps if ``tol`` stopped the run).
    converged : bool
        True if ``tol`` was given and the update norm fell below it.
    """

    step: np.ndarray
    f: np.ndarray
    theta: np.ndarray
    w_norm: np.ndarray
    grad_v_norm: np.ndarray
    inner: np.ndarray
    v_final: np.ndarray
    w_final: np.ndarray
    ste: str
    lr: float
    mode: str
    steps_taken: int
    converged: bool
    _v_coords: np.ndarray = field(repr=False)
    _v_basis: object = field(repr=False)  # (m, k) ndarray or None: coordinates are vectors
    _w_coords: np.ndarray = field(repr=False)
    _w_basis: object = field(repr=False)

    @property
    def v(self):
        """Recorded v iterates, shape (n_recorded, m)."""
        return self._v_coords if self._v_basis is None else self._v_coords @ self._v_basis.T

    @property
    def w(self):
        """Recorded w iterates, shape (n_recorded, n)."""
        return self._w_coords if self._w_basis is None else self._w_coords @ self._w_basis.T

    def __len__(self):
        return len(self.step)

    def max_increase(self):
        """Largest ``f[t+1] - f[t]`` over recorded steps (<= 0 for a monotone run)."""
        return float(np.max(np.diff(self.f))) if len(self.f) > 1 else 0.0

    def summary(self):
        """Final values as a dict of plain floats (for tables and JSON)."""
        return {
            "ste": self.ste, "mode": self.mode, "lr": self.lr, "steps": self.steps_taken,
            "f_initial": float(self.f[0]), "f_final": float(self.f[-1]),
            "theta_final": float(self.theta[-1]), "w_norm_final": float(self.w_norm[-1]),
            "grad_v_norm_final": float(self.grad_v_norm[-1]),
            "max_increase": self.max_increase(), "converged": self.converged,
        }


# --------------------------------------------------------------------------
# population fast path
# --------------------------------------------------------------------------


def _orthonormal_basis(vectors, m):
    """Orthonormal columns spanning the given vectors (modified Gram-Schmidt, twice)."""
    cols = []
    for x in vectors:
        x = np.array(x, dtype=np.float64)
        nx = np.linalg.norm(x)
        if nx == 0:
            continue
        y = x / nx
        for _ in range(2):
            for q in cols:
                y = y - (q @ y) * q
        ny = np.linalg.norm(y)
        if ny > 1e-10:
            cols.append(y / ny)
    if not cols:
        cols.append(np.eye(m)[0])
    return np.stack(cols, axis=1)


def _coefficient_fn(sur):
    """(s, theta, cos, sin) -> (A1, B1, c1, c2) for a named STE or a _Surrogate."""
    if isinstance(sur, str):
        ste = sur

        def coeffs(s, theta, cos, sin):
            return an._named_formula(ste, cos, sin,
                                     lambda: an._window_terms_scalar(s, cos, sin))[:4]
        return coeffs, (1.0 if sur in ("identity", "hardtanh") else 0.0)
    cache = {}

    def coeffs(s, theta, cos, sin):
        key = (s, theta)
        if key not in cache:
            if len(cache) > 4096:
                cache.clear()
            cache[key] = sur.coefficients(s, theta)
        return cache[key]
    return coeffs, sur.mu0


def _dot(a, b):
    return sum([x * y for x, y in zip(a, b)])


def _population_run(v0, w0, v_star, w_star, sur, lr, steps, tol, record_every):
    m, n = v0.shape[0], w0.shape[0]
    Qv = _orthonormal_basis([v_star, np.ones(m), v0], m)
    Qw = _orthonormal_basis([w_star, w0], n)
    kw = Qw.shape[1]
    c = (Qv.T @ v0).tolist()
    cs = (Qv.T @ v_star).tolist()
    o = (Qv.T @ np.ones(m)).tolist()
    x = (Qw.T @ w0).tolist()
    ws_hat = (Qw.T @ (w_star / np.linalg.norm(w_star))).tolist()
    coeffs, mu0 = _coefficient_fn(sur)
    vs2, os_ = _dot(cs, cs), float(np.sum(v_star))
    snap = an._SNAP_EPS * math.sqrt(n)
    sqrt, atan2, cosf, sinf = math.sqrt, math.atan2, math.cos, math.sin
    pi = math.pi
    rec = {k: [] for k in ("step", "f", "theta", "w_norm", "gvn", "inner", "c", "x")}

    t = 0
    converged = False
    while True:
        # ---- geometry of w (2-d coordinates, as analytic._Point._summaries) ----
        s = sqrt(_dot(x, x))
        d = [a - b for a, b in zip(c, cs)]
        dd, od = _dot(d, d), _dot(o, d)
        vvs = _dot(c, cs)
        if s == 0.0:
            theta, f = 0.0, an._loss_formula(0.0, 0.0, 0.0, 0.0, vs2, os_, True)
            gv = [0.0] * len(c)
            gw = [-mu0 * _PHI0 * vvs * y for y in ws_hat]
            inner = 0.0
        else:
            wh = [a / s for a in x]
            dm = [a - b for a, b in zip(wh, ws_hat)]
            dp = [a + b for a, b in zip(wh, ws_hat)]
            theta = 2.0 * atan2(sqrt(_dot(dm, dm)), sqrt(_dot(dp, dp)))
            theta = 0.0 if theta <= snap else pi if theta >= pi - snap else theta
            if theta == 0.0 or theta == pi:
                cos, sin, ep = (1.0 if theta == 0.0 else -1.0), 0.0, None
            else:
                cos, sin = cosf(theta), sinf(theta)
                cc = _dot(wh, ws_hat)
                p = [b - cc * a for a, b in zip(wh, ws_hat)]
                pn = sqrt(_dot(p, p))
                ep = [a / pn for a in p] if pn > 0 else None
            f = an._loss_formula(dd, od, theta, vvs, vs2, os_, False)
            k = theta / _TWO_PI
            gv = [(a + od * b) / 4.0 + k * e for a, b, e in zip(d, o, cs)]
            A1, B1, c1, c2 = coeffs(s, theta, cos, sin)
            coef_w, coef_p = an._coarse_formula(_dot(c, c), _dot(o, c), os_, vvs, A1, B1, c1, c2)
            if ep is None:
                gw = [coef_w * a for a in wh]
                inner = 0.0
            else:
                gw = [coef_w * a + coef_p * b for a, b in zip(wh, ep)]
                inner = coef_p * (-vvs / (_TWO_PI * s))
        gvn2 = _dot(gv, gv)
        done = t >= steps
        if tol is not None and math.sqrt(gvn2 + _dot(gw, gw)) < tol:
            converged = done = True
        if done or t % record_every == 0:
            rec["step"].append(t)
            rec["f"].append(f)
            rec["theta"].append(theta)
            rec["w_norm"].append(s)
            rec["gvn"].append(sqrt(gvn2))
            rec["inner"].append(inner)
            rec["c"].append(c)
            rec["x"].append(x)
        if done:
            break
        c = [a - lr * g for a, g in zip(c, gv)]
        x = [a - lr * g for a, g in zip(x, gw)]
        if not all(map(math.isfinite, x)) or not all(map(math.isfinite, c)):
            raise FloatingPointError(
                f"coarse gradient descent diverged at step {t + 1} (lr={lr} too large?)")
        t += 1
    C = np.array(rec["c"])
    X = np.array(rec["x"]).reshape(-1, kw)
    return dict(step=np.array(rec["step"]), f=np.array(rec["f"]), theta=np.array(rec["theta"]),
                w_norm=np.array(rec["w_norm"]), grad_v_norm=np.array(rec["gvn"]),
                inner=np.array(rec["inner"]), v_final=Qv @ C[-1], w_final=Qw @ X[-1],
                steps_taken=t, converged=converged,
                _v_coords=C, _v_basis=Qv, _w_coords=X, _w_basis=Qw)


# --------------------------------------------------------------------------
# sampled mode
# --------------------------------------------------------------------------


def _exact_record(v, w, v_star, w_star, ste):
    f = float(an.population_loss(v, w, v_star, w_star))
    s = float(np.linalg.norm(w))
    theta = float(an.angle(w, w_star)) if s > 0 else 0.0
    gv, _ = an.population_grad(v, w, v_star, w_star)
    inner = float(an.coarse_grad_inner(v, w, v_star, w_star, ste))
    return f, theta, s, float(np.linalg.norm(gv)), inner


def _sampled_run(v0, w0, v_star, w_star, ste, lr, steps, tol, record_every, batch_size, gen,
                 threads):
    m, n = v0.shape[0], w0.shape[0]
    v, w = v0.copy(), w0.copy()
    rec = {k: [] for k in ("step", "rows", "v", "w")}
    t, converged = 0, False
    while True:
        done = t >= steps
        if not done:
            Z = gen.standard_normal((batch_size, m, n))
            out = loss_and_grads(Z, v, w, v_star, w_star, ste=ste, reduce="mean", threads=threads)
            if tol is not None and math.sqrt(float(out.grad_v @ out.grad_v + out.grad_w @ out.grad_w)) < tol:
                converged = done = True
        if done or t % record_every == 0:
            rec["step"].append(t)
            rec["rows"].append(_exact_record(v, w, v_star, w_star, ste))
            rec["v"].append(v.copy())
            rec["w"].append(w.copy())
        if done:
            break
        v = v - lr * out.grad_v
        w = w - lr * out.grad_w
        if not (np.all(np.isfinite(v)) and np.all(np.isfinite(w))):
            raise FloatingPointError(
                f"coarse gradient descent diverged at step {t + 1} (lr={lr} too large?)")
        t += 1
    rows = np.array(rec["rows"])
    return dict(step=np.array(rec["step"]), f=rows[:, 0], theta=rows[:, 1], w_norm=rows[:, 2],
                grad_v_norm=rows[:, 3], inner=rows[:, 4], v_final=v, w_final=w,
                steps_taken=t, converged=converged, _v_coords=np.array(rec["v"]), _v_basis=None,
                _w_coords=np.array(rec["w"]), _w_basis=None)


def coarse_gradient_descent(v0, w0, v_star, w_star, *, ste="relu", lr, steps,
                            mode="population", batch_size=None, rng=None, tol=None,
                            record_every=1, breakpoints=None, threads=1):
    """Coarse gradient descent (Algorithm 1): exact-v-gradient, STE-w-gradient steps.

    Parameters
    ----------
    v0, v_star : array_like, shape (m,)
        Initial and teacher second-layer weights.
    w0, w_star : array_like, shape (n,)
        Initial and teacher filters (``w_star`` nonzero, any norm).
    ste : {"identity", "relu", "clipped_relu", "hardtanh"} or callable
        The straight-through estimator mu'. Callables (with ``breakpoints``,
        as in :func:`stefast.expected_coarse_grad`) in population mode only.
    lr : float
        Step size eta > 0.
    steps : int
        Maximum number of updates (>= 0).
    mode : {"population", "sampled"}
        "population": exact expectations (Algorithm 1 as printed), run in a
        low-dimensional invariant subspace (see the module docstring).
        "sampled": each step averages over ``batch_size`` fresh Gaussian
        inputs through the C kernels (mini-batch coarse SGD).
    batch_size : int, optional
        Required for ``mode="sampled"``.
    rng : None, int or numpy.random.Generator, optional
        Seed for the sampled batches (``np.random.default_rng(rng)`` once).
    tol : float, optional
        Stop when the norm of the (exact or sampled) update direction
        ``|(grad_v, grad_w)|`` falls below ``tol``.
    record_every : int, optional
        Record every this many steps (the last step is always recorded).
    breakpoints : sequence of float, optional
        For a callable ste.
    threads : int or None, optional
        Threads for the sampled kernels (default 1: one small batch per step
        is faster on one core than split; None uses every core).

    Returns
    -------
    Trajectory

    Examples
    --------
    >>> import numpy as np, stefast
    >>> v_star, w_star = np.array([1.0, 2.0, -0.5]), np.array([1.0, 0.0, 0.0, 0.0])
    >>> tr = stefast.coarse_gradient_descent(np.ones(3), np.array([0.5, 1.0, 0.0, 0.0]),
    ...                                      v_star, w_star, ste="relu", lr=0.1, steps=3000)
    >>> bool(tr.theta[-1] < 1e-3), bool(np.allclose(tr.v_final, v_star, atol=1e-3))
    (True, True)
    >>> bool(tr.max_increase() <= 1e-12 * tr.f[0])   # monotone up to round-off
    True
    """
    v0, w0, v_star, w_star = an._model_inputs(v0, w0, v_star, w_star)
    if v0.ndim != 1 or w0.ndim != 1:
        raise ValueError(f"v0, w0, v_star, w_star must be 1-d vectors; got v0 of shape "
                         f"{v0.shape} and w0 of shape {w0.shape}")
    lr = val.check_nonnegative_float(lr, "lr")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    steps = val.check_positive_int(steps, "steps", minimum=0)
    record_every = val.check_positive_int(record_every, "record_every")
    if tol is not None:
        tol = val.check_nonnegative_float(tol, "tol")
    mode = val.check_choice(mode, "mode", ("population", "sampled"))
    sur = an._resolve_ste(ste, breakpoints)
    name = sur if isinstance(sur, str) else sur.name
    if mode == "population":
        if batch_size is not None:
            raise ValueError("batch_size is only used with mode='sampled'")
        res = _population_run(v0, w0, v_star, w_star, sur, lr, steps, tol, record_every)
    else:
        if not isinstance(sur, str):
            raise TypeError("mode='sampled' needs a named ste (the C kernels); "
                            "use mode='population' for a callable")
        if batch_size is None:
            raise ValueError("mode='sampled' needs batch_size (samples per step)")
        batch_size = val.check_positive_int(batch_size, "batch_size")
        gen = np.random.default_rng(rng)
        res = _sampled_run(v0, w0, v_star, w_star, sur, lr, steps, tol, record_every,
                           batch_size, gen, threads)
    return Trajectory(ste=str(name), lr=float(lr), mode=mode, **res)


# --------------------------------------------------------------------------
# problem instances
# --------------------------------------------------------------------------


def _teacher(m, n, gen):
    """v* with spurious minimisers (1'v* != 0) and a unit w*."""
    for _ in range(1000):
        v_star = gen.standard_normal(m)
        S = v_star.sum()
        if m == 1 or (an.critical_points(v_star).spurious_exists and abs(S) > 0.3 * math.sqrt(m)):
            break
    w_star = gen.standard_normal(n)
    return v_star, w_star / np.linalg.norm(w_star)


def _at_angle(w_star, theta, norm, gen):
    u = w_star / np.linalg.norm(w_star)
    e = gen.standard_normal(u.shape[0])
    e -= (e @ u) * u
    e /= np.linalg.norm(e)
    return norm * (math.cos(theta) * u + math.sin(theta) * e)


def spurious_start(v_star, w_star, *, eps=1e-2, rng=None):
    """A point near the spurious minimiser ``(v_spurious, -w*)`` of Proposition 1.

    ``v = v_spurious + eps * xi`` and w at angle ``pi - eps`` from w*, unit norm.
    """
    gen = np.random.default_rng(rng)
    cp = an.critical_points(v_star)
    if not cp.spurious_exists:
        raise ValueError("v_star has no spurious minimisers: need (1'v*)^2 < (m+1)/2 |v*|^2")
    v0 = cp.v_spurious + eps * gen.standard_normal(len(v_star))
    return v0, _at_angle(w_star, math.pi - eps, 1.0, gen)


def theorem2_start(v_star, w_star, *, theta0=1.2, rng=None):
    """An initialisation meeting Theorem 2's three conditions.

    ``v0'v* > 0``, ``theta(w0, w*) = theta0 < pi/2``, ``(1'v*)(1'v0) <= (1'v*)^2``.
    """
    if not 0 < theta0 < math.pi / 2:
        raise ValueError(f"theta0 must be in (0, pi/2), got {theta0}")
    gen = np.random.default_rng(rng)
    S = float(np.sum(v_star))
    for _ in range(10000):
        v0 = gen.standard_normal(len(v_star))
        if v0 @ v_star > 0 and S * v0.sum() <= S * S:
            break
    else:  # pragma: no cover - v0 = v*/2 always qualifies
        v0 = 0.5 * np.asarray(v_star, dtype=float)
    return v0, _at_angle(w_star, theta0, 1.0, gen)


# --------------------------------------------------------------------------
# Theorem 1
# --------------------------------------------------------------------------

STES3 = ("identity", "relu", "clipped_relu")


@dataclass
class Theorem1Result:
    """Theorem 1 runs: random start (all STEs) and near the spurious minimiser.

    ``random[ste]``, ``spurious[ste]`` are Trajectories. ``monotone[ste]`` is
    True if f never rose by more than ``round_off`` on the random-start run;
    ``identity_rise`` is the largest one-step rise of f for identity started
    near the spurious minimiser (> 0: the descent property fails).
    """

    m: int
    n: int
    lr: float
    steps: int
    v_star: np.ndarray
    w_star: np.ndarray
    random: dict
    spurious: dict
    monotone: dict
    round_off: float
    identity_rise: float
    identity_rise_step: int
    final_grad_norm: dict

    def rows(self):
        out = []
        for ste in STES3:
            tr, sp = self.random[ste], self.spurious[ste]
            out.append({
                "ste": ste, "f_start": float(tr.f[0]), "f_end": float(tr.f[-1]),
                "theta_end": float(tr.theta[-1]), "max_rise_random": tr.max_increase(),
                "monotone": self.monotone[ste], "final_grad_norm": self.final_grad_norm[ste],
                "f_end_spurious_start": float(sp.f[-1]), "max_rise_spurious": sp.max_increase(),
            })
        return out


def _final_grad_norm(tr, v_star, w_star, ste):
    gv, gw = an.expected_coarse_grad(tr.v_final, tr.w_final, v_star, w_star, ste)
    return float(math.sqrt(gv @ gv + gw @ gw))


def theorem1(m=10, n=10, *, lr=0.05, steps=4000, rng=0, record_every=1):
    """Theorem 1: monotone f for relu / clipped_relu; identity rises near a spurious minimiser.

    Draws a teacher with spurious minimisers and ``1'v* != 0``, a random start
    (``v0 ~ N(0, I)``, ``w0 ~ N(0, I)``) and a start near the spurious
    minimiser (:func:`spurious_start`), and runs all three STEs from both.
    """
    gen = np.random.default_rng(rng)
    v_star, w_star = _teacher(m, n, gen)
    v0, w0 = gen.standard_normal(m), gen.standard_normal(n)
    vs0, ws0 = spurious_start(v_star, w_star, rng=gen)
    random, spurious, monotone, gnorm = {}, {}, {}, {}
    for ste in STES3:
        random[ste] = tr = coarse_gradient_descent(v0, w0, v_star, w_star, ste=ste, lr=lr,
                                                   steps=steps, record_every=record_every)
        spurious[ste] = coarse_gradient_descent(vs0, ws0, v_star, w_star, ste=ste, lr=lr,
                                                steps=steps, record_every=record_every)
        gnorm[ste] = _final_grad_norm(tr, v_star, w_star, ste)
    round_off = 64 * np.finfo(float).eps * (1.0 + float(np.max(random["relu"].f)))
    for ste in STES3:
        monotone[ste] = random[ste].max_increase() <= round_off
    sp = spurious["identity"]
    jumps = np.diff(sp.f)
    k = int(np.argmax(jumps)) if len(jumps) else 0
    return Theorem1Result(m, n, lr, steps, v_star, w_star, random, spurious, monotone, round_off,
                          float(jumps[k]) if len(jumps) else 0.0, int(sp.step[k + 1]) if len(jumps) else 0,
                          gnorm)


# --------------------------------------------------------------------------
# Theorem 2
# --------------------------------------------------------------------------


@dataclass
class Theorem2Result:
    """Theorem 2 runs from an initialisation meeting its three conditions."""

    m: int
    n: int
    lr: float
    steps: int
    theta0: float
    conditions: dict
    trajectories: dict
    theta_final: dict
    v_error: dict
    converged: dict

    def rows(self):
        return [{"ste": s, "theta_final": self.theta_final[s], "v_error": self.v_error[s],
                 "steps": self.trajectories[s].steps_taken, "converged": self.converged[s],
                 "min |w|": float(self.trajectories[s].w_norm.min()),
                 "max rise of f": self.trajectories[s].max_increase()}
                for s in self.trajectories]


def theorem2(m=10, n=10, *, lr=0.1, steps=20000, rng=1, theta0=1.2, tol=1e-9,
             stes=("relu", "clipped_relu"), record_every=1):
    """Theorem 2: convergence to the global minimiser (theta -> 0, v -> v*).

    ``converged[ste]`` is ``theta < 1e-3 and |v - v*| < 1e-3`` at the end.
    """
    gen = np.random.default_rng(rng)
    v_star, w_star = _teacher(m, n, gen)
    v0, w0 = theorem2_start(v_star, w_star, theta0=theta0, rng=gen)
    S = float(v_star.sum())
    conditions = {"v0'v* > 0": bool(v0 @ v_star > 0),
                  "theta(w0, w*) < pi/2": bool(an.angle(w0, w_star) < math.pi / 2),
                  "(1'v*)(1'v0) <= (1'v*)^2": bool(S * v0.sum() <= S * S)}
    trs, th, ve, ok = {}, {}, {}, {}
    for ste in stes:
        trs[ste] = tr = coarse_gradient_descent(v0, w0, v_star, w_star, ste=ste, lr=lr,
                                                steps=steps, tol=tol, record_every=record_every)
        th[ste] = float(tr.theta[-1])
        ve[ste] = float(np.linalg.norm(tr.v_final - v_star))
        ok[ste] = th[ste] < 1e-3 and ve[ste] < 1e-3
    return Theorem2Result(m, n, lr, steps, theta0, conditions, trs, th, ve, ok)


# --------------------------------------------------------------------------
# Remark 1 / Figure 1
# --------------------------------------------------------------------------


@dataclass
class Figure1Result:
    """Empirical loss after one coarse-gradient step of size eta, per sample count N."""

    m: int
    n: int
    ste: str
    v_star: np.ndarray
    w_star: np.ndarray
    v0: np.ndarray
    w0: np.ndarray
    etas: np.ndarray
    sample_counts: tuple
    empirical: dict  # N -> (len(etas),) losses on the N fixed samples
    population: dict  # N -> population loss f at the same points
    upticks: dict  # N -> number of eta-steps where the empirical loss rises
    max_jump: dict  # N -> largest single rise / |net change| over the eta grid
    total_variation_ratio: dict  # N -> sum |diff| / |net change| (1 for a monotone curve)


def figure1(m=10, n=10, *, ste="relu", sample_counts=(10, 50, 1000), etas=None, rng=2,
            v_star=None, w_star=None, v0=None, w0=None):
    """Remark 1 / Figure 1: the sample loss along the negative sample coarse gradient.

    For each N, draws N fixed inputs, computes the mean loss gradient in v and
    the mean coarse gradient in w on them (``stefast.loss_and_grads``), and
    evaluates the same N-sample empirical loss at ``(v0, w0) - eta (g_v, g_w)``
    for each eta. Defaults: ``v*``, ``v0`` standard normal, ``w*`` a unit
    vector, ``w0`` unit at angle pi/2 from w*.
    """
    gen = np.random.default_rng(rng)
    if etas is None:
        etas = np.linspace(0.0, 0.2, 401)
    etas = np.asarray(etas, dtype=np.float64)
    if v_star is None:
        v_star = gen.standard_normal(m)
    if w_star is None:
        w_star = gen.standard_normal(n)
        w_star /= np.linalg.norm(w_star)
    if v0 is None:
        v0 = gen.standard_normal(m)
    if w0 is None:
        w0 = _at_angle(w_star, math.pi / 2, 1.0, gen)
    v_star, w_star, v0, w0 = (np.asarray(a, dtype=np.float64) for a in (v_star, w_star, v0, w0))
    emp, pop, up, tv, mj = {}, {}, {}, {}, {}
    for N in sample_counts:
        Z = gen.standard_normal((int(N), m, n))
        out = loss_and_grads(Z, v0, w0, v_star, w_star, ste=ste, reduce="mean")
        y_star = (Z @ w_star > 0).astype(np.float64) @ v_star  # (N,)
        A, B = Z @ w0, Z @ out.grad_w  # (N, m): Z w(eta) = A - eta B
        losses = np.empty(len(etas))
        for i, eta in enumerate(etas):
            v = v0 - eta * out.grad_v
            r = (A - eta * B > 0).astype(np.float64) @ v - y_star
            losses[i] = 0.5 * float(np.mean(r * r))
        emp[N] = losses
        V = v0[None, :] - etas[:, None] * out.grad_v[None, :]
        W = w0[None, :] - etas[:, None] * out.grad_w[None, :]
        pop[N] = np.asarray(an.population_loss(V, W, v_star, w_star))
        d = np.diff(losses)
        up[N] = int(np.sum(d > 1e-12))
        net = abs(losses[-1] - losses[0])
        tv[N] = float(np.sum(np.abs(d)) / net) if net > 0 else float("inf")
        mj[N] = float(max(d.max(), 0.0) / net) if net > 0 else float("inf")
    return Figure1Result(m, n, str(ste), v_star, w_star, v0, w0, etas, tuple(sample_counts),
                         emp, pop, up, mj, tv)


# --------------------------------------------------------------------------
# sampled vs population
# --------------------------------------------------------------------------


@dataclass
class SampledResult:
    """Mini-batch coarse SGD against the population run from the same start."""

    m: int
    n: int
    ste: str
    lr: float
    steps: int
    batch_sizes: tuple
    seeds: int
    population: Trajectory
    sampled: dict  # batch -> list of Trajectory (one per seed)
    distance: dict  # batch -> mean over seeds of |(v, w_hat)_sampled - (v, w_hat)_pop| at the end
    f_final: dict  # batch -> mean final population loss


def _unit(w):
    s = np.linalg.norm(w)
    return w / s if s > 0 else w


def sampled_vs_population(m=10, n=10, *, ste="relu", lr=0.05, steps=400,
                          batch_sizes=(10, 100, 1000), seeds=3, rng=3, record_every=1):
    """Run population mode and sampled mode at several batch sizes from one start.

    The distance between final iterates is measured on ``(v, w/|w|)`` (the
    loss does not depend on |w|), averaged over ``seeds`` independent runs.
    """
    gen = np.random.default_rng(rng)
    v_star, w_star = _teacher(m, n, gen)
    v0, w0 = theorem2_start(v_star, w_star, theta0=1.2, rng=gen)
    pop = coarse_gradient_descent(v0, w0, v_star, w_star, ste=ste, lr=lr, steps=steps,
                                  record_every=record_every)
    samp, dist, ff = {}, {}, {}
    seed_seq = gen.integers(0, 2**63, size=seeds)
    for B in batch_sizes:
        trs = [coarse_gradient_descent(v0, w0, v_star, w_star, ste=ste, lr=lr, steps=steps,
                                       mode="sampled", batch_size=B, rng=int(sd),
                                       record_every=record_every)
               for sd in seed_seq]
        samp[B] = trs
        dist[B] = float(np.mean([
            math.sqrt(float(np.sum((t.v_final - pop.v_final) ** 2)
                            + np.sum((_unit(t.w_final) - _unit(pop.w_final)) ** 2)))
            for t in trs]))
        ff[B] = float(np.mean([t.f[-1] for t in trs]))
    return SampledResult(m, n, str(ste), lr, steps, tuple(batch_sizes), seeds, pop, samp, dist, ff)
