"""Regression tests for issue 19: each reproducer of the issue gives a correct
result or a clear error naming the argument."""

import math
import signal
import time

import numpy as np
import pytest

import stefast
import stefast.reference as ref
from stefast import montecarlo as mcmod
from util import misaligned

V, VS = np.array([1.0, -0.5, 2.0]), np.array([0.5, 1.0, 1.5])


# ---- threads, integers, reals ----------------------------------------------


def _model(B=4, m=3, n=5):
    return np.ones((B, m, n)), np.ones(m), np.ones(n), np.ones(m), np.ones(n)


@pytest.mark.parametrize("threads", [10**9, 1025, 2**63, 2**64])
def test_threads_beyond_the_maximum_are_refused(threads):
    with pytest.raises(ValueError, match=r"threads must be None or an integer >= 1 and <= 1024"):
        stefast.loss_and_grads(*_model(), threads=threads)
    with pytest.raises(ValueError, match="threads"):
        stefast.monte_carlo(V, [1.0, 0.0], VS, [0.0, 1.0], n_samples=10, threads=threads)
    with pytest.raises(ValueError, match="threads"):
        ref.loss_and_grads(*_model(), threads=threads)


def test_the_maximum_thread_count_runs():
    out = stefast.loss_and_grads(*_model(), threads=1024)
    assert np.array_equal(out.grad_w, stefast.loss_and_grads(*_model(), threads=1).grad_w)


@pytest.mark.parametrize("bad", [True, False, np.bool_(True), "2", 2.0])
def test_integer_arguments_refuse_bools_strings_and_floats(bad):
    with pytest.raises(TypeError, match="threads must be None or an integer, got"):
        stefast.loss_and_grads(*_model(), threads=bad)
    with pytest.raises(TypeError, match="bits must be an integer"):
        stefast.quantized_relu([1.0], bits=bad, alpha=0.5)
    with pytest.raises(TypeError, match="n_samples must be an integer"):
        stefast.monte_carlo(V, [1.0, 0.0], VS, [0.0, 1.0], n_samples=bad)
    with pytest.raises(TypeError, match="steps must be an integer"):
        stefast.coarse_gradient_descent(V, [1.0, 0.0], VS, [0.0, 1.0], lr=0.1, steps=bad)


def test_numpy_integers_are_integers():
    out = stefast.quantized_relu([0.7], bits=np.int8(2), alpha=0.5)
    assert out.tolist() == [1.0]
    assert stefast.loss_and_grads(*_model(), threads=np.int64(2)).loss == 0.0


@pytest.mark.parametrize("bad", ["0.5", b"0.5", True])
def test_real_arguments_refuse_strings_and_bools(bad):
    with pytest.raises(TypeError, match="alpha must be a real number"):
        stefast.quantized_relu([1.0], bits=2, alpha=bad)
    with pytest.raises(TypeError, match="lr must be a real number"):
        stefast.coarse_gradient_descent(V, [1.0, 0.0], VS, [0.0, 1.0], lr=bad, steps=1)


def test_descent_names_v0_and_w0():
    with pytest.raises(ValueError, match="v0 has length|v_star has length 3 but v0"):
        stefast.coarse_gradient_descent([1.0, 2.0], [1.0, 0.0], VS, [0.0, 1.0], lr=0.1, steps=1)
    with pytest.raises(ValueError, match="w0 must be finite"):
        stefast.coarse_gradient_descent(V, [np.nan, 0.0], VS, [0.0, 1.0], lr=0.1, steps=1)


@pytest.mark.parametrize("bad", [-1, "seed", 1.5, True])
def test_bad_rng_names_rng(bad):
    with pytest.raises(TypeError, match=r"^rng must be None, a non-negative int seed") as exc:
        stefast.ste_report("relu", rng=bad)
    assert "SeedSequence expects" not in str(exc.value)
    with pytest.raises(TypeError, match=r"^rng must be"):
        stefast.coarse_gradient_descent(V, [1.0, 0.0], VS, [0.0, 1.0], lr=0.1, steps=1,
                                        mode="sampled", batch_size=4, rng=bad)


# ---- sample indices and streams --------------------------------------------


def test_start_beyond_int64_is_refused_clearly():
    kw = dict(n_samples=10**5, rng=0)
    for start in (2**63 - 1, 2**63 - 10**5, 2**63, 2**64):
        with pytest.raises(ValueError, match=r"start"):
            stefast.monte_carlo(V, [1.0, 0.0, 0.0], VS, [0.0, 1.0, 0.0], start=start, **kw)
        with pytest.raises(ValueError, match=r"start"):
            ref.monte_carlo(V, [1.0, 0.0, 0.0], VS, [0.0, 1.0, 0.0], start=start, **kw)


