"""The ``stefast`` command line.

    stefast reproduce [--out DIR] [--full]   the paper's study: report.md + PNG figures
    stefast analytic  [--m --n --seed --ste] closed forms at one random point
    stefast mc        [--m --n --seed --ste --method --samples]  Monte Carlo vs closed form
    stefast train     [--m --n --seed --ste --lr --steps --mode --init]  Algorithm 1
    stefast landscape [--m --n --seed --ste --points]  f and coarse-gradient cosine vs theta
    stefast table1 / stefast bench           registered when those modules provide them

Every subcommand takes ``--json`` for machine output (except reproduce, which
writes files). Exit codes: 0 success, 2 usage error (one line on stderr, no
traceback). Library errors caused by the user's values (ValueError,
TypeError) are reported the same way.
"""

import argparse
import importlib
import json
import math
import os
import sys
import time

import numpy as np

__all__ = ["main", "build_parser"]

STES3 = ("identity", "relu", "clipped_relu")


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (exit code 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _int_at_least(minimum):
    def parse(text):
        try:
            k = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if k < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {k}")
        return k
    parse.__name__ = "int"
    return parse


def _positive_float(text):
    try:
        x = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not (x > 0 and math.isfinite(x)):
        raise argparse.ArgumentTypeError(f"must be a positive finite number, got {text}")
    return x


def _common(p, *, m=10, n=10, ste_multi=True, json_flag=True):
    p.add_argument("--m", type=_int_at_least(1), default=m, help="length of v (default: %(default)s)")
    p.add_argument("--n", type=_int_at_least(2), default=n, help="length of w (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    if ste_multi:
        p.add_argument("--ste", action="append", metavar="STE",
                       help="straight-through estimator (identity, relu, clipped_relu, hardtanh);"
                            " repeat for several (default: the paper's three)")
    else:
        p.add_argument("--ste", default="relu", help="straight-through estimator (default: relu)")
    if json_flag:
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _stes(args):
    from stefast._validation import check_ste

    stes = tuple(args.ste) if args.ste else STES3
    for s in stes:
        check_ste(s)
    return stes


def _point(m, n, seed):
    """A teacher with spurious minimisers and a random student, from one seed."""
    from stefast.descent import _teacher

    gen = np.random.default_rng(seed)
    v_star, w_star = _teacher(m, n, gen)
    return gen.standard_normal(m), gen.standard_normal(n), v_star, w_star


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else str(x)
    return x


def _fmt(x):
    if isinstance(x, (bool, np.bool_)):
        return "yes" if x else "no"
    if isinstance(x, (float, np.floating)):
        x = float(x)
        if x == 0 or (1e-3 <= abs(x) < 1e5):
            return f"{x:.4g}"
        return f"{x:.3e}"
    return str(x)


def format_table(rows, columns=None, markdown=False):
    """Rows of dicts as a plain-text (or markdown) table."""
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0])
    cells = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    if markdown:
        out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
        out += ["| " + " | ".join(row) + " |" for row in cells]
        return "\n".join(out)
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    numeric = [all(isinstance(r.get(c), (int, float, np.number)) and not isinstance(r.get(c), bool)
                   for r in rows) for c in columns]
    out = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(x.rjust(w) if num else x.ljust(w) for x, w, num in zip(row, widths, numeric))
            for row in cells]
    return "\n".join(out)


def _emit(args, payload, rows, columns=None, header=None):
    if args.json:
        print(json.dumps(_jsonable(payload), indent=2))
    else:
        if header:
            print(header)
        print(format_table(rows, columns))
    return 0


# --------------------------------------------------------------------------
# analytic
# --------------------------------------------------------------------------


