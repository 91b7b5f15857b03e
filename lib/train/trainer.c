/*
 * trainer.c - the training loop of nabla.h's nb_trainer: the data split,
 * the batches, one step, evaluation, and the epochs with their callbacks.
 *
 * It is built on the public API below it (models, optimizers, data sets)
 * and the context's allocator, and knows nothing of terminals, signals or
 * output files: it never prints, and tells the caller everything through
 * the callbacks, the progress and the context's message.  Checkpoints are
 * checkpoint.c's.  When processes share the batches (shard.c's
 * nb_trainer_set_comm), each step and each evaluation batch feeds this
 * process's share of it, the counts are added over the processes and the
 * callbacks' answers agreed (the shard_* functions below); alone, they do
 * nothing and every batch is whole here, as before.
 */
#include "train/trainer.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- the data ---------------------------------------------------------- */

/* The examples' size must be the model's input's, in the data's channels,
 * or in gray (the mean of colour) or colour (gray repeated), as
 * nb_dataset_batch converts them. */
static int check_fits(const nb_trainer *tr, const nb_dataset *ds)
{
    int64_t shape[3], in[NB_MAX_DIMS];
    char dims[64];
    nb_dataset_shape(ds, shape);
    int nd = nb_model_input_shape(tr->m, in);
    int64_t numel = 1, plane = shape[1] * shape[2];
    for (int d = 0; d < nd; d++)
        numel *= in[d];
    if (numel != shape[0] * plane && numel != plane && !(shape[0] == 1 && numel == 3 * plane))
        return nbi_fail(tr->ctx, NB_ERR_ARG, "%s: images are %" PRId64 "x%" PRId64 "x%" PRId64
                        " but the model \"%s\" takes %" PRId64 " values (%s; resize the "
                        "images to the model's input)", nb_dataset_origin(ds), shape[0],
                        shape[1], shape[2], nb_model_name(tr->m), numel,
                        nb_dims_str(nd, in, dims, sizeof dims));
    return NB_OK;
}

static int64_t count_outputs(const nb_model *m)
{
    int64_t out[NB_MAX_DIMS], n = 1;
    int nd = nb_model_output_shape(m, out);
    for (int d = 0; d < nd; d++)
        n *= out[d];
    return n;
}

static bool input_target(const nb_trainer *tr)
{
    return tr->t.target == NB_TARGET_INPUT;
}

/* An autoencoder's output is compared with its input: the loss must be
 * mse and the output of the input's shape, or its flattening. */
static int check_input_target(nb_trainer *tr)
{
    const char *name = nb_model_name(tr->m);
    if (nb_model_loss_kind(tr->m) != NB_LOSS_MSE)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "\"%s\": target \"input\" compares the output with "
                        "the input image: the loss must be mse", name);
    if (tr->t.nclasses)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "\"%s\": with target \"input\" every example is "
                        "used, whatever its label: classes must be empty", name);
    int64_t in[NB_MAX_DIMS], out[NB_MAX_DIMS], numel = 1;
    int ni = nb_model_input_shape(tr->m, in), no = nb_model_output_shape(tr->m, out);
    for (int d = 0; d < ni; d++)
        numel *= in[d];
    bool same = ni == no && memcmp(in, out, (size_t)ni * sizeof *in) == 0;
    if (same || (no == 1 && out[0] == numel))
        return NB_OK;
    char a[64], b[64];
    return nbi_fail(tr->ctx, NB_ERR_ARG, "\"%s\": target \"input\" needs the output to have "
                    "the input's shape %s (or its flattening [%" PRId64 "]), but the output is %s",
                    name, nb_dims_str(ni, in, a, sizeof a), numel, nb_dims_str(no, out, b, sizeof b));
}

/* How the data's labels become the model's: the training section's
 * classes, numbered in order, or every label as it is; and whether the
 * model's loss can learn them.  With the input as target there are none. */
