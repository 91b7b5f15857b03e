/* test_batchnorm.c - batch norm in train and eval mode, with and without
 * affine parameters and running statistics. */
#include "harness.h"

#include <string.h>

#include "internal.h"

/* x, weight, bias, running_mean, running_var: the running statistics are in
 * e->t so the float32 run gets copies; train mode's output does not depend
 * on them and they get no gradient, so both sides of the check are 0. */
static void setup_affine(tst_env *e, nb_rng *rng, int ndim, const int64_t *shape)
{
    int64_t c[] = {shape[1]};
    tst_tensor_range(e, rng, ndim, shape, -2.0, 3.0);
    tst_tensor_range(e, rng, 1, c, 0.5, 1.5);
    tst_tensor(e, rng, 1, c);
    tst_tensor(e, rng, 1, c);
    tst_tensor_range(e, rng, 1, c, 0.5, 1.5);
}

static void setup_2d(tst_env *e, nb_rng *rng)
{
    setup_affine(e, rng, 2, (int64_t[]){4, 3});
}

static void setup_4d(tst_env *e, nb_rng *rng)
{
    setup_affine(e, rng, 4, (int64_t[]){2, 3, 4, 5});
}

static void setup_x_only(tst_env *e, nb_rng *rng)
{
    tst_tensor_range(e, rng, 4, (int64_t[]){2, 3, 4, 5}, -2.0, 3.0);
}

static nb_tensor *fwd_train(nb_ctx *ctx, tst_env *e)
{
    return nb_batch_norm(ctx, e->t[0], e->t[1], e->t[2], e->t[3], e->t[4], 0.1, 1e-5);
}

static nb_tensor *fwd_no_affine(nb_ctx *ctx, tst_env *e)
{
    return nb_batch_norm(ctx, e->t[0], NULL, NULL, NULL, NULL, 0.1, 1e-5);
}

/* Weight without bias: the node's inputs are then x and weight only. */
static nb_tensor *fwd_weight_only(nb_ctx *ctx, tst_env *e)
{
    return nb_batch_norm(ctx, e->t[0], e->t[1], NULL, NULL, NULL, 0.1, 1e-5);
}

/* Eval mode with fixed running statistics: they are constants here, made
 * in the forward in x's dtype, since the output depends on them but they
 * are not differentiated (as in PyTorch, where they are buffers). */
static nb_tensor *fwd_eval(nb_ctx *ctx, tst_env *e)
{
    static const double mean[] = {0.3, -0.2, 0.5}, var[] = {0.7, 1.4, 0.9};
    nb_tensor *x = e->t[0];
    int64_t c[] = {3};
    nb_tensor *rm = nbi_step_tensor(ctx, x->dtype, 1, c);
    nb_tensor *rv = nbi_step_tensor(ctx, x->dtype, 1, c);
    if (!rm || !rv)
        return NULL;
    for (int i = 0; i < 3; i++) {
        nb_set(rm, i, mean[i]);
        nb_set(rv, i, var[i]);
    }
    bool was = nb_set_training(ctx, false);
    nb_tensor *y = nb_batch_norm(ctx, x, e->t[1], e->t[2], rm, rv, 0.1, 1e-5);
    nb_set_training(ctx, was);
    return y;
}

/* Eval mode without running statistics uses the batch's. */
static nb_tensor *fwd_eval_batch_stats(nb_ctx *ctx, tst_env *e)
{
    bool was = nb_set_training(ctx, false);
    nb_tensor *y = nb_batch_norm(ctx, e->t[0], e->t[1], e->t[2], NULL, NULL, 0.1, 1e-5);
    nb_set_training(ctx, was);
    return y;
}

const tst_case tst_cases_batchnorm[] = {
    {"batch_norm train [4,3] affine", setup_2d, fwd_train},
    {"batch_norm train [2,3,4,5] affine", setup_4d, fwd_train},
    {"batch_norm train [2,3,4,5] no affine", setup_x_only, fwd_no_affine},
    {"batch_norm train [2,3,4,5] weight only", setup_4d, fwd_weight_only},
    {"batch_norm eval [2,3,4,5] running stats", setup_4d, fwd_eval},
    {"batch_norm eval [4,3] no running stats", setup_2d, fwd_eval_batch_stats},
    {0},
};

