/*
 * cli.c - option parsing, error lines and number formatting shared by the
 * verbs of the `nabla` tool.
 */
#include "cli.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- errors ------------------------------------------------------------- */

static const char *verb_name;

void cli_set_verb(const char *verb)
{
    verb_name = verb;
}

const char *cli_verb(void)
{
    return verb_name;
}

/* A process of several says which in its lines; while held, the first
 * failure's line waits for cli_release. */
static int line_rank = -1;
static bool holding, held;
static char held_msg[1024];

void cli_set_rank(int rank)
{
    line_rank = rank;
}

void cli_hold(bool on)
{
    holding = on;
}

static void print_line(const char *msg, int rank)
{
    char who[32] = "";
    if (rank >= 0)
        snprintf(who, sizeof who, "rank %d: ", rank);
    if (verb_name)
        fprintf(stderr, "nabla %s: %s%s\n", verb_name, who, msg);
    else
        fprintf(stderr, "nabla: %s%s\n", who, msg);
}

const char *cli_held(void)
{
    return held ? held_msg : NULL;
}

bool cli_release(bool print, bool name_rank)
{
    bool had = held;
    if (held && print)
        print_line(held_msg, name_rank ? line_rank : -1);
    held = false;
    return had;
}

int cli_fail(int code, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One line, whatever the message holds. */
    for (char *p = msg; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (holding) {
        if (!held)
            snprintf(held_msg, sizeof held_msg, "%s", msg);
        held = true;
        return code;
    }
    print_line(msg, line_rank);
    return code;
}

int cli_fail_lib(nb_ctx *ctx, bool reading)
{
    int status = nb_error(ctx);
    const char *msg = nb_errmsg(ctx);
    if (!msg || !*msg)
        msg = nb_status_str(status);
    bool bad_input = status == NB_ERR_ARG || status == NB_ERR_FORMAT || status == NB_ERR_IO;
    return cli_fail(reading && bad_input ? CLI_USAGE : CLI_RUNTIME, "%s", msg);
}

/* ---- options ------------------------------------------------------------ */

static cli_opt *find_opt(const cli_spec *spec, const char *name, size_t len)
{
    for (cli_opt *o = spec->opts; o && o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

static int usage_error(const char *fmt, ...) CLI_PRINTF(1, 2);

static int usage_error(const char *fmt, ...)
{
    char what[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return cli_fail(CLI_USAGE, "%s (see nabla %s --help)", what, cli_verb());
}

int cli_parse(const cli_spec *spec, int argc, char **argv, const char **pos,
              int *npos)
{
    bool options = true;
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (options && strcmp(a, "--") == 0) {
            options = false;
            continue;
        }
        if (options && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
            cli_print_help(spec, stdout);
            return CLI_HELP;
        }
        if (options && a[0] == '-' && a[1] == '-') {
            const char *name = a + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            cli_opt *o = find_opt(spec, name, len);
            if (!o)
                return usage_error("unknown option %s", a);
            if (!o->arg) {
                if (eq)
                    return usage_error("option --%s takes no value", o->name);
                o->value = "";
            } else if (eq) {
                o->value = eq + 1;
            } else if (i + 1 < argc) {
                o->value = argv[++i];
            } else {
                return usage_error("option --%s needs a value %s", o->name, o->arg);
            }
            continue;
        }
        if (options && a[0] == '-' && a[1] != '\0')
            return usage_error("unknown option %s", a);
        if (*npos >= spec->max_pos)
            return usage_error("unexpected argument '%s'", a);
        pos[(*npos)++] = a;
    }
    if (*npos < spec->min_pos)
        return cli_fail(CLI_USAGE, "missing argument (usage: nabla %s %s)", cli_verb(), spec->usage);
    /* One model per command: its path outlives the parse. */
    static char model[4096];
    if (*npos > 0 && strncmp(spec->usage, "MODEL", 5) == 0 &&
        !(pos[0] = cli_model_path(pos[0], model, sizeof model)))
        return CLI_USAGE;
    return CLI_OK;
}

void cli_print_help(const cli_spec *spec, FILE *out)
{
    fprintf(out, "usage: nabla %s %s\n\n%s\n", cli_verb(), spec->usage, spec->about);
    fprintf(out, "\noptions:\n");
    for (const cli_opt *o = spec->opts; o && o->name; o++) {
        char flag[64];
        snprintf(flag, sizeof flag, "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        fprintf(out, "  %-24s ", flag);
        /* Continuation lines of the help aligned under its first. */
        for (const char *p = o->help; *p; p++) {
            fputc(*p, out);
            if (*p == '\n')
                fprintf(out, "  %-24s ", "");
        }
        fputc('\n', out);
    }
    fprintf(out, "  %-24s %s\n", "-h, --help", "print this help and exit");
}

const char *cli_get(const cli_spec *spec, const char *name)
{
    cli_opt *o = find_opt(spec, name, strlen(name));
    return o ? o->value : NULL;
}

int cli_int64(const cli_spec *spec, const char *name, int64_t lo, int64_t hi,
              int64_t *out)
{
    const char *s = cli_get(spec, name);
    if (!s)
        return CLI_OK;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*s == '\0' || *end != '\0' || errno == ERANGE || v < lo || v > hi) {
        if (hi == INT64_MAX)
            return cli_fail(CLI_USAGE, "--%s: '%s' is not an integer >= %" PRId64, name, s, lo);
        return cli_fail(CLI_USAGE, "--%s: '%s' is not an integer from %" PRId64 " to %" PRId64,
                        name, s, lo, hi);
    }
    *out = v;
    return CLI_OK;
}

int cli_uint64(const cli_spec *spec, const char *name, uint64_t *out)
{
    const char *s = cli_get(spec, name);
    if (!s)
        return CLI_OK;
    char *end;
    errno = 0;
    /* strtoull accepts "-1" and wraps it: refuse any sign. */
    unsigned long long v = strtoull(s, &end, 10);
    if (*s < '0' || *s > '9' || *end != '\0' || errno == ERANGE)
        return cli_fail(CLI_USAGE, "--%s: '%s' is not an integer from 0 to %" PRIu64,
                        name, s, UINT64_MAX);
    *out = v;
    return CLI_OK;
}

int cli_positive(const cli_spec *spec, const char *name, double *out)
{
    const char *s = cli_get(spec, name);
    if (!s)
        return CLI_OK;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (*s == '\0' || *end != '\0' || errno == ERANGE || !(v > 0) || !isfinite(v))
        return cli_fail(CLI_USAGE, "--%s: '%s' is not a positive number", name, s);
    *out = v;
    return CLI_OK;
}

int cli_dtype(const cli_spec *spec, const char *name, nb_dtype *out)
{
    const char *s = cli_get(spec, name);
    if (!s)
        return CLI_OK;
    if (strcmp(s, "f32") == 0)
        *out = NB_F32;
    else if (strcmp(s, "f64") == 0)
        *out = NB_F64;
    else
        return cli_fail(CLI_USAGE, "--%s: '%s' is not a dtype (f32 or f64)", name, s);
    return CLI_OK;
}

/* ---- models ------------------------------------------------------------- */

static bool is_file(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && !S_ISDIR(st.st_mode);
}

const char *cli_model_path(const char *arg, char *buf, size_t n)
{
    if (strchr(arg, '/') || is_file(arg))
        return arg; /* a path: a missing file is the loader's to report */
    size_t len = strlen(arg);
    const char *ext = len > 5 && strcmp(arg + len - 5, ".json") == 0 ? "" : ".json";
    const char *env = getenv("NABLA_MODELS");
    const char *dirs[] = {env && *env ? env : NULL, CLI_MODELS_DIR};
    char tried[1024] = "";
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
        if (!dirs[i])
            continue;
        int w = snprintf(buf, n, "%s/%s%s", dirs[i], arg, ext);
        if (w >= 0 && (size_t)w < n && is_file(buf))
            return buf;
        size_t t = strlen(tried);
        snprintf(tried + t, sizeof tried - t, ", nor %s%s", buf, i == 0 ? " (NABLA_MODELS)" : "");
    }
    cli_fail(CLI_USAGE, "no model '%s': not a file%s", arg, tried);
    return NULL;
}

int cli_threads(const cli_spec *spec)
{
    const char *v = getenv("NABLA_NUM_THREADS");
    char *end;
    long env = v ? strtol(v, &end, 10) : 0;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int64_t n = v && *v && !*end && env >= 1 && env <= 1024 ? env
              : cores < 1 ? 1 : cores > 1024 ? 1024 : cores;
    int rc = cli_int64(spec, "threads", 1, 1024, &n);
    if (rc == CLI_OK)
        nb_set_num_threads((int)n);
    return rc;
}

nb_ctx *cli_ctx_new(void)
{
    nb_ctx *ctx = nb_ctx_new();
    if (!ctx) {
        cli_fail(CLI_RUNTIME, "out of memory");
        return NULL;
    }
    uint64_t limit;
    const char *env = getenv("NABLA_MAX_MEMORY");
    if (env && *env && cli_size(env, &limit))
        nb_ctx_set_memory_limit(ctx, limit);
    return ctx;
}

bool cli_size(const char *s, uint64_t *bytes)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *s < '0' || *s > '9' || errno == ERANGE || !(v > 0))
        return false;
    static const char units[] = "KMGT";
    double scale = 1;
    if (*end) {
        const char *u = strchr(units, *end & ~0x20);
        if (u && *u) {
            for (const char *p = units; p <= u; p++)
                scale *= 1024;
            end++;
            if (*end == 'i')
                end++;
        }
        if ((*end & ~0x20) == 'B')
            end++;
    }
    v *= scale;
    if (*end || !(v >= 1) || v >= 18446744073709551616.0)
        return false;
    *bytes = (uint64_t)v;
    return true;
}

