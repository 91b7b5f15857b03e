/*
 * layers.c - the layer kinds a model file may name: one row per "type" in
 * nbi_layer_kinds, with its fields (PyTorch's names and defaults) and its
 * forward through the public ops.  A kind's check and shape inference only
 * map its fields to the op's options and to the shapes of the parameters
 * it declares, then ask the op family's shape rule (internal.h), which
 * holds every check of sizes, every limit and every output formula, and
 * which the op's builder applies too.  Adding a layer type is one row and
 * its functions.  Knows nothing of JSON or of how layers connect.
 */
#include "layer.h"

#include <inttypes.h>
#include <limits.h>

const char *const nbi_slot_names[NBI_NSLOTS] = {"weight", "bias", "running_mean", "running_var"};

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
    {"groups", NBI_F_INT, 0, OFF(conv.groups), 1, 1, BIG},
    {"dilation", NBI_F_INT, NBI_PAIR, OFF(conv.dilation), 1, 1, BIG},
    {0},
};

static const nbi_field conv1d_fields[] = {
    {"in_channels", NBI_F_INT, 0, OFF(conv.in), 0, 1, BIG},
    {"out_channels", NBI_F_INT, NBI_REQUIRED, OFF(conv.out), 0, 1, BIG},
    {"kernel_size", NBI_F_INT, NBI_REQUIRED, OFF(conv.kernel), 0, 1, BIG},
    {"stride", NBI_F_INT, 0, OFF(conv.stride), 1, 1, BIG},
    {"padding", NBI_F_PAD, NBI_SAME, OFF(conv.padding), 0, 0, BIG},
    {"bias", NBI_F_BOOL, 0, OFF(conv.bias), 1, 0, 1},
    {"groups", NBI_F_INT, 0, OFF(conv.groups), 1, 1, BIG},
    {"dilation", NBI_F_INT, 0, OFF(conv.dilation), 1, 1, BIG},
    {0},
};

/* The op's options; "same" leaves no explicit padding. */
static void conv_opts(const nbi_conv_conf *c, nb_conv_opts *o)
{
    *o = (nb_conv_opts){{c->stride[0], c->stride[1]},
                        {c->padding.v[0], c->padding.v[1]}, c->padding.same, false, c->relu,
                        c->groups, {c->dilation[0], c->dilation[1]}};
    if (c->padding.same)
        o->padding[0] = o->padding[1] = 0;
}

static int conv2d_check(nbi_layer *l, char *why)
{
    nb_conv_opts o;
    conv_opts(&l->conf.conv, &o);
    return nbi_conv_opts_check(2, &o, why);
}

static int conv1d_check(nbi_layer *l, char *why)
{
    nb_conv_opts o;
    conv_opts(&l->conf.conv, &o);
    return nbi_conv_opts_check(1, &o, why);
}

/* conv2d [C, H, W] (sd 2), conv1d [C, L] (sd 1, settings at index 0);
 * weight [out_channels, in_channels / groups, kernel_size...], in_channels
 * the input's channels unless given; bias [out_channels]. */
