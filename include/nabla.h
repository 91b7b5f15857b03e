/*
 * nabla.h - a define-by-run automatic differentiation library for
 * convolutional networks.
 *
 * Every op call computes its result at once and, when one of its inputs
 * requires a gradient, records a node on the context's tape.  nb_backward()
 * walks the tape in reverse from a scalar and fills `grad` of every tensor
 * that requires one: parameters and inputs alike.
 *
 * Memory.  A context owns everything it hands out; objects with their own
 * free function (models, optimizers, data sets, safetensors files) are
 * freed before their context.  Tensors made by
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
/* Channels an image of a data set may have (gray 1, RGB 3). */
#define NB_MAX_CHANNELS 4

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

/* ---- memory limits ------------------------------------------------------
 * What a file or a model declares (a file read whole, an IDX header's
 * image count, a folder of images, a model's parameters, an optimizer's
 * state, a batch's activations) is checked against the context's memory
 * limit before it is allocated, and refused with NB_ERR_NOMEM and a message
 * naming what and how much, as
 *   models/big.json: making its 9060597770 parameters and buffers in f32
 *   needs 33.8 GiB, more than this machine's memory (23.5 GiB)
 * The limit is the machine's unless the caller sets one.  Memory below it
 * may still run out: that is NB_ERR_NOMEM from the allocator, as ever. */

/* The machine's memory as the library counts it: its physical memory
 * (sysconf), or less when the process's address space or data segment is
 * limited (ulimit -v, ulimit -d).  Not what is free at the moment (as
 * /proc/meminfo's MemAvailable): that changes with whatever else runs, and
 * what exceeds the physical memory can never fit. */
uint64_t nb_memory_machine(void);
/* Sets the context's limit in bytes (0: the machine's, the default);
 * returns the previous setting. */
uint64_t nb_ctx_set_memory_limit(nb_ctx *ctx, uint64_t bytes);
/* The limit in force: the one set, or nb_memory_machine(). */
uint64_t nb_ctx_memory_limit(const nb_ctx *ctx);

/* ---- sums over a batch's examples -------------------------------------
 * Every sum an op takes over the examples of a batch (weight and bias
 * gradients, batch-norm statistics and their gradients, a loss) adds the
 * examples in groups of NB_BATCH_GROUP consecutive ones, each group in
 * order, then the groups' sums in a fixed tree whose shape depends only on
 * the number of groups.  So any number of threads gives the same bits, and
 * so do processes that split a batch (data parallelism): each holds whole
 * groups (nb_batch_share) and the groups' sums are exchanged through an
 * nb_comm, every process adding the same tree. */
#define NB_BATCH_GROUP 16

/* A way to exchange bytes among the `size` processes sharing each batch,
 * this one being `rank` (0 <= rank < size).  allgather puts every rank r's
 * bytes[r] bytes (from its own send) into recv at offset bytes[0] + ... +
 * bytes[r - 1], on every rank; it returns 0, or -1 after writing why into
 * why (why_size bytes, one line).  nb_dist_comm (below) is one. */
typedef struct nb_comm {
    int rank, size;
    int (*allgather)(void *ud, const void *send, void *recv, const size_t *bytes, char *why,
                     size_t why_size);
    void *ud;
} nb_comm;

/* The examples [*first, *first + *count) that `rank` of `size` processes
 * holds of a batch of `total`: whole groups, as evenly as they go (rank r
 * takes groups r G / size to (r + 1) G / size - 1 of its G).  *count is 0
 * for a rank beyond the batch's groups. */
void nb_batch_share(int64_t total, int rank, int size, int64_t *first, int64_t *count);

/* From now on each op's sums are over batches of `total` examples split
 * among comm's processes, this one holding its nb_batch_share (a copy of
 * comm is kept; the functions it points to must outlive its use).  A
 * process whose share is empty still runs every op, on any one example,
 * and contributes nothing to the sums.  total 0 or comm NULL: one process
 * holds each batch whole (the default).  NB_ERR_ARG for total < 0 or a
 * malformed comm. */
int nb_ctx_set_batch(nb_ctx *ctx, int64_t total, const nb_comm *comm);

/* What processes sharing batches agree on besides the ops' sums, through
 * comm (NULL, or a comm of size 1: this process alone, nothing exchanged).
 * Each is collective: every process of comm calls it with the same sizes.
 * They use the context's work buffer, which grows once and is then reused
 * (no allocation in a warm step).  NB_ERR_ARG for a malformed comm,
 * NB_ERR_IO naming the exchange when the allgather fails, NB_ERR_NOMEM. */
/* Every process's `size` bytes at `mine` into all[rank * size]. */
int nb_comm_gather(nb_ctx *ctx, const nb_comm *comm, const void *mine, size_t size,
                   void *all);
/* vals[0, n) becomes each one's sum over the processes, added in rank
 * order: the same on every process. */
int nb_comm_sum_i64(nb_ctx *ctx, const nb_comm *comm, int64_t *vals, int n);
/* *val becomes the first non-zero *val in rank order (0 if none) and
 * *rank (if not NULL) its rank (-1 if none): for a decision every process
 * takes alike, as a stop or a failure that one of them saw. */
int nb_comm_first(nb_ctx *ctx, const nb_comm *comm, int64_t *val, int *rank);

/* ---- processes: data-parallel training over MPI -------------------------
 * The processes of an `mpirun -np P` job (docs/distributed.md).  Built
 * with MPI (configure --with-mpi), nb_dist_init starts MPI when an MPI
 * launcher (mpirun, mpiexec, srun) started the process, or when the
 * program already did; otherwise, and in a build without MPI, the world is
 * this process alone: rank 0 of 1, its allgather a copy.  Call these from
 * one thread (the one that called nb_dist_init), outside OpenMP regions:
 * the library's own exchanges happen there. */

/* Starts the world (MPI_Init_thread, MPI_THREAD_FUNNELED, unless the
 * program initialised MPI itself); argc and argv may be NULL.  NB_OK, or
 * NB_ERR_IO / NB_ERR_NOMEM when MPI would not start (the world is then
 * this process alone).  Calling it again does nothing. */
int nb_dist_init(int *argc, char ***argv);
/* This process's rank, and how many there are (0 and 1 before init). */
int nb_dist_rank(void);
int nb_dist_size(void);
/* True when the library was built with MPI. */
bool nb_dist_enabled(void);
/* "Open MPI v4.1.4", "MPICH Version: 4.0.2"...: what MPI_Get_library_version
 * says, first part; "none" when MPI is not in use. */
const char *nb_dist_library(void);
/* The world as an nb_comm, for nb_ctx_set_batch and nb_trainer_set_comm:
 * allgather is MPI_Allgatherv of bytes over a duplicate of MPI_COMM_WORLD
 * (one exchange past INT_MAX bytes, MPI's int counts, is refused with a
 * message), or a copy for one process.  Valid until nb_dist_finalize. */
nb_comm nb_dist_comm(void);
/* Ends the world (MPI_Finalize when nb_dist_init started MPI). */
void nb_dist_finalize(void);
/* For a fatal error in a program: flushes stdout and stderr, then ends
 * every process of the job with exit status `code` (MPI_Abort).  Alone (no
 * job of several processes) it returns, and the caller exits as it would
 * have.  The library itself never calls it. */
void nb_dist_abort(int code);

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
    char name[64];     /* for messages, reports and files; may be empty */

    /* private to the library */
    struct nbi_node *node_;  /* the op that made it; NULL for a leaf */
    nb_ctx *ctx_;
    unsigned flags_;
    nb_tensor *prev_, *next_; /* the context's list of persistent tensors */
};

