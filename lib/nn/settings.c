/*
 * settings.c - the training settings a model file carries: its "optimizer"
 * and "training" sections as field rows, read at load by json.c with the
 * same messages as the layers' fields, and the learning-rate schedule they
 * name.  Adding a setting is a member of nb_train_opts or nb_optim_opts and
 * one row here.  Knows nothing of layers or of the model.
 */
#include "json.h"

#include <inttypes.h>
#include <math.h>

#define TRAIN(member) offsetof(nb_train_opts, member)
#define OPTIM(member) offsetof(nb_optim_opts, member)

/* A choice is written as an int; betas as double[2] over beta1, beta2. */
_Static_assert(sizeof(nb_optim_kind) == sizeof(int) && sizeof(nb_schedule) == sizeof(int),
               "the kinds are ints");
_Static_assert(OPTIM(beta2) == OPTIM(beta1) + sizeof(double), "beta2 follows beta1");

/* ---- "optimizer" ----------------------------------------------------------
 * Its defaults are PyTorch's for its type (nb_optim_defaults), so no row has
 * one of its own, and the type is read before the rest. */

static const nbi_ftype optim_type = {.kind = NBI_FK_CHOICE, .choices = nbi_optim_kind_names};
static const nbi_ftype betas = {.kind = NBI_FK_REALS, .len = {2, 2}};

static const nbi_field optim_fields[] = {
    {"type", &optim_type, NBI_KEEP, OPTIM(kind), 0, 0, 0}, /* first: read first */
    {"lr", NBI_F_REAL, NBI_KEEP, OPTIM(lr), 0, 0, 1e6},
    {"momentum", NBI_F_REAL, NBI_KEEP, OPTIM(momentum), 0, 0, 1e6},
    {"dampening", NBI_F_REAL, NBI_KEEP, OPTIM(dampening), 0, 0, 1},
    {"nesterov", NBI_F_BOOL, NBI_KEEP, OPTIM(nesterov), 0, 0, 1},
    {"weight_decay", NBI_F_REAL, NBI_KEEP, OPTIM(weight_decay), 0, 0, 1e6},
    {"betas", &betas, NBI_KEEP, OPTIM(beta1), 0, -HUGE_VAL, HUGE_VAL}, /* nb_optim_new checks */
    {"alpha", NBI_F_REAL, NBI_KEEP, OPTIM(alpha), 0, 0, 1},
    {"eps", NBI_F_REAL, NBI_KEEP, OPTIM(eps), 0, 0, 1},
    {"centered", NBI_F_BOOL, NBI_KEEP, OPTIM(centered), 0, 0, 1},
    {0},
};

/* ---- "training" ---------------------------------------------------------- */

/* By nb_schedule's values. */
_Static_assert(NB_SCHEDULE_NONE == 0 && NB_SCHEDULE_STEP == 1 && NB_SCHEDULE_COSINE == 2,
               "the words are in nb_schedule's order");
static const char *const schedule_names[] = {"none", "step", "cosine", NULL};
static const nbi_ftype schedule_type = {.kind = NBI_FK_CHOICE, .choices = schedule_names};

static const nbi_field schedule_fields[] = {
    {"type", &schedule_type, NBI_REQUIRED, TRAIN(schedule), NB_SCHEDULE_NONE, 0, 0},
    {"step_size", NBI_F_INT, 0, TRAIN(step_size), 1, 1, 1e6},
    {"gamma", NBI_F_REAL, 0, TRAIN(gamma), 0.1, 0, 1e6},
    {"min_lr", NBI_F_REAL, 0, TRAIN(min_lr), 0, 0, 1e6},
    {0},
};

/* A number, or one per channel; absent, nothing is read and std stays 0:
 * no normalising. */
static const nbi_ftype means = {.kind = NBI_FK_REALS, .len = {1, NB_MAX_CHANNELS},
                                .len_offset = TRAIN(nmean)};
static const nbi_ftype stds = {.kind = NBI_FK_REALS, .len = {1, NB_MAX_CHANNELS},
                               .len_offset = TRAIN(nstd)};
static const nbi_field normalize_fields[] = {
    {"mean", &means, NBI_ONE, TRAIN(mean), 0, -1e6, 1e6},
    {"std", &stds, NBI_ONE, TRAIN(std), 0, 1e-12, 1e6},
    {0},
};

static const nbi_field crop_fields[] = {
    {"padding", NBI_F_INT, NBI_REQUIRED, TRAIN(augment.crop_padding), 0, 0, 1024},
    {0},
};
static const nbi_ftype crop = {.kind = NBI_FK_OBJECT, .fields = crop_fields};

