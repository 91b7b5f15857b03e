/*
 * image.c - PNG files and image resizing.  libpng is confined to this file:
 * its memory goes through the context's allocator, its errors come back
 * through setjmp as one-line messages, and its warnings are dropped (the
 * library never prints).
 */
#include "internal.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>

/* Images larger than this are refused before anything is allocated. */
#define MAX_PIXELS ((uint64_t)1 << 28)
/* Deflate never expands more than 1032 to 1, so a file of n bytes holds at
 * most about 1032 n bytes of pixels: a header claiming more is a lie, caught
 * before the rows are allocated. */
#define MAX_DEFLATE_RATIO 1032
/* Larger files are not read into memory. */
#define MAX_FILE_BYTES ((size_t)1 << 31)

/* What libpng's callbacks share with the code that called libpng. */
typedef struct png_io {
    nb_ctx *ctx;
    const char *origin;
    const uint8_t *buf; /* reading: the whole file */
    size_t len, pos;
    FILE *f;            /* writing */
    int write_errno;    /* why a write failed, 0 if none did */
    bool nomem;         /* an allocation failed */
    bool truncated;     /* a read went past the end of buf */
    bool own;           /* the context already holds the error to report */
    char msg[200];      /* libpng's error message */
    char warning[200];  /* its last warning: an error may only sum it up */
} png_io;

/* ---- libpng's callbacks ------------------------------------------------ */

/* Through the context's hook, counted, but without setting the context's
 * error: libpng survives some failures (it drops an ancillary chunk), and a
 * read that succeeds must not leave an error behind. */
static png_voidp io_alloc(png_structp png, png_alloc_size_t size)
{
    png_io *io = png_get_mem_ptr(png);
    nb_ctx *ctx = io->ctx;
    void *p = ctx->alloc.alloc(ctx->alloc.ud, size ? size : 1);
    ctx->nalloc++;
    if (!p)
        io->nomem = true;
    return p;
}

static void io_free(png_structp png, png_voidp p)
{
    png_io *io = png_get_mem_ptr(png);
    nbi_free(io->ctx, p);
}

static void io_error(png_structp png, png_const_charp msg)
{
    png_io *io = png_get_error_ptr(png);
    snprintf(io->msg, sizeof io->msg, "%s", msg);
    png_longjmp(png, 1);
}

/* Kept, not printed: "Invalid IHDR data" is explained by the warning
 * before it ("Image width is zero in IHDR"). */
static void io_warning(png_structp png, png_const_charp msg)
{
    png_io *io = png_get_error_ptr(png);
    snprintf(io->warning, sizeof io->warning, "%s", msg);
}

static void io_read(png_structp png, png_bytep out, size_t n)
{
    png_io *io = png_get_io_ptr(png);
    if (n > io->len - io->pos) {
        io->truncated = true;
        png_error(png, "truncated");
    }
    memcpy(out, io->buf + io->pos, n);
    io->pos += n;
}

static void io_write(png_structp png, png_bytep data, size_t n)
{
    png_io *io = png_get_io_ptr(png);
    if (fwrite(data, 1, n, io->f) != n) {
        io->write_errno = errno ? errno : EIO;
        png_error(png, "write error");
    }
}

static void io_flush(png_structp png)
{
    (void)png;
}

/* Records the error a longjmp out of libpng stands for. */
static void report(png_io *io)
{
    if (io->own)
        return;
    if (io->nomem)
        nbi_fail(io->ctx, NB_ERR_NOMEM, "%s: out of memory decoding the PNG", io->origin);
    else if (io->truncated)
        nbi_fail(io->ctx, NB_ERR_FORMAT, "%s: truncated PNG: the file ends after %zu bytes",
                 io->origin, io->len);
    else if (io->warning[0])
        nbi_fail(io->ctx, NB_ERR_FORMAT, "%s: corrupt PNG: %s (%s)", io->origin, io->msg, io->warning);
    else
        nbi_fail(io->ctx, NB_ERR_FORMAT, "%s: corrupt PNG: %s", io->origin, io->msg);
}

/* ---- reading ----------------------------------------------------------- */

/* Fills the tensor [C, H, W] from interleaved rows of `channels` samples of
 * `bits` (8 or 16, big-endian); gray averages the color channels. */
