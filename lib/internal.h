/*
 * internal.h - what the library's modules share and users never see.
 * Symbols here carry the nbi_ prefix and are not exported from libnabla.
 */
#ifndef NABLA_INTERNAL_H
#define NABLA_INTERNAL_H

#include "nabla.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define NBI_ALIGN 64

#if defined(__GNUC__)
#define NBI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define NBI_PRINTF(f, a)
#endif

/* ---- message text (text.c) ----------------------------------------------
 * Each writes into buf (always terminated, cut to fit) and returns buf. */

/* nb_dims_str and nb_shape_str (public) print shapes. */
/* "3" for a pair of equal sizes, "[3, 5]" otherwise. */
char *nbi_pair_str(const int *v, char *buf, size_t size);
/* Input i of several: names[i] quoted, or "i" when names is NULL. */
char *nbi_input_str(const char *const *names, int i, char *buf, size_t size);
/* Writes a shape rule's reason into why (NBI_WHY_SIZE bytes) and returns
 * -1, for `return nbi_why(why, ...)`. */
int nbi_why(char *why, const char *fmt, ...) NBI_PRINTF(2, 3);
/* s in double quotes, on one line: quotes and backslashes escaped, control
 * characters as JSON writes them (\u000a), long strings cut with "..."
 * (never inside a UTF-8 sequence).  buf: at least 8 bytes. */
char *nbi_quote(const char *s, char *buf, size_t size);

/* ---- digests ------------------------------------------------------------
 * FNV-1a over n bytes, going on from h (NBI_HASH_INIT to begin): a cheap
 * 64-bit digest that tells apart inputs differing by accident (another
 * model, other data), not inputs made to collide. */
#define NBI_HASH_INIT UINT64_C(0xcbf29ce484222325)
static inline uint64_t nbi_hash(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * UINT64_C(0x100000001b3);
    return h;
}

/* ---- arena: a bump allocator rewound as a whole ------------------------ */

typedef struct nbi_chunk nbi_chunk;

typedef struct nbi_arena {
    nbi_chunk *head; /* the chunk being filled; older ones behind it */
    size_t used;     /* bytes handed out since the last rewind */
    size_t peak;     /* the most ever handed out between rewinds */
} nbi_arena;

/* 64-byte aligned, uninitialised; NULL (and NB_ERR_NOMEM set) on failure. */
void *nbi_arena_alloc(nb_ctx *ctx, nbi_arena *a, size_t size);
/* Forgets every allocation.  Several chunks are merged into one big enough
 * for the peak, so the next round of the same work allocates nothing. */
void nbi_arena_rewind(nb_ctx *ctx, nbi_arena *a);
void nbi_arena_free(nb_ctx *ctx, nbi_arena *a);
size_t nbi_arena_capacity(const nbi_arena *a);

/* ---- the context ------------------------------------------------------- */

typedef struct nbi_node nbi_node;

struct nb_ctx {
    nb_allocator alloc;
    uint64_t nalloc;          /* calls to alloc.alloc */
    int status;
    char msg[512];
    bool grad_enabled;
    bool training;
    nbi_arena step;           /* step tensors, their gradients, the tape */
    void *work;               /* nbi_work's buffer, and its size */
    size_t work_size;
    nbi_node *tape;           /* the newest node; each links to the one before */
    int nnodes;
    nb_tensor persistent;     /* sentinel of the persistent tensors' list */
    uint64_t mem_limit;       /* nb_ctx_set_memory_limit's; 0: the machine's */
    uint64_t persistent_bytes; /* data of the persistent tensors (tensor.c) */
    int64_t batch_total;      /* nb_ctx_set_batch's; 0: each batch whole here */
    nb_comm comm;             /* its comm, when batch_total > 0 */
};

/* Allocation through the context's hook, counted; NB_ERR_NOMEM on failure.
 * nbi_alloc_aligned returns 64-byte aligned memory freed by
 * nbi_free_aligned. */
void *nbi_alloc(nb_ctx *ctx, size_t size);
void nbi_free(nb_ctx *ctx, void *p);
void *nbi_alloc_aligned(nb_ctx *ctx, size_t size);
void nbi_free_aligned(nb_ctx *ctx, void *p);

