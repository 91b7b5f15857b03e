/* test_filter.c - tools/filter.c, the kernels and chains of `nabla filter`:
 * agreement with a direct double loop (zero padding, cross-correlation or
 * flipped) for every kernel and mode, the Sobel magnitude of a step edge,
 * scaling, and the errors of kernel specs. */
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../tools/filter.h"

enum { IH = 9, IW = 11 };

/* out[i][j] = sum_ab x[i + a - pt][j + b - pl] * w[a][b] (w rotated 180
 * degrees with flip), zeros outside x: the course's formula. */
static void direct(const double *x, int64_t h, int64_t w, const nb_tensor *k,
                   filter_mode mode, bool flip, double *out, int64_t *oh,
                   int64_t *ow)
{
    int64_t kh = k->shape[2], kw = k->shape[3], pt = 0, pl = 0;
    if (mode == FILTER_SAME)
        pt = (kh - 1) / 2, pl = (kw - 1) / 2;
    else if (mode == FILTER_FULL)
        pt = kh - 1, pl = kw - 1;
    *oh = mode == FILTER_SAME ? h : mode == FILTER_VALID ? h - kh + 1 : h + kh - 1;
    *ow = mode == FILTER_SAME ? w : mode == FILTER_VALID ? w - kw + 1 : w + kw - 1;
    const double *kv = k->data;
    for (int64_t i = 0; i < *oh; i++)
        for (int64_t j = 0; j < *ow; j++) {
            double s = 0;
            for (int64_t a = 0; a < kh; a++)
                for (int64_t b = 0; b < kw; b++) {
                    int64_t y = i + a - pt, xx = j + b - pl;
                    if (y < 0 || y >= h || xx < 0 || xx >= w)
                        continue;
                    double kab = flip ? kv[(kh - 1 - a) * kw + (kw - 1 - b)] : kv[a * kw + b];
                    s += x[y * w + xx] * kab;
                }
            out[i * *ow + j] = s;
        }
}

static const char *const specs[] = {
    "box:3", "box:2", "box:4", "gaussian:1", "gaussian:0.8:4", "gaussian:0.7:1",
    "sobel-x", "sobel-y", "sobel", "gradient", "sharpen", "edge", "identity",
};
#define NSPECS ((int)(sizeof specs / sizeof specs[0]))

/* Loop index: spec, mode and flip. */
START_TEST(test_agrees_with_loop)
{
    int si = _i / 6, mi = (_i / 2) % 3;
    bool flip = _i % 2;
    nb_ctx *ctx = nb_ctx_new();
    nb_rng rng;
    nb_rng_seed(&rng, 1234 + (uint64_t)_i);
    const int64_t shape[2] = {IH, IW};
    nb_tensor *img = nb_tensor_new(ctx, NB_F64, 2, shape);
    nb_fill_uniform(img, &rng, -1, 2);
    filter_kernel k;
    char err[256];
    ck_assert_int_eq(filter_kernel_make(ctx, specs[si], &k, err, sizeof err), NB_OK);
    nb_tensor *out;
    ck_assert_int_eq(filter_apply(ctx, img, &k, 1, (filter_mode)mi, flip, &out, err, sizeof err),
                     NB_OK);

    /* Room for the full output of the largest kernel, 7x7. */
    double a[(IH + 6) * (IW + 6)], b[(IH + 6) * (IW + 6)];
    int64_t oh, ow, oh2, ow2;
    ck_assert_int_le(k.w[0]->shape[2], 7);
    ck_assert_int_le(k.w[0]->shape[3], 7);
    direct(img->data, IH, IW, k.w[0], (filter_mode)mi, flip, a, &oh, &ow);
    if (k.w[1]) {
        direct(img->data, IH, IW, k.w[1], (filter_mode)mi, flip, b, &oh2, &ow2);
        ck_assert(oh2 == oh && ow2 == ow);
        for (int64_t i = 0; i < oh * ow; i++)
            a[i] = sqrt(a[i] * a[i] + b[i] * b[i]);
    }
    ck_assert_int_eq(out->ndim, 4);
    ck_assert_int_eq(out->shape[2], oh);
    ck_assert_int_eq(out->shape[3], ow);
    for (int64_t i = 0; i < oh * ow; i++)
        ck_assert_msg(fabs(nb_get(out, i) - a[i]) <= 1e-12, "%s mode %d flip %d: [%lld] %.17g != %.17g",
                      specs[si], mi, flip, (long long)i, nb_get(out, i), a[i]);
    filter_kernel_free(&k);
    nb_tensor_free(out);
    nb_ctx_free(ctx);
}
END_TEST

