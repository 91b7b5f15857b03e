/*
 * test_batch.c - sums over a batch's examples (batch.c): nb_batch_share's
 * table, the tree nbi_batch_sum adds, nb_ctx_set_batch's errors; and whole
 * training steps that give the same bits however the batch is divided:
 * over 1 and 2 threads on each CPU variant, and over P processes, played
 * here by threads that each hold a context and a model and exchange
 * through an in-process comm (an allgather on a barrier and a shared
 * table of pointers).
 */
#include "harness.h"
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* ---- nb_batch_share ------------------------------------------------------- */

static const struct share_case {
    int64_t total;
    int rank, size;
    int64_t first, count;
} share_cases[] = {
    {64, 0, 1, 0, 64},
    {64, 0, 2, 0, 32}, {64, 1, 2, 32, 32},
    {64, 0, 3, 0, 16}, {64, 1, 3, 16, 16}, {64, 2, 3, 32, 32},
    {64, 0, 4, 0, 16}, {64, 1, 4, 16, 16}, {64, 2, 4, 32, 16}, {64, 3, 4, 48, 16},
    {64, 0, 5, 0, 0}, {64, 1, 5, 0, 16}, {64, 2, 5, 16, 16}, {64, 3, 5, 32, 16},
    {64, 4, 5, 48, 16},
    {50, 0, 3, 0, 16}, {50, 1, 3, 16, 16}, {50, 2, 3, 32, 18},
    /* more ranks than groups: 2 groups over 4 */
    {20, 0, 4, 0, 0}, {20, 1, 4, 0, 16}, {20, 2, 4, 0, 0}, {20, 3, 4, 16, 4},
    /* bad arguments: nothing */
    {0, 0, 1, 0, 0}, {-5, 0, 1, 0, 0}, {64, 0, 0, 0, 0}, {64, -1, 2, 0, 0}, {64, 2, 2, 0, 0},
};

START_TEST(test_share)
{
    const struct share_case *c = &share_cases[_i];
    int64_t first = -1, count = -1;
    nb_batch_share(c->total, c->rank, c->size, &first, &count);
    ck_assert_msg(first == c->first && count == c->count,
                  "%lld over rank %d of %d: got [%lld, +%lld), want [%lld, +%lld)",
                  (long long)c->total, c->rank, c->size, (long long)first, (long long)count,
                  (long long)c->first, (long long)c->count);
}
END_TEST

/* ---- the tree ---------------------------------------------------------- */

/* Group sums where float order matters.  f32: 1e8 + 1 is 1e8 (its
 * spacing is 8), so the tree ((g0 + g1) + (g2 + g3)) + g4 of
 * [1e8, 1, -1e8, 1, 1] is (1e8 + -1e8) + 1 = 1, where adding in order
 * gives ((0 + 1) + 1) = 2; the second element [1, 1e8, -1e8, 1, 0] gives
 * (1e8 + -1e8) + 0 = 0 (in order: 1).  f64 the same with 1e17. */
START_TEST(test_tree)
{
    nb_ctx *ctx = nb_ctx_new();
    float pf[5][2] = {{1e8f, 1}, {1, 1e8f}, {-1e8f, -1e8f}, {1, 1}, {1, 0}};
    ck_assert_int_eq(nbi_batch_sum(ctx, "test", NB_F32, 65, pf, 2, pf), NB_OK);
    ck_assert_float_eq(pf[0][0], 1);
    ck_assert_float_eq(pf[0][1], 0);
    double pd[4][1] = {{1e17}, {1}, {-1e17}, {1}}, out;
    ck_assert_int_eq(nbi_batch_sum(ctx, "test", NB_F64, 64, pd, 1, &out), NB_OK);
    ck_assert_double_eq(out, 0); /* (1e17 + 1) + (-1e17 + 1) */
    double one = 7;
    ck_assert_int_eq(nbi_batch_sum(ctx, "test", NB_F64, 3, &one, 1, &out), NB_OK);
    ck_assert_double_eq(out, 7);
    ck_assert_int_eq(nbi_batch_total(ctx, 40), 40);
    ck_assert_int_eq(nbi_batch_first(ctx), 0);
    nb_ctx_free(ctx);
}
END_TEST

static int fail_allgather(void *ud, const void *send, void *recv, const size_t *bytes, char *why,
                          size_t why_size)
{
    snprintf(why, why_size, "the line went down");
    return -1;
}

