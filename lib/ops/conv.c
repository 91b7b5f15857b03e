/*
 * conv.c - 2-D convolution, with bias and optionally relu fused, and 1-D
 * convolution built on it through reshape.  Cross-correlation as
 * torch.nn.functional.conv2d, or with `flip` true convolution (the kernel
 * rotated 180 degrees): the flip lives in the index mapping, so the weights
 * are never copied or modified and their gradient is that of the stored,
 * unflipped kernel.  The shape rule, nbi_conv_shape, is also what a model
 * file's conv layers check.  Two ways to compute it, which conv_plan_for
 * picks for each call from the geometry, with the threads' split of the
 * batch: im2col + GEMM, and for stride 1 with few input taps (C kh kw, up
 * to 5x5 kernels) direct sums in vector registers; the backward takes the
 * direct path only below a smaller bound.
 */
#ifdef T /* ---- kernels in T, named K(...); DT is T's nb_dtype ----------- */

/* col[(c kh + i) kw + j][oy ow + ox] = x[c][oy sh - pt + i' dh][ox sw - pl + j' dw],
 * zero in the padding; (i', j') = (i, j), or (kh-1-i, kw-1-j) when flipped,
 * (dh, dw) the dilation.  x is one group's C / groups channels of an image
 * [C, H, W] of a batch that ends at xend; col's rows are ld
 * apart, so the columns of several images can sit side by side.  With
 * stride 1 a row's pixels go over in blocks of 64 bytes, which may write
 * past its end: into the next rows of the same image, written afterwards
 * (the zeros of a row's border after its copy), never past the image's
 * part of col and never reading past xend. */
static void K(im2col)(const conv_geom *g, const T *x, const T *xend, T *col, int64_t ld)
{
    enum { CH = 64 / sizeof(T) };
    int64_t ow = g->ow, sw = g->sw, p = g->oh * ow;
    for (int64_t c = 0; c < g->c / g->groups; c++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t ki = (g->flip ? g->kh - 1 - i : i) * g->dil_h;
                int64_t kj = (g->flip ? g->kw - 1 - j : j) * g->dil_w;
                int64_t lo, hi;
                nbi_inside_range(g->w, 1, sw, g->pl - kj, ow, &lo, &hi);
                const T *xc = x + c * g->h * g->w;
                T *out = col + ((c * g->kh + i) * g->kw + j) * ld;
                for (int64_t oy = 0, at = 0; oy < g->oh; oy++, out += ow, at += ow) {
                    int64_t iy = oy * g->sh - g->pt + ki;
                    if (iy < 0 || iy >= g->h) {
                        memset(out, 0, (size_t)ow * sizeof(T));
                        continue;
                    }
                    const T *src = xc + iy * g->w + kj - g->pl;
                    int64_t ox = lo;
                    if (sw == 1) {
                        for (; ox < hi && at + ox + CH <= p && src + ox + CH <= xend; ox += CH)
                            memcpy(out + ox, src + ox, CH * sizeof(T));
                        for (; ox < hi; ox++)
                            out[ox] = src[ox];
                    } else
                        for (; ox < hi; ox++)
                            out[ox] = src[ox * sw];
                    for (ox = 0; ox < lo; ox++)
                        out[ox] = 0;
                    for (ox = hi; ox < ow; ox++)
                        out[ox] = 0;
                }
            }
}

/* Short loops, forced to vectorise: at -O2 the compiler would not for
 * an unknown trip count. */
static void K(add_row)(T *restrict dst, const T *restrict src, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++)
        dst[i] += src[i];
}
/* relu as the relu op computes it (activation.c): a NaN stays NaN and
 * passes its gradient, as in PyTorch. */
static void K(relu_inplace)(T *y, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        T v = y[i];
        y[i] = v <= 0 ? 0 : v;
    }
}
static void K(relu_copy)(T *restrict dst, const T *restrict src, int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        T v = src[i];
        dst[i] = v <= 0 ? 0 : v;
    }
}
/* dst = src (where not y <= 0, else 0, when y is given); returns sum dst. */
static T K(copy_sum)(T *restrict dst, const T *restrict src, const T *restrict y, int64_t n)
{
    T s = 0;
    if (y) {
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < n; i++) {
            T u = src[i], v = y[i] <= 0 ? 0 : u; /* an unconditional load vectorises */
            dst[i] = v;
            s += v;
        }
    } else {
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < n; i++) {
            dst[i] = src[i];
            s += src[i];
        }
    }
    return s;
}
/* dst = src where not y <= 0, else 0: relu's backward. */
static void K(mask_copy)(T *restrict dst, const T *restrict src, const T *restrict y,
                         int64_t n)
{
#pragma omp simd
    for (int64_t i = 0; i < n; i++) {
        T v = src[i];
        dst[i] = y[i] <= 0 ? 0 : v;
    }
}

/* The adjoint of im2col: dx[c][iy][ix] += dcol[r][p] for every entry (r, p)
 * that im2col reads from (c, iy, ix) of one group; padding entries are
 * dropped. */
static void K(col2im)(const conv_geom *g, const T *dcol, int64_t ld, T *dx)
{
    int64_t ow = g->ow, sw = g->sw;
    for (int64_t c = 0; c < g->c / g->groups; c++)
        for (int64_t i = 0; i < g->kh; i++)
            for (int64_t j = 0; j < g->kw; j++) {
                int64_t ki = (g->flip ? g->kh - 1 - i : i) * g->dil_h;
                int64_t kj = (g->flip ? g->kw - 1 - j : j) * g->dil_w;
                int64_t lo, hi;
                nbi_inside_range(g->w, 1, sw, g->pl - kj, ow, &lo, &hi);
                T *dxc = dx + c * g->h * g->w;
                const T *row = dcol + ((c * g->kh + i) * g->kw + j) * ld;
                for (int64_t oy = 0; oy < g->oh; oy++, row += ow) {
                    int64_t iy = oy * g->sh - g->pt + ki;
                    if (iy < 0 || iy >= g->h)
                        continue;
                    T *dst = dxc + iy * g->w + kj - g->pl;
                    if (sw == 1)
                        K(add_row)(dst + lo, row + lo, hi - lo);
                    else
                        for (int64_t ox = lo; ox < hi; ox++)
                            dst[ox * sw] += row[ox];
                }
            }
}

/* sum_i v[i] in 16 running sums, so the adds vectorise without
 * reassociation by the compiler; the order is fixed, so results are too. */
static T K(sum)(const T *v, int64_t n)
{
    T acc[16] = {0};
    int64_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int k = 0; k < 16; k++)
            acc[k] += v[i + k];
    for (int k = 0; i < n; i++, k++)
        acc[k] += v[i];
    for (int k = 8; k >= 1; k /= 2)
        for (int j = 0; j < k; j++)
            acc[j] += acc[j + k];
    return acc[0];
}

