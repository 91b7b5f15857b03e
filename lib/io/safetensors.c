/*
 * safetensors.c - reading and writing safetensors files: an 8-byte
 * little-endian header length N, N bytes of JSON mapping each name to its
 * dtype, shape and byte range, then the raw little-endian data.
 *
 * A file is read whole and checked once, when it is opened: after that
 * every entry's range is known to lie inside the data and to hold exactly
 * its shape's elements, so get and read only convert.  Bytes are decoded
 * one by one, so the host's byte order does not matter.
 */
#include "io/safetensors.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* The reference implementation's limit on the header. */
#define ST_MAX_HEADER 100000000u
/* Files are read whole, if they fit the context's memory limit; above
 * this they are taken for a mistake. */
#define MAX_FILE_BYTES (SIZE_MAX / 4)
/* Integers below 2^53 are exact in the double cJSON parses them into. */
#define ST_MAX_INT 9007199254740992.0
/* Room for a name quoted in a message. */
#define QBUF 80

enum { ST_F16, ST_BF16, ST_F32, ST_F64, ST_I8, ST_U8, ST_I16, ST_I32, ST_I64, ST_BOOL };

static const struct st_dtype {
    const char *name;
    unsigned size;
} st_dtypes[] = {
    [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2}, [ST_F32] = {"F32", 4},
    [ST_F64] = {"F64", 8}, [ST_I8] = {"I8", 1},     [ST_U8] = {"U8", 1},
    [ST_I16] = {"I16", 2}, [ST_I32] = {"I32", 4},   [ST_I64] = {"I64", 8},
    [ST_BOOL] = {"BOOL", 1},
};
#define ST_NDTYPES ((int)(sizeof st_dtypes / sizeof st_dtypes[0]))

typedef struct st_entry {
    char name[64];
    int dtype;            /* index into st_dtypes */
    int ndim;             /* may exceed NB_MAX_DIMS: refused at get */
    const int64_t *shape; /* into the file's dims */
    uint64_t numel;
    uint64_t begin, end;  /* byte range within the data */
} st_entry;

struct nb_safetensors {
    nb_ctx *ctx;
    char *origin;               /* the path, for messages */
    unsigned char *buf;         /* the whole file */
    size_t len;
    const unsigned char *data;  /* after the header */
    size_t data_len;
    int n;
    st_entry *entries;          /* in header order */
    st_entry **byname;          /* sorted by name, for find */
    int64_t *dims;              /* every entry's shape, back to back */
    int nmeta;
    char **meta;                /* __metadata__: key, value, key, value... */
};

/* ---- small helpers ------------------------------------------------------ */

/* A growing string; with cap 0 it only measures. */
typedef struct sbuf {
    char *p;
    size_t cap, len;
} sbuf;

static void sb_put(sbuf *b, const char *fmt, ...) NBI_PRINTF(2, 3);

static void sb_put(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    bool room = b->len < b->cap;
    int k = vsnprintf(room ? b->p + b->len : NULL, room ? b->cap - b->len : 0, fmt, ap);
    va_end(ap);
    if (k > 0)
        b->len += (size_t)k;
}

static uint64_t get_le(const unsigned char *p, unsigned size)
{
    uint64_t v = 0;
    for (unsigned i = size; i-- > 0;)
        v = v << 8 | p[i];
    return v;
}

static void put_le(unsigned char *p, uint64_t v, unsigned size)
{
    for (unsigned i = 0; i < size; i++, v >>= 8)
        p[i] = (unsigned char)v;
}

/* Offset of the first byte that is not well-formed UTF-8, or -1. */
static ptrdiff_t bad_utf8(const unsigned char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t k;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            k = 1, cp = c & 0x1F, min = 0x80;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2, cp = c & 0x0F, min = 0x800;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3, cp = c & 0x07, min = 0x10000;
        } else {
            return (ptrdiff_t)i;
        }
        if (k >= n - i)
            return (ptrdiff_t)i;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return (ptrdiff_t)i;
            cp = cp << 6 | (s[i + j] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return (ptrdiff_t)i;
        i += k + 1;
    }
    return -1;
}

/* ---- decoding ------------------------------------------------------------ */

