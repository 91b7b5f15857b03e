/*
 * test_fast.c - the threaded kernels give the one-thread results.
 *
 * Each case runs its ops and their backward on inputs big enough for the
 * kernels to split over threads (32768 elements and up), in float32 and in
 * float64, on 1 and on 2 threads.  The output and the gradient of every
 * input must be the same bits on 1 and 2 threads (or within the case's
 * relative tolerance, for reductions whose blocks follow the threads), and
 * float32 must agree with float64 within 1e-4 relative.
 */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fast_case {
    const char *name;
    void (*setup)(tst_env *e, nb_rng *rng);
    nb_tensor *(*forward)(nb_ctx *ctx, tst_env *e);
    double tol; /* 1 vs 2 threads, relative; 0: the same bits */
} fast_case;

/* ---- setups: shapes over the threads' thresholds ------------------------- */

static void setup_act(tst_env *e, nb_rng *rng)
{
    /* up to +-7, so relu6 sees both kinks */
    nb_tensor *x = tst_tensor(e, rng, 4, (int64_t[]){4, 8, 32, 33});
    for (int64_t i = 0; i < x->numel; i++)
        nb_set(x, i, 7 * nb_get(x, i));
}

static void setup_pool(tst_env *e, nb_rng *rng)
{
    tst_tensor(e, rng, 4, (int64_t[]){4, 8, 35, 34});
}

static void setup_gap(tst_env *e, nb_rng *rng)
{
    tst_tensor(e, rng, 4, (int64_t[]){8, 64, 9, 9});
}

static void setup_two(tst_env *e, nb_rng *rng)
{
    tst_tensor(e, rng, 2, (int64_t[]){200, 201});
    tst_tensor(e, rng, 2, (int64_t[]){200, 201});
}

static void setup_bcast(tst_env *e, nb_rng *rng)
{
    tst_tensor(e, rng, 4, (int64_t[]){8, 16, 16, 17});
    tst_tensor(e, rng, 3, (int64_t[]){16, 1, 1});
}

/* Both stretch, and the result is one long row per a value. */
static void setup_outer(tst_env *e, nb_rng *rng)
{
    tst_tensor(e, rng, 2, (int64_t[]){40, 1});
    tst_tensor(e, rng, 2, (int64_t[]){1, 1000});
}

static void setup_softmax(tst_env *e, nb_rng *rng)
{
    tst_tensor_range(e, rng, 3, (int64_t[]){4, 50, 200}, -3, 3);
}

static void setup_ce(tst_env *e, nb_rng *rng)
{
    tst_tensor_range(e, rng, 2, (int64_t[]){64, 600}, -3, 3);
    for (int i = 0; i < 64; i++)
        e->labels[i] = (int32_t)nb_rng_below(rng, 600);
}

static void setup_hinge(tst_env *e, nb_rng *rng)
{
    tst_tensor_range(e, rng, 1, (int64_t[]){40000}, -2, 2);
    nb_tensor *y = tst_tensor(e, rng, 1, (int64_t[]){40000});
    for (int64_t i = 0; i < y->numel; i++) /* labels +-1, kept differentiable */
        nb_set(y, i, nb_get(y, i) < 0 ? -1.0 : 1.0);
}

static void setup_bn(tst_env *e, nb_rng *rng)
{
    tst_tensor(e, rng, 4, (int64_t[]){8, 16, 16, 17});
    tst_tensor_range(e, rng, 1, (int64_t[]){16}, 0.5, 1.5);
    tst_tensor(e, rng, 1, (int64_t[]){16});
}

/* layer_norm over the last 2 dimensions, weight and bias [32, 33] */
static void setup_ln(tst_env *e, nb_rng *rng)
{
    tst_tensor(e, rng, 4, (int64_t[]){40, 2, 32, 33});
    tst_tensor_range(e, rng, 2, (int64_t[]){32, 33}, 0.5, 1.5);
    tst_tensor(e, rng, 2, (int64_t[]){32, 33});
}

/* group_norm [N, C, H, W], weight and bias [C]: 40 examples, 3 batch groups */
static void setup_gn(tst_env *e, nb_rng *rng)
{
    tst_tensor(e, rng, 4, (int64_t[]){40, 12, 9, 10});
    tst_tensor_range(e, rng, 1, (int64_t[]){12}, 0.5, 1.5);
    tst_tensor(e, rng, 1, (int64_t[]){12});
}

/* The same inputs with NaN, +inf and -inf sprinkled over the first tensor
 * (about one element in a thousand of each). */
static void sprinkle(nb_tensor *t)
{
    for (int64_t i = 0; i < t->numel; i++) {
        if (i % 997 == 5)
            nb_set(t, i, NAN);
        else if (i % 991 == 7)
            nb_set(t, i, INFINITY);
        else if (i % 983 == 11)
            nb_set(t, i, -INFINITY);
    }
}
#define NONFINITE(setup)                                                      \
    static void setup##_nf(tst_env *e, nb_rng *rng)                           \
    {                                                                         \
        setup(e, rng);                                                        \
        sprinkle(e->t[0]);                                                    \
    }
