/*
 * cmd_ascend.c - `nabla ascend`: the input image that excites a class or a
 * channel, by gradient ascent on the image itself.  The image is a
 * persistent tensor that requires a gradient; the model's parameters are
 * frozen, so backward computes only d objective / d image.
 */
#include "cli.h"
#include "grid.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The magnified PNG is at least this many pixels a side by default. */
#define ASCEND_PX 224

static cli_opt opts[] = {
    {"class", "K", "maximise the score of class K: the model's output K before any\n"
                   "final softmax layer (the logit)", NULL},
    {"layer", "NAME", "maximise an objective of one channel of layer NAME, which must\n"
                      "have an image output [C, H, W] (needs --channel)", NULL},
    {"channel", "C", "the channel of --layer, from 0", NULL},
    {"objective", "mean|sumsq", "with --layer: the mean of the channel's values (default), or\n"
                                "the sum of their squares", NULL},
    {"weights", "W.safetensors", "the model's tensors (default: the default initialisation from --seed)",
     NULL},
    {"steps", "N", "gradient steps (default 100)", NULL},
    {"lr", "X", "the step: image += X * gradient (default 1)", NULL},
    {"seed", "S", "seeds the starting noise and the initialisation (default 0)", NULL},
    {"every", "N", "print the objective every N steps (default 10; step 0 and the\n"
                   "last always)", NULL},
    {"no-clamp", NULL, "let the values leave [0, 1]; the PNG then shows min..max", NULL},
    {"zoom", "N", "magnify the PNG N times with nearest neighbour (default: to at\n"
                  "least 224 pixels a side; 1 writes the model's size)", NULL},
    {"data", "D", "with --class: also score the test images of class K in the data\n"
                  "set D (as for nabla train: fashion-mnist or a directory) and print\n"
                  "the highest score", NULL},
    {"out", "OUT.png", "the image (required; also -o)", NULL},
    {0},
};

static const cli_spec spec = {
    .usage = "MODEL.json (--class K | --layer NAME --channel C) [options] -o OUT.png",
    .about =
        "Starts from uniform noise in [0, 1] and climbs the gradient of an objective\n"
        "with respect to the input image: image += lr * gradient, clamped to [0, 1]\n"
        "after each step.  The objective is a class's score (--class) or the mean, or\n"
        "sum of squares, of one channel of a layer's output (--layer, --channel), for\n"
        "the model in eval mode in float64.  Prints \"step N  objective V\" for step 0\n"
        "(the noise), every few steps and the last, V being the objective of the image\n"
        "after N steps; writes the last image as a PNG (gray, or RGB for a model\n"
        "taking 3 channels), magnified.",
    .min_pos = 1,
    .max_pos = 1,
    .opts = opts,
};

typedef struct ascent {
    nb_ctx *ctx;
    nb_model *m;
    nb_train_opts t;     /* for the input normalisation and class mapping */
    int layer;           /* the layer whose output the objective reads */
    int64_t channel;     /* or the class */
    bool by_class, sumsq;
    nb_tensor *mask;     /* [1, K] or [1, C, 1, 1]: 1 at the class or channel */
    nb_tensor *mean;     /* [1, C, 1, 1]: the normalisation's mean, or NULL */
    nb_tensor *scale;    /* [1, C, 1, 1]: 1 / its std */
    int64_t area;        /* H * W of the layer's output */
} ascent;

/* The layer named `name`, or -1. */
static int find_layer(const nb_model *m, const char *name)
{
    for (int i = 0; i < nb_model_num_layers(m); i++) {
        nb_layer_info info;
        if (nb_model_layer(m, i, &info) == NB_OK && strcmp(info.name, name) == 0)
            return i;
    }
    return -1;
}

/* "conv1, 1, 2": the layers with an image output, for messages. */
static void image_layers(const nb_model *m, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < nb_model_num_layers(m) && len < size; i++) {
        nb_layer_info info;
        if (nb_model_layer(m, i, &info) == NB_OK && info.ndim == 3)
            len += (size_t)snprintf(buf + len, size - len, "%s%s", len ? ", " : "", info.name);
    }
}

