/*
 * c_rounding_test.c -- prints, as exact hex floats, the results of the kernels
 * whose bits must not depend on the build: batch sums of
 * stefast_loss_and_grads_sum_{d,f} for awkward shapes (row tails of every
 * length), with a 64-bit FNV-1a digest of the per-sample
 * stefast_loss_and_grads_{d,f} and stefast_forward_{d,f} outputs for the same
 * batches; standard normals of both dtypes (ziggurat slow paths and partial
 * chunks included); Monte Carlo means of every method; descent ensembles on
 * drawn training sets (full batch, shuffled mini-batches with label noise,
 * online). tests/test_c_api.py
 * builds it for baseline x86-64, for AVX2, with runtime dispatch, with every
 * C compiler it finds and for aarch64 (run under qemu), and checks that all
 * outputs are identical and match a stored SHA-256. The batch sums are also
 * computed for Z placed on a 64-byte boundary and 8 bytes past one, which
 * take different load paths (sample_impl.h), and must agree exactly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h> /* memcmp */

#include "stefast.h"

/* FNV-1a over the bytes of an array: a digest that any changed bit changes */
static uint64_t fnv1a(uint64_t h, const void *data, size_t bytes)
{
    const unsigned char *p = data;
    for (size_t k = 0; k < bytes; k++) h = (h ^ p[k]) * 0x100000001B3ull;
    return h;
}

static double pseudo(unsigned long long *state)
{
    *state = *state * 6364136223846793005ULL + 1442695040888963407ULL;
    return ((double)(*state >> 11) / 9007199254740992.0) * 4.0 - 2.0;
}

