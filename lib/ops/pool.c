/* PLACEHOLDER: replaced by the real implementation. */
#include "internal.h"

static int placeholder_backward(nb_ctx *ctx, nbi_node *n) { (void)n; return nbi_fail(ctx, NB_ERR_GRAPH, "placeholder"); }
const nbi_op nbi_op_max_pool2d = {"max_pool2d", placeholder_backward};
const nbi_op nbi_op_avg_pool2d = {"avg_pool2d", placeholder_backward};
const nbi_op nbi_op_global_avg_pool2d = {"global_avg_pool2d", placeholder_backward};
nb_tensor *nb_max_pool2d(nb_ctx *ctx, nb_tensor *x, const nb_pool_opts *opts) { return nbi_fail_null(ctx, NB_ERR_ARG, "placeholder"); }
nb_tensor *nb_avg_pool2d(nb_ctx *ctx, nb_tensor *x, const nb_pool_opts *opts) { return nbi_fail_null(ctx, NB_ERR_ARG, "placeholder"); }
nb_tensor *nb_global_avg_pool2d(nb_ctx *ctx, nb_tensor *x) { return nbi_fail_null(ctx, NB_ERR_ARG, "placeholder"); }
