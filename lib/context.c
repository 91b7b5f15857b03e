/*
 * context.c - the context: allocation through the user's hook, the step
 * arena, errors and modes.  Knows cpu.c and nothing else of the library:
 * not tensors (it frees their blocks without calling tensor.c), not ops.
 */
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>

static void *default_alloc(void *ud, size_t size)
{
    (void)ud;
    return malloc(size);
}

static void default_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

const char *nb_status_str(int status)
{
    switch (status) {
    case NB_OK: return "ok";
    case NB_ERR_ARG: return "bad argument";
    case NB_ERR_NOMEM: return "out of memory";
    case NB_ERR_GRAPH: return "graph error";
    case NB_ERR_IO: return "i/o error";
    case NB_ERR_FORMAT: return "bad format";
    default: return "unknown error";
    }
}

/* ---- allocation -------------------------------------------------------- */

void *nbi_alloc(nb_ctx *ctx, size_t size)
{
    void *p = ctx->alloc.alloc(ctx->alloc.ud, size ? size : 1);
    ctx->nalloc++;
    if (!p)
        nbi_fail(ctx, NB_ERR_NOMEM, "out of memory allocating %zu bytes", size);
    return p;
}

void nbi_free(nb_ctx *ctx, void *p)
{
    if (p)
        ctx->alloc.free(ctx->alloc.ud, p);
}

/* The hook promises no alignment, so over-allocate and keep the raw pointer
 * just below the aligned block. */
void *nbi_alloc_aligned(nb_ctx *ctx, size_t size)
{
    if (size > SIZE_MAX - NBI_ALIGN - sizeof(void *))
        return nbi_fail_null(ctx, NB_ERR_NOMEM, "allocation of %zu bytes is too large", size);
    char *raw = nbi_alloc(ctx, size + NBI_ALIGN + sizeof(void *));
    if (!raw)
        return NULL;
    uintptr_t p = ((uintptr_t)raw + sizeof(void *) + NBI_ALIGN - 1) & ~(uintptr_t)(NBI_ALIGN - 1);
    ((void **)p)[-1] = raw;
    return (void *)p;
}

void nbi_free_aligned(nb_ctx *ctx, void *p)
{
    if (p)
        nbi_free(ctx, ((void **)p)[-1]);
}

/* ---- arena ------------------------------------------------------------- */

struct nbi_chunk {
    nbi_chunk *next; /* the older chunk */
    size_t size, used;
    char *base;      /* NBI_ALIGN-aligned start of the payload */
};

#define NBI_CHUNK_MIN ((size_t)1 << 20)

static size_t round_up(size_t n)
{
    return (n + NBI_ALIGN - 1) & ~(size_t)(NBI_ALIGN - 1);
}

static nbi_chunk *chunk_new(nb_ctx *ctx, size_t size)
{
    if (size > SIZE_MAX / 2)
        return nbi_fail_null(ctx, NB_ERR_NOMEM, "arena chunk of %zu bytes is too large", size);
    nbi_chunk *c = nbi_alloc(ctx, sizeof *c);
    if (!c)
        return NULL;
    c->base = nbi_alloc_aligned(ctx, size);
    if (!c->base) {
        nbi_free(ctx, c);
        return NULL;
    }
    c->size = size;
    c->used = 0;
    c->next = NULL;
    return c;
}

static void chunk_free(nb_ctx *ctx, nbi_chunk *c)
{
    nbi_free_aligned(ctx, c->base);
    nbi_free(ctx, c);
}

void *nbi_arena_alloc(nb_ctx *ctx, nbi_arena *a, size_t size)
{
    if (size > SIZE_MAX / 4)
        return nbi_fail_null(ctx, NB_ERR_NOMEM, "allocation of %zu bytes is too large", size);
    size = round_up(size ? size : 1);
    nbi_chunk *c = a->head;
    if (!c || c->size - c->used < size) {
        size_t want = c ? c->size * 2 : NBI_CHUNK_MIN;
        if (want < size)
            want = size;
        nbi_chunk *n = chunk_new(ctx, want);
        if (!n)
            return NULL;
        n->next = c;
        a->head = c = n;
    }
    void *p = c->base + c->used;
    c->used += size;
    a->used += size;
    if (a->used > a->peak)
        a->peak = a->used;
    return p;
}

