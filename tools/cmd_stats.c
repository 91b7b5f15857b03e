/*
 * cmd_stats.c - `nabla stats`: the mean and standard deviation of each
 * channel of a data set's training images, and the "normalize" setting of
 * a model file that makes them 0 and 1.
 */
#include "cli.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static cli_opt opts[] = {
    {"data", "D", "the data, as for nabla train: fashion-mnist (the default), a folder\n"
                  "of IDX or CIFAR files, a folder of PNGs in train/CLASS/, or an .npz file",
     NULL},
    {"limit", "N", "only the first N training images", NULL},
    {0},
};

static const cli_spec spec = {
    .usage = "[--data D] [options]",
    .about = "Prints the mean and the standard deviation (the population's, over\n"
             "every pixel) of each channel of the data set's training images, with\n"
             "values in [0, 1] as training sees them (pixels p / 255), computed in\n"
             "double precision; then a line to paste into the model file's\n"
             "\"training\" section:\n"
             "  \"normalize\": {\"mean\": [0.2860], \"std\": [0.3530]}\n"
             "The data's own validation split (an .npz file's X_valid) is left out.",
    .min_pos = 0,
    .max_pos = 0,
    .opts = opts,
};

/* Example i's value j (of c h w) in [0, 1]: a pixel / 255, or a float
 * value as it is. */
static double value(const nb_dataset *ds, int64_t i, int64_t j)
{
    const uint8_t *px = nb_dataset_image(ds, i);
    if (px)
        return px[j] / 255.0;
    const float *v = nb_dataset_values(ds, i);
    return v ? v[j] : NAN;
}

/* The mean and population std of each of c channels over examples [0, n):
 * two passes, the second summing squares of differences from the mean. */
static void channel_stats(const nb_dataset *ds, int64_t n, const int64_t *shape, double *mean,
                          double *std)
{
    const int64_t c = shape[0], plane = shape[1] * shape[2];
    const double count = (double)n * (double)plane;
    for (int64_t k = 0; k < c; k++) {
        double sum = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < plane; j++)
                sum += value(ds, i, k * plane + j);
        mean[k] = sum / count;
        double sq = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < plane; j++) {
                double d = value(ds, i, k * plane + j) - mean[k];
                sq += d * d;
            }
        std[k] = sqrt(sq / count);
    }
}

int cmd_stats(int argc, char **argv)
{
    const char *pos[1];
    int npos, rc = cli_parse(&spec, argc, argv, pos, &npos);
    if (rc != CLI_OK)
        return rc == CLI_HELP ? CLI_OK : rc;
    int64_t limit = 0;
    if ((rc = cli_int64(&spec, "limit", 1, INT64_MAX, &limit)) != CLI_OK)
        return rc;
    const char *dir = cli_data_dir(cli_get(&spec, "data"));
    nb_ctx *ctx = cli_ctx_new();
    if (!ctx)
        return CLI_RUNTIME;
    nb_dataset *ds = nb_dataset_load(ctx, dir, true);
    if (!ds) {
        rc = cli_fail_lib(ctx, true);
        nb_ctx_free(ctx);
        return rc;
    }
    int64_t shape[3];
    nb_dataset_shape(ds, shape);
    int64_t valid = nb_dataset_validation(ds);
    int64_t n = nb_dataset_size(ds) - valid;
    if (limit > 0 && limit < n)
        n = limit;
    if (n <= 0 || shape[0] < 1 || shape[0] > NB_MAX_CHANNELS) {
        rc = cli_fail(CLI_USAGE, "%s: no training images", dir);
    } else {
        double mean[NB_MAX_CHANNELS], std[NB_MAX_CHANNELS];
        channel_stats(ds, n, shape, mean, std);
        char count[32], pixels[32];
        printf("data: %s (training images)\n", dir);
        printf("images: %s of [%" PRId64 ", %" PRId64 ", %" PRId64 "]", cli_count(n, count),
               shape[0], shape[1], shape[2]);
        if (valid > 0)
            printf(" (and %s of the data's own validation split, left out)",
                   cli_count(valid, count));
        printf("\npixels per channel: %s\n",
               cli_count(n * shape[1] * shape[2], pixels));
        static const char *const names[3] = {"red", "green", "blue"};
        for (int64_t k = 0; k < shape[0]; k++)
            printf("channel %" PRId64 "%s%s%s: mean %.6f  std %.6f\n", k,
                   shape[0] == 3 ? " (" : "", shape[0] == 3 ? names[k] : "",
                   shape[0] == 3 ? ")" : "", mean[k], std[k]);
        printf("\"normalize\": {\"mean\": [");
        for (int64_t k = 0; k < shape[0]; k++)
            printf("%s%.4f", k ? ", " : "", mean[k]);
        printf("], \"std\": [");
        for (int64_t k = 0; k < shape[0]; k++)
            printf("%s%.4f", k ? ", " : "", std[k]);
        printf("]}\n");
        /* A constant channel has no std to divide by: the model file
         * refuses the 0.0000 printed. */
        for (int64_t k = 0; k < shape[0]; k++)
            if (!(std[k] >= 0.00005))
                fprintf(stderr, "nabla stats: warning: channel %" PRId64 " is constant (std"
                        " %.4f): a model file needs a std above 0\n", k, std[k]);
    }
    nb_dataset_free(ds);
    nb_ctx_free(ctx);
    return rc;
}
