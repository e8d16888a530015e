/*
 * simulate.c -- a small simulator built on stefast's installed C library.
 *
 * Draws a training set and a teacher/student pair with stefast's Gaussian
 * generator (the numbers stefast.standard_normals draws for the same key and
 * streams), then runs coarse gradient descent (Algorithm 1 of Yin et al.,
 * ICLR 2019) on the two-layer binarized model with the ReLU straight-through
 * estimator, and prints everything with 17 significant digits so that a
 * Python script can check it bit for bit (tests/test_embed.py does).
 *
 * Usage: simulate KEY0 KEY1 [STEPS]
 *   KEY0 KEY1: the generator key, two unsigned 64-bit words (Python:
 *              stefast.montecarlo.mc_key(seed) gives the words of a seed).
 *
 * Data layout (streams under the key):
 *   streams 0 .. B-1  sample b's Z (m x n), one stream per sample;
 *   stream B          the weights: v_star (m), w_star (n), v0 (m), w0 (n).
 *
 * Build (examples/embed/README.md):
 *   cc simulate.c $(pkg-config --cflags --libs stefast) -o simulate
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <stefast/stefast.h>

enum { M = 4, N = 6, B = 32 };

/* A power of two, as B is: lr * (g / B) is then exact, so the update rounds
 * once whether or not the compiler fuses it into a multiply-add. */
static const double LEARNING_RATE = 0.25;

static void check(stefast_status status, const char *what)
{
    if (status != STEFAST_OK) {
        fprintf(stderr, "simulate: %s: %s\n", what, stefast_strerror(status));
        exit(1);
    }
}

static void print_vector(const char *name, const double *x, int len)
{
    printf("%s", name);
    for (int i = 0; i < len; i++) printf(" %.17g", x[i]);
    printf("\n");
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s KEY0 KEY1 [STEPS]\n", argv[0]);
        return 2;
    }
    const uint64_t key[2] = {strtoull(argv[1], NULL, 10), strtoull(argv[2], NULL, 10)};
    const int steps = argc == 4 ? atoi(argv[3]) : 10;
    const int threads = 2; /* the results never depend on it */

    static double Z[B * M * N];
    double weights[2 * M + 2 * N];
    check(stefast_normals_d(key, 0, B, M * N, Z, threads), "normals (Z)");
    check(stefast_normals_d(key, B, 1, 2 * M + 2 * N, weights, threads), "normals (weights)");
    const double *v_star = weights, *w_star = weights + M;
    double v[M], w[N];
    for (int i = 0; i < M; i++) v[i] = weights[M + N + i];
    for (int j = 0; j < N; j++) w[j] = weights[2 * M + N + j];

    printf("stefast %s\n", stefast_version());
    print_vector("weights", weights, 2 * M + 2 * N);
    print_vector("Z0", Z, M * N);

    double loss_sum, grad_v_sum[M], grad_w_sum[N];
    for (int t = 0; t < steps; t++) {
        check(stefast_loss_and_grads_sum_d(Z, v, w, v_star, w_star, B, M, N, STEFAST_STE_RELU,
                                           &loss_sum, grad_v_sum, grad_w_sum, threads),
              "loss_and_grads_sum");
        printf("step %d loss %.17g\n", t, loss_sum / B);
        for (int i = 0; i < M; i++) v[i] -= LEARNING_RATE * (grad_v_sum[i] / B);
        for (int j = 0; j < N; j++) w[j] -= LEARNING_RATE * (grad_w_sum[j] / B);
    }
    print_vector("v", v, M);
    print_vector("w", w, N);
    return 0;
}
