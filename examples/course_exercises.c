/*
 * course_exercises.c - the CNN course's exercises, worked on the public API.
 * Each prints its result and checks the numbers; the exit status is 1 with
 * a message naming the exercise if any check fails, 0 otherwise.
 *
 *   1. conv_matrix: a 3x3 matrix convolved, zero padding 1, by a kernel
 *   2. conv_sizes:  output sizes of five convolutions, run and by formula
 *   3. manual:      4x4 'valid' 3x3 convolution, then 2x2 max-pooling
 *   4. fd_check:    backward gradient of sum(conv(X, sobel_x)^2) against
 *                   a central difference
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <nabla.h>

/* Prints "course_exercises: <exercise>: <message>" and returns 1. */
static int fail(const char *exercise, const char *msg)
{
    fprintf(stderr, "course_exercises: %s: %s\n", exercise, msg);
    return 1;
}

/* A [1, 1, rows, cols] f64 tensor holding the row-major values v: one
 * image, or one single-channel kernel. */
static nb_tensor *matrix(nb_ctx *ctx, int rows, int cols, const double *v)
{
    return nb_tensor_from(ctx, NB_F64, 4, (int64_t[]){1, 1, rows, cols}, v);
}

/* Prints the last two dimensions of a [1, 1, H, W] tensor as a matrix. */
static void print_matrix(const char *title, const nb_tensor *t)
{
    int64_t h = t->shape[2], w = t->shape[3];
    printf("  %s:\n", title);
    for (int64_t i = 0; i < h; i++) {
        printf("    ");
        for (int64_t j = 0; j < w; j++)
            printf(" %6g", nb_get(t, i * w + j));
        printf("\n");
    }
}

/* True when t is [1, 1, rows, cols] and holds exactly the values v. */
static bool equals(const nb_tensor *t, int rows, int cols, const double *v)
{
    if (t->ndim != 4 || t->shape[2] != rows || t->shape[3] != cols || t->numel != rows * cols)
        return false;
    for (int64_t i = 0; i < t->numel; i++)
        if (nb_get(t, i) != v[i])
            return false;
    return true;
}

/* 1. The identity kernel with a 2 in its corner adds each pixel, its
 * upper-left neighbour, and twice its lower-right neighbour. */
static int conv_matrix(nb_ctx *ctx)
{
    const char *ex = "exercise 1 (conv_matrix)";
    static const double a[] = {1, 2, 3, 2, 3, 4, 3, 4, 5};
    static const double k[] = {1, 0, 0, 0, 1, 0, 0, 0, 2};
    static const double want[] = {7, 10, 3, 10, 14, 6, 3, 6, 8};
    printf("%s\n", ex);
    nb_tensor *x = matrix(ctx, 3, 3, a), *w = matrix(ctx, 3, 3, k);
    nb_tensor *y = x && w ? nb_conv2d(ctx, x, w, NULL, &(nb_conv_opts){.padding = {1, 1}})
                          : NULL;
    if (!y)
        return fail(ex, nb_errmsg(ctx));
    print_matrix("input", x);
    print_matrix("kernel", w);
    print_matrix("conv2d, zero padding 1", y);
    int bad = !equals(y, 3, 3, want);
    nb_graph_reset(ctx);
    nb_tensor_free(x);
    nb_tensor_free(w);
    return bad ? fail(ex, "result is not [[7,10,3],[10,14,6],[3,6,8]]") : 0;
}

/* 2. The output size of each of the lab's convolutions, from a real
 * nb_conv2d on zeros (batch 1, f32, no-grad) and from the formula
 * floor((H + 2p - k) / s) + 1, against the lab's answer.  The last case
 * runs for real too: its im2col buffer is 128*9*256*256 floats (302 MB);
 * the whole program takes about a second and 360 MB. */
