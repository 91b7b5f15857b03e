/* test_activation.c - relu, leaky_relu, elu, relu6, sigmoid, tanh, gelu, silu,
 * hardswish, softplus. */
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

/* setup_x's values, moved 0.02 away where they come within 0.01 of a kink
 * the central differences must not straddle. */
static void away_from(tst_env *e, nb_rng *rng, double k1, double k2)
{
    setup_x(e, rng);
    nb_tensor *x = e->t[0];
    for (int64_t i = 0; i < x->numel; i++) {
        double v = nb_get(x, i);
        if (fabs(v - k1) < 0.01 || fabs(v - k2) < 0.01)
            nb_set(x, i, v + 0.02);
    }
}

/* hardswish's kinks at -3 and 3 */
static void setup_hardswish(tst_env *e, nb_rng *rng) { away_from(e, rng, -3, 3); }

/* softplus with beta 2 and threshold 5 switches to x at 2.5, with a step
 * of log1p(e^-5) / 2 there: values above and below, none at it. */
static void setup_softplus(tst_env *e, nb_rng *rng) { away_from(e, rng, 2.5, 2.5); }

static nb_tensor *fwd_relu(nb_ctx *ctx, tst_env *e) { return nb_relu(ctx, e->t[0]); }
static nb_tensor *fwd_leaky(nb_ctx *ctx, tst_env *e) { return nb_leaky_relu(ctx, e->t[0], 0.1); }
static nb_tensor *fwd_elu(nb_ctx *ctx, tst_env *e) { return nb_elu(ctx, e->t[0], 1.3); }
static nb_tensor *fwd_relu6(nb_ctx *ctx, tst_env *e) { return nb_relu6(ctx, e->t[0]); }
static nb_tensor *fwd_sigmoid(nb_ctx *ctx, tst_env *e) { return nb_sigmoid(ctx, e->t[0]); }
static nb_tensor *fwd_tanh(nb_ctx *ctx, tst_env *e) { return nb_tanh(ctx, e->t[0]); }
static nb_tensor *fwd_gelu(nb_ctx *ctx, tst_env *e) { return nb_gelu(ctx, e->t[0], false); }
static nb_tensor *fwd_gelu_tanh(nb_ctx *ctx, tst_env *e) { return nb_gelu(ctx, e->t[0], true); }
static nb_tensor *fwd_silu(nb_ctx *ctx, tst_env *e) { return nb_silu(ctx, e->t[0]); }
static nb_tensor *fwd_hardswish(nb_ctx *ctx, tst_env *e) { return nb_hardswish(ctx, e->t[0]); }
static nb_tensor *fwd_softplus(nb_ctx *ctx, tst_env *e) { return nb_softplus(ctx, e->t[0], 1, 20); }
static nb_tensor *fwd_softplus25(nb_ctx *ctx, tst_env *e)
{
    return nb_softplus(ctx, e->t[0], 2, 5);
}
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
    {"gelu", setup_x, fwd_gelu},
    {"gelu tanh", setup_x, fwd_gelu_tanh},
    {"silu", setup_x, fwd_silu},
    {"hardswish", setup_hardswish, fwd_hardswish},
    {"softplus", setup_x, fwd_softplus},
    {"softplus beta 2 threshold 5", setup_softplus, fwd_softplus25},
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
static nb_tensor *nf_gelu(nb_ctx *ctx, nb_tensor *x) { return nb_gelu(ctx, x, false); }
static nb_tensor *nf_gelu_tanh(nb_ctx *ctx, nb_tensor *x) { return nb_gelu(ctx, x, true); }
static nb_tensor *nf_silu(nb_ctx *ctx, nb_tensor *x) { return nb_silu(ctx, x); }
static nb_tensor *nf_hardswish(nb_ctx *ctx, nb_tensor *x) { return nb_hardswish(ctx, x); }
static nb_tensor *nf_softplus(nb_ctx *ctx, nb_tensor *x) { return nb_softplus(ctx, x, 1, 20); }
static nb_tensor *nf_softplus25(nb_ctx *ctx, nb_tensor *x) { return nb_softplus(ctx, x, 2, 5); }

