/* test_norm.c - layer norm over the last 1, 2 and 3 dimensions and group
 * norm in 1, 2 and C groups over [N, C], [N, C, L] and [N, C, H, W], with
 * and without affine parameters; known values from PyTorch's formulas; the
 * ops' messages; and the layers in a model file. */
#include "harness.h"

#include <string.h>

/* x, then weight and bias shaped as the normalised dimensions (affine
 * 2: both, 1: weight only, 0: neither); e->a holds ndims or num_groups. */
static void setup_norm(tst_env *e, nb_rng *rng, int ndim, const int64_t *shape, int64_t *pshape,
                       int pdims, int affine, int arg)
{
    e->a = arg;
    tst_tensor_range(e, rng, ndim, shape, -2.0, 3.0);
    if (affine >= 1)
        tst_tensor_range(e, rng, pdims, pshape, 0.5, 1.5);
    if (affine >= 2)
        tst_tensor(e, rng, pdims, pshape);
}

/* layer_norm over the last ndims dimensions of shape */
static void setup_ln(tst_env *e, nb_rng *rng, int ndim, const int64_t *shape, int ndims,
                     int affine)
{
    setup_norm(e, rng, ndim, shape, (int64_t *)shape + ndim - ndims, ndims, affine, ndims);
}

/* group_norm in `groups` groups: weight and bias [C] */
static void setup_gn(tst_env *e, nb_rng *rng, int ndim, const int64_t *shape, int groups,
                     int affine)
{
    setup_norm(e, rng, ndim, shape, (int64_t[]){shape[1]}, 1, affine, groups);
}

static void ln_1(tst_env *e, nb_rng *rng) { setup_ln(e, rng, 2, (int64_t[]){4, 5}, 1, 2); }
static void ln_1_3d(tst_env *e, nb_rng *rng) { setup_ln(e, rng, 3, (int64_t[]){2, 3, 4}, 1, 2); }
static void ln_1_plain(tst_env *e, nb_rng *rng) { setup_ln(e, rng, 3, (int64_t[]){2, 3, 4}, 1, 0); }
static void ln_2(tst_env *e, nb_rng *rng) { setup_ln(e, rng, 3, (int64_t[]){3, 4, 5}, 2, 2); }
static void ln_2_weight(tst_env *e, nb_rng *rng) { setup_ln(e, rng, 3, (int64_t[]){3, 4, 5}, 2, 1); }
static void ln_3(tst_env *e, nb_rng *rng) { setup_ln(e, rng, 4, (int64_t[]){2, 3, 4, 5}, 3, 2); }
static void ln_3_plain(tst_env *e, nb_rng *rng) { setup_ln(e, rng, 4, (int64_t[]){2, 3, 4, 5}, 3, 0); }
static void ln_2_of_4d(tst_env *e, nb_rng *rng) { setup_ln(e, rng, 4, (int64_t[]){2, 3, 4, 5}, 2, 2); }

static void gn_1(tst_env *e, nb_rng *rng) { setup_gn(e, rng, 4, (int64_t[]){2, 6, 3, 4}, 1, 2); }
static void gn_2(tst_env *e, nb_rng *rng) { setup_gn(e, rng, 4, (int64_t[]){2, 6, 3, 4}, 2, 2); }
static void gn_c(tst_env *e, nb_rng *rng) { setup_gn(e, rng, 4, (int64_t[]){2, 6, 3, 4}, 6, 2); }
static void gn_2_plain(tst_env *e, nb_rng *rng) { setup_gn(e, rng, 4, (int64_t[]){2, 6, 3, 4}, 2, 0); }
static void gn_1_ncl(tst_env *e, nb_rng *rng) { setup_gn(e, rng, 3, (int64_t[]){3, 4, 5}, 1, 2); }
static void gn_2_ncl(tst_env *e, nb_rng *rng) { setup_gn(e, rng, 3, (int64_t[]){3, 4, 5}, 2, 2); }
static void gn_c_ncl(tst_env *e, nb_rng *rng) { setup_gn(e, rng, 3, (int64_t[]){3, 4, 5}, 4, 2); }
static void gn_2_ncl_weight(tst_env *e, nb_rng *rng) { setup_gn(e, rng, 3, (int64_t[]){3, 4, 5}, 2, 1); }
static void gn_2_nc(tst_env *e, nb_rng *rng) { setup_gn(e, rng, 2, (int64_t[]){3, 8}, 2, 2); }

