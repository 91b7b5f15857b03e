/*
 * json.c - the messages of lib/nn's JSON readers and the field reader:
 * every value a row (field.h) describes is read, range-checked and
 * reported here, so a layer's kernel_size and the training's epochs say
 * their mistakes the same way.  Knows the rows' kinds and cJSON values;
 * knows no layer, model or section.
 */
#include "json.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>

const nbi_ftype nbi_ftype_int = {.kind = NBI_FK_INT}, nbi_ftype_pad = {.kind = NBI_FK_PAD},
                nbi_ftype_real = {.kind = NBI_FK_REAL}, nbi_ftype_bool = {.kind = NBI_FK_BOOL},
                nbi_ftype_u64 = {.kind = NBI_FK_U64};

/* ---- messages ------------------------------------------------------------ */

int nbi_json_vfail(const nbi_json *js, const char *place, const char *fmt, va_list ap)
{
    char why[400];
    vsnprintf(why, sizeof why, fmt, ap);
    return nbi_fail(js->ctx, NB_ERR_FORMAT, "%s: %s: %s", js->origin, place, why);
}

int nbi_json_fail(const nbi_json *js, const char *place, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = nbi_json_vfail(js, place, fmt, ap);
    va_end(ap);
    return rc;
}

const char *nbi_json_num(char *buf, size_t size, double d)
{
    snprintf(buf, size, "%.15g", d);
    return buf;
}

const char *nbi_json_describe(char *buf, size_t size, const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return nbi_json_num(buf, size, v->valuedouble);
    if (cJSON_IsString(v))
        return nbi_quote(v->valuestring, buf, size);
    if (cJSON_IsBool(v))
        return cJSON_IsTrue(v) ? "true" : "false";
    if (cJSON_IsNull(v))
        return "null";
    if (cJSON_IsArray(v)) {
        int n = cJSON_GetArraySize(v);
        snprintf(buf, size, "a list of %d", n);
        return buf;
    }
    return "an object";
}

/* Levenshtein distance, or 3 when it is over 2 (all we need to know). */
static int distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64 || (la > lb ? la - lb : lb - la) > 2)
        return 3;
    int row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0];
        row[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb] > 2 ? 3 : row[lb];
}

void nbi_json_offer(nbi_json_suggest *s, const char *name)
{
    int d = distance(s->word, name);
    if (d <= 2 && (size_t)d < strlen(name) && d < s->dist) {
        s->best = name;
        s->dist = d;
    }
}

void nbi_json_offer_rows(nbi_json_suggest *s, const nbi_field *rows)
{
    for (const nbi_field *f = rows; f->name; f++)
        nbi_json_offer(s, f->name);
}

const char *nbi_json_did_you_mean(char *buf, size_t size, const nbi_json_suggest *s)
{
    if (!s->best)
        return "";
    snprintf(buf, size, " (did you mean \"%s\"?)", s->best);
    return buf;
}

int nbi_json_unknown(const nbi_json *js, const char *place, const char *key,
                     const nbi_json_suggest *s)
{
    char q[96], d[64];
    return nbi_json_fail(js, place, "unknown field %s%s", nbi_quote(key, q, sizeof q),
                         nbi_json_did_you_mean(d, sizeof d, s));
}

int nbi_json_twice(const nbi_json *js, const char *place, const char *key)
{
    char q[96];
    return nbi_json_fail(js, place, "field %s appears twice", nbi_quote(key, q, sizeof q));
}

int nbi_json_missing(const nbi_json *js, const char *place, const nbi_field *rows,
                     const bool *seen)
{
    for (int i = 0; rows[i].name; i++)
        if ((rows[i].flags & NBI_REQUIRED) && !seen[i])
            return nbi_json_fail(js, place, "missing field \"%s\"", rows[i].name);
    return NB_OK;
}

/* ---- numbers --------------------------------------------------------------- */