/* x [4, 2]: channel 0 is 1 2 3 6 (mean 3, squared deviations 4 1 0 9:
 * biased var 14/4 = 3.5, unbiased 14/3); channel 1 is 0 4 4 8 (mean 4,
 * deviations 16 0 0 16: var 8, unbiased 32/3).  weight [2, 0.5], bias
 * [1, -1], eps 1e-5: y = (x - mean) / sqrt(var + 1e-5) w + b. */
static const double bn_x[] = {1, 0, 2, 4, 3, 4, 6, 8};

START_TEST(test_train_values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    double tol = _i ? 1e-5 : 1e-11;
    int64_t s[] = {4, 2}, c[] = {2};
    nb_tensor *x = tst_make(ctx, dt, 2, s, bn_x);
    nb_tensor *w = tst_make(ctx, dt, 1, c, (double[]){2, 0.5});
    nb_tensor *b = tst_make(ctx, dt, 1, c, (double[]){1, -1});
    nb_tensor *rm = tst_make(ctx, dt, 1, c, (double[]){0, 0});
    nb_tensor *rv = tst_make(ctx, dt, 1, c, (double[]){1, 1});
    nb_tensor *y = nb_batch_norm(ctx, x, w, b, rm, rv, 0.1, 1e-5);
    /* -2 / sqrt(3.50001) * 2 + 1 = -1.138086880892, ... */
    tst_assert_values(y, 2, s,
                      (double[]){-1.138086880892, -1.707106339245, -0.069043440446, -1.0,
                                 1.0, -1.0, 4.207130321338, -0.292893660755},
                      tol);
    /* r = 0.9 r + 0.1 s: mean 0.1 [3, 4], var 0.9 + 0.1 [14/3, 32/3] */
    tst_assert_values(rm, 1, c, (double[]){0.3, 0.4}, tol);
    tst_assert_values(rv, 1, c, (double[]){1.366666666667, 1.966666666667}, tol);

    /* The running statistics after that step, in eval mode (from torch). */
    nb_set_training(ctx, false);
    tst_assert_values(nb_batch_norm(ctx, x, w, b, rm, rv, 0.1, 1e-5), 2, s,
                      (double[]){2.197554110588, -1.142614443984, 3.908345697143, 0.283529995854,
                                 5.619137283697, 0.283529995854, 10.751512043360, 1.709674435693},
                      tol);
    tst_assert_values(rm, 1, c, (double[]){0.3, 0.4}, tol); /* unchanged in eval */
    /* Eval mode without running statistics: the batch's, as in train mode. */
    tst_assert_values(nb_batch_norm(ctx, x, w, b, NULL, NULL, 0.1, 1e-5), 2, s,
                      (double[]){-1.138086880892, -1.707106339245, -0.069043440446, -1.0,
                                 1.0, -1.0, 4.207130321338, -0.292893660755},
                      tol);
    nb_ctx_free(ctx);
}
END_TEST

/* Gradients of sum(y r), r = 1..8, in train mode (from torch):
 * dbias = sum(r) per channel = [16, 20]; dweight = sum(r xhat). */
START_TEST(test_train_grad)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {4, 2}, c[] = {2};
    nb_tensor *x = tst_make(ctx, NB_F64, 2, s, bn_x);
    nb_tensor *w = tst_make(ctx, NB_F64, 1, c, (double[]){2, 0.5});
    nb_tensor *b = tst_make(ctx, NB_F64, 1, c, (double[]){1, -1});
    nb_tensor *r = tst_make(ctx, NB_F64, 2, s, (double[]){1, 2, 3, 4, 5, 6, 7, 8});
    nb_requires_grad(x, true);
    nb_requires_grad(w, true);
    nb_requires_grad(b, true);
    nb_tensor *y = nb_batch_norm(ctx, x, w, b, NULL, NULL, 0.1, 1e-5);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, r))), NB_OK);
    tst_assert_values(x->grad, 2, s,
                      (double[]){-0.7636094389496, -6.629113644015e-07, 0.1527170007481,
                                 -0.1767765848113, 1.069043440446, 0.1767765848113,
                                 -0.4581510022444, 6.629113644015e-07},
                      1e-11);
    tst_assert_values(w->grad, 1, c, (double[]){8.552347523567, 8.485276070943}, 1e-11);
    tst_assert_values(b->grad, 1, c, (double[]){16, 20}, 1e-12);
    nb_ctx_free(ctx);
}
END_TEST

