/*
 * cmd_train.c - `nabla train`: trains a model file on a data set, with a
 * progress bar, validation after each epoch, checkpoints that resume to the
 * same weights, metrics.csv and curves.png.
 */
#include "cli.h"
#include "plot.h"
#include "train.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* ---- checkpoints ----------------------------------------------------------
 * The weights, the optimizer's state and, as metadata, where training stands:
 * the epoch and batch to go on from, the generators' states and the sums
 * of the epoch so far. */

typedef struct progress {
    int epoch;            /* epochs finished */
    int64_t batch;        /* batches of the current epoch finished */
    nb_rng shuffle;       /* the generator at the start of the epoch */
    double loss_sum;      /* over the epoch's batches so far */
    int64_t correct, seen;
    double seconds;       /* spent in the epoch so far */
} progress;

static void rng_str(const nb_rng *r, char *buf, size_t size)
{
    snprintf(buf, size, "%016" PRIx64 "%016" PRIx64 "%016" PRIx64 "%016" PRIx64, r->s[0], r->s[1],
             r->s[2], r->s[3]);
}

static bool rng_parse(const char *s, nb_rng *r)
{
    if (!s || strlen(s) != 64)
        return false;
    for (int i = 0; i < 4; i++) {
        char part[17];
        memcpy(part, s + 16 * i, 16);
        part[16] = '\0';
        char *end;
        r->s[i] = strtoull(part, &end, 16);
        if (*end)
            return false;
    }
    return true;
}

static int save_checkpoint(trainer *tr, const progress *p, const char *path)
{
    char epoch[32], batch[32], steps[32], shuffle[80], dropout[80], loss[64], correct[32],
        seen[32], secs[64];
    snprintf(epoch, sizeof epoch, "%d", p->epoch);
    snprintf(batch, sizeof batch, "%" PRId64, p->batch);
    snprintf(steps, sizeof steps, "%" PRId64, nb_optim_steps(tr->opt));
    rng_str(&p->shuffle, shuffle, sizeof shuffle);
    rng_str(nb_model_rng(tr->m), dropout, sizeof dropout);
    snprintf(loss, sizeof loss, "%.17g", p->loss_sum);
    snprintf(correct, sizeof correct, "%" PRId64, p->correct);
    snprintf(seen, sizeof seen, "%" PRId64, p->seen);
    snprintf(secs, sizeof secs, "%.17g", p->seconds);
    const char *keys[] = {"format", "epoch", "batch", "steps", "shuffle_rng", "dropout_rng",
                          "loss_sum", "correct", "seen", "seconds"};
    const char *vals[] = {"nabla-checkpoint-1", epoch, batch, steps, shuffle, dropout, loss,
                          correct, seen, secs};
    int n = trainer_checkpoint_tensors(tr);
    if (nb_safetensors_save_meta(tr->ctx, path, n, tr->ckpt, 10, keys, vals) != NB_OK)
        return cli_fail_lib(tr->ctx, false);
    return CLI_OK;
}

static int load_checkpoint(trainer *tr, progress *p, const char *path)
{
    nb_ctx *ctx = tr->ctx;
    nb_safetensors *f = nb_safetensors_open(ctx, path);
    if (!f)
        return cli_fail_lib(ctx, true);
    int n = trainer_checkpoint_tensors(tr);
    int rc = CLI_OK;
    const char *fmt = nb_safetensors_meta(f, "format");
    int64_t steps = 0;
    if (!fmt || strcmp(fmt, "nabla-checkpoint-1") != 0)
        rc = cli_fail(CLI_USAGE, "%s: not a nabla checkpoint", path);
    else if (nb_safetensors_read(ctx, f, n, tr->ckpt, true) != NB_OK)
        rc = cli_fail_lib(ctx, true);
    else if (sscanf(nb_safetensors_meta(f, "epoch") ? nb_safetensors_meta(f, "epoch") : "",
                    "%d", &p->epoch) != 1 ||
             sscanf(nb_safetensors_meta(f, "batch") ? nb_safetensors_meta(f, "batch") : "",
                    "%" SCNd64, &p->batch) != 1 ||
             sscanf(nb_safetensors_meta(f, "steps") ? nb_safetensors_meta(f, "steps") : "",
                    "%" SCNd64, &steps) != 1 ||
             !rng_parse(nb_safetensors_meta(f, "shuffle_rng"), &p->shuffle) ||
             !rng_parse(nb_safetensors_meta(f, "dropout_rng"), nb_model_rng(tr->m)))
        rc = cli_fail(CLI_USAGE, "%s: the checkpoint's metadata is incomplete", path);
    if (rc == CLI_OK) {
        const char *v;
        p->loss_sum = (v = nb_safetensors_meta(f, "loss_sum")) ? strtod(v, NULL) : 0;
        p->correct = (v = nb_safetensors_meta(f, "correct")) ? strtoll(v, NULL, 10) : 0;
        p->seen = (v = nb_safetensors_meta(f, "seen")) ? strtoll(v, NULL, 10) : 0;
        p->seconds = (v = nb_safetensors_meta(f, "seconds")) ? strtod(v, NULL) : 0;
        nb_optim_set_steps(tr->opt, steps);
    }
    nb_safetensors_close(f);
    return rc;
}

