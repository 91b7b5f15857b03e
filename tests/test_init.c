/* test_init.c - the initialisers (torch.nn.init's formulas): fans and
 * gains by hand, each one's statistics on a large tensor, exact fills; a
 * model file's "init": what it draws, that loading and nb_model_init draw
 * the same, that a file without it keeps the bits it always had, and the
 * digest.  The mistakes a file can make are tests/data/models-bad/init-*
 * (test_model.c). */
#include "harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#ifndef MODELS_DIR
#error "MODELS_DIR must name the models/ directory"
#endif

/* ---- fans and gains -------------------------------------------------------- */

START_TEST(test_fans)
{
    nb_ctx *ctx = nb_ctx_new();
    double in, out;
    /* conv2d weight [out 8, in 3, 5, 5]: fan_in 3 * 25, fan_out 8 * 25 */
    nb_tensor *conv = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){8, 3, 5, 5});
    ck_assert_int_eq(nb_init_fans(conv, &in, &out), NB_OK);
    ck_assert(in == 75 && out == 200);
    /* conv1d [6, 4, 3]: 12 and 18; linear [10, 20]: 20 and 10 */
    nb_tensor *c1 = nb_tensor_new(ctx, NB_F32, 3, (int64_t[]){6, 4, 3});
    ck_assert_int_eq(nb_init_fans(c1, &in, &out), NB_OK);
    ck_assert(in == 12 && out == 18);
    nb_tensor *fc = nb_tensor_new(ctx, NB_F32, 2, (int64_t[]){10, 20});
    ck_assert_int_eq(nb_init_fans(fc, &in, &out), NB_OK);
    ck_assert(in == 20 && out == 10);
    /* A bias has no fans, as in PyTorch; nothing is drawn. */
    nb_tensor *b = nb_tensor_new(ctx, NB_F32, 1, (int64_t[]){5});
    nb_fill(b, 7);
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    ck_assert_int_eq(nb_init_fans(b, &in, &out), NB_ERR_ARG);
    ck_assert_int_eq(nb_init_kaiming_normal_with(b, &rng, 0, NB_FAN_IN, NB_NL_RELU), NB_ERR_ARG);
    ck_assert_str_eq(nb_errmsg(ctx), "kaiming_normal: fan in and fan out need a tensor of 2 or "
                                     "more dimensions, got [5]");
    ck_assert_int_eq(nb_init_xavier_uniform_with(b, &rng, 1), NB_ERR_ARG);
    ck_assert(nb_get(b, 0) == 7);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_gains)
{
    ck_assert(nb_calculate_gain(NB_NL_LINEAR, 0) == 1);
    ck_assert(nb_calculate_gain(NB_NL_CONV2D, 0) == 1);
    ck_assert(nb_calculate_gain(NB_NL_CONV_TRANSPOSE2D, 0) == 1);
    ck_assert(nb_calculate_gain(NB_NL_SIGMOID, 0) == 1);
    ck_assert(fabs(nb_calculate_gain(NB_NL_TANH, 0) - 5.0 / 3) < 1e-15);
    ck_assert(fabs(nb_calculate_gain(NB_NL_RELU, 0) - 1.4142135623730951) < 1e-15);
    ck_assert(fabs(nb_calculate_gain(NB_NL_LEAKY_RELU, 0) - 1.4142135623730951) < 1e-15);
    /* sqrt(2 / (1 + 0.2^2)) */
    ck_assert(fabs(nb_calculate_gain(NB_NL_LEAKY_RELU, 0.2) - 1.3867504905630728) < 1e-15);
    ck_assert(nb_calculate_gain(NB_NL_SELU, 0) == 0.75);
}
END_TEST

/* ---- statistics ------------------------------------------------------------- */

typedef struct stats {
    double mean, std, min, max;
} stats;

