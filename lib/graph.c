/*
 * graph.c - the tape and reverse-mode differentiation.  Ops record nodes
 * here; backward calls the op each node carries.  No op-specific code, and
 * no list of ops, lives in this file.
 */
#include "internal.h"

bool nbi_needs_grad(const nb_ctx *ctx, int nin, nb_tensor *const *in)
{
    if (!ctx->grad_enabled)
        return false;
    for (int i = 0; i < nin; i++)
        if (in[i] && in[i]->requires_grad)
            return true;
    return false;
}

void *nbi_record(nb_ctx *ctx, const nbi_op *op, size_t size, nb_tensor *out, int nin,
                 nb_tensor *const *in)
{
    nbi_node *n = nbi_arena_alloc(ctx, &ctx->step, size);
    if (!n)
        return NULL;
    memset(n, 0, size);
    n->in = nbi_arena_alloc(ctx, &ctx->step, sizeof *n->in * (size_t)(nin ? nin : 1));
    if (!n->in)
        return NULL;
    for (int i = 0; i < nin; i++)
        n->in[i] = in[i];
    n->op = op;
    n->nin = nin;
    n->out = out;
    n->prev = ctx->tape;
    ctx->tape = n;
    ctx->nnodes++;
    out->node_ = n;
    out->requires_grad = true;
    return n;
}

/* t's gradient buffer, made on first use: zeroed, or when `zero` is false
 * and t is a step tensor, left as it is with *fresh set. */
static void *grad_buffer(nb_ctx *ctx, nb_tensor *t, bool zero, bool *fresh)
{
    *fresh = false;
    if (!t->requires_grad)
        return NULL;
    if (!t->grad) {
        bool persistent = t->flags_ & NBI_PERSISTENT;
        nb_tensor *g = persistent ? nb_tensor_new(ctx, t->dtype, t->ndim, t->shape)
                                  : nbi_step_tensor(ctx, t->dtype, t->ndim, t->shape);
        if (!g)
            return NULL;
        if (!persistent && zero)
            memset(g->data, 0, (size_t)g->numel * nb_dtype_size(g->dtype));
        *fresh = !persistent && !zero;
        t->grad = g;
    }
    return t->grad->data;
}

void *nbi_grad(nb_ctx *ctx, nb_tensor *t)
{
    bool fresh;
    return grad_buffer(ctx, t, true, &fresh);
}

void *nbi_grad_fresh(nb_ctx *ctx, nb_tensor *t, bool *fresh)
{
    return grad_buffer(ctx, t, false, fresh);
}

int nb_backward(nb_ctx *ctx, nb_tensor *loss)
{
    if (!loss)
        return ctx->status ? ctx->status
                           : nbi_fail(ctx, NB_ERR_ARG, "backward: loss is NULL");
    char shape[96];
    if (loss->numel != 1)
        return nbi_fail(ctx, NB_ERR_GRAPH, "backward: loss must be a scalar, got shape %s",
                        nb_shape_str(loss, shape, sizeof shape));
    nbi_node *top = loss->node_;
    if (!top)
        return nbi_fail(ctx, NB_ERR_GRAPH,
                        "backward: the loss is not on the graph (no input requires a gradient, "
                        "grad mode was off, or the graph was reset)");
    /* Gradients of step tensors belong to one backward pass: clear them, so
     * a second backward over the same tape recomputes rather than adds. */
    for (nbi_node *n = top; n; n = n->prev) {
        n->out->grad = NULL;
        for (int i = 0; i < n->nin; i++)
            if (!(n->in[i]->flags_ & NBI_PERSISTENT) && !n->in[i]->node_)
                n->in[i]->grad = NULL;
    }
    if (!nbi_grad(ctx, loss))
        return ctx->status;
    nb_set(loss->grad, 0, 1.0);
    for (nbi_node *n = top; n; n = n->prev) {
        if (!n->out->grad)
            continue; /* the loss does not depend on this node */
        int rc = n->op->backward(ctx, n);
        if (rc != NB_OK)
            return rc;
    }
    return NB_OK;
}

void nb_graph_reset(nb_ctx *ctx)
{
    /* Only step tensors point at nodes, and they go with the arena. */
    ctx->tape = NULL;
    ctx->nnodes = 0;
    nbi_arena_rewind(ctx, &ctx->step);
}

void nb_zero_grad(nb_ctx *ctx)
{
    for (nb_tensor *t = ctx->persistent.next_; t != &ctx->persistent; t = t->next_)
        if (t->grad)
            memset(t->grad->data, 0, (size_t)t->grad->numel * nb_dtype_size(t->grad->dtype));
}

int nb_graph_size(const nb_ctx *ctx)
{
    return ctx->nnodes;
}

bool nbi_check_inputs(nb_ctx *ctx, const char *op, int n, nb_tensor *const *in)
{
    for (int i = 0; i < n; i++)
        if (!in[i]) {
            if (!ctx->status)
                nbi_fail(ctx, NB_ERR_ARG, "%s: input %d is NULL", op, i);
            return false;
        }
    for (int i = 1; i < n; i++)
        if (in[i]->dtype != in[0]->dtype) {
            nbi_fail(ctx, NB_ERR_ARG, "%s: input %d is %s but input 0 is %s", op, i,
                     nb_dtype_name(in[i]->dtype), nb_dtype_name(in[0]->dtype));
            return false;
        }
    return true;
}
