/*
 * trainer.h - the state of a trainer, shared by the loop (trainer.c) and
 * its checkpoints (checkpoint.c).  Nothing else sees it.
 */
#ifndef NABLA_TRAIN_TRAINER_H
#define NABLA_TRAIN_TRAINER_H

#include "internal.h"

/* Views of the batch buffers for a batch shorter than a full one: made
 * again only when the length changes. */
typedef struct nbi_train_view {
    nb_tensor *x, *target;
} nbi_train_view;

/* A callback's watch of its monitor: the best value and its epoch (from 1,
 * 0 before any), and the epochs since it improved. */
typedef struct nbi_watch {
    double best;
    int epoch;
    int wait;
} nbi_watch;

struct nb_trainer {
    nb_ctx *ctx;
    nb_model *m;                 /* borrowed */
    nb_optim *opt;               /* NULL when it only evaluates */
    nb_train_opts t;
    double lr;                   /* the schedule's starting rate */
    nb_dataset *data;            /* borrowed; only fit reads it */
    int64_t data_shape[3];       /* its examples' [C, H, W] */
    double black[NB_MAX_CHANNELS]; /* a black pixel, normalised: the crop's padding */
    int32_t map[NB_MAX_CLASSES]; /* data label -> model label, -1 left out */
    int nlabels;                 /* model labels: 0 .. nlabels-1 */
    int64_t *examples;           /* usable examples of data: ntrain, then nval */
    int64_t ntrain, nval;
    int64_t *order;              /* this epoch's order of the training examples */
    nb_tensor *x, *target;       /* a full batch: inputs, and targets for hinge */
    nbi_train_view last;         /* for the epoch's last, shorter batch */
    nbi_train_view part;         /* for evaluation's last, shorter batch */
    nbi_train_view mine;         /* for this process's share of a full batch */
    int32_t *labels;             /* the batch's model labels */
    int nparams;
    nb_tensor **params;          /* what the optimizer updates */
    int nckpt;
    nb_tensor **ckpt;            /* what a checkpoint holds: every model tensor,
                                    then the optimizer's state */
    nb_rng shuffle;              /* the generator at the start of this epoch */
    nb_train_progress p;
    /* What a checkpoint records of the run, to refuse another on resume
     * (made by nb_trainer_new, so that saving never reads the data). */
    nb_optim_opts o;             /* the optimizer's settings */
    int64_t limit;               /* nb_trainer_new's */
    uint64_t model_digest;       /* nb_model_digest */
    uint64_t data_digest;        /* of the examples used: labels and pixels */
    int64_t data_size;           /* the data set's examples, all of them */
    char *origin;                /* the data's origin, printable ASCII */
    nb_epoch_metrics *hist;      /* the metrics of epochs [0, p.epoch) */
    int hist_cap;
    /* Processes sharing each batch (nb_trainer_set_comm): shared when
     * there are several, each feeding its nb_batch_share. */
    nb_comm comm;
    bool shared;
    /* The callbacks (callbacks.c): their state follows from the history
     * alone, so a resumed run replays it; the best weights, which do not,
     * are in the checkpoint. */
    nbi_watch keep, stop, plateau;
    double lr_scale;             /* reduce_lr_on_plateau's factors so far */
    bool stopped;                /* early stopping ended the run */
    int nbest;
    nb_tensor **best;            /* restore_best: the best epoch's tensors */
};

/* ---- callbacks.c ------------------------------------------------------------ */

/* Checks t's callbacks against the trainer's validation examples and
 * makes the best weights' copies (which the checkpoint list then holds);
 * NB_ERR_ARG naming the setting, NB_ERR_NOMEM. */
int nbi_callbacks_make(nb_trainer *tr);
void nbi_callbacks_free(nb_trainer *tr);
/* The learning rate of the step tr->p.steps in epoch tr->p.epoch. */
double nbi_callbacks_lr(const nb_trainer *tr);
/* After epoch e (its metrics filled), with the weights at its end: marks
 * e, keeps or restores the best weights, and lowers the rate on a
 * plateau. */
void nbi_callbacks_epoch(nb_trainer *tr, nb_epoch_metrics *e);
/* The state after the history's epochs, as the run had it (after resume). */
void nbi_callbacks_replay(nb_trainer *tr);
/* A callback's settings as a checkpoint records them ("none", or
 * "val_loss,patience=3,..."); which: 0 early stopping, 1 plateau, 2
 * keep_best, 3 warmup. */
void nbi_callbacks_str(const nb_train_opts *t, int which, char *buf, size_t size);

/* The views of the batch buffers for this process's parts of a full
 * batch and of the epoch's last (made again after nb_trainer_set_comm). */
int nbi_trainer_views(nb_trainer *tr);

/* Room in tr->hist for n epochs; NB_ERR_NOMEM. */
int nbi_trainer_reserve(nb_trainer *tr, int n);

/* ---- checkpoint.c's metadata, for the tests and the fuzzer ---------------- */

#define NBI_CKPT_MAX_META 56
/* Room for one value: four reals of up to 24 characters and their commas. */
#define NBI_CKPT_VAL 112

/* A checkpoint's metadata as nb_trainer_save writes it: n pairs keys[i],
 * vals[i], pointing into the struct, the trainer and `history`. */
typedef struct nbi_ckpt_meta {
    int n;
    const char *keys[NBI_CKPT_MAX_META];
    const char *vals[NBI_CKPT_MAX_META];
    char buf[NBI_CKPT_MAX_META][NBI_CKPT_VAL];
    char classes[NB_MAX_CLASSES * 4 + 1];
    char *history;               /* from the context's allocator */
} nbi_ckpt_meta;

/* Fills m with tr's metadata now; NB_ERR_NOMEM.  Free it with
 * nbi_ckpt_meta_free (also after a failure). */
int nbi_ckpt_meta_make(nb_trainer *tr, nbi_ckpt_meta *m);
void nbi_ckpt_meta_free(nb_trainer *tr, nbi_ckpt_meta *m);

/* nb_trainer_resume from an open file; `path` names it in messages. */
int nbi_trainer_resume_file(nb_trainer *tr, nb_safetensors *f, const char *path);

/* The settings a checkpoint records, as it writes them: keys[i] and
 * vals[i] (room for NBI_CKPT_MAX_META of each); returns how many. */
int nbi_ckpt_settings(const nb_trainer *tr, const char **keys, char (*vals)[NBI_CKPT_VAL]);

#endif
