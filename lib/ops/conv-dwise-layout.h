/*
 * conv-dwise-layout.h - the depthwise path's geometry (dwise_geom) and its
 * scratch layout, included once by conv.c's builders after conv_geom; the
 * kernels are in conv-depthwise.h.
 */
/* The depthwise path's layout (conv-depthwise.h), in elements.  The
 * padded image [hp, wp] of a channel is cut in sh sw phase planes
 * [hq, wq], hq = ceil(hp / sh), wq = ceil(wp / sw): plane (r, s) holds
 * rows r, r + sh, ... and columns s, s + sw, ... .  Output (oy, ox) then
 * reads, for each tap, plane element (oy + a, ox + b) of one plane: flat
 * index q = oy wq + ox plus the tap's offset, whatever the stride. */
#define CONV_DWISE_TAPS 64 /* kernels up to 8x8 */
typedef struct dwise_geom {
    int64_t hq, wq, ps;   /* a plane's rows, columns and length */
    int64_t planes;       /* sh sw ps, the planes of one channel */
    int64_t len;          /* flat sums per output plane: oh wq, rounded up */
    size_t ppsize;        /* planes plus the slack the flat sums read */
    size_t sums, dpp, gq, ones, acc; /* scratch offsets */
} dwise_geom;

/* Tap k's (in the weight's order, i kw + j) flat offset into the planes. */
static inline int64_t dwise_offset(const conv_geom *g, const dwise_geom *d, int64_t k)
{
    int64_t i = k / g->kw, j = k % g->kw;
    int64_t ry = (g->flip ? g->kh - 1 - i : i) * g->dil_h;
    int64_t rx = (g->flip ? g->kw - 1 - j : j) * g->dil_w;
    return (ry % g->sh * g->sw + rx % g->sw) * d->ps + ry / g->sh * d->wq + rx / g->sw;
}

/* n elements of es bytes, rounded up to NBI_ALIGN bytes. */
static size_t dwise_align(size_t n, size_t es)
{
    return (n * es + NBI_ALIGN - 1) / NBI_ALIGN * NBI_ALIGN / es;
}

/* Fills d for a depthwise layer and returns the scratch one thread needs:
 * the phase planes with their slack (zeroed: only the image's pixels are
 * ever written there), the forward's flat sums, dx's planes (as large),
 * dY as a flat plane, a row of ones (db's column), and dW's and db's
 * running lane sums. */
static size_t dwise_layout(const conv_geom *g, size_t es, dwise_geom *d)
{
    int64_t hp = g->h + g->pt + g->pb, wp = g->w + g->pl + g->pr;
    int64_t lanes = (int64_t)(64 / es), dlanes = (int64_t)(32 / es), maxoff = 0;
    d->hq = (hp + g->sh - 1) / g->sh;
    d->wq = (wp + g->sw - 1) / g->sw;
    d->ps = d->hq * d->wq;
    d->planes = g->sh * g->sw * d->ps;
    /* 64-byte steps, a multiple of every variant's vector */
    d->len = (g->oh * d->wq + lanes - 1) / lanes * lanes;
    for (int64_t k = 0; k < g->kh * g->kw; k++) {
        int64_t off = dwise_offset(g, d, k);
        maxoff = off > maxoff ? off : maxoff;
    }
    /* every plane, even one no tap reads (its pixels are copied all the
     * same), and what the flat sums read past the last tap's */
    int64_t reach = maxoff + d->len > d->planes ? maxoff + d->len : d->planes;
    d->ppsize = dwise_align((size_t)reach, es);
    d->sums = d->ppsize;
    d->dpp = d->sums + dwise_align((size_t)d->len, es);
    d->gq = d->dpp + d->ppsize;
    d->ones = d->gq + dwise_align((size_t)d->len, es);
    d->acc = d->ones + dwise_align((size_t)d->len, es);
    return d->acc + dwise_align((size_t)((g->o * g->kh * g->kw + g->o) * dlanes), es);
}
