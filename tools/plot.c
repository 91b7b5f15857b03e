/*
 * plot.c - the drawing behind plot.h.  Lines and markers are anti-aliased
 * from each pixel centre's distance to the shape (coverage = half width +
 * 0.5 - distance, clamped to [0, 1]); text is the bitmap font of font.h;
 * axes take "nice" ticks.  It knows nothing of training: it draws the
 * numbers it is given.
 */
#include "plot.h"

#include "font.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- the canvas ---------------------------------------------------------- */

nb_tensor *plot_canvas_new(nb_ctx *ctx, int w, int h, plot_canvas *cv)
{
    *cv = (plot_canvas){0};
    nb_tensor *t = nb_tensor_full(ctx, NB_F32, 3, (int64_t[]){3, h, w}, 1.0);
    if (!t)
        return NULL;
    *cv = (plot_canvas){.px = t->data, .w = w, .h = h};
    return t;
}

static bool inside(const plot_canvas *cv, int x, int y)
{
    return x >= 0 && y >= 0 && x < cv->w && y < cv->h;
}

static float *channel(const plot_canvas *cv, int c, int x, int y)
{
    return cv->px + ((size_t)c * cv->h + y) * cv->w + x;
}

unsigned plot_pixel(const plot_canvas *cv, int x, int y)
{
    if (!inside(cv, x, y))
        return 0;
    unsigned rgb = 0;
    for (int c = 0; c < 3; c++) {
        float v = *channel(cv, c, x, y);
        v = v < 0 ? 0 : v > 1 ? 1 : v;
        rgb = rgb << 8 | (unsigned)(v * 255.0f + 0.5f);
    }
    return rgb;
}

void plot_blend(plot_canvas *cv, int x, int y, unsigned rgb, double alpha)
{
    if (!inside(cv, x, y) || !(alpha > 0))
        return;
    for (int c = 0; c < 3; c++) {
        float col = (float)((rgb >> (16 - 8 * c)) & 0xff) / 255.0f;
        float *p = channel(cv, c, x, y);
        *p = alpha >= 1 ? col : *p + (float)alpha * (col - *p);
    }
}

/* v rounded down and clamped to [lo, hi]; NaN gives lo. */
static int clampi(double v, int lo, int hi)
{
    if (!(v >= lo))
        return lo;
    return v > hi ? hi : (int)floor(v);
}

void plot_fill_rect(plot_canvas *cv, int x0, int y0, int x1, int y1,
                    unsigned rgb, double alpha)
{
    x0 = x0 < 0 ? 0 : x0;
    y0 = y0 < 0 ? 0 : y0;
    x1 = x1 >= cv->w ? cv->w - 1 : x1;
    y1 = y1 >= cv->h ? cv->h - 1 : y1;
    for (int y = y0; y <= y1; y++)
        for (int x = x0; x <= x1; x++)
            plot_blend(cv, x, y, rgb, alpha);
}

/* ---- strokes ------------------------------------------------------------- */

typedef struct seg {
    double ax, ay, bx, by;
} seg;

static double seg_dist(const seg *s, double x, double y)
{
    double dx = s->bx - s->ax, dy = s->by - s->ay;
    double len2 = dx * dx + dy * dy;
    double t = len2 > 0 ? ((x - s->ax) * dx + (y - s->ay) * dy) / len2 : 0;
    t = t < 0 ? 0 : t > 1 ? 1 : t;
    return hypot(x - (s->ax + t * dx), y - (s->ay + t * dy));
}

/* A trace: point i is (ax x_i + bx, ay y[i] + by), where x_i is x[i], or the
 * epoch i + 1 when x is NULL.  Points that are not finite break it. */
typedef struct trace {
    const double *x, *y;
    int n;
    double ax, bx, ay, by;
} trace;

static bool trace_point(const trace *p, int i, double *x, double *y)
{
    *x = p->ax * (p->x ? p->x[i] : i + 1) + p->bx;
    *y = p->ay * p->y[i] + p->by;
    return isfinite(*x) && isfinite(*y);
}

static seg trace_seg(const trace *p, int k)
{
    seg s;
    trace_point(p, k, &s.ax, &s.ay);
    trace_point(p, k + 1, &s.bx, &s.by);
    return s;
}

/* Strokes the segments between points i0 and i1 (all finite).  A pixel near
 * a joint belongs to the nearest of the neighbouring segments, so the
 * joint's soft edge is blended once. */
