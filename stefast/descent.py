"""Coarse gradient descent (Algorithm 1; docs/math.rst, section "Algorithm 1").

Algorithm 1 updates ``v <- v - lr E[dl/dv]`` and ``w <- w - lr E[g_mu]``.

Population mode (exact expectations) never touches an m- or n-vector inside
the loop. ``E[dl/dv] = (I + 11')(v - v*)/4 + theta v*/(2 pi)`` keeps v in
span{v0, v*, 1}, and ``E[g_mu]`` lies in span{w_hat, e_perp} = span{w, w*},
so w stays in span{w0, w*}. The loop therefore runs on at most 3 + 2
coordinates in orthonormal bases of those spans, in Python floats, with the
shared formulas of ``stefast._formulas``, so a step costs the same whatever
m and n. The recorded iterates are mapped back to R^m, R^n on demand
(``Trajectory.v``, ``Trajectory.w``); the tests check this route against a
step-by-step loop over ``stefast.expected_coarse_grad``.

Sampled mode draws a fresh batch of Gaussian inputs each step and uses the
C kernels (``stefast.loss_and_grads``, mean over the batch): mini-batch
coarse SGD. The recorded quantities are always the exact population ones.

The experiments behind the paper's claims that run Algorithm 1 live in
``stefast.experiments.claims``.
"""

import math
import sys
from dataclasses import dataclass, field

import numpy as np

from stefast import _core
from stefast import _formulas as fm
from stefast import _tasks
from stefast import _validation as val
from stefast import analytic as an
from stefast._geometry import (PHI0, TWO_PI, geometry, list_norm, norm, orthonormal_basis,
                               unit_geometry)
from stefast._optional import require
from stefast.montecarlo import mc_key
from stefast.surrogates import c_argument

__all__ = ["Trajectory", "coarse_gradient_descent", "EnsembleResult", "descent_ensemble"]

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
    empirical_loss : ndarray or None
        Modes "sampled" and "empirical": the mean loss on the batch of each
        recorded step, at that step's iterate (the whole training set in
        full-batch empirical mode). None in population mode.
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
    empirical_loss: object = None

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
        """Largest one-step rise of the population loss.

        Returns
        -------
        float
            The largest ``f[t+1] - f[t]`` over recorded steps (<= 0 for a
            monotone run, 0 for a single record).
        """
        return float(np.max(np.diff(self.f))) if len(self.f) > 1 else 0.0

    def summary(self):
        """Final values for tables and JSON.

        Returns
        -------
        dict
            The surrogate, mode, step size and steps taken, the first and last
            loss, and the last angle, norms and convergence flag, as plain
            Python values.
        """
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
    """(s, theta, cos, sin) -> (A1, B1, c1, c2) for a named STE, a Piecewise or a Quadrature."""
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
    ws_hat = (Qw.T @ (w_star / norm(w_star))).tolist()
    coeffs, mu0 = _coefficient_fn(sur)
    vs2, os_ = _dot(cs, cs), float(np.sum(v_star))
    sqrt = math.sqrt
    rec = {k: [] for k in ("step", "f", "theta", "w_norm", "gvn", "inner", "c", "x")}

    t = 0
    converged = False
    while True:
        # geometry of w in its 2-d coordinates; snapping by the full dimension n
        s = list_norm(x)
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
# runs in C: sampled (online) and empirical modes, and ensembles
# --------------------------------------------------------------------------

# A C call covers whole runs; the Python loop between calls is where Ctrl-C
# and the progress bar act. About this many multiply-adds per call:
_CALL_WORK = 2e8


