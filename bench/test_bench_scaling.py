"""Scaling studies and the generator bound.

* bound: raw rate of stefast's Gaussian generator (float64 ziggurat on
  xoshiro256++ lanes, one thread) beside NumPy's Generator.standard_normal; stored
  as BOUNDS["normal ns/float64"] for the Monte Carlo "of bound" column.
* loss_and_grads samples/s versus B at m x n = 32 x 64 (16 KB per sample
  in float64): from L2-resident batches to batches streamed from memory.
* loss_and_grads samples/s versus m*n (Z about 16 MB each), stefast beside
  the reference and Numba (the report plots throughput vs m*n per impl).
* threads 1 and 2: loss_and_grads and monte_carlo, plus one interleaved
  group (1 and 2 threads in turn, round by round).
* Monte Carlo cost per sample versus n for the full / projected /
  conditional methods (m = 8), and coarse_gradient_descent steps/s.
Skips cleanly when stefast.monte_carlo / coarse_gradient_descent are absent.
"""

import os

import numpy as np
import pytest

import stefast
from stefast import reference as ref
from conftest import BOUNDS
import _peers
from conftest import rounds

MAX_THREADS = min(2, os.cpu_count() or 1)
M, N = 32, 64
B_SWEEP = [16, 128, 1024, 4096]          # 256 KB ... 64 MB of float64
MN_SHAPES = [(4, 8), (8, 16), (16, 32), (32, 64), (64, 128), (128, 256)]
MN_BYTES = 16_000_000
MC_N = [8, 64, 512]
_CACHE = {}


def big_problem():
    if "big" not in _CACHE:
        rng = np.random.default_rng(2)
        Z = rng.standard_normal((B_SWEEP[-1], M, N))
        _CACHE["big"] = (Z, *(rng.standard_normal(k) for k in (M, N, M, N)))
    return _CACHE["big"]


def mn_problem(m, n):
    key = ("mn", m, n)
    if key not in _CACHE:
        for k in [k for k in _CACHE if k[0] == "mn"]:
            del _CACHE[k]
        rng = np.random.default_rng(3)
        B = MN_BYTES // (8 * m * n)
        _CACHE[key] = (rng.standard_normal((B, m, n)),
                       *(rng.standard_normal(k) for k in (m, n, m, n)))
    return _CACHE[key]


@pytest.mark.quick
@pytest.mark.parametrize("impl", ["stefast", "numpy"])
def test_normal_generator_rate(benchmark, report, impl):
    size = 1 << 22
    if impl == "stefast":
        fn = lambda: stefast.standard_normals((1, size), rng=0, threads=1)
    else:
        gen = np.random.default_rng(0)
        fn = lambda: gen.standard_normal(size)
    x = fn()
    assert abs(x.mean()) < 5e-3 and abs(x.std() - 1) < 5e-3
    benchmark.group = "bound: Gaussian generator, 1 thread"
    benchmark.pedantic(fn, rounds=rounds(7), iterations=1, warmup_rounds=1)
    if impl == "stefast" and not benchmark.disabled:
        BOUNDS["normal ns/float64"] = benchmark.stats.stats.min / size
    report(impl, work=size, unit="normals")


