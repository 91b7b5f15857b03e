/*
 * harness.c - the gradcheck and registry suites, run over every family's
 * cases, and the helpers the family tests share.
 */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- test data --------------------------------------------------------- */

static nb_tensor *push(tst_env *e, nb_tensor *t)
{
    ck_assert_msg(t != NULL, "%s", nb_errmsg(e->ctx));
    ck_assert_int_lt(e->n, TST_MAX_TENSORS);
    char name[16];
    snprintf(name, sizeof name, "t%d", e->n);
    nb_tensor_set_name(t, name);
    e->t[e->n++] = t;
    return t;
}

nb_tensor *tst_tensor_range(tst_env *e, nb_rng *rng, int ndim,
                            const int64_t *shape, double lo, double hi)
{
    nb_tensor *t = nb_tensor_new(e->ctx, NB_F64, ndim, shape);
    ck_assert_msg(t != NULL, "%s", nb_errmsg(e->ctx));
    nb_fill_uniform(t, rng, lo, hi);
    return push(e, t);
}

nb_tensor *tst_tensor(tst_env *e, nb_rng *rng, int ndim, const int64_t *shape)
{
    nb_tensor *t = tst_tensor_range(e, rng, ndim, shape, -1.0, 1.0);
    for (int64_t i = 0; i < t->numel; i++) {
        double v = nb_get(t, i);
        if (fabs(v) < 0.01)
            nb_set(t, i, v < 0 ? v - 0.01 : v + 0.01);
    }
    return t;
}

nb_tensor *tst_tensor_values(tst_env *e, int ndim, const int64_t *shape,
                             const double *values)
{
    return push(e, tst_make(e->ctx, NB_F64, ndim, shape, values));
}

/* ---- the case table ---------------------------------------------------- */

static const tst_case *const families[] = {
#define TST_FAMILY(name) tst_cases_##name,
#include "families.def"
#undef TST_FAMILY
};

static int count_cases(void)
{
    int n = 0;
    for (size_t f = 0; f < sizeof families / sizeof *families; f++)
        for (const tst_case *c = families[f]; c->name; c++)
            n++;
    return n;
}

static const tst_case *case_at(int i)
{
    for (size_t f = 0; f < sizeof families / sizeof *families; f++)
        for (const tst_case *c = families[f]; c->name; c++)
            if (i-- == 0)
                return c;
    return NULL;
}

/* The loss every case is checked through: sum(y * R) for a fixed R, so each
 * output element gets its own weight in the gradient. */
typedef struct run {
    const tst_case *c;
    tst_env *e;
} run;

static nb_tensor *weighted_sum(nb_ctx *ctx, nb_tensor *y)
{
    if (!y)
        return NULL;
    nb_tensor *r = nbi_step_tensor(ctx, y->dtype, y->ndim, y->shape);
    if (!r)
        return NULL;
    nb_rng rng;
    nb_rng_seed(&rng, 12345);
    nb_fill_uniform(r, &rng, 0.5, 1.5);
    return nb_sum(ctx, nb_mul(ctx, y, r));
}

static nb_tensor *case_loss(nb_ctx *ctx, void *ud)
{
    run *r = ud;
    return weighted_sum(ctx, r->c->forward(ctx, r->e));
}

static void setup_case(const tst_case *c, tst_env *e, nb_ctx *ctx)
{
    memset(e, 0, sizeof *e);
    e->ctx = ctx;
    nb_rng rng;
    nb_rng_seed(&rng, 42);
    c->setup(e, &rng);
}

/* ---- the gradcheck suite ----------------------------------------------- */

START_TEST(test_case_gradcheck)
{
    const tst_case *c = case_at(_i);
    nb_ctx *ctx = nb_ctx_new();
    tst_env e;
    setup_case(c, &e, ctx);
    run r = {c, &e};
    nb_gradcheck_report rep[TST_MAX_TENSORS];
    int rc = nb_gradcheck(ctx, case_loss, &r, e.n, e.t, NULL, rep);
    ck_assert_msg(rc == NB_OK, "%s: %s", c->name, nb_errmsg(ctx));
    for (int j = 0; j < e.n; j++) {
        ck_assert_msg(rep[j].checked == e.t[j]->numel, "%s: not every element checked", c->name);
        ck_assert_msg(rep[j].ok && rep[j].max_rel_err <= 1e-6,
                      "%s: tensor %d: relative error %.3g at %lld (analytic %.10g, numeric %.10g)",
                      c->name, j, rep[j].max_rel_err, (long long)rep[j].worst, rep[j].analytic,
                      rep[j].numeric);
    }
    nb_ctx_free(ctx);
}
END_TEST

