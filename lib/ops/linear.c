/*
 * linear.c - the fully connected layer y = x W^T + b and the matrix product
 * a b, both on CBLAS GEMM; only the bias has kernels of its own.
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

/* y = x W^T (+ b), one GEMM per group of NB_BATCH_GROUP rows whatever the
 * threads: OpenBLAS's bits for a row depend on the call's shape (blas.c),
 * so a row gets the same bits however the batch is split.  Each GEMM
 * makes yt = W x_g^T [out, rows of g] in tmp (the group's slice of it):
 * with the rows as OpenBLAS's inner dimension a call of 16 rows runs near
 * the speed of a whole batch's, where x_g W^T would run 40% slower. */
static void K(linear_fwd)(const T *x, const T *w, const T *b, T *y, T *tmp, int64_t rows,
                          int64_t nx, int64_t ny, bool par)
{
    int64_t groups = nbi_batch_groups(rows);
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) if (par && groups > 1)
    for (int64_t g = 0; g < groups; g++) {
        int64_t r0 = g * NB_BATCH_GROUP, nr = rows - r0 < NB_BATCH_GROUP ? rows - r0 : NB_BATCH_GROUP;
        T *yt = tmp + g * NB_BATCH_GROUP * ny, *yg = y + r0 * ny;
        nbi_gemm1(DT, false, true, (int)ny, (int)nr, (int)nx, 1.0, w, (int)nx, x + r0 * nx,
                  (int)nx, 0.0, yt, (int)nr);
        for (int64_t i = 0; i < nr; i++)
            for (int64_t j = 0; j < ny; j++)
                yg[i * ny + j] = b ? yt[j * nr + i] + b[j] : yt[j * nr + i];
    }
}

/* dw[:, c0 + c] += pk[o nc + c] for the nc columns of a block */
static void K(linear_add_block)(T *restrict dw, const T *restrict pk, int64_t c0, int64_t nc,
                                int64_t nx, int64_t ny)
{
    for (int64_t o = 0; o < ny; o++) {
        T *restrict d = dw + o * nx + c0;
        const T *restrict p = pk + o * nc;
#pragma omp simd
        for (int64_t c = 0; c < nc; c++)
            d[c] += p[c];
    }
}

/* The backward's items, shared by the threads in any order (each writes
 * its own memory, so the order changes no bit): dx_g += dy_g W for each
 * group g of rows; then for each block k of LINEAR_DW_COLS columns of W,
 * every group's dW_g = dy_g^T x_g on them, into part (block k's groups
 * side by side, [groups][out][cols of k]), and with local (no comm) the
 * tree of the groups and dw's columns += its sum at once, while the block
 * is in cache (nbi_batch_sum adds them otherwise).  dbp[g] gets group g's column sums of dy. */
#define LINEAR_DW_COLS 64
static void K(linear_bwd)(const T *x, const T *w, const T *dy, T *dx, T *dw, T *part, T *dbp,
                          bool local, int64_t rows, int64_t nx, int64_t ny, bool par)
{
    int64_t groups = nbi_batch_groups(rows), nblk = part ? (nx + LINEAR_DW_COLS - 1) / LINEAR_DW_COLS : 0;
    int64_t ndx = dx ? groups : 0, items = ndx + nblk + (dbp ? 1 : 0);
#pragma omp parallel for num_threads(nbi_threads()) schedule(dynamic, 1) if (par && items > 1)
    for (int64_t it = 0; it < items; it++) {
        if (it < ndx) {
            int64_t r0 = it * NB_BATCH_GROUP, nr = rows - r0 < NB_BATCH_GROUP ? rows - r0 : NB_BATCH_GROUP;
            nbi_gemm1(DT, false, false, (int)nr, (int)nx, (int)ny, 1.0, dy + r0 * ny, (int)ny, w,
                      (int)nx, 1.0, dx + r0 * nx, (int)nx);
            continue;
        }
        if (it == ndx + nblk) {
            for (int64_t g = 0; g < groups; g++) {
                int64_t r0 = g * NB_BATCH_GROUP, nr = rows - r0 < NB_BATCH_GROUP ? rows - r0 : NB_BATCH_GROUP;
                K(bias_sum)(dy + r0 * ny, dbp + g * ny, nr, ny);
            }
            continue;
        }
        int64_t c0 = (it - ndx) * LINEAR_DW_COLS, nc = nx - c0 < LINEAR_DW_COLS ? nx - c0 : LINEAR_DW_COLS;
        T *pk = part + c0 * ny * groups;
        for (int64_t g = 0; g < groups; g++) {
            int64_t r0 = g * NB_BATCH_GROUP, nr = rows - r0 < NB_BATCH_GROUP ? rows - r0 : NB_BATCH_GROUP;
            /* local: the GEMM of group 2i + 1 adds onto group 2i's sum in slot
             * i (beta 1), giving the tree's first level, fl(P_2i + P_2i+1),
             * without a pass of its own or a buffer */
            bool onto = local && g % 2;
            nbi_gemm1(DT, true, false, (int)ny, (int)nc, (int)nr, 1.0, dy + r0 * ny, (int)ny,
                      x + r0 * nx + c0, (int)nx, onto ? 1.0 : 0.0,
                      pk + (local ? g / 2 : g) * ny * nc, (int)nc);
        }
        if (local) { /* the pairs' tree is the groups' from the second level on */
            nbi_batch_tree(DT, pk, (groups + 1) / 2, (size_t)(ny * nc));
            K(linear_add_block)(dw, pk, c0, nc, nx, ny);
        }
    }
}