START_TEST(test_nonfinite)
{
    const double inf = INFINITY, nan = NAN;
    const double x[NF] = {nan, inf, -inf, -2, 0, 3, 7, -1, -1, 8, 1, 1, 1, 0};
    const double dy[NF] = {1, 1, 1, 1, 1, 1, 1, nan, inf, -inf, nan, inf, -inf, nan};
    const double e2 = exp(-2.0), e1 = exp(-1.0);
    const nf_act acts[] = {{"relu", nf_relu},       {"relu of an op", nf_relu_fresh},
                           {"relu6", nf_relu6},     {"leaky_relu 0.1", nf_leaky},
                           {"elu 1.3", nf_elu},     {"sigmoid", nf_sigmoid},
                           {"tanh", nf_tanh},       {"gelu", nf_gelu},
                           {"gelu tanh", nf_gelu_tanh}, {"silu", nf_silu},
                           {"hardswish", nf_hardswish}, {"softplus 2 5", nf_softplus25}};
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
        /* gelu, gelu tanh, silu, hardswish, softplus beta 2 threshold 5: printed by
         * torch in float64.  +-inf gives NaN where 0 meets inf (gelu's and silu's
         * gradients, -inf's outputs but softplus's), as PyTorch does. */
        {{nan, inf, nan, -0.04550026389635842, 0, 2.99595030590511, 6.999999999991041,
          -0.15865525393145702, -0.15865525393145702, 7.999999999999995, 0.841344746068543,
          0.841344746068543, 0.841344746068543, 0},
         {nan, nan, nan, -0.08523180107819692, 0.5, 1.011945647204184, 1.0000000000626632, nan,
          -inf, -inf, nan, inf, -inf, nan}},
        {{nan, inf, nan, -0.04540230591222494, 0, 2.996362607918227, 6.999999999999997,
          -0.1588080093917233, -0.1588080093917233, 8.0, 0.8411919906082768, 0.8411919906082768,
          0.8411919906082768, 0},
         {nan, nan, nan, -0.0860992566236183, 0.5, 1.0115841666309695, 1.0000000000000278, nan,
          -inf, -inf, nan, inf, -inf, nan}},
        {{nan, inf, nan, -0.2384058440442351, 0, 2.8577223804672998, 6.993622641639196,
          -0.2689414213699951, -0.2689414213699951, 7.997317198956269, 0.7310585786300049,
          0.7310585786300049, 0.7310585786300049, 0},
         {nan, nan, nan, -0.09078424878489547, 0.5, 1.0881041060151693, 1.0054604970664518, nan,
          inf, -inf, nan, inf, -inf, nan}},
        {{nan, inf, nan, -1.0 / 3, 0, 3, 7, -1.0 / 3, -1.0 / 3, 8, 2.0 / 3, 2.0 / 3, 2.0 / 3, 0},
         {nan, 1, 0, -1.0 / 6, 0.5, 1, 1, nan, inf, -inf, nan, inf, -inf, nan}},
        {{nan, inf, 0, 0.009074963958904869, 0.34657359027997264, 3, 7, 0.06346400552148625,
          0.06346400552148625, 8, 1.0634640055214863, 1.0634640055214863, 1.0634640055214863,
          0.34657359027997264},
         {nan, 1, 0, 0.017986209962091555, 0.5, 1, 1, nan, inf, -inf, nan, inf, -inf, nan}},
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

/* gelu (both forms), silu, hardswish and softplus (PyTorch's defaults, and
 * beta 2 with threshold 5) with their gradients for dy = 1, as torch 1.13
 * prints them in float64.  Where PyTorch's 1 + erf(x / sqrt 2) cancels to
 * 0 (gelu at -30) ours is the exact tail, far below the tolerance. */
enum { NKV = 11 };

START_TEST(test_values_more)
{
    const double x[NKV] = {-30, -5, -3, -1.5, -0.5, 0, 0.5, 1.5, 3, 5, 30};
    const nf_act acts[] = {{"gelu", nf_gelu},           {"gelu tanh", nf_gelu_tanh},
                           {"silu", nf_silu},           {"hardswish", nf_hardswish},
                           {"softplus", nf_softplus},   {"softplus 2 5", nf_softplus25}};
    const double want[][2][NKV] = {
        {{0, -1.4332578593401202e-06, -0.00404969409489031, -0.10021080190328704,
          -0.15426876936299344, 0, 0.34573123063700656, 1.399789198096713, 2.99595030590511,
          4.999998566742141, 30},
         {0, -7.1469460018034646e-06, -0.01194564720418392, -0.1274691922299796,
          0.13250487534383712, 0.5, 0.8674951246561629, 1.1274691922299795, 1.011945647204184,
          1.000007146946002, 1}},
        {{0, -2.2917961972623857e-07, -0.0036373920817729943, -0.10042842301976707,
          -0.15428599017485606, 0, 0.34571400982514394, 1.3995715769802328, 2.996362607918227,
          4.999999770820381, 30},
         {0, -1.5463619879596227e-06, -0.011584166630969648, -0.12771079315143308,
          0.13263009646535764, 0.5, 0.8673699035346424, 1.127710793151433, 1.0115841666309695,
          1.000001546361988, 1}},
        {{-2.8072868906517896e-12, -0.03346425462142428, -0.14227761953270035,
          -0.2736382857095345, -0.1887703343990727, 0, 0.3112296656009273, 1.2263617142904655,
          2.8577223804672998, 4.966535745378576, 29.999999999997197},
         {-2.713710660963134e-12, -0.026547432429665917, -0.08810410601516962,
          -0.041294154299142946, 0.2600388126973482, 0.5, 0.7399611873026519, 1.041294154299143,
          1.0881041060151693, 1.0265474324296655, 1.000000000002711}},
        {{0, 0, 0, -0.375, -0.20833333333333334, 0, 0.2916666666666667, 1.125, 3, 5, 30},
         {0, 0, -0.5, 0, 0.33333333333333337, 0.5, 0.6666666666666666, 1, 1, 1, 1}},
        {{9.357622968839737e-14, 0.006715348489118068, 0.04858735157374206, 0.2014132779827524,
          0.4740769841801067, 0.6931471805599453, 0.9740769841801067, 1.7014132779827524,
          3.048587351573742, 5.006715348489118, 30},
         {9.3576229688393e-14, 0.006692850924284856, 0.04742587317756679, 0.18242552380635632,
          0.37754066879814546, 0.5, 0.6224593312018546, 0.8175744761936437, 0.9525741268224333,
          0.9933071490757152, 1}},
        {{4.37825538134826e-27, 2.2699449608432323e-05, 0.0012378425688652247,
          0.02429367578687103, 0.15663084375911143, 0.34657359027997264, 0.6566308437591114,
          1.524293675786871, 3, 5, 30},
         {8.75651076269652e-27, 4.5397868702434395e-05, 0.0024726231566347748,
          0.04742587317756679, 0.2689414213699951, 0.5, 0.7310585786300049, 0.9525741268224333,
          1, 1, 1}},
    };
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    double tol = _i ? 1e-6 : 1e-12;
    int64_t s[] = {NKV};
    for (size_t k = 0; k < sizeof acts / sizeof *acts; k++) {
        nb_tensor *xt = tst_make(ctx, dt, 1, s, x);
        nb_requires_grad(xt, true);
        nb_tensor *y = acts[k].fwd(ctx, xt);
        ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, y)), NB_OK);
        char what[64];
        snprintf(what, sizeof what, "%s %s output", acts[k].name, nb_dtype_name(dt));
        tst_assert_pattern(y, want[k][0], NKV, tol, what);
        snprintf(what, sizeof what, "%s %s gradient", acts[k].name, nb_dtype_name(dt));
        tst_assert_pattern(xt->grad, want[k][1], NKV, tol, what);
        nb_graph_reset(ctx);
    }
    nb_ctx_free(ctx);
}
END_TEST

