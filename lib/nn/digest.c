/*
 * digest.c - nb_model_digest: a 64-bit digest of the network a model is,
 * taken over a canonical text of it (the dtype, the input shape, each
 * layer's type, name, inputs, every setting after its defaults, its
 * activation, its "init" (when not the layer's own: it changes the first
 * weights, as another layer setting would), its tensors' shapes and its
 * output shape, then the output layer and the loss).  Two files that load to the same network have the
 * same digest whatever their layout; the name, the weights and the
 * optimizer and training sections are not part of it.  Reads the layers'
 * field rows as json.c writes them; knows no JSON.  nbi_fields_text walks
 * the same rows for the text summaries show.
 */
#include "model.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

static void put(uint64_t *h, const char *fmt, ...) NBI_PRINTF(2, 3);

static void put(uint64_t *h, const char *fmt, ...)
{
    char buf[96];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0)
        *h = nbi_hash(*h, buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* A string of any length, ended by a zero byte so that "ab" "c" is not
 * "a" "bc". */
static void put_str(uint64_t *h, const char *s)
{
    s = s ? s : "";
    *h = nbi_hash(*h, s, strlen(s) + 1);
}

static void put_shape(uint64_t *h, const nbi_shape *s)
{
    put(h, "[");
    for (int d = 0; d < s->ndim; d++)
        put(h, "%s%" PRId64, d ? "," : "", s->d[d]);
    put(h, "]");
}

/* Each row's value in base, as the row's kind stores it. */
static void put_fields(uint64_t *h, const nbi_field *rows, const void *base)
{
    for (const nbi_field *f = rows; f && f->name; f++) {
        const char *p = (const char *)base + f->offset;
        const nbi_ftype *t = f->type;
        bool pair = f->flags & NBI_PAIR;
        put(h, " %s=", f->name);
        switch (t->kind) {
        case NBI_FK_INT: {
            const int *v = (const int *)p;
            if (pair)
                put(h, "%d,%d", v[0], v[1]);
            else
                put(h, "%d", v[0]);
            break;
        }
        case NBI_FK_PAD: {
            const nbi_pad *v = (const nbi_pad *)p;
            if (pair)
                put(h, "%d,%d%s", v->v[0], v->v[1], v->same ? ",same" : "");
            else
                put(h, "%d%s", v->v[0], v->same ? ",same" : "");
            break;
        }
        case NBI_FK_REAL: put(h, "%.17g", *(const double *)p); break;
        case NBI_FK_BOOL: put(h, "%d", *(const bool *)p ? 1 : 0); break;
        case NBI_FK_U64: put(h, "%" PRIu64, *(const uint64_t *)p); break;
        case NBI_FK_CHOICE: put(h, "%d", *(const int *)p); break;
        case NBI_FK_REALS:
        case NBI_FK_INTS: {
            int n = t->len[0] == t->len[1] ? t->len[0]
                                           : *(const int *)((const char *)base + t->len_offset);
            for (int i = 0; i < n; i++) {
                if (t->kind == NBI_FK_REALS)
                    put(h, "%s%.17g", i ? "," : "", ((const double *)p)[i]);
                else
                    put(h, "%s%" PRId32, i ? "," : "", ((const int32_t *)p)[i]);
            }
            break;
        }
        case NBI_FK_OBJECT: put_fields(h, t->fields, base); break;
        }
    }
}

/* ---- the settings as text ------------------------------------------------ */

static void add(char *buf, size_t size, size_t *at, const char *fmt, ...) NBI_PRINTF(4, 5);

static void add(char *buf, size_t size, size_t *at, const char *fmt, ...)
{
    if (*at >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *at, size - *at, fmt, ap);
    va_end(ap);
    *at = n < 0 ? size : *at + (size_t)n;
}

/* An int or a pair: one number when both are the same. */
static void add_ints(char *buf, size_t size, size_t *at, const int *v, bool pair)
{
    if (pair && v[0] != v[1])
        add(buf, size, at, "[%d, %d]", v[0], v[1]);
    else
        add(buf, size, at, "%d", v[0]);
}

/* Whether the row's value is its default (lists and objects have none). */
static bool is_default(const nbi_field *f, const char *p)
{
    bool pair = f->flags & NBI_PAIR;
    if (f->flags & (NBI_REQUIRED | NBI_KEEP))
        return false;
    switch (f->type->kind) {
    case NBI_FK_INT:
    case NBI_FK_CHOICE: {
        const int *v = (const int *)p;
        return v[0] == (int)f->def && (!pair || v[1] == (int)f->def);
    }
    case NBI_FK_PAD: {
        const nbi_pad *v = (const nbi_pad *)p;
        return !v->same && v->v[0] == (int)f->def && (!pair || v->v[1] == (int)f->def);
    }
    case NBI_FK_REAL: return *(const double *)p == f->def;
    case NBI_FK_BOOL: return *(const bool *)p == (f->def != 0);
    case NBI_FK_U64: return *(const uint64_t *)p == (uint64_t)f->def;
    default: return false;
    }
}

void nbi_fields_text(const nbi_field *rows, const void *base, char *buf, size_t size, size_t *at)
{
    for (const nbi_field *f = rows; f && f->name; f++) {
        const char *p = (const char *)base + f->offset;
        const nbi_ftype *t = f->type;
        if (t->kind == NBI_FK_OBJECT) {
            nbi_fields_text(t->fields, base, buf, size, at);
            continue;
        }
        int n = 0;
        if (t->kind == NBI_FK_REALS || t->kind == NBI_FK_INTS) {
            n = t->len[0] == t->len[1] ? t->len[0]
                                       : *(const int *)((const char *)base + t->len_offset);
            if (n == 0)
                continue;
        } else if (is_default(f, p))
            continue;
        add(buf, size, at, "%s%s=", *at ? ", " : "", f->name);
        switch (t->kind) {
        case NBI_FK_INT: add_ints(buf, size, at, (const int *)p, f->flags & NBI_PAIR); break;
        case NBI_FK_PAD: {
            const nbi_pad *v = (const nbi_pad *)p;
            if (v->same)
                add(buf, size, at, "\"same\"");
            else
                add_ints(buf, size, at, v->v, f->flags & NBI_PAIR);
            break;
        }
        case NBI_FK_REAL: add(buf, size, at, "%g", *(const double *)p); break;
        case NBI_FK_BOOL: add(buf, size, at, "%s", *(const bool *)p ? "true" : "false"); break;
        case NBI_FK_U64: add(buf, size, at, "%" PRIu64, *(const uint64_t *)p); break;
        case NBI_FK_CHOICE: add(buf, size, at, "\"%s\"", t->choices[*(const int *)p]); break;
        case NBI_FK_REALS:
        case NBI_FK_INTS:
            add(buf, size, at, "%s", n > 1 ? "[" : "");
            for (int i = 0; i < n; i++) {
                if (t->kind == NBI_FK_REALS)
                    add(buf, size, at, "%s%g", i ? ", " : "", ((const double *)p)[i]);
                else
                    add(buf, size, at, "%s%" PRId32, i ? ", " : "", ((const int32_t *)p)[i]);
            }
            add(buf, size, at, "%s", n > 1 ? "]" : "");
            break;
        case NBI_FK_OBJECT: break;
        }
    }
}

uint64_t nb_model_digest(const nb_model *m)
{
    if (!m)
        return 0;
    uint64_t h = NBI_HASH_INIT;
    put(&h, "nabla-model %s input", nb_dtype_name(m->dtype));
    put_shape(&h, &m->input);
    for (int i = 0; i < m->nlayers; i++) {
        const nbi_layer *l = &m->layers[i];
        put(&h, "\nlayer %s ", l->kind->type);
        put_str(&h, l->name);
        put(&h, " in");
        for (int k = 0; k < l->nin; k++)
            put(&h, " %d", l->in[k]);
        put_fields(&h, l->kind->fields, &l->conf);
        if (l->frozen)
            put(&h, " frozen");
        if (l->init_text) { /* only then: a file without "init" keeps its digest */
            put(&h, " init ");
            put_str(&h, l->init_text);
        }
        if (l->act) {
            put(&h, " activation %s%s", l->act->type, l->act_fused ? " fused" : "");
            put_fields(&h, l->act->fields, &l->act_conf);
        }
        for (int s = 0; s < NBI_NSLOTS; s++)
            if (l->slot[s].ndim) {
                put(&h, " %s", nbi_slot_names[s]);
                put_shape(&h, &l->slot[s]);
            }
        put(&h, " out");
        put_shape(&h, &l->out);
    }
    put(&h, "\noutput %d loss %d", m->output, (int)m->loss);
    return h;
}
