"""executor= and sweep (issue 21): the same bits on thread and process pools
and on two-worker Dask LocalClusters (threads and processes) as locally,
resumable sweeps, errors that name the task, a worker killed mid-run.

The task size is lowered (monkeypatching _tasks.TASK_WORK, which the client
alone reads to cut the work) so that small problems make many tasks.
"""

import concurrent.futures
import multiprocessing
import os
import signal
import threading
import time

import numpy as np
import pytest

import stefast
from stefast import _tasks
from stefast import montecarlo as mcmod
from stefast.descent import ensemble_task_runs

MC_FIELDS = ("loss", "grad_v", "grad_w", "loss_se", "grad_v_se", "grad_w_se", "m2")
ENS_FIELDS = ("v", "w", "steps_taken", "final_loss", "f", "theta", "w_norm", "status",
              "loss", "f_curve", "theta_curve", "w_norm_curve")


@pytest.fixture
def small_tasks(monkeypatch):
    monkeypatch.setattr(_tasks, "TASK_WORK", 1 << 12)


def _dask_cluster(processes):
    distributed = pytest.importorskip("distributed")
    return distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=processes,
                                    dashboard_address=":0")


@pytest.fixture(scope="module")
def dask_threads():
    with _dask_cluster(False) as cluster:
        import distributed
        with distributed.Client(cluster) as client:
            yield client


@pytest.fixture(scope="module")
def dask_processes():
    with _dask_cluster(True) as cluster:
        import distributed
        with distributed.Client(cluster) as client:
            yield client


@pytest.fixture(scope="module")
def thread_pool():
    with concurrent.futures.ThreadPoolExecutor(2) as ex:
        yield ex


@pytest.fixture(scope="module")
def process_pool():
    # spawn, not fork: a forked child of a process whose OpenMP runtime has
    # started its threads can hang in libgomp
    with concurrent.futures.ProcessPoolExecutor(
            2, mp_context=multiprocessing.get_context("spawn")) as ex:
        yield ex


EXECUTORS = ["thread_pool", "process_pool", "dask_threads", "dask_processes"]


def _problem(m=5, n=4, seed=0):
    rng = np.random.default_rng(seed)
    return tuple(rng.standard_normal(k) for k in (m, n, m, n))


def _assert_same_mc(a, b):
    for name in MC_FIELDS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert (a.n_samples, a.segments) == (b.n_samples, b.segments)


# --------------------------------------------------------------------------
# Monte Carlo
# --------------------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_monte_carlo_bits_on_executors(executor, request, small_tasks):
    ex = request.getfixturevalue(executor)
    v, w, v_star, w_star = _problem()
    for method, ste in (("full", "relu"), ("conditional", stefast.surrogates.swish_sign(3.0))):
        kw = dict(ste=ste, n_samples=5000, method=method, rng=7, start=123)
        assert len(mcmod.task_ranges(method, 5, 4, 2, 5000)) > 4  # really split
        local = stefast.monte_carlo(v, w, v_star, w_star, **kw)
        _assert_same_mc(stefast.monte_carlo(v, w, v_star, w_star, executor=ex, **kw), local)


class _ReverseExecutor(concurrent.futures.Executor):
    """Runs the tasks submitted in one burst last-first, from another thread:
    the results arrive in the opposite of task order."""

    def __init__(self):
        self.pending, self.timer, self.lock = [], None, threading.Lock()

    def submit(self, fn, /, *args, **kwargs):
        f = concurrent.futures.Future()
        with self.lock:
            self.pending.append((f, fn, args))
            if self.timer is not None:
                self.timer.cancel()
            self.timer = threading.Timer(0.05, self._run)
            self.timer.start()
        return f

    def _run(self):
        with self.lock:
            work, self.pending = self.pending[::-1], []
        for f, fn, args in work:
            if f.set_running_or_notify_cancel():
                f.set_result(fn(*args))


