"""Elementwise kernels: binarize, sign and ste_grad (relu window), stefast
beside the NumPy reference, PyTorch CPU (1 thread) and Numba @njit (single
thread, as stefast's elementwise kernels are), grouped by (op, size, dtype).

Inputs are cached and seeded, with about 1/8 exact zeros and a few NaNs
so the edge cases are on the timed path. Every peer is checked once
against stefast before it is timed. The bound is the one-pass read of the
inputs (test_bench_core.py::test_read_bandwidth; run it in the same session
for the "of bound" column); writing the output costs extra.

    pytest bench/test_bench_elementwise.py            # timed
    pytest bench/test_bench_elementwise.py --benchmark-disable   # smoke
"""

import numpy as np
import pytest

import stefast
from stefast import reference as ref
import _peers
from conftest import elementwise_params, rounds

SIZES = [1 << 14, 1 << 21]  # 128 KB (in cache) and 16 MB (streams from memory) in float64
DTYPES = [np.float64, np.float32]
OPS = ["binarize", "sign", "ste_grad"]
IMPLS = ["stefast", "reference", "torch", "numba"]
_INPUTS = {}


def inputs(size, dtype):
    key = (size, np.dtype(dtype).name)
    if key not in _INPUTS:
        rng = np.random.default_rng(size)
        x = rng.standard_normal(size).astype(dtype)
        x[rng.random(size) < 0.125] = 0
        x[::997] = np.nan
        g = rng.standard_normal(size).astype(dtype)
        _INPUTS.clear()
        _INPUTS[key] = (x, g)
    return _INPUTS[key]


def make(impl, op, x, g):
    """A zero-argument callable doing op on the cached inputs."""
    if impl == "stefast":
        out = np.empty_like(x)
        f = getattr(stefast, op)
        return (lambda: f(x, g, out=out)) if op == "ste_grad" else (lambda: f(x, out=out))
    if impl == "reference":
        f = getattr(ref, op)
        return (lambda: f(x, g)) if op == "ste_grad" else (lambda: f(x))
    if impl == "torch":
        f = _peers.torch_elementwise()[op]
        return (lambda: f(x, g)) if op == "ste_grad" else (lambda: f(x))
    if impl == "numba":
        f = _peers.numba_elementwise()[op]
        out = np.empty_like(x)
        return (lambda: f(x, g, out)) if op == "ste_grad" else (lambda: f(x, out))
    raise AssertionError(impl)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("op,size,dtype",
                         list(elementwise_params(OPS, SIZES, DTYPES, np.float64)))
def test_elementwise(benchmark, report, op, size, dtype, impl):
    x, g = inputs(size, dtype)
    fn = make(impl, op, x, g)
    if impl != "stefast":
        expected = make("stefast", op, x, g)().copy()
        np.testing.assert_array_equal(np.asarray(fn()), expected)
    name = np.dtype(dtype).name
    benchmark.group = f"{op} {size} {name}"
    benchmark.pedantic(fn, rounds=rounds(15), iterations=1, warmup_rounds=2)
    n_in = 2 if op == "ste_grad" else 1
    report(impl, work=size, unit="elements", bound=f"read ns/{name}",
           bound_units=n_in * size, op=op, size=size, dtype=name)


@pytest.mark.quick
@pytest.mark.parametrize("op", OPS)
def test_elementwise_interleaved(benchmark, interleave, op):
    """The same group timed round by round (stefast, reference, torch, numba
    in turn), medians and quartiles in extra_info["interleaved"]."""
    size, dtype = SIZES[-1], np.float64
    x, g = inputs(size, dtype)
    fns = {}
    for impl in IMPLS:
        try:
            fns[impl] = make(impl, op, x, g)
        except pytest.skip.Exception:
            continue
    benchmark.group = f"interleaved: {op} {size} float64"
    interleave(fns, work=size, rounds=9, unit="elements", op=op, size=size, dtype="float64")
