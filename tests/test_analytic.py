"""Population closed forms (stefast.analytic) against brute force and the paper.

Every Monte Carlo check uses a fixed seed, 10^6 samples and a tolerance of
5 standard errors per component. The paper's formulas are written out here
literally (not imported), so they check the module's unified coefficient
form independently.
"""

import math

import numpy as np
import pytest

import stefast
from stefast import _core, analytic
from stefast import surrogates as S
from stefast._geometry import geometry
from util import invalid_population_points, layouts, misaligned, population_points

PHI0 = 1.0 / math.sqrt(2.0 * math.pi)
N_MC = 1_000_000
CHUNK = 50_000
WINDOWS = {  # the kernels' surrogate windows as plain callables, with their jumps
    "identity": (lambda x: np.ones_like(x), []),
    "relu": (lambda x: (x > 0).astype(float), [0.0]),
    "clipped_relu": (lambda x: ((x > 0) & (x < 1)).astype(float), [0.0, 1.0]),
    "hardtanh": (lambda x: (np.abs(x) <= 1).astype(float), [-1.0, 1.0]),
}


def _Phi(x):
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def _phi(x):
    return PHI0 * math.exp(-0.5 * x * x)


def _w_at_angle(w_star, theta, norm, rng):
    """A w with ||w|| = norm at angle theta from w_star (n >= 2)."""
    u = w_star / np.linalg.norm(w_star)
    e = rng.standard_normal(w_star.size)
    e -= (e @ u) * u
    e /= np.linalg.norm(e)
    return norm * (math.cos(theta) * u + math.sin(theta) * e)


# --------------------------------------------------------------------------
# brute-force Monte Carlo with the core kernels
# --------------------------------------------------------------------------

MC_CONFIGS = {
    # name: (seed, m, n, w norm, w* norm, theta or None for a random w)
    "generic": (11, 4, 6, 0.6, 2.5, None),
    "wide-angle": (12, 3, 5, 1.7, 0.4, 2.6),
    "small-angle": (13, 5, 4, 0.35, 3.0, 0.3),
    "unit": (14, 3, 8, 1.0, 1.0, 1.2),
    "n=1": (15, 4, 1, 0.8, 1.3, math.pi),
    "w=0": (16, 3, 4, 0.0, 1.9, None),
}


def _mc_config(name):
    seed, m, n, w_norm, ws_norm, theta = MC_CONFIGS[name]
    rng = np.random.default_rng(seed)
    v, v_star = rng.standard_normal(m), rng.standard_normal(m)
    w_star = rng.standard_normal(n)
    w_star *= ws_norm / np.linalg.norm(w_star)
    if n == 1:
        w = -w_star / ws_norm * w_norm
    elif theta is None:
        w = rng.standard_normal(n)
        w *= w_norm / np.linalg.norm(w) if w_norm > 0 else 0.0
    else:
        w = _w_at_angle(w_star, theta, w_norm, rng)
    return rng, v, w, v_star, w_star


class _Moments:
    def __init__(self):
        self.s1 = self.s2 = 0.0
        self.count = 0

    def add(self, x):
        self.s1 = self.s1 + x.sum(axis=0)
        self.s2 = self.s2 + (x * x).sum(axis=0)
        self.count += x.shape[0]

    def check(self, closed, what):
        mean = self.s1 / self.count
        se = np.sqrt(np.maximum(self.s2 / self.count - mean**2, 0.0) / self.count)
        err = np.abs(mean - closed)
        bad = err > 5.0 * se + 1e-12
        assert not np.any(bad), (
            f"{what}: Monte Carlo {mean} vs closed form {closed}, "
            f"|z| = {err / np.maximum(se, 1e-300)}"
        )