/* hardswish at and beside its kinks, as PyTorch's vectorised kernel (every
 * element but a tensor's last few): the gradient x / 3 + 1/2 from -3 on
 * (-1/2 at -3 itself), 1 from 3 on (its scalar kernel: 3/2 at 3), in each
 * dtype (_i % 2) and kernel variant (_i / 2). */
START_TEST(test_hardswish_kinks)
{
    const double x[] = {-3, 3, -3.001, -2.999, 2.999, 3.001, -1000, 1000};
    const double y[] = {0, 3, 0, -0.0004998333333332783, 2.9985001666666666, 3.001, 0, 1000};
    const double dx[] = {-0.5, 1, 0, -0.4996666666666667, 1.4996666666666667, 1, 0, 1};
    const char *old_kernels = nb_cpu_kernels(), *kernels = tst_kernels[_i / 2];
    if (!tst_use_kernels(kernels, "hardswish at its kinks"))
        return;
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {8};
    nb_tensor *xt = tst_make(ctx, _i % 2 ? NB_F32 : NB_F64, 1, s, x);
    nb_requires_grad(xt, true);
    nb_tensor *yt = nb_hardswish(ctx, xt);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, yt)), NB_OK);
    double tol = _i % 2 ? 1e-6 : 1e-12;
    tst_assert_values(yt, 1, s, y, tol);
    tst_assert_values(xt->grad, 1, s, dx, tol);
    nb_ctx_free(ctx);
    nb_set_cpu_kernels(old_kernels, NULL, 0);
}
END_TEST

