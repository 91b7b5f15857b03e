/*
 * check_tools.c - the suites of the nabla tool's own modules (plots, image
 * filters, tile grids), built on the public API only, as the tool is.
 * CK_RUN_SUITE / CK_RUN_CASE pick one; CK_FORK=no for gdb and valgrind.
 *
 * The "colour" suite is here: the colour tiles of tools/grid.c
 * (grid_put_rgb: three planes, one range or none) and tools/filter.c on
 * the planes of a colour image, each filtered on its own.  So is the
 * "json" suite: the --json output of `nabla summary`, `eval` and `predict`,
 * read with cJSON and checked against their text.
 */
#include <cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#include "../tools/filter.h"
#include "../tools/grid.h"

Suite *tst_suite_plot(void);
Suite *tst_suite_filter(void);
Suite *tst_suite_grid(void);

/* ---- colour ------------------------------------------------------------------ */

/* Asserts plane k (0 R, 1 G, 2 B) of g's picture, rows x cols: `want`,
 * the border's colour where want is NAN. */
static void assert_plane(const grid *g, int k, int64_t rows, int64_t cols, const double *want)
{
    const double border[3] = {GRID_BORDER_R, GRID_BORDER_G, GRID_BORDER_B};
    ck_assert_int_eq(g->img->shape[0], 3);
    ck_assert_int_eq(g->img->shape[1], rows);
    ck_assert_int_eq(g->img->shape[2], cols);
    for (int64_t i = 0; i < rows * cols; i++) {
        double w = isnan(want[i]) ? border[k] : want[i];
        double got = nb_get(g->img, k * rows * cols + i);
        ck_assert_msg(fabs(got - w) <= 1e-15, "plane %d, pixel %lld: %g, expected %g", k,
                      (long long)i, got, w);
    }
}

/* One tile of 1 x 2 values from three planes (offset 1, stride 3), on one
 * range over them: min 0 and max 4 of all six. */
START_TEST(test_rgb_shared_range)
{
    nb_ctx *ctx = nb_ctx_new();
    grid g;
    ck_assert_int_eq(grid_new(ctx, &g, 1, 1, 1, 2, 1), NB_OK);
    nb_tensor *t = tst_make(ctx, NB_F32, 1, (int64_t[]){9},
                            (double[]){9, 0, 2, 9, 1, 1, 9, 4, 3});
    grid_put_rgb(&g, 0, 0, t, 1, 3, true);
    const double B = NAN;
    assert_plane(&g, 0, 3, 4, (double[]){B, B, B, B, B, 0, 0.5, B, B, B, B, B});
    assert_plane(&g, 1, 3, 4, (double[]){B, B, B, B, B, 0.25, 0.25, B, B, B, B, B});
    assert_plane(&g, 2, 3, 4, (double[]){B, B, B, B, B, 1, 0.75, B, B, B, B, B});
    grid_free(&g);
    nb_ctx_free(ctx);
}
END_TEST

/* Without scale the values are drawn as they are, clamped to [0, 1]; the
 * second tile of a 1 x 2 grid at zoom 2 (each value a 2 x 2 block). */
START_TEST(test_rgb_as_is)
{
    nb_ctx *ctx = nb_ctx_new();
    grid g;
    ck_assert_int_eq(grid_new(ctx, &g, 1, 2, 1, 1, 2), NB_OK);
    nb_tensor *t = tst_make(ctx, NB_F64, 3, (int64_t[]){3, 1, 1}, (double[]){-1, 0.25, 2});
    grid_put_rgb(&g, 0, 1, t, 0, 1, false);
    const double B = NAN;
    /* Rows: border, 2 rows of | . . | v v |, border; 7 columns. */
    const double border[3] = {GRID_BORDER_R, GRID_BORDER_G, GRID_BORDER_B};
    const double value[3] = {0, 0.25, 1};
    for (int k = 0; k < 3; k++) {
        const double v = value[k], o = border[k];
        const double want[4 * 7] = {
            B, B, B, B, B, B, B,
            B, o, o, B, v, v, B,
            B, o, o, B, v, v, B,
            B, B, B, B, B, B, B,
        };
        assert_plane(&g, k, 4, 7, want);
    }
    grid_free(&g);
    nb_ctx_free(ctx);
}
END_TEST

/* A constant colour tile on its own range is black, as a constant gray
 * tile is. */
START_TEST(test_rgb_constant)
{
    nb_ctx *ctx = nb_ctx_new();
    grid g;
    ck_assert_int_eq(grid_new(ctx, &g, 1, 1, 1, 1, 1), NB_OK);
    nb_tensor *t = tst_make(ctx, NB_F64, 1, (int64_t[]){3}, (double[]){0.5, 0.5, 0.5});
    grid_put_rgb(&g, 0, 0, t, 0, 1, true);
    const double B = NAN;
    for (int k = 0; k < 3; k++)
        assert_plane(&g, k, 3, 3, (double[]){B, B, B, B, 0, B, B, B, B});
    grid_free(&g);
    nb_ctx_free(ctx);
}
END_TEST

/* The three planes of a colour image [3, 2, 3] are filtered each on its
 * own: box:2 in valid mode gives each plane's 2x2 means, never mixing
 * planes. */
START_TEST(test_filter_planes)
{
    nb_ctx *ctx = nb_ctx_new();
    char err[256];
    filter_kernel k = {0};
    ck_assert_int_eq(filter_kernel_make(ctx, "box:2", &k, err, sizeof err), NB_OK);
    nb_tensor *img = tst_make(ctx, NB_F64, 3, (int64_t[]){3, 2, 3},
                              (double[]){0, 1, 2, 3, 4, 5,
                                         10, 10, 10, 10, 10, 10,
                                         1, 0, 1, 0, 1, 0});
    nb_tensor *out = NULL;
    ck_assert_int_eq(filter_apply(ctx, img, &k, 1, FILTER_VALID, false, &out, err, sizeof err),
                     NB_OK);
    tst_assert_values(out, 4, (int64_t[]){3, 1, 1, 2},
                      (double[]){2, 3, 10, 10, 0.5, 0.5}, 1e-12);
    nb_tensor_free(out);
    /* A gray image stays one plane, [1, 1, H', W']. */
    nb_tensor *gray = tst_make(ctx, NB_F64, 2, (int64_t[]){2, 3}, (double[]){0, 1, 2, 3, 4, 5});
    ck_assert_int_eq(filter_apply(ctx, gray, &k, 1, FILTER_SAME, false, &out, err, sizeof err),
                     NB_OK);
    ck_assert_int_eq(out->ndim, 4);
    ck_assert_int_eq(out->shape[0], 1);
    ck_assert_int_eq(out->shape[1], 1);
    ck_assert_int_eq(out->shape[2], 2);
    ck_assert_int_eq(out->shape[3], 3);
    nb_tensor_free(out);
    filter_kernel_free(&k);
    nb_ctx_free(ctx);
}
END_TEST

