/*
 * cmd_train.c - `nabla train`: trains a model file on a data set, with a
 * progress bar, validation after each epoch, checkpoints that resume to the
 * same weights, metrics.csv and curves.png.
 */
#include "cli.h"
#include "plot.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static cli_opt opts[] = {
    {"data", "D", "the data: fashion-mnist (the default, Debian's\n"
                  "/usr/share/datasets/fashion-mnist), a folder of the four IDX files,\n"
                  "or a folder of PNGs in train/CLASS/ and test/CLASS/", NULL},
    {"epochs", "N", "epochs to train (default: the model file's, else 5)", NULL},
    {"batch-size", "N", "examples per step (default: the model file's, else 64)", NULL},
    {"lr", "X", "learning rate (default: the model file's optimizer's)", NULL},
    {"optimizer", "NAME", "sgd, adam, adamw or rmsprop, with PyTorch's defaults\n"
                          "(default: the model file's, else sgd)", NULL},
    {"seed", "N", "seeds the initial weights, the shuffles and dropout (default: the\n"
                  "model file's, else 0)", NULL},
    {"threads", "N", "threads to run on (default: NABLA_NUM_THREADS, else every core)",
     NULL},
    {"out", "DIR", "where to write weights, checkpoint, metrics.csv and curves.png\n"
                   "(default: runs/<model name>)", NULL},
    {"resume", NULL, "continue from DIR/checkpoint.safetensors", NULL},
    {"limit", "N", "use only the first N training examples and N/4 test examples", NULL},
    {0},
};

static const cli_spec spec = {
    .usage = "MODEL.json [options]",
    .about = "Trains the model on the data set's training images and reports the\n"
             "accuracy on its test images.  The model file's \"optimizer\" and\n"
             "\"training\" sections give the settings; options override them.\n"
             "Ctrl-C finishes the current batch, writes a checkpoint and stops;\n"
             "--resume then continues to the same weights as an uninterrupted run.",
    .min_pos = 1,
    .max_pos = 1,
    .opts = opts,
};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Settings from the model file, then from the command line. */
static int settings(nb_ctx *ctx, nb_model *m, nb_train_opts *t, nb_optim_opts *o)
{
    if (nb_model_train_opts(ctx, m, t, o) != NB_OK)
        return cli_fail_lib(ctx, true);
    const char *name = cli_get(&spec, "optimizer");
    if (name) {
        int kind = nb_optim_kind_from_name(name);
        if (kind < 0)
            return cli_fail(CLI_USAGE, "--optimizer: unknown optimizer '%s' (sgd, adam, adamw, "
                                       "rmsprop)", name);
        if (kind != (int)o->kind)
            *o = nb_optim_defaults((nb_optim_kind)kind);
    }
    int64_t epochs = t->epochs, batch = t->batch_size;
    uint64_t seed = t->seed;
    int rc;
    if ((rc = cli_int64(&spec, "epochs", 1, 1000000, &epochs)) ||
        (rc = cli_int64(&spec, "batch-size", 1, 1 << 20, &batch)) ||
        (rc = cli_uint64(&spec, "seed", &seed)) ||
        (rc = cli_positive(&spec, "lr", &o->lr)))
        return rc;
    t->epochs = (int)epochs;
    t->batch_size = (int)batch;
    t->seed = seed;
    return CLI_OK;
}

/* ---- output files -------------------------------------------------------- */

/* metrics.csv, rewritten whole after each epoch (it is small). */
static int write_metrics(const char *dir, const nb_epoch_metrics *h, int n)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return cli_fail(CLI_RUNTIME, "%s: cannot write: %s", tmp, strerror(errno));
    fprintf(f, "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.3f\n", i + 1, h[i].loss, h[i].accuracy,
                h[i].val_loss, h[i].val_accuracy, h[i].lr, h[i].seconds);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        return cli_fail(CLI_RUNTIME, "%s: cannot write: %s", path, strerror(errno));
    return CLI_OK;
}