def _cmd_analytic(args):
    import stefast

    stes = _stes(args)
    v, w, v_star, w_star = _point(args.m, args.n, args.seed)
    f = float(stefast.population_loss(v, w, v_star, w_star))
    gv, gw_f = stefast.population_grad(v, w, v_star, w_star)
    cp = stefast.critical_points(v_star)
    rows = []
    for ste in stes:
        _, g = stefast.expected_coarse_grad(v, w, v_star, w_star, ste)
        rows.append({"ste": ste, "|E[g]|": float(np.linalg.norm(g)),
                     "<E[g], df/dw>": float(stefast.coarse_grad_inner(v, w, v_star, w_star, ste)),
                     "cosine": float(stefast.coarse_grad_cosine(v, w, v_star, w_star, ste))})
    point = {"m": args.m, "n": args.n, "seed": args.seed, "f": f,
             "theta": float(stefast.angle(w, w_star)), "|df/dv|": float(np.linalg.norm(gv)),
             "|df/dw|": float(np.linalg.norm(gw_f)),
             "spurious_minimisers_exist": bool(cp.spurious_exists),
             "identity_grad_norm_at_spurious": float(stefast.identity_spurious_grad_norm(v_star))}
    header = "\n".join(f"{k}: {_fmt(x)}" for k, x in point.items()) + "\n"
    return _emit(args, {"point": point, "v": v, "w": w, "v_star": v_star, "w_star": w_star,
                        "stes": rows}, rows, header=header)


# --------------------------------------------------------------------------
# Monte Carlo vs closed form
# --------------------------------------------------------------------------


def _monte_carlo():
    """stefast.monte_carlo, or None if the Monte Carlo module is not available."""
    try:
        from stefast.montecarlo import monte_carlo
    except ImportError:
        return None
    return monte_carlo


def mc_rows(v, w, v_star, w_star, stes, methods, n_samples, seed, progress=False):
    """Closed form vs Monte Carlo: one row per (ste, method, quantity)."""
    import stefast

    monte_carlo = _monte_carlo()
    if monte_carlo is None:
        raise RuntimeError("stefast.montecarlo is not available in this build; "
                           "Monte Carlo comparisons are skipped")
    rows = []
    f = float(stefast.population_loss(v, w, v_star, w_star))
    for ste in stes:
        gv, gw = stefast.expected_coarse_grad(v, w, v_star, w_star, ste)
        for k, method in enumerate(methods):
            est = monte_carlo(v, w, v_star, w_star, ste=ste, n_samples=n_samples, method=method,
                              rng=[seed, k], progress=progress)
            for q, exact, mc, se in (("loss", f, est.loss, est.loss_se),
                                     ("grad_v", gv, est.grad_v, est.grad_v_se),
                                     ("grad_w", gw, est.grad_w, est.grad_w_se)):
                err = np.abs(np.asarray(mc, dtype=float) - np.asarray(exact, dtype=float))
                se = np.asarray(se, dtype=float)
                z = np.where(se > 0, err / np.where(se > 0, se, 1.0), np.where(err > 0, np.inf, 0.0))
                i = int(np.argmax(z)) if np.ndim(z) else 0
                rows.append({"ste": ste, "method": method, "quantity": q,
                             "exact": float(np.ravel(exact)[i]), "mc": float(np.ravel(mc)[i]),
                             "se": float(np.ravel(se)[i]), "max_abs_err": float(np.max(err)),
                             "z": float(np.max(z))})
    return rows


def _cmd_mc(args):
    stes = _stes(args)
    v, w, v_star, w_star = _point(args.m, args.n, args.seed)
    methods = tuple(args.method) if args.method else ("full", "conditional")
    try:
        rows = mc_rows(v, w, v_star, w_star, stes, methods, args.samples, args.seed,
                       progress=not args.json and sys.stderr.isatty())
    except RuntimeError as exc:
        print(f"stefast mc: {exc}", file=sys.stderr)
        return 1
    header = (f"Monte Carlo ({args.samples} samples) vs closed form at a random point, "
              f"m = {args.m}, n = {args.n}, seed {args.seed}; for vectors the component with "
              f"the largest |error|/SE is shown\n")
    return _emit(args, {"samples": args.samples, "rows": rows}, rows, header=header)


