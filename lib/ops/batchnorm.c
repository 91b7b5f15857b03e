/*
 * batchnorm.c - batch normalisation per channel over [N, C], [N, C, L]
 * or [N, C, H, W]: the statistics of channel c run over n and the plane
 * of everything after C, `plane` = 1, L or H * W elements, at
 * x[(n C + c) plane + k].  Running statistics are plain data updated in
 * place, never node inputs.
 */
#ifdef T /* ---- kernels in T, named K(...) ------------------------------- */

/* The sums over the batch come in partial sums per group of
 * NB_BATCH_GROUP examples (nbi_batch_sum adds them); a group's sum of a
 * channel runs in 8 lanes along each plane, combined in a fixed order.
 * The (group, channel) pairs, or the channels, are independent: the
 * threads share them. */

/* part[g][c] = sum over the examples n of group g of x[n][c] (mean NULL),
 * or of (x[n][c] - mean[c])^2, in double */
static void K(bn_group_sums)(const T *x, int64_t N, int64_t C, int64_t plane, const double *mean,
                             double *part)
{
    int64_t groups = nbi_batch_groups(N);
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (groups * C > 1 && nbi_par(N * C * plane))
    for (int64_t gc = 0; gc < groups * C; gc++) {
        int64_t g = gc / C, c = gc % C, n0 = g * NB_BATCH_GROUP;
        int64_t n1 = n0 + NB_BATCH_GROUP < N ? n0 + NB_BATCH_GROUP : N;
        double s[8] = {0}, mu = mean ? mean[c] : 0;
        for (int64_t n = n0; n < n1; n++) {
            const T *restrict xc = x + (n * C + c) * plane;
            int64_t i = 0;
            if (!mean) {
                for (; i + 8 <= plane; i += 8)
                    for (int k = 0; k < 8; k++)
                        s[k] += xc[i + k];
                for (; i < plane; i++)
                    s[i & 7] += xc[i];
                continue;
            }
            for (; i + 8 <= plane; i += 8)
                for (int k = 0; k < 8; k++)
                    s[k] += ((double)xc[i + k] - mu) * ((double)xc[i + k] - mu);
            for (; i < plane; i++)
                s[i & 7] += ((double)xc[i] - mu) * ((double)xc[i] - mu);
        }
        part[gc] = NBI_LANES_SUM(s);
    }
}

/* y = (x - mean) invstd w + b;  w = 1 and b = 0 when NULL */
static void K(bn_fwd)(const T *x, T *y, const T *w, const T *b, const double *mean,
                      const double *invstd, int64_t N, int64_t C, int64_t plane)
{
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (C > 1 && nbi_par(N * C * plane))
    for (int64_t c = 0; c < C; c++) {
        const double a = invstd[c] * (w ? w[c] : 1), shift = b ? b[c] : 0, mu = mean[c];
        for (int64_t n = 0; n < N; n++) {
            const T *restrict xc = x + (n * C + c) * plane;
            T *restrict yc = y + (n * C + c) * plane;
#pragma omp simd
            for (int64_t i = 0; i < plane; i++)
                yc[i] = (T)(((double)xc[i] - mu) * a + shift);
        }
    }
}

/* xhat = (x - mean) invstd; per group g of examples,
 * part[g][c] = sum(dy), part[g][C + c] = sum(dy xhat), in double */
static void K(bn_bwd_sums)(const T *x, const T *dy, const double *mean, const double *invstd,
                           int64_t N, int64_t C, int64_t plane, double *part)
{
    int64_t groups = nbi_batch_groups(N);
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (groups * C > 1 && nbi_par(N * C * plane))
    for (int64_t gc = 0; gc < groups * C; gc++) {
        int64_t g = gc / C, c = gc % C, n0 = g * NB_BATCH_GROUP;
        int64_t n1 = n0 + NB_BATCH_GROUP < N ? n0 + NB_BATCH_GROUP : N;
        const double mu = mean[c], is = invstd[c];
        double sd[8] = {0}, sx[8] = {0};
        for (int64_t n = n0; n < n1; n++) {
            const int64_t at = (n * C + c) * plane;
            const T *restrict xc = x + at, *restrict dyc = dy + at;
            int64_t i = 0;
            for (; i + 8 <= plane; i += 8)
                for (int k = 0; k < 8; k++) {
                    sd[k] += dyc[i + k];
                    sx[k] += dyc[i + k] * ((double)xc[i + k] - mu) * is;
                }
            for (; i < plane; i++) {
                sd[i & 7] += dyc[i];
                sx[i & 7] += dyc[i] * ((double)xc[i] - mu) * is;
            }
        }
        part[g * 2 * C + c] = NBI_LANES_SUM(sd);
        part[g * 2 * C + C + c] = NBI_LANES_SUM(sx);
    }
}

/* With the batch's sums sum[c] = sum(dy), sum[C + c] = sum(dy xhat) and m
 * values per channel in the whole batch:  db += sum(dy), dw += sum(dy xhat);
 * batch statistics: dx += w invstd / m (m dy - sum(dy) - xhat sum(dy xhat));
 * running statistics (constants): dx += dy w invstd */
