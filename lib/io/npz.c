/*
 * npz.c - NumPy's .npz data files (np.savez, as the 02456 lab's mnist.npz):
 * a zip archive of .npy arrays, X_train and y_train (then X_valid and
 * y_valid, the data's own validation split), X_test and y_test.
 *
 * libzip opens the archive and inflates its entries (stored or deflated);
 * this file parses each .npy header strictly (format 1.0 to 3.0, a dict of
 * exactly descr, fortran_order and shape), checks what it declares against
 * the entry's size, deflate's largest ratio and the context's memory limit
 * before allocating, and converts the arrays into a data set's uint8 pixels
 * or float values [N, C, H, W] and int32 labels.  Values are decoded byte
 * by byte from little-endian, so the host's byte order does not matter.
 * libzip keeps its own small state with malloc; the arrays go through the
 * context's allocator.  Knows nothing of the data set but nbi_dataset_adopt.
 */
#include "io/dataset.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <zip.h>

/* NumPy's own bound on the headers it reads (max_header_size). */
#define NPY_MAX_HEADER 10000u
/* NumPy 1.x's NPY_MAXDIMS. */
#define NPY_MAX_DIMS 32
#define NPY_MAX_DESCR 32
/* Images larger than this are refused, as IDX images are. */
#define MAX_IMAGE_PIXELS ((uint64_t)1 << 24)
/* Deflate never expands more than 1032 to 1: an entry declaring more than
 * that from its compressed size is refused before anything is allocated. */
#define MAX_DEFLATE_RATIO 1032
/* Conversions go through a buffer of this many bytes, a multiple of every
 * item size, so an item never straddles two reads. */
#define CHUNK 16384
/* Room for a shape as Python prints it, and for a name quoted. */
#define SHAPE_STR 96
#define QBUF 48

typedef enum npy_kind { NPY_UINT, NPY_INT, NPY_FLOAT } npy_kind;

typedef struct npy_type {
    const char *descr;
    unsigned size;
    npy_kind kind;
    bool image, label; /* what it may be read as */
    const char *name;  /* as NumPy names the dtype, for messages */
} npy_type;

static const npy_type npy_types[] = {
    {"|u1", 1, NPY_UINT, true, true, "uint8"},     {"<f4", 4, NPY_FLOAT, true, false, "float32"},
    {"<f8", 8, NPY_FLOAT, true, false, "float64"}, {"|i1", 1, NPY_INT, false, true, "int8"},
    {"<i2", 2, NPY_INT, false, true, "int16"},     {"<u2", 2, NPY_UINT, false, true, "uint16"},
    {"<i4", 4, NPY_INT, false, true, "int32"},     {"<u4", 4, NPY_UINT, false, true, "uint32"},
    {"<i8", 8, NPY_INT, false, true, "int64"},     {"<u8", 8, NPY_UINT, false, true, "uint64"},
};
#define NPY_NTYPES ((int)(sizeof npy_types / sizeof npy_types[0]))

/* The archive being read. */
typedef struct npz {
    nb_ctx *ctx;
    const char *origin; /* its name, first in every message */
    zip_t *za;
    uint64_t size;      /* its bytes */
} npz;

/* One array of it, open at its data once its header has been read. */
typedef struct npy {
    char name[16];      /* the entry: "X_train.npy" */
    bool labels;        /* read as labels (else as images) */
    zip_file_t *f;
    const npy_type *type;
    char descr[NPY_MAX_DESCR];
    bool fortran_order;
    int ndim;
    int64_t shape[NPY_MAX_DIMS];
    uint64_t numel;
} npy;

/* n images of [c, h, w], stored in the file as [h, w, c] when
 * channels_last. */
typedef struct geom {
    int64_t n, c, h, w;
    bool channels_last;
} geom;

/* ---- messages ------------------------------------------------------------------ */

/* "<origin>: <entry>: <what fmt says>" */
NBI_PRINTF(4, 5)
static int npy_fail(const npz *z, const npy *a, int code, const char *fmt, ...)
{
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return nbi_fail(z->ctx, code, "%s: %s: %s", z->origin, a->name, what);
}

/* A libzip error's status: a system error reading the file is NB_ERR_IO;
 * a short read or anything the archive itself holds, NB_ERR_FORMAT. */
static int zip_status(zip_error_t *e)
{
    int code = zip_error_code_zip(e);
    if (code == ZIP_ER_MEMORY)
        return NB_ERR_NOMEM;
    if ((code == ZIP_ER_READ || code == ZIP_ER_SEEK || code == ZIP_ER_OPEN || code == ZIP_ER_TELL) &&
        zip_error_system_type(e) == ZIP_ET_SYS && zip_error_code_system(e) != 0)
        return NB_ERR_IO;
    return NB_ERR_FORMAT;
}

