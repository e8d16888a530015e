"""loss_and_grads peers not in test_bench_core.py: Numba @njit single
threaded and parallel=True (prange over one batch chunk per thread, same
thread count as stefast), and torch.compile of the explicit STE formulas.
stefast and the NumPy reference sit in the same groups.

Every peer's result is checked once against stefast before it is timed.
A missing package or a failing torch.compile is a skip. torch.compile
compiles for about a minute on a busy 2-core machine, so it runs on one
shape only and never in --quick.

    pytest bench/test_bench_peers.py
"""

import os

import numpy as np
import pytest

import stefast
from stefast import reference as ref
import _peers
from conftest import rounds

Z_BYTES = 16_000_000
SHAPES = [(8, 16), (32, 64)]
THREADS = min(2, os.cpu_count() or 1)
_PROBLEMS = {}


def problem(m, n, dtype):
    key = (m, n, np.dtype(dtype).name)
    if key not in _PROBLEMS:
        rng = np.random.default_rng(1)
        B = -(-Z_BYTES // (m * n * np.dtype(dtype).itemsize))
        Z = rng.standard_normal((B, m, n)).astype(dtype)
        vecs = [rng.standard_normal(k).astype(dtype) for k in (m, n, m, n)]
        _PROBLEMS.clear()
        _PROBLEMS[key] = (Z, *vecs)
    return _PROBLEMS[key]


def _fast(args, threads):
    return stefast.loss_and_grads(*args, reduce="sum", threads=threads)


def _params():
    for shape in SHAPES:
        for dtype in (np.float64, np.float32):
            for threads in (1, THREADS):
                for impl in ("stefast", "reference", "numba"):
                    if threads > 1 and impl == "reference":
                        continue
                    quick = shape == (32, 64) and dtype == np.float64
                    yield pytest.param(impl, shape, dtype, threads,
                                       marks=[pytest.mark.quick] if quick else [],
                                       id=f"{impl}-{shape[0]}x{shape[1]}-{np.dtype(dtype).name}-t{threads}")
        if THREADS == 1:
            break
    yield pytest.param("torch-compile", (32, 64), np.float32, 1, id="torch-compile-32x64-float32-t1")


@pytest.mark.parametrize("impl,shape,dtype,threads", list(_params()))
def test_loss_and_grads_peers(benchmark, report, impl, shape, dtype, threads):
    m, n = shape
    args = problem(m, n, dtype)
    if impl == "stefast":
        fn = lambda: _fast(args, threads)
    elif impl == "reference":
        fn = lambda: ref.loss_and_grads(*args, reduce="sum")
    elif impl == "numba":
        numba = _peers.numba_or_skip()
        run = _peers.numba_loss_and_grads(parallel=threads > 1)
        if threads > 1:
            numba.set_num_threads(threads)
        fn = lambda: run(*args)
        _peers.check_loss_and_grads(fn(), _fast(args, threads), dtype)
    else:
        run = _peers.torch_compiled_loss_and_grads()
        fn = lambda: run(*args)
        try:
            result = fn()
        except Exception as exc:  # inductor needs a working C++ toolchain
            _peers.torch_compile_failed(exc)
        _peers.check_loss_and_grads(result, _fast(args, threads), dtype)
    name = np.dtype(dtype).name
    impl_label = impl if impl in ("stefast", "reference", "torch-compile") else (
        "numba-parallel" if threads > 1 else "numba-njit")
    benchmark.group = f"peers: loss_and_grads {m}x{n} {name} {threads} thread(s)"
    benchmark.pedantic(fn, rounds=rounds(5), iterations=1, warmup_rounds=1)
    Z = args[0]
    report(impl_label, work=Z.shape[0], unit="samples", bound=f"read ns/{name}",
           bound_units=Z.size, m=m, n=n, B=Z.shape[0], threads=threads, dtype=name)