static stats stats_of(const nb_tensor *t)
{
    stats s = {0, 0, INFINITY, -INFINITY};
    for (int64_t i = 0; i < t->numel; i++) {
        double x = nb_get(t, i);
        s.mean += x;
        s.min = fmin(s.min, x);
        s.max = fmax(s.max, x);
    }
    s.mean /= (double)t->numel;
    for (int64_t i = 0; i < t->numel; i++)
        s.std += (nb_get(t, i) - s.mean) * (nb_get(t, i) - s.mean);
    s.std = sqrt(s.std / (double)(t->numel - 1));
    return s;
}

/* mean within 5 standard errors of `mean`, std within 2% of `std`. */
static void assert_moments(const nb_tensor *t, double mean, double std, const char *what)
{
    stats s = stats_of(t);
    double se = std / sqrt((double)t->numel);
    ck_assert_msg(fabs(s.mean - mean) < 5 * se, "%s: mean %g, want %g", what, s.mean, mean);
    ck_assert_msg(fabs(s.std / std - 1) < 0.02, "%s: std %g, want %g", what, s.std, std);
}

/* Uniform in [-bound, bound]: inside, reaching near both ends, std bound/sqrt 3. */
static void assert_uniform(const nb_tensor *t, double lo, double hi, const char *what)
{
    stats s = stats_of(t);
    ck_assert_msg(s.min >= lo && s.max <= hi, "%s: [%g, %g] outside [%g, %g]", what, s.min,
                  s.max, lo, hi);
    ck_assert_msg(s.min < lo + 0.001 * (hi - lo) && s.max > hi - 0.001 * (hi - lo),
                  "%s: [%g, %g] does not fill [%g, %g]", what, s.min, s.max, lo, hi);
    assert_moments(t, (lo + hi) / 2, (hi - lo) / sqrt(12.0), what);
}

/* [256, 128, 3, 3]: fan_in 1152, fan_out 2304, 294912 values. */
START_TEST(test_statistics)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *w = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){256, 128, 3, 3});
    const double in = 1152, out = 2304;
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    ck_assert_int_eq(nb_init_kaiming_normal_with(w, &rng, 0, NB_FAN_OUT, NB_NL_RELU), NB_OK);
    assert_moments(w, 0, sqrt(2 / out), "kaiming_normal fan_out relu");
    ck_assert_int_eq(nb_init_kaiming_normal_with(w, &rng, 0, NB_FAN_IN, NB_NL_LEAKY_RELU), NB_OK);
    assert_moments(w, 0, sqrt(2 / in), "kaiming_normal fan_in");
    ck_assert_int_eq(nb_init_kaiming_normal_with(w, &rng, 0, NB_FAN_IN, NB_NL_TANH), NB_OK);
    assert_moments(w, 0, 5.0 / 3 / sqrt(in), "kaiming_normal tanh");
    ck_assert_int_eq(nb_init_kaiming_uniform_with(w, &rng, 0, NB_FAN_IN, NB_NL_RELU), NB_OK);
    assert_uniform(w, -sqrt(6 / in), sqrt(6 / in), "kaiming_uniform relu");
    /* a = sqrt 5 is PyTorch's default for conv and linear: +-1/sqrt(fan_in) */
    ck_assert_int_eq(nb_init_kaiming_uniform_with(w, &rng, sqrt(5), NB_FAN_IN, NB_NL_LEAKY_RELU),
                     NB_OK);
    assert_uniform(w, -1 / sqrt(in), 1 / sqrt(in), "kaiming_uniform a sqrt 5");
    ck_assert_int_eq(nb_init_kaiming_uniform_with(w, &rng, 0, NB_FAN_OUT, NB_NL_LINEAR), NB_OK);
    assert_uniform(w, -sqrt(3 / out), sqrt(3 / out), "kaiming_uniform fan_out linear");
    ck_assert_int_eq(nb_init_xavier_uniform_with(w, &rng, 1), NB_OK);
    assert_uniform(w, -sqrt(6 / (in + out)), sqrt(6 / (in + out)), "xavier_uniform");
    ck_assert_int_eq(nb_init_xavier_normal_with(w, &rng, 2), NB_OK);
    assert_moments(w, 0, 2 * sqrt(2 / (in + out)), "xavier_normal gain 2");
    nb_fill_normal(w, &rng, 0.5, 0.1);
    assert_moments(w, 0.5, 0.1, "normal");
    nb_fill_uniform(w, &rng, -3, 2);
    assert_uniform(w, -3, 2, "uniform");
    /* normal(0, 1) in [-2, 2]: std sqrt(1 - 4 phi(2) / (Phi(2) - Phi(-2))) */
    ck_assert_int_eq(nb_init_trunc_normal(w, &rng, 0, 1, -2, 2), NB_OK);
    stats s = stats_of(w);
    ck_assert(s.min >= -2 && s.max <= 2 && s.min < -1.99 && s.max > 1.99);
    assert_moments(w, 0, 0.8796256610342398, "trunc_normal");
    ck_assert_int_eq(nb_init_trunc_normal(w, &rng, 1, 0.02, 0.99, 2), NB_OK);
    s = stats_of(w);
    ck_assert(s.min >= 0.99 && s.max <= 2 && s.mean > 1);
    /* std 0 is the mean, clamped; too little mass is refused */
    ck_assert_int_eq(nb_init_trunc_normal(w, &rng, 5, 0, -2, 2), NB_OK);
    ck_assert(nb_get(w, 0) == 2 && nb_get(w, w->numel - 1) == 2);
    ck_assert_int_eq(nb_init_trunc_normal(w, &rng, 0, 1, 4, 5), NB_ERR_ARG);
    ck_assert_int_eq(nb_init_trunc_normal(w, &rng, 0, 1, 1, -1), NB_ERR_ARG);
    nb_ctx_free(ctx);
}
END_TEST

