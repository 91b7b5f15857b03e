/*
 * test_trainer.c - nb_trainer: the split and its refusals, evaluation
 * against a hand count, checkpoints (a round trip, a failed write, old
 * metadata, a bad position), fits stopped by a callback and resumed to the
 * same bits, non-finite losses and gradients, f64 models, warm steps that
 * allocate nothing, and the failing allocator.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train/trainer.h"

/* conv, batch norm (buffers), dropout (its generator) and adam (state). */
static const char tiny_json[] =
    "{\"name\": \"tiny\", \"input\": [1, 4, 4], \"layers\": ["
    "{\"name\": \"c\", \"type\": \"conv2d\", \"out_channels\": 2, \"kernel_size\": 3,"
    " \"padding\": \"same\", \"activation\": \"relu\"},"
    "{\"name\": \"bn\", \"type\": \"batch_norm\"},"
    "{\"type\": \"max_pool2d\", \"kernel_size\": 2},"
    "{\"type\": \"flatten\"},"
    "{\"name\": \"d\", \"type\": \"dropout\", \"p\": 0.25},"
    "{\"name\": \"o\", \"type\": \"linear\", \"out_features\": 3}],"
    " \"loss\": {\"type\": \"cross_entropy\"},"
    " \"optimizer\": {\"type\": \"adam\", \"lr\": 0.01},"
    " \"training\": {\"batch_size\": 4, \"epochs\": 3, \"validation_split\": 0.25, \"seed\": 7}}";

/* 22 examples: 5 validate, 17 train in 5 batches (the last of 1). */
#define NDATA 22

static nb_model *tiny(nb_ctx *ctx, const char *json, nb_dtype dtype, uint64_t seed)
{
    nb_model *m = nb_model_parse(ctx, json, strlen(json), "test.json", dtype);
    ck_assert_msg(m != NULL, "%s", nb_errmsg(ctx));
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_model_init(m, &rng);
    return m;
}

/* n images of 4x4, label i mod 3, brighter in a part of its class's; NULL
 * when the allocator fails. */
static nb_dataset *tiny_data_n(nb_ctx *ctx, int64_t n)
{
    uint8_t px[64 * 16];
    int32_t labels[64];
    ck_assert_int_le(n, 64);
    for (int64_t i = 0; i < n; i++) {
        labels[i] = (int32_t)(i % 3);
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 4; c++) {
                bool lit = labels[i] == 0 ? r < 2 && c < 2 : labels[i] == 1 ? r >= 2 : c >= 2;
                int noise = (int)((i * 37 + r * 11 + c * 5) % 64);
                px[i * 16 + r * 4 + c] = (uint8_t)(noise + (lit ? 150 : 0));
            }
    }
    return nb_dataset_from(ctx, n, 1, 4, 4, px, labels);
}

static nb_dataset *tiny_data(nb_ctx *ctx, int64_t n)
{
    nb_dataset *ds = tiny_data_n(ctx, n);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    return ds;
}


static void settings(nb_ctx *ctx, const nb_model *m, nb_train_opts *t, nb_optim_opts *o)
{
    ck_assert_int_eq(nb_model_train_opts(ctx, m, t, o), NB_OK);
}

/* A context, the tiny model, its data and a trainer, freed together. */
typedef struct rig {
    nb_ctx *ctx;
    nb_model *m;
    nb_dataset *ds;
    nb_trainer *tr;
} rig;

/* The model rig_new makes: tiny_json, or another. */
static const char *rig_json = tiny_json;

static rig rig_new(nb_dtype dtype, uint64_t init_seed)
{
    rig r = {nb_ctx_new(), NULL, NULL, NULL};
    r.m = tiny(r.ctx, rig_json, dtype, init_seed);
    r.ds = tiny_data(r.ctx, NDATA);
    nb_train_opts t;
    nb_optim_opts o;
    settings(r.ctx, r.m, &t, &o);
    r.tr = nb_trainer_new(r.ctx, r.m, r.ds, 0, &t, &o);
    ck_assert_msg(r.tr != NULL, "%s", nb_errmsg(r.ctx));
    return r;
}

static void rig_free(rig *r)
{
    nb_trainer_free(r->tr);
    nb_dataset_free(r->ds);
    nb_model_free(r->m);
    nb_ctx_free(r->ctx);
}

/* The model's tensors as one byte string, to compare bit for bit. */
static size_t weights_of(const nb_model *m, unsigned char *buf, size_t size)
{
    size_t at = 0;
    for (int i = 0; i < nb_model_num_tensors(m); i++) {
        const nb_tensor *t = nb_model_tensor(m, i);
        size_t n = (size_t)t->numel * nb_dtype_size(t->dtype);
        ck_assert_uint_le(at + n, size);
        memcpy(buf + at, t->data, n);
        at += n;
    }
    return at;
}

static void assert_same_tensor(const nb_tensor *a, const nb_tensor *b)
{
    ck_assert_str_eq(a->name, b->name);
    ck_assert_int_eq(a->numel, b->numel);
    ck_assert_msg(memcmp(a->data, b->data, (size_t)a->numel * nb_dtype_size(a->dtype)) == 0,
                  "%s differs", a->name);
}

static void assert_same_progress(const nb_train_progress *a, const nb_train_progress *b)
{
    ck_assert_int_eq(a->epoch, b->epoch);
    ck_assert_int_eq(a->batch, b->batch);
    ck_assert_int_eq(a->batches, b->batches);
    ck_assert_int_eq(a->steps, b->steps);
    ck_assert(a->loss_sum == b->loss_sum);
    ck_assert_int_eq(a->correct, b->correct);
    ck_assert_int_eq(a->seen, b->seen);
    ck_assert(a->seconds == b->seconds);
}