/* An integer in [lo, hi] from v, as a double (exact: |v| <= 2^53). */
static int read_integer(const nbi_json *js, const char *place, const cJSON *v, double lo,
                        double hi, const char *expected, double *out)
{
    char g[96];
    if (!cJSON_IsNumber(v))
        return nbi_json_fail(js, place, "expected %s, got %s", expected,
                             nbi_json_describe(g, sizeof g, v));
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d))
        return nbi_json_fail(js, place, "must be an integer, got %s", nbi_json_num(g, sizeof g, d));
    if (d < lo || d > hi) {
        nbi_json_num(g, sizeof g, d);
        if (lo == 1 && d < lo)
            return nbi_json_fail(js, place, "must be positive, got %s", g);
        if (lo == 0 && d < lo)
            return nbi_json_fail(js, place, "must not be negative, got %s", g);
        if (d > hi && hi == INT_MAX)
            return nbi_json_fail(js, place, "%s is too large (at most %d)", g, INT_MAX);
        return nbi_json_fail(js, place, "must be from %.0f to %.0f, got %s", lo, hi, g);
    }
    *out = d;
    return NB_OK;
}

int nbi_json_int(const nbi_json *js, const char *place, const cJSON *v, double lo, double hi,
                 const char *expected, int *out)
{
    double d = 0;
    int rc = read_integer(js, place, v, lo, hi, expected, &d);
    if (!rc)
        *out = (int)d;
    return rc;
}

/* An integer, or with NBI_PAIR a list [h, w] of them, into out[2]. */
static int read_ints(const nbi_json *js, const char *place, const cJSON *v, const nbi_field *f,
                     const char *expected, int *out)
{
    if (!(f->flags & NBI_PAIR) || !cJSON_IsArray(v)) {
        int rc = nbi_json_int(js, place, v, f->lo, f->hi, expected, &out[0]);
        out[1] = out[0];
        return rc;
    }
    if (cJSON_GetArraySize(v) != 2) {
        char g[96];
        return nbi_json_fail(js, place, "expected %s, got %s", expected,
                             nbi_json_describe(g, sizeof g, v));
    }
    for (int i = 0; i < 2; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s[%d]", place, i);
        int rc = nbi_json_int(js, p, cJSON_GetArrayItem(v, i), f->lo, f->hi, "an integer", &out[i]);
        if (rc)
            return rc;
    }
    return NB_OK;
}

/* A number in the row's range. */
static int read_real(const nbi_json *js, const char *place, const nbi_field *f, const cJSON *v,
                     double *out)
{
    char g[96];
    if (!cJSON_IsNumber(v))
        return nbi_json_fail(js, place, "expected a number, got %s",
                             nbi_json_describe(g, sizeof g, v));
    double d = v->valuedouble;
    bool open = f->flags & NBI_OPEN;
    if (!(d >= f->lo && (open ? d < f->hi : d <= f->hi))) { /* NaN fails too */
        nbi_json_num(g, sizeof g, d);
        if (f->lo <= -1e300 && f->hi >= 1e300)
            return nbi_json_fail(js, place, "must be a finite number, got %s", g);
        if (f->hi >= 1e300)
            return nbi_json_fail(js, place, "must be positive, got %s", g);
        return nbi_json_fail(js, place, "must be in [%g, %g%c, got %s", f->lo, f->hi,
                             open ? ')' : ']', g);
    }
    *out = d;
    return NB_OK;
}

/* ---- words and lists --------------------------------------------------------- */

/* "\"a\", \"b\" or \"c\"" from the words. */
static const char *choices_str(char *buf, size_t size, const char *const *words)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; words[i] && n < size; i++) {
        const char *sep = i == 0 ? "" : words[i + 1] ? ", " : " or ";
        n += (size_t)snprintf(buf + n, size - n, "%s\"%s\"", sep, words[i]);
    }
    return buf;
}

