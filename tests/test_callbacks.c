/*
 * test_callbacks.c - frozen layers ("trainable": false, nb_model_freeze,
 * batch norms' frozen statistics) and the training section's callbacks:
 * early stopping and its restored weights, keep_best's marks, the rates of
 * reduce_lr_on_plateau and warmup against Keras's rules replayed on the
 * run's own history, resuming with them to the same bits, and their
 * refusals.
 */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* conv, batch norm and a linear layer: something to freeze in each. */
static const char net_json[] =
    "{\"name\": \"net\", \"input\": [1, 4, 4], \"layers\": ["
    "{\"name\": \"c\", \"type\": \"conv2d\", \"out_channels\": 3, \"kernel_size\": 3,"
    " \"padding\": 1 %s},"
    "{\"name\": \"bn\", \"type\": \"batch_norm\" %s},"
    "{\"type\": \"relu\"},"
    "{\"type\": \"flatten\"},"
    "{\"name\": \"o\", \"type\": \"linear\", \"out_features\": 3}],"
    " \"loss\": {\"type\": \"cross_entropy\"},"
    " \"optimizer\": {\"type\": \"adam\", \"lr\": 0.03},"
    " \"training\": {\"batch_size\": 4, \"epochs\": %d, \"validation_split\": 0.3, \"seed\": 3"
    " %s}}";

/* The model with `conv` and `bn` added to those layers' fields and
 * `training` to its training section. */
static nb_model *net(nb_ctx *ctx, const char *conv, const char *bn, int epochs,
                     const char *training)
{
    char json[2048];
    snprintf(json, sizeof json, net_json, conv, bn, epochs, training);
    nb_model *m = nb_model_parse(ctx, json, strlen(json), "net.json", NB_F32);
    ck_assert_msg(m != NULL, "%s", nb_errmsg(ctx));
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    nb_model_init(m, &rng);
    return m;
}

/* 40 noisy 4x4 images of three classes: few enough to overfit. */
static nb_dataset *data(nb_ctx *ctx)
{
    uint8_t px[40 * 16];
    int32_t labels[40];
    uint64_t s = 5;
    for (int i = 0; i < 40; i++) {
        labels[i] = i % 3;
        for (int k = 0; k < 16; k++) {
            s = s * 6364136223846793005u + 1442695040888963407u;
            int lit = (labels[i] == 0 && k < 8) || (labels[i] == 1 && k % 4 < 2) ||
                      (labels[i] == 2 && k % 5 == 0);
            px[i * 16 + k] = (uint8_t)((s >> 57) + (lit ? 90 : 0));
        }
    }
    nb_dataset *ds = nb_dataset_from(ctx, 40, 1, 4, 4, px, labels);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    return ds;
}

static nb_trainer *trainer(nb_ctx *ctx, nb_model *m, nb_dataset *ds)
{
    nb_train_opts t;
    nb_optim_opts o;
    ck_assert_int_eq(nb_model_train_opts(ctx, m, &t, &o), NB_OK);
    nb_trainer *tr = nb_trainer_new(ctx, m, ds, 0, &t, &o);
    ck_assert_msg(tr != NULL, "%s", nb_errmsg(ctx));
    return tr;
}

static bool same(const nb_tensor *a, const nb_tensor *b)
{
    return a->numel == b->numel &&
           memcmp(a->data, b->data, (size_t)a->numel * nb_dtype_size(a->dtype)) == 0;
}

/* Copies of the model's tensors, to compare with later. */
static nb_tensor **snapshot(nb_ctx *ctx, const nb_model *m)
{
    int n = nb_model_num_tensors(m);
    nb_tensor **s = calloc((size_t)n, sizeof *s);
    for (int i = 0; i < n; i++)
        s[i] = nb_tensor_copy(ctx, nb_model_tensor(m, i), NB_F32);
    return s;
}

static void snapshot_free(nb_tensor **s, int n)
{
    for (int i = 0; i < n; i++)
        nb_tensor_free(s[i]);
    free(s);
}

/* ---- frozen layers ----------------------------------------------------------- */

/* Frozen in the file (i 0) or by nb_model_freeze (i 1): c's tensors and
 * bn's statistics keep their bits, o's change, and the counts and the
 * optimizer's state leave c out. */