static void stroke_solid(plot_canvas *cv, const trace *p, int i0, int i1,
                         double width, unsigned rgb)
{
    double reach = width / 2 + 0.5; /* where coverage falls to 0 */
    for (int k = i0; k < i1; k++) {
        seg s = trace_seg(p, k), prev = s, next = s;
        bool has_prev = k > i0, has_next = k + 1 < i1;
        if (has_prev)
            prev = trace_seg(p, k - 1);
        if (has_next)
            next = trace_seg(p, k + 1);
        int x0 = clampi(fmin(s.ax, s.bx) - reach, 0, cv->w - 1);
        int x1 = clampi(ceil(fmax(s.ax, s.bx) + reach), 0, cv->w - 1);
        int y0 = clampi(fmin(s.ay, s.by) - reach, 0, cv->h - 1);
        int y1 = clampi(ceil(fmax(s.ay, s.by) + reach), 0, cv->h - 1);
        for (int y = y0; y <= y1; y++)
            for (int x = x0; x <= x1; x++) {
                double d = seg_dist(&s, x, y);
                if (d >= reach || (has_prev && seg_dist(&prev, x, y) <= d) ||
                    (has_next && seg_dist(&next, x, y) < d))
                    continue;
                plot_blend(cv, x, y, rgb, reach - d);
            }
    }
}

/* Liang-Barsky: the part [*t0, *t1] of segment s inside the rectangle. */
static bool clip_seg(const seg *s, double xmin, double ymin, double xmax,
                     double ymax, double *t0, double *t1)
{
    double dx = s->bx - s->ax, dy = s->by - s->ay;
    double p[4] = {-dx, dx, -dy, dy};
    double q[4] = {s->ax - xmin, xmax - s->ax, s->ay - ymin, ymax - s->ay};
    *t0 = 0;
    *t1 = 1;
    for (int i = 0; i < 4; i++) {
        if (p[i] == 0) {
            if (q[i] < 0)
                return false;
            continue;
        }
        double r = q[i] / p[i];
        if (p[i] < 0 && r > *t0)
            *t0 = r;
        else if (p[i] > 0 && r < *t1)
            *t1 = r;
    }
    return *t0 < *t1;
}

#define DASH_ON 5.0  /* plus the round ends: dashes look 7 px long */
#define DASH_OFF 6.0 /* and the gaps 4 px */

/* The same segments, dashed: dash j of the run covers arc lengths
 * [j P, j P + DASH_ON], P the period, each dash drawn with round ends. */
static void stroke_dashed(plot_canvas *cv, const trace *p, int i0, int i1,
                          double width, unsigned rgb)
{
    const double period = DASH_ON + DASH_OFF;
    double phase = 0; /* arc length at the segment's start, mod period */
    double m = width + 1;
    for (int k = i0; k < i1; k++) {
        seg s = trace_seg(p, k);
        double len = hypot(s.bx - s.ax, s.by - s.ay), t0, t1;
        if (!isfinite(len) || len <= 0)
            continue;
        /* Only the part on the canvas, so the loop is bounded by its size. */
        if (clip_seg(&s, -m, -m, cv->w + m, cv->h + m, &t0, &t1)) {
            double u0 = fmod(phase + t0 * len, period);
            double u1 = u0 + (t1 - t0) * len;
            double base = t0 * len - u0; /* arc length where u = 0 */
            for (double j = 0; j * period < u1; j++) {
                double a = fmax(u0, j * period);
                double b = fmin(u1, j * period + DASH_ON);
                if (a >= b)
                    continue;
                double ta = (base + a) / len, tb = (base + b) / len;
                plot_line(cv, s.ax + ta * (s.bx - s.ax),
                          s.ay + ta * (s.by - s.ay),
                          s.ax + tb * (s.bx - s.ax),
                          s.ay + tb * (s.by - s.ay), width, rgb);
            }
        }
        phase = fmod(phase + len, period);
    }
}

/* Widths are kept to (0, 1000]: a dashed line's work grows with it. */
static bool width_ok(double *width)
{
    if (!(*width > 0))
        return false;
    *width = fmin(*width, 1000);
    return true;
}

