/*
 * model.c - a model once loaded: running it (forward through the layer
 * kinds' functions, the loss), its weights in safetensors files, the
 * queries tools and tests make of it, and freeing it.  Knows neither JSON
 * nor any layer kind: load.c builds the model, layers.c runs each layer.
 */
#include "model.h"

#include <inttypes.h>
#include <stdio.h>

const char *const nbi_model_sections[NBI_NSECTIONS] = {"optimizer", "training"};

void nb_model_free(nb_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->ntensors; i++)
        nb_tensor_free(m->tensors[i]);
    nbi_model_block *b = m->blocks;
    while (b) {
        nbi_model_block *next = b->next;
        nbi_free(m->ctx, b);
        b = next;
    }
    nbi_free(m->ctx, m);
}

void nb_model_init(nb_model *m, nb_rng *rng)
{
    for (int i = 0; !m->shapes_only && i < m->nlayers; i++) {
        nbi_layer *l = &m->layers[i];
        if (l->kind->init)
            l->kind->init(l->t, rng);
        nbi_init_apply(l, rng);
    }
}

/* ---- queries ----------------------------------------------------------------------- */

const char *nb_model_name(const nb_model *m)
{
    return m->name;
}

nb_dtype nb_model_dtype(const nb_model *m)
{
    return m->dtype;
}

static int copy_shape(const nbi_shape *s, int64_t *shape)
{
    if (shape)
        for (int i = 0; i < s->ndim; i++)
            shape[i] = s->d[i];
    return s->ndim;
}

int nb_model_input_shape(const nb_model *m, int64_t *shape)
{
    return copy_shape(&m->input, shape);
}

int nb_model_output_shape(const nb_model *m, int64_t *shape)
{
    return copy_shape(&m->layers[m->output].out, shape);
}

nb_loss_kind nb_model_loss_kind(const nb_model *m)
{
    return m->loss;
}

int nb_model_num_tensors(const nb_model *m)
{
    return m->ntensors;
}

nb_tensor *nb_model_tensor(const nb_model *m, int i)
{
    return i >= 0 && i < m->ntensors ? m->tensors[i] : NULL;
}

bool nb_model_is_buffer(const nb_model *m, int i)
{
    return i >= 0 && i < m->ntensors && m->buffer[i];
}

nb_tensor *nb_model_find(const nb_model *m, const char *name)
{
    for (int i = 0; name && i < m->ntensors; i++)
        if (strcmp(m->tensors[i]->name, name) == 0)
            return m->tensors[i];
    return NULL;
}

/* trainable: the elements of tensors that require a gradient; otherwise
 * those of the rest (the buffers, and any parameter the caller froze). */
int64_t nb_model_num_params(const nb_model *m, bool trainable)
{
    int64_t n = 0;
    for (int i = 0; m->shapes_only && i < m->nlayers; i++) /* by the slots' shapes */
        for (int k = 0; k < NBI_NSLOTS; k++)
            if (m->layers[i].slot[k].ndim &&
                ((k == NBI_WEIGHT || k == NBI_BIAS) && !m->layers[i].frozen) == trainable)
                n += nbi_shape_elems(&m->layers[i].slot[k]);
    for (int i = 0; i < m->ntensors; i++)
        if (m->tensors[i]->requires_grad == trainable)
            n += m->tensors[i]->numel;
    return n;
}

int nb_model_freeze(nb_model *m, const char *layer, bool stats)
{
    int i = 0;
    while (layer && i < m->nlayers && strcmp(m->layers[i].name, layer) != 0)
        i++;
    if (!layer || i == m->nlayers)
        return nbi_fail(m->ctx, NB_ERR_ARG, "model \"%s\": no layer named \"%s\" to freeze",
                        m->name, layer ? layer : "(null)");
    nbi_layer *l = &m->layers[i];
    bool bn = strcmp(l->kind->type, "batch_norm") == 0;
    if (stats && !bn)
        return nbi_fail(m->ctx, NB_ERR_ARG, "model \"%s\": layer %s is a %s: only a batch_norm "
                        "has statistics to freeze", m->name, l->name, l->kind->type);
    l->frozen = true;
    if (stats)
        l->conf.bn.freeze_stats = true;
    for (int k = 0; k < NBI_NSLOTS; k++)
        if (l->t[k])
            nb_requires_grad(l->t[k], false);
    return NB_OK;
}

