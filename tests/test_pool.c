/* test_pool.c - max_pool2d, avg_pool2d, global_avg_pool2d. */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A tensor for max-pooling: a random permutation of n evenly spaced levels
 * in [-1, 1] (spacing 2/n), each moved by noise of at most a quarter of the
 * spacing, so any two values differ by at least 1/n > 2e-3 (n <= 500).
 * That keeps every window's maximum unique and far from the finite
 * difference step, and float32 keeps the same argmax as float64. */
static nb_tensor *distinct_tensor(tst_env *e, nb_rng *rng, int ndim, const int64_t *shape)
{
    nb_tensor *t = tst_tensor(e, rng, ndim, shape);
    int64_t n = t->numel;
    ck_assert_int_le(n, 500);
    int64_t perm[500];
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = (int64_t)nb_rng_below(rng, (uint64_t)i + 1), tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
    double step = 2.0 / (double)n;
    for (int64_t i = 0; i < n; i++) {
        double noise = (nb_rng_uniform(rng) - 0.5) * 0.5 * step;
        nb_set(t, i, -1.0 + ((double)perm[i] + 0.5) * step + noise);
    }
    return t;
}

static void setup_max_even(tst_env *e, nb_rng *rng)
{
    int64_t s[] = {2, 3, 6, 8};
    distinct_tensor(e, rng, 4, s);
}

static void setup_max_odd(tst_env *e, nb_rng *rng)
{
    int64_t s[] = {2, 2, 7, 5};
    distinct_tensor(e, rng, 4, s);
}

static void setup_max_rect(tst_env *e, nb_rng *rng)
{
    int64_t s[] = {1, 3, 5, 7};
    distinct_tensor(e, rng, 4, s);
}

static void setup_even(tst_env *e, nb_rng *rng)
{
    int64_t s[] = {2, 3, 6, 8};
    tst_tensor(e, rng, 4, s);
}

static void setup_odd(tst_env *e, nb_rng *rng)
{
    int64_t s[] = {2, 2, 7, 5};
    tst_tensor(e, rng, 4, s);
}

static void setup_gap(tst_env *e, nb_rng *rng)
{
    int64_t s[] = {2, 3, 4, 5};
    tst_tensor(e, rng, 4, s);
}

static const nb_pool_opts k2 = {{2, 2}, {0, 0}, {0, 0}};
static const nb_pool_opts k3s2p1 = {{3, 3}, {2, 2}, {1, 1}};
static const nb_pool_opts k23s12 = {{2, 3}, {1, 2}, {0, 0}};

static nb_tensor *fwd_max_k2(nb_ctx *ctx, tst_env *e) { return nb_max_pool2d(ctx, e->t[0], &k2); }
static nb_tensor *fwd_max_k3s2p1(nb_ctx *ctx, tst_env *e)
{
    return nb_max_pool2d(ctx, e->t[0], &k3s2p1);
}
static nb_tensor *fwd_max_k23s12(nb_ctx *ctx, tst_env *e)
{
    return nb_max_pool2d(ctx, e->t[0], &k23s12);
}
static nb_tensor *fwd_avg_k2(nb_ctx *ctx, tst_env *e) { return nb_avg_pool2d(ctx, e->t[0], &k2); }
static nb_tensor *fwd_avg_k3s2p1(nb_ctx *ctx, tst_env *e)
{
    return nb_avg_pool2d(ctx, e->t[0], &k3s2p1);
}
static nb_tensor *fwd_gap(nb_ctx *ctx, tst_env *e) { return nb_global_avg_pool2d(ctx, e->t[0]); }
/* Pooling an op's output: the gradient buffer is fresh, zeroed by the
 * pooling's backward itself. */
static nb_tensor *fwd_max_step(nb_ctx *ctx, tst_env *e)
{
    return nb_max_pool2d(ctx, nb_scale(ctx, e->t[0], 1.5), &k3s2p1);
}
static nb_tensor *fwd_avg_step(nb_ctx *ctx, tst_env *e)
{
    return nb_avg_pool2d(ctx, nb_scale(ctx, e->t[0], 1.5), &k3s2p1);
}