/* The same seed draws the same bits. */
START_TEST(test_reproducible)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *a = nb_tensor_new(ctx, NB_F64, 2, (int64_t[]){64, 32});
    nb_tensor *b = nb_tensor_new(ctx, NB_F64, 2, (int64_t[]){64, 32});
    nb_rng ra, rb;
    nb_rng_seed(&ra, 9);
    nb_rng_seed(&rb, 9);
    nb_init_kaiming_normal_with(a, &ra, 0.1, NB_FAN_IN, NB_NL_LEAKY_RELU);
    nb_init_trunc_normal(a, &ra, 0, 1, -2, 2);
    nb_init_kaiming_normal_with(b, &rb, 0.1, NB_FAN_IN, NB_NL_LEAKY_RELU);
    nb_init_trunc_normal(b, &rb, 0, 1, -2, 2);
    ck_assert(memcmp(a->data, b->data, (size_t)a->numel * sizeof(double)) == 0);
    /* the old nb_init_kaiming_* are the defaults of the new ones */
    nb_rng_seed(&ra, 4);
    nb_rng_seed(&rb, 4);
    nb_init_kaiming_uniform(a, &ra);
    nb_init_kaiming_uniform_with(b, &rb, 0, NB_FAN_IN, NB_NL_LEAKY_RELU);
    for (int64_t i = 0; i < a->numel; i++)
        ck_assert(fabs(nb_get(a, i) - nb_get(b, i)) <= 1e-15);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- a model file's "init" ------------------------------------------------- */

static nb_model *parse(nb_ctx *ctx, const char *json, nb_dtype dtype)
{
    nb_model *m = nb_model_parse(ctx, json, strlen(json), "test.json", dtype);
    ck_assert_msg(m != NULL, "%s", nb_errmsg(ctx));
    return m;
}

/* FNV-1a over the bytes of every tensor, in order. */
static uint64_t weights_hash(const nb_model *m)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < nb_model_num_tensors(m); i++) {
        const nb_tensor *t = nb_model_tensor(m, i);
        const unsigned char *p = t->data;
        for (size_t k = 0; k < (size_t)t->numel * nb_dtype_size(t->dtype); k++)
            h = (h ^ p[k]) * 1099511628211ull;
    }
    return h;
}

/* Without "init" a file loads to the bits it did before "init" existed
 * (the weights' hashes recorded then; the digest is the one since conv2d's
 * groups and dilation joined its settings), and so does "init" naming the
 * defaults. */