def test_monte_carlo_bits_do_not_depend_on_finish_order(small_tasks):
    v, w, v_star, w_star = _problem(3, 6, seed=1)
    kw = dict(n_samples=3000, method="projected", rng=2, dtype=np.float32)
    order = []
    ex = _ReverseExecutor()
    orig = _tasks.run_tasks

    def spy(executor, fn, args, labels, on_result=None):
        def record(i, r):
            order.append(i)
            if on_result is not None:
                on_result(i, r)
        return orig(executor, fn, args, labels, record)
    _tasks.run_tasks, saved = spy, _tasks.run_tasks
    try:
        got = stefast.monte_carlo(v, w, v_star, w_star, executor=ex, **kw)
    finally:
        _tasks.run_tasks = saved
    assert len(order) > 2 and order == sorted(order, reverse=True)
    _assert_same_mc(got, stefast.monte_carlo(v, w, v_star, w_star, **kw))


@pytest.mark.parametrize("method", mcmod.METHODS)
def test_task_ranges_rule(method):
    m, n, k = 7, 9, 2
    block = mcmod.block_samples(method, m, n, k)
    cost = mcmod._sample_cost(method, m, n, k)
    for n_samples in (2, 1000, 10**7, 10**9 + 3, 2**62):
        ranges = mcmod.task_ranges(method, m, n, k, n_samples)
        offsets = [a for a, _ in ranges]
        counts = [c for _, c in ranges]
        assert sum(counts) == n_samples and offsets == list(np.cumsum([0] + counts[:-1]))
        c = counts[0]
        assert len(ranges) <= _tasks.MAX_TASKS
        if len(ranges) > 1:
            assert c % block == 0 and all(x == c for x in counts[:-1])
            assert c <= counts[-1] < 2 * c  # never a tail of one sample
            assert c * cost >= _tasks.TASK_WORK
            # the smallest such multiple of the block, unless the task cap set it
            assert (c - block) * cost < _tasks.TASK_WORK or len(ranges) * 2 > _tasks.MAX_TASKS


def test_pieces_of_a_huge_v_keep_finite_standard_errors(small_tasks):
    # |v| = 2**300: the pieces are statistics of the model scaled down by a
    # power of two, undone once after merging; their m2 (~ |v|**4) would
    # overflow if each piece were scaled back before the merge
    v, w, v_star, w_star = _problem()
    kw = dict(n_samples=4000, rng=8)
    assert len(mcmod.task_ranges("full", 5, 4, 2, 4000)) > 1
    base = stefast.monte_carlo(v, w, v_star, w_star, **kw)
    big = stefast.monte_carlo(v * 2.0**300, w, v_star * 2.0**300, w_star, **kw)
    assert np.isfinite(big.loss_se) and np.all(np.isfinite(big.grad_w_se))
    assert big.loss_se == pytest.approx(base.loss_se * 2.0**600, rel=1e-12)
    np.testing.assert_allclose(big.grad_v_se, base.grad_v_se * 2.0**300, rtol=1e-12)


def test_pieces_merge_to_one_segment():
    v, w, v_star, w_star = _problem()
    a = stefast.monte_carlo(v, w, v_star, w_star, n_samples=100, rng=3)
    b = stefast.monte_carlo(v, w, v_star, w_star, n_samples=100, rng=3, start=100)
    ab = a.merge(b)
    assert ab.segments == ((*a.segments[0][:3], 200),)
    with pytest.raises(ValueError, match="share samples"):
        ab.merge(stefast.monte_carlo(v, w, v_star, w_star, n_samples=50, rng=3, start=150))


# --------------------------------------------------------------------------
# ensembles
# --------------------------------------------------------------------------


