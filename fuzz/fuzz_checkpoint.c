/*
 * fuzz_checkpoint.c - libFuzzer harness for resuming from a checkpoint's
 * metadata.  Build and run it with scripts/fuzz.sh checkpoint [seconds].
 *
 * A real checkpoint of a small trainer (conv, batch norm, dropout, Adam;
 * stopped inside its second epoch) is made once, in memory.  Each input is
 * a list of lines "key=value" (set that key) or "key" (leave it out) that
 * edit its metadata; the edited file goes through the safetensors reader
 * and the whole resume path into a fresh trainer.  A refusal must leave
 * the trainer as it was, with a one-line message; an accepted checkpoint
 * must stand where its metadata can stand, and the fit must go on from it
 * for a few steps and write its metadata back.  Memory errors are the
 * sanitizers' to find.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cJSON.h>

#include "io/safetensors.h"
#include "train/trainer.h"

/* A broken promise of the API: stop here, where the fuzzer sees it. */
#define REQUIRE(cond)                                                         \
    do {                                                                      \
        if (!(cond))                                                          \
            __builtin_trap();                                                 \
    } while (0)

static const char model_json[] =
    "{\"name\": \"tiny\", \"input\": [1, 4, 4], \"layers\": ["
    "{\"name\": \"c\", \"type\": \"conv2d\", \"out_channels\": 2, \"kernel_size\": 3,"
    " \"padding\": \"same\", \"activation\": \"relu\"},"
    "{\"name\": \"bn\", \"type\": \"batch_norm\"},"
    "{\"type\": \"max_pool2d\", \"kernel_size\": 2},"
    "{\"type\": \"flatten\"},"
    "{\"name\": \"d\", \"type\": \"dropout\", \"p\": 0.25},"
    "{\"name\": \"o\", \"type\": \"linear\", \"out_features\": 3}],"
    " \"loss\": {\"type\": \"cross_entropy\"},"
    " \"optimizer\": {\"type\": \"adam\", \"lr\": 0.01},"
    " \"training\": {\"batch_size\": 4, \"epochs\": 3, \"validation_split\": 0.25, \"seed\": 7}}";

#define NDATA 22 /* 5 validate, 17 train in 5 batches */

/* A model, its data and a trainer in a context of their own. */
typedef struct rig {
    nb_ctx *ctx;
    nb_model *m;
    nb_dataset *ds;
    nb_trainer *tr;
} rig;

static rig rig_new(void)
{
    rig r = {nb_ctx_new(), NULL, NULL, NULL};
    REQUIRE(r.ctx);
    r.m = nb_model_parse(r.ctx, model_json, sizeof model_json - 1, "tiny.json", NB_F32);
    REQUIRE(r.m);
    nb_rng rng;
    nb_rng_seed(&rng, 1);
    nb_model_init(r.m, &rng);
    uint8_t px[NDATA * 16];
    int32_t labels[NDATA];
    for (int i = 0; i < NDATA; i++) {
        labels[i] = i % 3;
        for (int k = 0; k < 16; k++)
            px[16 * i + k] = (uint8_t)((i * 37 + k * 11) % 64 + (k % 3 == labels[i] ? 150 : 0));
    }
    r.ds = nb_dataset_from(r.ctx, NDATA, 1, 4, 4, px, labels);
    REQUIRE(r.ds);
    nb_train_opts t;
    nb_optim_opts o;
    REQUIRE(nb_model_train_opts(r.ctx, r.m, &t, &o) == NB_OK);
    r.tr = nb_trainer_new(r.ctx, r.m, r.ds, 0, &t, &o);
    REQUIRE(r.tr);
    return r;
}

static void rig_free(rig *r)
{
    nb_trainer_free(r->tr);
    nb_dataset_free(r->ds);
    nb_model_free(r->m);
    nb_ctx_free(r->ctx);
}

static int stop_at_7(nb_trainer *tr, const nb_train_progress *p, void *ud)
{
    (void)tr;
    (void)ud;
    return p->steps == 7;
}

/* The checkpoint to edit: its metadata, its tensors' header entries and
 * their data, made once. */
static cJSON *base_meta, *base_entries;
static unsigned char *base_data;
static size_t base_len;

static void make_base(void)
{
    rig r = rig_new();
    nb_trainer_callbacks cb = {stop_at_7, NULL, NULL};
    REQUIRE(nb_trainer_fit(r.tr, &cb) == NB_TRAIN_STOPPED);
    nbi_ckpt_meta m;
    REQUIRE(nbi_ckpt_meta_make(r.tr, &m) == NB_OK);
    base_meta = cJSON_CreateObject();
    for (int i = 0; i < m.n; i++)
        cJSON_AddStringToObject(base_meta, m.keys[i], m.vals[i]);
    nbi_ckpt_meta_free(r.tr, &m);
    base_entries = cJSON_CreateObject();
    for (int i = 0; i < r.tr->nckpt; i++) {
        const nb_tensor *t = r.tr->ckpt[i];
        base_len += (size_t)t->numel * sizeof(float);
    }
    base_data = malloc(base_len);
    size_t at = 0;
    for (int i = 0; i < r.tr->nckpt; i++) {
        const nb_tensor *t = r.tr->ckpt[i];
        size_t bytes = (size_t)t->numel * sizeof(float);
        cJSON *e = cJSON_AddObjectToObject(base_entries, t->name);
        cJSON_AddStringToObject(e, "dtype", "F32");
        cJSON *shape = cJSON_AddArrayToObject(e, "shape");
        for (int d = 0; d < t->ndim; d++)
            cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[d]));
        cJSON *off = cJSON_AddArrayToObject(e, "data_offsets");
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)at));
        cJSON_AddItemToArray(off, cJSON_CreateNumber((double)(at + bytes)));
        memcpy(base_data + at, t->data, bytes); /* x86-64: little-endian already */
        at += bytes;
    }
    rig_free(&r);
}

