/*
 * text.c - one-line text for messages: shapes, pairs of sizes, strings
 * quoted from files, and the shape rules' reasons.  Every function writes
 * into the caller's buffer, always terminated, and returns it (nbi_why
 * returns -1).  Calls nothing of the library's.
 */
#include "internal.h"

#include <inttypes.h>
#include <stdio.h>

char *nb_dims_str(int ndim, const int64_t *d, char *buf, size_t size)
{
    if (size == 0)
        return buf;
    size_t len = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && len < size; i++)
        len += (size_t)snprintf(buf + len, size - len, "%s%" PRId64, i ? ", " : "", d[i]);
    if (len < size)
        len += (size_t)snprintf(buf + len, size - len, "]");
    if (len >= size && size >= 5) /* cut: say so */
        memcpy(buf + size - 5, "...]", 5);
    return buf;
}

char *nbi_pair_str(const int *v, char *buf, size_t size)
{
    if (v[0] == v[1])
        snprintf(buf, size, "%d", v[0]);
    else
        snprintf(buf, size, "[%d, %d]", v[0], v[1]);
    return buf;
}

char *nbi_input_str(const char *const *names, int i, char *buf, size_t size)
{
    if (names)
        return nbi_quote(names[i], buf, size);
    snprintf(buf, size, "%d", i);
    return buf;
}

int nbi_why(char *why, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, NBI_WHY_SIZE, fmt, ap);
    va_end(ap);
    return -1;
}

char *nbi_quote(const char *s, char *buf, size_t size)
{
    size_t j = 0;
    if (size < 8) { /* no room for a quoted "..." */
        if (size)
            buf[0] = '\0';
        return buf;
    }
    buf[j++] = '"';
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        char esc[8];
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof esc, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            snprintf(esc, sizeof esc, "\\u%04x", c);
        else
            esc[0] = (char)c, esc[1] = '\0';
        size_t k = strlen(esc);
        if (j + k + 5 > size) { /* keep room for ..." and the terminator */
            while (j > 1 && ((unsigned char)buf[j - 1] & 0xC0) == 0x80)
                j--; /* no half UTF-8 sequence before the dots */
            if (j > 1 && ((unsigned char)buf[j - 1] & 0xC0) == 0xC0)
                j--;
            memcpy(buf + j, "...", 3);
            j += 3;
            break;
        }
        memcpy(buf + j, esc, k);
        j += k;
    }
    buf[j++] = '"';
    buf[j] = '\0';
    return buf;
}
