/* test_conv.c - conv2d (im2col + GEMM, and the direct kernels) against a
 * reference loop, and conv1d built on it. */
#include "harness.h"
#include "internal.h"

#include <string.h>

/* ---- gradcheck cases ----------------------------------------------------- */

/* x [N, C, H, W] (or [N, C, L] when xs[3] is 0), w likewise, and a bias
 * [O] unless has_bias is false. */
static void setup_conv(tst_env *e, nb_rng *rng, const int64_t *xs, const int64_t *ws,
                       bool has_bias)
{
    int nd = xs[3] ? 4 : 3;
    tst_tensor(e, rng, nd, xs);
    tst_tensor(e, rng, nd, ws);
    if (has_bias)
        tst_tensor(e, rng, 1, ws);
}

static nb_tensor *conv2d_of(nb_ctx *ctx, tst_env *e, const nb_conv_opts *opts)
{
    return nb_conv2d(ctx, e->t[0], e->t[1], e->n > 2 ? e->t[2] : NULL, opts);
}

static nb_tensor *conv1d_of(nb_ctx *ctx, tst_env *e, const nb_conv_opts *opts)
{
    return nb_conv1d(ctx, e->t[0], e->t[1], e->n > 2 ? e->t[2] : NULL, opts);
}

static void setup_3x3(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){2, 2, 5, 5}, (int64_t[]){3, 2, 3, 3}, true);
}
static nb_tensor *fwd_3x3(nb_ctx *ctx, tst_env *e) { return conv2d_of(ctx, e, NULL); }

static void setup_s2p1(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){1, 2, 6, 5}, (int64_t[]){2, 2, 3, 3}, true);
}
static nb_tensor *fwd_s2p1(nb_ctx *ctx, tst_env *e)
{
    return conv2d_of(ctx, e, &(nb_conv_opts){.stride = {2, 2}, .padding = {1, 1}});
}

static void setup_2x3(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){2, 2, 4, 5}, (int64_t[]){3, 2, 2, 3}, true);
}
static nb_tensor *fwd_2x3(nb_ctx *ctx, tst_env *e)
{
    return conv2d_of(ctx, e, &(nb_conv_opts){.padding = {1, 0}});
}

static void setup_same_2x2(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){1, 2, 4, 5}, (int64_t[]){2, 2, 2, 2}, true);
}
static void setup_same_4x4(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){1, 1, 5, 6}, (int64_t[]){2, 1, 4, 4}, true);
}
static nb_tensor *fwd_same(nb_ctx *ctx, tst_env *e)
{
    return conv2d_of(ctx, e, &(nb_conv_opts){.same = true});
}

static void setup_flip(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){1, 2, 5, 4}, (int64_t[]){2, 2, 3, 2}, true);
}
static nb_tensor *fwd_flip(nb_ctx *ctx, tst_env *e)
{
    return conv2d_of(ctx, e, &(nb_conv_opts){.stride = {2, 1}, .padding = {1, 1}, .flip = true});
}

static void setup_same_flip(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){1, 2, 4, 4}, (int64_t[]){2, 2, 2, 3}, true);
}
static nb_tensor *fwd_same_flip(nb_ctx *ctx, tst_env *e)
{
    return conv2d_of(ctx, e, &(nb_conv_opts){.same = true, .flip = true});
}

static void setup_no_bias(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){2, 2, 4, 4}, (int64_t[]){3, 2, 3, 3}, false);
}
static nb_tensor *fwd_pad1(nb_ctx *ctx, tst_env *e)
{
    return conv2d_of(ctx, e, &(nb_conv_opts){.padding = {1, 1}});
}

/* One input channel, as the first layer of an MNIST net. */
static void setup_c1(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){2, 1, 6, 6}, (int64_t[]){3, 1, 3, 3}, true);
}

/* Stride 1 takes the direct kernels up to 64 taps (C kh kw), GEMM for dW
 * above that and for everything above 144. */
static void setup_c8(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){2, 8, 4, 3}, (int64_t[]){3, 8, 3, 3}, true);
}
static void setup_c17(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){1, 17, 4, 4}, (int64_t[]){2, 17, 3, 3}, true);
}

static void setup_1d(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){2, 2, 9, 0}, (int64_t[]){3, 2, 3, 0}, true);
}
static nb_tensor *fwd_1d_s2p1(nb_ctx *ctx, tst_env *e)
{
    return conv1d_of(ctx, e, &(nb_conv_opts){.stride = {2, 0}, .padding = {1, 0}});
}

static void setup_1d_even(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){2, 2, 7, 0}, (int64_t[]){2, 2, 4, 0}, true);
}
static nb_tensor *fwd_1d_same_flip(nb_ctx *ctx, tst_env *e)
{
    return conv1d_of(ctx, e, &(nb_conv_opts){.same = true, .flip = true});
}

/* relu fused: the gradient passes where the output is positive. */
static nb_tensor *fwd_relu(nb_ctx *ctx, tst_env *e)
{
    return conv2d_of(ctx, e, &(nb_conv_opts){.padding = {1, 1}, .relu = true});
}
static nb_tensor *fwd_1d_relu(nb_ctx *ctx, tst_env *e)
{
    return conv1d_of(ctx, e, &(nb_conv_opts){.padding = {1, 0}, .relu = true});
}

/* Groups: 4 channels in 2 groups of 2, 6 filters. */
static void setup_g2(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){2, 4, 5, 4}, (int64_t[]){6, 2, 3, 2}, true);
}
static nb_tensor *fwd_g2(nb_ctx *ctx, tst_env *e)
{
    return conv2d_of(ctx, e, &(nb_conv_opts){.padding = {1, 0}, .groups = 2});
}
/* Depthwise: 3 channels, one filter each (the direct kernels), or two. */
static void setup_dw(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){2, 3, 5, 6}, (int64_t[]){3, 1, 3, 3}, true);
}
static void setup_dw_m2(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){2, 3, 6, 5}, (int64_t[]){6, 1, 3, 2}, true);
}
static nb_tensor *fwd_dw(nb_ctx *ctx, tst_env *e)
{
    return conv2d_of(ctx, e, &(nb_conv_opts){.padding = {1, 1}, .groups = 3});
}
static nb_tensor *fwd_dw_s2_flip(nb_ctx *ctx, tst_env *e)
{
    return conv2d_of(ctx, e, &(nb_conv_opts){.stride = {2, 2}, .padding = {1, 0}, .groups = 3,
                                             .flip = true, .relu = true});
}
static void setup_dil(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){2, 2, 7, 6}, (int64_t[]){3, 2, 3, 2}, true);
}
static nb_tensor *fwd_dil2(nb_ctx *ctx, tst_env *e)
{
    return conv2d_of(ctx, e, &(nb_conv_opts){.padding = {1, 1}, .dilation = {2, 2}});
}
static nb_tensor *fwd_dil_same(nb_ctx *ctx, tst_env *e)
{
    return conv2d_of(ctx, e, &(nb_conv_opts){.same = true, .dilation = {2, 3}});
}
/* Stride 2 with padding [2, 0]: rows padded, columns cut short. */
static void setup_s2_asym(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){2, 2, 6, 7}, (int64_t[]){3, 2, 3, 3}, true);
}
static nb_tensor *fwd_s2_asym(nb_ctx *ctx, tst_env *e)
{
    return conv2d_of(ctx, e, &(nb_conv_opts){.stride = {2, 2}, .padding = {2, 0}});
}
static void setup_1d_g2(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){2, 4, 11, 0}, (int64_t[]){6, 2, 3, 0}, true);
}
static nb_tensor *fwd_1d_g2_dil(nb_ctx *ctx, tst_env *e)
{
    return conv1d_of(ctx, e, &(nb_conv_opts){.stride = {2, 0}, .padding = {1, 0}, .groups = 2,
                                             .dilation = {2, 0}});
}
static void setup_1d_dw(tst_env *e, nb_rng *rng)
{
    setup_conv(e, rng, (int64_t[]){2, 3, 9, 0}, (int64_t[]){3, 1, 4, 0}, false);
}
static nb_tensor *fwd_1d_dw_same(nb_ctx *ctx, tst_env *e)
{
    return conv1d_of(ctx, e, &(nb_conv_opts){.same = true, .groups = 3, .dilation = {2, 0}});
}