/* A new persistent tensor filled with zeros.  shape holds ndim sizes, each
 * >= 1 (ndim 0 is a scalar).  NULL on error (NB_ERR_NOMEM, before
 * allocating, when its data and that of the context's other persistent
 * tensors would exceed the context's memory limit). */
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
/* Writes "[2, 3, 4]" into buf (always terminated, ending "...]" when cut);
 * returns buf.  nb_dims_str does it for sizes that are not a tensor's (a
 * model's input shape, say). */
char *nb_shape_str(const nb_tensor *t, char *buf, size_t size);
char *nb_dims_str(int ndim, const int64_t *dims, char *buf, size_t size);
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

/* Threads the library may use (1 or more; 1 until set), for the whole
 * process: convolutions split the batch, GEMMs their output, elementwise
 * work its elements, all on OpenMP's one pool (OpenBLAS's own threads stay
 * off).  Returns the previous count.  The same count and seed give the
 * same results. */
int nb_set_num_threads(int n);

/* The CPU kernels in use, for the whole process: "baseline" (x86-64),
 * "avx2" (AVX2 with FMA) or "avx512" (AVX-512 F, BW, VL, DQ), the widest
 * the CPU has unless the environment's NABLA_CPU names another (a context
 * made while NABLA_CPU names kernels the CPU lacks reports it in its error
 * and runs the widest).  avx2 and avx512 give the same bits; baseline,
 * without fused multiply-adds, differs in the last bits. */
const char *nb_cpu_kernels(void);
/* Chooses them by name; NB_ERR_ARG, with a line in why (size bytes; why
 * may be NULL), for a name unknown or a variant this CPU cannot run, and
 * the kernels stay as they were. */
int nb_set_cpu_kernels(const char *name, char *why, size_t size);

/* Number of nodes recorded since the last reset, and the name of an op
 * by its registry index (NULL past the end): for tools and tests. */
int nb_graph_size(const nb_ctx *ctx);
const char *nb_op_name(int index);

/* Bytes the step arena (and the ops' shared scratch) holds, and how many
 * times the library has called the allocator: a warm training step must
 * not change the second. */
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
/* Sum and mean of all elements: a scalar, the same bits on any thread
 * count.  Not split-aware: they take the elements here alone, whatever
 * nb_ctx_set_batch says (the losses are what sums over a split batch). */
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
    bool relu;      /* y = max(0, conv + b) in one op: a pass over memory
                       and a tensor fewer than nb_relu after it */
    int groups;     /* 0 means 1: C and O split in groups, each output
                       channel reading C / groups inputs; groups = C is
                       depthwise */
    int dilation[2]; /* [dh, dw] spacing of the kernel's taps; 0 means 1 */
} nb_conv_opts;

/* x [N, C, H, W], w [O, C / groups, kh, kw], b [O] or NULL -> [N, O, oh, ow],
 * oh = (H + 2 ph - dh (kh - 1) - 1) / sh + 1; C and O divisible by groups. */
nb_tensor *nb_conv2d(nb_ctx *ctx, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                     const nb_conv_opts *opts);
/* x [N, C, L], w [O, C / groups, k], b [O] or NULL -> [N, O, ol]; opts use
 * index 0 (stride[0], padding[0], dilation[0]). */
nb_tensor *nb_conv1d(nb_ctx *ctx, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                     const nb_conv_opts *opts);

/* Transposed convolution options, as torch.nn.ConvTranspose2d's; a zeroed
 * struct (or NULL) means stride 1, padding 0, output_padding 0, groups 1,
 * dilation 1. */
typedef struct nb_conv_transpose_opts {
    int stride[2];         /* [sh, sw]; 0 means 1 */
    int padding[2];        /* [ph, pw] taken off each side of the output */
    int output_padding[2]; /* added at the bottom and right; each smaller
                              than its stride or its dilation */
    int groups;            /* 0 means 1; divides C and O */
    int dilation[2];       /* 0 means 1 */
} nb_conv_transpose_opts;

/* The gradient of conv2d with respect to its input, as a layer: x [N, C, H, W],
 * w [C, O / groups, kh, kw] (PyTorch's layout), b [O] or NULL -> [N, O, oh, ow],
 * oh = (H - 1) sh - 2 ph + dh (kh - 1) + output_padding_h + 1. */
nb_tensor *nb_conv_transpose2d(nb_ctx *ctx, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                               const nb_conv_transpose_opts *opts);

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

/* Upsampling options, as torch.nn.Upsample: exactly one of size (the
 * output's [h, w]) and scale_factor (per axis, > 0: the output is
 * floor(H * scale_factor)) is given, the other left zero.  align_corners
 * is for bilinear only, as PyTorch refuses it for nearest. */
typedef enum nb_upsample_mode { NB_UPSAMPLE_NEAREST, NB_UPSAMPLE_BILINEAR } nb_upsample_mode;
typedef struct nb_upsample_opts {
    nb_upsample_mode mode;
    int size[2];            /* [h, w], or {0, 0} */
    double scale_factor[2]; /* [sh, sw], or {0, 0} */
    bool align_corners;
} nb_upsample_opts;

/* x [N, C, H, W] -> [N, C, oh, ow], with PyTorch's source indices and
 * weights (recompute_scale_factor unset: a given scale_factor, not oh / H,
 * places the samples). */
nb_tensor *nb_upsample(nb_ctx *ctx, nb_tensor *x, const nb_upsample_opts *opts);

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
/* PyTorch's F.gelu: x Phi(x), Phi the normal CDF, or with tanh_approx its
 * approximate="tanh" form x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) / 2. */
nb_tensor *nb_gelu(nb_ctx *ctx, nb_tensor *x, bool tanh_approx);
/* x sigmoid(x) (also called swish). */
nb_tensor *nb_silu(nb_ctx *ctx, nb_tensor *x);
/* x min(max(x + 3, 0), 6) / 6. */
nb_tensor *nb_hardswish(nb_ctx *ctx, nb_tensor *x);
/* log(1 + e^(beta x)) / beta, and x itself where beta x > threshold
 * (PyTorch's defaults: beta 1, threshold 20); beta > 0 and finite. */
nb_tensor *nb_softplus(nb_ctx *ctx, nb_tensor *x, double beta, double threshold);
/* Along dim (negative counts from the end). */
nb_tensor *nb_softmax(nb_ctx *ctx, nb_tensor *x, int dim);
nb_tensor *nb_log_softmax(nb_ctx *ctx, nb_tensor *x, int dim);

/* Inverted dropout: in train mode each element (dropout) or each [n, c]
 * channel (dropout2d) is zeroed with probability p and the rest scaled by
 * 1/(1-p); in eval mode (or p = 0), the identity: the result then shares
 * x's data.  0 <= p < 1.  A call in train mode draws one number from rng,
 * a key; the mask is a hash of it and each entry's place in the whole
 * batch (dropout.c), so a process holding part of a batch draws for it
 * what one holding all of it would. */
nb_tensor *nb_dropout(nb_ctx *ctx, nb_tensor *x, double p, nb_rng *rng);
nb_tensor *nb_dropout2d(nb_ctx *ctx, nb_tensor *x, double p, nb_rng *rng);

/* Batch norm over [N, C], [N, C, L] or [N, C, H, W], per channel: the
 * statistics of a channel run over N and everything after C (PyTorch's
 * BatchNorm1d for [N, C] and [N, C, L], BatchNorm2d for [N, C, H, W]).
 * Train mode normalises with the batch's mean and biased variance and
 * updates the running statistics (r = (1 - momentum) r + momentum s, with
 * the unbiased variance), eval mode uses the running statistics.
 * weight, bias [C] may be NULL (no affine); running_mean, running_var [C]
 * may be NULL (batch statistics always).  PyTorch's defaults: momentum
 * 0.1, eps 1e-5.  The statistics are the whole batch's when
 * nb_ctx_set_batch splits it. */
