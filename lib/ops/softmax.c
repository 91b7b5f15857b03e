/* PLACEHOLDER: replaced by the real implementation. */
#include "internal.h"

static int placeholder_backward(nb_ctx *ctx, nbi_node *n) { (void)n; return nbi_fail(ctx, NB_ERR_GRAPH, "placeholder"); }
const nbi_op nbi_op_softmax = {"softmax", placeholder_backward};
const nbi_op nbi_op_log_softmax = {"log_softmax", placeholder_backward};
nb_tensor *nb_softmax(nb_ctx *ctx, nb_tensor *x, int dim) { return nbi_fail_null(ctx, NB_ERR_ARG, "placeholder"); }
nb_tensor *nb_log_softmax(nb_ctx *ctx, nb_tensor *x, int dim) { return nbi_fail_null(ctx, NB_ERR_ARG, "placeholder"); }
