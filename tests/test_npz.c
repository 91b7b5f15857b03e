/*
 * test_npz.c - NumPy .npz data files: archives written here with libzip
 * (entries stored and deflated) of .npy arrays whose headers are written
 * by hand as NumPy writes them (format 1.0 unless said, the dict padded
 * with spaces and a newline to 64 bytes), and the fixtures of
 * tests/data/npz (see its README), laid out as numpy.savez writes them.
 * Every load is made from the file (nb_dataset_load) and from memory
 * (nbi_npz_parse, origin "mem.npz"), which must agree, results and errors.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zip.h>

#include "io/dataset.h"

/* ---- writing .npy arrays and .npz archives ------------------------------ */

typedef struct npy_buf {
    char name[32];
    uint8_t *p;
    size_t len;
} npy_buf;

#define MAX_ENTRIES 8

typedef struct npz_w {
    npy_buf e[MAX_ENTRIES];
    int n;
} npz_w;

/* A .npy array: magic, version, header length, the dict as given padded
 * with spaces and ended by '\n' so that data starts at a multiple of 64,
 * then len bytes of data. */
static void add_dict_v(npz_w *w, const char *name, int version, const char *dict,
                       const void *data, size_t len)
{
    ck_assert_int_lt(w->n, MAX_ENTRIES);
    npy_buf *b = &w->e[w->n++];
    snprintf(b->name, sizeof b->name, "%s", name);
    size_t pre = version == 1 ? 10 : 12, dl = strlen(dict);
    size_t hlen = dl + 1;
    hlen += (64 - (pre + hlen) % 64) % 64;
    b->len = pre + hlen + len;
    b->p = malloc(b->len);
    ck_assert_ptr_nonnull(b->p);
    memcpy(b->p, "\x93NUMPY", 6);
    b->p[6] = (uint8_t)version;
    b->p[7] = 0;
    for (size_t i = 0; i < pre - 8; i++)
        b->p[8 + i] = (uint8_t)(hlen >> (8 * i));
    memcpy(b->p + pre, dict, dl);
    memset(b->p + pre + dl, ' ', hlen - dl - 1);
    b->p[pre + hlen - 1] = '\n';
    if (len)
        memcpy(b->p + pre + hlen, data, len);
}

static void add_dict(npz_w *w, const char *name, const char *dict, const void *data, size_t len)
{
    add_dict_v(w, name, 1, dict, data, len);
}

/* An array as NumPy writes it: shape as Python prints a tuple. */
static void add(npz_w *w, const char *name, const char *descr, const char *shape,
                const void *data, size_t len)
{
    char dict[256];
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr,
             shape);
    add_dict(w, name, dict, data, len);
}

/* An entry of these bytes exactly. */
static void add_raw(npz_w *w, const char *name, const void *data, size_t len)
{
    ck_assert_int_lt(w->n, MAX_ENTRIES);
    npy_buf *b = &w->e[w->n++];
    snprintf(b->name, sizeof b->name, "%s", name);
    b->p = malloc(len ? len : 1);
    ck_assert_ptr_nonnull(b->p);
    memcpy(b->p, data, len);
    b->len = len;
}

/* int64 labels, little-endian. */
static void add_labels(npz_w *w, const char *name, const int64_t *v, int n)
{
    uint8_t buf[64 * 8];
    ck_assert_int_le(n, 64);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 8; k++)
            buf[8 * i + k] = (uint8_t)((uint64_t)v[i] >> (8 * k));
    char shape[32];
    snprintf(shape, sizeof shape, "(%d,)", n);
    add(w, name, "<i8", shape, buf, 8 * (size_t)n);
}

/* Writes the entries to path, each compressed by method (ZIP_CM_STORE or
 * ZIP_CM_DEFLATE), and checks that libzip did so; then frees them. */
static void npz_write(npz_w *w, const char *path, zip_int32_t method)
{
    int err = 0;
    zip_t *za = zip_open(path, ZIP_CREATE | ZIP_TRUNCATE, &err);
    ck_assert_msg(za != NULL, "zip_open %s: error %d", path, err);
    for (int i = 0; i < w->n; i++) {
        zip_source_t *src = zip_source_buffer(za, w->e[i].p, w->e[i].len, 0);
        ck_assert_ptr_nonnull(src);
        zip_int64_t idx = zip_file_add(za, w->e[i].name, src, ZIP_FL_ENC_UTF_8);
        ck_assert_msg(idx >= 0, "zip_file_add %s: %s", w->e[i].name, zip_strerror(za));
        ck_assert_int_eq(zip_set_file_compression(za, (zip_uint64_t)idx, method, 0), 0);
    }
    ck_assert_msg(zip_close(za) == 0, "zip_close %s: %s", path, zip_strerror(za));
    for (int i = 0; i < w->n; i++)
        free(w->e[i].p);
    w->n = 0;
    za = zip_open(path, ZIP_RDONLY, &err);
    ck_assert_msg(za != NULL, "zip_open %s again: error %d", path, err);
    for (zip_int64_t i = 0; i < zip_get_num_entries(za, 0); i++) {
        zip_stat_t st;
        ck_assert_int_eq(zip_stat_index(za, (zip_uint64_t)i, 0, &st), 0);
        ck_assert_int_eq(st.comp_method, method);
    }
    zip_discard(za);
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    uint8_t *buf = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    ck_assert_int_eq(fwrite(data, 1, len, f), len);
    ck_assert_int_eq(fclose(f), 0);
}

/* A temporary directory with one archive path in it, for each test. */
typedef struct tmp {
    char dir[64], path[96];
} tmp;

static void tmp_new(tmp *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/nabla-npz-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/data.npz", t->dir);
}

static void tmp_free(tmp *t)
{
    unlink(t->path);
    ck_assert_int_eq(rmdir(t->dir), 0);
}

/* ---- loading ---------------------------------------------------------------- */

static void assert_same(const nb_dataset *a, const nb_dataset *b)
{
    int64_t sa[3], sb[3];
    nb_dataset_shape(a, sa);
    nb_dataset_shape(b, sb);
    ck_assert(sa[0] == sb[0] && sa[1] == sb[1] && sa[2] == sb[2]);
    ck_assert_int_eq(nb_dataset_size(a), nb_dataset_size(b));
    ck_assert_int_eq(nb_dataset_validation(a), nb_dataset_validation(b));
    ck_assert_int_eq(nb_dataset_num_classes(a), nb_dataset_num_classes(b));
    int64_t per = sa[0] * sa[1] * sa[2];
    for (int64_t i = 0; i < nb_dataset_size(a); i++) {
        ck_assert_int_eq(nb_dataset_label(a, i), nb_dataset_label(b, i));
        const uint8_t *pa = nb_dataset_image(a, i), *pb = nb_dataset_image(b, i);
        const float *va = nb_dataset_values(a, i), *vb = nb_dataset_values(b, i);
        ck_assert(!pa == !pb && !va == !vb && !pa != !va);
        ck_assert(pa ? memcmp(pa, pb, (size_t)per) == 0
                     : memcmp(va, vb, (size_t)per * sizeof *va) == 0);
    }
}