@pytest.mark.parametrize("executor", EXECUTORS)
def test_descent_ensemble_bits_on_executors(executor, request, small_tasks):
    ex = request.getfixturevalue(executor)
    rng = np.random.default_rng(4)
    R, m, n = 9, 4, 3
    v0, w0 = rng.standard_normal((R, m)), rng.standard_normal((R, n))
    v_star, w_star = rng.standard_normal((R, m)), rng.standard_normal((R, n))
    cases = [dict(n_train=16, steps=40, lr=0.1, rng=5, record_every=10, first_stream=3),
             dict(Z=rng.standard_normal((R, 8, m, n)), steps=30, lr=0.1, batch_size=3, rng=6,
                  ste=stefast.surrogates.approx_sign())]
    for kw in cases:
        batch = kw.get("batch_size") or kw.get("n_train")
        assert len(ensemble_task_runs(R, (kw["steps"] + 1) * batch * m * n)) > 2
        local = stefast.descent_ensemble(v0, w0, v_star, w_star, **kw)
        got = stefast.descent_ensemble(v0, w0, v_star, w_star, executor=ex, **kw)
        for name in ENS_FIELDS:
            a, b = getattr(got, name), getattr(local, name)
            assert (a is None and b is None) or np.array_equal(
                a, b, equal_nan=a.dtype.kind == "f"), name


def test_ensemble_task_runs_rule():
    for R, work in ((1, 1.0), (10, 1e3), (10**6, 1e9), (10**8, 10.0)):
        groups = ensemble_task_runs(R, work)
        assert groups[0][0] == 0 and groups[-1][1] == R
        assert all(a[1] == b[0] for a, b in zip(groups, groups[1:]))
        assert len(groups) <= _tasks.MAX_TASKS
        per = groups[0][1] - groups[0][0]
        assert per * work >= _tasks.TASK_WORK or per == R


# --------------------------------------------------------------------------
# arguments
# --------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["dask", 2, object(), concurrent.futures.ThreadPoolExecutor])
def test_bad_executor_is_named(bad):
    v, w, v_star, w_star = _problem()
    with pytest.raises(TypeError, match=r"executor must be None, a concurrent\.futures\."
                                        r"Executor or a dask\.distributed\.Client; got "):
        stefast.monte_carlo(v, w, v_star, w_star, n_samples=10, executor=bad)
    with pytest.raises(TypeError, match="executor must be"):
        stefast.descent_ensemble(np.ones((1, 5)), np.ones((1, 4)), v_star, w_star, lr=0.1,
                                 steps=1, n_train=2, executor=bad)
    with pytest.raises(TypeError, match="executor must be"):
        stefast.sweep("closed_form", {"theta": [1.0]}, fixed={"m": 2, "n": 2}, executor=bad)


# --------------------------------------------------------------------------
# sweeps
# --------------------------------------------------------------------------

GRID = {"theta": [0.5, 1.5, 2.5], "ste": ["relu", "identity"]}
FIXED = {"m": 4, "n": 3, "n_samples": 2000}


def test_sweep_table_and_seeding():
    t = stefast.sweep("monte_carlo", GRID, fixed=FIXED, seed=11)
    assert t.columns == ("theta", "ste", "quantity", "value", "se")
    assert len(t) == 6 * 3 and all(r["se"] > 0 for r in t.rows)
    # a point's rows depend on its own parameters only: a grid with one more
    # theta, in another order, has the same rows for the shared points
    bigger = stefast.sweep("monte_carlo", {"ste": ["identity", "relu"],
                                           "theta": [2.5, 1.0, 0.5, 1.5]}, fixed=FIXED, seed=11)
    key = lambda r: (r["theta"], r["ste"], r["quantity"])  # noqa: E731
    shared = {key(r): r for r in bigger.rows}
    assert all(shared[key(r)]["value"] == r["value"] for r in t.rows)
    other = stefast.sweep("monte_carlo", GRID, fixed=FIXED, seed=12)
    assert not np.array_equal(other.column("value"), t.column("value"))
    # the Monte Carlo agrees with the closed form at the same point (same v, v*)
    exact = stefast.sweep("closed_form", GRID, fixed={"m": 4, "n": 3}, seed=11)
    ex = {key(r): r["value"] for r in exact.rows}
    z = [abs(r["value"] - ex[key(r)]) / r["se"] for r in t.rows]
    assert max(z) < 6


