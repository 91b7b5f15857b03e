/*
 * filter.c - kernels from spec strings, and chains of them run through
 * nb_conv2d (see filter.h).
 */
#include "filter.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#if defined(__GNUC__)
__attribute__((format(printf, 4, 5)))
#endif
static int fail(char *err, size_t size, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, size, fmt, ap);
    va_end(ap);
    return code;
}

/* ---- kernels -------------------------------------------------------------- */

static const double sobel_x[9] = {-1, 0, 1, -2, 0, 2, -1, 0, 1};
static const double sobel_y[9] = {-1, -2, -1, 0, 0, 0, 1, 2, 1};
/* [-1 0 1] and its transpose inside 3x3, so both outputs have one size
 * in valid and full mode too. */
static const double diff_x[9] = {0, 0, 0, -1, 0, 1, 0, 0, 0};
static const double diff_y[9] = {0, -1, 0, 0, 0, 0, 0, 1, 0};
static const double sharpen[9] = {0, -1, 0, -1, 5, -1, 0, -1, 0};
static const double laplace8[9] = {-1, -1, -1, -1, 8, -1, -1, -1, -1};
static const double identity[9] = {0, 0, 0, 0, 1, 0, 0, 0, 0};

/* A [1, 1, kh, kw] kernel holding values (NULL: zeros). */
static int weight(nb_ctx *ctx, int64_t kh, int64_t kw, const double *values,
                  nb_tensor **w, char *err, size_t size)
{
    const int64_t shape[4] = {1, 1, kh, kw};
    *w = values ? nb_tensor_from(ctx, NB_F64, 4, shape, values)
                : nb_tensor_new(ctx, NB_F64, 4, shape);
    if (!*w)
        return fail(err, size, nb_error(ctx), "%s", nb_errmsg(ctx));
    return NB_OK;
}

