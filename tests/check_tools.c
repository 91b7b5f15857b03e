/*
 * check_tools.c - the suites of the nabla tool's own modules (plots, image
 * filters, tile grids), built on the public API only, as the tool is.
 * CK_RUN_SUITE / CK_RUN_CASE pick one; CK_FORK=no for gdb and valgrind.
 *
 * The "colour" suite is here: the colour tiles of tools/grid.c
 * (grid_put_rgb: three planes, one range or none) and tools/filter.c on
 * the planes of a colour image, each filtered on its own.
 */
#include <math.h>
#include <stdlib.h>

#include "testutil.h"

#include "../tools/filter.h"
#include "../tools/grid.h"

Suite *tst_suite_plot(void);
Suite *tst_suite_filter(void);
Suite *tst_suite_grid(void);

/* ---- colour ------------------------------------------------------------------ */

/* Asserts plane k (0 R, 1 G, 2 B) of g's picture, rows x cols: `want`,
 * the border's colour where want is NAN. */
static void assert_plane(const grid *g, int k, int64_t rows, int64_t cols, const double *want)
{
    const double border[3] = {GRID_BORDER_R, GRID_BORDER_G, GRID_BORDER_B};
    ck_assert_int_eq(g->img->shape[0], 3);
    ck_assert_int_eq(g->img->shape[1], rows);
    ck_assert_int_eq(g->img->shape[2], cols);
    for (int64_t i = 0; i < rows * cols; i++) {
        double w = isnan(want[i]) ? border[k] : want[i];
        double got = nb_get(g->img, k * rows * cols + i);
        ck_assert_msg(fabs(got - w) <= 1e-15, "plane %d, pixel %lld: %g, expected %g", k,
                      (long long)i, got, w);
    }
}

/* One tile of 1 x 2 values from three planes (offset 1, stride 3), on one
 * range over them: min 0 and max 4 of all six. */
START_TEST(test_rgb_shared_range)
{
    nb_ctx *ctx = nb_ctx_new();
    grid g;
    ck_assert_int_eq(grid_new(ctx, &g, 1, 1, 1, 2, 1), NB_OK);
    nb_tensor *t = tst_make(ctx, NB_F32, 1, (int64_t[]){9},
                            (double[]){9, 0, 2, 9, 1, 1, 9, 4, 3});
    grid_put_rgb(&g, 0, 0, t, 1, 3, true);
    const double B = NAN;
    assert_plane(&g, 0, 3, 4, (double[]){B, B, B, B, B, 0, 0.5, B, B, B, B, B});
    assert_plane(&g, 1, 3, 4, (double[]){B, B, B, B, B, 0.25, 0.25, B, B, B, B, B});
    assert_plane(&g, 2, 3, 4, (double[]){B, B, B, B, B, 1, 0.75, B, B, B, B, B});
    grid_free(&g);
    nb_ctx_free(ctx);
}
END_TEST

/* Without scale the values are drawn as they are, clamped to [0, 1]; the
 * second tile of a 1 x 2 grid at zoom 2 (each value a 2 x 2 block). */
START_TEST(test_rgb_as_is)
{
    nb_ctx *ctx = nb_ctx_new();
    grid g;
    ck_assert_int_eq(grid_new(ctx, &g, 1, 2, 1, 1, 2), NB_OK);
    nb_tensor *t = tst_make(ctx, NB_F64, 3, (int64_t[]){3, 1, 1}, (double[]){-1, 0.25, 2});
    grid_put_rgb(&g, 0, 1, t, 0, 1, false);
    const double B = NAN;
    /* Rows: border, 2 rows of | . . | v v |, border; 7 columns. */
    const double border[3] = {GRID_BORDER_R, GRID_BORDER_G, GRID_BORDER_B};
    const double value[3] = {0, 0.25, 1};
    for (int k = 0; k < 3; k++) {
        const double v = value[k], o = border[k];
        const double want[4 * 7] = {
            B, B, B, B, B, B, B,
            B, o, o, B, v, v, B,
            B, o, o, B, v, v, B,
            B, B, B, B, B, B, B,
        };
        assert_plane(&g, k, 4, 7, want);
    }
    grid_free(&g);
    nb_ctx_free(ctx);
}
END_TEST

/* A constant colour tile on its own range is black, as a constant gray
 * tile is. */
START_TEST(test_rgb_constant)
{
    nb_ctx *ctx = nb_ctx_new();
    grid g;
    ck_assert_int_eq(grid_new(ctx, &g, 1, 1, 1, 1, 1), NB_OK);
    nb_tensor *t = tst_make(ctx, NB_F64, 1, (int64_t[]){3}, (double[]){0.5, 0.5, 0.5});
    grid_put_rgb(&g, 0, 0, t, 0, 1, true);
    const double B = NAN;
    for (int k = 0; k < 3; k++)
        assert_plane(&g, k, 3, 3, (double[]){B, B, B, B, 0, B, B, B, B});
    grid_free(&g);
    nb_ctx_free(ctx);
}
END_TEST

/* The three planes of a colour image [3, 2, 3] are filtered each on its
 * own: box:2 in valid mode gives each plane's 2x2 means, never mixing
 * planes. */
START_TEST(test_filter_planes)
{
    nb_ctx *ctx = nb_ctx_new();
    char err[256];
    filter_kernel k = {0};
    ck_assert_int_eq(filter_kernel_make(ctx, "box:2", &k, err, sizeof err), NB_OK);
    nb_tensor *img = tst_make(ctx, NB_F64, 3, (int64_t[]){3, 2, 3},
                              (double[]){0, 1, 2, 3, 4, 5,
                                         10, 10, 10, 10, 10, 10,
                                         1, 0, 1, 0, 1, 0});
    nb_tensor *out = NULL;
    ck_assert_int_eq(filter_apply(ctx, img, &k, 1, FILTER_VALID, false, &out, err, sizeof err),
                     NB_OK);
    tst_assert_values(out, 4, (int64_t[]){3, 1, 1, 2},
                      (double[]){2, 3, 10, 10, 0.5, 0.5}, 1e-12);
    nb_tensor_free(out);
    /* A gray image stays one plane, [1, 1, H', W']. */
    nb_tensor *gray = tst_make(ctx, NB_F64, 2, (int64_t[]){2, 3}, (double[]){0, 1, 2, 3, 4, 5});
    ck_assert_int_eq(filter_apply(ctx, gray, &k, 1, FILTER_SAME, false, &out, err, sizeof err),
                     NB_OK);
    ck_assert_int_eq(out->ndim, 4);
    ck_assert_int_eq(out->shape[0], 1);
    ck_assert_int_eq(out->shape[1], 1);
    ck_assert_int_eq(out->shape[2], 2);
    ck_assert_int_eq(out->shape[3], 3);
    nb_tensor_free(out);
    filter_kernel_free(&k);
    nb_ctx_free(ctx);
}
END_TEST

static Suite *colour_suite(void)
{
    Suite *s = suite_create("colour");
    TCase *tc = tcase_create("colour");
    tcase_add_test(tc, test_rgb_shared_range);
    tcase_add_test(tc, test_rgb_as_is);
    tcase_add_test(tc, test_rgb_constant);
    tcase_add_test(tc, test_filter_planes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tst_suite_plot());
    srunner_add_suite(sr, tst_suite_filter());
    srunner_add_suite(sr, tst_suite_grid());
    srunner_add_suite(sr, colour_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
