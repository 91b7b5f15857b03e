/*
 * conv-flat.h - conv2d's direct sums (see "direct convolution" in conv.c),
 * included by conv.c's kernels for each T: the flat sums of the forward
 * and of dx, and dW's, for the baseline, AVX2 and AVX-512.
 */
typedef T K(vec) __attribute__((vector_size(32)));
enum { K(lanes) = 32 / sizeof(T) };
#define VLOAD(v, p) memcpy(&(v), (p), sizeof(v))
#define VSTORE(p, v) memcpy((p), &(v), sizeof(v))

/* The operands both flat sums share: nout outputs by nin input planes
 * (in, is apart) by ntap taps; tap k reads offset off[k] of a plane, and
 * the weight of (o, c, k) is at o so + c sc + wk[k]; q runs over [0, len). */
typedef struct K(flat) {
    int64_t nout, nin, ntap;
    const int64_t *off, *wk;
    int64_t so, sc;
    const T *in;
    int64_t is, len;
} K(flat);

/* out[o][q] = init[o] + sum_{c, k} w[o so + c sc + wk[k]] in[c is + q + off[k]],
 * len a multiple of 4 vectors; out planes os apart, init NULL for 0.  Two
 * outputs at a time: each loaded vector feeds both (8 accumulators). */
NBI_INLINE void K(flat_sum)(const K(flat) *f, const T *w, const T *init, T *out, int64_t os)
{
    typedef K(vec) V;
    const int64_t L = K(lanes), nout = f->nout, nin = f->nin, ntap = f->ntap;
    const int64_t so = f->so, sc = f->sc, is = f->is, len = f->len;
    const int64_t *off = f->off, *wk = f->wk;
    const T *in = f->in;
    for (int64_t o = 0; o < nout; o += 2) {
        bool two = o + 1 < nout;
        const T *w0 = w + o * so, *w1 = two ? w0 + so : w0;
        V b0 = (V){0} + (init ? init[o] : 0), b1 = (V){0} + (init && two ? init[o + 1] : 0);
        for (int64_t q = 0; q < len; q += 4 * L) {
            V a0 = b0, a1 = b0, a2 = b0, a3 = b0, c0 = b1, c1 = b1, c2 = b1, c3 = b1;
            for (int64_t c = 0; c < nin; c++)
                for (int64_t k = 0; k < ntap; k++) {
                    const T *src = in + c * is + q + off[k];
                    T u0 = w0[c * sc + wk[k]], u1 = w1[c * sc + wk[k]];
                    V v0, v1, v2, v3;
                    VLOAD(v0, src), VLOAD(v1, src + L);
                    VLOAD(v2, src + 2 * L), VLOAD(v3, src + 3 * L);
                    a0 += u0 * v0, a1 += u0 * v1, a2 += u0 * v2, a3 += u0 * v3;
                    c0 += u1 * v0, c1 += u1 * v1, c2 += u1 * v2, c3 += u1 * v3;
                }
            T *o0 = out + o * os + q, *o1 = o0 + os;
            VSTORE(o0, a0), VSTORE(o0 + L, a1), VSTORE(o0 + 2 * L, a2), VSTORE(o0 + 3 * L, a3);
            if (two)
                VSTORE(o1, c0), VSTORE(o1 + L, c1), VSTORE(o1 + 2 * L, c2), VSTORE(o1 + 3 * L, c3);
        }
    }
}

/* r[k] = sum_{q < len} g0[q] s[k][q] and r[4 + k] the same with g1, for
 * k < nk <= 4; inlined with nk a constant, so no FMA is wasted. */
NBI_INLINE void K(dw_taps)(const T *g0, const T *g1, const T *const *s, int nk, int64_t len,
                           K(vec) *r)
{
    typedef K(vec) V;
    const int64_t L = K(lanes);
    V a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, c0 = {0}, c1 = {0}, c2 = {0}, c3 = {0};
    for (int64_t q = 0; q < len; q += L) {
        V u, t, v;
        VLOAD(u, g0 + q), VLOAD(t, g1 + q);
        VLOAD(v, s[0] + q), a0 += u * v, c0 += t * v;
        if (nk > 1)
            VLOAD(v, s[1] + q), a1 += u * v, c1 += t * v;
        if (nk > 2)
            VLOAD(v, s[2] + q), a2 += u * v, c2 += t * v;
        if (nk > 3)
            VLOAD(v, s[3] + q), a3 += u * v, c3 += t * v;
    }
    r[0] = a0, r[1] = a1, r[2] = a2, r[3] = a3, r[4] = c0, r[5] = c1, r[6] = c2, r[7] = c3;
}

/* dw[o so + c sc + wk[k]] += sum_{q < len} g[o gs + q] in[c is + q + off[k]],
 * len a multiple of a vector.  Two outputs and up to four taps at a time
 * (taps split in groups of near-equal size): each load of the input feeds
 * two FMAs, or with wide one of 64 bytes (K(dw_taps_z), defined below). */