const tst_case tst_cases_conv[] = {
    {"conv2d 3x3 with bias", setup_3x3, fwd_3x3},
    {"conv2d stride 2 padding 1", setup_s2p1, fwd_s2p1},
    {"conv2d 2x3 kernel padding [1,0]", setup_2x3, fwd_2x3},
    {"conv2d same 2x2", setup_same_2x2, fwd_same},
    {"conv2d same 4x4", setup_same_4x4, fwd_same},
    {"conv2d flip stride [2,1] padding 1", setup_flip, fwd_flip},
    {"conv2d same flip 2x3", setup_same_flip, fwd_same_flip},
    {"conv2d no bias padding 1", setup_no_bias, fwd_pad1},
    {"conv2d one input channel", setup_c1, fwd_3x3},
    {"conv2d 8 channels relu", setup_c8, fwd_relu},
    {"conv2d 17 channels padding 1", setup_c17, fwd_pad1},
    {"conv1d stride 2 padding 1", setup_1d, fwd_1d_s2p1},
    {"conv1d same flip even kernel", setup_1d_even, fwd_1d_same_flip},
    {"conv2d relu padding 1", setup_3x3, fwd_relu},
    {"conv1d relu padding 1", setup_1d, fwd_1d_relu},
    {"conv2d groups 2", setup_g2, fwd_g2},
    {"conv2d depthwise padding 1", setup_dw, fwd_dw},
    {"conv2d depthwise multiplier 2", setup_dw_m2, fwd_dw},
    {"conv2d depthwise stride 2 flip relu", setup_dw_m2, fwd_dw_s2_flip},
    {"conv2d dilation 2", setup_dil, fwd_dil2},
    {"conv2d same dilation [2,3]", setup_dil, fwd_dil_same},
    {"conv2d stride 2 padding [2,0]", setup_s2_asym, fwd_s2_asym},
    {"conv1d groups 2 dilation 2 stride 2", setup_1d_g2, fwd_1d_g2_dil},
    {"conv1d depthwise same dilation 2", setup_1d_dw, fwd_1d_dw_same},
    {0},
};

/* ---- the direct reference ------------------------------------------------ */

typedef struct ref_geom {
    int n, c, h, w, o, kh, kw, sh, sw, pt, pl, oh, ow;
    bool flip;
    int groups, dh, dw; /* 1 for none */
} ref_geom;

/* The input value under kernel tap (i, j) of output (oy, ox), 0 in the
 * padding; the tap is rotated 180 degrees when flipped, and dilated. */
static int64_t ref_input_index(const ref_geom *g, int n, int c, int oy, int ox, int i, int j)
{
    int ki = g->flip ? g->kh - 1 - i : i, kj = g->flip ? g->kw - 1 - j : j;
    int iy = oy * g->sh - g->pt + ki * g->dh, ix = ox * g->sw - g->pl + kj * g->dw;
    if (iy < 0 || iy >= g->h || ix < 0 || ix >= g->w)
        return -1;
    return (((int64_t)n * g->c + c) * g->h + iy) * g->w + ix;
}

/* y[n][o][oy][ox] = b[o] + sum_{c,i,j} w[o][c][i][j] x[n][c0 + c][oy sh - pt + i dh][ox sw - pl + j dw],
 * c over o's group's C / groups channels from c0, and its gradients for
 * dy: dx, dw, db += dy times the other factor.  The
 * padding is zeros that y and dw multiply, as PyTorch's do (an infinite
 * weight on the padding gives NaN), and that dx has no entry for. */
static void ref_conv(const ref_geom *g, const double *x, const double *w, const double *b,
                     double *y, const double *dy, double *dx, double *dw, double *db)
{
    for (int n = 0; n < g->n; n++)
        for (int o = 0; o < g->o; o++)
            for (int oy = 0; oy < g->oh; oy++)
                for (int ox = 0; ox < g->ow; ox++) {
                    int64_t yi = (((int64_t)n * g->o + o) * g->oh + oy) * g->ow + ox;
                    double s = b ? b[o] : 0;
                    if (db)
                        db[o] += dy[yi];
                    int cg = g->c / g->groups, c0 = o / (g->o / g->groups) * cg;
                    for (int c = 0; c < cg; c++)
                        for (int i = 0; i < g->kh; i++)
                            for (int j = 0; j < g->kw; j++) {
                                int64_t xi = ref_input_index(g, n, c0 + c, oy, ox, i, j);
                                int64_t wi = (((int64_t)o * cg + c) * g->kh + i) * g->kw + j;
                                double xv = xi < 0 ? 0 : x[xi];
                                s += w[wi] * xv;
                                if (dx && xi >= 0)
                                    dx[xi] += dy[yi] * w[wi];
                                if (dw)
                                    dw[wi] += dy[yi] * xv;
                            }
                    y[yi] = s;
                }
}

/* A value that is not finite, put into the case's data: NaN or an
 * infinity in x (a pixel on the right edge of the first image, one inside
 * the last), in w (the first filter's corner tap and its last), in the
 * bias, or in dy (a corner of the first image's output, one inside the
 * last image's). */
enum { P_NONE, P_X_NAN, P_X_INF, P_W_NAN, P_W_INF, P_B_NAN, P_DY_NAN, P_DY_INF };

