"""Monte Carlo engine: samples/s of stefast.monte_carlo (full / projected /
conditional) beside a NumPy reference Monte Carlo (standard_normal + the
reference loss_and_grads) and PyTorch CPU (randn + an autograd.Function
STE), in the same groups; and the time each needs to reach a standard error
of 1e-3 on every component of E[g_relu].

Every peer's estimate is checked once against stefast's (within 5 combined
standard errors) before it is timed. Ratios go to ``extra_info``; nothing
is asserted about time.

Run: pytest bench/test_bench_montecarlo.py   (--benchmark-disable: smoke run)
"""

import numpy as np
import pytest

import stefast
from stefast import reference as ref
from _peers import torch_binarize_ste

SHAPES = [(8, 16), (32, 64), (32, 256), (128, 512)]
DTYPES = [np.float64, np.float32]
THREADS = [1, 2]
# peers first: their rates are known when the stefast entries of a group run
IMPLS = ["reference", "torch-randn", "stefast", "stefast-projected", "stefast-conditional"]
_PROBLEMS = {}
_CHECKED = set()
_PEER_RATE = {}  # (impl, m, n, dtype, threads) -> best samples/s of a peer
_TTA = {}  # (impl, dtype, threads) -> seconds to se 1e-3


def problem(m, n):
    if (m, n) not in _PROBLEMS:
        r = np.random.default_rng(0)
        v, v_star = r.standard_normal(m), r.standard_normal(m)
        w, w_star = r.standard_normal(n), r.standard_normal(n)
        _PROBLEMS[(m, n)] = (v, w, v_star, w_star)
    return _PROBLEMS[(m, n)]


