/*
 * train.h - what `nabla train` and `nabla eval` share: the data set split
 * into training, validation and test indices, batches drawn for the
 * model's loss, one training step, and evaluation.
 */
#ifndef NABLA_TRAIN_H
#define NABLA_TRAIN_H

#include "cli.h"

typedef struct epoch_metrics {
    double loss, acc, val_loss, val_acc, lr, seconds;
} epoch_metrics;

typedef struct step_result {
    double loss;     /* the batch's mean loss */
    int64_t correct; /* examples classified right */
    int64_t n;       /* examples in the batch */
} step_result;

typedef struct trainer {
    nb_ctx *ctx;
    nb_model *m;
    nb_optim *opt;              /* NULL when only evaluating */
    nb_train_opts t;
    nb_dataset *train_ds, *test_ds; /* test_ds NULL while dropped */
    const char *dir;            /* where the data came from */
    int64_t limit;              /* as given to trainer_open */
    int64_t *train, *val, *test; /* example indices */
    int64_t ntrain, nval, ntest;
    int64_t *order;             /* this epoch's order of `train` */
    int32_t map[256];           /* data set label -> model label, -1 dropped */
    int nlabels;                /* model labels: 0 .. nlabels-1 */
    nb_tensor *x, *target;      /* a full batch: inputs, and targets for hinge */
    nb_tensor *x_part, *target_part; /* views of a shorter batch */
    int32_t *labels;
    int nparams;
    nb_tensor **params;
    nb_tensor **ckpt;           /* parameters, buffers and optimizer state */
    bool fashion;               /* the data is Fashion-MNIST: its class names */
    char why[512];              /* why a step failed */
} trainer;

/* Loads the data (`data` as for --data; NULL for Fashion-MNIST), filters
 * and maps its classes, splits off the validation set, makes the batch
 * tensors and, with optim, the optimizer.  limit > 0 keeps the first
 * `limit` training and limit/4 test examples.  Prints errors; returns an
 * exit code. */
int trainer_open(trainer *tr, const nb_train_opts *t, const nb_optim_opts *optim,
                 const char *data, int64_t limit);
void trainer_close(trainer *tr);
/* Frees the test images while training runs, so that only the training
 * set is in memory; trainer_reload_test loads and checks them again (the
 * same examples), returning an exit code. */
void trainer_drop_test(trainer *tr);
int trainer_reload_test(trainer *tr);

/* Lays the training examples out in a new random order. */
void trainer_shuffle(trainer *tr, nb_rng *rng);
/* Forward, loss, backward and update on batch `b` of the epoch's order.
 * On a non-finite loss or gradient, fills tr->why and returns non-zero. */
int trainer_step(trainer *tr, int64_t b, step_result *s);
/* Mean loss and accuracy over n examples, in eval mode; confusion, if not
 * NULL, is nlabels x nlabels counts [true][predicted]. */
int trainer_evaluate(trainer *tr, const nb_dataset *ds, const int64_t *idx, int64_t n,
                     double *loss, double *acc, int64_t *confusion);
/* False for losses without classes (mse). */
bool trainer_has_accuracy(const trainer *tr);
/* Fills tr->ckpt with what a checkpoint holds; returns how many. */
int trainer_checkpoint_tensors(trainer *tr);

/* The data directory --data names: NULL or "fashion-mnist" is Debian's. */
const char *trainer_data_dir(const char *data);
/* A model label's class name (a PNG folder's, or Fashion-MNIST's), or
 * NULL. */
const char *trainer_class_name(const trainer *tr, int label);

#endif
