/*
 * callbacks.c - what the training section's callbacks do between epochs:
 * keep_best marks the best epoch, early_stopping ends the run and puts back
 * the best weights, reduce_lr_on_plateau lowers the rate, and warmup ramps
 * it up at the start (Keras's callbacks of those names, and a linear
 * warmup).  Their state is a function of the epochs' metrics alone, so a
 * resumed run replays its history to the same state; only the best
 * weights need the checkpoint, which holds them as "best/<name>".
 */
#include "train/trainer.h"

#include <math.h>
#include <stdio.h>

/* The value a monitor watches in e; NaN when e has none (no validation). */
static double watched(nb_monitor m, const nb_epoch_metrics *e)
{
    switch (m) {
    case NB_MONITOR_VAL_LOSS: return e->val_loss;
    case NB_MONITOR_VAL_ACCURACY: return e->val_accuracy;
    case NB_MONITOR_LOSS: return e->loss;
    case NB_MONITOR_ACCURACY: return e->accuracy;
    default: return NAN;
    }
}

static bool is_loss(nb_monitor m)
{
    return m == NB_MONITOR_VAL_LOSS || m == NB_MONITOR_LOSS;
}

static void watch_reset(nbi_watch *w, nb_monitor m)
{
    w->best = is_loss(m) ? INFINITY : -INFINITY;
    w->epoch = w->wait = 0;
}

/* Whether e improves on the best by more than min_delta (the first value
 * always does); then it becomes the best. */
static bool improves(nbi_watch *w, nb_monitor m, double min_delta, const nb_epoch_metrics *e)
{
    double v = watched(m, e);
    bool better = is_loss(m) ? v < w->best - min_delta : v > w->best + min_delta;
    if (!better && !(w->epoch == 0 && isfinite(v)))
        return false;
    w->best = v;
    w->epoch = e->epoch;
    w->wait = 0;
    return true;
}

static void copy_tensors(nb_tensor *const *from, nb_tensor *const *to, int n)
{
    for (int i = 0; i < n; i++)
        memcpy(to[i]->data, from[i]->data, (size_t)from[i]->numel * nb_dtype_size(from[i]->dtype));
}

/* ---- setting up ------------------------------------------------------------ */

static int needs_validation(nb_trainer *tr, const char *setting, nb_monitor m)
{
    if ((m == NB_MONITOR_VAL_ACCURACY || m == NB_MONITOR_ACCURACY) &&
        tr->t.target == NB_TARGET_INPUT)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "trainer: %s watches %s, but with target \"input\" "
                        "there is no accuracy: watch %s", setting, nb_monitor_name(m),
                        m == NB_MONITOR_VAL_ACCURACY ? "val_loss" : "loss");
    if ((m == NB_MONITOR_VAL_LOSS || m == NB_MONITOR_VAL_ACCURACY) && tr->nval == 0)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "trainer: %s watches %s, but there are no "
                        "validation examples: set validation_split, or watch %s", setting,
                        nb_monitor_name(m), m == NB_MONITOR_VAL_LOSS ? "loss" : "accuracy");
    return NB_OK;
}

static void reset(nb_trainer *tr)
{
    const nb_train_opts *t = &tr->t;
    watch_reset(&tr->keep, t->keep_best);
    watch_reset(&tr->stop, t->early_stopping.monitor);
    watch_reset(&tr->plateau, t->plateau.monitor);
    tr->lr_scale = 1;
    tr->stopped = false;
}

int nbi_callbacks_make(nb_trainer *tr)
{
    const nb_train_opts *t = &tr->t;
    const nb_early_stopping *es = &t->early_stopping;
    const nb_plateau *pl = &t->plateau;
    int rc;
    if (es->patience < 0 || !(es->min_delta >= 0) || pl->patience < 0 || !(pl->min_delta >= 0) ||
        !(pl->factor > 0 && pl->factor < 1) || !(pl->min_lr >= 0) || t->warmup_epochs < 0 ||
        t->warmup_steps < 0 || (t->warmup_epochs && t->warmup_steps))
        return nbi_fail(tr->ctx, NB_ERR_ARG, "trainer: bad callback settings (patience >= 0, "
                        "min_delta >= 0, factor in (0, 1), min_lr >= 0, warmup in epochs or "
                        "steps)");
    if ((rc = needs_validation(tr, "early_stopping", es->monitor)) ||
        (rc = needs_validation(tr, "reduce_lr_on_plateau", pl->monitor)) ||
        (rc = needs_validation(tr, "keep_best", t->keep_best)))
        return rc;
    reset(tr);
    if (es->monitor == NB_MONITOR_NONE || !es->restore_best)
        return NB_OK;
    int n = nb_model_num_tensors(tr->m);
    if (!(tr->best = nbi_alloc(tr->ctx, (size_t)n * sizeof *tr->best)))
        return NB_ERR_NOMEM;
    for (; tr->nbest < n; tr->nbest++) {
        const nb_tensor *src = nb_model_tensor(tr->m, tr->nbest);
        nb_tensor *c = nb_tensor_copy(tr->ctx, src, src->dtype);
        if (!c)
            return nb_error(tr->ctx);
        char name[sizeof c->name + 8];
        snprintf(name, sizeof name, "best/%s", src->name);
        tr->best[tr->nbest] = nb_tensor_set_name(c, name);
    }
    return NB_OK;
}

