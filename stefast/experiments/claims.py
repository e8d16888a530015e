"""The paper's claims about Algorithm 1, as runnable experiments.

Theorem 1 (descent property), Theorem 2 (convergence), Remark 1 / Figure 1
(the sample loss along a sample coarse gradient) and mini-batch coarse SGD
against the population run; each function draws its seeded problem
instance and returns a result object that ``stefast reproduce`` summarises
and renders (``stefast.experiments.reproduce``).
"""

import math
from dataclasses import dataclass

import numpy as np

from stefast import analytic as an
from stefast._geometry import PAPER_STES, at_angle
from stefast.descent import Trajectory, coarse_gradient_descent
from stefast.kernels import loss_and_grads

__all__ = [
    "C_W", "monotone_at_smaller_steps", "random_teacher", "spurious_start", "theorem2_start", "Theorem1Result", "theorem1",
    "Theorem2Result", "theorem2", "Figure1Result", "figure1", "SampledResult",
    "sampled_vs_population",
]


# --------------------------------------------------------------------------
# problem instances
# --------------------------------------------------------------------------


def random_teacher(m, n, gen):
    """v* with spurious minimisers (1'v* != 0) and a unit w*."""
    for _ in range(1000):
        v_star = gen.standard_normal(m)
        S = v_star.sum()
        if m == 1 or (an.critical_points(v_star).spurious_exists and abs(S) > 0.3 * math.sqrt(m)):
            break
    w_star = gen.standard_normal(n)
    return v_star, w_star / np.linalg.norm(w_star)


def spurious_start(v_star, w_star, *, eps=1e-2, rng=None):
    """A point near the spurious minimiser ``(v_spurious, -w*)`` of Proposition 1.

    ``v = v_spurious + eps * xi`` and w at angle ``pi - eps`` from w*, unit norm.
    """
    gen = np.random.default_rng(rng)
    cp = an.critical_points(v_star)
    if not cp.spurious_exists:
        raise ValueError("v_star has no spurious minimisers: need (1'v*)^2 < (m+1)/2 |v*|^2")
    v0 = cp.v_spurious + eps * gen.standard_normal(len(v_star))
    return v0, at_angle(w_star, math.pi - eps, 1.0, gen)


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
    return v0, at_angle(w_star, theta0, 1.0, gen)


# --------------------------------------------------------------------------
# Theorem 1
# --------------------------------------------------------------------------

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
        for ste in PAPER_STES:
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
    v_star, w_star = random_teacher(m, n, gen)
    v0, w0 = gen.standard_normal(m), gen.standard_normal(n)
    vs0, ws0 = spurious_start(v_star, w_star, rng=gen)
    random, spurious, monotone, gnorm = {}, {}, {}, {}
    for ste in PAPER_STES:
        random[ste] = tr = coarse_gradient_descent(v0, w0, v_star, w_star, ste=ste, lr=lr,
                                                   steps=steps, record_every=record_every)
        spurious[ste] = coarse_gradient_descent(vs0, ws0, v_star, w_star, ste=ste, lr=lr,
                                                steps=steps, record_every=record_every)
        gnorm[ste] = _final_grad_norm(tr, v_star, w_star, ste)
    round_off = 64 * np.finfo(float).eps * (1.0 + float(np.max(random["relu"].f)))
    for ste in PAPER_STES:
        monotone[ste] = random[ste].max_increase() <= round_off
    sp = spurious["identity"]
    jumps = np.diff(sp.f)
    k = int(np.argmax(jumps)) if len(jumps) else 0
    return Theorem1Result(m, n, lr, steps, v_star, w_star, random, spurious, monotone, round_off,
                          float(jumps[k]) if len(jumps) else 0.0, int(sp.step[k + 1]) if len(jumps) else 0,
                          gnorm)


C_W = 0.05  # the lower bound on |w| that Theorem 1's hypothesis is checked against


def monotone_at_smaller_steps(tr, v_star, w_star, ste, round_off, max_halvings=4):
    """Theorem 1 under its hypothesis, for a run that was not monotone.

    The theorem assumes |w| >= c_w along the path and a step small enough
    for c_w. A fixed step breaks that when the coarse gradient shrinks |w|
    to the step's size. From the start of ``tr`` the step is halved (and the
    number of steps doubled, so the run covers the same time) until the
    population loss falls monotonically. Returns ``(halvings, run)`` for the
    first monotone run, or ``(None, run)`` for the run at the smallest step;
    there ``min(run.w_norm) < C_W`` says |w| itself collapses on the way,
    whatever the step: the path leaves the theorem's hypothesis.
    """
    v0, w0 = tr.v[0], tr.w[0]
    run = tr
    for k in range(1, max_halvings + 1):
        run = coarse_gradient_descent(v0, w0, v_star, w_star, ste=ste, lr=tr.lr / 2 ** k,
                                      steps=tr.steps_taken * 2 ** k, record_every=2 ** k)
        if run.max_increase() <= round_off:
            return k, run
    return None, run


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
    v_star, w_star = random_teacher(m, n, gen)
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
        w0 = at_angle(w_star, math.pi / 2, 1.0, gen)
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
    v_star, w_star = random_teacher(m, n, gen)
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
