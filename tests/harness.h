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

#include "testutil.h"
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

/* Suites. */
Suite *tst_suite_core(void);
Suite *tst_suite_gradcheck(void);
Suite *tst_suite_registry(void);
Suite *tst_suite_safetensors(void);
Suite *tst_suite_model(void);
Suite *tst_suite_init(void);
Suite *tst_suite_dist(void);
Suite *tst_suite_trainer(void);
Suite *tst_suite_callbacks(void);
Suite *tst_suite_optim(void);
Suite *tst_suite_dataset(void);
Suite *tst_suite_npz(void);
Suite *tst_suite_cifar(void);
Suite *tst_suite_image(void);
Suite *tst_suite_fast(void);
Suite *tst_suite_memory(void);
Suite *tst_suite_nonfinite(void);
Suite *tst_suite_batch(void);
#define TST_FAMILY(name) Suite *tst_suite_##name(void);
#include "families.def"
#undef TST_FAMILY

#endif
