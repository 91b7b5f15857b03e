/*
 * nabla.h - a define-by-run automatic differentiation library for
 * convolutional networks.
 *
 * Every op call computes its result at once and, when one of its inputs
 * requires a gradient, records a node on the context's tape.  nb_backward()
 * walks the tape in reverse from a scalar and fills `grad` of every tensor
 * that requires one: parameters and inputs alike.
 *
 * Memory.  A context owns everything it hands out.  Tensors made by
 * nb_tensor_new() and friends are *persistent*: they live until
 * nb_tensor_free() or nb_ctx_free().  Tensors returned by ops are *step*
 * tensors: they live in the context's step arena until nb_graph_reset(),
 * which rewinds the arena without returning memory to the system, so a
 * training step allocates nothing once warm.  Every pointer the API returns
 * is borrowed from the context.
 *
 * Errors.  Functions that can fail return a status (NB_OK or a negative
 * code) or NULL; the context keeps the code and a message naming the op and
 * the shapes, read with nb_errmsg().  Ops given a NULL input return NULL
 * and keep the message of the op that failed, so a chain of ops needs one
 * check at its end.  The library never prints, aborts or exits.
 */
#ifndef NABLA_H
#define NABLA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NB_VERSION "0.1.0"
#define NB_MAX_DIMS 8

/* ---- status codes ------------------------------------------------------ */

typedef enum nb_status {
    NB_OK = 0,
    NB_ERR_ARG = -1,    /* bad argument or shape */
    NB_ERR_NOMEM = -2,  /* the allocator failed */
    NB_ERR_GRAPH = -3,  /* misuse of the graph: backward of a non-scalar... */
    NB_ERR_IO = -4,     /* a file could not be read or written */
    NB_ERR_FORMAT = -5, /* a file's content is malformed */
} nb_status;

/* A static string naming a status ("bad argument", "out of memory"...). */
const char *nb_status_str(int status);

/* ---- context ----------------------------------------------------------- */

typedef struct nb_ctx nb_ctx;

/* All of the library's memory goes through this hook.  alloc returns NULL
 * on failure; free accepts NULL. */
typedef struct nb_allocator {
    void *(*alloc)(void *ud, size_t size);
    void (*free)(void *ud, void *ptr);
    void *ud;
} nb_allocator;

/* A new context, with malloc/free or with the caller's allocator (copied).
 * NULL when the allocator fails. */
nb_ctx *nb_ctx_new(void);
nb_ctx *nb_ctx_new_with(const nb_allocator *allocator);
/* Frees the context and every tensor it owns.  Accepts NULL. */
void nb_ctx_free(nb_ctx *ctx);

/* The last error: its status (NB_OK if none) and message ("" if none). */
int nb_error(const nb_ctx *ctx);
const char *nb_errmsg(const nb_ctx *ctx);
void nb_clear_error(nb_ctx *ctx);

/* ---- random numbers ---------------------------------------------------- */

/* xoshiro256** seeded through splitmix64: the same seed gives the same
 * numbers on every machine.  A plain value: copy it to save its state. */
typedef struct nb_rng {
    uint64_t s[4];
} nb_rng;

void nb_rng_seed(nb_rng *rng, uint64_t seed);
uint64_t nb_rng_next(nb_rng *rng);
double nb_rng_uniform(nb_rng *rng); /* [0, 1) with 53 random bits */
double nb_rng_normal(nb_rng *rng);  /* standard normal (Box-Muller) */
uint64_t nb_rng_below(nb_rng *rng, uint64_t n); /* uniform in [0, n), n > 0 */

/* ---- tensors ----------------------------------------------------------- */

typedef enum nb_dtype { NB_F32 = 0, NB_F64 = 1 } nb_dtype;

/* Size in bytes of one element, and the dtype's name ("f32", "f64"). */
size_t nb_dtype_size(nb_dtype dtype);
const char *nb_dtype_name(nb_dtype dtype);

typedef struct nb_tensor nb_tensor;

/* A contiguous, row-major tensor.  Read the public fields freely; write
 * only the elements of `data` (and of `grad->data`). */
struct nb_tensor {
    nb_dtype dtype;
    int ndim;
    int64_t shape[NB_MAX_DIMS];
    int64_t numel;
    void *data;        /* numel elements of dtype, 64-byte aligned if owned */
    nb_tensor *grad;   /* same shape and dtype; NULL until backward reaches it */
    bool requires_grad;
    char name[48];     /* for messages and reports; may be empty */

    /* private to the library */
    struct nbi_node *node_;  /* the op that made it; NULL for a leaf */
    nb_ctx *ctx_;
    unsigned flags_;
    nb_tensor *prev_, *next_; /* the context's list of persistent tensors */
};