static void convert(nb_tensor *t, const uint8_t *pix, size_t rowbytes, int64_t h, int64_t w,
                    int channels, int bits, bool gray)
{
    double scale = bits == 16 ? 65535.0 : 255.0;
    int ncolor = channels >= 3 ? 3 : 1; /* alpha is channel 1 or 3 */
    int64_t plane = h * w;
    for (int64_t y = 0; y < h; y++) {
        const uint8_t *row = pix + (size_t)y * rowbytes;
        for (int64_t x = 0; x < w; x++) {
            double s[4];
            for (int k = 0; k < channels; k++) {
                size_t at = (size_t)(x * channels + k);
                s[k] = bits == 16 ? (double)(row[2 * at] << 8 | row[2 * at + 1]) : (double)row[at];
            }
            int64_t i = y * w + x;
            if (gray) {
                double sum = 0;
                for (int k = 0; k < ncolor; k++)
                    sum += s[k];
                nb_set(t, i, sum / (ncolor * scale));
            } else {
                for (int k = 0; k < channels; k++)
                    nb_set(t, k * plane + i, s[k] / scale);
            }
        }
    }
}

nb_tensor *nb_png_decode(nb_ctx *ctx, const void *buf, size_t len, const char *origin,
                            nb_dtype dtype, bool gray)
{
    if (dtype != NB_F32 && dtype != NB_F64)
        return nbi_fail_null(ctx, NB_ERR_ARG, "png_read: unknown dtype %d", (int)dtype);
    if (len < 8 || png_sig_cmp((png_const_bytep)buf, 0, 8)) {
        if (len > 0 && len < 8 && !png_sig_cmp((png_const_bytep)buf, 0, len))
            return nbi_fail_null(ctx, NB_ERR_FORMAT, "%s: truncated PNG: the file ends after %zu bytes",
                                 origin, len);
        return nbi_fail_null(ctx, NB_ERR_FORMAT, "%s: not a PNG file", origin);
    }
    png_io io = {.ctx = ctx, .origin = origin, .buf = buf, .len = len};
    png_structp png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &io, io_error, io_warning,
                                               &io, io_alloc, io_free);
    if (!png)
        return nbi_fail_null(ctx, NB_ERR_NOMEM, "%s: out of memory decoding the PNG", origin);
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return nbi_fail_null(ctx, NB_ERR_NOMEM, "%s: out of memory decoding the PNG", origin);
    }
    /* Set after setjmp and freed by its error path: volatile so longjmp
     * does not lose them. */
    uint8_t *volatile pix = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        nbi_free(ctx, rows);
        nbi_free(ctx, pix);
        png_destroy_read_struct(&png, &info, NULL);
        report(&io);
        return NULL;
    }
    png_set_read_fn(png, &io, io_read);
    /* Only IHDR, PLTE, tRNS, IDAT and IEND matter here; libpng skips the
     * others unread.  Otherwise it allocates an ancillary chunk's claimed
     * length (up to 2 GiB) before finding the file too short for it. */
    png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, NULL, -1);
    png_read_info(png, info);

    png_uint_32 w, h;
    int depth, color, interlace;
    png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, NULL, NULL);
    uint64_t npix = (uint64_t)w * h;
    if (npix > MAX_PIXELS) {
        nbi_fail(ctx, NB_ERR_FORMAT, "%s: image too large (%" PRIu32 "x%" PRIu32 " pixels, at most 2^28)",
                 origin, (uint32_t)h, (uint32_t)w);
        io.own = true;
        png_longjmp(png, 1);
    }
    uint64_t bits = npix * png_get_channels(png, info) * (uint64_t)depth;
    if (bits / 8 > (uint64_t)MAX_DEFLATE_RATIO * len + 65536) {
        nbi_fail(ctx, NB_ERR_FORMAT, "%s: corrupt PNG: %" PRIu32 "x%" PRIu32 " pixels cannot fit in %zu bytes",
                 origin, (uint32_t)h, (uint32_t)w, len);
        io.own = true;
        png_longjmp(png, 1);
    }

    if (color == PNG_COLOR_TYPE_PALETTE)
        png_set_palette_to_rgb(png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_tRNS_to_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int channels = png_get_channels(png, info);
    int outbits = png_get_bit_depth(png, info);
    size_t rowbytes = png_get_rowbytes(png, info);

    pix = nbi_alloc(ctx, (size_t)h * rowbytes);
    rows = nbi_alloc(ctx, (size_t)h * sizeof *rows);
    if (!pix || !rows) {
        io.nomem = true;
        png_longjmp(png, 1);
    }
    for (png_uint_32 y = 0; y < h; y++)
        rows[y] = pix + (size_t)y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    nbi_free(ctx, rows);

    int c = gray ? 1 : channels;
    nb_tensor *t = nb_tensor_new(ctx, dtype, 3, (int64_t[]){c, h, w});
    if (t)
        convert(t, pix, rowbytes, h, w, channels, outbits, gray);
    nbi_free(ctx, pix);
    return t;
}


nb_tensor *nb_png_read(nb_ctx *ctx, const char *path, nb_dtype dtype, bool gray)
{
    if (!path)
        return nbi_fail_null(ctx, NB_ERR_ARG, "png_read: path is NULL");
    char *buf;
    size_t len;
    if (nbi_file_read(ctx, path, MAX_FILE_BYTES, NBI_FILE_REGULAR, &buf, &len) != NB_OK)
        return NULL;
    nb_tensor *t = nb_png_decode(ctx, (const uint8_t *)buf, len, path, dtype, gray);
    nbi_free(ctx, buf);
    return t;
}

