/*
 * testutil.c - the helpers of testutil.h.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
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
    for (int64_t i = 0; i < t->numel; i++) {
        double got = nb_get(t, i);
        ck_assert_msg(got == values[i] || (isnan(got) && isnan(values[i])) ||
                          fabs(got - values[i]) <= tol,
                      "element %lld: got %.10g, want %.10g", (long long)i, got, values[i]);
    }
}

void tst_assert_pattern(const nb_tensor *t, const double *values, int64_t period, double tol,
                        const char *what)
{
    ck_assert_msg(t != NULL, "%s: tensor is NULL", what);
    int64_t bad = -1;
    for (int64_t i = 0; i < t->numel && bad < 0; i++) {
        double got = nb_get(t, i), want = values[i % period];
        if (!(got == want || (isnan(got) && isnan(want)) || fabs(got - want) <= tol))
            bad = i;
    }
    ck_assert_msg(bad < 0, "%s: element %lld of %lld: got %.10g, want %.10g", what,
                  (long long)bad, (long long)t->numel, bad < 0 ? 0 : nb_get(t, bad),
                  bad < 0 ? 0 : values[bad % period]);
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

const char *const tst_kernels[] = {"baseline", "avx2", "avx512", NULL};

bool tst_use_kernels(const char *name, const char *what)
{
    char why[160];
    if (nb_set_cpu_kernels(name, why, sizeof why) == NB_OK)
        return true;
    printf("%s: %s kernels skipped: %s\n", what, name, why);
    return false;
}