/* The layer whose output holds the class scores: the model's output, or
 * what a final softmax layer reads. */
static int score_layer(const nb_model *m)
{
    int out = nb_model_output_layer(m);
    nb_layer_info info;
    const char *in[8];
    if (nb_model_layer(m, out, &info) != NB_OK || strcmp(info.type, "softmax") != 0 ||
        cli_layer_inputs(m, out, &info, in) != 1)
        return out;
    int i = find_layer(m, in[0]);
    return i >= 0 ? i : out;
}

/* Checks the objective's options against the model and makes its mask. */
static int setup(ascent *a, const char *layer, int64_t k)
{
    nb_ctx *ctx = a->ctx;
    const nb_model *m = a->m;
    const char *name = nb_model_name(m);
    char shape[64];
    nb_layer_info info;
    int64_t in[NB_MAX_DIMS];
    int nd = nb_model_input_shape(m, in);
    if (nd != 3 || (in[0] != 1 && in[0] != 3))
        return cli_fail(CLI_USAGE, "the model \"%s\" takes %s, not an image [1 or 3, H, W]", name,
                        nb_dims_str(nd, in, shape, sizeof shape));
    if (a->by_class) {
        a->layer = score_layer(m);
        nb_model_layer(m, a->layer, &info);
        if (info.ndim != 1)
            return cli_fail(CLI_USAGE, "--class: the model \"%s\" gives %s, not one score per class",
                            name, nb_dims_str(info.ndim, info.shape, shape, sizeof shape));
        if (k >= info.shape[0])
            return cli_fail(CLI_USAGE, "--class: %" PRId64 " is not a class of the model \"%s\" "
                            "(0 to %" PRId64 ")", k, name, info.shape[0] - 1);
        a->mask = nb_tensor_new(ctx, NB_F64, 2, (int64_t[]){1, info.shape[0]});
    } else {
        a->layer = find_layer(m, layer);
        char list[512];
        image_layers(m, list, sizeof list);
        if (a->layer < 0)
            return cli_fail(CLI_USAGE, "--layer: the model \"%s\" has no layer \"%s\" (layers with "
                            "an image output: %s)", name, layer, *list ? list : "none");
        nb_model_layer(m, a->layer, &info);
        if (info.ndim != 3)
            return cli_fail(CLI_USAGE, "--layer: layer \"%s\" (%s) gives %s, not an image [C, H, W] "
                            "(layers with one: %s)", layer, info.type,
                            nb_dims_str(info.ndim, info.shape, shape, sizeof shape),
                            *list ? list : "none");
        if (k >= info.shape[0])
            return cli_fail(CLI_USAGE, "--channel: %" PRId64 " is not a channel of layer \"%s\" "
                            "(0 to %" PRId64 ")", k, layer, info.shape[0] - 1);
        a->area = info.shape[1] * info.shape[2];
        a->mask = nb_tensor_new(ctx, NB_F64, 4, (int64_t[]){1, info.shape[0], 1, 1});
    }
    if (!a->mask)
        return cli_fail_lib(ctx, false);
    nb_set(a->mask, k, 1.0);
    a->channel = k;
    if (a->t.std[0] == 0)
        return CLI_OK;
    a->mean = nb_tensor_new(ctx, NB_F64, 4, (int64_t[]){1, in[0], 1, 1});
    a->scale = nb_tensor_new(ctx, NB_F64, 4, (int64_t[]){1, in[0], 1, 1});
    if (!a->mean || !a->scale)
        return cli_fail_lib(ctx, false);
    for (int64_t c = 0; c < in[0]; c++) {
        nb_set(a->mean, c, a->t.mean[c]);
        nb_set(a->scale, c, 1.0 / a->t.std[c]);
    }
    return CLI_OK;
}

