/*
 * test_image.c - PNG reading of every colour type and bit depth, writing
 * and round trips, malformed files, resizing, allocation failure.  The
 * fixtures are in tests/data/png (see its README); expected values follow
 * from the pixels written there.
 */
#include "harness.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

/* The source tree: $srcdir under make check, else found from this file's
 * path as the compiler saw it (relative to the build directory). */
static const char *fixture(const char *name)
{
    static char buf[4][1024];
    static int next;
    char *out = buf[next++ % 4];
    const char *root = getenv("srcdir");
    if (!root || !*root) {
        const char *here = __FILE__, *tail = strstr(here, "tests/test_image.c");
        int n = tail ? (int)(tail - here) : 0;
        snprintf(out, sizeof buf[0], "%.*stests/data/png/%s", n, here, name);
        return out;
    }
    snprintf(out, sizeof buf[0], "%s/tests/data/png/%s", root, name);
    return out;
}

static nb_tensor *read_ok(nb_ctx *ctx, const char *name, nb_dtype dtype, bool gray)
{
    nb_tensor *t = nb_png_read(ctx, fixture(name), dtype, gray);
    ck_assert_msg(t != NULL, "%s: %s", name, nb_errmsg(ctx));
    ck_assert_int_eq(t->dtype, dtype);
    return t;
}

static void check_png(const char *name, bool gray, int c, int h, int w, const double *values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *t = read_ok(ctx, name, NB_F64, gray);
    tst_assert_values(t, 3, (int64_t[]){c, h, w}, values, 1e-12);
    /* float32 holds the same values, rounded. */
    nb_tensor *t32 = read_ok(ctx, name, NB_F32, gray);
    tst_assert_values(t32, 3, (int64_t[]){c, h, w}, values, 1e-7);
    nb_ctx_free(ctx);
}

