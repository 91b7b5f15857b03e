/* test_batchnorm.c - batch norm in train and eval mode, with and without
 * affine parameters and running statistics, over [N, C], [N, C, L] and
 * [N, C, H, W]; and the batch_norm layer after conv1d in a model. */
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

/* [N, C, L], as after conv1d (PyTorch's BatchNorm1d on 3-d input). */
static void setup_3d(tst_env *e, nb_rng *rng)
{
    setup_affine(e, rng, 3, (int64_t[]){2, 3, 5});
}

static void setup_x_only(tst_env *e, nb_rng *rng)
{
    tst_tensor_range(e, rng, 4, (int64_t[]){2, 3, 4, 5}, -2.0, 3.0);
}

static void setup_x_only_3d(tst_env *e, nb_rng *rng)
{
    tst_tensor_range(e, rng, 3, (int64_t[]){3, 2, 4}, -2.0, 3.0);
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
    {"batch_norm train [2,3,5] affine", setup_3d, fwd_train},
    {"batch_norm train [3,2,4] no affine", setup_x_only_3d, fwd_no_affine},
    {"batch_norm train [2,3,5] weight only", setup_3d, fwd_weight_only},
    {"batch_norm eval [2,3,5] running stats", setup_3d, fwd_eval},
    {"batch_norm eval [2,3,5] no running stats", setup_3d, fwd_eval_batch_stats},
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

/* ---- [N, C, L] ------------------------------------------------------------
 * x [2, 2, 3] (N, C, L): a channel's statistics run over n and l, so over
 * 6 values.  Channel 0 is x[n][0][l] = 1 2 3 | 4 0 2 (mean 2, squared
 * deviations 1 0 1 4 4 0: biased var 10/6, unbiased 10/5 = 2); channel 1 is
 * 1 5 -1 | 3 3 7 (mean 3, squared deviations 4 4 16 0 0 16: biased var
 * 40/6, unbiased 40/5 = 8).  weight [2, 0.5], bias [1, -1], eps 1e-5;
 * momentum 0.1 from running mean 0, var 1: running_mean 0.1 [2, 3] and
 * running_var 0.9 + 0.1 [2, 8] (PyTorch's BatchNorm1d on [N, C, L]). */
static const double ncl_x[] = {1, 2, 3, 1, 5, -1, 4, 0, 2, 3, 3, 7};

/* y[n][c][l] = (x - mean[c]) / sqrt(var[c] + eps) w[c] + b[c] over ncl_x. */
static void ncl_expect(const double *mean, const double *var, double eps, double *y)
{
    static const double w[] = {2, 0.5}, b[] = {1, -1};
    for (int n = 0; n < 2; n++)
        for (int c = 0; c < 2; c++)
            for (int l = 0; l < 3; l++) {
                int i = (n * 2 + c) * 3 + l;
                y[i] = (ncl_x[i] - mean[c]) / sqrt(var[c] + eps) * w[c] + b[c];
            }
}

START_TEST(test_ncl_values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    double tol = _i ? 1e-5 : 1e-12;
    int64_t s[] = {2, 2, 3}, c[] = {2};
    nb_tensor *x = tst_make(ctx, dt, 3, s, ncl_x);
    nb_tensor *w = tst_make(ctx, dt, 1, c, (double[]){2, 0.5});
    nb_tensor *b = tst_make(ctx, dt, 1, c, (double[]){1, -1});
    nb_tensor *rm = tst_make(ctx, dt, 1, c, (double[]){0, 0});
    nb_tensor *rv = tst_make(ctx, dt, 1, c, (double[]){1, 1});
    double want[12];

    /* Train mode: the batch's statistics, biased variance. */
    nb_set_training(ctx, true);
    ncl_expect((double[]){2, 3}, (double[]){10.0 / 6, 40.0 / 6}, 1e-5, want);
    /* spot checks by hand: channel 0, x = 1: -1 / sqrt(5/3 + 1e-5) 2 + 1 */
    ck_assert_double_eq_tol(want[0], -0.5491886909, 1e-9);
    ck_assert_double_eq_tol(want[4], 2 / sqrt(40.0 / 6 + 1e-5) * 0.5 - 1, 1e-15);
    tst_assert_values(nb_batch_norm(ctx, x, w, b, rm, rv, 0.1, 1e-5), 3, s, want, tol);
    /* The running statistics: unbiased variance. */
    tst_assert_values(rm, 1, c, (double[]){0.2, 0.3}, tol);
    tst_assert_values(rv, 1, c, (double[]){1.1, 1.7}, tol);

    /* A second step with the same batch: r = 0.9 r + 0.1 s again. */
    tst_assert_values(nb_batch_norm(ctx, x, w, b, rm, rv, 0.1, 1e-5), 3, s, want, tol);
    tst_assert_values(rm, 1, c, (double[]){0.38, 0.57}, tol);
    tst_assert_values(rv, 1, c, (double[]){0.99 + 0.2, 1.53 + 0.8}, tol);

    /* Eval mode: the running statistics, which stay as they are. */
    nb_set_training(ctx, false);
    ncl_expect((double[]){0.38, 0.57}, (double[]){1.19, 2.33}, 1e-5, want);
    tst_assert_values(nb_batch_norm(ctx, x, w, b, rm, rv, 0.1, 1e-5), 3, s, want, tol);
    tst_assert_values(rm, 1, c, (double[]){0.38, 0.57}, tol);
    tst_assert_values(rv, 1, c, (double[]){1.19, 2.33}, tol);
    /* Eval mode without running statistics: the batch's. */
    ncl_expect((double[]){2, 3}, (double[]){10.0 / 6, 40.0 / 6}, 1e-5, want);
    tst_assert_values(nb_batch_norm(ctx, x, w, b, NULL, NULL, 0.1, 1e-5), 3, s, want, tol);
    nb_ctx_free(ctx);
}
END_TEST

/* The gradients over [N, C, L] by hand, for loss = sum(y r) with
 * r[n][c][l] = i + 1 (i the flat index), in train mode: db[c] = sum(r),
 * dw[c] = sum(r xhat), dx = w invstd / m (m r - sum(r) - xhat sum(r xhat))
 * with m = 6 per channel; in eval mode dx = r w invstd of the running
 * variance. */
START_TEST(test_ncl_grad_values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    double tol = _i ? 1e-4 : 1e-11;
    int64_t s[] = {2, 2, 3}, c[] = {2};
    const double wv[] = {2, 0.5}, mean[] = {2, 3}, var[] = {10.0 / 6, 40.0 / 6};
    double r[12], dx[12], dw[2] = {0}, db[2] = {0}, xhat[12];
    for (int i = 0; i < 12; i++)
        r[i] = i + 1;
    for (int i = 0; i < 12; i++) {
        int ch = (i / 3) % 2;
        xhat[i] = (ncl_x[i] - mean[ch]) / sqrt(var[ch] + 1e-5);
        db[ch] += r[i];
        dw[ch] += r[i] * xhat[i];
    }
    for (int i = 0; i < 12; i++) {
        int ch = (i / 3) % 2;
        dx[i] = wv[ch] / sqrt(var[ch] + 1e-5) / 6 * (6 * r[i] - db[ch] - xhat[i] * dw[ch]);
    }
    /* channel 0 holds r = 1 2 3 7 8 9, channel 1 r = 4 5 6 10 11 12 */
    ck_assert_double_eq(db[0], 30);
    ck_assert_double_eq(db[1], 48);

    nb_set_training(ctx, true);
    nb_tensor *x = tst_make(ctx, dt, 3, s, ncl_x);
    nb_tensor *w = tst_make(ctx, dt, 1, c, wv);
    nb_tensor *b = tst_make(ctx, dt, 1, c, (double[]){1, -1});
    nb_tensor *rt = tst_make(ctx, dt, 3, s, r);
    nb_requires_grad(x, true);
    nb_requires_grad(w, true);
    nb_requires_grad(b, true);
    nb_tensor *y = nb_batch_norm(ctx, x, w, b, NULL, NULL, 0.1, 1e-5);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, rt))), NB_OK);
    tst_assert_values(x->grad, 3, s, dx, tol);
    tst_assert_values(w->grad, 1, c, dw, tol);
    tst_assert_values(b->grad, 1, c, db, tol);
    /* Per channel, dx sums to 0 over n and l (the mean's gradient). */
    for (int ch = 0; ch < 2; ch++) {
        double sum = 0;
        for (int i = 0; i < 12; i++)
            if ((i / 3) % 2 == ch)
                sum += nb_get(x->grad, i);
        ck_assert_double_eq_tol(sum, 0, tol * 10);
    }

    /* Eval mode with running mean [1, 2], var [4, 0.25]: dx = r w / sqrt(v). */
    nb_graph_reset(ctx);
    nb_tensor *rm = tst_make(ctx, dt, 1, c, (double[]){1, 2});
    nb_tensor *rv = tst_make(ctx, dt, 1, c, (double[]){4, 0.25});
    nb_set_training(ctx, false);
    nb_zero_grad(ctx);
    y = nb_batch_norm(ctx, x, NULL, NULL, rm, rv, 0.1, 0.0);
    for (int i = 0; i < 12; i++)
        dx[i] = r[i] / sqrt((i / 3) % 2 ? 0.25 : 4);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, rt))), NB_OK);
    tst_assert_values(x->grad, 3, s, dx, tol);
    nb_ctx_free(ctx);
}
END_TEST

