/* PLACEHOLDER: replaced by the real implementation. */
#include "internal.h"

static int placeholder_backward(nb_ctx *ctx, nbi_node *n) { (void)n; return nbi_fail(ctx, NB_ERR_GRAPH, "placeholder"); }
const nbi_op nbi_op_linear = {"linear", placeholder_backward};
const nbi_op nbi_op_matmul = {"matmul", placeholder_backward};
nb_tensor *nb_linear(nb_ctx *ctx, nb_tensor *x, nb_tensor *w, nb_tensor *b) { return nbi_fail_null(ctx, NB_ERR_ARG, "placeholder"); }
nb_tensor *nb_matmul(nb_ctx *ctx, nb_tensor *a, nb_tensor *b) { return nbi_fail_null(ctx, NB_ERR_ARG, "placeholder"); }
