/*
 * checkpoint.c - a trainer's checkpoints: a safetensors file of the
 * model's tensors and the optimizer's state, whose metadata says where
 * training stands, what it has done and every setting that shapes its
 * result.  The format, "nabla-checkpoint-1", keeps its keys: they may be
 * added, never renamed.
 *
 * Where training stands:
 *   epoch, batch   epochs finished, batches of the next one finished
 *   steps          optimizer steps taken (Adam's t): epoch * batches + batch
 *   shuffle_rng    the shuffle generator at the start of the epoch, so a
 *                  resumed epoch draws the same order
 *   dropout_rng    the model's dropout generator now
 *   loss_sum, correct, seen, seconds   the epoch's sums so far
 *   history        the metrics of each epoch finished: "loss,accuracy,
 *                  val_loss,val_accuracy,lr,seconds" joined by ";" (the
 *                  accuracies nan with the input as target)
 * What made it (see SETTINGS below): the training and optimizer settings,
 * the kernels (fused multiply-adds or not: they change the last bits of the
 * sums; AVX-512's give AVX2's bits and record "avx2" too), the
 * thread count (for information only: it changes no bit), the data (classes, the examples used and a digest of them, where they
 * came from) and the model's digest (nb_model_digest).
 *
 * Resuming reads every value strictly (the whole string, its type and its
 * range against this trainer) before any of it is used, and refuses a
 * checkpoint made with other settings, data or model, naming the setting
 * and both values: only epochs may differ (not under a cosine schedule,
 * whose rates depend on it), as long as they cover what is done.  Files
 * written before the settings were recorded are refused: their resume
 * could not be checked.  Generators are 64 hex digits (four 64-bit words),
 * digests 16, reals the fewest digits "%.17g" would write that read back
 * the same.
 */
#include "train/trainer.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#define FORMAT "nabla-checkpoint-1"

/* ---- the settings ---------------------------------------------------------
 * X(id, key, kind, format, value) for each, in the order resume compares
 * them: the training settings first (a changed limit is named before the
 * data it changes), the model last.  Values read tr, t (its settings) and
 * o (its optimizer's). */

/* K_REALS: one real per channel, with commas (a checkpoint of one value
 * means it for every channel). */
enum { K_INT, K_U64, K_REAL, K_BOOL, K_WORD, K_HEX, K_REALS };

