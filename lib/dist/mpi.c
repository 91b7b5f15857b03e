/*
 * mpi.c - the processes of a data-parallel run: nabla.h's nb_dist_*.
 * Built with MPI (configure --with-mpi), the world is MPI_COMM_WORLD's
 * processes, and nb_dist_comm's allgather is MPI_Allgatherv of bytes over
 * a duplicate of it (the library's messages never meet the program's),
 * whose errors come back as codes rather than ending the process.  Built
 * without, or run without an MPI launcher, the world is this process
 * alone and the allgather a copy.
 *
 * MPI is started only under a launcher (mpirun, mpiexec, srun: they set
 * the variables of launched()): a plain `nabla train` then runs exactly as
 * a build without MPI does, needs no MPI at run time and starts nothing.
 * It knows nothing of the rest of the library; the trainer sees only the
 * nb_comm.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "internal.h"

#include <limits.h>
#include <stdlib.h>

#ifdef HAVE_MPI
#include <mpi.h>
#endif

typedef struct world {
    bool started;   /* nb_dist_init ran */
    bool mpi;       /* MPI is in use */
    bool owns;      /* we called MPI_Init, so we finalize */
    int rank, size;
    int *counts, *displs; /* MPI_Allgatherv's, one per process */
#ifdef HAVE_MPI
    MPI_Comm comm;
#endif
    char library[96];
} world;

static world w = {.size = 1};

/* A single process's allgather: its own bytes. */
static int copy_gather(void *ud, const void *send, void *recv, const size_t *bytes, char *why,
                       size_t why_size)
{
    (void)ud;
    (void)why;
    (void)why_size;
    if (bytes[0] && send != recv)
        memmove(recv, send, bytes[0]);
    return 0;
}

#ifdef HAVE_MPI

/* True when a launcher started this process as one of a job's. */
static bool launched(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
                                       "PMI_SIZE", "MPI_LOCALNRANKS"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        if (getenv(vars[i]))
            return true;
    return false;
}

static void mpi_why(int err, const char *what, char *why, size_t why_size)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(err, msg, &len) != MPI_SUCCESS)
        snprintf(msg, sizeof msg, "error %d", err);
    snprintf(why, why_size, "%s: %s", what, msg);
}

/* MPI_Allgatherv of bytes: its counts and offsets are ints, so an
 * exchange past INT_MAX bytes is refused rather than cut. */
static int mpi_gather(void *ud, const void *send, void *recv, const size_t *bytes, char *why,
                      size_t why_size)
{
    (void)ud;
    size_t at = 0;
    for (int r = 0; r < w.size; r++) {
        if (bytes[r] > (size_t)INT_MAX || at > (size_t)INT_MAX - bytes[r]) {
            snprintf(why, why_size, "MPI_Allgatherv: %zu bytes from rank %d at offset %zu: MPI's "
                     "int counts reach %d bytes", bytes[r], r, at, INT_MAX);
            return -1;
        }
        w.counts[r] = (int)bytes[r];
        w.displs[r] = (int)at;
        at += bytes[r];
    }
    /* MPI forbids a send buffer inside the receive buffer: send in place. */
    const void *src = send;
    char *mine = (char *)recv + w.displs[w.rank];
    if (send == mine)
        src = MPI_IN_PLACE;
    int err = MPI_Allgatherv(src, w.counts[w.rank], MPI_BYTE, recv, w.counts, w.displs, MPI_BYTE,
                             w.comm);
    if (err != MPI_SUCCESS) {
        mpi_why(err, "MPI_Allgatherv", why, why_size);
        return -1;
    }
    return 0;
}

static void name_library(void)
{
    char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    if (MPI_Get_library_version(v, &len) != MPI_SUCCESS)
        v[0] = '\0';
    v[strcspn(v, ",\n")] = '\0'; /* "Open MPI v4.1.4" of its long line */
    snprintf(w.library, sizeof w.library, "%s", v[0] ? v : "MPI");
}

static int start_mpi(int *argc, char ***argv)
{
    int on = 0, done = 0, provided;
    MPI_Initialized(&on);
    MPI_Finalized(&done);
    /* MPI starts once per process: after its end, a world of one. */
    if ((!on && !launched()) || done)
        return NB_OK;
    /* Only the thread that called nb_dist_init exchanges: OpenMP's threads
     * run between exchanges, never inside one. */
    if (!on && MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return NB_ERR_IO;
    w.owns = !on;
    if (MPI_Comm_dup(MPI_COMM_WORLD, &w.comm) != MPI_SUCCESS)
        return NB_ERR_IO;
    MPI_Comm_set_errhandler(w.comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(w.comm, &w.rank);
    MPI_Comm_size(w.comm, &w.size);
    /* The world has no context to allocate from: malloc, once. */
    w.counts = malloc((size_t)w.size * sizeof *w.counts);
    w.displs = malloc((size_t)w.size * sizeof *w.displs);
    if (!w.counts || !w.displs)
        return NB_ERR_NOMEM;
    w.mpi = true;
    name_library();
    return NB_OK;
}

#endif /* HAVE_MPI */

int nb_dist_init(int *argc, char ***argv)
{
    if (w.started)
        return NB_OK;
    w.started = true;
    snprintf(w.library, sizeof w.library, "none");
#ifdef HAVE_MPI
    int rc = start_mpi(argc, argv);
    if (rc != NB_OK) {
        w.rank = 0;
        w.size = 1;
    }
    return rc;
#else
    (void)argc;
    (void)argv;
    return NB_OK;
#endif
}

int nb_dist_rank(void)
{
    return w.rank;
}

int nb_dist_size(void)
{
    return w.size;
}

bool nb_dist_enabled(void)
{
#ifdef HAVE_MPI
    return true;
#else
    return false;
#endif
}

const char *nb_dist_library(void)
{
    return w.mpi ? w.library : "none";
}

nb_comm nb_dist_comm(void)
{
    nb_comm c = {.rank = w.rank, .size = w.size, .allgather = copy_gather};
#ifdef HAVE_MPI
    if (w.mpi)
        c.allgather = mpi_gather;
#endif
    return c;
}

void nb_dist_finalize(void)
{
#ifdef HAVE_MPI
    if (w.mpi) {
        MPI_Comm_free(&w.comm);
        if (w.owns)
            MPI_Finalize();
    }
#endif
    free(w.counts);
    free(w.displs);
    w = (world){.size = 1};
}

void nb_dist_abort(int code)
{
    fflush(stdout);
    fflush(stderr);
#ifdef HAVE_MPI
    if (w.mpi && w.size > 1)
        MPI_Abort(MPI_COMM_WORLD, code);
#else
    (void)code;
#endif
}
