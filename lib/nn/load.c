/*
 * load.c - a model from its JSON text: the top level, each layer's type,
 * name, fields and inputs, the names resolved and the graph put in an
 * order that runs, every shape inferred and bounded, the training
 * sections read (settings.c), and the parameters made, once their total
 * is known to fit the context's memory limit (none at all with
 * NB_MODEL_SHAPES_ONLY).  Every check is
 * made here, before anything runs, and the first mistake is one line,
 *   <origin>: <place>: <reason>
 * where the place is a key ("input", "loss"), a layer
 * (`layers[3] (conv2d "conv2")`) or a field (`layers[3].kernel_size`).
 * Knows no layer kind: each is a row of nbi_layer_kinds (layers.c) and its
 * fields are read by json.c.
 *
 * cJSON allocates its tree with the C library's malloc: its hooks are
 * process-wide, so the library leaves them alone, and frees the tree before
 * returning.  Everything the model keeps comes from the context's
 * allocator.
 */
#include "json.h"
#include "model.h"

#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#define MAX_FILE_BYTES ((size_t)16 << 20)
#define MAX_LAYERS 10000
#define MAX_NAME 48       /* "<name>.running_mean" fits a tensor's name */
#define MAX_MODEL_NAME 63

/* ---- the model's memory: zeroed, freed with the model --------------------- */

static void *mem(nb_model *m, size_t size)
{
    if (size > SIZE_MAX - sizeof(nbi_model_block))
        return nbi_fail_null(m->ctx, NB_ERR_NOMEM, "model: %zu bytes is too large", size);
    nbi_model_block *b = nbi_alloc(m->ctx, sizeof *b + size);
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
    nbi_json js;        /* the context, and the origin messages name */
    nb_model *m;
    const char *list;   /* "layers" or "nodes" */
    bool graph;
} loader;

NBI_PRINTF(3, 4) static int fail(loader *ld, const char *place, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = nbi_json_vfail(&ld->js, place, fmt, ap);
    va_end(ap);
    return rc;
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
    nbi_json_defaults(k->fields, conf);
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
                    "expected a string, got %s", nbi_json_describe(g, sizeof g, t));
    l->kind = find_kind(t->valuestring);
    if (!l->kind) {
        nbi_json_suggest sg = NBI_JSON_SUGGEST(t->valuestring);
        for (const nbi_layer_kind *k = nbi_layer_kinds; k->type; k++)
            nbi_json_offer(&sg, k->type);
        return fail(ld, place, "unknown type %s%s", nbi_quote(t->valuestring, g, sizeof g),
                    nbi_json_did_you_mean(s, sizeof s, &sg));
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
        return fail(ld, place, "expected a string, got %s", nbi_json_describe(g, sizeof g, n));
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
        return fail(ld, place, "expected a list of names, got %s",
                    nbi_json_describe(g, sizeof g, v));
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
            return fail(ld, p, "expected a name, got %s", nbi_json_describe(g, sizeof g, s));
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
        return fail(ld, place, "expected a string, got %s", nbi_json_describe(g, sizeof g, v));
    const nbi_layer_kind *k = find_kind(v->valuestring);
    if (!k || !(k->flags & NBI_ACTIVATION)) {
        nbi_json_suggest sg = NBI_JSON_SUGGEST(v->valuestring);
        for (k = nbi_layer_kinds; k->type; k++)
            if (k->flags & NBI_ACTIVATION)
                nbi_json_offer(&sg, k->type);
        return fail(ld, place, "unknown activation %s%s", nbi_quote(v->valuestring, g, sizeof g),
                    nbi_json_did_you_mean(s, sizeof s, &sg));
    }
    l->act = k;
    conf_defaults(k, &l->act_conf);
    return NB_OK;
}

/* "trainable": false keeps the layer's parameters as they are loaded. */
static int read_trainable(loader *ld, nbi_layer *l, const cJSON *v)
{
    char place[160], g[96];
    if (!cJSON_IsBool(v))
        return fail(ld, field_place(ld, l, "trainable", place, sizeof place),
                    "expected true or false, got %s", nbi_json_describe(g, sizeof g, v));
    l->frozen = cJSON_IsFalse(v);
    return NB_OK;
}

