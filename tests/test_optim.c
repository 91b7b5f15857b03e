/* test_optim.c - optimizers against torch.optim, clipping, schedules. */
#include "harness.h"

#include <string.h>

static const double p0[3] = {0.5, -1.0, 2.0};
static const double grads[3][3] = {{0.1, -0.2, 0.3}, {0.4, 0.1, -0.5}, {-0.3, 0.2, 0.1}};

typedef struct optim_case {
    const char *what;
    nb_optim_opts (*opts)(void);
    double want[3]; /* the parameter after the three steps, from torch.optim */
} optim_case;

static nb_optim_opts sgd_plain(void)
{
    nb_optim_opts o = nb_optim_defaults(NB_SGD);
    o.lr = 0.1;
    return o;
}
static nb_optim_opts sgd_momentum_wd(void)
{
    nb_optim_opts o = sgd_plain();
    o.momentum = 0.9;
    o.weight_decay = 0.01;
    return o;
}
static nb_optim_opts sgd_nesterov(void)
{
    nb_optim_opts o = sgd_plain();
    o.momentum = 0.9;
    o.nesterov = true;
    return o;
}
static nb_optim_opts sgd_dampening(void)
{
    nb_optim_opts o = sgd_plain();
    o.momentum = 0.5;
    o.dampening = 0.3;
    return o;
}
static nb_optim_opts adam(void)
{
    nb_optim_opts o = nb_optim_defaults(NB_ADAM);
    o.lr = 0.01;
    return o;
}
static nb_optim_opts adam_wd_betas(void)
{
    nb_optim_opts o = adam();
    o.weight_decay = 0.1;
    o.beta1 = 0.8;
    o.beta2 = 0.99;
    return o;
}
static nb_optim_opts adamw(void)
{
    nb_optim_opts o = nb_optim_defaults(NB_ADAMW);
    o.lr = 0.01;
    return o;
}
static nb_optim_opts rmsprop(void)
{
    nb_optim_opts o = nb_optim_defaults(NB_RMSPROP);
    o.lr = 0.001;
    return o;
}
static nb_optim_opts rmsprop_centered(void)
{
    nb_optim_opts o = nb_optim_defaults(NB_RMSPROP);
    o.momentum = 0.9;
    o.centered = true;
    o.weight_decay = 0.1;
    return o;
}

/* torch 1.13, float64, p = [0.5, -1, 2], three steps with the gradients
 * above. */
static const optim_case cases[] = {
    {"sgd lr 0.1", sgd_plain, {0.48000000000000004, -1.01, 2.0100000000000002}},
    {"sgd momentum 0.9 wd 0.01", sgd_momentum_wd,
     {0.42417538949999994, -0.97926077899999997, 1.9925535679999999}},
    {"sgd nesterov", sgd_nesterov, {0.41420999999999997, -0.99631999999999998, 2.0133299999999998}},
    {"sgd dampening 0.3", sgd_dampening,
     {0.46149999999999997, -0.98949999999999994, 1.9929999999999999}},
    {"adam lr 0.01", adam, {0.47938915337896526, -0.99006359802389343, 1.994091700021106}},
    {"adam wd 0.1 betas (0.8, 0.99)", adam_wd_betas,
     {0.47788675857510077, -0.98170961284314273, 1.9845649434864501}},
    {"adamw lr 0.01", adamw, {0.47924205265472558, -0.98976589425981631, 1.9934934663578419}},
    {"rmsprop lr 0.001", rmsprop, {0.48619967645868079, -1.0011902349982873, 1.9968855367981619}},
    {"rmsprop centered momentum wd", rmsprop_centered,
     {0.097953323457261585, -0.77121736334573643, 1.7840124834623112}},
};

/* Three steps in f64 (to 1e-12) and f32 (to 1e-6), with each kernel
 * variant (_i / 2 % 3): the three weights repeat 13 times, so the updates'
 * vector loops and their tails both run. */
