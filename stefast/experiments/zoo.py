"""The STE zoo (``stefast zoo``): every registry surrogate at its default
parameters, and sweeps of beta and of the clip value, on the paper's
population problem.

Per surrogate, from the exact expectations (``stefast.ste_report``): the
minimum and median cosine between E[g] and df/dw over a grid of theta, |w|
and random (v, v*, w*), hence whether -E[g] is a descent direction
everywhere tested; whether E[g] vanishes at the global minimisers, the
spurious minimisers and the saddles. Then two success rates from random
starts: population coarse gradient descent (exact E[g] per step) and
finite-sample descent (``stefast.descent_ensemble`` on drawn training sets).
"""

import time
from pathlib import Path

import numpy as np

import stefast
from stefast import surrogates as S
from stefast.descent import EnsembleResult
from stefast.experiments.figures import pyplot, save
from stefast.experiments.tables import format_table

__all__ = ["zoo_surrogates", "zoo_rows", "plot_zoo_cosines", "run_zoo"]

COLUMNS = ["surrogate", "integral", "cos min", "cos median", "descent everywhere",
           "E[g]=0 global", "E[g]=0 spurious", "E[g]=0 saddle", "population success",
           "finite-sample success"]


# a run succeeds when theta < SUCCESS_TOL and |v - v*| <= SUCCESS_TOL (1 + |v*|)
# (stefast.descent_ensemble's rule): loose enough for a finite training
# set, whose minimiser lies O(1 / sqrt(n_train)) from the population's
SUCCESS_TOL = 0.05
# runs stop where the update direction's norm falls below this (a critical
# point of the coarse gradient field, which the statuses then classify)
STOP_TOL = 1e-6


def zoo_surrogates(sweep=True):
    """{label: surrogate}: the registry's families at their defaults (ste_sign(1)
    and ste_heaviside(1) are hardtanh's window, listed once), then the sweeps."""
    zoo = {k: s for k, s in S.registry().items() if k not in ("ste_sign", "ste_heaviside")}
    if sweep:
        for clip in (0.5, 2.0):
            zoo[f"ste_sign(clip={clip})"] = S.ste_sign(clip)
        for beta in (2.0, 10.0):
            zoo[f"swish_sign(beta={beta})"] = S.swish_sign(beta)
        for beta in (0.5, 3.0):
            zoo[f"tanh(beta={beta})"] = S.tanh(beta)
        for beta in (4.0, 16.0):
            zoo[f"sigmoid(beta={beta})"] = S.sigmoid(beta)
        zoo["tanh(OneBit: 1.001 - tanh^2)"] = S.tanh(1.0, 1.0, 0.001)
    return zoo


def _problem(m, n, seed):
    """A teacher with spurious minimisers (when m > 1) and R random starts."""
    rng = np.random.default_rng(seed)
    for _ in range(1000):
        v_star = rng.standard_normal(m)
        if m == 1 or stefast.critical_points(v_star).spurious_exists:
            break
    w_star = rng.standard_normal(n)
    return rng, v_star, w_star


def _success(status):
    """'k/R' runs at the global minimiser, then where the others ended."""
    others = {"spurious": "spurious", "saddle": "saddle", "max_steps": "unfinished",
              "diverged": "diverged"}
    rest = [f"{int(np.sum(status == s))} {label}" for s, label in others.items()
            if np.any(status == s)]
    head = f"{int(np.sum(status == 'global'))}/{status.size}"
    return f"{head} ({', '.join(rest)})" if rest else head


def zoo_rows(m=5, n=4, seed=0, *, runs=8, steps=1000, lr=0.1, n_train=2000, n_theta=12,
             n_pairs=3, sweep=True, surrogates=None):
    """One row per surrogate (a dict of the table's columns, plus raw values)."""
    surrogates = zoo_surrogates(sweep) if surrogates is None else surrogates
    rng, v_star, w_star = _problem(m, n, seed)
    starts_v = rng.standard_normal((runs, m))
    starts_w = rng.standard_normal((runs, n))
    rows = []
    for label, sur in surrogates.items():
        rep = stefast.ste_report(sur, m=m, n=n, rng=seed, n_theta=n_theta, n_pairs=n_pairs)
        # population descent: the exact E[g] per step, classified like the ensembles
        trs = [stefast.coarse_gradient_descent(v0, w0, v_star, w_star, ste=sur, lr=lr,
                                               steps=steps, record_every=steps, tol=STOP_TOL)
               for v0, w0 in zip(starts_v, starts_w)]
        pop = EnsembleResult.from_runs(
            np.array([t.v_final for t in trs]), np.array([t.w_final for t in trs]),
            np.array([t.steps_taken for t in trs]), np.full(runs, np.nan), v_star, w_star,
            steps, SUCCESS_TOL)
        ens = stefast.descent_ensemble(starts_v, starts_w, v_star, w_star, ste=sur, lr=lr,
                                       steps=steps, n_train=n_train, rng=seed,
                                       success_tol=SUCCESS_TOL, tol=STOP_TOL)
        yes = {True: "yes", False: "no", None: "n/a"}
        rows.append({
            "surrogate": label, "integral": sur.integral,
            "cos min": rep.cosine_min, "cos median": rep.cosine_median,
            "descent everywhere": yes[rep.descent],
            "E[g]=0 global": yes[rep.vanishes_at("global")],
            "E[g]=0 spurious": yes[rep.vanishes_at("spurious")],
            "E[g]=0 saddle": yes[rep.vanishes_at("saddle")],
            "population success": _success(np.asarray(pop.status)),
            "finite-sample success": _success(np.asarray(ens.status)),
        })
    return rows, v_star, w_star


