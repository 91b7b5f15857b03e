/*
 * cmd_eval.c - `nabla eval` (test loss, accuracy, per-class accuracy and
 * the confusion matrix) and `nabla predict` (the class of PNG images).
 */
#include "cli.h"

#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- eval ------------------------------------------------------------------- */

static cli_opt eval_opts[] = {
    {"weights", "W.safetensors", "the trained weights (required)", NULL},
    {"data", "D", "the data, as for nabla train (default: fashion-mnist)", NULL},
    {"batch-size", "N", "examples per forward pass (default 256)", NULL},
    {"threads", "N", "threads to run on (default: NABLA_NUM_THREADS, else every core)",
     NULL},
    {"target", "WHAT", "label or input, as for nabla train (default: the model file's\n"
                       "\"target\", else label): with input, the loss is the mean squared\n"
                       "error of the reconstructions and there is no accuracy", NULL},
    {"json", NULL, "print one JSON object instead of the text, for scripts (its fields:\n"
                   "docs/cli.md)", NULL},
    {0},
};

static const cli_spec eval_spec = {
    .usage = "MODEL.json --weights W.safetensors [options]",
    .about = "Evaluates trained weights on the data set's test images: prints the loss,\n"
             "the accuracy, the accuracy of each class and the confusion matrix (rows:\n"
             "true class, columns: predicted class).  With --json the same numbers are\n"
             "one JSON object on one line.  An autoencoder (target input) gets its\n"
             "loss alone: the reconstructions' mean squared error.",
    .min_pos = 1,
    .max_pos = 1,
    .opts = eval_opts,
};

static void print_confusion(const cli_classes *names, int n, const int64_t *cm)
{
    printf("\nper class:\n");
    for (int i = 0; i < n; i++) {
        int64_t total = 0;
        for (int j = 0; j < n; j++)
            total += cm[i * n + j];
        const char *name = cli_classes_name(names, i);
        printf("  %2d %-12s %.4f  (%" PRId64 " images)\n", i, name ? name : "",
               total ? (double)cm[i * n + i] / (double)total : 0.0, total);
    }
    printf("\nconfusion matrix (rows: true, columns: predicted):\n     ");
    for (int j = 0; j < n; j++)
        printf("%6d", j);
    printf("\n");
    for (int i = 0; i < n; i++) {
        printf("  %2d ", i);
        for (int j = 0; j < n; j++)
            printf("%6" PRId64, cm[i * n + j]);
        printf("\n");
    }
}

/* What print_confusion and evaluate print, as one JSON object (docs/cli.md). */
void cli_eval_json(cJSON *to, const cli_eval *e, bool *ok)
{
    int n = e->n;
    cli_json_int(to, "examples", e->r.examples, ok);
    cli_json_double(to, "loss", e->r.loss, ok);
    cli_json_str(to, "target", nb_target_name(e->target), ok);
    if (e->target == NB_TARGET_INPUT) /* no accuracy, no classes */
        return;
    cli_json_double(to, "accuracy", e->r.accuracy, ok);
    cli_json_int(to, "classes", n, ok);
    cJSON *per_class = cJSON_CreateArray(), *confusion = cJSON_CreateArray();
    cli_json_item(to, "per_class", per_class, ok);
    cli_json_item(to, "confusion", confusion, ok);
    for (int i = 0; i < n; i++) {
        int64_t total = 0;
        cJSON *row = cJSON_CreateArray();
        cli_json_item(confusion, NULL, row, ok);
        for (int j = 0; j < n; j++) {
            total += e->cm[i * n + j];
            cli_json_int(row, NULL, e->cm[i * n + j], ok);
        }
        cJSON *c = cJSON_CreateObject();
        cli_json_item(per_class, NULL, c, ok);
        cli_json_int(c, "class", i, ok);
        cli_json_str(c, "label", cli_classes_name(&e->names, i), ok);
        cli_json_double(c, "accuracy", total ? (double)e->cm[i * n + i] / (double)total : 0.0, ok);
        cli_json_int(c, "count", total, ok);
    }
}