static int map_labels(nb_trainer *tr, const nb_dataset *data)
{
    const nb_train_opts *t = &tr->t;
    const char *name = nb_model_name(tr->m);
    if (input_target(tr)) {
        tr->nlabels = 0;
        return check_input_target(tr);
    }
    for (int i = 0; i < NB_MAX_CLASSES; i++)
        tr->map[i] = t->nclasses ? -1 : i;
    for (int i = 0; i < t->nclasses; i++)
        tr->map[t->classes[i]] = i;
    tr->nlabels = t->nclasses ? t->nclasses : nb_dataset_num_classes(data);
    int64_t outputs = count_outputs(tr->m);
    switch (nb_model_loss_kind(tr->m)) {
    case NB_LOSS_CROSS_ENTROPY:
        if (tr->nlabels > outputs)
            return nbi_fail(tr->ctx, NB_ERR_ARG, "the data has %d classes but the model \"%s\" "
                            "has %" PRId64 " outputs (set \"classes\" in its training section?)",
                            tr->nlabels, name, outputs);
        break;
    case NB_LOSS_HINGE:
        if (tr->nlabels != 2)
            return nbi_fail(tr->ctx, NB_ERR_ARG, "the hinge loss of \"%s\" needs two classes; the "
                            "data has %d (set \"classes\": [a, b] in its training section)", name,
                            tr->nlabels);
        break;
    case NB_LOSS_MSE:
        return nbi_fail(tr->ctx, NB_ERR_ARG, "\"%s\" has an mse loss: training on class labels "
                        "needs cross_entropy or hinge (for an autoencoder, set \"target\": "
                        "\"input\" in its training section)", name);
    default:
        return nbi_fail(tr->ctx, NB_ERR_ARG, "\"%s\" has no loss to train with", name);
    }
    /* Labels past the map are never the model's. */
    if (tr->nlabels > NB_MAX_CLASSES)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "the data has %d classes; \"%s\" can learn at most %d "
                        "(set \"classes\" in its training section)", tr->nlabels, name,
                        NB_MAX_CLASSES);
    return NB_OK;
}

/* Every example serves an autoencoder, whatever its label. */
static bool usable(const nb_trainer *tr, int32_t label)
{
    return input_target(tr) || (label >= 0 && label < NB_MAX_CLASSES && tr->map[label] >= 0);
}

/* Appends to idx the examples of ds in [lo, hi) whose label the model
 * takes, in order, the first `limit` of them when limit > 0; returns how
 * many. */
static int64_t select_range(const nb_trainer *tr, const nb_dataset *ds, int64_t lo, int64_t hi,
                            int64_t limit, int64_t *idx)
{
    int64_t k = 0;
    for (int64_t i = lo; i < hi && (limit <= 0 || k < limit); i++)
        if (usable(tr, nb_dataset_label(ds, i)))
            idx[k++] = i;
    return k;
}

/* The examples of ds whose label the model takes, in order, the first
 * `limit` of them when limit > 0; NULL when out of memory. */
static int64_t *select_examples(const nb_trainer *tr, const nb_dataset *ds, int64_t limit,
                                int64_t *n)
{
    int64_t size = nb_dataset_size(ds);
    int64_t *idx = nbi_alloc(tr->ctx, (size_t)(size ? size : 1) * sizeof *idx);
    if (idx)
        *n = select_range(tr, ds, 0, size, limit, idx);
    return idx;
}

/* A digest of examples idx[0, n) of the data, in order: each one's label
 * (four bytes, little-endian) and pixels. */
static uint64_t digest_examples(const nb_dataset *ds, const int64_t *idx, int64_t n)
{
    int64_t shape[3];
    nb_dataset_shape(ds, shape);
    size_t values = (size_t)(shape[0] * shape[1] * shape[2]);
    uint64_t h = NBI_HASH_INIT;
    for (int64_t i = 0; i < n; i++) {
        uint32_t v = (uint32_t)nb_dataset_label(ds, idx[i]);
        unsigned char label[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                                  (unsigned char)(v >> 16), (unsigned char)(v >> 24)};
        h = nbi_hash(h, label, sizeof label);
        const uint8_t *pixels = nb_dataset_image(ds, idx[i]);
        h = pixels ? nbi_hash(h, pixels, values)
                   : nbi_hash(h, nb_dataset_values(ds, idx[i]), values * sizeof(float));
    }
    return h;
}

/* The data's origin for a checkpoint's metadata: bytes outside printable
 * ASCII (and '%') as %XX, so that any path is valid UTF-8. */
static char *copy_origin(nb_ctx *ctx, const char *s)
{
    char *out = nbi_alloc(ctx, 3 * strlen(s) + 1), *p = out;
    for (; out && *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c >= 0x7f || c == '%')
            p += sprintf(p, "%%%02X", c);
        else
            *p++ = (char)c;
    }
    if (out)
        *p = '\0';
    return out;
}

int nbi_trainer_reserve(nb_trainer *tr, int n)
{
    if (n <= tr->hist_cap)
        return NB_OK;
    int cap = tr->hist_cap <= INT32_MAX / 2 && 2 * tr->hist_cap > n ? 2 * tr->hist_cap : n;
    nb_epoch_metrics *h = nbi_alloc(tr->ctx, (size_t)cap * sizeof *h);
    if (!h)
        return NB_ERR_NOMEM;
    if (tr->hist_cap)
        memcpy(h, tr->hist, (size_t)tr->hist_cap * sizeof *h);
    nbi_free(tr->ctx, tr->hist);
    tr->hist = h;
    tr->hist_cap = cap;
    return NB_OK;
}

/* The usable examples of the data: training, then validation; and what a
 * checkpoint records of them. */