/* Records an error and returns `code`, for `return nbi_fail(...)`. */
int nbi_fail(nb_ctx *ctx, int code, const char *fmt, ...) NBI_PRINTF(3, 4);
/* Same, returning NULL, for op builders. */
void *nbi_fail_null(nb_ctx *ctx, int code, const char *fmt, ...)
    NBI_PRINTF(3, 4);

/* ---- tensors ----------------------------------------------------------- */

enum {
    NBI_PERSISTENT = 1u << 0, /* on the context's list, freed by nb_tensor_free */
    NBI_BORROWED = 1u << 1,   /* data is not ours (a wrap, or a view) */
};

/* Checks a shape (0 <= ndim <= NB_MAX_DIMS, sizes >= 1, no overflow) and
 * returns its element count, or -1 after setting an error naming `op`. */
int64_t nbi_shape_numel(nb_ctx *ctx, const char *op, int ndim,
                        const int64_t *shape);

/* A step tensor (uninitialised data in the step arena), or NULL. */
nb_tensor *nbi_step_tensor(nb_ctx *ctx, nb_dtype dtype, int ndim,
                           const int64_t *shape);
/* A step tensor sharing x's data under a new shape of the same numel. */
nb_tensor *nbi_step_view(nb_ctx *ctx, nb_tensor *x, int ndim,
                         const int64_t *shape);

/* Scratch memory in the step arena, alive until nb_graph_reset. */
void *nbi_scratch(nb_ctx *ctx, size_t size);
/* Scratch for the duration of one kernel call: every call returns the same
 * buffer, grown when too small, its contents undefined.  Ops run one at a
 * time, so they can share it instead of each keeping its own for the step. */
void *nbi_work(nb_ctx *ctx, size_t size);

/* ---- the tape -----------------------------------------------------------
 * An op's node embeds nbi_node as its first member, so an op keeps its own
 * saved state in a typed struct:
 *     struct pool_node { nbi_node base; int kh, kw; int32_t *argmax; };
 */

typedef struct nbi_op nbi_op;

struct nbi_node {
    const nbi_op *op;  /* what made the node: its name and backward */
    int nin;
    nb_tensor **in;    /* the inputs, as given to the op */
    nb_tensor *out;
    nbi_node *prev;
};

/* An op: its name, and its backward, which adds the node's contribution to
 * the gradient of each input (nbi_grad) from node->out->grad.  Returns
 * NB_OK or an error status. */
struct nbi_op {
    const char *name;
    int (*backward)(nb_ctx *ctx, nbi_node *node);
};

/* The registry: one NBI_OP line per op in ops.def makes the extern
 * `nbi_op_<name>` its op file defines, NBI_OP_<name> and the nbi_ops table
 * entry (lib/ops/registry.c).  The tape needs none of them: each node
 * carries its op.  The table is for names, tests and tools. */
#define NBI_OP(name) NBI_OP_##name,
enum nbi_op_id {
#include "ops/ops.def"
    NBI_OP_COUNT
};
#undef NBI_OP

#define NBI_OP(name) extern const nbi_op nbi_op_##name;
#include "ops/ops.def"
#undef NBI_OP

extern const nbi_op *const nbi_ops[NBI_OP_COUNT];

/* True when an op with these inputs must be recorded: grad mode is on and
 * some input requires a gradient. */
bool nbi_needs_grad(const nb_ctx *ctx, int nin, nb_tensor *const *in);

/* Records a node of `size` bytes (>= sizeof(nbi_node)) for op producing
 * out from in[nin]; marks out as requiring a gradient.  NULL on failure. */
void *nbi_record(nb_ctx *ctx, const nbi_op *op, size_t size, nb_tensor *out, int nin,
                 nb_tensor *const *in);

/* The gradient buffer of t, zeroed on first use, or NULL when t needs no
 * gradient (or allocation failed: the context then holds NB_ERR_NOMEM). */
void *nbi_grad(nb_ctx *ctx, nb_tensor *t);
/* The same for a backward that will store to every element: a new buffer
 * is not zeroed but flagged by *fresh, and the op then stores instead of
 * adding (which saves a pass over memory).  Gradients of persistent
 * tensors accumulate across backward calls and are never fresh. */
void *nbi_grad_fresh(nb_ctx *ctx, nb_tensor *t, bool *fresh);

/* ---- argument checks for op builders -----------------------------------
 * Each returns false after setting a message that starts with the op. */

