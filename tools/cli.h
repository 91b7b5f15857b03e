/*
 * cli.h - what the verbs of the `nabla` tool share: option parsing, error
 * reporting with the tool's exit codes, and number formatting.
 *
 * A verb is one file defining `int cmd_<verb>(int argc, char **argv)` and
 * one row in tools/verbs.def.  argv[0] is the verb's name.
 */
#ifndef NABLA_CLI_H
#define NABLA_CLI_H

#include <nabla.h>

#include <cJSON.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes. */
enum {
    CLI_OK = 0,      /* success */
    CLI_RUNTIME = 1, /* out of memory, a failed write, a failed check */
    CLI_USAGE = 2,   /* bad usage or bad input */
};

#if defined(__GNUC__)
#define CLI_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define CLI_PRINTF(f, a)
#endif

/* The verbs, from verbs.def: cmd_summary, cmd_forward... */
#define VERB(name, summary) int cmd_##name(int argc, char **argv);
#include "verbs.def"
#undef VERB

/* ---- errors -------------------------------------------------------------
 * Every error is one line on stderr, "nabla <verb>: <what>"; a library
 * error's message is printed as the library wrote it after that prefix. */

/* The verb named in messages ("forward"); NULL before one is chosen. */
void cli_set_verb(const char *verb);
const char *cli_verb(void);

/* Prints the error line and returns `code`, for `return cli_fail(...)`. */
int cli_fail(int code, const char *fmt, ...) CLI_PRINTF(2, 3);

/* One process of several (mpirun): its lines say "rank R: " after the
 * verb; -1 (the default) for none. */
void cli_set_rank(int rank);
/* While on, cli_fail keeps the first failure's line instead of printing
 * it, for processes that agree first on which of them reports. */
void cli_hold(bool on);
/* Prints the kept line (naming the rank when name_rank) or drops it;
 * returns whether there was one. */
bool cli_release(bool print, bool name_rank);
/* The kept line, or NULL (valid until the next cli_release). */
const char *cli_held(void);

/* For a failed library call: prints the context's message and returns the
 * exit code of its status.  `reading` is true while the verb reads its
 * inputs (a bad argument or file is then bad input, 2); otherwise and for
 * NB_ERR_NOMEM / NB_ERR_GRAPH, a runtime failure, 1. */
int cli_fail_lib(nb_ctx *ctx, bool reading);

/* ---- options ------------------------------------------------------------
 * Options are long ("--batch 4" or "--batch=4"), may come before or after
 * the positional arguments, and "--" ends them.  "-h" is "--help". */

typedef struct cli_opt {
    const char *name; /* without the dashes: "batch" */
    const char *arg;  /* the value's name for --help ("N"), NULL for a flag */
    const char *help; /* one line (may hold "\n" for more) */
    const char *value; /* set by cli_parse: the value, or "" for a flag given;
                          NULL when absent */
} cli_opt;

typedef struct cli_spec {
    const char *usage;       /* "MODEL.json [options]"; a usage that starts with
                                "MODEL" takes a model first, which cli_parse
                                looks up with cli_model_path */
    const char *about;       /* a paragraph for --help */
    int min_pos, max_pos;    /* positional arguments accepted */
    cli_opt *opts;           /* terminated by a zeroed entry */
} cli_spec;

/* Parses argv (argv[0] the verb) into spec->opts, and the positional
 * arguments into pos[] (room for spec->max_pos) and *npos.  Returns CLI_OK;
 * CLI_HELP after printing the help on stdout (the verb then exits 0); or
 * CLI_USAGE after printing a usage error, or that no model has the name
 * given as MODEL. */
int cli_parse(const cli_spec *spec, int argc, char **argv, const char **pos,
              int *npos);
#define CLI_HELP (-1)

void cli_print_help(const cli_spec *spec, FILE *out);

/* The option named `name` of a parsed spec: its value, or NULL. */
const char *cli_get(const cli_spec *spec, const char *name);

/* Value parsers: on a bad value they print the usage error naming the
 * option and return CLI_USAGE; CLI_OK otherwise.  An absent option
 * (value NULL) leaves *out as it is. */
int cli_int64(const cli_spec *spec, const char *name, int64_t lo, int64_t hi,
              int64_t *out);
int cli_uint64(const cli_spec *spec, const char *name, uint64_t *out);
/* A finite number > 0. */
int cli_positive(const cli_spec *spec, const char *name, double *out);
int cli_dtype(const cli_spec *spec, const char *name, nb_dtype *out);

/* ---- models -------------------------------------------------------------- */

/* The model file a MODEL argument means: arg itself when it is a file or
 * holds a '/'; else NAME.json (NAME when it ends in ".json") in the
 * directory NABLA_MODELS names, then in the installed models' directory,
 * the first that is a file, written into buf (n bytes).  When none is,
 * prints the places tried and returns NULL (a usage error). */
