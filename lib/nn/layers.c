/*
 * layers.c - the layer kinds a model file may name: one row per "type" in
 * nbi_layer_kinds, with its fields (PyTorch's names and defaults), a check
 * of its settings, its shape rule (one example's shapes, batch excluded,
 * and the shapes of its parameters) and its forward through the public
 * ops.  Adding a layer type is one row and its functions.  Knows nothing
 * of JSON or of how layers connect.
 */
#include "layer.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>

const char *const nbi_slot_names[NBI_NSLOTS] = {"weight", "bias", "running_mean", "running_var"};

/* Writes the reason into why; returns -1 for `return why_(...)`. */
NBI_PRINTF(2, 3) static int why_(char *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, NBI_WHY_SIZE, fmt, ap);
    va_end(ap);
    return -1;
}

/* "3" for a square pair, "[3, 5]" otherwise. */
static const char *pair_fmt(char *buf, size_t size, const int *v)
{
    if (v[0] == v[1])
        snprintf(buf, size, "%d", v[0]);
    else
        snprintf(buf, size, "[%d, %d]", v[0], v[1]);
    return buf;
}

static void set_slot(nbi_layer *l, int slot, int ndim, const int64_t *d)
{
    l->slot[slot].ndim = ndim;
    for (int i = 0; i < ndim; i++)
        l->slot[slot].d[i] = d[i];
}

#define OFF(member) offsetof(nbi_layer_conf, member)
#define BIG ((double)INT_MAX) /* the largest size */

/* ---- conv2d, conv1d ---------------------------------------------------- */

static const nbi_field conv2d_fields[] = {
    {"in_channels", NBI_F_INT, 0, OFF(conv.in), 0, 1, BIG},
    {"out_channels", NBI_F_INT, NBI_REQUIRED, OFF(conv.out), 0, 1, BIG},
    {"kernel_size", NBI_F_INT, NBI_REQUIRED | NBI_PAIR, OFF(conv.kernel), 0, 1, BIG},
    {"stride", NBI_F_INT, NBI_PAIR, OFF(conv.stride), 1, 1, BIG},
    {"padding", NBI_F_PAD, NBI_PAIR | NBI_SAME, OFF(conv.padding), 0, 0, BIG},
    {"bias", NBI_F_BOOL, 0, OFF(conv.bias), 1, 0, 1},
    {0},
};

static const nbi_field conv1d_fields[] = {
    {"in_channels", NBI_F_INT, 0, OFF(conv.in), 0, 1, BIG},
    {"out_channels", NBI_F_INT, NBI_REQUIRED, OFF(conv.out), 0, 1, BIG},
    {"kernel_size", NBI_F_INT, NBI_REQUIRED, OFF(conv.kernel), 0, 1, BIG},
    {"stride", NBI_F_INT, 0, OFF(conv.stride), 1, 1, BIG},
    {"padding", NBI_F_PAD, NBI_SAME, OFF(conv.padding), 0, 0, BIG},
    {"bias", NBI_F_BOOL, 0, OFF(conv.bias), 1, 0, 1},
    {0},
};

/* PyTorch's rule: "same" only with stride 1 (conv1d has stride[0] only). */
static int conv_check(nbi_layer *l, char *why)
{
    const nbi_conv_conf *c = &l->conf.conv;
    char s[32];
    if (!c->padding.same)
        return 0;
    if (l->kind->fields == conv1d_fields && c->stride[0] != 1)
        return why_(why, "padding \"same\" needs stride 1, got stride %d", c->stride[0]);
    if (l->kind->fields == conv2d_fields && (c->stride[0] != 1 || c->stride[1] != 1))
        return why_(why, "padding \"same\" needs stride 1, got stride %s",
                    pair_fmt(s, sizeof s, c->stride));
    return 0;
}

/* conv2d [C, H, W] -> [O, oh, ow], oh = (H + 2 ph - kh) / sh + 1; conv1d is
 * the same with H = kh = 1 (only index 0 of the settings is used). */
