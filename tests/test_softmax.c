/* test_softmax.c - softmax and log_softmax along any dimension. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

/* Values in +-3, so the softmax is far from uniform. */
static void setup_2d(tst_env *e, nb_rng *rng)
{
    int64_t s[] = {3, 5};
    tst_tensor_range(e, rng, 2, s, -3, 3);
}

/* Images [N, C, H, W]: along channels the values are C * H * W apart. */
static void setup_4d(tst_env *e, nb_rng *rng)
{
    int64_t s[] = {2, 3, 2, 2};
    tst_tensor_range(e, rng, 4, s, -3, 3);
}

static void setup_3d(tst_env *e, nb_rng *rng)
{
    int64_t s[] = {2, 3, 4};
    tst_tensor_range(e, rng, 3, s, -3, 3);
}

static nb_tensor *fwd_softmax_1(nb_ctx *ctx, tst_env *e) { return nb_softmax(ctx, e->t[0], 1); }
static nb_tensor *fwd_softmax_last(nb_ctx *ctx, tst_env *e) { return nb_softmax(ctx, e->t[0], -1); }
static nb_tensor *fwd_softmax_0(nb_ctx *ctx, tst_env *e) { return nb_softmax(ctx, e->t[0], 0); }
static nb_tensor *fwd_log_softmax_1(nb_ctx *ctx, tst_env *e)
{
    return nb_log_softmax(ctx, e->t[0], 1);
}
static nb_tensor *fwd_log_softmax_last(nb_ctx *ctx, tst_env *e)
{
    return nb_log_softmax(ctx, e->t[0], -1);
}
static nb_tensor *fwd_log_softmax_0(nb_ctx *ctx, tst_env *e)
{
    return nb_log_softmax(ctx, e->t[0], 0);
}

const tst_case tst_cases_softmax[] = {
    {"softmax [3,5] dim 1", setup_2d, fwd_softmax_1},
    {"softmax [2,3,2,2] dim 1", setup_4d, fwd_softmax_1},
    {"softmax [2,3,4] dim -1", setup_3d, fwd_softmax_last},
    {"softmax [2,3,4] dim 0", setup_3d, fwd_softmax_0},
    {"log_softmax [3,5] dim 1", setup_2d, fwd_log_softmax_1},
    {"log_softmax [2,3,2,2] dim 1", setup_4d, fwd_log_softmax_1},
    {"log_softmax [2,3,4] dim -1", setup_3d, fwd_log_softmax_last},
    {"log_softmax [2,3,4] dim 0", setup_3d, fwd_log_softmax_0},
    {0},
};

/* softmax([1, 2, 3]) and its log, from torch; the same shifted by 1000
 * must not overflow. */
START_TEST(test_values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    double tol = _i ? 1e-6 : 1e-8;
    int64_t s[] = {3};
    nb_tensor *x = tst_make(ctx, dt, 1, s, (double[]){1, 2, 3});
    nb_tensor *big = tst_make(ctx, dt, 1, s, (double[]){1001, 1002, 1003});
    const double sm[] = {0.09003057, 0.24472847, 0.66524096};
    const double lsm[] = {-2.40760596, -1.40760596, -0.40760596};
    tst_assert_values(nb_softmax(ctx, x, 0), 1, s, sm, tol);
    tst_assert_values(nb_softmax(ctx, x, -1), 1, s, sm, tol);
    tst_assert_values(nb_log_softmax(ctx, x, 0), 1, s, lsm, tol);
    tst_assert_values(nb_softmax(ctx, big, 0), 1, s, sm, tol);
    tst_assert_values(nb_log_softmax(ctx, big, 0), 1, s, lsm, tol * 10);
    nb_ctx_free(ctx);
}
END_TEST

/* Along the channels of [1, 2, 1, 2]: position 0 holds (0, 1), position 1
 * holds (1, 3); softmax of (0, 1) is (0.26894142, 0.73105858) and of (1, 3)
 * (0.11920292, 0.88079708). */
START_TEST(test_channels)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {1, 2, 1, 2};
    nb_tensor *x = tst_make(ctx, NB_F64, 4, s, (double[]){0, 1, 1, 3});
    tst_assert_values(nb_softmax(ctx, x, 1), 4, s,
                      (double[]){0.26894142, 0.11920292, 0.73105858, 0.88079708}, 1e-8);
    tst_assert_values(nb_log_softmax(ctx, x, -3), 4, s,
                      (double[]){-1.31326169, -2.12692801, -0.31326169, -0.12692801}, 1e-8);
    /* Along a dimension of size 1, softmax is 1 and log_softmax 0. */
    tst_assert_values(nb_softmax(ctx, x, 2), 4, s, (double[]){1, 1, 1, 1}, 0);
    tst_assert_values(nb_log_softmax(ctx, x, 2), 4, s, (double[]){0, 0, 0, 0}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* d/dx_k of sum_j w_j softmax(x)_j = y_k (w_k - sum_j w_j y_j); for
 * log_softmax, w_k - y_k sum_j w_j.  With x = [1, 2, 3] and w = [1, 0, 0]:
 * softmax gives y_0 (1 - y_0), -y_0 y_1, -y_0 y_2; log_softmax 1 - y, -y_1,
 * -y_2 (y the softmax). */
START_TEST(test_grad)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {3};
    nb_tensor *x = tst_make(ctx, NB_F64, 1, s, (double[]){1, 2, 3});
    nb_tensor *w = tst_make(ctx, NB_F64, 1, s, (double[]){1, 0, 0});
    nb_requires_grad(x, true);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, nb_softmax(ctx, x, 0), w))), NB_OK);
    tst_assert_values(x->grad, 1, s, (double[]){0.08192507, -0.02203304, -0.05989202}, 1e-8);
    nb_graph_reset(ctx);
    nb_zero_grad(ctx);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, nb_log_softmax(ctx, x, 0), w))),
                     NB_OK);
    tst_assert_values(x->grad, 1, s, (double[]){0.90996943, -0.24472847, -0.66524096}, 1e-8);
    nb_ctx_free(ctx);
}
END_TEST

