/*
 * test_dataset.c - IDX files raw and gzipped, malformed ones, data set
 * directories (IDX names and PNG class folders), selection, shuffling,
 * batches, allocation failure.  The fixtures are in tests/data/idx and
 * tests/data/png (see their READMEs):
 *   train: 20 images 28x28, pixel (i, r, c) = (7 i + 3 r + 5 c) % 256,
 *          label (3 i) % 10
 *   t10k:  10 images 28x28, pixel (i, r, c) = (11 i + r c) % 256,
 *          label 9 - i
 *   bad/good-*: 3 images 4x5, pixel 10 i + r + c, labels 2, 0, 1
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <zlib.h>

#include "io/dataset.h"

/* The source tree: $srcdir under make check, else found from this file's
 * path as the compiler saw it (relative to the build directory). */
static const char *fixture(const char *name)
{
    static char buf[4][1024];
    static int next;
    char *out = buf[next++ % 4];
    const char *root = getenv("srcdir");
    if (!root || !*root) {
        const char *here = __FILE__, *tail = strstr(here, "tests/test_dataset.c");
        int n = tail ? (int)(tail - here) : 0;
        snprintf(out, sizeof buf[0], "%.*stests/data/%s", n, here, name);
        return out;
    }
    snprintf(out, sizeof buf[0], "%s/tests/data/%s", root, name);
    return out;
}

static int train_pixel(int i, int r, int c)
{
    return (7 * i + 3 * r + 5 * c) % 256;
}

static int test_pixel(int i, int r, int c)
{
    return (11 * i + r * c) % 256;
}

static const int32_t train_labels[20] = {0, 3, 6, 9, 2, 5, 8, 1, 4, 7,
                                         0, 3, 6, 9, 2, 5, 8, 1, 4, 7};

/* The fixture's training set, checked whole. */
static void check_train(const nb_dataset *ds)
{
    ck_assert_int_eq(nb_dataset_size(ds), 20);
    int64_t shape[3];
    ck_assert_int_eq(nb_dataset_shape(ds, shape), 3);
    ck_assert(shape[0] == 1 && shape[1] == 28 && shape[2] == 28);
    ck_assert_int_eq(nb_dataset_num_classes(ds), 10);
    ck_assert_ptr_null(nb_dataset_class_name(ds, 0));
    for (int i = 0; i < 20; i++) {
        ck_assert_int_eq(nb_dataset_label(ds, i), train_labels[i]);
        const uint8_t *img = nb_dataset_image(ds, i);
        for (int r = 0; r < 28; r++)
            for (int c = 0; c < 28; c++)
                ck_assert_int_eq(img[r * 28 + c], train_pixel(i, r, c));
    }
    /* By hand: image 0 at (1, 2) is 13; image 19 at (27, 27) is 349 % 256. */
    ck_assert_int_eq(nb_dataset_image(ds, 0)[1 * 28 + 2], 13);
    ck_assert_int_eq(nb_dataset_image(ds, 19)[27 * 28 + 27], 93);
    ck_assert_ptr_null(nb_dataset_image(ds, 20));
    ck_assert_ptr_null(nb_dataset_image(ds, -1));
    ck_assert_int_eq(nb_dataset_label(ds, 20), -1);
}

static void check_test(const nb_dataset *ds)
{
    ck_assert_int_eq(nb_dataset_size(ds), 10);
    ck_assert_int_eq(nb_dataset_num_classes(ds), 10);
    for (int i = 0; i < 10; i++) {
        ck_assert_int_eq(nb_dataset_label(ds, i), 9 - i);
        const uint8_t *img = nb_dataset_image(ds, i);
        for (int r = 0; r < 28; r++)
            for (int c = 0; c < 28; c++)
                ck_assert_int_eq(img[r * 28 + c], test_pixel(i, r, c));
    }
    ck_assert_int_eq(nb_dataset_image(ds, 3)[5 * 28 + 7], 68);
}

/* ---- IDX files --------------------------------------------------------- */

START_TEST(test_idx_raw_and_gz)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = nb_dataset_load_idx(ctx, fixture("idx/raw/train-images-idx3-ubyte"),
                                         fixture("idx/raw/train-labels-idx1-ubyte"));
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    check_train(ds);
    nb_dataset_free(ds);
    ds = nb_dataset_load_idx(ctx, fixture("idx/gz/train-images-idx3-ubyte.gz"),
                             fixture("idx/gz/train-labels-idx1-ubyte.gz"));
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    check_train(ds);
    nb_dataset_free(ds);
    /* Gzipped images with raw labels; then two gzip members read as one. */
    ds = nb_dataset_load_idx(ctx, fixture("idx/bad/good-images.gz"), fixture("idx/bad/good-labels"));
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_dataset_size(ds), 3);
    ck_assert_int_eq(nb_dataset_num_classes(ds), 3);
    ck_assert_int_eq(nb_dataset_image(ds, 2)[3 * 5 + 4], 27);
    nb_dataset_free(ds);
    ds = nb_dataset_load_idx(ctx, fixture("idx/bad/two-members.gz"), fixture("idx/bad/good-labels"));
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    int64_t shape[3];
    nb_dataset_shape(ds, shape);
    ck_assert(shape[1] == 4 && shape[2] == 5);
    for (int i = 0; i < 3; i++)
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 5; c++)
                ck_assert_int_eq(nb_dataset_image(ds, i)[r * 5 + c], 10 * i + r + c);
    ck_assert_int_eq(nb_dataset_label(ds, 0), 2);
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
}
END_TEST

typedef struct bad_idx {
    const char *images, *labels; /* under tests/data/idx/bad */
    int code;
    const char *file; /* the file the message names */
    const char *msg;  /* after "<file>: " */
} bad_idx;

