/*
 * cmd_visualize.c - `nabla visualize`: pictures of what a network holds
 * and computes: the kernels of each conv2d layer (in colour for one that
 * reads a colour model's input), the channels of every layer with an image
 * output for one input image, that image (colour models), and the image
 * filtered by each kernel of the first convolution; or, with
 * --reconstructions, an autoencoder's test images above its outputs.
 */
#include "cli.h"
#include "grid.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Input channels drawn per output channel of a kernel. */
#define MAX_IN_TILES 16
/* Smallest tile sides, in pixels: kernels, and images. */
#define KERNEL_PX 24
#define IMAGE_PX 48
/* responses.png shrinks a larger input to this many pixels a side. */
#define RESPONSE_SIDE 128

static cli_opt opts[] = {
    {"input", "IMAGE.png", "the image to run (required): any PNG, read as for nabla predict\n"
                           "(gray and inverted when dark on light for a gray model, RGB for\n"
                           "a colour one) and resized to the model's input",
     NULL},
    {"out", "DIR", "where to write the pictures (required; made if missing)", NULL},
    {"weights", "W.safetensors", "the trained weights (default: the default initialisation from --seed)",
     NULL},
    {"seed", "S", "seeds that initialisation (default 0)", NULL},
    {"invert", NULL, "invert a dark-on-light image for a colour model too", NULL},
    {"no-invert", NULL, "never invert the image", NULL},
    {"reconstructions", NULL, "instead: the first --count test images of --data on one row\n"
                              "and the model's outputs for them below, into the PNG --out\n"
                              "names (an autoencoder: outputs as many values as its input)",
     NULL},
    {"data", "D", "with --reconstructions: the data, as for nabla train (default:\n"
                  "fashion-mnist)", NULL},
    {"count", "N", "with --reconstructions: how many images (default 8, at most 256)", NULL},
    {0},
};

static const cli_spec spec = {
    .usage = "MODEL.json (--input IMAGE.png --out DIR | --reconstructions --out FILE.png) "
             "[options]",
    .about =
        "Writes pictures of the network into DIR, and lists them:\n"
        "  filters-<layer>.png      the kernels of each conv2d layer: a tile per kernel\n"
        "                           or, when it reads several channels, a row per output\n"
        "                           channel with a tile per input channel (the first 16);\n"
        "                           a layer reading a colour model's RGB input: a colour\n"
        "                           tile per kernel, its 3 channels as R, G and B\n"
        "  activations-<layer>.png  for each layer with an image output [C, H, W], its C\n"
        "                           channels for the input image (after the layer's\n"
        "                           \"activation\", if it has one)\n"
        "  input.png                (colour models) the input image in colour, as the\n"
        "                           model reads it: resized, before normalisation\n"
        "  responses.png            the input image (gray, or RGB for a colour model),\n"
        "                           shrunk to 128 pixels a side if larger, convolved\n"
        "                           ('same' zero padding, no bias) with each kernel of the\n"
        "                           first conv2d layer that reads its channels\n"
        "Each tile is shown on its own range, min black and max white (a constant tile\n"
        "black; a colour kernel on one range over its three channels), magnified with\n"
        "nearest neighbour to at least 24 pixels a side for a kernel and 48 for an\n"
        "image, on a blue grid.\n"
        "\n"
        "With --reconstructions it writes one picture, FILE.png: the first N test\n"
        "images of the data on the top row and the model's outputs for them on the\n"
        "row below, both as images (the training section's normalisation undone,\n"
        "clamped to [0, 1], 0 black), magnified to at least 48 pixels a side.",
    .min_pos = 1,
    .max_pos = 1,
    .opts = opts,
};

typedef struct vis {
    nb_ctx *ctx;
    nb_model *m;
    const char *dir;
} vis;

/* A grid of rows x cols tiles of h x w values, magnified `zoom` times or
 * less when the picture would be too large. */
static int make_grid(vis *v, grid *g, int rows, int cols, int64_t h, int64_t w, int zoom,
                     const char *file)
{
    int st;
    while ((st = grid_new(v->ctx, g, rows, cols, h, w, zoom)) == NB_ERR_ARG && zoom > 1)
        zoom = zoom / 2;
    if (st == NB_ERR_ARG)
        return cli_fail(CLI_USAGE, "%s: %d x %d tiles of %" PRId64 "x%" PRId64
                        " make a picture larger than %d pixels a side",
                        file, rows, cols, h, w, GRID_MAX_SIDE);
    return st == NB_OK ? CLI_OK : cli_fail_lib(v->ctx, false);
}