def cosine_curves(surrogates, v_star, w_star, seed=0, points=61, w_norm=1.0):
    """{label: cosines} between E[g] and df/dw along theta in (0, pi), at one
    random v and |w| = w_norm, w in a random plane through w*."""
    rng = np.random.default_rng(seed + 1)
    v = rng.standard_normal(v_star.size)
    u = w_star / np.linalg.norm(w_star)
    e = rng.standard_normal(w_star.size)
    e -= (e @ u) * u
    e /= np.linalg.norm(e)
    thetas = np.linspace(0.0, np.pi, points + 2)[1:-1]
    W = w_norm * (np.cos(thetas)[:, None] * u + np.sin(thetas)[:, None] * e)
    curves = {label: stefast.coarse_grad_cosine(v, W, v_star, w_star, ste=sur)
              for label, sur in surrogates.items()}
    return thetas, curves


def plot_zoo_cosines(thetas, curves, path):
    """The cosine between E[g] and df/dw against theta, one line per surrogate."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for label, cos in curves.items():
        ax.plot(thetas, cos, label=label, lw=1.2)
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xlabel("theta (angle between w and w*)")
    ax.set_ylabel("cos(E[g], df/dw)")
    ax.set_title("STE zoo: alignment of the expected coarse gradient")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return save(fig, path)


def run_zoo(out, *, m=5, n=4, seed=0, quick=False):
    """Compute the zoo, write zoo.md and the cosine figures under out; return a dict."""
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    kw = dict(runs=8, steps=1000, lr=0.1, n_train=2000, n_theta=12, n_pairs=3)
    if quick:
        kw.update(runs=3, steps=150, n_train=500, n_theta=5, n_pairs=1)
    surrogates = zoo_surrogates(sweep=not quick)
    rows, v_star, w_star = zoo_rows(m, n, seed, surrogates=surrogates, **kw)
    table = format_table(rows, COLUMNS, markdown=True)
    paths = {"report": str(out / "zoo.md")}
    thetas, curves = cosine_curves(surrogates, v_star, w_star, seed)
    defaults = {k: curves[k] for k in zoo_surrogates(sweep=False)}
    paths["cosines"] = plot_zoo_cosines(thetas, defaults, out / "zoo_cosines.png")
    if len(curves) > len(defaults):
        paths["cosines_sweep"] = plot_zoo_cosines(thetas, curves, out / "zoo_cosines_sweep.png")
    elapsed = time.perf_counter() - t0
    text = [
        "# The STE zoo",
        "",
        f"m = {m}, n = {n}, seed {seed}. Cosines and vanishing from the exact E[g] "
        "(closed forms for windows and piecewise polynomials, quadrature for the smooth "
        "families) over a grid of theta, |w| in (0.5, 1, 2) and random (v, v*, w*); "
        f"success: runs reaching the global minimiser (theta < {SUCCESS_TOL}, "
        f"|v - v*| <= {SUCCESS_TOL} (1 + |v*|)) "
        "from the same random starts, by population descent (exact E[g]) and by "
        f"full-batch descent on drawn training sets of {kw['n_train']} samples "
        f"(stefast.descent_ensemble); {kw['runs']} starts, lr {kw['lr']}, {kw['steps']} "
        "steps. "
        "In brackets, where the other runs ended: a spurious minimiser or a saddle "
        f"(stopped where the update's norm fell below {STOP_TOL}, theta > 3 pi / 4 or "
        "not), or unfinished after the last step. "
        "`integral` is the integral of mu' (2 for a surrogate of sign, 1 for sigma): "
        "a surrogate of integral 1 takes half the steps of one of integral 2 at the "
        "same lr, so more of its runs are unfinished.",
        "",
        table,
        "",
        "![cosines](zoo_cosines.png)",
        "",
        *(["![cosines with the sweeps](zoo_cosines_sweep.png)", ""]
          if "cosines_sweep" in paths else []),
        f"Computed in {elapsed:.0f} s.",
    ]
    Path(paths["report"]).write_text("\n".join(text) + "\n")
    return {"rows": rows, "table": table, "paths": paths, "elapsed": elapsed}