NONFINITE(setup_act)
NONFINITE(setup_pool)
NONFINITE(setup_gap)
NONFINITE(setup_two)
NONFINITE(setup_softmax)
NONFINITE(setup_ce)
NONFINITE(setup_hinge)
NONFINITE(setup_bn)
#undef NONFINITE

/* ---- forwards ------------------------------------------------------------ */

static const nb_pool_opts k2 = {{2, 2}, {0, 0}, {0, 0}};
static const nb_pool_opts k3s2p1 = {{3, 3}, {2, 2}, {1, 1}};
static const nb_pool_opts k23s12p1 = {{2, 3}, {1, 2}, {1, 1}};

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
static nb_tensor *fwd_softplus(nb_ctx *ctx, tst_env *e) { return nb_softplus(ctx, e->t[0], 2, 5); }
/* Ops on an op's output, whose gradient buffer starts fresh: relu stores
 * into it, tanh adds after it; max-pool zeroes it a plane at a time. */
static nb_tensor *fwd_relu_step(nb_ctx *ctx, tst_env *e)
{
    nb_tensor *t = nb_scale(ctx, e->t[0], 0.5);
    return nb_add(ctx, nb_tanh(ctx, t), nb_relu(ctx, t));
}
static nb_tensor *fwd_max_step(nb_ctx *ctx, tst_env *e)
{
    return nb_max_pool2d(ctx, nb_relu(ctx, nb_scale(ctx, e->t[0], 1.5)), &k3s2p1);
}
static nb_tensor *fwd_max_k2(nb_ctx *ctx, tst_env *e) { return nb_max_pool2d(ctx, e->t[0], &k2); }
static nb_tensor *fwd_max_k3(nb_ctx *ctx, tst_env *e)
{
    return nb_max_pool2d(ctx, e->t[0], &k3s2p1);
}
static nb_tensor *fwd_max_k23(nb_ctx *ctx, tst_env *e)
{
    return nb_max_pool2d(ctx, e->t[0], &k23s12p1);
}

static nb_tensor *fwd_avg_k2(nb_ctx *ctx, tst_env *e) { return nb_avg_pool2d(ctx, e->t[0], &k2); }
static nb_tensor *fwd_avg_k3(nb_ctx *ctx, tst_env *e)
{
    return nb_avg_pool2d(ctx, e->t[0], &k3s2p1);
}
static nb_tensor *fwd_gap(nb_ctx *ctx, tst_env *e) { return nb_global_avg_pool2d(ctx, e->t[0]); }
static nb_tensor *fwd_upsample_nearest(nb_ctx *ctx, tst_env *e)
{
    static const nb_upsample_opts o = {NB_UPSAMPLE_NEAREST, {0, 0}, {2, 1.5}, false};
    return nb_upsample(ctx, e->t[0], &o);
}
static nb_tensor *fwd_upsample_bilinear(nb_ctx *ctx, tst_env *e)
{
    static const nb_upsample_opts o = {NB_UPSAMPLE_BILINEAR, {50, 30}, {0, 0}, false};
    return nb_upsample(ctx, nb_scale(ctx, e->t[0], 1.5), &o);
}
static nb_tensor *fwd_add(nb_ctx *ctx, tst_env *e) { return nb_add(ctx, e->t[0], e->t[1]); }
static nb_tensor *fwd_sub(nb_ctx *ctx, tst_env *e) { return nb_sub(ctx, e->t[1], e->t[0]); }
static nb_tensor *fwd_mul(nb_ctx *ctx, tst_env *e) { return nb_mul(ctx, e->t[0], e->t[1]); }
static nb_tensor *fwd_square(nb_ctx *ctx, tst_env *e) { return nb_mul(ctx, e->t[0], e->t[0]); }
static nb_tensor *fwd_scale(nb_ctx *ctx, tst_env *e) { return nb_scale(ctx, e->t[0], -2.5); }
static nb_tensor *fwd_sum(nb_ctx *ctx, tst_env *e) { return nb_sum(ctx, e->t[0]); }
static nb_tensor *fwd_mean(nb_ctx *ctx, tst_env *e) { return nb_mean(ctx, e->t[0]); }
static nb_tensor *fwd_softmax1(nb_ctx *ctx, tst_env *e) { return nb_softmax(ctx, e->t[0], 1); }
static nb_tensor *fwd_softmax2(nb_ctx *ctx, tst_env *e) { return nb_softmax(ctx, e->t[0], -1); }
static nb_tensor *fwd_log_softmax(nb_ctx *ctx, tst_env *e)
{
    return nb_log_softmax(ctx, e->t[0], 1);
}
static nb_tensor *fwd_ce(nb_ctx *ctx, tst_env *e)
{
    return nb_cross_entropy(ctx, e->t[0], e->labels);
}
static nb_tensor *fwd_mse(nb_ctx *ctx, tst_env *e) { return nb_mse_loss(ctx, e->t[0], e->t[1]); }
static nb_tensor *fwd_hinge(nb_ctx *ctx, tst_env *e)
{
    return nb_hinge_loss(ctx, e->t[0], e->t[1]);
}
static nb_tensor *fwd_dropout(nb_ctx *ctx, tst_env *e)
{
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    return nb_dropout(ctx, e->t[0], 0.3, &rng);
}
static nb_tensor *fwd_dropout2d(nb_ctx *ctx, tst_env *e)
{
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    return nb_dropout2d(ctx, e->t[0], 0.3, &rng);
}
static nb_tensor *fwd_bn(nb_ctx *ctx, tst_env *e)
{
    return nb_batch_norm(ctx, e->t[0], e->t[1], e->t[2], NULL, NULL, 0.1, 1e-5);
}

