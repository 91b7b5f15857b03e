/*
 * loss.c - scalar losses, each a mean over the batch as PyTorch's default
 * reduction='mean': softmax cross-entropy on class indices, mean squared
 * error, hinge.  Sums are accumulated in double, one per group of
 * NB_BATCH_GROUP examples (the first dimension), added by nbi_batch_sum,
 * and divided by the whole batch's count (nbi_batch_total), so a batch
 * split among threads or processes gives the same loss.
 */
#ifdef T /* ---- kernels in T, named K(...) ------------------------------- */

/* loss = (1/N) sum_i (lse_i - z[i, y_i]),
 * lse_i = m_i + log sum_j e^(z_ij - m_i), m_i = max_j z_ij (no overflow);
 * lse (n values) keeps each lse_i for backward and part[g] gets the terms
 * of group g's rows, added in order (nbi_batch_sum adds the groups, the
 * builder divides by the batch's N).  The rows' lse are independent (the
 * threads share them). */
static void K(cross_entropy_fwd)(const T *z, const int32_t *labels, double *lse, double *part,
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
    for (int64_t g = 0; g < nbi_batch_groups(n); g++) {
        double acc = 0;
        for (int64_t i = g * NB_BATCH_GROUP; i < n && i < (g + 1) * NB_BATCH_GROUP; i++)
            acc += lse[i] - (double)z[i * c + labels[i]];
        part[g] = acc;
    }
}

/* dz_ij += g (softmax(z_i)_j - [j == y_i]) / N, softmax(z_i)_j = e^(z_ij - lse_i),
 * N the batch's.  An infinite g takes PyTorch's order, g p - g at the label
 * (NaN there, as inf - inf), where g (p - 1) would be infinite. */
static void K(cross_entropy_bwd)(const T *z, const int32_t *labels, const double *lse,
                                 const T *dloss, T *dz, int64_t n, int64_t c, double total)
{
    double g = (double)dloss[0] / total;
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

/* part[g] = the sum of the terms (hinge's, or mse's) of a and b over the
 * examples of group g, `per` elements each, n examples in all. */
static void K(loss_groups)(bool hinge, const T *a, const T *b, int64_t n, int64_t per,
                           double *part)
{
    const T *pair[2] = {a, b};
    double (*range)(const void *, int64_t, int64_t) = hinge ? K(hinge_range) : K(mse_range);
    int64_t groups = nbi_batch_groups(n);
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (groups > 1 && nbi_par(n * per))
    for (int64_t g = 0; g < groups; g++) {
        int64_t hi = (g + 1) * NB_BATCH_GROUP < n ? (g + 1) * NB_BATCH_GROUP : n;
        part[g] = range(pair, g * NB_BATCH_GROUP * per, hi * per);
    }
}

/* dp += g 2 (p - t) / m;  dt -= g 2 (p - t) / m  over the n elements here, m
 * the batch's (dp or dt may be NULL; when p and t are one tensor, each
 * element gets dp's share first) */
static void K(mse_bwd)(const T *p, const T *t, const T *dloss, T *dp, T *dt, int64_t n, double m)
{
    double g = 2.0 * (double)dloss[0] / m;
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

/* As PyTorch's chain rule through relu(1 - y f): dv = g / m (m the batch's
 * elements, n here) where not
 * 1 - y f <= 0 (NaN included), else 0;  df += dv (-y), dy += dv (-f) (df or
 * dy may be NULL), products, so that an infinite or NaN factor gives NaN
 * even where dv is 0. */
static void K(hinge_bwd)(const T *f, const T *y, const T *dloss, T *df, T *dy, int64_t n,
                         double m)
{
    double g = (double)dloss[0] / m;
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
    double *part = nbi_scratch(ctx, (size_t)nbi_batch_groups(n) * sizeof *part);
    if (!loss || !lse || !part)
        return NULL;
    bool record = nbi_needs_grad(ctx, 1, &logits);
    int32_t *saved = record ? nbi_scratch(ctx, (size_t)n * sizeof *saved) : NULL;
    if (record && !saved)
        return NULL;
    NBI_CALL(logits->dtype, cross_entropy_fwd, logits->data, labels, lse, part, n, c);
    if (nbi_batch_sum(ctx, "cross_entropy", NB_F64, n, part, 1, part))
        return NULL;
    nb_set(loss, 0, part[0] / (double)nbi_batch_total(ctx, n));
    if (!record)
        return loss;
    memcpy(saved, labels, (size_t)n * sizeof *saved);
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
             z->shape[0], z->shape[1], (double)nbi_batch_total(ctx, z->shape[0]));
    return NB_OK;
}

const nbi_op nbi_op_cross_entropy = {"cross_entropy", cross_entropy_backward};

/* ---- mse_loss: pred and target of one shape ----------------------------- */

/* A loss over x's examples (its first dimension; one for a scalar): their
 * count here, and the elements of the whole batch's, for the mean. */
static int64_t loss_examples(const nb_ctx *ctx, const nb_tensor *x, double *m)
{
    int64_t n = x->ndim ? x->shape[0] : 1, per = n ? x->numel / n : 0;
    *m = (double)nbi_batch_total(ctx, n) * (double)per;
    return n;
}

/* loss = (1/m) sum of the terms over the batch's m elements */
static nb_tensor *loss_mean(nb_ctx *ctx, const char *op, bool hinge, nb_tensor *a, nb_tensor *b)
{
    double m;
    int64_t n = loss_examples(ctx, a, &m), per = n ? a->numel / n : 0;
    nb_tensor *loss = nbi_step_tensor(ctx, a->dtype, 0, NULL);
    double *part = nbi_scratch(ctx, (size_t)nbi_batch_groups(n) * sizeof *part);
    if (!loss || !part)
        return NULL;
    NBI_CALL(a->dtype, loss_groups, hinge, a->data, b->data, n, per, part);
    if (nbi_batch_sum(ctx, op, NB_F64, n, part, 1, part))
        return NULL;
    nb_set(loss, 0, part[0] / m);
    return loss;
}

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
    /* loss = (1/m) sum_i (p_i - t_i)^2 */
    nb_tensor *loss = loss_mean(ctx, "mse_loss", false, pred, target);
    if (!loss)
        return NULL;
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
    double m;
    loss_examples(ctx, p, &m);
    NBI_CALL(p->dtype, mse_bwd, p->data, t->data, node->out->grad->data, dp, dt, p->numel, m);
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
    /* loss = (1/m) sum_i max(0, 1 - y_i f_i) */
    nb_tensor *loss = loss_mean(ctx, "hinge_loss", true, f, y);
    if (!loss)
        return NULL;
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
    double m;
    loss_examples(ctx, f, &m);
    NBI_CALL(f->dtype, hinge_bwd, f->data, y->data, node->out->grad->data, df, dy, f->numel, m);
    return NB_OK;
}

const nbi_op nbi_op_hinge_loss = {"hinge_loss", hinge_backward};

#endif