#define SETTINGS(X)                                                                        \
    X(S_LIMIT, "limit", K_INT, "%" PRId64, tr->limit)                                      \
    X(S_BATCH, "batch_size", K_INT, "%d", t->batch_size)                                   \
    X(S_EPOCHS, "epochs", K_INT, "%d", t->epochs)                                          \
    X(S_SPLIT, "validation_split", K_REAL, "%g", t->validation_split)                   \
    X(S_SEED, "seed", K_U64, "%" PRIu64, t->seed)                                          \
    X(S_MEAN, "normalize_mean", K_REALS, "%s", t->mean)                                   \
    X(S_STD, "normalize_std", K_REALS, "%s", t->std)                                      \
    X(S_CROP, "random_crop", K_INT, "%d", t->augment.crop_padding)                         \
    X(S_TRANSLATE, "translate", K_INT, "%d", t->augment.translate)                         \
    X(S_HFLIP, "hflip", K_REAL, "%g", t->augment.hflip)                                 \
    X(S_CLIP, "clip_grad_norm", K_REAL, "%g", t->clip_grad_norm)                        \
    X(S_TARGET, "target", K_WORD, "%s", nb_target_name(t->target))                        \
    X(S_EARLY, "early_stopping", K_WORD, "%s", callback_str(t, 0, (char[VAL]){0}))         \
    X(S_PLATEAU, "reduce_lr_on_plateau", K_WORD, "%s", callback_str(t, 1, (char[VAL]){0})) \
    X(S_KEEP, "keep_best", K_WORD, "%s", callback_str(t, 2, (char[VAL]){0}))               \
    X(S_WARMUP, "warmup", K_WORD, "%s", callback_str(t, 3, (char[VAL]){0}))                \
    X(S_SCHEDULE, "lr_schedule", K_WORD, "%s", schedule_name(t->schedule))                 \
    X(S_STEP_SIZE, "step_size", K_INT, "%d", t->step_size)                                 \
    X(S_GAMMA, "gamma", K_REAL, "%g", t->gamma)                                         \
    X(S_MIN_LR, "min_lr", K_REAL, "%g", t->min_lr)                                      \
    X(S_OPTIM, "optimizer", K_WORD, "%s", nb_optim_kind_name(o->kind))                     \
    X(S_LR, "lr", K_REAL, "%g", o->lr)                                                  \
    X(S_MOMENTUM, "momentum", K_REAL, "%g", o->momentum)                                \
    X(S_DAMPENING, "dampening", K_REAL, "%g", o->dampening)                             \
    X(S_NESTEROV, "nesterov", K_BOOL, "%s", o->nesterov ? "true" : "false")                \
    X(S_DECAY, "weight_decay", K_REAL, "%g", o->weight_decay)                           \
    X(S_BETA1, "beta1", K_REAL, "%g", o->beta1)                                         \
    X(S_BETA2, "beta2", K_REAL, "%g", o->beta2)                                         \
    X(S_ALPHA, "alpha", K_REAL, "%g", o->alpha)                                         \
    X(S_EPS, "eps", K_REAL, "%g", o->eps)                                               \
    X(S_CENTERED, "centered", K_BOOL, "%s", o->centered ? "true" : "false")                \
    X(S_THREADS, "threads", K_INT, "%d", nbi_threads())                                    \
    X(S_KERNELS, "kernels", K_WORD, "%s", nbi_avx2() ? "avx2" : "baseline")                \
    X(S_EXAMPLES, "data_examples", K_INT, "%" PRId64, tr->ntrain + tr->nval)               \
    X(S_DATA, "data_digest", K_HEX, "%016" PRIx64, tr->data_digest)                        \
    X(S_DATA_SIZE, "data_size", K_INT, "%" PRId64, tr->data_size)                          \
    X(S_MODEL, "model_digest", K_HEX, "%016" PRIx64, tr->model_digest)

enum {
#define X(id, key, kind, fmt, val) id,
    SETTINGS(X)
#undef X
    NSETTINGS
};

static const struct {
    const char *key;
    int kind;
} settings[NSETTINGS] = {
#define X(id, key, kind, fmt, val) {key, kind},
    SETTINGS(X)
#undef X
};

#define VAL NBI_CKPT_VAL /* room for any value but the classes, the origin and history */
_Static_assert(sizeof(((nbi_ckpt_meta *)0)->buf[0]) == VAL, "a value's room");
_Static_assert(NSETTINGS + 13 <= NBI_CKPT_MAX_META, "room for every key");

static const char *callback_str(const nb_train_opts *t, int which, char *buf)
{
    nbi_callbacks_str(t, which, buf, VAL);
    return buf;
}

static const char *schedule_name(nb_schedule s)
{
    return s == NB_SCHEDULE_STEP ? "step" : s == NB_SCHEDULE_COSINE ? "cosine" : "none";
}

/* A real in the fewest digits that read back as the same double ("0.1",
 * not "0.10000000000000001"); at most 24 characters. */
static void real_str(double v, char *buf, size_t size)
{
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, size, "%.*g", digits, v);
        if (!isfinite(v) || strtod(buf, NULL) == v)
            return;
    }
}

/* One value: reals by real_str, the rest by fmt. */
static void value_str(char *buf, int kind, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (kind == K_REAL) {
        real_str(va_arg(ap, double), buf, VAL);
    } else if (kind == K_REALS) {
        const double *v = va_arg(ap, const double *);
        size_t at = 0;
        int n = 1; /* one value when it is every channel's */
        for (int c = 1; c < NB_MAX_CHANNELS; c++)
            if (v[c] != v[0])
                n = NB_MAX_CHANNELS;
        for (int c = 0; c < n; c++) {
            if (c)
                buf[at++] = ',';
            real_str(v[c], buf + at, VAL - at);
            at += strlen(buf + at);
        }
    }
    else {
        vsnprintf(buf, VAL, fmt, ap);
    }
    va_end(ap);
}