void nbi_arena_rewind(nb_ctx *ctx, nbi_arena *a)
{
    nbi_chunk *c = a->head;
    if (c && c->next) {
        /* Several chunks: replace them with one that holds the peak.  If
         * that allocation fails, keep the chunks we have. */
        int status = ctx->status;
        char msg[sizeof ctx->msg];
        memcpy(msg, ctx->msg, sizeof msg);
        nbi_chunk *big = chunk_new(ctx, round_up(a->peak));
        if (big) {
            while (c) {
                nbi_chunk *next = c->next;
                chunk_free(ctx, c);
                c = next;
            }
            a->head = big;
        } else { /* not an error: the old chunks still work */
            ctx->status = status;
            memcpy(ctx->msg, msg, sizeof msg);
        }
    }
    for (c = a->head; c; c = c->next)
        c->used = 0;
    a->used = 0;
}

void nbi_arena_free(nb_ctx *ctx, nbi_arena *a)
{
    nbi_chunk *c = a->head;
    while (c) {
        nbi_chunk *next = c->next;
        chunk_free(ctx, c);
        c = next;
    }
    memset(a, 0, sizeof *a);
}

size_t nbi_arena_capacity(const nbi_arena *a)
{
    size_t n = 0;
    for (const nbi_chunk *c = a->head; c; c = c->next)
        n += c->size;
    return n;
}

void *nbi_scratch(nb_ctx *ctx, size_t size)
{
    return nbi_arena_alloc(ctx, &ctx->step, size);
}

void *nbi_work(nb_ctx *ctx, size_t size)
{
    if (size > ctx->work_size) {
        void *p = nbi_alloc_aligned(ctx, size);
        if (!p)
            return NULL;
        nbi_free_aligned(ctx, ctx->work);
        ctx->work = p;
        ctx->work_size = size;
    }
    return ctx->work;
}

/* ---- the context ------------------------------------------------------- */

nb_ctx *nb_ctx_new(void)
{
    return nb_ctx_new_with(NULL);
}

nb_ctx *nb_ctx_new_with(const nb_allocator *allocator)
{
    nb_allocator a = {default_alloc, default_free, NULL};
    char why[160];
    int cpu = nbi_cpu_init(why, sizeof why);
    if (allocator)
        a = *allocator;
    nb_ctx *ctx = a.alloc(a.ud, sizeof *ctx);
    if (!ctx)
        return NULL;
    memset(ctx, 0, sizeof *ctx);
    ctx->alloc = a;
    ctx->nalloc = 1;
    ctx->grad_enabled = true;
    ctx->training = true;
    ctx->persistent.next_ = ctx->persistent.prev_ = &ctx->persistent;
    if (cpu) /* the context works, on the widest kernels; its error says why */
        nbi_fail(ctx, cpu, "%s", why);
    return ctx;
}

void nb_ctx_free(nb_ctx *ctx)
{
    if (!ctx)
        return;
    /* Each persistent tensor is one block, gradients included (they are
     * persistent tensors too): freeing the list frees them all. */
    nb_tensor *t = ctx->persistent.next_;
    while (t != &ctx->persistent) {
        nb_tensor *next = t->next_;
        nbi_free_aligned(ctx, t);
        t = next;
    }
    nbi_arena_free(ctx, &ctx->step);
    nbi_free_aligned(ctx, ctx->work);
    ctx->alloc.free(ctx->alloc.ud, ctx);
}

/* ---- errors and modes -------------------------------------------------- */

static void set_error(nb_ctx *ctx, int code, const char *fmt, va_list ap)
{
    ctx->status = code;
    vsnprintf(ctx->msg, sizeof ctx->msg, fmt, ap);
}

int nbi_fail(nb_ctx *ctx, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(ctx, code, fmt, ap);
    va_end(ap);
    return code;
}

void *nbi_fail_null(nb_ctx *ctx, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    set_error(ctx, code, fmt, ap);
    va_end(ap);
    return NULL;
}

int nb_error(const nb_ctx *ctx)
{
    return ctx->status;
}

const char *nb_errmsg(const nb_ctx *ctx)
{
    return ctx->msg;
}

void nb_clear_error(nb_ctx *ctx)
{
    ctx->status = NB_OK;
    ctx->msg[0] = '\0';
}

bool nb_set_grad_enabled(nb_ctx *ctx, bool enabled)
{
    bool old = ctx->grad_enabled;
    ctx->grad_enabled = enabled;
    return old;
}

bool nb_grad_enabled(const nb_ctx *ctx)
{
    return ctx->grad_enabled;
}

bool nb_set_training(nb_ctx *ctx, bool training)
{
    bool old = ctx->training;
    ctx->training = training;
    return old;
}

bool nb_training(const nb_ctx *ctx)
{
    return ctx->training;
}

size_t nb_step_capacity(const nb_ctx *ctx)
{
    return nbi_arena_capacity(&ctx->step) + ctx->work_size;
}

uint64_t nb_alloc_count(const nb_ctx *ctx)
{
    return ctx->nalloc;
}