/* Loads the half of path, from the file and from memory; returns the
 * file's (ctx's), checked against the memory's. */
static nb_dataset *load(nb_ctx *ctx, const char *path, bool train)
{
    nb_dataset *ds = nb_dataset_load(ctx, path, train);
    ck_assert_msg(ds != NULL, "%s: %s", path, nb_errmsg(ctx));
    ck_assert_str_eq(nb_dataset_origin(ds), path);
    size_t len;
    uint8_t *buf = slurp(path, &len);
    nb_ctx *mctx = nb_ctx_new();
    nb_dataset *mem = nbi_npz_parse(mctx, buf, len, "mem.npz", train);
    ck_assert_msg(mem != NULL, "mem.npz: %s", nb_errmsg(mctx));
    ck_assert_str_eq(nb_dataset_origin(mem), "mem.npz");
    assert_same(ds, mem);
    nb_dataset_free(mem);
    nb_ctx_free(mctx);
    free(buf);
    return ds;
}

/* The half of path must fail with code and a one-line message that begins
 * with the file's name and holds needle (and needle2 unless NULL); from
 * memory too, named "mem.npz". */
static void expect_error(const char *path, bool train, int code, const char *needle,
                         const char *needle2)
{
    char prefix[128];
    for (int m = 0; m < 2; m++) {
        nb_ctx *ctx = nb_ctx_new();
        nb_dataset *ds;
        if (m == 0) {
            ds = nb_dataset_load(ctx, path, train);
            snprintf(prefix, sizeof prefix, "%s: ", path);
        } else {
            size_t len;
            uint8_t *buf = slurp(path, &len);
            ds = nbi_npz_parse(ctx, buf, len, "mem.npz", train);
            free(buf);
            snprintf(prefix, sizeof prefix, "mem.npz: ");
        }
        ck_assert_msg(ds == NULL, "%s loaded (%s)", path, m ? "from memory" : "from the file");
        tst_assert_error(ctx, code, needle);
        if (needle2)
            tst_assert_error(ctx, code, needle2);
        ck_assert_msg(strncmp(nb_errmsg(ctx), prefix, strlen(prefix)) == 0,
                      "message \"%s\" does not begin with \"%s\"", nb_errmsg(ctx), prefix);
        ck_assert_ptr_null(strchr(nb_errmsg(ctx), '\n'));
        nb_ctx_free(ctx);
    }
}

static const zip_int32_t methods[2] = {ZIP_CM_STORE, ZIP_CM_DEFLATE};

/* ---- uint8 images ------------------------------------------------------------- */

static int train_pixel(int i, int r, int c)
{
    return (7 * i + 3 * r + 5 * c) % 256;
}

static int test_pixel(int i, int r, int c)
{
    return (11 * i + r * c) % 256;
}

/* 5 training images (5, 28, 28), int64 labels (3 i) % 10; 3 test images,
 * uint8 labels 9 - i. */
START_TEST(test_uint8_shaped)
{
    tmp t;
    tmp_new(&t);
    npz_w w = {0};
    static uint8_t px[5 * 784], tx[3 * 784];
    int64_t labels[5];
    uint8_t tlabels[3];
    for (int i = 0; i < 5; i++) {
        labels[i] = (3 * i) % 10;
        for (int k = 0; k < 784; k++)
            px[i * 784 + k] = (uint8_t)train_pixel(i, k / 28, k % 28);
    }
    for (int i = 0; i < 3; i++) {
        tlabels[i] = (uint8_t)(9 - i);
        for (int k = 0; k < 784; k++)
            tx[i * 784 + k] = (uint8_t)test_pixel(i, k / 28, k % 28);
    }
    add(&w, "X_train.npy", "|u1", "(5, 28, 28)", px, sizeof px);
    add_labels(&w, "y_train.npy", labels, 5);
    add(&w, "X_test.npy", "|u1", "(3, 28, 28)", tx, sizeof tx);
    add(&w, "y_test.npy", "|u1", "(3,)", tlabels, 3);
    npz_write(&w, t.path, methods[_i]);

    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = load(ctx, t.path, true);
    ck_assert_int_eq(nb_dataset_size(ds), 5);
    int64_t shape[3];
    nb_dataset_shape(ds, shape);
    ck_assert(shape[0] == 1 && shape[1] == 28 && shape[2] == 28);
    ck_assert_int_eq(nb_dataset_validation(ds), 0);
    ck_assert_int_eq(nb_dataset_num_classes(ds), 10);
    ck_assert_ptr_null(nb_dataset_values(ds, 0));
    for (int i = 0; i < 5; i++) {
        ck_assert_int_eq(nb_dataset_label(ds, i), (3 * i) % 10);
        const uint8_t *img = nb_dataset_image(ds, i);
        for (int k = 0; k < 784; k++)
            ck_assert_int_eq(img[k], train_pixel(i, k / 28, k % 28));
    }
    /* By hand: image 4 at (27, 27) is (28 + 81 + 135) % 256; labels 0 3 6 9 2. */
    ck_assert_int_eq(nb_dataset_image(ds, 4)[27 * 28 + 27], 244);
    ck_assert_int_eq(nb_dataset_label(ds, 4), 2);
    ck_assert_ptr_null(nb_dataset_image(ds, 5));
    nb_dataset_free(ds);

    ds = load(ctx, t.path, false);
    ck_assert_int_eq(nb_dataset_size(ds), 3);
    nb_dataset_shape(ds, shape);
    ck_assert(shape[0] == 1 && shape[1] == 28 && shape[2] == 28);
    ck_assert_int_eq(nb_dataset_validation(ds), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(nb_dataset_label(ds, i), 9 - i);
        const uint8_t *img = nb_dataset_image(ds, i);
        for (int k = 0; k < 784; k++)
            ck_assert_int_eq(img[k], test_pixel(i, k / 28, k % 28));
    }
    ck_assert_int_eq(nb_dataset_image(ds, 2)[5 * 28 + 7], 57);
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
    tmp_free(&t);
}
END_TEST

