/*
 * arith.c - elementwise add, sub and mul with numpy broadcasting; scale;
 * sum and mean of all elements.
 */
#ifdef T /* ---- kernels in T, named K(...) ------------------------------- */

/* y[i] = a[i ia] f b[i ib] for i < len, ia and ib 0 (broadcast) or 1;
 * f is 0: a + b, 1: a - b, 2: a * b. */
static void K(binary_run)(int f, const T *restrict a, int64_t ia, const T *restrict b,
                          int64_t ib, T *restrict y, int64_t len)
{
    switch (f) {
    case 0: BINARY_RUN(+) break;
    case 1: BINARY_RUN(-) break;
    default: BINARY_RUN(*) break;
    }
}

/* The forward over a walk: each thread takes whole rows, or a share of
 * the one row when the shapes merge into one. */
static void K(binary_fwd)(int f, const walk *w, const T *a, const T *b, T *y)
{
    int nt = nbi_threads();
    int64_t len = w->len, n = w->rows * len;
    int nblk = nbi_par(n) ? nt : 1;
    if (w->rows == 1) {
#pragma omp parallel for num_threads(nt) schedule(static) if (nblk > 1)
        for (int t = 0; t < nblk; t++) {
            int64_t lo = len * t / nblk, hi = len * (t + 1) / nblk;
            K(binary_run)(f, a + lo * w->ia, w->ia, b + lo * w->ib, w->ib, y + lo, hi - lo);
        }
        return;
    }
    if (nblk > w->rows)
        nblk = (int)w->rows;
#pragma omp parallel for num_threads(nt) schedule(static) if (nblk > 1)
    for (int t = 0; t < nblk; t++) {
        int64_t r0 = w->rows * t / nblk, r1 = w->rows * (t + 1) / nblk, idx[NB_MAX_DIMS], oa, ob;
        walk_start(w, r0, idx, &oa, &ob);
        for (int64_t r = r0; r < r1; r++) {
            K(binary_run)(f, a + oa, w->ia, b + ob, w->ib, y + r * len, len);
            walk_next(w, idx, &oa, &ob);
        }
    }
}

/* d[i id] += g_i for i < len: g = s dy (s = 1 or -1), or dy * o[i io]
 * when o is not NULL.  A broadcast d (id = 0) sums the run in order. */
static void K(grad_run)(T *restrict d, int64_t id, const T *restrict dy, const T *restrict o,
                        int64_t io, T s, int64_t len)
{
    if (id) {
        if (!o) {
#pragma omp simd
            for (int64_t i = 0; i < len; i++)
                d[i] += s * dy[i];
        } else if (io) {
#pragma omp simd
            for (int64_t i = 0; i < len; i++)
                d[i] += dy[i] * o[i];
        } else {
            const T v = o[0];
#pragma omp simd
            for (int64_t i = 0; i < len; i++)
                d[i] += dy[i] * v;
        }
        return;
    }
    T acc = d[0];
    for (int64_t i = 0; i < len; i++)
        acc += o ? dy[i] * o[i * io] : s * dy[i];
    d[0] = acc;
}

/* One input's gradient over the walk: d is a's (which = 0) or b's, o the
 * other input.  add: da += dy, db += dy;  sub: da += dy, db -= dy;
 * mul: da += dy b, db += dy a;  summed over broadcast positions, in the
 * order of y's elements.  Rows are split over the threads only when d is
 * not broadcast, so that no two threads add to one element. */
static void K(binary_grad)(int f, int which, const walk *w, bool full, const T *o, const T *dy,
                           T *d)
{
    int nt = nbi_threads();
    int64_t len = w->len, n = w->rows * len;
    int64_t id = which ? w->ib : w->ia, io = which ? w->ia : w->ib;
    const T s = f == 1 && which ? -1 : 1; /* (-1) dy is exactly -dy */
    const T *m = f == 2 ? o : NULL;
    int nblk = full && nbi_par(n) ? nt : 1;
    if (w->rows == 1) {
#pragma omp parallel for num_threads(nt) schedule(static) if (nblk > 1)
        for (int t = 0; t < nblk; t++) {
            int64_t lo = len * t / nblk, hi = len * (t + 1) / nblk;
            K(grad_run)(d + lo * id, id, dy + lo, m ? m + lo * io : NULL, io, s, hi - lo);
        }
        return;
    }
    if (nblk > w->rows)
        nblk = (int)w->rows;
#pragma omp parallel for num_threads(nt) schedule(static) if (nblk > 1)
    for (int t = 0; t < nblk; t++) {
        int64_t r0 = w->rows * t / nblk, r1 = w->rows * (t + 1) / nblk, idx[NB_MAX_DIMS], oa, ob;
        walk_start(w, r0, idx, &oa, &ob);
        for (int64_t r = r0; r < r1; r++) {
            int64_t od = which ? ob : oa, oo = which ? oa : ob;
            K(grad_run)(d + od, id, dy + r * len, m ? m + oo : NULL, io, s, len);
            walk_next(w, idx, &oa, &ob);
        }
    }
}