int cli_max_memory(const cli_spec *spec, const char *name, nb_ctx *ctx)
{
    const char *s = cli_get(spec, name);
    uint64_t limit;
    if (!s)
        return CLI_OK;
    if (!cli_size(s, &limit))
        return cli_fail(CLI_USAGE, "--%s: '%s' is not a size (such as 512M or 4G)", name, s);
    nb_ctx_set_memory_limit(ctx, limit);
    return CLI_OK;
}

char *cli_limit_str(nb_ctx *ctx, const char *set_by, char *buf)
{
    char b[32];
    uint64_t set = nb_ctx_set_memory_limit(ctx, 0);
    nb_ctx_set_memory_limit(ctx, set);
    cli_bytes((double)nb_ctx_memory_limit(ctx), b);
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    bool ulimit = pages > 0 && page > 0 && nb_memory_machine() < (uint64_t)pages * (uint64_t)page;
    if (set)
        snprintf(buf, 96, "%s (%s)", b, set_by ? set_by : "NABLA_MAX_MEMORY");
    else
        snprintf(buf, 96, "%s (%s)", b, ulimit ? "the process's ulimit" : "this machine's memory");
    return buf;
}

nb_model *cli_load_model(nb_ctx *ctx, const char *path, nb_dtype dtype,
                         const char *weights, uint64_t seed, int *rc)
{
    nb_model *m = nb_model_load(ctx, path, dtype);
    if (!m) {
        *rc = cli_fail_lib(ctx, true);
        return NULL;
    }
    if (weights) {
        if (nb_model_load_weights(m, weights) != NB_OK) {
            *rc = cli_fail_lib(ctx, true);
            nb_model_free(m);
            return NULL;
        }
    } else {
        nb_rng rng;
        nb_rng_seed(&rng, seed);
        nb_model_init(m, &rng);
    }
    return m;
}

