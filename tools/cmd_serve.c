/*
 * cmd_serve.c - `nabla serve`: the drawing pad and a run's curves in a
 * browser, over a small JSON API (docs/serve.md), served by libmicrohttpd.
 *
 * One model and one context serve every request, one request at a time
 * under a lock: LeNet answers in well under a millisecond, so a pool of
 * models would buy nothing but memory.  Requests beyond a bound of those
 * waiting get 503 at once.  Only fixed routes exist: the page's files are
 * compiled in (serve_page.c) and the run's metrics.csv is the one --run
 * named, so nothing in a request ever reaches the file system.
 */
#include "cli.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "serve_page.h"

/* A request body larger than this is refused with 413 (a 280x280 drawing
 * is a few KB; a photo of a few MB still fits). */
#define MAX_BODY (4u << 20)
/* Connections served at once, and seconds a connection may stay idle. */
#define MAX_CONNECTIONS 64
#define CONNECTION_TIMEOUT 10
/* metrics.csv is read whole up to this size. */
#define MAX_METRICS (1u << 20)

static cli_opt opts[] = {
    {"weights", "W.safetensors", "the trained weights (required)", NULL},
    {"run", "DIR", "a run directory of nabla train: its metrics.csv is shown as curves,\n"
                   "updating while the run goes on", NULL},
    {"data", "D", "the test images for the per-class accuracy and confusion matrix\n"
                  "(default: fashion-mnist when the model reads its images)", NULL},
    {"host", "ADDR", "the address to listen on (default 127.0.0.1: this machine only)", NULL},
    {"port", "N", "the port (default 8080; 0 picks a free one)", NULL},
    {"max-queue", "N", "requests that may wait for the model before the next gets 503\n"
                       "(default 32)", NULL},
    {"max-seconds", "S", "stop by itself after S seconds (default: on Ctrl-C only)", NULL},
    {"max-requests", "N", "stop by itself after N requests", NULL},
    {"threads", "N", "threads the model runs on (default 1: requests are small)", NULL},
    {"page", "DIR", "serve index.html, app.js and style.css from DIR instead of the\n"
                    "built-in page (read at the start: for working on the page)", NULL},
    {0},
};

static const cli_spec spec = {
    .usage = "MODEL.json --weights W.safetensors [--run DIR] [options]",
    .about = "Serves a page to draw on and the JSON API it uses (docs/serve.md): draw a\n"
             "digit or a piece of clothing and see the class probabilities, the image\n"
             "as the model sees it, every layer's activations and the first layer's\n"
             "kernels; with --run, the run's loss and accuracy curves as it trains;\n"
             "with a test set, the per-class accuracy and the confusion matrix.\n"
             "Predictions are those of nabla predict for the same PNG.  Prints\n"
             "\"serving on http://HOST:PORT/\" once it listens, and stops on Ctrl-C.",
    .min_pos = 1,
    .max_pos = 1,
    .opts = opts,
};

typedef struct server {
    nb_ctx *ctx;
    nb_model *m;
    pthread_mutex_t lock; /* the model and the context, and what follows */
    cli_classes names;
    int channels;
    const char *model_path, *weights, *run_dir, *data_dir;
    char *model_json;   /* GET /api/model, made once */
    char *kernels_json; /* GET /api/kernels, NULL without a conv2d */
    char *eval_json;    /* GET /api/eval once made, or the reason it cannot be */
    int eval_status;    /* 0: not tried yet */
    atomic_int waiting; /* requests holding or waiting for the lock */
    int max_queue;
    atomic_long served; /* requests answered */
} server;

/* A request's state across libmicrohttpd's calls: its body. */
typedef struct request {
    char *body;
    size_t len, cap;
    bool too_big;
} request;

/* ---- responses ----------------------------------------------------------------- */

/* allow: the methods a 405 names in its Allow header, else NULL. */
static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *type,
                               const void *body, size_t len, const char *allow)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Content-Security-Policy",
                            "default-src 'self'; img-src 'self' data: blob:");
    if (allow)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result ok = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ok;
}

static enum MHD_Result respond_json(struct MHD_Connection *c, unsigned status, const char *json)
{
    return respond(c, status, "application/json", json, strlen(json), NULL);
}

