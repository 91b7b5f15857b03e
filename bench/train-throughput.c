/*
 * train-throughput.c - how fast nabla trains: whole training steps of a
 * model file, timed as `nabla train` takes them, and the conv2d, linear and
 * max_pool2d ops alone at the course's layer shapes.
 *
 *   train-throughput MODEL.json [--batch N] [--threads N] [--steps N]
 *                    [--warmup N] [--repeats R] [--data DIR|random]
 *                    [--dtype f32|f64]
 *   train-throughput --ops [--only TEXT] [--threads N] [--batch N] [--dtype f32|f64]
 *
 * A training step is forward, the model's loss, backward, the gradient norm
 * (nb_clip_grad_norm, which `nabla train` always computes), the model file's
 * optimizer step, zero_grad and nb_graph_reset.  Batches are converted to
 * float before timing starts.  docs/performance.md describes the output and
 * how FLOPs are counted.  Public API only.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <nabla.h>

#define FASHION_MNIST "/usr/share/datasets/fashion-mnist"
#define MAX_POOL 64 /* distinct batches held as float, cycled through */

static const char *usage =
    "usage: train-throughput MODEL.json [--batch N] [--threads N] [--steps N] [--warmup N]\n"
    "                        [--repeats R] [--data DIR|random] [--dtype f32|f64]\n"
    "       train-throughput --ops [--only TEXT] [--threads N] [--batch N] [--dtype f32|f64]\n";

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sorts v[n] and returns its median. */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static double peak_rss_mib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* ru_maxrss is in KiB on Linux */
}

static int oom(void)
{
    fprintf(stderr, "train-throughput: out of memory\n");
    return 1;
}

/* Exit status 2 for bad input (a file, a shape), 1 for a runtime failure. */
static int lib_fail(nb_ctx *ctx, const char *what)
{
    int code = nb_error(ctx);
    fprintf(stderr, "train-throughput: %s: %s\n", what, nb_errmsg(ctx));
    return code == NB_ERR_NOMEM || code == NB_ERR_GRAPH || code == NB_OK ? 1 : 2;
}

/* ---- options ------------------------------------------------------------ */

typedef struct options {
    const char *model;
    const char *data;  /* a directory, or "random" */
    bool ops;
    const char *only;  /* --ops: the cases whose name contains it */
    int64_t batch;     /* 0: the model file's batch size */
    int64_t threads;
    int64_t steps, warmup, repeats;
    nb_dtype dtype;
} options;

static int parse_int(const char *flag, const char *v, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    long long n = v ? strtoll(v, &end, 10) : 0;
    if (!v || !*v || *end || n < lo || n > hi) {
        fprintf(stderr, "train-throughput: %s: '%s' is not an integer in [%lld, %lld]\n", flag,
                v ? v : "", (long long)lo, (long long)hi);
        return 2;
    }
    *out = n;
    return 0;
}