int cli_layer_inputs(const nb_model *m, int i, const nb_layer_info *info,
                     const char **names)
{
    int n = info->ninputs < 0 ? 0 : info->ninputs > 8 ? 8 : info->ninputs;
    for (int k = 0; k < n; k++)
        names[k] = info->inputs[k];
    if (n > 0)
        return n;
    /* A sequential layer reads the one before it. */
    nb_layer_info prev;
    if (i > 0 && nb_model_layer(m, i - 1, &prev) == NB_OK)
        names[0] = prev.name;
    else
        names[0] = "input";
    return 1;
}

bool cli_is_graph(const nb_model *m)
{
    int n = nb_model_num_layers(m);
    const char *prev = "input";
    for (int i = 0; i < n; i++) {
        nb_layer_info info;
        const char *in[8];
        if (nb_model_layer(m, i, &info) != NB_OK)
            return false;
        int k = cli_layer_inputs(m, i, &info, in);
        if (k != 1 || strcmp(in[0], prev) != 0)
            return true;
        prev = info.name;
    }
    return false;
}

/* ---- images ------------------------------------------------------------- */

/* Mean of the outermost ring of pixels of a [C, H, W] image, over its
 * channels. */
static double border_mean(const nb_tensor *img)
{
    int64_t c = img->shape[0], h = img->shape[1], w = img->shape[2], n = 0;
    double sum = 0;
    for (int64_t k = 0; k < c; k++)
        for (int64_t y = 0; y < h; y++)
            for (int64_t x = 0; x < w; x++)
                if (y == 0 || x == 0 || y == h - 1 || x == w - 1) {
                    sum += nb_get(img, (k * h + y) * w + x);
                    n++;
                }
    return n ? sum / (double)n : 0;
}

