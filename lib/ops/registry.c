/* registry.c - the table of ops, generated from ops.def. */
#include "internal.h"

#define NBI_OP(name) &nbi_op_##name,
const nbi_op *const nbi_ops[NBI_OP_COUNT] = {
#include "ops.def"
};
#undef NBI_OP

const char *nb_op_name(int index)
{
    return index >= 0 && index < NBI_OP_COUNT ? nbi_ops[index]->name : NULL;
}