/* This trainer's settings, as a checkpoint writes them. */
static void settings_now(const nb_trainer *tr, char (*v)[VAL])
{
    const nb_train_opts *t = &tr->t;
    const nb_optim_opts *o = &tr->o;
#define X(id, key, kind, fmt, val) value_str(v[id], kind, fmt, val);
    SETTINGS(X)
#undef X
}

int nbi_ckpt_settings(const nb_trainer *tr, const char **keys, char (*vals)[VAL])
{
    settings_now(tr, vals);
    for (int i = 0; i < NSETTINGS; i++)
        keys[i] = settings[i].key;
    return NSETTINGS;
}

/* "2,0": the classes kept, in order; "" for every label. */
static void classes_str(const nb_train_opts *t, char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int i = 0; i < t->nclasses && at < size; i++)
        at += (size_t)snprintf(buf + at, size - at, "%s%" PRId32, i ? "," : "", t->classes[i]);
}

/* ---- writing ---------------------------------------------------------------- */

static void rng_str(const nb_rng *r, char *buf, size_t size)
{
    snprintf(buf, size, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, r->s[0], r->s[1],
             r->s[2], r->s[3]);
}

static void add(nbi_ckpt_meta *m, const char *key, const char *val)
{
    m->keys[m->n] = key;
    m->vals[m->n++] = val;
}

static void addf(nbi_ckpt_meta *m, const char *key, const char *fmt, ...) NBI_PRINTF(3, 4);

static void addf(nbi_ckpt_meta *m, const char *key, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m->buf[m->n], VAL, fmt, ap);
    va_end(ap);
    add(m, key, m->buf[m->n]);
}

/* The epochs' metrics, six reals an epoch (at most 25 characters each,
 * with its separator). */
static char *history_str(const nb_trainer *tr)
{
    int n = tr->p.epoch;
    size_t size = (size_t)n * 6 * 25 + 1, at = 0;
    char *s = nbi_alloc(tr->ctx, size);
    if (!s)
        return NULL;
    s[0] = '\0';
    for (int i = 0; i < n; i++) {
        const nb_epoch_metrics *e = &tr->hist[i];
        double v[6] = {e->loss, e->accuracy, e->val_loss, e->val_accuracy, e->lr, e->seconds};
        for (int k = 0; k < 6; k++) {
            if (i || k)
                s[at++] = k ? ',' : ';';
            real_str(v[k], s + at, size - at);
            at += strlen(s + at);
        }
    }
    return s;
}

int nbi_ckpt_meta_make(nb_trainer *tr, nbi_ckpt_meta *m)
{
    const nb_train_progress *p = &tr->p;
    char now[NSETTINGS][VAL];
    m->n = 0;
    m->history = NULL;
    add(m, "format", FORMAT);
    settings_now(tr, now);
    for (int i = 0; i < NSETTINGS; i++)
        addf(m, settings[i].key, "%s", now[i]);
    classes_str(&tr->t, m->classes, sizeof m->classes);
    add(m, "classes", m->classes);
    add(m, "data_origin", tr->origin);
    addf(m, "epoch", "%d", p->epoch);
    addf(m, "batch", "%" PRId64, p->batch);
    addf(m, "steps", "%" PRId64, nb_optim_steps(tr->opt));
    rng_str(&tr->shuffle, m->buf[m->n], VAL);
    add(m, "shuffle_rng", m->buf[m->n]);
    rng_str(nb_model_rng(tr->m), m->buf[m->n], VAL);
    add(m, "dropout_rng", m->buf[m->n]);
    real_str(p->loss_sum, m->buf[m->n], VAL);
    add(m, "loss_sum", m->buf[m->n]);
    addf(m, "correct", "%" PRId64, p->correct);
    addf(m, "seen", "%" PRId64, p->seen);
    real_str(p->seconds, m->buf[m->n], VAL);
    add(m, "seconds", m->buf[m->n]);
    if (!(m->history = history_str(tr)))
        return NB_ERR_NOMEM;
    add(m, "history", m->history);
    return NB_OK;
}

