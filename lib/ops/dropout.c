/* PLACEHOLDER: replaced by the real implementation. */
#include "internal.h"

static int placeholder_backward(nb_ctx *ctx, nbi_node *n) { (void)n; return nbi_fail(ctx, NB_ERR_GRAPH, "placeholder"); }
const nbi_op nbi_op_dropout = {"dropout", placeholder_backward};
nb_tensor *nb_dropout(nb_ctx *ctx, nb_tensor *x, double p, nb_rng *rng) { return nbi_fail_null(ctx, NB_ERR_ARG, "placeholder"); }
nb_tensor *nb_dropout2d(nb_ctx *ctx, nb_tensor *x, double p, nb_rng *rng) { return nbi_fail_null(ctx, NB_ERR_ARG, "placeholder"); }