static nb_tensor *fwd_ln(nb_ctx *ctx, tst_env *e)
{
    return nb_layer_norm(ctx, e->t[0], 2, e->t[1], e->t[2], 1e-5);
}
static nb_tensor *fwd_gn(nb_ctx *ctx, tst_env *e)
{
    return nb_group_norm(ctx, e->t[0], 4, e->t[1], e->t[2], 1e-5);
}

static const fast_case cases[] = {
    {"relu", setup_act, fwd_relu, 0},
    {"leaky_relu", setup_act, fwd_leaky, 0},
    {"elu", setup_act, fwd_elu, 0},
    {"relu6", setup_act, fwd_relu6, 0},
    {"sigmoid", setup_act, fwd_sigmoid, 0},
    {"tanh", setup_act, fwd_tanh, 0},
    {"gelu", setup_act, fwd_gelu, 0},
    {"gelu tanh", setup_act, fwd_gelu_tanh, 0},
    {"silu", setup_act, fwd_silu, 0},
    {"hardswish", setup_act, fwd_hardswish, 0},
    {"softplus beta 2 threshold 5", setup_act, fwd_softplus, 0},
    {"tanh(x/2) + relu(x/2)", setup_act, fwd_relu_step, 0},
    {"max_pool2d 2x2", setup_pool, fwd_max_k2, 0},
    {"max_pool2d 3x3 stride 2 padding 1", setup_pool, fwd_max_k3, 0},
    {"max_pool2d 2x3 stride [1,2] padding 1", setup_pool, fwd_max_k23, 0},
    {"max_pool2d 3x3 stride 2 padding 1 of relu(1.5 x)", setup_pool, fwd_max_step, 0},
    {"avg_pool2d 2x2", setup_pool, fwd_avg_k2, 0},
    {"avg_pool2d 3x3 stride 2 padding 1", setup_pool, fwd_avg_k3, 0},
    {"global_avg_pool2d", setup_gap, fwd_gap, 0},
    {"upsample nearest scale_factor [2, 1.5]", setup_pool, fwd_upsample_nearest, 0},
    {"upsample bilinear size [50, 30] of 1.5 x", setup_pool, fwd_upsample_bilinear, 0},
    {"add same shape", setup_two, fwd_add, 0},
    {"add broadcast", setup_bcast, fwd_add, 0},
    {"sub broadcast reversed", setup_bcast, fwd_sub, 0},
    {"mul broadcast", setup_bcast, fwd_mul, 0},
    {"mul outer", setup_outer, fwd_mul, 0},
    {"x * x", setup_two, fwd_square, 0},
    {"scale", setup_two, fwd_scale, 0},
    {"sum", setup_two, fwd_sum, 0},
    {"mean", setup_two, fwd_mean, 0},
    {"softmax dim 1", setup_softmax, fwd_softmax1, 0},
    {"softmax dim -1", setup_softmax, fwd_softmax2, 0},
    {"log_softmax dim 1", setup_softmax, fwd_log_softmax, 0},
    {"cross_entropy", setup_ce, fwd_ce, 0},
    {"mse_loss", setup_two, fwd_mse, 0},
    {"hinge_loss", setup_hinge, fwd_hinge, 0},
    {"dropout", setup_act, fwd_dropout, 0},
    {"dropout2d", setup_act, fwd_dropout2d, 0},
    {"batch_norm", setup_bn, fwd_bn, 0},
    {"layer_norm", setup_ln, fwd_ln, 0},
    {"group_norm", setup_gn, fwd_gn, 0},
    /* NaN and infinities take the same paths on 1 and 2 threads. */
    {"relu with NaN and infinities", setup_act_nf, fwd_relu, 0},
    {"leaky_relu with NaN and infinities", setup_act_nf, fwd_leaky, 0},
    {"elu with NaN and infinities", setup_act_nf, fwd_elu, 0},
    {"relu6 with NaN and infinities", setup_act_nf, fwd_relu6, 0},
    {"sigmoid with NaN and infinities", setup_act_nf, fwd_sigmoid, 0},
    {"tanh with NaN and infinities", setup_act_nf, fwd_tanh, 0},
    {"gelu with NaN and infinities", setup_act_nf, fwd_gelu, 0},
    {"gelu tanh with NaN and infinities", setup_act_nf, fwd_gelu_tanh, 0},
    {"silu with NaN and infinities", setup_act_nf, fwd_silu, 0},
    {"hardswish with NaN and infinities", setup_act_nf, fwd_hardswish, 0},
    {"softplus beta 2 threshold 5 with NaN and infinities", setup_act_nf, fwd_softplus, 0},
    {"tanh(x/2) + relu(x/2) with NaN and infinities", setup_act_nf, fwd_relu_step, 0},
    {"max_pool2d 2x2 with NaN and infinities", setup_pool_nf, fwd_max_k2, 0},
    {"max_pool2d 3x3 stride 2 padding 1 with NaN and infinities", setup_pool_nf, fwd_max_k3, 0},
    {"max_pool2d 2x3 stride [1,2] padding 1 with NaN and infinities", setup_pool_nf, fwd_max_k23,
     0},
    {"avg_pool2d 3x3 stride 2 padding 1 with NaN and infinities", setup_pool_nf, fwd_avg_k3, 0},
    {"global_avg_pool2d with NaN and infinities", setup_gap_nf, fwd_gap, 0},
    {"upsample bilinear with NaN and infinities", setup_pool_nf, fwd_upsample_bilinear, 0},
    {"mul with NaN and infinities", setup_two_nf, fwd_mul, 0},
    {"sum with NaN and infinities", setup_two_nf, fwd_sum, 0},
    {"softmax dim 1 with NaN and infinities", setup_softmax_nf, fwd_softmax1, 0},
    {"log_softmax dim 1 with NaN and infinities", setup_softmax_nf, fwd_log_softmax, 0},
    {"cross_entropy with NaN and infinities", setup_ce_nf, fwd_ce, 0},
    {"mse_loss with NaN and infinities", setup_two_nf, fwd_mse, 0},
    {"hinge_loss with NaN and infinities", setup_hinge_nf, fwd_hinge, 0},
    {"dropout with NaN and infinities", setup_act_nf, fwd_dropout, 0},
    {"dropout2d with NaN and infinities", setup_act_nf, fwd_dropout2d, 0},
    {"batch_norm with NaN and infinities", setup_bn_nf, fwd_bn, 0},
};
#define NCASES ((int)(sizeof cases / sizeof *cases))