const char *cli_model_path(const char *arg, char *buf, size_t n);
/* The installed models' directory: the build defines NB_PKGDATADIR as
 * $(pkgdatadir). */
#define CLI_MODELS_DIR NB_PKGDATADIR "/models"

/* Sets the library's threads from --threads, else NABLA_NUM_THREADS, else
 * the number of online cores; returns an exit code. */
int cli_threads(const cli_spec *spec);

/* A new context; prints the error and returns NULL when memory fails.
 * Its memory limit is NABLA_MAX_MEMORY's when that is set (main checks
 * it), else the machine's (nb_memory_machine). */
nb_ctx *cli_ctx_new(void);

/* A size in bytes: "1048576", "512K", "1.5G", "4GiB", "2T" (K, M, G, T
 * are powers of 1024); false unless it is a number above 0 that fits. */
bool cli_size(const char *s, uint64_t *bytes);
/* Sets ctx's memory limit from the option `name` (a size), if given;
 * returns an exit code. */
int cli_max_memory(const cli_spec *spec, const char *name, nb_ctx *ctx);
/* The limit in force, as "23.5 GiB (this machine's memory)" or
 * "1.0 GiB (--max-memory)"; buf of at least 96 bytes.  Returns buf. */
char *cli_limit_str(nb_ctx *ctx, const char *set_by, char *buf);

/* Loads the model file in `dtype`, then its tensors from `weights`, or,
 * without weights, draws them with nb_model_init from a generator seeded
 * with `seed`.  On error prints it, sets *rc to the exit code and returns
 * NULL. */
nb_model *cli_load_model(nb_ctx *ctx, const char *path, nb_dtype dtype,
                         const char *weights, uint64_t seed, int *rc);

/* The names of the layers layer i reads ("input" for the model's input),
 * whether the model file names them (graph form) or not (sequential form:
 * the layer before).  Returns how many, at most 8. */
int cli_layer_inputs(const nb_model *m, int i, const nb_layer_info *info,
                     const char **names);
/* True when some layer reads something other than the layer before it:
 * the model is a graph, not a chain. */
bool cli_is_graph(const nb_model *m);


/* ---- images --------------------------------------------------------------- */

/* Reads a PNG of any kind for a model taking `channels` channels: 1, as a
 * gray image [1, H, W] (the mean of its channels); 3, as an RGB image
 * [3, H, W] (a gray PNG's channel repeated, alpha dropped).  Inverted
 * (1 - v) when `invert` and it is dark on light (the mean of its outermost
 * ring of pixels above 0.5), so that it looks like the data sets' light
 * drawings on dark.  On error prints it, sets *rc and returns NULL. */
nb_tensor *cli_read_image(nb_ctx *ctx, const char *path, int channels, bool invert,
                          int *rc);
/* The same from a PNG's bytes in memory; origin names them in messages. */
nb_tensor *cli_decode_image(nb_ctx *ctx, const void *buf, size_t len, const char *origin,
                            int channels, bool invert, int *rc);

/* The channels of the model's input image [C, H, W] (1 gray, 3 colour), or
 * 0 when its input is not such an image. */
int cli_model_channels(const nb_model *m);

/* The classes of a classifier: its outputs (2 for one output with a
 * hinge loss); 0 when its output is not a vector of at most
 * NB_MAX_CLASSES. */
int cli_model_classes(const nb_model *m);

/* Whether to invert a dark-on-light image, from the flags --invert and
 * --no-invert of spec: by default a gray model's image is inverted (when
 * dark on light) and a colour model's is not; --invert inverts a colour
 * model's too, --no-invert never.  Both is a usage error: returns
 * CLI_USAGE after printing it, else CLI_OK. */
int cli_invert(const cli_spec *spec, int channels, bool *invert);

/* The image img [C, H, W] as the model's input [1, C, h, w]: resized to
 * the model's size, in the model's dtype, normalised as its training
 * section says ((v - mean[c]) / std[c]).  The model must take one image
 * [C, h, w] with img's C channels, 1 (gray) or 3 (colour); otherwise, and
 * on error, prints it, sets *rc and returns NULL. */
nb_tensor *cli_model_input(nb_ctx *ctx, nb_model *m, const nb_tensor *img, int *rc);

/* Creates a directory and its missing parents; prints the error and
 * returns CLI_RUNTIME when one cannot be made. */
int cli_make_dir(const char *dir);

/* "cross_entropy", "mse", "hinge", or "none". */
const char *cli_loss_name(nb_loss_kind kind);

/* ---- data sets -------------------------------------------------------------
 * Which data set a name means and what its classes are called are the
 * tool's conventions, not the library's: the library reads any IDX or PNG
 * folder and knows no particular data set. */

/* The data directory --data names: NULL or "fashion-mnist" is Debian's
 * dataset-fashion-mnist, /usr/share/datasets/fashion-mnist. */
