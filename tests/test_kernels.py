"""Fast kernels against their NumPy reference twins, on random and edge-case
inputs in every memory layout and both dtypes; inputs are never modified."""

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import stefast
from stefast import reference as ref
from util import (ambiguous_samples, elementwise_inputs, layouts, misaligned, model_problem,
                  registry_surrogates)

DTYPES = [np.float32, np.float64]
# float32 samples are computed in float32 by both sides, in different
# summation orders: agreement to a few hundred float32 ulps of the scale.
RTOL = {np.float32: 2e-5, np.float64: 1e-12}
# the named windows and registry surrogates of every C kind
ALL_STES = [*stefast.STES, *registry_surrogates()]


def assert_same(fast, slow, dtype):
    fast, slow = np.asarray(fast), np.asarray(slow)
    assert fast.dtype == slow.dtype == np.dtype(dtype)
    assert fast.shape == slow.shape
    scale = max(1.0, float(np.nanmax(np.abs(slow), initial=0.0, where=np.isfinite(slow))))
    np.testing.assert_allclose(fast, slow, rtol=RTOL[dtype], atol=RTOL[dtype] * scale,
                               equal_nan=True)


def call_unmodified(fn, *args, **kwargs):
    """Call fn and check that no array argument changed."""
    before = [np.array(a, copy=True) for a in args]
    out = fn(*args, **kwargs)
    for a, b in zip(args, before):
        np.testing.assert_array_equal(a, b)
    return out


# ---- elementwise -----------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["binarize", "sign"])
def test_unary_matches_reference(name, dtype):
    fast, slow = getattr(stefast, name), getattr(ref, name)
    for x in elementwise_inputs(np.random.default_rng(1)):
        for layout, xl in layouts(x.astype(dtype)):
            got = call_unmodified(fast, xl)
            # elementwise kernels are exact: bitwise equality, NaN where NaN
            np.testing.assert_array_equal(got, slow(xl), err_msg=layout)
            assert got.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ste", ALL_STES, ids=str)
def test_ste_grad_matches_reference(ste, dtype):
    rng = np.random.default_rng(2)
    for x in elementwise_inputs(rng):
        x = x.astype(dtype)
        grad = rng.standard_normal(x.shape).astype(dtype)
        if grad.size:
            grad.flat[0] = np.inf
        for layout, xl in layouts(x):
            got = call_unmodified(stefast.ste_grad, xl, grad, ste=ste)
            slow = ref.ste_grad(xl, grad, ste=ste)
            if isinstance(ste, str) or ste.kind in ("window", "piecewise"):
                np.testing.assert_array_equal(got, slow, err_msg=layout)  # exact arithmetic
            else:  # exp: stefast's own in C, NumPy's in the twin; blocked values exactly 0
                np.testing.assert_allclose(got, slow, rtol=4 * np.finfo(dtype).eps, atol=0,
                                           equal_nan=True, err_msg=layout)
                assert_array_equal(got == 0, slow == 0)


