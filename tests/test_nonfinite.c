/*
 * test_nonfinite.c - NaN and infinities through whole models, as PyTorch
 * carries them: a NaN pixel reaches LeNet's loss (relu, and conv2d's fused
 * relu, keep it), the trainer stops on NaN inputs naming the first layer
 * that holds one, and gradient clipping spreads a NaN norm as
 * torch.nn.utils.clip_grad_norm_ does.  Each op's own values are in its
 * op's test file.
 */
#include "harness.h"

#include <string.h>

static bool any_nan(const nb_tensor *t)
{
    for (int64_t i = 0; i < t->numel; i++)
        if (isnan(nb_get(t, i)))
            return true;
    return false;
}

static bool all_finite(const nb_tensor *t, int64_t lo, int64_t hi)
{
    for (int64_t i = lo; i < hi; i++)
        if (!isfinite(nb_get(t, i)))
            return false;
    return true;
}

/* LeNet (models/lenet.json) on three images, one NaN pixel on the right
 * edge of the second: that image's logits are all NaN and the others'
 * finite, the loss is NaN, the first layer holding a NaN is conv1 (its
 * fused relu keeps it), and every weight's gradient holds NaN.  _i:
 * float32 or float64. */
START_TEST(test_lenet_nan_pixel)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F64 : NB_F32;
    nb_model *m = nb_model_load(ctx, MODELS_DIR "/lenet.json", dt);
    ck_assert_msg(m != NULL, "%s", nb_errmsg(ctx));
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_model_init(m, &rng);
    int64_t s[] = {3, 1, 28, 28};
    nb_tensor *x = nb_tensor_new(ctx, dt, 4, s);
    nb_fill_uniform(x, &rng, 0, 1);
    nb_set(x, 28 * 28 + 14 * 28 + 27, NAN);
    nb_tensor *y = nb_model_forward(ctx, m, x);
    ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(y->numel, 30);
    ck_assert(all_finite(y, 0, 10) && all_finite(y, 20, 30));
    for (int64_t i = 10; i < 20; i++)
        ck_assert_msg(isnan(nb_get(y, i)), "logit %lld of the NaN image: %g", (long long)i,
                      nb_get(y, i));
    int first = -1;
    for (int i = 0; i < nb_model_num_layers(m) && first < 0; i++) {
        nb_tensor *a = nb_model_activation(m, i);
        if (a && !all_finite(a, 0, a->numel))
            first = i;
    }
    nb_layer_info info;
    ck_assert_int_eq(nb_model_layer(m, first, &info), NB_OK);
    ck_assert_str_eq(info.name, "conv1");
    nb_tensor *loss = nb_model_loss(ctx, m, y, (int32_t[]){3, 1, 4}, NULL);
    ck_assert(loss && isnan(nb_get(loss, 0)));
    ck_assert_int_eq(nb_backward(ctx, loss), NB_OK);
    int grads = 0;
    for (int i = 0; i < nb_model_num_tensors(m); i++) {
        const nb_tensor *t = nb_model_tensor(m, i);
        if (!t->grad)
            continue;
        ck_assert_msg(any_nan(t->grad), "the gradient of %s holds no NaN", t->name);
        grads++;
    }
    ck_assert_int_eq(grads, 10); /* five layers' weights and biases */
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

static const char conv_json[] =
    "{\"name\": \"conv\", \"input\": [1, 4, 4], \"layers\": ["
    "{\"name\": \"c\", \"type\": \"conv2d\", \"out_channels\": 2, \"kernel_size\": 3,"
    " \"padding\": 1, \"activation\": \"relu\"},"
    "{\"type\": \"max_pool2d\", \"kernel_size\": 2},"
    "{\"type\": \"flatten\"},"
    "{\"name\": \"o\", \"type\": \"linear\", \"out_features\": 2}],"
    " \"loss\": {\"type\": \"cross_entropy\"}, \"optimizer\": {\"type\": \"sgd\", \"lr\": 0.1},"
    " \"training\": {\"batch_size\": 4, \"epochs\": 1}}";

/* Training with a NaN weight stops at the first step, naming the layer
 * whose output is the first to hold a NaN: the conv layer, whose fused relu
 * keeps the NaN, so the loss is NaN too (with relu(NaN) = 0 the loss was
 * finite, and only the gradient told, naming no layer).  A data set holds
 * finite values, and the trainer refuses a NaN normalisation, so the input
 * cannot bring one.  The weights stay as they were. */