static Suite *colour_suite(void)
{
    Suite *s = suite_create("colour");
    TCase *tc = tcase_create("colour");
    tcase_add_test(tc, test_rgb_shared_range);
    tcase_add_test(tc, test_rgb_as_is);
    tcase_add_test(tc, test_rgb_constant);
    tcase_add_test(tc, test_filter_planes);
    suite_add_tcase(s, tc);
    return s;
}

/* ---- --json of summary, eval and predict -------------------------------------
 * The tool itself is run (top_builddir/tools/nabla, the sources' fixtures
 * under top_srcdir, as make check sets both) with and without --json, and
 * every documented field of its JSON, parsed by cJSON, is checked for its
 * type and against the text's numbers and the library's. */

static char json_dir[4096]; /* the fixture's temporary directory */
static bool json_trained;   /* the fixture's weights were made */

static const char *builddir(void)
{
    const char *d = getenv("top_builddir");
    return d && *d ? d : ".";
}

static const char *srcdir(void)
{
    const char *d = getenv("top_srcdir");
    return d && *d ? d : "..";
}

/* A file's contents, NUL-terminated (an empty string when it is missing). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    size_t n = 0, cap = 4096;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    for (size_t got; f && (got = fread(s + n, 1, cap - n - 1, f)) > 0;) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            s = realloc(s, cap);
            ck_assert_ptr_nonnull(s);
        }
    }
    if (f)
        fclose(f);
    s[n] = '\0';
    return s;
}

typedef struct tool_run {
    int rc;        /* the exit code, -1 when it did not exit */
    char *out, *err;
} tool_run;

/* Runs `nabla ARGS...` (args ended by NULL) with `env` ("NAME=value", or
 * NULL) added to the environment, its output in r. */
static void run_tool_env(tool_run *r, const char *env, const char *const *args)
{
    char tool[4200], out[4200], err[4200];
    snprintf(tool, sizeof tool, "%s/tools/nabla", builddir());
    snprintf(out, sizeof out, "%s/stdout", json_dir);
    snprintf(err, sizeof err, "%s/stderr", json_dir);
    const char *argv[64] = {tool};
    int n = 1;
    for (; args[n - 1] && n < 63; n++)
        argv[n] = args[n - 1];
    argv[n] = NULL;
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        FILE *o = freopen(out, "w", stdout), *e = freopen(err, "w", stderr),
             *i = freopen("/dev/null", "r", stdin);
        char name[64];
        const char *eq = env ? strchr(env, '=') : NULL;
        if (eq)
            snprintf(name, sizeof name, "%.*s", (int)(eq - env), env);
        if (!o || !e || !i || (eq && setenv(name, eq + 1, 1) != 0))
            _exit(126);
        execv(tool, (char *const *)argv);
        _exit(127);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    r->rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r->out = slurp(out);
    r->err = slurp(err);
}

#define RUN_ENV(r, env, ...) run_tool_env((r), (env), (const char *const[]){__VA_ARGS__, NULL})
#define RUN(r, ...) RUN_ENV((r), NULL, __VA_ARGS__)

static void run_free(tool_run *r)
{
    free(r->out);
    free(r->err);
}

/* Asserts r exited with 0 and wrote nothing on stderr. */
static void assert_ok(const tool_run *r, const char *what)
{
    ck_assert_msg(r->rc == 0, "%s: exit %d: %s", what, r->rc, r->err);
    ck_assert_msg(r->err[0] == '\0', "%s wrote on stderr: %s", what, r->err);
}

/* Asserts r failed with `code`, nothing on stdout and one line on stderr,
 * "nabla VERB: ...". */
static void assert_error(const tool_run *r, int code, const char *verb, const char *what)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "nabla %s: ", verb);
    ck_assert_msg(r->rc == code, "%s: exit %d, expected %d: %s", what, r->rc, code, r->err);
    ck_assert_msg(r->out[0] == '\0', "%s wrote on stdout: %s", what, r->out);
    const char *nl = strchr(r->err, '\n');
    ck_assert_msg(strncmp(r->err, prefix, strlen(prefix)) == 0 && nl && nl[1] == '\0',
                  "%s: not one line \"%s...\" on stderr: %s", what, prefix, r->err);
}

/* The whole of s as one JSON value on one line (ending in a newline, no
 * other): any other output on stdout fails. */
static cJSON *parse_line(const char *s, const char *what)
{
    const char *nl = strchr(s, '\n');
    ck_assert_msg(nl && nl[1] == '\0', "%s: not one line: %s", what, s);
    const char *end = NULL;
    cJSON *j = cJSON_ParseWithOpts(s, &end, true);
    ck_assert_msg(j != NULL, "%s: not JSON near \"%.40s\": %s", what, end ? end : "", s);
    return j;
}

/* The field `name` of object o, asserted present and of the type `type`
 * (cJSON_Number, cJSON_String...; cJSON_True for a boolean). */
static const cJSON *jget(const cJSON *o, const char *name, int type)
{
    ck_assert_msg(cJSON_IsObject(o), "not an object where \"%s\" is expected", name);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    ck_assert_msg(v != NULL, "no field \"%s\"", name);
    bool right = type == cJSON_True ? cJSON_IsBool(v) : (v->type & 0xFF) == type;
    ck_assert_msg(right, "field \"%s\" has cJSON type %d, expected %d", name, v->type & 0xFF,
                  type);
    return v;
}

static double jnum(const cJSON *o, const char *name)
{
    return jget(o, name, cJSON_Number)->valuedouble;
}

