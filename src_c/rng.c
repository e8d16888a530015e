/*
 * rng.c -- standard normals by stream (the raw entry point; the Monte Carlo
 * kernels in montecarlo.c inline the same code from normal_impl.h, which
 * documents the generator, the bit-level layout and the transforms).
 *
 * Why streams of a counter-seeded generator: every normal is a pure
 * function of (key, stream, index), so streams can be tied to samples and
 * threads can take any of them in any order; 16 independent lanes per
 * stream let the word generation and the transforms vectorise. Its rates
 * against NumPy's standard_normal: docs/performance.rst, section "The Gaussian
 * generator".
 */
#include <stdlib.h>
#include <string.h>

#include "stefast.h"
#include "internal.h"
#include "normal_impl.h"

void stefast_threefry2x64_20(const uint64_t ctr[2], const uint64_t key[2], uint64_t out[2])
{
    uint64_t a = ctr[0], b = ctr[1];
    STEFAST_THREEFRY2X64_20(a, b, key[0], key[1]);
    out[0] = a;
    out[1] = b;
}

STEFAST_DISPATCH
static void normal_stream_d(const uint64_t *key, uint64_t s, double *out, int64_t len)
{
    const int64_t CH = STEFAST_NORMAL_CHUNK_D;
    stefast_stream_ g;
    stefast_stream_init_(&g, key, s);
    int64_t c = 0;
    for (; (c + 1) * CH <= len; c++) stefast_normal_chunk_d_(&g, out + c * CH);
    if (c * CH < len) {
        double tmp[STEFAST_NORMAL_CHUNK_D];
        stefast_normal_chunk_d_(&g, tmp);
        memcpy(out + c * CH, tmp, (size_t)(len - c * CH) * sizeof(double));
    }
}

STEFAST_DISPATCH
static void normal_stream_f(const uint64_t *key, uint64_t s, float *out, int64_t len)
{
    const int64_t CH = STEFAST_NORMAL_CHUNK_F;
    stefast_stream_ g;
    stefast_stream_init_(&g, key, s);
    int64_t c = 0;
    for (; (c + 1) * CH <= len; c++) stefast_normal_chunk_f_(&g, out + c * CH);
    if (c * CH < len) {
        float tmp[STEFAST_NORMAL_CHUNK_F];
        stefast_normal_chunk_f_(&g, tmp);
        memcpy(out + c * CH, tmp, (size_t)(len - c * CH) * sizeof(float));
    }
}

stefast_status stefast_normals_d(const uint64_t key[2], uint64_t first_stream, int64_t nstreams,
                                 int64_t stream_len, double *out, int threads)
{
    if (nstreams < 0 || stream_len < 0 || threads < 1) return STEFAST_EINVAL;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < nstreams; i++)
        normal_stream_d(key, first_stream + (uint64_t)i, out + i * stream_len, stream_len);
    return STEFAST_OK;
}

stefast_status stefast_normals_f(const uint64_t key[2], uint64_t first_stream, int64_t nstreams,
                                 int64_t stream_len, float *out, int threads)
{
    if (nstreams < 0 || stream_len < 0 || threads < 1) return STEFAST_EINVAL;
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < nstreams; i++)
        normal_stream_f(key, first_stream + (uint64_t)i, out + i * stream_len, stream_len);
    return STEFAST_OK;
}