/* The shape as Python prints a tuple: "(60000, 28, 28)", "(5,)". */
static char *shape_str(const npy *a, char *buf, size_t size)
{
    size_t at = 0;
    at += (size_t)snprintf(buf, size, "(");
    for (int i = 0; i < a->ndim && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%" PRId64, i ? ", " : "", a->shape[i]);
    if (at < size)
        snprintf(buf + at, size - at, "%s)", a->ndim == 1 ? "," : "");
    return buf;
}

/* A string from the header in a message: in single quotes as Python shows
 * it when it is plain (the header's strings hold no quotes or escapes),
 * else escaped by nbi_quote. */
static char *header_str(const char *s, char *buf, size_t size)
{
    size_t n = strlen(s);
    bool plain = n + 3 <= size;
    for (size_t i = 0; plain && i < n; i++)
        plain = s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\'';
    if (plain)
        snprintf(buf, size, "'%s'", s);
    else
        nbi_quote(s, buf, size);
    return buf;
}

/* ---- the .npy header -----------------------------------------------------------
 * A Python dict literal such as
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 28, 28), }
 * padded with spaces and ended by a newline. */

typedef struct hdr {
    const char *begin, *p, *end;
    const char *why; /* the syntax error, when a step returns false */
} hdr;

static bool hdr_fail(hdr *h, const char *why)
{
    h->why = why;
    return false;
}

static void hdr_ws(hdr *h)
{
    while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
        h->p++;
}

static bool hdr_eat(hdr *h, char c)
{
    hdr_ws(h);
    if (h->p < h->end && *h->p == c) {
        h->p++;
        return true;
    }
    return false;
}

/* A quoted string without escapes (no valid header needs them) into out. */
static bool hdr_string(hdr *h, char *out, size_t size)
{
    hdr_ws(h);
    if (h->p == h->end || (*h->p != '\'' && *h->p != '"'))
        return hdr_fail(h, "a quoted string expected");
    char quote = *h->p++;
    size_t n = 0;
    for (;; h->p++) {
        if (h->p == h->end)
            return hdr_fail(h, "unterminated string");
        char c = *h->p;
        if (c == quote)
            break;
        if (c == '\\')
            return hdr_fail(h, "escapes in strings are not supported");
        if ((unsigned char)c < 0x20 || c == 0x7f)
            return hdr_fail(h, "a control character in a string");
        if (n + 1 >= size)
            return hdr_fail(h, "a string too long for a key or a dtype");
        out[n++] = c;
    }
    h->p++;
    out[n] = '\0';
    return true;
}

/* True or False, as Python spells them. */
static bool hdr_bool(hdr *h, bool *v)
{
    hdr_ws(h);
    size_t left = (size_t)(h->end - h->p);
    size_t n = left >= 4 && memcmp(h->p, "True", 4) == 0    ? 4
               : left >= 5 && memcmp(h->p, "False", 5) == 0 ? 5
                                                             : 0;
    if (n == 0)
        return hdr_fail(h, "fortran_order must be True or False");
    char next = n < left ? h->p[n] : ' ';
    if ((next >= 'a' && next <= 'z') || (next >= 'A' && next <= 'Z') ||
        (next >= '0' && next <= '9') || next == '_')
        return hdr_fail(h, "fortran_order must be True or False");
    *v = n == 4;
    h->p += n;
    return true;
}

/* A tuple of sizes: "()", "(5,)", "(5, 3)"; "(5)" is an int, not a tuple.
 * Python 2's NumPy wrote long sizes as "5L". */
static bool hdr_shape(hdr *h, npy *a)
{
    if (!hdr_eat(h, '('))
        return hdr_fail(h, "the shape must be a tuple");
    a->ndim = 0;
    if (hdr_eat(h, ')'))
        return true;
    for (;;) {
        hdr_ws(h);
        if (h->p == h->end || *h->p < '0' || *h->p > '9')
            return hdr_fail(h, "a size (an integer >= 0) expected in the shape");
        if (a->ndim == NPY_MAX_DIMS)
            return hdr_fail(h, "a shape of more than 32 dimensions");
        int64_t v = 0;
        while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
            int d = *h->p++ - '0';
            if (v > (INT64_MAX - d) / 10)
                return hdr_fail(h, "a size in the shape beyond 2^63 - 1");
            v = 10 * v + d;
        }
        if (h->p < h->end && (*h->p == 'L' || *h->p == 'l'))
            h->p++;
        a->shape[a->ndim++] = v;
        if (hdr_eat(h, ',')) {
            if (hdr_eat(h, ')'))
                return true;
        } else if (hdr_eat(h, ')')) {
            return a->ndim > 1 ? true : hdr_fail(h, "the shape must be a tuple: (n,) not (n)");
        } else {
            return hdr_fail(h, "',' or ')' expected in the shape");
        }
    }
}

enum { KEY_DESCR, KEY_FORTRAN, KEY_SHAPE, NKEYS };
static const char *const header_keys[NKEYS] = {"descr", "fortran_order", "shape"};

