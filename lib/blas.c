/* blas.c - the one place that calls CBLAS's GEMM.  OpenBLAS runs on one
 * thread (cpu.c): a GEMM called inside an OpenMP region runs on its
 * thread, and one called outside is split here into column (or row)
 * blocks that the threads share; the blocks depend on the sizes alone, so
 * the thread count changes no bit.  Knows only cpu.c.
 *
 * OpenBLAS's GEMM works in a buffer of its own for each call running at
 * once, taken from a pool that keeps what it mapped: 128 MiB of address
 * space in Debian's build.  When it cannot map one it retries forever.  So
 * under an address-space limit (ulimit -v, or a data limit) GEMMs run one
 * at a time, which one buffer serves, and a thread's first one checks that
 * a buffer fits before OpenBLAS maps it; when it would not, the product is
 * computed here by plain loops, which need none.  Without a limit nothing
 * of this runs. */
#ifndef _DEFAULT_SOURCE
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#endif
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "internal.h"

#include <cblas.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/resource.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* OpenBLAS's BUFFER_SIZE (a build setting: 128 MiB in Debian's 0.3.21,
 * 32 MiB in older builds), with room for malloc's rounding. */
#define BLAS_BUFFER ((size_t)129 << 20)

static pthread_once_t limits_once = PTHREAD_ONCE_INIT;
static bool limited;                  /* the address space has a limit */
static pthread_mutex_t limited_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local bool has_buffer; /* a GEMM of this thread went to OpenBLAS */
static bool avoid_blas;

static void read_limits(void)
{
    struct rlimit as, data;
    limited = (getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) ||
              (getrlimit(RLIMIT_DATA, &data) == 0 && data.rlim_cur != RLIM_INFINITY);
}

bool nbi_blas_avoid(bool avoid)
{
    bool old = avoid_blas;
    avoid_blas = avoid;
    return old;
}

/* Whether a buffer of OpenBLAS's would fit in the address space now. */
static bool buffer_fits(void)
{
#ifdef MAP_ANONYMOUS
    void *p = mmap(NULL, BLAS_BUFFER, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED)
        return false;
    munmap(p, BLAS_BUFFER);
#endif
    return true;
}

/* C = alpha op(A) op(B) + beta C without a buffer: rows of C in turn, and
 * C's old values ignored when beta is 0, as BLAS does. */
#define PLAIN_GEMM(T, name)                                                         \
    static void name(bool ta, bool tb, int m, int n, int k, T alpha, const T *a, int lda, \
                     const T *b, int ldb, T beta, T *c, int ldc)                   \
    {                                                                               \
        for (int i = 0; i < m; i++) {                                               \
            T *ci = c + (size_t)i * ldc;                                            \
            for (int j = 0; j < n; j++)                                             \
                ci[j] = beta == 0 ? 0 : beta * ci[j];                               \
            if (tb) {                                                               \
                for (int j = 0; j < n; j++) {                                       \
                    const T *bj = b + (size_t)j * ldb, *ai = a + (size_t)i * lda;   \
                    T s = 0;                                                        \
                    if (ta)                                                         \
                        for (int p = 0; p < k; p++)                                 \
                            s += a[(size_t)p * lda + i] * bj[p];                    \
                    else                                                            \
                        _Pragma("omp simd reduction(+ : s)")                        \
                        for (int p = 0; p < k; p++)                                 \
                            s += ai[p] * bj[p];                                     \
                    ci[j] += alpha * s;                                             \
                }                                                                   \
                continue;                                                           \
            }                                                                       \
            for (int p = 0; p < k; p++) {                                           \
                const T s = alpha * (ta ? a[(size_t)p * lda + i] : a[(size_t)i * lda + p]); \
                const T *bp = b + (size_t)p * ldb;                                  \
                _Pragma("omp simd")                                                 \
                for (int j = 0; j < n; j++)                                         \
                    ci[j] += s * bp[j];                                             \
            }                                                                       \
        }                                                                           \
    }
PLAIN_GEMM(float, plain_sgemm)
PLAIN_GEMM(double, plain_dgemm)
#undef PLAIN_GEMM

static void blas_gemm(nb_dtype dtype, bool trans_a, bool trans_b, int m, int n, int k,
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

/* One GEMM on this thread: OpenBLAS's, or under a limit the plain loops
 * when no buffer of OpenBLAS's would fit. */
static void gemm1(nb_dtype dtype, bool trans_a, bool trans_b, int m, int n, int k,
                  double alpha, const void *a, int lda, const void *b, int ldb,
                  double beta, void *c, int ldc)
{
    pthread_once(&limits_once, read_limits);
    bool blas = !avoid_blas;
    if (blas && !limited) {
        blas_gemm(dtype, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    if (blas) {
        pthread_mutex_lock(&limited_lock);
        blas = has_buffer || buffer_fits();
        if (blas)
            blas_gemm(dtype, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        has_buffer = blas;
        pthread_mutex_unlock(&limited_lock);
    }
    if (blas)
        return;
    if (dtype == NB_F32)
        plain_sgemm(trans_a, trans_b, m, n, k, (float)alpha, a, lda, b, ldb, (float)beta, c,
                    ldc);
    else
        plain_dgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void nbi_gemm(nb_dtype dtype, bool trans_a, bool trans_b, int m, int n, int k,
              double alpha, const void *a, int lda, const void *b, int ldb,
              double beta, void *c, int ldc)
{
    /* Below ~1 MFLOP a split costs more than it saves. */
    if (nbi_in_parallel() || (double)m * n * k < 5e5) {
        gemm1(dtype, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    /* Split the larger side of C in GEMM_BLOCKS blocks, multiples of 16
     * (SIMD panels), each an independent GEMM on the same A or B.
     * OpenBLAS's bits for an element depend on the shape of the call it is
     * in, so the blocks depend on the sizes alone, never on the threads. */
    enum { GEMM_BLOCKS = 4 };
    size_t es = dtype == NB_F32 ? sizeof(float) : sizeof(double);
    bool by_cols = n >= m;
    int len = by_cols ? n : m;
    int step = ((len + GEMM_BLOCKS - 1) / GEMM_BLOCKS + 15) / 16 * 16;
    int blocks = (len + step - 1) / step;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) if (nbi_threads() > 1)
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
}