/* Eval mode with running mean [1, 2], var [4, 0.25], eps 0, weight
 * [2, 0.5], bias [1, -1]: channel 0 is (x - 1) / 2 * 2 + 1 = x, channel 1
 * is (x - 2) / 0.5 * 0.5 - 1 = x - 3.  The running statistics are
 * constants: dx = w invstd = 1, dweight = sum(xhat) = sum((x - 1) / 2) = 4
 * and sum((x - 2) / 0.5) = 16, dbias = 4 per channel. */
START_TEST(test_eval_values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    int64_t s[] = {4, 2}, c[] = {2};
    nb_tensor *x = tst_make(ctx, dt, 2, s, bn_x);
    nb_tensor *w = tst_make(ctx, dt, 1, c, (double[]){2, 0.5});
    nb_tensor *b = tst_make(ctx, dt, 1, c, (double[]){1, -1});
    nb_tensor *rm = tst_make(ctx, dt, 1, c, (double[]){1, 2});
    nb_tensor *rv = tst_make(ctx, dt, 1, c, (double[]){4, 0.25});
    nb_requires_grad(x, true);
    nb_requires_grad(w, true);
    nb_requires_grad(b, true);
    nb_requires_grad(rm, true); /* ignored: running statistics are data */
    nb_set_training(ctx, false);
    nb_tensor *y = nb_batch_norm(ctx, x, w, b, rm, rv, 0.1, 0.0);
    tst_assert_values(y, 2, s, (double[]){1, -3, 2, 1, 3, 1, 6, 5}, 0);
    ck_assert_int_eq(nb_graph_size(ctx), 1);
    ck_assert_int_eq(ctx->tape->nin, 3);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, y)), NB_OK);
    tst_assert_values(x->grad, 2, s, (double[]){1, 1, 1, 1, 1, 1, 1, 1}, 0);
    tst_assert_values(w->grad, 1, c, (double[]){4, 16}, 0);
    tst_assert_values(b->grad, 1, c, (double[]){4, 4}, 0);
    ck_assert_ptr_null(rm->grad);
    ck_assert_ptr_null(rv->grad);
    nb_ctx_free(ctx);
}
END_TEST

/* NaN and infinities, as PyTorch 1.13 gives them (printed by torch once):
 * x [3, 2], weight 1, bias 0, running statistics 0 and 1, momentum 0.1,
 * eps 1e-5, dy 1 in channel 0 and 2 in channel 1 unless said.  In train
 * mode a value that is not finite makes its channel's statistics NaN (or
 * the mean infinite), so the whole channel; in eval mode only itself, and
 * dx = dy w invstd stays finite. */