/* Odd sizes, asymmetric padding, strides that skip part of the input. */
static const struct {
    int n, c, h, w, o, kh, kw;
    nb_conv_opts opts;
    bool bias;
    int pt, pl, oh, ow; /* by hand */
    int poison;
} ref_cases[] = {
    {2, 3, 7, 5, 4, 3, 2, {.stride = {2, 2}, .padding = {1, 0}}, true, 1, 0, 4, 2, P_NONE},
    {2, 3, 7, 5, 4, 3, 2, {.stride = {2, 2}, .padding = {1, 0}, .flip = true}, true, 1, 0, 4, 2, P_NONE},
    {1, 2, 6, 7, 3, 4, 2, {.same = true}, true, 1, 0, 6, 7, P_NONE},
    {3, 2, 5, 6, 2, 2, 3, {.same = true, .flip = true}, false, 0, 1, 5, 6, P_NONE},
    {1, 4, 9, 8, 5, 3, 3, {.stride = {3, 2}, .padding = {2, 1}, .flip = true}, true, 2, 1, 4, 4, P_NONE},
    {2, 1, 5, 5, 2, 5, 5, {.stride = {0, 0}}, true, 0, 0, 1, 1, P_NONE},
    /* Big enough to be split over threads. */
    {7, 3, 17, 15, 16, 3, 3, {.padding = {1, 1}}, true, 1, 1, 17, 15, P_NONE},
    {5, 2, 19, 20, 9, 4, 3, {.stride = {2, 3}, .padding = {1, 2}, .flip = true}, false, 1, 2, 9, 8, P_NONE},
    /* relu fused: one image per GEMM, then several. */
    {2, 3, 7, 5, 4, 3, 2, {.stride = {2, 2}, .padding = {1, 0}, .relu = true}, true, 1, 0, 4, 2, P_NONE},
    {7, 3, 17, 15, 16, 3, 3, {.padding = {1, 1}, .relu = true}, true, 1, 1, 17, 15, P_NONE},
    /* Stride 1 by C kh kw: up to 64 direct both ways, up to 144 direct
     * forward and dx and GEMM dW, above that GEMM both ways. */
    {3, 1, 9, 40, 5, 5, 5, {.flip = true}, true, 0, 0, 5, 36, P_NONE},
    {5, 1, 6, 70, 3, 3, 3, {.same = true, .relu = true}, false, 1, 1, 6, 70, P_NONE},
    {3, 8, 6, 9, 5, 3, 3, {.padding = {1, 1}, .relu = true}, true, 1, 1, 6, 9, P_NONE},
    {3, 16, 5, 7, 4, 3, 3, {.padding = {2, 0}, .flip = true}, true, 2, 0, 7, 5, P_NONE},
    {2, 17, 6, 5, 3, 3, 3, {.padding = {1, 1}}, true, 1, 1, 6, 5, P_NONE},
    {2, 17, 6, 5, 3, 3, 3, {.padding = {1, 1}, .relu = true}, false, 1, 1, 6, 5, P_NONE},
    /* A kernel larger than the direct path takes. */
    {2, 1, 9, 9, 2, 6, 6, {.padding = {1, 1}}, true, 1, 1, 6, 6, P_NONE},
    /* NaN and infinities, through each path: GEMM both ways (stride 2,
     * one image per GEMM; 17 channels, several), direct both ways (up to 64
     * taps, over threads), direct forward and dx, GEMM dW (16 channels);
     * with relu fused or not. */
    {2, 3, 7, 5, 4, 3, 2, {.stride = {2, 2}, .padding = {1, 0}, .relu = true}, true, 1, 0, 4, 2,
     P_X_NAN},
    {2, 3, 7, 5, 4, 3, 2, {.stride = {2, 2}, .padding = {1, 0}}, true, 1, 0, 4, 2, P_W_INF},
    {2, 3, 7, 5, 4, 3, 2, {.stride = {2, 2}, .padding = {1, 0}, .relu = true}, true, 1, 0, 4, 2,
     P_DY_NAN},
    {7, 3, 17, 15, 16, 3, 3, {.padding = {1, 1}, .relu = true}, true, 1, 1, 17, 15, P_X_INF},
    {7, 3, 17, 15, 16, 3, 3, {.padding = {1, 1}}, true, 1, 1, 17, 15, P_W_NAN},
    {7, 3, 17, 15, 16, 3, 3, {.padding = {1, 1}, .relu = true}, true, 1, 1, 17, 15, P_B_NAN},
    {3, 1, 9, 40, 5, 5, 5, {.flip = true}, true, 0, 0, 5, 36, P_X_NAN},
    {3, 1, 9, 40, 5, 5, 5, {.flip = true}, true, 0, 0, 5, 36, P_X_INF},
    {3, 1, 9, 40, 5, 5, 5, {.padding = {2, 2}}, true, 2, 2, 9, 40, P_W_NAN},
    {3, 1, 9, 40, 5, 5, 5, {.flip = true}, true, 0, 0, 5, 36, P_DY_INF},
    {5, 1, 6, 70, 3, 3, 3, {.same = true, .relu = true}, false, 1, 1, 6, 70, P_X_NAN},
    {3, 8, 6, 9, 5, 3, 3, {.padding = {1, 1}, .relu = true}, true, 1, 1, 6, 9, P_X_NAN},
    {3, 8, 6, 9, 5, 3, 3, {.padding = {1, 1}, .relu = true}, true, 1, 1, 6, 9, P_W_INF},
    {3, 8, 6, 9, 5, 3, 3, {.padding = {1, 1}}, true, 1, 1, 6, 9, P_DY_NAN},
    {2, 17, 6, 5, 3, 3, 3, {.padding = {1, 1}, .relu = true}, true, 1, 1, 6, 5, P_X_INF},
    {2, 17, 6, 5, 3, 3, 3, {.padding = {1, 1}}, true, 1, 1, 6, 5, P_W_NAN},
    {2, 17, 6, 5, 3, 3, 3, {.padding = {1, 1}, .relu = true}, false, 1, 1, 6, 5, P_DY_INF},
    {3, 16, 5, 7, 4, 3, 3, {.padding = {2, 0}, .flip = true}, true, 2, 0, 7, 5, P_X_INF},
    {3, 16, 5, 7, 4, 3, 3, {.padding = {2, 0}, .flip = true, .relu = true}, true, 2, 0, 7, 5,
     P_W_NAN},
    /* More than 64 taps, rows mostly output: a direct forward (on every
     * CPU up to 144 taps, on AVX-512 up to 576), the GEMM's backward; plain,
     * flipped, and not finite. */
    {3, 8, 9, 12, 5, 3, 3, {.padding = {1, 1}, .relu = true}, true, 1, 1, 9, 12, P_NONE},
    {3, 8, 9, 12, 5, 3, 3, {.padding = {1, 1}, .flip = true}, false, 1, 1, 9, 12, P_NONE},
    {2, 3, 8, 20, 17, 5, 5, {.same = true}, true, 2, 2, 8, 20, P_NONE},
    {3, 8, 9, 12, 5, 3, 3, {.padding = {1, 1}, .relu = true}, true, 1, 1, 9, 12, P_X_INF},
    {3, 8, 9, 12, 5, 3, 3, {.padding = {1, 1}}, true, 1, 1, 9, 12, P_DY_NAN},
    {3, 8, 9, 12, 5, 3, 3, {.padding = {1, 1}}, true, 1, 1, 9, 12, P_W_INF},
    /* Groups (one GEMM per group) and dilation (im2col's taps spread). */
    {2, 6, 7, 6, 4, 3, 2, {.padding = {1, 0}, .groups = 2}, true, 1, 0, 7, 5, P_NONE},
    {3, 6, 9, 8, 9, 2, 3, {.stride = {2, 1}, .padding = {0, 2}, .groups = 3, .flip = true},
     false, 0, 2, 4, 10, P_NONE},
    {2, 3, 9, 10, 4, 3, 3, {.padding = {1, 2}, .dilation = {2, 3}}, true, 1, 2, 7, 8, P_NONE},
    {2, 4, 8, 9, 6, 2, 3, {.same = true, .dilation = {3, 2}, .groups = 2, .relu = true}, true,
     1, 2, 8, 9, P_NONE},
    {9, 4, 11, 10, 8, 3, 3, {.stride = {2, 2}, .padding = {1, 1}, .groups = 2}, true, 1, 1, 6, 5,
     P_NONE},
    {2, 6, 7, 6, 4, 3, 2, {.padding = {1, 0}, .groups = 2}, true, 1, 0, 7, 5, P_W_INF},
    {2, 3, 9, 10, 4, 3, 3, {.padding = {1, 2}, .dilation = {2, 3}}, true, 1, 2, 7, 8, P_X_NAN},
    /* Depthwise (groups = C): the direct kernels, at any stride and
     * dilation, with a channel multiplier, flipped, relu fused; over
     * threads; not finite. */
    {2, 5, 9, 7, 5, 3, 3, {.padding = {1, 1}, .groups = 5}, true, 1, 1, 9, 7, P_NONE},
    {3, 4, 10, 9, 8, 3, 3, {.stride = {2, 2}, .padding = {1, 1}, .groups = 4}, true, 1, 1, 5, 5,
     P_NONE},
    {2, 3, 11, 13, 6, 3, 2, {.stride = {3, 2}, .padding = {2, 0}, .dilation = {2, 3},
     .groups = 3, .flip = true}, false, 2, 0, 4, 5, P_NONE},
    {2, 4, 8, 9, 4, 4, 3, {.same = true, .dilation = {1, 2}, .groups = 4, .relu = true}, true,
     1, 2, 8, 9, P_NONE},
    {19, 16, 14, 14, 16, 3, 3, {.padding = {1, 1}, .groups = 16, .relu = true}, true, 1, 1, 14,
     14, P_NONE},
    {18, 8, 15, 13, 16, 5, 5, {.stride = {2, 2}, .padding = {2, 2}, .groups = 8}, true, 2, 2, 8,
     7, P_NONE},
    {17, 3, 13, 17, 6, 5, 2, {.stride = {2, 3}, .padding = {2, 0}, .dilation = {2, 3},
     .groups = 3, .flip = true}, false, 2, 0, 5, 5, P_NONE},
    {2, 5, 9, 7, 5, 3, 3, {.padding = {1, 1}, .groups = 5}, true, 1, 1, 9, 7, P_X_INF},
    {2, 5, 9, 7, 5, 3, 3, {.padding = {1, 1}, .groups = 5, .relu = true}, true, 1, 1, 9, 7,
     P_W_NAN},
    {3, 4, 10, 9, 8, 3, 3, {.stride = {2, 2}, .padding = {1, 1}, .groups = 4}, true, 1, 1, 5, 5,
     P_DY_INF},
    {3, 4, 10, 9, 8, 3, 3, {.stride = {2, 2}, .padding = {1, 1}, .groups = 4}, true, 1, 1, 5, 5,
     P_W_INF},
};
#define NREF ((int)(sizeof ref_cases / sizeof *ref_cases))