/* Writes g to DIR/file and lists it with `what`. */
static int write_grid(vis *v, grid *g, const char *file, const char *what)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", v->dir, file);
    if (nb_png_write(v->ctx, path, g->img) != NB_OK)
        return cli_fail_lib(v->ctx, false);
    printf("%-30s %5" PRId64 " x %-5" PRId64 " %s\n", file, g->img->shape[2], g->img->shape[1],
           what);
    return CLI_OK;
}

/* n images of h x w values each, t's from flat index 0 on, in a near-square
 * grid. */
static int draw_images(vis *v, const nb_tensor *t, int n, int64_t h, int64_t w, const char *file,
                       const char *what)
{
    grid g;
    int cols = grid_columns(n), rows = (n + cols - 1) / cols;
    int rc = make_grid(v, &g, rows, cols, h, w, grid_zoom(h > w ? h : w, IMAGE_PX), file);
    for (int k = 0; rc == CLI_OK && k < n; k++)
        grid_put(&g, k / cols, k % cols, t, (int64_t)k * h * w);
    if (rc == CLI_OK)
        rc = write_grid(v, &g, file, what);
    grid_free(&g);
    return rc;
}

/* filters-<layer>.png from a weight [O, C, kh, kw]; with rgb (C 3) a
 * colour tile per kernel. */
static int draw_filters(vis *v, const char *layer, const nb_tensor *wt, bool rgb)
{
    char file[128], what[160], shape[64];
    snprintf(file, sizeof file, "filters-%s.png", layer);
    snprintf(what, sizeof what, "%s %s", wt->name,
             nb_shape_str(wt, shape, sizeof shape));
    int64_t o = wt->shape[0], c = wt->shape[1], kh = wt->shape[2], kw = wt->shape[3];
    int zoom = grid_zoom(kh > kw ? kh : kw, KERNEL_PX);
    grid g;
    int rc;
    if (c == 1 || (rgb && c == 3)) {
        int cols = grid_columns((int)o);
        rc = make_grid(v, &g, (int)((o + cols - 1) / cols), cols, kh, kw, zoom, file);
        for (int64_t k = 0; rc == CLI_OK && k < o; k++) {
            if (c == 1)
                grid_put(&g, (int)(k / cols), (int)(k % cols), wt, k * kh * kw);
            else
                grid_put_rgb(&g, (int)(k / cols), (int)(k % cols), wt, k * c * kh * kw,
                             kh * kw, true);
        }
    } else {
        int cols = c < MAX_IN_TILES ? (int)c : MAX_IN_TILES;
        rc = make_grid(v, &g, (int)o, cols, kh, kw, zoom, file);
        for (int64_t k = 0; rc == CLI_OK && k < o; k++)
            for (int j = 0; j < cols; j++)
                grid_put(&g, (int)k, j, wt, (k * c + j) * kh * kw);
    }
    if (rc == CLI_OK)
        rc = write_grid(v, &g, file, what);
    grid_free(&g);
    return rc;
}

/* responses.png: img [C, H, W] convolved with each kernel of wt [O, C, kh, kw]. */
static int draw_responses(vis *v, const nb_tensor *img, const nb_tensor *wt, const char *input)
{
    nb_ctx *ctx = v->ctx;
    int64_t h = img->shape[1], w = img->shape[2], side = h > w ? h : w;
    nb_tensor *small = NULL;
    if (side > RESPONSE_SIDE) {
        int64_t sh = h * RESPONSE_SIDE / side, sw = w * RESPONSE_SIDE / side;
        small = nb_image_resize(ctx, img, sh > 0 ? sh : 1, sw > 0 ? sw : 1);
        if (!small)
            return cli_fail_lib(ctx, false);
        img = small;
        h = img->shape[1];
        w = img->shape[2];
    }
    nb_tensor *x = nb_tensor_wrap(ctx, NB_F64, 4, (int64_t[]){1, img->shape[0], h, w},
                                  img->data);
    nb_tensor *y = nb_conv2d(ctx, x, (nb_tensor *)wt, NULL, &(nb_conv_opts){.same = true});
    int rc;
    if (!y) {
        rc = cli_fail_lib(ctx, false);
    } else {
        char what[4200], shape[64];
        snprintf(what, sizeof what, "%s (%" PRId64 "x%" PRId64 ") * %s %s", input, w, h, wt->name,
                 nb_shape_str(wt, shape, sizeof shape));
        rc = draw_images(v, y, (int)wt->shape[0], h, w, "responses.png", what);
    }
    nb_tensor_free(x);
    nb_tensor_free(small);
    return rc;
}