START_TEST(test_nonfinite)
{
    const double inf = INFINITY, nan = NAN;
    const double y1[3] = {-0.9258191078240388, -0.4629095539120194, 1.3887286617360581};
    const double e0 = 0.9999950000374997; /* 1 / sqrt(1 + 1e-5) */
    const struct {
        const char *name;
        bool train;
        double x[6], w[2], b[2], rm[2], rv[2], dy[6];
        double y[6], dx[6], dw[2], db[2], rm_after[2], rv_after[2];
    } cases[] = {
        {"train, a NaN", true, {1, 2, nan, 3, 5, 7}, {1, 1}, {0, 0}, {0, 0}, {1, 1},
         {1, 2, 1, 2, 1, 2},
         {nan, y1[0], nan, y1[1], nan, y1[2]}, {nan, 0, nan, 0, nan, 0}, {nan, 0}, {3, 6},
         {nan, 0.4}, {nan, 1.6}},
        {"train, an infinity", true, {1, 2, inf, 3, 5, 7}, {1, 1}, {0, 0}, {0, 0}, {1, 1},
         {1, 2, 1, 2, 1, 2},
         {nan, y1[0], nan, y1[1], nan, y1[2]}, {nan, 0, nan, 0, nan, 0}, {nan, 0}, {3, 6},
         {inf, 0.4}, {nan, 1.6}},
        {"train, NaN weight and infinite bias", true, {1, 2, 4, 3, 5, 7}, {nan, 1}, {0, inf},
         {0, 0}, {1, 1}, {1, 2, 1, 2, 1, 2},
         {nan, inf, nan, inf, nan, inf}, {nan, 0, nan, 0, nan, 0}, {0, 0}, {3, 6},
         {1.0 / 3, 0.4}, {4.0 / 3, 1.6}},
        {"train, dy NaN and infinite", true, {1, 2, 4, 3, 5, 7}, {1, 1}, {0, 0}, {0, 0}, {1, 1},
         {nan, 1, 1, 1, 1, inf},
         {-1.3728105699510502, y1[0], 0.39223159141458575, y1[1], 0.9805789785364644, y1[2]},
         {nan, nan, nan, nan, nan, nan}, {nan, inf}, {nan, inf}, {1.0 / 3, 0.4}, {4.0 / 3, 1.6}},
        {"eval, a NaN", false, {1, 2, nan, 3, 5, 7}, {1, 1}, {0, 0}, {0, 0}, {1, 1},
         {1, 2, 1, 2, 1, 2},
         {e0, 2 * e0, nan, 3 * e0, 5 * e0, 7 * e0}, {e0, 2 * e0, e0, 2 * e0, e0, 2 * e0},
         {nan, 24 * e0}, {3, 6}, {0, 0}, {1, 1}},
        {"eval, NaN running mean and infinite running var", false, {1, 2, 4, 3, 5, 7}, {1, 1},
         {0, 0}, {nan, 0}, {1, inf}, {1, 2, 1, 2, 1, 2},
         {nan, 0, nan, 0, nan, 0}, {e0, 0, e0, 0, e0, 0}, {nan, 0}, {3, 6}, {nan, 0}, {1, inf}},
    };
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    double tol = _i ? 1e-5 : 1e-12;
    int64_t s[] = {3, 2}, c[] = {2};
    nb_ctx *ctx = nb_ctx_new();
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        nb_set_training(ctx, cases[k].train);
        nb_tensor *x = tst_make(ctx, dt, 2, s, cases[k].x);
        nb_tensor *w = tst_make(ctx, dt, 1, c, cases[k].w);
        nb_tensor *b = tst_make(ctx, dt, 1, c, cases[k].b);
        nb_tensor *rm = tst_make(ctx, dt, 1, c, cases[k].rm);
        nb_tensor *rv = tst_make(ctx, dt, 1, c, cases[k].rv);
        nb_requires_grad(x, true);
        nb_requires_grad(w, true);
        nb_requires_grad(b, true);
        nb_tensor *y = nb_batch_norm(ctx, x, w, b, rm, rv, 0.1, 1e-5);
        tst_assert_values(y, 2, s, cases[k].y, tol);
        tst_assert_values(rm, 1, c, cases[k].rm_after, tol);
        tst_assert_values(rv, 1, c, cases[k].rv_after, tol);
        nb_tensor *r = tst_make(ctx, dt, 2, s, cases[k].dy);
        ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, r))), NB_OK);
        tst_assert_values(x->grad, 2, s, cases[k].dx, tol * 10);
        tst_assert_values(w->grad, 1, c, cases[k].dw, tol * 10);
        tst_assert_values(b->grad, 1, c, cases[k].db, tol);
        nb_graph_reset(ctx);
    }
    nb_ctx_free(ctx);
}
END_TEST

/* Without affine parameters: y = xhat; in train mode each channel has mean
 * 0, and the running statistics update in no-grad mode too. */
