/*
 * norm.c - layer norm and group norm: each example's values are cut into
 * rows of M values, each row normalised by its own mean and biased
 * variance, with no running statistics (train and eval alike).
 *
 * One geometry serves both.  x holds N examples of R rows of M values,
 * row r of example n at x[(n R + r) M].  Element i of row r meets
 * parameter (r % G) cpg + i / plane:
 *   layer_norm over its last dims (M values): G = 1, cpg = M, plane = 1,
 *     so parameter i, shaped as those dims; R = the rows before them;
 *   group_norm [N, C, *] in G groups: R = G, cpg = C / G channels of
 *     plane values each, so parameter c, [C].
 */
#ifdef T /* ---- kernels in T, named K(...) ------------------------------- */

/* mean and rstd = 1 / sqrt(var + eps) of each of the rows, in double
 * (two passes, 8 lanes in a fixed order); y = (x - mean) rstd w + b with
 * w = 1 and b = 0 when NULL.  Rows are independent: the threads share
 * them. */
static void K(norm_fwd)(const T *x, T *y, const T *w, const T *b, const norm_geom *g,
                        double eps, double *mean, double *rstd)
{
    const int64_t rows = g->n * g->r, M = g->m;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (rows > 1 && nbi_par(rows * M))
    for (int64_t row = 0; row < rows; row++) {
        const T *restrict xr = x + row * M;
        T *restrict yr = y + row * M;
        double s[8] = {0}, q[8] = {0};
        for (int64_t i = 0; i < M; i++)
            s[i & 7] += xr[i];
        const double mu = NBI_LANES_SUM(s) / (double)M;
        for (int64_t i = 0; i < M; i++)
            q[i & 7] += ((double)xr[i] - mu) * ((double)xr[i] - mu);
        const double rs = 1.0 / sqrt(NBI_LANES_SUM(q) / (double)M + eps);
        mean[row] = mu;
        rstd[row] = rs;
        const int64_t p0 = (row % g->groups) * g->cpg;
        for (int64_t c = 0, i = 0; c < g->cpg; c++) {
            const double a = rs * (w ? w[p0 + c] : 1), shift = b ? b[p0 + c] : 0;
            for (int64_t k = 0; k < g->plane; k++, i++)
                yr[i] = (T)(((double)xr[i] - mu) * a + shift);
        }
    }
}

/* With gw = dy w and xhat = (x - mean) rstd over each row:
 * dx += rstd (gw - mean(gw) - xhat mean(gw xhat)) */
static void K(norm_bwd_x)(const T *x, const T *dy, const T *w, const norm_geom *g,
                          const double *mean, const double *rstd, T *dx)
{
    const int64_t rows = g->n * g->r, M = g->m;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (rows > 1 && nbi_par(rows * M))
    for (int64_t row = 0; row < rows; row++) {
        const T *restrict xr = x + row * M, *restrict dyr = dy + row * M;
        T *restrict dxr = dx + row * M;
        const double mu = mean[row], rs = rstd[row];
        const int64_t p0 = (row % g->groups) * g->cpg;
        double sg[8] = {0}, sx[8] = {0};
        for (int64_t c = 0, i = 0; c < g->cpg; c++) {
            const double wc = w ? w[p0 + c] : 1;
            for (int64_t k = 0; k < g->plane; k++, i++) {
                double gw = dyr[i] * wc;
                sg[i & 7] += gw;
                sx[i & 7] += gw * (((double)xr[i] - mu) * rs);
            }
        }
        const double mg = NBI_LANES_SUM(sg) / (double)M, mx = NBI_LANES_SUM(sx) / (double)M;
        for (int64_t c = 0, i = 0; c < g->cpg; c++) {
            const double wc = w ? w[p0 + c] : 1;
            for (int64_t k = 0; k < g->plane; k++, i++) {
                double xhat = ((double)xr[i] - mu) * rs;
                dxr[i] += (T)(rs * (dyr[i] * wc - mg - xhat * mx));
            }
        }
    }
}

/* Per group q of NB_BATCH_GROUP examples and parameter p, in double:
 * part[q][p] = sum(dy xhat), part[q][P + p] = sum(dy) over the group's
 * values that meet p (examples in order, then rows, then 8 lanes along
 * the plane).  The (group, parameter) pairs are independent. */