/* ---- one run: the output and the gradients, as persistent copies --------- */

typedef struct result {
    nb_tensor *y;
    nb_tensor *grad[TST_MAX_TENSORS];
} result;

/* Runs case c on copies of e's float64 tensors in `dtype`, on `threads`
 * threads, through loss = sum(y * R) for a fixed R in [0.5, 1.5]. */
static result run_case(const fast_case *c, nb_ctx *ctx, const tst_env *e, nb_dtype dtype,
                       int threads)
{
    tst_env in = *e;
    for (int j = 0; j < e->n; j++) {
        in.t[j] = nb_tensor_copy(ctx, e->t[j], dtype);
        nb_requires_grad(in.t[j], true);
    }
    nb_set_num_threads(threads);
    nb_tensor *y = c->forward(ctx, &in);
    ck_assert_msg(y != NULL, "%s: %s", c->name, nb_errmsg(ctx));
    nb_tensor *r = nb_tensor_new(ctx, dtype, y->ndim, y->shape);
    nb_rng rng;
    nb_rng_seed(&rng, 12345);
    nb_fill_uniform(r, &rng, 0.5, 1.5);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, r))), NB_OK);
    nb_set_num_threads(1);
    result res = {nb_tensor_copy(ctx, y, dtype), {NULL}};
    for (int j = 0; j < e->n; j++)
        res.grad[j] = in.t[j]->grad;
    nb_graph_reset(ctx);
    return res;
}

/* a and b agree: the same bits (tol 0) or within tol relative, NaN where
 * the other is NaN and the same infinities.  One assertion for the whole
 * tensor: Check records every assertion made. */
static void assert_same(const char *name, const char *what, const nb_tensor *a,
                        const nb_tensor *b, double tol)
{
    if (!a && !b)
        return; /* an input the case does not use */
    ck_assert_msg(a && b, "%s: %s missing", name, what);
    ck_assert_int_eq(a->numel, b->numel);
    size_t size = nb_dtype_size(a->dtype);
    int64_t bad = -1;
    for (int64_t i = 0; i < a->numel && bad < 0; i++) {
        double x = nb_get(a, i), y = nb_get(b, i);
        if (tol == 0 ? memcmp((const char *)a->data + i * size, (const char *)b->data + i * size,
                              size) != 0
                     : !(x == y || (isnan(x) && isnan(y)) ||
                         fabs(x - y) <= tol * fmax(1.0, fabs(y))))
            bad = i;
    }
    ck_assert_msg(bad < 0, "%s: %s element %lld: %.17g vs %.17g", name, what, (long long)bad,
                  bad < 0 ? 0 : nb_get(a, bad), bad < 0 ? 0 : nb_get(b, bad));
}

