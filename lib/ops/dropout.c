/*
 * dropout.c - inverted dropout, per element (dropout) or per [n, c]
 * channel plane (dropout2d).  Both record the one op "dropout": a mask
 * entry scales `plane` consecutive elements, 1 for dropout and the product
 * of the sizes after C for dropout2d.
 *
 * The masks come from a counter-based generator, so that a process holding
 * part of a batch draws for its examples what one process holding the
 * whole batch would: each call draws one 64-bit key from its nb_rng, and
 * entry j of example e (e counted in the whole batch, nbi_batch_first +
 * the index here) keeps its elements when u(key, e, j) >= p, with
 *     h = mix(mix(key ^ (e * 0x9E3779B97F4A7C15)) + j),
 *     u = (h >> 11) 2^-53,
 * mix splitmix64's finaliser: z ^= z >> 30, z *= 0xBF58476D1CE4E5B9,
 * z ^= z >> 27, z *= 0x94D049BB133111EB, z ^= z >> 31.
 */
#ifdef T /* ---- kernels in T, named K(...) ------------------------------- */

/* y = x m, m = [u >= p] / (1 - p), u = drop_u(key, e, j) for entry j of
 * example e (e0 + the row), `per` entries a row; saves m when mask is not
 * NULL.  Each entry is a function of its indices alone: the threads share
 * the rows. */
static void K(dropout_fwd)(const T *restrict x, T *restrict y, T *restrict mask, int64_t nmask,
                           int64_t per, int64_t plane, double p, uint64_t key, int64_t e0)
{
    T scale = (T)(1.0 / (1.0 - p));
    int64_t rows = nmask / per;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (rows > 1 && nbi_par(nmask * plane))
    for (int64_t r = 0; r < rows; r++) {
        uint64_t ke = drop_mix(key ^ ((uint64_t)(e0 + r) * 0x9E3779B97F4A7C15u));
        for (int64_t j = r * per; j < (r + 1) * per; j++) {
            T m = drop_u(ke, (uint64_t)(j - r * per)) >= p ? scale : 0;
            if (mask)
                mask[j] = m;
            const T *restrict xj = x + j * plane;
            T *restrict yj = y + j * plane;
#pragma omp simd
            for (int64_t k = 0; k < plane; k++)
                yj[k] = xj[k] * m;
        }
    }
}

/* dx += dy m;  a NULL mask is all ones (the identity).  Mask entries are
 * independent: the threads share them, or the elements when plane = 1. */
static void K(dropout_bwd)(const T *restrict dy, T *restrict dx, const T *restrict mask,
                           int64_t nmask, int64_t plane)
{
    int64_t n = nmask * plane;
    if (!mask) {
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
        for (int64_t k = 0; k < n; k++)
            dx[k] += dy[k];
        return;
    }
    if (plane == 1) {
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
        for (int64_t k = 0; k < n; k++)
            dx[k] += dy[k] * mask[k];
        return;
    }
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) if (nmask > 1 && nbi_par(n))
    for (int64_t j = 0; j < nmask; j++) {
        const T m = mask[j];
        const T *restrict dyj = dy + j * plane;
        T *restrict dxj = dx + j * plane;
#pragma omp simd
        for (int64_t k = 0; k < plane; k++)
            dxj[k] += dyj[k] * m;
    }
}

#else /* ---- builders and backward ----------------------------------------- */

#include "internal.h"

/* splitmix64's finaliser: a bijection that mixes every bit into every bit */
static inline uint64_t drop_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* u in [0, 1) with 53 bits for entry j of the example whose mixed key is ke */
static inline double drop_u(uint64_t ke, uint64_t j)
{
    return (double)(drop_mix(ke + j) >> 11) * 0x1.0p-53;
}

#define T float
#define K(f) f##_f32
#include "dropout.c"
#undef T
#undef K
#define T double
#define K(f) f##_f64
#include "dropout.c"
#undef T
#undef K

/* mask holds nmask scales of dtype, each for `plane` elements; NULL when
 * the op was the identity. */