/* Parses the header's dict into a; fails naming the entry. */
static int npy_parse_header(const npz *z, npy *a, const char *text, size_t len)
{
    hdr h = {text, text, text + len, NULL};
    bool seen[NKEYS] = {false};
    char key[NPY_MAX_DESCR], q[QBUF];
    bool ok = hdr_eat(&h, '{') || hdr_fail(&h, "the header is not a dict: '{' expected");
    while (ok && !hdr_eat(&h, '}')) {
        if (!(ok = hdr_string(&h, key, sizeof key)))
            break;
        int k = 0;
        while (k < NKEYS && strcmp(key, header_keys[k]) != 0)
            k++;
        if (k == NKEYS)
            return npy_fail(z, a, NB_ERR_FORMAT, "unknown key %s in the header (descr, "
                            "fortran_order and shape only)", header_str(key, q, sizeof q));
        if (seen[k])
            return npy_fail(z, a, NB_ERR_FORMAT, "key '%s' twice in the header", key);
        seen[k] = true;
        if (!(ok = hdr_eat(&h, ':') || hdr_fail(&h, "':' expected after a key")))
            break;
        if (k == KEY_DESCR) {
            hdr_ws(&h);
            if (h.p < h.end && (*h.p == '[' || *h.p == '{'))
                return npy_fail(z, a, NB_ERR_FORMAT, "a structured dtype (with fields) is not "
                                "supported");
            ok = hdr_string(&h, a->descr, sizeof a->descr);
        } else if (k == KEY_FORTRAN) {
            ok = hdr_bool(&h, &a->fortran_order);
        } else {
            ok = hdr_shape(&h, a);
        }
        if (ok && !hdr_eat(&h, ',')) {
            ok = hdr_eat(&h, '}') || hdr_fail(&h, "',' or '}' expected after a value");
            break;
        }
    }
    if (ok) {
        hdr_ws(&h);
        ok = h.p == h.end || hdr_fail(&h, "something after the dict");
    }
    if (!ok)
        return npy_fail(z, a, NB_ERR_FORMAT, "bad .npy header at byte %td of %zu: %s",
                        h.p - h.begin, len, h.why);
    for (int k = 0; k < NKEYS; k++)
        if (!seen[k])
            return npy_fail(z, a, NB_ERR_FORMAT, "the header has no '%s'", header_keys[k]);
    return NB_OK;
}

/* ---- reading an entry ----------------------------------------------------------- */

/* Reads up to n bytes: *got says how many there were (fewer at its end). */
static int entry_read(const npz *z, const npy *a, void *dst, uint64_t n, uint64_t *got)
{
    *got = 0;
    while (*got < n) {
        zip_int64_t k = zip_fread(a->f, (char *)dst + *got, n - *got);
        if (k < 0) {
            zip_error_t *e = zip_file_get_error(a->f);
            return npy_fail(z, a, zip_status(e), "%s", zip_error_strerror(e));
        }
        if (k == 0)
            break;
        *got += (uint64_t)k;
    }
    return NB_OK;
}

/* Reads exactly n bytes of data, at `done` bytes into it. */
static int data_read(const npz *z, const npy *a, void *dst, uint64_t n, uint64_t done)
{
    uint64_t got;
    int rc = entry_read(z, a, dst, n, &got);
    if (rc == NB_OK && got < n)
        rc = npy_fail(z, a, NB_ERR_FORMAT, "truncated: %" PRIu64 " bytes of data expected, %"
                      PRIu64 " found", a->numel * a->type->size, done + got);
    return rc;
}

/* After the data, the entry must end (which also has libzip check its CRC). */
static int data_end(const npz *z, const npy *a)
{
    uint8_t extra;
    uint64_t got;
    int rc = entry_read(z, a, &extra, 1, &got);
    if (rc == NB_OK && got)
        rc = npy_fail(z, a, NB_ERR_FORMAT, "data after the array's %" PRIu64 " bytes",
                      a->numel * a->type->size);
    return rc;
}

static uint32_t le16(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8;
}