def _run_ensemble(v0, w0, v_star, w_star, *, ste, lr, steps, Z, y, n_train, batch_size,
                  label_noise, rng, record_every, tol, threads, progress, first_stream=0,
                  executor=None):
    """Validate, run in C in groups of runs, and return the raw arrays."""
    ste = val.check_ste(ste)
    v0, w0, v_star, w_star, Z, y, stride, (R, N, m, n) = val.check_ensemble_inputs(
        v0, w0, v_star, w_star, Z, y)
    lr = val.check_nonnegative_float(lr, "lr")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    steps = val.check_positive_int(steps, "steps", minimum=0)
    tol = 0.0 if tol is None else val.check_nonnegative_float(tol, "tol")
    label_noise = val.check_nonnegative_float(label_noise, "label_noise")
    if y is not None and label_noise > 0:
        raise ValueError("label_noise adds noise to the teacher's labels; with y given, "
                         "add the noise to y yourself")
    if Z is not None and n_train is not None:
        raise ValueError("give either Z (the training sets) or n_train (drawn inside), not both")
    if n_train is not None:
        N = val.check_positive_int(n_train, "n_train")
    if batch_size is not None:
        batch_size = val.check_positive_int(batch_size, "batch_size")
    elif N == 0:
        raise ValueError("online runs (no Z, no n_train) need batch_size, the samples per step")
    record_every = 0 if record_every is None else val.check_positive_int(record_every,
                                                                          "record_every")
    executor = val.check_executor(executor)
    threads = _tasks.task_threads(executor, threads)
    first_stream = val.check_positive_int(first_stream, "first_stream", minimum=0)
    key = mc_key(rng)
    dt = v0.dtype
    n_rec = steps // record_every + 1 if record_every else 0
    out = dict(v=np.empty((R, m), dt), w=np.empty((R, n), dt),
               steps_taken=np.empty(R, np.int64), final_loss=np.empty(R),
               rec_loss=np.full((R, n_rec), np.nan), rec_v=np.full((R, n_rec, m), np.nan, dt),
               rec_w=np.full((R, n_rec, n), np.nan, dt))
    B = batch_size if batch_size is not None and (N == 0 or batch_size < N) else N
    run_work = max(1.0, (steps + 1) * B * m * n)
    params = dict(N=N, m=m, n=n, lr=lr, steps=steps, batch_size=batch_size or 0,
                  record_every=record_every, tol=tol, label_noise=label_noise, ste=ste, key=key,
                  n_rec=n_rec, dtype=dt)

    def task(lo, hi):
        """The arguments of _ensemble_runs for runs lo .. hi - 1: only their slices
        travel to a worker."""
        sl = slice(lo, hi)
        return (v0[sl], w0[sl], v_star[sl] if stride else v_star,
                w_star[sl] if stride else w_star, None if Z is None else Z[sl],
                None if y is None else y[sl], first_stream + lo, params)

    def store(lo, res):
        for name, a in res.items():
            out[name][lo:lo + len(a)] = a

    bar = None
    if progress and sys.stderr is not None and sys.stderr.isatty():
        tqdm = require("tqdm.auto", "descent_ensemble(progress=True)").tqdm
        bar = tqdm(total=R, unit="run", desc="descent_ensemble", file=sys.stderr)
    try:
        if executor is None:
            group = max(threads, int(_CALL_WORK // run_work))
            done = 0
            try:
                while done < R:
                    k = min(group, R - done)
                    store(done, _ensemble_runs(*task(done, done + k), threads))
                    done += k
                    if bar is not None:
                        bar.update(k)
            except KeyboardInterrupt:
                raise KeyboardInterrupt(
                    f"descent_ensemble interrupted after {done} of {R} runs") from None
        else:
            groups = ensemble_task_runs(R, run_work)

            def finished(i, res):
                store(groups[i][0], res)
                if bar is not None:
                    bar.update(groups[i][1] - groups[i][0])
            _tasks.run_tasks(executor, _ensemble_runs,
                             [(*task(lo, hi), threads) for lo, hi in groups],
                             [f"descent_ensemble runs {lo} .. {hi - 1}" for lo, hi in groups],
                             on_result=finished)
    finally:
        if bar is not None:
            bar.close()
    out.update(R=R, N=N, m=m, n=n, record_every=record_every, v_star=v_star, w_star=w_star,
               stride=stride, n_rec=n_rec)
    return out


def ensemble_task_runs(R, run_work):
    """(lo, hi) run ranges of the tasks of an ensemble of R runs of run_work
    multiply-adds each: the fewest runs with at least TASK_WORK of work
    (about a second on one core), at most MAX_TASKS tasks. Runs are
    independent (run r draws from stream first_stream + r), so the cut never
    changes a bit of the result; it only sets the scheduling overhead."""
    per = max(1, math.ceil(_tasks.TASK_WORK / run_work), -(-R // _tasks.MAX_TASKS))
    return [(lo, min(R, lo + per)) for lo in range(0, R, per)]


def _ensemble_runs(v0, w0, v_star, w_star, Z, y, first_run, p, threads):
    """Runs first_run .. first_run + len(v0) - 1 in C: their outputs in a dict
    of fresh arrays (a task of descent_ensemble, here or on a worker)."""
    k, m, n, n_rec, dt = len(v0), p["m"], p["n"], p["n_rec"], p["dtype"]
    res = dict(v=np.empty((k, m), dt), w=np.empty((k, n), dt),
               steps_taken=np.empty(k, np.int64), final_loss=np.empty(k),
               rec_loss=np.full((k, n_rec), np.nan), rec_v=np.full((k, n_rec, m), np.nan, dt),
               rec_w=np.full((k, n_rec, n), np.nan, dt))
    empty = np.empty(0, dt)
    c = np.ascontiguousarray
    _core.descent_ensemble(
        c(v0).reshape(-1), c(w0).reshape(-1), c(v_star).reshape(-1), c(w_star).reshape(-1),
        int(v_star.ndim == 2), empty if Z is None else c(Z).reshape(-1),
        empty if y is None else c(y).reshape(-1), k, p["N"], m, n, first_run, p["lr"],
        p["steps"], p["batch_size"], p["record_every"], p["tol"], p["label_noise"],
        c_argument(p["ste"]), p["key"], res["v"].reshape(-1), res["w"].reshape(-1),
        res["steps_taken"], res["final_loss"], res["rec_loss"].reshape(-1),
        res["rec_v"].reshape(-1), res["rec_w"].reshape(-1), n_rec, threads)
    return res


def _population_record(V, W, v_star, w_star, ste):
    """f, theta, |w|, |df/dv| and <E[g], df/dw> at iterates V (..., m), W (..., n)."""
    V, W = np.asarray(V, np.float64), np.asarray(W, np.float64)
    f = np.asarray(an.population_loss(V, W, v_star, w_star))
    geo = geometry(W, np.broadcast_to(np.asarray(w_star, np.float64), W.shape))
    gv, _ = an.population_grad(V, W, v_star, w_star)
    inner = np.asarray(an.coarse_grad_inner(V, W, v_star, w_star, ste))
    return f, geo.theta, geo.s, np.linalg.norm(gv, axis=-1), inner


def _c_trajectory(res, ste, lr, mode, tol):
    """A Trajectory from a one-run _run_ensemble result (iterates recorded)."""
    re, t_end = res["record_every"], int(res["steps_taken"][0])
    k = t_end // re + 1  # recorded slots actually reached
    steps = np.arange(k) * re
    V, W, L = res["rec_v"][0, :k], res["rec_w"][0, :k], res["rec_loss"][0, :k]
    v_fin, w_fin = res["v"][0], res["w"][0]
    if not (np.all(np.isfinite(v_fin)) and np.all(np.isfinite(w_fin))):
        raise FloatingPointError(
            f"coarse gradient descent diverged at step {t_end} (lr={lr} too large?)")
    if steps[-1] != t_end:
        steps = np.append(steps, t_end)
        V, W = np.vstack([V, v_fin]), np.vstack([W, w_fin])
        L = np.append(L, res["final_loss"][0])
    f, theta, s, gvn, inner = _population_record(V, W, res["v_star"], res["w_star"], ste)
    converged = tol is not None and t_end < res.get("steps", t_end + 1)
    return dict(step=steps, f=f, theta=theta, w_norm=s, grad_v_norm=gvn, inner=inner,
                empirical_loss=L, v_final=v_fin.astype(np.float64),
                w_final=w_fin.astype(np.float64), steps_taken=t_end, converged=converged,
                _v_coords=V.astype(np.float64), _v_basis=None, _w_coords=W.astype(np.float64),
                _w_basis=None)


def coarse_gradient_descent(v0, w0, v_star, w_star, *, ste="relu", lr, steps,
                            mode="population", Z=None, y=None, label_noise=0.0,
                            batch_size=None, rng=None, tol=None, record_every=1,
                            breakpoints=None):
    """Coarse gradient descent (Algorithm 1): exact-v-gradient, STE-w-gradient steps.

    Parameters
    ----------
    v0 : array_like, shape (m,)
        Initial second-layer weights.
    w0 : array_like, shape (n,)
        Initial filter.
    v_star : array_like, shape (m,)
        Teacher second-layer weights.
    w_star : array_like, shape (n,)
        Teacher filter (nonzero, any norm).
    ste : {"identity", "relu", "clipped_relu", "hardtanh"}, stefast.surrogates object or callable
        The straight-through estimator mu'. Registry surrogates
        (``stefast.surrogates.swish_sign(5.0)``) run in every mode; callables
        (with ``breakpoints``, as in :func:`stefast.expected_coarse_grad`) in
        population mode only.
    lr : float
        Step size eta > 0.
    steps : int
        Maximum number of updates (>= 0).
    mode : {"population", "sampled", "empirical"}
        "population": exact expectations (Algorithm 1 as printed), run in a
        low-dimensional invariant subspace (see the module docstring).
        "sampled": each step averages over ``batch_size`` fresh Gaussian
        inputs from stefast's generator (online mini-batch coarse SGD).
        "empirical": Algorithm 1 on the fixed training set ``Z``, full batch,
        or mini-batches of ``batch_size`` over epochs shuffled from ``rng``.
        Both run in C (:func:`descent_ensemble` with one run) in float64.
    Z : array_like, shape (N, m, n), optional
        The training set of mode "empirical".
    y : array_like, shape (N,), optional
        Labels of ``Z`` (mode "empirical"); default the teacher's,
        ``v_star' sigma(Z w_star)``.
    label_noise : float, optional
        Standard deviation of Gaussian noise added to the teacher's labels
        (fixed per training sample; fresh per sample in mode "sampled").
    batch_size : int, optional
        Samples per step: required in mode "sampled"; in mode "empirical"
        the default is the whole training set.
    rng : None, int, SeedSequence or Generator, optional
        Seed (SPEC 7) of the batches, the label noise and the shuffles.
    tol : float, optional
        Stop when the norm of the (exact or sampled) update direction
        ``|(grad_v, grad_w)|`` falls below ``tol``.
    record_every : int, optional
        Record every this many steps (the last step is always recorded).
    breakpoints : sequence of float, optional
        For a callable ste.

    Returns
    -------
    Trajectory
        The recorded iterates and the exact population quantities at each.

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
    mode = val.check_choice(mode, "mode", ("population", "sampled", "empirical"))
    sur = fm.resolve_ste(ste, breakpoints)
    name = sur if isinstance(sur, str) else sur.name
    if mode == "population":
        for arg, value in (("batch_size", batch_size), ("Z", Z), ("y", y)):
            if value is not None:
                raise ValueError(f"{arg} is not used with mode='population'")
        res = _population_run(v0, w0, v_star, w_star, sur, lr, steps, tol, record_every)
    else:
        if not (isinstance(sur, str) or val.is_registry_surrogate(ste)):
            raise TypeError(f"mode={mode!r} needs a named ste or a stefast.surrogates object "
                            "(the C kernels); use mode='population' for a callable")
        if mode == "sampled":
            if Z is not None or y is not None:
                raise ValueError("mode='sampled' draws its own samples; use mode='empirical' "
                                 "with Z for a training set")
            if batch_size is None:
                raise ValueError("mode='sampled' needs batch_size (samples per step)")
        elif Z is None:
            raise ValueError("mode='empirical' needs Z, the training set of shape (N, m, n)")
        Z = None if Z is None else val.as_float_array(Z, "Z")
        if Z is not None and Z.ndim != 3:
            raise ValueError(f"Z must have shape (N, m, n), got shape {Z.shape}")
        y = None if y is None else val.as_float_array(y, "y")
        f64 = (lambda a: None if a is None else np.asarray(a, np.float64)[None])
        raw = _run_ensemble(v0[None], w0[None], v_star, w_star,
                            ste=sur if isinstance(sur, str) else ste, lr=lr, steps=steps,
                            Z=f64(Z), y=f64(y),
                            n_train=None, batch_size=batch_size, label_noise=label_noise,
                            rng=rng, record_every=record_every, tol=tol, threads=1,
                            progress=False)
        raw["steps"] = steps
        res = _c_trajectory(raw, sur, lr, mode, tol)
    return Trajectory(ste=str(name), lr=float(lr), mode=mode, **res)




# --------------------------------------------------------------------------
# ensembles
# --------------------------------------------------------------------------

STATUSES = ("global", "spurious", "saddle", "diverged", "max_steps")


@dataclass(frozen=True)
class EnsembleResult:
    """R runs of coarse gradient descent (:func:`descent_ensemble`).

    Attributes
    ----------
    v, w : ndarray, shapes (R, m), (R, n)
        Final iterates, in the runs' precision.
    steps_taken : ndarray of int, shape (R,)
    final_loss : ndarray, shape (R,)
        Mean loss on the last step's batch at the final iterate (the
        training set in full-batch runs); NaN for diverged runs.
    f, theta, w_norm : ndarray, shape (R,)
        Population loss, angle to w* and ``|w|`` at the final iterate (NaN for
        diverged runs).
    status : ndarray of str, shape (R,)
        ``"global"``: theta < ``success_tol`` and ``|v - v*| <= success_tol
        (1 + |v*|)``; ``"spurious"`` / ``"saddle"``: stopped by ``tol`` elsewhere,
        nearer theta = pi (Proposition 1's spurious minimisers) or not;
        ``"diverged"``: an iterate turned non-finite; ``"max_steps"``: none of
        these after ``steps`` updates.
    record_step : ndarray of int or None
        Steps at which curves were recorded (every ``record_every``).
    loss, f_curve, theta_curve, w_norm_curve : ndarray (R, len(record_step)) or None
        Recorded batch loss, population loss, angle and ``|w|``; NaN after a
        run's last step.
    """

    v: np.ndarray
    w: np.ndarray
    steps_taken: np.ndarray
    final_loss: np.ndarray
    f: np.ndarray
    theta: np.ndarray
    w_norm: np.ndarray
    status: np.ndarray
    record_step: object = None
    loss: object = None
    f_curve: object = None
    theta_curve: object = None
    w_norm_curve: object = None

    def __len__(self):
        return len(self.steps_taken)

    def counts(self):
        """Number of runs per status.

        Returns
        -------
        dict
            Status name to count, over every status (zeros included).
        """
        return {st: int(np.sum(self.status == st)) for st in STATUSES}

    @classmethod
    def from_runs(cls, v, w, steps_taken, final_loss, v_star, w_star, steps, success_tol,
                  record_every=0, rec_loss=None, rec_v=None, rec_w=None):
        """The result of runs given their final and recorded iterates.

        The statuses and population quantities are computed here, with the
        closed forms; the C path and the NumPy reference both end here.

        Parameters
        ----------
        v, w : ndarray, shapes (R, m), (R, n)
            Final iterates.
        steps_taken : ndarray of int, shape (R,)
            Updates each run made.
        final_loss : ndarray, shape (R,)
            Mean batch loss at the final iterate.
        v_star, w_star : array_like, shapes (m,), (n,) or (R, m), (R, n)
            The teachers.
        steps : int
            The step budget (a run that used it all is ``"max_steps"``
            unless it reached the global minimiser).
        success_tol : float
            Tolerance of the ``"global"`` status.
        record_every : int, optional
            Steps between recorded curves; 0 when none were recorded.
        rec_loss, rec_v, rec_w : ndarray, optional
            Recorded batch losses, v and w iterates, one row per run.

        Returns
        -------
        EnsembleResult
            The runs with their statuses and population quantities.
        """
        success_tol = val.check_nonnegative_float(success_tol, "success_tol")
        vs = np.asarray(v_star, np.float64).reshape(-1, v.shape[1])
        ws = np.asarray(w_star, np.float64).reshape(-1, w.shape[1])
        status, f, theta, s = _status(v, w, vs, ws, steps_taken, steps, success_tol)
        curves = {}
        if record_every:
            R, T = rec_loss.shape
            V, W = rec_v.astype(np.float64), rec_w.astype(np.float64)
            ok = np.all(np.isfinite(V), axis=-1) & np.all(np.isfinite(W), axis=-1)
            fc, tc, sc = (np.full((R, T), np.nan) for _ in range(3))
            vsb = np.broadcast_to(vs[:, None, :], V.shape)[ok]
            wsb = np.broadcast_to(ws[:, None, :], W.shape)[ok]
            fc[ok] = an.population_loss(V[ok], W[ok], vsb, wsb)
            geo = geometry(W[ok], wsb.astype(np.float64))
            tc[ok], sc[ok] = geo.theta, geo.s
            curves = dict(record_step=np.arange(T) * record_every, loss=rec_loss,
                          f_curve=fc, theta_curve=tc, w_norm_curve=sc)
        return cls(v, w, steps_taken, final_loss, f, theta, s, status, **curves)


def _status(v, w, v_star, w_star, steps_taken, steps, success_tol):
    finite = np.all(np.isfinite(v), axis=1) & np.all(np.isfinite(w), axis=1)
    R = v.shape[0]
    status = np.full(R, "max_steps", dtype=object)
    f = np.full(R, np.nan)
    theta = np.full(R, np.nan)
    s = np.full(R, np.nan)
    if finite.any():
        vs = np.broadcast_to(v_star, v.shape)[finite].astype(np.float64)
        ws = np.broadcast_to(w_star, w.shape)[finite].astype(np.float64)
        vf, wf = v[finite].astype(np.float64), w[finite].astype(np.float64)
        f[finite] = an.population_loss(vf, wf, vs, ws)
        geo = geometry(wf, ws)
        theta[finite], s[finite] = geo.theta, geo.s
    with np.errstate(over="ignore", invalid="ignore"):  # diverged runs' v is huge or inf
        v_err = np.linalg.norm(v.astype(np.float64) - v_star, axis=-1)
    good = finite & (theta < success_tol) & (v_err <= success_tol * (1 + np.linalg.norm(
        np.broadcast_to(v_star, v.shape), axis=-1)))
    stopped = finite & ~good & (steps_taken < steps)
    status[stopped] = np.where(theta[stopped] > 3 * np.pi / 4, "spurious", "saddle")
    status[good] = "global"
    status[~finite] = "diverged"
    return status.astype(str), f, theta, s


def descent_ensemble(v0, w0, v_star, w_star, *, ste="relu", lr, steps, Z=None, y=None,
                     n_train=None, batch_size=None, label_noise=0.0, rng=None,
                     record_every=None, tol=None, success_tol=1e-3, first_stream=0,
                     threads=None, progress=False, executor=None):
    """R independent runs of coarse gradient descent in one call, in C.

    Each run is Algorithm 1 on its own data: a given training set, one drawn
    inside C from stefast's generator, or fresh samples every step. Runs are
    spread over threads with the GIL released; the results are bitwise the
    same for any ``threads`` and equal to running the runs one at a time.

    Parameters
    ----------
    v0, w0 : array_like, shapes (R, m), (R, n)
        Starting points. float32 inputs (all of them) run in float32, any
        other real dtype in float64; batch sums are in double either way.
    v_star, w_star : array_like, shapes (m,), (n,) or (R, m), (R, n)
        One teacher for every run, or one per run.
    ste : {"identity", "relu", "clipped_relu", "hardtanh"} or stefast.surrogates object
    lr : float
        Step size > 0.
    steps : int
        Updates per run (fewer when ``tol`` stops a run).
    Z : array_like, shape (R, N, m, n), optional
        Each run's training set. With neither ``Z`` nor ``n_train`` the runs
        are online: each step draws ``batch_size`` fresh samples.
    y : array_like, shape (R, N), optional
        Labels of ``Z``; default the teacher's.
    n_train : int, optional
        Draw each run's training set of N samples inside C: run r uses
        stream r of the generator keyed by ``rng`` (its first N m n values,
        sample-major, then N label noises), so
        ``stefast.standard_normals((N * m * n,), rng=rng, stream=r)`` gives
        it back. Only one run's set per thread is in memory at a time.
    batch_size : int, optional
        Samples per step: default the whole training set; smaller values
        take mini-batches over epochs shuffled per run. Required online.
    label_noise : float, optional
        Standard deviation of Gaussian noise on the teacher's labels.
    rng : None, int, SeedSequence or Generator, optional
        SPEC 7 seed of the generator key (as in :func:`stefast.monte_carlo`).
    record_every : int, optional
        Record curves every this many steps; None records only the summary,
        which keeps memory at O(R (m + n)) however many steps.
    tol : float, optional
        Stop a run when its mean update direction's norm falls below tol.
    success_tol : float, optional
        Tolerance of the "global" status.
    first_stream : int, optional
        Run r draws from stream ``first_stream + r``: runs r0 .. r1 of a
        larger ensemble, called with ``first_stream=r0``, give the same bits
        as within the whole (how ensembles split across calls or workers).
    threads : int or None, optional
        Threads over runs (None: every core).
    progress : bool, optional
        A progress bar over runs (needs tqdm); Ctrl-C stops between groups
        of runs with a KeyboardInterrupt saying how far it got.
    executor : None, concurrent.futures.Executor or dask.distributed.Client, optional
        None runs here. Otherwise the runs are cut into tasks of consecutive
        runs, each as few runs as make at least ``2**30`` multiply-adds
        (``(steps + 1) * batch * m * n`` per run; about a second on one
        core) with at most ``2**14`` tasks, and run on the executor; task i
        gets only its runs' slices of the inputs. Run r draws from stream
        ``first_stream + r`` wherever it runs, so the result is bitwise the
        one of ``executor=None``. ``threads`` is then per task (None: 1).

    Returns
    -------
    EnsembleResult
        Each run's final iterate, population quantities and status (and
        curves when ``record_every`` is given).

    Examples
    --------
    >>> import numpy as np, stefast
    >>> rng = np.random.default_rng(0)
    >>> v_star, w_star = np.array([1.0, 2.0, -0.5]), np.array([1.0, 0.0, 0.0, 0.0])
    >>> res = stefast.descent_ensemble(rng.standard_normal((8, 3)),
    ...                                rng.standard_normal((8, 4)), v_star, w_star,
    ...                                lr=0.1, steps=500, n_train=200, rng=1)
    >>> res.v.shape, sum(res.counts().values())
    ((8, 3), 8)
    """
    val.check_nonnegative_float(success_tol, "success_tol")
    raw = _run_ensemble(v0, w0, v_star, w_star, ste=ste, lr=lr, steps=steps, Z=Z, y=y,
                        n_train=n_train, batch_size=batch_size, label_noise=label_noise,
                        rng=rng, record_every=record_every, tol=tol, threads=threads,
                        progress=progress, first_stream=first_stream, executor=executor)
    return EnsembleResult.from_runs(raw["v"], raw["w"], raw["steps_taken"], raw["final_loss"],
                                    raw["v_star"], raw["w_star"], steps, success_tol,
                                    raw["record_every"], raw["rec_loss"], raw["rec_v"],
                                    raw["rec_w"])
