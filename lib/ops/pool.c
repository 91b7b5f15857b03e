/*
 * pool.c - 2-D pooling over [N, C, H, W]: max_pool2d, avg_pool2d and
 * global_avg_pool2d.  Windows follow torch.nn.functional with
 * ceil_mode=False: oh = (H + 2 ph - kh) / sh + 1.  Since the padding is at
 * most half the kernel, every window holds at least one real element, so
 * the kernels walk only the window's part inside the input: max-pool's
 * -inf padding and avg-pool's zero padding never need to be read.
 */
#ifdef T /* ---- kernels in T, named K(...) ------------------------------- */

/* Planes are independent: the kernels split them over the threads.  Within
 * a plane, a row of windows that lie wholly inside the input (all of them
 * without padding) runs as a vectorised loop over the windows; windows cut
 * by the padding take the general path. */

/* max of one window, clipped to the plane; its flat index in *arg.  Compare
 * and select, no branch on the data: the first maximum in row-major order
 * wins, and a NaN wins, as PyTorch. */
static T K(max_window)(const pool_geom *g, const T *xp, int64_t oy, int64_t ox, int32_t *arg)
{
    int64_t y0, y1, x0, x1;
    pool_window(g, oy, ox, &y0, &y1, &x0, &x1);
    T best = xp[y0 * g->w + x0];
    int32_t a = (int32_t)(y0 * g->w + x0);
    for (int64_t iy = y0; iy < y1; iy++)
        for (int64_t ix = x0; ix < x1; ix++) {
            T v = xp[iy * g->w + ix];
            int take = (v > best) | (v != v);
            best = take ? v : best;
            a = take ? (int32_t)(iy * g->w + ix) : a;
        }
    *arg = a;
    return best;
}

/* 2x2 windows ox0 <= ox < ox1 at stride SW: yr[ox] = the max of the
 * window at xp[r0 + ox SW], and ar[ox] its index when WANT_ARG. */
#define MAX2X2_ROW(SW, WANT_ARG)                                              \
    {                                                                         \
    _Pragma("omp simd")                                                       \
    for (int ox = ox0; ox < ox1; ox++) {                                      \
        int c = r0 + ox * (SW);                                               \
        T a = xp[c], b = xp[c + 1], d = xp[c + w], e = xp[c + w + 1];         \
        T best = a;                                                           \
        int32_t arg = c;                                                      \
        int take = (b > best) | (b != b);                                     \
        best = take ? b : best;                                               \
        arg = take ? c + 1 : arg;                                             \
        take = (d > best) | (d != d);                                         \
        best = take ? d : best;                                               \
        arg = take ? c + w : arg;                                             \
        take = (e > best) | (e != e);                                         \
        best = take ? e : best;                                               \
        arg = take ? c + w + 1 : arg;                                         \
        yr[ox] = best;                                                        \
        if (WANT_ARG)                                                         \
            ar[ox] = arg;                                                     \
    }                                                                         \
    }

/* Windows ox0 <= ox < ox1 of output row oy, all inside the plane: yr and ar
 * (NULL: no argmax wanted) receive the row's outputs.  Compiled for the
 * baseline and for AVX2, which AVX-512 runs too: GCC's AVX-512 code for
 * these strided loads is 3 times slower (a maximum is exact: the same
 * values either way). */
