/*
 * model.c - models described in JSON files: reading and validating the
 * file (cJSON lives here and nowhere else in the library), naming and
 * connecting the layers, inferring every shape, making the parameters, and
 * running the model through the layer table of layers.c.
 *
 * Loading reports the first mistake as one line,
 *   <origin>: <place>: <reason>
 * where the place is a key ("input", "loss"), a layer
 * (`layers[3] (conv2d "conv2")`) or a field (`layers[3].kernel_size`).
 *
 * cJSON allocates its tree with the C library's malloc: its hooks are
 * process-wide, so the library leaves them alone, and frees the tree before
 * returning.  Everything the model keeps comes from the context's
 * allocator.
 */
#include "model.h"

#include <cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_FILE_BYTES ((size_t)16 << 20)
#define MAX_LAYERS 10000
#define MAX_NAME 48       /* "<name>.running_mean" fits a tensor's name */
#define MAX_MODEL_NAME 63

/* The model's memory: blocks from the context's allocator, freed together. */
typedef union block {
    union block *next;
    max_align_t align;
} block;

enum { SEC_OPTIMIZER, SEC_TRAINING, NSECTIONS };
static const char *const section_keys[NSECTIONS] = {"optimizer", "training"};

struct nb_model {
    nb_ctx *ctx;
    nb_dtype dtype;
    const char *name;
    nbi_shape input;
    int nlayers;
    nbi_layer *layers;  /* in the order they run */
    int output;         /* the position of the output layer */
    nb_loss_kind loss;
    int ntensors;
    nb_tensor **tensors;
    bool *buffer;       /* per tensor */
    nb_tensor **acts;   /* per layer, from the last forward */
    const char *sections[NSECTIONS];
    nb_rng rng;
    block *blocks;
};

static void *mem(nb_model *m, size_t size)
{
    if (size > SIZE_MAX - sizeof(block))
        return nbi_fail_null(m->ctx, NB_ERR_NOMEM, "model: %zu bytes is too large", size);
    block *b = nbi_alloc(m->ctx, sizeof *b + size);
    if (!b)
        return NULL;
    b->next = m->blocks;
    m->blocks = b;
    memset(b + 1, 0, size);
    return b + 1;
}