/* A whole-string integer in [lo, hi]. */
static bool parse_int(const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* A whole-string finite number (strtod's "inf", "nan" and hex refused). */
static bool parse_num(const char *s, const char *stop, double *out)
{
    if (!(*s == '-' || *s == '+' || *s == '.' || (*s >= '0' && *s <= '9')) ||
        strpbrk(s, "xXnN"))
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || end != stop || errno || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static int make_box(nb_ctx *ctx, const char *arg, filter_kernel *k, char *err,
                    size_t size)
{
    long n;
    if (!parse_int(arg, 1, FILTER_MAX_SIDE, &n))
        return fail(err, size, NB_ERR_ARG,
                    "kernel box:%s: the size must be an integer in [1, %d]", arg,
                    FILTER_MAX_SIDE);
    int rc = weight(ctx, n, n, NULL, &k->w[0], err, size);
    if (rc == NB_OK)
        nb_fill(k->w[0], 1.0 / (double)(n * n));
    return rc;
}

static int make_gaussian(nb_ctx *ctx, const char *arg, filter_kernel *k,
                         char *err, size_t size)
{
    const char *colon = strchr(arg, ':');
    double sigma;
    if (!parse_num(arg, colon ? colon : arg + strlen(arg), &sigma) || sigma <= 0 ||
        sigma > 100)
        return fail(err, size, NB_ERR_ARG,
                    "kernel gaussian:%s: sigma must be a number in (0, 100]", arg);
    long n = 2 * (long)ceil(3 * sigma) + 1;
    if (colon && !parse_int(colon + 1, 1, FILTER_MAX_SIDE, &n))
        return fail(err, size, NB_ERR_ARG,
                    "kernel gaussian:%s: the size must be an integer in [1, %d]", arg,
                    FILTER_MAX_SIDE);
    int rc = weight(ctx, n, n, NULL, &k->w[0], err, size);
    if (rc != NB_OK)
        return rc;
    /* Centred on (n - 1) / 2, which falls between pixels for an even n. */
    double c = (double)(n - 1) / 2, sum = 0;
    double *w = k->w[0]->data;
    for (long i = 0; i < n; i++)
        for (long j = 0; j < n; j++) {
            double d2 = (i - c) * (i - c) + (j - c) * (j - c);
            sum += w[i * n + j] = exp(-d2 / (2 * sigma * sigma));
        }
    for (long i = 0; i < n * n; i++)
        w[i] /= sum;
    return NB_OK;
}

/* Reads a small text file into a new NUL-terminated buffer: a regular
 * file only (a device such as /dev/zero has no end, a pipe no size), read
 * in one buffer of its size.  Checked before opening, which for a FIFO
 * would wait for a writer. */
static int read_text(const char *path, char **text, char *err, size_t size)
{
    enum { LIMIT = 1 << 24 };
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return fail(err, size, NB_ERR_IO, "kernel file %s: not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return fail(err, size, NB_ERR_IO, "kernel file %s: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return fail(err, size, NB_ERR_IO, "kernel file %s: not a regular file", path);
    }
    if (st.st_size > LIMIT) {
        fclose(f);
        return fail(err, size, NB_ERR_FORMAT, "kernel file %s: larger than 16 MiB", path);
    }
    size_t want = (size_t)st.st_size;
    char *buf = malloc(want + 2);
    if (!buf) {
        fclose(f);
        return fail(err, size, NB_ERR_NOMEM, "out of memory");
    }
    /* A byte more than its size, to see that it did not grow meanwhile. */
    size_t n = fread(buf, 1, want + 1, f);
    bool bad = ferror(f);
    fclose(f);
    if (bad || n > want) {
        free(buf);
        return bad ? fail(err, size, NB_ERR_IO, "kernel file %s: read error", path)
                   : fail(err, size, NB_ERR_IO, "kernel file %s: grew while it was read", path);
    }
    buf[n] = '\0';
    *text = buf;
    return NB_OK;
}

static int make_file(nb_ctx *ctx, const char *path, filter_kernel *k,
                     char *err, size_t size)
{
    char *text = NULL;
    int rc = read_text(path, &text, err, size);
    if (rc != NB_OK)
        return rc;
    cJSON *root = cJSON_Parse(text);
    free(text);
    const cJSON *rows = root, *row, *v;
    int64_t kh = cJSON_IsArray(rows) ? cJSON_GetArraySize(rows) : 0;
    int64_t kw = kh ? cJSON_GetArraySize(cJSON_GetArrayItem(rows, 0)) : 0;
    if (!root)
        rc = fail(err, size, NB_ERR_FORMAT, "kernel file %s: not valid JSON", path);
    else if (kh == 0 || kw == 0)
        rc = fail(err, size, NB_ERR_FORMAT,
                  "kernel file %s: expected a matrix, a non-empty list of non-empty lists of numbers",
                  path);
    else if (kh > FILTER_MAX_SIDE || kw > FILTER_MAX_SIDE)
        rc = fail(err, size, NB_ERR_FORMAT, "kernel file %s: %" PRId64 "x%" PRId64
                  " is larger than %dx%d", path, kh, kw, FILTER_MAX_SIDE, FILTER_MAX_SIDE);
    else
        rc = weight(ctx, kh, kw, NULL, &k->w[0], err, size);
    int64_t i = 0;
    cJSON_ArrayForEach(row, rows) {
        if (rc != NB_OK)
            break;
        if (!cJSON_IsArray(row) || cJSON_GetArraySize(row) != kw) {
            rc = fail(err, size, NB_ERR_FORMAT,
                      "kernel file %s: row %" PRId64 " is not a list of %" PRId64
                      " numbers like row 0", path, i, kw);
            break;
        }
        int64_t j = 0;
        cJSON_ArrayForEach(v, row) {
            if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
                rc = fail(err, size, NB_ERR_FORMAT,
                          "kernel file %s: row %" PRId64 ", column %" PRId64
                          " is not a finite number", path, i, j);
                break;
            }
            nb_set(k->w[0], i * kw + j++, v->valuedouble);
        }
        if (rc != NB_OK)
            break;
        i++;
    }
    cJSON_Delete(root);
    return rc;
}

int filter_kernel_make(nb_ctx *ctx, const char *spec, filter_kernel *k,
                       char *err, size_t size)
{
    static const struct {
        const char *name;
        int64_t kh, kw, kh2, kw2;
        const double *w, *w2;
    } fixed[] = {
        {"sobel-x", 3, 3, 0, 0, sobel_x, NULL},
        {"sobel-y", 3, 3, 0, 0, sobel_y, NULL},
        {"sobel", 3, 3, 3, 3, sobel_x, sobel_y},
        {"gradient", 3, 3, 3, 3, diff_x, diff_y},
        {"sharpen", 3, 3, 0, 0, sharpen, NULL},
        {"edge", 3, 3, 0, 0, laplace8, NULL},
        {"identity", 3, 3, 0, 0, identity, NULL},
    };
    memset(k, 0, sizeof *k);
    snprintf(k->name, sizeof k->name, "%s", spec);
    int rc = NB_ERR_ARG;
    bool found = false;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] && !found; i++)
        if (strcmp(spec, fixed[i].name) == 0) {
            found = true;
            rc = weight(ctx, fixed[i].kh, fixed[i].kw, fixed[i].w, &k->w[0], err, size);
            if (rc == NB_OK && fixed[i].w2)
                rc = weight(ctx, fixed[i].kh2, fixed[i].kw2, fixed[i].w2, &k->w[1], err,
                            size);
        }
    if (found)
        ;
    else if (strncmp(spec, "box:", 4) == 0)
        rc = make_box(ctx, spec + 4, k, err, size);
    else if (strncmp(spec, "gaussian:", 9) == 0)
        rc = make_gaussian(ctx, spec + 9, k, err, size);
    else if (strchr(spec, '/') || strstr(spec, ".json"))
        rc = make_file(ctx, spec, k, err, size);
    else {
        /* Not a built-in name: a file if one exists, else a misspelling. */
        struct stat st;
        if (stat(spec, &st) == 0) {
            rc = make_file(ctx, spec, k, err, size);
        } else {
            rc = fail(err, size, NB_ERR_ARG,
                      "unknown kernel '%s' (one of box:N, gaussian:SIGMA[:SIZE], sobel-x, "
                      "sobel-y, sobel, gradient, sharpen, edge, identity, or a JSON file)",
                      spec);
        }
    }
    if (rc != NB_OK)
        filter_kernel_free(k);
    return rc;
}

