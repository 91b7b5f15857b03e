/*
 * dataset.c - image data sets in memory: the arrays a reader filled
 * (nbi_dataset_adopt: datafiles.c, cifar.c, npz.c) or the caller's
 * (nb_dataset_from), and the batches drawn from them.  Examples stay as
 * they were read, uint8 (or float from an .npz), [C, H, W], and are
 * converted to the batch's type, channels and normalisation only when a
 * batch is drawn.
 */
#include "io/dataset.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

struct nb_dataset {
    nb_ctx *ctx;
    int64_t n, c, h, w; /* n examples of [c, h, w] */
    uint8_t *pixels;    /* n c h w, or NULL when the examples are values */
    float *values;      /* n c h w float examples (an .npz's), or NULL */
    int32_t *labels;    /* n */
    int nclasses;       /* 1 + the largest label, or the names' count */
    char **names;       /* nnames class names; NULL for IDX */
    int nnames;
    int64_t nval;       /* the last nval examples are the data's own validation */
    char *origin;       /* where it came from, for messages */
};

/* ---- data sets ----------------------------------------------------------- */

static nb_dataset *dataset_new(nb_ctx *ctx)
{
    nb_dataset *ds = nbi_alloc(ctx, sizeof *ds);
    if (ds) {
        memset(ds, 0, sizeof *ds);
        ds->ctx = ctx;
    }
    return ds;
}

void nb_dataset_free(nb_dataset *ds)
{
    if (!ds)
        return;
    nb_ctx *ctx = ds->ctx;
    if (ds->names)
        for (int i = 0; i < ds->nnames; i++)
            nbi_free(ctx, ds->names[i]);
    nbi_free(ctx, ds->names);
    nbi_free(ctx, ds->origin);
    nbi_free(ctx, ds->pixels);
    nbi_free(ctx, ds->values);
    nbi_free(ctx, ds->labels);
    nbi_free(ctx, ds);
}

/* Keeps a copy of where ds came from; false when out of memory. */
static bool set_origin(nb_dataset *ds, const char *origin)
{
    size_t n = strlen(origin) + 1;
    char *copy = nbi_alloc(ds->ctx, n);
    if (!copy)
        return false;
    memcpy(copy, origin, n);
    nbi_free(ds->ctx, ds->origin);
    ds->origin = copy;
    return true;
}

int nbi_dataset_set_origin(nb_dataset *ds, const char *origin)
{
    return set_origin(ds, origin) ? NB_OK : NB_ERR_NOMEM;
}

/* ---- data sets in memory ------------------------------------------------------ */

/* The size checks of a data set of n examples [c, h, w]; what names the
 * caller goes first in the message. */
static int check_size(nb_ctx *ctx, const char *who, int64_t n, int64_t c, int64_t h, int64_t w)
{
    if (n < 1 || c < 1 || c > NB_MAX_CHANNELS || h < 1 || w < 1)
        return nbi_fail(ctx, NB_ERR_ARG, "%s: %" PRId64 " images of [%" PRId64 ", %" PRId64
                        ", %" PRId64 "] (at least 1, of 1 to %d channels)", who, n, c, h, w,
                        NB_MAX_CHANNELS);
    if ((uint64_t)h > NBI_MAX_IMAGE_PIXELS || (uint64_t)w > NBI_MAX_IMAGE_PIXELS ||
        (uint64_t)h * (uint64_t)w > NBI_MAX_IMAGE_PIXELS)
        return nbi_fail(ctx, NB_ERR_ARG, "%s: images of %" PRId64 "x%" PRId64
                        " pixels are too large (at most 2^24 pixels)", who, h, w);
    if ((uint64_t)n > SIZE_MAX / 8 / (uint64_t)(c * h * w))
        return nbi_fail(ctx, NB_ERR_NOMEM, "%s: %" PRId64 " images do not fit in memory", who, n);
    return NB_OK;
}

