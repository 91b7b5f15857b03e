/*
 * fuzz_npz.c - libFuzzer harness for the .npz reader (zip archives of .npy
 * arrays, entries stored or deflated).  Build and run it with
 * scripts/fuzz.sh npz [seconds]; the seeds are tests/data/npz/*.npz.
 *
 * The bytes are read twice: as an archive, and as the arrays of one, which
 * the harness zips itself (with the right CRCs, which random edits of an
 * archive seldom keep): the pieces between the separators "NPZ|" are
 * X_train.npy, y_train.npy, X_valid.npy, y_valid.npy, stored, and again as
 * X_test.npy and y_test.npy, deflated when the input's length is odd
 * (deflating every time would slow the fuzzer down a lot).  Each archive is read as the
 * training half (X_train, y_train, maybe X_valid and y_valid) and as the
 * test half (X_test, y_test): each read must either
 * give a data set that keeps every promise of the API or fail with a
 * one-line message naming the input, without leaking, and never hold more
 * than the context's memory limit (read with the machine's, then with
 * 4 KiB).  Crashes and leaks are the sanitizers' to find.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zip.h>

#include "io/dataset.h"

/* A broken promise of the API: stop here, where the fuzzer sees it. */
#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!(cond))                                                          \
            __builtin_trap();                                                 \
    } while (0)

static void check(nb_ctx *ctx, const uint8_t *data, size_t size, bool train)
{
    nb_dataset *ds = nbi_npz_parse(ctx, data, size, "fuzz.npz", train);
    if (!ds) {
        REQUIRE(nb_error(ctx) == NB_ERR_FORMAT || nb_error(ctx) == NB_ERR_NOMEM);
        REQUIRE(strncmp(nb_errmsg(ctx), "fuzz.npz: ", 10) == 0);
        REQUIRE(strchr(nb_errmsg(ctx), '\n') == NULL);
        nb_clear_error(ctx);
        return;
    }
    REQUIRE(nb_error(ctx) == NB_OK);
    REQUIRE(strcmp(nb_dataset_origin(ds), "fuzz.npz") == 0);
    int64_t n = nb_dataset_size(ds), shape[3];
    REQUIRE(nb_dataset_shape(ds, shape) == 3);
    REQUIRE(n >= 1);
    REQUIRE(shape[0] >= 1 && shape[0] <= NB_MAX_CHANNELS && shape[1] >= 1 && shape[2] >= 1);
    REQUIRE((uint64_t)shape[1] * (uint64_t)shape[2] <= (uint64_t)1 << 24);
    int64_t nval = nb_dataset_validation(ds);
    REQUIRE(nval >= 0 && nval < n && (train || nval == 0));
    const int64_t per = shape[0] * shape[1] * shape[2];
    const bool floats = nb_dataset_values(ds, 0) != NULL;
    REQUIRE(floats != (nb_dataset_image(ds, 0) != NULL));
    /* What the memory limit refuses is never read; nor more than deflate
     * can give from the input. */
    uint64_t bytes = (uint64_t)n * (uint64_t)per * (floats ? 4 : 1) + 4 * (uint64_t)n;
    REQUIRE(bytes <= nb_ctx_memory_limit(ctx));
    REQUIRE(bytes <= (uint64_t)size * 1032 * 8 + 4096);
    int nclasses = nb_dataset_num_classes(ds);
    REQUIRE(nclasses >= 1);
    unsigned sum = 0;
    for (int64_t i = 0; i < n; i++) {
        int32_t label = nb_dataset_label(ds, i);
        REQUIRE(label >= 0 && label < nclasses);
        if (floats) {
            const float *v = nb_dataset_values(ds, i);
            REQUIRE(v && !nb_dataset_image(ds, i));
            for (int64_t k = 0; k < per; k++)
                REQUIRE(isfinite(v[k]));
        } else {
            const uint8_t *p = nb_dataset_image(ds, i);
            REQUIRE(p && !nb_dataset_values(ds, i));
            for (int64_t k = 0; k < per; k++) /* every value is readable */
                sum += p[k];
        }
    }
    REQUIRE(nb_dataset_image(ds, n) == NULL && nb_dataset_values(ds, n) == NULL);
    REQUIRE(nb_dataset_label(ds, n) == -1);
    (void)sum;
    nb_dataset_free(ds);
}

static void check_all(const uint8_t *data, size_t size)
{
    nb_ctx *ctx = nb_ctx_new();
    if (!ctx)
        return;
    check(ctx, data, size, true);
    check(ctx, data, size, false);
    /* Again under a limit that some archives exceed. */
    nb_ctx_set_memory_limit(ctx, 4096);
    check(ctx, data, size, true);
    check(ctx, data, size, false);
    nb_ctx_free(ctx);
}

#define SEP "NPZ|"
#define SEP_LEN 4

/* The pieces of data as the entries of an archive in memory, checked; a
 * libzip failure (out of memory) skips the input. */
static void check_zipped(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"X_train.npy", "y_train.npy", "X_valid.npy",
                                        "y_valid.npy", "X_test.npy", "y_test.npy"};
    const uint8_t *piece[4];
    size_t len[4];
    int n = 0;
    const uint8_t *p = data, *end = data + size;
    while (n < 4) {
        const uint8_t *q = p;
        while (q + SEP_LEN <= end && memcmp(q, SEP, SEP_LEN) != 0)
            q++;
        if (q + SEP_LEN > end)
            q = end;
        piece[n] = p;
        len[n++] = (size_t)(q - p);
        if (q == end)
            break;
        p = q + SEP_LEN;
    }
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t *src = zip_source_buffer_create(NULL, 0, 0, &err);
    zip_error_fini(&err);
    if (!src)
        return;
    zip_source_keep(src);
    zip_t *za = zip_open_from_source(src, ZIP_TRUNCATE, NULL);
    bool ok = za != NULL;
    for (int i = 0; ok && i < 6; i++) {
        int k = i < 4 ? i : i - 4;
        if (k >= n)
            continue;
        zip_source_t *s = zip_source_buffer(za, piece[k], len[k], 0);
        zip_int64_t idx = s ? zip_file_add(za, names[i], s, 0) : -1;
        if (s && idx < 0)
            zip_source_free(s);
        ok = idx >= 0 && zip_set_file_compression(za, (zip_uint64_t)idx,
                                                  i >= 4 && size % 2 ? ZIP_CM_DEFLATE
                                                                     : ZIP_CM_STORE, 0) == 0;
    }
    if (za && (!ok || zip_close(za) != 0)) {
        zip_discard(za);
        ok = false;
    }
    zip_stat_t st;
    uint8_t *buf = NULL;
    if (ok && zip_source_open(src) == 0) {
        if (zip_source_stat(src, &st) == 0 && (st.valid & ZIP_STAT_SIZE) &&
            (buf = malloc(st.size ? st.size : 1)) &&
            zip_source_read(src, buf, st.size) == (zip_int64_t)st.size)
            check_all(buf, st.size);
        zip_source_close(src);
    }
    free(buf);
    zip_source_free(src);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_all(data, size);
    check_zipped(data, size);
    return 0;
}