nb_tensor *nb_batch_norm(nb_ctx *ctx, nb_tensor *x, nb_tensor *weight,
                         nb_tensor *bias, nb_tensor *running_mean,
                         nb_tensor *running_var, double momentum, double eps);

/* Layer norm and group norm: no running statistics, so train and eval
 * mode alike.  Each set of values normalised gets its own mean and biased
 * variance (computed in double in a fixed order, for float32 too):
 * y = (x - mean) / sqrt(var + eps) w + b, w = 1 and b = 0 when NULL.
 * layer_norm normalises each example of x [N, ...] over its last ndims
 * dimensions (ndims >= 1, fewer than x's), as PyTorch's LayerNorm with
 * normalized_shape those dimensions; w and b are shaped as they are.
 * group_norm takes x [N, C, *] with C divisible by num_groups and
 * normalises each example's groups of C / num_groups consecutive channels,
 * as PyTorch's GroupNorm; w and b are [C].  num_groups = C is instance
 * norm, num_groups = 1 layer norm over [C, *] with a weight per channel.
 * PyTorch's default eps is 1e-5. */
nb_tensor *nb_layer_norm(nb_ctx *ctx, nb_tensor *x, int ndims, nb_tensor *w, nb_tensor *b,
                         double eps);
nb_tensor *nb_group_norm(nb_ctx *ctx, nb_tensor *x, int num_groups, nb_tensor *w, nb_tensor *b,
                         double eps);

/* Losses, means over the batch (the whole batch's, when nb_ctx_set_batch
 * splits it: every process gets the same value); each returns a scalar. */
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

/* torch.nn.init with its arguments.  The nonlinearity a gain is for
 * (calculate_gain): 1 for linear, the convolutions and sigmoid, 5/3 for
 * tanh, sqrt 2 for relu, sqrt(2 / (1 + param^2)) for leaky_relu (param
 * its negative slope), 3/4 for selu. */
typedef enum nb_nonlinearity {
    NB_NL_LINEAR, NB_NL_CONV1D, NB_NL_CONV2D, NB_NL_CONV3D, NB_NL_CONV_TRANSPOSE1D,
    NB_NL_CONV_TRANSPOSE2D, NB_NL_CONV_TRANSPOSE3D, NB_NL_SIGMOID, NB_NL_TANH, NB_NL_RELU,
    NB_NL_LEAKY_RELU, NB_NL_SELU
} nb_nonlinearity;
/* Which fan kaiming's std divides by: fan_in keeps the forward's
 * variance, fan_out the backward's. */
typedef enum nb_fan_mode { NB_FAN_IN, NB_FAN_OUT } nb_fan_mode;

double nb_calculate_gain(nb_nonlinearity nonlinearity, double param);
/* _calculate_fan_in_and_fan_out: NB_ERR_ARG for fewer than 2 dimensions. */
int nb_init_fans(const nb_tensor *w, double *fan_in, double *fan_out);
/* std = gain(nonlinearity, a) / sqrt(fan), the uniform bound sqrt 3 std;
 * nb_init_kaiming_uniform(w, rng) is (a 0, NB_FAN_IN, NB_NL_LEAKY_RELU).
 * NB_ERR_ARG for fewer than 2 dimensions (w is then left alone). */
int nb_init_kaiming_uniform_with(nb_tensor *w, nb_rng *rng, double a, nb_fan_mode mode,
                                 nb_nonlinearity nonlinearity);
int nb_init_kaiming_normal_with(nb_tensor *w, nb_rng *rng, double a, nb_fan_mode mode,
                                nb_nonlinearity nonlinearity);
/* std = gain sqrt(2 / (fan_in + fan_out)), the uniform bound sqrt 3 std. */
int nb_init_xavier_uniform_with(nb_tensor *w, nb_rng *rng, double gain);
int nb_init_xavier_normal_with(nb_tensor *w, nb_rng *rng, double gain);
/* normal(mean, std) kept to [a, b] (bounds, not stds), redrawn until
 * inside; NB_ERR_ARG when a >= b, std < 0 or [a, b] holds less than 1% of
 * the distribution (nothing drawn).  std 0: every element mean, clamped. */
int nb_init_trunc_normal(nb_tensor *t, nb_rng *rng, double mean, double std, double a,
                         double b);
/* uniform, normal, zeros, ones and constant are nb_fill_uniform(t, rng,
 * a, b), nb_fill_normal(t, rng, mean, std) and nb_fill(t, val). */

/* ---- optimizers ---------------------------------------------------------
 * PyTorch's update rules (torch.optim), so one step from the same weights
 * and gradients gives the same weights:
 *   sgd      g = grad + wd p; b = mu b + (1 - dampening) g (b = g at the
 *            first step); g = nesterov ? g + mu b : b; p -= lr g
 *   adam     g = grad + wd p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 *            p -= lr / (1 - b1^t) m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *   adamw    p -= lr wd p first (decoupled decay), then adam without wd
 *   rmsprop  g = grad + wd p; v = alpha v + (1 - alpha) g^2;
 *            c = centered ? v - ga^2 (ga = alpha ga + (1 - alpha) g) : v;
 *            d = g / (sqrt(c) + eps); b = mu b + d; p -= lr (mu ? b : d) */

typedef enum nb_optim_kind {
    NB_SGD = 0,
    NB_ADAM,
    NB_ADAMW,
    NB_RMSPROP,
} nb_optim_kind;

typedef struct nb_optim_opts {
    nb_optim_kind kind;
    double lr;
    double momentum;      /* sgd, rmsprop */
    double dampening;     /* sgd */
    bool nesterov;        /* sgd */
    double weight_decay;
    double beta1, beta2;  /* adam, adamw */
    double alpha;         /* rmsprop's smoothing constant */
    double eps;           /* adam, adamw, rmsprop */
    bool centered;        /* rmsprop */
} nb_optim_opts;

/* PyTorch's defaults for a kind: lr 0.01 (sgd, rmsprop) or 0.001 (adam,
 * adamw), betas (0.9, 0.999), alpha 0.99, eps 1e-8, weight decay 0 (0.01
 * for adamw), momentum 0. */
nb_optim_opts nb_optim_defaults(nb_optim_kind kind);
/* The kind named "sgd", "adam", "adamw" or "rmsprop"; -1 if none. */
int nb_optim_kind_from_name(const char *name);
const char *nb_optim_kind_name(nb_optim_kind kind);
/* State tensors the optimizer keeps per parameter under opts, each the
 * parameter's size: sgd 0, or 1 with momentum; adam and adamw 2; rmsprop 1,
 * plus 1 with momentum and 1 centered.  -1 for an unknown kind. */
int nb_optim_buffers(const nb_optim_opts *opts);

typedef struct nb_optim nb_optim;

/* An optimizer over n parameters (persistent tensors, f32 or f64; the
 * array is copied).  Its state tensors are made in ctx, zeroed.  NULL on
 * error (a bad hyperparameter, naming it; NB_ERR_NOMEM, before anything is
 * made, when the state and the parameters' gradients, with the tensors
 * the context holds, exceed its memory limit). */
nb_optim *nb_optim_new(nb_ctx *ctx, const nb_optim_opts *opts, int n,
                       nb_tensor *const *params);
void nb_optim_free(nb_optim *o);
/* One update of every parameter from its gradient; parameters without a
 * gradient are left alone. */
