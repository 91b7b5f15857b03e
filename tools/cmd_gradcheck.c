/*
 * cmd_gradcheck.c - `nabla gradcheck`: the whole network's backward against
 * central finite differences, in float64, through nb_gradcheck.
 */
#include "cli.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static cli_opt opts[] = {
    {"weights", "W.safetensors", "the model's tensors (default: random, drawn from --seed)", NULL},
    {"batch", "N", "examples in the random batch (default 2)", NULL},
    {"seed", "S", "seeds the weights, the batch, its labels and the sample of\n"
                  "elements checked (default 0)", NULL},
    {"max-elems", "K", "elements checked per tensor, a random sample (default 64;\n"
                       "0 checks them all)", NULL},
    {"eps", "E", "the finite-difference step (default 1e-6)", NULL},
    {"eval", NULL, "check in eval mode (batch norm on running statistics, no dropout);\n"
                   "the default is train mode, with dropout's mask held fixed", NULL},
    {0},
};

static const cli_spec spec = {
    .usage = "MODEL.json [options]",
    .about = "Checks the gradients backward computes for the input and for every\n"
             "trainable parameter against central finite differences, in float64, on a\n"
             "random batch (uniform in [0, 1)) with random labels suited to the loss:\n"
             "class indices for cross_entropy, uniform targets for mse, +-1 for hinge.\n"
             "A model without a loss is checked through sum(output * R) for a fixed\n"
             "random R.  Prints one line per tensor and a verdict; the exit status is 1\n"
             "when a gradient disagrees.  An element passes when\n"
             "|analytic - numeric| <= 1e-5 + 1e-3 |numeric|; the relative error shown is\n"
             "|analytic - numeric| / max(|analytic|, |numeric|, 1).",
    .min_pos = 1,
    .max_pos = 1,
    .opts = opts,
};

typedef struct check {
    nb_model *m;
    nb_tensor *x;
    int32_t *labels;   /* cross entropy */
    nb_tensor *target; /* mse, hinge; R without a loss */
    nb_rng dropout;    /* dropout's generator as it was before the first run */
} check;

/* The scalar to differentiate.  Dropout draws again from the same state
 * each time, so every evaluation uses the same mask. */
static nb_tensor *loss_fn(nb_ctx *ctx, void *ud)
{
    check *c = ud;
    *nb_model_rng(c->m) = c->dropout;
    nb_tensor *y = nb_model_forward(ctx, c->m, c->x);
    if (!y)
        return NULL;
    if (nb_model_loss_kind(c->m) == NB_LOSS_NONE)
        return nb_sum(ctx, nb_mul(ctx, y, c->target));
    return nb_model_loss(ctx, c->m, y, c->labels, c->target);
}

/* The random batch and its labels, from rng. */
static int make_batch(nb_ctx *ctx, check *c, int64_t batch, nb_rng *rng)
{
    int64_t shape[NB_MAX_DIMS + 1];
    shape[0] = batch;
    int ndim = nb_model_input_shape(c->m, shape + 1) + 1;
    if (!(c->x = nb_tensor_new(ctx, NB_F64, ndim, shape)))
        return cli_fail_lib(ctx, true);
    nb_tensor_set_name(c->x, "input");
    nb_fill_uniform(c->x, rng, 0, 1);

    ndim = nb_model_output_shape(c->m, shape + 1) + 1;
    switch (nb_model_loss_kind(c->m)) {
    case NB_LOSS_CROSS_ENTROPY:
        c->labels = malloc(sizeof *c->labels * (size_t)batch);
        if (!c->labels)
            return cli_fail(CLI_RUNTIME, "out of memory");
        for (int64_t i = 0; i < batch; i++)
            c->labels[i] = (int32_t)nb_rng_below(rng, (uint64_t)shape[1]);
        return CLI_OK;
    case NB_LOSS_HINGE:
        if (!(c->target = nb_tensor_new(ctx, NB_F64, ndim, shape)))
            return cli_fail_lib(ctx, false);
        for (int64_t i = 0; i < c->target->numel; i++)
            nb_set(c->target, i, nb_rng_below(rng, 2) ? 1.0 : -1.0);
        return CLI_OK;
    case NB_LOSS_MSE:
        if (!(c->target = nb_tensor_new(ctx, NB_F64, ndim, shape)))
            return cli_fail_lib(ctx, false);
        nb_fill_uniform(c->target, rng, 0, 1);
        return CLI_OK;
    default:
        if (!(c->target = nb_tensor_new(ctx, NB_F64, ndim, shape)))
            return cli_fail_lib(ctx, false);
        nb_fill_uniform(c->target, rng, -1, 1);
        return CLI_OK;
    }
}

