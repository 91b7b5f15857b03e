/*
 * optim.c - SGD, Adam, AdamW and RMSprop with torch.optim's update rules
 * (the formulas are in nabla.h), gradient clipping and learning-rate
 * schedules.  State buffers are persistent tensors beside the parameters.
 */
#ifdef T /* ---- updates in T, named K(...) ------------------------------- */

/* One SGD step of n elements; b is the momentum buffer (NULL without
 * momentum); first says b holds nothing yet. */
static void K(sgd)(const nb_optim_opts *o, T *p, const T *grad, T *b, int64_t n, bool first)
{
    const T lr = (T)o->lr, wd = (T)o->weight_decay, mu = (T)o->momentum;
    const T damp = (T)(1.0 - o->dampening);
    for (int64_t i = 0; i < n; i++) {
        T g = grad[i] + wd * p[i];
        if (b) {
            b[i] = first ? g : mu * b[i] + damp * g;
            g = o->nesterov ? g + mu * b[i] : b[i];
        }
        p[i] -= lr * g;
    }
}

/* One Adam or AdamW step at step t (from 1); m, v are exp_avg and
 * exp_avg_sq. */
static void K(adam)(const nb_optim_opts *o, T *p, const T *grad, T *m, T *v, int64_t n,
                    int64_t t)
{
    const bool decoupled = o->kind == NB_ADAMW;
    const T b1 = (T)o->beta1, b2 = (T)o->beta2, eps = (T)o->eps;
    const T wd = (T)(decoupled ? 0.0 : o->weight_decay);
    const T decay = (T)(decoupled ? 1.0 - o->lr * o->weight_decay : 1.0);
    const T step = (T)(o->lr / (1.0 - pow(o->beta1, (double)t)));
    const T c2 = (T)sqrt(1.0 - pow(o->beta2, (double)t));
    for (int64_t i = 0; i < n; i++) {
        T g = grad[i] + wd * p[i];
        p[i] *= decay;
        m[i] = b1 * m[i] + (1 - b1) * g;
        v[i] = b2 * v[i] + (1 - b2) * g * g;
        p[i] -= step * m[i] / (sqrt(v[i]) / c2 + eps);
    }
}

/* One RMSprop step; v is square_avg, ga grad_avg (NULL unless centered),
 * b the momentum buffer (NULL without momentum). */
static void K(rmsprop)(const nb_optim_opts *o, T *p, const T *grad, T *v, T *ga, T *b,
                       int64_t n)
{
    const T lr = (T)o->lr, wd = (T)o->weight_decay, a = (T)o->alpha, eps = (T)o->eps;
    const T mu = (T)o->momentum;
    for (int64_t i = 0; i < n; i++) {
        T g = grad[i] + wd * p[i];
        v[i] = a * v[i] + (1 - a) * g * g;
        T c = v[i];
        if (ga) {
            ga[i] = a * ga[i] + (1 - a) * g;
            c -= ga[i] * ga[i];
        }
        T d = g / ((T)sqrt(c) + eps);
        if (b) {
            b[i] = mu * b[i] + d;
            d = b[i];
        }
        p[i] -= lr * d;
    }
}

#else /* ---- the optimizer ------------------------------------------------- */

#include "internal.h"

#include <math.h>

#define T float
#define K(f) f##_f32
#include "optim.c"
#undef T
#undef K
#define T double
#define K(f) f##_f64
#include "optim.c"
#undef T
#undef K

/* Buffers per parameter, by PyTorch's names; unused ones stay NULL. */
enum { MOMENTUM, EXP_AVG, EXP_AVG_SQ, SQUARE_AVG, GRAD_AVG, NBUF };
static const char *const buffer_names[NBUF] = {
    "momentum_buffer", "exp_avg", "exp_avg_sq", "square_avg", "grad_avg",
};

struct nb_optim {
    nb_ctx *ctx;
    nb_optim_opts opts;
    int n;
    nb_tensor **params;
    nb_tensor **state;  /* n x NBUF, row per parameter */
    nb_tensor **list;   /* the non-NULL state, for nb_optim_state */
    int nlist;
    int64_t steps;
};

static const char *const kind_names[] = {"sgd", "adam", "adamw", "rmsprop"};

const char *nb_optim_kind_name(nb_optim_kind kind)
{
    return kind >= NB_SGD && kind <= NB_RMSPROP ? kind_names[kind] : "unknown";
}