/* {"error": "..."} with status (and Allow: allow). */
static enum MHD_Result respond_error_allow(struct MHD_Connection *c, unsigned status,
                                           const char *allow, const char *fmt, ...)
    CLI_PRINTF(4, 5);
#define respond_error(c, status, ...) respond_error_allow(c, status, NULL, __VA_ARGS__)

static enum MHD_Result respond_error_allow(struct MHD_Connection *c, unsigned status,
                                           const char *allow, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    char *s = o && cJSON_AddStringToObject(o, "error", msg) ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    enum MHD_Result ok =
        s ? respond(c, status, "application/json", s, strlen(s), allow)
          : respond_json(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "{\"error\":\"out of memory\"}");
    cJSON_free(s);
    return ok;
}

/* Sends root (freed) as the response. */
static enum MHD_Result respond_object(struct MHD_Connection *c, cJSON *root, bool ok)
{
    char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!s)
        return respond_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    enum MHD_Result r = respond_json(c, MHD_HTTP_OK, s);
    cJSON_free(s);
    return r;
}

/* ---- what the answers hold ------------------------------------------------------- */

/* Values as 0..255 bytes: v mapped from lo..hi (a constant run of values is
 * 0), as the pictures of nabla visualize scale a tile. */
static void add_scaled(cJSON *to, const float *v, int64_t n, bool *ok)
{
    float lo = INFINITY, hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
    }
    for (int64_t i = 0; i < n; i++) {
        double u = hi > lo ? (v[i] - lo) / (hi - lo) : 0;
        cli_json_int(to, NULL, isfinite(u) ? (int64_t)lrint(u * 255) : 0, ok);
    }
}

/* "input": the model's input x [1, C, H, W] as the image it was before
 * normalisation, in 0..255. */
static void add_input(cJSON *to, server *s, const nb_tensor *x, bool *ok)
{
    nb_train_opts t;
    if (nb_model_train_opts(s->ctx, s->m, &t, NULL) != NB_OK)
        memset(&t, 0, sizeof t);
    cJSON *o = cJSON_CreateObject(), *px = cJSON_CreateArray();
    cli_json_item(to, "input", o, ok);
    int64_t c = x->shape[1], h = x->shape[2], w = x->shape[3];
    cli_json_int(o, "channels", c, ok);
    cli_json_int(o, "height", h, ok);
    cli_json_int(o, "width", w, ok);
    cli_json_item(o, "pixels", px, ok);
    for (int64_t i = 0; i < x->numel; i++) {
        int64_t k = i / (h * w);
        double v = t.std[0] != 0 ? nb_get(x, i) * t.std[k] + t.mean[k] : nb_get(x, i);
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        cli_json_int(px, NULL, (int64_t)lrint(v * 255), ok);
    }
}

/* The body as the model's input x [1, C, H, W], as nabla predict reads a
 * file; NULL with the reason in *why (a bad image is the client's: 400). */
static nb_tensor *body_input(server *s, const request *r, unsigned *status, char *why,
                             size_t n)
{
    int rc = CLI_OK;
    cli_hold(true);
    nb_tensor *img = cli_decode_image(s->ctx, r->body, r->len, "the request's body", s->channels,
                                      s->channels == 1, &rc);
    nb_tensor *x = img ? cli_model_input(s->ctx, s->m, img, &rc) : NULL;
    nb_tensor_free(img);
    if (!x) {
        *status = rc == CLI_USAGE ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_INTERNAL_SERVER_ERROR;
        snprintf(why, n, "%s", cli_held() ? cli_held() : "the image cannot be read");
    }
    cli_release(false, false);
    cli_hold(false);
    return x;
}