static int report(nb_gradcheck_report *reports, int n, int64_t batch, bool train,
                  uint64_t seed, double eps, const nb_model *m)
{
    int width = 12;
    for (int j = 0; j < n; j++) {
        int l = (int)strlen(reports[j].tensor->name);
        if (l > width)
            width = l;
    }
    printf("gradcheck \"%s\": batch %" PRId64 ", %s mode, seed %" PRIu64
           ", f64, central differences with eps %g\n",
           nb_model_name(m), batch, train ? "train" : "eval", seed, eps);
    int failed = 0;
    int64_t elems = 0;
    for (int j = 0; j < n; j++) {
        const nb_gradcheck_report *r = &reports[j];
        char checked[32], numel[32];
        printf("%-*s  %7s of %-9s  max abs err %.3e  max rel err %.3e  %s\n", width, r->tensor->name,
               cli_count(r->checked, checked), cli_count(r->tensor->numel, numel),
               r->max_abs_err, r->max_rel_err, r->ok ? "ok" : "FAILED");
        if (!r->ok)
            printf("%-*s  worst at element %" PRId64 ": analytic %.10g, numeric %.10g\n", width, "",
                   r->worst, r->analytic, r->numeric);
        failed += !r->ok;
        elems += r->checked;
    }
    char count[32];
    if (failed) {
        printf("FAILED: %d of %d tensors disagree (%s elements checked)\n", failed, n,
               cli_count(elems, count));
        printf("(a ReLU input within about eps of 0, or two max-pool inputs that close,\n"
               "makes the numeric gradient wrong: if other seeds pass, suspect that)\n");
        return CLI_RUNTIME;
    }
    printf("ok: all %d tensors agree (%s elements checked)\n", n, cli_count(elems, count));
    return CLI_OK;
}

int cmd_gradcheck(int argc, char **argv)
{
    const char *pos[1];
    int npos;
    int rc = cli_parse(&spec, argc, argv, pos, &npos);
    if (rc != CLI_OK)
        return rc == CLI_HELP ? CLI_OK : rc;
    int64_t batch = 2, max_elems = 64;
    uint64_t seed = 0;
    double eps = 1e-6;
    if ((rc = cli_positive(&spec, "eps", &eps)) != CLI_OK ||
        (rc = cli_int64(&spec, "batch", 1, 1 << 20, &batch)) != CLI_OK ||
        (rc = cli_int64(&spec, "max-elems", 0, INT64_MAX, &max_elems)) != CLI_OK ||
        (rc = cli_uint64(&spec, "seed", &seed)) != CLI_OK)
        return rc;
    bool train = cli_get(&spec, "eval") == NULL;

    nb_ctx *ctx = cli_ctx_new();
    if (!ctx)
        return CLI_RUNTIME;
    check c = {0};
    nb_tensor **wrt = NULL;
    nb_gradcheck_report *reports = NULL;
    c.m = cli_load_model(ctx, pos[0], NB_F64, cli_get(&spec, "weights"), seed, &rc);
    if (!c.m)
        goto done;
    /* The batch from its own stream, so that it does not depend on how many
     * numbers the initialisation drew. */
    nb_rng rng;
    nb_rng_seed(&rng, seed ^ 0x6261746368ull);
    if ((rc = make_batch(ctx, &c, batch, &rng)) != CLI_OK)
        goto done;
    nb_set_training(ctx, train);
    nb_rng_seed(nb_model_rng(c.m), seed);
    c.dropout = *nb_model_rng(c.m);

    /* The input, then every trainable parameter. */
    int ntensors = nb_model_num_tensors(c.m);
    wrt = malloc(sizeof *wrt * (size_t)(ntensors + 1));
    reports = malloc(sizeof *reports * (size_t)(ntensors + 1));
    if (!wrt || !reports) {
        rc = cli_fail(CLI_RUNTIME, "out of memory");
        goto done;
    }
    int n = 0;
    wrt[n++] = c.x;
    for (int i = 0; i < ntensors; i++) {
        nb_tensor *p = nb_model_tensor(c.m, i);
        if (!nb_model_is_buffer(c.m, i) && p->requires_grad)
            wrt[n++] = p;
    }
    nb_gradcheck_opts o = {.eps = eps, .max_elems = max_elems, .seed = seed};
    if (nb_gradcheck(ctx, loss_fn, &c, n, wrt, &o, reports) != NB_OK) {
        rc = cli_fail_lib(ctx, true); /* a batch too small for batch norm... */
        goto done;
    }
    rc = report(reports, n, batch, train, seed, eps, c.m);
done:
    free(wrt);
    free(reports);
    free(c.labels);
    nb_model_free(c.m);
    nb_ctx_free(ctx);
    return rc;
}
