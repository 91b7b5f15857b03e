/*
 * pool.c - 2-D pooling over [N, C, H, W]: max_pool2d, avg_pool2d and
 * global_avg_pool2d.  Windows follow torch.nn.functional with
 * ceil_mode=False: oh = (H + 2 ph - kh) / sh + 1.  Since the padding is at
 * most half the kernel, every window holds at least one real element, so
 * the kernels walk only the window's part inside the input: max-pool's
 * -inf padding and avg-pool's zero padding never need to be read.
 */
#ifdef T /* ---- kernels in T, named K(...) ------------------------------- */

/* max_pool2d: y = max over the window;  argmax = its flat index in the
 * plane, the first maximum in row-major order (a NaN wins, as PyTorch). */
static void K(max_pool_fwd)(const pool_geom *g, int64_t planes, const T *x, T *y,
                            int32_t *argmax)
{
    for (int64_t p = 0; p < planes; p++) {
        const T *xp = x + p * g->h * g->w;
        for (int64_t oy = 0; oy < g->oh; oy++) {
            int64_t y0 = oy * g->sh - g->ph, y1 = y0 + g->kh;
            y0 = y0 < 0 ? 0 : y0;
            y1 = y1 > g->h ? g->h : y1;
            for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t x0 = ox * g->sw - g->pw, x1 = x0 + g->kw;
                x0 = x0 < 0 ? 0 : x0;
                x1 = x1 > g->w ? g->w : x1;
                T best = -(T)INFINITY;
                int32_t arg = (int32_t)(y0 * g->w + x0);
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++) {
                        /* Compare and select, no branch on the data. */
                        T v = xp[iy * g->w + ix];
                        int take = (v > best) | (isnan(v) != 0);
                        best = take ? v : best;
                        arg = take ? (int32_t)(iy * g->w + ix) : arg;
                    }
                *y++ = best;
                if (argmax)
                    *argmax++ = arg;
            }
        }
    }
}

/* max_pool2d: dx[argmax] += dy, plane by plane */
static void K(max_pool_bwd)(const pool_geom *g, int64_t planes, const int32_t *argmax,
                            const T *dy, T *dx)
{
    int64_t nout = g->oh * g->ow;
    for (int64_t p = 0; p < planes; p++) {
        T *dxp = dx + p * g->h * g->w;
        for (int64_t i = 0; i < nout; i++)
            dxp[argmax[i]] += dy[i];
        argmax += nout;
        dy += nout;
    }
}

/* avg_pool2d: y = sum over the window / (kh kw), padded zeros counted */
static void K(avg_pool_fwd)(const pool_geom *g, int64_t planes, const T *x, T *y)
{
    T scale = (T)(1.0 / (g->kh * g->kw));
    for (int64_t p = 0; p < planes; p++) {
        const T *xp = x + p * g->h * g->w;
        for (int64_t oy = 0; oy < g->oh; oy++) {
            int64_t y0 = oy * g->sh - g->ph, y1 = y0 + g->kh;
            y0 = y0 < 0 ? 0 : y0;
            y1 = y1 > g->h ? g->h : y1;
            for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t x0 = ox * g->sw - g->pw, x1 = x0 + g->kw;
                x0 = x0 < 0 ? 0 : x0;
                x1 = x1 > g->w ? g->w : x1;
                T acc = 0;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++)
                        acc += xp[iy * g->w + ix];
                *y++ = acc * scale;
            }
        }
    }
}

/* avg_pool2d: dx += dy / (kh kw) over each window */
static void K(avg_pool_bwd)(const pool_geom *g, int64_t planes, const T *dy, T *dx)
{
    T scale = (T)(1.0 / (g->kh * g->kw));
    for (int64_t p = 0; p < planes; p++) {
        T *dxp = dx + p * g->h * g->w;
        for (int64_t oy = 0; oy < g->oh; oy++) {
            int64_t y0 = oy * g->sh - g->ph, y1 = y0 + g->kh;
            y0 = y0 < 0 ? 0 : y0;
            y1 = y1 > g->h ? g->h : y1;
            for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t x0 = ox * g->sw - g->pw, x1 = x0 + g->kw;
                x0 = x0 < 0 ? 0 : x0;
                x1 = x1 > g->w ? g->w : x1;
                T d = *dy++ * scale;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++)
                        dxp[iy * g->w + ix] += d;
            }
        }
    }
}

