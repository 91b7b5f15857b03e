/* test_arith.c - add, sub, mul with broadcasting; scale, sum, mean. */
#include "harness.h"

#include <string.h>

static void setup_same(tst_env *e, nb_rng *rng)
{
    int64_t s[] = {2, 3, 4};
    tst_tensor(e, rng, 3, s);
    tst_tensor(e, rng, 3, s);
}

/* A bias over channels against a batch: [2, 3, 4, 5] and [3, 1, 1]. */
static void setup_bcast(tst_env *e, nb_rng *rng)
{
    int64_t sa[] = {2, 3, 4, 5}, sb[] = {3, 1, 1};
    tst_tensor(e, rng, 4, sa);
    tst_tensor(e, rng, 3, sb);
}

/* Both sides stretch: [4, 1] and [1, 5]. */
static void setup_outer(tst_env *e, nb_rng *rng)
{
    int64_t sa[] = {4, 1}, sb[] = {1, 5};
    tst_tensor(e, rng, 2, sa);
    tst_tensor(e, rng, 2, sb);
}

static nb_tensor *fwd_add(nb_ctx *ctx, tst_env *e) { return nb_add(ctx, e->t[0], e->t[1]); }
static nb_tensor *fwd_sub(nb_ctx *ctx, tst_env *e) { return nb_sub(ctx, e->t[0], e->t[1]); }
static nb_tensor *fwd_mul(nb_ctx *ctx, tst_env *e) { return nb_mul(ctx, e->t[0], e->t[1]); }
static nb_tensor *fwd_sub_rev(nb_ctx *ctx, tst_env *e) { return nb_sub(ctx, e->t[1], e->t[0]); }
static nb_tensor *fwd_scale(nb_ctx *ctx, tst_env *e) { return nb_scale(ctx, e->t[0], -2.5); }
static nb_tensor *fwd_sum(nb_ctx *ctx, tst_env *e) { return nb_sum(ctx, e->t[0]); }
static nb_tensor *fwd_mean(nb_ctx *ctx, tst_env *e) { return nb_mean(ctx, e->t[0]); }
/* x * x: one tensor on both sides of an op. */
static nb_tensor *fwd_square(nb_ctx *ctx, tst_env *e) { return nb_mul(ctx, e->t[0], e->t[0]); }

const tst_case tst_cases_arith[] = {
    {"add same shape", setup_same, fwd_add},
    {"add broadcast [2,3,4,5] + [3,1,1]", setup_bcast, fwd_add},
    {"sub broadcast", setup_bcast, fwd_sub},
    {"sub broadcast reversed", setup_bcast, fwd_sub_rev},
    {"mul broadcast", setup_bcast, fwd_mul},
    {"mul outer [4,1] * [1,5]", setup_outer, fwd_mul},
    {"scale -2.5", setup_same, fwd_scale},
    {"sum", setup_same, fwd_sum},
    {"mean", setup_same, fwd_mean},
    {"x * x", setup_same, fwd_square},
    {0},
};

START_TEST(test_values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    int64_t sa[] = {2, 3}, sb[] = {3}, sc[] = {2, 1};
    nb_tensor *a = tst_make(ctx, dt, 2, sa, (double[]){1, 2, 3, 4, 5, 6});
    nb_tensor *b = tst_make(ctx, dt, 1, sb, (double[]){10, 20, 30});
    nb_tensor *c = tst_make(ctx, dt, 2, sc, (double[]){2, 3});
    tst_assert_values(nb_add(ctx, a, b), 2, sa, (double[]){11, 22, 33, 14, 25, 36}, 0);
    tst_assert_values(nb_sub(ctx, a, b), 2, sa, (double[]){-9, -18, -27, -6, -15, -24}, 0);
    tst_assert_values(nb_mul(ctx, a, c), 2, sa, (double[]){2, 4, 6, 12, 15, 18}, 0);
    tst_assert_values(nb_scale(ctx, a, 0.5), 2, sa, (double[]){0.5, 1, 1.5, 2, 2.5, 3}, 0);
    tst_assert_values(nb_sum(ctx, a), 0, NULL, (double[]){21}, 0);
    tst_assert_values(nb_mean(ctx, a), 0, NULL, (double[]){3.5}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* d/da sum(a * b) = b summed over the broadcast dimension. */
START_TEST(test_broadcast_grad)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t sa[] = {2, 3}, sb[] = {3};
    nb_tensor *a = tst_make(ctx, NB_F64, 2, sa, (double[]){1, 2, 3, 4, 5, 6});
    nb_tensor *b = tst_make(ctx, NB_F64, 1, sb, (double[]){10, 20, 30});
    nb_requires_grad(a, true);
    nb_requires_grad(b, true);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, a, b))), NB_OK);
    tst_assert_values(a->grad, 2, sa, (double[]){10, 20, 30, 10, 20, 30}, 0);
    tst_assert_values(b->grad, 1, sb, (double[]){5, 7, 9}, 0);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t sa[] = {2, 3}, sb[] = {2};
    nb_tensor *a = nb_tensor_new(ctx, NB_F32, 2, sa);
    nb_tensor *b = nb_tensor_new(ctx, NB_F32, 1, sb);
    ck_assert_ptr_null(nb_add(ctx, a, b));
    tst_assert_error(ctx, NB_ERR_ARG, "add: shapes [2, 3] and [2] do not broadcast");
    nb_tensor *c = nb_tensor_new(ctx, NB_F64, 1, sb);
    ck_assert_ptr_null(nb_mul(ctx, b, c));
    tst_assert_error(ctx, NB_ERR_ARG, "mul: input 1 is f64 but input 0 is f32");
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_arith(void)
{
    Suite *s = suite_create("arith");
    TCase *tc = tcase_create("arith");
    tcase_add_loop_test(tc, test_values, 0, 2);
    tcase_add_test(tc, test_broadcast_grad);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}