static void K(bn_bwd)(const T *x, const T *dy, const T *w, const double *mean,
                      const double *invstd, bool batch, double m, const double *sum, T *dx,
                      T *dw, T *db, int64_t N, int64_t C, int64_t plane)
{
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (C > 1 && nbi_par(N * C * plane))
    for (int64_t c = 0; c < C; c++) {
        const double mu = mean[c], is = invstd[c], sdy = sum[c], sdyx = sum[C + c];
        if (dw)
            dw[c] += (T)sdyx;
        if (db)
            db[c] += (T)sdy;
        if (!dx)
            continue;
        double g = (w ? w[c] : 1) * is;
        for (int64_t n = 0; n < N; n++) {
            const int64_t at = (n * C + c) * plane;
            const T *restrict xc = x + at, *restrict dyc = dy + at;
            T *restrict dxc = dx + at;
            if (batch) {
#pragma omp simd
                for (int64_t i = 0; i < plane; i++) {
                    double xhat = ((double)xc[i] - mu) * is;
                    dxc[i] += (T)(g / m * (m * dyc[i] - sdy - xhat * sdyx));
                }
            } else {
#pragma omp simd
                for (int64_t i = 0; i < plane; i++)
                    dxc[i] += (T)(g * dyc[i]);
            }
        }
    }
}

#else /* ---- builders and backward ----------------------------------------- */

#include "internal.h"

#include <inttypes.h>
#include <math.h>


#define T float
#define K(f) f##_f32
#include "batchnorm.c"
#undef T
#undef K
#define T double
#define K(f) f##_f64
#include "batchnorm.c"
#undef T
#undef K

/* weight and bias are also among the inputs when given; mean and invstd
 * are the statistics the forward used, per channel. */
typedef struct bn_node {
    nbi_node base;
    nb_tensor *weight, *bias;
    double *mean, *invstd;
    bool batch; /* batch statistics, which depend on x */
    double m;   /* values per channel in the whole batch */
} bn_node;

static const char *const bn_chan_names[4] = {"weight", "bias", "running_mean", "running_var"};

int nbi_batch_norm_shape(const nbi_shape *x, bool batch, int64_t num_features,
                         const nbi_shape *const *chan, nbi_shape *y, char *why)
{
    char xs[96], ts[96];
    nbi_shape_fmt(x, xs, sizeof xs);
    if (x->ndim < 1 + batch || x->ndim > 3 + batch)
        return nbi_why(why, "input %s must be %s", xs,
                       batch ? "[N, C], [N, C, L] or [N, C, H, W]" : "[C], [C, L] or [C, H, W]");
    int64_t C = x->d[batch];
    if (num_features && num_features != C)
        return nbi_why(why, "input %s has %" PRId64 " channel%s, but num_features is %" PRId64,
                       xs, C, C == 1 ? "" : "s", num_features);
    for (int i = 0; chan && i < 4; i++)
        if (chan[i] && (chan[i]->ndim != 1 || chan[i]->d[0] != C))
            return nbi_why(why, "%s %s does not match input %s: expected [%" PRId64 "]",
                           bn_chan_names[i], nbi_shape_fmt(chan[i], ts, sizeof ts), xs, C);
    *y = *x;
    return 0;
}

/* weight, bias and the running statistics: NULL, or of x's dtype. */
static bool check_dtype(nb_ctx *ctx, const char *what, const nb_tensor *t, const nb_tensor *x)
{
    if (!t || t->dtype == x->dtype)
        return true;
    nbi_fail(ctx, NB_ERR_ARG, "batch_norm: %s is %s but input is %s", what,
             nb_dtype_name(t->dtype), nb_dtype_name(x->dtype));
    return false;
}

