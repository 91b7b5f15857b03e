/* test_linear.c - linear (with and without bias) and matmul. */
#include "harness.h"
#include "internal.h" /* nbi_gemm, nbi_gemm_fixed, nbi_blas_avoid */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Odd sizes, so a transposed leading dimension shows: N = 3, in = 5,
 * out = 4. */
static void setup_linear(tst_env *e, nb_rng *rng)
{
    int64_t sx[] = {3, 5}, sw[] = {4, 5}, sb[] = {4};
    tst_tensor(e, rng, 2, sx);
    tst_tensor(e, rng, 2, sw);
    tst_tensor(e, rng, 1, sb);
}

static void setup_matmul(tst_env *e, nb_rng *rng)
{
    int64_t sa[] = {3, 4}, sb[] = {4, 2};
    tst_tensor(e, rng, 2, sa);
    tst_tensor(e, rng, 2, sb);
}

static nb_tensor *fwd_linear(nb_ctx *ctx, tst_env *e)
{
    return nb_linear(ctx, e->t[0], e->t[1], e->t[2]);
}
static nb_tensor *fwd_linear_nobias(nb_ctx *ctx, tst_env *e)
{
    return nb_linear(ctx, e->t[0], e->t[1], NULL);
}
static nb_tensor *fwd_matmul(nb_ctx *ctx, tst_env *e) { return nb_matmul(ctx, e->t[0], e->t[1]); }

const tst_case tst_cases_linear[] = {
    {"linear [3,5] x [4,5]^T + [4]", setup_linear, fwd_linear},
    {"linear without bias", setup_linear, fwd_linear_nobias},
    {"matmul [3,4] x [4,2]", setup_matmul, fwd_matmul},
    {0},
};

/* x = [[1, 2, 3], [4, 5, 6]], W = [[1, 0, -1], [0.5, 0.5, 0.5]], b = [10, -1]:
 * x W^T = [[-2, 3], [-2, 7.5]], by hand.  For loss = sum(y): dx = the column
 * sums of W in every row, dW = the column sums of x in every row, db = N. */