int main(void)
{
    /* {5, 24} to {4, 80}: rows of 3 to 5 whole lines in one dtype or both
     * (w and ws held in registers; 8 bytes past a line, rows of up to 4
     * lines are read where they lie); the last three take the one-pass Z^T a
     * (float64; the last float32 too) */
    static const int shapes[][2] = {{1, 1}, {3, 7}, {5, 17}, {8, 16}, {4, 33}, {6, 63}, {2, 100},
                                    {3, 40}, {5, 24}, {9, 32}, {6, 48}, {7, 64}, {4, 80},
                                    {70, 128}, {130, 128}, {40, 256}};
    unsigned long long state = 7;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        const int64_t m = shapes[s][0], n = shapes[s][1], B = m * n > 1000 ? 6 : 300;
        const int64_t len = B * m * n;
        /* each dtype twice: on a 64-byte boundary, and 8 bytes past one */
        const size_t bytes = sizeof(double) * (size_t)len, bytesf = sizeof(float) * (size_t)len;
        char *raw = malloc(2 * bytes + 192), *rawf = malloc(2 * bytesf + 192);
        double vec[4][256], sums[2][1 + 256 + 256];
        float vecf[4][256];
        if (raw == NULL || rawf == NULL) return 1;
        char *line = raw + (64 - (uintptr_t)raw % 64), *linef = rawf + (64 - (uintptr_t)rawf % 64);
        double *Zd[2] = {(double *)line, (double *)(line + (bytes + 63) / 64 * 64 + 8)};
        float *Zf[2] = {(float *)linef, (float *)(linef + (bytesf + 63) / 64 * 64 + 8)};
        for (int64_t k = 0; k < len; k++) Zf[0][k] = Zf[1][k] = (float)(Zd[0][k] = Zd[1][k] = pseudo(&state));
        for (int a = 0; a < 4; a++)
            for (int k = 0; k < 256; k++) vecf[a][k] = (float)(vec[a][k] = pseudo(&state));
        for (int ste = STEFAST_STE_IDENTITY; ste <= STEFAST_STE_HARDTANH; ste++) {
            for (int dbl = 1; dbl >= 0; dbl--) {
                for (int at = 0; at < 2; at++) {
                    int status = dbl
                        ? stefast_loss_and_grads_sum_d(Zd[at], vec[0], vec[1], vec[2], vec[3], B, m,
                                                       n, (stefast_ste)ste, sums[at], sums[at] + 1,
                                                       sums[at] + 1 + m, 1)
                        : stefast_loss_and_grads_sum_f(Zf[at], vecf[0], vecf[1], vecf[2], vecf[3],
                                                       B, m, n, (stefast_ste)ste, sums[at],
                                                       sums[at] + 1, sums[at] + 1 + m, 1);
                    if (status != STEFAST_OK) return 1;
                }
                if (memcmp(sums[0], sums[1], sizeof(double) * (size_t)(1 + m + n)) != 0) {
                    fprintf(stderr, "m=%d n=%d: result depends on the placement of Z\n",
                            (int)m, (int)n);
                    return 1;
                }
                for (int64_t k = 0; k < 1 + m + n; k++) printf("%a ", sums[0][k]);
                /* per sample, Z off a line: loss, grad_v, grad_w, forward */
                const size_t size = dbl ? sizeof(double) : sizeof(float);
                void *out = malloc(size * (size_t)(B * (2 + m + n)));
                if (out == NULL) return 1;
                char *loss = out, *gv = loss + size * (size_t)B;
                char *gw = gv + size * (size_t)(B * m), *y = gw + size * (size_t)(B * n);
                const int status = dbl
                    ? stefast_loss_and_grads_d(Zd[1], vec[0], vec[1], vec[2], vec[3], B, m, n,
                                               (stefast_ste)ste, (double *)loss, (double *)gv,
                                               (double *)gw, 1) |
                      stefast_forward_d(Zd[1], vec[0], vec[1], B, m, n, (double *)y, 1)
                    : stefast_loss_and_grads_f(Zf[1], vecf[0], vecf[1], vecf[2], vecf[3], B, m,
                                               n, (stefast_ste)ste, (float *)loss, (float *)gv,
                                               (float *)gw, 1) |
                      stefast_forward_f(Zf[1], vecf[0], vecf[1], B, m, n, (float *)y, 1);
                if (status != STEFAST_OK) return 1;
                printf("%016llx ", (unsigned long long)fnv1a(0xCBF29CE484222325ull, out,
                                                             size * (size_t)(B * (2 + m + n))));
                free(out);
            }
            printf("\n");
        }
        free(raw);
        free(rawf);
    }
    /* 3 streams of 1000 normals: about 36 float64 slow-path values */
    const uint64_t key[2] = {0x243F6A8885A308D3ull, 0x13198A2E03707344ull};
    static double nd[3 * 1000];
    static float nf[3 * 1000];
    if (stefast_normals_d(key, 5, 3, 1000, nd, 1) != STEFAST_OK) return 1;
    if (stefast_normals_f(key, 5, 3, 1000, nf, 1) != STEFAST_OK) return 1;
    for (int k = 0; k < 3 * 1000; k++) printf("%a %a\n", nd[k], (double)nf[k]);
    /* Monte Carlo, m = 5, n = 37 (row tails), relu, every method; the
     * projected ones with Q the first two unit vectors, so w = Q^T alpha */
    {
        const int64_t m = 5, n = 37;
        double vec[4][37], mean[43], m2[43], Q[2 * 37] = {0};
        float vecf[4][37], Qf[2 * 37] = {0};
        for (int a = 0; a < 4; a++)
            for (int k = 0; k < 37; k++) vecf[a][k] = (float)(vec[a][k] = pseudo(&state));
        Q[0] = Q[37 + 1] = Qf[0] = Qf[37 + 1] = 1;
        const double alpha[2] = {vec[1][0], vec[1][1]}, beta[2] = {vec[3][0], vec[3][1]};
        const float alphaf[2] = {vecf[1][0], vecf[1][1]}, betaf[2] = {vecf[3][0], vecf[3][1]};
        for (int method = STEFAST_MC_FULL; method <= STEFAST_MC_CONDITIONAL; method++) {
            const int64_t p = stefast_mc_width((stefast_mc_method)method, m, n, 2);
            for (int dbl = 1; dbl >= 0; dbl--) {
                int64_t count = 0;
                const int status = dbl
                    ? stefast_mc_accumulate_d(vec[0], vec[1], vec[2], vec[3], Q, alpha, beta, 2,
                                              m, n, STEFAST_STE_RELU,
                                              (stefast_mc_method)method, key, 0, 500, 100,
                                              &count, mean, m2, 1)
                    : stefast_mc_accumulate_f(vecf[0], vecf[1], vecf[2], vecf[3], Qf, alphaf,
                                              betaf, 2, m, n, STEFAST_STE_RELU,
                                              (stefast_mc_method)method, key, 0, 500, 100,
                                              &count, mean, m2, 1);
                if (status != STEFAST_OK || count != 500) return 1;
                for (int64_t k = 0; k < p; k++) printf("%a %a ", mean[k], m2[k]);
            }
            printf("\n");
        }
    }
    /* descent ensembles, m = 5, n = 37: 3 runs on sets drawn from their
     * streams (full batch with teacher labels; mini-batches of 16 over
     * shuffled epochs with label noise; online batches of 8), every iterate
     * of every run as hex floats */
    {
        const int64_t R = 3, m = 5, n = 37, steps = 25;
        static double v0[3 * 5], w0[3 * 37], vs[5], ws[37], v[3 * 5], w[3 * 37];
        static float v0f[3 * 5], w0f[3 * 37], vsf[5], wsf[37], vf[3 * 5], wf[3 * 37];
        for (int64_t k = 0; k < R * m; k++) v0f[k] = (float)(v0[k] = pseudo(&state));
        for (int64_t k = 0; k < R * n; k++) w0f[k] = (float)(w0[k] = pseudo(&state));
        for (int64_t k = 0; k < m; k++) vsf[k] = (float)(vs[k] = pseudo(&state));
        for (int64_t k = 0; k < n; k++) wsf[k] = (float)(ws[k] = pseudo(&state));
        /* {N, batch_size, label_noise} */
        static const struct { int64_t N, batch; double noise; } modes[] = {
            {40, 0, 0.0}, {40, 16, 0.1}, {0, 8, 0.0}};
        for (size_t mode = 0; mode < sizeof modes / sizeof modes[0]; mode++) {
            stefast_descent_options opt = {0};
            opt.lr = 0.05;
            opt.steps = steps;
            opt.batch_size = modes[mode].batch;
            opt.label_noise = modes[mode].noise;
            opt.ste = STEFAST_STE_RELU;
            opt.key[0] = key[0];
            opt.key[1] = key[1];
            int64_t taken[3];
            double final[3];
            for (int dbl = 1; dbl >= 0; dbl--) {
                const int status = dbl
                    ? stefast_descent_ensemble_d(v0, w0, vs, ws, 0, NULL, NULL, R,
                                                 modes[mode].N, m, n, 11, &opt, v, w, taken,
                                                 final, NULL, NULL, NULL, 0, 2)
                    : stefast_descent_ensemble_f(v0f, w0f, vsf, wsf, 0, NULL, NULL, R,
                                                 modes[mode].N, m, n, 11, &opt, vf, wf, taken,
                                                 final, NULL, NULL, NULL, 0, 2);
                if (status != STEFAST_OK) return 1;
                for (int64_t r = 0; r < R; r++) printf("%lld %a ", (long long)taken[r], final[r]);
                for (int64_t k = 0; k < R * m; k++) printf("%a ", dbl ? v[k] : (double)vf[k]);
                for (int64_t k = 0; k < R * n; k++) printf("%a ", dbl ? w[k] : (double)wf[k]);
                printf("\n");
            }
        }
    }
    return 0;
}