static uint32_t le32(const uint8_t *p)
{
    return le16(p) | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le_bits(const uint8_t *p, unsigned size)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < size; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The dtype, which must be one an image (or a label) can be read from. */
static int npy_check_type(const npz *z, npy *a)
{
    char q[QBUF];
    for (int i = 0; i < NPY_NTYPES; i++)
        if ((a->labels ? npy_types[i].label : npy_types[i].image) &&
            strcmp(a->descr, npy_types[i].descr) == 0) {
            a->type = &npy_types[i];
            return NB_OK;
        }
    return npy_fail(z, a, NB_ERR_FORMAT, "dtype %s is not supported (%s)",
                    header_str(a->descr, q, sizeof q),
                    a->labels ? "integer labels: uint8 to int64, little-endian"
                              : "uint8, float32 or float64 images, little-endian");
}

/* Checks the entry, opens it, reads its header and checks that the data
 * it declares is exactly what the entry holds. */
static int npy_open(const npz *z, npy *a, zip_int64_t index)
{
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(z->za, (zip_uint64_t)index, 0, &st) != 0) {
        zip_error_t *e = zip_get_error(z->za);
        return npy_fail(z, a, zip_status(e), "%s", zip_error_strerror(e));
    }
    const zip_uint64_t need = ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_COMP_METHOD;
    if ((st.valid & need) != need)
        return npy_fail(z, a, NB_ERR_FORMAT, "the archive does not give the entry's sizes");
    if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE)
        return npy_fail(z, a, NB_ERR_FORMAT, "encrypted entries are not supported");
    if (st.comp_method != ZIP_CM_STORE && st.comp_method != ZIP_CM_DEFLATE)
        return npy_fail(z, a, NB_ERR_FORMAT, "compression method %u is not supported (stored "
                        "or deflated entries only)", (unsigned)st.comp_method);
    if (st.comp_size > z->size)
        return npy_fail(z, a, NB_ERR_FORMAT, "%" PRIu64 " compressed bytes in an archive of %"
                        PRIu64, (uint64_t)st.comp_size, z->size);
    if (st.comp_method == ZIP_CM_STORE && st.size != st.comp_size)
        return npy_fail(z, a, NB_ERR_FORMAT, "stored in %" PRIu64 " bytes but declares %" PRIu64,
                        (uint64_t)st.comp_size, (uint64_t)st.size);
    if (st.comp_method == ZIP_CM_DEFLATE && st.size / MAX_DEFLATE_RATIO > st.comp_size + 1)
        return npy_fail(z, a, NB_ERR_FORMAT, "declares %" PRIu64 " bytes inflated from %" PRIu64
                        ", more than deflate can give", (uint64_t)st.size,
                        (uint64_t)st.comp_size);
    a->f = zip_fopen_index(z->za, (zip_uint64_t)index, 0);
    if (!a->f) {
        zip_error_t *e = zip_get_error(z->za);
        return npy_fail(z, a, zip_status(e), "%s", zip_error_strerror(e));
    }

    /* "\x93NUMPY", the version, the header's length: 2 bytes (1.0) or 4. */
    uint8_t pre[12];
    uint64_t got;
    int rc = entry_read(z, a, pre, 10, &got);
    if (rc != NB_OK)
        return rc;
    if (got < 6 || memcmp(pre, "\x93NUMPY", 6) != 0)
        return npy_fail(z, a, NB_ERR_FORMAT, "not a .npy array (no \\x93NUMPY at its start)");
    if (got < 10)
        return npy_fail(z, a, NB_ERR_FORMAT, "truncated .npy header");
    if (pre[6] < 1 || pre[6] > 3 || pre[7] != 0)
        return npy_fail(z, a, NB_ERR_FORMAT, ".npy format version %u.%u is not supported (1.0, "
                        "2.0 or 3.0)", pre[6], pre[7]);
    uint64_t pre_len = pre[6] == 1 ? 10 : 12, hlen;
    if (pre[6] == 1) {
        hlen = le16(pre + 8);
    } else {
        if ((rc = entry_read(z, a, pre + 10, 2, &got)) != NB_OK)
            return rc;
        if (got < 2)
            return npy_fail(z, a, NB_ERR_FORMAT, "truncated .npy header");
        hlen = le32(pre + 8);
    }
    if (hlen > NPY_MAX_HEADER)
        return npy_fail(z, a, NB_ERR_FORMAT, "a header of %" PRIu64 " bytes, more than NumPy's "
                        "limit of %u", hlen, NPY_MAX_HEADER);
    char *text = nbi_alloc(z->ctx, (size_t)hlen + 1);
    if (!text)
        return NB_ERR_NOMEM;
    rc = entry_read(z, a, text, hlen, &got);
    if (rc == NB_OK && got < hlen)
        rc = npy_fail(z, a, NB_ERR_FORMAT, "truncated .npy header: %" PRIu64 " bytes of %" PRIu64,
                      got, hlen);
    if (rc == NB_OK)
        rc = npy_parse_header(z, a, text, (size_t)hlen);
    nbi_free(z->ctx, text);
    if (rc != NB_OK)
        return rc;

    if (a->fortran_order)
        return npy_fail(z, a, NB_ERR_FORMAT, "fortran_order is True: column-major arrays are not "
                        "supported (save np.ascontiguousarray(x))");
    if ((rc = npy_check_type(z, a)) != NB_OK)
        return rc;
    a->numel = 1;
    for (int i = 0; i < a->ndim; i++)
        a->numel = (uint64_t)nbi_mul((int64_t)a->numel, a->shape[i]);
    char shape[SHAPE_STR];
    uint64_t bytes = (uint64_t)nbi_mul((int64_t)a->numel, a->type->size);
    if (bytes >= (uint64_t)1 << 62)
        return npy_fail(z, a, NB_ERR_FORMAT, "shape %s of %s is too large",
                        shape_str(a, shape, sizeof shape), a->type->name);
    uint64_t holds = st.size >= pre_len + hlen ? st.size - pre_len - hlen : 0;
    if (holds != bytes)
        return npy_fail(z, a, NB_ERR_FORMAT, "shape %s of %s needs %" PRIu64 " bytes of data, "
                        "the entry holds %" PRIu64 " (%s)", shape_str(a, shape, sizeof shape),
                        a->type->name, bytes, holds, holds < bytes ? "truncated" : "extra data");
    return NB_OK;
}