int cli_eval_run(nb_ctx *ctx, nb_model *m, const nb_train_opts *t, const char *dir,
                 const char *weights, cli_eval *e)
{
    memset(e, 0, sizeof *e);
    nb_dataset *ds = nb_dataset_load(ctx, dir, false);
    nb_trainer *tr = ds ? nb_trainer_new(ctx, m, ds, 0, t, NULL) : NULL;
    if (!tr) {
        nb_dataset_free(ds);
        return cli_fail_lib(ctx, true);
    }
    e->target = t->target;
    bool labels = t->target != NB_TARGET_INPUT;
    int n = e->n = nb_trainer_num_labels(tr), classes = labels ? cli_model_classes(m) : 0;
    int rc = cli_classes_of_data(&e->names, ds, cli_is_fashion(dir), t, classes);
    if (rc == CLI_OK && e->names.n == 0 && labels)
        rc = cli_classes_of_weights(ctx, &e->names, weights, classes);
    /* + 1: never calloc(0), for the 0 x 0 matrix of an autoencoder */
    if (rc == CLI_OK && !(e->cm = calloc((size_t)(n * n) + 1, sizeof *e->cm)))
        rc = cli_fail(CLI_RUNTIME, "out of memory");
    if (rc == CLI_OK && nb_trainer_evaluate(tr, ds, 0, &e->r, e->cm) != NB_OK)
        rc = cli_fail_lib(ctx, false);
    nb_trainer_free(tr);
    nb_dataset_free(ds);
    if (rc != CLI_OK)
        cli_eval_free(e);
    return rc;
}

void cli_eval_free(cli_eval *e)
{
    cli_classes_free(&e->names);
    free(e->cm);
    e->cm = NULL;
}

/* Evaluates m on the test half of the data directory: the numbers, then
 * each class and the confusion matrix; or all of them as JSON when json,
 * after the files (the model's and the weights'). */
static int evaluate(nb_ctx *ctx, nb_model *m, const nb_train_opts *t, const char *dir,
                    const char *const files[2], bool json)
{
    cli_eval e;
    int rc = cli_eval_run(ctx, m, t, dir, files[1], &e);
    if (rc != CLI_OK)
        return rc;
    if (json) {
        bool ok = true;
        cJSON *root = cJSON_CreateObject();
        ok = root != NULL;
        cli_json_str(root, "model", files[0], &ok);
        cli_json_str(root, "name", nb_model_name(m), &ok);
        cli_json_str(root, "weights", files[1], &ok);
        cli_json_str(root, "data", dir, &ok);
        cli_eval_json(root, &e, &ok);
        rc = cli_json_print(root, ok);
    } else {
        printf("test images: %" PRId64 "\ntest loss: %.4f\n", e.r.examples, e.r.loss);
        if (e.target != NB_TARGET_INPUT) {
            printf("test accuracy: %.4f\n", e.r.accuracy);
            print_confusion(&e.names, e.n, e.cm);
        }
    }
    cli_eval_free(&e);
    return rc;
}

/* --target over the model file's; -1 for an unknown word. */
static int target_of(const nb_train_opts *t)
{
    const char *s = cli_get(&eval_spec, "target");
    return s ? nb_target_from_name(s) : (int)t->target;
}

