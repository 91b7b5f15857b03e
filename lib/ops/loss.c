/*
 * loss.c - scalar losses, each a mean over the batch as PyTorch's default
 * reduction='mean': softmax cross-entropy on class indices, mean squared
 * error, hinge.  Sums are accumulated in double.
 */
#ifdef T /* ---- kernels in T, named K(...) ------------------------------- */

/* loss = (1/N) sum_i (lse_i - z[i, y_i]),
 * lse_i = m_i + log sum_j e^(z_ij - m_i), m_i = max_j z_ij (no overflow);
 * lse (N values) keeps each lse_i for backward.  The rows' lse are
 * independent (the threads share them); the loss then adds the rows in
 * order, as on one thread. */
static void K(cross_entropy_fwd)(const T *z, const int32_t *labels, T *loss, double *lse,
                                 int64_t n, int64_t c)
{
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) if (n > 1 && nbi_par(n * c))
    for (int64_t i = 0; i < n; i++) {
        const T *row = z + i * c;
        double m = row[0], s = 0;
        for (int64_t j = 1; j < c; j++)
            m = fmax(m, (double)row[j]);
        for (int64_t j = 0; j < c; j++)
            s += exp((double)row[j] - m);
        lse[i] = m + log(s);
    }
    double acc = 0;
    for (int64_t i = 0; i < n; i++)
        acc += lse[i] - (double)z[i * c + labels[i]];
    loss[0] = (T)(acc / (double)n);
}

/* dz_ij += g (softmax(z_i)_j - [j == y_i]) / N, softmax(z_i)_j = e^(z_ij - lse_i).
 * An infinite g takes PyTorch's order, g p - g at the label (NaN there, as
 * inf - inf), where g (p - 1) would be infinite. */
static void K(cross_entropy_bwd)(const T *z, const int32_t *labels, const double *lse,
                                 const T *dloss, T *dz, int64_t n, int64_t c)
{
    double g = (double)dloss[0] / (double)n;
    bool finite = isfinite(g);
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) if (n > 1 && nbi_par(n * c))
    for (int64_t i = 0; i < n; i++)
        for (int64_t j = 0; j < c; j++) {
            double p = exp((double)z[i * c + j] - lse[i]);
            bool label = j == labels[i];
            dz[i * c + j] += (T)(finite ? g * (p - label) : g * p - (label ? g : 0));
        }
}

/* Sums in double of the terms of elements [lo, hi), in 8 lanes combined in
 * a fixed order, for nbi_blocked_sum; arg is a pair of arrays.
 * mse: (p - t)^2;  hinge: max(0, 1 - y f), NaN for NaN as relu's. */
static double K(mse_range)(const void *arg, int64_t lo, int64_t hi)
{
    const T *restrict p = ((const T *const *)arg)[0], *restrict t = ((const T *const *)arg)[1];
    double acc[8] = {0};
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8)
        for (int k = 0; k < 8; k++) {
            double d = (double)p[i + k] - (double)t[i + k];
            acc[k] += d * d;
        }
    for (int k = 0; i < hi; i++, k++) {
        double d = (double)p[i] - (double)t[i];
        acc[k] += d * d;
    }
    return NBI_LANES_SUM(acc);
}
static double K(hinge_range)(const void *arg, int64_t lo, int64_t hi)
{
    const T *restrict f = ((const T *const *)arg)[0], *restrict y = ((const T *const *)arg)[1];
    double acc[8] = {0};
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8)
        for (int k = 0; k < 8; k++) {
            double v = 1.0 - (double)y[i + k] * (double)f[i + k];
            acc[k] += v <= 0 ? 0 : v; /* max(0, v), a select */
        }
    for (int k = 0; i < hi; i++, k++) {
        double v = 1.0 - (double)y[i] * (double)f[i];
        acc[k] += v <= 0 ? 0 : v;
    }
    return NBI_LANES_SUM(acc);
}

/* The sum of n terms (hinge's, or mse's) of a and b. */
static double K(loss_sum)(bool hinge, const T *a, const T *b, int64_t n)
{
    const T *pair[2] = {a, b};
    return nbi_blocked_sum(n, hinge ? K(hinge_range) : K(mse_range), pair);
}

/* loss = (1/n) sum_i (p_i - t_i)^2 */
static void K(mse_fwd)(const T *p, const T *t, T *loss, int64_t n)
{
    loss[0] = (T)(K(loss_sum)(false, p, t, n) / (double)n);
}