START_TEST(test_linear_values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    int64_t sx[] = {2, 3}, sw[] = {2, 3}, sb[] = {2}, sy[] = {2, 2};
    nb_tensor *x = tst_make(ctx, dt, 2, sx, (double[]){1, 2, 3, 4, 5, 6});
    nb_tensor *w = tst_make(ctx, dt, 2, sw, (double[]){1, 0, -1, 0.5, 0.5, 0.5});
    nb_tensor *b = tst_make(ctx, dt, 1, sb, (double[]){10, -1});
    tst_assert_values(nb_linear(ctx, x, w, NULL), 2, sy, (double[]){-2, 3, -2, 7.5}, 0);
    nb_requires_grad(x, true);
    nb_requires_grad(w, true);
    nb_requires_grad(b, true);
    nb_tensor *y = nb_linear(ctx, x, w, b);
    tst_assert_values(y, 2, sy, (double[]){8, 2, 8, 6.5}, 0);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, y)), NB_OK);
    tst_assert_values(x->grad, 2, sx, (double[]){1.5, 0.5, -0.5, 1.5, 0.5, -0.5}, 0);
    tst_assert_values(w->grad, 2, sw, (double[]){5, 7, 9, 5, 7, 9}, 0);
    tst_assert_values(b->grad, 1, sb, (double[]){2, 2}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* [[1, 2, 3], [4, 5, 6]] x [[7, 8], [9, 10], [11, 12]] = [[58, 64], [139, 154]];
 * for loss = sum(y): da = the row sums of b, db = the column sums of a. */
START_TEST(test_matmul_values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    int64_t sa[] = {2, 3}, sb[] = {3, 2}, sy[] = {2, 2};
    nb_tensor *a = tst_make(ctx, dt, 2, sa, (double[]){1, 2, 3, 4, 5, 6});
    nb_tensor *b = tst_make(ctx, dt, 2, sb, (double[]){7, 8, 9, 10, 11, 12});
    nb_requires_grad(a, true);
    nb_requires_grad(b, true);
    nb_tensor *y = nb_matmul(ctx, a, b);
    tst_assert_values(y, 2, sy, (double[]){58, 64, 139, 154}, 0);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, y)), NB_OK);
    tst_assert_values(a->grad, 2, sa, (double[]){15, 19, 23, 15, 19, 23}, 0);
    tst_assert_values(b->grad, 2, sb, (double[]){5, 5, 7, 7, 9, 9}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* Only the weight requires a gradient: the input gets none, and an op on
 * constants records nothing. */
START_TEST(test_partial_grad)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t sx[] = {1, 2}, sw[] = {1, 2}, sy[] = {1, 1};
    nb_tensor *x = tst_make(ctx, NB_F64, 2, sx, (double[]){3, -2});
    nb_tensor *w = tst_make(ctx, NB_F64, 2, sw, (double[]){0.5, 4});
    tst_assert_values(nb_linear(ctx, x, w, NULL), 2, sy, (double[]){-6.5}, 0);
    ck_assert_int_eq(nb_graph_size(ctx), 0);
    nb_requires_grad(w, true);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_linear(ctx, x, w, NULL))), NB_OK);
    ck_assert_ptr_null(x->grad);
    tst_assert_values(w->grad, 2, sw, (double[]){3, -2}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* NaN and infinities through linear, as PyTorch 1.13 gives them (printed
 * by torch once): every product of the GEMMs counts, 0 inf included.  _i:
 * float32 or float64 (_i % 2), through OpenBLAS or through the plain loops
 * nbi_gemm falls back to when OpenBLAS's buffer would not fit (_i / 2). */
START_TEST(test_linear_nonfinite)
{
    const double inf = INFINITY, nan = NAN;
    nb_dtype dt = _i % 2 ? NB_F64 : NB_F32;
    bool old = nbi_blas_avoid(_i / 2);
    nb_ctx *ctx = nb_ctx_new();
    int64_t sx[] = {2, 3}, sw[] = {3, 3}, sb[] = {3};
    nb_tensor *x = tst_make(ctx, dt, 2, sx, (double[]){1, nan, 2, inf, 2, -1});
    nb_tensor *w = tst_make(ctx, dt, 2, sw, (double[]){1, 0, 2, 0, 1, 1, 0.5, -1, 0});
    nb_tensor *b = tst_make(ctx, dt, 1, sb, (double[]){0.5, inf, 1});
    nb_tensor *r = tst_make(ctx, dt, 2, sx, (double[]){1, 2, 3, nan, 1, 0});
    nb_requires_grad(x, true);
    nb_requires_grad(w, true);
    nb_requires_grad(b, true);
    nb_tensor *y = nb_linear(ctx, x, w, b);
    tst_assert_values(y, 2, sx, (double[]){nan, nan, nan, inf, nan, inf}, 0);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, r))), NB_OK);
    tst_assert_values(x->grad, 2, sx, (double[]){2.5, -1, 4, nan, nan, nan}, 1e-6);
    tst_assert_values(w->grad, 2, sw, (double[]){nan, nan, nan, inf, nan, 3, nan, nan, 6}, 1e-6);
    tst_assert_values(b->grad, 1, sb, (double[]){nan, 3, 3}, 1e-6);
    nb_ctx_free(ctx);
    nbi_blas_avoid(old);
}
END_TEST

