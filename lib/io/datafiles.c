/*
 * datafiles.c - the files of a data set: IDX files (MNIST, Fashion-MNIST),
 * raw or gzipped, and folders of PNG files, one per class, read into a
 * data set's arrays (dataset.c); and nb_dataset_load, which tells the
 * formats apart and hands CIFAR's and NumPy's to their readers (cifar.c,
 * npz.c).  zlib is used through its inflate API so its memory, too, goes
 * through the context's allocator.  Files are read only when regular; what
 * a header or a folder declares is checked against the file's size and the
 * context's memory limit before it is allocated; a PNG split's class
 * folders must be the other split's.
 */
#include "io/dataset.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <zlib.h>

#define BUF_SIZE ((size_t)1 << 16)
/* Deflate never expands more than 1032 to 1: a gzipped file of n bytes
 * holds at most about 1032 n bytes, so a header claiming more is caught
 * (as a truncated file) without allocating what it claims. */
#define MAX_DEFLATE_RATIO 1032

/* ---- reading raw or gzipped bytes --------------------------------------- */

typedef struct reader {
    nb_ctx *ctx;
    const char *origin;  /* the file's name, for messages */
    FILE *f;             /* NULL when reading memory */
    uint8_t *buf;        /* the file's input buffer */
    const uint8_t *in;   /* input not consumed yet */
    size_t nin;
    uint64_t size;       /* bytes of input in all (the file's size) */
    bool gz;
    bool zlive;          /* inflateInit2 succeeded: inflateEnd is due */
    bool zend;           /* the last gzip member ended, nothing after it */
    z_stream z;
    uint64_t count;      /* bytes delivered so far */
} reader;

static voidpf z_alloc(voidpf opaque, uInt items, uInt size)
{
    reader *r = opaque;
    if (size && items > SIZE_MAX / size)
        return Z_NULL;
    return nbi_alloc(r->ctx, (size_t)items * size);
}

static void z_free(voidpf opaque, voidpf p)
{
    reader *r = opaque;
    nbi_free(r->ctx, p);
}

/* Makes input available: 1 when there is some, 0 at the end, -1 on error. */
static int fill(reader *r)
{
    if (r->nin)
        return 1;
    if (!r->f)
        return 0;
    size_t n = fread(r->buf, 1, BUF_SIZE, r->f);
    if (n == 0) {
        if (ferror(r->f)) {
            nbi_fail(r->ctx, NB_ERR_IO, "%s: read error: %s", r->origin, strerror(errno));
            return -1;
        }
        return 0;
    }
    r->in = r->buf;
    r->nin = n;
    return 1;
}

/* Checks for gzip's magic and starts inflating if it is there. */
static int reader_start(reader *r)
{
    if (fill(r) < 0)
        return -1;
    if (r->nin >= 2 && r->in[0] == 0x1f && r->in[1] == 0x8b) {
        r->gz = true;
        r->z.zalloc = z_alloc;
        r->z.zfree = z_free;
        r->z.opaque = r;
        if (inflateInit2(&r->z, 15 + 16) != Z_OK) /* 16: gzip wrapper */
            return nbi_fail(r->ctx, NB_ERR_NOMEM, "%s: out of memory starting zlib", r->origin);
        r->zlive = true;
    }
    return 0;
}

/* Only regular files: their size bounds what the reader takes in (a
 * device has no end, a pipe no size).  Checked before opening, which for a
 * FIFO would wait for a writer. */
