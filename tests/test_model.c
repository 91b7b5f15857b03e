/* test_model.c - models in JSON files: the course's models, every mistake
 * a file can make (tests/data/models-bad), known forward values, the graph
 * form, names, sections, modes, gradients, allocation failure and the
 * steady state. */
#include "harness.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef MODELS_DIR
#error "MODELS_DIR must name the models/ directory"
#endif
#ifndef TESTDATA_DIR
#error "TESTDATA_DIR must name the tests/data/ directory"
#endif

#define BAD_DIR TESTDATA_DIR "/models-bad"

static nb_model *parse(nb_ctx *ctx, const char *json, nb_dtype dtype)
{
    nb_model *m = nb_model_parse(ctx, json, strlen(json), "test.json", dtype);
    ck_assert_msg(m != NULL, "%s", nb_errmsg(ctx));
    return m;
}

/* Sets a model tensor's values by name. */
static void set_values(nb_model *m, const char *name, const double *values)
{
    nb_tensor *t = nb_model_find(m, name);
    ck_assert_msg(t != NULL, "no tensor %s", name);
    for (int64_t i = 0; i < t->numel; i++)
        nb_set(t, i, values[i]);
}

/* ---- the course's models ------------------------------------------------ */

static const struct {
    const char *file, *name;
    int64_t params;
    nb_loss_kind loss;
    int64_t buffers; /* batch norm's running statistics */
    int64_t in[3];   /* the input; {0} for [1, 28, 28] */
} course[] = {
    {"keras-cnn.json", "keras-cnn", 93322, NB_LOSS_CROSS_ENTROPY, 0, {0}},
    {"lenet.json", "lenet", 106154, NB_LOSS_CROSS_ENTROPY, 0, {0}},
    {"cnn3.json", "cnn3", 98442, NB_LOSS_CROSS_ENTROPY, 0, {0}},
    {"mlp.json", "mlp", 567434, NB_LOSS_CROSS_ENTROPY, 0, {0}},
    {"binary.json", "binary", 6433, NB_LOSS_HINGE, 0, {0}},
    {"dropout-net.json", "dropout-net", 923116, NB_LOSS_CROSS_ENTROPY, 0, {0}},
    /* 8 (9 + 1) + 8 (72 + 1) + 10 (1568 + 1) */
    {"resnet-mini.json", "resnet-mini", 16354, NB_LOSS_CROSS_ENTROPY, 0, {0}},
    /* 80 + 16 (batch norm) + 1168 + 32 (batch norm) + 50240 + 650 */
    {"bn-dropout.json", "bn-dropout", 52186, NB_LOSS_CROSS_ENTROPY, 8 + 8 + 16 + 16, {0}},
    /* convolutions without bias 3*32*9 + 32*32*9 + 32*64*9 + 64*64*9 + 64*128*9 + 128*128*9,
     * batch norms 2 (32 + 32 + 64 + 64 + 128 + 128), the classifier 2048*10 + 10 */
    {"vgg-cifar.json", "vgg-cifar", 286560 + 896 + 20490, NB_LOSS_CROSS_ENTROPY, 896, {3, 32, 32}},
    /* the stem 16*9; depthwise 16*9, 32*9, 64*9, 64*9; pointwise 16*32, 32*64, 64*64, 64*128;
     * batch norms 2 (16 + 16 + 32 + 32 + 64 + 64 + 64 + 64 + 128), the classifier 1280 + 10 */
    {"mobilenet.json", "mobilenet", 144 + 1584 + 14848 + 960 + 1290, NB_LOSS_CROSS_ENTROPY, 960, {0}},
    /* conv 1->16 and 16->32 (3x3, bias), conv_transpose [32, 16, 3, 3] + 16, conv 16->1 + 1 */
    {"autoencoder.json", "autoencoder", 160 + 4640 + 4624 + 145, NB_LOSS_MSE, 0, {0}},
};

START_TEST(test_course_models)
{
    nb_ctx *ctx = nb_ctx_new();
    char path[512];
    snprintf(path, sizeof path, "%s/%s", MODELS_DIR, course[_i].file);
    nb_model *m = nb_model_load(ctx, path, NB_F32);
    ck_assert_msg(m != NULL, "%s", nb_errmsg(ctx));
    ck_assert_str_eq(nb_model_name(m), course[_i].name);
    ck_assert_int_eq(nb_model_num_params(m, true), course[_i].params);
    ck_assert_int_eq(nb_model_num_params(m, false), course[_i].buffers);
    ck_assert_int_eq(nb_model_loss_kind(m), course[_i].loss);
    int64_t in[NB_MAX_DIMS];
    ck_assert_int_eq(nb_model_input_shape(m, in), 3);
    const int64_t *want = course[_i].in[0] ? course[_i].in : (const int64_t[]){1, 28, 28};
    ck_assert(in[0] == want[0] && in[1] == want[1] && in[2] == want[2]);
    /* A batch of 2 runs and gives [2, output...]. */
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){2, in[0], in[1], in[2]});
    nb_tensor *y = nb_model_forward(ctx, m, x);
    ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
    int64_t out[NB_MAX_DIMS];
    int nd = nb_model_output_shape(m, out);
    ck_assert_int_eq(y->ndim, nd + 1);
    ck_assert_int_eq(y->shape[0], 2);
    ck_assert_int_eq(y->shape[1], out[0]);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* nb_layer_info's settings: what differs from the defaults and what a file
 * must give, pairs of one number written once, every kind of field. */
START_TEST(test_layer_settings)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = parse(ctx,
        "{\"input\": [4, 13, 12], \"layers\": ["
        "{\"type\": \"conv2d\", \"out_channels\": 8, \"kernel_size\": [3, 2], \"stride\": [1, 2],"
        " \"padding\": 1, \"groups\": 4, \"dilation\": [2, 1], \"bias\": false,"
        " \"activation\": \"leaky_relu\"},"
        "{\"type\": \"conv2d\", \"out_channels\": 8, \"kernel_size\": 3, \"padding\": \"same\","
        " \"stride\": [1, 1]},"
        "{\"type\": \"upsample\", \"mode\": \"bilinear\", \"scale_factor\": [2, 1.5],"
        " \"align_corners\": true},"
        "{\"type\": \"layer_norm\", \"normalized_shape\": [22, 10], \"eps\": 0.001},"
        "{\"type\": \"relu\"}]}", NB_F32);
    static const char *const want[] = {
        "out_channels=8, kernel_size=[3, 2], stride=[1, 2], padding=1, bias=false, groups=4, "
        "dilation=[2, 1]",
        "out_channels=8, kernel_size=3, padding=\"same\"",
        "mode=\"bilinear\", scale_factor=[2, 1.5], align_corners=true",
        "normalized_shape=[22, 10], eps=0.001",
        NULL,
    };
    for (int i = 0; i < 5; i++) {
        nb_layer_info li;
        ck_assert_int_eq(nb_model_layer(m, i, &li), NB_OK);
        if (want[i])
            ck_assert_str_eq(li.settings, want[i]);
        else
            ck_assert_ptr_null(li.settings);
    }
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_keras_cnn_shapes)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = nb_model_load(ctx, MODELS_DIR "/keras-cnn.json", NB_F32);
    ck_assert_msg(m != NULL, "%s", nb_errmsg(ctx));
    static const struct {
        const char *type;
        int ndim;
        int64_t shape[3];
        int64_t params;
    } want[] = {
        {"conv2d", 3, {32, 26, 26}, 320},   {"max_pool2d", 3, {32, 13, 13}, 0},
        {"conv2d", 3, {64, 11, 11}, 18496}, {"max_pool2d", 3, {64, 5, 5}, 0},
        {"conv2d", 3, {64, 3, 3}, 36928},   {"flatten", 1, {576}, 0},
        {"linear", 1, {64}, 36928},         {"linear", 1, {10}, 650},
    };
    ck_assert_int_eq(nb_model_num_layers(m), 8);
    for (int i = 0; i < 8; i++) {
        nb_layer_info li;
        ck_assert_int_eq(nb_model_layer(m, i, &li), NB_OK);
        char idx[4];
        snprintf(idx, sizeof idx, "%d", i);
        ck_assert_str_eq(li.name, idx);
        ck_assert_str_eq(li.type, want[i].type);
        ck_assert_int_eq(li.ndim, want[i].ndim);
        for (int d = 0; d < li.ndim; d++)
            ck_assert_int_eq(li.shape[d], want[i].shape[d]);
        ck_assert_int_eq(li.params, want[i].params);
        ck_assert_int_eq(li.ninputs, 1);
        char prev[4];
        snprintf(prev, sizeof prev, "%d", i - 1);
        ck_assert_str_eq(li.inputs[0], i ? prev : "input");
    }
    nb_layer_info li;
    ck_assert_int_eq(nb_model_layer(m, 8, &li), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "model \"keras-cnn\": no layer 8 (it has 8)");
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- mistakes ------------------------------------------------------------- */

