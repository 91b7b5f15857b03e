/*
 * activation.c - pointwise activations: relu, leaky_relu, elu, relu6,
 * sigmoid, tanh, gelu, silu, hardswish, softplus.  Each keeps its math,
 * kernels and builder together; the kernels are compiled for float and
 * double by including this file twice.
 */
#ifdef T /* ---- kernels in T, named K(...) ------------------------------- */

/* Each loop is one pass over the elements, split over the threads from
 * NBI_PAR_MIN elements.  Compare-and-select, never a branch on the data:
 * relu's inputs are positive about half the time, and a mispredicted
 * branch costs more than the arithmetic.  Operands are loaded before the
 * select, as a load inside one arm cannot be vectorised.
 *
 * NaN and infinities go through as in PyTorch's CPU kernels.  A comparison
 * with NaN is false, so which way a select asks decides what NaN gets:
 * relu asks x <= 0 (to drop the value), so a NaN stays NaN and passes its
 * gradient. */

/* relu: y = max(x, 0), NaN for NaN;  dx += dy [not x <= 0] */
ATTR static void K(relu_fwd)(const T *restrict x, T *restrict y, int64_t n, const double *a)
{
    (void)a;
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
    for (int64_t i = 0; i < n; i++) {
        T v = x[i];
        y[i] = v <= 0 ? 0 : v;
    }
}
ATTR static void K(relu_bwd)(const T *restrict x, const T *restrict y, const T *restrict dy,
                        T *restrict dx, int64_t n, const double *a)
{
    (void)y, (void)a;
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
    for (int64_t i = 0; i < n; i++) {
        T g = dy[i];
        dx[i] += x[i] <= 0 ? 0 : g;
    }
}

/* relu's backward into a fresh gradient: dx = dy [not x <= 0] */
ATTR static void K(relu_bwd_store)(const T *restrict x, const T *restrict y, const T *restrict dy,
                              T *restrict dx, int64_t n, const double *a)
{
    (void)y, (void)a;
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
    for (int64_t i = 0; i < n; i++) {
        T g = dy[i];
        dx[i] = x[i] <= 0 ? 0 : g;
    }
}

/* leaky_relu: y = x if x > 0 else a x;  dx += dy (x > 0 ? 1 : a), so a NaN
 * takes the slope a, as in PyTorch */
ATTR static void K(leaky_relu_fwd)(const T *restrict x, T *restrict y, int64_t n, const double *a)
{
    const T s = (T)a[0];
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
    for (int64_t i = 0; i < n; i++) {
        T v = x[i];
        y[i] = v > 0 ? v : s * v;
    }
}
ATTR static void K(leaky_relu_bwd)(const T *restrict x, const T *restrict y, const T *restrict dy,
                              T *restrict dx, int64_t n, const double *a)
{
    const T s = (T)a[0];
    (void)y;
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
    for (int64_t i = 0; i < n; i++) {
        T g = dy[i];
        dx[i] += x[i] > 0 ? g : s * g;
    }
}

/* elu: y = x if x > 0 else a (e^x - 1);  dx += dy (x > 0 ? 1 : y + a), NaN
 * for NaN: PyTorch's vectorised kernel, which its scalar one (the last few
 * elements of a tensor, or a tiny one) contradicts by passing dy */
ATTR static void K(elu_fwd)(const T *restrict x, T *restrict y, int64_t n, const double *a)
{
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) if (nbi_par(n))
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] > 0 ? x[i] : (T)(a[0] * expm1((double)x[i]));
}
ATTR static void K(elu_bwd)(const T *restrict x, const T *restrict y, const T *restrict dy,
                       T *restrict dx, int64_t n, const double *a)
{
    const T s = (T)a[0];
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
    for (int64_t i = 0; i < n; i++) {
        T g = dy[i], v = y[i];
        dx[i] += x[i] > 0 ? g : g * (v + s);
    }
}

/* relu6: y = min(max(x, 0), 6), NaN for NaN;  dx += dy [0 < x < 6], 0 for NaN:
 * PyTorch's vectorised kernel again (its scalar one passes dy) */
