/* test_conv_transpose.c - conv_transpose2d (GEMM + col2im) against PyTorch's
 * values, a direct scatter loop, and itself on 1 and 2 threads. */
#include "harness.h"

#include <stdio.h>
#include <string.h>

/* ---- gradcheck cases ----------------------------------------------------- */

/* x [N, C, H, W], w [C, O / groups, kh, kw], and a bias [O] unless o is 0. */
static void setup_convt(tst_env *e, nb_rng *rng, const int64_t *xs, const int64_t *ws, int64_t o)
{
    tst_tensor(e, rng, 4, xs);
    tst_tensor(e, rng, 4, ws);
    if (o)
        tst_tensor(e, rng, 1, (int64_t[]){o});
}

static nb_tensor *convt_of(nb_ctx *ctx, tst_env *e, const nb_conv_transpose_opts *opts)
{
    return nb_conv_transpose2d(ctx, e->t[0], e->t[1], e->n > 2 ? e->t[2] : NULL, opts);
}

static void setup_3x3(tst_env *e, nb_rng *rng)
{
    setup_convt(e, rng, (int64_t[]){2, 2, 3, 4}, (int64_t[]){2, 3, 3, 3}, 3);
}
static nb_tensor *fwd_plain(nb_ctx *ctx, tst_env *e) { return convt_of(ctx, e, NULL); }
static nb_tensor *fwd_s2(nb_ctx *ctx, tst_env *e)
{
    return convt_of(ctx, e, &(nb_conv_transpose_opts){.stride = {2, 2}, .padding = {1, 1}});
}
static nb_tensor *fwd_asym(nb_ctx *ctx, tst_env *e)
{
    return convt_of(ctx, e, &(nb_conv_transpose_opts){.stride = {2, 1}, .padding = {1, 0}});
}
static nb_tensor *fwd_opad(nb_ctx *ctx, tst_env *e)
{
    return convt_of(ctx, e, &(nb_conv_transpose_opts){.stride = {2, 3}, .padding = {1, 1},
                                                      .output_padding = {1, 2}});
}
static nb_tensor *fwd_dil2(nb_ctx *ctx, tst_env *e)
{
    return convt_of(ctx, e, &(nb_conv_transpose_opts){.padding = {2, 1}, .dilation = {2, 2}});
}

/* 4 input channels, 2 groups of 2 in and 3 out. */
static void setup_groups(tst_env *e, nb_rng *rng)
{
    setup_convt(e, rng, (int64_t[]){2, 4, 3, 3}, (int64_t[]){4, 3, 2, 3}, 6);
}
static nb_tensor *fwd_groups(nb_ctx *ctx, tst_env *e)
{
    return convt_of(ctx, e, &(nb_conv_transpose_opts){.groups = 2});
}
/* Everything at once: output_padding 1 below the dilation, not the stride. */
static nb_tensor *fwd_mixed(nb_ctx *ctx, tst_env *e)
{
    return convt_of(ctx, e, &(nb_conv_transpose_opts){.stride = {1, 2}, .padding = {1, 0},
                                                      .output_padding = {1, 1}, .groups = 2,
                                                      .dilation = {2, 1}});
}

static void setup_no_bias(tst_env *e, nb_rng *rng)
{
    setup_convt(e, rng, (int64_t[]){3, 2, 2, 3}, (int64_t[]){2, 2, 2, 2}, 0);
}

const tst_case tst_cases_conv_transpose[] = {
    {"conv_transpose2d 3x3 with bias", setup_3x3, fwd_plain},
    {"conv_transpose2d stride 2 padding 1", setup_3x3, fwd_s2},
    {"conv_transpose2d stride [2,1] padding [1,0]", setup_3x3, fwd_asym},
    {"conv_transpose2d output_padding [1,2]", setup_3x3, fwd_opad},
    {"conv_transpose2d dilation 2", setup_3x3, fwd_dil2},
    {"conv_transpose2d groups 2", setup_groups, fwd_groups},
    {"conv_transpose2d groups dilation output_padding", setup_groups, fwd_mixed},
    {"conv_transpose2d no bias stride 2", setup_no_bias, fwd_s2},
    {0},
};

