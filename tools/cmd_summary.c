/*
 * cmd_summary.c - `nabla summary`: the model's layers as a table, like
 * Keras's model.summary(), with parameter counts and memory.
 */
#include "cli.h"

#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cli_opt opts[] = {
    {"dtype", "f32|f64", "the element type the memory sizes are counted in (default f32)", NULL},
    {"batch-size", "N", "the batch the memory estimate is for (default: the model file's,\n"
                        "else 64)", NULL},
    {"optimizer", "NAME", "sgd, adam, adamw or rmsprop: whose state the training estimate\n"
                          "counts (default: the model file's, else sgd)", NULL},
    {"max-memory", "SIZE", "the memory limit the estimate is compared with, such as 4G\n"
                           "(default: NABLA_MAX_MEMORY, else this machine's memory)", NULL},
    {"json", NULL, "print one JSON object instead of the table, for scripts (its fields:\n"
                   "docs/cli.md)", NULL},
    {0},
};

static const cli_spec spec = {
    .usage = "MODEL.json [options]",
    .about = "Prints a table of the model's layers: each one's name and type, the shape\n"
             "of its output for one example (the batch dimension left out), its\n"
             "parameter count (trainable parameters and batch-norm buffers), for\n"
             "models in graph form the layers it reads, and its settings that are not\n"
             "their defaults (kernel_size=3, stride=2, groups=32...).  Then the totals:\n"
             "trainable and non-trainable (buffer) parameters, the values one\n"
             "example's activations take (every layer's output), and the memory of\n"
             "the parameters.\n"
             "\n"
             "Last, an estimate of the memory training and inference need for a batch,\n"
             "made from the shapes alone (no parameter is allocated, so any model can\n"
             "be summarised): the parameters and buffers, their gradients and the\n"
             "optimizer's state (sgd with momentum 1 buffer per parameter, adam 2,\n"
             "rmsprop 1 to 3), the batch's input, the activations (every layer's\n"
             "output and what the ops keep for backward) and their gradients; not the\n"
             "data set, nor an op's scratch.  It is compared with the memory limit\n"
             "that `nabla train` and the other verbs refuse to exceed.\n"
             "\n"
             "With --json the same numbers are one JSON object on one line, sizes in\n"
             "bytes.",
    .min_pos = 1,
    .max_pos = 1,
    .opts = opts,
};

typedef struct row {
    char layer[160];
    char shape[96];
    char params[32];
    char inputs[256];
    char settings[640];
} row;

static void rule(char c, int width)
{
    for (int i = 0; i < width; i++)
        putchar(c);
    putchar('\n');
}

/* The widest of the title, the column's cells and `min`. */
static int width_of(const row *rows, int n, size_t off, const char *title, size_t min)
{
    size_t w = strlen(title) > min ? strlen(title) : min;
    for (int i = 0; i < n; i++) {
        size_t l = strlen((const char *)&rows[i] + off);
        if (l > w)
            w = l;
    }
    return (int)w;
}

static void fill_inputs(char *buf, size_t size, int n, const char **names)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int k = 0; k < n && len < size; k++)
        len += (size_t)snprintf(buf + len, size - len, "%s%s", k ? ", " : "", names[k]);
}

static void print_memory(const char *what, int64_t values, nb_dtype dtype)
{
    char count[32], bytes[32];
    printf("%s: %s values (%s in %s)\n", what, cli_count(values, count),
           cli_bytes((double)values * (double)nb_dtype_size(dtype), bytes), nb_dtype_name(dtype));
}

/* What the memory estimate is for: a batch and an optimizer. */
typedef struct estimate {
    int64_t batch;
    nb_optim_opts optim;
} estimate;