static int parse_args(int argc, char **argv, options *o)
{
    const char *env = getenv("NABLA_NUM_THREADS");
    *o = (options){.threads = 2, .steps = 50, .warmup = 5, .repeats = 5, .dtype = NB_F32};
    if (env && parse_int("NABLA_NUM_THREADS", env, 1, 1024, &o->threads))
        return 2;
    const char *cpu = getenv("NABLA_CPU");
    char why[160];
    if (cpu && *cpu && nb_set_cpu_kernels(cpu, why, sizeof why)) {
        fprintf(stderr, "train-throughput: NABLA_CPU: %s\n", why);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int rc = 0;
        if (strcmp(a, "--ops") == 0) {
            o->ops = true;
            continue;
        }
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            exit(0);
        }
        if (a[0] != '-') {
            if (o->model) {
                fprintf(stderr, "train-throughput: one model file only ('%s' and '%s')\n",
                        o->model, a);
                return 2;
            }
            o->model = a;
            continue;
        }
        static const char *const valued[] = {"--batch", "--threads", "--steps", "--warmup",
                                             "--repeats", "--data", "--dtype", "--only",
                                             NULL};
        int known = 0;
        while (valued[known] && strcmp(valued[known], a) != 0)
            known++;
        if (!valued[known]) {
            fprintf(stderr, "train-throughput: unknown option '%s'\n%s", a, usage);
            return 2;
        }
        if (!v) {
            fprintf(stderr, "train-throughput: %s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--batch") == 0)
            rc = parse_int(a, v, 1, 1 << 16, &o->batch);
        else if (strcmp(a, "--threads") == 0)
            rc = parse_int(a, v, 1, 1024, &o->threads);
        else if (strcmp(a, "--steps") == 0)
            rc = parse_int(a, v, 1, 1 << 24, &o->steps);
        else if (strcmp(a, "--warmup") == 0)
            rc = parse_int(a, v, 0, 1 << 24, &o->warmup);
        else if (strcmp(a, "--repeats") == 0)
            rc = parse_int(a, v, 1, 1000, &o->repeats);
        else if (strcmp(a, "--data") == 0)
            o->data = v;
        else if (strcmp(a, "--only") == 0)
            o->only = v;
        else if (strcmp(a, "--dtype") == 0) {
            if (strcmp(v, "f32") == 0 || strcmp(v, "f64") == 0)
                o->dtype = v[1] == '3' ? NB_F32 : NB_F64;
            else {
                fprintf(stderr, "train-throughput: --dtype: '%s' is not f32 or f64\n", v);
                rc = 2;
            }
        }
        if (rc)
            return rc;
    }
    if (!o->ops && !o->model) {
        fprintf(stderr, "train-throughput: no model file (or --ops)\n%s", usage);
        return 2;
    }
    if (o->ops && o->model) {
        fprintf(stderr, "train-throughput: --ops takes no model file\n");
        return 2;
    }
    if (o->only && !o->ops) {
        fprintf(stderr, "train-throughput: --only is for --ops\n");
        return 2;
    }
    return 0;
}

/* ---- FLOPs ---------------------------------------------------------------
 * Only conv and linear layers count.  A layer of M multiply-adds per batch
 * costs 2M forward; backward 2M for dW and 2M for dX, except where no
 * parameter lies upstream of the layer, so its input needs no gradient. */

static int layer_index(const nb_model *m, int upto, const char *name)
{
    for (int j = 0; j < upto; j++) {
        nb_layer_info info;
        nb_model_layer(m, j, &info);
        if (strcmp(info.name, name) == 0)
            return j;
    }
    return -1;
}

static void count_flops(const nb_model *m, int64_t batch, double *fwd, double *train)
{
    int n = nb_model_num_layers(m);
    bool *grad = calloc((size_t)n + 1, sizeof *grad); /* the output depends on a parameter */
    *fwd = *train = 0;
    for (int i = 0; grad && i < n; i++) {
        nb_layer_info info;
        nb_model_layer(m, i, &info);
        bool upstream = false;
        for (int k = 0; k < info.ninputs; k++) {
            int j = layer_index(m, i, info.inputs[k]);
            upstream |= j >= 0 && grad[j];
        }
        grad[i] = upstream || info.params > 0;
        bool weighted = strcmp(info.type, "conv2d") == 0 || strcmp(info.type, "conv1d") == 0 ||
                        strcmp(info.type, "linear") == 0;
        char wname[256];
        snprintf(wname, sizeof wname, "%s.weight", info.name);
        const nb_tensor *w = weighted ? nb_model_find(m, wname) : NULL;
        if (!w)
            continue;
        /* Each output position of each example does numel(W) / out
         * multiply-adds for each of the out channels. */
        int64_t out = 1;
        for (int d = 0; d < info.ndim; d++)
            out *= info.shape[d];
        double macs = (double)batch * (double)w->numel * (double)(out / info.shape[0]);
        *fwd += 2 * macs;
        *train += 2 * macs + 2 * macs + (upstream ? 2 * macs : 0);
    }
    free(grad);
}

/* ---- whole training steps ------------------------------------------------ */

typedef struct bench {
    nb_ctx *ctx;
    nb_model *m;
    nb_optim *opt;
    int nparams;
    nb_tensor **params;
    int npool;
    nb_tensor *xs[MAX_POOL], *targets[MAX_POOL]; /* targets: hinge only */
    int32_t *labels;                             /* npool x batch */
    int64_t batch;
    int64_t correct;                             /* read like `nabla train` does */
} bench;

/* Examples classified right: the largest logit, or the sign of a single
 * score. */
