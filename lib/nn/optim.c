/*
 * optim.c - SGD, Adam, AdamW and RMSprop with torch.optim's update rules
 * (the formulas are in nabla.h), gradient clipping and learning-rate
 * schedules.  State buffers are persistent tensors beside the parameters.
 */
#ifdef T /* ---- updates in T, named K(...) ------------------------------- */
#ifdef ATTR /* ---- the updates, for one CPU variant ------------------------- */

/* Each update is one pass over raw arrays, elements independent: split
 * over the threads in contiguous ranges, so the result does not depend on
 * the thread count, and vectorised (flags that a loop would branch on are
 * tested outside it).  Compiled for each CPU variant (UPDATE picks one):
 * AVX2's and AVX-512's fuse the same multiply-adds, so they agree to the
 * bit, and differ from the baseline's in the last bits. */

/* SGD on elements [lo, hi); b is the momentum buffer (NULL without
 * momentum); first says b holds nothing yet.  One loop per combination of
 * the flags, so none tests a flag per element. */
#define SGD_LOOP(first, nesterov)                                             \
    {                                                                         \
    _Pragma("omp simd")                                                       \
    for (int64_t i = lo; i < hi; i++) {                                       \
        T g = grad[i] + wd * p[i];                                            \
        T m = first ? g : mu * b[i] + damp * g;                               \
        b[i] = m;                                                             \
        p[i] -= lr * (nesterov ? g + mu * m : m);                             \
    }                                                                         \
    }
ATTR static void K(sgd_range)(const nb_optim_opts *o, T *restrict p, const T *restrict grad,
                         T *restrict b, int64_t lo, int64_t hi, bool first)
{
    const T lr = (T)o->lr, wd = (T)o->weight_decay, mu = (T)o->momentum;
    const T damp = (T)(1.0 - o->dampening);
    if (!b) {
#pragma omp simd
        for (int64_t i = lo; i < hi; i++)
            p[i] -= lr * (grad[i] + wd * p[i]);
    } else if (first && o->nesterov)
        SGD_LOOP(1, 1)
    else if (first)
        SGD_LOOP(1, 0)
    else if (o->nesterov)
        SGD_LOOP(0, 1)
    else
        SGD_LOOP(0, 0)
}
#undef SGD_LOOP

/* Adam or AdamW on elements [lo, hi) at step t (from 1); m, v are exp_avg
 * and exp_avg_sq. */
ATTR static void K(adam_range)(const nb_optim_opts *o, T *restrict p, const T *restrict grad,
                          T *restrict m, T *restrict v, int64_t lo, int64_t hi, int64_t t)
{
    const bool decoupled = o->kind == NB_ADAMW;
    const T b1 = (T)o->beta1, b2 = (T)o->beta2, eps = (T)o->eps;
    const T wd = (T)(decoupled ? 0.0 : o->weight_decay);
    const T decay = (T)(decoupled ? 1.0 - o->lr * o->weight_decay : 1.0);
    const T step = (T)(o->lr / (1.0 - pow(o->beta1, (double)t)));
    const T c2 = (T)sqrt(1.0 - pow(o->beta2, (double)t));
#pragma omp simd
    for (int64_t i = lo; i < hi; i++) {
        T g = grad[i] + wd * p[i];
        T mi = b1 * m[i] + (1 - b1) * g;
        T vi = b2 * v[i] + (1 - b2) * g * g;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * decay - step * mi / (SQRT(vi) / c2 + eps);
    }
}

/* RMSprop on elements [lo, hi); v is square_avg, ga grad_avg (NULL unless
 * centered), b the momentum buffer (NULL without momentum).  One loop per
 * combination, so none tests a pointer per element. */