typedef struct dropout_node {
    nbi_node base;
    void *mask;
    int64_t nmask, plane;
} dropout_node;

int nbi_dropout2d_shape(const nbi_shape *x, bool batch, char *why)
{
    char s[96];
    if (x->ndim < 2 + batch)
        return nbi_why(why, "input %s must be at least %s", nbi_shape_fmt(x, s, sizeof s),
                       batch ? "3-D [N, C, ...]" : "2-D [C, ...]");
    return 0;
}

static nb_tensor *dropout(nb_ctx *ctx, const char *op, nb_tensor *x, double p,
                          nb_rng *rng, bool channels)
{
    if (!nbi_check_inputs(ctx, op, 1, &x))
        return NULL;
    if (channels) {
        nbi_shape xs = nbi_shape_of(x);
        char why[NBI_WHY_SIZE];
        if (nbi_dropout2d_shape(&xs, true, why))
            return nbi_fail_null(ctx, NB_ERR_ARG, "%s: %s", op, why);
    }
    if (!(p >= 0 && p < 1)) /* also rejects NaN */
        return nbi_fail_null(ctx, NB_ERR_ARG, "%s: p = %g is outside [0, 1)", op, p);
    bool identity = !nb_training(ctx) || p == 0;
    if (!identity && !rng)
        return nbi_fail_null(ctx, NB_ERR_ARG, "%s: rng is NULL in train mode", op);
    bool record = nbi_needs_grad(ctx, 1, &x);

    /* The identity returns a view of x, and when x needs a gradient it still
     * records a dropout node, with a NULL mask standing for all ones: one op
     * and one backward for both modes, and no mask memory spent. */
    if (identity) {
        nb_tensor *y = nbi_step_view(ctx, x, x->ndim, x->shape);
        if (!y)
            return NULL;
        if (record) {
            dropout_node *n = nbi_record(ctx, &nbi_op_dropout, sizeof *n, y, 1, &x);
            if (!n)
                return NULL;
            n->mask = NULL;
            n->nmask = 1;
            n->plane = x->numel;
        }
        return y;
    }

    int64_t plane = channels ? x->numel / (x->shape[0] * x->shape[1]) : 1;
    int64_t nmask = x->numel / plane;
    nb_tensor *y = nbi_step_tensor(ctx, x->dtype, x->ndim, x->shape);
    if (!y)
        return NULL;
    void *mask = NULL;
    if (record) {
        mask = nbi_scratch(ctx, (size_t)nmask * nb_dtype_size(x->dtype));
        if (!mask)
            return NULL;
    }
    /* One key per call, drawn in the same order on every process. */
    uint64_t key = nb_rng_next(rng);
    int64_t per = x->ndim ? nmask / x->shape[0] : nmask; /* entries per example */
    NBI_CALL(x->dtype, dropout_fwd, x->data, y->data, mask, nmask, per, plane, p, key,
             nbi_batch_first(ctx));
    if (record) {
        dropout_node *n = nbi_record(ctx, &nbi_op_dropout, sizeof *n, y, 1, &x);
        if (!n)
            return NULL;
        n->mask = mask;
        n->nmask = nmask;
        n->plane = plane;
    }
    return y;
}

static int dropout_backward(nb_ctx *ctx, nbi_node *node)
{
    dropout_node *n = (dropout_node *)node;
    nb_tensor *x = node->in[0];
    void *dx = nbi_grad(ctx, x);
    if (!dx)
        return ctx->status;
    NBI_CALL(x->dtype, dropout_bwd, node->out->grad->data, dx, n->mask, n->nmask, n->plane);
    return NB_OK;
}

const nbi_op nbi_op_dropout = {"dropout", dropout_backward};

nb_tensor *nb_dropout(nb_ctx *ctx, nb_tensor *x, double p, nb_rng *rng)
{
    return dropout(ctx, "dropout", x, p, rng, false);
}

nb_tensor *nb_dropout2d(nb_ctx *ctx, nb_tensor *x, double p, nb_rng *rng)
{
    return dropout(ctx, "dropout2d", x, p, rng, true);
}

#endif
