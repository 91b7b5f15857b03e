/* blas.c - the one place that talks to CBLAS, the thread count and the
 * CPU's features.
 *
 * One pool of threads for the whole program: OpenMP's.  OpenBLAS's own
 * threads are kept at one, so a GEMM called from inside an OpenMP region
 * never oversubscribes the cores; a GEMM called outside one is split here
 * into column (or row) blocks, one per thread. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "internal.h"

#include <cblas.h>
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

void nbi_threads_init(void)
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

static void gemm1(nb_dtype dtype, bool trans_a, bool trans_b, int m, int n, int k,
                  double alpha, const void *a, int lda, const void *b, int ldb,
                  double beta, void *c, int ldc)
{
    enum CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    if (dtype == NB_F32)
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, (float)alpha, a, lda, b, ldb,
                    (float)beta, c, ldc);
    else
        cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void nbi_gemm(nb_dtype dtype, bool trans_a, bool trans_b, int m, int n, int k,
              double alpha, const void *a, int lda, const void *b, int ldb,
              double beta, void *c, int ldc)
{
    int nt = nbi_threads();
    /* Below ~1 MFLOP a split costs more than it saves. */
    if (nt < 2 || nbi_in_parallel() || (double)m * n * k < 5e5) {
        gemm1(dtype, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
#ifdef _OPENMP
    /* Split the larger side of C in blocks that are multiples of 16 (SIMD
     * panels); each block is an independent GEMM on the same A or B. */
    size_t es = nb_dtype_size(dtype);
    bool by_cols = n >= m;
    int len = by_cols ? n : m;
    int step = ((len + nt - 1) / nt + 15) / 16 * 16;
    int blocks = (len + step - 1) / step;
#pragma omp parallel for num_threads(blocks) schedule(static)
    for (int t = 0; t < blocks; t++) {
        int lo = t * step, cnt = len - lo < step ? len - lo : step;
        if (by_cols) {
            const char *bb = (const char *)b + (size_t)lo * (trans_b ? (size_t)ldb : 1) * es;
            gemm1(dtype, trans_a, trans_b, m, cnt, k, alpha, a, lda, bb, ldb, beta,
                  (char *)c + (size_t)lo * es, ldc);
        } else {
            const char *aa = (const char *)a + (size_t)lo * (trans_a ? 1 : (size_t)lda) * es;
            gemm1(dtype, trans_a, trans_b, cnt, n, k, alpha, aa, lda, b, ldb, beta,
                  (char *)c + (size_t)lo * ldc * es, ldc);
        }
    }
#endif
}