/* Element i of a float or double buffer. */
static double buf_get(nb_dtype dt, const void *p, int i)
{
    return dt == NB_F32 ? ((const float *)p)[i] : ((const double *)p)[i];
}
static void buf_set(nb_dtype dt, void *p, int i, double v)
{
    if (dt == NB_F32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}

/* The plain loops give OpenBLAS's products (within rounding) for each
 * transpose, leading dimensions wider than the rows, beta 1 and beta 0
 * (which ignores C, NaN included, as BLAS does). */
START_TEST(test_plain_gemm)
{
    nb_dtype dt = _i ? NB_F64 : NB_F32;
    enum { M = 7, N = 9, K = 5, LD = 11 };
    size_t es = nb_dtype_size(dt);
    void *a = malloc(LD * LD * es), *b = malloc(LD * LD * es), *c0 = malloc(M * LD * es);
    void *c[2] = {malloc(M * LD * es), malloc(M * LD * es)};
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    for (int i = 0; i < LD * LD; i++) {
        buf_set(dt, a, i, nb_rng_uniform(&rng) - 0.5);
        buf_set(dt, b, i, nb_rng_uniform(&rng) - 0.5);
    }
    for (int i = 0; i < M * LD; i++)
        buf_set(dt, c0, i, nb_rng_uniform(&rng));
    for (int t = 0; t < 8; t++) {
        bool ta = t & 1, tb = t & 2, beta0 = t & 4;
        for (int plain = 0; plain < 2; plain++) {
            memcpy(c[plain], c0, M * LD * es);
            for (int i = 0; beta0 && i < M * LD; i++) /* C's old values must not count */
                buf_set(dt, c[plain], i, NAN);
            bool old = nbi_blas_avoid(plain);
            nbi_gemm(dt, ta, tb, M, N, K, 0.75, a, LD, b, LD, beta0 ? 0.0 : 1.0, c[plain], LD);
            nbi_blas_avoid(old);
        }
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double u = buf_get(dt, c[0], i * LD + j), v = buf_get(dt, c[1], i * LD + j);
                ck_assert_msg(fabs(u - v) <= 1e-5, "transposes %d, C[%d][%d]: %g vs %g", t, i, j,
                              u, v);
            }
    }
    free(a);
    free(b);
    free(c0);
    free(c[0]);
    free(c[1]);
}
END_TEST

