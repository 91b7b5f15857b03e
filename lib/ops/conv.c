/*
 * conv.c - 2-D convolution as im2col + GEMM, and 1-D convolution built on
 * it through reshape.  Cross-correlation as torch.nn.functional.conv2d, or
 * with `flip` true convolution (the kernel rotated 180 degrees): the flip
 * lives in the im2col index mapping, so the weights are never copied or
 * modified and their gradient is that of the stored, unflipped kernel.
 */
#ifdef T /* ---- kernels in T, named K(...); DT is T's nb_dtype ----------- */

/* col[(c kh + i) kw + j][oy ow + ox] = x[c][oy sh - pt + i'][ox sw - pl + j'],
 * zero in the padding; (i', j') = (i, j), or (kh-1-i, kw-1-j) when flipped.
 * x is one image [C, H, W], col is [C kh kw, oh ow]. */
static void K(im2col)(const conv_geom *g, const T *x, T *col)
{
    for (int64_t c = 0; c < g->c; c++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t ki = g->flip ? g->kh - 1 - i : i;
                int64_t kj = g->flip ? g->kw - 1 - j : j;
                const T *xc = x + c * g->h * g->w;
                T *row = col + ((c * g->kh + i) * g->kw + j) * g->oh * g->ow;
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    int64_t iy = oy * g->sh - g->pt + ki;
                    T *out = row + oy * g->ow;
                    if (iy < 0 || iy >= g->h) {
                        for (int64_t ox = 0; ox < g->ow; ox++)
                            out[ox] = 0;
                        continue;
                    }
                    for (int64_t ox = 0; ox < g->ow; ox++) {
                        int64_t ix = ox * g->sw - g->pl + kj;
                        out[ox] = ix >= 0 && ix < g->w ? xc[iy * g->w + ix] : 0;
                    }
                }
            }
}

/* The adjoint of im2col: dx[c][iy][ix] += dcol[r][p] for every entry (r, p)
 * that im2col reads from (c, iy, ix); padding entries are dropped. */
static void K(col2im)(const conv_geom *g, const T *dcol, T *dx)
{
    for (int64_t c = 0; c < g->c; c++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t ki = g->flip ? g->kh - 1 - i : i;
                int64_t kj = g->flip ? g->kw - 1 - j : j;
                T *dxc = dx + c * g->h * g->w;
                const T *row = dcol + ((c * g->kh + i) * g->kw + j) * g->oh * g->ow;
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    int64_t iy = oy * g->sh - g->pt + ki;
                    if (iy < 0 || iy >= g->h)
                        continue;
                    for (int64_t ox = 0; ox < g->ow; ox++) {
                        int64_t ix = ox * g->sw - g->pl + kj;
                        if (ix >= 0 && ix < g->w)
                            dxc[iy * g->w + ix] += row[oy * g->ow + ox];
                    }
                }
            }
}

/* y[n] = W col(x[n]) + b:  [O, C kh kw] x [C kh kw, oh ow] -> [O, oh ow] */
static void K(conv_fwd)(const conv_geom *g, const T *x, const T *w, const T *b, T *y,
                        T *col)
{
    int o = (int)g->o, ckk = (int)(g->c * g->kh * g->kw), p = (int)(g->oh * g->ow);
    for (int64_t n = 0; n < g->n; n++) {
        T *yn = y + n * o * p;
        K(im2col)(g, x + n * g->c * g->h * g->w, col);
        for (int64_t oc = 0; oc < o; oc++)
            for (int64_t q = 0; q < p; q++)
                yn[oc * p + q] = b ? b[oc] : 0;
        nbi_gemm(DT, false, false, o, p, ckk, 1.0, w, ckk, col, p, 1.0, yn, p);
    }
}

/* Per image: db += sum_p dy;  dW += dy col(x)^T;  dx += col2im(W^T dy).
 * Any of dx, dw, db may be NULL; col is scratch of [C kh kw, oh ow]. */
static void K(conv_bwd)(const conv_geom *g, const T *x, const T *w, const T *dy, T *dx,
                        T *dw, T *db, T *col)
{
    int o = (int)g->o, ckk = (int)(g->c * g->kh * g->kw), p = (int)(g->oh * g->ow);
    int64_t chw = g->c * g->h * g->w;
    for (int64_t n = 0; n < g->n; n++) {
        const T *dyn = dy + n * o * p;
        if (db)
            for (int64_t oc = 0; oc < o; oc++) {
                T s = 0;
                for (int64_t q = 0; q < p; q++)
                    s += dyn[oc * p + q];
                db[oc] += s;
            }
        if (dw) {
            K(im2col)(g, x + n * chw, col);
            nbi_gemm(DT, false, true, o, ckk, p, 1.0, dyn, p, col, p, 1.0, dw, ckk);
        }
        if (dx) {
            nbi_gemm(DT, true, false, ckk, p, o, 1.0, w, ckk, dyn, p, 0.0, col, p);
            K(col2im)(g, col, dx + n * chw);
        }
    }
}

#else /* ---- builders and backward ----------------------------------------- */

#include "internal.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>