/* POST /api/predict and /api/activations: the model on the body's PNG. */
static enum MHD_Result run_model(struct MHD_Connection *c, server *s, const request *r,
                                 bool activations)
{
    if (r->len == 0)
        return respond_error(c, MHD_HTTP_BAD_REQUEST, "the body is empty: send a PNG "
                             "(Content-Type: image/png)");
    unsigned status = MHD_HTTP_OK;
    char why[1024];
    nb_tensor *x = body_input(s, r, &status, why, sizeof why);
    if (!x)
        return respond_error(c, status, "%s", why);
    nb_tensor *out = nb_model_forward(s->ctx, s->m, x);
    nb_tensor *p = out && !activations ? nb_softmax(s->ctx, out, 1) : NULL;
    enum MHD_Result res;
    if (!out || (!activations && !p)) {
        res = respond_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "%s", nb_errmsg(s->ctx));
    } else {
        bool ok = true;
        cJSON *root = cJSON_CreateObject();
        ok = root != NULL;
        if (!activations) {
            int64_t k = p->numel < 3 ? p->numel : 3, order[3];
            cli_top_classes(p, k, order);
            cli_predict_json(root, p, order, k, &s->names, &ok);
        }
        add_input(root, s, x, &ok);
        cJSON *layers = activations ? cJSON_CreateArray() : NULL;
        if (activations)
            cli_json_item(root, "layers", layers, &ok);
        for (int i = 0; activations && i < nb_model_num_layers(s->m); i++) {
            nb_layer_info info;
            const nb_tensor *a = nb_model_activation(s->m, i);
            if (nb_model_layer(s->m, i, &info) != NB_OK || info.ndim != 3 || !a ||
                a->dtype != NB_F32)
                continue;
            cJSON *o = cJSON_CreateObject(), *px = cJSON_CreateArray();
            cli_json_item(layers, NULL, o, &ok);
            cli_json_str(o, "name", info.name, &ok);
            cli_json_str(o, "type", info.type, &ok);
            cli_json_shape(o, "shape", 3, info.shape, &ok);
            cli_json_item(o, "pixels", px, &ok);
            int64_t plane = info.shape[1] * info.shape[2];
            for (int64_t ch = 0; ch < info.shape[0]; ch++)
                add_scaled(px, (const float *)a->data + ch * plane, plane, &ok);
        }
        res = respond_object(c, root, ok);
    }
    nb_graph_reset(s->ctx);
    nb_tensor_free(x);
    return res;
}

/* GET /api/kernels, made once: the first conv2d's weight [O, I, kh, kw],
 * each kernel scaled on its own range. */
static char *kernels_json(const nb_model *m)
{
    for (int i = 0; i < nb_model_num_layers(m); i++) {
        nb_layer_info info;
        char key[96];
        if (nb_model_layer(m, i, &info) != NB_OK || strcmp(info.type, "conv2d") != 0)
            continue;
        snprintf(key, sizeof key, "%s.weight", info.name);
        const nb_tensor *w = nb_model_find(m, key);
        if (!w || w->ndim != 4 || w->dtype != NB_F32)
            return NULL;
        bool ok = true;
        cJSON *root = cJSON_CreateObject(), *px = cJSON_CreateArray();
        ok = root != NULL;
        cli_json_str(root, "layer", info.name, &ok);
        cli_json_shape(root, "shape", 4, w->shape, &ok);
        cli_json_item(root, "pixels", px, &ok);
        int64_t per = w->shape[1] * w->shape[2] * w->shape[3];
        for (int64_t o = 0; o < w->shape[0]; o++)
            add_scaled(px, (const float *)w->data + o * per, per, &ok);
        char *s = ok ? cJSON_PrintUnformatted(root) : NULL;
        cJSON_Delete(root);
        return s;
    }
    return NULL;
}

/* GET /api/model, made once. */
static char *model_json(server *s, bool test)
{
    const nb_model *m = s->m;
    bool ok = true;
    cJSON *root = cJSON_CreateObject();
    ok = root != NULL;
    cli_json_str(root, "name", nb_model_name(m), &ok);
    int64_t shape[NB_MAX_DIMS];
    int nd = nb_model_input_shape(m, shape);
    cli_json_shape(root, "input_shape", nd, shape, &ok);
    cJSON *classes = cJSON_CreateArray();
    cli_json_item(root, "classes", classes, &ok);
    for (int i = 0; i < cli_model_classes(m); i++)
        cli_json_str(classes, NULL, cli_classes_name(&s->names, i), &ok);
    cli_json_str(root, "model", s->model_path, &ok);
    cli_json_str(root, "weights", s->weights, &ok);
    cli_json_str(root, "run", s->run_dir, &ok);
    cli_json_item(root, "test", cJSON_CreateBool(test), &ok);
    cJSON *layers = cJSON_CreateArray();
    cli_json_item(root, "layers", layers, &ok);
    for (int i = 0; i < nb_model_num_layers(m); i++) {
        nb_layer_info info;
        if (nb_model_layer(m, i, &info) != NB_OK)
            continue;
        cJSON *o = cJSON_CreateObject();
        cli_json_item(layers, NULL, o, &ok);
        cli_json_str(o, "name", info.name, &ok);
        cli_json_str(o, "type", info.type, &ok);
        cli_json_shape(o, "output_shape", info.ndim, info.shape, &ok);
        cli_json_int(o, "params", info.params + info.buffers, &ok);
        cli_json_item(o, "trainable", cJSON_CreateBool(info.trainable), &ok);
    }
    int64_t trainable = nb_model_num_params(m, true);
    cli_json_int(root, "total_params", trainable + nb_model_num_params(m, false), &ok);
    cli_json_int(root, "trainable_params", trainable, &ok);
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return json;
}