int nb_model_num_layers(const nb_model *m)
{
    return m->nlayers;
}

int nb_model_output_layer(const nb_model *m)
{
    return m->output;
}

int nb_model_layer(const nb_model *m, int i, nb_layer_info *info)
{
    if (!info)
        return nbi_fail(m->ctx, NB_ERR_ARG, "model \"%s\": info is NULL", m->name);
    if (i < 0 || i >= m->nlayers)
        return nbi_fail(m->ctx, NB_ERR_ARG, "model \"%s\": no layer %d (it has %d)", m->name, i,
                        m->nlayers);
    const nbi_layer *l = &m->layers[i];
    memset(info, 0, sizeof *info);
    info->name = l->name;
    info->type = l->kind->type;
    info->activation = l->act ? l->act->type : NULL;
    info->trainable = !l->frozen;
    info->init = l->init_text;
    info->settings = l->settings;
    info->ndim = copy_shape(&l->out, info->shape);
    for (int k = 0; k < NBI_NSLOTS; k++) {
        if (!l->slot[k].ndim)
            continue;
        if (k == NBI_WEIGHT || k == NBI_BIAS)
            info->params += nbi_shape_elems(&l->slot[k]);
        else
            info->buffers += nbi_shape_elems(&l->slot[k]);
    }
    info->ninputs = l->nin;
    for (int k = 0; k < l->nin; k++)
        info->inputs[k] = l->in_names[k];
    return NB_OK;
}

const char *nb_model_section(const nb_model *m, const char *key)
{
    for (int i = 0; key && i < NBI_NSECTIONS; i++)
        if (strcmp(key, nbi_model_sections[i]) == 0)
            return m->sections[i];
    return NULL;
}

/* Read and checked at load (load.c, settings.c). */
int nb_model_train_opts(nb_ctx *ctx, const nb_model *m, nb_train_opts *train,
                        nb_optim_opts *optim)
{
    if (!m)
        return ctx ? nbi_fail(ctx, NB_ERR_ARG, "model_train_opts: model is NULL") : NB_ERR_ARG;
    if (train)
        *train = m->train;
    if (optim)
        *optim = m->optim;
    return NB_OK;
}

nb_rng *nb_model_rng(nb_model *m)
{
    return &m->rng;
}

/* ---- running ---------------------------------------------------------------------- */

/* What a model loaded with NB_MODEL_SHAPES_ONLY cannot do. */
static void *shapes_only(const nb_model *m, const char *what)
{
    return nbi_fail_null(m->ctx, NB_ERR_ARG, "model \"%s\": loaded without its tensors "
                         "(NB_MODEL_SHAPES_ONLY): no %s", m->name, what);
}

/* Prefixes the op's message with the model and the layer. */
static nb_tensor *layer_failed(nb_ctx *ctx, const nb_model *m, const nbi_layer *l)
{
    char msg[sizeof ctx->msg];
    memcpy(msg, ctx->msg, sizeof msg);
    int code = ctx->status ? ctx->status : NB_ERR_ARG;
    return nbi_fail_null(ctx, code, "model \"%s\": layer \"%s\" (%s): %s", m->name, l->name,
                         l->kind->type, msg);
}