/* The model's input for pixels x: (x - mean) / std as in training. */
static nb_tensor *model_input(ascent *a, nb_tensor *x)
{
    if (!a->mean)
        return x;
    return nb_mul(a->ctx, nb_sub(a->ctx, x, a->mean), a->scale);
}

/* The objective of x [N, input...] for its first example: a scalar step
 * tensor, or NULL. */
static nb_tensor *objective(ascent *a, nb_tensor *x)
{
    nb_ctx *ctx = a->ctx;
    if (!nb_model_forward(ctx, a->m, model_input(a, x)))
        return NULL;
    nb_tensor *y = nb_model_activation(a->m, a->layer);
    if (a->by_class)
        return nb_sum(ctx, nb_mul(ctx, y, a->mask)); /* y[k] */
    if (a->sumsq) /* sum_ij y[c, i, j]^2 */
        return nb_sum(ctx, nb_mul(ctx, nb_mul(ctx, y, y), a->mask));
    /* mean_ij y[c, i, j] */
    return nb_scale(ctx, nb_sum(ctx, nb_mul(ctx, y, a->mask)), 1.0 / (double)a->area);
}

/* The ascent itself: x is updated in place. */
static int climb(ascent *a, nb_tensor *x, int64_t steps, double lr, int64_t every, bool clamp)
{
    nb_ctx *ctx = a->ctx;
    for (int64_t s = 0;; s++) {
        nb_tensor *obj = objective(a, x);
        if (!obj)
            return cli_fail_lib(ctx, false);
        double v = nb_get(obj, 0);
        if (s % every == 0 || s == steps)
            printf("step %" PRId64 "  objective %.9g\n", s, v);
        if (!isfinite(v))
            return cli_fail(CLI_RUNTIME, "the objective is %g at step %" PRId64
                            " (try a smaller --lr)", v, s);
        if (s == steps) {
            nb_graph_reset(ctx);
            return CLI_OK;
        }
        if (nb_backward(ctx, obj) != NB_OK)
            return cli_fail_lib(ctx, false);
        double *p = x->data;
        const double *g = x->grad ? x->grad->data : NULL;
        for (int64_t i = 0; g && i < x->numel; i++) {
            p[i] += lr * g[i];
            if (clamp)
                p[i] = p[i] < 0 ? 0 : p[i] > 1 ? 1 : p[i];
        }
        if (x->grad)
            nb_fill(x->grad, 0);
        nb_graph_reset(ctx);
    }
}

/* With --data: the highest score of class K over the data set's test
 * images of that class. */
