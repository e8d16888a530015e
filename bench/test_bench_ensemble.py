"""Coarse gradient descent ensembles: stefast.descent_ensemble against a
JAX jit(vmap(lax.scan)) of the same runs and a NumPy loop over runs (the
reference twin), and its cost per sample-step against loss_and_grads' cost
per sample on the same (m, n) and dtype, all timed round by round in one
run (interleave). Full-batch runs with teacher labels, relu STE, one thread.

    pytest bench/test_bench_ensemble.py
"""

import numpy as np
import pytest

import stefast
from stefast import reference as ref
import _peers
from conftest import NOTES

M, N_DIM, N_TRAIN, STEPS, LR = 16, 32, 256, 50, 0.05


def _problem(R, dtype):
    rng = np.random.default_rng(0)
    v0 = rng.standard_normal((R, M)).astype(dtype)
    w0 = rng.standard_normal((R, N_DIM)).astype(dtype)
    v_star = rng.standard_normal(M).astype(dtype)
    w_star = rng.standard_normal(N_DIM).astype(dtype)
    Z = rng.standard_normal((R, N_TRAIN, M, N_DIM)).astype(dtype)
    return v0, w0, v_star, w_star, Z


@pytest.mark.quick
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_ensemble_vs_peers(interleave, c_read, dtype):
    R = 8
    v0, w0, v_star, w_star, Z = _problem(R, dtype)
    kw = dict(ste="relu", lr=LR, steps=STEPS, Z=Z, threads=1)
    fns = {
        "stefast": lambda: stefast.descent_ensemble(v0, w0, v_star, w_star, **kw),
        # what one step costs through the model kernel, the floor of a step
        "loss_and_grads": lambda: [stefast.loss_and_grads(Z[r], v0[r], w0[r], v_star, w_star,
                                                         reduce="sum", threads=1)
                                   for r in range(R) for _ in range(STEPS + 1)],
        "numpy loop": lambda: ref.descent_ensemble(v0, w0, v_star, w_star, **kw),
    }
    if c_read is not None:
        # one pass over each run's training set per step: the floor for any
        # implementation that reads Z once per step (it is larger than L2)
        fns["read Z once per step"] = lambda: [c_read(Z[r]) for r in range(R)
                                               for _ in range(STEPS + 1)]
    if dtype == np.float64:
        try:
            jax = _peers.jax_or_skip()
        except pytest.skip.Exception:
            jax = None
        if jax is not None:
            run = _peers.jax_ensemble(STEPS, LR)
            args = [jax.numpy.asarray(a) for a in (v0, w0, v_star, w_star, Z)]
            got = run(*args)
            want = stefast.descent_ensemble(v0, w0, v_star, w_star, **kw)
            np.testing.assert_allclose(np.asarray(got[0]), want.v, rtol=1e-6, atol=1e-9)
            fns["jax"] = lambda: [x.block_until_ready() for x in run(*args)]
    work = R * (STEPS + 1) * N_TRAIN  # sample-steps (the last step evaluates only)
    summary = interleave(fns, work, rounds=5, unit="sample-steps", m=M, n=N_DIM,
                         N=N_TRAIN, R=R, dtype=np.dtype(dtype).name)
    fast = summary["stefast"]["median"]
    cells = []
    for name, s in summary.items():
        s["stefast_speedup"] = s["median"] / fast
        cells.append(f"{name} {s['median'] / work * 1e9:.1f} ns ({s['stefast_speedup']:.2f}x)")
    NOTES.append(f"ensemble {M}x{N_DIM} N={N_TRAIN} {np.dtype(dtype).name}, per sample-step "
                 "(time / stefast's): " + "; ".join(cells))