/* float32 against float64: the output and every gradient agree within
 * 1e-4 relative (absolute below 1). */
static void assert_close32(const char *what, const char *name, const nb_tensor *a,
                           const nb_tensor *b)
{
    if (!a && !b)
        return; /* a tensor the case does not use */
    ck_assert_msg(a && b, "%s: %s missing", name, what);
    ck_assert_int_eq(a->numel, b->numel);
    for (int64_t i = 0; i < a->numel; i++) {
        double x = nb_get(a, i), y = nb_get(b, i);
        ck_assert_msg(fabs(x - y) <= 1e-4 * fmax(1.0, fabs(y)),
                      "%s: %s element %lld: f32 %.8g vs f64 %.8g", name, what, (long long)i, x, y);
    }
}

START_TEST(test_case_f32_matches_f64)
{
    const tst_case *c = case_at(_i);
    nb_ctx *ctx = nb_ctx_new();
    tst_env e64, e32;
    setup_case(c, &e64, ctx);
    e32 = e64;
    for (int j = 0; j < e64.n; j++) {
        e32.t[j] = nb_tensor_copy(ctx, e64.t[j], NB_F32);
        nb_requires_grad(e64.t[j], true);
        nb_requires_grad(e32.t[j], true);
    }
    nb_tensor *y64 = c->forward(ctx, &e64);
    nb_tensor *y32 = c->forward(ctx, &e32);
    ck_assert_msg(y64 && y32, "%s: %s", c->name, nb_errmsg(ctx));
    ck_assert_int_eq(y32->dtype, NB_F32);
    assert_close32("output", c->name, y32, y64);
    ck_assert_int_eq(nb_backward(ctx, weighted_sum(ctx, y64)), NB_OK);
    ck_assert_int_eq(nb_backward(ctx, weighted_sum(ctx, y32)), NB_OK);
    for (int j = 0; j < e64.n; j++)
        assert_close32("gradient", c->name, e32.t[j]->grad, e64.t[j]->grad);
    nb_ctx_free(ctx);
}
END_TEST

Suite *tst_suite_gradcheck(void)
{
    Suite *s = suite_create("gradcheck");
    TCase *tc = tcase_create("f64 backward vs central differences");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_case_gradcheck, 0, count_cases());
    suite_add_tcase(s, tc);
    tc = tcase_create("f32 vs f64");
    tcase_add_loop_test(tc, test_case_f32_matches_f64, 0, count_cases());
    suite_add_tcase(s, tc);
    return s;
}

/* ---- the registry suite ------------------------------------------------ */

START_TEST(test_every_op_has_a_case)
{
    bool seen[NBI_OP_COUNT] = {false};
    for (int i = 0; i < count_cases(); i++) {
        const tst_case *c = case_at(i);
        nb_ctx *ctx = nb_ctx_new();
        tst_env e;
        setup_case(c, &e, ctx);
        for (int j = 0; j < e.n; j++)
            nb_requires_grad(e.t[j], true);
        ck_assert_msg(c->forward(ctx, &e) != NULL, "%s: %s", c->name, nb_errmsg(ctx));
        for (nbi_node *n = ctx->tape; n; n = n->prev)
            for (int op = 0; op < NBI_OP_COUNT; op++)
                seen[op] |= n->op == nbi_ops[op];
        nb_ctx_free(ctx);
    }
    for (int op = 0; op < NBI_OP_COUNT; op++)
        ck_assert_msg(seen[op], "op %s has no gradcheck case", nb_op_name(op));
}
END_TEST

START_TEST(test_registry_names)
{
    ck_assert_ptr_null(nb_op_name(-1));
    ck_assert_ptr_null(nb_op_name(NBI_OP_COUNT));
    for (int op = 0; op < NBI_OP_COUNT; op++) {
        ck_assert_ptr_nonnull(nbi_ops[op]->backward);
        for (int k = 0; k < op; k++)
            ck_assert_str_ne(nb_op_name(op), nb_op_name(k));
    }
    ck_assert_str_eq(nb_op_name(NBI_OP_conv2d), "conv2d");
}
END_TEST

Suite *tst_suite_registry(void)
{
    Suite *s = suite_create("registry");
    TCase *tc = tcase_create("registry");
    tcase_add_test(tc, test_every_op_has_a_case);
    tcase_add_test(tc, test_registry_names);
    suite_add_tcase(s, tc);
    return s;
}
