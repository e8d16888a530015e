"""Property-based fuzzing of the public functions (hypothesis).

Generated: shapes (empty, 1, odd, 2-d), dtypes (float64, float32, float16,
ints, bool), memory layouts (strided, reversed, Fortran, read-only), out=
arrays overlapping an input, values at scales 1e-300 to 1e300 with NaN and
inf, and junk arguments. Asserted:

* no crash, and only ValueError / TypeError naming the argument on bad input;
* the fast functions equal their NumPy twins (``stefast.reference``) bit for
  bit elementwise, and to rounding for the model where no overflow occurs;
* invariances that hold exactly in mathematics: w and w* scaled by powers
  of two (bitwise for the kernels, to rounding in the closed forms at any
  scale), rows of Z permuted with v and v*, a batch split and merged;
* inputs are never modified.

Profiles: ``short`` (default, every CI run, about 30 s) and ``long`` (the
release check: ``STEFAST_FUZZ=long pytest tests/test_fuzz.py``, about 100
times the examples). ``STEFAST_FUZZ=ci`` is the short profile with a fixed
seed (``derandomize``).
"""

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import stefast
import stefast.reference as ref
from util import ambiguous_samples

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                     HealthCheck.data_too_large])
settings.register_profile("short", max_examples=60, **_COMMON)
settings.register_profile("ci", max_examples=60, derandomize=True, **_COMMON)
settings.register_profile("long", max_examples=6000, **_COMMON)
settings.load_profile(os.environ.get("STEFAST_FUZZ", "short"))

SCALES = [1e-300, 1e-200, 1e-100, 1e-10, 1.0, 1e10, 1e100, 1e200, 1e300]
SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, -1.0, 5e-324, 1.7976931348623157e308]
DTYPES = [np.float64, np.float32, np.float16, np.int32, np.int64, np.bool_]