START_TEST(test_set_batch)
{
    nb_ctx *ctx = nb_ctx_new();
    ck_assert_int_eq(nb_ctx_set_batch(ctx, -1, NULL), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "nb_ctx_set_batch: total -1 is negative");
    nb_comm c = {2, 2, fail_allgather, NULL};
    ck_assert_int_eq(nb_ctx_set_batch(ctx, 64, &c), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "comm of rank 2, size 2 is malformed");
    c = (nb_comm){0, 0, fail_allgather, NULL};
    ck_assert_int_eq(nb_ctx_set_batch(ctx, 64, &c), NB_ERR_ARG);
    c = (nb_comm){0, 2, NULL, NULL};
    ck_assert_int_eq(nb_ctx_set_batch(ctx, 64, &c), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "comm of rank 0, size 2 and no allgather is malformed");

    /* rank 1 of 2 holds [32, 64) of 64 */
    c = (nb_comm){1, 2, fail_allgather, NULL};
    ck_assert_int_eq(nb_ctx_set_batch(ctx, 64, &c), NB_OK);
    ck_assert_int_eq(nbi_batch_total(ctx, 32), 64);
    ck_assert_int_eq(nbi_batch_first(ctx), 32);
    double part[2] = {1, 2}, out;
    ck_assert_int_eq(nbi_batch_sum(ctx, "linear", NB_F64, 16, part, 1, &out), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG,
                     "linear: 16 examples, but rank 1's share of the batch of 64 is 32");
    ck_assert_int_eq(nbi_batch_sum(ctx, "linear", NB_F64, 32, part, 1, &out), NB_ERR_IO);
    tst_assert_error(ctx, NB_ERR_IO, "linear: exchanging the batch's sums with the other 1 "
                                     "processes: the line went down");
    /* an op's error names it, through its sum */
    int64_t s[] = {32, 3};
    nb_tensor *z = nb_tensor_full(ctx, NB_F32, 2, s, 0.5);
    int32_t labels[32] = {0};
    ck_assert_ptr_null(nb_cross_entropy(ctx, z, labels));
    tst_assert_error(ctx, NB_ERR_IO, "cross_entropy: exchanging the batch's sums");
    /* back to one process */
    ck_assert_int_eq(nb_ctx_set_batch(ctx, 0, NULL), NB_OK);
    ck_assert_int_eq(nbi_batch_total(ctx, 32), 32);
    ck_assert_ptr_nonnull(nb_cross_entropy(ctx, z, labels));
    nb_ctx_free(ctx);
}
END_TEST

/* ---- training steps ------------------------------------------------------ */

/* conv, batch norm (2-D and 1-D), dropout2d and dropout */
static const char bn_model[] =
    "{\"name\": \"bn\", \"input\": [2, 10, 10], \"layers\": ["
    "{\"type\": \"conv2d\", \"out_channels\": 6, \"kernel_size\": 3},"
    "{\"type\": \"batch_norm\"}, {\"type\": \"relu\"},"
    "{\"type\": \"dropout2d\", \"p\": 0.25},"
    "{\"type\": \"conv2d\", \"out_channels\": 40, \"kernel_size\": 3, \"stride\": 2},"
    "{\"type\": \"max_pool2d\", \"kernel_size\": 2}, {\"type\": \"flatten\"},"
    "{\"type\": \"linear\", \"out_features\": 24}, {\"type\": \"batch_norm\"},"
    "{\"type\": \"relu\"}, {\"type\": \"dropout\", \"p\": 0.5},"
    "{\"type\": \"linear\", \"out_features\": 10}],"
    "\"loss\": {\"type\": \"cross_entropy\"}}";

/* group norm (in 2 groups and per channel) and layer norm over [C, H, W],
 * [H, W] and features; run as the model "norm" */
static const char norm_model[] =
    "{\"name\": \"norm\", \"input\": [1, 28, 28], \"layers\": ["
    "{\"type\": \"conv2d\", \"out_channels\": 6, \"kernel_size\": 5, \"stride\": 2},"
    "{\"type\": \"group_norm\", \"num_groups\": 2}, {\"type\": \"relu\"},"
    "{\"type\": \"conv2d\", \"out_channels\": 8, \"kernel_size\": 3},"
    "{\"type\": \"group_norm\", \"num_groups\": 8}, {\"type\": \"layer_norm\"},"
    "{\"type\": \"max_pool2d\", \"kernel_size\": 2},"
    "{\"type\": \"layer_norm\", \"normalized_shape\": [5, 5]}, {\"type\": \"flatten\"},"
    "{\"type\": \"linear\", \"out_features\": 24}, {\"type\": \"layer_norm\", \"normalized_shape\": 24},"
    "{\"type\": \"relu\"}, {\"type\": \"linear\", \"out_features\": 10}],"
    "\"loss\": {\"type\": \"cross_entropy\"}}";

