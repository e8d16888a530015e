# cython: language_level=3
"""The simulator of ../c/simulate.c as a Cython extension module that
cimports stefast's public declarations (stefast/cstefast.pxd) and calls the C
kernels without the GIL.

    python setup.py build_ext --inplace
    python -c "import simulate_cy; simulate_cy.main()" KEY0 KEY1 [STEPS]

prints the lines simulate.c prints (tests/test_embed.py checks them against
the Python API).
"""
import sys

from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc

from stefast cimport cstefast

cdef enum:
    M = 4
    N = 6
    B = 32

# a power of two, as B is: the update rounds once, fused or not
cdef double LEARNING_RATE = 0.25


cdef int check(cstefast.stefast_status status, str what) except -1:
    if status != cstefast.STEFAST_OK:
        raise RuntimeError(f"{what}: {cstefast.stefast_strerror(status).decode()}")
    return 0


def simulate(uint64_t key0, uint64_t key1, int steps, int threads=2):
    """(weights, first sample of Z, mean loss before each step, final v, final w)
    of coarse gradient descent on data drawn under the key (key0, key1)."""
    cdef uint64_t key[2]
    cdef double Z[B * M * N]
    cdef double weights[2 * M + 2 * N]
    cdef double v[M]
    cdef double w[N]
    cdef double grad_v_sum[M]
    cdef double grad_w_sum[N]
    cdef double loss_sum
    cdef double *losses = <double *>malloc(max(steps, 1) * sizeof(double))
    cdef cstefast.stefast_status status
    cdef int t, i
    if losses == NULL:
        raise MemoryError()
    key[0], key[1] = key0, key1
    try:
        # the whole simulation runs without the GIL: other Python threads
        # go on meanwhile
        with nogil:
            status = cstefast.stefast_normals_d(key, 0, B, M * N, Z, threads)
            if status == cstefast.STEFAST_OK:
                status = cstefast.stefast_normals_d(key, B, 1, 2 * M + 2 * N, weights, threads)
            for i in range(M):
                v[i] = weights[M + N + i]
            for i in range(N):
                w[i] = weights[2 * M + N + i]
            t = 0
            while t < steps and status == cstefast.STEFAST_OK:
                status = cstefast.stefast_loss_and_grads_sum_d(
                    Z, v, w, weights, weights + M, B, M, N, cstefast.STEFAST_STE_RELU,
                    &loss_sum, grad_v_sum, grad_w_sum, threads)
                losses[t] = loss_sum / B
                for i in range(M):
                    v[i] -= LEARNING_RATE * (grad_v_sum[i] / B)
                for i in range(N):
                    w[i] -= LEARNING_RATE * (grad_w_sum[i] / B)
                t += 1
        check(status, "simulate")
        return ([weights[i] for i in range(2 * M + 2 * N)], [Z[i] for i in range(M * N)],
                [losses[i] for i in range(steps)], [v[i] for i in range(M)],
                [w[i] for i in range(N)])
    finally:
        free(losses)


def main(argv=None):
    """Command line of ../c/simulate.c: KEY0 KEY1 [STEPS]."""
    args = sys.argv[1:] if argv is None else argv
    steps = int(args[2]) if len(args) > 2 else 10
    weights, Z0, losses, v, w = simulate(int(args[0]), int(args[1]), steps)

    def line(name, values):
        print(name, *["%.17g" % x for x in values])

    print("stefast", cstefast.stefast_version().decode())
    line("weights", weights)
    line("Z0", Z0)
    for t, loss in enumerate(losses):
        print("step", t, "loss", "%.17g" % loss)
    line("v", v)
    line("w", w)
