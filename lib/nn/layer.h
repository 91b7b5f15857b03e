/*
 * layer.h - the layer-kind interface: what a layer is once read (its
 * settings, inputs, shapes and tensors), the table of kinds layers.c owns
 * (each kind's fields, check, shape inference, forward and init), and the
 * count of one example's elements.  The loader (load.c) fills nbi_layer
 * and calls a kind's functions; the model (model.c) runs them.  layers.c
 * knows nothing of JSON or of how layers connect; the loader and the model
 * know no layer kind.
 */
#ifndef NABLA_NN_LAYER_H
#define NABLA_NN_LAYER_H

#include "internal.h"
#include "field.h"

#include <stddef.h>

/* Inputs a node may read (nb_layer_info has room for this many names). */
#define NBI_MAX_INPUTS 8
/* Elements one example's activation, or one parameter, may hold: more is
 * taken for a mistake in the file rather than a network. */
#define NBI_MAX_ELEMS ((int64_t)1 << 40)
/* Shapes (nbi_shape: here one example's, batch excluded), nbi_mul and
 * NBI_WHY_SIZE come from internal.h, with the ops' shape rules. */

/* ---- layer settings ------------------------------------------------------
 * Each kind's field rows (field.h) write into its own member of the union. */

typedef struct nbi_conv_conf {  /* conv2d, conv1d (index 0 only) */
    int in, out;                /* in 0: inferred */
    int kernel[2], stride[2];
    nbi_pad padding;
    bool bias;
    bool relu;                  /* "activation": "relu", done by the conv op */
    int groups, dilation[2];    /* 1 unless given */
} nbi_conv_conf;

typedef struct nbi_convt_conf { /* conv_transpose2d */
    int in, out;                /* in 0: inferred */
    int kernel[2], stride[2], padding[2], output_padding[2], dilation[2];
    int groups;
    bool bias;
} nbi_convt_conf;

typedef struct nbi_pool_conf {  /* max_pool2d, avg_pool2d */
    int kernel[2], stride[2], padding[2]; /* stride 0: the kernel */
} nbi_pool_conf;

typedef struct nbi_linear_conf {
    int in, out;                /* in 0: inferred */
    bool bias;
} nbi_linear_conf;

typedef struct nbi_bn_conf {
    int num_features;           /* 0: inferred */
    double eps, momentum;
    bool affine;
    bool freeze_stats;          /* normalise by the running statistics, and keep them */
} nbi_bn_conf;

typedef struct nbi_upsample_conf {
    int mode;                /* nb_upsample_mode: the word's position */
    int size[2];             /* 0: not given */
    double scale_factor[2];
    int nscale;              /* numbers given for scale_factor: 0 (none), 1 (both), 2 */
    bool align_corners;
} nbi_upsample_conf;
typedef struct nbi_ln_conf {   /* layer_norm */
    int32_t normalized_shape[NB_MAX_DIMS - 1];
    int ndims;                  /* its length; 0: the whole example */
    double eps;
    bool elementwise_affine, bias;
} nbi_ln_conf;

typedef struct nbi_gn_conf {   /* group_norm */
    int num_groups, num_channels; /* num_channels 0: inferred */
    double eps;
    bool affine;
} nbi_gn_conf;

typedef union nbi_layer_conf {
    nbi_conv_conf conv;
    nbi_convt_conf convt;
    nbi_pool_conf pool;
    nbi_linear_conf linear;
    nbi_bn_conf bn;
    nbi_upsample_conf upsample;
    nbi_ln_conf ln;
    nbi_gn_conf gn;
    double p;     /* dropout, dropout2d */
    double slope; /* leaky_relu */
    double alpha; /* elu */
    int dim;      /* softmax, of [N, ...] */
    int approximate; /* gelu: 0 "none" (the exact form), 1 "tanh" */
    struct {
        double beta, threshold;
    } softplus;
} nbi_layer_conf;

/* ---- initialisers ("init") ------------------------------------------------
 * A layer's "init" names an initialiser for its weight and one for its
 * bias (init_spec.c reads, checks and draws them); DEFAULT is the layer's
 * own, which its kind's init draws first in any case. */

typedef enum nbi_init_kind {
    NBI_INIT_DEFAULT, NBI_INIT_KAIMING_UNIFORM, NBI_INIT_KAIMING_NORMAL, NBI_INIT_XAVIER_UNIFORM,
    NBI_INIT_XAVIER_NORMAL, NBI_INIT_NORMAL, NBI_INIT_UNIFORM, NBI_INIT_TRUNC_NORMAL,
    NBI_INIT_ZEROS, NBI_INIT_ONES, NBI_INIT_CONSTANT, NBI_NINITS
} nbi_init_kind;

