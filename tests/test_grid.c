/* test_grid.c - tools/grid.c, the tile pictures of `nabla visualize` and
 * `nabla ascend`: sizes, where each tile lands, its own min..max scaling,
 * the border, nearest-neighbour magnifying and the size limit. */
#include "testutil.h"

#include <string.h>

#include "../tools/grid.h"

/* Asserts g's picture: in each of R, G and B the gray values `gray`
 * (rows x cols pixels), with the border's color where gray is NAN. */
static void assert_picture(const grid *g, int64_t rows, int64_t cols, const double *gray)
{
    const double rgb[3] = {GRID_BORDER_R, GRID_BORDER_G, GRID_BORDER_B};
    double want[3 * 8 * 12];
    ck_assert_int_le(rows * cols, 8 * 12);
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; i < rows * cols; i++)
            want[k * rows * cols + i] = isnan(gray[i]) ? rgb[k] : gray[i];
    tst_assert_values(g->img, 3, (int64_t[]){3, rows, cols}, want, 1e-15);
}

START_TEST(test_sizes)
{
    /* 6 tiles of 3 values at zoom 8 with 1-pixel lines: 3 * 24 + 4. */
    ck_assert_int_eq(grid_side(3, 3, 8), 76);
    ck_assert_int_eq(grid_side(1, 28, 2), 58);
    ck_assert_int_eq(grid_columns(1), 1);
    ck_assert_int_eq(grid_columns(6), 3);
    ck_assert_int_eq(grid_columns(16), 4);
    ck_assert_int_eq(grid_columns(17), 5);
    ck_assert_int_eq(grid_columns(32), 8);
    ck_assert_int_eq(grid_columns(12), 4);
    ck_assert_int_eq(grid_columns(10), 4);
    ck_assert_int_eq(grid_columns(7), 3);
    ck_assert_int_eq(grid_columns(2), 2);
    ck_assert_int_eq(grid_columns(3), 2);
    ck_assert_int_eq(grid_zoom(3, 24), 8);
    ck_assert_int_eq(grid_zoom(5, 24), 5);
    ck_assert_int_eq(grid_zoom(28, 48), 2);
    ck_assert_int_eq(grid_zoom(7, 48), 7);
    ck_assert_int_eq(grid_zoom(128, 48), 1);
    ck_assert_int_eq(grid_zoom(48, 48), 1);
}
END_TEST

/* Two tiles of 1 x 2 values side by side at zoom 2:
 *   row 0: border; rows 1-2: | a a b b | c c d d |; row 3: border;
 * the same in R, G and B but for the border's color. */
START_TEST(test_put)
{
    nb_ctx *ctx = nb_ctx_new();
    grid g;
    ck_assert_int_eq(grid_new(ctx, &g, 1, 2, 1, 2, 2), NB_OK);
    ck_assert_int_eq(g.img->ndim, 3);
    ck_assert_int_eq(g.img->shape[0], 3);
    ck_assert_int_eq(g.img->shape[1], 4);
    ck_assert_int_eq(g.img->shape[2], 11);
    /* Tile 0 from {-3, 5} (offset 1 of t), tile 1 constant: black. */
    nb_tensor *t = tst_make(ctx, NB_F32, 1, (int64_t[]){5}, (double[]){9, -3, 5, 2, 2});
    grid_put(&g, 0, 0, t, 1);
    grid_put(&g, 0, 1, t, 3);
    const double B = NAN;
    const double want[4 * 11] = {
        B, B, B, B, B, B, B, B, B, B, B,
        B, 0, 0, 1, 1, B, 0, 0, 0, 0, B,
        B, 0, 0, 1, 1, B, 0, 0, 0, 0, B,
        B, B, B, B, B, B, B, B, B, B, B,
    };
    assert_picture(&g, 4, 11, want);
    grid_free(&g);
    ck_assert_ptr_null(g.img);
    nb_ctx_free(ctx);
}
END_TEST