/* All n inputs non-NULL (a NULL keeps the earlier error) and of one dtype. */
bool nbi_check_inputs(nb_ctx *ctx, const char *op, int n,
                      nb_tensor *const *in);

/* ---- shape rules the ops export ----------------------------------------
 * Each op family's shape rule on plain dimensions, beside its builder in
 * the op's file: the builder calls it on its tensors' shapes, and a model
 * file's layer (lib/nn/layers.c) calls it on one example's shapes before
 * anything runs, so a rule, its limits and its message exist once.  A rule
 * checks sizes against sizes and computes the output's; the op's dtypes,
 * NULL inputs and memory are the builder's.
 *
 * `batch` says which kind of shape x is: an op's tensor, batch first
 * ([N, C, H, W]), or one example of a layer, batch excluded ([C, H, W]).
 * A rule reads the sizes past the batch, gives y in x's kind, and prints
 * shapes whole, so each caller reads its own.  Weights have no batch.
 *
 * Each returns 0, or -1 after writing the reason (one line,
 * NBI_WHY_SIZE bytes) into why, worded to follow either prefix: the op's
 * "conv2d: " or a model file's "layers[3] (conv2d \"c\"): ".  Settings
 * are named as PyTorch names the op's arguments (kernel_size, stride,
 * padding, in_channels, in_features, num_features), which are also the
 * model file's fields. */

#define NBI_WHY_SIZE 256

/* A shape: one example's (batch excluded), or a tensor's. */
typedef struct nbi_shape {
    int ndim;
    int64_t d[NB_MAX_DIMS];
} nbi_shape;

static inline nbi_shape nbi_shape_of(const nb_tensor *t)
{
    nbi_shape s = {t->ndim, {0}};
    memcpy(s.d, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    return s;
}

/* Writes the shape as "[1, 28, 28]" (nb_dims_str). */
static inline char *nbi_shape_fmt(const nbi_shape *s, char *buf, size_t size)
{
    return nb_dims_str(s->ndim, s->d, buf, size);
}

/* a * b for sizes >= 0, saturating at 2^62 so that chains of products
 * can be compared with a limit afterwards. */
static inline int64_t nbi_mul(int64_t a, int64_t b)
{
    const int64_t sat = (int64_t)1 << 62;
    return a != 0 && b > sat / a ? sat : a * b;
}

/* a and b are equal, but maybe in dimension skip (-1: none). */
static inline bool nbi_shape_eq(const nbi_shape *a, const nbi_shape *b, int skip)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (i != skip && a->d[i] != b->d[i])
            return false;
    return true;
}

/* conv2d (sd 2): x [N, C, H, W], w [O, C, kh, kw] -> y [N, O, oh, ow],
 * oh = (H + pt + pb - kh) / sh + 1; conv1d (sd 1): x [N, C, L], w [O, C, k]
 * -> y [N, O, ol], as conv2d with H = kh = 1 (opts use index 0).  b: [O],
 * or NULL; opts NULL: the defaults.  Refuses what would overflow the GEMM's
 * int sizes.  g (NULL when not wanted) gets the whole geometry. */
struct nbi_conv_geom;
int nbi_conv_shape(int sd, const nbi_shape *x, bool batch, const nbi_shape *w,
                   const nbi_shape *b, const nb_conv_opts *opts, struct nbi_conv_geom *g,
                   nbi_shape *y, char *why);
/* The options alone, which a model file's layer checks as it reads them. */
int nbi_conv_opts_check(int sd, const nb_conv_opts *opts, char *why);
/* Elements of the im2col columns a recording conv keeps for its weight's
 * gradient, for weight w [O, C, kh, kw] or [O, C, k] and oh ow (or ol)
 * output pixels: 0 when it builds them again in backward. */
int64_t nbi_conv_kept_elems(const nbi_shape *w, const nb_conv_opts *opts, int64_t pixels);

/* conv_transpose2d: x [N, C, H, W], w [C, O / groups, kh, kw], b [O] or NULL
 * -> y [N, O, oh, ow], oh = (H - 1) sh - 2 ph + dh (kh - 1) + output_padding_h + 1.
 * Refuses what would overflow the GEMM's int sizes.  g as for conv. */
struct nbi_convt_geom;
int nbi_conv_transpose2d_shape(const nbi_shape *x, bool batch, const nbi_shape *w,
                               const nbi_shape *b, const nb_conv_transpose_opts *opts,
                               struct nbi_convt_geom *g, nbi_shape *y, char *why);
