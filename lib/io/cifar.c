/*
 * cifar.c - the binary versions of CIFAR-10 and CIFAR-100.  A file is
 * records of the label bytes (CIFAR-10: one, 0 to 9; CIFAR-100: the coarse
 * label, 0 to 19, then the fine one, 0 to 99, which is the one kept) and
 * 3,072 pixel bytes: the red plane, then green, then blue, each 32 rows of
 * 32, which is the data set's [3, 32, 32] layout as it is.
 *
 * CIFAR-10's training files are data_batch_1.bin, data_batch_2.bin, ...
 * (read from 1 up to the first one missing: the distribution has 5), its
 * test file test_batch.bin, its class names batches.meta.txt (one a line);
 * CIFAR-100's are train.bin, test.bin and fine_label_names.txt.  They are
 * looked for in the directory given, then, when it holds neither layout,
 * in the folder its archive unpacks to there: cifar-10-batches-bin/ or
 * cifar-100-binary/.  Every file's size must be a whole number of records,
 * checked with the memory limit before the pixels are allocated.
 */
#include "io/dataset.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#define PIXELS 3072 /* 3 x 32 x 32 */
#define MAX_FILES 64
#define MAX_NAME 255
#define MAX_NAMES_FILE 65536

typedef struct cifar_kind {
    const char *name;
    int label_bytes;  /* 1, or 2 (coarse then fine) */
    int classes;      /* of the kept label */
    int coarse;       /* CIFAR-100's coarse classes, 0 for CIFAR-10 */
    const char *names_file;
} cifar_kind;

static const cifar_kind cifar10 = {"CIFAR-10", 1, 10, 0, "batches.meta.txt"};
static const cifar_kind cifar100 = {"CIFAR-100", 2, 100, 20, "fine_label_names.txt"};

/* Copies the n records of buf into pixels and labels, checking each
 * label; origin names buf in messages. */
static int parse_records(nb_ctx *ctx, const cifar_kind *k, const uint8_t *buf, int64_t n,
                         const char *origin, uint8_t *pixels, int32_t *labels)
{
    const size_t record = (size_t)(k->label_bytes + PIXELS);
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *r = buf + (size_t)i * record;
        if (k->coarse && r[0] >= k->coarse)
            return nbi_fail(ctx, NB_ERR_FORMAT, "%s: record %" PRId64 "'s coarse label is %d "
                            "(%s's are 0 to %d)", origin, i, r[0], k->name, k->coarse - 1);
        int label = r[k->label_bytes - 1];
        if (label >= k->classes)
            return nbi_fail(ctx, NB_ERR_FORMAT, "%s: record %" PRId64 "'s label is %d (%s's "
                            "are 0 to %d)", origin, i, label, k->name, k->classes - 1);
        labels[i] = label;
        memcpy(pixels + (size_t)i * PIXELS, r + k->label_bytes, PIXELS);
    }
    return NB_OK;
}

/* The records a file of `bytes` holds, or -1 (an error set) when it is
 * empty or not a whole number of them. */
static int64_t record_count(nb_ctx *ctx, const cifar_kind *k, uint64_t bytes, const char *origin)
{
    uint64_t record = (uint64_t)(k->label_bytes + PIXELS);
    if (bytes != 0 && bytes % record == 0)
        return (int64_t)(bytes / record);
    nbi_fail(ctx, NB_ERR_FORMAT, "%s: %" PRIu64 " bytes is not a whole number of %" PRIu64
             "-byte records (%s: %d label byte%s and 3,072 pixel bytes each)%s", origin, bytes,
             record, k->name, k->label_bytes, k->label_bytes > 1 ? "s" : "",
             bytes ? ": truncated?" : "");
    return -1;
}

nb_dataset *nbi_cifar_parse(nb_ctx *ctx, const void *buf, size_t len, const char *origin,
                            bool cifar100_layout)
{
    const cifar_kind *k = cifar100_layout ? &cifar100 : &cifar10;
    int64_t n = record_count(ctx, k, len, origin);
    if (n < 0)
        return NULL;
    uint8_t *pixels = nbi_alloc(ctx, (size_t)n * PIXELS);
    int32_t *labels = nbi_alloc(ctx, (size_t)n * sizeof *labels);
    if (!pixels || !labels || parse_records(ctx, k, buf, n, origin, pixels, labels) != NB_OK) {
        nbi_free(ctx, pixels);
        nbi_free(ctx, labels);
        return NULL;
    }
    return nbi_dataset_adopt(ctx, n, 3, 32, 32, pixels, NULL, labels, NULL, 0, origin);
}