/* A new persistent tensor filled with zeros.  shape holds ndim sizes, each
 * >= 1 (ndim 0 is a scalar).  NULL on error. */
nb_tensor *nb_tensor_new(nb_ctx *ctx, nb_dtype dtype, int ndim,
                         const int64_t *shape);
/* ... filled with `value`. */
nb_tensor *nb_tensor_full(nb_ctx *ctx, nb_dtype dtype, int ndim,
                          const int64_t *shape, double value);
/* ... holding a copy of `data` (numel elements of dtype). */
nb_tensor *nb_tensor_from(nb_ctx *ctx, nb_dtype dtype, int ndim,
                          const int64_t *shape, const void *data);
/* ... viewing the caller's buffer, which must outlive the tensor; writes
 * through the tensor change the buffer. */
nb_tensor *nb_tensor_wrap(nb_ctx *ctx, nb_dtype dtype, int ndim,
                          const int64_t *shape, void *data);
/* A persistent copy of src's values (not its gradient), in `dtype`. */
nb_tensor *nb_tensor_copy(nb_ctx *ctx, const nb_tensor *src, nb_dtype dtype);
/* Frees a persistent tensor and its gradient.  Step tensors go with
 * nb_graph_reset(); passing one here is a no-op.  Accepts NULL. */
void nb_tensor_free(nb_tensor *t);
/* Sets a tensor's name (truncated to fit); returns t. */
nb_tensor *nb_tensor_set_name(nb_tensor *t, const char *name);

/* Fills in place.  The random fills draw from rng in row-major order. */
void nb_fill(nb_tensor *t, double value);
void nb_fill_uniform(nb_tensor *t, nb_rng *rng, double lo, double hi);
void nb_fill_normal(nb_tensor *t, nb_rng *rng, double mean, double std);
/* Copies values between tensors of the same numel (dtypes may differ). */
int nb_copy_values(nb_tensor *dst, const nb_tensor *src);

/* Element access by flat row-major index, or by an index per dimension. */
double nb_get(const nb_tensor *t, int64_t i);
void nb_set(nb_tensor *t, int64_t i, double value);
int64_t nb_index(const nb_tensor *t, const int64_t *idx);

/* True when a and b have the same ndim and sizes. */
bool nb_same_shape(const nb_tensor *a, const nb_tensor *b);
/* Writes "[2, 3, 4]" into buf (always terminated); returns buf. */
char *nb_shape_str(const nb_tensor *t, char *buf, size_t size);
/* Prints shape, dtype and values (numpy-like, long tensors elided). */
int nb_tensor_print(const nb_tensor *t, FILE *out);

/* Marks a tensor (a parameter, or an input image) as needing a gradient. */
void nb_requires_grad(nb_tensor *t, bool on);

/* ---- the graph --------------------------------------------------------- */

/* Backpropagates from a scalar loss through the recorded ops.  Gradients of
 * persistent tensors accumulate across calls (zero them with
 * nb_zero_grad); gradients of step tensors are recomputed.  Errors: the
 * loss is not a scalar, or no op recorded it (NB_ERR_GRAPH). */
int nb_backward(nb_ctx *ctx, nb_tensor *loss);

/* Forgets the tape and every step tensor, keeping the memory for reuse. */
void nb_graph_reset(nb_ctx *ctx);

/* Zeroes the gradient of every persistent tensor that has one. */
void nb_zero_grad(nb_ctx *ctx);

/* No-grad mode: ops record nothing (inference).  Returns the old value. */
bool nb_set_grad_enabled(nb_ctx *ctx, bool enabled);
bool nb_grad_enabled(const nb_ctx *ctx);

/* Train mode (the default) or eval mode: dropout and batch norm read it. */
bool nb_set_training(nb_ctx *ctx, bool training);
bool nb_training(const nb_ctx *ctx);

/* Number of nodes recorded since the last reset, and the name of an op
 * by its registry index (NULL past the end): for tools and tests. */
int nb_graph_size(const nb_ctx *ctx);
const char *nb_op_name(int index);

/* Bytes the step arena holds and how many times the library has called the
 * allocator: a warm training step must not change the second. */
size_t nb_step_capacity(const nb_ctx *ctx);
uint64_t nb_alloc_count(const nb_ctx *ctx);

/* ---- ops ----------------------------------------------------------------
 * Each returns a new step tensor, or NULL on error.  Shapes follow
 * torch.nn.functional; images are [N, C, H, W]. */

