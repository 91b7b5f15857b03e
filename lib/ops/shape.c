/*
 * shape.c - ops that move elements without arithmetic: reshape (a view
 * sharing its input's data; flatten is a reshape) and concat, with the
 * shape rules of flatten and concat that a model file's layers check too.
 */
#ifdef T /* ---- kernels in T, named K(...) ------------------------------- */

/* reshape: y = x under a new shape;  dx += dy (one flat layout) */
static void K(reshape_bwd)(const T *dy, T *dx, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        dx[i] += dy[i];
}

/* concat: y[o, off + j] = x[o, j] for each of `outer` blocks, where input
 * i is a block of `inner` elements at offset `off` in a row of `row`;
 * dx[o, j] += dy[o, off + j] */
static void K(concat_bwd)(int64_t outer, int64_t row, int64_t off, int64_t inner,
                          const T *dy, T *dx)
{
    for (int64_t o = 0; o < outer; o++)
        for (int64_t j = 0; j < inner; j++)
            dx[o * inner + j] += dy[o * row + off + j];
}

#else /* ---- builders and backward ----------------------------------------- */

#include "internal.h"

#include <inttypes.h>

#define T float
#define K(f) f##_f32
#include "shape.c"
#undef T
#undef K
#define T double
#define K(f) f##_f64
#include "shape.c"
#undef T
#undef K


/* ---- reshape and flatten ------------------------------------------------ */

/* Resolves a -1 in `want` into `shape`; false (after an error naming op)
 * when the sizes are invalid or do not hold x's elements. */
static bool resolve_shape(nb_ctx *ctx, const char *op, const nb_tensor *x, int ndim,
                          const int64_t *want, int64_t *shape)
{
    char xs[96], ws[128];
    if (ndim < 0 || ndim > NB_MAX_DIMS) {
        nbi_fail(ctx, NB_ERR_ARG, "%s: %d dimensions (at most %d)", op, ndim, NB_MAX_DIMS);
        return false;
    }
    if (ndim > 0 && !want) {
        nbi_fail(ctx, NB_ERR_ARG, "%s: shape is NULL", op);
        return false;
    }
    int inferred = -1;
    int64_t known = 1; /* product of the given sizes, stopped past numel */
    bool fits = true;
    for (int d = 0; d < ndim; d++) {
        if (want[d] == -1 && inferred < 0) {
            inferred = d;
            continue;
        }
        if (want[d] == -1) {
            nbi_fail(ctx, NB_ERR_ARG, "%s: only one size may be -1 in %s", op,
                     nb_dims_str(ndim, want, ws, sizeof ws));
            return false;
        }
        if (want[d] < 1) {
            nbi_fail(ctx, NB_ERR_ARG, "%s: size %" PRId64 " in %s is neither positive nor -1",
                     op, want[d], nb_dims_str(ndim, want, ws, sizeof ws));
            return false;
        }
        if (want[d] > x->numel / known)
            fits = false; /* also keeps the product from overflowing */
        else
            known *= want[d];
    }
    if (!fits || (inferred < 0 ? known != x->numel : x->numel % known != 0)) {
        nbi_fail(ctx, NB_ERR_ARG, "%s: cannot view %s (%" PRId64 " elements) as %s", op,
                 nb_shape_str(x, xs, sizeof xs), x->numel, nb_dims_str(ndim, want, ws, sizeof ws));
        return false;
    }
    for (int d = 0; d < ndim; d++)
        shape[d] = d == inferred ? x->numel / known : want[d];
    return true;
}

/* x checked; a view of x's data, recorded as a reshape. */
static nb_tensor *view(nb_ctx *ctx, nb_tensor *x, int ndim, const int64_t *shape)
{
    nb_tensor *y = nbi_step_view(ctx, x, ndim, shape);
    if (!y)
        return NULL;
    if (nbi_needs_grad(ctx, 1, &x) &&
        !nbi_record(ctx, &nbi_op_reshape, sizeof(nbi_node), y, 1, &x))
        return NULL;
    return y;
}

nb_tensor *nb_reshape(nb_ctx *ctx, nb_tensor *x, int ndim, const int64_t *shape)
{
    int64_t resolved[NB_MAX_DIMS];
    if (!nbi_check_inputs(ctx, "reshape", 1, &x) ||
        !resolve_shape(ctx, "reshape", x, ndim, shape, resolved))
        return NULL;
    return view(ctx, x, ndim, resolved);
}

/* One rule for both callers: the batch stays when there is one (the op's
 * [N, ...] -> [N, prod]), and a layer's example flattens whole, as the
 * layer then does the same to every example. */
int nbi_flatten_shape(const nbi_shape *x, bool batch, nbi_shape *y, char *why)
{
    char xs[96];
    if (x->ndim < batch)
        return nbi_why(why, "input %s has no batch dimension", nbi_shape_fmt(x, xs, sizeof xs));
    int64_t n = 1;
    for (int i = batch; i < x->ndim; i++)
        n = nbi_mul(n, x->d[i]);
    *y = *x;
    y->ndim = 1 + batch;
    y->d[batch] = n;
    return 0;
}