/* The memory training and inference need, and the limit. */
static int print_estimate(nb_ctx *ctx, nb_model *m, const estimate *e)
{
    nb_memory_report t, i;
    if (nb_model_memory(m, e->batch, &e->optim, &t) != NB_OK ||
        nb_model_memory(m, e->batch, NULL, &i) != NB_OK)
        return cli_fail_lib(ctx, true);
    char a[32], b[32], c[32], d[32], f[32], g[32], lim[96];
    const char *opt = nb_optim_kind_name(e->optim.kind);
    printf("Training memory, batch %" PRId64 " with %s (estimated): %s\n", e->batch, opt,
           cli_bytes((double)t.total, a));
    printf("  parameters %s, their gradients %s, %s state %s (%d buffer%s per parameter),\n",
           cli_bytes((double)t.params, b), cli_bytes((double)t.grads, c), opt,
           cli_bytes((double)t.optim, d), t.optim_buffers, t.optim_buffers == 1 ? "" : "s");
    printf("  input %s, activations %s, their gradients %s\n", cli_bytes((double)t.input, f),
           cli_bytes((double)t.activations, g), cli_bytes((double)t.act_grads, a));
    printf("Inference memory, batch %" PRId64 " (estimated): %s\n", e->batch,
           cli_bytes((double)i.total, b));
    uint64_t limit = nb_ctx_memory_limit(ctx);
    const char *verdict = i.total > limit ? ": neither training nor inference fits"
                        : t.total > limit ? ": training does not fit" : "";
    printf("Memory limit: %s%s\n", cli_limit_str(ctx, cli_get(&spec, "max-memory") ?
           "--max-memory" : NULL, lim), verdict);
    return CLI_OK;
}

/* The layers whose "init" is not their own, each on a line after the
 * table (the columns have no room for it). */
static void print_inits(const nb_model *m, int nlayers)
{
    for (int i = 0; i < nlayers; i++) {
        nb_layer_info info;
        if (nb_model_layer(m, i, &info) == NB_OK && info.init)
            printf("Init of %s: %s\n", info.name, info.init);
    }
}

static int summarize(nb_ctx *ctx, nb_model *m, nb_dtype dtype, const estimate *est)
{
    int nlayers = nb_model_num_layers(m);
    row *rows = calloc((size_t)nlayers + 1, sizeof *rows);
    if (!rows)
        return cli_fail(CLI_RUNTIME, "out of memory");
    bool graph = cli_is_graph(m);

    /* The input first, as Keras shows it in functional models. */
    int64_t shape[NB_MAX_DIMS];
    int ndim = nb_model_input_shape(m, shape);
    int64_t input_values = 1;
    for (int d = 0; d < ndim; d++)
        input_values *= shape[d];
    snprintf(rows[0].layer, sizeof rows[0].layer, "input (input)");
    nb_dims_str(ndim, shape, rows[0].shape, sizeof rows[0].shape);
    cli_count(0, rows[0].params);

    int64_t activations = 0;
    for (int i = 0; i < nlayers; i++) {
        nb_layer_info info;
        row *r = &rows[i + 1];
        if (nb_model_layer(m, i, &info) != NB_OK) {
            free(rows);
            return cli_fail(CLI_RUNTIME, "layer %d of %d cannot be read", i, nlayers);
        }
        int64_t values = 1;
        for (int d = 0; d < info.ndim; d++)
            values *= info.shape[d];
        activations += values;
        snprintf(r->layer, sizeof r->layer, "%s (%s%s%s%s)", info.name, info.type,
                 info.activation ? "+" : "", info.activation ? info.activation : "",
                 info.trainable ? "" : ", frozen");
        nb_dims_str(info.ndim, info.shape, r->shape, sizeof r->shape);
        cli_count(info.params + info.buffers, r->params);
        const char *in[8];
        int k = cli_layer_inputs(m, i, &info, in);
        fill_inputs(r->inputs, sizeof r->inputs, k, in);
        snprintf(r->settings, sizeof r->settings, "%s", info.settings ? info.settings : "");
    }

    const int gap = 3;
    int wl = width_of(rows, nlayers + 1, offsetof(row, layer), "Layer (type)", 24);
    int ws = width_of(rows, nlayers + 1, offsetof(row, shape), "Output Shape", 16);
    int wp = width_of(rows, nlayers + 1, offsetof(row, params), "Param #", 9);
    int wi = graph ? width_of(rows, nlayers + 1, offsetof(row, inputs), "Connected to", 12) : 0;
    int width = wl + gap + ws + gap + wp + (graph ? gap + wi : 0);
    int rule_width = width + gap + (int)strlen("Settings");

    printf("Model: \"%s\"\n", nb_model_name(m));
    rule('_', rule_width);
    printf("%-*s%*s%-*s%*s%*s", wl, "Layer (type)", gap, "", ws, "Output Shape", gap, "", wp, "Param #");
    if (graph)
        printf("%*s%-*s", gap, "", wi, "Connected to");
    printf("%*s%s\n", gap, "", "Settings");
    rule('=', rule_width);
    for (int i = 0; i <= nlayers; i++) {
        const row *r = &rows[i];
        if (i > 0)
            rule('_', rule_width);
        printf("%-*s%*s%-*s%*s%*s", wl, r->layer, gap, "", ws, r->shape, gap, "", wp, r->params);
        if (graph && r->settings[0])
            printf("%*s%-*s", gap, "", wi, r->inputs);
        else if (graph && i > 0)
            printf("%*s%s", gap, "", r->inputs);
        if (r->settings[0])
            printf("%*s%s", gap, "", r->settings);
        putchar('\n');
    }
    rule('=', rule_width);
    free(rows);
    print_inits(m, nlayers);

    int64_t trainable = nb_model_num_params(m, true);
    int64_t buffers = nb_model_num_params(m, false);
    char a[32], b[32], c[32];
    printf("Total params: %s\n", cli_count(trainable + buffers, a));
    printf("Trainable params: %s\n", cli_count(trainable, b));
    printf("Non-trainable params: %s\n", cli_count(buffers, c));
    rule('_', rule_width);
    print_memory("Input per example", input_values, dtype);
    print_memory("Activations per example", activations, dtype);
    print_memory("Parameter memory", trainable + buffers, dtype);
    int rc = print_estimate(ctx, m, est);
    if (rc != CLI_OK)
        return rc;
    printf("Loss: %s\n", cli_loss_name(nb_model_loss_kind(m)));
    rule('_', rule_width);
    return CLI_OK;
}

