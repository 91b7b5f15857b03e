/*
 * comm.c - what processes that share batches agree on besides the ops'
 * sums: counts added in rank order (the same on every process, whatever
 * the reduction MPI would pick) and records gathered from every process.
 * Over any nb_comm: it knows nothing of MPI.
 */
#include "internal.h"

#include <inttypes.h>

/* A comm that can be used: NULL is one process alone. */
static int check_comm(nb_ctx *ctx, const char *fn, const nb_comm *comm)
{
    if (comm && (comm->size < 1 || comm->rank < 0 || comm->rank >= comm->size ||
                 !comm->allgather))
        return nbi_fail(ctx, NB_ERR_ARG, "%s: comm of rank %d, size %d%s is malformed", fn,
                        comm->rank, comm->size, comm->allgather ? "" : " and no allgather");
    return NB_OK;
}

/* Every process's `size` bytes into all[rank * size]; the byte counts in
 * the context's work buffer, after what `keep` bytes of it hold. */
static int gather(nb_ctx *ctx, const char *fn, const nb_comm *comm, const void *mine, size_t size,
                  void *all, size_t keep)
{
    char *work = nbi_work(ctx, keep + (size_t)comm->size * sizeof(size_t));
    if (!work)
        return NB_ERR_NOMEM;
    size_t *bytes = (size_t *)(work + keep);
    for (int r = 0; r < comm->size; r++)
        bytes[r] = size;
    char why[NBI_WHY_SIZE] = "";
    if (comm->allgather(comm->ud, mine, all, bytes, why, sizeof why) != 0)
        return nbi_fail(ctx, NB_ERR_IO, "%s: exchanging %zu bytes with the other %d processes: "
                        "%s", fn, size, comm->size - 1, why[0] ? why : "failed");
    return NB_OK;
}

int nb_comm_gather(nb_ctx *ctx, const nb_comm *comm, const void *mine, size_t size, void *all)
{
    int rc = check_comm(ctx, "comm_gather", comm);
    if (rc != NB_OK)
        return rc;
    if (!comm || comm->size == 1) {
        if (size && all != mine)
            memmove(all, mine, size);
        return NB_OK;
    }
    return gather(ctx, "comm_gather", comm, mine, size, all, 0);
}

int nb_comm_sum_i64(nb_ctx *ctx, const nb_comm *comm, int64_t *vals, int n)
{
    int rc = check_comm(ctx, "comm_sum", comm);
    if (rc != NB_OK || !comm || comm->size == 1 || n <= 0)
        return rc;
    size_t row = (size_t)n * sizeof *vals, keep = row * (size_t)comm->size;
    /* The rows land in the work buffer, the byte counts after them. */
    keep = (keep + sizeof(size_t) - 1) / sizeof(size_t) * sizeof(size_t);
    int64_t *all = nbi_work(ctx, keep + (size_t)comm->size * sizeof(size_t));
    if (!all)
        return NB_ERR_NOMEM;
    if ((rc = gather(ctx, "comm_sum", comm, vals, row, all, keep)) != NB_OK)
        return rc;
    /* Rank order, in integers: the same sums on every process. */
    for (int i = 0; i < n; i++) {
        int64_t s = 0;
        for (int r = 0; r < comm->size; r++)
            s += all[(size_t)r * (size_t)n + (size_t)i];
        vals[i] = s;
    }
    return NB_OK;
}

int nb_comm_first(nb_ctx *ctx, const nb_comm *comm, int64_t *val, int *rank)
{
    int rc = check_comm(ctx, "comm_first", comm);
    if (rank)
        *rank = comm && comm->size > 1 ? -1 : *val ? 0 : -1;
    if (rc != NB_OK || !comm || comm->size == 1)
        return rc;
    int64_t *all = nbi_work(ctx, (size_t)comm->size * (sizeof *all + sizeof(size_t)));
    if (!all)
        return NB_ERR_NOMEM;
    if ((rc = gather(ctx, "comm_first", comm, val, sizeof *val, all,
                     (size_t)comm->size * sizeof *all)) != NB_OK)
        return rc;
    *val = 0;
    for (int r = 0; r < comm->size; r++)
        if (all[r]) {
            *val = all[r];
            if (rank)
                *rank = r;
            break;
        }
    return NB_OK;
}