@pytest.fixture(scope="module")
def mc_results():
    """Per configuration: inputs and Monte Carlo moments of loss, dl/dv, g_mu."""
    out = {}
    for name in MC_CONFIGS:
        rng, v, w, v_star, w_star = _mc_config(name)
        m, n = v.size, w.size
        loss, grad_v = _Moments(), _Moments()
        grad_w = {ste: _Moments() for ste in stefast.STES}
        for _ in range(N_MC // CHUNK):
            Z = rng.standard_normal((CHUNK, m, n))
            for ste in stefast.STES:
                r = stefast.loss_and_grads(Z, v, w, v_star, w_star, ste=ste, reduce="none")
                grad_w[ste].add(r.grad_w)
            loss.add(r.loss)
            grad_v.add(r.grad_v)
        out[name] = ((v, w, v_star, w_star), loss, grad_v, grad_w)
    return out


@pytest.mark.parametrize("name", list(MC_CONFIGS))
def test_loss_and_grad_v_match_monte_carlo(mc_results, name):
    args, loss, grad_v, _ = mc_results[name]
    loss.check(stefast.population_loss(*args), f"{name} loss")
    # E[dl/dv] = df/dv (Lemma 4), also at theta in {0, pi} and w = 0
    grad_v.check(stefast.population_grad(*args).grad_v, f"{name} grad_v")
    grad_v.check(stefast.expected_coarse_grad(*args).grad_v, f"{name} coarse grad_v")


@pytest.mark.parametrize("ste", stefast.STES)
@pytest.mark.parametrize("name", list(MC_CONFIGS))
def test_expected_coarse_grad_matches_monte_carlo(mc_results, name, ste):
    args, _, _, grad_w = mc_results[name]
    grad_w[ste].check(stefast.expected_coarse_grad(*args, ste=ste).grad_w, f"{name} {ste}")


def test_monte_carlo_check_has_power(mc_results):
    """The 5-se test rejects a wrong closed form (a 2% error in the relu gradient)."""
    args, _, _, grad_w = mc_results["generic"]
    wrong = 1.02 * stefast.expected_coarse_grad(*args, ste="relu").grad_w
    with pytest.raises(AssertionError):
        grad_w["relu"].check(wrong, "perturbed")


def _brute_force_coarse_grad(mu, v, w, v_star, w_star, seed):
    """E[g_mu] for an arbitrary surrogate, sampled directly in NumPy."""
    rng = np.random.default_rng(seed)
    mom = _Moments()
    for _ in range(N_MC // CHUNK):
        Z = rng.standard_normal((CHUNK, v.size, w.size))
        Zw = Z @ w
        r = (Zw > 0) @ v - (Z @ w_star > 0) @ v_star
        a = mu(Zw) * v * r[:, None]
        mom.add(np.einsum("bmn,bm->bn", Z, a))
    return mom


@pytest.mark.parametrize("which", ["window", "smooth"])
def test_callable_surrogate_matches_brute_force(which):
    rng = np.random.default_rng(21)
    v, v_star = rng.standard_normal(3), rng.standard_normal(3)
    w_star = 1.6 * rng.standard_normal(4)
    w = _w_at_angle(w_star, 1.9, 0.7, rng)
    if which == "window":  # asymmetric, not one of the named STEs
        def mu(x):
            return ((x > -0.5) & (x < 2.0)).astype(float)
        mu.breakpoints = [-0.5, 2.0]
    else:  # derivative of tanh
        def mu(x):
            return 1.0 / np.cosh(x) ** 2
    mom = _brute_force_coarse_grad(mu, v, w, v_star, w_star, seed=22)
    mom.check(stefast.expected_coarse_grad(v, w, v_star, w_star, ste=mu).grad_w, which)


# --------------------------------------------------------------------------
# the paper's own formulas, written out literally
# --------------------------------------------------------------------------


def _paper_forms(v, w, v_star, w_star):
    """Lemma 9, Lemma 4 and the Phi-form of Lemma 7 (docs/math.rst, section
    "Expected coarse gradient"), for theta in (0, pi)."""
    w_hat, ws_hat = w / np.linalg.norm(w), w_star / np.linalg.norm(w_star)
    cos = w_hat @ ws_hat
    theta = math.acos(cos)
    e_perp = ws_hat - cos * w_hat
    e_perp /= np.linalg.norm(e_perp)
    one_v, one_vs, vvs = v.sum(), v_star.sum(), v @ v_star
    h = v @ v + one_v**2 - one_v * one_vs + vvs
    u = (w_hat + ws_hat) / np.linalg.norm(w_hat + ws_hat)
    ident = (v @ v * w_hat - vvs * ws_hat) / math.sqrt(2 * math.pi)
    relu = h / (2 * math.sqrt(2 * math.pi)) * w_hat \
        - math.cos(theta / 2) * vvs / math.sqrt(2 * math.pi) * u
    a = 1.0 / np.linalg.norm(w)
    E1 = PHI0 / 2 - _phi(a) * _Phi(a / math.tan(theta)) \
        + cos * PHI0 * (_Phi(a / math.sin(theta)) - 0.5)
    E2 = math.sin(theta) * PHI0 * (_Phi(a / math.sin(theta)) - 0.5)
    crelu = 0.5 * h * (PHI0 - _phi(a)) * w_hat - vvs * (E1 * w_hat + E2 * e_perp)
    return {"identity": ident, "relu": relu, "clipped_relu": crelu}, theta, E2


@pytest.mark.parametrize("seed", range(5))
def test_named_closed_forms_equal_paper_formulas(seed):
    rng = np.random.default_rng(seed)
    m, n = 2 + seed, 3 + seed % 3
    v, v_star = rng.standard_normal(m), rng.standard_normal(m)
    w_star = rng.uniform(0.3, 3) * rng.standard_normal(n)
    w = _w_at_angle(w_star, rng.uniform(0.05, math.pi - 0.05), rng.uniform(0.2, 4), rng)
    forms, _, _ = _paper_forms(v, w, v_star, w_star)
    for ste, expected in forms.items():
        got = stefast.expected_coarse_grad(v, w, v_star, w_star, ste=ste).grad_w
        np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-14)


def test_relu_at_theta_pi_drops_second_term():
    rng = np.random.default_rng(3)
    v, v_star, w_star = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(5)
    w = -2.0 * w_star
    h = v @ v + v.sum() ** 2 - v.sum() * v_star.sum() + v @ v_star
    got = stefast.expected_coarse_grad(v, w, v_star, w_star, ste="relu").grad_w
    np.testing.assert_allclose(got, h / (2 * math.sqrt(2 * math.pi)) * w / np.linalg.norm(w),
                               rtol=1e-13)


# --------------------------------------------------------------------------
# population_grad, angle
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_population_grad_matches_finite_differences(seed):
    rng = np.random.default_rng(100 + seed)
    m, n = 3 + seed, 2 + seed
    v, v_star = rng.standard_normal(m), rng.standard_normal(m)
    w_star = rng.uniform(0.3, 3) * rng.standard_normal(n)
    w = _w_at_angle(w_star, rng.uniform(0.2, math.pi - 0.2), rng.uniform(0.3, 3), rng)
    gv, gw = stefast.population_grad(v, w, v_star, w_star)
    h = 1e-6
    for x, g, pos in ((v, gv, 0), (w, gw, 1)):
        fd = np.empty_like(x)
        for i in range(x.size):
            dx = np.zeros_like(x)
            dx[i] = h
            args_p = [v, w, v_star, w_star]
            args_m = [v, w, v_star, w_star]
            args_p[pos], args_m[pos] = x + dx, x - dx
            fd[i] = (stefast.population_loss(*args_p) - stefast.population_loss(*args_m)) / (2 * h)
        np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)


