/* blas.c - the one place that calls CBLAS's GEMM.  OpenBLAS runs on one
 * thread (cpu.c): a GEMM called inside an OpenMP region runs on its
 * thread, and one called outside is split here into column (or row)
 * blocks, one per thread.  Knows only cpu.c. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "internal.h"

#include <cblas.h>
#ifdef _OPENMP
#include <omp.h>
#endif

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
    size_t es = dtype == NB_F32 ? sizeof(float) : sizeof(double);
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
