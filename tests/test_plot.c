/* test_plot.c - the training-curve plots of tools/plot.c: the canvas, lines,
 * markers, text, nice ticks and their labels, the two-panel layout on odd
 * data, and the PNG it writes. */
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tools/plot.h"

#define BLACK 0x000000u
#define WHITE 0xffffffu
#define RED 0xff0000u

/* A white w x h canvas in a new context; free with nb_ctx_free. */
static nb_ctx *canvas(int w, int h, plot_canvas *cv)
{
    nb_ctx *ctx = nb_ctx_new();
    ck_assert_ptr_nonnull(plot_canvas_new(ctx, w, h, cv));
    return ctx;
}

/* How many pixels of the box x0..x1, y0..y1 (inclusive) have colour rgb
 * (or, with `not`, any other colour). */
static int count(const plot_canvas *cv, int x0, int y0, int x1, int y1,
                 unsigned rgb, bool not)
{
    int n = 0;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            n += (plot_pixel(cv, x, y) == rgb) != not;
    return n;
}

/* ---- the canvas ---------------------------------------------------------- */

START_TEST(test_canvas_white)
{
    plot_canvas cv;
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *t = plot_canvas_new(ctx, 20, 10, &cv);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->ndim, 3);
    ck_assert_int_eq(t->shape[0], 3);
    ck_assert_int_eq(t->shape[1], 10);
    ck_assert_int_eq(t->shape[2], 20);
    ck_assert_int_eq(t->dtype, NB_F32);
    ck_assert_ptr_eq(cv.px, t->data);
    ck_assert_int_eq(cv.w, 20);
    ck_assert_int_eq(cv.h, 10);
    ck_assert_int_eq(count(&cv, 0, 0, 19, 9, WHITE, false), 200);
    ck_assert_uint_eq(plot_pixel(&cv, -1, 0), 0);  /* outside */
    ck_assert_uint_eq(plot_pixel(&cv, 20, 0), 0);
    ck_assert_uint_eq(plot_pixel(&cv, 0, 10), 0);

    /* Half black over white is 0.5: 127.5 rounds to 128. */
    plot_blend(&cv, 3, 4, BLACK, 0.5);
    ck_assert_uint_eq(plot_pixel(&cv, 3, 4), 0x808080);
    plot_blend(&cv, 3, 4, 0x123456, 1);
    ck_assert_uint_eq(plot_pixel(&cv, 3, 4), 0x123456);
    plot_blend(&cv, 3, 4, BLACK, 0);
    ck_assert_uint_eq(plot_pixel(&cv, 3, 4), 0x123456);
    plot_blend(&cv, -1, 4, BLACK, 1); /* clipped */
    plot_blend(&cv, 3, 99, BLACK, 1);
    /* Channels are planes: R, then G, then B. */
    ck_assert_float_eq_tol(cv.px[4 * 20 + 3], 0x12 / 255.0, 1e-6);
    ck_assert_float_eq_tol(cv.px[200 + 4 * 20 + 3], 0x34 / 255.0, 1e-6);
    ck_assert_float_eq_tol(cv.px[400 + 4 * 20 + 3], 0x56 / 255.0, 1e-6);

    plot_fill_rect(&cv, 15, 7, 30, 30, RED, 1); /* clipped to 15..19, 7..9 */
    ck_assert_int_eq(count(&cv, 0, 0, 19, 9, RED, false), 15);
    ck_assert_int_eq(count(&cv, 15, 7, 19, 9, RED, false), 15);

    /* A bad size fails with the tensor's error. */
    ck_assert_ptr_null(plot_canvas_new(ctx, 0, 10, &cv));
    ck_assert_int_eq(nb_error(ctx), NB_ERR_ARG);
    ck_assert_ptr_null(cv.px);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- lines and markers --------------------------------------------------- */