#define RMSPROP_LOOP(centered, momentum)                                      \
    {                                                                         \
    _Pragma("omp simd")                                                       \
    for (int64_t i = lo; i < hi; i++) {                                       \
        T g = grad[i] + wd * p[i];                                            \
        T c = a * v[i] + (1 - a) * g * g;                                     \
        v[i] = c;                                                             \
        if (centered) {                                                       \
            T gi = a * ga[i] + (1 - a) * g;                                   \
            ga[i] = gi;                                                       \
            c -= gi * gi;                                                     \
        }                                                                     \
        T d = g / (SQRT(c) + eps);                                            \
        if (momentum) {                                                       \
            d = mu * b[i] + d;                                                \
            b[i] = d;                                                         \
        }                                                                     \
        p[i] -= lr * d;                                                       \
    }                                                                         \
    }
ATTR static void K(rmsprop_range)(const nb_optim_opts *o, T *restrict p, const T *restrict grad,
                             T *restrict v, T *restrict ga, T *restrict b, int64_t lo,
                             int64_t hi)
{
    const T lr = (T)o->lr, wd = (T)o->weight_decay, a = (T)o->alpha, eps = (T)o->eps;
    const T mu = (T)o->momentum;
    if (ga && b)
        RMSPROP_LOOP(1, 1)
    else if (ga)
        RMSPROP_LOOP(1, 0)
    else if (b)
        RMSPROP_LOOP(0, 1)
    else
        RMSPROP_LOOP(0, 0)
}
#undef RMSPROP_LOOP

#else /* ---- clipping, on every CPU the same -------------------------------- */

/* sum of x[lo, hi)^2 in double, in 8 lanes combined in a fixed order */
static double K(sumsq_range)(const void *arg, int64_t lo, int64_t hi)
{
    const T *restrict x = arg;
    double acc[8] = {0};
    int64_t i = lo;
    for (; i + 8 <= hi; i += 8)
        for (int k = 0; k < 8; k++)
            acc[k] += (double)x[i + k] * (double)x[i + k];
    for (int k = 0; i < hi; i++, k++)
        acc[k] += (double)x[i] * (double)x[i];
    return NBI_LANES_SUM(acc);
}

/* x *= s, each product rounded once from double as nb_set does */
static void K(scale_by)(T *x, int64_t n, double s)
{
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
    for (int64_t i = 0; i < n; i++)
        x[i] = (T)((double)x[i] * s);
}

#endif
#else /* ---- the optimizer ------------------------------------------------- */

#include "internal.h"

#include <math.h>

/* sqrtf for float, sqrt for double: float updates stay in float. */
#define SQRT(v) _Generic((v), float: sqrtf, default: sqrt)(v)

/* Clipping once per type, the updates once per type and CPU variant. */
#define NBI_VARIANTS_OF "nn/optim.c" /* from cpu-variants.h's folder */
#define T float
#define TS f32
#define K(f) f##_f32
#include "optim.c"
#undef K
#include "cpu-variants.h"
#undef TS
#undef T
#define T double
#define TS f64
#define K(f) f##_f64
#include "optim.c"
#undef K
#include "cpu-variants.h"
#undef TS
#undef T

