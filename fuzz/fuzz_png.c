/*
 * fuzz_png.c - libFuzzer harness for the PNG reader and the resizer.
 * Build and run it with scripts/fuzz.sh png [seconds].
 *
 * The bytes are decoded twice: as they are (so CRC errors are exercised)
 * and with every chunk's CRC recomputed (so mutated chunks reach the
 * decoder instead of failing their check).  Each decode, in color and in
 * gray, must give a [C, H, W] image of values in [0, 1] or fail with a
 * one-line message; small images are then resized to a size taken from the
 * input.  Crashes and leaks are the sanitizers' to find.
 *
 * Headers claiming more than 2^22 pixels are skipped: a few kilobytes of
 * deflate can hold that many (decoding them is legal, only slow), and the
 * refusal of larger claims that the data cannot back is tested in
 * tests/test_image.c.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "internal.h"

/* A broken promise of the API: stop here, where the fuzzer sees it. */
#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!(cond))                                                          \
            __builtin_trap();                                                 \
    } while (0)

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Rewrites the CRC of every whole chunk after the 8-byte signature. */
static void fix_crcs(uint8_t *p, size_t size)
{
    size_t at = 8;
    while (at + 12 <= size) {
        uint32_t len = be32(p + at);
        if (len > size - at - 12)
            break;
        uint32_t crc = (uint32_t)crc32(0, p + at + 4, len + 4);
        uint8_t *c = p + at + 8 + len;
        c[0] = (uint8_t)(crc >> 24), c[1] = (uint8_t)(crc >> 16);
        c[2] = (uint8_t)(crc >> 8), c[3] = (uint8_t)crc;
        at += 12 + (size_t)len;
    }
}

static void check(nb_ctx *ctx, const uint8_t *data, size_t size, nb_dtype dtype, bool gray)
{
    nb_tensor *t = nb_png_decode(ctx, data, size, "fuzz.png", dtype, gray);
    if (!t) {
        REQUIRE(nb_error(ctx) == NB_ERR_FORMAT || nb_error(ctx) == NB_ERR_NOMEM);
        REQUIRE(strncmp(nb_errmsg(ctx), "fuzz.png: ", 10) == 0);
        REQUIRE(strchr(nb_errmsg(ctx), '\n') == NULL);
        nb_clear_error(ctx);
        return;
    }
    REQUIRE(t->ndim == 3 && t->dtype == dtype);
    REQUIRE(gray ? t->shape[0] == 1 : t->shape[0] >= 1 && t->shape[0] <= 4);
    REQUIRE(t->shape[1] >= 1 && t->shape[2] >= 1);
    for (int64_t i = 0; i < t->numel; i++) {
        double v = nb_get(t, i);
        REQUIRE(v >= 0 && v <= 1);
    }
    if (t->numel <= 4096 && size >= 2) {
        int64_t h = 1 + data[size - 1] % 40, w = 1 + data[size - 2] % 40;
        nb_tensor *r = nb_image_resize(ctx, t, h, w);
        REQUIRE(r && r->shape[0] == t->shape[0] && r->shape[1] == h && r->shape[2] == w);
        for (int64_t i = 0; i < r->numel; i++) { /* a weighted mean */
            double v = nb_get(r, i);
            REQUIRE(v >= -1e-6 && v <= 1 + 1e-6);
        }
        nb_tensor_free(r);
    }
    nb_tensor_free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size >= 24 && (uint64_t)be32(data + 16) * be32(data + 20) > ((uint64_t)1 << 22))
        return 0;
    nb_ctx *ctx = nb_ctx_new();
    if (!ctx)
        return 0;
    check(ctx, data, size, NB_F32, false);
    uint8_t *fixed = malloc(size ? size : 1);
    if (fixed) {
        memcpy(fixed, data, size);
        fix_crcs(fixed, size);
        check(ctx, fixed, size, NB_F32, false);
        check(ctx, fixed, size, NB_F64, true);
        free(fixed);
    }
    REQUIRE(ctx->persistent.next_ == &ctx->persistent); /* every tensor freed */
    nb_ctx_free(ctx);
    return 0;
}