static const bad_idx bad_idxs[] = {
    {"wrong-magic", "good-labels", NB_ERR_FORMAT, "wrong-magic",
     "not an IDX images file (magic 0xdeadbeef)"},
    {"good-labels", "good-labels", NB_ERR_FORMAT, "good-labels",
     "not an IDX images file (magic 0x00000801: 1 dimension, 3 expected)"},
    {"good-images", "good-images", NB_ERR_FORMAT, "good-images",
     "not an IDX labels file (magic 0x00000803: 3 dimensions, 1 expected)"},
    {"float-images", "good-labels", NB_ERR_FORMAT, "float-images",
     "not an IDX images file (magic 0x00000d03: float32 values, uint8 expected)"},
    {"short-magic", "good-labels", NB_ERR_FORMAT, "short-magic", "truncated: 16 bytes expected, 3 found"},
    {"truncated-header", "good-labels", NB_ERR_FORMAT, "truncated-header",
     "truncated: 16 bytes expected, 10 found"},
    {"truncated-images", "good-labels", NB_ERR_FORMAT, "truncated-images",
     "truncated: 76 bytes expected, 75 found"},
    {"good-images", "truncated-labels", NB_ERR_FORMAT, "truncated-labels",
     "truncated: 11 bytes expected, 10 found"},
    {"good-images", "two-labels", NB_ERR_FORMAT, "good-images", "3 images but "},
    {"zero-rows", "good-labels", NB_ERR_FORMAT, "zero-rows", "empty images (0x5 pixels)"},
    {"zero-count", "good-labels", NB_ERR_FORMAT, "zero-count", "no images (count 0)"},
    {"huge-count", "good-labels", NB_ERR_FORMAT, "huge-count",
     "truncated: 3367254359296 bytes expected, 800 found"},
    {"huge-image", "good-labels", NB_ERR_FORMAT, "huge-image",
     "images of 65536x65536 pixels are too large (at most 2^24 pixels)"},
    {"huge-rows-cols", "good-labels", NB_ERR_FORMAT, "huge-rows-cols", /* found by fuzzing */
     "images of 4294967295x4294967295 pixels are too large (at most 2^24 pixels)"},
    {"trailing-images", "good-labels", NB_ERR_FORMAT, "trailing-images",
     "trailing data: 76 bytes expected, 79 found"},
    {"good-images", "trailing-labels", NB_ERR_FORMAT, "trailing-labels",
     "trailing data: 11 bytes expected, 12 found"},
    {"corrupt-crc.gz", "good-labels", NB_ERR_FORMAT, "corrupt-crc.gz",
     "corrupt gzip data: incorrect data check"},
    {"corrupt-deflate.gz", "good-labels", NB_ERR_FORMAT, "corrupt-deflate.gz",
     "corrupt gzip data: invalid block type"},
    {"truncated-images.gz", "good-labels", NB_ERR_FORMAT, "truncated-images.gz", "truncated gzip data"},
    {"gz-then-garbage.gz", "good-labels", NB_ERR_FORMAT, "gz-then-garbage.gz",
     "corrupt gzip data: incorrect header check"},
    {"missing", "good-labels", NB_ERR_IO, "missing", "No such file or directory"},
    {"good-images", "missing", NB_ERR_IO, "missing", "No such file or directory"},
    {".", "good-labels", NB_ERR_IO, ".", "is a directory"},
};

START_TEST(test_idx_malformed)
{
    const bad_idx *b = &bad_idxs[_i];
    char images[1024], labels[1024], want[1200];
    snprintf(images, sizeof images, "%s/%s", fixture("idx/bad"), b->images);
    snprintf(labels, sizeof labels, "%s/%s", fixture("idx/bad"), b->labels);
    snprintf(want, sizeof want, "%s/%s: %s", fixture("idx/bad"), b->file, b->msg);
    nb_ctx *ctx = nb_ctx_new();
    ck_assert_ptr_null(nb_dataset_load_idx(ctx, images, labels));
    tst_assert_error(ctx, b->code, want);
    nb_ctx_free(ctx);
}
END_TEST

/* The count mismatch names both files and both counts. */
START_TEST(test_idx_count_mismatch)
{
    nb_ctx *ctx = nb_ctx_new();
    char images[1024], labels[1024], want[2100];
    snprintf(images, sizeof images, "%s", fixture("idx/bad/good-images"));
    snprintf(labels, sizeof labels, "%s", fixture("idx/bad/two-labels"));
    ck_assert_ptr_null(nb_dataset_load_idx(ctx, images, labels));
    snprintf(want, sizeof want, "%s: 3 images but %s: 2 labels", images, labels);
    tst_assert_error(ctx, NB_ERR_FORMAT, want);
    ck_assert_ptr_null(nb_dataset_load_idx(ctx, NULL, labels));
    tst_assert_error(ctx, NB_ERR_ARG, "dataset_load_idx: images path is NULL");
    nb_ctx_free(ctx);
}
END_TEST

/* The in-memory parser the fuzzer drives: every prefix of a valid file,
 * raw and gzipped, is an error naming the truncation. */
