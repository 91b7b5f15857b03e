/* PLACEHOLDER: replaced by the real implementation. */
#include "internal.h"

static int placeholder_backward(nb_ctx *ctx, nbi_node *n) { (void)n; return nbi_fail(ctx, NB_ERR_GRAPH, "placeholder"); }
const nbi_op nbi_op_reshape = {"reshape", placeholder_backward};
const nbi_op nbi_op_concat = {"concat", placeholder_backward};
nb_tensor *nb_flatten(nb_ctx *ctx, nb_tensor *x) { return nbi_fail_null(ctx, NB_ERR_ARG, "placeholder"); }
nb_tensor *nb_reshape(nb_ctx *ctx, nb_tensor *x, int ndim, const int64_t *shape) { return nbi_fail_null(ctx, NB_ERR_ARG, "placeholder"); }
nb_tensor *nb_concat(nb_ctx *ctx, int n, nb_tensor *const *xs, int dim) { return nbi_fail_null(ctx, NB_ERR_ARG, "placeholder"); }