/* Puts the case's value that is not finite (P_*) into x, w, b or r. */
static void poison(int p, const ref_geom *g, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                   nb_tensor *r)
{
    double v = p == P_X_INF || p == P_W_INF || p == P_DY_INF ? INFINITY : NAN;
    int64_t last_x = (((int64_t)g->n - 1) * g->c * g->h + g->h / 2) * g->w + g->w / 2;
    int64_t last_y = (((int64_t)g->n * g->o - 1) * g->oh + g->oh / 2) * g->ow + g->ow / 2;
    if (p == P_X_NAN || p == P_X_INF) {
        nb_set(x, (int64_t)(g->h / 2) * g->w + g->w - 1, v);
        nb_set(x, last_x, -v);
    } else if (p == P_W_NAN || p == P_W_INF) {
        nb_set(w, 0, v);
        nb_set(w, w->numel - 1, -v);
    } else if (p == P_B_NAN) {
        nb_set(b, 0, v);
    } else if (p == P_DY_NAN || p == P_DY_INF) {
        nb_set(r, (int64_t)g->oh * g->ow - 1, v);
        nb_set(r, last_y, -v);
    }
}

/* float32 against the float64 reference: the same NaN and infinities, and
 * finite values within 1e-4 of the largest finite one. */
static void assert_close32(const nb_tensor *got, const nb_tensor *want)
{
    const double *wv = want->data;
    const float *gv = got->data;
    double scale = 1;
    for (int64_t i = 0; i < want->numel; i++)
        if (isfinite(wv[i]))
            scale = fmax(scale, fabs(wv[i]));
    for (int64_t i = 0; i < want->numel; i++) {
        double a = gv[i], e = wv[i];
        ck_assert_msg(a == e || (isnan(a) && isnan(e)) || fabs(a - e) <= 1e-4 * scale,
                      "element %lld: got %.8g, want %.8g", (long long)i, a, e);
    }
}

/* Each case on 1 and on 2 threads, with each CPU variant's kernels
 * (_i / NREF = 0..5; a variant the CPU lacks is skipped): the batch split
 * and each compiled kernel must give the reference loop's values, NaN and
 * infinities where it has them. */
START_TEST(test_matches_reference)
{
    const char *old_kernels = nb_cpu_kernels(), *kernels = tst_kernels[_i / NREF / 2];
    char what[96];
    snprintf(what, sizeof what, "conv2d against the reference, case %d", _i % NREF);
    if (!tst_use_kernels(kernels, what))
        return;
    int old = nb_set_num_threads(1 + _i / NREF % 2);
    _i %= NREF;
    nb_ctx *ctx = nb_ctx_new();
    ref_geom g = {ref_cases[_i].n, ref_cases[_i].c, ref_cases[_i].h, ref_cases[_i].w,
                  ref_cases[_i].o, ref_cases[_i].kh, ref_cases[_i].kw,
                  ref_cases[_i].opts.stride[0] ? ref_cases[_i].opts.stride[0] : 1,
                  ref_cases[_i].opts.stride[1] ? ref_cases[_i].opts.stride[1] : 1,
                  ref_cases[_i].pt, ref_cases[_i].pl, ref_cases[_i].oh, ref_cases[_i].ow,
                  ref_cases[_i].opts.flip,
                  ref_cases[_i].opts.groups ? ref_cases[_i].opts.groups : 1,
                  ref_cases[_i].opts.dilation[0] ? ref_cases[_i].opts.dilation[0] : 1,
                  ref_cases[_i].opts.dilation[1] ? ref_cases[_i].opts.dilation[1] : 1};
    nb_rng rng;
    nb_rng_seed(&rng, 7 + (uint64_t)_i);
    int64_t xs[] = {g.n, g.c, g.h, g.w}, ws[] = {g.o, g.c / g.groups, g.kh, g.kw}, bs[] = {g.o};
    int64_t ys[] = {g.n, g.o, g.oh, g.ow};
    nb_tensor *x = nb_tensor_new(ctx, NB_F64, 4, xs), *w = nb_tensor_new(ctx, NB_F64, 4, ws);
    nb_tensor *b = ref_cases[_i].bias ? nb_tensor_new(ctx, NB_F64, 1, bs) : NULL;
    nb_tensor *r = nb_tensor_new(ctx, NB_F64, 4, ys); /* dy of loss = sum(y * r) */
    nb_fill_uniform(x, &rng, -1, 1);
    nb_fill_uniform(w, &rng, -1, 1);
    if (b)
        nb_fill_uniform(b, &rng, -1, 1);
    nb_fill_uniform(r, &rng, -1, 1);
    poison(ref_cases[_i].poison, &g, x, w, b, r);
    nb_tensor *w0 = nb_tensor_copy(ctx, w, NB_F64);
    nb_requires_grad(x, true);
    nb_requires_grad(w, true);
    if (b)
        nb_requires_grad(b, true);

    nb_tensor *y = nb_conv2d(ctx, x, w, b, &ref_cases[_i].opts);
    ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
    ck_assert_msg(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, r))) == NB_OK, "%s",
                  nb_errmsg(ctx));

    nb_tensor *ry = nb_tensor_new(ctx, NB_F64, 4, ys);
    nb_tensor *rdx = nb_tensor_new(ctx, NB_F64, 4, xs), *rdw = nb_tensor_new(ctx, NB_F64, 4, ws);
    nb_tensor *rdb = nb_tensor_new(ctx, NB_F64, 1, bs);
    /* relu: y = max(0, conv), NaN kept, and the gradient flows where not
     * y <= 0 (PyTorch's threshold_backward). */
    nb_tensor *rr = nb_tensor_copy(ctx, r, NB_F64);
    if (ref_cases[_i].opts.relu) {
        ref_conv(&g, x->data, w->data, b ? b->data : NULL, ry->data, r->data, NULL, NULL, NULL);
        double *yv = ry->data, *rv = rr->data;
        for (int64_t i = 0; i < ry->numel; i++)
            rv[i] = yv[i] <= 0 ? 0 : rv[i];
    }
    ref_conv(&g, x->data, w->data, b ? b->data : NULL, ry->data, rr->data, rdx->data,
             rdw->data, b ? rdb->data : NULL);
    if (ref_cases[_i].opts.relu)
        for (int64_t i = 0; i < ry->numel; i++) {
            double *yv = ry->data;
            yv[i] = yv[i] <= 0 ? 0 : yv[i];
        }
    tst_assert_values(y, 4, ys, ry->data, 1e-12);
    tst_assert_values(x->grad, 4, xs, rdx->data, 1e-12);
    tst_assert_values(w->grad, 4, ws, rdw->data, 1e-12);
    if (b)
        tst_assert_values(b->grad, 1, bs, rdb->data, 1e-12);
    /* The flip reads the weights rotated; it never rotates them in place. */
    tst_assert_values(w, 4, ws, w0->data, 0);

    /* float32 on the same data. */
    nb_graph_reset(ctx);
    nb_tensor *x32 = nb_tensor_copy(ctx, x, NB_F32), *w32 = nb_tensor_copy(ctx, w, NB_F32);
    nb_tensor *b32 = b ? nb_tensor_copy(ctx, b, NB_F32) : NULL;
    nb_tensor *r32 = nb_tensor_copy(ctx, r, NB_F32);
    nb_requires_grad(x32, true);
    nb_requires_grad(w32, true);
    nb_tensor *y32 = nb_conv2d(ctx, x32, w32, b32, &ref_cases[_i].opts);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y32, r32))), NB_OK);
    const nb_tensor *got[] = {y32, x32->grad, w32->grad}, *want[] = {ry, rdx, rdw};
    for (int k = 0; k < 3; k++)
        assert_close32(got[k], want[k]);
    nb_ctx_free(ctx);
    nb_set_num_threads(old);
    nb_set_cpu_kernels(old_kernels, NULL, 0);
}
END_TEST