static int reader_open_file(nb_ctx *ctx, reader *r, const char *path)
{
    memset(r, 0, sizeof *r);
    r->ctx = ctx;
    r->origin = path;
    struct stat st;
    if (stat(path, &st) != 0)
        return nbi_fail(ctx, NB_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return nbi_fail(ctx, NB_ERR_IO, "%s: is a directory", path);
    if (!S_ISREG(st.st_mode))
        return nbi_fail(ctx, NB_ERR_IO, "%s: not a regular file", path);
    r->f = fopen(path, "rb");
    if (!r->f)
        return nbi_fail(ctx, NB_ERR_IO, "%s: %s", path, strerror(errno));
    if (fstat(fileno(r->f), &st) != 0)
        return nbi_fail(ctx, NB_ERR_IO, "%s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) /* replaced since the stat */
        return nbi_fail(ctx, NB_ERR_IO, "%s: not a regular file", path);
    r->size = (uint64_t)st.st_size;
    r->buf = nbi_alloc(ctx, BUF_SIZE);
    if (!r->buf)
        return NB_ERR_NOMEM;
    return reader_start(r);
}

static int reader_open_mem(nb_ctx *ctx, reader *r, const void *buf, size_t len,
                           const char *origin)
{
    memset(r, 0, sizeof *r);
    r->ctx = ctx;
    r->origin = origin;
    r->in = buf;
    r->nin = len;
    r->size = len;
    return reader_start(r);
}

static void reader_close(reader *r)
{
    if (r->zlive)
        inflateEnd(&r->z);
    nbi_free(r->ctx, r->buf);
    if (r->f)
        fclose(r->f);
}

static int64_t read_raw(reader *r, uint8_t *dst, size_t n)
{
    size_t got = 0;
    while (got < n) {
        if (r->nin == 0 && r->f && n - got >= BUF_SIZE) { /* big reads skip the buffer */
            size_t k = fread(dst + got, 1, n - got, r->f);
            if (k == 0) {
                if (ferror(r->f))
                    return nbi_fail(r->ctx, NB_ERR_IO, "%s: read error: %s", r->origin, strerror(errno));
                break;
            }
            got += k;
            continue;
        }
        int s = fill(r);
        if (s < 0)
            return -1;
        if (s == 0)
            break;
        size_t k = r->nin < n - got ? r->nin : n - got;
        memcpy(dst + got, r->in, k);
        r->in += k;
        r->nin -= k;
        got += k;
    }
    return (int64_t)got;
}

static int64_t read_gz(reader *r, uint8_t *dst, size_t n)
{
    size_t got = 0;
    while (got < n && !r->zend) {
        int s = fill(r);
        if (s < 0)
            return -1;
        if (s == 0)
            return nbi_fail(r->ctx, NB_ERR_FORMAT, "%s: truncated gzip data", r->origin);
        uInt in = r->nin < UINT_MAX ? (uInt)r->nin : UINT_MAX;
        uInt out = n - got < UINT_MAX ? (uInt)(n - got) : UINT_MAX;
        r->z.next_in = (Bytef *)r->in;
        r->z.avail_in = in;
        r->z.next_out = dst + got;
        r->z.avail_out = out;
        int ret = inflate(&r->z, Z_NO_FLUSH);
        size_t used = in - r->z.avail_in, made = out - r->z.avail_out;
        r->in += used;
        r->nin -= used;
        got += made;
        if (ret == Z_STREAM_END) {
            /* Another gzip member may follow, as gzip itself allows. */
            s = fill(r);
            if (s < 0)
                return -1;
            if (s == 0)
                r->zend = true;
            else
                inflateReset(&r->z);
        } else if (ret == Z_MEM_ERROR) {
            return nbi_fail(r->ctx, NB_ERR_NOMEM, "%s: out of memory inflating", r->origin);
        } else if (ret != Z_OK || (used == 0 && made == 0)) {
            return nbi_fail(r->ctx, NB_ERR_FORMAT, "%s: corrupt gzip data: %s", r->origin,
                            r->z.msg ? r->z.msg : "inflate made no progress");
        }
    }
    return (int64_t)got;
}

/* Reads up to n bytes; fewer only at the end.  -1 on error. */
static int64_t reader_read(reader *r, uint8_t *dst, size_t n)
{
    int64_t got = r->gz ? read_gz(r, dst, n) : read_raw(r, dst, n);
    if (got > 0)
        r->count += (uint64_t)got;
    return got;
}

/* The most bytes the rest of the input can still deliver. */
static uint64_t reader_bound(const reader *r)
{
    uint64_t total = r->gz ? r->size * MAX_DEFLATE_RATIO + 1024 : r->size;
    return total > r->count ? total - r->count : 0;
}

/* ---- IDX files ---------------------------------------------------------- */

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const char *idx_type_name(int type)
{
    switch (type) {
    case 0x08: return "uint8";
    case 0x09: return "int8";
    case 0x0B: return "int16";
    case 0x0C: return "int32";
    case 0x0D: return "float32";
    case 0x0E: return "float64";
    default: return NULL;
    }
}

/* Reads the `expected` bytes after a header of `head` bytes into a buffer
 * that grows with what actually arrives, then makes sure nothing follows.
 * Before anything is allocated: a raw file too short for them is
 * truncated, and what the file can make us hold (the expected bytes, or
 * fewer if gzip cannot inflate to that many) must fit the memory limit;
 * `what` says what they are ("60000 images of 28x28"). */
static uint8_t *read_payload(reader *r, uint64_t expected, size_t head, const char *what)
{
    nb_ctx *ctx = r->ctx;
    uint64_t bound = reader_bound(r);
    if (!r->gz && expected > bound)
        return nbi_fail_null(ctx, NB_ERR_FORMAT, "%s: truncated: %" PRIu64 " bytes expected, %"
                             PRIu64 " found", r->origin, head + expected, head + bound);
    uint64_t hold = expected < bound ? expected : bound;
    if (!nbi_mem_fits(ctx, hold)) {
        nbi_mem_refuse(ctx, expected, "%s: holding the %s its header declares", r->origin, what);
        return NULL;
    }
    if (expected > SIZE_MAX / 2)
        return nbi_fail_null(ctx, NB_ERR_NOMEM, "%s: %" PRIu64 " bytes do not fit in memory",
                             r->origin, expected);
    size_t cap = (size_t)(expected < bound ? expected : bound);
    if (cap < BUF_SIZE)
        cap = (size_t)(expected < BUF_SIZE ? expected : BUF_SIZE);
    uint8_t *buf = nbi_alloc(ctx, cap);
    if (!buf)
        return NULL;
    size_t got = 0;
    for (;;) {
        int64_t k = reader_read(r, buf + got, cap - got);
        if (k < 0)
            goto fail;
        got += (size_t)k;
        if (got < cap || cap == expected)
            break;
        size_t bigger = cap * 2 < expected ? cap * 2 : (size_t)expected;
        uint8_t *nb = nbi_alloc(ctx, bigger);
        if (!nb)
            goto fail;
        memcpy(nb, buf, got);
        nbi_free(ctx, buf);
        buf = nb;
        cap = bigger;
    }
    if (got < expected) {
        nbi_fail(ctx, NB_ERR_FORMAT, "%s: truncated: %" PRIu64 " bytes expected, %" PRIu64 " found",
                 r->origin, head + expected, (uint64_t)(head + got));
        goto fail;
    }
    uint8_t scratch[512];
    uint64_t extra = 0;
    for (;;) {
        int64_t k = reader_read(r, scratch, sizeof scratch);
        if (k < 0)
            goto fail;
        if (k == 0)
            break;
        extra += (uint64_t)k;
    }
    if (extra) {
        nbi_fail(ctx, NB_ERR_FORMAT, "%s: trailing data: %" PRIu64 " bytes expected, %" PRIu64 " found",
                 r->origin, head + expected, head + expected + extra);
        goto fail;
    }
    return buf;

fail:
    nbi_free(ctx, buf);
    return NULL;
}

/* An images file (ndim 3: N, H, W) or a labels file (ndim 1: N). */
static uint8_t *idx_read(reader *r, int ndim, int64_t *dims)
{
    nb_ctx *ctx = r->ctx;
    const char *what = ndim == 3 ? "images" : "labels";
    uint32_t want = 0x800u | (uint32_t)ndim;
    size_t head = 4 + 4 * (size_t)ndim;
    uint8_t h[16];
    int64_t k = reader_read(r, h, head);
    if (k < 0)
        return NULL;
    if (k >= 4 && be32(h) != want) {
        uint32_t magic = be32(h);
        const char *type = idx_type_name(h[2]);
        if (h[0] || h[1] || !type || h[3] == 0)
            return nbi_fail_null(ctx, NB_ERR_FORMAT, "%s: not an IDX %s file (magic 0x%08" PRIx32 ")",
                                 r->origin, what, magic);
        if (h[2] != 0x08)
            return nbi_fail_null(ctx, NB_ERR_FORMAT,
                                 "%s: not an IDX %s file (magic 0x%08" PRIx32 ": %s values, uint8 expected)",
                                 r->origin, what, magic, type);
        return nbi_fail_null(ctx, NB_ERR_FORMAT,
                             "%s: not an IDX %s file (magic 0x%08" PRIx32 ": %d dimension%s, %d expected)",
                             r->origin, what, magic, h[3], h[3] == 1 ? "" : "s", ndim);
    }
    if ((size_t)k < head)
        return nbi_fail_null(ctx, NB_ERR_FORMAT, "%s: truncated: %zu bytes expected, %zu found",
                             r->origin, head, (size_t)k);
    for (int i = 0; i < ndim; i++)
        dims[i] = be32(h + 4 + 4 * i);
    if (dims[0] == 0)
        return nbi_fail_null(ctx, NB_ERR_FORMAT, "%s: no %s (count 0)", r->origin, what);
    if (ndim == 3) {
        if (dims[1] == 0 || dims[2] == 0)
            return nbi_fail_null(ctx, NB_ERR_FORMAT, "%s: empty images (%" PRId64 "x%" PRId64 " pixels)",
                                 r->origin, dims[1], dims[2]);
        if ((uint64_t)dims[1] * (uint64_t)dims[2] > NBI_MAX_IMAGE_PIXELS)
            return nbi_fail_null(ctx, NB_ERR_FORMAT,
                                 "%s: images of %" PRId64 "x%" PRId64 " pixels are too large (at most 2^24 pixels)",
                                 r->origin, dims[1], dims[2]);
    }
    /* At most 2^32 x 2^24: no overflow. */
    uint64_t expected = (uint64_t)dims[0];
    char desc[96];
    if (ndim == 3) {
        expected *= (uint64_t)dims[1] * (uint64_t)dims[2];
        snprintf(desc, sizeof desc, "%" PRId64 " images of %" PRId64 "x%" PRId64, dims[0], dims[1],
                 dims[2]);
    } else {
        snprintf(desc, sizeof desc, "%" PRId64 " labels", dims[0]);
    }
    return read_payload(r, expected, head, desc);
}

uint8_t *nbi_idx_parse(nb_ctx *ctx, const void *buf, size_t len, const char *origin,
                       int ndim, int64_t *dims)
{
    if (ndim != 1 && ndim != 3)
        return nbi_fail_null(ctx, NB_ERR_ARG, "idx: %d dimensions (1 or 3)", ndim);
    reader r;
    uint8_t *out = NULL;
    if (reader_open_mem(ctx, &r, buf, len, origin) == NB_OK)
        out = idx_read(&r, ndim, dims);
    reader_close(&r);
    return out;
}

static uint8_t *idx_load(nb_ctx *ctx, const char *path, int ndim, int64_t *dims)
{
    reader r;
    uint8_t *out = NULL;
    if (reader_open_file(ctx, &r, path) == NB_OK)
        out = idx_read(&r, ndim, dims);
    reader_close(&r);
    return out;
}

/* ---- IDX data sets -------------------------------------------------------- */

nb_dataset *nb_dataset_load_idx(nb_ctx *ctx, const char *images, const char *labels)
{
    if (!images || !labels)
        return nbi_fail_null(ctx, NB_ERR_ARG, "dataset_load_idx: %s path is NULL",
                             images ? "labels" : "images");
    int64_t idims[3], ldims[1];
    uint8_t *pix = idx_load(ctx, images, 3, idims);
    if (!pix)
        return NULL;
    uint8_t *lab = idx_load(ctx, labels, 1, ldims);
    if (!lab) {
        nbi_free(ctx, pix);
        return NULL;
    }
    int32_t *lab32 = NULL;
    if (ldims[0] != idims[0])
        nbi_fail(ctx, NB_ERR_FORMAT, "%s: %" PRId64 " images but %s: %" PRId64 " labels", images,
                 idims[0], labels, ldims[0]);
    else
        lab32 = nbi_alloc(ctx, (size_t)ldims[0] * sizeof *lab32);
    for (int64_t i = 0; lab32 && i < ldims[0]; i++)
        lab32[i] = lab[i];
    nbi_free(ctx, lab);
    if (!lab32) {
        nbi_free(ctx, pix);
        return NULL;
    }
    return nbi_dataset_adopt(ctx, idims[0], 1, idims[1], idims[2], pix, NULL, lab32, NULL, 0,
                             images);
}

/* ---- folders of PNG files ------------------------------------------------ */

typedef struct strlist {
    char **v;
    size_t n, cap;
} strlist;

static bool strlist_push(nb_ctx *ctx, strlist *l, const char *s)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **v = nbi_alloc(ctx, cap * sizeof *v);
        if (!v)
            return false;
        if (l->n)
            memcpy(v, l->v, l->n * sizeof *v);
        nbi_free(ctx, l->v);
        l->v = v;
        l->cap = cap;
    }
    size_t len = strlen(s) + 1;
    char *copy = nbi_alloc(ctx, len);
    if (!copy)
        return false;
    memcpy(copy, s, len);
    l->v[l->n++] = copy;
    return true;
}

