/*
 * testutil.c - the helpers of testutil.h.
 */
#include "testutil.h"

#include <math.h>
#include <stdlib.h>

nb_tensor *tst_make(nb_ctx *ctx, nb_dtype dtype, int ndim,
                    const int64_t *shape, const double *values)
{
    nb_tensor *t = nb_tensor_new(ctx, dtype, ndim, shape);
    ck_assert_msg(t != NULL, "%s", nb_errmsg(ctx));
    for (int64_t i = 0; i < t->numel; i++)
        nb_set(t, i, values[i]);
    return t;
}

void tst_assert_values(const nb_tensor *t, int ndim, const int64_t *shape,
                       const double *values, double tol)
{
    ck_assert_msg(t != NULL, "tensor is NULL");
    ck_assert_int_eq(t->ndim, ndim);
    for (int d = 0; d < ndim; d++)
        ck_assert_int_eq(t->shape[d], shape[d]);
    for (int64_t i = 0; i < t->numel; i++)
        ck_assert_msg(fabs(nb_get(t, i) - values[i]) <= tol,
                      "element %lld: got %.10g, want %.10g", (long long)i, nb_get(t, i),
                      values[i]);
}

void *tst_failing_alloc(void *ud, size_t size)
{
    tst_failing *f = ud;
    return f->left-- > 0 ? malloc(size) : NULL;
}

void tst_failing_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}