ATTR static void K(relu6_fwd)(const T *restrict x, T *restrict y, int64_t n, const double *a)
{
    (void)a;
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
    for (int64_t i = 0; i < n; i++)
        y[i] = x[i] < 0 ? 0 : x[i] > 6 ? 6 : x[i];
}
ATTR static void K(relu6_bwd)(const T *restrict x, const T *restrict y, const T *restrict dy,
                         T *restrict dx, int64_t n, const double *a)
{
    (void)y, (void)a;
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
    for (int64_t i = 0; i < n; i++) {
        T v = x[i], g = dy[i];
        dx[i] += ((v > 0) & (v < 6)) ? g : 0;
    }
}

/* sigmoid: y = 1 / (1 + e^-x);  dx += dy y (1 - y) */
ATTR static void K(sigmoid_fwd)(const T *restrict x, T *restrict y, int64_t n, const double *a)
{
    (void)a;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) if (nbi_par(n))
    for (int64_t i = 0; i < n; i++) {
        /* e^-|x| never overflows; mirror for negative x. */
        double e = exp(-fabs((double)x[i]));
        y[i] = (T)(x[i] >= 0 ? 1.0 / (1.0 + e) : e / (1.0 + e));
    }
}
ATTR static void K(sigmoid_bwd)(const T *restrict x, const T *restrict y, const T *restrict dy,
                           T *restrict dx, int64_t n, const double *a)
{
    (void)x, (void)a;
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
    for (int64_t i = 0; i < n; i++)
        dx[i] += dy[i] * y[i] * (1 - y[i]);
}

/* tanh: y = tanh x;  dx += dy (1 - y^2) */
ATTR static void K(tanh_fwd)(const T *restrict x, T *restrict y, int64_t n, const double *a)
{
    (void)a;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) if (nbi_par(n))
    for (int64_t i = 0; i < n; i++)
        y[i] = (T)tanh((double)x[i]);
}
ATTR static void K(tanh_bwd)(const T *restrict x, const T *restrict y, const T *restrict dy,
                        T *restrict dx, int64_t n, const double *a)
{
    (void)x, (void)a;
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
    for (int64_t i = 0; i < n; i++)
        dx[i] += dy[i] * (1 - y[i] * y[i]);
}

/* sigmoid v in *s and 1 - sigmoid v in *r, each without cancellation:
 * e^-|v| never overflows, and the mirror serves negative v. */
ATTR static inline void K(sigmoid_pair)(double v, double *s, double *r)
{
    double e = exp(-fabs(v)), big = 1.0 / (1.0 + e), small = e / (1.0 + e);
    *s = v >= 0 ? big : small;
    *r = v >= 0 ? small : big;
}

/* gelu: y = x Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2, which is PyTorch's
 * (1 + erf(x / sqrt 2)) / 2 without its cancellation in the left tail;
 * dx += dy (Phi(x) + x phi(x)), phi(x) = e^(-x^2 / 2) / sqrt(2 pi) */
ATTR static void K(gelu_fwd)(const T *restrict x, T *restrict y, int64_t n, const double *a)
{
    (void)a;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) if (nbi_par(n))
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        y[i] = (T)(0.5 * v * erfc(-v * SQRT1_2));
    }
}
ATTR static void K(gelu_bwd)(const T *restrict x, const T *restrict y, const T *restrict dy,
                             T *restrict dx, int64_t n, const double *a)
{
    (void)y, (void)a;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) if (nbi_par(n))
    for (int64_t i = 0; i < n; i++) {
        double v = x[i];
        double d = 0.5 * erfc(-v * SQRT1_2) + v * exp(-0.5 * v * v) * INV_SQRT_2PI;
        dx[i] += (T)(dy[i] * d);
    }
}

/* gelu, tanh form: y = x (1 + tanh u) / 2 = x s, s = sigmoid 2u (the same
 * without cancellation), u = sqrt(2 / pi) (x + 0.044715 x^3);
 * dx += dy (s + 2 x s (1 - s) sqrt(2 / pi) (1 + 3 * 0.044715 x^2)) */