START_TEST(test_idx_parse_prefixes)
{
    nb_ctx *ctx = nb_ctx_new();
    static const char *const names[] = {"idx/bad/good-images", "idx/bad/good-images.gz"};
    for (int f = 0; f < 2; f++) {
        FILE *fp = fopen(fixture(names[f]), "rb");
        ck_assert_ptr_nonnull(fp);
        uint8_t buf[256];
        size_t len = fread(buf, 1, sizeof buf, fp);
        fclose(fp);
        int64_t dims[3];
        uint8_t *pix = nbi_idx_parse(ctx, buf, len, "mem", 3, dims);
        ck_assert_msg(pix != NULL, "%s", nb_errmsg(ctx));
        ck_assert(dims[0] == 3 && dims[1] == 4 && dims[2] == 5);
        ck_assert_int_eq(pix[59], 27);
        nbi_free(ctx, pix);
        for (size_t n = 0; n < len; n++) {
            ck_assert_ptr_null(nbi_idx_parse(ctx, buf, n, "mem", 3, dims));
            ck_assert_int_eq(nb_error(ctx), NB_ERR_FORMAT);
            ck_assert_msg(strstr(nb_errmsg(ctx), "mem: truncated") == nb_errmsg(ctx),
                          "%zu bytes: %s", n, nb_errmsg(ctx));
        }
    }
    ck_assert_ptr_null(nbi_idx_parse(ctx, "", 0, "mem", 2, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "idx: 2 dimensions (1 or 3)");
    nb_ctx_free(ctx);
}
END_TEST

/* Only regular files: a device has no end and a pipe no size, and a FIFO
 * with no writer is refused at once instead of waited on; a symlink is
 * what it points to.  Nothing is allocated for them. */
START_TEST(test_idx_not_regular)
{
    nb_ctx *ctx = nb_ctx_new();
    char dir[64], link[128], fifo[128], want[300];
    snprintf(dir, sizeof dir, "/tmp/nabla-idx-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(link, sizeof link, "%s/train-images-idx3-ubyte", dir);
    ck_assert_int_eq(symlink("/dev/zero", link), 0);
    snprintf(fifo, sizeof fifo, "%s/train-labels-idx1-ubyte", dir);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    const char *labels = fixture("idx/raw/train-labels-idx1-ubyte");
    const char *images = fixture("idx/raw/train-images-idx3-ubyte");
    uint64_t allocs = nb_alloc_count(ctx);
    const char *cases[][3] = {{"/dev/zero", labels, "/dev/zero"},
                              {link, labels, link},
                              {images, fifo, fifo},
                              {images, "/dev/null", "/dev/null"}};
    for (int i = 0; i < 4; i++) {
        ck_assert_ptr_null(nb_dataset_load_idx(ctx, cases[i][0], cases[i][1]));
        snprintf(want, sizeof want, "%s: not a regular file", cases[i][2]);
        tst_assert_error(ctx, NB_ERR_IO, want);
        if (i < 2)
            ck_assert_uint_eq(nb_alloc_count(ctx), allocs);
    }
    unlink(link);
    unlink(fifo);
    rmdir(dir);
    nb_ctx_free(ctx);
}
END_TEST

/* malloc that remembers its largest request. */
static void *largest_alloc(void *ud, size_t size)
{
    size_t *largest = ud;
    if (size > *largest)
        *largest = size;
    return malloc(size);
}

static void largest_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

/* Writes an IDX images header for n images of 28x28 and n * 784 zeros,
 * gzipped or not, and an IDX labels file of n zeros beside it. */
static void write_zeros(const char *images, const char *labels, uint32_t n, bool gzip)
{
    uint8_t head[16] = {0, 0, 8, 3, n >> 24, n >> 16 & 255, n >> 8 & 255, n & 255,
                        0, 0, 0, 28, 0, 0, 0, 28};
    static const uint8_t zeros[28 * 28];
    if (gzip) {
        gzFile gz = gzopen(images, "wb9");
        ck_assert_ptr_nonnull(gz);
        ck_assert_int_eq(gzwrite(gz, head, 16), 16);
        for (uint32_t i = 0; i < n; i++)
            ck_assert_int_eq(gzwrite(gz, zeros, sizeof zeros), (int)sizeof zeros);
        ck_assert_int_eq(gzclose(gz), Z_OK);
    } else {
        FILE *f = fopen(images, "wb");
        ck_assert_ptr_nonnull(f);
        fwrite(head, 1, 16, f);
        for (uint32_t i = 0; i < n; i++)
            fwrite(zeros, 1, sizeof zeros, f);
        ck_assert_int_eq(fclose(f), 0);
    }
    FILE *f = fopen(labels, "wb");
    ck_assert_ptr_nonnull(f);
    uint8_t lhead[8] = {0, 0, 8, 1, n >> 24, n >> 16 & 255, n >> 8 & 255, n & 255};
    fwrite(lhead, 1, 8, f);
    for (uint32_t i = 0; i < n; i++)
        fputc(0, f);
    ck_assert_int_eq(fclose(f), 0);
}

/* What an IDX header declares is checked against the memory limit before
 * it is allocated: 10000 images of 28x28 (7.5 MiB), raw or in a gzip of
 * 8 KB (as one of 7.6 MB inflates to 7.8 GB), are refused under a limit
 * of 4 MiB, nothing larger than the reader's 64 KiB input buffer being
 * allocated, and read whole under 64 MiB. */
START_TEST(test_idx_memory_limit)
{
    size_t largest = 0;
    nb_allocator a = {largest_alloc, largest_free, &largest};
    nb_ctx *ctx = nb_ctx_new_with(&a);
    char dir[64], images[128], labels[128], want[400];
    snprintf(dir, sizeof dir, "/tmp/nabla-idx-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte", dir);
    for (int gz = 0; gz < 2; gz++) {
        snprintf(images, sizeof images, "%s/train-images-idx3-ubyte%s", dir, gz ? ".gz" : "");
        write_zeros(images, labels, 10000, gz);
        if (gz) {
            struct stat st;
            ck_assert_int_eq(stat(images, &st), 0);
            ck_assert_int_lt(st.st_size, 20000);
        }
        nb_ctx_set_memory_limit(ctx, 4 << 20);
        largest = 0;
        ck_assert_ptr_null(nb_dataset_load(ctx, dir, true));
        snprintf(want, sizeof want, "%s: holding the 10000 images of 28x28 its header declares "
                 "needs 7.5 MiB, more than the memory limit of 4.0 MiB", images);
        tst_assert_error(ctx, NB_ERR_NOMEM, want);
        ck_assert_uint_le(largest, 65536);
        nb_ctx_set_memory_limit(ctx, 64 << 20);
        nb_dataset *ds = nb_dataset_load(ctx, dir, true);
        ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
        ck_assert_int_eq(nb_dataset_size(ds), 10000);
        nb_dataset_free(ds);
        unlink(images);
    }
    unlink(labels);
    rmdir(dir);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- data set directories ---------------------------------------------- */

START_TEST(test_load_dirs)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = nb_dataset_load(ctx, fixture("idx/raw"), true);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    check_train(ds);
    nb_dataset_free(ds);
    ds = nb_dataset_load(ctx, fixture("idx/raw"), false);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    check_test(ds);
    nb_dataset_free(ds);
    ds = nb_dataset_load(ctx, fixture("idx/gz"), true);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    check_train(ds);
    nb_dataset_free(ds);
    ds = nb_dataset_load(ctx, fixture("idx/gz"), false);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    check_test(ds);
    nb_dataset_free(ds);
    /* Raw images preferred to the .gz beside them (5 white images); the
     * labels only gzipped. */
    ds = nb_dataset_load(ctx, fixture("idx/mixed"), true);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    check_train(ds);
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_load_dir_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    char want[1200];
    ck_assert_ptr_null(nb_dataset_load(ctx, "/nonexistent/data", true));
    tst_assert_error(ctx, NB_ERR_IO, "/nonexistent/data: No such file or directory");
    ck_assert_ptr_null(nb_dataset_load(ctx, fixture("idx/raw/train-labels-idx1-ubyte"), true));
    tst_assert_error(ctx, NB_ERR_IO, "train-labels-idx1-ubyte: not a directory");
    ck_assert_ptr_null(nb_dataset_load(ctx, fixture("idx/bad"), true));
    snprintf(want, sizeof want, "%s: no train-images-idx3-ubyte(.gz), no CIFAR files and no train/ folder of PNG classes",
             fixture("idx/bad"));
    tst_assert_error(ctx, NB_ERR_IO, want);
    ck_assert_ptr_null(nb_dataset_load(ctx, fixture("idx/mixed"), false));
    snprintf(want, sizeof want, "%s: no t10k-images-idx3-ubyte(.gz), no CIFAR files and no test/ folder of PNG classes",
             fixture("idx/mixed"));
    tst_assert_error(ctx, NB_ERR_IO, want);
    ck_assert_ptr_null(nb_dataset_load(ctx, fixture("idx/images-only"), true));
    snprintf(want, sizeof want, "%s: train-images-idx3-ubyte found but no train-labels-idx1-ubyte(.gz)",
             fixture("idx/images-only"));
    tst_assert_error(ctx, NB_ERR_IO, want);
    ck_assert_ptr_null(nb_dataset_load(ctx, NULL, true));
    tst_assert_error(ctx, NB_ERR_ARG, "dataset_load: dir is NULL");
    nb_ctx_free(ctx);
}
END_TEST

/* tests/data/png/shapes: classes bar, dot, ring (labels 0, 1, 2), the
 * figure's gray level by file: train bar/a 200 (gray 8), bar/b 85 (gray and
 * alpha), dot/a 60 (gray with tRNS), dot/b 128 (16-bit 32896), dot/c 255
 * (16-bit 65535), ring/a 100 (interlaced); test 10, 20, 30. */
START_TEST(test_load_png_folders)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = nb_dataset_load(ctx, fixture("png/shapes"), true);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_dataset_size(ds), 6);
    int64_t shape[3];
    nb_dataset_shape(ds, shape);
    ck_assert(shape[0] == 1 && shape[1] == 28 && shape[2] == 28);
    ck_assert_int_eq(nb_dataset_num_classes(ds), 3);
    ck_assert_str_eq(nb_dataset_class_name(ds, 0), "bar");
    ck_assert_str_eq(nb_dataset_class_name(ds, 1), "dot");
    ck_assert_str_eq(nb_dataset_class_name(ds, 2), "ring");
    ck_assert_ptr_null(nb_dataset_class_name(ds, 3));
    ck_assert_ptr_null(nb_dataset_class_name(ds, -1));
    const int32_t labels[6] = {0, 0, 1, 1, 1, 2};
    const int level[6] = {200, 85, 60, 128, 255, 100};
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(nb_dataset_label(ds, i), labels[i]);
        const uint8_t *img = nb_dataset_image(ds, i);
        ck_assert_int_eq(img[0], 0); /* the corner is background */
        if (labels[i] == 0)          /* bar: columns 10..17 */
            ck_assert(img[5 * 28 + 10] == level[i] && img[5 * 28 + 9] == 0);
        else if (labels[i] == 1)     /* dot: radius 6 around (13.5, 13.5) */
            ck_assert(img[13 * 28 + 13] == level[i] && img[13 * 28 + 21] == 0);
        else                         /* ring: radius 8 to 11 */
            ck_assert(img[13 * 28 + 23] == level[i] && img[13 * 28 + 13] == 0);
    }
    nb_dataset_free(ds);
    ds = nb_dataset_load(ctx, fixture("png/shapes"), false);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_dataset_size(ds), 3);
    ck_assert_int_eq(nb_dataset_image(ds, 0)[5 * 28 + 10], 10);
    ck_assert_int_eq(nb_dataset_image(ds, 1)[13 * 28 + 13], 20);
    ck_assert_int_eq(nb_dataset_image(ds, 2)[13 * 28 + 23], 30);
    ck_assert_int_eq(nb_dataset_label(ds, 2), 2);
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
}
END_TEST

