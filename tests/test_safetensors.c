/* test_safetensors.c - the safetensors reader and writer: round trips,
 * dtype conversion, reading into a model's tensors, a file written by
 * PyTorch, every kind of malformed file, and allocation failure. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/safetensors.h"

/* ---- making files ---------------------------------------------------------- */

typedef struct fbuf {
    unsigned char b[4096];
    size_t n;
} fbuf;

static void fb_le(fbuf *f, uint64_t v, int size)
{
    for (int i = 0; i < size; i++, v >>= 8)
        f->b[f->n++] = (unsigned char)v;
}

/* The header's length, then the header. */
static void fb_header(fbuf *f, const char *json)
{
    size_t len = strlen(json);
    fb_le(f, len, 8);
    memcpy(f->b + f->n, json, len);
    f->n += len;
}

/* n data bytes 0, 1, 2, ... */
static void fb_fill(fbuf *f, size_t n)
{
    for (size_t i = 0; i < n; i++)
        f->b[f->n++] = (unsigned char)i;
}

static nb_safetensors *parse_fb(nb_ctx *ctx, const fbuf *f)
{
    return nbi_safetensors_parse(ctx, f->b, f->n, "w.safetensors");
}

/* A fresh directory under /tmp; rm_dir removes it and the files in it. */
static void make_dir(char *dir, size_t size)
{
    snprintf(dir, size, "/tmp/nabla-st-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            n++;
    closedir(d);
    return n;
}

static void rm_dir(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    for (struct dirent *e; (e = readdir(d));) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        char p[512];
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (remove(p) != 0)
            ck_abort_msg("cannot remove %s: %s", p, strerror(errno));
    }
    closedir(d);
    ck_assert_int_eq(rmdir(dir), 0);
}

static void write_bytes(const char *path, const void *p, size_t n)
{
    FILE *fp = fopen(path, "wb");
    ck_assert_ptr_nonnull(fp);
    ck_assert_uint_eq(fwrite(p, 1, n, fp), n);
    ck_assert_int_eq(fclose(fp), 0);
}

static size_t read_bytes(const char *path, unsigned char *buf, size_t cap)
{
    FILE *fp = fopen(path, "rb");
    ck_assert_ptr_nonnull(fp);
    size_t n = fread(buf, 1, cap, fp);
    fclose(fp);
    return n;
}

/* tests/data/safetensors/<name>: in the source tree the build names, or
 * else beside this source file (the tests run from the build directory). */
static const char *data_path(char *buf, size_t size, const char *name)
{
#ifdef TESTDATA_DIR
    snprintf(buf, size, "%s/safetensors/%s", TESTDATA_DIR, name);
#else
    const char *file = __FILE__, *slash = strrchr(file, '/');
    int dirlen = slash ? (int)(slash - file) : 1;
    snprintf(buf, size, "%.*s/data/safetensors/%s", dirlen, slash ? file : ".", name);
#endif
    return buf;
}

static bool same_bits(const nb_tensor *a, const nb_tensor *b)
{
    return a->dtype == b->dtype && nb_same_shape(a, b)
           && !memcmp(a->data, b->data, (size_t)a->numel * nb_dtype_size(a->dtype));
}

/* ---- round trips ------------------------------------------------------------- */

START_TEST(test_roundtrip)
{
    nb_ctx *ctx = nb_ctx_new();
    char dir[64], path[128];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/w.safetensors", dir);

    /* Values that a careless conversion would change: -0, subnormals,
     * infinities, a nan, the extremes. */
    nb_tensor *a = tst_make(ctx, NB_F32, 2, (int64_t[]){2, 3},
                            (double[]){1.5, -0.0, 0x1p-149, 3.4028234663852886e38, -INFINITY, 0.1});
    ((float *)a->data)[5] = NAN;
    nb_tensor *b = tst_make(ctx, NB_F64, 1, (int64_t[]){4},
                            (double[]){3.141592653589793, 0x0.0000000000001p-1022, -1e308, 0.1});
    nb_tensor *s = tst_make(ctx, NB_F64, 0, NULL, (double[]){-2.5});
    nb_tensor_set_name(a, "conv1.weight");
    nb_tensor_set_name(b, "b");
    nb_tensor_set_name(s, "scale");
    nb_tensor *ts[] = {a, b, s};
    ck_assert_int_eq(nb_safetensors_save(ctx, path, 3, ts), NB_OK);

    /* The exact bytes: header in the given order, data back to back,
     * padded with spaces to 8 bytes. */
    static const char header[] =
        "{\"conv1.weight\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
        "\"b\":{\"dtype\":\"F64\",\"shape\":[4],\"data_offsets\":[24,56]},"
        "\"scale\":{\"dtype\":\"F64\",\"shape\":[],\"data_offsets\":[56,64]}}";
    unsigned char file[1024];
    size_t n = read_bytes(path, file, sizeof file);
    size_t hlen = sizeof header - 1; /* 181, padded to 184 */
    ck_assert_uint_eq(hlen, 181);
    ck_assert_uint_eq(n, 8 + 184 + 64);
    ck_assert_uint_eq(file[0] | file[1] << 8, 184);
    for (int i = 2; i < 8; i++)
        ck_assert_uint_eq(file[i], 0);
    ck_assert(!memcmp(file + 8, header, hlen));
    ck_assert(!memcmp(file + 8 + hlen, "   ", 3));
    /* 1.5f little-endian, then -0.0f */
    static const unsigned char first[] = {0x00, 0x00, 0xC0, 0x3F, 0x00, 0x00, 0x00, 0x80};
    ck_assert(!memcmp(file + 192, first, sizeof first));

    nb_safetensors *f = nb_safetensors_open(ctx, path);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(nb_safetensors_count(f), 3);
    ck_assert_str_eq(nb_safetensors_name(f, 0), "conv1.weight");
    ck_assert_str_eq(nb_safetensors_name(f, 2), "scale");
    ck_assert_ptr_null(nb_safetensors_name(f, 3));
    ck_assert_ptr_null(nb_safetensors_name(f, -1));
    ck_assert_int_eq(nb_safetensors_find(f, "b"), 1);
    ck_assert_int_eq(nb_safetensors_find(f, "c"), -1);
    for (int i = 0; i < 3; i++) {
        nb_tensor *t = nb_safetensors_get(ctx, f, ts[i]->name, ts[i]->dtype);
        ck_assert_ptr_nonnull(t);
        ck_assert_str_eq(t->name, ts[i]->name);
        ck_assert(same_bits(t, ts[i]));
    }
    nb_tensor *sc = nb_safetensors_get(ctx, f, "scale", NB_F32);
    ck_assert_int_eq(sc->ndim, 0);
    ck_assert_int_eq(sc->numel, 1);
    ck_assert(nb_get(sc, 0) == -2.5);

    /* Saving again replaces the file whole; no temporary is left. */
    ck_assert_int_eq(nb_safetensors_save(ctx, path, 1, ts), NB_OK);
    ck_assert_int_eq(count_files(dir), 1);
    nb_safetensors_close(f);
    f = nb_safetensors_open(ctx, path);
    ck_assert_int_eq(nb_safetensors_count(f), 1);
    nb_safetensors_close(f);

    /* No tensors at all: "{}" padded to 8. */
    ck_assert_int_eq(nb_safetensors_save(ctx, path, 0, NULL), NB_OK);
    n = read_bytes(path, file, sizeof file);
    ck_assert_uint_eq(n, 16);
    ck_assert(!memcmp(file + 8, "{}      ", 8));
    f = nb_safetensors_open(ctx, path);
    ck_assert_int_eq(nb_safetensors_count(f), 0);
    ck_assert_int_eq(nb_safetensors_find(f, "a"), -1);
    nb_safetensors_close(f);
    nb_safetensors_close(NULL);

    rm_dir(dir);
    nb_ctx_free(ctx);
}
END_TEST