static double f32_bits(uint32_t bits)
{
    float v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

static double f64_bits(uint64_t bits)
{
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

/* IEEE half precision: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa
 * bits; exponent 0 holds zero and the subnormals, 31 inf and nan. */
static double f16_value(uint16_t h)
{
    int exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
    double v;
    if (exp == 0)
        v = ldexp(mant, -24);
    else if (exp == 31)
        v = mant ? NAN : INFINITY;
    else
        v = ldexp(mant + 1024, exp - 25);
    return (h & 0x8000) ? -v : v;
}

/* A two's complement integer of `bits` bits, without relying on how the
 * compiler converts unsigned to signed. */
static double signed_value(uint64_t v, unsigned bits)
{
    uint64_t sign = (uint64_t)1 << (bits - 1);
    uint64_t mask = sign | (sign - 1);
    if (v & sign)
        return -(double)(~v & mask) - 1.0;
    return (double)v;
}

static double decode_one(const unsigned char *p, int dtype)
{
    switch (dtype) {
    case ST_F16: return f16_value((uint16_t)get_le(p, 2));
    case ST_BF16: return f32_bits((uint32_t)get_le(p, 2) << 16); /* the top half of an F32 */
    case ST_F32: return f32_bits((uint32_t)get_le(p, 4));
    case ST_F64: return f64_bits(get_le(p, 8));
    case ST_I8: return signed_value(p[0], 8);
    case ST_U8: return p[0];
    case ST_I16: return signed_value(get_le(p, 2), 16);
    case ST_I32: return signed_value(get_le(p, 4), 32);
    case ST_I64: return signed_value(get_le(p, 8), 64);
    default: return p[0] != 0; /* BOOL */
    }
}

/* Fills t (numel elements, checked by the caller) from the entry's bytes.
 * Same-type copies go through the bits, so they are exact even for nans. */
static void decode(const nb_safetensors *f, const st_entry *e, nb_tensor *t)
{
    const unsigned char *src = f->data + e->begin;
    unsigned size = st_dtypes[e->dtype].size;
    if (e->dtype == ST_F32 && t->dtype == NB_F32) {
        float *d = t->data;
        for (int64_t i = 0; i < t->numel; i++) {
            uint32_t bits = (uint32_t)get_le(src + 4 * i, 4);
            memcpy(&d[i], &bits, sizeof bits);
        }
    } else if (e->dtype == ST_F64 && t->dtype == NB_F64) {
        double *d = t->data;
        for (int64_t i = 0; i < t->numel; i++) {
            uint64_t bits = get_le(src + 8 * i, 8);
            memcpy(&d[i], &bits, sizeof bits);
        }
    } else {
        for (int64_t i = 0; i < t->numel; i++)
            nb_set(t, i, decode_one(src + (size_t)i * size, e->dtype));
    }
}

/* ---- parsing ------------------------------------------------------------- */

static int bad(const nb_safetensors *f, const char *fmt, ...) NBI_PRINTF(2, 3);

/* Records a format error "origin: what" and returns its code. */
static int bad(const nb_safetensors *f, const char *fmt, ...)
{
    char msg[sizeof f->ctx->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nbi_fail(f->ctx, NB_ERR_FORMAT, "%s: %s", f->origin, msg);
}

/* A JSON number that is an integer in [0, 2^53), so exact. */
static bool get_uint(const cJSON *item, uint64_t *out)
{
    if (!cJSON_IsNumber(item))
        return false;
    double d = item->valuedouble;
    if (!(d >= 0 && d < ST_MAX_INT) || d != floor(d))
        return false;
    *out = (uint64_t)d;
    return true;
}

static char *copy_str(nb_ctx *ctx, const char *s)
{
    size_t n = strlen(s) + 1;
    char *c = nbi_alloc(ctx, n);
    if (c)
        memcpy(c, s, n);
    return c;
}

/* "__metadata__": an object of strings, kept for nb_safetensors_meta. */
static int parse_metadata(nb_safetensors *f, const cJSON *item)
{
    char q[QBUF];
    if (!cJSON_IsObject(item))
        return bad(f, "__metadata__ is not an object");
    int n = 0;
    for (const cJSON *c = item->child; c; c = c->next, n++)
        if (!cJSON_IsString(c))
            return bad(f, "__metadata__: %s is not a string", nbi_quote(c->string, q, sizeof q));
    f->meta = nbi_alloc(f->ctx, (size_t)(2 * n + 1) * sizeof *f->meta);
    if (!f->meta)
        return NB_ERR_NOMEM;
    for (const cJSON *c = item->child; c; c = c->next) {
        f->meta[2 * f->nmeta] = copy_str(f->ctx, c->string);
        f->meta[2 * f->nmeta + 1] = copy_str(f->ctx, c->valuestring);
        if (!f->meta[2 * f->nmeta] || !f->meta[2 * f->nmeta + 1]) {
            nbi_free(f->ctx, f->meta[2 * f->nmeta]);
            return NB_ERR_NOMEM;
        }
        f->nmeta++;
    }
    return NB_OK;
}

const char *nb_safetensors_meta(const nb_safetensors *f, const char *key)
{
    for (int i = 0; f && key && i < f->nmeta; i++)
        if (strcmp(f->meta[2 * i], key) == 0)
            return f->meta[2 * i + 1];
    return NULL;
}

/* One entry: {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}.
 * Its dims go to dims[0..room). */
static int parse_entry(nb_safetensors *f, const cJSON *item, st_entry *e,
                       int64_t *dims, size_t room)
{
    char q[QBUF], q2[QBUF], s[96];
    const char *name = item->string;
    if (!name[0])
        return bad(f, "a tensor has an empty name");
    if (strlen(name) >= sizeof e->name)
        return bad(f, "tensor name %s is longer than %zu bytes", nbi_quote(name, q, sizeof q),
                   sizeof e->name - 1);
    nbi_quote(name, q, sizeof q);
    if (!cJSON_IsObject(item))
        return bad(f, "%s is not an object with dtype, shape and data_offsets", q);

    const cJSON *dt = NULL, *sh = NULL, *off = NULL;
    for (const cJSON *c = item->child; c; c = c->next) {
        const cJSON **slot = !strcmp(c->string, "dtype") ? &dt
                           : !strcmp(c->string, "shape") ? &sh
                           : !strcmp(c->string, "data_offsets") ? &off : NULL;
        if (!slot)
            continue; /* other fields are ignored, as the reference reader does */
        if (*slot)
            return bad(f, "%s: duplicate field \"%s\"", q, c->string);
        *slot = c;
    }
    if (!dt || !sh || !off)
        return bad(f, "%s: missing \"%s\"", q, !dt ? "dtype" : !sh ? "shape" : "data_offsets");

    if (!cJSON_IsString(dt))
        return bad(f, "%s: dtype is not a string", q);
    e->dtype = -1;
    for (int i = 0; i < ST_NDTYPES; i++)
        if (!strcmp(dt->valuestring, st_dtypes[i].name))
            e->dtype = i;
    if (e->dtype < 0)
        return bad(f, "%s: unsupported dtype %s (nabla reads F16, BF16, F32, F64, I8, U8, "
                   "I16, I32, I64 and BOOL)", q, nbi_quote(dt->valuestring, q2, sizeof q2));

    if (!cJSON_IsArray(sh))
        return bad(f, "%s: shape is not a list", q);
    size_t nd = 0;
    uint64_t numel = 1;
    bool zero = false, overflow = false;
    for (const cJSON *c = sh->child; c; c = c->next, nd++) {
        uint64_t v;
        if (!get_uint(c, &v))
            return bad(f, "%s: shape[%zu] is not a non-negative integer", q, nd);
        if (nd >= room || nd >= INT32_MAX)
            return bad(f, "%s: shape is too long", q); /* cannot happen: counted before */
        dims[nd] = (int64_t)v;
        if (v == 0)
            zero = true;
        else if (numel > UINT64_MAX / v)
            overflow = true;
        else
            numel *= v;
    }
    e->ndim = (int)nd;
    e->shape = dims;
    e->numel = zero ? 0 : numel;
    overflow = overflow && !zero;

    uint64_t b, end;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2 || !get_uint(off->child, &b)
        || !get_uint(off->child->next, &end))
        return bad(f, "%s: data_offsets is not a list of two non-negative integers", q);
    if (b > end)
        return bad(f, "%s: data_offsets [%" PRIu64 ", %" PRIu64 "] are reversed", q, b, end);
    if (end > f->data_len)
        return bad(f, "%s: data_offsets [%" PRIu64 ", %" PRIu64 "] go past the end of the data "
                   "(%zu bytes)", q, b, end, f->data_len);
    unsigned size = st_dtypes[e->dtype].size;
    if (overflow || e->numel > UINT64_MAX / size || e->numel * size != end - b) {
        char bytes[32];
        if (overflow || e->numel > UINT64_MAX / size)
            snprintf(bytes, sizeof bytes, "more than 2^64 bytes");
        else
            snprintf(bytes, sizeof bytes, "%" PRIu64 " bytes", e->numel * size);
        return bad(f, "%s: data_offsets [%" PRIu64 ", %" PRIu64 "] do not match shape %s of %s (%s)",
                   q, b, end, nb_dims_str(e->ndim, e->shape, s, sizeof s), st_dtypes[e->dtype].name,
                   bytes);
    }
    e->begin = b;
    e->end = end;
    memcpy(e->name, name, strlen(name) + 1);
    return NB_OK;
}

static int by_offset(const void *pa, const void *pb)
{
    const st_entry *a = *(st_entry *const *)pa, *b = *(st_entry *const *)pb;
    if (a->begin != b->begin)
        return a->begin < b->begin ? -1 : 1;
    if (a->end != b->end)
        return a->end < b->end ? -1 : 1;
    return 0;
}

static int by_name(const void *pa, const void *pb)
{
    return strcmp((*(st_entry *const *)pa)->name, (*(st_entry *const *)pb)->name);
}

/* The header's object: its entries, then the checks across them. */
static int parse_root(nb_safetensors *f, const cJSON *root)
{
    if (!cJSON_IsObject(root))
        return bad(f, "header is not a JSON object");
    size_t count = 0, ndims = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        if (!strcmp(it->string, "__metadata__"))
            continue;
        count++;
        const cJSON *sh = cJSON_IsObject(it) ? cJSON_GetObjectItemCaseSensitive(it, "shape") : NULL;
        if (cJSON_IsArray(sh))
            ndims += (size_t)cJSON_GetArraySize(sh);
    }
    if (count > INT32_MAX / 2)
        return bad(f, "too many tensors (%zu)", count);
    f->entries = nbi_alloc(f->ctx, (count ? count : 1) * sizeof *f->entries);
    f->byname = nbi_alloc(f->ctx, (count ? count : 1) * sizeof *f->byname);
    f->dims = nbi_alloc(f->ctx, (ndims ? ndims : 1) * sizeof *f->dims);
    if (!f->entries || !f->byname || !f->dims)
        return NB_ERR_NOMEM;

    bool meta = false;
    size_t used = 0;
    for (const cJSON *it = root->child; it; it = it->next) {
        int rc;
        if (!strcmp(it->string, "__metadata__")) {
            if (meta)
                return bad(f, "duplicate \"__metadata__\"");
            meta = true;
            rc = parse_metadata(f, it);
        } else {
            st_entry *e = &f->entries[f->n];
            rc = parse_entry(f, it, e, f->dims + used, ndims - used);
            if (rc == NB_OK) {
                used += (size_t)e->ndim;
                f->byname[f->n++] = e;
            }
        }
        if (rc != NB_OK)
            return rc;
    }

    /* cJSON keeps duplicate keys: find them next to each other. */
    qsort(f->byname, (size_t)f->n, sizeof *f->byname, by_name);
    for (int i = 1; i < f->n; i++)
        if (!strcmp(f->byname[i - 1]->name, f->byname[i]->name)) {
            char q[QBUF];
            return bad(f, "duplicate tensor name %s", nbi_quote(f->byname[i]->name, q, sizeof q));
        }
    /* The format wants the entries to tile the data; overlapping ranges
     * would alias two tensors. */
    qsort(f->byname, (size_t)f->n, sizeof *f->byname, by_offset);
    const st_entry *last = NULL;
    for (int i = 0; i < f->n; i++) {
        const st_entry *e = f->byname[i];
        if (last && e->begin < last->end) {
            char qa[QBUF], qb[QBUF];
            return bad(f, "%s [%" PRIu64 ", %" PRIu64 "] and %s [%" PRIu64 ", %" PRIu64 "] overlap",
                       nbi_quote(last->name, qa, sizeof qa), last->begin, last->end,
                       nbi_quote(e->name, qb, sizeof qb), e->begin, e->end);
        }
        if (!last || e->end > last->end)
            last = e;
    }
    /* Back in name order, for find. */
    qsort(f->byname, (size_t)f->n, sizeof *f->byname, by_name);
    return NB_OK;
}

static bool json_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static int parse(nb_safetensors *f)
{
    const unsigned char *b = f->buf;
    size_t len = f->len;
    if (len == 0)
        return bad(f, "empty file");
    if (len < 8)
        return bad(f, "truncated: %zu bytes, too short for the 8-byte header length", len);
    uint64_t n = get_le(b, 8);
    if (n > ST_MAX_HEADER)
        return bad(f, "header length %" PRIu64 " is absurd (at most %u): not a safetensors file?",
                   n, ST_MAX_HEADER);
    if (n > len - 8)
        return bad(f, "truncated: header says %" PRIu64 " bytes but the file has %zu after the length",
                   n, len - 8);
    if (n == 0)
        return bad(f, "empty header");
    const unsigned char *h = b + 8;
    if (h[0] != '{')
        return bad(f, "header does not start with '{'");
    ptrdiff_t at = bad_utf8(h, n);
    if (at >= 0)
        return bad(f, "header is not valid UTF-8 (at byte %td)", at);
    for (size_t i = 0; i < n; i++) /* cJSON would take them for spaces */
        if (h[i] < 0x20 && !json_space(h[i]))
            return bad(f, "header has a control character (0x%02x) at byte %zu", h[i], i);
    f->data = h + n;
    f->data_len = len - 8 - (size_t)n;

    /* cJSON wants a terminated string. */
    char *text = nbi_alloc(f->ctx, (size_t)n + 1);
    if (!text)
        return NB_ERR_NOMEM;
    memcpy(text, h, (size_t)n);
    text[n] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)n, &end, false);
    size_t pos = end ? (size_t)(end - text) : 0;
    nbi_free(f->ctx, text);
    if (!root)
        return bad(f, "header is not valid JSON (at byte %zu)", pos);
    for (size_t i = pos; i < n; i++)
        if (!json_space(h[i])) {
            cJSON_Delete(root);
            return bad(f, "header has more after its JSON object (at byte %zu)", i);
        }
    int rc = parse_root(f, root);
    cJSON_Delete(root);
    return rc;
}