static char *mem_strdup(nb_model *m, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = mem(m, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* ---- messages ------------------------------------------------------------ */

typedef struct loader {
    nb_ctx *ctx;
    nb_model *m;
    const char *origin;
    const char *list;   /* "layers" or "nodes" */
    bool graph;
} loader;

/* Records "<origin>: <place>: <reason>" and returns NB_ERR_FORMAT. */
NBI_PRINTF(3, 4) static int fail(loader *ld, const char *place, const char *fmt, ...)
{
    char why[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return nbi_fail(ld->ctx, NB_ERR_FORMAT, "%s: %s: %s", ld->origin, place, why);
}


static const char *num_fmt(char *buf, size_t size, double d)
{
    snprintf(buf, size, "%.15g", d);
    return buf;
}

/* A JSON value as "got ..." shows it. */
static const char *describe(char *buf, size_t size, const cJSON *v)
{
    if (cJSON_IsNumber(v))
        return num_fmt(buf, size, v->valuedouble);
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

/* Collects the closest of the names offered, within distance 2. */
typedef struct suggest {
    const char *word;
    const char *best;
    int dist;
} suggest;

static void offer(suggest *s, const char *name)
{
    int d = distance(s->word, name);
    if (d <= 2 && (size_t)d < strlen(name) && d < s->dist) {
        s->best = name;
        s->dist = d;
    }
}

/* " (did you mean "x"?)" or "". */
static const char *did_you_mean(char *buf, size_t size, const suggest *s)
{
    if (!s->best)
        return "";
    snprintf(buf, size, " (did you mean \"%s\"?)", s->best);
    return buf;
}

/* ---- places --------------------------------------------------------------- */

static const char *layer_place(const loader *ld, const nbi_layer *l, char *buf, size_t size)
{
    char q[80];
    if (!l->kind)
        snprintf(buf, size, "%s[%d]", ld->list, l->index);
    else if (!l->name)
        snprintf(buf, size, "%s[%d] (%s)", ld->list, l->index, l->kind->type);
    else
        snprintf(buf, size, "%s[%d] (%s %s)", ld->list, l->index, l->kind->type,
                 nbi_quote(l->name, q, sizeof q));
    return buf;
}

static const char *field_place(const loader *ld, const nbi_layer *l, const char *field,
                               char *buf, size_t size)
{
    snprintf(buf, size, "%s[%d].%s", ld->list, l->index, field);
    return buf;
}

/* ---- fields ----------------------------------------------------------------- */

/* An integer in [lo, hi] from v. */
static int read_int(loader *ld, const char *place, const cJSON *v, double lo, double hi,
                    const char *expected, int *out)
{
    char g[96];
    if (!cJSON_IsNumber(v))
        return fail(ld, place, "expected %s, got %s", expected, describe(g, sizeof g, v));
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d))
        return fail(ld, place, "must be an integer, got %s", num_fmt(g, sizeof g, d));
    if (d < lo || d > hi) {
        if (lo == 1 && d < lo)
            return fail(ld, place, "must be positive, got %s", num_fmt(g, sizeof g, d));
        if (lo == 0 && d < lo)
            return fail(ld, place, "must not be negative, got %s", num_fmt(g, sizeof g, d));
        if (d > hi && hi == INT_MAX)
            return fail(ld, place, "%s is too large (at most %d)", num_fmt(g, sizeof g, d),
                        INT_MAX);
        return fail(ld, place, "must be from %.0f to %.0f, got %s", lo, hi,
                    num_fmt(g, sizeof g, d));
    }
    *out = (int)d;
    return NB_OK;
}

/* An integer, or with NBI_PAIR a list [h, w] of them, into v[2]. */
static int read_ints(loader *ld, const char *place, const cJSON *v, const nbi_field *f,
                     const char *expected, int *out)
{
    if (!(f->flags & NBI_PAIR) || !cJSON_IsArray(v)) {
        int rc = read_int(ld, place, v, f->lo, f->hi, expected, &out[0]);
        out[1] = out[0];
        return rc;
    }
    if (cJSON_GetArraySize(v) != 2) {
        char g[96];
        return fail(ld, place, "expected %s, got %s", expected, describe(g, sizeof g, v));
    }
    for (int i = 0; i < 2; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s[%d]", place, i);
        int rc = read_int(ld, p, cJSON_GetArrayItem(v, i), f->lo, f->hi, "an integer", &out[i]);
        if (rc)
            return rc;
    }
    return NB_OK;
}

static void field_default(const nbi_field *f, void *dst)
{
    switch (f->type) {
    case NBI_F_INT:
        ((int *)dst)[0] = (int)f->def;
        if (f->flags & NBI_PAIR)
            ((int *)dst)[1] = (int)f->def;
        break;
    case NBI_F_PAD: {
        nbi_pad *p = dst;
        p->v[0] = p->v[1] = (int)f->def;
        p->same = false;
        break;
    }
    case NBI_F_REAL: *(double *)dst = f->def; break;
    case NBI_F_BOOL: *(bool *)dst = f->def != 0; break;
    }
}

/* Reads v into the field's member of the conf. */
static int read_field(loader *ld, const char *place, const nbi_field *f, const cJSON *v,
                      void *dst)
{
    char g[96];
    switch (f->type) {
    case NBI_F_INT: {
        const char *what = f->flags & NBI_PAIR ? "an integer or a list [h, w]" : "an integer";
        if (f->flags & NBI_PAIR)
            return read_ints(ld, place, v, f, what, dst);
        int x, rc = read_int(ld, place, v, f->lo, f->hi, what, &x);
        if (!rc)
            *(int *)dst = x;
        return rc;
    }
    case NBI_F_PAD: {
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
        return read_ints(ld, place, v, f, what, p->v);
    }
    case NBI_F_REAL: {
        if (!cJSON_IsNumber(v))
            return fail(ld, place, "expected a number, got %s", describe(g, sizeof g, v));
        double d = v->valuedouble;
        bool open = f->flags & NBI_OPEN;
        if (!(d >= f->lo && (open ? d < f->hi : d <= f->hi))) { /* NaN fails too */
            num_fmt(g, sizeof g, d);
            if (f->lo <= -1e300 && f->hi >= 1e300)
                return fail(ld, place, "must be a finite number, got %s", g);
            if (f->hi >= 1e300)
                return fail(ld, place, "must be positive, got %s", g);
            return fail(ld, place, "must be in [%g, %g%c, got %s", f->lo, f->hi, open ? ')' : ']',
                        g);
        }
        *(double *)dst = d;
        return NB_OK;
    }
    case NBI_F_BOOL:
        if (!cJSON_IsBool(v))
            return fail(ld, place, "expected true or false, got %s", describe(g, sizeof g, v));
        *(bool *)dst = cJSON_IsTrue(v);
        return NB_OK;
    }
    return NB_OK;
}

/* ---- layers ------------------------------------------------------------------ */

static const nbi_layer_kind *find_kind(const char *type)
{
    for (const nbi_layer_kind *k = nbi_layer_kinds; k->type; k++)
        if (strcmp(k->type, type) == 0)
            return k;
    return NULL;
}

static void conf_defaults(const nbi_layer_kind *k, nbi_layer_conf *conf)
{
    memset(conf, 0, sizeof *conf);
    for (const nbi_field *f = k->fields; f->name; f++)
        field_default(f, (char *)conf + f->offset);
}

/* Letters, digits, '_' and '-': safe in messages, tensor names and files. */
static int check_name(loader *ld, const char *place, const char *name, size_t max)
{
    char q[80];
    size_t n = strlen(name);
    if (n == 0)
        return fail(ld, place, "must not be empty");
    if (n > max)
        return fail(ld, place, "%s is longer than %zu characters", nbi_quote(name, q, sizeof q), max);
    for (const char *s = name; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == '-'))
            return fail(ld, place, "%s may hold only letters, digits, '_' and '-'",
                        nbi_quote(name, q, sizeof q));
    return NB_OK;
}

static int read_type(loader *ld, nbi_layer *l, const cJSON *item)
{
    char place[64], g[96], s[64];
    layer_place(ld, l, place, sizeof place);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(item, "type");
    if (!t)
        return fail(ld, place, "missing field \"type\"");
    if (!cJSON_IsString(t))
        return fail(ld, field_place(ld, l, "type", place, sizeof place),
                    "expected a string, got %s", describe(g, sizeof g, t));
    l->kind = find_kind(t->valuestring);
    if (!l->kind) {
        suggest sg = {t->valuestring, NULL, 3};
        for (const nbi_layer_kind *k = nbi_layer_kinds; k->type; k++)
            offer(&sg, k->type);
        return fail(ld, place, "unknown type %s%s", nbi_quote(t->valuestring, g, sizeof g),
                    did_you_mean(s, sizeof s, &sg));
    }
    return NB_OK;
}

static int read_layer_name(loader *ld, nbi_layer *l, const cJSON *item)
{
    char place[160], g[96];
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(item, "name");
    if (!n) {
        if (ld->graph)
            return fail(ld, layer_place(ld, l, place, sizeof place), "missing field \"name\"");
        /* As nn.Sequential: the position. */
        char idx[16];
        snprintf(idx, sizeof idx, "%d", l->index);
        l->name = mem_strdup(ld->m, idx);
        return l->name ? NB_OK : NB_ERR_NOMEM;
    }
    field_place(ld, l, "name", place, sizeof place);
    if (!cJSON_IsString(n))
        return fail(ld, place, "expected a string, got %s", describe(g, sizeof g, n));
    int rc = check_name(ld, place, n->valuestring, MAX_NAME);
    if (rc)
        return rc;
    if (strcmp(n->valuestring, "input") == 0)
        return fail(ld, place, "\"input\" names the model's input; choose another name");
    l->name = mem_strdup(ld->m, n->valuestring);
    return l->name ? NB_OK : NB_ERR_NOMEM;
}

/* The graph form's "inputs": 1 to NBI_MAX_INPUTS names, pointing into the
 * JSON tree until resolve_inputs points them at the layers' names. */
static int read_inputs(loader *ld, nbi_layer *l, const cJSON *v)
{
    char place[160], g[96];
    field_place(ld, l, "inputs", place, sizeof place);
    if (!cJSON_IsArray(v))
        return fail(ld, place, "expected a list of names, got %s", describe(g, sizeof g, v));
    int n = cJSON_GetArraySize(v);
    if (n == 0)
        return fail(ld, place, "the list is empty");
    if (n > NBI_MAX_INPUTS)
        return fail(ld, place, "at most %d inputs, got %d", NBI_MAX_INPUTS, n);
    for (int i = 0; i < n; i++) {
        const cJSON *s = cJSON_GetArrayItem(v, i);
        if (!cJSON_IsString(s)) {
            char p[176];
            snprintf(p, sizeof p, "%s[%d]", place, i);
            return fail(ld, p, "expected a name, got %s", describe(g, sizeof g, s));
        }
        l->in_names[i] = s->valuestring;
    }
    l->nin = n;
    layer_place(ld, l, place, sizeof place);
    if (!(l->kind->flags & NBI_MULTI) && n != 1)
        return fail(ld, place, "%s reads 1 input, got %d", l->kind->type, n);
    if (n < l->kind->min_inputs)
        return fail(ld, place, "%s needs at least %d inputs, got %d", l->kind->type,
                    l->kind->min_inputs, n);
    return NB_OK;
}

static int read_activation(loader *ld, nbi_layer *l, const cJSON *v)
{
    char place[160], g[96], s[64];
    field_place(ld, l, "activation", place, sizeof place);
    if (!cJSON_IsString(v))
        return fail(ld, place, "expected a string, got %s", describe(g, sizeof g, v));
    const nbi_layer_kind *k = find_kind(v->valuestring);
    if (!k || !(k->flags & NBI_ACTIVATION)) {
        suggest sg = {v->valuestring, NULL, 3};
        for (k = nbi_layer_kinds; k->type; k++)
            if (k->flags & NBI_ACTIVATION)
                offer(&sg, k->type);
        return fail(ld, place, "unknown activation %s%s", nbi_quote(v->valuestring, g, sizeof g),
                    did_you_mean(s, sizeof s, &sg));
    }
    l->act = k;
    conf_defaults(k, &l->act_conf);
    return NB_OK;
}

/* One entry of "layers" or "nodes": its type, name, fields and settings. */
static int read_layer(loader *ld, nbi_layer *l, const cJSON *item)
{
    char place[160], g[96], s[64];
    if (!cJSON_IsObject(item))
        return fail(ld, layer_place(ld, l, place, sizeof place), "expected an object, got %s",
                    describe(g, sizeof g, item));
    int rc = read_type(ld, l, item);
    if (!rc)
        rc = read_layer_name(ld, l, item);
    if (rc)
        return rc;
    const nbi_layer_kind *k = l->kind;
    layer_place(ld, l, place, sizeof place);
    if (!ld->graph && (k->flags & NBI_MULTI))
        return fail(ld, place, "%s reads several inputs: write the model in the graph form "
                    "(\"nodes\" and \"output\")", k->type);
    conf_defaults(k, &l->conf);

    /* Every key once, each known: the layer's own fields, then the common
     * ones at the end of seen[]. */
    enum { MAX_FIELDS = 32 }; /* more than any kind has */
    static const char *const common[] = {"type", "name", "inputs", "activation"};
    int nfields = 0;
    while (k->fields[nfields].name)
        nfields++;
    bool seen[MAX_FIELDS + 4] = {false};
    const cJSON *inputs = NULL;
    for (const cJSON *v = item->child; v; v = v->next) {
        const char *key = v->string;
        int f = -1;
        for (int i = 0; i < nfields && f < 0; i++)
            if (strcmp(key, k->fields[i].name) == 0)
                f = i;
        for (int i = 0; i < 4 && f < 0; i++)
            if (strcmp(key, common[i]) == 0)
                f = MAX_FIELDS + i;
        bool known = f >= 0 && !(f == MAX_FIELDS + 3 && !(k->flags & NBI_TAKES_ACT));
        if (f == MAX_FIELDS + 2 && !ld->graph)
            return fail(ld, place, "\"inputs\" belongs to the graph form (\"nodes\"); "
                        "in \"layers\" each layer reads the one before it");
        if (!known) {
            suggest sg = {key, NULL, 3};
            for (int i = 0; i < nfields; i++)
                offer(&sg, k->fields[i].name);
            for (int i = 0; i < 4; i++)
                if ((i != 2 || ld->graph) && (i != 3 || (k->flags & NBI_TAKES_ACT)))
                    offer(&sg, common[i]);
            return fail(ld, place, "unknown field %s%s", nbi_quote(key, g, sizeof g),
                        did_you_mean(s, sizeof s, &sg));
        }
        if (seen[f])
            return fail(ld, place, "field %s appears twice", nbi_quote(key, g, sizeof g));
        seen[f] = true;
        if (f < MAX_FIELDS) {
            char fp[160];
            rc = read_field(ld, field_place(ld, l, key, fp, sizeof fp), &k->fields[f], v,
                            (char *)&l->conf + k->fields[f].offset);
        } else if (f == MAX_FIELDS + 2) {
            inputs = v;
        } else if (f == MAX_FIELDS + 3) {
            rc = read_activation(ld, l, v);
        }
        if (rc)
            return rc;
    }
    for (int i = 0; i < nfields; i++)
        if ((k->fields[i].flags & NBI_REQUIRED) && !seen[i])
            return fail(ld, place, "missing field \"%s\"", k->fields[i].name);
    /* A conv's relu is done by the conv op itself: one pass less. */
    if (l->act && (k->flags & NBI_FUSES_RELU) && strcmp(l->act->type, "relu") == 0)
        l->act_fused = l->conf.conv.relu = true;
    if (ld->graph) {
        if (!inputs)
            return fail(ld, place, "missing field \"inputs\" (a list of node names, or \"input\")");
        if ((rc = read_inputs(ld, l, inputs)))
            return rc;
    } else {
        l->nin = 1;
    }
    char why[NBI_WHY_SIZE];
    if (k->check && k->check(l, why))
        return fail(ld, place, "%s", why);
    return NB_OK;
}

/* ---- names and the graph ---------------------------------------------------- */

/* Open addressing over the layers' names: slot holds position + 1. */
typedef struct name_table {
    int *slot;
    size_t mask;
} name_table;

static size_t hash(const char *s)
{
    size_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The position of the layer named `name`, or -1. */
static int name_find(const name_table *t, const nbi_layer *layers, const char *name)
{
    for (size_t i = hash(name) & t->mask;; i = (i + 1) & t->mask) {
        if (!t->slot[i])
            return -1;
        if (strcmp(layers[t->slot[i] - 1].name, name) == 0)
            return t->slot[i] - 1;
    }
}

static int check_names(loader *ld, nbi_layer *layers, int n, name_table *t)
{
    size_t size = 16;
    while (size < 2 * (size_t)n)
        size *= 2;
    t->slot = nbi_alloc(ld->ctx, size * sizeof *t->slot);
    if (!t->slot)
        return NB_ERR_NOMEM;
    memset(t->slot, 0, size * sizeof *t->slot);
    t->mask = size - 1;
    for (int i = 0; i < n; i++) {
        int j = name_find(t, layers, layers[i].name);
        if (j >= 0) {
            char place[160], q[80];
            char idx[16];
            snprintf(idx, sizeof idx, "%d", i);
            bool positional = !ld->graph && strcmp(layers[i].name, idx) == 0;
            return fail(ld, layer_place(ld, &layers[i], place, sizeof place),
                        "duplicate name %s (also %s[%d]'s)%s", nbi_quote(layers[i].name, q, sizeof q),
                        ld->list, j, positional ? "; an unnamed layer is named by its position" : "");
        }
        size_t h = hash(layers[i].name) & t->mask;
        while (t->slot[h])
            h = (h + 1) & t->mask;
        t->slot[h] = i + 1;
    }
    return NB_OK;
}

/* Resolves each node's inputs to positions (-1: the model's input). */
static int resolve_inputs(loader *ld, nbi_layer *layers, int n, const name_table *t)
{
    for (int i = 0; i < n; i++) {
        nbi_layer *l = &layers[i];
        for (int k = 0; k < l->nin; k++) {
            if (strcmp(l->in_names[k], "input") == 0) {
                l->in[k] = -1;
                l->in_names[k] = "input";
                continue;
            }
            int j = name_find(t, layers, l->in_names[k]);
            if (j < 0) {
                char place[160], q[80];
                return fail(ld, layer_place(ld, l, place, sizeof place), "input %s is not a node",
                            nbi_quote(l->in_names[k], q, sizeof q));
            }
            l->in[k] = j;
            l->in_names[k] = layers[j].name;
        }
    }
    return NB_OK;
}

/* Orders the nodes so that each comes after its inputs: depth first from
 * each node in file order, so a file already in order keeps it.  A node
 * met again while it waits for its inputs closes a cycle. */
static int order_nodes(loader *ld, const nbi_layer *layers, int n, int *order)
{
    int rc = NB_OK, norder = 0, depth = 0;
    char *state = nbi_alloc(ld->ctx, (size_t)n);      /* 0 new, 1 open, 2 done */
    int *stack = nbi_alloc(ld->ctx, sizeof *stack * (size_t)n);
    int *next = nbi_alloc(ld->ctx, sizeof *next * (size_t)n); /* next input to visit */
    if (!state || !stack || !next) {
        rc = NB_ERR_NOMEM;
        goto done;
    }
    memset(state, 0, (size_t)n);
    for (int s = 0; s < n && !rc; s++) {
        if (state[s])
            continue;
        state[s] = 1;
        next[s] = 0;
        stack[depth++] = s;
        while (depth > 0 && !rc) {
            int v = stack[depth - 1];
            if (next[v] == layers[v].nin) {
                state[v] = 2;
                order[norder++] = v;
                depth--;
                continue;
            }
            int u = layers[v].in[next[v]++];
            if (u < 0 || state[u] == 2)
                continue;
            if (state[u] == 0) {
                state[u] = 1;
                next[u] = 0;
                stack[depth++] = u;
                continue;
            }
            /* u is open: the stack from u up to v reads round to u.  Data
             * flows from u to the top of the stack and down back to u. */
            int at = depth - 1;
            while (stack[at] != u)
                at--;
            char path[300], place[160];
            size_t len = (size_t)snprintf(path, sizeof path, "%s", layers[u].name);
            int shown = 0;
            for (int j = depth - 1; j > at && len < sizeof path; j--) {
                if (shown++ == 8 && j > at + 1) {
                    len += (size_t)snprintf(path + len, sizeof path - len, " -> ...");
                    j = at + 1;
                }
                if (len < sizeof path)
                    len += (size_t)snprintf(path + len, sizeof path - len, " -> %s",
                                            layers[stack[j]].name);
            }
            if (len < sizeof path)
                snprintf(path + len, sizeof path - len, " -> %s", layers[u].name);
            rc = fail(ld, layer_place(ld, &layers[u], place, sizeof place), "cycle: %s", path);
        }
    }
done:
    nbi_free(ld->ctx, state);
    nbi_free(ld->ctx, stack);
    nbi_free(ld->ctx, next);
    return rc;
}

/* ---- shapes and tensors -------------------------------------------------------- */

static int64_t shape_numel(const nbi_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->ndim; i++)
        n = nbi_mul(n, s->d[i]);
    return n;
}

/* Runs the layer's shape rule, then its activation's, and bounds the
 * results so that no op can overflow on them. */
static int infer_layer(loader *ld, nb_model *m, nbi_layer *l)
{
    nbi_shape in[NBI_MAX_INPUTS];
    char why[NBI_WHY_SIZE], place[160], s[96];
    for (int k = 0; k < l->nin; k++)
        in[k] = l->in[k] < 0 ? m->input : m->layers[l->in[k]].out;
    layer_place(ld, l, place, sizeof place);
    if (l->kind->infer(l, in, why))
        return fail(ld, place, "%s", why);
    if (l->act) {
        nbi_layer a = {.kind = l->act, .conf = l->act_conf, .nin = 1};
        if (l->act->infer(&a, &l->out, why))
            return fail(ld, place, "activation %s: %s", l->act->type, why);
        l->out = a.out;
    }
    for (int i = 0; i < l->out.ndim; i++)
        if (l->out.d[i] > INT_MAX)
            return fail(ld, place, "its output %s has a size above %d",
                        nbi_shape_fmt(&l->out, s, sizeof s), INT_MAX);
    if (shape_numel(&l->out) > NBI_MAX_ELEMS)
        return fail(ld, place, "its output %s is too large (over 2^40 elements per example)",
                    nbi_shape_fmt(&l->out, s, sizeof s));
    for (int k = 0; k < NBI_NSLOTS; k++)
        if (l->slot[k].ndim && shape_numel(&l->slot[k]) > NBI_MAX_ELEMS)
            return fail(ld, place, "its %s %s is too large (over 2^40 elements)",
                        nbi_slot_names[k], nbi_shape_fmt(&l->slot[k], s, sizeof s));
    return NB_OK;
}

static int make_tensors(nb_model *m)
{
    int n = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < NBI_NSLOTS; k++)
            n += m->layers[i].slot[k].ndim > 0;
    m->tensors = mem(m, sizeof *m->tensors * (size_t)(n ? n : 1));
    m->buffer = mem(m, sizeof *m->buffer * (size_t)(n ? n : 1));
    if (!m->tensors || !m->buffer)
        return NB_ERR_NOMEM;
    for (int i = 0; i < m->nlayers; i++) {
        nbi_layer *l = &m->layers[i];
        for (int k = 0; k < NBI_NSLOTS; k++) {
            if (!l->slot[k].ndim)
                continue;
            nb_tensor *t = nb_tensor_new(m->ctx, m->dtype, l->slot[k].ndim, l->slot[k].d);
            if (!t)
                return nb_error(m->ctx);
            char name[64];
            snprintf(name, sizeof name, "%s.%s", l->name, nbi_slot_names[k]);
            nb_tensor_set_name(t, name);
            bool buffer = k == NBI_RUNNING_MEAN || k == NBI_RUNNING_VAR;
            nb_requires_grad(t, !buffer);
            l->t[k] = t;
            m->buffer[m->ntensors] = buffer;
            m->tensors[m->ntensors++] = t;
        }
    }
    return NB_OK;
}