static int read_choice(const nbi_json *js, const char *place, const nbi_field *f, const cJSON *v,
                       int *out)
{
    char w[160], g[96], d[64];
    nbi_json_suggest sg = NBI_JSON_SUGGEST(cJSON_IsString(v) ? v->valuestring : "");
    const char *const *words = f->type->choices;
    for (int i = 0; words[i]; i++) {
        if (cJSON_IsString(v) && strcmp(v->valuestring, words[i]) == 0) {
            *out = i;
            return NB_OK;
        }
        nbi_json_offer(&sg, words[i]);
    }
    return nbi_json_fail(js, place, "expected %s, got %s%s", choices_str(w, sizeof w, words),
                         nbi_json_describe(g, sizeof g, v),
                         nbi_json_did_you_mean(d, sizeof d, &sg));
}

/* NBI_FK_REALS and NBI_FK_INTS: element i at base + offset + i * its size. */
static int read_list(const nbi_json *js, const char *place, const nbi_field *f, const cJSON *v,
                     void *base)
{
    char g[96], what[64];
    const nbi_ftype *t = f->type;
    bool reals = t->kind == NBI_FK_REALS;
    if ((f->flags & NBI_ONE) && cJSON_IsNumber(v)) {
        double d = 0;
        int rc = reals ? read_real(js, place, f, v, (double *)((char *)base + f->offset))
                       : read_integer(js, place, v, f->lo, f->hi, "an integer", &d);
        if (rc == NB_OK && !reals)
            *(int32_t *)((char *)base + f->offset) = (int32_t)d;
        if (rc == NB_OK)
            *(int *)((char *)base + t->len_offset) = 1;
        return rc;
    }
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : -1;
    if (n < t->len[0] || n > t->len[1]) {
        const char *unit = reals ? "numbers" : "integers";
        const char *one = !(f->flags & NBI_ONE) ? "" : reals ? "a number or " : "an integer or ";
        if (t->len[0] == t->len[1])
            snprintf(what, sizeof what, "%sa list of %d %s", one, t->len[0], unit);
        else
            snprintf(what, sizeof what, "%sa list of %d to %d %s", one, t->len[0], t->len[1],
                     unit);
        return nbi_json_fail(js, place, "expected %s, got %s", what,
                             nbi_json_describe(g, sizeof g, v));
    }
    char *dst = (char *)base + f->offset;
    int i = 0;
    for (const cJSON *e = v->child; e; e = e->next, i++) {
        char p[176];
        double d = 0;
        snprintf(p, sizeof p, "%s[%d]", place, i);
        int rc = reals ? read_real(js, p, f, e, &d)
                       : read_integer(js, p, e, f->lo, f->hi, "an integer", &d);
        if (rc)
            return rc;
        if (reals) {
            *(double *)(dst + (size_t)i * sizeof(double)) = d;
        } else {
            int32_t *x = (int32_t *)dst;
            x[i] = (int32_t)d;
            for (int j = 0; (f->flags & NBI_DISTINCT) && j < i; j++)
                if (x[j] == x[i])
                    return nbi_json_fail(js, place, "%s is listed twice",
                                         nbi_json_num(g, sizeof g, d));
        }
    }
    if (t->len[0] != t->len[1])
        *(int *)((char *)base + t->len_offset) = n;
    return NB_OK;
}

/* ---- rows --------------------------------------------------------------------- */

void nbi_json_defaults(const nbi_field *rows, void *base)
{
    for (const nbi_field *f = rows; f->name; f++) {
        void *dst = (char *)base + f->offset;
        if (f->flags & NBI_KEEP)
            continue;
        switch (f->type->kind) {
        case NBI_FK_INT:
            ((int *)dst)[0] = (int)f->def;
            if (f->flags & NBI_PAIR)
                ((int *)dst)[1] = (int)f->def;
            break;
        case NBI_FK_PAD: {
            nbi_pad *p = dst;
            p->v[0] = p->v[1] = (int)f->def;
            p->same = false;
            break;
        }
        case NBI_FK_REAL: *(double *)dst = f->def; break;
        case NBI_FK_BOOL: *(bool *)dst = f->def != 0; break;
        case NBI_FK_U64: *(uint64_t *)dst = (uint64_t)f->def; break;
        case NBI_FK_CHOICE: *(int *)dst = (int)f->def; break;
        case NBI_FK_REALS:
        case NBI_FK_INTS:
            if (f->type->len[0] != f->type->len[1])
                *(int *)((char *)base + f->type->len_offset) = 0;
            break;
        case NBI_FK_OBJECT: nbi_json_defaults(f->type->fields, base); break;
        }
    }
}