/* Each file in tests/data/models-bad and the message after its path. */
static const struct {
    const char *file, *msg;
} bad[] = {
    {"activation-on-relu.json",
     ": layers[0] (relu \"0\"): unknown field \"activation\""},
    {"add-in-layers.json",
     ": layers[1] (add \"1\"): add reads several inputs: write the model in the graph form (\"nodes\" and \"output\")"},
    {"add-one-input.json",
     ": nodes[1] (add \"s\"): add needs at least 2 inputs, got 1"},
    {"add-shapes.json",
     ": nodes[2] (add \"sum\"): inputs \"a\" [4, 8, 8] and \"b\" [4, 6, 6] differ in shape"},
    {"bad-activation.json",
     ": layers[0].activation: unknown activation \"rleu\" (did you mean \"relu\"?)"},
    {"batch-norm-shape.json",
     ": layers[0] (batch_norm \"0\"): input [2, 4, 5, 5] must be [C], [C, L] or [C, H, W]"},
    {"bool-field.json",
     ": layers[0].bias: expected true or false, got \"yes\""},
    {"both-forms.json",
     ": nodes: give \"layers\" (a sequence) or \"nodes\" (a graph), not both"},
    {"concat-shapes.json",
     ": nodes[1] (concat \"cat\"): input \"a\" [4, 6, 6] does not match input \"input\" [1, 8, 8] outside dim 0"},
    {"conv-dilation-span.json",
     ": layers[0] (conv2d \"0\"): kernel_size 3 with dilation 4 (span 9) is larger than its 8x8 input"},
    {"conv-dilation-zero.json",
     ": layers[0].dilation[1]: must be positive, got 0"},
    {"conv-gemm-sizes.json",
     ": layers[0] (conv2d \"0\"): input [1, 50000, 50000] and weight [1, 1, 1, 1] are too large"},
    {"conv-4d-input.json",
     ": layers[0] (conv2d \"0\"): input [1, 1, 28, 28] must be [C, H, W]"},
    {"conv-groups-in-channels.json",
     ": layers[0] (conv2d \"0\"): input [4, 8, 8] has 4 channels, but weight [4, 1, 3, 3] with groups 2 takes 2"},
    {"conv-groups-in.json",
     ": layers[0] (conv2d \"0\"): in_channels 6 is not divisible by groups 4"},
    {"conv-groups-out.json",
     ": layers[0] (conv2d \"0\"): out_channels 6 is not divisible by groups 4"},
    {"conv-groups-real.json",
     ": layers[0].groups: must be an integer, got 1.5"},
    {"conv-groups-zero.json",
     ": layers[0].groups: must be positive, got 0"},
    {"conv-on-flat.json",
     ": layers[0] (conv2d \"0\"): input [784] must be [C, H, W]"},
    {"conv1d-dilation-pair.json",
     ": layers[0].dilation: expected an integer, got a list of 2"},
    {"conv1d-groups.json",
     ": layers[0] (conv1d \"0\"): in_channels 3 is not divisible by groups 2"},
    {"conv1d-kernel.json",
     ": layers[0] (conv1d \"0\"): kernel_size 5 is larger than its input of length 4"},
    {"conv1d-same-stride.json",
     ": layers[0] (conv1d \"0\"): padding \"same\" needs stride 1, got stride 2"},
    {"conv1d-pair.json",
     ": layers[0].kernel_size: expected an integer, got a list of 2"},
    {"convt-in-channels.json",
     ": layers[0] (conv_transpose2d \"0\"): input [1, 28, 28] has 1 channel, but in_channels is 3 (weight [3, 4, 3, 2])"},
    {"convt-in-groups.json",
     ": layers[0] (conv_transpose2d \"0\"): in_channels 3 is not divisible by groups 2"},
    {"convt-out-groups.json",
     ": layers[0] (conv_transpose2d \"0\"): out_channels 5 is not divisible by groups 2"},
    {"convt-output-padding.json",
     ": layers[0] (conv_transpose2d \"0\"): output_padding 2 must be smaller than stride 2 or dilation 1"},
    {"convt-too-small.json",
     ": layers[0] (conv_transpose2d \"0\"): input [1, 3, 3] and weight [1, 4, 2, 2] give an output of 0x0: padding 2 is too large"},
    {"cycle.json",
     ": nodes[1] (relu \"b\"): cycle: b -> c -> b"},
    {"dangling-input.json",
     ": nodes[2] (add \"res\"): input \"conv9\" is not a node"},
    {"dropout-p.json",
     ": layers[0].p: must be in [0, 1), got 1"},
    {"dropout2d-flat.json",
     ": layers[0] (dropout2d \"0\"): input [10] must be at least 2-D [C, ...]"},
    {"duplicate-field.json",
     ": layers[0] (dropout \"0\"): field \"p\" appears twice"},
    {"duplicate-index.json",
     ": layers[1] (relu \"1\"): duplicate name \"1\" (also layers[0]'s); an unnamed layer is named by its position"},
    {"duplicate-key.json",
     ": input: appears twice"},
    {"duplicate-name.json",
     ": layers[2] (linear \"fc\"): duplicate name \"fc\" (also layers[0]'s)"},
    {"empty-layers.json",
     ": layers: the list is empty"},
    {"empty.json",
     ":1:1: invalid JSON: the text is empty"},
    {"eps-zero.json",
     ": layers[0].eps: must be positive, got 0"},
    {"flatten-too-large.json",
     ": layers[0] (flatten \"0\"): its output [1000000000000] has a size above 2147483647"},
    {"gap-flat.json",
     ": layers[0] (global_avg_pool2d \"0\"): input [10] must be [C, H, W]"},
    {"gelu-approximate.json",
     ": layers[0].approximate: expected \"none\" or \"tanh\", got \"tanhh\" (did you mean \"tanh\"?)"},
    {"group-norm-channels.json",
     ": layers[0] (group_norm \"0\"): input [6, 4, 4] has 6 channels, but num_channels is 8"},
    {"group-norm-divide.json",
     ": layers[0] (group_norm \"0\"): num_groups 3 does not divide num_channels 8"},
    {"group-norm-groups.json",
     ": layers[0] (group_norm \"0\"): num_groups 4 does not divide the 6 channels of input [6, 4, 4]"},
    {"in-channels.json",
     ": layers[0] (conv2d \"0\"): input [1, 28, 28] has 1 channel, but in_channels is 3 (weight [4, 3, 3, 3])"},
    {"in-features.json",
     ": layers[1] (linear \"1\"): input [784] has 784 features, but in_features is 748 (weight [10, 748])"},
    {"init-a-not-leaky.json",
     ": layers[0].init: kaiming_normal: \"a\" is leaky_relu's negative slope, but the nonlinearity is \"relu\""},
    {"init-arg-beside-object.json",
     ": layers[0].init: \"std\" beside a \"weight\" object: put the weight's arguments inside it"},
    {"init-arg-without-weight.json",
     ": layers[0].init: \"std\" is an argument of the weight's initialiser: name it with \"weight\""},
    {"init-bias-fans.json",
     ": layers[0].init.bias: xavier_normal needs a tensor of 2 or more dimensions (for its fan in and fan out), but the bias of linear \"0\" is [3]"},
    {"init-bias-not-name.json",
     ": layers[0].init.bias: expected an initialiser's name or an object with \"type\", got 0"},
    {"init-bias-unknown.json",
     ": layers[0].init.bias.type: unknown initialiser \"zero\" (did you mean \"zeros\"?)"},
    {"init-constant-no-val.json",
     ": layers[0].init.bias: constant needs \"val\", as in {\"type\": \"constant\", \"val\": 0.1}"},
    {"init-default-args.json",
     ": layers[0].init.bias: zeros takes no \"val\" (its arguments: none)"},
    {"init-fans-1d.json",
     ": layers[0].init.weight: kaiming_uniform needs a tensor of 2 or more dimensions (for its fan in and fan out), but the weight of batch_norm \"0\" is [4]"},
    {"init-gain-type.json",
     ": layers[0].init.gain: expected a number, got \"2\""},
    {"init-key-not-taken.json",
     ": layers[0].init: xavier_uniform takes no \"mode\" (its arguments: \"gain\")"},
    {"init-mode.json",
     ": layers[0].init.mode: expected \"fan_in\" or \"fan_out\", got \"fan\""},
    {"init-no-affine.json",
     ": layers[0].init: batch_norm \"0\" has no weight or bias to initialise (\"affine\" is false)"},
    {"init-no-bias.json",
     ": layers[0].init.bias: conv2d \"0\" has no bias (\"bias\" is false)"},
    {"init-no-params.json",
     ": layers[0].init: relu \"0\" has no weight or bias to initialise"},
    {"init-nonlinearity.json",
     ": layers[0].init.nonlinearity: expected \"linear\", \"conv1d\", \"conv2d\", \"conv3d\", \"conv_transpose1d\", \"conv_transpose2d\", \"conv_transpose3d\", \"sigmoid\", \"tanh\", \"relu\", \"leaky_relu\" or \"selu\", got \"rleu\" (did you mean \"relu\"?)"},
    {"init-not-object.json",
     ": layers[0].init: expected an object such as {\"weight\": \"kaiming_normal\", \"bias\": \"zeros\"}, got \"kaiming_normal\""},
    {"init-object-no-type.json",
     ": layers[0].init.weight: missing field \"type\" (the initialiser's name)"},
    {"init-std-negative.json",
     ": layers[0].init.std: must be in [0, 1e+06], got -0.01"},
    {"init-trunc-normal-bounds.json",
     ": layers[0].init: trunc_normal needs a < b, got a 2 and b -2"},
    {"init-trunc-normal-mass.json",
     ": layers[0].init: trunc_normal: [a, b] = [10, 11] holds 0 of normal(0, 1), less than 0.01"},
    {"init-uniform-a-above-b.json",
     ": layers[0].init: uniform needs a <= b, got a 1 and b -1"},
    {"init-unknown-key.json",
     ": layers[0].init: unknown field \"sdt\" (did you mean \"std\"?)"},
    {"init-unknown.json",
     ": layers[0].init.weight: unknown initialiser \"kaiming_normall\" (did you mean \"kaiming_normal\"?)"},
    {"input-empty.json",
     ": input: expected a list of 1 to 7 sizes (one example, batch excluded), got a list of 0"},
    {"input-not-list.json",
     ": input: expected a list of 1 to 7 sizes (one example, batch excluded), got 784"},
    {"input-too-large.json",
     ": input: [1000000, 1000000, 1000000] is too large (over 2^40 elements per example)"},
    {"input-zero.json",
     ": input[1]: must be positive, got 0"},
    {"inputs-in-layers.json",
     ": layers[0] (relu \"0\"): \"inputs\" belongs to the graph form (\"nodes\"); in \"layers\" each layer reads the one before it"},
    {"inputs-not-list.json",
     ": nodes[0].inputs: expected a list of names, got \"input\""},
    {"kernel-too-large-padded.json",
     ": layers[0] (conv2d \"0\"): kernel_size 7 is larger than its 3x3 input padded to 5x5"},
    {"kernel-too-large.json",
     ": layers[0] (conv2d \"0\"): kernel_size 5 is larger than its 3x3 input"},
    {"layer-norm-dims.json",
     ": layers[0] (layer_norm \"0\"): normalized_shape [2, 3, 4, 5] has more dimensions than input [3, 4, 5]"},
    {"layer-norm-empty.json",
     ": layers[0].normalized_shape: expected an integer or a list of 1 to 7 integers, got a list of 0"},
    {"layer-norm-shape.json",
     ": layers[0] (layer_norm \"0\"): normalized_shape [4, 6] does not match the last 2 dimensions of input [4, 5, 6]"},
    {"layer-not-object.json",
     ": layers[1]: expected an object, got \"relu\""},
    {"linear-unflattened.json",
     ": layers[2] (linear \"fc\"): input [16, 7, 7] must be [in_features]: flatten it first"},
    {"loss-ce-one-unit.json",
     ": loss: cross_entropy needs [C] class scores per example with C >= 2, but the output (\"0\") is [1]"},
    {"loss-field.json",
     ": loss: unknown field \"reduction\""},
    {"loss-hinge-ten.json",
     ": loss: hinge needs 1 score per example, but the output (\"0\") is [10]"},
    {"loss-string.json",
     ": loss: expected an object such as {\"type\": \"cross_entropy\"}, got \"mse\""},
    {"loss-unknown.json",
     ": loss: unknown type \"hinje\" (did you mean \"hinge\"?); use cross_entropy, mse or hinge"},
    {"missing-field.json",
     ": layers[0] (conv2d \"0\"): missing field \"out_channels\""},
    {"missing-input.json",
     ": input: missing: give the shape of one example, e.g. [1, 28, 28]"},
    {"missing-inputs.json",
     ": nodes[0] (relu \"a\"): missing field \"inputs\" (a list of node names, or \"input\")"},
    {"missing-output.json",
     ": output: missing: the graph form names its output node"},
    {"missing-type.json",
     ": layers[0]: missing field \"type\""},
    {"misspelled-field.json",
     ": layers[0] (conv2d \"0\"): unknown field \"kernal_size\" (did you mean \"kernel_size\"?)"},
    {"name-chars.json",
     ": layers[0].name: \"fc.1\" may hold only letters, digits, '_' and '-'"},
    {"name-not-string.json",
     ": name: expected a string, got 7"},
    {"no-layers.json",
     ": layers: missing: give \"layers\" (a sequence) or \"nodes\" and \"output\" (a graph)"},
    {"node-named-input.json",
     ": nodes[0].name: \"input\" names the model's input; choose another name"},
    {"node-without-name.json",
     ": nodes[0] (relu): missing field \"name\""},
    {"normalize-misspelled.json",
     ": training.normalize: unknown field \"sdt\" (did you mean \"std\"?)"},
    {"num-features.json",
     ": layers[0] (batch_norm \"0\"): input [4, 5, 5] has 4 channels, but num_features is 3"},
    {"optimizer-betas.json",
     ": optimizer.betas: expected a list of 2 numbers, got a list of 1"},
    {"optimizer-misspelled.json",
     ": optimizer: unknown field \"lrr\" (did you mean \"lr\"?)"},
    {"optimizer-not-object.json",
     ": optimizer: expected an object, got \"sgd\""},
    {"optimizer-type.json",
     ": optimizer.type: expected \"sgd\", \"adam\", \"adamw\" or \"rmsprop\", got \"adamm\" (did you mean \"adam\"?)"},
    {"output-in-layers.json",
     ": output: only the graph form (\"nodes\") names its output; \"layers\" ends with its last layer"},
    {"output-overflow.json",
     ": layers[0] (conv1d \"0\"): its output [2000000000, 1024] is too large (over 2^40 elements per example)"},
    {"padding-word.json",
     ": layers[0].padding: expected an integer, a list [h, w], \"same\" or \"valid\", got \"full\""},
    {"pair-element.json",
     ": layers[0].kernel_size[1]: must be positive, got 0"},
    {"pair-length.json",
     ": layers[0].kernel_size: expected an integer or a list [h, w], got a list of 3"},
    {"pool-padding.json",
     ": layers[0] (max_pool2d \"0\"): padding 2 is more than half of kernel_size 3"},
    {"pool-argmax.json",
     ": layers[0] (max_pool2d \"0\"): input [1, 65536, 32769] has planes over 2147483647 elements"},
    {"pool-too-large.json",
     ": layers[1] (max_pool2d \"pool\"): kernel_size 4 is larger than its 3x3 input"},
    {"real-not-number.json",
     ": layers[0].negative_slope: expected a number, got \"0.1\""},
    {"relu-two-inputs.json",
     ": nodes[0] (relu \"a\"): relu reads 1 input, got 2"},
    {"same-pool.json",
     ": layers[0].padding: expected an integer or a list [h, w], got \"same\""},
    {"same-stride.json",
     ": layers[0] (conv2d \"0\"): padding \"same\" needs stride 1, got stride 2"},
    {"schedule-gamma.json",
     ": training.lr_schedule.gamma: must be in [0, 1e+06], got -0.5"},
    {"schedule-type.json",
     ": training.lr_schedule.type: expected \"none\", \"step\" or \"cosine\", got \"cosin\" (did you mean \"cosine\"?)"},
    {"self-cycle.json",
     ": nodes[0] (relu \"a\"): cycle: a -> a"},
    {"size-bool.json",
     ": layers[0].out_channels: expected an integer, got true"},
    {"size-fraction.json",
     ": layers[0].kernel_size: must be an integer, got 3.5"},
    {"size-negative.json",
     ": layers[0].padding: must not be negative, got -1"},
    {"size-string.json",
     ": layers[0].out_channels: expected an integer, got \"4\""},
    {"size-too-large.json",
     ": layers[1].out_features: 3000000000 is too large (at most 2147483647)"},
    {"size-zero.json",
     ": layers[1].out_features: must be positive, got 0"},
    {"softmax-dim.json",
     ": layers[0] (softmax \"0\"): dim 2 is out of range for input [N, 10]: use 1 or -1"},
    {"softplus-beta.json",
     ": layers[0].beta: must be positive, got 0"},
    {"syntax-error.json",
     ":5:5: invalid JSON"},
    {"top-level-list.json",
     ": the top level must be an object, got a list of 1"},
    {"trailing-text.json",
     ":1:46: invalid JSON: text after the end"},
    {"training-classes.json",
     ": training.classes: 3 is listed twice"},
    {"training-epochs.json",
     ": training.epochs: must be an integer, got 2.5"},
    {"training-range.json",
     ": training.validation_split: must be in [0, 0.99], got 1"},
    {"training-type.json",
     ": training.batch_size: expected an integer, got \"64\""},
    {"type-control-char.json",
     ": layers[0]: unknown type \"relu\\u000a\" (did you mean \"relu\"?)"},
    {"type-not-string.json",
     ": layers[0].type: expected a string, got 3"},
    {"unknown-key.json",
     ": unknown key \"optimiser\" (did you mean \"optimizer\"?)"},
    {"unknown-output.json",
     ": output: \"b\" is not a node"},
    {"unknown-type.json",
     ": layers[0]: unknown type \"conv3d\" (did you mean \"conv2d\"?)"},
    {"upsample-align-nearest.json",
     ": layers[0] (upsample \"0\"): align_corners is for bilinear mode only, not nearest"},
    {"upsample-both.json",
     ": layers[0] (upsample \"0\"): both size and scale_factor are given: give one"},
    {"upsample-flat.json",
     ": layers[0] (upsample \"0\"): input [10] must be [C, H, W]"},
    {"upsample-mode.json",
     ": layers[0].mode: expected \"nearest\" or \"bilinear\", got \"bilnear\" (did you mean \"bilinear\"?)"},
    {"upsample-none.json",
     ": layers[0] (upsample \"0\"): size or scale_factor is required"},
    {"upsample-scale-zero.json",
     ": layers[0].scale_factor[1]: must be positive, got 0"},
    {"upsample-zero-pixels.json",
     ": layers[0] (upsample \"0\"): scale_factor 0.2 makes an output of 0x0 pixels from input [1, 4, 4]"},
    {"weight-overflow.json",
     ": layers[0] (linear \"0\"): its weight [2000000000, 2000000000] is too large (over 2^40 elements)"},
};

