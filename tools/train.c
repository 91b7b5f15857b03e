/*
 * train.c - the data, steps and evaluation behind `nabla train` and
 * `nabla eval` (see train.h).
 */
#include "train.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FASHION_MNIST "/usr/share/datasets/fashion-mnist"

static const char *const fashion_names[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
};

const char *trainer_data_dir(const char *data)
{
    return !data || strcmp(data, "fashion-mnist") == 0 ? FASHION_MNIST : data;
}

const char *trainer_class_name(const trainer *tr, int label)
{
    int raw = tr->t.nclasses ? tr->t.classes[label] : label;
    const nb_dataset *ds = tr->test_ds ? tr->test_ds : tr->train_ds;
    const char *name = ds ? nb_dataset_class_name(ds, raw) : NULL;
    if (name)
        return name; /* a PNG folder's class */
    return tr->fashion && raw >= 0 && raw < 10 ? fashion_names[raw] : NULL;
}

/* The examples of ds whose label the model takes, in order. */
static int64_t *usable(trainer *tr, const nb_dataset *ds, int64_t *n)
{
    int64_t size = nb_dataset_size(ds);
    int64_t *idx = malloc((size_t)(size ? size : 1) * sizeof *idx);
    if (!idx)
        return NULL;
    int64_t k = 0;
    for (int64_t i = 0; i < size; i++) {
        int32_t l = nb_dataset_label(ds, i);
        if (l >= 0 && l < 256 && tr->map[l] >= 0)
            idx[k++] = i;
    }
    *n = k;
    return idx;
}

/* How the data's labels become the model's: the training section's
 * classes, numbered in order, or every label as it is. */
static int map_labels(trainer *tr, const nb_dataset *ds)
{
    for (int i = 0; i < 256; i++)
        tr->map[i] = tr->t.nclasses ? -1 : i;
    for (int i = 0; i < tr->t.nclasses; i++)
        tr->map[tr->t.classes[i]] = i;
    int data_classes = nb_dataset_num_classes(ds);
    tr->nlabels = tr->t.nclasses ? tr->t.nclasses : data_classes;

    int64_t out[NB_MAX_DIMS];
    int nd = nb_model_output_shape(tr->m, out);
    int64_t outputs = 1;
    for (int d = 0; d < nd; d++)
        outputs *= out[d];
    switch (nb_model_loss_kind(tr->m)) {
    case NB_LOSS_CROSS_ENTROPY:
        if (tr->nlabels > outputs)
            return cli_fail(CLI_USAGE, "the data has %d classes but the model \"%s\" has %" PRId64
                            " outputs (set \"classes\" in its training section?)",
                            tr->nlabels, nb_model_name(tr->m), outputs);
        break;
    case NB_LOSS_HINGE:
        if (tr->nlabels != 2)
            return cli_fail(CLI_USAGE, "the hinge loss of \"%s\" needs two classes; the data has "
                            "%d (set \"classes\": [a, b] in its training section)",
                            nb_model_name(tr->m), tr->nlabels);
        break;
    case NB_LOSS_MSE:
        return cli_fail(CLI_USAGE, "\"%s\" has an mse loss: training on class labels needs "
                        "cross_entropy or hinge", nb_model_name(tr->m));
    default:
        return cli_fail(CLI_USAGE, "\"%s\" has no loss to train with", nb_model_name(tr->m));
    }
    return CLI_OK;
}

/* The batch tensors: x [B, input...], and for the hinge loss targets [B]. */
static int make_batch(trainer *tr)
{
    int64_t shape[NB_MAX_DIMS + 1] = {tr->t.batch_size};
    int nd = nb_model_input_shape(tr->m, shape + 1) + 1;
    tr->x = nb_tensor_new(tr->ctx, NB_F32, nd, shape);
    tr->labels = calloc((size_t)tr->t.batch_size, sizeof *tr->labels);
    if (nb_model_loss_kind(tr->m) == NB_LOSS_HINGE)
        tr->target = nb_tensor_new(tr->ctx, NB_F32, 1, shape);
    if (!tr->x || !tr->labels || (nb_model_loss_kind(tr->m) == NB_LOSS_HINGE && !tr->target))
        return cli_fail_lib(tr->ctx, false);
    return CLI_OK;
}

