"""Coarse gradient descent ensembles in C (stefast.descent_ensemble), the
empirical and sampled modes of coarse_gradient_descent built on them, and
their NumPy twin."""

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import stefast
from stefast import reference as ref
from util import model_problem

V_STAR, W_STAR = np.array([1.0, 2.0, -0.5]), np.array([1.0, 0.0, 0.0, 0.0])

# the kinds of run data: given, drawn, mini-batched, online, with label noise
MODES = {
    "given": lambda Z: dict(Z=Z),
    "given-minibatch": lambda Z: dict(Z=Z, batch_size=7),
    "given-labels": lambda Z: dict(
        Z=Z, y=np.random.default_rng(3).standard_normal(Z.shape[:2]).astype(Z.dtype)),
    "drawn": lambda Z: dict(n_train=30),
    "drawn-minibatch": lambda Z: dict(n_train=30, batch_size=8),
    "drawn-noise": lambda Z: dict(n_train=30, label_noise=0.3),
    "online": lambda Z: dict(batch_size=12),
    "online-noise": lambda Z: dict(batch_size=12, label_noise=0.3),
}


def _starts(R, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((R, 3)).astype(dtype), rng.standard_normal((R, 4)).astype(dtype))


def _run(fn, R=5, dtype=np.float64, mode="drawn", **kw):
    v0, w0 = _starts(R, dtype)
    Z = np.random.default_rng(1).standard_normal((R, 30, 3, 4)).astype(dtype)
    args = dict(ste="relu", lr=0.1, steps=25, rng=4, record_every=5)
    args.update(MODES[mode](Z))
    args.update(kw)
    return fn(v0, w0, V_STAR.astype(dtype), W_STAR.astype(dtype), **args)


def _same(a, b):
    for name in ("v", "w", "steps_taken", "final_loss", "loss"):
        assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", MODES)
def test_matches_the_numpy_twin(mode, dtype):
    fast = _run(stefast.descent_ensemble, dtype=dtype, mode=mode)
    slow = _run(ref.descent_ensemble, dtype=dtype, mode=mode)
    assert fast.v.dtype == np.dtype(dtype)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    assert_allclose(fast.v, slow.v, rtol=tol, atol=tol)
    assert_allclose(fast.w, slow.w, rtol=tol, atol=tol)
    assert_allclose(fast.loss, slow.loss, rtol=tol, atol=tol)
    assert_array_equal(fast.steps_taken, slow.steps_taken)
    assert_array_equal(fast.status, slow.status)


@pytest.mark.parametrize("mode", MODES)
def test_bits_do_not_depend_on_threads_or_on_splitting_the_runs(mode):
    one = _run(stefast.descent_ensemble, R=6, mode=mode, threads=1)
    two = _run(stefast.descent_ensemble, R=6, mode=mode, threads=2)
    _same(one, two)
    # runs 2..5 alone, numbered as in the whole ensemble
    v0, w0 = _starts(6)
    Z = np.random.default_rng(1).standard_normal((6, 30, 3, 4))
    data = MODES[mode](Z)
    part = {k: (v[2:] if isinstance(v, np.ndarray) else v) for k, v in data.items()}
    tail = stefast.descent_ensemble(v0[2:], w0[2:], V_STAR, W_STAR, ste="relu", lr=0.1,
                                    steps=25, rng=4, record_every=5, first_stream=2, **part)
    for name in ("v", "w", "final_loss", "loss"):
        assert_array_equal(getattr(tail, name), getattr(one, name)[2:], err_msg=name)


def test_drawn_training_sets_are_the_generators_streams():
    R, N, m, n = 3, 20, 3, 4
    drawn = _run(stefast.descent_ensemble, R=R, mode="drawn", n_train=N)
    Z = np.stack([stefast.standard_normals((N * m * n,), rng=4, stream=r).reshape(N, m, n)
                  for r in range(R)])
    given = _run(stefast.descent_ensemble, R=R, mode="given", Z=Z)
    _same(drawn, given)


def test_noisy_labels_are_the_teachers_plus_the_next_normals():
    R, N, m, n, sigma = 2, 30, 3, 4, 0.3
    noisy = _run(stefast.descent_ensemble, R=R, mode="drawn-noise", label_noise=sigma)
    Z, y = [], []
    for r in range(R):
        x = stefast.standard_normals((N * m * n + N,), rng=4, stream=r)
        Zr = x[:N * m * n].reshape(N, m, n)
        Z.append(Zr)
        y.append(stefast.forward(Zr, V_STAR, W_STAR) + sigma * x[N * m * n:])
    given = _run(stefast.descent_ensemble, R=R, mode="given", Z=np.stack(Z), y=np.stack(y))
    assert_allclose(noisy.v, given.v, rtol=1e-13)
    assert_allclose(noisy.w, given.w, rtol=1e-13)


@pytest.mark.parametrize("kw", [dict(), dict(batch_size=6, rng=5), dict(label_noise=0.2, rng=2)])
def test_empirical_mode_is_one_run_of_the_ensemble(kw):
    rng = np.random.default_rng(8)
    Z, v0, w0, _, _ = model_problem(rng, 25, 3, 4)
    tr = stefast.coarse_gradient_descent(v0, w0, V_STAR, W_STAR, lr=0.1, steps=40,
                                         mode="empirical", Z=Z, record_every=10, **kw)
    ens = stefast.descent_ensemble(v0[None], w0[None], V_STAR, W_STAR, lr=0.1, steps=40,
                                   Z=Z[None], record_every=10, **kw)
    assert_array_equal(tr.v_final, ens.v[0])
    assert_array_equal(tr.w_final, ens.w[0])
    assert_array_equal(tr.empirical_loss, ens.loss[0])
    assert_array_equal(tr.step, ens.record_step)
    # the recorded population quantities are the closed forms at the iterates
    assert_allclose(tr.f, stefast.population_loss(tr.v, tr.w, V_STAR, W_STAR), rtol=1e-14)
    assert_allclose(tr.theta, stefast.angle(tr.w, W_STAR), rtol=1e-14, atol=1e-15)


