/*
 * linear.c - the fully connected layer y = x W^T + b on the fixed-order
 * GEMM (gemm.c: each element one chain in a fixed order, so a batch split
 * among threads or processes gives the same bits), and the matrix product
 * a b on CBLAS GEMM.
 */
#ifdef T /* ---- kernels in T, named K(...) ------------------------------- */

/* db[j] = sum_i dy[i, j] over rows rows, accumulated in double; row by row
 * over blocks of columns, so the reads are contiguous and the adds
 * vectorise. */
static void K(bias_sum)(const T *dy, T *db, int64_t rows, int64_t cols)
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
            db[j0 + j] = (T)acc[j];
    }
}

/* dst += src */
static void K(add_into)(T *restrict dst, const T *restrict src, int64_t n)
{
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
    for (int64_t i = 0; i < n; i++)
        dst[i] += src[i];
}

#else /* ---- builders and backward ----------------------------------------- */

#include "internal.h"

#include <inttypes.h>
#include <limits.h>
#include <string.h>

#define T float
#define K(f) f##_f32
#define DT NB_F32
#include "linear.c"
#undef T
#undef K
#undef DT
#define T double
#define K(f) f##_f64
#define DT NB_F64
#include "linear.c"
#undef T
#undef K
#undef DT

/* Threads worth a GEMM: one below about the ~1 MFLOP nbi_gemm splits from. */
static int linear_threads(int64_t rows, int64_t nx, int64_t ny)
{
    return (double)rows * nx * ny >= 2.5e5 ? nbi_threads() : 1;
}

/* y = x W^T + b; when the batch has fewer rows than W, y^T = W x^T + b, so
 * that the GEMM packs the smaller: each element the same chain either way
 * (a product's operands commute exactly), then its bias. */
static void linear_fwd(nb_dtype dt, const void *x, const void *w, const void *b, void *y,
                       void *pack, int64_t rows, int64_t nx, int64_t ny)
{
    int nt = linear_threads(rows, nx, ny);
    if (rows < ny)
        nbi_gemm_fixed_par(dt, &(nbi_gemm_args){.m = ny, .n = rows, .k = nx, .a = w, .ars = nx,
                                                .acs = 1, .b = x, .brs = 1, .bcs = nx, .c = y,
                                                .crs = 1, .ccs = ny, .row_bias = b, .pack = pack},
                           false, nt);
    else
        nbi_gemm_fixed_par(dt, &(nbi_gemm_args){.m = rows, .n = ny, .k = nx, .a = x, .ars = nx,
                                                .acs = 1, .b = w, .brs = 1, .bcs = nx, .c = y,
                                                .crs = ny, .ccs = 1, .col_bias = b, .pack = pack},
                           true, nt);
}

/* dx += dy W, and dW += the tree of the groups' dy_g^T x_g (tree: in the
 * GEMM's registers), or each group's into part for nbi_batch_sum. */
