/* PLACEHOLDER: replaced by the real implementation. */
#include "internal.h"

static int placeholder_backward(nb_ctx *ctx, nbi_node *n) { (void)n; return nbi_fail(ctx, NB_ERR_GRAPH, "placeholder"); }
const nbi_op nbi_op_batch_norm = {"batch_norm", placeholder_backward};
nb_tensor *nb_batch_norm(nb_ctx *ctx, nb_tensor *x, nb_tensor *weight, nb_tensor *bias, nb_tensor *running_mean, nb_tensor *running_var, double momentum, double eps) { return nbi_fail_null(ctx, NB_ERR_ARG, "placeholder"); }
