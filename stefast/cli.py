"""The ``stefast`` command line.

    stefast reproduce [--out DIR] [--full]   the paper's study: report.md + PNG figures
    stefast analytic  [--m --n --seed --ste] closed forms at one random point
    stefast mc        [--m --n --seed --ste --method --samples]  Monte Carlo vs closed form
    stefast train     [--m --n --seed --ste --lr --steps --mode --init]  Algorithm 1
    stefast landscape [--m --n --seed --ste --points]  f and coarse-gradient cosine vs theta
    stefast finite-sample [--out DIR] [--full]  coarse GD on N samples: success vs N/n
    stefast zoo       [--out DIR] [--m --n --seed] [--quick]  every registry surrogate: zoo.md + figures
    stefast table1    [--out DIR] [--quick|--full]  the paper's Section 4 on MNIST digits (PyTorch)
    stefast bench     [--out DIR] [--quick]  the benchmark suite as a report
    stefast sweep     SPEC --out DIR [--workers N | --scheduler ADDRESS]  a quantity over a grid

Every subcommand takes ``--json`` for machine output (except reproduce, which
writes files). Exit codes: 0 success, 2 usage error (one line on stderr, no
traceback). Library errors caused by the user's values (ValueError,
TypeError) are reported the same way. A sweep point that fails exits 1 with
one line naming the point and the error.
"""

import argparse
import json
import math
import sys

import numpy as np

import stefast
from stefast import _validation as val
from stefast import benchreport
from stefast._geometry import PAPER_STES
from stefast.experiments import claims, finite_sample, reproduce, table1, zoo
from stefast.experiments.tables import fmt, format_table, jsonable

__all__ = ["main", "build_parser"]


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (exit code 2)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


#: the largest --m, --n, --points and --batch-size: far beyond the paper's
#: sizes, and small enough that one array of that length fits in memory
MAX_SIZE = 10**6


def _int_in(minimum, maximum=val.INT64_MAX):
    def parse(text):
        try:
            k = int(text)
        except ValueError:
            try:
                x = float(text)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"expected an integer, got {text!r}") from None
            if not x.is_integer():
                raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
            k = int(x)
        if not minimum <= k <= maximum:
            raise argparse.ArgumentTypeError(
                f"must be an integer in [{minimum}, {maximum}], got {text}")
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


def _common(p, *, m=10, n=10, ste_multi=True, json_flag=True, with_ste=True):
    p.add_argument("--m", type=_int_in(1, MAX_SIZE), default=m,
                   help="length of v (default: %(default)s)")
    p.add_argument("--n", type=_int_in(2, MAX_SIZE), default=n,
                   help="length of w (default: %(default)s)")
    p.add_argument("--seed", type=_int_in(0, 2**64 - 1), default=0,
                   help="random seed, >= 0 (default: %(default)s)")
    if not with_ste:
        pass
    elif ste_multi:
        p.add_argument("--ste", action="append", metavar="STE",
                       help="straight-through estimator (identity, relu, clipped_relu, hardtanh);"
                            " repeat for several (default: the paper's three)")
    else:
        p.add_argument("--ste", default="relu", help="straight-through estimator (default: relu)")
    if json_flag:
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def _stes(args):
    stes = tuple(args.ste) if args.ste else PAPER_STES
    for s in stes:
        val.check_ste(s)
    return stes


def _emit(args, payload, rows, columns=None, header=None):
    if args.json:
        print(json.dumps(jsonable(payload), indent=2))
    else:
        if header:
            print(header)
        print(format_table(rows, columns))
    return 0


# --------------------------------------------------------------------------
# analytic
# --------------------------------------------------------------------------


def _cmd_analytic(args):
    stes = _stes(args)
    v, w, v_star, w_star = reproduce.random_point(args.m, args.n, args.seed)
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
    header = "\n".join(f"{k}: {fmt(x)}" for k, x in point.items()) + "\n"
    return _emit(args, {"point": point, "v": v, "w": w, "v_star": v_star, "w_star": w_star,
                        "stes": rows}, rows, header=header)


