"""``stefast finite-sample``: coarse gradient descent on N training samples.

The paper's results are about the population loss; Remark 1 and Figure 1
touch the finite-sample case with one instance. This study measures it over
many random instances, with ``stefast.descent_ensemble`` (every run in C):

* **success versus N / n**: for the identity, ReLU and clipped-ReLU STEs,
  the fraction of runs (random teacher, start and training set each) that
  end at the global minimiser, with Wilson 95 % intervals, and the fraction
  that end near the spurious minimisers (theta > 3 pi / 4);
* **the generalisation gap**: population loss minus training loss at the
  end, versus N;
* **label noise**: mini-batch runs on noisy labels, and how often a run that
  reached a good solution leaves it and comes back (excursions of theta);
* **Remark 1 over many instances**: the roughness of the one-step loss
  curve of Figure 1 (its total variation over its net drop, 1 for a
  monotone curve) versus N, as a median and quartiles over random instances.

:func:`compute` runs it, :func:`summarise` makes the tables, :func:`render`
writes ``finite_sample.md`` and the figures; :func:`run` does all three.
"""

import math
import os
import time
from dataclasses import dataclass, field

import numpy as np

import stefast
from stefast._geometry import PAPER_STES, at_angle
from stefast.experiments import claims
from stefast.experiments.figures import STE_COLORS, pyplot, save
from stefast.experiments.tables import format_table

__all__ = ["SETTINGS", "wilson_interval", "count_excursions", "Study", "compute", "summarise",
           "render", "run"]

SETTINGS = {
    "default": dict(m=4, n=8, runs=100, steps=3000, lr=0.1, ratios=(1, 2, 4, 8, 16, 32),
                    noise_sigmas=(0.0, 0.1, 0.3), noise_ratio=16, noise_batch=16,
                    noise_steps=4000, noise_runs=60, remark_instances=40,
                    remark_counts=(10, 50, 1000)),
    "full": dict(m=8, n=16, runs=400, steps=10000, lr=0.1, ratios=(1, 2, 4, 8, 16, 32, 64),
                 noise_sigmas=(0.0, 0.05, 0.1, 0.2, 0.4), noise_ratio=16, noise_batch=32,
                 noise_steps=20000, noise_runs=200, remark_instances=200,
                 remark_counts=(10, 20, 50, 100, 1000)),
    "quick": dict(m=3, n=4, runs=20, steps=300, lr=0.1, ratios=(2, 8), noise_sigmas=(0.0, 0.3),
                  noise_ratio=8, noise_batch=8, noise_steps=300, noise_runs=8,
                  remark_instances=4, remark_counts=(10, 1000)),
}
SUCCESS_TOL = 0.1  # theta and relative |v - v*| at the global minimiser
THETA_IN, THETA_OUT = 0.15, 0.4  # an excursion leaves theta < THETA_IN for > THETA_OUT