int nb_optim_kind_from_name(const char *name)
{
    for (int k = 0; k <= NB_RMSPROP; k++)
        if (name && strcmp(name, kind_names[k]) == 0)
            return k;
    return -1;
}

nb_optim_opts nb_optim_defaults(nb_optim_kind kind)
{
    nb_optim_opts o = {.kind = kind, .lr = 0.01, .beta1 = 0.9, .beta2 = 0.999,
                       .alpha = 0.99, .eps = 1e-8};
    if (kind == NB_ADAM || kind == NB_ADAMW)
        o.lr = 0.001;
    if (kind == NB_ADAMW)
        o.weight_decay = 0.01;
    return o;
}

/* The checks torch.optim makes of its hyperparameters. */
static int check_opts(nb_ctx *ctx, const nb_optim_opts *o)
{
    const char *k = nb_optim_kind_name(o->kind);
    if (o->kind < NB_SGD || o->kind > NB_RMSPROP)
        return nbi_fail(ctx, NB_ERR_ARG, "optimizer: unknown kind %d", (int)o->kind);
    if (!(o->lr >= 0) || !isfinite(o->lr))
        return nbi_fail(ctx, NB_ERR_ARG, "%s: invalid learning rate %g", k, o->lr);
    if (!(o->momentum >= 0))
        return nbi_fail(ctx, NB_ERR_ARG, "%s: invalid momentum %g", k, o->momentum);
    if (!(o->weight_decay >= 0))
        return nbi_fail(ctx, NB_ERR_ARG, "%s: invalid weight_decay %g", k, o->weight_decay);
    if (o->kind == NB_SGD && o->nesterov && (o->momentum <= 0 || o->dampening != 0))
        return nbi_fail(ctx, NB_ERR_ARG, "sgd: nesterov needs a momentum and zero dampening");
    if ((o->kind == NB_ADAM || o->kind == NB_ADAMW) &&
        (!(o->beta1 >= 0 && o->beta1 < 1) || !(o->beta2 >= 0 && o->beta2 < 1)))
        return nbi_fail(ctx, NB_ERR_ARG, "%s: betas (%g, %g) must be in [0, 1)", k, o->beta1,
                        o->beta2);
    if (o->kind == NB_RMSPROP && !(o->alpha >= 0))
        return nbi_fail(ctx, NB_ERR_ARG, "rmsprop: invalid alpha %g", o->alpha);
    if (o->kind != NB_SGD && !(o->eps >= 0))
        return nbi_fail(ctx, NB_ERR_ARG, "%s: invalid eps %g", k, o->eps);
    return NB_OK;
}

/* Which buffers a parameter needs under these options. */
static bool needs(const nb_optim_opts *o, int buf)
{
    switch (buf) {
    case MOMENTUM: return (o->kind == NB_SGD || o->kind == NB_RMSPROP) && o->momentum > 0;
    case EXP_AVG:
    case EXP_AVG_SQ: return o->kind == NB_ADAM || o->kind == NB_ADAMW;
    case SQUARE_AVG: return o->kind == NB_RMSPROP;
    case GRAD_AVG: return o->kind == NB_RMSPROP && o->centered;
    default: return false;
    }
}

nb_optim *nb_optim_new(nb_ctx *ctx, const nb_optim_opts *opts, int n,
                       nb_tensor *const *params)
{
    if (!opts || n < 0 || (n > 0 && !params))
        return nbi_fail_null(ctx, NB_ERR_ARG, "optimizer: no options or parameters");
    if (check_opts(ctx, opts) != NB_OK)
        return NULL;
    for (int i = 0; i < n; i++)
        if (!params[i])
            return nbi_fail_null(ctx, NB_ERR_ARG, "optimizer: parameter %d is NULL", i);
    nb_optim *o = nbi_alloc(ctx, sizeof *o);
    if (!o)
        return NULL;
    memset(o, 0, sizeof *o);
    o->ctx = ctx;
    o->opts = *opts;
    o->n = n;
    size_t m = (size_t)(n ? n : 1);
    o->params = nbi_alloc(ctx, m * sizeof *o->params);
    o->state = nbi_alloc(ctx, m * NBUF * sizeof *o->state);
    o->list = nbi_alloc(ctx, m * NBUF * sizeof *o->list);
    if (!o->params || !o->state || !o->list) {
        nb_optim_free(o);
        return NULL;
    }
    memset(o->state, 0, m * NBUF * sizeof *o->state);
    for (int i = 0; i < n; i++) {
        o->params[i] = params[i];
        for (int b = 0; b < NBUF; b++) {
            if (!needs(opts, b))
                continue;
            nb_tensor *t = nb_tensor_new(ctx, params[i]->dtype, params[i]->ndim, params[i]->shape);
            if (!t) {
                nb_optim_free(o);
                return NULL;
            }
            char name[sizeof t->name + 32];
            snprintf(name, sizeof name, "%s.%s", params[i]->name[0] ? params[i]->name : "param",
                     buffer_names[b]);
            nb_tensor_set_name(t, name);
            o->state[i * NBUF + b] = o->list[o->nlist++] = t;
        }
    }
    return o;
}

