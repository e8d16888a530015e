/*
 * read_bound.c -- the floor for a kernel that reads its input once: the sum
 * of an array of doubles, read with aligned 64-byte loads into 8
 * independent accumulators, one thread. bench/conftest.py builds it with
 * -O3 -march=native and calls it through ctypes on the very buffer the
 * kernel reads (a float32 array is summed as the doubles its bytes make;
 * only the reading matters). Not part of the library.
 */
#include <stdint.h>
#include <string.h>

typedef double line_ __attribute__((vector_size(64)));

double read_bound_sum(const double *x, int64_t len)
{
    double sum = 0;
    int64_t k = 0;
    for (; k < len && (uintptr_t)(x + k) % 64 != 0; k++) sum += x[k];
    line_ acc[8] = {{0}};
    for (; k + 64 <= len; k += 64)
        for (int q = 0; q < 8; q++) {
            line_ t;
            memcpy(&t, x + k + 8 * q, sizeof t);
            acc[q] += t;
        }
    for (int q = 1; q < 8; q++) acc[0] += acc[q];
    for (int q = 0; q < 8; q++) sum += acc[0][q];
    for (; k < len; k++) sum += x[k];
    return sum;
}