/* Float32 and float64 (on 1 and 2 threads): 2 threads give 1 thread's
 * results, and float32 is within 1e-4 of float64. */
START_TEST(test_threads_match)
{
    const fast_case *c = &cases[_i];
    nb_ctx *ctx = nb_ctx_new();
    tst_env e;
    memset(&e, 0, sizeof e);
    e.ctx = ctx;
    nb_rng rng;
    nb_rng_seed(&rng, 42);
    c->setup(&e, &rng);
    result r[2][2]; /* [f32, f64][1, 2 threads] */
    for (int d = 0; d < 2; d++)
        for (int t = 0; t < 2; t++)
            r[d][t] = run_case(c, ctx, &e, d ? NB_F64 : NB_F32, 1 + t);
    int64_t big = r[0][0].y->numel;
    for (int j = 0; j < e.n; j++)
        big = e.t[j]->numel > big ? e.t[j]->numel : big;
    ck_assert_msg(big >= 32768, "%s: tensors too small to be split", c->name);
    for (int d = 0; d < 2; d++) {
        char what[64];
        snprintf(what, sizeof what, "%s output", d ? "f64" : "f32");
        assert_same(c->name, what, r[d][1].y, r[d][0].y, c->tol);
        for (int j = 0; j < e.n; j++) {
            snprintf(what, sizeof what, "%s gradient %d", d ? "f64" : "f32", j);
            assert_same(c->name, what, r[d][1].grad[j], r[d][0].grad[j], c->tol);
        }
    }
    assert_same(c->name, "f32 vs f64 output", r[0][1].y, r[1][1].y, 1e-4);
    for (int j = 0; j < e.n; j++)
        assert_same(c->name, "f32 vs f64 gradient", r[0][1].grad[j], r[1][1].grad[j], 1e-4);
    nb_ctx_free(ctx);
    nb_set_num_threads(1);
}
END_TEST

/* ---- optimizers and clipping ---------------------------------------------- */

static nb_optim_opts opts_sgd(void)
{
    nb_optim_opts o = nb_optim_defaults(NB_SGD);
    o.lr = 0.1;
    o.momentum = 0.9;
    o.weight_decay = 0.01;
    o.nesterov = true;
    return o;
}
static nb_optim_opts opts_sgd_plain(void) { return nb_optim_defaults(NB_SGD); }
static nb_optim_opts opts_adam(void)
{
    nb_optim_opts o = nb_optim_defaults(NB_ADAM);
    o.weight_decay = 0.01;
    return o;
}
static nb_optim_opts opts_adamw(void) { return nb_optim_defaults(NB_ADAMW); }
static nb_optim_opts opts_rmsprop(void)
{
    nb_optim_opts o = nb_optim_defaults(NB_RMSPROP);
    o.centered = true;
    o.momentum = 0.5;
    o.weight_decay = 0.01;
    return o;
}
static nb_optim_opts opts_rmsprop_plain(void) { return nb_optim_defaults(NB_RMSPROP); }
static nb_optim_opts (*const optims[])(void) = {opts_sgd,  opts_sgd_plain, opts_adam,
                                                opts_adamw, opts_rmsprop, opts_rmsprop_plain};
#define NOPTIMS ((int)(sizeof optims / sizeof *optims))

/* Three steps of a [200, 201] and a [7] parameter, gradients clipped to a
 * norm of 10 first; returns the big parameter and writes the norms. */
static nb_tensor *optimize(nb_ctx *ctx, nb_optim_opts o, nb_dtype dtype, int threads,
                           double *norms)
{
    nb_rng rng;
    nb_rng_seed(&rng, 9);
    nb_tensor *p[2] = {nb_tensor_new(ctx, dtype, 2, (int64_t[]){200, 201}),
                       nb_tensor_new(ctx, dtype, 1, (int64_t[]){7})};
    for (int k = 0; k < 2; k++) {
        nb_fill_uniform(p[k], &rng, -1, 1);
        p[k]->grad = nb_tensor_new(ctx, dtype, p[k]->ndim, p[k]->shape);
    }
    nb_optim *opt = nb_optim_new(ctx, &o, 2, p);
    ck_assert_msg(opt != NULL, "%s", nb_errmsg(ctx));
    nb_set_num_threads(threads);
    for (int s = 0; s < 3; s++) {
        for (int k = 0; k < 2; k++) {
            nb_tensor *g = p[k]->grad;
            for (int64_t i = 0; i < g->numel; i++) /* the same draws in both dtypes */
                nb_set(g, i, nb_rng_uniform(&rng) - 0.5);
        }
        norms[s] = nb_clip_grad_norm(2, p, 10);
        ck_assert_int_eq(nb_optim_step(opt), NB_OK);
    }
    nb_set_num_threads(1);
    nb_optim_free(opt);
    return p[0];
}