static nb_tensor *param(tst_env *e, int i) { return e->n > i ? e->t[i] : NULL; }

static nb_tensor *fwd_ln(nb_ctx *ctx, tst_env *e)
{
    return nb_layer_norm(ctx, e->t[0], (int)e->a, param(e, 1), param(e, 2), 1e-5);
}

static nb_tensor *fwd_gn(nb_ctx *ctx, tst_env *e)
{
    return nb_group_norm(ctx, e->t[0], (int)e->a, param(e, 1), param(e, 2), 1e-5);
}

/* Eval mode: the same op (no running statistics). */
static nb_tensor *fwd_gn_eval(nb_ctx *ctx, tst_env *e)
{
    bool was = nb_set_training(ctx, false);
    nb_tensor *y = fwd_gn(ctx, e);
    nb_set_training(ctx, was);
    return y;
}

const tst_case tst_cases_norm[] = {
    {"layer_norm [4,5] over 1 affine", ln_1, fwd_ln},
    {"layer_norm [2,3,4] over 1 affine", ln_1_3d, fwd_ln},
    {"layer_norm [2,3,4] over 1 no affine", ln_1_plain, fwd_ln},
    {"layer_norm [3,4,5] over 2 affine", ln_2, fwd_ln},
    {"layer_norm [3,4,5] over 2 weight only", ln_2_weight, fwd_ln},
    {"layer_norm [2,3,4,5] over 3 affine", ln_3, fwd_ln},
    {"layer_norm [2,3,4,5] over 3 no affine", ln_3_plain, fwd_ln},
    {"layer_norm [2,3,4,5] over 2 affine", ln_2_of_4d, fwd_ln},
    {"group_norm [2,6,3,4] 1 group affine", gn_1, fwd_gn},
    {"group_norm [2,6,3,4] 2 groups affine", gn_2, fwd_gn},
    {"group_norm [2,6,3,4] 6 groups affine", gn_c, fwd_gn},
    {"group_norm [2,6,3,4] 2 groups no affine", gn_2_plain, fwd_gn},
    {"group_norm [2,6,3,4] 2 groups eval", gn_2, fwd_gn_eval},
    {"group_norm [3,4,5] 1 group affine", gn_1_ncl, fwd_gn},
    {"group_norm [3,4,5] 2 groups affine", gn_2_ncl, fwd_gn},
    {"group_norm [3,4,5] 4 groups affine", gn_c_ncl, fwd_gn},
    {"group_norm [3,4,5] 2 groups weight only", gn_2_ncl_weight, fwd_gn},
    {"group_norm [3,8] 2 groups affine", gn_2_nc, fwd_gn},
    {0},
};

/* x [2, 3]: row 0 is 1 2 4 (mean 7/3, biased var 14/9), row 1 is 0 0 3
 * (mean 1, var 2); weight [2, 0.5, -1], bias [1, -1, 0.25], eps 1e-5:
 * y = (x - mean) / sqrt(var + 1e-5) w + b.  The gradients of sum(y r),
 * r = 1..6, and y, from torch.nn.functional.layer_norm in float64. */
