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
/* s in double quotes, on one line: quotes and backslashes escaped, control
 * characters as JSON writes them (\u000a), long strings cut with "..."
 * (never inside a UTF-8 sequence).  buf: at least 8 bytes. */
char *nbi_quote(const char *s, char *buf, size_t size);

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
/* Eight running sums of a vectorised reduction, added in a fixed order. */
#define NBI_LANES_SUM(acc)                                                    \
    (((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7])))
/* True inside an OpenMP region (and always when built without OpenMP). */
bool nbi_in_parallel(void);
/* Keeps OpenBLAS's own threads off and reads the CPU's features;
 * nb_ctx_new calls it. */
void nbi_cpu_init(void);

/* ---- CPU features (cpu.c) -------------------------------------------------
 * A hot loop written with GCC's vector extensions is compiled twice: for
 * the x86-64 baseline, and marked NBI_AVX2 for AVX2 with FMA; nbi_avx2()
 * picks at run time.  Not AVX-512: valgrind cannot run it. */
#if defined(__GNUC__) && defined(__x86_64__)
#define NBI_AVX2 __attribute__((target("avx2,fma")))
#else
#define NBI_AVX2
#endif
#if defined(__GNUC__)
#define NBI_INLINE static inline __attribute__((always_inline))
#endif
bool nbi_avx2(void);
/* With true, nbi_avx2() says no, so tests reach the baseline code too;
 * returns the previous setting. */
bool nbi_avoid_avx2(bool avoid);

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

/* ---- whole files (io/file.c) ---------------------------------------------
 * Messages name the path: "<path>: cannot open: <why>". */

enum { NBI_FILE_REGULAR = 1u << 0 }; /* refuse pipes, devices, directories */

/* Reads the whole file into *data (from the context's allocator, *len
 * bytes), or fails with NB_ERR_FORMAT when it holds more than max bytes. */
int nbi_file_read(nb_ctx *ctx, const char *path, size_t max, unsigned flags, char **data,
                  size_t *len);

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

/* ---- optimizers (nn/optim.c) --------------------------------------------- */

/* "sgd", "adam", "adamw", "rmsprop" by nb_optim_kind, ended by NULL. */
extern const char *const nbi_optim_kind_names[];

/* ---- BLAS (blas.c) --------------------------------------------------------
 * C = alpha op(A) op(B) + beta C, row-major, on float or double buffers. */
void nbi_gemm(nb_dtype dtype, bool trans_a, bool trans_b, int m, int n, int k,
              double alpha, const void *a, int lda, const void *b, int ldb,
              double beta, void *c, int ldc);

#endif /* NABLA_INTERNAL_H */
