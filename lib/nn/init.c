/*
 * init.c - weight initializers with PyTorch's formulas.  fan_in and fan_out
 * count the receptive field: a conv weight [out, in, kh, kw] has
 * fan_in = in kh kw and fan_out = out kh kw.
 */
#include "internal.h"

#include <math.h>

static void fans(const nb_tensor *w, double *fan_in, double *fan_out)
{
    if (w->ndim < 2) {
        *fan_in = *fan_out = (double)w->numel;
        return;
    }
    double field = 1;
    for (int d = 2; d < w->ndim; d++)
        field *= (double)w->shape[d];
    *fan_in = (double)w->shape[1] * field;
    *fan_out = (double)w->shape[0] * field;
}

void nb_init_uniform(nb_tensor *t, nb_rng *rng, double bound)
{
    nb_fill_uniform(t, rng, -bound, bound);
}

/* He: std = sqrt(2 / fan_in); the uniform bound is sqrt(3) std. */
void nb_init_kaiming_uniform(nb_tensor *w, nb_rng *rng)
{
    double in, out;
    fans(w, &in, &out);
    nb_init_uniform(w, rng, sqrt(3.0) * sqrt(2.0 / in));
}

void nb_init_kaiming_normal(nb_tensor *w, nb_rng *rng)
{
    double in, out;
    fans(w, &in, &out);
    nb_fill_normal(w, rng, 0.0, sqrt(2.0 / in));
}

/* Glorot: std = sqrt(2 / (fan_in + fan_out)). */
void nb_init_xavier_uniform(nb_tensor *w, nb_rng *rng)
{
    double in, out;
    fans(w, &in, &out);
    nb_init_uniform(w, rng, sqrt(6.0 / (in + out)));
}

void nb_init_xavier_normal(nb_tensor *w, nb_rng *rng)
{
    double in, out;
    fans(w, &in, &out);
    nb_fill_normal(w, rng, 0.0, sqrt(2.0 / (in + out)));
}

/* kaiming_uniform with a = sqrt(5): gain sqrt(2 / (1 + 5)), bound
 * sqrt(3) gain / sqrt(fan_in) = 1 / sqrt(fan_in); the bias uses the same. */
void nb_init_default(nb_tensor *w, nb_tensor *b, nb_rng *rng)
{
    double in, out;
    fans(w, &in, &out);
    double bound = 1.0 / sqrt(in);
    nb_init_uniform(w, rng, bound);
    if (b)
        nb_init_uniform(b, rng, bound);
}
