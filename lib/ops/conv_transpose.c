/*
 * conv_transpose.c - 2-D transposed convolution, as torch.nn.ConvTranspose2d:
 * the gradient of conv2d with respect to its input, with stride, padding,
 * output_padding, groups and dilation.  Each input pixel scatters its
 * channels, times the kernel, into a window of the output:
 *     y[n][g og + o][iy sh - ph + i dh][ix sw - pw + j dw]
 *         += sum_c x[n][g cg + c][iy][ix] w[g cg + c][o][i][j]
 * computed per example and group as a GEMM (W^T x) then col2im; the
 * backward is conv2d's forward on dY (im2col, then a GEMM) for dx, and for
 * dW a GEMM per example into its batch group's sum.  Every GEMM is the
 * fixed-order one (gemm.c) and the batch's sums go through nbi_batch_sum,
 * so neither the threads (which split the examples) nor the processes
 * change the bits.  The shape rule, nbi_conv_transpose2d_shape, is also
 * what a model file's conv_transpose2d layer checks.
 */
#ifdef T /* ---- kernels in T, named K(...); DT is T's nb_dtype ----------- */

/* col[(c kh + i) kw + j][iy W + ix] = y[c][iy sh - ph + i dh][ix sw - pw + j dw],
 * zero where that falls outside y [og, oh, ow]: the output values input
 * pixel (iy, ix) writes to, which its gradient reads (im2col of dY). */
static void K(im2col)(const convt_geom *g, const T *y, T *col)
{
    int64_t hw = g->h * g->w, ohw = g->oh * g->ow;
    for (int64_t c = 0; c < g->og; c++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t lo, hi;
                nbi_inside_range(g->ow, 1, g->sw, g->pw - j * g->dw, g->w, &lo, &hi);
                T *row = col + ((c * g->kh + i) * g->kw + j) * hw;
                for (int64_t iy = 0; iy < g->h; iy++) {
                    T *out = row + iy * g->w;
                    int64_t yy = iy * g->sh - g->ph + i * g->dh;
                    if (yy < 0 || yy >= g->oh) {
                        memset(out, 0, (size_t)g->w * sizeof(T));
                        continue;
                    }
                    /* an index, not a pointer: it may start before y */
                    int64_t at = c * ohw + yy * g->ow + j * g->dw - g->pw;
                    for (int64_t ix = 0; ix < lo; ix++)
                        out[ix] = 0;
                    for (int64_t ix = lo; ix < hi; ix++)
                        out[ix] = y[at + ix * g->sw];
                    for (int64_t ix = hi; ix < g->w; ix++)
                        out[ix] = 0;
                }
            }
}

/* The adjoint of im2col: y[c][yy][yx] += col[r][q] for every entry (r, q)
 * that im2col reads from (c, yy, yx); entries outside y are dropped. */
static void K(col2im)(const convt_geom *g, const T *col, T *y)
{
    int64_t hw = g->h * g->w, ohw = g->oh * g->ow;
    for (int64_t c = 0; c < g->og; c++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t lo, hi;
                nbi_inside_range(g->ow, 1, g->sw, g->pw - j * g->dw, g->w, &lo, &hi);
                const T *row = col + ((c * g->kh + i) * g->kw + j) * hw;
                for (int64_t iy = 0; iy < g->h; iy++) {
                    int64_t yy = iy * g->sh - g->ph + i * g->dh;
                    if (yy < 0 || yy >= g->oh)
                        continue;
                    int64_t at = c * ohw + yy * g->ow + j * g->dw - g->pw;
                    const T *src = row + iy * g->w;
                    for (int64_t ix = lo; ix < hi; ix++)
                        y[at + ix * g->sw] += src[ix];
                }
            }
}

/* sum_i v[i] in 16 running sums added in a fixed order. */
static T K(sum)(const T *v, int64_t n)
{
    T acc[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++)
            acc[k] += v[i + k];
    for (int k = 0; i < n; i++, k++)
        acc[k] += v[i];
    for (int k = 8; k >= 1; k /= 2)
        for (int j = 0; j < k; j++)
            acc[j] += acc[j + k];
    return acc[0];
}

/* Examples [lo, hi): y[n] = b, then for each group
 *     col[og kh kw, H W] = W_g^T x_g,  y[n]_g += col2im(col). */