static int conv_infer(nbi_layer *l, const nbi_shape *in, char *why, int sd)
{
    const nbi_conv_conf *c = &l->conf.conv;
    nb_conv_opts o;
    conv_opts(c, &o);
    int64_t C = c->in ? c->in : in->d[0];
    if (C % c->groups) /* named as the file names it, before the shape rule's message */
        return nbi_why(why, "in_channels %" PRId64 " is not divisible by groups %d", C,
                       c->groups);
    if (c->out % c->groups)
        return nbi_why(why, "out_channels %d is not divisible by groups %d", c->out, c->groups);
    nbi_shape w = {sd + 2, {c->out, C / c->groups, c->kernel[0], sd == 2 ? c->kernel[1] : 0}};
    if (nbi_conv_shape(sd, in, false, &w, NULL, &o, NULL, &l->out, why))
        return -1;
    l->slot[NBI_WEIGHT] = w;
    if (c->bias)
        l->slot[NBI_BIAS] = (nbi_shape){1, {c->out}};
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

/* The im2col columns a recording conv keeps for its weight's gradient. */
static uint64_t conv_keeps(const nbi_layer *l, uint64_t es, bool record)
{
    nb_conv_opts o;
    conv_opts(&l->conf.conv, &o);
    const nbi_shape *w = &l->slot[NBI_WEIGHT];
    int64_t pixels = nbi_shape_elems(&l->out) / w->d[0];
    return record ? (uint64_t)nbi_conv_kept_elems(w, &o, pixels) * es : 0;
}

/* PyTorch's default for nn.Conv*d and nn.Linear. */
static void default_init(nb_tensor *const *p, nb_rng *rng)
{
    nb_init_default(p[NBI_WEIGHT], p[NBI_BIAS], rng);
}

/* ---- conv_transpose2d ---------------------------------------------------- */

static const nbi_field convt_fields[] = {
    {"in_channels", NBI_F_INT, 0, OFF(convt.in), 0, 1, BIG},
    {"out_channels", NBI_F_INT, NBI_REQUIRED, OFF(convt.out), 0, 1, BIG},
    {"kernel_size", NBI_F_INT, NBI_REQUIRED | NBI_PAIR, OFF(convt.kernel), 0, 1, BIG},
    {"stride", NBI_F_INT, NBI_PAIR, OFF(convt.stride), 1, 1, BIG},
    {"padding", NBI_F_INT, NBI_PAIR, OFF(convt.padding), 0, 0, BIG},
    {"output_padding", NBI_F_INT, NBI_PAIR, OFF(convt.output_padding), 0, 0, BIG},
    {"groups", NBI_F_INT, 0, OFF(convt.groups), 1, 1, BIG},
    {"bias", NBI_F_BOOL, 0, OFF(convt.bias), 1, 0, 1},
    {"dilation", NBI_F_INT, NBI_PAIR, OFF(convt.dilation), 1, 1, BIG},
    {0},
};

static void convt_opts(const nbi_convt_conf *c, nb_conv_transpose_opts *o)
{
    *o = (nb_conv_transpose_opts){{c->stride[0], c->stride[1]},
                                  {c->padding[0], c->padding[1]},
                                  {c->output_padding[0], c->output_padding[1]},
                                  c->groups,
                                  {c->dilation[0], c->dilation[1]}};
}

static int convt_check(nbi_layer *l, char *why)
{
    nb_conv_transpose_opts o;
    convt_opts(&l->conf.convt, &o);
    return nbi_conv_transpose2d_opts_check(&o, l->conf.convt.out, why);
}

/* [C, H, W] -> [out_channels, oh, ow]; weight [in_channels, out_channels /
 * groups, kh, kw] (PyTorch's layout), in_channels the input's unless given;
 * bias [out_channels]. */
static int convt_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    const nbi_convt_conf *c = &l->conf.convt;
    nb_conv_transpose_opts o;
    convt_opts(c, &o);
    int64_t C = c->in ? c->in : in->d[0];
    nbi_shape w = {4, {C, c->out / c->groups, c->kernel[0], c->kernel[1]}};
    if (nbi_conv_transpose2d_shape(in, false, &w, NULL, &o, NULL, &l->out, why))
        return -1;
    l->slot[NBI_WEIGHT] = w;
    if (c->bias)
        l->slot[NBI_BIAS] = (nbi_shape){1, {c->out}};
    return 0;
}

static nb_tensor *convt_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                                int nin, nb_tensor *const *x, nb_rng *rng)
{
    nb_conv_transpose_opts o;
    convt_opts(&c->convt, &o);
    return nb_conv_transpose2d(ctx, x[0], p[NBI_WEIGHT], p[NBI_BIAS], &o);
}

/* ---- pooling ------------------------------------------------------------ */

static const nbi_field pool_fields[] = {
    {"kernel_size", NBI_F_INT, NBI_REQUIRED | NBI_PAIR, OFF(pool.kernel), 0, 1, BIG},
    {"stride", NBI_F_INT, NBI_PAIR, OFF(pool.stride), 0, 1, BIG}, /* 0: the kernel */
    {"padding", NBI_F_INT, NBI_PAIR, OFF(pool.padding), 0, 0, BIG},
    {0},
};

static void pool_opts(const nbi_pool_conf *c, nb_pool_opts *o)
{
    *o = (nb_pool_opts){{c->kernel[0], c->kernel[1]},
                        {c->stride[0], c->stride[1]},
                        {c->padding[0], c->padding[1]}};
}

static int pool_check(nbi_layer *l, char *why)
{
    nb_pool_opts o;
    pool_opts(&l->conf.pool, &o);
    return nbi_pool2d_opts_check(&o, why);
}

