/*
 * tensor.c - creating, filling, reading and printing tensors.  Persistent
 * tensors are one aligned block (header, then data) on the context's list;
 * step tensors live in the step arena.
 */
#include "internal.h"

#include <inttypes.h>
#include <math.h>

size_t nb_dtype_size(nb_dtype dtype)
{
    return dtype == NB_F64 ? sizeof(double) : sizeof(float);
}

const char *nb_dtype_name(nb_dtype dtype)
{
    return dtype == NB_F64 ? "f64" : "f32";
}

int64_t nbi_shape_numel(nb_ctx *ctx, const char *op, int ndim,
                        const int64_t *shape)
{
    if (ndim < 0 || ndim > NB_MAX_DIMS) {
        nbi_fail(ctx, NB_ERR_ARG, "%s: %d dimensions (at most %d)", op, ndim, NB_MAX_DIMS);
        return -1;
    }
    if (ndim > 0 && !shape) {
        nbi_fail(ctx, NB_ERR_ARG, "%s: shape is NULL", op);
        return -1;
    }
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 1) {
            nbi_fail(ctx, NB_ERR_ARG, "%s: size %" PRId64 " of dimension %d is not positive", op, shape[i], i);
            return -1;
        }
        /* Keep numel * 8 bytes representable. */
        if (shape[i] > (INT64_MAX / 8) / n) {
            nbi_fail(ctx, NB_ERR_ARG, "%s: shape overflows", op);
            return -1;
        }
        n *= shape[i];
    }
    return n;
}

static void init_header(nb_tensor *t, nb_ctx *ctx, nb_dtype dtype, int ndim,
                        const int64_t *shape, int64_t numel)
{
    memset(t, 0, sizeof *t);
    t->dtype = dtype;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    t->numel = numel;
    t->ctx_ = ctx;
}

static bool valid_dtype(nb_ctx *ctx, nb_dtype dtype)
{
    if (dtype == NB_F32 || dtype == NB_F64)
        return true;
    nbi_fail(ctx, NB_ERR_ARG, "tensor: unknown dtype %d", (int)dtype);
    return false;
}

static nb_tensor *persistent_new(nb_ctx *ctx, nb_dtype dtype, int ndim,
                                 const int64_t *shape, bool with_data)
{
    if (!valid_dtype(ctx, dtype))
        return NULL;
    int64_t n = nbi_shape_numel(ctx, "tensor", ndim, shape);
    if (n < 0)
        return NULL;
    size_t head = (sizeof(nb_tensor) + NBI_ALIGN - 1) & ~(size_t)(NBI_ALIGN - 1);
    size_t bytes = with_data ? (size_t)n * nb_dtype_size(dtype) : 0;
    if (bytes > SIZE_MAX - head)
        return nbi_fail_null(ctx, NB_ERR_NOMEM, "tensor: %" PRId64 " elements do not fit in memory", n);
    if (!nbi_mem_fits(ctx, ctx->persistent_bytes + bytes)) {
        char s[96], h[32];
        nbi_mem_refuse(ctx, ctx->persistent_bytes + bytes, "a tensor %s of %s beside the %s of "
                       "tensors held", nb_dims_str(ndim, shape, s, sizeof s), nb_dtype_name(dtype),
                       nbi_bytes_str(ctx->persistent_bytes, h, sizeof h));
        return NULL;
    }
    char *block = nbi_alloc_aligned(ctx, head + bytes);
    if (!block)
        return NULL;
    ctx->persistent_bytes += bytes;
    nb_tensor *t = (nb_tensor *)block;
    init_header(t, ctx, dtype, ndim, shape, n);
    t->flags_ = NBI_PERSISTENT;
    if (with_data) {
        t->data = block + head;
        memset(t->data, 0, bytes);
    }
    nb_tensor *s = &ctx->persistent;
    t->prev_ = s->prev_;
    t->next_ = s;
    s->prev_->next_ = t;
    s->prev_ = t;
    return t;
}

