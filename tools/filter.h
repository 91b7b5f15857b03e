/*
 * filter.h - image filtering for `nabla filter`: kernels made from spec
 * strings ("box:3", "gaussian:1.5", "sobel", a JSON file...) and a chain of
 * them applied to a gray image, or to each channel of a colour one, with the
 * library's nb_conv2d, in float64.
 */
#ifndef NABLA_FILTER_H
#define NABLA_FILTER_H

#include <nabla.h>

#include <stdbool.h>
#include <stddef.h>

/* The largest kernel side accepted. */
#define FILTER_MAX_SIDE 1024

typedef enum filter_mode {
    FILTER_SAME,  /* zero padding, the input's size (PyTorch's split) */
    FILTER_VALID, /* no padding: (H - kh + 1) x (W - kw + 1) */
    FILTER_FULL,  /* kh - 1, kw - 1 zeros on each side: (H + kh - 1) x ... */
} filter_mode;

/* One step of a chain.  With w[1] the step's output is the magnitude
 * sqrt(conv(x, w[0])^2 + conv(x, w[1])^2) (sobel, gradient). */
typedef struct filter_kernel {
    char name[64];    /* the spec, for messages (truncated) */
    nb_tensor *w[2];  /* persistent f64 [1, 1, kh, kw]; w[1] may be NULL */
} filter_kernel;

/* Makes the kernel `spec` names: box:N, gaussian:SIGMA[:SIZE], sobel-x,
 * sobel-y, sobel, gradient, sharpen, edge, identity, or the path of a JSON
 * file holding a matrix (a list of equal-length lists of numbers).  On
 * error writes one line to err and returns the status: NB_ERR_ARG for a bad
 * spec, NB_ERR_IO / NB_ERR_FORMAT for the file, NB_ERR_NOMEM. */
int filter_kernel_make(nb_ctx *ctx, const char *spec, filter_kernel *k,
                       char *err, size_t size);
void filter_kernel_free(filter_kernel *k);

/* "same", "valid" or "full"; false for anything else. */
bool filter_mode_parse(const char *s, filter_mode *mode);

/* Applies the nk kernels in order to img (numel C * H * W, any dtype, the
 * last two sizes H and W: C planes, 1 for gray, 3 for RGB), each plane on
 * its own, each step's output the next step's input, as a
 * cross-correlation or, with flip, a true convolution.  Sets *out to a new
 * persistent f64 [C, 1, H', W'].  On error writes one line to err and
 * returns the status (NB_ERR_ARG: a kernel larger than its input in valid
 * mode, or an image too large). */
int filter_apply(nb_ctx *ctx, const nb_tensor *img, const filter_kernel *k,
                 int nk, filter_mode mode, bool flip, nb_tensor **out,
                 char *err, size_t size);

/* In place: clamps to [0, 1], or with normalize maps min..max to 0..1 (a
 * constant image to 0). */
void filter_scale(nb_tensor *t, bool normalize);

#endif /* NABLA_FILTER_H */