/* tests/data/png/shapes-rgb: the figures in colour, kept as 3 planes R, G,
 * B: train bar/a (255, 0, 0) RGB, bar/b (0, 255, 0) RGBA (its alpha
 * dropped), dot/a (30, 60, 90) palette, dot/b (255, 128, 0) 16-bit RGB,
 * ring/a (10, 20, 30) interlaced; test (1, 2, 3), (4, 5, 6), (7, 8, 9). */
START_TEST(test_load_colour_folders)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = nb_dataset_load(ctx, fixture("png/shapes-rgb"), true);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_dataset_size(ds), 5);
    int64_t shape[3];
    nb_dataset_shape(ds, shape);
    ck_assert(shape[0] == 3 && shape[1] == 28 && shape[2] == 28);
    const int rgb[5][3] = {{255, 0, 0}, {0, 255, 0}, {30, 60, 90}, {255, 128, 0}, {10, 20, 30}};
    const int at[5] = {5 * 28 + 10, 5 * 28 + 10, 13 * 28 + 13, 13 * 28 + 13, 13 * 28 + 23};
    for (int i = 0; i < 5; i++) {
        const uint8_t *img = nb_dataset_image(ds, i);
        for (int c = 0; c < 3; c++) {
            ck_assert_int_eq(img[c * 784 + at[i]], rgb[i][c]);
            ck_assert_int_eq(img[c * 784], 0);
        }
    }
    ck_assert_int_eq(nb_dataset_label(ds, 4), 2);
    /* A gray batch is the mean of the channels, a colour one the planes. */
    nb_tensor *gray = nb_tensor_new(ctx, NB_F64, 4, (int64_t[]){1, 1, 28, 28});
    nb_tensor *colour = nb_tensor_new(ctx, NB_F64, 4, (int64_t[]){1, 3, 28, 28});
    ck_assert_int_eq(nb_dataset_batch(ds, (int64_t[]){2}, 1, gray, NULL, NULL, NULL), NB_OK);
    ck_assert_double_eq_tol(nb_get(gray, at[2]), (30 + 60 + 90) / 3.0 / 255, 1e-15);
    const double mean[3] = {0.5, 0.25, 0}, std[3] = {0.5, 0.25, 2};
    ck_assert_int_eq(nb_dataset_batch(ds, (int64_t[]){2}, 1, colour, NULL, mean, std), NB_OK);
    for (int c = 0; c < 3; c++)
        ck_assert_double_eq_tol(nb_get(colour, c * 784 + at[2]),
                                (rgb[2][c] / 255.0 - mean[c]) / std[c], 1e-15);
    nb_dataset_free(ds);
    ds = nb_dataset_load(ctx, fixture("png/shapes-rgb"), false);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    for (int i = 0; i < 3; i++)
        for (int c = 0; c < 3; c++)
            ck_assert_int_eq(nb_dataset_image(ds, i)[c * 784 + at[2 * i]], 3 * i + c + 1);
    nb_dataset_free(ds);
    /* Gray data in a colour batch: the channel three times. */
    ds = nb_dataset_load(ctx, fixture("png/shapes"), true);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_dataset_batch(ds, (int64_t[]){0}, 1, colour, NULL, mean, std), NB_OK);
    for (int c = 0; c < 3; c++)
        ck_assert_double_eq_tol(nb_get(colour, c * 784 + at[0]), (200 / 255.0 - mean[c]) / std[c],
                                1e-15);
    nb_dataset_free(ds);
    nb_tensor_free(gray);
    nb_tensor_free(colour);
    /* Gray and colour images together are refused. */
    char want[2200], a[1024], b[1024];
    ck_assert_ptr_null(nb_dataset_load(ctx, fixture("png/mixed-channels"), true));
    snprintf(a, sizeof a, "%s", fixture("png/mixed-channels/train/a/1.png"));
    snprintf(b, sizeof b, "%s", fixture("png/mixed-channels/train/b/1.png"));
    snprintf(want, sizeof want, "%s: a colour image, but %s is gray (all must have the same "
             "channels)", b, a);
    tst_assert_error(ctx, NB_ERR_FORMAT, want);
    nb_ctx_free(ctx);
}
END_TEST

static void write_png(nb_ctx *ctx, const char *path, int h, int w)
{
    nb_tensor *t = nb_tensor_new(ctx, NB_F32, 2, (int64_t[]){h, w});
    ck_assert_int_eq(nb_png_write(ctx, path, t), NB_OK);
    nb_tensor_free(t);
}