static void K(convt_fwd_part)(const convt_geom *g, int64_t lo, int64_t hi, const T *x,
                              const T *w, const T *b, T *y, T *col, T *pack)
{
    int64_t hw = g->h * g->w, ohw = g->oh * g->ow, okk = g->og * g->kh * g->kw;
    for (int64_t n = lo; n < hi; n++) {
        T *yn = y + n * g->o * ohw;
        for (int64_t o = 0; o < g->o; o++)
            for (int64_t q = 0; q < ohw; q++)
                yn[o * ohw + q] = b ? b[o] : 0;
        for (int64_t gi = 0; gi < g->groups; gi++) {
            const T *wg = w + gi * g->cg * okk, *xg = x + (n * g->c + gi * g->cg) * hw;
            nbi_gemm_fixed(DT, &(nbi_gemm_args){.m = okk, .n = hw, .k = g->cg, .a = wg, .ars = 1,
                                                .acs = okk, .b = xg, .brs = hw, .bcs = 1,
                                                .c = col, .crs = hw, .ccs = 1, .pack = pack});
            K(col2im)(g, col, yn + gi * g->og * ohw);
        }
    }
}

/* Examples [lo, hi), each group's dY columns col = im2col(dY_g) once:
 *     dx_g += W_g col;  dW_g += x_g col^T;  db[o] += sum dY[o]
 * (dx, dw or db NULL when not wanted). */
static void K(convt_bwd_part)(const convt_geom *g, int64_t lo, int64_t hi, const T *x,
                              const T *w, const T *dy, T *dx, T *dw, T *db, T *col, T *pack)
{
    int64_t hw = g->h * g->w, ohw = g->oh * g->ow, okk = g->og * g->kh * g->kw;
    for (int64_t n = lo; n < hi; n++) {
        const T *dyn = dy + n * g->o * ohw;
        for (int64_t o = 0; db && o < g->o; o++)
            db[o] += K(sum)(dyn + o * ohw, ohw);
        for (int64_t gi = 0; (dx || dw) && gi < g->groups; gi++) {
            K(im2col)(g, dyn + gi * g->og * ohw, col);
            int64_t at = (n * g->c + gi * g->cg) * hw;
            if (dx)
                nbi_gemm_fixed(DT, &(nbi_gemm_args){.m = g->cg, .n = hw, .k = okk,
                                                    .a = w + gi * g->cg * okk, .ars = okk,
                                                    .acs = 1, .b = col, .brs = hw, .bcs = 1,
                                                    .c = dx + at, .crs = hw, .ccs = 1,
                                                    .add = true, .pack = pack});
            if (dw)
                nbi_gemm_fixed(DT, &(nbi_gemm_args){.m = g->cg, .n = okk, .k = hw,
                                                    .a = x + at, .ars = hw, .acs = 1, .b = col,
                                                    .brs = 1, .bcs = hw,
                                                    .c = dw + gi * g->cg * okk, .crs = okk,
                                                    .ccs = 1, .add = true, .pack = pack});
        }
    }
}

/* The batch in nt contiguous runs of examples, one per thread, each with
 * its own scratch (scratch + t per: the columns, then the GEMM's pack). */
static void K(convt_fwd)(const convt_geom *g, int nt, size_t per, size_t packat, const T *x,
                         const T *w, const T *b, T *y, T *scratch)
{
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int t = 0; t < nt; t++) {
        T *col = scratch + (size_t)t * per;
        K(convt_fwd_part)(g, g->n * t / nt, g->n * (t + 1) / nt, x, w, b, y, col, col + packat);
    }
}

/* With sums (dw or db), thread t takes whole batch groups, and part[k] =
 * [dW, db] of group k (nw and nb elements), summed in example order; with
 * dx alone, runs of examples.  dx's examples are each thread's own. */
static void K(convt_bwd)(const convt_geom *g, int nt, size_t per, size_t packat, const T *x,
                         const T *w, const T *dy, T *dx, bool dw, bool db, T *scratch, T *part)
{
    int64_t nw = dw ? g->c * g->og * g->kh * g->kw : 0, nb = db ? g->o : 0, len = nw + nb;
    int64_t units = len ? nbi_batch_groups(g->n) : g->n, unit = len ? NB_BATCH_GROUP : 1;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int t = 0; t < nt; t++) {
        T *col = scratch + (size_t)t * per;
        for (int64_t k = units * t / nt; k < units * (t + 1) / nt; k++) {
            int64_t lo = k * unit, hi = lo + unit < g->n ? lo + unit : g->n;
            T *pk = len ? part + k * len : NULL;
            if (pk)
                memset(pk, 0, (size_t)len * sizeof(T));
            K(convt_bwd_part)(g, lo, hi, x, w, dy, dx, dw ? pk : NULL, db ? pk + nw : NULL, col,
                              col + packat);
        }
    }
}