/* The examples' shape must be the model's input. */
static int fits_model(trainer *tr, const nb_dataset *ds)
{
    int64_t ds_shape[3], in[NB_MAX_DIMS];
    nb_dataset_shape(ds, ds_shape);
    int nd = nb_model_input_shape(tr->m, in);
    int64_t numel = 1;
    for (int d = 0; d < nd; d++)
        numel *= in[d];
    if (numel != ds_shape[0] * ds_shape[1] * ds_shape[2])
        return cli_fail(CLI_USAGE, "%s: images are %" PRId64 "x%" PRId64 "x%" PRId64
                        " but the model \"%s\" takes %" PRId64 " values",
                        tr->dir, ds_shape[0], ds_shape[1], ds_shape[2], nb_model_name(tr->m),
                        numel);
    return CLI_OK;
}

/* The test examples the model takes, the first limit/4 with --limit. */
static int test_examples(trainer *tr)
{
    free(tr->test);
    tr->test = usable(tr, tr->test_ds, &tr->ntest);
    if (!tr->test)
        return cli_fail(CLI_RUNTIME, "out of memory");
    if (tr->limit > 0 && tr->limit / 4 < tr->ntest)
        tr->ntest = tr->limit / 4 > 0 ? tr->limit / 4 : 1;
    return CLI_OK;
}

void trainer_drop_test(trainer *tr)
{
    nb_dataset_free(tr->test_ds);
    tr->test_ds = NULL;
}

int trainer_reload_test(trainer *tr)
{
    int64_t before = tr->ntest;
    tr->test_ds = nb_dataset_load(tr->ctx, tr->dir, false);
    if (!tr->test_ds)
        return cli_fail_lib(tr->ctx, true);
    int rc = fits_model(tr, tr->test_ds);
    if (rc == CLI_OK && (rc = test_examples(tr)) == CLI_OK && tr->ntest != before)
        rc = cli_fail(CLI_USAGE, "%s: the test images changed while training ran", tr->dir);
    return rc;
}

int trainer_open(trainer *tr, const nb_train_opts *t, const nb_optim_opts *optim,
                 const char *data, int64_t limit)
{
    nb_ctx *ctx = tr->ctx;
    tr->t = *t;
    const char *dir = trainer_data_dir(data);
    tr->fashion = strcmp(dir, FASHION_MNIST) == 0;
    if (optim) {
        tr->train_ds = nb_dataset_load(ctx, dir, true);
        if (!tr->train_ds)
            return cli_fail_lib(ctx, true);
    }
    tr->test_ds = nb_dataset_load(ctx, dir, false);
    if (!tr->test_ds)
        return cli_fail_lib(ctx, true);

    tr->dir = dir;
    tr->limit = limit;
    int rc = fits_model(tr, tr->test_ds);
    if (rc != CLI_OK)
        return rc;
    rc = map_labels(tr, tr->train_ds ? tr->train_ds : tr->test_ds);
    if (rc != CLI_OK)
        return rc;

    if ((rc = test_examples(tr)) != CLI_OK)
        return rc;
    if (tr->train_ds) {
        int64_t n;
        tr->train = usable(tr, tr->train_ds, &n);
        if (!tr->train)
            return cli_fail(CLI_RUNTIME, "out of memory");
        if (limit > 0 && limit < n)
            n = limit;
        /* Keras's validation_split: the last fraction, before shuffling. */
        tr->nval = (int64_t)((double)n * t->validation_split);
        tr->ntrain = n - tr->nval;
        tr->val = tr->train + tr->ntrain;
        if (tr->ntrain < 1)
            return cli_fail(CLI_USAGE, "%s: no training examples left", dir);
        tr->order = malloc((size_t)tr->ntrain * sizeof *tr->order);
        if (!tr->order)
            return cli_fail(CLI_RUNTIME, "out of memory");
    }
    if ((rc = make_batch(tr)) != CLI_OK)
        return rc;

    if (optim) {
        tr->params = malloc((size_t)(nb_model_num_tensors(tr->m) + 1) * sizeof *tr->params);
        if (!tr->params)
            return cli_fail(CLI_RUNTIME, "out of memory");
        for (int i = 0; i < nb_model_num_tensors(tr->m); i++)
            if (!nb_model_is_buffer(tr->m, i))
                tr->params[tr->nparams++] = nb_model_tensor(tr->m, i);
        tr->opt = nb_optim_new(ctx, optim, tr->nparams, tr->params);
        if (!tr->opt)
            return cli_fail_lib(ctx, true);
    }
    return CLI_OK;
}