START_TEST(test_frozen_layers)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = _i == 0 ? net(ctx, ", \"trainable\": false",
                                     ", \"trainable\": false, \"freeze_stats\": true", 3, "")
                          : net(ctx, "", "", 3, "");
    nb_model *plain = net(ctx, "", "", 3, "");
    uint64_t plain_digest = nb_model_digest(plain);
    if (_i == 1) {
        ck_assert_int_eq(nb_model_digest(m), plain_digest);
        ck_assert_int_eq(nb_model_freeze(m, "c", false), NB_OK);
        ck_assert_int_eq(nb_model_freeze(m, "bn", false), NB_OK);
        ck_assert_int_eq(nb_model_freeze(m, "bn", true), NB_OK);
    }
    ck_assert_uint_ne(nb_model_digest(m), plain_digest);
    /* c: 27 + 3; bn: 3 + 3 frozen, and 6 of statistics; o: 48 * 3 + 3. */
    ck_assert_int_eq(nb_model_num_params(m, true), 147);
    ck_assert_int_eq(nb_model_num_params(m, false), 30 + 6 + 6);
    ck_assert_int_eq(nb_model_num_params(plain, true), 30 + 6 + 147);
    nb_layer_info info;
    ck_assert_int_eq(nb_model_layer(m, 0, &info), NB_OK);
    ck_assert(!info.trainable);
    ck_assert_int_eq(info.params, 30);
    nb_model_layer(m, 4, &info);
    ck_assert(info.trainable);

    nb_dataset *ds = data(ctx);
    nb_tensor **before = snapshot(ctx, m);
    nb_trainer *tr = trainer(ctx, m, ds), *tp = trainer(ctx, plain, ds);
    /* adam: two buffers for each of o's two tensors only. */
    ck_assert_int_eq(nb_optim_num_state(nb_trainer_optim(tr)), 4);
    ck_assert_int_eq(nb_optim_num_state(nb_trainer_optim(tp)), 12);
    ck_assert_int_eq(nb_trainer_fit(tr, NULL), NB_OK);
    for (int i = 0; i < nb_model_num_tensors(m); i++) {
        const nb_tensor *t = nb_model_tensor(m, i);
        bool frozen = strncmp(t->name, "c.", 2) == 0 || strncmp(t->name, "bn.", 3) == 0;
        ck_assert_msg(same(t, before[i]) == frozen, "%s %s", t->name,
                      frozen ? "changed" : "did not change");
    }
    nb_trainer_free(tr);
    nb_trainer_free(tp);
    snapshot_free(before, nb_model_num_tensors(m));
    nb_dataset_free(ds);
    nb_model_free(m);
    nb_model_free(plain);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_freeze_refused)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = net(ctx, "", "", 1, "");
    ck_assert_int_eq(nb_model_freeze(m, "nope", false), NB_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(nb_errmsg(ctx), "no layer named \"nope\""));
    ck_assert_int_eq(nb_model_freeze(m, "c", true), NB_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(nb_errmsg(ctx), "only a batch_norm"));
    nb_model_free(m);
    static const char *const bad[][3] = {
        {", \"trainable\": 0", "", "layers[0].trainable: expected true or false"},
        {"", ", \"freeze_stats\": 1", "freeze_stats"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char json[2048];
        snprintf(json, sizeof json, net_json, bad[i][0], bad[i][1], 1, "");
        ck_assert_ptr_null(nb_model_parse(ctx, json, strlen(json), "net.json", NB_F32));
        ck_assert_msg(strstr(nb_errmsg(ctx), bad[i][2]), "%s", nb_errmsg(ctx));
    }
    nb_ctx_free(ctx);
}
END_TEST

/* ---- callbacks ----------------------------------------------------------------- */

/* What on_epoch saw: each epoch's metrics and the weights after it. */
typedef struct seen {
    nb_epoch_metrics e[64];
    nb_tensor **w[64];
    int n;
    nb_ctx *ctx;
    nb_model *m;
} seen;

static int watch(nb_trainer *tr, const nb_epoch_metrics *e, void *ud)
{
    (void)tr;
    seen *s = ud;
    ck_assert_int_lt(s->n, 64);
    s->e[s->n] = *e;
    s->w[s->n++] = snapshot(s->ctx, s->m);
    return 0;
}