nb_tensor *nb_tensor_new(nb_ctx *ctx, nb_dtype dtype, int ndim,
                         const int64_t *shape)
{
    return persistent_new(ctx, dtype, ndim, shape, true);
}

nb_tensor *nb_tensor_full(nb_ctx *ctx, nb_dtype dtype, int ndim,
                          const int64_t *shape, double value)
{
    nb_tensor *t = nb_tensor_new(ctx, dtype, ndim, shape);
    if (t)
        nb_fill(t, value);
    return t;
}

nb_tensor *nb_tensor_from(nb_ctx *ctx, nb_dtype dtype, int ndim,
                          const int64_t *shape, const void *data)
{
    if (!data)
        return nbi_fail_null(ctx, NB_ERR_ARG, "tensor_from: data is NULL");
    nb_tensor *t = nb_tensor_new(ctx, dtype, ndim, shape);
    if (t)
        memcpy(t->data, data, (size_t)t->numel * nb_dtype_size(dtype));
    return t;
}

nb_tensor *nb_tensor_wrap(nb_ctx *ctx, nb_dtype dtype, int ndim,
                          const int64_t *shape, void *data)
{
    if (!data)
        return nbi_fail_null(ctx, NB_ERR_ARG, "tensor_wrap: data is NULL");
    nb_tensor *t = persistent_new(ctx, dtype, ndim, shape, false);
    if (t) {
        t->data = data;
        t->flags_ |= NBI_BORROWED;
    }
    return t;
}

nb_tensor *nb_tensor_copy(nb_ctx *ctx, const nb_tensor *src, nb_dtype dtype)
{
    if (!src)
        return NULL;
    nb_tensor *t = nb_tensor_new(ctx, dtype, src->ndim, src->shape);
    if (t) {
        nb_copy_values(t, src);
        memcpy(t->name, src->name, sizeof t->name);
    }
    return t;
}

void nb_tensor_free(nb_tensor *t)
{
    if (!t || !(t->flags_ & NBI_PERSISTENT))
        return;
    nb_ctx *ctx = t->ctx_;
    if (!(t->flags_ & NBI_BORROWED))
        ctx->persistent_bytes -= (uint64_t)t->numel * nb_dtype_size(t->dtype);
    t->prev_->next_ = t->next_;
    t->next_->prev_ = t->prev_;
    if (t->grad && (t->grad->flags_ & NBI_PERSISTENT))
        nb_tensor_free(t->grad);
    nbi_free_aligned(ctx, t);
}

nb_tensor *nb_tensor_set_name(nb_tensor *t, const char *name)
{
    if (t) {
        snprintf(t->name, sizeof t->name, "%s", name ? name : "");
    }
    return t;
}

nb_tensor *nbi_step_tensor(nb_ctx *ctx, nb_dtype dtype, int ndim,
                           const int64_t *shape)
{
    int64_t n = nbi_shape_numel(ctx, "tensor", ndim, shape);
    if (n < 0)
        return NULL;
    nb_tensor *t = nbi_arena_alloc(ctx, &ctx->step, sizeof *t);
    if (!t)
        return NULL;
    init_header(t, ctx, dtype, ndim, shape, n);
    t->data = nbi_arena_alloc(ctx, &ctx->step, (size_t)n * nb_dtype_size(dtype));
    return t->data ? t : NULL;
}

nb_tensor *nbi_step_view(nb_ctx *ctx, nb_tensor *x, int ndim,
                         const int64_t *shape)
{
    nb_tensor *t = nbi_arena_alloc(ctx, &ctx->step, sizeof *t);
    if (!t)
        return NULL;
    init_header(t, ctx, x->dtype, ndim, shape, x->numel);
    t->data = x->data;
    t->flags_ = NBI_BORROWED;
    return t;
}

/* ---- values ------------------------------------------------------------ */