static void strlist_free(nb_ctx *ctx, strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        nbi_free(ctx, l->v[i]);
    nbi_free(ctx, l->v);
    memset(l, 0, sizeof *l);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_png_name(const char *name)
{
    size_t n = strlen(name);
    if (n < 5)
        return false;
    const char *ext = name + n - 4;
    return ext[0] == '.' && (ext[1] | 0x20) == 'p' && (ext[2] | 0x20) == 'n' && (ext[3] | 0x20) == 'g';
}

static bool is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The sorted names in dir of its sub-folders (dirs) or of its .png files;
 * hidden entries are skipped. */
static int list_dir(nb_ctx *ctx, const char *dir, bool dirs, strlist *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return nbi_fail(ctx, NB_ERR_IO, "%s: %s", dir, strerror(errno));
    int rc = NB_OK;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (!e) {
            if (errno)
                rc = nbi_fail(ctx, NB_ERR_IO, "%s: %s", dir, strerror(errno));
            break;
        }
        if (e->d_name[0] == '.' || (!dirs && !is_png_name(e->d_name)))
            continue;
        char *path = nbi_path_join(ctx, dir, e->d_name);
        if (!path) {
            rc = NB_ERR_NOMEM;
            break;
        }
        bool keep = dirs ? is_dir(path) : is_file(path);
        nbi_free(ctx, path);
        if (keep && !strlist_push(ctx, out, e->d_name)) {
            rc = NB_ERR_NOMEM;
            break;
        }
    }
    closedir(d);
    if (rc == NB_OK && out->n > 1)
        qsort(out->v, out->n, sizeof *out->v, cmp_str);
    return rc;
}

