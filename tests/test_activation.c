/* test_activation.c - relu, leaky_relu, elu, relu6, sigmoid, tanh. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void setup_x(tst_env *e, nb_rng *rng)
{
    /* Up to +-7 so relu6 sees both of its kinks; tst_tensor keeps values
     * 0.01 from 0, and no value lands within 0.01 of 6 with this seed. */
    int64_t shape[] = {2, 3, 4, 5};
    nb_tensor *x = tst_tensor(e, rng, 4, shape);
    for (int64_t i = 0; i < x->numel; i++)
        nb_set(x, i, 7.0 * nb_get(x, i));
}

static nb_tensor *fwd_relu(nb_ctx *ctx, tst_env *e) { return nb_relu(ctx, e->t[0]); }
static nb_tensor *fwd_leaky(nb_ctx *ctx, tst_env *e) { return nb_leaky_relu(ctx, e->t[0], 0.1); }
static nb_tensor *fwd_elu(nb_ctx *ctx, tst_env *e) { return nb_elu(ctx, e->t[0], 1.3); }
static nb_tensor *fwd_relu6(nb_ctx *ctx, tst_env *e) { return nb_relu6(ctx, e->t[0]); }
static nb_tensor *fwd_sigmoid(nb_ctx *ctx, tst_env *e) { return nb_sigmoid(ctx, e->t[0]); }
static nb_tensor *fwd_tanh(nb_ctx *ctx, tst_env *e) { return nb_tanh(ctx, e->t[0]); }
/* Two uses of one tensor: the gradients must add up. */
static nb_tensor *fwd_reuse(nb_ctx *ctx, tst_env *e)
{
    return nb_add(ctx, nb_tanh(ctx, e->t[0]), nb_sigmoid(ctx, e->t[0]));
}

/* relu of an op's output: its gradient is stored fresh (not zeroed, then
 * added to), and tanh's share is added after it. */
static nb_tensor *fwd_relu_step(nb_ctx *ctx, tst_env *e)
{
    nb_tensor *t = nb_scale(ctx, e->t[0], 0.5);
    return nb_add(ctx, nb_tanh(ctx, t), nb_relu(ctx, t));
}

const tst_case tst_cases_activation[] = {
    {"relu", setup_x, fwd_relu},
    {"leaky_relu 0.1", setup_x, fwd_leaky},
    {"elu 1.3", setup_x, fwd_elu},
    {"relu6", setup_x, fwd_relu6},
    {"sigmoid", setup_x, fwd_sigmoid},
    {"tanh", setup_x, fwd_tanh},
    {"tanh(x) + sigmoid(x)", setup_x, fwd_reuse},
    {"tanh(x/2) + relu(x/2)", setup_x, fwd_relu_step},
    {0},
};

/* Known values, by hand. */
START_TEST(test_values)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {6};
    nb_tensor *x = tst_make(ctx, _i ? NB_F32 : NB_F64, 1, s,
                            (double[]){-2, -0.5, 0, 0.5, 3, 8});
    double tol = _i ? 1e-6 : 1e-12;
    tst_assert_values(nb_relu(ctx, x), 1, s, (double[]){0, 0, 0, 0.5, 3, 8}, tol);
    tst_assert_values(nb_leaky_relu(ctx, x, 0.01), 1, s,
                      (double[]){-0.02, -0.005, 0, 0.5, 3, 8}, tol);
    tst_assert_values(nb_relu6(ctx, x), 1, s, (double[]){0, 0, 0, 0.5, 3, 6}, tol);
    tst_assert_values(nb_elu(ctx, x, 1.0), 1, s,
                      (double[]){exp(-2) - 1, exp(-0.5) - 1, 0, 0.5, 3, 8}, tol);
    double sig[6], th[6];
    for (int i = 0; i < 6; i++) {
        double v = nb_get(x, i);
        sig[i] = 1 / (1 + exp(-v));
        th[i] = tanh(v);
    }
    tst_assert_values(nb_sigmoid(ctx, x), 1, s, sig, tol);
    tst_assert_values(nb_tanh(ctx, x), 1, s, th, tol);
    nb_ctx_free(ctx);
}
END_TEST