/* Names are escaped in the header and come back as they were. */
START_TEST(test_roundtrip_names)
{
    nb_ctx *ctx = nb_ctx_new();
    char dir[64], path[128];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    const char *names[] = {"q\"uote", "back\\slash", "new\nline", "\xc3\xa9t\xc3\xa9"};
    nb_tensor *ts[4];
    for (int i = 0; i < 4; i++)
        ts[i] = nb_tensor_set_name(nb_tensor_full(ctx, NB_F32, 1, (int64_t[]){1}, i), names[i]);
    ck_assert_int_eq(nb_safetensors_save(ctx, path, 4, ts), NB_OK);
    nb_safetensors *f = nb_safetensors_open(ctx, path);
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 4; i++) {
        ck_assert_str_eq(nb_safetensors_name(f, i), names[i]);
        nb_tensor *t = nb_safetensors_get(ctx, f, names[i], NB_F64);
        ck_assert(nb_get(t, 0) == i);
    }
    /* A message quoting such a name stays on one line. */
    ck_assert_ptr_null(nb_safetensors_get(ctx, f, "new\nline\x01", NB_F32));
    char msg[300];
    snprintf(msg, sizeof msg, "%s: no tensor named \"new\\u000aline\\u0001\"", path);
    ck_assert_str_eq(nb_errmsg(ctx), msg);
    nb_safetensors_close(f);
    rm_dir(dir);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- conversion ---------------------------------------------------------------- */

START_TEST(test_get_convert)
{
    nb_ctx *ctx = nb_ctx_new();
    fbuf fb = {.n = 0};
    fb_header(&fb, "{\"f16\":{\"dtype\":\"F16\",\"shape\":[11],\"data_offsets\":[0,22]},"
                   "\"bf16\":{\"dtype\":\"BF16\",\"shape\":[5],\"data_offsets\":[22,32]},"
                   "\"i64\":{\"dtype\":\"I64\",\"shape\":[3],\"data_offsets\":[32,56]},"
                   "\"i32\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[56,64]},"
                   "\"i16\":{\"dtype\":\"I16\",\"shape\":[2],\"data_offsets\":[64,68]},"
                   "\"i8\":{\"dtype\":\"I8\",\"shape\":[2],\"data_offsets\":[68,70]},"
                   "\"u8\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[70,72]},"
                   "\"bool\":{\"dtype\":\"BOOL\",\"shape\":[1,3],\"data_offsets\":[72,75]},"
                   "\"f32\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[75,83]},"
                   "\"f64\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[83,91]}}");
    /* F16: 1, -2, 65504 (the largest), 2^-24 (the smallest subnormal),
     * 1023 * 2^-24 (the largest subnormal), 2^-14 (the smallest normal),
     * -0, inf, -inf, nan, 1/3 rounded (0x3555 = 0.333251953125). */
    static const uint16_t f16[] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x03FF, 0x0400,
                                   0x8000, 0x7C00, 0xFC00, 0x7E00, 0x3555};
    for (int i = 0; i < 11; i++)
        fb_le(&fb, f16[i], 2);
    /* BF16: 1, -3, inf, 2^-133 (subnormal), 0x4049 = 3.140625 */
    static const uint16_t bf16[] = {0x3F80, 0xC040, 0x7F80, 0x0001, 0x4049};
    for (int i = 0; i < 5; i++)
        fb_le(&fb, bf16[i], 2);
    fb_le(&fb, (uint64_t)-1, 8);
    fb_le(&fb, ((uint64_t)1 << 40) + 1, 8);
    fb_le(&fb, (uint64_t)1 << 63, 8); /* INT64_MIN */
    fb_le(&fb, 0x80000000u, 4);       /* INT32_MIN */
    fb_le(&fb, 123456789, 4);
    fb_le(&fb, 0xFFFF, 2);
    fb_le(&fb, 0x7FFF, 2);
    fb_le(&fb, 0x80, 1);
    fb_le(&fb, 0x7F, 1);
    fb_le(&fb, 0xFF, 1);
    fb_le(&fb, 0, 1);
    fb_le(&fb, 1, 1);
    fb_le(&fb, 0, 1);
    fb_le(&fb, 2, 1); /* any non-zero byte is true */
    fb_le(&fb, 0x3DCCCCCD, 4); /* 0.1f */
    fb_le(&fb, 0xC0490FDB, 4); /* -3.14159274f */
    fb_le(&fb, 0x3FB999999999999Aull, 8); /* 0.1 */

    nb_safetensors *f = parse_fb(ctx, &fb);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(nb_safetensors_count(f), 10);

    nb_tensor *t = nb_safetensors_get(ctx, f, "f16", NB_F64);
    ck_assert(nb_get(t, 0) == 1.0);
    ck_assert(nb_get(t, 1) == -2.0);
    ck_assert(nb_get(t, 2) == 65504.0);
    ck_assert(nb_get(t, 3) == 0x1p-24);
    ck_assert(nb_get(t, 4) == 1023 * 0x1p-24);
    ck_assert(nb_get(t, 5) == 0x1p-14);
    ck_assert(nb_get(t, 6) == 0.0 && signbit(nb_get(t, 6)));
    ck_assert(nb_get(t, 7) == INFINITY);
    ck_assert(nb_get(t, 8) == -INFINITY);
    ck_assert(isnan(nb_get(t, 9)));
    ck_assert(nb_get(t, 10) == 0.333251953125);
    t = nb_safetensors_get(ctx, f, "f16", NB_F32);
    ck_assert(((float *)t->data)[3] == 0x1p-24f);
    ck_assert(((float *)t->data)[2] == 65504.0f);

    t = nb_safetensors_get(ctx, f, "bf16", NB_F32);
    ck_assert(nb_get(t, 2) == INFINITY);
    nb_set(t, 2, 0);
    tst_assert_values(t, 1, (int64_t[]){5}, (double[]){1.0, -3.0, 0, 0x1p-133, 3.140625}, 0);

    t = nb_safetensors_get(ctx, f, "i64", NB_F64);
    tst_assert_values(t, 1, (int64_t[]){3}, (double[]){-1.0, 1099511627777.0, -0x1p63}, 0);
    t = nb_safetensors_get(ctx, f, "i32", NB_F64);
    tst_assert_values(t, 1, (int64_t[]){2}, (double[]){-2147483648.0, 123456789.0}, 0);
    t = nb_safetensors_get(ctx, f, "i16", NB_F32);
    tst_assert_values(t, 1, (int64_t[]){2}, (double[]){-1.0, 32767.0}, 0);
    t = nb_safetensors_get(ctx, f, "i8", NB_F32);
    tst_assert_values(t, 1, (int64_t[]){2}, (double[]){-128.0, 127.0}, 0);
    t = nb_safetensors_get(ctx, f, "u8", NB_F64);
    tst_assert_values(t, 1, (int64_t[]){2}, (double[]){255.0, 0.0}, 0);
    t = nb_safetensors_get(ctx, f, "bool", NB_F64);
    tst_assert_values(t, 2, (int64_t[]){1, 3}, (double[]){1.0, 0.0, 1.0}, 0);

    /* F32 -> F64 is exact; F64 -> F32 rounds to nearest. */
    t = nb_safetensors_get(ctx, f, "f32", NB_F64);
    ck_assert(nb_get(t, 0) == (double)0.1f);
    ck_assert(nb_get(t, 1) == (double)-3.14159274f);
    t = nb_safetensors_get(ctx, f, "f64", NB_F32);
    ck_assert(((float *)t->data)[0] == 0.1f);
    t = nb_safetensors_get(ctx, f, "f64", NB_F64);
    ck_assert(nb_get(t, 0) == 0.1);
    nb_safetensors_close(f);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_get_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    fbuf fb = {.n = 0};
    fb_header(&fb, "{\"z\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[0,0]},"
                   "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},"
                   "\"d9\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[4,5]},"
                   "\"e\":{\"dtype\":\"BOOL\",\"shape\":[0],\"data_offsets\":[5,5]}}");
    fb_le(&fb, 0x40490FDB, 4);
    fb_le(&fb, 1, 1);
    /* Zero-sized entries are valid in the format: the file opens. */
    nb_safetensors *f = parse_fb(ctx, &fb);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(nb_safetensors_count(f), 4);

    ck_assert_ptr_null(nb_safetensors_get(ctx, f, "input", NB_F32));
    tst_assert_error(ctx, NB_ERR_FORMAT, "w.safetensors: no tensor named \"input\"");
    ck_assert_ptr_null(nb_safetensors_get(ctx, f, "z", NB_F32));
    tst_assert_error(ctx, NB_ERR_FORMAT,
                     "w.safetensors: \"z\" has shape [0, 3]: nabla tensors cannot have a "
                     "dimension of size 0");
    ck_assert_ptr_null(nb_safetensors_get(ctx, f, "e", NB_F64));
    tst_assert_error(ctx, NB_ERR_FORMAT, "w.safetensors: \"e\" has shape [0]:");
    ck_assert_ptr_null(nb_safetensors_get(ctx, f, "d9", NB_F32));
    tst_assert_error(ctx, NB_ERR_FORMAT,
                     "w.safetensors: \"d9\" has 9 dimensions (nabla tensors have at most 8)");
    ck_assert_ptr_null(nb_safetensors_get(ctx, f, "s", (nb_dtype)7));
    tst_assert_error(ctx, NB_ERR_ARG, "safetensors_get: unknown dtype 7");
    ck_assert_ptr_null(nb_safetensors_get(ctx, NULL, "s", NB_F32));
    tst_assert_error(ctx, NB_ERR_ARG, "safetensors_get: file is NULL");
    ck_assert_ptr_null(nb_safetensors_get(ctx, f, NULL, NB_F32));
    tst_assert_error(ctx, NB_ERR_ARG, "safetensors_get: name is NULL");

    nb_tensor *s = nb_safetensors_get(ctx, f, "s", NB_F64);
    ck_assert_int_eq(s->ndim, 0);
    ck_assert(nb_get(s, 0) == (double)3.14159274f);
    nb_safetensors_close(f);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- reading into a model's tensors --------------------------------------------- */

