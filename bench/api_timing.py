"""Times one stefast call through the Python API of whichever stefast this
interpreter imports, so two installed builds (GCC and Clang, say, in two
venvs) can be compared in interleaved runs; the Python twin of c_timing.c.

usage: python bench/api_timing.py loss|mc m n d|f [megabytes]
  loss: loss_and_grads(reduce="sum") over a Z of `megabytes` (default 64)
  mc:   monte_carlo(method="full") over 10^8 sample elements (m n per
        sample; at least 1000 samples)
prints: best ns per element of Z (per m*n sample element) over 5 calls,
one thread
"""
import sys
import time

import numpy as np

import stefast


def main(kernel, m, n, dtype, megabytes="64"):
    m, n = int(m), int(n)
    dtype = {"d": np.float64, "f": np.float32}[dtype]
    rng = np.random.default_rng(0)
    v, v_star = rng.standard_normal((2, m)).astype(dtype)
    w, w_star = rng.standard_normal((2, n)).astype(dtype)
    if kernel == "loss":
        B = int(float(megabytes) * 1e6) // (m * n * np.dtype(dtype).itemsize) + 1
        Z = rng.standard_normal((B, m, n), dtype=dtype)
        work = Z.size
        call = lambda: stefast.loss_and_grads(Z, v, w, v_star, w_star, reduce="sum", threads=1)
    elif kernel == "mc":
        n_samples = max(1000, 100_000_000 // (m * n))
        work = n_samples * m * n
        call = lambda: stefast.monte_carlo(v, w, v_star, w_star, n_samples=n_samples, rng=3,
                                           dtype=dtype, threads=1)
    else:
        raise SystemExit(f"kernel must be 'loss' or 'mc', got {kernel!r}")
    call()
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - start)
    print(f"{best / work * 1e9:.4f}")


if __name__ == "__main__":
    if len(sys.argv) not in (5, 6):
        raise SystemExit(__doc__)
    main(*sys.argv[1:])