/* Finite differences over [N, C, L] in float64, in this suite too (the
 * gradcheck suite runs the [2,3,5] cases of the table above): loss =
 * sum(y r), r a fixed tensor, with respect to x, weight and bias; in train
 * mode (batch statistics) and in eval mode (running statistics). */
typedef struct ncl_run {
    nb_tensor *x, *w, *b, *rm, *rv, *r;
    bool train;
} ncl_run;

static nb_tensor *ncl_loss(nb_ctx *ctx, void *ud)
{
    ncl_run *u = ud;
    bool was = nb_set_training(ctx, u->train);
    nb_tensor *y = nb_batch_norm(ctx, u->x, u->w, u->b, u->rm, u->rv, 0.1, 1e-5);
    nb_set_training(ctx, was);
    return nb_sum(ctx, nb_mul(ctx, y, u->r));
}

START_TEST(test_ncl_gradcheck)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    int64_t s[] = {3, 4, 7}, c[] = {4};
    ncl_run u = {nb_tensor_new(ctx, NB_F64, 3, s), nb_tensor_new(ctx, NB_F64, 1, c),
                 nb_tensor_new(ctx, NB_F64, 1, c), nb_tensor_new(ctx, NB_F64, 1, c),
                 nb_tensor_new(ctx, NB_F64, 1, c), nb_tensor_new(ctx, NB_F64, 3, s), _i == 0};
    nb_fill_uniform(u.x, &rng, -2, 3);
    nb_fill_uniform(u.w, &rng, 0.5, 1.5);
    nb_fill_uniform(u.b, &rng, -1, 1);
    nb_fill_uniform(u.rm, &rng, -0.5, 0.5);
    nb_fill_uniform(u.rv, &rng, 0.5, 1.5);
    nb_fill_uniform(u.r, &rng, 0.5, 1.5);
    nb_tensor *wrt[] = {u.x, u.w, u.b};
    nb_gradcheck_report rep[3];
    ck_assert_int_eq(nb_gradcheck(ctx, ncl_loss, &u, 3, wrt, NULL, rep), NB_OK);
    for (int j = 0; j < 3; j++) {
        ck_assert_int_eq(rep[j].checked, wrt[j]->numel);
        ck_assert_msg(rep[j].ok && rep[j].max_rel_err <= 1e-6,
                      "%s: tensor %d: relative error %.3g at %lld (analytic %.10g, numeric %.10g)",
                      u.train ? "train" : "eval", j, rep[j].max_rel_err, (long long)rep[j].worst,
                      rep[j].analytic, rep[j].numeric);
    }
    nb_ctx_free(ctx);
}
END_TEST