/* The kernels' values, written out by hand. */
START_TEST(test_kernel_values)
{
    nb_ctx *ctx = nb_ctx_new();
    filter_kernel k;
    char err[256];
    ck_assert_int_eq(filter_kernel_make(ctx, "sobel-y", &k, err, sizeof err), NB_OK);
    tst_assert_values(k.w[0], 4, (int64_t[]){1, 1, 3, 3},
                      (double[]){-1, -2, -1, 0, 0, 0, 1, 2, 1}, 0);
    ck_assert_ptr_null(k.w[1]);
    filter_kernel_free(&k);
    ck_assert_int_eq(filter_kernel_make(ctx, "box:2", &k, err, sizeof err), NB_OK);
    tst_assert_values(k.w[0], 4, (int64_t[]){1, 1, 2, 2}, (double[]){0.25, 0.25, 0.25, 0.25}, 0);
    filter_kernel_free(&k);
    /* sigma 1, size 3: exp(-d2 / 2) / sum; corner e^-1, edge e^-0.5. */
    ck_assert_int_eq(filter_kernel_make(ctx, "gaussian:1:3", &k, err, sizeof err), NB_OK);
    double c = 0.36787944117144233, e = 0.60653065971263342, s = 1 + 4 * e + 4 * c;
    tst_assert_values(k.w[0], 4, (int64_t[]){1, 1, 3, 3},
                      (double[]){c / s, e / s, c / s, e / s, 1 / s, e / s, c / s, e / s, c / s},
                      1e-15);
    filter_kernel_free(&k);
    /* Default size 2 ceil(3 sigma) + 1: 7 for sigma 1. */
    ck_assert_int_eq(filter_kernel_make(ctx, "gaussian:1", &k, err, sizeof err), NB_OK);
    ck_assert_int_eq(k.w[0]->shape[2], 7);
    ck_assert_int_eq(k.w[0]->shape[3], 7);
    filter_kernel_free(&k);
    ck_assert_int_eq(filter_kernel_make(ctx, "gradient", &k, err, sizeof err), NB_OK);
    tst_assert_values(k.w[0], 4, (int64_t[]){1, 1, 3, 3}, (double[]){0, 0, 0, -1, 0, 1, 0, 0, 0}, 0);
    tst_assert_values(k.w[1], 4, (int64_t[]){1, 1, 3, 3}, (double[]){0, -1, 0, 0, 0, 0, 0, 1, 0}, 0);
    filter_kernel_free(&k);
    nb_ctx_free(ctx);
}
END_TEST

/* A vertical step edge, 0 in columns 0..4 and 1 in 5..9: the Sobel
 * magnitude is 4 on the windows centred on columns 4 and 5 and 0 on all
 * others.  Valid mode, as zero padding would make an edge of the border of
 * the 1s too. */
