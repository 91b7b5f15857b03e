/*
 * testutil.h - what every test binary shares, the library's and the tools':
 * tensors from values, assertions on values and errors, and an allocator
 * that fails on demand.  Public API only.
 */
#ifndef NABLA_TEST_UTIL_H
#define NABLA_TEST_UTIL_H

#include <check.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "nabla.h"

/* A persistent float64 tensor, in a context, holding values (for known-value
 * tests). */
nb_tensor *tst_make(nb_ctx *ctx, nb_dtype dtype, int ndim,
                    const int64_t *shape, const double *values);

/* Asserts t has this shape and these values within tol (absolute); a NaN
 * must be NaN and an infinity the same infinity. */
void tst_assert_values(const nb_tensor *t, int ndim, const int64_t *shape,
                       const double *values, double tol);

/* The same for every element i of t against values[i % period], in one
 * assertion (Check keeps every assertion made); what names t. */
void tst_assert_pattern(const nb_tensor *t, const double *values, int64_t period, double tol,
                        const char *what);

/* An allocator that fails once `left` allocations have succeeded: install
 * it with {tst_failing_alloc, tst_failing_free, &f} to fail the k-th
 * allocation for every k. */
typedef struct tst_failing {
    int left;
} tst_failing;
void *tst_failing_alloc(void *ud, size_t size);
void tst_failing_free(void *ud, void *p);

/* Asserts that a call failed with `code` and that the context's message
 * contains `needle`. */
#define tst_assert_error(ctx, code, needle)                                   \
    do {                                                                      \
        ck_assert_int_eq(nb_error(ctx), (code));                              \
        ck_assert_msg(strstr(nb_errmsg(ctx), (needle)) != NULL,               \
                      "message \"%s\" lacks \"%s\"", nb_errmsg(ctx), (needle)); \
    } while (0)

/* The CPU kernels the tests run in turn, ended by NULL. */
extern const char *const tst_kernels[];

/* Switches to kernels `name` and returns true; or, on a CPU without them,
 * prints "WHAT: NAME kernels skipped: why" and returns false.  Restore the
 * previous ones (nb_cpu_kernels() before) with nb_set_cpu_kernels. */
bool tst_use_kernels(const char *name, const char *what);

#endif