static int split(nb_trainer *tr, int64_t limit)
{
    int64_t size = nb_dataset_size(tr->data), own = nb_dataset_validation(tr->data);
    if (own && tr->t.validation_split > 0)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "%s: the data has its own validation split (%" PRId64
                        " examples): validation_split must be 0", nb_dataset_origin(tr->data),
                        own);
    tr->examples = nbi_alloc(tr->ctx, (size_t)(size ? size : 1) * sizeof *tr->examples);
    if (!tr->examples)
        return NB_ERR_NOMEM;
    /* The limit is the training examples'; the data's own validation
     * examples all validate. */
    int64_t n = select_range(tr, tr->data, 0, size - own, limit, tr->examples);
    int64_t nown = select_range(tr, tr->data, size - own, size, 0, tr->examples + n);
    n += nown;
    tr->limit = limit;
    tr->data_size = nb_dataset_size(tr->data);
    tr->data_digest = digest_examples(tr->data, tr->examples, n);
    if (!(tr->origin = copy_origin(tr->ctx, nb_dataset_origin(tr->data))))
        return NB_ERR_NOMEM;
    /* Keras's validation_split: the last fraction, before shuffling. */
    tr->nval = own ? nown : (int64_t)((double)n * tr->t.validation_split);
    tr->ntrain = n - tr->nval;
    if (tr->ntrain < 1)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "%s: no training examples left",
                        nb_dataset_origin(tr->data));
    tr->order = nbi_alloc(tr->ctx, (size_t)tr->ntrain * sizeof *tr->order);
    if (!tr->order)
        return NB_ERR_NOMEM;
    int64_t bs = tr->t.batch_size;
    tr->p.batches = (tr->ntrain + bs - 1) / bs;
    return NB_OK;
}

/* ---- processes sharing the batches (nb_trainer_set_comm) ----------------- */

/* The part of a batch of n examples this process feeds: *first (from the
 * batch's start) and the count; a process whose share is empty feeds the
 * batch's first example (*empty), which counts for nothing. */
static int64_t shard_part(const nb_trainer *tr, int64_t n, int64_t *first, bool *empty)
{
    *first = 0;
    *empty = false;
    if (!tr->shared)
        return n;
    int64_t count;
    nb_batch_share(n, tr->comm.rank, tr->comm.size, first, &count);
    if (count > 0)
        return count;
    /* Any one example: the ops run on it and count it for nothing. */
    *first = 0;
    *empty = true;
    return 1;
}

/* Tells the ops that batches now are of n examples shared by the
 * processes (n 0: each batch whole here again). */
static void shard_batch(nb_trainer *tr, int64_t n)
{
    /* The comm was checked by nb_trainer_set_comm: this cannot fail. */
    if (tr->shared)
        nb_ctx_set_batch(tr->ctx, n, n > 0 ? &tr->comm : NULL);
}

/* A callback's answer, agreed: the first non-zero one in rank order. */
static int shard_answer(nb_trainer *tr, int *answer)
{
    if (!tr->shared)
        return NB_OK;
    int64_t v = *answer;
    int rc = nb_comm_first(tr->ctx, &tr->comm, &v, NULL);
    *answer = (int)v;
    return rc;
}

/* vals[0, n): sums over the processes. */
static int shard_sum(nb_trainer *tr, int64_t *vals, int n)
{
    return tr->shared ? nb_comm_sum_i64(tr->ctx, &tr->comm, vals, n) : NB_OK;
}

/* ---- batches ----------------------------------------------------------- */

/* v as views of the first n examples of the batch buffers. */
static int view_of(nb_trainer *tr, nbi_train_view *v, int64_t n)
{
    if (v->x && v->x->shape[0] == n)
        return NB_OK;
    int64_t shape[NB_MAX_DIMS];
    memcpy(shape, tr->x->shape, sizeof shape);
    shape[0] = n;
    nb_tensor_free(v->x);
    nb_tensor_free(v->target);
    v->target = NULL;
    v->x = nb_tensor_wrap(tr->ctx, tr->x->dtype, tr->x->ndim, shape, tr->x->data);
    if (v->x && tr->target) {
        int64_t ts[NB_MAX_DIMS];
        memcpy(ts, tr->target->shape, sizeof ts);
        ts[0] = n;
        v->target = nb_tensor_wrap(tr->ctx, tr->target->dtype, tr->target->ndim, ts,
                                   tr->target->data);
    }
    if (!v->x || (tr->target && !v->target)) {
        nb_tensor_free(v->x);
        v->x = NULL;
        return NB_ERR_NOMEM;
    }
    return NB_OK;
}

/* The batch tensors, in the model's dtype: x [B, input...], the labels,
 * and for the hinge loss targets [B]; with the input as target, the
 * target is x itself in the output's shape [B, output...], so that it is
 * the input exactly as the model gets it, augmented or not. */
