"""The surrogate registry (stefast.surrogates) and its exact expectations."""

import math

import numpy as np
import pytest
from scipy import integrate, special

import stefast
from stefast import _formulas as fm
from stefast import reference
from stefast import surrogates as S
from stefast._geometry import PHI0

X = np.array([-3.0, -1.0, -0.7, -1e-3, 0.0, 1e-3, 0.4, 1.0, 2.5, np.inf, -np.inf, np.nan])


def _larq_swish(x, beta):
    with np.errstate(over="ignore", invalid="ignore"):
        return beta * (2 - beta * x * np.tanh(beta * x / 2)) / (1 + np.cosh(beta * x))


@pytest.mark.parametrize("sur, formula", [
    (S.approx_sign(), lambda x: np.where(np.abs(x) <= 1, 2 - 2 * np.abs(x), 0.0)),
    (S.approx_sign(scale=0.5), lambda x: np.where(np.abs(x) <= 1, 1 - np.abs(x), 0.0)),
    (S.ste_sign(0.7), lambda x: (np.abs(x) <= 0.7).astype(float)),
    (S.ste_heaviside(2.0, scale=0.5), lambda x: 0.5 * (np.abs(x) <= 2.0)),
    (S.swish_sign(), lambda x: _larq_swish(x, 5.0)),
    (S.swish_sign(1.5, scale=0.5), lambda x: 0.5 * _larq_swish(x, 1.5)),
    (S.tanh(2.0), lambda x: 2.0 * (1 - np.tanh(2.0 * x) ** 2)),
    (S.tanh(1.0, 1.0, 0.001), lambda x: 1.001 - np.tanh(x) ** 2),  # OneBit
    (S.sigmoid(3.0, scale=2.0), lambda x: 2.0 * 3.0 * special.expit(3 * x) * special.expit(-3 * x)),
])
def test_derivative_follows_the_published_definitions(sur, formula):
    finite = np.isfinite(X)
    got = sur.derivative(X)
    np.testing.assert_allclose(got[finite], formula(X[finite]), rtol=1e-14, atol=1e-15)
    assert got[np.isnan(X)] == 0.0  # NaN is outside the support
    if sur.kind in ("logistic", "swish"):
        assert np.all(got[np.isinf(X)] == sur.c_params[-1] * (sur.kind == "logistic"))


@pytest.mark.parametrize("name, sur", sorted(S.registry().items()))
def test_integral_is_the_step_it_stands_for(name, sur):
    if math.isinf(sur.integral):
        assert sur.pieces is not None and math.isinf(sur.pieces[0][-1])
        return
    f = lambda x: float(sur.derivative(np.array([x]))[0])  # noqa: E731
    total = integrate.quad(f, -60, 60, points=sorted(set(sur.breakpoints) | {0.0}), limit=400)[0]
    assert total == pytest.approx(sur.integral, rel=1e-9)
    # Larq's sign surrogates integrate to sign's step, 2; sigmoid to sigma's, 1
    expected = {"approx_sign": 2, "swish_sign": 2, "tanh": 2, "sigmoid": 1, "ste_sign": 2,
                "ste_heaviside": 2, "hardtanh": 2, "clipped_relu": 1}[name]
    assert sur.integral == expected


def test_named_windows_are_shortcuts():
    for name in stefast.STES:
        w = S.named(name)
        assert w.named == name and stefast._validation.check_ste(w) == name
        x = X[np.isfinite(X) | np.isnan(X)]
        mask = stefast._geometry.window_mask(x, name)
        np.testing.assert_array_equal(w.derivative(x), mask.astype(float))
    assert S.window(0, 1, closed=False).named == "clipped_relu"
    assert S.ste_sign(1.0).named == "hardtanh"
    assert S.window(0, 1).named is None  # ends included: not clipped_relu's window
    assert S.window(-1, 1, scale=2.0).named is None
    assert S.relu().derivative([np.inf])[0] == 1.0 and S.identity().derivative([np.nan])[0] == 1.0