static void npy_close(npy *a)
{
    if (a->f)
        zip_fclose(a->f);
    a->f = NULL;
}

/* ---- images and labels ---------------------------------------------------------- */

/* floor(sqrt(v)) for any v >= 0: unsigned, since (k + 1)^2 may pass
 * INT64_MAX when v is near it (a shape (0, 2^63 - 1) gets this far). */
static int64_t isqrt(int64_t v)
{
    uint64_t u = (uint64_t)v, k = (uint64_t)sqrt((double)v);
    while (k > 0 && k * k > u)
        k--;
    while ((k + 1) * (k + 1) <= u)
        k++;
    return (int64_t)k;
}

/* The images' [c, h, w] from the shape: (N, H, W); (N, C, H, W); (N, H, W,
 * C), channels last, when the last size is at most 4 and the second more;
 * (N, D) with D = k k (gray) or 3 k k (colour, channels first). */
static int image_geom(const npz *z, const npy *a, geom *g)
{
    char shape[SHAPE_STR];
    const int64_t *s = a->shape;
    memset(g, 0, sizeof *g);
    g->n = a->ndim ? s[0] : 0;
    if (a->ndim == 2) {
        int64_t d = s[1], k = isqrt(d), k3 = isqrt(d / 3);
        if (d == 0) {
            g->c = 1; /* refused below as empty */
        } else if (k * k == d) {
            g->c = 1, g->h = k, g->w = k;
        } else if (d % 3 == 0 && k3 * k3 == d / 3) {
            g->c = 3, g->h = k3, g->w = k3;
        } else {
            return npy_fail(z, a, NB_ERR_FORMAT, "images of %" PRId64 " values (shape %s): the "
                            "image size cannot be told (neither k*k nor 3*k*k); shape the array "
                            "(N, C, H, W)", d, shape_str(a, shape, sizeof shape));
        }
    } else if (a->ndim == 3) {
        g->c = 1, g->h = s[1], g->w = s[2];
    } else if (a->ndim == 4 && s[3] <= 4 && s[1] > 4) {
        g->c = s[3], g->h = s[1], g->w = s[2], g->channels_last = true;
    } else if (a->ndim == 4) {
        g->c = s[1], g->h = s[2], g->w = s[3];
    } else {
        return npy_fail(z, a, NB_ERR_FORMAT, "shape %s is not images (N, D), (N, H, W), (N, C, H, "
                        "W) or (N, H, W, C)", shape_str(a, shape, sizeof shape));
    }
    if (g->n < 1)
        return npy_fail(z, a, NB_ERR_FORMAT, "no images (shape %s)",
                        shape_str(a, shape, sizeof shape));
    if (g->h < 1 || g->w < 1 || g->c < 1)
        return npy_fail(z, a, NB_ERR_FORMAT, "empty images (shape %s)",
                        shape_str(a, shape, sizeof shape));
    if (g->c > NB_MAX_CHANNELS)
        return npy_fail(z, a, NB_ERR_FORMAT, "images of %" PRId64 " channels (shape %s; 1 to %d, "
                        "as (N, C, H, W) or (N, H, W, C))", g->c,
                        shape_str(a, shape, sizeof shape), NB_MAX_CHANNELS);
    if ((uint64_t)g->h > MAX_IMAGE_PIXELS || (uint64_t)g->w > MAX_IMAGE_PIXELS ||
        (uint64_t)g->h * (uint64_t)g->w > MAX_IMAGE_PIXELS)
        return npy_fail(z, a, NB_ERR_FORMAT, "images of %" PRId64 "x%" PRId64 " pixels are too "
                        "large (at most 2^24 pixels)", g->h, g->w);
    return NB_OK;
}

/* Labels are (N,) or (N, 1). */
static int label_count(const npz *z, const npy *a, int64_t *n)
{
    char shape[SHAPE_STR];
    if (!(a->ndim == 1 || (a->ndim == 2 && a->shape[1] == 1)))
        return npy_fail(z, a, NB_ERR_FORMAT, "shape %s is not labels (N,) or (N, 1)",
                        shape_str(a, shape, sizeof shape));
    if (a->shape[0] < 1)
        return npy_fail(z, a, NB_ERR_FORMAT, "no labels (shape %s)",
                        shape_str(a, shape, sizeof shape));
    *n = a->shape[0];
    return NB_OK;
}