# --------------------------------------------------------------------------
# Monte Carlo vs closed form
# --------------------------------------------------------------------------


def _cmd_mc(args):
    stes = _stes(args)
    v, w, v_star, w_star = reproduce.random_point(args.m, args.n, args.seed)
    methods = tuple(args.method) if args.method else ("full", "conditional")
    rows = reproduce.mc_rows(v, w, v_star, w_star, stes, methods, args.samples, args.seed,
                             progress=not args.json and sys.stderr.isatty())
    header = (f"Monte Carlo ({args.samples} samples) vs closed form at a random point, "
              f"m = {args.m}, n = {args.n}, seed {args.seed}; for vectors the component with "
              f"the largest |error|/SE is shown\n")
    return _emit(args, {"samples": args.samples, "rows": rows}, rows, header=header)


# --------------------------------------------------------------------------
# train (Algorithm 1)
# --------------------------------------------------------------------------


def _cmd_train(args):
    gen = np.random.default_rng(args.seed)
    v_star, w_star = claims.random_teacher(args.m, args.n, gen)
    if args.init == "random":
        v0, w0 = gen.standard_normal(args.m), gen.standard_normal(args.n)
    elif args.init == "spurious":
        v0, w0 = claims.spurious_start(v_star, w_star, rng=gen)
    else:
        v0, w0 = claims.theorem2_start(v_star, w_star, rng=gen)
    tr = stefast.coarse_gradient_descent(
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
              + "  ".join(f"{k}={fmt(x)}" for k, x in summ.items()) + "\n")
    payload = {"summary": summ, "trajectory": {
        "step": tr.step, "f": tr.f, "theta": tr.theta, "w_norm": tr.w_norm,
        "grad_v_norm": tr.grad_v_norm, "inner": tr.inner},
        "v_final": tr.v_final, "w_final": tr.w_final, "v_star": v_star, "w_star": w_star}
    return _emit(args, payload, rows, header=header)


# --------------------------------------------------------------------------
# landscape
# --------------------------------------------------------------------------


def _cmd_landscape(args):
    stes = _stes(args)
    rows, v_star, w_star = reproduce.landscape_rows(args.m, args.n, args.seed, stes, args.points)
    header = ("f minimised over v at each angle theta (Proposition 1's valley), and the cosine "
              "between E[g_mu] and df/dw at a perturbed v\n")
    return _emit(args, {"v_star": v_star, "w_star": w_star, "rows": rows}, rows, header=header)


# --------------------------------------------------------------------------
# reproduce
# --------------------------------------------------------------------------


def _cmd_reproduce(args):
    val.check_output_dir(args.out)
    res = reproduce.run_reproduce(args.out, full=args.full, quick=args.quick)
    print(format_table(res["summary"]))
    print(f"\nwrote {res['paths']['report']} and {len(res['paths']) - 1} figures "
          f"in {res['elapsed']:.1f} s")
    return 0


def _cmd_finite_sample(args):
    val.check_output_dir(args.out)
    mode = "full" if args.full else "quick" if args.quick else "default"
    tables, paths, elapsed = finite_sample.run(args.out, mode=mode, seed=args.seed,
                                               threads=args.threads)
    print(format_table(tables["success"], ["ste", "N/n", "P(global)", "95% CI",
                                           "P(theta > 3pi/4)", "median gap f - train"]))
    print(f"\nwrote {paths['report']} and {len(paths) - 1} figures in {elapsed:.1f} s")
    return 0


def _cmd_zoo(args):
    res = zoo.run_zoo(args.out, m=args.m, n=args.n, seed=args.seed, quick=args.quick)
    if args.json:
        print(json.dumps(jsonable({"rows": res["rows"], "paths": res["paths"]}), indent=2))
    else:
        print(res["table"])
        print(f"\nwrote {res['paths']['report']} and {len(res['paths']) - 1} figures "
              f"in {res['elapsed']:.1f} s")
    return 0


# --------------------------------------------------------------------------
# sweep
# --------------------------------------------------------------------------