int nb_optim_step(nb_optim *o);
/* Zeroes the parameters' gradients. */
void nb_optim_zero_grad(nb_optim *o);
double nb_optim_lr(const nb_optim *o);
void nb_optim_set_lr(nb_optim *o, double lr);
/* Steps taken so far (Adam's t); restored with the state. */
int64_t nb_optim_steps(const nb_optim *o);
void nb_optim_set_steps(nb_optim *o, int64_t steps);
/* The state, for checkpoints: tensors named "<param>.<buffer>" with
 * PyTorch's buffer names (momentum_buffer, exp_avg, exp_avg_sq,
 * square_avg, grad_avg). */
int nb_optim_num_state(const nb_optim *o);
nb_tensor *nb_optim_state(const nb_optim *o, int i);

/* Scales the gradients of the n tensors so their joint L2 norm is at most
 * max_norm (torch.nn.utils.clip_grad_norm_); returns the norm before. */
double nb_clip_grad_norm(int n, nb_tensor *const *params, double max_norm);

/* Learning-rate schedules, by epoch (from 0): step decay
 * lr gamma^floor(epoch / step_size), and cosine annealing from lr to
 * min_lr over total epochs (torch's StepLR and CosineAnnealingLR). */
double nb_lr_step(double lr, int epoch, int step_size, double gamma);
double nb_lr_cosine(double lr, int epoch, int total, double min_lr);

/* ---- data sets ----------------------------------------------------------
 * Images stay in memory as they were read, uint8 (or float, from an .npz
 * file of float images), [N, C, H, W] with C 1 (gray) or 3 (RGB), with an
 * int32 label each; batches are converted to float, to the model's
 * channels and normalised as they are drawn.  Splits, shuffles and
 * class filters are arrays of example indices, so the data is never
 * copied. */

typedef struct nb_dataset nb_dataset;

/* Reads an images file and a labels file in the IDX format of MNIST and
 * Fashion-MNIST (idx3 of uint8 [N, H, W] and idx1 of uint8 [N]), raw or
 * gzipped; regular files only.  What a header declares is checked before
 * it is allocated: against the file's size (raw) and the context's memory
 * limit.  NULL on error: NB_ERR_IO for a missing or unreadable file or one
 * that is not a regular file, NB_ERR_FORMAT for a wrong magic, a truncated
 * file or counts that disagree, NB_ERR_NOMEM for images that exceed the
 * memory limit, the message naming the file. */
nb_dataset *nb_dataset_load_idx(nb_ctx *ctx, const char *images,
                                const char *labels);
/* The training (train true) or test half of a data set: a directory of
 * the four standard IDX names (train-images-idx3-ubyte,
 * train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte,
 * each optionally .gz); or of CIFAR-10's or CIFAR-100's binary files
 * (data_batch_1.bin ... data_batch_5.bin and test_batch.bin, or train.bin
 * and test.bin, there or in cifar-10-batches-bin/ or cifar-100-binary/;
 * [3, 32, 32], CIFAR-100's fine labels); or of PNG files in one folder per
 * class (DIR/train/CLASS/x.png and DIR/test/CLASS/x.png; classes sorted by
 * name, images all of one size and all gray or all colour: 1 or 3
 * channels, alpha dropped; a DIR/val/CLASS/ folder's images follow the
 * training ones as the data's own validation split); or an .npz file (NumPy's, as the 02456 lab's
 * mnist.npz: X_train and y_train, with X_valid and y_valid after them as
 * the data's own validation split, nb_dataset_validation; X_test and
 * y_test; uint8 or float images of (N, D), (N, H, W), (N, C, H, W) or
 * (N, H, W, C)).  The two splits must have the same class folders,
 * since a label is a folder's place among them: when the other split has
 * class folders (only their names are read), a name missing from either is
 * NB_ERR_FORMAT, as
 *   data/test: no class folder "bag" as in data/train (the splits need the
 *   same class folders) */
nb_dataset *nb_dataset_load(nb_ctx *ctx, const char *dir, bool train);
void nb_dataset_free(nb_dataset *ds);

int64_t nb_dataset_size(const nb_dataset *ds);
/* [C, H, W] of one example; returns 3. */
int nb_dataset_shape(const nb_dataset *ds, int64_t *shape);
/* 1 + the largest label. */
int nb_dataset_num_classes(const nb_dataset *ds);
/* The class folder's name for PNG data sets (CIFAR's from its meta file),
 * NULL for IDX. */
const char *nb_dataset_class_name(const nb_dataset *ds, int label);
/* Example i's [C, H, W] uint8 pixels, or NULL when out of range or when
 * the data holds float values (nb_dataset_values). */
const uint8_t *nb_dataset_image(const nb_dataset *ds, int64_t i);
/* Example i's [C, H, W] float values for data read from float arrays, else
 * NULL. */
const float *nb_dataset_values(const nb_dataset *ds, int64_t i);
/* How many of the last examples are the data's own validation split (an
 * .npz file's X_valid, a PNG folder's DIR/val/); 0 for most data. */
int64_t nb_dataset_validation(const nb_dataset *ds);
int32_t nb_dataset_label(const nb_dataset *ds, int64_t i);

/* The indices of the examples whose label is one of classes[n], in order;
 * returns how many (idx holds room for nb_dataset_size). */
int64_t nb_dataset_select(const nb_dataset *ds, int n, const int32_t *classes,
                          int64_t *idx);
/* Fisher-Yates shuffle of n indices with rng. */
void nb_shuffle(int64_t *idx, int64_t n, nb_rng *rng);

/* Fills x [n, ...] (any shape of n examples, f32 or f64) with examples
 * idx[0..n) scaled to [0, 1] (pixels p as p / 255; float values as they
 * are), then (v - mean[c]) / std[c] per channel c when std is not NULL
 * (mean NULL: 0), and labels[n] (if not NULL) with their labels.  An
 * example of x holds C H W values with C the data's channels, or 1 (the
 * mean of the data's channels: gray from colour), or 3 from gray data (the
 * channel repeated); mean and std have C values. */
int nb_dataset_batch(const nb_dataset *ds, const int64_t *idx, int64_t n,
                     nb_tensor *x, int32_t *labels, const double *mean,
                     const double *std);
/* Seeded augmentation of the training batches (never of validation, test,
 * evaluation or predictions): each example's draws come from the run's
 * seed, the epoch and the example's place in the epoch's order, so a run
 * is the same whatever its threads, processes or resumptions. */
typedef struct nb_augment {
    int crop_padding; /* a random crop of the image padded with this many
                         black pixels a side (torchvision's RandomCrop with
                         padding): a shift by up to that each way; 0 none */
    int translate;    /* a random shift by up to this many pixels each way,
                         the edge pixels repeated (Keras's RandomTranslation
                         with fill_mode "nearest"); 0 none */
    double hflip;     /* the probability of a horizontal flip; 0 none */
} nb_augment;

/* Augments in place the n examples of x [n, ...], each C planes of [h, w]
 * (C = x's numel / (n h w), at most NB_MAX_CHANNELS), as aug says: a shift
 * (crop_padding or translate), then a flip.  Example k draws from a
 * generator seeded by seed and its place first + k, so the same seed and
 * places give the same batch however it is split.  black[c] is what a
 * black pixel is in channel c after normalisation (NULL: 0): the crop's
 * padding.  NB_ERR_ARG for sizes or settings out of range. */
int nb_augment_batch(nb_tensor *x, int64_t h, int64_t w, const nb_augment *aug,
                     uint64_t seed, int64_t first, const double *black);
/* A data set holding copies of n images of [c, h, w] (uint8, one after
 * the other; c from 1 to NB_MAX_CHANNELS) and their labels (>= 0).  NULL
 * on error (NB_ERR_ARG naming the bad size or label, NB_ERR_NOMEM). */
nb_dataset *nb_dataset_from(nb_ctx *ctx, int64_t n, int64_t c, int64_t h,
                            int64_t w, const uint8_t *images,
                            const int32_t *labels);