ATTR static void K(gelu_tanh_fwd)(const T *restrict x, T *restrict y, int64_t n,
                                  const double *a)
{
    (void)a;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) if (nbi_par(n))
    for (int64_t i = 0; i < n; i++) {
        double v = x[i], s, r;
        K(sigmoid_pair)(2 * SQRT_2_PI * (v + GELU_C * v * v * v), &s, &r);
        y[i] = (T)(v * s);
    }
}
ATTR static void K(gelu_tanh_bwd)(const T *restrict x, const T *restrict y, const T *restrict dy,
                                  T *restrict dx, int64_t n, const double *a)
{
    (void)y, (void)a;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) if (nbi_par(n))
    for (int64_t i = 0; i < n; i++) {
        double v = x[i], s, r;
        K(sigmoid_pair)(2 * SQRT_2_PI * (v + GELU_C * v * v * v), &s, &r);
        double d = s + 2 * v * s * r * SQRT_2_PI * (1 + 3 * GELU_C * v * v);
        dx[i] += (T)(dy[i] * d);
    }
}

/* silu: y = x sigmoid x;  dx += dy s (1 + x (1 - s)), s = sigmoid x */
ATTR static void K(silu_fwd)(const T *restrict x, T *restrict y, int64_t n, const double *a)
{
    (void)a;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) if (nbi_par(n))
    for (int64_t i = 0; i < n; i++) {
        double v = x[i], s, r;
        K(sigmoid_pair)(v, &s, &r);
        y[i] = (T)(v * s);
    }
}
ATTR static void K(silu_bwd)(const T *restrict x, const T *restrict y, const T *restrict dy,
                             T *restrict dx, int64_t n, const double *a)
{
    (void)y, (void)a;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) if (nbi_par(n))
    for (int64_t i = 0; i < n; i++) {
        double v = x[i], s, r;
        K(sigmoid_pair)(v, &s, &r);
        dx[i] += (T)(dy[i] * (s * (1 + v * r)));
    }
}

/* hardswish: y = x min(max(x + 3, 0), 6) / 6, NaN for NaN and -inf (-inf 0);
 * dx += dy (x < -3 ? 0 : x >= 3 ? 1 : x / 3 + 1 / 2), NaN for NaN: PyTorch's
 * vectorised kernel, whose x = 3 takes 1 where its scalar one takes 3/2 */
ATTR static void K(hardswish_fwd)(const T *restrict x, T *restrict y, int64_t n, const double *a)
{
    (void)a;
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
    for (int64_t i = 0; i < n; i++) {
        T v = x[i], t = v + 3;
        t = t < 0 ? 0 : t > 6 ? 6 : t;
        y[i] = v * t / 6;
    }
}
ATTR static void K(hardswish_bwd)(const T *restrict x, const T *restrict y, const T *restrict dy,
                                  T *restrict dx, int64_t n, const double *a)
{
    (void)y, (void)a;
#pragma omp parallel for simd num_threads(nbi_threads()) schedule(static) if (parallel: nbi_par(n))
    for (int64_t i = 0; i < n; i++) {
        T v = x[i], g = dy[i];
        dx[i] += v < -3 ? 0 : v >= 3 ? g : g * (v / 3 + (T)0.5);
    }
}

/* softplus, a = {beta, threshold}: y = x where beta x > threshold, else
 * log(1 + e^(beta x)) / beta, as max(t, 0) + log1p(e^-|t|) for t = beta x
 * so that no threshold overflows it;  dx += dy (beta x > threshold ? 1 :
 * sigmoid(beta x)) */