static void K(norm_param_sums)(const T *x, const T *dy, const norm_geom *g, const double *mean,
                               const double *rstd, double *part)
{
    const int64_t P = g->groups * g->cpg, nq = nbi_batch_groups(g->n);
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (nq * P > 1 && nbi_par(g->n * g->r * g->m))
    for (int64_t qp = 0; qp < nq * P; qp++) {
        const int64_t q = qp / P, p = qp % P, n0 = q * NB_BATCH_GROUP;
        const int64_t n1 = n0 + NB_BATCH_GROUP < g->n ? n0 + NB_BATCH_GROUP : g->n;
        const int64_t grp = p / g->cpg, at = (p % g->cpg) * g->plane;
        double sx[8] = {0}, sd[8] = {0};
        for (int64_t n = n0; n < n1; n++)
            for (int64_t r = grp; r < g->r; r += g->groups) {
                const int64_t row = n * g->r + r;
                const T *restrict xr = x + row * g->m + at, *restrict dyr = dy + row * g->m + at;
                const double mu = mean[row], rs = rstd[row];
                for (int64_t k = 0; k < g->plane; k++) {
                    sx[k & 7] += dyr[k] * (((double)xr[k] - mu) * rs);
                    sd[k & 7] += dyr[k];
                }
            }
        part[q * 2 * P + p] = NBI_LANES_SUM(sx);
        part[q * 2 * P + P + p] = NBI_LANES_SUM(sd);
    }
}

/* dw += sum(dy xhat), db += sum(dy): the batch's sums, in T */
static void K(norm_param_add)(const double *sum, int64_t P, T *dw, T *db)
{
    for (int64_t p = 0; p < P; p++) {
        if (dw)
            dw[p] += (T)sum[p];
        if (db)
            db[p] += (T)sum[P + p];
    }
}

#else /* ---- builders and backward ----------------------------------------- */

#include "internal.h"

#include <inttypes.h>
#include <math.h>

typedef struct norm_geom {
    int64_t n, r, m;           /* examples, rows per example, values per row */
    int64_t groups, cpg, plane; /* parameter (r % groups) cpg + i / plane */
} norm_geom;

#define T float
#define K(f) f##_f32
#include "norm.c"
#undef T
#undef K
#define T double
#define K(f) f##_f64
#include "norm.c"
#undef T
#undef K

/* weight and bias are also among the inputs when given; mean and rstd are
 * each row's, in the step arena. */
typedef struct norm_node {
    nbi_node base;
    nb_tensor *weight, *bias;
    norm_geom g;
    double *mean, *rstd;
} norm_node;

/* w and b each must be [expect] when given. */
static int check_params(const nbi_shape *x, const nbi_shape *expect, const nbi_shape *w,
                        const nbi_shape *b, char *why)
{
    const nbi_shape *t[2] = {w, b};
    static const char *const names[2] = {"weight", "bias"};
    char xs[96], ts[96], es[96];
    for (int i = 0; i < 2; i++)
        if (t[i] && !nbi_shape_eq(t[i], expect, -1))
            return nbi_why(why, "%s %s does not match input %s: expected %s", names[i],
                           nbi_shape_fmt(t[i], ts, sizeof ts), nbi_shape_fmt(x, xs, sizeof xs),
                           nbi_shape_fmt(expect, es, sizeof es));
    return 0;
}

int nbi_layer_norm_shape(const nbi_shape *x, bool batch, int ndims, const nbi_shape *normalized,
                         const nbi_shape *w, const nbi_shape *b, nbi_shape *y, char *why)
{
    char xs[96], ns[96];
    nbi_shape_fmt(x, xs, sizeof xs);
    if (ndims < 1 || ndims > NB_MAX_DIMS - 1)
        return nbi_why(why, "normalises over %d dimensions: expected 1 to %d", ndims,
                       NB_MAX_DIMS - 1);
    if (normalized && x->ndim < ndims)
        return nbi_why(why, "normalized_shape %s has more dimensions than input %s",
                       nbi_shape_fmt(normalized, ns, sizeof ns), xs);
    if (x->ndim < ndims + batch)
        return nbi_why(why, "input %s has too few dimensions to normalise the last %d%s", xs,
                       ndims, batch ? " besides the batch's" : "");
    nbi_shape last = {ndims, {0}};
    for (int i = 0; i < ndims; i++)
        last.d[i] = x->d[x->ndim - ndims + i];
    if (normalized && !nbi_shape_eq(normalized, &last, -1))
        return nbi_why(why, "normalized_shape %s does not match the last %d dimension%s of "
                       "input %s", nbi_shape_fmt(normalized, ns, sizeof ns), ndims,
                       ndims == 1 ? "" : "s", xs);
    if (check_params(x, &last, w, b, why))
        return -1;
    *y = *x;
    return 0;
}