/* [C, H, W] -> [C, oh, ow] */
static int pool_infer(const nbi_op *op, nbi_layer *l, const nbi_shape *in, char *why)
{
    nb_pool_opts o;
    pool_opts(&l->conf.pool, &o);
    return nbi_pool2d_shape(op, in, false, &o, NULL, &l->out, why);
}

static int max_pool2d_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    return pool_infer(&nbi_op_max_pool2d, l, in, why);
}

static int avg_pool2d_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    return pool_infer(&nbi_op_avg_pool2d, l, in, why);
}

/* The index of each output's maximum, for backward. */
static uint64_t max_pool2d_keeps(const nbi_layer *l, uint64_t es, bool record)
{
    (void)es;
    return record ? (uint64_t)nbi_shape_elems(&l->out) * sizeof(int32_t) : 0;
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
    return nbi_global_avg_pool2d_shape(in, false, &l->out, why);
}

static nb_tensor *gap_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                              int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_global_avg_pool2d(ctx, x[0]);
}

/* ---- upsample ------------------------------------------------------------ */

/* In nb_upsample_mode's order. */
static const char *const upsample_modes[] = {"nearest", "bilinear", NULL};
static const nbi_ftype upsample_mode = {.kind = NBI_FK_CHOICE, .choices = upsample_modes};
static const nbi_ftype upsample_scale = {.kind = NBI_FK_REALS, .len = {1, 2},
                                         .len_offset = OFF(upsample.nscale)};

static const nbi_field upsample_fields[] = {
    {"mode", &upsample_mode, 0, OFF(upsample.mode), NB_UPSAMPLE_NEAREST, 0, 0},
    {"size", NBI_F_INT, NBI_PAIR, OFF(upsample.size), 0, 1, BIG}, /* 0: not given */
    {"scale_factor", &upsample_scale, NBI_ONE, OFF(upsample.scale_factor), 0, 1e-300, 1e300},
    {"align_corners", NBI_F_BOOL, 0, OFF(upsample.align_corners), 0, 0, 1},
    {0},
};

/* The op's options; one number for scale_factor is both axes'. */
static void upsample_opts(const nbi_upsample_conf *c, nb_upsample_opts *o)
{
    *o = (nb_upsample_opts){(nb_upsample_mode)c->mode, {c->size[0], c->size[1]}, {0, 0},
                            c->align_corners};
    if (c->nscale) {
        o->scale_factor[0] = c->scale_factor[0];
        o->scale_factor[1] = c->scale_factor[c->nscale == 2];
    }
}

static int upsample_check(nbi_layer *l, char *why)
{
    nb_upsample_opts o;
    upsample_opts(&l->conf.upsample, &o);
    return nbi_upsample_opts_check(&o, why);
}

/* [C, H, W] -> [C, oh, ow] */
static int upsample_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    nb_upsample_opts o;
    upsample_opts(&l->conf.upsample, &o);
    return nbi_upsample_shape(in, false, &o, NULL, &l->out, why);
}

static nb_tensor *upsample_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                                   int nin, nb_tensor *const *x, nb_rng *rng)
{
    nb_upsample_opts o;
    upsample_opts(&c->upsample, &o);
    return nb_upsample(ctx, x[0], &o);
}

/* ---- linear, flatten ------------------------------------------------------ */

static const nbi_field linear_fields[] = {
    {"in_features", NBI_F_INT, 0, OFF(linear.in), 0, 1, BIG},
    {"out_features", NBI_F_INT, NBI_REQUIRED, OFF(linear.out), 0, 1, BIG},
    {"bias", NBI_F_BOOL, 0, OFF(linear.bias), 1, 0, 1},
    {0},
};

/* [F] -> [out_features]; weight [out_features, in_features], in_features
 * the input's F unless given; bias [out_features]. */
static int linear_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    const nbi_linear_conf *c = &l->conf.linear;
    nbi_shape w = {2, {c->out, c->in ? c->in : in->d[0]}};
    if (nbi_linear_shape(in, false, &w, NULL, &l->out, why))
        return -1;
    l->slot[NBI_WEIGHT] = w;
    if (c->bias)
        l->slot[NBI_BIAS] = (nbi_shape){1, {c->out}};
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
    return nbi_flatten_shape(in, false, &l->out, why);
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

