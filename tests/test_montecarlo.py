"""Tests of stefast.monte_carlo: closed forms (written here, independently of
stefast.analytic), agreement of the three methods, standard errors, merge,
reproducibility, float32, errors, Ctrl-C."""

import _thread
import threading
import time

import numpy as np
import pytest

import stefast
import stefast.montecarlo as mcmod
from stefast import reference

SQ2PI = np.sqrt(2 * np.pi)


def phi(x):
    return np.exp(-0.5 * x * x) / SQ2PI


def Phi(x):
    from scipy.special import ndtr

    return ndtr(x)


# ---- closed forms: docs/math.rst, "Population loss" to "Expected coarse gradient" ----


def _geometry(w, w_star):
    wh, wsh = w / np.linalg.norm(w), w_star / np.linalg.norm(w_star)
    theta = np.arccos(np.clip(wh @ wsh, -1, 1))
    perp = wsh - (wh @ wsh) * wh
    e_perp = perp / np.linalg.norm(perp) if np.linalg.norm(perp) > 1e-12 else np.zeros_like(w)
    return wh, wsh, theta, e_perp


def exact(v, w, v_star, w_star, ste):
    """(f, df/dv, E[g_mu]) for identity / relu / clipped_relu (Lemmas 1, 4, 9, 7)."""
    m = v.size
    wh, wsh, theta, e_perp = _geometry(w, w_star)
    one = np.ones(m)
    I11 = np.eye(m) + np.outer(one, one)
    Ith = (1 - 2 * theta / np.pi) * np.eye(m) + np.outer(one, one)
    f = (v @ I11 @ v - 2 * v @ Ith @ v_star + v_star @ I11 @ v_star) / 8
    dfdv = I11 @ v / 4 - Ith @ v_star / 4
    vvs = v @ v_star
    h = v @ v + (one @ v) ** 2 - (one @ v) * (one @ v_star) + vvs
    if ste == "identity":
        g = (v @ v * wh - vvs * wsh) / SQ2PI
    elif ste == "relu":
        u = (wh + wsh) / np.linalg.norm(wh + wsh) if theta < np.pi - 1e-12 else np.zeros_like(w)
        g = h / (2 * SQ2PI) * wh - np.cos(theta / 2) * vvs / SQ2PI * u
    elif ste == "clipped_relu":
        a = 1 / np.linalg.norm(w)
        if theta < 1e-12:
            E1, E2 = phi(0) - phi(a), 0.0
        elif theta > np.pi - 1e-12:
            E1, E2 = 0.0, 0.0
        else:
            E1 = (phi(0) / 2 - phi(a) * Phi(a / np.tan(theta))
                  + np.cos(theta) * phi(0) * (Phi(a / np.sin(theta)) - 0.5))
            E2 = np.sin(theta) * phi(0) * (Phi(a / np.sin(theta)) - 0.5)
        g = 0.5 * h * (phi(0) - phi(a)) * wh - vvs * (E1 * wh + E2 * e_perp)
    else:
        raise AssertionError(ste)
    return f, dfdv, g


def _config(seed, m, n, w_norm):
    r = np.random.default_rng(seed)
    v, v_star = r.normal(size=m), r.normal(size=m)
    w, w_star = r.normal(size=n), r.normal(size=n)
    return v, w * (w_norm / np.linalg.norm(w)), v_star, w_star


CONFIGS = {"A": _config(100, 5, 7, 1.3), "B": _config(101, 3, 4, 0.6)}
METHODS = ("full", "projected", "conditional")
NS = 60_000


def assert_within_se(est, f, dfdv, g, k=5.0):
    for got, se, want, name in ((est.loss, est.loss_se, f, "loss"),
                                (est.grad_v, est.grad_v_se, dfdv, "grad_v"),
                                (est.grad_w, est.grad_w_se, g, "grad_w")):
        err = np.abs(np.asarray(got) - want)
        tol = k * np.asarray(se) + 1e-12
        assert np.all(err <= tol), f"{name}: |error| / se = {err / (np.asarray(se) + 1e-300)}"


