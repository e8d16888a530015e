"""Coarse gradient descent (Algorithm 1; docs/math.rst, section "Algorithm 1").

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

The experiments behind the paper's claims that run Algorithm 1 live in
``stefast.experiments.claims``.
"""

import math
from dataclasses import dataclass, field

import numpy as np

from stefast import _formulas as fm
from stefast import _validation as val
from stefast import analytic as an
from stefast._geometry import PHI0, TWO_PI, orthonormal_basis, unit_geometry
from stefast.kernels import loss_and_grads

__all__ = ["Trajectory", "coarse_gradient_descent"]

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


def _coefficient_fn(sur):
    """(s, theta, cos, sin) -> (A1, B1, c1, c2) for a named STE or a Surrogate."""
    if isinstance(sur, str):
        ste = sur

        def coeffs(s, theta, cos, sin):
            return fm.named_formula(ste, cos, sin,
                                    lambda: fm.window_terms_scalar(s, cos, sin))[:4]
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
    Qv = orthonormal_basis([v_star, np.ones(m), v0]).T
    Qw = orthonormal_basis([w_star, w0]).T
    kw = Qw.shape[1]
    c = (Qv.T @ v0).tolist()
    cs = (Qv.T @ v_star).tolist()
    o = (Qv.T @ np.ones(m)).tolist()
    x = (Qw.T @ w0).tolist()
    ws_hat = (Qw.T @ (w_star / np.linalg.norm(w_star))).tolist()
    coeffs, mu0 = _coefficient_fn(sur)
    vs2, os_ = _dot(cs, cs), float(np.sum(v_star))
    sqrt = math.sqrt
    rec = {k: [] for k in ("step", "f", "theta", "w_norm", "gvn", "inner", "c", "x")}

    t = 0
    converged = False
    while True:
        # geometry of w in its 2-d coordinates; snapping by the full dimension n
        s = sqrt(_dot(x, x))
        d = [a - b for a, b in zip(c, cs)]
        dd, od = _dot(d, d), _dot(o, d)
        vvs = _dot(c, cs)
        if s == 0.0:
            theta, f = 0.0, fm.loss_formula(0.0, 0.0, 0.0, 0.0, vs2, os_, True)
            gv = [0.0] * len(c)
            gw = [-mu0 * PHI0 * vvs * y for y in ws_hat]
            inner = 0.0
        else:
            wh = [a / s for a in x]
            theta, cos, sin, ep = unit_geometry(wh, ws_hat, n)
            f = fm.loss_formula(dd, od, theta, vvs, vs2, os_, False)
            k = theta / TWO_PI
            gv = [(a + od * b) / 4.0 + k * e for a, b, e in zip(d, o, cs)]
            A1, B1, c1, c2 = coeffs(s, theta, cos, sin)
            coef_w, coef_p = fm.coarse_formula(_dot(c, c), _dot(o, c), os_, vvs, A1, B1, c1, c2)
            if ep is None:
                gw = [coef_w * a for a in wh]
                inner = 0.0
            else:
                gw = [coef_w * a + coef_p * b for a, b in zip(wh, ep)]
                inner = coef_p * (-vvs / (TWO_PI * s))
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
    v0, w0, v_star, w_star = val.check_population_inputs(v0, w0, v_star, w_star,
                                                          names=("v0", "w0"))
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
    sur = fm.resolve_ste(ste, breakpoints)
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
        gen = val.check_rng(rng)
        res = _sampled_run(v0, w0, v_star, w_star, sur, lr, steps, tol, record_every,
                           batch_size, gen, threads)
    return Trajectory(ste=str(name), lr=float(lr), mode=mode, **res)