START_TEST(test_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s3[] = {2, 4, 3}, sx[] = {4, 3}, sw[] = {5, 2}, sw3[] = {5, 3}, sb[] = {4},
            sa[] = {2, 3}, s1[] = {3};
    nb_tensor *x3 = nb_tensor_new(ctx, NB_F32, 3, s3);
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, 2, sx);
    nb_tensor *w = nb_tensor_new(ctx, NB_F32, 2, sw);
    nb_tensor *w3 = nb_tensor_new(ctx, NB_F32, 2, sw3);
    nb_tensor *b = nb_tensor_new(ctx, NB_F32, 1, sb);
    nb_tensor *a = nb_tensor_new(ctx, NB_F32, 2, sa);
    nb_tensor *v = nb_tensor_new(ctx, NB_F32, 1, s1);
    nb_tensor *x64 = nb_tensor_new(ctx, NB_F64, 2, sx);

    ck_assert_ptr_null(nb_linear(ctx, x3, w3, NULL));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "linear: input [2, 4, 3] must be [N, in_features]: flatten it first");
    ck_assert_ptr_null(nb_linear(ctx, x, v, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "linear: weight [3] must be [out_features, in_features]");
    ck_assert_ptr_null(nb_linear(ctx, x, w, NULL));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "linear: input [4, 3] has 3 features, but in_features is 2 (weight [5, 2])");
    ck_assert_ptr_null(nb_linear(ctx, x, w3, b));
    tst_assert_error(ctx, NB_ERR_ARG, "linear: bias [4] must be [5] for weight [5, 3]");
    ck_assert_ptr_null(nb_linear(ctx, x, w3, x));
    tst_assert_error(ctx, NB_ERR_ARG, "linear: bias [4, 3] must be [5] for weight [5, 3]");
    ck_assert_ptr_null(nb_linear(ctx, x64, w3, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "linear: input 1 is f32 but input 0 is f64");
    nb_clear_error(ctx);
    ck_assert_ptr_null(nb_linear(ctx, NULL, w3, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "linear: input 0 is NULL");

    ck_assert_ptr_null(nb_matmul(ctx, a, a));
    tst_assert_error(ctx, NB_ERR_ARG, "matmul: [2, 3] x [2, 3]: inner sizes 3 and 2 differ");
    ck_assert_ptr_null(nb_matmul(ctx, a, v));
    tst_assert_error(ctx, NB_ERR_ARG, "matmul: inputs [2, 3] and [3] must both be 2-D");
    nb_ctx_free(ctx);
}
END_TEST

/* ---- the fixed-order kernels against plain loops ------------------------
 * The reference twin of linear.c's kernels: each element one chain in the
 * same order (over k for y, from its bias on, over o for dx, over a group's rows for dW's and
 * db's group sums, then nbi_batch_sum's tree), fused as the AVX2 kernels
 * are or a product then an add as the baseline's (this file is built
 * -std=c11, so nothing here is contracted). */
#define LIN_REF(T, name, fmaT)                                                                \
    static T name##_dot(const T *a, int64_t as, const T *b, int64_t bs, int64_t n, bool fused, \
                        T s)                                                                   \
    {                                                                                          \
        for (int64_t i = 0; i < n; i++)                                                        \
            s = fused ? fmaT(a[i * as], b[i * bs], s) : s + a[i * as] * b[i * bs];             \
        return s;                                                                              \
    }                                                                                          \
    static void name##_tree(T *p, int64_t groups, int64_t len)                                 \
    {                                                                                          \
        for (int64_t s = 1; s < groups; s *= 2)                                                \
            for (int64_t i = 0; i + s < groups; i += 2 * s)                                    \
                for (int64_t j = 0; j < len; j++)                                              \
                    p[i * len + j] += p[(i + s) * len + j];                                    \
    }                                                                                          \
    /* y, dx, dw, db of y = x W^T + b and loss sum(y r), for x [n, k], W [o, k] */             \
    static void name(const T *x, const T *w, const T *b, const T *r, int64_t n, int64_t k,     \
                     int64_t o, bool fused, T *y, T *dx, T *dw, T *db)                         \
    {                                                                                          \
        int64_t groups = (n + 15) / 16;                                                        \
        T *p = calloc((size_t)(groups * o * (k + 1)), sizeof(T)), *pb = p + groups * o * k;     \
        for (int64_t i = 0; i < n; i++)                                                        \
            for (int64_t j = 0; j < o; j++)                                                    \
                y[i * o + j] = name##_dot(x + i * k, 1, w + j * k, 1, k, fused, b[j]);         \
        for (int64_t i = 0; i < n; i++)                                                        \
            for (int64_t c = 0; c < k; c++)                                                    \
                dx[i * k + c] = 0 + name##_dot(r + i * o, 1, w + c, k, o, fused, 0);           \
        for (int64_t g = 0; g < groups; g++) {                                                 \
            int64_t r0 = 16 * g, nr = n - r0 < 16 ? n - r0 : 16;                               \
            for (int64_t j = 0; j < o; j++) {                                                  \
                for (int64_t c = 0; c < k; c++)                                                \
                    p[(g * o + j) * k + c] =                                                   \
                        name##_dot(r + r0 * o + j, o, x + r0 * k + c, k, nr, fused, 0);        \
                double s = 0;                                                                  \
                for (int64_t i = 0; i < nr; i++)                                               \
                    s += r[(r0 + i) * o + j];                                                  \
                pb[g * o + j] = (T)s;                                                          \
            }                                                                                  \
        }                                                                                      \
        name##_tree(p, groups, o * k);                                                         \
        name##_tree(pb, groups, o);                                                            \
        for (int64_t j = 0; j < o * k; j++)                                                    \
            dw[j] = 0 + p[j];                                                                  \
        for (int64_t j = 0; j < o; j++)                                                        \
            db[j] = 0 + pb[j];                                                                 \
        free(p);                                                                               \
    }
