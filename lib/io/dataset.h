/*
 * dataset.h - what the data set readers share below nabla.h: the data set
 * made of arrays a reader has filled (dataset.c), and the readers of each
 * format, with their parsers of memory for the fuzzers and the tests: IDX
 * and PNG folders (datafiles.c), CIFAR's binary files (cifar.c), NumPy's
 * .npz (npz.c).
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

/* A data set of n examples [c, h, w] (c from 1 to NB_MAX_CHANNELS) made of
 * the arrays given, allocated with nbi_alloc, which it owns from then on
 * (they are freed on error too): either pixels (uint8, n c h w) or values
 * (float, n c h w, each finite), the other NULL; labels (n, each >= 0 and
 * below INT32_MAX); names (nnames class names, or NULL with nnames 0).
 * origin is copied.  NULL on error: NB_ERR_ARG for a bad size or label,
 * NB_ERR_NOMEM. */
nb_dataset *nbi_dataset_adopt(nb_ctx *ctx, int64_t n, int64_t c, int64_t h, int64_t w,
                              uint8_t *pixels, float *values, int32_t *labels, char **names,
                              int nnames, const char *origin);
/* Marks the last nval examples of ds as its own validation split (an .npz
 * file's X_valid after X_train), which the trainer then validates on. */
void nbi_dataset_set_validation(nb_dataset *ds, int64_t nval);
/* Replaces where ds came from (a copy); NB_ERR_NOMEM. */
int nbi_dataset_set_origin(nb_dataset *ds, const char *origin);

/* Images larger than this are refused by every reader. */
#define NBI_MAX_IMAGE_PIXELS ((uint64_t)1 << 24)

/* CIFAR-10 (data_batch_1.bin ... data_batch_5.bin, test_batch.bin) or
 * CIFAR-100 (train.bin, test.bin) binary files in dir, class names from
 * batches.meta.txt or fine_label_names.txt when present.  *found false
 * (and NULL, no error set) when dir holds neither layout's files. */
nb_dataset *nbi_cifar_load(nb_ctx *ctx, const char *dir, bool train, bool *found);
/* The records of one CIFAR-10 file (or CIFAR-100's, cifar100_layout) in
 * memory, for the fuzzer and the tests. */
nb_dataset *nbi_cifar_parse(nb_ctx *ctx, const void *buf, size_t len, const char *origin,
                            bool cifar100_layout);

/* The train (X_train, y_train, then X_valid, y_valid as the validation
 * split) or test (X_test, y_test) half of an .npz file, from a path or
 * from memory (origin names it in messages). */
nb_dataset *nbi_npz_load(nb_ctx *ctx, const char *path, bool train);
nb_dataset *nbi_npz_parse(nb_ctx *ctx, const void *buf, size_t len, const char *origin,
                          bool train);

#endif
