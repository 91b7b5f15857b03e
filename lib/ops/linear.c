/*
 * linear.c - the fully connected layer y = x W^T + b on GEMM kernels of its
 * own, each element one chain in a fixed order, and the matrix product a b
 * on CBLAS GEMM.
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

/* ---- fixed-order GEMMs ------------------------------------------------------
 * Each output element is one chain c = a_0 b_0 + a_1 b_1 + ... over the
 * depth in order, in one vector lane, fused on AVX2 (FMA) and a multiply
 * then an add on the baseline: its bits depend on neither its place in a
 * tile, the call's shape, nor the threads, so any rows a process holds come
 * out as one process would make them.  B is packed into panels of LIN_NR
 * columns, zero past its last, [panel][depth][LIN_NR]; a tile is up to
 * LIN_MR rows by one panel (12 accumulators of 32 bytes). */
typedef T K(lv) __attribute__((vector_size(32)));
enum { K(ll) = 32 / sizeof(T), K(nr) = 2 * K(ll) };
#define LIN_MR 6
#define LIN_NR K(nr)
#define VLOAD(v, p) memcpy(&(v), (p), sizeof(v))
#define VSTORE(p, v) memcpy((p), &(v), sizeof(v))

/* bp[kk][j] = src[kk rs + j cs] for j < nj, zero for j in [nj, LIN_NR) */
static void K(lin_pack_panel)(const T *src, int64_t rs, int64_t cs, int64_t depth, int64_t nj,
                              T *bp)
{
    if (nj < LIN_NR)
        memset(bp, 0, (size_t)(depth * LIN_NR) * sizeof(T));
    if (cs == 1)
        for (int64_t kk = 0; kk < depth; kk++)
            memcpy(bp + kk * LIN_NR, src + kk * rs, (size_t)nj * sizeof(T));
    else /* a column at a time, 64 rows at once: contiguous reads (rs 1) into
          * lines that stay in L1 */
        for (int64_t k0 = 0; k0 < depth; k0 += 64)
            for (int64_t j = 0; j < nj; j++)
                for (int64_t kk = k0; kk < depth && kk < k0 + 64; kk++)
                    bp[kk * LIN_NR + j] = src[kk * rs + j * cs];
}

/* bp[p][kk][j] = src[kk rs + (p LIN_NR + j) cs], zero for a column >= cols;
 * the panels shared by the threads of a parallel region around it, if any */
static void K(lin_pack)(const T *src, int64_t rs, int64_t cs, int64_t depth, int64_t cols,
                        T *bp)
{
    int64_t np = (cols + LIN_NR - 1) / LIN_NR;
#pragma omp for schedule(static)
    for (int64_t p = 0; p < np; p++) {
        int64_t j0 = p * LIN_NR, nj = cols - j0 < LIN_NR ? cols - j0 : LIN_NR;
        K(lin_pack_panel)(src + j0 * cs, rs, cs, depth, nj, bp + p * depth * LIN_NR);
    }
}

/* B for the tiles: packed panels (ld 0), or in place with rows ld apart and
 * its last panel, if partial, packed alone in tail (lin_pack_tail). */
typedef struct K(bmat) {
    const T *b, *tail;
    int64_t ld, depth, cols;
} K(bmat);

/* Panel p of m from row r0 on, and its rows' distance in *ld. */
NBI_INLINE const T *K(lin_panel)(const K(bmat) *m, int64_t p, int64_t r0, int64_t *ld)
{
    *ld = LIN_NR;
    if (!m->ld)
        return m->b + (p * m->depth + r0) * LIN_NR;
    if ((p + 1) * LIN_NR > m->cols)
        return m->tail + r0 * LIN_NR;
    *ld = m->ld;
    return m->b + r0 * m->ld + p * LIN_NR;
}