/* ---- PyTorch's values ------------------------------------------------------ */

/* Each value from torch.nn.functional.conv_transpose2d on small integers
 * (exact in both dtypes), and the gradients of sum(y * r). */
typedef struct known_case {
    int64_t xs[4], ws[4], ys[4];
    nb_conv_transpose_opts opts;
    const double *x, *w, *b, *y, *r, *dx, *dw, *db;
} known_case;

static const known_case known[] = {
    {{1, 2, 3, 2}, {2, 3, 2, 3}, {1, 3, 5, 6},
     {.stride = {2, 1}, .padding = {1, 0}, .output_padding = {1, 0}, .dilation = {1, 2}},
     (const double[]){1, 0, -3, -1, -2, -1, 3, 0, 1, 2, -1, -3},
     (const double[]){-1, 2, 1, -1, -1, 1, 2, 1, -1, 2, -1, 2, 2, -1, 2, 2, 2, -2,
                      -1, 0, 1, -2, -2, -2, 0, 2, -1, 1, 1, 1, -1, 2, -1, 0, 1, -2},
     (const double[]){0, -1, -2},
     (const double[]){-7, 0, -7, 0, -5, 0, 2, -1, -6, -2, -2, 1, 1, -3, 1, -3, -5, -5,
                      3, 4, -4, -2, -3, -4, 4, 7, 4, 7, 0, 5, 4, -1, 1, -1, 4, -1,
                      -7, -3, -2, 2, 1, -2, -6, -1, 3, 2, -6, -1, -5, -3, -5, -8, 2, 3,
                      -6, -6, 0, -3, -6, -6, 0, -2, 3, -2, -10, -2, -9, -6, 3, 3, -9, -6,
                      -8, -4, -7, -2, 2, -4, -5, -1, -2, -7, -5, -1, -6, -4, -7, -7, 4, 6},
     (const double[]){2, 1, -1, -1, -2, 1, -1, -1, 0, 2, -1, 1, 2, -2, -2, 1, 0, 1,
                      0, 0, -2, -2, -2, 1, -1, 2, -1, -1, -2, 0, 2, 2, 1, 2, 1, 2,
                      1, 2, 1, -2, 1, 0, 1, -2, -1, -1, -2, 0, 0, -2, -1, -1, -2, 2,
                      -2, 1, -1, 0, 1, -2, 2, 2, 1, 2, 2, 2, -2, 0, 2, -2, 1, 1,
                      0, 1, -2, 2, 2, 1, -1, 1, -1, 0, 1, 2, -1, -2, 2, -2, 2, 2},
     (const double[]){4, 11, -11, 15, -7, -19, 3, 2, -2, -10, 0, -15},
     (const double[]){4, 4, 5, -2, 7, 1, -3, 2, -1, 4, 7, 7, 7, -2, -8, 5, 3, -11,
                      -3, 12, 0, -1, 1, -2, 11, 1, -3, 2, 1, 6, -4, -1, -4, 15, 9, 2},
     (const double[]){-8, 1, 18}},
    {{2, 4, 2, 3}, {4, 1, 3, 2}, {2, 2, 6, 5},
     {.stride = {1, 2}, .padding = {0, 1}, .output_padding = {0, 1}, .groups = 2,
      .dilation = {2, 1}},
     (const double[]){-3, 0, 1, 0, 0, 3, -3, 2, -3, 0, 1, 3, 2, 2, -1, 2, 3, 0, 1, -2, 0, -1, 1, 3,
                      -1, 2, 2, -1, 0, 2, -3, 2, -1, 3, -1, 2, 1, -2, 1, 1, 0, -2, -2, 1, 0, -2, 1, 0},
     (const double[]){-1, 2, 2, -2, 1, -2, -1, 1, -1, 2, 0, 1,
                      -1, 2, 2, 1, 1, 1, -1, 0, 0, 1, 2, 1},
     NULL,
     (const double[]){-9, -2, 2, 2, -1, 0, -1, 1, -6, 9, 0, -2, 4, 5, -8, 0, -1, 2, 3, 0,
                      3, 0, 2, 1, -5, 0, 0, 1, 3, -3, 4, 0, 4, 1, -2, 4, -4, 6, -3, 0,
                      3, 4, 0, -2, -1, 1, 6, 4, 0, 3, 3, -2, 0, -1, -1, 1, 5, 4, 6, 3,
                      -5, -4, 6, -1, 3, 1, 1, -1, -4, 6, -4, 2, 0, 5, -6, 8, 1, -2, 2, 0,
                      -1, 2, -2, 2, -5, 5, 0, -1, 2, -2, 2, 1, -4, -1, 2, 2, -1, 0, 2, -4,
                      -1, -4, -1, 2, 1, -1, 0, 1, -4, -2, -1, 0, -1, 1, 1, -1, 2, 1, -2, -2},
     (const double[]){-2, 0, 0, 1, -2, 2, 2, -2, -1, 0, 0, -2, -2, -2, 2, -1, -1, 2, -2, 1,
                      0, 0, 1, 0, 0, 0, 0, 0, 1, 1, 1, -1, -1, -1, -2, -2, 0, -2, 1, -2,
                      -2, 2, 2, 0, -2, -2, 1, -2, 0, -1, 2, 0, 2, 2, 1, 2, 0, -1, 2, -1,
                      1, 2, 1, 1, -1, 0, 2, 2, -1, 0, 0, -2, -2, 2, 1, 2, -1, -2, -2, 2,
                      0, -1, 0, -2, -1, -1, 1, 0, -2, -2, 2, -1, 2, 2, 2, -2, -1, 2, -1, -2,
                      0, 0, 0, 1, 1, 1, -2, 2, 1, 2, 2, 2, 1, -2, 1, 2, -1, -2, -2, 1},
     (const double[]){-4, -2, -13, 6, -12, -6, -2, -1, 3, 0, 1, 6, 2, 7, -2, -4, -5, -5, 0, 5,
                      4, 0, -3, 1, 2, -1, -1, -2, 5, -5, 1, -3, -3, 3, -3, 5, 6, 8, 4, -1,
                      0, 0, 2, 6, -4, 3, -1, 0},
     (const double[]){2, 3, -12, 5, -7, -2, -5, 8, -14, 2, -2, -1,
                      5, -6, 6, -10, -4, 9, 3, 1, -5, -9, 7, -17},
     NULL},
};