/* ---- the layer after conv1d, in a model ------------------------------------ */

/* conv1d [2, 8] -> [3, 8], batch_norm over [3, 8] (momentum 0.5), tanh,
 * flatten, linear 24 -> 2, mse. */
static const char conv1d_bn_json[] =
    "{\"name\": \"conv1d-bn\", \"input\": [2, 8], \"layers\": ["
    "{\"type\": \"conv1d\", \"out_channels\": 3, \"kernel_size\": 3, \"padding\": \"same\"},"
    "{\"name\": \"bn\", \"type\": \"batch_norm\", \"momentum\": 0.5, \"num_features\": 3},"
    "{\"type\": \"tanh\"},"
    "{\"type\": \"flatten\"},"
    "{\"type\": \"linear\", \"out_features\": 2}],"
    " \"loss\": {\"type\": \"mse\"}}";

static nb_model *parse_model(nb_ctx *ctx, const char *json, nb_dtype dt)
{
    nb_model *m = nb_model_parse(ctx, json, strlen(json), "test.json", dt);
    ck_assert_msg(m != NULL, "%s", nb_errmsg(ctx));
    return m;
}

/* bn's output from conv's a [N, 3, L]: (a - mean) / sqrt(var + 1e-5) w + b
 * per channel, mean and var given. */