static int64_t count_correct(const nb_tensor *y, const int32_t *labels, int64_t n)
{
    int64_t right = 0, c = y->numel / n;
    for (int64_t i = 0; i < n; i++) {
        int64_t pred = 0;
        if (c == 1)
            pred = nb_get(y, i) > 0;
        else
            for (int64_t j = 1; j < c; j++)
                if (nb_get(y, i * c + j) > nb_get(y, i * c + pred))
                    pred = j;
        right += pred == labels[i];
    }
    return right;
}

static int train_step(bench *b, int64_t k)
{
    nb_ctx *ctx = b->ctx;
    int p = (int)(k % b->npool);
    const int32_t *labels = b->labels + p * b->batch;
    nb_tensor *y = nb_model_forward(ctx, b->m, b->xs[p]);
    nb_tensor *loss = nb_model_loss(ctx, b->m, y, labels, b->targets[p]);
    if (!loss)
        return lib_fail(ctx, "training step");
    double l = nb_get(loss, 0);
    b->correct += count_correct(y, labels, b->batch);
    if (!isfinite(l)) {
        fprintf(stderr, "train-throughput: step %lld: the loss is %g\n", (long long)k, l);
        return 1;
    }
    if (nb_backward(ctx, loss) != NB_OK)
        return lib_fail(ctx, "backward");
    if (!isfinite(nb_clip_grad_norm(b->nparams, b->params, INFINITY))) {
        fprintf(stderr, "train-throughput: step %lld: a gradient is not finite\n", (long long)k);
        return 1;
    }
    if (nb_optim_step(b->opt) != NB_OK)
        return lib_fail(ctx, "optimizer step");
    nb_optim_zero_grad(b->opt);
    nb_graph_reset(ctx);
    return 0;
}

static int infer_step(bench *b, int64_t k)
{
    int p = (int)(k % b->npool);
    nb_tensor *y = nb_model_forward(b->ctx, b->m, b->xs[p]);
    if (!y)
        return lib_fail(b->ctx, "forward");
    b->correct += count_correct(y, b->labels + p * b->batch, b->batch);
    nb_graph_reset(b->ctx);
    return 0;
}

/* The batches: npool of them drawn from the shuffled training set, or
 * uniform noise in [0, 1) with random labels. */