/* Case _i / 2 in float64 (even _i) or float32: y and the three gradients. */
START_TEST(test_torch_values)
{
    const known_case *k = &known[_i / 2];
    nb_dtype dt = _i % 2 ? NB_F32 : NB_F64;
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *x = tst_make(ctx, dt, 4, k->xs, k->x), *w = tst_make(ctx, dt, 4, k->ws, k->w);
    int64_t bs[] = {k->ys[1]};
    nb_tensor *b = k->b ? tst_make(ctx, dt, 1, bs, k->b) : NULL;
    nb_tensor *r = tst_make(ctx, dt, 4, k->ys, k->r);
    nb_requires_grad(x, true);
    nb_requires_grad(w, true);
    if (b)
        nb_requires_grad(b, true);
    nb_tensor *y = nb_conv_transpose2d(ctx, x, w, b, &k->opts);
    ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
    tst_assert_values(y, 4, k->ys, k->y, 0);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, r))), NB_OK);
    tst_assert_values(x->grad, 4, k->xs, k->dx, 0);
    tst_assert_values(w->grad, 4, k->ws, k->dw, 0);
    if (b)
        tst_assert_values(b->grad, 1, bs, k->db, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- the direct reference ------------------------------------------------ */

typedef struct ref_case {
    int64_t xs[4], ws[4];
    nb_conv_transpose_opts opts;
    bool bias;
} ref_case;

/* Odd sizes, and batches over one group of NB_BATCH_GROUP examples. */
static const ref_case refs[] = {
    {{3, 3, 5, 4}, {3, 2, 3, 2}, {.stride = {2, 3}, .padding = {2, 1}, .output_padding = {1, 2}}, true},
    {{2, 6, 3, 5}, {6, 1, 2, 3}, {.groups = 3, .dilation = {3, 2}, .padding = {1, 2}}, true},
    {{17, 2, 4, 3}, {2, 3, 1, 4}, {.stride = {3, 1}, .output_padding = {2, 0}}, false},
    {{35, 4, 3, 3}, {4, 2, 3, 3}, {.stride = {2, 2}, .padding = {1, 1}, .groups = 2,
                                   .output_padding = {1, 1}}, true},
};

static int64_t convt_size(int64_t n, int s, int p, int d, int64_t k, int op)
{
    s = s ? s : 1;
    d = d ? d : 1;
    return (n - 1) * s - 2 * p + d * (k - 1) + op + 1;
}

/* y[n][g og + o][iy sh - ph + i dh][ix sw - pw + j dw] += x[n][g cg + c][iy][ix]
 * w[g cg + c][o][i][j] for every term inside y, plus b; dx, dw, db the
 * same terms times dy. */
static void ref_convt(const ref_case *rc, const int64_t *ys, const double *x, const double *w,
                      const double *b, double *y, const double *dy, double *dx, double *dw,
                      double *db)
{
    const nb_conv_transpose_opts *o = &rc->opts;
    int64_t N = rc->xs[0], C = rc->xs[1], H = rc->xs[2], W = rc->xs[3];
    int64_t og = rc->ws[1], kh = rc->ws[2], kw = rc->ws[3], G = o->groups ? o->groups : 1;
    int64_t O = og * G, oh = ys[2], ow = ys[3], cg = C / G;
    int sh = o->stride[0] ? o->stride[0] : 1, sw = o->stride[1] ? o->stride[1] : 1;
    int dh = o->dilation[0] ? o->dilation[0] : 1, dwl = o->dilation[1] ? o->dilation[1] : 1;
    for (int64_t n = 0; n < N; n++)
        for (int64_t q = 0; q < O * oh * ow; q++) {
            y[n * O * oh * ow + q] = b ? b[q / (oh * ow)] : 0;
            if (db)
                db[q / (oh * ow)] += dy[n * O * oh * ow + q];
        }
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t oc = 0; oc < og; oc++)
                for (int64_t i = 0; i < kh; i++)
                    for (int64_t j = 0; j < kw; j++)
                        for (int64_t iy = 0; iy < H; iy++)
                            for (int64_t ix = 0; ix < W; ix++) {
                                int64_t yy = iy * sh - o->padding[0] + i * dh;
                                int64_t yx = ix * sw - o->padding[1] + j * dwl;
                                if (yy < 0 || yy >= oh || yx < 0 || yx >= ow)
                                    continue;
                                int64_t xi = ((n * C + c) * H + iy) * W + ix;
                                int64_t wi = ((c * og + oc) * kh + i) * kw + j;
                                int64_t yi = ((n * O + c / cg * og + oc) * oh + yy) * ow + yx;
                                y[yi] += x[xi] * w[wi];
                                dx[xi] += dy[yi] * w[wi];
                                dw[wi] += dy[yi] * x[xi];
                            }
}

