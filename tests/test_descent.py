"""Coarse gradient descent (Algorithm 1) and the paper's claims (docs/math.rst,
sections "Algorithm 1" and "The paper's claims")."""

import math

import numpy as np
import pytest

import stefast
from stefast.experiments import claims


def _slow_loop(v, w, v_star, w_star, ste, lr, steps):
    """Algorithm 1 written directly on the public closed forms."""
    for _ in range(steps):
        gv, gw = stefast.expected_coarse_grad(v, w, v_star, w_star, ste)
        v, w = v - lr * gv, w - lr * gw
    return v, w


@pytest.mark.parametrize("ste", ["identity", "relu", "clipped_relu", "hardtanh"])
def test_population_matches_step_by_step_closed_forms(ste):
    rng = np.random.default_rng(10)
    v_star, w_star, v0, w0 = (rng.standard_normal(k) for k in (5, 4, 5, 4))
    tr = stefast.coarse_gradient_descent(v0, w0, v_star, w_star, ste=ste, lr=0.05, steps=150)
    v, w = _slow_loop(v0, w0, v_star, w_star, ste, 0.05, 150)
    np.testing.assert_allclose(tr.v_final, v, rtol=0, atol=1e-12)
    np.testing.assert_allclose(tr.w_final, w, rtol=0, atol=1e-12)
    np.testing.assert_allclose(tr.v[-1], v, atol=1e-12)
    assert tr.f[-1] == pytest.approx(float(stefast.population_loss(v, w, v_star, w_star)), abs=1e-12)
    assert tr.inner[-1] == pytest.approx(float(stefast.coarse_grad_inner(v, w, v_star, w_star, ste)),
                                         rel=1e-9, abs=1e-14)
    assert tr.step.tolist() == list(range(151))


def test_callable_ste_matches_named():
    rng = np.random.default_rng(11)
    v_star, w_star, v0, w0 = (rng.standard_normal(k) for k in (4, 3, 4, 3))

    def relu_window(x):
        return (x > 0).astype(float)
    a = stefast.coarse_gradient_descent(v0, w0, v_star, w_star, ste="relu", lr=0.05, steps=30)
    b = stefast.coarse_gradient_descent(v0, w0, v_star, w_star, ste=relu_window, lr=0.05,
                                        steps=30, breakpoints=[0.0])
    np.testing.assert_allclose(b.w_final, a.w_final, rtol=1e-9, atol=1e-12)


def test_inputs_unmodified_and_recording():
    rng = np.random.default_rng(12)
    arrs = [rng.standard_normal(k) for k in (6, 5, 6, 5)]
    copies = [a.copy() for a in arrs]
    tr = stefast.coarse_gradient_descent(*arrs, lr=0.05, steps=25, record_every=10)
    for a, c in zip(arrs, copies):
        np.testing.assert_array_equal(a, c)
    assert tr.step.tolist() == [0, 10, 20, 25]
    assert tr.v.shape == (4, 6) and tr.w.shape == (4, 5)


def test_tol_stops_early():
    v_star, w_star = np.array([1.0, 2.0, -0.5]), np.array([1.0, 0.0, 0.0])
    tr = stefast.coarse_gradient_descent(v_star, w_star, v_star, w_star, lr=0.1, steps=100, tol=1e-12)
    assert tr.converged and tr.steps_taken == 0 and len(tr) == 1


@pytest.mark.parametrize("kw, exc", [
    (dict(lr=0.0, steps=5), ValueError),
    (dict(lr=0.1, steps=-1), ValueError),
    (dict(lr=0.1, steps=5, ste="nope"), ValueError),
    (dict(lr=0.1, steps=5, mode="sampled"), ValueError),
    (dict(lr=0.1, steps=5, mode="bogus"), ValueError),
    (dict(lr=0.1, steps=5, batch_size=10), ValueError),
])
def test_bad_arguments(kw, exc):
    x = np.ones(3)
    with pytest.raises(exc):
        stefast.coarse_gradient_descent(x, x, x, x, **kw)


def test_long_population_run_at_m_n_100():
    # the speed of this path is measured in bench/, not here; this checks that
    # a long run at m = n = 100 completes and descends
    rng = np.random.default_rng(0)
    v_star, w_star, v0, w0 = (rng.standard_normal(100) for _ in range(4))
    tr = stefast.coarse_gradient_descent(v0, w0, v_star, w_star, lr=0.005, steps=20000,
                                         record_every=100)
    assert tr.steps_taken == 20000 and tr.f[-1] < tr.f[0]


# ---- Theorem 1 -------------------------------------------------------------


@pytest.fixture(scope="module")
def t1():
    return claims.theorem1(m=10, n=10, lr=0.05, steps=2000, rng=0)


@pytest.mark.parametrize("ste", ["relu", "clipped_relu"])
def test_theorem1_monotone_and_critical(t1, ste):
    tr = t1.random[ste]
    # monotone up to float round-off only
    assert tr.max_increase() <= 64 * np.finfo(float).eps * (1 + tr.f[0])
    assert t1.monotone[ste]
    # converged to a critical point: the expected coarse gradient (and df/dv) vanish
    assert t1.final_grad_norm[ste] < 1e-6
    assert tr.grad_v_norm[-1] < 1e-6
    # f is not differentiable in w at theta = 0: the limit point there is the global minimiser
    if tr.theta[-1] < 1e-3:
        assert tr.f[-1] < 1e-6