int nbi_json_find(const nbi_field *rows, const char *key)
{
    for (int i = 0; rows[i].name; i++)
        if (strcmp(key, rows[i].name) == 0)
            return i;
    return -1;
}

int nbi_json_field(const nbi_json *js, const char *place, const nbi_field *f, const cJSON *v,
                   void *base)
{
    void *dst = (char *)base + f->offset;
    char g[96];
    switch (f->type->kind) {
    case NBI_FK_INT: {
        const char *what = f->flags & NBI_PAIR ? "an integer or a list [h, w]" : "an integer";
        if (f->flags & NBI_PAIR)
            return read_ints(js, place, v, f, what, dst);
        return nbi_json_int(js, place, v, f->lo, f->hi, what, dst);
    }
    case NBI_FK_PAD: {
        nbi_pad *p = dst;
        const char *what = f->flags & NBI_PAIR ? "an integer, a list [h, w], \"same\" or \"valid\""
                                               : "an integer, \"same\" or \"valid\"";
        if (cJSON_IsString(v) && (f->flags & NBI_SAME)) {
            if (strcmp(v->valuestring, "same") == 0) {
                p->same = true;
                p->v[0] = p->v[1] = 0;
                return NB_OK;
            }
            if (strcmp(v->valuestring, "valid") == 0) {
                p->same = false;
                p->v[0] = p->v[1] = 0;
                return NB_OK;
            }
        }
        p->same = false;
        return read_ints(js, place, v, f, what, p->v);
    }
    case NBI_FK_REAL: return read_real(js, place, f, v, dst);
    case NBI_FK_BOOL:
        if (!cJSON_IsBool(v))
            return nbi_json_fail(js, place, "expected true or false, got %s",
                                 nbi_json_describe(g, sizeof g, v));
        *(bool *)dst = cJSON_IsTrue(v);
        return NB_OK;
    case NBI_FK_U64: {
        double d = 0;
        int rc = read_integer(js, place, v, f->lo, f->hi, "an integer", &d);
        if (!rc)
            *(uint64_t *)dst = (uint64_t)d;
        return rc;
    }
    case NBI_FK_CHOICE: return read_choice(js, place, f, v, dst);
    case NBI_FK_REALS:
    case NBI_FK_INTS: return read_list(js, place, f, v, base);
    case NBI_FK_OBJECT: return nbi_json_object(js, place, v, f->type->fields, base);
    }
    return NB_OK;
}

int nbi_json_object(const nbi_json *js, const char *place, const cJSON *v, const nbi_field *rows,
                    void *base)
{
    char g[96], fp[160];
    if (!cJSON_IsObject(v))
        return nbi_json_fail(js, place, "expected an object, got %s",
                             nbi_json_describe(g, sizeof g, v));
    nbi_json_defaults(rows, base);
    bool seen[NBI_MAX_FIELDS] = {false};
    for (const cJSON *c = v->child; c; c = c->next) {
        int f = nbi_json_find(rows, c->string);
        if (f < 0) {
            nbi_json_suggest sg = NBI_JSON_SUGGEST(c->string);
            nbi_json_offer_rows(&sg, rows);
            return nbi_json_unknown(js, place, c->string, &sg);
        }
        if (seen[f])
            return nbi_json_twice(js, place, c->string);
        seen[f] = true;
        snprintf(fp, sizeof fp, "%s.%s", place, c->string);
        int rc = nbi_json_field(js, fp, &rows[f], c, base);
        if (rc)
            return rc;
    }
    return nbi_json_missing(js, place, rows, seen);
}
