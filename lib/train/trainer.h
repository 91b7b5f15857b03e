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

struct nb_trainer {
    nb_ctx *ctx;
    nb_model *m;                 /* borrowed */
    nb_optim *opt;               /* NULL when it only evaluates */
    nb_train_opts t;
    double lr;                   /* the schedule's starting rate */
    nb_dataset *data;            /* borrowed; only fit reads it */
    int32_t map[NB_MAX_CLASSES]; /* data label -> model label, -1 left out */
    int nlabels;                 /* model labels: 0 .. nlabels-1 */
    int64_t *examples;           /* usable examples of data: ntrain, then nval */
    int64_t ntrain, nval;
    int64_t *order;              /* this epoch's order of the training examples */
    nb_tensor *x, *target;       /* a full batch: inputs, and targets for hinge */
    nbi_train_view last;         /* for the epoch's last, shorter batch */
    nbi_train_view part;         /* for evaluation's last, shorter batch */
    int32_t *labels;             /* the batch's model labels */
    int nparams;
    nb_tensor **params;          /* what the optimizer updates */
    int nckpt;
    nb_tensor **ckpt;            /* what a checkpoint holds: every model tensor,
                                    then the optimizer's state */
    nb_rng shuffle;              /* the generator at the start of this epoch */
    nb_train_progress p;
};

#endif