/* Reads back the rows of epochs [1, n] written before a resume. */
static int read_metrics(const char *dir, nb_epoch_metrics *h, int n)
{
    char path[4200], line[512];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return n == 0 ? CLI_OK : cli_fail(CLI_USAGE, "%s: cannot open: %s", path, strerror(errno));
    int got = 0;
    while (fgets(line, sizeof line, f) && got < n) {
        int e;
        nb_epoch_metrics m = {0};
        if (sscanf(line, "%d,%lf,%lf,%lf,%lf,%lf,%lf", &e, &m.loss, &m.accuracy, &m.val_loss,
                   &m.val_accuracy, &m.lr, &m.seconds) == 7 && e == got + 1)
            h[got++] = m;
    }
    fclose(f);
    if (got < n)
        return cli_fail(CLI_USAGE, "%s: has %d epochs, the checkpoint %d", path, got, n);
    return CLI_OK;
}

static int write_curves(const char *dir, const char *name, const nb_epoch_metrics *h, int n,
                        nb_ctx *ctx, bool has_val)
{
    char path[4200], title[256];
    snprintf(path, sizeof path, "%s/curves.png", dir);
    snprintf(title, sizeof title, "%s - %d epoch%s", name, n, n == 1 ? "" : "s");
    double loss[1000], vloss[1000], acc[1000], vacc[1000];
    int k = n < 1000 ? n : 1000;
    for (int i = 0; i < k; i++) {
        loss[i] = h[i].loss;
        vloss[i] = h[i].val_loss;
        acc[i] = h[i].accuracy;
        vacc[i] = h[i].val_accuracy;
    }
    plot_series ls[2] = {{"training", loss, k, PLOT_BLUE, false},
                         {"validation", vloss, k, PLOT_ORANGE, true}};
    plot_series as[2] = {{"training", acc, k, PLOT_BLUE, false},
                         {"validation", vacc, k, PLOT_ORANGE, true}};
    if (plot_curves(ctx, path, title, ls, has_val ? 2 : 1, as, has_val ? 2 : 1) != NB_OK)
        return cli_fail_lib(ctx, false);
    return CLI_OK;
}

/* ---- a run ------------------------------------------------------------------ */

/* What a run holds, and what its callbacks share. */
typedef struct run {
    nb_ctx *ctx;
    nb_model *m;
    nb_train_opts t;
    nb_optim_opts o;
    const char *data;          /* the data directory */
    nb_dataset *train, *test;  /* test NULL while training runs */
    int64_t test_limit;        /* test examples to take, 0 for all */
    int64_t ntest;             /* and how many that is */
    nb_trainer *tr;
    char dir[4096], ckpt[4200], weights[4200];
    nb_epoch_metrics *hist;    /* every epoch's, for metrics.csv and curves.png */
    bool tty;                  /* stderr is a terminal: a progress bar */
    bool bar;                  /* a progress line is drawn and not ended */
    double last_shown;         /* when it was drawn */
    int rc;                    /* the exit code of a failure a callback printed */
} run;

/* The data: the training images for the trainer, the test images checked
 * now and set aside until training is over, so that only the training set
 * is in memory while it runs. */
static int open_data(run *r, int64_t limit)
{
    nb_ctx *ctx = r->ctx;
    r->data = cli_data_dir(cli_get(&spec, "data"));
    if (!(r->train = nb_dataset_load(ctx, r->data, true)) ||
        !(r->test = nb_dataset_load(ctx, r->data, false)))
        return cli_fail_lib(ctx, true);
    r->tr = nb_trainer_new(ctx, r->m, r->train, limit, &r->t, &r->o);
    if (!r->tr)
        return cli_fail_lib(ctx, true);
    /* --limit N tests on N/4 examples, at least one. */
    r->test_limit = limit > 0 ? (limit / 4 > 0 ? limit / 4 : 1) : 0;
    if ((r->ntest = nb_trainer_examples(r->tr, r->test, r->test_limit)) < 0)
        return cli_fail_lib(ctx, true);
    nb_dataset_free(r->test);
    r->test = NULL;
    return CLI_OK;
}

/* The model with its first weights, the settings, the data, the trainer
 * and the output directory. */