START_TEST(test_png_folder_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    char want[2200], a[1024], b[1024];
    ck_assert_ptr_null(nb_dataset_load(ctx, fixture("png/mixed-sizes"), true));
    snprintf(b, sizeof b, "%s", fixture("png/mixed-sizes/train/b/1.png"));
    snprintf(a, sizeof a, "%s", fixture("png/mixed-sizes/train/a/1.png"));
    snprintf(want, sizeof want, "%s: image of 27x28 pixels, but %s has 28x28 (all must be one size)", b, a);
    tst_assert_error(ctx, NB_ERR_FORMAT, want);

    /* Folders git cannot hold (empty ones) are made here. */
    char dir[64], p[256];
    snprintf(dir, sizeof dir, "/tmp/nabla-dataset-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(p, sizeof p, "%s/train", dir);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/test", dir);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/train/cat", dir);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/train/dog", dir);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/train/cat/1.PNG", dir);
    write_png(ctx, p, 3, 3);
    ck_assert_ptr_null(nb_dataset_load(ctx, dir, true));
    snprintf(want, sizeof want, "%s/train/dog: no PNG files", dir);
    tst_assert_error(ctx, NB_ERR_FORMAT, want);
    ck_assert_ptr_null(nb_dataset_load(ctx, dir, false));
    snprintf(want, sizeof want, "%s/test: no class folders", dir);
    tst_assert_error(ctx, NB_ERR_FORMAT, want);
    /* A corrupt PNG in a class stops the load with its own message. */
    snprintf(p, sizeof p, "%s/train/dog/bad.png", dir);
    FILE *f = fopen(p, "wb");
    fputs("not a png", f);
    fclose(f);
    ck_assert_ptr_null(nb_dataset_load(ctx, dir, true));
    snprintf(want, sizeof want, "%s: not a PNG file", p);
    tst_assert_error(ctx, NB_ERR_FORMAT, want);
    /* Fixed, it loads: 1.PNG counts as a PNG. */
    unlink(p);
    snprintf(p, sizeof p, "%s/train/dog/2.png", dir);
    write_png(ctx, p, 3, 3);
    nb_dataset *ds = nb_dataset_load(ctx, dir, true);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_dataset_size(ds), 2);
    ck_assert_str_eq(nb_dataset_class_name(ds, 1), "dog");
    nb_dataset_free(ds);

    unlink(p);
    snprintf(p, sizeof p, "%s/train/cat/1.PNG", dir);
    unlink(p);
    const char *sub[] = {"train/cat", "train/dog", "train", "test", ""};
    for (int k = 0; k < 5; k++) {
        snprintf(p, sizeof p, "%s/%s", dir, sub[k]);
        ck_assert_int_eq(rmdir(p), 0);
    }
    nb_ctx_free(ctx);
}
END_TEST

/* dir/split/class/1.png for each class named in `classes` (space
 * separated), of 3x3 pixels of gray `level`. */
static void make_split(nb_ctx *ctx, const char *dir, const char *split, const char *classes,
                       double level)
{
    char p[512], names[256];
    snprintf(p, sizeof p, "%s/%s", dir, split);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    snprintf(names, sizeof names, "%s", classes);
    for (char *c = strtok(names, " "); c; c = strtok(NULL, " ")) {
        snprintf(p, sizeof p, "%s/%s/%s", dir, split, c);
        ck_assert_int_eq(mkdir(p, 0700), 0);
        snprintf(p, sizeof p, "%s/%s/%s/1.png", dir, split, c);
        nb_tensor *t = nb_tensor_full(ctx, NB_F32, 2, (int64_t[]){3, 3}, level);
        ck_assert_int_eq(nb_png_write(ctx, p, t), NB_OK);
        nb_tensor_free(t);
    }
}

static void remove_tree(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    ck_assert_int_eq(system(cmd), 0);
}

/* A folder of PNGs is checked against the memory limit at its first image,
 * whose size all share, before the pixels are allocated: 20 images of
 * 28x28 (15,680 bytes) under 10,000 (which the first image, read as a
 * float64 tensor of 6,272 bytes, fits). */
START_TEST(test_png_folder_memory_limit)
{
    nb_ctx *ctx = nb_ctx_new();
    char dir[64], p[256];
    snprintf(dir, sizeof dir, "/tmp/nabla-pngmem-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(p, sizeof p, "%s/train", dir);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    snprintf(p, sizeof p, "%s/train/a", dir);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    nb_tensor *t = nb_tensor_full(ctx, NB_F32, 2, (int64_t[]){28, 28}, 0.5);
    for (int i = 0; i < 20; i++) {
        snprintf(p, sizeof p, "%s/train/a/%02d.png", dir, i);
        ck_assert_int_eq(nb_png_write(ctx, p, t), NB_OK);
    }
    nb_tensor_free(t);
    nb_ctx_set_memory_limit(ctx, 10000);
    ck_assert_ptr_null(nb_dataset_load(ctx, dir, true));
    char want[400];
    snprintf(want, sizeof want, "%s/train/a/00.png: holding 20 images of 1x28x28 (this one's "
             "size) needs 15.3 KiB, more than the memory limit of 9.8 KiB", dir);
    tst_assert_error(ctx, NB_ERR_NOMEM, want);
    nb_ctx_set_memory_limit(ctx, 20000);
    nb_dataset *ds = nb_dataset_load(ctx, dir, true);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_dataset_size(ds), 20);
    nb_dataset_free(ds);
    remove_tree(dir);
    nb_ctx_free(ctx);
}
END_TEST

/* The splits' class folders must be the same names: a label is a folder's
 * place among them, so a folder missing from test/ would give its
 * successors' images the wrong labels, and an extra one a class the model
 * never learned.  Either way, from either split, one line naming it. */
static const struct {
    const char *train, *test;
    const char *lacking, *name, *having; /* NULL: both load */
} splits[] = {
    {"bag coat dress", "bag dress", "test", "coat", "train"},
    {"bag dress", "bag coat dress", "train", "coat", "test"},
    {"bag coat", "bag coat zebra", "train", "zebra", "test"},
    {"bag coat", "bag coats", "test", "coat", "train"},
    {"aa bb", "aa bb", NULL, NULL, NULL},
};

START_TEST(test_png_splits_match)
{
    nb_ctx *ctx = nb_ctx_new();
    char dir[64], want[600];
    snprintf(dir, sizeof dir, "/tmp/nabla-splits-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_split(ctx, dir, "train", splits[_i].train, 0.2);
    make_split(ctx, dir, "test", splits[_i].test, 0.6);
    if (splits[_i].lacking)
        snprintf(want, sizeof want, "%s/%s: no class folder \"%s\" as in %s/%s (the splits need "
                 "the same class folders)", dir, splits[_i].lacking, splits[_i].name, dir,
                 splits[_i].having);
    for (int train = 0; train < 2; train++) {
        nb_dataset *ds = nb_dataset_load(ctx, dir, train);
        if (splits[_i].lacking) {
            ck_assert_ptr_null(ds);
            tst_assert_error(ctx, NB_ERR_FORMAT, want);
        } else {
            ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
            ck_assert_str_eq(nb_dataset_class_name(ds, 1), "bb");
            ck_assert_int_eq(nb_dataset_label(ds, 1), 1);
        }
        nb_dataset_free(ds);
    }
    remove_tree(dir);
    nb_ctx_free(ctx);
}
END_TEST

/* DIR/val/ follows the training images as the data's own validation
 * split, class by class; a class may have no image there, but its folders
 * must be the training split's; the test split never includes it.  Out of
 * memory at any allocation, the load says so. */
START_TEST(test_png_val_folder)
{
    nb_ctx *ctx = nb_ctx_new();
    char dir[64], p[256], want[600];
    snprintf(dir, sizeof dir, "/tmp/nabla-val-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_split(ctx, dir, "train", "a b c", 0.2);
    make_split(ctx, dir, "test", "a b c", 0.6);
    make_split(ctx, dir, "val", "a c", 1.0);
    snprintf(p, sizeof p, "%s/val/b", dir);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    nb_dataset *ds = nb_dataset_load(ctx, dir, true);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_dataset_size(ds), 5);
    ck_assert_int_eq(nb_dataset_validation(ds), 2);
    const int32_t labels[] = {0, 1, 2, 0, 2};
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(nb_dataset_label(ds, i), labels[i]);
        ck_assert_int_eq(nb_dataset_image(ds, i)[0], i < 3 ? 51 : 255);
    }
    nb_dataset_free(ds);
    ds = nb_dataset_load(ctx, dir, false);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_dataset_size(ds), 3);
    ck_assert_int_eq(nb_dataset_validation(ds), 0);
    nb_dataset_free(ds);
    for (int k = 0;; k++) {
        tst_failing f = {k};
        nb_allocator a = {tst_failing_alloc, tst_failing_free, &f};
        nb_ctx *c = nb_ctx_new_with(&a);
        if (!c)
            continue;
        ds = nb_dataset_load(c, dir, true);
        if (ds) {
            ck_assert_int_eq(nb_dataset_validation(ds), 2);
            nb_dataset_free(ds);
            nb_ctx_free(c);
            break;
        }
        ck_assert_msg(nb_error(c) == NB_ERR_NOMEM, "k = %d: %s", k, nb_errmsg(c));
        nb_ctx_free(c);
    }
    /* A class folder of val/ only, or one without images in val/ at all. */
    snprintf(p, sizeof p, "%s/val/d", dir);
    ck_assert_int_eq(mkdir(p, 0700), 0);
    ck_assert_ptr_null(nb_dataset_load(ctx, dir, true));
    snprintf(want, sizeof want, "%s/train: no class folder \"d\" as in %s/val (the splits need "
             "the same class folders)", dir, dir);
    tst_assert_error(ctx, NB_ERR_FORMAT, want);
    ck_assert_int_eq(rmdir(p), 0);
    remove_tree(dir);
    nb_ctx_free(ctx);
}
END_TEST

