/* test_core.c - contexts, tensors, the rng, the graph and gradcheck. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

/* ---- tensors ----------------------------------------------------------- */

START_TEST(test_tensor_new)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {2, 3, 4, 5};
    nb_tensor *t = nb_tensor_new(ctx, NB_F32, 4, s);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->numel, 120);
    ck_assert_int_eq((uintptr_t)t->data % 64, 0);
    for (int64_t i = 0; i < t->numel; i++)
        ck_assert(nb_get(t, i) == 0.0);
    nb_tensor *f = nb_tensor_full(ctx, NB_F64, 4, s, 2.5);
    ck_assert(nb_get(f, 119) == 2.5);
    int64_t idx[] = {1, 2, 3, 4};
    ck_assert_int_eq(nb_index(f, idx), 119);
    nb_set(f, nb_index(f, (int64_t[]){0, 1, 0, 0}), 7);
    ck_assert(nb_get(f, 20) == 7);
    /* A scalar has ndim 0 and one element. */
    nb_tensor *sc = nb_tensor_new(ctx, NB_F64, 0, NULL);
    ck_assert_int_eq(sc->numel, 1);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_tensor_from_wrap_copy)
{
    nb_ctx *ctx = nb_ctx_new();
    float buf[6] = {1, 2, 3, 4, 5, 6};
    int64_t s[] = {2, 3};
    nb_tensor *c = nb_tensor_from(ctx, NB_F32, 2, s, buf);
    nb_tensor *w = nb_tensor_wrap(ctx, NB_F32, 2, s, buf);
    buf[0] = 10;
    ck_assert(nb_get(c, 0) == 1);  /* a copy */
    ck_assert(nb_get(w, 0) == 10); /* a view of buf */
    nb_set(w, 5, -1);
    ck_assert(buf[5] == -1);
    nb_tensor *d = nb_tensor_copy(ctx, w, NB_F64);
    ck_assert_int_eq(d->dtype, NB_F64);
    ck_assert(nb_get(d, 0) == 10 && nb_get(d, 5) == -1);
    nb_tensor_free(w); /* frees the header, not buf */
    ck_assert(buf[0] == 10);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_tensor_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    ck_assert_ptr_null(nb_tensor_new(ctx, NB_F32, 2, (int64_t[]){3, 0}));
    tst_assert_error(ctx, NB_ERR_ARG, "size 0 of dimension 1 is not positive");
    ck_assert_ptr_null(nb_tensor_new(ctx, NB_F32, NB_MAX_DIMS + 1, (int64_t[9]){1}));
    tst_assert_error(ctx, NB_ERR_ARG, "9 dimensions");
    ck_assert_ptr_null(nb_tensor_new(ctx, NB_F32, 3, (int64_t[]){1 << 30, 1 << 30, 1 << 30}));
    tst_assert_error(ctx, NB_ERR_ARG, "shape overflows");
    ck_assert_ptr_null(nb_tensor_new(ctx, (nb_dtype)7, 1, (int64_t[]){1}));
    tst_assert_error(ctx, NB_ERR_ARG, "unknown dtype");
    nb_clear_error(ctx);
    ck_assert_int_eq(nb_error(ctx), NB_OK);
    ck_assert_str_eq(nb_errmsg(ctx), "");
    ck_assert_str_eq(nb_status_str(NB_ERR_NOMEM), "out of memory");
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_tensor_print)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *t = tst_make(ctx, NB_F32, 2, (int64_t[]){2, 2}, (double[]){1, 2, 3, 4.5});
    nb_tensor_set_name(t, "w");
    char buf[256] = {0};
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    ck_assert_int_eq(nb_tensor_print(t, f), NB_OK);
    fclose(f);
    ck_assert_str_eq(buf, "tensor \"w\" [2, 2] f32\n[[1, 2],\n [3, 4.5]]\n");
    char s[8];
    ck_assert_str_eq(nb_shape_str(t, s, sizeof s), "[2, 2]");
    ck_assert_str_eq(nb_shape_str(t, s, 4), "[2,");
    nb_ctx_free(ctx);
}
END_TEST

/* ---- rng --------------------------------------------------------------- */