/* dw += the batch's dW, db += its db, from the sums nbi_batch_sum left in
 * part (either may be NULL). */
static void K(convt_add_sums)(T *dw, T *db, const T *part, int64_t nw, int64_t nb)
{
    for (int64_t i = 0; dw && i < nw; i++)
        dw[i] += part[i];
    for (int64_t i = 0; db && i < nb; i++)
        db[i] += part[nw + i];
}

#else /* ---- builders and backward ----------------------------------------- */

#include "internal.h"

#include <inttypes.h>
#include <limits.h>
#include <stdint.h>

/* The geometry of one call, as nbi_conv_transpose2d_shape computes it. */
typedef struct nbi_convt_geom {
    int64_t n, c, h, w;       /* input [N, C, H, W] (N 1 for one example) */
    int64_t o, groups, cg, og; /* O output channels; per group cg in, og out */
    int64_t kh, kw;           /* weight [C, og, kh, kw] */
    int64_t oh, ow;           /* output [N, O, oh, ow] */
    int64_t sh, sw, ph, pw, dh, dw;
} convt_geom;

#define T float
#define K(f) f##_f32
#define DT NB_F32
#include "conv_transpose.c"
#undef T
#undef K
#undef DT
#define T double
#define K(f) f##_f64
#define DT NB_F64
#include "conv_transpose.c"
#undef T
#undef K
#undef DT

/* ---- the shape rule ------------------------------------------------------ */

static const nb_conv_transpose_opts convt_defaults = {{0, 0}, {0, 0}, {0, 0}, 0, {0, 0}};

int nbi_conv_transpose2d_opts_check(const nb_conv_transpose_opts *o, int64_t out_channels,
                                    char *why)
{
    if (!o)
        o = &convt_defaults;
    char s[32], p[32], d[32];
    if (o->stride[0] < 0 || o->stride[1] < 0)
        return nbi_why(why, "stride %s is negative", nbi_pair_str(o->stride, s, sizeof s));
    if (o->padding[0] < 0 || o->padding[1] < 0)
        return nbi_why(why, "padding %s is negative", nbi_pair_str(o->padding, s, sizeof s));
    if (o->output_padding[0] < 0 || o->output_padding[1] < 0)
        return nbi_why(why, "output_padding %s is negative",
                       nbi_pair_str(o->output_padding, s, sizeof s));
    if (o->dilation[0] < 0 || o->dilation[1] < 0)
        return nbi_why(why, "dilation %s is negative", nbi_pair_str(o->dilation, s, sizeof s));
    if (o->groups < 0)
        return nbi_why(why, "groups %d is negative", o->groups);
    /* PyTorch's rule; 0 means 1 for stride and dilation */
    int st[2] = {o->stride[0] ? o->stride[0] : 1, o->stride[1] ? o->stride[1] : 1};
    int dl[2] = {o->dilation[0] ? o->dilation[0] : 1, o->dilation[1] ? o->dilation[1] : 1};
    for (int i = 0; i < 2; i++)
        if (o->output_padding[i] >= st[i] && o->output_padding[i] >= dl[i])
            return nbi_why(why, "output_padding %s must be smaller than stride %s or dilation %s",
                           nbi_pair_str(o->output_padding, s, sizeof s),
                           nbi_pair_str(st, p, sizeof p), nbi_pair_str(dl, d, sizeof d));
    int groups = o->groups ? o->groups : 1;
    if (out_channels && out_channels % groups)
        return nbi_why(why, "out_channels %" PRId64 " is not divisible by groups %d",
                       out_channels, groups);
    return 0;
}

/* The settings into g: 0 means 1 for stride, dilation and groups. */
static void convt_settings(const nb_conv_transpose_opts *o, convt_geom *g)
{
    g->sh = o->stride[0] ? o->stride[0] : 1;
    g->sw = o->stride[1] ? o->stride[1] : 1;
    g->dh = o->dilation[0] ? o->dilation[0] : 1;
    g->dw = o->dilation[1] ? o->dilation[1] : 1;
    g->ph = o->padding[0];
    g->pw = o->padding[1];
    g->groups = o->groups ? o->groups : 1;
}