/* Only the other split's folder names are read: a bad image there does not
 * stop this split, and a split alone (or beside an empty one) loads. */
START_TEST(test_png_splits_names_only)
{
    nb_ctx *ctx = nb_ctx_new();
    char dir[64], p[256];
    snprintf(dir, sizeof dir, "/tmp/nabla-splits-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    make_split(ctx, dir, "train", "a b", 0.2);
    nb_dataset *ds = nb_dataset_load(ctx, dir, true);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    nb_dataset_free(ds);
    make_split(ctx, dir, "test", "a b", 0.6);
    snprintf(p, sizeof p, "%s/test/b/bad.png", dir);
    FILE *f = fopen(p, "wb");
    fputs("not a png", f);
    fclose(f);
    ds = nb_dataset_load(ctx, dir, true);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_dataset_size(ds), 2);
    nb_dataset_free(ds);
    remove_tree(dir);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- select, shuffle, batch -------------------------------------------- */

static nb_dataset *load_train(nb_ctx *ctx)
{
    nb_dataset *ds = nb_dataset_load(ctx, fixture("idx/raw"), true);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    return ds;
}

START_TEST(test_select)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = load_train(ctx);
    int64_t idx[20];
    ck_assert_int_eq(nb_dataset_select(ds, 2, (int32_t[]){1, 0}, idx), 4);
    ck_assert(idx[0] == 0 && idx[1] == 7 && idx[2] == 10 && idx[3] == 17);
    ck_assert_int_eq(nb_dataset_select(ds, 1, (int32_t[]){9}, idx), 2);
    ck_assert(idx[0] == 3 && idx[1] == 13);
    ck_assert_int_eq(nb_dataset_select(ds, 1, (int32_t[]){10}, idx), 0);
    ck_assert_int_eq(nb_dataset_select(ds, 0, (int32_t[]){0}, idx), 0);
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_shuffle)
{
    /* Seed 7, 10 indices: computed with an independent Python version of
     * the generator and of the shuffle (for i = n-1..1: j = below(i+1)). */
    int64_t idx[10], again[10];
    for (int i = 0; i < 10; i++)
        idx[i] = again[i] = i;
    nb_rng rng;
    nb_rng_seed(&rng, 7);
    nb_shuffle(idx, 10, &rng);
    const int64_t want[10] = {8, 3, 9, 0, 7, 2, 1, 6, 5, 4};
    for (int i = 0; i < 10; i++)
        ck_assert_int_eq(idx[i], want[i]);
    nb_rng_seed(&rng, 7);
    nb_shuffle(again, 10, &rng);
    ck_assert(memcmp(idx, again, sizeof idx) == 0);

    /* A permutation of a bigger range. */
    int64_t big[1000];
    bool seen[1000] = {false};
    for (int i = 0; i < 1000; i++)
        big[i] = i;
    nb_shuffle(big, 1000, &rng);
    int moved = 0;
    for (int i = 0; i < 1000; i++) {
        ck_assert(big[i] >= 0 && big[i] < 1000 && !seen[big[i]]);
        seen[big[i]] = true;
        moved += big[i] != i;
    }
    ck_assert_int_gt(moved, 900);
    /* 0 and 1 elements draw nothing. */
    nb_rng before = rng;
    nb_shuffle(big, 1, &rng);
    nb_shuffle(big, 0, &rng);
    ck_assert(memcmp(&before, &rng, sizeof rng) == 0);
}
END_TEST

/* Image 0 at (2, 9) is 51 and image 6 at (26, 27) is 255; image 6's label
 * is 8. */
START_TEST(test_batch_values)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = load_train(ctx);
    const int64_t idx[2] = {0, 6};
    int32_t labels[2] = {-1, -1};
    for (int d = 0; d < 2; d++) {
        nb_dtype dtype = d ? NB_F64 : NB_F32;
        double tol = d ? 1e-15 : 1e-7;
        nb_tensor *x = nb_tensor_new(ctx, dtype, 4, (int64_t[]){2, 1, 28, 28});
        ck_assert_int_eq(nb_dataset_batch(ds, idx, 2, x, labels, 0, 0), NB_OK);
        ck_assert(labels[0] == 0 && labels[1] == 8);
        ck_assert(fabs(nb_get(x, 2 * 28 + 9) - 0.2) <= tol);
        ck_assert(nb_get(x, 784 + 26 * 28 + 27) == 1.0);
        ck_assert(nb_get(x, 0) == 0.0);
        for (int k = 0; k < 784; k++)
            ck_assert(fabs(nb_get(x, 784 + k) - train_pixel(6, k / 28, k % 28) / 255.0) <= tol);
        /* (v - 0.5) / 0.25: 0.2 -> -1.2, 1 -> 2, 0 -> -2. */
        ck_assert_int_eq(nb_dataset_batch(ds, idx, 2, x, NULL, (double[]){0.5}, (double[]){0.25}), NB_OK);
        ck_assert(fabs(nb_get(x, 2 * 28 + 9) + 1.2) <= 4 * tol);
        ck_assert(nb_get(x, 784 + 26 * 28 + 27) == 2.0);
        ck_assert(nb_get(x, 0) == -2.0);
        nb_tensor_free(x);
    }
    /* Any shape of the right size: [2, 784] and [1568]. */
    nb_tensor *flat = nb_tensor_new(ctx, NB_F32, 2, (int64_t[]){2, 784});
    ck_assert_int_eq(nb_dataset_batch(ds, idx, 2, flat, NULL, 0, 0), NB_OK);
    ck_assert(nb_get(flat, 784 + 26 * 28 + 27) == 1.0);
    nb_tensor *line = nb_tensor_new(ctx, NB_F64, 1, (int64_t[]){1568});
    ck_assert_int_eq(nb_dataset_batch(ds, (int64_t[]){6, 6}, 2, line, NULL, 0, 0), NB_OK);
    ck_assert(nb_get(line, 26 * 28 + 27) == 1.0 && nb_get(line, 784 + 26 * 28 + 27) == 1.0);
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
}
END_TEST

