/*
 * harness.h - what the test suites share: the table of gradient-check
 * cases, helpers to make test data, and assertions on tensors.
 *
 * Every op family lists its cases in its test file; families.def lists the
 * families.  For each case the gradcheck suite checks, in float64, the
 * gradient of loss = sum(forward(...) * R) (R a fixed pseudo-random tensor)
 * against central differences, and compares float32 with float64.  The
 * registry suite fails if a registered op appears in no case.
 */
#ifndef NABLA_TEST_HARNESS_H
#define NABLA_TEST_HARNESS_H

#include <check.h>
#include <math.h>
#include <stdint.h>

#include "nabla.h"

#define TST_MAX_TENSORS 8

typedef struct tst_env {
    nb_ctx *ctx;
    nb_tensor *t[TST_MAX_TENSORS]; /* the tensors checked, float64 */
    int n;
    int32_t labels[64];            /* class labels for losses */
    double a, b;                   /* free parameters for the case */
} tst_env;

typedef struct tst_case {
    const char *name;
    /* Makes the case's tensors with tst_tensor() and friends. */
    void (*setup)(tst_env *e, nb_rng *rng);
    /* The ops under test, on e->t; any output shape.  Must be
     * deterministic (seed a local rng for dropout). */
    nb_tensor *(*forward)(nb_ctx *ctx, tst_env *e);
} tst_case;

/* The cases of each family: tst_cases_<family>[], ended by a zeroed row. */
#define TST_FAMILY(name) extern const tst_case tst_cases_##name[];
#include "families.def"
#undef TST_FAMILY

/* Appends a float64 tensor to e->t with values uniform in [lo, hi] and
 * returns it. */
nb_tensor *tst_tensor_range(tst_env *e, nb_rng *rng, int ndim,
                            const int64_t *shape, double lo, double hi);
/* Uniform in [-1, 1], at least 0.01 away from 0: clear of relu's kink. */
nb_tensor *tst_tensor(tst_env *e, nb_rng *rng, int ndim, const int64_t *shape);
/* Appends a float64 tensor holding `values`. */
nb_tensor *tst_tensor_values(tst_env *e, int ndim, const int64_t *shape,
                             const double *values);

/* A persistent float64 tensor, in a context, holding values (for known-value
 * tests). */
nb_tensor *tst_make(nb_ctx *ctx, nb_dtype dtype, int ndim,
                    const int64_t *shape, const double *values);

/* Asserts t has this shape and these values within tol (absolute). */
void tst_assert_values(const nb_tensor *t, int ndim, const int64_t *shape,
                       const double *values, double tol);

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

/* Suites. */
Suite *tst_suite_core(void);
Suite *tst_suite_gradcheck(void);
Suite *tst_suite_registry(void);
Suite *tst_suite_safetensors(void);
Suite *tst_suite_model(void);
Suite *tst_suite_trainer(void);
Suite *tst_suite_optim(void);
Suite *tst_suite_dataset(void);
Suite *tst_suite_image(void);
Suite *tst_suite_plot(void);
Suite *tst_suite_filter(void);
Suite *tst_suite_fast(void);
Suite *tst_suite_grid(void);
#define TST_FAMILY(name) Suite *tst_suite_##name(void);
#include "families.def"
#undef TST_FAMILY

#endif