void nbi_ckpt_meta_free(nb_trainer *tr, nbi_ckpt_meta *m)
{
    nbi_free(tr->ctx, m->history);
    m->history = NULL;
}

int nb_trainer_save(nb_trainer *tr, const char *path)
{
    if (!tr->opt)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "trainer: made without an optimizer, it has no "
                        "training to checkpoint");
    if (!path)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "trainer_save: path is NULL");
    nbi_ckpt_meta m;
    int rc = nbi_ckpt_meta_make(tr, &m);
    if (rc == NB_OK)
        rc = nb_safetensors_save_meta(tr->ctx, path, tr->nckpt, tr->ckpt, m.n, m.keys, m.vals);
    nbi_ckpt_meta_free(tr, &m);
    return rc;
}

/* ---- reading values strictly ----------------------------------------------------
 * Each takes the whole string as nabla writes it, or says false. */

static bool digits(const char **p)
{
    const char *s = *p;
    while (**p >= '0' && **p <= '9')
        (*p)++;
    return *p > s;
}

/* [-]digits, in [lo, hi]. */
static bool read_int(const char *s, int64_t lo, int64_t hi, int64_t *v)
{
    if (!s)
        return false;
    const char *p = s + (*s == '-');
    if (!digits(&p) || *p)
        return false;
    errno = 0;
    long long x = strtoll(s, NULL, 10);
    if (errno == ERANGE || x < lo || x > hi)
        return false;
    *v = x;
    return true;
}

static bool read_u64(const char *s, uint64_t *v)
{
    const char *p = s;
    if (!s || !digits(&p) || *p)
        return false;
    errno = 0;
    unsigned long long x = strtoull(s, NULL, 10);
    if (errno == ERANGE)
        return false;
    *v = x;
    return true;
}

/* What "%.17g" writes: [-]d[.d][e[+-]d], inf or nan (either with a minus). */
static bool read_real(const char *s, double *v)
{
    if (!s)
        return false;
    const char *p = s + (*s == '-');
    if (strcmp(p, "inf") == 0 || strcmp(p, "nan") == 0) {
        double x = p[0] == 'i' ? INFINITY : NAN;
        *v = p > s ? -x : x;
        return true;
    }
    if (!digits(&p))
        return false;
    if (*p == '.') {
        p++;
        if (!digits(&p))
            return false;
    }
    if (*p == 'e') {
        p++;
        p += *p == '+' || *p == '-';
        if (!digits(&p))
            return false;
    }
    if (*p)
        return false;
    errno = 0;
    double x = strtod(s, NULL);
    if (!isfinite(x)) /* overflow: nabla writes inf as "inf" */
        return false;
    *v = x;
    return true;
}

/* n lowercase hex digits (n <= 16). */
static bool read_hex(const char *s, size_t n, uint64_t *v)
{
    if (!s || strlen(s) != n)
        return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return false;
        x = x << 4 | (uint64_t)d;
    }
    *v = x;
    return true;
}

/* ---- messages ----------------------------------------------------------------- */

static int lacks(const nb_trainer *tr, const char *path, const char *key)
{
    return nbi_fail(tr->ctx, NB_ERR_FORMAT, "%s: the checkpoint's metadata lacks \"%s\"", path,
                    key);
}

/* A value that is missing or not what `what` says. */
static int bad_value(const nb_trainer *tr, const nb_safetensors *f, const char *path,
                     const char *key, const char *what)
{
    char q[80];
    const char *s = nb_safetensors_meta(f, key);
    if (!s)
        return lacks(tr, path, key);
    return nbi_fail(tr->ctx, NB_ERR_FORMAT, "%s: the checkpoint's %s is %s, not %s", path, key,
                    nbi_quote(s, q, sizeof q), what);
}