/* The geometry of one conv2d call; padding per side, as `same` with an even
 * kernel pads one more zero after (bottom, right) than before. */
typedef struct conv_geom {
    int64_t n, c, h, w;   /* input [N, C, H, W] */
    int64_t o, kh, kw;    /* weight [O, C, kh, kw] */
    int64_t oh, ow;       /* output [N, O, oh, ow] */
    int64_t sh, sw;       /* stride */
    int64_t pt, pb, pl, pr; /* zeros at top, bottom, left, right */
    bool flip;
} conv_geom;

#define T float
#define K(f) f##_f32
#define DT NB_F32
#include "conv.c"
#undef T
#undef K
#undef DT
#define T double
#define K(f) f##_f64
#define DT NB_F64
#include "conv.c"
#undef T
#undef K
#undef DT

/* "[a, b]" for conv2d, "a" for conv1d (which uses index 0 only). */
static const char *pair_str(char *buf, size_t size, int sd, const int *v)
{
    if (sd == 2)
        snprintf(buf, size, "[%d, %d]", v[0], v[1]);
    else
        snprintf(buf, size, "%d", v[0]);
    return buf;
}

/* Checks the arguments of conv1d (sd = 1) or conv2d (sd = 2) and fills g;
 * conv1d is seen as conv2d with H = kh = 1.  Messages name `op` and the
 * shapes as the caller gave them. */
static bool conv_geometry(nb_ctx *ctx, const char *op, int sd, const nb_tensor *x,
                          const nb_tensor *w, const nb_tensor *b, const nb_conv_opts *opts,
                          conv_geom *g)
{
    static const nb_conv_opts defaults = {{0, 0}, {0, 0}, false, false};
    if (!opts)
        opts = &defaults;
    char sx[96], sw[96], sb[96], sp[32];
    nb_shape_str(x, sx, sizeof sx);
    nb_shape_str(w, sw, sizeof sw);
    int nd = sd + 2;
    if (x->ndim != nd) {
        nbi_fail(ctx, NB_ERR_ARG, "%s: input %s must be %d-D %s", op, sx, nd,
                 sd == 2 ? "[N, C, H, W]" : "[N, C, L]");
        return false;
    }
    if (w->ndim != nd) {
        nbi_fail(ctx, NB_ERR_ARG, "%s: weight %s must be %d-D %s", op, sw, nd,
                 sd == 2 ? "[O, C, kh, kw]" : "[O, C, k]");
        return false;
    }
    if (x->shape[1] != w->shape[1]) {
        nbi_fail(ctx, NB_ERR_ARG, "%s: input %s has %" PRId64 " channels, weight %s expects %" PRId64,
                 op, sx, x->shape[1], sw, w->shape[1]);
        return false;
    }
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0])) {
        nbi_fail(ctx, NB_ERR_ARG, "%s: bias %s does not match weight %s: expected [%" PRId64 "]", op,
                 nb_shape_str(b, sb, sizeof sb), sw, w->shape[0]);
        return false;
    }
    if (opts->stride[0] < 0 || (sd == 2 && opts->stride[1] < 0)) {
        nbi_fail(ctx, NB_ERR_ARG, "%s: stride %s is negative", op,
                 pair_str(sp, sizeof sp, sd, opts->stride));
        return false;
    }
    if (opts->padding[0] < 0 || (sd == 2 && opts->padding[1] < 0)) {
        nbi_fail(ctx, NB_ERR_ARG, "%s: padding %s is negative", op,
                 pair_str(sp, sizeof sp, sd, opts->padding));
        return false;
    }
    /* Index 0 is the only dimension of conv1d, and the height of conv2d. */
    int stride_h = sd == 2 ? opts->stride[0] : 1, stride_w = opts->stride[sd - 1];
    int pad_h = sd == 2 ? opts->padding[0] : 0, pad_w = opts->padding[sd - 1];
    g->sh = stride_h ? stride_h : 1;
    g->sw = stride_w ? stride_w : 1;
    g->n = x->shape[0];
    g->c = x->shape[1];
    g->h = sd == 2 ? x->shape[2] : 1;
    g->w = x->shape[nd - 1];
    g->o = w->shape[0];
    g->kh = sd == 2 ? w->shape[2] : 1;
    g->kw = w->shape[nd - 1];
    g->flip = opts->flip;
    if (opts->same) {
        if (g->sh != 1 || g->sw != 1) {
            nbi_fail(ctx, NB_ERR_ARG, "%s: same padding needs stride 1, got %s", op,
                     pair_str(sp, sizeof sp, sd, opts->stride));
            return false;
        }
        if (pad_h || pad_w) {
            nbi_fail(ctx, NB_ERR_ARG, "%s: same padding with explicit padding %s", op,
                     pair_str(sp, sizeof sp, sd, opts->padding));
            return false;
        }
        /* Total kh - 1, the odd zero after, as PyTorch's padding='same'. */
        g->pt = (g->kh - 1) / 2;
        g->pb = g->kh - 1 - g->pt;
        g->pl = (g->kw - 1) / 2;
        g->pr = g->kw - 1 - g->pl;
    } else {
        g->pt = g->pb = pad_h;
        g->pl = g->pr = pad_w;
    }
    int64_t hp = g->h + g->pt + g->pb, wp = g->w + g->pl + g->pr;
    if (g->kh > hp || g->kw > wp) {
        if (sd == 2)
            nbi_fail(ctx, NB_ERR_ARG, "%s: weight %s is larger than input %s padded to %" PRId64
                     "x%" PRId64, op, sw, sx, hp, wp);
        else
            nbi_fail(ctx, NB_ERR_ARG, "%s: weight %s is larger than input %s padded to %" PRId64,
                     op, sw, sx, wp);
        return false;
    }
    g->oh = (hp - g->kh) / g->sh + 1;
    g->ow = (wp - g->kw) / g->sw + 1;
    /* GEMM takes int sizes, and one image's columns must fit in memory. */
    int64_t ckk = g->c * g->kh * g->kw, p = g->oh * g->ow;
    if (g->o > INT_MAX || ckk > INT_MAX || p > INT_MAX ||
        ckk > (int64_t)(SIZE_MAX / sizeof(double)) / p) {
        nbi_fail(ctx, NB_ERR_ARG, "%s: input %s and weight %s are too large", op, sx, sw);
        return false;
    }
    return true;
}

