/* test_dropout.c - dropout and dropout2d, in train and eval mode. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void setup_x(tst_env *e, nb_rng *rng)
{
    int64_t shape[] = {2, 3, 4, 5};
    tst_tensor(e, rng, 4, shape);
}

static void setup_x3(tst_env *e, nb_rng *rng)
{
    int64_t shape[] = {2, 4, 6};
    tst_tensor(e, rng, 3, shape);
}

/* Each call seeds its own rng, so every evaluation draws the same mask. */
static nb_tensor *fwd_dropout(nb_ctx *ctx, tst_env *e)
{
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    return nb_dropout(ctx, e->t[0], 0.3, &rng);
}

static nb_tensor *fwd_dropout2d(nb_ctx *ctx, tst_env *e)
{
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    return nb_dropout2d(ctx, e->t[0], 0.5, &rng);
}

/* The harness's contexts start in train mode. */
static nb_tensor *fwd_dropout_eval(nb_ctx *ctx, tst_env *e)
{
    bool was = nb_set_training(ctx, false);
    nb_tensor *y = nb_dropout(ctx, e->t[0], 0.3, NULL);
    nb_set_training(ctx, was);
    return y;
}

static nb_tensor *fwd_dropout_p0(nb_ctx *ctx, tst_env *e)
{
    return nb_dropout(ctx, e->t[0], 0.0, NULL);
}

/* The identity view followed by a real op: the gradient passes through. */
static nb_tensor *fwd_eval_then_tanh(nb_ctx *ctx, tst_env *e)
{
    return nb_tanh(ctx, fwd_dropout_eval(ctx, e));
}

const tst_case tst_cases_dropout[] = {
    {"dropout p=0.3 train [2,3,4,5]", setup_x, fwd_dropout},
    {"dropout2d p=0.5 train [2,3,4,5]", setup_x, fwd_dropout2d},
    {"dropout2d p=0.5 train [2,4,6]", setup_x3, fwd_dropout2d},
    {"dropout eval mode", setup_x, fwd_dropout_eval},
    {"dropout p=0 train mode", setup_x, fwd_dropout_p0},
    {"tanh(dropout eval)", setup_x, fwd_eval_then_tanh},
    {0},
};

/* The generator dropout.c documents, written again from its comment: u for
 * entry j of example e under key. */
static uint64_t ref_mix(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}
static double ref_u(uint64_t key, uint64_t e, uint64_t j)
{
    return (double)(ref_mix(ref_mix(key ^ (e * 0x9E3779B97F4A7C15u)) + j) >> 11) * 0x1.0p-53;
}

/* Known masks, from the generator computed apart (in Python): seed 3's key
 * 0xb0cdabdae5668cc0 gives examples 0-7 of an [8] the draws 0.364 0.320
 * 0.697 0.734 0.597 0.864 0.308 0.509, so p = 0.5 keeps 2, 3, 4, 5 and 7
 * (and doubles them); seed 1's key 0xb3f2af6d0fc710c5 gives channels
 * (n, c) of a [2, 3, 2] 0.797 0.215 0.797 / 0.940 0.857 0.406, so
 * dropout2d keeps all but (0, 1) and (1, 2). */