def test_conventions_documented_in_docstrings():
    x = np.array([-1.0, -0.0, 0.0, 1.0, np.nan, np.inf])
    np.testing.assert_array_equal(stefast.binarize(x), [0, 0, 0, 1, 0, 1])
    np.testing.assert_array_equal(stefast.sign(x), [-1, 1, 1, 1, np.nan, 1])
    g = np.full(6, 7.0)
    edges = np.array([-1.0, 0.0, 1.0, 0.5, 1.5, np.nan])
    np.testing.assert_array_equal(stefast.ste_grad(edges, g, ste="relu"), [0, 0, 7, 7, 7, 0])
    np.testing.assert_array_equal(stefast.ste_grad(edges, g, ste="clipped_relu"), [0, 0, 0, 7, 0, 0])
    np.testing.assert_array_equal(stefast.ste_grad(edges, g, ste="hardtanh"), [7, 7, 7, 7, 0, 0])
    np.testing.assert_array_equal(stefast.ste_grad(edges, g, ste="identity"), g)
    # a blocked inf/NaN gradient is exactly 0
    np.testing.assert_array_equal(stefast.ste_grad([-1.0, -1.0], [np.inf, np.nan]), [0, 0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_is_filled_and_returned(dtype):
    x = np.linspace(-2, 2, 12).astype(dtype).reshape(3, 4)
    for fn, args in [(stefast.binarize, (x,)), (stefast.sign, (x,)),
                     (stefast.ste_grad, (x, np.ones_like(x)))]:
        out = np.full(x.shape, 5, dtype=dtype)
        got = fn(*args, out=out)
        assert got is out
        np.testing.assert_array_equal(out, fn(*args))
        # non-contiguous out
        big = np.zeros((3, 8), dtype=dtype)
        view = big[:, ::2]
        got = fn(*args, out=view)
        assert got is view and np.shares_memory(got, big)
        np.testing.assert_array_equal(view, fn(*args))
        np.testing.assert_array_equal(big[:, 1::2], 0)


def test_dtype_rules():
    assert stefast.binarize(np.arange(3, dtype=np.int32)).dtype == np.float64
    assert stefast.binarize(np.array([True, False])).dtype == np.float64
    assert stefast.sign(np.ones(2, np.float32)).dtype == np.float32
    assert stefast.ste_grad(np.ones(2, np.float32), np.ones(2, np.float64)).dtype == np.float64
    swapped = np.array([1.5, -2.0, 0.0], dtype=">f8")  # non-native byte order
    np.testing.assert_array_equal(stefast.binarize(swapped), [1, 0, 0])
    np.testing.assert_array_equal(stefast.sign(swapped.astype(">f4")), [1, -1, 1])
    assert stefast.sign(swapped.astype(">f4")).dtype == np.float32
    assert stefast.binarize(3.0).shape == ()
    assert stefast.binarize([[1, -1]]).shape == (1, 2)


@settings(max_examples=60, deadline=None)
@given(hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=6),
                  elements=st.floats(allow_nan=True, allow_infinity=True)),
       st.sampled_from(stefast.STES))
def test_elementwise_property(x, ste):
    np.testing.assert_array_equal(stefast.binarize(x), ref.binarize(x))
    np.testing.assert_array_equal(stefast.sign(x), ref.sign(x))
    np.testing.assert_array_equal(stefast.ste_grad(x, x[::-1] if x.ndim else x, ste=ste),
                                  ref.ste_grad(x, x[::-1] if x.ndim else x, ste=ste))
    # sign is +-1 or NaN, never 0
    s = stefast.sign(x)
    assert np.all((s == 1) | (s == -1) | np.isnan(x))


# ---- the two-layer model ---------------------------------------------------

SHAPES = [(None, 1, 1), (1, 1, 1), (1, 3, 5), (7, 1, 9), (9, 6, 1), (40, 5, 7),
          (300, 8, 16), (64, 17, 33), (3, 32, 64), (2000, 3, 4)]