static int make_batch(nb_trainer *tr)
{
    nb_dtype dt = nb_model_dtype(tr->m);
    if (dt != NB_F32 && dt != NB_F64)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "the model \"%s\" is of dtype %d: a trainer takes f32 "
                        "or f64", nb_model_name(tr->m), (int)dt);
    int64_t shape[NB_MAX_DIMS + 1] = {tr->t.batch_size};
    int nd = nb_model_input_shape(tr->m, shape + 1) + 1;
    tr->x = nb_tensor_new(tr->ctx, dt, nd, shape);
    bool hinge = !input_target(tr) && nb_model_loss_kind(tr->m) == NB_LOSS_HINGE;
    if (tr->x && hinge)
        tr->target = nb_tensor_new(tr->ctx, dt, 1, shape);
    if (tr->x && input_target(tr)) {
        int no = nb_model_output_shape(tr->m, shape + 1) + 1;
        tr->target = nb_tensor_wrap(tr->ctx, dt, no, shape, tr->x->data);
    }
    tr->labels = nbi_alloc(tr->ctx, (size_t)tr->t.batch_size * sizeof *tr->labels);
    if (!tr->x || ((hinge || input_target(tr)) && !tr->target) || !tr->labels)
        return NB_ERR_NOMEM;
    return nbi_trainer_views(tr);
}

int nbi_trainer_views(nb_trainer *tr)
{
    /* The parts of a full batch and of the epoch's last, shorter one are
     * made ready here, so that no step allocates. */
    int64_t first, bs = tr->t.batch_size, rest = tr->ntrain % bs;
    bool empty;
    int64_t full = shard_part(tr, bs, &first, &empty);
    int rc = full != bs ? view_of(tr, &tr->mine, full) : NB_OK;
    if (rc == NB_OK && rest)
        rc = view_of(tr, &tr->last, shard_part(tr, rest, &first, &empty));
    return rc;
}

/* Loads examples idx[0, n) of ds: returns the input (v's view when n is
 * short of a full batch) and sets *target, or NULL. */
static nb_tensor *load(nb_trainer *tr, const nb_dataset *ds, const int64_t *idx, int64_t n,
                       nbi_train_view *v, nb_tensor **target)
{
    nb_tensor *x = tr->x, *y = tr->target;
    if (n != tr->x->shape[0]) {
        if (view_of(tr, v, n) != NB_OK)
            return NULL;
        x = v->x;
        y = v->target;
    }
    const double *std = tr->t.std[0] != 0 ? tr->t.std : NULL;
    if (nb_dataset_batch(ds, idx, n, x, tr->labels, tr->t.mean, std) != NB_OK)
        return NULL;
    if (input_target(tr)) { /* y views x */
        *target = y;
        return x;
    }
    for (int64_t i = 0; i < n; i++)
        tr->labels[i] = tr->map[tr->labels[i]];
    if (y) /* hinge: the second class is +1, the first -1 */
        for (int64_t i = 0; i < n; i++)
            nb_set(y, i, tr->labels[i] == 1 ? 1.0 : -1.0);
    *target = y;
    return x;
}

/* Examples of the batch classified right: the largest output, or the sign
 * of the hinge score; confusion (if not NULL) counts [true][predicted]. */
static int64_t count_correct(const nb_trainer *tr, const nb_tensor *y, int64_t n,
                             int64_t *confusion)
{
    if (input_target(tr)) /* nothing to classify */
        return 0;
    int64_t right = 0, c = y->numel / n;
    bool hinge = nb_model_loss_kind(tr->m) == NB_LOSS_HINGE;
    for (int64_t i = 0; i < n; i++) {
        int64_t pred = 0;
        if (hinge)
            pred = nb_get(y, i) > 0;
        else
            for (int64_t j = 1; j < c; j++)
                if (nb_get(y, i * c + j) > nb_get(y, i * c + pred))
                    pred = j;
        right += pred == tr->labels[i];
        /* Another data set than the trainer's may hold labels past its
         * count: right or wrong, but outside the matrix. */
        if (confusion && pred < tr->nlabels && tr->labels[i] < tr->nlabels)
            confusion[tr->labels[i] * tr->nlabels + pred]++;
    }
    return right;
}

/* ---- one step ---------------------------------------------------------- */

static bool finite_all(const nb_tensor *t)
{
    if (!t)
        return true;
    double acc = 0;
    for (int64_t i = 0; i < t->numel; i++)
        acc += nb_get(t, i) * 0.0; /* stays 0 unless some value is inf or nan */
    return acc == 0.0;
}

enum { BLAME_NONE, BLAME_OUTPUT, BLAME_GRAD };

