/*
 * conv-depthwise.h - depthwise conv2d (groups = C, O = C m): the taps summed
 * straight from a channel's phase planes (dwise_geom in conv.c), at any
 * stride and dilation: the forward, dx, and dW's and db's sums over a group
 * of the batch.  Included by conv.c once per CPU variant (cpu-variants.h)
 * for each T; the plain reference twin is in tests/test_fast.c.
 *
 * The chains, the same on every variant (fused multiply-adds on AVX2 and
 * AVX-512, a product then an add on the baseline):
 *   y:  each output one chain from its bias over the taps in the weight's
 *       order, the padding's zeros included;
 *   dx: each input pixel one chain over (m, tap) of w dY, outputs only;
 *   dW, db: lane l of a group's sum takes the outputs q = oy wq + ox with
 *       q % lanes = l (lanes: 32 bytes of T), image by image, then the
 *       lanes add up in a tree.
 */

typedef T K(dvec) __attribute__((vector_size(NBI_VBYTES)));
typedef T K(lvec) __attribute__((vector_size(32)));
#define DW_LOAD(v, p) memcpy(&(v), (p), sizeof(v))
#define DW_STORE(p, v) memcpy((p), &(v), sizeof(v))

ATTR static int64_t K(dwise_offsets)(const conv_geom *g, const dwise_geom *d, int64_t *off)
{
    int64_t khw = g->kh * g->kw;
    for (int64_t k = 0; k < khw; k++)
        off[k] = dwise_offset(g, d, k);
    return khw;
}

/* A stride-2 split and merge, in vectors of W bytes (the variant's, "wide", then
 * 16, "narrow", for what is left of a row): ev picks a pair of vectors' even
 * elements, od their odd ones; lo and hi interleave two vectors' first
 * halves and their second halves. */
