/*
 * cmd_summary.c - `nabla summary`: the model's layers as a table, like
 * Keras's model.summary(), with parameter counts and memory.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cli_opt opts[] = {
    {"dtype", "f32|f64", "the element type the memory sizes are counted in (default f32)", NULL},
    {0},
};

static const cli_spec spec = {
    .usage = "MODEL.json [options]",
    .about = "Prints a table of the model's layers: each one's name and type, the shape\n"
             "of its output for one example (the batch dimension left out), its\n"
             "parameter count (trainable parameters and batch-norm buffers) and, for\n"
             "models in graph form, the layers it reads.  Then the totals: trainable and\n"
             "non-trainable (buffer) parameters, the values one example's activations\n"
             "take (every layer's output), and the memory of the parameters.",
    .min_pos = 1,
    .max_pos = 1,
    .opts = opts,
};

typedef struct row {
    char layer[160];
    char shape[96];
    char params[32];
    char inputs[256];
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

static int summarize(nb_model *m, nb_dtype dtype)
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
        snprintf(r->layer, sizeof r->layer, "%s (%s%s%s)", info.name, info.type,
                 info.activation ? "+" : "", info.activation ? info.activation : "");
        nb_dims_str(info.ndim, info.shape, r->shape, sizeof r->shape);
        cli_count(info.params + info.buffers, r->params);
        const char *in[8];
        int k = cli_layer_inputs(m, i, &info, in);
        fill_inputs(r->inputs, sizeof r->inputs, k, in);
    }

    const int gap = 3;
    int wl = width_of(rows, nlayers + 1, offsetof(row, layer), "Layer (type)", 24);
    int ws = width_of(rows, nlayers + 1, offsetof(row, shape), "Output Shape", 16);
    int wp = width_of(rows, nlayers + 1, offsetof(row, params), "Param #", 9);
    int wi = graph ? width_of(rows, nlayers + 1, offsetof(row, inputs), "Connected to", 12) : 0;
    int width = wl + gap + ws + gap + wp + (graph ? gap + wi : 0);

    printf("Model: \"%s\"\n", nb_model_name(m));
    rule('_', width);
    printf("%-*s%*s%-*s%*s%*s", wl, "Layer (type)", gap, "", ws, "Output Shape", gap, "", wp, "Param #");
    if (graph)
        printf("%*s%s", gap, "", "Connected to");
    putchar('\n');
    rule('=', width);
    for (int i = 0; i <= nlayers; i++) {
        const row *r = &rows[i];
        if (i > 0)
            rule('_', width);
        printf("%-*s%*s%-*s%*s%*s", wl, r->layer, gap, "", ws, r->shape, gap, "", wp, r->params);
        if (graph && i > 0)
            printf("%*s%s", gap, "", r->inputs);
        putchar('\n');
    }
    rule('=', width);
    free(rows);

    int64_t trainable = nb_model_num_params(m, true);
    int64_t buffers = nb_model_num_params(m, false);
    char a[32], b[32], c[32];
    printf("Total params: %s\n", cli_count(trainable + buffers, a));
    printf("Trainable params: %s\n", cli_count(trainable, b));
    printf("Non-trainable params: %s\n", cli_count(buffers, c));
    rule('_', width);
    print_memory("Input per example", input_values, dtype);
    print_memory("Activations per example", activations, dtype);
    print_memory("Parameter memory", trainable + buffers, dtype);
    printf("Loss: %s\n", cli_loss_name(nb_model_loss_kind(m)));
    rule('_', width);
    return CLI_OK;
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
    nb_model *m = nb_model_load(ctx, pos[0], dtype);
    rc = m ? summarize(m, dtype) : cli_fail_lib(ctx, true);
    nb_model_free(m);
    nb_ctx_free(ctx);
    return rc;
}