START_TEST(test_same_bits_without_init)
{
    nb_ctx *ctx = nb_ctx_new();
    const struct {
        nb_dtype dtype;
        uint64_t digest, weights, reinit;
    } want[] = {{NB_F32, 0xd34c2d4207b5f81eull, 0x02f0148c8b77e901ull, 0x5071bc94d5d0bb85ull},
                {NB_F64, 0xca2da3351757d26dull, 0x3e352753a76a2427ull, 0x0ea8280556fc2ce3ull}};
    for (int k = 0; k < 2; k++) {
        nb_model *m = nb_model_load(ctx, MODELS_DIR "/lenet.json", want[k].dtype);
        ck_assert_msg(m != NULL, "%s", nb_errmsg(ctx));
        ck_assert_uint_eq(nb_model_digest(m), want[k].digest);
        ck_assert_uint_eq(weights_hash(m), want[k].weights);
        nb_rng rng;
        nb_rng_seed(&rng, 7);
        nb_model_init(m, &rng);
        ck_assert_uint_eq(weights_hash(m), want[k].reinit);
        nb_model_free(m);
    }
    const char *plain = "{\"input\": [2, 5, 5], \"layers\": [{\"type\": \"conv2d\", \"out_channels\": 3, "
                        "\"kernel_size\": 3}, {\"type\": \"batch_norm\"}, {\"type\": \"flatten\"}, "
                        "{\"type\": \"linear\", \"out_features\": 4}]}";
    const char *dflt = "{\"input\": [2, 5, 5], \"layers\": [{\"type\": \"conv2d\", \"out_channels\": 3, "
                       "\"kernel_size\": 3, \"init\": {\"weight\": \"default\"}}, {\"type\": "
                       "\"batch_norm\", \"init\": {\"bias\": \"default\"}}, {\"type\": \"flatten\"}, "
                       "{\"type\": \"linear\", \"out_features\": 4, \"init\": {}}]}";
    nb_model *a = parse(ctx, plain, NB_F32), *b = parse(ctx, dflt, NB_F32);
    ck_assert_uint_eq(weights_hash(a), weights_hash(b));
    ck_assert_uint_eq(nb_model_digest(a), nb_model_digest(b));
    nb_layer_info info;
    nb_model_layer(b, 0, &info);
    ck_assert_ptr_null(info.init);
    nb_model_free(a);
    nb_model_free(b);
    nb_ctx_free(ctx);
}
END_TEST

static const char *inited =
    "{\"input\": [16, 12, 12], \"layers\": ["
    "{\"name\": \"conv\", \"type\": \"conv2d\", \"out_channels\": 64, \"kernel_size\": 3, "
    " \"init\": {\"weight\": \"kaiming_normal\", \"mode\": \"fan_out\", \"nonlinearity\": \"relu\", "
    "\"bias\": \"zeros\"}},"
    "{\"name\": \"bn\", \"type\": \"batch_norm\", \"init\": {\"weight\": {\"type\": \"constant\", "
    "\"val\": 0.5}, \"bias\": {\"type\": \"constant\", \"val\": -0.25}}},"
    "{\"type\": \"flatten\"},"
    "{\"name\": \"fc\", \"type\": \"linear\", \"out_features\": 100, \"init\": {\"weight\": "
    "\"xavier_uniform\", \"bias\": {\"type\": \"normal\", \"mean\": 3, \"std\": 0.5}}},"
    "{\"name\": \"out\", \"type\": \"linear\", \"out_features\": 10, \"init\": {\"bias\": \"ones\"}}]}";

static void assert_all(const nb_tensor *t, double v)
{
    for (int64_t i = 0; i < t->numel; i++)
        ck_assert_msg(nb_get(t, i) == v, "%s[%lld] is %g, want %g", t->name, (long long)i,
                      nb_get(t, i), v);
}