static const char *channels_name(int64_t c)
{
    return c == 1 ? "gray" : "colour";
}

/* The images of a folder set as they are read: the first's size and
 * channels, which all must have. */
typedef struct png_set {
    int64_t c, h, w;
    uint8_t *pixels;
} png_set;

/* Reads one image into example i of s, allocating the pixels at the
 * first; its channels are kept (1 or 3: an alpha channel is dropped), and
 * all must have the first's size and channels. */
static int read_example(nb_ctx *ctx, png_set *s, int64_t i, const char *path, const char *first,
                        int64_t total)
{
    nb_tensor *t = nb_png_read(ctx, path, NB_F64, false);
    if (!t)
        return nb_error(ctx);
    int rc = NB_OK;
    int64_t c = t->shape[0] >= 3 ? 3 : 1, h = t->shape[1], w = t->shape[2], per = c * h * w;
    if (i == 0) {
        if ((uint64_t)total > SIZE_MAX / (uint64_t)per) {
            rc = nbi_fail(ctx, NB_ERR_NOMEM, "%s: %" PRId64 " images of %" PRId64 "x%" PRId64
                          "x%" PRId64 " do not fit in memory", path, total, c, h, w);
            goto done;
        }
        if (!nbi_mem_fits(ctx, (uint64_t)(total * per))) {
            rc = nbi_mem_refuse(ctx, (uint64_t)(total * per), "%s: holding %" PRId64 " images of %"
                                PRId64 "x%" PRId64 "x%" PRId64 " (this one's size)", path, total,
                                c, h, w);
            goto done;
        }
        s->c = c;
        s->h = h;
        s->w = w;
        if (!(s->pixels = nbi_alloc(ctx, (size_t)(total * per)))) {
            rc = NB_ERR_NOMEM;
            goto done;
        }
    } else if (h != s->h || w != s->w) {
        rc = nbi_fail(ctx, NB_ERR_FORMAT,
                      "%s: image of %" PRId64 "x%" PRId64 " pixels, but %s has %" PRId64 "x%" PRId64
                      " (all must be one size)", path, h, w, first, s->h, s->w);
        goto done;
    } else if (c != s->c) {
        rc = nbi_fail(ctx, NB_ERR_FORMAT, "%s: a %s image, but %s is %s (all must have the same "
                      "channels)", path, channels_name(c), first, channels_name(s->c));
        goto done;
    }
    const double *v = t->data;
    uint8_t *dst = s->pixels + i * per;
    for (int64_t k = 0; k < per; k++)
        dst[k] = (uint8_t)(v[k] * 255 + 0.5);
done:
    nb_tensor_free(t);
    return rc;
}