START_TEST(test_optim_threads_match)
{
    nb_optim_opts o = optims[_i]();
    const char *name = nb_optim_kind_name(o.kind);
    nb_ctx *ctx = nb_ctx_new();
    double norms[2][2][3];
    nb_tensor *p[2][2];
    for (int d = 0; d < 2; d++)
        for (int t = 0; t < 2; t++)
            p[d][t] = optimize(ctx, o, d ? NB_F64 : NB_F32, 1 + t, norms[d][t]);
    for (int d = 0; d < 2; d++) {
        assert_same(name, "parameter", p[d][1], p[d][0], 0);
        for (int s = 0; s < 3; s++)
            ck_assert_msg(norms[d][1][s] == norms[d][0][s], "%s: norm %d: %.17g vs %.17g", name,
                          s, norms[d][1][s], norms[d][0][s]);
    }
    assert_same(name, "f32 vs f64 parameter", p[0][1], p[1][1], 1e-4);
    for (int s = 0; s < 3; s++) {
        ck_assert_msg(norms[1][1][s] > 10, "the norm %g must be over the limit", norms[1][1][s]);
        ck_assert_double_eq_tol(norms[0][1][s], norms[1][1][s], 1e-4 * norms[1][1][s]);
    }
    nb_ctx_free(ctx);
}
END_TEST

/* ---- depthwise conv2d against its reference twin ---------------------------
 * The twin of conv-depthwise.h's kernels: the same chains, fused as the
 * AVX2 and AVX-512 kernels are or a product then an add as the baseline's
 * (this file is built -std=c11, so nothing here is contracted):
 *   y: from the bias over the taps in the weight's order, padding included;
 *   dx: each pixel over (multiplier, tap), real outputs only;
 *   dW, db: per group of NB_BATCH_GROUP images, lane (oy wq + ox) % lanes
 *   (wq the padded width over the stride, lanes 32 bytes of T) in image
 *   order, the lanes in a tree, then the groups in nbi_batch_sum's tree. */
typedef struct dw_geom {
    int n, c, h, w, m, kh, kw, sh, sw, pt, pl, dh, dw, oh, ow, wq;
    bool flip, relu, bias;
} dw_geom;

#define DW_REF(T, name, fmaT)                                                                 \
    static T name##_acc(T s, T a, T b, bool fused) { return fused ? fmaT(a, b, s) : s + a * b; } \
    static T name##_x(const dw_geom *g, const T *x, int n, int c, int oy, int ox, int i, int j) \
    {                                                                                          \
        int ki = g->flip ? g->kh - 1 - i : i, kj = g->flip ? g->kw - 1 - j : j;                 \
        int iy = oy * g->sh - g->pt + ki * g->dh, ix = ox * g->sw - g->pl + kj * g->dw;         \
        if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)                                       \
            return 0;                                                                          \
        return x[(((int64_t)n * g->c + c) * g->h + iy) * g->w + ix];                           \
    }                                                                                          \
    static void name##_tree(T *p, int64_t groups, int64_t len)                                 \
    {                                                                                          \
        for (int64_t s = 1; s < groups; s *= 2)                                                \
            for (int64_t i = 0; i + s < groups; i += 2 * s)                                    \
                for (int64_t j = 0; j < len; j++)                                              \
                    p[i * len + j] += p[(i + s) * len + j];                                    \
    }                                                                                          \
    static void name(const dw_geom *g, const T *x, const T *w, const T *b, const T *r,         \
                     bool fused, T *y, T *dx, T *dw, T *db)                                     \
    {                                                                                          \
        enum { L = 32 / sizeof(T) };                                                           \
        int o = g->c * g->m, khw = g->kh * g->kw, p = g->oh * g->ow;                            \
        int64_t groups = (g->n + NB_BATCH_GROUP - 1) / NB_BATCH_GROUP, nw = (int64_t)o * khw;   \
        T *dy = calloc((size_t)g->n * o * p, sizeof(T));                                       \
        T *part = calloc((size_t)(groups * (nw + o)), sizeof(T));                              \
        T *lanes = calloc((size_t)((nw + o) * L), sizeof(T));                                   \
        for (int n = 0; n < g->n; n++)                                                         \
            for (int oc = 0; oc < o; oc++)                                                     \
                for (int t = 0; t < p; t++) {                                                  \
                    int64_t yi = ((int64_t)n * o + oc) * p + t;                                 \
                    T s = g->bias ? b[oc] : 0;                                                 \
                    for (int k = 0; k < khw; k++)                                              \
                        s = name##_acc(s, w[oc * khw + k],                                      \
                                       name##_x(g, x, n, oc / g->m, t / g->ow, t % g->ow,       \
                                                k / g->kw, k % g->kw), fused);                  \
                    y[yi] = g->relu && s <= 0 ? 0 : s;                                          \
                    dy[yi] = g->relu && s <= 0 ? 0 : r[yi];                                     \
                }                                                                              \
        for (int64_t i = 0; i < (int64_t)g->n * g->c * g->h * g->w; i++)                       \
            dx[i] = 0;                                                                         \
        for (int n = 0; n < g->n; n++)                                                         \
            for (int oc = 0; oc < o; oc++)                                                     \
                for (int k = 0; k < khw; k++)                                                  \
                    for (int t = 0; t < p; t++) {                                              \
                        int i = k / g->kw, j = k % g->kw, oy = t / g->ow, ox = t % g->ow;       \
                        int ki = g->flip ? g->kh - 1 - i : i, kj = g->flip ? g->kw - 1 - j : j; \
                        int iy = oy * g->sh - g->pt + ki * g->dh;                              \
                        int ix = ox * g->sw - g->pl + kj * g->dw;                              \
                        if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)                      \
                            continue;                                                          \
                        T *d = dx + (((int64_t)n * g->c + oc / g->m) * g->h + iy) * g->w + ix; \
                        *d = name##_acc(*d, w[oc * khw + k], dy[((int64_t)n * o + oc) * p + t], \
                                        fused);                                                \
                    }                                                                          \
        for (int64_t q = 0; q < groups; q++) {                                                 \
            memset(lanes, 0, (size_t)((nw + o) * L) * sizeof(T));                              \
            for (int n = (int)q * NB_BATCH_GROUP; n < g->n && n < (q + 1) * NB_BATCH_GROUP; n++) \
                for (int oc = 0; oc < o; oc++)                                                 \
                    for (int t = 0; t < p; t++) {                                              \
                        int oy = t / g->ow, ox = t % g->ow, l = (oy * g->wq + ox) % L;          \
                        T u = dy[((int64_t)n * o + oc) * p + t];                                \
                        for (int k = 0; k < khw; k++) {                                        \
                            T *a = lanes + ((int64_t)oc * khw + k) * L + l;                     \
                            *a = name##_acc(*a, u,                                             \
                                            name##_x(g, x, n, oc / g->m, oy, ox, k / g->kw,     \
                                                     k % g->kw), fused);                       \
                        }                                                                      \
                        lanes[(nw + oc) * L + l] += u;                                         \
                    }                                                                          \
            for (int64_t e = 0; e < nw + o; e++) {                                             \
                T *a = lanes + e * L;                                                          \
                for (int s = L / 2; s >= 1; s /= 2)                                            \
                    for (int j = 0; j < s; j++)                                                \
                        a[j] += a[j + s];                                                      \
                part[q * (nw + o) + e] = a[0];                                                 \
            }                                                                                  \
        }                                                                                      \
        name##_tree(part, groups, nw + o);                                                     \
        for (int64_t e = 0; e < nw; e++)                                                       \
            dw[e] = 0 + part[e];                                                               \
        for (int e = 0; e < o; e++)                                                            \
            db[e] = 0 + part[nw + e];                                                          \
        free(dy);                                                                              \
        free(part);                                                                            \
        free(lanes);                                                                           \
    }