/* (N, 784) is 28x28 gray with labels (N, 1); (N, 12) is 3x2x2 colour. */
START_TEST(test_uint8_flat)
{
    tmp t;
    tmp_new(&t);
    npz_w w = {0};
    static uint8_t px[4 * 784];
    for (int i = 0; i < 4; i++)
        for (int k = 0; k < 784; k++)
            px[i * 784 + k] = (uint8_t)train_pixel(i, k / 28, k % 28);
    const int32_t labels[4] = {1, 0, 3, 1};
    uint8_t tx[2 * 12];
    for (int k = 0; k < 24; k++)
        tx[k] = (uint8_t)(10 * k);
    const uint8_t tlabels[2] = {4, 2};
    add(&w, "X_train.npy", "|u1", "(4, 784)", px, sizeof px);
    add(&w, "y_train.npy", "<i4", "(4, 1)", labels, sizeof labels); /* the host is LE */
    add(&w, "X_test.npy", "|u1", "(2, 12)", tx, sizeof tx);
    add(&w, "y_test.npy", "|u1", "(2,)", tlabels, 2);
    npz_write(&w, t.path, methods[_i]);

    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = load(ctx, t.path, true);
    ck_assert_int_eq(nb_dataset_size(ds), 4);
    int64_t shape[3];
    nb_dataset_shape(ds, shape);
    ck_assert(shape[0] == 1 && shape[1] == 28 && shape[2] == 28);
    ck_assert_int_eq(nb_dataset_num_classes(ds), 4);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(nb_dataset_label(ds, i), labels[i]);
        ck_assert_int_eq(memcmp(nb_dataset_image(ds, i), px + i * 784, 784), 0);
    }
    ck_assert_int_eq(nb_dataset_image(ds, 3)[1 * 28 + 2], 34);
    nb_dataset_free(ds);

    ds = load(ctx, t.path, false);
    nb_dataset_shape(ds, shape);
    ck_assert(shape[0] == 3 && shape[1] == 2 && shape[2] == 2);
    ck_assert_int_eq(nb_dataset_size(ds), 2);
    ck_assert_int_eq(nb_dataset_label(ds, 0), 4);
    ck_assert_int_eq(nb_dataset_label(ds, 1), 2);
    ck_assert_int_eq(nb_dataset_num_classes(ds), 5);
    for (int k = 0; k < 12; k++) {
        ck_assert_int_eq(nb_dataset_image(ds, 0)[k], 10 * k);
        ck_assert_int_eq(nb_dataset_image(ds, 1)[k], 10 * (12 + k));
    }
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
    tmp_free(&t);
}
END_TEST

/* Every integer dtype of labels, as (N,) and (N, 1). */
static const struct {
    const char *descr;
    int size;
    int64_t big; /* the largest label written */
} label_types[] = {
    {"|u1", 1, 255},        {"|i1", 1, 127},        {"<u2", 2, 65535},
    {"<i2", 2, 32767},      {"<u4", 4, 2147483646}, {"<i4", 4, 2147483646},
    {"<u8", 8, 2147483646}, {"<i8", 8, 2147483646},
};

START_TEST(test_label_types)
{
    tmp t;
    tmp_new(&t);
    const int64_t v[3] = {7, 0, label_types[_i].big};
    const int size = label_types[_i].size;
    uint8_t buf[24];
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < size; k++)
            buf[i * size + k] = (uint8_t)((uint64_t)v[i] >> (8 * k));
    const uint8_t px[3 * 4] = {0};
    for (int s = 0; s < 2; s++) {
        npz_w w = {0};
        add(&w, "X_train.npy", "|u1", "(3, 2, 2)", px, sizeof px);
        add(&w, "y_train.npy", label_types[_i].descr, s ? "(3, 1)" : "(3,)", buf,
            3 * (size_t)size);
        npz_write(&w, t.path, ZIP_CM_DEFLATE);
        nb_ctx *ctx = nb_ctx_new();
        nb_dataset *ds = load(ctx, t.path, true);
        for (int i = 0; i < 3; i++)
            ck_assert_int_eq(nb_dataset_label(ds, i), v[i]);
        ck_assert_int_eq(nb_dataset_num_classes(ds), v[2] + 1);
        nb_dataset_free(ds);
        nb_ctx_free(ctx);
    }
    tmp_free(&t);
}
END_TEST

/* ---- float images ------------------------------------------------------------- */

/* float32 (3, 1, 4, 4) in [0, 1] kept exactly, read without conversion;
 * float64 (2, 16) test images rounded to float. */
START_TEST(test_float_values)
{
    tmp t;
    tmp_new(&t);
    npz_w w = {0};
    float fx[3 * 16];
    double dx[2 * 16];
    for (int k = 0; k < 48; k++)
        fx[k] = (float)k / 47.0f;
    for (int k = 0; k < 32; k++)
        dx[k] = 0.1 * k / 3.1;
    const uint16_t labels[3] = {2, 1, 2};
    const int64_t tlabels[2] = {0, 1};
    add(&w, "X_train.npy", "<f4", "(3, 1, 4, 4)", fx, sizeof fx);
    add(&w, "y_train.npy", "<u2", "(3,)", labels, sizeof labels);
    add(&w, "X_test.npy", "<f8", "(2, 16)", dx, sizeof dx);
    add_labels(&w, "y_test.npy", tlabels, 2);
    npz_write(&w, t.path, methods[_i]);

    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = load(ctx, t.path, true);
    int64_t shape[3];
    nb_dataset_shape(ds, shape);
    ck_assert(shape[0] == 1 && shape[1] == 4 && shape[2] == 4);
    ck_assert_int_eq(nb_dataset_size(ds), 3);
    ck_assert_int_eq(nb_dataset_num_classes(ds), 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_null(nb_dataset_image(ds, i));
        const float *v = nb_dataset_values(ds, i);
        ck_assert_ptr_nonnull(v);
        ck_assert_int_eq(nb_dataset_label(ds, i), labels[i]);
        for (int k = 0; k < 16; k++) {
            ck_assert(v[k] >= 0.0f && v[k] <= 1.0f);
            ck_assert_float_eq(v[k], fx[16 * i + k]);
        }
    }
    ck_assert_float_eq(nb_dataset_values(ds, 0)[0], 0.0f);
    ck_assert_float_eq(nb_dataset_values(ds, 2)[15], 1.0f);
    nb_dataset_free(ds);

    ds = load(ctx, t.path, false);
    nb_dataset_shape(ds, shape);
    ck_assert(shape[0] == 1 && shape[1] == 4 && shape[2] == 4);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 16; k++)
            ck_assert_float_eq(nb_dataset_values(ds, i)[k], (float)dx[16 * i + k]);
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
    tmp_free(&t);
}
END_TEST

/* Non-finite values, and float64 beyond float32's range, are refused. */
START_TEST(test_float_nonfinite)
{
    static const struct {
        const char *descr;
        double bad;
        const char *needle;
    } cases[] = {
        {"<f4", INFINITY, "X_train.npy: image 1 holds inf (value 5 of it); images must be finite"},
        {"<f4", NAN, "X_train.npy: image 1 holds "},
        {"<f8", -INFINITY, "X_train.npy: image 1 holds -inf (value 5 of it)"},
        {"<f8", 1e300, "X_train.npy: image 1 holds 1e+300 (value 5 of it), beyond float32's"},
    };
    tmp t;
    tmp_new(&t);
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        npz_w w = {0};
        float f[2 * 9] = {0};
        double d[2 * 9] = {0};
        f[9 + 5] = (float)cases[c].bad;
        d[9 + 5] = cases[c].bad;
        bool single = strcmp(cases[c].descr, "<f4") == 0;
        add(&w, "X_train.npy", cases[c].descr, "(2, 3, 3)", single ? (void *)f : (void *)d,
            single ? sizeof f : sizeof d);
        const int64_t labels[2] = {0, 1};
        add_labels(&w, "y_train.npy", labels, 2);
        npz_write(&w, t.path, methods[c % 2]);
        expect_error(t.path, true, NB_ERR_FORMAT, cases[c].needle, NULL);
    }
    tmp_free(&t);
}
END_TEST