/* ---- the file's sections --------------------------------------------------------- */

static const char *const top_keys[] = {"name", "description", "input", "layers", "nodes",
                                       "output", "loss", "optimizer", "training"};
enum { K_NAME, K_DESCRIPTION, K_INPUT, K_LAYERS, K_NODES, K_OUTPUT, K_LOSS, K_OPTIMIZER,
       K_TRAINING, NKEYS };

static int read_input(loader *ld, const cJSON *v)
{
    char g[96];
    nb_model *m = ld->m;
    if (!v)
        return fail(ld, "input", "missing: give the shape of one example, e.g. [1, 28, 28]");
    int n = cJSON_IsArray(v) ? cJSON_GetArraySize(v) : 0;
    if (!cJSON_IsArray(v) || n < 1 || n > NB_MAX_DIMS - 1)
        return fail(ld, "input", "expected a list of 1 to %d sizes (one example, batch "
                    "excluded), got %s", NB_MAX_DIMS - 1, describe(g, sizeof g, v));
    m->input.ndim = n;
    for (int i = 0; i < n; i++) {
        char place[32];
        int x;
        snprintf(place, sizeof place, "input[%d]", i);
        int rc = read_int(ld, place, cJSON_GetArrayItem(v, i), 1, INT_MAX, "an integer", &x);
        if (rc)
            return rc;
        m->input.d[i] = x;
    }
    if (shape_numel(&m->input) > NBI_MAX_ELEMS)
        return fail(ld, "input", "%s is too large (over 2^40 elements per example)",
                    nbi_shape_fmt(&m->input, g, sizeof g));
    return NB_OK;
}