NBI_INLINE void K(max_row_body)(const pool_geom *g, const T *restrict xp, int64_t oy, int ox0,
                                int ox1, T *restrict yr, int32_t *restrict ar)
{
    const int w = (int)g->w, sw = (int)g->sw;
    /* Window (oy, ox) starts at r0 + ox sw; r0 itself may lie before the
     * plane when there is padding, so it is only ever an offset. */
    const int r0 = (int)(oy * g->sh - g->ph) * w - (int)g->pw;
    if (g->kh == 2 && g->kw == 2) {
        /* The common case; a literal stride 2 lets the loads be vectors. */
        if (ar && sw == 2)
            MAX2X2_ROW(2, 1)
        else if (ar)
            MAX2X2_ROW(sw, 1)
        else if (sw == 2)
            MAX2X2_ROW(2, 0)
        else
            MAX2X2_ROW(sw, 0)
        return;
    }
    /* Any other window: one vectorised pass per window element, in
     * row-major order, on the row's running maxima. */
#pragma omp simd
    for (int ox = ox0; ox < ox1; ox++)
        yr[ox] = xp[r0 + ox * sw];
    if (ar) {
#pragma omp simd
        for (int ox = ox0; ox < ox1; ox++)
            ar[ox] = r0 + ox * sw;
    }
    for (int ky = 0; ky < (int)g->kh; ky++)
        for (int kx = 0; kx < (int)g->kw; kx++) {
            if (ky == 0 && kx == 0)
                continue;
            const int off = r0 + ky * w + kx;
            if (ar) {
#pragma omp simd
                for (int ox = ox0; ox < ox1; ox++) {
                    T v = xp[off + ox * sw], best = yr[ox];
                    int32_t arg = ar[ox];
                    int take = (v > best) | (v != v);
                    yr[ox] = take ? v : best;
                    ar[ox] = take ? off + ox * sw : arg;
                }
            } else {
#pragma omp simd
                for (int ox = ox0; ox < ox1; ox++) {
                    T v = xp[off + ox * sw], best = yr[ox];
                    yr[ox] = ((v > best) | (v != v)) ? v : best;
                }
            }
        }
}

#undef MAX2X2_ROW

static void K(max_row_base)(const pool_geom *g, const T *restrict xp, int64_t oy, int ox0,
                            int ox1, T *restrict yr, int32_t *restrict ar)
{
    K(max_row_body)(g, xp, oy, ox0, ox1, yr, ar);
}
NBI_AVX2 static void K(max_row_avx2)(const pool_geom *g, const T *restrict xp, int64_t oy,
                                     int ox0, int ox1, T *restrict yr, int32_t *restrict ar)
{
    K(max_row_body)(g, xp, oy, ox0, ox1, yr, ar);
}

/* max_pool2d: y = max over the window;  argmax = its flat index in the
 * plane (argmax may be NULL when no backward will need it). */
static void K(max_pool_fwd)(const pool_geom *g, int64_t planes, const T *x, T *y,
                            int32_t *argmax)
{
    int64_t nout = g->oh * g->ow;
    pool_span s = pool_interior(g);
    /* AVX2 pays from a vector of windows on; on shorter rows its tail loop
     * costs more than it saves */
    bool wide = nbi_avx2() && s.ox1 - s.ox0 >= (int64_t)(32 / sizeof(T));
    void (*max_row)(const pool_geom *, const T *restrict, int64_t, int, int, T *restrict,
                    int32_t *restrict) = wide ? K(max_row_avx2) : K(max_row_base);
    K(max_plane_fn) max_plane = K(max_plane_for)(g);
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (planes > 1 && nbi_par(planes * g->h * g->w))
    for (int64_t p = 0; p < planes; p++) {
        const T *xp = x + p * g->h * g->w;
        T *yp = y + p * nout;
        int32_t *ap = argmax ? argmax + p * nout : NULL;
        if (max_plane) {
            max_plane(g, xp, yp, ap);
            continue;
        }
        for (int64_t oy = 0; oy < g->oh; oy++) {
            T *yr = yp + oy * g->ow;
            int32_t *ar = ap ? ap + oy * g->ow : NULL, a;
            bool inside = oy >= s.oy0 && oy < s.oy1;
            int64_t lo = inside ? s.ox0 : g->ow, hi = inside ? s.ox1 : g->ow;
            for (int64_t ox = 0; ox < lo; ox++) {
                yr[ox] = K(max_window)(g, xp, oy, ox, &a);
                if (ar)
                    ar[ox] = a;
            }
            if (lo < hi)
                max_row(g, xp, oy, (int)lo, (int)hi, yr, ar);
            for (int64_t ox = hi; ox < g->ow; ox++) {
                yr[ox] = K(max_window)(g, xp, oy, ox, &a);
                if (ar)
                    ar[ox] = a;
            }
        }
    }
}