static int compare(ascent *a, const char *data)
{
    nb_ctx *ctx = a->ctx;
    const char *dir = cli_data_dir(data);
    nb_dataset *ds = nb_dataset_load(ctx, dir, false);
    if (!ds)
        return cli_fail_lib(ctx, true);
    int64_t in[NB_MAX_DIMS], ds_shape[3];
    nb_model_input_shape(a->m, in);
    nb_dataset_shape(ds, ds_shape);
    int rc = CLI_OK;
    char got[64], want[64];
    if (memcmp(in, ds_shape, sizeof ds_shape) != 0) {
        rc = cli_fail(CLI_USAGE, "--data: %s holds images %s; the model \"%s\" takes %s", dir,
                      nb_dims_str(3, ds_shape, got, sizeof got), nb_model_name(a->m),
                      nb_dims_str(3, in, want, sizeof want));
        nb_dataset_free(ds);
        return rc;
    }
    int32_t label = a->t.nclasses ? a->t.classes[a->channel] : (int32_t)a->channel;
    int64_t *idx = malloc(sizeof *idx * (size_t)nb_dataset_size(ds));
    if (!idx) {
        nb_dataset_free(ds);
        return cli_fail(CLI_RUNTIME, "out of memory");
    }
    int64_t n = nb_dataset_select(ds, 1, &label, idx), best = -1;
    double top = -INFINITY;
    enum { BATCH = 256 };
    nb_tensor *xb = nb_tensor_new(ctx, NB_F64, 4, (int64_t[]){BATCH, in[0], in[1], in[2]});
    bool was = nb_set_grad_enabled(ctx, false);
    for (int64_t b = 0; xb && rc == CLI_OK && b < n; b += BATCH) {
        int64_t nb = n - b < BATCH ? n - b : BATCH;
        nb_tensor *x = nb_tensor_wrap(ctx, NB_F64, 4, (int64_t[]){nb, in[0], in[1], in[2]},
                                      xb->data);
        if (!x || nb_dataset_batch(ds, idx + b, nb, x, NULL, a->t.mean,
                                         a->t.std[0] != 0 ? a->t.std : NULL) != NB_OK ||
            !nb_model_forward(ctx, a->m, x)) {
            rc = cli_fail_lib(ctx, false);
        } else {
            const nb_tensor *y = nb_model_activation(a->m, a->layer);
            int64_t k = y->shape[1];
            for (int64_t i = 0; i < nb; i++)
                if (nb_get(y, i * k + a->channel) > top) {
                    top = nb_get(y, i * k + a->channel);
                    best = idx[b + i];
                }
        }
        nb_tensor_free(x);
        nb_graph_reset(ctx);
    }
    nb_set_grad_enabled(ctx, was);
    if (!xb && rc == CLI_OK)
        rc = cli_fail_lib(ctx, false);
    else if (rc == CLI_OK && n == 0)
        rc = cli_fail(CLI_USAGE, "--data: %s has no test image of class %" PRId64, dir,
                      a->channel);
    else if (rc == CLI_OK)
        printf("test images of class %" PRId64 ": %" PRId64 ", highest score %.9g (image %" PRId64
               ")\n", a->channel, n, top, best);
    nb_tensor_free(xb);
    free(idx);
    nb_dataset_free(ds);
    return rc;
}

/* x [1, C, H, W] as a PNG, magnified; min..max shown as 0..1 when the
 * values were not clamped. */
static int write_image(nb_ctx *ctx, const nb_tensor *x, bool clamp, int64_t zoom, const char *out)
{
    nb_tensor *big = NULL;
    int st = grid_upscale(ctx, x, (int)zoom, &big);
    if (st == NB_ERR_ARG)
        return cli_fail(CLI_USAGE, "--zoom: %" PRId64 " makes the image larger than %d pixels a side",
                        zoom, GRID_MAX_SIDE);
    if (st != NB_OK)
        return cli_fail_lib(ctx, false);
    double lo = INFINITY, hi = -INFINITY, *p = big->data;
    for (int64_t i = 0; !clamp && i < big->numel; i++) {
        lo = fmin(lo, p[i]);
        hi = fmax(hi, p[i]);
    }
    for (int64_t i = 0; !clamp && i < big->numel; i++)
        p[i] = hi > lo ? (p[i] - lo) / (hi - lo) : 0;
    int rc = nb_png_write(ctx, out, big) == NB_OK ? CLI_OK : cli_fail_lib(ctx, false);
    nb_tensor_free(big);
    return rc;
}

/* cli_parse knows long options only: -o becomes --out. */
static char **short_out(int argc, char **argv)
{
    static char out_flag[] = "--out";
    char **args = calloc((size_t)argc + 1, sizeof *args);
    bool options = true;
    for (int i = 0; args && i < argc; i++) {
        options &= strcmp(argv[i], "--") != 0;
        args[i] = options && i > 0 && strcmp(argv[i], "-o") == 0 ? out_flag : argv[i];
    }
    return args;
}