/* 1 - v in place when invert and img is dark on light. */
static void maybe_invert(nb_tensor *img, bool invert)
{
    if (invert && border_mean(img) > 0.5)
        for (int64_t i = 0; i < img->numel; i++)
            nb_set(img, i, 1.0 - nb_get(img, i));
}

/* The decoded PNG png (taken) as a model of `channels` reads it: gray,
 * or RGB with a gray PNG's channel repeated and alpha dropped. */
static nb_tensor *model_image(nb_ctx *ctx, nb_tensor *png, int channels, bool invert, int *rc)
{
    if (!png) {
        *rc = cli_fail_lib(ctx, true);
        return NULL;
    }
    /* The file's channels: 1 gray, 2 gray + alpha, 3 RGB, 4 RGBA. */
    int64_t c = png->shape[0], h = png->shape[1], w = png->shape[2], plane = h * w;
    nb_tensor *img = png;
    if (channels == 3 && c != 3) {
        img = nb_tensor_new(ctx, NB_F64, 3, (int64_t[]){3, h, w});
        if (!img) {
            *rc = cli_fail_lib(ctx, false);
            nb_tensor_free(png);
            return NULL;
        }
        /* Gray repeated in R, G and B; RGBA's colour planes. */
        const double *src = png->data;
        double *dst = img->data;
        for (int64_t k = 0; k < 3; k++)
            for (int64_t i = 0; i < plane; i++)
                dst[k * plane + i] = src[(c >= 3 ? k : 0) * plane + i];
        nb_tensor_free(png);
    }
    maybe_invert(img, invert);
    return img;
}

nb_tensor *cli_read_image(nb_ctx *ctx, const char *path, int channels, bool invert,
                          int *rc)
{
    return model_image(ctx, nb_png_read(ctx, path, NB_F64, channels != 3), channels, invert, rc);
}

nb_tensor *cli_decode_image(nb_ctx *ctx, const void *buf, size_t len, const char *origin,
                            int channels, bool invert, int *rc)
{
    return model_image(ctx, nb_png_decode(ctx, buf, len, origin, NB_F64, channels != 3),
                       channels, invert, rc);
}

int cli_model_channels(const nb_model *m)
{
    int64_t in[NB_MAX_DIMS];
    int nd = nb_model_input_shape(m, in);
    return nd == 3 && (in[0] == 1 || in[0] == 3) ? (int)in[0] : 0;
}