/* Numbers as they are, words (quote true) quoted. */
static int mismatch(const nb_trainer *tr, const char *path, const char *key, const char *theirs,
                    const char *ours, bool quote, const char *why)
{
    char q1[80], q2[80];
    if (quote) {
        theirs = nbi_quote(theirs, q1, sizeof q1);
        ours = nbi_quote(ours, q2, sizeof q2);
    }
    return nbi_fail(tr->ctx, NB_ERR_ARG, "%s: %s is %s in the checkpoint but %s here%s", path, key,
                    theirs, ours, why);
}

/* ---- the settings against this trainer's -------------------------------------- */

/* "0.49,0.48,0.45,0": 1 to NB_MAX_CHANNELS finite reals; one means it for
 * every channel.  The count read, or 0 when s is not such a list. */
static int read_reals(const char *s, double *v)
{
    char part[VAL];
    int n = 0;
    if (!s || strlen(s) >= VAL)
        return 0;
    for (const char *at = s;; n++) {
        const char *end = strchr(at, ',');
        size_t len = end ? (size_t)(end - at) : strlen(at);
        memcpy(part, at, len);
        part[len] = '\0';
        if (n == NB_MAX_CHANNELS || !read_real(part, &v[n]) || !isfinite(v[n]))
            return 0;
        if (!end)
            break;
        at = end + 1;
    }
    for (int c = ++n; c < NB_MAX_CHANNELS; c++)
        v[c] = n == 1 ? v[0] : 0;
    return n;
}

/* 1 when the checkpoint's value s means the same as ours, 0 when it means
 * another, -1 when it is not a value of its kind. */
static int same_value(int kind, const char *s, const char *ours)
{
    double xs[NB_MAX_CHANNELS], ys[NB_MAX_CHANNELS];
    int64_t a, b;
    uint64_t u, w;
    double x, y;
    switch (kind) {
    case K_INT:
        return !read_int(s, INT64_MIN, INT64_MAX, &a) ? -1
               : read_int(ours, INT64_MIN, INT64_MAX, &b) && a == b;
    case K_U64: return !read_u64(s, &u) ? -1 : read_u64(ours, &w) && u == w;
    case K_REAL:
        return !read_real(s, &x) || !isfinite(x) ? -1 : read_real(ours, &y) && x == y;
    case K_BOOL:
        return strcmp(s, "true") && strcmp(s, "false") ? -1 : strcmp(s, ours) == 0;
    case K_HEX: return !read_hex(s, 16, &u) ? -1 : read_hex(ours, 16, &w) && u == w;
    case K_REALS:
        if (!read_reals(s, xs))
            return -1;
        if (!read_reals(ours, ys))
            return 0;
        for (int c = 0; c < NB_MAX_CHANNELS; c++)
            if (xs[c] != ys[c])
                return 0;
        return 1;
    default: return strcmp(s, ours) == 0;
    }
}

static const char *const kind_what[] = {"an integer", "an integer >= 0", "a finite number",
                                        "true or false", "a word", "16 hex digits",
                                        "numbers separated by commas"};

/* The data or the model are not the checkpoint's. */
static int other_data(const nb_trainer *tr, const nb_safetensors *f, const char *path,
                      const char (*now)[VAL])
{
    char o1[128], o2[128];
    return nbi_fail(tr->ctx, NB_ERR_ARG, "%s: the data is not the checkpoint's: %s examples of %s "
                    "(digest %s) there, %s of %s (digest %s) here", path,
                    nb_safetensors_meta(f, "data_examples"),
                    nbi_quote(nb_safetensors_meta(f, "data_origin"), o1, sizeof o1),
                    nb_safetensors_meta(f, "data_digest"), now[S_EXAMPLES],
                    nbi_quote(tr->origin, o2, sizeof o2), now[S_DATA]);
}

/* The checkpoint's value of setting i; checkpoints from before data
 * augmentation had none, which is none of it. */