static void seen_free(seen *s)
{
    for (int i = 0; i < s->n; i++)
        snapshot_free(s->w[i], nb_model_num_tensors(s->m));
}

/* Early stopping on val_loss with patience 2, and keep_best on the same:
 * the run stops where Keras's rule, replayed on its own history, says,
 * marks the epochs that improved, and ends with the best epoch's weights. */
START_TEST(test_early_stopping)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = net(ctx, "", "", 60, ", \"early_stopping\": {\"patience\": 2},"
                                       " \"keep_best\": \"val_loss\"");
    nb_dataset *ds = data(ctx);
    nb_trainer *tr = trainer(ctx, m, ds);
    seen s = {.ctx = ctx, .m = m};
    nb_trainer_callbacks cb = {NULL, watch, &s};
    ck_assert_int_eq(nb_trainer_fit(tr, &cb), NB_OK);
    double best = INFINITY;
    int best_epoch = 0, wait = 0, stop = 0;
    for (int i = 0; i < s.n && !stop; i++) {
        bool better = s.e[i].val_loss < best;
        ck_assert_int_eq(s.e[i].best, better);
        if (better) {
            best = s.e[i].val_loss;
            best_epoch = i + 1;
            wait = 0;
        } else if (++wait >= 2) {
            stop = i + 1;
        }
    }
    ck_assert_msg(stop > 0 && stop < 60, "the run should overfit and stop (%d epochs)", s.n);
    ck_assert_int_eq(s.n, stop);
    ck_assert(s.e[stop - 1].stopped);
    ck_assert_int_eq(s.e[stop - 1].restored, best_epoch);
    for (int i = 0; i < stop - 1; i++)
        ck_assert(!s.e[i].stopped && !s.e[i].restored);
    int n;
    nb_trainer_history(tr, &n);
    ck_assert_int_eq(n, stop);
    for (int i = 0; i < nb_model_num_tensors(m); i++)
        ck_assert_msg(same(nb_model_tensor(m, i), s.w[best_epoch - 1][i]), "%s is not epoch %d's",
                      nb_model_tensor(m, i)->name, best_epoch);
    /* A second fit does nothing more. */
    ck_assert_int_eq(nb_trainer_fit(tr, &cb), NB_OK);
    ck_assert_int_eq(s.n, stop);
    seen_free(&s);
    nb_trainer_free(tr);
    nb_dataset_free(ds);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* The rate of each epoch (its last step's) against the rules: warmup over
 * 2 epochs or 7 steps (epochs of 7 batches), then the plateau's factor
 * 0.5 after 1 epoch without val_accuracy improving by more than 0.01,
 * down to 0.004, over a step schedule. */
START_TEST(test_rates)
{
    nb_ctx *ctx = nb_ctx_new();
    const char *warmup = _i ? "{\"steps\": 9}" : "{\"epochs\": 2}";
    char training[512];
    snprintf(training, sizeof training,
             ", \"warmup\": %s, \"lr_schedule\": {\"type\": \"step\", \"step_size\": 5, "
             "\"gamma\": 0.5}, \"reduce_lr_on_plateau\": {\"monitor\": \"val_accuracy\", "
             "\"factor\": 0.5, \"patience\": 1, \"min_delta\": 0.01, \"min_lr\": 0.004}",
             warmup);
    nb_model *m = net(ctx, "", "", 14, training);
    nb_dataset *ds = data(ctx);
    nb_trainer *tr = trainer(ctx, m, ds);
    ck_assert_int_eq(nb_trainer_fit(tr, NULL), NB_OK);
    int n;
    const nb_epoch_metrics *h = nb_trainer_history(tr, &n);
    ck_assert_int_eq(n, 14);
    nb_train_opts t;
    nb_model_train_opts(ctx, m, &t, NULL);
    int64_t batches = nb_trainer_progress(tr)->batches;
    ck_assert_int_eq(batches, 7); /* 28 examples train, in batches of 4 */
    double best = -INFINITY, scale = 1;
    int wait = 0, reductions = 0;
    for (int i = 0; i < n; i++) {
        double lr = nb_schedule_lr(&t, 0.03, i);
        if (scale < 1 && lr > 0.004)
            lr = fmax(lr * scale, 0.004);
        int64_t last = (int64_t)(i + 1) * batches - 1; /* the epoch's last step */
        if (_i == 0 && i < 2)
            lr *= (i + 1) / 2.0;
        if (_i == 1 && last < 9)
            lr *= (double)(last + 1) / 9;
        ck_assert_msg(h[i].lr == lr, "epoch %d: lr %.17g, expected %.17g", i + 1, h[i].lr, lr);
        if (h[i].val_accuracy > best + 0.01) {
            best = h[i].val_accuracy;
            wait = 0;
        } else if (++wait >= 1) {
            if (h[i].lr > 0.004) {
                scale *= 0.5;
                reductions++;
            }
            wait = 0;
        }
    }
    ck_assert_msg(reductions > 0, "no plateau in %d epochs", n);
    nb_trainer_free(tr);
    nb_dataset_free(ds);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

static int stop_at(nb_trainer *tr, const nb_train_progress *p, void *ud)
{
    (void)tr;
    return p->steps == *(int64_t *)ud;
}

/* Stopped at a step and resumed from a checkpoint: the same weights and
 * history as a run never stopped, early stopping and its best weights,
 * the plateau and the warmup included; another callback setting is
 * refused, named. */
START_TEST(test_resume_with_callbacks)
{
    static const char training[] =
        ", \"early_stopping\": {\"patience\": 3, \"min_delta\": 0.001}, \"keep_best\": \"loss\","
        " \"reduce_lr_on_plateau\": {\"patience\": 1}, \"warmup\": {\"steps\": 10}";
    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = data(ctx);
    nb_model *whole = net(ctx, "", "", 60, training);
    nb_trainer *tw = trainer(ctx, whole, ds);
    ck_assert_int_eq(nb_trainer_fit(tw, NULL), NB_OK);
    int nw;
    const nb_epoch_metrics *hw = nb_trainer_history(tw, &nw);
    ck_assert_msg(hw[nw - 1].stopped && nw < 60, "it should stop early (%d epochs)", nw);

    char dir[256], path[300];
    snprintf(dir, sizeof dir, "%s/nabla-callbacks.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    /* Inside the second epoch, then two epochs before the stop. */
    int64_t at[2] = {9, (int64_t)(nw - 2) * 7 + 3};
    nb_model *m = net(ctx, "", "", 60, training);
    nb_trainer *tr = trainer(ctx, m, ds);
    for (int k = 0; k < 3; k++) {
        nb_trainer_callbacks cb = {stop_at, NULL, &at[k < 2 ? k : 0]};
        int rc = nb_trainer_fit(tr, k < 2 ? &cb : NULL);
        ck_assert_int_eq(rc, k < 2 ? NB_TRAIN_STOPPED : NB_OK);
        if (k == 2)
            break;
        ck_assert_int_eq(nb_trainer_save(tr, path), NB_OK);
        nb_trainer_free(tr);
        nb_model_free(m);
        m = net(ctx, "", "", 60, training);
        tr = trainer(ctx, m, ds);
        ck_assert_msg(nb_trainer_resume(tr, path) == NB_OK, "%s", nb_errmsg(ctx));
    }
    int n;
    const nb_epoch_metrics *h = nb_trainer_history(tr, &n);
    ck_assert_int_eq(n, nw);
    for (int i = 0; i < n; i++) {
        ck_assert(h[i].val_loss == hw[i].val_loss && h[i].lr == hw[i].lr);
        ck_assert(h[i].best == hw[i].best && h[i].stopped == hw[i].stopped);
        ck_assert_int_eq(h[i].restored, hw[i].restored);
    }
    for (int i = 0; i < nb_model_num_tensors(m); i++)
        ck_assert_msg(same(nb_model_tensor(m, i), nb_model_tensor(whole, i)), "%s differs",
                      nb_model_tensor(m, i)->name);
    /* Resuming the stopped run trains no more. */
    ck_assert_int_eq(nb_trainer_save(tr, path), NB_OK);
    nb_model *again = net(ctx, "", "", 60, training);
    nb_trainer *ta = trainer(ctx, again, ds);
    ck_assert_int_eq(nb_trainer_resume(ta, path), NB_OK);
    ck_assert_int_eq(nb_trainer_fit(ta, NULL), NB_OK);
    nb_trainer_history(ta, &n);
    ck_assert_int_eq(n, nw);
    nb_trainer_free(ta);
    nb_model_free(again);
    /* Other patience: refused, naming the setting. */
    nb_model *other = net(ctx, "", "", 60, ", \"early_stopping\": {\"patience\": 4}");
    nb_trainer *to = trainer(ctx, other, ds);
    ck_assert_int_eq(nb_trainer_resume(to, path), NB_ERR_ARG);
    ck_assert_msg(strstr(nb_errmsg(ctx), "early_stopping"), "%s", nb_errmsg(ctx));
    nb_trainer_free(to);
    nb_model_free(other);
    unlink(path);
    rmdir(dir);
    nb_trainer_free(tr);
    nb_model_free(m);
    nb_trainer_free(tw);
    nb_model_free(whole);
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_callbacks_refused)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = data(ctx);
    /* Watching validation without validation examples. */
    char json[2048];
    snprintf(json, sizeof json, net_json, "", "", 2, ", \"keep_best\": \"val_accuracy\"");
    char *split = strstr(json, "0.3");
    memcpy(split, "0  ", 3);
    nb_model *m = nb_model_parse(ctx, json, strlen(json), "net.json", NB_F32);
    ck_assert_ptr_nonnull(m);
    nb_train_opts t;
    nb_optim_opts o;
    nb_model_train_opts(ctx, m, &t, &o);
    ck_assert_ptr_null(nb_trainer_new(ctx, m, ds, 0, &t, &o));
    ck_assert_msg(strstr(nb_errmsg(ctx), "keep_best watches val_accuracy, but there are no "
                         "validation examples"), "%s", nb_errmsg(ctx));
    t.keep_best = NB_MONITOR_ACCURACY; /* the training batches' is fine */
    nb_trainer *tr = nb_trainer_new(ctx, m, ds, 0, &t, &o);
    ck_assert_msg(tr != NULL, "%s", nb_errmsg(ctx));
    nb_trainer_free(tr);
    t.plateau.monitor = NB_MONITOR_LOSS;
    t.plateau.factor = 1;
    ck_assert_ptr_null(nb_trainer_new(ctx, m, ds, 0, &t, &o));
    ck_assert_ptr_nonnull(strstr(nb_errmsg(ctx), "factor in (0, 1)"));
    nb_model_free(m);
    static const char *const bad[][2] = {
        {", \"warmup\": {\"epochs\": 2, \"steps\": 3}", "training.warmup: give epochs or steps"},
        {", \"keep_best\": \"val_los\"", "training.keep_best"},
        {", \"early_stopping\": {\"patience\": -1}", "training.early_stopping.patience"},
        {", \"reduce_lr_on_plateau\": {\"factor\": 1}", "training.reduce_lr_on_plateau.factor"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(json, sizeof json, net_json, "", "", 2, bad[i][0]);
        ck_assert_ptr_null(nb_model_parse(ctx, json, strlen(json), "net.json", NB_F32));
        ck_assert_msg(strstr(nb_errmsg(ctx), bad[i][1]), "%s", nb_errmsg(ctx));
    }
    ck_assert_str_eq(nb_monitor_name(NB_MONITOR_VAL_ACCURACY), "val_accuracy");
    ck_assert_int_eq(nb_monitor_from_name("loss"), NB_MONITOR_LOSS);
    ck_assert_int_eq(nb_monitor_from_name("lost"), -1);
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_callbacks(void)
{
    Suite *s = suite_create("callbacks");
    TCase *tc = tcase_create("callbacks");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_frozen_layers, 0, 2);
    tcase_add_test(tc, test_freeze_refused);
    tcase_add_test(tc, test_early_stopping);
    tcase_add_loop_test(tc, test_rates, 0, 2);
    tcase_add_test(tc, test_resume_with_callbacks);
    tcase_add_test(tc, test_callbacks_refused);
    suite_add_tcase(s, tc);
    return s;
}