@pytest.mark.parametrize("executor", EXECUTORS)
def test_sweep_same_table_on_executors(executor, request, tmp_path):
    ex = request.getfixturevalue(executor)
    fixed = {"m": 3, "n": 3, "runs": 6, "lr": 0.1, "steps": 50}
    grid = {"n_train": [5, 20], "theta": [0.3, 2.9]}
    local = stefast.sweep("ensemble", grid, fixed=fixed, seed=1)
    got = stefast.sweep("ensemble", grid, fixed=fixed, seed=1, executor=ex, store=tmp_path)
    assert got == local and len(list(tmp_path.glob("*.json"))) == 4


#: calls of _flaky and the x at which it raises (the stand-in for a crash:
#: outside the point, so that a point's parameters and seed stay the same)
_FLAKY = {"calls": [], "fail_at": None}


def _flaky(point, rng, threads):
    _FLAKY["calls"].append(point["x"])
    if point["x"] == _FLAKY["fail_at"]:
        raise RuntimeError("boom")
    g = np.random.default_rng(rng)
    return {"a": (float(g.standard_normal()), 0.5), "b": float(point["x"]) ** 2}


def test_sweep_interrupted_resumes_to_the_same_table(tmp_path, monkeypatch):
    grid = {"x": list(range(6))}
    monkeypatch.setitem(_FLAKY, "calls", [])
    whole = stefast.sweep(_flaky, grid, seed=3)
    _FLAKY["calls"].clear()
    monkeypatch.setitem(_FLAKY, "fail_at", 3)
    with pytest.raises(stefast.TaskError, match=r"grid point x=3: RuntimeError: boom"):
        stefast.sweep(_flaky, grid, seed=3, store=tmp_path)
    assert _FLAKY["calls"] == [0, 1, 2, 3] and len(list(tmp_path.glob("*.json"))) == 3
    _FLAKY["calls"].clear()
    monkeypatch.setitem(_FLAKY, "fail_at", None)
    resumed = stefast.sweep(_flaky, grid, seed=3, store=tmp_path)
    assert _FLAKY["calls"] == [3, 4, 5]  # only the missing points
    assert resumed == whole
    assert stefast.sweep(_flaky, grid, seed=3, store=tmp_path) == whole
    assert _FLAKY["calls"] == [3, 4, 5]  # nothing recomputed
    assert not list(tmp_path.glob("*.tmp"))  # no temporary file left behind
    # a store holds one sweep: another seed is refused, naming the file
    with pytest.raises(ValueError, match=r"store file .* holds quantity .* seed 3.*seed 4"):
        stefast.sweep(_flaky, grid, seed=4, store=tmp_path)


def test_sweep_point_error_names_the_point_on_a_pool(thread_pool, monkeypatch):
    monkeypatch.setitem(_FLAKY, "fail_at", 2)
    with pytest.raises(stefast.TaskError, match=r"grid point x=2, y='a': RuntimeError: boom") \
            as info:
        stefast.sweep(_flaky, {"x": [1, 2], "y": ["a"]}, executor=thread_pool)
    assert isinstance(info.value.__cause__, RuntimeError)


@pytest.mark.parametrize("grid, fixed, quantity, match", [
    ([1, 2], None, "closed_form", "grid must be a non-empty dict"),
    ({"theta": []}, {"m": 2, "n": 2}, "closed_form", r"grid\['theta'\] must be a non-empty"),
    ({"theta": [np.ones(2)]}, {"m": 2, "n": 2}, "closed_form", "values must be int, float"),
    ({"theta": [1.0, 1.0]}, {"m": 2, "n": 2}, "closed_form", "repeats a value"),
    ({"theta": [1.0]}, {"theta": 2, "m": 2, "n": 2}, "closed_form", "both in grid and in fixed"),
    ({"theta": [1.0]}, {"m": 2}, "closed_form", r"needs parameter\(s\) \['n'\]"),
    ({"theta": [1.0]}, {"m": 2, "n": 2, "lr": 1}, "closed_form", r"got unknown \['lr'\]"),
    ({"theta": [1.0]}, {"m": 2, "n": 2}, "nope", "quantity must be one of"),
])
def test_sweep_bad_arguments(grid, fixed, quantity, match):
    with pytest.raises((TypeError, ValueError), match=match):
        stefast.sweep(quantity, grid, fixed=fixed)