@pytest.mark.parametrize("B", B_SWEEP, ids=lambda b: f"B{b}")
def test_batch_size(benchmark, report, B):
    Z, v, w, vs, ws = big_problem()
    Zb = Z[:B]
    benchmark.group = f"scaling: loss_and_grads vs B ({M}x{N} float64, 1 thread)"
    # enough calls per round that small batches are not dominated by the timer
    iterations = max(1, 512 // B)
    benchmark.pedantic(stefast.loss_and_grads, args=(Zb, v, w, vs, ws),
                       kwargs=dict(reduce="sum", threads=1),
                       rounds=rounds(7), iterations=iterations, warmup_rounds=1)
    report(f"stefast B={B}", work=B, unit="samples", bound="read ns/float64",
           bound_units=Zb.size, B=B, m=M, n=N, z_bytes=Zb.nbytes, study="B")


@pytest.mark.parametrize("impl", ["stefast", "reference", "numba-njit"])
@pytest.mark.parametrize("shape", MN_SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_mn(benchmark, report, shape, impl):
    m, n = shape
    args = mn_problem(m, n)
    if impl == "stefast":
        fn = lambda: stefast.loss_and_grads(*args, reduce="sum", threads=1)
    elif impl == "reference":
        fn = lambda: ref.loss_and_grads(*args, reduce="sum")
    else:
        run = _peers.numba_loss_and_grads(parallel=False)
        fn = lambda: run(*args)
        _peers.check_loss_and_grads(
            fn(), stefast.loss_and_grads(*args, reduce="sum", threads=1), np.float64)
    benchmark.group = f"scaling: loss_and_grads vs m*n = {m * n} (float64, 1 thread)"
    benchmark.pedantic(fn, rounds=rounds(5), iterations=1, warmup_rounds=1)
    Z = args[0]
    report(impl, work=Z.shape[0], unit="samples", bound="read ns/float64",
           bound_units=Z.size, m=m, n=n, B=Z.shape[0], study="mn")


@pytest.mark.quick
@pytest.mark.parametrize("threads", sorted({1, MAX_THREADS}), ids=lambda t: f"t{t}")
def test_threads_loss_and_grads(benchmark, report, threads):
    Z, v, w, vs, ws = big_problem()
    benchmark.group = f"scaling: loss_and_grads vs threads ({M}x{N} float64, B={Z.shape[0]})"
    benchmark.pedantic(stefast.loss_and_grads, args=(Z, v, w, vs, ws),
                       kwargs=dict(reduce="sum", threads=threads),
                       rounds=rounds(7), iterations=1, warmup_rounds=1)
    report(f"stefast {threads} thread(s)", work=Z.shape[0], unit="samples",
           bound="read ns/float64", bound_units=Z.size, threads=threads,
           study="threads", kernel="loss_and_grads")


@pytest.mark.quick
def test_threads_interleaved(benchmark, interleave):
    Z, v, w, vs, ws = big_problem()
    fns = {f"stefast {t} thread(s)": (lambda t=t: stefast.loss_and_grads(
        Z, v, w, vs, ws, reduce="sum", threads=t)) for t in sorted({1, MAX_THREADS})}
    benchmark.group = "interleaved: loss_and_grads 1 vs 2 threads"
    interleave(fns, work=Z.shape[0], rounds=9, study="threads", kernel="loss_and_grads")


def _mc_problem(m, n):
    rng = np.random.default_rng(4)
    return rng.standard_normal(m), rng.standard_normal(n), rng.standard_normal(m), rng.standard_normal(n)


@pytest.mark.parametrize("threads", sorted({1, MAX_THREADS}), ids=lambda t: f"t{t}")
def test_threads_monte_carlo(benchmark, report, threads):
    mc = stefast.monte_carlo
    args = _mc_problem(M, N)
    S = 20_000
    benchmark.group = f"scaling: monte_carlo full vs threads ({M}x{N} float64)"
    benchmark.pedantic(mc, args=args, kwargs=dict(n_samples=S, rng=0, threads=threads),
                       rounds=rounds(5), iterations=1, warmup_rounds=1)
    report(f"stefast {threads} thread(s)", work=S, unit="samples", bound="normal ns/float64",
           bound_units=S * M * N, threads=threads, study="threads", kernel="monte_carlo")


def _mc_params():
    for method in ("full", "projected", "conditional"):
        for n in MC_N:
            marks = [pytest.mark.quick] if n == 64 else []
            yield pytest.param(method, n, marks=marks, id=f"{method}-n{n}")


@pytest.mark.parametrize("method,n", list(_mc_params()))
def test_mc_cost_vs_n(benchmark, report, method, n):
    mc = stefast.monte_carlo
    m = 8
    args = _mc_problem(m, n)
    S = 200_000 if method != "full" else max(5_000, 2_000_000 // n)
    est = mc(*args, n_samples=2_000, method=method, rng=1, threads=1)
    assert np.all(np.isfinite(est.grad_w))
    benchmark.group = f"scaling: monte_carlo cost per sample vs n (m={m}, n={n}, 1 thread)"
    benchmark.pedantic(mc, args=args, kwargs=dict(n_samples=S, method=method, rng=0, threads=1),
                       rounds=rounds(5), iterations=1, warmup_rounds=1)
    label = "stefast" if method == "full" else f"stefast-{method}"
    normals = {"full": m * n, "projected": 2 * m + n, "conditional": 2 * m}[method]
    report(label, work=S, unit="samples", bound="normal ns/float64", bound_units=S * normals,
           m=m, n=n, method=method, study="mc_n")


@pytest.mark.quick
@pytest.mark.parametrize("mode", ["population", "sampled"])
def test_coarse_gradient_descent(benchmark, report, mode):
    cgd = stefast.coarse_gradient_descent
    m, n, steps = 16, 32, 200
    rng = np.random.default_rng(5)
    v0, w0, vs, ws = (rng.standard_normal(k) for k in (m, n, m, n))
    kwargs = dict(ste="relu", lr=0.05, steps=steps, mode=mode, rng=0)
    if mode == "sampled":
        kwargs.update(batch_size=256)
    cgd(v0, w0, vs, ws, **kwargs)  # runs without error before timing
    benchmark.group = f"coarse_gradient_descent {m}x{n}, {steps} steps"
    benchmark.pedantic(cgd, args=(v0, w0, vs, ws), kwargs=kwargs, rounds=rounds(5), iterations=1,
                       warmup_rounds=1)
    report(f"stefast {mode}", work=steps, unit="steps", m=m, n=n, mode=mode)