/* Where the data set came from, for messages: the directory given to
 * nb_dataset_load, the images file given to nb_dataset_load_idx, or
 * "memory" for nb_dataset_from. */
const char *nb_dataset_origin(const nb_dataset *ds);

/* ---- images -------------------------------------------------------------
 * PNG through libpng, as float tensors [C, H, W] with values in [0, 1]. */

/* Reads a PNG of any kind (gray, gray+alpha, RGB, RGBA, palette; 1 to 16
 * bits) into a new persistent tensor [C, H, W]: C is the file's channel
 * count (a palette gives 3, or 4 with transparency), or 1 with gray, the
 * mean of the color channels (alpha ignored).  NULL on error (NB_ERR_IO,
 * or NB_ERR_FORMAT for a corrupt, truncated, empty or too large image). */
nb_tensor *nb_png_read(nb_ctx *ctx, const char *path, nb_dtype dtype,
                       bool gray);
/* The same from the bytes of a PNG in memory (an upload, say); origin
 * names them in messages. */
nb_tensor *nb_png_decode(nb_ctx *ctx, const void *buf, size_t len, const char *origin,
                         nb_dtype dtype, bool gray);
/* Writes img [1, H, W], [H, W] (gray) or [3, H, W] (RGB) as 8 bits per
 * channel, values clamped to [0, 1]; atomically, as nb_safetensors_save. */
int nb_png_write(nb_ctx *ctx, const char *path, const nb_tensor *img);
/* A new persistent [C, h, w] image resized from img [C, H, W] with
 * bilinear interpolation (pixel centres aligned, as PyTorch's
 * align_corners=False), averaging over the covered area when shrinking. */
nb_tensor *nb_image_resize(nb_ctx *ctx, const nb_tensor *img, int64_t h,
                           int64_t w);

/* ---- files ---------------------------------------------------------------
 * What the library writes (weights, checkpoints, images) is written
 * atomically: to a temporary beside the destination ("<path>.tmp.<pid>.<n>",
 * never another writer's), flushed to disk, then renamed into place, so a
 * reader never sees half a file and a crash leaves the old one. */

/* Writes size bytes of data to path in that way.  NB_ERR_IO with the path
 * and the reason ("runs/x/metrics.csv: cannot write: No space left on
 * device"); the temporary is removed on every failure. */
int nb_file_write(nb_ctx *ctx, const char *path, const void *data, size_t size);

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

/* ---- safetensors --------------------------------------------------------
 * The format of PyTorch's and Hugging Face's weight files: an 8-byte
 * little-endian header length, a JSON header mapping each name to its
 * dtype, shape and byte range, then the raw little-endian data. */

typedef struct nb_safetensors nb_safetensors;

/* Reads and validates a whole file: the header's JSON, every entry's dtype,
 * shape and byte range against the file's size.  Only a regular file, read
 * in one buffer of its size.  NULL on error (NB_ERR_IO for a file that
 * cannot be read or is not a regular file, as a pipe, a device such as
 * /dev/zero or a directory: "<path>: not a regular file"; NB_ERR_NOMEM for
 * one larger than the context's memory limit; NB_ERR_FORMAT for a malformed
 * one, the message naming the file and what is wrong). */
nb_safetensors *nb_safetensors_open(nb_ctx *ctx, const char *path);
/* Frees the file's memory; close it before freeing its context.  Accepts
 * NULL. */
void nb_safetensors_close(nb_safetensors *f);

/* The entries, in the order of the file's header. */
int nb_safetensors_count(const nb_safetensors *f);
const char *nb_safetensors_name(const nb_safetensors *f, int i);
/* Index of the entry named `name`, or -1. */
int nb_safetensors_find(const nb_safetensors *f, const char *name);

/* A new persistent tensor holding entry `name`, converted to dtype from
 * any of F16, BF16, F32, F64, I8, U8, I16, I32, I64 and BOOL, and named
 * after the entry.  NULL with a message if there is no such entry. */
nb_tensor *nb_safetensors_get(nb_ctx *ctx, nb_safetensors *f,
                              const char *name, nb_dtype dtype);

/* Copies the entry named t->name into each of the n tensors, converting
 * F32 and F64 as needed.  Every tensor must have an entry of its shape;
 * with strict, every entry must also have a tensor.  On a mismatch nothing
 * is changed and the message names each missing, unexpected or mismatched
 * tensor. */
int nb_safetensors_read(nb_ctx *ctx, nb_safetensors *f, int n,
                        nb_tensor *const *tensors, bool strict);

/* Writes the n tensors, each under its name (non-empty, unique), with its
 * dtype.  The file is written beside its destination and renamed into
 * place, so it is never seen half-written. */
int nb_safetensors_save(nb_ctx *ctx, const char *path, int n,
                        nb_tensor *const *tensors);
/* The same with __metadata__: nmeta pairs of UTF-8 strings keys[i] and
 * values[i]. */
int nb_safetensors_save_meta(nb_ctx *ctx, const char *path, int n,
                             nb_tensor *const *tensors, int nmeta,
                             const char *const *keys, const char *const *values);
/* The __metadata__ value of key in an open file, or NULL; valid until the
 * file is closed. */
const char *nb_safetensors_meta(const nb_safetensors *f, const char *key);

/* ---- models in JSON files -----------------------------------------------
 * A model file names its input shape (one example, batch excluded), its
 * layers (the sequential form "layers", or the graph form "nodes" and
 * "output") and its loss; docs/model-format.md describes it.  Loading
 * validates every field and infers every layer's shape before anything
 * runs. */

typedef struct nb_model nb_model;

typedef enum nb_loss_kind {
    NB_LOSS_NONE = 0,
    NB_LOSS_CROSS_ENTROPY, /* logits [N, C] and int32 labels */
    NB_LOSS_MSE,           /* a float target shaped like the output */
    NB_LOSS_HINGE,         /* targets in {-1, +1}, numel N */
} nb_loss_kind;

/* Loads a model file, or parses JSON text (`origin` names it in messages).
 * Parameters and buffers are made in ctx in `dtype` and initialised as
 * PyTorch does (nb_init_default; batch norm weight 1, bias 0, running mean
 * 0, running var 1), then by each layer's "init" when it has one, from a
 * generator seeded with 0: call nb_model_init to draw them again.  NULL on error: NB_ERR_IO when the file cannot be read,
 * NB_ERR_FORMAT for a model that is wrong, with a one-line message such as
 *   models/x.json: layers[3] (conv2d "conv2"): kernel_size 5 is larger
 *   than its 3x3 input
 * or, for bad JSON, models/x.json:12:5: ... (line and column). */
nb_model *nb_model_load(nb_ctx *ctx, const char *path, nb_dtype dtype);
nb_model *nb_model_parse(nb_ctx *ctx, const char *json, size_t len,
                         const char *origin, nb_dtype dtype);
/* Their parameters and buffers are refused (NB_ERR_NOMEM) before any is
 * made when they exceed the context's memory limit.  With flags
 * NB_MODEL_SHAPES_ONLY, none is made at all: the model is read, checked
 * and its shapes inferred as ever, for what needs only those (layers,
 * parameter counts, nb_model_memory), even for a model too large for the
 * machine.  It then has no tensors (nb_model_num_tensors is 0), init does
 * nothing, and forward and the weights functions fail with NB_ERR_ARG. */
enum { NB_MODEL_SHAPES_ONLY = 1u << 0 };
nb_model *nb_model_load_with(nb_ctx *ctx, const char *path, nb_dtype dtype,
                             unsigned flags);
nb_model *nb_model_parse_with(nb_ctx *ctx, const char *json, size_t len,
                              const char *origin, nb_dtype dtype, unsigned flags);
