"""Figures for ``stefast reproduce`` (matplotlib, Agg backend, reproducible PNGs).

Each function takes a result object from ``stefast.experiments.claims`` and a path, and
writes one PNG. ``matplotlib.use("Agg")`` is called inside each function,
before pyplot is imported, so importing stefast never selects a backend.
PNG metadata is fixed (no software version, no date) so identical data give
identical files.
"""

import math

import numpy as np

from stefast._optional import require

__all__ = ["plot_figure1", "plot_trajectories", "plot_sampled", "plot_mc"]

_METADATA = {"Software": None}
STE_COLORS = {"identity": "tab:red", "relu": "tab:blue", "clipped_relu": "tab:green"}


def pyplot():
    """matplotlib.pyplot on the Agg backend (ImportError naming the extra if missing)."""
    matplotlib = require("matplotlib", "the report's figures")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path):
    """Write fig as a PNG with fixed metadata, close it, return the path."""
    fig.savefig(path, dpi=110, metadata=_METADATA)
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    return str(path)


def plot_figure1(res, path):
    """Figure 1 analogue: one panel per sample count N."""
    plt = pyplot()
    k = len(res.sample_counts)
    fig, axes = plt.subplots(1, k, figsize=(4.2 * k, 3.6), constrained_layout=True)
    axes = np.atleast_1d(axes)
    for ax, N in zip(axes, res.sample_counts):
        ax.plot(res.etas, res.empirical[N], color="tab:blue", lw=1.2, label=f"empirical, N = {N}")
        ax.plot(res.etas, res.population[N], color="0.4", lw=1.0, ls="--",
                label="population f (same points)")
        ax.set_title(f"N = {N} samples")
        ax.set_xlabel("step size $\\eta$ (dimensionless)")
        ax.set_ylabel("loss after one step (squared output units)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"Empirical loss along the negative {res.ste} coarse gradient "
                 f"(m = {res.m}, n = {res.n})")
    return save(fig, path)


def plot_trajectories(t1, path):
    """f and theta versus step, random start (top) and near the spurious minimiser (bottom)."""
    plt = pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), constrained_layout=True)
    for row, (runs, label) in enumerate(((t1.random, "random start"),
                                         (t1.spurious, "start near spurious minimiser"))):
        for ste, tr in runs.items():
            c = STE_COLORS.get(ste)
            f = np.maximum(tr.f, 1e-16)
            axes[row, 0].semilogy(tr.step, f, color=c, lw=1.3, label=ste)
            axes[row, 1].plot(tr.step, tr.theta, color=c, lw=1.3, label=ste)
        axes[row, 0].set_ylabel("population loss f (log scale)")
        axes[row, 1].set_ylabel("angle $\\theta(w, w^*)$ (radians)")
        axes[row, 1].set_ylim(-0.1, math.pi + 0.1)
        if row == 1:  # identity flips w through the origin every few steps: show the onset
            last = max(tr.step[-1] for tr in runs.values())
            span = int(min(last, 300))
            label += f" (first {span} iterations)"
        for ax in axes[row]:
            if row == 1:
                ax.set_xlim(0, span)
            ax.set_xlabel("iteration t")
            ax.set_title(label)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(f"Coarse gradient descent, m = {t1.m}, n = {t1.n}, "
                 f"$\\eta$ = {t1.lr:g} (population mode)")
    return save(fig, path)


def plot_sampled(sr, path):
    """Population loss along mini-batch runs of several batch sizes vs the population run."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2), constrained_layout=True)
    cmap = plt.get_cmap("viridis")
    for i, B in enumerate(sr.batch_sizes):
        col = cmap(i / max(1, len(sr.batch_sizes) - 1) * 0.85)
        for j, tr in enumerate(sr.sampled[B]):
            ax.semilogy(tr.step, np.maximum(tr.f, 1e-16), color=col, lw=0.9, alpha=0.8,
                        label=f"batch {B}" if j == 0 else None)
    ax.semilogy(sr.population.step, np.maximum(sr.population.f, 1e-16), color="k", lw=1.6,
                ls="--", label="population (exact)")
    ax.set_xlabel("iteration t")
    ax.set_ylabel("population loss f (log scale)")
    ax.set_title(f"Mini-batch coarse SGD vs Algorithm 1 ({sr.ste}, m = {sr.m}, n = {sr.n}, "
                 f"$\\eta$ = {sr.lr:g})", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return save(fig, path)


def plot_mc(rows, path):
    """Monte Carlo minus closed form, in standard errors, per STE and component."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.8), constrained_layout=True)
    labels = [f"{r['ste']}\n{r['quantity']}" for r in rows]
    z = [r["z"] for r in rows]
    ax.bar(range(len(rows)), z, color=[STE_COLORS.get(r["ste"], "0.5") for r in rows])
    ax.axhline(3, color="0.4", ls=":", lw=1)
    ax.axhline(-3, color="0.4", ls=":", lw=1)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("max |MC - exact| / SE (standard errors)")
    ax.set_title("Monte Carlo vs closed form (dotted: 3 SE)")
    ax.grid(alpha=0.3, axis="y")
    return save(fig, path)


def plot_sweep(table, path):
    """One panel per quantity of a 1-D or 2-D sweep (stefast.SweepTable): the
    value against the grid's first parameter with +-2 standard errors where
    there are some, one line per value of the second parameter."""
    plt = pyplot()
    quantities = list(dict.fromkeys(r["quantity"] for r in table.rows))
    x_name = table.params[0]
    lines = list(dict.fromkeys(r[table.params[1]] for r in table.rows)) \
        if len(table.params) == 2 else [None]
    k = len(quantities)
    fig, axes = plt.subplots(1, k, figsize=(4.2 * k, 3.6), constrained_layout=True, squeeze=False)
    for ax, q in zip(axes[0], quantities):
        for line in lines:
            rows = [r for r in table.rows if r["quantity"] == q
                    and (line is None or r[table.params[1]] == line)]
            x = [r[x_name] for r in rows]
            y = np.array([r["value"] for r in rows])
            se = np.array([np.nan if r["se"] is None else r["se"] for r in rows])
            label = None if line is None else f"{table.params[1]} = {line}"
            if np.isfinite(se).any():
                ax.errorbar(x, y, yerr=2 * se, marker="o", ms=3, capsize=2, lw=1, label=label)
            else:
                ax.plot(x, y, marker="o", ms=3, lw=1, label=label)
        ax.set_title(q)
        ax.set_xlabel(x_name)
        ax.grid(alpha=0.3)
        if line is not None:
            ax.legend(fontsize=8)
    return save(fig, path)