static int run_open(run *r, const char *model, int64_t limit)
{
    nb_ctx *ctx = r->ctx;
    r->m = nb_model_load(ctx, model, NB_F32);
    if (!r->m)
        return cli_fail_lib(ctx, true);
    int rc = settings(ctx, r->m, &r->t, &r->o);
    if (rc != CLI_OK)
        return rc;
    nb_rng init;
    nb_rng_seed(&init, r->t.seed);
    nb_model_init(r->m, &init);
    if ((rc = open_data(r, limit)) != CLI_OK)
        return rc;
    const char *out = cli_get(&spec, "out");
    snprintf(r->dir, sizeof r->dir, out ? "%s" : "runs/%s", out ? out : nb_model_name(r->m));
    snprintf(r->ckpt, sizeof r->ckpt, "%s/checkpoint.safetensors", r->dir);
    snprintf(r->weights, sizeof r->weights, "%s/weights.safetensors", r->dir);
    if ((rc = cli_make_dir(r->dir)) != CLI_OK)
        return rc;
    r->hist = calloc((size_t)r->t.epochs, sizeof *r->hist);
    if (!r->hist)
        return cli_fail(CLI_RUNTIME, "out of memory");
    r->tty = isatty(fileno(stderr));
    return CLI_OK;
}

static void run_close(run *r)
{
    free(r->hist);
    nb_trainer_free(r->tr);
    nb_dataset_free(r->train);
    nb_dataset_free(r->test);
    nb_model_free(r->m);
}

/* --resume: the checkpoint, and the metrics of the epochs it has done. */
static int run_resume(run *r)
{
    if (nb_trainer_resume(r->tr, r->ckpt) != NB_OK)
        return cli_fail_lib(r->ctx, true);
    int done = nb_trainer_progress(r->tr)->epoch;
    int rc = read_metrics(r->dir, r->hist, done < r->t.epochs ? done : r->t.epochs);
    if (rc != CLI_OK)
        return rc;
    fprintf(stderr, "resuming %s from epoch %d, batch %" PRId64 "\n", r->dir, done + 1,
            nb_trainer_progress(r->tr)->batch);
    return CLI_OK;
}

/* ---- while it trains ---------------------------------------------------------- */

/* Ends the progress line, if one is drawn. */
static void end_bar(run *r)
{
    if (r->bar)
        fputc('\n', stderr);
    r->bar = false;
}

/* One line, redrawn: "epoch 2/5 [=====>....] 412/938 loss 0.5123 acc 0.8123
 * 3120 img/s 0:12 left". */
static void show_progress(const run *r, const nb_train_progress *p)
{
    int width = 24, fill = p->batches ? (int)(width * p->batch / p->batches) : width;
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '=' : i == fill ? '>' : '.';
    bar[width] = '\0';
    double rate = (double)p->seen / (p->seconds + 1e-9);
    int64_t done = p->batch, total = p->batches;
    int left = done ? (int)(p->seconds * (double)(total - done) / (double)done + 0.5) : 0;
    fprintf(stderr, "\repoch %d/%d [%s] %" PRId64 "/%" PRId64 " loss %.4f acc %.4f", p->epoch + 1,
            r->t.epochs, bar, done, total, p->loss_sum / (double)p->seen,
            (double)p->correct / (double)p->seen);
    fprintf(stderr, " %.0f img/s %d:%02d left\033[K", rate, left / 60, left % 60);
    fflush(stderr);
}

static int on_batch(nb_trainer *tr, const nb_train_progress *p, void *ud)
{
    (void)tr;
    run *r = ud;
    double t = now();
    if (r->tty && (t - r->last_shown > 0.1 || p->batch == p->batches)) {
        show_progress(r, p);
        r->bar = true;
        r->last_shown = t;
    }
    /* Ctrl-C stops after this batch; after an epoch's last, once the epoch
     * is done, so that its checkpoint comes with its validation. */
    return interrupted && p->batch < p->batches;
}

static void print_epoch(const run *r, const nb_epoch_metrics *e)
{
    printf("epoch %d/%d: loss %.4f, accuracy %.4f", e->epoch, r->t.epochs, e->loss, e->accuracy);
    if (nb_trainer_num_val(r->tr) > 0)
        printf(" - val loss %.4f, val accuracy %.4f", e->val_loss, e->val_accuracy);
    printf(" - %.1f s\n", e->seconds);
    fflush(stdout);
}

/* After an epoch: its line, then the checkpoint, metrics.csv and
 * curves.png. */
static int on_epoch(nb_trainer *tr, const nb_epoch_metrics *e, void *ud)
{
    run *r = ud;
    r->hist[e->epoch - 1] = *e;
    end_bar(r);
    print_epoch(r, e);
    r->last_shown = 0;
    if (nb_trainer_save(tr, r->ckpt) != NB_OK)
        r->rc = cli_fail_lib(r->ctx, false);
    else if ((r->rc = write_metrics(r->dir, r->hist, e->epoch)) == CLI_OK)
        r->rc = write_curves(r->dir, nb_model_name(r->m), r->hist, e->epoch, r->ctx,
                             nb_trainer_num_val(tr) > 0);
    return r->rc != CLI_OK || interrupted;
}