START_TEST(test_matches_reference)
{
    const ref_case *rc = &refs[_i];
    nb_ctx *ctx = nb_ctx_new();
    nb_rng rng;
    nb_rng_seed(&rng, 11 + (uint64_t)_i);
    int64_t G = rc->opts.groups ? rc->opts.groups : 1, bs[] = {rc->ws[1] * G};
    int64_t ys[] = {rc->xs[0], bs[0],
                    convt_size(rc->xs[2], rc->opts.stride[0], rc->opts.padding[0],
                               rc->opts.dilation[0], rc->ws[2], rc->opts.output_padding[0]),
                    convt_size(rc->xs[3], rc->opts.stride[1], rc->opts.padding[1],
                               rc->opts.dilation[1], rc->ws[3], rc->opts.output_padding[1])};
    nb_tensor *x = nb_tensor_new(ctx, NB_F64, 4, rc->xs), *w = nb_tensor_new(ctx, NB_F64, 4, rc->ws);
    nb_tensor *b = rc->bias ? nb_tensor_new(ctx, NB_F64, 1, bs) : NULL;
    nb_tensor *r = nb_tensor_new(ctx, NB_F64, 4, ys);
    nb_fill_uniform(x, &rng, -1, 1);
    nb_fill_uniform(w, &rng, -1, 1);
    if (b)
        nb_fill_uniform(b, &rng, -1, 1);
    nb_fill_uniform(r, &rng, -1, 1);
    nb_requires_grad(x, true);
    nb_requires_grad(w, true);
    if (b)
        nb_requires_grad(b, true);
    nb_tensor *y = nb_conv_transpose2d(ctx, x, w, b, &rc->opts);
    ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, r))), NB_OK);
    nb_tensor *ry = nb_tensor_new(ctx, NB_F64, 4, ys), *rdx = nb_tensor_new(ctx, NB_F64, 4, rc->xs);
    nb_tensor *rdw = nb_tensor_new(ctx, NB_F64, 4, rc->ws), *rdb = nb_tensor_new(ctx, NB_F64, 1, bs);
    ref_convt(rc, ys, x->data, w->data, b ? b->data : NULL, ry->data, r->data, rdx->data,
              rdw->data, rdb->data);
    tst_assert_values(y, 4, ys, ry->data, 1e-12);
    tst_assert_values(x->grad, 4, rc->xs, rdx->data, 1e-12);
    tst_assert_values(w->grad, 4, rc->ws, rdw->data, 1e-11);
    if (b)
        tst_assert_values(b->grad, 1, bs, rdb->data, 1e-11);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- threads ------------------------------------------------------------- */

