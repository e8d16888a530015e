"""The installed extension gives stored bits, whatever compiled it.

SHA-256 digests of the Python API's kernel outputs on fixed inputs, stored
here: CI runs this suite on a GCC build and on a clang build, and any other
machine (another CPU, dispatch clone or OS) checks itself against the same
digests. Only results computed wholly in C are hashed (Monte Carlo's
"projected" and "conditional" methods go through NumPy's linear algebra for
their basis; tests/test_c_api.py covers them in C). docs/portability.md
lists what is bitwise identical where.
"""

import hashlib

import numpy as np
import pytest

import stefast

# Rows of 3 values (tails only), of a whole number of cache lines (aligned
# loads), and 100 values (both).
SHAPES = [(7, 4, 3), (5, 8, 64), (3, 12, 100)]
STES = ["identity", "relu", "clipped_relu", "hardtanh"]
DTYPES = [np.float64, np.float32]

EXPECTED = {
    "loss_and_grads": "a9dce888a9ab6cf918b0ef62bb810f102af550944846fb91cd59624516fc196e",
    "forward": "74633cd590386f5a32dfbcaee7acf0eb32adb265de00e43af3840a1d83633597",
    "standard_normals": "35f2ba26d287691885442457d19a224a9f9fae76feafbe4552f59b2000eeae65",
    "monte_carlo": "5bad6c0bc6f17ddfc4e6f55b331418935f221b9594056e996eec70b1585bedd3",
}


def exact_values(rng, shape, dtype):
    """Values k / 2^10, |k| < 2^12, from integer draws: exact in either
    dtype and the same on every platform (unlike NumPy's float draws)."""
    return (rng.integers(-(2**12), 2**12, size=shape) / 2**10).astype(dtype)


def digest(arrays):
    h = hashlib.sha256()
    for a in arrays:
        a = np.asarray(a)
        h.update(a.dtype.str.encode())
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def model_inputs(shape, dtype, seed):
    B, m, n = shape
    rng = np.random.default_rng(seed)
    return (exact_values(rng, (B, m, n), dtype), exact_values(rng, m, dtype),
            exact_values(rng, n, dtype), exact_values(rng, m, dtype),
            exact_values(rng, n, dtype))


def outputs_loss_and_grads(threads):
    out = []
    for seed, shape in enumerate(SHAPES):
        for dtype in DTYPES:
            Z, v, w, vs, ws = model_inputs(shape, dtype, seed)
            for ste in STES:
                out += stefast.loss_and_grads(Z, v, w, vs, ws, ste=ste, reduce="none",
                                              threads=threads)
                out += stefast.loss_and_grads(Z, v, w, vs, ws, ste=ste, reduce="sum",
                                              threads=threads)
    return out


def outputs_forward(threads):
    del threads  # forward takes every core
    out = []
    for seed, shape in enumerate(SHAPES):
        for dtype in DTYPES:
            Z, v, w, _, _ = model_inputs(shape, dtype, seed)
            out.append(stefast.forward(Z, v, w))
    return out


def outputs_standard_normals(threads):
    # 3 streams of 1000: float64 ziggurat slow paths and partial chunks
    return [stefast.standard_normals((3, 1000), rng=2024, stream=5, dtype=dtype,
                                     threads=threads) for dtype in DTYPES]


def outputs_monte_carlo(threads):
    out = []
    for dtype in DTYPES:
        _, v, w, vs, ws = model_inputs((1, 5, 37), dtype, 99)
        for ste in STES:
            est = stefast.monte_carlo(v, w, vs, ws, ste=ste, n_samples=300, method="full",
                                      rng=7, dtype=dtype, threads=threads)
            out += [est.loss, est.grad_v, est.grad_w, est.m2]
    return out


OUTPUTS = {
    "loss_and_grads": outputs_loss_and_grads,
    "forward": outputs_forward,
    "standard_normals": outputs_standard_normals,
    "monte_carlo": outputs_monte_carlo,
}


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("name", list(OUTPUTS))
def test_stored_bits(name, threads):
    assert digest(OUTPUTS[name](threads)) == EXPECTED[name], (
        f"{name} gives other bits than the stored ones on this build "
        "(see docs/portability.md)")