static void stroke_trace(plot_canvas *cv, const trace *p, double width,
                         unsigned rgb, bool dashed)
{
    double x, y;
    int i = 0;
    if (!p->y || !width_ok(&width))
        return;
    while (i < p->n) {
        if (!trace_point(p, i, &x, &y)) {
            i++;
            continue;
        }
        int j = i; /* the run of finite points i..j */
        while (j + 1 < p->n && trace_point(p, j + 1, &x, &y))
            j++;
        if (dashed)
            stroke_dashed(cv, p, i, j, width, rgb);
        else
            stroke_solid(cv, p, i, j, width, rgb);
        i = j + 1;
    }
}

void plot_line(plot_canvas *cv, double x0, double y0, double x1, double y1,
               double width, unsigned rgb)
{
    trace p = {.x = (double[]){x0, x1}, .y = (double[]){y0, y1}, .n = 2,
              .ax = 1, .ay = 1};
    if (isfinite(x0) && isfinite(y0) && isfinite(x1) && isfinite(y1) &&
        width_ok(&width))
        stroke_solid(cv, &p, 0, 1, width, rgb);
}

void plot_polyline(plot_canvas *cv, const double *x, const double *y, int n,
                   double width, unsigned rgb, bool dashed)
{
    trace p = {.x = x, .y = y, .n = n, .ax = 1, .ay = 1};
    if (x)
        stroke_trace(cv, &p, width, rgb, dashed);
}

static double coverage(double v)
{
    return v < 0 ? 0 : v > 1 ? 1 : v;
}

void plot_marker(plot_canvas *cv, double x, double y, double r, bool square,
                 unsigned rgb)
{
    if (!isfinite(x) || !isfinite(y) || !(r > 0) || r > 1e4)
        return;
    double e = r + 0.5;
    int x0 = clampi(x - e, 0, cv->w - 1);
    int x1 = clampi(ceil(x + e), 0, cv->w - 1);
    int y0 = clampi(y - e, 0, cv->h - 1);
    int y1 = clampi(ceil(y + e), 0, cv->h - 1);
    for (int py = y0; py <= y1; py++)
        for (int px = x0; px <= x1; px++) {
            double dx = fabs(px - x), dy = fabs(py - y);
            plot_blend(cv, px, py, rgb,
                       square ? coverage(e - dx) * coverage(e - dy)
                              : coverage(e - hypot(dx, dy)));
        }
}

/* ---- text ---------------------------------------------------------------- */

#define TEXT_MAX 4096  /* characters measured or drawn */
#define ADVANCE (FONT_W + 1)

static int clamp_scale(int scale)
{
    return scale < 1 ? 1 : scale > 16 ? 16 : scale;
}

int plot_text_width(const char *s, int scale)
{
    size_t n = s ? strlen(s) : 0;
    n = n > TEXT_MAX ? TEXT_MAX : n;
    scale = clamp_scale(scale);
    return n ? (int)n * ADVANCE * scale - scale : 0;
}

int plot_text(plot_canvas *cv, int x, int y, const char *s, int scale,
              unsigned rgb)
{
    scale = clamp_scale(scale);
    if (!s || y >= cv->h || y < -FONT_H * scale)
        return plot_text_width(s, scale); /* nothing to draw */
    int cx = x;
    for (int i = 0; s[i] && i < TEXT_MAX && cx < cv->w;
         i++, cx += ADVANCE * scale) {
        unsigned c = (unsigned char)s[i];
        if (c < FONT_FIRST || c > FONT_LAST)
            c = '?';
        const unsigned char *g = font_glyphs[c - FONT_FIRST];
        for (int r = 0; r < FONT_H; r++)
            for (int k = 0; k < FONT_W; k++)
                if (g[r] >> (FONT_W - 1 - k) & 1)
                    plot_fill_rect(cv, cx + k * scale, y + r * scale,
                                   cx + (k + 1) * scale - 1,
                                   y + (r + 1) * scale - 1, rgb, 1);
    }
    return plot_text_width(s, scale);
}

/* ---- ticks --------------------------------------------------------------- */