/* The options alone, with out_channels (0: not known; a layer's, which must
 * be a multiple of groups), as a model file's layer checks them. */
int nbi_conv_transpose2d_opts_check(const nb_conv_transpose_opts *opts, int64_t out_channels,
                                    char *why);

/* max_pool2d, avg_pool2d (op says which): x [N, C, H, W] -> y [N, C, oh, ow],
 * oh = (H + 2 ph - kh) / sh + 1.  max_pool2d refuses planes over 2^31 - 1
 * elements: its argmax is an int32.  g as for conv. */
struct nbi_pool_geom;
int nbi_pool2d_shape(const nbi_op *op, const nbi_shape *x, bool batch, const nb_pool_opts *opts,
                     struct nbi_pool_geom *g, nbi_shape *y, char *why);
int nbi_pool2d_opts_check(const nb_pool_opts *opts, char *why);
/* global_avg_pool2d: x [N, C, H, W] -> y [N, C]. */
int nbi_global_avg_pool2d_shape(const nbi_shape *x, bool batch, nbi_shape *y, char *why);

/* upsample: x [N, C, H, W] -> y [N, C, oh, ow], oh the size given or
 * floor(H * scale_factor); refuses sides over 2^31 - 1.  g as for conv.
 * The options alone (mode, align_corners, one of size and scale_factor):
 * nbi_upsample_opts_check. */
struct nbi_upsample_geom;
int nbi_upsample_shape(const nbi_shape *x, bool batch, const nb_upsample_opts *opts,
                       struct nbi_upsample_geom *g, nbi_shape *y, char *why);
int nbi_upsample_opts_check(const nb_upsample_opts *opts, char *why);

/* linear: x [N, in], w [out, in], b [out] or NULL -> y [N, out]; refuses
 * sizes over BLAS's int. */
int nbi_linear_shape(const nbi_shape *x, bool batch, const nbi_shape *w, const nbi_shape *b,
                     nbi_shape *y, char *why);

/* batch_norm: x [N, C], [N, C, L] or [N, C, H, W] -> y of x's shape.
 * num_features (0: none) and each per-channel tensor of chan (weight,
 * bias, running_mean, running_var; chan or any entry NULL: not given)
 * must agree with C. */
int nbi_batch_norm_shape(const nbi_shape *x, bool batch, int64_t num_features,
                         const nbi_shape *const *chan, nbi_shape *y, char *why);

/* layer_norm over the last ndims dimensions of x [N, ...] (one example:
 * [...], which may be those dimensions alone) -> y of x's shape.
 * normalized (NULL: not given, as from nb_layer_norm), w and b (each NULL
 * when not given) must be those dimensions. */
int nbi_layer_norm_shape(const nbi_shape *x, bool batch, int ndims, const nbi_shape *normalized,
                         const nbi_shape *w, const nbi_shape *b, nbi_shape *y, char *why);
/* group_norm: x [N, C, *] -> y of x's shape; num_groups must divide C,
 * num_channels (0: none) equal it, w and b (NULL: not given) be [C]. */
int nbi_group_norm_shape(const nbi_shape *x, bool batch, int64_t num_groups,
                         int64_t num_channels, const nbi_shape *w, const nbi_shape *b,
                         nbi_shape *y, char *why);

/* flatten: x [N, ...] -> y [N, prod(...)]. */
int nbi_flatten_shape(const nbi_shape *x, bool batch, nbi_shape *y, char *why);
/* concat of n shapes along dim (negative counts from the end; *d, unless
 * NULL, gets it resolved): equal outside dim, summed in it.  Messages name
 * input i by names[i], or by i when names is NULL. */
int nbi_concat_shape(int n, const nbi_shape *xs, const char *const *names, int dim,
                     nbi_shape *y, int *d, char *why);

/* add of n shapes with no broadcasting: each the shape of the first.  What
 * a model file's add layer demands; nb_add itself broadcasts (arith.c says
 * why the two differ).  names as for concat. */
int nbi_add_equal_shape(int n, const nbi_shape *xs, const char *const *names, nbi_shape *y,
                        char *why);

/* softmax, log_softmax along dim, negative counting from the end; *d
 * (unless NULL) gets it resolved.  With a batch, any dim of x (a scalar
 * counts as one dimension); for one example, dim still counts the
 * dimensions of [N, ...] but may not be the batch's, which would mix the
 * examples. */