/* A scratch directory, removed with its files by rm_tmpdir. */
static void make_tmpdir(char *dir, size_t size)
{
    snprintf(dir, size, "/tmp/nabla-image-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void rm_tmpdir(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        ck_assert_int_eq(unlink(path), 0);
    }
    closedir(d);
    ck_assert_int_eq(rmdir(dir), 0);
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ---- reading ----------------------------------------------------------- */

START_TEST(test_read_gray_depths)
{
    check_png("gray1.png", false, 1, 2, 3, (double[]){1, 0, 1, 0, 1, 1});
    check_png("gray2.png", false, 1, 2, 3, (double[]){0, 1 / 3.0, 2 / 3.0, 1, 2 / 3.0, 1 / 3.0});
    check_png("gray4.png", false, 1, 2, 3, (double[]){0, 5 / 15.0, 10 / 15.0, 1, 3 / 15.0, 12 / 15.0});
    check_png("gray8.png", false, 1, 2, 2, (double[]){0, 0.2, 0.8, 1});
    /* gAMA, tEXt and zTXt are skipped: no gamma correction. */
    check_png("gray8-ancillary.png", false, 1, 2, 2, (double[]){0, 0.2, 0.8, 1});
    /* 16 bits keep their precision: 1 is not 0, and 32768 is not 128/255. */
    check_png("gray16.png", false, 1, 2, 2, (double[]){0, 1 / 65535.0, 32768 / 65535.0, 1});
    check_png("gray16.png", true, 1, 2, 2, (double[]){0, 1 / 65535.0, 32768 / 65535.0, 1});
}
END_TEST

START_TEST(test_read_color_types)
{
    check_png("ga8.png", false, 2, 2, 2,
              (double[]){10 / 255.0, 20 / 255.0, 30 / 255.0, 40 / 255.0, 1, 128 / 255.0, 0, 64 / 255.0});
    check_png("ga16.png", false, 2, 1, 2, (double[]){1000 / 65535.0, 1, 1, 0});
    check_png("rgb8.png", false, 3, 2, 2,
              (double[]){1, 0, 0, 30 / 255.0, 0, 1, 0, 60 / 255.0, 0, 0, 1, 90 / 255.0});
    check_png("rgb16.png", false, 3, 1, 2,
              (double[]){1, 256 / 65535.0, 0, 512 / 65535.0, 1 / 65535.0, 1024 / 65535.0});
    check_png("rgba8.png", false, 4, 1, 2,
              (double[]){1, 3 / 255.0, 1, 6 / 255.0, 1, 9 / 255.0, 0, 1});
    check_png("rgba16.png", false, 4, 1, 1, (double[]){1 / 65535.0, 2 / 65535.0, 3 / 65535.0, 1});
}
END_TEST

/* gray: the mean of the colour channels, alpha ignored. */
START_TEST(test_read_as_gray)
{
    check_png("rgb8.png", true, 1, 2, 2, (double[]){1 / 3.0, 1 / 3.0, 1 / 3.0, 60 / 255.0});
    check_png("rgba8.png", true, 1, 1, 2, (double[]){1, 6 / 255.0});
    check_png("ga8.png", true, 1, 2, 2, (double[]){10 / 255.0, 20 / 255.0, 30 / 255.0, 40 / 255.0});
    check_png("rgb16.png", true, 1, 1, 2,
              (double[]){(65535 + 0 + 1) / (3 * 65535.0), (256 + 512 + 1024) / (3 * 65535.0)});
    check_png("pal8.png", true, 1, 2, 2, (double[]){1 / 3.0, 1 / 3.0, 1 / 3.0, 20 / 255.0});
}
END_TEST

START_TEST(test_read_palette)
{
    check_png("pal8.png", false, 3, 2, 2,
              (double[]){1, 0, 0, 10 / 255.0, 0, 1, 0, 20 / 255.0, 0, 0, 1, 30 / 255.0});
    /* 4 and 1 bits per index, rows of 3 pixels: partial bytes. */
    check_png("pal4.png", false, 3, 1, 3,
              (double[]){10 / 255.0, 1, 0, 20 / 255.0, 0, 0, 30 / 255.0, 0, 1});
    check_png("pal1.png", false, 3, 1, 3, (double[]){1, 0, 1, 1, 0, 1, 1, 0, 1});
}
END_TEST

/* tRNS becomes an alpha channel: palette alphas 255, 0, 128 and entry 3
 * opaque; gray 7 and RGB (1, 2, 3) transparent. */
START_TEST(test_read_transparency)
{
    check_png("pal8-trns.png", false, 4, 2, 2,
              (double[]){1, 0, 0, 10 / 255.0, 0, 1, 0, 20 / 255.0, 0, 0, 1, 30 / 255.0,
                         1, 0, 128 / 255.0, 1});
    check_png("gray8-trns.png", false, 2, 1, 2, (double[]){7 / 255.0, 9 / 255.0, 0, 1});
    check_png("rgb8-trns.png", false, 4, 1, 2,
              (double[]){1 / 255.0, 4 / 255.0, 2 / 255.0, 5 / 255.0, 3 / 255.0, 6 / 255.0, 0, 1});
    check_png("pal8-trns.png", true, 1, 2, 2, (double[]){1 / 3.0, 1 / 3.0, 1 / 3.0, 20 / 255.0});
}
END_TEST

START_TEST(test_read_interlaced)
{
    double g[25], rgb[36];
    for (int r = 0; r < 5; r++)
        for (int c = 0; c < 5; c++)
            g[r * 5 + c] = (10 * r + c) / 255.0;
    check_png("gray8-interlaced.png", false, 1, 5, 5, g);
    for (int r = 0; r < 3; r++) {
        for (int c = 0; c < 4; c++) {
            rgb[r * 4 + c] = r / 255.0;
            rgb[12 + r * 4 + c] = c / 255.0;
            rgb[24 + r * 4 + c] = (r + c) / 255.0;
        }
    }
    check_png("rgb8-interlaced.png", false, 3, 3, 4, rgb);
    /* Spot checks by hand: gray (4, 3) = 43, rgb B at (2, 3) = 5. */
    ck_assert(g[23] == 43 / 255.0 && rgb[24 + 11] == 5 / 255.0);
}
END_TEST

/* ---- malformed files --------------------------------------------------- */

typedef struct bad_png {
    const char *name;
    int code;
    const char *msg; /* after "<path>: " */
} bad_png;

static const bad_png bad_pngs[] = {
    {"bad/not-a-png.png", NB_ERR_FORMAT, "not a PNG file"},
    {"bad/empty.png", NB_ERR_FORMAT, "not a PNG file"},
    {"bad/bad-crc.png", NB_ERR_FORMAT, "corrupt PNG: IHDR: CRC error"},
    {"bad/zero-width.png", NB_ERR_FORMAT, "corrupt PNG: Invalid IHDR data (Image width is zero in IHDR)"},
    {"bad/huge.png", NB_ERR_FORMAT, "image too large (100000x100000 pixels, at most 2^28)"},
    {"bad/huge-idat.png", NB_ERR_FORMAT, "corrupt PNG: 16384x16384 pixels cannot fit in 69 bytes"},
    {"bad/bad-depth.png", NB_ERR_FORMAT, "corrupt PNG: Invalid IHDR data (Invalid bit depth in IHDR)"},
    {"bad/garbage-idat.png", NB_ERR_FORMAT, "corrupt PNG: IDAT: incorrect header check"},
    {"bad/short-idat.png", NB_ERR_FORMAT, "corrupt PNG: Not enough image data"},
    {"bad/no-iend.png", NB_ERR_FORMAT, "truncated PNG: the file ends after 59 bytes"},
    /* Found by fuzzing: libpng allocated the 2 GiB these chunks claim. */
    {"bad/huge-scal.png", NB_ERR_FORMAT, "truncated PNG: the file ends after 46 bytes"},
    {"bad/huge-text.png", NB_ERR_FORMAT, "truncated PNG: the file ends after 79 bytes"},
};

/* Refuses blocks over 64 MiB: none of these files may make the reader
 * allocate what their headers claim. */
static void *capped_alloc(void *ud, size_t size)
{
    (void)ud;
    return size > ((size_t)64 << 20) ? NULL : malloc(size);
}

static void capped_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

START_TEST(test_read_malformed)
{
    const bad_png *b = &bad_pngs[_i];
    nb_allocator capped = {capped_alloc, capped_free, NULL};
    nb_ctx *ctx = nb_ctx_new_with(&capped);
    for (int gray = 0; gray < 2; gray++) {
        ck_assert_ptr_null(nb_png_read(ctx, fixture(b->name), NB_F32, gray));
        char want[1200];
        snprintf(want, sizeof want, "%s: %s", fixture(b->name), b->msg);
        tst_assert_error(ctx, b->code, want);
        nb_clear_error(ctx);
    }
    /* Nothing is left allocated: the context holds no tensor. */
    ck_assert_ptr_eq(ctx->persistent.next_, &ctx->persistent);
    nb_ctx_free(ctx);
}
END_TEST

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s", path);
    static uint8_t buf[1 << 16];
    *len = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

/* Every prefix of a valid file (interlaced, so several passes) is an
 * error, never a crash; in memory at every length, and through files at a
 * few. */
START_TEST(test_read_truncated)
{
    nb_ctx *ctx = nb_ctx_new();
    size_t len;
    const uint8_t *buf = slurp(fixture("rgb8-interlaced.png"), &len);
    ck_assert_int_eq(len, 93);
    ck_assert_ptr_null(nb_png_decode(ctx, buf, 0, "mem", NB_F32, false));
    tst_assert_error(ctx, NB_ERR_FORMAT, "mem: not a PNG file");
    for (size_t n = 1; n < len; n++) {
        char want[96];
        snprintf(want, sizeof want, "mem: truncated PNG: the file ends after %zu bytes", n);
        ck_assert_ptr_null(nb_png_decode(ctx, buf, n, "mem", NB_F64, n % 2));
        tst_assert_error(ctx, NB_ERR_FORMAT, want);
    }
    nb_tensor *t = nb_png_decode(ctx, buf, len, "mem", NB_F64, false);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->numel, 36);

    char dir[64], path[128];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/cut.png", dir);
    const size_t cuts[] = {5, 8, 33, 60, 92};
    for (size_t k = 0; k < sizeof cuts / sizeof *cuts; k++) {
        FILE *f = fopen(path, "wb");
        ck_assert_int_eq(fwrite(buf, 1, cuts[k], f), cuts[k]);
        fclose(f);
        char want[200];
        snprintf(want, sizeof want, "%s: truncated PNG: the file ends after %zu bytes", path, cuts[k]);
        ck_assert_ptr_null(nb_png_read(ctx, path, NB_F32, true));
        tst_assert_error(ctx, NB_ERR_FORMAT, want);
    }
    rm_tmpdir(dir);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_read_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    ck_assert_ptr_null(nb_png_read(ctx, "/nonexistent/x.png", NB_F32, false));
    tst_assert_error(ctx, NB_ERR_IO, "/nonexistent/x.png: cannot open: No such file or directory");
    ck_assert_ptr_null(nb_png_read(ctx, fixture("bad"), NB_F32, false));
    tst_assert_error(ctx, NB_ERR_IO, ": not a regular file");
    ck_assert_ptr_null(nb_png_read(ctx, fixture("gray8.png"), (nb_dtype)7, false));
    tst_assert_error(ctx, NB_ERR_ARG, "png_read: unknown dtype 7");
    ck_assert_ptr_null(nb_png_read(ctx, NULL, NB_F32, false));
    tst_assert_error(ctx, NB_ERR_ARG, "png_read: path is NULL");
    nb_ctx_free(ctx);
}
END_TEST