static const char *setting_of(const nb_safetensors *f, int i)
{
    const char *s = nb_safetensors_meta(f, settings[i].key);
    if (!s && (i == S_CROP || i == S_TRANSLATE || i == S_HFLIP))
        return "0";
    /* ... from before targets, the labels ... */
    if (!s && i == S_TARGET)
        return "label";
    /* ... and from before the callbacks, none of them. */
    if (!s && (i == S_EARLY || i == S_PLATEAU || i == S_KEEP || i == S_WARMUP))
        return "none";
    return s;
}

static int check_settings(const nb_trainer *tr, const nb_safetensors *f, const char *path)
{
    char now[NSETTINGS][VAL], classes[sizeof ((nbi_ckpt_meta *)0)->classes];
    const char *s;
    if (!nb_safetensors_meta(f, "model_digest"))
        return nbi_fail(tr->ctx, NB_ERR_FORMAT, "%s: the checkpoint predates the record of the "
                        "settings, data and model it was made with, so resuming it could not be "
                        "checked: train again from the start", path);
    if (!nb_safetensors_meta(f, "data_origin"))
        return lacks(tr, path, "data_origin");
    classes_str(&tr->t, classes, sizeof classes);
    if (!(s = nb_safetensors_meta(f, "classes")))
        return lacks(tr, path, "classes");
    if (strcmp(s, classes) != 0)
        return mismatch(tr, path, "classes", s, classes, true, "; resume with the settings it was "
                        "made with");
    settings_now(tr, now);
    /* Every value is read before any is compared: a malformed one is named
     * as such, not as a difference. */
    for (int i = 0; i < NSETTINGS; i++) {
        if (!(s = setting_of(f, i)))
            return lacks(tr, path, settings[i].key);
        if (same_value(settings[i].kind, s, now[i]) < 0)
            return bad_value(tr, f, path, settings[i].key, kind_what[settings[i].kind]);
    }
    for (int i = 0; i < NSETTINGS; i++) {
        s = setting_of(f, i);
        if (same_value(settings[i].kind, s, now[i]) || i == S_DATA_SIZE || i == S_THREADS)
            continue;
        if (i == S_EPOCHS && tr->t.schedule != NB_SCHEDULE_COSINE)
            continue; /* checked against the progress */
        if (i == S_EPOCHS)
            return mismatch(tr, path, "epochs", s, now[i], false, ", and the cosine "
                            "schedule's learning rates depend on it");
        if (i == S_EXAMPLES || i == S_DATA)
            return other_data(tr, f, path, now);
        if (i == S_MODEL)
            return nbi_fail(tr->ctx, NB_ERR_ARG, "%s: the model is not the checkpoint's (digest %s "
                            "there, %s here: other layers or layer settings)", path, s, now[i]);
        return mismatch(tr, path, settings[i].key, s, now[i], settings[i].kind == K_WORD,
                        "; resume with the settings it was made with");
    }
    return NB_OK;
}

/* ---- where training stands ------------------------------------------------------ */

/* What a checkpoint's metadata says, before any of it is applied. */
typedef struct saved {
    nb_train_progress p;
    nb_rng shuffle, dropout;
} saved;

static int meta_int(const nb_trainer *tr, const nb_safetensors *f, const char *path,
                    const char *key, int64_t lo, int64_t hi, int64_t *v)
{
    char what[96];
    if (read_int(nb_safetensors_meta(f, key), lo, hi, v))
        return NB_OK;
    snprintf(what, sizeof what, "an integer from %" PRId64 " to %" PRId64, lo, hi);
    return bad_value(tr, f, path, key, what);
}

/* 64 hex digits, not all zero: xoshiro256** never reaches that state,
 * and never leaves it. */
