/*
 * gemm.c - C = A B on the calling thread, each element of C one chain over
 * the depth in order, c = a_0 b_0 + a_1 b_1 + ..., in one vector lane:
 * fused multiply-adds on AVX2 and AVX-512, a multiply then an add on the
 * baseline.  An element's bits depend on neither the call's shape, the
 * tile it falls in, the vector width nor the threads, so AVX2 and AVX-512
 * agree bit for bit and any split of a batch gives one process's values.
 *
 * B is packed a panel of NR columns at a time, [depth][NR] with zeros past
 * its last column, and a tile of MR rows by the panel is summed in
 * registers, A's values broadcast from where they are: 6 x 2 vectors on
 * the baseline and AVX2 (12 accumulators of 16 registers), 12 x 2 on
 * AVX-512 (24 of 32).  Knows only cpu.c.
 */
#ifdef VB /* ---- one variant: T, K(...), VB-byte vectors, MR rows, ATTR ---- */

typedef T K(v) __attribute__((vector_size(VB)));
enum { K(l) = VB / sizeof(T), K(nr) = 2 * K(l) };
#define NR K(nr)
#define VLOAD(v, p) memcpy(&(v), (p), sizeof(v))
#define VSTORE(p, v) memcpy((p), &(v), sizeof(v))

/* bp[kk][j] = b[kk rs + j cs] for j < nj, zero for j in [nj, NR). */
static void K(pack)(const T *b, int64_t rs, int64_t cs, int64_t depth, int64_t nj, T *bp)
{
    if (nj < NR)
        memset(bp, 0, (size_t)(depth * NR) * sizeof(T));
    if (cs == 1)
        for (int64_t kk = 0; kk < depth; kk++)
            memcpy(bp + kk * NR, b + kk * rs, (size_t)nj * sizeof(T));
    else /* a column at a time, 64 rows at once: contiguous reads when rs
          * is 1, into lines that stay in L1 */
        for (int64_t k0 = 0; k0 < depth; k0 += 64)
            for (int64_t j = 0; j < nj; j++)
                for (int64_t kk = k0; kk < depth && kk < k0 + 64; kk++)
                    bp[kk * NR + j] = b[kk * rs + j * cs];
}

/* acc[2 i + h] = init[2 i + h] + sum_{kk < depth} a[i ra + kk ka] bp[kk][h L ..],
 * for i < mr (init NULL for 0): inlined with mr a constant, so absent rows
 * cost nothing. */
#define ROW(i)                                                                  \
    if (mr > i) {                                                               \
        T ai = a[i * ra + kk * ka];                                             \
        c##i##0 += ai * b0, c##i##1 += ai * b1;                                 \
    }
#define IN(i)                                                                   \
    if (mr > i && init)                                                         \
        c##i##0 = init[2 * i], c##i##1 = init[2 * i + 1];
#define OUT(i)                                                                  \
    if (mr > i)                                                                 \
        acc[2 * i] = c##i##0, acc[2 * i + 1] = c##i##1;
NBI_INLINE void K(tile)(int mr, const T *a, int64_t ra, int64_t ka, const T *bp, int64_t depth,
                        const K(v) *init, K(v) *acc)
{
    typedef K(v) V;
    V c00 = {0}, c01 = {0}, c10 = {0}, c11 = {0}, c20 = {0}, c21 = {0};
    V c30 = {0}, c31 = {0}, c40 = {0}, c41 = {0}, c50 = {0}, c51 = {0};
#if MR > 6
    V c60 = {0}, c61 = {0}, c70 = {0}, c71 = {0}, c80 = {0}, c81 = {0};
    V c90 = {0}, c91 = {0}, cA0 = {0}, cA1 = {0}, cB0 = {0}, cB1 = {0};
    enum { A = 10, B = 11 }; /* rows 10 and 11, named A and B */
#endif
    IN(0) IN(1) IN(2) IN(3) IN(4) IN(5)
#if MR > 6
    IN(6) IN(7) IN(8) IN(9) IN(A) IN(B)
#endif
#pragma GCC unroll 4
    for (int64_t kk = 0; kk < depth; kk++) {
        V b0, b1;
        VLOAD(b0, bp + kk * NR), VLOAD(b1, bp + kk * NR + K(l));
        ROW(0) ROW(1) ROW(2) ROW(3) ROW(4) ROW(5)
#if MR > 6
        ROW(6) ROW(7) ROW(8) ROW(9) ROW(A) ROW(B)
#endif
    }
    OUT(0) OUT(1) OUT(2) OUT(3) OUT(4) OUT(5)
#if MR > 6
    OUT(6) OUT(7) OUT(8) OUT(9) OUT(A) OUT(B)
#endif
}
#undef ROW
#undef IN
#undef OUT