/* ---- writing ----------------------------------------------------------- */

START_TEST(test_write_round_trip)
{
    nb_ctx *ctx = nb_ctx_new();
    char dir[64], path[128];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/out.png", dir);

    /* 8-bit gray [1, H, W]: every value k / 255 comes back exactly. */
    nb_tensor *g = nb_tensor_new(ctx, NB_F64, 3, (int64_t[]){1, 16, 16});
    for (int k = 0; k < 256; k++)
        nb_set(g, k, ((k * 37) % 256) / 255.0);
    ck_assert_int_eq(nb_png_write(ctx, path, g), NB_OK);
    nb_tensor *back = nb_png_read(ctx, path, NB_F64, false);
    ck_assert_ptr_nonnull(back);
    ck_assert(nb_same_shape(back, g));
    for (int k = 0; k < 256; k++)
        ck_assert(nb_get(back, k) == nb_get(g, k));

    /* [H, W] is gray too; RGB [3, H, W] keeps its planes.  The file is
     * replaced in place and no temporary file is left. */
    nb_tensor *hw = tst_make(ctx, NB_F32, 2, (int64_t[]){1, 3}, (double[]){0, 0.2, 1});
    ck_assert_int_eq(nb_png_write(ctx, path, hw), NB_OK);
    tst_assert_values(nb_png_read(ctx, path, NB_F64, false), 3, (int64_t[]){1, 1, 3},
                      (double[]){0, 0.2, 1}, 0);
    double rgbv[12];
    for (int k = 0; k < 12; k++)
        rgbv[k] = (20 * k + 7) / 255.0;
    nb_tensor *rgb = tst_make(ctx, NB_F64, 3, (int64_t[]){3, 2, 2}, rgbv);
    ck_assert_int_eq(nb_png_write(ctx, path, rgb), NB_OK);
    tst_assert_values(nb_png_read(ctx, path, NB_F64, false), 3, (int64_t[]){3, 2, 2}, rgbv, 0);
    ck_assert_int_eq(count_files(dir), 1);

    /* Clamped to [0, 1] and rounded: -0.5 -> 0, 1.7 -> 255, NaN -> 0,
     * 100.4/255 -> 100, 100.6/255 -> 101, 0.5 -> 128. */
    nb_tensor *c = tst_make(ctx, NB_F64, 2, (int64_t[]){2, 3},
                            (double[]){-0.5, 1.7, NAN, 100.4 / 255, 100.6 / 255, 0.5});
    ck_assert_int_eq(nb_png_write(ctx, path, c), NB_OK);
    tst_assert_values(nb_png_read(ctx, path, NB_F64, false), 3, (int64_t[]){1, 2, 3},
                      (double[]){0, 1, 0, 100 / 255.0, 101 / 255.0, 128 / 255.0}, 0);
    rm_tmpdir(dir);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_write_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    char dir[64], path[128];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/out.png", dir);
    nb_tensor *two = nb_tensor_new(ctx, NB_F32, 3, (int64_t[]){2, 4, 4});
    ck_assert_int_eq(nb_png_write(ctx, path, two), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "out.png: image of shape [2, 4, 4]: [H, W], [1, H, W] or [3, H, W] expected");
    nb_tensor *four = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){1, 1, 4, 4});
    ck_assert_int_eq(nb_png_write(ctx, path, four), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "image of shape [1, 1, 4, 4]");
    ck_assert_int_eq(nb_png_write(ctx, path, NULL), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "png_write: image is NULL");
    ck_assert_int_eq(count_files(dir), 0);

    /* Directories that cannot hold the file (true even for root). */
    nb_tensor *img = nb_tensor_new(ctx, NB_F32, 2, (int64_t[]){4, 4});
    ck_assert_int_eq(nb_png_write(ctx, "/nonexistent/dir/out.png", img), NB_ERR_IO);
    tst_assert_error(ctx, NB_ERR_IO, "/nonexistent/dir/out.png: cannot write: No such file or directory");
    char under_file[1100];
    snprintf(under_file, sizeof under_file, "%s/x.png", fixture("gray8.png"));
    ck_assert_int_eq(nb_png_write(ctx, under_file, img), NB_ERR_IO);
    tst_assert_error(ctx, NB_ERR_IO, "gray8.png/x.png: cannot write: Not a directory");
    /* Renaming onto a directory fails after the data is written: the
     * temporary file goes. */
    char sub[128];
    snprintf(sub, sizeof sub, "%s/sub.png", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    ck_assert_int_eq(nb_png_write(ctx, sub, img), NB_ERR_IO);
    tst_assert_error(ctx, NB_ERR_IO, "sub.png: cannot write: Is a directory");
    ck_assert_int_eq(count_files(dir), 1);
    ck_assert_int_eq(rmdir(sub), 0);
    rm_tmpdir(dir);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- resizing ---------------------------------------------------------- */

/* Enlarging is torch's bilinear with align_corners=False (values printed
 * by torch.nn.functional.interpolate). */
START_TEST(test_resize_bilinear)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *x = tst_make(ctx, NB_F64, 3, (int64_t[]){1, 2, 2}, (double[]){1, 2, 3, 4});
    tst_assert_values(nb_image_resize(ctx, x, 4, 4), 3, (int64_t[]){1, 4, 4},
                      (double[]){1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5,
                                 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4}, 1e-12);
    /* 3x5 -> 7x8, non-integer factors; x = arange(15) ** 1.5. */
    double v[15];
    for (int k = 0; k < 15; k++)
        v[k] = pow(k, 1.5);
    nb_tensor *y = tst_make(ctx, NB_F64, 3, (int64_t[]){1, 3, 5}, v);
    const double want[56] = {
        0.0, 0.4375, 1.114276695296637, 2.257043648263006, 3.5683412803588284, 5.048169591584104,
        6.7733166849341515, 8.0, 1.5971914124998494, 2.191978823074857, 3.088793739075136,
        4.4096761916849765, 5.887684811216683, 7.522819597670257, 9.389556435173796,
        10.714285714285714, 6.388765649999399, 7.4554152922994295, 9.012344870410637,
        10.867573821950888, 12.84571540379025, 14.946769615928721, 17.23827568589273,
        18.857142857142858, 11.180339887498947, 12.718851761524, 14.935896001746134,
        17.325471452216796, 19.803745996363816, 22.370719634187182, 25.086994936611664,
        26.999999999999996, 19.941384193578163, 21.731801853170495, 24.306556013237806,
        27.03444199058095, 29.842022161404575, 32.72929652570868, 35.75205059236933,
        37.878515749215076, 28.702428499657383, 30.744751944816993, 33.67721602472948,
        36.74341252894511, 39.88029832644534, 43.08787341723018, 46.417106248127006,
        48.75703149843015, 31.622776601683793, 33.7490686420325, 36.80076936189337,
        39.97973604173316, 43.226390381458934, 46.54073238107069, 49.972124800046224,
        52.38320341483518};
    tst_assert_values(nb_image_resize(ctx, y, 7, 8), 3, (int64_t[]){1, 7, 8}, want, 1e-9);
    nb_ctx_free(ctx);
}
END_TEST