/* ---- colour images ------------------------------------------------------------ */

static int colour_value(int i, int ch, int r, int c)
{
    return 60 * ch + 10 * r + c + i;
}

/* (N, 3, H, W) kept as it is; (N, H, W, 3) channels last turned into
 * [3, H, W], uint8 and float32. */
START_TEST(test_colour)
{
    tmp t;
    tmp_new(&t);
    npz_w w = {0};
    uint8_t first[2 * 3 * 4 * 5], last[2 * 6 * 5 * 3];
    float flast[2 * 6 * 5 * 3];
    for (int i = 0; i < 2; i++)
        for (int ch = 0; ch < 3; ch++)
            for (int r = 0; r < 6; r++)
                for (int c = 0; c < 5; c++) {
                    if (r < 4)
                        first[((i * 3 + ch) * 4 + r) * 5 + c] = (uint8_t)colour_value(i, ch, r, c);
                    last[((i * 6 + r) * 5 + c) * 3 + ch] = (uint8_t)colour_value(i, ch, r, c);
                    flast[((i * 6 + r) * 5 + c) * 3 + ch] = colour_value(i, ch, r, c) / 255.0f;
                }
    const int64_t labels[2] = {1, 0};
    for (int pass = 0; pass < 2; pass++) {
        add(&w, "X_train.npy", "|u1", "(2, 3, 4, 5)", first, sizeof first);
        add_labels(&w, "y_train.npy", labels, 2);
        if (pass == 0)
            add(&w, "X_test.npy", "|u1", "(2, 6, 5, 3)", last, sizeof last);
        else
            add(&w, "X_test.npy", "<f4", "(2, 6, 5, 3)", flast, sizeof flast);
        add_labels(&w, "y_test.npy", labels, 2);
        npz_write(&w, t.path, methods[_i]);

        nb_ctx *ctx = nb_ctx_new();
        nb_dataset *ds = load(ctx, t.path, true);
        int64_t shape[3];
        nb_dataset_shape(ds, shape);
        ck_assert(shape[0] == 3 && shape[1] == 4 && shape[2] == 5);
        for (int i = 0; i < 2; i++) {
            const uint8_t *img = nb_dataset_image(ds, i);
            for (int ch = 0; ch < 3; ch++)
                for (int r = 0; r < 4; r++)
                    for (int c = 0; c < 5; c++)
                        ck_assert_int_eq(img[(ch * 4 + r) * 5 + c], colour_value(i, ch, r, c));
        }
        /* By hand: image 1, green, row 3, column 2: 60 + 30 + 2 + 1. */
        ck_assert_int_eq(nb_dataset_image(ds, 1)[(1 * 4 + 3) * 5 + 2], 93);
        nb_dataset_free(ds);

        ds = load(ctx, t.path, false);
        nb_dataset_shape(ds, shape);
        ck_assert(shape[0] == 3 && shape[1] == 6 && shape[2] == 5);
        for (int i = 0; i < 2; i++)
            for (int ch = 0; ch < 3; ch++)
                for (int r = 0; r < 6; r++)
                    for (int c = 0; c < 5; c++) {
                        int at = (ch * 6 + r) * 5 + c;
                        if (pass == 0)
                            ck_assert_int_eq(nb_dataset_image(ds, i)[at],
                                             colour_value(i, ch, r, c));
                        else
                            ck_assert_float_eq(nb_dataset_values(ds, i)[at],
                                               colour_value(i, ch, r, c) / 255.0f);
                    }
        nb_dataset_free(ds);
        nb_ctx_free(ctx);
    }
    tmp_free(&t);
}
END_TEST

/* ---- the validation split ---------------------------------------------------- */

/* X_valid after X_train, in order, as the last examples; not in the test
 * half. */
START_TEST(test_validation)
{
    tmp t;
    tmp_new(&t);
    npz_w w = {0};
    uint8_t px[4 * 6], vx[2 * 6], tx[1 * 6];
    for (int k = 0; k < 24; k++)
        px[k] = (uint8_t)k;
    for (int k = 0; k < 12; k++)
        vx[k] = (uint8_t)(200 + k);
    for (int k = 0; k < 6; k++)
        tx[k] = (uint8_t)(100 + k);
    const int64_t labels[4] = {0, 1, 2, 3}, vlabels[2] = {5, 4}, tlabels[1] = {2};
    /* Not in the usual order: the names say which is which. */
    add(&w, "X_valid.npy", "|u1", "(2, 2, 3)", vx, sizeof vx);
    add_labels(&w, "y_test.npy", tlabels, 1);
    add(&w, "X_train.npy", "|u1", "(4, 2, 3)", px, sizeof px);
    add_labels(&w, "y_valid.npy", vlabels, 2);
    add(&w, "X_test.npy", "|u1", "(1, 2, 3)", tx, sizeof tx);
    add_labels(&w, "y_train.npy", labels, 4);
    npz_write(&w, t.path, methods[_i]);

    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = load(ctx, t.path, true);
    ck_assert_int_eq(nb_dataset_size(ds), 6);
    ck_assert_int_eq(nb_dataset_validation(ds), 2);
    ck_assert_int_eq(nb_dataset_num_classes(ds), 6);
    const int32_t want[6] = {0, 1, 2, 3, 5, 4};
    for (int i = 0; i < 6; i++) {
        ck_assert_int_eq(nb_dataset_label(ds, i), want[i]);
        const uint8_t *img = nb_dataset_image(ds, i);
        for (int k = 0; k < 6; k++)
            ck_assert_int_eq(img[k], i < 4 ? 6 * i + k : 200 + 6 * (i - 4) + k);
    }
    nb_dataset_free(ds);
    ds = load(ctx, t.path, false);
    ck_assert_int_eq(nb_dataset_size(ds), 1);
    ck_assert_int_eq(nb_dataset_validation(ds), 0);
    ck_assert_int_eq(nb_dataset_label(ds, 0), 2);
    ck_assert_int_eq(nb_dataset_image(ds, 0)[5], 105);
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
    tmp_free(&t);
}
END_TEST