/* One entry of "layers" or "nodes": its type, name, fields and settings. */
static int read_layer(loader *ld, nbi_layer *l, const cJSON *item)
{
    char place[160], fp[160], g[96];
    if (!cJSON_IsObject(item))
        return fail(ld, layer_place(ld, l, place, sizeof place), "expected an object, got %s",
                    nbi_json_describe(g, sizeof g, item));
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

    /* Every key once, each known: the layer's own fields (read by their
     * rows), then the keys every layer has, at the end of seen[]. */
    static const char *const common[] = {"type", "name", "inputs", "activation", "trainable",
                                         "init"};
    enum { NCOMMON = 6, C_INPUTS = NBI_MAX_FIELDS + 2, C_ACTIVATION, C_TRAINABLE, C_INIT };
    bool seen[NBI_MAX_FIELDS + NCOMMON] = {false};
    const cJSON *inputs = NULL;
    for (const cJSON *v = item->child; v; v = v->next) {
        const char *key = v->string;
        int f = nbi_json_find(k->fields, key);
        for (int i = 0; i < NCOMMON && f < 0; i++)
            if (strcmp(key, common[i]) == 0)
                f = NBI_MAX_FIELDS + i;
        bool known = f >= 0 && !(f == C_ACTIVATION && !(k->flags & NBI_TAKES_ACT));
        if (f == C_INPUTS && !ld->graph)
            return fail(ld, place, "\"inputs\" belongs to the graph form (\"nodes\"); "
                        "in \"layers\" each layer reads the one before it");
        if (!known) {
            nbi_json_suggest sg = NBI_JSON_SUGGEST(key);
            nbi_json_offer_rows(&sg, k->fields);
            for (int i = 0; i < NCOMMON; i++)
                if ((i != 2 || ld->graph) && (i != 3 || (k->flags & NBI_TAKES_ACT)))
                    nbi_json_offer(&sg, common[i]);
            return nbi_json_unknown(&ld->js, place, key, &sg);
        }
        if (seen[f])
            return nbi_json_twice(&ld->js, place, key);
        seen[f] = true;
        if (f < NBI_MAX_FIELDS)
            rc = nbi_json_field(&ld->js, field_place(ld, l, key, fp, sizeof fp), &k->fields[f], v,
                                &l->conf);
        else if (f == C_INPUTS)
            inputs = v;
        else if (f == C_ACTIVATION)
            rc = read_activation(ld, l, v);
        else if (f == C_TRAINABLE)
            rc = read_trainable(ld, l, v);
        else if (f == C_INIT)
            rc = nbi_init_read(&ld->js, field_place(ld, l, "init", fp, sizeof fp), v, l);
        if (rc)
            return rc;
    }
    if ((rc = nbi_json_missing(&ld->js, place, k->fields, seen)))
        return rc;
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
    t->slot = nbi_alloc(ld->js.ctx, size * sizeof *t->slot);
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
    char *state = nbi_alloc(ld->js.ctx, (size_t)n);      /* 0 new, 1 open, 2 done */
    int *stack = nbi_alloc(ld->js.ctx, sizeof *stack * (size_t)n);
    int *next = nbi_alloc(ld->js.ctx, sizeof *next * (size_t)n); /* next input to visit */
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
    nbi_free(ld->js.ctx, state);
    nbi_free(ld->js.ctx, stack);
    nbi_free(ld->js.ctx, next);
    return rc;
}

/* ---- shapes and tensors -------------------------------------------------------- */

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
    if (nbi_shape_elems(&l->out) > NBI_MAX_ELEMS)
        return fail(ld, place, "its output %s is too large (over 2^40 elements per example)",
                    nbi_shape_fmt(&l->out, s, sizeof s));
    for (int k = 0; k < NBI_NSLOTS; k++)
        if (l->slot[k].ndim && nbi_shape_elems(&l->slot[k]) > NBI_MAX_ELEMS)
            return fail(ld, place, "its %s %s is too large (over 2^40 elements)",
                        nbi_slot_names[k], nbi_shape_fmt(&l->slot[k], s, sizeof s));
    char text[640];
    int rc = nbi_init_check(&ld->js, field_place(ld, l, "init", place, sizeof place), l, text,
                            sizeof text);
    if (!rc && text[0] && !(l->init_text = mem_strdup(m, text)))
        rc = NB_ERR_NOMEM;
    size_t at = 0;
    nbi_fields_text(l->kind->fields, &l->conf, text, sizeof text, &at);
    if (l->act)
        nbi_fields_text(l->act->fields, &l->act_conf, text, sizeof text, &at);
    if (!rc && at && !(l->settings = mem_strdup(m, text)))
        rc = NB_ERR_NOMEM;
    return rc;
}