/* The state_dict of PyTorch's
 *   nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.BatchNorm2d(2), nn.ReLU(),
 *                 nn.Flatten(), nn.Linear(8, 3))
 * after torch.manual_seed(0), with batch norm weight [1.5, -0.5], bias
 * [0.25, 2], running_mean [0.125, -3], running_var [4, 0.5] and
 * num_batches_tracked 7 (I64, shape []), saved with __metadata__
 * {"format": "pt"} by a writer following the reference: entries sorted by
 * alignment then name, header padded to 8 bytes. */
static const struct {
    const char *name;
    int ndim;
    int64_t shape[4];
} seq[] = {
    {"0.weight", 4, {2, 1, 3, 3}}, {"0.bias", 1, {2}},         {"1.weight", 1, {2}},
    {"1.bias", 1, {2}},            {"1.running_mean", 1, {2}}, {"1.running_var", 1, {2}},
    {"4.weight", 2, {3, 8}},       {"4.bias", 1, {3}},
};
#define NSEQ 8

/* The model's tensors in dtype, filled with 42. */
static void seq_tensors(nb_ctx *ctx, nb_dtype dtype, nb_tensor **ts)
{
    for (int i = 0; i < NSEQ; i++)
        ts[i] = nb_tensor_set_name(nb_tensor_full(ctx, dtype, seq[i].ndim, seq[i].shape, 42),
                                   seq[i].name);
}

static void assert_all_42(nb_tensor **ts, int n)
{
    for (int i = 0; i < n; i++)
        for (int64_t j = 0; j < ts[i]->numel; j++)
            ck_assert(nb_get(ts[i], j) == 42);
}

