/*
 * config.c - the "training" and "optimizer" sections of a model file, read
 * strictly: every field typed and range-checked, unknown fields refused.
 */
#include "internal.h"

#include <cJSON.h>
#include <math.h>

/* Reads the field `key` of `obj` as a number in [lo, hi] (integral if
 * asked) into *out; absent leaves *out alone.  place is "training". */
static int get_number(nb_ctx *ctx, const char *model, const char *place, const cJSON *obj,
                      const char *key, double lo, double hi, bool integral, double *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return NB_OK;
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) ||
        (integral && v->valuedouble != floor(v->valuedouble))) {
        if (integral)
            return nbi_fail(ctx, NB_ERR_FORMAT, "model \"%s\": %s.%s: must be an integer in [%g, %g]",
                            model, place, key, lo, hi);
        return nbi_fail(ctx, NB_ERR_FORMAT, "model \"%s\": %s.%s: must be a number in [%g, %g]",
                        model, place, key, lo, hi);
    }
    *out = v->valuedouble;
    return NB_OK;
}

static int get_bool(nb_ctx *ctx, const char *model, const char *place, const cJSON *obj,
                    const char *key, bool *out)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v)
        return NB_OK;
    if (!cJSON_IsBool(v))
        return nbi_fail(ctx, NB_ERR_FORMAT, "model \"%s\": %s.%s: must be true or false", model,
                        place, key);
    *out = cJSON_IsTrue(v);
    return NB_OK;
}

/* Every key of obj must be one of known[]. */
static int check_keys(nb_ctx *ctx, const char *model, const char *place, const cJSON *obj,
                      const char *const *known)
{
    for (const cJSON *it = obj->child; it; it = it->next) {
        bool ok = false;
        for (const char *const *k = known; *k && !ok; k++)
            ok = strcmp(it->string, *k) == 0;
        if (!ok)
            return nbi_fail(ctx, NB_ERR_FORMAT, "model \"%s\": %s: unknown field \"%s\"", model,
                            place, it->string);
    }
    return NB_OK;
}

static int read_optimizer(nb_ctx *ctx, const char *model, const cJSON *o, nb_optim_opts *opt)
{
    static const char *const known[] = {"type", "lr", "momentum", "dampening", "nesterov",
                                        "weight_decay", "betas", "alpha", "eps", "centered",
                                        NULL};
    const char *p = "optimizer";
    if (!cJSON_IsObject(o))
        return nbi_fail(ctx, NB_ERR_FORMAT, "model \"%s\": optimizer: must be an object", model);
    int rc = check_keys(ctx, model, p, o, known);
    if (rc != NB_OK)
        return rc;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
    int kind = NB_SGD;
    if (type) {
        kind = cJSON_IsString(type) ? nb_optim_kind_from_name(type->valuestring) : -1;
        if (kind < 0)
            return nbi_fail(ctx, NB_ERR_FORMAT,
                            "model \"%s\": optimizer.type: must be \"sgd\", \"adam\", \"adamw\" "
                            "or \"rmsprop\"", model);
    }
    *opt = nb_optim_defaults((nb_optim_kind)kind);
    const cJSON *betas = cJSON_GetObjectItemCaseSensitive(o, "betas");
    if (betas) {
        if (!cJSON_IsArray(betas) || cJSON_GetArraySize(betas) != 2 ||
            !cJSON_IsNumber(betas->child) || !cJSON_IsNumber(betas->child->next))
            return nbi_fail(ctx, NB_ERR_FORMAT, "model \"%s\": optimizer.betas: must be [beta1, beta2]",
                            model);
        opt->beta1 = betas->child->valuedouble;
        opt->beta2 = betas->child->next->valuedouble;
    }
    if ((rc = get_number(ctx, model, p, o, "lr", 0, 1e6, false, &opt->lr)) ||
        (rc = get_number(ctx, model, p, o, "momentum", 0, 1e6, false, &opt->momentum)) ||
        (rc = get_number(ctx, model, p, o, "dampening", 0, 1, false, &opt->dampening)) ||
        (rc = get_number(ctx, model, p, o, "weight_decay", 0, 1e6, false, &opt->weight_decay)) ||
        (rc = get_number(ctx, model, p, o, "alpha", 0, 1, false, &opt->alpha)) ||
        (rc = get_number(ctx, model, p, o, "eps", 0, 1, false, &opt->eps)) ||
        (rc = get_bool(ctx, model, p, o, "nesterov", &opt->nesterov)) ||
        (rc = get_bool(ctx, model, p, o, "centered", &opt->centered)))
        return rc;
    return NB_OK;
}

static int read_schedule(nb_ctx *ctx, const char *model, const cJSON *s, nb_train_opts *t)
{
    static const char *const known[] = {"type", "step_size", "gamma", "min_lr", NULL};
    const char *p = "training.lr_schedule";
    if (!cJSON_IsObject(s))
        return nbi_fail(ctx, NB_ERR_FORMAT, "model \"%s\": %s: must be an object", model, p);
    int rc = check_keys(ctx, model, p, s, known);
    if (rc != NB_OK)
        return rc;
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(s, "type");
    const char *name = cJSON_IsString(type) ? type->valuestring : "";
    if (strcmp(name, "step") == 0)
        t->schedule = NB_SCHEDULE_STEP;
    else if (strcmp(name, "cosine") == 0)
        t->schedule = NB_SCHEDULE_COSINE;
    else if (strcmp(name, "none") == 0)
        t->schedule = NB_SCHEDULE_NONE;
    else
        return nbi_fail(ctx, NB_ERR_FORMAT,
                        "model \"%s\": %s.type: must be \"step\", \"cosine\" or \"none\"", model, p);
    double step = t->step_size;
    if ((rc = get_number(ctx, model, p, s, "step_size", 1, 1e6, true, &step)) ||
        (rc = get_number(ctx, model, p, s, "gamma", 0, 1e6, false, &t->gamma)) ||
        (rc = get_number(ctx, model, p, s, "min_lr", 0, 1e6, false, &t->min_lr)))
        return rc;
    t->step_size = (int)step;
    return NB_OK;
}