/* ---- files ------------------------------------------------------------------- */

static bool exists(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    return (size_t)snprintf(path, sizeof path, "%s/%s", dir, name) < sizeof path &&
           stat(path, &st) == 0;
}

/* The class names file's lines (trailing blanks and blank lines left
 * out), at most k->classes of them; *names NULL and 0 when there is none. */
static int read_names(nb_ctx *ctx, const cifar_kind *k, const char *dir, char ***names, int *n)
{
    *names = NULL;
    *n = 0;
    if (!exists(dir, k->names_file))
        return NB_OK;
    char *path = nbi_path_join(ctx, dir, k->names_file), *text = NULL;
    size_t len;
    if (!path)
        return NB_ERR_NOMEM;
    int rc = nbi_file_read(ctx, path, MAX_NAMES_FILE, NBI_FILE_REGULAR, &text, &len);
    char **v = rc == NB_OK ? nbi_alloc(ctx, (size_t)k->classes * sizeof *v) : NULL;
    if (rc == NB_OK && !v)
        rc = NB_ERR_NOMEM;
    int count = 0, line = 0;
    for (size_t at = 0; rc == NB_OK && at < len; line++) {
        size_t end = at;
        while (end < len && text[end] != '\n')
            end++;
        size_t stop = end;
        while (stop > at && (text[stop - 1] == ' ' || text[stop - 1] == '\t' ||
                             text[stop - 1] == '\r'))
            stop--;
        size_t size = stop - at;
        if (memchr(text + at, '\0', size))
            rc = nbi_fail(ctx, NB_ERR_FORMAT, "%s: line %d holds a NUL byte", path, line + 1);
        else if (size > MAX_NAME)
            rc = nbi_fail(ctx, NB_ERR_FORMAT, "%s: line %d is a name of %zu bytes (at most %d)",
                          path, line + 1, size, MAX_NAME);
        else if (size && count == k->classes)
            rc = nbi_fail(ctx, NB_ERR_FORMAT, "%s: more than %d class names (%s has %d classes)",
                          path, k->classes, k->name, k->classes);
        else if (size && !(v[count] = nbi_alloc(ctx, size + 1)))
            rc = NB_ERR_NOMEM;
        else if (size) {
            memcpy(v[count], text + at, size);
            v[count++][size] = '\0';
        }
        at = end + 1;
    }
    nbi_free(ctx, text);
    nbi_free(ctx, path);
    if (rc != NB_OK || count == 0) {
        for (int i = 0; v && i < count; i++)
            nbi_free(ctx, v[i]);
        nbi_free(ctx, v);
        return rc;
    }
    *names = v;
    *n = count;
    return NB_OK;
}

/* Reads the files paths[nfiles] of kind k, then the names, into one data
 * set named dir. */