START_TEST(test_read_torch_file)
{
    nb_ctx *ctx = nb_ctx_new();
    char path[512];
    nb_safetensors *f = nb_safetensors_open(ctx, data_path(path, sizeof path, "torch_sequential.safetensors"));
    ck_assert_msg(f != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_safetensors_count(f), 9);
    ck_assert_str_eq(nb_safetensors_name(f, 0), "1.num_batches_tracked");
    ck_assert_str_eq(nb_safetensors_name(f, 8), "4.weight");

    nb_tensor *ts[NSEQ];
    seq_tensors(ctx, NB_F32, ts);
    /* Strict, and num_batches_tracked, which no tensor takes, is fine. */
    ck_assert_int_eq(nb_safetensors_read(ctx, f, NSEQ, ts, true), NB_OK);
    const float *w0 = ts[0]->data, *w4 = ts[6]->data, *b4 = ts[7]->data;
    ck_assert(w0[0] == -0x1.471aacp-9f);
    ck_assert(w0[17] == 0x1.999d96p-3f);
    ck_assert(w4[0] == 0x1.06ff4ep-3f);
    ck_assert(w4[23] == -0x1.52089ap-2f);
    ck_assert(b4[2] == 0x1.c8d90ep-3f);
    tst_assert_values(ts[2], 1, (int64_t[]){2}, (double[]){1.5, -0.5}, 0);
    tst_assert_values(ts[3], 1, (int64_t[]){2}, (double[]){0.25, 2.0}, 0);
    tst_assert_values(ts[4], 1, (int64_t[]){2}, (double[]){0.125, -3.0}, 0);
    tst_assert_values(ts[5], 1, (int64_t[]){2}, (double[]){4.0, 0.5}, 0);

    /* Into float64 tensors: the same values, widened. */
    nb_tensor *td[NSEQ];
    seq_tensors(ctx, NB_F64, td);
    ck_assert_int_eq(nb_safetensors_read(ctx, f, NSEQ, td, true), NB_OK);
    ck_assert(nb_get(td[6], 23) == (double)-0x1.52089ap-2f);

    /* The counter itself, when asked for. */
    nb_tensor *nbt = nb_safetensors_get(ctx, f, "1.num_batches_tracked", NB_F64);
    ck_assert_int_eq(nbt->ndim, 0);
    ck_assert(nb_get(nbt, 0) == 7.0);
    nb_safetensors_close(f);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_read_mismatches)
{
    nb_ctx *ctx = nb_ctx_new();
    char path[512];
    nb_safetensors *f = nb_safetensors_open(ctx, data_path(path, sizeof path, "torch_sequential.safetensors"));
    ck_assert_ptr_nonnull(f);
    char msg[700];
    nb_tensor *ts[NSEQ + 1];

    /* Missing: a tensor the file lacks; nothing is changed. */
    seq_tensors(ctx, NB_F32, ts);
    ts[NSEQ] = nb_tensor_set_name(nb_tensor_full(ctx, NB_F32, 1, (int64_t[]){3}, 42), "5.bias");
    ck_assert_int_eq(nb_safetensors_read(ctx, f, NSEQ + 1, ts, true), NB_ERR_FORMAT);
    snprintf(msg, sizeof msg, "%s: missing \"5.bias\"", path);
    ck_assert_str_eq(nb_errmsg(ctx), msg);
    assert_all_42(ts, NSEQ + 1);

    /* Unexpected: an entry no tensor takes, an error only when strict. */
    ck_assert_int_eq(nb_safetensors_read(ctx, f, NSEQ - 1, ts, true), NB_ERR_FORMAT);
    snprintf(msg, sizeof msg, "%s: unexpected \"4.bias\"", path);
    ck_assert_str_eq(nb_errmsg(ctx), msg);
    assert_all_42(ts, NSEQ);
    ck_assert_int_eq(nb_safetensors_read(ctx, f, NSEQ - 1, ts, false), NB_OK);
    ck_assert(nb_get(ts[2], 0) == 1.5);
    ck_assert(nb_get(ts[7], 0) == 42); /* not read */

    /* A shape mismatch. */
    nb_safetensors_close(f); /* before its context */
    nb_ctx_free(ctx);
    ctx = nb_ctx_new();
    f = nb_safetensors_open(ctx, path);
    seq_tensors(ctx, NB_F64, ts);
    nb_tensor_free(ts[6]);
    ts[6] = nb_tensor_set_name(nb_tensor_full(ctx, NB_F64, 2, (int64_t[]){3, 9}, 42), "4.weight");
    ck_assert_int_eq(nb_safetensors_read(ctx, f, NSEQ, ts, false), NB_ERR_FORMAT);
    snprintf(msg, sizeof msg, "%s: \"4.weight\" has shape [3, 8] in the file but the model expects [3, 9]",
             path);
    ck_assert_str_eq(nb_errmsg(ctx), msg);
    assert_all_42(ts, NSEQ);

    /* All three kinds at once, in one line: missing, unexpected,
     * mismatched.  A scalar model tensor against a [2] entry. */
    nb_tensor_set_name(ts[0], "conv.weight");
    nb_tensor *sc = nb_tensor_set_name(nb_tensor_full(ctx, NB_F64, 0, NULL, 42), "1.bias");
    ts[3] = sc;
    ck_assert_int_eq(nb_safetensors_read(ctx, f, NSEQ, ts, true), NB_ERR_FORMAT);
    snprintf(msg, sizeof msg,
             "%s: missing \"conv.weight\"; unexpected \"0.weight\"; \"1.bias\" has shape [2] in the "
             "file but the model expects []; \"4.weight\" has shape [3, 8] in the file but the model "
             "expects [3, 9]", path);
    ck_assert_str_eq(nb_errmsg(ctx), msg);
    assert_all_42(ts, NSEQ);

    /* Long lists are cut politely. */
    nb_tensor *many[12];
    for (int i = 0; i < 12; i++) {
        char name[16];
        snprintf(name, sizeof name, "m%d", i);
        many[i] = nb_tensor_set_name(nb_tensor_new(ctx, NB_F32, 0, NULL), name);
    }
    ck_assert_int_eq(nb_safetensors_read(ctx, f, 12, many, true), NB_ERR_FORMAT);
    snprintf(msg, sizeof msg,
             "%s: missing \"m0\", \"m1\", \"m2\", \"m3\", \"m4\" and 7 more; unexpected \"0.bias\", "
             "\"0.weight\", \"1.bias\", \"1.running_mean\", \"1.running_var\" and 3 more", path);
    ck_assert_str_eq(nb_errmsg(ctx), msg);

    /* Bad arguments. */
    ck_assert_int_eq(nb_safetensors_read(ctx, NULL, 0, NULL, true), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "safetensors_read: file is NULL");
    ts[1] = NULL;
    ck_assert_int_eq(nb_safetensors_read(ctx, f, 2, ts, true), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "safetensors_read: tensor 1 is NULL");
    nb_safetensors_close(f);
    nb_ctx_free(ctx);
}
END_TEST

/* An unnamed tensor is missing, and its message still reads well; many
 * mismatches are cut too. */
