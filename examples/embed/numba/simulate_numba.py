"""The simulator of ../c/simulate.c written with Numba: one @numba.njit
function draws the data with stefast's Gaussian generator and runs coarse
gradient descent with stefast's loss-and-gradient kernel, calling both C
functions from compiled code through stefast.jit (no Python inside the loop).

    python simulate_numba.py KEY0 KEY1 [STEPS]

prints the lines simulate.c prints; tests/test_numba.py checks them, bit for
bit, against the Python API. KEY0 KEY1 are the generator's key
(stefast.montecarlo.mc_key(seed) gives the words of a seed).
"""
import sys

import numba
import numpy as np

import stefast
import stefast.jit

M, N, B = 4, 6, 32
# a power of two, as B is: lr * (g / B) rounds once, as in the C simulator
LEARNING_RATE = 0.25

# Module-level ints and ctypes functions are frozen into the compiled code
# (Numba reads globals once, at compile time).
OK = stefast.jit.STATUS_CODES["STEFAST_OK"]
RELU = stefast.jit.STE_CODES["relu"]
normals_d = stefast.jit.c_function("stefast_normals_d")
loss_and_grads_sum_d = stefast.jit.c_function("stefast_loss_and_grads_sum_d")


@numba.njit(nogil=True)
def simulate(key, steps, threads=2):
    """(status, weights, first sample of Z, mean loss before each step,
    final v, final w) of coarse gradient descent on data drawn under key (two
    uint64 words). Arrays go to C as `array.ctypes`, which Numba checks
    against the pointer types of the C signature."""
    Z = np.empty(B * M * N)
    weights = np.empty(2 * M + 2 * N)
    losses = np.zeros(steps)
    # streams 0 .. B-1: one sample of Z each; stream B: v*, w*, v0, w0
    status = normals_d(key.ctypes, 0, B, M * N, Z.ctypes, threads)
    if status == OK:
        status = normals_d(key.ctypes, B, 1, 2 * M + 2 * N, weights.ctypes, threads)
    v_star, w_star = weights[:M], weights[M:M + N]
    v, w = weights[M + N:2 * M + N].copy(), weights[2 * M + N:].copy()
    loss_sum, grad_v_sum, grad_w_sum = np.empty(1), np.empty(M), np.empty(N)
    for t in range(steps):
        if status != OK:
            break
        status = loss_and_grads_sum_d(Z.ctypes, v.ctypes, w.ctypes, v_star.ctypes,
                                      w_star.ctypes, B, M, N, RELU, loss_sum.ctypes,
                                      grad_v_sum.ctypes, grad_w_sum.ctypes, threads)
        losses[t] = loss_sum[0] / B
        for i in range(M):
            v[i] -= LEARNING_RATE * (grad_v_sum[i] / B)
        for j in range(N):
            w[j] -= LEARNING_RATE * (grad_w_sum[j] / B)
    return status, weights, Z[:M * N].copy(), losses, v, w


def main(argv):
    if len(argv) not in (2, 3):
        sys.exit("usage: simulate_numba.py KEY0 KEY1 [STEPS]")
    key = np.array([int(argv[0]), int(argv[1])], dtype=np.uint64)
    steps = int(argv[2]) if len(argv) == 3 else 10
    status, weights, Z0, losses, v, w = simulate(key, steps)
    if status != OK:
        # the messages are C strings, which only Python reads
        strerror = stefast.jit.c_function("stefast_strerror")
        sys.exit(f"simulate_numba: {strerror(status).decode()}")
    print(f"stefast {stefast.__version__}")
    print("weights", *(f"{x:.17g}" for x in weights))
    print("Z0", *(f"{x:.17g}" for x in Z0))
    for t, loss in enumerate(losses):
        print(f"step {t} loss {loss:.17g}")
    print("v", *(f"{x:.17g}" for x in v))
    print("w", *(f"{x:.17g}" for x in w))


if __name__ == "__main__":
    main(sys.argv[1:])
