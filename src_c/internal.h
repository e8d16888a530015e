/*
 * internal.h -- private helpers shared by the kernel files (not installed).
 */
#ifndef STEFAST_INTERNAL_H
#define STEFAST_INTERNAL_H

#include <stdint.h>

/*
 * Runtime CPU dispatch. The compiler builds several clones of each hot
 * function (baseline x86-64, AVX2, AVX-512) and the dynamic loader picks one
 * with cpuid at load time, so one portable wheel runs at native speed here and
 * still runs on an x86-64 without AVX2. Elsewhere (aarch64, macOS, compilers
 * without target_clones) the attribute is empty and the compiler's default
 * target is used. Define STEFAST_NO_DISPATCH to turn it off (the
 * -march=native comparison build does).
 *
 * The clones give bitwise-identical results: the build uses
 * -ffp-contract=off (no FMA contraction) and every reduction runs over a
 * fixed number of lanes (sample_impl.h) in a fixed order, so a wider vector
 * unit changes the speed, not the rounding.
 *
 * The AVX-512 clone: GCC's x86-64-v4 rather than plain avx512f, because with
 * AVX-512VL the 256-bit loops get 32 vector registers, which the
 * column-blocked Z^T a of sample_impl.h needs (docs/performance.rst, section
 * "CPU dispatch and line registers"). Clang 14 compiles an
 * "arch=x86-64-v4" clone but its resolver never selects it (it tests the CPU
 * vendor), and it has no "x86-64-v4" for __builtin_cpu_supports; there the
 * clone is "avx512vl", which implies AVX-512F and tests correctly.
 *
 * Put STEFAST_DISPATCH on static functions only, behind plain public ones:
 * clang 14 names the ifunc of an external function "name.ifunc", so other
 * files calling "name" do not link.
 */
#if defined(__x86_64__) && defined(__linux__) && !defined(STEFAST_NO_DISPATCH) && \
    defined(__has_attribute)
#if __has_attribute(target_clones)
#if defined(__clang__)
#define STEFAST_DISPATCH __attribute__((target_clones("default", "avx2", "avx512vl")))
#define STEFAST_AVX512_CLONE_RUNS() __builtin_cpu_supports("avx512vl")
#else
#define STEFAST_DISPATCH __attribute__((target_clones("default", "avx2", "arch=x86-64-v4")))
#define STEFAST_AVX512_CLONE_RUNS() __builtin_cpu_supports("x86-64-v4")
#endif
#endif
#endif
#ifndef STEFAST_DISPATCH
#define STEFAST_DISPATCH
#endif

/*
 * Whether the model kernels hold a cache line as one 64-byte vector or as
 * two 32-byte halves (sample_impl.h): one vector where the code runs with
 * AVX-512, that is in the AVX-512 clone of a dispatching build or in a
 * build for an AVX-512 target. Both variants give the same bits.
 */
static inline int stefast_wide_lines(void)
{
#if defined(STEFAST_AVX512_CLONE_RUNS)
    return STEFAST_AVX512_CLONE_RUNS() != 0;
#elif defined(__AVX512F__) && defined(__AVX512VL__) && defined(__AVX512BW__) && \
    defined(__AVX512DQ__)
    return 1;
#else
    return 0;
#endif
}

/* Helpers called from a dispatched function must be inlined into each clone
 * to be compiled for its instruction set; a plain `inline` is only a hint. */
#if defined(__GNUC__)
#define STEFAST_INLINE static inline __attribute__((always_inline))
#else
#define STEFAST_INLINE static inline
#endif

/*
 * Batch chunking for threads. The chunk size depends on B only, never on
 * the thread count, and chunk sums are combined in chunk order: that is what
 * makes reductions bitwise identical for any number of threads.
 */
#define STEFAST_CHUNK_MIN 64
#define STEFAST_MAX_CHUNKS 256

static inline int64_t stefast_chunk_size(int64_t B)
{
    int64_t c = (B + STEFAST_MAX_CHUNKS - 1) / STEFAST_MAX_CHUNKS;
    return c < STEFAST_CHUNK_MIN ? STEFAST_CHUNK_MIN : c;
}

#endif /* STEFAST_INTERNAL_H */