static int load_pool(bench *b, const options *o, const nb_train_opts *t, nb_dataset **ds)
{
    nb_ctx *ctx = b->ctx;
    int64_t in[NB_MAX_DIMS], shape[NB_MAX_DIMS + 1] = {b->batch}, outs[NB_MAX_DIMS];
    int nd = nb_model_input_shape(b->m, in), nout = nb_model_output_shape(b->m, outs);
    memcpy(shape + 1, in, (size_t)nd * sizeof *in);
    int64_t numel = 1, classes = 1;
    for (int d = 0; d < nd; d++)
        numel *= in[d];
    for (int d = 0; d < nout; d++)
        classes *= outs[d];
    nb_loss_kind loss = nb_model_loss_kind(b->m);
    if (loss != NB_LOSS_CROSS_ENTROPY && loss != NB_LOSS_HINGE) {
        fprintf(stderr, "train-throughput: \"%s\" needs a cross_entropy or hinge loss\n",
                nb_model_name(b->m));
        return 2;
    }
    if (loss == NB_LOSS_HINGE)
        classes = 2;

    nb_rng rng;
    nb_rng_seed(&rng, t->seed + 2);
    int64_t *idx = NULL, nidx = 0;
    int32_t map[256];
    bool random = o->data && strcmp(o->data, "random") == 0;
    if (!random) {
        const char *dir = o->data ? o->data : FASHION_MNIST;
        *ds = nb_dataset_load(ctx, dir, true);
        if (!*ds)
            return lib_fail(ctx, "data");
        int64_t ds_shape[3];
        nb_dataset_shape(*ds, ds_shape);
        if (numel != ds_shape[0] * ds_shape[1] * ds_shape[2]) {
            fprintf(stderr, "train-throughput: %s: images of %lld values, the model \"%s\" "
                            "takes %lld\n", dir, (long long)(ds_shape[0] * ds_shape[1] *
                            ds_shape[2]), nb_model_name(b->m), (long long)numel);
            return 2;
        }
        /* The training section's classes, numbered in order, as `nabla train`. */
        for (int i = 0; i < 256; i++)
            map[i] = t->nclasses ? -1 : i;
        for (int i = 0; i < t->nclasses; i++)
            map[t->classes[i]] = i;
        idx = malloc((size_t)nb_dataset_size(*ds) * sizeof *idx);
        if (!idx)
            return oom();
        nidx = t->nclasses ? nb_dataset_select(*ds, t->nclasses, t->classes, idx)
                           : nb_dataset_size(*ds);
        if (!t->nclasses)
            for (int64_t i = 0; i < nidx; i++)
                idx[i] = i;
        if (nidx < 1) {
            fprintf(stderr, "train-throughput: %s: no training examples\n", dir);
            free(idx);
            return 2;
        }
        nb_shuffle(idx, nidx, &rng);
    }
    int64_t nbatches = random ? MAX_POOL : (nidx + b->batch - 1) / b->batch;
    b->npool = nbatches < MAX_POOL ? (int)nbatches : MAX_POOL;
    b->labels = malloc((size_t)(b->npool * b->batch) * sizeof *b->labels);
    int64_t *bidx = malloc((size_t)b->batch * sizeof *bidx);
    int rc = b->labels && bidx ? 0 : oom();
    for (int p = 0; p < b->npool && !rc; p++) {
        int32_t *labels = b->labels + p * b->batch;
        b->xs[p] = nb_tensor_new(ctx, o->dtype, nd + 1, shape);
        if (loss == NB_LOSS_HINGE)
            b->targets[p] = nb_tensor_new(ctx, o->dtype, 1, shape);
        if (!b->xs[p] || (loss == NB_LOSS_HINGE && !b->targets[p])) {
            rc = lib_fail(ctx, "batch");
            break;
        }
        if (random) {
            nb_fill_uniform(b->xs[p], &rng, 0, 1);
            for (int64_t i = 0; i < b->batch; i++)
                labels[i] = (int32_t)nb_rng_below(&rng, (uint64_t)classes);
        } else {
            for (int64_t i = 0; i < b->batch; i++)
                bidx[i] = idx[(p * b->batch + i) % nidx];
            if (nb_dataset_batch(*ds, bidx, b->batch, b->xs[p], labels, t->mean, t->std[0] != 0 ? t->std : NULL)) {
                rc = lib_fail(ctx, "batch");
                break;
            }
            for (int64_t i = 0; i < b->batch; i++)
                labels[i] = map[labels[i]];
        }
        for (int64_t i = 0; b->targets[p] && i < b->batch; i++)
            nb_set(b->targets[p], i, labels[i] == 1 ? 1.0 : -1.0);
    }
    free(bidx);
    free(idx);
    return rc;
}

typedef struct timing {
    double med, lo, hi; /* images per second over the repeats */
    double ms;          /* milliseconds per step at the median */
    uint64_t allocs;    /* allocator calls during the timed steps */
} timing;

static int run(bench *b, const options *o, int (*step)(bench *, int64_t), timing *out)
{
    double rate[1000];
    int64_t k = 0;
    for (int64_t i = 0; i < o->warmup; i++)
        if (step(b, k++))
            return 1;
    uint64_t before = nb_alloc_count(b->ctx);
    for (int r = 0; r < o->repeats; r++) {
        double t0 = now();
        for (int64_t i = 0; i < o->steps; i++)
            if (step(b, k++))
                return 1;
        rate[r] = (double)(o->steps * b->batch) / (now() - t0);
    }
    out->allocs = nb_alloc_count(b->ctx) - before;
    out->med = median(rate, (int)o->repeats);
    out->lo = rate[0];
    out->hi = rate[o->repeats - 1];
    out->ms = 1e3 * (double)b->batch / out->med;
    return 0;
}

static void report(const char *what, const timing *t, double flops, const options *o)
{
    printf("%-10s %9.1f img/s median (min %.1f, max %.1f) over %lld x %lld steps; "
           "%.2f ms/step; %.2f GFLOP/s\n", what, t->med, t->lo, t->hi, (long long)o->repeats,
           (long long)o->steps, t->ms, flops / (t->ms * 1e-3) * 1e-9);
}