static int conv_infer(nbi_layer *l, const nbi_shape *in, char *why, int sd)
{
    const nbi_conv_conf *c = &l->conf.conv;
    char s[96], k[32];
    if (in->ndim != sd + 1)
        return why_(why, "%s needs a %s input, got %s", l->kind->type,
                    sd == 2 ? "[C, H, W]" : "[C, L]", nbi_shape_fmt(in, s, sizeof s));
    if (c->in && c->in != in->d[0])
        return why_(why, "in_channels %d does not match the input's %" PRId64 " channels",
                    c->in, in->d[0]);
    int64_t C = in->d[0], H = sd == 2 ? in->d[1] : 1, W = in->d[sd];
    int64_t kh = sd == 2 ? c->kernel[0] : 1, kw = c->kernel[0], ph, pw;
    if (sd == 2)
        kw = c->kernel[1];
    if (c->padding.same) { /* total k - 1 */
        ph = kh - 1;
        pw = kw - 1;
    } else {
        ph = sd == 2 ? 2 * (int64_t)c->padding.v[0] : 0;
        pw = 2 * (int64_t)c->padding.v[sd - 1];
    }
    int64_t hp = H + ph, wp = W + pw;
    if (kh > hp || kw > wp) {
        if (sd == 1)
            snprintf(k, sizeof k, "%d", c->kernel[0]);
        else
            pair_fmt(k, sizeof k, c->kernel);
        if (sd == 1 && pw)
            return why_(why, "kernel_size %s is larger than its input of length %" PRId64
                        " padded to %" PRId64, k, W, wp);
        if (sd == 1)
            return why_(why, "kernel_size %s is larger than its input of length %" PRId64, k, W);
        if (ph || pw)
            return why_(why, "kernel_size %s is larger than its %" PRId64 "x%" PRId64
                        " input padded to %" PRId64 "x%" PRId64, k, H, W, hp, wp);
        return why_(why, "kernel_size %s is larger than its %" PRId64 "x%" PRId64 " input", k,
                    H, W);
    }
    int sh = sd == 2 ? c->stride[0] : 1, sw = sd == 2 ? c->stride[1] : c->stride[0];
    int64_t oh = (hp - kh) / sh + 1, ow = (wp - kw) / sw + 1;
    /* The op's limits: its GEMM takes int sizes. */
    if (nbi_mul(nbi_mul(C, kh), kw) > INT_MAX || nbi_mul(oh, ow) > INT_MAX)
        return why_(why, "the convolution of a %s input is too large",
                    nbi_shape_fmt(in, s, sizeof s));
    l->out.ndim = sd + 1;
    l->out.d[0] = c->out;
    l->out.d[1] = sd == 2 ? oh : ow;
    l->out.d[2] = ow;
    set_slot(l, NBI_WEIGHT, sd + 2, (int64_t[]){c->out, C, sd == 2 ? kh : kw, kw});
    if (c->bias)
        set_slot(l, NBI_BIAS, 1, (int64_t[]){c->out});
    return 0;
}

static int conv2d_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    return conv_infer(l, in, why, 2);
}

static int conv1d_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    return conv_infer(l, in, why, 1);
}

static void conv_opts(const nbi_conv_conf *c, nb_conv_opts *o)
{
    *o = (nb_conv_opts){{c->stride[0], c->stride[1]},
                        {c->padding.v[0], c->padding.v[1]}, c->padding.same, false, c->relu};
    if (c->padding.same)
        o->padding[0] = o->padding[1] = 0;
}

static nb_tensor *conv2d_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                                 int nin, nb_tensor *const *x, nb_rng *rng)
{
    nb_conv_opts o;
    conv_opts(&c->conv, &o);
    return nb_conv2d(ctx, x[0], p[NBI_WEIGHT], p[NBI_BIAS], &o);
}

static nb_tensor *conv1d_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                                 int nin, nb_tensor *const *x, nb_rng *rng)
{
    nb_conv_opts o;
    conv_opts(&c->conv, &o);
    return nb_conv1d(ctx, x[0], p[NBI_WEIGHT], p[NBI_BIAS], &o);
}

/* PyTorch's default for nn.Conv*d and nn.Linear. */
static void default_init(nb_tensor *const *p, nb_rng *rng)
{
    nb_init_default(p[NBI_WEIGHT], p[NBI_BIAS], rng);
}

/* ---- pooling ------------------------------------------------------------ */

static const nbi_field pool_fields[] = {
    {"kernel_size", NBI_F_INT, NBI_REQUIRED | NBI_PAIR, OFF(pool.kernel), 0, 1, BIG},
    {"stride", NBI_F_INT, NBI_PAIR, OFF(pool.stride), 0, 1, BIG}, /* 0: the kernel */
    {"padding", NBI_F_INT, NBI_PAIR, OFF(pool.padding), 0, 0, BIG},
    {0},
};

/* PyTorch's rule: padding at most half the kernel. */
static int pool_check(nbi_layer *l, char *why)
{
    nbi_pool_conf *c = &l->conf.pool;
    char p[32], k[32];
    if (c->padding[0] > c->kernel[0] / 2 || c->padding[1] > c->kernel[1] / 2)
        return why_(why, "padding %s is more than half of kernel_size %s",
                    pair_fmt(p, sizeof p, c->padding), pair_fmt(k, sizeof k, c->kernel));
    for (int i = 0; i < 2; i++)
        if (!c->stride[i])
            c->stride[i] = c->kernel[i];
    return 0;
}

