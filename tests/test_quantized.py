"""Quantized ReLU kernels, their NumPy twins, the alpha-gradient and optimal_alpha."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import integrate

import stefast
from stefast import quantized as qz
from stefast import reference as ref
from util import elementwise_inputs, layouts

DTYPES = (np.float32, np.float64)
ROUNDINGS = ("ceil", "nearest")
QSTES = ("identity", "relu", "clipped_relu")


def _inputs(dtype, bits, alpha, rng, n=257):
    """Random values plus every level boundary and its neighbours, +-inf and 0."""
    L = 2 ** bits - 1
    t = np.dtype(dtype).type
    k = np.arange(-1, L + 2, dtype=dtype)
    edges = np.concatenate([k * t(alpha), (k + t(0.5)) * t(alpha)])
    near = np.concatenate([np.nextafter(edges, t(np.inf)), np.nextafter(edges, t(-np.inf))])
    rand = (rng.standard_normal(n) * (L * alpha)).astype(dtype)
    return np.concatenate([rand, edges, near, np.array([0.0, -0.0, np.inf, -np.inf], dtype)])


# ---- forward -------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("bits", range(1, 9))
def test_forward_matches_reference(dtype, rounding, bits):
    rng = np.random.default_rng(bits)
    for alpha in (0.25, qz.optimal_alpha(bits, rounding), 0.3):
        x = _inputs(dtype, bits, alpha, rng)
        fast = stefast.quantized_relu(x, bits, alpha, rounding)
        slow = ref.quantized_relu(x, bits, alpha, rounding)
        assert fast.dtype == np.dtype(dtype) and slow.dtype == np.dtype(dtype)
        assert_array_equal(fast, slow)
        L = 2 ** bits - 1
        k = fast / np.dtype(dtype).type(alpha)
        assert_allclose(k, np.round(k), rtol=4 * np.finfo(dtype).eps)  # on the levels
        assert np.round(k).min() >= 0 and np.round(k).max() <= L
        assert not np.any(np.signbit(fast))  # never -0


@pytest.mark.parametrize("bits", [1, 2, 3, 5])
def test_forward_definition_at_exact_boundaries(bits):
    """alpha = 0.25 makes every boundary exact: check the formulas themselves."""
    a, L = 0.25, 2 ** bits - 1
    k = np.arange(0, L + 1)
    # ceil: x = k alpha maps to k alpha; just above it to (k+1) alpha, clipped at L
    assert_array_equal(stefast.quantized_relu(k * a, bits, a), k * a)
    above = np.nextafter(k * a, np.inf)
    assert_array_equal(stefast.quantized_relu(above, bits, a), np.minimum(k + 1, L) * a)
    # nearest: (k + 1/2) alpha goes up (ties up), just below it goes down
    mid = (k + 0.5) * a
    assert_array_equal(stefast.quantized_relu(mid, bits, a, "nearest"), np.minimum(k + 1, L) * a)
    assert_array_equal(stefast.quantized_relu(np.nextafter(mid, -np.inf), bits, a, "nearest"),
                       k * a)
    # the paper's form: 0 for x <= 0, ceil(x/a) a up to (L-1) a, L a above
    x = np.linspace(-1, (L + 2) * a, 1001)
    expect = np.where(x <= 0, 0, np.where(x <= (L - 1) * a, np.ceil(x / a) * a, L * a))
    assert_array_equal(stefast.quantized_relu(x, bits, a), expect)


@pytest.mark.parametrize("dtype", DTYPES)
def test_one_bit_ceil_is_scaled_binary_activation(dtype):
    x = _inputs(dtype, 1, 0.7, np.random.default_rng(0))
    alpha = 0.7
    expect = np.dtype(dtype).type(alpha) * stefast.binarize(x)
    assert_array_equal(stefast.quantized_relu(x, 1, alpha), expect)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_nan_inf_behaviour(dtype, rounding):
    x = np.array([np.nan, np.inf, -np.inf, 1e30, -1e30], dtype=dtype)
    for f in (stefast.quantized_relu, ref.quantized_relu):
        y = f(x, 3, 0.5, rounding)
        assert np.isnan(y[0])
        assert_array_equal(y[1:], np.array([3.5, 0, 3.5, 0], dtype=dtype))


@pytest.mark.parametrize("f", [stefast.quantized_relu, ref.quantized_relu])
def test_forward_layouts_and_dtypes(f):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((6, 7))
    cases = [base, base.T, base[::2, ::3], base.astype(np.float32).T, base[:0], base[:1, :1],
             np.float64(0.3), np.arange(5), [0.1, 0.6], base.astype(np.float16)]
    ro = base.copy()
    ro.flags.writeable = False
    cases.append(ro)
    for x in cases:
        xa = np.asarray(x)
        before = xa.copy()
        y = f(x, 2, 0.5)
        assert_array_equal(xa, before)  # input never modified
        assert y.shape == xa.shape
        dt = np.dtype(np.float32 if xa.dtype == np.float32 else np.float64)
        assert y.dtype == dt
        # the definition written out independently of both implementations
        t = dt.type
        assert_array_equal(y, np.clip(np.ceil(xa.astype(dt) / t(0.5)), 0, 3) * t(0.5))


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_argument(dtype):
    x = np.linspace(-1, 3, 24, dtype=dtype).reshape(4, 6)
    expect = stefast.quantized_relu(x, 2, 0.5)
    out = np.empty_like(x)
    assert stefast.quantized_relu(x, 2, 0.5, out=out) is out
    assert_array_equal(out, expect)
    out_f = np.empty((6, 4), dtype=dtype).T  # non-contiguous out
    assert stefast.quantized_relu(x, 2, 0.5, out=out_f) is out_f
    assert_array_equal(out_f, expect)
    y = x.copy()
    stefast.quantized_relu(y, 2, 0.5, out=y)  # in place
    assert_array_equal(y, expect)
    for bad in (np.empty((4, 6), np.float16), np.empty((6, 4), dtype)):
        with pytest.raises((TypeError, ValueError), match="out"):
            stefast.quantized_relu(x, 2, 0.5, out=bad)


@pytest.mark.parametrize("f", [stefast.quantized_relu, ref.quantized_relu])
def test_forward_rejects_bad_arguments(f):
    for alpha in (0.0, -0.5, np.inf, np.nan):
        with pytest.raises(ValueError, match="alpha"):
            f([1.0], 2, alpha)
    with pytest.raises(ValueError, match="alpha"):  # underflows to 0 in float32
        f(np.ones(2, np.float32), 2, 1e-50)
    for bits in (0, -1, 25):
        with pytest.raises(ValueError, match="bits"):
            f([1.0], bits, 0.5)
    with pytest.raises(TypeError, match="bits"):
        f([1.0], 2.0, 0.5)
    with pytest.raises(ValueError, match="rounding"):
        f([1.0], 2, 0.5, "floor")
    with pytest.raises(TypeError, match="x"):
        f(np.array([1 + 1j]), 2, 0.5)


# ---- backward ------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("ste", QSTES)
@pytest.mark.parametrize("alpha_grad", ["exact", "lsq"])
def test_grad_matches_reference(dtype, rounding, ste, alpha_grad):
    rng = np.random.default_rng(7)
    for bits in (1, 2, 4, 8):
        alpha = qz.optimal_alpha(bits, rounding)
        x = _inputs(dtype, bits, alpha, rng)
        x = x[np.isfinite(x)]
        g = rng.standard_normal(x.shape).astype(dtype)
        kw = dict(rounding=rounding, alpha_grad=alpha_grad)
        fast = stefast.quantized_relu_grad(x, g, bits, alpha, ste, **kw)
        slow = ref.quantized_relu_grad(x, g, bits, alpha, ste, **kw)
        assert fast.grad_x.dtype == np.dtype(dtype) and type(fast.grad_alpha) is np.dtype(dtype).type
        assert_array_equal(fast.grad_x, slow.grad_x)
        # same terms, summed in double in a different order
        scale = np.sum(np.abs(g.astype(np.float64))) * 2 ** bits
        assert abs(float(fast.grad_alpha) - float(slow.grad_alpha)) <= 1e-6 * scale


@pytest.mark.parametrize("f", [stefast.quantized_relu_grad, ref.quantized_relu_grad])
def test_grad_windows(f):
    bits, a = 2, 0.5  # L alpha = 1.5
    x = np.array([-np.inf, -1.0, 0.0, 1e-300, 0.7, 1.5, np.nextafter(1.5, 0), 2.0, np.inf, np.nan])
    g = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0])
    assert_array_equal(f(x, g, bits, a, "identity").grad_x, g)
    assert_array_equal(f(x, g, bits, a, "relu").grad_x, [0, 0, 0, 4, 5, 6, 7, 8, 9, 0])
    assert_array_equal(f(x, g, bits, a, "clipped_relu").grad_x, [0, 0, 0, 4, 5, 0, 7, 0, 0, 0])
    # blocked gradients are exactly 0 even for inf/NaN upstream values
    gx = f(np.array([-1.0, 2.0]), np.array([np.nan, np.inf]), bits, a, "clipped_relu").grad_x
    assert_array_equal(gx, [0.0, 0.0])
    # a NaN input makes the alpha-gradient NaN; zero-level terms give exactly 0
    assert np.isnan(f(x, g, bits, a).grad_alpha)
    assert f(np.array([-1.0]), np.array([np.inf]), bits, a).grad_alpha == 0.0


def test_grad_alpha_values_by_hand():
    x = np.array([-1.0, 0.2, 0.5, 0.6, 1.2, 5.0])  # ceil levels 0,1,1,2,3,3 (alpha 0.5)
    g = np.ones_like(x)
    r = stefast.quantized_relu_grad(x, g, 2, 0.5)
    assert r.grad_alpha == 0 + 1 + 1 + 2 + 3 + 3
    r = stefast.quantized_relu_grad(x, g, 2, 0.5, alpha_grad="lsq")
    u = x / 0.5
    assert_allclose(r.grad_alpha, 0 + (1 - u[1]) + (1 - u[2]) + (2 - u[3]) + (3 - u[4]) + 3)


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("bits", [1, 2, 4])
def test_grad_alpha_against_finite_differences(rounding, bits):
    """For the smooth loss l(q) = sum c_i q_i + q_i^2 / 2 the exact alpha-gradient
    equals the derivative of l(q(x; alpha)) in alpha (no x on a boundary)."""
    rng = np.random.default_rng(bits)
    alpha = qz.optimal_alpha(bits, rounding)
    x = rng.standard_normal(500) * 1.5
    c = rng.standard_normal(500)

    def loss(a):
        q = stefast.quantized_relu(x, bits, a, rounding)
        return np.sum(c * q + 0.5 * q * q)

    q = stefast.quantized_relu(x, bits, alpha, rounding)
    r = stefast.quantized_relu_grad(x, c + q, bits, alpha, rounding=rounding)
    h = 1e-7  # far smaller than the distance of any x to a level boundary
    u = x / alpha
    frac = np.abs(u - np.round(u * 2) / 2)
    assert frac.min() * alpha > 10 * h * (2 ** bits)
    fd = (loss(alpha + h) - loss(alpha - h)) / (2 * h)
    assert_allclose(r.grad_alpha, fd, rtol=1e-6)


def test_grad_rejects_bad_arguments():
    for f in (stefast.quantized_relu_grad, ref.quantized_relu_grad):
        with pytest.raises(ValueError, match="grad"):
            f(np.ones(3), np.ones(4), 2, 0.5)
        with pytest.raises(ValueError, match="ste"):
            f(np.ones(3), np.ones(3), 2, 0.5, "hardtanh")
        with pytest.raises(ValueError, match="alpha_grad"):
            f(np.ones(3), np.ones(3), 2, 0.5, alpha_grad="pact")
        with pytest.raises(ValueError, match="alpha"):
            f(np.ones(3), np.ones(3), 2, 0.0)


def test_grad_layouts_out_and_no_modification():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((5, 8))
    g = rng.standard_normal((8, 5)).T  # transposed grad
    x_ro = x.copy()
    x_ro.flags.writeable = False
    for xx, gg in [(x, g), (x_ro, g), (x[:, ::2], g[:, ::2]), (x[:0], g[:0]), (x[:1, :1], g[:1, :1]),
                   (x.astype(np.float32), g.astype(np.float32))]:
        xb, gb = xx.copy(), gg.copy()
        fast = stefast.quantized_relu_grad(xx, gg, 3, 0.4)
        slow = ref.quantized_relu_grad(xx, gg, 3, 0.4)
        assert_array_equal(xx, xb)
        assert_array_equal(gg, gb)
        assert_array_equal(fast.grad_x, slow.grad_x)
        assert_allclose(fast.grad_alpha, slow.grad_alpha, rtol=1e-6, atol=1e-12)
    out = np.empty_like(x)
    r = stefast.quantized_relu_grad(x, g, 3, 0.4, out=out)
    assert r.grad_x is out
    gc = g.copy()  # out aliasing grad
    r2 = stefast.quantized_relu_grad(x, gc, 3, 0.4, out=gc)
    assert_array_equal(r2.grad_x, out)
    assert r2.grad_alpha == r.grad_alpha


@pytest.mark.parametrize("dtype", DTYPES)
def test_shared_edge_cases_match_reference(dtype):
    rng = np.random.default_rng(11)
    for base in elementwise_inputs(rng):
        base = base.astype(dtype)
        for name, x in layouts(base):
            g = x[::-1].copy() if x.ndim == 1 else np.ones_like(x)
            before = x.copy()
            for rounding in ROUNDINGS:
                assert_array_equal(stefast.quantized_relu(x, 3, 0.25, rounding),
                                   ref.quantized_relu(x, 3, 0.25, rounding), err_msg=name)
                for ste in QSTES:
                    fast = stefast.quantized_relu_grad(x, g, 3, 0.25, ste, rounding=rounding)
                    slow = ref.quantized_relu_grad(x, g, 3, 0.25, ste, rounding=rounding)
                    assert_array_equal(fast.grad_x, slow.grad_x, err_msg=name)
                    assert_allclose(fast.grad_alpha, slow.grad_alpha, rtol=1e-6, atol=1e-12)
            assert_array_equal(x, before)


# ---- optimal alpha ---------------------------------------------------------------

def _brute_force_alpha(bits, rounding):
    """Independent: quadrature of the error on a dense grid of alpha, then a
    golden-section refinement, all with scipy.integrate.quad."""
    L = 2 ** bits - 1

    def q(x, a):
        u = x / a
        k = math.ceil(u) if rounding == "ceil" else math.floor(u + 0.5)
        return a * min(max(k, 0), L)

    def mse(a):
        pts = [a * (k + (0.0 if rounding == "ceil" else 0.5)) for k in range(L + 1)]
        pts = [p for p in pts if 0 < p < 12]
        c = 2 / math.sqrt(2 * math.pi)
        f = lambda x: (q(x, a) - x) ** 2 * c * math.exp(-0.5 * x * x)  # noqa: E731
        return integrate.quad(f, 0, 12, points=pts, limit=400, epsabs=1e-14, epsrel=1e-12)[0]

    grid = np.linspace(0.05, 6.0, 60) / max(L, 1) * (2 if L == 1 else 1)
    vals = [mse(a) for a in grid]
    i = int(np.argmin(vals))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    phi = (math.sqrt(5) - 1) / 2
    for _ in range(45):
        m1, m2 = hi - phi * (hi - lo), lo + phi * (hi - lo)
        if mse(m1) < mse(m2):
            hi = m2
        else:
            lo = m1
    return (lo + hi) / 2, mse


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("bits", [1, 2, 4])
def test_optimal_alpha_against_brute_force(rounding, bits):
    a_bf, mse = _brute_force_alpha(bits, rounding)
    a = stefast.optimal_alpha(bits, rounding)
    # the minimum is flat: compare the errors tightly and alpha to 1e-6
    assert_allclose(qz.quantization_mse(a, bits, rounding), mse(a), rtol=1e-9, atol=1e-13)
    assert abs(a - a_bf) < 1e-6
    assert stefast.optimal_alpha(bits, rounding) == a  # deterministic


def test_optimal_alpha_known_values_and_monte_carlo():
    # 1 bit, ceil: q = alpha on x > 0, so alpha* = E|N(0,1)| = sqrt(2/pi)
    assert abs(stefast.optimal_alpha(1, "ceil") - math.sqrt(2 / math.pi)) < 1e-8
    # the closed-form error agrees with a Monte Carlo estimate within 5 standard errors
    x = np.abs(np.random.default_rng(11).standard_normal(400_000))
    for bits, rounding in [(2, "nearest"), (3, "ceil")]:
        a = stefast.optimal_alpha(bits, rounding)
        err = (stefast.quantized_relu(x, bits, a, rounding) - x) ** 2
        se = err.std() / math.sqrt(err.size)
        assert abs(err.mean() - qz.quantization_mse(a, bits, rounding)) < 5 * se
    # more bits, finer resolution and smaller error
    alphas = [stefast.optimal_alpha(b) for b in range(1, 9)]
    assert all(np.diff(alphas) < 0)
    with pytest.raises(ValueError, match="rounding"):
        stefast.optimal_alpha(2, "floor")
    # the closed-form derivative used for the root solve matches finite differences
    for rounding in ROUNDINGS:
        for bits in (1, 3):
            a, h = 1.3 * stefast.optimal_alpha(bits, rounding), 1e-6
            fd = (qz.quantization_mse(a + h, bits, rounding)
                  - qz.quantization_mse(a - h, bits, rounding)) / (2 * h)
            assert_allclose(qz._mse_derivative(a, bits, rounding), fd, rtol=1e-6)


# ---- surrogates for the analysis ---------------------------------------------------

def test_quantized_ste_callable():
    mu = stefast.quantized_ste(2, 0.5, "clipped_relu")
    x = np.array([-1.0, 0.0, 0.3, 1.49, 1.5, 2.0])
    assert_array_equal(mu(x), [0, 0, 1, 1, 0, 0])
    assert mu.breakpoints == (0.0, 1.5)
    assert stefast.quantized_ste(2, 0.5, "relu").breakpoints == (0.0,)
    assert_array_equal(stefast.quantized_ste(2, 0.5, "identity")(x), np.ones(6))
    # the callable agrees with the kernel's windows
    g = np.ones_like(x)
    for ste in QSTES:
        assert_array_equal(stefast.quantized_ste(2, 0.5, ste)(x),
                           stefast.quantized_relu_grad(x, g, 2, 0.5, ste).grad_x)
    assert_array_equal(mu.forward(x), stefast.quantized_relu(x, 2, 0.5))


def test_quantized_surrogates_in_expected_coarse_grad():
    """The callable path of the analysis accepts quantized_ste; with bits=1 and
    alpha=1 its clipped_relu window is (0, 1), the named clipped_relu STE."""
    analytic = pytest.importorskip("stefast.analytic")
    rng = np.random.default_rng(2)
    v, v_star = rng.standard_normal(4), rng.standard_normal(4)
    w, w_star = rng.standard_normal(3), rng.standard_normal(3)
    for ste in ("relu", "clipped_relu"):
        named = analytic.expected_coarse_grad(v, w, v_star, w_star, ste)
        via = analytic.expected_coarse_grad(v, w, v_star, w_star, stefast.quantized_ste(1, 1.0, ste))
        assert_allclose(via.grad_w, named.grad_w, rtol=1e-9, atol=1e-12)
    # a 4-bit window (0, 15 alpha) is wider than (0, 1) and gives another answer
    g4 = analytic.expected_coarse_grad(v, w, v_star, w_star,
                                       stefast.quantized_ste(4, stefast.optimal_alpha(4, "ceil")))
    assert np.all(np.isfinite(g4.grad_w))


def test_quantized_surrogates_in_the_report_card():
    """The STE report card takes a quantized ReLU's surrogates through the
    callable path; the clipped window vanishes at the spurious minimiser like
    clipped_relu, the identity surrogate does not (Lemma 9)."""
    alpha = stefast.optimal_alpha(2, rounding="ceil")
    clipped = stefast.ste_report(stefast.quantized_ste(2, alpha, "clipped_relu"), m=4, n=3, rng=0)
    identity = stefast.ste_report(stefast.quantized_ste(2, alpha, "identity"), m=4, n=3, rng=0)
    assert clipped.vanishes_at("spurious") and not identity.vanishes_at("spurious")
    assert "quantized" in str(clipped)