/* Takes buf (allocated with nbi_alloc) whatever happens. */
static nb_safetensors *parse_owned(nb_ctx *ctx, unsigned char *buf, size_t len,
                                   const char *origin)
{
    nb_safetensors *f = nbi_alloc(ctx, sizeof *f);
    if (!f) {
        nbi_free(ctx, buf);
        return NULL;
    }
    memset(f, 0, sizeof *f);
    f->ctx = ctx;
    f->buf = buf;
    f->len = len;
    size_t olen = strlen(origin) + 1;
    f->origin = nbi_alloc(ctx, olen);
    if (f->origin)
        memcpy(f->origin, origin, olen);
    if (!f->origin || parse(f) != NB_OK) {
        nb_safetensors_close(f);
        return NULL;
    }
    return f;
}

nb_safetensors *nbi_safetensors_parse(nb_ctx *ctx, const void *buf, size_t len,
                                      const char *origin)
{
    if (!buf && len)
        return nbi_fail_null(ctx, NB_ERR_ARG, "safetensors_parse: buffer is NULL");
    unsigned char *copy = nbi_alloc(ctx, len ? len : 1);
    if (!copy)
        return NULL;
    if (len)
        memcpy(copy, buf, len);
    return parse_owned(ctx, copy, len, origin ? origin : "<memory>");
}