/* max_pool2d: dx[argmax] += dy, plane by plane; a fresh dx (see
 * nbi_grad_fresh) is zeroed a plane at a time, just before, in cache. */
static void K(max_pool_bwd)(const pool_geom *g, int64_t planes, const int32_t *argmax,
                            const T *dy, T *dx, bool fresh)
{
    int64_t nout = g->oh * g->ow;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (planes > 1 && nbi_par(planes * g->h * g->w))
    for (int64_t p = 0; p < planes; p++) {
        T *dxp = dx + p * g->h * g->w;
        const int32_t *ap = argmax + p * nout;
        const T *dyp = dy + p * nout;
        if (fresh)
            memset(dxp, 0, sizeof *dxp * (size_t)(g->h * g->w));
        for (int64_t i = 0; i < nout; i++)
            dxp[ap[i]] += dyp[i];
    }
}

/* avg_pool2d: sum over one window, clipped to the plane, in row-major
 * order from 0 */
static T K(avg_window)(const pool_geom *g, const T *xp, int64_t oy, int64_t ox)
{
    int64_t y0, y1, x0, x1;
    pool_window(g, oy, ox, &y0, &y1, &x0, &x1);
    T acc = 0;
    for (int64_t iy = y0; iy < y1; iy++)
        for (int64_t ix = x0; ix < x1; ix++)
            acc += xp[iy * g->w + ix];
    return acc;
}

/* avg_pool2d: y = sum over the window / (kh kw), padded zeros counted.
 * Inside windows sum in the same order, one vectorised pass per window
 * element. */
static void K(avg_pool_fwd)(const pool_geom *g, int64_t planes, const T *x, T *y)
{
    const T scale = (T)(1.0 / (g->kh * g->kw));
    const int64_t nout = g->oh * g->ow, w = g->w, sw = g->sw;
    pool_span s = pool_interior(g);
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (planes > 1 && nbi_par(planes * g->h * g->w))
    for (int64_t p = 0; p < planes; p++) {
        const T *restrict xp = x + p * g->h * w;
        T *yp = y + p * nout;
        for (int64_t oy = 0; oy < g->oh; oy++) {
            T *restrict yr = yp + oy * g->ow;
            bool inside = oy >= s.oy0 && oy < s.oy1;
            int64_t lo = inside ? s.ox0 : g->ow, hi = inside ? s.ox1 : g->ow;
            for (int64_t ox = 0; ox < lo; ox++)
                yr[ox] = K(avg_window)(g, xp, oy, ox) * scale;
            if (lo < hi) {
                /* an offset: it may lie before the plane when padded */
                const int64_t r0 = (oy * g->sh - g->ph) * w - g->pw;
#pragma omp simd
                for (int64_t ox = lo; ox < hi; ox++)
                    yr[ox] = 0;
                for (int64_t ky = 0; ky < g->kh; ky++)
                    for (int64_t kx = 0; kx < g->kw; kx++) {
                        const int64_t off = r0 + ky * w + kx;
#pragma omp simd
                        for (int64_t ox = lo; ox < hi; ox++)
                            yr[ox] += xp[off + ox * sw];
                    }
#pragma omp simd
                for (int64_t ox = lo; ox < hi; ox++)
                    yr[ox] *= scale;
            }
            for (int64_t ox = hi; ox < g->ow; ox++)
                yr[ox] = K(avg_window)(g, xp, oy, ox) * scale;
        }
    }
}

/* avg_pool2d: dx += dy / (kh kw) over each window; a fresh dx is zeroed
 * plane by plane */
