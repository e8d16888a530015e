"""Shared benchmark plumbing.

* ``report`` fixture: files each timing under (group, implementation) with
  the amount of work one call does, so the summary (and ``stefast bench``)
  can show throughput, ratios to stefast and to the NumPy reference, and
  the fraction of a bound measured in the same run.
* ``interleave`` fixture: for groups where this suite controls the loop,
  times several implementations round by round (A B C A B C ...) so slow
  drift of the machine hits all of them alike; medians and quartiles go to
  ``extra_info["interleaved"]``. pytest-benchmark itself runs all rounds of
  one test before the next, which is what the ordinary groups show.
* ``BOUNDS`` (seconds per unit at this machine's limit) and ``RESULTS`` are
  filled during the run and written into the pytest-benchmark JSON under the
  key ``"stefast"`` (read back by ``stefast.benchreport``).
* marker ``quick``: the subset ``stefast bench --quick`` selects (``-m quick``).

Timing is never asserted; with --benchmark-disable every body runs once as a
smoke test and the summary is skipped.
"""

import ctypes
import os
import shutil
import subprocess
import sysconfig
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

QUICK = os.environ.get("STEFAST_BENCH_QUICK") == "1"  # set by `stefast bench --quick`


def rounds(n):
    """Rounds for pedantic(): n, or 3 under `stefast bench --quick`."""
    return min(n, 3) if QUICK else n


RESULTS = {}  # group -> {impl: dict(seconds=..., work=..., unit=..., bound=...)}
BOUNDS = {}   # name -> seconds per unit of work at the machine's limit
NOTES = []    # free-form result lines for the summary (e.g. build comparisons)


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "quick: the subset `stefast bench --quick` runs (about a minute)")
    # peers (numba, torch.compile) may warn while compiling; the project's
    # filterwarnings=error must not turn a peer's DeprecationWarning into a failure
    config.addinivalue_line("filterwarnings", "ignore::DeprecationWarning")
    config.addinivalue_line("filterwarnings", "ignore::UserWarning")
    config.addinivalue_line("filterwarnings", "ignore::FutureWarning")