static bool host_little_endian(void)
{
    const uint16_t one = 1;
    uint8_t first;
    memcpy(&first, &one, 1);
    return first == 1;
}

/* Value k of the array (in the file's order) as an image's: finite, and for
 * float64 within float's range. */
static int check_value(const npz *z, const npy *a, double v, uint64_t k, int64_t per)
{
    if (isfinite(v) && (a->type->size == 4 || fabs(v) <= FLT_MAX))
        return NB_OK;
    return npy_fail(z, a, NB_ERR_FORMAT, "image %" PRIu64 " holds %g (value %" PRIu64 " of it)%s",
                    k / (uint64_t)per, v, k % (uint64_t)per,
                    isfinite(v) ? ", beyond float32's range" : "; images must be finite");
}

/* Reads the images of a into pixels (uint8) or values (float), either
 * pointing at where its first image goes, as [c, h, w] each. */
static int read_images(const npz *z, const npy *a, const geom *g, uint8_t *pixels,
                       float *values)
{
    const unsigned size = a->type->size;
    const int64_t plane = g->h * g->w, per = g->c * plane;
    int rc;
    /* The data as it will be kept: read in place. */
    if (!g->channels_last && (size == 1 || (size == 4 && host_little_endian()))) {
        if ((rc = data_read(z, a, pixels ? (void *)pixels : (void *)values, a->numel * size, 0)))
            return rc;
        for (uint64_t k = 0; values && k < a->numel; k++)
            if (!isfinite(values[k]))
                return check_value(z, a, values[k], k, per);
        return data_end(z, a);
    }
    uint8_t buf[CHUNK];
    int64_t e = 0, ch = 0, pix = 0; /* where value k goes, channels last */
    for (uint64_t k = 0; k < a->numel;) {
        uint64_t n = a->numel - k < CHUNK / size ? a->numel - k : CHUNK / size;
        if ((rc = data_read(z, a, buf, n * size, k * size)))
            return rc;
        for (uint64_t i = 0; i < n; i++, k++) {
            int64_t at = g->channels_last ? e * per + ch * plane + pix : (int64_t)k;
            if (g->channels_last && ++ch == g->c) {
                ch = 0;
                if (++pix == plane)
                    pix = 0, e++;
            }
            const uint8_t *p = buf + i * size;
            if (size == 1) {
                pixels[at] = *p;
                continue;
            }
            uint64_t bits = le_bits(p, size);
            double v;
            if (size == 4) {
                uint32_t b32 = (uint32_t)bits;
                float f;
                memcpy(&f, &b32, sizeof f);
                v = f;
            } else {
                memcpy(&v, &bits, sizeof v);
            }
            if ((rc = check_value(z, a, v, k, per)))
                return rc;
            values[at] = (float)v;
        }
    }
    return data_end(z, a);
}

static int read_labels(const npz *z, const npy *a, int32_t *labels)
{
    const unsigned size = a->type->size;
    const bool is_signed = a->type->kind == NPY_INT;
    const uint64_t mask = size == 8 ? UINT64_MAX : ((uint64_t)1 << (8 * size)) - 1;
    uint8_t buf[CHUNK];
    int rc;
    for (uint64_t k = 0; k < a->numel;) {
        uint64_t n = a->numel - k < CHUNK / size ? a->numel - k : CHUNK / size;
        if ((rc = data_read(z, a, buf, n * size, k * size)))
            return rc;
        for (uint64_t i = 0; i < n; i++, k++) {
            uint64_t bits = le_bits(buf + i * size, size);
            if (is_signed && bits >> (8 * size - 1))
                return npy_fail(z, a, NB_ERR_FORMAT, "label %" PRIu64 " is %" PRId64 " (labels are "
                                "0 to 2^31 - 2)", k, -(int64_t)(~bits & mask) - 1);
            if (bits >= INT32_MAX) /* the class count, one more, is an int */
                return npy_fail(z, a, NB_ERR_FORMAT, "label %" PRIu64 " is %" PRIu64 " (labels are "
                                "0 to 2^31 - 2)", k, bits);
            labels[k] = (int32_t)bits;
        }
    }
    return data_end(z, a);
}

/* ---- the archive ----------------------------------------------------------------- */

/* Appends the archive's entry names to buf, for a message saying what it
 * holds instead of what was looked for. */
static void list_entries(const npz *z, char *buf, size_t size)
{
    zip_int64_t n = zip_get_num_entries(z->za, 0);
    size_t at = 0;
    buf[0] = '\0';
    for (zip_int64_t i = 0; i < n && at + 1 < size; i++) {
        const char *name = zip_get_name(z->za, (zip_uint64_t)i, 0);
        if (!name)
            continue;
        if (at + strlen(name) + 8 >= size) {
            snprintf(buf + at, size - at, "%s...", at ? ", " : "");
            return;
        }
        at += (size_t)snprintf(buf + at, size - at, "%s", at ? ", " : "");
        for (const char *c = name; *c && at + 1 < size; c++) /* one line, printable */
            buf[at++] = *c >= 0x20 && *c < 0x7f ? *c : '?';
        buf[at] = '\0';
    }
    if (!at)
        snprintf(buf, size, "no entries");
}

