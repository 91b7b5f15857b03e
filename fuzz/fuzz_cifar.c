/*
 * fuzz_cifar.c - libFuzzer harness for the CIFAR-10 and CIFAR-100 record
 * parser.  Build and run it with scripts/fuzz.sh cifar [seconds].
 *
 * The bytes are read as a CIFAR-10 file and as a CIFAR-100 file: each read
 * must either give a data set of exactly the records the size holds, every
 * label in range and every pixel the record's, or fail with a one-line
 * message naming the input, without leaking.
 */
#include <stdint.h>
#include <string.h>

#include "io/dataset.h"

/* A broken promise of the API: stop here, where the fuzzer sees it. */
#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!(cond))                                                          \
            __builtin_trap();                                                 \
    } while (0)

static void check(nb_ctx *ctx, const uint8_t *data, size_t size, bool cifar100)
{
    size_t label_bytes = cifar100 ? 2 : 1, record = label_bytes + 3072;
    nb_dataset *ds = nbi_cifar_parse(ctx, data, size, "fuzz.bin", cifar100);
    if (!ds) {
        REQUIRE(nb_error(ctx) == NB_ERR_FORMAT || nb_error(ctx) == NB_ERR_NOMEM);
        REQUIRE(strncmp(nb_errmsg(ctx), "fuzz.bin: ", 10) == 0);
        REQUIRE(strchr(nb_errmsg(ctx), '\n') == NULL);
        nb_clear_error(ctx);
        return;
    }
    int64_t n = nb_dataset_size(ds), shape[3];
    nb_dataset_shape(ds, shape);
    REQUIRE(size % record == 0 && (size_t)n == size / record);
    REQUIRE(shape[0] == 3 && shape[1] == 32 && shape[2] == 32);
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *r = data + (size_t)i * record;
        REQUIRE(nb_dataset_label(ds, i) == r[label_bytes - 1]);
        REQUIRE(nb_dataset_label(ds, i) < (cifar100 ? 100 : 10));
        REQUIRE(memcmp(nb_dataset_image(ds, i), r + label_bytes, 3072) == 0);
    }
    nb_dataset_free(ds);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nb_ctx *ctx = nb_ctx_new();
    if (!ctx)
        return 0;
    check(ctx, data, size, false);
    check(ctx, data, size, true);
    nb_ctx_free(ctx);
    return 0;
}