/* Frees the model and its tensors.  Accepts NULL. */
void nb_model_free(nb_model *m);

/* Draws every parameter again from rng, as PyTorch initialises a new
 * module, and resets the buffers; a layer with "init" then draws the
 * slots it names again, weight before bias (from seed 0: the draws of a
 * load). */
void nb_model_init(nb_model *m, nb_rng *rng);

const char *nb_model_name(const nb_model *m);
nb_dtype nb_model_dtype(const nb_model *m);
/* The shape of one example (batch excluded): returns ndim, fills shape. */
int nb_model_input_shape(const nb_model *m, int64_t *shape);
/* The same for the model's output. */
int nb_model_output_shape(const nb_model *m, int64_t *shape);
nb_loss_kind nb_model_loss_kind(const nb_model *m);

/* The model's tensors: its parameters ("<layer>.weight", "<layer>.bias")
 * and buffers ("<layer>.running_mean", ...), in layer order, named as
 * PyTorch's state_dict names them. */
int nb_model_num_tensors(const nb_model *m);
nb_tensor *nb_model_tensor(const nb_model *m, int i);
bool nb_model_is_buffer(const nb_model *m, int i);
/* The tensor named `name`, or NULL. */
nb_tensor *nb_model_find(const nb_model *m, const char *name);
/* Parameter counts: trainable (requires_grad), and the rest (buffers and
 * frozen parameters), as Keras's summary counts them. */
int64_t nb_model_num_params(const nb_model *m, bool trainable);
/* Freezes the layer named `layer`, as "trainable": false in its file: its
 * parameters require no gradient, so a trainer made after it neither
 * updates them nor keeps optimizer state for them.  With stats (a
 * batch_norm only, as its "freeze_stats": true) it also normalises by its
 * running statistics in training, and keeps them.  Part of
 * nb_model_digest.  NB_ERR_ARG for no such layer, or stats on another. */
int nb_model_freeze(nb_model *m, const char *layer, bool stats);

/* One layer (or node) of the model, for summaries and tools. */
typedef struct nb_layer_info {
    const char *name;      /* "conv1", or its index "0", "1"... */
    const char *type;      /* "conv2d", "relu"... */
    const char *activation; /* its "activation" field ("relu"...), or NULL */
    bool trainable;        /* false when frozen ("trainable": false) */
    int ndim;              /* of one example's output (batch excluded) */
    int64_t shape[NB_MAX_DIMS];
    int64_t params;        /* parameters (weights and biases, frozen or not) */
    int64_t buffers;       /* elements of buffers */
    int ninputs;
    const char *inputs[8]; /* names of the layers it reads; "input" */
    /* Its "init" as JSON with every argument, or NULL: the layer's own. */
    const char *init;
    /* Its settings that are not their defaults, and those a file must give,
     * as "out_channels=32, kernel_size=3, stride=2, groups=32", or NULL:
     * none (relu).  Pairs of equal numbers are written once. */
    const char *settings;
} nb_layer_info;

int nb_model_num_layers(const nb_model *m);
int nb_model_layer(const nb_model *m, int i, nb_layer_info *info);
/* The index of the layer whose output is the model's. */
int nb_model_output_layer(const nb_model *m);

/* Runs the model on x [N, input...] in the context's mode (train or eval:
 * dropout and batch norm), recording the graph like any op.  Returns the
 * output, a step tensor; NULL on error.  A forward that would grow the
 * step arena is first checked against the context's memory limit: the
 * persistent tensors it holds, the parameters' gradients still to be made
 * and nb_model_memory's activations (and, when recording, their gradients)
 * for N examples; over it, NB_ERR_NOMEM before the step allocates
 * anything. */
nb_tensor *nb_model_forward(nb_ctx *ctx, nb_model *m, nb_tensor *x);
/* The output of layer i in the last forward (a step tensor, valid until
 * nb_graph_reset), or NULL. */
nb_tensor *nb_model_activation(const nb_model *m, int i);
/* The generator dropout layers draw from; seeded with 0 at load. */
nb_rng *nb_model_rng(nb_model *m);

/* The model's loss of `output`: labels (int32, N of them) for cross
 * entropy, target (a tensor) for mse and hinge.  NULL on error, including
 * a model without a loss. */
nb_tensor *nb_model_loss(nb_ctx *ctx, nb_model *m, nb_tensor *output,
                         const int32_t *labels, nb_tensor *target);

/* Loads the model's tensors from a safetensors file (strictly: every name,
 * dtype-converted, every shape checked; nothing changes on a mismatch), or
 * saves them. */
int nb_model_load_weights(nb_model *m, const char *path);
int nb_model_save_weights(nb_model *m, const char *path);

/* An estimate of the memory a model needs, from its shapes alone (in its
 * dtype, each part saturating at UINT64_MAX).  What it counts: */
typedef struct nb_memory_report {
    int64_t batch;
    uint64_t params;      /* the parameters and buffers */
    uint64_t grads;       /* the trainable parameters' gradients */
    uint64_t optim;       /* the optimizer's state, optim_buffers per parameter */
    int optim_buffers;    /* nb_optim_buffers */
    uint64_t input;       /* a batch's input */
    uint64_t activations; /* the step's tensors for a batch: every layer's
                             output (a flatten shares its input's), a
                             separate activation's, and what the ops keep
                             for backward (conv's saved columns, max pool's
                             indices, dropout's masks) */
    uint64_t act_grads;   /* the gradients of those outputs */
    uint64_t total;       /* the sum */
} nb_memory_report;

/* Fills r for batches of `batch` examples: for training with an optimizer
 * of these options (every part), or for inference without recording
 * (optim NULL: params, input and activations).  Not counted: the shared
 * scratch of one op at a time (conv's column buffer, a linear layer's
 * partial sums of its weight's gradient, one per 16 examples), the data set, the
 * allocator's overhead, and the step arena's growth during the first step
 * (its chunks double, then merge into one of the peak's size).  Works on a
 * model loaded with NB_MODEL_SHAPES_ONLY.  NB_ERR_ARG for batch < 1 or an
 * unknown optimizer kind. */
int nb_model_memory(const nb_model *m, int64_t batch, const nb_optim_opts *optim,
                    nb_memory_report *r);
/* NB_OK when nb_model_memory's total fits the context's memory limit;
 * NB_ERR_NOMEM otherwise, with one line naming the model, the batch, the
 * total and the limit: a check to make before training starts. */
int nb_model_check_memory(nb_model *m, int64_t batch, const nb_optim_opts *optim);

/* The JSON text of a top-level section the model file may carry
 * ("optimizer", "training"), unformatted, or NULL if absent: for tools that
 * show or copy it (nb_model_train_opts gives what it says).  Owned by the
 * model. */
const char *nb_model_section(const nb_model *m, const char *key);

/* A 64-bit digest of the network the model is: its dtype, input shape,
 * layers (type, name, inputs, every setting after its defaults, activation,
 * tensor shapes) and loss.  Files that load to the same network share it
 * whatever their layout (spaces, key order, defaults written out or not);
 * the name, the weights and the "optimizer" and "training" sections are
 * not part of it.  A checkpoint records it to know its model again.  0 for
 * NULL. */
uint64_t nb_model_digest(const nb_model *m);

/* ---- training settings --------------------------------------------------
 * What a model file's "training" and "optimizer" sections say, over
 * defaults; the command line overrides them in turn. */

#define NB_MAX_CLASSES 256

typedef enum nb_schedule { NB_SCHEDULE_NONE = 0, NB_SCHEDULE_STEP, NB_SCHEDULE_COSINE } nb_schedule;

