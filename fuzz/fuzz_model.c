/*
 * fuzz_model.c - libFuzzer harness for the JSON model loader.
 * Build and run it with scripts/fuzz.sh model [seconds].
 *
 * Any text must either load or fail with a one-line message naming its
 * origin.  A model that loads and is small enough to run quickly must run:
 * in eval mode on a batch of 1 and in train mode on a batch of 2, with
 * every layer's output shaped as loading inferred; its training settings
 * must be in range.  Read without its tensors (NB_MODEL_SHAPES_ONLY), any
 * model that is right must load, with the same counts, and be estimated.
 * Leaks and crashes are the sanitizers' to find.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nabla.h"

/* A broken promise of the API: stop here, where the fuzzer sees it. */
#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!(cond))                                                          \
            __builtin_trap();                                                 \
    } while (0)

/* Models over these bounds load but do not run: the fuzzer is after the
 * loader's mistakes, not after big convolutions. */
#define MAX_ELEMS 1000000   /* parameters, or one example's activation */
#define MAX_WORK 5000000    /* sum over layers of output x (input or params) */
#define MAX_ALLOC ((size_t)64 << 20)

static void *capped_alloc(void *ud, size_t size)
{
    (void)ud;
    return size > MAX_ALLOC ? NULL : malloc(size);
}

static void plain_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

static int64_t numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

/* The elements of the named layer's output, or of the model's input. */
static int64_t input_numel(const nb_model *m, const char *name)
{
    int64_t shape[NB_MAX_DIMS];
    if (strcmp(name, "input") == 0)
        return numel(nb_model_input_shape(m, shape), shape);
    for (int i = 0; i < nb_model_num_layers(m); i++) {
        nb_layer_info li;
        REQUIRE(nb_model_layer(m, i, &li) == NB_OK);
        if (strcmp(li.name, name) == 0)
            return numel(li.ndim, li.shape);
    }
    REQUIRE(0); /* every input names a layer or the input */
    return 0;
}

static bool small(const nb_model *m)
{
    if (nb_model_num_params(m, true) + nb_model_num_params(m, false) > MAX_ELEMS)
        return false;
    double work = 0;
    for (int i = 0; i < nb_model_num_layers(m); i++) {
        nb_layer_info li;
        REQUIRE(nb_model_layer(m, i, &li) == NB_OK);
        double out = (double)numel(li.ndim, li.shape), in = 0;
        if (out > MAX_ELEMS)
            return false;
        for (int k = 0; k < li.ninputs; k++)
            in += (double)input_numel(m, li.inputs[k]);
        work += out * (in > (double)li.params ? in : (double)li.params);
    }
    return work <= MAX_WORK;
}

/* Runs the model on a batch of zeros; checks every layer's shape. */
static void run(nb_ctx *ctx, nb_model *m, int64_t batch)
{
    int64_t shape[NB_MAX_DIMS + 1] = {batch};
    int nd = nb_model_input_shape(m, shape + 1);
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, nd + 1, shape);
    nb_tensor *y = x ? nb_model_forward(ctx, m, x) : NULL;
    if (!y) {
        REQUIRE(nb_error(ctx) == NB_ERR_NOMEM);
        nb_clear_error(ctx);
        return;
    }
    for (int i = 0; i < nb_model_num_layers(m); i++) {
        nb_layer_info li;
        REQUIRE(nb_model_layer(m, i, &li) == NB_OK);
        nb_tensor *a = nb_model_activation(m, i);
        REQUIRE(a && a->ndim == li.ndim + 1 && a->shape[0] == batch);
        for (int d = 0; d < li.ndim; d++)
            REQUIRE(a->shape[d + 1] == li.shape[d]);
    }
    int64_t out[NB_MAX_DIMS];
    nd = nb_model_output_shape(m, out);
    REQUIRE(y->ndim == nd + 1);
    for (int d = 0; d < nd; d++)
        REQUIRE(y->shape[d + 1] == out[d]);
    nb_graph_reset(ctx);
    nb_tensor_free(x);
}

/* A model read without its tensors: no tensor, the counts of the model
 * made whole (when there is one), and an estimate that holds the
 * parameters and grows with the batch. */
