/*
 * grid.h - pictures of many small images for `nabla visualize` and
 * `nabla ascend`: gray tiles (kernels, channels of an activation) or
 * colour ones (the kernels of a layer reading an RGB image, the image
 * itself) laid out in rows and columns on one image, each shown on its own
 * range and magnified with nearest neighbour so that a 3x3 kernel is
 * visible.
 */
#ifndef NABLA_GRID_H
#define NABLA_GRID_H

#include <nabla.h>

#include <stdbool.h>
#include <stdint.h>

/* The lines between and around the tiles: width in pixels, and a blue
 * that no gray tile holds, so that the grid shows even between tiles of
 * noise. */
#define GRID_BORDER 1
#define GRID_BORDER_R 0.2
#define GRID_BORDER_G 0.4
#define GRID_BORDER_B 0.9
/* The largest side of a picture, in pixels. */
#define GRID_MAX_SIDE 16384

typedef struct grid {
    int rows, cols;
    int64_t h, w;   /* a tile's size before magnifying */
    int zoom;       /* pixels per value, on each side */
    nb_tensor *img; /* persistent f64 RGB [3, height, width] */
} grid;

/* The pixels along one side of n tiles of `side` values each: n side zoom
 * plus n + 1 border lines. */
int64_t grid_side(int n, int64_t side, int zoom);

/* Makes g's picture, all border blue.  Returns NB_ERR_ARG when a side
 * would pass GRID_MAX_SIDE (without a message: the caller names what it
 * draws), or the status of a failed nb_tensor_new. */
int grid_new(nb_ctx *ctx, grid *g, int rows, int cols, int64_t h, int64_t w, int zoom);
void grid_free(grid *g);

/* Draws the tile at row r, column c from g->h * g->w values of t, from its
 * flat index `offset` on, row-major: min..max maps to 0..1 (a constant tile
 * is black). */
void grid_put(grid *g, int r, int c, const nb_tensor *t, int64_t offset);

/* Draws a colour tile at row r, column c from three planes of g->h * g->w
 * values of t, R from flat index `offset`, G from offset + stride and B
 * from offset + 2 stride, row-major.  With scale, one min..max over the
 * three planes maps to 0..1 (a constant tile is black), so the tile keeps
 * the balance of its colours; without, the values are drawn as they are,
 * clamped to [0, 1] (an image). */
void grid_put_rgb(grid *g, int r, int c, const nb_tensor *t, int64_t offset, int64_t stride,
                  bool scale);

/* The columns of a near-square grid of n tiles: the fewest from
 * ceil(sqrt(n)) on that fill whole rows, no more than twice the rows (32
 * tiles: 8 x 4), else ceil(sqrt(n)) (7 tiles: 3 x 3). */
int grid_columns(int n);

/* The smallest zoom (1 or more) that makes `side` values at least min_px
 * pixels. */
int grid_zoom(int64_t side, int min_px);

/* Sets *out to a new persistent f64 [C, H zoom, W zoom] copy of img
 * [C, H, W] (or of the first image of a batch [N, C, H, W]), each value a
 * zoom x zoom block, the values kept as they are.  Returns as grid_new. */
int grid_upscale(nb_ctx *ctx, const nb_tensor *img, int zoom, nb_tensor **out);

#endif /* NABLA_GRID_H */
