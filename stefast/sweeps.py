"""Parameter sweeps: one quantity over a grid of parameters, seeded per grid
point, resumable from a directory of finished points, on any executor.

    stefast.sweep("monte_carlo", {"theta": [0.5, 1.0, 2.0], "ste": ["relu", "identity"]},
                  fixed={"m": 8, "n": 4, "n_samples": 10**6}, seed=0, store="runs/mc")

Seeding. Grid point p gets ``SeedSequence([seed, *h(p)])`` with h a SHA-256
of p's parameters (grid and fixed, as canonical JSON): a point's numbers
depend on its own parameters and the base seed only, so adding points to a
grid, reordering it or running it elsewhere never changes a finished point.

Store. With ``store=DIR`` each finished point is written to ``DIR/<h>.json``
(a temporary file, then ``os.replace``: a file is whole or absent) as soon
as it comes back, in the client; a sweep started again on the same grid
reads the finished points and computes only the missing ones.
"""

import csv
import hashlib
import json
import math
import os
import sys
import tempfile
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np

from stefast import _tasks
from stefast import _validation as val
from stefast._optional import require

__all__ = ["sweep", "SweepTable", "QUANTITIES", "point_seed"]


# --------------------------------------------------------------------------
# the built-in quantities: fn(point, rng, threads) -> {name: value or (value, se)}
# --------------------------------------------------------------------------


def _model(point):
    """The model at a grid point: teacher w* = e1, student w at angle theta
    from it in the (e1, e2) plane (|w| = 1), v* and v standard normal drawn
    from (model_seed, m) alone, so that every quantity and every seed of a
    sweep see the same model at the same (m, n, theta, model_seed)."""
    m = val.check_positive_int(point["m"], "m")
    model_seed = val.check_int(point.get("model_seed", 0), "model_seed", 0, 2**63 - 1)
    gen = np.random.default_rng([model_seed, m])
    n = val.check_int(point["n"], "n", 2, val.INT64_MAX)
    theta = val.check_real(point.get("theta", 1.0), "theta")
    w_star = np.zeros(n)
    w_star[0] = 1.0
    w = np.zeros(n)
    w[0], w[1] = math.cos(theta), math.sin(theta)
    return gen.standard_normal(m), w, gen.standard_normal(m), w_star


def _closed_form(point, rng, threads):
    import stefast
    v, w, v_star, w_star = _model(point)
    ste = point.get("ste", "relu")
    g = stefast.expected_coarse_grad(v, w, v_star, w_star, ste).grad_w
    return {"loss": float(stefast.population_loss(v, w, v_star, w_star)),
            "grad_w_par": float(g[0]), "grad_w_perp": float(g[1]),
            "cosine": float(stefast.coarse_grad_cosine(v, w, v_star, w_star, ste))}


def _monte_carlo(point, rng, threads):
    import stefast
    gen = np.random.default_rng(rng)
    v, w, v_star, w_star = _model(point)
    est = stefast.monte_carlo(v, w, v_star, w_star, ste=point.get("ste", "relu"),
                              n_samples=point["n_samples"], method=point.get("method", "full"),
                              rng=gen, threads=threads)
    return {"loss": (est.loss, est.loss_se),
            "grad_w_par": (float(est.grad_w[0]), float(est.grad_w_se[0])),
            "grad_w_perp": (float(est.grad_w[1]), float(est.grad_w_se[1]))}


def _ensemble(point, rng, threads):
    import stefast
    gen = np.random.default_rng(rng)
    R = val.check_positive_int(point["runs"], "runs")
    _, _, v_star, w_star = _model(point)
    m, n = v_star.size, w_star.size
    res = stefast.descent_ensemble(
        gen.standard_normal((R, m)), gen.standard_normal((R, n)), v_star, w_star,
        ste=point.get("ste", "relu"), lr=point["lr"], steps=point["steps"],
        n_train=point.get("n_train"), batch_size=point.get("batch_size"),
        label_noise=point.get("label_noise", 0.0), tol=point.get("tol"), rng=gen,
        threads=threads)
    out = {}
    for status in ("global", "spurious"):
        p = float(np.mean(res.status == status))
        out[f"p_{status}"] = (p, math.sqrt(p * (1 - p) / R))
    f = res.f[np.isfinite(res.f)]  # diverged runs have no population loss
    se = float(np.std(f, ddof=1) / math.sqrt(f.size)) if f.size > 1 else math.nan
    out["mean_f"] = (float(np.mean(f)) if f.size else math.nan, se)
    return out


#: name -> (function, required parameters, optional parameters)
QUANTITIES = {
    "closed_form": (_closed_form, ("m", "n"), ("theta", "ste", "model_seed")),
    "monte_carlo": (_monte_carlo, ("m", "n", "n_samples"),
                    ("theta", "ste", "model_seed", "method")),
    "ensemble": (_ensemble, ("m", "n", "runs", "lr", "steps"),
                 ("theta", "ste", "model_seed", "n_train", "batch_size", "label_noise", "tol")),
}