void nb_optim_free(nb_optim *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->nlist; i++)
        nb_tensor_free(o->list[i]);
    nbi_free(o->ctx, o->params);
    nbi_free(o->ctx, o->state);
    nbi_free(o->ctx, o->list);
    nbi_free(o->ctx, o);
}

static void *buf(const nb_optim *o, int i, int b)
{
    nb_tensor *t = o->state[i * NBUF + b];
    return t ? t->data : NULL;
}

int nb_optim_step(nb_optim *o)
{
    o->steps++;
    const nb_optim_opts *op = &o->opts;
    for (int i = 0; i < o->n; i++) {
        nb_tensor *p = o->params[i];
        if (!p->grad)
            continue;
        int64_t n = p->numel;
        switch (op->kind) {
        case NB_SGD:
            NBI_CALL(p->dtype, sgd, op, p->data, p->grad->data, buf(o, i, MOMENTUM), n,
                     o->steps == 1);
            break;
        case NB_ADAM:
        case NB_ADAMW:
            NBI_CALL(p->dtype, adam, op, p->data, p->grad->data, buf(o, i, EXP_AVG),
                     buf(o, i, EXP_AVG_SQ), n, o->steps);
            break;
        case NB_RMSPROP:
            NBI_CALL(p->dtype, rmsprop, op, p->data, p->grad->data, buf(o, i, SQUARE_AVG),
                     buf(o, i, GRAD_AVG), buf(o, i, MOMENTUM), n);
            break;
        }
    }
    return NB_OK;
}

void nb_optim_zero_grad(nb_optim *o)
{
    for (int i = 0; i < o->n; i++)
        if (o->params[i]->grad)
            nb_fill(o->params[i]->grad, 0.0);
}

double nb_optim_lr(const nb_optim *o)
{
    return o->opts.lr;
}

void nb_optim_set_lr(nb_optim *o, double lr)
{
    o->opts.lr = lr;
}

int64_t nb_optim_steps(const nb_optim *o)
{
    return o->steps;
}

void nb_optim_set_steps(nb_optim *o, int64_t steps)
{
    o->steps = steps;
}

int nb_optim_num_state(const nb_optim *o)
{
    return o->nlist;
}

nb_tensor *nb_optim_state(const nb_optim *o, int i)
{
    return i >= 0 && i < o->nlist ? o->list[i] : NULL;
}

/* ---- clipping and schedules -------------------------------------------- */

double nb_clip_grad_norm(int n, nb_tensor *const *params, double max_norm)
{
    double sq = 0;
    for (int i = 0; i < n; i++)
        if (params[i] && params[i]->grad)
            for (int64_t j = 0; j < params[i]->grad->numel; j++) {
                double g = nb_get(params[i]->grad, j);
                sq += g * g;
            }
    double norm = sqrt(sq);
    /* torch adds 1e-6 so a zero norm never divides. */
    double scale = max_norm / (norm + 1e-6);
    if (scale < 1)
        for (int i = 0; i < n; i++)
            if (params[i] && params[i]->grad)
                for (int64_t j = 0; j < params[i]->grad->numel; j++)
                    nb_set(params[i]->grad, j, nb_get(params[i]->grad, j) * scale);
    return norm;
}

double nb_lr_step(double lr, int epoch, int step_size, double gamma)
{
    return step_size > 0 ? lr * pow(gamma, (double)(epoch / step_size)) : lr;
}

double nb_lr_cosine(double lr, int epoch, int total, double min_lr)
{
    if (total <= 0)
        return lr;
    return min_lr + (lr - min_lr) * (1 + cos(3.14159265358979323846 * epoch / total)) / 2;
}

#endif
