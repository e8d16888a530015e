/*
 * c_timing.c -- times a kernel from plain C, so the same kernel source can be
 * compared across compilers and flags (GCC vs Clang, the default dispatching
 * build vs -march=native) in one benchmark run. Built and run by
 * bench/test_bench_core.py; not part of the library.
 *
 * usage: c_timing kernel m n megabytes dtype(d|f) repeats
 *   kernel: loss (stefast_loss_and_grads_sum over a Z of `megabytes`),
 *           normals (stefast_normals, as many values as that Z holds),
 *           mc (stefast_mc_accumulate, method full, as many samples)
 * prints: best ns per element of Z (per normal) over the repeats, one thread
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#include "stefast.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

/* deterministic, roughly symmetric values in (-2, 2) */
static double pseudo(uint64_t *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(*state >> 11) / 9007199254740992.0) * 4.0 - 2.0;
}

int main(int argc, char **argv)
{
    if (argc != 7) {
        fprintf(stderr, "usage: %s loss|normals|mc m n megabytes d|f repeats\n", argv[0]);
        return 2;
    }
    const char kernel = argv[1][0];
    const int64_t m = atoll(argv[2]), n = atoll(argv[3]);
    const double mb = atof(argv[4]);
    const int dbl = argv[5][0] == 'd', repeats = atoi(argv[6]);
    const size_t elem = dbl ? sizeof(double) : sizeof(float);
    const int64_t B = (int64_t)(mb * 1e6 / (double)(m * n * elem)) + 1;
    const int64_t len = B * m * n;
    /* 2 MiB-aligned and, on Linux, huge pages (as NumPy asks for large
     * arrays): otherwise the timing swings by 30-50 % from run to run with
     * where the kernel happens to place the buffer */
    void *Z = NULL;
    if (posix_memalign(&Z, (size_t)1 << 21, (size_t)len * elem) != 0) Z = NULL;
#ifdef MADV_HUGEPAGE
    if (Z != NULL) madvise(Z, (size_t)len * elem, MADV_HUGEPAGE);
#endif
    double vec[4][4096], sums[2 * (1 + 2 * 4096)];
    float vecf[4][4096];
    if (Z == NULL || m > 4096 || n > 4096) return 1;
    uint64_t state = 42;
    for (int64_t k = 0; k < len; k++) {
        double x = pseudo(&state);
        if (dbl) ((double *)Z)[k] = x; else ((float *)Z)[k] = (float)x;
    }
    for (int a = 0; a < 4; a++)
        for (int k = 0; k < 4096; k++) vecf[a][k] = (float)(vec[a][k] = pseudo(&state));
    const uint64_t key[2] = {1, 2};
    double best = 1e300;
    for (int rep = 0; rep < repeats; rep++) {
        double t0 = now();
        int status;
        if (kernel == 'n') {
            status = dbl ? stefast_normals_d(key, 0, 1, len, Z, 1)
                         : stefast_normals_f(key, 0, 1, len, Z, 1);
        } else if (kernel == 'm') {
            int64_t count = 0; /* means, then sums of squares: 1 + m + n each */
            status = dbl ? stefast_mc_accumulate_d(vec[0], vec[1], vec[2], vec[3], NULL, NULL,
                                                   NULL, 0, m, n, STEFAST_STE_RELU,
                                                   STEFAST_MC_FULL, key, 0, B, 256, &count,
                                                   sums, sums + 1 + 2 * 4096, 1)
                         : stefast_mc_accumulate_f(vecf[0], vecf[1], vecf[2], vecf[3], NULL,
                                                   NULL, NULL, 0, m, n, STEFAST_STE_RELU,
                                                   STEFAST_MC_FULL, key, 0, B, 256, &count,
                                                   sums, sums + 1 + 2 * 4096, 1);
        } else {
            status = dbl
                ? stefast_loss_and_grads_sum_d(Z, vec[0], vec[1], vec[2], vec[3], B, m, n,
                                               STEFAST_STE_RELU, sums, sums + 1, sums + 1 + m, 1)
                : stefast_loss_and_grads_sum_f(Z, vecf[0], vecf[1], vecf[2], vecf[3], B, m, n,
                                               STEFAST_STE_RELU, sums, sums + 1, sums + 1 + m, 1);
        }
        double t = now() - t0;
        if (status != STEFAST_OK) return 1;
        if (t < best) best = t;
    }
    printf("%.4f\n", best / (double)len * 1e9);
    free(Z);
    return 0;
}