/* A validation split that does not go with the training one. */
START_TEST(test_validation_errors)
{
    tmp t;
    tmp_new(&t);
    const uint8_t px[4 * 6] = {0};
    const float fx[2 * 6] = {0};
    const int64_t labels[4] = {0, 1, 2, 3};
    for (int c = 0; c < 5; c++) {
        npz_w w = {0};
        add(&w, "X_train.npy", "|u1", "(4, 2, 3)", px, sizeof px);
        add_labels(&w, "y_train.npy", labels, 4);
        if (c != 4)
            add(&w, "X_valid.npy", c == 1 ? "<f4" : "|u1", c == 0 ? "(2, 3, 2)" : "(2, 2, 3)",
                c == 1 ? (const void *)fx : (const void *)px, c == 1 ? sizeof fx : 12);
        if (c != 3)
            add_labels(&w, "y_valid.npy", labels, c == 2 ? 3 : 2);
        npz_write(&w, t.path, methods[c % 2]);
        switch (c) {
        case 0:
            expect_error(t.path, true, NB_ERR_FORMAT,
                         "X_valid's images are [1, 3, 2] but X_train's [1, 2, 3]", NULL);
            break;
        case 1:
            expect_error(t.path, true, NB_ERR_FORMAT,
                         "X_valid holds float images but X_train uint8", NULL);
            break;
        case 2:
            expect_error(t.path, true, NB_ERR_FORMAT, "X_valid has 2 images but y_valid 3 labels",
                         NULL);
            break;
        case 3:
            expect_error(t.path, true, NB_ERR_FORMAT, "X_valid.npy without y_valid.npy (the labels)",
                         NULL);
            break;
        default:
            expect_error(t.path, true, NB_ERR_FORMAT, "y_valid.npy without X_valid.npy (the images)",
                         NULL);
            /* The test half does not read them. */
            nb_ctx *ctx = nb_ctx_new();
            ck_assert_ptr_null(nb_dataset_load(ctx, t.path, false));
            tst_assert_error(ctx, NB_ERR_FORMAT, "no X_test.npy and no y_test.npy (the test half "
                             "needs X_test and y_test; the archive holds X_train.npy, "
                             "y_train.npy, y_valid.npy)");
            nb_ctx_free(ctx);
        }
    }
    tmp_free(&t);
}
END_TEST

/* ---- headers ------------------------------------------------------------------ */

/* Format 2.0 and 3.0 (4-byte header length), double quotes, keys in any
 * order, no trailing comma, Python 2's long sizes, a header without padding. */
START_TEST(test_header_variants)
{
    static const struct {
        int version;
        const char *dict;
    } variants[] = {
        {2, "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 2, 2), }"},
        {3, "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 2, 2), }"},
        {1, "{\"shape\": (3, 2, 2), \"fortran_order\": False, \"descr\": \"|u1\"}"},
        {1, "{'descr':'|u1','fortran_order':False,'shape':(3L, 2L, 2L)}"},
        {1, "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 4)}"},
    };
    tmp t;
    tmp_new(&t);
    uint8_t px[12];
    for (int k = 0; k < 12; k++)
        px[k] = (uint8_t)(k * k);
    const int64_t labels[3] = {0, 1, 0};
    for (size_t v = 0; v < sizeof variants / sizeof *variants; v++) {
        npz_w w = {0};
        add_dict_v(&w, "X_train.npy", variants[v].version, variants[v].dict, px, sizeof px);
        add_labels(&w, "y_train.npy", labels, 3);
        npz_write(&w, t.path, methods[v % 2]);
        nb_ctx *ctx = nb_ctx_new();
        nb_dataset *ds = load(ctx, t.path, true);
        int64_t shape[3];
        nb_dataset_shape(ds, shape);
        ck_assert(shape[0] == 1 && shape[1] == 2 && shape[2] == 2);
        ck_assert_int_eq(nb_dataset_size(ds), 3);
        for (int i = 0; i < 3; i++)
            ck_assert_int_eq(memcmp(nb_dataset_image(ds, i), px + 4 * i, 4), 0);
        nb_dataset_free(ds);
        nb_ctx_free(ctx);
    }
    /* An unpadded header: data right after "...}\n". */
    static const char head[] = "\x93NUMPY\x01\x00\x3d\x00{'descr': '|u1', 'fortran_order': "
                               "False, 'shape': (3, 2, 2)}\n";
    ck_assert_int_eq(sizeof head - 1, 10 + 0x3d);
    uint8_t raw[sizeof head - 1 + 12];
    memcpy(raw, head, sizeof head - 1);
    memcpy(raw + sizeof head - 1, px, 12);
    npz_w w = {0};
    add_raw(&w, "X_train.npy", raw, sizeof raw);
    add_labels(&w, "y_train.npy", labels, 3);
    npz_write(&w, t.path, ZIP_CM_STORE);
    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = load(ctx, t.path, true);
    ck_assert_int_eq(nb_dataset_image(ds, 2)[3], 121);
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
    tmp_free(&t);
}
END_TEST

/* ---- malformed archives --------------------------------------------------------- */

/* An archive of X_train (3, 2, 2) uint8 and y_train (3,) int64 but for
 * what the case changes. */
typedef struct bad_case {
    const char *x_name;    /* NULL: X_train.npy */
    const char *x_dict;    /* NULL: uint8 (3, 2, 2) */
    int x_len;             /* bytes of data; 0: 12 */
    int x_version;         /* 0: 1 */
    int x_cut;             /* > 0: the entry cut to this many bytes */
    int poke_at, poke;     /* poke != 0: X's byte poke_at set to it */
    const char *y_name;    /* NULL: y_train.npy; "": none */
    const char *y_dict;    /* NULL: int64 (3,) */
    int y_size, y_count;   /* bytes of a label, how many; 0: 8, 3 */
    bool y_set;            /* the last label is y_last */
    int64_t y_last;
    int code;
    const char *needle, *needle2;
} bad_case;