/* The tile of mr rows (any mr <= MR), through a constant count. */
NBI_INLINE void K(tile_n)(int mr, const T *a, int64_t ra, int64_t ka, const T *bp,
                          int64_t depth, const K(v) *init, K(v) *acc)
{
    switch (mr) {
    case 1: K(tile)(1, a, ra, ka, bp, depth, init, acc); break;
    case 2: K(tile)(2, a, ra, ka, bp, depth, init, acc); break;
    case 3: K(tile)(3, a, ra, ka, bp, depth, init, acc); break;
    case 4: K(tile)(4, a, ra, ka, bp, depth, init, acc); break;
    case 5: K(tile)(5, a, ra, ka, bp, depth, init, acc); break;
#if MR > 6
    case 6: K(tile)(6, a, ra, ka, bp, depth, init, acc); break;
    case 7: K(tile)(7, a, ra, ka, bp, depth, init, acc); break;
    case 8: K(tile)(8, a, ra, ka, bp, depth, init, acc); break;
    case 9: K(tile)(9, a, ra, ka, bp, depth, init, acc); break;
    case 10: K(tile)(10, a, ra, ka, bp, depth, init, acc); break;
    case 11: K(tile)(11, a, ra, ka, bp, depth, init, acc); break;
#endif
    default: K(tile)(MR, a, ra, ka, bp, depth, init, acc); break;
    }
}

/* The tile's mr x nc values into c (rows rs, columns cs apart), or added
 * to it with add: c + acc. */
NBI_INLINE void K(put)(const K(v) *acc, int mr, int64_t nc, T *c, int64_t rs, int64_t cs,
                       bool add)
{
    typedef K(v) V;
    if (nc == NR && cs == 1) { /* whole vectors: the same adds, lane by lane */
        for (int i = 0; i < mr; i++)
            for (int h = 0; h < 2; h++) {
                T *ci = c + i * rs + h * K(l);
                V v = acc[2 * i + h], u;
                if (add)
                    VLOAD(u, ci), v = u + v;
                VSTORE(ci, v);
            }
        return;
    }
    T t[MR * NR];
    memcpy(t, acc, (size_t)(2 * mr) * sizeof(V));
    for (int i = 0; i < mr; i++)
        for (int64_t j = 0; j < nc; j++) {
            T v = t[i * NR + j], *cij = c + i * rs + j * cs;
            *cij = add ? *cij + v : v;
        }
}

/* The tile's chains for chunks of the depth, each on its own, then
 * nbi_batch_sum's tree over them: acc = the sum of chunk sums. */
NBI_INLINE void K(tile_tree)(int mr, const T *a, int64_t ra, int64_t ka, const T *bp,
                             int64_t depth, int64_t chunk, K(v) *acc)
{
    K(v) buf[NBI_GEMM_CHUNKS][2 * MR];
    int64_t nch = (depth + chunk - 1) / chunk;
    for (int64_t h = 0; h < nch; h++) {
        int64_t k0 = h * chunk, nk = depth - k0 < chunk ? depth - k0 : chunk;
        K(tile_n)(mr, a + k0 * ka, ra, ka, bp + k0 * NR, nk, NULL, buf[h]);
    }
    for (int64_t s = 1; s < nch; s *= 2)
        for (int64_t i = 0; i + s < nch; i += 2 * s)
            for (int v = 0; v < 2 * mr; v++)
                buf[i][v] += buf[i + s][v];
    memcpy(acc, buf[0], (size_t)(2 * mr) * sizeof(K(v)));
}

/* The chains' first values for rows [i0, i0 + mr) of a panel of nj
 * columns from j0: the rows' bias, or the columns' (zero past nj). */
NBI_INLINE const K(v) *K(init)(const nbi_gemm_args *g, int64_t i0, int mr, int64_t j0,
                               int64_t nj, K(v) *init)
{
    const T *rb = g->row_bias, *cb = g->col_bias;
    if (g->add || (!rb && !cb))
        return NULL;
    if (rb) {
        for (int i = 0; i < mr; i++)
            init[2 * i] = init[2 * i + 1] = (K(v)){0} + rb[i0 + i];
        return init;
    }
    T row[NR] = {0};
    memcpy(row, cb + j0, (size_t)nj * sizeof(T));
    memcpy(&init[0], row, sizeof(K(v))), memcpy(&init[1], row + K(l), sizeof(K(v)));
    for (int i = 1; i < mr; i++)
        init[2 * i] = init[0], init[2 * i + 1] = init[1];
    return init;
}

