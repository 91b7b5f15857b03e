/*
 * augment.c - seeded data augmentation of a batch, in place: random crops
 * of the image padded with black, random shifts that repeat the edge, and
 * horizontal flips.  Each example's draws come from its own generator,
 * seeded by the caller's seed and the example's place in the epoch, so a
 * batch split over processes, or resumed, draws the same.
 *
 * A shift by (dy, dx) reads out(y, x) = in(y + dy, x + dx): in place, rows
 * and pixels are visited in the order that reads each before it is
 * overwritten (ascending for a shift forward, descending for one back).
 * A crop of the image padded by p at offset (oy, ox) in [0, 2p] is the
 * shift (oy - p, ox - p) with black outside.
 */
#include "internal.h"

#include <inttypes.h>
#include <math.h>

#define AUGMENT_KERNEL(T)                                                                   \
    /* Shifts plane [h, w] by (dy, dx); outside it, `fill` (edge false) or the nearest      \
     * edge pixel (edge true). */                                                           \
    static void shift_##T(T *p, int64_t h, int64_t w, int64_t dy, int64_t dx, bool edge,    \
                          T fill)                                                           \
    {                                                                                       \
        for (int64_t i = 0; i < h; i++) {                                                   \
            int64_t y = dy >= 0 ? i : h - 1 - i, sy = y + dy;                               \
            T *out = p + y * w;                                                             \
            if (!edge && (sy < 0 || sy >= h)) {                                             \
                for (int64_t x = 0; x < w; x++)                                             \
                    out[x] = fill;                                                          \
                continue;                                                                   \
            }                                                                               \
            const T *in = p + (sy < 0 ? 0 : sy >= h ? h - 1 : sy) * w;                      \
            for (int64_t j = 0; j < w; j++) {                                               \
                int64_t x = dx >= 0 ? j : w - 1 - j, sx = x + dx;                           \
                if (sx >= 0 && sx < w)                                                      \
                    out[x] = in[sx];                                                        \
                else                                                                        \
                    out[x] = edge ? in[sx < 0 ? 0 : w - 1] : fill;                          \
            }                                                                               \
        }                                                                                   \
    }                                                                                       \
                                                                                            \
    static void flip_##T(T *p, int64_t h, int64_t w)                                        \
    {                                                                                       \
        for (int64_t y = 0; y < h; y++)                                                     \
            for (int64_t a = y * w, b = a + w - 1; a < b; a++, b--) {                       \
                T t = p[a];                                                                 \
                p[a] = p[b];                                                                \
                p[b] = t;                                                                   \
            }                                                                               \
    }

AUGMENT_KERNEL(float)
AUGMENT_KERNEL(double)

int nb_augment_batch(nb_tensor *x, int64_t h, int64_t w, const nb_augment *aug, uint64_t seed,
                     int64_t first, const double *black)
{
    if (!x || !aug)
        return NB_ERR_ARG;
    nb_ctx *ctx = x->ctx_;
    int64_t n = x->ndim ? x->shape[0] : 0, plane = h * w;
    if (n < 1 || h < 1 || w < 1 || x->numel % (n * plane) != 0 ||
        x->numel / (n * plane) > NB_MAX_CHANNELS)
        return nbi_fail(ctx, NB_ERR_ARG, "augment_batch: %" PRId64 " values for %" PRId64
                        " examples of [C, %" PRId64 ", %" PRId64 "] images", x->numel, n, h, w);
    if (aug->crop_padding < 0 || aug->translate < 0 || !(aug->hflip >= 0 && aug->hflip <= 1))
        return nbi_fail(ctx, NB_ERR_ARG, "augment_batch: crop padding %d, translate %d, hflip %g "
                        "(padding and shifts >= 0, the flip's probability in [0, 1])",
                        aug->crop_padding, aug->translate, aug->hflip);
    if (x->dtype != NB_F32 && x->dtype != NB_F64)
        return nbi_fail(ctx, NB_ERR_ARG, "augment_batch: x must be f32 or f64");
    int64_t c = x->numel / (n * plane);
    int64_t reach = aug->crop_padding ? aug->crop_padding : aug->translate;
    bool edge = !aug->crop_padding;
    for (int64_t k = 0; k < n; k++) {
        nb_rng r;
        nb_rng_seed(&r, seed ^ ((uint64_t)(first + k) * UINT64_C(0x9e3779b97f4a7c15)));
        int64_t dy = 0, dx = 0;
        if (reach) {
            dy = (int64_t)nb_rng_below(&r, (uint64_t)(2 * reach + 1)) - reach;
            dx = (int64_t)nb_rng_below(&r, (uint64_t)(2 * reach + 1)) - reach;
        }
        bool flip = aug->hflip > 0 && nb_rng_uniform(&r) < aug->hflip;
        for (int64_t ch = 0; ch < c; ch++) {
            double fill = black ? black[ch] : 0;
            if (x->dtype == NB_F32) {
                float *p = (float *)x->data + (k * c + ch) * plane;
                if (dy || dx)
                    shift_float(p, h, w, dy, dx, edge, (float)fill);
                if (flip)
                    flip_float(p, h, w);
            } else {
                double *p = (double *)x->data + (k * c + ch) * plane;
                if (dy || dx)
                    shift_double(p, h, w, dy, dx, edge, fill);
                if (flip)
                    flip_double(p, h, w);
            }
        }
    }
    return NB_OK;
}