static const bad_case bad_cases[] = {
    /* The arrays that must be there. */
    {.y_name = "", .code = NB_ERR_FORMAT, .needle = "X_train.npy without y_train.npy (the labels)"},
    {.x_name = "X_test.npy", .y_name = "y_test.npy", .code = NB_ERR_FORMAT,
     .needle = "no X_train.npy and no y_train.npy (the training half needs X_train and y_train;",
     .needle2 = "the archive holds X_test.npy, y_test.npy)"},
    {.x_name = "x_train.npy", .code = NB_ERR_FORMAT,
     .needle = "y_train.npy without X_train.npy (the images)"},
    /* Sizes that disagree. */
    {.y_count = 4, .y_dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }",
     .code = NB_ERR_FORMAT, .needle = "X_train has 3 images but y_train 4 labels"},
    {.x_dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 3), }",
     .code = NB_ERR_FORMAT, .needle = "X_train has 2 images but y_train 3 labels"},
    /* dtypes. */
    {.x_dict = "{'descr': '<c8', 'fortran_order': False, 'shape': (3, 2, 2), }", .x_len = 96,
     .code = NB_ERR_FORMAT, .needle = "X_train.npy: dtype '<c8' is not supported",
     .needle2 = "(uint8, float32 or float64 images, little-endian)"},
    {.x_dict = "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 2, 2), }", .x_len = 48,
     .code = NB_ERR_FORMAT, .needle = "X_train.npy: dtype '>f4' is not supported"},
    {.x_dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (3, 2, 2), }", .x_len = 96,
     .code = NB_ERR_FORMAT, .needle = "X_train.npy: dtype '<i8' is not supported"},
    {.y_dict = "{'descr': '>i8', 'fortran_order': False, 'shape': (3,), }", .code = NB_ERR_FORMAT,
     .needle = "y_train.npy: dtype '>i8' is not supported (integer labels: uint8 to int64, "
               "little-endian)"},
    {.y_dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", .code = NB_ERR_FORMAT,
     .needle = "y_train.npy: dtype '<f8' is not supported (integer labels"},
    {.x_dict = "{'descr': [('a', '|u1')], 'fortran_order': False, 'shape': (3, 2, 2), }",
     .code = NB_ERR_FORMAT, .needle = "X_train.npy: a structured dtype"},
    {.x_dict = "{'descr': '|u1', 'fortran_order': True, 'shape': (3, 2, 2), }",
     .code = NB_ERR_FORMAT, .needle = "X_train.npy: fortran_order is True"},
    /* Headers. */
    {.x_cut = 30, .code = NB_ERR_FORMAT, .needle = "X_train.npy: truncated .npy header: 20 bytes of 118"},
    {.x_cut = 8, .code = NB_ERR_FORMAT, .needle = "X_train.npy: truncated .npy header"},
    {.x_cut = 3, .code = NB_ERR_FORMAT, .needle = "X_train.npy: not a .npy array"},
    {.x_version = 2, .x_cut = 11, .code = NB_ERR_FORMAT, .needle = "X_train.npy: truncated .npy header"},
    {.poke_at = 0, .poke = 'x', .code = NB_ERR_FORMAT,
     .needle = "X_train.npy: not a .npy array (no \\x93NUMPY at its start)"},
    {.poke_at = 6, .poke = 4, .code = NB_ERR_FORMAT,
     .needle = "X_train.npy: .npy format version 4.0 is not supported"},
    {.poke_at = 9, .poke = 0x40, .code = NB_ERR_FORMAT,
     .needle = "X_train.npy: a header of 16502 bytes, more than NumPy's limit of 10000"},
    {.x_dict = "['descr', '|u1']", .code = NB_ERR_FORMAT,
     .needle = "X_train.npy: bad .npy header at byte 0 of ",
     .needle2 = "the header is not a dict: '{' expected"},
    {.x_dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 2, 2), 'extra': 1, }",
     .code = NB_ERR_FORMAT,
     .needle = "X_train.npy: unknown key 'extra' in the header (descr, fortran_order and shape "
               "only)"},
    {.x_dict = "{'descr': '|u1', 'fortran_order': False, }", .code = NB_ERR_FORMAT,
     .needle = "X_train.npy: the header has no 'shape'"},
    {.x_dict = "{'descr': '|u1', 'descr': '|u1', 'fortran_order': False, 'shape': (3, 2, 2)}",
     .code = NB_ERR_FORMAT, .needle = "X_train.npy: key 'descr' twice in the header"},
    {.x_dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 2, 2)} x",
     .code = NB_ERR_FORMAT, .needle = "something after the dict"},
    {.x_dict = "{'descr': '|u1', 'fortran_order': 0, 'shape': (3, 2, 2)}", .code = NB_ERR_FORMAT,
     .needle = "fortran_order must be True or False"},
    {.x_dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (3, -2, 2)}",
     .code = NB_ERR_FORMAT, .needle = "a size (an integer >= 0) expected in the shape"},
    {.x_dict = "{'descr': '|u1', 'fortran_order': False, 'shape': [3, 2, 2]}",
     .code = NB_ERR_FORMAT, .needle = "the shape must be a tuple"},
    {.y_dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (3)}", .code = NB_ERR_FORMAT,
     .needle = "y_train.npy: bad .npy header", .needle2 = "(n,) not (n)"},
    {.x_dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 2, 99999999999999999999)}",
     .code = NB_ERR_FORMAT, .needle = "beyond 2^63 - 1"},
    {.x_dict = "{'descr': '|u\\x31', 'fortran_order': False, 'shape': (3, 2, 2)}",
     .code = NB_ERR_FORMAT, .needle = "escapes in strings are not supported"},
    /* Data. */
    {.x_len = 11, .code = NB_ERR_FORMAT,
     .needle = "X_train.npy: shape (3, 2, 2) of uint8 needs 12 bytes of data, the entry holds 11 "
               "(truncated)"},
    {.x_len = 13, .code = NB_ERR_FORMAT, .needle = "the entry holds 13 (extra data)"},
    {.y_count = 2, .code = NB_ERR_FORMAT,
     .needle = "y_train.npy: shape (3,) of int64 needs 24 bytes of data, the entry holds 16 "
               "(truncated)"},
    /* Shapes. */
    {.x_dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (12,)}",
     .code = NB_ERR_FORMAT, .needle = "X_train.npy: shape (12,) is not images"},
    {.x_dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 6)}", .code = NB_ERR_FORMAT,
     .needle = "X_train.npy: images of 6 values (shape (2, 6)): the image size cannot be told"},
    {.x_dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 2, 2)}", .x_len = 0,
     .x_cut = -1, .code = NB_ERR_FORMAT, .needle = "X_train.npy: no images (shape (0, 2, 2))"},
    {.x_dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (0, 9223372036854775807)}",
     .x_cut = -1, .code = NB_ERR_FORMAT, .needle = "X_train.npy: images of 9223372036854775807 "
     "values (shape (0, 9223372036854775807)): the image size cannot be told"},
    {.x_dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 0, 2)}", .x_cut = -1,
     .code = NB_ERR_FORMAT, .needle = "X_train.npy: empty images (shape (3, 0, 2))"},
    {.x_dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 6, 1, 5)}", .x_len = 30,
     .code = NB_ERR_FORMAT, .needle = "X_train.npy: images of 6 channels (shape (1, 6, 1, 5); 1 to 4"},
    {.x_dict = "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 2, 2, 3)}",
     .code = NB_ERR_FORMAT, .needle = "X_train.npy: shape (1, 1, 2, 2, 3) is not images"},
    {.y_dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 3)}", .code = NB_ERR_FORMAT,
     .needle = "y_train.npy: shape (1, 3) is not labels (N,) or (N, 1)"},
    /* Labels. */
    {.y_set = true, .y_last = -5, .code = NB_ERR_FORMAT,
     .needle = "y_train.npy: label 2 is -5 (labels are 0 to 2^31 - 2)"},
    {.y_dict = "{'descr': '|i1', 'fortran_order': False, 'shape': (3,), }", .y_size = 1,
     .y_set = true, .y_last = -128, .code = NB_ERR_FORMAT, .needle = "y_train.npy: label 2 is -128"},
    {.y_dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", .y_set = true,
     .y_last = INT64_MIN, .code = NB_ERR_FORMAT,
     .needle = "y_train.npy: label 2 is -9223372036854775808"},
    {.y_dict = "{'descr': '<u4', 'fortran_order': False, 'shape': (3,), }", .y_size = 4,
     .y_set = true, .y_last = 2147483647, .code = NB_ERR_FORMAT,
     .needle = "y_train.npy: label 2 is 2147483647 (labels are 0 to 2^31 - 2)"},
};