const tst_case tst_cases_pool[] = {
    {"max_pool2d 2x2 [2,3,6,8]", setup_max_even, fwd_max_k2},
    {"max_pool2d 3x3 stride 2 padding 1 [2,2,7,5]", setup_max_odd, fwd_max_k3s2p1},
    {"max_pool2d 2x3 stride [1,2] [1,3,5,7]", setup_max_rect, fwd_max_k23s12},
    {"avg_pool2d 2x2 [2,3,6,8]", setup_even, fwd_avg_k2},
    {"avg_pool2d 3x3 stride 2 padding 1 [2,2,7,5]", setup_odd, fwd_avg_k3s2p1},
    {"global_avg_pool2d [2,3,4,5]", setup_gap, fwd_gap},
    {"max_pool2d 3x3 stride 2 padding 1 of 1.5 x", setup_max_odd, fwd_max_step},
    {"avg_pool2d 3x3 stride 2 padding 1 of 1.5 x", setup_odd, fwd_avg_step},
    {0},
};

/* ---- known values, by hand ---------------------------------------------- */

static const double grid4[] = {1, 3, 2, 4,
                               5, 6, 1, 2,
                               7, 2, 9, 1,
                               3, 4, 5, 8};

/* Backpropagates sum(y * w) for a literal w of y's shape. */
static void backward_weighted(nb_ctx *ctx, nb_tensor *y, const double *w)
{
    ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
    nb_tensor *wt = tst_make(ctx, y->dtype, y->ndim, y->shape, w);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, wt))), NB_OK);
}