/* Shrinking averages the covered area: block means for whole factors (as
 * torch's mode='area'), partial pixels otherwise. */
START_TEST(test_resize_area)
{
    nb_ctx *ctx = nb_ctx_new();
    double v[16];
    for (int k = 0; k < 16; k++)
        v[k] = k;
    nb_tensor *x = tst_make(ctx, NB_F32, 3, (int64_t[]){1, 4, 4}, v);
    nb_tensor *y = nb_image_resize(ctx, x, 2, 2);
    tst_assert_values(y, 3, (int64_t[]){1, 2, 2}, (double[]){2.5, 4.5, 10.5, 12.5}, 1e-6);
    ck_assert_int_eq(y->dtype, NB_F32);
    /* 3 -> 2: output 0 covers [0, 1.5): 2/3 of pixel 0 and 1/3 of pixel 1.
     * [0, 3, 6] -> [1, 5] (torch's adaptive 'area' gives [1.5, 4.5]). */
    nb_tensor *r = tst_make(ctx, NB_F64, 3, (int64_t[]){1, 1, 3}, (double[]){0, 3, 6});
    tst_assert_values(nb_image_resize(ctx, r, 1, 2), 3, (int64_t[]){1, 1, 2}, (double[]){1, 5}, 1e-12);
    /* One axis up, the other down, per channel: rows 2 -> 3 bilinear, columns
     * 4 -> 2 area (torch: bilinear to 3x4, then area to 3x2). */
    nb_tensor *m = tst_make(ctx, NB_F64, 3, (int64_t[]){2, 2, 4},
                            (double[]){1, 2, 3, 4, 5, 6, 7, 8, 10, 20, 30, 40, 50, 60, 70, 80});
    tst_assert_values(nb_image_resize(ctx, m, 3, 2), 3, (int64_t[]){2, 3, 2},
                      (double[]){1.5, 3.5, 3.5, 5.5, 5.5, 7.5, 15, 35, 35, 55, 55, 75}, 1e-12);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_resize_identity_and_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_rng rng;
    nb_rng_seed(&rng, 3);
    nb_tensor *x = nb_tensor_new(ctx, NB_F64, 3, (int64_t[]){1, 28, 28});
    nb_fill_uniform(x, &rng, 0, 1);
    nb_tensor *y = nb_image_resize(ctx, x, 28, 28);
    ck_assert(nb_same_shape(x, y));
    for (int64_t i = 0; i < x->numel; i++)
        ck_assert(nb_get(x, i) == nb_get(y, i));
    nb_tensor *flat = nb_tensor_new(ctx, NB_F64, 2, (int64_t[]){28, 28});
    ck_assert_ptr_null(nb_image_resize(ctx, flat, 14, 14));
    tst_assert_error(ctx, NB_ERR_ARG, "image_resize: image of shape [28, 28]: [C, H, W] expected");
    ck_assert_ptr_null(nb_image_resize(ctx, x, 0, 14));
    tst_assert_error(ctx, NB_ERR_ARG, "image_resize: size 0x14 is not positive");
    nb_ctx_free(ctx);
}
END_TEST