/* (n - 1) s - 2 p + d (k - 1) + op + 1, saturating as nbi_mul does. */
static int64_t convt_out(int64_t n, int64_t s, int64_t p, int64_t d, int64_t k, int64_t op)
{
    return nbi_mul(n - 1, s) + nbi_mul(d, k - 1) + op + 1 - 2 * p;
}

int nbi_conv_transpose2d_shape(const nbi_shape *x, bool batch, const nbi_shape *w,
                               const nbi_shape *b, const nb_conv_transpose_opts *o,
                               convt_geom *gp, nbi_shape *y, char *why)
{
    if (!o)
        o = &convt_defaults;
    char xs[96], ws[96], bs[96];
    nbi_shape_fmt(x, xs, sizeof xs);
    nbi_shape_fmt(w, ws, sizeof ws);
    if (x->ndim != 3 + batch)
        return nbi_why(why, "input %s must be %s", xs, batch ? "[N, C, H, W]" : "[C, H, W]");
    if (w->ndim != 4)
        return nbi_why(why, "weight %s must be [C, O/groups, kh, kw]", ws);
    if (nbi_conv_transpose2d_opts_check(o, 0, why))
        return -1;
    if (x->d[batch + 1] < 1 || x->d[batch + 2] < 1)
        return nbi_why(why, "input %s has no pixels", xs);
    if (w->d[1] < 1 || w->d[2] < 1 || w->d[3] < 1)
        return nbi_why(why, "weight %s has a size 0", ws);
    const int64_t *e = x->d + batch;
    convt_geom g = {.n = batch ? x->d[0] : 1, .c = e[0], .h = e[1], .w = e[2], .og = w->d[1],
                    .kh = w->d[2], .kw = w->d[3]};
    convt_settings(o, &g);
    if (w->d[0] != g.c)
        return nbi_why(why, "input %s has %" PRId64 " channel%s, but in_channels is %" PRId64
                       " (weight %s)", xs, g.c, g.c == 1 ? "" : "s", w->d[0], ws);
    if (g.c % g.groups)
        return nbi_why(why, "in_channels %" PRId64 " is not divisible by groups %" PRId64, g.c,
                       g.groups);
    g.cg = g.c / g.groups;
    g.o = nbi_mul(g.og, g.groups);
    if (b && (b->ndim != 1 || b->d[0] != g.o))
        return nbi_why(why, "bias %s does not match weight %s and groups %" PRId64
                       ": expected [%" PRId64 "]", nbi_shape_fmt(b, bs, sizeof bs), ws,
                       g.groups, g.o);
    g.oh = convt_out(g.h, g.sh, g.ph, g.dh, g.kh, o->output_padding[0]);
    g.ow = convt_out(g.w, g.sw, g.pw, g.dw, g.kw, o->output_padding[1]);
    if (g.oh < 1 || g.ow < 1)
        return nbi_why(why, "input %s and weight %s give an output of %" PRId64 "x%" PRId64
                       ": padding %s is too large", xs, ws, g.oh, g.ow,
                       nbi_pair_str(o->padding, bs, sizeof bs));
    /* The GEMMs take int sizes (og kh kw, cg, H W), and one example's
     * columns (og kh kw by H W) must fit in memory. */
    int64_t okk = nbi_mul(nbi_mul(g.og, g.kh), g.kw), hw = nbi_mul(g.h, g.w);
    int64_t ohw = nbi_mul(g.oh, g.ow);
    if (g.o > INT_MAX || okk > INT_MAX || hw > INT_MAX || ohw > INT_MAX ||
        (hw && okk > (int64_t)(SIZE_MAX / sizeof(double)) / hw))
        return nbi_why(why, "input %s and weight %s are too large", xs, ws);
    *y = (nbi_shape){0, {0}};
    if (batch)
        y->d[y->ndim++] = g.n;
    y->d[y->ndim++] = g.o;
    y->d[y->ndim++] = g.oh;
    y->d[y->ndim++] = g.ow;
    if (gp)
        *gp = g;
    return 0;
}

/* ---- the op -------------------------------------------------------------- */

typedef struct convt_node {
    nbi_node base;
    convt_geom g;
} convt_node;

static size_t align_elems(size_t n, size_t es)
{
    return (n * es + NBI_ALIGN - 1) / NBI_ALIGN * NBI_ALIGN / es;
}

/* Threads over units (examples, or batch groups): one per unit at most,
 * and one when the work is too small to split.  *per: one thread's
 * scratch, the columns then from *packat the GEMM's pack. */