/* The 4x4 max-pool 2x2; the gradient goes to the argmax of each window. */
START_TEST(test_max_values)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {1, 1, 4, 4}, so[] = {1, 1, 2, 2};
    nb_tensor *x = tst_make(ctx, _i ? NB_F32 : NB_F64, 4, s, grid4);
    nb_requires_grad(x, true);
    nb_tensor *y = nb_max_pool2d(ctx, x, &k2);
    tst_assert_values(y, 4, so, (double[]){6, 4, 7, 9}, 0);
    backward_weighted(ctx, y, (double[]){1, 2, 3, 4});
    tst_assert_values(x->grad, 4, s, (double[]){0, 0, 0, 2,
                                                0, 1, 0, 0,
                                                3, 0, 4, 0,
                                                0, 0, 0, 0}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* 3x3 windows with stride 1 overlap: all four share the 9, whose gradient
 * is the sum of the four weights. */
START_TEST(test_max_overlap)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {1, 1, 4, 4}, so[] = {1, 1, 2, 2};
    nb_tensor *x = tst_make(ctx, NB_F64, 4, s, grid4);
    nb_requires_grad(x, true);
    nb_pool_opts o = {{3, 3}, {1, 1}, {0, 0}};
    nb_tensor *y = nb_max_pool2d(ctx, x, &o);
    tst_assert_values(y, 4, so, (double[]){9, 9, 9, 9}, 0);
    backward_weighted(ctx, y, (double[]){1, 2, 3, 4});
    tst_assert_values(x->grad, 4, s, (double[]){0, 0, 0, 0,
                                                0, 0, 0, 0,
                                                0, 0, 10, 0,
                                                0, 0, 0, 0}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* 2x2 stride 2 padding 1 on the 4x4 gives 3x3; on the negated grid, zero
 * padding would show as 0 at the borders, -inf padding never wins. */
START_TEST(test_max_padding)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {1, 2, 4, 4}, so[] = {1, 2, 3, 3};
    double v[32];
    for (int i = 0; i < 16; i++) {
        v[i] = grid4[i];
        v[16 + i] = -grid4[i];
    }
    nb_tensor *x = tst_make(ctx, _i ? NB_F32 : NB_F64, 4, s, v);
    nb_pool_opts o = {{2, 2}, {2, 2}, {1, 1}};
    tst_assert_values(nb_max_pool2d(ctx, x, &o), 4, so,
                      (double[]){1, 3, 4, 7, 9, 2, 3, 5, 8,
                                 -1, -2, -4, -5, -1, -1, -3, -4, -8}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* Ties go to the first maximum in row-major window order, as PyTorch's CPU
 * kernel: [[1, 7], [7, 2]] routes to (0, 1), an all-equal window to (0, 0). */
START_TEST(test_max_ties)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {1, 1, 2, 4}, so[] = {1, 1, 1, 2};
    nb_tensor *x = tst_make(ctx, NB_F32, 4, s, (double[]){1, 7, 3, 3,
                                                         7, 2, 3, 3});
    nb_requires_grad(x, true);
    nb_tensor *y = nb_max_pool2d(ctx, x, &k2);
    tst_assert_values(y, 4, so, (double[]){7, 3}, 0);
    backward_weighted(ctx, y, (double[]){1, 2});
    tst_assert_values(x->grad, 4, s, (double[]){0, 1, 2, 0,
                                                0, 0, 0, 0}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* A NaN in a window is its maximum, as in PyTorch. */
START_TEST(test_max_nan)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {1, 1, 2, 2};
    nb_tensor *x = tst_make(ctx, NB_F64, 4, s, (double[]){1, NAN, 5, 2});
    nb_tensor *y = nb_max_pool2d(ctx, x, &k2);
    ck_assert_ptr_nonnull(y);
    ck_assert(isnan(nb_get(y, 0)));
    nb_ctx_free(ctx);
}
END_TEST

/* NaN and infinities, as PyTorch 1.13 pools them (printed by torch once).
 * Max-pooling takes a NaN in its window as the maximum (the last NaN in
 * row-major order, where the gradient goes), else the first largest value;
 * averages sum every value.  One 4x4 plane in 64 x 40 copies, past the
 * threads' threshold: _i runs float32 and float64 (_i % 2) on 1 and 2
 * threads (_i / 2), and the plane's windows take both the vectorised rows
 * (inside the plane) and the clipped windows (on the padding). */
START_TEST(test_nonfinite)
{
    const double inf = INFINITY, nan = NAN;
    const double plane[16] = {1, nan, 5, 2, nan, 3, 0, inf, -inf, -inf, 4, 4, -inf, -inf, nan, 1};
    static const nb_pool_opts k2s1 = {{2, 2}, {1, 1}, {0, 0}}, k3s1p1 = {{3, 3}, {1, 1}, {1, 1}};
    const struct {
        const char *name;
        bool max;
        const nb_pool_opts *opts;
        int64_t side;             /* of the output plane */
        double y[16], dx[16];     /* for dy = 1, 2, ... over the output plane */
    } cases[] = {
        {"max_pool2d 2x2", true, &k2, 2, {nan, inf, -inf, nan},
         {0, 0, 0, 0, 1, 0, 0, 2, 3, 0, 0, 0, 0, 0, 4, 0}},
        {"max_pool2d 2x2 stride 1", true, &k2s1, 3, {nan, nan, inf, nan, 4, inf, -inf, nan, nan},
         {0, 2, 0, 0, 5, 0, 0, 9, 7, 0, 5, 0, 0, 0, 17, 0}},
        {"max_pool2d 3x3 stride 1 padding 1", true, &k3s1p1, 4,
         {nan, nan, nan, inf, nan, nan, nan, inf, nan, nan, nan, nan, -inf, nan, nan, nan},
         {0, 10, 0, 0, 23, 0, 0, 12, 13, 0, 0, 0, 0, 0, 78, 0}},
        {"avg_pool2d 2x2", false, &k2, 2, {nan, inf, -inf, nan},
         {0.25, 0.25, 0.5, 0.5, 0.25, 0.25, 0.5, 0.5, 0.75, 0.75, 1, 1, 0.75, 0.75, 1, 1}},
        {"avg_pool2d 3x3 stride 1 padding 1", false, &k3s1p1, 4,
         {nan, nan, nan, inf, nan, nan, nan, inf, nan, nan, nan, nan, -inf, nan, nan, nan},
         {14.0 / 9, 24.0 / 9, 30.0 / 9, 22.0 / 9, 33.0 / 9, 54.0 / 9, 63.0 / 9, 45.0 / 9,
          57.0 / 9, 90.0 / 9, 99.0 / 9, 69.0 / 9, 46.0 / 9, 72.0 / 9, 78.0 / 9, 54.0 / 9}},
    };
    nb_dtype dt = _i % 2 ? NB_F64 : NB_F32;
    int old = nb_set_num_threads(1 + _i / 2);
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {64, 40, 4, 4};
    double *xv = malloc(sizeof *xv * 64 * 40 * 16);
    for (int i = 0; i < 64 * 40 * 16; i++)
        xv[i] = plane[i % 16];
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        nb_tensor *x = tst_make(ctx, dt, 4, s, xv);
        nb_requires_grad(x, true);
        nb_tensor *y = cases[k].max ? nb_max_pool2d(ctx, x, cases[k].opts)
                                    : nb_avg_pool2d(ctx, x, cases[k].opts);
        ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
        int64_t p = cases[k].side * cases[k].side;
        ck_assert_int_eq(y->numel, 64 * 40 * p);
        nb_tensor *r = nb_tensor_new(ctx, dt, 4, y->shape);
        for (int64_t i = 0; i < r->numel; i++)
            nb_set(r, i, (double)(i % p + 1));
        ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, r))), NB_OK);
        char what[96];
        snprintf(what, sizeof what, "%s %s output", cases[k].name, nb_dtype_name(dt));
        tst_assert_pattern(y, cases[k].y, p, 0, what);
        snprintf(what, sizeof what, "%s %s gradient", cases[k].name, nb_dtype_name(dt));
        tst_assert_pattern(x->grad, cases[k].dx, 16, dt == NB_F32 ? 1e-5 : 1e-12, what);
        nb_graph_reset(ctx);
    }
    /* global_avg_pool2d: the plane's sum, and a NaN or infinite dy spreads
     * over its plane. */
    int64_t gs[] = {1, 3, 2, 2}, go[] = {1, 3};
    nb_tensor *g = tst_make(ctx, dt, 4, gs, (double[]){1, nan, 3, 4, 1, inf, 3, 4, 1, inf, -inf, 4});
    nb_requires_grad(g, true);
    nb_tensor *gy = nb_global_avg_pool2d(ctx, g);
    tst_assert_values(gy, 2, go, (double[]){nan, inf, nan}, 0);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, gy, tst_make(ctx, dt, 2, go,
                                                                              (double[]){1, nan, inf})))),
                     NB_OK);
    tst_assert_values(g->grad, 4, gs,
                      (double[]){0.25, 0.25, 0.25, 0.25, nan, nan, nan, nan, inf, inf, inf, inf}, 0);
    free(xv);
    nb_ctx_free(ctx);
    nb_set_num_threads(old);
}
END_TEST

