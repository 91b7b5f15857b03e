/*
 * mpi_lenet.c - the LeNet loop of train_lenet.c, data-parallel: under
 * mpirun each process feeds its share of every batch, and every process
 * ends with the same weights as one process would.
 *
 *   mpirun -np 2 mpi_lenet [--model models/lenet.json] [--data DIR]
 *                          [--epochs N] [--limit N] [--min-accuracy A]
 *                          [--save FILE]
 *
 * Run alone (or in a build without MPI) it is one process of one.  Every
 * process reads the whole data set and draws the same order from the same
 * seed; nb_batch_share says which examples of a batch are its own, and
 * nb_ctx_set_batch tells the ops, whose sums (and so the loss and the
 * gradients) are then the whole batch's on every process.  Rank 0 prints
 * and writes --save.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla.h>

#define DEFAULT_DATA "/usr/share/datasets/fashion-mnist"

static int fail(nb_ctx *ctx)
{
    fprintf(stderr, "mpi_lenet: rank %d: %s\n", nb_dist_rank(), nb_errmsg(ctx));
    nb_dist_abort(1); /* the others may wait for this process in an exchange */
    return 1;
}

/* This process's examples of the batch order[start, start + n): their
 * count, copied into idx; an empty share feeds one example, which counts
 * for nothing (*empty). */
static int64_t share(const int64_t *order, int64_t start, int64_t n, int64_t *idx, bool *empty)
{
    int64_t first, count;
    nb_batch_share(n, nb_dist_rank(), nb_dist_size(), &first, &count);
    *empty = count == 0;
    if (*empty) {
        first = 0;
        count = 1;
    }
    memcpy(idx, order + start + first, (size_t)count * sizeof *idx);
    return count;
}

/* x's first n examples as a tensor of their own (the share of a batch). */
static nb_tensor *rows(nb_ctx *ctx, nb_tensor *x, int64_t n, nb_tensor **view)
{
    if (n == x->shape[0])
        return x;
    if (!*view || (*view)->shape[0] != n) {
        int64_t shape[NB_MAX_DIMS];
        memcpy(shape, x->shape, sizeof shape);
        shape[0] = n;
        nb_tensor_free(*view);
        *view = nb_tensor_wrap(ctx, x->dtype, x->ndim, shape, x->data);
    }
    return *view;
}

static int64_t right_answers(const nb_tensor *y, const int32_t *labels, int64_t n)
{
    int64_t correct = 0, c = y->shape[1];
    for (int64_t i = 0; i < n; i++) {
        int64_t best = 0;
        for (int64_t j = 1; j < c; j++)
            if (nb_get(y, i * c + j) > nb_get(y, i * c + best))
                best = j;
        correct += best == labels[i];
    }
    return correct;
}

/* Accuracy over the first n test examples, in batches shared as
 * training's; the counts added over the processes. */
static double evaluate(nb_ctx *ctx, const nb_comm *comm, nb_model *m, nb_dataset *ds, int64_t n,
                       nb_tensor *x, nb_tensor **view, const int64_t *order, int64_t *idx,
                       int32_t *labels)
{
    int64_t batch = x->shape[0], correct = 0;
    bool was_training = nb_set_training(ctx, false);
    bool grad = nb_set_grad_enabled(ctx, false);
    for (int64_t start = 0; start < n; start += batch) {
        int64_t total = start + batch <= n ? batch : n - start;
        bool empty;
        int64_t k = share(order, start, total, idx, &empty);
        nb_ctx_set_batch(ctx, total, comm);
        nb_tensor *in = rows(ctx, x, k, view);
        if (!in || nb_dataset_batch(ds, idx, k, in, labels, 0, 0) != NB_OK)
            return -1;
        nb_tensor *y = nb_model_forward(ctx, m, in);
        if (!y)
            return -1;
        correct += empty ? 0 : right_answers(y, labels, k);
        nb_graph_reset(ctx);
    }
    nb_set_grad_enabled(ctx, grad);
    nb_set_training(ctx, was_training);
    if (nb_comm_sum_i64(ctx, comm, &correct, 1) != NB_OK)
        return -1;
    return (double)correct / (double)n;
}

typedef struct args {
    const char *model, *data, *save;
    int epochs;
    int64_t limit;
    double min_accuracy;
} args;

