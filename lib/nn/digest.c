/*
 * digest.c - nb_model_digest: a 64-bit digest of the network a model is,
 * taken over a canonical text of it (the dtype, the input shape, each
 * layer's type, name, inputs, every setting after its defaults, its
 * activation, its "init" (when not the layer's own: it changes the first
 * weights, as another layer setting would), its tensors' shapes and its
 * output shape, then the output layer and the loss).  Two files that load to the same network have the
 * same digest whatever their layout; the name, the weights and the
 * optimizer and training sections are not part of it.  Reads the layers'
 * field rows as json.c writes them; knows no JSON.
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