/* gelu's "approximate", by position: "none" is 0, the exact form. */
static const char *const gelu_forms[] = {"none", "tanh", NULL};
static const nbi_ftype gelu_form = {.kind = NBI_FK_CHOICE, .choices = gelu_forms};

static const nbi_field gelu_fields[] = {
    {"approximate", &gelu_form, 0, OFF(approximate), 0, 0, 0},
    {0},
};

static const nbi_field softplus_fields[] = {
    {"beta", NBI_F_REAL, 0, OFF(softplus.beta), 1.0, 1e-300, 1e300},
    {"threshold", NBI_F_REAL, 0, OFF(softplus.threshold), 20.0, -1e300, 1e300},
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

static nb_tensor *gelu_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                               int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_gelu(ctx, x[0], c->approximate == 1);
}

static nb_tensor *silu_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                               int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_silu(ctx, x[0]);
}

static nb_tensor *hardswish_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                                    int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_hardswish(ctx, x[0]);
}

static nb_tensor *softplus_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                                   int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_softplus(ctx, x[0], c->softplus.beta, c->softplus.threshold);
}

/* dim counts the dimensions of [N, ...], as nb_softmax takes it. */
static int softmax_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    if (nbi_softmax_dim(in, false, l->conf.dim, NULL, why))
        return -1;
    return same_infer(l, in, why);
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

/* The mask: per element (dropout) or per channel (dropout2d). */
static uint64_t dropout_keeps(const nbi_layer *l, uint64_t es, bool record)
{
    return record ? (uint64_t)nbi_shape_elems(&l->out) * es : 0;
}

static uint64_t dropout2d_keeps(const nbi_layer *l, uint64_t es, bool record)
{
    return record ? (uint64_t)l->out.d[0] * es : 0;
}

static int dropout2d_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    if (nbi_dropout2d_shape(in, false, why))
        return -1;
    return same_infer(l, in, why);
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
    {"freeze_stats", NBI_F_BOOL, 0, OFF(bn.freeze_stats), 0, 0, 1},
    {0},
};

/* [C], [C, L] (after conv1d) or [C, H, W], per channel; weight and bias
 * [C] (affine), buffers running_mean and running_var [C]. */
static int bn_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    const nbi_bn_conf *c = &l->conf.bn;
    if (nbi_batch_norm_shape(in, false, c->num_features, NULL, &l->out, why))
        return -1;
    nbi_shape chan = {1, {in->d[0]}};
    if (c->affine)
        l->slot[NBI_WEIGHT] = l->slot[NBI_BIAS] = chan;
    l->slot[NBI_RUNNING_MEAN] = l->slot[NBI_RUNNING_VAR] = chan;
    return 0;
}

static nb_tensor *bn_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                             int nin, nb_tensor *const *x, nb_rng *rng)
{
    /* Frozen statistics: eval mode's normalisation, in training too. */
    bool training = c->bn.freeze_stats ? nb_set_training(ctx, false) : false;
    nb_tensor *y = nb_batch_norm(ctx, x[0], p[NBI_WEIGHT], p[NBI_BIAS], p[NBI_RUNNING_MEAN],
                                 p[NBI_RUNNING_VAR], c->bn.momentum, c->bn.eps);
    if (c->bn.freeze_stats)
        nb_set_training(ctx, training);
    return y;
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

/* ---- layer_norm, group_norm ---------------------------------------------- */

static const nbi_ftype ln_dims = {.kind = NBI_FK_INTS, .len = {1, NB_MAX_DIMS - 1},
                                  .len_offset = OFF(ln.ndims)};

static const nbi_field ln_fields[] = {
    {"normalized_shape", &ln_dims, NBI_ONE, OFF(ln.normalized_shape), 0, 1, BIG},
    {"eps", NBI_F_REAL, 0, OFF(ln.eps), 1e-5, 1e-300, 1e300},
    {"elementwise_affine", NBI_F_BOOL, 0, OFF(ln.elementwise_affine), 1, 0, 1},
    {"bias", NBI_F_BOOL, 0, OFF(ln.bias), 1, 0, 1},
    {0},
};

/* Over normalized_shape, the last dimensions of one example (absent: all
 * of them); weight (elementwise_affine) and bias (and "bias") shaped as
 * it, as PyTorch's LayerNorm. */
static int ln_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    const nbi_ln_conf *c = &l->conf.ln;
    nbi_shape given = {c->ndims, {0}};
    for (int i = 0; i < c->ndims; i++)
        given.d[i] = c->normalized_shape[i];
    int ndims = c->ndims ? c->ndims : in->ndim;
    if (nbi_layer_norm_shape(in, false, ndims, c->ndims ? &given : NULL, NULL, NULL, &l->out,
                             why))
        return -1;
    nbi_shape last = {ndims, {0}};
    for (int i = 0; i < ndims; i++)
        last.d[i] = in->d[in->ndim - ndims + i];
    if (c->elementwise_affine)
        l->slot[NBI_WEIGHT] = last;
    if (c->elementwise_affine && c->bias)
        l->slot[NBI_BIAS] = last;
    return 0;
}

