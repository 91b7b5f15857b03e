/*
 * init_spec.c - a layer's "init": the initialiser of its weight and of its
 * bias, with torch.nn.init's names and arguments,
 *   "init": {"weight": "kaiming_normal", "mode": "fan_out", "nonlinearity": "relu",
 *            "bias": {"type": "constant", "val": 0.1}}
 * read and checked (each initialiser's arguments are field rows, so its
 * values get json.c's messages), checked again once the shapes are known
 * (the slot exists, a fan needs 2 dimensions), and drawn after the layer's
 * own initialisation, as a PyTorch module is made and then passed to
 * nn.init.  Generic over the slots: knows no layer kind.
 */
#include "json.h"
#include "layer.h"

#include <stdio.h>
#include <stdlib.h>

const char *const nbi_init_names[NBI_NINITS] = {
    "default", "kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal", "normal",
    "uniform", "trunc_normal", "zeros", "ones", "constant"};

/* nb_nonlinearity's order: a choice's value is its word's position. */
static const char *const nonlinearities[] = {
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
    "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu", NULL};
static const char *const modes[] = {"fan_in", "fan_out", NULL};
static const nbi_ftype nonlinearity_type = {.kind = NBI_FK_CHOICE, .choices = nonlinearities};
static const nbi_ftype mode_type = {.kind = NBI_FK_CHOICE, .choices = modes};

#define OFF(member) offsetof(nbi_init, member)
#define FINITE -1e300, 1e300

static const nbi_field kaiming_rows[] = {
    {"a", NBI_F_REAL, 0, OFF(a), 0, FINITE},
    {"mode", &mode_type, 0, OFF(mode), NB_FAN_IN, 0, 0},
    {"nonlinearity", &nonlinearity_type, 0, OFF(nonlinearity), NB_NL_LEAKY_RELU, 0, 0},
    {0},
};
static const nbi_field xavier_rows[] = {
    {"gain", NBI_F_REAL, 0, OFF(gain), 1, 0, 1e6},
    {0},
};
static const nbi_field normal_rows[] = {
    {"mean", NBI_F_REAL, 0, OFF(mean), 0, FINITE},
    {"std", NBI_F_REAL, 0, OFF(std), 1, 0, 1e6},
    {0},
};
static const nbi_field uniform_rows[] = {
    {"a", NBI_F_REAL, 0, OFF(a), 0, FINITE},
    {"b", NBI_F_REAL, 0, OFF(b), 1, FINITE},
    {0},
};
static const nbi_field trunc_normal_rows[] = {
    {"mean", NBI_F_REAL, 0, OFF(mean), 0, FINITE},
    {"std", NBI_F_REAL, 0, OFF(std), 1, 0, 1e6},
    {"a", NBI_F_REAL, 0, OFF(a), -2, FINITE},
    {"b", NBI_F_REAL, 0, OFF(b), 2, FINITE},
    {0},
};
static const nbi_field constant_rows[] = {
    {"val", NBI_F_REAL, NBI_REQUIRED, OFF(val), 0, FINITE},
    {0},
};
static const nbi_field no_rows[] = {{0}};

/* Each initialiser's arguments, in nbi_init_kind's order. */
static const nbi_field *const rows_of[NBI_NINITS] = {
    no_rows, kaiming_rows, kaiming_rows, xavier_rows, xavier_rows, normal_rows,
    uniform_rows, trunc_normal_rows, no_rows, no_rows, constant_rows};

static const char *const slot_keys[2] = {"weight", "bias"};

/* ---- reading ----------------------------------------------------------------- */

static int find_init(const nbi_json *js, const char *place, const cJSON *v, int *kind)
{
    char g[96], s[64];
    if (!cJSON_IsString(v))
        return nbi_json_fail(js, place, "expected an initialiser's name or an object with "
                             "\"type\", got %s", nbi_json_describe(g, sizeof g, v));
    nbi_json_suggest sg = NBI_JSON_SUGGEST(v->valuestring);
    for (int k = 0; k < NBI_NINITS; k++) {
        if (strcmp(v->valuestring, nbi_init_names[k]) == 0) {
            *kind = k;
            return NB_OK;
        }
        nbi_json_offer(&sg, nbi_init_names[k]);
    }
    return nbi_json_fail(js, place, "unknown initialiser %s%s",
                         nbi_quote(v->valuestring, g, sizeof g),
                         nbi_json_did_you_mean(s, sizeof s, &sg));
}

