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

int nbi_file_read(nb_ctx *ctx, const char *path, size_t max, unsigned flags, char **data,
                  size_t *len)
{
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return nbi_fail(ctx, NB_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    bool regular = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode);
    int rc = NB_OK;
    if (!regular && (flags & NBI_FILE_REGULAR)) {
        fclose(f);
        return nbi_fail(ctx, NB_ERR_IO, "%s: not a regular file", path);
    }
    /* A regular file's size is known (+ 1 to see its end without
     * growing); anything else, a pipe say, is read in growing pieces. */
    size_t cap = regular && (uintmax_t)st.st_size < max ? (size_t)st.st_size + 1 : 65536;
    char *buf = NULL;
    size_t n = 0;
    for (;;) {
        if (!buf || n == cap) {
            if (buf && cap > max) {
                rc = nbi_fail(ctx, NB_ERR_FORMAT, "%s: the file is larger than %zu MB", path,
                              max >> 20);
                break;
            }
            size_t ncap = buf ? (cap > SIZE_MAX / 2 ? SIZE_MAX : 2 * cap) : cap;
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
    fclose(f);
    if (rc != NB_OK) {
        nbi_free(ctx, buf);
        return rc;
    }
    *data = buf;
    *len = n;
    return NB_OK;
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