static nb_tensor *ln_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                             int nin, nb_tensor *const *x, nb_rng *rng)
{
    int ndims = c->ln.ndims ? c->ln.ndims : x[0]->ndim - 1;
    return nb_layer_norm(ctx, x[0], ndims, p[NBI_WEIGHT], p[NBI_BIAS], c->ln.eps);
}

/* Each row's mean and rstd, in double, for backward (made in eval too). */
static uint64_t ln_keeps(const nbi_layer *l, uint64_t es, bool record)
{
    (void)es;
    (void)record;
    int ndims = l->conf.ln.ndims ? l->conf.ln.ndims : l->out.ndim;
    int64_t m = 1;
    for (int i = l->out.ndim - ndims; i < l->out.ndim; i++)
        m = nbi_mul(m, l->out.d[i]);
    return m ? (uint64_t)(nbi_shape_elems(&l->out) / m) * 2 * sizeof(double) : 0;
}

static const nbi_field gn_fields[] = {
    {"num_groups", NBI_F_INT, NBI_REQUIRED, OFF(gn.num_groups), 0, 1, BIG},
    {"num_channels", NBI_F_INT, 0, OFF(gn.num_channels), 0, 1, BIG},
    {"eps", NBI_F_REAL, 0, OFF(gn.eps), 1e-5, 1e-300, 1e300},
    {"affine", NBI_F_BOOL, 0, OFF(gn.affine), 1, 0, 1},
    {0},
};

static int gn_check(nbi_layer *l, char *why)
{
    const nbi_gn_conf *c = &l->conf.gn;
    if (c->num_channels && c->num_channels % c->num_groups)
        return nbi_why(why, "num_groups %d does not divide num_channels %d", c->num_groups,
                       c->num_channels);
    return 0;
}

/* [C, *] in num_groups groups of channels; weight and bias [C] (affine). */
static int gn_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    const nbi_gn_conf *c = &l->conf.gn;
    if (nbi_group_norm_shape(in, false, c->num_groups, c->num_channels, NULL, NULL, &l->out, why))
        return -1;
    if (c->affine)
        l->slot[NBI_WEIGHT] = l->slot[NBI_BIAS] = (nbi_shape){1, {in->d[0]}};
    return 0;
}

static nb_tensor *gn_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                             int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_group_norm(ctx, x[0], c->gn.num_groups, p[NBI_WEIGHT], p[NBI_BIAS], c->gn.eps);
}

/* Each group's mean and rstd, in double, for backward (made in eval too). */
static uint64_t gn_keeps(const nbi_layer *l, uint64_t es, bool record)
{
    (void)es;
    (void)record;
    return (uint64_t)l->conf.gn.num_groups * 2 * sizeof(double);
}

/* PyTorch's: weight 1, bias 0, where the layer has them. */
static void ones_zeros_init(nb_tensor *const *p, nb_rng *rng)
{
    if (p[NBI_WEIGHT])
        nb_fill(p[NBI_WEIGHT], 1);
    if (p[NBI_BIAS])
        nb_fill(p[NBI_BIAS], 0);
}

/* ---- add, concat --------------------------------------------------------- */

/* Every input the shape of the first: no broadcasting (arith.c says why). */
static int add_infer(nbi_layer *l, const nbi_shape *in, char *why)
{
    return nbi_add_equal_shape(l->nin, in, l->in_names, &l->out, why);
}

/* n inputs are n - 1 sums: the first n - 2 besides the output. */
static uint64_t add_keeps(const nbi_layer *l, uint64_t es, bool record)
{
    (void)record;
    return (uint64_t)(l->nin - 2) * (uint64_t)nbi_shape_elems(&l->out) * es;
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
    return nbi_concat_shape(l->nin, in, l->in_names, 0, &l->out, NULL, why);
}