START_TEST(test_read_unnamed_and_many_mismatches)
{
    nb_ctx *ctx = nb_ctx_new();
    char dir[64], path[128], msg[700];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    nb_tensor *ts[8];
    for (int i = 0; i < 8; i++) {
        char name[16];
        snprintf(name, sizeof name, "t%d", i);
        ts[i] = nb_tensor_set_name(nb_tensor_new(ctx, NB_F32, 1, (int64_t[]){2}), name);
    }
    ck_assert_int_eq(nb_safetensors_save(ctx, path, 8, ts), NB_OK);
    nb_safetensors *f = nb_safetensors_open(ctx, path);
    nb_tensor *other[8];
    for (int i = 0; i < 8; i++)
        other[i] = nb_tensor_set_name(nb_tensor_new(ctx, NB_F32, 1, (int64_t[]){3}), ts[i]->name);
    ck_assert_int_eq(nb_safetensors_read(ctx, f, 8, other, true), NB_ERR_FORMAT);
    snprintf(msg, sizeof msg,
             "%s: \"t0\" has shape [2] in the file but the model expects [3]; \"t1\" has shape [2] "
             "in the file but the model expects [3]; \"t2\" has shape [2] in the file but the model "
             "expects [3]; \"t3\" has shape [2] in the file but the model expects [3]; \"t4\" has "
             "shape [2] in the file but the model expects [3] and 3 more shape mismatches", path);
    ck_assert_str_eq(nb_errmsg(ctx), msg);
    nb_tensor *unnamed = nb_tensor_new(ctx, NB_F32, 1, (int64_t[]){2});
    ck_assert_int_eq(nb_safetensors_read(ctx, f, 1, &unnamed, false), NB_ERR_FORMAT);
    snprintf(msg, sizeof msg, "%s: missing \"\"", path);
    ck_assert_str_eq(nb_errmsg(ctx), msg);
    nb_safetensors_close(f);
    rm_dir(dir);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- malformed files ---------------------------------------------------------------- */

/* Headers that must be refused, each followed by data_len bytes. */
static const struct bad_case {
    const char *header;
    size_t data_len;
    const char *msg; /* after "w.safetensors: " */
} bad_cases[] = {
    {"{\"a\":", 0, "header is not valid JSON (at byte 4)"}, /* cJSON points at the last byte */
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1] \"data_offsets\": [0, 4]}}", 4,
     "header is not valid JSON (at byte 36)"},
    {"[{\"a\": 1}]", 0, "header does not start with '{'"},
    {" {}", 0, "header does not start with '{'"},
    {"{} x", 0, "header has more after its JSON object (at byte 3)"},
    {"{}{}", 0, "header has more after its JSON object (at byte 2)"},
    {"{\"a\x01\": 1}", 0, "header has a control character (0x01) at byte 3"},
    {"{\"\xff\": 1}", 0, "header is not valid UTF-8 (at byte 2)"},
    {"{\"\xc3\": 1}", 0, "header is not valid UTF-8 (at byte 2)"},
    {"{\"\xed\xa0\x80\": 1}", 0, "header is not valid UTF-8 (at byte 2)"}, /* a surrogate */
    {"{\"a\": 1}", 0, "\"a\" is not an object with dtype, shape and data_offsets"},
    {"{\"a\": [\"F32\", [1], [0, 4]]}", 4, "\"a\" is not an object with dtype, shape and data_offsets"},
    {"{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "\"a\": missing \"dtype\""},
    {"{\"a\": {\"dtype\": \"F32\", \"data_offsets\": [0, 4]}}", 4, "\"a\": missing \"shape\""},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", 4, "\"a\": missing \"data_offsets\""},
    {"{\"a\": {\"dtype\": \"F32\", \"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
     "\"a\": duplicate field \"dtype\""},
    {"{\"a\": {\"dtype\": 32, \"shape\": [1], \"data_offsets\": [0, 4]}}", 4, "\"a\": dtype is not a string"},
    {"{\"a\": {\"dtype\": \"F8_E4M3\", \"shape\": [1], \"data_offsets\": [0, 1]}}", 1,
     "\"a\": unsupported dtype \"F8_E4M3\" (nabla reads F16, BF16, F32, F64, I8, U8, I16, I32, I64 "
     "and BOOL)"},
    {"{\"a\": {\"dtype\": \"f32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
     "\"a\": unsupported dtype \"f32\""},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": 1, \"data_offsets\": [0, 4]}}", 4, "\"a\": shape is not a list"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": {\"0\": 1}, \"data_offsets\": [0, 4]}}", 4,
     "\"a\": shape is not a list"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2, -1], \"data_offsets\": [0, 4]}}", 4,
     "\"a\": shape[1] is not a non-negative integer"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1.5], \"data_offsets\": [0, 4]}}", 4,
     "\"a\": shape[0] is not a non-negative integer"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [\"1\"], \"data_offsets\": [0, 4]}}", 4,
     "\"a\": shape[0] is not a non-negative integer"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1e300], \"data_offsets\": [0, 4]}}", 4,
     "\"a\": shape[0] is not a non-negative integer"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", 4,
     "\"a\": data_offsets is not a list of two non-negative integers"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4, 8]}}", 8,
     "\"a\": data_offsets is not a list of two non-negative integers"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", 4,
     "\"a\": data_offsets is not a list of two non-negative integers"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, \"4\"]}}", 4,
     "\"a\": data_offsets is not a list of two non-negative integers"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": \"0-4\"}}", 4,
     "\"a\": data_offsets is not a list of two non-negative integers"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", 4,
     "\"a\": data_offsets [0, 8] go past the end of the data (4 bytes)"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4000000000000, 4000000000004]}}", 4,
     "\"a\": data_offsets [4000000000000, 4000000000004] go past the end of the data (4 bytes)"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [8, 4]}}", 8,
     "\"a\": data_offsets [8, 4] are reversed"},
    {"{\"conv1.weight\": {\"dtype\": \"F32\", \"shape\": [6, 1, 3, 3], \"data_offsets\": [0, 96]}}", 96,
     "\"conv1.weight\": data_offsets [0, 96] do not match shape [6, 1, 3, 3] of F32 (216 bytes)"},
    {"{\"a\": {\"dtype\": \"F64\", \"shape\": [], \"data_offsets\": [0, 4]}}", 4,
     "\"a\": data_offsets [0, 4] do not match shape [] of F64 (8 bytes)"},
    {"{\"a\": {\"dtype\": \"I16\", \"shape\": [4294967296, 4294967296, 2], \"data_offsets\": [0, 4]}}", 4,
     "\"a\": data_offsets [0, 4] do not match shape [4294967296, 4294967296, 2] of I16 (more than 2^64 "
     "bytes)"},
    {"{\"a\": {\"dtype\": \"I64\", \"shape\": [4294967296, 4294967296], \"data_offsets\": [0, 8]}}", 8,
     "\"a\": data_offsets [0, 8] do not match shape [4294967296, 4294967296] of I64 (more than 2^64 "
     "bytes)"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
     " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", 12,
     "\"a\" [0, 8] and \"b\" [4, 12] overlap"},
    {"{\"b\": {\"dtype\": \"U8\", \"shape\": [12], \"data_offsets\": [0, 12]},"
     " \"c\": {\"dtype\": \"U8\", \"shape\": [2], \"data_offsets\": [12, 14]},"
     " \"a\": {\"dtype\": \"U8\", \"shape\": [0], \"data_offsets\": [4, 4]}}", 14,
     "\"b\" [0, 12] and \"a\" [4, 4] overlap"},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
     " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8,
     "duplicate tensor name \"a\""},
    {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
     " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
     "duplicate tensor name \"a\""},
    {"{\"a\\u0000b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
     " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", 8,
     "duplicate tensor name \"a\""},
    {"{\"\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
     "a tensor has an empty name"},
    {"{\"a123456789b123456789c123456789d123456789e123456789f123456789abcd\": "
     "{\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}", 4,
     "tensor name \"a123456789b123456789c123456789d123456789e123456789f123456789abcd\" is longer "
     "than 63 bytes"},
    {"{\"__metadata__\": [\"format\", \"pt\"]}", 0, "__metadata__ is not an object"},
    {"{\"__metadata__\": {\"format\": \"pt\", \"epochs\": 3}}", 0,
     "__metadata__: \"epochs\" is not a string"},
    {"{\"__metadata__\": {}, \"__metadata__\": {}}", 0, "duplicate \"__metadata__\""},
};

START_TEST(test_bad_headers)
{
    const struct bad_case *c = &bad_cases[_i];
    nb_ctx *ctx = nb_ctx_new();
    fbuf fb = {.n = 0};
    fb_header(&fb, c->header);
    fb_fill(&fb, c->data_len);
    ck_assert_ptr_null(parse_fb(ctx, &fb));
    char msg[600];
    snprintf(msg, sizeof msg, "w.safetensors: %s", c->msg);
    tst_assert_error(ctx, NB_ERR_FORMAT, msg);
    ck_assert_msg(strchr(nb_errmsg(ctx), '\n') == NULL, "two lines");
    nb_ctx_free(ctx);
}
END_TEST