static int pool_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    const nbi_pool_conf *c = &l->conf.pool;
    char s[96], k[32];
    if (in->ndim != 3)
        return why_(why, "%s needs a [C, H, W] input, got %s", l->kind->type,
                    nbi_shape_fmt(in, s, sizeof s));
    int64_t H = in->d[1], W = in->d[2];
    int64_t hp = H + 2 * (int64_t)c->padding[0], wp = W + 2 * (int64_t)c->padding[1];
    if (c->kernel[0] > hp || c->kernel[1] > wp) {
        pair_fmt(k, sizeof k, c->kernel);
        if (hp != H || wp != W)
            return why_(why, "kernel_size %s is larger than its %" PRId64 "x%" PRId64
                        " input padded to %" PRId64 "x%" PRId64, k, H, W, hp, wp);
        return why_(why, "kernel_size %s is larger than its %" PRId64 "x%" PRId64 " input", k,
                    H, W);
    }
    if (nbi_mul(H, W) > INT32_MAX) /* max_pool2d's argmax is an int32 */
        return why_(why, "%s of a %s input is too large", l->kind->type,
                    nbi_shape_fmt(in, s, sizeof s));
    l->out.ndim = 3;
    l->out.d[0] = in->d[0];
    l->out.d[1] = (hp - c->kernel[0]) / c->stride[0] + 1;
    l->out.d[2] = (wp - c->kernel[1]) / c->stride[1] + 1;
    return 0;
}

static void pool_opts(const nbi_pool_conf *c, nb_pool_opts *o)
{
    *o = (nb_pool_opts){{c->kernel[0], c->kernel[1]},
                        {c->stride[0], c->stride[1]},
                        {c->padding[0], c->padding[1]}};
}

static nb_tensor *max_pool2d_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                                     int nin, nb_tensor *const *x, nb_rng *rng)
{
    nb_pool_opts o;
    pool_opts(&c->pool, &o);
    return nb_max_pool2d(ctx, x[0], &o);
}

static nb_tensor *avg_pool2d_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                                     int nin, nb_tensor *const *x, nb_rng *rng)
{
    nb_pool_opts o;
    pool_opts(&c->pool, &o);
    return nb_avg_pool2d(ctx, x[0], &o);
}

/* [C, H, W] -> [C] */
static int gap_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    char s[96];
    if (in->ndim != 3)
        return why_(why, "global_avg_pool2d needs a [C, H, W] input, got %s",
                    nbi_shape_fmt(in, s, sizeof s));
    l->out.ndim = 1;
    l->out.d[0] = in->d[0];
    return 0;
}

static nb_tensor *gap_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                              int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_global_avg_pool2d(ctx, x[0]);
}

/* ---- linear, flatten ------------------------------------------------------ */

static const nbi_field linear_fields[] = {
    {"in_features", NBI_F_INT, 0, OFF(linear.in), 0, 1, BIG},
    {"out_features", NBI_F_INT, NBI_REQUIRED, OFF(linear.out), 0, 1, BIG},
    {"bias", NBI_F_BOOL, 0, OFF(linear.bias), 1, 0, 1},
    {0},
};

/* [F] -> [out]; weight [out, F] */
static int linear_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    const nbi_linear_conf *c = &l->conf.linear;
    char s[96];
    if (in->ndim != 1)
        return why_(why, "linear needs a flat input, got %s: add a flatten layer",
                    nbi_shape_fmt(in, s, sizeof s));
    if (c->in && c->in != in->d[0])
        return why_(why, "in_features %d does not match the input's %" PRId64 " features",
                    c->in, in->d[0]);
    l->out.ndim = 1;
    l->out.d[0] = c->out;
    set_slot(l, NBI_WEIGHT, 2, (int64_t[]){c->out, in->d[0]});
    if (c->bias)
        set_slot(l, NBI_BIAS, 1, (int64_t[]){c->out});
    return 0;
}

static nb_tensor *linear_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                                 int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_linear(ctx, x[0], p[NBI_WEIGHT], p[NBI_BIAS]);
}

/* [...] -> [prod(...)] in C, H, W order */
static int flatten_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    int64_t n = 1;
    for (int i = 0; i < in->ndim; i++)
        n = nbi_mul(n, in->d[i]);
    l->out.ndim = 1;
    l->out.d[0] = n;
    return 0;
}

