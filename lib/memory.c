/*
 * memory.c - how much memory a context may plan to hold, and the check made
 * before allocating what a file or a model declares.  The limit is the
 * caller's (nb_ctx_set_memory_limit) or else the machine's: its physical
 * memory, lowered by the process's limits on its address space (ulimit -v)
 * and data (ulimit -d).  Physical memory rather than what is free now
 * (/proc/meminfo's MemAvailable): the same command then passes or fails
 * the same way whatever else runs, and what exceeds it can never fit;
 * below it an allocation may still fail, which is NB_ERR_NOMEM as ever.
 * Knows the context and nothing above it.
 */
#include "internal.h"

#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

/* Where the machine's figure comes from, for messages. */
enum { SRC_PHYS, SRC_AS, SRC_DATA };

static uint64_t machine(int *source)
{
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    uint64_t m = pages > 0 && page > 0 ? (uint64_t)pages * (uint64_t)page : UINT64_MAX;
    int src = SRC_PHYS;
    static const int limits[] = {RLIMIT_AS, RLIMIT_DATA};
    for (int i = 0; i < 2; i++) {
        struct rlimit rl;
        if (getrlimit(limits[i], &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
            (uint64_t)rl.rlim_cur < m) {
            m = (uint64_t)rl.rlim_cur;
            src = i == 0 ? SRC_AS : SRC_DATA;
        }
    }
    if (source)
        *source = src;
    return m;
}

uint64_t nb_memory_machine(void)
{
    return machine(NULL);
}

uint64_t nb_ctx_set_memory_limit(nb_ctx *ctx, uint64_t bytes)
{
    uint64_t old = ctx->mem_limit;
    ctx->mem_limit = bytes;
    return old;
}

uint64_t nb_ctx_memory_limit(const nb_ctx *ctx)
{
    return ctx->mem_limit ? ctx->mem_limit : machine(NULL);
}

bool nbi_mem_fits(const nb_ctx *ctx, uint64_t bytes)
{
    return bytes <= nb_ctx_memory_limit(ctx);
}

char *nbi_bytes_str(uint64_t bytes, char *buf, size_t size)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (bytes < 1024) {
        snprintf(buf, size, "%u B", (unsigned)bytes);
        return buf;
    }
    double v = (double)bytes / 1024;
    int u = 0;
    while (v >= 1024 && u < 5) {
        v /= 1024;
        u++;
    }
    snprintf(buf, size, "%.1f %s", v, units[u]);
    return buf;
}

int nbi_mem_refuse(nb_ctx *ctx, uint64_t bytes, const char *fmt, ...)
{
    char what[sizeof ctx->msg], need[32], lim[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    nbi_bytes_str(bytes, need, sizeof need);
    if (ctx->mem_limit) {
        nbi_bytes_str(ctx->mem_limit, lim, sizeof lim);
        return nbi_fail(ctx, NB_ERR_NOMEM, "%s needs %s, more than the memory limit of %s", what,
                        need, lim);
    }
    int src;
    nbi_bytes_str(machine(&src), lim, sizeof lim);
    char limit[96];
    if (src == SRC_PHYS)
        snprintf(limit, sizeof limit, "this machine's memory (%s)", lim);
    else
        snprintf(limit, sizeof limit, "the process's %s limit (%s, ulimit -%c)",
                 src == SRC_AS ? "address space" : "data", lim, src == SRC_AS ? 'v' : 'd');
    return nbi_fail(ctx, NB_ERR_NOMEM, "%s needs %s, more than %s", what, need, limit);
}

uint64_t nbi_persistent_bytes(const nb_ctx *ctx)
{
    return ctx->persistent_bytes;
}
