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

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The widest kernels the CPU runs, and the ones in use (lower when
 * NABLA_CPU or a test asks).  AVX-512 needs F, BW, VL and DQ, and the
 * operating system's support for its registers (libgcc's check reads
 * XGETBV); valgrind reports none of it, so it runs the AVX2 kernels. */
static nbi_cpu best_cpu, used_cpu;
static const char *const cpu_names[] = {"baseline", "avx2", "avx512"};

nbi_cpu nbi_cpu_level(void)
{
    return used_cpu;
}

nbi_cpu nbi_cpu_best(void)
{
    return best_cpu;
}

const char *nbi_cpu_name(nbi_cpu c)
{
    return cpu_names[c];
}

bool nbi_avx2(void)
{
    return used_cpu >= NBI_CPU_AVX2;
}

bool nbi_avx512(void)
{
    return used_cpu >= NBI_CPU_AVX512;
}

int nbi_cpu_use(nbi_cpu c)
{
    if (c > best_cpu)
        return -1;
    nbi_cpu old = used_cpu;
    used_cpu = c;
    return (int)old;
}

static int cpu_by_name(const char *name)
{
    for (int c = 0; c <= NBI_CPU_AVX512; c++)
        if (strcmp(name, cpu_names[c]) == 0)
            return c;
    return -1;
}

/* Kernels by name, once the features are read. */
static int set_kernels(const char *name, char *why, size_t size)
{
    int c = name ? cpu_by_name(name) : -1;
    if (c < 0) {
        if (why)
            snprintf(why, size, "unknown kernels \"%s\": expected baseline, avx2 or avx512",
                     name ? name : "(null)");
        return NB_ERR_ARG;
    }
    if (nbi_cpu_use((nbi_cpu)c) < 0) {
        if (why)
            snprintf(why, size, "kernels %s need a CPU with %s; this one runs %s at most", name,
                     c == NBI_CPU_AVX512 ? "AVX-512 (F, BW, VL, DQ)" : "AVX2 and FMA",
                     cpu_names[best_cpu]);
        return NB_ERR_ARG;
    }
    return NB_OK;
}

/* NABLA_CPU's setting, read with the features: a name it cannot take is
 * an error every context made afterwards reports. */
static int env_status;
static char env_why[160];

static void read_features(void)
{
#if defined(__GNUC__) && defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        best_cpu = NBI_CPU_AVX2;
    if (best_cpu == NBI_CPU_AVX2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
        best_cpu = NBI_CPU_AVX512;
#endif
    used_cpu = best_cpu;
    const char *env = getenv("NABLA_CPU");
    char msg[128];
    if (env && *env && (env_status = set_kernels(env, msg, sizeof msg)))
        snprintf(env_why, sizeof env_why, "NABLA_CPU=%s: %s", env, msg);
}

int nbi_cpu_init(char *why, size_t size)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, read_features);
#if defined(HAVE_OPENBLAS_SET_NUM_THREADS) && defined(_OPENMP)
    static int done;
    if (!done) {
        openblas_set_num_threads(1);
        done = 1;
    }
#endif
    if (env_status && why)
        snprintf(why, size, "%s", env_why);
    return env_status;
}

int nb_set_cpu_kernels(const char *name, char *why, size_t size)
{
    nbi_cpu_init(NULL, 0);
    return set_kernels(name, why, size);
}

const char *nb_cpu_kernels(void)
{
    nbi_cpu_init(NULL, 0);
    return cpu_names[used_cpu];
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