/* ---- known values -------------------------------------------------------- */


/* The forward's two ways, taps summed directly and im2col + GEMM, give the
 * same bits: each output one chain from its bias over (c, kh, kw) in order.
 * Every stride-1 case, f32 and f64 (_i % 2), with each variant's kernels
 * (_i / 2); values that are not finite left out (NaN keeps no payload). */
START_TEST(test_direct_is_gemm)
{
    const char *old_kernels = nb_cpu_kernels(), *kernels = tst_kernels[_i / 2];
    if (!tst_use_kernels(kernels, "conv2d's direct forward against its GEMM"))
        return;
    nb_dtype dt = _i % 2 ? NB_F64 : NB_F32;
    int checked = 0;
    for (int k = 0; k < NREF; k++) {
        const nb_conv_opts *o = &ref_cases[k].opts;
        if (o->stride[0] > 1 || o->stride[1] > 1 || ref_cases[k].poison != P_NONE ||
            ref_cases[k].kh * ref_cases[k].kw > 25 || o->groups > 1 || o->dilation[0] > 1 ||
            o->dilation[1] > 1)
            continue;
        nb_ctx *ctx = nb_ctx_new();
        nb_rng rng;
        nb_rng_seed(&rng, 70 + (uint64_t)k);
        int64_t xs[] = {ref_cases[k].n, ref_cases[k].c, ref_cases[k].h, ref_cases[k].w};
        int64_t ws[] = {ref_cases[k].o, ref_cases[k].c, ref_cases[k].kh, ref_cases[k].kw};
        int64_t bs[] = {ref_cases[k].o};
        nb_tensor *x = nb_tensor_new(ctx, dt, 4, xs), *w = nb_tensor_new(ctx, dt, 4, ws);
        nb_tensor *b = ref_cases[k].bias ? nb_tensor_new(ctx, dt, 1, bs) : NULL;
        nb_fill_uniform(x, &rng, -1, 1);
        nb_fill_uniform(w, &rng, -1, 1);
        if (b)
            nb_fill_uniform(b, &rng, -1, 1);
        int64_t old = nbi_conv_direct_taps(0);
        nb_tensor *gemm = nb_conv2d(ctx, x, w, b, o);
        nbi_conv_direct_taps(1 << 20);
        nb_tensor *direct = nb_conv2d(ctx, x, w, b, o);
        nbi_conv_direct_taps(old);
        ck_assert_ptr_nonnull(gemm);
        ck_assert_ptr_nonnull(direct);
        ck_assert_msg(!memcmp(gemm->data, direct->data, (size_t)gemm->numel * nb_dtype_size(dt)),
                      "case %d (%s, %s): the direct forward differs from the GEMM's", k,
                      dt == NB_F32 ? "f32" : "f64", kernels);
        checked++;
        nb_ctx_free(ctx);
    }
    ck_assert_int_ge(checked, 10);
    nb_set_cpu_kernels(old_kernels, NULL, 0);
}
END_TEST

/* The course's example, by hand: x = [[1,2,3],[2,3,4],[3,4,5]] padded by 1
 * and K = [[1,0,0],[0,1,0],[0,0,2]].  Cross-correlation (conv2d without
 * flip) gives the course's [[7,10,3],[10,14,6],[3,6,8]]:
 *   y[i][j] = x[i-1][j-1] + x[i][j] + 2 x[i+1][j+1], e.g. y[0][0] = 0 + 1 + 2*3 = 7,
 *   y[1][1] = 1 + 3 + 2*5 = 14, y[2][2] = 3 + 5 + 0 = 8.
 * With flip (K rotated: [[2,0,0],[0,1,0],[0,0,1]]) it is
 *   y[i][j] = 2 x[i-1][j-1] + x[i][j] + x[i+1][j+1]: [[4,6,3],[6,10,8],[3,8,11]]. */
START_TEST(test_course_example)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    int64_t s[] = {1, 1, 3, 3};
    nb_tensor *x = tst_make(ctx, dt, 4, s, (double[]){1, 2, 3, 2, 3, 4, 3, 4, 5});
    nb_tensor *k = tst_make(ctx, dt, 4, s, (double[]){1, 0, 0, 0, 1, 0, 0, 0, 2});
    nb_conv_opts opts = {.padding = {1, 1}};
    tst_assert_values(nb_conv2d(ctx, x, k, NULL, &opts), 4, s,
                      (double[]){7, 10, 3, 10, 14, 6, 3, 6, 8}, 0);
    opts.flip = true;
    tst_assert_values(nb_conv2d(ctx, x, k, NULL, &opts), 4, s,
                      (double[]){4, 6, 3, 6, 10, 8, 3, 8, 11}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* Sobel-x [[-1,0,1],[-2,0,2],[-1,0,1]] on a 3x4 step edge, rows [0,0,9,9],
 * padding 1.  Padded rows are [0,0,0,9,9,0], so the horizontal difference
 * p[j+2] - p[j] is [0,9,9,-9]; the vertical weights 1,2,1 sum to 4 in the
 * middle row and 3 at the top and bottom, where a padded row drops out.
 * Flipping negates Sobel-x. */
START_TEST(test_sobel)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    int64_t xs[] = {1, 1, 3, 4}, ks[] = {1, 1, 3, 3};
    nb_tensor *x = tst_make(ctx, dt, 4, xs, (double[]){0, 0, 9, 9, 0, 0, 9, 9, 0, 0, 9, 9});
    nb_tensor *k = tst_make(ctx, dt, 4, ks, (double[]){-1, 0, 1, -2, 0, 2, -1, 0, 1});
    nb_conv_opts opts = {.padding = {1, 1}};
    tst_assert_values(nb_conv2d(ctx, x, k, NULL, &opts), 4, xs,
                      (double[]){0, 27, 27, -27, 0, 36, 36, -36, 0, 27, 27, -27}, 0);
    opts.flip = true;
    tst_assert_values(nb_conv2d(ctx, x, k, NULL, &opts), 4, xs,
                      (double[]){0, -27, -27, 27, 0, -36, -36, 36, 0, -27, -27, 27}, 0);
    /* A bias adds to every output of its channel. */
    int64_t bs[] = {1};
    nb_tensor *b = tst_make(ctx, dt, 1, bs, (double[]){0.5});
    tst_assert_values(nb_conv2d(ctx, x, k, b, &opts), 4, xs,
                      (double[]){0.5, -26.5, -26.5, 27.5, 0.5, -35.5, -35.5, 36.5, 0.5, -26.5,
                                 -26.5, 27.5},
                      0);
    nb_ctx_free(ctx);
}
END_TEST