START_TEST(test_layer_norm_values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    double tol = _i ? 1e-5 : 1e-11;
    int64_t s[] = {2, 3}, c[] = {3};
    nb_tensor *x = tst_make(ctx, dt, 2, s, (double[]){1, 2, 4, 0, 0, 3});
    nb_tensor *w = tst_make(ctx, dt, 1, c, (double[]){2, 0.5, -1});
    nb_tensor *b = tst_make(ctx, dt, 1, c, (double[]){1, -1, 0.25});
    nb_tensor *r = tst_make(ctx, dt, 2, s, (double[]){1, 2, 3, 4, 5, 6});
    nb_requires_grad(x, true);
    nb_requires_grad(w, true);
    nb_requires_grad(b, true);
    nb_tensor *y = nb_layer_norm(ctx, x, 1, w, b, 1e-5);
    /* -4/3 / sqrt(14/9 + 1e-5) 2 + 1 = -1.138083062901, ... */
    tst_assert_values(y, 2, s,
                      (double[]){-1.1380830629005958, -1.1336301914312874, -1.0863019143128718,
                                 -0.41421002685244734, -1.3535525067131118, -1.1642100268524473},
                      tol);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, r))), NB_OK);
    tst_assert_values(x->grad, 2, s,
                      (double[]){-0.22906854696963785, 0.34362343755145197, -0.114554890581815,
                                 1.944552045074826, -1.9445255287694043, -2.6516305422052966e-05},
                      tol * 10);
    tst_assert_values(w->grad, 1, c,
                      (double[]){-3.8974615851551926, -4.070045832856268, 12.4941659040533},
                      tol * 10);
    tst_assert_values(b->grad, 1, c, (double[]){5, 7, 9}, tol);
    nb_ctx_free(ctx);
}
END_TEST

/* x [1, 4, 2] in 2 groups: channels 0-1 are 1 3 2 6 (mean 3, var 3.5),
 * channels 2-3 are 0 1 -1 4 (mean 1, var 3.5); weight [1, 2, 0.5, -1],
 * bias [0, 1, -1, 0.5], eps 1e-5; r = 1..8; values from
 * torch.nn.functional.group_norm in float64. */
START_TEST(test_group_norm_values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    double tol = _i ? 1e-5 : 1e-11;
    int64_t s[] = {1, 4, 2}, c[] = {4};
    nb_tensor *x = tst_make(ctx, dt, 3, s, (double[]){1, 3, 2, 6, 0, 1, -1, 4});
    nb_tensor *w = tst_make(ctx, dt, 1, c, (double[]){1, 2, 0.5, -1});
    nb_tensor *b = tst_make(ctx, dt, 1, c, (double[]){0, 1, -1, 0.5});
    nb_tensor *r = tst_make(ctx, dt, 3, s, (double[]){1, 2, 3, 4, 5, 6, 7, 8});
    nb_requires_grad(x, true);
    nb_requires_grad(w, true);
    nb_requires_grad(b, true);
    nb_tensor *y = nb_group_norm(ctx, x, 2, w, b, 1e-5);
    tst_assert_values(y, 3, s,
                      (double[]){-1.0690434404458737, 0, -0.06904344044587374, 4.207130321337621,
                                 -1.2672608601114683, -1.0, 1.5690434404458733,
                                 -1.1035651606688104},
                      tol);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, r))), NB_OK);
    tst_assert_values(x->grad, 3, s,
                      (double[]){-0.515435149530521, -1.202673870501608, 1.546293230987151,
                                 0.1718157890449773, 2.128543213745401, 2.873054246198285,
                                 -3.4266633007139133, -1.5749341592297728},
                      tol * 10);
    tst_assert_values(w->grad, 1, c,
                      (double[]){-1.0690434404458735, 4.810695482006431, -2.6726086011146837,
                                 5.345217202229367},
                      tol * 10);
    tst_assert_values(b->grad, 1, c, (double[]){3, 7, 11, 15}, tol);
    nb_ctx_free(ctx);
}
END_TEST

/* Instance norm (num_groups = C) and layer norm over [C, L] (num_groups 1)
 * against layer_norm on the same values: x [2, 2, 3]. */
