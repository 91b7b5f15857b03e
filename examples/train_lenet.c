/*
 * train_lenet.c - the LeNet variant of models/lenet.json trained on
 * Fashion-MNIST with a loop of its own: forward, loss, backward, optimizer
 * step, reset.
 *
 *   train_lenet [--model models/lenet.json] [--data DIR] [--epochs N]
 *               [--limit N] [--min-accuracy A]
 *
 * --limit trains on the first N training images and tests on the first N/4
 * test images; --min-accuracy makes the exit status 1 below A (make check
 * runs it this way on a small subset).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla.h>

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

static int fail(nb_ctx *ctx)
{
    fprintf(stderr, "train_lenet: %s\n", nb_errmsg(ctx));
    return 1;
}

/* Accuracy of the model over examples [0, n) of ds, in eval mode. */
static double evaluate(nb_ctx *ctx, nb_model *m, nb_dataset *ds, int64_t n, nb_tensor *x,
                       int64_t *idx, int32_t *labels)
{
    int64_t batch = x->shape[0], correct = 0;
    bool was_training = nb_set_training(ctx, false);
    bool grad = nb_set_grad_enabled(ctx, false);
    for (int64_t start = 0; start + batch <= n; start += batch) {
        for (int64_t i = 0; i < batch; i++)
            idx[i] = start + i;
        nb_dataset_batch(ds, idx, batch, x, labels, 0, 0);
        nb_tensor *y = nb_model_forward(ctx, m, x);
        if (!y)
            break;
        for (int64_t i = 0; i < batch; i++) {
            int64_t c = y->shape[1], best = 0;
            for (int64_t j = 1; j < c; j++)
                if (nb_get(y, i * c + j) > nb_get(y, i * c + best))
                    best = j;
            correct += best == labels[i];
        }
        nb_graph_reset(ctx);
    }
    nb_set_grad_enabled(ctx, grad);
    nb_set_training(ctx, was_training);
    return (double)correct / (double)(n - n % batch);
}

int main(int argc, char **argv)
{
    const char *model_path = "models/lenet.json", *data = DEFAULT_DATA;
    int epochs = 1;
    int64_t limit = 0;
    double min_accuracy = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--model") == 0 && v)
            model_path = argv[++i];
        else if (strcmp(a, "--data") == 0 && v)
            data = argv[++i];
        else if (strcmp(a, "--epochs") == 0 && v)
            epochs = atoi(argv[++i]);
        else if (strcmp(a, "--limit") == 0 && v)
            limit = atoll(argv[++i]);
        else if (strcmp(a, "--min-accuracy") == 0 && v)
            min_accuracy = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: train_lenet [--model M] [--data DIR] [--epochs N] "
                            "[--limit N] [--min-accuracy A]\n");
            return 2;
        }
    }

    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = nb_model_load(ctx, model_path, NB_F32);
    if (!m)
        return fail(ctx);
    nb_dataset *train = nb_dataset_load(ctx, data, true);
    nb_dataset *test = train ? nb_dataset_load(ctx, data, false) : NULL;
    if (!test)
        return fail(ctx);

    /* The model file's settings: SGD with lr 0.1, batch 64. */
    nb_train_opts topts;
    nb_optim_opts oopts;
    if (nb_model_train_opts(ctx, m, &topts, &oopts) != NB_OK)
        return fail(ctx);
    int64_t ntrain = nb_dataset_size(train), ntest = nb_dataset_size(test);
    if (limit > 0 && limit < ntrain) {
        ntrain = limit;
        ntest = limit / 4 < ntest ? limit / 4 : ntest;
    }

    /* The parameters and the optimizer. */
    int np = 0;
    nb_tensor *params[64];
    for (int i = 0; i < nb_model_num_tensors(m) && np < 64; i++)
        if (!nb_model_is_buffer(m, i))
            params[np++] = nb_model_tensor(m, i);
    nb_optim *opt = nb_optim_new(ctx, &oopts, np, params);
    if (!opt)
        return fail(ctx);

    /* One batch tensor, reused by every step. */
    int64_t in[NB_MAX_DIMS], bs = topts.batch_size;
    int nd = nb_model_input_shape(m, in);
    int64_t shape[NB_MAX_DIMS] = {bs};
    memcpy(shape + 1, in, (size_t)nd * sizeof *in);
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, nd + 1, shape);
    int64_t *order = malloc((size_t)ntrain * sizeof *order);
    int64_t *idx = malloc((size_t)bs * sizeof *idx);
    int32_t *labels = malloc((size_t)bs * sizeof *labels);
    if (!x || !order || !idx || !labels)
        return fail(ctx);
    for (int64_t i = 0; i < ntrain; i++)
        order[i] = i;

    nb_rng rng;
    nb_rng_seed(&rng, topts.seed);
    for (int epoch = 0; epoch < epochs; epoch++) {
        nb_shuffle(order, ntrain, &rng);
        double loss_sum = 0;
        int64_t steps = 0;
        for (int64_t start = 0; start + bs <= ntrain; start += bs, steps++) {
            nb_dataset_batch(train, order + start, bs, x, labels, 0, 0);
            nb_tensor *y = nb_model_forward(ctx, m, x);
            nb_tensor *loss = nb_model_loss(ctx, m, y, labels, NULL);
            if (nb_backward(ctx, loss) != NB_OK)
                return fail(ctx);
            loss_sum += nb_get(loss, 0);
            nb_optim_step(opt);
            nb_optim_zero_grad(opt);
            nb_graph_reset(ctx);
        }
        double acc = evaluate(ctx, m, test, ntest, x, idx, labels);
        printf("epoch %d: train loss %.4f, test accuracy %.4f (%lld training images)\n",
               epoch + 1, loss_sum / (double)steps, acc, (long long)ntrain);
        if (epoch + 1 == epochs && acc < min_accuracy) {
            fprintf(stderr, "train_lenet: accuracy %.4f is below %.4f\n", acc, min_accuracy);
            return 1;
        }
    }
    free(order);
    free(idx);
    free(labels);
    nb_optim_free(opt);
    nb_dataset_free(train);
    nb_dataset_free(test);
    nb_model_free(m);
    nb_ctx_free(ctx);
    return 0;
}