def test_full_batch_empirical_step_is_the_kernels_mean_gradient():
    rng = np.random.default_rng(9)
    Z, v0, w0, v_star, w_star = model_problem(rng, 40, 5, 6)
    tr = stefast.coarse_gradient_descent(v0, w0, v_star, w_star, ste="clipped_relu", lr=0.05,
                                         steps=1, mode="empirical", Z=Z)
    g = stefast.loss_and_grads(Z, v0, w0, v_star, w_star, ste="clipped_relu")
    assert_allclose(tr.v_final, v0 - 0.05 * g.grad_v, rtol=1e-14)
    assert_allclose(tr.w_final, w0 - 0.05 * g.grad_w, rtol=1e-14)
    assert tr.empirical_loss[0] == pytest.approx(float(g.loss), rel=1e-14)


def test_statuses():
    R = 6
    v0, w0 = _starts(R)
    # many fresh samples per step: close to population descent, which reaches the minimiser
    good = stefast.descent_ensemble(np.tile(V_STAR * 0.5, (R, 1)), np.tile([1.0, 0.5, 0, 0], (R, 1)),
                                    V_STAR, W_STAR, lr=0.2, steps=2000, batch_size=2000,
                                    rng=0, success_tol=0.05)
    assert good.counts()["global"] == R
    assert np.all(good.theta < 0.05)
    bad = stefast.descent_ensemble(v0, w0, V_STAR, W_STAR, lr=1e6, steps=200, n_train=10, rng=0)
    assert bad.counts()["diverged"] == R
    assert np.all(np.isnan(bad.final_loss)) and np.all(np.isnan(bad.f))
    short = stefast.descent_ensemble(v0, w0, V_STAR, W_STAR, lr=1e-4, steps=3, n_train=10, rng=0)
    assert short.counts()["max_steps"] == R and np.all(short.steps_taken == 3)
    # at the teacher with its own labels every coarse gradient is 0: stopped at step 0
    stop = stefast.descent_ensemble(np.tile(V_STAR, (2, 1)), np.tile(W_STAR, (2, 1)), V_STAR,
                                    W_STAR, lr=0.1, steps=50, n_train=10, tol=1e-12, rng=0)
    assert np.all(stop.steps_taken == 0) and stop.counts()["global"] == 2


def test_summary_only_keeps_no_curves():
    res = _run(stefast.descent_ensemble, record_every=None)
    assert res.loss is None and res.record_step is None and res.f_curve is None
    assert res.v.shape == (5, 3)


def test_per_run_teachers():
    R = 4
    v0, w0 = _starts(R)
    rng = np.random.default_rng(2)
    vs, ws = rng.standard_normal((R, 3)), rng.standard_normal((R, 4))
    res = stefast.descent_ensemble(v0, w0, vs, ws, lr=0.1, steps=20, n_train=15, rng=1)
    for r in range(R):
        one = stefast.descent_ensemble(v0[r:r + 1], w0[r:r + 1], vs[r], ws[r], lr=0.1, steps=20,
                                       n_train=15, rng=1, first_stream=r)
        assert_array_equal(one.v[0], res.v[r])


@pytest.mark.parametrize("bad, match", [
    (dict(v0=np.ones(3)), "v0 and w0"),
    (dict(w0=np.ones((2, 4))), "v0 and w0"),
    (dict(v_star=np.ones(4)), "v_star"),
    (dict(v_star=np.ones((5, 3))), "v_star and w_star"),
    (dict(Z=np.ones((5, 4, 3, 4)), n_train=4), "either Z"),
    (dict(y=np.ones((5, 3))), "needs Z"),
    (dict(n_train=None, batch_size=None), "batch_size"),
    (dict(lr=0.0), "lr"),
    (dict(steps=-1), "steps"),
    (dict(ste="bogus"), "ste"),
    (dict(label_noise=-1.0), "label_noise"),
    (dict(w_star=np.zeros(4)), "w_star"),
    (dict(v0=np.full((5, 3), np.nan)), "finite"),
])
def test_bad_input_is_named(bad, match):
    v0, w0 = _starts(5)
    args = dict(v0=v0, w0=w0, v_star=V_STAR, w_star=W_STAR, lr=0.1, steps=5, n_train=4)
    args.update(bad)
    with pytest.raises((ValueError, TypeError), match=match):
        stefast.descent_ensemble(args.pop("v0"), args.pop("w0"), args.pop("v_star"),
                                 args.pop("w_star"), **args)


def test_inputs_are_not_modified():
    v0, w0 = _starts(3)
    Z = np.random.default_rng(1).standard_normal((3, 10, 3, 4))
    copies = [a.copy() for a in (v0, w0, Z)]
    stefast.descent_ensemble(v0, w0, V_STAR, W_STAR, lr=0.1, steps=5, Z=Z)
    for a, b in zip((v0, w0, Z), copies):
        assert_array_equal(a, b)