/* ---- --json ------------------------------------------------------------------ */

/* A memory report's parts, in bytes. */
static cJSON *add_report(cJSON *to, const char *name, const nb_memory_report *r, bool training,
                         bool *ok)
{
    cJSON *o = cJSON_CreateObject();
    cli_json_uint(o, "total", r->total, ok);
    cli_json_uint(o, "params", r->params, ok);
    if (training) {
        cli_json_uint(o, "grads", r->grads, ok);
        cli_json_uint(o, "optimizer_state", r->optim, ok);
        cli_json_int(o, "optimizer_buffers", r->optim_buffers, ok);
    }
    cli_json_uint(o, "input", r->input, ok);
    cli_json_uint(o, "activations", r->activations, ok);
    if (training)
        cli_json_uint(o, "activation_grads", r->act_grads, ok);
    cli_json_item(to, name, o, ok);
    return o;
}

/* What the text says, as one JSON object (docs/cli.md). */
static int summarize_json(nb_ctx *ctx, nb_model *m, const char *path, nb_dtype dtype,
                          const estimate *e)
{
    nb_memory_report t, i;
    if (nb_model_memory(m, e->batch, &e->optim, &t) != NB_OK ||
        nb_model_memory(m, e->batch, NULL, &i) != NB_OK)
        return cli_fail_lib(ctx, true);
    bool ok = true;
    cJSON *root = cJSON_CreateObject();
    ok = root != NULL;
    cli_json_str(root, "model", path, &ok);
    cli_json_str(root, "name", nb_model_name(m), &ok);
    cli_json_str(root, "dtype", nb_dtype_name(dtype), &ok);
    int64_t shape[NB_MAX_DIMS];
    int ndim = nb_model_input_shape(m, shape);
    int64_t input_values = 1;
    for (int d = 0; d < ndim; d++)
        input_values *= shape[d];
    cli_json_shape(root, "input_shape", ndim, shape, &ok);
    cli_json_str(root, "loss", cli_loss_name(nb_model_loss_kind(m)), &ok);
    cli_json_item(root, "graph", cJSON_CreateBool(cli_is_graph(m)), &ok);

    cJSON *layers = cJSON_CreateArray();
    cli_json_item(root, "layers", layers, &ok);
    int nlayers = nb_model_num_layers(m);
    int64_t activations = 0;
    for (int l = 0; l < nlayers; l++) {
        nb_layer_info info;
        if (nb_model_layer(m, l, &info) != NB_OK) {
            cJSON_Delete(root);
            return cli_fail(CLI_RUNTIME, "layer %d of %d cannot be read", l, nlayers);
        }
        int64_t values = 1;
        for (int d = 0; d < info.ndim; d++)
            values *= info.shape[d];
        activations += values;
        cJSON *o = cJSON_CreateObject();
        cli_json_item(layers, NULL, o, &ok);
        cli_json_str(o, "name", info.name, &ok);
        cli_json_str(o, "type", info.type, &ok);
        cli_json_str(o, "activation", info.activation, &ok);
        cli_json_shape(o, "output_shape", info.ndim, info.shape, &ok);
        cli_json_int(o, "params", info.params + info.buffers, &ok);
        cli_json_item(o, "trainable", cJSON_CreateBool(info.trainable), &ok);
        cli_json_str(o, "settings", info.settings ? info.settings : "", &ok);
        /* The library's canonical JSON text, as an object. */
        cli_json_item(o, "init", info.init ? cJSON_Parse(info.init) : cJSON_CreateNull(), &ok);
        const char *in[8];
        int k = cli_layer_inputs(m, l, &info, in);
        cJSON *a = cJSON_CreateArray();
        for (int j = 0; a && j < k; j++)
            cli_json_str(a, NULL, in[j], &ok);
        cli_json_item(o, "inputs", a, &ok);
    }

    int64_t trainable = nb_model_num_params(m, true);
    int64_t buffers = nb_model_num_params(m, false);
    int64_t size = (int64_t)nb_dtype_size(dtype);
    cli_json_int(root, "total_params", trainable + buffers, &ok);
    cli_json_int(root, "trainable_params", trainable, &ok);
    cli_json_int(root, "non_trainable_params", buffers, &ok);
    cli_json_int(root, "input_values", input_values, &ok);
    cli_json_int(root, "input_bytes", input_values * size, &ok);
    cli_json_int(root, "activation_values", activations, &ok);
    cli_json_int(root, "activation_bytes", activations * size, &ok);
    cli_json_int(root, "parameter_bytes", (trainable + buffers) * size, &ok);

    cli_json_int(root, "batch_size", e->batch, &ok);
    cli_json_str(root, "optimizer", nb_optim_kind_name(e->optim.kind), &ok);
    add_report(root, "training_memory", &t, true, &ok);
    add_report(root, "inference_memory", &i, false, &ok);
    uint64_t limit = nb_ctx_memory_limit(ctx);
    cli_json_uint(root, "memory_limit", limit, &ok);
    /* Who set it: what the text prints in parentheses after the size. */
    char lim[96];
    cli_limit_str(ctx, cli_get(&spec, "max-memory") ? "--max-memory" : NULL, lim);
    char *open = strchr(lim, '('), *close = strrchr(lim, ')');
    if (open && close > open)
        *close = '\0';
    cli_json_str(root, "memory_limit_source", open && close > open ? open + 1 : lim, &ok);
    bool inference_fits = i.total <= limit;
    cli_json_item(root, "training_fits", cJSON_CreateBool(inference_fits && t.total <= limit), &ok);
    cli_json_item(root, "inference_fits", cJSON_CreateBool(inference_fits), &ok);
    return cli_json_print(root, ok);
}

