/* test_upsample.c - upsample, nearest and bilinear. */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static void setup_small(tst_env *e, nb_rng *rng)
{
    tst_tensor(e, rng, 4, (int64_t[]){2, 3, 3, 4});
}

/* 5 rows and 7 columns: size (7, 5) stretches one and shrinks the other. */
static void setup_odd(tst_env *e, nb_rng *rng)
{
    tst_tensor(e, rng, 4, (int64_t[]){2, 2, 5, 7});
}

static const nb_upsample_opts nearest_x2 = {NB_UPSAMPLE_NEAREST, {0, 0}, {2, 2}, false};
static const nb_upsample_opts nearest_7x5 = {NB_UPSAMPLE_NEAREST, {7, 5}, {0, 0}, false};
static const nb_upsample_opts nearest_x15 = {NB_UPSAMPLE_NEAREST, {0, 0}, {1.5, 1.5}, false};
static const nb_upsample_opts bilinear_x2 = {NB_UPSAMPLE_BILINEAR, {0, 0}, {2, 2}, false};
static const nb_upsample_opts bilinear_x2_ac = {NB_UPSAMPLE_BILINEAR, {0, 0}, {2, 2}, true};
static const nb_upsample_opts bilinear_7x5 = {NB_UPSAMPLE_BILINEAR, {7, 5}, {0, 0}, false};
static const nb_upsample_opts bilinear_7x5_ac = {NB_UPSAMPLE_BILINEAR, {7, 5}, {0, 0}, true};
static const nb_upsample_opts bilinear_2x3 = {NB_UPSAMPLE_BILINEAR, {0, 0}, {2, 3}, false};
static const nb_upsample_opts nearest_2x3 = {NB_UPSAMPLE_NEAREST, {0, 0}, {2, 3}, false};
static const nb_upsample_opts bilinear_x15 = {NB_UPSAMPLE_BILINEAR, {0, 0}, {1.5, 1.5}, false};

#define FWD(name, opts)                                                       \
    static nb_tensor *fwd_##name(nb_ctx *ctx, tst_env *e)                     \
    {                                                                         \
        return nb_upsample(ctx, e->t[0], &opts);                              \
    }
FWD(nearest_x2, nearest_x2)
FWD(nearest_7x5, nearest_7x5)
FWD(nearest_x15, nearest_x15)
FWD(bilinear_x2, bilinear_x2)
FWD(bilinear_x2_ac, bilinear_x2_ac)
FWD(bilinear_7x5, bilinear_7x5)
FWD(bilinear_7x5_ac, bilinear_7x5_ac)
FWD(bilinear_2x3, bilinear_2x3)
FWD(nearest_2x3, nearest_2x3)
FWD(bilinear_x15, bilinear_x15)
#undef FWD

/* Upsampling an op's output: its gradient buffer is fresh, zeroed by the
 * upsample's backward itself. */
static nb_tensor *fwd_bilinear_step(nb_ctx *ctx, tst_env *e)
{
    return nb_upsample(ctx, nb_scale(ctx, e->t[0], 1.5), &bilinear_7x5);
}

const tst_case tst_cases_upsample[] = {
    {"upsample nearest x2 [2,3,3,4]", setup_small, fwd_nearest_x2},
    {"upsample nearest size [7,5] of [2,2,5,7]", setup_odd, fwd_nearest_7x5},
    {"upsample nearest x1.5 [2,2,5,7]", setup_odd, fwd_nearest_x15},
    {"upsample nearest scale_factor [2,3] [2,3,3,4]", setup_small, fwd_nearest_2x3},
    {"upsample bilinear x2 [2,3,3,4]", setup_small, fwd_bilinear_x2},
    {"upsample bilinear x2 align_corners [2,3,3,4]", setup_small, fwd_bilinear_x2_ac},
    {"upsample bilinear size [7,5] of [2,2,5,7]", setup_odd, fwd_bilinear_7x5},
    {"upsample bilinear size [7,5] align_corners of [2,2,5,7]", setup_odd, fwd_bilinear_7x5_ac},
    {"upsample bilinear scale_factor [2,3] [2,3,3,4]", setup_small, fwd_bilinear_2x3},
    {"upsample bilinear x1.5 [2,2,5,7]", setup_odd, fwd_bilinear_x15},
    {"upsample bilinear size [7,5] of 1.5 x", setup_odd, fwd_bilinear_step},
    {0},
};