nb_safetensors *nb_safetensors_open(nb_ctx *ctx, const char *path)
{
    if (!path)
        return nbi_fail_null(ctx, NB_ERR_ARG, "safetensors_open: path is NULL");
    char *buf;
    size_t len;
    /* Only a regular file: its size bounds the read (a device such as
     * /dev/zero has no end, and a pipe no size). */
    if (nbi_file_read(ctx, path, MAX_FILE_BYTES, NBI_FILE_REGULAR, &buf, &len) != NB_OK)
        return NULL;
    return parse_owned(ctx, (unsigned char *)buf, len, path);
}

void nb_safetensors_close(nb_safetensors *f)
{
    if (!f)
        return;
    nb_ctx *ctx = f->ctx;
    nbi_free(ctx, f->entries);
    nbi_free(ctx, f->byname);
    nbi_free(ctx, f->dims);
    for (int i = 0; i < 2 * f->nmeta; i++)
        nbi_free(ctx, f->meta[i]);
    nbi_free(ctx, f->meta);
    nbi_free(ctx, f->buf);
    nbi_free(ctx, f->origin);
    nbi_free(ctx, f);
}

/* ---- entries --------------------------------------------------------------- */

int nb_safetensors_count(const nb_safetensors *f)
{
    return f ? f->n : 0;
}