nb_tensor *nb_flatten(nb_ctx *ctx, nb_tensor *x)
{
    if (!nbi_check_inputs(ctx, "flatten", 1, &x))
        return NULL;
    nbi_shape xs = nbi_shape_of(x), ys;
    char why[NBI_WHY_SIZE];
    if (nbi_flatten_shape(&xs, true, &ys, why))
        return nbi_fail_null(ctx, NB_ERR_ARG, "flatten: %s", why);
    return view(ctx, x, ys.ndim, ys.d);
}

static int reshape_backward(nb_ctx *ctx, nbi_node *node)
{
    nb_tensor *x = node->in[0];
    void *dx = nbi_grad(ctx, x);
    if (!dx)
        return ctx->status;
    NBI_CALL(x->dtype, reshape_bwd, node->out->grad->data, dx, x->numel);
    return NB_OK;
}

const nbi_op nbi_op_reshape = {"reshape", reshape_backward};

/* ---- concat ------------------------------------------------------------- */

typedef struct concat_node {
    nbi_node base;
    int dim; /* resolved: 0 <= dim < ndim */
} concat_node;

/* The number of blocks concat copies: the product of the sizes before dim. */
static int64_t outer_size(const nb_tensor *x, int dim)
{
    int64_t n = 1;
    for (int d = 0; d < dim; d++)
        n *= x->shape[d];
    return n;
}

/* dim counts the dimensions of the shapes given, batch or not: a layer
 * joins its examples' channels at 0, which nb_concat is then given as 1.
 * Sizes are summed in int64; the model file bounds each to INT_MAX. */
int nbi_concat_shape(int n, const nbi_shape *xs, const char *const *names, int dim,
                     nbi_shape *y, int *dp, char *why)
{
    char s0[96], si[96], l0[80], li[80];
    nbi_shape_fmt(&xs[0], s0, sizeof s0);
    nbi_input_str(names, 0, l0, sizeof l0);
    int d = dim < 0 ? dim + xs[0].ndim : dim;
    if (d < 0 || d >= xs[0].ndim)
        return nbi_why(why, "dim %d is out of range for input %s %s", dim, l0, s0);
    *y = xs[0];
    for (int i = 1; i < n; i++) {
        if (!nbi_shape_eq(&xs[i], &xs[0], d))
            return nbi_why(why, "input %s %s does not match input %s %s outside dim %d",
                           nbi_input_str(names, i, li, sizeof li),
                           nbi_shape_fmt(&xs[i], si, sizeof si), l0, s0, d);
        y->d[d] += xs[i].d[d];
    }
    if (dp)
        *dp = d;
    return 0;
}

nb_tensor *nb_concat(nb_ctx *ctx, int n, nb_tensor *const *xs, int dim)
{
    if (n < 1)
        return nbi_fail_null(ctx, NB_ERR_ARG, "concat: needs at least one input, got %d", n);
    if (!xs)
        return nbi_fail_null(ctx, NB_ERR_ARG, "concat: the array of inputs is NULL");
    if (!nbi_check_inputs(ctx, "concat", n, xs))
        return NULL;
    /* The rule reads plain shapes: n of them in the step arena. */
    nbi_shape *s = nbi_scratch(ctx, sizeof *s * (size_t)n), ys;
    if (!s)
        return NULL;
    for (int i = 0; i < n; i++)
        s[i] = nbi_shape_of(xs[i]);
    char why[NBI_WHY_SIZE];
    int d;
    if (nbi_concat_shape(n, s, NULL, dim, &ys, &d, why))
        return nbi_fail_null(ctx, NB_ERR_ARG, "concat: %s", why);
    const nb_tensor *x0 = xs[0];
    nb_tensor *y = nbi_step_tensor(ctx, x0->dtype, ys.ndim, ys.d);
    if (!y)
        return NULL;
    /* y[o, off + j] = x_i[o, j]: a copy, the same for every dtype. */
    size_t es = nb_dtype_size(y->dtype);
    int64_t outer = outer_size(y, d), row = y->numel / outer, off = 0;
    for (int i = 0; i < n; i++) {
        int64_t inner = xs[i]->numel / outer;
        for (int64_t o = 0; o < outer; o++)
            memcpy((char *)y->data + (size_t)(o * row + off) * es,
                   (const char *)xs[i]->data + (size_t)(o * inner) * es, (size_t)inner * es);
        off += inner;
    }
    if (nbi_needs_grad(ctx, n, xs)) {
        concat_node *node = nbi_record(ctx, &nbi_op_concat, sizeof *node, y, n, xs);
        if (!node)
            return NULL;
        node->dim = d;
    }
    return y;
}

static int concat_backward(nb_ctx *ctx, nbi_node *node)
{
    nb_tensor *y = node->out;
    int64_t outer = outer_size(y, ((concat_node *)node)->dim), row = y->numel / outer, off = 0;
    for (int i = 0; i < node->nin; i++) {
        nb_tensor *x = node->in[i];
        int64_t inner = x->numel / outer;
        void *dx = nbi_grad(ctx, x);
        if (dx)
            NBI_CALL(x->dtype, concat_bwd, outer, row, off, inner, y->grad->data, dx);
        else if (x->requires_grad)
            return ctx->status;
        off += inner;
    }
    return NB_OK;
}

const nbi_op nbi_op_concat = {"concat", concat_backward};

#endif