START_TEST(test_avg_values)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {1, 1, 4, 4}, so[] = {1, 1, 2, 2};
    nb_tensor *x = tst_make(ctx, _i ? NB_F32 : NB_F64, 4, s, grid4);
    double tol = _i ? 1e-6 : 1e-12;
    nb_requires_grad(x, true);
    /* (1+3+5+6)/4, (2+4+1+2)/4, (7+2+3+4)/4, (9+1+5+8)/4 */
    tst_assert_values(nb_avg_pool2d(ctx, x, &k2), 4, so, (double[]){3.75, 2.25, 4, 5.75}, tol);
    /* 3x3 stride 2 padding 1: windows over rows and columns [-1, 1] and
     * [1, 3]; the padded zeros count, so every sum is divided by 9. */
    nb_tensor *y = nb_avg_pool2d(ctx, x, &k3s2p1);
    tst_assert_values(y, 4, so, (double[]){15.0 / 9, 18.0 / 9, 27.0 / 9, 38.0 / 9}, tol);
    /* d sum(y) / dx = (windows over x) / 9: row and column 1 are in two. */
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, y)), NB_OK);
    tst_assert_values(x->grad, 4, s, (double[]){1.0 / 9, 2.0 / 9, 1.0 / 9, 1.0 / 9,
                                                2.0 / 9, 4.0 / 9, 2.0 / 9, 2.0 / 9,
                                                1.0 / 9, 2.0 / 9, 1.0 / 9, 1.0 / 9,
                                                1.0 / 9, 2.0 / 9, 1.0 / 9, 1.0 / 9}, tol);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_global_avg_values)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {1, 2, 2, 2}, so[] = {1, 2};
    nb_tensor *x = tst_make(ctx, _i ? NB_F32 : NB_F64, 4, s,
                            (double[]){1, 2, 3, 4, 10, 20, 30, 50});
    nb_requires_grad(x, true);
    nb_tensor *y = nb_global_avg_pool2d(ctx, x);
    tst_assert_values(y, 2, so, (double[]){2.5, 27.5}, 0);
    backward_weighted(ctx, y, (double[]){1, 2});
    tst_assert_values(x->grad, 4, s, (double[]){0.25, 0.25, 0.25, 0.25, 0.5, 0.5, 0.5, 0.5}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* Output sizes round down; stride 0 means the kernel. */
START_TEST(test_output_sizes)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s5[] = {1, 1, 5, 5}, s7[] = {2, 3, 7, 7};
    nb_tensor *x5 = nb_tensor_new(ctx, NB_F32, 4, s5);
    nb_tensor *x7 = nb_tensor_new(ctx, NB_F32, 4, s7);
    nb_tensor *y = nb_max_pool2d(ctx, x5, &k2);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(y->shape[2], 2);
    ck_assert_int_eq(y->shape[3], 2);
    y = nb_avg_pool2d(ctx, x7, &k3s2p1);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(y->ndim, 4);
    ck_assert_int_eq(y->shape[0], 2);
    ck_assert_int_eq(y->shape[1], 3);
    ck_assert_int_eq(y->shape[2], 4);
    ck_assert_int_eq(y->shape[3], 4);
    nb_pool_opts o = {{3, 2}, {0, 0}, {0, 1}}; /* (7 - 3)/3 + 1, (7 + 2 - 2)/2 + 1 */
    y = nb_max_pool2d(ctx, x7, &o);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(y->shape[2], 2);
    ck_assert_int_eq(y->shape[3], 4);
    nb_ctx_free(ctx);
}
END_TEST


