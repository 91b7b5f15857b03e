/*
 * upsample.c - resizing [N, C, H, W] by nearest or bilinear interpolation,
 * as torch.nn.Upsample and F.interpolate (recompute_scale_factor unset).
 * The output is size, or floor(H * scale_factor); the source index of an
 * output pixel uses the scale 1 / scale_factor when scale_factor is given,
 * H / oh when size is (PyTorch's compute_scales_value), and the index and
 * weight formulas of PyTorch's UpSample.h, in the same types: nearest
 * always in float, bilinear in the tensor's type.  Each axis gets a table
 * of source indices and weights, made once per call; planes are
 * independent and split over the threads, so any thread count gives the
 * same bits.
 */
#ifdef T /* ---- kernels in T, named K(...) ------------------------------- */

/* One axis of in -> out pixels: the sources i0, i1 of each output pixel and
 * their weights l0, l1 (nearest: i0 alone).  s: the axis's scale_factor, or
 * 0 when the output size was given. */
static void K(up_axis)(const up_geom *g, int64_t in, int64_t out, double s, int64_t *i0,
                       int64_t *i1, T *l0, T *l1)
{
    if (!g->bilinear) {
        /* nearest_idx: a copy, a shift for exactly twice, else
         * min(floor(dst * scale), in - 1) in float */
        float scale = s > 0 ? (float)(1.0 / s) : (float)in / (float)out;
        for (int64_t o = 0; o < out; o++) {
            int64_t i = out == in ? o : out == 2 * in ? o >> 1
                                                      : (int64_t)floorf((float)o * scale);
            i0[o] = i < in - 1 ? i : in - 1;
        }
        return;
    }
    T ratio = g->align ? (out > 1 ? (T)(in - 1) / (T)(out - 1) : (T)0)
              : s > 0  ? (T)(1.0 / s)
                       : (T)in / (T)out;
    for (int64_t o = 0; o < out; o++) {
        if (out == in) { /* a copy, whatever the scale */
            i0[o] = i1[o] = o;
            l0[o] = 1;
            l1[o] = 0;
            continue;
        }
        T real = g->align ? ratio * (T)o : ratio * ((T)o + (T)0.5) - (T)0.5;
        if (!g->align && real < 0)
            real = 0;
        /* guard_index_and_lambda: PyTorch floors in float for both types */
        int64_t i = (int64_t)floorf((float)real);
        i = i < in - 1 ? i : in - 1;
        T l = real - (T)i;
        l = l < 0 ? 0 : l > 1 ? 1 : l;
        i0[o] = i;
        i1[o] = i + (i < in - 1);
        l1[o] = l;
        l0[o] = (T)1 - l;
    }
}

/* Both axes' tables, in work (up_work_bytes). */
typedef struct K(up_tables) {
    int64_t *h0, *h1, *w0, *w1;
    T *hl0, *hl1, *wl0, *wl1;
} K(up_tables);

static K(up_tables) K(up_make_tables)(const up_geom *g, void *work)
{
    K(up_tables) t;
    int64_t *ip = work;
    t.h0 = ip;
    t.h1 = ip + g->oh;
    t.w0 = ip + 2 * g->oh;
    t.w1 = ip + 2 * g->oh + g->ow;
    T *lp = (T *)(ip + 2 * (g->oh + g->ow));
    t.hl0 = lp;
    t.hl1 = lp + g->oh;
    t.wl0 = lp + 2 * g->oh;
    t.wl1 = lp + 2 * g->oh + g->ow;
    K(up_axis)(g, g->h, g->oh, g->sh, t.h0, t.h1, t.hl0, t.hl1);
    K(up_axis)(g, g->w, g->ow, g->sw, t.w0, t.w1, t.wl0, t.wl1);
    return t;
}

/* nearest: y[oy, ox] = x[h0[oy], w0[ox]];
 * bilinear: y = hl0 (wl0 x[h0, w0] + wl1 x[h0, w1]) + hl1 (wl0 x[h1, w0] + wl1 x[h1, w1]) */