def test_population_grad_conventions_on_axis_and_at_zero():
    v, v_star = np.array([1.0, -2.0, 0.5]), np.array([0.3, 1.0, 1.0])
    w_star = np.array([0.0, 3.0, 4.0])
    for w in (2 * w_star, -0.5 * w_star, np.zeros(3)):
        gv, gw = stefast.population_grad(v, w, v_star, w_star)
        assert np.all(gw == 0) and not np.any(np.signbit(gw))
        assert np.all(np.isfinite(gv))
    gv0, _ = stefast.population_grad(v, np.zeros(3), v_star, w_star)
    assert np.all(gv0 == 0)
    assert stefast.population_loss(v, np.zeros(3), v_star, w_star) == pytest.approx(
        (v_star @ v_star + v_star.sum() ** 2) / 8, rel=1e-15)
    # n = 1: theta is 0 or pi, f is piecewise constant in w
    gv, gw = stefast.population_grad(v, [-2.0], v_star, [0.5])
    assert gw.shape == (1,) and gw[0] == 0
    assert stefast.population_loss(v, [-2.0], v_star, [0.5]) == pytest.approx(
        stefast.population_loss(v, [-1.0, 0.0], v_star, [1.0, 0.0]), rel=1e-15)


def test_loss_is_exactly_zero_at_global_minimum():
    v_star, w_star = np.array([0.7, -1.1, 2.0]), np.array([1.0, 2.0])
    assert stefast.population_loss(v_star, 3.0 * w_star, v_star, w_star) == 0.0


def test_angle_accuracy_and_no_nan():
    assert stefast.angle([1.0, 0.0], [1.0, 1.0]) == pytest.approx(math.pi / 4, rel=1e-15)
    # cosine rounds above 1 for these: arccos would give NaN
    w = np.array([0.1, 0.2, 0.3]) * 3
    assert stefast.angle(w, np.array([0.1, 0.2, 0.3])) == 0.0
    assert stefast.angle(w, -np.array([0.1, 0.2, 0.3])) == math.pi
    for t in (1e-10, 1e-7, 1e-3, 1.0, math.pi - 1e-7, math.pi - 1e-10):
        a = stefast.angle([1.0, 0.0], [math.cos(t), math.sin(t)])
        assert a == pytest.approx(t, rel=1e-9)
    thetas = stefast.angle(np.eye(3), [1.0, 1.0, 0.0])
    np.testing.assert_allclose(thetas, [math.pi / 4, math.pi / 4, math.pi / 2], rtol=1e-15)


# --------------------------------------------------------------------------
# the callable (quadrature) path
# --------------------------------------------------------------------------

THETAS = [0.0, 1e-12, 1e-9, 1e-6, 1e-3, 0.4, math.pi / 4 - 1e-4, math.pi / 4 + 1e-4,
          math.pi / 2, 2.2, math.pi - 1e-3, math.pi - 1e-6, math.pi - 1e-9, math.pi]


@pytest.mark.parametrize("ste", stefast.STES)
def test_quadrature_equals_closed_forms(ste):
    rng = np.random.default_rng(7)
    m, n = 4, 3
    v, v_star = rng.standard_normal(m), rng.standard_normal(m)
    w_star = 2.3 * np.eye(n)[0]
    fn, bps = WINDOWS[ste]
    for norm in (0.1, 0.9, 4.0):
        W = np.array([norm * (math.cos(t) * np.eye(n)[0] + math.sin(t) * np.eye(n)[1])
                      for t in THETAS])
        closed = stefast.expected_coarse_grad(v, W, v_star, w_star, ste=ste).grad_w
        quad = stefast.expected_coarse_grad(v, W, v_star, w_star, ste=fn, breakpoints=bps).grad_w
        scale = np.linalg.norm(closed, axis=-1, keepdims=True)
        err = np.abs(quad - closed).max(axis=-1, keepdims=True)
        assert np.all(err <= 1e-8 * scale), (norm, (err / scale).ravel())
        # the small e_perp component too, where it is not rounding-level
        big = np.abs(closed[:, 1]) > 1e-12 * scale[:, 0]
        np.testing.assert_allclose(quad[big, 1], closed[big, 1], rtol=1e-8)


def test_breakpoints_attribute_and_argument_agree():
    v, v_star, w, w_star = [1.0, 2.0], [0.5, -1.0], [0.3, 0.1], [1.0, 1.0]

    def mu(x):
        return ((x > 0) & (x < 1)).astype(float)

    by_arg = stefast.expected_coarse_grad(v, w, v_star, w_star, ste=mu, breakpoints=[0, 1])
    mu.breakpoints = (1.0, 0.0)
    by_attr = stefast.expected_coarse_grad(v, w, v_star, w_star, ste=mu)
    closed = stefast.expected_coarse_grad(v, w, v_star, w_star, ste="clipped_relu")
    np.testing.assert_allclose(by_arg.grad_w, closed.grad_w, rtol=1e-10)
    np.testing.assert_array_equal(by_arg.grad_w, by_attr.grad_w)


