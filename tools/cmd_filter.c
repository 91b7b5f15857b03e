/*
 * cmd_filter.c - `nabla filter`: runs classic image kernels (blur, Sobel,
 * sharpen...) over a gray PNG, or each channel of a colour one, with the
 * library's own nb_conv2d.
 */
#include "cli.h"
#include "filter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_KERNELS 32

static cli_opt filter_opts[] = {
    {"kernel", "K", "a kernel, several applied in order (required): box:N,\n"
                    "gaussian:SIGMA[:SIZE], sobel-x, sobel-y, sobel, gradient, sharpen,\n"
                    "edge, identity, or a JSON file holding a matrix", NULL},
    {"mode", "M", "same (zero padding, the input's size; the default), valid (no\n"
                  "padding) or full (kh - 1, kw - 1 zeros on each side)", NULL},
    {"flip", NULL, "true convolution (the kernel rotated 180 degrees) instead of\n"
                   "cross-correlation", NULL},
    {"normalize", NULL, "map the output's min..max to 0..1 (default: clamp to [0, 1]); one\n"
                        "range over the three channels of a colour image", NULL},
    {"gray", NULL, "turn a colour image gray first (the mean of its channels) and\n"
                   "write a gray PNG", NULL},
    {"out", "OUT.png", "the output image (required; also -o)", NULL},
    {0},
};

static const cli_spec filter_spec = {
    .usage = "IN.png --kernel K [--kernel K2 ...] [options] -o OUT.png",
    .about = "Reads IN.png as values in [0, 1], convolves it with each kernel in turn\n"
             "(float64, nb_conv2d) and writes the result as an 8-bit PNG: a gray image\n"
             "(gray, or gray and alpha) gives a gray PNG; a colour one (RGB, RGBA or\n"
             "palette; alpha dropped) is filtered channel by channel and gives an RGB\n"
             "PNG, or with --gray is made gray first.  sobel and gradient give the\n"
             "magnitude of their two derivatives.",
    .min_pos = 1,
    .max_pos = 1,
    .opts = filter_opts,
};

/* cli_parse keeps one value per option: --kernel (repeatable) and -o are
 * taken out of argv here, the rest left to it. */
static int take_repeated(int argc, char **argv, char **rest, int *nrest,
                         const char **kernels, int *nk, const char **out)
{
    *nrest = 0;
    *nk = 0;
    bool options = true;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (i == 0 || !options) {
            rest[(*nrest)++] = argv[i];
            continue;
        }
        if (strcmp(a, "--") == 0)
            options = false;
        const char *value = NULL, *name = NULL;
        if (strcmp(a, "--kernel") == 0 || strcmp(a, "-o") == 0 || strcmp(a, "--out") == 0) {
            name = a;
            if (i + 1 >= argc)
                return cli_fail(CLI_USAGE, "option %s needs a value %s", a,
                                a[1] == 'o' ? "OUT.png" : "K");
            value = argv[++i];
        } else if (strncmp(a, "--kernel=", 9) == 0 || strncmp(a, "--out=", 6) == 0) {
            name = a;
            value = strchr(a, '=') + 1;
        }
        if (!name) {
            rest[(*nrest)++] = argv[i];
        } else if (strncmp(name, "--kernel", 8) == 0) {
            if (*nk >= MAX_KERNELS)
                return cli_fail(CLI_USAGE, "more than %d kernels", MAX_KERNELS);
            kernels[(*nk)++] = value;
        } else {
            *out = value;
        }
    }
    rest[*nrest] = NULL;
    return CLI_OK;
}

int cmd_filter(int argc, char **argv)
{
    const char *specs[MAX_KERNELS], *out = NULL, *pos[1];
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest)
        return cli_fail(CLI_RUNTIME, "out of memory");
    int nrest, nk, npos;
    int rc = take_repeated(argc, argv, rest, &nrest, specs, &nk, &out);
    if (rc == CLI_OK)
        rc = cli_parse(&filter_spec, nrest, rest, pos, &npos);
    free(rest);
    if (rc != CLI_OK)
        return rc == CLI_HELP ? CLI_OK : rc;
    if (nk == 0)
        return cli_fail(CLI_USAGE, "--kernel is required (see nabla filter --help)");
    if (!out)
        return cli_fail(CLI_USAGE, "-o OUT.png is required (see nabla filter --help)");
    filter_mode mode = FILTER_SAME;
    const char *m = cli_get(&filter_spec, "mode");
    if (m && !filter_mode_parse(m, &mode))
        return cli_fail(CLI_USAGE, "--mode must be same, valid or full, not '%s'", m);

    nb_ctx *ctx = cli_ctx_new();
    if (!ctx)
        return CLI_RUNTIME;
    filter_kernel k[MAX_KERNELS];
    memset(k, 0, sizeof k);
    nb_tensor *img = NULL, *res = NULL;
    char err[512];
    for (int i = 0; i < nk && rc == CLI_OK; i++) {
        int st = filter_kernel_make(ctx, specs[i], &k[i], err, sizeof err);
        if (st != NB_OK)
            rc = cli_fail(st == NB_ERR_NOMEM ? CLI_RUNTIME : CLI_USAGE, "%s", err);
    }
    bool gray = cli_get(&filter_spec, "gray") != NULL;
    if (rc == CLI_OK && !(img = nb_png_read(ctx, pos[0], NB_F64, gray)))
        rc = cli_fail_lib(ctx, true);
    /* The planes filtered: gray's one (of gray and alpha, the gray), or
     * R, G and B (of RGBA too). */
    nb_tensor *planes = NULL;
    if (rc == CLI_OK) {
        int64_t c = img->shape[0] >= 3 ? 3 : 1;
        if (!(planes = nb_tensor_wrap(ctx, NB_F64, 3, (int64_t[]){c, img->shape[1], img->shape[2]},
                                      img->data)))
            rc = cli_fail_lib(ctx, false);
    }
    if (rc == CLI_OK) {
        int st = filter_apply(ctx, planes, k, nk, mode, cli_get(&filter_spec, "flip") != NULL,
                              &res, err, sizeof err);
        if (st != NB_OK)
            rc = cli_fail(st == NB_ERR_ARG ? CLI_USAGE : CLI_RUNTIME, "%s", err);
    }
    if (rc == CLI_OK) {
        filter_scale(res, cli_get(&filter_spec, "normalize") != NULL);
        const int64_t shape[3] = {res->shape[0], res->shape[2], res->shape[3]};
        nb_tensor *view = nb_tensor_wrap(ctx, NB_F64, 3, shape, res->data);
        if (!view || nb_png_write(ctx, out, view) != NB_OK)
            rc = cli_fail_lib(ctx, false);
        nb_tensor_free(view);
    }
    for (int i = 0; i < nk; i++)
        filter_kernel_free(&k[i]);
    nb_tensor_free(planes);
    nb_tensor_free(img);
    nb_tensor_free(res);
    nb_ctx_free(ctx);
    return rc;
}