/* GET /api/eval: evaluated the first time it is asked for, under the lock,
 * then kept. */
static enum MHD_Result eval(struct MHD_Connection *c, server *s)
{
    if (!s->eval_status) {
        nb_train_opts t;
        cli_eval e;
        cli_hold(true);
        int rc = nb_model_train_opts(s->ctx, s->m, &t, NULL) == NB_OK
                     ? cli_eval_run(s->ctx, s->m, &t, s->data_dir, s->weights, &e)
                     : cli_fail_lib(s->ctx, true);
        if (rc == CLI_OK) {
            bool ok = true;
            cJSON *root = cJSON_CreateObject();
            ok = root != NULL;
            cli_json_str(root, "data", s->data_dir, &ok);
            cli_eval_json(root, &e, &ok);
            s->eval_json = ok ? cJSON_PrintUnformatted(root) : NULL;
            cJSON_Delete(root);
            cli_eval_free(&e);
            s->eval_status = s->eval_json ? MHD_HTTP_OK : MHD_HTTP_INTERNAL_SERVER_ERROR;
        } else {
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "error", cli_held() ? cli_held() : "no test set");
            s->eval_json = cJSON_PrintUnformatted(o);
            cJSON_Delete(o);
            s->eval_status = rc == CLI_USAGE ? MHD_HTTP_NOT_FOUND : MHD_HTTP_INTERNAL_SERVER_ERROR;
        }
        cli_release(false, false);
        cli_hold(false);
    }
    if (!s->eval_json)
        return respond_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
    return respond_json(c, (unsigned)s->eval_status, s->eval_json);
}

/* GET /api/run: the run's metrics.csv as columns and rows, read afresh
 * each time (nabla train rewrites it atomically after every epoch). */
static enum MHD_Result run_metrics(struct MHD_Connection *c, const server *s)
{
    if (!s->run_dir)
        return respond_error(c, MHD_HTTP_NOT_FOUND, "no run directory: start serve with --run DIR");
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.csv", s->run_dir);
    bool ok = true;
    cJSON *root = cJSON_CreateObject(), *columns = cJSON_CreateArray(), *rows = cJSON_CreateArray();
    ok = root != NULL;
    cli_json_str(root, "run", s->run_dir, &ok);
    cli_json_item(root, "columns", columns, &ok);
    cli_json_item(root, "rows", rows, &ok);
    FILE *f = fopen(path, "r");
    char line[4096];
    size_t total = 0;
    int ncol = 0;
    /* No file yet (the first epoch runs): no rows. */
    for (int n = 0; f && fgets(line, sizeof line, f) && (total += strlen(line)) < MAX_METRICS; n++) {
        line[strcspn(line, "\r\n")] = '\0';
        cJSON *row = n ? cJSON_CreateArray() : columns;
        if (n)
            cli_json_item(rows, NULL, row, &ok);
        int k = 0;
        for (char *p = line, *end; p && (n == 0 || k < ncol); p = end ? end + 1 : NULL, k++) {
            end = strchr(p, ',');
            if (end)
                *end = '\0';
            if (n == 0) {
                cli_json_str(columns, NULL, p, &ok);
                continue;
            }
            char *stop;
            double v = strtod(p, &stop);
            cli_json_item(row, NULL, *p && !*stop && isfinite(v) ? cJSON_CreateNumber(v)
                                                                : cJSON_CreateNull(), &ok);
        }
        if (n == 0)
            ncol = k;
    }
    if (f)
        fclose(f);
    return respond_object(c, root, ok);
}

/* ---- routing ----------------------------------------------------------------- */