/* Finds X_<split>.npy and y_<split>.npy: both there (*found true), or both
 * missing (*found false, an error only when required). */
static int find_pair(const npz *z, const char *split, bool required, npy *x, npy *y,
                     zip_int64_t *ix, zip_int64_t *iy, bool *found)
{
    snprintf(x->name, sizeof x->name, "X_%s.npy", split);
    snprintf(y->name, sizeof y->name, "y_%s.npy", split);
    y->labels = true;
    *ix = zip_name_locate(z->za, x->name, 0);
    *iy = zip_name_locate(z->za, y->name, 0);
    *found = *ix >= 0 && *iy >= 0;
    if (*found || (*ix < 0 && *iy < 0 && !required))
        return NB_OK;
    if (*ix >= 0 || *iy >= 0)
        return nbi_fail(z->ctx, NB_ERR_FORMAT, "%s: %s without %s (the %s)", z->origin,
                        *ix >= 0 ? x->name : y->name, *ix >= 0 ? y->name : x->name,
                        *ix >= 0 ? "labels" : "images");
    char held[200];
    list_entries(z, held, sizeof held);
    return nbi_fail(z->ctx, NB_ERR_FORMAT, "%s: no %s and no %s (the %s half needs X_%s and y_%s;"
                    " the archive holds %s)", z->origin, x->name, y->name,
                    strcmp(split, "train") == 0 ? "training" : "test", split, split, held);
}

static const char *geom_kind(const npy *x)
{
    return x->type->kind == NPY_FLOAT ? "float" : "uint8";
}

/* The train (X_train, y_train, then X_valid, y_valid) or test half. */
static nb_dataset *npz_read(npz *z, bool train)
{
    nb_ctx *ctx = z->ctx;
    npy x[2], y[2];
    geom g[2];
    int64_t nlab[2];
    bool found[2] = {false, false};
    zip_int64_t ix[2], iy[2];
    int64_t n = 0, nval = 0;
    uint8_t *pixels = NULL;
    float *values = NULL;
    int32_t *labels = NULL;
    memset(x, 0, sizeof x);
    memset(y, 0, sizeof y);
    int rc = find_pair(z, train ? "train" : "test", true, &x[0], &y[0], &ix[0], &iy[0], &found[0]);
    if (rc == NB_OK && train)
        rc = find_pair(z, "valid", false, &x[1], &y[1], &ix[1], &iy[1], &found[1]);
    for (int s = 0; s < 2 && rc == NB_OK && found[s]; s++) {
        if ((rc = npy_open(z, &x[s], ix[s])) || (rc = image_geom(z, &x[s], &g[s])) ||
            (rc = npy_open(z, &y[s], iy[s])) || (rc = label_count(z, &y[s], &nlab[s])))
            break;
        if (nlab[s] != g[s].n)
            rc = nbi_fail(ctx, NB_ERR_FORMAT, "%s: %.*s has %" PRId64 " images but %.*s %" PRId64
                          " labels", z->origin, (int)strlen(x[s].name) - 4, x[s].name, g[s].n,
                          (int)strlen(y[s].name) - 4, y[s].name, nlab[s]);
    }
    if (rc == NB_OK && found[1] && (g[1].c != g[0].c || g[1].h != g[0].h || g[1].w != g[0].w))
        rc = nbi_fail(ctx, NB_ERR_FORMAT, "%s: X_valid's images are [%" PRId64 ", %" PRId64 ", %"
                      PRId64 "] but X_train's [%" PRId64 ", %" PRId64 ", %" PRId64 "]", z->origin,
                      g[1].c, g[1].h, g[1].w, g[0].c, g[0].h, g[0].w);
    if (rc == NB_OK && found[1] && (x[1].type->kind == NPY_FLOAT) != (x[0].type->kind == NPY_FLOAT))
        rc = nbi_fail(ctx, NB_ERR_FORMAT, "%s: X_valid holds %s images but X_train %s (both "
                      "uint8 or both float)", z->origin, geom_kind(&x[1]), geom_kind(&x[0]));
    if (rc != NB_OK)
        goto done;

    /* Both splits in one allocation, validation last. */
    nval = found[1] ? g[1].n : 0;
    n = g[0].n + nval;
    const int64_t per = g[0].c * g[0].h * g[0].w;
    const bool floats = x[0].type->kind == NPY_FLOAT;
    uint64_t image_bytes = (uint64_t)nbi_mul(nbi_mul(n, per), floats ? 4 : 1);
    uint64_t label_bytes = (uint64_t)nbi_mul(n, 4);
    if (image_bytes >= (uint64_t)1 << 62 || image_bytes > SIZE_MAX / 2 ||
        !nbi_mem_fits(ctx, image_bytes + label_bytes)) {
        rc = nbi_mem_refuse(ctx, image_bytes + label_bytes, "%s: %" PRId64 " images of [%" PRId64
                            ", %" PRId64 ", %" PRId64 "] and their labels", z->origin, n, g[0].c,
                            g[0].h, g[0].w);
        goto done;
    }
    labels = nbi_alloc(ctx, (size_t)label_bytes);
    if (floats)
        values = nbi_alloc(ctx, (size_t)image_bytes);
    else
        pixels = nbi_alloc(ctx, (size_t)image_bytes);
    if (!labels || (!values && !pixels)) {
        rc = NB_ERR_NOMEM;
        goto done;
    }
    for (int s = 0; s < 2 && rc == NB_OK && found[s]; s++) {
        int64_t first = s ? g[0].n : 0;
        rc = read_images(z, &x[s], &g[s], pixels ? pixels + first * per : NULL,
                         values ? values + first * per : NULL);
        if (rc == NB_OK)
            rc = read_labels(z, &y[s], labels + first);
    }

done:
    for (int s = 0; s < 2; s++) {
        npy_close(&x[s]);
        npy_close(&y[s]);
    }
    if (rc != NB_OK) {
        nbi_free(ctx, pixels);
        nbi_free(ctx, values);
        nbi_free(ctx, labels);
        return NULL;
    }
    nb_dataset *ds = nbi_dataset_adopt(ctx, n, g[0].c, g[0].h, g[0].w, pixels, values, labels,
                                       NULL, 0, z->origin);
    nbi_dataset_set_validation(ds, nval);
    return ds;
}