static void K(avg_pool_bwd)(const pool_geom *g, int64_t planes, const T *dy, T *dx,
                            bool fresh)
{
    const T scale = (T)(1.0 / (g->kh * g->kw));
    const int64_t nout = g->oh * g->ow, w = g->w;
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (planes > 1 && nbi_par(planes * g->h * g->w))
    for (int64_t p = 0; p < planes; p++) {
        T *dxp = dx + p * g->h * w;
        const T *dyp = dy + p * nout;
        if (fresh)
            memset(dxp, 0, sizeof *dxp * (size_t)(g->h * w));
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t y0, y1, x0, x1;
                pool_window(g, oy, ox, &y0, &y1, &x0, &x1);
                T d = dyp[oy * g->ow + ox] * scale;
                for (int64_t iy = y0; iy < y1; iy++)
                    for (int64_t ix = x0; ix < x1; ix++)
                        dxp[iy * w + ix] += d;
            }
    }
}

/* global_avg_pool2d: y[p] = mean of plane p (summed in double);
 * dx[p] += dy[p] / (H W) */
static void K(gap_fwd)(int64_t planes, int64_t hw, const T *x, T *y)
{
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (planes > 1 && nbi_par(planes * hw))
    for (int64_t p = 0; p < planes; p++) {
        double acc = 0;
        for (int64_t i = 0; i < hw; i++)
            acc += x[p * hw + i];
        y[p] = (T)(acc / (double)hw);
    }
}
static void K(gap_bwd)(int64_t planes, int64_t hw, const T *dy, T *dx)
{
#pragma omp parallel for num_threads(nbi_threads()) schedule(static) \
    if (planes > 1 && nbi_par(planes * hw))
    for (int64_t p = 0; p < planes; p++) {
        T d = (T)(dy[p] / (double)hw);
        T *restrict dxp = dx + p * hw;
#pragma omp simd
        for (int64_t i = 0; i < hw; i++)
            dxp[i] += d;
    }
}

#else /* ---- builders and backward ----------------------------------------- */

#include "internal.h"

#include <inttypes.h>
#include <math.h>

/* A pooling's sizes, as nbi_pool2d_shape computes them: input plane,
 * output plane, kernel, stride, padding. */
typedef struct nbi_pool_geom {
    int64_t h, w, oh, ow;
    int64_t kh, kw, sh, sw, ph, pw;
} pool_geom;

/* The windows wholly inside the input: rows oy0 <= oy < oy1, columns
 * ox0 <= ox < ox1 (empty ranges possible). */
typedef struct pool_span {
    int64_t oy0, oy1, ox0, ox1;
} pool_span;

/* Window (oy, ox) clipped to the plane: rows [*y0, *y1), columns [*x0, *x1). */
static void pool_window(const pool_geom *g, int64_t oy, int64_t ox, int64_t *y0, int64_t *y1,
                        int64_t *x0, int64_t *x1)
{
    int64_t ya = oy * g->sh - g->ph, xa = ox * g->sw - g->pw;
    *y0 = ya < 0 ? 0 : ya;
    *y1 = ya + g->kh > g->h ? g->h : ya + g->kh;
    *x0 = xa < 0 ? 0 : xa;
    *x1 = xa + g->kw > g->w ? g->w : xa + g->kw;
}

static pool_span pool_interior(const pool_geom *g)
{
    pool_span s;
    nbi_inside_range(g->h, g->kh, g->sh, g->ph, g->oh, &s.oy0, &s.oy1);
    nbi_inside_range(g->w, g->kw, g->sw, g->pw, g->ow, &s.ox0, &s.ox1);
    return s;
}

/* 2x2 windows at stride 2 without padding, a plane at a time: the shape of
 * nearly every CNN's pooling, worth a kernel of its own on AVX-512 (GCC's
 * code for the strided rows of K(max_row_body) is slow there).  Returns
 * NULL where there is none: other windows, other types, other CPUs. */
typedef void (*max_plane_fn_f32)(const pool_geom *g, const float *xp, float *yp, int32_t *ap);
typedef void (*max_plane_fn_f64)(const pool_geom *g, const double *xp, double *yp,
                                 int32_t *ap);
static bool is_2x2_stride_2(const pool_geom *g)
{
    return g->kh == 2 && g->kw == 2 && g->sh == 2 && g->sw == 2 && g->ph == 0 && g->pw == 0;
}

#if defined(__GNUC__) && defined(__x86_64__)
#include <immintrin.h>

