/*
 * safetensors.h - the safetensors reader's entry point below the file
 * system, for the fuzzer and the tests.
 */
#ifndef NABLA_IO_SAFETENSORS_H
#define NABLA_IO_SAFETENSORS_H

#include "internal.h"

/* Parses a whole safetensors file held in memory (len bytes, copied), as
 * nb_safetensors_open does after reading it; `origin` names it in
 * messages.  NULL on error, NB_ERR_FORMAT for malformed content. */
nb_safetensors *nbi_safetensors_parse(nb_ctx *ctx, const void *buf, size_t len,
                                      const char *origin);

#endif