/* Fails step b of the epoch with `code`: `what` (NULL: the context's
 * message), then, with blame, the first layer in the order the data flows
 * whose output (or its gradient) holds a non-finite value.  The step's
 * graph and gradients are dropped, so the weights stay the last good
 * step's. */
static int step_fail(nb_trainer *tr, int64_t b, int code, const char *what, int blame)
{
    char why[512];
    snprintf(why, sizeof why, "%s", what ? what : nb_errmsg(tr->ctx));
    for (int i = 0; blame != BLAME_NONE && i < nb_model_num_layers(tr->m); i++) {
        nb_tensor *a = nb_model_activation(tr->m, i);
        if (a && !finite_all(blame == BLAME_GRAD ? a->grad : a)) {
            nb_layer_info info;
            nb_model_layer(tr->m, i, &info);
            snprintf(why, sizeof why, "%s; the %s of layer %s (%s) is the first to hold a "
                     "non-finite value", what, blame == BLAME_GRAD ? "gradient at the output" :
                     "output", info.name, info.type);
            break;
        }
    }
    nb_optim_zero_grad(tr->opt);
    nb_graph_reset(tr->ctx);
    return nbi_fail(tr->ctx, code, "step %" PRId64 " (epoch %d, batch %" PRId64 "): %s",
                    nb_optim_steps(tr->opt) + 1, tr->p.epoch + 1, b + 1, why);
}

static bool augmenting(const nb_augment *a)
{
    return a->crop_padding || a->translate || a->hflip > 0;
}

/* The epoch's seed of the augmentation's draws: from the run's seed (its
 * dropout draws from seed + 1, its shuffle from seed + 2) and the epoch. */
static uint64_t augment_seed(const nb_trainer *tr)
{
    uint64_t key[2] = {tr->t.seed + 3, (uint64_t)tr->p.epoch};
    return nbi_hash(NBI_HASH_INIT, key, sizeof key);
}

/* Forward, loss, backward, clipping and update on batch b of the epoch's
 * order, added to the epoch's sums. */
static int step(nb_trainer *tr, int64_t b)
{
    nb_ctx *ctx = tr->ctx;
    int64_t bs = tr->t.batch_size, start = b * bs, first;
    int64_t n = start + bs <= tr->ntrain ? bs : tr->ntrain - start;
    bool empty;
    /* Shared, this process feeds its part of the batch; the ops' sums and
     * the loss are the whole batch's all the same. */
    int64_t k = shard_part(tr, n, &first, &empty);
    shard_batch(tr, n);
    nb_tensor *target;
    nb_tensor *x = load(tr, tr->data, tr->order + start + first, k, n == bs ? &tr->mine : &tr->last,
                        &target);
    if (x && augmenting(&tr->t.augment) &&
        nb_augment_batch(x, tr->data_shape[1], tr->data_shape[2], &tr->t.augment,
                         augment_seed(tr), start + first, tr->black) != NB_OK)
        x = NULL;
    nb_tensor *y = x ? nb_model_forward(ctx, tr->m, x) : NULL;
    nb_tensor *loss = nb_model_loss(ctx, tr->m, y, tr->labels, target);
    if (!loss)
        return step_fail(tr, b, nb_error(ctx), NULL, BLAME_NONE);
    double value = nb_get(loss, 0);
    if (!isfinite(value)) {
        char what[64];
        snprintf(what, sizeof what, "the loss is %g", value);
        return step_fail(tr, b, NB_ERR_ARG, what, BLAME_OUTPUT);
    }
    int64_t right = empty ? 0 : count_correct(tr, y, k, NULL);
    if (nb_backward(ctx, loss) != NB_OK)
        return step_fail(tr, b, nb_error(ctx), NULL, BLAME_NONE);
    /* The gradients are complete here, the whole batch's on every process. */
    double limit = tr->t.clip_grad_norm > 0 ? tr->t.clip_grad_norm : INFINITY;
    if (!isfinite(nb_clip_grad_norm(tr->nparams, tr->params, limit)))
        return step_fail(tr, b, NB_ERR_ARG, "a gradient is not finite", BLAME_GRAD);
    nb_optim_step(tr->opt);
    nb_optim_zero_grad(tr->opt);
    nb_graph_reset(ctx);
    if (tr->shared && shard_sum(tr, &right, 1) != NB_OK)
        return step_fail(tr, b, nb_error(ctx), NULL, BLAME_NONE);
    tr->p.loss_sum += value * (double)n;
    tr->p.correct += right;
    tr->p.seen += n;
    tr->p.steps = nb_optim_steps(tr->opt);
    return NB_OK;
}

/* ---- evaluation -------------------------------------------------------- */