static const char *const loss_names[] = {"cross_entropy", "mse", "hinge"};

static int read_loss(loader *ld, const cJSON *v)
{
    char g[96], s[64];
    if (!v)
        return NB_OK;
    if (!cJSON_IsObject(v))
        return fail(ld, "loss", "expected an object such as {\"type\": \"cross_entropy\"}, got %s",
                    describe(g, sizeof g, v));
    const cJSON *t = NULL;
    for (const cJSON *c = v->child; c; c = c->next) {
        if (strcmp(c->string, "type") != 0) {
            suggest sg = {c->string, NULL, 3};
            offer(&sg, "type");
            return fail(ld, "loss", "unknown field %s%s", nbi_quote(c->string, g, sizeof g),
                        did_you_mean(s, sizeof s, &sg));
        }
        if (t)
            return fail(ld, "loss", "field \"type\" appears twice");
        t = c;
    }
    if (!t)
        return fail(ld, "loss", "missing field \"type\"");
    if (!cJSON_IsString(t))
        return fail(ld, "loss.type", "expected a string, got %s", describe(g, sizeof g, t));
    suggest sg = {t->valuestring, NULL, 3};
    for (int i = 0; i < 3; i++) {
        if (strcmp(t->valuestring, loss_names[i]) == 0) {
            ld->m->loss = (nb_loss_kind)(NB_LOSS_CROSS_ENTROPY + i);
            return NB_OK;
        }
        offer(&sg, loss_names[i]);
    }
    return fail(ld, "loss", "unknown type %s%s; use cross_entropy, mse or hinge",
                nbi_quote(t->valuestring, g, sizeof g), did_you_mean(s, sizeof s, &sg));
}