static void K(upsample_fwd)(const up_geom *g, int64_t planes, const T *x, T *y, void *work)
{
    const K(up_tables) t = K(up_make_tables)(g, work);
    const int64_t hw = g->h * g->w, ohw = g->oh * g->ow;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (planes > 1 && nbi_par(planes * ohw))
    for (int64_t p = 0; p < planes; p++) {
        const T *xp = x + p * hw;
        for (int64_t oy = 0; oy < g->oh; oy++) {
            T *restrict yr = y + p * ohw + oy * g->ow;
            const T *r0 = xp + t.h0[oy] * g->w;
            if (!g->bilinear) {
                for (int64_t ox = 0; ox < g->ow; ox++)
                    yr[ox] = r0[t.w0[ox]];
                continue;
            }
            const T *r1 = xp + t.h1[oy] * g->w;
            const T a = t.hl0[oy], b = t.hl1[oy];
            for (int64_t ox = 0; ox < g->ow; ox++) {
                const int64_t c0 = t.w0[ox], c1 = t.w1[ox];
                const T u = t.wl0[ox], v = t.wl1[ox];
                yr[ox] = a * (u * r0[c0] + v * r0[c1]) + b * (u * r1[c0] + v * r1[c1]);
            }
        }
    }
}

/* nearest: dx[h0, w0] += dy;  bilinear: dx[hi, wj] += (hli wlj) dy for
 * i, j in {0, 1}, as PyTorch's backward.  A fresh dx is zeroed a plane at
 * a time. */
static void K(upsample_bwd)(const up_geom *g, int64_t planes, const T *dy, T *dx, bool fresh,
                            void *work)
{
    const K(up_tables) t = K(up_make_tables)(g, work);
    const int64_t hw = g->h * g->w, ohw = g->oh * g->ow;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (planes > 1 && nbi_par(planes * ohw))
    for (int64_t p = 0; p < planes; p++) {
        T *dxp = dx + p * hw;
        if (fresh)
            memset(dxp, 0, sizeof *dxp * (size_t)hw);
        for (int64_t oy = 0; oy < g->oh; oy++) {
            const T *dr = dy + p * ohw + oy * g->ow;
            T *r0 = dxp + t.h0[oy] * g->w;
            if (!g->bilinear) {
                for (int64_t ox = 0; ox < g->ow; ox++)
                    r0[t.w0[ox]] += dr[ox];
                continue;
            }
            T *r1 = dxp + t.h1[oy] * g->w;
            const T a = t.hl0[oy], b = t.hl1[oy];
            for (int64_t ox = 0; ox < g->ow; ox++) {
                const int64_t c0 = t.w0[ox], c1 = t.w1[ox];
                const T u = t.wl0[ox], v = t.wl1[ox], d = dr[ox];
                r0[c0] += a * u * d;
                r0[c1] += a * v * d;
                r1[c0] += b * u * d;
                r1[c1] += b * v * d;
            }
        }
    }
}

#else /* ---- builders and backward ----------------------------------------- */

#include "internal.h"

#include <inttypes.h>
#include <math.h>

/* An upsampling's sizes, as nbi_upsample_shape computes them: input and
 * output planes, and scale_factor per axis (0 when size was given). */
typedef struct nbi_upsample_geom {
    int64_t h, w, oh, ow;
    double sh, sw;
    bool bilinear, align;
} up_geom;

#define T float
#define K(f) f##_f32
#include "upsample.c"
#undef T
#undef K
#define T double
#define K(f) f##_f64
#include "upsample.c"
#undef T
#undef K

/* Bytes of both axes' tables: four index and four weight arrays. */
static size_t up_work_bytes(const up_geom *g, nb_dtype dtype)
{
    size_t es = dtype == NB_F32 ? sizeof(float) : sizeof(double);
    return (size_t)(g->oh + g->ow) * 2 * (sizeof(int64_t) + es);
}

/* ---- the shape rule ------------------------------------------------------- */

/* "2" for equal factors, "[2, 1.5]" otherwise. */
static char *scale_str(const double *s, char *buf, size_t size)
{
    if (s[0] == s[1])
        snprintf(buf, size, "%g", s[0]);
    else
        snprintf(buf, size, "[%g, %g]", s[0], s[1]);
    return buf;
}

int nbi_upsample_opts_check(const nb_upsample_opts *o, char *why)
{
    char s[64];
    if (!o)
        return nbi_why(why, "options are NULL (size or scale_factor is required)");
    if (o->mode != NB_UPSAMPLE_NEAREST && o->mode != NB_UPSAMPLE_BILINEAR)
        return nbi_why(why, "mode %d is neither nearest nor bilinear", (int)o->mode);
    if (o->align_corners && o->mode == NB_UPSAMPLE_NEAREST)
        return nbi_why(why, "align_corners is for bilinear mode only, not nearest");
    bool sized = o->size[0] || o->size[1];
    bool scaled = o->scale_factor[0] != 0 || o->scale_factor[1] != 0;
    if (sized && scaled)
        return nbi_why(why, "both size and scale_factor are given: give one");
    if (!sized && !scaled)
        return nbi_why(why, "size or scale_factor is required");
    if (sized && (o->size[0] < 1 || o->size[1] < 1))
        return nbi_why(why, "size %s must be at least 1", nbi_pair_str(o->size, s, sizeof s));
    /* !(s > 0) refuses NaN too */
    if (scaled && (!(o->scale_factor[0] > 0) || !(o->scale_factor[1] > 0) ||
                   isinf(o->scale_factor[0]) || isinf(o->scale_factor[1])))
        return nbi_why(why, "scale_factor %s must be positive and finite",
                       scale_str(o->scale_factor, s, sizeof s));
    return 0;
}

