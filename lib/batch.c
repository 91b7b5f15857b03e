/* batch.c - sums over a batch's examples that give the same bits however
 * the batch is divided: over threads (each group of NB_BATCH_GROUP
 * examples is summed by one of them, in order) and over processes (each
 * holds whole groups and the groups' sums are gathered).  The groups' sums
 * are then added in one tree whose shape depends only on their count:
 * level s adds group i + s into group i for i a multiple of 2 s.  Every
 * process adds the same tree, so every process holds the same bits.
 *
 * Gathering every group's sum costs each process (groups - its own) x len
 * elements per sum; docs/distributed.md compares it with a ring allreduce,
 * whose order MPI does not fix. */
#include "internal.h"

#include <inttypes.h>
#include <string.h>

void nb_batch_share(int64_t total, int rank, int size, int64_t *first, int64_t *count)
{
    *first = *count = 0;
    if (total <= 0 || size < 1 || rank < 0 || rank >= size)
        return;
    int64_t g = nbi_batch_groups(total);
    int64_t g0 = g * rank / size, g1 = g * (rank + 1) / size;
    int64_t lo = g0 * NB_BATCH_GROUP, hi = g1 * NB_BATCH_GROUP;
    if (hi > total)
        hi = total;
    if (hi > lo) {
        *first = lo;
        *count = hi - lo;
    }
}

int nb_ctx_set_batch(nb_ctx *ctx, int64_t total, const nb_comm *comm)
{
    if (total < 0)
        return nbi_fail(ctx, NB_ERR_ARG, "nb_ctx_set_batch: total %" PRId64 " is negative", total);
    if (total > 0 && comm &&
        (comm->size < 1 || comm->rank < 0 || comm->rank >= comm->size || !comm->allgather))
        return nbi_fail(ctx, NB_ERR_ARG,
                        "nb_ctx_set_batch: comm of rank %d, size %d%s is malformed", comm->rank,
                        comm->size, comm->allgather ? "" : " and no allgather");
    if (total == 0 || !comm) {
        ctx->batch_total = 0;
        memset(&ctx->comm, 0, sizeof ctx->comm);
        return NB_OK;
    }
    ctx->batch_total = total;
    ctx->comm = *comm;
    return NB_OK;
}

int64_t nbi_batch_total(const nb_ctx *ctx, int64_t n)
{
    return ctx->batch_total > 0 ? ctx->batch_total : n;
}

int64_t nbi_batch_first(const nb_ctx *ctx)
{
    if (ctx->batch_total <= 0)
        return 0;
    int64_t first, count;
    nb_batch_share(ctx->batch_total, ctx->comm.rank, ctx->comm.size, &first, &count);
    return first;
}

/* Level s of the tree: group i + s into group i, for i a multiple of 2 s,
 * on elements [lo, hi) of every group.  Each element's adds are the same
 * whatever the block, so the blocks can be spread over threads; a block
 * of every group stays in cache through all the levels. */
#define TREE_SUM(T, name)                                                        \
    static void name(T *p, int64_t groups, size_t len, size_t lo, size_t hi)     \
    {                                                                            \
        for (int64_t s = 1; s < groups; s *= 2)                                  \
            for (int64_t i = 0; i + s < groups; i += 2 * s) {                    \
                T *restrict a = p + (size_t)i * len;                             \
                const T *restrict b = p + (size_t)(i + s) * len;                 \
                _Pragma("omp simd")                                              \
                for (size_t j = lo; j < hi; j++)                                 \
                    a[j] += b[j];                                                \
            }                                                                    \
    }
TREE_SUM(float, tree_sum_f32)
TREE_SUM(double, tree_sum_f64)
#undef TREE_SUM

static void tree_sum(nb_dtype dtype, void *part, int64_t groups, size_t len)
{
    enum { BLOCK = 2048 };
    if (groups < 2)
        return;
    int64_t nblk = (int64_t)((len + BLOCK - 1) / BLOCK);
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (nblk > 1 && nbi_par((int64_t)len * groups))
    for (int64_t k = 0; k < nblk; k++) {
        size_t lo = (size_t)k * BLOCK, hi = len - lo < BLOCK ? len : lo + BLOCK;
        if (dtype == NB_F32)
            tree_sum_f32(part, groups, len, lo, hi);
        else
            tree_sum_f64(part, groups, len, lo, hi);
    }
}

void nbi_batch_tree(nb_dtype dtype, void *part, int64_t groups, size_t len)
{
    if (groups < 2)
        return;
    if (dtype == NB_F32)
        tree_sum_f32(part, groups, len, 0, len);
    else
        tree_sum_f64(part, groups, len, 0, len);
}

bool nbi_batch_local(const nb_ctx *ctx)
{
    return ctx->batch_total <= 0;
}

/* The whole batch's groups' sums from every process, in group order. */
static void *gather(nb_ctx *ctx, const char *op, size_t es, int64_t n, void *part, size_t len,
                    int64_t *groups)
{
    const nb_comm *c = &ctx->comm;
    int64_t first, count;
    nb_batch_share(ctx->batch_total, c->rank, c->size, &first, &count);
    if (count > 0 && n != count)
        return nbi_fail_null(ctx, NB_ERR_ARG,
                             "%s: %" PRId64 " examples, but rank %d's share of the batch of %" PRId64
                             " is %" PRId64, op, n, c->rank, ctx->batch_total, count);
    size_t *bytes = nbi_scratch(ctx, (size_t)c->size * sizeof *bytes);
    *groups = nbi_batch_groups(ctx->batch_total);
    void *all = nbi_scratch(ctx, (size_t)*groups * len * es);
    if (!bytes || !all)
        return NULL;
    for (int r = 0; r < c->size; r++) {
        int64_t f, k;
        nb_batch_share(ctx->batch_total, r, c->size, &f, &k);
        bytes[r] = (size_t)nbi_batch_groups(k) * len * es;
    }
    char why[NBI_WHY_SIZE] = "";
    if (c->allgather(c->ud, part, all, bytes, why, sizeof why) != 0)
        return nbi_fail_null(ctx, NB_ERR_IO, "%s: exchanging the batch's sums with the other %d "
                             "processes: %s", op, c->size - 1, why[0] ? why : "failed");
    return all;
}

int nbi_batch_sum(nb_ctx *ctx, const char *op, nb_dtype dtype, int64_t n, void *part, size_t len,
                  void *out)
{
    size_t es = nb_dtype_size(dtype);
    int64_t groups = nbi_batch_groups(n);
    void *sums = part;
    if (ctx->batch_total > 0 && !(sums = gather(ctx, op, es, n, part, len, &groups)))
        return ctx->status;
    if (groups == 0) { /* an empty batch sums to zeros */
        memset(out, 0, len * es);
        return NB_OK;
    }
    tree_sum(dtype, sums, groups, len);
    if (out != sums)
        memmove(out, sums, len * es);
    return NB_OK;
}