static int parse(int argc, char **argv, args *a)
{
    *a = (args){"models/lenet.json", DEFAULT_DATA, NULL, 1, 0, 0};
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            return -1;
        if (strcmp(o, "--model") == 0)
            a->model = v;
        else if (strcmp(o, "--data") == 0)
            a->data = v;
        else if (strcmp(o, "--save") == 0)
            a->save = v;
        else if (strcmp(o, "--epochs") == 0)
            a->epochs = atoi(v);
        else if (strcmp(o, "--limit") == 0)
            a->limit = atoll(v);
        else if (strcmp(o, "--min-accuracy") == 0)
            a->min_accuracy = atof(v);
        else
            return -1;
        i++;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (nb_dist_init(&argc, &argv) != NB_OK) {
        fprintf(stderr, "mpi_lenet: MPI would not start\n");
        return 1;
    }
    int rank = nb_dist_rank();
    nb_comm comm = nb_dist_comm();
    args a;
    if (parse(argc, argv, &a) != 0) {
        if (rank == 0)
            fprintf(stderr, "usage: mpi_lenet [--model M] [--data DIR] [--epochs N] [--limit N] "
                            "[--min-accuracy A] [--save FILE]\n");
        nb_dist_finalize();
        return 2;
    }

    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = nb_model_load(ctx, a.model, NB_F32);
    nb_dataset *train = m ? nb_dataset_load(ctx, a.data, true) : NULL;
    nb_dataset *test = train ? nb_dataset_load(ctx, a.data, false) : NULL;
    nb_train_opts topts;
    nb_optim_opts oopts;
    if (!test || nb_model_train_opts(ctx, m, &topts, &oopts) != NB_OK)
        return fail(ctx);
    int64_t ntrain = nb_dataset_size(train), ntest = nb_dataset_size(test);
    if (a.limit > 0 && a.limit < ntrain) {
        ntrain = a.limit;
        ntest = a.limit / 4 < ntest ? a.limit / 4 : ntest;
    }

    /* The same first weights on every process: the same seed. */
    nb_rng rng;
    nb_rng_seed(&rng, topts.seed);
    nb_model_init(m, &rng);
    int np = 0;
    nb_tensor *params[64];
    for (int i = 0; i < nb_model_num_tensors(m) && np < 64; i++)
        if (!nb_model_is_buffer(m, i))
            params[np++] = nb_model_tensor(m, i);
    nb_optim *opt = nb_optim_new(ctx, &oopts, np, params);
    if (!opt)
        return fail(ctx);

    /* One batch buffer; a process fills its share's rows. */
    int64_t in[NB_MAX_DIMS], bs = topts.batch_size;
    int nd = nb_model_input_shape(m, in);
    int64_t shape[NB_MAX_DIMS] = {bs};
    memcpy(shape + 1, in, (size_t)nd * sizeof *in);
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, nd + 1, shape), *view = NULL;
    int64_t *order = malloc((size_t)(ntrain > ntest ? ntrain : ntest) * sizeof *order);
    int64_t *idx = malloc((size_t)bs * sizeof *idx);
    int32_t *labels = malloc((size_t)bs * sizeof *labels);
    if (!x || !order || !idx || !labels)
        return fail(ctx);

    for (int epoch = 0; epoch < a.epochs; epoch++) {
        for (int64_t i = 0; i < ntrain; i++)
            order[i] = i;
        nb_shuffle(order, ntrain, &rng); /* the same order on every process */
        double loss_sum = 0;
        int64_t steps = 0;
        for (int64_t start = 0; start + bs <= ntrain; start += bs, steps++) {
            bool empty;
            int64_t k = share(order, start, bs, idx, &empty);
            nb_ctx_set_batch(ctx, bs, &comm);
            nb_tensor *xs = rows(ctx, x, k, &view);
            if (!xs || nb_dataset_batch(train, idx, k, xs, labels, 0, 0) != NB_OK)
                return fail(ctx);
            nb_tensor *y = nb_model_forward(ctx, m, xs);
            nb_tensor *loss = nb_model_loss(ctx, m, y, labels, NULL);
            if (nb_backward(ctx, loss) != NB_OK)
                return fail(ctx);
            loss_sum += nb_get(loss, 0); /* the whole batch's mean */
            nb_optim_step(opt);
            nb_optim_zero_grad(opt);
            nb_graph_reset(ctx);
        }
        for (int64_t i = 0; i < ntest; i++)
            order[i] = i;
        double acc = evaluate(ctx, &comm, m, test, ntest, x, &view, order, idx, labels);
        if (acc < 0)
            return fail(ctx);
        if (rank == 0)
            printf("epoch %d: train loss %.4f, test accuracy %.4f (%lld training images, %d "
                   "process%s)\n", epoch + 1, loss_sum / (double)steps, acc, (long long)ntrain,
                   comm.size, comm.size == 1 ? "" : "es");
        if (epoch + 1 == a.epochs && acc < a.min_accuracy) {
            if (rank == 0)
                fprintf(stderr, "mpi_lenet: accuracy %.4f is below %.4f\n", acc, a.min_accuracy);
            nb_dist_finalize();
            return 1;
        }
    }
    nb_ctx_set_batch(ctx, 0, NULL);
    if (rank == 0 && a.save && nb_model_save_weights(m, a.save) != NB_OK)
        return fail(ctx);
    free(order);
    free(idx);
    free(labels);
    nb_optim_free(opt);
    nb_dataset_free(train);
    nb_dataset_free(test);
    nb_model_free(m);
    nb_ctx_free(ctx);
    nb_dist_finalize();
    return 0;
}