/* What a callback watches: an epoch's metric (loss and accuracy over its
 * training batches, val_ ones after it); a loss improves by going down, an
 * accuracy by going up. */
typedef enum nb_monitor {
    NB_MONITOR_NONE = 0,
    NB_MONITOR_VAL_LOSS,
    NB_MONITOR_VAL_ACCURACY,
    NB_MONITOR_LOSS,
    NB_MONITOR_ACCURACY,
} nb_monitor;

/* Keras's EarlyStopping: stops after `patience` epochs in a row in which
 * the monitored value did not improve by more than min_delta on its best. */
typedef struct nb_early_stopping {
    nb_monitor monitor;  /* NONE: off */
    int patience;        /* 0: at the first epoch without improvement */
    double min_delta;    /* 0 */
    bool restore_best;   /* then put back the best epoch's weights (true) */
} nb_early_stopping;

/* Keras's ReduceLROnPlateau: after `patience` epochs without improvement
 * by more than min_delta, the rate is multiplied by factor, down to
 * min_lr, and the count starts again. */
typedef struct nb_plateau {
    nb_monitor monitor;  /* NONE: off */
    double factor;       /* 0.1 */
    int patience;        /* 10 */
    double min_delta;    /* 1e-4 */
    double min_lr;       /* 0 */
} nb_plateau;

/* What an example is trained towards: its class label (a classifier), or
 * its own input image, after the same normalisation and augmentation (an
 * autoencoder, with an mse loss; see "Targets" below). */
typedef enum nb_target {
    NB_TARGET_LABEL = 0,
    NB_TARGET_INPUT,
} nb_target;

typedef struct nb_train_opts {
    int epochs;               /* 5 */
    int batch_size;           /* 64 */
    double validation_split;  /* 0: the last fraction of the training set */
    uint64_t seed;            /* 0 */
    int nclasses;             /* 0: every class; else keep these labels */
    int32_t classes[NB_MAX_CLASSES]; /* and number them 0, 1, ... */
    /* Input normalisation per channel, (x - mean) / std; std[0] 0: none.
     * nmean and nstd say how many values the model file gave: one is
     * every channel's (and is copied to each). */
    double mean[NB_MAX_CHANNELS], std[NB_MAX_CHANNELS];
    int nmean, nstd;
    nb_augment augment;
    double clip_grad_norm;    /* 0: none */
    nb_schedule schedule;     /* learning rate by epoch */
    int step_size;            /* step: every step_size epochs (1) */
    double gamma;             /* step: times gamma (0.1) */
    double min_lr;            /* cosine: down to min_lr (0) */
    /* Linear warmup over the first warmup_epochs epochs or warmup_steps
     * steps (one of them; 0 none): step s (from 0) of it runs at
     * (s + 1) / n of the rate, over any schedule. */
    int warmup_epochs, warmup_steps;
    nb_early_stopping early_stopping;
    nb_plateau plateau;
    /* Marks each epoch whose value of this monitor is the best so far
     * (nb_epoch_metrics.best), for the caller to keep its weights. */
    nb_monitor keep_best;     /* NONE: no marks */
    nb_target target;         /* LABEL */
} nb_train_opts;

/* "label" or "input"; and back (-1 for another word). */
const char *nb_target_name(nb_target t);
int nb_target_from_name(const char *name);

/* "val_loss", "val_accuracy", "loss", "accuracy", "none"; and back (-1 for
 * another word). */
const char *nb_monitor_name(nb_monitor m);
int nb_monitor_from_name(const char *name);

/* Fills train and optim (either may be NULL) with what the model's sections
 * say over the defaults (optimizer: sgd, with PyTorch's defaults for the
 * type named).  The sections are read and checked when the model loads, so
 * a mistake in them fails nb_model_load with the field named, as
 *   models/x.json: training.epochs: must be an integer, got 2.5
 *   models/x.json: optimizer: unknown field "lrr" (did you mean "lr"?)
 * NB_ERR_ARG for a NULL model. */
int nb_model_train_opts(nb_ctx *ctx, const nb_model *m, nb_train_opts *train,
                        nb_optim_opts *optim);
/* The learning rate of an epoch (from 0) under train's schedule. */
double nb_schedule_lr(const nb_train_opts *train, double lr, int epoch);

/* ---- training -------------------------------------------------------------
 * A trainer runs the loop of Keras's fit for a model, a data set and an
 * optimizer: the split into training and validation examples, a seeded
 * shuffle per epoch, the steps (forward, loss, backward, gradient clipping,
 * update), validation after each epoch, the schedule's learning rate, and
 * checkpoints that resume to the same weights, bit for bit.  It never
 * prints and knows no terminal or file but its checkpoints: callbacks see
 * the progress after each batch and the metrics after each epoch, and a
 * failure is a status with the context's message, such as
 *   step 12 (epoch 1, batch 12): the loss is nan; the output of layer
 *   conv1 (conv2d) is the first to hold a non-finite value
 *
 * Labels.  With classes in the training section (t->classes), those labels
 * are the model's labels 0, 1, ... in order and other examples are left
 * out; without, every label of the data is the model's.  The loss must be
 * cross_entropy (the prediction is the largest output) or hinge (two
 * classes: the second is +1, the first -1, the prediction the sign of the
 * output).  Batches are made once, in the model's dtype (f32 or f64), so a
 * step allocates nothing once warm.
 *
 * Targets.  With t->target NB_TARGET_INPUT the target of each example is
 * its own input as the model is fed it (normalised and augmented: the
 * same values, not a copy drawn again), the loss must be mse, and the
 * model's output must have its input's shape or be its flattening (one
 * dimension of as many values).  Labels then play no part: every example
 * is used whatever its label ("classes" is refused), no accuracy is
 * counted (the accuracies of the metrics and results are NaN, the
 * confusion matrix is empty: num_labels is 0), and a callback watching
 * an accuracy is refused. */

typedef struct nb_trainer nb_trainer;

/* Where training stands; a checkpoint keeps it. */
typedef struct nb_train_progress {
    int epoch;        /* epochs finished */
    int64_t batch;    /* batches of the current epoch finished */
    int64_t batches;  /* batches in an epoch (the last may be short) */
    int64_t steps;    /* optimizer steps taken */
    double loss_sum;  /* sum over the epoch's batches so far of the mean
                         loss times the examples: loss_sum / seen is the
                         mean */
    int64_t correct;  /* the epoch's examples so far classified right */
    int64_t seen;     /* the epoch's examples so far */
    double seconds;   /* spent in the epoch so far */
} nb_train_progress;

/* One epoch's numbers; the val_ ones are NaN without validation examples. */
typedef struct nb_epoch_metrics {
    int epoch;                     /* 1 for the first */
    double loss, accuracy;         /* over its batches, as they were trained */
    double val_loss, val_accuracy; /* after it, in eval mode */
    double lr;                     /* the learning rate of its last step */
    double seconds;                /* its training and validation */
    /* What the callbacks did after it (from t's settings): */
    bool best;                     /* keep_best's value is the best so far */
    bool stopped;                  /* early stopping ended training here */
    int restored;                  /* and put back this epoch's weights (0 none) */
} nb_epoch_metrics;

/* nb_trainer_evaluate's result; loss and accuracy are NaN for 0 examples. */
typedef struct nb_eval_result {
    int64_t examples;
    double loss, accuracy;
} nb_eval_result;

/* nb_trainer_fit's result when a callback stopped it: not an error. */
enum { NB_TRAIN_STOPPED = 1 };