void nbi_callbacks_free(nb_trainer *tr)
{
    for (int i = 0; i < tr->nbest; i++)
        nb_tensor_free(tr->best[i]);
    nbi_free(tr->ctx, tr->best);
}

/* ---- the rate ---------------------------------------------------------------- */

double nbi_callbacks_lr(const nb_trainer *tr)
{
    const nb_train_opts *t = &tr->t;
    double lr = nb_schedule_lr(t, tr->lr, tr->p.epoch);
    if (tr->lr_scale < 1 && lr > t->plateau.min_lr) /* reduced on a plateau, to its floor */
        lr = fmax(lr * tr->lr_scale, t->plateau.min_lr);
    if (t->warmup_steps && tr->p.steps < t->warmup_steps)
        lr *= (double)(tr->p.steps + 1) / t->warmup_steps;
    if (t->warmup_epochs && tr->p.epoch < t->warmup_epochs)
        lr *= (double)(tr->p.epoch + 1) / t->warmup_epochs;
    return lr;
}

/* ---- after an epoch -------------------------------------------------------------- */

/* The state's move after e; weights false when replaying (the weights are
 * then the checkpoint's). */
static void after(nb_trainer *tr, nb_epoch_metrics *e, bool weights)
{
    const nb_train_opts *t = &tr->t;
    const nb_early_stopping *es = &t->early_stopping;
    const nb_plateau *pl = &t->plateau;
    e->best = e->stopped = false;
    e->restored = 0;
    if (t->keep_best)
        e->best = improves(&tr->keep, t->keep_best, 0, e);
    /* Keras's order: patience epochs without improvement, then the rate
     * drops (unless at its floor) and the count starts again. */
    if (pl->monitor && !improves(&tr->plateau, pl->monitor, pl->min_delta, e) &&
        ++tr->plateau.wait >= pl->patience) {
        if (e->lr > pl->min_lr)
            tr->lr_scale *= pl->factor;
        tr->plateau.wait = 0;
    }
    if (es->monitor) {
        if (improves(&tr->stop, es->monitor, es->min_delta, e)) {
            if (weights && tr->nbest)
                copy_tensors(tr->ckpt, tr->best, tr->nbest);
        } else if (++tr->stop.wait >= es->patience) {
            e->stopped = tr->stopped = true;
            if (tr->nbest && tr->stop.epoch) {
                e->restored = tr->stop.epoch;
                if (weights)
                    copy_tensors(tr->best, tr->ckpt, tr->nbest);
            }
        }
    }
}

void nbi_callbacks_epoch(nb_trainer *tr, nb_epoch_metrics *e)
{
    after(tr, e, true);
}

void nbi_callbacks_replay(nb_trainer *tr)
{
    reset(tr);
    for (int i = 0; i < tr->p.epoch; i++)
        after(tr, &tr->hist[i], false);
}

/* ---- in a checkpoint ---------------------------------------------------------------- */

void nbi_callbacks_str(const nb_train_opts *t, int which, char *buf, size_t size)
{
    const nb_early_stopping *es = &t->early_stopping;
    const nb_plateau *pl = &t->plateau;
    if (which == 0 && es->monitor)
        snprintf(buf, size, "%s,patience=%d,min_delta=%.15g,restore_best_weights=%d",
                 nb_monitor_name(es->monitor), es->patience, es->min_delta, es->restore_best);
    else if (which == 1 && pl->monitor)
        snprintf(buf, size, "%s,factor=%.15g,patience=%d,min_delta=%.15g,min_lr=%.15g",
                 nb_monitor_name(pl->monitor), pl->factor, pl->patience, pl->min_delta,
                 pl->min_lr);
    else if (which == 2)
        snprintf(buf, size, "%s", nb_monitor_name(t->keep_best));
    else if (which == 3 && (t->warmup_epochs || t->warmup_steps))
        snprintf(buf, size, t->warmup_epochs ? "epochs=%d" : "steps=%d",
                 t->warmup_epochs ? t->warmup_epochs : t->warmup_steps);
    else
        snprintf(buf, size, "none");
}