static int conv_sizes(nb_ctx *ctx)
{
    const char *ex = "exercise 2 (conv_sizes)";
    static const struct {
        int c, h, w, filters, k, stride, pad;
        int want[3]; /* the lab's answer [O, oh, ow] */
    } cases[] = {
        {1, 28, 28, 16, 5, 1, 0, {16, 24, 24}},
        {2, 32, 32, 24, 3, 1, 0, {24, 30, 30}},
        {10, 32, 32, 3, 2, 2, 0, {3, 16, 16}},
        {11, 8, 16, 7, 3, 2, 1, {7, 4, 8}},
        {128, 256, 256, 112, 3, 1, 1, {112, 256, 256}},
    };
    printf("%s\n", ex);
    bool was = nb_set_grad_enabled(ctx, false);
    int bad = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const int c = cases[i].c, k = cases[i].k, s = cases[i].stride, p = cases[i].pad;
        nb_tensor *x = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){1, c, cases[i].h, cases[i].w});
        nb_tensor *w = nb_tensor_new(ctx, NB_F32, 4, (int64_t[]){cases[i].filters, c, k, k});
        nb_tensor *y = x && w ? nb_conv2d(ctx, x, w, NULL,
                                          &(nb_conv_opts){.stride = {s, s}, .padding = {p, p}})
                              : NULL;
        if (!y) {
            bad = fail(ex, nb_errmsg(ctx));
            break;
        }
        /* C integer division of non-negative numbers is the floor */
        int oh = (cases[i].h + 2 * p - k) / s + 1, ow = (cases[i].w + 2 * p - k) / s + 1;
        char shape[64];
        printf("  (%d,%d,%d), %d %dx%d filters, stride %d, pad %d -> conv2d %s, "
               "formula (%d,%d,%d)\n",
               c, cases[i].h, cases[i].w, cases[i].filters, k, k, s, p,
               nb_shape_str(y, shape, sizeof shape), cases[i].filters, oh, ow);
        const int *want = cases[i].want;
        bool ok = y->shape[0] == 1 && y->shape[1] == want[0] && y->shape[2] == want[1] &&
                  y->shape[3] == want[2] && cases[i].filters == want[0] && oh == want[1] &&
                  ow == want[2];
        nb_graph_reset(ctx);
        nb_tensor_free(x);
        nb_tensor_free(w);
        if (!ok) {
            char msg[96];
            snprintf(msg, sizeof msg, "case %zu: expected (%d,%d,%d)", i + 1, want[0], want[1],
                     want[2]);
            bad = fail(ex, msg);
        }
    }
    nb_set_grad_enabled(ctx, was);
    return bad;
}

/* 3. By hand: the kernel's rows are [1, 0, -1], so each output is the sum
 * over the window's three rows of (left column - right column).
 *
 *   input           kernel
 *   1 0 2 1         1 0 -1
 *   3 1 0 2         1 0 -1
 *   0 2 1 3         1 0 -1
 *   1 0 3 1
 *
 *   y[0][0] = (1-2) + (3-0) + (0-1) = -1 + 3 - 1 =  1
 *   y[0][1] = (0-1) + (1-2) + (2-3) = -1 - 1 - 1 = -3
 *   y[1][0] = (3-0) + (0-1) + (1-3) =  3 - 1 - 2 =  0
 *   y[1][1] = (1-2) + (2-3) + (0-1) = -1 - 1 - 1 = -3
 *
 * and 2x2 max-pooling of [[1, -3], [0, -3]] gives 1. */
static int manual(nb_ctx *ctx)
{
    const char *ex = "exercise 3 (manual)";
    static const double a[] = {1, 0, 2, 1, 3, 1, 0, 2, 0, 2, 1, 3, 1, 0, 3, 1};
    static const double k[] = {1, 0, -1, 1, 0, -1, 1, 0, -1};
    static const double by_hand[] = {1, -3, 0, -3};
    printf("%s\n", ex);
    nb_tensor *x = matrix(ctx, 4, 4, a), *w = matrix(ctx, 3, 3, k);
    nb_tensor *y = x && w ? nb_conv2d(ctx, x, w, NULL, NULL) : NULL;
    nb_tensor *m = y ? nb_max_pool2d(ctx, y, &(nb_pool_opts){.kernel = {2, 2}}) : NULL;
    if (!m)
        return fail(ex, nb_errmsg(ctx));
    print_matrix("input", x);
    print_matrix("kernel (vertical edges)", w);
    print_matrix("conv2d, valid", y);
    print_matrix("max_pool2d 2x2", m);
    int bad = !equals(y, 2, 2, by_hand) ? fail(ex, "conv2d is not [[1,-3],[0,-3]]")
              : !equals(m, 1, 1, (double[]){1}) ? fail(ex, "max-pooling is not 1")
                                                 : 0;
    nb_graph_reset(ctx);
    nb_tensor_free(x);
    nb_tensor_free(w);
    return bad;
}