/* Images [lo, hi) of the batch, pl->group at a time: with P = oh ow, for
 * each group q of G (O' = O / G filters on C' = C / G channels),
 *     Y_q[O', group P] = W_q[O', C' kh kw] col_q[C' kh kw, group P] + b_q,
 * (then max(0, Y) with relu), and each image's [O, P] block is copied out
 * (one image's GEMM writes y directly).  Columns go to saved (every
 * image's, kept for backward: the group at n0 starts at n0 C kh kw P) or
 * to the thread's col; buf holds Y when the group has several images. */
static void K(conv_fwd_part)(const conv_geom *g, const conv_plan *pl, int64_t lo,
                             int64_t hi, const T *x, const T *w, const T *b, T *y, T *saved,
                             T *col, T *buf, T *pack)
{
    int64_t o = g->o, og = o / g->groups, ckk = g->c / g->groups * g->kh * g->kw;
    int64_t p = g->oh * g->ow, chw = g->c * g->h * g->w, cghw = g->h * g->w * (g->c / g->groups);
    for (int64_t n0 = lo; n0 < hi; n0 += pl->group) {
        int64_t gi = hi - n0 < pl->group ? hi - n0 : pl->group, ld = gi * p;
        T *cg = saved ? saved + n0 * g->groups * ckk * p : col;
        for (int64_t j = 0; j < gi; j++)
            for (int64_t q = 0; q < g->groups; q++)
                K(im2col)(g, x + (n0 + j) * chw + q * cghw, x + g->n * chw,
                          cg + q * ckk * ld + j * p, ld);
        T *yg = gi == 1 ? y + n0 * o * p : buf;
        for (int64_t q = 0; q < g->groups; q++)
            nbi_gemm_fixed(DT, &(nbi_gemm_args){.m = og, .n = ld, .k = ckk, .a = w + q * og * ckk,
                                                .ars = ckk, .acs = 1, .b = cg + q * ckk * ld,
                                                .brs = ld, .bcs = 1, .c = yg + q * og * ld,
                                                .crs = ld, .ccs = 1,
                                                .row_bias = b ? b + q * og : NULL, .pack = pack});
        if (g->relu)
            K(relu_inplace)(yg, o * ld);
        if (gi > 1)
            for (int64_t j = 0; j < gi; j++)
                for (int64_t oc = 0; oc < o; oc++)
                    memcpy(y + ((n0 + j) * o + oc) * p, yg + oc * ld + j * p,
                           (size_t)p * sizeof(T));
    }
}

/* dY of the gi images from n0 as one [O, gi P] block (times [not y <= 0]
 * with relu, y the output): dy itself for one image without relu, else
 * copied into buf. */
static const T *K(conv_dy)(const conv_geom *g, int64_t n0, int64_t gi, const T *y, const T *dy,
                           T *buf)
{
    int64_t o = g->o, p = g->oh * g->ow, ld = gi * p;
    if (gi == 1 && !g->relu)
        return dy + n0 * o * p;
    for (int64_t j = 0; j < gi; j++)
        for (int64_t oc = 0; oc < o; oc++) {
            const T *src = dy + ((n0 + j) * o + oc) * p, *yv = y + ((n0 + j) * o + oc) * p;
            T *dst = buf + oc * ld + j * p;
            if (g->relu)
                K(mask_copy)(dst, src, yv, p);
            else
                memcpy(dst, src, (size_t)p * sizeof(T));
        }
    return buf;
}

/* Images [lo, hi) of one group of the batch, pl->group per GEMM as in the
 * forward, with dY as K(conv_dy) makes it:
 *     db += sum_P dY;  dW^T += col dY^T
 * (either may be NULL).  saved is the forward's columns, or NULL and they
 * are built again.  dW reads each column where an output reads it, padding
 * zeros included, so infinities and NaN land where PyTorch puts them. */
static void K(conv_dw_part)(const conv_geom *g, const conv_plan *pl, int64_t lo, int64_t hi,
                            const T *x, const T *y, const T *dy, T *dw, T *db, const T *saved,
                            T *col, T *buf, T *pack)
{
    int64_t o = g->o, og = o / g->groups, ckk = g->c / g->groups * g->kh * g->kw;
    int64_t p = g->oh * g->ow, chw = g->c * g->h * g->w, cghw = g->h * g->w * (g->c / g->groups);
    for (int64_t n0 = lo; n0 < hi; n0 += pl->group) {
        int64_t gi = hi - n0 < pl->group ? hi - n0 : pl->group, ld = gi * p;
        const T *dyg = K(conv_dy)(g, n0, gi, y, dy, buf);
        if (db)
            for (int64_t oc = 0; oc < o; oc++)
                db[oc] += K(sum)(dyg + oc * ld, ld);
        if (!dw)
            continue;
        const T *cg = saved ? saved + n0 * g->groups * ckk * p : col;
        if (!saved)
            for (int64_t j = 0; j < gi; j++)
                for (int64_t q = 0; q < g->groups; q++)
                    K(im2col)(g, x + (n0 + j) * chw + q * cghw, x + g->n * chw,
                              col + q * ckk * ld + j * p, ld);
        /* rows of dW_q^T are col_q's: C' kh kw of them, long GEMM columns */
        for (int64_t q = 0; q < g->groups; q++)
            nbi_gemm_fixed(DT, &(nbi_gemm_args){.m = ckk, .n = og, .k = ld,
                                                .a = cg + q * ckk * ld, .ars = ld, .acs = 1,
                                                .b = dyg + q * og * ld, .brs = 1, .bcs = ld,
                                                .c = dw + q * og * ckk, .crs = 1, .ccs = ckk,
                                                .add = true, .pack = pack});
    }
}

/* Images [lo, hi), pl->group per GEMM:  dx_q += col2im(W_q^T dY_q) for
 * each group q.  dx gets only what outputs read. */
static void K(conv_dx_part)(const conv_geom *g, const conv_plan *pl, int64_t lo, int64_t hi,
                            const T *w, const T *y, const T *dy, T *dx, T *col, T *buf, T *pack)
{
    int64_t o = g->o, og = o / g->groups, ckk = g->c / g->groups * g->kh * g->kw;
    int64_t p = g->oh * g->ow, chw = g->c * g->h * g->w, cghw = g->h * g->w * (g->c / g->groups);
    for (int64_t n0 = lo; n0 < hi; n0 += pl->group) {
        int64_t gi = hi - n0 < pl->group ? hi - n0 : pl->group, ld = gi * p;
        const T *dyg = K(conv_dy)(g, n0, gi, y, dy, buf);
        for (int64_t q = 0; q < g->groups; q++) {
            nbi_gemm_fixed(DT, &(nbi_gemm_args){.m = ckk, .n = ld, .k = og,
                                                .a = w + q * og * ckk, .ars = 1, .acs = ckk,
                                                .b = dyg + q * og * ld, .brs = ld, .bcs = 1,
                                                .c = col, .crs = ld, .ccs = 1, .pack = pack});
            for (int64_t j = 0; j < gi; j++)
                K(col2im)(g, col + j * p, ld, dx + (n0 + j) * chw + q * cghw);
        }
    }
}