/* scale: y = s x;  dx += s dy */
static void K(scale_fwd)(const T *restrict x, T *restrict y, int64_t n, double s)
{
    const T k = (T)s;
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
    for (int64_t i = 0; i < n; i++)
        y[i] = k * x[i];
}
static void K(scale_bwd)(const T *restrict dy, T *restrict dx, int64_t n, double s)
{
    const T k = (T)s;
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
    for (int64_t i = 0; i < n; i++)
        dx[i] += k * dy[i];
}

/* sum of x[lo, hi) in double, in 8 lanes combined in a fixed order */
static double K(sum_range)(const void *arg, int64_t lo, int64_t hi)
{
    const T *restrict x = arg;
    double acc[8] = {0};
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += (double)x[i + k];
    for (int k = 0; i < hi; i++, k++)
        acc[k] += (double)x[i];
    return NBI_LANES_SUM(acc);
}

/* sum: y = s sum(x) (s = 1, or 1/n for the mean), in double over blocks
 * (nbi_blocked_sum);  dx += s dy */
static void K(sum_fwd)(const T *x, T *y, int64_t n, double s)
{
    y[0] = (T)(s * nbi_blocked_sum(n, K(sum_range), x));
}
static void K(sum_bwd)(const T *dy, T *restrict dx, int64_t n, double s)
{
    const T g = (T)(s * dy[0]);
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
    for (int64_t i = 0; i < n; i++)
        dx[i] += g;
}

#else /* ---- builders and backward ----------------------------------------- */

#include "internal.h"


/* A broadcast walked as rows: each row is a run of len elements of y in
 * which a and b each advance by 1 or stay put (ia, ib), and the rows
 * follow the outer dimensions (shape, with a's and b's strides). */
typedef struct walk {
    int nd;
    int64_t shape[NB_MAX_DIMS], sa[NB_MAX_DIMS], sb[NB_MAX_DIMS];
    int64_t rows, len, ia, ib;
} walk;

/* Merges neighbouring dimensions in which both inputs are laid out alike
 * (each either contiguous across the two or broadcast in both), so that
 * the runs are as long as possible: a same-shape op is one run. */
static void walk_make(walk *w, int nd, const int64_t *shape, const int64_t *sa,
                      const int64_t *sb)
{
    int m = 0;
    for (int d = 0; d < nd; d++) {
        if (shape[d] == 1)
            continue;
        if (m > 0 && w->sa[m - 1] == sa[d] * shape[d] && w->sb[m - 1] == sb[d] * shape[d]) {
            w->shape[m - 1] *= shape[d];
            w->sa[m - 1] = sa[d];
            w->sb[m - 1] = sb[d];
            continue;
        }
        w->shape[m] = shape[d];
        w->sa[m] = sa[d];
        w->sb[m] = sb[d];
        m++;
    }
    if (m == 0) { /* a scalar, or all sizes 1 */
        w->shape[0] = 1;
        w->sa[0] = w->sb[0] = 1;
        m = 1;
    }
    w->len = w->shape[m - 1];
    w->ia = w->sa[m - 1];
    w->ib = w->sb[m - 1];
    w->nd = m - 1;
    w->rows = 1;
    for (int d = 0; d < w->nd; d++)
        w->rows *= w->shape[d];
}

/* The index of row r in the outer dimensions, and a's and b's offsets. */
static void walk_start(const walk *w, int64_t r, int64_t *idx, int64_t *oa, int64_t *ob)
{
    *oa = *ob = 0;
    for (int d = w->nd - 1; d >= 0; d--) {
        idx[d] = r % w->shape[d];
        r /= w->shape[d];
        *oa += idx[d] * w->sa[d];
        *ob += idx[d] * w->sb[d];
    }
}

/* The next row, carrying. */
static void walk_next(const walk *w, int64_t *idx, int64_t *oa, int64_t *ob)
{
    for (int d = w->nd - 1; d >= 0; d--) {
        *oa += w->sa[d];
        *ob += w->sb[d];
        if (++idx[d] < w->shape[d])
            return;
        *oa -= w->sa[d] * w->shape[d];
        *ob -= w->sb[d] * w->shape[d];
        idx[d] = 0;
    }
}