/* The parameters and buffers, refused before any is made when they do not
 * fit the context's memory limit. */
static int make_tensors(nb_model *m, const char *origin)
{
    uint64_t elems = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < NBI_NSLOTS; k++)
            if (m->layers[i].slot[k].ndim)
                elems += (uint64_t)nbi_shape_elems(&m->layers[i].slot[k]);
    /* At most 10000 layers of 4 slots of 2^40 elements: no overflow. */
    uint64_t bytes = elems * nb_dtype_size(m->dtype);
    if (!nbi_mem_fits(m->ctx, bytes))
        return nbi_mem_refuse(m->ctx, bytes, "%s: making its %" PRIu64 " parameters and buffers "
                              "in %s", origin, elems, nb_dtype_name(m->dtype));
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
            nb_requires_grad(t, !buffer && !l->frozen);
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
                    "excluded), got %s", NB_MAX_DIMS - 1, nbi_json_describe(g, sizeof g, v));
    m->input.ndim = n;
    for (int i = 0; i < n; i++) {
        char place[32];
        int x;
        snprintf(place, sizeof place, "input[%d]", i);
        int rc = nbi_json_int(&ld->js, place, cJSON_GetArrayItem(v, i), 1, INT_MAX, "an integer",
                              &x);
        if (rc)
            return rc;
        m->input.d[i] = x;
    }
    if (nbi_shape_elems(&m->input) > NBI_MAX_ELEMS)
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
                    nbi_json_describe(g, sizeof g, v));
    const cJSON *t = NULL;
    for (const cJSON *c = v->child; c; c = c->next) {
        if (strcmp(c->string, "type") != 0) {
            nbi_json_suggest sg = NBI_JSON_SUGGEST(c->string);
            nbi_json_offer(&sg, "type");
            return nbi_json_unknown(&ld->js, "loss", c->string, &sg);
        }
        if (t)
            return nbi_json_twice(&ld->js, "loss", "type");
        t = c;
    }
    if (!t)
        return fail(ld, "loss", "missing field \"type\"");
    if (!cJSON_IsString(t))
        return fail(ld, "loss.type", "expected a string, got %s",
                    nbi_json_describe(g, sizeof g, t));
    nbi_json_suggest sg = NBI_JSON_SUGGEST(t->valuestring);
    for (int i = 0; i < 3; i++) {
        if (strcmp(t->valuestring, loss_names[i]) == 0) {
            ld->m->loss = (nb_loss_kind)(NB_LOSS_CROSS_ENTROPY + i);
            return NB_OK;
        }
        nbi_json_offer(&sg, loss_names[i]);
    }
    return fail(ld, "loss", "unknown type %s%s; use cross_entropy, mse or hinge",
                nbi_quote(t->valuestring, g, sizeof g), nbi_json_did_you_mean(s, sizeof s, &sg));
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
    if (m->loss == NB_LOSS_HINGE && nbi_shape_elems(&out->out) != 1)
        return fail(ld, "loss", "hinge needs 1 score per example, but the output (%s) is %s", q, s);
    return NB_OK;
}

/* A section is an object, kept as JSON text for other tools; what it says
 * is read once the network is known to be right (read_model). */
static int read_section(loader *ld, int sec, const cJSON *v)
{
    char g[96];
    if (!v)
        return NB_OK;
    if (!cJSON_IsObject(v))
        return fail(ld, nbi_model_sections[sec], "expected an object, got %s",
                    nbi_json_describe(g, sizeof g, v));
    char *text = cJSON_PrintUnformatted(v);
    if (!text)
        return nbi_fail(ld->js.ctx, NB_ERR_NOMEM, "%s: out of memory printing \"%s\"",
                        ld->js.origin, nbi_model_sections[sec]);
    ld->m->sections[sec] = mem_strdup(ld->m, text);
    cJSON_free(text);
    return ld->m->sections[sec] ? NB_OK : NB_ERR_NOMEM;
}