/* ---- allocation failure ------------------------------------------------ */

/* Fails the k-th allocation for every k of reading (libpng's own memory
 * included), writing and resizing: NB_ERR_NOMEM or success, no leak. */
START_TEST(test_alloc_failure)
{
    char dir[64], path[128];
    make_tmpdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/out.png", dir);
    int k = 0;
    for (;; k++) {
        tst_failing f = {k};
        nb_allocator a = {tst_failing_alloc, tst_failing_free, &f};
        nb_ctx *ctx = nb_ctx_new_with(&a);
        if (!ctx)
            continue;
        int rc = NB_ERR_NOMEM;
        nb_tensor *t = nb_png_read(ctx, fixture("pal8-trns.png"), NB_F32, false);
        nb_tensor *g = t ? nb_png_read(ctx, fixture("gray8-interlaced.png"), NB_F64, true) : NULL;
        nb_tensor *r = g ? nb_image_resize(ctx, g, 3, 7) : NULL;
        if (r)
            rc = nb_png_write(ctx, path, r);
        if (rc != NB_OK) {
            ck_assert_int_eq(rc, NB_ERR_NOMEM);
            ck_assert_int_eq(nb_error(ctx), NB_ERR_NOMEM);
            ck_assert_msg(strstr(nb_errmsg(ctx), "memory") != NULL, "%s", nb_errmsg(ctx));
        }
        nb_ctx_free(ctx);
        if (rc == NB_OK)
            break;
    }
    ck_assert_int_gt(k, 10);
    ck_assert_int_eq(count_files(dir), 1);
    rm_tmpdir(dir);
}
END_TEST

Suite *tst_suite_image(void)
{
    Suite *s = suite_create("image");
    TCase *tc = tcase_create("read");
    tcase_add_test(tc, test_read_gray_depths);
    tcase_add_test(tc, test_read_color_types);
    tcase_add_test(tc, test_read_as_gray);
    tcase_add_test(tc, test_read_palette);
    tcase_add_test(tc, test_read_transparency);
    tcase_add_test(tc, test_read_interlaced);
    tcase_add_loop_test(tc, test_read_malformed, 0, sizeof bad_pngs / sizeof *bad_pngs);
    tcase_add_test(tc, test_read_truncated);
    tcase_add_test(tc, test_read_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("write");
    tcase_add_test(tc, test_write_round_trip);
    tcase_add_test(tc, test_write_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("resize");
    tcase_add_test(tc, test_resize_bilinear);
    tcase_add_test(tc, test_resize_area);
    tcase_add_test(tc, test_resize_identity_and_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("alloc");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_alloc_failure);
    suite_add_tcase(s, tc);
    return s;
}