/* A fresh directory for files; its path in buf. */
static void temp_dir(char *buf, size_t size)
{
    snprintf(buf, size, "%s/nabla-trainer.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

/* ---- stopping callbacks ------------------------------------------------- */

typedef struct stopper {
    int64_t at_step;  /* on_batch stops once this many steps are done; 0 never */
    int at_epoch;     /* on_epoch stops after this epoch (1 for the first); 0 never */
    int answer;       /* what it returns to stop */
    int batches, epochs;
} stopper;

static int stop_batch(nb_trainer *tr, const nb_train_progress *p, void *ud)
{
    (void)tr;
    stopper *s = ud;
    s->batches++;
    return s->at_step && p->steps == s->at_step ? s->answer : 0;
}

static int stop_epoch(nb_trainer *tr, const nb_epoch_metrics *e, void *ud)
{
    (void)tr;
    stopper *s = ud;
    s->epochs++;
    return s->at_epoch && e->epoch == s->at_epoch ? s->answer : 0;
}

/* ---- the data ------------------------------------------------------------ */

START_TEST(test_split)
{
    rig r = rig_new(NB_F32, 1);
    ck_assert_int_eq(nb_trainer_num_train(r.tr), 17);
    ck_assert_int_eq(nb_trainer_num_val(r.tr), 5);
    ck_assert_int_eq(nb_trainer_num_labels(r.tr), 3);
    ck_assert_int_eq(nb_trainer_progress(r.tr)->batches, 5);
    ck_assert_ptr_nonnull(nb_trainer_optim(r.tr));
    ck_assert_int_eq(nb_trainer_examples(r.tr, r.ds, 0), NDATA);
    ck_assert_int_eq(nb_trainer_examples(r.tr, r.ds, 7), 7);

    /* Classes [2, 0]: label 1 is left out, 2 becomes 0 and 0 becomes 1;
     * limit 10 keeps the first 10 of those 15, 2 of them validate. */
    nb_train_opts t;
    nb_optim_opts o;
    settings(r.ctx, r.m, &t, &o);
    t.nclasses = 2;
    t.classes[0] = 2;
    t.classes[1] = 0;
    nb_trainer *tr = nb_trainer_new(r.ctx, r.m, r.ds, 10, &t, &o);
    ck_assert_msg(tr != NULL, "%s", nb_errmsg(r.ctx));
    ck_assert_int_eq(nb_trainer_num_train(tr), 8);
    ck_assert_int_eq(nb_trainer_num_val(tr), 2);
    ck_assert_int_eq(nb_trainer_num_labels(tr), 2);
    ck_assert_int_eq(nb_trainer_examples(tr, r.ds, 0), 15);
    /* In order: the examples of labels 0 and 2, validation last. */
    static const int64_t want[10] = {0, 2, 3, 5, 6, 8, 9, 11, 12, 14};
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(tr->examples[i], want[i]);
    ck_assert_int_eq(tr->map[2], 0);
    ck_assert_int_eq(tr->map[0], 1);
    ck_assert_int_eq(tr->map[1], -1);
    nb_trainer_free(tr);
    rig_free(&r);
}
END_TEST

static const char mse_json[] =
    "{\"name\": \"reg\", \"input\": [1, 4, 4], \"layers\": [{\"type\": \"flatten\"},"
    "{\"type\": \"linear\", \"out_features\": 16}], \"loss\": {\"type\": \"mse\"}}";
static const char hinge_json[] =
    "{\"name\": \"hinged\", \"input\": [1, 4, 4], \"layers\": [{\"type\": \"flatten\"},"
    "{\"type\": \"linear\", \"out_features\": 1}], \"loss\": {\"type\": \"hinge\"}}";
static const char two_json[] =
    "{\"name\": \"two\", \"input\": [1, 4, 4], \"layers\": [{\"type\": \"flatten\"},"
    "{\"type\": \"linear\", \"out_features\": 2}], \"loss\": {\"type\": \"cross_entropy\"}}";
static const char big_json[] =
    "{\"name\": \"big\", \"input\": [1, 5, 5], \"layers\": [{\"type\": \"flatten\"},"
    "{\"type\": \"linear\", \"out_features\": 3}], \"loss\": {\"type\": \"cross_entropy\"}}";
static const char none_json[] =
    "{\"name\": \"bare\", \"input\": [1, 4, 4], \"layers\": [{\"type\": \"flatten\"}]}";

/* What a trainer cannot train, each refused with a message. */
START_TEST(test_refusals)
{
    static const struct {
        const char *json, *msg;
    } cases[] = {
        {mse_json, "\"reg\" has an mse loss: training on class labels needs cross_entropy or "
                   "hinge"},
        {none_json, "\"bare\" has no loss to train with"},
        {hinge_json, "the hinge loss of \"hinged\" needs two classes; the data has 3"},
        {two_json, "the data has 3 classes but the model \"two\" has 2 outputs"},
        {big_json, "memory: images are 1x4x4 but the model \"big\" takes 25 values ([1, 5, 5]; resize "
                  "the images to the model's input)"},
    };
    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = tiny_data(ctx, NDATA);
    nb_optim_opts o = nb_optim_defaults(NB_SGD);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        nb_model *m = tiny(ctx, cases[i].json, NB_F32, 0);
        nb_train_opts t;
        settings(ctx, m, &t, NULL);
        ck_assert_ptr_null(nb_trainer_new(ctx, m, ds, 0, &t, &o));
        tst_assert_error(ctx, NB_ERR_ARG, cases[i].msg);
        nb_model_free(m);
    }
    /* Classes the data does not have leave nothing to train on. */
    nb_model *m = tiny(ctx, tiny_json, NB_F32, 0);
    nb_train_opts t;
    settings(ctx, m, &t, NULL);
    t.nclasses = 2;
    t.classes[0] = 7;
    t.classes[1] = 8;
    ck_assert_ptr_null(nb_trainer_new(ctx, m, ds, 0, &t, &o));
    tst_assert_error(ctx, NB_ERR_ARG, "memory: no training examples left");
    /* A bad hyperparameter, as the optimizer says it. */
    settings(ctx, m, &t, NULL);
    o.lr = -1;
    ck_assert_ptr_null(nb_trainer_new(ctx, m, ds, 0, &t, &o));
    ck_assert_int_eq(nb_error(ctx), NB_ERR_ARG);
    ck_assert_ptr_null(nb_trainer_new(ctx, m, NULL, 0, &t, &o));
    tst_assert_error(ctx, NB_ERR_ARG, "trainer: the data set is NULL");
    /* Without an optimizer it evaluates, and refuses to fit or save. */
    nb_trainer *tr = nb_trainer_new(ctx, m, ds, 0, &t, NULL);
    ck_assert_msg(tr != NULL, "%s", nb_errmsg(ctx));
    ck_assert_ptr_null(nb_trainer_optim(tr));
    ck_assert_int_eq(nb_trainer_num_train(tr), 0);
    ck_assert_int_eq(nb_trainer_fit(tr, NULL), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "it only evaluates");
    ck_assert_int_eq(nb_trainer_save(tr, "/tmp/never-written.safetensors"), NB_ERR_ARG);
    ck_assert_int_eq(access("/tmp/never-written.safetensors", F_OK), -1);
    /* Evaluating data of another size. */
    nb_dataset *other = nb_dataset_from(ctx, 1, 1, 5, 5, (uint8_t[25]){0}, (int32_t[]){0});
    nb_eval_result res;
    ck_assert_int_eq(nb_trainer_evaluate(tr, other, 0, &res, NULL), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "memory: images are 1x5x5 but the model \"tiny\" takes 16");
    ck_assert_int_eq(nb_trainer_examples(tr, other, 0), -1);
    nb_dataset_free(other);
    nb_trainer_free(tr);
    nb_model_free(m);
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- evaluation ------------------------------------------------------------ */

/* logits = the two pixels / 255: the brighter pixel is the prediction. */
static const char lin_json[] =
    "{\"name\": \"lin\", \"input\": [1, 1, 2], \"layers\": [{\"type\": \"flatten\"},"
    "{\"name\": \"o\", \"type\": \"linear\", \"out_features\": 2}],"
    " \"loss\": {\"type\": \"cross_entropy\"}, \"training\": {\"batch_size\": 3}}";

static const uint8_t lin_px[7][2] = {{200, 10}, {10, 200}, {100, 50}, {30, 60},
                                     {255, 0},  {0, 128},  {90, 80}};
static const int32_t lin_labels[7] = {0, 1, 1, 0, 0, 1, 1};

/* Cross-entropy of example i against model label y. */
static double lin_loss(int i, int y)
{
    double a = lin_px[i][0] / 255.0, b = lin_px[i][1] / 255.0;
    double m = a > b ? a : b;
    return m + log(exp(a - m) + exp(b - m)) - (y == 0 ? a : b);
}

START_TEST(test_evaluate_by_hand)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = tiny(ctx, lin_json, _i ? NB_F64 : NB_F32, 0);
    nb_tensor *w = nb_model_find(m, "o.weight"), *b = nb_model_find(m, "o.bias");
    static const double eye[4] = {1, 0, 0, 1};
    for (int i = 0; i < 4; i++)
        nb_set(w, i, eye[i]);
    nb_fill(b, 0);
    nb_dataset *ds = nb_dataset_from(ctx, 7, 1, 1, 2, &lin_px[0][0], lin_labels);
    nb_train_opts t;
    settings(ctx, m, &t, NULL);
    nb_trainer *tr = nb_trainer_new(ctx, m, ds, 0, &t, NULL);
    ck_assert_msg(tr != NULL, "%s", nb_errmsg(ctx));

    /* Right: 0, 1, 4, 5; wrong: 2 and 6 (true 1, predicted 0), 3 (true 0,
     * predicted 1).  Batches of 3, 3 and 1. */
    nb_eval_result r;
    int64_t cm[4];
    ck_assert_int_eq(nb_trainer_evaluate(tr, ds, 0, &r, cm), NB_OK);
    double want = 0;
    for (int i = 0; i < 7; i++)
        want += lin_loss(i, lin_labels[i]) / 7;
    ck_assert_int_eq(r.examples, 7);
    ck_assert_double_eq_tol(r.loss, want, 1e-6);
    ck_assert_double_eq_tol(r.accuracy, 4.0 / 7.0, 1e-12);
    ck_assert(cm[0] == 2 && cm[1] == 1 && cm[2] == 2 && cm[3] == 2);
    /* The modes are put back. */
    ck_assert(nb_training(ctx) && nb_grad_enabled(ctx));

    /* The first 4: 0 and 1 right. */
    ck_assert_int_eq(nb_trainer_evaluate(tr, ds, 4, &r, NULL), NB_OK);
    ck_assert_int_eq(r.examples, 4);
    ck_assert_double_eq_tol(r.accuracy, 0.5, 1e-12);
    nb_trainer_free(tr);

    /* Classes [1, 0] swap the labels: the other 3 are right now, and the
     * rows of the matrix are the other way round. */
    t.nclasses = 2;
    t.classes[0] = 1;
    t.classes[1] = 0;
    tr = nb_trainer_new(ctx, m, ds, 0, &t, NULL);
    ck_assert_int_eq(nb_trainer_evaluate(tr, ds, 0, &r, cm), NB_OK);
    want = 0;
    for (int i = 0; i < 7; i++)
        want += lin_loss(i, 1 - lin_labels[i]) / 7;
    ck_assert_double_eq_tol(r.loss, want, 1e-6);
    ck_assert_double_eq_tol(r.accuracy, 3.0 / 7.0, 1e-12);
    ck_assert(cm[0] == 2 && cm[1] == 2 && cm[2] == 2 && cm[3] == 1);
    nb_trainer_free(tr);
    nb_dataset_free(ds);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- checkpoints ------------------------------------------------------------ */

/* Saved mid-epoch and read into a fresh trainer over a model drawn from
 * another seed: the same progress, weights, buffers, optimizer state and
 * generators. */
START_TEST(test_checkpoint_roundtrip)
{
    char dir[256], path[300];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    rig a = rig_new(NB_F32, 1);
    stopper s = {.at_step = 7, .answer = 1};
    nb_trainer_callbacks cb = {stop_batch, stop_epoch, &s};
    ck_assert_int_eq(nb_trainer_fit(a.tr, &cb), NB_TRAIN_STOPPED);
    const nb_train_progress *p = nb_trainer_progress(a.tr);
    ck_assert(p->epoch == 1 && p->batch == 2 && p->steps == 7 && p->seen == 8);
    ck_assert_int_eq(nb_trainer_save(a.tr, path), NB_OK);

    rig b = rig_new(NB_F32, 99);
    ck_assert_int_eq(nb_trainer_resume(b.tr, path), NB_OK);
    assert_same_progress(nb_trainer_progress(b.tr), p);
    for (int i = 0; i < nb_model_num_tensors(a.m); i++)
        assert_same_tensor(nb_model_tensor(a.m, i), nb_model_tensor(b.m, i));
    nb_optim *oa = nb_trainer_optim(a.tr), *ob = nb_trainer_optim(b.tr);
    ck_assert_int_eq(nb_optim_num_state(oa), 12); /* exp_avg, exp_avg_sq of 6 */
    for (int i = 0; i < nb_optim_num_state(oa); i++)
        assert_same_tensor(nb_optim_state(oa, i), nb_optim_state(ob, i));
    ck_assert_int_eq(nb_optim_steps(ob), 7);
    ck_assert(memcmp(nb_model_rng(a.m), nb_model_rng(b.m), sizeof(nb_rng)) == 0);
    ck_assert(memcmp(&a.tr->shuffle, &b.tr->shuffle, sizeof(nb_rng)) == 0);
    rig_free(&a);
    rig_free(&b);
    remove(path);
    rmdir(dir);
}
END_TEST

/* A checkpoint that cannot be written: NB_ERR_IO naming the file, and no
 * file left behind (ASan and valgrind check that nothing leaks). */
START_TEST(test_checkpoint_write_fails)
{
    rig r = rig_new(NB_F32, 1);
    const char *path = "/nonexistent-nabla-dir/run/checkpoint.safetensors";
    ck_assert_int_eq(nb_trainer_save(r.tr, path), NB_ERR_IO);
    tst_assert_error(r.ctx, NB_ERR_IO, path);
    tst_assert_error(r.ctx, NB_ERR_IO, "cannot write");
    /* A directory in the way of the file. */
    char dir[256];
    temp_dir(dir, sizeof dir);
    ck_assert_int_eq(nb_trainer_save(r.tr, dir), NB_ERR_IO);
    tst_assert_error(r.ctx, NB_ERR_IO, dir);
    rmdir(dir);
    ck_assert_int_eq(nb_trainer_resume(r.tr, path), NB_ERR_IO);
    tst_assert_error(r.ctx, NB_ERR_IO, path);
    rig_free(&r);
}
END_TEST

/* Files that are not checkpoints, or do not fit this trainer: refused with
 * nothing changed. */
START_TEST(test_checkpoint_refused)
{
    char dir[256], path[300];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/x.safetensors", dir);
    rig r = rig_new(NB_F32, 1);
    unsigned char *before = malloc(1 << 16), *after = malloc(1 << 16);
    size_t n = weights_of(r.m, before, 1 << 16);

    ck_assert_int_eq(nb_model_save_weights(r.m, path), NB_OK);
    ck_assert_int_eq(nb_trainer_resume(r.tr, path), NB_ERR_FORMAT);
    tst_assert_error(r.ctx, NB_ERR_FORMAT, "x.safetensors: not a nabla checkpoint");

    /* Metadata without the settings. */
    nb_tensor *ts[1] = {nb_model_tensor(r.m, 0)};
    const char *keys[] = {"format", "epoch", "batch", "steps"};
    const char *vals[] = {"nabla-checkpoint-1", "1", "0", "5"};
    ck_assert_int_eq(nb_safetensors_save_meta(r.ctx, path, 1, ts, 4, keys, vals), NB_OK);
    ck_assert_int_eq(nb_trainer_resume(r.tr, path), NB_ERR_FORMAT);
    tst_assert_error(r.ctx, NB_ERR_FORMAT, "the checkpoint predates the record of the settings");

    /* Stopped at batch 4 of 5; a batch of 8 makes epochs of 3 batches. */
    stopper s = {.at_step = 4, .answer = 1};
    nb_trainer_callbacks cb = {stop_batch, NULL, &s};
    ck_assert_int_eq(nb_trainer_fit(r.tr, &cb), NB_TRAIN_STOPPED);
    ck_assert_int_eq(nb_trainer_save(r.tr, path), NB_OK);
    nb_train_opts t;
    nb_optim_opts o;
    settings(r.ctx, r.m, &t, &o);
    t.batch_size = 8;
    nb_trainer *tr = nb_trainer_new(r.ctx, r.m, r.ds, 0, &t, &o);
    n = weights_of(r.m, before, 1 << 16);
    ck_assert_int_eq(nb_trainer_resume(tr, path), NB_ERR_ARG);
    tst_assert_error(r.ctx, NB_ERR_ARG, "x.safetensors: batch_size is 4 in the checkpoint but 8 "
                                        "here; resume with the settings it was made with");
    ck_assert_int_eq(nb_trainer_progress(tr)->steps, 0);
    nb_trainer_free(tr);

    /* Another model's tensors. */
    nb_model *other = tiny(r.ctx, two_json, NB_F32, 0);
    settings(r.ctx, other, &t, &o);
    t.nclasses = 2;
    t.classes[0] = 0;
    t.classes[1] = 1;
    tr = nb_trainer_new(r.ctx, other, r.ds, 0, &t, &o);
    ck_assert_msg(tr != NULL, "%s", nb_errmsg(r.ctx));
    ck_assert_int_eq(nb_trainer_resume(tr, path), NB_ERR_ARG);
    tst_assert_error(r.ctx, NB_ERR_ARG, "classes is \"\" in the checkpoint but \"0,1\" here");
    ck_assert_int_eq(nb_trainer_progress(tr)->steps, 0);
    nb_trainer_free(tr);
    nb_model_free(other);

    ck_assert_uint_eq(weights_of(r.m, after, 1 << 16), n);
    ck_assert(memcmp(before, after, n) == 0);
    free(before);
    free(after);
    rig_free(&r);
    remove(path);
    rmdir(dir);
}
END_TEST

/* A file of the format's first keys alone, as nabla wrote them before it
 * recorded the settings: refused, naming why, with nothing changed. */
START_TEST(test_checkpoint_predates_settings)
{
    char dir[256], path[300];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/old.safetensors", dir);
    rig r = rig_new(NB_F32, 1);
    const char *keys[] = {"format", "epoch", "batch", "steps", "shuffle_rng", "dropout_rng"};
    const char *vals[] = {"nabla-checkpoint-1", "2", "3", "13",
                          "0000000000000001000000000000000200000000000000030000000000000004",
                          "00000000000000050000000000000006000000000000000700000000000000ff"};
    ck_assert_int_eq(nb_safetensors_save_meta(r.ctx, path, r.tr->nckpt, r.tr->ckpt, 6, keys, vals),
                     NB_OK);
    ck_assert_int_eq(nb_trainer_resume(r.tr, path), NB_ERR_FORMAT);
    tst_assert_error(r.ctx, NB_ERR_FORMAT, "old.safetensors: the checkpoint predates the record "
                     "of the settings, data and model it was made with, so resuming it could not "
                     "be checked: train again from the start");
    const nb_train_progress *p = nb_trainer_progress(r.tr);
    ck_assert(p->epoch == 0 && p->batch == 0 && p->steps == 0);
    ck_assert_int_eq(nb_optim_steps(nb_trainer_optim(r.tr)), 0);
    rig_free(&r);
    remove(path);
    rmdir(dir);
}
END_TEST

/* ---- crafted metadata ------------------------------------------------------------ */

#define ZEROS64 "0000000000000000000000000000000000000000000000000000000000000000"

/* The tiny rig stopped after step 7 (epoch 1 done, 2 batches of the second,
 * 8 examples seen), and its checkpoint at path with `key` set to `value`
 * (NULL: left out). */
static void save_edited(const char *path, const char *key, const char *value)
{
    rig r = rig_new(NB_F32, 1);
    stopper s = {.at_step = 7, .answer = 1};
    nb_trainer_callbacks cb = {stop_batch, NULL, &s};
    ck_assert_int_eq(nb_trainer_fit(r.tr, &cb), NB_TRAIN_STOPPED);
    nbi_ckpt_meta m;
    ck_assert_int_eq(nbi_ckpt_meta_make(r.tr, &m), NB_OK);
    const char *keys[NBI_CKPT_MAX_META], *vals[NBI_CKPT_MAX_META];
    int n = 0;
    bool found = false;
    for (int i = 0; i < m.n; i++) {
        bool this = key && strcmp(m.keys[i], key) == 0;
        found |= this;
        if (this && !value)
            continue;
        keys[n] = m.keys[i];
        vals[n++] = this ? value : m.vals[i];
    }
    ck_assert_msg(!key || found, "the checkpoint has no key %s", key);
    ck_assert_int_eq(nb_safetensors_save_meta(r.ctx, path, r.tr->nckpt, r.tr->ckpt, n, keys, vals),
                     NB_OK);
    nbi_ckpt_meta_free(r.tr, &m);
    rig_free(&r);
}

#define FMT NB_ERR_FORMAT
#define ARG NB_ERR_ARG

/* Each value of the metadata read strictly: malformed, out of range,
 * inconsistent, missing, or another setting's; and edits that change
 * nothing the run depends on. */
static const struct edit {
    const char *key, *value;
    int status;
    const char *msg;
} edits[] = {
    {NULL, NULL, NB_OK, NULL},
    {"epoch", "-1", FMT, "ckpt.safetensors: the checkpoint's epoch is \"-1\", not an integer from "
                         "0 to 2147483647"},
    {"epoch", "-100000", FMT, "epoch is \"-100000\", not an integer from 0"},
    {"epoch", "99999999999", FMT, "epoch is \"99999999999\", not an integer from 0"},
    {"epoch", "1abc", FMT, "epoch is \"1abc\", not an integer"},
    {"epoch", "", FMT, "epoch is \"\", not an integer"},
    {"epoch", " 1", FMT, "epoch is \" 1\", not an integer"},
    {"epoch", "+1", FMT, "epoch is \"+1\", not an integer"},
    {"epoch", "0x1", FMT, "epoch is \"0x1\", not an integer"},
    {"epoch", "3", ARG, "ckpt.safetensors: epochs is 3 here, but the checkpoint has begun epoch 4"},
    {"epoch", "2", FMT, "the checkpoint's steps is 7, but epoch 2 and batch 2 at 5 batches an "
                        "epoch make 12"},
    {"batch", "-5", FMT, "the checkpoint's batch is \"-5\", not an integer from 0 to 5"},
    {"batch", "6", FMT, "batch is \"6\", not an integer from 0 to 5"},
    {"batch", "1000000", FMT, "batch is \"1000000\", not an integer from 0 to 5"},
    {"batch", "3", FMT, "steps is 7, but epoch 1 and batch 3 at 5 batches an epoch make 8"},
    {"steps", "-99", FMT, "steps is \"-99\", not an integer from 0 to"},
    {"steps", "8", FMT, "steps is 8, but epoch 1 and batch 2 at 5 batches an epoch make 7"},
    {"steps", "7.0", FMT, "steps is \"7.0\", not an integer"},
    {"seen", "-7", FMT, "seen is \"-7\", not an integer from 0 to 17"},
    {"seen", "9", FMT, "the checkpoint's seen is 9, but 2 batches of 4 make 8"},
    {"correct", "9", FMT, "correct is \"9\", not an integer from 0 to 8"},
    {"correct", "-1", FMT, "correct is \"-1\", not an integer from 0 to 8"},
    {"loss_sum", "x", FMT, "loss_sum is \"x\", not a number >= 0"},
    {"loss_sum", "nan", FMT, "loss_sum is \"nan\", not a number >= 0"},
    {"loss_sum", "-1", FMT, "loss_sum is \"-1\", not a number >= 0"},
    {"loss_sum", "1e999", FMT, "loss_sum is \"1e999\", not a number >= 0"},
    {"loss_sum", "0x1p3", FMT, "loss_sum is \"0x1p3\", not a number >= 0"},
    {"loss_sum", "1.5 ", FMT, "loss_sum is \"1.5 \", not a number >= 0"},
    {"loss_sum", "1.", FMT, "loss_sum is \"1.\", not a number >= 0"},
    {"seconds", "-1", FMT, "seconds is \"-1\", not a finite number >= 0"},
    {"seconds", "inf", FMT, "seconds is \"inf\", not a finite number >= 0"},
    {"shuffle_rng", ZEROS64, FMT, "the checkpoint's shuffle_rng is all zeros, a state no "
                                  "xoshiro256** generator can be in"},
    {"dropout_rng", ZEROS64, FMT, "dropout_rng is all zeros"},
    {"shuffle_rng", "0x00000000000001" ZEROS64, FMT, "not 64 hex digits"},
    {"shuffle_rng", "0x0000000000000100000000000000010000000000000001000000000000000001", FMT,
     "shuffle_rng is \"0x00"},
    {"shuffle_rng", "-000000000000001000000000000000100000000000000010000000000000001", FMT,
     "not 64 hex digits"},
    {"dropout_rng", "000000000000000A000000000000000100000000000000010000000000000001", FMT,
     "not 64 hex digits"},
    {"dropout_rng", "1", FMT, "dropout_rng is \"1\", not 64 hex digits"},
    {"history", "", FMT, "history is \"\", not six numbers an epoch done"},
    {"history", "1,0.5,1,0.5,0.01,1;1,0.5,1,0.5,0.01,1", FMT, "not six numbers an epoch done"},
    {"history", "1,0.5,1,0.5,0.01", FMT, "not six numbers an epoch done"},
    {"history", "1,2,1,0.5,0.01,1", FMT, "the checkpoint's history of epoch 1 is out of its "
                                         "ranges"},
    {"history", "1,0.5,1,0.5,0.02,1", FMT, "history of epoch 1 is out of its ranges"},
    {"history", "1,0.5,nan,nan,0.01,1", FMT, "history of epoch 1 is out of its ranges"},
    {"history", "1,0.5,1,0.5,0.01,1", NB_OK, NULL},
    {"history", "1,0.5,inf,0.5,0.01,1", NB_OK, NULL},
    {"batch_size", "1abc", FMT, "batch_size is \"1abc\", not an integer"},
    {"batch_size", "8", ARG, "ckpt.safetensors: batch_size is 8 in the checkpoint but 4 here; "
                             "resume with the settings it was made with"},
    {"lr", "abc", FMT, "the checkpoint's lr is \"abc\", not a finite number"},
    {"lr", "0.02", ARG, "lr is 0.02 in the checkpoint but 0.01 here"},
    {"nesterov", "yes", FMT, "nesterov is \"yes\", not true or false"},
    {"optimizer", "sgd", ARG, "optimizer is \"sgd\" in the checkpoint but \"adam\" here"},
    {"seed", "-1", FMT, "seed is \"-1\", not an integer >= 0"},
    {"seed", "8", ARG, "seed is 8 in the checkpoint but 7 here"},
    {"epochs", "abc", FMT, "epochs is \"abc\", not an integer"},
    {"epochs", "5", NB_OK, NULL},
    {"limit", "3", ARG, "limit is 3 in the checkpoint but 0 here"},
    {"normalize_mean", "0,0,0,0", NB_OK, NULL},
    {"normalize_mean", "0,0.5", ARG, "normalize_mean is 0,0.5 in the checkpoint but 0 here"},
    {"normalize_mean", "0,,0", FMT, "normalize_mean is \"0,,0\", not numbers separated by commas"},
    {"normalize_mean", "0,0,0,0,0", FMT, "not numbers separated by commas"},
    {"normalize_std", "nan", FMT, "normalize_std is \"nan\", not numbers separated by commas"},
    {"random_crop", "1", ARG, "random_crop is 1 in the checkpoint but 0 here"},
    {"hflip", "0.5", ARG, "hflip is 0.5 in the checkpoint but 0 here"},
    {"translate", "x", FMT, "translate is \"x\", not an integer"},
    /* Checkpoints from before augmentation: none. */
    {"random_crop", NULL, NB_OK, NULL},
    {"translate", NULL, NB_OK, NULL},
    {"hflip", NULL, NB_OK, NULL},
    {"kernels", "other", ARG, "kernels is \"other\" in the checkpoint but"},
    {"data_digest", "0123456789abcdef", ARG, "safetensors: the data is not the checkpoint's: "
                                             "22 examples of \"memory\" (digest 0123456789abcdef) "
                                             "there, 22 of \"memory\" (digest "},
    {"data_digest", "0123456789ABCDEF", FMT, "data_digest is \"0123456789ABCDEF\", not 16 hex"},
    {"data_examples", "21", ARG, "the data is not the checkpoint's: 21 examples"},
    {"data_size", "99", NB_OK, NULL},
    {"data_origin", "elsewhere", NB_OK, NULL},
    {"model_digest", "0123456789abcdef", ARG, "the model is not the checkpoint's (digest "
                                              "0123456789abcdef there"},
    {"model_digest", "xyz", FMT, "model_digest is \"xyz\", not 16 hex digits"},
    {"classes", "0,1", ARG, "classes is \"0,1\" in the checkpoint but \"\" here"},
    {"seen", NULL, FMT, "ckpt.safetensors: the checkpoint's metadata lacks \"seen\""},
    {"history", NULL, FMT, "lacks \"history\""},
    {"data_origin", NULL, FMT, "lacks \"data_origin\""},
    {"lr_schedule", NULL, FMT, "lacks \"lr_schedule\""},
    {"model_digest", NULL, FMT, "the checkpoint predates the record of the settings"},
    {"format", "nabla-checkpoint-2", FMT, "ckpt.safetensors: not a nabla checkpoint"},
};

/* Resumed into a fresh trainer: the edit's status and message (the whole
 * message from the file's name on, when the case gives it), and on a
 * refusal nothing changed; on success the fit goes on to its end. */
START_TEST(test_checkpoint_edited)
{
    const struct edit *c = &edits[_i];
    char dir[256], path[300];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    save_edited(path, c->key, c->value);
    rig r = rig_new(NB_F32, 99);
    unsigned char *before = malloc(1 << 16), *after = malloc(1 << 16);
    size_t n = weights_of(r.m, before, 1 << 16);
    int rc = nb_trainer_resume(r.tr, path), nh;
    ck_assert_msg(rc == c->status, "%s = \"%s\": status %d: %s", c->key, c->value, rc,
                  nb_errmsg(r.ctx));
    if (c->status == NB_OK) {
        ck_assert_int_eq(nb_trainer_progress(r.tr)->steps, 7);
        nb_trainer_history(r.tr, &nh);
        ck_assert_int_eq(nh, 1);
        ck_assert_int_eq(nb_trainer_fit(r.tr, NULL), NB_OK);
        ck_assert_int_eq(nb_trainer_progress(r.tr)->steps, 15);
    } else {
        tst_assert_error(r.ctx, c->status, c->msg);
        const char *msg = nb_errmsg(r.ctx);
        if (strncmp(c->msg, "ckpt.safetensors:", 17) == 0)
            ck_assert_msg(strlen(msg) >= strlen(c->msg) &&
                          strcmp(msg + strlen(msg) - strlen(c->msg), c->msg) == 0,
                          "message \"%s\" does not end \"%s\"", msg, c->msg);
        ck_assert_int_eq(nb_trainer_progress(r.tr)->steps, 0);
        ck_assert_int_eq(nb_optim_steps(nb_trainer_optim(r.tr)), 0);
        nb_trainer_history(r.tr, &nh);
        ck_assert_int_eq(nh, 0);
        weights_of(r.m, after, 1 << 16);
        ck_assert(memcmp(before, after, n) == 0);
    }
    free(before);
    free(after);
    rig_free(&r);
    remove(path);
    rmdir(dir);
}
END_TEST

/* A copy of tiny_json with `from` replaced by `to`, in buf. */
static const char *json_with(char *buf, size_t size, const char *json, const char *from,
                             const char *to)
{
    const char *at = strstr(json, from);
    ck_assert_ptr_nonnull(at);
    snprintf(buf, size, "%.*s%s%s", (int)(at - json), json, to, at + strlen(from));
    return buf;
}

static const char *tiny_with(char *buf, size_t size, const char *from, const char *to)
{
    return json_with(buf, size, tiny_json, from, to);
}

/* A trainer made with another setting, model or data than the checkpoint's
 * refuses it, naming the setting and both values; nothing changes. */
START_TEST(test_resume_other_settings)
{
    char dir[256], path[300], json[2048], want[160];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    save_edited(path, NULL, NULL);
    nb_ctx *ctx = nb_ctx_new();
    const char *model = tiny_json;
    nb_dataset *ds = tiny_data(ctx, NDATA);
    int64_t limit = 0;
    int threads = nb_set_num_threads(1);
    nb_set_num_threads(threads);
    nb_train_opts t;
    nb_optim_opts o;
    nb_model *m = tiny(ctx, tiny_json, NB_F32, 1);
    settings(ctx, m, &t, &o);
    nb_model_free(m);
    switch (_i) {
    case 0: t.batch_size = 8; snprintf(want, sizeof want, "batch_size is 4 in the checkpoint but 8 here"); break;
    case 1: limit = 20; snprintf(want, sizeof want, "limit is 0 in the checkpoint but 20 here"); break;
    case 2: o.lr = 0.02; snprintf(want, sizeof want, "lr is 0.01 in the checkpoint but 0.02 here"); break;
    case 3: o = nb_optim_defaults(NB_SGD); o.lr = 0.01; snprintf(want, sizeof want, "optimizer is \"adam\" in the checkpoint but \"sgd\" here"); break;
    case 4: t.seed = 8; snprintf(want, sizeof want, "seed is 7 in the checkpoint but 8 here"); break;
    case 5: t.validation_split = 0.5; snprintf(want, sizeof want, "validation_split is 0.25 in the checkpoint but 0.5 here"); break;
    case 6: for (int c = 0; c < NB_MAX_CHANNELS; c++) t.mean[c] = 0.5, t.std[c] = 0.25; snprintf(want, sizeof want, "normalize_mean is 0 in the checkpoint but 0.5 here"); break;
    case 7: t.clip_grad_norm = 1; snprintf(want, sizeof want, "clip_grad_norm is 0 in the checkpoint but 1 here"); break;
    case 8: t.schedule = NB_SCHEDULE_STEP; snprintf(want, sizeof want, "lr_schedule is \"none\" in the checkpoint but \"step\" here"); break;
    case 9: o.beta2 = 0.99; snprintf(want, sizeof want, "beta2 is 0.999 in the checkpoint but 0.99 here"); break;
    case 10: o.weight_decay = 0.001; snprintf(want, sizeof want, "weight_decay is 0 in the checkpoint but 0.001 here"); break;
    case 11: t.epochs = 1; snprintf(want, sizeof want, "epochs is 1 here, but the checkpoint has begun epoch 2"); break;
    case 12: /* the kernels change bits; the thread count does not (test_resume_same_weights) */
        if (!nbi_avx2()) {
            printf("test_resume_other_settings: the kernels' case skipped: this CPU has no AVX2\n");
            nb_dataset_free(ds);
            nb_ctx_free(ctx);
            remove(path);
            rmdir(dir);
            return;
        }
        nb_set_cpu_kernels("baseline", NULL, 0);
        snprintf(want, sizeof want, "kernels is \"avx2\" in the checkpoint but \"baseline\" here");
        break;
    case 13: {
        uint8_t px[NDATA * 16];
        int32_t labels[NDATA];
        for (int i = 0; i < NDATA; i++) {
            memcpy(px + 16 * i, nb_dataset_image(ds, i), 16);
            labels[i] = nb_dataset_label(ds, i);
        }
        px[16 * 9 + 5] ^= 1;
        nb_dataset_free(ds);
        ds = nb_dataset_from(ctx, NDATA, 1, 4, 4, px, labels);
        snprintf(want, sizeof want, "the data is not the checkpoint's: 22 examples of \"memory\"");
        break;
    }
    case 14:
        model = tiny_with(json, sizeof json, "\"p\": 0.25", "\"p\": 0.5");
        snprintf(want, sizeof want, "the model is not the checkpoint's");
        break;
    case 15:
        t.nclasses = 3;
        for (int i = 0; i < 3; i++)
            t.classes[i] = i;
        snprintf(want, sizeof want, "classes is \"\" in the checkpoint but \"0,1,2\" here");
        break;
    }
    m = tiny(ctx, model, NB_F32, 99);
    nb_trainer *tr = nb_trainer_new(ctx, m, ds, limit, &t, &o);
    ck_assert_msg(tr != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_trainer_resume(tr, path), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, want);
    ck_assert_int_eq(nb_trainer_progress(tr)->steps, 0);
    nb_set_num_threads(threads);
    nb_set_cpu_kernels(nbi_cpu_name(nbi_cpu_best()), NULL, 0);
    nb_trainer_free(tr);
    nb_model_free(m);
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
    remove(path);
    rmdir(dir);
}
END_TEST

/* More epochs than the checkpoint's run planned go on to the weights of a
 * run that planned them from the start, with its whole history; under a
 * cosine schedule, whose rates depend on the total, they are refused. */
START_TEST(test_resume_more_epochs)
{
    char dir[256], path[300];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    bool cosine = _i;
    unsigned char *want = malloc(1 << 16), *got = malloc(1 << 16);
    nb_train_opts t;
    nb_optim_opts o;
    rig full = rig_new(NB_F32, 1);
    settings(full.ctx, full.m, &t, &o);
    t.epochs = 4;
    t.schedule = cosine ? NB_SCHEDULE_COSINE : NB_SCHEDULE_NONE;
    nb_trainer *tr = nb_trainer_new(full.ctx, full.m, full.ds, 0, &t, &o);
    ck_assert_int_eq(nb_trainer_fit(tr, NULL), NB_OK);
    size_t n = weights_of(full.m, want, 1 << 16);
    int nh;
    const nb_epoch_metrics *h = nb_trainer_history(tr, &nh);
    ck_assert_int_eq(nh, 4);
    nb_epoch_metrics hist[4];
    memcpy(hist, h, sizeof hist);

    rig cut = rig_new(NB_F32, 1);
    nb_trainer_free(cut.tr);
    t.epochs = 3;
    cut.tr = nb_trainer_new(cut.ctx, cut.m, cut.ds, 0, &t, &o);
    stopper s = {.at_step = 7, .answer = 1};
    nb_trainer_callbacks cb = {stop_batch, NULL, &s};
    ck_assert_int_eq(nb_trainer_fit(cut.tr, &cb), NB_TRAIN_STOPPED);
    ck_assert_int_eq(nb_trainer_save(cut.tr, path), NB_OK);

    rig more = rig_new(NB_F32, 42);
    nb_trainer_free(more.tr);
    t.epochs = 4;
    more.tr = nb_trainer_new(more.ctx, more.m, more.ds, 0, &t, &o);
    if (cosine) {
        ck_assert_int_eq(nb_trainer_resume(more.tr, path), NB_ERR_ARG);
        tst_assert_error(more.ctx, NB_ERR_ARG, "epochs is 3 in the checkpoint but 4 here, and the "
                                               "cosine schedule's learning rates depend on it");
    } else {
        ck_assert_msg(nb_trainer_resume(more.tr, path) == NB_OK, "%s", nb_errmsg(more.ctx));
        ck_assert_int_eq(nb_trainer_fit(more.tr, NULL), NB_OK);
        weights_of(more.m, got, 1 << 16);
        ck_assert_msg(memcmp(want, got, n) == 0, "resumed weights differ");
        h = nb_trainer_history(more.tr, &nh);
        ck_assert_int_eq(nh, 4);
        for (int i = 0; i < 4; i++)
            ck_assert(h[i].epoch == i + 1 && h[i].loss == hist[i].loss &&
                      h[i].accuracy == hist[i].accuracy && h[i].val_loss == hist[i].val_loss &&
                      h[i].val_accuracy == hist[i].val_accuracy && h[i].lr == hist[i].lr);
    }
    nb_trainer_free(tr);
    rig_free(&full);
    rig_free(&cut);
    rig_free(&more);
    free(want);
    free(got);
    remove(path);
    rmdir(dir);
}
END_TEST

/* The digest is the network's: the same for another layout of the same
 * file, defaults written out, another name or other training sections;
 * another for a setting, a shape or the dtype. */
START_TEST(test_model_digest)
{
    static const char *const same[] = {
        "{\"name\": \"x\", \"input\": [1, 4, 4], \"layers\": [{\"type\": \"flatten\"},"
        "{\"type\": \"linear\", \"out_features\": 3}], \"loss\": {\"type\": \"cross_entropy\"}}",
        "{\"input\":[1,4,4],\"name\":\"other\",\"loss\":{\"type\":\"cross_entropy\"},\"layers\":"
        "[{\"type\":\"flatten\"},{\"type\":\"linear\",\"out_features\":3,\"bias\":true}],"
        "\"training\":{\"epochs\":9},\"optimizer\":{\"type\":\"adam\"}}",
    };
    static const char *const other[] = {
        "{\"name\": \"x\", \"input\": [1, 4, 4], \"layers\": [{\"type\": \"flatten\"},"
        "{\"type\": \"linear\", \"out_features\": 3, \"bias\": false}], \"loss\": {\"type\": "
        "\"cross_entropy\"}}",
        "{\"name\": \"x\", \"input\": [1, 4, 4], \"layers\": [{\"type\": \"flatten\"},"
        "{\"type\": \"linear\", \"out_features\": 4}], \"loss\": {\"type\": \"cross_entropy\"}}",
        "{\"name\": \"x\", \"input\": [1, 2, 8], \"layers\": [{\"type\": \"flatten\"},"
        "{\"type\": \"linear\", \"out_features\": 3}], \"loss\": {\"type\": \"cross_entropy\"}}",
        "{\"name\": \"x\", \"input\": [1, 4, 4], \"layers\": [{\"type\": \"flatten\"},"
        "{\"name\": \"o\", \"type\": \"linear\", \"out_features\": 3}], \"loss\": {\"type\": "
        "\"cross_entropy\"}}",
    };
    nb_ctx *ctx = nb_ctx_new();
    nb_model *a = tiny(ctx, same[0], NB_F32, 0);
    uint64_t d = nb_model_digest(a);
    ck_assert(d != 0 && nb_model_digest(NULL) == 0);
    nb_model *b = tiny(ctx, same[1], NB_F32, 5);
    ck_assert(nb_model_digest(b) == d);
    nb_model_free(b);
    for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
        b = tiny(ctx, other[i], NB_F32, 0);
        ck_assert_msg(nb_model_digest(b) != d, "other[%zu] has the same digest", i);
        nb_model_free(b);
    }
    b = tiny(ctx, same[0], NB_F64, 0);
    ck_assert(nb_model_digest(b) != d);
    nb_model_free(b);
    char json[2048];
    nb_model *c = tiny(ctx, tiny_json, NB_F32, 0);
    b = tiny(ctx, tiny_with(json, sizeof json, "\"p\": 0.25", "\"p\": 0.5"), NB_F32, 0);
    ck_assert(nb_model_digest(b) != nb_model_digest(c));
    nb_model_free(b);
    b = tiny(ctx, tiny_with(json, sizeof json, "\"padding\": \"same\"", "\"padding\": 1"), NB_F32, 0);
    ck_assert(nb_model_digest(b) != nb_model_digest(c));
    nb_model_free(b);
    nb_model_free(c);
    nb_model_free(a);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- stopping and resuming ---------------------------------------------------- */

/* Where the callbacks stop the fit: after the first batch, after an
 * epoch's last batch (before its validation), inside the second epoch,
 * after the last batch of all, and after the first epoch. */
static const stopper stops[] = {
    {.at_step = 1, .answer = 1},  {.at_step = 5, .answer = 1}, {.at_step = 7, .answer = 1},
    {.at_step = 15, .answer = 1}, {.at_epoch = 1, .answer = 1},
};

/* tiny_json training on normalised random crops of its images padded by 1
 * (the padding black after normalisation) and on flips. */
static const char *augmented_json(void)
{
    static char buf[2048];
    return json_with(buf, sizeof buf, tiny_json, "\"seed\": 7}",
                     "\"seed\": 7, \"normalize\": {\"mean\": 0.25, \"std\": 0.5}, "
                     "\"random_crop\": {\"padding\": 1}, \"hflip\": 0.5}");
}

/* An autoencoder of tiny's shape of training (batch norm, dropout, adam):
 * its images, normalised, cropped and flipped, are its targets. */
static const char ae_json[] =
    "{\"name\": \"ae\", \"input\": [1, 4, 4], \"layers\": ["
    "{\"name\": \"c\", \"type\": \"conv2d\", \"out_channels\": 2, \"kernel_size\": 3,"
    " \"padding\": \"same\", \"activation\": \"relu\"},"
    "{\"name\": \"bn\", \"type\": \"batch_norm\"},"
    "{\"type\": \"flatten\"},"
    "{\"name\": \"d\", \"type\": \"dropout\", \"p\": 0.25},"
    "{\"name\": \"z\", \"type\": \"linear\", \"out_features\": 4, \"activation\": \"relu\"},"
    "{\"name\": \"o\", \"type\": \"linear\", \"out_features\": 16}],"
    " \"loss\": {\"type\": \"mse\"},"
    " \"optimizer\": {\"type\": \"adam\", \"lr\": 0.01},"
    " \"training\": {\"batch_size\": 4, \"epochs\": 3, \"validation_split\": 0.25, \"seed\": 7,"
    " \"target\": \"input\", \"normalize\": {\"mean\": 0.25, \"std\": 0.5},"
    " \"random_crop\": {\"padding\": 1}, \"hflip\": 0.5}}";

/* A fit stopped by a callback, saved, and resumed by a new process (a new
 * context and a model drawn from another seed) on another thread count,
 * ends with the weights of a fit never stopped, bit for bit; so does
 * calling fit again.  With augmentation too (_i past the stops), and for
 * an autoencoder (past them twice). */
START_TEST(test_resume_same_weights)
{
    int nstops = (int)(sizeof stops / sizeof *stops);
    rig_json = _i < nstops ? tiny_json : _i < 2 * nstops ? augmented_json() : ae_json;
    _i %= nstops;
    unsigned char *want = malloc(1 << 16), *got = malloc(1 << 16);
    rig full = rig_new(NB_F32, 1);
    stopper count = {0};
    nb_trainer_callbacks cb = {stop_batch, stop_epoch, &count};
    ck_assert_int_eq(nb_trainer_fit(full.tr, &cb), NB_OK);
    ck_assert(count.batches == 15 && count.epochs == 3);
    size_t n = weights_of(full.m, want, 1 << 16);
    /* Done: fitting again does nothing. */
    ck_assert_int_eq(nb_trainer_fit(full.tr, &cb), NB_OK);
    ck_assert_int_eq(count.batches, 15);
    rig_free(&full);

    char dir[256], path[300];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    stopper s = stops[_i];
    cb.ud = &s;
    rig cut = rig_new(NB_F32, 1);
    ck_assert_int_eq(nb_trainer_fit(cut.tr, &cb), NB_TRAIN_STOPPED);
    ck_assert_int_eq(nb_trainer_save(cut.tr, path), NB_OK);
    rig_free(&cut);
    int threads = nb_set_num_threads(nbi_threads() + 1);
    rig resumed = rig_new(NB_F32, 42);
    ck_assert_msg(nb_trainer_resume(resumed.tr, path) == NB_OK, "%s", nb_errmsg(resumed.ctx));
    ck_assert_int_eq(nb_trainer_fit(resumed.tr, NULL), NB_OK);
    nb_set_num_threads(threads);
    ck_assert_uint_eq(weights_of(resumed.m, got, 1 << 16), n);
    ck_assert_msg(memcmp(want, got, n) == 0, "resumed weights differ");
    rig_free(&resumed);
    remove(path);
    rmdir(dir);

    /* In memory: fit again goes on where it stopped. */
    s = stops[_i];
    rig again = rig_new(NB_F32, 1);
    ck_assert_int_eq(nb_trainer_fit(again.tr, &cb), NB_TRAIN_STOPPED);
    ck_assert_int_eq(nb_trainer_fit(again.tr, NULL), NB_OK);
    weights_of(again.m, got, 1 << 16);
    ck_assert_msg(memcmp(want, got, n) == 0, "weights after fitting again differ");
    rig_free(&again);
    free(want);
    free(got);
    rig_json = tiny_json;
}
END_TEST

/* ---- the input as target ----------------------------------------------------- */

/* A linear bottleneck on flattened 4x4 images, their own targets. */
static const char flat_ae_json[] =
    "{\"name\": \"flat\", \"input\": [1, 4, 4], \"layers\": [{\"type\": \"flatten\"},"
    "{\"type\": \"linear\", \"out_features\": 6, \"activation\": \"relu\"},"
    "{\"type\": \"linear\", \"out_features\": 16}, {\"type\": \"sigmoid\"}],"
    " \"loss\": {\"type\": \"mse\"}, \"optimizer\": {\"type\": \"adam\", \"lr\": 0.02},"
    " \"training\": {\"batch_size\": 4, \"epochs\": 40, \"validation_split\": 0.25,"
    " \"target\": \"input\"}}";

static int record_metrics(nb_trainer *tr, const nb_epoch_metrics *e, void *ud)
{
    (void)tr;
    ((nb_epoch_metrics *)ud)[e->epoch - 1] = *e;
    return 0;
}

/* The loss goes down, no accuracy is counted, labels past any class are
 * used, and evaluation's loss is the mean squared error of the outputs
 * against the images, counted here. */
START_TEST(test_autoencoder_learns)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = tiny(ctx, flat_ae_json, NB_F64, 3);
    uint8_t px[NDATA * 16];
    int32_t labels[NDATA];
    nb_dataset *base = tiny_data(ctx, NDATA);
    for (int i = 0; i < NDATA; i++) {
        memcpy(px + i * 16, nb_dataset_image(base, i), 16);
        labels[i] = i % 2 ? 1000 + i : 0; /* no classifier's labels */
    }
    nb_dataset_free(base);
    nb_dataset *ds = nb_dataset_from(ctx, NDATA, 1, 4, 4, px, labels);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    nb_train_opts t;
    nb_optim_opts o;
    settings(ctx, m, &t, &o);
    ck_assert_int_eq(t.target, NB_TARGET_INPUT);
    nb_trainer *tr = nb_trainer_new(ctx, m, ds, 0, &t, &o);
    ck_assert_msg(tr != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_trainer_num_train(tr) + nb_trainer_num_val(tr), NDATA);
    ck_assert_int_eq(nb_trainer_examples(tr, ds, 0), NDATA);
    ck_assert_int_eq(nb_trainer_num_labels(tr), 0);
    nb_epoch_metrics h[40];
    nb_trainer_callbacks cb = {NULL, record_metrics, h};
    ck_assert_msg(nb_trainer_fit(tr, &cb) == NB_OK, "%s", nb_errmsg(ctx));
    ck_assert_msg(h[39].loss < 0.5 * h[0].loss, "loss %g -> %g", h[0].loss, h[39].loss);
    ck_assert_msg(h[39].val_loss < h[0].val_loss, "val loss %g -> %g", h[0].val_loss,
                  h[39].val_loss);
    ck_assert(isnan(h[39].accuracy) && isnan(h[39].val_accuracy));
    ck_assert_int_eq(nb_trainer_progress(tr)->correct, 0);
    nb_eval_result r;
    int64_t cm[1] = {-1};
    ck_assert_int_eq(nb_trainer_evaluate(tr, ds, 0, &r, cm), NB_OK);
    ck_assert_int_eq(r.examples, NDATA);
    ck_assert(isnan(r.accuracy));
    ck_assert_int_eq(cm[0], -1); /* a 0 x 0 matrix: untouched */
    nb_set_training(ctx, false);
    int64_t shape[4] = {NDATA, 1, 4, 4};
    nb_tensor *x = nb_tensor_new(ctx, NB_F64, 4, shape);
    int64_t idx[NDATA];
    for (int i = 0; i < NDATA; i++)
        idx[i] = i;
    ck_assert_int_eq(nb_dataset_batch(ds, idx, NDATA, x, NULL, NULL, NULL), NB_OK);
    nb_tensor *y = nb_model_forward(ctx, m, x);
    ck_assert_ptr_nonnull(y);
    double sum = 0;
    for (int64_t i = 0; i < x->numel; i++)
        sum += (nb_get(y, i) - nb_get(x, i)) * (nb_get(y, i) - nb_get(x, i));
    ck_assert_double_eq_tol(r.loss, sum / (double)x->numel, 1e-12);
    nb_graph_reset(ctx);
    nb_tensor_free(x);
    nb_trainer_free(tr);
    nb_dataset_free(ds);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* What the input as target refuses, each with its message. */
START_TEST(test_autoencoder_refusals)
{
    static const struct {
        const char *from, *to, *msg;
    } cases[] = {
        {"\"mse\"", "\"cross_entropy\"", "\"flat\": target \"input\" compares the output "
         "with the input image: the loss must be mse"},
        {"\"out_features\": 16", "\"out_features\": 15", "\"flat\": target \"input\" needs "
         "the output to have the input's shape [1, 4, 4] (or its flattening [16]), but the "
         "output is [15]"},
        {"\"target\": \"input\"}", "\"target\": \"input\", \"keep_best\": \"val_accuracy\"}",
         "trainer: keep_best watches val_accuracy, but with target \"input\" there is no "
         "accuracy: watch val_loss"},
        {"\"target\": \"input\"}", "\"target\": \"input\", \"early_stopping\": "
         "{\"monitor\": \"accuracy\"}}", "trainer: early_stopping watches accuracy, but with "
         "target \"input\" there is no accuracy: watch loss"},
        {"\"target\": \"input\"}", "\"target\": \"label\"}", "\"flat\" has an mse loss: "
         "training on class labels needs cross_entropy or hinge (for an autoencoder, set "
         "\"target\": \"input\" in its training section)"},
    };
    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = tiny_data(ctx, NDATA);
    char json[2048];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        nb_model *m = tiny(ctx, json_with(json, sizeof json, flat_ae_json, cases[i].from,
                                          cases[i].to), NB_F32, 0);
        nb_train_opts t;
        nb_optim_opts o;
        settings(ctx, m, &t, &o);
        ck_assert_ptr_null(nb_trainer_new(ctx, m, ds, 0, &t, &o));
        tst_assert_error(ctx, NB_ERR_ARG, cases[i].msg);
        nb_model_free(m);
    }
    /* Classes would drop examples: refused by the model file, and by the
     * trainer when set by hand. */
    json_with(json, sizeof json, flat_ae_json, "\"target\": \"input\"}",
              "\"target\": \"input\", \"classes\": [0, 1]}");
    ck_assert_ptr_null(nb_model_parse(ctx, json, strlen(json), "ae.json", NB_F32));
    tst_assert_error(ctx, NB_ERR_FORMAT, "ae.json: training.classes: with \"target\": \"input\" "
                     "every example is used, whatever its label: remove classes");
    json_with(json, sizeof json, flat_ae_json, "\"input\"}", "\"inputs\"}");
    ck_assert_ptr_null(nb_model_parse(ctx, json, strlen(json), "ae.json", NB_F32));
    tst_assert_error(ctx, NB_ERR_FORMAT, "ae.json: training.target");
    nb_model *m = tiny(ctx, flat_ae_json, NB_F32, 0);
    nb_train_opts t;
    nb_optim_opts o;
    settings(ctx, m, &t, &o);
    t.nclasses = 2;
    t.classes[0] = 0;
    t.classes[1] = 1;
    ck_assert_ptr_null(nb_trainer_new(ctx, m, ds, 0, &t, &o));
    tst_assert_error(ctx, NB_ERR_ARG, "\"flat\": with target \"input\" every example is used, "
                     "whatever its label: classes must be empty");
    t.nclasses = 0;
    t.target = (nb_target)7;
    ck_assert_ptr_null(nb_trainer_new(ctx, m, ds, 0, &t, &o));
    tst_assert_error(ctx, NB_ERR_ARG, "target 7");
    nb_model_free(m);
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
}
END_TEST

/* Early stopping and keep_best on val_loss work on the reconstruction
 * loss, and a checkpoint records the target. */
START_TEST(test_autoencoder_callbacks)
{
    char json[2048];
    rig_json = json_with(json, sizeof json, flat_ae_json, "\"target\": \"input\"}",
                         "\"target\": \"input\", \"keep_best\": \"val_loss\", "
                         "\"early_stopping\": {\"patience\": 1, \"min_delta\": 0.01}}");
    rig r = rig_new(NB_F32, 1);
    nb_epoch_metrics h[40];
    nb_trainer_callbacks cb = {NULL, record_metrics, h};
    ck_assert_msg(nb_trainer_fit(r.tr, &cb) == NB_OK, "%s", nb_errmsg(r.ctx));
    int n;
    const nb_epoch_metrics *hist = nb_trainer_history(r.tr, &n);
    ck_assert_int_lt(n, 40); /* stopped: a min_delta of 0.01 is soon out of reach */
    ck_assert(hist[n - 1].stopped && hist[n - 1].restored > 0);
    ck_assert(hist[0].best);
    char dir[256], path[300];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    ck_assert_int_eq(nb_trainer_save(r.tr, path), NB_OK);
    nb_safetensors *f = nb_safetensors_open(r.ctx, path);
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(nb_safetensors_meta(f, "target"), "input");
    nb_safetensors_close(f);
    remove(path);
    rmdir(dir);
    rig_free(&r);
    rig_json = tiny_json;
}
END_TEST

/* Augmentation changes what is learnt: without the flips, or without the
 * crops, the weights end elsewhere. */
START_TEST(test_augmented_weights)
{
    unsigned char *a = malloc(1 << 16), *b = malloc(1 << 16);
    rig_json = augmented_json();
    rig r = rig_new(NB_F32, 1);
    ck_assert_int_eq(nb_trainer_fit(r.tr, NULL), NB_OK);
    size_t n = weights_of(r.m, a, 1 << 16);
    rig_free(&r);
    char json[2048];
    rig_json = json_with(json, sizeof json, augmented_json(), "\"hflip\": 0.5", "\"hflip\": 0");
    r = rig_new(NB_F32, 1);
    ck_assert_int_eq(nb_trainer_fit(r.tr, NULL), NB_OK);
    weights_of(r.m, b, 1 << 16);
    ck_assert_msg(memcmp(a, b, n) != 0, "the flips changed nothing");
    rig_free(&r);
    char plain[2048];
    rig_json = json_with(plain, sizeof plain, augmented_json(), "\"random_crop\": {\"padding\": 1}, ", "");
    r = rig_new(NB_F32, 1);
    ck_assert_int_eq(nb_trainer_fit(r.tr, NULL), NB_OK);
    weights_of(r.m, b, 1 << 16);
    ck_assert_msg(memcmp(a, b, n) != 0, "the crops changed nothing");
    rig_free(&r);
    free(a);
    free(b);
    rig_json = tiny_json;
}
END_TEST

/* A callback's negative status stops the fit and is its result. */
START_TEST(test_callback_status)
{
    rig r = rig_new(NB_F32, 1);
    stopper s = {.at_epoch = 2, .answer = NB_ERR_IO};
    nb_trainer_callbacks cb = {stop_batch, stop_epoch, &s};
    ck_assert_int_eq(nb_trainer_fit(r.tr, &cb), NB_ERR_IO);
    ck_assert_int_eq(nb_trainer_progress(r.tr)->epoch, 2);
    ck_assert_int_eq(s.batches, 10);
    rig_free(&r);
}
END_TEST

/* The metrics an epoch reports: the progress's sums, and the validation
 * examples evaluated. */
static int check_metrics(nb_trainer *tr, const nb_epoch_metrics *e, void *ud)
{
    const nb_dataset *val = ud;
    ck_assert(e->loss > 0 && e->accuracy >= 0 && e->accuracy <= 1 && e->seconds >= 0);
    ck_assert_double_eq_tol(e->lr, 0.01, 1e-15);
    /* The progress is at the next epoch's start. */
    const nb_train_progress *p = nb_trainer_progress(tr);
    ck_assert(p->epoch == e->epoch && p->batch == 0 && p->seen == 0 && p->seconds == 0);
    nb_eval_result r;
    ck_assert_int_eq(nb_trainer_evaluate(tr, val, 0, &r, NULL), NB_OK);
    ck_assert_int_eq(r.examples, 5);
    ck_assert(r.loss == e->val_loss && r.accuracy == e->val_accuracy);
    return 0;
}

static int sum_batches(nb_trainer *tr, const nb_train_progress *p, void *ud)
{
    (void)tr;
    nb_train_progress *last = ud;
    ck_assert_int_eq(p->seen, p->batch < p->batches ? 4 * p->batch : 17);
    *last = *p;
    return 0;
}

START_TEST(test_epoch_metrics)
{
    rig r = rig_new(NB_F32, 1);
    /* The validation examples, 17 to 21, as a data set of their own. */
    uint8_t px[5 * 16];
    int32_t labels[5];
    for (int i = 0; i < 5; i++) {
        memcpy(px + 16 * i, nb_dataset_image(r.ds, 17 + i), 16);
        labels[i] = nb_dataset_label(r.ds, 17 + i);
    }
    nb_dataset *val = nb_dataset_from(r.ctx, 5, 1, 4, 4, px, labels);
    nb_trainer_callbacks cb = {NULL, check_metrics, val};
    ck_assert_int_eq(nb_trainer_fit(r.tr, &cb), NB_OK);
    ck_assert_int_eq(nb_trainer_progress(r.tr)->steps, 15);
    /* The batches' sums, in a fresh fit. */
    rig b = rig_new(NB_F32, 1);
    nb_train_progress last;
    cb = (nb_trainer_callbacks){sum_batches, NULL, &last};
    ck_assert_int_eq(nb_trainer_fit(b.tr, &cb), NB_OK);
    ck_assert(last.batch == 5 && last.epoch == 2 && last.steps == 15);
    nb_dataset_free(val);
    rig_free(&b);
    rig_free(&r);
}
END_TEST

/* ---- non-finite values -------------------------------------------------------- */

static const char mlp_json[] =
    "{\"name\": \"mlp\", \"input\": [1, 4, 4], \"layers\": [{\"type\": \"flatten\"},"
    "{\"name\": \"h\", \"type\": \"linear\", \"out_features\": 4},"
    "{\"name\": \"g\", \"type\": \"linear\", \"out_features\": 4},"
    "{\"name\": \"o\", \"type\": \"linear\", \"out_features\": 3}],"
    " \"loss\": {\"type\": \"cross_entropy\"}, \"optimizer\": {\"type\": \"sgd\", \"lr\": 0.1},"
    " \"training\": {\"batch_size\": 4, \"epochs\": 1}}";

/* A NaN weight in h: the loss is NaN, h is named, and no update is made. */
START_TEST(test_nonfinite_loss)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = tiny(ctx, mlp_json, _i ? NB_F64 : NB_F32, 1);
    nb_dataset *ds = tiny_data(ctx, NDATA);
    nb_train_opts t;
    nb_optim_opts o;
    settings(ctx, m, &t, &o);
    nb_trainer *tr = nb_trainer_new(ctx, m, ds, 0, &t, &o);
    nb_set(nb_model_find(m, "h.weight"), 3, NAN);
    unsigned char *before = malloc(1 << 16), *after = malloc(1 << 16);
    size_t n = weights_of(m, before, 1 << 16);
    ck_assert_int_eq(nb_trainer_fit(tr, NULL), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "step 1 (epoch 1, batch 1): the loss is ");
    tst_assert_error(ctx, NB_ERR_ARG, "nan; the output of layer h (linear) is the first to hold a "
                                      "non-finite value");
    ck_assert_int_eq(nb_trainer_progress(tr)->steps, 0);
    weights_of(m, after, 1 << 16);
    ck_assert(memcmp(before, after, n) == 0);
    ck_assert_int_eq(nb_graph_size(ctx), 0);
    free(before);
    free(after);
    nb_trainer_free(tr);
    nb_dataset_free(ds);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* A finite loss whose gradient overflows float: h out about 1e20, g out
 * small, o's weights 1e20, so g's weight gradient (g's input times the
 * gradient at g's output) is about 1e40. */
START_TEST(test_nonfinite_gradient)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = tiny(ctx, mlp_json, NB_F32, 1);
    nb_dataset *ds = tiny_data(ctx, NDATA);
    nb_fill(nb_model_find(m, "h.weight"), 1e19);
    nb_fill(nb_model_find(m, "g.weight"), 1e-22);
    nb_tensor *w = nb_model_find(m, "o.weight");
    for (int64_t i = 0; i < w->numel; i++)
        nb_set(w, i, 1e20 * (double)(i / 4 + 1));
    nb_fill(nb_model_find(m, "h.bias"), 0);
    nb_fill(nb_model_find(m, "g.bias"), 0);
    nb_fill(nb_model_find(m, "o.bias"), 0);
    nb_train_opts t;
    nb_optim_opts o;
    settings(ctx, m, &t, &o);
    nb_trainer *tr = nb_trainer_new(ctx, m, ds, 0, &t, &o);
    ck_assert_int_eq(nb_trainer_fit(tr, NULL), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "step 1 (epoch 1, batch 1): a gradient is not finite");
    ck_assert_int_eq(nb_trainer_progress(tr)->steps, 0);
    nb_trainer_free(tr);
    nb_dataset_free(ds);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- dtypes and memory ---------------------------------------------------------- */

/* An f64 model trains in f64 batches, to about the f32 model's losses. */
static int record_loss(nb_trainer *tr, const nb_epoch_metrics *e, void *ud)
{
    (void)tr;
    ((double *)ud)[e->epoch - 1] = e->loss;
    return 0;
}

START_TEST(test_f64_model)
{
    double loss[2][3];
    for (int d = 0; d < 2; d++) {
        rig r = rig_new(d ? NB_F64 : NB_F32, 1);
        ck_assert_int_eq(r.tr->x->dtype, d ? NB_F64 : NB_F32);
        nb_trainer_callbacks cb = {NULL, record_loss, loss[d]};
        ck_assert_int_eq(nb_trainer_fit(r.tr, &cb), NB_OK);
        ck_assert_int_eq(nb_model_tensor(r.m, 0)->dtype, d ? NB_F64 : NB_F32);
        ck_assert_int_eq(nb_optim_state(nb_trainer_optim(r.tr), 0)->dtype, d ? NB_F64 : NB_F32);
        nb_eval_result res;
        ck_assert_int_eq(nb_trainer_evaluate(r.tr, r.ds, 0, &res, NULL), NB_OK);
        ck_assert(isfinite(res.loss));
        rig_free(&r);
    }
    for (int e = 0; e < 3; e++)
        ck_assert_msg(fabs(loss[0][e] - loss[1][e]) < 1e-3 * loss[1][e], "epoch %d: %g vs %g",
                      e + 1, loss[0][e], loss[1][e]);
    ck_assert(loss[1][2] < loss[1][0]); /* it learns */
}
END_TEST

typedef struct counts {
    nb_ctx *ctx;
    int n;
    uint64_t at[32];
} counts;

static int count_allocs(nb_trainer *tr, const nb_train_progress *p, void *ud)
{
    (void)tr;
    (void)p;
    counts *c = ud;
    ck_assert_int_lt(c->n, 32);
    c->at[c->n++] = nb_alloc_count(c->ctx);
    return 0;
}

/* Once warm, a step allocates nothing, the epoch's short last batch
 * included: the count stays put from the second step to the end of the
 * first epoch, and through every later epoch. */
START_TEST(test_warm_steps_allocate_nothing)
{
    rig r = rig_new(_i ? NB_F64 : NB_F32, 1);
    counts c = {.ctx = r.ctx};
    nb_trainer_callbacks cb = {count_allocs, NULL, &c};
    ck_assert_int_eq(nb_trainer_fit(r.tr, &cb), NB_OK);
    ck_assert_int_eq(c.n, 15);
    for (int i = 2; i < 5; i++)
        ck_assert_msg(c.at[i] == c.at[1], "step %d allocated", i + 1);
    for (int i = 6; i < 15; i++)
        ck_assert_msg(c.at[i] == c.at[5], "step %d allocated", i + 1);
    rig_free(&r);
}
END_TEST

/* Fails the k-th allocation for every k of making a trainer, fitting an
 * epoch, evaluating and saving: each reports NB_ERR_NOMEM or succeeds, and
 * nothing leaks. */
START_TEST(test_alloc_failure)
{
    char dir[256], path[300];
    temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/ckpt.safetensors", dir);
    int k = 0;
    for (;; k++) {
        tst_failing f = {k};
        nb_allocator a = {tst_failing_alloc, tst_failing_free, &f};
        nb_ctx *ctx = nb_ctx_new_with(&a);
        if (!ctx)
            continue;
        nb_model *m = nb_model_parse(ctx, tiny_json, sizeof tiny_json - 1, "t.json", NB_F32);
        nb_dataset *ds = m ? tiny_data_n(ctx, NDATA) : NULL;
        nb_trainer *tr = NULL;
        int rc = NB_ERR_NOMEM;
        if (ds) {
            nb_train_opts t;
            nb_optim_opts o;
            nb_model_train_opts(ctx, m, &t, &o);
            t.epochs = 1;
            tr = nb_trainer_new(ctx, m, ds, 0, &t, &o);
        }
        nb_eval_result res;
        if (tr && (rc = nb_trainer_fit(tr, NULL)) == NB_OK &&
            (rc = nb_trainer_evaluate(tr, ds, 0, &res, NULL)) == NB_OK)
            rc = nb_trainer_save(tr, path);
        if (!tr || rc != NB_OK)
            ck_assert_msg(nb_error(ctx) == NB_ERR_NOMEM, "k %d: %s", k, nb_errmsg(ctx));
        nb_trainer_free(tr);
        nb_dataset_free(ds);
        nb_model_free(m);
        nb_ctx_free(ctx);
        if (rc == NB_OK)
            break;
    }
    ck_assert_int_gt(k, 20);
    remove(path);
    rmdir(dir);
}
END_TEST

Suite *tst_suite_trainer(void)
{
    Suite *s = suite_create("trainer");
    TCase *tc = tcase_create("data");
    tcase_add_test(tc, test_split);
    tcase_add_test(tc, test_refusals);
    tcase_add_loop_test(tc, test_evaluate_by_hand, 0, 2);
    suite_add_tcase(s, tc);
    tc = tcase_create("checkpoints");
    tcase_add_test(tc, test_checkpoint_roundtrip);
    tcase_add_test(tc, test_checkpoint_write_fails);
    tcase_add_test(tc, test_checkpoint_refused);
    tcase_add_test(tc, test_checkpoint_predates_settings);
    tcase_add_loop_test(tc, test_checkpoint_edited, 0, (int)(sizeof edits / sizeof *edits));
    tcase_add_loop_test(tc, test_resume_other_settings, 0, 16);
    tcase_add_loop_test(tc, test_resume_more_epochs, 0, 2);
    tcase_add_test(tc, test_model_digest);
    suite_add_tcase(s, tc);
    tc = tcase_create("fit");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_resume_same_weights, 0, 3 * (int)(sizeof stops / sizeof *stops));
    tcase_add_test(tc, test_autoencoder_learns);
    tcase_add_test(tc, test_autoencoder_refusals);
    tcase_add_test(tc, test_autoencoder_callbacks);
    tcase_add_test(tc, test_augmented_weights);
    tcase_add_test(tc, test_callback_status);
    tcase_add_test(tc, test_epoch_metrics);
    tcase_add_loop_test(tc, test_nonfinite_loss, 0, 2);
    tcase_add_test(tc, test_nonfinite_gradient);
    tcase_add_test(tc, test_f64_model);
    suite_add_tcase(s, tc);
    tc = tcase_create("memory");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_warm_steps_allocate_nothing, 0, 2);
    tcase_add_test(tc, test_alloc_failure);
    suite_add_tcase(s, tc);
    return s;
}