nb_tensor *nb_model_forward(nb_ctx *ctx, nb_model *m, nb_tensor *x)
{
    if (!ctx)
        return NULL;
    if (!m)
        return nbi_fail_null(ctx, NB_ERR_ARG, "model_forward: model is NULL");
    if (!x)
        return NULL; /* keep the message of the op that failed */
    if (ctx != m->ctx)
        return nbi_fail_null(ctx, NB_ERR_ARG, "model \"%s\": forward in a context other than "
                             "the model's", m->name);
    if (m->shapes_only)
        return shapes_only(m, "forward");
    char xs[96], want[96];
    bool match = x->ndim == m->input.ndim + 1;
    for (int i = 0; match && i < m->input.ndim; i++)
        match = x->shape[i + 1] == m->input.d[i];
    if (!match) {
        size_t n = (size_t)snprintf(want, sizeof want, "[N");
        for (int i = 0; i < m->input.ndim && n < sizeof want; i++)
            n += (size_t)snprintf(want + n, sizeof want - n, ", %" PRId64, m->input.d[i]);
        if (n < sizeof want)
            snprintf(want + n, sizeof want - n, "]");
        return nbi_fail_null(ctx, NB_ERR_ARG, "model \"%s\": input %s does not match %s", m->name,
                             nb_shape_str(x, xs, sizeof xs), want);
    }
    if (x->dtype != m->dtype)
        return nbi_fail_null(ctx, NB_ERR_ARG, "model \"%s\": input is %s, the model is %s",
                             m->name, nb_dtype_name(x->dtype), nb_dtype_name(m->dtype));
    /* Refused before the step allocates what it cannot hold. */
    if (nbi_model_step_check(ctx, m, x->shape[0]) != NB_OK)
        return NULL;
    for (int i = 0; i < m->nlayers; i++)
        m->acts[i] = NULL;
    for (int i = 0; i < m->nlayers; i++) {
        const nbi_layer *l = &m->layers[i];
        nb_tensor *in[NBI_MAX_INPUTS];
        for (int k = 0; k < l->nin; k++)
            in[k] = l->in[k] < 0 ? x : m->acts[l->in[k]];
        nb_tensor *y = l->kind->forward(ctx, &l->conf, l->t, l->nin, in, &m->rng);
        if (y && l->act && !l->act_fused)
            y = l->act->forward(ctx, &l->act_conf, NULL, 1, &y, &m->rng);
        if (!y)
            return layer_failed(ctx, m, l);
        m->acts[i] = y;
    }
    return m->acts[m->output];
}

nb_tensor *nb_model_activation(const nb_model *m, int i)
{
    return i >= 0 && i < m->nlayers ? m->acts[i] : NULL;
}

nb_tensor *nb_model_loss(nb_ctx *ctx, nb_model *m, nb_tensor *output, const int32_t *labels,
                         nb_tensor *target)
{
    if (!ctx)
        return NULL;
    if (!m)
        return nbi_fail_null(ctx, NB_ERR_ARG, "model_loss: model is NULL");
    if (!output)
        return NULL;
    char s[96], t[96];
    switch (m->loss) {
    case NB_LOSS_NONE:
        return nbi_fail_null(ctx, NB_ERR_ARG, "model \"%s\": has no loss", m->name);
    case NB_LOSS_CROSS_ENTROPY:
        if (!labels)
            return nbi_fail_null(ctx, NB_ERR_ARG, "model \"%s\": cross_entropy needs labels",
                                 m->name);
        return nb_cross_entropy(ctx, output, labels);
    case NB_LOSS_MSE:
        if (!target)
            return nbi_fail_null(ctx, NB_ERR_ARG, "model \"%s\": mse needs a target", m->name);
        return nb_mse_loss(ctx, output, target);
    case NB_LOSS_HINGE:
        if (!target)
            return nbi_fail_null(ctx, NB_ERR_ARG, "model \"%s\": hinge needs a target", m->name);
        if (output->ndim < 1 || output->numel != output->shape[0] ||
            target->numel != output->shape[0])
            return nbi_fail_null(ctx, NB_ERR_ARG,
                                 "model \"%s\": hinge needs one score and one target per "
                                 "example: output %s, target %s", m->name,
                                 nb_shape_str(output, s, sizeof s),
                                 nb_shape_str(target, t, sizeof t));
        return nb_hinge_loss(ctx, output, target);
    }
    return nbi_fail_null(ctx, NB_ERR_ARG, "model \"%s\": unknown loss", m->name);
}

/* ---- weights --------------------------------------------------------------------- */

/* Strict: every tensor of the model and nothing else, but PyTorch's
 * "<bn>.num_batches_tracked", which the reader ignores. */
int nb_model_load_weights(nb_model *m, const char *path)
{
    if (m->shapes_only) {
        shapes_only(m, "weights to load");
        return NB_ERR_ARG;
    }
    nb_safetensors *f = nb_safetensors_open(m->ctx, path);
    if (!f)
        return nb_error(m->ctx);
    int rc = nb_safetensors_read(m->ctx, f, m->ntensors, m->tensors, true);
    nb_safetensors_close(f);
    return rc;
}

int nb_model_save_weights(nb_model *m, const char *path)
{
    if (m->shapes_only) {
        shapes_only(m, "weights to save");
        return NB_ERR_ARG;
    }
    return nb_safetensors_save(m->ctx, path, m->ntensors, m->tensors);
}