/* global_avg_pool2d: y[p] = mean of plane p (summed in double);
 * dx[p] += dy[p] / (H W) */
static void K(gap_fwd)(int64_t planes, int64_t hw, const T *x, T *y)
{
    for (int64_t p = 0; p < planes; p++) {
        double acc = 0;
        for (int64_t i = 0; i < hw; i++)
            acc += x[p * hw + i];
        y[p] = (T)(acc / (double)hw);
    }
}
static void K(gap_bwd)(int64_t planes, int64_t hw, const T *dy, T *dx)
{
    for (int64_t p = 0; p < planes; p++) {
        T d = (T)(dy[p] / (double)hw);
        for (int64_t i = 0; i < hw; i++)
            dx[p * hw + i] += d;
    }
}

#else /* ---- builders and backward ----------------------------------------- */

#include "internal.h"

#include <math.h>

/* A pooling's sizes: input plane, output plane, kernel, stride, padding. */
typedef struct pool_geom {
    int64_t h, w, oh, ow;
    int64_t kh, kw, sh, sw, ph, pw;
} pool_geom;

#define T float
#define K(f) f##_f32
#include "pool.c"
#undef T
#undef K
#define T double
#define K(f) f##_f64
#include "pool.c"
#undef T
#undef K

typedef struct pool_node {
    nbi_node base;
    pool_geom g;
    int32_t *argmax; /* max_pool2d: one plane index per output element */
} pool_node;

/* Checks x and the options against the shape rule and fills g. */
static bool pool_geometry(nb_ctx *ctx, const char *op, const nb_tensor *x,
                          const nb_pool_opts *o, pool_geom *g)
{
    char xs[96];
    nb_shape_str(x, xs, sizeof xs);
    if (x->ndim != 4) {
        nbi_fail(ctx, NB_ERR_ARG, "%s: input %s must be [N, C, H, W]", op, xs);
        return false;
    }
    if (!o) {
        nbi_fail(ctx, NB_ERR_ARG, "%s: options are NULL (the kernel size is required)", op);
        return false;
    }
    if (o->kernel[0] < 1 || o->kernel[1] < 1) {
        nbi_fail(ctx, NB_ERR_ARG, "%s: kernel [%d, %d] must be at least 1", op, o->kernel[0],
                 o->kernel[1]);
        return false;
    }
    if (o->stride[0] < 0 || o->stride[1] < 0) {
        nbi_fail(ctx, NB_ERR_ARG, "%s: stride [%d, %d] must not be negative", op, o->stride[0],
                 o->stride[1]);
        return false;
    }
    /* PyTorch's rule; it also keeps every window over some real element. */
    if (o->padding[0] < 0 || o->padding[1] < 0 || o->padding[0] > o->kernel[0] / 2 ||
        o->padding[1] > o->kernel[1] / 2) {
        nbi_fail(ctx, NB_ERR_ARG,
                 "%s: padding [%d, %d] must be between 0 and half the kernel [%d, %d]", op,
                 o->padding[0], o->padding[1], o->kernel[0], o->kernel[1]);
        return false;
    }
    g->h = x->shape[2];
    g->w = x->shape[3];
    g->kh = o->kernel[0];
    g->kw = o->kernel[1];
    g->sh = o->stride[0] ? o->stride[0] : o->kernel[0];
    g->sw = o->stride[1] ? o->stride[1] : o->kernel[1];
    g->ph = o->padding[0];
    g->pw = o->padding[1];
    if (g->kh > g->h + 2 * g->ph || g->kw > g->w + 2 * g->pw) {
        nbi_fail(ctx, NB_ERR_ARG,
                 "%s: kernel [%d, %d] is larger than input %s padded by [%d, %d]", op,
                 o->kernel[0], o->kernel[1], xs, o->padding[0], o->padding[1]);
        return false;
    }
    g->oh = (g->h + 2 * g->ph - g->kh) / g->sh + 1;
    g->ow = (g->w + 2 * g->pw - g->kw) / g->sw + 1;
    return true;
}