/* y and the gradients of a batch of 40 (three batch groups, the last
 * short), f32 and f64 in turn, on the given thread count. */
static void run_threads(nb_dtype dt, int threads, nb_tensor **out, nb_ctx *keep)
{
    int old = nb_set_num_threads(threads);
    nb_ctx *ctx = nb_ctx_new();
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    int64_t xs[] = {40, 4, 9, 7}, ws[] = {4, 3, 3, 3}, bs[] = {6};
    nb_tensor *x = nb_tensor_new(ctx, dt, 4, xs), *w = nb_tensor_new(ctx, dt, 4, ws);
    nb_tensor *b = nb_tensor_new(ctx, dt, 1, bs);
    nb_fill_uniform(x, &rng, -1, 1);
    nb_fill_uniform(w, &rng, -1, 1);
    nb_fill_uniform(b, &rng, -1, 1);
    nb_requires_grad(x, true);
    nb_requires_grad(w, true);
    nb_requires_grad(b, true);
    nb_conv_transpose_opts o = {.stride = {2, 2}, .padding = {1, 0}, .output_padding = {1, 1},
                                .groups = 2};
    nb_tensor *y = nb_conv_transpose2d(ctx, x, w, b, &o);
    ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
    nb_tensor *r = nb_tensor_new(ctx, dt, y->ndim, y->shape);
    nb_fill_uniform(r, &rng, -1, 1);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, r))), NB_OK);
    out[0] = nb_tensor_copy(keep, y, dt);
    out[1] = nb_tensor_copy(keep, x->grad, dt);
    out[2] = nb_tensor_copy(keep, w->grad, dt);
    out[3] = nb_tensor_copy(keep, b->grad, dt);
    nb_ctx_free(ctx);
    nb_set_num_threads(old);
}

START_TEST(test_threads_same_bits)
{
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    nb_ctx *keep = nb_ctx_new();
    nb_tensor *one[4], *two[4];
    run_threads(dt, 1, one, keep);
    run_threads(dt, 2, two, keep);
    const char *what[] = {"y", "dx", "dw", "db"};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(one[i]->numel, two[i]->numel);
        ck_assert_msg(memcmp(one[i]->data, two[i]->data,
                             (size_t)one[i]->numel * nb_dtype_size(dt)) == 0,
                      "%s differs on 1 and 2 threads", what[i]);
    }
    nb_ctx_free(keep);
}
END_TEST