START_TEST(test_model_init)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = parse(ctx, inited, NB_F64);
    /* conv weight [64, 16, 3, 3]: fan_out 64 * 9 */
    assert_moments(nb_model_find(m, "conv.weight"), 0, sqrt(2.0 / 576), "conv.weight");
    assert_all(nb_model_find(m, "conv.bias"), 0);
    assert_all(nb_model_find(m, "bn.weight"), 0.5);
    assert_all(nb_model_find(m, "bn.bias"), -0.25);
    assert_all(nb_model_find(m, "bn.running_var"), 1);
    /* fc weight [100, 6400] */
    double bound = sqrt(6.0 / (6400 + 100));
    stats s = stats_of(nb_model_find(m, "fc.weight"));
    ck_assert(s.min >= -bound && s.max <= bound && s.max > 0.99 * bound);
    s = stats_of(nb_model_find(m, "fc.bias"));
    ck_assert(fabs(s.mean - 3) < 0.3 && s.std > 0.3 && s.std < 0.7);
    /* the default weight stays PyTorch's: +-1/sqrt(100) */
    s = stats_of(nb_model_find(m, "out.weight"));
    ck_assert(s.max <= 0.1 && s.min >= -0.1 && s.max > 0.09);
    assert_all(nb_model_find(m, "out.bias"), 1);

    /* Loading is nb_model_init from seed 0: the same bits again. */
    uint64_t loaded = weights_hash(m);
    nb_rng rng;
    nb_rng_seed(&rng, 5);
    nb_model_init(m, &rng);
    ck_assert_uint_ne(weights_hash(m), loaded);
    assert_all(nb_model_find(m, "conv.bias"), 0);
    nb_rng_seed(&rng, 0);
    nb_model_init(m, &rng);
    ck_assert_uint_eq(weights_hash(m), loaded);
    nb_model *again = parse(ctx, inited, NB_F64);
    ck_assert_uint_eq(weights_hash(again), loaded);

    /* The layer's own init draws first, then "init" draws again from the
     * same generator, as a PyTorch module is made and then passed to
     * nn.init. */
    nb_tensor *w = nb_tensor_new(ctx, NB_F64, 4, (int64_t[]){64, 16, 3, 3});
    nb_tensor *b = nb_tensor_new(ctx, NB_F64, 1, (int64_t[]){64});
    nb_rng_seed(&rng, 0);
    nb_init_default(w, b, &rng);
    nb_init_kaiming_normal_with(w, &rng, 0, NB_FAN_OUT, NB_NL_RELU);
    ck_assert(memcmp(w->data, nb_model_find(m, "conv.weight")->data, 64 * 16 * 9 * 8) == 0);

    nb_layer_info info;
    nb_model_layer(m, 0, &info);
    ck_assert_str_eq(info.init, "{\"weight\": \"kaiming_normal\", \"a\": 0, \"mode\": \"fan_out\", "
                                "\"nonlinearity\": \"relu\", \"bias\": \"zeros\"}");
    nb_model_layer(m, 3, &info);
    ck_assert_str_eq(info.init, "{\"weight\": \"xavier_uniform\", \"gain\": 1, \"bias\": {\"type\": "
                                "\"normal\", \"mean\": 3, \"std\": 0.5}}");
    nb_model_layer(m, 2, &info);
    ck_assert_ptr_null(info.init);
    nb_model_free(m);
    nb_model_free(again);
    nb_ctx_free(ctx);
}
END_TEST

/* "init" is part of the digest (a checkpoint of another init is another
 * run), after its defaults: the same draws, the same digest. */