/* ---- writing ----------------------------------------------------------- */

static uint8_t to_u8(double v)
{
    if (!(v > 0)) /* NaN too */
        return 0;
    if (v >= 1)
        return 255;
    return (uint8_t)(v * 255 + 0.5);
}


/* Writes rows of h x w pixels of c channels from img's planes into png. */
static void write_rows(png_structp png, const nb_tensor *img, int64_t c, int64_t h, int64_t w,
                       uint8_t *row)
{
    for (int64_t y = 0; y < h; y++) {
        for (int64_t x = 0; x < w; x++)
            for (int64_t k = 0; k < c; k++)
                row[x * c + k] = to_u8(nb_get(img, (k * h + y) * w + x));
        png_write_row(png, row);
    }
}

/* Encodes img (c planes of h x w) into io->f; false after libpng or a
 * write failed (io says which). */
static bool encode(png_io *io, const nb_tensor *img, int64_t c, int64_t h, int64_t w,
                   uint8_t *row)
{
    png_structp png = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, io, io_error, io_warning,
                                                io, io_alloc, io_free);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        io->nomem = true;
        return false;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return false;
    }
    png_set_write_fn(png, io, io_write, io_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8,
                 c == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    write_rows(png, img, c, h, w, row);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return true;
}

int nb_png_write(nb_ctx *ctx, const char *path, const nb_tensor *img)
{
    if (!img || !path)
        return nbi_fail(ctx, NB_ERR_ARG, "png_write: %s is NULL", img ? "path" : "image");
    int64_t c, h, w;
    char shape[64];
    if (img->ndim == 2) {
        c = 1, h = img->shape[0], w = img->shape[1];
    } else if (img->ndim == 3 && (img->shape[0] == 1 || img->shape[0] == 3)) {
        c = img->shape[0], h = img->shape[1], w = img->shape[2];
    } else {
        return nbi_fail(ctx, NB_ERR_ARG, "png_write: %s: image of shape %s: [H, W], [1, H, W] or [3, H, W] expected",
                        path, nb_shape_str(img, shape, sizeof shape));
    }
    if (h > 1000000 || w > 1000000)
        return nbi_fail(ctx, NB_ERR_ARG, "png_write: %s: image of shape %s is too large for a PNG (at most 1000000 a side)",
                        path, nb_shape_str(img, shape, sizeof shape));
    uint8_t *row = nbi_alloc(ctx, (size_t)(w * c));
    if (!row)
        return NB_ERR_NOMEM;
    nbi_atomic a;
    int rc = nbi_atomic_open(ctx, &a, path);
    if (rc != NB_OK) {
        nbi_free(ctx, row);
        return rc;
    }
    png_io io = {.ctx = ctx, .origin = path, .f = a.f};
    bool ok = encode(&io, img, c, h, w, row);
    nbi_free(ctx, row);
    if (ok)
        return nbi_atomic_commit(ctx, &a, io.write_errno);
    nbi_atomic_abort(ctx, &a);
    if (io.nomem)
        return nbi_fail(ctx, NB_ERR_NOMEM, "%s: out of memory encoding the PNG", path);
    if (io.write_errno)
        return nbi_fail(ctx, NB_ERR_IO, "%s: cannot write: %s", path, strerror(io.write_errno));
    return nbi_fail(ctx, NB_ERR_IO, "%s: cannot write: %s", path, io.msg);
}

/* ---- resizing -----------------------------------------------------------
 * Separable: each axis maps its n_in source pixels to n_out outputs, each a
 * weighted sum of a few consecutive sources.
 *   enlarging (n_out >= n_in): bilinear with pixel centres aligned, as
 *     torch.nn.functional.interpolate(mode='bilinear', align_corners=False):
 *     s = (i + 0.5) n_in / n_out - 0.5, clamped at 0; sources floor(s) and
 *     the next (clamped at the edge), weighted by the distance.
 *   shrinking: a box filter over the exact footprint [i, i + 1) n_in / n_out:
 *     each source pixel weighs the length of its overlap.  For a whole
 *     factor this is the block mean (torch's mode='area'); otherwise the
 *     edge pixels count in part, where torch's 'area' (adaptive average
 *     pooling) would count them whole. */

typedef struct axis {
    int64_t *first; /* first source of output i */
    int *ntaps;     /* how many sources */
    double *w;      /* their weights, maxtaps per output */
    int maxtaps;
} axis;

