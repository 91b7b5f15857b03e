/*
 * json.h - JSON in lib/nn: the one way a mistake in a model file is told,
 *   <origin>: <place>: <reason>
 * with the place a key ("loss"), a layer (`layers[3] (conv2d "conv2")`) or a
 * field (`layers[3].kernel_size`, `training.lr_schedule.gamma`), and the
 * field reader, which reads a value or a whole object by its rows
 * (field.h).  The loader (load.c) and the training settings (settings.c)
 * read with it; outside lib/nn, only io/safetensors.c sees cJSON.
 */
#ifndef NABLA_NN_JSON_H
#define NABLA_NN_JSON_H

#include "internal.h"
#include "field.h"

#include <cJSON.h>

/* The text being read: its context, and its name in messages (a path, or
 * "<string>"). */
typedef struct nbi_json {
    nb_ctx *ctx;
    const char *origin;
} nbi_json;

/* ---- messages ------------------------------------------------------------ */

/* Records "<origin>: <place>: <reason>" and returns NB_ERR_FORMAT. */
int nbi_json_fail(const nbi_json *js, const char *place, const char *fmt, ...) NBI_PRINTF(3, 4);
int nbi_json_vfail(const nbi_json *js, const char *place, const char *fmt, va_list ap);

/* A value as "got ..." shows it: 3.5, "text", true, null, a list of 2, an
 * object.  Returns buf, or a string literal. */
const char *nbi_json_describe(char *buf, size_t size, const cJSON *v);
/* A number as messages show it (%.15g).  Returns buf. */
const char *nbi_json_num(char *buf, size_t size, double d);

/* Did you mean: offer each name a word could have been meant as; the
 * closest within two edits (and not the whole name) is suggested. */
typedef struct nbi_json_suggest {
    const char *word;
    const char *best;
    int dist;
} nbi_json_suggest;

#define NBI_JSON_SUGGEST(word) ((nbi_json_suggest){(word), NULL, 3})
void nbi_json_offer(nbi_json_suggest *s, const char *name);
/* Offers the name of every row. */
void nbi_json_offer_rows(nbi_json_suggest *s, const nbi_field *rows);
/* " (did you mean "x"?)", or "" without a suggestion.  Returns buf or "". */
const char *nbi_json_did_you_mean(char *buf, size_t size, const nbi_json_suggest *s);

/* 'unknown field "x" (did you mean "y"?)', 'field "x" appears twice' and
 * 'missing field "x"' (the first required row not seen[]), at place. */
int nbi_json_unknown(const nbi_json *js, const char *place, const char *key,
                     const nbi_json_suggest *s);
int nbi_json_twice(const nbi_json *js, const char *place, const char *key);
int nbi_json_missing(const nbi_json *js, const char *place, const nbi_field *rows,
                     const bool *seen);

/* ---- the field reader -----------------------------------------------------
 * Values go to `base` + the row's offset; base is the struct the rows
 * describe.  Each returns NB_OK, or NB_ERR_FORMAT with the message set. */

/* An integer in [lo, hi] from v; `expected` says what v should have been. */
int nbi_json_int(const nbi_json *js, const char *place, const cJSON *v, double lo, double hi,
                 const char *expected, int *out);
/* Writes the rows' defaults (nested objects' too; not NBI_KEEP rows). */
void nbi_json_defaults(const nbi_field *rows, void *base);
/* The position of the row named key, or -1. */
int nbi_json_find(const nbi_field *rows, const char *key);
/* Reads v, the value of the field at place, by its row f. */
int nbi_json_field(const nbi_json *js, const char *place, const nbi_field *f, const cJSON *v,
                   void *base);
/* Reads the object v at place by its rows: the defaults first, then every
 * key once, each a row's, then the required rows are checked. */
int nbi_json_object(const nbi_json *js, const char *place, const cJSON *v, const nbi_field *rows,
                    void *base);

/* ---- readers built on it ----------------------------------------------- */

/* settings.c: a model file's "optimizer" and "training" sections (either
 * may be NULL: the defaults) into optim and train. */
int nbi_settings_read(const nbi_json *js, const cJSON *optimizer, const cJSON *training,
                      nb_optim_opts *optim, nb_train_opts *train);
/* The normalisation's lists must have one value per channel of the input
 * (its first dimension for [C, H, W], else 1). */
int nbi_settings_check_channels(const nbi_json *js, const nb_train_opts *train, int64_t channels);

/* init_spec.c: a layer's "init" object v at place (layers[3].init) into
 * l->init[]; then, once its shapes are inferred, that the slots named
 * exist and fit their initialisers, writing the canonical text into buf
 * (size bytes; "" when every slot is the layer's own). */
struct nbi_layer;
int nbi_init_read(const nbi_json *js, const char *place, const cJSON *v, struct nbi_layer *l);
int nbi_init_check(const nbi_json *js, const char *place, const struct nbi_layer *l, char *buf,
                   size_t size);

#endif