/* y = x W^T + b; x [N, in], W [out, in], b [out] or NULL. */
nb_tensor *nb_linear(nb_ctx *ctx, nb_tensor *x, nb_tensor *w, nb_tensor *b);
/* [m, k] x [k, n] -> [m, n]. */
nb_tensor *nb_matmul(nb_ctx *ctx, nb_tensor *a, nb_tensor *b);
/* Elementwise with numpy broadcasting (sizes align from the right; a size
 * of 1, or a missing leading dimension, stretches). */
nb_tensor *nb_add(nb_ctx *ctx, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_sub(nb_ctx *ctx, nb_tensor *a, nb_tensor *b);
nb_tensor *nb_mul(nb_ctx *ctx, nb_tensor *a, nb_tensor *b);
/* y = s * x */
nb_tensor *nb_scale(nb_ctx *ctx, nb_tensor *x, double s);
/* Sum and mean of all elements: a scalar. */
nb_tensor *nb_sum(nb_ctx *ctx, nb_tensor *x);
nb_tensor *nb_mean(nb_ctx *ctx, nb_tensor *x);

/* Convolution options; a zeroed struct (or NULL) means stride 1, no
 * padding, cross-correlation. */
typedef struct nb_conv_opts {
    int stride[2];  /* [sh, sw]; 0 means 1 */
    int padding[2]; /* [ph, pw] zeros on each side */
    bool same;      /* stride 1 only: pad so the output is the input's size
                       (an odd total puts the extra zero after, as PyTorch) */
    bool flip;      /* true convolution: the kernel rotated 180 degrees,
                       as scipy.signal.convolve2d and numpy.convolve */
} nb_conv_opts;

/* x [N, C, H, W], w [O, C, kh, kw], b [O] or NULL -> [N, O, oh, ow],
 * oh = (H + 2 ph - kh) / sh + 1. */
nb_tensor *nb_conv2d(nb_ctx *ctx, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                     const nb_conv_opts *opts);
/* x [N, C, L], w [O, C, k], b [O] or NULL -> [N, O, ol]; opts use index 0
 * (stride[0], padding[0]). */
nb_tensor *nb_conv1d(nb_ctx *ctx, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                     const nb_conv_opts *opts);

/* Pooling options: kernel [kh, kw] (required), stride 0 means the kernel,
 * padding on each side (at most half the kernel, as PyTorch).  The output
 * size is rounded down. */
typedef struct nb_pool_opts {
    int kernel[2];
    int stride[2];
    int padding[2];
} nb_pool_opts;

/* max_pool2d pads with -inf; avg_pool2d counts padded zeros (PyTorch's
 * count_include_pad=True). */
nb_tensor *nb_max_pool2d(nb_ctx *ctx, nb_tensor *x, const nb_pool_opts *opts);
nb_tensor *nb_avg_pool2d(nb_ctx *ctx, nb_tensor *x, const nb_pool_opts *opts);
/* [N, C, H, W] -> [N, C]: the mean of each channel. */
nb_tensor *nb_global_avg_pool2d(nb_ctx *ctx, nb_tensor *x);

/* [N, ...] -> [N, prod(...)], in C, H, W order. */
nb_tensor *nb_flatten(nb_ctx *ctx, nb_tensor *x);
/* A view with a new shape of the same numel; one size may be -1. */
nb_tensor *nb_reshape(nb_ctx *ctx, nb_tensor *x, int ndim,
                      const int64_t *shape);
/* Joins n tensors along dim (1 for channels); other sizes must agree. */
nb_tensor *nb_concat(nb_ctx *ctx, int n, nb_tensor *const *xs, int dim);

nb_tensor *nb_relu(nb_ctx *ctx, nb_tensor *x);
nb_tensor *nb_leaky_relu(nb_ctx *ctx, nb_tensor *x, double negative_slope);
nb_tensor *nb_elu(nb_ctx *ctx, nb_tensor *x, double alpha);
nb_tensor *nb_relu6(nb_ctx *ctx, nb_tensor *x);
nb_tensor *nb_sigmoid(nb_ctx *ctx, nb_tensor *x);
nb_tensor *nb_tanh(nb_ctx *ctx, nb_tensor *x);
/* Along dim (negative counts from the end). */
nb_tensor *nb_softmax(nb_ctx *ctx, nb_tensor *x, int dim);
nb_tensor *nb_log_softmax(nb_ctx *ctx, nb_tensor *x, int dim);

/* Inverted dropout: in train mode each element (dropout) or each [n, c]
 * channel (dropout2d) is zeroed with probability p and the rest scaled by
 * 1/(1-p); in eval mode (or p = 0), the identity: the result then shares
 * x's data.  0 <= p < 1. */
nb_tensor *nb_dropout(nb_ctx *ctx, nb_tensor *x, double p, nb_rng *rng);
nb_tensor *nb_dropout2d(nb_ctx *ctx, nb_tensor *x, double p, nb_rng *rng);

/* Batch norm over [N, C] or [N, C, H, W], per channel.  Train mode
 * normalises with the batch's mean and biased variance and updates the
 * running statistics (r = (1 - momentum) r + momentum s, with the unbiased
 * variance), eval mode uses the running statistics.  weight, bias [C] may
 * be NULL (no affine); running_mean, running_var [C] may be NULL (batch
 * statistics always).  PyTorch's defaults: momentum 0.1, eps 1e-5. */
nb_tensor *nb_batch_norm(nb_ctx *ctx, nb_tensor *x, nb_tensor *weight,
                         nb_tensor *bias, nb_tensor *running_mean,
                         nb_tensor *running_var, double momentum, double eps);

/* Losses, means over the batch; each returns a scalar. */
/* Softmax cross-entropy of logits [N, C] with class indices labels[N] in
 * [0, C) (copied). */
nb_tensor *nb_cross_entropy(nb_ctx *ctx, nb_tensor *logits,
                            const int32_t *labels);
/* mean((pred - target)^2) over all elements; same shapes. */
nb_tensor *nb_mse_loss(nb_ctx *ctx, nb_tensor *pred, nb_tensor *target);
/* mean(max(0, 1 - y f)), f and y of the same numel, y in {-1, +1}. */
nb_tensor *nb_hinge_loss(nb_ctx *ctx, nb_tensor *f, nb_tensor *y);

/* ---- initializers -------------------------------------------------------
 * fan_in = shape[1] * (receptive field), fan_out = shape[0] * (receptive
 * field), as PyTorch computes them for [out, in, ...] weights. */

void nb_init_uniform(nb_tensor *t, nb_rng *rng, double bound);
void nb_init_kaiming_uniform(nb_tensor *w, nb_rng *rng); /* He, gain sqrt 2 */
void nb_init_kaiming_normal(nb_tensor *w, nb_rng *rng);
void nb_init_xavier_uniform(nb_tensor *w, nb_rng *rng);
void nb_init_xavier_normal(nb_tensor *w, nb_rng *rng);
/* PyTorch's default for nn.Linear and nn.Conv*d: weight and bias uniform
 * in +-1/sqrt(fan_in) (kaiming_uniform with a = sqrt(5)).  b may be NULL. */
void nb_init_default(nb_tensor *w, nb_tensor *b, nb_rng *rng);

/* ---- finite-difference gradient check ----------------------------------
 * Compares backward's gradients with central differences
 * n = (f(x + eps) - f(x - eps)) / (2 eps), element by element.  An element
 * passes when |a - n| <= atol + rtol |n| (PyTorch's gradcheck rule); the
 * reported relative error is |a - n| / max(|a|, |n|, 1): relative for
 * gradients above 1, absolute below, so that rounding noise in the loss
 * (about 1e-16 |loss| / eps) is not divided by a tiny gradient. */

/* Builds the scalar to check from ops; called many times, so it must be
 * deterministic (re-seed any rng it uses).  NULL on error. */
typedef nb_tensor *(*nb_loss_fn)(nb_ctx *ctx, void *ud);

typedef struct nb_gradcheck_opts {
    double eps;           /* 0 means 1e-6 */
    double atol, rtol;    /* 0 means 1e-5 and 1e-3 */
    int64_t max_elems;    /* per tensor; 0 means all, else a seeded sample */
    uint64_t seed;        /* for the sample */
} nb_gradcheck_opts;

typedef struct nb_gradcheck_report {
    const nb_tensor *tensor;
    int64_t checked;      /* elements compared */
    int64_t worst;        /* flat index of the largest relative error */
    double analytic, numeric; /* the two values at `worst` */
    double max_abs_err, max_rel_err;
    bool ok;              /* every element passed */
} nb_gradcheck_report;

/* Checks the gradients of the n tensors in wrt (persistent, float64) and
 * fills report[n].  Resets the graph before and after, and leaves the
 * tensors' values as they were.  Returns NB_OK when it ran (read `ok` in
 * each report for the verdict), or an error. */
int nb_gradcheck(nb_ctx *ctx, nb_loss_fn f, void *ud, int n,
                 nb_tensor *const *wrt, const nb_gradcheck_opts *opts,
                 nb_gradcheck_report *report);

#ifdef __cplusplus
}
#endif

#endif /* NABLA_H */
