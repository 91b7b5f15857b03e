/*
 * shard.c - a trainer whose batches several processes share (data
 * parallelism): nb_trainer_set_comm, which checks that they train alike,
 * and nb_trainer_resume, where rank 0 reads the checkpoint for all.  The
 * steps' share of each batch and the agreed counts are trainer.c's; this
 * file sits above it and checkpoint.c.
 *
 * Every process holds the whole data set, the model and the optimizer.
 * Each draws the same order of the examples from the same seed, splits
 * each batch by nb_batch_share and feeds its part; the ops add the
 * groups' sums in one tree on every process (lib/batch.c), so the loss and
 * the gradients, hence every update, are the same bits on each, and the
 * same as one process's.  What the trainer itself counts (the examples
 * classified right) is added here in rank order, and a callback's answer
 * is agreed (the first non-zero one in rank order), so that every process
 * stops at the same step.  It knows no MPI: only the nb_comm.
 */
#include "io/safetensors.h"
#include "train/trainer.h"

#include <inttypes.h>

/* ---- every process trains alike ------------------------------------------- */

/* What must be the same on every process: the settings a checkpoint
 * records (but the thread count, which changes no bits of the batch's
 * sums, and the data set's size, where the examples used are the same),
 * the classes and the labels. */
typedef struct record {
    char vals[NBI_CKPT_MAX_META][NBI_CKPT_VAL];
    char classes[NB_MAX_CLASSES * 4 + 1];
    int32_t nlabels, nkeys;
} record;

static void make_record(const nb_trainer *tr, record *rec, const char **keys)
{
    memset(rec, 0, sizeof *rec);
    rec->nkeys = nbi_ckpt_settings(tr, keys, rec->vals);
    size_t at = 0;
    for (int i = 0; i < tr->t.nclasses; i++)
        at += (size_t)snprintf(rec->classes + at, sizeof rec->classes - at, "%s%" PRId32,
                               i ? "," : "", tr->t.classes[i]);
    rec->nlabels = tr->nlabels;
}

/* The message for rank r's record differing from rank 0's in key i. */
static int differs(nb_trainer *tr, int r, const char *key, const char *theirs, const char *ours)
{
    if (strcmp(key, "model_digest") == 0)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "rank %d's model is not rank 0's (digest %s there, "
                        "%s on rank 0: other layers or layer settings): every process must train "
                        "the same model", r, theirs, ours);
    if (strcmp(key, "data_examples") == 0 || strcmp(key, "data_digest") == 0)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "rank %d's data is not rank 0's (%s %s there, %s on "
                        "rank 0): every process needs the same data at its --data", r, key, theirs,
                        ours);
    if (strcmp(key, "kernels") == 0)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "rank %d runs the %s kernels, rank 0 the %s ones "
                        "(another CPU): their sums would differ in the last bits", r, theirs, ours);
    return nbi_fail(tr->ctx, NB_ERR_ARG, "rank %d's %s is %s, rank 0's %s: every process must "
                    "run with the same settings", r, key, theirs, ours);
}

/* The first way rank r's record differs from rank 0's: the model, then
 * the data, then the settings in the checkpoint's order. */
static int compare(nb_trainer *tr, int r, const record *mine, const record *other,
                   const char **keys)
{
    static const char *const first[] = {"model_digest", "data_examples", "data_digest"};
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < mine->nkeys; i++) {
            bool early = false;
            for (size_t j = 0; j < sizeof first / sizeof *first; j++)
                early |= strcmp(keys[i], first[j]) == 0;
            if (early != (pass == 0) || strcmp(keys[i], "threads") == 0 ||
                strcmp(keys[i], "data_size") == 0)
                continue;
            if (strcmp(mine->vals[i], other->vals[i]) != 0)
                return differs(tr, r, keys[i], other->vals[i], mine->vals[i]);
        }
    if (strcmp(mine->classes, other->classes) != 0)
        return differs(tr, r, "classes", other->classes, mine->classes);
    if (mine->nlabels != other->nlabels) {
        char a[16], b[16];
        snprintf(a, sizeof a, "%" PRId32, other->nlabels);
        snprintf(b, sizeof b, "%" PRId32, mine->nlabels);
        return differs(tr, r, "count of labels", a, b);
    }
    return NB_OK;
}

/* Every process's record against rank 0's: the same error on each. */
static int agree(nb_trainer *tr, const nb_comm *comm)
{
    const char *keys[NBI_CKPT_MAX_META];
    record *all = nbi_alloc(tr->ctx, (size_t)(comm->size + 1) * sizeof *all);
    if (!all)
        return NB_ERR_NOMEM;
    record *mine = &all[comm->size];
    make_record(tr, mine, keys);
    int rc = nb_comm_gather(tr->ctx, comm, mine, sizeof *mine, all);
    for (int r = 1; rc == NB_OK && r < comm->size; r++)
        rc = compare(tr, r, &all[0], &all[r], keys);
    nbi_free(tr->ctx, all);
    return rc;
}