int nbi_softmax_dim(const nbi_shape *x, bool batch, int dim, int *d, char *why);

/* dropout2d: x [N, C, ...], at least 3-D: each [n, c] is one channel. */
int nbi_dropout2d_shape(const nbi_shape *x, bool batch, char *why);

/* ---- dtype dispatch -----------------------------------------------------
 * Kernels are written once with T for the element type and compiled for
 * float and double (see docs/adding-an-op.md): a file defines its kernels
 * inside `#ifdef T ... #endif`, then includes itself twice:
 *     #define T float
 *     #define K(f) f##_f32
 *     #include "thisfile.c"
 * NBI_CALL picks the instance matching a dtype. */
#define NBI_CALL(dtype, fn, ...)                                              \
    ((dtype) == NB_F32 ? fn##_f32(__VA_ARGS__) : fn##_f64(__VA_ARGS__))

/* ---- threads (cpu.c) ---------------------------------------------------
 * The count nb_set_num_threads set (1 until then).  Kernels split their
 * outer loop with
 *     #pragma omp parallel for num_threads(nbi_threads()) if (big enough)
 * and any GEMM inside such a region runs on its own thread. */
int nbi_threads(void);
/* Work of fewer elements than this stays on one thread: starting a
 * parallel region costs microseconds. */
#define NBI_PAR_MIN 32768
/* True when work over `elems` elements is worth splitting over threads. */
static inline bool nbi_par(int64_t elems)
{
    return nbi_threads() > 1 && elems >= NBI_PAR_MIN;
}
/* The sum of range(arg, lo, hi) over fixed blocks of [0, n): the blocks
 * are spread over threads and then added in order, so any number of
 * threads gives the same bits. */
double nbi_blocked_sum(int64_t n, double (*range)(const void *arg, int64_t lo, int64_t hi),
                       const void *arg);
/* ---- sums over a batch (batch.c) ---------------------------------------
 * An op that sums over the n examples of its input computes one partial sum
 * per group of NB_BATCH_GROUP consecutive examples (the last group may be
 * shorter), each in the same order whatever the thread count, into
 * part[ceil(n / NB_BATCH_GROUP)][len] of the given dtype, then calls
 * nbi_batch_sum for the batch's sum in out[len] (out may be part).  With a
 * comm it exchanges the groups' sums with the other processes; part is
 * overwritten.  Errors name op (n not this process's share, a failed
 * exchange). */
int nbi_batch_sum(nb_ctx *ctx, const char *op, nb_dtype dtype, int64_t n, void *part, size_t len,
                  void *out);
/* The batch's example count, for means: nb_ctx_set_batch's total, or n. */
int64_t nbi_batch_total(const nb_ctx *ctx, int64_t n);
/* The index in the whole batch of this process's first example. */
int64_t nbi_batch_first(const nb_ctx *ctx);
/* True when this process holds each batch whole (no comm): then the sum
 * nbi_batch_sum gives is the tree alone, which an op may run itself on
 * parts of its partial sums as it makes them (nbi_batch_tree: the same
 * bits, while they are in cache; thread-safe, on the calling thread). */
bool nbi_batch_local(const nb_ctx *ctx);
void nbi_batch_tree(nb_dtype dtype, void *part, int64_t groups, size_t len);
/* Groups in a batch of n examples. */
static inline int64_t nbi_batch_groups(int64_t n)
{
    return (n + NB_BATCH_GROUP - 1) / NB_BATCH_GROUP;
}

/* Eight running sums of a vectorised reduction, added in a fixed order. */
#define NBI_LANES_SUM(acc)                                                    \
    (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])))
/* True inside an OpenMP region (and always when built without OpenMP). */
bool nbi_in_parallel(void);
/* Keeps OpenBLAS's own threads off, reads the CPU's features and, once,
 * NABLA_CPU; nb_ctx_new calls it.  Returns NB_ERR_ARG, with why, when
 * NABLA_CPU names kernels this CPU cannot run (or none). */
int nbi_cpu_init(char *why, size_t size);

