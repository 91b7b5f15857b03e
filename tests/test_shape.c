/* test_shape.c - reshape, flatten, concat. */
#include "harness.h"

#include <string.h>

static void setup_x(tst_env *e, nb_rng *rng)
{
    int64_t s[] = {2, 3, 2, 2};
    tst_tensor(e, rng, 4, s);
}

static void setup_vector(tst_env *e, nb_rng *rng)
{
    int64_t s[] = {5};
    tst_tensor(e, rng, 1, s);
}

/* Channel counts 1, 3 and 2: [2, c, 3, 2]. */
static void setup_channels(tst_env *e, nb_rng *rng)
{
    int64_t c1[] = {2, 1, 3, 2}, c3[] = {2, 3, 3, 2}, c2[] = {2, 2, 3, 2};
    tst_tensor(e, rng, 4, c1);
    tst_tensor(e, rng, 4, c3);
    tst_tensor(e, rng, 4, c2);
}

static void setup_columns(tst_env *e, nb_rng *rng)
{
    int64_t a[] = {3, 2}, b[] = {3, 1}, c[] = {3, 4};
    tst_tensor(e, rng, 2, a);
    tst_tensor(e, rng, 2, b);
    tst_tensor(e, rng, 2, c);
}

static void setup_pair(tst_env *e, nb_rng *rng)
{
    int64_t a[] = {2, 3}, b[] = {1, 3};
    tst_tensor(e, rng, 2, a);
    tst_tensor(e, rng, 2, b);
}

static nb_tensor *fwd_reshape(nb_ctx *ctx, tst_env *e)
{
    return nb_reshape(ctx, e->t[0], 3, (int64_t[]){4, -1, 2});
}
/* The view feeds a second op, whose gradient must reach x through it. */
static nb_tensor *fwd_reshape_tanh(nb_ctx *ctx, tst_env *e)
{
    return nb_tanh(ctx, nb_reshape(ctx, e->t[0], 2, (int64_t[]){-1, 6}));
}
static nb_tensor *fwd_flatten(nb_ctx *ctx, tst_env *e) { return nb_flatten(ctx, e->t[0]); }
static nb_tensor *fwd_concat_channels(nb_ctx *ctx, tst_env *e)
{
    return nb_concat(ctx, 3, e->t, 1);
}
static nb_tensor *fwd_concat_last(nb_ctx *ctx, tst_env *e) { return nb_concat(ctx, 3, e->t, -1); }
/* x, y, x along dim 0: x's gradient gathers both of its slices. */
static nb_tensor *fwd_concat_twice(nb_ctx *ctx, tst_env *e)
{
    nb_tensor *xs[] = {e->t[0], e->t[1], e->t[0]};
    return nb_concat(ctx, 3, xs, 0);
}

const tst_case tst_cases_shape[] = {
    {"reshape [2,3,2,2] -> [4,-1,2]", setup_x, fwd_reshape},
    {"tanh(reshape [2,3,2,2] -> [-1,6])", setup_x, fwd_reshape_tanh},
    {"flatten [2,3,2,2]", setup_x, fwd_flatten},
    {"flatten [5]", setup_vector, fwd_flatten},
    {"concat channels 1 + 3 + 2, dim 1", setup_channels, fwd_concat_channels},
    {"concat columns 2 + 1 + 4, dim -1", setup_columns, fwd_concat_last},
    {"concat x, y, x along dim 0", setup_pair, fwd_concat_twice},
    {0},
};

/* ---- known values, by hand ---------------------------------------------- */

/* Backpropagates sum(y * w) for a literal w of y's shape. */
static void backward_weighted(nb_ctx *ctx, nb_tensor *y, const double *w)
{
    ck_assert_msg(y != NULL, "%s", nb_errmsg(ctx));
    nb_tensor *wt = tst_make(ctx, y->dtype, y->ndim, y->shape, w);
    ck_assert_int_eq(nb_backward(ctx, nb_sum(ctx, nb_mul(ctx, y, wt))), NB_OK);
}

START_TEST(test_reshape_values)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {2, 3}, s32[] = {3, 2}, s6[] = {6, 1};
    nb_tensor *x = tst_make(ctx, _i ? NB_F32 : NB_F64, 2, s, (double[]){1, 2, 3, 4, 5, 6});
    nb_requires_grad(x, true);
    nb_tensor *y = nb_reshape(ctx, x, 2, s32);
    tst_assert_values(y, 2, s32, (double[]){1, 2, 3, 4, 5, 6}, 0);
    ck_assert_ptr_eq(y->data, x->data); /* a view, not a copy */
    tst_assert_values(nb_reshape(ctx, x, 2, (int64_t[]){-1, 1}), 2, s6,
                      (double[]){1, 2, 3, 4, 5, 6}, 0);
    backward_weighted(ctx, y, (double[]){10, 20, 30, 40, 50, 60});
    tst_assert_values(x->grad, 2, s, (double[]){10, 20, 30, 40, 50, 60}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* One element views as a scalar and back; -1 alone takes every element. */
START_TEST(test_reshape_scalar)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s1[] = {1, 1}, s4[] = {4};
    nb_tensor *one = tst_make(ctx, NB_F64, 2, s1, (double[]){7});
    tst_assert_values(nb_reshape(ctx, one, 0, NULL), 0, NULL, (double[]){7}, 0);
    nb_tensor *x = tst_make(ctx, NB_F64, 2, (int64_t[]){2, 2}, (double[]){1, 2, 3, 4});
    tst_assert_values(nb_reshape(ctx, x, 1, (int64_t[]){-1}), 1, s4, (double[]){1, 2, 3, 4}, 0);
    nb_ctx_free(ctx);
}
END_TEST