/* The class folders of base (sorted) and of the other split must have the
 * same names: a label is a folder's place in the sorted list, so a folder
 * missing from one split would give the next class's label to another
 * class, and an extra one a class the other split never saw.  Only the
 * other split's folder names are read, not its images.  An absent or
 * empty other split is not compared: a data set may have one split, and
 * an empty one cannot be loaded anyway. */
static int same_classes(nb_ctx *ctx, const char *base, const strlist *classes, const char *other)
{
    if (!is_dir(other))
        return NB_OK;
    strlist o = {0};
    int rc = list_dir(ctx, other, true, &o);
    size_t i = 0, j = 0;
    while (rc == NB_OK && o.n > 0 && (i < classes->n || j < o.n)) {
        int c = i == classes->n ? 1 : j == o.n ? -1 : strcmp(classes->v[i], o.v[j]);
        if (c == 0) {
            i++, j++;
            continue;
        }
        /* c < 0: only base has classes->v[i]; c > 0: only other has o.v[j]. */
        char q[80];
        rc = nbi_fail(ctx, NB_ERR_FORMAT, "%s: no class folder %s as in %s (the splits need "
                      "the same class folders)", c < 0 ? other : base,
                      nbi_quote(c < 0 ? classes->v[i] : o.v[j], q, sizeof q), c < 0 ? base : other);
    }
    strlist_free(ctx, &o);
    return rc;
}

