/*
 * augment-cost.c - what nb_augment_batch costs a batch: a random crop of
 * the image padded by 2 and a flip with probability 0.5, on batches of 64
 * float32 images of [C, H, W] (default 1x28x28, Fashion-MNIST's; also
 * 3x32x32, CIFAR's), timed over many batches and printed per batch, to
 * set against a training step's time (bench/augment.sh timing).
 *
 * usage: bench/augment-cost [BATCHES]
 */
#include <nabla.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int measure(nb_ctx *ctx, int64_t c, int64_t h, int64_t w, int batches)
{
    nb_tensor *x = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){64, c, h, w});
    if (!x)
        return 1;
    for (int64_t i = 0; i < x->numel; i++)
        nb_set(x, i, (double)(i % 251) / 251);
    nb_augment aug = {.crop_padding = 2, .hflip = 0.5};
    double t0 = now();
    for (int b = 0; b < batches; b++)
        if (nb_augment_batch(x, h, w, &aug, 7, (int64_t)b * 64, NULL) != NB_OK) {
            fprintf(stderr, "augment-cost: %s\n", nb_errmsg(ctx));
            return 1;
        }
    double us = (now() - t0) / batches * 1e6;
    printf("batch of 64 x [%lld, %lld, %lld]: %.1f us a batch (crop padding 2, hflip 0.5)\n",
           (long long)c, (long long)h, (long long)w, us);
    nb_tensor_free(x);
    return 0;
}

int main(int argc, char **argv)
{
    int batches = argc > 1 ? atoi(argv[1]) : 20000;
    if (batches < 1) {
        fprintf(stderr, "usage: augment-cost [BATCHES]\n");
        return 2;
    }
    nb_ctx *ctx = nb_ctx_new();
    int rc = !ctx || measure(ctx, 1, 28, 28, batches) || measure(ctx, 3, 32, 32, batches);
    nb_ctx_free(ctx);
    return rc;
}