int nbi_upsample_shape(const nbi_shape *x, bool batch, const nb_upsample_opts *o, up_geom *gp,
                       nbi_shape *y, char *why)
{
    char xs[96], s[64];
    nbi_shape_fmt(x, xs, sizeof xs);
    if (x->ndim != 3 + batch)
        return nbi_why(why, "input %s must be %s", xs, batch ? "[N, C, H, W]" : "[C, H, W]");
    if (nbi_upsample_opts_check(o, why))
        return -1;
    const int64_t *e = x->d + batch; /* [C, H, W] */
    up_geom g = {.h = e[1], .w = e[2], .bilinear = o->mode == NB_UPSAMPLE_BILINEAR,
                 .align = o->align_corners};
    if (o->size[0]) {
        g.oh = o->size[0];
        g.ow = o->size[1];
    } else {
        /* PyTorch's output size: the product truncated */
        double oh = floor((double)g.h * o->scale_factor[0]);
        double ow = floor((double)g.w * o->scale_factor[1]);
        scale_str(o->scale_factor, s, sizeof s);
        if (oh < 1 || ow < 1)
            return nbi_why(why, "scale_factor %s makes an output of %.0fx%.0f pixels from input %s",
                           s, oh, ow, xs);
        if (oh > INT32_MAX || ow > INT32_MAX)
            return nbi_why(why, "scale_factor %s makes an output over %d pixels a side from input %s",
                           s, INT32_MAX, xs);
        g.oh = (int64_t)oh;
        g.ow = (int64_t)ow;
        g.sh = o->scale_factor[0];
        g.sw = o->scale_factor[1];
    }
    *y = *x;
    y->d[batch + 1] = g.oh;
    y->d[batch + 2] = g.ow;
    if (gp)
        *gp = g;
    return 0;
}

/* ---- upsample -------------------------------------------------------------- */

typedef struct upsample_node {
    nbi_node base;
    up_geom g;
} upsample_node;

nb_tensor *nb_upsample(nb_ctx *ctx, nb_tensor *x, const nb_upsample_opts *opts)
{
    if (!nbi_check_inputs(ctx, "upsample", 1, &x))
        return NULL;
    nbi_shape xs = nbi_shape_of(x), ys;
    up_geom g;
    char why[NBI_WHY_SIZE];
    if (nbi_upsample_shape(&xs, true, opts, &g, &ys, why))
        return nbi_fail_null(ctx, NB_ERR_ARG, "upsample: %s", why);
    nb_tensor *y = nbi_step_tensor(ctx, x->dtype, ys.ndim, ys.d);
    if (!y)
        return NULL;
    void *work = nbi_work(ctx, up_work_bytes(&g, x->dtype));
    if (!work)
        return NULL;
    NBI_CALL(x->dtype, upsample_fwd, &g, x->shape[0] * x->shape[1], x->data, y->data, work);
    if (nbi_needs_grad(ctx, 1, &x)) {
        upsample_node *n = nbi_record(ctx, &nbi_op_upsample, sizeof *n, y, 1, &x);
        if (!n)
            return NULL;
        n->g = g;
    }
    return y;
}

static int upsample_backward(nb_ctx *ctx, nbi_node *node)
{
    upsample_node *n = (upsample_node *)node;
    nb_tensor *x = node->in[0];
    bool fresh;
    void *dx = nbi_grad_fresh(ctx, x, &fresh);
    if (!dx)
        return ctx->status;
    void *work = nbi_work(ctx, up_work_bytes(&n->g, x->dtype));
    if (!work)
        return ctx->status;
    NBI_CALL(x->dtype, upsample_bwd, &n->g, x->shape[0] * x->shape[1], node->out->grad->data,
             dx, fresh, work);
    return NB_OK;
}

const nbi_op nbi_op_upsample = {"upsample", upsample_backward};

#endif