static int meta_rng(const nb_trainer *tr, const nb_safetensors *f, const char *path,
                    const char *key, nb_rng *r)
{
    const char *s = nb_safetensors_meta(f, key);
    bool ok = s && strlen(s) == 64;
    for (int i = 0; ok && i < 4; i++) {
        char part[17];
        memcpy(part, s + 16 * i, 16);
        part[16] = '\0';
        ok = read_hex(part, 16, &r->s[i]);
    }
    if (!ok)
        return bad_value(tr, f, path, key, "64 hex digits");
    if (!(r->s[0] | r->s[1] | r->s[2] | r->s[3]))
        return nbi_fail(tr->ctx, NB_ERR_FORMAT, "%s: the checkpoint's %s is all zeros, a state "
                        "no xoshiro256** generator can be in", path, key);
    return NB_OK;
}

/* The position and the epoch's sums, each in its range and agreeing with
 * each other: every batch is one step, and a batch is batch_size examples
 * but for an epoch's last. */
static int read_progress(const nb_trainer *tr, const nb_safetensors *f, const char *path,
                         saved *s)
{
    nb_train_progress *p = &s->p;
    int64_t epoch, bs = tr->t.batch_size, need;
    *p = tr->p;
    int rc;
    if ((rc = meta_int(tr, f, path, "epoch", 0, INT32_MAX, &epoch)) ||
        (rc = meta_int(tr, f, path, "batch", 0, p->batches, &p->batch)) ||
        (rc = meta_int(tr, f, path, "steps", 0, INT64_MAX, &p->steps)) ||
        (rc = meta_int(tr, f, path, "seen", 0, tr->ntrain, &p->seen)) ||
        (rc = meta_int(tr, f, path, "correct", 0, tr->t.target == NB_TARGET_INPUT ? 0 : p->seen,
                       &p->correct)))
        return rc;
    p->epoch = (int)epoch;
    if (!read_real(nb_safetensors_meta(f, "loss_sum"), &p->loss_sum) || !(p->loss_sum >= 0))
        return bad_value(tr, f, path, "loss_sum", "a number >= 0");
    if (!read_real(nb_safetensors_meta(f, "seconds"), &p->seconds) || !(p->seconds >= 0) ||
        !isfinite(p->seconds))
        return bad_value(tr, f, path, "seconds", "a finite number >= 0");
    if (epoch + (p->batch > 0) > tr->t.epochs && p->batch)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "%s: epochs is %d here, but the checkpoint has begun "
                        "epoch %d", path, tr->t.epochs, p->epoch + 1);
    if (epoch > tr->t.epochs)
        return nbi_fail(tr->ctx, NB_ERR_ARG, "%s: epochs is %d here, but the checkpoint has "
                        "finished %d epoch%s", path, tr->t.epochs, p->epoch,
                        p->epoch == 1 ? "" : "s");
    char make[32] = "more";
    if (!p->batches || epoch <= (INT64_MAX - p->batch) / p->batches)
        snprintf(make, sizeof make, "%" PRId64, epoch * p->batches + p->batch);
    if (strcmp(make, "more") == 0 || p->steps != epoch * p->batches + p->batch)
        return nbi_fail(tr->ctx, NB_ERR_FORMAT, "%s: the checkpoint's steps is %" PRId64 ", but "
                        "epoch %d and batch %" PRId64 " at %" PRId64 " batches an epoch make %s",
                        path, p->steps, p->epoch, p->batch, p->batches, make);
    need = p->batch == p->batches ? tr->ntrain : p->batch * bs;
    if (p->seen != need)
        return nbi_fail(tr->ctx, NB_ERR_FORMAT, "%s: the checkpoint's seen is %" PRId64 ", but %"
                        PRId64 " batches of %" PRId64 " make %" PRId64, path, p->seen, p->batch,
                        bs, need);
    if (p->seen == 0 && p->loss_sum != 0)
        return nbi_fail(tr->ctx, NB_ERR_FORMAT, "%s: the checkpoint's loss_sum is %g over no "
                        "examples", path, p->loss_sum);
    if ((rc = meta_rng(tr, f, path, "shuffle_rng", &s->shuffle)) ||
        (rc = meta_rng(tr, f, path, "dropout_rng", &s->dropout)))
        return rc;
    return NB_OK;
}