# --------------------------------------------------------------------------
# train (Algorithm 1)
# --------------------------------------------------------------------------


def _cmd_train(args):
    from stefast import descent

    gen = np.random.default_rng(args.seed)
    v_star, w_star = descent._teacher(args.m, args.n, gen)
    if args.init == "random":
        v0, w0 = gen.standard_normal(args.m), gen.standard_normal(args.n)
    elif args.init == "spurious":
        v0, w0 = descent.spurious_start(v_star, w_star, rng=gen)
    else:
        v0, w0 = descent.theorem2_start(v_star, w_star, rng=gen)
    tr = descent.coarse_gradient_descent(
        v0, w0, v_star, w_star, ste=args.ste, lr=args.lr, steps=args.steps, mode=args.mode,
        batch_size=args.batch_size if args.mode == "sampled" else None, rng=gen,
        record_every=args.record_every)
    keep = np.unique(np.linspace(0, len(tr) - 1, min(len(tr), args.rows)).astype(int))
    rows = [{"step": int(tr.step[i]), "f": float(tr.f[i]), "theta": float(tr.theta[i]),
             "|w|": float(tr.w_norm[i]), "|df/dv|": float(tr.grad_v_norm[i]),
             "<E[g],df/dw>": float(tr.inner[i])} for i in keep]
    summ = tr.summary()
    summ["v_error"] = float(np.linalg.norm(tr.v_final - v_star))
    header = (f"coarse gradient descent: ste={args.ste}, mode={args.mode}, init={args.init}, "
              f"m={args.m}, n={args.n}, lr={args.lr:g}, steps={args.steps}\n"
              + "  ".join(f"{k}={_fmt(x)}" for k, x in summ.items()) + "\n")
    payload = {"summary": summ, "trajectory": {
        "step": tr.step, "f": tr.f, "theta": tr.theta, "w_norm": tr.w_norm,
        "grad_v_norm": tr.grad_v_norm, "inner": tr.inner},
        "v_final": tr.v_final, "w_final": tr.w_final, "v_star": v_star, "w_star": w_star}
    return _emit(args, payload, rows, header=header)


# --------------------------------------------------------------------------
# landscape
# --------------------------------------------------------------------------


def landscape_rows(m, n, seed, stes, points):
    """Along theta in [0, pi]: f at the best v for that theta, and coarse-gradient cosines."""
    import stefast
    from stefast.descent import _at_angle

    gen = np.random.default_rng(seed)
    v_star = _point(m, n, seed)[2]
    w_star = _point(m, n, seed)[3]
    S = v_star.sum()
    rows = []
    for theta in np.linspace(0.0, math.pi, points):
        c = 1.0 - 2.0 * theta / math.pi
        v = c * v_star + S * (1.0 - c) / (m + 1)  # argmin_v f(v, w) at this angle
        w = _at_angle(w_star, float(theta), 1.0, np.random.default_rng(gen.integers(2**32)))
        row = {"theta": float(theta), "f_min_over_v": float(stefast.population_loss(v, w, v_star, w_star))}
        vr = v + 0.5 * gen.standard_normal(m)  # off the valley, so df/dw != 0
        for ste in stes:
            row[f"cos[{ste}]"] = float(stefast.coarse_grad_cosine(vr, w, v_star, w_star, ste))
        rows.append(row)
    return rows, v_star, w_star


def _cmd_landscape(args):
    stes = _stes(args)
    rows, v_star, w_star = landscape_rows(args.m, args.n, args.seed, stes, args.points)
    header = ("f minimised over v at each angle theta (Proposition 1's valley), and the cosine "
              "between E[g_mu] and df/dw at a perturbed v\n")
    return _emit(args, {"v_star": v_star, "w_star": w_star, "rows": rows}, rows, header=header)


# --------------------------------------------------------------------------
# reproduce
# --------------------------------------------------------------------------