@pytest.mark.parametrize("config", sorted(CONFIGS))
@pytest.mark.parametrize("ste", ["identity", "relu", "clipped_relu"])
@pytest.mark.parametrize("method", METHODS)
def test_closed_forms(method, ste, config):
    v, w, v_star, w_star = CONFIGS[config]
    est = stefast.monte_carlo(v, w, v_star, w_star, ste=ste, n_samples=NS, method=method,
                              rng=sum(map(ord, method + ste + config)))
    assert est.n_samples == NS and est.method == method and est.ste == ste
    assert_within_se(est, *exact(v, w, v_star, w_star, ste))


@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_hardtanh_methods_agree(config):
    v, w, v_star, w_star = CONFIGS[config]
    ests = [stefast.monte_carlo(v, w, v_star, w_star, ste="hardtanh", n_samples=NS,
                                method=meth, rng=i + 50) for i, meth in enumerate(METHODS)]
    for a in ests:
        for b in ests:
            se = np.sqrt(np.concatenate([[a.loss_se], a.grad_v_se, a.grad_w_se]) ** 2
                         + np.concatenate([[b.loss_se], b.grad_v_se, b.grad_w_se]) ** 2)
            diff = np.concatenate([[a.loss - b.loss], a.grad_v - b.grad_v, a.grad_w - b.grad_w])
            assert np.all(np.abs(diff) <= 5 * se + 1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", ["parallel", "antiparallel", "w_zero"])
def test_degenerate_geometry(method, case):
    # one basis vector (theta in {0, pi}) or w = 0: Q has a single row
    r = np.random.default_rng(3)
    v, v_star, w_star = r.normal(size=4), r.normal(size=4), r.normal(size=6)
    w = {"parallel": 0.7 * w_star, "antiparallel": -2.0 * w_star, "w_zero": 0 * w_star}[case]
    est = stefast.monte_carlo(v, w, v_star, w_star, ste="relu", n_samples=NS, method=method, rng=9)
    if case == "w_zero":
        # Zw = 0: prediction 0, relu window empty: loss = v*'(I+11')v*/8, grads 0
        f = v_star @ (np.eye(4) + 1) @ v_star / 8
        assert_within_se(est, f, np.zeros(4), np.zeros(6))
    else:
        assert_within_se(est, *exact(v, w, v_star, w_star, "relu"))


@pytest.mark.parametrize("method", METHODS)
def test_se_shrinks_like_one_over_sqrt_n(method):
    v, w, v_star, w_star = CONFIGS["A"]
    small = stefast.monte_carlo(v, w, v_star, w_star, n_samples=5_000, method=method, rng=1)
    big = stefast.monte_carlo(v, w, v_star, w_star, n_samples=80_000, method=method, rng=2)
    ratio = np.concatenate([[big.loss_se], big.grad_v_se, big.grad_w_se]) / \
        np.concatenate([[small.loss_se], small.grad_v_se, small.grad_w_se])
    keep = np.isfinite(ratio) & (np.concatenate([[small.loss_se], small.grad_v_se,
                                                 small.grad_w_se]) > 1e-12)
    np.testing.assert_allclose(ratio[keep], 0.25, rtol=0.15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", METHODS)
def test_merge_of_halves_equals_whole(method, dtype):
    v, w, v_star, w_star = CONFIGS["A"]
    kw = dict(method=method, rng=21, dtype=dtype)
    whole = stefast.monte_carlo(v, w, v_star, w_star, n_samples=6000, **kw)
    for cut in (3000, 1000):  # two halves, and an unequal split
        a = stefast.monte_carlo(v, w, v_star, w_star, n_samples=cut, **kw)
        b = stefast.monte_carlo(v, w, v_star, w_star, n_samples=6000 - cut, start=cut, **kw)
        merged = a.merge(b)
        assert merged.n_samples == 6000
        for name in ("loss", "grad_v", "grad_w", "loss_se", "grad_v_se", "grad_w_se"):
            np.testing.assert_allclose(getattr(merged, name), getattr(whole, name),
                                       rtol=1e-10, atol=1e-14, err_msg=name)
    with pytest.raises(ValueError, match="share samples"):
        a.merge(a)
    with pytest.raises(ValueError, match="share samples"):
        whole.merge(b)


def test_merge_rejects_mismatches():
    v, w, v_star, w_star = CONFIGS["A"]
    a = stefast.monte_carlo(v, w, v_star, w_star, n_samples=100, rng=1)
    with pytest.raises(ValueError, match="method"):
        a.merge(stefast.monte_carlo(v, w, v_star, w_star, n_samples=100, rng=2,
                                    method="projected"))
    with pytest.raises(ValueError, match="ste"):
        a.merge(stefast.monte_carlo(v, w, v_star, w_star, n_samples=100, rng=2, ste="identity"))
    with pytest.raises(ValueError, match="shapes"):
        a.merge(stefast.monte_carlo(v[:2], w, v_star[:2], w_star, n_samples=100, rng=2))
    with pytest.raises(TypeError, match="MCEstimate"):
        a.merge(3)
    # independent seeds merge fine and shrink the standard error
    b = stefast.monte_carlo(v, w, v_star, w_star, n_samples=100, rng=2)
    assert a.merge(b).loss_se < max(a.loss_se, b.loss_se)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("method", METHODS)
def test_bitwise_identical_for_any_threads_and_call_size(method, dtype, monkeypatch):
    v, w, v_star, w_star = CONFIGS["A"]
    kw = dict(n_samples=20_000 + 77, method=method, rng=5, dtype=dtype, ste="clipped_relu")
    runs = [stefast.monte_carlo(v, w, v_star, w_star, threads=t, **kw) for t in (1, 2, 3)]
    monkeypatch.setattr(mcmod, "_CALL_WORK", 1000)  # many small C calls
    runs.append(stefast.monte_carlo(v, w, v_star, w_star, threads=2, **kw))
    for r in runs[1:]:
        for name in ("loss", "grad_v", "grad_w", "loss_se", "grad_v_se", "grad_w_se", "m2"):
            assert np.array_equal(getattr(r, name), getattr(runs[0], name)), name


def test_seed_semantics():
    v, w, v_star, w_star = CONFIGS["B"]
    run = lambda rng: stefast.monte_carlo(v, w, v_star, w_star, n_samples=500, rng=rng)
    assert run(4).loss == run(4).loss
    assert run(np.random.SeedSequence(4)).loss == run(np.random.SeedSequence(4)).loss
    assert run(4).loss != run(5).loss
    gen = np.random.default_rng(4)
    assert run(gen).loss != run(gen).loss  # a Generator advances
    assert run(np.random.default_rng(4)).loss == run(4).loss


def test_float32_samples_double_accumulation():
    v, w, v_star, w_star = CONFIGS["A"]
    e32 = stefast.monte_carlo(v, w, v_star, w_star, n_samples=NS, rng=8, dtype=np.float32)
    e64 = stefast.monte_carlo(v, w, v_star, w_star, n_samples=NS, rng=9)
    assert e32.dtype == np.float32 and e64.dtype == np.float64
    assert e32.grad_w.dtype == np.float64 and e32.m2.dtype == np.float64
    assert_within_se(e32, *exact(v, w, v_star, w_star, "relu"))
    se = np.hypot(e32.grad_w_se, e64.grad_w_se)
    assert np.all(np.abs(e32.grad_w - e64.grad_w) <= 5 * se)


def test_projected_has_the_covariance_of_full():
    # per-sample (loss, grad_v, grad_w) of "full" (the C kernel on stefast's
    # normals) against the projected sampler of docs/math.rst,
    # section "Monte Carlo samplers", written here
    v, w, v_star, w_star = CONFIGS["B"]
    m, n, B = v.size, w.size, 200_000
    Z = stefast.standard_normals((B, m * n), rng=31).reshape(B, m, n)
    full = stefast.loss_and_grads(Z, v, w, v_star, w_star, ste="relu", reduce="none")
    Q, alpha, beta = mcmod.mc_basis(w, w_star)
    r = np.random.default_rng(32)
    S = r.standard_normal((B, m, Q.shape[0]))
    xi = r.standard_normal((B, n))
    zw, zws = S @ alpha, S @ beta
    res = (zw > 0) @ v - (zws > 0) @ v_star
    a = (zw > 0) * v * res[:, None]
    na = np.linalg.norm(a, axis=1)
    g = (np.einsum("bmk,bm->bk", S, a) - na[:, None] * (xi @ Q.T)) @ Q + na[:, None] * xi
    X = np.column_stack([full.loss, full.grad_v, full.grad_w])
    Y = np.column_stack([0.5 * res**2, (zw > 0) * res[:, None], g])
    cx, cy = np.cov(X.T), np.cov(Y.T)
    scale = np.sqrt(np.outer(np.diag(cx), np.diag(cx)))
    assert np.max(np.abs(cx - cy) / scale) < 0.03
    # and the C projected method has the same variances as C full
    ef = stefast.monte_carlo(v, w, v_star, w_star, n_samples=B, rng=33)
    ep = stefast.monte_carlo(v, w, v_star, w_star, n_samples=B, rng=34, method="projected")
    np.testing.assert_allclose(ep.m2, ef.m2, rtol=0.05)


@pytest.mark.parametrize("method", METHODS)
def test_reference_twin_agrees(method):
    v, w, v_star, w_star = CONFIGS["B"]
    ref = reference.monte_carlo(v, w, v_star, w_star, ste="clipped_relu", n_samples=20_000,
                                method=method, rng=3)
    assert isinstance(ref, stefast.MCEstimate) and ref.method == method
    assert_within_se(ref, *exact(v, w, v_star, w_star, "clipped_relu"))
    fast = stefast.monte_carlo(v, w, v_star, w_star, ste="clipped_relu", n_samples=20_000,
                               method=method, rng=3)
    np.testing.assert_allclose(fast.grad_w_se, ref.grad_w_se, rtol=0.08)


def test_conditional_reduces_variance():
    v, w, v_star, w_star = _config(7, 8, 40, 1.0)
    kw = dict(n_samples=20_000, rng=1)
    full = stefast.monte_carlo(v, w, v_star, w_star, **kw)
    cond = stefast.monte_carlo(v, w, v_star, w_star, method="conditional", **kw)
    assert np.max(cond.grad_w_se) < 0.5 * np.max(full.grad_w_se)


def test_inputs_unmodified():
    arrays = [a.copy() for a in CONFIGS["A"]]
    frozen = [a.copy() for a in arrays]
    for a in frozen:
        a.setflags(write=False)
    stefast.monte_carlo(*frozen, n_samples=100, rng=0, method="projected")
    for a, b in zip(arrays, frozen):
        assert np.array_equal(a, b)


def test_errors_name_the_argument():
    v, w, v_star, w_star = CONFIGS["A"]
    mc = stefast.monte_carlo
    with pytest.raises(ValueError, match="n_samples"):
        mc(v, w, v_star, w_star, n_samples=1)
    with pytest.raises(TypeError, match="n_samples"):
        mc(v, w, v_star, w_star, n_samples=10.5)
    with pytest.raises(ValueError, match="method"):
        mc(v, w, v_star, w_star, n_samples=10, method="exact")
    with pytest.raises(ValueError, match="ste"):
        mc(v, w, v_star, w_star, n_samples=10, ste="sigmoid")
    with pytest.raises(TypeError, match="rng"):
        mc(v, w, v_star, w_star, n_samples=10, rng="abc")
    with pytest.raises(ValueError, match="v_star has length"):
        mc(v, w, v_star[:-1], w_star, n_samples=10)
    with pytest.raises(ValueError, match="w_star has length"):
        mc(v, w, v_star, w_star[:-1], n_samples=10)
    with pytest.raises(ValueError, match="w must be"):
        mc(v, np.ones((2, 2)), v_star, w_star, n_samples=10)
    with pytest.raises(ValueError, match="v must be finite"):
        mc(v * np.nan, w, v_star, w_star, n_samples=10)
    with pytest.raises(ValueError, match="dtype"):
        mc(v, w, v_star, w_star, n_samples=10, dtype=np.int64)
    with pytest.raises(ValueError, match="threads"):
        mc(v, w, v_star, w_star, n_samples=10, threads=0)
    for bad in (dict(n_samples=1), dict(n_samples=10, method="exact"), dict(n_samples=10, rng="x")):
        with pytest.raises((ValueError, TypeError)):
            reference.monte_carlo(v, w, v_star, w_star, **bad)


def test_ctrl_c_stops_promptly_and_leaves_no_state():
    v, w, v_star, w_star = _config(1, 32, 256, 1.0)
    timer = threading.Timer(0.3, _thread.interrupt_main)
    t0 = time.perf_counter()
    timer.start()
    with pytest.raises(KeyboardInterrupt, match="interrupted after"):
        stefast.monte_carlo(v, w, v_star, w_star, n_samples=10**9, threads=1)
    elapsed = time.perf_counter() - t0
    timer.join()
    assert elapsed < 2.0
    # the next run is unaffected
    a = stefast.monte_carlo(v, w, v_star, w_star, n_samples=1000, rng=1, method="conditional")
    b = stefast.monte_carlo(v, w, v_star, w_star, n_samples=1000, rng=1, method="conditional")
    assert np.array_equal(a.grad_w, b.grad_w)


def test_progress_bar_off_when_not_a_tty(capsys):
    v, w, v_star, w_star = CONFIGS["B"]
    est = stefast.monte_carlo(v, w, v_star, w_star, n_samples=1000, rng=0, progress=True)
    assert est.n_samples == 1000
    assert capsys.readouterr().err == ""


def test_progress_bar_on_a_tty(monkeypatch):
    import io

    class FakeTTY(io.StringIO):
        def isatty(self):
            return True

    fake = FakeTTY()
    monkeypatch.setattr("sys.stderr", fake)
    v, w, v_star, w_star = CONFIGS["B"]
    monkeypatch.setattr(mcmod, "_CALL_WORK", 1000)
    stefast.monte_carlo(v, w, v_star, w_star, n_samples=5000, rng=0, progress=True)
    assert "monte_carlo[full]" in fake.getvalue()


@pytest.mark.slow
@pytest.mark.parametrize("ste", ["identity", "relu", "clipped_relu", "hardtanh"])
def test_larger_problem_all_methods(ste):
    v, w, v_star, w_star = _config(5, 16, 32, 0.8)
    ests = [stefast.monte_carlo(v, w, v_star, w_star, ste=ste, n_samples=400_000, method=meth,
                                rng=i) for i, meth in enumerate(METHODS)]
    if ste != "hardtanh":
        for e in ests:
            assert_within_se(e, *exact(v, w, v_star, w_star, ste))
    for a in ests[1:]:
        se = np.hypot(a.grad_w_se, ests[0].grad_w_se)
        assert np.all(np.abs(a.grad_w - ests[0].grad_w) <= 5 * se)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ste", ["relu", "hardtanh"])
@pytest.mark.parametrize("method", METHODS)
def test_same_normals_as_numpy_recomputation(method, ste, dtype):
    # sample b uses stream b of the key drawn from rng: rebuild every
    # per-sample value in NumPy from stefast.standard_normals and compare
    # the means and standard errors (exact up to summation order)
    v, w, v_star, w_star = CONFIGS["A"]
    m, n, N = v.size, w.size, 3000
    Q, alpha, beta = mcmod.mc_basis(w, w_star)
    k = Q.shape[0]
    per = {"full": m * n, "projected": m * k + n, "conditional": m * k}[method]
    G = stefast.standard_normals((N, per), rng=17, dtype=dtype).astype(np.float64)
    if method == "full":
        out = reference.loss_and_grads(G.reshape(N, m, n), v, w, v_star, w_star, ste=ste,
                                       reduce="none")
        X = np.column_stack([out.loss, out.grad_v, out.grad_w])
    else:
        S = G[:, :m * k].reshape(N, m, k)
        zw, zws = S @ alpha, S @ beta
        r = (zw > 0) @ v - (zws > 0) @ v_star
        window = (zw > 0) if ste == "relu" else (np.abs(zw) <= 1)
        a = window * v * r[:, None]
        c = np.einsum("bmk,bm->bk", S, a)
        if method == "projected":
            xi = G[:, m * k:]
            na = np.linalg.norm(a, axis=1)
            g = (c - na[:, None] * (xi @ Q.T)) @ Q + na[:, None] * xi
        else:
            g = c @ Q
        X = np.column_stack([0.5 * r * r, (zw > 0) * r[:, None], g])
    est = stefast.monte_carlo(v, w, v_star, w_star, ste=ste, n_samples=N, method=method,
                              rng=17, dtype=dtype)
    got = np.concatenate([[est.loss], est.grad_v, est.grad_w])
    got_se = np.concatenate([[est.loss_se], est.grad_v_se, est.grad_w_se])
    want_se = X.std(axis=0, ddof=1) / np.sqrt(N)
    if dtype == np.float64:
        np.testing.assert_allclose(got, X.mean(axis=0), rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(got_se, want_se, rtol=1e-9, atol=1e-12)
    else:  # float32 samples: the per-sample rounding differs from this float64 rebuild
        np.testing.assert_allclose(got, X.mean(axis=0), rtol=1e-3, atol=1e-3 * want_se.max())
        np.testing.assert_allclose(got_se, want_se, rtol=1e-2, atol=1e-4)