int cli_model_classes(const nb_model *m)
{
    int64_t out[NB_MAX_DIMS];
    int nd = nb_model_output_shape(m, out);
    if (nd == 1 && out[0] == 1 && nb_model_loss_kind(m) == NB_LOSS_HINGE)
        return 2;
    return nd == 1 && out[0] <= NB_MAX_CLASSES ? (int)out[0] : 0;
}

int cli_invert(const cli_spec *spec, int channels, bool *invert)
{
    bool yes = cli_get(spec, "invert") != NULL, no = cli_get(spec, "no-invert") != NULL;
    if (yes && no)
        return cli_fail(CLI_USAGE, "--invert and --no-invert exclude each other: give one");
    *invert = yes || (!no && channels == 1);
    return CLI_OK;
}

nb_tensor *cli_model_input(nb_ctx *ctx, nb_model *m, const nb_tensor *img, int *rc)
{
    int64_t in[NB_MAX_DIMS];
    int nd = nb_model_input_shape(m, in);
    if (nd != 3 || (in[0] != 1 && in[0] != 3)) {
        *rc = cli_fail(CLI_USAGE, "the model \"%s\" does not take one image [1, H, W] (gray) or"
                       " [3, H, W] (colour)", nb_model_name(m));
        return NULL;
    }
    if (img->ndim != 3 || img->shape[0] != in[0]) {
        *rc = cli_fail(CLI_USAGE, "the model \"%s\" takes %s images; this image has %" PRId64
                       " channels", nb_model_name(m), in[0] == 1 ? "gray" : "colour",
                       img->ndim == 3 ? img->shape[0] : 0);
        return NULL;
    }
    nb_train_opts t;
    if (nb_model_train_opts(ctx, m, &t, NULL) != NB_OK) {
        *rc = cli_fail_lib(ctx, true);
        return NULL;
    }
    int64_t h = in[1], w = in[2];
    nb_tensor *r = NULL;
    if (img->shape[1] != h || img->shape[2] != w) {
        if (!(r = nb_image_resize(ctx, img, h, w))) {
            *rc = cli_fail_lib(ctx, false);
            return NULL;
        }
        img = r;
    }
    nb_tensor *x = nb_tensor_new(ctx, nb_model_dtype(m), 4, (int64_t[]){1, in[0], h, w});
    if (x) {
        nb_copy_values(x, img);
        /* As nb_dataset_batch prepares the training images. */
        int64_t plane = x->shape[2] * x->shape[3];
        for (int64_t i = 0; t.std[0] != 0 && i < x->numel; i++) {
            int64_t c = i / plane % x->shape[1];
            nb_set(x, i, (nb_get(x, i) - t.mean[c]) / t.std[c]);
        }
    } else {
        *rc = cli_fail_lib(ctx, false);
    }
    nb_tensor_free(r);
    return x;
}

int cli_make_dir(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s", dir);
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0777) != 0 && errno != EEXIST)
            return cli_fail(CLI_RUNTIME, "%s: cannot create: %s", path, strerror(errno));
        *p = '/';
    }
    if (mkdir(path, 0777) != 0 && errno != EEXIST)
        return cli_fail(CLI_RUNTIME, "%s: cannot create: %s", path, strerror(errno));
    return CLI_OK;
}

const char *cli_loss_name(nb_loss_kind kind)
{
    switch (kind) {
    case NB_LOSS_CROSS_ENTROPY: return "cross_entropy";
    case NB_LOSS_MSE: return "mse";
    case NB_LOSS_HINGE: return "hinge";
    default: return "none";
    }
}

/* ---- data sets ------------------------------------------------------------ */

#define FASHION_MNIST "/usr/share/datasets/fashion-mnist"

static const char *const fashion_names[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
};

const char *cli_data_dir(const char *data)
{
    return !data || strcmp(data, "fashion-mnist") == 0 ? FASHION_MNIST : data;
}

bool cli_is_fashion(const char *dir)
{
    return strcmp(dir, FASHION_MNIST) == 0;
}

