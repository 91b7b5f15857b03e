/*
 * grid.c - tiles on one picture, gray or colour, each on its own range,
 * magnified with nearest neighbour (see grid.h).
 */
#include "grid.h"

#include <math.h>
#include <stddef.h>

int64_t grid_side(int n, int64_t side, int zoom)
{
    return (int64_t)n * side * zoom + (int64_t)(n + 1) * GRID_BORDER;
}

/* Sizes too large for GRID_MAX_SIDE are refused before any product of
 * them can overflow. */
static bool side_ok(int n, int64_t side, int zoom)
{
    return n >= 1 && side >= 1 && zoom >= 1 && n <= GRID_MAX_SIDE && side <= GRID_MAX_SIDE &&
           zoom <= GRID_MAX_SIDE && grid_side(n, side, zoom) <= GRID_MAX_SIDE;
}

int grid_new(nb_ctx *ctx, grid *g, int rows, int cols, int64_t h, int64_t w, int zoom)
{
    *g = (grid){.rows = rows, .cols = cols, .h = h, .w = w, .zoom = zoom};
    if (!side_ok(rows, h, zoom) || !side_ok(cols, w, zoom))
        return NB_ERR_ARG;
    const int64_t shape[3] = {3, grid_side(rows, h, zoom), grid_side(cols, w, zoom)};
    if (!(g->img = nb_tensor_new(ctx, NB_F64, 3, shape)))
        return nb_error(ctx);
    const double rgb[3] = {GRID_BORDER_R, GRID_BORDER_G, GRID_BORDER_B};
    const int64_t plane = shape[1] * shape[2];
    double *px = g->img->data;
    for (int k = 0; k < 3; k++)
        for (int64_t i = 0; i < plane; i++)
            px[k * plane + i] = rgb[k];
    return NB_OK;
}

void grid_free(grid *g)
{
    nb_tensor_free(g->img);
    g->img = NULL;
}

void grid_put(grid *g, int r, int c, const nb_tensor *t, int64_t offset)
{
    const int64_t n = g->h * g->w, width = g->img->shape[2];
    const int64_t plane = g->img->shape[1] * width;
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        double v = nb_get(t, offset + i);
        lo = fmin(lo, v);
        hi = fmax(hi, v);
    }
    const double range = hi - lo;
    double *px = g->img->data;
    const int64_t top = GRID_BORDER + r * (g->h * g->zoom + GRID_BORDER);
    const int64_t left = GRID_BORDER + c * (g->w * g->zoom + GRID_BORDER);
    for (int64_t y = 0; y < g->h * g->zoom; y++)
        for (int64_t x = 0; x < g->w * g->zoom; x++) {
            double v = nb_get(t, offset + (y / g->zoom) * g->w + x / g->zoom);
            double *p = px + (top + y) * width + left + x;
            p[0] = p[plane] = p[2 * plane] = range > 0 ? (v - lo) / range : 0;
        }
}

void grid_put_rgb(grid *g, int r, int c, const nb_tensor *t, int64_t offset, int64_t stride,
                  bool scale)
{
    const int64_t n = g->h * g->w, width = g->img->shape[2];
    const int64_t plane = g->img->shape[1] * width;
    double lo = 0, range = 1;
    if (scale) {
        double min = INFINITY, max = -INFINITY;
        for (int k = 0; k < 3; k++)
            for (int64_t i = 0; i < n; i++) {
                double v = nb_get(t, offset + k * stride + i);
                min = fmin(min, v);
                max = fmax(max, v);
            }
        lo = min;
        range = max - min;
    }
    double *px = g->img->data;
    const int64_t top = GRID_BORDER + r * (g->h * g->zoom + GRID_BORDER);
    const int64_t left = GRID_BORDER + c * (g->w * g->zoom + GRID_BORDER);
    for (int64_t y = 0; y < g->h * g->zoom; y++)
        for (int64_t x = 0; x < g->w * g->zoom; x++) {
            const int64_t at = offset + (y / g->zoom) * g->w + x / g->zoom;
            double *p = px + (top + y) * width + left + x;
            for (int k = 0; k < 3; k++) {
                double v = nb_get(t, at + k * stride);
                v = !(range > 0) ? 0 : scale ? (v - lo) / range : v < 0 ? 0 : v > 1 ? 1 : v;
                p[k * plane] = v;
            }
        }
}

int grid_columns(int n)
{
    int c = 1;
    while (c * c < n)
        c++;
    /* A full rectangle, when one is at most twice as wide as tall. */
    for (int k = c; k <= 2 * c; k++)
        if (n % k == 0 && k <= 2 * (n / k))
            return k;
    return c;
}

int grid_zoom(int64_t side, int min_px)
{
    if (side <= 0 || side >= min_px)
        return 1;
    return (int)((min_px + side - 1) / side);
}

int grid_upscale(nb_ctx *ctx, const nb_tensor *img, int zoom, nb_tensor **out)
{
    *out = NULL;
    if (img->ndim < 3)
        return NB_ERR_ARG;
    const int64_t c = img->shape[img->ndim - 3], h = img->shape[img->ndim - 2],
                  w = img->shape[img->ndim - 1];
    if (zoom < 1 || zoom > GRID_MAX_SIDE || h > GRID_MAX_SIDE / zoom || w > GRID_MAX_SIDE / zoom)
        return NB_ERR_ARG;
    const int64_t shape[3] = {c, h * zoom, w * zoom};
    nb_tensor *big = nb_tensor_new(ctx, NB_F64, 3, shape);
    if (!big)
        return nb_error(ctx);
    double *px = big->data;
    for (int64_t k = 0; k < c; k++)
        for (int64_t y = 0; y < h * zoom; y++)
            for (int64_t x = 0; x < w * zoom; x++)
                px[(k * h * zoom + y) * w * zoom + x] =
                    nb_get(img, (k * h + y / zoom) * w + x / zoom);
    *out = big;
    return NB_OK;
}