typedef enum { R_NONE, R_PAGE, R_MODEL, R_KERNELS, R_RUN, R_EVAL, R_PREDICT, R_ACTIVATIONS } route;

/* The page's files: the built-in ones, or --page DIR's read at the start. */
static const serve_file *page = serve_files;
static serve_file page_copy[8];

static route find_route(const char *url, const serve_file **file)
{
    static const struct {
        const char *url;
        route r;
    } api[] = {{"/api/model", R_MODEL}, {"/api/kernels", R_KERNELS}, {"/api/run", R_RUN},
               {"/api/eval", R_EVAL}, {"/api/predict", R_PREDICT},
               {"/api/activations", R_ACTIVATIONS}};
    for (size_t i = 0; i < sizeof api / sizeof *api; i++)
        if (strcmp(url, api[i].url) == 0)
            return api[i].r;
    for (size_t i = 0; i < serve_nfiles; i++)
        if (strcmp(url, page[i].url) == 0) {
            *file = &page[i];
            return R_PAGE;
        }
    return R_NONE;
}

static bool is_post(route r)
{
    return r == R_PREDICT || r == R_ACTIVATIONS;
}

static enum MHD_Result answer(struct MHD_Connection *c, server *s, route r, const request *q)
{
    switch (r) {
    case R_MODEL:
        return respond_json(c, MHD_HTTP_OK, s->model_json);
    case R_KERNELS:
        return s->kernels_json ? respond_json(c, MHD_HTTP_OK, s->kernels_json)
                               : respond_error(c, MHD_HTTP_NOT_FOUND, "the model has no conv2d");
    case R_RUN:
        return run_metrics(c, s);
    case R_EVAL:
        return eval(c, s);
    case R_PREDICT:
    case R_ACTIVATIONS:
        return run_model(c, s, q, r == R_ACTIVATIONS);
    default:
        return respond_error(c, MHD_HTTP_NOT_FOUND, "no such page");
    }
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **state)
{
    (void)version;
    server *s = cls;
    const serve_file *file = NULL;
    route r = find_route(url, &file);
    request *q = *state;
    if (!q) {
        /* The first call, with the headers: refuse what no body can mend. */
        if (!(q = calloc(1, sizeof *q)))
            return MHD_NO;
        *state = q;
        if (r == R_NONE)
            return respond_error(c, MHD_HTTP_NOT_FOUND, "no such page: %.200s", url);
        bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
        bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
                   strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
        if (is_post(r) ? !post : !get)
            return respond_error_allow(c, MHD_HTTP_METHOD_NOT_ALLOWED,
                                       is_post(r) ? "POST" : "GET, HEAD",
                                       "%.200s takes %s, not %.40s", url,
                                       is_post(r) ? "POST" : "GET", method);
        const char *length = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                         MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length && strtoull(length, NULL, 10) > MAX_BODY)
            return respond_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "the body is over %u bytes",
                                 MAX_BODY);
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (q->too_big || q->len + n > MAX_BODY) {
            q->too_big = true;
            return MHD_YES;
        }
        if (q->len + n > q->cap) {
            size_t cap = q->cap ? q->cap : 16384;
            while (cap < q->len + n)
                cap *= 2;
            char *body = realloc(q->body, cap);
            if (!body)
                return MHD_NO;
            q->body = body;
            q->cap = cap;
        }
        memcpy(q->body + q->len, upload, n);
        q->len += n;
        return MHD_YES;
    }
    if (q->too_big)
        return respond_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "the body is over %u bytes", MAX_BODY);
    if (r == R_PAGE)
        return respond(c, MHD_HTTP_OK, file->type, file->data, file->size, NULL);
    if (r == R_MODEL || r == R_KERNELS || r == R_RUN)
        return answer(c, s, r, q);
    /* The model's: one at a time, the queue bounded. */
    if (atomic_fetch_add(&s->waiting, 1) > s->max_queue) {
        atomic_fetch_sub(&s->waiting, 1);
        return respond_error(c, MHD_HTTP_SERVICE_UNAVAILABLE, "busy: %d requests wait already",
                             s->max_queue);
    }
    pthread_mutex_lock(&s->lock);
    enum MHD_Result res = answer(c, s, r, q);
    pthread_mutex_unlock(&s->lock);
    atomic_fetch_sub(&s->waiting, 1);
    return res;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **state,
                         enum MHD_RequestTerminationCode why)
{
    (void)c;
    (void)why;
    server *s = cls;
    request *q = *state;
    if (q) {
        free(q->body);
        free(q);
        *state = NULL;
    }
    atomic_fetch_add(&s->served, 1);
}