/* The PNG files of each class folder of base, into files[classes->n];
 * adds their number to *total.  A class folder without one is refused
 * unless may_be_empty: a validation folder may hold no image of a class. */
static int list_classes(nb_ctx *ctx, const char *base, const strlist *classes, strlist *files,
                        bool may_be_empty, int64_t *total)
{
    for (size_t c = 0; c < classes->n; c++) {
        char *dir = nbi_path_join(ctx, base, classes->v[c]);
        if (!dir)
            return NB_ERR_NOMEM;
        int rc = list_dir(ctx, dir, false, &files[c]);
        if (rc == NB_OK && files[c].n == 0 && !may_be_empty)
            rc = nbi_fail(ctx, NB_ERR_FORMAT, "%s: no PNG files", dir);
        nbi_free(ctx, dir);
        if (rc != NB_OK)
            return rc;
        *total += (int64_t)files[c].n;
    }
    return NB_OK;
}

/* base/CLASS/x.png: classes in strcmp order, files in strcmp order; the
 * classes those of the other split's folder.  With val (the training
 * split's DIR/val/, or NULL) its images follow, class by class, as the
 * data's own validation split. */
static nb_dataset *load_png_folder(nb_ctx *ctx, const char *base, const char *other,
                                   const char *val)
{
    strlist classes = {0};
    strlist *files[2] = {NULL, NULL}; /* base's, val's */
    const char *dirs[2] = {base, val};
    png_set s = {0};
    int32_t *labels = NULL;
    char *first = NULL;
    if (list_dir(ctx, base, true, &classes) != NB_OK)
        goto fail;
    if (classes.n == 0) {
        nbi_fail(ctx, NB_ERR_FORMAT, "%s: no class folders", base);
        goto fail;
    }
    if (classes.n > INT32_MAX) {
        nbi_fail(ctx, NB_ERR_FORMAT, "%s: %zu class folders are too many", base, classes.n);
        goto fail;
    }
    if (same_classes(ctx, base, &classes, other) != NB_OK ||
        (val && same_classes(ctx, base, &classes, val) != NB_OK))
        goto fail;
    int64_t total = 0, nval = 0;
    for (int p = 0; p < 2 && dirs[p]; p++) {
        if (!(files[p] = nbi_alloc(ctx, classes.n * sizeof *files[p])))
            goto fail;
        memset(files[p], 0, classes.n * sizeof *files[p]);
        int64_t *count = p ? &nval : &total;
        if (list_classes(ctx, dirs[p], &classes, files[p], p == 1, count) != NB_OK)
            goto fail;
    }
    if (val && nval == 0) {
        nbi_fail(ctx, NB_ERR_FORMAT, "%s: no PNG files in its class folders", val);
        goto fail;
    }
    total += nval;
    if (!(labels = nbi_alloc(ctx, (size_t)total * sizeof *labels)))
        goto fail;
    int64_t i = 0;
    for (int p = 0; p < 2 && dirs[p]; p++) {
        for (size_t c = 0; c < classes.n; c++) {
            for (size_t k = 0; k < files[p][c].n; k++, i++) {
                char *dir = nbi_path_join(ctx, dirs[p], classes.v[c]);
                char *path = dir ? nbi_path_join(ctx, dir, files[p][c].v[k]) : NULL;
                nbi_free(ctx, dir);
                if (!path)
                    goto fail;
                int rc = read_example(ctx, &s, i, path, first, total);
                if (rc != NB_OK) {
                    nbi_free(ctx, path);
                    goto fail;
                }
                if (i == 0)
                    first = path;
                else
                    nbi_free(ctx, path);
                labels[i] = (int32_t)c;
            }
        }
    }
    for (int p = 0; p < 2; p++) {
        for (size_t c = 0; files[p] && c < classes.n; c++)
            strlist_free(ctx, &files[p][c]);
        nbi_free(ctx, files[p]);
    }
    nbi_free(ctx, first);
    /* The data set keeps the arrays and the names. */
    nb_dataset *ds = nbi_dataset_adopt(ctx, total, s.c, s.h, s.w, s.pixels, NULL, labels,
                                       classes.v, (int)classes.n, base);
    nbi_dataset_set_validation(ds, nval);
    return ds;

fail:
    for (int p = 0; p < 2; p++) {
        for (size_t c = 0; files[p] && c < classes.n; c++)
            strlist_free(ctx, &files[p][c]);
        nbi_free(ctx, files[p]);
    }
    strlist_free(ctx, &classes);
    nbi_free(ctx, first);
    nbi_free(ctx, s.pixels);
    nbi_free(ctx, labels);
    return NULL;
}