#if defined(__GNUC__)
/* ---- direct convolution, for layers with few taps --------------------------
 * A first layer (one input channel, 3x3) makes GEMMs 9 deep that run far
 * below the machine's speed, and im2col copies each pixel 9 times.  Here
 * the taps are summed straight into registers, in vectors of 32 bytes.
 * Stride 1 only.  Each image is copied into zero-padded planes
 * [C][hp][ws], hp = h + pt + pb, ws = w + pl + pr; an output (oy, ox) then
 * sits at the flat index q = oy ws + ox and reads, for tap (i, j), the flat
 * index q + i ws + j.  Every q in [0, oh ws) is computed, the kw - 1
 * columns past ow too (discarded), so rows need no bounds checks however
 * narrow they are.  The backward is the same sums turned around. */
#include "conv-flat.h"

/* The image's pixels into the interior of the zeroed planes xp. */
static void K(pad_image)(const conv_geom *g, const direct_geom *d, const T *x, T *xp)
{
    for (int64_t c = 0; c < g->c; c++)
        for (int64_t iy = 0; iy < g->h; iy++)
            memcpy(xp + c * d->xs + (iy + g->pt) * d->ws + g->pl, x + (c * g->h + iy) * g->w,
                   (size_t)g->w * sizeof(T));
}

/* Images [lo, hi): y = max(0, .) of the flat sums' valid columns.  Scratch:
 * xp (zeroed once: only the interior is ever written), then the sums. */
static void K(direct_fwd_part)(const conv_geom *g, const direct_geom *d, int64_t lo,
                               int64_t hi, const T *x, const T *w, const T *b, T *y, T *scr)
{
    T *xp = scr, *sums = scr + d->xpsize;
    int64_t khw = g->kh * g->kw, p = g->oh * g->ow;
    K(flat) f = {g->o, g->c, khw, d->off, d->wk, g->c * khw, khw, xp, d->xs, d->ylen};
    memset(xp, 0, d->xpsize * sizeof(T));
    for (int64_t n = lo; n < hi; n++) {
        K(pad_image)(g, d, x + n * g->c * g->h * g->w, xp);
        K(flat_sum_for)(d->wide)(&f, w, b, sums, d->ylen);
        for (int64_t oc = 0; oc < g->o; oc++)
            for (int64_t oy = 0; oy < g->oh; oy++) {
                T *dst = y + (n * g->o + oc) * p + oy * g->ow;
                const T *src = sums + oc * d->ylen + oy * d->ws;
                if (g->relu)
                    K(relu_copy)(dst, src, g->ow);
                else
                    memcpy(dst, src, (size_t)g->ow * sizeof(T));
            }
    }
}

/* Whether all n values are finite: v - v is 0 for them, NaN otherwise
 * (an or of compares, which vectorises without a chain of adds). */
static bool K(all_finite)(const T *v, int64_t n)
{
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (int64_t i = 0; i < n; i++)
        bad |= !(v[i] - v[i] == 0);
    return !bad;
}

/* The flat sums of the backward also multiply dY's zeros (the columns past
 * ow, the margins) by pixels and weights that no output reads: nothing for
 * finite values, NaN for infinities and NaN, where PyTorch's sums over the
 * outputs have no such term.  These two sum over the outputs only, for an
 * image holding a value that is not finite (dW) or weights that hold one
 * (dx); gp is dY's planes past their front margin. */
static void K(direct_dw_outputs)(const conv_geom *g, const direct_geom *d, const T *gp,
                                 const T *xp, T *dw)
{
    int64_t khw = g->kh * g->kw;
    for (int64_t o = 0; o < g->o; o++)
        for (int64_t c = 0; c < g->c; c++)
            for (int64_t k = 0; k < khw; k++) {
                T s = 0;
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    const T *gr = gp + o * d->gs + oy * d->ws;
                    const T *xr = xp + c * d->xs + oy * d->ws + d->off[k];
                    for (int64_t ox = 0; ox < g->ow; ox++)
                        s += gr[ox] * xr[ox];
                }
                dw[(o * g->c + c) * khw + d->wk[k]] += s;
            }
}
static void K(direct_dx_outputs)(const conv_geom *g, const direct_geom *d, const T *w,
                                 const T *gp, T *dxp)
{
    int64_t khw = g->kh * g->kw;
    memset(dxp, 0, (size_t)(g->c * d->xlen) * sizeof(T));
    for (int64_t c = 0; c < g->c; c++)
        for (int64_t o = 0; o < g->o; o++)
            for (int64_t k = 0; k < khw; k++) {
                T wv = w[(o * g->c + c) * khw + d->wk[k]];
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    const T *gr = gp + o * d->gs + oy * d->ws;
                    T *dr = dxp + c * d->xlen + oy * d->ws + d->off[k];
                    for (int64_t ox = 0; ox < g->ow; ox++)
                        dr[ox] += wv * gr[ox];
                }
            }
}

/* Image n's dY (times [not y <= 0] with relu) into the planes gp, rows ws
 * apart, after a front margin of fo zeros;  db[o] += sum dY[o] (db may be
 * NULL). */
static void K(direct_dy)(const conv_geom *g, const direct_geom *d, int64_t n, const T *y,
                         const T *dy, T *gp, T *db)
{
    int64_t p = g->oh * g->ow;
    for (int64_t oc = 0; oc < g->o; oc++) {
        const T *src = dy + (n * g->o + oc) * p, *yv = y + (n * g->o + oc) * p;
        T *plane = gp + oc * d->gs + d->fo;
        T sum = 0;
        for (int64_t oy = 0; oy < g->oh; oy++)
            sum += K(copy_sum)(plane + oy * d->ws, src + oy * g->ow,
                               g->relu ? yv + oy * g->ow : NULL, g->ow);
        if (db)
            db[oc] += sum;
    }
}

/* Images [lo, hi) of one group:  db[o] += sum dY[o];
 *     dw[o][c][tap] += sum_q dY[o][q] xp[c][q + off]  (dw or db may be NULL).
 * scr: the padded image xp, then dY's planes gp, both zeroed by the caller
 * (only their interiors are ever written). */
static void K(direct_dw_part)(const conv_geom *g, const direct_geom *d, int64_t lo, int64_t hi,
                              const T *x, const T *y, const T *dy, T *dw, T *db, T *scr)
{
    T *xp = scr, *gp = scr + d->xpsize;
    int64_t khw = g->kh * g->kw, chw = g->c * g->h * g->w;
    K(flat) fw = {g->o, g->c, khw, d->off, d->wk, g->c * khw, khw, xp, d->xs, d->wlen};
    K(flat_dw_fn) flat_dw = K(flat_dw_for)();
    for (int64_t n = lo; n < hi; n++) {
        K(direct_dy)(g, d, n, y, dy, gp, db);
        if (!dw)
            continue;
        K(pad_image)(g, d, x + n * chw, xp);
        if (K(all_finite)(x + n * chw, chw))
            flat_dw(&fw, gp + d->fo, d->gs, dw);
        else
            K(direct_dw_outputs)(g, d, gp + d->fo, xp, dw);
    }
}