/* The loss must fit the output of one example. */
static int check_loss(loader *ld)
{
    nb_model *m = ld->m;
    const nbi_layer *out = &m->layers[m->output];
    char s[96], q[80];
    nbi_shape_fmt(&out->out, s, sizeof s);
    nbi_quote(out->name, q, sizeof q);
    if (m->loss == NB_LOSS_CROSS_ENTROPY && (out->out.ndim != 1 || out->out.d[0] < 2))
        return fail(ld, "loss", "cross_entropy needs [C] class scores per example with C >= 2, "
                    "but the output (%s) is %s", q, s);
    if (m->loss == NB_LOSS_HINGE && shape_numel(&out->out) != 1)
        return fail(ld, "loss", "hinge needs 1 score per example, but the output (%s) is %s", q, s);
    return NB_OK;
}

/* A section kept as JSON text for other tools. */
static int read_section(loader *ld, int sec, const cJSON *v)
{
    char g[96];
    if (!v)
        return NB_OK;
    if (!cJSON_IsObject(v))
        return fail(ld, section_keys[sec], "expected an object, got %s", describe(g, sizeof g, v));
    char *text = cJSON_PrintUnformatted(v);
    if (!text)
        return nbi_fail(ld->ctx, NB_ERR_NOMEM, "%s: out of memory printing \"%s\"", ld->origin,
                        section_keys[sec]);
    ld->m->sections[sec] = mem_strdup(ld->m, text);
    cJSON_free(text);
    return ld->m->sections[sec] ? NB_OK : NB_ERR_NOMEM;
}

static int read_layers(loader *ld, const cJSON *v)
{
    char g[96];
    nb_model *m = ld->m;
    if (!cJSON_IsArray(v))
        return fail(ld, ld->list, "expected a list of layers, got %s", describe(g, sizeof g, v));
    int n = cJSON_GetArraySize(v);
    if (n == 0)
        return fail(ld, ld->list, "the list is empty");
    if (n > MAX_LAYERS)
        return fail(ld, ld->list, "%d layers (at most %d)", n, MAX_LAYERS);
    m->layers = mem(m, sizeof *m->layers * (size_t)n);
    if (!m->layers)
        return NB_ERR_NOMEM;
    m->nlayers = n;
    int i = 0;
    for (const cJSON *item = v->child; item; item = item->next, i++) {
        m->layers[i].index = i;
        int rc = read_layer(ld, &m->layers[i], item);
        if (rc)
            return rc;
        if (!ld->graph) {
            m->layers[i].in[0] = i - 1;
            m->layers[i].in_names[0] = i ? m->layers[i - 1].name : "input";
        }
    }
    return NB_OK;
}

