/*
 * dataset.h - the IDX reader below the file system, for the fuzzer and the
 * tests.
 */
#ifndef NABLA_IO_DATASET_H
#define NABLA_IO_DATASET_H

#include "internal.h"

/* Parses one IDX file held in memory (len bytes, raw or gzipped), as
 * nb_dataset_load_idx does after opening it: an images file (ndim 3, dims
 * gets N, H, W) or a labels file (ndim 1, dims gets N).  Returns its uint8
 * values, to be freed with nbi_free; NULL on error (NB_ERR_FORMAT naming
 * `origin`, or NB_ERR_NOMEM). */
uint8_t *nbi_idx_parse(nb_ctx *ctx, const void *buf, size_t len, const char *origin,
                       int ndim, int64_t *dims);

#endif