const char *cli_data_dir(const char *data);
/* True when dir is that Fashion-MNIST, whose IDX files name no classes. */
bool cli_is_fashion(const char *dir);

/* The names of a model's labels, 0 to n - 1.  nabla train stores them in
 * the weights' metadata, "classes": a JSON array of n strings (null for a
 * class without a name), so that eval, predict and serve name the classes
 * of any data set without it. */
typedef struct cli_classes {
    int n;                       /* 0: no names */
    char *names[NB_MAX_CLASSES]; /* NULL: no name */
} cli_classes;

/* The names of the data's n labels (mapped back through t's classes when
 * t has some): ds's class folders' (CIFAR's from its meta file), else
 * Fashion-MNIST's with fashion; c->n is 0 when none has one.  ds and t may
 * be NULL.  Returns an exit code. */
int cli_classes_of_data(cli_classes *c, const nb_dataset *ds, bool fashion,
                        const nb_train_opts *t, int n);
/* The names stored in a weights file for a model of n classes
 * (cli_model_classes); c->n is 0
 * when the file stores none.  Returns an exit code: names that are not a
 * JSON array of n strings or nulls are bad input, naming the file. */
int cli_classes_of_weights(nb_ctx *ctx, cli_classes *c, const char *weights, int n);
/* A label's name, or NULL. */
const char *cli_classes_name(const cli_classes *c, int label);
void cli_classes_free(cli_classes *c);
/* Saves m's tensors into path with c's names (none when c is NULL or
 * names none).  Returns an exit code. */
int cli_save_weights(nb_ctx *ctx, nb_model *m, const char *path, const cli_classes *c);

/* ---- --json output -------------------------------------------------------
 * Builders of cJSON values: each notes a failed allocation in *ok (a NULL
 * object or array is passed on as one: adding to it fails), and
 * cli_json_print reports it.  name NULL adds to an array. */

/* Adds item (freed when it cannot be added). */
void cli_json_item(cJSON *to, const char *name, cJSON *item, bool *ok);
/* An integer, exact whatever its size (a double holds 2^53). */
void cli_json_int(cJSON *to, const char *name, int64_t v, bool *ok);
void cli_json_uint(cJSON *to, const char *name, uint64_t v, bool *ok);
/* A double as cJSON prints it (17 digits when 15 do not give it back);
 * null when it is not finite, as JSON has no NaN. */
void cli_json_double(cJSON *to, const char *name, double v, bool *ok);
/* A float32 value in 9 digits, which give it back exactly; null when it
 * is not finite. */
void cli_json_float(cJSON *to, const char *name, double v, bool *ok);
/* A string, or null for NULL. */
void cli_json_str(cJSON *to, const char *name, const char *s, bool *ok);
/* An array of ndim integers; returns it. */
cJSON *cli_json_shape(cJSON *to, const char *name, int ndim, const int64_t *shape, bool *ok);
/* Prints root on one line of stdout and frees it; returns an exit code. */
int cli_json_print(cJSON *root, bool ok);

/* ---- eval and predict, which serve shares --------------------------------- */

/* Evaluates m on the test images of the data directory dir: the result,
 * the n x n confusion matrix [true][predicted] and the classes' names (the
 * data's, else the weights'). */
typedef struct cli_eval {
    nb_eval_result r;
    nb_target target;  /* input: the loss alone, no classes (n 0) */
    int n;
    int64_t *cm;
    cli_classes names;
} cli_eval;
/* Returns an exit code; e holds nothing to free after a failure. */
int cli_eval_run(nb_ctx *ctx, nb_model *m, const nb_train_opts *t, const char *dir,
                 const char *weights, cli_eval *e);
/* Adds eval --json's numbers to `to`: examples, loss, target, then (for
 * labels) accuracy, classes, per_class and confusion (docs/cli.md). */
void cli_eval_json(cJSON *to, const cli_eval *e, bool *ok);
void cli_eval_free(cli_eval *e);

/* The names predict gives m's classes: the weights', else Fashion-MNIST's
 * (through the model file's training.classes).  Returns an exit code. */
int cli_predict_names(nb_ctx *ctx, nb_model *m, const char *weights, cli_classes *names);
/* The k most likely classes of the probabilities p, most likely first (the
 * first of equals), into order[k]. */
void cli_top_classes(const nb_tensor *p, int64_t k, int64_t *order);
/* Adds predict --json's fields after "file" to `to`: class, label,
 * probability, top (the k of order) and probabilities. */
void cli_predict_json(cJSON *to, const nb_tensor *p, const int64_t *order, int64_t k,
                      const cli_classes *names, bool *ok);

/* ---- formatting --------------------------------------------------------- */

/* "93,322"; buf of at least 32 bytes.  Returns buf. */
char *cli_count(int64_t n, char *buf);
/* "364.5 KiB", "1.2 MiB", "512 B"; buf of at least 32 bytes. */
char *cli_bytes(double bytes, char *buf);

#endif /* NABLA_CLI_H */
