/* test_activation.c - relu, leaky_relu, elu, relu6, sigmoid, tanh. */
#include "harness.h"

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
    tcase_add_test(tc, test_null_input);
    suite_add_tcase(s, tc);
    return s;
}