# tests of files this suite does not mark itself that `--quick` also runs:
# the read bound, and one representative shape of the core and Monte Carlo groups
QUICK_NODEIDS = (
    "test_bench_core.py::test_read_bandwidth",
    "test_bench_core.py::test_loss_and_grads[stefast-32x64-float64]",
    "test_bench_core.py::test_loss_and_grads[reference-32x64-float64]",
    "test_bench_core.py::test_loss_and_grads[torch-autograd-32x64-float64]",
    "test_bench_montecarlo.py::test_monte_carlo_rate[32x64-float64-1thr-",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(q in item.nodeid for q in QUICK_NODEIDS):
            item.add_marker(pytest.mark.quick)
    # bounds first, so every later group can show its fraction of them
    items.sort(key=lambda it: 0 if ("read_bandwidth" in it.nodeid
                                    or "normal_generator_rate" in it.nodeid) else 1)


@pytest.fixture(scope="session")
def c_read(tmp_path_factory):
    """read(a): one pass over a's buffer by bench/read_bound.c (aligned
    64-byte loads, built here with -march=native), or None without a C
    compiler. NumPy's reductions are not a bandwidth floor everywhere
    (docs/performance.rst, section "Bandwidth, drift and call overhead")."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    cc = shutil.which(cc) or shutil.which("cc")
    if cc is None:
        return None
    lib = tmp_path_factory.mktemp("read_bound") / "read_bound.so"
    build = subprocess.run([cc, "-O3", "-march=native", "-shared", "-fPIC",
                            str(Path(__file__).with_name("read_bound.c")), "-o", str(lib)],
                           capture_output=True)
    if build.returncode != 0:
        return None
    fn = ctypes.CDLL(str(lib)).read_bound_sum
    fn.restype, fn.argtypes = ctypes.c_double, [ctypes.c_void_p, ctypes.c_int64]

    def read(a):
        assert a.flags.c_contiguous
        return fn(a.ctypes.data, a.nbytes // 8)

    return read


def median_seconds(benchmark):
    stats = getattr(benchmark, "stats", None)
    if stats is None or getattr(benchmark, "disabled", False):
        return None
    return stats.stats.median


@pytest.fixture
def report(benchmark):
    """report(impl, work, unit="samples", bound=None, bound_units=None): file
    this benchmark's median.

    work is how many units (samples) one call processes; bound names an
    entry of BOUNDS (seconds per bound unit, e.g. per float64 read) and
    bound_units how many of those one call needs at least, so the summary
    can show the fraction of the machine's limit reached. Extra keyword
    arguments (m, n, B, threads, ...) go to extra_info for the report's
    plots.
    """
    def _report(impl, work, unit="samples", bound=None, bound_units=None, **extra):
        benchmark.extra_info.update(impl=impl, work=work, unit=unit, **extra)
        if bound is not None:
            benchmark.extra_info.update(bound=bound, bound_units=bound_units)
        t = median_seconds(benchmark)
        if t is not None:
            RESULTS.setdefault(benchmark.group, {})[impl] = dict(
                seconds=t, work=work, unit=unit, bound=bound, bound_units=bound_units)
            benchmark.extra_info["rate_per_s"] = work / t
            if bound in BOUNDS:
                benchmark.extra_info["fraction_of_bound"] = BOUNDS[bound] * bound_units / t
    return _report


def interleaved_times(fns, rounds, warmup=1):
    """{name: [seconds per round]} timing fns round by round, in turn."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def repeat_calls(fn, calls):
    """A function that calls fn `calls` times: one timed round of a call
    too short to time alone."""
    def run():
        for _ in range(calls):
            fn()
    return run


def elementwise_params(ops, sizes, dtypes, quick_dtype):
    """pytest params (op, size, dtype) over every combination, the largest
    size in quick_dtype marked quick."""
    for op in ops:
        for size in sizes:
            for dtype in dtypes:
                marks = [pytest.mark.quick] if (size == sizes[-1] and dtype == quick_dtype) else []
                yield pytest.param(op, size, dtype, marks=marks,
                                   id=f"{op}-{size}-{np.dtype(dtype).name}")


def summarize(times, work):
    """{name: median, quartiles, best, rounds, rate} of interleaved_times' output."""
    summary = {}
    for name, ts in times.items():
        q1, med, q3 = np.percentile(ts, [25, 50, 75])
        summary[name] = dict(median=med, q1=q1, q3=q3, best=min(ts), rounds=len(ts),
                             rate_per_s=work / med)
    return summary


@pytest.fixture
def interleave(benchmark):
    """interleave(fns, work, rounds=7, unit="samples"): time the callables
    of dict fns round by round, store median/q1/q3 per name in
    ``extra_info["interleaved"]`` and register one pytest-benchmark entry
    (the first callable, one round) so the group appears in the JSON.

    fns may also be a list of such dicts, one per copy of the input (same
    names): each copy gets its rounds in turn, ``extra_info["interleaved"]``
    pools the rounds of all copies and ``extra_info["copies"]`` keeps one
    summary per copy."""
    def _interleave(fns, work, rounds=7, unit="samples", **extra):
        rounds = 1 if benchmark.disabled else (min(rounds, 5) if QUICK else rounds)
        copies = fns if isinstance(fns, list) else [fns]
        per_copy = [interleaved_times(c, rounds, warmup=0 if benchmark.disabled else 1)
                    for c in copies]
        pooled = {name: [t for times in per_copy for t in times[name]] for name in copies[0]}
        summary = summarize(pooled, work)
        benchmark.extra_info.update(interleaved=summary, work=work, unit=unit, **extra)
        if isinstance(fns, list):
            benchmark.extra_info["copies"] = [summarize(times, work) for times in per_copy]
        first = next(iter(copies[0].values()))
        benchmark.pedantic(first, rounds=1, iterations=1)
        return summary
    return _interleave


def pytest_benchmark_update_json(config, benchmarks, output_json):
    output_json["stefast"] = {"bounds": dict(BOUNDS), "results": RESULTS}


def pytest_terminal_summary(terminalreporter):
    if not RESULTS and not BOUNDS and not NOTES:
        return
    tr = terminalreporter
    tr.section("stefast benchmark summary (medians; ratios measured in this run)")
    for line in NOTES:
        tr.write_line(line)
    for name, per_unit in sorted(BOUNDS.items()):
        tr.write_line(f"bound {name}: {per_unit * 1e9:.3f} ns per value")
    header = (f"{'group':48s} {'implementation':24s} {'rate (/s)':>12s} "
              f"{'stefast speed-up':>16s} {'of bound':>9s}")
    tr.write_line(header)
    for group in sorted(RESULTS):
        rows = RESULTS[group]
        fast = rows.get("stefast")
        for impl, r in sorted(rows.items(), key=lambda kv: kv[1]["seconds"]):
            rate = r["work"] / r["seconds"]
            # rates, not times: rows of one group may process different amounts of work
            ratio = "-"
            if fast and impl != "stefast":
                ratio = f"{(fast['work'] / fast['seconds']) / rate:.2f}x"
            frac = "-"
            if r["bound"] in BOUNDS:
                frac = f"{BOUNDS[r['bound']] * r['bound_units'] / r['seconds']:.0%}"
            tr.write_line(f"{group:48s} {impl:24s} {rate:12.4g} {ratio:>16s} {frac:>9s}")