/* Grouped, depthwise (with a stride, relu fused) and dilated convolutions,
 * as a MobileNet block has them. */
static const char mobile_model[] =
    "{\"name\": \"mobile\", \"input\": [3, 12, 12], \"layers\": ["
    "{\"type\": \"conv2d\", \"out_channels\": 8, \"kernel_size\": 3, \"padding\": 1},"
    "{\"type\": \"conv2d\", \"out_channels\": 8, \"kernel_size\": 3, \"stride\": 2,"
    " \"padding\": 1, \"groups\": 8, \"activation\": \"relu\"},"
    "{\"type\": \"conv2d\", \"out_channels\": 16, \"kernel_size\": 1},"
    "{\"type\": \"conv2d\", \"out_channels\": 32, \"kernel_size\": 3, \"groups\": 16,"
    " \"padding\": 1},"
    "{\"type\": \"conv2d\", \"out_channels\": 8, \"kernel_size\": 3, \"groups\": 4,"
    " \"dilation\": 2, \"padding\": 2, \"activation\": \"relu\"},"
    "{\"type\": \"flatten\"}, {\"type\": \"linear\", \"out_features\": 10}],"
    "\"loss\": {\"type\": \"cross_entropy\"}}";

typedef struct run_spec {
    const char *model;      /* a file under models/, "norm", "mobile" or NULL (the inline ones) */
    int64_t total;          /* the batch */
    const nb_comm *comm;    /* NULL: one process holds it whole */
    nb_optim_kind optim;
    int steps;
} run_spec;

#define MAX_STEPS 3
typedef struct run_out {
    double loss[MAX_STEPS];
    size_t nw, ng;                 /* bytes of weights (and buffers), of gradients */
    unsigned char *weights, *grads; /* after the last step; the last step's */
    char err[256];
} run_out;

/* The batch's data, the same on every process: x in [0, 1), labels, and
 * +-1 targets for the hinge loss. */
typedef struct batch_data {
    float *x;
    int32_t *labels;
    float *targets;
    int64_t per; /* an example's values */
} batch_data;

static void make_data(batch_data *d, int64_t total, int64_t per)
{
    d->per = per;
    d->x = malloc(sizeof *d->x * (size_t)(total * per));
    d->labels = malloc(sizeof *d->labels * (size_t)total);
    d->targets = malloc(sizeof *d->targets * (size_t)total);
    nb_rng rng;
    nb_rng_seed(&rng, 42);
    for (int64_t i = 0; i < total * per; i++)
        d->x[i] = (float)nb_rng_uniform(&rng);
    for (int64_t i = 0; i < total; i++) {
        d->labels[i] = (int32_t)nb_rng_below(&rng, 10);
        d->targets[i] = d->labels[i] % 2 ? 1.0f : -1.0f;
    }
}

static void free_data(batch_data *d)
{
    free(d->x);
    free(d->labels);
    free(d->targets);
}

/* Appends every tensor's data (or gradient) of m to one buffer. */
static unsigned char *snapshot(nb_model *m, bool grads, size_t *bytes)
{
    size_t n = 0;
    for (int i = 0; i < nb_model_num_tensors(m); i++) {
        nb_tensor *t = nb_model_tensor(m, i);
        if (!grads || t->grad)
            n += (size_t)t->numel * nb_dtype_size(t->dtype);
    }
    unsigned char *buf = malloc(n ? n : 1), *at = buf;
    for (int i = 0; i < nb_model_num_tensors(m); i++) {
        nb_tensor *t = nb_model_tensor(m, i);
        const nb_tensor *src = grads ? t->grad : t;
        if (!src)
            continue;
        size_t k = (size_t)t->numel * nb_dtype_size(t->dtype);
        memcpy(at, src->data, k);
        at += k;
    }
    *bytes = n;
    return buf;
}

static nb_model *load_model(nb_ctx *ctx, const char *name)
{
    if (!name)
        return nb_model_parse(ctx, bn_model, sizeof bn_model - 1, "bn", NB_F32);
    if (strcmp(name, "norm") == 0)
        return nb_model_parse(ctx, norm_model, sizeof norm_model - 1, "norm", NB_F32);
    if (strcmp(name, "mobile") == 0)
        return nb_model_parse(ctx, mobile_model, sizeof mobile_model - 1, "mobile", NB_F32);
    char path[512];
    snprintf(path, sizeof path, "%s/%s.json", MODELS_DIR, name);
    return nb_model_load(ctx, path, NB_F32);
}

