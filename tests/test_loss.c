/* test_loss.c - cross_entropy, mse_loss, hinge_loss, and a small MLP. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static void setup_cross_entropy(tst_env *e, nb_rng *rng)
{
    int64_t s[] = {4, 5};
    tst_tensor_range(e, rng, 2, s, -3, 3);
    memcpy(e->labels, (int32_t[]){2, 0, 4, 1}, 4 * sizeof(int32_t));
}

/* pred and target both get checked. */
static void setup_mse(tst_env *e, nb_rng *rng)
{
    int64_t s[] = {3, 4};
    tst_tensor(e, rng, 2, s);
    tst_tensor(e, rng, 2, s);
}

/* Scores [6, 1] against labels [6]: margins 1 - y f are -1, 0.5, 2.2, 1.3,
 * -0.6, 2.6, all far from the kink at 0. */
static void setup_hinge(tst_env *e, nb_rng *rng)
{
    (void)rng;
    int64_t sf[] = {6, 1}, sy[] = {6};
    tst_tensor_values(e, 2, sf, (double[]){2.0, 0.5, -1.2, 0.3, -1.6, 1.6});
    tst_tensor_values(e, 1, sy, (double[]){1, 1, 1, -1, -1, -1});
}

/* A two-layer MLP: x [4, 5] -> 6 hidden -> 3 classes.  With this seed the
 * hidden pre-activations stay at least 0.008 from relu's kink, far beyond
 * gradcheck's steps of 1e-6. */
static void setup_mlp(tst_env *e, nb_rng *rng)
{
    int64_t sx[] = {4, 5}, sw1[] = {6, 5}, sb1[] = {6}, sw2[] = {3, 6}, sb2[] = {3};
    tst_tensor(e, rng, 2, sx);
    tst_tensor(e, rng, 2, sw1);
    tst_tensor(e, rng, 1, sb1);
    tst_tensor(e, rng, 2, sw2);
    tst_tensor(e, rng, 1, sb2);
    memcpy(e->labels, (int32_t[]){0, 2, 1, 2}, 4 * sizeof(int32_t));
}

static nb_tensor *fwd_cross_entropy(nb_ctx *ctx, tst_env *e)
{
    return nb_cross_entropy(ctx, e->t[0], e->labels);
}
static nb_tensor *fwd_mse(nb_ctx *ctx, tst_env *e) { return nb_mse_loss(ctx, e->t[0], e->t[1]); }
static nb_tensor *fwd_hinge(nb_ctx *ctx, tst_env *e) { return nb_hinge_loss(ctx, e->t[0], e->t[1]); }
static nb_tensor *fwd_mlp(nb_ctx *ctx, tst_env *e)
{
    nb_tensor *h = nb_relu(ctx, nb_linear(ctx, e->t[0], e->t[1], e->t[2]));
    return nb_cross_entropy(ctx, nb_linear(ctx, h, e->t[3], e->t[4]), e->labels);
}

const tst_case tst_cases_loss[] = {
    {"cross_entropy [4,5]", setup_cross_entropy, fwd_cross_entropy},
    {"mse_loss [3,4]", setup_mse, fwd_mse},
    {"hinge_loss [6,1] vs [6]", setup_hinge, fwd_hinge},
    {"cross_entropy(linear(relu(linear(x))))", setup_mlp, fwd_mlp},
    {0},
};

/* logits [[1, 2, 3], [1, 1, 1]], labels [2, 0]: losses -log softmax =
 * 0.40760596 and log 3 = 1.09861229; the gradient (softmax - onehot) / 2. */
START_TEST(test_cross_entropy_values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    double tol = _i ? 1e-6 : 1e-8;
    int64_t s[] = {2, 3};
    int32_t labels[] = {2, 0};
    nb_tensor *z = tst_make(ctx, dt, 2, s, (double[]){1, 2, 3, 1, 1, 1});
    nb_requires_grad(z, true);
    nb_tensor *loss = nb_cross_entropy(ctx, z, labels);
    tst_assert_values(loss, 0, NULL, (double[]){(0.40760596 + 1.09861229) / 2}, tol);
    /* The op keeps its own copy of the labels. */
    labels[0] = labels[1] = 1;
    ck_assert_int_eq(nb_backward(ctx, loss), NB_OK);
    tst_assert_values(z->grad, 2, s,
                      (double[]){0.09003057 / 2, 0.24472847 / 2, (0.66524096 - 1) / 2,
                                 (1.0 / 3 - 1) / 2, 1.0 / 6, 1.0 / 6},
                      tol);
    nb_ctx_free(ctx);
}
END_TEST

