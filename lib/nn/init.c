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

/* ---- torch.nn.init with its arguments ----------------------------------- */

double nb_calculate_gain(nb_nonlinearity nonlinearity, double param)
{
    switch (nonlinearity) {
    case NB_NL_TANH: return 5.0 / 3;
    case NB_NL_RELU: return sqrt(2.0);
    case NB_NL_LEAKY_RELU: return sqrt(2.0 / (1 + param * param));
    case NB_NL_SELU: return 3.0 / 4;
    default: return 1; /* linear, the convolutions, sigmoid */
    }
}

static int need_fans(const nb_tensor *w, const char *op, double *in, double *out)
{
    if (w->ndim < 2) {
        char s[96];
        return nbi_fail(w->ctx_, NB_ERR_ARG, "%s: fan in and fan out need a tensor of 2 or "
                        "more dimensions, got %s", op, nb_shape_str(w, s, sizeof s));
    }
    fans(w, in, out);
    return NB_OK;
}

int nb_init_fans(const nb_tensor *w, double *fan_in, double *fan_out)
{
    double in = 0, out = 0;
    int rc = need_fans(w, "fans", &in, &out);
    if (!rc) {
        if (fan_in)
            *fan_in = in;
        if (fan_out)
            *fan_out = out;
    }
    return rc;
}

/* kaiming's std, gain / sqrt(fan), or a negative value on error. */
static double kaiming_std(const nb_tensor *w, const char *op, double a, nb_fan_mode mode,
                          nb_nonlinearity nonlinearity)
{
    double in = 0, out = 0;
    if (need_fans(w, op, &in, &out))
        return -1;
    return nb_calculate_gain(nonlinearity, a) / sqrt(mode == NB_FAN_OUT ? out : in);
}

int nb_init_kaiming_uniform_with(nb_tensor *w, nb_rng *rng, double a, nb_fan_mode mode,
                                 nb_nonlinearity nonlinearity)
{
    double std = kaiming_std(w, "kaiming_uniform", a, mode, nonlinearity);
    if (std < 0)
        return NB_ERR_ARG;
    nb_init_uniform(w, rng, sqrt(3.0) * std);
    return NB_OK;
}

int nb_init_kaiming_normal_with(nb_tensor *w, nb_rng *rng, double a, nb_fan_mode mode,
                                nb_nonlinearity nonlinearity)
{
    double std = kaiming_std(w, "kaiming_normal", a, mode, nonlinearity);
    if (std < 0)
        return NB_ERR_ARG;
    nb_fill_normal(w, rng, 0.0, std);
    return NB_OK;
}

int nb_init_xavier_uniform_with(nb_tensor *w, nb_rng *rng, double gain)
{
    double in = 0, out = 0;
    if (need_fans(w, "xavier_uniform", &in, &out))
        return NB_ERR_ARG;
    nb_init_uniform(w, rng, sqrt(3.0) * gain * sqrt(2.0 / (in + out)));
    return NB_OK;
}

int nb_init_xavier_normal_with(nb_tensor *w, nb_rng *rng, double gain)
{
    double in = 0, out = 0;
    if (need_fans(w, "xavier_normal", &in, &out))
        return NB_ERR_ARG;
    nb_fill_normal(w, rng, 0.0, gain * sqrt(2.0 / (in + out)));
    return NB_OK;
}

/* The standard normal's CDF. */
static double phi(double x)
{
    return 0.5 * erfc(-x / sqrt(2.0));
}

double nbi_trunc_normal_mass(double mean, double std, double a, double b)
{
    if (std == 0)
        return 1;
    return phi((b - mean) / std) - phi((a - mean) / std);
}

/* Rejection: exact, and at most 100 draws per element on average. */
int nb_init_trunc_normal(nb_tensor *t, nb_rng *rng, double mean, double std, double a, double b)
{
    if (!(a < b) || !(std >= 0))
        return nbi_fail(t->ctx_, NB_ERR_ARG, "trunc_normal: needs a < b and std >= 0, got a %g, "
                        "b %g, std %g", a, b, std);
    double mass = nbi_trunc_normal_mass(mean, std, a, b);
    if (!(mass >= NBI_TRUNC_NORMAL_MIN_MASS))
        return nbi_fail(t->ctx_, NB_ERR_ARG, "trunc_normal: [%g, %g] holds %.3g of normal(%g, "
                        "%g), less than %g", a, b, mass, mean, std, NBI_TRUNC_NORMAL_MIN_MASS);
    for (int64_t i = 0; i < t->numel; i++) {
        double x = mean < a ? a : mean > b ? b : mean;
        if (std > 0)
            do
                x = mean + std * nb_rng_normal(rng);
            while (!(x >= a && x <= b));
        nb_set(t, i, x);
    }
    return NB_OK;
}