/* ---- known values, from PyTorch's formulas (F.interpolate) -------------- */

/* Backpropagates sum(y * w) for w = 1, 2, ... over y. */
static void backward_ramp(nb_ctx *ctx, nb_tensor *y)
{
    ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
    nb_tensor *w = nb_tensor_new(ctx, y->dtype, y->ndim, y->shape);
    for (int64_t i = 0; i < w->numel; i++)
        nb_set(w, i, (double)(i + 1));
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, w))), NB_OK);
}

typedef struct known {
    const char *name;
    nb_upsample_opts o;
    int64_t in[4], out[4];
    double x[9], y[16], dx[9];
} known;

static const known knowns[] = {
    /* rows 2 -> 3 at scale 2/3: 0, 0, 1; columns 3 -> 5 at 3/5: 0, 0, 1, 1, 2 */
    {"nearest size [3, 5]", {NB_UPSAMPLE_NEAREST, {3, 5}, {0, 0}, false},
     {1, 1, 2, 3}, {1, 1, 3, 5}, {1, 2, 3, 4, 5, 6},
     {1, 1, 2, 2, 3, 1, 1, 2, 2, 3, 4, 4, 5, 5, 6}, {16, 24, 15, 23, 27, 15}},
    /* 5 -> 6 at scale 1 / 1.3, not 5 / 6: the last column reads 3, not 4 */
    {"nearest x1.3", {NB_UPSAMPLE_NEAREST, {0, 0}, {1.3, 1.3}, false},
     {1, 1, 1, 5}, {1, 1, 1, 6}, {1, 2, 4, 8, 16},
     {1, 1, 2, 4, 8, 8}, {3, 3, 4, 11, 0}},
    /* 7 -> 5 at 7/5: floor(0, 1.4, 2.8, 4.2, 5.6) */
    {"nearest size [1, 5] of 7", {NB_UPSAMPLE_NEAREST, {1, 5}, {0, 0}, false},
     {1, 1, 1, 7}, {1, 1, 1, 5}, {1, 2, 4, 8, 16, 32, 64},
     {1, 2, 4, 16, 32}, {1, 2, 3, 0, 4, 5, 0}},
    /* sources max(0, (d + 0.5) / 2 - 0.5): 0, 0.25, 0.75, 1.25 (clamped to 1) */
    {"bilinear x2", {NB_UPSAMPLE_BILINEAR, {0, 0}, {2, 2}, false},
     {1, 1, 2, 2}, {1, 1, 4, 4}, {1, 2, 3, 4},
     {1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4},
     {16.5, 23.5, 44.5, 51.5}},
    /* sources d (2 - 1) / (3 - 1): 0, 0.5, 1 */
    {"bilinear size [3, 3] align_corners", {NB_UPSAMPLE_BILINEAR, {3, 3}, {0, 0}, true},
     {1, 1, 2, 2}, {1, 1, 3, 3}, {1, 2, 3, 4},
     {1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4}, {5.25, 8.25, 14.25, 17.25}},
    /* one output row with align_corners reads row 0 alone */
    {"bilinear size [1, 4] align_corners", {NB_UPSAMPLE_BILINEAR, {1, 4}, {0, 0}, true},
     {1, 1, 2, 2}, {1, 1, 1, 4}, {1, 2, 3, 4},
     {1, 4.0 / 3, 5.0 / 3, 2}, {10.0 / 3, 20.0 / 3, 0, 0}},
    /* 3 -> 4 at scale 1 / 1.5: sources 0, 1 / 6, 5 / 6, 1.5 */
    {"bilinear x1.5", {NB_UPSAMPLE_BILINEAR, {0, 0}, {1.5, 1.5}, false},
     {1, 1, 3, 3}, {1, 1, 4, 4}, {1, 2, 4, 8, 16, 32, 64, 128, 256},
     {1, 1.5, 7.0 / 3, 11.0 / 3, 4.5, 6.75, 10.5, 16.5, 52.0 / 3, 26, 364.0 / 9, 572.0 / 9,
      164.0 / 3, 82, 1148.0 / 9, 1804.0 / 9},
     {6, 9.25, 7.75, 19, 22.25, 197.0 / 12, 19, 127.0 / 6, 91.0 / 6}},
    /* 3 -> 2 at 3 / 2: sources 0.25, 1.75 */
    {"bilinear size [2, 2] of 3x3", {NB_UPSAMPLE_BILINEAR, {2, 2}, {0, 0}, false},
     {1, 1, 3, 3}, {1, 1, 2, 2}, {1, 2, 4, 8, 16, 32, 64, 128, 256},
     {3.4375, 9.625, 62.5, 175}, {0.5625, 0.5625, 1.125, 0.75, 0.625, 1.125, 1.6875, 1.3125, 2.25}},
};