/* m's tail: the last partial panel of B (rows ld apart) packed, by one thread */
static void K(lin_pack_tail)(const K(bmat) *m, T *tail)
{
    int64_t j0 = m->cols / LIN_NR * LIN_NR;
    if (j0 == m->cols)
        return;
#pragma omp single
    K(lin_pack_panel)(m->b + j0, m->ld, 1, m->depth, m->cols - j0, tail);
}

/* acc[2 i + h] = sum_{kk < depth} a[i ra + kk ka] bp[kk][h LIN_LL ..], i < mr:
 * inlined with mr a constant, so absent rows cost nothing. */
#define LIN_ROW(i)                                                              \
    if (mr > i) {                                                               \
        T ai = a[i * ra + kk * ka];                                             \
        c##i##0 += ai * b0, c##i##1 += ai * b1;                                 \
    }
NBI_INLINE void K(lin_tile)(int mr, const T *a, int64_t ra, int64_t ka, const T *bp,
                            int64_t ldb, int64_t depth, K(lv) *acc)
{
    typedef K(lv) V;
    V c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
    V c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};
#pragma GCC unroll 4
    for (int64_t kk = 0; kk < depth; kk++) {
        V b0, b1;
        VLOAD(b0, bp + kk * ldb), VLOAD(b1, bp + kk * ldb + K(ll));
        LIN_ROW(0) LIN_ROW(1) LIN_ROW(2) LIN_ROW(3) LIN_ROW(4) LIN_ROW(5)
    }
    acc[0] = c00, acc[1] = c01, acc[2] = c10, acc[3] = c11, acc[4] = c20, acc[5] = c21;
    acc[6] = c30, acc[7] = c31, acc[8] = c40, acc[9] = c41, acc[10] = c50, acc[11] = c51;
}
#undef LIN_ROW

/* The tile of mr rows at a (any mr <= LIN_MR), through a constant count. */
NBI_INLINE void K(lin_tile_n)(int mr, const T *a, int64_t ra, int64_t ka, const T *bp,
                              int64_t ldb, int64_t depth, K(lv) *acc)
{
    switch (mr) {
    case 1: K(lin_tile)(1, a, ra, ka, bp, ldb, depth, acc); break;
    case 2: K(lin_tile)(2, a, ra, ka, bp, ldb, depth, acc); break;
    case 3: K(lin_tile)(3, a, ra, ka, bp, ldb, depth, acc); break;
    case 4: K(lin_tile)(4, a, ra, ka, bp, ldb, depth, acc); break;
    case 5: K(lin_tile)(5, a, ra, ka, bp, ldb, depth, acc); break;
    default: K(lin_tile)(6, a, ra, ka, bp, ldb, depth, acc); break;
    }
}

/* c[i ldc + j cs] = (add ? it : bias[j] or 0) + acc's (i, j), for i < mr,
 * j < nc; c + acc with add, acc + bias without: the reference's one add */
NBI_INLINE void K(lin_put)(const K(lv) *acc, int mr, int64_t nc, T *c, int64_t ldc, int64_t cs,
                           const T *bias, bool add)
{
    typedef K(lv) V;
    if (nc == LIN_NR && cs == 1) { /* whole vectors: the same adds, lane by lane */
        for (int i = 0; i < mr; i++)
            for (int h = 0; h < 2; h++) {
                T *ci = c + i * ldc + h * K(ll);
                V v = acc[2 * i + h], u;
                if (add || bias)
                    VLOAD(u, add ? ci : bias + h * K(ll)), v = add ? u + v : v + u;
                VSTORE(ci, v);
            }
        return;
    }
    T t[LIN_MR * LIN_NR];
    memcpy(t, acc, sizeof t);
    for (int i = 0; i < mr; i++)
        for (int64_t j = 0; j < nc; j++) {
            T v = t[i * LIN_NR + j], *cij = c + i * ldc + j * cs;
            *cij = add ? *cij + v : bias ? v + bias[j] : v;
        }
}