def _settings(full, quick):
    if quick:
        return dict(t1_steps=600, t1_seeds=3, t2_steps=4000, s_steps=60, s_batches=(10, 100, 1000),
                    s_seeds=2, mc_samples=4000, f1_counts=(10, 50, 1000), card_theta=5,
                    card_pairs=1)
    if full:
        return dict(t1_steps=10000, t1_seeds=50, t2_steps=50000, s_steps=1000,
                    s_batches=(10, 100, 1000, 10000), s_seeds=5, mc_samples=1_000_000,
                    f1_counts=(10, 50, 1000), card_theta=15, card_pairs=8)
    return dict(t1_steps=4000, t1_seeds=20, t2_steps=20000, s_steps=400,
                s_batches=(10, 100, 1000), s_seeds=3, mc_samples=100_000,
                f1_counts=(10, 50, 1000), card_theta=15, card_pairs=4)


def _vec(x, digits=3):
    return "[" + ", ".join(f"{float(a):.{digits}f}" for a in x) + "]"


def run_reproduce(out, full=False, quick=False, progress=None):
    """Run the whole study; write ``out/report.md`` and figures. Returns a summary dict."""
    import stefast
    from stefast import descent, figures

    cfg = _settings(full, quick)
    os.makedirs(out, exist_ok=True)
    if progress is None:
        progress = sys.stderr.isatty()
    stages = ["Theorem 1", "Theorem 1 sweep", "Theorem 2", "Figure 1", "sampled vs population",
              "Monte Carlo", "STE report cards", "figures"]
    bar = None
    if progress:
        try:
            from tqdm import tqdm
            bar = tqdm(total=len(stages), desc="reproduce", unit="stage", file=sys.stderr)
        except ImportError:
            bar = None

    def stage(name):
        if bar is not None:
            bar.set_postfix_str(name)

    def done():
        if bar is not None:
            bar.update(1)

    t_start = time.perf_counter()
    md, summary = [], []

    stage(stages[0])
    t1 = descent.theorem1(m=10, n=10, lr=0.05, steps=cfg["t1_steps"], rng=0)
    done()
    stage(stages[1])
    sweep = {s: 0 for s in STES3}
    sweep_sp = 0
    sweep_examples = []
    for seed in range(1, 1 + cfg["t1_seeds"]):
        r = descent.theorem1(m=10, n=10, lr=0.05, steps=cfg["t1_steps"], rng=seed,
                             record_every=1)
        for s in STES3:
            sweep[s] += bool(r.monotone[s])
        sweep_sp += r.identity_rise > r.round_off
        for s in ("relu", "clipped_relu"):
            if not r.monotone[s]:
                tr = r.random[s]
                k = int(np.argmax(np.diff(tr.f)))
                sweep_examples.append((seed, s, float(tr.w_norm[k]), float(tr.theta[k]),
                                       float(np.diff(tr.f)[k])))
    done()
    stage(stages[2])
    t2 = descent.theorem2(m=10, n=10, lr=0.1, steps=cfg["t2_steps"], rng=1)
    done()
    stage(stages[3])
    f1 = descent.figure1(m=10, n=10, sample_counts=cfg["f1_counts"], rng=2)
    done()
    stage(stages[4])
    sr = descent.sampled_vs_population(m=10, n=10, lr=0.05, steps=cfg["s_steps"],
                                       batch_sizes=cfg["s_batches"], seeds=cfg["s_seeds"], rng=3)
    done()
    stage(stages[5])
    v, w, v_star, w_star = _point(10, 10, 4)
    try:
        mrows = mc_rows(v, w, v_star, w_star, STES3, ("full", "conditional"),
                        cfg["mc_samples"], 4)
        mc_note = None
    except RuntimeError as exc:
        mrows, mc_note = [], str(exc)
    done()
    stage(stages[6])
    cards = [stefast.ste_report(s, m=10, n=10, rng=5, n_theta=cfg["card_theta"],
                                n_pairs=cfg["card_pairs"]) for s in STES3]
    done()
    stage(stages[7])
    paths = {
        "figure1": figures.plot_figure1(f1, os.path.join(out, "figure1.png")),
        "trajectories": figures.plot_trajectories(t1, os.path.join(out, "trajectories.png")),
        "sampled": figures.plot_sampled(sr, os.path.join(out, "sampled_vs_population.png")),
    }
    if mrows:
        paths["mc"] = figures.plot_mc([r for r in mrows if r["method"] == "full"],
                                      os.path.join(out, "mc_vs_closed_form.png"))
    done()
    if bar is not None:
        bar.close()
    elapsed = time.perf_counter() - t_start

    # ---------------- summary table ----------------
    n_sweep = cfg["t1_seeds"]
    for s in ("relu", "clipped_relu"):
        summary.append({"claim": f"Thm 1: f monotone ({s}, random starts)",
                        "result": f"{sweep[s]}/{n_sweep} starts", "holds": sweep[s] == n_sweep})
    summary.append({"claim": "Thm 1: identity f rises near spurious min",
                    "result": f"rise {t1.identity_rise:.3g} at step {t1.identity_rise_step}; "
                              f"{sweep_sp}/{n_sweep} starts",
                    "holds": t1.identity_rise > t1.round_off})
    for s in t2.trajectories:
        summary.append({"claim": f"Thm 2: converges to global min ({s})",
                        "result": f"theta={t2.theta_final[s]:.1e}, |v-v*|={t2.v_error[s]:.1e}",
                        "holds": t2.converged[s]})
    Ns = f1.sample_counts
    summary.append({"claim": "Fig 1: jagged for small N, smooth for large N",
                    "result": "max jump/net drop " + ", ".join(
                        f"N={N}: {f1.max_jump[N]:.3f}" for N in Ns),
                    "holds": f1.max_jump[Ns[0]] > f1.max_jump[Ns[-1]]})
    bs = sr.batch_sizes
    summary.append({"claim": "Sampled -> population as batch grows",
                    "result": "final distance " + ", ".join(
                        f"B={B}: {sr.distance[B]:.3g}" for B in bs),
                    "holds": all(sr.distance[a] > sr.distance[b] for a, b in zip(bs, bs[1:]))})
    if mrows:
        zmax = max(r["z"] for r in mrows)
        summary.append({"claim": "MC agrees with closed forms",
                        "result": f"max |err|/SE = {zmax:.2f} over {len(mrows)} rows",
                        "holds": zmax < 5.0})
    else:
        summary.append({"claim": "MC agrees with closed forms", "result": "skipped: " + mc_note,
                        "holds": "n/a"})
    for c in cards:
        summary.append({"claim": f"STE card {c.ste}: -E[g] descent dir.; vanishes at spurious",
                        "result": f"min cos {c.cosine_min:.3f}",
                        "holds": f"{'yes' if c.descent else 'no'}; "
                                 f"{'yes' if c.vanishes_at('spurious') else 'no'}"})

    # ---------------- report ----------------
    mode = "full" if full else "quick (tests only)" if quick else "default"
    md += ["# stefast reproduce: coarse gradient descent and the straight-through estimator", "",
           f"Settings: {mode}; stefast {stefast.__version__}; runtime {elapsed:.1f} s. "
           "All runs are seeded and deterministic.", "",
           "## Summary", "", format_table(summary, markdown=True), ""]

    md += ["## Theorem 1: descent property", "",
           f"Teacher (seed 0): m = {t1.m}, n = {t1.n}, v* = {_vec(t1.v_star)}, "
           f"w* = {_vec(t1.w_star)} (unit), 1'v* = {t1.v_star.sum():.3f}. "
           f"Population-mode Algorithm 1 with step size {t1.lr:g} for {t1.steps} steps, "
           "from a standard-normal start and from a point within 0.01 of the spurious "
           "minimiser (v_spurious + 0.01 xi, w at angle pi - 0.01 from w*).", "",
           format_table(t1.rows(), markdown=True), "",
           f"'monotone' allows a rise of at most {t1.round_off:.1e} (float round-off). "
           f"Near the spurious minimiser the identity run's loss jumps by "
           f"{t1.identity_rise:.3g} at step {t1.identity_rise_step}: its coarse gradient does "
           "not vanish there, so |w| shrinks steadily until w passes through the origin and "
           "the angle flips, while relu and clipped_relu stay put (their coarse gradients "
           "vanish at that point).", "",
           f"Sweep over {n_sweep} further random teachers and starts (seeds 1..{n_sweep}): "
           + ", ".join(f"{s} monotone in {sweep[s]}/{n_sweep}" for s in STES3)
           + f"; identity rises near the spurious minimiser in {sweep_sp}/{n_sweep}.", ""]
    if sweep_examples:
        md += ["Where relu / clipped_relu were not monotone, the rise happened where |w| was "
               "tiny: the coarse gradient's component along w had shrunk |w| to the order of "
               "the step size, and a step carried w through the origin, flipping the angle "
               "and raising f. The step size was the same everywhere, so "
               "'small enough' in Theorem 1 depends on the path: "
               "(seed, ste, |w| before the rise, theta, rise): "
               + "; ".join(f"({a}, {b}, {c:.1e}, {d:.3f}, {e:.3g})"
                           for a, b, c, d, e in sweep_examples[:8]), ""]
    md += ["![f and theta versus iteration](trajectories.png)", ""]

    md += ["## Theorem 2: convergence to the global minimiser", "",
           f"m = {t2.m}, n = {t2.n}, step size {t2.lr:g}, at most {t2.steps} steps (stop when "
           f"the update norm < 1e-9), theta(w0, w*) = {t2.theta0}. Conditions: "
           + ", ".join(f"{k}: {'yes' if v_ else 'no'}" for k, v_ in t2.conditions.items()), "",
           format_table(t2.rows(), markdown=True), "",
           "'min |w|' and 'max rise of f' show whether |w| collapsed on the way: from some "
           "starts meeting the three conditions the coarse gradient first shrinks |w| to "
           "about the step size, a step carries w through the origin and f rises once, and "
           "the run still ends at the global minimiser.", ""]

    md += ["## Remark 1 / Figure 1: the sample loss along a sample coarse gradient", "",
           f"Chosen instance (the paper gives none): ste = {f1.ste}, m = {f1.m}, n = {f1.n}, "
           f"v* = {_vec(f1.v_star)}, w* = {_vec(f1.w_star)}, v0 = {_vec(f1.v0)}, "
           f"w0 = {_vec(f1.w0)} (unit, at angle pi/2 from w*); seed 2. For each N the "
           f"coarse gradient is computed on N fixed Gaussian inputs and the same N-sample "
           f"loss is evaluated at {len(f1.etas)} step sizes in [0, 0.2].", "",
           format_table([{"N": N, "loss at eta=0": float(f1.empirical[N][0]),
                          "loss at eta=0.2": float(f1.empirical[N][-1]),
                          "upticks": f1.upticks[N], "largest jump / net drop": f1.max_jump[N],
                          "total variation / net drop": f1.total_variation_ratio[N]}
                         for N in Ns], markdown=True), "",
           "A monotone curve has total variation / net drop = 1. 'upticks' counts grid steps "
           "where the loss rises; with many samples these are many but tiny.", "",
           "![Figure 1 analogue](figure1.png)", ""]

    md += ["## Sampled (mini-batch) vs population coarse gradient descent", "",
           f"{sr.ste}, m = {sr.m}, n = {sr.n}, step size {sr.lr:g}, {sr.steps} steps, "
           f"{sr.seeds} seeds per batch size, same start (meeting Theorem 2's conditions). "
           "Distance = |(v, w/|w|)_sampled - (v, w/|w|)_population| at the end, averaged over seeds.",
           "", format_table([{"batch": B, "mean distance": sr.distance[B],
                              "mean final f": sr.f_final[B]} for B in bs]
                             + [{"batch": "population", "mean distance": 0.0,
                                 "mean final f": float(sr.population.f[-1])}], markdown=True), "",
           "![sampled vs population](sampled_vs_population.png)", ""]

    md += ["## Monte Carlo vs closed form", ""]
    if mrows:
        md += [f"At a random point (m = n = 10, seed 4), {cfg['mc_samples']} samples per "
               "estimate. For vectors the component with the largest |error|/SE is shown; "
               "z = max |MC - exact| / SE.", "",
               format_table(mrows, markdown=True), "", "![MC vs closed form](mc_vs_closed_form.png)", ""]
    else:
        md += [f"Skipped: {mc_note}", ""]

    md += ["## STE report cards", ""]
    for c in cards:
        md += [c.to_markdown(), ""]
    with open(os.path.join(out, "report.md"), "w") as fh:
        fh.write("\n".join(md))
    paths["report"] = os.path.join(out, "report.md")
    return {"summary": summary, "paths": paths, "elapsed": elapsed}