/* NaN and infinities on a 3x4 image, padding 1, as PyTorch 1.13 gives them
 * (printed by torch once).  One channel of 3x3 takes the direct kernels
 * both ways (test_matches_reference takes the GEMM path through the same
 * rule): the padding counts as zeros that y and dW multiply, and dx gets
 * only what outputs read.  So a NaN pixel on the right edge leaves the
 * taps that never reach it (the left column of dW) finite, and an
 * infinite corner tap gives NaN where it meets the padding, infinity
 * elsewhere, and no dx where no output reads it.  _i: float32 or float64. */
START_TEST(test_nonfinite_values)
{
    const double inf = INFINITY, nan = NAN;
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    int64_t xs[] = {1, 1, 3, 4}, ws[] = {1, 1, 3, 3}, bs[] = {1};
    const double xv[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    const double kv[9] = {1, 0, -1, 2, 0.5, -2, 1, 0, -1};
    const struct {
        const char *name;
        int at_x, at_w; /* where the value goes (-1: nowhere) */
        double v;
        bool relu;
        double y[12], dx[12], dw[9], db;
    } cases[] = {
        {"a NaN pixel", 7, -1, nan, false,
         {-9, -4.5, nan, nan, -21, -4.5, nan, nan, -21, -0.5, nan, nan},
         {10.5, 7, 7.5, -11, 26.5, 11, 11.5, -24, 30.5, 11, 11.5, -23},
         {244, nan, nan, 480, nan, nan, 268, nan, nan}, 78},
        {"a NaN pixel, relu", 7, -1, nan, true,
         {0, 0, nan, nan, 0, 0, nan, nan, 0, 0, nan, nan},
         {0, 13, 17.5, -11, 0, 28, 35.5, -24, 0, 29, 37.5, -23},
         {188, nan, nan, 358, nan, nan, 204, nan, nan}, 45},
        {"an infinite corner tap", -1, 0, inf, false,
         {nan, nan, nan, nan, nan, inf, inf, inf, nan, inf, inf, inf},
         {inf, inf, inf, -11, inf, inf, inf, -24, 30.5, 11, 11.5, -23},
         {244, 348, 268, 480, 650, 480, 268, 348, 244}, 78},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        double xk[12], wk[9];
        memcpy(xk, xv, sizeof xk);
        memcpy(wk, kv, sizeof wk);
        if (cases[k].at_x >= 0)
            xk[cases[k].at_x] = cases[k].v;
        if (cases[k].at_w >= 0)
            wk[cases[k].at_w] = cases[k].v;
        nb_tensor *x = tst_make(ctx, dt, 4, xs, xk), *w = tst_make(ctx, dt, 4, ws, wk);
        nb_tensor *b = tst_make(ctx, dt, 1, bs, (double[]){0.5});
        nb_tensor *r = tst_make(ctx, dt, 4, xs, xv); /* dy = 1, 2, ..., 12 */
        nb_requires_grad(x, true);
        nb_requires_grad(w, true);
        nb_requires_grad(b, true);
        nb_conv_opts opts = {.padding = {1, 1}, .relu = cases[k].relu};
        nb_tensor *y = nb_conv2d(ctx, x, w, b, &opts);
        ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
        ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, r))), NB_OK);
        tst_assert_values(y, 4, xs, cases[k].y, 1e-5);
        tst_assert_values(x->grad, 4, xs, cases[k].dx, 1e-5);
        tst_assert_values(w->grad, 4, ws, cases[k].dw, 1e-4);
        tst_assert_values(b->grad, 1, bs, &cases[k].db, 1e-5);
        nb_graph_reset(ctx);
    }
    nb_ctx_free(ctx);
}
END_TEST

/* Groups and dilation on odd shapes, printed by PyTorch 1.13's
 * F.conv2d / F.conv1d: x = 1, 2, 3, ... and small integer weights
 * (w = k % 5 - 2 and k % 4 - 1 in order), so every value is exact.
 * _i: float32 or float64. */