/* dir/name if it is a file, else dir/name.gz if that is one, else NULL
 * with *found false (and NULL with *found true when out of memory). */
static char *find_idx(nb_ctx *ctx, const char *dir, const char *name, bool *found)
{
    *found = true;
    char *raw = nbi_path_join(ctx, dir, name);
    if (!raw)
        return NULL;
    if (is_file(raw))
        return raw;
    size_t n = strlen(raw);
    char *gz = nbi_alloc(ctx, n + 4);
    if (gz) {
        memcpy(gz, raw, n);
        memcpy(gz + n, ".gz", 4);
        if (!is_file(gz)) {
            nbi_free(ctx, gz);
            gz = NULL;
            *found = false;
        }
    }
    nbi_free(ctx, raw);
    return gz;
}

nb_dataset *nb_dataset_load(nb_ctx *ctx, const char *dir, bool train)
{
    if (!dir)
        return nbi_fail_null(ctx, NB_ERR_ARG, "dataset_load: dir is NULL");
    struct stat st;
    if (stat(dir, &st) != 0)
        return nbi_fail_null(ctx, NB_ERR_IO, "%s: %s", dir, strerror(errno));
    size_t len = strlen(dir);
    if (S_ISREG(st.st_mode) && len > 4 && strcmp(dir + len - 4, ".npz") == 0)
        return nbi_npz_load(ctx, dir, train);
    if (!S_ISDIR(st.st_mode))
        return nbi_fail_null(ctx, NB_ERR_IO, "%s: not a directory (nor an .npz file)", dir);
    const char *iname = train ? "train-images-idx3-ubyte" : "t10k-images-idx3-ubyte";
    const char *lname = train ? "train-labels-idx1-ubyte" : "t10k-labels-idx1-ubyte";
    const char *sub = train ? "train" : "test";
    bool ifound, lfound;
    nb_dataset *ds = NULL;
    char *images = find_idx(ctx, dir, iname, &ifound);
    if (!images && ifound)
        return NULL;
    char *labels = find_idx(ctx, dir, lname, &lfound);
    if (!labels && lfound)
        goto done;
    bool cifar = false;
    if (images && labels) {
        ds = nb_dataset_load_idx(ctx, images, labels);
    } else if (images || labels) {
        nbi_fail(ctx, NB_ERR_IO, "%s: %s found but no %s(.gz)", dir, images ? iname : lname,
                 images ? lname : iname);
    } else if ((ds = nbi_cifar_load(ctx, dir, train, &cifar)) || cifar) {
        /* CIFAR's files, read or refused */
    } else {
        char *base = nbi_path_join(ctx, dir, sub);
        char *other = base ? nbi_path_join(ctx, dir, train ? "test" : "train") : NULL;
        char *val = other && train ? nbi_path_join(ctx, dir, "val") : NULL;
        bool paths = other && (val || !train); /* else out of memory, said */
        if (paths && is_dir(base))
            ds = load_png_folder(ctx, base, other, val && is_dir(val) ? val : NULL);
        else if (paths)
            nbi_fail(ctx, NB_ERR_IO, "%s: no %s(.gz), no CIFAR files and no %s/ folder of PNG "
                     "classes", dir, iname, sub);
        nbi_free(ctx, base);
        nbi_free(ctx, other);
        nbi_free(ctx, val);
    }
    if (ds && nbi_dataset_set_origin(ds, dir) != NB_OK) {
        nb_dataset_free(ds);
        ds = NULL;
    }
done:
    nbi_free(ctx, images);
    nbi_free(ctx, labels);
    return ds;
}