static int read_layers(loader *ld, const cJSON *v)
{
    char g[96];
    nb_model *m = ld->m;
    if (!cJSON_IsArray(v))
        return fail(ld, ld->list, "expected a list of layers, got %s",
                    nbi_json_describe(g, sizeof g, v));
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
    order = nbi_alloc(ld->js.ctx, sizeof *order * (size_t)n);
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
        rc = fail(ld, "output", "expected a node's name, got %s",
                  nbi_json_describe(g, sizeof g, output));
        goto done;
    }
    int out = name_find(&t, m->layers, output->valuestring);
    if (out < 0) {
        rc = fail(ld, "output", "%s is not a node", nbi_quote(output->valuestring, g, sizeof g));
        goto done;
    }
    /* Lay the nodes out in their order; inputs follow them. */
    nbi_layer *sorted = mem(m, sizeof *sorted * (size_t)n);
    int *pos = nbi_alloc(ld->js.ctx, sizeof *pos * (size_t)n);
    if (!sorted || !pos) {
        nbi_free(ld->js.ctx, pos);
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
    nbi_free(ld->js.ctx, pos);
done:
    nbi_free(ld->js.ctx, t.slot);
    nbi_free(ld->js.ctx, order);
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
        return nbi_fail(ld->js.ctx, NB_ERR_FORMAT, "%s: the top level must be an object, got %s",
                        ld->js.origin, nbi_json_describe(g, sizeof g, root));
    const cJSON *key[NKEYS] = {NULL};
    for (const cJSON *v = root->child; v; v = v->next) {
        int k = 0;
        while (k < NKEYS && strcmp(v->string, top_keys[k]) != 0)
            k++;
        if (k == NKEYS) {
            nbi_json_suggest sg = NBI_JSON_SUGGEST(v->string);
            for (k = 0; k < NKEYS; k++)
                nbi_json_offer(&sg, top_keys[k]);
            return nbi_fail(ld->js.ctx, NB_ERR_FORMAT, "%s: unknown key %s%s", ld->js.origin,
                            nbi_quote(v->string, g, sizeof g),
                            nbi_json_did_you_mean(s, sizeof s, &sg));
        }
        if (key[k])
            return fail(ld, top_keys[k], "appears twice");
        key[k] = v;
    }
    int rc;
    if (key[K_NAME]) {
        if (!cJSON_IsString(key[K_NAME]))
            return fail(ld, "name", "expected a string, got %s",
                        nbi_json_describe(g, sizeof g, key[K_NAME]));
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
                    nbi_json_describe(g, sizeof g, key[K_DESCRIPTION]));
    if ((rc = read_input(ld, key[K_INPUT])) || (rc = read_loss(ld, key[K_LOSS])) ||
        (rc = read_section(ld, NBI_SEC_OPTIMIZER, key[K_OPTIMIZER])) ||
        (rc = read_section(ld, NBI_SEC_TRAINING, key[K_TRAINING])))
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
    if ((rc = check_loss(ld)))
        return rc;
    if ((rc = nbi_settings_read(&ld->js, key[K_OPTIMIZER], key[K_TRAINING], &m->optim,
                                &m->train)))
        return rc;
    return nbi_settings_check_channels(&ld->js, &m->train,
                                       m->input.ndim == 3 ? m->input.d[0] : 1);
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
    return nbi_fail(ld->js.ctx, NB_ERR_FORMAT, "%s:%d:%d: invalid JSON%s", ld->js.origin, line,
                    col, what);
}

nb_model *nb_model_parse(nb_ctx *ctx, const char *json, size_t len, const char *origin,
                         nb_dtype dtype)
{
    return nb_model_parse_with(ctx, json, len, origin, dtype, 0);
}

nb_model *nb_model_parse_with(nb_ctx *ctx, const char *json, size_t len, const char *origin,
                              nb_dtype dtype, unsigned flags)
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
    m->shapes_only = flags & NB_MODEL_SHAPES_ONLY;
    loader ld = {{ctx, origin ? origin : "<string>"}, m, "layers", false};

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
        rc = !m->acts ? NB_ERR_NOMEM : m->shapes_only ? NB_OK : make_tensors(m, ld.js.origin);
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
    return nb_model_load_with(ctx, path, dtype, 0);
}

nb_model *nb_model_load_with(nb_ctx *ctx, const char *path, nb_dtype dtype, unsigned flags)
{
    if (!ctx)
        return NULL;
    if (!path)
        return nbi_fail_null(ctx, NB_ERR_ARG, "model: path is NULL");
    char *buf;
    size_t len;
    /* Not only regular files: a model may come through a pipe, read up to
     * MAX_FILE_BYTES. */
    if (nbi_file_read(ctx, path, MAX_FILE_BYTES, 0, &buf, &len) != NB_OK)
        return NULL;
    nb_model *m = nb_model_parse_with(ctx, buf, len, path, dtype, flags);
    nbi_free(ctx, buf);
    return m;
}