/* dp += g 2 (p - t) / n;  dt -= g 2 (p - t) / n  (dp or dt may be NULL;
 * when p and t are one tensor, each element gets dp's share first) */
static void K(mse_bwd)(const T *p, const T *t, const T *dloss, T *dp, T *dt, int64_t n)
{
    double g = 2.0 * (double)dloss[0] / (double)n;
    if (dp) {
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
        for (int64_t i = 0; i < n; i++)
            dp[i] += (T)(g * ((double)p[i] - (double)t[i]));
    }
    if (dt) {
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
        for (int64_t i = 0; i < n; i++)
            dt[i] -= (T)(g * ((double)p[i] - (double)t[i]));
    }
}

/* loss = (1/n) sum_i max(0, 1 - y_i f_i) */
static void K(hinge_fwd)(const T *f, const T *y, T *loss, int64_t n)
{
    loss[0] = (T)(K(loss_sum)(true, f, y, n) / (double)n);
}

/* As PyTorch's chain rule through relu(1 - y f): dv = g / n where not
 * 1 - y f <= 0 (NaN included), else 0;  df += dv (-y), dy += dv (-f) (df or
 * dy may be NULL), products, so that an infinite or NaN factor gives NaN
 * even where dv is 0. */
static void K(hinge_bwd)(const T *f, const T *y, const T *dloss, T *df, T *dy, int64_t n)
{
    double g = (double)dloss[0] / (double)n;
    if (df) {
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
        for (int64_t i = 0; i < n; i++) {
            double dv = 1.0 - (double)y[i] * (double)f[i] <= 0 ? 0 : g;
            df[i] += (T)(dv * -(double)y[i]);
        }
    }
    if (dy) {
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
        for (int64_t i = 0; i < n; i++) {
            double dv = 1.0 - (double)y[i] * (double)f[i] <= 0 ? 0 : g;
            dy[i] += (T)(dv * -(double)f[i]);
        }
    }
}

#else /* ---- builders and backward ----------------------------------------- */

#include "internal.h"

#include <math.h>


#define T float
#define K(f) f##_f32
#include "loss.c"
#undef T
#undef K
#define T double
#define K(f) f##_f64
#include "loss.c"
#undef T
#undef K

/* ---- cross_entropy: logits [N, C], labels [N] in [0, C) ----------------- */

typedef struct cross_entropy_node {
    nbi_node base;
    int32_t *labels; /* the caller's labels, copied */
    double *lse;     /* each row's log-sum-exp */
} cross_entropy_node;

nb_tensor *nb_cross_entropy(nb_ctx *ctx, nb_tensor *logits, const int32_t *labels)
{
    if (!nbi_check_inputs(ctx, "cross_entropy", 1, &logits))
        return NULL;
    char s[96];
    if (logits->ndim != 2)
        return nbi_fail_null(ctx, NB_ERR_ARG, "cross_entropy: logits %s must be 2-D [N, C]",
                             nb_shape_str(logits, s, sizeof s));
    if (!labels)
        return nbi_fail_null(ctx, NB_ERR_ARG, "cross_entropy: labels is NULL");
    int64_t n = logits->shape[0], c = logits->shape[1];
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] >= c)
            return nbi_fail_null(ctx, NB_ERR_ARG,
                                 "cross_entropy: label %ld at index %lld is outside [0, %lld)",
                                 (long)labels[i], (long long)i, (long long)c);

    nb_tensor *loss = nbi_step_tensor(ctx, logits->dtype, 0, NULL);
    double *lse = nbi_scratch(ctx, (size_t)n * sizeof *lse);
    if (!loss || !lse)
        return NULL;
    if (!nbi_needs_grad(ctx, 1, &logits)) {
        NBI_CALL(logits->dtype, cross_entropy_fwd, logits->data, labels, loss->data, lse, n, c);
        return loss;
    }
    int32_t *saved = nbi_scratch(ctx, (size_t)n * sizeof *saved);
    if (!saved)
        return NULL;
    memcpy(saved, labels, (size_t)n * sizeof *saved);
    NBI_CALL(logits->dtype, cross_entropy_fwd, logits->data, labels, loss->data, lse, n, c);
    cross_entropy_node *node =
        nbi_record(ctx, &nbi_op_cross_entropy, sizeof *node, loss, 1, &logits);
    if (!node)
        return NULL;
    node->labels = saved;
    node->lse = lse;
    return loss;
}

