/*
 * linear.c - the fully connected layer y = x W^T + b and the matrix product
 * a b, both on CBLAS GEMM; only the bias has kernels of its own.
 */
#ifdef T /* ---- kernels in T, named K(...) ------------------------------- */

/* y[i, j] = b[j] for every row i of y [rows, cols], before GEMM adds x W^T */
static void K(bias_fill)(const T *b, T *y, int64_t rows, int64_t cols)
{
    for (int64_t i = 0; i < rows; i++)
        memcpy(y + i * cols, b, (size_t)cols * sizeof(T));
}

/* db[j] += sum_i dy[i, j], accumulated in double; row by row over blocks
 * of columns, so the reads are contiguous and the adds vectorise. */
static void K(bias_bwd)(const T *dy, T *db, int64_t rows, int64_t cols)
{
    enum { BLOCK = 256 };
    double acc[BLOCK];
    for (int64_t j0 = 0; j0 < cols; j0 += BLOCK) {
        int64_t nj = cols - j0 < BLOCK ? cols - j0 : BLOCK;
        for (int64_t j = 0; j < nj; j++)
            acc[j] = 0;
        for (int64_t i = 0; i < rows; i++) {
            const T *row = dy + i * cols + j0;
            for (int64_t j = 0; j < nj; j++)
                acc[j] += row[j];
        }
        for (int64_t j = 0; j < nj; j++)
            db[j0 + j] += (T)acc[j];
    }
}

#else /* ---- builders and backward ----------------------------------------- */

#include "internal.h"

#include <inttypes.h>
#include <limits.h>

#define T float
#define K(f) f##_f32
#include "linear.c"
#undef T
#undef K
#define T double
#define K(f) f##_f64
#include "linear.c"
#undef T
#undef K

/* CBLAS takes sizes as int. */
static int blas_sizes(int64_t m, int64_t n, int64_t k, char *why)
{
    if (m <= INT_MAX && n <= INT_MAX && k <= INT_MAX)
        return 0;
    return nbi_why(why, "sizes %" PRId64 ", %" PRId64 ", %" PRId64 " exceed BLAS's int range",
                   m, n, k);
}

/* ---- linear: x [N, in], W [out, in], b [out] or NULL -> y [N, out] ------ */

int nbi_linear_shape(const nbi_shape *x, bool batch, const nbi_shape *w, const nbi_shape *b,
                     nbi_shape *y, char *why)
{
    char xs[96], ws[96], bs[96];
    nbi_shape_fmt(x, xs, sizeof xs);
    nbi_shape_fmt(w, ws, sizeof ws);
    if (x->ndim != 1 + batch)
        return nbi_why(why, "input %s must be %s%s", xs,
                       batch ? "[N, in_features]" : "[in_features]",
                       x->ndim > 1 + batch ? ": flatten it first" : "");
    if (w->ndim != 2)
        return nbi_why(why, "weight %s must be [out_features, in_features]", ws);
    int64_t rows = batch ? x->d[0] : 1, nx = x->d[batch], ny = w->d[0];
    if (w->d[1] != nx)
        return nbi_why(why, "input %s has %" PRId64 " feature%s, but in_features is %" PRId64
                       " (weight %s)", xs, nx, nx == 1 ? "" : "s", w->d[1], ws);
    if (b && (b->ndim != 1 || b->d[0] != ny))
        return nbi_why(why, "bias %s must be [%" PRId64 "] for weight %s",
                       nbi_shape_fmt(b, bs, sizeof bs), ny, ws);
    if (blas_sizes(rows, ny, nx, why))
        return -1;
    *y = *x;
    y->d[batch] = ny;
    return 0;
}

nb_tensor *nb_linear(nb_ctx *ctx, nb_tensor *x, nb_tensor *w, nb_tensor *b)
{
    nb_tensor *in[3] = {x, w, b};
    int nin = b ? 3 : 2;
    if (!nbi_check_inputs(ctx, "linear", nin, in))
        return NULL;
    nbi_shape xs = nbi_shape_of(x), ws = nbi_shape_of(w), bs = b ? nbi_shape_of(b) : xs, ys;
    char why[NBI_WHY_SIZE];
    if (nbi_linear_shape(&xs, true, &ws, b ? &bs : NULL, &ys, why))
        return nbi_fail_null(ctx, NB_ERR_ARG, "linear: %s", why);
    int64_t rows = x->shape[0], nx = x->shape[1], ny = w->shape[0];
    nb_tensor *y = nbi_step_tensor(ctx, x->dtype, ys.ndim, ys.d);
    if (!y)
        return NULL;
    /* y = x W^T (+ the bias already in y when there is one) */
    if (b)
        NBI_CALL(x->dtype, bias_fill, b->data, y->data, rows, ny);
    nbi_gemm(x->dtype, false, true, (int)rows, (int)ny, (int)nx, 1.0, x->data, (int)nx,
             w->data, (int)nx, b ? 1.0 : 0.0, y->data, (int)ny);
    if (nbi_needs_grad(ctx, nin, in) && !nbi_record(ctx, &nbi_op_linear, sizeof(nbi_node), y, nin, in))
        return NULL;
    return y;
}

