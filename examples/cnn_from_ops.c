/*
 * cnn_from_ops.c - a CNN written with ops in C, no model file: its
 * parameters are tensors we make, its forward pass a function of ours, and
 * backward is the graph's.  Trained with Adam on Fashion-MNIST.
 *
 *   conv 8 3x3 pad 1 -> relu -> max-pool 2 -> conv 16 3x3 pad 1 -> relu
 *   -> max-pool 2 -> flatten -> linear 784 -> 10 -> cross-entropy
 *
 *   cnn_from_ops [--data DIR] [--epochs N] [--limit N] [--min-accuracy A]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla.h>

typedef struct cnn {
    nb_tensor *c1w, *c1b, *c2w, *c2b, *fw, *fb;
} cnn;

static nb_tensor *param(nb_ctx *ctx, int ndim, const int64_t *shape)
{
    nb_tensor *t = nb_tensor_new(ctx, NB_F32, ndim, shape);
    nb_requires_grad(t, true);
    return t;
}

/* The logits [N, 10] of images x [N, 1, 28, 28]. */
static nb_tensor *forward(nb_ctx *ctx, const cnn *n, nb_tensor *x)
{
    const nb_conv_opts pad1 = {.padding = {1, 1}};
    const nb_pool_opts pool2 = {.kernel = {2, 2}};
    nb_tensor *h = nb_relu(ctx, nb_conv2d(ctx, x, n->c1w, n->c1b, &pad1));
    h = nb_max_pool2d(ctx, h, &pool2);
    h = nb_relu(ctx, nb_conv2d(ctx, h, n->c2w, n->c2b, &pad1));
    h = nb_max_pool2d(ctx, h, &pool2);
    return nb_linear(ctx, nb_flatten(ctx, h), n->fw, n->fb);
}

int main(int argc, char **argv)
{
    const char *data = "/usr/share/datasets/fashion-mnist";
    int epochs = 1;
    int64_t limit = 0;
    double min_accuracy = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--data") == 0)
            data = argv[i + 1];
        else if (strcmp(argv[i], "--epochs") == 0)
            epochs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--limit") == 0)
            limit = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--min-accuracy") == 0)
            min_accuracy = atof(argv[i + 1]);
    }
    if (argc % 2 == 0) {
        fprintf(stderr, "usage: cnn_from_ops [--data DIR] [--epochs N] [--limit N] "
                        "[--min-accuracy A]\n");
        return 2;
    }

    nb_ctx *ctx = nb_ctx_new();
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    cnn n = {
        param(ctx, 4, (int64_t[]){8, 1, 3, 3}), param(ctx, 1, (int64_t[]){8}),
        param(ctx, 4, (int64_t[]){16, 8, 3, 3}), param(ctx, 1, (int64_t[]){16}),
        param(ctx, 2, (int64_t[]){10, 784}), param(ctx, 1, (int64_t[]){10}),
    };
    nb_init_default(n.c1w, n.c1b, &rng);
    nb_init_default(n.c2w, n.c2b, &rng);
    nb_init_default(n.fw, n.fb, &rng);
    nb_tensor *params[] = {n.c1w, n.c1b, n.c2w, n.c2b, n.fw, n.fb};
    nb_optim_opts o = nb_optim_defaults(NB_ADAM);
    nb_optim *opt = nb_optim_new(ctx, &o, 6, params);

    nb_dataset *train = nb_dataset_load(ctx, data, true);
    nb_dataset *test = train ? nb_dataset_load(ctx, data, false) : NULL;
    const int64_t bs = 64;
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){bs, 1, 28, 28});
    if (!opt || !test || !x) {
        fprintf(stderr, "cnn_from_ops: %s\n", nb_errmsg(ctx));
        return 1;
    }
    int64_t ntr = nb_dataset_size(train), nte = nb_dataset_size(test);
    if (limit > 0 && limit < ntr) {
        ntr = limit;
        nte = limit / 4 < nte ? limit / 4 : nte;
    }
    int64_t *order = malloc((size_t)ntr * sizeof *order), idx[64];
    int32_t labels[64];
    if (!order)
        return 1;
    for (int64_t i = 0; i < ntr; i++)
        order[i] = i;

    for (int epoch = 0; epoch < epochs; epoch++) {
        nb_shuffle(order, ntr, &rng);
        double sum = 0;
        int64_t steps = 0;
        for (int64_t s = 0; s + bs <= ntr; s += bs, steps++) {
            nb_dataset_batch(train, order + s, bs, x, labels, 0, 0);
            nb_tensor *loss = nb_cross_entropy(ctx, forward(ctx, &n, x), labels);
            if (nb_backward(ctx, loss) != NB_OK) {
                fprintf(stderr, "cnn_from_ops: %s\n", nb_errmsg(ctx));
                return 1;
            }
            sum += nb_get(loss, 0);
            nb_optim_step(opt);
            nb_optim_zero_grad(opt);
            nb_graph_reset(ctx);
        }
        int64_t right = 0, seen = 0;
        bool grad = nb_set_grad_enabled(ctx, false);
        for (int64_t s = 0; s + bs <= nte; s += bs) {
            for (int64_t i = 0; i < bs; i++)
                idx[i] = s + i;
            nb_dataset_batch(test, idx, bs, x, labels, 0, 0);
            nb_tensor *y = forward(ctx, &n, x);
            for (int64_t i = 0; i < bs; i++, seen++) {
                int best = 0;
                for (int j = 1; j < 10; j++)
                    if (nb_get(y, i * 10 + j) > nb_get(y, i * 10 + best))
                        best = j;
                right += best == labels[i];
            }
            nb_graph_reset(ctx);
        }
        nb_set_grad_enabled(ctx, grad);
        double acc = seen ? (double)right / (double)seen : 0;
        printf("epoch %d: train loss %.4f, test accuracy %.4f\n", epoch + 1,
               sum / (double)(steps ? steps : 1), acc);
        if (epoch + 1 == epochs && acc < min_accuracy) {
            fprintf(stderr, "cnn_from_ops: accuracy %.4f is below %.4f\n", acc, min_accuracy);
            return 1;
        }
    }
    free(order);
    nb_optim_free(opt);
    nb_dataset_free(train);
    nb_dataset_free(test);
    nb_ctx_free(ctx);
    return 0;
}