int cmd_eval(int argc, char **argv)
{
    const char *pos[1];
    int npos, rc = cli_parse(&eval_spec, argc, argv, pos, &npos);
    if (rc != CLI_OK)
        return rc == CLI_HELP ? CLI_OK : rc;
    const char *weights = cli_get(&eval_spec, "weights");
    if (!weights)
        return cli_fail(CLI_USAGE, "--weights is required (see nabla eval --help)");
    int64_t batch = 256;
    if ((rc = cli_int64(&eval_spec, "batch-size", 1, 1 << 20, &batch)) ||
        (rc = cli_threads(&eval_spec)))
        return rc;
    nb_ctx *ctx = cli_ctx_new();
    if (!ctx)
        return CLI_RUNTIME;
    nb_model *m = cli_load_model(ctx, pos[0], NB_F32, weights, 0, &rc);
    nb_train_opts t;
    if (m && nb_model_train_opts(ctx, m, &t, NULL) != NB_OK)
        rc = cli_fail_lib(ctx, true);
    else if (m && target_of(&t) < 0)
        rc = cli_fail(CLI_USAGE, "--target: expected label or input, got '%s'",
                      cli_get(&eval_spec, "target"));
    else if (m) {
        t.target = (nb_target)target_of(&t);
        t.batch_size = (int)batch;
        const char *files[2] = {pos[0], weights};
        rc = evaluate(ctx, m, &t, cli_data_dir(cli_get(&eval_spec, "data")), files,
                      cli_get(&eval_spec, "json") != NULL);
    }
    nb_model_free(m);
    nb_ctx_free(ctx);
    return rc;
}

/* ---- predict ---------------------------------------------------------------- */

static cli_opt predict_opts[] = {
    {"weights", "W.safetensors", "the trained weights (required)", NULL},
    {"top", "K", "how many classes to list (default 3)", NULL},
    {"invert", NULL, "invert a dark-on-light image for a colour model too (a gray\n"
                     "model's is inverted by default)", NULL},
    {"no-invert", NULL, "never invert the image (by default a gray model's image with a\n"
                        "light border, dark drawing on white, is inverted to the data set's\n"
                        "light on dark)",
     NULL},
    {"json", NULL, "print one JSON object per image, one per line (JSON Lines), for\n"
                   "scripts (its fields: docs/cli.md)", NULL},
    {0},
};

static const cli_spec predict_spec = {
    .usage = "MODEL.json --weights W.safetensors IMAGE.png...",
    .about = "Classifies PNG images: each is read (any bit depth; gray, RGB, RGBA or\n"
             "palette), resized to the model's input, normalised as its training\n"
             "section says and run through the model; prints the most likely class\n"
             "with its probability, and the top few.  For a gray model ([1, H, W]\n"
             "input) an image is turned gray by the mean of its channels and inverted\n"
             "when it is dark on light (its border's mean above 0.5); for a colour\n"
             "model ([3, H, W]) it is read as RGB (a gray PNG's channel repeated,\n"
             "alpha dropped) and inverted only with --invert.  With --json each\n"
             "image's line is a JSON object holding every class's probability too.",
    .min_pos = 1,
    .max_pos = 4096,
    .opts = predict_opts,
};

int cli_predict_names(nb_ctx *ctx, nb_model *m, const char *weights, cli_classes *names)
{
    int classes = cli_model_classes(m);
    int rc = cli_classes_of_weights(ctx, names, weights, classes);
    nb_train_opts t;
    if (rc == CLI_OK && names->n == 0 && nb_model_train_opts(ctx, m, &t, NULL) == NB_OK)
        rc = cli_classes_of_data(names, NULL, true, &t, classes);
    return rc;
}

void cli_top_classes(const nb_tensor *p, int64_t k, int64_t *order)
{
    for (int64_t j = 0; j < k; j++) { /* a partial selection sort */
        int64_t best = -1;
        for (int64_t q = 0; q < p->numel; q++) {
            bool taken = false;
            for (int64_t r = 0; r < j; r++)
                taken |= order[r] == q;
            if (!taken && (best < 0 || nb_get(p, q) > nb_get(p, best)))
                best = q;
        }
        order[j] = best;
    }
}

