/*
 * fit_lenet.c - models/lenet.json trained on Fashion-MNIST by nb_trainer,
 * as Keras's fit would: the model file's settings, a callback printing
 * each epoch, a checkpoint after each, and the test accuracy at the end.
 * train_lenet.c writes the same loop by hand.
 *
 *   fit_lenet [--model models/lenet.json] [--data DIR] [--epochs N]
 *             [--limit N] [--checkpoint FILE] [--min-accuracy A]
 *
 * --limit trains on the first N training images and tests on the first N/4
 * test images; --min-accuracy makes the exit status 1 below A (make check
 * runs it this way on a small subset).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nabla.h>

typedef struct run {
    int epochs;
    const char *checkpoint; /* NULL: none */
} run;

/* After each epoch: a line, and a checkpoint, which nb_trainer_resume
 * reads back to go on from there.  Returning non-zero stops fit: a failed
 * save's status becomes fit's. */
static int on_epoch(nb_trainer *tr, const nb_epoch_metrics *e, void *ud)
{
    const run *r = ud;
    printf("epoch %d/%d: loss %.4f, accuracy %.4f - val loss %.4f, val accuracy %.4f"
           " - %.1f s\n", e->epoch, r->epochs, e->loss, e->accuracy, e->val_loss,
           e->val_accuracy, e->seconds);
    return r->checkpoint ? nb_trainer_save(tr, r->checkpoint) : 0;
}

static int fail(nb_ctx *ctx)
{
    fprintf(stderr, "fit_lenet: %s\n", nb_errmsg(ctx));
    return 1;
}

int main(int argc, char **argv)
{
    const char *model = "models/lenet.json", *data = "/usr/share/datasets/fashion-mnist";
    run r = {0, NULL};
    int64_t limit = 0;
    double min_accuracy = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v && strcmp(a, "--model") == 0)
            model = argv[++i];
        else if (v && strcmp(a, "--data") == 0)
            data = argv[++i];
        else if (v && strcmp(a, "--epochs") == 0)
            r.epochs = atoi(argv[++i]);
        else if (v && strcmp(a, "--limit") == 0)
            limit = atoll(argv[++i]);
        else if (v && strcmp(a, "--checkpoint") == 0)
            r.checkpoint = argv[++i];
        else if (v && strcmp(a, "--min-accuracy") == 0)
            min_accuracy = atof(argv[++i]);
        else {
            fprintf(stderr, "usage: fit_lenet [--model M] [--data DIR] [--epochs N] [--limit N] "
                            "[--checkpoint FILE] [--min-accuracy A]\n");
            return 2;
        }
    }

    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = nb_model_load(ctx, model, NB_F32);
    nb_dataset *train = m ? nb_dataset_load(ctx, data, true) : NULL;
    nb_dataset *test = train ? nb_dataset_load(ctx, data, false) : NULL;
    if (!test)
        return fail(ctx);

    /* The model file's settings, a fifth of the examples to validate, and
     * the first weights drawn from the seed. */
    nb_train_opts t;
    nb_optim_opts o;
    if (nb_model_train_opts(ctx, m, &t, &o) != NB_OK)
        return fail(ctx);
    if (r.epochs > 0)
        t.epochs = r.epochs;
    r.epochs = t.epochs;
    t.validation_split = 0.2;
    nb_rng rng;
    nb_rng_seed(&rng, t.seed);
    nb_model_init(m, &rng);

    nb_trainer *tr = nb_trainer_new(ctx, m, train, limit, &t, &o);
    if (!tr)
        return fail(ctx);
    printf("training %s on %lld images, %lld for validation\n", nb_model_name(m),
           (long long)nb_trainer_num_train(tr), (long long)nb_trainer_num_val(tr));
    nb_trainer_callbacks cb = {NULL, on_epoch, &r};
    if (nb_trainer_fit(tr, &cb) != NB_OK)
        return fail(ctx);

    nb_eval_result res;
    if (nb_trainer_evaluate(tr, test, limit / 4, &res, NULL) != NB_OK)
        return fail(ctx);
    printf("test loss %.4f, accuracy %.4f (%lld images)\n", res.loss, res.accuracy,
           (long long)res.examples);
    int status = res.accuracy < min_accuracy;
    if (status)
        fprintf(stderr, "fit_lenet: accuracy %.4f is below %.4f\n", res.accuracy, min_accuracy);
    nb_trainer_free(tr);
    nb_dataset_free(train);
    nb_dataset_free(test);
    nb_model_free(m);
    nb_ctx_free(ctx);
    return status;
}