def test_w_zero_convention_uses_mu_prime_at_zero():
    v, v_star, w_star = np.array([1.0, -0.5]), np.array([0.8, 0.4]), np.array([0.0, 2.0])
    for ste, mu0 in (("identity", 1), ("relu", 0), ("clipped_relu", 0), ("hardtanh", 1)):
        gv, gw = stefast.expected_coarse_grad(v, [0.0, 0.0], v_star, w_star, ste=ste)
        np.testing.assert_allclose(gw, -mu0 * PHI0 * (v @ v_star) * np.array([0.0, 1.0]))
        assert np.all(gv == 0)
    fn, bps = WINDOWS["hardtanh"]
    _, gw = stefast.expected_coarse_grad(v, [0.0, 0.0], v_star, w_star, ste=fn, breakpoints=bps)
    np.testing.assert_allclose(gw, [0.0, -PHI0 * (v @ v_star)])


# --------------------------------------------------------------------------
# Lemmas 5, 7, 9, 10 and Proposition 1
# --------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_lemma_5_7_10_inner_products(seed):
    rng = np.random.default_rng(200 + seed)
    m, n = 3 + seed, 2 + seed
    v, v_star = rng.standard_normal(m), rng.standard_normal(m)
    w_star = rng.uniform(0.3, 3) * rng.standard_normal(n)
    w = _w_at_angle(w_star, rng.uniform(0.01, math.pi - 0.01), rng.uniform(0.2, 4), rng)
    _, theta, E2 = _paper_forms(v, w, v_star, w_star)
    s, vvs = np.linalg.norm(w), v @ v_star
    expected = {
        "relu": math.sin(theta) * vvs**2 / (2 * (2 * math.pi) ** 1.5 * s),  # Lemma 5
        "identity": math.sin(theta) * vvs**2 / ((2 * math.pi) ** 1.5 * s),  # Lemma 10
        "clipped_relu": E2 * vvs**2 / (2 * math.pi * s),  # Lemma 7
    }
    for ste, value in expected.items():
        got = stefast.coarse_grad_inner(v, w, v_star, w_star, ste=ste)
        assert got == pytest.approx(value, rel=1e-11)
        assert got > 0
        gw = stefast.expected_coarse_grad(v, w, v_star, w_star, ste=ste).grad_w
        gf = stefast.population_grad(v, w, v_star, w_star).grad_w
        cos = stefast.coarse_grad_cosine(v, w, v_star, w_star, ste=ste)
        assert cos == pytest.approx(value / np.linalg.norm(gw) / np.linalg.norm(gf), rel=1e-11)
        assert 0 < cos <= 1


def test_cosine_and_inner_are_zero_where_df_dw_is_zero():
    v, v_star, w_star = [1.0, 2.0], [1.0, 1.0], [0.0, 1.0]
    for w in ([0.0, 2.0], [0.0, -1.0], [0.0, 0.0]):
        assert stefast.coarse_grad_inner(v, w, v_star, w_star) == 0.0
        assert stefast.coarse_grad_cosine(v, w, v_star, w_star) == 0.0


def test_negative_surrogate_is_not_a_descent_direction():
    """The inner product is not positive by construction: mu' = -1 flips it."""
    def mu(x):
        return -np.ones_like(x)
    v, v_star, w, w_star = [1.0, 2.0], [1.0, 1.0], [1.0, 0.5], [0.0, 1.0]
    assert stefast.coarse_grad_inner(v, w, v_star, w_star, ste=mu) < 0
    assert not stefast.ste_report(mu, m=3, n=3, rng=1, n_theta=5, n_pairs=2).descent


def _spurious_teachers():
    rng = np.random.default_rng(300)
    found = []
    while len(found) < 6:
        m = int(rng.integers(2, 7))
        v_star = rng.standard_normal(m)
        if stefast.critical_points(v_star).spurious_exists and abs(v_star.sum()) > 0.1:
            found.append(v_star)
    return found


def test_proposition_1_critical_points():
    rng = np.random.default_rng(301)
    for v_star in _spurious_teachers():
        m, n = v_star.size, 3
        w_star = rng.uniform(0.5, 2) * rng.standard_normal(n)
        cp = stefast.critical_points(v_star)
        assert cp.v_spurious @ v_star < 0  # spurious minimisers: v'v* < 0
        assert (v_star.sum()) ** 2 < (m + 1) / 2 * (v_star @ v_star)
        # global minimiser, spurious minimiser (theta = pi), saddle (theta_saddle)
        w_sd = _w_at_angle(w_star, cp.theta_saddle, 1.3, rng)
        assert stefast.angle(w_sd, w_star) == pytest.approx(cp.theta_saddle, rel=1e-12)
        for v, w in ((v_star, 0.7 * w_star), (cp.v_spurious, -2.0 * w_star), (cp.v_saddle, w_sd)):
            gv, gw = stefast.population_grad(v, w, v_star, w_star)
            np.testing.assert_allclose(gv, 0, atol=1e-13)
            np.testing.assert_allclose(gw, 0, atol=1e-13)
            assert stefast.is_critical(v, w, v_star, w_star)
        assert cp.v_saddle @ v_star == pytest.approx(0, abs=1e-13)
        assert math.pi / 2 <= cp.theta_saddle < math.pi
        # (I + 11')^-1 ((1 - 2 theta/pi) I + 11') v*, the defining formula
        c = 1 - 2 * cp.theta_saddle / math.pi
        M = np.eye(m) + np.ones((m, m))
        np.testing.assert_allclose(
            cp.v_saddle, np.linalg.solve(M, (c * np.eye(m) + np.ones((m, m))) @ v_star), atol=1e-13)
        # global minimiser has f = 0, the spurious one f > 0 and is a local min in w
        assert stefast.population_loss(cp.v_spurious, -w_star, v_star, w_star) > 0
        assert stefast.population_loss(cp.v_spurious, _w_at_angle(w_star, 3.0, 1.0, rng),
                                       v_star, w_star) > \
            stefast.population_loss(cp.v_spurious, -w_star, v_star, w_star)
        # not critical: moved off the saddle angle, or v perturbed
        assert not stefast.is_critical(cp.v_saddle, _w_at_angle(w_star, 1.0, 1.0, rng),
                                       v_star, w_star)
        assert not stefast.is_critical(v_star + 1e-3, w_star, v_star, w_star)