/* The weight of layer `name` if it is a conv2d. */
static nb_tensor *conv_weight(const nb_model *m, const nb_layer_info *info)
{
    char key[96];
    if (strcmp(info->type, "conv2d") != 0)
        return NULL;
    snprintf(key, sizeof key, "%s.weight", info->name);
    nb_tensor *w = nb_model_find(m, key);
    return w && w->ndim == 4 ? w : NULL;
}

/* True when layer i reads the model's input alone. */
static bool reads_input(const nb_model *m, int i, const nb_layer_info *info)
{
    const char *in[8];
    return cli_layer_inputs(m, i, info, in) == 1 && strcmp(in[0], "input") == 0;
}

/* input.png: the colour image img [3, H, W] at the model's input size h x w,
 * drawn as it is. */
static int draw_input(vis *v, const nb_tensor *img, int64_t h, int64_t w, const char *input)
{
    nb_tensor *r = NULL;
    if (img->shape[1] != h || img->shape[2] != w) {
        if (!(r = nb_image_resize(v->ctx, img, h, w)))
            return cli_fail_lib(v->ctx, false);
        img = r;
    }
    grid g;
    int rc = make_grid(v, &g, 1, 1, h, w, grid_zoom(h > w ? h : w, IMAGE_PX), "input.png");
    if (rc == CLI_OK) {
        grid_put_rgb(&g, 0, 0, img, 0, h * w, false);
        char what[4200];
        snprintf(what, sizeof what, "%s as the model's input [3, %" PRId64 ", %" PRId64 "]", input,
                 h, w);
        rc = write_grid(v, &g, "input.png", what);
    }
    grid_free(&g);
    nb_tensor_free(r);
    return rc;
}

/* ---- reconstructions ------------------------------------------------------ */

/* The image an example of the model's input is, [C, H, W] into geo: the
 * input's own shape, or for a flat input the data's H x W with the
 * channels that fill it (1 or 3). */
static int image_geometry(const nb_model *m, const nb_dataset *ds, int64_t geo[3])
{
    int64_t in[NB_MAX_DIMS], shape[3], numel = 1;
    int nd = nb_model_input_shape(m, in);
    for (int d = 0; d < nd; d++)
        numel *= in[d];
    nb_dataset_shape(ds, shape);
    if (nd == 3) {
        memcpy(geo, in, 3 * sizeof *geo);
    } else {
        geo[0] = numel / (shape[1] * shape[2]);
        geo[1] = shape[1];
        geo[2] = shape[2];
    }
    if ((geo[0] == 1 || geo[0] == 3) && geo[0] * geo[1] * geo[2] == numel)
        return CLI_OK;
    char dims[64];
    return cli_fail(CLI_USAGE, "the model \"%s\" takes %s, which is not a gray or colour image "
                    "of the data's %" PRId64 "x%" PRId64, nb_model_name(m),
                    nb_dims_str(nd, in, dims, sizeof dims), shape[1], shape[2]);
}

/* The model's output per example must hold as many values as its input. */
static int check_reconstructs(const nb_model *m)
{
    int64_t in[NB_MAX_DIMS], out[NB_MAX_DIMS], ni = 1, no = 1;
    int di = nb_model_input_shape(m, in), dout = nb_model_output_shape(m, out);
    for (int d = 0; d < di; d++)
        ni *= in[d];
    for (int d = 0; d < dout; d++)
        no *= out[d];
    if (ni == no)
        return CLI_OK;
    char a[64], b[64];
    return cli_fail(CLI_USAGE, "--reconstructions: the model \"%s\" outputs %s for an input of "
                    "%s: an autoencoder's output holds as many values as its input",
                    nb_model_name(m), nb_dims_str(dout, out, a, sizeof a),
                    nb_dims_str(di, in, b, sizeof b));
}

/* x's values (n examples of C x plane) as pixels: the normalisation undone. */
static void denormalise(nb_tensor *x, const nb_train_opts *t, int64_t c, int64_t plane)
{
    for (int64_t i = 0; t->std[0] != 0 && i < x->numel; i++) {
        int64_t k = (i / plane) % c;
        nb_set(x, i, nb_get(x, i) * t->std[k] + t->mean[k]);
    }
}