/* Broken below the JSON: sizes and lengths. */
START_TEST(test_bad_lengths)
{
    nb_ctx *ctx = nb_ctx_new();
    fbuf fb = {.n = 0};
    ck_assert_ptr_null(parse_fb(ctx, &fb));
    tst_assert_error(ctx, NB_ERR_FORMAT, "w.safetensors: empty file");
    ck_assert_ptr_null(nbi_safetensors_parse(ctx, NULL, 0, "w.safetensors"));
    tst_assert_error(ctx, NB_ERR_FORMAT, "w.safetensors: empty file");

    fb_le(&fb, 2, 7);
    ck_assert_ptr_null(parse_fb(ctx, &fb));
    tst_assert_error(ctx, NB_ERR_FORMAT,
                     "w.safetensors: truncated: 7 bytes, too short for the 8-byte header length");

    fb.n = 0;
    fb_le(&fb, 1234, 8);
    fb_fill(&fb, 100);
    ck_assert_ptr_null(parse_fb(ctx, &fb));
    tst_assert_error(ctx, NB_ERR_FORMAT,
                     "w.safetensors: truncated: header says 1234 bytes but the file has 100 after "
                     "the length");

    fb.n = 0;
    fb_le(&fb, (uint64_t)1 << 63, 8);
    fb_fill(&fb, 100);
    ck_assert_ptr_null(parse_fb(ctx, &fb));
    tst_assert_error(ctx, NB_ERR_FORMAT,
                     "w.safetensors: header length 9223372036854775808 is absurd (at most "
                     "100000000): not a safetensors file?");

    fb.n = 0;
    fb_le(&fb, 100000001, 8);
    ck_assert_ptr_null(parse_fb(ctx, &fb));
    tst_assert_error(ctx, NB_ERR_FORMAT, "w.safetensors: header length 100000001 is absurd");

    fb.n = 0;
    fb_le(&fb, 0, 8);
    ck_assert_ptr_null(parse_fb(ctx, &fb));
    tst_assert_error(ctx, NB_ERR_FORMAT, "w.safetensors: empty header");

    /* A NUL in the header (cJSON would skip it as a space). */
    fb.n = 0;
    fb_le(&fb, 4, 8);
    memcpy(fb.b + fb.n, "{\0 }", 4);
    fb.n += 4;
    ck_assert_ptr_null(parse_fb(ctx, &fb));
    tst_assert_error(ctx, NB_ERR_FORMAT,
                     "w.safetensors: header has a control character (0x00) at byte 1");

    /* A header cut short by the length: the JSON does not end. */
    fb.n = 0;
    fb_header(&fb, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}");
    fb.b[0] -= 2;
    fb_fill(&fb, 4);
    ck_assert_ptr_null(parse_fb(ctx, &fb));
    tst_assert_error(ctx, NB_ERR_FORMAT, "w.safetensors: header is not valid JSON");
    nb_ctx_free(ctx);
}
END_TEST

/* Files the format allows that a strict reader might wrongly refuse. */
START_TEST(test_good_headers)
{
    nb_ctx *ctx = nb_ctx_new();
    fbuf fb = {.n = 0};
    /* Padding with spaces, fields in another order, an unknown field,
     * metadata, an empty tensor, data left over at the end. */
    fb_header(&fb, "{\"__metadata__\": {\"format\": \"pt\"},\n"
                   "\t\"b\": {\"data_offsets\": [4, 12], \"shape\": [1, 2], \"dtype\": \"I32\", \"x\": 1},"
                   "\r\n \"e\": {\"dtype\": \"F64\", \"shape\": [3, 0], \"data_offsets\": [12, 12]},"
                   " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0.0, 4e0]}}     ");
    fb_le(&fb, 0x3F800000, 4);
    fb_le(&fb, 5, 4);
    fb_le(&fb, (uint32_t)-6, 4);
    fb_fill(&fb, 3);
    nb_safetensors *f = parse_fb(ctx, &fb);
    ck_assert_msg(f != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_safetensors_count(f), 3);
    ck_assert_str_eq(nb_safetensors_name(f, 0), "b");
    ck_assert_int_eq(nb_safetensors_find(f, "a"), 2);
    ck_assert_int_eq(nb_safetensors_find(f, "__metadata__"), -1);
    tst_assert_values(nb_safetensors_get(ctx, f, "b", NB_F64), 2, (int64_t[]){1, 2},
                      (double[]){5, -6}, 0);
    tst_assert_values(nb_safetensors_get(ctx, f, "a", NB_F32), 1, (int64_t[]){1}, (double[]){1}, 0);
    nb_safetensors_close(f);

    /* No tensors. */
    fb.n = 0;
    fb_header(&fb, "{}");
    f = parse_fb(ctx, &fb);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(nb_safetensors_count(f), 0);
    nb_tensor *none[1];
    ck_assert_int_eq(nb_safetensors_read(ctx, f, 0, none, true), NB_OK);
    nb_safetensors_close(f);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_open_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    char dir[64], path[128], msg[300];
    make_dir(dir, sizeof dir);

    snprintf(path, sizeof path, "%s/none.safetensors", dir);
    ck_assert_ptr_null(nb_safetensors_open(ctx, path));
    snprintf(msg, sizeof msg, "%s: cannot open: No such file or directory", path);
    tst_assert_error(ctx, NB_ERR_IO, msg);

    ck_assert_ptr_null(nb_safetensors_open(ctx, dir));
    snprintf(msg, sizeof msg, "%s: not a regular file", dir);
    tst_assert_error(ctx, NB_ERR_IO, msg);

    snprintf(path, sizeof path, "%s/empty.safetensors", dir);
    write_bytes(path, "", 0);
    ck_assert_ptr_null(nb_safetensors_open(ctx, path));
    snprintf(msg, sizeof msg, "%s: empty file", path);
    tst_assert_error(ctx, NB_ERR_FORMAT, msg);

    /* A real file cut in its data. */
    fbuf fb = {.n = 0};
    fb_header(&fb, "{\"a\": {\"dtype\": \"F32\", \"shape\": [4], \"data_offsets\": [0, 16]}}");
    fb_fill(&fb, 10);
    snprintf(path, sizeof path, "%s/cut.safetensors", dir);
    write_bytes(path, fb.b, fb.n);
    ck_assert_ptr_null(nb_safetensors_open(ctx, path));
    snprintf(msg, sizeof msg, "%s: \"a\": data_offsets [0, 16] go past the end of the data (10 bytes)",
             path);
    tst_assert_error(ctx, NB_ERR_FORMAT, msg);

    ck_assert_ptr_null(nb_safetensors_open(ctx, NULL));
    tst_assert_error(ctx, NB_ERR_ARG, "safetensors_open: path is NULL");
    rm_dir(dir);
    nb_ctx_free(ctx);
}
END_TEST