def test_no_spurious_points_when_condition_fails():
    v_star = np.array([1.0, 1.0, 1.0])  # (1'v*)^2 = 9 >= 2 * 3
    cp = stefast.critical_points(v_star)
    assert not cp.spurious_exists
    assert np.all(np.isnan(cp.v_spurious)) and np.isnan(cp.theta_saddle)
    # at theta = pi, df/dv = 0 gives v'v* > 0: moving w lowers f, so not critical
    v_pi = 2 * v_star.sum() / 4 - v_star
    assert not stefast.is_critical(v_pi, [-1.0, 0.0], v_star, [1.0, 0.0])
    batch = stefast.critical_points([[1.0, 1.0, 1.0], [1.0, -1.0, 0.5]])
    np.testing.assert_array_equal(batch.spurious_exists, [False, True])


def test_lemmas_6_8_9_vanishing_at_critical_points():
    rng = np.random.default_rng(302)
    for v_star in _spurious_teachers():
        m, n = v_star.size, 4
        w_star = rng.uniform(0.5, 2) * rng.standard_normal(n)
        cp = stefast.critical_points(v_star)
        points = {
            "global": (v_star, 1.5 * w_star),
            "spurious": (cp.v_spurious, -0.4 * w_star),
            "saddle": (cp.v_saddle, _w_at_angle(w_star, cp.theta_saddle, 0.8, rng)),
        }
        for site, (v, w) in points.items():
            for ste in ("relu", "clipped_relu"):  # Lemmas 6 and 8
                gw = stefast.expected_coarse_grad(v, w, v_star, w_star, ste=ste).grad_w
                np.testing.assert_allclose(gw, 0, atol=1e-13, err_msg=f"{ste} {site}")
        v, w = points["spurious"]
        gw = stefast.expected_coarse_grad(v, w, v_star, w_star, ste="identity").grad_w
        lemma9 = 2 * (m - 1) * v_star.sum() ** 2 / (math.sqrt(2 * math.pi) * (m + 1) ** 2)
        assert np.linalg.norm(gw) == pytest.approx(lemma9, rel=1e-12)
        assert stefast.identity_spurious_grad_norm(v_star) == pytest.approx(lemma9, rel=1e-14)
        assert lemma9 > 0


def test_ste_report_reproduces_the_paper():
    reports = {ste: stefast.ste_report(ste, m=4, n=3, rng=5, n_theta=9) for ste in stefast.STES}
    for ste, rep in reports.items():
        assert rep.descent and rep.cosine_min > 0 and rep.cosine_median >= rep.cosine_min
        assert rep.vanishes_at("global")
        assert rep.n_points == 9 * 3 * 4
    for ste in ("relu", "clipped_relu"):
        assert reports[ste].vanishes_at("spurious") and reports[ste].vanishes_at("saddle")
    assert not reports["identity"].vanishes_at("spurious")
    text = str(reports["identity"])
    assert text.startswith("### STE report: `identity`") and "| **no** (max norm" in text
    # a callable with breakpoints gives the same card as its named twin
    fn, bps = WINDOWS["clipped_relu"]
    rep = stefast.ste_report(fn, m=4, n=3, rng=5, n_theta=9, breakpoints=bps)
    named = reports["clipped_relu"]
    assert rep.cosine_min == pytest.approx(named.cosine_min, rel=1e-8)
    assert rep.vanishes_at("spurious") and rep.descent
    # m = 1: no spurious minimisers exist
    assert stefast.ste_report("relu", m=1, n=2, rng=0, n_theta=3).vanishes_at("spurious") is None


# --------------------------------------------------------------------------
# vectorisation, the one-point fast path, inputs
# --------------------------------------------------------------------------


def _random_batch(rng, shape, m, n):
    v = rng.standard_normal(shape + (m,))
    w = rng.standard_normal(shape + (n,)) * rng.uniform(0.2, 3, shape + (1,))
    w[0, 0] = 0.0  # w = 0
    v_star, w_star = rng.standard_normal(m), 1.7 * rng.standard_normal(n)
    w[0, 1] = 2 * w_star  # theta = 0
    w[1, 0] = -w_star  # theta = pi
    return v, w, v_star, w_star