/* ---- the verb ---------------------------------------------------------------- */

/* --page DIR: the built-in files' names read from DIR instead, for working
 * on the page without rebuilding (a file read at the start, by its fixed
 * name, never by a request's). */
static int read_page(const char *dir)
{
    for (size_t i = 0; i < serve_nfiles && i < sizeof page_copy / sizeof *page_copy; i++) {
        const char *name = strcmp(serve_files[i].url, "/") == 0 ? "index.html"
                                                                  : serve_files[i].url + 1;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        FILE *f = fopen(path, "rb");
        unsigned char *buf = f ? malloc(MAX_BODY) : NULL;
        size_t n = buf ? fread(buf, 1, MAX_BODY, f) : 0;
        bool read = buf && !ferror(f) && n < MAX_BODY;
        int err = errno;
        if (f)
            fclose(f);
        if (!read) {
            free(buf);
            return cli_fail(CLI_USAGE, "--page: %s: %s", path, f ? "cannot read it whole"
                                                               : strerror(err));
        }
        page_copy[i] = serve_files[i];
        page_copy[i].data = buf;
        page_copy[i].size = n;
    }
    page = page_copy;
    return CLI_OK;
}

static void free_page(void)
{
    for (size_t i = 0; page == page_copy && i < serve_nfiles; i++)
        free((void *)page_copy[i].data);
    page = serve_files;
}

/* The socket address of host (a numeric address or a name) and port. */
static int resolve(const char *host, int port, struct sockaddr_storage *addr, bool *v6)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE}, *res;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int e = getaddrinfo(host, service, &hints, &res);
    if (e != 0)
        return cli_fail(CLI_USAGE, "--host %s: %s", host, gai_strerror(e));
    memcpy(addr, res->ai_addr, res->ai_addrlen);
    *v6 = res->ai_family == AF_INET6;
    freeaddrinfo(res);
    return CLI_OK;
}

static bool is_loopback(const struct sockaddr_storage *addr)
{
    if (addr->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)addr)->sin_addr.s_addr) >> 24) == 127;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)addr)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a);
}

/* Waits for Ctrl-C, SIGTERM or SIGHUP (blocked in every thread, the
 * server's too), or for the bounds of --max-seconds and --max-requests. */
static int wait_for_stop(server *s, const sigset_t *stop, double seconds, int64_t requests)
{
    struct timespec start, now, tick = {0, 100 * 1000 * 1000};
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int sig = sigtimedwait(stop, NULL, &tick);
        if (sig > 0) {
            fprintf(stderr, "nabla serve: stopped by %s after %ld requests\n",
                    sig == SIGINT ? "Ctrl-C" : sig == SIGTERM ? "SIGTERM" : "SIGHUP",
                    (long)atomic_load(&s->served));
            return CLI_OK;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        double t = (double)(now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) * 1e-9;
        if ((seconds > 0 && t >= seconds) || (requests > 0 && atomic_load(&s->served) >= requests))
            return CLI_OK;
    }
}

/* The model, its classes' names and the answers that never change. */
static int open_model(server *s, int threads)
{
    int rc = CLI_OK;
    if (!(s->ctx = cli_ctx_new()))
        return CLI_RUNTIME;
    nb_set_num_threads(threads);
    s->m = cli_load_model(s->ctx, s->model_path, NB_F32, s->weights, 0, &rc);
    if (!s->m)
        return rc;
    if (nb_model_loss_kind(s->m) != NB_LOSS_CROSS_ENTROPY)
        return cli_fail(CLI_USAGE, "serve needs a classifier (a cross_entropy loss); \"%s\" has %s",
                        nb_model_name(s->m), cli_loss_name(nb_model_loss_kind(s->m)));
    if (!(s->channels = cli_model_channels(s->m)))
        return cli_fail(CLI_USAGE, "the model \"%s\" does not take one image [1, H, W] (gray) "
                        "or [3, H, W] (colour)", nb_model_name(s->m));
    if ((rc = cli_predict_names(s->ctx, s->m, s->weights, &s->names)) != CLI_OK)
        return rc;
    nb_set_training(s->ctx, false);
    nb_set_grad_enabled(s->ctx, false);
    /* The default test set when the model reads its images. */
    int64_t in[NB_MAX_DIMS];
    bool test = cli_get(&spec, "data") || (nb_model_input_shape(s->m, in) == 3 && in[0] == 1 &&
                                           in[1] == 28 && in[2] == 28);
    s->model_json = model_json(s, test);
    s->kernels_json = kernels_json(s->m);
    if (!test) {
        s->eval_status = MHD_HTTP_NOT_FOUND;
        cJSON *none = cJSON_CreateObject();
        if (none && cJSON_AddStringToObject(none, "error", "no test set for this model: give "
                                            "serve --data"))
            s->eval_json = cJSON_PrintUnformatted(none);
        cJSON_Delete(none);
    }
    if (!s->model_json || (!test && !s->eval_json))
        return cli_fail(CLI_RUNTIME, "out of memory");
    return CLI_OK;
}

