/*
 * cmd_graph.c - `nabla graph`: the network as a Graphviz DOT digraph.
 */
#include "cli.h"

#include <stdio.h>
#include <string.h>

static cli_opt opts[] = {
    {0},
};

static const cli_spec spec = {
    .usage = "MODEL.json",
    .about = "Prints the network as a Graphviz digraph on stdout: an \"input\" node with\n"
             "the shape of one example, one node per layer labelled with its name, type\n"
             "and output shape (batch excluded), an edge from each layer it reads, and\n"
             "the loss as a final node when the model has one.  Render it with\n"
             "  nabla graph MODEL.json | dot -Tsvg > model.svg",
    .min_pos = 1,
    .max_pos = 1,
    .opts = opts,
};

/* Writes s inside a DOT double-quoted string. */
static void dot_escape(const char *s)
{
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            putchar('\\');
        putchar(*s == '\n' ? ' ' : *s);
    }
}

/* The DOT node id of the layer named `name`: "input", or "L<i>". */
static void print_node_id(const nb_model *m, const char *name)
{
    int n = nb_model_num_layers(m);
    for (int i = 0; i < n; i++) {
        nb_layer_info info;
        if (nb_model_layer(m, i, &info) == NB_OK && strcmp(info.name, name) == 0) {
            printf("L%d", i);
            return;
        }
    }
    printf("input");
}

static int print_graph(nb_ctx *ctx, nb_model *m)
{
    char shape[96];
    int64_t in_shape[NB_MAX_DIMS];
    int in_ndim = nb_model_input_shape(m, in_shape);

    printf("digraph \"");
    dot_escape(nb_model_name(m));
    printf("\" {\n");
    printf("    rankdir=TB;\n");
    printf("    node [shape=box, style=rounded, fontname=\"Helvetica\"];\n");
    printf("    input [label=\"input\\n%s\", shape=ellipse];\n",
           nb_dims_str(in_ndim, in_shape, shape, sizeof shape));

    int n = nb_model_num_layers(m);
    for (int i = 0; i < n; i++) {
        nb_layer_info info;
        if (nb_model_layer(m, i, &info) != NB_OK)
            return cli_fail(CLI_RUNTIME, "layer %d of %d cannot be read", i, n);
        printf("    L%d [label=\"", i);
        dot_escape(info.name);
        printf(" (");
        dot_escape(info.type);
        if (info.activation) {
            printf("+");
            dot_escape(info.activation);
        }
        printf(")\\n%s", nb_dims_str(info.ndim, info.shape, shape, sizeof shape));
        if (info.settings) {
            printf("\\n");
            dot_escape(info.settings);
        }
        printf("\"];\n");
        const char *in[8];
        int k = cli_layer_inputs(m, i, &info, in);
        for (int j = 0; j < k; j++) {
            printf("    ");
            print_node_id(m, in[j]);
            printf(" -> L%d;\n", i);
        }
    }
    nb_loss_kind loss = nb_model_loss_kind(m);
    if (loss != NB_LOSS_NONE) {
        int out = nb_model_output_layer(m);
        printf("    loss [label=\"loss\\n%s\", shape=ellipse];\n", cli_loss_name(loss));
        printf("    L%d -> loss;\n", out);
    }
    printf("}\n");
    return CLI_OK;
}

int cmd_graph(int argc, char **argv)
{
    const char *pos[1];
    int npos;
    int rc = cli_parse(&spec, argc, argv, pos, &npos);
    if (rc != CLI_OK)
        return rc == CLI_HELP ? CLI_OK : rc;

    nb_ctx *ctx = cli_ctx_new();
    if (!ctx)
        return CLI_RUNTIME;
    /* The shapes alone: no parameter is made for a picture of the network. */
    nb_model *m = nb_model_load_with(ctx, pos[0], NB_F32, NB_MODEL_SHAPES_ONLY);
    rc = m ? print_graph(ctx, m) : cli_fail_lib(ctx, true);
    nb_model_free(m);
    nb_ctx_free(ctx);
    if (rc == CLI_OK && (fflush(stdout) != 0 || ferror(stdout)))
        rc = cli_fail(CLI_RUNTIME, "cannot write to standard output");
    return rc;
}