ATTR static void K(softplus_fwd)(const T *restrict x, T *restrict y, int64_t n, const double *a)
{
    const double beta = a[0], threshold = a[1];
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) if (nbi_par(n))
    for (int64_t i = 0; i < n; i++) {
        double v = x[i], t = beta * v;
        y[i] = t > threshold ? x[i] : (T)(((t > 0 ? t : 0) + log1p(exp(-fabs(t)))) / beta);
    }
}
ATTR static void K(softplus_bwd)(const T *restrict x, const T *restrict y, const T *restrict dy,
                                 T *restrict dx, int64_t n, const double *a)
{
    const double beta = a[0], threshold = a[1];
    (void)y;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) if (nbi_par(n))
    for (int64_t i = 0; i < n; i++) {
        double t = beta * x[i], s, r;
        K(sigmoid_pair)(t, &s, &r);
        dx[i] += t > threshold ? dy[i] : (T)(dy[i] * s);
    }
}

#else /* ---- builders and backward, dtype-independent ---------------------- */

#include "internal.h"

#include <math.h>

/* gelu's constants: 1 / sqrt 2, 1 / sqrt(2 pi), sqrt(2 / pi) and the cube's
 * coefficient of its tanh form. */
#define SQRT1_2 0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794
#define SQRT_2_PI 0.79788456080286535588
#define GELU_C 0.044715

/* The kernels for each type and CPU variant (NBI_CPU_PICK's names). */
#define NBI_VARIANTS_OF "ops/activation.c" /* from cpu-variants.h's folder */
#define T float
#define TS f32
#include "cpu-variants.h"
#undef TS
#undef T
#define T double
#define TS f64
#include "cpu-variants.h"
#undef TS
#undef T

/* The last argument: the activation's parameters (a[0], a[1]). */
typedef void (*fwd_f32)(const float *, float *, int64_t, const double *);
typedef void (*fwd_f64)(const double *, double *, int64_t, const double *);
typedef void (*bwd_f32)(const float *, const float *, const float *, float *, int64_t,
                        const double *);
typedef void (*bwd_f64)(const double *, const double *, const double *, double *, int64_t,
                        const double *);

/* bwd adds to dx; store (NULL if the activation has none) writes a fresh
 * dx, see nbi_grad_fresh. */
typedef struct act_kernels {
    fwd_f32 fwd32;
    fwd_f64 fwd64;
    bwd_f32 bwd32;
    bwd_f64 bwd64;
    bwd_f32 store32;
    bwd_f64 store64;
} act_kernels;