enum { REP = 13 };
START_TEST(test_matches_torch)
{
    const optim_case *c = &cases[_i / 6];
    nb_dtype dt = _i % 2 ? NB_F32 : NB_F64;
    const char *old_kernels = nb_cpu_kernels(), *kernels = tst_kernels[_i / 2 % 3];
    if (!tst_use_kernels(kernels, "the optimizers' updates against torch"))
        return;
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {3 * REP};
    double pv[3 * REP];
    for (int j = 0; j < 3 * REP; j++)
        pv[j] = p0[j % 3];
    nb_tensor *p = tst_make(ctx, dt, 1, s, pv);
    nb_tensor_set_name(p, "w");
    nb_optim_opts o = c->opts();
    nb_optim *opt = nb_optim_new(ctx, &o, 1, &p);
    ck_assert_msg(opt != NULL, "%s", nb_errmsg(ctx));
    nb_tensor *g = tst_make(ctx, dt, 1, s, pv);
    p->grad = g;
    for (int k = 0; k < 3; k++) {
        for (int j = 0; j < 3 * REP; j++)
            nb_set(g, j, grads[k][j % 3]);
        ck_assert_int_eq(nb_optim_step(opt), NB_OK);
    }
    for (int j = 0; j < 3 * REP; j++)
        ck_assert_msg(fabs(nb_get(p, j) - c->want[j % 3]) <= (dt == NB_F64 ? 1e-12 : 1e-6),
                      "%s (%s, %s kernels) element %d: got %.17g, want %.17g", c->what,
                      nb_dtype_name(dt), kernels, j, nb_get(p, j), c->want[j % 3]);
    ck_assert_int_eq(nb_optim_steps(opt), 3);
    nb_optim_free(opt);
    nb_ctx_free(ctx);
    nb_set_cpu_kernels(old_kernels, NULL, 0);
}
END_TEST

/* By hand: Adam's first step moves each weight by about lr against the sign
 * of its gradient (m/sqrt(v) = g/|g| after bias correction). */
START_TEST(test_adam_first_step_by_hand)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {3};
    nb_tensor *p = tst_make(ctx, NB_F64, 1, s, p0);
    nb_optim_opts o = adam();
    nb_optim *opt = nb_optim_new(ctx, &o, 1, &p);
    p->grad = tst_make(ctx, NB_F64, 1, s, grads[0]);
    nb_optim_step(opt);
    tst_assert_values(p, 1, s, (double[]){0.49, -0.99, 1.99}, 1e-6);
    nb_optim_free(opt);
    nb_ctx_free(ctx);
}
END_TEST

/* The state can be saved and put back: a fresh optimizer given the state
 * and step count continues exactly as the original. */
START_TEST(test_state_restore)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {3};
    nb_tensor *a = tst_make(ctx, NB_F64, 1, s, p0), *b = tst_make(ctx, NB_F64, 1, s, p0);
    nb_tensor_set_name(a, "w");
    nb_tensor_set_name(b, "w");
    nb_optim_opts o = adam_wd_betas();
    nb_optim *oa = nb_optim_new(ctx, &o, 1, &a);
    a->grad = tst_make(ctx, NB_F64, 1, s, grads[0]);
    b->grad = tst_make(ctx, NB_F64, 1, s, grads[0]);
    nb_optim_step(oa);
    nb_optim_step(oa);
    ck_assert_int_eq(nb_optim_num_state(oa), 2);
    ck_assert_str_eq(nb_optim_state(oa, 0)->name, "w.exp_avg");
    ck_assert_str_eq(nb_optim_state(oa, 1)->name, "w.exp_avg_sq");
    ck_assert_ptr_null(nb_optim_state(oa, 2));
    /* b: same weights, a new optimizer with a's state. */
    nb_copy_values(b, a);
    nb_optim *ob = nb_optim_new(ctx, &o, 1, &b);
    for (int i = 0; i < nb_optim_num_state(oa); i++)
        nb_copy_values(nb_optim_state(ob, i), nb_optim_state(oa, i));
    nb_optim_set_steps(ob, nb_optim_steps(oa));
    nb_optim_step(oa);
    nb_optim_step(ob);
    for (int j = 0; j < 3; j++)
        ck_assert(nb_get(a, j) == nb_get(b, j));
    nb_optim_free(oa);
    nb_optim_free(ob);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_zero_grad_and_missing_grad)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {3};
    nb_tensor *p = tst_make(ctx, NB_F32, 1, s, p0);
    nb_tensor *q = tst_make(ctx, NB_F32, 1, s, p0);
    nb_tensor *ps[] = {p, q};
    nb_optim_opts o = sgd_plain();
    nb_optim *opt = nb_optim_new(ctx, &o, 2, ps);
    p->grad = tst_make(ctx, NB_F32, 1, s, grads[0]);
    nb_optim_step(opt); /* q has no gradient: untouched */
    tst_assert_values(q, 1, s, p0, 0);
    nb_optim_zero_grad(opt);
    tst_assert_values(p->grad, 1, s, (double[]){0, 0, 0}, 0);
    nb_optim_set_lr(opt, 0.5);
    ck_assert(nb_optim_lr(opt) == 0.5);
    nb_optim_free(opt);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *p = nb_tensor_new(ctx, NB_F32, 1, (int64_t[]){3});
    nb_optim_opts o = nb_optim_defaults(NB_SGD);
    o.lr = -1;
    ck_assert_ptr_null(nb_optim_new(ctx, &o, 1, &p));
    tst_assert_error(ctx, NB_ERR_ARG, "sgd: invalid learning rate -1");
    o = nb_optim_defaults(NB_SGD);
    o.nesterov = true;
    ck_assert_ptr_null(nb_optim_new(ctx, &o, 1, &p));
    tst_assert_error(ctx, NB_ERR_ARG, "sgd: nesterov needs a momentum and zero dampening");
    o = nb_optim_defaults(NB_ADAM);
    o.beta2 = 1;
    ck_assert_ptr_null(nb_optim_new(ctx, &o, 1, &p));
    tst_assert_error(ctx, NB_ERR_ARG, "adam: betas (0.9, 1) must be in [0, 1)");
    ck_assert_int_eq(nb_optim_kind_from_name("rmsprop"), NB_RMSPROP);
    ck_assert_int_eq(nb_optim_kind_from_name("adagrad"), -1);
    ck_assert_str_eq(nb_optim_kind_name(NB_ADAMW), "adamw");
    nb_ctx_free(ctx);
}
END_TEST