/* Mean loss and accuracy over examples idx[0, n) of ds, in eval mode. */
static int evaluate(nb_trainer *tr, const nb_dataset *ds, const int64_t *idx, int64_t n,
                    nb_eval_result *r, int64_t *confusion)
{
    nb_ctx *ctx = tr->ctx;
    bool was_training = nb_set_training(ctx, false), grad = nb_set_grad_enabled(ctx, false);
    double sum = 0;
    int64_t right = 0, bs = tr->t.batch_size;
    int rc = NB_OK;
    if (confusion)
        memset(confusion, 0, (size_t)(tr->nlabels * tr->nlabels) * sizeof *confusion);
    for (int64_t start = 0; start < n; start += bs) {
        int64_t k = start + bs <= n ? bs : n - start, first;
        bool empty;
        int64_t mine = shard_part(tr, k, &first, &empty);
        shard_batch(tr, k);
        nb_tensor *target;
        nb_tensor *x = load(tr, ds, idx + start + first, mine, k == bs ? &tr->mine : &tr->part,
                            &target);
        nb_tensor *y = x ? nb_model_forward(ctx, tr->m, x) : NULL;
        nb_tensor *l = nb_model_loss(ctx, tr->m, y, tr->labels, target);
        if (!l) {
            rc = nb_error(ctx);
            nb_graph_reset(ctx);
            break;
        }
        sum += nb_get(l, 0) * (double)k;
        right += empty ? 0 : count_correct(tr, y, mine, confusion);
        nb_graph_reset(ctx);
    }
    shard_batch(tr, 0);
    if (rc == NB_OK && tr->shared && (rc = shard_sum(tr, &right, 1)) == NB_OK && confusion)
        rc = shard_sum(tr, confusion, tr->nlabels * tr->nlabels);
    nb_set_grad_enabled(ctx, grad);
    nb_set_training(ctx, was_training);
    r->examples = n;
    r->loss = n ? sum / (double)n : NAN;
    r->accuracy = n && !input_target(tr) ? (double)right / (double)n : NAN;
    return rc;
}

int64_t nb_trainer_examples(const nb_trainer *tr, const nb_dataset *ds, int64_t limit)
{
    if (!ds) {
        nbi_fail(tr->ctx, NB_ERR_ARG, "trainer_examples: the data set is NULL");
        return -1;
    }
    if (check_fits(tr, ds) != NB_OK)
        return -1;
    int64_t k = 0, size = nb_dataset_size(ds);
    for (int64_t i = 0; i < size && (limit <= 0 || k < limit); i++)
        k += usable(tr, nb_dataset_label(ds, i));
    return k;
}

int nb_trainer_evaluate(nb_trainer *tr, const nb_dataset *ds, int64_t limit,
                        nb_eval_result *result, int64_t *confusion)
{
    if (!ds || !result)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "trainer_evaluate: %s is NULL",
                        ds ? "result" : "the data set");
    if (check_fits(tr, ds) != NB_OK)
        return NB_ERR_ARG;
    int64_t n;
    int64_t *idx = select_examples(tr, ds, limit, &n);
    if (!idx)
        return NB_ERR_NOMEM;
    int rc = evaluate(tr, ds, idx, n, result, confusion);
    nbi_free(tr->ctx, idx);
    return rc;
}

/* ---- the epochs -------------------------------------------------------- */

/* A callback's answer as fit's: 0 goes on. */
static int stop_code(int answer)
{
    return answer < 0 ? answer : answer > 0 ? NB_TRAIN_STOPPED : NB_OK;
}

/* The rest of the current epoch: its batches from p.batch on, then its
 * validation; the progress then moves to the next epoch. */
static int run_epoch(nb_trainer *tr, const nb_trainer_callbacks *cb)
{
    nb_train_progress *p = &tr->p;
    nb_optim_set_lr(tr->opt, nbi_callbacks_lr(tr));
    /* The order is drawn again from the epoch's starting state, so a
     * resumed epoch goes on with the same order. */
    nb_rng next = tr->shuffle;
    memcpy(tr->order, tr->examples, (size_t)tr->ntrain * sizeof *tr->order);
    nb_shuffle(tr->order, tr->ntrain, &next);
    double start = now() - p->seconds;
    int rc;
    while (p->batch < p->batches) {
        nb_optim_set_lr(tr->opt, nbi_callbacks_lr(tr)); /* warmup may change it a step */
        if ((rc = step(tr, p->batch)) != NB_OK)
            return rc;
        p->batch++;
        p->seconds = now() - start;
        int answer = cb->on_batch ? cb->on_batch(tr, p, cb->ud) : 0;
        if ((rc = shard_answer(tr, &answer)) != NB_OK || (rc = stop_code(answer)) != NB_OK)
            return rc;
    }
    nb_epoch_metrics e = {
        .epoch = p->epoch + 1,
        .loss = p->loss_sum / (double)p->seen,
        .accuracy = input_target(tr) ? NAN : (double)p->correct / (double)p->seen,
        .val_loss = NAN,
        .val_accuracy = NAN,
        .lr = nb_optim_lr(tr->opt),
    };
    if (tr->nval) {
        nb_eval_result val;
        if ((rc = evaluate(tr, tr->data, tr->examples + tr->ntrain, tr->nval, &val, NULL)) != NB_OK)
            return rc;
        e.val_loss = val.loss;
        e.val_accuracy = val.accuracy;
    }
    e.seconds = now() - start;
    nbi_callbacks_epoch(tr, &e);
    if ((rc = nbi_trainer_reserve(tr, p->epoch + 1)) != NB_OK)
        return rc;
    tr->hist[p->epoch] = e;
    /* The epoch is done: the next starts from a fresh state. */
    tr->shuffle = next;
    p->epoch++;
    p->batch = 0;
    p->loss_sum = 0;
    p->correct = p->seen = 0;
    p->seconds = 0;
    int answer = cb->on_epoch ? cb->on_epoch(tr, &e, cb->ud) : 0;
    return (rc = shard_answer(tr, &answer)) != NB_OK ? rc : stop_code(answer);
}