static void linear_bwd(nb_dtype dt, const void *x, const void *w, const void *dy, void *dx,
                       void *dw, void *part, bool tree, void *pack, int64_t rows, int64_t nx,
                       int64_t ny)
{
    int nt = linear_threads(rows, nx, ny);
    size_t es = nb_dtype_size(dt);
    if (dx)
        nbi_gemm_fixed_par(dt, &(nbi_gemm_args){.m = rows, .n = nx, .k = ny, .a = dy, .ars = ny,
                                                .acs = 1, .b = w, .brs = nx, .bcs = 1, .c = dx,
                                                .crs = nx, .ccs = 1, .add = true, .pack = pack},
                           true, nt);
    if (dw && tree)
        nbi_gemm_fixed_par(dt, &(nbi_gemm_args){.m = ny, .n = nx, .k = rows, .a = dy, .ars = 1,
                                                .acs = ny, .b = x, .brs = nx, .bcs = 1, .c = dw,
                                                .crs = nx, .ccs = 1, .add = true,
                                                .chunk = NB_BATCH_GROUP, .pack = pack},
                           true, nt);
    for (int64_t g = 0; dw && !tree && g < nbi_batch_groups(rows); g++) {
        int64_t r0 = g * NB_BATCH_GROUP;
        int64_t nr = rows - r0 < NB_BATCH_GROUP ? rows - r0 : NB_BATCH_GROUP;
        const char *dyg = (const char *)dy + (size_t)(r0 * ny) * es;
        const char *xg = (const char *)x + (size_t)(r0 * nx) * es;
        char *pg = (char *)part + (size_t)(g * nx * ny) * es;
        nbi_gemm_fixed_par(dt, &(nbi_gemm_args){.m = ny, .n = nx, .k = nr, .a = dyg, .ars = 1,
                                                .acs = ny, .b = xg, .brs = nx, .bcs = 1, .c = pg,
                                                .crs = nx, .ccs = 1, .pack = pack},
                           true, nt);
    }
}

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
    size_t es = nb_dtype_size(x->dtype);
    void *pack = nbi_work(ctx, (size_t)nbi_threads() * nbi_gemm_pack_elems(x->dtype, nx) * es);
    if (!pack)
        return NULL;
    linear_fwd(x->dtype, x->data, w->data, b ? b->data : NULL, y->data, pack, rows, nx, ny);
    if (nbi_needs_grad(ctx, nin, in) &&
        !nbi_record(ctx, &nbi_op_linear, sizeof(nbi_node), y, nin, in))
        return NULL;
    return y;
}

/* dx += dy W;  dW += dy^T x;  db += column sums of dy: the sums over the
 * batch in groups of rows, added by nbi_batch_sum (or its tree alone, in
 * registers, when this process holds the whole batch). */
static int linear_backward(nb_ctx *ctx, nbi_node *node)
{
    nb_tensor *x = node->in[0], *w = node->in[1], *b = node->nin > 2 ? node->in[2] : NULL;
    nb_tensor *y = node->out;
    int64_t rows = x->shape[0], nx = x->shape[1], ny = w->shape[0];
    void *dx = nbi_grad(ctx, x);
    void *dw = nbi_grad(ctx, w);
    void *db = b ? nbi_grad(ctx, b) : NULL;
    if ((x->requires_grad && !dx) || (w->requires_grad && !dw) || (b && b->requires_grad && !db))
        return ctx->status;
    int64_t groups = nbi_batch_groups(rows), depth = rows > ny ? rows : ny;
    bool tree = nbi_batch_local(ctx) && groups <= NBI_GEMM_CHUNKS;
    size_t es = nb_dtype_size(x->dtype), nw = dw && !tree ? (size_t)(nx * ny) : 0;
    size_t nb = db ? (size_t)ny : 0;
    size_t np = (size_t)nbi_threads() * nbi_gemm_pack_elems(x->dtype, depth); /* per thread */
    char *pack = nbi_work(ctx, (np + (size_t)groups * (nw + nb)) * es);
    if (!pack)
        return ctx->status;
    char *part = pack + np * es, *dbp = part + (size_t)groups * nw * es;
    linear_bwd(x->dtype, x->data, w->data, y->grad->data, dx, dw, part, tree, pack, rows, nx, ny);
    for (int64_t g = 0; nb && g < groups; g++) { /* each group's column sums of dy */
        int64_t r0 = g * NB_BATCH_GROUP;
        int64_t nr = rows - r0 < NB_BATCH_GROUP ? rows - r0 : NB_BATCH_GROUP;
        const void *dyg = (const char *)y->grad->data + (size_t)(r0 * ny) * es;
        NBI_CALL(x->dtype, bias_sum, dyg, (void *)(dbp + (size_t)(g * ny) * es), nr, ny);
    }
    if (nw) {
        int rc = nbi_batch_sum(ctx, "linear", x->dtype, rows, part, nw, part);
        if (rc)
            return rc;
        NBI_CALL(x->dtype, add_into, dw, (void *)part, (int64_t)nw);
    }
    if (nb) {
        int rc = nbi_batch_sum(ctx, "linear", x->dtype, rows, dbp, nb, dbp);
        if (rc)
            return rc;
        NBI_CALL(x->dtype, add_into, db, (void *)dbp, (int64_t)nb);
    }
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