LIN_REF(float, ref_linear_f32, fmaf)
LIN_REF(double, ref_linear_f64, fma)
#undef LIN_REF

/* Odd shapes: rows not a multiple of a tile or a group, 10 outputs, 1
 * input, MNIST's 784, more rows than outputs and fewer (the forward packs
 * the smaller side), and more than 64 groups (their sums then go through
 * nbi_batch_sum instead of the kernels' own tree). */
static const int64_t ref_shapes[][3] = {
    {37, 784, 10}, {5, 1, 10}, {17, 33, 23}, {1, 1, 1}, {70, 200, 129},
    {100, 9, 70},  {3, 16, 16}, {1030, 3, 5}, {64, 784, 40},
};

/* The kernels' y, dx, dW and db bit for bit the reference's, for each shape,
 * f32 and f64 (_i % 2), on 1 and 2 threads (_i / 2 % 2), with each CPU
 * variant's kernels (_i / 4); a variant the machine lacks is skipped. */
START_TEST(test_linear_kernels_match_reference)
{
    nb_dtype dt = _i % 2 ? NB_F64 : NB_F32;
    const char *old_kernels = nb_cpu_kernels(), *kernels = tst_kernels[_i / 4];
    if (!tst_use_kernels(kernels, "linear kernels vs reference"))
        return;
    int old = nb_set_num_threads(1 + _i / 2 % 2);
    nb_ctx *ctx = nb_ctx_new();
    bool fused = strcmp(kernels, "baseline") != 0;
    nb_rng rng;
    nb_rng_seed(&rng, 11 + (uint64_t)_i);
    for (size_t s = 0; s < sizeof ref_shapes / sizeof *ref_shapes; s++) {
        int64_t n = ref_shapes[s][0], k = ref_shapes[s][1], o = ref_shapes[s][2];
        int64_t sx[] = {n, k}, sw[] = {o, k}, sb[] = {o}, sy[] = {n, o};
        nb_graph_reset(ctx);
        nb_tensor *x = nb_tensor_new(ctx, dt, 2, sx), *w = nb_tensor_new(ctx, dt, 2, sw);
        nb_tensor *b = nb_tensor_new(ctx, dt, 1, sb), *r = nb_tensor_new(ctx, dt, 2, sy);
        nb_fill_uniform(x, &rng, -1, 1), nb_fill_uniform(w, &rng, -1, 1);
        nb_fill_uniform(b, &rng, -1, 1), nb_fill_uniform(r, &rng, -1, 1);
        nb_requires_grad(x, true), nb_requires_grad(w, true), nb_requires_grad(b, true);
        nb_tensor *y = nb_linear(ctx, x, w, b);
        ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, r))), NB_OK);
        size_t es = nb_dtype_size(dt), ny = (size_t)(n * o), nx = (size_t)(n * k);
        size_t nw = (size_t)(o * k);
        char *want = malloc((ny + nx + nw + (size_t)o) * es);
        char *wy = want, *wdx = wy + ny * es, *wdw = wdx + nx * es, *wdb = wdw + nw * es;
        if (dt == NB_F32)
            ref_linear_f32(x->data, w->data, b->data, r->data, n, k, o, fused, (float *)wy,
                           (float *)wdx, (float *)wdw, (float *)wdb);
        else
            ref_linear_f64(x->data, w->data, b->data, r->data, n, k, o, fused, (double *)wy,
                           (double *)wdx, (double *)wdw, (double *)wdb);
        const char *what[] = {"y", "dx", "dW", "db"};
        const void *got[] = {y->data, x->grad->data, w->grad->data, b->grad->data};
        const char *exp[] = {wy, wdx, wdw, wdb};
        size_t len[] = {ny, nx, nw, (size_t)o};
        for (int t = 0; t < 4; t++)
            ck_assert_msg(!memcmp(got[t], exp[t], len[t] * es),
                          "%s of [%lld, %lld] x [%lld, %lld]^T (%s, %s, %d threads) differs "
                          "from the reference", what[t], (long long)n, (long long)k,
                          (long long)o, (long long)k, dt == NB_F32 ? "f32" : "f64",
                          kernels, 1 + _i / 2 % 2);
        free(want);
    }
    nb_ctx_free(ctx);
    nb_set_num_threads(old);
    nb_set_cpu_kernels(old_kernels, NULL, 0);
}
END_TEST