static const nbi_ftype classes = {.kind = NBI_FK_INTS, .len = {2, NB_MAX_CLASSES},
                                  .len_offset = TRAIN(nclasses)};
static const nbi_ftype normalize = {.kind = NBI_FK_OBJECT, .fields = normalize_fields};
static const nbi_ftype schedule = {.kind = NBI_FK_OBJECT, .fields = schedule_fields};

/* By nb_monitor's values. */
_Static_assert(NB_MONITOR_NONE == 0 && NB_MONITOR_VAL_LOSS == 1 && NB_MONITOR_ACCURACY == 4 &&
               sizeof(nb_monitor) == sizeof(int), "the words are in nb_monitor's order");
static const char *const monitor_names[] = {"none", "val_loss", "val_accuracy", "loss",
                                            "accuracy", NULL};
static const nbi_ftype monitor = {.kind = NBI_FK_CHOICE, .choices = monitor_names};

/* Their monitor is val_loss when the object is given without one
 * (nbi_settings_read). */
static const nbi_field early_fields[] = {
    {"monitor", &monitor, 0, TRAIN(early_stopping.monitor), NB_MONITOR_NONE, 0, 0},
    {"patience", NBI_F_INT, 0, TRAIN(early_stopping.patience), 0, 0, 1e6},
    {"min_delta", NBI_F_REAL, 0, TRAIN(early_stopping.min_delta), 0, 0, 1e6},
    {"restore_best_weights", NBI_F_BOOL, 0, TRAIN(early_stopping.restore_best), 1, 0, 1},
    {0},
};
static const nbi_field plateau_fields[] = {
    {"monitor", &monitor, 0, TRAIN(plateau.monitor), NB_MONITOR_NONE, 0, 0},
    {"factor", NBI_F_REAL, NBI_OPEN, TRAIN(plateau.factor), 0.1, 1e-12, 1},
    {"patience", NBI_F_INT, 0, TRAIN(plateau.patience), 10, 0, 1e6},
    {"min_delta", NBI_F_REAL, 0, TRAIN(plateau.min_delta), 1e-4, 0, 1e6},
    {"min_lr", NBI_F_REAL, 0, TRAIN(plateau.min_lr), 0, 0, 1e6},
    {0},
};
static const nbi_field warmup_fields[] = {
    {"epochs", NBI_F_INT, 0, TRAIN(warmup_epochs), 0, 0, 1e6},
    {"steps", NBI_F_INT, 0, TRAIN(warmup_steps), 0, 0, 1e9},
    {0},
};
/* By nb_target's values. */
_Static_assert(NB_TARGET_LABEL == 0 && NB_TARGET_INPUT == 1 && sizeof(nb_target) == sizeof(int),
               "the words are in nb_target's order");
static const char *const target_names[] = {"label", "input", NULL};
static const nbi_ftype target = {.kind = NBI_FK_CHOICE, .choices = target_names};

static const nbi_ftype early = {.kind = NBI_FK_OBJECT, .fields = early_fields};
static const nbi_ftype plateau = {.kind = NBI_FK_OBJECT, .fields = plateau_fields};
static const nbi_ftype warmup = {.kind = NBI_FK_OBJECT, .fields = warmup_fields};

static const nbi_field train_fields[] = {
    {"epochs", NBI_F_INT, 0, TRAIN(epochs), 5, 1, 1e6},
    {"batch_size", NBI_F_INT, 0, TRAIN(batch_size), 64, 1, 1 << 20},
    {"validation_split", NBI_F_REAL, 0, TRAIN(validation_split), 0, 0, 0.99},
    {"seed", NBI_F_U64, 0, TRAIN(seed), 0, 0, 9007199254740992.0}, /* 2^53 */
    {"classes", &classes, NBI_DISTINCT, TRAIN(classes), 0, 0, 255},
    {"normalize", &normalize, 0, 0, 0, 0, 0},
    {"random_crop", &crop, 0, 0, 0, 0, 0},
    {"translate", NBI_F_INT, 0, TRAIN(augment.translate), 0, 0, 1024},
    {"hflip", NBI_F_REAL, 0, TRAIN(augment.hflip), 0, 0, 1},
    {"clip_grad_norm", NBI_F_REAL, 0, TRAIN(clip_grad_norm), 0, 0, 1e12},
    {"lr_schedule", &schedule, 0, 0, 0, 0, 0},
    {"warmup", &warmup, 0, 0, 0, 0, 0},
    {"early_stopping", &early, 0, 0, 0, 0, 0},
    {"reduce_lr_on_plateau", &plateau, 0, 0, 0, 0, 0},
    {"keep_best", &monitor, 0, TRAIN(keep_best), NB_MONITOR_NONE, 0, 0},
    {"target", &target, 0, TRAIN(target), NB_TARGET_LABEL, 0, 0},
    {0},
};