START_TEST(test_rng)
{
    nb_rng r;
    nb_rng_seed(&r, 42);
    /* xoshiro256** from splitmix64(42), computed independently. */
    ck_assert_uint_eq(nb_rng_next(&r), 0x15780b2e0c2ec716u);
    ck_assert_uint_eq(nb_rng_next(&r), 0x6104d9866d113a7eu);
    ck_assert_uint_eq(nb_rng_next(&r), 0xae17533239e499a1u);
    nb_rng a, b;
    nb_rng_seed(&a, 7);
    b = a;
    double mean = 0, var = 0;
    for (int i = 0; i < 20000; i++) {
        double u = nb_rng_uniform(&a);
        ck_assert(u >= 0 && u < 1);
        double z = nb_rng_normal(&b);
        mean += z;
        var += z * z;
        ck_assert_uint_lt(nb_rng_below(&a, 10), 10);
    }
    mean /= 20000;
    var = var / 20000 - mean * mean;
    ck_assert_msg(fabs(mean) < 0.03 && fabs(var - 1) < 0.05, "mean %g var %g", mean, var);
}
END_TEST

/* ---- the graph --------------------------------------------------------- */

START_TEST(test_backward_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *x = tst_make(ctx, NB_F64, 1, (int64_t[]){3}, (double[]){1, 2, 3});
    /* Not a scalar. */
    nb_requires_grad(x, true);
    ck_assert_int_eq(nb_backward(ctx, nb_relu(ctx, x)), NB_ERR_GRAPH);
    tst_assert_error(ctx, NB_ERR_GRAPH, "backward: loss must be a scalar, got shape [3]");
    /* Not on the graph: nothing requires a gradient. */
    nb_requires_grad(x, false);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, x)), NB_ERR_GRAPH);
    tst_assert_error(ctx, NB_ERR_GRAPH, "not on the graph");
    /* Not on the graph: no-grad mode. */
    nb_requires_grad(x, true);
    nb_graph_reset(ctx);
    ck_assert(nb_set_grad_enabled(ctx, false));
    nb_tensor *s = nb_sum(ctx, x);
    ck_assert_int_eq(nb_graph_size(ctx), 0);
    ck_assert_int_eq(nb_backward(ctx, s), NB_ERR_GRAPH);
    ck_assert(!nb_set_grad_enabled(ctx, true));
    /* A NULL loss keeps the error of the op that failed. */
    nb_clear_error(ctx);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_relu(ctx, NULL))), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "relu: input 0 is NULL");
    nb_ctx_free(ctx);
}
END_TEST

/* Gradients accumulate in persistent tensors across backward calls, and
 * nb_zero_grad clears them; an input image gets its gradient like a
 * parameter. */
START_TEST(test_accumulate_and_zero)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *x = tst_make(ctx, NB_F64, 1, (int64_t[]){2}, (double[]){3, -4});
    nb_requires_grad(x, true);
    for (int k = 1; k <= 2; k++) {
        /* d/dx sum(x * x) = 2x */
        ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, x, x))), NB_OK);
        tst_assert_values(x->grad, 1, (int64_t[]){2}, (double[]){6.0 * k, -8.0 * k}, 0);
        nb_graph_reset(ctx);
    }
    nb_zero_grad(ctx);
    tst_assert_values(x->grad, 1, (int64_t[]){2}, (double[]){0, 0}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* After a warm-up step, the same step allocates nothing. */
START_TEST(test_steady_state_allocates_nothing)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    int64_t s[] = {64, 300};
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, 2, s);
    nb_fill_uniform(x, &rng, -1, 1);
    nb_requires_grad(x, true);
    uint64_t counts[4];
    for (int step = 0; step < 4; step++) {
        nb_tensor *y = x;
        for (int k = 0; k < 40; k++) /* more than one arena chunk's worth */
            y = nb_tanh(ctx, nb_scale(ctx, y, 0.9));
        ck_assert_int_eq(nb_backward(ctx, nb_mean(ctx, y)), NB_OK);
        nb_graph_reset(ctx);
        counts[step] = nb_alloc_count(ctx);
    }
    ck_assert_uint_eq(counts[2], counts[1]);
    ck_assert_uint_eq(counts[3], counts[2]);
    ck_assert_uint_gt(nb_step_capacity(ctx), 64 * 300 * 4 * 80);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_modes)
{
    nb_ctx *ctx = nb_ctx_new();
    ck_assert(nb_training(ctx));
    ck_assert(nb_set_training(ctx, false));
    ck_assert(!nb_training(ctx));
    ck_assert(nb_grad_enabled(ctx));
    nb_ctx_free(ctx);
}
END_TEST

