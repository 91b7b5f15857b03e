/* cpu.c - the bottom of the library: the thread count, the CPU's features
 * and sums that give the same bits on any number of threads.  Calls
 * nothing of the library's.
 *
 * One pool of threads for the whole program: OpenMP's.  OpenBLAS's own
 * threads are kept at one, so a GEMM called from inside an OpenMP region
 * never oversubscribes the cores (blas.c splits the ones called outside). */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "internal.h"

#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
#include <cblas.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

static int num_threads = 1;

int nbi_threads(void)
{
    return num_threads;
}

bool nbi_in_parallel(void)
{
#ifdef _OPENMP
    return omp_in_parallel();
#else
    return true;
#endif
}

static bool has_avx2, avoid_avx2;

bool nbi_avx2(void)
{
    return has_avx2 && !avoid_avx2;
}

bool nbi_avoid_avx2(bool avoid)
{
    bool old = avoid_avx2;
    avoid_avx2 = avoid;
    return old;
}

void nbi_cpu_init(void)
{
#if defined(__GNUC__) && defined(__x86_64__)
    has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
#if defined(HAVE_OPENBLAS_SET_NUM_THREADS) && defined(_OPENMP)
    static int done;
    if (!done) {
        openblas_set_num_threads(1);
        done = 1;
    }
#endif
}

int nb_set_num_threads(int n)
{
    int old = num_threads;
    num_threads = n < 1 ? 1 : n;
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
#ifdef _OPENMP
    openblas_set_num_threads(1);
#else
    openblas_set_num_threads(num_threads); /* no OpenMP: let OpenBLAS thread */
#endif
#endif
    return old;
}

double nbi_blocked_sum(int64_t n, double (*range)(const void *arg, int64_t lo, int64_t hi),
                       const void *arg)
{
    enum { BLOCKS = 64, MIN_BLOCK = 4096 };
    int64_t blk = (n + BLOCKS - 1) / BLOCKS;
    if (blk < MIN_BLOCK)
        blk = MIN_BLOCK;
    int nblk = (int)((n + blk - 1) / blk);
    double part[BLOCKS];
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) if (nbi_par(n))
    for (int k = 0; k < nblk; k++) {
        int64_t lo = k * blk, hi = n - lo < blk ? n : lo + blk;
        part[k] = range(arg, lo, hi);
    }
    double acc = 0;
    for (int k = 0; k < nblk; k++)
        acc += part[k];
    return acc;
}
