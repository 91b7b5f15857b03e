/*
 * arith.c - elementwise add, sub and mul with numpy broadcasting; scale;
 * sum and mean of all elements.
 */
#ifdef T /* ---- kernels in T, named K(...) ------------------------------- */

/* Walks the output in row-major order; sa and sb are the inputs' strides
 * in the output's dimensions, 0 where an input is broadcast.  f(a, b) is
 * 0: a + b, 1: a - b, 2: a * b. */
static void K(binary_fwd)(int f, int nd, const int64_t *shape, const int64_t *sa,
                          const int64_t *sb, const T *a, const T *b, T *y, int64_t n)
{
    int64_t idx[NB_MAX_DIMS] = {0}, oa = 0, ob = 0;
    for (int64_t i = 0; i < n; i++) {
        y[i] = f == 0 ? a[oa] + b[ob] : f == 1 ? a[oa] - b[ob] : a[oa] * b[ob];
        for (int d = nd - 1; d >= 0; d--) { /* next index, carrying */
            oa += sa[d];
            ob += sb[d];
            if (++idx[d] < shape[d])
                break;
            oa -= sa[d] * shape[d];
            ob -= sb[d] * shape[d];
            idx[d] = 0;
        }
    }
}

/* add: da += dy, db += dy;  sub: da += dy, db -= dy;
 * mul: da += dy b, db += dy a;  summed over broadcast positions. */
static void K(binary_bwd)(int f, int nd, const int64_t *shape, const int64_t *sa,
                          const int64_t *sb, const T *a, const T *b, const T *dy,
                          T *da, T *db, int64_t n)
{
    int64_t idx[NB_MAX_DIMS] = {0}, oa = 0, ob = 0;
    for (int64_t i = 0; i < n; i++) {
        if (da)
            da[oa] += f == 2 ? dy[i] * b[ob] : dy[i];
        if (db)
            db[ob] += f == 2 ? dy[i] * a[oa] : f == 1 ? -dy[i] : dy[i];
        for (int d = nd - 1; d >= 0; d--) {
            oa += sa[d];
            ob += sb[d];
            if (++idx[d] < shape[d])
                break;
            oa -= sa[d] * shape[d];
            ob -= sb[d] * shape[d];
            idx[d] = 0;
        }
    }
}

/* scale: y = s x;  dx += s dy */
static void K(scale_fwd)(const T *x, T *y, int64_t n, double s)
{
    for (int64_t i = 0; i < n; i++)
        y[i] = (T)s * x[i];
}
static void K(scale_bwd)(const T *dy, T *dx, int64_t n, double s)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] += (T)s * dy[i];
}

/* sum: y = s sum(x) (s = 1, or 1/n for the mean), accumulated in double;
 * dx += s dy */
static void K(sum_fwd)(const T *x, T *y, int64_t n, double s)
{
    double acc = 0;
    for (int64_t i = 0; i < n; i++)
        acc += x[i];
    y[0] = (T)(s * acc);
}
static void K(sum_bwd)(const T *dy, T *dx, int64_t n, double s)
{
    T g = (T)(s * dy[0]);
    for (int64_t i = 0; i < n; i++)
        dx[i] += g;
}

#else /* ---- builders and backward ----------------------------------------- */

#include "internal.h"

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
    int nd;
    int64_t sa[NB_MAX_DIMS], sb[NB_MAX_DIMS];
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

static nb_tensor *binary(nb_ctx *ctx, int op, int f, nb_tensor *a, nb_tensor *b)
{
    nb_tensor *in[2] = {a, b};
    if (!nbi_check_inputs(ctx, nbi_ops[op]->name, 2, in))
        return NULL;
    int nd = 0;
    int64_t shape[NB_MAX_DIMS], sa[NB_MAX_DIMS], sb[NB_MAX_DIMS];
    if (broadcast(ctx, nbi_ops[op]->name, a, b, &nd, shape, sa, sb) != NB_OK)
        return NULL;
    nb_tensor *y = nbi_step_tensor(ctx, a->dtype, nd, shape);
    if (!y)
        return NULL;
    NBI_CALL(a->dtype, binary_fwd, f, nd, shape, sa, sb, a->data, b->data, y->data, y->numel);
    if (nbi_needs_grad(ctx, 2, in)) {
        binary_node *n = nbi_record(ctx, op, sizeof *n, y, 2, in);
        if (!n)
            return NULL;
        n->f = f;
        n->nd = nd;
        memcpy(n->sa, sa, sizeof sa);
        memcpy(n->sb, sb, sizeof sb);
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
    NBI_CALL(y->dtype, binary_bwd, n->f, n->nd, y->shape, n->sa, n->sb, a->data, b->data,
             y->grad->data, da, db, y->numel);
    return NB_OK;
}

const nbi_op nbi_op_add = {"add", binary_backward};
const nbi_op nbi_op_sub = {"sub", binary_backward};
const nbi_op nbi_op_mul = {"mul", binary_backward};

nb_tensor *nb_add(nb_ctx *ctx, nb_tensor *a, nb_tensor *b)
{
    return binary(ctx, NBI_OP_add, 0, a, b);
}

nb_tensor *nb_sub(nb_ctx *ctx, nb_tensor *a, nb_tensor *b)
{
    return binary(ctx, NBI_OP_sub, 1, a, b);
}

nb_tensor *nb_mul(nb_ctx *ctx, nb_tensor *a, nb_tensor *b)
{
    return binary(ctx, NBI_OP_mul, 2, a, b);
}

/* ---- scale, sum, mean: y = s x, y = s sum(x) --------------------------- */

typedef struct scaled_node {
    nbi_node base;
    double s;
} scaled_node;

static nb_tensor *scaled(nb_ctx *ctx, int op, nb_tensor *x, double s, bool reduce)
{
    if (!nbi_check_inputs(ctx, nbi_ops[op]->name, 1, &x))
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
    return scaled(ctx, NBI_OP_scale, x, s, false);
}

nb_tensor *nb_sum(nb_ctx *ctx, nb_tensor *x)
{
    return scaled(ctx, NBI_OP_sum, x, 1.0, true);
}

nb_tensor *nb_mean(nb_ctx *ctx, nb_tensor *x)
{
    return scaled(ctx, NBI_OP_mean, x, x ? 1.0 / (double)x->numel : 1.0, true);
}

#endif
