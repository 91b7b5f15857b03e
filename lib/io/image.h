/*
 * image.h - the PNG reader below the file system, for the fuzzer and the
 * tests.
 */
#ifndef NABLA_IO_IMAGE_H
#define NABLA_IO_IMAGE_H

#include "internal.h"

/* Decodes a PNG held in memory (len bytes, not copied), as nb_png_read does
 * after reading the file; `origin` names it in messages.  NULL on error:
 * NB_ERR_FORMAT for content that is not a valid PNG, NB_ERR_NOMEM. */
nb_tensor *nbi_png_read_mem(nb_ctx *ctx, const void *buf, size_t len,
                            const char *origin, nb_dtype dtype, bool gray);

#endif