int plot_nice_ticks(double lo, double hi, int max_ticks, double *first,
                    double *step)
{
    if (!isfinite(lo) || !isfinite(hi)) {
        lo = 0;
        hi = 1;
    }
    if (lo > hi) {
        double t = lo;
        lo = hi;
        hi = t;
    }
    lo = fmax(lo, -1e300); /* so that hi - lo stays finite */
    hi = fmin(hi, 1e300);
    max_ticks = max_ticks < 2 ? 2 : max_ticks > 50 ? 50 : max_ticks;
    double mag = fmax(fabs(lo), fabs(hi));
    if (hi - lo <= 1e-9 * mag || hi - lo < 1e-200) {
        /* An empty range: 10% of its value around it (or 1 around 0). */
        double w = mag > 1e-200 ? 0.1 * mag : 1;
        lo -= w / 2;
        hi += w / 2;
    }
    /* The candidate steps m 10^e from just below the range / (ticks - 1);
     * a step of 10^-e is computed as 1 / 10^e, so 0.1 prints as 0.1. */
    static const double mults[] = {1, 2, 5, 10, 20, 50, 100};
    int e = (int)floor(log10((hi - lo) / (max_ticks - 1)));
    double p = pow(10, e < 0 ? -e : e);
    for (size_t i = 0; i < sizeof mults / sizeof mults[0]; i++) {
        double s = e < 0 ? mults[i] / p : mults[i] * p;
        double k0 = floor(lo / s + 1e-9), k1 = ceil(hi / s - 1e-9);
        if (k1 - k0 + 1 <= max_ticks) {
            *first = e < 0 ? k0 * mults[i] / p : k0 * s;
            *step = s;
            return (int)(k1 - k0) + 1;
        }
    }
    *first = lo; /* not reached: a step of 100 (range / (ticks - 1)) fits */
    *step = (hi - lo) / (max_ticks - 1);
    return max_ticks;
}

/* Removes the trailing zeros of a decimal fraction, and a bare '.'. */
static void trim_zeros(char *s)
{
    if (!strchr(s, '.'))
        return;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '0')
        s[--n] = '\0';
    if (n > 0 && s[n - 1] == '.')
        s[n - 1] = '\0';
}

char *plot_tick_label(double v, double step, char *buf, size_t size)
{
    if (!size)
        return buf;
    step = fabs(step);
    if (!isfinite(v) || !isfinite(step) || step == 0) {
        snprintf(buf, size, "%g", v);
        return buf;
    }
    if (fabs(v) < step * 1e-6)
        v = 0; /* no "-0.0", no 1e-17 for 0 */
    /* The decimals the step needs: 0.1 one, 0.25 two, 5 none. */
    int dec = 0;
    for (double s = step; dec < 12 && fabs(s - nearbyint(s)) > 1e-6 * s;
         s *= 10)
        dec++;
    if (dec <= 4 && fabs(v) < 1e5) {
        snprintf(buf, size, "%.*f", dec, v);
        return buf;
    }
    if (v == 0) {
        snprintf(buf, size, "0");
        return buf;
    }
    /* m e x, with the mantissa's digits down to the step's. */
    int x = (int)floor(log10(fabs(v)));
    int digits = x - (int)floor(log10(step) + 1e-9);
    digits = digits < 0 ? 0 : digits > 6 ? 6 : digits;
    char m[32];
    snprintf(m, sizeof m, "%.*f", digits, v / pow(10, x));
    if (fabs(strtod(m, NULL)) >= 10) { /* 9.99 rounded up to 10.0 */
        x++;
        snprintf(m, sizeof m, "%.*f", digits, v / pow(10, x));
    }
    trim_zeros(m);
    snprintf(buf, size, "%se%d", m, x);
    return buf;
}

/* ---- the curves ---------------------------------------------------------- */

#define INK 0x222222u     /* text */
#define SPINE 0x333333u   /* the frame and the tick marks */
#define GRID 0xe4e4e4u
#define LEGEND_EDGE 0xccccccu
#define SCALE 2           /* of every text */
#define LINE_W 2.0
#define MARKER_R 3.5
#define TICK_LEN 5
#define Y_TICKS 8
#define X_TICKS 10
#define TEXT_CAP (PLOT_TEXT_ASCENT * SCALE) /* height of a digit */
#define TEXT_BOX (PLOT_TEXT_H * SCALE)

/* A panel: the frame's pixels (inclusive), the data range they show, and
 * the ticks of its axes. */
typedef struct panel {
    int x0, y0, x1, y1;
    double xlo, xhi, ylo, yhi;
    double xfirst, xstep, yfirst, ystep;
    int nx, ny;
} panel;

/* Pixel coordinates of data values. */
static double panel_x(const panel *p, double v)
{
    return p->x0 + (v - p->xlo) / (p->xhi - p->xlo) * (p->x1 - p->x0);
}

static double panel_y(const panel *p, double v)
{
    return p->y1 - (v - p->ylo) / (p->yhi - p->ylo) * (p->y1 - p->y0);
}