#define NBAD ((int)(sizeof bad / sizeof bad[0]))

START_TEST(test_bad_model)
{
    nb_ctx *ctx = nb_ctx_new();
    char path[512], want[1024];
    snprintf(path, sizeof path, "%s/%s", BAD_DIR, bad[_i].file);
    snprintf(want, sizeof want, "%s%s", path, bad[_i].msg);
    ck_assert_ptr_null(nb_model_load(ctx, path, NB_F32));
    ck_assert_int_eq(nb_error(ctx), NB_ERR_FORMAT);
    ck_assert_str_eq(nb_errmsg(ctx), want);
    ck_assert_ptr_null(strchr(nb_errmsg(ctx), '\n'));
    /* The same text parsed gives the same message, and nothing leaks. */
    nb_ctx_free(ctx);
}
END_TEST

/* A new bad file cannot be forgotten: every one is in the table. */
START_TEST(test_bad_dir_complete)
{
    DIR *dir = opendir(BAD_DIR);
    ck_assert_msg(dir != NULL, "cannot open %s", BAD_DIR);
    int files = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        if (e->d_name[0] == '.')
            continue;
        files++;
        bool found = false;
        for (int i = 0; i < NBAD && !found; i++)
            found = strcmp(bad[i].file, e->d_name) == 0;
        ck_assert_msg(found, "%s/%s is not in the table of test_model.c", BAD_DIR, e->d_name);
    }
    closedir(dir);
    ck_assert_int_eq(files, NBAD);
    ck_assert_int_ge(files, 30);
}
END_TEST

START_TEST(test_load_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    ck_assert_ptr_null(nb_model_load(ctx, BAD_DIR "/no-such-file.json", NB_F32));
    tst_assert_error(ctx, NB_ERR_IO, "/no-such-file.json: cannot open: No such file or directory");
    ck_assert_ptr_null(nb_model_load(ctx, BAD_DIR, NB_F32));
    tst_assert_error(ctx, NB_ERR_IO, "models-bad: cannot read: Is a directory");
    /* Without an origin, messages say <string>, and the line counts. */
    const char *json = "{\"input\": [4],\n  \"layers\": [}";
    ck_assert_ptr_null(nb_model_parse(ctx, json, strlen(json), NULL, NB_F32));
    tst_assert_error(ctx, NB_ERR_FORMAT, "<string>:2:14: invalid JSON");
    ck_assert_str_eq(nb_errmsg(ctx), "<string>:2:14: invalid JSON");
    /* len bounds the text: the rest is never read. */
    json = "{\"input\": [4], \"layers\": [{\"type\": \"relu\"}]}garbage";
    nb_model *m = nb_model_parse(ctx, json, strlen(json) - 7, NULL, NB_F32);
    ck_assert_msg(m != NULL, "%s", nb_errmsg(ctx));
    ck_assert_str_eq(nb_model_name(m), "model");
    nb_model_free(m);
    ck_assert_ptr_null(nb_model_parse(ctx, json, 0, "x.json", NB_F32));
    ck_assert_str_eq(nb_errmsg(ctx), "x.json:1:1: invalid JSON: the text is empty");
    /* A file over 16 MB is refused before parsing. */
    char big[] = "/tmp/nabla-big-XXXXXX";
    int fd = mkstemp(big);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    for (int i = 0; i < 17; i++)
        for (int k = 0; k < 1024; k++)
            fprintf(f, "%1023s\n", "");
    fclose(f);
    ck_assert_ptr_null(nb_model_load(ctx, big, NB_F32));
    tst_assert_error(ctx, NB_ERR_FORMAT, ": the file is larger than 16 MB");
    remove(big);
    ck_assert_ptr_null(nb_model_parse(ctx, json, 10, "x.json", (nb_dtype)5));
    tst_assert_error(ctx, NB_ERR_ARG, "model: unknown dtype 5");
    nb_ctx_free(ctx);
}
END_TEST