static nb_dataset *read_files(nb_ctx *ctx, const cifar_kind *k, const char *dir,
                              char *const *paths, int nfiles)
{
    int64_t counts[MAX_FILES], total = 0;
    for (int i = 0; i < nfiles; i++) {
        struct stat st;
        if (stat(paths[i], &st) != 0)
            return nbi_fail_null(ctx, NB_ERR_IO, "%s: %s", paths[i], strerror(errno));
        if (!S_ISREG(st.st_mode))
            return nbi_fail_null(ctx, NB_ERR_IO, "%s: not a regular file", paths[i]);
        if ((counts[i] = record_count(ctx, k, (uint64_t)st.st_size, paths[i])) < 0)
            return NULL;
        total += counts[i];
    }
    if (!nbi_mem_fits(ctx, (uint64_t)total * (PIXELS + sizeof(int32_t)))) {
        nbi_mem_refuse(ctx, (uint64_t)total * (PIXELS + sizeof(int32_t)), "%s: %" PRId64
                       " %s images", dir, total, k->name);
        return NULL;
    }
    uint8_t *pixels = nbi_alloc(ctx, (size_t)total * PIXELS);
    int32_t *labels = nbi_alloc(ctx, (size_t)total * sizeof *labels);
    int rc = pixels && labels ? NB_OK : NB_ERR_NOMEM;
    int64_t at = 0;
    for (int i = 0; rc == NB_OK && i < nfiles; i++) {
        char *buf;
        size_t len;
        uint64_t want = (uint64_t)counts[i] * (uint64_t)(k->label_bytes + PIXELS);
        rc = nbi_file_read(ctx, paths[i], (size_t)want, NBI_FILE_REGULAR, &buf, &len);
        if (rc == NB_OK && len != want)
            rc = nbi_fail(ctx, NB_ERR_IO, "%s: changed while it was read", paths[i]);
        if (rc == NB_OK)
            rc = parse_records(ctx, k, (const uint8_t *)buf, counts[i], paths[i],
                               pixels + (size_t)at * PIXELS, labels + at);
        nbi_free(ctx, buf);
        at += counts[i];
    }
    char **names = NULL;
    int nnames = 0;
    if (rc == NB_OK)
        rc = read_names(ctx, k, dir, &names, &nnames);
    if (rc != NB_OK) {
        nbi_free(ctx, pixels);
        nbi_free(ctx, labels);
        return NULL;
    }
    return nbi_dataset_adopt(ctx, total, 3, 32, 32, pixels, NULL, labels, names, nnames, dir);
}

/* The layout whose files dir holds, or NULL. */
static const cifar_kind *layout(const char *dir)
{
    if (exists(dir, "data_batch_1.bin") || exists(dir, "test_batch.bin"))
        return &cifar10;
    if (exists(dir, "train.bin") || exists(dir, "test.bin"))
        return &cifar100;
    return NULL;
}

/* The files of one split in dir, of layout k. */
static nb_dataset *load_split(nb_ctx *ctx, const cifar_kind *k, const char *dir, bool train)
{
    /* CIFAR-10's training files are numbered; the others are one file. */
    bool numbered = k == &cifar10 && train;
    const char *first = numbered ? "data_batch_1.bin"
                        : k == &cifar10 ? "test_batch.bin" : train ? "train.bin" : "test.bin";
    char *paths[MAX_FILES], name[32];
    int n = 0, rc = NB_OK;
    snprintf(name, sizeof name, "%s", first);
    while (n < MAX_FILES && exists(dir, name)) {
        if (!(paths[n] = nbi_path_join(ctx, dir, name))) {
            rc = NB_ERR_NOMEM;
            break;
        }
        n++;
        if (!numbered)
            break;
        snprintf(name, sizeof name, "data_batch_%d.bin", n + 1);
    }
    nb_dataset *ds = NULL;
    if (rc == NB_OK && n == 0)
        nbi_fail(ctx, NB_ERR_IO, "%s: %s files, but no %s for the %s split", dir, k->name, first,
                 train ? "training" : "test");
    else if (rc == NB_OK)
        ds = read_files(ctx, k, dir, paths, n);
    for (int i = 0; i < n; i++)
        nbi_free(ctx, paths[i]);
    return ds;
}

nb_dataset *nbi_cifar_load(nb_ctx *ctx, const char *dir, bool train, bool *found)
{
    const cifar_kind *k = layout(dir);
    *found = k != NULL;
    if (k)
        return load_split(ctx, k, dir, train);
    /* The folders the distributed archives unpack to. */
    static const char *const subs[] = {"cifar-10-batches-bin", "cifar-100-binary"};
    for (int i = 0; i < 2; i++) {
        struct stat st;
        char *sub = nbi_path_join(ctx, dir, subs[i]);
        if (!sub) {
            *found = true; /* the error is set */
            return NULL;
        }
        nb_dataset *ds = NULL;
        if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode) && (k = layout(sub))) {
            *found = true;
            ds = load_split(ctx, k, sub, train);
        }
        nbi_free(ctx, sub);
        if (*found)
            return ds;
    }
    return NULL;
}