def compare_model(fast, slow, Z, w, w_star, dtype, per_sample):
    keep = ~ambiguous_samples(Z, w, w_star, rel=1e-5 if dtype == np.float32 else 1e-12)
    for f, s in zip(fast, slow):
        if per_sample and np.ndim(f) >= 1 and Z.ndim == 3:
            f, s = np.asarray(f)[keep], np.asarray(s)[keep]
        assert_same(f, s, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_loss_and_grads_matches_reference(shape, dtype):
    rng = np.random.default_rng(sum(s or 0 for s in shape))
    Z, v, w, v_star, w_star = model_problem(rng, *shape, dtype=dtype)
    for ste in ALL_STES:
        for reduce in ("none", "sum", "mean"):
            fast = call_unmodified(stefast.loss_and_grads, Z, v, w, v_star, w_star,
                                   ste=ste, reduce=reduce)
            slow = ref.loss_and_grads(Z, v, w, v_star, w_star, ste=ste, reduce=reduce)
            if reduce != "none" and dtype == np.float32 and Z.ndim == 3:
                # a sigma flipped by rounding changes a float32 batch sum legitimately:
                # compare the sums over the samples where no row is near an edge
                keep = ~ambiguous_samples(Z, w, w_star, 1e-5)
                assert keep.sum() >= Z.shape[0] // 2, "too few unambiguous samples to compare"
                Zk = Z[keep]
                fast = stefast.loss_and_grads(Zk, v, w, v_star, w_star, ste=ste, reduce=reduce)
                slow = ref.loss_and_grads(Zk, v, w, v_star, w_star, ste=ste, reduce=reduce)
            compare_model(fast, slow, Z, w, w_star, dtype, per_sample=reduce == "none")
    y = call_unmodified(stefast.forward, Z, v, w)
    assert_same(y, ref.forward(Z, v, w), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_model_layouts(dtype):
    rng = np.random.default_rng(5)
    Z, v, w, v_star, w_star = model_problem(rng, 50, 6, 10, dtype=dtype)
    expected = ref.loss_and_grads(Z, v, w, v_star, w_star, ste="clipped_relu", reduce="none")
    for layout, Zl in layouts(Z):
        for vlayout, vl in layouts(v):
            got = call_unmodified(stefast.loss_and_grads, Zl, vl, w, v_star, w_star,
                                  ste="clipped_relu", reduce="none")
            compare_model(got, expected, Z, w, w_star, dtype, per_sample=True)
        assert_same(stefast.forward(Zl, v, w), ref.forward(Z, v, w), dtype)


def test_nan_and_inf_inputs_follow_the_reference():
    rng = np.random.default_rng(6)
    Z, v, w, v_star, w_star = model_problem(rng, 20, 4, 5)
    Z[3, 1, 2] = np.nan
    Z[7, 0, 0] = np.inf
    Z[9, 2, 1] = -np.inf
    v_nan = v.copy()
    v_nan[0] = np.nan
    for ste in stefast.STES:
        for vv in (v, v_nan):
            fast = stefast.loss_and_grads(Z, vv, w, v_star, w_star, ste=ste, reduce="none")
            slow = ref.loss_and_grads(Z, vv, w, v_star, w_star, ste=ste, reduce="none")
            for f, s in zip(fast, slow):
                np.testing.assert_allclose(f, s, rtol=1e-12, atol=1e-12, equal_nan=True)
    # a NaN row is inactive: sigma(NaN) = 0
    Z1 = np.full((1, 2), np.nan)
    assert stefast.forward(Z1, [5.0], [1.0, 1.0]) == 0.0


def test_mixed_dtypes_promote_like_numpy():
    rng = np.random.default_rng(7)
    Z, v, w, v_star, w_star = model_problem(rng, 10, 3, 4, dtype=np.float32)
    out = stefast.loss_and_grads(Z, v.astype(np.float64), w, v_star, w_star)
    assert out.grad_w.dtype == np.float64
    out = stefast.loss_and_grads(Z, v, w, v_star, w_star)
    assert out.loss.dtype == out.grad_v.dtype == out.grad_w.dtype == np.float32
    ints = stefast.loss_and_grads(np.ones((2, 3), dtype=int), [1, 2], [1, 1, 1], [1, 1], [1, 1, 1])
    assert ints.loss.dtype == np.float64


def test_swapped_byte_order_and_subclasses_give_the_same_bits():
    """Inputs the common path does not take (checked by identity of NumPy's
    native float descriptors and exact type) go through the general one."""
    rng = np.random.default_rng(17)

    class Sub(np.ndarray):
        pass

    for dtype in (np.float64, np.float32):
        args = model_problem(rng, 9, 5, 8, dtype=dtype)
        expected = stefast.loss_and_grads(*args, reduce="none")
        swapped = [a.astype(a.dtype.newbyteorder()) for a in args]
        for inputs in (swapped, [a.view(Sub) for a in args], [swapped[0], *args[1:]]):
            out = stefast.loss_and_grads(*inputs, reduce="none")
            for got, want in zip(out, expected):
                assert got.dtype == dtype
                np.testing.assert_array_equal(got, want)


def test_single_sample_and_reduce_shapes():
    rng = np.random.default_rng(8)
    Z, v, w, v_star, w_star = model_problem(rng, None, 4, 6)
    for reduce in ("mean", "sum", "none"):
        out = stefast.loss_and_grads(Z, v, w, v_star, w_star, reduce=reduce)
        assert np.shape(out.loss) == () and out.grad_v.shape == (4,) and out.grad_w.shape == (6,)
    Zb = np.stack([Z] * 3)
    out = stefast.loss_and_grads(Zb, v, w, v_star, w_star, reduce="none")
    assert out.loss.shape == (3,) and out.grad_v.shape == (3, 4) and out.grad_w.shape == (3, 6)
    assert isinstance(out, stefast.LossAndGrads)
    assert np.ndim(stefast.forward(Z, v, w)) == 0


def test_empty_batch():
    Z = np.empty((0, 3, 4))
    v, w = np.ones(3), np.ones(4)
    out = stefast.loss_and_grads(Z, v, w, v, w, reduce="none")
    assert out.loss.shape == (0,) and out.grad_v.shape == (0, 3) and out.grad_w.shape == (0, 4)
    out = stefast.loss_and_grads(Z, v, w, v, w, reduce="sum")
    assert out.loss == 0 and not out.grad_v.any() and not out.grad_w.any()
    assert stefast.forward(Z, v, w).shape == (0,)
    with pytest.raises(ValueError, match="empty batch"):
        stefast.loss_and_grads(Z, v, w, v, w, reduce="mean")


@pytest.mark.parametrize("dtype", DTYPES)
def test_thread_count_does_not_change_any_bit(dtype):
    rng = np.random.default_rng(9)
    Z, v, w, v_star, w_star = model_problem(rng, 20000, 5, 12, dtype=dtype)
    for reduce, ste in (("mean", "relu"), ("sum", "relu"), ("none", "relu"),
                        ("mean", ALL_STES[4]), ("none", ALL_STES[1])):
        results = [stefast.loss_and_grads(Z, v, w, v_star, w_star, ste=ste, reduce=reduce,
                                          threads=t)
                   for t in (1, 2, 3, 8)]
        for other in results[1:]:
            for a, b in zip(results[0], other):
                assert np.array_equal(a, b)  # bitwise, not approximately


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(32, 64), (40, 256)], ids=str)
def test_prefetch_distance_does_not_change_any_bit(shape, dtype):
    """A Z of more than 8 MiB is prefetched farther ahead than a smaller one
    (model_impl.h); the samples of a larger Z and of a smaller slice of it
    must come out the same to the bit (two-pass and one-pass shapes)."""
    rng = np.random.default_rng(10)
    m, n = shape
    B = (9 << 20) // (m * n * np.dtype(dtype).itemsize) + 1
    Z, v, w, v_star, w_star = model_problem(rng, B, m, n, dtype=dtype)
    assert Z.nbytes > 8 << 20 and Z[:16].nbytes < 8 << 20
    whole = stefast.loss_and_grads(Z, v, w, v_star, w_star, reduce="none")
    part = stefast.loss_and_grads(Z[:16], v, w, v_star, w_star, reduce="none")
    for a, b in zip(whole, part):
        assert np.array_equal(a[:16], b)
    assert np.array_equal(stefast.forward(Z, v, w)[:16], stefast.forward(Z[:16], v, w))