/* Each tile on its own range: 2 x 2 values of a ramp in a 2 x 1 grid. */
START_TEST(test_own_range)
{
    nb_ctx *ctx = nb_ctx_new();
    grid g;
    ck_assert_int_eq(grid_new(ctx, &g, 2, 1, 2, 2, 1), NB_OK);
    nb_tensor *t = tst_make(ctx, NB_F64, 1, (int64_t[]){8},
                            (double[]){0, 1, 2, 4, 100, 90, 80, 70});
    grid_put(&g, 0, 0, t, 0);
    grid_put(&g, 1, 0, t, 4);
    const double B = NAN;
    const double want[7 * 4] = {
        B, B, B, B,
        B, 0, 0.25, B,
        B, 0.5, 1, B,
        B, B, B, B,
        B, 1, 2.0 / 3, B,
        B, 1.0 / 3, 0, B,
        B, B, B, B,
    };
    assert_picture(&g, 7, 4, want);
    grid_free(&g);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_upscale)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *img = tst_make(ctx, NB_F32, 4, (int64_t[]){1, 2, 1, 2},
                              (double[]){0.25, 2, -1, 0.5});
    nb_tensor *big;
    ck_assert_int_eq(grid_upscale(ctx, img, 2, &big), NB_OK);
    /* Values kept as they are (no scaling, no clamping). */
    const double want[2 * 2 * 4] = {
        0.25, 0.25, 2, 2,
        0.25, 0.25, 2, 2,
        -1, -1, 0.5, 0.5,
        -1, -1, 0.5, 0.5,
    };
    tst_assert_values(big, 3, (int64_t[]){2, 2, 4}, want, 0);
    ck_assert_int_eq(big->dtype, NB_F64);
    nb_tensor_free(big);
    ck_assert_int_eq(grid_upscale(ctx, img, 1, &big), NB_OK);
    tst_assert_values(big, 3, (int64_t[]){2, 1, 2}, (double[]){0.25, 2, -1, 0.5}, 0);
    nb_tensor_free(big);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_too_large)
{
    nb_ctx *ctx = nb_ctx_new();
    grid g;
    /* 16 tiles of 1024 at zoom 1 need 16 * 1024 + 17 pixels. */
    ck_assert_int_eq(grid_side(16, 1024, 1), GRID_MAX_SIDE + 17);
    ck_assert_int_eq(grid_new(ctx, &g, 16, 1, 1024, 1, 1), NB_ERR_ARG);
    ck_assert_ptr_null(g.img);
    ck_assert_int_eq(grid_new(ctx, &g, 1, 1, 1, 1, 1 << 30), NB_ERR_ARG);
    ck_assert_int_eq(grid_new(ctx, &g, 1, 1 << 30, 1, 1 << 30, 1), NB_ERR_ARG);
    ck_assert_int_eq(grid_new(ctx, &g, 0, 1, 1, 1, 1), NB_ERR_ARG);
    ck_assert_int_eq(grid_new(ctx, &g, 15, 1, 1024, 1, 1), NB_OK);
    ck_assert_int_eq(g.img->shape[1], 15 * 1024 + 16);
    grid_free(&g);
    nb_tensor *img = nb_tensor_new(ctx, NB_F32, 3, (int64_t[]){1, 2, 4097});
    nb_tensor *big = img;
    ck_assert_int_eq(grid_upscale(ctx, img, 4, &big), NB_ERR_ARG);
    ck_assert_ptr_null(big);
    ck_assert_int_eq(grid_upscale(ctx, img, 0, &big), NB_ERR_ARG);
    ck_assert_int_eq(grid_upscale(ctx, img, 3, &big), NB_OK);
    ck_assert_int_eq(big->shape[2], 3 * 4097);
    nb_tensor_free(big);
    nb_ctx_free(ctx);
}
END_TEST

/* A failing allocator: grid_new reports the library's status. */
START_TEST(test_nomem)
{
    tst_failing f = {.left = 0};
    nb_allocator a = {tst_failing_alloc, tst_failing_free, &f};
    f.left = 1 << 20;
    nb_ctx *ctx = nb_ctx_new_with(&a);
    ck_assert_ptr_nonnull(ctx);
    f.left = 0;
    grid g;
    ck_assert_int_eq(grid_new(ctx, &g, 2, 2, 3, 3, 8), NB_ERR_NOMEM);
    ck_assert_ptr_null(g.img);
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_grid(void)
{
    Suite *s = suite_create("grid");
    TCase *tc = tcase_create("grid");
    tcase_add_test(tc, test_sizes);
    tcase_add_test(tc, test_put);
    tcase_add_test(tc, test_own_range);
    tcase_add_test(tc, test_upscale);
    tcase_add_test(tc, test_too_large);
    tcase_add_test(tc, test_nomem);
    suite_add_tcase(s, tc);
    return s;
}
