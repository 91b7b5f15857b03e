/*
 * rng.c - xoshiro256** (Blackman and Vigna), seeded through splitmix64.
 * Integer arithmetic only, so the stream is the same on every machine;
 * the normal draw uses log, sqrt and cos from libm.
 */
#include "internal.h"

#include <math.h>

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void nb_rng_seed(nb_rng *rng, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        rng->s[i] = splitmix64(&seed);
}

uint64_t nb_rng_next(nb_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double nb_rng_uniform(nb_rng *rng)
{
    return (double)(nb_rng_next(rng) >> 11) * 0x1.0p-53;
}

double nb_rng_normal(nb_rng *rng)
{
    /* Box-Muller on (0, 1] x [0, 1): u1 never 0, so log is finite. */
    double u1 = 1.0 - nb_rng_uniform(rng);
    double u2 = nb_rng_uniform(rng);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

uint64_t nb_rng_below(nb_rng *rng, uint64_t n)
{
    /* Rejection keeps it unbiased: drop draws from the incomplete last
     * block of n. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = nb_rng_next(rng);
    } while (x >= limit);
    return x % n;
}
