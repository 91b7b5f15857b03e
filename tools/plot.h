/*
 * plot.h - training curves as a PNG: `nabla train` draws its curves.png
 * with it.  Two panels side by side, loss and accuracy per epoch, each
 * with its grid, ticks, labels and legend, in the manner of matplotlib's
 * defaults.
 *
 * Everything is drawn into a canvas: the planes of an RGB float tensor
 * [3, H, W] in [0, 1], which nb_png_write() then writes.  The drawing
 * functions below are pure: they touch only the canvas, allocate nothing
 * and never fail; coordinates are in pixels, (0, 0) the centre of the top
 * left pixel, and anything outside the canvas is clipped.  Colours are
 * 0xRRGGBB.
 */
#ifndef NABLA_TOOLS_PLOT_H
#define NABLA_TOOLS_PLOT_H

#include <nabla.h>

#include <stdbool.h>
#include <stddef.h>

/* The size of plot_curves' image. */
#define PLOT_WIDTH 1000
#define PLOT_HEIGHT 420

/* Matplotlib's first two colours: training and validation. */
#define PLOT_BLUE 0x1f77b4u
#define PLOT_ORANGE 0xff7f0eu

/* One curve: y[i] is the value at epoch i + 1; NaN (or an infinity) is a
 * missing point, which breaks the line.  A series with y NULL, n <= 0 or
 * no finite value is left out, legend included.  A dashed series also
 * gets square markers instead of round ones, so it stays apart from a
 * solid one in gray print too. */
typedef struct plot_series {
    const char *label; /* for the legend; NULL for none */
    const double *y;
    int n;
    unsigned rgb;
    bool dashed;
} plot_series;

/* Draws the loss series (left panel) and the accuracy series (right panel)
 * under `title` (NULL for none) into a new PLOT_WIDTH x PLOT_HEIGHT image
 * and writes it to `path` as a PNG.  With no accuracy series (nacc 0) the
 * loss panel takes the whole width.  Returns NB_OK, or the status of the
 * failed allocation or write, its message in ctx. */
int plot_curves(nb_ctx *ctx, const char *path, const char *title,
                const plot_series *loss, int nloss, const plot_series *acc,
                int nacc);

/* ---- the canvas ---------------------------------------------------------- */

typedef struct plot_canvas {
    float *px; /* three planes (R, G, B) of h rows of w */
    int w, h;
} plot_canvas;

/* A new white canvas of w x h pixels: returns its persistent tensor
 * [3, h, w] (free it with nb_tensor_free), and fills *cv.  NULL on error,
 * the message in ctx. */
nb_tensor *plot_canvas_new(nb_ctx *ctx, int w, int h, plot_canvas *cv);

/* The colour of a pixel, each channel rounded to 8 bits; 0 outside. */
unsigned plot_pixel(const plot_canvas *cv, int x, int y);

/* Mixes rgb into a pixel with weight alpha in [0, 1]. */
void plot_blend(plot_canvas *cv, int x, int y, unsigned rgb, double alpha);

/* Fills the pixels x0..x1, y0..y1 (inclusive) with rgb at weight alpha. */
void plot_fill_rect(plot_canvas *cv, int x0, int y0, int x1, int y1,
                    unsigned rgb, double alpha);

/* An anti-aliased line `width` pixels wide with round ends.  A width of 1
 * on integer coordinates along a row or a column is exactly one pixel
 * wide: the pixels from (x0, y) to (x1, y) inclusive take the colour. */
void plot_line(plot_canvas *cv, double x0, double y0, double x1, double y1,
               double width, unsigned rgb);

/* Joins the points (x[i], y[i]) with a line (none if x or y is NULL); a
 * non-finite coordinate breaks it.  Joints are drawn once, so they are not
 * darker.  Dashes are 5 px of the path every 11, plus their round ends. */
void plot_polyline(plot_canvas *cv, const double *x, const double *y, int n,
                   double width, unsigned rgb, bool dashed);

/* A filled marker of radius r centred on (x, y): a disc, or a square. */
void plot_marker(plot_canvas *cv, double x, double y, double r, bool square,
                 unsigned rgb);

/* ---- text ----------------------------------------------------------------
 * The font of font.h: 5 x 9 glyphs on a 6-pixel advance, each pixel drawn
 * as a scale x scale block.  Bytes outside printable ASCII show as '?'. */

/* Draws s with its box's top left corner at (x, y); the box is
 * plot_text_width(s, scale) wide and PLOT_TEXT_H * scale high, and glyphs
 * other than descenders end PLOT_TEXT_ASCENT * scale rows below y.
 * Returns the width. */
int plot_text(plot_canvas *cv, int x, int y, const char *s, int scale,
              unsigned rgb);
int plot_text_width(const char *s, int scale);
#define PLOT_TEXT_H 9
#define PLOT_TEXT_ASCENT 7

/* ---- axes -----------------------------------------------------------------
 * "Nice" ticks: multiples of 1, 2 or 5 times a power of ten. */

/* The ticks of an axis covering [lo, hi]: the smallest nice step giving
 * at most max_ticks ticks (2..50), the first tick at or below lo and the
 * last at or above hi.  Sets *first and *step and returns the number of
 * ticks, so [0.31, 0.92] with 8 gives 0.3, 0.4, ..., 1.0.  An empty range
 * (lo == hi) is widened around its value; NaN or infinite bounds give the
 * ticks of [0, 1]. */
int plot_nice_ticks(double lo, double hi, int max_ticks, double *first,
                    double *step);

/* The label of tick v on an axis of ticks `step` apart: as many decimals
 * as the step needs ("0.3", "1.0", "0.25", "20"), or a short exponent form
 * for very large or small values ("2.5e6", "3e-5").  Returns buf. */
char *plot_tick_label(double v, double step, char *buf, size_t size);

/* Draws plot_curves' picture into a canvas of any size (the layout is
 * made for PLOT_WIDTH x PLOT_HEIGHT). */
void plot_draw_curves(plot_canvas *cv, const char *title,
                      const plot_series *loss, int nloss,
                      const plot_series *acc, int nacc);

#endif /* NABLA_TOOLS_PLOT_H */