static void build_bad(const bad_case *b, const char *path, zip_int32_t method)
{
    npz_w w = {0};
    uint8_t px[128];
    for (int k = 0; k < 128; k++)
        px[k] = (uint8_t)(7 * k);
    int x_len = b->x_len ? b->x_len : b->x_cut < 0 ? 0 : 12;
    add_dict_v(&w, b->x_name ? b->x_name : "X_train.npy", b->x_version ? b->x_version : 1,
               b->x_dict ? b->x_dict
                         : "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 2, 2), }",
               px, (size_t)x_len);
    npy_buf *x = &w.e[0];
    if (b->x_cut > 0)
        x->len = (size_t)b->x_cut;
    if (b->poke)
        x->p[b->poke_at] = (uint8_t)b->poke;
    if (!b->y_name || *b->y_name) {
        int size = b->y_size ? b->y_size : 8, count = b->y_count ? b->y_count : 3;
        uint8_t lab[64] = {0};
        for (int i = 0; i < count; i++) {
            uint64_t v = (b->y_set && i == count - 1) ? (uint64_t)b->y_last : (uint64_t)(i % 2);
            for (int k = 0; k < size; k++)
                lab[i * size + k] = (uint8_t)(v >> (8 * k));
        }
        add_dict(&w, b->y_name ? b->y_name : "y_train.npy",
                 b->y_dict ? b->y_dict : "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }",
                 lab, (size_t)(size * count));
    }
    npz_write(&w, path, method);
}

START_TEST(test_malformed)
{
    const bad_case *b = &bad_cases[_i];
    tmp t;
    tmp_new(&t);
    for (int m = 0; m < 2; m++) {
        build_bad(b, t.path, methods[m]);
        expect_error(t.path, true, b->code, b->needle, b->needle2);
    }
    tmp_free(&t);
}
END_TEST

/* The cases must break what they say and nothing else: each made good
 * again loads. */
START_TEST(test_malformed_controls)
{
    tmp t;
    tmp_new(&t);
    build_bad(&(bad_case){0}, t.path, ZIP_CM_DEFLATE);
    nb_ctx *ctx = nb_ctx_new();
    nb_dataset *ds = load(ctx, t.path, true);
    ck_assert_int_eq(nb_dataset_size(ds), 3);
    ck_assert_int_eq(nb_dataset_label(ds, 1), 1);
    ck_assert_int_eq(nb_dataset_image(ds, 2)[3], (7 * 11) % 256);
    nb_dataset_free(ds);
    /* The largest label there may be; labels of (N, 1). */
    build_bad(&(bad_case){.y_set = true, .y_last = 2147483646}, t.path, ZIP_CM_STORE);
    ds = load(ctx, t.path, true);
    ck_assert_int_eq(nb_dataset_label(ds, 2), 2147483646);
    nb_dataset_free(ds);
    build_bad(&(bad_case){.y_dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (3, 1)}"},
              t.path, ZIP_CM_STORE);
    ds = load(ctx, t.path, true);
    ck_assert_int_eq(nb_dataset_size(ds), 3);
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
    tmp_free(&t);
}
END_TEST

/* Files that are not zip archives, or not regular files, or not there. */
START_TEST(test_not_zip)
{
    tmp t;
    tmp_new(&t);
    static const char *const junk[] = {"not a zip archive at all, just text\n", "PK\x03\x04"};
    for (int j = 0; j < 2; j++) {
        spit(t.path, junk[j], strlen(junk[j]));
        expect_error(t.path, true, NB_ERR_FORMAT, "not a readable .npz (zip) archive", NULL);
        expect_error(t.path, false, NB_ERR_FORMAT, "not a readable .npz (zip) archive", NULL);
    }
    /* An empty file is not an archive; an archive of no entries (only its
     * end of central directory record) is. */
    spit(t.path, "", 0);
    expect_error(t.path, true, NB_ERR_FORMAT, "not a readable .npz (zip) archive: empty", NULL);
    spit(t.path, "PK\x05\x06\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0", 22);
    expect_error(t.path, true, NB_ERR_FORMAT, "no X_train.npy and no y_train.npy",
                 "the archive holds no entries");
    /* A .npy file is not an .npz. */
    npz_w w = {0};
    add(&w, "X_train.npy", "|u1", "(1, 2, 2)", "abcd", 4);
    spit(t.path, w.e[0].p, w.e[0].len);
    free(w.e[0].p);
    expect_error(t.path, true, NB_ERR_FORMAT, "not a readable .npz (zip) archive", NULL);
    unlink(t.path);

    nb_ctx *ctx = nb_ctx_new();
    ck_assert_ptr_null(nb_dataset_load(ctx, t.path, true));
    tst_assert_error(ctx, NB_ERR_IO, "data.npz: No such file or directory");
    ck_assert_ptr_null(nbi_npz_load(ctx, t.path, true));
    tst_assert_error(ctx, NB_ERR_IO, "data.npz: No such file or directory");
    ck_assert_ptr_null(nbi_npz_load(ctx, t.dir, true));
    tst_assert_error(ctx, NB_ERR_IO, "is a directory");
    ck_assert_ptr_null(nbi_npz_load(ctx, NULL, true));
    tst_assert_error(ctx, NB_ERR_ARG, "npz_load: path is NULL");
    ck_assert_ptr_null(nbi_npz_parse(ctx, NULL, 3, "x", true));
    tst_assert_error(ctx, NB_ERR_ARG, "npz_parse: buf is NULL");
    ck_assert_ptr_null(nbi_npz_parse(ctx, NULL, 0, NULL, true));
    tst_assert_error(ctx, NB_ERR_FORMAT, "memory: not a readable .npz (zip) archive: empty");
    nb_ctx_free(ctx);
    tmp_free(&t);
}
END_TEST