/* flatten keeps the batch and joins the rest in C, H, W order, as one
 * "reshape" node. */
START_TEST(test_flatten_values)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {2, 3, 1, 2}, sf[] = {2, 6}, sv[] = {3}, sv1[] = {3, 1};
    double v[12];
    for (int i = 0; i < 12; i++)
        v[i] = i + 1;
    nb_tensor *x = tst_make(ctx, NB_F32, 4, s, v);
    nb_requires_grad(x, true);
    tst_assert_values(nb_flatten(ctx, x), 2, sf, v, 0);
    ck_assert_int_eq(nb_graph_size(ctx), 1);
    nb_tensor *vec = tst_make(ctx, NB_F32, 1, sv, (double[]){1, 2, 3});
    tst_assert_values(nb_flatten(ctx, vec), 2, sv1, (double[]){1, 2, 3}, 0);
    ck_assert_int_eq(nb_graph_size(ctx), 1); /* vec needs no gradient */
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_concat_values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dtype dt = _i ? NB_F32 : NB_F64;
    int64_t sa[] = {2, 2}, sb[] = {2, 1}, sc[] = {1, 2}, s23[] = {2, 3}, s32[] = {3, 2},
            s42[] = {4, 2};
    nb_tensor *a = tst_make(ctx, dt, 2, sa, (double[]){1, 2, 3, 4});
    nb_tensor *b = tst_make(ctx, dt, 2, sb, (double[]){5, 6});
    nb_tensor *c = tst_make(ctx, dt, 2, sc, (double[]){7, 8});
    nb_requires_grad(a, true);
    nb_requires_grad(b, true);
    nb_tensor *y = nb_concat(ctx, 2, (nb_tensor *[]){a, b}, 1);
    tst_assert_values(y, 2, s23, (double[]){1, 2, 5, 3, 4, 6}, 0);
    backward_weighted(ctx, y, (double[]){1, 2, 3, 4, 5, 6});
    tst_assert_values(a->grad, 2, sa, (double[]){1, 2, 4, 5}, 0);
    tst_assert_values(b->grad, 2, sb, (double[]){3, 6}, 0);
    tst_assert_values(nb_concat(ctx, 2, (nb_tensor *[]){a, c}, -2), 2, s32,
                      (double[]){1, 2, 3, 4, 7, 8}, 0);
    /* The same tensor twice: its gradient is the sum of its two slices. */
    nb_zero_grad(ctx);
    y = nb_concat(ctx, 2, (nb_tensor *[]){a, a}, 0);
    tst_assert_values(y, 2, s42, (double[]){1, 2, 3, 4, 1, 2, 3, 4}, 0);
    backward_weighted(ctx, y, (double[]){1, 2, 3, 4, 5, 6, 7, 8});
    tst_assert_values(a->grad, 2, sa, (double[]){6, 8, 10, 12}, 0);
    /* One input: a copy. */
    nb_tensor *one = nb_concat(ctx, 1, &a, 1);
    tst_assert_values(one, 2, sa, (double[]){1, 2, 3, 4}, 0);
    ck_assert_ptr_ne(one->data, a->data);
    nb_ctx_free(ctx);
}
END_TEST

