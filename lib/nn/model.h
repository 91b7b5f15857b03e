/*
 * model.h - what a model holds: shared by the loader (load.c),
 * which builds one from a file, and model.c, which runs, queries and frees
 * it.  The layer kinds (layers.c) and the JSON reader (json.c) never see
 * it.
 */
#ifndef NABLA_NN_MODEL_H
#define NABLA_NN_MODEL_H

#include "layer.h"

#include <stddef.h>

/* The model's memory: blocks from the context's allocator, each linked to
 * the one made before it, freed together by nb_model_free. */
typedef union nbi_model_block {
    union nbi_model_block *next;
    max_align_t align;
} nbi_model_block;

/* The sections a file may carry for other tools, kept as JSON text. */
enum { NBI_SEC_OPTIMIZER, NBI_SEC_TRAINING, NBI_NSECTIONS };
extern const char *const nbi_model_sections[NBI_NSECTIONS]; /* their keys */

struct nb_model {
    nb_ctx *ctx;
    nb_dtype dtype;
    const char *name;
    nbi_shape input;
    int nlayers;
    nbi_layer *layers;  /* in the order they run */
    int output;         /* the position of the output layer */
    nb_loss_kind loss;
    int ntensors;
    nb_tensor **tensors;
    bool *buffer;       /* per tensor */
    nb_tensor **acts;   /* per layer, from the last forward */
    const char *sections[NBI_NSECTIONS];
    nb_train_opts train; /* the "training" section over the defaults */
    nb_optim_opts optim; /* the "optimizer" section over its type's defaults */
    nb_rng rng;
    nbi_model_block *blocks;
    bool shapes_only;   /* NB_MODEL_SHAPES_ONLY: no tensors were made */
};

/* Before a forward of `batch` examples that would grow the step arena:
 * NB_OK when the context's persistent tensors, the parameters' gradients
 * still to be made and the step's estimate (nb_model_memory's
 * activations, and their gradients when recording) fit its memory limit,
 * else NB_ERR_NOMEM naming the model and the batch (memory.c). */
int nbi_model_step_check(nb_ctx *ctx, const nb_model *m, int64_t batch);

#endif
