/*
 * field.h - the settings a model file may give, described as data: one row
 * per field of a JSON object (its name, type, flags, where its value goes,
 * its default and its range).  A row holds an offset into the struct its
 * table describes: a layer kind's rows (layers.c) write into its
 * nbi_layer_conf.  json.c reads every row.  Nothing here knows JSON text
 * or cJSON.
 */
#ifndef NABLA_NN_FIELD_H
#define NABLA_NN_FIELD_H

#include <stdbool.h>
#include <stddef.h>

/* Rows one table may hold. */
#define NBI_MAX_FIELDS 32

/* A field's JSON form, and what the row's offset points at. */
typedef enum nbi_ftype {
    NBI_F_INT,  /* an integer in [lo, hi]: int (PAIR: or [h, w], int[2]) */
    NBI_F_PAD,  /* as NBI_F_INT with PAIR, or "same" with SAME: nbi_pad */
    NBI_F_REAL, /* a number in [lo, hi] (hi excluded with OPEN): double */
    NBI_F_BOOL, /* true or false: bool */
} nbi_ftype;

enum {
    NBI_REQUIRED = 1u << 0, /* no default */
    NBI_PAIR = 1u << 1,     /* an int or a pair [h, w]; writes int[2] */
    NBI_SAME = 1u << 2,     /* NBI_F_PAD: also "same" */
    NBI_OPEN = 1u << 3,     /* NBI_F_REAL: hi excluded */
};

/* An NBI_F_PAD value. */
typedef struct nbi_pad {
    int v[2];  /* [ph, pw] */
    bool same; /* "same": computed from the kernel */
} nbi_pad;

typedef struct nbi_field {
    const char *name;
    nbi_ftype type;
    unsigned flags;
    size_t offset; /* of the value, in the struct the table describes */
    double def;    /* the default, unless NBI_REQUIRED */
    double lo, hi; /* the accepted range */
} nbi_field;

#endif