/* An activation's kernels for each CPU variant, in nbi_cpu's order. */
#define KERNELS(name, v)                                                      \
    {name##_fwd_f32_##v, name##_fwd_f64_##v, name##_bwd_f32_##v, name##_bwd_f64_##v, NULL, NULL}
#define VARIANTS(name) {KERNELS(name, base), KERNELS(name, avx2), KERNELS(name, avx512)}

/* Every activation has the same node: its kernels and its parameters. */
typedef struct act_node {
    nbi_node base;
    const act_kernels *k;
    double a[2];
} act_node;

static nb_tensor *activation(nb_ctx *ctx, const nbi_op *op, const act_kernels *variants,
                             nb_tensor *x, double a0, double a1)
{
    const double a[2] = {a0, a1};
    if (!nbi_check_inputs(ctx, op->name, 1, &x))
        return NULL;
    const act_kernels *k = &variants[nbi_cpu_level()];
    nb_tensor *y = nbi_step_tensor(ctx, x->dtype, x->ndim, x->shape);
    if (!y)
        return NULL;
    if (x->dtype == NB_F32)
        k->fwd32(x->data, y->data, x->numel, a);
    else
        k->fwd64(x->data, y->data, x->numel, a);
    if (nbi_needs_grad(ctx, 1, &x)) {
        act_node *n = nbi_record(ctx, op, sizeof *n, y, 1, &x);
        if (!n)
            return NULL;
        n->k = k;
        n->a[0] = a0;
        n->a[1] = a1;
    }
    return y;
}

static int activation_backward(nb_ctx *ctx, nbi_node *node)
{
    act_node *n = (act_node *)node;
    const act_kernels *k = n->k;
    nb_tensor *x = node->in[0], *y = node->out;
    bool fresh = false;
    void *dx = k->store32 ? nbi_grad_fresh(ctx, x, &fresh) : nbi_grad(ctx, x);
    if (!dx)
        return ctx->status;
    if (x->dtype == NB_F32)
        (fresh ? k->store32 : k->bwd32)(x->data, y->data, y->grad->data, dx, x->numel, n->a);
    else
        (fresh ? k->store64 : k->bwd64)(x->data, y->data, y->grad->data, dx, x->numel, n->a);
    return NB_OK;
}

/* One registry entry, kernel table and builder per activation. */
#define ACTIVATION(name)                                                      \
    const nbi_op nbi_op_##name = {#name, activation_backward};               \
    static const act_kernels name##_kernels[3] = VARIANTS(name);

#define RELU(v)                                                               \
    {relu_fwd_f32_##v, relu_fwd_f64_##v, relu_bwd_f32_##v, relu_bwd_f64_##v,   \
     relu_bwd_store_f32_##v, relu_bwd_store_f64_##v}
const nbi_op nbi_op_relu = {"relu", activation_backward};
static const act_kernels relu_kernels[3] = {RELU(base), RELU(avx2), RELU(avx512)};
ACTIVATION(leaky_relu)
ACTIVATION(elu)
ACTIVATION(relu6)
ACTIVATION(sigmoid)
ACTIVATION(tanh)
ACTIVATION(gelu)
static const act_kernels gelu_tanh_kernels[3] = VARIANTS(gelu_tanh); /* the same op */
ACTIVATION(silu)
ACTIVATION(hardswish)
ACTIVATION(softplus)

nb_tensor *nb_relu(nb_ctx *ctx, nb_tensor *x)
{
    return activation(ctx, &nbi_op_relu, relu_kernels, x, 0, 0);
}

nb_tensor *nb_leaky_relu(nb_ctx *ctx, nb_tensor *x, double negative_slope)
{
    return activation(ctx, &nbi_op_leaky_relu, leaky_relu_kernels, x, negative_slope, 0);
}

nb_tensor *nb_elu(nb_ctx *ctx, nb_tensor *x, double alpha)
{
    return activation(ctx, &nbi_op_elu, elu_kernels, x, alpha, 0);
}

nb_tensor *nb_relu6(nb_ctx *ctx, nb_tensor *x)
{
    return activation(ctx, &nbi_op_relu6, relu6_kernels, x, 0, 0);
}

nb_tensor *nb_sigmoid(nb_ctx *ctx, nb_tensor *x)
{
    return activation(ctx, &nbi_op_sigmoid, sigmoid_kernels, x, 0, 0);
}

nb_tensor *nb_tanh(nb_ctx *ctx, nb_tensor *x)
{
    return activation(ctx, &nbi_op_tanh, tanh_kernels, x, 0, 0);
}

nb_tensor *nb_gelu(nb_ctx *ctx, nb_tensor *x, bool tanh_approx)
{
    return activation(ctx, &nbi_op_gelu, tanh_approx ? gelu_tanh_kernels : gelu_kernels, x, 0, 0);
}

nb_tensor *nb_silu(nb_ctx *ctx, nb_tensor *x)
{
    return activation(ctx, &nbi_op_silu, silu_kernels, x, 0, 0);
}

nb_tensor *nb_hardswish(nb_ctx *ctx, nb_tensor *x)
{
    return activation(ctx, &nbi_op_hardswish, hardswish_kernels, x, 0, 0);
}

nb_tensor *nb_softplus(nb_ctx *ctx, nb_tensor *x, double beta, double threshold)
{
    if (!nbi_check_inputs(ctx, "softplus", 1, &x))
        return NULL;
    if (!(beta > 0 && beta < INFINITY)) /* also rejects NaN */
        return nbi_fail_null(ctx, NB_ERR_ARG, "softplus: beta = %g must be positive and finite",
                             beta);
    return activation(ctx, &nbi_op_softplus, softplus_kernels, x, beta, threshold);
}

#endif