START_TEST(test_digest)
{
    nb_ctx *ctx = nb_ctx_new();
    const char *fmt = "{\"input\": [4], \"layers\": [{\"type\": \"linear\", \"out_features\": 3%s}]}";
    const char *inits[] = {"",
                           ", \"init\": {\"weight\": \"kaiming_normal\"}",
                           ", \"init\": {\"weight\": \"kaiming_normal\", \"a\": 0, \"mode\": \"fan_in\"}",
                           ", \"init\": {\"weight\": {\"type\": \"kaiming_normal\", \"nonlinearity\": "
                           "\"leaky_relu\"}, \"bias\": \"default\"}",
                           ", \"init\": {\"weight\": \"kaiming_normal\", \"mode\": \"fan_out\"}",
                           ", \"init\": {\"bias\": {\"type\": \"constant\", \"val\": 0.1}}",
                           ", \"init\": {\"bias\": {\"type\": \"constant\", \"val\": 0.2}}"};
    uint64_t d[7];
    for (int i = 0; i < 7; i++) {
        char json[512];
        snprintf(json, sizeof json, fmt, inits[i]);
        nb_model *m = parse(ctx, json, NB_F32);
        d[i] = nb_model_digest(m);
        nb_model_free(m);
    }
    ck_assert_uint_ne(d[0], d[1]);
    ck_assert_uint_eq(d[1], d[2]);
    ck_assert_uint_eq(d[1], d[3]);
    ck_assert_uint_ne(d[1], d[4]);
    ck_assert_uint_ne(d[5], d[6]);
    ck_assert_uint_ne(d[0], d[5]);
    nb_ctx_free(ctx);
}
END_TEST

/* Every initialiser and spelling a file may use loads; a model shapes
 * only has "init" checked but nothing drawn. */
START_TEST(test_every_initialiser)
{
    nb_ctx *ctx = nb_ctx_new();
    const char *specs[] = {
        "{\"weight\": \"kaiming_uniform\", \"a\": 0.2}",
        "{\"weight\": \"kaiming_normal\", \"nonlinearity\": \"conv_transpose2d\"}",
        "{\"weight\": \"kaiming_normal\", \"nonlinearity\": \"selu\", \"mode\": \"fan_out\"}",
        "{\"weight\": \"xavier_normal\", \"gain\": 0}",
        "{\"weight\": \"normal\", \"mean\": -1, \"std\": 0}",
        "{\"weight\": \"uniform\", \"a\": 2, \"b\": 2}",
        "{\"weight\": \"trunc_normal\", \"std\": 0.02}",
        "{\"weight\": \"zeros\", \"bias\": \"ones\"}",
        "{\"weight\": \"ones\", \"bias\": {\"type\": \"trunc_normal\", \"a\": -0.5, \"b\": 0.5}}",
        "{\"weight\": \"constant\", \"val\": -3, \"bias\": {\"type\": \"uniform\"}}",
    };
    for (int i = 0; i < (int)(sizeof specs / sizeof specs[0]); i++) {
        char json[512];
        snprintf(json, sizeof json, "{\"input\": [2, 6], \"layers\": [{\"type\": \"conv1d\", "
                 "\"out_channels\": 3, \"kernel_size\": 2, \"init\": %s}]}", specs[i]);
        nb_model *m = parse(ctx, json, NB_F32);
        nb_model_free(m);
        m = nb_model_parse_with(ctx, json, strlen(json), "t.json", NB_F32, NB_MODEL_SHAPES_ONLY);
        ck_assert_msg(m != NULL, "%s", nb_errmsg(ctx));
        nb_model_free(m);
    }
    const char *json = "{\"input\": [2, 6], \"layers\": [{\"type\": \"conv1d\", \"out_channels\": 3, "
                       "\"kernel_size\": 2, \"init\": {\"weight\": \"constant\", \"val\": -3, "
                       "\"bias\": {\"type\": \"uniform\", \"a\": 2, \"b\": 2}}}]}";
    nb_model *m = parse(ctx, json, NB_F32);
    assert_all(nb_model_find(m, "0.weight"), -3);
    assert_all(nb_model_find(m, "0.bias"), 2);
    nb_model_free(m);
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_init(void)
{
    Suite *s = suite_create("init");
    TCase *tc = tcase_create("init");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_fans);
    tcase_add_test(tc, test_gains);
    tcase_add_test(tc, test_statistics);
    tcase_add_test(tc, test_reproducible);
    tcase_add_test(tc, test_same_bits_without_init);
    tcase_add_test(tc, test_model_init);
    tcase_add_test(tc, test_digest);
    tcase_add_test(tc, test_every_initialiser);
    suite_add_tcase(s, tc);
    return s;
}