def placed(a, offset):
    """A copy of a that starts offset bytes past a 64-byte boundary."""
    buf = np.empty(a.nbytes + 128, dtype=np.uint8)
    start = -buf.ctypes.data % 64 + offset
    out = buf[start:start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(4, 16), (3, 64), (2, 40), (5, 17)])
def test_placement_of_z_does_not_change_any_bit(shape, dtype):
    # 300 samples: the threads' chunks and both ends of Z (see LINE_SHAPES)
    rng = np.random.default_rng(10)
    Z, v, w, v_star, w_star = model_problem(rng, 300, *shape, dtype=dtype)
    for ste in stefast.STES:
        for reduce in ("sum", "none"):
            results = [stefast.loss_and_grads(placed(Z, offset), v, w, v_star, w_star,
                                              ste=ste, reduce=reduce)
                       for offset in (0, 8, 16, 32)]
            assert placed(Z, 0).ctypes.data % 64 == 0
            for other in results[1:]:
                for a, b in zip(results[0], other):
                    assert np.array_equal(a, b)


# Rows a whole number of cache lines long (3 or more) are read with aligned
# loads and their lanes rotated (sample_impl.h), but rows of up to 4 lines
# off a line, such as (3, 64) float32 and (3, 24), (4, 32) float64, are
# read where they lie; rows of up to 9 lines with w in registers; longer
# rows of samples of 32 KiB and more compute Z^T a in the same pass; other
# rows, and Z not aligned to its values, with unaligned loads. Here
# (3, 64), (2, 40), (3, 24), (4, 32) float64 and (3, 64), (10, 128),
# (130, 128) float32 take the short-row path, (10, 128), (5, 256), (3, 88)
# float64 and (5, 256) float32 the general aligned one, (130, 128),
# (66, 200), (40, 256) float64 and (40, 256) float32 the one-pass one, the
# rest unaligned loads only. (3, 88) and (66, 200) float64 have an odd
# number of lines per row, so off a line the last pair of lines is masked.
LINE_SHAPES = [(3, 64), (2, 40), (3, 24), (4, 32), (5, 17), (10, 128), (5, 256), (3, 88),
               (130, 128), (66, 200), (40, 256)]