/* An integer-valued number. */
static int64_t jint_of(const cJSON *v, const char *name)
{
    ck_assert_msg(cJSON_IsNumber(v), "\"%s\" is not a number", name);
    double d = v->valuedouble;
    ck_assert_msg(d == floor(d) && fabs(d) < 9007199254740992.0, "\"%s\" is %.17g, not an integer",
                  name, d);
    return (int64_t)d;
}

static int64_t jint(const cJSON *o, const char *name)
{
    return jint_of(jget(o, name, cJSON_Number), name);
}

static const char *jstr(const cJSON *o, const char *name)
{
    return jget(o, name, cJSON_String)->valuestring;
}

/* A string, or NULL for null. */
static const char *jstr_or_null(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    ck_assert_msg(v != NULL, "no field \"%s\"", name);
    if (cJSON_IsNull(v))
        return NULL;
    ck_assert_msg(cJSON_IsString(v), "field \"%s\" is neither a string nor null", name);
    return v->valuestring;
}

static bool jbool(const cJSON *o, const char *name)
{
    return cJSON_IsTrue(jget(o, name, cJSON_True));
}

static const cJSON *jarr(const cJSON *o, const char *name, int size)
{
    const cJSON *a = jget(o, name, cJSON_Array);
    if (size >= 0)
        ck_assert_msg(cJSON_GetArraySize(a) == size, "\"%s\" has %d elements, expected %d", name,
                      cJSON_GetArraySize(a), size);
    return a;
}

/* Where the first line of text starting with prefix goes on after it, or
 * NULL. */
static const char *after_line(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (strncmp(l, prefix, n) == 0)
            return l + n;
    return NULL;
}

static const char *must_after(const char *text, const char *prefix)
{
    const char *p = after_line(text, prefix);
    ck_assert_msg(p != NULL, "no line \"%s...\" in: %s", prefix, text);
    return p;
}

/* A count as the text writes it, "93,322"; *end after it. */
static int64_t parse_count(const char *s, const char **end)
{
    int64_t v = 0;
    bool any = false;
    for (; (*s >= '0' && *s <= '9') || (*s == ',' && any); s++)
        if (*s != ',') {
            v = v * 10 + (*s - '0');
            any = true;
        }
    ck_assert_msg(any, "no count at \"%.20s\"", s);
    if (end)
        *end = s;
    return v;
}

/* The rest of the line at s, without its newline, into buf. */
static char *rest_of_line(const char *s, char *buf, size_t size)
{
    size_t n = strcspn(s, "\n");
    snprintf(buf, size, "%.*s", (int)n, s);
    return buf;
}

/* "[8, 28, 28]" of a JSON array of integers. */
static char *shape_str(const cJSON *a, char *buf, size_t size)
{
    size_t len = (size_t)snprintf(buf, size, "[");
    int k = 0;
    for (const cJSON *d = a->child; d && len < size; d = d->next, k++)
        len += (size_t)snprintf(buf + len, size - len, "%s%" PRId64, k ? ", " : "",
                                jint_of(d, "a dimension"));
    if (len < size)
        snprintf(buf + len, size - len, "]");
    return buf;
}

/* "%.4f" of v, as the text prints a loss, an accuracy or a probability. */
static char *f4(double v, char *buf)
{
    snprintf(buf, 32, "%.4f", v);
    return buf;
}

/* Trains the fixtures' models once for the suite: lenet on the PNG shapes
 * (1 epoch), rgb-tiny on the colour squares, and rgb-tiny with 12 classes
 * (so that classes 10 and 11 have no name). */
static void json_setup(void)
{
    snprintf(json_dir, sizeof json_dir, "%s/check_tools_json.XXXXXX",
             getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(json_dir)) {
        json_dir[0] = '\0';
        return;
    }
    char model[4200], data[4200], out[4200], rgb12[4200];
    tool_run r;
    bool ok = true;
    snprintf(model, sizeof model, "%s/models/lenet.json", srcdir());
    snprintf(data, sizeof data, "%s/tests/data/png/shapes", srcdir());
    snprintf(out, sizeof out, "%s/lenet", json_dir);
    RUN(&r, "train", model, "--data", data, "--epochs", "1", "--batch-size", "2", "--out", out);
    ok &= r.rc == 0;
    run_free(&r);
    snprintf(model, sizeof model, "%s/tests/data/cli/rgb-tiny.json", srcdir());
    snprintf(data, sizeof data, "%s/tests/data/cli/colour", srcdir());
    snprintf(out, sizeof out, "%s/rgb", json_dir);
    RUN(&r, "train", model, "--data", data, "--out", out);
    ok &= r.rc == 0;
    run_free(&r);
    /* The same model with 12 outputs. */
    char *text = slurp(model);
    char *p = strstr(text, "\"out_features\": 2");
    snprintf(rgb12, sizeof rgb12, "%s/rgb12.json", json_dir);
    FILE *f = fopen(rgb12, "w");
    ok &= p && f;
    if (p && f)
        fprintf(f, "%.*s\"out_features\": 12%s", (int)(p - text), text,
                p + strlen("\"out_features\": 2"));
    if (f)
        ok &= fclose(f) == 0;
    free(text);
    snprintf(out, sizeof out, "%s/rgb12", json_dir);
    RUN(&r, "train", rgb12, "--data", data, "--epochs", "1", "--out", out);
    ok &= r.rc == 0;
    run_free(&r);
    json_trained = ok;
}

