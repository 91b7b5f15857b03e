/*
 * cmd_forward.c - `nabla forward`: runs a model on a batch read from a
 * safetensors file and writes the output, the loss and the gradients.
 */
#include "cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cli_opt opts[] = {
    {"input", "X.safetensors", "the batch to run: the tensor named \"input\", shaped [N, <model input>]", NULL},
    {"out", "OUT.safetensors", "where to write \"output\" (and \"loss\", \"grad.input\", \"grad.<param>\")", NULL},
    {"weights", "W.safetensors", "the model's tensors (default: the default initialisation from --seed)", NULL},
    {"labels", "Y.safetensors", "the tensor named \"labels\": class indices [N] (int32 or int64) for\n"
                                "cross_entropy, float targets shaped like the output for mse and\n"
                                "hinge (+-1); adds \"loss\" to the output file", NULL},
    {"grad", NULL, "also write the gradient of the loss with respect to the input\n"
                   "(\"grad.input\") and to every trainable parameter (\"grad.<name>\");\n"
                   "needs --labels", NULL},
    {"train", NULL, "run in train mode (dropout active, batch norm on batch statistics);\n"
                    "the default is eval mode", NULL},
    {"dtype", "f32|f64", "compute in float32 (default) or float64; the output file has that dtype", NULL},
    {"seed", "S", "seeds the default initialisation and dropout's generator (default 0)", NULL},
    {0},
};

static const cli_spec spec = {
    .usage = "MODEL.json --input X.safetensors --out OUT.safetensors [options]",
    .about = "Runs the model on the batch in X.safetensors, in eval mode unless --train,\n"
             "and writes its output to OUT.safetensors under the name \"output\".  With\n"
             "--labels it also writes the loss (a scalar, \"loss\"); with --grad the\n"
             "gradients of that loss.",
    .min_pos = 1,
    .max_pos = 1,
    .opts = opts,
};

typedef struct run {
    nb_ctx *ctx;
    nb_model *m;
    nb_dtype dtype;
    nb_safetensors *xf, *yf;
    nb_tensor *x;       /* [N, input...] */
    int32_t *labels;    /* cross entropy: N class indices */
    nb_tensor *target;  /* mse, hinge */
    nb_tensor **save;   /* what goes into the output file */
    int nsave;
} run;

/* x must be [N, <the model's input shape>]. */
static int check_input(run *r, const char *path)
{
    int64_t shape[NB_MAX_DIMS + 1];
    int ndim = nb_model_input_shape(r->m, shape + 1);
    bool ok = r->x->ndim == ndim + 1;
    for (int d = 0; ok && d < ndim; d++)
        ok = r->x->shape[d + 1] == shape[d + 1];
    if (ok)
        return CLI_OK;
    char got[96], want[96];
    size_t len = (size_t)snprintf(want, sizeof want, "[N");
    for (int d = 0; d < ndim && len < sizeof want; d++)
        len += (size_t)snprintf(want + len, sizeof want - len, ", %" PRId64, shape[d + 1]);
    if (len < sizeof want)
        snprintf(want + len, sizeof want - len, "]");
    return cli_fail(CLI_USAGE, "%s: \"input\" has shape %s; the model \"%s\" takes %s",
                    path, nb_shape_str(r->x, got, sizeof got), nb_model_name(r->m), want);
}

/* Reads "labels" as the model's loss wants them. */
static int read_labels(run *r, const char *path)
{
    nb_ctx *ctx = r->ctx;
    nb_loss_kind loss = nb_model_loss_kind(r->m);
    if (loss == NB_LOSS_NONE)
        return cli_fail(CLI_USAGE, "--labels: the model \"%s\" has no loss", nb_model_name(r->m));
    r->yf = nb_safetensors_open(ctx, path);
    if (!r->yf)
        return cli_fail_lib(ctx, true);
    int64_t n = r->x->shape[0];
    int64_t out[NB_MAX_DIMS + 1];
    int ondim = nb_model_output_shape(r->m, out + 1) + 1;
    out[0] = n;
    char got[96], want[96];

    if (loss == NB_LOSS_CROSS_ENTROPY) {
        nb_tensor *y = nb_safetensors_get(ctx, r->yf, "labels", NB_F64);
        if (!y)
            return cli_fail_lib(ctx, true);
        if (y->ndim != 1 || y->shape[0] != n)
            return cli_fail(CLI_USAGE, "%s: \"labels\" has shape %s; cross_entropy takes [%" PRId64 "] class indices",
                            path, nb_shape_str(y, got, sizeof got), n);
        int64_t classes = out[1];
        r->labels = malloc(sizeof *r->labels * (size_t)n);
        if (!r->labels)
            return cli_fail(CLI_RUNTIME, "out of memory");
        for (int64_t i = 0; i < n; i++) {
            double v = nb_get(y, i);
            if (!(v >= 0 && v < (double)classes && v == floor(v)))
                return cli_fail(CLI_USAGE, "%s: labels[%" PRId64 "] is %g, not a class index from 0 to %" PRId64,
                                path, i, v, classes - 1);
            r->labels[i] = (int32_t)v;
        }
        return CLI_OK;
    }

    r->target = nb_safetensors_get(ctx, r->yf, "labels", r->dtype);
    if (!r->target)
        return cli_fail_lib(ctx, true);
    nb_tensor *t = r->target;
    bool same = t->ndim == ondim;
    for (int d = 0; same && d < ondim; d++)
        same = t->shape[d] == out[d];
    /* Hinge also takes the natural [N] for its one output per example. */
    bool flat = loss == NB_LOSS_HINGE && t->ndim == 1 && t->shape[0] == n;
    if (!same && !flat)
        return cli_fail(CLI_USAGE, "%s: \"labels\" has shape %s; %s takes targets shaped like the output, %s",
                        path, nb_shape_str(t, got, sizeof got), cli_loss_name(loss),
                        nb_dims_str(ondim, out, want, sizeof want));
    for (int64_t i = 0; loss == NB_LOSS_HINGE && i < t->numel; i++) {
        double v = nb_get(t, i);
        if (v != 1.0 && v != -1.0)
            return cli_fail(CLI_USAGE, "%s: labels[%" PRId64 "] is %g; hinge targets are -1 or +1", path, i, v);
    }
    return CLI_OK;
}