int nbi_group_norm_shape(const nbi_shape *x, bool batch, int64_t num_groups,
                         int64_t num_channels, const nbi_shape *w, const nbi_shape *b,
                         nbi_shape *y, char *why)
{
    char xs[96];
    nbi_shape_fmt(x, xs, sizeof xs);
    if (x->ndim < 1 + batch)
        return nbi_why(why, "input %s must be %s", xs, batch ? "[N, C, *]" : "[C, *]");
    int64_t C = x->d[batch];
    if (num_channels && num_channels != C)
        return nbi_why(why, "input %s has %" PRId64 " channel%s, but num_channels is %" PRId64,
                       xs, C, C == 1 ? "" : "s", num_channels);
    if (num_groups < 1 || C % num_groups)
        return nbi_why(why, "num_groups %" PRId64 " does not divide the %" PRId64
                       " channel%s of input %s", num_groups, C, C == 1 ? "" : "s", xs);
    nbi_shape chan = {1, {C}};
    if (check_params(x, &chan, w, b, why))
        return -1;
    *y = *x;
    return 0;
}

/* weight and bias: NULL, or of x's dtype. */
static bool check_dtypes(nb_ctx *ctx, const char *op, const nb_tensor *x, const nb_tensor *w,
                         const nb_tensor *b)
{
    const nb_tensor *t[2] = {w, b};
    static const char *const names[2] = {"weight", "bias"};
    for (int i = 0; i < 2; i++)
        if (t[i] && t[i]->dtype != x->dtype) {
            nbi_fail(ctx, NB_ERR_ARG, "%s: %s is %s but input is %s", op, names[i],
                     nb_dtype_name(t[i]->dtype), nb_dtype_name(x->dtype));
            return false;
        }
    return true;
}

/* The forward both builders share once their rule has passed. */
static nb_tensor *norm(nb_ctx *ctx, const nbi_op *op, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                       const norm_geom *g, double eps)
{
    char s[96];
    if (!(eps >= 0) || !isfinite(eps))
        return nbi_fail_null(ctx, NB_ERR_ARG, "%s: eps %g must be finite and at least 0 "
                             "(input %s)", op->name, eps, nb_shape_str(x, s, sizeof s));
    size_t rows = (size_t)(g->n * g->r);
    double *mean = nbi_scratch(ctx, sizeof *mean * (rows ? rows : 1));
    double *rstd = nbi_scratch(ctx, sizeof *rstd * (rows ? rows : 1));
    nb_tensor *y = nbi_step_tensor(ctx, x->dtype, x->ndim, x->shape);
    if (!mean || !rstd || !y)
        return NULL;
    NBI_CALL(x->dtype, norm_fwd, x->data, y->data, w ? w->data : NULL, b ? b->data : NULL, g,
             eps, mean, rstd);
    nb_tensor *in[3] = {x};
    int nin = 1;
    if (w)
        in[nin++] = w;
    if (b)
        in[nin++] = b;
    if (nbi_needs_grad(ctx, nin, in)) {
        norm_node *n = nbi_record(ctx, op, sizeof *n, y, nin, in);
        if (!n)
            return NULL;
        n->weight = w;
        n->bias = b;
        n->g = *g;
        n->mean = mean;
        n->rstd = rstd;
    }
    return y;
}

