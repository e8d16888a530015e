"""Benchmarks of stefast.analytic (population closed forms).

Groups: one point per named STE (the one-point route in C, stefast._core), the same
point forced through the vectorised NumPy route (a (1, m) batch) beside it,
a sweep of 10^5 points in one call, and a callable mu' by quadrature.
Inputs are cached and seeded; no timing is asserted.

    python -m pytest bench/test_bench_analytic.py --benchmark-only
"""

import numpy as np
import pytest

import stefast

M, N = 5, 8
SWEEP = 100_000


@pytest.fixture(scope="module")
def point():
    rng = np.random.default_rng(0)
    return (rng.standard_normal(M), 0.7 * rng.standard_normal(N),
            rng.standard_normal(M), 1.9 * rng.standard_normal(N))


@pytest.fixture(scope="module")
def sweep():
    rng = np.random.default_rng(1)
    return (rng.standard_normal((SWEEP, M)), rng.uniform(0.2, 3.0, (SWEEP, 1))
            * rng.standard_normal((SWEEP, N)), rng.standard_normal(M), rng.standard_normal(N))


@pytest.mark.parametrize("ste", stefast.STES)
def test_one_point(benchmark, point, ste):
    benchmark.group = "analytic: one point, expected_coarse_grad"
    benchmark.extra_info.update(ste=ste, m=M, n=N, route="one-point")
    benchmark(stefast.expected_coarse_grad, *point, ste=ste)
    if not benchmark.disabled:
        benchmark.extra_info["microseconds"] = benchmark.stats.stats.min * 1e6


@pytest.mark.parametrize("ste", ["relu", "clipped_relu"])
def test_one_point_vectorised_route(benchmark, point, ste):
    benchmark.group = "analytic: one point, expected_coarse_grad"
    v, w, v_star, w_star = point
    benchmark.extra_info.update(ste=ste, m=M, n=N, route="numpy batch of 1")
    benchmark(stefast.expected_coarse_grad, v[None], w, v_star, w_star, ste=ste)
    if not benchmark.disabled:
        benchmark.extra_info["microseconds"] = benchmark.stats.stats.min * 1e6


@pytest.mark.parametrize("what", ["loss", "grad"])
def test_one_point_loss_and_grad(benchmark, point, what):
    benchmark.group = "analytic: one point, population_loss / population_grad"
    func = stefast.population_loss if what == "loss" else stefast.population_grad
    benchmark.extra_info.update(what=what, m=M, n=N)
    benchmark(func, *point)
    if not benchmark.disabled:
        benchmark.extra_info["microseconds"] = benchmark.stats.stats.min * 1e6


@pytest.mark.parametrize("ste", stefast.STES)
def test_sweep(benchmark, sweep, ste):
    benchmark.group = f"analytic: sweep of {SWEEP} points"
    benchmark.extra_info.update(ste=ste, points=SWEEP, m=M, n=N)
    benchmark.pedantic(stefast.expected_coarse_grad, args=sweep, kwargs=dict(ste=ste),
                       rounds=5, iterations=1, warmup_rounds=1)
    if not benchmark.disabled:
        benchmark.extra_info["ns_per_point"] = benchmark.stats.stats.min / SWEEP * 1e9


def _clipped_relu_window(x):
    return ((x > 0) & (x < 1)).astype(float)


_clipped_relu_window.breakpoints = [0.0, 1.0]


def _tanh_derivative(x):
    return 1.0 / np.cosh(x) ** 2


@pytest.mark.parametrize("mu", [_clipped_relu_window, _tanh_derivative], ids=["window", "smooth"])
def test_callable_one_point(benchmark, point, mu):
    benchmark.group = "analytic: callable mu' by quadrature, one point"
    benchmark.extra_info.update(surrogate=mu.__name__, m=M, n=N)
    benchmark.pedantic(stefast.expected_coarse_grad, args=point, kwargs=dict(ste=mu),
                       rounds=10, iterations=1, warmup_rounds=1)
    if not benchmark.disabled:
        benchmark.extra_info["milliseconds"] = benchmark.stats.stats.min * 1e3