/* The values in one example of the named model's input: the data's stride. */
static int64_t example_size(const char *name)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = ctx ? load_model(ctx, name) : NULL;
    int64_t shape[NB_MAX_DIMS], per = 0;
    if (m) {
        int nd = nb_model_input_shape(m, shape);
        per = 1;
        for (int i = 0; i < nd; i++)
            per *= shape[i];
    }
    nb_model_free(m);
    nb_ctx_free(ctx);
    ck_assert_msg(per > 0, "%s: the model does not load", name ? name : "bn");
    return per;
}

/* Steps of training on this process's share of the batch (one example of
 * it, for an empty share): forward, loss, backward, the norm a trainer
 * takes, an optimizer step. */
static int train_steps(nb_ctx *ctx, nb_model *m, const run_spec *s, const batch_data *d,
                       run_out *o)
{
    int64_t first = 0, count = s->total;
    if (s->comm) {
        nb_batch_share(s->total, s->comm->rank, s->comm->size, &first, &count);
        if (nb_ctx_set_batch(ctx, s->total, s->comm))
            return -1;
    }
    int64_t n = count ? count : 1, shape[NB_MAX_DIMS], ts[1] = {n};
    int nd = nb_model_input_shape(m, shape + 1) + 1;
    shape[0] = n;
    nb_tensor *x = nb_tensor_wrap(ctx, NB_F32, nd, shape, d->x + first * d->per);
    nb_tensor *target = nb_tensor_wrap(ctx, NB_F32, 1, ts, d->targets + first);
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_model_init(m, &rng);
    nb_tensor *params[64];
    int np = 0;
    for (int i = 0; i < nb_model_num_tensors(m) && np < 64; i++)
        if (!nb_model_is_buffer(m, i))
            params[np++] = nb_model_tensor(m, i);
    nb_optim_opts oo = nb_optim_defaults(s->optim);
    if (s->optim == NB_SGD)
        oo.lr = 0.05, oo.momentum = 0.9;
    nb_optim *opt = nb_optim_new(ctx, &oo, np, params);
    if (!x || !target || !opt)
        return -1;
    bool hinge = nb_model_loss_kind(m) == NB_LOSS_HINGE;
    for (int step = 0; step < s->steps; step++) {
        nb_tensor *loss = nb_model_loss(ctx, m, nb_model_forward(ctx, m, x), d->labels + first,
                                        hinge ? target : NULL);
        if (!loss || nb_backward(ctx, loss))
            return -1;
        o->loss[step] = nb_get(loss, 0);
        nb_clip_grad_norm(np, params, 1e30);
        if (step == s->steps - 1)
            o->grads = snapshot(m, true, &o->ng);
        if (nb_optim_step(opt))
            return -1;
        nb_optim_zero_grad(opt);
        nb_graph_reset(ctx);
    }
    o->weights = snapshot(m, false, &o->nw);
    nb_optim_free(opt);
    return 0;
}

static void run(const run_spec *s, const batch_data *d, run_out *o)
{
    memset(o, 0, sizeof *o);
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = ctx ? load_model(ctx, s->model) : NULL;
    if (!m || train_steps(ctx, m, s, d, o))
        snprintf(o->err, sizeof o->err, "%s", ctx ? nb_errmsg(ctx) : "no context");
    nb_model_free(m);
    nb_ctx_free(ctx);
}

static void free_out(run_out *o)
{
    free(o->weights);
    free(o->grads);
}

/* a and b hold the same bits; what names the run. */
static void assert_same(const run_out *a, const run_out *b, int steps, const char *what)
{
    ck_assert_msg(!a->err[0] && !b->err[0], "%s: %s%s", what, a->err, b->err);
    for (int i = 0; i < steps; i++)
        ck_assert_msg(memcmp(&a->loss[i], &b->loss[i], sizeof(double)) == 0,
                      "%s: step %d's loss %.17g vs %.17g", what, i, a->loss[i], b->loss[i]);
    ck_assert_msg(a->ng == b->ng && memcmp(a->grads, b->grads, a->ng) == 0,
                  "%s: the gradients differ", what);
    ck_assert_msg(a->nw == b->nw && memcmp(a->weights, b->weights, a->nw) == 0,
                  "%s: the weights differ", what);
}