/* The class name of a model label, as cli_classes_of_data says. */
static const char *class_name(const nb_dataset *ds, bool fashion, const nb_train_opts *t,
                              int label)
{
    int raw = label;
    if (t && t->nclasses) {
        if (label < 0 || label >= t->nclasses)
            return NULL;
        raw = t->classes[label];
    }
    const char *name = ds ? nb_dataset_class_name(ds, raw) : NULL;
    if (name)
        return name; /* a PNG folder's class */
    return fashion && raw >= 0 && raw < 10 ? fashion_names[raw] : NULL;
}

/* A class name longer than this is refused: a folder name is at most 255
 * bytes. */
#define CLASS_NAME_MAX 255

static int add_name(cli_classes *c, int label, const char *name)
{
    if (!name)
        return CLI_OK;
    if (!(c->names[label] = strdup(name)))
        return cli_fail(CLI_RUNTIME, "out of memory");
    return CLI_OK;
}

int cli_classes_of_data(cli_classes *c, const nb_dataset *ds, bool fashion,
                        const nb_train_opts *t, int n)
{
    memset(c, 0, sizeof *c);
    bool named = false;
    for (int i = 0; i < n && i < NB_MAX_CLASSES; i++) {
        const char *name = class_name(ds, fashion, t, i);
        if (name && strlen(name) > CLASS_NAME_MAX)
            name = NULL;
        named |= name != NULL;
        if (add_name(c, i, name) != CLI_OK) {
            cli_classes_free(c);
            return CLI_RUNTIME;
        }
    }
    c->n = named ? (n < NB_MAX_CLASSES ? n : NB_MAX_CLASSES) : 0;
    if (!named)
        cli_classes_free(c);
    return CLI_OK;
}

int cli_classes_of_weights(nb_ctx *ctx, cli_classes *c, const char *weights, int n)
{
    memset(c, 0, sizeof *c);
    nb_safetensors *f = nb_safetensors_open(ctx, weights);
    if (!f)
        return cli_fail_lib(ctx, true);
    const char *value = nb_safetensors_meta(f, "classes");
    cJSON *list = value ? cJSON_Parse(value) : NULL;
    int rc = CLI_OK;
    if (value && (!cJSON_IsArray(list) || cJSON_GetArraySize(list) != n || n > NB_MAX_CLASSES))
        rc = cli_fail(CLI_USAGE, "%s: __metadata__ \"classes\": expected a JSON array of %d "
                      "names for the model's %d classes", weights, n, n);
    int i = 0;
    for (cJSON *e = list ? list->child : NULL; rc == CLI_OK && e; e = e->next, i++) {
        if (cJSON_IsNull(e))
            continue;
        if (!cJSON_IsString(e) || strlen(e->valuestring) > CLASS_NAME_MAX)
            rc = cli_fail(CLI_USAGE, "%s: __metadata__ \"classes\"[%d]: expected a name (a "
                          "string of at most %d bytes) or null", weights, i, CLASS_NAME_MAX);
        else
            rc = add_name(c, i, e->valuestring);
    }
    cJSON_Delete(list);
    nb_safetensors_close(f);
    if (rc == CLI_OK && value)
        c->n = n;
    else
        cli_classes_free(c);
    return rc;
}

const char *cli_classes_name(const cli_classes *c, int label)
{
    return c && label >= 0 && label < c->n ? c->names[label] : NULL;
}

void cli_classes_free(cli_classes *c)
{
    for (int i = 0; i < NB_MAX_CLASSES; i++) {
        free(c->names[i]);
        c->names[i] = NULL;
    }
    c->n = 0;
}