static int convt_plan(const convt_geom *g, nb_dtype dtype, int64_t units, size_t *per,
                      size_t *packat)
{
    int64_t okk = g->og * g->kh * g->kw, hw = g->h * g->w;
    double macs = (double)g->n * g->c * okk * hw;
    int nt = nbi_threads();
    if (nt > units)
        nt = (int)units;
    if (macs < 2e5 || nbi_in_parallel() || nt < 1)
        nt = 1;
    size_t es = nb_dtype_size(dtype);
    int64_t depth = okk > hw ? okk : hw;
    depth = depth > g->cg ? depth : g->cg; /* the forward's, dx's and dW's */
    *packat = align_elems((size_t)(okk * hw), es);
    *per = *packat + align_elems(nbi_gemm_pack_elems(dtype, depth), es);
    return nt;
}

nb_tensor *nb_conv_transpose2d(nb_ctx *ctx, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                               const nb_conv_transpose_opts *opts)
{
    nb_tensor *in[3] = {x, w, b};
    int nin = b ? 3 : 2;
    if (!nbi_check_inputs(ctx, "conv_transpose2d", nin, in))
        return NULL;
    nbi_shape xs = nbi_shape_of(x), ws = nbi_shape_of(w), bs = b ? nbi_shape_of(b) : xs, ys;
    convt_geom g;
    char why[NBI_WHY_SIZE];
    if (nbi_conv_transpose2d_shape(&xs, true, &ws, b ? &bs : NULL, opts, &g, &ys, why))
        return nbi_fail_null(ctx, NB_ERR_ARG, "conv_transpose2d: %s", why);
    nb_tensor *y = nbi_step_tensor(ctx, x->dtype, ys.ndim, ys.d);
    if (!y)
        return NULL;
    size_t per, packat, es = nb_dtype_size(x->dtype);
    int nt = convt_plan(&g, x->dtype, g.n, &per, &packat);
    void *scratch = nbi_work(ctx, (size_t)nt * per * es);
    if (!scratch)
        return NULL;
    NBI_CALL(x->dtype, convt_fwd, &g, nt, per, packat, x->data, w->data, b ? b->data : NULL,
             y->data, scratch);
    if (nbi_needs_grad(ctx, nin, in)) {
        convt_node *n = nbi_record(ctx, &nbi_op_conv_transpose2d, sizeof *n, y, nin, in);
        if (!n)
            return NULL;
        n->g = g;
    }
    return y;
}

/* dx = conv2d(dY, W) per group (im2col, GEMM);  dW_g += x_g im2col(dY_g)^T
 * and db += sum dY over the batch's groups, added by nbi_batch_sum. */
static int conv_transpose2d_backward(nb_ctx *ctx, nbi_node *node)
{
    const convt_geom *g = &((const convt_node *)node)->g;
    nb_tensor *x = node->in[0], *w = node->in[1], *b = node->nin > 2 ? node->in[2] : NULL;
    void *dx = nbi_grad(ctx, x);
    void *dw = nbi_grad(ctx, w);
    void *db = b ? nbi_grad(ctx, b) : NULL;
    if ((x->requires_grad && !dx) || (w->requires_grad && !dw) ||
        (b && b->requires_grad && !db))
        return ctx->status;
    size_t es = nb_dtype_size(x->dtype);
    int64_t nw = dw ? w->numel : 0, nb = db ? g->o : 0, len = nw + nb;
    int64_t groups = nbi_batch_groups(g->n);
    size_t per, packat;
    int nt = convt_plan(g, x->dtype, len ? groups : g->n, &per, &packat);
    size_t at = align_elems((size_t)nt * per, es);
    char *scratch = nbi_work(ctx, (at + (size_t)(groups * len)) * es);
    if (!scratch)
        return ctx->status;
    void *part = scratch + at * es;
    NBI_CALL(x->dtype, convt_bwd, g, nt, per, packat, x->data, w->data, node->out->grad->data,
             dx, dw != NULL, db != NULL, (void *)scratch, part);
    if (!len)
        return NB_OK;
    int rc = nbi_batch_sum(ctx, "conv_transpose2d", x->dtype, g->n, part, (size_t)len, part);
    if (rc)
        return rc;
    NBI_CALL(x->dtype, convt_add_sums, dw, db, part, nw, nb);
    return NB_OK;
}

const nbi_op nbi_op_conv_transpose2d = {"conv_transpose2d", conv_transpose2d_backward};

#endif