def test_sweep_table_to_csv(tmp_path):
    t = stefast.sweep("closed_form", {"theta": [0.5, 1.0]}, fixed={"m": 2, "n": 3})
    path = t.to_csv(tmp_path / "t.csv")
    lines = path.read_text().splitlines()
    assert lines[0] == "theta,quantity,value,se" and len(lines) == 1 + len(t)
    first = lines[1].split(",")
    assert float(first[2]) == t.rows[0]["value"] and first[3] == ""
    assert np.isnan(t.column("se")).all()


# --------------------------------------------------------------------------
# faults: a killed sweep process, a killed Dask worker
# --------------------------------------------------------------------------

KILL_SPEC = """
quantity = "monte_carlo"
seed = 9
[grid]
theta = [0.2, 0.8, 1.4, 2.0, 2.6, 3.0]
ste = ["relu", "identity"]
[fixed]
m = 8
n = 8
n_samples = 400000
"""


def test_sweep_killed_process_resumes_to_the_same_table(tmp_path):
    import subprocess
    import sys

    from stefast.cli import main
    spec = tmp_path / "spec.toml"
    spec.write_text(KILL_SPEC)
    out = tmp_path / "killed"
    # cwd away from the checkout: `python -m` puts the working directory
    # first on sys.path, and a checkout's stefast/ has no built extension
    # when the package is installed from a wheel
    log = tmp_path / "killed.log"
    with open(log, "wb") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "stefast.cli", "sweep", str(spec), "--out",
                                 str(out)], cwd=tmp_path, stdout=subprocess.DEVNULL,
                                stderr=stderr)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list((out / "points").glob("*.json"))) >= 3:
                break
            time.sleep(0.01)
        running = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    stored = len(list((out / "points").glob("*.json")))
    assert running and 3 <= stored < 12, (running, stored, log.read_text())  # killed part-way
    assert main(["sweep", str(spec), "--out", str(out)]) == 0
    assert main(["sweep", str(spec), "--out", str(tmp_path / "whole")]) == 0
    assert (out / "sweep.csv").read_text() == (tmp_path / "whole" / "sweep.csv").read_text()
    assert len(list((out / "points").glob("*.json"))) == 12  # nothing duplicated


@pytest.mark.slow  # a process cluster of its own and a restarted worker: 6-10 s here
def test_killed_dask_worker_changes_nothing(monkeypatch):
    distributed = pytest.importorskip("distributed")
    # tasks of ~0.1 s, so the kill lands while tasks are running
    monkeypatch.setattr(_tasks, "TASK_WORK", 1 << 27)
    v, w, v_star, w_star = _problem(8, 8, seed=2)
    kw = dict(n_samples=12 * (1 << 20), rng=4)
    assert len(mcmod.task_ranges("full", 8, 8, 2, kw["n_samples"])) >= 10
    local = stefast.monte_carlo(v, w, v_star, w_star, **kw)
    with _dask_cluster(True) as cluster, distributed.Client(cluster) as client:
        pids = client.run(os.getpid)
        result = {}
        run = threading.Thread(target=lambda: result.update(est=stefast.monte_carlo(
            v, w, v_star, w_star, executor=client, **kw)))
        run.start()
        victim = sorted(pids)[0]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not client.processing().get(victim):
            time.sleep(0.01)
        time.sleep(0.05)  # into the task
        busy = bool(client.processing().get(victim)) and run.is_alive()
        os.kill(pids[victim], signal.SIGKILL)
        run.join(120)
        assert busy and not run.is_alive()
        # the nanny restarted the worker: a new process answers
        assert pids[victim] not in client.run(os.getpid).values()
    _assert_same_mc(result["est"], local)


def test_sweep_quantity_returning_a_non_dict_names_the_point():
    with pytest.raises(stefast.TaskError, match=r"grid point x=1: TypeError: the quantity must "
                                                r"return a dict .* got float"):
        stefast.sweep(lambda point, rng, threads: 1.0, {"x": [1]})