/* Only a regular file is read, in one buffer of its size: a device has no
 * end (reading /dev/zero grew past 3 GB), a pipe no size, and a FIFO with
 * no writer is refused at once instead of waited on.  A symlink is judged
 * by what it points to, the message naming the path given; nothing is
 * allocated for any of them. */
START_TEST(test_open_not_regular)
{
    nb_ctx *ctx = nb_ctx_new();
    char dir[64], path[128], msg[300];
    make_dir(dir, sizeof dir);
    uint64_t allocs = nb_alloc_count(ctx);
    static const char *const devices[] = {"/dev/zero", "/dev/null", "/dev/urandom"};
    for (int i = 0; i < 3; i++) {
        ck_assert_ptr_null(nb_safetensors_open(ctx, devices[i]));
        snprintf(msg, sizeof msg, "%s: not a regular file", devices[i]);
        tst_assert_error(ctx, NB_ERR_IO, msg);
    }
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", dir);
    ck_assert_int_eq(symlink("/dev/zero", path), 0);
    ck_assert_ptr_null(nb_safetensors_open(ctx, path));
    snprintf(msg, sizeof msg, "%s: not a regular file", path);
    tst_assert_error(ctx, NB_ERR_IO, msg);
    snprintf(path, sizeof path, "%s/fifo.safetensors", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    ck_assert_ptr_null(nb_safetensors_open(ctx, path));
    snprintf(msg, sizeof msg, "%s: not a regular file", path);
    tst_assert_error(ctx, NB_ERR_IO, msg);
    ck_assert_uint_eq(nb_alloc_count(ctx), allocs);
    /* A symlink to a regular file is that file. */
    fbuf fb = {.n = 0};
    fb_header(&fb, "{\"a\": {\"dtype\": \"U8\", \"shape\": [3], \"data_offsets\": [0, 3]}}");
    fb_fill(&fb, 3);
    snprintf(path, sizeof path, "%s/real.safetensors", dir);
    write_bytes(path, fb.b, fb.n);
    char link[160];
    snprintf(link, sizeof link, "%s/link.safetensors", dir);
    ck_assert_int_eq(symlink(path, link), 0);
    nb_safetensors *f = nb_safetensors_open(ctx, link);
    ck_assert_msg(f != NULL, "%s", nb_errmsg(ctx));
    ck_assert_int_eq(nb_safetensors_count(f), 1);
    nb_safetensors_close(f);
    rm_dir(dir);
    nb_ctx_free(ctx);
}
END_TEST

/* A file is read whole only when its size fits the context's memory limit,
 * checked before the buffer is allocated. */
START_TEST(test_open_memory_limit)
{
    nb_ctx *ctx = nb_ctx_new();
    char dir[64], path[128], msg[300];
    make_dir(dir, sizeof dir);
    fbuf fb = {.n = 0};
    fb_header(&fb, "{\"a\": {\"dtype\": \"F32\", \"shape\": [100], \"data_offsets\": [0, 400]}}");
    fb_fill(&fb, 400);
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    write_bytes(path, fb.b, fb.n);
    ck_assert_uint_eq(nb_ctx_set_memory_limit(ctx, fb.n - 1), 0);
    uint64_t allocs = nb_alloc_count(ctx);
    ck_assert_ptr_null(nb_safetensors_open(ctx, path));
    snprintf(msg, sizeof msg, "%s: reading the file whole needs %zu B, more than the memory "
             "limit of %zu B", path, fb.n, fb.n - 1);
    tst_assert_error(ctx, NB_ERR_NOMEM, msg);
    ck_assert_uint_eq(nb_alloc_count(ctx), allocs);
    ck_assert_uint_eq(nb_ctx_memory_limit(ctx), fb.n - 1);
    nb_ctx_set_memory_limit(ctx, fb.n);
    nb_safetensors *f = nb_safetensors_open(ctx, path);
    ck_assert_msg(f != NULL, "%s", nb_errmsg(ctx));
    nb_safetensors_close(f);
    /* 0 is the machine's memory again. */
    ck_assert_uint_eq(nb_ctx_set_memory_limit(ctx, 0), fb.n);
    ck_assert_uint_eq(nb_ctx_memory_limit(ctx), nb_memory_machine());
    ck_assert_uint_gt(nb_memory_machine(), (uint64_t)1 << 20);
    rm_dir(dir);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_save_errors)
{
    nb_ctx *ctx = nb_ctx_new();
    char dir[64], path[128], msg[300];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    nb_tensor *a = nb_tensor_set_name(nb_tensor_new(ctx, NB_F32, 1, (int64_t[]){2}), "a");
    nb_tensor *b = nb_tensor_set_name(nb_tensor_new(ctx, NB_F64, 1, (int64_t[]){2}), "b");
    nb_tensor *a2 = nb_tensor_set_name(nb_tensor_new(ctx, NB_F64, 0, NULL), "a");
    nb_tensor *unnamed = nb_tensor_new(ctx, NB_F32, 0, NULL);
    nb_tensor *meta = nb_tensor_set_name(nb_tensor_new(ctx, NB_F32, 0, NULL), "__metadata__");
    nb_tensor *latin1 = nb_tensor_set_name(nb_tensor_new(ctx, NB_F32, 0, NULL), "caf\xe9");

    ck_assert_int_eq(nb_safetensors_save(ctx, path, 3, (nb_tensor *[]){a, b, a2}), NB_ERR_ARG);
    snprintf(msg, sizeof msg, "%s: tensors 0 and 2 are both named \"a\"", path);
    tst_assert_error(ctx, NB_ERR_ARG, msg);
    ck_assert_int_eq(nb_safetensors_save(ctx, path, 2, (nb_tensor *[]){a, unnamed}), NB_ERR_ARG);
    snprintf(msg, sizeof msg, "%s: tensor 1 has no name", path);
    tst_assert_error(ctx, NB_ERR_ARG, msg);
    ck_assert_int_eq(nb_safetensors_save(ctx, path, 1, &meta), NB_ERR_ARG);
    snprintf(msg, sizeof msg, "%s: tensor 0: the name \"__metadata__\" is reserved", path);
    tst_assert_error(ctx, NB_ERR_ARG, msg);
    ck_assert_int_eq(nb_safetensors_save(ctx, path, 1, &latin1), NB_ERR_ARG);
    snprintf(msg, sizeof msg, "%s: tensor 0: name \"caf\xe9\" is not valid UTF-8", path);
    tst_assert_error(ctx, NB_ERR_ARG, msg);
    ck_assert_int_eq(nb_safetensors_save(ctx, path, 2, (nb_tensor *[]){a, NULL}), NB_ERR_ARG);
    snprintf(msg, sizeof msg, "%s: tensor 1 is NULL", path);
    tst_assert_error(ctx, NB_ERR_ARG, msg);
    ck_assert_int_eq(nb_safetensors_save(ctx, NULL, 1, &a), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "safetensors_save: path is NULL");
    ck_assert_int_eq(count_files(dir), 0);

    /* A directory that does not exist: nothing is written anywhere. */
    snprintf(path, sizeof path, "%s/missing/w.safetensors", dir);
    ck_assert_int_eq(nb_safetensors_save(ctx, path, 2, (nb_tensor *[]){a, b}), NB_ERR_IO);
    snprintf(msg, sizeof msg, "%s: cannot write: No such file or directory", path);
    tst_assert_error(ctx, NB_ERR_IO, msg);
    ck_assert_int_eq(count_files(dir), 0);

    /* The destination is a directory: the temporary file is written, the
     * rename fails, and the temporary file is removed. */
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    ck_assert_int_eq(nb_safetensors_save(ctx, path, 2, (nb_tensor *[]){a, b}), NB_ERR_IO);
    snprintf(msg, sizeof msg, "%s: cannot write: Is a directory", path);
    tst_assert_error(ctx, NB_ERR_IO, msg);
    ck_assert_int_eq(count_files(dir), 1);
    ck_assert_int_eq(rmdir(path), 0);

    /* A write that fails half way (the file size limit, which binds root
     * too): the temporary file is removed.  In a child, so the limit does
     * not outlive the test. */
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        nb_tensor *big = nb_tensor_set_name(nb_tensor_new(ctx, NB_F32, 1, (int64_t[]){4096}), "big");
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit rl = {1000, 1000};
        int fail = 0;
        if (!big || setrlimit(RLIMIT_FSIZE, &rl) != 0)
            fail = 2;
        else if (nb_safetensors_save(ctx, path, 1, &big) != NB_ERR_IO)
            fail = 3;
        snprintf(msg, sizeof msg, "%s: cannot write: File too large", path);
        if (!fail && strcmp(nb_errmsg(ctx), msg) != 0)
            fail = 4;
        if (!fail && count_files(dir) != 0)
            fail = 5;
        nb_ctx_free(ctx); /* for valgrind, which follows the child */
        _exit(fail);
    }
    int status = -1;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: %d", status);
    rm_dir(dir);
    nb_ctx_free(ctx);
}
END_TEST