/* Images [lo, hi), scratch as K(direct_dw_part)'s, then dx's sums dxp:
 *     dxp[c][r] = sum_{o, tap} w[o][c][tap] dY[o][r - off],  dx += dxp's interior.
 * w_finite: every weight is finite (else dx sums over the outputs only). */
static void K(direct_dx_part)(const conv_geom *g, const direct_geom *d, int64_t lo, int64_t hi,
                              const T *w, bool w_finite, const T *y, const T *dy, T *dx, T *scr)
{
    T *gp = scr + d->xpsize, *dxp = gp + d->gpsize;
    int64_t khw = g->kh * g->kw, ckhw = g->c * khw;
    int64_t neg[CONV_DIRECT_KK];
    for (int64_t k = 0; k < khw; k++)
        neg[k] = -d->off[k];
    /* outputs c by inputs o, offsets negated */
    K(flat) fx = {g->c, g->o, khw, neg, d->wk, khw, ckhw, gp + d->fo, d->gs, d->xlen};
    K(flat_sum_fn) flat_sum = K(flat_sum_for)(d->wide);
    for (int64_t n = lo; n < hi; n++) {
        K(direct_dy)(g, d, n, y, dy, gp, NULL);
        if (w_finite)
            flat_sum(&fx, w, NULL, dxp, d->xlen);
        else
            K(direct_dx_outputs)(g, d, w, gp + d->fo, dxp);
        for (int64_t c = 0; c < g->c; c++)
            for (int64_t iy = 0; iy < g->h; iy++)
                K(add_row)(dx + ((n * g->c + c) * g->h + iy) * g->w,
                           dxp + c * d->xlen + (iy + g->pt) * d->ws + g->pl, g->w);
    }
}
#endif /* __GNUC__ */

/* The batch split in pl->nt contiguous runs of whole GEMM groups
 * (pl->group images), one per thread, each with its own scratch
 * (scratch + t pl->scratch: col, then buf). */
static void K(conv_fwd)(const conv_geom *g, const conv_plan *pl, const T *x, const T *w,
                        const T *b, T *y, T *saved, T *scratch)
{
    int nt = pl->nt;
    int64_t units = (g->n + pl->group - 1) / pl->group;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int t = 0; t < nt; t++) {
        T *col = scratch + (size_t)t * pl->scratch;
        int64_t lo = units * t / nt * pl->group, hi = units * (t + 1) / nt * pl->group;
        if (hi > g->n)
            hi = g->n;
        if (pl->dwise) {
            DWISE_PICK(K(dwise_fwd))(g, &pl->dw, lo, hi, x, w, b, y, col);
            continue;
        }
#if defined(__GNUC__)
        if (pl->direct) {
            K(direct_fwd_part)(g, &pl->d, lo, hi, x, w, b, y, col);
            continue;
        }
#endif
        K(conv_fwd_part)(g, pl, lo, hi, x, w, b, y, saved, col, col + pl->colsize,
                         col + pl->packat);
    }
}

/* The batch's sums, one partial per group of NB_BATCH_GROUP images:
 * part[k] = [dW, db] of group k (nw and nb elements, either 0 when not
 * wanted), each summed in image order by one thread.  Thread t takes the
 * groups conv_share gives it and the images of dx it gives it. */
static void K(conv_bwd)(const conv_geom *g, const conv_plan *pl, const T *x, const T *w,
                        const T *y, const T *dy, T *dx, bool dw, bool db, const T *saved,
                        T *scratch, T *part)
{
    int nt = pl->nt;
    int64_t nw = dw ? g->o * (g->c / g->groups) * g->kh * g->kw : 0, nb = db ? g->o : 0;
    int64_t len = nw + nb;
#if defined(__GNUC__)
    bool w_finite = !pl->direct_dx || !dx || K(all_finite)(w, g->o * g->c * g->kh * g->kw);
#endif
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int t = 0; t < nt; t++) {
        T *col = scratch + (size_t)t * pl->scratch;
        conv_share sh = conv_share_of(g->n, pl->group, t, nt, len > 0, dx != NULL);
#if defined(__GNUC__)
        if (pl->direct_dw)
            memset(col, 0, (pl->d.xpsize + pl->d.gpsize) * sizeof(T));
#endif
        for (int64_t k = sh.g0; k < sh.g1; k++) {
            T *pk = part + k * len;
            int64_t lo = k * NB_BATCH_GROUP, hi = lo + NB_BATCH_GROUP < g->n ? lo + NB_BATCH_GROUP : g->n;
            memset(pk, 0, (size_t)len * sizeof(T));
            if (pl->dwise) {
                DWISE_PICK(K(dwise_sums))(g, &pl->dw, lo, hi, x, y, dy, dw ? pk : NULL,
                                          db ? pk + nw : NULL, col);
                continue;
            }
#if defined(__GNUC__)
            if (pl->direct_dw) {
                K(direct_dw_part)(g, &pl->d, lo, hi, x, y, dy, dw ? pk : NULL, db ? pk + nw : NULL,
                                  col);
                continue;
            }
#endif
            K(conv_dw_part)(g, pl, lo, hi, x, y, dy, dw ? pk : NULL, db ? pk + nw : NULL, saved,
                            col, col + pl->colsize, col + pl->packat);
        }
        if (sh.x0 == sh.x1)
            continue;
        if (pl->dwise) {
            DWISE_PICK(K(dwise_dx))(g, &pl->dw, sh.x0, sh.x1, w, y, dy, dx, col);
            continue;
        }
#if defined(__GNUC__)
        if (pl->direct_dx) {
            if (!pl->direct_dw) /* dY's planes held the GEMM's scratch */
                memset(col + pl->d.xpsize, 0, pl->d.gpsize * sizeof(T));
            K(direct_dx_part)(g, &pl->d, sh.x0, sh.x1, w, w_finite, y, dy, dx, col);
            continue;
        }
#endif
        K(conv_dx_part)(g, pl, sh.x0, sh.x1, w, y, dy, dx, col, col + pl->colsize,
                        col + pl->packat);
    }
}

/* dw += the batch's dW, db += its db, from the sums nbi_batch_sum left in
 * part (either may be NULL). */
static void K(conv_add_sums)(T *dw, T *db, const T *part, int64_t nw, int64_t nb)
{
    for (int64_t i = 0; dw && i < nw; i++)
        dw[i] += part[i];
    for (int64_t i = 0; db && i < nb; i++)
        db[i] += part[nw + i];
}

#else /* ---- builders and backward ----------------------------------------- */

#include "internal.h"

#include <inttypes.h>
#include <limits.h>

/* The geometry of one conv2d call, as nbi_conv_shape computes it; padding
 * per side, as `same` with an even kernel pads one more zero after (bottom,
 * right) than before. */
typedef struct nbi_conv_geom {
    int64_t n, c, h, w;   /* input [N, C, H, W] (N 1 for one example) */
    int64_t o, kh, kw;    /* weight [O, C / groups, kh, kw] */
    int64_t oh, ow;       /* output [N, O, oh, ow] */
    int64_t sh, sw;       /* stride */
    int64_t groups;       /* C and O in groups of C / groups and O / groups */
    int64_t dil_h, dil_w; /* dilation: taps dil_h rows, dil_w columns apart */
    int64_t pt, pb, pl, pr; /* zeros at top, bottom, left, right */
    bool flip;
    bool relu;            /* max(0, .) fused on the output */
} conv_geom;