static int read_training(nb_ctx *ctx, const char *model, const cJSON *o, nb_train_opts *t)
{
    static const char *const known[] = {"epochs", "batch_size", "validation_split", "seed",
                                        "classes", "normalize", "clip_grad_norm",
                                        "lr_schedule", NULL};
    const char *p = "training";
    if (!cJSON_IsObject(o))
        return nbi_fail(ctx, NB_ERR_FORMAT, "model \"%s\": training: must be an object", model);
    int rc = check_keys(ctx, model, p, o, known);
    if (rc != NB_OK)
        return rc;
    double epochs = t->epochs, batch = t->batch_size, seed = (double)t->seed;
    if ((rc = get_number(ctx, model, p, o, "epochs", 1, 1e6, true, &epochs)) ||
        (rc = get_number(ctx, model, p, o, "batch_size", 1, 1 << 20, true, &batch)) ||
        (rc = get_number(ctx, model, p, o, "validation_split", 0, 0.99, false,
                         &t->validation_split)) ||
        (rc = get_number(ctx, model, p, o, "seed", 0, 9007199254740992.0, true, &seed)) ||
        (rc = get_number(ctx, model, p, o, "clip_grad_norm", 0, 1e12, false, &t->clip_grad_norm)))
        return rc;
    t->epochs = (int)epochs;
    t->batch_size = (int)batch;
    t->seed = (uint64_t)seed;

    const cJSON *classes = cJSON_GetObjectItemCaseSensitive(o, "classes");
    if (classes) {
        int n = cJSON_IsArray(classes) ? cJSON_GetArraySize(classes) : 0;
        if (n < 2 || n > NB_MAX_CLASSES)
            return nbi_fail(ctx, NB_ERR_FORMAT,
                            "model \"%s\": training.classes: must be a list of 2 to %d labels",
                            model, NB_MAX_CLASSES);
        int i = 0;
        for (const cJSON *c = classes->child; c; c = c->next, i++) {
            if (!cJSON_IsNumber(c) || c->valuedouble != floor(c->valuedouble) ||
                c->valuedouble < 0 || c->valuedouble > 255)
                return nbi_fail(ctx, NB_ERR_FORMAT,
                                "model \"%s\": training.classes[%d]: must be a label in [0, 255]",
                                model, i);
            t->classes[i] = (int32_t)c->valuedouble;
            for (int j = 0; j < i; j++)
                if (t->classes[j] == t->classes[i])
                    return nbi_fail(ctx, NB_ERR_FORMAT,
                                    "model \"%s\": training.classes: label %d is listed twice",
                                    model, (int)t->classes[i]);
        }
        t->nclasses = n;
    }
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(o, "normalize");
    if (norm) {
        static const char *const nknown[] = {"mean", "std", NULL};
        if (!cJSON_IsObject(norm))
            return nbi_fail(ctx, NB_ERR_FORMAT,
                            "model \"%s\": training.normalize: must be {\"mean\": m, \"std\": s}",
                            model);
        if ((rc = check_keys(ctx, model, "training.normalize", norm, nknown)) ||
            (rc = get_number(ctx, model, "training.normalize", norm, "mean", -1e6, 1e6, false,
                             &t->mean)) ||
            (rc = get_number(ctx, model, "training.normalize", norm, "std", 1e-12, 1e6, false,
                             &t->std)))
            return rc;
    }
    const cJSON *sched = cJSON_GetObjectItemCaseSensitive(o, "lr_schedule");
    if (sched)
        return read_schedule(ctx, model, sched, t);
    return NB_OK;
}

/* Parses a section's JSON text and hands it to read(). */
static int section(nb_ctx *ctx, const nb_model *m, const char *key,
                   int (*read)(nb_ctx *, const char *, const cJSON *, void *), void *out)
{
    const char *text = nb_model_section(m, key);
    if (!text || !out)
        return NB_OK;
    cJSON *j = cJSON_Parse(text);
    if (!j)
        return nbi_fail(ctx, NB_ERR_FORMAT, "model \"%s\": %s: invalid JSON", nb_model_name(m), key);
    int rc = read(ctx, nb_model_name(m), j, out);
    cJSON_Delete(j);
    return rc;
}

static int read_optimizer_v(nb_ctx *ctx, const char *model, const cJSON *o, void *out)
{
    return read_optimizer(ctx, model, o, out);
}

static int read_training_v(nb_ctx *ctx, const char *model, const cJSON *o, void *out)
{
    return read_training(ctx, model, o, out);
}

int nb_model_train_opts(nb_ctx *ctx, const nb_model *m, nb_train_opts *train,
                        nb_optim_opts *optim)
{
    if (train)
        *train = (nb_train_opts){.epochs = 5, .batch_size = 64, .step_size = 1, .gamma = 0.1};
    if (optim)
        *optim = nb_optim_defaults(NB_SGD);
    int rc = section(ctx, m, "optimizer", read_optimizer_v, optim);
    if (rc == NB_OK)
        rc = section(ctx, m, "training", read_training_v, train);
    return rc;
}

double nb_schedule_lr(const nb_train_opts *t, double lr, int epoch)
{
    switch (t->schedule) {
    case NB_SCHEDULE_STEP: return nb_lr_step(lr, epoch, t->step_size, t->gamma);
    case NB_SCHEDULE_COSINE: return nb_lr_cosine(lr, epoch, t->epochs, t->min_lr);
    default: return lr;
    }
}