START_TEST(test_group_norm_special)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {2, 2, 3};
    const double v[] = {1, 2, 4, 0, 0, 3, -1, 5, 2, 7, 7, 1};
    nb_tensor *x = tst_make(ctx, NB_F64, 3, s, v);
    nb_tensor *inst = nb_group_norm(ctx, x, 2, NULL, NULL, 1e-5);
    nb_tensor *rows = nb_layer_norm(ctx, x, 1, NULL, NULL, 1e-5);
    nb_tensor *one = nb_group_norm(ctx, x, 1, NULL, NULL, 1e-5);
    nb_tensor *both = nb_layer_norm(ctx, x, 2, NULL, NULL, 1e-5);
    ck_assert(inst && rows && one && both);
    for (int i = 0; i < 12; i++) {
        ck_assert_double_eq(nb_get(inst, i), nb_get(rows, i));
        ck_assert_double_eq(nb_get(one, i), nb_get(both, i));
    }
    /* row [1, 2, 4]: -4/3 / sqrt(14/9 + 1e-5) */
    ck_assert_double_eq_tol(nb_get(inst, 0), -1.0690415314502979, 1e-12);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, 3, (int64_t[]){2, 6, 5});
    nb_tensor *x64 = nb_tensor_new(ctx, NB_F64, 3, (int64_t[]){2, 6, 5});
    nb_tensor *w5 = nb_tensor_new(ctx, NB_F32, 1, (int64_t[]){5});
    nb_tensor *w4 = nb_tensor_new(ctx, NB_F32, 1, (int64_t[]){4});
    nb_tensor *w65 = nb_tensor_new(ctx, NB_F32, 2, (int64_t[]){6, 5});
    nb_tensor *w6 = nb_tensor_new(ctx, NB_F32, 1, (int64_t[]){6});

    ck_assert_ptr_null(nb_layer_norm(ctx, x, 1, w4, NULL, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "layer_norm: weight [4] does not match input [2, 6, 5]: expected [5]");
    ck_assert_ptr_null(nb_layer_norm(ctx, x, 2, w65, w5, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "layer_norm: bias [5] does not match input [2, 6, 5]: expected [6, 5]");
    ck_assert_ptr_null(nb_layer_norm(ctx, x, 3, NULL, NULL, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "layer_norm: input [2, 6, 5] has too few dimensions to normalise the last 3 "
                     "besides the batch's");
    ck_assert_ptr_null(nb_layer_norm(ctx, x, 0, NULL, NULL, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG, "layer_norm: normalises over 0 dimensions: expected 1 to 7");
    ck_assert_ptr_null(nb_layer_norm(ctx, x64, 1, w5, NULL, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG, "layer_norm: weight is f32 but input is f64");
    ck_assert_ptr_null(nb_layer_norm(ctx, x, 1, w5, NULL, -1));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "layer_norm: eps -1 must be finite and at least 0 (input [2, 6, 5])");
    nb_clear_error(ctx); /* a NULL input otherwise passes the last error on */
    ck_assert_ptr_null(nb_layer_norm(ctx, NULL, 1, NULL, NULL, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG, "layer_norm: input 0 is NULL");

    ck_assert_ptr_null(nb_group_norm(ctx, x, 4, NULL, NULL, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "group_norm: num_groups 4 does not divide the 6 channels of input [2, 6, 5]");
    ck_assert_ptr_null(nb_group_norm(ctx, x, 0, NULL, NULL, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "group_norm: num_groups 0 does not divide the 6 channels of input [2, 6, 5]");
    ck_assert_ptr_null(nb_group_norm(ctx, x, 3, w6, w5, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "group_norm: bias [5] does not match input [2, 6, 5]: expected [6]");
    ck_assert_ptr_null(nb_group_norm(ctx, w6, 3, NULL, NULL, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG, "group_norm: input [6] must be [N, C, *]");
    ck_assert_ptr_null(nb_group_norm(ctx, x64, 3, NULL, w6, 1e-5));
    tst_assert_error(ctx, NB_ERR_ARG, "group_norm: bias is f32 but input is f64");
    nb_ctx_free(ctx);
}
END_TEST

/* layer_norm over normalized_shape (an int, a list, or the whole example)
 * and group_norm, read from a file: PyTorch's parameters and their
 * initial values, the forward the op's, and the statistics in the memory
 * estimate's keeps. */
START_TEST(test_model_layers)
{
    nb_ctx *ctx = nb_ctx_new();
    static const char json[] =
        "{\"input\": [4, 3, 5], \"layers\": ["
        "{\"type\": \"group_norm\", \"num_groups\": 2, \"num_channels\": 4},"
        "{\"type\": \"layer_norm\", \"normalized_shape\": 5},"
        "{\"type\": \"layer_norm\", \"normalized_shape\": [3, 5], \"bias\": false},"
        "{\"type\": \"layer_norm\", \"elementwise_affine\": false},"
        "{\"type\": \"group_norm\", \"num_groups\": 4, \"affine\": false, \"eps\": 0.001},"
        "{\"type\": \"layer_norm\", \"eps\": 0.01}]}";
    nb_model *m = nb_model_parse(ctx, json, sizeof json - 1, "norms", NB_F64);
    ck_assert_msg(m != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_model_num_params(m, true), 4 + 4 + 5 + 5 + 15 + 60 + 60);
    nb_tensor *t = nb_model_find(m, "0.weight");
    ck_assert(t && t->ndim == 1 && t->shape[0] == 4 && nb_get(t, 3) == 1);
    t = nb_model_find(m, "0.bias");
    ck_assert(t && nb_get(t, 0) == 0);
    t = nb_model_find(m, "2.weight");
    ck_assert(t && t->ndim == 2 && t->shape[0] == 3 && t->shape[1] == 5);
    ck_assert_ptr_null(nb_model_find(m, "2.bias"));
    ck_assert_ptr_null(nb_model_find(m, "3.weight"));
    ck_assert_ptr_null(nb_model_find(m, "4.weight"));
    t = nb_model_find(m, "5.weight");
    ck_assert(t && t->ndim == 3 && t->shape[0] == 4 && t->shape[2] == 5);

    nb_tensor *x = nb_tensor_new(ctx, NB_F64, 4, (int64_t[]){2, 4, 3, 5});
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_fill_uniform(x, &rng, -2, 3);
    nb_tensor *y = nb_model_forward(ctx, m, x);
    ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
    nb_tensor *z = nb_group_norm(ctx, x, 2, NULL, NULL, 1e-5);
    z = nb_layer_norm(ctx, z, 1, NULL, NULL, 1e-5);
    z = nb_layer_norm(ctx, z, 2, NULL, NULL, 1e-5);
    z = nb_layer_norm(ctx, z, 3, NULL, NULL, 1e-5);
    z = nb_group_norm(ctx, z, 4, NULL, NULL, 1e-3);
    z = nb_layer_norm(ctx, z, 3, NULL, NULL, 1e-2);
    for (int64_t i = 0; i < y->numel; i++)
        ck_assert_double_eq(nb_get(y, i), nb_get(z, i));

    /* Beyond six relus': 2 + 12 + 4 + 1 + 4 + 1 rows per example, a mean and
     * rstd each */
    nb_memory_report with, without;
    ck_assert_int_eq(nb_model_memory(m, 1, NULL, &with), NB_OK);
    nb_model_free(m);
    static const char relus[] = "{\"input\": [4, 3, 5], \"layers\": [{\"type\": \"relu\"},"
        "{\"type\": \"relu\"}, {\"type\": \"relu\"}, {\"type\": \"relu\"},"
        "{\"type\": \"relu\"}, {\"type\": \"relu\"}]}";
    m = nb_model_parse(ctx, relus, sizeof relus - 1, "relus", NB_F64);
    ck_assert_msg(m != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_model_memory(m, 1, NULL, &without), NB_OK);
    ck_assert_uint_eq(with.activations - without.activations,
                      24 * 2 * sizeof(double));
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_norm(void)
{
    Suite *s = suite_create("norm");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_layer_norm_values, 0, 2);
    tcase_add_loop_test(tc, test_group_norm_values, 0, 2);
    tcase_add_test(tc, test_group_norm_special);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_model_layers);
    suite_add_tcase(s, tc);
    return s;
}
