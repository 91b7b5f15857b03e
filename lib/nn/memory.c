/*
 * memory.c - what a model needs in memory, estimated from its shapes
 * before anything is allocated: its tensors, their gradients and an
 * optimizer's state, and a batch's input, activations and their
 * gradients.  The shapes come from the loader (a model loaded with
 * NB_MODEL_SHAPES_ONLY has no tensors and is estimated all the same), the
 * bytes an op keeps beyond its output from each layer kind's keeps row
 * (layers.c).  Knows no layer kind and no file.
 */
#include "model.h"

#include <inttypes.h>
#include <stdio.h>

/* Saturating, so that an absurd model gives UINT64_MAX, not a wrap. */
static uint64_t add(uint64_t a, uint64_t b)
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

static uint64_t mul(uint64_t a, uint64_t b)
{
    return a && b > UINT64_MAX / a ? UINT64_MAX : a * b;
}

/* Bytes one example takes in the step: every layer's output (none for a
 * view), its activation's when the layer does not fuse it, and what its
 * op keeps; with grads, the gradients of those outputs instead: of the
 * layers from the first with parameters on, as the input needs none. */
static uint64_t step_bytes(const nb_model *m, uint64_t es, bool record, bool grads)
{
    uint64_t n = 0;
    bool below = grads; /* no layer with parameters yet */
    for (int i = 0; i < m->nlayers; i++) {
        const nbi_layer *l = &m->layers[i];
        below = below && !l->slot[NBI_WEIGHT].ndim && !l->slot[NBI_BIAS].ndim;
        if (below)
            continue;
        uint64_t out = mul((uint64_t)nbi_shape_elems(&l->out), es);
        uint64_t tensors = (grads || !(l->kind->flags & NBI_VIEW)) + (l->act && !l->act_fused);
        n = add(n, mul(tensors, out));
        if (!grads && l->kind->keeps)
            n = add(n, l->kind->keeps(l, es, record));
    }
    /* cross_entropy keeps a log-sum-exp and a label per example. */
    if (!grads && m->loss == NB_LOSS_CROSS_ENTROPY)
        n = add(n, sizeof(double) + sizeof(int32_t));
    return n;
}

/* The step's bytes for batches of b, with the tensors' headers and the
 * tape's nodes, about a kilobyte per layer. */
static uint64_t step_total(const nb_model *m, uint64_t es, bool record, bool grads, uint64_t b)
{
    uint64_t headers = (uint64_t)m->nlayers * (grads ? 512 : 1024);
    return add(mul(step_bytes(m, es, record, grads), b), headers);
}

/* Elements of the parameters (weights and biases; those that require a
 * gradient when the tensors exist) and of every slot. */
static void count(const nb_model *m, uint64_t *trainable, uint64_t *all)
{
    *trainable = *all = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const nbi_layer *l = &m->layers[i];
        for (int k = 0; k < NBI_NSLOTS; k++) {
            if (!l->slot[k].ndim)
                continue;
            uint64_t e = (uint64_t)nbi_shape_elems(&l->slot[k]);
            *all = add(*all, e);
            bool param = l->t[k] ? l->t[k]->requires_grad
                                 : (k == NBI_WEIGHT || k == NBI_BIAS) && !l->frozen;
            if (param)
                *trainable = add(*trainable, e);
        }
    }
}

int nb_model_memory(const nb_model *m, int64_t batch, const nb_optim_opts *optim,
                    nb_memory_report *r)
{
    if (!m || !r)
        return m ? nbi_fail(m->ctx, NB_ERR_ARG, "model_memory: report is NULL") : NB_ERR_ARG;
    if (batch < 1)
        return nbi_fail(m->ctx, NB_ERR_ARG, "model_memory: batch %" PRId64 " (at least 1)", batch);
    int buffers = 0;
    if (optim && (buffers = nb_optim_buffers(optim)) < 0)
        return nbi_fail(m->ctx, NB_ERR_ARG, "model_memory: unknown optimizer kind %d",
                        (int)optim->kind);
    uint64_t es = nb_dtype_size(m->dtype), b = (uint64_t)batch, trainable, all;
    bool train = optim != NULL;
    count(m, &trainable, &all);
    memset(r, 0, sizeof *r);
    r->batch = batch;
    r->optim_buffers = buffers;
    r->params = mul(all, es);
    r->input = mul(mul((uint64_t)nbi_shape_elems(&m->input), es), b);
    r->activations = step_total(m, es, train, false, b);
    if (train) {
        r->grads = mul(trainable, es);
        r->optim = mul(r->grads, (uint64_t)buffers);
        r->act_grads = step_total(m, es, true, true, b);
    }
    uint64_t parts[] = {r->params, r->grads, r->optim, r->input, r->activations, r->act_grads};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        r->total = add(r->total, parts[i]);
    return NB_OK;
}

int nb_model_check_memory(nb_model *m, int64_t batch, const nb_optim_opts *optim)
{
    nb_memory_report r;
    int rc = nb_model_memory(m, batch, optim, &r);
    if (rc != NB_OK)
        return rc;
    if (nbi_mem_fits(m->ctx, r.total))
        return NB_OK;
    char how[64];
    if (optim)
        snprintf(how, sizeof how, "training with %s", nb_optim_kind_name(optim->kind));
    else
        snprintf(how, sizeof how, "inference");
    return nbi_mem_refuse(m->ctx, r.total, "model \"%s\": %s on batches of %" PRId64, m->name,
                          how, batch);
}

int nbi_model_step_check(nb_ctx *ctx, const nb_model *m, int64_t batch)
{
    uint64_t es = nb_dtype_size(m->dtype), b = (uint64_t)batch;
    bool record = nb_grad_enabled(ctx);
    uint64_t step = step_total(m, es, record, false, b);
    if (record)
        step = add(step, step_total(m, es, true, true, b));
    /* The arena holds that much already: this step allocates nothing. */
    if (step <= nb_step_capacity(ctx))
        return NB_OK;
    uint64_t held = nbi_persistent_bytes(ctx), grads = 0;
    for (int i = 0; record && i < m->ntensors; i++)
        if (m->tensors[i]->requires_grad && !m->tensors[i]->grad)
            grads = add(grads, mul((uint64_t)m->tensors[i]->numel, es));
    uint64_t need = add(add(held, grads), step);
    if (nbi_mem_fits(ctx, need))
        return NB_OK;
    char s[32], h[32];
    return nbi_mem_refuse(ctx, need, "model \"%s\": a batch of %" PRId64 " (%s for the step's "
                          "activations%s, %s of tensors and gradients besides)", m->name, batch,
                          nbi_bytes_str(step, s, sizeof s), record ? " and their gradients" : "",
                          nbi_bytes_str(add(held, grads), h, sizeof h));
}
