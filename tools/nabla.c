/*
 * nabla.c - the `nabla` command-line tool: picks a verb from verbs.def and
 * runs it.  Everything a verb does lives in its own file.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "cli.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#if defined(HAVE_MALLOC_H) && defined(HAVE_MALLOPT)
#include <malloc.h>
#endif

typedef struct verb {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} verb;

static const verb verbs[] = {
#define VERB(name, summary) {#name, summary, cmd_##name},
#include "verbs.def"
#undef VERB
};

static void usage(FILE *out)
{
    fprintf(out, "usage: nabla VERB [options]\n"
                 "       nabla VERB --help\n"
                 "\n"
                 "Trains and runs convolutional networks described in JSON files, checks\n"
                 "their gradients and looks inside them.  A verb's MODEL is a model file\n"
                 "or the name of an installed one: \"nabla summary lenet\" reads\n"
                 "lenet.json from NABLA_MODELS, else from the models' directory.\n"
                 "\n"
                 "verbs:\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        fprintf(out, "  %-12s %s\n", verbs[i].name, verbs[i].summary);
    fprintf(out, "\n"
                 "options:\n"
                 "  -h, --help   print this help and exit\n"
                 "  --version    print the version and exit\n"
                 "\n"
                 "exit status:\n"
                 "  0  success\n"
                 "  1  a runtime failure: out of memory, a failed write, a gradient that\n"
                 "     disagrees\n"
                 "  2  bad usage or bad input, with one line on stderr saying what and where\n"
                 "\n"
                 "environment:\n"
                 "  NABLA_NUM_THREADS  the threads of train and eval (default: one per online\n"
                 "                     core; --threads overrides it)\n"
                 "  NABLA_CPU          the kernels: avx512, avx2 or baseline (default: the widest\n"
                 "                     this CPU runs; avx512 and avx2 give the same results)\n"
                 "  NABLA_MAX_MEMORY   the limit files, models and batches are checked against\n"
                 "                     before they are allocated: a size such as 512M or 4G\n"
                 "                     (default: this machine's memory)\n"
                 "  NABLA_MODELS       a directory of model files: a MODEL that is not a file\n"
                 "                     and has no '/' is NAME.json there, else in the models'\n"
                 "                     directory\n"
                 "\n"
                 "files:\n"
                 "  %s\n"
                 "      the models' directory: the networks installed with nabla\n"
                 "  %s\n"
                 "      the documentation\n",
            CLI_MODELS_DIR, NB_PKGDATADIR "/docs");
}

static const verb *find_verb(const char *name)
{
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        if (strcmp(verbs[i].name, name) == 0)
            return &verbs[i];
    return NULL;
}

/* OpenBLAS's pthread build starts its threads as it loads, before main,
 * and each maps a 128 MiB buffer, retrying forever when it cannot: under an
 * address-space limit such a thread spins for the whole run and exit waits
 * for it.  nabla keeps OpenBLAS on one thread anyway, and OpenBLAS reads
 * OPENBLAS_NUM_THREADS as it loads, so under a limit nabla runs itself
 * again with it set to 1 (unless the caller set it): no such threads. */
static void one_blas_thread(char **argv)
{
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
    struct rlimit as, data;
    if (getenv("OPENBLAS_NUM_THREADS") || getrlimit(RLIMIT_AS, &as) != 0 ||
        getrlimit(RLIMIT_DATA, &data) != 0 ||
        (as.rlim_cur == RLIM_INFINITY && data.rlim_cur == RLIM_INFINITY))
        return;
    if (setenv("OPENBLAS_NUM_THREADS", "1", 1) == 0)
        execv("/proc/self/exe", argv); /* returns only on failure: run on as we are */
#else
    (void)argv;
#endif
}

int main(int argc, char **argv)
{
    one_blas_thread(argv);
#if defined(HAVE_MALLOC_H) && defined(HAVE_MALLOPT) && defined(M_MMAP_THRESHOLD)
    /* Buffers of 128 KiB and more are mapped, and unmapped when freed.
     * Otherwise glibc raises the threshold when the test set is freed, and
     * the first step's arena chunks, freed soon after, stay resident. */
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
    /* Each line as it is printed, to a log file or a pipe too: a run that
     * is killed keeps what it said. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Past `ulimit -f`, a write fails with EFBIG, reported as any failed
     * write (its temporary removed), instead of the process being killed. */
    signal(SIGXFSZ, SIG_IGN);
    if (argc < 2)
        return cli_fail(CLI_USAGE, "no verb given (usage: nabla VERB [options]; see nabla --help)");
    const char *arg = argv[1];
    if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
        usage(stdout);
        return CLI_OK;
    }
    if (strcmp(arg, "--version") == 0) {
        printf("nabla %s\n", NB_VERSION);
        return CLI_OK;
    }
    /* "nabla help forward" is "nabla forward --help". */
    if (strcmp(arg, "help") == 0) {
        if (argc == 2) {
            usage(stdout);
            return CLI_OK;
        }
        const verb *v = find_verb(argv[2]);
        if (!v)
            return cli_fail(CLI_USAGE, "unknown verb '%s' (see nabla --help)", argv[2]);
        cli_set_verb(v->name);
        static char help_flag[] = "--help";
        char *help_argv[] = {argv[2], help_flag, NULL};
        return v->run(2, help_argv);
    }
    if (arg[0] == '-')
        return cli_fail(CLI_USAGE, "unknown option %s (see nabla --help)", arg);
    const char *max = getenv("NABLA_MAX_MEMORY");
    uint64_t bytes;
    if (max && *max && !cli_size(max, &bytes))
        return cli_fail(CLI_USAGE, "NABLA_MAX_MEMORY: '%s' is not a size (such as 512M or 4G)",
                        max);
    const char *cpu = getenv("NABLA_CPU");
    char why[160];
    if (cpu && *cpu && nb_set_cpu_kernels(cpu, why, sizeof why))
        return cli_fail(CLI_USAGE, "NABLA_CPU: %s", why);
    const verb *v = find_verb(arg);
    if (!v)
        return cli_fail(CLI_USAGE, "unknown verb '%s' (see nabla --help)", arg);
    cli_set_verb(v->name);
    return v->run(argc - 1, argv + 1);
}