/* One epoch's metrics in its ranges: accuracies in [0, 1], losses >= 0
 * (validation's NaN without validation examples, and any when it went
 * bad), the schedule's learning rate, finite seconds. */
static bool good_epoch(const nb_trainer *tr, int i, const double *v)
{
    bool val = tr->nval > 0;
    /* Warmup and plateaus lower the schedule's rate, by what the run did. */
    double lr = nb_schedule_lr(&tr->t, tr->lr, i);
    bool lowered = tr->t.warmup_epochs || tr->t.warmup_steps || tr->t.plateau.monitor;
    /* With the input as target there is no accuracy: NaN. */
    bool acc = tr->t.target != NB_TARGET_INPUT;
    bool train_acc = acc ? v[1] >= 0 && v[1] <= 1 : isnan(v[1]);
    bool val_acc = acc && val ? v[3] >= 0 && v[3] <= 1 : isnan(v[3]);
    return v[0] >= 0 && train_acc && (val ? !(v[2] < 0) : isnan(v[2])) && val_acc &&
           (lowered ? v[4] > 0 && v[4] <= lr : v[4] == lr) && isfinite(v[5]) && v[5] >= 0;
}

/* The history of n epochs: checked, and with out written there. */
static int read_history(const nb_trainer *tr, const nb_safetensors *f, const char *path, int n,
                        nb_epoch_metrics *out)
{
    const char *s = nb_safetensors_meta(f, "history"), *p = s;
    if (!s)
        return lacks(tr, path, "history");
    for (int i = 0; i < n; i++) {
        double v[6];
        for (int k = 0; k < 6; k++) {
            char tok[32];
            size_t len = strcspn(p, ",;");
            char end = k < 5 ? ',' : i + 1 < n ? ';' : '\0';
            if (len >= sizeof tok || p[len] != end)
                return bad_value(tr, f, path, "history", "six numbers an epoch done");
            memcpy(tok, p, len);
            tok[len] = '\0';
            if (!read_real(tok, &v[k]))
                return bad_value(tr, f, path, "history", "six numbers an epoch done");
            p += len + (end != '\0');
        }
        if (!good_epoch(tr, i, v))
            return nbi_fail(tr->ctx, NB_ERR_FORMAT, "%s: the checkpoint's history of epoch %d is "
                            "out of its ranges", path, i + 1);
        if (out)
            out[i] = (nb_epoch_metrics){.epoch = i + 1, .loss = v[0], .accuracy = v[1], .val_loss = v[2],
                                        .val_accuracy = v[3], .lr = v[4], .seconds = v[5]};
    }
    if (*p)
        return bad_value(tr, f, path, "history", "six numbers an epoch done");
    return NB_OK;
}

/* ---- resuming --------------------------------------------------------------------- */

int nbi_trainer_resume_file(nb_trainer *tr, nb_safetensors *f, const char *path)
{
    const char *fmt = nb_safetensors_meta(f, "format");
    if (!fmt || strcmp(fmt, FORMAT) != 0)
        return nbi_fail(tr->ctx, NB_ERR_FORMAT, "%s: not a nabla checkpoint", path);
    saved s;
    int rc;
    if ((rc = check_settings(tr, f, path)) || (rc = read_progress(tr, f, path, &s)) ||
        (rc = read_history(tr, f, path, s.p.epoch, NULL)) ||
        (rc = nbi_trainer_reserve(tr, s.p.epoch)))
        return rc;
    /* The tensors last: reading them changes nothing unless all match. */
    if ((rc = nb_safetensors_read(tr->ctx, f, tr->nckpt, tr->ckpt, true)) != NB_OK)
        return rc;
    read_history(tr, f, path, s.p.epoch, tr->hist);
    tr->p = s.p;
    nbi_callbacks_replay(tr);
    tr->shuffle = s.shuffle;
    *nb_model_rng(tr->m) = s.dropout;
    nb_optim_set_steps(tr->opt, s.p.steps);
    return NB_OK;
}