void filter_kernel_free(filter_kernel *k)
{
    nb_tensor_free(k->w[0]);
    nb_tensor_free(k->w[1]);
    k->w[0] = k->w[1] = NULL;
}

bool filter_mode_parse(const char *s, filter_mode *mode)
{
    static const char *const names[] = {"same", "valid", "full"};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0) {
            *mode = (filter_mode)i;
            return true;
        }
    return false;
}

/* ---- applying them ---------------------------------------------------------- */

static nb_tensor *conv(nb_ctx *ctx, nb_tensor *x, nb_tensor *w, filter_mode mode,
                       bool flip)
{
    nb_conv_opts o = {.flip = flip, .same = mode == FILTER_SAME};
    if (mode == FILTER_FULL) {
        o.padding[0] = (int)w->shape[2] - 1;
        o.padding[1] = (int)w->shape[3] - 1;
    }
    return nb_conv2d(ctx, x, w, NULL, &o);
}

/* One step: the conv, or the magnitude of two. */
static int step(nb_ctx *ctx, nb_tensor *x, const filter_kernel *k, filter_mode mode,
                bool flip, nb_tensor **y, char *err, size_t size)
{
    int64_t h = x->shape[2], w = x->shape[3];
    for (int i = 0; i < 2 && k->w[i]; i++) {
        int64_t kh = k->w[i]->shape[2], kw = k->w[i]->shape[3];
        if (mode == FILTER_VALID && (kh > h || kw > w))
            return fail(err, size, NB_ERR_ARG,
                        "kernel %s (%" PRId64 "x%" PRId64 ") is larger than its %" PRId64
                        "x%" PRId64 " input in valid mode", k->name, kh, kw, h, w);
    }
    nb_tensor *a = conv(ctx, x, k->w[0], mode, flip);
    nb_tensor *b = a && k->w[1] ? conv(ctx, x, k->w[1], mode, flip) : NULL;
    if (!a || (k->w[1] && !b))
        return fail(err, size, nb_error(ctx), "kernel %s: %s", k->name, nb_errmsg(ctx));
    if (b) {
        double *pa = a->data;
        const double *pb = b->data;
        for (int64_t i = 0; i < a->numel; i++)
            pa[i] = sqrt(pa[i] * pa[i] + pb[i] * pb[i]);
    }
    *y = a;
    return NB_OK;
}

int filter_apply(nb_ctx *ctx, const nb_tensor *img, const filter_kernel *k,
                 int nk, filter_mode mode, bool flip, nb_tensor **out,
                 char *err, size_t size)
{
    *out = NULL;
    int64_t h = img->ndim >= 2 ? img->shape[img->ndim - 2] : 1;
    int64_t w = img->ndim >= 1 ? img->shape[img->ndim - 1] : 1;
    /* The planes as a batch of one-channel images: each filtered alone. */
    int64_t c = h * w > 0 ? img->numel / (h * w) : 1;
    const int64_t shape[4] = {c > 0 ? c : 1, 1, h, w};
    nb_tensor *x0 = nb_tensor_new(ctx, NB_F64, 4, shape), *x = x0;
    if (!x0 || nb_copy_values(x0, img) != NB_OK) {
        nb_tensor_free(x0);
        return fail(err, size, nb_error(ctx), "%s", nb_errmsg(ctx));
    }
    bool grad = nb_set_grad_enabled(ctx, false);
    int rc = NB_OK;
    for (int i = 0; i < nk && rc == NB_OK; i++)
        rc = step(ctx, x, &k[i], mode, flip, &x, err, size);
    if (rc == NB_OK && !(*out = nb_tensor_copy(ctx, x, NB_F64)))
        rc = fail(err, size, nb_error(ctx), "%s", nb_errmsg(ctx));
    nb_graph_reset(ctx);
    nb_set_grad_enabled(ctx, grad);
    nb_tensor_free(x0);
    return rc;
}

void filter_scale(nb_tensor *t, bool normalize)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < t->numel; i++) {
        double v = nb_get(t, i);
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    for (int64_t i = 0; i < t->numel; i++) {
        double v = nb_get(t, i);
        if (normalize)
            v = hi > lo ? (v - lo) / (hi - lo) : 0;
        else
            v = v < 0 ? 0 : v > 1 ? 1 : v;
        nb_set(t, i, v);
    }
}