@pytest.mark.parametrize("ste", stefast.STES)
def test_vectorised_equals_loop(ste):
    rng = np.random.default_rng(400)
    v, w, v_star, w_star = _random_batch(rng, (3, 4), 5, 3)
    loss = stefast.population_loss(v, w, v_star, w_star)
    grad = stefast.population_grad(v, w, v_star, w_star)
    coarse = stefast.expected_coarse_grad(v, w, v_star, w_star, ste=ste)
    inner = stefast.coarse_grad_inner(v, w, v_star, w_star, ste=ste)
    assert loss.shape == (3, 4) and coarse.grad_w.shape == (3, 4, 3)
    for i in np.ndindex(3, 4):
        args = (v[i], w[i], v_star, w_star)
        assert loss[i] == pytest.approx(stefast.population_loss(*args), rel=1e-14, abs=1e-15)
        for got, one in ((grad, stefast.population_grad(*args)),
                         (coarse, stefast.expected_coarse_grad(*args, ste=ste))):
            np.testing.assert_allclose(got.grad_v[i], one.grad_v, rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(got.grad_w[i], one.grad_w, rtol=1e-13, atol=1e-15)
        assert inner[i] == pytest.approx(stefast.coarse_grad_inner(*args, ste=ste),
                                         rel=1e-12, abs=1e-15)


def test_one_point_fast_path_equals_general_path():
    """1-d float64 inputs take the C route (stefast._core); a (1, k) batch takes the NumPy one."""
    rng = np.random.default_rng(401)
    for n in (1, 2, 5):
        v, w, v_star, w_star = _random_batch(rng, (2, 3), 4, n) if n > 1 else (
            rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 1)),
            rng.standard_normal(4), rng.standard_normal(1))
        for i in np.ndindex(2, 3):
            args = (v[i], w[i], v_star, w_star)
            batch = (v[i][None], w[i], v_star, w_star)
            assert stefast.population_loss(*args) == pytest.approx(
                stefast.population_loss(*batch)[0], rel=1e-14, abs=1e-16)
            pairs = [(stefast.population_grad(*args), stefast.population_grad(*batch))]
            pairs += [(stefast.expected_coarse_grad(*args, ste=s),
                       stefast.expected_coarse_grad(*batch, ste=s)) for s in stefast.STES]
            for one, many in pairs:
                np.testing.assert_allclose(one.grad_v, many.grad_v[0], rtol=1e-13, atol=1e-15)
                np.testing.assert_allclose(one.grad_w, many.grad_w[0], rtol=1e-13, atol=1e-15)


EPS = float(np.finfo(np.float64).eps)


def _rounding_scales(v, w, v_star, w_star):
    """The size of the terms each one-point result is summed from, with the
    conditioning of the plane of w and w* (e_perp carries errors of order
    eps / sin theta): two correct evaluations that round differently agree
    to a few eps times this, and a wrong term misses by far more."""
    geo = geometry(w[None], w_star[None])
    s, sin, zero_w = float(geo.s[0]), float(geo.sin[0]), bool(geo.zero_w[0])
    cond = 1.0 if sin == 0.0 else 1.0 + 1.0 / sin
    nv, nvs = math.hypot(*v), math.hypot(*v_star)  # without overflow of the squares
    d = v - v_star
    nd, sv, svs, sd = math.hypot(*d), np.abs(v).sum(), np.abs(v_star).sum(), np.abs(d).sum()

    def coarse(nv, nvs, sv, svs):  # |coefficients| <= 2 phi(0)
        if zero_w:
            return PHI0 * nv * nvs
        return 2.0 * PHI0 * (nv * nv + sv * sv + nv * nvs + sv * svs) * cond

    # coarse_grad_cosine works on (v, v*) scaled by a power of two (exact)
    top = max(np.abs(v).max(), np.abs(v_star).max())
    t = 1.0 if top == 0.0 else 2.0 ** -math.frexp(top)[1]
    gw = stefast.expected_coarse_grad(v[None] * t, w, v_star * t, w_star).grad_w[0]
    gw_norm = math.hypot(*gw)
    return dict(
        loss=(nvs * nvs + svs * svs) / 8 if zero_w else (nd * nd + sd * sd) / 8 + nv * nvs / 2,
        grad_v=0.0 if zero_w else (np.abs(d).max() + sd) / 4 + np.abs(v_star).max() / 2,
        population_grad_w=0.0 if zero_w else nv * nvs / (2.0 * math.pi * s) * cond,
        coarse_grad_w=coarse(nv, nvs, sv, svs),
        cosine=coarse(nv * t, nvs * t, sv * t, svs * t) / gw_norm if gw_norm > 0 else 1.0)


def _one_point_cases(v, w, v_star, w_star):
    """(label, fast path result or None, general path result, rounding scale of each part)."""
    batch = (v[None], w, v_star, w_star)  # a batch of one: the general path
    sc = _rounding_scales(v, w, v_star, w_star)
    yield ("population_loss", _core.population_loss_point(v, w, v_star, w_star),
           (stefast.population_loss(*batch)[0],), (sc["loss"],))
    g = stefast.population_grad(*batch)
    yield ("population_grad", _core.population_grad_point(v, w, v_star, w_star),
           (g.grad_v[0], g.grad_w[0]), (sc["grad_v"], sc["population_grad_w"]))
    for ste, code in _core.STE_CODES.items():
        g = stefast.expected_coarse_grad(*batch, ste=ste)
        yield (f"expected_coarse_grad {ste}",
               _core.expected_coarse_grad_point(v, w, v_star, w_star, code),
               (g.grad_v[0], g.grad_w[0]), (sc["grad_v"], sc["coarse_grad_w"]))
        yield (f"coarse_grad_cosine {ste}",
               _core.coarse_grad_cosine_point(v, w, v_star, w_star, code),
               (stefast.coarse_grad_cosine(*batch, ste=ste)[0],), (sc["cosine"],))