/* A corrupt byte of a stored entry's data: libzip's CRC check at its end. */
START_TEST(test_corrupt_crc)
{
    tmp t;
    tmp_new(&t);
    npz_w w = {0};
    uint8_t px[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    const int64_t labels[3] = {0, 1, 2};
    add(&w, "X_train.npy", "|u1", "(3, 2, 2)", px, sizeof px);
    add_labels(&w, "y_train.npy", labels, 3);
    npz_write(&w, t.path, ZIP_CM_STORE);
    size_t len;
    uint8_t *buf = slurp(t.path, &len);
    uint8_t *at = NULL;
    for (size_t i = 0; !at && i + 12 <= len; i++)
        if (memcmp(buf + i, px, 12) == 0)
            at = buf + i;
    ck_assert_ptr_nonnull(at);
    at[5] = 99;
    spit(t.path, buf, len);
    free(buf);
    expect_error(t.path, true, NB_ERR_FORMAT, "X_train.npy: CRC error", NULL);
    tmp_free(&t);
}
END_TEST

/* ---- memory ------------------------------------------------------------------ */

START_TEST(test_memory_limit)
{
    tmp t;
    tmp_new(&t);
    npz_w w = {0};
    static uint8_t px[5 * 784];
    const int64_t labels[5] = {0};
    add(&w, "X_train.npy", "|u1", "(5, 784)", px, sizeof px);
    add_labels(&w, "y_train.npy", labels, 5);
    npz_write(&w, t.path, ZIP_CM_DEFLATE);
    nb_ctx *ctx = nb_ctx_new();
    nb_ctx_set_memory_limit(ctx, 3000);
    ck_assert_ptr_null(nb_dataset_load(ctx, t.path, true));
    tst_assert_error(ctx, NB_ERR_NOMEM, "data.npz: 5 images of [1, 28, 28] and their labels needs "
                     "3.8 KiB, more than the memory limit of 2.9 KiB");
    nb_ctx_set_memory_limit(ctx, 5 * 784 + 5 * 4);
    nb_dataset *ds = nb_dataset_load(ctx, t.path, true);
    ck_assert_msg(ds != NULL, "%s", nb_errmsg(ctx));
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
    tmp_free(&t);
}
END_TEST

/* Fails the k-th allocation for every k: NB_ERR_NOMEM or success, no leak. */
START_TEST(test_alloc_failure)
{
    const char *path = TESTDATA_DIR "/npz/tiny.npz";
    int k = 0;
    for (;; k++) {
        tst_failing f = {k};
        nb_allocator a = {tst_failing_alloc, tst_failing_free, &f};
        nb_ctx *ctx = nb_ctx_new_with(&a);
        if (!ctx)
            continue;
        nb_dataset *ds = nb_dataset_load(ctx, path, true);
        if (!ds)
            ck_assert_msg(nb_error(ctx) == NB_ERR_NOMEM, "k = %d: %s", k, nb_errmsg(ctx));
        nb_dataset_free(ds);
        nb_ctx_free(ctx);
        if (ds)
            break;
    }
    ck_assert_int_gt(k, 5);
}
END_TEST

/* ---- the fixtures --------------------------------------------------------------
 * Written by tests/data/npz/make_fixtures.py as numpy.savez and
 * numpy.savez_compressed lay them out (zip64 extra fields included). */

START_TEST(test_fixtures)
{
    nb_ctx *ctx = nb_ctx_new();
    int64_t shape[3];
    /* tiny.npz */
    nb_dataset *ds = load(ctx, TESTDATA_DIR "/npz/tiny.npz", true);
    nb_dataset_shape(ds, shape);
    ck_assert(shape[0] == 1 && shape[1] == 4 && shape[2] == 5);
    ck_assert_int_eq(nb_dataset_size(ds), 4);
    ck_assert_int_eq(nb_dataset_validation(ds), 1);
    const int32_t want[4] = {2, 0, 1, 1};
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(nb_dataset_label(ds, i), want[i]);
        for (int r = 0; r < 4; r++)
            for (int c = 0; c < 5; c++)
                ck_assert_int_eq(nb_dataset_image(ds, i)[r * 5 + c],
                                 i < 3 ? 10 * i + r + c : 100 + r * c);
    }
    nb_dataset_free(ds);
    ds = load(ctx, TESTDATA_DIR "/npz/tiny.npz", false);
    ck_assert_int_eq(nb_dataset_size(ds), 2);
    ck_assert_int_eq(nb_dataset_validation(ds), 0);
    ck_assert_int_eq(nb_dataset_label(ds, 1), 2);
    ck_assert_int_eq(nb_dataset_image(ds, 1)[3 * 5 + 4], 50 + 15 + 4);
    nb_dataset_free(ds);
    /* tiny-compressed.npz */
    ds = load(ctx, TESTDATA_DIR "/npz/tiny-compressed.npz", true);
    nb_dataset_shape(ds, shape);
    ck_assert(shape[0] == 1 && shape[1] == 4 && shape[2] == 4);
    ck_assert_int_eq(nb_dataset_size(ds), 3);
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 16; k++)
            ck_assert_float_eq(nb_dataset_values(ds, i)[k], (16 * i + k) / 64.0f);
    ck_assert_int_eq(nb_dataset_label(ds, 1), 1);
    nb_dataset_free(ds);
    ds = load(ctx, TESTDATA_DIR "/npz/tiny-compressed.npz", false);
    ck_assert_int_eq(nb_dataset_label(ds, 0), 3);
    ck_assert_int_eq(nb_dataset_label(ds, 1), 1);
    ck_assert_float_eq(nb_dataset_values(ds, 1)[15], 2 * 15 / 32.0f);
    nb_dataset_free(ds);
    /* colour.npz */
    ds = load(ctx, TESTDATA_DIR "/npz/colour.npz", true);
    nb_dataset_shape(ds, shape);
    ck_assert(shape[0] == 3 && shape[1] == 5 && shape[2] == 5);
    for (int i = 0; i < 2; i++)
        for (int ch = 0; ch < 3; ch++)
            for (int r = 0; r < 5; r++)
                for (int c = 0; c < 5; c++)
                    ck_assert_int_eq(nb_dataset_image(ds, i)[(ch * 5 + r) * 5 + c],
                                     colour_value(i, ch, r, c));
    nb_dataset_free(ds);
    ds = load(ctx, TESTDATA_DIR "/npz/colour.npz", false);
    nb_dataset_shape(ds, shape);
    ck_assert(shape[0] == 3 && shape[1] == 2 && shape[2] == 2);
    ck_assert_float_eq(nb_dataset_values(ds, 1)[(2 * 2 + 1) * 2 + 1], (2 + 2 + 1 + 1) / 8.0f);
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_npz(void)
{
    Suite *s = suite_create("npz");
    TCase *tc = tcase_create("load");
    tcase_add_loop_test(tc, test_uint8_shaped, 0, 2);
    tcase_add_loop_test(tc, test_uint8_flat, 0, 2);
    tcase_add_loop_test(tc, test_label_types, 0, sizeof label_types / sizeof *label_types);
    tcase_add_loop_test(tc, test_float_values, 0, 2);
    tcase_add_test(tc, test_float_nonfinite);
    tcase_add_loop_test(tc, test_colour, 0, 2);
    tcase_add_loop_test(tc, test_validation, 0, 2);
    tcase_add_test(tc, test_validation_errors);
    tcase_add_test(tc, test_header_variants);
    tcase_add_test(tc, test_fixtures);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_malformed, 0, sizeof bad_cases / sizeof *bad_cases);
    tcase_add_test(tc, test_malformed_controls);
    tcase_add_test(tc, test_not_zip);
    tcase_add_test(tc, test_corrupt_crc);
    tcase_add_test(tc, test_memory_limit);
    suite_add_tcase(s, tc);
    tc = tcase_create("alloc");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_alloc_failure);
    suite_add_tcase(s, tc);
    return s;
}