static bool series_ok(const plot_series *s)
{
    if (!s->y || s->n <= 0)
        return false;
    for (int i = 0; i < s->n; i++)
        if (isfinite(s->y[i]))
            return true;
    return false;
}

/* The trace of a series in the panel's pixels. */
static trace series_trace(const panel *p, const plot_series *s)
{
    /* panel_x and panel_y as v -> a v + b. */
    double ax = (p->x1 - p->x0) / (p->xhi - p->xlo);
    double ay = -(p->y1 - p->y0) / (p->yhi - p->ylo);
    return (trace){.y = s->y, .n = s->n, .ax = ax, .bx = panel_x(p, 0),
                   .ay = ay, .by = panel_y(p, 0)};
}

/* A series' marker: a disc, or for a dashed series a square of about the
 * same area. */
static void series_marker(plot_canvas *cv, double x, double y,
                          const plot_series *s)
{
    plot_marker(cv, x, y, s->dashed ? MARKER_R - 0.5 : MARKER_R, s->dashed,
                s->rgb);
}

/* Markers on every point while epochs are at least 12 px apart. */
static bool panel_markers(const panel *p)
{
    return panel_x(p, 2) - panel_x(p, 1) >= 12;
}

static void draw_series(plot_canvas *cv, const panel *p, const plot_series *s)
{
    trace pa = series_trace(p, s);
    stroke_trace(cv, &pa, LINE_W, s->rgb, s->dashed);
    /* A point with no neighbour has no line: it always gets a marker. */
    bool all = panel_markers(p);
    for (int i = 0; i < s->n; i++) {
        double x, y, xn, yn;
        if (!trace_point(&pa, i, &x, &y))
            continue;
        bool alone = (i == 0 || !trace_point(&pa, i - 1, &xn, &yn)) &&
                     (i + 1 == s->n || !trace_point(&pa, i + 1, &xn, &yn));
        if (all || alone)
            series_marker(cv, x, y, s);
    }
}

/* How much of the series falls in the box x0..x1, y0..y1: its points and
 * eight samples along each segment. */
static int crowding(const panel *p, const plot_series *ss, int ns, int x0,
                    int y0, int x1, int y1)
{
    int count = 0;
    for (int k = 0; k < ns; k++) {
        if (!series_ok(&ss[k]))
            continue;
        trace pa = series_trace(p, &ss[k]);
        for (int i = 0; i < pa.n; i++) {
            double ax, ay, bx, by;
            if (!trace_point(&pa, i, &ax, &ay))
                continue;
            int samples = 8;
            if (i + 1 == pa.n || !trace_point(&pa, i + 1, &bx, &by)) {
                bx = ax; /* no segment: the point alone */
                by = ay;
                samples = 1;
            }
            for (int j = 0; j < samples; j++) {
                double x = ax + (bx - ax) * j / 8, y = ay + (by - ay) * j / 8;
                count += x >= x0 && x <= x1 && y >= y0 && y <= y1;
            }
        }
    }
    return count;
}

/* The legend: a sample of each line and its label, in the corner of the
 * panel the curves leave most empty (upper right first). */
static void draw_legend(plot_canvas *cv, const panel *p,
                        const plot_series *ss, int ns)
{
    const int pad = 8, sample = 30, gap = 8, row = TEXT_BOX + 4, inset = 10;
    int rows = 0, text_w = 0;
    for (int k = 0; k < ns; k++)
        if (series_ok(&ss[k]) && ss[k].label) {
            rows++;
            int w = plot_text_width(ss[k].label, SCALE);
            text_w = w > text_w ? w : text_w;
        }
    if (!rows)
        return;
    int w = pad + sample + gap + text_w + pad;
    int h = pad + rows * row - 4 + pad;
    int left = p->x0 + inset, right = p->x1 - inset - w;
    int top = p->y0 + inset, bottom = p->y1 - inset - h;
    const int corners[4][2] = {{right, top}, {right, bottom}, {left, top},
                               {left, bottom}};
    int best = 0, least = -1;
    for (int c = 0; c < 4; c++) {
        int x = corners[c][0], y = corners[c][1];
        int n = crowding(p, ss, ns, x - 4, y - 4, x + w + 4, y + h + 4);
        if (least < 0 || n < least) {
            least = n;
            best = c;
        }
    }
    int x = corners[best][0], y = corners[best][1];
    plot_fill_rect(cv, x, y, x + w - 1, y + h - 1, 0xffffff, 0.85);
    plot_line(cv, x, y, x + w - 1, y, 1, LEGEND_EDGE);
    plot_line(cv, x, y + h - 1, x + w - 1, y + h - 1, 1, LEGEND_EDGE);
    plot_line(cv, x, y, x, y + h - 1, 1, LEGEND_EDGE);
    plot_line(cv, x + w - 1, y, x + w - 1, y + h - 1, 1, LEGEND_EDGE);
    int ty = y + pad;
    for (int k = 0; k < ns; k++) {
        const plot_series *s = &ss[k];
        if (!series_ok(s) || !s->label)
            continue;
        double cy = ty + TEXT_CAP / 2.0 - 0.5; /* the middle of a capital */
        double sx[] = {x + pad, x + pad + sample}, sy[] = {cy, cy};
        plot_polyline(cv, sx, sy, 2, LINE_W, s->rgb, s->dashed);
        if (panel_markers(p))
            series_marker(cv, x + pad + sample / 2.0, cy, s);
        plot_text(cv, x + pad + sample + gap, ty, s->label, SCALE, INK);
        ty += row;
    }
}