/* ---- the in-process comm ------------------------------------------------ */

#define MAX_RANKS 4
typedef struct world {
    int size, arrived;
    unsigned generation;
    bool broken;                  /* a rank timed out: every exchange fails */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    const void *send[MAX_RANKS];
} world;

typedef struct rank_ctx {
    world *w;
    int rank;
} rank_ctx;

/* All ranks meet; false when one is missing for a minute (a rank that
 * failed before its exchange), so a bug fails the test instead of hanging. */
static bool meet(world *w)
{
    pthread_mutex_lock(&w->lock);
    unsigned gen = w->generation;
    if (++w->arrived == w->size) {
        w->arrived = 0;
        w->generation++;
        pthread_cond_broadcast(&w->cond);
    } else {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 60;
        while (gen == w->generation && !w->broken)
            if (pthread_cond_timedwait(&w->cond, &w->lock, &until) == ETIMEDOUT)
                w->broken = true;
        pthread_cond_broadcast(&w->cond);
    }
    bool ok = !w->broken;
    pthread_mutex_unlock(&w->lock);
    return ok;
}

static int world_allgather(void *ud, const void *send, void *recv, const size_t *bytes,
                           char *why, size_t why_size)
{
    rank_ctx *r = ud;
    world *w = r->w;
    w->send[r->rank] = send;
    if (!meet(w)) {
        snprintf(why, why_size, "rank %d waited in vain", r->rank);
        return -1;
    }
    size_t at = 0;
    for (int q = 0; q < w->size; q++) {
        memcpy((char *)recv + at, w->send[q], bytes[q]);
        at += bytes[q];
    }
    /* no rank leaves (and reuses its send buffer) before all have read */
    if (!meet(w)) {
        snprintf(why, why_size, "rank %d waited in vain", r->rank);
        return -1;
    }
    return 0;
}

typedef struct rank_job {
    run_spec spec;
    nb_comm comm;
    rank_ctx rc;
    const batch_data *d;
    run_out out;
} rank_job;

static void *rank_main(void *arg)
{
    rank_job *j = arg;
    run(&j->spec, j->d, &j->out);
    if (j->out.err[0]) { /* the others would wait for this one */
        pthread_mutex_lock(&j->rc.w->lock);
        j->rc.w->broken = true;
        pthread_cond_broadcast(&j->rc.w->cond);
        pthread_mutex_unlock(&j->rc.w->lock);
    }
    return NULL;
}

static const struct split_case {
    const char *model;
    int64_t total;
    int ranks;
    nb_optim_kind optim;
} split_cases[] = {
    {"lenet", 64, 2, NB_SGD},
    {"lenet", 64, 3, NB_ADAM},
    {"lenet", 64, 4, NB_SGD},
    {NULL, 64, 2, NB_SGD},
    {NULL, 50, 3, NB_ADAM},   /* 16, 16, 18 */
    {NULL, 40, 4, NB_SGD},    /* 3 groups: rank 0 holds nothing */
    {"lenet", 40, 4, NB_ADAM},
    {"binary", 40, 3, NB_SGD}, /* the hinge loss */
    {"norm", 50, 3, NB_ADAM}, /* layer_norm and group_norm */
    {"norm", 40, 4, NB_SGD},
    {"mobile", 40, 3, NB_ADAM},
};

/* The batch split over P ranks gives, on every rank, the bits of one
 * process holding it whole: losses, the last gradients, the weights and
 * the batch norms' running statistics. */
START_TEST(test_split)
{
    const struct split_case *c = &split_cases[_i];
    int64_t per = example_size(c->model);
    batch_data d;
    make_data(&d, c->total, per);
    run_spec whole = {c->model, c->total, NULL, c->optim, 2};
    run_out ref;
    run(&whole, &d, &ref);
    ck_assert_msg(!ref.err[0], "%s", ref.err);

    world w = {.size = c->ranks};
    pthread_mutex_init(&w.lock, NULL);
    pthread_cond_init(&w.cond, NULL);
    rank_job jobs[MAX_RANKS];
    pthread_t th[MAX_RANKS];
    for (int r = 0; r < c->ranks; r++) {
        jobs[r] = (rank_job){.spec = whole, .comm = {r, c->ranks, world_allgather, NULL},
                             .rc = {&w, r}, .d = &d};
        jobs[r].comm.ud = &jobs[r].rc;
        jobs[r].spec.comm = &jobs[r].comm;
        ck_assert_int_eq(pthread_create(&th[r], NULL, rank_main, &jobs[r]), 0);
    }
    for (int r = 0; r < c->ranks; r++)
        pthread_join(th[r], NULL);
    for (int r = 0; r < c->ranks; r++) {
        char what[128];
        snprintf(what, sizeof what, "%s, %lld over rank %d of %d", c->model ? c->model : "bn",
                 (long long)c->total, r, c->ranks);
        assert_same(&ref, &jobs[r].out, 2, what);
        free_out(&jobs[r].out);
    }
    free_out(&ref);
    free_data(&d);
    pthread_cond_destroy(&w.cond);
    pthread_mutex_destroy(&w.lock);
}
END_TEST