/* sigmoid must not overflow for large |x|. */
START_TEST(test_sigmoid_extremes)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {2};
    nb_tensor *x = tst_make(ctx, NB_F32, 1, s, (double[]){-1000, 1000});
    tst_assert_values(nb_sigmoid(ctx, x), 1, s, (double[]){0, 1}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* NaN and infinities, forward and backward, as PyTorch 1.13's CPU kernels
 * give them (printed by torch once; the finite values by their formulas):
 * the first seven inputs with dy = 1, the last seven finite with a dy that
 * is not.  PyTorch's scalar kernel (a tensor's last few elements) passes
 * dy for a NaN in relu6 and elu, its vectorised kernel (all the others)
 * gives 0 and NaN: these are the vectorised kernel's.  The values repeat
 * past the threads' threshold, so _i runs float32 and float64 (_i % 2) on
 * 1 and 2 threads (_i / 2 % 2), with each kernel variant (_i / 4). */
enum { NF = 14, NF_REP = 3000 };

static double sg(double v) { return 1 / (1 + exp(-v)); }
static double dsg(double v) { return sg(v) * (1 - sg(v)); }
static double dth(double v) { return 1 - tanh(v) * tanh(v); }

typedef struct nf_act {
    const char *name;
    nb_tensor *(*fwd)(nb_ctx *ctx, nb_tensor *x);
} nf_act;

static nb_tensor *nf_relu(nb_ctx *ctx, nb_tensor *x) { return nb_relu(ctx, x); }
/* relu of an op's output stores its gradient fresh */
static nb_tensor *nf_relu_fresh(nb_ctx *ctx, nb_tensor *x)
{
    return nb_relu(ctx, nb_scale(ctx, x, 1.0));
}
static nb_tensor *nf_relu6(nb_ctx *ctx, nb_tensor *x) { return nb_relu6(ctx, x); }
static nb_tensor *nf_leaky(nb_ctx *ctx, nb_tensor *x) { return nb_leaky_relu(ctx, x, 0.1); }
static nb_tensor *nf_elu(nb_ctx *ctx, nb_tensor *x) { return nb_elu(ctx, x, 1.3); }
static nb_tensor *nf_sigmoid(nb_ctx *ctx, nb_tensor *x) { return nb_sigmoid(ctx, x); }
static nb_tensor *nf_tanh(nb_ctx *ctx, nb_tensor *x) { return nb_tanh(ctx, x); }

