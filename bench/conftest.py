"""Shared benchmark plumbing: a `report` fixture that files each timing under
(group, implementation) with the amount of work done, and a terminal summary
that prints throughput, ratios to stefast and fractions of measured bounds.

Timing is never asserted; with --benchmark-disable every body runs once as a
smoke test and the summary is skipped.
"""

import os

import pytest

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

RESULTS = {}  # group -> {impl: dict(seconds=..., work=..., unit=..., bound=...)}
BOUNDS = {}   # name -> seconds per unit of work at the machine's limit


def median_seconds(benchmark):
    stats = getattr(benchmark, "stats", None)
    if stats is None or getattr(benchmark, "disabled", False):
        return None
    return stats.stats.median


@pytest.fixture
def report(benchmark):
    """report(impl, work, unit, bound=None, bound_units=None): file this
    benchmark's median.

    work is how many units (samples) one call processes; bound names an
    entry of BOUNDS (seconds per bound unit, e.g. per float64 read) and
    bound_units how many of those one call needs at least, so the summary
    can show the fraction of the machine's limit reached.
    """
    def _report(impl, work, unit="samples", bound=None, bound_units=None, **extra):
        benchmark.extra_info.update(impl=impl, work=work, unit=unit, **extra)
        t = median_seconds(benchmark)
        if t is not None:
            RESULTS.setdefault(benchmark.group, {})[impl] = dict(
                seconds=t, work=work, unit=unit, bound=bound, bound_units=bound_units)
            benchmark.extra_info["rate_per_s"] = work / t
            if bound in BOUNDS:
                benchmark.extra_info["fraction_of_bound"] = BOUNDS[bound] * bound_units / t
    return _report


def pytest_terminal_summary(terminalreporter):
    if not RESULTS and not BOUNDS:
        return
    tr = terminalreporter
    tr.section("stefast benchmark summary (medians; ratios measured in this run)")
    for name, per_unit in sorted(BOUNDS.items()):
        tr.write_line(f"bound {name}: {per_unit * 1e9:.3f} ns per value")
    header = f"{'group':40s} {'implementation':28s} {'rate (/s)':>12s} {'stefast speed-up':>16s} {'of bound':>9s}"
    tr.write_line(header)
    for group in sorted(RESULTS):
        rows = RESULTS[group]
        fast = rows.get("stefast")
        for impl, r in sorted(rows.items(), key=lambda kv: kv[1]["seconds"]):
            rate = r["work"] / r["seconds"]
            ratio = f"{r['seconds'] / fast['seconds']:.2f}x" if fast and impl != "stefast" else "-"
            frac = "-"
            if r["bound"] in BOUNDS:
                frac = f"{BOUNDS[r['bound']] * r['bound_units'] / r['seconds']:.0%}"
            tr.write_line(f"{group:40s} {impl:28s} {rate:12.4g} {ratio:>16s} {frac:>9s}")