START_TEST(test_known_mask)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    int64_t s[] = {8};
    nb_tensor *x = tst_make(ctx, dt, 1, s, (double[]){1, 2, 3, 4, 5, 6, 7, 8});
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    ck_assert_uint_eq(nb_rng_next(&rng), 0xb0cdabdae5668cc0u);
    ck_assert_double_eq_tol(ref_u(0xb0cdabdae5668cc0u, 1, 0), 0.320, 5e-4);
    nb_rng_seed(&rng, 3);
    tst_assert_values(nb_dropout(ctx, x, 0.5, &rng), 1, s, (double[]){0, 0, 6, 8, 10, 12, 0, 16},
                      0);

    int64_t s2[] = {2, 3, 2};
    nb_tensor *x2 = tst_make(ctx, dt, 3, s2, (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
    nb_rng_seed(&rng, 1);
    tst_assert_values(nb_dropout2d(ctx, x2, 0.5, &rng), 3, s2,
                      (double[]){2, 4, 0, 0, 10, 12, 14, 16, 18, 20, 0, 0}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* A comm for an op that exchanges nothing (dropout): any call fails. */
static int no_allgather(void *ud, const void *send, void *recv, const size_t *bytes, char *why,
                        size_t why_size)
{
    snprintf(why, why_size, "no exchange expected");
    return -1;
}

/* p = 0.25 on 1000 examples of 100 elements: about 3/4 kept, each exactly
 * x (1/(1-p)) in the tensor's precision, element j of example e kept iff
 * ref_u(key, e, j) >= p for the call's key, the caller's rng advanced by
 * that one draw; and with the batch split (nb_ctx_set_batch), a process
 * holding the second half draws for it what the whole batch did. */
START_TEST(test_fraction)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    const double p = 0.25;
    int64_t s[] = {1000, 100};
    nb_tensor *x = nb_tensor_new(ctx, dt, 2, s);
    nb_rng rng, replay;
    nb_rng_seed(&rng, 99);
    nb_fill_uniform(x, &rng, 1.0, 2.0); /* never 0: a zero means dropped */
    nb_rng_seed(&rng, 5);
    nb_rng_seed(&replay, 5);
    nb_tensor *y = nb_dropout(ctx, x, p, &rng);
    ck_assert_ptr_nonnull(y);
    uint64_t key = nb_rng_next(&replay);
    int64_t kept = 0;
    for (int64_t i = 0; i < x->numel; i++) {
        double xi = nb_get(x, i), yi = nb_get(y, i);
        double want = dt == NB_F32 ? (double)((float)xi * (float)(1 / (1 - p))) : xi * (1 / (1 - p));
        bool keep = ref_u(key, (uint64_t)(i / 100), (uint64_t)(i % 100)) >= p;
        ck_assert_msg(yi == (keep ? want : 0), "element %lld: got %.10g", (long long)i, yi);
        kept += keep;
    }
    ck_assert_double_le(fabs((double)kept / (double)x->numel - 0.75), 0.01);
    ck_assert_uint_eq(nb_rng_next(&rng), nb_rng_next(&replay));

    /* rank 1 of 2 holds examples [496, 1000): groups 31 to 62 of 63 */
    nb_comm comm = {1, 2, no_allgather, NULL};
    ck_assert_int_eq(nb_ctx_set_batch(ctx, 1000, &comm), NB_OK);
    int64_t first, count;
    nb_batch_share(1000, 1, 2, &first, &count);
    ck_assert(first == 496 && count == 504);
    size_t es = nb_dtype_size(dt);
    int64_t s1[] = {count, 100};
    nb_tensor *x1 = nb_tensor_wrap(ctx, dt, 2, s1, (char *)x->data + (size_t)first * 100 * es);
    nb_rng_seed(&rng, 5);
    nb_tensor *y1 = nb_dropout(ctx, x1, p, &rng);
    ck_assert_ptr_nonnull(y1);
    ck_assert_int_eq(memcmp(y1->data, (char *)y->data + (size_t)first * 100 * es,
                            (size_t)count * 100 * es), 0);
    nb_ctx_free(ctx);
}
END_TEST

/* NaN and infinities: PyTorch multiplies by the mask, forward and
 * backward, so a dropped NaN or infinity is NaN (NaN 0, inf 0) and a kept
 * one stays itself; the identity passes them.  The mask is read off a run
 * on ones with the same seed.  Past the threads' threshold: _i runs
 * float32 and float64 (_i % 2) on 1 and 2 threads (_i / 2), dropout then
 * dropout2d. */
START_TEST(test_nonfinite)
{
    const double inf = INFINITY, nan = NAN;
    const double xp[5] = {nan, inf, -inf, 1, -2}, dyp[7] = {1, nan, inf, -inf, 2, 1, -1};
    nb_dtype dt = _i % 2 ? NB_F64 : NB_F32;
    int old = nb_set_num_threads(1 + _i / 2);
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {50, 40, 4, 5}, n = 50 * 40 * 4 * 5;
    double *xv = malloc(sizeof *xv * (size_t)n), *rv = malloc(sizeof *rv * (size_t)n);
    for (int64_t i = 0; i < n; i++)
        xv[i] = xp[i % 5], rv[i] = dyp[i % 7];
    for (int channels = 0; channels < 2; channels++) {
        nb_tensor *x = tst_make(ctx, dt, 4, s, xv), *r = tst_make(ctx, dt, 4, s, rv);
        nb_tensor *ones = nb_tensor_full(ctx, dt, 4, s, 1.0);
        nb_requires_grad(x, true);
        nb_rng rng;
        nb_rng_seed(&rng, 4);
        nb_tensor *m = (channels ? nb_dropout2d : nb_dropout)(ctx, ones, 0.5, &rng);
        nb_rng_seed(&rng, 4);
        nb_tensor *y = (channels ? nb_dropout2d : nb_dropout)(ctx, x, 0.5, &rng);
        ck_assert_msg(m && y, "%s", nb_errmsg(ctx));
        ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, r))), NB_OK);
        int64_t bad = -1, kept = 0;
        for (int64_t i = 0; i < n && bad < 0; i++) {
            double mi = nb_get(m, i), want_y = xv[i] * mi, want_dx = rv[i] * mi;
            double gy = nb_get(y, i), gdx = nb_get(x->grad, i);
            bool ok_y = gy == want_y || (isnan(gy) && isnan(want_y));
            bool ok_dx = gdx == want_dx || (isnan(gdx) && isnan(want_dx));
            bad = ok_y && ok_dx && (mi == 0 || mi == 2) ? -1 : i;
            kept += mi != 0;
        }
        ck_assert_msg(bad < 0, "%s element %lld: mask %g, x %g: y %g, dy %g: dx %g",
                      channels ? "dropout2d" : "dropout", (long long)bad, nb_get(m, bad), xv[bad],
                      nb_get(y, bad), rv[bad], nb_get(x->grad, bad));
        ck_assert(kept > n / 4 && kept < 3 * n / 4); /* both kinds of entry were seen */
        nb_graph_reset(ctx);
    }
    /* The identity, in eval mode. */
    nb_set_training(ctx, false);
    int64_t s1[] = {5};
    nb_tensor *x = tst_make(ctx, dt, 1, s1, xp);
    tst_assert_values(nb_dropout(ctx, x, 0.5, NULL), 1, s1, xp, 0);
    free(xv);
    free(rv);
    nb_ctx_free(ctx);
    nb_set_num_threads(old);
}
END_TEST