ATTR static void K(gemm)(const nbi_gemm_args *g)
{
    const T *a = g->a, *b = g->b;
    T *c = g->c, *bp = g->pack;
    K(v) acc[2 * MR], init[2 * MR];
    for (int64_t j0 = 0; j0 < g->n; j0 += NR) {
        int64_t nj = g->n - j0 < NR ? g->n - j0 : NR;
        K(pack)(b + j0 * g->bcs, g->brs, g->bcs, g->k, nj, bp);
        for (int64_t i0 = 0; i0 < g->m; i0 += MR) {
            int mr = (int)(g->m - i0 < MR ? g->m - i0 : MR);
            const T *ai = a + i0 * g->ars;
            if (g->add && g->chunk && g->k > g->chunk)
                K(tile_tree)(mr, ai, g->ars, g->acs, bp, g->k, g->chunk, acc);
            else
                K(tile_n)(mr, ai, g->ars, g->acs, bp, g->k, K(init)(g, i0, mr, j0, nj, init),
                          acc);
            K(put)(acc, mr, nj, c + i0 * g->crs + j0 * g->ccs, g->crs, g->ccs, g->add);
        }
    }
}
#undef NR
#undef VLOAD
#undef VSTORE

#else /* ---- the variants, and the call that picks one -------------------- */

#include "internal.h"

#define ATTR
#define VB 16
#define MR 6
#define T float
#define K(f) f##_f32_base
#include "gemm.c"
#undef T
#undef K
#define T double
#define K(f) f##_f64_base
#include "gemm.c"
#undef T
#undef K
#undef VB
#undef ATTR

#define ATTR NBI_AVX2
#define VB 32
#define T float
#define K(f) f##_f32_avx2
#include "gemm.c"
#undef T
#undef K
#define T double
#define K(f) f##_f64_avx2
#include "gemm.c"
#undef T
#undef K
#undef VB
#undef MR
#undef ATTR

#define ATTR NBI_AVX512
#define VB 64
#define MR 12
#define T float
#define K(f) f##_f32_avx512
#include "gemm.c"
#undef T
#undef K
#define T double
#define K(f) f##_f64_avx512
#include "gemm.c"
#undef T
#undef K
#undef VB
#undef MR
#undef ATTR

/* The widest panel, two 64-byte vectors: any variant fits in it. */
/* Elements of a dtype (gemm.c sits below tensor.c's nb_dtype_size). */
static size_t elem_size(nb_dtype dtype)
{
    return dtype == NB_F32 ? sizeof(float) : sizeof(double);
}

size_t nbi_gemm_pack_elems(nb_dtype dtype, int64_t depth)
{
    return (size_t)depth * (128 / elem_size(dtype));
}

void nbi_gemm_fixed(nb_dtype dtype, const nbi_gemm_args *g)
{
    if (g->m <= 0 || g->n <= 0)
        return;
    bool f32 = dtype == NB_F32;
    switch (nbi_cpu_level()) {
    case NBI_CPU_AVX512: (f32 ? gemm_f32_avx512 : gemm_f64_avx512)(g); break;
    case NBI_CPU_AVX2: (f32 ? gemm_f32_avx2 : gemm_f64_avx2)(g); break;
    default: (f32 ? gemm_f32_base : gemm_f64_base)(g); break;
    }
}

/* Rows split in multiples of AVX-512's 12-row tiles, columns in its
 * panels: no thread's share adds a partial tile another's would not. */
void nbi_gemm_fixed_par(nb_dtype dtype, const nbi_gemm_args *g, bool by_cols, int nt)
{
    int64_t unit = by_cols ? 128 / (int64_t)elem_size(dtype) : 12;
    int64_t len = by_cols ? g->n : g->m, units = (len + unit - 1) / unit;
    if (nt > units)
        nt = (int)units;
    if (nt <= 1 || nbi_in_parallel()) {
        nbi_gemm_fixed(dtype, g);
        return;
    }
    size_t es = elem_size(dtype), pe = nbi_gemm_pack_elems(dtype, g->k);
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int t = 0; t < nt; t++) {
        int64_t lo = units * t / nt * unit, hi = units * (t + 1) / nt * unit;
        hi = hi < len ? hi : len;
        nbi_gemm_args s = *g;
        s.pack = (char *)g->pack + (size_t)t * pe * es;
        if (by_cols) {
            s.n = hi - lo;
            s.b = (const char *)g->b + (size_t)(lo * g->bcs) * es;
            s.c = (char *)g->c + (size_t)(lo * g->ccs) * es;
            s.col_bias = g->col_bias ? (const char *)g->col_bias + (size_t)lo * es : NULL;
        } else {
            s.m = hi - lo;
            s.a = (const char *)g->a + (size_t)(lo * g->ars) * es;
            s.c = (char *)g->c + (size_t)(lo * g->crs) * es;
            s.row_bias = g->row_bias ? (const char *)g->row_bias + (size_t)lo * es : NULL;
        }
        nbi_gemm_fixed(dtype, &s);
    }
}

#endif