/* Sixteen windows at a time: each row's 32 inputs split into their even
 * and odd columns, then MAX2X2_ROW's compare and select (the same values
 * and indices: the first maximum wins, a NaN wins); masks take the rest. */
NBI_AVX512 static void max2x2_plane_avx512(const pool_geom *g, const float *xp, float *yp,
                                           int32_t *ap)
{
    const int32_t w = (int32_t)g->w, ow = (int32_t)g->ow;
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26,
                                           28, 30);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    for (int32_t oy = 0; oy < (int32_t)g->oh; oy++) {
        const float *r0 = xp + (int64_t)2 * oy * w, *r1 = r0 + w;
        for (int32_t ox = 0; ox < ow; ox += 16) {
            int32_t n = ow - ox < 16 ? ow - ox : 16, n2 = 2 * n;
            __mmask16 m = (__mmask16)((1u << n) - 1);
            __mmask16 mlo = (__mmask16)(n2 >= 16 ? 0xffffu : (1u << n2) - 1);
            __mmask16 mhi = (__mmask16)(n2 > 16 ? (1u << (n2 - 16)) - 1 : 0);
            __m512 u0 = _mm512_maskz_loadu_ps(mlo, r0 + 2 * ox);
            __m512 u1 = _mm512_maskz_loadu_ps(mhi, r0 + 2 * ox + 16);
            __m512 v0 = _mm512_maskz_loadu_ps(mlo, r1 + 2 * ox);
            __m512 v1 = _mm512_maskz_loadu_ps(mhi, r1 + 2 * ox + 16);
            __m512 a = _mm512_permutex2var_ps(u0, even, u1), b = _mm512_permutex2var_ps(u0, odd, u1);
            __m512 d = _mm512_permutex2var_ps(v0, even, v1), e = _mm512_permutex2var_ps(v0, odd, v1);
            __m512i c = _mm512_add_epi32(_mm512_set1_epi32(2 * oy * w + 2 * ox), even);
            __m512 best = a;
            __m512i arg = c;
            __mmask16 t = _mm512_cmp_ps_mask(b, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q);
            best = _mm512_mask_blend_ps(t, best, b);
            arg = _mm512_mask_blend_epi32(t, arg, _mm512_add_epi32(c, _mm512_set1_epi32(1)));
            t = _mm512_cmp_ps_mask(d, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(d, d, _CMP_UNORD_Q);
            best = _mm512_mask_blend_ps(t, best, d);
            arg = _mm512_mask_blend_epi32(t, arg, _mm512_add_epi32(c, _mm512_set1_epi32(w)));
            t = _mm512_cmp_ps_mask(e, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(e, e, _CMP_UNORD_Q);
            best = _mm512_mask_blend_ps(t, best, e);
            arg = _mm512_mask_blend_epi32(t, arg, _mm512_add_epi32(c, _mm512_set1_epi32(w + 1)));
            _mm512_mask_storeu_ps(yp + oy * ow + ox, m, best);
            if (ap)
                _mm512_mask_storeu_epi32(ap + oy * ow + ox, m, arg);
        }
    }
}
#endif

static max_plane_fn_f32 max_plane_for_f32(const pool_geom *g)
{
#if defined(__GNUC__) && defined(__x86_64__)
    if (is_2x2_stride_2(g) && nbi_avx512())
        return max2x2_plane_avx512;
#endif
    (void)g;
    return NULL;
}
static max_plane_fn_f64 max_plane_for_f64(const pool_geom *g)
{
    (void)g;
    return NULL;
}

#define T float
#define K(f) f##_f32
#include "pool.c"
#undef T
#undef K
#define T double
#define K(f) f##_f64
#include "pool.c"
#undef T
#undef K

typedef struct pool_node {
    nbi_node base;
    pool_geom g;
    int32_t *argmax; /* max_pool2d: one plane index per output element */
} pool_node;

/* ---- the shape rules ------------------------------------------------------ */

int nbi_pool2d_opts_check(const nb_pool_opts *o, char *why)
{
    char s[32], k[32];
    if (!o)
        return nbi_why(why, "options are NULL (kernel_size is required)");
    if (o->kernel[0] < 1 || o->kernel[1] < 1)
        return nbi_why(why, "kernel_size %s must be at least 1",
                       nbi_pair_str(o->kernel, k, sizeof k));
    if (o->stride[0] < 0 || o->stride[1] < 0)
        return nbi_why(why, "stride %s is negative", nbi_pair_str(o->stride, s, sizeof s));
    if (o->padding[0] < 0 || o->padding[1] < 0)
        return nbi_why(why, "padding %s is negative", nbi_pair_str(o->padding, s, sizeof s));
    /* PyTorch's rule; it also keeps every window over some real element. */
    if (o->padding[0] > o->kernel[0] / 2 || o->padding[1] > o->kernel[1] / 2)
        return nbi_why(why, "padding %s is more than half of kernel_size %s",
                       nbi_pair_str(o->padding, s, sizeof s),
                       nbi_pair_str(o->kernel, k, sizeof k));
    return 0;
}

int nbi_pool2d_shape(const nbi_op *op, const nbi_shape *x, bool batch, const nb_pool_opts *o,
                     pool_geom *gp, nbi_shape *y, char *why)
{
    char xs[96], k[32];
    nbi_shape_fmt(x, xs, sizeof xs);
    if (x->ndim != 3 + batch)
        return nbi_why(why, "input %s must be %s", xs, batch ? "[N, C, H, W]" : "[C, H, W]");
    if (nbi_pool2d_opts_check(o, why))
        return -1;
    const int64_t *e = x->d + batch; /* [C, H, W] */
    pool_geom g = {.h = e[1], .w = e[2], .kh = o->kernel[0], .kw = o->kernel[1],
                   .sh = o->stride[0] ? o->stride[0] : o->kernel[0],
                   .sw = o->stride[1] ? o->stride[1] : o->kernel[1],
                   .ph = o->padding[0], .pw = o->padding[1]};
    int64_t hp = g.h + 2 * g.ph, wp = g.w + 2 * g.pw;
    if (g.kh > hp || g.kw > wp) {
        nbi_pair_str(o->kernel, k, sizeof k);
        if (hp != g.h || wp != g.w)
            return nbi_why(why, "kernel_size %s is larger than its %" PRId64 "x%" PRId64
                           " input padded to %" PRId64 "x%" PRId64, k, g.h, g.w, hp, wp);
        return nbi_why(why, "kernel_size %s is larger than its %" PRId64 "x%" PRId64 " input",
                       k, g.h, g.w);
    }
    if (op == &nbi_op_max_pool2d && nbi_mul(g.h, g.w) > INT32_MAX) /* argmax is an int32 */
        return nbi_why(why, "input %s has planes over %d elements", xs, INT32_MAX);
    g.oh = (hp - g.kh) / g.sh + 1;
    g.ow = (wp - g.kw) / g.sw + 1;
    *y = *x;
    y->d[batch + 1] = g.oh;
    y->d[batch + 2] = g.ow;
    if (gp)
        *gp = g;
    return 0;
}

int nbi_global_avg_pool2d_shape(const nbi_shape *x, bool batch, nbi_shape *y, char *why)
{
    char xs[96];
    if (x->ndim != 3 + batch)
        return nbi_why(why, "input %s must be %s", nbi_shape_fmt(x, xs, sizeof xs),
                       batch ? "[N, C, H, W]" : "[C, H, W]");
    *y = *x;
    y->ndim = 1 + batch; /* [N, C] */
    return 0;
}

/* ---- max_pool2d, avg_pool2d ------------------------------------------------ */

static nb_tensor *pool2d(nb_ctx *ctx, const nbi_op *op, nb_tensor *x, const nb_pool_opts *opts)
{
    const char *name = op->name;
    if (!nbi_check_inputs(ctx, name, 1, &x))
        return NULL;
    nbi_shape xs = nbi_shape_of(x), ys;
    pool_geom g;
    char why[NBI_WHY_SIZE];
    if (nbi_pool2d_shape(op, &xs, true, opts, &g, &ys, why))
        return nbi_fail_null(ctx, NB_ERR_ARG, "%s: %s", name, why);
    nb_tensor *y = nbi_step_tensor(ctx, x->dtype, ys.ndim, ys.d);
    if (!y)
        return NULL;
    bool record = nbi_needs_grad(ctx, 1, &x);
    int32_t *argmax = NULL;
    if (record && op == &nbi_op_max_pool2d) {
        argmax = nbi_scratch(ctx, sizeof *argmax * (size_t)y->numel);
        if (!argmax)
            return NULL;
    }
    int64_t planes = x->shape[0] * x->shape[1];
    if (op == &nbi_op_max_pool2d)
        NBI_CALL(x->dtype, max_pool_fwd, &g, planes, x->data, y->data, argmax);
    else
        NBI_CALL(x->dtype, avg_pool_fwd, &g, planes, x->data, y->data);
    if (record) {
        pool_node *n = nbi_record(ctx, op, sizeof *n, y, 1, &x);
        if (!n)
            return NULL;
        n->g = g;
        n->argmax = argmax;
    }
    return y;
}

static int pool2d_backward(nb_ctx *ctx, nbi_node *node)
{
    pool_node *n = (pool_node *)node;
    nb_tensor *x = node->in[0];
    bool fresh;
    void *dx = nbi_grad_fresh(ctx, x, &fresh);
    if (!dx)
        return ctx->status;
    int64_t planes = x->shape[0] * x->shape[1];
    if (node->op == &nbi_op_max_pool2d)
        NBI_CALL(x->dtype, max_pool_bwd, &n->g, planes, n->argmax, node->out->grad->data, dx,
                 fresh);
    else
        NBI_CALL(x->dtype, avg_pool_bwd, &n->g, planes, node->out->grad->data, dx, fresh);
    return NB_OK;
}

const nbi_op nbi_op_max_pool2d = {"max_pool2d", pool2d_backward};
const nbi_op nbi_op_avg_pool2d = {"avg_pool2d", pool2d_backward};

nb_tensor *nb_max_pool2d(nb_ctx *ctx, nb_tensor *x, const nb_pool_opts *opts)
{
    return pool2d(ctx, &nbi_op_max_pool2d, x, opts);
}

nb_tensor *nb_avg_pool2d(nb_ctx *ctx, nb_tensor *x, const nb_pool_opts *opts)
{
    return pool2d(ctx, &nbi_op_avg_pool2d, x, opts);
}

/* ---- global_avg_pool2d: [N, C, H, W] -> [N, C] ------------------------- */

nb_tensor *nb_global_avg_pool2d(nb_ctx *ctx, nb_tensor *x)
{
    if (!nbi_check_inputs(ctx, "global_avg_pool2d", 1, &x))
        return NULL;
    nbi_shape xs = nbi_shape_of(x), ys;
    char why[NBI_WHY_SIZE];
    if (nbi_global_avg_pool2d_shape(&xs, true, &ys, why))
        return nbi_fail_null(ctx, NB_ERR_ARG, "global_avg_pool2d: %s", why);
    nb_tensor *y = nbi_step_tensor(ctx, x->dtype, ys.ndim, ys.d);
    if (!y)
        return NULL;
    NBI_CALL(x->dtype, gap_fwd, y->numel, x->shape[2] * x->shape[3], x->data, y->data);
    if (nbi_needs_grad(ctx, 1, &x) &&
        !nbi_record(ctx, &nbi_op_global_avg_pool2d, sizeof(nbi_node), y, 1, &x))
        return NULL;
    return y;
}

static int gap_backward(nb_ctx *ctx, nbi_node *node)
{
    nb_tensor *x = node->in[0];
    void *dx = nbi_grad(ctx, x);
    if (!dx)
        return ctx->status;
    NBI_CALL(x->dtype, gap_bwd, node->out->numel, x->shape[2] * x->shape[3],
             node->out->grad->data, dx);
    return NB_OK;
}

const nbi_op nbi_op_global_avg_pool2d = {"global_avg_pool2d", gap_backward};

#endif