const char *nb_safetensors_name(const nb_safetensors *f, int i)
{
    return f && i >= 0 && i < f->n ? f->entries[i].name : NULL;
}

static int find_cmp(const void *key, const void *elem)
{
    return strcmp(key, (*(st_entry *const *)elem)->name);
}

int nb_safetensors_find(const nb_safetensors *f, const char *name)
{
    if (!f || !name || !f->n)
        return -1;
    st_entry *const *p = bsearch(name, f->byname, (size_t)f->n, sizeof *f->byname, find_cmp);
    return p ? (int)(*p - f->entries) : -1;
}

/* Whether an entry fits in a tensor: nabla has neither empty dimensions
 * nor more than NB_MAX_DIMS of them. */
static bool fits_tensor(nb_ctx *ctx, const nb_safetensors *f, const st_entry *e)
{
    char q[QBUF], s[96];
    if (e->ndim > NB_MAX_DIMS) {
        nbi_fail(ctx, NB_ERR_FORMAT, "%s: %s has %d dimensions (nabla tensors have at most %d)",
                 f->origin, nbi_quote(e->name, q, sizeof q), e->ndim, NB_MAX_DIMS);
        return false;
    }
    if (e->numel == 0) {
        nbi_fail(ctx, NB_ERR_FORMAT, "%s: %s has shape %s: nabla tensors cannot have a dimension of size 0",
                 f->origin, nbi_quote(e->name, q, sizeof q), nb_dims_str(e->ndim, e->shape, s, sizeof s));
        return false;
    }
    return true;
}