def test_the_last_sample_indices_give_an_unbiased_estimate():
    w, w_star = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    n = 20_000
    est = stefast.monte_carlo(V, w, VS, w_star, n_samples=n, start=2**63 - 1 - n, rng=0)
    f = stefast.population_loss(V, w, VS, w_star)
    assert est.loss_se > 0
    assert abs(est.loss - f) <= 5 * est.loss_se
    # and the samples are those of the same indices taken in two pieces
    a = stefast.monte_carlo(V, w, VS, w_star, n_samples=n // 2, start=2**63 - 1 - n, rng=0)
    b = stefast.monte_carlo(V, w, VS, w_star, n_samples=n // 2, start=2**63 - 1 - n // 2,
                            rng=0)
    assert math.isclose(a.merge(b).loss, est.loss, rel_tol=1e-12)


def test_streams_do_not_wrap():
    last = stefast.standard_normals((3,), rng=0, stream=2**64 - 1)
    first = stefast.standard_normals((3,), rng=0, stream=0)
    assert not np.array_equal(last, first)
    two = stefast.standard_normals((2, 3), rng=0, stream=2**64 - 2)
    assert np.array_equal(two[1], last)
    with pytest.raises(ValueError, match="stream must be an integer >= 0 and <= "):
        stefast.standard_normals((2, 3), rng=0, stream=2**64 - 1)
    with pytest.raises(ValueError, match="stream"):
        stefast.standard_normals((3,), rng=0, stream=2**64)


# ---- norms at every scale --------------------------------------------------


def test_angle_at_extreme_scales():
    assert stefast.angle([-1e-200, 0.0], [1.0, 0.0]) == math.pi
    assert stefast.angle([1e300, 1e300], [1.0, 0.0]) == pytest.approx(math.pi / 4, rel=1e-15)
    assert stefast.angle([1.0, 1.0], [1e-200, 0.0]) == pytest.approx(math.pi / 4, rel=1e-15)
    assert stefast.angle([1e308, 1e308], [-1.0, -1.0]) == math.pi
    assert stefast.angle([5e-324, 0.0], [0.0, 1e308]) == pytest.approx(math.pi / 2, rel=1e-15)


SCALES = [1e-300, 1e-200, 1e-150, 1.0, 1e150, 1e200, 1e300]


@pytest.mark.parametrize("scale", SCALES)
@pytest.mark.parametrize("batched", [False, True])
def test_closed_forms_are_invariant_to_the_scale_of_w_and_w_star(scale, batched):
    w, w_star = np.array([1.0, 0.3, -0.2]), np.array([0.2, 1.0, 0.5])
    v, v_star = V, VS

    def call(fn, ww, ws, **kw):
        if batched:
            return fn(np.stack([v, v]), np.stack([ww, ww]), v_star, np.stack([ws, ws]), **kw)
        return fn(v, ww, v_star, ws, **kw)

    for ww, ws in ((w * scale, w_star), (w, w_star * scale), (w * scale, w_star * scale)):
        for fn, kw in ((stefast.population_loss, {}), (stefast.coarse_grad_cosine, {}),
                       (stefast.angle, None)):
            if kw is None:
                got, want = (fn(np.stack([ww, ww]), np.stack([ws, ws])) if batched
                             else fn(ww, ws)), fn(w, w_star)
            else:
                got, want = call(fn, ww, ws, **kw), call(fn, w, w_star, **kw)
            np.testing.assert_allclose(got, want, rtol=1e-13, atol=0)
        for ste in ("identity", "relu"):  # the scale-free surrogates
            got = call(stefast.expected_coarse_grad, ww, ws, ste=ste)
            want = call(stefast.expected_coarse_grad, w, w_star, ste=ste)
            np.testing.assert_allclose(got.grad_v, want.grad_v, rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(got.grad_w, want.grad_w, rtol=1e-13, atol=1e-15)
    # population_grad's grad_w scales as 1 / |w|
    g = call(stefast.population_grad, w * scale, w_star)
    g1 = call(stefast.population_grad, w, w_star)
    np.testing.assert_allclose(g.grad_w * scale, g1.grad_w, rtol=1e-13, atol=0)
    np.testing.assert_allclose(g.grad_v, g1.grad_v, rtol=1e-13, atol=0)


def test_population_loss_at_the_minimum_with_a_tiny_w():
    assert stefast.population_loss([1.0, 2.0], [1e-200, 0.0], [1.0, 2.0], [1.0, 0.0]) == 0.0
    assert stefast.population_loss(np.array([1.0, 2.0]), np.array([1e-200, 0.0]),
                                   np.array([1.0, 2.0]), np.array([1.0, 0.0])) == 0.0


@pytest.mark.parametrize("sign", [1.0, -1.0])  # theta = 0 and theta = pi
@pytest.mark.parametrize("batched", [False, True])
def test_population_grad_w_is_zero_on_the_axis_even_when_v_v_star_over_w_overflows(sign, batched):
    # df/dw is defined as 0 at theta in {0, pi}; (v'v*) / (2 pi |w|) overflows
    # here, which must not turn 0 * e_perp into inf * 0 = NaN (found by the fuzz
    # suite, hypothesis' reproducer)
    v, v_star = np.array([0.12573022]), np.array([3.45584192e+09])
    w_star = np.array([1.25730221e-301, -1.32104863e-301])
    w = sign * w_star
    args = (v[None], w, v_star, w_star) if batched else (v, w, v_star, w_star)
    g = stefast.population_grad(*args)
    np.testing.assert_array_equal(g.grad_w, np.zeros_like(g.grad_w))
    assert stefast.coarse_grad_inner(*args) == 0.0


def test_an_overflowing_result_is_inf_with_numpys_warning_at_one_point_as_in_a_batch():
    # off the axis |df/dw| is beyond float64 here; the one-point fast path
    # leaves a result that is not finite to the general path, so a point and a
    # batch give the same infinities and the same warning
    v, v_star = np.array([0.12573022]), np.array([3.45584192e+09])
    w, w_star = np.array([1.25730221e-301, 1.32104863e-301]), np.array([1.0, -1.0])
    for args in ((v, w, v_star, w_star), (v[None], w, v_star, w_star)):
        with pytest.warns(RuntimeWarning, match="overflow"):
            g = stefast.population_grad(*args)
        assert np.all(np.isinf(g.grad_w))


@pytest.mark.parametrize("scale", [1e-300, 1e-200, 1e200, 1e300])
@pytest.mark.parametrize("method", ["projected", "conditional"])
def test_monte_carlo_basis_at_extreme_scales(scale, method):
    w, w_star = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    kw = dict(n_samples=10**4, method=method, rng=0)
    a = stefast.monte_carlo(V, w * scale, VS, w_star, **kw)
    b = stefast.monte_carlo(V, w, VS, w_star, **kw)
    np.testing.assert_array_equal(a.grad_w, b.grad_w)
    Q, alpha, beta = mcmod.mc_basis(w * scale, w_star)
    assert Q.shape == (2, 3)


@pytest.mark.parametrize("scale", [2.0 ** -700, 2.0 ** 1000])
def test_population_descent_at_extreme_scales(scale):
    """Population descent's one-point geometry scales before squaring: a
    power-of-two scale of w* changes no bit of the run, and one of w0 none of
    the starting loss and angle (w* = 2^-700 e used to stop as 'diverged',
    w0 = 2^-700 w to start from the loss at w = 0)."""
    w, w_star = np.array([1.0, 0.3]), np.array([0.2, 1.0])
    kw = dict(mode="population", steps=30, lr=0.1)
    with np.errstate(all="raise"):
        base = stefast.coarse_gradient_descent(V, w, VS, w_star, **kw)
        scaled_teacher = stefast.coarse_gradient_descent(V, w, VS, w_star * scale, **kw)
        scaled_start = stefast.coarse_gradient_descent(V, w * scale, VS, w_star, **kw)
    for name in ("f", "theta", "w_norm", "grad_v_norm", "w_final", "v_final"):
        np.testing.assert_array_equal(getattr(scaled_teacher, name), getattr(base, name))
    assert scaled_start.f[0] == base.f[0] and scaled_start.theta[0] == base.theta[0]
    assert scaled_start.w_norm[0] == base.w_norm[0] * scale


def test_coarse_grad_cosine_without_intermediate_overflow():
    v, w, v_star, w_star = [1e150, 2e150], [1.0, 0.3], [1.0, 1.0], [0.2, 1.0]
    c = stefast.coarse_grad_cosine(v, w, v_star, w_star)
    assert np.isfinite(c) and abs(c) <= 1
    # a joint scale of (v, v*) leaves the cosine unchanged
    for s in (1e-150, 1e150):
        np.testing.assert_allclose(
            stefast.coarse_grad_cosine(np.array(V) * s, w, np.array(VS) * s, w_star),
            stefast.coarse_grad_cosine(V, w, VS, w_star), rtol=1e-13)


@pytest.mark.parametrize("s", [1e-150, 1e150])
@pytest.mark.parametrize("method", ["full", "projected", "conditional"])
def test_monte_carlo_with_huge_or_tiny_v(s, method):
    w, w_star = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    kw = dict(n_samples=5000, method=method, rng=3)
    big = stefast.monte_carlo(V * s, w, VS * s, w_star, **kw)
    one = stefast.monte_carlo(V, w, VS, w_star, **kw)
    for name, p in (("loss", 2), ("grad_v", 1), ("grad_w", 2), ("loss_se", 2),
                    ("grad_v_se", 1), ("grad_w_se", 2)):
        got = np.asarray(getattr(big, name))
        assert np.all(np.isfinite(got)), name
        np.testing.assert_allclose(got, np.asarray(getattr(one, name)) * s**p, rtol=1e-12,
                                   err_msg=name)
    r = ref.monte_carlo(V * s, w, VS * s, w_star, **kw)
    assert np.all(np.isfinite(r.grad_w_se)) and np.isfinite(r.loss_se)


# ---- grad_w when the residual is exactly 0 ----------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m,n", [(2, 1), (3, 8), (64, 64), (32, 128)])
@pytest.mark.parametrize("ste", ["identity", "relu"])
def test_grad_w_is_zero_for_a_zero_residual_even_when_v_z_overflows(m, n, ste, dtype):
    # sum_i v_i is finite (in any order), so r = 0 exactly; 4 v_i z_i overflows
    big = np.finfo(dtype).max / 2
    Z = np.full((3, m, n), 4.0, dtype=dtype)
    v = np.ones(m, dtype=dtype)
    v[0] = big
    if m > 2:
        v[1] = -big
    w = -np.ones(n, dtype=dtype) if ste == "identity" else np.ones(n, dtype=dtype)
    args = (Z, v, w, v, w)
    for reduce in ("none", "mean", "sum"):
        fast = stefast.loss_and_grads(*args, ste=ste, reduce=reduce)
        slow = ref.loss_and_grads(*args, ste=ste, reduce=reduce)
        assert np.array_equal(fast.grad_w, slow.grad_w), reduce
        assert np.all(fast.grad_w == 0), reduce
    # an inf entry of Z in a window row still gives NaN, as in the reference
    Z[1, 0, 0] = np.inf
    fast = stefast.loss_and_grads(Z, v, w, v, w, ste=ste, reduce="none")
    slow = ref.loss_and_grads(Z, v, w, v, w, ste=ste, reduce="none")
    np.testing.assert_array_equal(fast.grad_w, slow.grad_w)


def test_grad_w_reproducer_of_the_issue():
    args = (np.ones((1, 2, 1)), [1e308] * 2, [-1.0], [1e308] * 2, [-1.0])
    assert stefast.loss_and_grads(*args, ste="identity").grad_w.tolist() == [0.0]
    assert stefast.loss_and_grads(*args, ste="identity", reduce="mean").grad_w.tolist() == [0.0]


# ---- callable surrogates -----------------------------------------------------


def _nan_away_from_probes(x):
    x = np.asarray(x, dtype=np.float64)
    return np.where(np.abs(x - 0.77) < 0.2, np.nan, (x > 0).astype(np.float64))


def test_a_callable_returning_nan_between_the_probes_is_an_error():
    # the probe points (-3, -1, -0.5, 0, 0.5, 1, 3) all give finite values
    with pytest.raises(ValueError, match="ste callable returned nan"):
        stefast.expected_coarse_grad(V, [1.0, 0.2], VS, [0.1, 1.0], ste=_nan_away_from_probes)
    with pytest.raises(ValueError, match="ste callable returned nan"):
        stefast.ste_report(_nan_away_from_probes, rng=0, n_theta=2, n_pairs=1)


# ---- out= overlapping an input ---------------------------------------------


@pytest.mark.parametrize("shift", [1, -1])
def test_quantized_relu_grad_with_out_overlapping_grad(shift):
    buf = np.array([2.0, -5.0, 0.3, 0.7] * 10)
    x = np.linspace(-1, 2, 39)
    grad, out = (buf[:-1], buf[1:]) if shift == 1 else (buf[1:], buf[:-1])
    expected = ref.quantized_relu_grad(x, grad.copy(), 2, 0.5).grad_x
    got = stefast.quantized_relu_grad(x, grad, 2, 0.5, out=out)
    assert got.grad_x is out
    np.testing.assert_array_equal(out, expected)


# ---- slow paths --------------------------------------------------------------


def test_the_largest_monte_carlo_blocks_are_short():
    # a C call covers whole blocks and Ctrl-C is seen between calls
    assert mcmod.block_samples("full", 4096, 4096, 0) == 1
    assert mcmod.block_samples("full", 8, 8, 0) == mcmod.BLOCK
    assert mcmod.block_samples("conditional", 4096, 4096, 2) == mcmod.BLOCK


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs setitimer")
def test_monte_carlo_honours_ctrl_c_quickly():
    m = n = 2048
    v, w = np.ones(m), np.zeros(n)
    w[0] = 1.0
    signal.setitimer(signal.ITIMER_REAL, 0.3)
    previous = signal.signal(signal.SIGALRM, signal.default_int_handler)
    t0 = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt, match="interrupted after"):
            stefast.monte_carlo(v, w, v, w, n_samples=10**6, rng=0, threads=1)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert time.perf_counter() - t0 < 0.3 + 1.0


# ---- the command line --------------------------------------------------------


def _cli_error(argv, capsys):
    from stefast.cli import main

    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    return err


def test_cli_out_must_be_a_writeable_directory(tmp_path, capsys, monkeypatch):
    f = tmp_path / "file"
    f.write_text("x")
    for cmd in ("reproduce", "table1", "bench"):
        assert "exists and is not a directory" in _cli_error([cmd, "--out", str(f)], capsys)
    assert "which is a file" in _cli_error(["reproduce", "--out", str(f / "sub")], capsys)
    assert "--out must name a directory" in _cli_error(["reproduce", "--out", ""], capsys)
    # root may write anywhere: the refusal of an unwritable parent is simulated
    monkeypatch.setattr("os.access", lambda *a: False)
    assert "no permission to write" in _cli_error(
        ["reproduce", "--out", str(tmp_path / "new")], capsys)
    assert not (tmp_path / "new").exists()


def test_cli_bench_from_json_that_is_not_a_benchmark_file(tmp_path, capsys):
    bad = tmp_path / "list.json"
    bad.write_text("[1, 2]")
    out = str(tmp_path / "out")
    assert "not a pytest-benchmark JSON" in _cli_error(
        ["bench", "--from-json", str(bad), "--out", out], capsys)
    bad.write_text("{")
    assert "is not valid JSON" in _cli_error(["bench", "--from-json", str(bad), "--out", out],
                                             capsys)


@pytest.mark.parametrize("argv, flag", [
    (["analytic", "--m", "1000000000000"], "--m"),
    (["landscape", "--points", "1e12"], "--points"),
    (["landscape", "--points", "1000000000000"], "--points"),
    (["train", "--mode", "sampled", "--batch-size", "1e11"], "--batch-size"),
    (["analytic", "--seed", "-1"], "--seed"),
    (["analytic", "--m", "2.5"], "--m"),
])
def test_cli_sizes_out_of_range_name_their_flag(argv, flag, capsys):
    from stefast.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"argument {flag}:" in err and "Traceback" not in err


# ---- the fitted resolution at many bits ---------------------------------------


@pytest.mark.parametrize("rounding", ["nearest", "ceil"])
def test_optimal_alpha_at_the_documented_maximum_is_fast(rounding):
    from stefast import quantized as qz

    qz._optimal_alpha.cache_clear()
    t0 = time.perf_counter()
    alphas = [stefast.optimal_alpha(b, rounding) for b in (18, 24)]
    assert time.perf_counter() - t0 < 5.0
    # more levels: a finer resolution, and a top level L alpha that grows slowly
    assert alphas[1] < alphas[0]
    assert 6.0 < alphas[1] * (2**24 - 1) < 9.0
    # the derivative of the error vanishes there
    for b, a in zip((18, 24), alphas):
        d = qz._mse_many_levels_derivative(a, b, rounding)
        scale = qz.quantization_mse(a, b, rounding) / a
        assert abs(d) < 1e-9 * scale


@pytest.mark.parametrize("rounding", ["nearest", "ceil"])
@pytest.mark.parametrize("bits", [14, 15])
@pytest.mark.parametrize("top", [0.3, 4.0, 12.0])
def test_many_level_error_agrees_with_the_cell_by_cell_sum(bits, rounding, top):
    # the cell-by-cell sum cancels to about 1e-8 relative at these sizes;
    # the O(1) form was checked against 40-digit arithmetic to 1e-12
    from stefast import quantized as qz

    alpha = top / (2**bits - 1)
    exact = qz._mse_cells(alpha, bits, rounding)
    fast = qz._mse_many_levels(alpha, bits, rounding)
    assert fast == pytest.approx(exact, rel=1e-7)
    d_exact = qz._mse_derivative(alpha, bits, rounding)
    d_fast = qz._mse_many_levels_derivative(alpha, bits, rounding)
    assert d_fast == pytest.approx(d_exact, rel=1e-7)
    assert qz.quantization_mse(alpha, bits, rounding) == fast


# ---- arrays misaligned for their element type ------------------------------
# A view of a byte buffer at an odd offset holds doubles C may not read as
# doubles (undefined behaviour, caught by the sanitizer job in CI): every
# entry copies such arrays first, and writes into such an out= by way of an
# aligned buffer. Results equal those of the aligned arrays; nothing changes.


def _misaligned_args(dtype):
    rng = np.random.default_rng(19)
    Z = rng.standard_normal((5, 3, 7)).astype(dtype)
    vecs = [rng.standard_normal(k).astype(dtype) for k in (3, 7, 3, 7)]
    return (Z, *vecs), tuple(misaligned(a) for a in (Z, *vecs))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_misaligned_inputs_are_copied_before_c(dtype):
    from stefast import _validation as val

    aligned, odd = _misaligned_args(dtype)
    assert not any(a.flags.aligned for a in odd)
    saved = [a.copy() for a in odd]
    assert val.as_float_array(odd[0], "Z").flags.aligned
    assert all(a.flags.aligned for a in val.as_float_arrays(*[("a", a) for a in odd]))
    for name in ("binarize", "sign"):
        assert getattr(stefast._core, f"{name}_common")(odd[1]) is None
        with pytest.raises(TypeError, match="aligned"):
            getattr(stefast._core, name)(odd[1], np.empty_like(odd[1]))
        np.testing.assert_array_equal(getattr(stefast, name)(odd[1]),
                                      getattr(stefast, name)(aligned[1]))
    np.testing.assert_array_equal(stefast.ste_grad(odd[1], odd[3], "hardtanh"),
                                  stefast.ste_grad(aligned[1], aligned[3], "hardtanh"))
    np.testing.assert_array_equal(stefast.forward(*odd[:3]), stefast.forward(*aligned[:3]))
    for reduce in ("none", "sum"):
        got = stefast.loss_and_grads(*odd, reduce=reduce)
        want = stefast.loss_and_grads(*aligned, reduce=reduce)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    np.testing.assert_array_equal(stefast.quantized_relu(odd[1], 2, 0.5),
                                  stefast.quantized_relu(aligned[1], 2, 0.5))
    got = stefast.quantized_relu_grad(odd[1], odd[3], 2, 0.5)
    want = stefast.quantized_relu_grad(aligned[1], aligned[3], 2, 0.5)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    mc = [stefast.monte_carlo(*(a.astype(np.float64) if a.dtype != dtype else a
                                for a in args[1:]), n_samples=64, rng=1, dtype=dtype)
          for args in (odd, aligned)]
    np.testing.assert_array_equal(mc[0].grad_w, mc[1].grad_w)
    v0, w0 = (np.stack([a, a]) for a in aligned[1:3])
    ens = [stefast.descent_ensemble(*(misaligned(a) if odd_ else a
                                      for a in (v0, w0, aligned[3], aligned[4])),
                                    ste="relu", lr=0.1, steps=3, n_train=4, rng=2)
           for odd_ in (True, False)]
    np.testing.assert_array_equal(ens[0].w, ens[1].w)
    for a, b in zip(odd, saved):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_misaligned_out_is_written_through_an_aligned_buffer(dtype):
    x = np.linspace(-2, 2, 9).astype(dtype)
    for fn in (stefast.binarize, stefast.sign):
        out = misaligned(np.zeros_like(x))
        assert fn(x, out=out) is out
        np.testing.assert_array_equal(out, fn(x))
    out = misaligned(np.zeros_like(x))
    stefast.ste_grad(x, x, out=out)
    np.testing.assert_array_equal(out, stefast.ste_grad(x, x))
    out = misaligned(np.zeros_like(x))
    stefast.quantized_relu(x, 2, 0.5, out=out)
    np.testing.assert_array_equal(out, stefast.quantized_relu(x, 2, 0.5))