void trainer_close(trainer *tr)
{
    nb_optim_free(tr->opt);
    nb_dataset_free(tr->train_ds);
    nb_dataset_free(tr->test_ds);
    free(tr->train);
    free(tr->test);
    free(tr->order);
    free(tr->labels);
    free(tr->params);
    free(tr->ckpt);
    nb_tensor_free(tr->x);
    nb_tensor_free(tr->target);
    nb_tensor_free(tr->x_part);
    nb_tensor_free(tr->target_part);
    /* The context and the model are the caller's. */
    nb_ctx *ctx = tr->ctx;
    nb_model *m = tr->m;
    memset(tr, 0, sizeof *tr);
    tr->ctx = ctx;
    tr->m = m;
}

void trainer_shuffle(trainer *tr, nb_rng *rng)
{
    memcpy(tr->order, tr->train, (size_t)tr->ntrain * sizeof *tr->order);
    nb_shuffle(tr->order, tr->ntrain, rng);
}

bool trainer_has_accuracy(const trainer *tr)
{
    return nb_model_loss_kind(tr->m) != NB_LOSS_MSE;
}

/* Loads examples idx[0, n) into the batch; returns the input tensor (a
 * view when n is short of a full batch) or NULL. */
static nb_tensor *load(trainer *tr, const nb_dataset *ds, const int64_t *idx, int64_t n,
                       nb_tensor **target)
{
    nb_tensor *x = tr->x, *y = tr->target;
    if (n != tr->x->shape[0]) {
        /* A last, shorter batch: views of the batch buffers, made again only
         * when the length changes (twice an epoch at most). */
        if (!tr->x_part || tr->x_part->shape[0] != n) {
            int64_t shape[NB_MAX_DIMS];
            memcpy(shape, tr->x->shape, sizeof shape);
            shape[0] = n;
            nb_tensor_free(tr->x_part);
            nb_tensor_free(tr->target_part);
            tr->target_part = NULL;
            tr->x_part = nb_tensor_wrap(tr->ctx, NB_F32, tr->x->ndim, shape, tr->x->data);
            if (tr->target)
                tr->target_part = nb_tensor_wrap(tr->ctx, NB_F32, 1, shape, tr->target->data);
            if (!tr->x_part || (tr->target && !tr->target_part))
                return NULL;
        }
        x = tr->x_part;
        y = tr->target_part;
    }
    if (nb_dataset_batch(ds, idx, n, x, tr->labels, tr->t.mean, tr->t.std) != NB_OK)
        return NULL;
    for (int64_t i = 0; i < n; i++)
        tr->labels[i] = tr->map[tr->labels[i]];
    if (y)
        for (int64_t i = 0; i < n; i++)
            nb_set(y, i, tr->labels[i] == 1 ? 1.0 : -1.0);
    *target = y;
    return x;
}

/* Examples of the batch classified right: the largest logit, or the sign
 * of the hinge score. */
static int64_t count_correct(const trainer *tr, const nb_tensor *y, int64_t n, int64_t *confusion)
{
    int64_t right = 0, c = y->numel / n;
    const float *v = y->data;
    for (int64_t i = 0; i < n; i++) {
        int64_t pred = 0;
        if (nb_model_loss_kind(tr->m) == NB_LOSS_HINGE)
            pred = v[i] > 0;
        else
            for (int64_t j = 1; j < c; j++)
                if (v[i * c + j] > v[i * c + pred])
                    pred = j;
        right += pred == tr->labels[i];
        if (confusion && pred < tr->nlabels)
            confusion[tr->labels[i] * tr->nlabels + pred]++;
    }
    return right;
}

static bool finite_all(const nb_tensor *t)
{
    if (!t)
        return true;
    const float *v = t->data;
    float acc = 0;
    for (int64_t i = 0; i < t->numel; i++)
        acc += v[i] * 0.0f; /* stays 0 unless some v[i] is inf or nan */
    return acc == 0.0f;
}

/* Names the first layer, in the order the data flows, whose output (or,
 * with grad, its gradient) holds a non-finite value. */