START_TEST(test_sobel_step_edge)
{
    nb_ctx *ctx = nb_ctx_new();
    const int64_t shape[2] = {8, 10};
    nb_tensor *img = nb_tensor_new(ctx, NB_F64, 2, shape);
    for (int64_t i = 0; i < 8; i++)
        for (int64_t j = 5; j < 10; j++)
            nb_set(img, i * 10 + j, 1);
    filter_kernel k;
    char err[256];
    ck_assert_int_eq(filter_kernel_make(ctx, "sobel", &k, err, sizeof err), NB_OK);
    nb_tensor *out;
    ck_assert_int_eq(filter_apply(ctx, img, &k, 1, FILTER_VALID, false, &out, err, sizeof err),
                     NB_OK);
    ck_assert_int_eq(out->shape[2], 6);
    ck_assert_int_eq(out->shape[3], 8);
    /* Output column j is centred on input column j + 1. */
    for (int64_t i = 0; i < 6; i++)
        for (int64_t j = 0; j < 8; j++)
            ck_assert_double_eq(nb_get(out, i * 8 + j), ((j == 3 || j == 4) ? 4.0 : 0.0));
    filter_kernel_free(&k);
    nb_tensor_free(out);
    nb_ctx_free(ctx);
}
END_TEST

/* A chain: identity then box:3 valid is box:3 valid; two valid box:3
 * shrink 9x11 to 5x7. */
START_TEST(test_chain)
{
    nb_ctx *ctx = nb_ctx_new();
    const int64_t shape[2] = {IH, IW};
    nb_tensor *img = nb_tensor_full(ctx, NB_F64, 2, shape, 0.5);
    filter_kernel k[2];
    char err[256];
    ck_assert_int_eq(filter_kernel_make(ctx, "box:3", &k[0], err, sizeof err), NB_OK);
    ck_assert_int_eq(filter_kernel_make(ctx, "box:3", &k[1], err, sizeof err), NB_OK);
    nb_tensor *out;
    ck_assert_int_eq(filter_apply(ctx, img, k, 2, FILTER_VALID, false, &out, err, sizeof err),
                     NB_OK);
    ck_assert_int_eq(out->shape[2], 5);
    ck_assert_int_eq(out->shape[3], 7);
    for (int64_t i = 0; i < out->numel; i++)
        ck_assert_double_eq_tol(nb_get(out, i), 0.5, 1e-15);
    nb_tensor_free(out);
    /* Valid mode: 9x11 -> 7x9 -> 5x7, then box:9 is larger than 5x7. */
    filter_kernel_free(&k[1]);
    ck_assert_int_eq(filter_kernel_make(ctx, "box:9", &k[1], err, sizeof err), NB_OK);
    filter_kernel three[3] = {k[0], k[0], k[1]};
    ck_assert_int_eq(filter_apply(ctx, img, three, 3, FILTER_VALID, false, &out, err, sizeof err),
                     NB_ERR_ARG);
    ck_assert_ptr_null(out);
    ck_assert_str_eq(err, "kernel box:9 (9x9) is larger than its 5x7 input in valid mode");
    filter_kernel_free(&k[0]);
    filter_kernel_free(&k[1]);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_scale)
{
    nb_ctx *ctx = nb_ctx_new();
    nb_tensor *t = tst_make(ctx, NB_F64, 1, (int64_t[]){4}, (double[]){-1, 0.25, 3, 1});
    filter_scale(t, false);
    tst_assert_values(t, 1, (int64_t[]){4}, (double[]){0, 0.25, 1, 1}, 0);
    nb_tensor_free(t);
    t = tst_make(ctx, NB_F64, 1, (int64_t[]){4}, (double[]){-1, 0, 3, 1});
    filter_scale(t, true);
    tst_assert_values(t, 1, (int64_t[]){4}, (double[]){0, 0.25, 1, 0.5}, 0);
    nb_tensor_free(t);
    t = tst_make(ctx, NB_F64, 1, (int64_t[]){3}, (double[]){7, 7, 7});
    filter_scale(t, true);
    tst_assert_values(t, 1, (int64_t[]){3}, (double[]){0, 0, 0}, 0);
    nb_tensor_free(t);
    nb_ctx_free(ctx);
}
END_TEST