static int check_labels(nb_ctx *ctx, const char *who, int64_t n, const int32_t *labels)
{
    for (int64_t i = 0; i < n; i++)
        if (labels[i] < 0 || labels[i] == INT32_MAX) /* the class count is an int */
            return nbi_fail(ctx, NB_ERR_ARG, "%s: labels[%" PRId64 "] = %" PRId32
                            " is not a label (0 to 2^31 - 2)", who, i, labels[i]);
    return NB_OK;
}

static void count_classes(nb_dataset *ds)
{
    ds->nclasses = ds->nnames;
    for (int64_t i = 0; i < ds->n; i++)
        if (ds->labels[i] >= ds->nclasses)
            ds->nclasses = ds->labels[i] + 1;
}

nb_dataset *nb_dataset_from(nb_ctx *ctx, int64_t n, int64_t c, int64_t h, int64_t w,
                            const uint8_t *images, const int32_t *labels)
{
    if (check_size(ctx, "dataset_from", n, c, h, w) != NB_OK)
        return NULL;
    if (!images || !labels)
        return nbi_fail_null(ctx, NB_ERR_ARG, "dataset_from: %s is NULL",
                             images ? "labels" : "images");
    if (check_labels(ctx, "dataset_from", n, labels) != NB_OK)
        return NULL;
    size_t bytes = (size_t)(n * c * h * w);
    uint8_t *pixels = nbi_alloc(ctx, bytes);
    int32_t *copy = nbi_alloc(ctx, (size_t)n * sizeof *copy);
    if (!pixels || !copy) {
        nbi_free(ctx, pixels);
        nbi_free(ctx, copy);
        return NULL;
    }
    memcpy(pixels, images, bytes);
    memcpy(copy, labels, (size_t)n * sizeof *copy);
    return nbi_dataset_adopt(ctx, n, c, h, w, pixels, NULL, copy, NULL, 0, "memory");
}

nb_dataset *nbi_dataset_adopt(nb_ctx *ctx, int64_t n, int64_t c, int64_t h, int64_t w,
                              uint8_t *pixels, float *values, int32_t *labels, char **names,
                              int nnames, const char *origin)
{
    nb_dataset *ds = NULL;
    int rc = check_size(ctx, origin, n, c, h, w);
    if (rc == NB_OK && (!pixels == !values || !labels || nnames < 0 || (!names && nnames)))
        rc = nbi_fail(ctx, NB_ERR_ARG, "%s: a data set needs labels and either pixels or values",
                      origin);
    if (rc == NB_OK)
        rc = check_labels(ctx, origin, n, labels);
    for (int64_t i = 0; rc == NB_OK && values && i < n * c * h * w; i++)
        if (!isfinite(values[i]))
            rc = nbi_fail(ctx, NB_ERR_ARG, "%s: value %" PRId64 " of image %" PRId64 " is %g",
                          origin, i % (c * h * w), i / (c * h * w), (double)values[i]);
    if (rc == NB_OK && (ds = dataset_new(ctx)) && set_origin(ds, origin)) {
        ds->n = n, ds->c = c, ds->h = h, ds->w = w;
        ds->pixels = pixels;
        ds->values = values;
        ds->labels = labels;
        ds->names = names;
        ds->nnames = nnames;
        count_classes(ds);
        return ds;
    }
    nb_dataset_free(ds);
    nbi_free(ctx, pixels);
    nbi_free(ctx, values);
    nbi_free(ctx, labels);
    for (int i = 0; names && i < nnames; i++)
        nbi_free(ctx, names[i]);
    nbi_free(ctx, names);
    return NULL;
}

void nbi_dataset_set_validation(nb_dataset *ds, int64_t nval)
{
    if (ds && nval >= 0 && nval < ds->n)
        ds->nval = nval;
}

/* ---- access ---------------------------------------------------------------- */

const char *nb_dataset_origin(const nb_dataset *ds)
{
    return ds && ds->origin ? ds->origin : "";
}