START_TEST(test_line_horizontal)
{
    plot_canvas cv;
    nb_ctx *ctx = canvas(40, 20, &cv);
    plot_line(&cv, 5, 10, 30, 10, 1, RED);
    /* Exactly the pixels (5, 10) .. (30, 10). */
    ck_assert_int_eq(count(&cv, 5, 10, 30, 10, RED, false), 26);
    ck_assert_int_eq(count(&cv, 0, 0, 39, 19, WHITE, false), 800 - 26);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_line_vertical_wide)
{
    plot_canvas cv;
    nb_ctx *ctx = canvas(40, 20, &cv);
    /* Width 2 between two columns: both columns full (distance 0.5,
     * coverage 1 + 0.5 - 0.5), the next ones untouched (1.5 - 1.5).  The
     * round ends reach one row further: (20, 2) is sqrt 1.25 = 1.118 from
     * (20.5, 3), coverage 0.382, 255 (1 - 0.382) = 157.6 -> 158. */
    plot_line(&cv, 20.5, 3, 20.5, 15, 2, BLACK);
    ck_assert_int_eq(count(&cv, 20, 3, 21, 15, BLACK, false), 26);
    ck_assert_uint_eq(plot_pixel(&cv, 20, 2), 0x9e9e9e);
    ck_assert_uint_eq(plot_pixel(&cv, 21, 16), 0x9e9e9e);
    ck_assert_int_eq(count(&cv, 0, 0, 39, 19, WHITE, false), 800 - 26 - 4);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_polyline_gap_and_joint)
{
    plot_canvas cv;
    nb_ctx *ctx = canvas(40, 20, &cv);
    /* NaN breaks the line: 2..10 and 20..30 on row 5, nothing between. */
    double x[] = {2, 10, NAN, 20, 30}, y[] = {5, 5, 5, 5, 5};
    plot_polyline(&cv, x, y, 5, 1, RED, false);
    ck_assert_int_eq(count(&cv, 2, 5, 10, 5, RED, false), 9);
    ck_assert_int_eq(count(&cv, 20, 5, 30, 5, RED, false), 11);
    ck_assert_int_eq(count(&cv, 0, 0, 39, 19, WHITE, false), 800 - 20);
    nb_ctx_free(ctx);

    /* A right-angled joint of width 2 at (10, 5): pixel (11, 4) is sqrt 2
     * from both segments, coverage 1.5 - 1.41421 = 0.08579, so blended once
     * it is 255 (1 - 0.08579) = 233.1 -> 233 (twice would give 213). */
    ctx = canvas(40, 20, &cv);
    double jx[] = {2, 10, 10}, jy[] = {5, 5, 15};
    plot_polyline(&cv, jx, jy, 3, 2, BLACK, false);
    ck_assert_uint_eq(plot_pixel(&cv, 11, 4), 0xe9e9e9);
    ck_assert_uint_eq(plot_pixel(&cv, 10, 5), BLACK);
    ck_assert_uint_eq(plot_pixel(&cv, 6, 5), BLACK);
    ck_assert_uint_eq(plot_pixel(&cv, 10, 12), BLACK);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_polyline_dashed)
{
    plot_canvas cv;
    nb_ctx *ctx = canvas(60, 10, &cv);
    /* Dashes of 5 px of the path every 11 px, width 1: the pixels 2..7,
     * 13..18, 24..29, 35..40 and 46..51 of row 5 (a dash from 2 to 7
     * covers its end pixels at distance 0). */
    double x[] = {2, 30, 52}, y[] = {5, 5, 5};
    plot_polyline(&cv, x, y, 3, 1, BLACK, true);
    int on[][2] = {{2, 7}, {13, 18}, {24, 29}, {35, 40}, {46, 51}};
    for (int i = 0; i < 5; i++)
        ck_assert_int_eq(count(&cv, on[i][0], 5, on[i][1], 5, BLACK, false), 6);
    ck_assert_int_eq(count(&cv, 0, 0, 59, 9, WHITE, false), 600 - 30);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_stroke_odd)
{
    plot_canvas cv;
    nb_ctx *ctx = canvas(40, 20, &cv);
    double x[] = {-1e6, 1e6, 5}, y[] = {10, 10, INFINITY};
    double far[] = {-1e300, 1e300};
    /* Widths that are not positive draw nothing; NULL draws nothing. */
    plot_line(&cv, 5, 10, 30, 10, NAN, RED);
    plot_line(&cv, 5, 10, 30, 10, 0, RED);
    plot_line(&cv, 5, 10, 30, 10, -2, RED);
    plot_polyline(&cv, NULL, y, 3, 1, RED, false);
    plot_polyline(&cv, x, NULL, 3, 1, RED, true);
    plot_line(&cv, NAN, 10, 30, 10, 1, RED);
    ck_assert_int_eq(count(&cv, 0, 0, 39, 19, WHITE, false), 800);
    /* Far-off ends: clipped to the canvas, dashes included; a huge width
     * is kept to 1000 and covers everything. */
    plot_polyline(&cv, x, y, 3, 1, RED, true);
    ck_assert_int_gt(count(&cv, 0, 10, 39, 10, RED, false), 15);
    ck_assert_int_lt(count(&cv, 0, 10, 39, 10, RED, false), 30);
    ck_assert_int_eq(count(&cv, 0, 0, 39, 9, WHITE, false), 400);
    plot_polyline(&cv, far, y, 2, 1, RED, true); /* returns */
    plot_polyline(&cv, x, y, 3, 1e300, RED, true);
    plot_line(&cv, 5, 10, 6, 10, INFINITY, BLACK);
    ck_assert_int_eq(count(&cv, 0, 0, 39, 19, BLACK, false), 800);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_markers)
{
    plot_canvas cv;
    nb_ctx *ctx = canvas(40, 20, &cv);
    /* A disc of radius 3: full inside, half at distance 3, none at 4. */
    plot_marker(&cv, 10, 10, 3, false, BLACK);
    ck_assert_uint_eq(plot_pixel(&cv, 10, 10), BLACK);
    ck_assert_uint_eq(plot_pixel(&cv, 11, 12), BLACK); /* 2.24 from it */
    ck_assert_uint_eq(plot_pixel(&cv, 10, 13), 0x808080);
    ck_assert_uint_eq(plot_pixel(&cv, 10, 14), WHITE);
    /* A square of half side 3: half on its sides, a quarter at a corner:
     * 255 * 0.75 = 191.25 -> 191. */
    plot_marker(&cv, 30, 10, 3, true, BLACK);
    ck_assert_uint_eq(plot_pixel(&cv, 32, 12), BLACK);
    ck_assert_uint_eq(plot_pixel(&cv, 33, 10), 0x808080);
    ck_assert_uint_eq(plot_pixel(&cv, 33, 13), 0xbfbfbf);
    ck_assert_uint_eq(plot_pixel(&cv, 34, 10), WHITE);
    /* Nothing for NaN or a radius of 0. */
    plot_marker(&cv, NAN, 5, 3, false, RED);
    plot_marker(&cv, 20, 5, 0, false, RED);
    ck_assert_int_eq(count(&cv, 0, 0, 39, 19, RED, false), 0);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- text ---------------------------------------------------------------- */

START_TEST(test_text_box)
{
    plot_canvas cv;
    nb_ctx *ctx = canvas(80, 40, &cv);
    /* 4 glyphs on a 6-pixel advance at scale 2, less the last gap: 46 x 18. */
    ck_assert_int_eq(plot_text_width("Ag,1", 2), 46);
    ck_assert_int_eq(plot_text(&cv, 10, 5, "Ag,1", 2, BLACK), 46);
    int inside = count(&cv, 10, 5, 55, 22, BLACK, false);
    ck_assert_int_gt(inside, 0);
    ck_assert_int_eq(count(&cv, 0, 0, 79, 39, BLACK, false), inside);
    ck_assert_int_eq(count(&cv, 0, 0, 79, 39, WHITE, true), inside);
    /* A's left column is rows 1-6 (14 rows at scale 2, 2 pixels wide),
     * its apex row 0 the middle three columns. */
    ck_assert_int_eq(count(&cv, 10, 7, 11, 18, BLACK, false), 24);
    ck_assert_int_eq(count(&cv, 10, 5, 11, 6, BLACK, false), 0);
    ck_assert_int_eq(count(&cv, 12, 5, 17, 6, BLACK, false), 12);
    /* g and the comma descend below the baseline (rows 7 and 8). */
    ck_assert_int_gt(count(&cv, 22, 19, 33, 22, BLACK, false), 0);
    ck_assert_int_gt(count(&cv, 34, 19, 45, 22, BLACK, false), 0);
    ck_assert_int_eq(count(&cv, 10, 19, 21, 22, BLACK, false), 0); /* A */
    nb_ctx_free(ctx);

    ck_assert_int_eq(plot_text_width("", 2), 0);
    ck_assert_int_eq(plot_text_width(NULL, 2), 0);
    ck_assert_int_eq(plot_text_width("abc", 1), 17);
    ck_assert_int_eq(plot_text_width("abc", 0), 17); /* scale 1 at least */
}
END_TEST

START_TEST(test_text_unprintable)
{
    plot_canvas a, b;
    nb_ctx *ca = canvas(30, 20, &a), *cb = canvas(30, 20, &b);
    plot_text(&a, 2, 2, "x\xc3\t", 1, BLACK);
    plot_text(&b, 2, 2, "x??", 1, BLACK);
    for (int y = 0; y < 20; y++)
        for (int x = 0; x < 30; x++)
            ck_assert_uint_eq(plot_pixel(&a, x, y), plot_pixel(&b, x, y));
    /* Off the canvas, clipped. */
    plot_text(&a, -100, -3, "clipped at the edges of the canvas", 3, RED);
    plot_text(&a, 25, 15, "WW", 4, RED);
    ck_assert_uint_eq(plot_pixel(&a, 25, 15), RED);
    nb_ctx_free(ca);
    nb_ctx_free(cb);
}
END_TEST

/* ---- ticks --------------------------------------------------------------- */

typedef struct tick_case {
    double lo, hi;
    int max;
    int n;
    double first, step;
} tick_case;

static const tick_case tick_cases[] = {
    /* raw step 0.61 / 7 = 0.087: 0.05 gives 14 ticks, 0.1 gives 8 */
    {0.31, 0.92, 8, 8, 0.3, 0.1},
    {0.92, 0.31, 8, 8, 0.3, 0.1}, /* reversed */
    /* 0.1 gives 11 ticks, 0.2 gives 6 */
    {0, 1, 6, 6, 0, 0.2},
    /* epochs 1..100: 10 gives 0..100, 11 ticks; 20 gives 0..100, 6 */
    {1, 100, 10, 6, 0, 20},
    /* 1..10 in steps of 1 */
    {1, 10, 10, 10, 1, 1},
    /* 2e5..3.2e6: 5e5 gives 0..3.5e6, 8 ticks */
    {2e5, 3.2e6, 8, 8, 0, 5e5},
    /* the constant 0.5 widens to [0.475, 0.525]: 0.47..0.53 by 0.01 */
    {0.5, 0.5, 8, 7, 0.47, 0.01},
    /* the constant 0 widens to [-0.5, 0.5]: -0.6..0.6 by 0.2 */
    {0, 0, 8, 7, -0.6, 0.2},
    /* negative values: -3.7..-1.2 by 0.5 gives -4.0..-1.0 */
    {-3.7, -1.2, 8, 7, -4, 0.5},
    /* NaN and infinities fall back to [0, 1] */
    {NAN, 1, 6, 6, 0, 0.2},
    {0, INFINITY, 6, 6, 0, 0.2},
    /* tiny: 1e-5..3e-5 by 5e-6 */
    {1e-5, 3e-5, 8, 5, 1e-5, 5e-6},
};

START_TEST(test_nice_ticks)
{
    const tick_case *c = &tick_cases[_i];
    double first = -99, step = -99;
    int n = plot_nice_ticks(c->lo, c->hi, c->max, &first, &step);
    ck_assert_int_eq(n, c->n);
    ck_assert_double_eq_tol(first, c->first, 1e-12 * fmax(1, fabs(c->first)));
    ck_assert_double_eq_tol(step, c->step, 1e-12 * c->step);
}
END_TEST

START_TEST(test_nice_ticks_extremes)
{
    double first, step;
    /* Huge, subnormal and lopsided ranges still give finite ticks. */
    const double cases[][2] = {{-1e308, 1e308}, {1e-310, 1e-310},
                               {0, 1e-300}, {-1e300, 1}, {1e15, 1e15 + 1}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int n = plot_nice_ticks(cases[i][0], cases[i][1], 8, &first, &step);
        ck_assert_int_ge(n, 2);
        ck_assert_int_le(n, 8);
        ck_assert(isfinite(first) && isfinite(step) && step > 0);
    }
    /* max_ticks is clamped to 2..50. */
    ck_assert_int_eq(plot_nice_ticks(0, 1, 0, &first, &step), 2);
    ck_assert_double_eq(step, 1);
    /* 50 ticks: 10 gives 101, 20 gives 51, 50 gives 0..1000 in 21. */
    ck_assert_int_eq(plot_nice_ticks(0, 1000, 1000, &first, &step), 21);
    ck_assert_double_eq(step, 50);
}
END_TEST

typedef struct label_case {
    double v, step;
    const char *text;
} label_case;

static const label_case label_cases[] = {
    {0.3, 0.1, "0.3"},
    {0.30000000000000004, 0.1, "0.3"},
    {1.0, 0.1, "1.0"},
    {-0.6, 0.2, "-0.6"},
    {1e-17, 0.1, "0.0"}, /* rounding noise of 0 */
    {-1e-17, 0.1, "0.0"},
    {0.75, 0.25, "0.75"},
    {0.47, 0.01, "0.47"},
    {20, 20, "20"},
    {0, 5e5, "0"},
    {2.5e6, 5e5, "2.5e6"},
    {3e6, 5e5, "3e6"},
    {1.5e-5, 5e-6, "1.5e-5"},
    {3e-5, 1e-5, "3e-5"},
    {-2e-7, 1e-7, "-2e-7"},
    {0.0001, 0.0001, "0.0001"},
    {99999, 1, "99999"},
    {1e5, 1e5, "1e5"},
    {9.9999999e6, 1e6, "1e7"}, /* the mantissa rounds up to 10 */
};

START_TEST(test_tick_label)
{
    const label_case *c = &label_cases[_i];
    char buf[32];
    ck_assert_str_eq(plot_tick_label(c->v, c->step, buf, sizeof buf), c->text);
}
END_TEST

START_TEST(test_tick_label_odd)
{
    char buf[8];
    ck_assert_str_eq(plot_tick_label(NAN, 0.1, buf, sizeof buf), "nan");
    ck_assert_str_eq(plot_tick_label(2, 0, buf, sizeof buf), "2");
    /* Truncated to the buffer, always terminated. */
    ck_assert_str_eq(plot_tick_label(-1.25, 0.01, buf, 4), "-1.");
    ck_assert_ptr_eq(plot_tick_label(1, 1, buf, 0), buf);
}
END_TEST

/* ---- the curves ---------------------------------------------------------- */

/* Pixels of rgb in the columns x0..x1, all rows. */
static int count_cols(const plot_canvas *cv, int x0, int x1, unsigned rgb)
{
    return count(cv, x0, 0, x1, cv->h - 1, rgb, false);
}

START_TEST(test_curves_panels)
{
    plot_canvas cv;
    nb_ctx *ctx = canvas(PLOT_WIDTH, PLOT_HEIGHT, &cv);
    double tl[] = {0.61, 0.20, 0.13, 0.10, 0.085};
    double vl[] = {0.24, 0.15, 0.12, 0.097, 0.090};
    double ta[] = {0.81, 0.94, 0.96, 0.969, 0.974};
    double va[] = {0.93, 0.955, 0.964, 0.970, 0.972};
    plot_series loss[] = {{"training", tl, 5, PLOT_BLUE, false},
                          {"validation", vl, 5, PLOT_ORANGE, true}};
    plot_series acc[] = {{"training", ta, 5, PLOT_BLUE, false},
                         {"validation", va, 5, PLOT_ORANGE, true}};
    plot_draw_curves(&cv, "lenet - 5 epochs", loss, 2, acc, 2);
    int half = PLOT_WIDTH / 2;
    ck_assert_int_gt(count_cols(&cv, 0, half - 1, PLOT_BLUE), 100);
    ck_assert_int_gt(count_cols(&cv, 0, half - 1, PLOT_ORANGE), 100);
    ck_assert_int_gt(count_cols(&cv, half, PLOT_WIDTH - 1, PLOT_BLUE), 100);
    ck_assert_int_gt(count_cols(&cv, half, PLOT_WIDTH - 1, PLOT_ORANGE), 100);
    /* The title's ink is in the top band, centred. */
    int title = count(&cv, 0, 0, PLOT_WIDTH - 1, 36, WHITE, true);
    ck_assert_int_gt(title, 100);
    ck_assert_int_eq(count(&cv, 0, 0, 300, 36, WHITE, true), 0);
    ck_assert_int_eq(count(&cv, 700, 0, PLOT_WIDTH - 1, 36, WHITE, true), 0);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_curves_one_epoch)
{
    plot_canvas cv;
    nb_ctx *ctx = canvas(PLOT_WIDTH, PLOT_HEIGHT, &cv);
    double l[] = {0.35}, vl[] = {NAN}, a[] = {0.9};
    plot_series loss[] = {{"training", l, 1, PLOT_BLUE, false},
                          {"validation", vl, 1, PLOT_ORANGE, true}};
    plot_series acc[] = {{"training", a, 1, PLOT_BLUE, false},
                         {"validation", NULL, 0, PLOT_ORANGE, true}};
    plot_draw_curves(&cv, "mlp - 1 epoch", loss, 2, acc, 2);
    /* The missing validation is drawn nowhere, not even in a legend. */
    ck_assert_int_eq(count(&cv, 0, 0, PLOT_WIDTH - 1, PLOT_HEIGHT - 1,
                           PLOT_ORANGE, false), 0);
    /* The single point is a marker in the middle of the loss frame: its
     * y labels 0.33..0.37 are 46 px wide, so the frame spans x 68..479
     * (12 + 46 + 5 + 5 .. 499 - 20) and y 72..360, the point at
     * (273.5, 216). */
    ck_assert_uint_eq(plot_pixel(&cv, 273, 216), PLOT_BLUE);
    ck_assert_uint_eq(plot_pixel(&cv, 274, 216), PLOT_BLUE);
    ck_assert_uint_eq(plot_pixel(&cv, 273, 212), WHITE); /* above: r 3.5 */
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_curves_constant)
{
    plot_canvas cv;
    nb_ctx *ctx = canvas(PLOT_WIDTH, PLOT_HEIGHT, &cv);
    double l[] = {0.5, 0.5, 0.5, 0.5};
    plot_series loss[] = {{"training", l, 4, PLOT_BLUE, false}};
    plot_draw_curves(&cv, NULL, loss, 1, NULL, 0);
    /* One panel over the whole width, its frame x 68..979 and y 72..360,
     * y 0.47..0.53: the line is row 216 in the middle, from epoch 1 at
     * x 101.7 to epoch 4 at 945.3, half blue on rows 215 and 217 (its
     * width 2), none on 214 and 218 between the markers (382.9, 664.1). */
    ck_assert_int_eq(count(&cv, 110, 216, 940, 216, PLOT_BLUE, false), 831);
    ck_assert_int_eq(count(&cv, 110, 214, 370, 214, PLOT_BLUE, false), 0);
    ck_assert_int_eq(count(&cv, 110, 218, 370, 218, PLOT_BLUE, false), 0);
    ck_assert_int_eq(count(&cv, 400, 215, 650, 215, PLOT_BLUE, false), 0);
    ck_assert_int_eq(count(&cv, 400, 214, 650, 214, WHITE, false), 251);
    ck_assert_int_eq(count(&cv, 400, 218, 650, 218, WHITE, false), 251);
    /* Nothing right of x = 980 but white (the frame ends at 979). */
    ck_assert_int_eq(count(&cv, 980, 0, PLOT_WIDTH - 1, PLOT_HEIGHT - 1,
                           WHITE, true), 0);
    ck_assert_uint_ne(plot_pixel(&cv, 979, 216), WHITE);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_curves_missing_and_odd)
{
    double nan3[] = {NAN, NAN, NAN};
    double huge[] = {1e300, -1e300, 1e-310, INFINITY, 5};
    double many[100];
    for (int i = 0; i < 100; i++)
        many[i] = 2.0 / (1 + i);
    plot_series none[] = {{"training", nan3, 3, PLOT_BLUE, false},
                          {NULL, NULL, 5, PLOT_ORANGE, true},
                          {"negative", many, -1, RED, false}};
    plot_series odd[] = {{"huge", huge, 5, PLOT_BLUE, false},
                         {NULL, many, 100, PLOT_ORANGE, true}};
    plot_canvas cv;

    /* Nothing to draw: empty axes, no series colour anywhere. */
    nb_ctx *ctx = canvas(PLOT_WIDTH, PLOT_HEIGHT, &cv);
    plot_draw_curves(&cv, "", none, 3, none, 3);
    ck_assert_int_eq(count(&cv, 0, 0, PLOT_WIDTH - 1, PLOT_HEIGHT - 1,
                           PLOT_BLUE, false), 0);
    ck_assert_int_eq(count(&cv, 0, 0, PLOT_WIDTH - 1, PLOT_HEIGHT - 1,
                           RED, false), 0);
    ck_assert_int_gt(count(&cv, 0, 0, PLOT_WIDTH - 1, PLOT_HEIGHT - 1,
                           WHITE, true), 1000);
    plot_draw_curves(&cv, NULL, NULL, 0, NULL, 0);
    plot_draw_curves(&cv, NULL, NULL, 5, NULL, -1);
    nb_ctx_free(ctx);

    /* Absurd values and 100 epochs: drawn, nothing outside the canvas. */
    ctx = canvas(PLOT_WIDTH, PLOT_HEIGHT, &cv);
    plot_draw_curves(&cv, "odd", odd, 2, odd + 1, 1);
    ck_assert_int_gt(count(&cv, 0, 0, PLOT_WIDTH - 1, PLOT_HEIGHT - 1,
                           PLOT_ORANGE, false), 100);
    nb_ctx_free(ctx);

    /* A canvas too small for the layout. */
    ctx = canvas(30, 20, &cv);
    plot_draw_curves(&cv, "a title far too long for thirty pixels", odd, 2,
                     odd, 2);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- the PNG ------------------------------------------------------------- */

START_TEST(test_curves_png)
{
    char dir[] = "/tmp/nabla-plot-XXXXXX", path[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/curves.png", dir);
    nb_ctx *ctx = nb_ctx_new();
    double l[] = {0.8, 0.4, 0.3}, a[] = {0.7, 0.85, 0.9};
    plot_series loss = {"training", l, 3, PLOT_BLUE, false};
    plot_series acc = {"training", a, 3, PLOT_BLUE, false};
    ck_assert_int_eq(
        plot_curves(ctx, path, "net - 3 epochs", &loss, 1, &acc, 1), NB_OK);
    nb_tensor *img = nb_png_read(ctx, path, NB_F32, false);
    ck_assert_ptr_nonnull(img);
    ck_assert_int_eq(img->ndim, 3);
    ck_assert_int_eq(img->shape[0], 3);
    ck_assert_int_eq(img->shape[1], PLOT_HEIGHT);
    ck_assert_int_eq(img->shape[2], PLOT_WIDTH);
    /* The corner is white; the file holds the canvas' colours: the
     * training line's pixels are 0x1f77b4 somewhere. */
    ck_assert_double_eq(nb_get(img, 0), 1.0);
    int64_t plane = (int64_t)PLOT_HEIGHT * PLOT_WIDTH, blue = 0;
    for (int64_t i = 0; i < plane; i++)
        blue += fabs(nb_get(img, i) - 0x1f / 255.0) < 1e-6 &&
                fabs(nb_get(img, plane + i) - 0x77 / 255.0) < 1e-6 &&
                fabs(nb_get(img, 2 * plane + i) - 0xb4 / 255.0) < 1e-6;
    ck_assert_int_gt(blue, 100);
    nb_ctx_free(ctx);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_curves_png_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    double l[] = {0.8, 0.4};
    plot_series loss = {"training", l, 2, PLOT_BLUE, false};
    ck_assert_int_eq(plot_curves(ctx, "/nonexistent-dir/curves.png", "x",
                                 &loss, 1, NULL, 0),
                     NB_ERR_IO);
    tst_assert_error(ctx, NB_ERR_IO,
                     "/nonexistent-dir/curves.png: cannot write");
    nb_ctx_free(ctx);
}
END_TEST

/* An allocator that fails once `left` allocations have succeeded. */
/* Fails the k-th allocation for every k: each failure is NB_ERR_NOMEM and
 * leaves no file behind. */
START_TEST(test_curves_alloc_failure)
{
    char dir[] = "/tmp/nabla-plot-XXXXXX", path[64];
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/curves.png", dir);
    double l[] = {0.8, 0.4};
    plot_series loss = {"training", l, 2, PLOT_BLUE, false};
    int k;
    for (k = 1; k < 1000; k++) {
        tst_failing fl = {k};
        nb_allocator al = {tst_failing_alloc, tst_failing_free, &fl};
        nb_ctx *ctx = nb_ctx_new_with(&al);
        if (!ctx)
            continue;
        int rc = plot_curves(ctx, path, "x", &loss, 1, NULL, 0);
        nb_ctx_free(ctx);
        if (rc == NB_OK)
            break;
        ck_assert_int_eq(rc, NB_ERR_NOMEM);
        ck_assert_int_ne(access(path, F_OK), 0);
    }
    ck_assert_int_lt(k, 1000);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

Suite *tst_suite_plot(void)
{
    Suite *s = suite_create("plot");
    TCase *tc = tcase_create("draw");
    tcase_add_test(tc, test_canvas_white);
    tcase_add_test(tc, test_line_horizontal);
    tcase_add_test(tc, test_line_vertical_wide);
    tcase_add_test(tc, test_polyline_gap_and_joint);
    tcase_add_test(tc, test_polyline_dashed);
    tcase_add_test(tc, test_stroke_odd);
    tcase_add_test(tc, test_markers);
    tcase_add_test(tc, test_text_box);
    tcase_add_test(tc, test_text_unprintable);
    suite_add_tcase(s, tc);
    tc = tcase_create("ticks");
    tcase_add_loop_test(tc, test_nice_ticks, 0,
                        (int)(sizeof tick_cases / sizeof tick_cases[0]));
    tcase_add_test(tc, test_nice_ticks_extremes);
    tcase_add_loop_test(tc, test_tick_label, 0,
                        (int)(sizeof label_cases / sizeof label_cases[0]));
    tcase_add_test(tc, test_tick_label_odd);
    suite_add_tcase(s, tc);
    tc = tcase_create("curves");
    tcase_add_test(tc, test_curves_panels);
    tcase_add_test(tc, test_curves_one_epoch);
    tcase_add_test(tc, test_curves_constant);
    tcase_add_test(tc, test_curves_missing_and_odd);
    suite_add_tcase(s, tc);
    tc = tcase_create("png");
    tcase_add_test(tc, test_curves_png);
    tcase_add_test(tc, test_curves_png_errors);
    tcase_add_test(tc, test_curves_alloc_failure);
    suite_add_tcase(s, tc);
    return s;
}