/* The direct path's layout (see "direct convolution" above), in elements.
 * Kernel tap k = i kw + j has weight wk[k] = k within a channel's kh kw and
 * reads flat offset off[k] = i ws + j ((kh-1-i) ws + kw-1-j when flipped). */
#define CONV_DIRECT_KK 25 /* kernels up to 5x5 */
typedef struct direct_geom {
    int64_t ws, xs;          /* padded row and plane */
    int64_t ylen, wlen, xlen; /* flat lengths summed: outputs, dW's, dx's */
    int64_t fo, gs;          /* dY planes: zeros before the data, stride */
    size_t xpsize, gpsize;   /* the padded image, the dY planes */
    bool wide;               /* lengths in steps of the AVX-512 sums */
    int64_t off[CONV_DIRECT_KK], wk[CONV_DIRECT_KK];
} direct_geom;

#include "conv-dwise-layout.h"

/* How a batch is cut: nt threads, each over a contiguous run of images,
 * taken `group` images per GEMM so that small outputs still make long
 * GEMM rows.  group is a power of two that divides NB_BATCH_GROUP and the
 * runs are whole groups, so an image is in the same GEMMs however the
 * batch is split (dW sums a GEMM's images in one chain).  Each thread's
 * scratch holds colsize elements of columns, then Y (or dY) for a group,
 * then from packat on the GEMM's packed panel; scratch = all, aligned. */
typedef struct conv_plan {
    int nt;
    int64_t group;
    size_t colsize, packat, scratch;
    bool direct, direct_dw, direct_dx; /* which sums take the taps directly (d) */
    direct_geom d;
    bool dwise; /* groups = C: the depthwise kernels (dw) */
    dwise_geom dw;
} conv_plan;

/* Thread t's share of a backward: the batch's groups [g0, g1) for the
 * sums, and the images [x0, x1) for dx, whole GEMM groups.  The sums go by
 * whole groups, which may not spread evenly; dx, per image, evens out the
 * work: each thread's images of both come to about 2n / nt. */
typedef struct conv_share {
    int64_t g0, g1, x0, x1;
} conv_share;

static conv_share conv_share_of(int64_t n, int64_t group, int t, int nt, bool sums, bool dx)
{
    int64_t groups = nbi_batch_groups(n), units = (n + group - 1) / group;
    conv_share sh = {0, 0, 0, 0};
    double target = (double)((sums ? n : 0) + (dx ? n : 0)) / nt, want = 0;
    int64_t u = 0;
    for (int k = 0; k <= t; k++) {
        int64_t g0 = sums ? groups * k / nt : 0, g1 = sums ? groups * (k + 1) / nt : 0;
        int64_t lo = g0 * NB_BATCH_GROUP, hi = g1 * NB_BATCH_GROUP < n ? g1 * NB_BATCH_GROUP : n;
        double q = target - (double)(hi > lo ? hi - lo : 0);
        want += q > 0 ? q : 0;
        int64_t start = u;
        u = (int64_t)(want / (double)group + 0.5);
        u = u < units ? u : units;
        if (k == t)
            sh = (conv_share){g0, g1, start * group, (k == nt - 1 ? units : u) * group};
    }
    if (!dx)
        sh.x0 = sh.x1 = 0;
    sh.x0 = sh.x0 < n ? sh.x0 : n;
    sh.x1 = sh.x1 < n ? sh.x1 : n;
    return sh;
}

/* The depthwise kernels, compiled for each CPU variant; DWISE_PICK(f)
 * expands f before NBI_CPU_PICK pastes the variant's name to it. */
#define NBI_VARIANTS_OF "ops/conv-depthwise.h" /* from cpu-variants.h's folder */
#define T float
#define TS f32
#include "cpu-variants.h"
#undef TS
#undef T
#define T double
#define TS f64
#include "cpu-variants.h"
#undef TS
#undef T
#define DWISE_PICK(f) NBI_CPU_PICK(f)

/* JOIN_LANES: the lanes of two 32-byte vectors of T, as one of 64 bytes. */
#define T float
#define K(f) f##_f32
#define DT NB_F32
#define JOIN_LANES 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15
#include "conv.c"
#undef T
#undef K
#undef DT
#undef JOIN_LANES
#define T double
#define K(f) f##_f64
#define DT NB_F64
#define JOIN_LANES 0, 1, 2, 3, 4, 5, 6, 7
#include "conv.c"
#undef T
#undef K
#undef DT
#undef JOIN_LANES

/* ---- the shape rule ------------------------------------------------------ */

static const nb_conv_opts conv_defaults = {{0, 0}, {0, 0}, false, false, false, 0, {0, 0}};

/* A pair of the options as its caller wrote it, for nbi_pair_str: conv1d
 * uses index 0 only. */
static const int *conv_pair(int sd, const int *v, int *one)
{
    if (sd == 2)
        return v;
    one[0] = one[1] = v[0];
    return one;
}

int nbi_conv_opts_check(int sd, const nb_conv_opts *o, char *why)
{
    if (!o)
        o = &conv_defaults;
    char s[32];
    int one[2];
    if (o->stride[0] < 0 || (sd == 2 && o->stride[1] < 0))
        return nbi_why(why, "stride %s is negative",
                       nbi_pair_str(conv_pair(sd, o->stride, one), s, sizeof s));
    if (o->padding[0] < 0 || (sd == 2 && o->padding[1] < 0))
        return nbi_why(why, "padding %s is negative",
                       nbi_pair_str(conv_pair(sd, o->padding, one), s, sizeof s));
    if (o->dilation[0] < 0 || (sd == 2 && o->dilation[1] < 0))
        return nbi_why(why, "dilation %s is negative",
                       nbi_pair_str(conv_pair(sd, o->dilation, one), s, sizeof s));
    if (o->groups < 0)
        return nbi_why(why, "groups %d is negative", o->groups);
    if (!o->same)
        return 0;
    /* PyTorch's rule; stride 0 means 1.  Index 0 is conv1d's only one. */
    if ((sd == 2 && o->stride[0] > 1) || o->stride[sd - 1] > 1)
        return nbi_why(why, "padding \"same\" needs stride 1, got stride %s",
                       nbi_pair_str(conv_pair(sd, o->stride, one), s, sizeof s));
    if ((sd == 2 && o->padding[0]) || o->padding[sd - 1])
        return nbi_why(why, "padding \"same\" conflicts with explicit padding %s",
                       nbi_pair_str(conv_pair(sd, o->padding, one), s, sizeof s));
    return 0;
}

/* kh x kw (dilated) does not fit in the padded h x w: says so, as its
 * caller sees it. */