/* Logits of +-1000: e^1000 overflows, the max-shifted sum does not.
 * Losses 0 and 2000, gradient rows [0, 0] and [-1, 1] / 2. */
START_TEST(test_cross_entropy_stable)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {2, 2};
    nb_tensor *z = tst_make(ctx, _i ? NB_F32 : NB_F64, 2, s,
                            (double[]){1000, -1000, -1000, 1000});
    nb_requires_grad(z, true);
    nb_tensor *loss = nb_cross_entropy(ctx, z, (int32_t[]){0, 0});
    tst_assert_values(loss, 0, NULL, (double[]){1000}, 0);
    ck_assert_int_eq(nb_backward(ctx, loss), NB_OK);
    tst_assert_values(z->grad, 2, s, (double[]){0, 0, -0.5, 0.5}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* pred - target = [-0.5, 0, 2, -1]: mean of squares 5.25 / 4; the gradient
 * 2 (pred - target) / 4 for pred, its negative for target. */
START_TEST(test_mse_values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    int64_t s[] = {2, 2};
    nb_tensor *p = tst_make(ctx, dt, 2, s, (double[]){1, 2, 3, 4});
    nb_tensor *t = tst_make(ctx, dt, 2, s, (double[]){1.5, 2, 1, 5});
    nb_requires_grad(p, true);
    nb_requires_grad(t, true);
    nb_tensor *loss = nb_mse_loss(ctx, p, t);
    tst_assert_values(loss, 0, NULL, (double[]){1.3125}, 0);
    ck_assert_int_eq(nb_backward(ctx, loss), NB_OK);
    tst_assert_values(p->grad, 2, s, (double[]){-0.25, 0, 1, -0.5}, 0);
    tst_assert_values(t->grad, 2, s, (double[]){0.25, 0, -1, 0.5}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* f = [2, 0.5, -1], y = [1, 1, 1]: max(0, 1 - y f) = [0, 0.5, 2], mean 5/6.
 * y = [-1, 1, -1] with f = [2, 0.5, -3]: [3, 0.5, 0], mean 7/6, and df =
 * -y / 3 where the margin is positive. */
START_TEST(test_hinge_values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    double tol = _i ? 1e-6 : 1e-12;
    int64_t s[] = {3}, sf[] = {3, 1};
    nb_tensor *f = tst_make(ctx, dt, 1, s, (double[]){2, 0.5, -1});
    nb_tensor *y = tst_make(ctx, dt, 1, s, (double[]){1, 1, 1});
    tst_assert_values(nb_hinge_loss(ctx, f, y), 0, NULL, (double[]){5.0 / 6}, tol);
    nb_tensor *f2 = tst_make(ctx, dt, 2, sf, (double[]){2, 0.5, -3});
    nb_tensor *y2 = tst_make(ctx, dt, 1, s, (double[]){-1, 1, -1});
    nb_requires_grad(f2, true);
    nb_tensor *loss = nb_hinge_loss(ctx, f2, y2);
    tst_assert_values(loss, 0, NULL, (double[]){7.0 / 6}, tol);
    ck_assert_int_eq(nb_backward(ctx, loss), NB_OK);
    tst_assert_values(f2->grad, 2, sf, (double[]){1.0 / 3, -1.0 / 3, 0}, tol);
    ck_assert_ptr_null(y2->grad);
    nb_ctx_free(ctx);
}
END_TEST

/* NaN and infinities, as PyTorch 1.13 gives them (printed by torch once,
 * float64).  A row with a NaN, or an infinity that leaves inf - inf, has a
 * NaN loss and gradient; a -inf logit is a probability of 0, an infinite
 * loss when it is the label's.  An infinite dloss multiplies softmax and
 * the label's -1 apart (PyTorch's log_softmax backward), so the label's
 * entry is inf - inf. */
START_TEST(test_cross_entropy_nonfinite)
{
    const double inf = INFINITY, nan = NAN;
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i % 2 ? NB_F64 : NB_F32;
    double tol = dt == NB_F32 ? 1e-6 : 1e-12;
    const double p[3] = {0.09003057317038045, 0.2447284710547976, 0.6652409557748218};
    int64_t s2[] = {2, 3}, s1[] = {1, 3};
    nb_tensor *a = tst_make(ctx, dt, 2, s2, (double[]){1, 2, 3, 1, -inf, 3});
    nb_requires_grad(a, true);
    nb_tensor *loss = nb_cross_entropy(ctx, a, (int32_t[]){0, 0});
    tst_assert_values(loss, 0, NULL, (double[]){(2.4076059644443806 + 2.1269280110429727) / 2},
                      tol);
    ck_assert_int_eq(nb_backward(ctx, loss), NB_OK);
    tst_assert_values(a->grad, 2, s2,
                      (double[]){(p[0] - 1) / 2, p[1] / 2, p[2] / 2, -0.8807970779778824 / 2, 0,
                                 0.8807970779778823 / 2},
                      tol);
    nb_tensor *b = tst_make(ctx, dt, 2, s1, (double[]){1, -inf, 3});
    nb_requires_grad(b, true);
    loss = nb_cross_entropy(ctx, b, (int32_t[]){1});
    tst_assert_values(loss, 0, NULL, (double[]){inf}, 0);
    ck_assert_int_eq(nb_backward(ctx, loss), NB_OK);
    tst_assert_values(b->grad, 2, s1, (double[]){0.11920292202211753, -1, 0.8807970779778823},
                      tol);
    const double bad[][3] = {{1, inf, 3}, {-inf, -inf, -inf}, {inf, inf, 1}, {inf, -inf, 0}};
    for (int k = 0; k < 4; k++) {
        nb_tensor *z = tst_make(ctx, dt, 2, s1, bad[k]);
        nb_requires_grad(z, true);
        loss = nb_cross_entropy(ctx, z, (int32_t[]){0});
        tst_assert_values(loss, 0, NULL, (double[]){nan}, 0);
        ck_assert_int_eq(nb_backward(ctx, loss), NB_OK);
        tst_assert_values(z->grad, 2, s1, (double[]){nan, nan, nan}, 0);
    }
    /* dloss infinite, then NaN: logits [[1, 2, 3], [4, 5, 6]], labels [0, 1]. */
    const double dloss[2] = {inf, nan};
    const double want[2][6] = {{nan, inf, inf, inf, nan, inf}, {nan, nan, nan, nan, nan, nan}};
    for (int k = 0; k < 2; k++) {
        nb_tensor *z = tst_make(ctx, dt, 2, s2, (double[]){1, 2, 3, 4, 5, 6});
        nb_requires_grad(z, true);
        loss = nb_scale(ctx, nb_cross_entropy(ctx, z, (int32_t[]){0, 1}), dloss[k]);
        ck_assert_int_eq(nb_backward(ctx, loss), NB_OK);
        tst_assert_values(z->grad, 2, s2, want[k], 0);
    }
    /* A NaN row among finite ones, past the threads' threshold (_i / 2 + 1
     * threads): only its row is NaN. */
    enum { REP = 4000, N = 3 * REP };
    int old = nb_set_num_threads(1 + _i / 2);
    int64_t sn[] = {N, 3};
    double *zv = malloc(sizeof *zv * N * 3), gw[9];
    int32_t *labels = malloc(sizeof *labels * N);
    const double rows[9] = {1, 2, 3, 1, nan, 3, 4, 5, 6};
    for (int i = 0; i < N * 3; i++)
        zv[i] = rows[i % 9];
    for (int i = 0; i < N; i++)
        labels[i] = i % 3;
    for (int j = 0; j < 3; j++) {
        gw[j] = (p[j] - (j == 0)) / N;
        gw[3 + j] = nan;
        gw[6 + j] = (p[j] - (j == 2)) / N;
    }
    nb_tensor *z = tst_make(ctx, dt, 2, sn, zv);
    nb_requires_grad(z, true);
    loss = nb_cross_entropy(ctx, z, labels);
    tst_assert_values(loss, 0, NULL, (double[]){nan}, 0);
    ck_assert_int_eq(nb_backward(ctx, loss), NB_OK);
    tst_assert_pattern(z->grad, gw, 9, tol, "cross_entropy gradient");
    free(zv);
    free(labels);
    nb_set_num_threads(old);
    nb_ctx_free(ctx);
}
END_TEST

/* mse and hinge with NaN and infinities, as PyTorch 1.13 gives them
 * (printed by torch once): mse as F.mse_loss, hinge as
 * torch.relu(1 - y * f).mean(), whose backward passes a NaN margin (relu's)
 * and multiplies the other factor even where the margin is negative, so an
 * infinite one there gives NaN.  The patterns repeat past the threads'
 * threshold: _i runs float32 and float64 (_i % 2) on 1 and 2 threads
 * (_i / 2); with n elements the gradients are the patterns' / n. */
START_TEST(test_mse_hinge_nonfinite)
{
    const double inf = INFINITY, nan = NAN;
    enum { REP = 7000, N = 6 * REP };
    nb_dtype dt = _i % 2 ? NB_F64 : NB_F32;
    double tol = dt == NB_F32 ? 1e-9 : 1e-15;
    int old = nb_set_num_threads(1 + _i / 2);
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {N};
    const double mp[6] = {1, nan, inf, -inf, 2, 3}, mt[6] = {0.5, 1, 1, 1, inf, 3};
    const double dmp[6] = {1.0 / N, nan, inf, -inf, -inf, 0};
    const double hf[6] = {nan, inf, -inf, 0.5, 2, 0}, hy[6] = {1, 1, 1, -1, 1, inf};
    const double dhf[6] = {-1.0 / N, 0, -1.0 / N, 1.0 / N, 0, -inf};
    const double dhy[6] = {nan, nan, inf, -0.5 / N, 0, 0};
    double dmt[6], *av = malloc(sizeof *av * N), *bv = malloc(sizeof *bv * N);
    for (int k = 0; k < 6; k++)
        dmt[k] = -dmp[k];
    for (int hinge = 0; hinge < 2; hinge++) {
        for (int i = 0; i < N; i++) {
            av[i] = (hinge ? hf : mp)[i % 6];
            bv[i] = (hinge ? hy : mt)[i % 6];
        }
        nb_tensor *a = tst_make(ctx, dt, 1, s, av), *b = tst_make(ctx, dt, 1, s, bv);
        nb_requires_grad(a, true);
        nb_requires_grad(b, true);
        nb_tensor *loss = hinge ? nb_hinge_loss(ctx, a, b) : nb_mse_loss(ctx, a, b);
        tst_assert_values(loss, 0, NULL, (double[]){nan}, 0);
        ck_assert_int_eq(nb_backward(ctx, loss), NB_OK);
        tst_assert_pattern(a->grad, hinge ? dhf : dmp, 6, tol, hinge ? "hinge df" : "mse dp");
        tst_assert_pattern(b->grad, hinge ? dhy : dmt, 6, tol, hinge ? "hinge dy" : "mse dt");
        nb_graph_reset(ctx);
    }
    /* A NaN margin is NaN in the loss too (not max(0, NaN) = 0). */
    int64_t s2[] = {2};
    nb_tensor *f = tst_make(ctx, dt, 1, s2, (double[]){nan, 0.5});
    nb_tensor *y = tst_make(ctx, dt, 1, s2, (double[]){1, 1});
    tst_assert_values(nb_hinge_loss(ctx, f, y), 0, NULL, (double[]){nan}, 0);
    /* An infinite dloss: mse gives inf, or NaN where p - t is 0; hinge
     * inf where the margin is positive, 0 elsewhere. */
    nb_tensor *p = tst_make(ctx, dt, 1, s2, (double[]){1, 2});
    nb_tensor *t = tst_make(ctx, dt, 1, s2, (double[]){0, 2});
    nb_requires_grad(p, true);
    nb_requires_grad(t, true);
    ck_assert_int_eq(nb_backward(ctx, nb_scale(ctx, nb_mse_loss(ctx, p, t), inf)), NB_OK);
    tst_assert_values(p->grad, 1, s2, (double[]){inf, nan}, 0);
    tst_assert_values(t->grad, 1, s2, (double[]){-inf, nan}, 0);
    nb_tensor *f2 = tst_make(ctx, dt, 1, s2, (double[]){0.5, 2});
    nb_requires_grad(f2, true);
    ck_assert_int_eq(nb_backward(ctx, nb_scale(ctx, nb_hinge_loss(ctx, f2, y), inf)), NB_OK);
    tst_assert_values(f2->grad, 1, s2, (double[]){-inf, 0}, 0);
    free(av);
    free(bv);
    nb_ctx_free(ctx);
    nb_set_num_threads(old);
}
END_TEST

START_TEST(test_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s1[] = {5}, s2[] = {4, 5}, s3[] = {4, 5, 1}, s4[] = {5, 4}, s5[] = {4, 1};
    nb_tensor *z1 = nb_tensor_new(ctx, NB_F32, 1, s1);
    nb_tensor *z = nb_tensor_new(ctx, NB_F32, 2, s2);
    nb_tensor *z3 = nb_tensor_new(ctx, NB_F32, 3, s3);
    nb_tensor *zt = nb_tensor_new(ctx, NB_F32, 2, s4);
    nb_tensor *f = nb_tensor_new(ctx, NB_F32, 2, s5);
    int32_t labels[] = {0, 1, 4, 7};

    ck_assert_ptr_null(nb_cross_entropy(ctx, z1, labels));
    tst_assert_error(ctx, NB_ERR_ARG, "cross_entropy: logits [5] must be 2-D [N, C]");
    ck_assert_ptr_null(nb_cross_entropy(ctx, z3, labels));
    tst_assert_error(ctx, NB_ERR_ARG, "cross_entropy: logits [4, 5, 1] must be 2-D [N, C]");
    ck_assert_ptr_null(nb_cross_entropy(ctx, z, labels));
    tst_assert_error(ctx, NB_ERR_ARG, "cross_entropy: label 7 at index 3 is outside [0, 5)");
    ck_assert_ptr_null(nb_cross_entropy(ctx, z, (int32_t[]){0, -1, 0, 0}));
    tst_assert_error(ctx, NB_ERR_ARG, "cross_entropy: label -1 at index 1 is outside [0, 5)");
    ck_assert_ptr_null(nb_cross_entropy(ctx, z, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "cross_entropy: labels is NULL");
    nb_clear_error(ctx);
    ck_assert_ptr_null(nb_cross_entropy(ctx, NULL, labels));
    tst_assert_error(ctx, NB_ERR_ARG, "cross_entropy: input 0 is NULL");

    ck_assert_ptr_null(nb_mse_loss(ctx, z, zt));
    tst_assert_error(ctx, NB_ERR_ARG, "mse_loss: pred [4, 5] and target [5, 4] differ in shape");
    ck_assert_ptr_null(nb_hinge_loss(ctx, f, z1));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "hinge_loss: scores [4, 1] have 4 elements, labels [5] have 5");
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_loss(void)
{
    Suite *s = suite_create("loss");
    TCase *tc = tcase_create("loss");
    tcase_add_loop_test(tc, test_cross_entropy_values, 0, 2);
    tcase_add_loop_test(tc, test_cross_entropy_stable, 0, 2);
    tcase_add_loop_test(tc, test_mse_values, 0, 2);
    tcase_add_loop_test(tc, test_hinge_values, 0, 2);
    tcase_add_loop_test(tc, test_cross_entropy_nonfinite, 0, 4);
    tcase_add_loop_test(tc, test_mse_hinge_nonfinite, 0, 4);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}