static void assert_bn_of(const nb_tensor *a, const nb_tensor *y, const nb_tensor *w,
                         const nb_tensor *b, const double *mean, const double *var, double tol)
{
    int64_t N = a->shape[0], C = a->shape[1], L = a->shape[2];
    ck_assert_int_eq(y->ndim, 3);
    for (int d = 0; d < 3; d++)
        ck_assert_int_eq(y->shape[d], a->shape[d]);
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t l = 0; l < L; l++) {
                int64_t i = (n * C + c) * L + l;
                double want = (nb_get(a, i) - mean[c]) / sqrt(var[c] + 1e-5) * nb_get(w, c) +
                              nb_get(b, c);
                ck_assert_msg(fabs(nb_get(y, i) - want) <= tol, "bn output %lld: %.12g, want %.12g",
                              (long long)i, nb_get(y, i), want);
            }
}

/* Per channel of a [N, C, L]: mean, biased and unbiased variance over n, l. */
static void channel_stats(const nb_tensor *a, double *mean, double *var, double *unbiased)
{
    int64_t N = a->shape[0], C = a->shape[1], L = a->shape[2], m = N * L;
    for (int64_t c = 0; c < C; c++) {
        double s = 0, q = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t l = 0; l < L; l++)
                s += nb_get(a, (n * C + c) * L + l);
        mean[c] = s / (double)m;
        for (int64_t n = 0; n < N; n++)
            for (int64_t l = 0; l < L; l++) {
                double d = nb_get(a, (n * C + c) * L + l) - mean[c];
                q += d * d;
            }
        var[c] = q / (double)m;
        unbiased[c] = q / (double)(m - 1);
    }
}

static void set_model_values(nb_model *m, const char *name, const double *v)
{
    nb_tensor *t = nb_model_find(m, name);
    ck_assert_msg(t != NULL, "no tensor %s", name);
    for (int64_t i = 0; i < t->numel; i++)
        nb_set(t, i, v[i]);
}

/* Loads and shape-checks, then train mode (batch statistics, running
 * statistics updated), backward, eval mode (running statistics). */
