/* PLACEHOLDER: replaced by the real implementation. */
#include "internal.h"

static int placeholder_backward(nb_ctx *ctx, nbi_node *n) { (void)n; return nbi_fail(ctx, NB_ERR_GRAPH, "placeholder"); }
const nbi_op nbi_op_cross_entropy = {"cross_entropy", placeholder_backward};
const nbi_op nbi_op_mse_loss = {"mse_loss", placeholder_backward};
const nbi_op nbi_op_hinge_loss = {"hinge_loss", placeholder_backward};
nb_tensor *nb_cross_entropy(nb_ctx *ctx, nb_tensor *logits, const int32_t *labels) { return nbi_fail_null(ctx, NB_ERR_ARG, "placeholder"); }
nb_tensor *nb_mse_loss(nb_ctx *ctx, nb_tensor *pred, nb_tensor *target) { return nbi_fail_null(ctx, NB_ERR_ARG, "placeholder"); }
nb_tensor *nb_hinge_loss(nb_ctx *ctx, nb_tensor *f, nb_tensor *y) { return nbi_fail_null(ctx, NB_ERR_ARG, "placeholder"); }