static bool axis_init(nb_ctx *ctx, axis *a, int64_t n_in, int64_t n_out)
{
    a->maxtaps = n_out >= n_in ? 2 : (int)((n_in + n_out - 1) / n_out) + 1;
    a->first = nbi_alloc(ctx, (size_t)n_out * sizeof *a->first);
    a->ntaps = nbi_alloc(ctx, (size_t)n_out * sizeof *a->ntaps);
    a->w = nbi_alloc(ctx, (size_t)n_out * (size_t)a->maxtaps * sizeof *a->w);
    if (!a->first || !a->ntaps || !a->w)
        return false;
    for (int64_t i = 0; i < n_out; i++) {
        double *w = a->w + i * a->maxtaps;
        if (n_out >= n_in) {
            double s = ((double)i + 0.5) * (double)n_in / (double)n_out - 0.5;
            if (s < 0)
                s = 0;
            int64_t i0 = (int64_t)s;
            double l = s - (double)i0;
            a->first[i] = i0;
            if (i0 < n_in - 1) {
                a->ntaps[i] = 2;
                w[0] = 1 - l;
                w[1] = l;
            } else {
                a->ntaps[i] = 1;
                w[0] = 1;
            }
        } else {
            /* In units of 1/n_out, output i covers [i n_in, (i + 1) n_in)
             * and source k covers [k n_out, (k + 1) n_out): exact integers. */
            int64_t lo = i * n_in, hi = (i + 1) * n_in;
            int64_t k0 = lo / n_out, k1 = (hi + n_out - 1) / n_out;
            a->first[i] = k0;
            a->ntaps[i] = (int)(k1 - k0);
            for (int64_t k = k0; k < k1; k++) {
                int64_t from = k * n_out > lo ? k * n_out : lo;
                int64_t to = (k + 1) * n_out < hi ? (k + 1) * n_out : hi;
                w[k - k0] = (double)(to - from) / (double)n_in;
            }
        }
    }
    return true;
}

static void axis_free(nb_ctx *ctx, axis *a)
{
    nbi_free(ctx, a->first);
    nbi_free(ctx, a->ntaps);
    nbi_free(ctx, a->w);
}

nb_tensor *nb_image_resize(nb_ctx *ctx, const nb_tensor *img, int64_t h, int64_t w)
{
    if (!img)
        return NULL;
    char shape[64];
    if (img->ndim != 3)
        return nbi_fail_null(ctx, NB_ERR_ARG, "image_resize: image of shape %s: [C, H, W] expected",
                             nb_shape_str(img, shape, sizeof shape));
    if (h < 1 || w < 1)
        return nbi_fail_null(ctx, NB_ERR_ARG, "image_resize: size %" PRId64 "x%" PRId64 " is not positive",
                             h, w);
    int64_t c = img->shape[0], H = img->shape[1], W = img->shape[2];
    nb_tensor *out = nb_tensor_new(ctx, img->dtype, 3, (int64_t[]){c, h, w});
    if (!out)
        return NULL;
    axis ax = {0}, ay = {0};
    /* The horizontal pass first: [C, H, W] -> tmp [C, H, w]. */
    double *tmp = NULL;
    if ((uint64_t)c * (uint64_t)H > (uint64_t)(SIZE_MAX / sizeof *tmp) / (uint64_t)w) {
        nbi_fail(ctx, NB_ERR_NOMEM, "image_resize: %s to %" PRId64 "x%" PRId64 " needs too much memory",
                 nb_shape_str(img, shape, sizeof shape), h, w);
        goto fail;
    }
    tmp = nbi_alloc(ctx, (size_t)(c * H * w) * sizeof *tmp);
    if (!tmp || !axis_init(ctx, &ax, W, w) || !axis_init(ctx, &ay, H, h))
        goto fail;
    for (int64_t r = 0; r < c * H; r++) {
        for (int64_t x = 0; x < w; x++) {
            const double *wt = ax.w + x * ax.maxtaps;
            double sum = 0;
            for (int k = 0; k < ax.ntaps[x]; k++)
                sum += wt[k] * nb_get(img, r * W + ax.first[x] + k);
            tmp[r * w + x] = sum;
        }
    }
    for (int64_t ch = 0; ch < c; ch++) {
        for (int64_t y = 0; y < h; y++) {
            const double *wt = ay.w + y * ay.maxtaps;
            for (int64_t x = 0; x < w; x++) {
                double sum = 0;
                for (int k = 0; k < ay.ntaps[y]; k++)
                    sum += wt[k] * tmp[(ch * H + ay.first[y] + k) * w + x];
                nb_set(out, (ch * h + y) * w + x, sum);
            }
        }
    }
    nbi_free(ctx, tmp);
    axis_free(ctx, &ax);
    axis_free(ctx, &ay);
    return out;

fail:
    nbi_free(ctx, tmp);
    axis_free(ctx, &ax);
    axis_free(ctx, &ay);
    nb_tensor_free(out);
    return NULL;
}