int64_t nb_dataset_size(const nb_dataset *ds)
{
    return ds ? ds->n : 0;
}

int nb_dataset_shape(const nb_dataset *ds, int64_t *shape)
{
    shape[0] = ds ? ds->c : 0;
    shape[1] = ds ? ds->h : 0;
    shape[2] = ds ? ds->w : 0;
    return 3;
}

int nb_dataset_num_classes(const nb_dataset *ds)
{
    return ds ? ds->nclasses : 0;
}

const char *nb_dataset_class_name(const nb_dataset *ds, int label)
{
    if (!ds || !ds->names || label < 0 || label >= ds->nnames)
        return NULL;
    return ds->names[label];
}

const uint8_t *nb_dataset_image(const nb_dataset *ds, int64_t i)
{
    if (!ds || !ds->pixels || i < 0 || i >= ds->n)
        return NULL;
    return ds->pixels + i * ds->c * ds->h * ds->w;
}

const float *nb_dataset_values(const nb_dataset *ds, int64_t i)
{
    if (!ds || !ds->values || i < 0 || i >= ds->n)
        return NULL;
    return ds->values + i * ds->c * ds->h * ds->w;
}

int64_t nb_dataset_validation(const nb_dataset *ds)
{
    return ds ? ds->nval : 0;
}

int32_t nb_dataset_label(const nb_dataset *ds, int64_t i)
{
    if (!ds || i < 0 || i >= ds->n)
        return -1;
    return ds->labels[i];
}

int64_t nb_dataset_select(const nb_dataset *ds, int n, const int32_t *classes, int64_t *idx)
{
    if (!ds || n <= 0 || !classes || !idx)
        return 0;
    int64_t m = 0;
    for (int64_t i = 0; i < ds->n; i++) {
        for (int k = 0; k < n; k++) {
            if (ds->labels[i] == classes[k]) {
                idx[m++] = i;
                break;
            }
        }
    }
    return m;
}

void nb_shuffle(int64_t *idx, int64_t n, nb_rng *rng)
{
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)nb_rng_below(rng, (uint64_t)i + 1);
        int64_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

/* ---- batches ---------------------------------------------------------------
 * A batch's examples have the data's channels, or 1 (the mean of the
 * data's), or 3 from gray data (the one repeated).  uint8 pixels go
 * through a table per channel of their 256 results: (p / 255 - mean) / std;
 * a gray pixel from colour is the mean of its channels' scaled values. */

/* What an example of x holds per channel, or 0 when no count fits. */
static int64_t batch_channels(const nb_dataset *ds, int64_t per)
{
    int64_t plane = ds->h * ds->w;
    if (per == ds->c * plane)
        return ds->c;
    if (per == plane)
        return 1;
    if (per == 3 * plane && ds->c == 1)
        return 3;
    return 0;
}

#define BATCH_FILL(T)                                                                       \
    do {                                                                                    \
        T *dst = x->data;                                                                   \
        for (int64_t k = 0; k < n; k++, dst += cx * plane) {                               \
            const int64_t at = idx[k] * ds->c * plane;                                      \
            for (int64_t oc = 0; oc < cx; oc++) {                                           \
                T *out = dst + oc * plane;                                                  \
                /* The data's channels this one is made of: its own, all of them (gray      \
                 * from colour) or the one (colour from gray). */                           \
                int64_t c0 = cx == ds->c ? oc : 0, nc = cx == 1 ? ds->c : 1;                \
                double scale = 1.0 / (double)nc, m = mean ? mean[oc] : 0;                   \
                double inv = std ? 1.0 / std[oc] : 1.0;                                     \
                for (int64_t j = 0; j < plane; j++) {                                       \
                    double v = 0;                                                           \
                    for (int64_t c = c0; c < c0 + nc; c++)                                  \
                        v += ds->pixels ? ds->pixels[at + c * plane + j] / 255.0            \
                                        : (double)ds->values[at + c * plane + j];           \
                    out[j] = (T)((v * scale - m) * inv);                                    \
                }                                                                           \
            }                                                                               \
        }                                                                                   \
    } while (0)