/* ---- output files -------------------------------------------------------- */

/* metrics.csv, rewritten whole after each epoch (it is small). */
static int write_metrics(const char *dir, const epoch_metrics *h, int n)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return cli_fail(CLI_RUNTIME, "%s: cannot write: %s", tmp, strerror(errno));
    fprintf(f, "epoch,train_loss,train_accuracy,val_loss,val_accuracy,lr,seconds\n");
    for (int i = 0; i < n; i++)
        fprintf(f, "%d,%.6f,%.6f,%.6f,%.6f,%.6g,%.3f\n", i + 1, h[i].loss, h[i].acc,
                h[i].val_loss, h[i].val_acc, h[i].lr, h[i].seconds);
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        return cli_fail(CLI_RUNTIME, "%s: cannot write: %s", path, strerror(errno));
    return CLI_OK;
}

/* Reads back the rows of epochs [1, n] written before a resume. */
static int read_metrics(const char *dir, epoch_metrics *h, int n)
{
    char path[4200], line[512];
    snprintf(path, sizeof path, "%s/metrics.csv", dir);
    FILE *f = fopen(path, "r");
    if (!f)
        return n == 0 ? CLI_OK : cli_fail(CLI_USAGE, "%s: cannot open: %s", path, strerror(errno));
    int got = 0;
    while (fgets(line, sizeof line, f) && got < n) {
        int e;
        epoch_metrics m;
        if (sscanf(line, "%d,%lf,%lf,%lf,%lf,%lf,%lf", &e, &m.loss, &m.acc, &m.val_loss,
                   &m.val_acc, &m.lr, &m.seconds) == 7 && e == got + 1)
            h[got++] = m;
    }
    fclose(f);
    if (got < n)
        return cli_fail(CLI_USAGE, "%s: has %d epochs, the checkpoint %d", path, got, n);
    return CLI_OK;
}

static int write_curves(const char *dir, const char *name, const epoch_metrics *h, int n,
                        nb_ctx *ctx, bool has_val, bool has_acc)
{
    char path[4200], title[256];
    snprintf(path, sizeof path, "%s/curves.png", dir);
    snprintf(title, sizeof title, "%s - %d epoch%s", name, n, n == 1 ? "" : "s");
    double loss[1000], vloss[1000], acc[1000], vacc[1000];
    int k = n < 1000 ? n : 1000;
    for (int i = 0; i < k; i++) {
        loss[i] = h[i].loss;
        vloss[i] = h[i].val_loss;
        acc[i] = h[i].acc;
        vacc[i] = h[i].val_acc;
    }
    plot_series ls[2] = {{"training", loss, k, PLOT_BLUE, false},
                         {"validation", vloss, k, PLOT_ORANGE, true}};
    plot_series as[2] = {{"training", acc, k, PLOT_BLUE, false},
                         {"validation", vacc, k, PLOT_ORANGE, true}};
    if (plot_curves(ctx, path, title, ls, has_val ? 2 : 1, has_acc ? as : NULL,
                    has_acc ? (has_val ? 2 : 1) : 0) != NB_OK)
        return cli_fail_lib(ctx, false);
    return CLI_OK;
}

/* ---- the progress bar ------------------------------------------------------ */

/* One line, redrawn: "epoch 2/5 [=====>....] 412/938 loss 0.5123 acc 0.8123
 * 3120 img/s 0:12 left". */