/* Max-pooling's kernels (rows of windows for the baseline and AVX2, whole
 * planes of 2x2 windows for AVX-512) against plain loops: the values and
 * the gradient, exactly, for each variant (_i / 3) and three geometries
 * (_i % 3): 2x2 stride 2 on odd planes 18 windows wide (a vector of 16 and
 * a masked rest), 3x3 stride 1, 3x2 stride (2, 1) padded; a few NaN, which
 * win their windows (the last one when several do). */
START_TEST(test_max_kernels)
{
    static const nb_pool_opts geo[] = {{{2, 2}, {2, 2}, {0, 0}},
                                       {{3, 3}, {1, 1}, {0, 0}},
                                       {{3, 2}, {2, 1}, {1, 1}}};
    const char *old_kernels = nb_cpu_kernels(), *kernels = tst_kernels[_i / 3];
    if (!tst_use_kernels(kernels, "max_pool2d's rows against plain loops"))
        return;
    const nb_pool_opts *o = &geo[_i % 3];
    nb_ctx *ctx = nb_ctx_new();
    int64_t n = 2, c = 3, h = 17, w = 37, s[] = {n, c, h, w};
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, 4, s);
    nb_rng rng;
    nb_rng_seed(&rng, 3 + (uint64_t)_i);
    nb_fill_uniform(x, &rng, -1, 1);
    static const int64_t nans[] = {40, 41, 77, 78, 500, 1001, 1002};
    for (size_t i = 0; i < sizeof nans / sizeof *nans; i++)
        nb_set(x, nans[i], NAN);
    nb_requires_grad(x, true);
    nb_tensor *y = nb_max_pool2d(ctx, x, o);
    ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, y)), NB_OK);
    int kh = o->kernel[0], kw = o->kernel[1], sh = o->stride[0], sw = o->stride[1];
    int ph = o->padding[0], pw = o->padding[1];
    int64_t oh = (h + 2 * ph - kh) / sh + 1, ow = (w + 2 * pw - kw) / sw + 1;
    ck_assert_int_eq(y->shape[2], oh);
    ck_assert_int_eq(y->shape[3], ow);
    double *dx = calloc((size_t)x->numel, sizeof(double));
    for (int64_t p = 0; p < n * c; p++)
        for (int64_t oy = 0; oy < oh; oy++)
            for (int64_t ox = 0; ox < ow; ox++) {
                int64_t best = -1;
                for (int i = 0; i < kh; i++)
                    for (int j = 0; j < kw; j++) {
                        int64_t iy = oy * sh - ph + i, ix = ox * sw - pw + j;
                        if (iy < 0 || iy >= h || ix < 0 || ix >= w)
                            continue;
                        int64_t at = p * h * w + iy * w + ix;
                        double v = nb_get(x, at);
                        if (best < 0 || v > nb_get(x, best) || isnan(v))
                            best = at;
                    }
                double got = nb_get(y, (p * oh + oy) * ow + ox), want = nb_get(x, best);
                ck_assert_msg(got == want || (isnan(got) && isnan(want)),
                              "%s kernels: output (%lld, %lld, %lld) is not its window's max",
                              kernels, (long long)p, (long long)oy, (long long)ox);
                dx[best] += 1;
            }
    for (int64_t i = 0; i < x->numel; i++)
        ck_assert_msg(nb_get(x->grad, i) == dx[i], "%s kernels: dx[%lld] is %g, not %g",
                      kernels, (long long)i, nb_get(x->grad, i), dx[i]);
    free(dx);
    nb_ctx_free(ctx);
    nb_set_cpu_kernels(old_kernels, NULL, 0);
}
END_TEST