int nb_trainer_fit(nb_trainer *tr, const nb_trainer_callbacks *cb)
{
    if (!tr->opt)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "trainer: made without an optimizer, it only "
                        "evaluates");
    static const nb_trainer_callbacks none = {0};
    bool was_training = nb_set_training(tr->ctx, true), grad = nb_set_grad_enabled(tr->ctx, true);
    int rc = NB_OK;
    while (rc == NB_OK && tr->p.epoch < tr->t.epochs && !tr->stopped)
        rc = run_epoch(tr, cb ? cb : &none);
    shard_batch(tr, 0);
    nb_set_grad_enabled(tr->ctx, grad);
    nb_set_training(tr->ctx, was_training);
    return rc;
}

/* ---- making one -------------------------------------------------------- */

/* The optimizer over the model's parameters that train (not its buffers
 * nor frozen layers'), and the list of what a checkpoint holds. */
static int make_optim(nb_trainer *tr, const nb_optim_opts *o)
{
    int n = nb_model_num_tensors(tr->m);
    tr->params = nbi_alloc(tr->ctx, (size_t)(n + 1) * sizeof *tr->params);
    if (!tr->params)
        return NB_ERR_NOMEM;
    for (int i = 0; i < n; i++)
        if (nb_model_tensor(tr->m, i)->requires_grad)
            tr->params[tr->nparams++] = nb_model_tensor(tr->m, i);
    tr->opt = nb_optim_new(tr->ctx, o, tr->nparams, tr->params);
    if (!tr->opt)
        return nb_error(tr->ctx);
    int rc = nbi_callbacks_make(tr);
    if (rc != NB_OK)
        return rc;
    tr->lr = o->lr;
    tr->o = *o;
    tr->model_digest = nb_model_digest(tr->m);
    /* The history's room for the epochs planned (up to a bound: it grows
     * after an epoch if need be), so that fit allocates nothing for it. */
    if (nbi_trainer_reserve(tr, tr->t.epochs < 1024 ? tr->t.epochs : 1024) != NB_OK)
        return NB_ERR_NOMEM;
    int k = nb_optim_num_state(tr->opt);
    tr->ckpt = nbi_alloc(tr->ctx, (size_t)(n + k + tr->nbest + 1) * sizeof *tr->ckpt);
    if (!tr->ckpt)
        return NB_ERR_NOMEM;
    for (int i = 0; i < n; i++)
        tr->ckpt[tr->nckpt++] = nb_model_tensor(tr->m, i);
    for (int i = 0; i < k; i++)
        tr->ckpt[tr->nckpt++] = nb_optim_state(tr->opt, i);
    for (int i = 0; i < tr->nbest; i++)
        tr->ckpt[tr->nckpt++] = tr->best[i];
    return NB_OK;
}