/* Serves until a stop signal or the bounds of --max-seconds and
 * --max-requests. */
static int listen_and_wait(server *s, const char *host, int port, const sigset_t *stop,
                           int64_t seconds, int64_t requests)
{
    struct sockaddr_storage addr;
    bool v6 = false;
    int rc = resolve(host, port, &addr, &v6);
    if (rc != CLI_OK)
        return rc;
    signal(SIGPIPE, SIG_IGN);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                     (v6 ? MHD_USE_IPv6 : 0);
    struct MHD_Daemon *d =
        MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)MAX_CONNECTIONS,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONNECTION_TIMEOUT,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_END);
    if (!d)
        return cli_fail(CLI_RUNTIME, "cannot listen on %s port %d: %s", host, port,
                        strerror(errno));
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    int bound = info ? info->port : port;
    if (!is_loopback(&addr))
        fprintf(stderr, "nabla serve: listening on %s: anyone who can reach port %d can use it\n",
                host, bound);
    printf(v6 ? "serving on http://[%s]:%d/\n" : "serving on http://%s:%d/\n", host, bound);
    fflush(stdout);
    rc = wait_for_stop(s, stop, (double)seconds, requests);
    MHD_stop_daemon(d);
    return rc;
}

int cmd_serve(int argc, char **argv)
{
    const char *pos[1];
    int npos, rc = cli_parse(&spec, argc, argv, pos, &npos);
    if (rc != CLI_OK)
        return rc == CLI_HELP ? CLI_OK : rc;
    server s = {.model_path = pos[0], .weights = cli_get(&spec, "weights"),
                .run_dir = cli_get(&spec, "run"),
                .data_dir = cli_data_dir(cli_get(&spec, "data"))};
    if (!s.weights)
        return cli_fail(CLI_USAGE, "--weights is required (see nabla serve --help)");
    const char *host = cli_get(&spec, "host") ? cli_get(&spec, "host") : "127.0.0.1";
    int64_t port = 8080, queue = 32, seconds = 0, requests = 0, threads = 1;
    if ((rc = cli_int64(&spec, "port", 0, 65535, &port)) ||
        (rc = cli_int64(&spec, "max-queue", 0, 1000000, &queue)) ||
        (rc = cli_int64(&spec, "max-seconds", 1, INT64_C(1) << 31, &seconds)) ||
        (rc = cli_int64(&spec, "max-requests", 1, INT64_MAX, &requests)) ||
        (rc = cli_int64(&spec, "threads", 1, 1024, &threads)))
        return rc;
    s.max_queue = (int)queue;
    /* Blocked before any thread starts (OpenMP's, the server's), so that
     * only wait_for_stop takes them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    if (cli_get(&spec, "page") && (rc = read_page(cli_get(&spec, "page"))) != CLI_OK)
        return rc;
    if ((rc = open_model(&s, (int)threads)) == CLI_OK) {
        pthread_mutex_init(&s.lock, NULL);
        rc = listen_and_wait(&s, host, (int)port, &stop, seconds, requests);
        pthread_mutex_destroy(&s.lock);
    }
    cJSON_free(s.model_json);
    cJSON_free(s.kernels_json);
    cJSON_free(s.eval_json);
    cli_classes_free(&s.names);
    nb_model_free(s.m);
    nb_ctx_free(s.ctx);
    free_page();
    return rc;
}