DW_REF(float, ref_dwise_f32, fmaf)
DW_REF(double, ref_dwise_f64, fma)
#undef DW_REF

/* MobileNet's blocks (smaller batches: 37 images make three groups, the
 * last part full), then odd ones: stride [2, 3], dilation, asymmetric
 * padding, flipped, a multiplier of 2, relu, 5x2 taps, and long rows. */
static const struct {
    int n, c, h, w, m, kh, kw;
    nb_conv_opts o;
    bool bias;
} dw_cases[] = {
    {37, 16, 28, 28, 1, 3, 3, {.padding = {1, 1}}, true},
    {19, 32, 28, 28, 1, 3, 3, {.stride = {2, 2}, .padding = {1, 1}}, true},
    {37, 64, 14, 14, 1, 3, 3, {.padding = {1, 1}}, true},
    {18, 64, 14, 14, 1, 3, 3, {.stride = {2, 2}, .padding = {1, 1}}, true},
    {17, 3, 13, 17, 2, 5, 2, {.stride = {2, 3}, .padding = {2, 0}, .dilation = {2, 3}, .flip = true},
     false},
    {5, 4, 9, 11, 2, 3, 3, {.padding = {2, 1}, .dilation = {2, 1}, .relu = true}, true},
    {3, 5, 7, 6, 1, 4, 3, {.same = true, .flip = true, .relu = true}, true},
    /* stride-2 rows split by whole vectors, then 16 bytes, then singly */
    {3, 2, 6, 45, 1, 3, 3, {.stride = {2, 2}}, true},
    {2, 3, 5, 70, 2, 3, 2, {.stride = {1, 2}, .padding = {1, 2}, .relu = true}, true},
};
#define NDW ((int)(sizeof dw_cases / sizeof *dw_cases))

/* The kernels' y, dx, dW and db bit for bit the twin's, each case, f32 and
 * f64 (_i % 2), on 1 and 2 threads (_i / 2 % 2), with each CPU variant's
 * kernels (_i / 4); a variant the machine lacks is skipped. */