static void blame(trainer *tr, bool grad, const char *what)
{
    int n = nb_model_num_layers(tr->m);
    for (int i = 0; i < n; i++) {
        nb_tensor *a = nb_model_activation(tr->m, i);
        if (a && !finite_all(grad ? a->grad : a)) {
            nb_layer_info info;
            nb_model_layer(tr->m, i, &info);
            snprintf(tr->why, sizeof tr->why, "%s; the %s of layer %s (%s) is the first to hold "
                     "a non-finite value", what, grad ? "gradient at the output" : "output",
                     info.name, info.type);
            return;
        }
    }
    snprintf(tr->why, sizeof tr->why, "%s", what);
}

int trainer_step(trainer *tr, int64_t b, step_result *s)
{
    nb_ctx *ctx = tr->ctx;
    int64_t bs = tr->t.batch_size, start = b * bs;
    int64_t n = start + bs <= tr->ntrain ? bs : tr->ntrain - start;
    nb_tensor *target;
    nb_tensor *x = load(tr, tr->train_ds, tr->order + start, n, &target);
    nb_tensor *y = x ? nb_model_forward(ctx, tr->m, x) : NULL;
    nb_tensor *loss = nb_model_loss(ctx, tr->m, y, tr->labels, target);
    if (!loss) {
        snprintf(tr->why, sizeof tr->why, "%s", nb_errmsg(ctx));
        return CLI_RUNTIME;
    }
    s->loss = nb_get(loss, 0);
    s->n = n;
    s->correct = count_correct(tr, y, n, NULL);
    if (!isfinite(s->loss)) {
        char what[64];
        snprintf(what, sizeof what, "the loss is %g", s->loss);
        blame(tr, false, what);
        nb_graph_reset(ctx);
        return CLI_RUNTIME;
    }
    if (nb_backward(ctx, loss) != NB_OK) {
        snprintf(tr->why, sizeof tr->why, "%s", nb_errmsg(ctx));
        return CLI_RUNTIME;
    }
    double limit = tr->t.clip_grad_norm > 0 ? tr->t.clip_grad_norm : INFINITY;
    double norm = nb_clip_grad_norm(tr->nparams, tr->params, limit);
    if (!isfinite(norm)) {
        blame(tr, true, "a gradient is not finite");
        nb_graph_reset(ctx);
        return CLI_RUNTIME;
    }
    nb_optim_step(tr->opt);
    nb_optim_zero_grad(tr->opt);
    nb_graph_reset(ctx);
    return CLI_OK;
}

int trainer_evaluate(trainer *tr, const nb_dataset *ds, const int64_t *idx, int64_t n,
                     double *loss, double *acc, int64_t *confusion)
{
    nb_ctx *ctx = tr->ctx;
    bool was_training = nb_set_training(ctx, false), grad = nb_set_grad_enabled(ctx, false);
    double sum = 0;
    int64_t right = 0, bs = tr->t.batch_size;
    int rc = CLI_OK;
    if (confusion)
        memset(confusion, 0, (size_t)(tr->nlabels * tr->nlabels) * sizeof *confusion);
    for (int64_t start = 0; start < n; start += bs) {
        int64_t k = start + bs <= n ? bs : n - start;
        nb_tensor *target;
        nb_tensor *x = load(tr, ds, idx + start, k, &target);
        nb_tensor *y = x ? nb_model_forward(ctx, tr->m, x) : NULL;
        nb_tensor *l = nb_model_loss(ctx, tr->m, y, tr->labels, target);
        if (!l) {
            rc = cli_fail_lib(ctx, false);
            break;
        }
        sum += nb_get(l, 0) * (double)k;
        right += count_correct(tr, y, k, confusion);
        nb_graph_reset(ctx);
    }
    nb_set_grad_enabled(ctx, grad);
    nb_set_training(ctx, was_training);
    *loss = n ? sum / (double)n : NAN;
    *acc = n ? (double)right / (double)n : NAN;
    return rc;
}

int trainer_checkpoint_tensors(trainer *tr)
{
    int n = nb_model_num_tensors(tr->m), k = tr->opt ? nb_optim_num_state(tr->opt) : 0;
    if (!tr->ckpt) {
        tr->ckpt = malloc((size_t)(n + k + 1) * sizeof *tr->ckpt);
        if (!tr->ckpt)
            return 0;
    }
    for (int i = 0; i < n; i++)
        tr->ckpt[i] = nb_model_tensor(tr->m, i);
    for (int i = 0; i < k; i++)
        tr->ckpt[n + i] = nb_optim_state(tr->opt, i);
    return n + k;
}