# --------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepTable:
    """The tidy result of :func:`sweep`: one row per grid point and quantity.

    Attributes
    ----------
    params : tuple of str
        The grid's parameter names (the first columns).
    rows : tuple of dict
        ``{param: value, ..., "quantity": name, "value": float, "se": float
        or None}`` in grid order (None where a quantity has no standard
        error, as for closed forms).
    """

    params: tuple
    rows: tuple

    def __len__(self):
        return len(self.rows)

    @property
    def columns(self):
        """The column names: the grid's parameters, quantity, value, se."""
        return (*self.params, "quantity", "value", "se")

    def column(self, name):
        """Return one column as a NumPy array.

        Parameters
        ----------
        name : str
            One of ``columns``.

        Returns
        -------
        ndarray
            The column's values in row order (in ``se``, None becomes NaN).
        """
        if name not in self.columns:
            raise KeyError(f"no column {name!r}; the columns are {self.columns}")
        values = [r[name] for r in self.rows]
        if name == "se":
            values = [math.nan if x is None else x for x in values]
        return np.array(values)

    def to_csv(self, path):
        """Write the table as CSV.

        Parameters
        ----------
        path : str or path-like
            The file to write (replaced if it exists).

        Returns
        -------
        pathlib.Path
            ``path``; a header row of ``columns``, then one line per row, an
            empty cell where ``se`` is None.
        """
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(self.columns)
            for r in self.rows:
                writer.writerow(["" if r[c] is None else r[c] for c in self.columns])
        return Path(path)


# --------------------------------------------------------------------------
# the sweep
# --------------------------------------------------------------------------


def _canonical(point):
    return json.dumps(point, sort_keys=True, separators=(",", ":"))


def point_seed(seed, point):
    """The SeedSequence of one grid point: the base seed and a SHA-256 of the
    point's parameters (so no other point's presence changes it)."""
    digest = hashlib.sha256(_canonical(point).encode()).digest()
    words = [int.from_bytes(digest[i:i + 4], "little") for i in range(0, 16, 4)]
    return np.random.SeedSequence([seed, *words])


def _check_quantity(quantity, names):
    """(function, name recorded in the store)."""
    if callable(quantity):
        return quantity, f"{getattr(quantity, '__module__', '?')}." \
                         f"{getattr(quantity, '__qualname__', type(quantity).__name__)}"
    if quantity not in QUANTITIES:
        raise ValueError(f"quantity must be one of {tuple(QUANTITIES)} or a callable "
                         f"fn(point, rng, threads), got {quantity!r}")
    fn, required, optional = QUANTITIES[quantity]
    missing = [p for p in required if p not in names]
    unknown = [p for p in names if p not in required + optional]
    if missing:
        raise ValueError(f"quantity {quantity!r} needs parameter(s) {missing} in grid or "
                         f"fixed; got {sorted(names)}")
    if unknown:
        raise ValueError(f"quantity {quantity!r} takes parameters {required + optional}; "
                         f"got unknown {unknown}")
    return fn, quantity


def _evaluate(fn, point, entropy, threads):
    """One grid point (a task): rows as (name, float, float or None)."""
    out = fn(dict(point), np.random.SeedSequence(entropy), threads)
    if not isinstance(out, dict):
        raise TypeError(f"the quantity must return a dict of name -> value or (value, se), "
                        f"got {type(out).__name__}")
    rows = []
    for name, x in out.items():
        value, se = x if isinstance(x, tuple) else (x, None)
        rows.append((str(name), float(value), None if se is None else float(se)))
    return rows