/* The run loop of one operator, for each way a and b advance. */
#define BINARY_RUN(OP)                                                        \
    if (ia && ib) {                                                           \
        _Pragma("omp simd")                                                   \
        for (int64_t i = 0; i < len; i++)                                     \
            y[i] = a[i] OP b[i];                                              \
    } else if (ia) {                                                          \
        const T v = b[0];                                                     \
        _Pragma("omp simd")                                                   \
        for (int64_t i = 0; i < len; i++)                                     \
            y[i] = a[i] OP v;                                                 \
    } else if (ib) {                                                          \
        const T v = a[0];                                                     \
        _Pragma("omp simd")                                                   \
        for (int64_t i = 0; i < len; i++)                                     \
            y[i] = v OP b[i];                                                 \
    } else {                                                                  \
        const T v = a[0] OP b[0];                                             \
        for (int64_t i = 0; i < len; i++)                                     \
            y[i] = v;                                                         \
    }

#define T float
#define K(f) f##_f32
#include "arith.c"
#undef T
#undef K
#define T double
#define K(f) f##_f64
#include "arith.c"
#undef T
#undef K

/* ---- add, sub, mul ----------------------------------------------------- */

typedef struct binary_node {
    nbi_node base;
    int f;
    walk w;
} binary_node;

/* Broadcast shapes: aligned from the right, each size equal or 1.  Fills
 * the output shape and each input's strides in the output's dimensions. */
static int broadcast(nb_ctx *ctx, const char *op, const nb_tensor *a,
                     const nb_tensor *b, int *nd, int64_t *shape, int64_t *sa,
                     int64_t *sb)
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    int64_t stra = 1, strb = 1;
    for (int d = n - 1; d >= 0; d--) {
        int da = d - (n - a->ndim), db = d - (n - b->ndim);
        int64_t xa = da >= 0 ? a->shape[da] : 1, xb = db >= 0 ? b->shape[db] : 1;
        if (xa != xb && xa != 1 && xb != 1) {
            char s1[96], s2[96];
            return nbi_fail(ctx, NB_ERR_ARG, "%s: shapes %s and %s do not broadcast", op,
                            nb_shape_str(a, s1, sizeof s1), nb_shape_str(b, s2, sizeof s2));
        }
        shape[d] = xa > xb ? xa : xb;
        sa[d] = xa == 1 ? 0 : stra;
        sb[d] = xb == 1 ? 0 : strb;
        stra *= xa;
        strb *= xb;
    }
    *nd = n;
    return NB_OK;
}

/* The rule of a model file's add layer, which is not nb_add's broadcast:
 * in a network an add is a residual sum, and inputs that differ there are
 * a mistake in the file (a stride or a padding missing on one path) rather
 * than a broadcast wanted, which nb_add would give silently; equal shapes
 * also keep the sum of several inputs the shape of each. */
int nbi_add_equal_shape(int n, const nbi_shape *xs, const char *const *names, nbi_shape *y,
                        char *why)
{
    char l0[80], li[80], s0[96], si[96];
    for (int i = 1; i < n; i++)
        if (!nbi_shape_eq(&xs[i], &xs[0], -1))
            return nbi_why(why, "inputs %s %s and %s %s differ in shape",
                           nbi_input_str(names, 0, l0, sizeof l0),
                           nbi_shape_fmt(&xs[0], s0, sizeof s0),
                           nbi_input_str(names, i, li, sizeof li),
                           nbi_shape_fmt(&xs[i], si, sizeof si));
    *y = xs[0];
    return 0;
}

static nb_tensor *binary(nb_ctx *ctx, const nbi_op *op, int f, nb_tensor *a, nb_tensor *b)
{
    nb_tensor *in[2] = {a, b};
    if (!nbi_check_inputs(ctx, op->name, 2, in))
        return NULL;
    int nd = 0;
    int64_t shape[NB_MAX_DIMS], sa[NB_MAX_DIMS], sb[NB_MAX_DIMS];
    if (broadcast(ctx, op->name, a, b, &nd, shape, sa, sb) != NB_OK)
        return NULL;
    nb_tensor *y = nbi_step_tensor(ctx, a->dtype, nd, shape);
    if (!y)
        return NULL;
    walk w;
    walk_make(&w, nd, shape, sa, sb);
    NBI_CALL(a->dtype, binary_fwd, f, &w, a->data, b->data, y->data);
    if (nbi_needs_grad(ctx, 2, in)) {
        binary_node *n = nbi_record(ctx, op, sizeof *n, y, 2, in);
        if (!n)
            return NULL;
        n->f = f;
        n->w = w;
    }
    return y;
}