/* ---- allocation failure ------------------------------------------------ */

/* Fails the k-th allocation for every k of a small training step: each run
 * must report NB_ERR_NOMEM or succeed, never crash or leak. */
START_TEST(test_alloc_failure)
{
    int k = 0;
    for (;; k++) {
        tst_failing f = {k};
        nb_allocator a = {tst_failing_alloc, tst_failing_free, &f};
        nb_ctx *ctx = nb_ctx_new_with(&a);
        if (!ctx)
            continue;
        int rc = NB_OK;
        nb_tensor *w = nb_tensor_new(ctx, NB_F32, 2, (int64_t[]){4, 4});
        if (w) {
            nb_requires_grad(w, true);
            nb_tensor *loss = nb_sum(ctx, nb_tanh(ctx, nb_mul(ctx, w, w)));
            rc = nb_backward(ctx, loss);
        } else {
            rc = nb_error(ctx);
        }
        ck_assert(rc == NB_OK || rc == NB_ERR_NOMEM);
        if (rc == NB_ERR_NOMEM)
            ck_assert_str_eq(nb_status_str(nb_error(ctx)), "out of memory");
        nb_ctx_free(ctx);
        if (rc == NB_OK)
            break;
    }
    ck_assert_int_gt(k, 3);
}
END_TEST

/* ---- gradcheck --------------------------------------------------------- */

static nb_tensor *relu_sum(nb_ctx *ctx, void *ud)
{
    return nb_sum(ctx, nb_relu(ctx, ud));
}

/* relu at its kink: backward says 0, central differences say 1/2.  The
 * report must catch it and point at the element. */
START_TEST(test_gradcheck_reports_a_mismatch)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *x = tst_make(ctx, NB_F64, 1, (int64_t[]){3}, (double[]){0.5, 0.0, -0.5});
    nb_gradcheck_report r;
    ck_assert_int_eq(nb_gradcheck(ctx, relu_sum, x, 1, &x, NULL, &r), NB_OK);
    ck_assert(!r.ok);
    ck_assert_int_eq(r.worst, 1);
    ck_assert_int_eq(r.checked, 3);
    ck_assert(r.analytic == 0.0);
    ck_assert(fabs(r.numeric - 0.5) < 1e-9);
    ck_assert(fabs(r.max_abs_err - 0.5) < 1e-9);
    /* The values are restored and requires_grad is back as it was. */
    ck_assert(nb_get(x, 1) == 0.0 && nb_get(x, 0) == 0.5);
    ck_assert(!x->requires_grad);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_gradcheck_sample_and_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_tensor *x = nb_tensor_new(ctx, NB_F64, 1, (int64_t[]){1000});
    nb_fill_uniform(x, &rng, 0.1, 1);
    nb_gradcheck_report r;
    nb_gradcheck_opts o = {.max_elems = 17, .seed = 9};
    ck_assert_int_eq(nb_gradcheck(ctx, relu_sum, x, 1, &x, &o, &r), NB_OK);
    ck_assert(r.ok);
    ck_assert_int_eq(r.checked, 17);
    ck_assert(r.max_rel_err < 1e-6);
    nb_tensor *y = nb_tensor_new(ctx, NB_F32, 1, (int64_t[]){4});
    ck_assert_int_eq(nb_gradcheck(ctx, relu_sum, y, 1, &y, NULL, &r), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "checks need f64");
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_core(void)
{
    Suite *s = suite_create("core");
    TCase *tc = tcase_create("tensor");
    tcase_add_test(tc, test_tensor_new);
    tcase_add_test(tc, test_tensor_from_wrap_copy);
    tcase_add_test(tc, test_tensor_errors);
    tcase_add_test(tc, test_tensor_print);
    tcase_add_test(tc, test_rng);
    suite_add_tcase(s, tc);
    tc = tcase_create("graph");
    tcase_add_test(tc, test_backward_errors);
    tcase_add_test(tc, test_accumulate_and_zero);
    tcase_add_test(tc, test_steady_state_allocates_nothing);
    tcase_add_test(tc, test_modes);
    tcase_add_test(tc, test_alloc_failure);
    suite_add_tcase(s, tc);
    tc = tcase_create("gradcheck");
    tcase_add_test(tc, test_gradcheck_reports_a_mismatch);
    tcase_add_test(tc, test_gradcheck_sample_and_errors);
    suite_add_tcase(s, tc);
    return s;
}