def every_placement(Z):
    """Z at every offset within a cache line that keeps it aligned to its
    values, and at one that does not."""
    item = Z.dtype.itemsize
    for offset in [*range(0, 64, item), item // 2]:
        yield offset, placed(Z, offset)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", LINE_SHAPES, ids=str)
def test_every_placement_gives_the_same_bits_and_the_reference(shape, dtype):
    rng = np.random.default_rng(12)
    Z, v, w, v_star, w_star = model_problem(rng, 6, *shape, dtype=dtype)
    for ste in ALL_STES:
        slow = ref.loss_and_grads(Z, v, w, v_star, w_star, ste=ste, reduce="none")
        first = None
        for offset, Zp in every_placement(Z):
            fast = stefast.loss_and_grads(Zp, v, w, v_star, w_star, ste=ste, reduce="none")
            if first is None:
                compare_model(fast, slow, Z, w, w_star, dtype, per_sample=True)
                first = fast
            for a, b in zip(first, fast):
                assert np.array_equal(a, b), f"offset {offset}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", LINE_SHAPES, ids=str)
def test_every_read_path_rounds_the_same(shape, dtype):
    """Rows whose z.w is small values beside pairs +b, -b of four sizes whose
    ulps exceed the small values:
    what the rounded sum keeps of the small values depends on which values
    share a lane and in what order lanes are added, so the sign of z.w
    (and with it sigma and the window) moves with any change to the lanes
    of one read path. All placements must still agree to the bit."""
    rng = np.random.default_rng(14)
    Z, v, _, v_star, w_star = model_problem(rng, 6, *shape, dtype=dtype)
    w = np.ones(shape[1], dtype=dtype)
    sizes = 2.0 ** np.array([54, 58, 62, 66] if dtype == np.float64 else [25, 28, 31, 34])
    pairs = min(len(sizes), shape[1] // 2)
    for b in range(Z.shape[0]):
        for i in range(Z.shape[1]):
            at = rng.choice(shape[1], size=2 * pairs, replace=False)
            Z[b, i, at[:pairs]] = sizes[:pairs]
            Z[b, i, at[pairs:]] = -sizes[:pairs]
    first = None
    for offset, Zp in every_placement(Z):
        got = stefast.loss_and_grads(Zp, v, w, v_star, w_star, reduce="none")
        first = got if first is None else first
        for a, b in zip(first, got):
            assert np.array_equal(a, b), f"offset {offset}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", LINE_SHAPES, ids=str)