#define DW_SPLIT2(W, S)                                                                        \
    typedef T K(sv##S) __attribute__((vector_size(W)));                                       \
    typedef __typeof__((K(sv##S)){0} < (K(sv##S)){0}) K(sm##S);                               \
    ATTR static int64_t K(split2_##S)(const T *src, int64_t n, T *ev, T *od)                  \
    {                                                                                         \
        enum { L = W / sizeof(T) };                                                           \
        K(sm##S) me, mo;                                                                      \
        for (int i = 0; i < L; i++)                                                           \
            me[i] = 2 * i, mo[i] = 2 * i + 1;                                                 \
        int64_t t = 0;                                                                        \
        for (; 2 * t + 2 * L <= n; t += L) {                                                  \
            K(sv##S) a, b, e, o;                                                              \
            DW_LOAD(a, src + 2 * t);                                                          \
            DW_LOAD(b, src + 2 * t + L);                                                      \
            e = __builtin_shuffle(a, b, me);                                                  \
            o = __builtin_shuffle(a, b, mo);                                                  \
            DW_STORE(ev + t, e);                                                              \
            DW_STORE(od + t, o);                                                              \
        }                                                                                     \
        return t;                                                                             \
    }                                                                                         \
    ATTR static int64_t K(merge2_##S)(const T *ev, const T *od, int64_t n, T *dst)            \
    {                                                                                         \
        enum { L = W / sizeof(T) };                                                           \
        K(sm##S) ml, mh;                                                                      \
        for (int i = 0; i < L; i++)                                                           \
            ml[i] = i / 2 + (i % 2) * L, mh[i] = L / 2 + i / 2 + (i % 2) * L;                 \
        int64_t t = 0;                                                                        \
        for (; 2 * t + 2 * L <= n; t += L) {                                                  \
            K(sv##S) e, o, a, b;                                                              \
            DW_LOAD(e, ev + t);                                                               \
            DW_LOAD(o, od + t);                                                               \
            DW_LOAD(a, dst + 2 * t);                                                          \
            DW_LOAD(b, dst + 2 * t + L);                                                      \
            a += __builtin_shuffle(e, o, ml);                                                 \
            b += __builtin_shuffle(e, o, mh);                                                 \
            DW_STORE(dst + 2 * t, a);                                                         \
            DW_STORE(dst + 2 * t + L, b);                                                     \
        }                                                                                     \
        return t;                                                                             \
    }
DW_SPLIT2(NBI_VBYTES, wide)
#if NBI_VBYTES > 16
DW_SPLIT2(16, narrow)
#endif
#undef DW_SPLIT2

/* ev[t] = src[2t], od[t] = src[2t + 1] for the n elements of src. */
ATTR static void K(dwise_split2)(const T *src, int64_t n, T *ev, T *od)
{
    int64_t t = K(split2_wide)(src, n, ev, od);
#if NBI_VBYTES > 16
    t += K(split2_narrow)(src + 2 * t, n - 2 * t, ev + t, od + t);
#endif
    for (; 2 * t + 1 < n; t++) {
        ev[t] = src[2 * t];
        od[t] = src[2 * t + 1];
    }
    if (2 * t < n)
        ev[t] = src[2 * t];
}

/* dst[2t] += ev[t], dst[2t + 1] += od[t] for the n elements of dst. */
ATTR static void K(dwise_merge2)(const T *ev, const T *od, int64_t n, T *dst)
{
    int64_t t = K(merge2_wide)(ev, od, n, dst);
#if NBI_VBYTES > 16
    t += K(merge2_narrow)(ev + t, od + t, n - 2 * t, dst + 2 * t);
#endif
    for (; 2 * t + 1 < n; t++) {
        dst[2 * t] += ev[t];
        dst[2 * t + 1] += od[t];
    }
    if (2 * t < n)
        dst[2 * t] += ev[t];
}

/* Channel image xc [h, w] into the interior of its phase planes pp (the
 * padding stays as it is: zeros). */
ATTR static void K(dwise_planes)(const conv_geom *g, const dwise_geom *d, const T *xc, T *pp)
{
    int64_t sh = g->sh, sw = g->sw;
    int64_t ry = g->pt % sh, ty = g->pt / sh; /* padded row py: its phase and its row there */
    for (int64_t iy = 0; iy < g->h; iy++, ry = ry + 1 < sh ? ry + 1 : 0, ty += ry == 0) {
        T *row = pp + ry * sw * d->ps + ty * d->wq;
        const T *src = xc + iy * g->w;
        if (sw == 1) {
            memcpy(row + g->pl, src, (size_t)g->w * sizeof(T));
            continue;
        }
        if (sw == 2) { /* ix even to one plane, odd to the other */
            int64_t p0 = g->pl, p1 = g->pl + 1;
            K(dwise_split2)(src, g->w, row + p0 % 2 * d->ps + p0 / 2, row + p1 % 2 * d->ps + p1 / 2);
            continue;
        }
        for (int64_t r = 0; r < sw && r < g->w; r++) { /* the columns ix = r mod sw */
            int64_t px = r + g->pl;
            T *dst = row + px % sw * d->ps + px / sw;
            for (int64_t ix = r; ix < g->w; ix += sw)
                *dst++ = src[ix];
        }
    }
}

/* dxc [h, w] += the interior of the phase planes dpp. */
ATTR static void K(dwise_unplanes)(const conv_geom *g, const dwise_geom *d, const T *dpp, T *dxc)
{
    int64_t sh = g->sh, sw = g->sw;
    int64_t ry = g->pt % sh, ty = g->pt / sh;
    for (int64_t iy = 0; iy < g->h; iy++, ry = ry + 1 < sh ? ry + 1 : 0, ty += ry == 0) {
        const T *row = dpp + ry * sw * d->ps + ty * d->wq;
        T *dst = dxc + iy * g->w;
        if (sw == 1) {
            const T *src = row + g->pl;
#pragma omp simd
            for (int64_t ix = 0; ix < g->w; ix++)
                dst[ix] += src[ix];
            continue;
        }
        if (sw == 2) {
            int64_t p0 = g->pl, p1 = g->pl + 1;
            K(dwise_merge2)(row + p0 % 2 * d->ps + p0 / 2, row + p1 % 2 * d->ps + p1 / 2, g->w, dst);
            continue;
        }
        for (int64_t r = 0; r < sw && r < g->w; r++) {
            int64_t px = r + g->pl;
            const T *src = row + px % sw * d->ps + px / sw;
            for (int64_t ix = r; ix < g->w; ix += sw)
                dst[ix] += *src++;
        }
    }
}

/* out[q] = init + sum_k w[k] pp[q + off[k]] for q < len (a multiple of
 * the vector), eight vectors at a time: eight chains in flight.  The sums
 * past an output row's ow columns read what no output reads; they are
 * dropped. */
ATTR static void K(dwise_flat)(const T *pp, const int64_t *off, int64_t khw, const T *w, T init,
                               T *out, int64_t len)
{
    typedef K(dvec) V;
    enum { L = NBI_VBYTES / sizeof(T) };
    V b = init - (V){0}; /* init in every lane, -0 kept */
    int64_t q = 0;
    for (; q + 8 * L <= len; q += 8 * L) {
        V a0 = b, a1 = b, a2 = b, a3 = b, a4 = b, a5 = b, a6 = b, a7 = b;
        for (int64_t k = 0; k < khw; k++) {
            const T *src = pp + off[k] + q;
            T u = w[k];
            V v0, v1, v2, v3, v4, v5, v6, v7;
            DW_LOAD(v0, src), DW_LOAD(v1, src + L), DW_LOAD(v2, src + 2 * L);
            DW_LOAD(v3, src + 3 * L), DW_LOAD(v4, src + 4 * L), DW_LOAD(v5, src + 5 * L);
            DW_LOAD(v6, src + 6 * L), DW_LOAD(v7, src + 7 * L);
            a0 += u * v0, a1 += u * v1, a2 += u * v2, a3 += u * v3;
            a4 += u * v4, a5 += u * v5, a6 += u * v6, a7 += u * v7;
        }
        T *o = out + q;
        DW_STORE(o, a0), DW_STORE(o + L, a1), DW_STORE(o + 2 * L, a2), DW_STORE(o + 3 * L, a3);
        DW_STORE(o + 4 * L, a4), DW_STORE(o + 5 * L, a5), DW_STORE(o + 6 * L, a6);
        DW_STORE(o + 7 * L, a7);
    }
    for (; q + 4 * L <= len; q += 4 * L) { /* short planes: four chains */
        V a0 = b, a1 = b, a2 = b, a3 = b;
        for (int64_t k = 0; k < khw; k++) {
            const T *src = pp + off[k] + q;
            T u = w[k];
            V v0, v1, v2, v3;
            DW_LOAD(v0, src), DW_LOAD(v1, src + L), DW_LOAD(v2, src + 2 * L);
            DW_LOAD(v3, src + 3 * L);
            a0 += u * v0, a1 += u * v1, a2 += u * v2, a3 += u * v3;
        }
        T *o = out + q;
        DW_STORE(o, a0), DW_STORE(o + L, a1), DW_STORE(o + 2 * L, a2), DW_STORE(o + 3 * L, a3);
    }
    for (; q < len; q += L) {
        V a = b;
        for (int64_t k = 0; k < khw; k++) {
            V v;
            DW_LOAD(v, pp + off[k] + q);
            a += w[k] * v;
        }
        DW_STORE(out + q, a);
    }
}

/* Images [lo, hi): y = (max(0, .) of) the flat sums' valid columns.
 * Scratch: the planes (zeroed here once), then the sums. */
ATTR static void K(dwise_fwd)(const conv_geom *g, const dwise_geom *d, int64_t lo, int64_t hi,
                              const T *x, const T *w, const T *b, T *y, T *scr)
{
    T *pp = scr, *sums = scr + d->sums;
    int64_t off[CONV_DWISE_TAPS], khw = K(dwise_offsets)(g, d, off);
    int64_t m = g->o / g->c, hw = g->h * g->w, p = g->oh * g->ow;
    memset(pp, 0, d->ppsize * sizeof(T));
    for (int64_t n = lo; n < hi; n++)
        for (int64_t c = 0; c < g->c; c++) {
            K(dwise_planes)(g, d, x + (n * g->c + c) * hw, pp);
            for (int64_t oc = c * m; oc < (c + 1) * m; oc++) {
                K(dwise_flat)(pp, off, khw, w + oc * khw, b ? b[oc] : 0, sums, d->len);
                T *yo = y + (n * g->o + oc) * p;
                for (int64_t oy = 0; oy < g->oh; oy++) {
                    T *dst = yo + oy * g->ow;
                    const T *src = sums + oy * d->wq;
                    if (g->relu) {
#pragma omp simd
                        for (int64_t ox = 0; ox < g->ow; ox++) {
                            T v = src[ox];
                            dst[ox] = v <= 0 ? 0 : v;
                        }
                    } else
                        memcpy(dst, src, (size_t)g->ow * sizeof(T));
                }
            }
        }
}

/* Whether all n values are finite (v - v is 0 for them, NaN otherwise). */
ATTR static bool K(dwise_finite)(const T *v, int64_t n)
{
    int bad = 0;
#pragma omp simd reduction(| : bad)
    for (int64_t i = 0; i < n; i++)
        bad |= !(v[i] - v[i] == 0);
    return !bad;
}

/* dY of output plane `at` (times [not y <= 0] with relu) into the flat
 * plane gq at q = oy wq + ox: its other columns stay zero. */
ATTR static void K(dwise_gq)(const conv_geom *g, const dwise_geom *d, const T *y, const T *dy,
                             int64_t at, T *gq)
{
    for (int64_t oy = 0; oy < g->oh; oy++) {
        const T *src = dy + at + oy * g->ow, *yv = y + at + oy * g->ow;
        T *dst = gq + oy * d->wq;
        if (!g->relu) {
            memcpy(dst, src, (size_t)g->ow * sizeof(T));
            continue;
        }
#pragma omp simd
        for (int64_t ox = 0; ox < g->ow; ox++) {
            T v = src[ox];
            dst[ox] = yv[ox] <= 0 ? 0 : v;
        }
    }
}

/* dpp[off[k] + q] += w[k] gq[q], tap by tap.  With finite weights over the
 * whole flat plane: the zeros of its dropped columns add w 0 = 0, which
 * changes no sum (none is ever -0).  Otherwise over the outputs only, as
 * PyTorch, where an infinite weight meets no padding. */
ATTR static void K(dwise_dx_taps)(const conv_geom *g, const dwise_geom *d, const int64_t *off,
                                  int64_t khw, const T *w, const T *gq, T *dpp)
{
    bool flat = K(dwise_finite)(w, khw);
    int64_t n = g->oh * d->wq;
    for (int64_t k = 0; k < khw; k++) {
        T u = w[k], *dst = dpp + off[k];
        if (flat) {
#pragma omp simd
            for (int64_t q = 0; q < n; q++)
                dst[q] += u * gq[q];
            continue;
        }
        for (int64_t oy = 0; oy < g->oh; oy++) {
            T *dr = dst + oy * d->wq;
            const T *gr = gq + oy * d->wq;
#pragma omp simd
            for (int64_t ox = 0; ox < g->ow; ox++)
                dr[ox] += u * gr[ox];
        }
    }
}

/* Images [lo, hi):  dx[c] += sum_{m, tap} w[c m + m'][tap] dY[c m + m'] placed
 * where the tap reads, summed in dx's phase planes dpp. */
ATTR static void K(dwise_dx)(const conv_geom *g, const dwise_geom *d, int64_t lo, int64_t hi,
                             const T *w, const T *y, const T *dy, T *dx, T *scr)
{
    T *dpp = scr + d->dpp, *gq = scr + d->gq;
    int64_t off[CONV_DWISE_TAPS], khw = K(dwise_offsets)(g, d, off);
    int64_t m = g->o / g->c, hw = g->h * g->w, p = g->oh * g->ow;
    memset(gq, 0, (size_t)d->len * sizeof(T));
    for (int64_t n = lo; n < hi; n++)
        for (int64_t c = 0; c < g->c; c++) {
            memset(dpp, 0, d->ppsize * sizeof(T));
            for (int64_t oc = c * m; oc < (c + 1) * m; oc++) {
                K(dwise_gq)(g, d, y, dy, (n * g->o + oc) * p, gq);
                K(dwise_dx_taps)(g, d, off, khw, w + oc * khw, gq, dpp);
            }
            K(dwise_unplanes)(g, d, dpp, dx + (n * g->c + c) * hw);
        }
}

/* r[j] (lanes) += g[t] s[j][t] for t < n, j < nk <= 8: each load of g feeds
 * nk chains.  The last vector's lanes past n add 0 * 0, which leaves a
 * sum as it is (no sum of these is ever -0).  Inlined with nk a constant. */
ATTR NBI_INLINE void K(dwise_dots)(const T *gv, const T *const *s, K(lvec) *r, int nk, int64_t n)
{
    typedef K(lvec) V;
    enum { L = 32 / sizeof(T) };
    V a[8];
    for (int j = 0; j < nk; j++)
        a[j] = r[j];
    int64_t t = 0;
    for (; t + L <= n; t += L) {
        V u, v;
        DW_LOAD(u, gv + t);
        for (int j = 0; j < nk; j++) {
            DW_LOAD(v, s[j] + t);
            a[j] += u * v;
        }
    }
    if (t < n) {
        V u = {0};
        memcpy(&u, gv + t, (size_t)(n - t) * sizeof(T));
        for (int j = 0; j < nk; j++) {
            V v = {0};
            memcpy(&v, s[j] + t, (size_t)(n - t) * sizeof(T));
            a[j] += u * v;
        }
    }
    for (int j = 0; j < nk; j++)
        r[j] = a[j];
}

/* acc[j] (lanes) += the lane sums of g s[j] over n, j < nk: in chunks of
 * near-equal size, up to 8 taps each. */
ATTR static void K(dwise_lane_dots)(const T *gv, const T *const *s, T *const *acc, int nk,
                                    int64_t n)
{
    for (int j0 = 0; j0 < nk;) {
        int left = nk - j0, chunks = (left + 7) / 8, nj = (left + chunks - 1) / chunks;
        K(lvec) r[8];
        for (int j = 0; j < nj; j++)
            DW_LOAD(r[j], acc[j0 + j]);
        switch (nj) {
#define DW_CASE(c)                                                                            \
    case c:                                                                                   \
        K(dwise_dots)(gv, s + j0, r, c, n);                                                   \
        break;
            DW_CASE(1) DW_CASE(2) DW_CASE(3) DW_CASE(4) DW_CASE(5) DW_CASE(6) DW_CASE(7)
            DW_CASE(8)
#undef DW_CASE
        }
        for (int j = 0; j < nj; j++)
            DW_STORE(acc[j0 + j], r[j]);
        j0 += nj;
    }
}

/* The lanes of a sum added in a tree: lane j takes lane j + s for s =
 * lanes / 2, ..., 1. */
ATTR static T K(dwise_lane_total)(T *a)
{
    for (int s = 32 / sizeof(T) / 2; s >= 1; s /= 2)
        for (int j = 0; j < s; j++)
            a[j] += a[j + s];
    return a[0];
}

/* dW's lanes over the outputs only, for a channel holding a value that is
 * not finite (the flat sums would multiply it by a dropped column's zero):
 * the same lane of each output, so the same chains. */
ATTR static void K(dwise_dw_outputs)(const conv_geom *g, const dwise_geom *d, const T *gq,
                                     const T *const *cols, T *const *acc, int nk)
{
    enum { L = 32 / sizeof(T) };
    for (int j = 0; j < nk; j++)
        for (int64_t oy = 0; oy < g->oh; oy++)
            for (int64_t ox = 0; ox < g->ow; ox++) {
                int64_t q = oy * d->wq + ox;
                acc[j][q % L] += gq[q] * cols[j][q];
            }
}

/* Images [lo, hi) of one group of the batch:  dw[o][tap] = sum_{n, q}
 * dY[n][o][q] x[n][c][q at tap], db[o] = sum_{n, q} dY[n][o][q] (either may
 * be NULL), o = c m + m', over the flat index q = oy wq + ox of the
 * outputs, lane q % lanes; db is a tap whose column is ones.  Scratch as
 * dwise_layout lays it out. */
ATTR static void K(dwise_sums)(const conv_geom *g, const dwise_geom *d, int64_t lo, int64_t hi,
                               const T *x, const T *y, const T *dy, T *dw, T *db, T *scr)
{
    enum { L = 32 / sizeof(T) };
    T *pp = scr, *ones = scr + d->ones, *gq = scr + d->gq;
    T *acc = scr + d->acc, *accb = acc + g->o * g->kh * g->kw * L;
    int64_t off[CONV_DWISE_TAPS], khw = K(dwise_offsets)(g, d, off);
    int64_t m = g->o / g->c, hw = g->h * g->w, p = g->oh * g->ow;
    memset(acc, 0, (size_t)((g->o * khw + g->o) * L) * sizeof(T));
    memset(gq, 0, (size_t)d->len * sizeof(T));
    if (dw)
        memset(pp, 0, d->ppsize * sizeof(T));
    for (int64_t q = 0; q < d->len; q++)
        ones[q] = 1;
    const T *cols[CONV_DWISE_TAPS + 1];
    T *accs[CONV_DWISE_TAPS + 1];
    for (int64_t n = lo; n < hi; n++)
        for (int64_t c = 0; c < g->c; c++) {
            const T *xc = x + (n * g->c + c) * hw;
            bool finite = true;
            if (dw) {
                K(dwise_planes)(g, d, xc, pp);
                finite = K(dwise_finite)(xc, hw);
            }
            for (int64_t oc = c * m; oc < (c + 1) * m; oc++) {
                K(dwise_gq)(g, d, y, dy, (n * g->o + oc) * p, gq);
                int nk = 0;
                for (int64_t k = 0; dw && k < khw; k++, nk++) {
                    cols[nk] = pp + off[k];
                    accs[nk] = acc + (oc * khw + k) * L;
                }
                if (finite) {
                    if (db) {
                        cols[nk] = ones;
                        accs[nk++] = accb + oc * L;
                    }
                    K(dwise_lane_dots)(gq, cols, accs, nk, d->len);
                    continue;
                }
                K(dwise_dw_outputs)(g, d, gq, cols, accs, nk);
                if (db) {
                    const T *one[1] = {ones};
                    T *ab[1] = {accb + oc * L};
                    K(dwise_lane_dots)(gq, one, ab, 1, d->len);
                }
            }
        }
    for (int64_t oc = 0; oc < g->o; oc++) {
        for (int64_t k = 0; dw && k < khw; k++)
            dw[oc * khw + k] = K(dwise_lane_total)(acc + (oc * khw + k) * L);
        if (db)
            db[oc] = K(dwise_lane_total)(accb + oc * L);
    }
}

#undef DW_LOAD
#undef DW_STORE