/* A JSON matrix, and what is wrong with bad ones. */
START_TEST(test_kernel_file)
{
    static const struct {
        const char *text;
        int code;
        const char *msg;
    } cases[] = {
        {"[[1, 2.5], [-3, 4e-1]]\n", NB_OK, ""},
        {"[[1, 2], [3]]", NB_ERR_FORMAT, "row 1 is not a list of 2 numbers like row 0"},
        {"[[1, \"a\"]]", NB_ERR_FORMAT, "row 0, column 1 is not a finite number"},
        {"[]", NB_ERR_FORMAT, "expected a matrix"},
        {"[[]]", NB_ERR_FORMAT, "expected a matrix"},
        {"{\"a\": 1}", NB_ERR_FORMAT, "expected a matrix"},
        {"[[1, 2]", NB_ERR_FORMAT, "not valid JSON"},
    };
    /* A path with a slash is read as a file whatever its name. */
    char path[] = "/tmp/nabla-kernel-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    nb_ctx *ctx = nb_ctx_new();
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        FILE *f = fopen(path, "w");
        fputs(cases[c].text, f);
        fclose(f);
        filter_kernel k;
        char err[256] = "";
        ck_assert_int_eq(filter_kernel_make(ctx, path, &k, err, sizeof err), cases[c].code);
        ck_assert_msg(strstr(err, cases[c].msg), "case %zu: \"%s\" lacks \"%s\"", c, err,
                      cases[c].msg);
        if (cases[c].code == NB_OK) {
            tst_assert_values(k.w[0], 4, (int64_t[]){1, 1, 2, 2}, (double[]){1, 2.5, -3, 0.4}, 0);
            filter_kernel_free(&k);
        } else {
            ck_assert_ptr_null(k.w[0]);
        }
    }
    unlink(path);
    nb_ctx_free(ctx);
}
END_TEST

START_TEST(test_kernel_errors)
{
    static const struct {
        const char *spec;
        int code;
        const char *msg;
    } cases[] = {
        {"box:0", NB_ERR_ARG, "kernel box:0: the size must be an integer in [1, 1024]"},
        {"box:3x", NB_ERR_ARG, "kernel box:3x: the size must be an integer in [1, 1024]"},
        {"box:", NB_ERR_ARG, "kernel box:: the size must be an integer in [1, 1024]"},
        {"gaussian:-1", NB_ERR_ARG, "kernel gaussian:-1: sigma must be a number in (0, 100]"},
        {"gaussian:nan", NB_ERR_ARG, "kernel gaussian:nan: sigma must be a number in (0, 100]"},
        {"gaussian:1:0", NB_ERR_ARG, "kernel gaussian:1:0: the size must be an integer in [1, 1024]"},
        {"sobel-z", NB_ERR_ARG, "unknown kernel 'sobel-z' (one of box:N,"},
        {"/nonexistent/k.json", NB_ERR_IO, "kernel file /nonexistent/k.json: No such file"},
    };
    nb_ctx *ctx = nb_ctx_new();
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        filter_kernel k;
        char err[256] = "";
        ck_assert_int_eq(filter_kernel_make(ctx, cases[c].spec, &k, err, sizeof err),
                         cases[c].code);
        ck_assert_msg(strstr(err, cases[c].msg) == err, "\"%s\" does not start with \"%s\"", err,
                      cases[c].msg);
        ck_assert_ptr_null(k.w[0]);
    }
    filter_mode m = FILTER_FULL;
    ck_assert(filter_mode_parse("valid", &m) && m == FILTER_VALID);
    ck_assert(!filter_mode_parse("Same", &m) && m == FILTER_VALID);
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_filter(void)
{
    Suite *s = suite_create("filter");
    TCase *tc = tcase_create("filter");
    tcase_add_loop_test(tc, test_agrees_with_loop, 0, NSPECS * 6);
    tcase_add_test(tc, test_kernel_values);
    tcase_add_test(tc, test_sobel_step_edge);
    tcase_add_test(tc, test_chain);
    tcase_add_test(tc, test_scale);
    tcase_add_test(tc, test_kernel_file);
    tcase_add_test(tc, test_kernel_errors);
    suite_add_tcase(s, tc);
    return s;
}