/* A place names what it can; strings from the file are escaped. */
START_TEST(test_messages_are_one_line)
{
    nb_ctx *ctx = nb_ctx_new();
    const char *json = "{\"input\": [4], \"layers\": [{\"type\": \"relu\", \"a\\nb\": 1}]}";
    ck_assert_ptr_null(nb_model_parse(ctx, json, strlen(json), "t.json", NB_F32));
    ck_assert_str_eq(nb_errmsg(ctx), "t.json: layers[0] (relu \"0\"): unknown field \"a\\u000ab\"");
    /* A very long key is cut. */
    char big[600];
    snprintf(big, sizeof big, "{\"input\": [4], \"%0400d\": 1}", 0);
    ck_assert_ptr_null(nb_model_parse(ctx, big, strlen(big), "t.json", NB_F32));
    ck_assert_int_eq(nb_error(ctx), NB_ERR_FORMAT);
    ck_assert_msg(strstr(nb_errmsg(ctx), "t.json: unknown key \"0000") == nb_errmsg(ctx), "%s",
                  nb_errmsg(ctx));
    ck_assert_ptr_nonnull(strstr(nb_errmsg(ctx), "...\""));
    ck_assert_uint_lt(strlen(nb_errmsg(ctx)), 120);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- values ------------------------------------------------------------- */

/* conv2d 1 -> 1 channel, 2x2, relu; flatten; linear 4 -> 2.  By hand, for
 * x = [[1, 2, 3], [4, 5, 6], [7, 8, 9]], w = [[1, -1], [2, 0]], b = -10:
 *   conv = [[1-2+8-10, 2-3+10-10], [4-5+14-10, 5-6+16-10]] = [[-3, -1], [3, 5]],
 *   relu = [0, 0, 3, 5];  y = W2 relu + b2 = [9+20+0.5, 3-0.5] = [29.5, 2.5].
 * For -x every conv output is negative: y = b2. */
START_TEST(test_forward_values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F64 : NB_F32;
    nb_model *m = parse(ctx, "{\"name\": \"tiny\", \"input\": [1, 3, 3], \"layers\": ["
                             "{\"type\": \"conv2d\", \"out_channels\": 1, \"kernel_size\": 2,"
                             " \"activation\": \"relu\"},"
                             "{\"type\": \"flatten\"},"
                             "{\"type\": \"linear\", \"in_features\": 4, \"out_features\": 2}]}",
                        dt);
    set_values(m, "0.weight", (double[]){1, -1, 2, 0});
    set_values(m, "0.bias", (double[]){-10});
    set_values(m, "2.weight", (double[]){1, 2, 3, 4, -1, 0, 1, 0});
    set_values(m, "2.bias", (double[]){0.5, -0.5});
    double xv[18];
    for (int i = 0; i < 9; i++) {
        xv[i] = i + 1;
        xv[9 + i] = -(i + 1);
    }
    nb_tensor *x = tst_make(ctx, dt, 4, (int64_t[]){2, 1, 3, 3}, xv);
    nb_tensor *y = nb_model_forward(ctx, m, x);
    tst_assert_values(y, 2, (int64_t[]){2, 2}, (double[]){29.5, 2.5, 0.5, -0.5}, 1e-5);
    /* The activation is the layer's output. */
    tst_assert_values(nb_model_activation(m, 0), 4, (int64_t[]){2, 1, 2, 2},
                      (double[]){0, 0, 3, 5, 0, 0, 0, 0}, 1e-5);
    tst_assert_values(nb_model_activation(m, 1), 2, (int64_t[]){2, 4},
                      (double[]){0, 0, 3, 5, 0, 0, 0, 0}, 1e-5);
    ck_assert_ptr_eq(nb_model_activation(m, 2), y);
    ck_assert_ptr_null(nb_model_activation(m, 3));
    ck_assert_ptr_null(nb_model_activation(m, -1));
    ck_assert_int_eq(nb_model_dtype(m), dt);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* conv1d over [C, L] with "same" padding, then stride 2.  By hand, for
 * x0 = [1, 2, 3, 4, 5], x1 = [0, 1, 0, 1, 0], w0 = [1, 0, -1], w1 = [0, 2, 0],
 * b = 0.5 (one zero each side):  x0[l-1] - x0[l+1] = [-2, -2, -2, -2, 4],
 * 2 x1 = [0, 2, 0, 2, 0]:  y = [-1.5, 0.5, -1.5, 0.5, 4.5];  then w = [1, 1]
 * with stride 2: [y0 + y1, y2 + y3] = [-1, -1]. */
START_TEST(test_conv1d_values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = parse(ctx, "{\"input\": [2, 5], \"layers\": ["
                             "{\"type\": \"conv1d\", \"out_channels\": 1, \"kernel_size\": 3, \"padding\": \"same\"},"
                             "{\"type\": \"conv1d\", \"out_channels\": 1, \"kernel_size\": 2, \"stride\": 2,"
                             " \"bias\": false}]}", NB_F64);
    set_values(m, "0.weight", (double[]){1, 0, -1, 0, 2, 0});
    set_values(m, "0.bias", (double[]){0.5});
    set_values(m, "1.weight", (double[]){1, 1});
    ck_assert_ptr_null(nb_model_find(m, "1.bias"));
    nb_tensor *x = tst_make(ctx, NB_F64, 3, (int64_t[]){1, 2, 5}, (double[]){1, 2, 3, 4, 5, 0, 1, 0, 1, 0});
    nb_tensor *y = nb_model_forward(ctx, m, x);
    tst_assert_values(nb_model_activation(m, 0), 3, (int64_t[]){1, 1, 5},
                      (double[]){-1.5, 0.5, -1.5, 0.5, 4.5}, 1e-12);
    tst_assert_values(y, 3, (int64_t[]){1, 1, 2}, (double[]){-1, -1}, 1e-12);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_forward_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = nb_model_load(ctx, MODELS_DIR "/lenet.json", NB_F32);
    ck_assert_msg(m != NULL, "%s", nb_errmsg(ctx));
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){8, 3, 28, 28});
    ck_assert_ptr_null(nb_model_forward(ctx, m, x));
    tst_assert_error(ctx, NB_ERR_ARG, "model \"lenet\": input [8, 3, 28, 28] does not match [N, 1, 28, 28]");
    x = nb_tensor_new(ctx, NB_F32, 3, (int64_t[]){8, 28, 28});
    ck_assert_ptr_null(nb_model_forward(ctx, m, x));
    tst_assert_error(ctx, NB_ERR_ARG, "model \"lenet\": input [8, 28, 28] does not match [N, 1, 28, 28]");
    x = nb_tensor_new(ctx, NB_F64, 4, (int64_t[]){8, 1, 28, 28});
    ck_assert_ptr_null(nb_model_forward(ctx, m, x));
    tst_assert_error(ctx, NB_ERR_ARG, "model \"lenet\": input is f64, the model is f32");
    /* A NULL input keeps the message of the op that made it. */
    ck_assert_ptr_null(nb_model_forward(ctx, m, nb_relu(ctx, NULL)));
    tst_assert_error(ctx, NB_ERR_ARG, "model \"lenet\": input is f64, the model is f32");
    /* An op's failure names the layer. */
    nb_set_training(ctx, true);
    nb_model *bn = parse(ctx, "{\"name\": \"bn\", \"input\": [3], \"layers\": [{\"type\": \"batch_norm\"}]}", NB_F32);
    x = nb_tensor_new(ctx, NB_F32, 2, (int64_t[]){1, 3});
    ck_assert_ptr_null(nb_model_forward(ctx, bn, x));
    tst_assert_error(ctx, NB_ERR_ARG, "model \"bn\": layer \"0\" (batch_norm): batch_norm: input [1, 3] has 1 value per channel");
    /* Another context than the model's. */
    nb_ctx *other = nb_ctx_new();
    nb_tensor *xo = nb_tensor_new(other, NB_F32, 4, (int64_t[]){1, 1, 28, 28});
    ck_assert_ptr_null(nb_model_forward(other, m, xo));
    tst_assert_error(other, NB_ERR_ARG, "model \"lenet\": forward in a context other than the model's");
    nb_ctx_free(other);
    nb_model_free(bn);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- losses ------------------------------------------------------------- */

START_TEST(test_losses)
{
    nb_ctx *ctx = nb_ctx_new();
    /* mse fits any output. */
    nb_model *m = parse(ctx, "{\"name\": \"reg\", \"input\": [2], \"layers\": ["
                             "{\"type\": \"linear\", \"out_features\": 2, \"bias\": false}],"
                             " \"loss\": {\"type\": \"mse\"}}", NB_F64);
    ck_assert_int_eq(nb_model_loss_kind(m), NB_LOSS_MSE);
    set_values(m, "0.weight", (double[]){1, 0, 0, 2});
    nb_tensor *x = tst_make(ctx, NB_F64, 2, (int64_t[]){1, 2}, (double[]){3, 4});
    nb_tensor *t = tst_make(ctx, NB_F64, 2, (int64_t[]){1, 2}, (double[]){1, 10});
    nb_tensor *y = nb_model_forward(ctx, m, x); /* [3, 8] */
    /* ((3 - 1)^2 + (8 - 10)^2) / 2 = 4 */
    tst_assert_values(nb_model_loss(ctx, m, y, NULL, t), 0, NULL, (double[]){4}, 1e-12);
    ck_assert_ptr_null(nb_model_loss(ctx, m, y, NULL, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "model \"reg\": mse needs a target");
    nb_model_free(m);

    /* hinge on [N, 1] with targets [N]: mean(max(0, 1 - y f)). */
    m = parse(ctx, "{\"name\": \"svm\", \"input\": [2], \"layers\": ["
                   "{\"type\": \"linear\", \"out_features\": 1, \"bias\": false}],"
                   " \"loss\": {\"type\": \"hinge\"}}", NB_F64);
    set_values(m, "0.weight", (double[]){1, -1});
    x = tst_make(ctx, NB_F64, 2, (int64_t[]){2, 2}, (double[]){2, 1.5, 0, 2}); /* f = 0.5, -2 */
    nb_tensor *lab = tst_make(ctx, NB_F64, 1, (int64_t[]){2}, (double[]){1, 1});
    y = nb_model_forward(ctx, m, x);
    /* (max(0, 1 - 0.5) + max(0, 1 + 2)) / 2 = 1.75 */
    tst_assert_values(nb_model_loss(ctx, m, y, NULL, lab), 0, NULL, (double[]){1.75}, 1e-12);
    nb_tensor *lab3 = tst_make(ctx, NB_F64, 1, (int64_t[]){3}, (double[]){1, 1, 1});
    ck_assert_ptr_null(nb_model_loss(ctx, m, y, NULL, lab3));
    tst_assert_error(ctx, NB_ERR_ARG, "model \"svm\": hinge needs one score and one target per example: output [2, 1], target [3]");
    nb_model_free(m);

    /* cross entropy: labels; a model without a loss has none. */
    m = parse(ctx, "{\"name\": \"ce\", \"input\": [2], \"layers\": ["
                   "{\"type\": \"linear\", \"out_features\": 2, \"bias\": false}],"
                   " \"loss\": {\"type\": \"cross_entropy\"}}", NB_F64);
    set_values(m, "0.weight", (double[]){0, 0, 0, 0});
    y = nb_model_forward(ctx, m, x);
    /* uniform logits: log 2 */
    tst_assert_values(nb_model_loss(ctx, m, y, (int32_t[]){0, 1}, NULL), 0, NULL,
                      (double[]){0.69314718055994531}, 1e-12);
    ck_assert_ptr_null(nb_model_loss(ctx, m, y, NULL, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "model \"ce\": cross_entropy needs labels");
    nb_model_free(m);
    m = parse(ctx, "{\"name\": \"x\", \"input\": [2], \"layers\": [{\"type\": \"relu\"}]}", NB_F64);
    ck_assert_int_eq(nb_model_loss_kind(m), NB_LOSS_NONE);
    ck_assert_ptr_null(nb_model_loss(ctx, m, nb_model_forward(ctx, m, x), NULL, lab));
    tst_assert_error(ctx, NB_ERR_ARG, "model \"x\": has no loss");
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- the graph form ------------------------------------------------------- */

/* Nodes written out of order run in order; add and concat by hand:
 *   a = W x + b with W = [[1, 2], [-1, 1]], b = [0, -1]
 *   x = [1, 1]:  a = [3, -1]; r = relu(a) = [3, 0]; s = a + r = [6, -1];
 *   c = concat(s, x) = [6, -1, 1, 1].  "spare" reads nothing the output
 * needs: it runs, and its parameters exist. */
START_TEST(test_graph_form)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = parse(ctx,
        "{\"name\": \"g\", \"input\": [2], \"nodes\": ["
        " {\"name\": \"c\", \"type\": \"concat\", \"inputs\": [\"s\", \"input\"]},"
        " {\"name\": \"a\", \"type\": \"linear\", \"inputs\": [\"input\"], \"out_features\": 2},"
        " {\"name\": \"s\", \"type\": \"add\", \"inputs\": [\"a\", \"r\"]},"
        " {\"name\": \"r\", \"type\": \"relu\", \"inputs\": [\"a\"]},"
        " {\"name\": \"spare\", \"type\": \"linear\", \"inputs\": [\"r\"], \"out_features\": 3}],"
        " \"output\": \"c\"}", NB_F64);
    static const char *const order[] = {"a", "r", "s", "c", "spare"};
    ck_assert_int_eq(nb_model_num_layers(m), 5);
    for (int i = 0; i < 5; i++) {
        nb_layer_info li;
        nb_model_layer(m, i, &li);
        ck_assert_str_eq(li.name, order[i]);
    }
    nb_layer_info li;
    nb_model_layer(m, 3, &li);
    ck_assert_str_eq(li.type, "concat");
    ck_assert_int_eq(li.ninputs, 2);
    ck_assert_str_eq(li.inputs[0], "s");
    ck_assert_str_eq(li.inputs[1], "input");
    ck_assert_int_eq(li.ndim, 1);
    ck_assert_int_eq(li.shape[0], 4);
    int64_t out[NB_MAX_DIMS];
    ck_assert_int_eq(nb_model_output_shape(m, out), 1);
    ck_assert_int_eq(out[0], 4);
    ck_assert_ptr_nonnull(nb_model_find(m, "spare.weight"));
    ck_assert_int_eq(nb_model_num_params(m, true), 6 + 9);
    set_values(m, "a.weight", (double[]){1, 2, -1, 1});
    set_values(m, "a.bias", (double[]){0, -1});
    nb_tensor *x = tst_make(ctx, NB_F64, 2, (int64_t[]){1, 2}, (double[]){1, 1});
    nb_tensor *y = nb_model_forward(ctx, m, x);
    tst_assert_values(y, 2, (int64_t[]){1, 4}, (double[]){6, -1, 1, 1}, 1e-12);
    ck_assert_ptr_nonnull(nb_model_activation(m, 4));
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* Channels concatenate on dim 0 of an example; the "same" padding keeps
 * the size. */
START_TEST(test_graph_concat_channels)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = parse(ctx,
        "{\"input\": [1, 5, 5], \"nodes\": ["
        " {\"name\": \"a\", \"type\": \"conv2d\", \"inputs\": [\"input\"], \"out_channels\": 2,"
        "  \"kernel_size\": [3, 5], \"padding\": \"same\"},"
        " {\"name\": \"b\", \"type\": \"conv2d\", \"inputs\": [\"input\"], \"out_channels\": 3,"
        "  \"kernel_size\": 1},"
        " {\"name\": \"cat\", \"type\": \"concat\", \"inputs\": [\"a\", \"b\", \"input\"]},"
        " {\"name\": \"gap\", \"type\": \"global_avg_pool2d\", \"inputs\": [\"cat\"]}],"
        " \"output\": \"gap\"}", NB_F32);
    nb_layer_info li;
    nb_model_layer(m, 2, &li);
    ck_assert(li.ndim == 3 && li.shape[0] == 6 && li.shape[1] == 5 && li.shape[2] == 5);
    nb_model_layer(m, 3, &li);
    ck_assert(li.ndim == 1 && li.shape[0] == 6);
    ck_assert_int_eq(nb_model_find(m, "a.weight")->shape[3], 5);
    nb_tensor *x = nb_tensor_full(ctx, NB_F32, 4, (int64_t[]){2, 1, 5, 5}, 1.0);
    nb_tensor *y = nb_model_forward(ctx, m, x);
    ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
    ck_assert(y->ndim == 2 && y->shape[0] == 2 && y->shape[1] == 6);
    ck_assert(nb_get(y, 5) == 1.0f); /* the input's channel, averaged */
    ck_assert_str_eq(nb_model_name(m), "test");
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- names ---------------------------------------------------------------- */

/* Unnamed layers take their position, as nn.Sequential; tensors come in
 * state_dict order. */
START_TEST(test_names)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = parse(ctx,
        "{\"input\": [4], \"layers\": ["
        " {\"type\": \"linear\", \"out_features\": 3},"
        " {\"type\": \"relu\"},"
        " {\"name\": \"head\", \"type\": \"linear\", \"out_features\": 2},"
        " {\"type\": \"batch_norm\"},"
        " {\"type\": \"batch_norm\", \"affine\": false}]}", NB_F32);
    static const char *const names[] = {"0.weight", "0.bias", "head.weight", "head.bias",
                                        "3.weight", "3.bias", "3.running_mean",
                                        "3.running_var", "4.running_mean", "4.running_var"};
    static const bool buffer[] = {0, 0, 0, 0, 0, 0, 1, 1, 1, 1};
    ck_assert_int_eq(nb_model_num_tensors(m), 10);
    for (int i = 0; i < 10; i++) {
        nb_tensor *t = nb_model_tensor(m, i);
        ck_assert_str_eq(t->name, names[i]);
        ck_assert_int_eq(nb_model_is_buffer(m, i), buffer[i]);
        ck_assert_int_eq(t->requires_grad, !buffer[i]);
        ck_assert_ptr_eq(nb_model_find(m, names[i]), t);
    }
    ck_assert_ptr_null(nb_model_tensor(m, 10));
    ck_assert_ptr_null(nb_model_find(m, "1.weight"));
    /* 12 + 3 + 6 + 2 + 2 + 2 trainable; 2 + 2 + 2 + 2 buffers */
    ck_assert_int_eq(nb_model_num_params(m, true), 27);
    ck_assert_int_eq(nb_model_num_params(m, false), 8);
    nb_layer_info li;
    nb_model_layer(m, 3, &li);
    ck_assert_str_eq(li.name, "3");
    ck_assert_int_eq(li.params, 4);
    ck_assert_int_eq(li.buffers, 4);
    ck_assert_str_eq(li.inputs[0], "head");
    /* batch norm starts at weight 1, bias 0, mean 0, var 1 */
    tst_assert_values(nb_model_find(m, "3.weight"), 1, (int64_t[]){2}, (double[]){1, 1}, 0);
    tst_assert_values(nb_model_find(m, "3.bias"), 1, (int64_t[]){2}, (double[]){0, 0}, 0);
    tst_assert_values(nb_model_find(m, "4.running_var"), 1, (int64_t[]){2}, (double[]){1, 1}, 0);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* Initialisation is PyTorch's default, from a generator seeded with 0:
 * the same at every load, and nb_model_init draws again. */
START_TEST(test_init)
{
    nb_ctx *ctx = nb_ctx_new();
    const char *json = "{\"input\": [1, 4, 4], \"layers\": [{\"type\": \"conv2d\", \"out_channels\": 2,"
                       " \"kernel_size\": 2}, {\"type\": \"flatten\"}, {\"type\": \"linear\", \"out_features\": 3}]}";
    nb_model *a = parse(ctx, json, NB_F64);
    nb_model *b = parse(ctx, json, NB_F64);
    nb_tensor *wa = nb_model_find(a, "0.weight"), *wb = nb_model_find(b, "0.weight");
    nb_tensor *fa = nb_model_find(a, "2.weight"), *fb = nb_model_find(a, "2.bias");
    /* conv fan_in 1 * 2 * 2: bound 1/2;  linear fan_in 18: bound 1/sqrt(18) */
    for (int64_t i = 0; i < wa->numel; i++) {
        ck_assert(nb_get(wa, i) == nb_get(wb, i));
        ck_assert(fabs(nb_get(wa, i)) <= 0.5);
    }
    for (int64_t i = 0; i < fa->numel; i++)
        ck_assert(fabs(nb_get(fa, i)) <= 1 / sqrt(18.0));
    for (int64_t i = 0; i < fb->numel; i++)
        ck_assert(fabs(nb_get(fb, i)) <= 1 / sqrt(18.0));
    /* The draws are nb_init_default's in layer order from seed 0. */
    nb_rng rng;
    nb_rng_seed(&rng, 0);
    nb_tensor *w = nb_tensor_new(ctx, NB_F64, 4, (int64_t[]){2, 1, 2, 2});
    nb_tensor *bias = nb_tensor_new(ctx, NB_F64, 1, (int64_t[]){2});
    nb_init_default(w, bias, &rng);
    for (int64_t i = 0; i < w->numel; i++)
        ck_assert(nb_get(w, i) == nb_get(wa, i));
    ck_assert(nb_get(bias, 1) == nb_get(nb_model_find(a, "0.bias"), 1));
    nb_rng_seed(&rng, 5);
    nb_model_init(a, &rng);
    ck_assert(nb_get(wa, 0) != nb_get(wb, 0));
    nb_model_free(a);
    nb_model_free(b);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- sections ------------------------------------------------------------- */

START_TEST(test_sections)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = nb_model_load(ctx, MODELS_DIR "/lenet.json", NB_F32);
    ck_assert_msg(m != NULL, "%s", nb_errmsg(ctx));
    ck_assert_str_eq(nb_model_section(m, "optimizer"), "{\"type\":\"sgd\",\"lr\":0.1}");
    ck_assert_str_eq(nb_model_section(m, "training"), "{\"batch_size\":64,\"epochs\":5}");
    ck_assert_ptr_null(nb_model_section(m, "loss"));
    ck_assert_ptr_null(nb_model_section(m, NULL));
    nb_model_free(m);
    m = nb_model_load(ctx, MODELS_DIR "/binary.json", NB_F32);
    ck_assert_str_eq(nb_model_section(m, "training"),
                     "{\"batch_size\":64,\"epochs\":5,\"classes\":[0,1]}");
    ck_assert_ptr_null(nb_model_section(m, "optimizer"));
    nb_model_free(m);
    /* The name defaults to the file's base name. */
    const char *json = "{\"input\": [3], \"layers\": [{\"type\": \"tanh\"}]}";
    m = nb_model_parse(ctx, json, strlen(json), "some/dir/my-net.json", NB_F32);
    ck_assert_str_eq(nb_model_name(m), "my-net");
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* What the sections say, read at load over the defaults. */
START_TEST(test_train_opts)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_train_opts t;
    nb_optim_opts o;
    /* No sections: the defaults (sgd with PyTorch's). */
    nb_model *m = parse(ctx, "{\"input\": [3], \"layers\": [{\"type\": \"tanh\"}]}", NB_F32);
    ck_assert_int_eq(nb_model_train_opts(ctx, m, &t, &o), NB_OK);
    ck_assert_int_eq(t.epochs, 5);
    ck_assert_int_eq(t.batch_size, 64);
    ck_assert(t.validation_split == 0 && t.seed == 0 && t.nclasses == 0);
    ck_assert(t.mean[0] == 0 && t.std[0] == 0 && t.nmean == 0 && t.clip_grad_norm == 0);
    ck_assert_int_eq(t.schedule, NB_SCHEDULE_NONE);
    ck_assert_int_eq(t.step_size, 1);
    ck_assert(t.gamma == 0.1 && t.min_lr == 0);
    ck_assert_int_eq(o.kind, NB_SGD);
    ck_assert(o.lr == 0.01 && o.momentum == 0 && o.dampening == 0 && !o.nesterov);
    ck_assert(o.weight_decay == 0 && o.beta1 == 0.9 && o.beta2 == 0.999);
    ck_assert(o.alpha == 0.99 && o.eps == 1e-8 && !o.centered);
    ck_assert_int_eq(nb_model_train_opts(ctx, m, NULL, NULL), NB_OK);
    nb_model_free(m);
    ck_assert_int_eq(nb_model_train_opts(ctx, NULL, &t, &o), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "model_train_opts: model is NULL");

    /* Every field. */
    m = parse(ctx, "{\"input\": [3], \"layers\": [{\"type\": \"tanh\"}],"
              " \"optimizer\": {\"type\": \"adam\", \"lr\": 0.5, \"momentum\": 0.25,"
              "  \"dampening\": 0.125, \"nesterov\": true, \"weight_decay\": 0.75,"
              "  \"betas\": [0.5, 0.625], \"alpha\": 0.875, \"eps\": 0.0625, \"centered\": true},"
              " \"training\": {\"epochs\": 7, \"batch_size\": 32, \"validation_split\": 0.25,"
              "  \"seed\": 9007199254740992, \"classes\": [7, 2, 5], \"clip_grad_norm\": 2.5,"
              "  \"normalize\": {\"mean\": 0.5, \"std\": 0.25},"
              "  \"lr_schedule\": {\"type\": \"step\", \"step_size\": 3, \"gamma\": 0.5,"
              "   \"min_lr\": 0.01}}}", NB_F32);
    ck_assert_int_eq(nb_model_train_opts(ctx, m, &t, &o), NB_OK);
    ck_assert_int_eq(o.kind, NB_ADAM);
    ck_assert(o.lr == 0.5 && o.momentum == 0.25 && o.dampening == 0.125 && o.nesterov);
    ck_assert(o.weight_decay == 0.75 && o.beta1 == 0.5 && o.beta2 == 0.625);
    ck_assert(o.alpha == 0.875 && o.eps == 0.0625 && o.centered);
    ck_assert_int_eq(t.epochs, 7);
    ck_assert_int_eq(t.batch_size, 32);
    ck_assert(t.validation_split == 0.25 && t.clip_grad_norm == 2.5);
    ck_assert(t.seed == (uint64_t)1 << 53);
    ck_assert_int_eq(t.nclasses, 3);
    ck_assert(t.classes[0] == 7 && t.classes[1] == 2 && t.classes[2] == 5);
    for (int c = 0; c < NB_MAX_CHANNELS; c++)
        ck_assert(t.mean[c] == 0.5 && t.std[c] == 0.25);
    ck_assert_int_eq(t.schedule, NB_SCHEDULE_STEP);
    ck_assert_int_eq(t.step_size, 3);
    ck_assert(t.gamma == 0.5 && t.min_lr == 0.01);
    nb_model_free(m);

    /* The optimizer's defaults are its type's, wherever the type is. */
    m = parse(ctx, "{\"input\": [3], \"layers\": [{\"type\": \"tanh\"}],"
              " \"optimizer\": {\"eps\": 0.5, \"type\": \"adamw\"},"
              " \"training\": {\"lr_schedule\": {\"type\": \"cosine\"}}}", NB_F32);
    ck_assert_int_eq(nb_model_train_opts(ctx, m, &t, &o), NB_OK);
    ck_assert_int_eq(o.kind, NB_ADAMW);
    ck_assert(o.lr == 0.001 && o.weight_decay == 0.01 && o.eps == 0.5 && o.beta2 == 0.999);
    ck_assert_int_eq(t.schedule, NB_SCHEDULE_COSINE);
    ck_assert(t.step_size == 1 && t.gamma == 0.1 && t.min_lr == 0);
    nb_model_free(m);
    m = nb_model_load(ctx, MODELS_DIR "/keras-cnn.json", NB_F32);
    ck_assert_int_eq(nb_model_train_opts(ctx, m, &t, &o), NB_OK);
    ck_assert_int_eq(o.kind, NB_RMSPROP);
    ck_assert(o.lr == 0.001 && o.alpha == 0.99 && t.validation_split == 0.2);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* The sections' rules, each with the message after "t.json: ". */
static const struct {
    const char *optimizer, *training, *msg;
} section_bad[] = {
    {NULL, "{\"epochs\": 0}", "training.epochs: must be positive, got 0"},
    {NULL, "{\"epochs\": 1000001}", "training.epochs: must be from 1 to 1000000, got 1000001"},
    {NULL, "{\"batch_size\": 1048577}",
     "training.batch_size: must be from 1 to 1048576, got 1048577"},
    {NULL, "{\"epochs\": 1, \"epochs\": 2}", "training: field \"epochs\" appears twice"},
    {NULL, "{\"epoch\": 1}", "training: unknown field \"epoch\" (did you mean \"epochs\"?)"},
    {NULL, "{\"foo\": 1}", "training: unknown field \"foo\""},
    {NULL, "{\"validation_split\": -0.5}",
     "training.validation_split: must be in [0, 0.99], got -0.5"},
    {NULL, "{\"seed\": -1}", "training.seed: must not be negative, got -1"},
    {NULL, "{\"seed\": 1e16}", "training.seed: must be from 0 to 9007199254740992, got 1e+16"},
    {NULL, "{\"seed\": 1.5}", "training.seed: must be an integer, got 1.5"},
    {NULL, "{\"clip_grad_norm\": 1e13}",
     "training.clip_grad_norm: must be in [0, 1e+12], got 10000000000000"},
    {NULL, "{\"classes\": 3}", "training.classes: expected a list of 2 to 256 integers, got 3"},
    {NULL, "{\"classes\": [1]}",
     "training.classes: expected a list of 2 to 256 integers, got a list of 1"},
    {NULL, "{\"classes\": [0, 256]}", "training.classes[1]: must be from 0 to 255, got 256"},
    {NULL, "{\"classes\": [0, \"1\"]}", "training.classes[1]: expected an integer, got \"1\""},
    {NULL, "{\"normalize\": 3}", "training.normalize: expected an object, got 3"},
    {NULL, "{\"normalize\": {\"std\": 0}}", "training.normalize.std: must be in [1e-12, 1e+06], got 0"},
    {NULL, "{\"normalize\": {\"mean\": -2e6}}",
     "training.normalize.mean: must be in [-1e+06, 1e+06], got -2000000"},
    {NULL, "{\"lr_schedule\": \"step\"}", "training.lr_schedule: expected an object, got \"step\""},
    {NULL, "{\"lr_schedule\": {\"step_size\": 2}}", "training.lr_schedule: missing field \"type\""},
    {NULL, "{\"lr_schedule\": {\"type\": 1}}",
     "training.lr_schedule.type: expected \"none\", \"step\" or \"cosine\", got 1"},
    {NULL, "{\"lr_schedule\": {\"type\": \"step\", \"step_size\": 0}}",
     "training.lr_schedule.step_size: must be positive, got 0"},
    {NULL, "{\"lr_schedule\": {\"type\": \"step\", \"gama\": 0.5}}",
     "training.lr_schedule: unknown field \"gama\" (did you mean \"gamma\"?)"},
    {NULL, "{\"lr_schedule\": {\"type\": \"cosine\", \"min_lr\": \"0\"}}",
     "training.lr_schedule.min_lr: expected a number, got \"0\""},
    {NULL, "[]", "training: expected an object, got a list of 0"},
    {"{\"type\": 3}", NULL,
     "optimizer.type: expected \"sgd\", \"adam\", \"adamw\" or \"rmsprop\", got 3"},
    {"{\"type\": \"adagrad\"}", NULL,
     "optimizer.type: expected \"sgd\", \"adam\", \"adamw\" or \"rmsprop\", got \"adagrad\""},
    {"{\"lr\": -1}", NULL, "optimizer.lr: must be in [0, 1e+06], got -1"},
    {"{\"lr\": \"0.1\"}", NULL, "optimizer.lr: expected a number, got \"0.1\""},
    {"{\"momentum\": 2e6}", NULL, "optimizer.momentum: must be in [0, 1e+06], got 2000000"},
    {"{\"dampening\": 1.5}", NULL, "optimizer.dampening: must be in [0, 1], got 1.5"},
    {"{\"weight_decay\": -0.1}", NULL, "optimizer.weight_decay: must be in [0, 1e+06], got -0.1"},
    {"{\"alpha\": 2}", NULL, "optimizer.alpha: must be in [0, 1], got 2"},
    {"{\"eps\": 2}", NULL, "optimizer.eps: must be in [0, 1], got 2"},
    {"{\"nesterov\": 1}", NULL, "optimizer.nesterov: expected true or false, got 1"},
    {"{\"centered\": \"yes\"}", NULL, "optimizer.centered: expected true or false, got \"yes\""},
    {"{\"betas\": 0.9}", NULL, "optimizer.betas: expected a list of 2 numbers, got 0.9"},
    {"{\"betas\": [0.9, 0.99, 0.999]}", NULL,
     "optimizer.betas: expected a list of 2 numbers, got a list of 3"},
    {"{\"betas\": [0.9, \"x\"]}", NULL, "optimizer.betas[1]: expected a number, got \"x\""},
    {"{\"lr\": 0.1, \"type\": \"sgd\", \"lr\": 0.2}", NULL, "optimizer: field \"lr\" appears twice"},
    {"{\"weightdecay\": 0}", NULL,
     "optimizer: unknown field \"weightdecay\" (did you mean \"weight_decay\"?)"},
};

START_TEST(test_section_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    char json[512], want[256];
    size_t n = (size_t)snprintf(json, sizeof json, "{\"input\": [3], \"layers\": [{\"type\": \"tanh\"}]");
    if (section_bad[_i].optimizer)
        n += (size_t)snprintf(json + n, sizeof json - n, ", \"optimizer\": %s", section_bad[_i].optimizer);
    if (section_bad[_i].training)
        n += (size_t)snprintf(json + n, sizeof json - n, ", \"training\": %s", section_bad[_i].training);
    snprintf(json + n, sizeof json - n, "}");
    ck_assert_ptr_null(nb_model_parse(ctx, json, strlen(json), "t.json", NB_F32));
    snprintf(want, sizeof want, "t.json: %s", section_bad[_i].msg);
    ck_assert_int_eq(nb_error(ctx), NB_ERR_FORMAT);
    ck_assert_str_eq(nb_errmsg(ctx), want);
    nb_ctx_free(ctx);
}
END_TEST

/* The network is checked before its sections: a file with mistakes in
 * both is told about the network's. */
START_TEST(test_section_order)
{
    nb_ctx *ctx = nb_ctx_new();
    const char *json = "{\"input\": [3], \"training\": {\"epochs\": 0},"
                       " \"layers\": [{\"type\": \"tanh\", \"p\": 1}]}";
    ck_assert_ptr_null(nb_model_parse(ctx, json, strlen(json), NULL, NB_F32));
    ck_assert_str_eq(nb_errmsg(ctx), "<string>: layers[0] (tanh \"0\"): unknown field \"p\"");
    json = "{\"input\": [3], \"training\": {\"epochs\": 0}, \"layers\": [{\"type\": \"tanh\"}]}";
    ck_assert_ptr_null(nb_model_parse(ctx, json, strlen(json), NULL, NB_F32));
    ck_assert_str_eq(nb_errmsg(ctx), "<string>: training.epochs: must be positive, got 0");
    nb_ctx_free(ctx);
}
END_TEST

/* ---- the activation field ------------------------------------------------- */

START_TEST(test_activation_field)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = parse(ctx, "{\"input\": [2], \"layers\": ["
                             "{\"type\": \"linear\", \"out_features\": 2, \"activation\": \"leaky_relu\"},"
                             "{\"type\": \"linear\", \"out_features\": 2, \"activation\": \"softmax\"},"
                             "{\"type\": \"linear\", \"out_features\": 1, \"bias\": false, \"activation\": \"sigmoid\"}]}",
                        NB_F64);
    set_values(m, "0.weight", (double[]){1, 0, 0, 1});
    set_values(m, "0.bias", (double[]){0, 0});
    set_values(m, "1.weight", (double[]){1, 0, 0, 0});
    set_values(m, "1.bias", (double[]){0, 0});
    set_values(m, "2.weight", (double[]){1, 1});
    nb_tensor *x = tst_make(ctx, NB_F64, 2, (int64_t[]){1, 2}, (double[]){2, -3});
    nb_tensor *y = nb_model_forward(ctx, m, x);
    /* leaky_relu's default slope 0.01: [2, -0.03]; softmax([2, 0]):
     * [e^2, 1] / (e^2 + 1); their sum is 1, and sigmoid(1). */
    tst_assert_values(nb_model_activation(m, 0), 2, (int64_t[]){1, 2}, (double[]){2, -0.03}, 1e-12);
    tst_assert_values(nb_model_activation(m, 1), 2, (int64_t[]){1, 2},
                      (double[]){0.88079707797788244, 0.11920292202211756}, 1e-12);
    tst_assert_values(y, 2, (int64_t[]){1, 1}, (double[]){0.73105857863000490}, 1e-12);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- modes: dropout and batch norm --------------------------------------- */

START_TEST(test_dropout_uses_model_rng)
{
    nb_ctx *ctx = nb_ctx_new();
    const char *json = "{\"input\": [64], \"layers\": [{\"type\": \"dropout\", \"p\": 0.5}]}";
    nb_model *m = parse(ctx, json, NB_F32);
    nb_tensor *x = nb_tensor_full(ctx, NB_F32, 2, (int64_t[]){2, 64}, 1.0);
    nb_tensor *y1 = nb_model_forward(ctx, m, x);
    nb_tensor *y2 = nb_model_forward(ctx, m, x);
    int zeros = 0, differ = 0;
    for (int64_t i = 0; i < 128; i++) {
        double v = nb_get(y1, i);
        ck_assert(v == 0 || v == 2);
        zeros += v == 0;
        differ += v != nb_get(y2, i);
    }
    ck_assert(zeros > 30 && zeros < 98);
    ck_assert_int_gt(differ, 0); /* the generator moved on */
    /* Seeded again, the same masks; another model loads with seed 0 too. */
    nb_rng_seed(nb_model_rng(m), 0);
    nb_tensor *y3 = nb_model_forward(ctx, m, x);
    nb_model *m2 = parse(ctx, json, NB_F32);
    nb_tensor *y4 = nb_model_forward(ctx, m2, x);
    for (int64_t i = 0; i < 128; i++) {
        ck_assert(nb_get(y3, i) == nb_get(y1, i));
        ck_assert(nb_get(y4, i) == nb_get(y1, i));
    }
    /* Eval mode: the identity. */
    nb_set_training(ctx, false);
    nb_tensor *y5 = nb_model_forward(ctx, m, x);
    for (int64_t i = 0; i < 128; i++)
        ck_assert(nb_get(y5, i) == 1);
    nb_model_free(m2);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* Train mode normalises with the batch and updates the running statistics
 * (momentum 0.1, unbiased variance); eval mode uses them.  Per channel:
 * [1, 3]: mean 2, variance 1 (unbiased 2);  [2, 6]: mean 4, variance 4
 * (unbiased 8).  running_mean = 0.1 [2, 4], running_var = 0.9 + 0.1 [2, 8]. */
START_TEST(test_batch_norm_modes)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = parse(ctx, "{\"input\": [2], \"layers\": [{\"type\": \"batch_norm\", \"eps\": 0.001}]}",
                        NB_F64);
    nb_tensor *x = tst_make(ctx, NB_F64, 2, (int64_t[]){2, 2}, (double[]){1, 2, 3, 6});
    nb_tensor *y = nb_model_forward(ctx, m, x);
    double a = 1 / sqrt(1.001), b = 2 / sqrt(4.001);
    tst_assert_values(y, 2, (int64_t[]){2, 2}, (double[]){-a, -b, a, b}, 1e-12);
    tst_assert_values(nb_model_find(m, "0.running_mean"), 1, (int64_t[]){2}, (double[]){0.2, 0.4}, 1e-12);
    tst_assert_values(nb_model_find(m, "0.running_var"), 1, (int64_t[]){2}, (double[]){1.1, 1.7}, 1e-12);
    nb_set_training(ctx, false);
    y = nb_model_forward(ctx, m, x);
    double s0 = sqrt(1.101), s1 = sqrt(1.701);
    tst_assert_values(y, 2, (int64_t[]){2, 2},
                      (double[]){0.8 / s0, 1.6 / s1, 2.8 / s0, 5.6 / s1}, 1e-12);
    /* Eval mode leaves the statistics alone. */
    tst_assert_values(nb_model_find(m, "0.running_mean"), 1, (int64_t[]){2}, (double[]){0.2, 0.4}, 1e-12);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- gradients ------------------------------------------------------------ */

typedef struct grad_case {
    const char *json;
    int64_t xshape[4];
} grad_case;

static const grad_case grad_cases[] = {
    /* conv + pool + linear + cross entropy */
    {"{\"input\": [2, 5, 5], \"layers\": ["
     "{\"type\": \"conv2d\", \"out_channels\": 3, \"kernel_size\": 3, \"padding\": 1, \"activation\": \"tanh\"},"
     "{\"type\": \"max_pool2d\", \"kernel_size\": 2},"
     "{\"type\": \"flatten\"},"
     "{\"type\": \"linear\", \"out_features\": 3}],"
     " \"loss\": {\"type\": \"cross_entropy\"}}",
     {2, 2, 5, 5}},
    /* batch norm over [C, H, W] and [C], dropout2d and dropout, mse */
    {"{\"input\": [2, 4, 4], \"layers\": ["
     "{\"type\": \"batch_norm\"},"
     "{\"type\": \"conv2d\", \"out_channels\": 3, \"kernel_size\": 3, \"activation\": \"elu\"},"
     "{\"type\": \"dropout2d\", \"p\": 0.3},"
     "{\"type\": \"flatten\"},"
     "{\"type\": \"batch_norm\", \"momentum\": 0.5},"
     "{\"type\": \"dropout\", \"p\": 0.25},"
     "{\"type\": \"linear\", \"out_features\": 2}],"
     " \"loss\": {\"type\": \"mse\"}}",
     {2, 2, 4, 4}},
    /* the graph form: add, concat, avg-pool, conv1d-free hinge head */
    {"{\"input\": [2, 4, 4], \"nodes\": ["
     "{\"name\": \"a\", \"type\": \"conv2d\", \"inputs\": [\"input\"], \"out_channels\": 2, \"kernel_size\": 3,"
     " \"padding\": 1, \"activation\": \"sigmoid\"},"
     "{\"name\": \"b\", \"type\": \"conv2d\", \"inputs\": [\"input\"], \"out_channels\": 2, \"kernel_size\": 1},"
     "{\"name\": \"s\", \"type\": \"add\", \"inputs\": [\"a\", \"b\", \"input\"]},"
     "{\"name\": \"c\", \"type\": \"concat\", \"inputs\": [\"s\", \"a\"]},"
     "{\"name\": \"l\", \"type\": \"leaky_relu\", \"inputs\": [\"c\"], \"negative_slope\": 0.2},"
     "{\"name\": \"p\", \"type\": \"avg_pool2d\", \"inputs\": [\"l\"], \"kernel_size\": 2},"
     "{\"name\": \"f\", \"type\": \"flatten\", \"inputs\": [\"p\"]},"
     "{\"name\": \"o\", \"type\": \"linear\", \"inputs\": [\"f\"], \"out_features\": 1}],"
     " \"output\": \"o\", \"loss\": {\"type\": \"hinge\"}}",
     {2, 2, 4, 4}},
};

typedef struct grad_env {
    nb_model *m;
    nb_tensor *x, *target;
    int32_t labels[2];
} grad_env;

static nb_tensor *model_loss(nb_ctx *ctx, void *ud)
{
    grad_env *e = ud;
    nb_rng_seed(nb_model_rng(e->m), 7); /* the same dropout masks every call */
    nb_tensor *y = nb_model_forward(ctx, e->m, e->x);
    return nb_model_loss(ctx, e->m, y, e->labels, e->target);
}

START_TEST(test_gradcheck_models)
{
    nb_ctx *ctx = nb_ctx_new();
    const grad_case *c = &grad_cases[_i];
    grad_env e = {parse(ctx, c->json, NB_F64), NULL, NULL, {0, 2}};
    nb_rng rng;
    nb_rng_seed(&rng, 11);
    e.x = nb_tensor_new(ctx, NB_F64, 4, c->xshape);
    nb_fill_uniform(e.x, &rng, -1, 1);
    int64_t out[NB_MAX_DIMS];
    int nd = nb_model_output_shape(e.m, out);
    int64_t ts[NB_MAX_DIMS] = {2};
    for (int d = 0; d < nd; d++)
        ts[d + 1] = out[d];
    e.target = nb_tensor_new(ctx, NB_F64, nd + 1, ts);
    nb_fill_uniform(e.target, &rng, -1, 1);
    if (nb_model_loss_kind(e.m) == NB_LOSS_HINGE) /* +1, +1: the bias's gradient is not 0 */
        nb_fill(e.target, 1);
    nb_tensor *wrt[16] = {e.x};
    int n = 1;
    for (int i = 0; i < nb_model_num_tensors(e.m); i++)
        if (!nb_model_is_buffer(e.m, i))
            wrt[n++] = nb_model_tensor(e.m, i);
    nb_gradcheck_report rep[16];
    nb_gradcheck_opts o = {.max_elems = 12, .seed = 3};
    ck_assert_int_eq(nb_gradcheck(ctx, model_loss, &e, n, wrt, &o, rep), NB_OK);
    for (int i = 0; i < n; i++) {
        ck_assert_msg(rep[i].ok, "case %d, %s: analytic %g, numeric %g at %lld", _i,
                      i ? wrt[i]->name : "input", rep[i].analytic, rep[i].numeric,
                      (long long)rep[i].worst);
        ck_assert_int_gt(rep[i].checked, 0);
    }
    /* The gradient reaches the input and every parameter. */
    nb_tensor *loss = model_loss(ctx, &e);
    nb_requires_grad(e.x, true);
    loss = model_loss(ctx, &e);
    ck_assert_int_eq(nb_backward(ctx, loss), NB_OK);
    for (int i = 0; i < n; i++) {
        ck_assert_ptr_nonnull(wrt[i]->grad);
        double norm = 0;
        for (int64_t k = 0; k < wrt[i]->numel; k++)
            norm += fabs(nb_get(wrt[i]->grad, k));
        ck_assert_msg(norm > 0, "no gradient reaches %s", i ? wrt[i]->name : "input");
    }
    nb_model_free(e.m);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- weights --------------------------------------------------------------- */

static const char weights_json[] =
    "{\"input\": [2, 3, 3], \"layers\": ["
    "{\"type\": \"conv2d\", \"out_channels\": 2, \"kernel_size\": 2},"
    "{\"type\": \"batch_norm\"},"
    "{\"type\": \"flatten\"},"
    "{\"name\": \"fc\", \"type\": \"linear\", \"out_features\": 3}]}";

/* Saved, then loaded into a model drawn differently: the same values, in
 * either dtype; a PyTorch counter is ignored, a stranger is not. */
START_TEST(test_weights_roundtrip)
{
    nb_ctx *ctx = nb_ctx_new();
    char dir[] = "/tmp/nabla-model-XXXXXX", path[64], path2[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    snprintf(path2, sizeof path2, "%s/x.safetensors", dir);
    nb_model *a = parse(ctx, weights_json, NB_F32);
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_fill_uniform(nb_model_find(a, "1.running_mean"), &rng, -1, 1);
    nb_fill_uniform(nb_model_find(a, "1.running_var"), &rng, 1, 2);
    ck_assert_int_eq(nb_model_save_weights(a, path), NB_OK);
    nb_model *b = parse(ctx, weights_json, NB_F64);
    nb_rng_seed(&rng, 2);
    nb_model_init(b, &rng);
    ck_assert(nb_get(nb_model_tensor(b, 0), 0) != nb_get(nb_model_tensor(a, 0), 0));
    ck_assert_int_eq(nb_model_load_weights(b, path), NB_OK);
    ck_assert_int_eq(nb_model_num_tensors(b), 8);
    for (int i = 0; i < nb_model_num_tensors(a); i++) {
        nb_tensor *ta = nb_model_tensor(a, i), *tb = nb_model_tensor(b, i);
        for (int64_t k = 0; k < ta->numel; k++)
            ck_assert(nb_get(ta, k) == nb_get(tb, k));
    }

    /* PyTorch's "1.num_batches_tracked" rides along: accepted. */
    nb_tensor *all[9];
    for (int i = 0; i < 8; i++)
        all[i] = nb_model_tensor(a, i);
    all[8] = nb_tensor_set_name(nb_tensor_new(ctx, NB_F32, 0, NULL), "1.num_batches_tracked");
    ck_assert_int_eq(nb_safetensors_save(ctx, path2, 9, all), NB_OK);
    ck_assert_int_eq(nb_model_load_weights(b, path2), NB_OK);
    /* Anything else is unexpected, and nothing changes. */
    nb_tensor_set_name(all[8], "extra");
    ck_assert_int_eq(nb_safetensors_save(ctx, path2, 9, all), NB_OK);
    nb_fill(nb_model_find(b, "fc.bias"), 7);
    ck_assert_int_eq(nb_model_load_weights(b, path2), NB_ERR_FORMAT);
    tst_assert_error(ctx, NB_ERR_FORMAT, "unexpected \"extra\"");
    ck_assert(nb_get(nb_model_find(b, "fc.bias"), 0) == 7);
    /* Another model's file: names and shapes differ. */
    nb_model *c = parse(ctx, "{\"input\": [2, 3, 3], \"layers\": ["
                             "{\"type\": \"conv2d\", \"out_channels\": 3, \"kernel_size\": 2},"
                             "{\"type\": \"flatten\"},"
                             "{\"name\": \"fc\", \"type\": \"linear\", \"out_features\": 3}]}",
                        NB_F32);
    ck_assert_int_eq(nb_model_load_weights(c, path), NB_ERR_FORMAT);
    tst_assert_error(ctx, NB_ERR_FORMAT, "unexpected \"1.weight\", \"1.bias\"");
    tst_assert_error(ctx, NB_ERR_FORMAT, "\"0.weight\" has shape [2, 2, 2, 2] in the file but the model expects [3, 2, 2, 2]");
    ck_assert_int_eq(nb_model_load_weights(c, "/nonexistent/w.safetensors"), NB_ERR_IO);
    nb_model_free(c);
    nb_model_free(b);
    nb_model_free(a);
    remove(path);
    remove(path2);
    remove(dir);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- memory --------------------------------------------------------------- */

static const char small_graph[] =
    "{\"name\": \"small\", \"input\": [1, 4, 4], \"nodes\": ["
    "{\"name\": \"c\", \"type\": \"conv2d\", \"inputs\": [\"input\"], \"out_channels\": 2, \"kernel_size\": 3,"
    " \"padding\": \"same\", \"activation\": \"relu\"},"
    "{\"name\": \"bn\", \"type\": \"batch_norm\", \"inputs\": [\"c\"]},"
    "{\"name\": \"cat\", \"type\": \"concat\", \"inputs\": [\"bn\", \"input\"]},"
    "{\"name\": \"p\", \"type\": \"max_pool2d\", \"inputs\": [\"cat\"], \"kernel_size\": 2},"
    "{\"name\": \"f\", \"type\": \"flatten\", \"inputs\": [\"p\"]},"
    "{\"name\": \"d\", \"type\": \"dropout\", \"inputs\": [\"f\"]},"
    "{\"name\": \"o\", \"type\": \"linear\", \"inputs\": [\"d\"], \"out_features\": 3}],"
    " \"output\": \"o\", \"loss\": {\"type\": \"cross_entropy\"},"
    " \"optimizer\": {\"type\": \"sgd\", \"lr\": 0.1}}";

/* Fails the k-th allocation for every k of loading a model and running a
 * training step: each run reports NB_ERR_NOMEM or succeeds, and nothing
 * leaks (valgrind and ASan check that). */
START_TEST(test_alloc_failure)
{
    int k = 0;
    for (;; k++) {
        tst_failing f = {k};
        nb_allocator a = {tst_failing_alloc, tst_failing_free, &f};
        nb_ctx *ctx = nb_ctx_new_with(&a);
        if (!ctx)
            continue;
        int rc;
        nb_model *m = nb_model_parse(ctx, small_graph, sizeof small_graph - 1, "s.json", NB_F32);
        if (m) {
            nb_tensor *x = nb_tensor_full(ctx, NB_F32, 4, (int64_t[]){2, 1, 4, 4}, 0.5);
            nb_tensor *y = x ? nb_model_forward(ctx, m, x) : NULL;
            rc = nb_backward(ctx, nb_model_loss(ctx, m, y, (int32_t[]){0, 1}, NULL));
        } else {
            rc = nb_error(ctx);
        }
        ck_assert_msg(rc == NB_OK || rc == NB_ERR_NOMEM, "k %d: %s", k, nb_errmsg(ctx));
        nb_model_free(m);
        nb_ctx_free(ctx);
        if (rc == NB_OK)
            break;
    }
    ck_assert_int_gt(k, 10);
}
END_TEST

/* After warm-up, a training step through a model allocates nothing. */
START_TEST(test_steady_state)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = parse(ctx, small_graph, NB_F32);
    nb_tensor *x = nb_tensor_full(ctx, NB_F32, 4, (int64_t[]){4, 1, 4, 4}, 0.5);
    nb_fill_uniform(x, nb_model_rng(m), -1, 1);
    uint64_t counts[4];
    for (int step = 0; step < 4; step++) {
        nb_zero_grad(ctx);
        nb_tensor *y = nb_model_forward(ctx, m, x);
        nb_tensor *loss = nb_model_loss(ctx, m, y, (int32_t[]){0, 1, 2, 1}, NULL);
        ck_assert_int_eq(nb_backward(ctx, loss), NB_OK);
        nb_graph_reset(ctx);
        counts[step] = nb_alloc_count(ctx);
    }
    ck_assert_uint_eq(counts[2], counts[1]);
    ck_assert_uint_eq(counts[3], counts[2]);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_model(void)
{
    Suite *s = suite_create("model");
    TCase *tc = tcase_create("files");
    tcase_add_loop_test(tc, test_course_models, 0, (int)(sizeof course / sizeof course[0]));
    tcase_add_test(tc, test_keras_cnn_shapes);
    tcase_add_test(tc, test_layer_settings);
    tcase_add_test(tc, test_sections);
    tcase_add_test(tc, test_train_opts);
    suite_add_tcase(s, tc);
    tc = tcase_create("mistakes");
    tcase_add_loop_test(tc, test_bad_model, 0, NBAD);
    tcase_add_test(tc, test_bad_dir_complete);
    tcase_add_loop_test(tc, test_section_errors, 0, (int)(sizeof section_bad / sizeof section_bad[0]));
    tcase_add_test(tc, test_section_order);
    tcase_add_test(tc, test_load_errors);
    tcase_add_test(tc, test_messages_are_one_line);
    suite_add_tcase(s, tc);
    tc = tcase_create("run");
    tcase_add_loop_test(tc, test_forward_values, 0, 2);
    tcase_add_test(tc, test_conv1d_values);
    tcase_add_test(tc, test_forward_errors);
    tcase_add_test(tc, test_losses);
    tcase_add_test(tc, test_graph_form);
    tcase_add_test(tc, test_graph_concat_channels);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_init);
    tcase_add_test(tc, test_activation_field);
    tcase_add_test(tc, test_dropout_uses_model_rng);
    tcase_add_test(tc, test_batch_norm_modes);
    suite_add_tcase(s, tc);
    tc = tcase_create("gradients");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_gradcheck_models, 0, (int)(sizeof grad_cases / sizeof grad_cases[0]));
    suite_add_tcase(s, tc);
    tc = tcase_create("weights");
    tcase_add_test(tc, test_weights_roundtrip);
    suite_add_tcase(s, tc);
    tc = tcase_create("memory");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_alloc_failure);
    tcase_add_test(tc, test_steady_state);
    suite_add_tcase(s, tc);
    return s;
}