/* The batch and the optimizer: the model file's, then the options'. */
static int settings(nb_ctx *ctx, nb_model *m, estimate *e)
{
    nb_train_opts t;
    if (nb_model_train_opts(ctx, m, &t, &e->optim) != NB_OK)
        return cli_fail_lib(ctx, true);
    const char *name = cli_get(&spec, "optimizer");
    if (name) {
        int kind = nb_optim_kind_from_name(name);
        if (kind < 0)
            return cli_fail(CLI_USAGE, "--optimizer: unknown optimizer '%s' (sgd, adam, adamw, "
                                       "rmsprop)", name);
        if (kind != (int)e->optim.kind)
            e->optim = nb_optim_defaults((nb_optim_kind)kind);
    }
    e->batch = t.batch_size;
    return cli_int64(&spec, "batch-size", 1, 1 << 20, &e->batch);
}

int cmd_summary(int argc, char **argv)
{
    const char *pos[1];
    int npos;
    int rc = cli_parse(&spec, argc, argv, pos, &npos);
    if (rc != CLI_OK)
        return rc == CLI_HELP ? CLI_OK : rc;
    nb_dtype dtype = NB_F32;
    if ((rc = cli_dtype(&spec, "dtype", &dtype)) != CLI_OK)
        return rc;

    nb_ctx *ctx = cli_ctx_new();
    if (!ctx)
        return CLI_RUNTIME;
    /* The shapes are all a summary needs: no parameter is made, so a model
     * too large for the machine is summarised all the same. */
    nb_model *m = NULL;
    estimate est;
    if ((rc = cli_max_memory(&spec, "max-memory", ctx)) == CLI_OK) {
        m = nb_model_load_with(ctx, pos[0], dtype, NB_MODEL_SHAPES_ONLY);
        rc = m ? settings(ctx, m, &est) : cli_fail_lib(ctx, true);
    }
    if (rc == CLI_OK)
        rc = cli_get(&spec, "json") ? summarize_json(ctx, m, pos[0], dtype, &est)
                                    : summarize(ctx, m, dtype, &est);
    nb_model_free(m);
    nb_ctx_free(ctx);
    return rc;
}