/* The fast case: uint8 pixels into as many channels, through tables. */
#define BATCH_FILL_LUT(T)                                                                   \
    do {                                                                                    \
        T lut[NB_MAX_CHANNELS][256];                                                        \
        for (int64_t c = 0; c < cx; c++)                                                    \
            for (int p = 0; p < 256; p++) {                                                 \
                double v = p / 255.0;                                                       \
                lut[c][p] = (T)(std ? (v - mean[c]) / std[c] : v);                          \
            }                                                                               \
        T *dst = x->data;                                                                   \
        for (int64_t k = 0; k < n; k++) {                                                   \
            const uint8_t *src = ds->pixels + idx[k] * cx * plane;                          \
            for (int64_t c = 0; c < cx; c++, dst += plane, src += plane)                   \
                for (int64_t j = 0; j < plane; j++)                                         \
                    dst[j] = lut[c][src[j]];                                                \
        }                                                                                   \
    } while (0)

int nb_dataset_batch(const nb_dataset *ds, const int64_t *idx, int64_t n, nb_tensor *x,
                     int32_t *labels, const double *mean, const double *std)
{
    if (!ds)
        return x ? nbi_fail(x->ctx_, NB_ERR_ARG, "dataset_batch: the data set is NULL") : NB_ERR_ARG;
    nb_ctx *ctx = ds->ctx;
    if (!x)
        return nbi_fail(ctx, NB_ERR_ARG, "dataset_batch: x is NULL");
    if (n < 1 || !idx)
        return nbi_fail(ctx, NB_ERR_ARG, "dataset_batch: %" PRId64 " examples%s", n,
                        idx ? " (at least 1 needed)" : " and idx is NULL");
    int64_t plane = ds->h * ds->w, per = x->numel / n;
    int64_t cx = x->numel % n == 0 ? batch_channels(ds, per) : 0;
    if (!cx) {
        char shape[64];
        return nbi_fail(ctx, NB_ERR_ARG,
                        "dataset_batch: x of shape %s holds %" PRId64 " values, but %" PRId64
                        " examples of [%" PRId64 ", %" PRId64 ", %" PRId64 "] need %" PRId64
                        "%s", nb_shape_str(x, shape, sizeof shape), x->numel, n, ds->c, ds->h,
                        ds->w, n > INT64_MAX / (ds->c * plane) ? INT64_MAX : n * ds->c * plane,
                        ds->c == 1 ? " (or 3 times that, in colour)" : " (or a third, in gray)");
    }
    if (!std)
        mean = NULL;
    for (int64_t c = 0; std && c < cx; c++)
        if (!(std[c] > 0) || !isfinite(std[c]) || !isfinite(mean ? mean[c] : 0))
            return nbi_fail(ctx, NB_ERR_ARG, "dataset_batch: channel %" PRId64 "'s mean %g and "
                            "std %g (std must be > 0, both finite)", c, mean ? mean[c] : 0, std[c]);
    for (int64_t k = 0; k < n; k++)
        if (idx[k] < 0 || idx[k] >= ds->n)
            return nbi_fail(ctx, NB_ERR_ARG,
                            "dataset_batch: idx[%" PRId64 "] = %" PRId64 " is out of range (%" PRId64
                            " examples)", k, idx[k], ds->n);
    static const double zeros[NB_MAX_CHANNELS];
    if (std && !mean)
        mean = zeros;
    bool by_table = ds->pixels && cx == ds->c;
    if (x->dtype == NB_F32) {
        if (by_table)
            BATCH_FILL_LUT(float);
        else
            BATCH_FILL(float);
    } else if (by_table) {
        BATCH_FILL_LUT(double);
    } else {
        BATCH_FILL(double);
    }
    if (labels)
        for (int64_t k = 0; k < n; k++)
            labels[k] = ds->labels[idx[k]];
    return NB_OK;
}
