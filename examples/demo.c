/*
 * demo.c - a small CNN built from ops: forward, backward, and the
 * finite-difference check of every gradient, in float64.
 *
 *   input [2, 1, 8, 8] -> conv2d 4x3x3 pad 1 -> relu -> max_pool2d 2
 *   -> flatten -> linear 64 -> 10 -> cross_entropy
 */
#include <stdio.h>
#include <stdlib.h>

#include <nabla.h>

typedef struct net {
    nb_tensor *x, *conv_w, *conv_b, *fc_w, *fc_b;
    int32_t labels[2];
} net;

static nb_tensor *loss_fn(nb_ctx *ctx, void *ud)
{
    net *n = ud;
    nb_tensor *h = nb_conv2d(ctx, n->x, n->conv_w, n->conv_b,
                             &(nb_conv_opts){.padding = {1, 1}});
    h = nb_relu(ctx, h);
    h = nb_max_pool2d(ctx, h, &(nb_pool_opts){.kernel = {2, 2}});
    h = nb_flatten(ctx, h);
    h = nb_linear(ctx, h, n->fc_w, n->fc_b);
    return nb_cross_entropy(ctx, h, n->labels);
}

static nb_tensor *param(nb_ctx *ctx, const char *name, int ndim, const int64_t *shape)
{
    nb_tensor *t = nb_tensor_new(ctx, NB_F64, ndim, shape);
    if (t) {
        nb_tensor_set_name(t, name);
        nb_requires_grad(t, true);
    }
    return t;
}

int main(void)
{
    nb_ctx *ctx = nb_ctx_new();
    if (!ctx)
        return 1;
    nb_rng rng;
    nb_rng_seed(&rng, 2024);
    net n = {.labels = {3, 7}};
    n.x = param(ctx, "input", 4, (int64_t[]){2, 1, 8, 8});
    n.conv_w = param(ctx, "conv.weight", 4, (int64_t[]){4, 1, 3, 3});
    n.conv_b = param(ctx, "conv.bias", 1, (int64_t[]){4});
    n.fc_w = param(ctx, "fc.weight", 2, (int64_t[]){10, 64});
    n.fc_b = param(ctx, "fc.bias", 1, (int64_t[]){10});
    if (!n.x || !n.conv_w || !n.conv_b || !n.fc_w || !n.fc_b) {
        fprintf(stderr, "demo: %s\n", nb_errmsg(ctx));
        return 1;
    }
    nb_fill_uniform(n.x, &rng, 0, 1);
    nb_init_default(n.conv_w, n.conv_b, &rng);
    nb_init_default(n.fc_w, n.fc_b, &rng);

    nb_tensor *loss = loss_fn(ctx, &n);
    if (nb_backward(ctx, loss) != NB_OK) {
        fprintf(stderr, "demo: %s\n", nb_errmsg(ctx));
        return 1;
    }
    printf("small CNN: input [2, 1, 8, 8], %d ops recorded, loss %.6f\n",
           nb_graph_size(ctx), nb_get(loss, 0));

    nb_tensor *wrt[] = {n.x, n.conv_w, n.conv_b, n.fc_w, n.fc_b};
    nb_gradcheck_report rep[5];
    if (nb_gradcheck(ctx, loss_fn, &n, 5, wrt, NULL, rep) != NB_OK) {
        fprintf(stderr, "demo: %s\n", nb_errmsg(ctx));
        return 1;
    }
    printf("gradient check, float64, central differences (eps 1e-6):\n");
    printf("  %-12s %8s %12s %12s  %s\n", "tensor", "checked", "max abs err", "max rel err", "");
    int bad = 0;
    for (int i = 0; i < 5; i++) {
        printf("  %-12s %8lld %12.3g %12.3g  %s\n", rep[i].tensor->name,
               (long long)rep[i].checked, rep[i].max_abs_err, rep[i].max_rel_err,
               rep[i].ok ? "ok" : "FAILED");
        bad += !rep[i].ok;
    }
    printf("%s\n", bad ? "gradient check FAILED" : "all gradients agree");
    nb_ctx_free(ctx);
    return bad ? 1 : 0;
}
