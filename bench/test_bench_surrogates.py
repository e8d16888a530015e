"""loss_and_grads with a smooth or piecewise-polynomial registry surrogate
against the named windows, in the same run, round by round (interleaved):
the cost of evaluating mu'(z.w) in C (stefast's own exp, surrogate.h) and of
keeping every row with mu' != 0 in Z^T a, relative to a window.

Run: pytest bench/test_bench_surrogates.py   (add --benchmark-disable for a smoke run)
"""

import numpy as np
import pytest

import stefast
from stefast import surrogates as S
from conftest import NOTES

# identity keeps every row, as the smooth surrogates do: the cost of mu' apart
STES = {
    "relu": "relu",
    "identity": "identity",
    "hardtanh": "hardtanh",
    "approx_sign": S.approx_sign(),
    "swish_sign": S.swish_sign(5.0),
    "tanh": S.tanh(1.0),
    "sigmoid": S.sigmoid(4.0),
}
# Z in cache (4 MB) and from memory (64 MB), as the core benchmark reads it
SIZES = {"in cache": 4_000_000, "from memory": 64_000_000}


@pytest.mark.quick
@pytest.mark.parametrize("where", list(SIZES))
@pytest.mark.parametrize("m, n", [(32, 64)], ids=["32x64"])
def test_surrogate_cost_against_windows(interleave, benchmark, m, n, where):
    rng = np.random.default_rng(0)
    B = -(-SIZES[where] // (m * n * 8))
    Z = rng.standard_normal((B, m, n))
    v, w, v_star, w_star = (rng.standard_normal(k) for k in (m, n, m, n))
    fns = {name: (lambda ste=ste: stefast.loss_and_grads(Z, v, w, v_star, w_star, ste=ste,
                                                          threads=1))
           for name, ste in STES.items()}
    benchmark.group = f"interleaved: loss_and_grads {m}x{n} float64 by surrogate, Z {where}"
    summary = interleave(fns, work=B, rounds=11)
    if benchmark.disabled:
        return
    base = summary["relu"]["median"]
    ratios = {name: s["median"] / base for name, s in summary.items()}
    benchmark.extra_info["time_over_relu"] = ratios
    NOTES.append(f"loss_and_grads {m}x{n} float64, Z {where}, one thread, time / relu's: "
                 + ", ".join(f"{k} {r:.2f}" for k, r in ratios.items()))