static int conv_too_small(int sd, const conv_geom *g, char *why)
{
    int64_t hp = g->h + g->pt + g->pb, wp = g->w + g->pl + g->pr;
    /* Each <= C kh kw <= INT_MAX, checked before; conv1d's is kw alone. */
    int k[2] = {(int)(sd == 2 ? g->kh : g->kw), (int)g->kw};
    int d[2] = {(int)(sd == 2 ? g->dil_h : g->dil_w), (int)g->dil_w};
    char ks[160], k2[32], ds[32];
    nbi_pair_str(k, k2, sizeof k2);
    snprintf(ks, sizeof ks, "%s", k2);
    if (d[0] > 1 || d[1] > 1) { /* the span: d (k - 1) + 1 */
        int64_t span[2] = {d[0] * (int64_t)(k[0] - 1) + 1, d[1] * (int64_t)(k[1] - 1) + 1};
        nbi_pair_str(d, ds, sizeof ds);
        if (span[0] == span[1])
            snprintf(ks, sizeof ks, "%s with dilation %s (span %" PRId64 ")", k2, ds, span[0]);
        else
            snprintf(ks, sizeof ks, "%s with dilation %s (span [%" PRId64 ", %" PRId64 "])", k2,
                     ds, span[0], span[1]);
    }
    if (sd == 1 && wp != g->w)
        return nbi_why(why, "kernel_size %s is larger than its input of length %" PRId64
                       " padded to %" PRId64, ks, g->w, wp);
    if (sd == 1)
        return nbi_why(why, "kernel_size %s is larger than its input of length %" PRId64, ks,
                       g->w);
    if (hp != g->h || wp != g->w)
        return nbi_why(why, "kernel_size %s is larger than its %" PRId64 "x%" PRId64
                       " input padded to %" PRId64 "x%" PRId64, ks, g->h, g->w, hp, wp);
    return nbi_why(why, "kernel_size %s is larger than its %" PRId64 "x%" PRId64 " input", ks,
                   g->h, g->w);
}

/* Index 0 of conv1d's options is the width's; 0 means 1 (groups too). */
static void conv_strides(int sd, const nb_conv_opts *o, conv_geom *g)
{
    int stride_h = sd == 2 ? o->stride[0] : 1, stride_w = o->stride[sd - 1];
    g->sh = stride_h ? stride_h : 1;
    g->sw = stride_w ? stride_w : 1;
    int dil_h = sd == 2 ? o->dilation[0] : 1, dil_w = o->dilation[sd - 1];
    g->dil_h = dil_h ? dil_h : 1;
    g->dil_w = dil_w ? dil_w : 1;
    g->groups = o->groups ? o->groups : 1;
}

/* C and O divisible by groups, and the weight's C / groups channels. */
static int conv_groups_check(const conv_geom *g, int64_t wc, const char *xs, const char *ws,
                             char *why)
{
    if (g->c % g->groups)
        return nbi_why(why, "in_channels %" PRId64 " is not divisible by groups %" PRId64
                       " (input %s)", g->c, g->groups, xs);
    if (g->o % g->groups)
        return nbi_why(why, "out_channels %" PRId64 " is not divisible by groups %" PRId64
                       " (weight %s)", g->o, g->groups, ws);
    if (wc * g->groups == g->c)
        return 0;
    if (g->groups == 1)
        return nbi_why(why, "input %s has %" PRId64 " channel%s, but in_channels is %" PRId64
                       " (weight %s)", xs, g->c, g->c == 1 ? "" : "s", wc, ws);
    return nbi_why(why, "input %s has %" PRId64 " channels, but weight %s with groups %" PRId64
                   " takes %" PRId64, xs, g->c, ws, g->groups, wc * g->groups);
}

int nbi_conv_shape(int sd, const nbi_shape *x, bool batch, const nbi_shape *w,
                   const nbi_shape *b, const nb_conv_opts *o, conv_geom *gp, nbi_shape *y,
                   char *why)
{
    if (!o)
        o = &conv_defaults;
    char xs[96], ws[96], bs[96];
    nbi_shape_fmt(x, xs, sizeof xs);
    nbi_shape_fmt(w, ws, sizeof ws);
    if (x->ndim != sd + 1 + batch)
        return nbi_why(why, "input %s must be %s", xs,
                       sd == 2 ? (batch ? "[N, C, H, W]" : "[C, H, W]")
                               : (batch ? "[N, C, L]" : "[C, L]"));
    if (w->ndim != sd + 2)
        return nbi_why(why, "weight %s must be %s", ws,
                       sd == 2 ? "[O, C, kh, kw]" : "[O, C, k]");
    /* conv1d is conv2d with H = kh = 1; index 0 of its options is the width's. */
    const int64_t *e = x->d + batch; /* [C, H, W] or [C, L] */
    conv_geom g = {.n = batch ? x->d[0] : 1, .c = e[0], .h = sd == 2 ? e[1] : 1, .w = e[sd],
                   .o = w->d[0], .kh = sd == 2 ? w->d[2] : 1, .kw = w->d[sd + 1],
                   .flip = o->flip, .relu = o->relu};
    if (nbi_conv_opts_check(sd, o, why))
        return -1;
    conv_strides(sd, o, &g);
    if (conv_groups_check(&g, w->d[1], xs, ws, why))
        return -1;
    if (b && (b->ndim != 1 || b->d[0] != g.o))
        return nbi_why(why, "bias %s does not match weight %s: expected [%" PRId64 "]",
                       nbi_shape_fmt(b, bs, sizeof bs), ws, g.o);
    /* the kernel's span, d (k - 1) + 1 (sizes <= INT_MAX, so no overflow) */
    int64_t ekh = g.dil_h * (g.kh - 1) + 1, ekw = g.dil_w * (g.kw - 1) + 1;
    if (o->same) { /* total d (k - 1), the odd zero after, as PyTorch's padding='same' */
        g.pt = (ekh - 1) / 2;
        g.pb = ekh - 1 - g.pt;
        g.pl = (ekw - 1) / 2;
        g.pr = ekw - 1 - g.pl;
    } else {
        g.pt = g.pb = sd == 2 ? o->padding[0] : 0;
        g.pl = g.pr = o->padding[sd - 1];
    }
    /* The GEMM takes int sizes (O rows, C kh kw deep, oh ow wide), and one
     * image's columns must fit in memory. */
    int64_t ckk = nbi_mul(nbi_mul(g.c, g.kh), g.kw);
    if (g.o > INT_MAX || ckk > INT_MAX)
        return nbi_why(why, "input %s and weight %s are too large", xs, ws);
    if (ekh > g.h + g.pt + g.pb || ekw > g.w + g.pl + g.pr)
        return conv_too_small(sd, &g, why);
    g.oh = (g.h + g.pt + g.pb - ekh) / g.sh + 1;
    g.ow = (g.w + g.pl + g.pr - ekw) / g.sw + 1;
    int64_t p = nbi_mul(g.oh, g.ow);
    if (p > INT_MAX || ckk > (int64_t)(SIZE_MAX / sizeof(double)) / p)
        return nbi_why(why, "input %s and weight %s are too large", xs, ws);
    y->ndim = 0;
    if (batch)
        y->d[y->ndim++] = g.n;
    y->d[y->ndim++] = g.o;
    if (sd == 2)
        y->d[y->ndim++] = g.oh;
    y->d[y->ndim++] = g.ow;
    if (gp)
        *gp = g;
    return 0;
}