/* nbi_gemm_fixed bit for bit a chain per element, a_0 b_0 + a_1 b_1 + ...
 * in order from its bias (fused with AVX2 and AVX-512, a multiply then an
 * add on the baseline), then C's old value with add: for each variant
 * (_i / 2), in f32 and f64 (_i % 2), over shapes with partial tiles and
 * panels, every layout of A, B and C, and each of bias per row, per
 * column, none, add, and add of chunks of 4 (each its own chain) summed by
 * nbi_batch_sum's tree. */
#define GEMM_REF(T, name, fmaT)                                                               \
    static T name##_chain(const nbi_gemm_args *g, int64_t i, int64_t j, int64_t k0,          \
                          int64_t k1, bool fused, T acc)                                     \
    {                                                                                        \
        const T *a = g->a, *b = g->b;                                                        \
        for (int64_t kk = k0; kk < k1; kk++) {                                               \
            T x = a[i * g->ars + kk * g->acs], y = b[kk * g->brs + j * g->bcs];              \
            if (fused)                                                                       \
                acc = fmaT(x, y, acc);                                                       \
            else {                                                                           \
                T p = x * y;                                                                 \
                acc = acc + p;                                                               \
            }                                                                                \
        }                                                                                    \
        return acc;                                                                          \
    }                                                                                        \
    static void name(const nbi_gemm_args *g, bool fused, T *want)                            \
    {                                                                                        \
        const T *rb = g->row_bias, *cb = g->col_bias;                                        \
        for (int64_t i = 0; i < g->m; i++)                                                   \
            for (int64_t j = 0; j < g->n; j++) {                                             \
                T v, part[64];                                                               \
                int64_t nch = g->chunk ? (g->k + g->chunk - 1) / g->chunk : 0;               \
                if (nch > 1) {                                                               \
                    for (int64_t h = 0; h < nch; h++) {                                      \
                        int64_t k1 = (h + 1) * g->chunk < g->k ? (h + 1) * g->chunk : g->k;  \
                        part[h] = name##_chain(g, i, j, h * g->chunk, k1, fused, 0);         \
                    }                                                                        \
                    for (int64_t s = 1; s < nch; s *= 2)                                     \
                        for (int64_t h = 0; h + s < nch; h += 2 * s)                         \
                            part[h] += part[h + s];                                          \
                    v = part[0];                                                             \
                } else {                                                                     \
                    T init = g->add ? 0 : rb ? rb[i] : cb ? cb[j] : 0;                       \
                    v = name##_chain(g, i, j, 0, g->k, fused, init);                         \
                }                                                                            \
                T *w = want + i * g->crs + j * g->ccs;                                       \
                *w = g->add ? *w + v : v;                                                    \
            }                                                                                \
    }
GEMM_REF(float, gemm_ref_f32, fmaf)
GEMM_REF(double, gemm_ref_f64, fma)
#undef GEMM_REF

/* n values of dtype dt, uniform in [lo, lo + 1) */
static void *gemm_values(nb_dtype dt, int64_t n, nb_rng *rng, double lo)
{
    size_t es = nb_dtype_size(dt);
    char *p = malloc((size_t)(n + 1) * es);
    for (int64_t i = 0; i < n; i++) {
        double v = lo + nb_rng_uniform(rng);
        if (dt == NB_F32)
            ((float *)p)[i] = (float)v;
        else
            ((double *)p)[i] = v;
    }
    return p;
}