/* The argmax is saved only when the op is recorded. */
START_TEST(test_no_grad_records_nothing)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {1, 1, 4, 4};
    nb_tensor *x = tst_make(ctx, NB_F64, 4, s, grid4);
    ck_assert_ptr_nonnull(nb_max_pool2d(ctx, x, &k2));
    ck_assert_int_eq(nb_graph_size(ctx), 0);
    nb_requires_grad(x, true);
    ck_assert_ptr_nonnull(nb_max_pool2d(ctx, x, &k2));
    ck_assert_int_eq(nb_graph_size(ctx), 1);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s2[] = {3, 4}, s4[] = {1, 1, 4, 4}, big[] = {1, 1, 65536, 32769};
    nb_tensor *x2 = nb_tensor_new(ctx, NB_F32, 2, s2);
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, 4, s4);

    ck_assert_ptr_null(nb_max_pool2d(ctx, x2, &k2));
    tst_assert_error(ctx, NB_ERR_ARG, "max_pool2d: input [3, 4] must be [N, C, H, W]");
    ck_assert_ptr_null(nb_global_avg_pool2d(ctx, x2));
    tst_assert_error(ctx, NB_ERR_ARG, "global_avg_pool2d: input [3, 4] must be [N, C, H, W]");
    ck_assert_ptr_null(nb_avg_pool2d(ctx, x, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "avg_pool2d: options are NULL (kernel_size is required)");

    nb_pool_opts o = {{0, 2}, {0, 0}, {0, 0}};
    ck_assert_ptr_null(nb_avg_pool2d(ctx, x, &o));
    tst_assert_error(ctx, NB_ERR_ARG, "avg_pool2d: kernel_size [0, 2] must be at least 1");
    o = (nb_pool_opts){{2, 2}, {1, -1}, {0, 0}};
    ck_assert_ptr_null(nb_max_pool2d(ctx, x, &o));
    tst_assert_error(ctx, NB_ERR_ARG, "max_pool2d: stride [1, -1] is negative");
    o = (nb_pool_opts){{3, 3}, {1, 1}, {2, 0}};
    ck_assert_ptr_null(nb_max_pool2d(ctx, x, &o));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "max_pool2d: padding [2, 0] is more than half of kernel_size 3");
    o = (nb_pool_opts){{2, 2}, {1, 1}, {0, -1}};
    ck_assert_ptr_null(nb_avg_pool2d(ctx, x, &o));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "avg_pool2d: padding [0, -1] is negative");
    o = (nb_pool_opts){{5, 5}, {0, 0}, {0, 0}};
    ck_assert_ptr_null(nb_max_pool2d(ctx, x, &o));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "max_pool2d: kernel_size 5 is larger than its 4x4 input");
    /* The padding counts: 2 rows fit 4 + 2 * 1, 7 columns do not. */
    o = (nb_pool_opts){{2, 7}, {0, 0}, {1, 1}};
    ck_assert_ptr_null(nb_avg_pool2d(ctx, x, &o));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "avg_pool2d: kernel_size [2, 7] is larger than its 4x4 input padded to 6x6");
    o = (nb_pool_opts){{6, 2}, {0, 0}, {1, 1}}; /* 6 = 4 + 2 * 1: one window */
    ck_assert_ptr_nonnull(nb_avg_pool2d(ctx, x, &o));

    /* argmax indices are int32: a plane of 2^31 + 2^16 elements is refused
     * before any element is read (the wrapped buffer is never touched). */
    double dummy = 0;
    nb_tensor *huge = nb_tensor_wrap(ctx, NB_F64, 4, big, &dummy);
    ck_assert_ptr_null(nb_max_pool2d(ctx, huge, &k2));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "max_pool2d: input [1, 1, 65536, 32769] has planes over 2147483647 elements");

    /* A NULL from a failed op keeps that op's message down the chain. */
    nb_clear_error(ctx);
    ck_assert_ptr_null(nb_global_avg_pool2d(ctx, nb_max_pool2d(ctx, x2, &k2)));
    tst_assert_error(ctx, NB_ERR_ARG, "max_pool2d: input [3, 4] must be [N, C, H, W]");
    nb_clear_error(ctx);
    ck_assert_ptr_null(nb_avg_pool2d(ctx, NULL, &k2));
    tst_assert_error(ctx, NB_ERR_ARG, "avg_pool2d: input 0 is NULL");
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_pool(void)
{
    Suite *s = suite_create("pool");
    TCase *tc = tcase_create("pool");
    tcase_add_loop_test(tc, test_max_values, 0, 2);
    tcase_add_test(tc, test_max_overlap);
    tcase_add_loop_test(tc, test_max_padding, 0, 2);
    tcase_add_test(tc, test_max_ties);
    tcase_add_test(tc, test_max_nan);
    tcase_add_loop_test(tc, test_nonfinite, 0, 4);
    tcase_add_loop_test(tc, test_avg_values, 0, 2);
    tcase_add_loop_test(tc, test_global_avg_values, 0, 2);
    tcase_add_test(tc, test_output_sizes);
    tcase_add_test(tc, test_no_grad_records_nothing);
    tcase_add_test(tc, test_errors);
    tcase_add_loop_test(tc, test_max_kernels, 0, 9);
    suite_add_tcase(s, tc);
    return s;
}
