"""Call overhead: stefast on tiny inputs against ``np.add`` on the same sizes,
timed in turn in the same run (issue 19, "cheap validation").

A simulator that calls stefast once per step pays the validation and
dispatch of every call; on inputs this small that is all a call costs.
Each round times a loop of CALLS calls of every function in turn; the table
gives the median time per call and its ratio to ``np.add``'s call on the
same number of values:

* binarize, sign, ste_grad on 16 float64 values (np.add of two 16-vectors,
  returning a new array as they do);
* forward, loss_and_grads on one 4x4 sample (np.add of two 4x4 arrays);
* the one-point closed forms population_loss, population_grad,
  expected_coarse_grad and coarse_grad_cosine (m = n = 4, the default
  surrogate relu, and expected_coarse_grad with identity and clipped_relu;
  np.add of two 4-vectors).

    pytest bench/test_bench_overhead.py -s            # timed, table printed
    pytest bench/test_bench_overhead.py --benchmark-disable   # smoke
"""

import numpy as np

import stefast
from conftest import NOTES, QUICK, repeat_calls

CALLS = 2000


def _cases():
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal(16), rng.standard_normal(16)
    Z = rng.standard_normal((4, 4))
    v, w, v_star, w_star = (rng.standard_normal(4) for _ in range(4))
    a44, b44, out44 = np.ones((4, 4)), np.ones((4, 4)), np.empty((4, 4))
    a4, b4, out4 = np.ones(4), np.ones(4), np.empty(4)
    add16 = lambda: np.add(x, g)  # noqa: E731
    return [
        ("binarize(16)", lambda: stefast.binarize(x), add16),
        ("sign(16)", lambda: stefast.sign(x), add16),
        ("ste_grad(16)", lambda: stefast.ste_grad(x, g), add16),
        ("forward(4x4)", lambda: stefast.forward(Z, v, w), lambda: np.add(a44, b44, out=out44)),
        ("loss_and_grads(4x4)", lambda: stefast.loss_and_grads(Z, v, w, v_star, w_star),
         lambda: np.add(a44, b44, out=out44)),
        ("population_loss(4, 4)",
         lambda: stefast.population_loss(v, w, v_star, w_star), lambda: np.add(a4, b4, out=out4)),
        ("population_grad(4, 4)",
         lambda: stefast.population_grad(v, w, v_star, w_star), lambda: np.add(a4, b4, out=out4)),
        ("expected_coarse_grad(4, 4)",
         lambda: stefast.expected_coarse_grad(v, w, v_star, w_star), lambda: np.add(a4, b4, out=out4)),
        ("  ste='identity'",
         lambda: stefast.expected_coarse_grad(v, w, v_star, w_star, ste="identity"),
         lambda: np.add(a4, b4, out=out4)),
        ("  ste='clipped_relu'",
         lambda: stefast.expected_coarse_grad(v, w, v_star, w_star, ste="clipped_relu"),
         lambda: np.add(a4, b4, out=out4)),
        ("coarse_grad_cosine(4, 4)",
         lambda: stefast.coarse_grad_cosine(v, w, v_star, w_star), lambda: np.add(a4, b4, out=out4)),
    ]


def test_call_overhead(interleave):
    calls = 50 if QUICK else CALLS
    fns = {}
    for name, fast, add in _cases():
        fns[name] = repeat_calls(fast, calls)
        fns[f"np.add for {name}"] = repeat_calls(add, calls)
    summary = interleave(fns, work=calls, rounds=15, unit="calls")
    NOTES.append(f"{'call (one small input)':28s} {'stefast us':>10s} {'np.add us':>10s} "
                 f"{'ratio':>6s}")
    for name, _, _ in _cases():
        fast = summary[name]["median"] / calls
        add = summary[f"np.add for {name}"]["median"] / calls
        NOTES.append(f"{name:28s} {fast * 1e6:10.2f} {add * 1e6:10.2f} {fast / add:6.1f}")