void cli_predict_json(cJSON *to, const nb_tensor *p, const int64_t *order, int64_t k,
                      const cli_classes *names, bool *ok)
{
    cli_json_int(to, "class", order[0], ok);
    cli_json_str(to, "label", cli_classes_name(names, (int)order[0]), ok);
    cli_json_float(to, "probability", nb_get(p, order[0]), ok);
    cJSON *top = cJSON_CreateArray(), *all = cJSON_CreateArray();
    cli_json_item(to, "top", top, ok);
    for (int64_t j = 0; j < k; j++) {
        cJSON *c = cJSON_CreateObject();
        cli_json_item(top, NULL, c, ok);
        cli_json_int(c, "class", order[j], ok);
        cli_json_str(c, "label", cli_classes_name(names, (int)order[j]), ok);
        cli_json_float(c, "probability", nb_get(p, order[j]), ok);
    }
    cli_json_item(to, "probabilities", all, ok);
    for (int64_t q = 0; q < p->numel; q++)
        cli_json_float(all, NULL, nb_get(p, q), ok);
}

int cmd_predict(int argc, char **argv)
{
    const char *pos[4096];
    int npos, rc = cli_parse(&predict_spec, argc, argv, pos, &npos);
    if (rc != CLI_OK)
        return rc == CLI_HELP ? CLI_OK : rc;
    const char *weights = cli_get(&predict_spec, "weights");
    if (!weights)
        return cli_fail(CLI_USAGE, "--weights is required (see nabla predict --help)");
    int64_t top = 3;
    if ((rc = cli_int64(&predict_spec, "top", 1, 1000, &top)))
        return rc;
    nb_ctx *ctx = cli_ctx_new();
    if (!ctx)
        return CLI_RUNTIME;
    nb_model *m = cli_load_model(ctx, pos[0], NB_F32, weights, 0, &rc);
    if (m && nb_model_loss_kind(m) != NB_LOSS_CROSS_ENTROPY)
        rc = cli_fail(CLI_USAGE, "predict needs a classifier (a cross_entropy loss); \"%s\" has %s",
                      nb_model_name(m), cli_loss_name(nb_model_loss_kind(m)));
    cli_classes names = {0};
    if (m && rc == CLI_OK)
        rc = cli_predict_names(ctx, m, weights, &names);
    nb_set_training(ctx, false);
    nb_set_grad_enabled(ctx, false);
    int channels = m ? cli_model_channels(m) : 0;
    bool invert = false, json = cli_get(&predict_spec, "json") != NULL;
    if (m && rc == CLI_OK)
        rc = cli_invert(&predict_spec, channels, &invert);
    for (int i = 1; m && rc == CLI_OK && i < npos; i++) {
        nb_tensor *img = cli_read_image(ctx, pos[i], channels, invert, &rc);
        nb_tensor *x = img ? cli_model_input(ctx, m, img, &rc) : NULL;
        nb_tensor_free(img);
        nb_tensor *p = x ? nb_softmax(ctx, nb_model_forward(ctx, m, x), 1) : NULL;
        if (x && !p)
            rc = cli_fail_lib(ctx, false);
        if (p) {
            int64_t c = p->numel, k = top < c ? top : c;
            int64_t order[1000] = {0};
            cli_top_classes(p, k, order);
            if (json) {
                bool ok = true;
                cJSON *root = cJSON_CreateObject();
                ok = root != NULL;
                cli_json_str(root, "file", pos[i], &ok);
                cli_predict_json(root, p, order, k, &names, &ok);
                rc = cli_json_print(root, ok);
            } else {
                const char *name = cli_classes_name(&names, (int)order[0]);
                printf("%s: %" PRId64 " %s (%.4f)  top %" PRId64 ":", pos[i], order[0],
                       name ? name : "", nb_get(p, order[0]), k);
                for (int64_t j = 0; j < k; j++) {
                    name = cli_classes_name(&names, (int)order[j]);
                    printf("%s %" PRId64 "%s%s%s %.4f", j ? "," : "", order[j], name ? " (" : "",
                           name ? name : "", name ? ")" : "", nb_get(p, order[j]));
                }
                printf("\n");
            }
        }
        nb_graph_reset(ctx);
        nb_tensor_free(x);
    }
    cli_classes_free(&names);
    nb_model_free(m);
    nb_ctx_free(ctx);
    return rc;
}