/* Lays out a panel in the columns x0..x1 of the canvas: the y range is
 * the data's widened to nice ticks, the x range epochs 1..n; each plus 4%
 * (half an epoch for one).  False when the canvas has no room for it. */
static bool panel_layout(panel *p, const plot_canvas *cv, int x0, int x1,
                         const plot_series *ss, int ns, int epochs)
{
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int i = 0; ss[k].y && i < ss[k].n; i++)
            if (isfinite(ss[k].y[i])) {
                lo = fmin(lo, ss[k].y[i]);
                hi = fmax(hi, ss[k].y[i]);
            }
    if (lo > hi) {
        lo = 0;
        hi = 1;
    }
    p->ny = plot_nice_ticks(lo, hi, Y_TICKS, &p->yfirst, &p->ystep);
    double ylast = p->yfirst + (p->ny - 1) * p->ystep;
    p->ylo = p->yfirst - 0.04 * (ylast - p->yfirst);
    p->yhi = ylast + 0.04 * (ylast - p->yfirst);

    /* Whole epochs only. */
    p->nx = 1;
    p->xfirst = p->xstep = 1;
    if (epochs > 1) {
        p->nx = plot_nice_ticks(1, epochs, X_TICKS, &p->xfirst, &p->xstep);
        if (p->xstep < 1) {
            p->xfirst = p->xstep = 1;
            p->nx = epochs;
        }
    }
    double xpad = epochs > 1 ? 0.04 * (epochs - 1) : 0.5;
    p->xlo = 1 - xpad;
    p->xhi = (epochs > 1 ? epochs : 1) + xpad;

    /* The frame leaves room for the widest y label on its left. */
    char label[32];
    int label_w = 0;
    for (int i = 0; i < p->ny; i++) {
        plot_tick_label(p->yfirst + i * p->ystep, p->ystep, label,
                        sizeof label);
        int w = plot_text_width(label, SCALE);
        label_w = w > label_w ? w : label_w;
    }
    p->x0 = x0 + 12 + label_w + TICK_LEN + 5;
    p->x1 = x1 - 20;
    p->y0 = 72;
    p->y1 = cv->h - 60;
    return p->x1 - p->x0 >= 20 && p->y1 - p->y0 >= 20;
}

/* The ticks of x start below epoch 1 (0, 20, 40... for 100 epochs): only
 * those inside the frame are drawn. */
static bool x_tick_shown(const panel *p, double v)
{
    return v >= p->xlo && v <= p->xhi;
}

/* Light lines at the ticks, under the curves. */
static void draw_grid(plot_canvas *cv, const panel *p)
{
    for (int i = 0; i < p->ny; i++) {
        double y = round(panel_y(p, p->yfirst + i * p->ystep));
        plot_line(cv, p->x0, y, p->x1, y, 1, GRID);
    }
    for (int i = 0; i < p->nx; i++) {
        double v = p->xfirst + i * p->xstep;
        if (x_tick_shown(p, v)) {
            double x = round(panel_x(p, v));
            plot_line(cv, x, p->y0, x, p->y1, 1, GRID);
        }
    }
}

/* The frame, the ticks and their labels, the panel's name above and
 * "epoch" below, over the curves. */