static void show_progress(int epoch, int epochs, int64_t done, int64_t total, double loss,
                          double acc, bool has_acc, double images, double seconds)
{
    int width = 24, fill = total ? (int)(width * done / total) : width;
    char bar[32];
    for (int i = 0; i < width; i++)
        bar[i] = i < fill ? '=' : i == fill ? '>' : '.';
    bar[width] = '\0';
    double rate = images / (seconds + 1e-9);
    int left = done ? (int)(seconds * (double)(total - done) / (double)done + 0.5) : 0;
    fprintf(stderr, "\repoch %d/%d [%s] %" PRId64 "/%" PRId64 " loss %.4f", epoch, epochs, bar,
            done, total, loss);
    if (has_acc)
        fprintf(stderr, " acc %.4f", acc);
    fprintf(stderr, " %.0f img/s %d:%02d left\033[K", rate, left / 60, left % 60);
    fflush(stderr);
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

    nb_ctx *ctx = cli_ctx_new();
    if (!ctx)
        return CLI_RUNTIME;
    trainer tr = {.ctx = ctx};
    nb_train_opts t;
    nb_optim_opts o;
    tr.m = nb_model_load(ctx, pos[0], NB_F32);
    if (!tr.m) {
        rc = cli_fail_lib(ctx, true);
        goto done;
    }
    if ((rc = settings(ctx, tr.m, &t, &o)) != CLI_OK)
        goto done;
    nb_rng init;
    nb_rng_seed(&init, t.seed);
    nb_model_init(tr.m, &init);
    nb_rng_seed(nb_model_rng(tr.m), t.seed + 1);
    if ((rc = trainer_open(&tr, &t, &o, cli_get(&spec, "data"), limit)) != CLI_OK)
        goto done;
    trainer_drop_test(&tr); /* checked; loaded again for the end */

    char dir[4096];
    const char *out = cli_get(&spec, "out");
    snprintf(dir, sizeof dir, out ? "%s" : "runs/%s", out ? out : nb_model_name(tr.m));
    char ckpt[4200], weights[4200];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", dir);
    snprintf(weights, sizeof weights, "%s/weights.safetensors", dir);
    if ((rc = cli_make_dir(dir)) != CLI_OK)
        goto done;

    epoch_metrics *hist = calloc((size_t)t.epochs, sizeof *hist);
    if (!hist) {
        rc = cli_fail(CLI_RUNTIME, "out of memory");
        goto done;
    }
    progress p = {0};
    nb_rng_seed(&p.shuffle, t.seed + 2);
    if (cli_get(&spec, "resume")) {
        if ((rc = load_checkpoint(&tr, &p, ckpt)) != CLI_OK ||
            (rc = read_metrics(dir, hist, p.epoch < t.epochs ? p.epoch : t.epochs)) != CLI_OK)
            goto free_hist;
        fprintf(stderr, "resuming %s from epoch %d, batch %" PRId64 "\n", dir, p.epoch + 1,
                p.batch);
    }

    bool tty = isatty(fileno(stderr));
    bool has_acc = trainer_has_accuracy(&tr), has_val = tr.nval > 0;
    printf("training %s on %" PRId64 " images (%" PRId64 " for validation), %s lr %g, "
           "batch %d, %d epoch%s\n",
           nb_model_name(tr.m), tr.ntrain, tr.nval, nb_optim_kind_name(o.kind), o.lr,
           t.batch_size, t.epochs, t.epochs == 1 ? "" : "s");
    struct sigaction sa = {0}, old;
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old);
    interrupted = 0;

    int64_t nbatches = (tr.ntrain + t.batch_size - 1) / t.batch_size;
    for (; p.epoch < t.epochs; p.epoch++) {
        nb_optim_set_lr(tr.opt, nb_schedule_lr(&t, o.lr, p.epoch));
        nb_rng epoch_rng = p.shuffle;
        trainer_shuffle(&tr, &epoch_rng);
        double start = now() - p.seconds, last_shown = 0;
        for (; p.batch < nbatches; p.batch++) {
            step_result s;
            rc = trainer_step(&tr, p.batch, &s);
            if (rc != CLI_OK) {
                fprintf(stderr, "%s", tty ? "\n" : "");
                rc = cli_fail(CLI_RUNTIME, "step %" PRId64 " (epoch %d, batch %" PRId64 "): %s",
                              nb_optim_steps(tr.opt) + 1, p.epoch + 1, p.batch + 1, tr.why);
                goto restore;
            }
            p.loss_sum += s.loss * (double)s.n;
            p.correct += s.correct;
            p.seen += s.n;
            double t_now = now();
            if (tty && (t_now - last_shown > 0.1 || p.batch + 1 == nbatches)) {
                show_progress(p.epoch + 1, t.epochs, p.batch + 1, nbatches,
                              p.loss_sum / (double)p.seen, (double)p.correct / (double)p.seen,
                              has_acc, (double)p.seen, t_now - start);
                last_shown = t_now;
            }
            if (interrupted && p.batch + 1 < nbatches) {
                p.batch++;
                p.seconds = now() - start;
                if (tty)
                    fputc('\n', stderr);
                if ((rc = save_checkpoint(&tr, &p, ckpt)) == CLI_OK) {
                    fprintf(stderr, "interrupted: checkpoint written to %s (epoch %d, batch %"
                                    PRId64 "); continue with --resume\n",
                            ckpt, p.epoch + 1, p.batch);
                    rc = 130;
                }
                goto restore;
            }
        }
        epoch_metrics *h = &hist[p.epoch];
        h->loss = p.loss_sum / (double)p.seen;
        h->acc = has_acc ? (double)p.correct / (double)p.seen : NAN;
        h->lr = nb_optim_lr(tr.opt);
        h->val_loss = h->val_acc = NAN;
        if (has_val && (rc = trainer_evaluate(&tr, tr.train_ds, tr.val, tr.nval, &h->val_loss,
                                              &h->val_acc, NULL)) != CLI_OK)
            goto restore;
        h->seconds = now() - start;
        if (tty)
            fputc('\n', stderr);
        printf("epoch %d/%d: loss %.4f", p.epoch + 1, t.epochs, h->loss);
        if (has_acc)
            printf(", accuracy %.4f", h->acc);
        if (has_val) {
            printf(" - val loss %.4f", h->val_loss);
            if (has_acc)
                printf(", val accuracy %.4f", h->val_acc);
        }
        printf(" - %.1f s\n", h->seconds);
        fflush(stdout);
        /* The epoch is done: the next starts from a fresh state. */
        p.shuffle = epoch_rng;
        p.batch = 0;
        p.loss_sum = 0;
        p.correct = p.seen = 0;
        p.seconds = 0;
        progress next = p;
        next.epoch = p.epoch + 1;
        if ((rc = save_checkpoint(&tr, &next, ckpt)) != CLI_OK ||
            (rc = write_metrics(dir, hist, p.epoch + 1)) != CLI_OK ||
            (rc = write_curves(dir, nb_model_name(tr.m), hist, p.epoch + 1, ctx, has_val,
                               has_acc)) != CLI_OK)
            goto restore;
        if (interrupted) {
            fprintf(stderr, "interrupted: checkpoint written to %s after epoch %d; continue "
                            "with --resume\n", ckpt, p.epoch + 1);
            rc = 130;
            goto restore;
        }
    }

    /* Training is over: the test images take the training images' place,
     * so the peak memory is training's. */
    nb_dataset_free(tr.train_ds);
    tr.train_ds = NULL;
    double test_loss, test_acc;
    if ((rc = trainer_reload_test(&tr)) != CLI_OK ||
        (rc = trainer_evaluate(&tr, tr.test_ds, tr.test, tr.ntest, &test_loss, &test_acc,
                               NULL)) != CLI_OK)
        goto restore;
    if (nb_model_save_weights(tr.m, weights) != NB_OK) {
        rc = cli_fail_lib(ctx, false);
        goto restore;
    }
    printf("test loss: %.4f\n", test_loss);
    if (has_acc)
        printf("test accuracy: %.4f\n", test_acc);
    printf("wrote %s, checkpoint.safetensors, metrics.csv and curves.png in %s\n",
           "weights.safetensors", dir);
    rc = CLI_OK;
restore:
    sigaction(SIGINT, &old, NULL);
free_hist:
    free(hist);
done:
    trainer_close(&tr);
    nb_model_free(tr.m);
    nb_ctx_free(ctx);
    return rc;
}