def test_objects_are_immutable_hashable_and_repr_rebuilds_them():
    for sur in list(S.registry().values()) + [S.piecewise_polynomial([-1, 0, 2], [[1, 2], [3]])]:
        rebuilt = eval(repr(sur), {"inf": math.inf, **{k: getattr(S, k) for k in S.__all__}})
        assert rebuilt == sur and hash(rebuilt) == hash(sur)
        with pytest.raises(AttributeError, match="immutable"):
            sur.name = "other"
    assert S.tanh(2.0) != S.tanh(3.0)


def test_float32_stays_float32():
    x = np.array([0.1, -0.3], dtype=np.float32)
    for sur in S.registry().values():
        assert sur.derivative(x).dtype == np.float32


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: S.window(1.0, 0.0), ValueError, r"a window needs lo < hi"),
    (lambda: S.window(0.0, np.nan), ValueError, r"a window needs lo < hi"),
    (lambda: S.window(np.inf, np.inf), ValueError, r"a window needs lo < hi"),
    (lambda: S.window(0, 1, closed="yes"), TypeError, r"closed must be a bool or a pair"),
    (lambda: S.window(0, 1, scale=0), ValueError, r"scale must be a finite number > 0, got 0.0"),
    (lambda: S.swish_sign(beta=-1), ValueError, r"beta must be a finite number > 0"),
    (lambda: S.tanh(beta="x"), TypeError, r"beta must be a real number, got str"),
    (lambda: S.tanh(offset=-1), ValueError, r"offset must be a finite number >= 0"),
    (lambda: S.ste_sign(clip_value=np.inf), ValueError, r"clip_value must be a finite number > 0"),
    (lambda: S.piecewise_polynomial([0, 1], [[1], [2]]), ValueError, r"one row per piece: 1"),
    (lambda: S.piecewise_polynomial([1, 0], [[1]]), ValueError, r"breakpoints must increase"),
    (lambda: S.piecewise_polynomial([0, np.inf, 3], [[1], [1]]), ValueError, r"only the first"),
    (lambda: S.piecewise_polynomial([0, 1], [[np.nan]]), ValueError, r"coefficients\[0\]"),
    (lambda: S.piecewise_polynomial([0, 1], [[1] * 10]), ValueError, r"degree <= 8"),
    (lambda: stefast.expected_coarse_grad([1.0], [1.0, 0], [1.0], [1, 1], ste=3),
     TypeError, r"ste must be one of .* a stefast.surrogates object or a callable"),
    (lambda: stefast.ste_grad([1.0], [1.0], ste=3), ValueError,
     r"ste must be one of .* or a stefast.surrogates object"),
])
def test_bad_parameters_are_named(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()


# ---- exact expectations ----

def _coefficient_grid():
    for s in (0.05, 0.3, 1.0, 2.5, 40.0):
        for theta in (0.0, 1e-6, 0.4, 1.5, 2.9, math.pi - 1e-5, math.pi):
            yield s, theta


@pytest.mark.parametrize("name", stefast.STES)
def test_piecewise_closed_form_of_a_named_window_equals_its_closed_form(name):
    pw = fm.Piecewise(S.named(name))
    for s, theta in _coefficient_grid():
        cos, sin = math.cos(theta), (0.0 if theta in (0.0, math.pi) else math.sin(theta))
        cos = -1.0 if theta == math.pi else cos
        named = fm.named_formula(name, cos, sin, lambda: fm.window_terms_scalar(s, cos, sin))
        np.testing.assert_allclose(pw.coefficients(s, theta), named[:4], rtol=1e-12, atol=1e-15)
        assert pw.mu0 == named[4]


@pytest.mark.parametrize("sur", [
    S.approx_sign(),
    S.window(-0.3, 0.7, scale=2.0),
    S.piecewise_polynomial([-2, -0.5, 1, 3], [[1, 2, 0.5], [0.3], [1, -1, 0, 0.2]]),
    S.piecewise_polynomial([-np.inf, -1, 0], [[0.0], [1, 0.5, -2, 1]]),
])
def test_piecewise_closed_form_equals_quadrature(sur):
    pw = fm.Piecewise(sur)
    quad = fm.Quadrature(sur.derivative, np.array(sur.breakpoints))
    degree = max(len(row) for row in sur.pieces[1]) - 1
    for s, theta in _coefficient_grid():
        # c1's recursion loses digits on pieces far shorter than 1 (b / s, large s)
        # with cubic terms (Piecewise's docstring); degree <= 1 and moderate s keep 1e-10
        rtol = 1e-6 if (s > 10 and degree > 1) else 1e-10
        expected = np.array(quad.coefficients(s, theta))
        np.testing.assert_allclose(pw.coefficients(s, theta), expected, rtol=rtol,
                                   atol=max(1e-14, rtol * np.max(np.abs(expected))))


def test_expected_coarse_grad_takes_registry_objects():
    rng = np.random.default_rng(3)
    v, v_star, w, w_star = (rng.standard_normal(k) for k in (4, 4, 5, 5))
    # a registry window equal to a named one is the named STE
    a = stefast.expected_coarse_grad(v, w, v_star, w_star, ste=S.window(0, 1, closed=False))
    b = stefast.expected_coarse_grad(v, w, v_star, w_star, ste="clipped_relu")
    np.testing.assert_array_equal(a.grad_w, b.grad_w)
    # the closed ends of window(0, 1) change nothing in expectation
    c = stefast.expected_coarse_grad(v, w, v_star, w_star, ste=S.window(0, 1))
    np.testing.assert_allclose(c.grad_w, b.grad_w, rtol=1e-12, atol=1e-15)
    # scale multiplies E[g]
    d = stefast.expected_coarse_grad(v, w, v_star, w_star, ste=S.approx_sign(scale=0.5))
    e = stefast.expected_coarse_grad(v, w, v_star, w_star, ste=S.approx_sign())
    np.testing.assert_allclose(2 * d.grad_w, e.grad_w, rtol=1e-13)
    with pytest.raises(ValueError, match="breakpoints is only used with a callable"):
        stefast.expected_coarse_grad(v, w, v_star, w_star, ste=S.tanh(), breakpoints=[0.0])


def _stein_c2(F, s, theta):
    """c2 = phi(0) sin E[mu'(a u)] = phi(0) sin E[u F(a u)] / a, a = s sin (Stein's
    lemma, F an antiderivative of mu'): an integrand other than the library's."""
    a = s * math.sin(theta)
    val = integrate.quad(lambda u: u * PHI0 * math.exp(-0.5 * u * u) * F(a * u), -40, 40,
                         points=[0.0], limit=400, epsabs=1e-15, epsrel=1e-13)[0]
    return PHI0 * math.sin(theta) * val / a


@pytest.mark.parametrize("sur, F", [
    (S.tanh(3.0, scale=0.5), lambda x: 0.5 * math.tanh(3.0 * x)),
    (S.sigmoid(8.0), lambda x: special.expit(8.0 * x)),
    (S.swish_sign(5.0), lambda x: 2 * special.expit(5 * x) * (1 + 5 * x * special.expit(-5 * x)) - 1),
])
def test_smooth_quadrature_reaches_1e_10(sur, F):
    co = fm.resolve_ste(sur, None)
    assert isinstance(co, fm.Quadrature) and co.name == repr(sur)
    for s in (0.1, 1.0, 3.0):
        for theta in (0.3, 1.5, 2.8):
            assert co.coefficients(s, theta)[3] == pytest.approx(_stein_c2(F, s, theta),
                                                                 rel=1e-10, abs=1e-14)


def test_small_beta_tanh_tends_to_identity():
    rng = np.random.default_rng(5)
    v, v_star, w, w_star = (rng.standard_normal(k) for k in (3, 3, 4, 4))
    ident = stefast.expected_coarse_grad(v, w, v_star, w_star, ste="identity").grad_w
    errs = []
    for beta in (0.02, 0.01):
        # (1 - tanh(beta x)^2) = 1 - beta^2 x^2 + O(beta^4): error O(beta^2)
        got = stefast.expected_coarse_grad(v, w, v_star, w_star,
                                           ste=S.tanh(beta, scale=1 / beta)).grad_w
        errs.append(np.max(np.abs(got - ident)))
    assert errs[1] < errs[0] / 3.5 and errs[0] < 5e-3 * np.max(np.abs(ident))


def test_large_beta_and_narrow_windows_tend_to_the_delta_limit():
    """mu' -> J delta(x): A1, B1, c1 -> 0 and c2 -> J phi(0)^2 / s, approached at
    rate 1/beta by tanh(beta) and at rate eps by a window of width 2 eps, mass J."""
    s, theta = 1.7, 1.1
    J = 2.0
    limit = np.array([0.0, 0.0, 0.0, J * PHI0 ** 2 / s])
    for beta, eps in ((100.0, 0.01), (1000.0, 0.001)):
        smooth = np.array(fm.resolve_ste(S.tanh(beta), None).coefficients(s, theta))
        narrow = np.array(fm.Piecewise(S.window(-eps, eps, scale=J / (2 * eps))).coefficients(s, theta))
        assert np.max(np.abs(smooth - limit)) < 2.0 / beta
        assert np.max(np.abs(narrow - limit)) < 2.0 * eps
        assert np.max(np.abs(smooth - narrow)) < 2.0 / beta + 2.0 * eps


# ---- the C kernels with registry surrogates, against the closed forms ----

MC_SURROGATES = [S.approx_sign(), S.swish_sign(5.0), S.tanh(2.0, scale=0.5), S.sigmoid(3.0),
                 S.window(-0.5, 1.5, closed=False, scale=2.0),
                 S.piecewise_polynomial([-np.inf, -1, 0, 1], [[0.5], [1, 2, 3], [4, -1]])]


def _mc_point():
    rng = np.random.default_rng(11)
    v, v_star = rng.standard_normal(5), rng.standard_normal(5)
    w_star = rng.standard_normal(4)
    w = rng.standard_normal(4) * 0.8
    return v, w, v_star, w_star


def _within_se(est, want, k=5.0):
    err = np.abs(est.grad_w - want)
    assert np.all(err <= k * est.grad_w_se + 1e-12), f"|error| / se = {err / est.grad_w_se}"


@pytest.mark.parametrize("method", ["full", "projected", "conditional"])
@pytest.mark.parametrize("sur", MC_SURROGATES, ids=repr)
def test_monte_carlo_matches_the_exact_expectation(sur, method):
    v, w, v_star, w_star = _mc_point()
    want = stefast.expected_coarse_grad(v, w, v_star, w_star, ste=sur).grad_w
    est = stefast.monte_carlo(v, w, v_star, w_star, ste=sur, n_samples=40_000, method=method,
                              rng=sum(map(ord, repr(sur) + method)))
    assert est.ste == sur
    _within_se(est, want)


def test_the_monte_carlo_check_has_power():
    """A 10 % error in approx_sign's expectation is rejected at 5 se."""
    v, w, v_star, w_star = _mc_point()
    sur = S.approx_sign()
    want = stefast.expected_coarse_grad(v, w, v_star, w_star, ste=sur).grad_w
    est = stefast.monte_carlo(v, w, v_star, w_star, ste=sur, n_samples=200_000,
                              method="conditional", rng=1)
    _within_se(est, want)
    with pytest.raises(AssertionError):
        _within_se(est, 1.1 * want)


@pytest.mark.parametrize("method", ["full", "projected", "conditional"])
def test_monte_carlo_reference_twin_agrees(method):
    v, w, v_star, w_star = _mc_point()
    sur = S.approx_sign()
    ref = reference.monte_carlo(v, w, v_star, w_star, ste=sur, n_samples=20_000,
                                        method=method, rng=3)
    _within_se(ref, stefast.expected_coarse_grad(v, w, v_star, w_star, ste=sur).grad_w)
    fast = stefast.monte_carlo(v, w, v_star, w_star, ste=sur, n_samples=20_000,
                               method=method, rng=3)
    np.testing.assert_allclose(fast.grad_w_se, ref.grad_w_se, rtol=0.08)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_monte_carlo_bits_do_not_depend_on_threads(dtype):
    v, w, v_star, w_star = _mc_point()
    runs = [stefast.monte_carlo(v, w, v_star, w_star, ste=S.swish_sign(), n_samples=5000,
                                rng=7, threads=t, dtype=dtype) for t in (1, 2, 5)]
    for other in runs[1:]:
        assert np.array_equal(runs[0].grad_w, other.grad_w)
        assert np.array_equal(runs[0].m2, other.m2)


@pytest.mark.parametrize("sur", [S.swish_sign(5.0), S.approx_sign()], ids=repr)
def test_sampled_descent_with_registry_surrogates_tracks_the_population_run(sur):
    rng = np.random.default_rng(4)
    v_star, w_star = rng.standard_normal(4), rng.standard_normal(6)
    v0, w0 = rng.standard_normal(4), rng.standard_normal(6)
    kw = dict(ste=sur, lr=0.05, steps=400, record_every=100)
    pop = stefast.coarse_gradient_descent(v0, w0, v_star, w_star, **kw)
    smp = stefast.coarse_gradient_descent(v0, w0, v_star, w_star, mode="sampled",
                                          batch_size=256, rng=0, **kw)
    assert smp.ste == repr(sur) and smp.mode == "sampled"
    # the sampled steps follow E[g] (the population run) up to sampling noise
    assert abs(smp.f[-1] - pop.f[-1]) < 0.2 * pop.f[0]
    assert abs(smp.theta[-1] - pop.theta[-1]) < 0.2
    assert smp.f[-1] < 0.5 * smp.f[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_descent_ensemble_matches_the_numpy_twin(dtype):
    rng = np.random.default_rng(8)
    R, m, n = 3, 4, 5
    args = [rng.standard_normal(s).astype(dtype) for s in ((R, m), (R, n), (m,), (n,))]
    kw = dict(ste=S.tanh(2.0, scale=0.5), lr=0.05, steps=30, n_train=40, batch_size=16,
              rng=2, record_every=10)
    fast = stefast.descent_ensemble(*args, **kw)
    slow = reference.descent_ensemble(*args, **kw)
    rtol = 2e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(fast.w, slow.w, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(fast.v, slow.v, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("sur", [S.swish_sign(), S.swish_sign(0.3, 2.0), S.tanh(2.0, 0.5, 0.01),
                                 S.sigmoid(7.0)], ids=repr)
def test_scalar_derivative_is_the_vector_one(sur):
    x = np.concatenate([X, np.linspace(-200, 200, 401), [800.0, -1e300]])
    vec = sur.derivative(x)
    scalar = np.array([sur.derivative_scalar(float(t)) for t in x])
    # math.exp and NumPy's exp may differ in the last bit
    np.testing.assert_allclose(scalar, vec, rtol=4 * np.finfo(float).eps, atol=0)
    np.testing.assert_array_equal(scalar == 0, vec == 0)


# ---- the STE zoo ----

def test_zoo_rows_are_the_library_numbers():
    from stefast.experiments import zoo

    surs = {"hardtanh": S.hardtanh(), "swish_sign": S.swish_sign()}
    rows, v_star, w_star = zoo.zoo_rows(4, 3, seed=2, runs=2, steps=60, n_train=100,
                                        n_theta=3, n_pairs=1, surrogates=surs)
    assert [r["surrogate"] for r in rows] == list(surs)
    for row, sur in zip(rows, surs.values()):
        rep = stefast.ste_report(sur, m=4, n=3, rng=2, n_theta=3, n_pairs=1)
        assert row["cos min"] == rep.cosine_min and row["cos median"] == rep.cosine_median
        assert row["descent everywhere"] == ("yes" if rep.descent else "no")
        assert row["population success"].split()[0].endswith("/2")


def test_zoo_command_writes_the_report(tmp_path):
    pytest.importorskip("matplotlib")
    from stefast.cli import main

    assert main(["zoo", "--quick", "--out", str(tmp_path), "--m", "3", "--n", "2"]) == 0
    text = (tmp_path / "zoo.md").read_text()
    assert "| swish_sign |" in text and "| approx_sign |" in text
    assert (tmp_path / "zoo_cosines.png").stat().st_size > 1000