/* Names, inputs, order and output of the layers read. */
static int connect(loader *ld, const cJSON *output)
{
    nb_model *m = ld->m;
    int n = m->nlayers, rc;
    char g[96];
    name_table t = {NULL, 0};
    int *order = NULL;
    if ((rc = check_names(ld, m->layers, n, &t)))
        goto done;
    if (!ld->graph) {
        m->output = n - 1;
        goto done;
    }
    if ((rc = resolve_inputs(ld, m->layers, n, &t)))
        goto done;
    order = nbi_alloc(ld->ctx, sizeof *order * (size_t)n);
    if (!order) {
        rc = NB_ERR_NOMEM;
        goto done;
    }
    if ((rc = order_nodes(ld, m->layers, n, order)))
        goto done;
    if (!output) {
        rc = fail(ld, "output", "missing: the graph form names its output node");
        goto done;
    }
    if (!cJSON_IsString(output)) {
        rc = fail(ld, "output", "expected a node's name, got %s", describe(g, sizeof g, output));
        goto done;
    }
    int out = name_find(&t, m->layers, output->valuestring);
    if (out < 0) {
        rc = fail(ld, "output", "%s is not a node", nbi_quote(output->valuestring, g, sizeof g));
        goto done;
    }
    /* Lay the nodes out in their order; inputs follow them. */
    nbi_layer *sorted = mem(m, sizeof *sorted * (size_t)n);
    int *pos = nbi_alloc(ld->ctx, sizeof *pos * (size_t)n);
    if (!sorted || !pos) {
        nbi_free(ld->ctx, pos);
        rc = NB_ERR_NOMEM;
        goto done;
    }
    for (int i = 0; i < n; i++)
        pos[order[i]] = i;
    for (int i = 0; i < n; i++) {
        sorted[i] = m->layers[order[i]];
        for (int k = 0; k < sorted[i].nin; k++)
            if (sorted[i].in[k] >= 0)
                sorted[i].in[k] = pos[sorted[i].in[k]];
    }
    m->layers = sorted;
    m->output = pos[out];
    nbi_free(ld->ctx, pos);
done:
    nbi_free(ld->ctx, t.slot);
    nbi_free(ld->ctx, order);
    return rc;
}

/* "lenet" from "models/lenet.json". */
static const char *default_name(nb_model *m, const char *origin)
{
    if (!origin)
        return "model";
    const char *base = strrchr(origin, '/');
    base = base ? base + 1 : origin;
    size_t n = strlen(base);
    if (n > 5 && strcmp(base + n - 5, ".json") == 0)
        n -= 5;
    if (n == 0)
        return "model";
    if (n > MAX_MODEL_NAME)
        n = MAX_MODEL_NAME;
    char *name = mem(m, n + 1);
    if (!name)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)base[i];
        name[i] = c < 0x20 || c == 0x7f || c == '"' ? '?' : (char)c;
    }
    return name;
}

static int read_model(loader *ld, const cJSON *root)
{
    nb_model *m = ld->m;
    char g[96], s[64];
    if (!cJSON_IsObject(root))
        return nbi_fail(ld->ctx, NB_ERR_FORMAT, "%s: the top level must be an object, got %s",
                        ld->origin, describe(g, sizeof g, root));
    const cJSON *key[NKEYS] = {NULL};
    for (const cJSON *v = root->child; v; v = v->next) {
        int k = 0;
        while (k < NKEYS && strcmp(v->string, top_keys[k]) != 0)
            k++;
        if (k == NKEYS) {
            suggest sg = {v->string, NULL, 3};
            for (k = 0; k < NKEYS; k++)
                offer(&sg, top_keys[k]);
            return nbi_fail(ld->ctx, NB_ERR_FORMAT, "%s: unknown key %s%s", ld->origin,
                            nbi_quote(v->string, g, sizeof g), did_you_mean(s, sizeof s, &sg));
        }
        if (key[k])
            return fail(ld, top_keys[k], "appears twice");
        key[k] = v;
    }
    int rc;
    if (key[K_NAME]) {
        if (!cJSON_IsString(key[K_NAME]))
            return fail(ld, "name", "expected a string, got %s", describe(g, sizeof g, key[K_NAME]));
        const char *name = key[K_NAME]->valuestring;
        if (!*name || strlen(name) > MAX_MODEL_NAME)
            return fail(ld, "name", "must have 1 to %d characters", MAX_MODEL_NAME);
        for (const char *c = name; *c; c++)
            if ((unsigned char)*c < 0x20 || *c == 0x7f || *c == '"')
                return fail(ld, "name", "%s holds a control character or a quote",
                            nbi_quote(name, g, sizeof g));
        if (!(m->name = mem_strdup(m, name)))
            return NB_ERR_NOMEM;
    }
    if (key[K_DESCRIPTION] && !cJSON_IsString(key[K_DESCRIPTION]))
        return fail(ld, "description", "expected a string, got %s",
                    describe(g, sizeof g, key[K_DESCRIPTION]));
    if ((rc = read_input(ld, key[K_INPUT])) || (rc = read_loss(ld, key[K_LOSS])) ||
        (rc = read_section(ld, SEC_OPTIMIZER, key[K_OPTIMIZER])) ||
        (rc = read_section(ld, SEC_TRAINING, key[K_TRAINING])))
        return rc;

    if (key[K_LAYERS] && key[K_NODES])
        return fail(ld, "nodes", "give \"layers\" (a sequence) or \"nodes\" (a graph), not both");
    if (!key[K_LAYERS] && !key[K_NODES])
        return fail(ld, "layers", "missing: give \"layers\" (a sequence) or \"nodes\" and "
                    "\"output\" (a graph)");
    ld->graph = key[K_NODES] != NULL;
    ld->list = ld->graph ? "nodes" : "layers";
    if (!ld->graph && key[K_OUTPUT])
        return fail(ld, "output", "only the graph form (\"nodes\") names its output; "
                    "\"layers\" ends with its last layer");
    if ((rc = read_layers(ld, ld->graph ? key[K_NODES] : key[K_LAYERS])) ||
        (rc = connect(ld, key[K_OUTPUT])))
        return rc;
    for (int i = 0; i < m->nlayers; i++)
        if ((rc = infer_layer(ld, m, &m->layers[i])))
            return rc;
    return check_loss(ld);
}