NBI_INLINE void K(dw_taps_z)(const T *g0, const T *g1, const T *const *s, int nk, int64_t len,
                             K(vec) *r);
NBI_INLINE void K(flat_dw)(const K(flat) *f, const T *g, int64_t gs, T *dw, bool wide)
{
    const int64_t L = K(lanes), nout = f->nout, nin = f->nin, ntap = f->ntap;
    const int64_t so = f->so, sc = f->sc, is = f->is, len = f->len;
    const int64_t groups = (ntap + 3) / 4, per = (ntap + groups - 1) / groups;
    const int64_t *off = f->off, *wk = f->wk;
    const T *in = f->in;
    for (int64_t o = 0; o < nout; o += 2) {
        bool two = o + 1 < nout;
        const T *g0 = g + o * gs, *g1 = two ? g0 + gs : g0;
        for (int64_t c = 0; c < nin; c++)
            for (int64_t k0 = 0; k0 < ntap; k0 += per) {
                int nk = (int)(ntap - k0 < per ? ntap - k0 : per);
                const T *s[4];
                for (int k = 0; k < nk; k++)
                    s[k] = in + c * is + off[k0 + k];
                K(vec) r[8];
                if (wide)
                    switch (nk) {
                    case 1: K(dw_taps_z)(g0, g1, s, 1, len, r); break;
                    case 2: K(dw_taps_z)(g0, g1, s, 2, len, r); break;
                    case 3: K(dw_taps_z)(g0, g1, s, 3, len, r); break;
                    default: K(dw_taps_z)(g0, g1, s, 4, len, r); break;
                    }
                else
                    switch (nk) {
                    case 1: K(dw_taps)(g0, g1, s, 1, len, r); break;
                    case 2: K(dw_taps)(g0, g1, s, 2, len, r); break;
                    case 3: K(dw_taps)(g0, g1, s, 3, len, r); break;
                    default: K(dw_taps)(g0, g1, s, 4, len, r); break;
                    }
                for (int h = 0; h <= two; h++)
                    for (int k = 0; k < nk; k++) {
                        T sum = 0;
                        for (int l = 0; l < L; l++)
                            sum += r[4 * h + k][l];
                        dw[(o + h) * so + c * sc + wk[k0 + k]] += sum;
                    }
            }
    }
}
#undef VLOAD
#undef VSTORE

/* ---- the same sums in 64-byte vectors, for AVX-512 ----------------------
 * Each output is the same chain as above, so the bits are AVX2's: the
 * forward takes four outputs at a time (16 accumulators of 32 registers);
 * dW keeps AVX2's 32-byte lanes, two outputs side by side in one vector
 * (its lanes' chains and their sum are AVX2's). */
typedef T K(zvec) __attribute__((vector_size(64)));
enum { K(zlanes) = 64 / sizeof(T) };
#define VLOAD(v, p) memcpy(&(v), (p), sizeof(v))
#define VSTORE(p, v) memcpy((p), &(v), sizeof(v))

/* K(flat_sum), len a multiple of 4 zvecs. */
NBI_INLINE void K(flat_sum_z)(const K(flat) *f, const T *w, const T *init, T *out, int64_t os)
{
    typedef K(zvec) V;
    const int64_t L = K(zlanes), nout = f->nout, nin = f->nin, ntap = f->ntap;
    const int64_t so = f->so, sc = f->sc, is = f->is, len = f->len;
    const int64_t *off = f->off, *wk = f->wk;
    const T *in = f->in;
    for (int64_t o = 0; o < nout; o += 4) {
        int64_t no = nout - o < 4 ? nout - o : 4;
        const T *w0 = w + o * so, *w1 = no > 1 ? w0 + so : w0;
        const T *w2 = no > 2 ? w0 + 2 * so : w0, *w3 = no > 3 ? w0 + 3 * so : w0;
        T i0 = init ? init[o] : 0, i1 = init && no > 1 ? init[o + 1] : 0;
        T i2 = init && no > 2 ? init[o + 2] : 0, i3 = init && no > 3 ? init[o + 3] : 0;
        for (int64_t q = 0; q < len; q += 4 * L) {
            V a0 = (V){0} + i0, a1 = a0, a2 = a0, a3 = a0, b0 = (V){0} + i1, b1 = b0, b2 = b0,
              b3 = b0, c0 = (V){0} + i2, c1 = c0, c2 = c0, c3 = c0, d0 = (V){0} + i3, d1 = d0,
              d2 = d0, d3 = d0;
            for (int64_t c = 0; c < nin; c++)
                for (int64_t k = 0; k < ntap; k++) {
                    const T *src = in + c * is + q + off[k];
                    int64_t at = c * sc + wk[k];
                    T u0 = w0[at], u1 = w1[at], u2 = w2[at], u3 = w3[at];
                    V v0, v1, v2, v3;
                    VLOAD(v0, src), VLOAD(v1, src + L);
                    VLOAD(v2, src + 2 * L), VLOAD(v3, src + 3 * L);
                    a0 += u0 * v0, a1 += u0 * v1, a2 += u0 * v2, a3 += u0 * v3;
                    b0 += u1 * v0, b1 += u1 * v1, b2 += u1 * v2, b3 += u1 * v3;
                    c0 += u2 * v0, c1 += u2 * v1, c2 += u2 * v2, c3 += u2 * v3;
                    d0 += u3 * v0, d1 += u3 * v1, d2 += u3 * v2, d3 += u3 * v3;
                }
            T *p = out + o * os + q;
            VSTORE(p, a0), VSTORE(p + L, a1), VSTORE(p + 2 * L, a2), VSTORE(p + 3 * L, a3);
            if (no > 1)
                p += os, VSTORE(p, b0), VSTORE(p + L, b1), VSTORE(p + 2 * L, b2),
                    VSTORE(p + 3 * L, b3);
            if (no > 2)
                p += os, VSTORE(p, c0), VSTORE(p + L, c1), VSTORE(p + 2 * L, c2),
                    VSTORE(p + 3 * L, c3);
            if (no > 3)
                p += os, VSTORE(p, d0), VSTORE(p + L, d1), VSTORE(p + 2 * L, d2),
                    VSTORE(p + 3 * L, d3);
        }
    }
}