/* Rows [r0, r1) of c = a B (+ bias) or c += a B on B's panel p: c's row n,
 * column p LIN_NR + j, from a's row n (a[n ra + kk ka]). */
NBI_INLINE void K(lin_gemm_item)(const T *a, int64_t ra, int64_t ka, const K(bmat) *m,
                                 int64_t p, int64_t r0, int64_t r1, T *c, int64_t ldc,
                                 int64_t cs, const T *bias, bool add)
{
    int64_t j0 = p * LIN_NR, nc = m->cols - j0 < LIN_NR ? m->cols - j0 : LIN_NR, ldb;
    const T *bp = K(lin_panel)(m, p, 0, &ldb);
    K(lv) acc[2 * LIN_MR];
    for (int64_t i = r0; i < r1; i += LIN_MR) {
        int mr = (int)(r1 - i < LIN_MR ? r1 - i : LIN_MR);
        K(lin_tile_n)(mr, a + i * ra, ra, ka, bp, ldb, m->depth, acc);
        K(lin_put)(acc, mr, nc, c + i * ldc + j0 * cs, ldc, cs, bias ? bias + j0 : NULL, add);
    }
}
static void K(lin_gemm_item_base)(const T *a, int64_t ra, int64_t ka, const K(bmat) *m,
                                  int64_t p, int64_t r0, int64_t r1, T *c, int64_t ldc,
                                  int64_t cs, const T *bias, bool add)
{
    K(lin_gemm_item)(a, ra, ka, m, p, r0, r1, c, ldc, cs, bias, add);
}
NBI_AVX2 static void K(lin_gemm_item_avx2)(const T *a, int64_t ra, int64_t ka, const K(bmat) *m,
                                           int64_t p, int64_t r0, int64_t r1, T *c, int64_t ldc,
                                           int64_t cs, const T *bias, bool add)
{
    K(lin_gemm_item)(a, ra, ka, m, p, r0, r1, c, ldc, cs, bias, add);
}

/* c[rows][m's cols] (columns cs apart) = a B (+ bias), or += with add; items of LIN_RB rows by
 * a panel shared by the threads of the region around it (each element is
 * one item's alone, so the sharing changes no bit). */
#define LIN_RB 48
static void K(lin_gemm)(const T *a, int64_t ra, int64_t ka, const K(bmat) *m, int64_t rows,
                        T *c, int64_t ldc, int64_t cs, const T *bias, bool add, bool nowait)
{
    int64_t np = (m->cols + LIN_NR - 1) / LIN_NR, nrb = (rows + LIN_RB - 1) / LIN_RB;
    bool avx2 = nbi_avx2();
    if (nowait) {
#pragma omp for schedule(static) nowait
        for (int64_t it = 0; it < np * nrb; it++) {
            int64_t p = it / nrb, r0 = it % nrb * LIN_RB, r1 = rows - r0 < LIN_RB ? rows : r0 + LIN_RB;
            (avx2 ? K(lin_gemm_item_avx2) : K(lin_gemm_item_base))(a, ra, ka, m, p, r0, r1, c,
                                                                    ldc, cs, bias, add);
        }
        return;
    }
#pragma omp for schedule(static)
    for (int64_t it = 0; it < np * nrb; it++) {
        int64_t p = it / nrb, r0 = it % nrb * LIN_RB, r1 = rows - r0 < LIN_RB ? rows : r0 + LIN_RB;
        (avx2 ? K(lin_gemm_item_avx2) : K(lin_gemm_item_base))(a, ra, ka, m, p, r0, r1, c, ldc,
                                                                cs, bias, add);
    }
}

/* dW's item: outputs [o0, o0 + mr) by panel p of x's columns (m).  For each
 * group g, P_g = dy_g^T x_g, each element a chain over g's rows in order;
 * with tree (this process holds the batch, groups <= LIN_GMAX) the groups'
 * tree in registers and dw += its sum, bit for bit nbi_batch_sum's; else
 * P_g into part[g][out][in] for nbi_batch_sum. */
