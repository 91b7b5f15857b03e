/*
 * field.h - the settings a model file may give, described as data: one row
 * per field of a JSON object (its name, its type, flags, where its value
 * goes, its default and its range).  The rows of a layer kind (layers.c)
 * write into its nbi_layer_conf, those of the training sections
 * (settings.c) into nb_train_opts and nb_optim_opts: a row holds an offset
 * into whatever struct its table describes.  json.c reads every row, so
 * the same mistake gets the same message wherever it is made.  Nothing
 * here knows JSON text or cJSON.
 */
#ifndef NABLA_NN_FIELD_H
#define NABLA_NN_FIELD_H

#include <stdbool.h>
#include <stddef.h>

/* Rows one table may hold. */
#define NBI_MAX_FIELDS 32

/* What a field's JSON value may be, and what the row's offset points at. */
typedef enum nbi_fkind {
    NBI_FK_INT,    /* an integer in [lo, hi]: int (PAIR: or [h, w], int[2]) */
    NBI_FK_PAD,    /* as NBI_FK_INT with PAIR, or "same" with SAME: nbi_pad */
    NBI_FK_REAL,   /* a number in [lo, hi] (hi excluded with OPEN): double */
    NBI_FK_BOOL,   /* true or false: bool */
    NBI_FK_U64,    /* an integer in [lo, hi], lo >= 0: uint64_t */
    NBI_FK_CHOICE, /* one of the type's words: int, the word's position */
    NBI_FK_REALS,  /* a list of numbers in [lo, hi]: double[] */
    NBI_FK_INTS,   /* a list of integers in [lo, hi]: int32_t[] */
    NBI_FK_OBJECT, /* an object of the type's rows, written into the same struct */
} nbi_fkind;

/* A field's type: its kind, and what a kind needs beyond a row. */
typedef struct nbi_ftype {
    nbi_fkind kind;
    const char *const *choices;     /* NBI_FK_CHOICE: the words, ended by NULL */
    const struct nbi_field *fields; /* NBI_FK_OBJECT: its rows */
    /* Lists: the lengths accepted; when they may differ, the length read
     * goes to the int at len_offset (0 for the default). */
    int len[2];
    size_t len_offset;
} nbi_ftype;

/* The plain types; a table makes its own for choices, lists and objects:
 *     static const nbi_ftype betas = {.kind = NBI_FK_REALS, .len = {2, 2}}; */
extern const nbi_ftype nbi_ftype_int, nbi_ftype_pad, nbi_ftype_real, nbi_ftype_bool,
    nbi_ftype_u64;
#define NBI_F_INT (&nbi_ftype_int)
#define NBI_F_PAD (&nbi_ftype_pad)
#define NBI_F_REAL (&nbi_ftype_real)
#define NBI_F_BOOL (&nbi_ftype_bool)
#define NBI_F_U64 (&nbi_ftype_u64)

enum {
    NBI_REQUIRED = 1u << 0, /* must be given (when its object is) */
    NBI_PAIR = 1u << 1,     /* NBI_FK_INT, NBI_FK_PAD: an int or a pair [h, w] */
    NBI_SAME = 1u << 2,     /* NBI_FK_PAD: also "same" */
    NBI_OPEN = 1u << 3,     /* NBI_FK_REAL(S): hi excluded */
    NBI_KEEP = 1u << 4,     /* no default: absent leaves the struct's value */
    NBI_DISTINCT = 1u << 5, /* NBI_FK_INTS: no value twice */
    NBI_ONE = 1u << 6,      /* NBI_FK_REALS, NBI_FK_INTS: a number is a list of one too */
};

/* An NBI_FK_PAD value. */
typedef struct nbi_pad {
    int v[2];  /* [ph, pw] */
    bool same; /* "same": computed from the kernel */
} nbi_pad;

typedef struct nbi_field {
    const char *name;
    const nbi_ftype *type;
    unsigned flags;
    size_t offset; /* of the value, in the struct the table describes */
    double def;    /* written before reading, unless NBI_KEEP (a choice: the
                    * word's position); lists and objects have none */
    double lo, hi; /* the accepted range (of each element, for a list) */
} nbi_field;

/* The rows' values in base that differ from their defaults, and those a
 * file must give, as "kernel_size=3, stride=2, padding=\"same\"" appended
 * at buf[*at] (size bytes in all, cut short when full): the text summaries
 * show (digest.c, beside the digest's own walk of the rows). */
void nbi_fields_text(const nbi_field *rows, const void *base, char *buf, size_t size, size_t *at);

#endif