static nb_tensor *concat_forward(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                                 int nin, nb_tensor *const *x, nb_rng *rng)
{
    return nb_concat(ctx, nin, x, 1);
}

/* ---- the table ------------------------------------------------------------ */

static const nbi_field no_fields[] = {{0}};

const nbi_layer_kind nbi_layer_kinds[] = {
    {"conv2d", conv2d_fields, NBI_TAKES_ACT | NBI_FUSES_RELU, 1, conv2d_check, conv2d_infer, conv2d_forward, default_init, conv_keeps},
    {"conv1d", conv1d_fields, NBI_TAKES_ACT | NBI_FUSES_RELU, 1, conv1d_check, conv1d_infer, conv1d_forward, default_init, conv_keeps},
    /* keeps nothing: backward builds dY's columns, and x and w are inputs */
    {"conv_transpose2d", convt_fields, NBI_TAKES_ACT, 1, convt_check, convt_infer, convt_forward, default_init, NULL},
    {"max_pool2d", pool_fields, 0, 1, pool_check, max_pool2d_infer, max_pool2d_forward, NULL, max_pool2d_keeps},
    {"avg_pool2d", pool_fields, 0, 1, pool_check, avg_pool2d_infer, avg_pool2d_forward, NULL, NULL},
    {"global_avg_pool2d", no_fields, 0, 1, NULL, gap_infer, gap_forward, NULL, NULL},
    {"upsample", upsample_fields, 0, 1, upsample_check, upsample_infer, upsample_forward, NULL, NULL},
    {"linear", linear_fields, NBI_TAKES_ACT, 1, NULL, linear_infer, linear_forward, default_init, NULL},
    {"flatten", no_fields, NBI_VIEW, 1, NULL, flatten_infer, flatten_forward, NULL, NULL},
    {"relu", no_fields, NBI_ACTIVATION, 1, NULL, same_infer, relu_forward, NULL, NULL},
    {"leaky_relu", leaky_relu_fields, NBI_ACTIVATION, 1, NULL, same_infer, leaky_relu_forward, NULL, NULL},
    {"elu", elu_fields, NBI_ACTIVATION, 1, NULL, same_infer, elu_forward, NULL, NULL},
    {"relu6", no_fields, NBI_ACTIVATION, 1, NULL, same_infer, relu6_forward, NULL, NULL},
    {"sigmoid", no_fields, NBI_ACTIVATION, 1, NULL, same_infer, sigmoid_forward, NULL, NULL},
    {"tanh", no_fields, NBI_ACTIVATION, 1, NULL, same_infer, tanh_forward, NULL, NULL},
    {"gelu", gelu_fields, NBI_ACTIVATION, 1, NULL, same_infer, gelu_forward, NULL, NULL},
    {"silu", no_fields, NBI_ACTIVATION, 1, NULL, same_infer, silu_forward, NULL, NULL},
    {"hardswish", no_fields, NBI_ACTIVATION, 1, NULL, same_infer, hardswish_forward, NULL, NULL},
    {"softplus", softplus_fields, NBI_ACTIVATION, 1, NULL, same_infer, softplus_forward, NULL, NULL},
    {"softmax", softmax_fields, NBI_ACTIVATION, 1, NULL, softmax_infer, softmax_forward, NULL, NULL},
    {"dropout", dropout_fields, 0, 1, NULL, same_infer, dropout_forward, NULL, dropout_keeps},
    {"dropout2d", dropout_fields, 0, 1, NULL, dropout2d_infer, dropout2d_forward, NULL, dropout2d_keeps},
    {"batch_norm", bn_fields, 0, 1, NULL, bn_infer, bn_forward, bn_init, NULL},
    {"layer_norm", ln_fields, 0, 1, NULL, ln_infer, ln_forward, ones_zeros_init, ln_keeps},
    {"group_norm", gn_fields, 0, 1, gn_check, gn_infer, gn_forward, ones_zeros_init, gn_keeps},
    {"add", no_fields, NBI_MULTI, 2, NULL, add_infer, add_forward, NULL, add_keeps},
    {"concat", no_fields, NBI_MULTI, 1, NULL, concat_infer, concat_forward, NULL, NULL},
    {0},
};