static nb_tensor *flatten_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                                  int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_flatten(ctx, x[0]);
}

/* ---- elementwise: activations, dropout ----------------------------------- */

static int same_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    l->out = *in;
    return 0;
}

static const nbi_field leaky_relu_fields[] = {
    {"negative_slope", NBI_F_REAL, 0, OFF(slope), 0.01, -1e300, 1e300},
    {0},
};

static const nbi_field elu_fields[] = {
    {"alpha", NBI_F_REAL, 0, OFF(alpha), 1.0, -1e300, 1e300},
    {0},
};

static const nbi_field softmax_fields[] = {
    {"dim", NBI_F_INT, 0, OFF(dim), 1, -NB_MAX_DIMS, NB_MAX_DIMS},
    {0},
};

static const nbi_field dropout_fields[] = {
    {"p", NBI_F_REAL, NBI_OPEN, OFF(p), 0.5, 0, 1},
    {0},
};

static nb_tensor *relu_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                               int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_relu(ctx, x[0]);
}

static nb_tensor *relu6_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                                int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_relu6(ctx, x[0]);
}

static nb_tensor *leaky_relu_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                                     int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_leaky_relu(ctx, x[0], c->slope);
}

static nb_tensor *elu_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                              int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_elu(ctx, x[0], c->alpha);
}

static nb_tensor *sigmoid_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                                  int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_sigmoid(ctx, x[0]);
}

static nb_tensor *tanh_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                               int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_tanh(ctx, x[0]);
}

/* dim counts the dimensions of [N, ...]: 0 would mix the examples. */
static int softmax_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    int dim = l->conf.dim, k = in->ndim;
    char s[96];
    if (dim == 0 || dim > k || dim < -k) {
        nbi_shape_fmt(in, s, sizeof s);
        if (k == 1)
            return why_(why, "dim %d is not a dimension of one example of %s: use 1 or -1", dim, s);
        return why_(why, "dim %d is not a dimension of one example of %s: use 1 to %d, or -%d to -1",
                    dim, s, k, k);
    }
    l->out = *in;
    return 0;
}

static nb_tensor *softmax_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                                  int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_softmax(ctx, x[0], c->dim);
}

static nb_tensor *dropout_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                                  int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_dropout(ctx, x[0], c->p, rng);
}

static int dropout2d_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    char s[96];
    if (in->ndim != 2 && in->ndim != 3)
        return why_(why, "dropout2d needs a [C, H, W] or [C, L] input, got %s",
                    nbi_shape_fmt(in, s, sizeof s));
    l->out = *in;
    return 0;
}

static nb_tensor *dropout2d_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                                    int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_dropout2d(ctx, x[0], c->p, rng);
}

/* ---- batch_norm ---------------------------------------------------------- */

static const nbi_field bn_fields[] = {
    {"num_features", NBI_F_INT, 0, OFF(bn.num_features), 0, 1, BIG},
    {"eps", NBI_F_REAL, 0, OFF(bn.eps), 1e-5, 1e-300, 1e300},
    {"momentum", NBI_F_REAL, 0, OFF(bn.momentum), 0.1, 0, 1},
    {"affine", NBI_F_BOOL, 0, OFF(bn.affine), 1, 0, 1},
    {0},
};

/* [C] or [C, H, W], per channel; weight and bias [C] (affine), buffers
 * running_mean and running_var [C]. */
static int bn_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    const nbi_bn_conf *c = &l->conf.bn;
    char s[96];
    if (in->ndim != 1 && in->ndim != 3)
        return why_(why, "batch_norm needs a [C] or [C, H, W] input, got %s",
                    nbi_shape_fmt(in, s, sizeof s));
    if (c->num_features && c->num_features != in->d[0])
        return why_(why, "num_features %d does not match the input's %" PRId64 " channels",
                    c->num_features, in->d[0]);
    l->out = *in;
    int64_t C = in->d[0];
    if (c->affine) {
        set_slot(l, NBI_WEIGHT, 1, &C);
        set_slot(l, NBI_BIAS, 1, &C);
    }
    set_slot(l, NBI_RUNNING_MEAN, 1, &C);
    set_slot(l, NBI_RUNNING_VAR, 1, &C);
    return 0;
}

static nb_tensor *bn_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                             int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_batch_norm(ctx, x[0], p[NBI_WEIGHT], p[NBI_BIAS], p[NBI_RUNNING_MEAN],
                         p[NBI_RUNNING_VAR], c->bn.momentum, c->bn.eps);
}