/* ---- allocation failure ---------------------------------------------------------------- */

/* Fails the k-th allocation for every k while opening a file, getting an
 * entry, reading into tensors and saving: each run must report
 * NB_ERR_NOMEM or succeed, never crash or leak. */
START_TEST(test_alloc_failure)
{
    char path[512], dir[64], out[128];
    data_path(path, sizeof path, "torch_sequential.safetensors");
    make_dir(dir, sizeof dir);
    snprintf(out, sizeof out, "%s/w.safetensors", dir);
    int k = 0;
    for (;; k++) {
        tst_failing fl = {k};
        nb_allocator al = {tst_failing_alloc, tst_failing_free, &fl};
        nb_ctx *ctx = nb_ctx_new_with(&al);
        if (!ctx)
            continue;
        int rc = NB_OK;
        nb_safetensors *f = nb_safetensors_open(ctx, path);
        nb_tensor *ts[NSEQ] = {NULL};
        if (!f)
            rc = nb_error(ctx);
        if (rc == NB_OK) {
            nb_tensor *t = nb_safetensors_get(ctx, f, "1.num_batches_tracked", NB_F64);
            rc = t ? NB_OK : nb_error(ctx);
        }
        for (int i = 0; rc == NB_OK && i < NSEQ; i++) {
            ts[i] = nb_tensor_new(ctx, NB_F32, seq[i].ndim, seq[i].shape);
            if (ts[i])
                nb_tensor_set_name(ts[i], seq[i].name);
            else
                rc = nb_error(ctx);
        }
        if (rc == NB_OK)
            rc = nb_safetensors_read(ctx, f, NSEQ, ts, true);
        if (rc == NB_OK)
            rc = nb_safetensors_save(ctx, out, NSEQ, ts);
        ck_assert_msg(rc == NB_OK || rc == NB_ERR_NOMEM, "k=%d: %s", k, nb_errmsg(ctx));
        if (rc == NB_ERR_NOMEM)
            ck_assert_str_eq(nb_status_str(nb_error(ctx)), "out of memory");
        nb_safetensors_close(f);
        nb_ctx_free(ctx);
        if (rc == NB_OK)
            break;
        /* No temporary file survives a failed save. */
        ck_assert_int_le(count_files(dir), 1);
    }
    ck_assert_int_gt(k, 8);
    rm_dir(dir);
}
END_TEST

/* __metadata__ written by save_meta comes back by key; a file without it
 * answers NULL; the tensors are unaffected. */
START_TEST(test_metadata)
{
    char dir[64], path[128];
    make_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *t = tst_make(ctx, NB_F32, 1, (int64_t[]){2}, (double[]){1.5, -2});
    nb_tensor_set_name(t, "w");
    const char *keys[] = {"epoch", "note"}, *vals[] = {"3", "a \"quoted\" value"};
    ck_assert_int_eq(nb_safetensors_save_meta(ctx, path, 1, &t, 2, keys, vals), NB_OK);
    nb_safetensors *f = nb_safetensors_open(ctx, path);
    ck_assert_ptr_nonnull(f);
    ck_assert_str_eq(nb_safetensors_meta(f, "epoch"), "3");
    ck_assert_str_eq(nb_safetensors_meta(f, "note"), "a \"quoted\" value");
    ck_assert_ptr_null(nb_safetensors_meta(f, "missing"));
    ck_assert_int_eq(nb_safetensors_count(f), 1);
    nb_tensor *g = nb_safetensors_get(ctx, f, "w", NB_F32);
    ck_assert(same_bits(g, t));
    nb_safetensors_close(f);
    ck_assert_int_eq(nb_safetensors_save(ctx, path, 1, &t), NB_OK);
    f = nb_safetensors_open(ctx, path);
    ck_assert_ptr_null(nb_safetensors_meta(f, "epoch"));
    nb_safetensors_close(f);
    const char *bad[] = {NULL};
    ck_assert_int_eq(nb_safetensors_save_meta(ctx, path, 1, &t, 1, keys, bad), NB_ERR_ARG);
    tst_assert_error(ctx, NB_ERR_ARG, "metadata 0 is not a pair of UTF-8 strings");
    nb_ctx_free(ctx);
    rm_dir(dir);
}
END_TEST

Suite *tst_suite_safetensors(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("roundtrip");
    tcase_add_test(tc, test_roundtrip);
    tcase_add_test(tc, test_roundtrip_names);
    tcase_add_test(tc, test_metadata);
    tcase_add_test(tc, test_get_convert);
    tcase_add_test(tc, test_get_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("read");
    tcase_add_test(tc, test_read_torch_file);
    tcase_add_test(tc, test_read_mismatches);
    tcase_add_test(tc, test_read_unnamed_and_many_mismatches);
    suite_add_tcase(s, tc);
    tc = tcase_create("malformed");
    tcase_add_loop_test(tc, test_bad_headers, 0, (int)(sizeof bad_cases / sizeof bad_cases[0]));
    tcase_add_test(tc, test_bad_lengths);
    tcase_add_test(tc, test_good_headers);
    tcase_add_test(tc, test_open_errors);
    tcase_add_test(tc, test_open_not_regular);
    tcase_add_test(tc, test_open_memory_limit);
    tcase_add_test(tc, test_save_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("alloc");
    tcase_add_test(tc, test_alloc_failure);
    suite_add_tcase(s, tc);
    return s;
}