static void draw_axes(plot_canvas *cv, const panel *p, const char *name)
{
    char label[32];
    plot_line(cv, p->x0, p->y0, p->x1, p->y0, 1, SPINE);
    plot_line(cv, p->x0, p->y1, p->x1, p->y1, 1, SPINE);
    plot_line(cv, p->x0, p->y0, p->x0, p->y1, 1, SPINE);
    plot_line(cv, p->x1, p->y0, p->x1, p->y1, 1, SPINE);
    for (int i = 0; i < p->ny; i++) {
        double v = p->yfirst + i * p->ystep;
        int y = (int)round(panel_y(p, v));
        plot_line(cv, p->x0 - TICK_LEN, y, p->x0, y, 1, SPINE);
        plot_tick_label(v, p->ystep, label, sizeof label);
        plot_text(cv, p->x0 - TICK_LEN - 5 - plot_text_width(label, SCALE),
                  y - TEXT_CAP / 2, label, SCALE, INK);
    }
    for (int i = 0; i < p->nx; i++) {
        double v = p->xfirst + i * p->xstep;
        if (!x_tick_shown(p, v))
            continue;
        int x = (int)round(panel_x(p, v));
        plot_line(cv, x, p->y1, x, p->y1 + TICK_LEN, 1, SPINE);
        plot_tick_label(v, p->xstep, label, sizeof label);
        plot_text(cv, x - plot_text_width(label, SCALE) / 2,
                  p->y1 + TICK_LEN + 5, label, SCALE, INK);
    }
    int cx = (p->x0 + p->x1) / 2;
    plot_text(cv, cx - plot_text_width(name, SCALE) / 2, p->y0 - TEXT_BOX - 6,
              name, SCALE, INK);
    plot_text(cv, cx - plot_text_width("epoch", SCALE) / 2,
              p->y1 + TICK_LEN + 5 + TEXT_BOX + 2, "epoch", SCALE, INK);
}

static void draw_panel(plot_canvas *cv, int x0, int x1, const char *name,
                       const plot_series *ss, int ns, int epochs)
{
    panel p;
    if (!panel_layout(&p, cv, x0, x1, ss, ns, epochs))
        return;
    draw_grid(cv, &p);
    for (int k = 0; k < ns; k++)
        if (series_ok(&ss[k]))
            draw_series(cv, &p, &ss[k]);
    draw_axes(cv, &p, name);
    draw_legend(cv, &p, ss, ns);
}

void plot_draw_curves(plot_canvas *cv, const char *title,
                      const plot_series *loss, int nloss,
                      const plot_series *acc, int nacc)
{
    nloss = loss && nloss > 0 ? nloss : 0;
    nacc = acc && nacc > 0 ? nacc : 0;
    int epochs = 1;
    for (int k = 0; k < nloss; k++)
        epochs = series_ok(&loss[k]) && loss[k].n > epochs ? loss[k].n : epochs;
    for (int k = 0; k < nacc; k++)
        epochs = series_ok(&acc[k]) && acc[k].n > epochs ? acc[k].n : epochs;

    if (title && *title) {
        /* Bold: drawn twice, a pixel apart; smaller if it does not fit. */
        int scale = plot_text_width(title, SCALE) + 1 > cv->w - 20 ? 1 : SCALE;
        int x = (cv->w - plot_text_width(title, scale) - 1) / 2;
        plot_text(cv, x, 14, title, scale, INK);
        plot_text(cv, x + 1, 14, title, scale, INK);
    }
    if (nacc) {
        draw_panel(cv, 0, cv->w / 2 - 1, "Loss", loss, nloss, epochs);
        draw_panel(cv, cv->w / 2, cv->w - 1, "Accuracy", acc, nacc, epochs);
    } else {
        draw_panel(cv, 0, cv->w - 1, "Loss", loss, nloss, epochs);
    }
}

int plot_curves(nb_ctx *ctx, const char *path, const char *title,
                const plot_series *loss, int nloss, const plot_series *acc,
                int nacc)
{
    plot_canvas cv;
    nb_tensor *img = plot_canvas_new(ctx, PLOT_WIDTH, PLOT_HEIGHT, &cv);
    if (!img)
        return nb_error(ctx);
    plot_draw_curves(&cv, title, loss, nloss, acc, nacc);
    int rc = nb_png_write(ctx, path, img);
    nb_tensor_free(img);
    return rc;
}
