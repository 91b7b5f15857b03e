/*
 * file.c - whole files in and out: reading a file into memory with a bound
 * on its size, and writing one atomically (a unique temporary beside it,
 * flushed to disk, then renamed into place), so a reader never sees half a
 * file and a crash leaves the old one.  Knows only the context.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* A regular file of `size` bytes (its fstat), in one buffer of that size
 * and a byte more, to see that it did not grow meanwhile. */
static int read_regular(nb_ctx *ctx, FILE *f, const char *path, uint64_t size, size_t max,
                        char **data, size_t *len)
{
    if (size > max)
        return nbi_fail(ctx, NB_ERR_FORMAT, "%s: the file is larger than %zu MB", path, max >> 20);
    if (!nbi_mem_fits(ctx, size))
        return nbi_mem_refuse(ctx, size, "%s: reading the file whole", path);
    char *buf = nbi_alloc(ctx, (size_t)size + 1);
    if (!buf)
        return NB_ERR_NOMEM;
    size_t n = fread(buf, 1, (size_t)size + 1, f);
    int rc = NB_OK;
    if (ferror(f))
        rc = nbi_fail(ctx, NB_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
    else if (n > size)
        rc = nbi_fail(ctx, NB_ERR_IO, "%s: the file grew while it was read", path);
    if (rc != NB_OK) {
        nbi_free(ctx, buf);
        return rc;
    }
    *data = buf;
    *len = n;
    return NB_OK;
}

/* Anything else, a pipe say, has no size: read in growing pieces, up to
 * max. */
static int read_stream(nb_ctx *ctx, FILE *f, const char *path, size_t max, char **data,
                       size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = NULL;
    int rc = NB_OK;
    for (;;) {
        if (!buf || n == cap) {
            if (buf && cap > max) {
                rc = nbi_fail(ctx, NB_ERR_FORMAT, "%s: the file is larger than %zu MB", path,
                              max >> 20);
                break;
            }
            /* Never past max + 1: enough to see that there is more. */
            size_t ncap = !buf ? cap : cap > max / 2 ? max + 1 : 2 * cap;
            char *nbuf = nbi_alloc(ctx, ncap);
            if (!nbuf) {
                rc = NB_ERR_NOMEM;
                break;
            }
            if (n)
                memcpy(nbuf, buf, n);
            nbi_free(ctx, buf);
            buf = nbuf;
            cap = ncap;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                rc = nbi_fail(ctx, NB_ERR_IO, "%s: cannot read: %s", path, strerror(errno));
            else if (n > max)
                rc = nbi_fail(ctx, NB_ERR_FORMAT, "%s: the file is larger than %zu MB", path,
                              max >> 20);
            break;
        }
    }
    if (rc != NB_OK) {
        nbi_free(ctx, buf);
        return rc;
    }
    *data = buf;
    *len = n;
    return NB_OK;
}

int nbi_file_read(nb_ctx *ctx, const char *path, size_t max, unsigned flags, char **data,
                  size_t *len)
{
    *data = NULL;
    *len = 0;
    struct stat st;
    /* Refused before opening: opening a FIFO waits for its writer. */
    if ((flags & NBI_FILE_REGULAR) && stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return nbi_fail(ctx, NB_ERR_IO, "%s: not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f)
        return nbi_fail(ctx, NB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    bool regular = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
    int rc;
    if (regular)
        rc = read_regular(ctx, f, path, (uint64_t)st.st_size, max, data, len);
    else if (flags & NBI_FILE_REGULAR) /* replaced since the stat */
        rc = nbi_fail(ctx, NB_ERR_IO, "%s: not a regular file", path);
    else
        rc = read_stream(ctx, f, path, max, data, len);
    fclose(f);
    return rc;
}

char *nbi_path_join(nb_ctx *ctx, const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = nbi_alloc(ctx, la + lb + 2);
    if (p) {
        memcpy(p, a, la);
        p[la] = '/';
        memcpy(p + la + 1, b, lb + 1);
    }
    return p;
}

/* ---- atomic writes ------------------------------------------------------ */

int nbi_atomic_open(nb_ctx *ctx, nbi_atomic *a, const char *path)
{
    static unsigned serial; /* with the pid, a name no other writer uses */
    a->path = path;
    a->f = NULL;
    size_t size = strlen(path) + 48;
    if (!(a->tmp = nbi_alloc(ctx, size)))
        return NB_ERR_NOMEM;
    for (int k = 0; k < 100; k++) {
        snprintf(a->tmp, size, "%s.tmp.%ld.%u", path, (long)getpid(), serial++);
        /* O_EXCL: never another's file; 0666 less the umask, as any new file. */
        int fd = open(a->tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd >= 0) {
            if ((a->f = fdopen(fd, "wb")))
                return NB_OK;
            int err = errno;
            close(fd);
            unlink(a->tmp);
            errno = err;
            break;
        }
        if (errno != EEXIST)
            break;
    }
    int rc = nbi_fail(ctx, NB_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    nbi_free(ctx, a->tmp);
    a->tmp = NULL;
    return rc;
}

int nbi_atomic_commit(nb_ctx *ctx, nbi_atomic *a, int err)
{
    /* On disk before it takes the destination's name. */
    if (!err && (ferror(a->f) || fflush(a->f) != 0 || fsync(fileno(a->f)) != 0))
        err = errno ? errno : EIO;
    if (fclose(a->f) != 0 && !err)
        err = errno;
    a->f = NULL;
    if (!err && rename(a->tmp, a->path) != 0)
        err = errno;
    if (err)
        unlink(a->tmp);
    nbi_free(ctx, a->tmp);
    a->tmp = NULL;
    return err ? nbi_fail(ctx, NB_ERR_IO, "%s: cannot write: %s", a->path, strerror(err))
               : NB_OK;
}

void nbi_atomic_abort(nb_ctx *ctx, nbi_atomic *a)
{
    if (a->f)
        fclose(a->f);
    if (a->tmp)
        unlink(a->tmp);
    nbi_free(ctx, a->tmp);
    a->f = NULL;
    a->tmp = NULL;
}

int nb_file_write(nb_ctx *ctx, const char *path, const void *data, size_t size)
{
    if (!path || (!data && size))
        return nbi_fail(ctx, NB_ERR_ARG, "file_write: %s is NULL", path ? "data" : "path");
    nbi_atomic a;
    int rc = nbi_atomic_open(ctx, &a, path);
    if (rc != NB_OK)
        return rc;
    errno = 0;
    int err = size && fwrite(data, 1, size, a.f) != size ? (errno ? errno : EIO) : 0;
    return nbi_atomic_commit(ctx, &a, err);
}