/* The input's edits applied to a copy of the metadata. */
static cJSON *edited_meta(const uint8_t *data, size_t size)
{
    cJSON *meta = cJSON_Duplicate(base_meta, 1);
    size_t at = 0;
    while (at < size) {
        size_t end = at;
        while (end < size && data[end] != '\n')
            end++;
        char *line = malloc(end - at + 1);
        memcpy(line, data + at, end - at);
        line[end - at] = '\0';
        char *eq = strchr(line, '=');
        if (eq)
            *eq = '\0';
        cJSON_DeleteItemFromObjectCaseSensitive(meta, line);
        if (eq)
            cJSON_AddStringToObject(meta, line, eq + 1);
        free(line);
        at = end + 1;
    }
    return meta;
}

/* The whole file: its header's length, the header, the data. */
static unsigned char *file_of(cJSON *meta, size_t *len)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddItemToObject(root, "__metadata__", meta);
    for (cJSON *e = base_entries->child; e; e = e->next)
        cJSON_AddItemToObject(root, e->string, cJSON_Duplicate(e, 1));
    char *header = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    size_t hlen = strlen(header);
    *len = 8 + hlen + base_len;
    unsigned char *buf = malloc(*len);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)hlen >> (8 * i));
    memcpy(buf + 8, header, hlen);
    memcpy(buf + 8 + hlen, base_data, base_len);
    free(header);
    return buf;
}

static int stop_after_3(nb_trainer *tr, const nb_train_progress *p, void *ud)
{
    (void)tr;
    (void)p;
    return ++*(int *)ud >= 3;
}

/* Where an accepted checkpoint may stand; then the fit goes on from it
 * and its metadata is made again. */
static void check_accepted(rig *r)
{
    const nb_trainer *tr = r->tr;
    const nb_train_progress *p = nb_trainer_progress(tr);
    int n;
    const nb_epoch_metrics *h = nb_trainer_history(tr, &n);
    REQUIRE(p->epoch >= 0 && p->epoch <= 3 && p->epoch + (p->batch > 0) <= 3);
    REQUIRE(p->batch >= 0 && p->batch <= p->batches && p->batches == 5);
    REQUIRE(p->steps == p->epoch * p->batches + p->batch);
    REQUIRE(p->seen == (p->batch == p->batches ? 17 : 4 * p->batch));
    REQUIRE(p->correct >= 0 && p->correct <= p->seen && p->loss_sum >= 0);
    REQUIRE(n == p->epoch);
    for (int i = 0; i < n; i++)
        REQUIRE(h[i].epoch == i + 1 && h[i].accuracy >= 0 && h[i].accuracy <= 1);
    int batches = 0;
    nb_trainer_callbacks cb = {stop_after_3, NULL, &batches};
    int rc = nb_trainer_fit(r->tr, &cb);
    REQUIRE(rc == NB_OK || rc == NB_TRAIN_STOPPED);
    nbi_ckpt_meta m;
    REQUIRE(nbi_ckpt_meta_make(r->tr, &m) == NB_OK);
    nbi_ckpt_meta_free(r->tr, &m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!base_meta)
        make_base();
    size_t len;
    unsigned char *file = file_of(edited_meta(data, size), &len);
    rig r = rig_new();
    nb_safetensors *f = nbi_safetensors_parse(r.ctx, file, len, "fuzz.safetensors");
    free(file);
    if (f) {
        int rc = nbi_trainer_resume_file(r.tr, f, "fuzz.safetensors");
        nb_safetensors_close(f);
        if (rc == NB_OK) {
            check_accepted(&r);
        } else {
            int n;
            nb_trainer_history(r.tr, &n);
            REQUIRE(rc < 0 && nb_error(r.ctx) == rc && nb_errmsg(r.ctx)[0]);
            REQUIRE(strchr(nb_errmsg(r.ctx), '\n') == NULL);
            REQUIRE(nb_trainer_progress(r.tr)->steps == 0 && n == 0);
            REQUIRE(nb_optim_steps(nb_trainer_optim(r.tr)) == 0);
        }
    } else {
        REQUIRE(nb_error(r.ctx) != NB_OK && nb_errmsg(r.ctx)[0]);
    }
    rig_free(&r);
    return 0;
}