START_TEST(test_fixed_gemm)
{
    const char *old_kernels = nb_cpu_kernels(), *kernels = tst_kernels[_i / 2];
    if (!tst_use_kernels(kernels, "fixed-order GEMM vs its chains"))
        return;
    nb_dtype dt = _i % 2 ? NB_F64 : NB_F32;
    bool fused = strcmp(kernels, "baseline") != 0;
    size_t es = nb_dtype_size(dt);
    static const int64_t shapes[][3] = {{1, 1, 1},  {5, 7, 3},   {12, 32, 9},  {13, 33, 40},
                                        {30, 70, 17}, {24, 64, 0}, {7, 100, 288}, {64, 5, 31}};
    nb_rng rng;
    nb_rng_seed(&rng, 5 + (uint64_t)_i);
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int layout = 0; layout < 8; layout++)
            for (int mode = 0; mode < 5; mode++) {
                int64_t m = shapes[s][0], n = shapes[s][1], k = shapes[s][2];
                bool at = layout & 1, bt = layout & 2, ct = layout & 4;
                void *a = gemm_values(dt, m * k, &rng, -0.5);
                void *b = gemm_values(dt, k * n, &rng, -0.5);
                void *bias = gemm_values(dt, m + n, &rng, -0.5);
                void *c = gemm_values(dt, m * n, &rng, 0);
                void *want = malloc((size_t)(m * n + 1) * es);
                void *pack = malloc(nbi_gemm_pack_elems(dt, k) * es + 1);
                memcpy(want, c, (size_t)(m * n) * es);
                nbi_gemm_args g = {.m = m, .n = n, .k = k, .a = a, .ars = at ? 1 : k,
                                   .acs = at ? m : 1, .b = b, .brs = bt ? 1 : n,
                                   .bcs = bt ? k : 1, .c = c, .crs = ct ? 1 : n,
                                   .ccs = ct ? m : 1, .add = mode >= 3, .pack = pack};
                if (mode == 0)
                    g.row_bias = bias;
                if (mode == 1)
                    g.col_bias = (const char *)bias + (size_t)m * es;
                if (mode == 4 && k <= 4 * NBI_GEMM_CHUNKS)
                    g.chunk = 4;
                if (dt == NB_F32)
                    gemm_ref_f32(&g, fused, want);
                else
                    gemm_ref_f64(&g, fused, want);
                nbi_gemm_fixed(dt, &g);
                ck_assert_msg(!memcmp(c, want, (size_t)(m * n) * es),
                              "[%lld x %lld] x [%lld x %lld] (layout %d, mode %d, %s, %s) "
                              "differs from its chains", (long long)m, (long long)k,
                              (long long)k, (long long)n, layout, mode,
                              dt == NB_F32 ? "f32" : "f64", kernels);
                free(a), free(b), free(bias), free(c), free(want), free(pack);
            }
    nb_set_cpu_kernels(old_kernels, NULL, 0);
}
END_TEST

Suite *tst_suite_linear(void)
{
    Suite *s = suite_create("linear");
    TCase *tc = tcase_create("linear");
    tcase_add_loop_test(tc, test_linear_values, 0, 2);
    tcase_add_loop_test(tc, test_matmul_values, 0, 2);
    tcase_add_test(tc, test_partial_grad);
    tcase_add_loop_test(tc, test_linear_nonfinite, 0, 4);
    tcase_add_loop_test(tc, test_plain_gemm, 0, 2);
    tcase_add_test(tc, test_errors);
    tcase_add_loop_test(tc, test_linear_kernels_match_reference, 0, 12);
    tcase_add_loop_test(tc, test_fixed_gemm, 0, 6);
    suite_add_tcase(s, tc);
    return s;
}