int cmd_ascend(int argc, char **argv)
{
    const char *pos[1];
    int npos, rc;
    char **args = short_out(argc, argv);
    if (!args)
        return cli_fail(CLI_RUNTIME, "out of memory");
    rc = cli_parse(&spec, argc, args, pos, &npos);
    free(args);
    if (rc != CLI_OK)
        return rc == CLI_HELP ? CLI_OK : rc;
    int64_t k = -1, steps = 100, every = 10, zoom = 0;
    uint64_t seed = 0;
    double lr = 1;
    const char *layer = cli_get(&spec, "layer"), *cls = cli_get(&spec, "class");
    const char *channel = cli_get(&spec, "channel"), *obj = cli_get(&spec, "objective");
    const char *out = cli_get(&spec, "out"), *data = cli_get(&spec, "data");
    if ((rc = cli_int64(&spec, "class", 0, INT64_MAX, &k)) ||
        (rc = cli_int64(&spec, "channel", 0, INT64_MAX, &k)) ||
        (rc = cli_int64(&spec, "steps", 0, 1000000, &steps)) ||
        (rc = cli_int64(&spec, "every", 1, INT64_MAX, &every)) ||
        (rc = cli_int64(&spec, "zoom", 1, 256, &zoom)) ||
        (rc = cli_positive(&spec, "lr", &lr)) || (rc = cli_uint64(&spec, "seed", &seed)))
        return rc;
    if (cls && (layer || channel))
        return cli_fail(CLI_USAGE, "--class and --layer/--channel exclude each other: give one");
    if (!cls && !layer && !channel)
        return cli_fail(CLI_USAGE, "give --class K or --layer NAME --channel C "
                        "(see nabla ascend --help)");
    if (layer && !channel)
        return cli_fail(CLI_USAGE, "--layer needs --channel C");
    if (channel && !layer)
        return cli_fail(CLI_USAGE, "--channel needs --layer NAME");
    if (obj && !layer)
        return cli_fail(CLI_USAGE, "--objective applies to --layer only");
    if (obj && strcmp(obj, "mean") != 0 && strcmp(obj, "sumsq") != 0)
        return cli_fail(CLI_USAGE, "--objective: '%s' is not mean or sumsq", obj);
    if (data && !cls)
        return cli_fail(CLI_USAGE, "--data applies to --class only");
    if (!out || !*out)
        return cli_fail(CLI_USAGE, "-o OUT.png is required (see nabla ascend --help)");

    ascent a = {.by_class = cls != NULL, .sumsq = obj && strcmp(obj, "sumsq") == 0};
    if (!(a.ctx = cli_ctx_new()))
        return CLI_RUNTIME;
    nb_ctx *ctx = a.ctx;
    nb_tensor *x = NULL;
    a.m = cli_load_model(ctx, pos[0], NB_F64, cli_get(&spec, "weights"), seed, &rc);
    if (!a.m)
        goto done;
    if (nb_model_train_opts(ctx, a.m, &a.t, NULL) != NB_OK) {
        rc = cli_fail_lib(ctx, true);
        goto done;
    }
    nb_set_training(ctx, false);
    if ((rc = setup(&a, layer, k)) != CLI_OK)
        goto done;
    if (data && (rc = compare(&a, data)) != CLI_OK)
        goto done;

    /* Frozen parameters: backward reaches the image only. */
    for (int i = 0; i < nb_model_num_tensors(a.m); i++)
        nb_requires_grad(nb_model_tensor(a.m, i), false);
    int64_t in[NB_MAX_DIMS];
    nb_model_input_shape(a.m, in);
    if (!(x = nb_tensor_new(ctx, NB_F64, 4, (int64_t[]){1, in[0], in[1], in[2]}))) {
        rc = cli_fail_lib(ctx, false);
        goto done;
    }
    nb_rng rng;
    nb_rng_seed(&rng, seed);
    nb_fill_uniform(x, &rng, 0, 1);
    nb_requires_grad(x, true);
    bool clamp = !cli_get(&spec, "no-clamp");
    if ((rc = climb(&a, x, steps, lr, every, clamp)) == CLI_OK)
        rc = write_image(ctx, x, clamp,
                         zoom ? zoom : grid_zoom(in[1] > in[2] ? in[1] : in[2], ASCEND_PX), out);
done:
    nb_tensor_free(x);
    nb_tensor_free(a.mask);
    nb_tensor_free(a.mean);
    nb_tensor_free(a.scale);
    nb_model_free(a.m);
    nb_ctx_free(ctx);
    return rc;
}