/* Called by nb_trainer_fit (either may be NULL), with ud: on_batch after
 * each step, with the progress counting that batch; on_epoch after each
 * epoch's validation, the progress then standing at the start of the next
 * epoch (a checkpoint written there resumes with it).  Both may call
 * nb_trainer_save and nb_trainer_evaluate.  Returning 0 goes on; anything
 * else stops the loop there: fit returns NB_TRAIN_STOPPED, or the value
 * itself when it is a negative status.  A stop after an epoch's last batch
 * leaves its validation to the next nb_trainer_fit (or the run resumed from
 * a checkpoint written then). */
typedef struct nb_trainer_callbacks {
    int (*on_batch)(nb_trainer *tr, const nb_train_progress *p, void *ud);
    int (*on_epoch)(nb_trainer *tr, const nb_epoch_metrics *e, void *ud);
    void *ud;
} nb_trainer_callbacks;

/* A trainer of m on `data` with the settings t and the optimizer o (both
 * copied; o's lr is the schedule's starting rate).  The examples of data
 * with a label the model takes are used in order, the first `limit` of
 * them when limit > 0; the last t->validation_split of those validate
 * (Keras's validation_split, taken before shuffling) and the rest train.
 * Seeds the model's dropout generator with t->seed + 1 and the shuffle
 * with t->seed + 2; the weights are used as they are (draw them with
 * nb_model_init, or load them).
 * With o NULL, a trainer that only evaluates: no optimizer, no split, and
 * data only counts the labels when t has no classes.
 * m and data are borrowed: m must outlive the trainer, data the last
 * nb_trainer_fit (nothing else reads it).  NULL on error: NB_ERR_ARG for
 * what it cannot train (another loss, more labels than the model has
 * outputs, hinge without two classes, images of another size than the
 * model's input, no training examples left), the message naming the model
 * or the data; a bad hyperparameter as nb_optim_new reports it;
 * NB_ERR_NOMEM, also before anything is made when training on batches of
 * t->batch_size would not fit the context's memory limit
 * (nb_model_check_memory). */
nb_trainer *nb_trainer_new(nb_ctx *ctx, nb_model *m, nb_dataset *data,
                           int64_t limit, const nb_train_opts *t,
                           const nb_optim_opts *o);
/* Frees the trainer, its optimizer and its buffers (not the model or the
 * data).  Accepts NULL. */
void nb_trainer_free(nb_trainer *tr);

/* Shares the trainer's batches with comm's processes (data parallelism;
 * comm is copied, NULL or one process: each batch whole here, the
 * default).  Collective: every process calls it, each with its trainer of
 * the same model, settings and data (a shuffle order drawn alike from the
 * seed).  Then each step and each evaluation batch of `batch_size`
 * examples is split by nb_batch_share (the ops are told through
 * nb_ctx_set_batch), each process feeding its share (or one example,
 * counting for nothing, when its share is empty); the loss and gradients
 * are the whole batch's on every process, so every process makes the same
 * update, and the counts of right answers (and confusion matrices) are
 * added in rank order.  The callbacks' answers are agreed after each call
 * (the first non-zero in rank order), so every process stops at the same
 * step; nb_trainer_resume has rank 0 read the checkpoint and send it to
 * the others.  Errors, the same on every process: NB_ERR_ARG naming the
 * rank and what differs from rank 0's (the model's digest, the data's
 * examples or digest, the kernels, a setting a checkpoint records other
 * than the thread count), or for more processes than a batch has groups
 * of NB_BATCH_GROUP examples; NB_ERR_IO when the exchange fails. */
int nb_trainer_set_comm(nb_trainer *tr, const nb_comm *comm);

/* Trains from the current progress to the end of epoch t->epochs.  Each
 * epoch sets the schedule's learning rate, draws its order of the training
 * examples from the shuffle generator, steps through its batches and then
 * validates, calling cb (NULL for none) as it goes.  Returns NB_OK when the
 * last epoch is done (at once if it was), NB_TRAIN_STOPPED (see the
 * callbacks), or an error: NB_ERR_ARG for a trainer without optimizer, and
 * for a loss or gradient that is not finite, the message naming the step
 * and the first layer whose output or gradient held a non-finite value; a
 * failed op's status, its message after the step's.  No update is made by
 * a failed step, so the weights are the last good step's.  Calling fit
 * again after a stop goes on where it stopped. */
int nb_trainer_fit(nb_trainer *tr, const nb_trainer_callbacks *cb);

/* The mean loss and accuracy over ds's examples with a label the model
 * takes (mapped as for training), the first `limit` of them when
 * limit > 0, in eval mode without gradients (the context's modes are put
 * back).  confusion, if not NULL, gets num_labels x num_labels counts
 * [true][predicted] of the labels below num_labels.  Errors: NB_ERR_ARG
 * for images of another size than the model's input, naming ds's origin;
 * a failed op's; NB_ERR_NOMEM. */
int nb_trainer_evaluate(nb_trainer *tr, const nb_dataset *ds, int64_t limit,
                        nb_eval_result *result, int64_t *confusion);
/* How many examples nb_trainer_evaluate(tr, ds, limit) would take, or -1
 * with NB_ERR_ARG when ds's images are not the model's input. */
int64_t nb_trainer_examples(const nb_trainer *tr, const nb_dataset *ds,
                            int64_t limit);

/* Writes a checkpoint: a safetensors file of the model's tensors and the
 * optimizer's state, with as its metadata (format "nabla-checkpoint-1")
 * the progress, the generators' states, the history, and every setting
 * that shapes the result: the training and optimizer settings, the limit,
 * the thread count and kernels, the data's examples (their count, a digest
 * of their labels and pixels, their origin) and nb_model_digest; written
 * atomically, as nb_safetensors_save.  Errors: NB_ERR_IO naming the file,
 * NB_ERR_ARG for a trainer that only evaluates, NB_ERR_NOMEM. */
int nb_trainer_save(nb_trainer *tr, const char *path);
/* Reads a checkpoint into the model, the optimizer, the progress and the
 * history, so that nb_trainer_fit ends with the weights of a run never
 * stopped.  Every value of the metadata is read strictly (the whole
 * string, its type, its range against this trainer) before any is used.
 * Nothing changes on error: the file's as nb_safetensors_open reports
 * them; NB_ERR_FORMAT for a file that is not a checkpoint, predates the
 * record of its settings, or holds a missing, malformed or inconsistent
 * value (named); NB_ERR_ARG for a checkpoint made with other settings,
 * thread count, data or model than this trainer's, the message naming the
 * setting and both values, as
 *   runs/x/checkpoint.safetensors: batch_size is 64 in the checkpoint but
 *   32 here; resume with the settings it was made with
 * Only t->epochs may differ, when it covers the epochs done and begun (and
 * the schedule is not cosine, whose rates depend on it); tensors that do
 * not match the model and optimizer, as nb_safetensors_read reports
 * them. */
int nb_trainer_resume(nb_trainer *tr, const char *path);

/* The progress, updated by fit and resume; valid while the trainer is. */
const nb_train_progress *nb_trainer_progress(const nb_trainer *tr);
/* The metrics of every epoch done, the first first: *n of them, the
 * progress's epoch (0 for a trainer that only evaluates), as Keras's
 * History.  A checkpoint keeps them, so after nb_trainer_resume they are
 * the whole run's.  Valid until the next fit or resume. */
const nb_epoch_metrics *nb_trainer_history(const nb_trainer *tr, int *n);
/* Training and validation examples, and the model's labels. */
int64_t nb_trainer_num_train(const nb_trainer *tr);
int64_t nb_trainer_num_val(const nb_trainer *tr);
int nb_trainer_num_labels(const nb_trainer *tr);
/* The trainer's optimizer (NULL when it only evaluates), owned by it. */
nb_optim *nb_trainer_optim(const nb_trainer *tr);

#ifdef __cplusplus
}
#endif

#endif /* NABLA_H */
