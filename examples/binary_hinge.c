/*
 * binary_hinge.c - the first notebook's binary classifier: class 0 against
 * class 1 (T-shirt/top against Trouser in Fashion-MNIST), labels mapped to
 * -1 and +1, the hinge loss mean(max(0, 1 - y f)) and plain SGD.
 *
 *   binary_hinge [--model models/binary.json] [--data DIR] [--epochs N]
 *                [--limit N] [--min-accuracy A]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla.h>

static int fail(nb_ctx *ctx)
{
    fprintf(stderr, "binary_hinge: %s\n", nb_errmsg(ctx));
    return 1;
}

/* The examples of classes 0 and 1, at most `limit` of them (0: all). */
static int64_t pick(const nb_dataset *ds, int64_t limit, int64_t **idx)
{
    static const int32_t classes[2] = {0, 1};
    *idx = malloc((size_t)nb_dataset_size(ds) * sizeof **idx);
    if (!*idx)
        return 0;
    int64_t n = nb_dataset_select(ds, 2, classes, *idx);
    return limit > 0 && limit < n ? limit : n;
}

/* y = +1 for class 1, -1 for class 0. */
static void targets(const int32_t *labels, int64_t n, nb_tensor *y)
{
    for (int64_t i = 0; i < n; i++)
        nb_set(y, i, labels[i] == 1 ? 1.0 : -1.0);
}

int main(int argc, char **argv)
{
    const char *data = "/usr/share/datasets/fashion-mnist", *model = "models/binary.json";
    int epochs = 1;
    int64_t limit = 0;
    double min_accuracy = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--model") == 0)
            model = argv[i + 1];
        else if (strcmp(argv[i], "--data") == 0)
            data = argv[i + 1];
        else if (strcmp(argv[i], "--epochs") == 0)
            epochs = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--limit") == 0)
            limit = atoll(argv[i + 1]);
        else if (strcmp(argv[i], "--min-accuracy") == 0)
            min_accuracy = atof(argv[i + 1]);
    }
    if (argc % 2 == 0) {
        fprintf(stderr, "usage: binary_hinge [--model M] [--data DIR] [--epochs N] [--limit N] "
                        "[--min-accuracy A]\n");
        return 2;
    }

    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = nb_model_load(ctx, model, NB_F32);
    nb_dataset *train = m ? nb_dataset_load(ctx, data, true) : NULL;
    nb_dataset *test = train ? nb_dataset_load(ctx, data, false) : NULL;
    if (!test)
        return fail(ctx);

    int64_t *tr, *te;
    int64_t ntr = pick(train, limit, &tr), nte = pick(test, limit / 4, &te);
    const int64_t bs = 32;
    int np = 0;
    nb_tensor *params[16];
    for (int i = 0; i < nb_model_num_tensors(m) && np < 16; i++)
        if (!nb_model_is_buffer(m, i))
            params[np++] = nb_model_tensor(m, i);
    nb_optim_opts o = nb_optim_defaults(NB_SGD); /* plain SGD, lr 0.01 */
    nb_optim *opt = nb_optim_new(ctx, &o, np, params);
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){bs, 1, 28, 28});
    nb_tensor *y = nb_tensor_new(ctx, NB_F32, 1, (int64_t[]){bs});
    int32_t labels[32];
    if (!opt || !x || !y || !tr || !te)
        return fail(ctx);

    nb_rng rng;
    nb_rng_seed(&rng, 1);
    for (int epoch = 0; epoch < epochs; epoch++) {
        nb_shuffle(tr, ntr, &rng);
        double sum = 0;
        int64_t steps = 0;
        for (int64_t s = 0; s + bs <= ntr; s += bs, steps++) {
            nb_dataset_batch(train, tr + s, bs, x, labels, 0, 0);
            targets(labels, bs, y);
            nb_tensor *loss = nb_model_loss(ctx, m, nb_model_forward(ctx, m, x), NULL, y);
            if (nb_backward(ctx, loss) != NB_OK)
                return fail(ctx);
            sum += nb_get(loss, 0);
            nb_optim_step(opt);
            nb_optim_zero_grad(opt);
            nb_graph_reset(ctx);
        }
        /* Accuracy: the sign of f against the target. */
        int64_t right = 0, seen = 0;
        nb_set_training(ctx, false);
        nb_set_grad_enabled(ctx, false);
        for (int64_t s = 0; s + bs <= nte; s += bs) {
            nb_dataset_batch(test, te + s, bs, x, labels, 0, 0);
            nb_tensor *f = nb_model_forward(ctx, m, x);
            for (int64_t i = 0; i < bs; i++, seen++)
                right += (nb_get(f, i) > 0) == (labels[i] == 1);
            nb_graph_reset(ctx);
        }
        nb_set_grad_enabled(ctx, true);
        nb_set_training(ctx, true);
        double acc = seen ? (double)right / (double)seen : 0;
        printf("epoch %d: hinge loss %.4f, test accuracy %.4f (%lld images of classes 0 and 1)\n",
               epoch + 1, sum / (double)(steps ? steps : 1), acc, (long long)ntr);
        if (epoch + 1 == epochs && acc < min_accuracy) {
            fprintf(stderr, "binary_hinge: accuracy %.4f is below %.4f\n", acc, min_accuracy);
            return 1;
        }
    }
    free(tr);
    free(te);
    nb_optim_free(opt);
    nb_dataset_free(train);
    nb_dataset_free(test);
    nb_model_free(m);
    nb_ctx_free(ctx);
    return 0;
}