nb_tensor *nb_safetensors_get(nb_ctx *ctx, nb_safetensors *f, const char *name,
                              nb_dtype dtype)
{
    char q[QBUF];
    if (!f || !name)
        return nbi_fail_null(ctx, NB_ERR_ARG, "safetensors_get: %s is NULL", f ? "name" : "file");
    if (dtype != NB_F32 && dtype != NB_F64)
        return nbi_fail_null(ctx, NB_ERR_ARG, "safetensors_get: unknown dtype %d", (int)dtype);
    int i = nb_safetensors_find(f, name);
    if (i < 0)
        return nbi_fail_null(ctx, NB_ERR_FORMAT, "%s: no tensor named %s", f->origin,
                             nbi_quote(name, q, sizeof q));
    const st_entry *e = &f->entries[i];
    if (!fits_tensor(ctx, f, e))
        return NULL;
    nb_tensor *t = nb_tensor_new(ctx, dtype, e->ndim, e->shape);
    if (!t)
        return NULL;
    decode(f, e, t);
    return nb_tensor_set_name(t, e->name);
}

/* ---- reading into tensors ---------------------------------------------------
 * Problems are gathered into one line: missing names, then unexpected
 * ones, then shape mismatches, each kind cut after a few. */

typedef struct report {
    char s[440];
    size_t len;
    int kinds;         /* kinds of problem written */
    int shown, hidden; /* of the current kind */
} report;

static void rp_put(report *r, const char *fmt, ...) NBI_PRINTF(2, 3);

static void rp_put(report *r, const char *fmt, ...)
{
    size_t room = sizeof r->s - r->len;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(r->s + r->len, room, fmt, ap);
    va_end(ap);
    if (k > 0)
        r->len += (size_t)k < room ? (size_t)k : room - 1;
}

/* Adds `text` to the current kind, opened with `label`, items separated by
 * `sep`; past five items, or when the line gets long, only counts it. */
static void rp_item(report *r, const char *label, const char *sep, const char *text)
{
    if (r->shown >= 5 || r->len + strlen(label) + strlen(text) + 48 > sizeof r->s) {
        r->hidden++;
        return;
    }
    if (r->shown == 0)
        rp_put(r, "%s%s", r->kinds ? "; " : "", label);
    else
        rp_put(r, "%s", sep);
    rp_put(r, "%s", text);
    r->shown++;
}

