/*
 * fuzz_idx.c - libFuzzer harness for the IDX reader (raw and gzipped).
 * Build and run it with scripts/fuzz.sh idx [seconds].
 *
 * The bytes are read both as an images file and as a labels file: each
 * read must either give exactly the values its header promises or fail
 * with a one-line message, without leaking, and never hold more than the
 * context's memory limit (read with the machine's, then with 100 bytes).
 * Crashes and leaks are the sanitizers' to find.
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

static void check(nb_ctx *ctx, const uint8_t *data, size_t size, int ndim)
{
    int64_t dims[3] = {-1, -1, -1};
    uint8_t *v = nbi_idx_parse(ctx, data, size, "fuzz.idx", ndim, dims);
    if (!v) {
        REQUIRE(nb_error(ctx) == NB_ERR_FORMAT || nb_error(ctx) == NB_ERR_NOMEM);
        REQUIRE(strncmp(nb_errmsg(ctx), "fuzz.idx: ", 10) == 0);
        REQUIRE(strchr(nb_errmsg(ctx), '\n') == NULL);
        nb_clear_error(ctx);
        return;
    }
    uint64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        REQUIRE(dims[i] >= 1 && dims[i] <= UINT32_MAX);
        n *= (uint64_t)dims[i];
    }
    /* A raw file holds its values after the header; a gzipped one cannot
     * expand more than deflate allows. */
    if (size < 2 || data[0] != 0x1f || data[1] != 0x8b)
        REQUIRE(n + 4 + 4 * (uint64_t)ndim == size);
    else
        REQUIRE(n <= (uint64_t)size * 1032 + 1024);
    /* What the memory limit refuses is never read. */
    REQUIRE(n <= nb_ctx_memory_limit(ctx));
    unsigned sum = 0;
    for (uint64_t i = 0; i < n; i++) /* every value is readable */
        sum += v[i];
    REQUIRE(nb_error(ctx) == NB_OK && sum <= 255 * n);
    nbi_free(ctx, v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nb_ctx *ctx = nb_ctx_new();
    if (!ctx)
        return 0;
    check(ctx, data, size, 3);
    check(ctx, data, size, 1);
    /* Again under a limit that some headers exceed. */
    nb_ctx_set_memory_limit(ctx, 100);
    check(ctx, data, size, 3);
    check(ctx, data, size, 1);
    nb_ctx_free(ctx);
    return 0;
}