/* ---- loading ----------------------------------------------------------------------- */

/* "<origin>:<line>:<col>: invalid JSON" for the byte at `at`. */
static int json_error(loader *ld, const char *json, size_t len, size_t at, const char *what)
{
    int line = 1, col = 1;
    for (size_t i = 0; i < at && i < len; i++) {
        if (json[i] == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return nbi_fail(ld->ctx, NB_ERR_FORMAT, "%s:%d:%d: invalid JSON%s", ld->origin, line, col, what);
}

nb_model *nb_model_parse(nb_ctx *ctx, const char *json, size_t len, const char *origin,
                         nb_dtype dtype)
{
    if (!ctx)
        return NULL;
    if (dtype != NB_F32 && dtype != NB_F64)
        return nbi_fail_null(ctx, NB_ERR_ARG, "model: unknown dtype %d", (int)dtype);
    if (!json && len)
        return nbi_fail_null(ctx, NB_ERR_ARG, "model: json is NULL");
    nb_model *m = nbi_alloc(ctx, sizeof *m);
    if (!m)
        return NULL;
    memset(m, 0, sizeof *m);
    m->ctx = ctx;
    m->dtype = dtype;
    loader ld = {ctx, m, origin ? origin : "<string>", "layers", false};

    int rc;
    cJSON *root = NULL;
    size_t skip = 0;
    while (skip < len && json[skip] && strchr(" \t\r\n", json[skip]))
        skip++;
    if (skip == len) {
        rc = json_error(&ld, json, len, skip, ": the text is empty");
        goto done;
    }
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(json, len, &end, false);
    if (!root) {
        /* cJSON reports where it stopped; without a position, blame the end. */
        size_t at = end && end >= json && end <= json + len ? (size_t)(end - json) : len;
        rc = json_error(&ld, json, len, at, "");
        goto done;
    }
    size_t at = (size_t)(end - json);
    while (at < len && json[at] && strchr(" \t\r\n", json[at]))
        at++;
    /* A final '\0' is allowed: len may count the terminator. */
    if (at < len && !(at == len - 1 && json[at] == '\0')) {
        rc = json_error(&ld, json, len, at, ": text after the end");
        goto done;
    }
    if (!(rc = read_model(&ld, root))) {
        if (!m->name && !(m->name = default_name(m, origin)))
            rc = NB_ERR_NOMEM;
    }
    if (!rc) {
        m->acts = mem(m, sizeof *m->acts * (size_t)m->nlayers);
        rc = m->acts ? make_tensors(m) : NB_ERR_NOMEM;
    }
done:
    cJSON_Delete(root);
    if (rc) {
        nb_model_free(m);
        return NULL;
    }
    nb_rng init;
    nb_rng_seed(&init, 0);
    nb_model_init(m, &init);
    nb_rng_seed(&m->rng, 0);
    return m;
}

nb_model *nb_model_load(nb_ctx *ctx, const char *path, nb_dtype dtype)
{
    if (!ctx)
        return NULL;
    if (!path)
        return nbi_fail_null(ctx, NB_ERR_ARG, "model: path is NULL");
    char *buf;
    size_t len;
    /* Not only regular files: a model may come through a pipe. */
    if (nbi_file_read(ctx, path, MAX_FILE_BYTES, 0, &buf, &len) != NB_OK)
        return NULL;
    nb_model *m = nb_model_parse(ctx, buf, len, path, dtype);
    nbi_free(ctx, buf);
    return m;
}

void nb_model_free(nb_model *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->ntensors; i++)
        nb_tensor_free(m->tensors[i]);
    block *b = m->blocks;
    while (b) {
        block *next = b->next;
        nbi_free(m->ctx, b);
        b = next;
    }
    nbi_free(m->ctx, m);
}

void nb_model_init(nb_model *m, nb_rng *rng)
{
    for (int i = 0; i < m->nlayers; i++) {
        nbi_layer *l = &m->layers[i];
        if (l->kind->init)
            l->kind->init(l->t, rng);
    }
}

/* ---- queries ----------------------------------------------------------------------- */

const char *nb_model_name(const nb_model *m)
{
    return m->name;
}

nb_dtype nb_model_dtype(const nb_model *m)
{
    return m->dtype;
}

static int copy_shape(const nbi_shape *s, int64_t *shape)
{
    if (shape)
        for (int i = 0; i < s->ndim; i++)
            shape[i] = s->d[i];
    return s->ndim;
}

int nb_model_input_shape(const nb_model *m, int64_t *shape)
{
    return copy_shape(&m->input, shape);
}

int nb_model_output_shape(const nb_model *m, int64_t *shape)
{
    return copy_shape(&m->layers[m->output].out, shape);
}

nb_loss_kind nb_model_loss_kind(const nb_model *m)
{
    return m->loss;
}

int nb_model_num_tensors(const nb_model *m)
{
    return m->ntensors;
}

nb_tensor *nb_model_tensor(const nb_model *m, int i)
{
    return i >= 0 && i < m->ntensors ? m->tensors[i] : NULL;
}

bool nb_model_is_buffer(const nb_model *m, int i)
{
    return i >= 0 && i < m->ntensors && m->buffer[i];
}

nb_tensor *nb_model_find(const nb_model *m, const char *name)
{
    for (int i = 0; name && i < m->ntensors; i++)
        if (strcmp(m->tensors[i]->name, name) == 0)
            return m->tensors[i];
    return NULL;
}

/* trainable: the elements of tensors that require a gradient; otherwise
 * those of the rest (the buffers, and any parameter the caller froze). */
int64_t nb_model_num_params(const nb_model *m, bool trainable)
{
    int64_t n = 0;
    for (int i = 0; i < m->ntensors; i++)
        if (m->tensors[i]->requires_grad == trainable)
            n += m->tensors[i]->numel;
    return n;
}

int nb_model_num_layers(const nb_model *m)
{
    return m->nlayers;
}

int nb_model_output_layer(const nb_model *m)
{
    return m->output;
}

int nb_model_layer(const nb_model *m, int i, nb_layer_info *info)
{
    if (!info)
        return nbi_fail(m->ctx, NB_ERR_ARG, "model \"%s\": info is NULL", m->name);
    if (i < 0 || i >= m->nlayers)
        return nbi_fail(m->ctx, NB_ERR_ARG, "model \"%s\": no layer %d (it has %d)", m->name, i,
                        m->nlayers);
    const nbi_layer *l = &m->layers[i];
    memset(info, 0, sizeof *info);
    info->name = l->name;
    info->type = l->kind->type;
    info->activation = l->act ? l->act->type : NULL;
    info->ndim = copy_shape(&l->out, info->shape);
    for (int k = 0; k < NBI_NSLOTS; k++) {
        if (!l->t[k])
            continue;
        if (k == NBI_WEIGHT || k == NBI_BIAS)
            info->params += l->t[k]->numel;
        else
            info->buffers += l->t[k]->numel;
    }
    info->ninputs = l->nin;
    for (int k = 0; k < l->nin; k++)
        info->inputs[k] = l->in_names[k];
    return NB_OK;
}

const char *nb_model_section(const nb_model *m, const char *key)
{
    for (int i = 0; key && i < NSECTIONS; i++)
        if (strcmp(key, section_keys[i]) == 0)
            return m->sections[i];
    return NULL;
}

nb_rng *nb_model_rng(nb_model *m)
{
    return &m->rng;
}

/* ---- running ---------------------------------------------------------------------- */

/* Prefixes the op's message with the model and the layer. */
static nb_tensor *layer_failed(nb_ctx *ctx, const nb_model *m, const nbi_layer *l)
{
    char msg[sizeof ctx->msg];
    memcpy(msg, ctx->msg, sizeof msg);
    int code = ctx->status ? ctx->status : NB_ERR_ARG;
    return nbi_fail_null(ctx, code, "model \"%s\": layer \"%s\" (%s): %s", m->name, l->name,
                         l->kind->type, msg);
}

nb_tensor *nb_model_forward(nb_ctx *ctx, nb_model *m, nb_tensor *x)
{
    if (!ctx)
        return NULL;
    if (!m)
        return nbi_fail_null(ctx, NB_ERR_ARG, "model_forward: model is NULL");
    if (!x)
        return NULL; /* keep the message of the op that failed */
    if (ctx != m->ctx)
        return nbi_fail_null(ctx, NB_ERR_ARG, "model \"%s\": forward in a context other than "
                             "the model's", m->name);
    char xs[96], want[96];
    bool match = x->ndim == m->input.ndim + 1;
    for (int i = 0; match && i < m->input.ndim; i++)
        match = x->shape[i + 1] == m->input.d[i];
    if (!match) {
        size_t n = (size_t)snprintf(want, sizeof want, "[N");
        for (int i = 0; i < m->input.ndim && n < sizeof want; i++)
            n += (size_t)snprintf(want + n, sizeof want - n, ", %" PRId64, m->input.d[i]);
        if (n < sizeof want)
            snprintf(want + n, sizeof want - n, "]");
        return nbi_fail_null(ctx, NB_ERR_ARG, "model \"%s\": input %s does not match %s", m->name,
                             nb_shape_str(x, xs, sizeof xs), want);
    }
    if (x->dtype != m->dtype)
        return nbi_fail_null(ctx, NB_ERR_ARG, "model \"%s\": input is %s, the model is %s",
                             m->name, nb_dtype_name(x->dtype), nb_dtype_name(m->dtype));
    for (int i = 0; i < m->nlayers; i++)
        m->acts[i] = NULL;
    for (int i = 0; i < m->nlayers; i++) {
        const nbi_layer *l = &m->layers[i];
        nb_tensor *in[NBI_MAX_INPUTS];
        for (int k = 0; k < l->nin; k++)
            in[k] = l->in[k] < 0 ? x : m->acts[l->in[k]];
        nb_tensor *y = l->kind->forward(ctx, &l->conf, l->t, l->nin, in, &m->rng);
        if (y && l->act && !l->act_fused)
            y = l->act->forward(ctx, &l->act_conf, NULL, 1, &y, &m->rng);
        if (!y)
            return layer_failed(ctx, m, l);
        m->acts[i] = y;
    }
    return m->acts[m->output];
}

nb_tensor *nb_model_activation(const nb_model *m, int i)
{
    return i >= 0 && i < m->nlayers ? m->acts[i] : NULL;
}

nb_tensor *nb_model_loss(nb_ctx *ctx, nb_model *m, nb_tensor *output, const int32_t *labels,
                         nb_tensor *target)
{
    if (!ctx)
        return NULL;
    if (!m)
        return nbi_fail_null(ctx, NB_ERR_ARG, "model_loss: model is NULL");
    if (!output)
        return NULL;
    char s[96], t[96];
    switch (m->loss) {
    case NB_LOSS_NONE:
        return nbi_fail_null(ctx, NB_ERR_ARG, "model \"%s\": has no loss", m->name);
    case NB_LOSS_CROSS_ENTROPY:
        if (!labels)
            return nbi_fail_null(ctx, NB_ERR_ARG, "model \"%s\": cross_entropy needs labels",
                                 m->name);
        return nb_cross_entropy(ctx, output, labels);
    case NB_LOSS_MSE:
        if (!target)
            return nbi_fail_null(ctx, NB_ERR_ARG, "model \"%s\": mse needs a target", m->name);
        return nb_mse_loss(ctx, output, target);
    case NB_LOSS_HINGE:
        if (!target)
            return nbi_fail_null(ctx, NB_ERR_ARG, "model \"%s\": hinge needs a target", m->name);
        if (output->ndim < 1 || output->numel != output->shape[0] ||
            target->numel != output->shape[0])
            return nbi_fail_null(ctx, NB_ERR_ARG,
                                 "model \"%s\": hinge needs one score and one target per "
                                 "example: output %s, target %s", m->name,
                                 nb_shape_str(output, s, sizeof s),
                                 nb_shape_str(target, t, sizeof t));
        return nb_hinge_loss(ctx, output, target);
    }
    return nbi_fail_null(ctx, NB_ERR_ARG, "model \"%s\": unknown loss", m->name);
}

/* ---- weights --------------------------------------------------------------------- */

/* Strict: every tensor of the model and nothing else, but PyTorch's
 * "<bn>.num_batches_tracked", which the reader ignores. */
int nb_model_load_weights(nb_model *m, const char *path)
{
    nb_safetensors *f = nb_safetensors_open(m->ctx, path);
    if (!f)
        return nb_error(m->ctx);
    int rc = nb_safetensors_read(m->ctx, f, m->ntensors, m->tensors, true);
    nb_safetensors_close(f);
    return rc;
}

int nb_model_save_weights(nb_model *m, const char *path)
{
    return nb_safetensors_save(m->ctx, path, m->ntensors, m->tensors);
}