START_TEST(test_depthwise_matches_twin)
{
    nb_dtype dt = _i % 2 ? NB_F64 : NB_F32;
    const char *old_kernels = nb_cpu_kernels(), *kernels = tst_kernels[_i / 4];
    if (!tst_use_kernels(kernels, "depthwise conv2d vs its twin"))
        return;
    int old = nb_set_num_threads(1 + _i / 2 % 2);
    bool fused = strcmp(kernels, "baseline") != 0;
    nb_ctx *ctx = nb_ctx_new();
    nb_rng rng;
    nb_rng_seed(&rng, 21 + (uint64_t)_i);
    for (int k = 0; k < NDW; k++) {
        const nb_conv_opts *o = &dw_cases[k].o;
        dw_geom g = {dw_cases[k].n, dw_cases[k].c, dw_cases[k].h, dw_cases[k].w, dw_cases[k].m,
                     dw_cases[k].kh, dw_cases[k].kw, o->stride[0] ? o->stride[0] : 1,
                     o->stride[1] ? o->stride[1] : 1, o->padding[0], o->padding[1],
                     o->dilation[0] ? o->dilation[0] : 1, o->dilation[1] ? o->dilation[1] : 1,
                     0, 0, 0, o->flip, o->relu, dw_cases[k].bias};
        int eh = g.dh * (g.kh - 1) + 1, ew = g.dw * (g.kw - 1) + 1, pb = g.pt, pr = g.pl;
        if (o->same) {
            g.pt = (eh - 1) / 2, pb = eh - 1 - g.pt;
            g.pl = (ew - 1) / 2, pr = ew - 1 - g.pl;
        }
        g.oh = (g.h + g.pt + pb - eh) / g.sh + 1;
        g.ow = (g.w + g.pl + pr - ew) / g.sw + 1;
        g.wq = (g.w + g.pl + pr + g.sw - 1) / g.sw;
        int o_ = g.c * g.m;
        int64_t xs[] = {g.n, g.c, g.h, g.w}, ws[] = {o_, 1, g.kh, g.kw}, bs[] = {o_};
        int64_t ys[] = {g.n, o_, g.oh, g.ow};
        nb_graph_reset(ctx);
        nb_tensor *x = nb_tensor_new(ctx, dt, 4, xs), *w = nb_tensor_new(ctx, dt, 4, ws);
        nb_tensor *b = nb_tensor_new(ctx, dt, 1, bs), *r = nb_tensor_new(ctx, dt, 4, ys);
        nb_fill_uniform(x, &rng, -1, 1), nb_fill_uniform(w, &rng, -1, 1);
        nb_fill_uniform(b, &rng, -1, 1), nb_fill_uniform(r, &rng, -1, 1);
        nb_requires_grad(x, true), nb_requires_grad(w, true), nb_requires_grad(b, true);
        nb_conv_opts oo = *o;
        oo.groups = g.c;
        nb_tensor *y = nb_conv2d(ctx, x, w, g.bias ? b : NULL, &oo);
        ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
        ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, r))), NB_OK);
        size_t es = nb_dtype_size(dt), ny = (size_t)y->numel, nx = (size_t)x->numel;
        size_t nw = (size_t)w->numel, no = (size_t)o_;
        char *want = malloc((ny + nx + nw + no) * es);
        char *wy = want, *wdx = wy + ny * es, *wdw = wdx + nx * es, *wdb = wdw + nw * es;
        if (dt == NB_F32)
            ref_dwise_f32(&g, x->data, w->data, b->data, r->data, fused, (float *)wy,
                          (float *)wdx, (float *)wdw, (float *)wdb);
        else
            ref_dwise_f64(&g, x->data, w->data, b->data, r->data, fused, (double *)wy,
                          (double *)wdx, (double *)wdw, (double *)wdb);
        const char *what[] = {"y", "dx", "dW", "db"};
        const void *got[] = {y->data, x->grad->data, w->grad->data, g.bias ? b->grad->data : wdb};
        const char *exp[] = {wy, wdx, wdw, wdb};
        size_t len[] = {ny, nx, nw, no};
        for (int t = 0; t < 4; t++)
            ck_assert_msg(!memcmp(got[t], exp[t], len[t] * es),
                          "%s of depthwise case %d (%s, %s, %d threads) differs from the twin",
                          what[t], k, dt == NB_F32 ? "f32" : "f64", kernels, 1 + _i / 2 % 2);
        free(want);
    }
    nb_ctx_free(ctx);
    nb_set_num_threads(old);
    nb_set_cpu_kernels(old_kernels, NULL, 0);
}
END_TEST

Suite *tst_suite_fast(void)
{
    Suite *s = suite_create("fast");
    TCase *tc = tcase_create("ops on 2 threads");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_threads_match, 0, NCASES);
    suite_add_tcase(s, tc);
    tc = tcase_create("depthwise conv2d against its twin");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_depthwise_matches_twin, 0, 12);
    suite_add_tcase(s, tc);
    tc = tcase_create("optimizers on 2 threads");
    tcase_add_loop_test(tc, test_optim_threads_match, 0, NOPTIMS);
    suite_add_tcase(s, tc);
    return s;
}
