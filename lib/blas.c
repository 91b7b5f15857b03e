/* blas.c - the one place that talks to CBLAS. */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "internal.h"

#include <cblas.h>

void nbi_gemm(nb_dtype dtype, bool trans_a, bool trans_b, int m, int n, int k,
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

static int num_threads = 1;
static int threads_set; /* until the first call, OpenBLAS keeps its own default */

int nb_set_num_threads(int n)
{
    int old = threads_set ? num_threads : 0;
    num_threads = n < 1 ? 1 : n;
    threads_set = 1;
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    openblas_set_num_threads(num_threads);
#endif
    return old;
}