_SPEC_KEYS = ("quantity", "seed", "grid", "fixed")


def _read_spec(path):
    """The sweep SPEC (TOML): quantity, seed, [grid], [fixed]."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ValueError("SPEC: reading TOML needs Python >= 3.11 or the tomli package") \
                from None
    try:
        with open(path, "rb") as f:
            spec = tomllib.load(f)
    except OSError as exc:
        raise ValueError(f"SPEC {path!r} cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"SPEC {path!r} is not valid TOML: {exc}") from None
    unknown = sorted(set(spec) - set(_SPEC_KEYS))
    if unknown:
        raise ValueError(f"SPEC {path!r}: unknown key(s) {unknown}; expected {_SPEC_KEYS}")
    quantity = spec.get("quantity")
    if quantity not in stefast.sweeps.QUANTITIES:
        raise ValueError(f"SPEC {path!r}: quantity must be one of "
                         f"{tuple(stefast.sweeps.QUANTITIES)}, got {quantity!r}")
    if not isinstance(spec.get("grid"), dict):
        raise ValueError(f"SPEC {path!r}: needs a [grid] table of parameter = [values]")
    return quantity, spec.get("seed", 0), spec["grid"], spec.get("fixed", {})


def _dask_client(args):
    """A Client of the cluster at --scheduler, or of a new LocalCluster of
    --workers processes; None when neither is given."""
    if args.scheduler is None and args.workers is None:
        return None, None
    option = "--scheduler" if args.scheduler is not None else "--workers"
    try:
        import distributed
    except ImportError:
        raise ValueError(f'{option} needs Dask: python -m pip install "stefast[distributed]"') \
            from None
    if args.scheduler is not None:
        try:
            return distributed.Client(args.scheduler, timeout=args.timeout), None
        except (OSError, TimeoutError) as exc:
            raise ValueError(f"--scheduler {args.scheduler!r}: cannot connect ({exc})") from None
    cluster = distributed.LocalCluster(n_workers=args.workers, threads_per_worker=1,
                                       dashboard_address=":0")
    return distributed.Client(cluster), cluster


def _cmd_sweep(args):
    import time

    quantity, seed, grid, fixed = _read_spec(args.spec)
    out = val.check_output_dir(args.out)
    points_dir = out / "points"
    points_dir.mkdir(exist_ok=True)
    had = len(list(points_dir.glob("*.json")))
    client, cluster = _dask_client(args)
    start = time.perf_counter()
    try:
        if client is not None:
            print(f"sweep: Dask scheduler {client.scheduler.address}", file=sys.stderr)
        # a bar on a terminal; otherwise (a batch job's log) one line per point
        progress = True if sys.stderr.isatty() else (
            lambda done, total: print(f"sweep: {done}/{total} points", file=sys.stderr))
        table = stefast.sweep(quantity, grid, fixed=fixed, seed=seed, store=points_dir,
                              executor=client, progress=progress)
    finally:
        if client is not None:
            client.close()
        if cluster is not None:
            cluster.close()
    elapsed = time.perf_counter() - start
    n_points = len(table) // max(1, len({r["quantity"] for r in table.rows}))
    paths = [str(table.to_csv(out / "sweep.csv"))]
    if len(table.params) <= 2 and not isinstance(table.rows[0][table.params[0]], str):
        try:
            from stefast.experiments.figures import plot_sweep
            paths.append(plot_sweep(table, out / "sweep.png"))
        except ImportError:
            print("sweep: no figure (matplotlib is not installed)", file=sys.stderr)
    if args.json:
        print(json.dumps(jsonable({"rows": list(table.rows), "paths": paths}), indent=2))
    else:
        print(format_table(list(table.rows), list(table.columns)))
        print(f"\n{n_points} points ({min(had, n_points)} read from {points_dir}, the rest "
              f"computed) in {elapsed:.1f} s; wrote {', '.join(map(str, paths))}")
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

    p = sub.add_parser("finite-sample",
                       help="coarse gradient descent on N samples: success vs N/n, label noise")
    p.add_argument("--out", default="stefast-finite-sample", metavar="DIR",
                   help="output directory (default: %(default)s)")
    p.add_argument("--full", action="store_true", help="larger sizes and more runs (slower)")
    p.add_argument("--quick", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--seed", type=_int_in(0), default=0, help="random seed (default: 0)")
    p.add_argument("--threads", type=_int_in(1), default=None,
                   help="threads over runs (default: every core)")
    p.set_defaults(func=_cmd_finite_sample)

    p = sub.add_parser("analytic", help="closed forms at one random point")
    _common(p)
    p.set_defaults(func=_cmd_analytic)

    p = sub.add_parser("mc", help="Monte Carlo estimates against the closed forms")
    _common(p)
    p.add_argument("--method", action="append", choices=("full", "projected", "conditional"),
                   help="Monte Carlo method; repeat for several (default: full and conditional)")
    p.add_argument("--samples", type=_int_in(2), default=100_000,
                   help="samples per estimate (default: %(default)s)")
    p.set_defaults(func=_cmd_mc)

    p = sub.add_parser("train", help="coarse gradient descent (Algorithm 1) on a random teacher")
    _common(p, ste_multi=False)
    p.add_argument("--lr", type=_positive_float, default=0.05, help="step size (default: %(default)s)")
    p.add_argument("--steps", type=_int_in(0), default=2000,
                   help="number of steps (default: %(default)s)")
    p.add_argument("--mode", choices=("population", "sampled"), default="population",
                   help="exact expectations or mini-batches (default: %(default)s)")
    p.add_argument("--batch-size", type=_int_in(1, MAX_SIZE), default=100,
                   help="samples per step in sampled mode (default: %(default)s)")
    p.add_argument("--init", choices=("random", "spurious", "theorem2"), default="random",
                   help="starting point (default: %(default)s)")
    p.add_argument("--record-every", type=_int_in(1), default=1,
                   help="record every k steps (default: %(default)s)")
    p.add_argument("--rows", type=_int_in(2, MAX_SIZE), default=11,
                   help="rows of the printed table (default: %(default)s)")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("landscape", help="population loss and coarse-gradient cosine vs angle")
    _common(p)
    p.add_argument("--points", type=_int_in(2, MAX_SIZE), default=13,
                   help="angles in [0, pi] (default: %(default)s)")
    p.set_defaults(func=_cmd_landscape)

    p = sub.add_parser("zoo", help="every registry surrogate on the population problem: "
                                   "zoo.md and figures")
    p.add_argument("--out", default="stefast-zoo", metavar="DIR",
                   help="output directory (default: %(default)s)")
    _common(p, m=5, n=4, with_ste=False)
    p.add_argument("--quick", action="store_true",
                   help="the families at their defaults only, fewer runs and angles")
    p.set_defaults(func=_cmd_zoo)

    p = sub.add_parser("sweep", help="a quantity over a parameter grid (TOML SPEC), resumable, "
                                     "on a Dask cluster with --workers or --scheduler")
    p.add_argument("spec", metavar="SPEC",
                   help="TOML file: quantity = closed_form | monte_carlo | ensemble, seed, "
                        "[grid] name = [values], [fixed] name = value")
    p.add_argument("--out", required=True, metavar="DIR",
                   help="output directory: points/ (one file per finished point; a rerun "
                        "computes only the missing ones), sweep.csv, sweep.png")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=_int_in(1, 4096), default=None, metavar="N",
                       help="run on a local Dask cluster of N single-threaded worker processes")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="run on the Dask cluster at ADDRESS (tcp://host:8786)")
    p.add_argument("--timeout", type=_positive_float, default=30.0, help=argparse.SUPPRESS)
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=_cmd_sweep)

    table1.add_table1_parser(sub)
    benchreport.add_bench_parser(sub)
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
    except stefast.TaskError as exc:  # a sweep point or task failed: say which, no traceback
        print(f"stefast: error: {exc}", file=sys.stderr)
        return 1
    except MemoryError:
        print("stefast: error: not enough memory for the sizes asked for", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stefast: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