def test_one_point_fast_path_agrees_with_the_general_path_to_rounding():
    """The C route gives the NumPy route's results to 4 eps of the terms'
    size (measured: under 1 here), at every scale, at w = 0 and at the snapped
    angles; it leaves a valid point to the general path only where a result
    overflows."""
    taken = total = 0
    for v, w, v_star, w_star in population_points(np.random.default_rng(404)):
        with np.errstate(over="ignore", invalid="ignore"):  # the general path's overflows
            cases = list(_one_point_cases(v, w, v_star, w_star))
        for label, fast, general, scales in cases:
            total += 1
            finite = all(np.all(np.isfinite(x)) for x in general)
            where = f"{label} at v={v!r}, w={w!r}, v*={v_star!r}, w*={w_star!r}"
            assert (fast is not None) == finite, where
            if fast is None:
                continue
            taken += 1
            fast = fast if isinstance(fast, tuple) else (fast,)
            for got, want, scale in zip(fast, general, scales):
                assert np.shape(got) == np.shape(want) and np.asarray(got).dtype == np.float64
                assert np.max(np.abs(got - want), initial=0.0) <= 4 * EPS * scale, where
    assert taken > 0.9 * total, (taken, total)


def test_public_one_point_calls_return_the_fast_path_results():
    rng = np.random.default_rng(405)
    v, w, v_star, w_star = (rng.standard_normal(k) for k in (4, 4, 4, 4))
    args = (v, w, v_star, w_star)
    loss = stefast.population_loss(*args)
    assert type(loss) is np.float64 and loss == _core.population_loss_point(*args)
    for got, fast in [(stefast.population_grad(*args), _core.population_grad_point(*args))] + [
            (stefast.expected_coarse_grad(*args, ste=ste),
             _core.expected_coarse_grad_point(*args, code))
            for ste, code in _core.STE_CODES.items()]:
        assert type(got) is stefast.PopulationGrad
        np.testing.assert_array_equal(got.grad_v, fast[0])
        np.testing.assert_array_equal(got.grad_w, fast[1])
    for ste, code in _core.STE_CODES.items():
        c = stefast.coarse_grad_cosine(*args, ste=ste)
        assert type(c) is np.float64 and c == _core.coarse_grad_cosine_point(*args, code)
    # a registry window equal to a named one is that STE, on the fast path too
    np.testing.assert_array_equal(
        stefast.expected_coarse_grad(*args, ste=S.named("clipped_relu")).grad_w,
        _core.expected_coarse_grad_point(*args, _core.STE_CODES["clipped_relu"])[1])


def _fast_results(v, w, v_star, w_star):
    code = _core.STE_CODES["clipped_relu"]
    return [_core.population_loss_point(v, w, v_star, w_star),
            _core.population_grad_point(v, w, v_star, w_star),
            _core.expected_coarse_grad_point(v, w, v_star, w_star, code),
            _core.coarse_grad_cosine_point(v, w, v_star, w_star, code)]


def test_one_point_fast_path_leaves_every_other_input_to_the_general_path():
    rng = np.random.default_rng(406)
    good = [rng.standard_normal(k) for k in (3, 4, 3, 4)]
    assert all(r is not None for r in _fast_results(*good))
    for k in range(4):
        for name, a in layouts(good[k]):
            got = _fast_results(*good[:k], a, *good[k + 1:])
            # read-only and contiguous copies (1-d Fortran order is C order) are as
            # good as the original; strided and misaligned views are not
            assert all((r is None) == (name not in ("c", "fortran", "readonly"))
                       for r in got), name
        other = [good[k].tolist(), good[k].astype(np.float32), good[k].astype(">f8"),
                 good[k][None], good[k][:-1], good[k].view(type("Sub", (np.ndarray,), {}))]
        for a in other:
            assert all(r is None for r in _fast_results(*good[:k], a, *good[k + 1:]))
    big = [rng.standard_normal(k) for k in (3, _core.ONE_POINT_MAX_N + 1) * 2]
    assert all(r is None for r in _fast_results(*big))
    edge = [rng.standard_normal(k) for k in (3, _core.ONE_POINT_MAX_N) * 2]
    assert all(r is not None for r in _fast_results(*edge))
    long_v = [rng.standard_normal(k) for k in (5 * _core.ONE_POINT_MAX_N, 4) * 2]  # m is free
    assert all(r is not None for r in _fast_results(*long_v))
    # only named STEs (or registry windows equal to one) without breakpoints
    assert analytic._named_code("relu", None) == _core.STE_CODES["relu"]
    assert analytic._named_code(S.named("hardtanh"), None) == _core.STE_CODES["hardtanh"]
    for ste, bp in ((S.approx_sign(), None), (WINDOWS["relu"][0], None), ("relu", [0.0]),
                    ("tanh", None), (S.window(0.0, 2.0), None)):
        assert analytic._named_code(ste, bp) is None


@pytest.mark.parametrize("func", [stefast.population_loss, stefast.population_grad,
                                  stefast.expected_coarse_grad, stefast.coarse_grad_cosine])
def test_one_point_arrays_with_nan_inf_or_zero_w_star_raise_as_lists_do(func):
    for name, *args in invalid_population_points():
        assert all(r is None for r in _fast_results(*args))
        with pytest.raises(ValueError) as arrays:
            func(*args)
        with pytest.raises(ValueError) as lists:  # lists never take the fast path
            func(*(a.tolist() for a in args))
        assert str(arrays.value) == str(lists.value)
        assert str(arrays.value).startswith(name + " ")


