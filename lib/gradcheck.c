/*
 * gradcheck.c - backward's gradients against central finite differences.
 * It drives the graph through its public calls (nb_graph_reset,
 * nb_backward), so any function built from ops can be checked, a single op
 * or a whole network; of the internals it uses only the context's
 * allocator and errors, and a tensor's persistent flag (a step tensor
 * would not survive the resets between evaluations).
 */
#include "internal.h"

#include <math.h>

static double eval_loss(nb_ctx *ctx, nb_loss_fn f, void *ud, int *rc)
{
    nb_graph_reset(ctx);
    nb_tensor *loss = f(ctx, ud);
    if (!loss) {
        *rc = ctx->status ? ctx->status
                          : nbi_fail(ctx, NB_ERR_ARG, "gradcheck: the function returned NULL");
        return NAN;
    }
    if (loss->numel != 1) {
        char s[96];
        *rc = nbi_fail(ctx, NB_ERR_GRAPH, "gradcheck: the function must return a scalar, got %s",
                       nb_shape_str(loss, s, sizeof s));
        return NAN;
    }
    return nb_get(loss, 0);
}

/* The analytic gradients, one block of numel doubles per tensor. */
static int analytic_grads(nb_ctx *ctx, nb_loss_fn f, void *ud, int n,
                          nb_tensor *const *wrt, double **out)
{
    for (int j = 0; j < n; j++)
        if (wrt[j]->grad)
            nb_fill(wrt[j]->grad, 0.0);
    nb_graph_reset(ctx);
    nb_tensor *loss = f(ctx, ud);
    int rc = nb_backward(ctx, loss);
    if (rc != NB_OK)
        return rc;
    for (int j = 0; j < n; j++) {
        out[j] = nbi_alloc(ctx, (size_t)wrt[j]->numel * sizeof(double));
        if (!out[j])
            return NB_ERR_NOMEM;
        for (int64_t i = 0; i < wrt[j]->numel; i++)
            out[j][i] = wrt[j]->grad ? nb_get(wrt[j]->grad, i) : 0.0;
    }
    return NB_OK;
}

/* Compares element i of tensor t; folds the result into r. */
static int check_element(nb_ctx *ctx, nb_loss_fn f, void *ud, nb_tensor *t,
                         int64_t i, double analytic, const nb_gradcheck_opts *o,
                         nb_gradcheck_report *r)
{
    int rc = NB_OK;
    double v = nb_get(t, i);
    nb_set(t, i, v + o->eps);
    double lp = eval_loss(ctx, f, ud, &rc);
    nb_set(t, i, v - o->eps);
    double lm = rc == NB_OK ? eval_loss(ctx, f, ud, &rc) : NAN;
    nb_set(t, i, v);
    if (rc != NB_OK)
        return rc;
    double numeric = (lp - lm) / (2.0 * o->eps);
    double err = fabs(analytic - numeric);
    double scale = fmax(fmax(fabs(analytic), fabs(numeric)), 1.0);
    double rel = err / scale;
    bool pass = err <= o->atol + o->rtol * fabs(numeric);
    if (!pass || isnan(err))
        r->ok = false;
    if (isnan(rel) || r->checked == 0 || rel > r->max_rel_err) {
        r->max_rel_err = isnan(rel) ? INFINITY : rel;
        r->worst = i;
        r->analytic = analytic;
        r->numeric = numeric;
    }
    if (err > r->max_abs_err || isnan(err))
        r->max_abs_err = isnan(err) ? INFINITY : err;
    r->checked++;
    return NB_OK;
}

static int check_tensor(nb_ctx *ctx, nb_loss_fn f, void *ud, nb_tensor *t,
                        const double *analytic, const nb_gradcheck_opts *o,
                        nb_rng *rng, nb_gradcheck_report *r)
{
    int64_t want = o->max_elems > 0 && o->max_elems < t->numel ? o->max_elems : t->numel;
    /* Selection sampling (Knuth's algorithm S): each index is kept with
     * probability (still wanted) / (still left), in increasing order. */
    int64_t left = t->numel;
    for (int64_t i = 0; i < t->numel && want > 0; i++, left--) {
        if (want < left && nb_rng_below(rng, (uint64_t)left) >= (uint64_t)want)
            continue;
        int rc = check_element(ctx, f, ud, t, i, analytic[i], o, r);
        if (rc != NB_OK)
            return rc;
        want--;
    }
    return NB_OK;
}

int nb_gradcheck(nb_ctx *ctx, nb_loss_fn f, void *ud, int n,
                 nb_tensor *const *wrt, const nb_gradcheck_opts *opts,
                 nb_gradcheck_report *report)
{
    if (!f || n < 0 || (n > 0 && (!wrt || !report)))
        return nbi_fail(ctx, NB_ERR_ARG, "gradcheck: no function, tensors or report");
    for (int j = 0; j < n; j++) {
        if (!wrt[j])
            return nbi_fail(ctx, NB_ERR_ARG, "gradcheck: tensor %d is NULL", j);
        if (wrt[j]->dtype != NB_F64)
            return nbi_fail(ctx, NB_ERR_ARG, "gradcheck: tensor %d (%s) is %s; checks need f64",
                            j, wrt[j]->name, nb_dtype_name(wrt[j]->dtype));
        if (!(wrt[j]->flags_ & NBI_PERSISTENT))
            return nbi_fail(ctx, NB_ERR_ARG, "gradcheck: tensor %d (%s) is not persistent",
                            j, wrt[j]->name);
    }
    nb_gradcheck_opts o = opts ? *opts : (nb_gradcheck_opts){0};
    if (o.eps <= 0)
        o.eps = 1e-6;
    if (o.atol <= 0)
        o.atol = 1e-5;
    if (o.rtol <= 0)
        o.rtol = 1e-3;
    nb_rng rng;
    nb_rng_seed(&rng, o.seed);

    bool *had = nbi_alloc(ctx, sizeof *had * (size_t)(n ? n : 1));
    double **analytic = nbi_alloc(ctx, sizeof *analytic * (size_t)(n ? n : 1));
    if (!had || !analytic) {
        nbi_free(ctx, had);
        nbi_free(ctx, analytic);
        return NB_ERR_NOMEM;
    }
    for (int j = 0; j < n; j++) {
        had[j] = wrt[j]->requires_grad;
        wrt[j]->requires_grad = true;
        analytic[j] = NULL;
        report[j] = (nb_gradcheck_report){.tensor = wrt[j], .ok = true};
    }

    int rc = analytic_grads(ctx, f, ud, n, wrt, analytic);
    bool grad_was = nb_set_grad_enabled(ctx, false);
    for (int j = 0; j < n && rc == NB_OK; j++)
        rc = check_tensor(ctx, f, ud, wrt[j], analytic[j], &o, &rng, &report[j]);
    nb_set_grad_enabled(ctx, grad_was);
    nb_graph_reset(ctx);

    for (int j = 0; j < n; j++) {
        wrt[j]->requires_grad = had[j];
        nbi_free(ctx, analytic[j]);
    }
    nbi_free(ctx, had);
    nbi_free(ctx, analytic);
    return rc;
}