/* in [h, w] shifted by (dy, dx): out(y, x) = in(y + dy, x + dx), outside
 * `fill` (edge false) or the nearest edge pixel. */
static double shifted(const double *in, int h, int w, int y, int x, int dy, int dx, bool edge,
                      double fill)
{
    int sy = y + dy, sx = x + dx;
    if (!edge && (sy < 0 || sy >= h || sx < 0 || sx >= w))
        return fill;
    sy = sy < 0 ? 0 : sy >= h ? h - 1 : sy;
    sx = sx < 0 ? 0 : sx >= w ? w - 1 : sx;
    return in[sy * w + sx];
}

/* The offset (dy, dx) in [-r, r] and flip that make out of the two planes
 * of in [2, h, w] (both moved alike), as index (dy + r) (2r + 1) + dx + r,
 * plus (2r + 1)^2 when flipped; -1 when none does. */
static int which_move(const double *in, const double *out, int h, int w, int r, bool edge,
                      const double *fill)
{
    int side = 2 * r + 1;
    for (int f = 0; f < 2; f++)
        for (int dy = -r; dy <= r; dy++)
            for (int dx = -r; dx <= r; dx++) {
                bool same = true;
                for (int c = 0; c < 2 && same; c++)
                    for (int y = 0; y < h && same; y++)
                        for (int x = 0; x < w && same; x++) {
                            int sx = f ? w - 1 - x : x; /* the flip comes after the shift */
                            same = out[(c * h + y) * w + x] ==
                                   shifted(in + c * h * w, h, w, y, sx, dy, dx, edge, fill[c]);
                        }
                if (same)
                    return f * side * side + (dy + r) * side + dx + r;
            }
    return -1;
}

/* Crops of the image padded with black, shifts repeating the edge, and
 * flips, each checked against the move it must be; over 1000 draws every
 * move happens, and the same seed and place draw the same. */
START_TEST(test_augment_moves)
{
    nb_ctx *ctx = nb_ctx_new();
    enum { H = 3, W = 4, N = 1000 };
    double in[2 * H * W];
    for (int i = 0; i < 2 * H * W; i++)
        in[i] = i + 1;
    const double black[2] = {-7, -8};
    nb_tensor *x = nb_tensor_new(ctx, _i ? NB_F32 : NB_F64, 4, (int64_t[]){1, 2, H, W});
    for (int mode = 0; mode < 3; mode++) {
        nb_augment aug = {0};
        if (mode == 0)
            aug.crop_padding = 1;
        else if (mode == 1)
            aug.translate = 2;
        aug.hflip = mode == 2 ? 1 : 0.5;
        int r = mode == 0 ? 1 : mode == 1 ? 2 : 0, side = 2 * r + 1;
        int seen[2 * 25] = {0}, kinds = 0;
        for (int k = 0; k < N; k++) {
            for (int i = 0; i < 2 * H * W; i++)
                nb_set(x, i, in[i]);
            ck_assert_int_eq(nb_augment_batch(x, H, W, &aug, 11, k, black), NB_OK);
            double out[2 * H * W];
            for (int i = 0; i < 2 * H * W; i++)
                out[i] = nb_get(x, i);
            int move = which_move(in, out, H, W, r, mode == 1, black);
            ck_assert_msg(move >= 0, "mode %d, draw %d: no move makes the result", mode, k);
            kinds += !seen[move]++;
        }
        /* Every offset, flipped or not, except that mode 2 always flips. */
        ck_assert_int_eq(kinds, mode == 2 ? 1 : 2 * side * side);
    }
    /* A batch of two draws as its examples would alone, at their places. */
    nb_augment aug = {.crop_padding = 2, .hflip = 0.5};
    nb_tensor *two = nb_tensor_new(ctx, x->dtype, 4, (int64_t[]){2, 2, H, W});
    for (int i = 0; i < 4 * H * W; i++)
        nb_set(two, i, in[i % (2 * H * W)] * (i < 2 * H * W ? 1 : -1));
    ck_assert_int_eq(nb_augment_batch(two, H, W, &aug, 5, 40, NULL), NB_OK);
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 2 * H * W; i++)
            nb_set(x, i, in[i] * (k ? -1 : 1));
        ck_assert_int_eq(nb_augment_batch(x, H, W, &aug, 5, 40 + k, NULL), NB_OK);
        for (int i = 0; i < 2 * H * W; i++)
            ck_assert(nb_get(x, i) == nb_get(two, k * 2 * H * W + i));
    }
    /* Out of range. */
    aug.hflip = 1.5;
    ck_assert_int_eq(nb_augment_batch(x, H, W, &aug, 5, 0, NULL), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "augment_batch: crop padding 2, translate 0, hflip 1.5");
    aug.hflip = 0;
    ck_assert_int_eq(nb_augment_batch(x, 5, W, &aug, 5, 0, NULL), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "augment_batch: 24 values for 1 examples of [C, 5, 4] images");
    nb_tensor_free(two);
    nb_tensor_free(x);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_batch_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = load_train(ctx);
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, 2, (int64_t[]){3, 784});
    ck_assert_int_eq(nb_dataset_batch(ds, (int64_t[]){0, 1}, 2, x, NULL, 0, 0), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG,
                     "dataset_batch: x of shape [3, 784] holds 2352 values, but 2 examples of [1, 28, 28] need 1568");
    int32_t labels[3] = {-1, -1, -1};
    ck_assert_int_eq(nb_dataset_batch(ds, (int64_t[]){0, 20, 1}, 3, x, labels, 0, 0), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "dataset_batch: idx[1] = 20 is out of range (20 examples)");
    ck_assert_int_eq(nb_dataset_batch(ds, (int64_t[]){-1, 0, 1}, 3, x, labels, 0, 0), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "dataset_batch: idx[0] = -1 is out of range (20 examples)");
    /* Nothing was written. */
    ck_assert(labels[0] == -1 && labels[2] == -1);
    for (int64_t k = 0; k < x->numel; k++)
        ck_assert(nb_get(x, k) == 0.0);
    ck_assert_int_eq(nb_dataset_batch(ds, (int64_t[]){0}, 0, x, NULL, 0, 0), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "dataset_batch: 0 examples (at least 1 needed)");
    ck_assert_int_eq(nb_dataset_batch(ds, (int64_t[]){0}, 1, NULL, NULL, 0, 0), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "dataset_batch: x is NULL");
    ck_assert_int_eq(nb_dataset_batch(NULL, (int64_t[]){0}, 1, x, NULL, 0, 0), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "dataset_batch: the data set is NULL");
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- data sets in memory and origins ----------------------------------- */