/* softplus's beta must be a positive finite number. */
START_TEST(test_softplus_beta)
{
    nb_ctx *ctx = nb_ctx_new();
    ck_assert_ptr_null(nb_softplus(ctx, NULL, 1, 20));
    tst_assert_error(ctx, NB_ERR_ARG, "softplus: input 0 is NULL");
    nb_tensor *x = tst_make(ctx, NB_F32, 1, (int64_t[]){3}, (double[]){-1, 0, 1});
    ck_assert_ptr_null(nb_softplus(ctx, x, 0, 20));
    tst_assert_error(ctx, NB_ERR_ARG, "softplus: beta = 0 must be positive and finite");
    ck_assert_ptr_null(nb_softplus(ctx, x, -1, 20));
    tst_assert_error(ctx, NB_ERR_ARG, "softplus: beta = -1 must be positive and finite");
    ck_assert_ptr_null(nb_softplus(ctx, x, NAN, 20));
    tst_assert_error(ctx, NB_ERR_ARG, "softplus: beta = nan must be positive and finite");
    ck_assert_ptr_null(nb_softplus(ctx, x, INFINITY, 20));
    tst_assert_error(ctx, NB_ERR_ARG, "softplus: beta = inf must be positive and finite");
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
    tcase_set_timeout(tc, 60); /* test_nonfinite runs 13 activations on 2 threads */
    tcase_add_loop_test(tc, test_values, 0, 2);
    tcase_add_test(tc, test_sigmoid_extremes);
    tcase_add_loop_test(tc, test_nonfinite, 0, 12);
    tcase_add_loop_test(tc, test_values_more, 0, 2);
    tcase_add_loop_test(tc, test_hardswish_kinks, 0, 6);
    tcase_add_test(tc, test_softplus_beta);
    tcase_add_test(tc, test_null_input);
    suite_add_tcase(s, tc);
    return s;
}