/* ---- the layer ------------------------------------------------------------ */

/* A model file's conv_transpose2d: PyTorch's weight layout [C, O / groups,
 * kh, kw] and state_dict names, its init bound 1 / sqrt(fan_in) with fan_in
 * = O / groups kh kw (weight.shape[1] times the kernel), and its forward is
 * the op's with the file's settings, then the activation. */
START_TEST(test_layer)
{
    static const char json[] =
        "{\"input\": [4, 5, 3], \"layers\": [{\"name\": \"up\", \"type\": \"conv_transpose2d\","
        " \"out_channels\": 6, \"kernel_size\": [3, 2], \"stride\": 2, \"padding\": [1, 0],"
        " \"output_padding\": 1, \"groups\": 2, \"dilation\": [1, 2], \"activation\": \"tanh\"}]}";
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = nb_model_parse(ctx, json, strlen(json), "t.json", NB_F64);
    ck_assert_msg(m != NULL, "%s", nb_errmsg(ctx));
    int64_t out[NB_MAX_DIMS];
    /* oh = 4 * 2 - 2 + 2 + 1 + 1 = 10, ow = 2 * 2 + 2 + 1 + 1 = 8 */
    ck_assert_int_eq(nb_model_output_shape(m, out), 3);
    ck_assert(out[0] == 6 && out[1] == 10 && out[2] == 8);
    nb_tensor *w = nb_model_find(m, "up.weight"), *b = nb_model_find(m, "up.bias");
    ck_assert(w && b);
    ck_assert(w->ndim == 4 && w->shape[0] == 4 && w->shape[1] == 3 && w->shape[2] == 3 &&
              w->shape[3] == 2);
    ck_assert(b->ndim == 1 && b->shape[0] == 6);
    ck_assert_int_eq(nb_model_num_params(m, true), 4 * 3 * 3 * 2 + 6);
    double bound = 1 / sqrt(3.0 * 3 * 2), wmax = 0, bmax = 0;
    for (int64_t i = 0; i < w->numel; i++)
        wmax = fmax(wmax, fabs(nb_get(w, i)));
    for (int64_t i = 0; i < b->numel; i++)
        bmax = fmax(bmax, fabs(nb_get(b, i)));
    ck_assert(wmax <= bound && wmax > 0.7 * bound && bmax <= bound);

    nb_rng rng;
    nb_rng_seed(&rng, 2);
    nb_tensor *x = nb_tensor_new(ctx, NB_F64, 4, (int64_t[]){3, 4, 5, 3});
    nb_fill_uniform(x, &rng, -1, 1);
    nb_tensor *y = nb_model_forward(ctx, m, x);
    ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
    nb_conv_transpose_opts o = {.stride = {2, 2}, .padding = {1, 0}, .output_padding = {1, 1},
                                .groups = 2, .dilation = {1, 2}};
    nb_tensor *ref = nb_tanh(ctx, nb_conv_transpose2d(ctx, x, w, b, &o));
    ck_assert_msg(ref != NULL, "%s", nb_errmsg(ctx));
    tst_assert_values(y, 4, (int64_t[]){3, 6, 10, 8}, ref->data, 0);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- errors -------------------------------------------------------------- */

START_TEST(test_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){2, 4, 5, 5});
    nb_tensor *w = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){4, 3, 3, 3});
    nb_tensor *x3 = nb_tensor_new(ctx, NB_F32, 3, (int64_t[]){4, 5, 5});
    nb_tensor *w3 = nb_tensor_new(ctx, NB_F32, 3, (int64_t[]){4, 3, 3});
    nb_tensor *w5 = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){5, 3, 3, 3});
    nb_tensor *b4 = nb_tensor_new(ctx, NB_F32, 1, (int64_t[]){4});
    nb_tensor *w64 = nb_tensor_new(ctx, NB_F64, 4, (int64_t[]){4, 3, 3, 3});
    ck_assert_ptr_null(nb_conv_transpose2d(ctx, x3, w, NULL, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "conv_transpose2d: input [4, 5, 5] must be [N, C, H, W]");
    ck_assert_ptr_null(nb_conv_transpose2d(ctx, x, w3, NULL, NULL));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "conv_transpose2d: weight [4, 3, 3] must be [C, O/groups, kh, kw]");
    ck_assert_ptr_null(nb_conv_transpose2d(ctx, x, w5, NULL, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "conv_transpose2d: input [2, 4, 5, 5] has 4 channels, "
                                      "but in_channels is 5 (weight [5, 3, 3, 3])");
    ck_assert_ptr_null(nb_conv_transpose2d(ctx, x, w, NULL, &(nb_conv_transpose_opts){.groups = 3}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv_transpose2d: in_channels 4 is not divisible by groups 3");
    ck_assert_ptr_null(nb_conv_transpose2d(ctx, x, w, b4, &(nb_conv_transpose_opts){.groups = 2}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv_transpose2d: bias [4] does not match weight "
                                      "[4, 3, 3, 3] and groups 2: expected [6]");
    ck_assert_ptr_null(nb_conv_transpose2d(ctx, x, w, NULL,
                                           &(nb_conv_transpose_opts){.output_padding = {0, 1}}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv_transpose2d: output_padding [0, 1] must be smaller "
                                      "than stride 1 or dilation 1");
    ck_assert_ptr_null(nb_conv_transpose2d(
        ctx, x, w, NULL, &(nb_conv_transpose_opts){.stride = {2, 2}, .output_padding = {2, 1}}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv_transpose2d: output_padding [2, 1] must be smaller "
                                      "than stride 2 or dilation 1");
    ck_assert_ptr_null(nb_conv_transpose2d(ctx, x, w, NULL,
                                           &(nb_conv_transpose_opts){.padding = {7, 0}}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv_transpose2d: input [2, 4, 5, 5] and weight "
                                      "[4, 3, 3, 3] give an output of -7x7: padding [7, 0] is too large");
    ck_assert_ptr_null(nb_conv_transpose2d(ctx, x, w, NULL,
                                           &(nb_conv_transpose_opts){.stride = {1, -1}}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv_transpose2d: stride [1, -1] is negative");
    ck_assert_ptr_null(nb_conv_transpose2d(ctx, x, w, NULL,
                                           &(nb_conv_transpose_opts){.padding = {-1, -1}}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv_transpose2d: padding -1 is negative");
    ck_assert_ptr_null(nb_conv_transpose2d(ctx, x, w, NULL,
                                           &(nb_conv_transpose_opts){.dilation = {-2, 1}}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv_transpose2d: dilation [-2, 1] is negative");
    ck_assert_ptr_null(nb_conv_transpose2d(ctx, x, w, NULL,
                                           &(nb_conv_transpose_opts){.output_padding = {-1, 0}}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv_transpose2d: output_padding [-1, 0] is negative");
    ck_assert_ptr_null(nb_conv_transpose2d(ctx, x, w, NULL, &(nb_conv_transpose_opts){.groups = -1}));
    tst_assert_error(ctx, NB_ERR_ARG, "conv_transpose2d: groups -1 is negative");
    ck_assert_ptr_null(nb_conv_transpose2d(ctx, x, w64, NULL, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "conv_transpose2d: input 1 is f64 but input 0 is f32");
    nb_clear_error(ctx); /* a NULL input keeps an earlier error */
    ck_assert_ptr_null(nb_conv_transpose2d(ctx, NULL, w, NULL, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "conv_transpose2d: input 0 is NULL");
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_conv_transpose(void)
{
    Suite *s = suite_create("conv_transpose");
    TCase *tc = tcase_create("conv_transpose2d");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_torch_values, 0, 2 * (int)(sizeof known / sizeof *known));
    tcase_add_loop_test(tc, test_matches_reference, 0, (int)(sizeof refs / sizeof *refs));
    tcase_add_loop_test(tc, test_threads_same_bits, 0, 2);
    tcase_add_test(tc, test_layer);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}