static int binary_backward(nb_ctx *ctx, nbi_node *node)
{
    binary_node *n = (binary_node *)node;
    nb_tensor *a = node->in[0], *b = node->in[1], *y = node->out;
    void *da = nbi_grad(ctx, a);
    void *db = nbi_grad(ctx, b);
    if ((a->requires_grad && !da) || (b->requires_grad && !db))
        return ctx->status;
    /* a's gradient first, then b's: when a and b are one tensor, each
     * element still receives a's share before b's, as y is walked. */
    if (da)
        NBI_CALL(y->dtype, binary_grad, n->f, 0, &n->w, a->numel == y->numel, b->data,
                 y->grad->data, da);
    if (db)
        NBI_CALL(y->dtype, binary_grad, n->f, 1, &n->w, b->numel == y->numel, a->data,
                 y->grad->data, db);
    return NB_OK;
}

const nbi_op nbi_op_add = {"add", binary_backward};
const nbi_op nbi_op_sub = {"sub", binary_backward};
const nbi_op nbi_op_mul = {"mul", binary_backward};

nb_tensor *nb_add(nb_ctx *ctx, nb_tensor *a, nb_tensor *b)
{
    return binary(ctx, &nbi_op_add, 0, a, b);
}

nb_tensor *nb_sub(nb_ctx *ctx, nb_tensor *a, nb_tensor *b)
{
    return binary(ctx, &nbi_op_sub, 1, a, b);
}

nb_tensor *nb_mul(nb_ctx *ctx, nb_tensor *a, nb_tensor *b)
{
    return binary(ctx, &nbi_op_mul, 2, a, b);
}

/* ---- scale, sum, mean: y = s x, y = s sum(x) --------------------------- */

typedef struct scaled_node {
    nbi_node base;
    double s;
} scaled_node;

static nb_tensor *scaled(nb_ctx *ctx, const nbi_op *op, nb_tensor *x, double s, bool reduce)
{
    if (!nbi_check_inputs(ctx, op->name, 1, &x))
        return NULL;
    nb_tensor *y = reduce ? nbi_step_tensor(ctx, x->dtype, 0, NULL)
                          : nbi_step_tensor(ctx, x->dtype, x->ndim, x->shape);
    if (!y)
        return NULL;
    if (reduce)
        NBI_CALL(x->dtype, sum_fwd, x->data, y->data, x->numel, s);
    else
        NBI_CALL(x->dtype, scale_fwd, x->data, y->data, x->numel, s);
    if (nbi_needs_grad(ctx, 1, &x)) {
        scaled_node *n = nbi_record(ctx, op, sizeof *n, y, 1, &x);
        if (!n)
            return NULL;
        n->s = s;
    }
    return y;
}

static int scale_backward(nb_ctx *ctx, nbi_node *node)
{
    nb_tensor *x = node->in[0];
    void *dx = nbi_grad(ctx, x);
    if (!dx)
        return ctx->status;
    NBI_CALL(x->dtype, scale_bwd, node->out->grad->data, dx, x->numel, ((scaled_node *)node)->s);
    return NB_OK;
}

static int sum_backward(nb_ctx *ctx, nbi_node *node)
{
    nb_tensor *x = node->in[0];
    void *dx = nbi_grad(ctx, x);
    if (!dx)
        return ctx->status;
    NBI_CALL(x->dtype, sum_bwd, node->out->grad->data, dx, x->numel, ((scaled_node *)node)->s);
    return NB_OK;
}

const nbi_op nbi_op_scale = {"scale", scale_backward};
const nbi_op nbi_op_sum = {"sum", sum_backward};
const nbi_op nbi_op_mean = {"mean", sum_backward};

nb_tensor *nb_scale(nb_ctx *ctx, nb_tensor *x, double s)
{
    return scaled(ctx, &nbi_op_scale, x, s, false);
}

nb_tensor *nb_sum(nb_ctx *ctx, nb_tensor *x)
{
    return scaled(ctx, &nbi_op_sum, x, 1.0, true);
}

nb_tensor *nb_mean(nb_ctx *ctx, nb_tensor *x)
{
    return scaled(ctx, &nbi_op_mean, x, x ? 1.0 / (double)x->numel : 1.0, true);
}

#endif