static int bench_model(const options *o)
{
    nb_set_num_threads((int)o->threads);
    bench b = {.ctx = nb_ctx_new()};
    nb_ctx *ctx = b.ctx;
    nb_dataset *ds = NULL;
    int rc = 1;
    if (!ctx)
        return oom();
    b.m = nb_model_load(ctx, o->model, o->dtype);
    if (!b.m) {
        rc = lib_fail(ctx, "model");
        goto done;
    }
    nb_train_opts t;
    nb_optim_opts oo;
    if (nb_model_train_opts(ctx, b.m, &t, &oo) != NB_OK) {
        rc = lib_fail(ctx, "model");
        goto done;
    }
    b.batch = o->batch ? o->batch : t.batch_size;
    if ((rc = load_pool(&b, o, &t, &ds)) != 0)
        goto done;
    rc = 1;
    b.params = malloc((size_t)(nb_model_num_tensors(b.m) + 1) * sizeof *b.params);
    if (!b.params) {
        rc = oom();
        goto done;
    }
    for (int i = 0; i < nb_model_num_tensors(b.m); i++)
        if (!nb_model_is_buffer(b.m, i))
            b.params[b.nparams++] = nb_model_tensor(b.m, i);
    b.opt = nb_optim_new(ctx, &oo, b.nparams, b.params);
    if (!b.opt) {
        rc = lib_fail(ctx, "optimizer");
        goto done;
    }

    double fwd, train;
    count_flops(b.m, b.batch, &fwd, &train);
    printf("model %s (%s), batch %lld, %lld thread%s, %s lr %g, data %s (%d batches held "
           "as float)\n", nb_model_name(b.m), nb_dtype_name(o->dtype), (long long)b.batch,
           (long long)o->threads, o->threads == 1 ? "" : "s", nb_optim_kind_name(oo.kind), oo.lr,
           o->data ? o->data : "fashion-mnist", b.npool);
    printf("FLOPs per step (conv and linear layers): forward %.4f GFLOP, training %.4f GFLOP\n",
           fwd * 1e-9, train * 1e-9);
    printf("kernels: %s\n", nb_cpu_kernels());

    timing tt, ti;
    if (run(&b, o, train_step, &tt))
        goto done;
    bool was_training = nb_set_training(ctx, false), grad = nb_set_grad_enabled(ctx, false);
    int failed = run(&b, o, infer_step, &ti);
    nb_set_grad_enabled(ctx, grad);
    nb_set_training(ctx, was_training);
    if (failed)
        goto done;
    report("train:", &tt, train, o);
    report("inference:", &ti, fwd, o);
    printf("allocations per warm step: train %.2f, inference %.2f (nb_alloc_count grew by %llu "
           "and %llu over %lld timed steps each)\n",
           (double)tt.allocs / (double)(o->steps * o->repeats),
           (double)ti.allocs / (double)(o->steps * o->repeats), (unsigned long long)tt.allocs,
           (unsigned long long)ti.allocs, (long long)(o->steps * o->repeats));
    printf("step arena: %.1f MiB; peak RSS: %.1f MiB\n",
           (double)nb_step_capacity(ctx) / (1024.0 * 1024.0), peak_rss_mib());
    rc = 0;
done:
    nb_optim_free(b.opt);
    free(b.params);
    free(b.labels);
    nb_dataset_free(ds);
    nb_model_free(b.m);
    nb_ctx_free(ctx);
    return rc;
}

/* ---- single ops ------------------------------------------------------------ */

typedef enum op_kind { OP_CONV, OP_LINEAR, OP_POOL } op_kind;

/* conv: [N, c, h, w] * [o, c / groups, k, k] with padding pad and stride
 * (0 means 1); linear: [N, c] -> [N, o]; pool: max over k x k windows of
 * [N, c, h, w].  dx: whether the input needs a gradient, as in training
 * (not for a network's first layer). */
typedef struct op_case {
    const char *name;
    op_kind kind;
    int c, h, w, o, k, pad;
    bool dx;
    int stride, groups;
} op_case;