def _write_atomic(path, payload):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem, suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def sweep(quantity, grid, *, fixed=None, seed=0, store=None, executor=None, threads=None,
          progress=False):
    """Evaluate a quantity at every point of a parameter grid.

    Parameters
    ----------
    quantity : {"closed_form", "monte_carlo", "ensemble"} or callable
        What to compute at each point. The built-ins use the model with
        teacher ``w* = e1``, student ``w`` at angle ``theta`` (default 1.0)
        from it with ``|w| = 1``, and ``v``, ``v*`` standard normal drawn
        from ``(model_seed, m)`` (default model_seed 0: the same model for
        every quantity and base seed); parameters ``m``, ``n`` (>= 2) and
        ``ste`` (default "relu"); the point's seed drives the sampling only.
        ``"closed_form"`` gives loss, grad_w_par, grad_w_perp (the
        components of E[g_mu] along w* and across it, in the plane of w)
        and cosine (with df/dw), without standard errors;
        ``"monte_carlo"`` estimates the first three (parameters
        ``n_samples``, ``method``); ``"ensemble"`` runs
        :func:`descent_ensemble` from ``runs`` random starts (``lr``,
        ``steps``, ``n_train``, ``batch_size``, ``label_noise``, ``tol``) and
        gives p_global, p_spurious (binomial standard errors) and mean_f.
        A callable ``fn(point, rng, threads)`` gets the point's parameters
        (a dict), its ``numpy.random.SeedSequence`` and the OpenMP threads to
        use, and returns ``{name: value}`` or ``{name: (value, se)}``.
    grid : dict of str to list
        Parameter values; the grid is their Cartesian product, in the
        order given. Values are int, float, str or bool.
    fixed : dict of str to scalar, optional
        Parameters shared by every point (part of each point's seed).
    seed : int
        The base seed; point p uses :func:`point_seed` (seed, p).
    store : path, optional
        Directory of finished points, one JSON file each, written
        atomically as each finishes; points already there (from an
        interrupted or smaller sweep with the same quantity and seed) are
        read, not computed.
    executor : None, concurrent.futures.Executor or dask.distributed.Client
        Where the points run (one task per point); None: here, in order.
        The table does not depend on it.
    threads : int, optional
        OpenMP threads per point (None: every core here, 1 on an executor).
    progress : bool or callable
        True: a progress bar over points on stderr when it is a terminal
        (needs tqdm). A callable ``progress(done, total)`` is called with
        the points finished so far (those read from ``store`` first), at the
        start and as each point finishes.

    Returns
    -------
    SweepTable
        One row per grid point and quantity, in grid order.

    Raises
    ------
    stefast.TaskError
        When a point's computation raises: the message names the grid
        point and the error (the points finished before it are stored).

    Examples
    --------
    >>> import stefast
    >>> t = stefast.sweep("closed_form", {"theta": [0.5, 2.5]}, fixed={"m": 3, "n": 4})
    >>> len(t), t.columns
    (8, ('theta', 'quantity', 'value', 'se'))
    """
    fixed = val.check_sweep_grid(grid, fixed)
    names = list(grid) + [k for k in fixed if k not in grid]
    fn, qname = _check_quantity(quantity, names)
    seed = val.check_int(seed, "seed", 0, 2**64 - 1)
    executor = val.check_executor(executor)
    threads = _tasks.task_threads(executor, threads)
    store = None if store is None else val.check_output_dir(store, "store")
    points = [dict(zip(grid, values), **fixed) for values in product(*grid.values())]
    seeds = [point_seed(seed, p) for p in points]
    files = [None if store is None else
             store / f"{hashlib.sha256(_canonical(p).encode()).hexdigest()[:20]}.json"
             for p in points]
    results = [None] * len(points)
    for i, path in enumerate(files):
        if path is not None and path.exists():
            results[i] = _load_point(path, qname, seed, points[i])
    todo = [i for i, r in enumerate(results) if r is None]

    bar = None
    report = progress if callable(progress) else None
    if report is not None:
        report(len(points) - len(todo), len(points))
    elif progress and sys.stderr is not None and sys.stderr.isatty():
        tqdm = require("tqdm.auto", "sweep(progress=True)").tqdm
        bar = tqdm(total=len(points), initial=len(points) - len(todo), unit="point",
                   desc=f"sweep[{qname}]", file=sys.stderr)

    def finished(j, rows):
        i = todo[j]
        results[i] = rows
        if files[i] is not None:
            _write_atomic(files[i], {"quantity": qname, "seed": seed, "point": points[i],
                                     "rows": rows})
        if bar is not None:
            bar.update(1)
        if report is not None:
            report(sum(r is not None for r in results), len(points))

    try:
        _tasks.run_tasks(executor, _evaluate,
                         [(fn, points[i], seeds[i].entropy, threads) for i in todo],
                         [f"grid point {_describe(points[i], grid)}" for i in todo],
                         on_result=finished)
    finally:
        if bar is not None:
            bar.close()
    rows = tuple({**{k: p[k] for k in grid}, "quantity": name, "value": value, "se": se}
                 for p, r in zip(points, results) for name, value, se in r)
    return SweepTable(tuple(grid), rows)


def _describe(point, grid):
    return ", ".join(f"{k}={point[k]!r}" for k in grid)


def _load_point(path, qname, seed, point):
    try:
        data = json.loads(path.read_text())
        rows = [(str(a), float(b), None if c is None else float(c)) for a, b, c in data["rows"]]
        same = (data["quantity"], data["seed"], data["point"]) == (qname, seed, point)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"store file {str(path)!r} is not a finished sweep point "
                         f"({type(exc).__name__}: {exc}); remove it to recompute that point") \
            from None
    if not same:
        raise ValueError(
            f"store file {str(path)!r} holds quantity {data['quantity']!r}, seed {data['seed']}, "
            f"point {data['point']}; this sweep has quantity {qname!r}, seed {seed}, point "
            f"{point}: use another store directory")
    return rows