static void check_bare(nb_ctx *ctx, nb_model *bare, const nb_model *m)
{
    if (!bare)
        return;
    REQUIRE(nb_model_num_tensors(bare) == 0);
    int64_t p = nb_model_num_params(bare, true), b = nb_model_num_params(bare, false);
    REQUIRE(!m || (p == nb_model_num_params(m, true) && b == nb_model_num_params(m, false)));
    nb_optim_opts o;
    REQUIRE(nb_model_train_opts(ctx, bare, NULL, &o) == NB_OK);
    nb_memory_report r1, r64, inf;
    REQUIRE(nb_model_memory(bare, 1, &o, &r1) == NB_OK);
    REQUIRE(nb_model_memory(bare, 64, &o, &r64) == NB_OK);
    REQUIRE(nb_model_memory(bare, 64, NULL, &inf) == NB_OK);
    REQUIRE(r1.params == 4 * (uint64_t)(p + b) && r1.grads == 4 * (uint64_t)p);
    REQUIRE(r1.optim == r1.grads * (uint64_t)nb_optim_buffers(&o));
    REQUIRE(r64.total >= r1.total && r64.total >= inf.total && inf.grads == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nb_allocator a = {capped_alloc, plain_free, NULL};
    nb_ctx *ctx = nb_ctx_new_with(&a);
    if (!ctx)
        return 0;
    nb_ctx_set_memory_limit(ctx, MAX_ALLOC);
    /* The shapes alone: a model too large to make is still read. */
    nb_model *bare = nb_model_parse_with(ctx, (const char *)data, size, "fuzz.json", NB_F32,
                                         NB_MODEL_SHAPES_ONLY);
    nb_model *m = nb_model_parse(ctx, (const char *)data, size, "fuzz.json", NB_F32);
    if (!m) {
        int rc = nb_error(ctx);
        const char *msg = nb_errmsg(ctx);
        REQUIRE(rc == NB_ERR_FORMAT || rc == NB_ERR_NOMEM);
        REQUIRE(strchr(msg, '\n') == NULL);
        REQUIRE(rc != NB_ERR_FORMAT || strncmp(msg, "fuzz.json", 9) == 0);
        REQUIRE(rc != NB_ERR_FORMAT || !bare);
        check_bare(ctx, bare, NULL);
        nb_model_free(bare);
        nb_ctx_free(ctx);
        return 0;
    }
    REQUIRE(bare); /* the model's parse made more than this one's */
    check_bare(ctx, bare, m);
    nb_model_free(bare);
    REQUIRE(nb_model_num_layers(m) > 0);
    /* The training sections were checked at load: what they say is in range. */
    nb_train_opts t;
    nb_optim_opts o;
    REQUIRE(nb_model_train_opts(ctx, m, &t, &o) == NB_OK);
    REQUIRE(t.epochs >= 1 && t.batch_size >= 1 && t.step_size >= 1);
    REQUIRE(t.nclasses == 0 || (t.nclasses >= 2 && t.nclasses <= NB_MAX_CLASSES));
    REQUIRE(t.schedule >= NB_SCHEDULE_NONE && t.schedule <= NB_SCHEDULE_COSINE);
    REQUIRE(o.kind >= NB_SGD && o.kind <= NB_RMSPROP && o.lr >= 0);
    /* Every tensor is found by its name; the layers account for them all. */
    int64_t params = 0, buffers = 0;
    for (int i = 0; i < nb_model_num_tensors(m); i++) {
        nb_tensor *t = nb_model_tensor(m, i);
        REQUIRE(t && nb_model_find(m, t->name) == t);
        REQUIRE(t->requires_grad == !nb_model_is_buffer(m, i));
    }
    for (int i = 0; i < nb_model_num_layers(m); i++) {
        nb_layer_info li;
        REQUIRE(nb_model_layer(m, i, &li) == NB_OK);
        params += li.params;
        buffers += li.buffers;
    }
    REQUIRE(params == nb_model_num_params(m, true));
    REQUIRE(buffers == nb_model_num_params(m, false));
    if (small(m)) {
        nb_set_grad_enabled(ctx, false);
        nb_set_training(ctx, false);
        run(ctx, m, 1);
        nb_set_training(ctx, true);
        run(ctx, m, 2);
    }
    nb_model_free(m);
    nb_ctx_free(ctx);
    return 0;
}
