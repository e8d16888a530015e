"""Per-call cost of stefast's kernels called from @numba.njit code (through
stefast.jit) against the same call through the Python API, timed in turn in
the same run (issue 18, "Numba and other JITs").

A Numba simulator that calls a kernel once per step pays the ctypes-pointer
call from compiled code; a Python simulator pays stefast's validation and
dispatch. On inputs this small that is all a call costs. Each round times a
loop of CALLS calls of every variant in turn (the njit loop is one compiled
function making CALLS calls, so its one Python-to-Numba dispatch is spread
over them); the table gives the median time per call and the Python API's
time over the njit call's:

* binarize of 16 float64 values (stefast_binarize_d, out preallocated for
  the njit and ctypes variants; stefast.binarize returns a new array);
* loss_and_grads of one 4x4 sample, relu window, summed
  (stefast_loss_and_grads_sum_d with B = 1, one thread; the Python API's
  default reduce="mean" on one sample computes the same numbers);
* the same C functions called from Python through the ctypes pointers, for
  reference (the pointers built once, outside the loop).

Each njit variant's result is checked against the Python API's before it is
timed. Skips without Numba.

    pytest bench/test_bench_jit.py -s                      # timed, table printed
    pytest bench/test_bench_jit.py --benchmark-disable     # smoke
"""

import ctypes

import numpy as np

import stefast
import stefast.jit
from _peers import numba_or_skip
from conftest import NOTES, QUICK, repeat_calls

CALLS = 2000


def _njit_loops(numba):
    """(binarize_calls(x, out, calls), loss_and_grads_calls(Z, v, w, vs, ws,
    sums, calls)): njit loops calling the C kernels; each returns the sum of
    the statuses, so a failing call shows."""
    binarize_d = stefast.jit.c_function("stefast_binarize_d")
    loss_sum_d = stefast.jit.c_function("stefast_loss_and_grads_sum_d")
    relu = stefast.jit.STE_CODES["relu"]

    @numba.njit(nogil=True)
    def binarize_calls(x, out, calls):
        status = 0
        for _ in range(calls):
            status += binarize_d(x.ctypes, out.ctypes, x.size)
        return status

    @numba.njit(nogil=True)
    def loss_and_grads_calls(Z, v, w, v_star, w_star, sums, calls):
        m, n = Z.shape
        loss, grad_v, grad_w = sums[:1], sums[1:1 + m], sums[1 + m:]
        status = 0
        for _ in range(calls):
            status += loss_sum_d(Z.ctypes, v.ctypes, w.ctypes, v_star.ctypes, w_star.ctypes,
                                 1, m, n, relu, loss.ctypes, grad_v.ctypes, grad_w.ctypes, 1)
        return status

    return binarize_calls, loss_and_grads_calls


def _python_ctypes_calls():
    """The same two calls from Python through the ctypes pointers."""
    binarize_d = stefast.jit.c_function("stefast_binarize_d")
    loss_sum_d = stefast.jit.c_function("stefast_loss_and_grads_sum_d")
    relu = stefast.jit.STE_CODES["relu"]
    pointer = ctypes.POINTER(ctypes.c_double)

    def binarize(x, out, calls):
        px, pout, size = x.ctypes.data_as(pointer), out.ctypes.data_as(pointer), x.size
        for _ in range(calls):
            binarize_d(px, pout, size)

    def loss_and_grads(Z, v, w, v_star, w_star, sums, calls):
        m, n = Z.shape
        args = [a.ctypes.data_as(pointer) for a in (Z, v, w, v_star, w_star)]
        outs = [sums[k:].ctypes.data_as(pointer) for k in (0, 1, 1 + m)]
        for _ in range(calls):
            loss_sum_d(*args, 1, m, n, relu, *outs, 1)

    return binarize, loss_and_grads


def test_njit_call_overhead(interleave):
    numba = numba_or_skip()
    calls = 50 if QUICK else CALLS
    rng = np.random.default_rng(0)
    x, out = rng.standard_normal(16), np.empty(16)
    Z = rng.standard_normal((4, 4))
    v, w, v_star, w_star = (rng.standard_normal(4) for _ in range(4))
    sums = np.empty(1 + 4 + 4)
    nb_binarize, nb_loss = _njit_loops(numba)
    ct_binarize, ct_loss = _python_ctypes_calls()

    # the njit calls compute what the Python API does (and compile here, untimed)
    assert nb_binarize(x, out, 1) == 0
    assert np.array_equal(out, stefast.binarize(x))
    assert nb_loss(Z, v, w, v_star, w_star, sums, 1) == 0
    want = stefast.loss_and_grads(Z, v, w, v_star, w_star, ste="relu")
    assert np.array_equal(sums, np.concatenate([[want.loss], want.grad_v, want.grad_w]))

    cases = {
        "binarize(16)": (
            lambda: nb_binarize(x, out, calls),
            repeat_calls(lambda: stefast.binarize(x), calls),
            lambda: ct_binarize(x, out, calls)),
        "loss_and_grads(4x4)": (
            lambda: nb_loss(Z, v, w, v_star, w_star, sums, calls),
            repeat_calls(lambda: stefast.loss_and_grads(Z, v, w, v_star, w_star), calls),
            lambda: ct_loss(Z, v, w, v_star, w_star, sums, calls)),
    }
    fns = {}
    for name, (njit, api, from_python) in cases.items():
        fns[f"njit {name}"] = njit
        fns[f"python API {name}"] = api
        fns[f"ctypes from python {name}"] = from_python
    summary = interleave(fns, work=calls, rounds=15, unit="calls")
    # nanoseconds: a call from njit code can take a few
    NOTES.append(f"{'call (one small input)':24s} {'njit ns':>8s} {'API ns':>8s} "
                 f"{'API/njit':>8s} {'ctypes-from-Python ns':>22s}")
    for name in cases:
        njit, api, from_python = (summary[f"{kind} {name}"]["median"] / calls
                                  for kind in ("njit", "python API", "ctypes from python"))
        NOTES.append(f"{name:24s} {njit * 1e9:8.1f} {api * 1e9:8.1f} {api / njit:8.1f} "
                     f"{from_python * 1e9:22.1f}")