/* "\"a\", \"mode\" and \"nonlinearity\"", or "none". */
static const char *takes_str(const nbi_field *rows, char *buf, size_t size)
{
    size_t n = 0;
    snprintf(buf, size, "none");
    for (int i = 0; rows[i].name && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s\"%s\"",
                              i == 0 ? "" : rows[i + 1].name ? ", " : " and ", rows[i].name);
    return buf;
}

static bool any_init_takes(const char *key)
{
    for (int k = 0; k < NBI_NINITS; k++)
        if (nbi_json_find(rows_of[k], key) >= 0)
            return true;
    return false;
}

/* An argument key of kind: its row, or the message for one it does not take. */
static int arg_row(const nbi_json *js, const char *place, int kind, const char *key,
                   const char *const *others)
{
    const nbi_field *rows = rows_of[kind];
    int f = nbi_json_find(rows, key);
    if (f >= 0)
        return f;
    char q[96], t[96];
    if (any_init_takes(key)) {
        nbi_json_fail(js, place, "%s takes no %s (its arguments: %s)", nbi_init_names[kind],
                      nbi_quote(key, q, sizeof q), takes_str(rows, t, sizeof t));
        return -1;
    }
    nbi_json_suggest sg = NBI_JSON_SUGGEST(key);
    nbi_json_offer_rows(&sg, rows);
    for (; others && *others; others++)
        nbi_json_offer(&sg, *others);
    nbi_json_unknown(js, place, key, &sg);
    return -1;
}

/* The arguments among the keys from `first` on (but skip[]), read into
 * spec by kind's rows at place's fields, then the checks rows cannot make. */
static int read_args(const nbi_json *js, const char *place, int kind, const cJSON *first,
                     const char *const *skip, nbi_init *spec)
{
    const nbi_field *rows = rows_of[kind];
    bool seen[NBI_MAX_FIELDS] = {false};
    char fp[256];
    *spec = (nbi_init){.kind = kind};
    nbi_json_defaults(rows, spec);
    for (const cJSON *c = first; c; c = c->next) {
        bool skipped = false;
        for (const char *const *s = skip; *s; s++)
            skipped |= strcmp(c->string, *s) == 0;
        if (skipped)
            continue;
        int f = arg_row(js, place, kind, c->string, skip);
        if (f < 0)
            return NB_ERR_FORMAT;
        if (seen[f])
            return nbi_json_twice(js, place, c->string);
        seen[f] = true;
        snprintf(fp, sizeof fp, "%s.%s", place, c->string);
        int rc = nbi_json_field(js, fp, &rows[f], c, spec);
        if (rc)
            return rc;
    }
    const char *name = nbi_init_names[kind];
    if (kind == NBI_INIT_CONSTANT && !seen[0])
        return nbi_json_fail(js, place, "constant needs \"val\", as in {\"type\": "
                             "\"constant\", \"val\": 0.1}");
    if ((kind == NBI_INIT_KAIMING_UNIFORM || kind == NBI_INIT_KAIMING_NORMAL) && seen[0] &&
        spec->nonlinearity != NB_NL_LEAKY_RELU)
        return nbi_json_fail(js, place, "%s: \"a\" is leaky_relu's negative slope, but the "
                             "nonlinearity is \"%s\"", name, nonlinearities[spec->nonlinearity]);
    if (kind == NBI_INIT_UNIFORM && spec->a > spec->b)
        return nbi_json_fail(js, place, "uniform needs a <= b, got a %g and b %g", spec->a,
                             spec->b);
    if (kind == NBI_INIT_TRUNC_NORMAL) {
        if (!(spec->a < spec->b))
            return nbi_json_fail(js, place, "trunc_normal needs a < b, got a %g and b %g",
                                 spec->a, spec->b);
        double mass = nbi_trunc_normal_mass(spec->mean, spec->std, spec->a, spec->b);
        if (!(mass >= NBI_TRUNC_NORMAL_MIN_MASS))
            return nbi_json_fail(js, place, "trunc_normal: [a, b] = [%g, %g] holds %.3g of "
                                 "normal(%g, %g), less than %g", spec->a, spec->b, mass,
                                 spec->mean, spec->std, NBI_TRUNC_NORMAL_MIN_MASS);
    }
    return NB_OK;
}

/* A slot's value v at place (NULL: "default"): a name, or an object
 * {"type": name, arguments...}.  A weight named by a string takes its
 * arguments from the keys beside it in the init object at ip. */
