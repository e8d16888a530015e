/*
 * c_api_test.c -- uses stefast from plain C through src_c/stefast.h only,
 * as a C simulator would. Compiled against the kernel sources and run by
 * tests/test_c_api.py; prints "ok" and exits 0 when every check passes.
 */
/* sigaction and setitimer, for the interrupt flag set from a signal handler */
#define _XOPEN_SOURCE 700

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "stefast.h"

static int failures = 0;

#define CHECK(cond)                                                    \
    do {                                                               \
        if (!(cond)) {                                                 \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__,     \
                    __LINE__, #cond);                                  \
            failures++;                                                \
        }                                                              \
    } while (0)

/* as a program's SIGINT handler would */
static void request_interrupt(int signum)
{
    (void)signum;
    stefast_request_interrupt();
}

/* The interrupt flag: set before a call, every long run returns STEFAST_EINTR
 * without touching its accumulator; set by a signal handler during a long
 * Monte Carlo run, the run stops with the blocks finished before it folded in,
 * the same bits as a run over just those samples. */
static void check_interrupts(void)
{
    enum { M = 8, NN = 8, BLOCK = 256 };
    double v[M], vs[M], w[NN], ws[NN];
    for (int i = 0; i < M; i++) {
        v[i] = 1.0 + 0.25 * i;
        vs[i] = 1.0;
    }
    for (int j = 0; j < NN; j++) {
        w[j] = j == 0 ? 1.0 : 0.125 * j;
        ws[j] = j == 1 ? 1.0 : 0.0;
    }
    const uint64_t key[2] = {0x5eed, 18};
    const int p = (int)stefast_mc_width(STEFAST_MC_FULL, M, NN, 0);
    double mean[1 + M + NN], m2[1 + M + NN], mean_ref[1 + M + NN], m2_ref[1 + M + NN];
    int64_t count = 0, count_ref = 0;

    CHECK(stefast_interrupt_requested() == 0);
    stefast_request_interrupt();
    CHECK(stefast_interrupt_requested() == 1);
    for (int c = 0; c < p; c++) mean[c] = m2[c] = 7.0;
    CHECK(stefast_mc_accumulate_d(v, w, vs, ws, NULL, NULL, NULL, 0, M, NN, STEFAST_STE_RELU,
                                  STEFAST_MC_FULL, key, 0, 10 * BLOCK, BLOCK, &count, mean, m2,
                                  2) == STEFAST_EINTR);
    CHECK(count == 0 && mean[0] == 7.0 && m2[p - 1] == 7.0);
    /* arguments are still checked first */
    CHECK(stefast_mc_accumulate_d(v, w, vs, ws, NULL, NULL, NULL, 0, M, NN, STEFAST_STE_RELU,
                                  STEFAST_MC_FULL, key, 0, 10 * BLOCK, 0, &count, mean, m2,
                                  2) == STEFAST_EINVAL);

    const stefast_descent_options opt = {0.5, 50, 4, 0, 0.0, 0.0, STEFAST_STE_RELU,
                                         {key[0], key[1]}, NULL};
    double v_out[2 * M], w_out[2 * NN], final_loss[2];
    int64_t steps_taken[2] = {5, 5};
    CHECK(stefast_descent_ensemble_d(v, w, vs, ws, 0, NULL, NULL, 2, 16, M, NN, 0, &opt, v_out,
                                     w_out, steps_taken, final_loss, NULL, NULL, NULL, 0,
                                     2) == STEFAST_EINTR);
    CHECK(steps_taken[0] == -1 && steps_taken[1] == -1);
    stefast_clear_interrupt();
    CHECK(stefast_interrupt_requested() == 0);
    CHECK(stefast_descent_ensemble_d(v, w, vs, ws, 0, NULL, NULL, 2, 16, M, NN, 0, &opt, v_out,
                                     w_out, steps_taken, final_loss, NULL, NULL, NULL, 0,
                                     2) == STEFAST_OK);
    CHECK(steps_taken[0] == 50 && steps_taken[1] == 50);

    /* a run of seconds, stopped from a signal handler after 50 ms of CPU time
     * (CPU time, so that a loaded machine still gets blocks done first) */
    const int64_t long_run = (int64_t)1 << 23;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = request_interrupt;
    sigemptyset(&action.sa_mask);
    CHECK(sigaction(SIGPROF, &action, NULL) == 0);
    struct itimerval timer = {{0, 0}, {0, 50000}};
    CHECK(setitimer(ITIMER_PROF, &timer, NULL) == 0);
    count = 0;
    CHECK(stefast_mc_accumulate_d(v, w, vs, ws, NULL, NULL, NULL, 0, M, NN, STEFAST_STE_RELU,
                                  STEFAST_MC_FULL, key, 3, long_run, BLOCK, &count, mean, m2,
                                  2) == STEFAST_EINTR);
    CHECK(stefast_interrupt_requested() == 1);
    stefast_clear_interrupt();
    CHECK(count > 0 && count % BLOCK == 0 && count < long_run);
    CHECK(stefast_mc_accumulate_d(v, w, vs, ws, NULL, NULL, NULL, 0, M, NN, STEFAST_STE_RELU,
                                  STEFAST_MC_FULL, key, 3, count, BLOCK, &count_ref, mean_ref,
                                  m2_ref, 2) == STEFAST_OK);
    CHECK(count_ref == count);
    CHECK(memcmp(mean, mean_ref, (size_t)p * sizeof(double)) == 0);
    CHECK(memcmp(m2, m2_ref, (size_t)p * sizeof(double)) == 0);
}