/* L = sum(conv(x, w, 'same')^2): a scalar step tensor. */
static nb_tensor *sobel_loss(nb_ctx *ctx, nb_tensor *x, nb_tensor *w)
{
    nb_tensor *y = nb_conv2d(ctx, x, w, NULL, &(nb_conv_opts){.same = true});
    return nb_sum(ctx, nb_mul(ctx, y, y));
}

/* 4. The gradient of one pixel by backward and by (L(x+h) - L(x-h)) / 2h.
 * L is quadratic in each pixel, so the central difference has no
 * truncation error: what remains is rounding, about 1e-16 * L / h. */
static int fd_check(nb_ctx *ctx)
{
    const char *ex = "exercise 4 (fd_check)";
    static const double sobel_x[] = {-1, 0, 1, -2, 0, 2, -1, 0, 1};
    const double h = 1e-6;
    printf("%s\n", ex);
    nb_rng rng;
    nb_rng_seed(&rng, 42);
    nb_tensor *x = nb_tensor_new(ctx, NB_F64, 4, (int64_t[]){1, 1, 9, 9});
    nb_tensor *w = matrix(ctx, 3, 3, sobel_x);
    if (!x || !w)
        return fail(ex, nb_errmsg(ctx));
    nb_fill_uniform(x, &rng, 0, 1);
    const int64_t p = (int64_t)nb_rng_below(&rng, (uint64_t)x->numel);
    nb_requires_grad(x, true);

    nb_tensor *loss = sobel_loss(ctx, x, w);
    if (!loss || nb_backward(ctx, loss) != NB_OK)
        return fail(ex, nb_errmsg(ctx));
    const double analytic = nb_get(x->grad, p);
    nb_graph_reset(ctx);

    bool was = nb_set_grad_enabled(ctx, false);
    const double x0 = nb_get(x, p);
    nb_set(x, p, x0 + h);
    nb_tensor *lp = sobel_loss(ctx, x, w);
    nb_set(x, p, x0 - h);
    nb_tensor *lm = sobel_loss(ctx, x, w);
    nb_set(x, p, x0);
    nb_set_grad_enabled(ctx, was);
    if (!lp || !lm)
        return fail(ex, nb_errmsg(ctx));
    const double numeric = (nb_get(lp, 0) - nb_get(lm, 0)) / (2 * h);
    nb_graph_reset(ctx);
    nb_tensor_free(x);
    nb_tensor_free(w);

    const double rel = fabs(analytic - numeric) / fmax(fmax(fabs(analytic), fabs(numeric)), 1);
    printf("  9x9 image (seed 42), pixel %lld (row %lld, col %lld):\n",
           (long long)p, (long long)(p / 9), (long long)(p % 9));
    printf("    %-10s %-22s %-22s %s\n", "", "backward", "central diff", "rel err");
    printf("    %-10s %-22.15g %-22.15g %.3g\n", "dL/dx", analytic, numeric, rel);
    return rel <= 1e-6 ? 0 : fail(ex, "relative error above 1e-6");
}

int main(void)
{
    nb_ctx *ctx = nb_ctx_new();
    if (!ctx)
        return fail("setup", "cannot make a context");
    int bad = conv_matrix(ctx);
    bad += conv_sizes(ctx);
    bad += manual(ctx);
    bad += fd_check(ctx);
    printf("%s\n", bad ? "some exercises FAILED" : "all exercises check out");
    nb_ctx_free(ctx);
    return bad ? 1 : 0;
}