static int check_args(nb_ctx *ctx, const nb_model *m, const nb_dataset *data,
                      const nb_train_opts *t)
{
    if (!m || !data || !t)
        return nbi_fail(ctx, NB_ERR_ARG, "trainer: %s is NULL",
                        !m ? "the model" : !data ? "the data set" : "the training settings");
    if (t->batch_size < 1 || t->epochs < 0 || !(t->validation_split >= 0) ||
        !(t->validation_split <= 1) || t->nclasses < 0 || t->nclasses > NB_MAX_CLASSES ||
        (t->target != NB_TARGET_LABEL && t->target != NB_TARGET_INPUT))
        return nbi_fail(ctx, NB_ERR_ARG, "trainer: bad settings (batch_size %d, epochs %d, "
                        "validation_split %g, %d classes, target %d)", t->batch_size, t->epochs,
                        t->validation_split, t->nclasses, (int)t->target);
    for (int i = 0; i < t->nclasses; i++)
        if (t->classes[i] < 0 || t->classes[i] >= NB_MAX_CLASSES)
            return nbi_fail(ctx, NB_ERR_ARG, "trainer: classes[%d] = %" PRId32 " is not a label "
                            "in [0, %d)", i, t->classes[i], NB_MAX_CLASSES);
    int64_t in[NB_MAX_DIMS];
    int64_t channels = nb_model_input_shape(m, in) == 3 && in[0] <= NB_MAX_CHANNELS ? in[0] : 1;
    for (int c = 0; t->std[0] != 0 && c < channels; c++)
        if (!(t->std[c] > 0) || !isfinite(t->std[c]) || !isfinite(t->mean[c]))
            return nbi_fail(ctx, NB_ERR_ARG, "trainer: channel %d's normalisation, mean %g and std "
                            "%g (std > 0, both finite)", c, t->mean[c], t->std[c]);
    const nb_augment *a = &t->augment;
    if (a->crop_padding < 0 || a->translate < 0 || !(a->hflip >= 0 && a->hflip <= 1) ||
        (a->crop_padding && a->translate))
        return nbi_fail(ctx, NB_ERR_ARG, "trainer: bad augmentation (crop padding %d, translate "
                        "%d, hflip %g: at most one shift, >= 0, and a probability)",
                        a->crop_padding, a->translate, a->hflip);
    return NB_OK;
}

nb_trainer *nb_trainer_new(nb_ctx *ctx, nb_model *m, nb_dataset *data, int64_t limit,
                           const nb_train_opts *t, const nb_optim_opts *o)
{
    if (check_args(ctx, m, data, t) != NB_OK)
        return NULL;
    /* What a step will need, before anything is made for it. */
    if (o && nb_model_check_memory(m, t->batch_size, o) != NB_OK)
        return NULL;
    nb_trainer *tr = nbi_alloc(ctx, sizeof *tr);
    if (!tr)
        return NULL;
    memset(tr, 0, sizeof *tr);
    tr->ctx = ctx;
    tr->m = m;
    tr->t = *t;
    tr->data = data;
    int rc = check_fits(tr, data);
    nb_dataset_shape(data, tr->data_shape);
    /* The crop pads with black, whatever the normalisation makes of it. */
    for (int c = 0; c < NB_MAX_CHANNELS; c++)
        tr->black[c] = t->std[0] != 0 && t->std[c] > 0 ? -t->mean[c] / t->std[c] : 0;
    if (rc == NB_OK)
        rc = map_labels(tr, data);
    if (rc == NB_OK && o)
        rc = split(tr, limit);
    if (rc == NB_OK)
        rc = make_batch(tr);
    if (rc == NB_OK && o)
        rc = make_optim(tr, o);
    if (rc != NB_OK) {
        nb_trainer_free(tr);
        return NULL;
    }
    if (o) {
        nb_rng_seed(nb_model_rng(m), t->seed + 1);
        nb_rng_seed(&tr->shuffle, t->seed + 2);
    }
    return tr;
}

void nb_trainer_free(nb_trainer *tr)
{
    if (!tr)
        return;
    nb_ctx *ctx = tr->ctx;
    nb_optim_free(tr->opt);
    nbi_callbacks_free(tr);
    nbi_free(ctx, tr->examples);
    nbi_free(ctx, tr->order);
    nbi_free(ctx, tr->labels);
    nbi_free(ctx, tr->params);
    nbi_free(ctx, tr->ckpt);
    nbi_free(ctx, tr->origin);
    nbi_free(ctx, tr->hist);
    nb_tensor_free(tr->last.x);
    nb_tensor_free(tr->last.target);
    nb_tensor_free(tr->part.x);
    nb_tensor_free(tr->part.target);
    nb_tensor_free(tr->mine.x);
    nb_tensor_free(tr->mine.target);
    nb_tensor_free(tr->x);
    nb_tensor_free(tr->target);
    nbi_free(ctx, tr);
}

/* ---- what it holds ----------------------------------------------------- */

const nb_train_progress *nb_trainer_progress(const nb_trainer *tr)
{
    return &tr->p;
}

const nb_epoch_metrics *nb_trainer_history(const nb_trainer *tr, int *n)
{
    *n = tr->opt ? tr->p.epoch : 0;
    return tr->hist;
}

int64_t nb_trainer_num_train(const nb_trainer *tr)
{
    return tr->ntrain;
}

int64_t nb_trainer_num_val(const nb_trainer *tr)
{
    return tr->nval;
}

int nb_trainer_num_labels(const nb_trainer *tr)
{
    return tr->nlabels;
}

nb_optim *nb_trainer_optim(const nb_trainer *tr)
{
    return tr->opt;
}