/* Inputs x and outputs y of n images geo [C, H, W], on two rows, to path. */
static int draw_pairs(vis *v, const nb_tensor *x, const nb_tensor *y, int n, const int64_t geo[3],
                      const char *path, const char *what)
{
    int64_t h = geo[1], w = geo[2], per = geo[0] * h * w, stride = geo[0] == 3 ? h * w : 0;
    grid g;
    int rc = make_grid(v, &g, 2, n, h, w, grid_zoom(h > w ? h : w, IMAGE_PX), path);
    for (int k = 0; rc == CLI_OK && k < n; k++) {
        grid_put_rgb(&g, 0, k, x, k * per, stride, false);
        grid_put_rgb(&g, 1, k, y, k * per, stride, false);
    }
    if (rc == CLI_OK && nb_png_write(v->ctx, path, g.img) != NB_OK)
        rc = cli_fail_lib(v->ctx, false);
    if (rc == CLI_OK)
        printf("%-30s %5" PRId64 " x %-5" PRId64 " %s\n", path, g.img->shape[2], g.img->shape[1],
               what);
    grid_free(&g);
    return rc;
}

/* The first `count` test images of dir and the model's outputs for them. */
static int reconstructions(vis *v, const char *dir, int64_t count, const char *path)
{
    nb_ctx *ctx = v->ctx;
    nb_train_opts t;
    int rc = check_reconstructs(v->m);
    if (rc != CLI_OK)
        return rc;
    if (nb_model_train_opts(ctx, v->m, &t, NULL) != NB_OK)
        return cli_fail_lib(ctx, true);
    nb_dataset *ds = nb_dataset_load(ctx, dir, false);
    if (!ds)
        return cli_fail_lib(ctx, true);
    int64_t geo[3], shape[NB_MAX_DIMS + 1], idx[256];
    int n = (int)(count < nb_dataset_size(ds) ? count : nb_dataset_size(ds));
    int nd = nb_model_input_shape(v->m, shape + 1) + 1;
    shape[0] = n;
    for (int i = 0; i < n; i++)
        idx[i] = i;
    nb_tensor *x = NULL, *y = NULL;
    if (n < 1)
        rc = cli_fail(CLI_USAGE, "%s: no test images", dir);
    if (rc == CLI_OK && (rc = image_geometry(v->m, ds, geo)) == CLI_OK &&
        !(x = nb_tensor_new(ctx, nb_model_dtype(v->m), nd, shape)))
        rc = cli_fail_lib(ctx, false);
    if (rc == CLI_OK &&
        nb_dataset_batch(ds, idx, n, x, NULL, t.mean, t.std[0] != 0 ? t.std : NULL) != NB_OK)
        rc = cli_fail_lib(ctx, true);
    nb_set_training(ctx, false);
    nb_set_grad_enabled(ctx, false);
    if (rc == CLI_OK && !(y = nb_model_forward(ctx, v->m, x)))
        rc = cli_fail_lib(ctx, false);
    if (rc == CLI_OK) {
        char what[4200];
        snprintf(what, sizeof what, "%d test images of %s (top) and \"%s\"'s outputs (below)", n,
                 dir, nb_model_name(v->m));
        denormalise(x, &t, geo[0], geo[1] * geo[2]);
        denormalise(y, &t, geo[0], geo[1] * geo[2]);
        rc = draw_pairs(v, x, y, n, geo, path, what);
    }
    nb_graph_reset(ctx);
    nb_tensor_free(x);
    nb_dataset_free(ds);
    return rc;
}

/* ---- the verb -------------------------------------------------------------- */