static int read_slot(const nbi_json *js, const char *place, const cJSON *v, const char *ip,
                     const cJSON *siblings, nbi_init *spec)
{
    static const char *const skip_type[] = {"type", NULL};
    static const char *const skip_slots[] = {"weight", "bias", NULL};
    char fp[224];
    int kind = NBI_INIT_DEFAULT, rc;
    if (v && cJSON_IsObject(v)) {
        const cJSON *t = NULL;
        for (const cJSON *c = v->child; c; c = c->next) {
            if (strcmp(c->string, "type") != 0)
                continue;
            if (t)
                return nbi_json_twice(js, place, "type");
            t = c;
        }
        if (!t)
            return nbi_json_fail(js, place, "missing field \"type\" (the initialiser's name)");
        snprintf(fp, sizeof fp, "%s.type", place);
        if ((rc = find_init(js, fp, t, &kind)))
            return rc;
        return read_args(js, place, kind, v->child, skip_type, spec);
    }
    if (v && (rc = find_init(js, place, v, &kind)))
        return rc;
    return siblings ? read_args(js, ip, kind, siblings, skip_slots, spec)
                    : read_args(js, place, kind, NULL, skip_slots, spec);
}

int nbi_init_read(const nbi_json *js, const char *place, const cJSON *v, nbi_layer *l)
{
    char g[96], fp[192];
    if (!cJSON_IsObject(v))
        return nbi_json_fail(js, place, "expected an object such as {\"weight\": "
                             "\"kaiming_normal\", \"bias\": \"zeros\"}, got %s",
                             nbi_json_describe(g, sizeof g, v));
    const cJSON *slot[2] = {NULL, NULL};
    const cJSON *arg = NULL; /* the first argument beside the slots */
    for (const cJSON *c = v->child; c; c = c->next) {
        int s = strcmp(c->string, "weight") == 0 ? 0 : strcmp(c->string, "bias") == 0 ? 1 : -1;
        if (s < 0) {
            arg = arg ? arg : c;
            continue;
        }
        if (slot[s])
            return nbi_json_twice(js, place, c->string);
        slot[s] = c;
    }
    if (arg && !slot[0] && any_init_takes(arg->string))
        return nbi_json_fail(js, place, "\"%s\" is an argument of the weight's initialiser: "
                             "name it with \"weight\"", arg->string);
    if (arg && slot[0] && cJSON_IsObject(slot[0]))
        return nbi_json_fail(js, place, "\"%s\" beside a \"weight\" object: put the weight's "
                             "arguments inside it", arg->string);
    l->init_given = true;
    for (int s = 0; s < 2; s++) {
        snprintf(fp, sizeof fp, "%s.%s", place, slot_keys[s]);
        int rc = read_slot(js, fp, slot[s], place, s == 0 ? v->child : NULL, &l->init[s]);
        if (rc)
            return rc;
    }
    return NB_OK;
}

/* ---- checks once the shapes are known, and the canonical text -------------- */

/* Why a slot of l is missing: the field that turned it off, if any. */
static const char *no_slot_why(const nbi_layer *l)
{
    if (nbi_json_find(l->kind->fields, "bias") >= 0)
        return " (\"bias\" is false)";
    if (nbi_json_find(l->kind->fields, "affine") >= 0)
        return " (\"affine\" is false)";
    return "";
}

static bool needs_fans(int kind)
{
    return kind >= NBI_INIT_KAIMING_UNIFORM && kind <= NBI_INIT_XAVIER_NORMAL;
}

/* The shortest of %.15g, %.16g and %.17g that reads back as d. */
static const char *num(char *buf, size_t size, double d)
{
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, size, "%.*g", digits, d);
        if (strtod(buf, NULL) == d)
            break;
    }
    return buf;
}

/* One slot's initialiser with every argument, as the file would give it:
 * "name" alone, or "name", "arg": value... (the arguments as JSON keys). */
static size_t put_args(const nbi_init *spec, char *buf, size_t size)
{
    const nbi_field *rows = rows_of[spec->kind];
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; rows[i].name && n < size; i++) {
        const char *p = (const char *)spec + rows[i].offset;
        char v[40];
        if (rows[i].type->kind == NBI_FK_CHOICE)
            snprintf(v, sizeof v, "\"%s\"", rows[i].type->choices[*(const int *)p]);
        else
            num(v, sizeof v, *(const double *)p);
        n += (size_t)snprintf(buf + n, size - n, ", \"%s\": %s", rows[i].name, v);
    }
    return n;
}

