/*
 * hue_data.c - writes PNG class folders (DIR/train/CLASS/NNN.png, DIR/test/...): 32x32
 * colour images of 3 classes that differ only in hue.  Each image is a few
 * rectangles of random brightness t on black, coloured (f_R, f_G, f_B) t
 * with f_c = 0.5 + 0.4 cos(h - 2 pi c / 3): the three cosines sum to 0, so
 * the mean of the channels is t / 2 whatever the hue h, and a gray copy of
 * the images carries no class.  The classes' hues are 0, 120 and 240
 * degrees, each image's within 20 degrees of its class's.
 *
 * usage: hue_data DIR [TRAIN_PER_CLASS [TEST_PER_CLASS]]
 */
#include <nabla.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SIDE 32

static const char *const classes[3] = {"a-red", "b-green", "c-blue"};

static int make_dir(const char *path)
{
    if (mkdir(path, 0777) == 0 || errno == EEXIST)
        return 0;
    fprintf(stderr, "hue_data: %s: %s\n", path, strerror(errno));
    return 1;
}

static int write_split(nb_ctx *ctx, const char *dir, const char *split, int per_class, nb_rng *r)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, split);
    if (make_dir(path))
        return 1;
    nb_tensor *img = nb_tensor_new(ctx, NB_F32, 3, (int64_t[]){3, SIDE, SIDE});
    if (!img)
        return 1;
    const double pi = 3.14159265358979323846;
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s/%s", dir, split, classes[k]);
        if (make_dir(path))
            return 1;
        for (int i = 0; i < per_class; i++) {
            double h = 2 * pi * k / 3 + (nb_rng_uniform(r) - 0.5) * 2 * pi / 9;
            float *px = img->data;
            memset(px, 0, sizeof(float) * 3 * SIDE * SIDE);
            for (int rect = 0; rect < 3; rect++) {
                int y0 = (int)nb_rng_below(r, SIDE - 4), x0 = (int)nb_rng_below(r, SIDE - 4);
                int y1 = y0 + 4 + (int)nb_rng_below(r, (uint64_t)(SIDE - y0 - 3));
                int x1 = x0 + 4 + (int)nb_rng_below(r, (uint64_t)(SIDE - x0 - 3));
                double t = 0.3 + 0.7 * nb_rng_uniform(r);
                for (int c = 0; c < 3; c++) {
                    double f = 0.5 + 0.4 * cos(h - 2 * pi * c / 3);
                    for (int y = y0; y < y1 && y < SIDE; y++)
                        for (int x = x0; x < x1 && x < SIDE; x++)
                            px[(c * SIDE + y) * SIDE + x] = (float)(f * t);
                }
            }
            snprintf(path, sizeof path, "%s/%s/%s/%03d.png", dir, split, classes[k], i);
            if (nb_png_write(ctx, path, img) != NB_OK) {
                fprintf(stderr, "hue_data: %s\n", nb_errmsg(ctx));
                return 1;
            }
        }
    }
    nb_tensor_free(img);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: hue_data DIR [TRAIN_PER_CLASS [TEST_PER_CLASS]]\n");
        return 2;
    }
    int train = argc > 2 ? atoi(argv[2]) : 100, test = argc > 3 ? atoi(argv[3]) : 30;
    if (train < 1 || test < 1 || train > 10000 || test > 10000) {
        fprintf(stderr, "hue_data: 1 to 10000 images per class\n");
        return 2;
    }
    nb_ctx *ctx = nb_ctx_new();
    nb_rng r;
    nb_rng_seed(&r, 15);
    int rc = !ctx || make_dir(argv[1]) || write_split(ctx, argv[1], "train", train, &r) ||
             write_split(ctx, argv[1], "test", test, &r);
    nb_ctx_free(ctx);
    return rc;
}