#define LIN_GMAX 64
NBI_INLINE void K(lin_dw_item)(const T *dy, const K(bmat) *m, int64_t ny, int64_t o0, int64_t p,
                               T *dw, T *part, bool tree)
{
    int mr = (int)(ny - o0 < LIN_MR ? ny - o0 : LIN_MR);
    int64_t rows = m->depth, nx = m->cols, groups = nbi_batch_groups(rows), j0 = p * LIN_NR;
    int64_t nc = nx - j0 < LIN_NR ? nx - j0 : LIN_NR;
    K(lv) buf[LIN_GMAX][2 * LIN_MR];
    for (int64_t g = 0; g < groups; g++) {
        int64_t r0 = g * NB_BATCH_GROUP, nr = rows - r0 < NB_BATCH_GROUP ? rows - r0 : NB_BATCH_GROUP;
        int64_t ldb;
        const T *bp = K(lin_panel)(m, p, r0, &ldb);
        K(lv) *acc = tree ? buf[g] : buf[0];
        K(lin_tile_n)(mr, dy + r0 * ny + o0, 1, ny, bp, ldb, nr, acc);
        if (!tree)
            K(lin_put)(acc, mr, nc, part + g * nx * ny + o0 * nx + j0, nx, 1, NULL, false);
    }
    if (!tree)
        return;
    for (int64_t s = 1; s < groups; s *= 2) /* nbi_batch_sum's tree */
        for (int64_t i = 0; i + s < groups; i += 2 * s)
            for (int v = 0; v < 2 * mr; v++)
                buf[i][v] += buf[i + s][v];
    K(lin_put)(buf[0], mr, nc, dw + o0 * nx + j0, nx, 1, NULL, true);
}
static void K(lin_dw_item_base)(const T *dy, const K(bmat) *m, int64_t ny, int64_t o0, int64_t p,
                                T *dw, T *part, bool tree)
{
    K(lin_dw_item)(dy, m, ny, o0, p, dw, part, tree);
}
NBI_AVX2 static void K(lin_dw_item_avx2)(const T *dy, const K(bmat) *m, int64_t ny, int64_t o0,
                                         int64_t p, T *dw, T *part, bool tree)
{
    K(lin_dw_item)(dy, m, ny, o0, p, dw, part, tree);
}
#undef VLOAD
#undef VSTORE

/* y = x W^T (+ b), the smaller of W^T and x^T packed in bp: y's rows from
 * x's, or y^T's (W x^T) then b; each element the same chain over k either
 * way (a product's operands commute exactly). */
static void K(linear_fwd)(const T *x, const T *w, const T *b, T *y, T *bp, int64_t rows,
                          int64_t nx, int64_t ny, bool par)
{
    bool tr = rows < ny;
    K(bmat) m = {bp, NULL, 0, nx, tr ? rows : ny};
#pragma omp parallel num_threads(nbi_threads()) if (par)
    {
        if (!tr) {
            K(lin_pack)(w, 1, nx, nx, ny, bp);
            K(lin_gemm)(x, nx, 1, &m, rows, y, ny, 1, b, false, false);
        } else {
            K(lin_pack)(x, 1, nx, nx, rows, bp);
            K(lin_gemm)(w, nx, 1, &m, ny, y, 1, ny, NULL, false, false);
#pragma omp for schedule(static)
            for (int64_t n = 0; n < (b ? rows : 0); n++)
                for (int64_t o = 0; o < ny; o++)
                    y[n * ny + o] += b[o];
        }
    }
}

/* dx += dy W and dW += the tree of the groups' dy_g^T x_g, on W and x in
 * place (their last partial panels packed in wt and xt): in registers with
 * tree, or each group's into part for nbi_batch_sum.  dbp[g] gets group
 * g's column sums of dy. */