/* Ctrl-C stopped training: inside an epoch its checkpoint is yet to be
 * written; after one, on_epoch wrote it. */
static int interrupted_run(run *r)
{
    const nb_train_progress *p = nb_trainer_progress(r->tr);
    end_bar(r);
    if (p->batch == 0) {
        fprintf(stderr, "interrupted: checkpoint written to %s after epoch %d; continue with "
                        "--resume\n", r->ckpt, p->epoch);
        return 130;
    }
    if (nb_trainer_save(r->tr, r->ckpt) != NB_OK)
        return cli_fail_lib(r->ctx, false);
    fprintf(stderr, "interrupted: checkpoint written to %s (epoch %d, batch %" PRId64 "); "
                    "continue with --resume\n", r->ckpt, p->epoch + 1, p->batch);
    return 130;
}

static int run_fit(run *r)
{
    printf("training %s on %" PRId64 " images (%" PRId64 " for validation), %s lr %g, "
           "batch %d, %d epoch%s\n",
           nb_model_name(r->m), nb_trainer_num_train(r->tr), nb_trainer_num_val(r->tr),
           nb_optim_kind_name(r->o.kind), r->o.lr, r->t.batch_size, r->t.epochs,
           r->t.epochs == 1 ? "" : "s");
    nb_trainer_callbacks cb = {on_batch, on_epoch, r};
    int rc = nb_trainer_fit(r->tr, &cb);
    if (rc == NB_OK)
        return CLI_OK;
    if (r->rc != CLI_OK)
        return r->rc;
    if (rc == NB_TRAIN_STOPPED)
        return interrupted_run(r);
    end_bar(r);
    return cli_fail_lib(r->ctx, false);
}

/* Training is over: the test images take the training images' place, so
 * the peak memory is training's. */
static int run_test(run *r)
{
    nb_ctx *ctx = r->ctx;
    nb_dataset_free(r->train);
    r->train = NULL;
    r->test = nb_dataset_load(ctx, r->data, false);
    if (!r->test)
        return cli_fail_lib(ctx, true);
    int64_t n = nb_trainer_examples(r->tr, r->test, r->test_limit);
    if (n < 0)
        return cli_fail_lib(ctx, true);
    if (n != r->ntest)
        return cli_fail(CLI_USAGE, "%s: the test images changed while training ran", r->data);
    nb_eval_result test;
    if (nb_trainer_evaluate(r->tr, r->test, r->test_limit, &test, NULL) != NB_OK ||
        nb_model_save_weights(r->m, r->weights) != NB_OK)
        return cli_fail_lib(ctx, false);
    printf("test loss: %.4f\n", test.loss);
    printf("test accuracy: %.4f\n", test.accuracy);
    printf("wrote %s, checkpoint.safetensors, metrics.csv and curves.png in %s\n",
           "weights.safetensors", r->dir);
    return CLI_OK;
}

/* ---- the verb ------------------------------------------------------------- */

int cmd_train(int argc, char **argv)
{
    const char *pos[1];
    int npos, rc = cli_parse(&spec, argc, argv, pos, &npos);
    if (rc != CLI_OK)
        return rc == CLI_HELP ? CLI_OK : rc;
    int64_t limit = 0;
    if ((rc = cli_threads(&spec)) || (rc = cli_int64(&spec, "limit", 1, INT64_MAX, &limit)))
        return rc;
    run r = {.ctx = cli_ctx_new()};
    if (!r.ctx)
        return CLI_RUNTIME;
    rc = run_open(&r, pos[0], limit);
    if (rc == CLI_OK && cli_get(&spec, "resume"))
        rc = run_resume(&r);
    if (rc == CLI_OK) {
        /* Ctrl-C sets `interrupted`, which the callbacks answer by
         * stopping; the test after training runs to its end. */
        struct sigaction sa = {0}, old;
        sa.sa_handler = on_sigint;
        sigaction(SIGINT, &sa, &old);
        interrupted = 0;
        rc = run_fit(&r);
        if (rc == CLI_OK)
            rc = run_test(&r);
        sigaction(SIGINT, &old, NULL);
    }
    run_close(&r);
    nb_ctx_free(r.ctx);
    return rc;
}