/* K(dw_taps) with g0's lanes and g1's side by side in one register, the
 * chains of tap k for both outputs; r as K(dw_taps) leaves it. */
NBI_INLINE void K(dw_taps_z)(const T *g0, const T *g1, const T *const *s, int nk, int64_t len,
                             K(vec) *r)
{
    typedef K(vec) H;
    typedef K(zvec) V;
    const int64_t L = K(lanes);
    V a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0};
    for (int64_t q = 0; q < len; q += L) {
        H x, y, h;
        VLOAD(x, g0 + q), VLOAD(y, g1 + q);
        V u = __builtin_shufflevector(x, y, JOIN_LANES), v;
        VLOAD(h, s[0] + q), v = __builtin_shufflevector(h, h, JOIN_LANES), a0 += u * v;
        if (nk > 1)
            VLOAD(h, s[1] + q), v = __builtin_shufflevector(h, h, JOIN_LANES), a1 += u * v;
        if (nk > 2)
            VLOAD(h, s[2] + q), v = __builtin_shufflevector(h, h, JOIN_LANES), a2 += u * v;
        if (nk > 3)
            VLOAD(h, s[3] + q), v = __builtin_shufflevector(h, h, JOIN_LANES), a3 += u * v;
    }
    V z[4] = {a0, a1, a2, a3};
    for (int k = 0; k < 4; k++) /* K(dw_taps)'s layout: g0's chains, then g1's */
        memcpy(&r[k], &z[k], sizeof(H)), memcpy(&r[4 + k], (char *)&z[k] + sizeof(H), sizeof(H));
}

#undef VLOAD
#undef VSTORE

/* Each body compiled for the baseline, AVX2 with FMA and AVX-512. */
static void K(flat_sum_base)(const K(flat) *f, const T *w, const T *init, T *out, int64_t os)
{
    K(flat_sum)(f, w, init, out, os);
}
NBI_AVX2 static void K(flat_sum_avx2)(const K(flat) *f, const T *w, const T *init, T *out,
                                      int64_t os)
{
    K(flat_sum)(f, w, init, out, os);
}
NBI_AVX512 static void K(flat_sum_avx512)(const K(flat) *f, const T *w, const T *init, T *out,
                                          int64_t os)
{
    K(flat_sum_z)(f, w, init, out, os);
}
static void K(flat_dw_base)(const K(flat) *f, const T *g, int64_t gs, T *dw)
{
    K(flat_dw)(f, g, gs, dw, false);
}
NBI_AVX2 static void K(flat_dw_avx2)(const K(flat) *f, const T *g, int64_t gs, T *dw)
{
    K(flat_dw)(f, g, gs, dw, false);
}
NBI_AVX512 static void K(flat_dw_avx512)(const K(flat) *f, const T *g, int64_t gs, T *dw)
{
    K(flat_dw)(f, g, gs, dw, true);
}

typedef void (*K(flat_sum_fn))(const K(flat) *, const T *, const T *, T *, int64_t);
typedef void (*K(flat_dw_fn))(const K(flat) *, const T *, int64_t, T *);
/* The forward's and dx's sums for a layout whose lengths are whole steps
 * of the AVX-512 kernel (wide) or of the others. */
static K(flat_sum_fn) K(flat_sum_for)(bool wide)
{
    return wide && nbi_avx512() ? K(flat_sum_avx512)
           : nbi_avx2()         ? K(flat_sum_avx2)
                                : K(flat_sum_base);
}
static K(flat_dw_fn) K(flat_dw_for)(void)
{
    return nbi_avx512() ? K(flat_dw_avx512) : nbi_avx2() ? K(flat_dw_avx2) : K(flat_dw_base);
}