/* Every model of models/ that trains, and the batch-norm one, on 1 and 2
 * threads: the same bits, on each CPU variant this machine has.  A batch
 * of 40: three groups, the last one short, fewer than two per thread. */
static const char *const thread_models[] = {"lenet", "keras-cnn", "cnn3", "mlp", "binary",
                                            "dropout-net", "resnet-mini", "norm", "mobile",
                                            NULL};

START_TEST(test_threads)
{
    const char *model = thread_models[_i / 3], *kernels = tst_kernels[_i % 3];
    const char *old_kernels = nb_cpu_kernels();
    char what[128];
    snprintf(what, sizeof what, "test_threads: %s", model ? model : "bn");
    if (!tst_use_kernels(kernels, what))
        return;
    int64_t per = example_size(model);
    batch_data d;
    make_data(&d, 40, per);
    run_spec s = {model, 40, NULL, _i % 2 ? NB_SGD : NB_ADAM, 2};
    run_out one, two;
    int old = nb_set_num_threads(1);
    run(&s, &d, &one);
    nb_set_num_threads(2);
    run(&s, &d, &two);
    nb_set_num_threads(old);
    nb_set_cpu_kernels(old_kernels, NULL, 0);
    snprintf(what, sizeof what, "%s (%s), 1 and 2 threads", model ? model : "bn", kernels);
    assert_same(&one, &two, 2, what);
    free_out(&one);
    free_out(&two);
    free_data(&d);
}
END_TEST

/* The AVX-512 kernels give the AVX2 kernels' bits: two steps of each model
 * on 2 threads, with one and then the other. */
START_TEST(test_kernels_agree)
{
    const char *model = thread_models[_i], *old_kernels = nb_cpu_kernels();
    char what[128];
    snprintf(what, sizeof what, "test_kernels_agree: %s", model ? model : "bn");
    if (!tst_use_kernels("avx2", what) || !tst_use_kernels("avx512", what)) {
        nb_set_cpu_kernels(old_kernels, NULL, 0);
        return;
    }
    int64_t per = example_size(model);
    batch_data d;
    make_data(&d, 40, per);
    run_spec s = {model, 40, NULL, _i % 2 ? NB_SGD : NB_ADAM, 2};
    run_out wide, narrow;
    int old = nb_set_num_threads(2);
    run(&s, &d, &wide);
    nb_set_cpu_kernels("avx2", NULL, 0);
    run(&s, &d, &narrow);
    nb_set_num_threads(old);
    nb_set_cpu_kernels(old_kernels, NULL, 0);
    snprintf(what, sizeof what, "%s, avx512 and avx2 kernels", model ? model : "bn");
    assert_same(&wide, &narrow, 2, what);
    free_out(&wide);
    free_out(&narrow);
    free_data(&d);
}
END_TEST

Suite *tst_suite_batch(void)
{
    Suite *s = suite_create("batch");
    TCase *tc = tcase_create("sums");
    tcase_add_loop_test(tc, test_share, 0, (int)(sizeof share_cases / sizeof share_cases[0]));
    tcase_add_test(tc, test_tree);
    tcase_add_test(tc, test_set_batch);
    suite_add_tcase(s, tc);
    TCase *steps = tcase_create("steps");
    tcase_set_timeout(steps, 600);
    tcase_add_loop_test(steps, test_split, 0, (int)(sizeof split_cases / sizeof split_cases[0]));
    int nmodels = (int)(sizeof thread_models / sizeof thread_models[0]);
    tcase_add_loop_test(steps, test_threads, 0, 3 * nmodels);
    tcase_add_loop_test(steps, test_kernels_agree, 0, nmodels);
    suite_add_tcase(s, steps);
    return s;
}