/* Adds t to the output file under `prefix` + `name`. */
static int add_output(run *r, nb_tensor *t, const char *prefix, const char *name)
{
    char full[sizeof t->name + 16];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    if (strlen(full) >= sizeof t->name)
        return cli_fail(CLI_RUNTIME, "tensor name \"%s\" is longer than %zu characters",
                        full, sizeof t->name - 1);
    nb_tensor_set_name(t, full);
    r->save[r->nsave++] = t;
    return CLI_OK;
}

static int forward(run *r, const char *out_path, bool grad, bool train, uint64_t seed)
{
    nb_ctx *ctx = r->ctx;
    nb_set_training(ctx, train);
    nb_rng_seed(nb_model_rng(r->m), seed);
    nb_set_grad_enabled(ctx, grad);
    nb_requires_grad(r->x, grad);

    nb_tensor *y = nb_model_forward(ctx, r->m, r->x);
    if (!y)
        return cli_fail_lib(ctx, true);
    nb_tensor *loss = NULL;
    if (r->labels || r->target) {
        loss = nb_model_loss(ctx, r->m, y, r->labels, r->target);
        if (!loss)
            return cli_fail_lib(ctx, true);
    }
    if (grad && nb_backward(ctx, loss) != NB_OK)
        return cli_fail_lib(ctx, false);

    int ntensors = nb_model_num_tensors(r->m);
    r->save = malloc(sizeof *r->save * (size_t)(ntensors + 3));
    if (!r->save)
        return cli_fail(CLI_RUNTIME, "out of memory");
    int rc = add_output(r, y, "", "output");
    if (rc == CLI_OK && loss)
        rc = add_output(r, loss, "", "loss");
    for (int i = -1; rc == CLI_OK && grad && i < ntensors; i++) {
        nb_tensor *p = i < 0 ? r->x : nb_model_tensor(r->m, i);
        if (i >= 0 && (nb_model_is_buffer(r->m, i) || !p->requires_grad))
            continue;
        nb_tensor *g = p->grad;
        /* A tensor the loss does not reach has a zero gradient. */
        if (!g && !(g = nb_tensor_new(ctx, p->dtype, p->ndim, p->shape)))
            return cli_fail_lib(ctx, false);
        rc = add_output(r, g, "grad.", i < 0 ? "input" : p->name);
    }
    if (rc != CLI_OK)
        return rc;
    if (nb_safetensors_save(ctx, out_path, r->nsave, r->save) != NB_OK)
        return cli_fail_lib(ctx, false);
    return CLI_OK;
}

int cmd_forward(int argc, char **argv)
{
    const char *pos[1];
    int npos;
    int rc = cli_parse(&spec, argc, argv, pos, &npos);
    if (rc != CLI_OK)
        return rc == CLI_HELP ? CLI_OK : rc;
    nb_dtype dtype = NB_F32;
    uint64_t seed = 0;
    if ((rc = cli_dtype(&spec, "dtype", &dtype)) != CLI_OK ||
        (rc = cli_uint64(&spec, "seed", &seed)) != CLI_OK)
        return rc;
    const char *input = cli_get(&spec, "input");
    const char *out = cli_get(&spec, "out");
    const char *labels = cli_get(&spec, "labels");
    bool grad = cli_get(&spec, "grad") != NULL;
    bool train = cli_get(&spec, "train") != NULL;
    if (!input)
        return cli_fail(CLI_USAGE, "missing --input X.safetensors (see nabla forward --help)");
    if (!out)
        return cli_fail(CLI_USAGE, "missing --out OUT.safetensors (see nabla forward --help)");
    if (grad && !labels)
        return cli_fail(CLI_USAGE, "--grad needs --labels: the gradients are those of the loss");

    run r = {.dtype = dtype};
    if (!(r.ctx = cli_ctx_new()))
        return CLI_RUNTIME;
    r.m = cli_load_model(r.ctx, pos[0], dtype, cli_get(&spec, "weights"), seed, &rc);
    if (!r.m)
        goto done;
    if (!(r.xf = nb_safetensors_open(r.ctx, input)) ||
        !(r.x = nb_safetensors_get(r.ctx, r.xf, "input", dtype))) {
        rc = cli_fail_lib(r.ctx, true);
        goto done;
    }
    if ((rc = check_input(&r, input)) != CLI_OK)
        goto done;
    if (labels && (rc = read_labels(&r, labels)) != CLI_OK)
        goto done;
    rc = forward(&r, out, grad, train, seed);
done:
    free(r.labels);
    free(r.save);
    nb_safetensors_close(r.xf);
    nb_safetensors_close(r.yf);
    nb_model_free(r.m);
    nb_ctx_free(r.ctx);
    return rc;
}