int cli_save_weights(nb_ctx *ctx, nb_model *m, const char *path, const cli_classes *c)
{
    if (!c || c->n == 0)
        return nb_model_save_weights(m, path) == NB_OK ? CLI_OK : cli_fail_lib(ctx, false);
    cJSON *list = cJSON_CreateArray();
    bool ok = list != NULL;
    for (int i = 0; ok && i < c->n; i++) {
        cJSON *e = c->names[i] ? cJSON_CreateString(c->names[i]) : cJSON_CreateNull();
        ok = e && cJSON_AddItemToArray(list, e);
        if (!ok)
            cJSON_Delete(e);
    }
    char *value = ok ? cJSON_PrintUnformatted(list) : NULL;
    cJSON_Delete(list);
    int n = nb_model_num_tensors(m);
    nb_tensor **tensors = value ? malloc((size_t)(n > 0 ? n : 1) * sizeof *tensors) : NULL;
    if (!tensors) {
        cJSON_free(value);
        return cli_fail(CLI_RUNTIME, "out of memory");
    }
    for (int i = 0; i < n; i++)
        tensors[i] = nb_model_tensor(m, i);
    const char *key = "classes", *val = value;
    int rc = nb_safetensors_save_meta(ctx, path, n, tensors, 1, &key, &val) == NB_OK
                 ? CLI_OK : cli_fail_lib(ctx, false);
    free(tensors);
    cJSON_free(value);
    return rc;
}

/* ---- --json output ------------------------------------------------------- */

void cli_json_item(cJSON *to, const char *name, cJSON *item, bool *ok)
{
    bool added = item && (name ? cJSON_AddItemToObject(to, name, item)
                               : cJSON_AddItemToArray(to, item));
    if (!added) {
        cJSON_Delete(item);
        *ok = false;
    }
}

void cli_json_int(cJSON *to, const char *name, int64_t v, bool *ok)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRId64, v);
    cli_json_item(to, name, cJSON_CreateRaw(buf), ok);
}

void cli_json_uint(cJSON *to, const char *name, uint64_t v, bool *ok)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%" PRIu64, v);
    cli_json_item(to, name, cJSON_CreateRaw(buf), ok);
}

void cli_json_double(cJSON *to, const char *name, double v, bool *ok)
{
    cli_json_item(to, name, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull(), ok);
}

void cli_json_float(cJSON *to, const char *name, double v, bool *ok)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%.9g", v);
    cli_json_item(to, name, isfinite(v) ? cJSON_CreateRaw(buf) : cJSON_CreateNull(), ok);
}

void cli_json_str(cJSON *to, const char *name, const char *s, bool *ok)
{
    cli_json_item(to, name, s ? cJSON_CreateString(s) : cJSON_CreateNull(), ok);
}

cJSON *cli_json_shape(cJSON *to, const char *name, int ndim, const int64_t *shape, bool *ok)
{
    cJSON *a = cJSON_CreateArray();
    for (int d = 0; a && d < ndim; d++)
        cli_json_int(a, NULL, shape[d], ok);
    cli_json_item(to, name, a, ok);
    return a;
}

int cli_json_print(cJSON *root, bool ok)
{
    char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!s)
        return cli_fail(CLI_RUNTIME, "out of memory");
    bool written = fputs(s, stdout) != EOF && putchar('\n') != EOF && fflush(stdout) == 0;
    int err = errno;
    cJSON_free(s);
    return written ? CLI_OK : cli_fail(CLI_RUNTIME, "writing the output: %s", strerror(err));
}

/* ---- formatting --------------------------------------------------------- */

char *cli_count(int64_t n, char *buf)
{
    char digits[32];
    uint64_t u = n < 0 ? 0 - (uint64_t)n : (uint64_t)n;
    int len = snprintf(digits, sizeof digits, "%" PRIu64, u);
    char *p = buf;
    if (n < 0)
        *p++ = '-';
    for (int i = 0; i < len; i++) {
        if (i > 0 && (len - i) % 3 == 0)
            *p++ = ',';
        *p++ = digits[i];
    }
    *p = '\0';
    return buf;
}

char *cli_bytes(double bytes, char *buf)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    if (bytes < 1024) {
        snprintf(buf, 32, "%.0f B", bytes);
        return buf;
    }
    int u = 0;
    bytes /= 1024;
    while (bytes >= 1024 && u < 4) {
        bytes /= 1024;
        u++;
    }
    snprintf(buf, 32, "%.1f %s", bytes, units[u]);
    return buf;
}