START_TEST(test_model_conv1d_bn)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    double tol = _i ? 1e-4 : 1e-10;
    nb_model *m = parse_model(ctx, conv1d_bn_json, dt);
    ck_assert_int_eq(nb_model_num_layers(m), 5);
    nb_layer_info li;
    ck_assert_int_eq(nb_model_layer(m, 1, &li), NB_OK);
    ck_assert_str_eq(li.name, "bn");
    ck_assert_str_eq(li.type, "batch_norm");
    ck_assert_int_eq(li.ndim, 2);
    ck_assert_int_eq(li.shape[0], 3);
    ck_assert_int_eq(li.shape[1], 8);
    ck_assert_int_eq(li.params, 6);
    ck_assert_int_eq(li.buffers, 6);
    /* conv 3 * 2 * 3 + 3, bn 3 + 3, linear 24 * 2 + 2; buffers 3 + 3 */
    ck_assert_int_eq(nb_model_num_params(m, true), 21 + 6 + 50);
    ck_assert_int_eq(nb_model_num_params(m, false), 6);
    int64_t out[NB_MAX_DIMS];
    ck_assert_int_eq(nb_model_output_shape(m, out), 1);
    ck_assert_int_eq(out[0], 2);
    nb_tensor *w = nb_model_find(m, "bn.weight"), *b = nb_model_find(m, "bn.bias");
    nb_tensor *rm = nb_model_find(m, "bn.running_mean"), *rv = nb_model_find(m, "bn.running_var");
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(rm);
    ck_assert_ptr_nonnull(rv);
    ck_assert_int_eq(rm->ndim, 1);
    ck_assert_int_eq(rm->shape[0], 3);
    tst_assert_values(rm, 1, (int64_t[]){3}, (double[]){0, 0, 0}, 0);
    tst_assert_values(rv, 1, (int64_t[]){3}, (double[]){1, 1, 1}, 0);
    set_model_values(m, "bn.weight", (double[]){1.5, 0.5, -1});
    set_model_values(m, "bn.bias", (double[]){0.25, -0.5, 1});

    nb_rng rng;
    nb_rng_seed(&rng, 9);
    nb_tensor *x = nb_tensor_new(ctx, dt, 3, (int64_t[]){4, 2, 8});
    nb_tensor *t = nb_tensor_new(ctx, dt, 2, (int64_t[]){4, 2});
    nb_fill_uniform(x, &rng, -2, 2);
    nb_fill_uniform(t, &rng, -1, 1);

    /* Train mode. */
    nb_set_training(ctx, true);
    nb_tensor *y = nb_model_forward(ctx, m, x);
    ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
    nb_tensor *a = nb_model_activation(m, 0), *h = nb_model_activation(m, 1);
    ck_assert_int_eq(a->ndim, 3);
    ck_assert_int_eq(a->shape[1], 3);
    ck_assert_int_eq(a->shape[2], 8);
    double mean[3], var[3], unb[3];
    channel_stats(a, mean, var, unb);
    assert_bn_of(a, h, w, b, mean, var, tol);
    double rm1[3], rv1[3];
    for (int c = 0; c < 3; c++) {
        rm1[c] = 0.5 * mean[c];
        rv1[c] = 0.5 + 0.5 * unb[c];
    }
    tst_assert_values(rm, 1, (int64_t[]){3}, rm1, tol);
    tst_assert_values(rv, 1, (int64_t[]){3}, rv1, tol);
    nb_tensor *loss = nb_model_loss(ctx, m, y, NULL, t);
    ck_assert_msg(loss != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_backward(ctx, loss), NB_OK);
    for (int i = 0; i < nb_model_num_tensors(m); i++) {
        nb_tensor *p = nb_model_tensor(m, i);
        if (nb_model_is_buffer(m, i)) {
            ck_assert_ptr_null(p->grad);
            continue;
        }
        ck_assert_msg(p->grad != NULL, "no gradient for %s", p->name);
        double norm = 0;
        for (int64_t k = 0; k < p->numel; k++) {
            ck_assert(isfinite(nb_get(p->grad, k)));
            norm += fabs(nb_get(p->grad, k));
        }
        ck_assert_msg(norm > 0, "zero gradient for %s", p->name);
    }
    /* The batch's statistics have no gradient along the channel's mean:
     * conv's bias gets none (its every output is normalised away). */
    nb_tensor *cb = nb_model_find(m, "0.bias");
    for (int64_t k = 0; k < cb->numel; k++)
        ck_assert_double_eq_tol(nb_get(cb->grad, k), 0, _i ? 1e-5 : 1e-12);
    nb_graph_reset(ctx);

    /* Eval mode: the running statistics, left alone. */
    nb_set_training(ctx, false);
    y = nb_model_forward(ctx, m, x);
    ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
    assert_bn_of(nb_model_activation(m, 0), nb_model_activation(m, 1), w, b, rm1, rv1, tol);
    tst_assert_values(rm, 1, (int64_t[]){3}, rm1, tol);
    tst_assert_values(rv, 1, (int64_t[]){3}, rv1, tol);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* Central differences through the model, float64, in train and eval
 * mode: the input and every trainable tensor. */
typedef struct model_run {
    nb_model *m;
    nb_tensor *x, *t;
} model_run;

static nb_tensor *model_loss(nb_ctx *ctx, void *ud)
{
    model_run *u = ud;
    return nb_model_loss(ctx, u->m, nb_model_forward(ctx, u->m, u->x), NULL, u->t);
}