/* A copy of the caller's images and labels, drawn like any data set. */
START_TEST(test_from_memory)
{
    nb_ctx *ctx = nb_ctx_new();
    uint8_t px[3 * 2 * 3];
    for (int i = 0; i < 18; i++)
        px[i] = (uint8_t)(i * 15);
    int32_t labels[3] = {4, 0, 2};
    nb_dataset *ds = nb_dataset_from(ctx, 3, 1, 2, 3, px, labels);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    px[0] = 99;
    labels[0] = 1; /* copies: changing the caller's arrays changes nothing */
    ck_assert_int_eq(nb_dataset_size(ds), 3);
    int64_t shape[3];
    nb_dataset_shape(ds, shape);
    ck_assert(shape[0] == 1 && shape[1] == 2 && shape[2] == 3);
    ck_assert_int_eq(nb_dataset_num_classes(ds), 5);
    ck_assert_int_eq(nb_dataset_label(ds, 0), 4);
    ck_assert_int_eq(nb_dataset_image(ds, 0)[0], 0);
    ck_assert_int_eq(nb_dataset_image(ds, 2)[5], 17 * 15);
    ck_assert_ptr_null(nb_dataset_class_name(ds, 0));
    ck_assert_str_eq(nb_dataset_origin(ds), "memory");
    nb_tensor *x = nb_tensor_new(ctx, NB_F64, 3, (int64_t[]){1, 2, 3});
    int32_t l;
    ck_assert_int_eq(nb_dataset_batch(ds, (int64_t[]){1}, 1, x, &l, 0, 0), NB_OK);
    ck_assert_int_eq(l, 0);
    ck_assert_double_eq_tol(nb_get(x, 5), 165 / 255.0, 1e-15);
    nb_dataset_free(ds);

    ck_assert_ptr_null(nb_dataset_from(ctx, 0, 1, 2, 3, px, labels));
    tst_assert_error(ctx, NB_ERR_ARG,
                     "dataset_from: 0 images of [1, 2, 3] (at least 1, of 1 to 4 channels)");
    ck_assert_ptr_null(nb_dataset_from(ctx, 3, 5, 2, 3, px, labels));
    tst_assert_error(ctx, NB_ERR_ARG, "dataset_from: 3 images of [5, 2, 3]");
    ck_assert_ptr_null(nb_dataset_from(ctx, 3, 1, 1 << 13, 1 << 12, px, labels));
    tst_assert_error(ctx, NB_ERR_ARG, "are too large (at most 2^24 pixels)");
    ck_assert_ptr_null(nb_dataset_from(ctx, 3, 1, 2, 3, NULL, labels));
    tst_assert_error(ctx, NB_ERR_ARG, "dataset_from: images is NULL");
    labels[1] = -1;
    ck_assert_ptr_null(nb_dataset_from(ctx, 3, 1, 2, 3, px, labels));
    tst_assert_error(ctx, NB_ERR_ARG, "dataset_from: labels[1] = -1 is not a label");
    nb_tensor_free(x);
    nb_ctx_free(ctx);
}
END_TEST

/* Messages about a data set name where it came from. */
START_TEST(test_origin)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = nb_dataset_load(ctx, fixture("idx/gz"), true);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    ck_assert_str_eq(nb_dataset_origin(ds), fixture("idx/gz"));
    nb_dataset_free(ds);
    ds = nb_dataset_load_idx(ctx, fixture("idx/raw/train-images-idx3-ubyte"),
                             fixture("idx/raw/train-labels-idx1-ubyte"));
    ck_assert_str_eq(nb_dataset_origin(ds), fixture("idx/raw/train-images-idx3-ubyte"));
    nb_dataset_free(ds);
    ds = nb_dataset_load(ctx, fixture("png/shapes"), false);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    ck_assert_str_eq(nb_dataset_origin(ds), fixture("png/shapes"));
    nb_dataset_free(ds);
    ck_assert_str_eq(nb_dataset_origin(NULL), "");
    nb_ctx_free(ctx);
}
END_TEST

/* ---- allocation failure ------------------------------------------------ */

/* Fails the k-th allocation for every k of loading gzipped IDX files
 * (zlib's memory included) and a PNG folder: NB_ERR_NOMEM or success, no
 * leak. */
START_TEST(test_alloc_failure)
{
    static const char *const dirs[] = {"idx/gz", "idx/raw", "png/shapes"};
    for (int d = 0; d < 3; d++) {
        int k = 0;
        for (;; k++) {
            tst_failing f = {k};
            nb_allocator a = {tst_failing_alloc, tst_failing_free, &f};
            nb_ctx *ctx = nb_ctx_new_with(&a);
            if (!ctx)
                continue;
            nb_dataset *ds = nb_dataset_load(ctx, fixture(dirs[d]), true);
            if (!ds) {
                ck_assert_msg(nb_error(ctx) == NB_ERR_NOMEM, "%s, k = %d: %s", dirs[d], k,
                              nb_errmsg(ctx));
                ck_assert_str_eq(nb_status_str(nb_error(ctx)), "out of memory");
            }
            nb_dataset_free(ds);
            nb_ctx_free(ctx);
            if (ds)
                break;
        }
        ck_assert_int_gt(k, 5);
    }
}
END_TEST

Suite *tst_suite_dataset(void)
{
    Suite *s = suite_create("dataset");
    TCase *tc = tcase_create("idx");
    tcase_add_test(tc, test_idx_raw_and_gz);
    tcase_add_loop_test(tc, test_idx_malformed, 0, sizeof bad_idxs / sizeof *bad_idxs);
    tcase_add_test(tc, test_idx_count_mismatch);
    tcase_add_test(tc, test_idx_parse_prefixes);
    tcase_add_test(tc, test_idx_not_regular);
    tcase_add_test(tc, test_idx_memory_limit);
    suite_add_tcase(s, tc);
    tc = tcase_create("directories");
    tcase_add_test(tc, test_load_dirs);
    tcase_add_test(tc, test_load_dir_errors);
    tcase_add_test(tc, test_load_png_folders);
    tcase_add_test(tc, test_load_colour_folders);
    tcase_add_test(tc, test_png_folder_errors);
    tcase_add_test(tc, test_png_folder_memory_limit);
    tcase_add_loop_test(tc, test_png_splits_match, 0, sizeof splits / sizeof *splits);
    tcase_add_test(tc, test_png_splits_names_only);
    tcase_add_test(tc, test_png_val_folder);
    suite_add_tcase(s, tc);
    tc = tcase_create("batches");
    tcase_add_test(tc, test_select);
    tcase_add_test(tc, test_shuffle);
    tcase_add_test(tc, test_batch_values);
    tcase_add_test(tc, test_batch_errors);
    tcase_add_loop_test(tc, test_augment_moves, 0, 2);
    tcase_add_test(tc, test_from_memory);
    tcase_add_test(tc, test_origin);
    suite_add_tcase(s, tc);
    tc = tcase_create("alloc");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_alloc_failure);
    suite_add_tcase(s, tc);
    return s;
}
