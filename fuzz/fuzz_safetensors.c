/*
 * fuzz_safetensors.c - libFuzzer harness for the safetensors reader.
 * Build and run it with scripts/fuzz.sh safetensors [seconds].
 *
 * Any bytes must either parse or fail with a one-line message; a file that
 * parses must give every entry in both dtypes (or a message saying why
 * not), and read those tensors back.  Leaks and crashes are the
 * sanitizers' to find.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "io/safetensors.h"

/* A broken promise of the API: stop here, where the fuzzer sees it. */
#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!(cond))                                                          \
            __builtin_trap();                                                 \
    } while (0)

static void failed_with_message(const nb_ctx *ctx)
{
    REQUIRE(nb_error(ctx) != NB_OK);
    REQUIRE(nb_errmsg(ctx)[0] != '\0');
    REQUIRE(strchr(nb_errmsg(ctx), '\n') == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    nb_ctx *ctx = nb_ctx_new();
    if (!ctx)
        return 0;
    nb_safetensors *f = nbi_safetensors_parse(ctx, data, size, "fuzz.safetensors");
    if (!f) {
        failed_with_message(ctx);
        nb_ctx_free(ctx);
        return 0;
    }
    int n = nb_safetensors_count(f);
    REQUIRE(n >= 0);
    nb_tensor **got = calloc((size_t)n + 1, sizeof *got);
    int ngot = 0;
    for (int i = 0; i < n; i++) {
        const char *name = nb_safetensors_name(f, i);
        REQUIRE(name && name[0] && strlen(name) < 64);
        REQUIRE(nb_safetensors_find(f, name) == i);
        nb_tensor *a = nb_safetensors_get(ctx, f, name, NB_F32);
        nb_tensor *b = nb_safetensors_get(ctx, f, name, NB_F64);
        REQUIRE((a == NULL) == (b == NULL));
        if (!a) {
            failed_with_message(ctx);
            continue;
        }
        REQUIRE(!strcmp(a->name, name) && nb_same_shape(a, b));
        for (int64_t j = 0; j < a->numel; j++) { /* the same value, rounded */
            double x = nb_get(b, j);
            REQUIRE(x != x || (float)x == ((float *)a->data)[j]);
        }
        nb_tensor_free(a);
        if (got)
            got[ngot++] = b;
    }
    /* Reading every loadable entry back must succeed; strict only when
     * every entry was loadable. */
    nb_clear_error(ctx);
    if (got) {
        int rc = nb_safetensors_read(ctx, f, ngot, got, ngot == n);
        REQUIRE(rc == NB_OK);
    }
    REQUIRE(nb_safetensors_find(f, "") == -1);
    REQUIRE(nb_safetensors_name(f, n) == NULL);
    free(got);
    nb_safetensors_close(f);
    nb_ctx_free(ctx);
    return 0;
}