START_TEST(test_same_seed_same_mask)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {1000};
    nb_tensor *x = nb_tensor_full(ctx, NB_F64, 1, s, 1.0);
    nb_rng r1, r2, r3;
    nb_rng_seed(&r1, 11);
    nb_rng_seed(&r2, 11);
    nb_rng_seed(&r3, 12);
    nb_tensor *a = nb_dropout(ctx, x, 0.5, &r1);
    nb_tensor *b = nb_dropout(ctx, x, 0.5, &r2);
    nb_tensor *c = nb_dropout(ctx, x, 0.5, &r3);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(memcmp(a->data, b->data, 1000 * sizeof(double)), 0);
    ck_assert_int_ne(memcmp(a->data, c->data, 1000 * sizeof(double)), 0);
    nb_ctx_free(ctx);
}
END_TEST

/* Eval mode, and p = 0 in train mode: the values of x, no draws, and a
 * gradient of dy. */
START_TEST(test_identity)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {2, 3};
    nb_tensor *x = tst_make(ctx, NB_F32, 2, s, (double[]){1, -2, 3, -4, 5, -6});
    nb_requires_grad(x, true);
    nb_rng rng, fresh;
    nb_rng_seed(&rng, 1);
    nb_rng_seed(&fresh, 1);
    ck_assert(nb_set_training(ctx, false));
    nb_tensor *y = nb_dropout(ctx, x, 0.9, &rng);
    tst_assert_values(y, 2, s, (double[]){1, -2, 3, -4, 5, -6}, 0);
    int64_t s3[] = {1, 2, 3};
    nb_tensor *x3 = tst_make(ctx, NB_F64, 3, s3, (double[]){1, 2, 3, 4, 5, 6});
    tst_assert_values(nb_dropout2d(ctx, x3, 0.5, NULL), 3, s3, (double[]){1, 2, 3, 4, 5, 6}, 0);
    ck_assert(!nb_set_training(ctx, true));
    tst_assert_values(nb_dropout(ctx, x3, 0.0, NULL), 3, s3, (double[]){1, 2, 3, 4, 5, 6}, 0);
    ck_assert_uint_eq(nb_rng_next(&rng), nb_rng_next(&fresh));

    /* d sum(3 y) / dx = 3 */
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_scale(ctx, y, 3))), NB_OK);
    tst_assert_values(x->grad, 2, s, (double[]){3, 3, 3, 3, 3, 3}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* dropout2d zeroes whole [n, c] planes; backward scales dy by the same
 * mask: with x all ones and loss sum(y), dx equals y. */
START_TEST(test_dropout2d_channels)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {4, 8, 3, 5};
    nb_tensor *x = nb_tensor_full(ctx, NB_F64, 4, s, 1.0);
    nb_requires_grad(x, true);
    nb_rng rng;
    nb_rng_seed(&rng, 21);
    nb_tensor *y = nb_dropout2d(ctx, x, 0.5, &rng);
    ck_assert_ptr_nonnull(y);
    int zeroed = 0;
    for (int64_t j = 0; j < 32; j++) {
        double first = nb_get(y, j * 15);
        ck_assert(first == 0 || first == 2);
        zeroed += first == 0;
        for (int64_t k = 0; k < 15; k++)
            ck_assert_double_eq(nb_get(y, j * 15 + k), first);
    }
    ck_assert_int_gt(zeroed, 0);
    ck_assert_int_lt(zeroed, 32);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, y)), NB_OK);
    for (int64_t i = 0; i < x->numel; i++)
        ck_assert_double_eq(nb_get(x->grad, i), nb_get(y, i));
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s2[] = {4, 5}, s3[] = {2, 3, 4};
    nb_tensor *x2 = nb_tensor_new(ctx, NB_F32, 2, s2);
    nb_tensor *x3 = nb_tensor_new(ctx, NB_F32, 3, s3);
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    ck_assert_ptr_null(nb_dropout(ctx, x2, 1.5, &rng));
    tst_assert_error(ctx, NB_ERR_ARG, "dropout: p = 1.5 is outside [0, 1)");
    ck_assert_ptr_null(nb_dropout(ctx, x2, -0.1, &rng));
    tst_assert_error(ctx, NB_ERR_ARG, "dropout: p = -0.1 is outside [0, 1)");
    ck_assert_ptr_null(nb_dropout2d(ctx, x3, 1.0, &rng));
    tst_assert_error(ctx, NB_ERR_ARG, "dropout2d: p = 1 is outside [0, 1)");
    ck_assert_ptr_null(nb_dropout(ctx, x2, NAN, &rng));
    tst_assert_error(ctx, NB_ERR_ARG, "dropout: p = nan is outside [0, 1)");
    /* p is checked in eval mode too. */
    nb_set_training(ctx, false);
    ck_assert_ptr_null(nb_dropout(ctx, x2, 2.0, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "dropout: p = 2 is outside [0, 1)");
    nb_set_training(ctx, true);
    ck_assert_ptr_null(nb_dropout(ctx, x2, 0.5, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "dropout: rng is NULL in train mode");
    ck_assert_ptr_null(nb_dropout2d(ctx, x2, 0.5, &rng));
    tst_assert_error(ctx, NB_ERR_ARG, "dropout2d: input [4, 5] must be at least 3-D [N, C, ...]");
    nb_clear_error(ctx);
    ck_assert_ptr_null(nb_dropout2d(ctx, NULL, 0.5, &rng));
    tst_assert_error(ctx, NB_ERR_ARG, "dropout2d: input 0 is NULL");
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_dropout(void)
{
    Suite *s = suite_create("dropout");
    TCase *tc = tcase_create("dropout");
    tcase_add_loop_test(tc, test_known_mask, 0, 2);
    tcase_add_loop_test(tc, test_fraction, 0, 2);
    tcase_add_loop_test(tc, test_nonfinite, 0, 4);
    tcase_add_test(tc, test_same_seed_same_mask);
    tcase_add_test(tc, test_identity);
    tcase_add_test(tc, test_dropout2d_channels);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}