/* Inputs, dtypes, and the rule's message after the op's name. */
static bool norm_args(nb_ctx *ctx, const char *op, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                      nbi_shape *xs, nbi_shape *ws, nbi_shape *bs)
{
    if (!nbi_check_inputs(ctx, op, 1, &x) || !check_dtypes(ctx, op, x, w, b))
        return false;
    *xs = nbi_shape_of(x);
    if (w)
        *ws = nbi_shape_of(w);
    if (b)
        *bs = nbi_shape_of(b);
    return true;
}

nb_tensor *nb_layer_norm(nb_ctx *ctx, nb_tensor *x, int ndims, nb_tensor *w, nb_tensor *b,
                         double eps)
{
    nbi_shape xs, ws, bs, ys;
    char why[NBI_WHY_SIZE];
    if (!norm_args(ctx, "layer_norm", x, w, b, &xs, &ws, &bs))
        return NULL;
    if (nbi_layer_norm_shape(&xs, true, ndims, NULL, w ? &ws : NULL, b ? &bs : NULL, &ys, why))
        return nbi_fail_null(ctx, NB_ERR_ARG, "layer_norm: %s", why);
    int64_t M = 1;
    for (int i = x->ndim - ndims; i < x->ndim; i++)
        M *= x->shape[i];
    int64_t N = x->shape[0], R = 1; /* R: the rows of an example, before the last dims */
    for (int i = 1; i < x->ndim - ndims; i++)
        R *= x->shape[i];
    norm_geom g = {N, R, M, 1, M, 1};
    return norm(ctx, &nbi_op_layer_norm, x, w, b, &g, eps);
}

nb_tensor *nb_group_norm(nb_ctx *ctx, nb_tensor *x, int num_groups, nb_tensor *w, nb_tensor *b,
                         double eps)
{
    nbi_shape xs, ws, bs, ys;
    char why[NBI_WHY_SIZE];
    if (!norm_args(ctx, "group_norm", x, w, b, &xs, &ws, &bs))
        return NULL;
    if (nbi_group_norm_shape(&xs, true, num_groups, 0, w ? &ws : NULL, b ? &bs : NULL, &ys, why))
        return nbi_fail_null(ctx, NB_ERR_ARG, "group_norm: %s", why);
    int64_t N = x->shape[0], C = x->shape[1], plane = 1;
    for (int i = 2; i < x->ndim; i++)
        plane *= x->shape[i];
    norm_geom g = {N, num_groups, C / num_groups * plane, num_groups, C / num_groups, plane};
    return norm(ctx, &nbi_op_group_norm, x, w, b, &g, eps);
}

static int norm_backward(nb_ctx *ctx, nbi_node *node)
{
    norm_node *n = (norm_node *)node;
    nb_tensor *x = node->in[0], *y = node->out;
    void *dx = nbi_grad(ctx, x);
    void *dw = n->weight ? nbi_grad(ctx, n->weight) : NULL;
    void *db = n->bias ? nbi_grad(ctx, n->bias) : NULL;
    if ((x->requires_grad && !dx) || (n->weight && n->weight->requires_grad && !dw) ||
        (n->bias && n->bias->requires_grad && !db))
        return ctx->status;
    const norm_geom *g = &n->g;
    if (dx)
        NBI_CALL(x->dtype, norm_bwd_x, x->data, y->grad->data, n->weight ? n->weight->data : NULL,
                 g, n->mean, n->rstd, dx);
    if (!dw && !db)
        return NB_OK;
    /* Every process makes this exchange, whatever its share holds. */
    int64_t P = g->groups * g->cpg, nq = nbi_batch_groups(g->n);
    double *part = nbi_scratch(ctx, sizeof *part * (size_t)(2 * P * (nq > 1 ? nq : 1)));
    if (!part)
        return ctx->status;
    NBI_CALL(x->dtype, norm_param_sums, x->data, y->grad->data, g, n->mean, n->rstd, part);
    int rc = nbi_batch_sum(ctx, node->op->name, NB_F64, g->n, part, (size_t)(2 * P), part);
    if (rc)
        return rc;
    NBI_CALL(x->dtype, norm_param_add, part, P, dw, db);
    return NB_OK;
}

const nbi_op nbi_op_layer_norm = {"layer_norm", norm_backward};
const nbi_op nbi_op_group_norm = {"group_norm", norm_backward};

#endif