def n_samples(impl, m, n):
    """Samples per timed call: about 0.1-0.5 s on this machine."""
    if impl in ("reference", "torch-randn"):
        return max(100, 4_000_000 // (m * n))
    if impl == "stefast":
        return max(1000, 100_000_000 // (m * n))
    return 1_000_000


def torch_mc(dtype, threads):
    """A PyTorch Monte Carlo doing stefast's work: randn batches, sigma with a
    relu straight-through backward (autograd.Function), sums in float64."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(threads)
    tdt = torch.float64 if dtype == np.float64 else torch.float32

    BinarizeSTE = torch_binarize_ste()

    def run(v, w, v_star, w_star, N, seed=0):
        gen = torch.Generator().manual_seed(seed)
        m, n = v.size, w.size
        vt = torch.tensor(v, dtype=tdt, requires_grad=True)
        wt = torch.tensor(w, dtype=tdt, requires_grad=True)
        vst, wst = torch.tensor(v_star, dtype=tdt), torch.tensor(w_star, dtype=tdt)
        batch = max(1, (1 << 21) // (m * n))
        loss_sum, done = 0.0, 0
        gv = np.zeros(m)
        gw = np.zeros(n)
        while done < N:
            B = min(batch, N - done)
            Z = torch.randn((B, m, n), generator=gen, dtype=tdt)
            with torch.no_grad():
                y_star = (Z @ wst > 0).to(tdt) @ vst
            r = BinarizeSTE.apply(Z @ wt) @ vt - y_star
            loss = 0.5 * (r * r).sum()
            vt.grad = wt.grad = None
            loss.backward()
            loss_sum += float(loss)
            gv += vt.grad.double().numpy()
            gw += wt.grad.double().numpy()
            done += B
        return loss_sum / N, gv / N, gw / N

    return run


def _stefast_method(impl):
    return {"stefast": "full", "stefast-projected": "projected",
            "stefast-conditional": "conditional"}[impl]


def _check_peer(impl, m, n, dtype, fn_check):
    """Once per (impl, shape, dtype): the peer's means within 5 combined se of stefast's."""
    key = (impl, m, n, np.dtype(dtype).name)
    if key in _CHECKED:
        return
    v, w, v_star, w_star = problem(m, n)
    N = max(200, 200_000 // (m * n))
    fast = stefast.monte_carlo(v, w, v_star, w_star, n_samples=20 * N, rng=99, dtype=dtype)
    loss, gv, gw = fn_check(N)
    scale = np.sqrt(1 + 20)  # peer has N samples, stefast 20 N: se_peer ~ sqrt(20) se_fast
    for got, want, se in ((loss, fast.loss, fast.loss_se), (gv, fast.grad_v, fast.grad_v_se),
                          (gw, fast.grad_w, fast.grad_w_se)):
        tol = 5 * scale * np.asarray(se) + (1e-3 if dtype == np.float32 else 1e-9)
        assert np.all(np.abs(np.asarray(got) - want) <= tol), f"{impl} disagrees with stefast"
    _CHECKED.add(key)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"{t}thr")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_monte_carlo_rate(benchmark, report, impl, shape, dtype, threads):
    m, n = shape
    v, w, v_star, w_star = problem(m, n)
    N = n_samples(impl, m, n)
    if impl.startswith("stefast"):
        method = _stefast_method(impl)
        fn = lambda: stefast.monte_carlo(v, w, v_star, w_star, n_samples=N, method=method,
                                         rng=1, dtype=dtype, threads=threads)
        rounds = 5
    elif impl == "reference":
        fn = lambda: ref.monte_carlo(v, w, v_star, w_star, n_samples=N, rng=1, dtype=dtype)
        _check_peer(impl, m, n, dtype, lambda k: (lambda e: (e.loss, e.grad_v, e.grad_w))(
            ref.monte_carlo(v, w, v_star, w_star, n_samples=k, rng=7, dtype=dtype)))
        rounds = 3
    else:
        run = torch_mc(dtype, threads)
        fn = lambda: run(v, w, v_star, w_star, N)
        _check_peer(impl, m, n, dtype, lambda k: run(v, w, v_star, w_star, k, seed=7))
        rounds = 3
    benchmark.group = f"monte_carlo {m}x{n} {np.dtype(dtype).name} {threads} thread(s)"
    benchmark.pedantic(fn, rounds=rounds, iterations=1, warmup_rounds=1)
    report(impl, work=N, unit="samples", m=m, n=n, threads=threads,
           dtype=np.dtype(dtype).name)
    if not benchmark.disabled:
        rate = N / benchmark.stats.stats.min  # best round: the machine is shared
        benchmark.extra_info["samples_per_s_best"] = rate
        key = (m, n, np.dtype(dtype).name, threads)
        _PEER_RATE[(impl,) + key] = rate
        for peer, name in (("reference", "ratio_vs_numpy"), ("torch-randn", "ratio_vs_torch")):
            if impl != peer and (peer,) + key in _PEER_RATE:
                benchmark.extra_info[name] = rate / _PEER_RATE[(peer,) + key]


# ---- time to a standard error of 1e-3 on every component of E[g_relu] ----

TTA_SHAPE = (32, 256)
TARGET_SE = 1e-3


def _pilot(impl, dtype, threads):
    """(callable running a pilot of N samples and returning max grad_w se, N)."""
    m, n = TTA_SHAPE
    v, w, v_star, w_star = problem(m, n)
    if impl.startswith("stefast"):
        method = _stefast_method(impl)
        N = {"full": 20_000, "projected": 400_000, "conditional": 1_000_000}[method]
        return (lambda: float(np.max(stefast.monte_carlo(
            v, w, v_star, w_star, n_samples=N, method=method, rng=3, dtype=dtype,
            threads=threads).grad_w_se))), N
    N = 1000
    return (lambda: float(np.max(ref.monte_carlo(
        v, w, v_star, w_star, n_samples=N, rng=3, dtype=dtype).grad_w_se))), N


@pytest.mark.parametrize("impl", ["reference", "stefast", "stefast-projected",
                                  "stefast-conditional"])
@pytest.mark.parametrize("threads", THREADS, ids=lambda t: f"{t}thr")
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_time_to_accuracy(benchmark, report, impl, dtype, threads):
    """Seconds to reach se <= 1e-3 on every component of E[g_relu] at
    (32, 256): N_needed = N_pilot (max se / 1e-3)^2 samples at the pilot's
    best measured rate."""
    fn, N = _pilot(impl, dtype, threads)
    se = fn()
    benchmark.group = (f"time to se 1e-3 (E[g_relu], {TTA_SHAPE[0]}x{TTA_SHAPE[1]}) "
                       f"{np.dtype(dtype).name} {threads} thread(s)")
    benchmark.pedantic(fn, rounds=3, iterations=1, warmup_rounds=0)
    needed = N * (se / TARGET_SE) ** 2
    report(impl, work=N, unit="samples", threads=threads, dtype=np.dtype(dtype).name)
    benchmark.extra_info.update(pilot_samples=N, pilot_max_se=se, samples_needed=needed)
    if not benchmark.disabled:
        rate = N / benchmark.stats.stats.min
        benchmark.extra_info["seconds_to_se_1e-3"] = needed / rate
        _TTA[(impl, np.dtype(dtype).name, threads)] = needed / rate
        ref_t = _TTA.get(("reference", np.dtype(dtype).name, threads))
        if ref_t is not None and impl != "reference":
            benchmark.extra_info["speedup_vs_numpy"] = ref_t / (needed / rate)