/* ---- CPU features (cpu.c) -------------------------------------------------
 * A hot loop written with GCC's vector extensions is compiled for each
 * variant: the x86-64 baseline, NBI_AVX2 (AVX2 with FMA) and NBI_AVX512
 * (AVX-512 F, BW, VL, DQ), and nbi_cpu_level() picks at run time: the
 * widest the CPU has, or lower when NABLA_CPU or nbi_cpu_use asks.  The
 * AVX2 and AVX-512 variants of a kernel give the same bits: each element
 * is the same chain of fused multiply-adds, whatever the vector width. */
typedef enum nbi_cpu { NBI_CPU_BASELINE, NBI_CPU_AVX2, NBI_CPU_AVX512 } nbi_cpu;
#if defined(__GNUC__) && defined(__x86_64__)
#define NBI_AVX2 __attribute__((target("avx2,fma")))
#define NBI_AVX512 __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512dq")))
#else
#define NBI_AVX2
#define NBI_AVX512
#endif
#if defined(__GNUC__)
#define NBI_INLINE static inline __attribute__((always_inline))
#endif
nbi_cpu nbi_cpu_level(void);
nbi_cpu nbi_cpu_best(void);
const char *nbi_cpu_name(nbi_cpu c);
/* At least AVX2 (and FMA); at least AVX-512 in use. */
bool nbi_avx2(void);
bool nbi_avx512(void);
/* fn's variant for the kernels in use, of a kernel compiled three times as
 * fn##_base, fn##_avx2 (NBI_AVX2) and fn##_avx512 (NBI_AVX512). */
#define NBI_CPU_PICK(fn) (nbi_avx512() ? fn##_avx512 : nbi_avx2() ? fn##_avx2 : fn##_base)
/* Runs the kernels of c from now on, so tests reach each variant; returns
 * the previous variant, or -1 (changing nothing) when the CPU lacks c. */
int nbi_cpu_use(nbi_cpu c);

/* ---- sliding windows ------------------------------------------------------
 * Outputs o in [0, count) read the window [o s - p, o s - p + k) of an axis
 * of n elements.  [*lo, *hi) are those whose window lies wholly inside
 * [0, n), so their loops need no bounds checks (empty ranges possible). */
static inline void nbi_inside_range(int64_t n, int64_t k, int64_t s, int64_t p, int64_t count,
                                    int64_t *lo, int64_t *hi)
{
    int64_t a = p <= 0 ? 0 : (p + s - 1) / s, b = n - k + p < 0 ? 0 : (n - k + p) / s + 1;
    *lo = a < count ? a : count;
    *hi = b < count ? b : count;
    if (*hi < *lo)
        *hi = *lo;
}

/* ---- memory limits (memory.c) ------------------------------------------
 * What a file or a model declares is checked against the context's limit
 * before it is allocated, so that a size read from a file never decides
 * alone how much memory the library asks for. */

/* True when `bytes` fit under the context's limit. */
bool nbi_mem_fits(const nb_ctx *ctx, uint64_t bytes);
/* Fails with NB_ERR_NOMEM: "<what> needs <bytes>, more than <the limit>",
 * the limit named as "the memory limit of 1.0 GiB" or "this machine's
 * memory (23.5 GiB)"; <what> is fmt's.  Returns NB_ERR_NOMEM. */
int nbi_mem_refuse(nb_ctx *ctx, uint64_t bytes, const char *fmt, ...) NBI_PRINTF(3, 4);
/* "512 B", "3.1 KiB", "23.5 GiB" into buf (at least 16 bytes); returns buf. */
char *nbi_bytes_str(uint64_t bytes, char *buf, size_t size);
/* Bytes of the data of the context's persistent tensors (views excluded). */
uint64_t nbi_persistent_bytes(const nb_ctx *ctx);

/* ---- whole files (io/file.c) ---------------------------------------------
 * Messages name the path: "<path>: cannot open: <why>". */

enum { NBI_FILE_REGULAR = 1u << 0 }; /* refuse pipes, devices, directories */

/* Reads the whole file into *data (from the context's allocator, *len
 * bytes), or fails with NB_ERR_FORMAT when it holds more than max bytes.
 * A regular file is read in one buffer of its size, checked against max
 * and the context's memory limit before it is allocated (and a file that
 * grows while it is read is an error); anything else (a pipe, unless
 * NBI_FILE_REGULAR refuses it before opening) in growing pieces up to
 * max. */
int nbi_file_read(nb_ctx *ctx, const char *path, size_t max, unsigned flags, char **data,
                  size_t *len);