START_TEST(test_trainer_nan_weight)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = nb_model_parse(ctx, conv_json, strlen(conv_json), "conv.json",
                                 _i ? NB_F64 : NB_F32);
    ck_assert_msg(m != NULL, "%s", nb_errmsg(ctx));
    nb_rng rng;
    nb_rng_seed(&rng, 2);
    nb_model_init(m, &rng);
    uint8_t px[8 * 16];
    int32_t labels[8];
    for (int i = 0; i < 8 * 16; i++)
        px[i] = (uint8_t)(i * 37 % 251);
    for (int i = 0; i < 8; i++)
        labels[i] = i % 2;
    nb_dataset *ds = nb_dataset_from(ctx, 8, 1, 4, 4, px, labels);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    nb_train_opts t;
    nb_optim_opts o;
    ck_assert_int_eq(nb_model_train_opts(ctx, m, &t, &o), NB_OK);
    t.mean[0] = NAN;
    t.std[0] = 1;
    ck_assert_ptr_null(nb_trainer_new(ctx, m, ds, 0, &t, &o));
    tst_assert_error(ctx, NB_ERR_ARG, "trainer: channel 0's normalisation, mean nan and std 1 "
                     "(std > 0, both finite)");
    t.mean[0] = 0;
    t.std[0] = 0;
    nb_trainer *tr = nb_trainer_new(ctx, m, ds, 0, &t, &o);
    ck_assert_msg(tr != NULL, "%s", nb_errmsg(ctx));
    nb_tensor *w = nb_model_find(m, "c.weight");
    nb_set(w, 0, NAN);
    nb_tensor *w0 = nb_tensor_copy(ctx, w, w->dtype);
    ck_assert_int_eq(nb_trainer_fit(tr, NULL), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG,
                     "step 1 (epoch 1, batch 1): the loss is nan; the output of layer c (conv2d) "
                     "is the first to hold a non-finite value");
    ck_assert_int_eq(nb_trainer_progress(tr)->steps, 0);
    ck_assert(memcmp(w->data, w0->data, (size_t)w->numel * nb_dtype_size(w->dtype)) == 0);
    nb_trainer_free(tr);
    nb_dataset_free(ds);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* torch.nn.utils.clip_grad_norm_ scales by min(max_norm / (norm + 1e-6),
 * 1) always (printed by torch once): a NaN gradient makes the norm and
 * every gradient NaN; an infinite one makes the norm infinite and the
 * scale 0, so the finite gradients 0 and the infinite one NaN; with an
 * infinite limit a NaN norm still makes them all NaN. */
START_TEST(test_clip_nonfinite)
{
    const double inf = INFINITY, nan = NAN;
    nb_ctx *ctx = nb_ctx_new();
    int64_t sa[] = {3}, sb[] = {2};
    nb_tensor *p[2] = {nb_tensor_new(ctx, NB_F32, 1, sa), nb_tensor_new(ctx, NB_F64, 1, sb)};
    const struct {
        double a[3], b[2], max_norm, norm, ga[3], gb[2];
    } cases[] = {
        {{1, nan, 2}, {3, 4}, 10, nan, {nan, nan, nan}, {nan, nan}},
        {{1, inf, 2}, {3, 4}, 10, inf, {0, nan, 0}, {0, 0}},
        {{3, nan, 0}, {0, 4}, inf, nan, {nan, nan, nan}, {nan, nan}},
        {{3, 0, 0}, {0, 4}, inf, 5, {3, 0, 0}, {0, 4}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        p[0]->grad = tst_make(ctx, NB_F32, 1, sa, cases[k].a);
        p[1]->grad = tst_make(ctx, NB_F64, 1, sb, cases[k].b);
        double norm = nb_clip_grad_norm(2, p, cases[k].max_norm);
        ck_assert_msg(norm == cases[k].norm || (isnan(norm) && isnan(cases[k].norm)),
                      "case %zu: norm %g", k, norm);
        tst_assert_values(p[0]->grad, 1, sa, cases[k].ga, 1e-6);
        tst_assert_values(p[1]->grad, 1, sb, cases[k].gb, 1e-12);
    }
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_nonfinite(void)
{
    Suite *s = suite_create("nonfinite");
    TCase *tc = tcase_create("nonfinite");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_lenet_nan_pixel, 0, 2);
    tcase_add_loop_test(tc, test_trainer_nan_weight, 0, 2);
    tcase_add_test(tc, test_clip_nonfinite);
    suite_add_tcase(s, tc);
    return s;
}