int nb_trainer_set_comm(nb_trainer *tr, const nb_comm *comm)
{
    if (comm && (comm->size < 1 || comm->rank < 0 || comm->rank >= comm->size ||
                 !comm->allgather))
        return nbi_fail(tr->ctx, NB_ERR_ARG, "trainer_set_comm: comm of rank %d, size %d%s is "
                        "malformed", comm->rank, comm->size,
                        comm->allgather ? "" : " and no allgather");
    if (!comm || comm->size == 1) {
        tr->shared = false;
        memset(&tr->comm, 0, sizeof tr->comm);
        return nbi_trainer_views(tr);
    }
    /* A process beyond a full batch's groups would never have work. */
    int64_t groups = nbi_batch_groups(tr->t.batch_size);
    if (groups < comm->size)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "%d processes share batches of %d examples, whose "
                        "%" PRId64 " group%s of %d keep%s at most %" PRId64 " busy: use fewer "
                        "processes or a larger batch_size", comm->size, tr->t.batch_size, groups,
                        groups == 1 ? "" : "s", NB_BATCH_GROUP, groups == 1 ? "s" : "", groups);
    int rc = agree(tr, comm);
    if (rc != NB_OK)
        return rc;
    tr->comm = *comm;
    tr->shared = true;
    return nbi_trainer_views(tr);
}

/* ---- resuming: rank 0 reads the checkpoint, every process gets it ---------- */

#define MAX_CKPT_BYTES (SIZE_MAX / 4)
#define CHUNK ((size_t)1 << 30) /* under MPI's int counts */

/* Rank 0's `len` bytes at buf into buf on every process. */
static int send_bytes(nb_trainer *tr, char *buf, size_t len)
{
    const nb_comm *c = &tr->comm;
    size_t *bytes = nbi_alloc(tr->ctx, (size_t)c->size * sizeof *bytes);
    if (!bytes)
        return NB_ERR_NOMEM;
    int rc = NB_OK;
    for (size_t at = 0; at < len && rc == NB_OK; at += CHUNK) {
        memset(bytes, 0, (size_t)c->size * sizeof *bytes);
        bytes[0] = len - at < CHUNK ? len - at : CHUNK;
        char why[NBI_WHY_SIZE] = "";
        if (c->allgather(c->ud, buf + at, buf + at, bytes, why, sizeof why) != 0)
            rc = nbi_fail(tr->ctx, NB_ERR_IO, "sending the checkpoint to the other %d processes: "
                          "%s", c->size - 1, why[0] ? why : "failed");
    }
    nbi_free(tr->ctx, bytes);
    return rc;
}

/* Every process's status agreed: the first failure in rank order. */
static int agree_status(nb_trainer *tr, int rc, const char *path, const char *what)
{
    int64_t v = rc;
    int r;
    int err = nb_comm_first(tr->ctx, &tr->comm, &v, &r);
    if (err != NB_OK || v == NB_OK || rc != NB_OK)
        return err != NB_OK ? err : rc != NB_OK ? rc : NB_OK;
    return nbi_fail(tr->ctx, (int)v, "%s: rank %d could not %s (%s)", path, r, what,
                    nb_status_str((int)v));
}

/* Rank 0 reads the checkpoint and sends it to the others. */
static int resume_shared(nb_trainer *tr, const char *path)
{
    nb_ctx *ctx = tr->ctx;
    char *buf = NULL;
    size_t len = 0;
    int rc = NB_OK;
    if (tr->comm.rank == 0)
        rc = nbi_file_read(ctx, path, MAX_CKPT_BYTES, NBI_FILE_REGULAR, &buf, &len);
    if ((rc = agree_status(tr, rc, path, "read it")) != NB_OK)
        goto out;
    /* The size from rank 0 (its own plus one: never 0), then room for it. */
    int64_t size = tr->comm.rank == 0 ? (int64_t)len + 1 : 0;
    if ((rc = nb_comm_first(ctx, &tr->comm, &size, NULL)) != NB_OK)
        goto out;
    len = (size_t)(size - 1);
    if (tr->comm.rank != 0 && !(buf = nbi_alloc(ctx, len ? len : 1)))
        rc = NB_ERR_NOMEM;
    if ((rc = agree_status(tr, rc, path, "make room for it")) != NB_OK ||
        (rc = send_bytes(tr, buf, len)) != NB_OK)
        goto out;
    nb_safetensors *f = nbi_safetensors_parse(ctx, buf, len, path);
    rc = f ? nbi_trainer_resume_file(tr, f, path) : nb_error(ctx);
    nb_safetensors_close(f);
out:
    nbi_free(ctx, buf);
    return rc;
}

int nb_trainer_resume(nb_trainer *tr, const char *path)
{
    if (!tr->opt)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "trainer: made without an optimizer, it has no "
                        "training to resume");
    if (!path)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "trainer_resume: path is NULL");
    if (tr->shared)
        return resume_shared(tr, path);
    nb_safetensors *f = nb_safetensors_open(tr->ctx, path);
    if (!f)
        return nb_error(tr->ctx);
    int rc = nbi_trainer_resume_file(tr, f, path);
    nb_safetensors_close(f);
    return rc;
}