def test_batch_axes_broadcast_across_arguments():
    rng = np.random.default_rng(402)
    v = rng.standard_normal((4, 1, 3))
    w = rng.standard_normal((5, 2))
    v_star = rng.standard_normal((1, 5, 3))
    w_star = rng.standard_normal(2)
    gv, gw = stefast.expected_coarse_grad(v, w, v_star, w_star, ste="clipped_relu")
    assert gv.shape == (4, 5, 3) and gw.shape == (4, 5, 2)
    one = stefast.expected_coarse_grad(v[2, 0], w[3], v_star[0, 3], w_star, ste="clipped_relu")
    np.testing.assert_allclose(gw[2, 3], one.grad_w, rtol=1e-13)


def test_inputs_are_not_modified_and_other_dtypes_work():
    rng = np.random.default_rng(403)
    args = [rng.standard_normal(3), rng.standard_normal(2), rng.standard_normal(3),
            rng.standard_normal(2)]
    copies = [a.copy() for a in args]
    stefast.expected_coarse_grad(*args, ste="hardtanh")
    stefast.population_loss(*args)
    for a, c in zip(args, copies):
        np.testing.assert_array_equal(a, c)
    f64 = stefast.expected_coarse_grad(*args).grad_w
    f32 = stefast.expected_coarse_grad(*(a.astype(np.float32) for a in args)).grad_w
    assert f32.dtype == np.float64  # float32 input is computed exactly in float64
    np.testing.assert_allclose(f32, f64, rtol=1e-6)
    ints = stefast.population_loss([1, 2], [1, 0], [2, 1], [0, 1])
    assert ints == pytest.approx(stefast.population_loss([1.0, 2.0], [1.0, 0.0],
                                                         [2.0, 1.0], [0.0, 1.0]))


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------


GOOD = dict(v=[1.0, 2.0], w=[1.0, 0.0, 0.0], v_star=[0.5, 1.0], w_star=[0.0, 1.0, 0.0])


@pytest.mark.parametrize("func", [stefast.population_loss, stefast.population_grad,
                                  stefast.expected_coarse_grad, stefast.is_critical])
@pytest.mark.parametrize("bad, match", [
    (dict(v_star=[1.0, 2.0, 3.0]), "v_star has length 3 but v has length 2"),
    (dict(w_star=[1.0, 0.0]), "w_star has length 2 but w has length 3"),
    (dict(w_star=[0.0, 0.0, 0.0]), "w_star must be a nonzero vector"),
    (dict(v=[1.0, np.nan]), "v must be finite"),
    (dict(w=[np.inf, 0.0, 0.0]), "w must be finite"),
    (dict(v=1.0), "v must be a vector"),
    (dict(w=np.zeros((2, 0))), "w must have length >= 1"),
    (dict(v=np.ones((2, 2)), w=np.ones((3, 3))), "batch.*do not broadcast"),
])
def test_bad_inputs_raise_value_error_naming_the_argument(func, bad, match):
    with pytest.raises(ValueError, match=match):
        func(**{**GOOD, **bad})


def test_bad_ste_raises():
    with pytest.raises(ValueError, match="ste must be one of"):
        stefast.expected_coarse_grad(**GOOD, ste="tanh")
    with pytest.raises(TypeError, match="ste must be one of .* or a callable"):
        stefast.expected_coarse_grad(**GOOD, ste=3)
    with pytest.raises(ValueError, match="breakpoints is only used with a callable"):
        stefast.expected_coarse_grad(**GOOD, ste="relu", breakpoints=[0.0])
    with pytest.raises(ValueError, match="ste callable returned shape"):
        stefast.expected_coarse_grad(**GOOD, ste=lambda x: 1.0)
    with pytest.raises(ValueError, match="ste callable returned shape"):
        stefast.expected_coarse_grad(**GOOD, ste=lambda x: np.ones(x.size + 1))
    with pytest.raises(TypeError, match="ste callable must return real numbers"):
        stefast.expected_coarse_grad(**GOOD, ste=lambda x: np.full(x.shape, 1j))
    with pytest.raises(ValueError, match="ste callable returned inf or NaN"):
        stefast.expected_coarse_grad(**GOOD, ste=lambda x: np.full(x.shape, np.inf))
    with pytest.raises(TypeError, match="ste callable failed"):
        stefast.expected_coarse_grad(**GOOD, ste=lambda x: undefined_name)  # noqa: F821
    with pytest.raises(ValueError, match="breakpoints must be finite"):
        stefast.expected_coarse_grad(**GOOD, ste=lambda x: x * 0 + 1, breakpoints=[np.nan])
    with pytest.raises(TypeError, match="v must have a real numeric dtype"):
        stefast.population_loss(**{**GOOD, "v": ["a", "b"]})


def test_angle_and_report_argument_errors():
    with pytest.raises(ValueError, match="w must be a nonzero vector"):
        stefast.angle([0.0, 0.0], [1.0, 0.0])
    with pytest.raises(ValueError, match="n must be an integer >= 2"):
        stefast.ste_report("relu", n=1)
    with pytest.raises(ValueError, match="w_norms must be"):
        stefast.ste_report("relu", w_norms=[1.0, -1.0])
    with pytest.raises(ValueError, match="atol must be"):
        stefast.is_critical(**GOOD, atol=-1.0)