START_TEST(test_no_affine_no_grad)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {2, 2, 1, 2}, c[] = {2};
    /* channel 0: 1 3 5 7 (mean 4, var 5, unbiased 20/3); channel 1: 2 2 4 4
     * (mean 3, var 1, unbiased 4/3) */
    nb_tensor *x = tst_make(ctx, NB_F64, 4, s, (double[]){1, 3, 2, 2, 5, 7, 4, 4});
    nb_tensor *rm = tst_make(ctx, NB_F64, 1, c, (double[]){0, 0});
    nb_tensor *rv = tst_make(ctx, NB_F64, 1, c, (double[]){1, 1});
    nb_requires_grad(x, true);
    nb_set_grad_enabled(ctx, false);
    nb_tensor *y = nb_batch_norm(ctx, x, NULL, NULL, rm, rv, 0.5, 0.0);
    double a = 1 / sqrt(5.0);
    tst_assert_values(y, 4, s, (double[]){-3 * a, -a, -1, -1, a, 3 * a, 1, 1}, 1e-15);
    ck_assert_int_eq(nb_graph_size(ctx), 0);
    tst_assert_values(rm, 1, c, (double[]){2, 1.5}, 1e-15);
    tst_assert_values(rv, 1, c, (double[]){0.5 + 10.0 / 3, 0.5 + 2.0 / 3}, 1e-15);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s3[] = {2, 3, 4}, s4[] = {2, 3, 4, 4}, c3[] = {3}, c4[] = {4}, one[] = {1, 3};
    nb_tensor *x3 = nb_tensor_new(ctx, NB_F32, 3, s3);
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, 4, s4);
    nb_tensor *w = nb_tensor_full(ctx, NB_F32, 1, c3, 1.0);
    nb_tensor *w4 = nb_tensor_full(ctx, NB_F32, 1, c4, 1.0);
    nb_tensor *w64 = nb_tensor_full(ctx, NB_F64, 1, c3, 1.0);
    nb_tensor *x1 = nb_tensor_new(ctx, NB_F32, 2, one);

    ck_assert_ptr_null(nb_batch_norm(ctx, x3, w, w, NULL, NULL, 0.1, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG, "batch_norm: input [2, 3, 4] must be [N, C] or [N, C, H, W]");
    ck_assert_ptr_null(nb_batch_norm(ctx, x, w4, w, NULL, NULL, 0.1, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "batch_norm: weight [4] does not match input [2, 3, 4, 4]: expected [3]");
    ck_assert_ptr_null(nb_batch_norm(ctx, x, w, w, w, w4, 0.1, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "batch_norm: running_var [4] does not match input [2, 3, 4, 4]: expected [3]");
    ck_assert_ptr_null(nb_batch_norm(ctx, x, w, w64, NULL, NULL, 0.1, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG, "batch_norm: bias is f64 but input is f32");
    ck_assert_ptr_null(nb_batch_norm(ctx, x, NULL, NULL, w, NULL, 0.1, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "batch_norm: running_mean and running_var must both be given or both be NULL");
    /* One value per channel has no batch variance (PyTorch refuses too);
     * eval mode with running statistics is fine. */
    ck_assert_ptr_null(nb_batch_norm(ctx, x1, NULL, NULL, w, w, 0.1, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "batch_norm: input [1, 3] has 1 value per channel; batch statistics need more");
    nb_set_training(ctx, false);
    nb_clear_error(ctx);
    ck_assert_ptr_nonnull(nb_batch_norm(ctx, x1, NULL, NULL, w, w, 0.1, 1e-5));
    ck_assert_ptr_null(nb_batch_norm(ctx, NULL, w, w, NULL, NULL, 0.1, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG, "batch_norm: input 0 is NULL");
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_batchnorm(void)
{
    Suite *s = suite_create("batchnorm");
    TCase *tc = tcase_create("batchnorm");
    tcase_add_loop_test(tc, test_train_values, 0, 2);
    tcase_add_test(tc, test_train_grad);
    tcase_add_loop_test(tc, test_eval_values, 0, 2);
    tcase_add_loop_test(tc, test_nonfinite, 0, 2);
    tcase_add_test(tc, test_no_affine_no_grad);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}