START_TEST(test_nonfinite)
{
    const double inf = INFINITY, nan = NAN;
    const double x[NF] = {nan, inf, -inf, -2, 0, 3, 7, -1, -1, 8, 1, 1, 1, 0};
    const double dy[NF] = {1, 1, 1, 1, 1, 1, 1, nan, inf, -inf, nan, inf, -inf, nan};
    const double e2 = exp(-2.0), e1 = exp(-1.0);
    const nf_act acts[] = {{"relu", nf_relu},       {"relu of an op", nf_relu_fresh},
                           {"relu6", nf_relu6},     {"leaky_relu 0.1", nf_leaky},
                           {"elu 1.3", nf_elu},     {"sigmoid", nf_sigmoid},
                           {"tanh", nf_tanh}};
    const double want[][2][NF] = {
        {{nan, inf, 0, 0, 0, 3, 7, 0, 0, 8, 1, 1, 1, 0},
         {1, 1, 0, 0, 0, 1, 1, 0, 0, -inf, nan, inf, -inf, 0}},
        {{nan, inf, 0, 0, 0, 3, 7, 0, 0, 8, 1, 1, 1, 0},
         {1, 1, 0, 0, 0, 1, 1, 0, 0, -inf, nan, inf, -inf, 0}},
        {{nan, 6, 0, 0, 0, 3, 6, 0, 0, 6, 1, 1, 1, 0},
         {0, 0, 0, 0, 0, 1, 0, 0, 0, 0, nan, inf, -inf, 0}},
        {{nan, inf, -inf, -0.2, 0, 3, 7, -0.1, -0.1, 8, 1, 1, 1, 0},
         {0.1, 1, 0.1, 0.1, 0.1, 1, 1, nan, inf, -inf, nan, inf, -inf, nan}},
        {{nan, inf, -1.3, 1.3 * (e2 - 1), 0, 3, 7, 1.3 * (e1 - 1), 1.3 * (e1 - 1), 8, 1, 1, 1, 0},
         {nan, 1, 0, 1.3 * e2, 1.3, 1, 1, nan, inf, -inf, nan, inf, -inf, nan}},
        {{nan, 1, 0, sg(-2), 0.5, sg(3), sg(7), sg(-1), sg(-1), sg(8), sg(1), sg(1), sg(1), 0.5},
         {nan, 0, 0, dsg(-2), 0.25, dsg(3), dsg(7), nan, inf, -inf, nan, inf, -inf, nan}},
        {{nan, 1, -1, tanh(-2), 0, tanh(3), tanh(7), tanh(-1), tanh(-1), tanh(8), tanh(1),
          tanh(1), tanh(1), 0},
         {nan, 0, 0, dth(-2), 1, dth(3), dth(7), nan, inf, -inf, nan, inf, -inf, nan}},
    };
    nb_dtype dt = _i % 2 ? NB_F64 : NB_F32;
    const char *old_kernels = nb_cpu_kernels(), *kernels = tst_kernels[_i / 4];
    if (!tst_use_kernels(kernels, "activations against PyTorch's values"))
        return;
    int old = nb_set_num_threads(1 + _i / 2 % 2);
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {NF * NF_REP};
    double *xv = malloc(sizeof *xv * NF * NF_REP), *rv = malloc(sizeof *rv * NF * NF_REP);
    for (int i = 0; i < NF * NF_REP; i++)
        xv[i] = x[i % NF], rv[i] = dy[i % NF];
    for (size_t k = 0; k < sizeof acts / sizeof *acts; k++) {
        nb_tensor *xt = tst_make(ctx, dt, 1, s, xv), *r = tst_make(ctx, dt, 1, s, rv);
        nb_requires_grad(xt, true);
        nb_tensor *y = acts[k].fwd(ctx, xt);
        ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, r))), NB_OK);
        char what[96];
        snprintf(what, sizeof what, "%s %s output (%s kernels)", acts[k].name,
                 nb_dtype_name(dt), kernels);
        tst_assert_pattern(y, want[k][0], NF, dt == NB_F32 ? 1e-6 : 1e-12, what);
        snprintf(what, sizeof what, "%s %s gradient (%s kernels)", acts[k].name,
                 nb_dtype_name(dt), kernels);
        tst_assert_pattern(xt->grad, want[k][1], NF, dt == NB_F32 ? 1e-6 : 1e-12, what);
        nb_graph_reset(ctx);
    }
    free(xv);
    free(rv);
    nb_ctx_free(ctx);
    nb_set_num_threads(old);
    nb_set_cpu_kernels(old_kernels, NULL, 0);
}
END_TEST

START_TEST(test_null_input)
{
    nb_ctx *ctx = nb_ctx_new();
    /* A NULL from a failed op keeps that op's message down the chain. */
    ck_assert_ptr_null(nb_tanh(ctx, nb_relu(ctx, NULL)));
    tst_assert_error(ctx, NB_ERR_ARG, "relu: input 0 is NULL");
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_activation(void)
{
    Suite *s = suite_create("activation");
    TCase *tc = tcase_create("activation");
    tcase_add_loop_test(tc, test_values, 0, 2);
    tcase_add_test(tc, test_sigmoid_extremes);
    tcase_add_loop_test(tc, test_nonfinite, 0, 12);
    tcase_add_test(tc, test_null_input);
    suite_add_tcase(s, tc);
    return s;
}
