"""executor= on Dask: one large Monte Carlo estimate and one ensemble on a
local cluster of 1 and of 2 single-threaded worker processes, and here on
one thread, interleaved round by round in one run (speed-up and efficiency
of 2 workers over 1); the scheduling overhead per task, from many tasks of
almost no work. Skipped without Dask (``pip install "stefast[distributed]"``).

    pytest bench/test_bench_distributed.py

Tasks are made ~0.13 s (TASK_WORK = 2**27 normal-equivalents, not the
default 2**30) so that a round has 16 of them and stays a few seconds; the
per-task overhead below says what that costs.
"""

import time

import numpy as np
import pytest

import stefast
from stefast import _tasks
from conftest import NOTES

distributed = pytest.importorskip("distributed")

M, N_DIM = 32, 64
TASK_WORK = 1 << 27
TASKS = 16


@pytest.fixture(scope="module")
def clients():
    """{workers: Client} for local process clusters of 1 and 2 workers."""
    clusters, out = [], {}
    try:
        for k in (1, 2):
            cluster = distributed.LocalCluster(n_workers=k, threads_per_worker=1,
                                               processes=True, dashboard_address=":0")
            clusters.append(cluster)
            out[k] = distributed.Client(cluster)
        yield out
    finally:
        for c in out.values():
            c.close()
        for c in clusters:
            c.close()


def _problem(m, n):
    rng = np.random.default_rng(3)
    return tuple(rng.standard_normal(k) for k in (m, n, m, n))


def _scaling(summary, what):
    t1, t2 = summary["dask 1 worker"]["median"], summary["dask 2 workers"]["median"]
    speedup = t1 / t2
    here = summary["here, 1 thread"]["median"]
    NOTES.append(f"{what}: here 1 thread {here:.3f} s, 1 worker {t1:.3f} s, 2 workers "
                 f"{t2:.3f} s: speed-up {speedup:.2f}, efficiency {speedup / 2:.0%}")
    return dict(speedup=speedup, efficiency=speedup / 2)


def test_monte_carlo_1_vs_2_workers(benchmark, interleave, clients, monkeypatch):
    monkeypatch.setattr(_tasks, "TASK_WORK", TASK_WORK)
    v, w, vs, ws = _problem(M, N_DIM)
    per_task = TASK_WORK // (2 * M * N_DIM)  # samples: "full" costs 2 m n per sample
    # smoke mode (--benchmark-disable): the same path on 1/64 of the samples
    n_samples = TASKS * per_task // (64 if benchmark.disabled else 1)
    kw = dict(n_samples=n_samples, rng=0, threads=1)
    want = stefast.monte_carlo(v, w, vs, ws, **kw)
    fns = {"here, 1 thread": lambda: stefast.monte_carlo(v, w, vs, ws, **kw)}
    for k, client in clients.items():
        got = stefast.monte_carlo(v, w, vs, ws, executor=client, **kw)
        assert np.array_equal(got.grad_w, want.grad_w) and got.loss == want.loss
        fns[f"dask {k} worker{'s' if k > 1 else ''}"] = \
            lambda c=client: stefast.monte_carlo(v, w, vs, ws, executor=c, **kw)
    benchmark.group = f"distributed: monte_carlo full {M}x{N_DIM}, {n_samples} samples"
    summary = interleave(fns, work=n_samples, rounds=3, m=M, n=N_DIM)
    if not benchmark.disabled:
        benchmark.extra_info.update(_scaling(summary, f"monte_carlo {M}x{N_DIM} "
                                                      f"{n_samples} samples"))
        here = summary["here, 1 thread"]["median"]
        NOTES.append(f"monte_carlo full {M}x{N_DIM}: {here / n_samples * 1e9:.0f} ns per "
                     f"sample on one core ({here / n_samples / (2 * M * N_DIM) * 1e9:.2f} ns "
                     "per normal-equivalent)")


def test_ensemble_1_vs_2_workers(benchmark, interleave, clients, monkeypatch):
    R, n_train, steps = 32, 1000, 1000
    m, n = 8, 16
    run_work = (steps + 1) * n_train * m * n
    # two runs per task: 16 tasks
    monkeypatch.setattr(_tasks, "TASK_WORK", 2 * run_work)
    if benchmark.disabled:
        R = 4
    rng = np.random.default_rng(5)
    v0, w0 = rng.standard_normal((R, m)), rng.standard_normal((R, n))
    _, _, vs, ws = _problem(m, n)
    kw = dict(lr=0.05, steps=steps, n_train=n_train, rng=1, threads=1)
    want = stefast.descent_ensemble(v0, w0, vs, ws, **kw)
    fns = {"here, 1 thread": lambda: stefast.descent_ensemble(v0, w0, vs, ws, **kw)}
    for k, client in clients.items():
        got = stefast.descent_ensemble(v0, w0, vs, ws, executor=client, **kw)
        assert np.array_equal(got.w, want.w) and np.array_equal(got.status, want.status)
        fns[f"dask {k} worker{'s' if k > 1 else ''}"] = \
            lambda c=client: stefast.descent_ensemble(v0, w0, vs, ws, executor=c, **kw)
    benchmark.group = f"distributed: descent_ensemble {m}x{n}, R={R}, N={n_train}"
    summary = interleave(fns, work=R, rounds=3, unit="runs", m=m, n=n)
    if not benchmark.disabled:
        benchmark.extra_info.update(_scaling(summary, f"descent_ensemble R={R} {m}x{n} "
                                                      f"N={n_train} steps={steps}"))


def _noop(i):
    return i


def test_per_task_overhead(benchmark, clients, monkeypatch):
    """Seconds per task of the 1-worker and 2-worker clusters: many tasks of
    nothing (client.submit + gather), and monte_carlo cut into tasks of one
    block of a 2x2 problem against the same run here."""
    n_tasks = 50 if benchmark.disabled else 1000
    rows = {}
    for k, client in clients.items():
        t0 = time.perf_counter()
        futures = [client.submit(_noop, i, pure=False) for i in range(n_tasks)]
        assert client.gather(futures) == list(range(n_tasks))
        rows[f"noop, {k} worker(s)"] = (time.perf_counter() - t0) / n_tasks
    monkeypatch.setattr(_tasks, "TASK_WORK", 1)  # one block (256 samples) per task
    v, w, vs, ws = _problem(2, 2)
    kw = dict(n_samples=256 * n_tasks, rng=0, threads=1)
    t0 = time.perf_counter()
    want = stefast.monte_carlo(v, w, vs, ws, **kw)
    here = time.perf_counter() - t0
    for k, client in clients.items():
        t0 = time.perf_counter()
        got = stefast.monte_carlo(v, w, vs, ws, executor=client, **kw)
        rows[f"monte_carlo, {k} worker(s)"] = (time.perf_counter() - t0 - here) / n_tasks
        assert got.loss == want.loss
    benchmark.group = "distributed: overhead per task"
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    benchmark.extra_info.update(seconds_per_task=rows, tasks=n_tasks)
    if not benchmark.disabled:
        NOTES.append("overhead per Dask task (local cluster): " + "; ".join(
            f"{name} {s * 1e3:.2f} ms" for name, s in rows.items()))