/* torch.nn.utils.clip_grad_norm_: norm of [3, 4] and [12] is 13. */
START_TEST(test_clip_grad_norm)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *a = nb_tensor_new(ctx, NB_F64, 1, (int64_t[]){2});
    nb_tensor *b = nb_tensor_new(ctx, NB_F64, 1, (int64_t[]){1});
    a->grad = tst_make(ctx, NB_F64, 1, (int64_t[]){2}, (double[]){3, 4});
    b->grad = tst_make(ctx, NB_F64, 1, (int64_t[]){1}, (double[]){12});
    nb_tensor *ps[] = {a, b};
    ck_assert(fabs(nb_clip_grad_norm(2, ps, 100) - 13) < 1e-12);
    tst_assert_values(b->grad, 1, (int64_t[]){1}, (double[]){12}, 0); /* under the limit */
    ck_assert(fabs(nb_clip_grad_norm(2, ps, 1.3) - 13) < 1e-12);
    double k = 1.3 / (13 + 1e-6);
    tst_assert_values(a->grad, 1, (int64_t[]){2}, (double[]){3 * k, 4 * k}, 1e-12);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_schedules)
{
    /* StepLR(step_size 2, gamma 0.5) from 0.1: 0.1 0.1 0.05 0.05 0.025 */
    ck_assert(fabs(nb_lr_step(0.1, 0, 2, 0.5) - 0.1) < 1e-15);
    ck_assert(fabs(nb_lr_step(0.1, 3, 2, 0.5) - 0.05) < 1e-15);
    ck_assert(fabs(nb_lr_step(0.1, 4, 2, 0.5) - 0.025) < 1e-15);
    /* Cosine over 4 epochs from 0.1 to 0: 0.1, 0.0853553, 0.05, 0.0146447, 0 */
    ck_assert(fabs(nb_lr_cosine(0.1, 0, 4, 0) - 0.1) < 1e-15);
    ck_assert(fabs(nb_lr_cosine(0.1, 1, 4, 0) - 0.08535533905932738) < 1e-15);
    ck_assert(fabs(nb_lr_cosine(0.1, 2, 4, 0) - 0.05) < 1e-15);
    ck_assert(fabs(nb_lr_cosine(0.1, 4, 4, 0.01) - 0.01) < 1e-15);
}
END_TEST

Suite *tst_suite_optim(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tcase_create("optim");
    tcase_add_loop_test(tc, test_matches_torch, 0, 6 * (int)(sizeof cases / sizeof *cases));
    tcase_add_test(tc, test_adam_first_step_by_hand);
    tcase_add_test(tc, test_state_restore);
    tcase_add_test(tc, test_zero_grad_and_missing_grad);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_clip_grad_norm);
    tcase_add_test(tc, test_schedules);
    suite_add_tcase(s, tc);
    return s;
}