static int cross_entropy_backward(nb_ctx *ctx, nbi_node *node)
{
    cross_entropy_node *n = (cross_entropy_node *)node;
    nb_tensor *z = node->in[0];
    void *dz = nbi_grad(ctx, z);
    if (!dz)
        return ctx->status;
    NBI_CALL(z->dtype, cross_entropy_bwd, z->data, n->labels, n->lse, node->out->grad->data, dz,
             z->shape[0], z->shape[1]);
    return NB_OK;
}

const nbi_op nbi_op_cross_entropy = {"cross_entropy", cross_entropy_backward};

/* ---- mse_loss: pred and target of one shape ----------------------------- */

nb_tensor *nb_mse_loss(nb_ctx *ctx, nb_tensor *pred, nb_tensor *target)
{
    nb_tensor *in[2] = {pred, target};
    if (!nbi_check_inputs(ctx, "mse_loss", 2, in))
        return NULL;
    if (!nb_same_shape(pred, target)) {
        char sp[96], st[96];
        return nbi_fail_null(ctx, NB_ERR_ARG, "mse_loss: pred %s and target %s differ in shape",
                             nb_shape_str(pred, sp, sizeof sp), nb_shape_str(target, st, sizeof st));
    }
    nb_tensor *loss = nbi_step_tensor(ctx, pred->dtype, 0, NULL);
    if (!loss)
        return NULL;
    NBI_CALL(pred->dtype, mse_fwd, pred->data, target->data, loss->data, pred->numel);
    if (nbi_needs_grad(ctx, 2, in) &&
        !nbi_record(ctx, &nbi_op_mse_loss, sizeof(nbi_node), loss, 2, in))
        return NULL;
    return loss;
}

static int mse_backward(nb_ctx *ctx, nbi_node *node)
{
    nb_tensor *p = node->in[0], *t = node->in[1];
    void *dp = nbi_grad(ctx, p);
    void *dt = nbi_grad(ctx, t);
    if ((p->requires_grad && !dp) || (t->requires_grad && !dt))
        return ctx->status;
    NBI_CALL(p->dtype, mse_bwd, p->data, t->data, node->out->grad->data, dp, dt, p->numel);
    return NB_OK;
}

const nbi_op nbi_op_mse_loss = {"mse_loss", mse_backward};

/* ---- hinge_loss: scores f and labels y of one numel --------------------- */

/* y in {-1, +1} is the caller's contract, not checked here: other values
 * still give a well-defined loss and gradient (y is differentiable too). */
nb_tensor *nb_hinge_loss(nb_ctx *ctx, nb_tensor *f, nb_tensor *y)
{
    nb_tensor *in[2] = {f, y};
    if (!nbi_check_inputs(ctx, "hinge_loss", 2, in))
        return NULL;
    if (f->numel != y->numel) {
        char sf[96], sy[96];
        return nbi_fail_null(ctx, NB_ERR_ARG,
                             "hinge_loss: scores %s have %lld elements, labels %s have %lld",
                             nb_shape_str(f, sf, sizeof sf), (long long)f->numel,
                             nb_shape_str(y, sy, sizeof sy), (long long)y->numel);
    }
    nb_tensor *loss = nbi_step_tensor(ctx, f->dtype, 0, NULL);
    if (!loss)
        return NULL;
    NBI_CALL(f->dtype, hinge_fwd, f->data, y->data, loss->data, f->numel);
    if (nbi_needs_grad(ctx, 2, in) &&
        !nbi_record(ctx, &nbi_op_hinge_loss, sizeof(nbi_node), loss, 2, in))
        return NULL;
    return loss;
}

static int hinge_backward(nb_ctx *ctx, nbi_node *node)
{
    nb_tensor *f = node->in[0], *y = node->in[1];
    void *df = nbi_grad(ctx, f);
    void *dy = nbi_grad(ctx, y);
    if ((f->requires_grad && !df) || (y->requires_grad && !dy))
        return ctx->status;
    NBI_CALL(f->dtype, hinge_bwd, f->data, y->data, node->out->grad->data, df, dy, f->numel);
    return NB_OK;
}

const nbi_op nbi_op_hinge_loss = {"hinge_loss", hinge_backward};

#endif