def test_theorem1_identity_rises_near_spurious_minimiser(t1):
    assert abs(t1.v_star.sum()) > 0 and t1.m > 1
    sp = t1.spurious["identity"]
    assert t1.identity_rise > 0.1 * sp.f[0]  # a real rise, far above round-off
    # relu / clipped_relu started at the same point do not rise
    for ste in ("relu", "clipped_relu"):
        assert t1.spurious[ste].max_increase() <= 1e-12


def test_identity_norm_shrinks_at_spurious_rate():
    # Lemma 9: at the spurious minimiser |E[g_id]| = 2(m-1)(1'v*)^2/(sqrt(2 pi)(m+1)^2),
    # along w: |w| drops by lr times that per step while theta stays at pi.
    v_star = np.array([1.0, -0.5, 0.8, 0.3])
    w_star = np.array([0.0, 1.0, 0.0])
    cp = stefast.critical_points(v_star)
    lr = 0.01
    tr = stefast.coarse_gradient_descent(cp.v_spurious, -w_star, v_star, w_star, ste="identity",
                                         lr=lr, steps=5)
    rate = float(stefast.identity_spurious_grad_norm(v_star))
    np.testing.assert_allclose(np.diff(tr.w_norm), -lr * rate, rtol=1e-10)
    np.testing.assert_array_equal(tr.theta, math.pi)


# ---- Theorem 2 -------------------------------------------------------------


@pytest.mark.parametrize("seed", [1, 7])
def test_theorem2_converges_to_global_minimiser(seed):
    r = claims.theorem2(m=10, n=10, lr=0.1, steps=20000, rng=seed)
    assert all(r.conditions.values())
    for ste in ("relu", "clipped_relu"):
        assert r.theta_final[ste] < 1e-3, ste
        assert r.v_error[ste] < 1e-3, ste
        # (f need not be monotone here: |w| can shrink through the origin early on,
        # see the Theorem 2 section of the report; convergence is the claim tested)


def test_theorem2_start_meets_conditions():
    rng = np.random.default_rng(5)
    v_star, w_star = rng.standard_normal(7), rng.standard_normal(4)
    v0, w0 = claims.theorem2_start(v_star, w_star, theta0=1.0, rng=6)
    S = v_star.sum()
    assert v0 @ v_star > 0 and S * v0.sum() <= S * S
    assert float(stefast.angle(w0, w_star)) == pytest.approx(1.0, abs=1e-12)


# ---- Figure 1 --------------------------------------------------------------


def test_figure1_smooth_for_many_samples():
    r = claims.figure1(m=10, n=10, rng=2)
    assert r.max_jump[1000] < r.max_jump[10]
    assert r.max_jump[1000] < 0.1
    # with 1000 samples the curve follows the population loss along the same line
    e, p = r.empirical[1000], r.population[1000]
    assert np.max(np.abs(e - p)) < 0.5


def test_figure1_curve_is_the_kernels_loss_on_the_same_samples():
    # with the instance given, figure1's generator draws only the N samples
    rng = np.random.default_rng(12)
    m, n = 4, 3
    v_star, v0 = rng.standard_normal(m), rng.standard_normal(m)
    w_star, w0 = rng.standard_normal(n), rng.standard_normal(n)
    etas = np.array([0.0, 0.05, 0.3])
    r = claims.figure1(m=m, n=n, sample_counts=(10,), etas=etas, rng=7, v_star=v_star,
                       w_star=w_star, v0=v0, w0=w0)
    Z = np.random.default_rng(7).standard_normal((10, m, n))
    g = stefast.loss_and_grads(Z, v0, w0, v_star, w_star, ste="relu")
    for eta, got in zip(etas, r.empirical[10]):
        want = stefast.loss_and_grads(Z, v0 - eta * g.grad_v, w0 - eta * g.grad_w,
                                      v_star, w_star).loss
        assert got == pytest.approx(float(want), rel=1e-12, abs=1e-15)
        pop = stefast.population_loss(v0 - eta * g.grad_v, w0 - eta * g.grad_w, v_star, w_star)
        assert r.population[10][list(etas).index(eta)] == pytest.approx(float(pop), rel=1e-12)


# ---- sampled vs population --------------------------------------------------


def test_sampled_mode_approaches_population():
    r = claims.sampled_vs_population(m=6, n=5, lr=0.05, steps=150, batch_sizes=(4, 64, 1024),
                                      seeds=3, rng=3)
    d = [r.distance[B] for B in r.batch_sizes]
    # independent mini-batch noise: distance ~ 1/sqrt(B); allow a wide margin
    assert d[0] > d[1] > d[2]
    assert d[2] < d[0] / 4


def test_sampled_mode_is_seeded():
    rng = np.random.default_rng(4)
    v_star, w_star, v0, w0 = (rng.standard_normal(k) for k in (4, 3, 4, 3))
    kw = dict(ste="relu", lr=0.05, steps=20, mode="sampled", batch_size=32)
    a = stefast.coarse_gradient_descent(v0, w0, v_star, w_star, rng=9, **kw)
    b = stefast.coarse_gradient_descent(v0, w0, v_star, w_star, rng=9, **kw)
    np.testing.assert_array_equal(a.w_final, b.w_final)
    assert a.w.shape == (21, 3)