/* _i: a case (_i / 2) in float64 or float32 (_i % 2). */
START_TEST(test_known_values)
{
    const known *k = &knowns[_i / 2];
    nb_dtype dt = _i % 2 ? NB_F32 : NB_F64;
    double tol = dt == NB_F32 ? 1e-4 : 1e-12;
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *x = tst_make(ctx, dt, 4, k->in, k->x);
    nb_requires_grad(x, true);
    nb_tensor *y = nb_upsample(ctx, x, &k->o);
    ck_assert_msg(y != NULL, "%s: %s", k->name, nb_errmsg(ctx));
    tst_assert_values(y, 4, k->out, k->y, tol);
    backward_ramp(ctx, y);
    tst_assert_values(x->grad, 4, k->in, k->dx, tol);
    nb_ctx_free(ctx);
}
END_TEST

/* The same size is a copy, whatever scale_factor says (PyTorch's shortcut):
 * 3 x 1.2 rounds down to 3. */
START_TEST(test_same_size_copies)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {1, 1, 3, 3};
    double v[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    nb_tensor *x = tst_make(ctx, NB_F64, 4, s, v);
    nb_upsample_opts o = {NB_UPSAMPLE_BILINEAR, {0, 0}, {1.2, 1.2}, false};
    tst_assert_values(nb_upsample(ctx, x, &o), 4, s, v, 0);
    o.mode = NB_UPSAMPLE_NEAREST;
    tst_assert_values(nb_upsample(ctx, x, &o), 4, s, v, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* Planes are independent: the second channel of the batch is the first's
 * values times 10, and so is its output. */
START_TEST(test_planes)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {2, 1, 2, 2}, so[] = {2, 1, 3, 3};
    nb_tensor *x = tst_make(ctx, NB_F64, 4, s, (double[]){1, 2, 3, 4, 10, 20, 30, 40});
    nb_upsample_opts o = {NB_UPSAMPLE_BILINEAR, {3, 3}, {0, 0}, true};
    tst_assert_values(nb_upsample(ctx, x, &o), 4, so,
                      (double[]){1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4,
                                 10, 15, 20, 20, 25, 30, 30, 35, 40}, 1e-12);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_no_grad_records_nothing)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {1, 1, 2, 2};
    nb_tensor *x = tst_make(ctx, NB_F64, 4, s, (double[]){1, 2, 3, 4});
    ck_assert_ptr_nonnull(nb_upsample(ctx, x, &nearest_x2));
    ck_assert_int_eq(nb_graph_size(ctx), 0);
    nb_requires_grad(x, true);
    ck_assert_ptr_nonnull(nb_upsample(ctx, x, &bilinear_x2));
    ck_assert_int_eq(nb_graph_size(ctx), 1);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s2[] = {3, 4}, s4[] = {1, 2, 4, 4};
    nb_tensor *x2 = nb_tensor_new(ctx, NB_F32, 2, s2);
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, 4, s4);

    ck_assert_ptr_null(nb_upsample(ctx, x2, &nearest_x2));
    tst_assert_error(ctx, NB_ERR_ARG, "upsample: input [3, 4] must be [N, C, H, W]");
    ck_assert_ptr_null(nb_upsample(ctx, x, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "upsample: options are NULL (size or scale_factor is required)");
    nb_upsample_opts o = {NB_UPSAMPLE_NEAREST, {0, 0}, {0, 0}, false};
    ck_assert_ptr_null(nb_upsample(ctx, x, &o));
    tst_assert_error(ctx, NB_ERR_ARG, "upsample: size or scale_factor is required");
    o = (nb_upsample_opts){NB_UPSAMPLE_NEAREST, {8, 8}, {2, 2}, false};
    ck_assert_ptr_null(nb_upsample(ctx, x, &o));
    tst_assert_error(ctx, NB_ERR_ARG, "upsample: both size and scale_factor are given: give one");
    o = (nb_upsample_opts){NB_UPSAMPLE_NEAREST, {0, 0}, {2, 2}, true};
    ck_assert_ptr_null(nb_upsample(ctx, x, &o));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "upsample: align_corners is for bilinear mode only, not nearest");
    o = (nb_upsample_opts){(nb_upsample_mode)7, {0, 0}, {2, 2}, false};
    ck_assert_ptr_null(nb_upsample(ctx, x, &o));
    tst_assert_error(ctx, NB_ERR_ARG, "upsample: mode 7 is neither nearest nor bilinear");
    o = (nb_upsample_opts){NB_UPSAMPLE_BILINEAR, {0, 3}, {0, 0}, false};
    ck_assert_ptr_null(nb_upsample(ctx, x, &o));
    tst_assert_error(ctx, NB_ERR_ARG, "upsample: size [0, 3] must be at least 1");
    o = (nb_upsample_opts){NB_UPSAMPLE_BILINEAR, {0, 0}, {2, -1}, false};
    ck_assert_ptr_null(nb_upsample(ctx, x, &o));
    tst_assert_error(ctx, NB_ERR_ARG, "upsample: scale_factor [2, -1] must be positive and finite");
    o = (nb_upsample_opts){NB_UPSAMPLE_BILINEAR, {0, 0}, {NAN, 1}, false};
    ck_assert_ptr_null(nb_upsample(ctx, x, &o));
    tst_assert_error(ctx, NB_ERR_ARG, "upsample: scale_factor [nan, 1] must be positive and finite");
    o = (nb_upsample_opts){NB_UPSAMPLE_NEAREST, {0, 0}, {1, 0.2}, false};
    ck_assert_ptr_null(nb_upsample(ctx, x, &o));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "upsample: scale_factor [1, 0.2] makes an output of 4x0 pixels from input "
                     "[1, 2, 4, 4]");
    o = (nb_upsample_opts){NB_UPSAMPLE_NEAREST, {0, 0}, {1e9, 1}, false};
    ck_assert_ptr_null(nb_upsample(ctx, x, &o));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "upsample: scale_factor [1e+09, 1] makes an output over 2147483647 pixels a "
                     "side from input [1, 2, 4, 4]");

    /* A NULL from a failed op keeps that op's message down the chain. */
    nb_clear_error(ctx);
    ck_assert_ptr_null(nb_upsample(ctx, nb_upsample(ctx, x2, &nearest_x2), &nearest_x2));
    tst_assert_error(ctx, NB_ERR_ARG, "upsample: input [3, 4] must be [N, C, H, W]");
    nb_clear_error(ctx);
    ck_assert_ptr_null(nb_upsample(ctx, NULL, &nearest_x2));
    tst_assert_error(ctx, NB_ERR_ARG, "upsample: input 0 is NULL");
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_upsample(void)
{
    Suite *s = suite_create("upsample");
    TCase *tc = tcase_create("upsample");
    tcase_add_loop_test(tc, test_known_values, 0, 2 * (int)(sizeof knowns / sizeof *knowns));
    tcase_add_test(tc, test_same_size_copies);
    tcase_add_test(tc, test_planes);
    tcase_add_test(tc, test_no_grad_records_nothing);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}