static void json_teardown(void)
{
    if (!json_dir[0])
        return;
    pid_t pid = fork();
    if (pid == 0) {
        execlp("rm", "rm", "-rf", json_dir, (char *)NULL);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

static void assert_fixture(void)
{
    ck_assert_msg(json_dir[0], "no temporary directory for the --json tests");
    ck_assert_msg(json_trained, "the --json tests' models could not be trained in %s", json_dir);
}

/* ---- summary --json ---- */

/* Checks summary --json of `model` (with the extra options) against its
 * text and the library's own counts and estimates. */
static void check_summary(const char *model, const char *env, const char *opt1,
                          const char *opt2)
{
    tool_run text, js;
    if (opt2) {
        RUN_ENV(&text, env, "summary", model, opt1, opt2);
        RUN_ENV(&js, env, "summary", model, opt1, opt2, "--json");
    } else {
        RUN_ENV(&text, env, "summary", model);
        RUN_ENV(&js, env, "summary", "--json", model);
    }
    assert_ok(&text, model);
    assert_ok(&js, model);
    cJSON *j = parse_line(js.out, model);
    const char *t = text.out;
    char buf[1024], want[1024];

    ck_assert_str_eq(jstr(j, "model"), model);
    snprintf(want, sizeof want, "\"%s\"", jstr(j, "name"));
    ck_assert_str_eq(rest_of_line(must_after(t, "Model: "), buf, sizeof buf), want);
    const char *dtype = jstr(j, "dtype");
    ck_assert_msg(strcmp(dtype, "f32") == 0 || strcmp(dtype, "f64") == 0, "dtype %s", dtype);
    int64_t size = strcmp(dtype, "f64") == 0 ? 8 : 4;
    ck_assert_str_eq(rest_of_line(must_after(t, "Loss: "), buf, sizeof buf), jstr(j, "loss"));
    bool graph = jbool(j, "graph");
    ck_assert_int_eq(graph, strstr(t, "Connected to") != NULL);

    /* The input row and the input's shape. */
    const cJSON *in = jarr(j, "input_shape", -1);
    ck_assert_int_ge(cJSON_GetArraySize(in), 1);
    const char *row = must_after(t, "input (input) ");
    row += strspn(row, " ");
    shape_str(in, want, sizeof want);
    ck_assert_msg(strncmp(row, want, strlen(want)) == 0, "input shape %s, the text %s", want, row);

    /* Each layer's row: "name (type[+activation])  [shape]  params  [inputs]  [settings]". */
    nb_ctx *ctx = nb_ctx_new();
    nb_model *m = nb_model_load_with(ctx, model, strcmp(dtype, "f64") == 0 ? NB_F64 : NB_F32,
                                     NB_MODEL_SHAPES_ONLY);
    ck_assert_msg(m != NULL, "%s: %s", model, nb_errmsg(ctx));
    const cJSON *layers = jarr(j, "layers", nb_model_num_layers(m));
    int64_t sum = 0, activations = 0;
    for (const cJSON *l = layers->child; l; l = l->next) {
        const char *act = jstr_or_null(l, "activation");
        snprintf(want, sizeof want, "%s (%s%s%s) ", jstr(l, "name"), jstr(l, "type"),
                 act ? "+" : "", act ? act : "");
        row = must_after(t, want);
        row += strspn(row, " ");
        const cJSON *shape = jarr(l, "output_shape", -1);
        int64_t values = 1;
        for (const cJSON *d = shape->child; d; d = d->next)
            values *= jint_of(d, "output_shape");
        activations += values;
        shape_str(shape, want, sizeof want);
        ck_assert_msg(strncmp(row, want, strlen(want)) == 0, "%s: shape %s, the text %s",
                      jstr(l, "name"), want, row);
        row += strlen(want);
        row += strspn(row, " ");
        int64_t params = jint(l, "params");
        ck_assert_int_eq(params, parse_count(row, &row));
        sum += params;
        const cJSON *inputs = jarr(l, "inputs", -1);
        size_t len = 0;
        want[0] = '\0';
        ck_assert_int_ge(cJSON_GetArraySize(inputs), 1);
        for (const cJSON *s = inputs->child; s; s = s->next) {
            ck_assert_msg(cJSON_IsString(s), "an input that is not a string");
            len += (size_t)snprintf(want + len, sizeof want - len, "%s%s",
                                    s == inputs->child ? "" : ", ", s->valuestring);
        }
        /* then, for a graph, the inputs; then the settings */
        rest_of_line(row + strspn(row, " "), buf, sizeof buf);
        const char *rest = buf;
        if (graph) {
            ck_assert_msg(strncmp(rest, want, strlen(want)) == 0, "%s: inputs %s, the text %s",
                          jstr(l, "name"), want, rest);
            rest += strlen(want);
            rest += strspn(rest, " ");
        }
        ck_assert_str_eq(rest, jstr(l, "settings"));
    }

    /* The totals: the text's, the library's, and the layers' sum. */
    int64_t total = jint(j, "total_params"), trainable = jint(j, "trainable_params"),
            frozen = jint(j, "non_trainable_params");
    ck_assert_int_eq(total, parse_count(must_after(t, "Total params: "), NULL));
    ck_assert_int_eq(trainable, parse_count(must_after(t, "Trainable params: "), NULL));
    ck_assert_int_eq(frozen, parse_count(must_after(t, "Non-trainable params: "), NULL));
    ck_assert_int_eq(trainable, nb_model_num_params(m, true));
    ck_assert_int_eq(frozen, nb_model_num_params(m, false));
    ck_assert_int_eq(total, sum);
    int64_t input_values = jint(j, "input_values");
    ck_assert_int_eq(input_values, parse_count(must_after(t, "Input per example: "), NULL));
    ck_assert_int_eq(jint(j, "input_bytes"), input_values * size);
    ck_assert_int_eq(jint(j, "activation_values"), activations);
    ck_assert_int_eq(activations, parse_count(must_after(t, "Activations per example: "), NULL));
    ck_assert_int_eq(jint(j, "activation_bytes"), activations * size);
    ck_assert_int_eq(jint(j, "parameter_bytes"), total * size);

    /* The estimates: "Training memory, batch 64 with sgd (estimated)". */
    int64_t batch = jint(j, "batch_size");
    snprintf(want, sizeof want, "Training memory, batch %" PRId64 " with %s (estimated): ", batch,
             jstr(j, "optimizer"));
    must_after(t, want);
    snprintf(want, sizeof want, "Inference memory, batch %" PRId64 " (estimated): ", batch);
    must_after(t, want);
    nb_train_opts topts;
    nb_optim_opts optim;
    ck_assert_int_eq(nb_model_train_opts(ctx, m, &topts, &optim), NB_OK);
    int kind = nb_optim_kind_from_name(jstr(j, "optimizer"));
    ck_assert_int_ge(kind, 0);
    if (kind != (int)optim.kind)
        optim = nb_optim_defaults((nb_optim_kind)kind);
    nb_memory_report tr, inf;
    ck_assert_int_eq(nb_model_memory(m, batch, &optim, &tr), NB_OK);
    ck_assert_int_eq(nb_model_memory(m, batch, NULL, &inf), NB_OK);
    const cJSON *o = jget(j, "training_memory", cJSON_Object);
    ck_assert_int_eq(jint(o, "total"), (int64_t)tr.total);
    ck_assert_int_eq(jint(o, "params"), (int64_t)tr.params);
    ck_assert_int_eq(jint(o, "grads"), (int64_t)tr.grads);
    ck_assert_int_eq(jint(o, "optimizer_state"), (int64_t)tr.optim);
    ck_assert_int_eq(jint(o, "optimizer_buffers"), tr.optim_buffers);
    ck_assert_int_eq(jint(o, "input"), (int64_t)tr.input);
    ck_assert_int_eq(jint(o, "activations"), (int64_t)tr.activations);
    ck_assert_int_eq(jint(o, "activation_grads"), (int64_t)tr.act_grads);
    o = jget(j, "inference_memory", cJSON_Object);
    ck_assert_int_eq(jint(o, "total"), (int64_t)inf.total);
    ck_assert_int_eq(jint(o, "params"), (int64_t)inf.params);
    ck_assert_int_eq(jint(o, "input"), (int64_t)inf.input);
    ck_assert_int_eq(jint(o, "activations"), (int64_t)inf.activations);

    /* "Memory limit: 1.0 GiB (--max-memory)[: training does not fit]". */
    int64_t limit = jint(j, "memory_limit");
    ck_assert_int_gt(limit, 0);
    snprintf(want, sizeof want, " (%s)", jstr(j, "memory_limit_source"));
    const char *line = rest_of_line(must_after(t, "Memory limit: "), buf, sizeof buf);
    ck_assert_msg(strstr(line, want) != NULL, "memory_limit_source %s, the text %s", want, line);
    bool tfits = jbool(j, "training_fits"), ifits = jbool(j, "inference_fits");
    ck_assert_int_eq(ifits, (int64_t)inf.total <= limit);
    ck_assert_int_eq(tfits, ifits && (int64_t)tr.total <= limit);
    const char *verdict = strstr(line, "): ");
    ck_assert_str_eq(verdict ? verdict + 3 : "", !ifits ? "neither training nor inference fits"
                                                : !tfits ? "training does not fit" : "");
    nb_model_free(m);
    nb_ctx_free(ctx);
    cJSON_Delete(j);
    run_free(&text);
    run_free(&js);
}

START_TEST(test_summary_json)
{
    assert_fixture();
    const char *models[] = {"models/lenet.json", "models/keras-cnn.json", "models/resnet-mini.json",
                            "models/mlp.json", "tests/data/cli/tiny.json",
                            "tests/data/cli/bn.json"};
    char path[4200];
    for (size_t i = 0; i < sizeof models / sizeof models[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", srcdir(), models[i]);
        check_summary(path, NULL, NULL, NULL);
    }
    /* Known values: tiny's 47 parameters, bn's 16 buffers, the options. */
    snprintf(path, sizeof path, "%s/tests/data/cli/bn.json", srcdir());
    check_summary(path, NULL, "--optimizer=adam", "--batch-size=10");
    tool_run r;
    RUN(&r, "summary", path, "--json", "--max-memory", "1G", "--dtype", "f64");
    assert_ok(&r, "summary bn --json");
    cJSON *j = parse_line(r.out, "summary bn --json");
    ck_assert_str_eq(jstr(j, "name"), "bn");
    ck_assert_str_eq(jstr(j, "dtype"), "f64");
    ck_assert_str_eq(jstr(j, "loss"), "hinge");
    ck_assert_int_eq(jint(j, "total_params"), 145);
    ck_assert_int_eq(jint(j, "trainable_params"), 129);
    ck_assert_int_eq(jint(j, "non_trainable_params"), 16);
    ck_assert_int_eq(jint(j, "parameter_bytes"), 145 * 8);
    ck_assert_int_eq(jint(j, "memory_limit"), 1073741824);
    ck_assert_str_eq(jstr(j, "memory_limit_source"), "--max-memory");
    ck_assert(jbool(j, "training_fits"));
    const cJSON *bn1 = cJSON_GetArrayItem(jarr(j, "layers", -1), 1);
    ck_assert_str_eq(jstr(bn1, "name"), "bn1");
    ck_assert_str_eq(jstr(bn1, "type"), "batch_norm");
    ck_assert_int_eq(jint(bn1, "params"), 16);
    ck_assert_ptr_null(jstr_or_null(bn1, "activation"));
    cJSON_Delete(j);
    run_free(&r);
    /* resnet-mini reads two layers in its "res". */
    snprintf(path, sizeof path, "%s/models/resnet-mini.json", srcdir());
    RUN(&r, "summary", path, "--json");
    j = parse_line(r.out, "summary resnet-mini --json");
    ck_assert(jbool(j, "graph"));
    const cJSON *res = cJSON_GetArrayItem(jarr(j, "layers", -1), 2);
    ck_assert_str_eq(jstr(res, "name"), "res");
    const cJSON *ins = jarr(res, "inputs", 2);
    ck_assert_str_eq(cJSON_GetArrayItem(ins, 0)->valuestring, "conv2");
    ck_assert_str_eq(cJSON_GetArrayItem(ins, 1)->valuestring, "conv1");
    ck_assert_str_eq(jstr(cJSON_GetArrayItem(jarr(j, "layers", -1), 0), "activation"), "relu");
    cJSON_Delete(j);
    run_free(&r);
    /* A model of 9,060,597,770 parameters (more than 2^32), that fits in
     * no memory limit of 1G. */
    snprintf(path, sizeof path, "%s/tests/data/cli/huge.json", srcdir());
    check_summary(path, "NABLA_MAX_MEMORY=1G", NULL, NULL);
    RUN_ENV(&r, "NABLA_MAX_MEMORY=1G", "summary", path, "--json");
    j = parse_line(r.out, "summary huge --json");
    ck_assert_int_eq(jint(j, "total_params"), INT64_C(9060597770));
    ck_assert_str_eq(jstr(j, "memory_limit_source"), "NABLA_MAX_MEMORY");
    ck_assert(!jbool(j, "training_fits"));
    ck_assert(!jbool(j, "inference_fits"));
    cJSON_Delete(j);
    run_free(&r);
}
END_TEST

/* ---- eval --json ---- */

/* Checks eval --json of lenet's weights on `data` against its text; the
 * class labels are `labels` (NULL: none has one). */
static void check_eval(const char *data, int nclasses, const char *const *labels)
{
    char model[4200], weights[4200], buf[256], want[256], a[32];
    snprintf(model, sizeof model, "%s/models/lenet.json", srcdir());
    snprintf(weights, sizeof weights, "%s/lenet/weights.safetensors", json_dir);
    tool_run text, js;
    RUN(&text, "eval", model, "--weights", weights, "--data", data);
    RUN(&js, "eval", model, "--json", "--weights", weights, "--data", data);
    assert_ok(&text, "eval");
    assert_ok(&js, "eval --json");
    cJSON *j = parse_line(js.out, "eval --json");
    const char *t = text.out;
    ck_assert_str_eq(jstr(j, "model"), model);
    ck_assert_str_eq(jstr(j, "name"), "lenet");
    ck_assert_str_eq(jstr(j, "weights"), weights);
    ck_assert_str_eq(jstr(j, "data"), data);
    int64_t examples = jint(j, "examples");
    ck_assert_int_eq(examples, parse_count(must_after(t, "test images: "), NULL));
    ck_assert_str_eq(rest_of_line(must_after(t, "test loss: "), buf, sizeof buf),
                     f4(jnum(j, "loss"), a));
    double accuracy = jnum(j, "accuracy");
    ck_assert_str_eq(rest_of_line(must_after(t, "test accuracy: "), buf, sizeof buf),
                     f4(accuracy, a));
    ck_assert_int_eq(jint(j, "classes"), nclasses);

    /* "   0 bar          1.0000  (1 images)" */
    const cJSON *per = jarr(j, "per_class", nclasses), *cm = jarr(j, "confusion", nclasses);
    int64_t right = 0, all = 0;
    for (int i = 0; i < nclasses; i++) {
        const cJSON *c = cJSON_GetArrayItem(per, i);
        ck_assert_int_eq(jint(c, "class"), i);
        const char *label = jstr_or_null(c, "label");
        if (labels)
            ck_assert_str_eq(label ? label : "(null)", labels[i]);
        else
            ck_assert_ptr_null(label);
        int64_t count = jint(c, "count");
        snprintf(want, sizeof want, "  %2d %-12s %s  (%" PRId64 " images)", i, label ? label : "",
                 f4(jnum(c, "accuracy"), a), count);
        ck_assert_msg(strstr(t, want) != NULL, "no line \"%s\" in: %s", want, t);
        /* The matrix's row i: "  %2d " and the counts. */
        const cJSON *rowj = cJSON_GetArrayItem(cm, i);
        ck_assert_msg(cJSON_IsArray(rowj) && cJSON_GetArraySize(rowj) == nclasses,
                      "confusion row %d is not an array of %d", i, nclasses);
        size_t len = (size_t)snprintf(want, sizeof want, "  %2d ", i);
        int64_t sum = 0;
        for (int k = 0; k < nclasses; k++) {
            int64_t v = jint_of(cJSON_GetArrayItem(rowj, k), "confusion");
            len += (size_t)snprintf(want + len, sizeof want - len, "%6" PRId64, v);
            sum += v;
            right += k == i ? v : 0;
        }
        all += sum;
        ck_assert_int_eq(sum, count);
        snprintf(want + len, sizeof want - len, "\n");
        ck_assert_msg(strstr(t, want) != NULL, "no confusion row \"%s\" in: %s", want, t);
    }
    ck_assert_int_eq(all, examples);
    ck_assert(fabs(accuracy - (double)right / (double)examples) < 1e-12);
    cJSON_Delete(j);
    run_free(&text);
    run_free(&js);
}

START_TEST(test_eval_json)
{
    assert_fixture();
    char data[4200];
    /* PNG class folders name their classes. */
    snprintf(data, sizeof data, "%s/tests/data/png/shapes", srcdir());
    check_eval(data, 3, (const char *const[]){"bar", "dot", "ring"});
    /* IDX files name none: the names the weights keep from the folders
     * they were trained on, 3 of lenet's 10 classes. */
    snprintf(data, sizeof data, "%s/tests/data/idx/raw", srcdir());
    check_eval(data, 10, (const char *const[]){"bar", "dot", "ring", "(null)", "(null)", "(null)",
                                               "(null)", "(null)", "(null)", "(null)"});
}
END_TEST

/* ---- predict --json ---- */

/* Writes model's weights (read from `weights`) into out, with value as the
 * metadata "classes" (NULL: no metadata). */
static void resave(const char *model, const char *weights, const char *out, const char *value)
{
    nb_ctx *ctx = nb_ctx_new();
    ck_assert_ptr_nonnull(ctx);
    nb_model *m = nb_model_load(ctx, model, NB_F32);
    ck_assert_msg(m && nb_model_load_weights(m, weights) == NB_OK, "%s", nb_errmsg(ctx));
    int n = nb_model_num_tensors(m);
    nb_tensor *tensors[64];
    ck_assert_int_le(n, 64);
    for (int i = 0; i < n; i++)
        tensors[i] = nb_model_tensor(m, i);
    const char *key = "classes";
    int rc = value ? nb_safetensors_save_meta(ctx, out, n, tensors, 1, &key, &value)
                   : nb_model_save_weights(m, out);
    ck_assert_msg(rc == NB_OK, "%s", nb_errmsg(ctx));
    nb_model_free(m);
    nb_ctx_free(ctx);
}

/* Checks predict --json of `model` with `weights` on the images against its
 * text; the top `top` classes (a string, or NULL for the default 3).  The
 * predicted classes go into classes[]. */
static void check_predict(const char *model, const char *weights, const char *top,
                          int nimages, const char *const *images, int64_t *classes)
{
    const char *args[40] = {"predict", model, "--weights", weights};
    int n = 4;
    if (top) {
        args[n++] = "--top";
        args[n++] = top;
    }
    for (int i = 0; i < nimages && n < 38; i++)
        args[n++] = images[i];
    args[n] = NULL;
    tool_run text, js;
    run_tool_env(&text, NULL, args);
    args[n++] = "--json";
    args[n] = NULL;
    run_tool_env(&js, NULL, args);
    assert_ok(&text, "predict");
    assert_ok(&js, "predict --json");
    const char *t = text.out, *line = js.out;
    char buf[4200], a[32];
    for (int i = 0; i < nimages; i++) {
        /* One line per image, in their order. */
        const char *nl = strchr(line, '\n');
        ck_assert_msg(nl != NULL, "predict --json: %d lines for %d images: %s", i, nimages, js.out);
        snprintf(buf, sizeof buf, "%.*s", (int)(nl + 1 - line), line);
        line = nl + 1;
        cJSON *j = parse_line(buf, "predict --json");
        ck_assert_str_eq(jstr(j, "file"), images[i]);
        /* The text's line: "FILE: C LABEL (P)  top K: C (LABEL) P, C P, ..." */
        const char *tl = t;
        for (int k = 0; k < i && tl; k++)
            tl = strchr(tl, '\n') ? strchr(tl, '\n') + 1 : NULL;
        ck_assert_msg(tl && strncmp(tl, images[i], strlen(images[i])) == 0 &&
                      tl[strlen(images[i])] == ':', "text line %d is not %s's: %s", i, images[i], t);
        tl += strlen(images[i]) + 2;
        int64_t cls = jint(j, "class");
        const char *label = jstr_or_null(j, "label");
        double p = jnum(j, "probability");
        classes[i] = cls;
        snprintf(buf, sizeof buf, "%" PRId64 " %s (%s)  top ", cls, label ? label : "", f4(p, a));
        ck_assert_msg(strncmp(tl, buf, strlen(buf)) == 0, "text \"%.60s\", JSON \"%s\"", tl, buf);
        tl += strlen(buf);
        int64_t k = parse_count(tl, &tl);
        ck_assert_msg(*tl == ':', "no ':' after top K");
        tl++;
        /* Every class's probability, each a float32 in the 9 digits that
         * give it back: "%.9g" of the float nearest it is it. */
        const cJSON *all = jarr(j, "probabilities", -1);
        int c = cJSON_GetArraySize(all);
        ck_assert_int_ge(c, 2);
        double sum = 0, best = -1;
        int64_t argmax = -1;
        for (int q = 0; q < c; q++) {
            const cJSON *v = cJSON_GetArrayItem(all, q);
            ck_assert_msg(cJSON_IsNumber(v), "probability %d is not a number", q);
            double x = v->valuedouble;
            char digits[32];
            snprintf(digits, sizeof digits, "%.9g", (double)(float)x);
            ck_assert_msg(strtod(digits, NULL) == x, "probability %d, %.17g, is not a float32 in"
                          " 9 digits (%s)", q, x, digits);
            ck_assert(x >= 0 && x <= 1);
            sum += x;
            if (x > best)
                best = x, argmax = q;
        }
        ck_assert(fabs(sum - 1) < 1e-5);
        ck_assert_int_eq(cls, argmax);
        ck_assert(p == cJSON_GetArrayItem(all, (int)cls)->valuedouble);
        /* The top K, as the text lists them. */
        int64_t want_k = top ? atoll(top) : 3;
        want_k = want_k < c ? want_k : c;
        ck_assert_int_eq(k, want_k);
        const cJSON *tops = jarr(j, "top", (int)k);
        double prev = 2;
        for (int q = 0; q < k; q++) {
            const cJSON *e = cJSON_GetArrayItem(tops, q);
            int64_t ec = jint(e, "class");
            const char *el = jstr_or_null(e, "label");
            double ep = jnum(e, "probability");
            ck_assert(ec >= 0 && ec < c);
            ck_assert(ep == cJSON_GetArrayItem(all, (int)ec)->valuedouble);
            ck_assert(ep <= prev);
            prev = ep;
            if (q == 0) {
                ck_assert_int_eq(ec, cls);
                ck_assert_str_eq(el ? el : "(null)", label ? label : "(null)");
            }
            snprintf(buf, sizeof buf, "%s %" PRId64 "%s%s%s %s", q ? "," : "", ec, el ? " (" : "",
                     el ? el : "", el ? ")" : "", f4(ep, a));
            ck_assert_msg(strncmp(tl, buf, strlen(buf)) == 0, "text \"%.60s\", JSON \"%s\"", tl,
                          buf);
            tl += strlen(buf);
        }
        ck_assert_msg(*tl == '\n', "the text line goes on: %.60s", tl);
        cJSON_Delete(j);
    }
    ck_assert_msg(*line == '\0', "predict --json: more lines than images: %s", line);
    run_free(&text);
    run_free(&js);
}

START_TEST(test_predict_json)
{
    assert_fixture();
    char model[4200], weights[4200], blue[4200], yellow[4200], gray[4200], rgba[4200],
        odd[4200];
    snprintf(model, sizeof model, "%s/tests/data/cli/rgb-tiny.json", srcdir());
    snprintf(weights, sizeof weights, "%s/rgb/weights.safetensors", json_dir);
    snprintf(blue, sizeof blue, "%s/tests/data/cli/colour/test/blue/1.png", srcdir());
    snprintf(yellow, sizeof yellow, "%s/tests/data/cli/colour/test/yellow/1.png", srcdir());
    snprintf(gray, sizeof gray, "%s/tests/data/png/gray8.png", srcdir());
    snprintf(rgba, sizeof rgba, "%s/tests/data/png/rgba8.png", srcdir());
    /* A name JSON must escape: a quote, a backslash, a tab. */
    snprintf(odd, sizeof odd, "%s/a \"b\\c\td.png", json_dir);
    char *png = slurp(yellow);
    FILE *f = fopen(yellow, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fclose(f);
    f = fopen(odd, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fwrite(png, 1, (size_t)size, f), (size_t)size);
    ck_assert_int_eq(fclose(f), 0);
    free(png);

    int64_t cls[8];
    const char *images[] = {blue, yellow, gray, rgba, odd};
    check_predict(model, weights, NULL, 5, images, cls);
    ck_assert_int_eq(cls[0], 0); /* blue */
    ck_assert_int_eq(cls[1], 1); /* yellow */
    ck_assert_int_eq(cls[4], 1);
    check_predict(model, weights, "1", 2, images, cls);
    ck_assert_int_eq(cls[0], 0);
    ck_assert_int_eq(cls[1], 1);
    /* The first line's exact labels: the class folders' names, which the
     * weights keep. */
    tool_run r;
    RUN(&r, "predict", model, "--weights", weights, "--json", blue);
    assert_ok(&r, "predict --json blue");
    cJSON *j = parse_line(r.out, "predict --json blue");
    ck_assert_str_eq(jstr(j, "label"), "blue");
    jarr(j, "probabilities", 2);
    cJSON_Delete(j);
    run_free(&r);
    /* Weights without names (PyTorch's, say): Fashion-MNIST's. */
    char plain[4200];
    snprintf(plain, sizeof plain, "%s/rgb-plain.safetensors", json_dir);
    resave(model, weights, plain, NULL);
    RUN(&r, "predict", model, "--weights", plain, "--json", blue);
    assert_ok(&r, "predict --json blue, weights without names");
    j = parse_line(r.out, "predict --json blue, weights without names");
    ck_assert_str_eq(jstr(j, "label"), "T-shirt/top");
    cJSON_Delete(j);
    run_free(&r);

    /* 12 classes trained on 2 folders: the weights name 2, the other 10
     * are null in JSON; without names, Fashion-MNIST's 10 and 2 nulls. */
    snprintf(model, sizeof model, "%s/rgb12.json", json_dir);
    snprintf(weights, sizeof weights, "%s/rgb12/weights.safetensors", json_dir);
    snprintf(plain, sizeof plain, "%s/rgb12-plain.safetensors", json_dir);
    resave(model, weights, plain, NULL);
    check_predict(model, weights, "12", 2, images, cls);
    const char *files[2] = {weights, plain};
    for (int k = 0; k < 2; k++) {
        RUN(&r, "predict", model, "--weights", files[k], "--json", "--top", "12", blue);
        assert_ok(&r, "predict --json rgb12");
        j = parse_line(r.out, "predict --json rgb12");
        jarr(j, "probabilities", 12);
        int nulls = 0;
        for (const cJSON *e = jarr(j, "top", 12)->child; e; e = e->next) {
            const char *label = jstr_or_null(e, "label");
            int64_t c = jint(e, "class");
            if (!label) {
                nulls++;
                ck_assert_int_ge(c, k ? 10 : 2);
            } else if (k == 0) {
                ck_assert_str_eq(label, c == 0 ? "blue" : "yellow");
            }
        }
        ck_assert_int_eq(nulls, k ? 2 : 10);
        cJSON_Delete(j);
        run_free(&r);
    }
}
END_TEST

/* Names in the weights that are not n strings or nulls: exit 2, one line
 * naming the file and the key. */
START_TEST(test_bad_class_names)
{
    assert_fixture();
    char model[4200], weights[4200], bad[4200], blue[4200], data[4200];
    snprintf(model, sizeof model, "%s/tests/data/cli/rgb-tiny.json", srcdir());
    snprintf(weights, sizeof weights, "%s/rgb/weights.safetensors", json_dir);
    snprintf(bad, sizeof bad, "%s/bad-names.safetensors", json_dir);
    snprintf(blue, sizeof blue, "%s/tests/data/cli/colour/test/blue/1.png", srcdir());
    snprintf(data, sizeof data, "%s/tests/data/idx/raw", srcdir());
    const char *values[] = {"not json", "{\"a\": 1}", "[\"one\"]", "[\"a\", \"b\", \"c\"]",
                            "[1, 2]", "[\"a\", [\"b\"]]"};
    for (size_t i = 0; i < sizeof values / sizeof *values; i++) {
        resave(model, weights, bad, values[i]);
        tool_run r;
        RUN(&r, "predict", model, "--weights", bad, blue);
        assert_error(&r, 2, "predict", values[i]);
        ck_assert_msg(strstr(r.err, bad) && strstr(r.err, "\"classes\""),
                      "%s: the error names neither the file nor the key: %s", values[i], r.err);
        run_free(&r);
    }
}
END_TEST

/* Errors stay one line on stderr with the text's exit codes, nothing on
 * stdout. */
START_TEST(test_json_errors)
{
    assert_fixture();
    char model[4200], weights[4200], none[4200], blue[4200], data[4200];
    snprintf(model, sizeof model, "%s/tests/data/cli/rgb-tiny.json", srcdir());
    snprintf(weights, sizeof weights, "%s/rgb/weights.safetensors", json_dir);
    snprintf(none, sizeof none, "%s/none.json", json_dir);
    snprintf(blue, sizeof blue, "%s/tests/data/cli/colour/test/blue/1.png", srcdir());
    snprintf(data, sizeof data, "%s/tests/data/cli/colour", srcdir());
    tool_run r;
    RUN(&r, "summary", "--json", none);
    assert_error(&r, 2, "summary", "summary --json of a missing file");
    run_free(&r);
    RUN(&r, "summary", "--json", model, "--max-memory", "1x");
    assert_error(&r, 2, "summary", "summary --json --max-memory 1x");
    run_free(&r);
    RUN(&r, "eval", "--json", model, "--data", data);
    assert_error(&r, 2, "eval", "eval --json without --weights");
    run_free(&r);
    RUN(&r, "eval", "--json", model, "--weights", weights, "--data", none);
    assert_error(&r, 2, "eval", "eval --json of missing data");
    run_free(&r);
    RUN(&r, "predict", "--json", model, "--weights", weights, none);
    assert_error(&r, 2, "predict", "predict --json of a missing image");
    run_free(&r);
    /* The lines before a bad image stay, each JSON. */
    RUN(&r, "predict", "--json", model, "--weights", weights, blue, none, blue);
    ck_assert_int_eq(r.rc, 2);
    cJSON_Delete(parse_line(r.out, "predict --json before a missing image"));
    ck_assert_msg(strncmp(r.err, "nabla predict: ", 15) == 0 && strchr(r.err, '\n')[1] == '\0',
                  "stderr: %s", r.err);
    run_free(&r);
}
END_TEST

static Suite *json_suite(void)
{
    Suite *s = suite_create("json");
    TCase *tc = tcase_create("json");
    tcase_add_unchecked_fixture(tc, json_setup, json_teardown);
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_summary_json);
    tcase_add_test(tc, test_eval_json);
    tcase_add_test(tc, test_predict_json);
    tcase_add_test(tc, test_json_errors);
    tcase_add_test(tc, test_bad_class_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(tst_suite_plot());
    srunner_add_suite(sr, tst_suite_filter());
    srunner_add_suite(sr, tst_suite_grid());
    srunner_add_suite(sr, colour_suite());
    srunner_add_suite(sr, json_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