/* {"weight": "kaiming_normal", "a": 0, "mode": "fan_out", "nonlinearity":
 * "relu", "bias": {"type": "constant", "val": 0.1}}: every argument, so two
 * files meaning the same draws have the same text (and digest). */
static void canonical(const nbi_init *init, char *buf, size_t size)
{
    char args[2][256];
    for (int s = 0; s < 2; s++)
        put_args(&init[s], args[s], sizeof args[s]);
    const char *b = nbi_init_names[init[1].kind];
    if (args[1][0])
        snprintf(buf, size, "{\"weight\": \"%s\"%s, \"bias\": {\"type\": \"%s\"%s}}",
                 nbi_init_names[init[0].kind], args[0], b, args[1]);
    else
        snprintf(buf, size, "{\"weight\": \"%s\"%s, \"bias\": \"%s\"}",
                 nbi_init_names[init[0].kind], args[0], b);
}

int nbi_init_check(const nbi_json *js, const char *place, const nbi_layer *l, char *buf,
                   size_t size)
{
    char q[80], fp[192], s[96];
    buf[0] = '\0';
    if (!l->init_given)
        return NB_OK;
    nbi_quote(l->name, q, sizeof q);
    if (!l->slot[NBI_WEIGHT].ndim && !l->slot[NBI_BIAS].ndim)
        return nbi_json_fail(js, place, "%s %s has no weight or bias to initialise%s",
                             l->kind->type, q, no_slot_why(l));
    for (int k = 0; k < 2; k++) {
        int kind = l->init[k].kind;
        snprintf(fp, sizeof fp, "%s.%s", place, slot_keys[k]);
        if (kind == NBI_INIT_DEFAULT)
            continue;
        if (!l->slot[k].ndim)
            return nbi_json_fail(js, fp, "%s %s has no %s%s", l->kind->type, q, slot_keys[k],
                                 no_slot_why(l));
        if (needs_fans(kind) && l->slot[k].ndim < 2)
            return nbi_json_fail(js, fp, "%s needs a tensor of 2 or more dimensions (for its fan "
                                 "in and fan out), but the %s of %s %s is %s", nbi_init_names[kind],
                                 slot_keys[k], l->kind->type, q,
                                 nbi_shape_fmt(&l->slot[k], s, sizeof s));
    }
    if (l->init[0].kind != NBI_INIT_DEFAULT || l->init[1].kind != NBI_INIT_DEFAULT)
        canonical(l->init, buf, size);
    return NB_OK;
}

/* ---- drawing --------------------------------------------------------------- */

/* nbi_init_check made sure that every call succeeds. */
static void draw(const nbi_init *spec, nb_tensor *t, nb_rng *rng)
{
    switch (spec->kind) {
    case NBI_INIT_KAIMING_UNIFORM:
        nb_init_kaiming_uniform_with(t, rng, spec->a, spec->mode, spec->nonlinearity);
        break;
    case NBI_INIT_KAIMING_NORMAL:
        nb_init_kaiming_normal_with(t, rng, spec->a, spec->mode, spec->nonlinearity);
        break;
    case NBI_INIT_XAVIER_UNIFORM: nb_init_xavier_uniform_with(t, rng, spec->gain); break;
    case NBI_INIT_XAVIER_NORMAL: nb_init_xavier_normal_with(t, rng, spec->gain); break;
    case NBI_INIT_NORMAL: nb_fill_normal(t, rng, spec->mean, spec->std); break;
    case NBI_INIT_UNIFORM: nb_fill_uniform(t, rng, spec->a, spec->b); break;
    case NBI_INIT_TRUNC_NORMAL:
        nb_init_trunc_normal(t, rng, spec->mean, spec->std, spec->a, spec->b);
        break;
    case NBI_INIT_ZEROS: nb_fill(t, 0); break;
    case NBI_INIT_ONES: nb_fill(t, 1); break;
    case NBI_INIT_CONSTANT: nb_fill(t, spec->val); break;
    default: break;
    }
}

void nbi_init_apply(const nbi_layer *l, nb_rng *rng)
{
    for (int k = 0; k < 2; k++)
        if (l->init[k].kind != NBI_INIT_DEFAULT && l->t[k])
            draw(&l->init[k], l->t[k], rng);
}