def _cmd_reproduce(args):
    res = run_reproduce(args.out, full=args.full, quick=args.quick)
    print(format_table(res["summary"]))
    print(f"\nwrote {res['paths']['report']} and {len(res['paths']) - 1} figures "
          f"in {res['elapsed']:.1f} s")
    return 0


# --------------------------------------------------------------------------
# parser
# --------------------------------------------------------------------------


def build_parser():
    parser = _Parser(prog="stefast", description=__doc__,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("reproduce", help="run the paper's study, write report.md and figures")
    p.add_argument("--out", default="stefast-report", metavar="DIR",
                   help="output directory (default: %(default)s)")
    p.add_argument("--full", action="store_true", help="paper-scale sample counts (slower)")
    p.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("analytic", help="closed forms at one random point")
    _common(p)
    p.set_defaults(func=_cmd_analytic)

    p = sub.add_parser("mc", help="Monte Carlo estimates against the closed forms")
    _common(p)
    p.add_argument("--method", action="append", choices=("full", "projected", "conditional"),
                   help="Monte Carlo method; repeat for several (default: full and conditional)")
    p.add_argument("--samples", type=_int_at_least(2), default=100_000,
                   help="samples per estimate (default: %(default)s)")
    p.set_defaults(func=_cmd_mc)

    p = sub.add_parser("train", help="coarse gradient descent (Algorithm 1) on a random teacher")
    _common(p, ste_multi=False)
    p.add_argument("--lr", type=_positive_float, default=0.05, help="step size (default: %(default)s)")
    p.add_argument("--steps", type=_int_at_least(0), default=2000,
                   help="number of steps (default: %(default)s)")
    p.add_argument("--mode", choices=("population", "sampled"), default="population",
                   help="exact expectations or mini-batches (default: %(default)s)")
    p.add_argument("--batch-size", type=_int_at_least(1), default=100,
                   help="samples per step in sampled mode (default: %(default)s)")
    p.add_argument("--init", choices=("random", "spurious", "theorem2"), default="random",
                   help="starting point (default: %(default)s)")
    p.add_argument("--record-every", type=_int_at_least(1), default=1,
                   help="record every k steps (default: %(default)s)")
    p.add_argument("--rows", type=_int_at_least(2), default=11,
                   help="rows of the printed table (default: %(default)s)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("landscape", help="population loss and coarse-gradient cosine vs angle")
    _common(p)
    p.add_argument("--points", type=_int_at_least(2), default=13,
                   help="angles in [0, pi] (default: %(default)s)")
    p.set_defaults(func=_cmd_landscape)

    # optional subcommands owned by other modules
    for module, hook in (("stefast.table1", "add_table1_parser"),
                         ("stefast.benchreport", "add_bench_parser")):
        try:
            mod = importlib.import_module(module)
        except ImportError:
            continue
        if hasattr(mod, hook):
            getattr(mod, hook)(sub)
    return parser


def main(argv=None):
    """Entry point of the ``stefast`` console script; returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (2, message already printed)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, TypeError) as exc:
        print(f"stefast: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stefast: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