nb_tensor *nb_batch_norm(nb_ctx *ctx, nb_tensor *x, nb_tensor *weight,
                         nb_tensor *bias, nb_tensor *running_mean,
                         nb_tensor *running_var, double momentum, double eps)
{
    if (!nbi_check_inputs(ctx, "batch_norm", 1, &x))
        return NULL;
    nb_tensor *t[4] = {weight, bias, running_mean, running_var};
    nbi_shape xs = nbi_shape_of(x), ts[4], ys;
    const nbi_shape *chan[4];
    for (int i = 0; i < 4; i++) {
        if (!check_dtype(ctx, bn_chan_names[i], t[i], x))
            return NULL;
        if (t[i])
            ts[i] = nbi_shape_of(t[i]);
        chan[i] = t[i] ? &ts[i] : NULL;
    }
    char why[NBI_WHY_SIZE], s[96];
    if (nbi_batch_norm_shape(&xs, true, 0, chan, &ys, why))
        return nbi_fail_null(ctx, NB_ERR_ARG, "batch_norm: %s", why);
    if (!running_mean != !running_var)
        return nbi_fail_null(ctx, NB_ERR_ARG,
                             "batch_norm: running_mean and running_var must both be given or both be NULL");
    int64_t N = x->shape[0], C = x->shape[1], plane = x->numel / (N * C);
    int64_t m = nbi_batch_total(ctx, N) * plane; /* the whole batch's, split or not */
    /* Without running statistics, eval mode uses the batch's too, as PyTorch's
     * BatchNorm with track_running_stats=False. */
    bool batch = nb_training(ctx) || !running_mean;
    if (batch && m == 1)
        return nbi_fail_null(ctx, NB_ERR_ARG,
                             "batch_norm: input %s has 1 value per channel; batch statistics need more",
                             nb_shape_str(x, s, sizeof s));

    double *mean = nbi_scratch(ctx, sizeof *mean * (size_t)C);
    double *var = nbi_scratch(ctx, sizeof *var * (size_t)C);
    double *invstd = nbi_scratch(ctx, sizeof *invstd * (size_t)C);
    double *part = batch ? nbi_scratch(ctx, sizeof *part * (size_t)(nbi_batch_groups(N) * C)) : NULL;
    nb_tensor *y = nbi_step_tensor(ctx, x->dtype, ys.ndim, ys.d);
    if (!mean || !var || !invstd || !y || (batch && !part))
        return NULL;
    if (batch) { /* mean = sum(x) / m, var = sum((x - mean)^2) / m (biased): two passes */
        NBI_CALL(x->dtype, bn_group_sums, x->data, N, C, plane, NULL, part);
        if (nbi_batch_sum(ctx, "batch_norm", NB_F64, N, part, (size_t)C, mean))
            return NULL;
        for (int64_t c = 0; c < C; c++)
            mean[c] /= (double)m;
        NBI_CALL(x->dtype, bn_group_sums, x->data, N, C, plane, mean, part);
        if (nbi_batch_sum(ctx, "batch_norm", NB_F64, N, part, (size_t)C, var))
            return NULL;
        for (int64_t c = 0; c < C; c++)
            var[c] /= (double)m;
    } else {
        for (int64_t c = 0; c < C; c++) {
            mean[c] = nb_get(running_mean, c);
            var[c] = nb_get(running_var, c);
        }
    }
    for (int64_t c = 0; c < C; c++)
        invstd[c] = 1.0 / sqrt(var[c] + eps);
    NBI_CALL(x->dtype, bn_fwd, x->data, y->data, weight ? weight->data : NULL,
             bias ? bias->data : NULL, mean, invstd, N, C, plane);

    nb_tensor *in[3] = {x};
    int nin = 1;
    if (weight)
        in[nin++] = weight;
    if (bias)
        in[nin++] = bias;
    if (nbi_needs_grad(ctx, nin, in)) {
        bn_node *n = nbi_record(ctx, &nbi_op_batch_norm, sizeof *n, y, nin, in);
        if (!n)
            return NULL;
        n->weight = weight;
        n->bias = bias;
        n->mean = mean;
        n->invstd = invstd;
        n->batch = batch;
        n->m = (double)m;
    }
    /* Last, so that a failed call leaves the running statistics alone. */
    if (batch && running_mean)
        for (int64_t c = 0; c < C; c++) {
            double unbiased = var[c] * (double)m / (double)(m - 1);
            nb_set(running_mean, c, (1 - momentum) * nb_get(running_mean, c) + momentum * mean[c]);
            nb_set(running_var, c, (1 - momentum) * nb_get(running_var, c) + momentum * unbiased);
        }
    return y;
}

static int bn_backward(nb_ctx *ctx, nbi_node *node)
{
    bn_node *n = (bn_node *)node;
    nb_tensor *x = node->in[0], *y = node->out;
    void *dx = nbi_grad(ctx, x);
    void *dw = n->weight ? nbi_grad(ctx, n->weight) : NULL;
    void *db = n->bias ? nbi_grad(ctx, n->bias) : NULL;
    if ((x->requires_grad && !dx) || (n->weight && n->weight->requires_grad && !dw) ||
        (n->bias && n->bias->requires_grad && !db))
        return ctx->status;
    int64_t N = x->shape[0], C = x->shape[1], plane = x->numel / (N * C);
    double *part = nbi_scratch(ctx, sizeof *part * (size_t)(nbi_batch_groups(N) * 2 * C));
    if (!part)
        return ctx->status;
    NBI_CALL(x->dtype, bn_bwd_sums, x->data, y->grad->data, n->mean, n->invstd, N, C, plane, part);
    int rc = nbi_batch_sum(ctx, "batch_norm", NB_F64, N, part, (size_t)(2 * C), part);
    if (rc)
        return rc;
    NBI_CALL(x->dtype, bn_bwd, x->data, y->grad->data, n->weight ? n->weight->data : NULL,
             n->mean, n->invstd, n->batch, n->m, part, dx, dw, db, N, C, plane);
    return NB_OK;
}

const nbi_op nbi_op_batch_norm = {"batch_norm", bn_backward};

#endif
