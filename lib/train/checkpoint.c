/*
 * checkpoint.c - a trainer's checkpoints: a safetensors file of the
 * model's tensors and the optimizer's state, whose metadata says where
 * training stands.  The format, "nabla-checkpoint-1", is kept: files
 * written since it began must keep resuming, so keys may be added but
 * never renamed.
 *   epoch, batch   epochs finished, batches of the next one finished
 *   steps          optimizer steps taken (Adam's t)
 *   shuffle_rng    the shuffle generator at the start of the epoch, so a
 *                  resumed epoch draws the same order
 *   dropout_rng    the model's dropout generator now
 *   loss_sum, correct, seen, seconds   the epoch's sums so far (optional)
 * Generators are 64 hex digits (four 64-bit words), reals "%.17g".
 */
#include "train/trainer.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#define FORMAT "nabla-checkpoint-1"

static void rng_str(const nb_rng *r, char *buf, size_t size)
{
    snprintf(buf, size, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, r->s[0], r->s[1],
             r->s[2], r->s[3]);
}

static bool rng_parse(const char *s, nb_rng *r)
{
    if (!s || strlen(s) != 64)
        return false;
    for (int i = 0; i < 4; i++) {
        char part[17], *end;
        memcpy(part, s + 16 * i, 16);
        part[16] = '\0';
        r->s[i] = strtoull(part, &end, 16);
        if (*end)
            return false;
    }
    return true;
}

int nb_trainer_save(nb_trainer *tr, const char *path)
{
    if (!tr->opt)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "trainer: made without an optimizer, it has no "
                        "training to checkpoint");
    if (!path)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "trainer_save: path is NULL");
    const nb_train_progress *p = &tr->p;
    char epoch[32], batch[32], steps[32], shuffle[80], dropout[80], loss[64], correct[32],
        seen[32], secs[64];
    snprintf(epoch, sizeof epoch, "%d", p->epoch);
    snprintf(batch, sizeof batch, "%" PRId64, p->batch);
    snprintf(steps, sizeof steps, "%" PRId64, nb_optim_steps(tr->opt));
    rng_str(&tr->shuffle, shuffle, sizeof shuffle);
    rng_str(nb_model_rng(tr->m), dropout, sizeof dropout);
    snprintf(loss, sizeof loss, "%.17g", p->loss_sum);
    snprintf(correct, sizeof correct, "%" PRId64, p->correct);
    snprintf(seen, sizeof seen, "%" PRId64, p->seen);
    snprintf(secs, sizeof secs, "%.17g", p->seconds);
    const char *keys[] = {"format", "epoch", "batch", "steps", "shuffle_rng", "dropout_rng",
                          "loss_sum", "correct", "seen", "seconds"};
    const char *vals[] = {FORMAT, epoch, batch, steps, shuffle, dropout, loss, correct, seen,
                          secs};
    return nb_safetensors_save_meta(tr->ctx, path, tr->nckpt, tr->ckpt, 10, keys, vals);
}

/* ---- resuming ------------------------------------------------------------ */

/* What a checkpoint's metadata says, before any of it is applied. */
typedef struct saved {
    nb_train_progress p;
    nb_rng shuffle, dropout;
} saved;

/* An integer value of the metadata: false when absent or not a number. */
static bool meta_int(const nb_safetensors *f, const char *key, int64_t *v)
{
    const char *s = nb_safetensors_meta(f, key);
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    long long x = strtoll(s, &end, 10);
    if (*end || errno == ERANGE)
        return false;
    *v = x;
    return true;
}

/* The epoch's sums: every file nabla writes has them, but they were
 * optional from the start, so 0 when missing. */
static void meta_sums(const nb_safetensors *f, nb_train_progress *p)
{
    const char *v;
    p->loss_sum = (v = nb_safetensors_meta(f, "loss_sum")) ? strtod(v, NULL) : 0;
    p->correct = (v = nb_safetensors_meta(f, "correct")) ? strtoll(v, NULL, 10) : 0;
    p->seen = (v = nb_safetensors_meta(f, "seen")) ? strtoll(v, NULL, 10) : 0;
    p->seconds = (v = nb_safetensors_meta(f, "seconds")) ? strtod(v, NULL) : 0;
}

static int read_meta(const nb_trainer *tr, const nb_safetensors *f, const char *path, saved *s)
{
    const char *fmt = nb_safetensors_meta(f, "format");
    if (!fmt || strcmp(fmt, FORMAT) != 0)
        return nbi_fail(tr->ctx, NB_ERR_FORMAT, "%s: not a nabla checkpoint", path);
    int64_t epoch;
    s->p = tr->p;
    if (!meta_int(f, "epoch", &epoch) || epoch < 0 || epoch > INT32_MAX ||
        !meta_int(f, "batch", &s->p.batch) || s->p.batch < 0 ||
        !meta_int(f, "steps", &s->p.steps) || s->p.steps < 0 ||
        !rng_parse(nb_safetensors_meta(f, "shuffle_rng"), &s->shuffle) ||
        !rng_parse(nb_safetensors_meta(f, "dropout_rng"), &s->dropout))
        return nbi_fail(tr->ctx, NB_ERR_FORMAT, "%s: the checkpoint's metadata is incomplete",
                        path);
    s->p.epoch = (int)epoch;
    meta_sums(f, &s->p);
    /* batch == batches: stopped after an epoch's last batch, before its
     * validation. */
    if (s->p.batch > tr->p.batches)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "%s: the checkpoint stands at batch %" PRId64
                        " of an epoch, but this training has %" PRId64 " batches an epoch (other "
                        "data, limit or batch size?)", path, s->p.batch, tr->p.batches);
    return NB_OK;
}

int nb_trainer_resume(nb_trainer *tr, const char *path)
{
    if (!tr->opt)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "trainer: made without an optimizer, it has no "
                        "training to resume");
    if (!path)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "trainer_resume: path is NULL");
    nb_safetensors *f = nb_safetensors_open(tr->ctx, path);
    if (!f)
        return nb_error(tr->ctx);
    saved s;
    int rc = read_meta(tr, f, path, &s);
    /* The tensors last: reading them changes nothing unless all match. */
    if (rc == NB_OK)
        rc = nb_safetensors_read(tr->ctx, f, tr->nckpt, tr->ckpt, true);
    nb_safetensors_close(f);
    if (rc != NB_OK)
        return rc;
    tr->p = s.p;
    tr->shuffle = s.shuffle;
    *nb_model_rng(tr->m) = s.dropout;
    nb_optim_set_steps(tr->opt, s.p.steps);
    return NB_OK;
}