/* The rule on the tensors' shapes; its message names op. */
static bool conv_shapes(nb_ctx *ctx, const char *op, int sd, const nb_tensor *x,
                        const nb_tensor *w, const nb_tensor *b, const nb_conv_opts *opts,
                        conv_geom *g, nbi_shape *y)
{
    nbi_shape xs = nbi_shape_of(x), ws = nbi_shape_of(w), bs = b ? nbi_shape_of(b) : xs;
    char why[NBI_WHY_SIZE];
    if (nbi_conv_shape(sd, &xs, true, &ws, b ? &bs : NULL, opts, g, y, why) == 0)
        return true;
    nbi_fail(ctx, NB_ERR_ARG, "%s: %s", op, why);
    return false;
}

typedef struct conv_node {
    nbi_node base;
    conv_geom g;
    conv_plan plan; /* backward groups images as the forward did */
    void *cols;     /* the forward's im2col columns of every image, or NULL */
} conv_node;

/* GEMMs narrower than this many columns run well below the machine's
 * speed (measured with bench/train-throughput --ops). */
#define CONV_GEMM_COLS 512
/* Stride-1 layers with at most this many taps (C kh kw) run their forward
 * and dx directly, and dW too up to the second bound: there that beats
 * im2col + GEMM in whole training steps (forward: 1.2-3x up to 16 channels
 * of 3x3, a tie at 32; dx: no col2im, cnn3's second layer's backward 11%
 * faster on AVX-512, a tie on AVX2; dW: up to 6 channels). */
#define CONV_DIRECT_TAPS 144
#define CONV_DIRECT_DW_TAPS 64

static size_t align_elems(size_t n, size_t es)
{
    return (n * es + NBI_ALIGN - 1) / NBI_ALIGN * NBI_ALIGN / es;
}

/* Fills d for a stride-1 layer and returns the scratch one thread needs:
 * the padded image, then the sums (forward) or dY's planes and dx's sums
 * (backward).  Lengths round up to the vectors the loops take at a time,
 * so every read stays in zeroed slack (bounds in the comments). */
static size_t direct_layout(const conv_geom *g, size_t es, direct_geom *d, bool bwd)
{
    /* the forward's sums and dx's take 4 vectors at a time, of 64 bytes on
     * AVX-512 (wide), else 32 (the columns past the outputs are
     * discarded); dW's 32 bytes on every variant: its chains run over the
     * whole length, which must be the same */
    d->wide = nbi_avx512();
    int64_t lanes = (int64_t)((d->wide ? 64 : 32) / es), wlanes = (int64_t)(32 / es);
    int64_t hp = g->h + g->pt + g->pb;
    d->ws = g->w + g->pl + g->pr;
    d->xs = hp * d->ws;
    d->ylen = (g->oh * d->ws + 4 * lanes - 1) / (4 * lanes) * (4 * lanes);
    d->wlen = (g->oh * d->ws + wlanes - 1) / wlanes * wlanes;
    d->xlen = (d->xs + 4 * lanes - 1) / (4 * lanes) * (4 * lanes);
    /* Reads of xp reach (C-1) xs + ylen - 1 + max off < C xs + kw + 4 lanes. */
    d->xpsize = align_elems((size_t)(g->c * d->xs + g->kw + 4 * lanes), es);
    /* dx reads dY at fo + r - off, r < xlen, 0 <= off <= fo. */
    d->fo = (g->kh - 1) * d->ws + g->kw - 1;
    d->gs = d->fo + d->xlen;
    d->gpsize = align_elems((size_t)(g->o * d->gs), es);
    /* taps in the weights' order, as im2col's rows: the same chains */
    for (int64_t i = 0, k = 0; i < g->kh; i++)
        for (int64_t j = 0; j < g->kw; j++, k++) {
            int64_t ki = g->flip ? g->kh - 1 - i : i, kj = g->flip ? g->kw - 1 - j : j;
            d->off[k] = ki * d->ws + kj;
            d->wk[k] = k;
        }
    size_t fwd = align_elems((size_t)(g->o * d->ylen), es);
    size_t back = bwd ? d->gpsize + align_elems((size_t)(g->c * d->xlen), es) : 0;
    return d->xpsize + (fwd > back ? fwd : back);
}

/* Whether the forward sums its taps directly (vector extensions needed):
 * up to CONV_DIRECT_TAPS taps, or on AVX-512 (four outputs at a time) up
 * to CONV_DIRECT_TAPS_512 when at least 3/4 of the sums computed are
 * outputs (ow of ws columns): 1.2-2x the GEMM's speed there, measured
 * with bench/train-throughput --ops.  Either way gives the same bits. */
#define CONV_DIRECT_TAPS_512 576
static int64_t direct_taps = -1; /* nbi_conv_direct_taps's bound, or -1 */
static bool takes_direct(const conv_geom *g)
{
#if defined(__GNUC__)
    int64_t taps = g->c * g->kh * g->kw, ws = g->w + g->pl + g->pr;
    if (g->sh != 1 || g->sw != 1 || g->kh * g->kw > CONV_DIRECT_KK || g->groups > 1 ||
        g->dil_h > 1 || g->dil_w > 1)
        return false;
    if (direct_taps >= 0)
        return taps <= direct_taps;
    return taps <= CONV_DIRECT_TAPS ||
           (nbi_avx512() && taps <= CONV_DIRECT_TAPS_512 && 4 * g->ow >= 3 * ws);
#else
    (void)g;
    return false;
#endif
}

int64_t nbi_conv_direct_taps(int64_t bound)
{
    int64_t old = direct_taps;
    direct_taps = bound;
    return old;
}

/* dW reads every image's columns again.  Keeping the forward's saves
 * building them twice (10-20% of a step) but costs C kh kw / O times the
 * output's memory: keep them when that is at most 4, as for a first layer,
 * and build them again for wide layers (9 MB, for the Keras CNN's second
 * layer at batch 64).  The direct path builds none. */
/* Depthwise convolution (groups = C, one input channel per filter) sums
 * its taps directly, at any stride and dilation, for kernels up to 8x8. */
static bool takes_dwise(const conv_geom *g)
{
    return g->groups > 1 && g->groups == g->c && g->kh * g->kw <= CONV_DWISE_TAPS;
}

static bool keeps_columns(const conv_geom *g)
{
    return g->c * g->kh * g->kw <= 4 * g->o && !takes_direct(g) && !takes_dwise(g);
}

int64_t nbi_conv_kept_elems(const nbi_shape *w, const nb_conv_opts *o, int64_t pixels)
{
    int sd = w->ndim - 2;
    conv_geom g = {.o = w->d[0], .c = w->d[1], .kh = sd == 2 ? w->d[2] : 1, .kw = w->d[sd + 1]};
    conv_strides(sd, o ? o : &conv_defaults, &g);
    g.c *= g.groups; /* the weight holds C / groups */
    return keeps_columns(&g) ? nbi_mul(nbi_mul(g.c * g.kh, g.kw), pixels) : 0;
}