static void K(linear_bwd)(const T *x, const T *w, const T *dy, T *dx, T *dw, T *wt, T *xt,
                          T *part, T *dbp, bool tree, int64_t rows, int64_t nx, int64_t ny,
                          bool par)
{
    int64_t groups = nbi_batch_groups(rows), nob = (ny + LIN_MR - 1) / LIN_MR;
    int64_t ndw = dw && groups > 0 ? nob * ((nx + LIN_NR - 1) / LIN_NR) : 0;
    K(bmat) mw = {w, wt, nx, ny, nx}, mx = {x, xt, nx, rows, nx};
    bool avx2 = nbi_avx2();
#pragma omp parallel num_threads(nbi_threads()) if (par)
    {
        if (dx)
            K(lin_pack_tail)(&mw, wt);
        if (ndw)
            K(lin_pack_tail)(&mx, xt);
        if (dx)
            K(lin_gemm)(dy, ny, 1, &mw, rows, dx, nx, 1, NULL, true, true);
#pragma omp for schedule(static)
        for (int64_t it = 0; it < ndw; it++)
            (avx2 ? K(lin_dw_item_avx2) : K(lin_dw_item_base))(dy, &mx, ny, it % nob * LIN_MR,
                                                                it / nob, dw, part, tree);
    }
    for (int64_t g = 0; dbp && g < groups; g++) {
        int64_t r0 = g * NB_BATCH_GROUP, nr = rows - r0 < NB_BATCH_GROUP ? rows - r0 : NB_BATCH_GROUP;
        K(bias_sum)(dy + r0 * ny, dbp + g * ny, nr, ny);
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

/* Worth a parallel region: about the ~1 MFLOP nbi_gemm splits from. */
static bool linear_par(int64_t rows, int64_t nx, int64_t ny)
{
    return nbi_threads() > 1 && (double)rows * nx * ny >= 2.5e5;
}

/* Panels of the fixed-order GEMMs' B for n columns (64 bytes a row). */
static int64_t lin_panels(int64_t n, nb_dtype dt)
{
    int64_t nr = 64 / (int64_t)nb_dtype_size(dt);
    return (n + nr - 1) / nr;
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
    /* linear_fwd packs the smaller of W^T and x^T */
    void *wp = nbi_work(ctx, (size_t)(lin_panels(rows < ny ? rows : ny, x->dtype) * nx) * 64);
    if (!wp)
        return NULL;
    NBI_CALL(x->dtype, linear_fwd, x->data, w->data, b ? b->data : NULL, y->data, wp, rows, nx,
             ny, linear_par(rows, nx, ny));
    if (nbi_needs_grad(ctx, nin, in) && !nbi_record(ctx, &nbi_op_linear, sizeof(nbi_node), y, nin, in))
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
    int64_t groups = nbi_batch_groups(rows);
    bool tree = nbi_batch_local(ctx) && groups <= LIN_GMAX;
    size_t es = nb_dtype_size(x->dtype), nw = dw && !tree ? (size_t)(nx * ny) : 0;
    size_t nb = db ? (size_t)ny : 0, pe = (size_t)(64 / es); /* a panel row's elements */
    size_t nq = dx ? (size_t)ny * pe : 0, np = dw ? (size_t)rows * pe : 0; /* the tails */
    char *wq = nbi_work(ctx, (nq + np + (size_t)groups * (nw + nb)) * es);
    if (!wq)
        return ctx->status;
    char *xp = wq + nq * es, *part = xp + np * es, *dbp = part + (size_t)groups * nw * es;
    NBI_CALL(x->dtype, linear_bwd, x->data, w->data, y->grad->data, dx, dw, (void *)wq,
             (void *)xp, nw ? (void *)part : NULL, nb ? (void *)dbp : NULL, tree, rows, nx, ny,
             linear_par(rows, nx, ny));
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