typedef struct conv_node {
    nbi_node base;
    conv_geom g;
} conv_node;

/* One image's im2col buffer, [C kh kw, oh ow], in the step arena. */
static void *cols_scratch(nb_ctx *ctx, const conv_geom *g, nb_dtype dtype)
{
    size_t n = (size_t)(g->c * g->kh * g->kw) * (size_t)(g->oh * g->ow);
    return nbi_scratch(ctx, n * nb_dtype_size(dtype));
}

nb_tensor *nb_conv2d(nb_ctx *ctx, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                     const nb_conv_opts *opts)
{
    nb_tensor *in[3] = {x, w, b};
    int nin = b ? 3 : 2;
    if (!nbi_check_inputs(ctx, "conv2d", nin, in))
        return NULL;
    conv_geom g;
    if (!conv_geometry(ctx, "conv2d", 2, x, w, b, opts, &g))
        return NULL;
    int64_t shape[4] = {g.n, g.o, g.oh, g.ow};
    nb_tensor *y = nbi_step_tensor(ctx, x->dtype, 4, shape);
    void *col = y ? cols_scratch(ctx, &g, x->dtype) : NULL;
    if (!col)
        return NULL;
    const void *bias = b ? b->data : NULL;
    NBI_CALL(x->dtype, conv_fwd, &g, x->data, w->data, bias, y->data, col);
    if (nbi_needs_grad(ctx, nin, in)) {
        conv_node *n = nbi_record(ctx, NBI_OP_conv2d, sizeof *n, y, nin, in);
        if (!n)
            return NULL;
        n->g = g;
    }
    return y;
}

static int conv2d_backward(nb_ctx *ctx, nbi_node *node)
{
    const conv_geom *g = &((conv_node *)node)->g;
    nb_tensor *x = node->in[0], *w = node->in[1], *b = node->nin > 2 ? node->in[2] : NULL;
    void *dx = nbi_grad(ctx, x);
    void *dw = nbi_grad(ctx, w);
    void *db = b ? nbi_grad(ctx, b) : NULL;
    if ((x->requires_grad && !dx) || (w->requires_grad && !dw) ||
        (b && b->requires_grad && !db))
        return ctx->status;
    void *col = NULL;
    if ((dx || dw) && !(col = cols_scratch(ctx, g, x->dtype)))
        return ctx->status;
    NBI_CALL(x->dtype, conv_bwd, g, x->data, w->data, node->out->grad->data, dx, dw, db, col);
    return NB_OK;
}

const nbi_op nbi_op_conv2d = {"conv2d", conv2d_backward};

/* [N, C, L] as [N, C, 1, L] and [O, C, k] as [O, C, 1, k]: the graph records
 * reshape and conv2d nodes, so conv1d needs no backward of its own. */
nb_tensor *nb_conv1d(nb_ctx *ctx, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                     const nb_conv_opts *opts)
{
    nb_tensor *in[3] = {x, w, b};
    if (!nbi_check_inputs(ctx, "conv1d", b ? 3 : 2, in))
        return NULL;
    conv_geom g;
    if (!conv_geometry(ctx, "conv1d", 1, x, w, b, opts, &g))
        return NULL;
    nb_conv_opts o2 = {{1, (int)g.sw}, {0, opts ? opts->padding[0] : 0},
                       opts && opts->same, opts && opts->flip};
    int64_t xs[4] = {g.n, g.c, 1, g.w}, ws[4] = {g.o, g.c, 1, g.kw};
    nb_tensor *y = nb_conv2d(ctx, nb_reshape(ctx, x, 4, xs), nb_reshape(ctx, w, 4, ws), b, &o2);
    if (!y)
        return NULL;
    int64_t ys[3] = {g.n, g.o, g.ow};
    return nb_reshape(ctx, y, 3, ys);
}

#endif