def wilson_interval(successes, trials, z=1.959963984540054):
    """Wilson score interval (95 % by default) of a binomial proportion."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denom = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    # at 0 and n successes the ends are exactly 0 and 1 (rounding may miss them)
    lo = 0.0 if successes == 0 else max(0.0, centre - half)
    hi = 1.0 if successes == trials else min(1.0, centre + half)
    return lo, hi


def count_excursions(theta, theta_in=THETA_IN, theta_out=THETA_OUT):
    """Excursions of one theta curve: times it was inside theta_in, went
    above theta_out and came back inside theta_in (NaN ends the curve)."""
    inside, away, count = False, False, 0
    for t in theta:
        if not math.isfinite(t):
            break
        if t < theta_in:
            if away:
                count += 1
            inside, away = True, False
        elif t > theta_out and inside:
            inside, away = False, True
    return count


def _instances(m, n, runs, gen):
    """Random teachers (unit w*) and starts (unit w0), one per run."""
    v_star = gen.standard_normal((runs, m))
    w_star = gen.standard_normal((runs, n))
    w_star /= np.linalg.norm(w_star, axis=1, keepdims=True)
    v0 = gen.standard_normal((runs, m))
    w0 = gen.standard_normal((runs, n))
    w0 /= np.linalg.norm(w0, axis=1, keepdims=True)
    return v0, w0, v_star, w_star


@dataclass
class Study:
    """What the study measured (see the module docstring)."""

    mode: str
    cfg: dict
    success: dict = field(default_factory=dict)  # (ste, ratio) -> EnsembleResult
    noise: dict = field(default_factory=dict)  # (ste, sigma) -> EnsembleResult (theta curves)
    remark: dict = field(default_factory=dict)  # N -> array of total variation ratios
    remark_jump: dict = field(default_factory=dict)  # N -> array of largest jump ratios
    elapsed: float = 0.0


def compute(mode="default", seed=0, threads=None):
    """Run every part of the study with the settings ``SETTINGS[mode]``."""
    cfg = SETTINGS[mode]
    t0 = time.perf_counter()
    st = Study(mode, cfg)
    m, n, R = cfg["m"], cfg["n"], cfg["runs"]
    gen = np.random.default_rng(seed)
    v0, w0, vs, ws = _instances(m, n, R, gen)
    for ste in PAPER_STES:
        for k, ratio in enumerate(cfg["ratios"]):
            st.success[ste, ratio] = stefast.descent_ensemble(
                v0, w0, vs, ws, ste=ste, lr=cfg["lr"], steps=cfg["steps"], n_train=ratio * n,
                rng=[seed, k], tol=1e-10, success_tol=SUCCESS_TOL, threads=threads)
    Rn = cfg["noise_runs"]
    nv0, nw0, nvs, nws = _instances(m, n, Rn, gen)
    for ste in PAPER_STES:
        for k, sigma in enumerate(cfg["noise_sigmas"]):
            st.noise[ste, sigma] = stefast.descent_ensemble(
                nv0, nw0, nvs, nws, ste=ste, lr=cfg["lr"], steps=cfg["noise_steps"],
                n_train=cfg["noise_ratio"] * n, batch_size=cfg["noise_batch"],
                label_noise=sigma, rng=[seed, 100 + k], record_every=10,
                success_tol=SUCCESS_TOL, threads=threads)
    seeds = gen.integers(0, 2**63, size=cfg["remark_instances"])
    tv = {N: [] for N in cfg["remark_counts"]}
    jump = {N: [] for N in cfg["remark_counts"]}
    for s in seeds:
        g = np.random.default_rng(int(s))
        v_star, v0_ = g.standard_normal(10), g.standard_normal(10)
        w_star = g.standard_normal(10)
        w_star /= np.linalg.norm(w_star)
        w0_ = at_angle(w_star, math.pi / 2, 1.0, g)
        r = claims.figure1(m=10, n=10, sample_counts=cfg["remark_counts"], rng=g,
                           v_star=v_star, w_star=w_star, v0=v0_, w0=w0_)
        for N in cfg["remark_counts"]:
            tv[N].append(r.total_variation_ratio[N])
            jump[N].append(r.max_jump[N])
    st.remark = {N: np.array(x) for N, x in tv.items()}
    st.remark_jump = {N: np.array(x) for N, x in jump.items()}
    st.elapsed = time.perf_counter() - t0
    return st


def summarise(st):
    """Tables (lists of dicts): success, noise and Remark 1."""
    n = st.cfg["n"]
    success = []
    for (ste, ratio), res in st.success.items():
        R = len(res)
        c = res.counts()
        lo, hi = wilson_interval(c["global"], R)
        spurious = int(np.sum(res.theta > 3 * math.pi / 4))
        gap = res.f - res.final_loss
        success.append({"ste": ste, "N/n": ratio, "N": ratio * n, "runs": R,
                        "P(global)": c["global"] / R, "95% CI": f"[{lo:.2f}, {hi:.2f}]",
                        "P(theta > 3pi/4)": spurious / R,
                        "median theta": float(np.nanmedian(res.theta)),
                        "median train loss": float(np.nanmedian(res.final_loss)),
                        "median gap f - train": float(np.nanmedian(gap)),
                        "diverged": c["diverged"]})
    noise = []
    for (ste, sigma), res in st.noise.items():
        exc = np.array([count_excursions(t) for t in res.theta_curve])
        reached = np.array([bool(np.any(t < THETA_IN)) for t in res.theta_curve])
        noise.append({"ste": ste, "label noise": sigma, "runs": len(res),
                      "reached theta < 0.15": float(reached.mean()),
                      "runs with an excursion": float(np.mean(exc > 0)),
                      "excursions per run": float(exc.mean()),
                      "P(global) at end": res.counts()["global"] / len(res),
                      "median final theta": float(np.nanmedian(res.theta))})
    remark = []
    for N, tv in st.remark.items():
        q1, med, q3 = np.percentile(tv, [25, 50, 75])
        j1, jm, j3 = np.percentile(st.remark_jump[N], [25, 50, 75])
        remark.append({"N": N, "instances": len(tv), "TV / net drop, median": med,
                       "quartiles": f"[{q1:.3g}, {q3:.3g}]", "largest jump / net drop, median": jm,
                       "jump quartiles": f"[{j1:.3g}, {j3:.3g}]"})
    return {"success": success, "noise": noise, "remark": remark}


def _plot_success(st, path):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), constrained_layout=True)
    for ste in PAPER_STES:
        ratios = [r for s, r in st.success if s == ste]
        p, lo, hi = [], [], []
        for r in ratios:
            res = st.success[ste, r]
            k = res.counts()["global"]
            a, b = wilson_interval(k, len(res))
            p.append(k / len(res))
            lo.append(max(0.0, k / len(res) - a))  # >= 0 up to rounding
            hi.append(max(0.0, b - k / len(res)))
        ax.errorbar(ratios, p, yerr=[lo, hi], marker="o", capsize=3, label=ste,
                    color=STE_COLORS.get(ste))
    ax.set_xscale("log", base=2)
    ax.set_xlabel("training samples per input dimension, N / n")
    ax.set_ylabel("fraction of runs at the global minimiser")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(f"Coarse GD on N samples (m = {st.cfg['m']}, n = {st.cfg['n']}, "
                 f"{st.cfg['runs']} runs per point, 95 % Wilson intervals)", fontsize=9)
    return save(fig, path)


def _plot_gap(st, path):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.0), constrained_layout=True)
    for ste in PAPER_STES:
        ratios = [r for s, r in st.success if s == ste]
        Ns = [r * st.cfg["n"] for r in ratios]
        f = [np.nanmedian(st.success[ste, r].f) for r in ratios]
        tr = [np.nanmedian(st.success[ste, r].final_loss) for r in ratios]
        ax.plot(Ns, f, marker="o", color=STE_COLORS.get(ste), label=f"{ste}: population f")
        ax.plot(Ns, tr, marker="s", ls="--", color=STE_COLORS.get(ste), label=f"{ste}: training loss")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1e-3)
    ax.set_xlabel("training samples N")
    ax.set_ylabel("loss at the end (median over runs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return save(fig, path)


def _plot_noise(st, path):
    plt = pyplot()
    sigmas = st.cfg["noise_sigmas"]
    fig, axes = plt.subplots(1, len(sigmas), figsize=(4.0 * len(sigmas), 3.4),
                             constrained_layout=True, sharey=True)
    axes = np.atleast_1d(axes)
    for ax, sigma in zip(axes, sigmas):
        res = st.noise["relu", sigma]
        for t in res.theta_curve[:8]:
            ax.plot(res.record_step, t, lw=0.8)
        ax.axhline(THETA_IN, color="0.5", ls=":")
        ax.axhline(THETA_OUT, color="0.5", ls="--")
        ax.set_title(f"relu, label noise {sigma}")
        ax.set_xlabel("step")
    axes[0].set_ylabel("theta (radians)")
    return save(fig, path)


def render(st, tables, out):
    """Write out/finite_sample.md and its figures; returns the paths."""
    os.makedirs(out, exist_ok=True)
    cfg = st.cfg
    paths = {"success": _plot_success(st, os.path.join(out, "success_vs_samples.png")),
             "gap": _plot_gap(st, os.path.join(out, "generalisation_gap.png")),
             "noise": _plot_noise(st, os.path.join(out, "label_noise.png"))}
    md = ["# Coarse gradient descent on finite training sets", "",
          f"Settings: {st.mode}; stefast {stefast.__version__}; {st.elapsed:.0f} s. "
          f"m = {cfg['m']}, n = {cfg['n']}; each run has its own random teacher (unit w*), "
          f"start (unit w0) and training set drawn from stefast's generator; full-batch "
          f"coarse gradient descent with step {cfg['lr']} for at most {cfg['steps']} steps "
          "(stopping where the coarse gradient vanishes). 'global': theta < "
          f"{SUCCESS_TOL} and |v - v*| <= {SUCCESS_TOL} (1 + |v*|) at the end.", "",
          "## Success versus N / n", "", format_table(tables["success"], markdown=True), "",
          "![success](success_vs_samples.png)", "",
          "The gap is the population loss minus the training loss at the final iterate.", "",
          "![gap](generalisation_gap.png)", "",
          "## Label noise", "",
          f"N = {cfg['noise_ratio']} n, mini-batches of {cfg['noise_batch']} over shuffled "
          f"epochs, {cfg['noise_steps']} steps, theta recorded every 10 steps. An excursion: "
          f"a run inside theta < {THETA_IN} leaves beyond {THETA_OUT} and returns.", "",
          format_table(tables["noise"], markdown=True), "", "![noise](label_noise.png)", "",
          "## Remark 1 / Figure 1 over many instances", "",
          f"{cfg['remark_instances']} random instances (m = n = 10, w0 at angle pi/2 from w*), "
          "relu STE, the one-step loss curve on 401 step sizes in [0, 0.2] as in Figure 1. "
          "Total variation / net drop is 1 for a monotone curve.", "",
          format_table(tables["remark"], markdown=True), ""]
    path = os.path.join(out, "finite_sample.md")
    with open(path, "w") as fh:
        fh.write("\n".join(md))
    paths["report"] = path
    return paths


def run(out, mode="default", seed=0, threads=None):
    """compute, summarise, render; returns (tables, paths, elapsed seconds)."""
    st = compute(mode, seed, threads)
    tables = summarise(st)
    return tables, render(st, tables, out), st.elapsed