/* dw += the sums nbi_batch_sum left in part[k][0] for each block k */
static void K(linear_add_dw)(T *dw, const T *part, int64_t groups, int64_t nx, int64_t ny)
{
    for (int64_t c0 = 0; c0 < nx; c0 += LINEAR_DW_COLS) {
        int64_t nc = nx - c0 < LINEAR_DW_COLS ? nx - c0 : LINEAR_DW_COLS;
        K(linear_add_block)(dw, part + c0 * ny * groups, c0, nc, nx, ny);
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

/* Worth a parallel region: about the ~1 MFLOP nbi_gemm splits from. */
static bool linear_par(int64_t rows, int64_t nx, int64_t ny)
{
    return nbi_threads() > 1 && (double)rows * nx * ny >= 2.5e5;
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
    void *tmp = nbi_work(ctx, (size_t)(nbi_batch_groups(rows) * NB_BATCH_GROUP * ny) *
                                  nb_dtype_size(x->dtype));
    if (!tmp)
        return NULL;
    NBI_CALL(x->dtype, linear_fwd, x->data, w->data, b ? b->data : NULL, y->data, tmp, rows, nx,
             ny, linear_par(rows, nx, ny));
    if (nbi_needs_grad(ctx, nin, in) && !nbi_record(ctx, &nbi_op_linear, sizeof(nbi_node), y, nin, in))
        return NULL;
    return y;
}

/* dx += dy W;  dW += dy^T x;  db += column sums of dy: the sums over the
 * batch in groups of rows, added by nbi_batch_sum (or its tree alone, as
 * the blocks are made, when this process holds the whole batch). */
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
    int64_t groups = nbi_batch_groups(rows);
    size_t es = nb_dtype_size(x->dtype), nw = dw ? (size_t)(nx * ny) : 0, nb = db ? (size_t)ny : 0;
    char *part = NULL;
    if ((nw || nb) && !(part = nbi_work(ctx, (size_t)groups * (nw + nb) * es)))
        return ctx->status;
    char *dbp = part ? part + (size_t)groups * nw * es : NULL;
    bool local = nbi_batch_local(ctx);
    NBI_CALL(x->dtype, linear_bwd, x->data, w->data, y->grad->data, dx, dw,
             nw ? (void *)part : NULL, nb ? (void *)dbp : NULL, local, rows, nx, ny,
             linear_par(rows, nx, ny));
    for (int64_t c0 = 0; nw && !local && c0 < nx; c0 += LINEAR_DW_COLS) {
        int64_t nc = nx - c0 < LINEAR_DW_COLS ? nx - c0 : LINEAR_DW_COLS;
        char *pk = part + (size_t)(c0 * ny * groups) * es;
        int rc = nbi_batch_sum(ctx, "linear", x->dtype, rows, pk, (size_t)(ny * nc), pk);
        if (rc)
            return rc;
    }
    if (nw && !local)
        NBI_CALL(x->dtype, linear_add_dw, dw, (void *)part, groups, nx, ny);
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