static int visualize(vis *v, const nb_tensor *img, const char *input)
{
    nb_ctx *ctx = v->ctx;
    nb_model *m = v->m;
    int rc = CLI_OK, n = nb_model_num_layers(m);
    nb_tensor *x = cli_model_input(ctx, m, img, &rc);
    if (!x)
        return rc;
    nb_set_training(ctx, false);
    nb_set_grad_enabled(ctx, false);
    if (!nb_model_forward(ctx, m, x))
        rc = cli_fail_lib(ctx, false);
    else
        rc = cli_make_dir(v->dir);
    for (int i = 0; rc == CLI_OK && i < n; i++) {
        nb_layer_info info;
        nb_model_layer(m, i, &info);
        nb_tensor *w = conv_weight(m, &info);
        if (w)
            rc = draw_filters(v, info.name, w, img->shape[0] == 3 && reads_input(m, i, &info));
    }
    for (int i = 0; rc == CLI_OK && i < n; i++) {
        nb_layer_info info;
        nb_model_layer(m, i, &info);
        const nb_tensor *a = nb_model_activation(m, i);
        if (info.ndim != 3 || !a)
            continue;
        char file[128], what[160], shape[64];
        snprintf(file, sizeof file, "activations-%s.png", info.name);
        snprintf(what, sizeof what, "%s (%s) %s", info.name, info.type,
                 nb_dims_str(3, info.shape, shape, sizeof shape));
        rc = draw_images(v, a, (int)info.shape[0], info.shape[1], info.shape[2], file, what);
    }
    if (rc == CLI_OK && img->shape[0] == 3)
        rc = draw_input(v, img, x->shape[2], x->shape[3], input);
    /* The first convolution that reads as many channels as the image has. */
    for (int i = 0; rc == CLI_OK && i < n; i++) {
        nb_layer_info info;
        nb_model_layer(m, i, &info);
        nb_tensor *w = conv_weight(m, &info);
        if (w && w->shape[1] == img->shape[0]) {
            rc = draw_responses(v, img, w, input);
            break;
        }
    }
    nb_graph_reset(ctx);
    nb_tensor_free(x);
    return rc;
}

/* nabla visualize --reconstructions: --out names the picture. */
static int cmd_reconstructions(vis *v, const char *model, uint64_t seed)
{
    int64_t count = 8;
    int rc = cli_int64(&spec, "count", 1, 256, &count);
    if (rc != CLI_OK)
        return rc;
    if (cli_get(&spec, "input"))
        return cli_fail(CLI_USAGE, "--reconstructions draws test images: drop --input");
    if (!v->dir || !*v->dir)
        return cli_fail(CLI_USAGE, "missing --out FILE.png (see nabla visualize --help)");
    if (!(v->ctx = cli_ctx_new()))
        return CLI_RUNTIME;
    v->m = cli_load_model(v->ctx, model, NB_F64, cli_get(&spec, "weights"), seed, &rc);
    if (v->m)
        rc = reconstructions(v, cli_data_dir(cli_get(&spec, "data")), count, v->dir);
    nb_model_free(v->m);
    nb_ctx_free(v->ctx);
    return rc;
}

int cmd_visualize(int argc, char **argv)
{
    const char *pos[1];
    int npos, rc = cli_parse(&spec, argc, argv, pos, &npos);
    if (rc != CLI_OK)
        return rc == CLI_HELP ? CLI_OK : rc;
    uint64_t seed = 0;
    if ((rc = cli_uint64(&spec, "seed", &seed)) != CLI_OK)
        return rc;
    const char *input = cli_get(&spec, "input");
    vis v = {.dir = cli_get(&spec, "out")};
    if (cli_get(&spec, "reconstructions"))
        return cmd_reconstructions(&v, pos[0], seed);
    if (cli_get(&spec, "data") || cli_get(&spec, "count"))
        return cli_fail(CLI_USAGE, "--%s goes with --reconstructions", cli_get(&spec, "data")
                                                                          ? "data" : "count");
    if (!input)
        return cli_fail(CLI_USAGE, "missing --input IMAGE.png (see nabla visualize --help)");
    if (!v.dir || !*v.dir)
        return cli_fail(CLI_USAGE, "missing --out DIR (see nabla visualize --help)");
    if (!(v.ctx = cli_ctx_new()))
        return CLI_RUNTIME;
    v.m = cli_load_model(v.ctx, pos[0], NB_F64, cli_get(&spec, "weights"), seed, &rc);
    nb_tensor *img = NULL;
    int channels = v.m ? cli_model_channels(v.m) : 0;
    bool invert = false;
    if (v.m) {
        bool conv = false;
        for (int i = 0; i < nb_model_num_layers(v.m); i++) {
            nb_layer_info info;
            nb_model_layer(v.m, i, &info);
            conv |= conv_weight(v.m, &info) != NULL;
        }
        if (!conv)
            rc = cli_fail(CLI_USAGE, "the model \"%s\" has no conv2d layer", nb_model_name(v.m));
    }
    if (v.m && rc == CLI_OK)
        rc = cli_invert(&spec, channels, &invert);
    if (v.m && rc == CLI_OK && (img = cli_read_image(v.ctx, input, channels, invert, &rc)))
        rc = visualize(&v, img, input);
    nb_tensor_free(img);
    nb_model_free(v.m);
    nb_ctx_free(v.ctx);
    return rc;
}
