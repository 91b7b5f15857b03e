/*
 * fma-peak.c - the machine's FP32 multiply-add peak, in GFLOP/s, for each
 * vector width the CPU has: the x86-64 baseline (SSE, 128-bit, a multiply
 * and an add), AVX2 with FMA (256-bit) and AVX-512F (512-bit), on 1 thread
 * and on --threads N (OpenMP; default 2).  This is the ceiling nabla's
 * kernels are held against: bench/compare.py divides nabla's GFLOP/s by the
 * peak at the width of its kernels ("fraction of peak").
 *
 *   fma-peak [--threads N] [--json]
 *
 * Each thread runs 12 independent chains of acc = acc * a + b (16 with
 * AVX-512's 32 registers), enough to hide the latency on two pipes with all
 * of them, a and b in registers, ITERS times, timed with CLOCK_MONOTONIC;
 * the best of REPEATS runs counts.  Built with
 * -ffp-contract=fast (Makefile.am), so the AVX2 and AVX-512 loops are FMAs.
 * Needs libc and, for more than one thread, OpenMP.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef _OPENMP
#define OMP(x) _Pragma(#x)
#else
#define OMP(x) /* one thread */
#endif

#define ITERS (1L << 23)
#define REPEATS 5

typedef float v4 __attribute__((vector_size(16)));
typedef float v8 __attribute__((vector_size(32)));
typedef float v16 __attribute__((vector_size(64)));

static volatile float sink, seed = 1.0f;

/* ITERS rounds of ACC multiply-adds on vectors of type VT; returns their
 * sum so that none of it is dead. */
#define KERNEL(name, attr, vt, ACC)                                            \
    attr static float name(void)                                              \
    {                                                                          \
        vt a = (vt){0} + 0.999999f, b = (vt){0} + 1e-6f, acc[ACC];             \
        float x = seed, s = 0;                                                 \
        for (int k = 0; k < ACC; k++)                                          \
            acc[k] = (vt){0} + x * (float)k;                                   \
        for (long i = 0; i < ITERS; i++) {                                     \
            _Pragma("GCC unroll 16") for (int k = 0; k < ACC; k++)             \
                acc[k] = acc[k] * a + b;                                       \
        }                                                                      \
        for (int k = 0; k < ACC; k++)                                          \
            for (int l = 0; l < (int)(sizeof(vt) / sizeof(float)); l++)        \
                s += acc[k][l];                                                \
        return s;                                                              \
    }

KERNEL(run_baseline, , v4, 12)
KERNEL(run_avx2, __attribute__((target("avx2,fma"))), v8, 12)
KERNEL(run_avx512, __attribute__((target("avx2,fma,avx512f"))), v16, 16)

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* GFLOP/s of fn, which does `madds` multiply-adds per round, on nt threads:
 * the best of REPEATS, all threads together. */
static double peak(float (*fn)(void), int madds, int nt)
{
    double best = 0;
    for (int r = 0; r < REPEATS; r++) {
        double t0 = 0, t1 = 0;
        OMP(omp parallel num_threads(nt))
        {
            OMP(omp master)
            t0 = now();
            OMP(omp barrier)
            float s = fn();
            OMP(omp barrier)
            OMP(omp master)
            t1 = now();
            OMP(omp critical)
            sink += s;
        }
        double gf = 2.0 * madds * (double)ITERS * nt / (t1 - t0) * 1e-9;
        best = gf > best ? gf : best;
    }
    return best;
}

int main(int argc, char **argv)
{
    int threads = 2, json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc && atoi(argv[i + 1]) > 0)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json"))
            json = 1;
        else {
            fprintf(stderr, "usage: fma-peak [--threads N] [--json]\n");
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
#ifndef _OPENMP
    threads = 1; /* built without OpenMP: one thread only */
#endif
    char cpu[256] = "unknown", line[1024];
    FILE *f = fopen("/proc/cpuinfo", "r");
    while (f && fgets(line, sizeof line, f)) {
        char *colon = strchr(line, ':');
        if (!strncmp(line, "model name", 10) && colon) {
            snprintf(cpu, sizeof cpu, "%s", colon + 1 + (colon[1] == ' '));
            cpu[strcspn(cpu, "\n\"\\")] = 0;
            break;
        }
    }
    if (f)
        fclose(f);

    struct { const char *name; float (*fn)(void); int madds, ok; } w[] = {
        {"baseline", run_baseline, 4 * 12, 1},
        {"avx2", run_avx2, 8 * 12, __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")},
        {"avx512", run_avx512, 16 * 16, __builtin_cpu_supports("avx512f")},
    };
    int nt[2] = {1, threads}, ncol = threads > 1 ? 2 : 1, widest = 0;
    if (json)
        printf("{\"cpu\": \"%s\", \"gflops\": {", cpu);
    for (int k = 0; k < 3; k++) {
        if (!w[k].ok)
            continue;
        if (json)
            printf("%s\"%s\": {", k ? ", " : "", w[k].name);
        else
            printf("fma peak %s:", w[k].name);
        for (int c = 0; c < ncol; c++) {
            double gf = peak(w[k].fn, w[k].madds, nt[c]);
            if (json)
                printf("%s\"%d\": %.1f", c ? ", " : "", nt[c], gf);
            else
                printf("%s %d thread%s %.1f GFLOP/s", c ? "," : "", nt[c], nt[c] > 1 ? "s" : "", gf);
        }
        printf(json ? "}" : "\n");
        fflush(stdout);
        widest = k;
    }
    if (json)
        printf("}, \"widest\": \"%s\", \"threads\": %d}\n", w[widest].name, threads);
    return 0;
}