START_TEST(test_groups_dilation_values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    double xv[60], wv[32];
    for (int i = 0; i < 60; i++)
        xv[i] = i + 1;
    for (int i = 0; i < 32; i++)
        wv[i] = i % 5 - 2;
    /* [1, 4, 3, 5] * [4, 2, 2, 2], groups 2, padding [1, 0], dilation [1, 2] -> [1, 4, 4, 3] */
    nb_tensor *x = tst_make(ctx, dt, 4, (int64_t[]){1, 4, 3, 5}, xv);
    nb_tensor *w = tst_make(ctx, dt, 4, (int64_t[]){4, 2, 2, 2}, wv);
    nb_conv_opts o = {.padding = {1, 0}, .dilation = {1, 2}, .groups = 2};
    tst_assert_values(nb_conv2d(ctx, x, w, NULL, &o), 4, (int64_t[]){1, 4, 4, 3},
                      (double[]){-13, -13, -13, -22, -25, -28, -37, -40, -43, -39, -42, -45,
                                 -9, -12, -15, 1, 2, 3, 6, 7, 8, 65, 69, 73,
                                 145, 149, 153, -6, -6, -6, -6, -6, -6, -211, -215, -219,
                                 -171, -175, -179, -53, -54, -55, -58, -59, -60, 168, 171, 174},
                      0);
    /* depthwise, multiplier 2: [1, 2, 4, 3] * [4, 1, 3, 2] + b, stride 2,
     * padding 1 -> [1, 4, 2, 2] */
    double w2[24];
    for (int i = 0; i < 24; i++)
        w2[i] = i % 4 - 1;
    nb_tensor *x2 = tst_make(ctx, dt, 4, (int64_t[]){1, 2, 4, 3}, xv);
    nb_tensor *k2 = tst_make(ctx, dt, 4, (int64_t[]){4, 1, 3, 2}, w2);
    nb_tensor *b2 = tst_make(ctx, dt, 1, (int64_t[]){4}, (double[]){0.5, -1, 2, 0});
    o = (nb_conv_opts){.stride = {2, 2}, .padding = {1, 1}, .groups = 2};
    tst_assert_values(nb_conv2d(ctx, x2, k2, b2, &o), 4, (int64_t[]){1, 4, 2, 2},
                      (double[]){2.5, 3.5, 14.5, 10.5, 7, 14, 27, 43, 28, 29, 40, 24, 32, 39,
                                 76, 104},
                      0);
    /* conv1d depthwise, padding "same" with dilation 2: [1, 2, 7] * [2, 1, 3] */
    nb_tensor *x3 = tst_make(ctx, dt, 3, (int64_t[]){1, 2, 7}, xv);
    nb_tensor *k3 = tst_make(ctx, dt, 3, (int64_t[]){2, 1, 3}, (double[]){1, -1, 2, 0, 1, 1});
    o = (nb_conv_opts){.same = true, .dilation = {2, 0}, .groups = 2};
    tst_assert_values(nb_conv1d(ctx, x3, k3, NULL, &o), 3, (int64_t[]){1, 2, 7},
                      (double[]){5, 6, 8, 10, 12, -2, -2, 18, 20, 22, 24, 26, 13, 14}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* numpy.convolve(x, [-1, 0, 1], 'same'), printed by numpy. */
START_TEST(test_numpy_convolve_same)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    int64_t xs[] = {1, 1, 25}, hs[] = {1, 1, 3};
    nb_tensor *x = tst_make(ctx, dt, 3, xs,
                            (double[]){2, 2, 2, 2, 2, 2, 2, 10, 10, 10, 10, 10, 1,
                                       1, 1, 1, 1, 1, 1, 1, 5,  5,  5,  5,  5});
    nb_tensor *h = tst_make(ctx, dt, 3, hs, (double[]){-1, 0, 1});
    nb_conv_opts opts = {.same = true, .flip = true};
    nb_tensor *y = nb_conv1d(ctx, x, h, NULL, &opts);
    ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
    tst_assert_values(y, 3, xs,
                      (double[]){-2, 0, 0, 0, 0, 0, -8, -8, 0, 0, 0, 9, 9,
                                 0,  0, 0, 0, 0, 0, -4, -4, 0, 0, 0, 5},
                      0);
    nb_ctx_free(ctx);
}
END_TEST

/* The lab's output sizes: (C, H, W) with O filters -> (O, oh, ow).  The
 * lab's last case has C = 128; the size does not depend on C, and 2
 * channels make it 64 times cheaper (8 minutes less under valgrind). */
static const struct {
    int64_t c, h, w, o, k;
    nb_conv_opts opts;
    int64_t oh, ow;
} lab_sizes[] = {
    {1, 28, 28, 16, 5, {.stride = {1, 1}}, 24, 24},
    {2, 32, 32, 24, 3, {.stride = {1, 1}}, 30, 30},
    {10, 32, 32, 3, 2, {.stride = {2, 2}}, 16, 16},
    {11, 8, 16, 7, 3, {.stride = {2, 2}, .padding = {1, 1}}, 4, 8},
    {2, 256, 256, 112, 3, {.padding = {1, 1}}, 256, 256},
};

START_TEST(test_lab_sizes)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_set_grad_enabled(ctx, false);
    int64_t xs[] = {1, lab_sizes[_i].c, lab_sizes[_i].h, lab_sizes[_i].w};
    int64_t ws[] = {lab_sizes[_i].o, lab_sizes[_i].c, lab_sizes[_i].k, lab_sizes[_i].k};
    nb_tensor *x = nb_tensor_full(ctx, NB_F32, 4, xs, 1.0);
    nb_tensor *w = nb_tensor_full(ctx, NB_F32, 4, ws, 1.0);
    nb_tensor *y = nb_conv2d(ctx, x, w, NULL, &lab_sizes[_i].opts);
    ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(y->ndim, 4);
    ck_assert_int_eq(y->shape[0], 1);
    ck_assert_int_eq(y->shape[1], lab_sizes[_i].o);
    ck_assert_int_eq(y->shape[2], lab_sizes[_i].oh);
    ck_assert_int_eq(y->shape[3], lab_sizes[_i].ow);
    ck_assert_int_eq(nb_graph_size(ctx), 0);
    /* An all-ones interior output counts the kernel's taps. */
    double taps = (double)(lab_sizes[_i].c * lab_sizes[_i].k * lab_sizes[_i].k);
    ck_assert(nb_get(y, y->shape[3] + 1) == taps);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- errors -------------------------------------------------------------- */

START_TEST(test_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){2, 3, 8, 8});
    nb_tensor *w = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){4, 3, 3, 3});
    nb_tensor *b = nb_tensor_new(ctx, NB_F32, 1, (int64_t[]){4});
    nb_tensor *x3 = nb_tensor_new(ctx, NB_F32, 3, (int64_t[]){2, 3, 8});
    nb_tensor *w3 = nb_tensor_new(ctx, NB_F32, 3, (int64_t[]){4, 3, 3});

    ck_assert_ptr_null(nb_conv2d(ctx, x3, w, b, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "conv2d: input [2, 3, 8] must be [N, C, H, W]");
    ck_assert_ptr_null(nb_conv2d(ctx, x, w3, b, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "conv2d: weight [4, 3, 3] must be [O, C, kh, kw]");

    nb_tensor *w1 = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){4, 1, 3, 3});
    ck_assert_ptr_null(nb_conv2d(ctx, x, w1, b, NULL));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "conv2d: input [2, 3, 8, 8] has 3 channels, but in_channels is 1 (weight [4, 1, 3, 3])");

    nb_tensor *b5 = nb_tensor_new(ctx, NB_F32, 1, (int64_t[]){5});
    ck_assert_ptr_null(nb_conv2d(ctx, x, w, b5, NULL));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "conv2d: bias [5] does not match weight [4, 3, 3, 3]: expected [4]");
    nb_tensor *b2d = nb_tensor_new(ctx, NB_F32, 2, (int64_t[]){4, 1});
    ck_assert_ptr_null(nb_conv2d(ctx, x, w, b2d, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "conv2d: bias [4, 1] does not match weight");

    /* 9x9 does not fit in 8x8; with padding 1 it does. */
    nb_tensor *w9 = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){4, 3, 9, 9});
    ck_assert_ptr_null(nb_conv2d(ctx, x, w9, NULL, NULL));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "conv2d: kernel_size 9 is larger than its 8x8 input");
    ck_assert_ptr_null(nb_conv2d(ctx, x, w9, NULL, &(nb_conv_opts){.padding = {1, 0}}));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "conv2d: kernel_size 9 is larger than its 8x8 input padded to 10x8");
    nb_clear_error(ctx);
    ck_assert_ptr_nonnull(nb_conv2d(ctx, x, w9, NULL, &(nb_conv_opts){.padding = {1, 1}}));

    ck_assert_ptr_null(nb_conv2d(ctx, x, w, b, &(nb_conv_opts){.padding = {0, -1}}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv2d: padding [0, -1] is negative");
    ck_assert_ptr_null(nb_conv2d(ctx, x, w, b, &(nb_conv_opts){.stride = {-2, 1}}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv2d: stride [-2, 1] is negative");
    ck_assert_ptr_null(nb_conv2d(ctx, x, w, b, &(nb_conv_opts){.stride = {1, 2}, .same = true}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv2d: padding \"same\" needs stride 1, got stride [1, 2]");
    ck_assert_ptr_null(nb_conv2d(ctx, x, w, b, &(nb_conv_opts){.padding = {1, 1}, .same = true}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv2d: padding \"same\" conflicts with explicit padding 1");

    /* groups and dilation */
    nb_tensor *x6 = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){2, 6, 8, 8});
    nb_tensor *w62 = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){4, 2, 3, 3});
    ck_assert_ptr_null(nb_conv2d(ctx, x6, w62, NULL, &(nb_conv_opts){.groups = 4}));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "conv2d: in_channels 6 is not divisible by groups 4 (input [2, 6, 8, 8])");
    nb_tensor *w5 = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){5, 2, 3, 3});
    ck_assert_ptr_null(nb_conv2d(ctx, x6, w5, NULL, &(nb_conv_opts){.groups = 3}));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "conv2d: out_channels 5 is not divisible by groups 3 (weight [5, 2, 3, 3])");
    ck_assert_ptr_null(nb_conv2d(ctx, x6, w62, NULL, &(nb_conv_opts){.groups = 2}));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "conv2d: input [2, 6, 8, 8] has 6 channels, but weight [4, 2, 3, 3] with "
                     "groups 2 takes 4");
    ck_assert_ptr_null(nb_conv2d(ctx, x6, w62, NULL, &(nb_conv_opts){.groups = -3}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv2d: groups -3 is negative");
    ck_assert_ptr_null(nb_conv2d(ctx, x, w, b, &(nb_conv_opts){.dilation = {1, -2}}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv2d: dilation [1, -2] is negative");
    ck_assert_ptr_null(nb_conv2d(ctx, x, w, b, &(nb_conv_opts){.dilation = {4, 4}}));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "conv2d: kernel_size 3 with dilation 4 (span 9) is larger than its 8x8 input");
    ck_assert_ptr_null(nb_conv2d(ctx, x, w, b, &(nb_conv_opts){.dilation = {4, 1}}));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "conv2d: kernel_size 3 with dilation [4, 1] (span [9, 3]) is larger than its 8x8 input");
    nb_clear_error(ctx);
    ck_assert_ptr_nonnull(nb_conv2d(ctx, x, w, b, &(nb_conv_opts){.dilation = {4, 1}, .padding = {1, 0}}));

    nb_tensor *w64 = nb_tensor_new(ctx, NB_F64, 4, (int64_t[]){4, 3, 3, 3});
    ck_assert_ptr_null(nb_conv2d(ctx, x, w64, b, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "conv2d: input 1 is f64 but input 0 is f32");
    nb_tensor *b64 = nb_tensor_new(ctx, NB_F64, 1, (int64_t[]){4});
    ck_assert_ptr_null(nb_conv2d(ctx, x, w, b64, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "conv2d: input 2 is f64 but input 0 is f32");
    nb_clear_error(ctx); /* a NULL input keeps an earlier error */
    ck_assert_ptr_null(nb_conv2d(ctx, NULL, w, b, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "conv2d: input 0 is NULL");

    /* conv1d checks its own shapes and names itself. */
    ck_assert_ptr_null(nb_conv1d(ctx, x, w3, NULL, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "conv1d: input [2, 3, 8, 8] must be [N, C, L]");
    ck_assert_ptr_null(nb_conv1d(ctx, x3, w, NULL, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "conv1d: weight [4, 3, 3, 3] must be [O, C, k]");
    nb_tensor *w31 = nb_tensor_new(ctx, NB_F32, 3, (int64_t[]){4, 1, 3});
    ck_assert_ptr_null(nb_conv1d(ctx, x3, w31, NULL, NULL));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "conv1d: input [2, 3, 8] has 3 channels, but in_channels is 1 (weight [4, 1, 3])");
    ck_assert_ptr_null(nb_conv1d(ctx, x3, w3, b5, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "conv1d: bias [5] does not match weight [4, 3, 3]: expected [4]");
    nb_tensor *w39 = nb_tensor_new(ctx, NB_F32, 3, (int64_t[]){4, 3, 11});
    ck_assert_ptr_null(nb_conv1d(ctx, x3, w39, NULL, &(nb_conv_opts){.padding = {1, 0}}));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "conv1d: kernel_size 11 is larger than its input of length 8 padded to 10");
    ck_assert_ptr_null(nb_conv1d(ctx, x3, w3, NULL, &(nb_conv_opts){.padding = {-1, 0}}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv1d: padding -1 is negative");
    ck_assert_ptr_null(nb_conv1d(ctx, x3, w3, NULL, &(nb_conv_opts){.stride = {-1, 0}}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv1d: stride -1 is negative");
    ck_assert_ptr_null(nb_conv1d(ctx, x3, w3, NULL, &(nb_conv_opts){.stride = {2, 0}, .same = true}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv1d: padding \"same\" needs stride 1, got stride 2");
    ck_assert_ptr_null(nb_conv1d(ctx, x3, w3, NULL, &(nb_conv_opts){.groups = 2}));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "conv1d: in_channels 3 is not divisible by groups 2 (input [2, 3, 8])");
    ck_assert_ptr_null(nb_conv1d(ctx, x3, w3, NULL, &(nb_conv_opts){.dilation = {-1, 0}}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv1d: dilation -1 is negative");
    ck_assert_ptr_null(nb_conv1d(ctx, x3, w3, NULL, &(nb_conv_opts){.dilation = {4, 0}}));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "conv1d: kernel_size 3 with dilation 4 (span 9) is larger than its input of length 8");
    nb_tensor *w364 = nb_tensor_new(ctx, NB_F64, 3, (int64_t[]){4, 3, 3});
    ck_assert_ptr_null(nb_conv1d(ctx, x3, w364, NULL, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "conv1d: input 1 is f64 but input 0 is f32");
    nb_ctx_free(ctx);
}
END_TEST

/* conv1d is conv2d with H = 1: same values as the 2-D call on [N, C, 1, L]. */
START_TEST(test_conv1d_is_conv2d)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    int64_t xs[] = {2, 3, 10}, ws[] = {4, 3, 3}, bs[] = {4};
    int64_t xs4[] = {2, 3, 1, 10}, ws4[] = {4, 3, 1, 3};
    nb_tensor *x = nb_tensor_new(ctx, NB_F64, 3, xs), *w = nb_tensor_new(ctx, NB_F64, 3, ws);
    nb_tensor *b = nb_tensor_new(ctx, NB_F64, 1, bs);
    nb_fill_uniform(x, &rng, -1, 1);
    nb_fill_uniform(w, &rng, -1, 1);
    nb_fill_uniform(b, &rng, -1, 1);
    nb_tensor *x4 = nb_tensor_from(ctx, NB_F64, 4, xs4, x->data);
    nb_tensor *w4 = nb_tensor_from(ctx, NB_F64, 4, ws4, w->data);
    nb_conv_opts o1 = {.stride = {3, 0}, .padding = {2, 0}, .flip = true};
    nb_conv_opts o2 = {.stride = {1, 3}, .padding = {0, 2}, .flip = true};
    nb_tensor *y = nb_conv1d(ctx, x, w, b, &o1);
    nb_tensor *y4 = nb_conv2d(ctx, x4, w4, b, &o2);
    ck_assert_msg(y && y4, "%s", nb_errmsg(ctx));
    /* (10 + 4 - 3) / 3 + 1 = 4 */
    tst_assert_values(y, 3, (int64_t[]){2, 4, 4}, y4->data, 0);
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_conv(void)
{
    Suite *s = suite_create("conv");
    TCase *tc = tcase_create("conv2d");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_matches_reference, 0, 6 * NREF);
    tcase_add_loop_test(tc, test_direct_is_gemm, 0, 6);
    tcase_add_loop_test(tc, test_course_example, 0, 2);
    tcase_add_loop_test(tc, test_sobel, 0, 2);
    tcase_add_loop_test(tc, test_groups_dilation_values, 0, 2);
    tcase_add_loop_test(tc, test_nonfinite_values, 0, 2);
    tcase_add_loop_test(tc, test_lab_sizes, 0, (int)(sizeof lab_sizes / sizeof *lab_sizes));
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    /* Last: conv1d goes through nb_reshape. */
    tc = tcase_create("conv1d");
    tcase_add_loop_test(tc, test_numpy_convolve_same, 0, 2);
    tcase_add_test(tc, test_conv1d_is_conv2d);
    suite_add_tcase(s, tc);
    return s;
}