static nb_tensor *pool2d(nb_ctx *ctx, int op, nb_tensor *x, const nb_pool_opts *opts)
{
    const char *name = nbi_ops[op]->name;
    pool_geom g;
    if (!nbi_check_inputs(ctx, name, 1, &x) || !pool_geometry(ctx, name, x, opts, &g))
        return NULL;
    if (op == NBI_OP_max_pool2d && g.h > INT32_MAX / g.w) { /* argmax is an int32 */
        char xs[96];
        return nbi_fail_null(ctx, NB_ERR_ARG, "%s: input %s has planes over %d elements", name,
                             nb_shape_str(x, xs, sizeof xs), INT32_MAX);
    }
    int64_t shape[4] = {x->shape[0], x->shape[1], g.oh, g.ow};
    nb_tensor *y = nbi_step_tensor(ctx, x->dtype, 4, shape);
    if (!y)
        return NULL;
    bool record = nbi_needs_grad(ctx, 1, &x);
    int32_t *argmax = NULL;
    if (record && op == NBI_OP_max_pool2d) {
        argmax = nbi_scratch(ctx, sizeof *argmax * (size_t)y->numel);
        if (!argmax)
            return NULL;
    }
    int64_t planes = x->shape[0] * x->shape[1];
    if (op == NBI_OP_max_pool2d)
        NBI_CALL(x->dtype, max_pool_fwd, &g, planes, x->data, y->data, argmax);
    else
        NBI_CALL(x->dtype, avg_pool_fwd, &g, planes, x->data, y->data);
    if (record) {
        pool_node *n = nbi_record(ctx, op, sizeof *n, y, 1, &x);
        if (!n)
            return NULL;
        n->g = g;
        n->argmax = argmax;
    }
    return y;
}

static int pool2d_backward(nb_ctx *ctx, nbi_node *node)
{
    pool_node *n = (pool_node *)node;
    nb_tensor *x = node->in[0];
    void *dx = nbi_grad(ctx, x);
    if (!dx)
        return ctx->status;
    int64_t planes = x->shape[0] * x->shape[1];
    if (node->op == NBI_OP_max_pool2d)
        NBI_CALL(x->dtype, max_pool_bwd, &n->g, planes, n->argmax, node->out->grad->data, dx);
    else
        NBI_CALL(x->dtype, avg_pool_bwd, &n->g, planes, node->out->grad->data, dx);
    return NB_OK;
}

const nbi_op nbi_op_max_pool2d = {"max_pool2d", pool2d_backward};
const nbi_op nbi_op_avg_pool2d = {"avg_pool2d", pool2d_backward};

nb_tensor *nb_max_pool2d(nb_ctx *ctx, nb_tensor *x, const nb_pool_opts *opts)
{
    return pool2d(ctx, NBI_OP_max_pool2d, x, opts);
}

nb_tensor *nb_avg_pool2d(nb_ctx *ctx, nb_tensor *x, const nb_pool_opts *opts)
{
    return pool2d(ctx, NBI_OP_avg_pool2d, x, opts);
}

/* ---- global_avg_pool2d: [N, C, H, W] -> [N, C] ------------------------- */

nb_tensor *nb_global_avg_pool2d(nb_ctx *ctx, nb_tensor *x)
{
    if (!nbi_check_inputs(ctx, "global_avg_pool2d", 1, &x))
        return NULL;
    if (x->ndim != 4) {
        char xs[96];
        return nbi_fail_null(ctx, NB_ERR_ARG, "global_avg_pool2d: input %s must be [N, C, H, W]",
                             nb_shape_str(x, xs, sizeof xs));
    }
    nb_tensor *y = nbi_step_tensor(ctx, x->dtype, 2, x->shape);
    if (!y)
        return NULL;
    NBI_CALL(x->dtype, gap_fwd, y->numel, x->shape[2] * x->shape[3], x->data, y->data);
    if (nbi_needs_grad(ctx, 1, &x) &&
        !nbi_record(ctx, NBI_OP_global_avg_pool2d, sizeof(nbi_node), y, 1, &x))
        return NULL;
    return y;
}

static int gap_backward(nb_ctx *ctx, nbi_node *node)
{
    nb_tensor *x = node->in[0];
    void *dx = nbi_grad(ctx, x);
    if (!dx)
        return ctx->status;
    NBI_CALL(x->dtype, gap_bwd, node->out->numel, x->shape[2] * x->shape[3],
             node->out->grad->data, dx);
    return NB_OK;
}

const nbi_op nbi_op_global_avg_pool2d = {"global_avg_pool2d", gap_backward};

#endif