static void bn_init(nb_tensor *const *p, nb_rng *rng)
{
    if (p[NBI_WEIGHT]) {
        nb_fill(p[NBI_WEIGHT], 1);
        nb_fill(p[NBI_BIAS], 0);
    }
    nb_fill(p[NBI_RUNNING_MEAN], 0);
    nb_fill(p[NBI_RUNNING_VAR], 1);
}

/* ---- add, concat --------------------------------------------------------- */

static bool shape_eq(const nbi_shape *a, const nbi_shape *b, int skip)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (i != skip && a->d[i] != b->d[i])
            return false;
    return true;
}

/* Every input the shape of the first. */
static int add_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    char a[96], b[96];
    for (int i = 1; i < l->nin; i++)
        if (!shape_eq(&in[i], &in[0], -1))
            return why_(why, "inputs \"%s\" %s and \"%s\" %s differ in shape", l->in_names[0],
                        nbi_shape_fmt(&in[0], a, sizeof a), l->in_names[i],
                        nbi_shape_fmt(&in[i], b, sizeof b));
    l->out = in[0];
    return 0;
}

static nb_tensor *add_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                              int nin, nb_tensor *const *x, nb_rng *rng)
{
    nb_tensor *y = x[0];
    for (int i = 1; i < nin; i++)
        y = nb_add(ctx, y, x[i]);
    return y;
}

/* Joins along the channels (dim 0 of an example, 1 of the batch). */
static int concat_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    char a[96], b[96];
    l->out = in[0];
    for (int i = 1; i < l->nin; i++) {
        if (!shape_eq(&in[i], &in[0], 0))
            return why_(why, "inputs \"%s\" %s and \"%s\" %s differ outside the channels (dim 0)",
                        l->in_names[0], nbi_shape_fmt(&in[0], a, sizeof a), l->in_names[i],
                        nbi_shape_fmt(&in[i], b, sizeof b));
        l->out.d[0] += in[i].d[0]; /* each <= INT_MAX, at most 8 of them */
    }
    return 0;
}

static nb_tensor *concat_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                                 int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_concat(ctx, nin, x, 1);
}

/* ---- the table ------------------------------------------------------------ */

static const nbi_field no_fields[] = {{0}};

const nbi_layer_kind nbi_layer_kinds[] = {
    {"conv2d", conv2d_fields, NBI_TAKES_ACT | NBI_FUSES_RELU, 1, conv_check, conv2d_infer, conv2d_forward, default_init},
    {"conv1d", conv1d_fields, NBI_TAKES_ACT | NBI_FUSES_RELU, 1, conv_check, conv1d_infer, conv1d_forward, default_init},
    {"max_pool2d", pool_fields, 0, 1, pool_check, pool_infer, max_pool2d_forward, NULL},
    {"avg_pool2d", pool_fields, 0, 1, pool_check, pool_infer, avg_pool2d_forward, NULL},
    {"global_avg_pool2d", no_fields, 0, 1, NULL, gap_infer, gap_forward, NULL},
    {"linear", linear_fields, NBI_TAKES_ACT, 1, NULL, linear_infer, linear_forward, default_init},
    {"flatten", no_fields, 0, 1, NULL, flatten_infer, flatten_forward, NULL},
    {"relu", no_fields, NBI_ACTIVATION, 1, NULL, same_infer, relu_forward, NULL},
    {"leaky_relu", leaky_relu_fields, NBI_ACTIVATION, 1, NULL, same_infer, leaky_relu_forward, NULL},
    {"elu", elu_fields, NBI_ACTIVATION, 1, NULL, same_infer, elu_forward, NULL},
    {"relu6", no_fields, NBI_ACTIVATION, 1, NULL, same_infer, relu6_forward, NULL},
    {"sigmoid", no_fields, NBI_ACTIVATION, 1, NULL, same_infer, sigmoid_forward, NULL},
    {"tanh", no_fields, NBI_ACTIVATION, 1, NULL, same_infer, tanh_forward, NULL},
    {"softmax", softmax_fields, NBI_ACTIVATION, 1, NULL, softmax_infer, softmax_forward, NULL},
    {"dropout", dropout_fields, 0, 1, NULL, same_infer, dropout_forward, NULL},
    {"dropout2d", dropout_fields, 0, 1, NULL, dropout2d_infer, dropout2d_forward, NULL},
    {"batch_norm", bn_fields, 0, 1, NULL, bn_infer, bn_forward, bn_init},
    {"add", no_fields, NBI_MULTI, 2, NULL, add_infer, add_forward, NULL},
    {"concat", no_fields, NBI_MULTI, 1, NULL, concat_infer, concat_forward, NULL},
    {0},
};