def test_non_finite_values_stay_in_their_row(shape, dtype):
    """The first and last values of a row share cache lines with the rows
    around it, whose values are masked off: inf and NaN there must change
    only their own sample, exactly as in the reference."""
    rng = np.random.default_rng(13)
    Z, v, w, v_star, w_star = model_problem(rng, 6, *shape, dtype=dtype)
    # samples 0, 2 and 5 stay finite, each beside non-finite values of its
    # neighbours: a missing mask on a first or a last line shows there, as
    # z.w = NaN where it is > 0 (rows equal to w)
    Z[0, -1] = Z[2, 0] = Z[2, -1] = Z[5, 0] = w
    Z[1, 0, 0] = np.inf
    Z[1, -1, -1] = np.nan  # sample 1's last value, next to sample 2's first
    Z[3, 0, 0] = np.inf  # sample 3's first value, next to sample 2's last
    Z[4, 0, 1] = -np.inf
    Z[4, -1, -2] = np.nan
    for ste in stefast.STES:
        slow = ref.loss_and_grads(Z, v, w, v_star, w_star, ste=ste, reduce="none")
        for offset, Zp in every_placement(Z):
            fast = stefast.loss_and_grads(Zp, v, w, v_star, w_star, ste=ste, reduce="none")
            for f, s in zip(fast, slow):
                finite = np.isfinite(s)
                np.testing.assert_array_equal(np.isfinite(f), finite, err_msg=f"offset {offset}")
                np.testing.assert_array_equal(np.isnan(f), np.isnan(s), err_msg=f"offset {offset}")
            compare_model(fast, slow, Z, w, w_star, dtype, per_sample=True)


def test_grad_v_is_the_gradient_of_the_mean_loss():
    """Central finite differences in v: the loss is quadratic in v."""
    rng = np.random.default_rng(10)
    Z, v, w, v_star, w_star = model_problem(rng, 500, 5, 7)
    grad_v = stefast.loss_and_grads(Z, v, w, v_star, w_star).grad_v
    h = 1e-6
    for i in range(5):
        e = np.zeros(5)
        e[i] = h
        up = stefast.loss_and_grads(Z, v + e, w, v_star, w_star).loss
        down = stefast.loss_and_grads(Z, v - e, w, v_star, w_star).loss
        assert abs((up - down) / (2 * h) - grad_v[i]) < 1e-7 * max(1, abs(grad_v[i]))


def test_student_equal_to_teacher_has_zero_loss_and_gradient():
    rng = np.random.default_rng(11)
    Z, v, w, _, _ = model_problem(rng, 100, 4, 6)
    out = stefast.loss_and_grads(Z, v, w, v, 3.0 * w, reduce="sum")  # scale-invariant in w*
    assert out.loss == 0 and not out.grad_v.any() and not out.grad_w.any()


def test_coarse_gradient_by_hand():
    Z = np.array([[1.0, 2.0], [-1.0, 0.5], [0.5, 0.5]])
    v, w = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0])
    v_star, w_star = np.array([1.0, 1.0, 1.0]), np.array([0.0, 1.0])
    # Zw = [1, -1, 0.5] -> sigma = [1, 0, 1], y = 4; Zw* = [2, .5, .5] -> y* = 3
    out = stefast.loss_and_grads(Z, v, w, v_star, w_star, ste="relu")
    assert out.loss == 0.5
    np.testing.assert_array_equal(out.grad_v, [1, 0, 1])
    # g = Z^T (1[Zw>0] v) r = 1*[1,2] + 3*[.5,.5]
    np.testing.assert_array_equal(out.grad_w, [2.5, 3.5])
    # clipped_relu: window (0,1) keeps only row 3 (0.5)
    out = stefast.loss_and_grads(Z, v, w, v_star, w_star, ste="clipped_relu")
    np.testing.assert_array_equal(out.grad_w, [1.5, 1.5])
    assert float(stefast.forward(Z, v, w)) == 4.0


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 12), st.integers(1, 9), st.integers(1, 40),
       st.sampled_from(stefast.STES), st.sampled_from(DTYPES))
def test_model_property(seed, B, m, n, ste, dtype):
    rng = np.random.default_rng(seed)
    Z, v, w, v_star, w_star = model_problem(rng, B, m, n, dtype=dtype)
    fast = stefast.loss_and_grads(Z, v, w, v_star, w_star, ste=ste, reduce="none")
    slow = ref.loss_and_grads(Z, v, w, v_star, w_star, ste=ste, reduce="none")
    compare_model(fast, slow, Z, w, w_star, dtype, per_sample=True)