/* NaN and infinities along rows of 3, as PyTorch 1.13 gives them (printed
 * by torch once, float64): a NaN, or an infinity that leaves inf - inf,
 * makes its whole row NaN, forward and backward; -inf is a probability of
 * 0 (log -inf).  The last three rows are [1, 2, 3] under a dy that is not
 * finite.  Rows repeat past the threads' threshold: _i runs float32 and
 * float64 (_i % 2) on 1 and 2 threads (_i / 2). */
enum { SM_ROWS = 11, SM_REP = 3000 };

START_TEST(test_nonfinite)
{
    const double inf = INFINITY, nan = NAN;
    const double x[SM_ROWS * 3] = {1, 2, 3,    1, nan, 3,       1, inf, 3,   1, -inf, 3,
                                   -inf, -inf, -inf, inf, inf, 1, inf, -inf, 0, nan, -inf, inf,
                                   1, 2, 3,    1, 2, 3,         1, 2, 3};
    const double dy[SM_ROWS * 3] = {0.5, -1, 2, 0.5, -1, 2, 0.5, -1, 2, 0.5, -1, 2,
                                    0.5, -1, 2, 0.5, -1, 2, 0.5, -1, 2, 0.5, -1, 2,
                                    nan, 0, 0,  inf, 0, 0,  0, -inf, 1};
    const double nan3[3] = {nan, nan, nan};
    double want[4][SM_ROWS * 3]; /* softmax y, dx; log_softmax y, dx */
    for (int k = 0; k < 4; k++)
        for (int r = 0; r < SM_ROWS; r++)
            memcpy(want[k] + 3 * r, nan3, sizeof nan3);
    const double rows[4][2][3] = {
        {{0.09003057317038045, 0.2447284710547976, 0.6652409557748218},
         {0.11920292202211755, 0.0, 0.8807970779778823}},
        {{-0.05678847003696693, -0.5214597727496746, 0.5782482427866417},
         {-0.15749037810525973, -0.0, 0.15749037810526006}},
        {{-2.4076059644443806, -1.4076059644443804, -0.4076059644443804},
         {-2.1269280110429727, -inf, -0.1269280110429726}},
        {{0.36495414024442935, -1.3670927065821965, 1.0021385663377673},
         {0.3211956169668237, -1.0, 0.6788043830331765}},
    };
    const double dy_rows[3][3] = {{nan, nan, nan}, {nan, -inf, -inf}, {inf, nan, inf}};
    for (int k = 0; k < 4; k++) {
        memcpy(want[k], rows[k][0], sizeof rows[k][0]);
        memcpy(want[k] + 9, rows[k][1], sizeof rows[k][1]);
        for (int r = 8; r < 11; r++)
            memcpy(want[k] + 3 * r, k % 2 ? dy_rows[r - 8] : rows[k][0], sizeof rows[k][0]);
    }
    nb_dtype dt = _i % 2 ? NB_F64 : NB_F32;
    int old = nb_set_num_threads(1 + _i / 2);
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {SM_ROWS * SM_REP, 3};
    double *xv = malloc(sizeof *xv * SM_ROWS * SM_REP * 3), *rv = malloc(sizeof *rv * SM_ROWS * SM_REP * 3);
    for (int i = 0; i < SM_ROWS * SM_REP * 3; i++)
        xv[i] = x[i % (SM_ROWS * 3)], rv[i] = dy[i % (SM_ROWS * 3)];
    double tol = dt == NB_F32 ? 1e-6 : 1e-12;
    for (int take_log = 0; take_log < 2; take_log++) {
        nb_tensor *xt = tst_make(ctx, dt, 2, s, xv), *r = tst_make(ctx, dt, 2, s, rv);
        nb_requires_grad(xt, true);
        nb_tensor *y = take_log ? nb_log_softmax(ctx, xt, 1) : nb_softmax(ctx, xt, 1);
        ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, r))), NB_OK);
        const char *name = take_log ? "log_softmax" : "softmax";
        tst_assert_pattern(y, want[2 * take_log], SM_ROWS * 3, tol, name);
        tst_assert_pattern(xt->grad, want[2 * take_log + 1], SM_ROWS * 3, tol, name);
        nb_graph_reset(ctx);
    }
    free(xv);
    free(rv);
    nb_ctx_free(ctx);
    nb_set_num_threads(old);
}
END_TEST

START_TEST(test_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {2, 3, 4};
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, 3, s);
    ck_assert_ptr_null(nb_softmax(ctx, x, 3));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "softmax: dim 3 is out of range for input [2, 3, 4]: use 0 to 2, or -3 to -1");
    ck_assert_ptr_null(nb_log_softmax(ctx, x, -4));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "log_softmax: dim -4 is out of range for input [2, 3, 4]: use 0 to 2, or -3 to -1");
    nb_clear_error(ctx);
    ck_assert_ptr_null(nb_softmax(ctx, NULL, 0));
    tst_assert_error(ctx, NB_ERR_ARG, "softmax: input 0 is NULL");
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_softmax(void)
{
    Suite *s = suite_create("softmax");
    TCase *tc = tcase_create("softmax");
    tcase_add_loop_test(tc, test_values, 0, 2);
    tcase_add_test(tc, test_channels);
    tcase_add_test(tc, test_grad);
    tcase_add_loop_test(tc, test_nonfinite, 0, 4);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}