/* One slot's initialiser and its arguments (torch.nn.init's names);
 * read by the initialiser's field rows, so those it does not take keep
 * their defaults. */
typedef struct nbi_init {
    int kind;         /* nbi_init_kind */
    double a, b;      /* kaiming: a, the negative slope; uniform, trunc_normal: bounds */
    double mean, std; /* normal, trunc_normal */
    double gain;      /* xavier */
    double val;       /* constant */
    int mode;         /* kaiming: nb_fan_mode */
    int nonlinearity; /* kaiming: nb_nonlinearity */
} nbi_init;

/* ---- layers ------------------------------------------------------------- */

/* Parameter and buffer slots, in PyTorch's state_dict order. */
enum { NBI_WEIGHT, NBI_BIAS, NBI_RUNNING_MEAN, NBI_RUNNING_VAR, NBI_NSLOTS };
extern const char *const nbi_slot_names[NBI_NSLOTS];

typedef struct nbi_layer_kind nbi_layer_kind;

typedef struct nbi_layer {
    const nbi_layer_kind *kind;
    const char *name;
    int index;                 /* position in the file's list */
    nbi_layer_conf conf;
    const nbi_layer_kind *act; /* the "activation" field, or NULL */
    nbi_layer_conf act_conf;   /* its defaults */
    bool act_fused;            /* act runs inside the layer's own op */
    bool frozen;               /* "trainable": false: no gradient, no update */
    int nin;
    int in[NBI_MAX_INPUTS];    /* layers read, by position; -1: the input */
    const char *in_names[NBI_MAX_INPUTS];
    nbi_shape out;
    /* Declared by infer: the shape of each slot used, or ndim 0. */
    nbi_shape slot[NBI_NSLOTS];
    nb_tensor *t[NBI_NSLOTS];  /* made by the loader from slot[] */
    nbi_init init[2];          /* "init": for NBI_WEIGHT and NBI_BIAS */
    bool init_given;           /* the file has "init" */
    const char *init_text;     /* "init" as canonical JSON; NULL when every slot is DEFAULT */
    const char *settings;      /* nbi_fields_text of conf (and act_conf), or NULL: none */
} nbi_layer;

enum {
    NBI_MULTI = 1u << 0,      /* reads several inputs: graph form only */
    NBI_ACTIVATION = 1u << 1, /* may be named by an "activation" field */
    NBI_TAKES_ACT = 1u << 2,  /* has an "activation" field */
    NBI_FUSES_RELU = 1u << 3, /* "activation": "relu" runs inside its op */
    NBI_VIEW = 1u << 4,       /* its output shares its input's data (flatten) */
};

/* One row per layer type.  check and infer return 0, or -1 after writing
 * the reason (one line, NBI_WHY_SIZE bytes) into why. */
struct nbi_layer_kind {
    const char *type;
    const nbi_field *fields; /* ended by a row with a NULL name */
    unsigned flags;
    int min_inputs;
    /* The settings alone, once read (may be NULL). */
    int (*check)(nbi_layer *l, char *why);
    /* From the shapes of the l->nin inputs: l->out and l->slot[]. */
    int (*infer)(nbi_layer *l, const nbi_shape *in, char *why);
    /* p: the slots' tensors (NULL where unused); x: nin inputs [N, ...]. */
    nb_tensor *(*forward)(nb_ctx *ctx, const nbi_layer_conf *c, nb_tensor *const *p,
                          int nin, nb_tensor *const *x, nb_rng *rng);
    /* Draws the parameters again and resets the buffers (may be NULL). */
    void (*init)(nb_tensor *const *p, nb_rng *rng);
    /* For nb_model_memory's estimate: bytes per example its forward keeps
     * in the step arena beyond its output (saved columns, indices, masks,
     * extra outputs), elements being es bytes and record saying whether
     * the op records for backward (may be NULL: nothing more). */
    uint64_t (*keeps)(const nbi_layer *l, uint64_t es, bool record);
};

/* The table, ended by a zeroed row. */
extern const nbi_layer_kind nbi_layer_kinds[];

/* ---- one example's shape ------------------------------------------------ */

/* Its elements, saturating as nbi_mul does. */
static inline int64_t nbi_shape_elems(const nbi_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n = nbi_mul(n, s->d[i]);
    return n;
}

/* ---- "init" (init_spec.c; json.h reads and checks it) ------------------- */

/* Draws the slots "init" names again, weight then bias (after the kind's
 * init). */
void nbi_init_apply(const nbi_layer *l, nb_rng *rng);
/* Its name, as in a model file. */
extern const char *const nbi_init_names[NBI_NINITS];

#endif
