"""Statistical and bit-level tests of stefast's Gaussian generator
(src_c/normal_impl.h: xoshiro256++ lanes seeded by Threefry2x64-20; a
ziggurat for float64, Box-Muller for float32)."""

import math

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


MASK = (1 << 64) - 1


def _rotl(x, r):
    return ((x << r) | (x >> (64 - r))) & MASK


def _xoshiro_next(st):
    """xoshiro256++ (Blackman & Vigna), one step of the state list st."""
    s0, s1, s2, s3 = st
    out = (_rotl((s0 + s3) & MASK, 23) + s0) & MASK
    t = (s1 << 17) & MASK
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    st[:] = [s0, s1, s2, s3]
    return out


def test_xoshiro_replica_known_answer():
    # from the definition: the first output of state (1, 2, 3, 4) is
    # rotl(1 + 4, 23) + 1, and the state update is a fixed linear map
    st = [1, 2, 3, 4]
    assert _xoshiro_next(st) == 5 * 2**23 + 1
    assert st == [7, 0, 262146, _rotl(6, 45)]


class _StreamReplica:
    """One stream of normal_impl.h in plain Python, for value-by-value checks."""

    def __init__(self, key, stream):
        blocks = [_core.threefry2x64_20(j, stream, int(key[0]), int(key[1])) for j in range(34)]
        self.lanes = [[*blocks[2 * l], *blocks[2 * l + 1]] for l in range(16)]
        self.side = [*blocks[32], *blocks[33]]

    def words(self):
        return [_xoshiro_next(st) for st in self.lanes]

    def side_uniform(self):
        return ((_xoshiro_next(self.side) >> 12) + 0.5) * 2.0**-52

    def ziggurat(self, u, k_tab, w_tab, f_tab, r):
        while True:
            i, negative, k = u & 255, (u >> 8) & 1, u >> 12
            x = k * w_tab[i]
            if k < k_tab[i]:
                return -x if negative else x
            if i == 0:
                while True:
                    t = -math.log(self.side_uniform()) / r
                    y = -math.log(self.side_uniform())
                    if y + y >= t * t:
                        break
                return -(r + t) if negative else r + t
            if f_tab[i] + self.side_uniform() * (f_tab[i - 1] - f_tab[i]) < math.exp(-0.5 * x * x):
                return -x if negative else x
            u = _xoshiro_next(self.side)


def _float64_replica(key, stream, count):
    from test_ziggurat_tables import HEADER, R, _parse

    if not HEADER.exists():
        pytest.skip("needs the source tree")
    tabs = _parse("stefast_zig_k_d", "int"), _parse("stefast_zig_w_d", "float"), \
        _parse("stefast_zig_f_d", "float")
    g, out = _StreamReplica(key, stream), []
    while len(out) < count:
        # fast values take no side words, so going in index order gives the
        # slow ones their side words in the C kernel's order
        out += [g.ziggurat(u, *tabs, R) for u in g.words() + g.words()]
    return np.array(out[:count])


def _float32_replica(key, stream, count):
    """Box-Muller from the same words with NumPy's log/cos/sin, in float64."""
    g, out = _StreamReplica(key, stream), []
    while len(out) < count:
        w0, w1 = (np.array(g.words(), dtype=np.uint64) for _ in range(2))
        vals = []
        for w in (w0, w1):
            u = (np.float32((w >> np.uint64(33)).astype(np.int32)) * np.float32(2.0**-31)
                 + np.float32(2.0**-32)).astype(np.float64)
            angle = 2 * np.pi * (w & np.uint64(0xFFFFFFFF)).astype(np.float64) * 2.0**-32
            radius = np.sqrt(-2 * np.log(u))
            vals += [radius * np.cos(angle), radius * np.sin(angle)]
        out += list(np.concatenate(vals))
    return np.array(out[:count])


def test_float64_values_match_a_python_replica():
    # every value, fast path and slow path (wedge and tail) alike
    key = mc_key(7)
    ours = stefast.standard_normals((3, 2000), rng=7, stream=5)
    for i in range(3):
        np.testing.assert_array_equal(ours[i], _float64_replica(key, 5 + i, 2000))


def test_float32_layout_and_polynomial_accuracy():
    key = mc_key(8)
    ours = stefast.standard_normals((2, 640), rng=8, stream=3, dtype=np.float32)
    for i in range(2):
        ref = _float32_replica(key, 3 + i, 640)
        np.testing.assert_allclose(ours[i], ref, rtol=2e-6, atol=2e-6)


def test_float64_tail_beyond_the_base_layer():
    # the values |z| > R come only from the slow path's tail algorithm
    from test_ziggurat_tables import R

    x = stefast.standard_normals((1 << 12, 1 << 11), rng=21).ravel()  # 2^23 draws
    tail = np.abs(x[np.abs(x) > R])
    p = 2 * stats.norm.sf(R)
    assert abs(tail.size - p * x.size) < 5 * np.sqrt(p * x.size)
    # their conditional law is the normal's tail beyond R
    cdf = lambda t: 1 - stats.norm.sf(t) / stats.norm.sf(R)
    assert stats.kstest(tail, cdf).pvalue > 1e-3


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
    # pairs from the same lane word of float32 Box-Muller (cos, sin) are
    # independent: E[x^2 y^2] = 1
    x32 = stefast.standard_normals((256, L), rng=13, dtype=np.float32).astype(np.float64)
    pairs = x32.reshape(-1, 4, 16)
    for a, b in ((0, 1), (2, 3), (0, 2)):
        prod = pairs[:, a] ** 2 * pairs[:, b] ** 2
        assert abs(np.mean(prod) - 1) < 5 * np.sqrt(8 / prod.size)


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