/* An update for the kernels in use (NBI_CPU_PICK) and the dtype. */
#define UPDATE(dtype, fn, ...)                                                \
    ((dtype) == NB_F32 ? NBI_CPU_PICK(fn##_f32)(__VA_ARGS__)                  \
                       : NBI_CPU_PICK(fn##_f64)(__VA_ARGS__))

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

const char *const nbi_optim_kind_names[] = {"sgd", "adam", "adamw", "rmsprop", NULL};

const char *nb_optim_kind_name(nb_optim_kind kind)
{
    return kind >= NB_SGD && kind <= NB_RMSPROP ? nbi_optim_kind_names[kind] : "unknown";
}

int nb_optim_kind_from_name(const char *name)
{
    for (int k = 0; k <= NB_RMSPROP; k++)
        if (name && strcmp(name, nbi_optim_kind_names[k]) == 0)
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

int nb_optim_buffers(const nb_optim_opts *opts)
{
    if (!opts || opts->kind < NB_SGD || opts->kind > NB_RMSPROP)
        return -1;
    int k = 0;
    for (int b = 0; b < NBUF; b++)
        k += needs(opts, b);
    return k;
}

/* The state and the parameters' gradients still to be made, with what the
 * context holds, must fit its memory limit: checked before any is made. */
static int check_memory(nb_ctx *ctx, const nb_optim_opts *opts, int n,
                        nb_tensor *const *params)
{
    uint64_t state = 0, grads = 0;
    for (int i = 0; i < n; i++) {
        uint64_t bytes = (uint64_t)params[i]->numel * nb_dtype_size(params[i]->dtype);
        state += bytes * (uint64_t)nb_optim_buffers(opts);
        grads += params[i]->grad ? 0 : bytes;
    }
    uint64_t need = nbi_persistent_bytes(ctx) + state + grads;
    if (nbi_mem_fits(ctx, need))
        return NB_OK;
    char s[32];
    return nbi_mem_refuse(ctx, need, "%s: holding its state (%s) beside the gradients and "
                          "the tensors already held", nb_optim_kind_name(opts->kind), nbi_bytes_str(state, s, sizeof s));
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
    if (check_memory(ctx, opts, n, params) != NB_OK)
        return NULL;
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

/* Parameter i's update on its elements [lo, hi). */
static void update_range(const nb_optim *o, int i, int64_t lo, int64_t hi)
{
    const nb_optim_opts *op = &o->opts;
    nb_tensor *p = o->params[i];
    switch (op->kind) {
    case NB_SGD:
        UPDATE(p->dtype, sgd_range, op, p->data, p->grad->data, buf(o, i, MOMENTUM), lo, hi,
                 o->steps == 1);
        break;
    case NB_ADAM:
    case NB_ADAMW:
        UPDATE(p->dtype, adam_range, op, p->data, p->grad->data, buf(o, i, EXP_AVG),
                 buf(o, i, EXP_AVG_SQ), lo, hi, o->steps);
        break;
    case NB_RMSPROP:
        UPDATE(p->dtype, rmsprop_range, op, p->data, p->grad->data, buf(o, i, SQUARE_AVG),
                 buf(o, i, GRAD_AVG), buf(o, i, MOMENTUM), lo, hi);
        break;
    }
}

int nb_optim_step(nb_optim *o)
{
    o->steps++;
    int nt = nbi_threads();
    for (int i = 0; i < o->n; i++) {
        nb_tensor *p = o->params[i];
        if (!p->grad)
            continue;
        int64_t n = p->numel;
        /* One contiguous range per thread; elements are independent. */
#pragma omp parallel for num_threads(nt) schedule(static) if (nbi_par(n))
        for (int t = 0; t < nt; t++)
            update_range(o, i, n * t / nt, n * (t + 1) / nt);
    }
    return NB_OK;
}

void nb_optim_zero_grad(nb_optim *o)
{
    for (int i = 0; i < o->n; i++) {
        nb_tensor *g = o->params[i]->grad;
        if (g) /* all-zero bytes are 0.0 in float and double */
            memset(g->data, 0, (size_t)g->numel * nb_dtype_size(g->dtype));
    }
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
        if (params[i] && params[i]->grad) {
            nb_tensor *g = params[i]->grad;
            sq += nbi_blocked_sum(g->numel, g->dtype == NB_F32 ? sumsq_range_f32 : sumsq_range_f64,
                                  g->data);
        }
    double norm = sqrt(sq);
    /* torch adds 1e-6 so a zero norm never divides, and scales by
     * min(scale, 1) always: a NaN scale (a NaN norm, or an infinite one
     * under an infinite limit) makes every gradient NaN, as there. */
    double scale = max_norm / (norm + 1e-6);
    if (!(scale >= 1))
        for (int i = 0; i < n; i++)
            if (params[i] && params[i]->grad) {
                nb_tensor *g = params[i]->grad;
                NBI_CALL(g->dtype, scale_by, g->data, g->numel, scale);
            }
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