/* Only the inputs that need a gradient get one. */
START_TEST(test_concat_partial_grad)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s[] = {2};
    nb_tensor *a = tst_make(ctx, NB_F64, 1, s, (double[]){1, 2});
    nb_tensor *b = tst_make(ctx, NB_F64, 1, s, (double[]){3, 4});
    nb_requires_grad(b, true);
    backward_weighted(ctx, nb_concat(ctx, 2, (nb_tensor *[]){a, b}, 0), (double[]){1, 2, 3, 4});
    ck_assert_ptr_null(a->grad);
    tst_assert_values(b->grad, 1, s, (double[]){3, 4}, 0);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t s23[] = {2, 3}, s234[] = {2, 3, 4}, s254[] = {2, 5, 4}, s253[] = {2, 5, 3};
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, 2, s23);

    ck_assert_ptr_null(nb_reshape(ctx, x, 2, (int64_t[]){4, 2}));
    tst_assert_error(ctx, NB_ERR_ARG, "reshape: cannot view [2, 3] (6 elements) as [4, 2]");
    ck_assert_ptr_null(nb_reshape(ctx, x, 2, (int64_t[]){4, -1}));
    tst_assert_error(ctx, NB_ERR_ARG, "reshape: cannot view [2, 3] (6 elements) as [4, -1]");
    ck_assert_ptr_null(nb_reshape(ctx, x, 3, (int64_t[]){INT64_MAX, 4, 2}));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "reshape: cannot view [2, 3] (6 elements) as [9223372036854775807, 4, 2]");
    ck_assert_ptr_null(nb_reshape(ctx, x, 3, (int64_t[]){-1, 3, -1}));
    tst_assert_error(ctx, NB_ERR_ARG, "reshape: only one size may be -1 in [-1, 3, -1]");
    ck_assert_ptr_null(nb_reshape(ctx, x, 2, (int64_t[]){6, 0}));
    tst_assert_error(ctx, NB_ERR_ARG, "reshape: size 0 in [6, 0] is neither positive nor -1");
    ck_assert_ptr_null(nb_reshape(ctx, x, 2, (int64_t[]){-2, -3}));
    tst_assert_error(ctx, NB_ERR_ARG, "reshape: size -2 in [-2, -3] is neither positive nor -1");
    ck_assert_ptr_null(nb_reshape(ctx, x, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 2, 3}));
    tst_assert_error(ctx, NB_ERR_ARG, "reshape: 9 dimensions (at most 8)");
    ck_assert_ptr_null(nb_reshape(ctx, x, 2, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "reshape: shape is NULL");

    nb_tensor *scalar = nb_tensor_new(ctx, NB_F32, 0, NULL);
    ck_assert_ptr_null(nb_flatten(ctx, scalar));
    tst_assert_error(ctx, NB_ERR_ARG, "flatten: input [] has no batch dimension");

    nb_tensor *a = nb_tensor_new(ctx, NB_F32, 3, s234);
    nb_tensor *b = nb_tensor_new(ctx, NB_F32, 3, s254);
    nb_tensor *c = nb_tensor_new(ctx, NB_F32, 3, s253);
    nb_tensor *d = nb_tensor_new(ctx, NB_F64, 3, s234);
    ck_assert_ptr_nonnull(nb_concat(ctx, 2, (nb_tensor *[]){a, b}, 1));
    ck_assert_ptr_null(nb_concat(ctx, 2, (nb_tensor *[]){a, c}, 1));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "concat: input 1 [2, 5, 3] does not match input 0 [2, 3, 4] outside dim 1");
    ck_assert_ptr_null(nb_concat(ctx, 3, (nb_tensor *[]){a, b, x}, 1));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "concat: input 2 [2, 3] does not match input 0 [2, 3, 4] outside dim 1");
    ck_assert_ptr_null(nb_concat(ctx, 2, (nb_tensor *[]){a, a}, 3));
    tst_assert_error(ctx, NB_ERR_ARG, "concat: dim 3 is out of range for input 0 [2, 3, 4]");
    ck_assert_ptr_null(nb_concat(ctx, 2, (nb_tensor *[]){a, a}, -4));
    tst_assert_error(ctx, NB_ERR_ARG, "concat: dim -4 is out of range for input 0 [2, 3, 4]");
    ck_assert_ptr_null(nb_concat(ctx, 1, &scalar, 0));
    tst_assert_error(ctx, NB_ERR_ARG, "concat: dim 0 is out of range for input 0 []");
    ck_assert_ptr_null(nb_concat(ctx, 2, (nb_tensor *[]){a, d}, 0));
    tst_assert_error(ctx, NB_ERR_ARG, "concat: input 1 is f64 but input 0 is f32");
    ck_assert_ptr_null(nb_concat(ctx, 0, &a, 0));
    tst_assert_error(ctx, NB_ERR_ARG, "concat: needs at least one input, got 0");
    ck_assert_ptr_null(nb_concat(ctx, 2, NULL, 0));
    tst_assert_error(ctx, NB_ERR_ARG, "concat: the array of inputs is NULL");

    /* A NULL from a failed op keeps that op's message down the chain. */
    nb_clear_error(ctx);
    nb_tensor *bad = nb_reshape(ctx, x, 2, (int64_t[]){4, 2});
    ck_assert_ptr_null(nb_flatten(ctx, nb_concat(ctx, 2, (nb_tensor *[]){x, bad}, 0)));
    tst_assert_error(ctx, NB_ERR_ARG, "reshape: cannot view [2, 3] (6 elements) as [4, 2]");
    nb_clear_error(ctx);
    ck_assert_ptr_null(nb_concat(ctx, 2, (nb_tensor *[]){x, NULL}, 0));
    tst_assert_error(ctx, NB_ERR_ARG, "concat: input 1 is NULL");
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_shape(void)
{
    Suite *s = suite_create("shape");
    TCase *tc = tcase_create("shape");
    tcase_add_loop_test(tc, test_reshape_values, 0, 2);
    tcase_add_test(tc, test_reshape_scalar);
    tcase_add_test(tc, test_flatten_values);
    tcase_add_loop_test(tc, test_concat_values, 0, 2);
    tcase_add_test(tc, test_concat_partial_grad);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}
