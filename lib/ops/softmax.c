/*
 * softmax.c - softmax and log_softmax along one dimension of any tensor.
 * The tensor is seen as [outer, len, inner]: len values along the
 * dimension, inner apart in memory, in each of outer * inner lanes.
 */
#ifdef T /* ---- kernels in T, named K(...) ------------------------------- */

/* softmax: y_k = e^(x_k - m) / s;  log_softmax: y_k = x_k - m - log s;
 * m = max_k x_k (so no exponential overflows), s = sum_k e^(x_k - m).
 * Lanes are independent: the threads share them. */
static void K(softmax_fwd)(bool take_log, const T *x, T *y, int64_t outer, int64_t len,
                           int64_t inner)
{
    int64_t lanes = outer * inner;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (lanes > 1 && nbi_par(lanes * len))
    for (int64_t l = 0; l < lanes; l++) {
        int64_t base = l / inner * len * inner + l % inner;
        const T *xl = x + base;
        T *yl = y + base;
        double m = xl[0];
        for (int64_t k = 1; k < len; k++)
            m = fmax(m, (double)xl[k * inner]);
        double s = 0;
        for (int64_t k = 0; k < len; k++)
            s += exp((double)xl[k * inner] - m);
        double ls = log(s);
        for (int64_t k = 0; k < len; k++) {
            double z = (double)xl[k * inner] - m;
            yl[k * inner] = (T)(take_log ? z - ls : exp(z) / s);
        }
    }
}

/* softmax: dx_k += y_k (dy_k - sum_j dy_j y_j);
 * log_softmax: dx_k += dy_k - e^(y_k) sum_j dy_j */
static void K(softmax_bwd)(bool take_log, const T *y, const T *dy, T *dx, int64_t outer,
                           int64_t len, int64_t inner)
{
    int64_t lanes = outer * inner;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (lanes > 1 && nbi_par(lanes * len))
    for (int64_t l = 0; l < lanes; l++) {
        int64_t base = l / inner * len * inner + l % inner;
        const T *yl = y + base, *dyl = dy + base;
        T *dxl = dx + base;
        double s = 0;
        for (int64_t k = 0; k < len; k++) {
            double g = dyl[k * inner];
            s += take_log ? g : g * (double)yl[k * inner];
        }
        for (int64_t k = 0; k < len; k++) {
            double g = dyl[k * inner], v = yl[k * inner];
            dxl[k * inner] += (T)(take_log ? g - exp(v) * s : v * (g - s));
        }
    }
}

#else /* ---- builders and backward ----------------------------------------- */

#include "internal.h"

#include <math.h>
#include <stdio.h>

#define T float
#define K(f) f##_f32
#include "softmax.c"
#undef T
#undef K
#define T double
#define K(f) f##_f64
#include "softmax.c"
#undef T
#undef K

typedef struct softmax_node {
    nbi_node base;
    int64_t outer, len, inner;
} softmax_node;

int nbi_softmax_dim(const nbi_shape *x, bool batch, int dim, int *dp, char *why)
{
    /* A scalar counts as one dimension of size 1, as in PyTorch.  One
     * example stands for [N, ...], whose dimension 0 it may not take. */
    int nd = batch ? (x->ndim ? x->ndim : 1) : x->ndim + 1, lo = !batch;
    int d = dim < 0 ? dim + nd : dim;
    if (d >= lo && d < nd) {
        if (dp)
            *dp = d;
        return 0;
    }
    char s[96], e[96], use[48];
    if (batch)
        nbi_shape_fmt(x, s, sizeof s);
    else /* "[N, 10]": dim counts from the batch */
        snprintf(s, sizeof s, "[N%s%s", x->ndim ? ", " : "", nbi_shape_fmt(x, e, sizeof e) + 1);
    if (nd - lo == 1)
        snprintf(use, sizeof use, "%d or -1", lo);
    else
        snprintf(use, sizeof use, "%d to %d, or -%d to -1", lo, nd - 1, nd - lo);
    return nbi_why(why, "dim %d is out of range for input %s: use %s", dim, s, use);
}

static nb_tensor *softmax(nb_ctx *ctx, const nbi_op *op, nb_tensor *x, int dim)
{
    const char *name = op->name;
    if (!nbi_check_inputs(ctx, name, 1, &x))
        return NULL;
    nbi_shape xs = nbi_shape_of(x);
    char why[NBI_WHY_SIZE];
    int d;
    if (nbi_softmax_dim(&xs, true, dim, &d, why))
        return nbi_fail_null(ctx, NB_ERR_ARG, "%s: %s", name, why);
    int64_t outer = 1, len = x->ndim ? x->shape[d] : 1, inner = 1;
    for (int i = 0; i < d; i++)
        outer *= x->shape[i];
    for (int i = d + 1; i < x->ndim; i++)
        inner *= x->shape[i];

    nb_tensor *y = nbi_step_tensor(ctx, x->dtype, x->ndim, x->shape);
    if (!y)
        return NULL;
    bool take_log = op == &nbi_op_log_softmax;
    NBI_CALL(x->dtype, softmax_fwd, take_log, x->data, y->data, outer, len, inner);
    if (nbi_needs_grad(ctx, 1, &x)) {
        softmax_node *n = nbi_record(ctx, op, sizeof *n, y, 1, &x);
        if (!n)
            return NULL;
        n->outer = outer;
        n->len = len;
        n->inner = inner;
    }
    return y;
}

/* Backward reads only the output y, which lives as long as the node. */
static int softmax_backward(nb_ctx *ctx, nbi_node *node)
{
    softmax_node *n = (softmax_node *)node;
    nb_tensor *x = node->in[0], *y = node->out;
    void *dx = nbi_grad(ctx, x);
    if (!dx)
        return ctx->status;
    NBI_CALL(x->dtype, softmax_bwd, node->op == &nbi_op_log_softmax, y->data, y->grad->data, dx,
             n->outer, n->len, n->inner);
    return NB_OK;
}

const nbi_op nbi_op_softmax = {"softmax", softmax_backward};
const nbi_op nbi_op_log_softmax = {"log_softmax", softmax_backward};

nb_tensor *nb_softmax(nb_ctx *ctx, nb_tensor *x, int dim)
{
    return softmax(ctx, &nbi_op_softmax, x, dim);
}

nb_tensor *nb_log_softmax(nb_ctx *ctx, nb_tensor *x, int dim)
{
    return softmax(ctx, &nbi_op_log_softmax, x, dim);
}

#endif