/* Closes the current kind: "and 3 more", or "<what>: 12" when none fitted. */
static void rp_end(report *r, const char *what, const char *more)
{
    if (r->hidden && r->shown)
        rp_put(r, " and %d more%s", r->hidden, more);
    else if (r->hidden)
        rp_put(r, "%s%d %s", r->kinds ? "; " : "", r->hidden, what);
    if (r->shown || r->hidden)
        r->kinds++;
    r->shown = r->hidden = 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

static bool same_shape(const st_entry *e, const nb_tensor *t)
{
    if (e->ndim != t->ndim)
        return false;
    for (int d = 0; d < t->ndim; d++)
        if (e->shape[d] != t->shape[d])
            return false;
    return true;
}

int nb_safetensors_read(nb_ctx *ctx, nb_safetensors *f, int n,
                        nb_tensor *const *tensors, bool strict)
{
    if (!f)
        return nbi_fail(ctx, NB_ERR_ARG, "safetensors_read: file is NULL");
    if (n < 0 || (n > 0 && !tensors))
        return nbi_fail(ctx, NB_ERR_ARG, "safetensors_read: bad tensor list");
    for (int i = 0; i < n; i++)
        if (!tensors[i])
            return nbi_fail(ctx, NB_ERR_ARG, "safetensors_read: tensor %d is NULL", i);

    char q[QBUF];
    report r = {.len = 0};
    for (int i = 0; i < n; i++)
        if (nb_safetensors_find(f, tensors[i]->name) < 0)
            rp_item(&r, "missing ", ", ", nbi_quote(tensors[i]->name, q, sizeof q));
    rp_end(&r, "missing tensors", "");
    /* PyTorch's batch-norm step counter is no weight: never unexpected. */
    for (int j = 0; strict && j < f->n; j++) {
        const char *name = f->entries[j].name;
        if (ends_with(name, ".num_batches_tracked"))
            continue;
        int i = 0;
        while (i < n && strcmp(tensors[i]->name, name))
            i++;
        if (i == n)
            rp_item(&r, "unexpected ", ", ", nbi_quote(name, q, sizeof q));
    }
    rp_end(&r, "unexpected tensors", "");
    for (int i = 0; i < n; i++) {
        int j = nb_safetensors_find(f, tensors[i]->name);
        if (j < 0 || same_shape(&f->entries[j], tensors[i]))
            continue;
        const st_entry *e = &f->entries[j];
        char text[300], a[96], b[96];
        snprintf(text, sizeof text, "%s has shape %s in the file but the model expects %s",
                 nbi_quote(e->name, q, sizeof q), nb_dims_str(e->ndim, e->shape, a, sizeof a),
                 nb_shape_str(tensors[i], b, sizeof b));
        rp_item(&r, "", "; ", text);
    }
    rp_end(&r, "shape mismatches", " shape mismatches");
    if (r.kinds)
        return nbi_fail(ctx, NB_ERR_FORMAT, "%s: %s", f->origin, r.s);

    /* Everything matches: only now change the tensors. */
    for (int i = 0; i < n; i++)
        decode(f, &f->entries[nb_safetensors_find(f, tensors[i]->name)], tensors[i]);
    return NB_OK;
}

/* ---- writing ------------------------------------------------------------- */

static void json_string(sbuf *b, const char *s)
{
    sb_put(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            sb_put(b, "\\%c", c);
        else if (c < 0x20)
            sb_put(b, "\\u%04x", c);
        else
            sb_put(b, "%c", c);
    }
    sb_put(b, "\"");
}

/* The header's JSON: the metadata, then the entries in the given order,
 * data back to back. */
static void write_header(sbuf *b, int n, nb_tensor *const *ts, int nmeta,
                         const char *const *keys, const char *const *values)
{
    uint64_t off = 0;
    sb_put(b, "{");
    if (nmeta > 0) {
        sb_put(b, "\"__metadata__\":{");
        for (int i = 0; i < nmeta; i++) {
            if (i)
                sb_put(b, ",");
            json_string(b, keys[i]);
            sb_put(b, ":");
            json_string(b, values[i]);
        }
        sb_put(b, "}%s", n ? "," : "");
    }
    for (int i = 0; i < n; i++) {
        const nb_tensor *t = ts[i];
        uint64_t bytes = (uint64_t)t->numel * nb_dtype_size(t->dtype);
        if (i)
            sb_put(b, ",");
        json_string(b, t->name);
        sb_put(b, ":{\"dtype\":\"%s\",\"shape\":[", t->dtype == NB_F64 ? "F64" : "F32");
        for (int d = 0; d < t->ndim; d++)
            sb_put(b, "%s%" PRId64, d ? "," : "", t->shape[d]);
        sb_put(b, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", off, off + bytes);
        off += bytes;
    }
    sb_put(b, "}");
}

static bool write_data(FILE *fp, const nb_tensor *t)
{
    unsigned char chunk[4096];
    size_t size = nb_dtype_size(t->dtype), per = sizeof chunk / size, k = 0;
    for (int64_t i = 0; i < t->numel; i++) {
        if (t->dtype == NB_F64) {
            uint64_t bits;
            memcpy(&bits, (const double *)t->data + i, sizeof bits);
            put_le(chunk + k * size, bits, 8);
        } else {
            uint32_t bits;
            memcpy(&bits, (const float *)t->data + i, sizeof bits);
            put_le(chunk + k * size, bits, 4);
        }
        if (++k == per || i + 1 == t->numel) {
            if (fwrite(chunk, size, k, fp) != k)
                return false;
            k = 0;
        }
    }
    return true;
}

/* Writes the header and the tensors' data to fp; false with errno set on
 * failure. */
static bool write_file(FILE *fp, const char *header, size_t hlen, int n,
                       nb_tensor *const *tensors)
{
    errno = 0;
    unsigned char len8[8];
    put_le(len8, hlen, 8);
    bool ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(header, 1, hlen, fp) == hlen;
    for (int i = 0; ok && i < n; i++)
        ok = write_data(fp, tensors[i]);
    return ok;
}

int nb_safetensors_save(nb_ctx *ctx, const char *path, int n, nb_tensor *const *tensors)
{
    return nb_safetensors_save_meta(ctx, path, n, tensors, 0, NULL, NULL);
}

int nb_safetensors_save_meta(nb_ctx *ctx, const char *path, int n, nb_tensor *const *tensors,
                             int nmeta, const char *const *keys, const char *const *values)
{
    char q[QBUF];
    if (!path)
        return nbi_fail(ctx, NB_ERR_ARG, "safetensors_save: path is NULL");
    if (n < 0 || (n > 0 && !tensors))
        return nbi_fail(ctx, NB_ERR_ARG, "%s: bad tensor list", path);
    if (nmeta < 0 || (nmeta > 0 && (!keys || !values)))
        return nbi_fail(ctx, NB_ERR_ARG, "%s: bad metadata list", path);
    for (int i = 0; i < nmeta; i++)
        if (!keys[i] || !values[i] || bad_utf8((const unsigned char *)keys[i], strlen(keys[i])) >= 0 ||
            bad_utf8((const unsigned char *)values[i], strlen(values[i])) >= 0)
            return nbi_fail(ctx, NB_ERR_ARG, "%s: metadata %d is not a pair of UTF-8 strings",
                            path, i);
    for (int i = 0; i < n; i++) {
        const nb_tensor *t = tensors[i];
        if (!t)
            return nbi_fail(ctx, NB_ERR_ARG, "%s: tensor %d is NULL", path, i);
        if (!t->name[0])
            return nbi_fail(ctx, NB_ERR_ARG, "%s: tensor %d has no name", path, i);
        if (!strcmp(t->name, "__metadata__"))
            return nbi_fail(ctx, NB_ERR_ARG, "%s: tensor %d: the name \"__metadata__\" is reserved",
                            path, i);
        if (bad_utf8((const unsigned char *)t->name, strlen(t->name)) >= 0)
            return nbi_fail(ctx, NB_ERR_ARG, "%s: tensor %d: name %s is not valid UTF-8", path, i,
                            nbi_quote(t->name, q, sizeof q));
        for (int j = 0; j < i; j++)
            if (!strcmp(tensors[j]->name, t->name))
                return nbi_fail(ctx, NB_ERR_ARG, "%s: tensors %d and %d are both named %s", path,
                                j, i, nbi_quote(t->name, q, sizeof q));
    }

    /* Measure, then write; pad with spaces to 8 bytes as the reference
     * writer does, so the data that follows is aligned. */
    sbuf hb = {NULL, 0, 0};
    write_header(&hb, n, tensors, nmeta, keys, values);
    size_t hlen = hb.len + (8 - hb.len % 8) % 8;
    hb.p = nbi_alloc(ctx, hlen + 1);
    if (!hb.p)
        return NB_ERR_NOMEM;
    hb.cap = hlen + 1;
    hb.len = 0;
    write_header(&hb, n, tensors, nmeta, keys, values);
    memset(hb.p + hb.len, ' ', hlen - hb.len);

    nbi_atomic a;
    int rc = nbi_atomic_open(ctx, &a, path);
    if (rc == NB_OK) {
        bool ok = write_file(a.f, hb.p, hlen, n, tensors);
        rc = nbi_atomic_commit(ctx, &a, ok ? 0 : errno ? errno : EIO);
    }
    nbi_free(ctx, hb.p);
    return rc;
}