START_TEST(test_model_conv1d_bn_gradcheck)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_set_training(ctx, _i == 0);
    model_run u = {parse_model(ctx, conv1d_bn_json, NB_F64), NULL, NULL};
    nb_rng rng;
    nb_rng_seed(&rng, 13);
    u.x = nb_tensor_new(ctx, NB_F64, 3, (int64_t[]){3, 2, 8});
    u.t = nb_tensor_new(ctx, NB_F64, 2, (int64_t[]){3, 2});
    nb_fill_uniform(u.x, &rng, -2, 2);
    nb_fill_uniform(u.t, &rng, -1, 1);
    set_model_values(u.m, "bn.running_mean", (double[]){0.1, -0.2, 0.3});
    set_model_values(u.m, "bn.running_var", (double[]){0.8, 1.3, 0.6});
    nb_tensor *wrt[16] = {u.x};
    int n = 1;
    for (int i = 0; i < nb_model_num_tensors(u.m); i++)
        if (!nb_model_is_buffer(u.m, i))
            wrt[n++] = nb_model_tensor(u.m, i);
    ck_assert_int_eq(n, 7);
    nb_gradcheck_report rep[16];
    ck_assert_int_eq(nb_gradcheck(ctx, model_loss, &u, n, wrt, NULL, rep), NB_OK);
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(rep[i].checked, wrt[i]->numel);
        ck_assert_msg(rep[i].ok, "%s, %s: analytic %g, numeric %g at %lld",
                      _i ? "eval" : "train", i ? wrt[i]->name : "input", rep[i].analytic,
                      rep[i].numeric, (long long)rep[i].worst);
    }
    nb_model_free(u.m);
    nb_ctx_free(ctx);
}
END_TEST

/* The layer's shape errors: channels against num_features, and shapes
 * that are none of [C], [C, L], [C, H, W]. */
START_TEST(test_model_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    const struct {
        const char *json, *msg;
    } bad[] = {
        {"{\"input\": [2, 8], \"layers\": ["
         "{\"type\": \"conv1d\", \"out_channels\": 3, \"kernel_size\": 3},"
         "{\"type\": \"batch_norm\", \"num_features\": 4}]}",
         "test.json: layers[1] (batch_norm \"1\"): input [3, 6] has 3 channels, but num_features is 4"},
        {"{\"input\": [2, 3, 4, 5], \"layers\": [{\"type\": \"batch_norm\"}]}",
         "test.json: layers[0] (batch_norm \"0\"): input [2, 3, 4, 5] must be [C], [C, L] or [C, H, W]"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        ck_assert_ptr_null(nb_model_parse(ctx, bad[k].json, strlen(bad[k].json), "test.json", NB_F32));
        tst_assert_error(ctx, NB_ERR_FORMAT, bad[k].msg);
        nb_clear_error(ctx);
    }
    /* A conv1d model's input of the wrong length is the model's error. */
    nb_model *m = parse_model(ctx, conv1d_bn_json, NB_F32);
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, 3, (int64_t[]){4, 2, 7});
    ck_assert_ptr_null(nb_model_forward(ctx, m, x));
    tst_assert_error(ctx, NB_ERR_ARG, "input [4, 2, 7] does not match [N, 2, 8]");
    nb_model_free(m);
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

    /* [N, C, L] is fine; 1-d and 5-d inputs are not. */
    ck_assert_ptr_nonnull(nb_batch_norm(ctx, x3, w, w, NULL, NULL, 0.1, 1e-5));
    nb_tensor *x5 = nb_tensor_new(ctx, NB_F32, 5, (int64_t[]){2, 3, 4, 4, 2});
    ck_assert_ptr_null(nb_batch_norm(ctx, x5, w, w, NULL, NULL, 0.1, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "batch_norm: input [2, 3, 4, 4, 2] must be [N, C], [N, C, L] or [N, C, H, W]");
    nb_tensor *xv = nb_tensor_new(ctx, NB_F32, 1, c3);
    ck_assert_ptr_null(nb_batch_norm(ctx, xv, NULL, NULL, NULL, NULL, 0.1, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "batch_norm: input [3] must be [N, C], [N, C, L] or [N, C, H, W]");
    ck_assert_ptr_null(nb_batch_norm(ctx, x3, w4, NULL, NULL, NULL, 0.1, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "batch_norm: weight [4] does not match input [2, 3, 4]: expected [3]");
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
    tcase_add_loop_test(tc, test_ncl_values, 0, 2);
    tcase_add_loop_test(tc, test_ncl_grad_values, 0, 2);
    tcase_add_loop_test(tc, test_ncl_gradcheck, 0, 2);
    tcase_add_loop_test(tc, test_model_conv1d_bn, 0, 2);
    tcase_add_loop_test(tc, test_model_conv1d_bn_gradcheck, 0, 2);
    tcase_add_test(tc, test_model_errors);
    suite_add_tcase(s, tc);
    return s;
}