/* "a/b", allocated from the context; NULL when out of memory. */
char *nbi_path_join(nb_ctx *ctx, const char *a, const char *b);

/* Writing a file atomically: write to a->f, then commit (err: an errno the
 * writer met, or 0), which flushes it to disk and renames it into place,
 * or abort.  Either way the temporary is gone afterwards. */
typedef struct nbi_atomic {
    FILE *f;
    char *tmp;        /* "<path>.tmp.<pid>.<n>", opened O_EXCL */
    const char *path;
} nbi_atomic;

int nbi_atomic_open(nb_ctx *ctx, nbi_atomic *a, const char *path);
int nbi_atomic_commit(nb_ctx *ctx, nbi_atomic *a, int err);
void nbi_atomic_abort(nb_ctx *ctx, nbi_atomic *a);

/* ---- initializers (nn/init.c) ------------------------------------------- */

/* trunc_normal redraws until inside [a, b]: refused below this mass. */
#define NBI_TRUNC_NORMAL_MIN_MASS 0.01
/* The probability normal(mean, std) gives [a, b] (1 when std is 0). */
double nbi_trunc_normal_mass(double mean, double std, double a, double b);

/* ---- optimizers (nn/optim.c) --------------------------------------------- */

/* "sgd", "adam", "adamw", "rmsprop" by nb_optim_kind, ended by NULL. */
extern const char *const nbi_optim_kind_names[];

/* Tests: conv2d's forward sums taps directly up to this many (C kh kw),
 * for stride 1 and kernels up to 5x5, whatever the CPU (-1: its own
 * choice); returns the previous bound.  Both ways give the same bits. */
int64_t nbi_conv_direct_taps(int64_t bound);

/* ---- fixed-order GEMM (gemm.c) -------------------------------------------
 * C = A B (+ a bias per row or per column), or C += A B, on the calling
 * thread, each element of C one chain over the depth in order, from its
 * bias (or 0) on: its bits
 * depend on neither the call's shape nor the threads, and the AVX2 and
 * AVX-512 variants agree.  With add and chunk, the depth is cut in chunks
 * of that many, each its own chain, and their sum is nbi_batch_sum's tree
 * (at most NBI_GEMM_CHUNKS chunks): a batch's sum over its groups of
 * examples, in registers.  Element (i, j) of a matrix X is at x[i xrs + j xcs]; pack
 * holds nbi_gemm_pack_elems(dtype, k) elements. */
#define NBI_GEMM_CHUNKS 64
typedef struct nbi_gemm_args {
    int64_t m, n, k;
    const void *a;
    int64_t ars, acs;                /* A [m, k] */
    const void *b;
    int64_t brs, bcs;                /* B [k, n] */
    void *c;
    int64_t crs, ccs;                /* C [m, n] */
    const void *row_bias, *col_bias; /* each chain from bias[i] or bias[j] (or NULL) */
    bool add;                        /* C += A B instead (biases ignored) */
    int64_t chunk;                   /* 0: one chain over the depth */
    void *pack;
} nbi_gemm_args;
size_t nbi_gemm_pack_elems(nb_dtype dtype, int64_t k);
void nbi_gemm_fixed(nb_dtype dtype, const nbi_gemm_args *g);
/* The same on nt threads (one inside a parallel region), each over its
 * share of C's columns (by_cols) or rows, with the pack of nt of them. */
void nbi_gemm_fixed_par(nb_dtype dtype, const nbi_gemm_args *g, bool by_cols, int nt);

/* ---- BLAS (blas.c) --------------------------------------------------------
 * C = alpha op(A) op(B) + beta C, row-major, on float or double buffers:
 * OpenBLAS's GEMM, or plain loops when its buffer would not fit in the
 * address space.  OpenBLAS's bits for an element of C depend on the shape
 * of the call (its kernels take the edges of C their own way): the ops
 * over a batch, whose bits must not depend on its split, use the
 * fixed-order GEMM instead (gemm.c); nb_matmul uses this one. */
void nbi_gemm(nb_dtype dtype, bool trans_a, bool trans_b, int m, int n, int k,
              double alpha, const void *a, int lda, const void *b, int ldb,
              double beta, void *c, int ldc);
/* With true, nbi_gemm takes the plain loops always, so tests reach them;
 * returns the previous setting. */
bool nbi_blas_avoid(bool avoid);

#endif /* NABLA_INTERNAL_H */