/* dx += dy W;  dW += dy^T x;  db += column sums of dy */
static int linear_backward(nb_ctx *ctx, nbi_node *node)
{
    nb_tensor *x = node->in[0], *w = node->in[1], *b = node->nin > 2 ? node->in[2] : NULL;
    nb_tensor *y = node->out;
    int rows = (int)x->shape[0], nx = (int)x->shape[1], ny = (int)w->shape[0];
    void *dx = nbi_grad(ctx, x);
    void *dw = nbi_grad(ctx, w);
    void *db = b ? nbi_grad(ctx, b) : NULL;
    if ((x->requires_grad && !dx) || (w->requires_grad && !dw) || (b && b->requires_grad && !db))
        return ctx->status;
    const void *dy = y->grad->data;
    if (dx)
        nbi_gemm(x->dtype, false, false, rows, nx, ny, 1.0, dy, ny, w->data, nx, 1.0, dx, nx);
    if (dw)
        nbi_gemm(x->dtype, true, false, ny, nx, rows, 1.0, dy, ny, x->data, nx, 1.0, dw, nx);
    if (db)
        NBI_CALL(x->dtype, bias_bwd, dy, db, rows, ny);
    return NB_OK;
}

const nbi_op nbi_op_linear = {"linear", linear_backward};

/* ---- matmul: a [m, k] x b [k, n] -> y [m, n] ---------------------------- */

nb_tensor *nb_matmul(nb_ctx *ctx, nb_tensor *a, nb_tensor *b)
{
    nb_tensor *in[2] = {a, b};
    if (!nbi_check_inputs(ctx, "matmul", 2, in))
        return NULL;
    char sa[96], sb[96];
    if (a->ndim != 2 || b->ndim != 2)
        return nbi_fail_null(ctx, NB_ERR_ARG, "matmul: inputs %s and %s must both be 2-D",
                             nb_shape_str(a, sa, sizeof sa), nb_shape_str(b, sb, sizeof sb));
    int64_t m = a->shape[0], k = a->shape[1], n = b->shape[1];
    if (b->shape[0] != k)
        return nbi_fail_null(ctx, NB_ERR_ARG,
                             "matmul: %s x %s: inner sizes %lld and %lld differ",
                             nb_shape_str(a, sa, sizeof sa), nb_shape_str(b, sb, sizeof sb),
                             (long long)k, (long long)b->shape[0]);
    char why[NBI_WHY_SIZE];
    if (blas_sizes(m, n, k, why))
        return nbi_fail_null(ctx, NB_ERR_ARG, "matmul: %s", why);

    int64_t shape[2] = {m, n};
    nb_tensor *y = nbi_step_tensor(ctx, a->dtype, 2, shape);
    if (!y)
        return NULL;
    /* y = a b */
    nbi_gemm(a->dtype, false, false, (int)m, (int)n, (int)k, 1.0, a->data, (int)k, b->data,
             (int)n, 0.0, y->data, (int)n);
    if (nbi_needs_grad(ctx, 2, in) && !nbi_record(ctx, &nbi_op_matmul, sizeof(nbi_node), y, 2, in))
        return NULL;
    return y;
}

/* da += dy b^T;  db += a^T dy */
static int matmul_backward(nb_ctx *ctx, nbi_node *node)
{
    nb_tensor *a = node->in[0], *b = node->in[1], *y = node->out;
    int m = (int)a->shape[0], k = (int)a->shape[1], n = (int)b->shape[1];
    void *da = nbi_grad(ctx, a);
    void *db = nbi_grad(ctx, b);
    if ((a->requires_grad && !da) || (b->requires_grad && !db))
        return ctx->status;
    const void *dy = y->grad->data;
    if (da)
        nbi_gemm(a->dtype, false, true, m, k, n, 1.0, dy, n, b->data, n, 1.0, da, k);
    if (db)
        nbi_gemm(a->dtype, true, false, k, n, m, 1.0, a->data, k, dy, n, 1.0, db, n);
    return NB_OK;
}

const nbi_op nbi_op_matmul = {"matmul", matmul_backward};

#endif