@st.composite
def values(draw, shape, finite=False, max_scale=1e300, min_scale=1e-300):
    """float64 values of a shape: normals times a scale, with special values sprinkled in."""
    size = int(np.prod(shape))
    scale = draw(st.sampled_from([s for s in SCALES if min_scale <= s <= max_scale]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(size) * scale
    if not finite and size and draw(st.booleans()):
        k = draw(st.integers(1, size))
        x[rng.integers(0, size, k)] = rng.choice(SPECIALS, k)
    return x.reshape(shape)


@st.composite
def laid_out(draw, a):
    """a's values in a drawn memory layout (never sharing a's memory)."""
    kind = draw(st.sampled_from(["c", "strided", "reversed", "fortran", "readonly"]))
    if kind == "strided" and a.ndim:
        big = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        view = big[..., ::2]
        view[...] = a
        return view
    if kind == "reversed" and a.ndim:
        r = np.ascontiguousarray(a[(slice(None, None, -1),) * a.ndim])
        return r[(slice(None, None, -1),) * a.ndim]
    if kind == "fortran" and a.ndim >= 2:
        return np.asfortranarray(a)
    b = np.array(a, copy=True)
    if kind == "readonly":
        b.setflags(write=False)
    return b


shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=9)


def as_dtype(x, dtype):
    with np.errstate(all="ignore"):
        if np.dtype(dtype).kind in "iub":
            x = np.where(np.isfinite(x), np.clip(x, -1e6, 1e6), 0.0)
        return x.astype(dtype)


def assert_same(fast, slow):
    fast, slow = np.asarray(fast), np.asarray(slow)
    assert fast.dtype == slow.dtype and fast.shape == slow.shape
    np.testing.assert_array_equal(fast, slow)


# ---- elementwise kernels -------------------------------------------------------


@given(data=st.data(), shape=shapes, dtype=st.sampled_from(DTYPES),
       ste=st.sampled_from(stefast.STES))
def test_elementwise_equal_the_reference(data, shape, dtype, ste):
    x = as_dtype(data.draw(values(shape)), dtype)
    g = as_dtype(data.draw(values(shape)), dtype)
    xl, gl = data.draw(laid_out(x)), data.draw(laid_out(g))
    x0, g0 = xl.copy(), gl.copy()
    assert_same(stefast.binarize(xl), ref.binarize(x0))
    assert_same(stefast.sign(xl), ref.sign(x0))
    assert_same(stefast.ste_grad(xl, gl, ste=ste), ref.ste_grad(x0, g0, ste=ste))
    bits = data.draw(st.integers(1, 24))
    alpha = data.draw(st.sampled_from([1e-30, 0.01, 0.5, 3.0, 1e30]))
    rounding = data.draw(st.sampled_from(["ceil", "nearest"]))
    assert_same(stefast.quantized_relu(xl, bits, alpha, rounding),
                ref.quantized_relu(x0, bits, alpha, rounding))
    qste = data.draw(st.sampled_from(["identity", "relu", "clipped_relu"]))
    fast = stefast.quantized_relu_grad(xl, gl, bits, alpha, qste, rounding=rounding)
    slow = ref.quantized_relu_grad(x0, g0, bits, alpha, qste, rounding=rounding)
    assert_same(fast.grad_x, slow.grad_x)
    assert fast.grad_alpha.dtype == slow.grad_alpha.dtype
    fa, sa = float(fast.grad_alpha), float(slow.grad_alpha)
    assert (math.isnan(fa) and math.isnan(sa)) or fa == pytest.approx(sa, rel=1e-6, abs=1e-300)
    # inputs untouched
    np.testing.assert_array_equal(xl, x0)
    np.testing.assert_array_equal(gl, g0)


@given(data=st.data(), n=st.integers(1, 40), shift=st.integers(-3, 3),
       dtype=st.sampled_from([np.float64, np.float32]))
def test_out_overlapping_an_input(data, n, shift, dtype):
    buf = as_dtype(data.draw(values((n + 6,))), dtype)
    x = buf[3:3 + n]
    out = buf[3 + shift:3 + shift + n]
    cases = [(stefast.binarize, ref.binarize, (), {}), (stefast.sign, ref.sign, (), {}),
             (stefast.quantized_relu, ref.quantized_relu, (3, 0.25), {})]
    for fast, slow, extra, kw in cases:
        saved = buf.copy()
        expected = slow(x.copy(), *extra, **kw)
        assert fast(x, *extra, out=out, **kw) is out
        np.testing.assert_array_equal(out, expected)
        buf[...] = saved
    saved = buf.copy()
    g = as_dtype(data.draw(values((n,))), dtype)
    expected = ref.ste_grad(x.copy(), g, ste="hardtanh")
    stefast.ste_grad(x, g, ste="hardtanh", out=out)
    np.testing.assert_array_equal(out, expected)
    buf[...] = saved
    expected = ref.quantized_relu_grad(g, x.copy(), 2, 0.5).grad_x
    stefast.quantized_relu_grad(g, x, 2, 0.5, out=out)
    np.testing.assert_array_equal(out, expected)


# ---- the model -------------------------------------------------------------------


@st.composite
def model(draw, max_scale=1e300, finite=False, min_scale=1e-300):
    B = draw(st.one_of(st.none(), st.integers(0, 6)))
    m, n = draw(st.integers(1, 9)), draw(st.integers(1, 40))
    shape = (m, n) if B is None else (B, m, n)
    vals = dict(finite=finite, max_scale=max_scale, min_scale=min_scale)
    Z = draw(values(shape, **vals))
    v, v_star = (draw(values((m,), **vals)) for _ in range(2))
    w, w_star = (draw(values((n,), **vals)) for _ in range(2))
    return Z, v, w, v_star, w_star


@given(data=st.data(), args=model(), ste=st.sampled_from(stefast.STES),
       reduce=st.sampled_from(["none", "sum", "mean"]))
def test_model_never_crashes(data, args, ste, reduce):
    dtype = data.draw(st.sampled_from([np.float64, np.float32]))
    args = [data.draw(laid_out(as_dtype(a, dtype))) for a in args]
    copies = [a.copy() for a in args]
    try:
        with np.errstate(all="ignore"):
            out = stefast.loss_and_grads(*args, ste=ste, reduce=reduce)
            y = stefast.forward(*args[:3])
    except ValueError as exc:
        assert "empty batch" in str(exc)
        return
    assert out.grad_w.shape[-1] == args[0].shape[-1] and np.ndim(y) == args[0].ndim - 2
    for a, c in zip(args, copies):
        np.testing.assert_array_equal(a, c)


@given(args=model(max_scale=1e40, finite=True), ste=st.sampled_from(stefast.STES),
       dtype=st.sampled_from([np.float64, np.float32]))
def test_model_equals_the_reference(args, ste, dtype):
    Z, v, w, v_star, w_star = (as_dtype(a, dtype) for a in args)
    assume(Z.size > 0)
    if dtype == np.float32:
        assume(np.all(np.isfinite([Z.sum(), v.sum(), w.sum(), v_star.sum(), w_star.sum()])))
        assume(float(np.max(np.abs(args[0]))) < 1e12 and float(np.max(np.abs(v))) < 1e8)
    keep = ~ambiguous_samples(Z, w, w_star, 1e-4 if dtype == np.float32 else 1e-10)
    Zb = Z if Z.ndim == 3 else Z[None]
    Zk = Zb[keep]
    assume(Zk.shape[0] > 0)
    fast = stefast.loss_and_grads(Zk, v, w, v_star, w_star, ste=ste, reduce="none")
    slow = ref.loss_and_grads(Zk, v, w, v_star, w_star, ste=ste, reduce="none")
    rtol = 1e-4 if dtype == np.float32 else 1e-9
    # below the normal range each rounding may be off by a whole subnormal step,
    # whatever the relative size: a sum of m + 1 terms by up to m + 1 steps
    tiny = (v.size + 1) * np.finfo(dtype).smallest_subnormal
    for f, s in zip(fast, slow):
        scale = np.max(np.abs(s), initial=0.0)
        np.testing.assert_allclose(f, s, rtol=rtol, atol=rtol * scale + tiny)
    np.testing.assert_allclose(stefast.forward(Zk, v, w), ref.forward(Zk, v, w), rtol=rtol,
                               atol=rtol * np.sum(np.abs(v)))


@given(args=model(max_scale=1e100, min_scale=1e-100, finite=True),
       ste=st.sampled_from(["identity", "relu"]),
       e=st.integers(-60, 60), e_star=st.integers(-60, 60))
def test_model_invariant_to_powers_of_two_on_w(args, ste, e, e_star):
    # sigma and the identity / relu windows see only the sign of z.w, and a
    # power of two scales z.w exactly (no product subnormal at these scales)
    Z, v, w, v_star, w_star = args
    with np.errstate(all="ignore"):
        a = stefast.loss_and_grads(Z, v, w, v_star, w_star, ste=ste, reduce="none")
        b = stefast.loss_and_grads(Z, v, np.ldexp(w, e), v_star, np.ldexp(w_star, e_star),
                                   ste=ste, reduce="none")
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@given(args=model(max_scale=1e10, finite=True), ste=st.sampled_from(stefast.STES),
       data=st.data())
def test_model_batch_split_merge_and_row_permutation(args, ste, data):
    Z, v, w, v_star, w_star = args
    Zb = Z if Z.ndim == 3 else Z[None]
    whole = stefast.loss_and_grads(Zb, v, w, v_star, w_star, ste=ste, reduce="none")
    k = data.draw(st.integers(0, Zb.shape[0]))
    parts = [stefast.loss_and_grads(Zb[s], v, w, v_star, w_star, ste=ste, reduce="none")
             for s in (slice(0, k), slice(k, None))]
    for i in range(3):
        np.testing.assert_array_equal(np.concatenate([p[i] for p in parts]), whole[i])
    total = stefast.loss_and_grads(Zb, v, w, v_star, w_star, ste=ste, reduce="sum")
    np.testing.assert_allclose(total.grad_w, whole.grad_w.sum(0), rtol=1e-12,
                               atol=1e-12 * np.abs(whole.grad_w).sum())
    # the rows of Z with v and v* permuted: the same sample, summed in another order
    perm = np.random.default_rng(data.draw(st.integers(0, 99))).permutation(Zb.shape[1])
    keep = ~ambiguous_samples(Zb, w, w_star, 1e-10)
    a = stefast.loss_and_grads(Zb[keep], v, w, v_star, w_star, ste=ste, reduce="none")
    b = stefast.loss_and_grads(Zb[keep][:, perm], v[perm], w, v_star[perm], w_star, ste=ste,
                               reduce="none")
    np.testing.assert_allclose(b.grad_v, a.grad_v[:, perm], rtol=1e-9,
                               atol=1e-9 * (np.abs(v).sum() + np.abs(v_star).sum()))
    np.testing.assert_allclose(b.grad_w, a.grad_w, rtol=1e-9,
                               atol=1e-9 * (np.abs(a.grad_w).max(initial=0) + 1e-300))


# ---- closed forms ------------------------------------------------------------------


@st.composite
def point(draw, batch=False):
    m, n = draw(st.integers(1, 6)), draw(st.integers(2, 6))
    lead = (draw(st.integers(1, 3)),) if batch else ()
    v, v_star = (draw(values(lead + (m,), finite=True, max_scale=1e10)) for _ in range(2))
    w, w_star = (draw(values(lead + (n,), finite=True, max_scale=1.0)) for _ in range(2))
    assume(np.all(np.any(w_star != 0, axis=-1)) and np.all(np.any(w != 0, axis=-1)))
    return v, w, v_star, w_star


@given(pt=point(batch=True), s=st.sampled_from(SCALES), s_star=st.sampled_from(SCALES),
       ste=st.sampled_from(["identity", "relu"]))
def test_closed_forms_invariant_to_the_scales_of_w_and_w_star(pt, s, s_star, ste):
    v, w, v_star, w_star = pt
    ws, wss = w * s, w_star * s_star
    for x in (ws, wss):  # nonzero, finite, and no digits lost to subnormals
        assume(np.all(np.any(x != 0, axis=-1)) and np.all(np.isfinite(x)))
        assume(np.all((x == 0) | (np.abs(x) >= np.finfo(np.float64).tiny)))
    close = dict(rtol=1e-11, atol=1e-11 * (1 + float(np.max(np.abs(v)) * np.max(np.abs(v_star)))
                                           + float(np.max(np.abs(v))) ** 2))
    np.testing.assert_allclose(stefast.angle(ws, wss), stefast.angle(w, w_star), rtol=1e-12,
                               atol=1e-15)
    np.testing.assert_allclose(stefast.population_loss(v, ws, v_star, wss),
                               stefast.population_loss(v, w, v_star, w_star), **close)
    a = stefast.expected_coarse_grad(v, ws, v_star, wss, ste=ste)
    b = stefast.expected_coarse_grad(v, w, v_star, w_star, ste=ste)
    np.testing.assert_allclose(a.grad_w, b.grad_w, **close)
    np.testing.assert_allclose(a.grad_v, b.grad_v, **close)
    np.testing.assert_allclose(stefast.coarse_grad_cosine(v, ws, v_star, wss, ste=ste),
                               stefast.coarse_grad_cosine(v, w, v_star, w_star, ste=ste),
                               rtol=1e-9, atol=1e-9)


@given(pt=point(), ste=st.sampled_from(stefast.STES), data=st.data())
def test_one_point_path_equals_the_batched_path(pt, ste, data):
    v, w, v_star, w_star = pt
    scale = data.draw(st.sampled_from(SCALES))
    w = w * scale
    assume(np.any(w != 0) and np.all(np.isfinite(w)))
    single = stefast.expected_coarse_grad(v, w, v_star, w_star, ste=ste)
    batch = stefast.expected_coarse_grad(v[None], w[None], v_star[None], w_star[None], ste=ste)
    atol = 1e-12 * (1 + float(np.abs(v) @ np.abs(v)) + float(np.abs(v) @ np.abs(v_star)))
    np.testing.assert_allclose(single.grad_w, batch.grad_w[0], rtol=1e-11, atol=atol)
    np.testing.assert_allclose(stefast.population_loss(v, w, v_star, w_star),
                               stefast.population_loss(v[None], w[None], v_star[None],
                                                       w_star[None])[0], rtol=1e-12, atol=atol)


@given(pt=point(), data=st.data())
def test_closed_forms_invariant_to_permutations(pt, data):
    v, w, v_star, w_star = pt
    rng = np.random.default_rng(data.draw(st.integers(0, 99)))
    pv, pw = rng.permutation(v.size), rng.permutation(w.size)
    # |df/dw| = |v'v*| / (2 pi |w|) may exceed float64 for a tiny w: inf, with
    # NumPy's overflow warning (one point or a batch alike); the order is the subject here
    with np.errstate(over="ignore"):
        a = stefast.population_grad(v, w, v_star, w_star)
        b = stefast.population_grad(v[pv], w[pw], v_star[pv], w_star[pw])
    scale = 1 + float(np.max(np.abs(v)) + np.max(np.abs(v_star))) ** 2
    np.testing.assert_allclose(b.grad_v, a.grad_v[pv], rtol=1e-10, atol=1e-12 * scale)
    np.testing.assert_allclose(b.grad_w, a.grad_w[pw], rtol=1e-10, atol=1e-12 * scale)


# ---- bad input ---------------------------------------------------------------------

JUNK = [None, "x", b"1", True, 1.5, -1, 2**64, 1j, object(), [], [[1.0], [1.0, 2.0]],
        {"a": 1}, np.array(["a"]), np.ones(3, complex), np.array([np.nan]), float("inf")]


@given(fn=st.sampled_from(["population_loss", "expected_coarse_grad", "angle",
                           "loss_and_grads", "monte_carlo", "quantized_relu", "binarize",
                           "ste_grad", "coarse_gradient_descent", "standard_normals"]),
       junk=st.sampled_from(JUNK), position=st.integers(0, 5))
def test_junk_gives_a_clear_error(fn, junk, position):
    v, w = np.array([1.0, -0.5]), np.array([1.0, 0.5, 0.0])
    calls = {
        "population_loss": (stefast.population_loss, [v, w, v, w], {}),
        "expected_coarse_grad": (stefast.expected_coarse_grad, [v, w, v, w], {"ste": "relu"}),
        "angle": (stefast.angle, [w, w], {}),
        "loss_and_grads": (stefast.loss_and_grads, [np.ones((2, 3)), v, w, v, w],
                           {"threads": 1}),
        "monte_carlo": (stefast.monte_carlo, [v, w, v, w], {"n_samples": 8, "rng": 0}),
        "quantized_relu": (stefast.quantized_relu, [w, 2, 0.5], {}),
        "binarize": (stefast.binarize, [w], {}),
        "ste_grad": (stefast.ste_grad, [w, w], {"ste": "relu"}),
        "coarse_gradient_descent": (stefast.coarse_gradient_descent, [v, w, v, w],
                                    {"lr": 0.1, "steps": 2}),
        "standard_normals": (stefast.standard_normals, [(2, 3)], {"rng": 0}),
    }
    f, args, kw = calls[fn]
    names = list(kw)
    slot = position % (len(args) + len(names))
    if slot < len(args):
        args = list(args)
        args[slot] = junk
    else:
        kw = dict(kw)
        kw[names[slot - len(args)]] = junk
    try:
        with np.errstate(all="ignore"):
            f(*args, **kw)
    except (ValueError, TypeError) as exc:
        assert str(exc), "an error must say what is wrong"
    # anything else (a crash, MemoryError, OverflowError, AttributeError ...) fails the test


@given(data=st.data(), m=st.integers(1, 4), n=st.integers(1, 4),
       method=st.sampled_from(["full", "projected", "conditional"]),
       ste=st.sampled_from(stefast.STES))
def test_monte_carlo_at_any_scale(data, m, n, method, ste):
    v, v_star = (data.draw(values((m,), finite=True)) for _ in range(2))
    w, w_star = (data.draw(values((n,), finite=True)) for _ in range(2))
    start = data.draw(st.sampled_from([0, 7, 2**62, 2**63 - 1 - 64]))
    with np.errstate(all="ignore"):
        est = stefast.monte_carlo(v, w, v_star, w_star, n_samples=64, method=method, ste=ste,
                                  rng=0, start=start, threads=data.draw(st.integers(1, 3)))
    assert est.n_samples == 64
    # the loss is r^2/2 >= 0 sample by sample, and the v-scaling keeps it in range
    assert est.loss >= 0 or math.isnan(est.loss)
    if max(np.max(np.abs(v)), np.max(np.abs(v_star))) < 1e150:
        assert np.isfinite(est.loss)