/* One thread per image at most, and one when the work is too small to
 * split; groups of images fill CONV_GEMM_COLS columns, a power of two up
 * to NB_BATCH_GROUP. */
static conv_plan conv_plan_for(const conv_geom *g, nb_dtype dtype)
{
    conv_plan pl;
    int64_t ckk = g->c / g->groups * g->kh * g->kw, p = g->oh * g->ow;
    double macs = (double)g->n * g->o * ckk * p;
    pl.nt = nbi_threads();
    if (pl.nt > g->n)
        pl.nt = (int)g->n;
    if (macs < 2e5 || nbi_in_parallel())
        pl.nt = 1;
    pl.group = 1;
    while (pl.group < NB_BATCH_GROUP && 2 * pl.group * p <= CONV_GEMM_COLS)
        pl.group *= 2;
    size_t es = nb_dtype_size(dtype);
    pl.colsize = align_elems((size_t)(g->groups * ckk * p * pl.group), es);
    /* buf: Y or dY of a group, or the masked dY of one image with relu */
    bool buf = pl.group > 1 || g->relu;
    int64_t ld = p * pl.group, depth = ckk > ld ? ckk : ld;
    depth = depth > g->o ? depth : g->o; /* the forward's, dW's and dx's */
    pl.packat = pl.colsize + (buf ? align_elems((size_t)(g->o * ld), es) : 0);
    pl.scratch = pl.packat + align_elems(nbi_gemm_pack_elems(dtype, depth), es);
    pl.direct = takes_direct(g);
    pl.direct_dw = pl.direct && ckk <= CONV_DIRECT_DW_TAPS;
    pl.direct_dx = pl.direct && ckk <= CONV_DIRECT_TAPS;
    if (pl.direct) {
        size_t need = direct_layout(g, es, &pl.d, pl.direct_dx);
        pl.scratch = pl.direct_dw || need > pl.scratch ? need : pl.scratch;
    }
    pl.dwise = takes_dwise(g);
    if (pl.dwise) {
        pl.group = 1;
        pl.scratch = dwise_layout(g, es, &pl.dw);
    }
    return pl;
}

nb_tensor *nb_conv2d(nb_ctx *ctx, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                     const nb_conv_opts *opts)
{
    nb_tensor *in[3] = {x, w, b};
    int nin = b ? 3 : 2;
    if (!nbi_check_inputs(ctx, "conv2d", nin, in))
        return NULL;
    conv_geom g;
    nbi_shape ys;
    if (!conv_shapes(ctx, "conv2d", 2, x, w, b, opts, &g, &ys))
        return NULL;
    nb_tensor *y = nbi_step_tensor(ctx, x->dtype, ys.ndim, ys.d);
    if (!y)
        return NULL;
    bool record = nbi_needs_grad(ctx, nin, in);
    conv_plan pl = conv_plan_for(&g, x->dtype);
    bool save = record && w->requires_grad && keeps_columns(&g);
    size_t es = nb_dtype_size(x->dtype);
    void *saved = NULL;
    if (save && !(saved = nbi_scratch(ctx, (size_t)(g.n * g.c * g.kh * g.kw * g.oh * g.ow) * es)))
        return NULL;
    void *scratch = nbi_work(ctx, (size_t)pl.nt * pl.scratch * es);
    if (!scratch)
        return NULL;
    const void *bias = b ? b->data : NULL;
    NBI_CALL(x->dtype, conv_fwd, &g, &pl, x->data, w->data, bias, y->data, saved, scratch);
    if (record) {
        conv_node *n = nbi_record(ctx, &nbi_op_conv2d, sizeof *n, y, nin, in);
        if (!n)
            return NULL;
        n->g = g;
        n->plan = pl;
        n->cols = saved;
    }
    return y;
}

static int conv2d_backward(nb_ctx *ctx, nbi_node *node)
{
    const conv_node *cn = (const conv_node *)node;
    const conv_geom *g = &cn->g;
    const conv_plan *pl = &cn->plan;
    nb_tensor *x = node->in[0], *w = node->in[1], *b = node->nin > 2 ? node->in[2] : NULL;
    void *dx = nbi_grad(ctx, x);
    void *dw = nbi_grad(ctx, w);
    void *db = b ? nbi_grad(ctx, b) : NULL;
    if ((x->requires_grad && !dx) || (w->requires_grad && !dw) ||
        (b && b->requires_grad && !db))
        return ctx->status;
    size_t es = nb_dtype_size(x->dtype);
    int64_t nw = dw ? g->o * (g->c / g->groups) * g->kh * g->kw : 0, nb = db ? g->o : 0;
    size_t len = (size_t)(nw + nb);
    void *part = NULL;
    if (len && !(part = nbi_scratch(ctx, (size_t)nbi_batch_groups(g->n) * len * es)))
        return ctx->status;
    void *scratch = nbi_work(ctx, (size_t)pl->nt * pl->scratch * es);
    if (!scratch)
        return ctx->status;
    NBI_CALL(x->dtype, conv_bwd, g, pl, x->data, w->data, node->out->data,
             node->out->grad->data, dx, dw != NULL, db != NULL, cn->cols, scratch, part);
    if (!len)
        return NB_OK;
    int rc = nbi_batch_sum(ctx, "conv2d", x->dtype, g->n, part, len, part);
    if (rc)
        return rc;
    NBI_CALL(x->dtype, conv_add_sums, dw, db, part, nw, nb);
    return NB_OK;
}

const nbi_op nbi_op_conv2d = {"conv2d", conv2d_backward};

/* [N, C, L] as [N, C, 1, L] and [O, C, k] as [O, C, 1, k]: the graph records
 * reshape and conv2d nodes, so conv1d needs no backward of its own. */
nb_tensor *nb_conv1d(nb_ctx *ctx, nb_tensor *x, nb_tensor *w, nb_tensor *b,
                     const nb_conv_opts *opts)
{
    nb_tensor *in[3] = {x, w, b};
    if (!nbi_check_inputs(ctx, "conv1d", b ? 3 : 2, in))
        return NULL;
    conv_geom g;
    nbi_shape ys;
    if (!conv_shapes(ctx, "conv1d", 1, x, w, b, opts, &g, &ys))
        return NULL;
    nb_conv_opts o2 = {{1, (int)g.sw}, {0, opts ? opts->padding[0] : 0},
                       opts && opts->same, opts && opts->flip, opts && opts->relu,
                       (int)g.groups, {1, (int)g.dil_w}};
    int64_t xs[4] = {g.n, g.c, 1, g.w}, ws[4] = {g.o, g.c / g.groups, 1, g.kw};
    nb_tensor *y = nb_conv2d(ctx, nb_reshape(ctx, x, 4, xs), nb_reshape(ctx, w, 4, ws), b, &o2);
    if (!y)
        return NULL;
    return nb_reshape(ctx, y, ys.ndim, ys.d);
}

#endif