@pytest.mark.parametrize("shift", [1, -1])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_out_overlapping_the_input_at_an_offset(shift, dtype):
    # as with NumPy's ufuncs, the result is as if the input were read in full first
    buf = np.array([2.0, -5.0] * 20, dtype=dtype)
    x, out = (buf[:-1], buf[1:]) if shift == 1 else (buf[1:], buf[:-1])
    cases = [
        (stefast.binarize, ref.binarize, (x,), {}),
        (stefast.sign, ref.sign, (x,), {}),
        (stefast.ste_grad, ref.ste_grad, (x, x), {"ste": "hardtanh"}),
        (stefast.quantized_relu, ref.quantized_relu, (x, 2, 0.5), {}),
    ]
    for fast, slow, args, kw in cases:
        buf[:] = np.array([2.0, -5.0] * 20, dtype=dtype)
        expected = slow(*[a.copy() if isinstance(a, np.ndarray) else a for a in args], **kw)
        got = fast(*args, out=out, **kw)
        assert got is out
        assert_array_equal(out, expected, err_msg=fast.__name__)


def test_out_may_be_the_input_itself():
    x = np.array([-1.0, 0.0, 2.0])
    assert stefast.binarize(x, out=x) is x
    assert_array_equal(x, [0.0, 0.0, 1.0])


# ---- the whole-call path for arguments already fit for C -------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("B", [None, 0, 1, 7])
def test_whole_call_path_equals_general_path(dtype, B):
    """loss_and_grads / forward on C-contiguous arrays of one dtype (one
    Cython call) give the bits of the general path, reached here by passing
    the same values as strided views."""
    rng = np.random.default_rng(B or 0)
    arrays = model_problem(rng, B, 3, 9, dtype)
    strided = [np.repeat(a, 2, axis=-1)[..., ::2] for a in arrays]
    assert all(not s.flags.c_contiguous for s in strided if s.size)
    for ste in stefast.STES:
        for reduce in ("mean", "sum"):
            if reduce == "mean" and B == 0:
                continue
            fast = stefast.loss_and_grads(*arrays, ste=ste, reduce=reduce)
            general = stefast.loss_and_grads(*strided, ste=ste, reduce=reduce)
            for f, g in zip(fast, general):
                assert type(f) is type(g) and f.dtype == g.dtype and f.shape == g.shape
                np.testing.assert_array_equal(f, g)
    fast, general = stefast.forward(*arrays[:3]), stefast.forward(*strided[:3])
    assert type(fast) is type(general) and fast.dtype == general.dtype
    np.testing.assert_array_equal(fast, general)


def test_whole_call_path_leaves_everything_else_to_the_general_path():
    from stefast import _core

    rng = np.random.default_rng(3)
    Z, v, w, vs, ws = model_problem(rng, 4, 3, 5)
    assert _core.loss_and_grads_reduced(Z, v, w, vs, ws, 1, True, 1) is not None
    not_ready = [
        (Z.astype(np.float32), v, w, vs, ws),          # mixed dtypes
        (np.asfortranarray(Z), v, w, vs, ws),          # not C-contiguous
        (Z, v[:2], w, vs, ws),                         # v too short
        (Z, v, w, vs, ws[:, None]),                    # 2-d w_star
        (Z[:, :0], v[:0], w, vs[:0], ws),              # m = 0
        (Z.astype(">f8"), v, w, vs, ws),               # byte-swapped
        (Z.tolist(), v, w, vs, ws),                    # not an ndarray
    ]
    not_ready.append((misaligned(Z), v, w, vs, ws))
    for args in not_ready:
        assert _core.loss_and_grads_reduced(*args, 1, True, 1) is None
        if args[4] is ws:  # a defect forward sees too
            assert _core.forward_common(*args[:3], 1) is None
    assert _core.loss_and_grads_reduced(Z[:0], v, w, vs, ws, 1, True, 1) is None  # empty mean
    with pytest.raises(ValueError, match="v has length 2"):
        stefast.loss_and_grads(Z, v[:2], w, vs, ws)