int main(void)
{
    /* the version the library reports is the header's */
    char version[32];
    snprintf(version, sizeof version, "%d.%d.%d", STEFAST_VERSION_MAJOR, STEFAST_VERSION_MINOR,
             STEFAST_VERSION_PATCH);
    CHECK(strcmp(stefast_version(), version) == 0);
    /* every status code has its own description; others one for all */
    const stefast_status codes[] = {STEFAST_OK, STEFAST_EINVAL, STEFAST_ENOMEM, STEFAST_EINTR};
    const char *unknown = stefast_strerror((stefast_status)99);
    for (int a = 0; a < 4; a++) {
        CHECK(strlen(stefast_strerror(codes[a])) > 0);
        CHECK(strcmp(stefast_strerror(codes[a]), unknown) != 0);
        for (int b = 0; b < a; b++)
            CHECK(strcmp(stefast_strerror(codes[a]), stefast_strerror(codes[b])) != 0);
    }

    /* elementwise, with the documented edge conventions */
    const double x[5] = {-1.0, 0.0, 0.5, 1.0, NAN};
    const double g[5] = {2.0, 2.0, 2.0, 2.0, 2.0};
    double out[5];
    CHECK(stefast_binarize_d(x, out, 5) == STEFAST_OK);
    CHECK(out[0] == 0 && out[1] == 0 && out[2] == 1 && out[3] == 1 && out[4] == 0);
    CHECK(stefast_sign_d(x, out, 5) == STEFAST_OK);
    CHECK(out[0] == -1 && out[1] == 1 && out[2] == 1 && isnan(out[4]));
    CHECK(stefast_ste_grad_d(x, g, out, 5, STEFAST_STE_CLIPPED_RELU) == STEFAST_OK);
    CHECK(out[0] == 0 && out[1] == 0 && out[2] == 2 && out[3] == 0 && out[4] == 0);
    CHECK(stefast_ste_grad_d(x, g, out, 5, (stefast_ste)42) == STEFAST_EINVAL);
    CHECK(stefast_binarize_d(x, out, -1) == STEFAST_EINVAL);

    /* one hand-computed sample (the same as test_coarse_gradient_by_hand) */
    const double Z[6] = {1.0, 2.0, -1.0, 0.5, 0.5, 0.5};
    const double v[3] = {1.0, 2.0, 3.0}, w[2] = {1.0, 0.0};
    const double vs[3] = {1.0, 1.0, 1.0}, ws[2] = {0.0, 1.0};
    double loss, gv[3], gw[2], y;
    CHECK(stefast_forward_d(Z, v, w, 1, 3, 2, &y, 1) == STEFAST_OK);
    CHECK(y == 4.0);
    CHECK(stefast_loss_and_grads_d(Z, v, w, vs, ws, 1, 3, 2, STEFAST_STE_RELU, &loss, gv,
                                   gw, 1) == STEFAST_OK);
    CHECK(loss == 0.5 && gv[0] == 1 && gv[1] == 0 && gv[2] == 1);
    CHECK(gw[0] == 2.5 && gw[1] == 3.5);

    /* float twin and the batch sum, threads 1 and 2 agree bitwise */
    float Zf[4 * 6], vf[3] = {1, 2, 3}, wf[2] = {1, 0}, vsf[3] = {1, 1, 1}, wsf[2] = {0, 1};
    for (int b = 0; b < 4; b++)
        for (int k = 0; k < 6; k++) Zf[b * 6 + k] = (float)Z[k] * (float)(b + 1);
    double s1[1 + 3 + 2], s2[1 + 3 + 2];
    CHECK(stefast_loss_and_grads_sum_f(Zf, vf, wf, vsf, wsf, 4, 3, 2, STEFAST_STE_RELU, s1,
                                       s1 + 1, s1 + 4, 1) == STEFAST_OK);
    CHECK(stefast_loss_and_grads_sum_f(Zf, vf, wf, vsf, wsf, 4, 3, 2, STEFAST_STE_RELU, s2,
                                       s2 + 1, s2 + 4, 2) == STEFAST_OK);
    for (int k = 0; k < 6; k++) CHECK(s1[k] == s2[k]);
    CHECK(s1[0] == 4 * 0.5);                      /* same residual in every sample */
    CHECK(s1[4] == 2.5 * (1 + 2 + 3 + 4));        /* g scales with Z */

    /* registry surrogates: approx_sign as a piecewise polynomial (z.w = 1, -1,
     * 0.5: mu' = 0, 0, 1), and relu's window as a window kind */
    const double bp[3] = {-1.0, 0.0, 1.0}, coef[4] = {2.0, 2.0, 2.0, -2.0};
    stefast_surrogate approx = {STEFAST_SURROGATE_PIECEWISE, {0, 0, 0, 0}, 2, 1, bp, coef};
    CHECK(stefast_loss_and_grads_surrogate_d(Z, v, w, vs, ws, 1, 3, 2, &approx, &loss, gv,
                                             gw, 1) == STEFAST_OK);
    CHECK(loss == 0.5 && gw[0] == 1.5 && gw[1] == 1.5);
    stefast_surrogate relu = {STEFAST_SURROGATE_WINDOW, {0.0, INFINITY, 2, 1.0}, 0, 0, NULL,
                              NULL};
    CHECK(stefast_loss_and_grads_surrogate_d(Z, v, w, vs, ws, 1, 3, 2, &relu, &loss, gv, gw,
                                             1) == STEFAST_OK);
    CHECK(gw[0] == 2.5 && gw[1] == 3.5);
    CHECK(stefast_ste_grad_surrogate_d(x, g, out, 5, &approx) == STEFAST_OK);
    CHECK(out[0] == 0 && out[1] == 4 && out[2] == 2 && out[3] == 0 && out[4] == 0);
    stefast_surrogate bad = relu;
    bad.kind = (stefast_surrogate_kind)9;
    CHECK(stefast_ste_grad_surrogate_d(x, g, out, 5, &bad) == STEFAST_EINVAL);

    /* bad sizes are rejected, not crashed on */
    CHECK(stefast_loss_and_grads_d(Z, v, w, vs, ws, 1, 0, 2, STEFAST_STE_RELU, &loss, gv, gw,
                                   1) == STEFAST_EINVAL);
    CHECK(stefast_forward_d(Z, v, w, 1, 3, 2, &y, 0) == STEFAST_EINVAL);

    check_interrupts();

    if (failures) return 1;
    printf("ok\n");
    return 0;
}