/* ---- reading --------------------------------------------------------------- */

int nbi_settings_read(const nbi_json *js, const cJSON *optimizer, const cJSON *training,
                      nb_optim_opts *optim, nb_train_opts *train)
{
    int rc;
    memset(train, 0, sizeof *train);
    nbi_json_defaults(train_fields, train);
    *optim = nb_optim_defaults(NB_SGD);
    if (optimizer) {
        const cJSON *type = cJSON_IsObject(optimizer)
                                ? cJSON_GetObjectItemCaseSensitive(optimizer, "type") : NULL;
        if (type && (rc = nbi_json_field(js, "optimizer.type", &optim_fields[0], type, optim)))
            return rc;
        *optim = nb_optim_defaults(optim->kind);
        if ((rc = nbi_json_object(js, "optimizer", optimizer, optim_fields, optim)))
            return rc;
    }
    if (training && (rc = nbi_json_object(js, "training", training, train_fields, train)))
        return rc;
    /* One value means every channel's. */
    for (int c = 1; c < NB_MAX_CHANNELS; c++) {
        if (train->nmean <= 1)
            train->mean[c] = train->mean[0];
        if (train->nstd <= 1)
            train->std[c] = train->std[0];
    }
    /* A callback's object turns it on, watching val_loss unless it names
     * its monitor. */
    static const char *const watchers[] = {"early_stopping", "reduce_lr_on_plateau"};
    nb_monitor *watched[] = {&train->early_stopping.monitor, &train->plateau.monitor};
    for (int i = 0; i < 2 && training; i++) {
        const cJSON *o = cJSON_GetObjectItemCaseSensitive(training, watchers[i]);
        if (o && !cJSON_GetObjectItemCaseSensitive(o, "monitor"))
            *watched[i] = NB_MONITOR_VAL_LOSS;
    }
    if (train->warmup_epochs && train->warmup_steps)
        return nbi_json_fail(js, "training.warmup", "give epochs or steps, not both");
    if (train->nmean && !train->nstd)
        return nbi_json_fail(js, "training.normalize", "a mean needs its std");
    if (train->target == NB_TARGET_INPUT && train->nclasses)
        return nbi_json_fail(js, "training.classes", "with \"target\": \"input\" every "
                             "example is used, whatever its label: remove classes");
    if (train->augment.crop_padding && train->augment.translate)
        return nbi_json_fail(js, "training.translate", "random_crop and translate both shift the "
                             "image: give one of them");
    return NB_OK;
}

const char *nb_monitor_name(nb_monitor m)
{
    return m >= NB_MONITOR_NONE && m <= NB_MONITOR_ACCURACY ? monitor_names[m] : "none";
}

int nb_monitor_from_name(const char *name)
{
    for (int i = 0; name && monitor_names[i]; i++)
        if (strcmp(name, monitor_names[i]) == 0)
            return i;
    return -1;
}

const char *nb_target_name(nb_target t)
{
    return t == NB_TARGET_INPUT ? "input" : "label";
}

int nb_target_from_name(const char *name)
{
    for (int i = 0; name && target_names[i]; i++)
        if (strcmp(name, target_names[i]) == 0)
            return i;
    return -1;
}

int nbi_settings_check_channels(const nbi_json *js, const nb_train_opts *train, int64_t channels)
{
    if (train->nmean > 1 && train->nmean != channels)
        return nbi_json_fail(js, "training.normalize.mean", "%d values for an input of %" PRId64
                             " channel%s", train->nmean, channels, channels == 1 ? "" : "s");
    if (train->nstd > 1 && train->nstd != channels)
        return nbi_json_fail(js, "training.normalize.std", "%d values for an input of %" PRId64
                             " channel%s", train->nstd, channels, channels == 1 ? "" : "s");
    return NB_OK;
}

double nb_schedule_lr(const nb_train_opts *t, double lr, int epoch)
{
    switch (t->schedule) {
    case NB_SCHEDULE_STEP: return nb_lr_step(lr, epoch, t->step_size, t->gamma);
    case NB_SCHEDULE_COSINE: return nb_lr_cosine(lr, epoch, t->epochs, t->min_lr);
    default: return lr;
    }
}