static const op_case op_cases[] = {
    {"keras-cnn conv1", OP_CONV, 1, 28, 28, 32, 3, 0, false, 0, 0},
    {"keras-cnn conv2", OP_CONV, 32, 13, 13, 64, 3, 0, true, 0, 0},
    {"keras-cnn conv3", OP_CONV, 64, 5, 5, 64, 3, 0, true, 0, 0},
    {"lenet conv1", OP_CONV, 1, 28, 28, 6, 3, 1, false, 0, 0},
    {"lenet conv2", OP_CONV, 6, 14, 14, 16, 3, 1, true, 0, 0},
    {"cnn3 conv1", OP_CONV, 1, 28, 28, 16, 3, 1, false, 0, 0},
    {"cnn3 conv2", OP_CONV, 16, 14, 14, 32, 3, 1, true, 0, 0},
    {"cnn3 conv3", OP_CONV, 32, 7, 7, 64, 3, 1, true, 0, 0},
    /* MobileNet's depthwise 3x3 blocks, for 28x28 input */
    {"mobilenet dw1", OP_CONV, 16, 28, 28, 16, 3, 1, true, 1, 16},
    {"mobilenet dw2", OP_CONV, 32, 28, 28, 32, 3, 1, true, 2, 32},
    {"mobilenet dw3", OP_CONV, 64, 14, 14, 64, 3, 1, true, 1, 64},
    {"mobilenet dw4", OP_CONV, 64, 14, 14, 64, 3, 1, true, 2, 64},
    {"linear 1600->64", OP_LINEAR, 1600, 0, 0, 64, 0, 0, true, 0, 0},
    {"keras-cnn fc1", OP_LINEAR, 576, 0, 0, 64, 0, 0, true, 0, 0},
    {"lenet fc1", OP_LINEAR, 784, 0, 0, 120, 0, 0, true, 0, 0},
    {"cnn3 fc1", OP_LINEAR, 576, 0, 0, 128, 0, 0, true, 0, 0},
    {"mlp fc1", OP_LINEAR, 784, 0, 0, 512, 0, 0, false, 0, 0},
    {"mlp fc2", OP_LINEAR, 512, 0, 0, 256, 0, 0, true, 0, 0},
    {"mlp fc3", OP_LINEAR, 256, 0, 0, 128, 0, 0, true, 0, 0},
    {"keras-cnn pool1", OP_POOL, 32, 26, 26, 0, 2, 0, true, 0, 0},
    {"keras-cnn pool2", OP_POOL, 64, 11, 11, 0, 2, 0, true, 0, 0},
};

static void op_shape(const op_case *c, int64_t batch, char *buf, size_t size)
{
    if (c->kind == OP_CONV) {
        int at = snprintf(buf, size, "%lldx%dx%dx%d -> %d %dx%d%s", (long long)batch, c->c, c->h,
                          c->w, c->o, c->k, c->k, c->pad ? " pad 1" : "");
        if (c->stride > 1 && at > 0 && (size_t)at < size)
            at += snprintf(buf + at, size - (size_t)at, " s%d", c->stride);
        if (c->groups > 1 && at > 0 && (size_t)at < size)
            snprintf(buf + at, size - (size_t)at, " g%d", c->groups);
    }
    else if (c->kind == OP_LINEAR)
        snprintf(buf, size, "%lldx%d -> %d", (long long)batch, c->c, c->o);
    else
        snprintf(buf, size, "%lldx%dx%dx%d %dx%d", (long long)batch, c->c, c->h, c->w, c->k,
                 c->k);
}

/* Times one case: forward is the op's call, backward nb_backward from
 * the sum of its output (the sum's own backward, a fill of dy, included). */
