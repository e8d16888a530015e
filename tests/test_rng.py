"""Statistical and bit-level tests of stefast's Gaussian generator
(Threefry2x64-20 + vectorised Box-Muller, src_c/normal_impl.h)."""

import numpy as np
import pytest
from scipy import stats

import stefast
from stefast import _core
from stefast.montecarlo import mc_key

N = 1 << 20  # >= 10^6 draws per statistical test


# Random123's known-answer vectors (tests/kat_vectors): counter, key -> output
KAT = [
    ((0, 0), (0, 0), (0xc2b6e3a8c2c69865, 0x6f81ed42f350084d)),
    ((2**64 - 1, 2**64 - 1), (2**64 - 1, 2**64 - 1), (0xe02cb7c4d95d277a, 0xd06633d0893b8b68)),
    ((0x243f6a8885a308d3, 0x13198a2e03707344), (0xa4093822299f31d0, 0x082efa98ec4e6c89),
     (0x263c7d30bb0f0af1, 0x56be8361d3311526)),
]


@pytest.mark.parametrize("ctr, key, expected", KAT)
def test_threefry_known_answers(ctr, key, expected):
    assert _core.threefry2x64_20(*ctr, *key) == expected


def _box_muller_reference(key, stream, count):
    """float64 normals of one stream recomputed from the raw Threefry words
    with NumPy's log/cos/sin (the layout documented in normal_impl.h)."""
    chunks = -(-count // 32)
    out = np.empty(chunks * 32)
    for c in range(chunks):
        words = np.array([_core.threefry2x64_20(16 * c + l, stream, int(key[0]), int(key[1]))
                          for l in range(16)], dtype=np.uint64)
        k1 = (words[:, 0] >> np.uint64(12)).astype(np.float64)
        k2 = (words[:, 1] >> np.uint64(12)).astype(np.float64)
        u1 = 1.0 - k1 * 2.0**-52
        t = k2 * 2.0**-52
        r = np.sqrt(-2.0 * np.log(u1))
        out[32 * c:32 * c + 16] = r * np.cos(2 * np.pi * t)
        out[32 * c + 16:32 * c + 32] = r * np.sin(2 * np.pi * t)
    return out[:count]


def test_float64_layout_and_polynomial_accuracy():
    # our polynomial log / sin / cos / sqrt against libm, value by value
    key = mc_key(7)
    ours = stefast.standard_normals((3, 100), rng=7, stream=5)
    for i in range(3):
        ref = _box_muller_reference(key, 5 + i, 100)
        np.testing.assert_allclose(ours[i], ref, rtol=1e-13, atol=1e-14)


def test_deterministic_and_thread_invariant():
    a = stefast.standard_normals((64, 1000), rng=3, threads=1)
    b = stefast.standard_normals((64, 1000), rng=3, threads=2)
    assert np.array_equal(a, b)
    # a stream's prefix does not depend on the requested length
    c = stefast.standard_normals((64, 37), rng=3, threads=2)
    assert np.array_equal(a[:, :37], c)
    # stream offset: row i of stream=s is stream s + i
    d = stefast.standard_normals((10, 1000), rng=3, stream=20)
    assert np.array_equal(a[20:30], d)
    assert not np.array_equal(a, stefast.standard_normals((64, 1000), rng=4))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_moments(dtype):
    x = stefast.standard_normals((N // 4096, 4096), rng=11, dtype=dtype).astype(np.float64).ravel()
    assert x.dtype == np.float64 and x.size == N
    # standard errors of the sample moments of N(0,1): mean 1/sqrt(N),
    # var sqrt(2/N), skewness sqrt(6/N), excess kurtosis sqrt(24/N)
    assert abs(x.mean()) < 5 / np.sqrt(N)
    assert abs(x.var() - 1) < 5 * np.sqrt(2 / N)
    assert abs(stats.skew(x)) < 5 * np.sqrt(6 / N)
    assert abs(stats.kurtosis(x)) < 5 * np.sqrt(24 / N)
    # tails: P(|z| > 3) and P(|z| > 4)
    for c in (3.0, 4.0):
        p = 2 * stats.norm.sf(c)
        assert abs(np.mean(np.abs(x) > c) - p) < 5 * np.sqrt(p * (1 - p) / N)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_kolmogorov_smirnov(dtype):
    x = stefast.standard_normals((N // 1024, 1024), rng=12, dtype=dtype).ravel()
    assert stats.kstest(x.astype(np.float64), "norm").pvalue > 1e-3
    # also the uniformity of Phi(x) in 1000 bins (chi-square)
    counts = np.bincount(np.minimum((stats.norm.cdf(x.astype(np.float64)) * 1000).astype(int), 999),
                         minlength=1000)
    assert stats.chisquare(counts).pvalue > 1e-3


def test_independence_across_streams_and_keys():
    L = 4096
    x = stefast.standard_normals((256, L), rng=13)  # 256 adjacent streams
    y = stefast.standard_normals((256, L), rng=14)  # same streams, another key
    z = x - x.mean(axis=1, keepdims=True)
    corr = (z @ z.T) / L  # ~ N(0, 1/L) off the diagonal
    off = corr[~np.eye(256, dtype=bool)]
    assert np.max(np.abs(off)) < 5.5 / np.sqrt(L)
    assert abs(np.mean(off)) < 5 / np.sqrt(L * off.size / 2)
    cross = np.sum(x * y, axis=1) / L
    assert np.max(np.abs(cross)) < 5.5 / np.sqrt(L)
    # within a stream: lag-1 and lag-16 / lag-32 (lanes and chunk halves)
    flat = x.ravel()
    for lag in (1, 16, 32):
        r = np.mean(flat[:-lag] * flat[lag:])
        assert abs(r) < 5 / np.sqrt(flat.size)
    # pairs (cos, sin) of one Box-Muller draw are independent: E[x^2 y^2] = 1
    pairs = x.reshape(-1, 2, 16)
    assert abs(np.mean(pairs[:, 0] ** 2 * pairs[:, 1] ** 2) - 1) < 5 * np.sqrt(8 / pairs[:, 0].size)


def test_float32_and_float64_are_both_normal_but_differ():
    a = stefast.standard_normals((4, 64), rng=5, dtype=np.float32)
    b = stefast.standard_normals((4, 64), rng=5, dtype=np.float64)
    assert a.dtype == np.float32 and b.dtype == np.float64
    assert not np.allclose(a, b)


def test_bad_arguments():
    with pytest.raises(TypeError, match="rng"):
        stefast.standard_normals(3, rng="seed")
    with pytest.raises(ValueError, match="dtype"):
        stefast.standard_normals(3, dtype=np.int32)
    with pytest.raises(ValueError, match="stream"):
        stefast.standard_normals(3, stream=-1)