/* Opens the archive from src (which it owns from then on) and reads it. */
static nb_dataset *npz_open(nb_ctx *ctx, zip_source_t *src, uint64_t size, const char *origin,
                            bool train)
{
    /* libzip opens an empty buffer as an archive of no entries but refuses
     * an empty file: both are refused alike. */
    if (size == 0) {
        zip_source_free(src);
        nbi_fail(ctx, NB_ERR_FORMAT, "%s: not a readable .npz (zip) archive: empty", origin);
        return NULL;
    }
    zip_error_t err;
    zip_error_init(&err);
    zip_t *za = zip_open_from_source(src, ZIP_RDONLY, &err);
    if (!za) {
        zip_source_free(src);
        int code = zip_status(&err);
        nbi_fail(ctx, code, "%s: %s: %s", origin,
                 code == NB_ERR_IO ? "cannot read" : "not a readable .npz (zip) archive",
                 zip_error_strerror(&err));
        zip_error_fini(&err);
        return NULL;
    }
    zip_error_fini(&err);
    npz z = {ctx, origin, za, size};
    nb_dataset *ds = npz_read(&z, train);
    zip_discard(za);
    return ds;
}

nb_dataset *nbi_npz_parse(nb_ctx *ctx, const void *buf, size_t len, const char *origin,
                          bool train)
{
    if (!buf && len)
        return nbi_fail_null(ctx, NB_ERR_ARG, "npz_parse: buf is NULL");
    if (!origin)
        origin = "memory";
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t *src = zip_source_buffer_create(buf, len, 0, &err);
    if (!src) {
        nbi_fail(ctx, zip_status(&err), "%s: %s", origin, zip_error_strerror(&err));
        zip_error_fini(&err);
        return NULL;
    }
    zip_error_fini(&err);
    return npz_open(ctx, src, len, origin, train);
}

/* Regular files only, as the other readers: a pipe has no size, and
 * libzip seeks. */
nb_dataset *nbi_npz_load(nb_ctx *ctx, const char *path, bool train)
{
    if (!path)
        return nbi_fail_null(ctx, NB_ERR_ARG, "npz_load: path is NULL");
    struct stat st;
    if (stat(path, &st) != 0)
        return nbi_fail_null(ctx, NB_ERR_IO, "%s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode))
        return nbi_fail_null(ctx, NB_ERR_IO, "%s: is a directory", path);
    if (!S_ISREG(st.st_mode))
        return nbi_fail_null(ctx, NB_ERR_IO, "%s: not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return nbi_fail_null(ctx, NB_ERR_IO, "%s: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) { /* replaced since the stat */
        fclose(f);
        return nbi_fail_null(ctx, NB_ERR_IO, "%s: not a regular file", path);
    }
    zip_error_t err;
    zip_error_init(&err);
    zip_source_t *src = zip_source_filep_create(f, 0, -1, &err);
    if (!src) {
        fclose(f);
        nbi_fail(ctx, zip_status(&err), "%s: %s", path, zip_error_strerror(&err));
        zip_error_fini(&err);
        return NULL;
    }
    zip_error_fini(&err);
    return npz_open(ctx, src, (uint64_t)st.st_size, path, train);
}