static int bench_op(nb_ctx *ctx, const op_case *c, const options *o)
{
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    int64_t n = o->batch ? o->batch : 64;
    int groups = c->groups ? c->groups : 1, stride = c->stride ? c->stride : 1;
    int64_t xs4[4] = {n, c->c, c->h, c->w}, ws4[4] = {c->o, c->c / groups, c->k, c->k};
    int64_t xs2[2] = {n, c->c}, ws2[2] = {c->o, c->c}, bs[1] = {c->o};
    bool img = c->kind != OP_LINEAR;
    nb_tensor *x = nb_tensor_new(ctx, o->dtype, img ? 4 : 2, img ? xs4 : xs2);
    nb_tensor *w = NULL, *b = NULL;
    if (c->kind != OP_POOL) {
        w = nb_tensor_new(ctx, o->dtype, img ? 4 : 2, img ? ws4 : ws2);
        b = nb_tensor_new(ctx, o->dtype, 1, bs);
    }
    if (!x || (c->kind != OP_POOL && (!w || !b)))
        return lib_fail(ctx, c->name);
    nb_fill_uniform(x, &rng, 0, 1);
    nb_requires_grad(x, c->dx);
    if (w) {
        nb_init_default(w, b, &rng);
        nb_requires_grad(w, true);
        nb_requires_grad(b, true);
    }
    nb_conv_opts copts = {.padding = {c->pad, c->pad}, .stride = {stride, stride},
                          .groups = groups};
    nb_pool_opts popts = {.kernel = {c->k, c->k}};

    enum { MAX_ITERS = 400 };
    static double fwd[MAX_ITERS], bwd[MAX_ITERS];
    int iters = 0;
    nb_tensor *y = NULL;
    double spent = 0;
    for (int i = -3; iters < MAX_ITERS && (iters < 10 || spent < 0.4); i++) {
        double t0 = now();
        y = c->kind == OP_CONV ? nb_conv2d(ctx, x, w, b, &copts)
            : c->kind == OP_LINEAR ? nb_linear(ctx, x, w, b) : nb_max_pool2d(ctx, x, &popts);
        double t1 = now();
        nb_tensor *loss = nb_sum(ctx, y);
        double t2 = now();
        if (!loss || nb_backward(ctx, loss) != NB_OK)
            return lib_fail(ctx, c->name);
        double t3 = now();
        nb_graph_reset(ctx);
        if (i >= 0) { /* three warm-up calls first */
            fwd[iters] = t1 - t0;
            bwd[iters] = t3 - t2;
            spent += t3 - t0;
            iters++;
        }
    }
    double tf = median(fwd, iters), tb = median(bwd, iters);
    int64_t ynumel = 0;
    char shape[96], rf[32], rb[32];
    op_shape(c, n, shape, sizeof shape);
    if (c->kind == OP_POOL) {
        /* Memory bound: bytes read and written.  Forward reads x, writes y;
         * backward reads dy and writes dx. */
        ynumel = n * c->c * (c->h / c->k) * (c->w / c->k);
        double bytes = (double)((x->numel + ynumel) * (int64_t)nb_dtype_size(o->dtype));
        snprintf(rf, sizeof rf, "%7.2f GB/s", bytes / tf * 1e-9);
        snprintf(rb, sizeof rb, "%7.2f GB/s", bytes / tb * 1e-9);
    } else {
        double macs = (double)n * (double)w->numel;
        if (c->kind == OP_CONV) {
            int64_t oh = (c->h + 2 * c->pad - c->k) / stride + 1;
            int64_t ow = (c->w + 2 * c->pad - c->k) / stride + 1;
            macs *= (double)(oh * ow);
        }
        snprintf(rf, sizeof rf, "%7.2f GFLOP/s", 2 * macs / tf * 1e-9);
        snprintf(rb, sizeof rb, "%7.2f GFLOP/s", (c->dx ? 4 : 2) * macs / tb * 1e-9);
    }
    printf("%-16s %-36s %-3s %9.3f  %-14s %9.3f  %-14s\n", c->name, shape, c->dx ? "yes" : "no",
           tf * 1e3, rf, tb * 1e3, rb);
    nb_tensor_free(x);
    nb_tensor_free(w);
    nb_tensor_free(b);
    return 0;
}

static int bench_ops(const options *o)
{
    nb_set_num_threads((int)o->threads);
    nb_ctx *ctx = nb_ctx_new();
    if (!ctx)
        return oom();
    printf("ops (%s), %lld thread%s; median time of one call\n", nb_dtype_name(o->dtype),
           (long long)o->threads, o->threads == 1 ? "" : "s");
    printf("%-16s %-36s %-3s %9s  %-14s %9s  %-14s\n", "op", "shape", "dx", "fwd ms", "fwd rate",
           "bwd ms", "bwd rate");
    int rc = 0, ran = 0;
    for (size_t i = 0; i < sizeof op_cases / sizeof *op_cases && !rc; i++)
        if (!o->only || strstr(op_cases[i].name, o->only)) {
            rc = bench_op(ctx, &op_cases[i], o);
            ran++;
        }
    if (!rc && !ran) {
        fprintf(stderr, "train-throughput: --only '%s': no op's name contains it\n", o->only);
        rc = 2;
    }
    nb_ctx_free(ctx);
    return rc;
}

int main(int argc, char **argv)
{
    options o;
    int rc = parse_args(argc, argv, &o);
    if (rc)
        return rc;
    return o.ops ? bench_ops(&o) : bench_model(&o);
}