double nb_get(const nb_tensor *t, int64_t i)
{
    return t->dtype == NB_F32 ? (double)((const float *)t->data)[i]
                              : ((const double *)t->data)[i];
}

void nb_set(nb_tensor *t, int64_t i, double value)
{
    if (t->dtype == NB_F32)
        ((float *)t->data)[i] = (float)value;
    else
        ((double *)t->data)[i] = value;
}

int64_t nb_index(const nb_tensor *t, const int64_t *idx)
{
    int64_t off = 0;
    for (int d = 0; d < t->ndim; d++)
        off = off * t->shape[d] + idx[d];
    return off;
}

void nb_fill(nb_tensor *t, double value)
{
    for (int64_t i = 0; i < t->numel; i++)
        nb_set(t, i, value);
}

void nb_fill_uniform(nb_tensor *t, nb_rng *rng, double lo, double hi)
{
    for (int64_t i = 0; i < t->numel; i++)
        nb_set(t, i, lo + (hi - lo) * nb_rng_uniform(rng));
}

void nb_fill_normal(nb_tensor *t, nb_rng *rng, double mean, double std)
{
    for (int64_t i = 0; i < t->numel; i++)
        nb_set(t, i, mean + std * nb_rng_normal(rng));
}

int nb_copy_values(nb_tensor *dst, const nb_tensor *src)
{
    if (dst->numel != src->numel) {
        char a[96], b[96];
        return nbi_fail(dst->ctx_, NB_ERR_ARG, "copy: %s and %s differ in size",
                        nb_shape_str(dst, a, sizeof a), nb_shape_str(src, b, sizeof b));
    }
    if (dst->dtype == src->dtype) {
        memmove(dst->data, src->data, (size_t)src->numel * nb_dtype_size(src->dtype));
        return NB_OK;
    }
    for (int64_t i = 0; i < src->numel; i++)
        nb_set(dst, i, nb_get(src, i));
    return NB_OK;
}

bool nb_same_shape(const nb_tensor *a, const nb_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

char *nb_shape_str(const nb_tensor *t, char *buf, size_t size)
{
    return nb_dims_str(t->ndim, t->shape, buf, size);
}

void nb_requires_grad(nb_tensor *t, bool on)
{
    if (t)
        t->requires_grad = on;
}

/* ---- printing ---------------------------------------------------------- */

/* Prints the sub-tensor of dimension d starting at flat offset off, eliding
 * the middle of dimensions longer than 6. */
static void print_dim(const nb_tensor *t, FILE *out, int d, int64_t off,
                      int indent)
{
    int64_t n = t->shape[d], stride = 1;
    for (int i = d + 1; i < t->ndim; i++)
        stride *= t->shape[i];
    fputc('[', out);
    for (int64_t i = 0; i < n; i++) {
        if (n > 6 && i == 3) {
            fputs(d == t->ndim - 1 ? "..., " : "...,\n", out);
            if (d != t->ndim - 1)
                fprintf(out, "%*s", indent + 1, "");
            i = n - 3;
        }
        if (d == t->ndim - 1)
            fprintf(out, "%.6g", nb_get(t, off + i));
        else
            print_dim(t, out, d + 1, off + i * stride, indent + 1);
        if (i + 1 < n) {
            if (d == t->ndim - 1)
                fputs(", ", out);
            else
                fprintf(out, ",\n%*s", indent + 1, "");
        }
    }
    fputc(']', out);
}

int nb_tensor_print(const nb_tensor *t, FILE *out)
{
    char shape[128];
    fprintf(out, "tensor%s%s%s %s %s\n", t->name[0] ? " \"" : "", t->name,
            t->name[0] ? "\"" : "", nb_shape_str(t, shape, sizeof shape),
            nb_dtype_name(t->dtype));
    if (t->ndim == 0)
        fprintf(out, "%.6g", nb_get(t, 0));
    else
        print_dim(t, out, 0, 0, 0);
    fputc('\n', out);
    return ferror(out) ? NB_ERR_IO : NB_OK;
}
